// SPDX-License-Identifier: MIT
/*
 * vm/store.c - the store wrappers (latency and error injection) and the
 * local-file store: pread/pwrite/fallocate/ftruncate/fdatasync.
 *
 * Direct I/O (VM_STORE_DIRECT, UFVM_DIRECT_IO=1): the file is opened twice,
 * once with O_DIRECT (dfd) and once buffered (fd).  The file system says
 * what O_DIRECT needs (statx STATX_DIOALIGN; 4096 where it does not say):
 * file offsets and lengths in whole blocks of @align bytes, buffers at
 * multiples of @mem_align.  Then:
 *  - reads all go to dfd: whole blocks straight into the caller's buffer
 *    when it is aligned (the object's frames are page aligned), anything
 *    else (a buffer out of line, a piece of a block, the file's partial
 *    last block) through an aligned bounce buffer holding the blocks
 *    around it; a block past the end of the file reads short, as with
 *    pread, and the rest reads as zeros;
 *  - writes of whole blocks go to dfd, from the caller's buffer or a bounce
 *    copy; a piece of a block (the file's partial last block, or a range
 *    that does not start or end on a block boundary) goes to fd, so that
 *    exactly its bytes are written: an O_DIRECT write of the whole block
 *    would grow the file past its size or overwrite the rest of the block;
 *  - truncate, punch, size and fdatasync go to fd: they act on the file,
 *    whichever descriptor names it.
 * The kernel keeps the two coherent: an O_DIRECT read or write first writes
 * back the host page cache's dirty pages in its range, and a write then
 * drops them.  With direct I/O off, dfd is fd and both alignments are 1,
 * so every read and write goes straight to fd.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/magic.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "vm/store.h"
#include "vm/trace.h"

#define BOUNCE_MAX	(1ul << 20)	/* bytes of bounce buffer per call, at most */

struct store_file {
	struct vm_store s;
	int fd;			/* (c) buffered */
	int dfd;		/* (c) O_DIRECT; fd when direct I/O is off */
	size_t align;		/* (c) dfd's offset and length unit (1: buffered) */
	size_t mem_align;	/* (c) dfd's buffer alignment (1: buffered) */
	bool in_memory;		/* (c) on tmpfs: a read never waits for a device */
};

#define to_sf(s) container_of(s, struct store_file, s)

/* One pread or pwrite, again on EINTR.  Return: bytes done, or -errno. */
static ssize_t sf_io(int fd, void *buf, size_t len, uint64_t off, bool write)
{
	ssize_t n;

	do {
		n = write ? pwrite(fd, buf, len, (off_t)off) : pread(fd, buf, len, (off_t)off);
	} while (n < 0 && errno == EINTR);
	return n < 0 ? -errno : n;
}

static bool sf_aligned(const struct store_file *sf, const void *buf)
{
	return (uintptr_t)buf % sf->mem_align == 0;
}

/* The size of the bounce buffer for a call of @len bytes. */
static size_t sf_bounce_size(const struct store_file *sf, size_t len)
{
	return ROUND_UP(MIN(ROUND_UP(len, sf->align) + sf->align, MAX(BOUNCE_MAX, sf->align)),
			PAGE_SIZE);
}

/*
 * A bounce buffer for a call of @len bytes, in *@b (once), mmap'd: reads
 * run in the faulting thread's signal handler with the in-thread
 * deliveries, where malloc may deadlock; a mapping is page aligned, which
 * every O_DIRECT alignment divides.  Return: its size or 0.
 */
static size_t sf_bounce(const struct store_file *sf, size_t len, char **b)
{
	size_t size = sf_bounce_size(sf, len);

	if (!*b) {
		void *m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			       -1, 0);

		*b = m == MAP_FAILED ? NULL : m;
	}
	return *b ? size : 0;
}

static void sf_bounce_free(const struct store_file *sf, size_t len, char *b)
{
	if (b)
		munmap(b, sf_bounce_size(sf, len));
}

static int sf_read(struct vm_store *s, void *buf, uint64_t off, size_t len)
{
	struct store_file *sf = to_sf(s);
	size_t a = sf->align, done = 0;
	char *bounce = NULL;
	int err = 0;

	while (done < len) {
		uint64_t pos = off + done;
		char *dst = (char *)buf + done;
		size_t want = len - done, head, span, got;
		ssize_t n;

		if (pos % a == 0 && want >= a && sf_aligned(sf, dst)) {
			n = sf_io(sf->dfd, dst, want - want % a, pos, false);
			if (n <= 0) {
				err = (int)n;
				break;	/* an error, or the end of the file */
			}
			done += (size_t)n;
			continue;
		}
		/* The blocks around [pos, pos + want), or as many as fit. */
		span = sf_bounce(sf, len, &bounce);
		if (!span) {
			err = -ENOMEM;
			break;
		}
		head = pos % a;
		span = MIN(span, ROUND_UP(head + want, a));
		n = sf_io(sf->dfd, bounce, span, pos - head, false);
		if (n < 0) {
			err = (int)n;
			break;
		}
		if ((size_t)n <= head)
			break;	/* the end of the file is at or before pos */
		got = MIN((size_t)n - head, want);
		memcpy(dst, bounce + head, got);
		done += got;
	}
	sf_bounce_free(sf, len, bounce);
	if (!err && done < len)
		memset((char *)buf + done, 0, len - done);
	return err;
}

/*
 * Buffered only (->read_to_fd is off with O_DIRECT, whose reads must not
 * go through the host page cache): splice() moves references to the host
 * page cache's pages into the pipe, and from there the kernel copies them
 * into @fd, one copy where pread() into a buffer and pwrite() from it make
 * two.
 */
static ssize_t sf_read_to_fd(struct vm_store *s, int fd, uint64_t off, size_t len,
			     const int pipefd[2])
{
	struct store_file *sf = to_sf(s);
	loff_t in = (loff_t)off, out = (loff_t)off;

	while ((size_t)(in - (loff_t)off) < len) {
		ssize_t n = splice(sf->fd, &in, pipefd[1], NULL, len - (size_t)(in - (loff_t)off),
				   SPLICE_F_MOVE);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;	/* the end of the file */
		while (out < in) {
			ssize_t m = splice(pipefd[0], NULL, fd, &out, (size_t)(in - out),
					   SPLICE_F_MOVE);

			if (m < 0 && errno == EINTR)
				continue;
			if (m <= 0)
				return m < 0 ? -errno : -EIO;
		}
	}
	return (ssize_t)(out - (loff_t)off);
}

/*
 * Buffered only.  RWF_NOWAIT reads what the host page cache holds and
 * says EAGAIN where it would wait for the device; tmpfs refuses the flag
 * (EOPNOTSUPP) but holds its pages in memory, so a plain pread there (with
 * swap, one that was swapped out waits for it, as the kernel's own faults
 * on tmpfs do under mmap_lock).  A short read is EAGAIN too: the rest may
 * be on the device, or the file shrank under us (->read tells which).
 */
static int sf_read_nowait(struct vm_store *s, void *buf, uint64_t off, size_t len)
{
	struct store_file *sf = to_sf(s);
	struct iovec iov = { .iov_base = buf, .iov_len = len };
	ssize_t n;

	do {
		n = sf->in_memory ? pread(sf->fd, buf, len, (off_t)off)
				  : preadv2(sf->fd, &iov, 1, (off_t)off, RWF_NOWAIT);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EOPNOTSUPP ? -EAGAIN : -errno;
	return (size_t)n == len ? 0 : -EAGAIN;
}

/* Write @len bytes at @off; *@wrote says how many went in, also on error. */
static int sf_write_count(struct vm_store *s, const void *buf, uint64_t off, size_t len,
			  size_t *wrote)
{
	struct store_file *sf = to_sf(s);
	size_t a = sf->align, done = 0;
	char *bounce = NULL;
	int err = 0;

	while (done < len) {
		uint64_t pos = off + done;
		const char *src = (const char *)buf + done;
		size_t want = len - done, n;
		ssize_t w;

		if (pos % a || want < a) {
			/* A piece of a block: exactly its bytes, buffered. */
			n = pos % a ? MIN(want, a - pos % a) : want;
			w = sf_io(sf->fd, (void *)src, n, pos, true);
		} else if (sf_aligned(sf, src)) {
			w = sf_io(sf->dfd, (void *)src, want - want % a, pos, true);
		} else {
			n = sf_bounce(sf, len, &bounce);
			if (!n) {
				err = -ENOMEM;
				break;
			}
			n = MIN(n - n % a, want - want % a);
			memcpy(bounce, src, n);
			w = sf_io(sf->dfd, bounce, n, pos, true);
		}
		if (w <= 0) {
			err = w < 0 ? (int)w : -EIO;
			break;
		}
		done += (size_t)w;
	}
	sf_bounce_free(sf, len, bounce);
	*wrote = done;
	return err;
}

static int sf_write(struct vm_store *s, const void *buf, uint64_t off, size_t len)
{
	size_t wrote;

	return sf_write_count(s, buf, off, len, &wrote);
}

static int sf_punch(struct vm_store *s, uint64_t off, uint64_t len, bool *untouched)
{
	int r;

	/* Application threads call this with their signals unblocked. */
	do
		r = fallocate(to_sf(s)->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			      (off_t)off, (off_t)len);
	while (r && errno == EINTR);
	if (!r)
		return 0;
	if (errno != EOPNOTSUPP) {
		/* Refused before it began; an I/O error may come half way. */
		*untouched = errno == EBADF || errno == EPERM || errno == EINVAL ||
			     errno == ENODEV || errno == ESPIPE || errno == EROFS ||
			     errno == ETXTBSY;
		return -errno;
	}
	/*
	 * No hole support on this file system: write zeros instead.  A
	 * failure before the first byte went in leaves the store untouched.
	 */
	{
		static const char zeros[65536];
		uint64_t done = 0;

		while (done < len) {
			size_t n = (size_t)MIN(len - done, sizeof(zeros)), wrote;
			int err = sf_write_count(s, zeros, off + done, n, &wrote);

			if (err) {
				*untouched = !done && !wrote;
				return err;
			}
			done += n;
		}
	}
	return 0;
}

static int sf_truncate(struct vm_store *s, uint64_t size)
{
	int r;

	do
		r = ftruncate(to_sf(s)->fd, (off_t)size);
	while (r && errno == EINTR);
	return r ? -errno : 0;
}

static int sf_sync(struct vm_store *s)
{
	int r;

	do
		r = fdatasync(to_sf(s)->fd);
	while (r && errno == EINTR);
	return r ? -errno : 0;
}

static int sf_size(struct vm_store *s, uint64_t *size)
{
	struct stat st;

	if (fstat(to_sf(s)->fd, &st))
		return -errno;
	*size = (uint64_t)st.st_size;
	return 0;
}

static void sf_destroy(struct vm_store *s)
{
	struct store_file *sf = to_sf(s);

	if (sf->dfd != sf->fd)
		close(sf->dfd);
	close(sf->fd);
	free(sf);
}

static const struct vm_store_ops store_file_ops = {
	.name = "file",
	.read = sf_read,
	.read_to_fd = sf_read_to_fd,
	.read_nowait = sf_read_nowait,
	.write = sf_write,
	.punch = sf_punch,
	.truncate = sf_truncate,
	.sync = sf_sync,
	.size = sf_size,
	.destroy = sf_destroy,
};

/* Clear @fd's O_NONBLOCK (opened with it, see vm_store_file_open()).  Return: 0 or -errno. */
static int blocking(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK))
		return -errno;
	return 0;
}

/*
 * Open @path once more, with O_DIRECT, as @sf->dfd, and learn what O_DIRECT
 * needs of it.  @st: what @sf->fd names.  Context: may sleep.
 * Return: 0, -EINVAL (the file system refuses O_DIRECT or would not honour
 * it; a message on stderr), -ESTALE (@path names another file now), -errno.
 */
static int sf_open_direct(struct store_file *sf, const char *path, int flags,
			  const struct stat *st)
{
	const char *why = NULL;
	struct stat dst;
	int fd, err;

	fd = open(path, (flags & ~O_CREAT) | O_DIRECT | O_NONBLOCK);	/* as below */
	if (fd < 0) {
		if (errno != EINVAL)
			return -errno;
		why = "the file system refuses O_DIRECT";
		goto refused;
	}
	if (fstat(fd, &dst)) {
		err = -errno;
		goto fail;
	}
	err = -ESTALE;
	if (dst.st_dev != st->st_dev || dst.st_ino != st->st_ino)
		goto fail;
	err = blocking(fd);
	if (err)
		goto fail;
	sf->align = 4096;
	sf->mem_align = 4096;
#ifdef STATX_DIOALIGN
	{
		struct statx sx;

		if (!statx(fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &sx) &&
		    (sx.stx_mask & STATX_DIOALIGN)) {
			sf->align = sx.stx_dio_offset_align;
			sf->mem_align = sx.stx_dio_mem_align;
		}
	}
#endif
	if (!sf->align || !sf->mem_align) {
		/* ext4 says so where O_DIRECT would quietly be buffered. */
		why = "the file system does not support direct I/O on this file "
		      "(statx gives it no alignment)";
		goto refused;
	}
	if ((sf->align & (sf->align - 1)) || (sf->mem_align & (sf->mem_align - 1))) {
		why = "the file system gives a direct I/O alignment that is not a power of two";
		goto refused;
	}
	sf->dfd = fd;
	return 0;
refused:
	fprintf(stderr, "ufvm: %s: %s: direct I/O (direct_io, UFVM_DIRECT_IO=1) is not "
		"possible here\n", path, why);
	err = -EINVAL;
fail:
	if (fd >= 0)
		close(fd);
	return err;
}

static bool on_tmpfs(int fd)
{
	struct statfs fs;

	return !fstatfs(fd, &fs) && fs.f_type == TMPFS_MAGIC;
}

int vm_store_file_open(const char *path, unsigned int flags,
		       struct vm_store **out, dev_t *dev, ino_t *ino)
{
	bool writable = flags & VM_STORE_WRITABLE;
	int fd, oflags = O_CLOEXEC | (writable ? O_RDWR : O_RDONLY);
	struct store_file *sf;
	struct stat st;
	int err;

	if (flags & VM_STORE_CREATE)
		oflags |= O_CREAT;
	/*
	 * O_NONBLOCK: the path may name a FIFO by now (it was a regular file
	 * when the caller looked), whose open would wait for a writer.  It
	 * is refused below; a regular file's descriptor is made blocking
	 * again (io_uring would not wait for its reads otherwise).
	 */
	fd = open(path, oflags | O_NONBLOCK | O_NOCTTY, 0644);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st)) {
		err = -errno;
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		err = S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
		goto fail;
	}
	err = blocking(fd);
	if (err)
		goto fail;
	err = -ENOMEM;
	sf = calloc(1, sizeof(*sf));
	if (!sf)
		goto fail;
	sf->s.ops = &store_file_ops;
	sf->s.writable = writable;
	sf->fd = fd;
	sf->dfd = fd;
	sf->align = 1;
	sf->mem_align = 1;
	if (flags & VM_STORE_DIRECT) {
		err = sf_open_direct(sf, path, oflags, &st);
		if (err) {
			free(sf);
			goto fail;
		}
	}
	sf->s.read_to_fd = sf->dfd == sf->fd;	/* buffered: splice from the page cache */
	sf->s.read_nowait = sf->dfd == sf->fd;	/* with O_DIRECT every read is I/O */
	sf->in_memory = on_tmpfs(fd);
	*dev = st.st_dev;
	*ino = st.st_ino;
	*out = &sf->s;
	return 0;
fail:
	close(fd);
	return err;
}

static bool injected(uint64_t eoff, uint64_t elen, uint64_t off, size_t len)
{
	return elen && off < eoff + elen && eoff < off + len;
}

/* The injected read latency, then whether [off, off+len) is to fail. */
static bool read_injected(struct vm_store *s, uint64_t off, size_t len)
{
	unsigned int lat = READ_ONCE(s->latency_us);

	if (lat) {
		struct timespec ts = { lat / 1000000, (long)(lat % 1000000) * 1000 };

		while (nanosleep(&ts, &ts) && errno == EINTR)
			;
	}
	return injected(READ_ONCE(s->rerr_off), READ_ONCE(s->rerr_len), off, len);
}

int vm_store_read(struct vm_store *s, void *buf, uint64_t off, size_t len)
{
	int err;

	UFVM_TRACE2(store_read_start, off, len);
	if (read_injected(s, off, len))
		err = -EIO;
	else
		err = s->ops->read(s, buf, off, len);
	UFVM_TRACE3(store_read_done, off, len, err);
	return err;
}

int vm_store_read_nowait(struct vm_store *s, void *buf, uint64_t off, size_t len)
{
	int err;

	if (!vm_store_may_read_nowait(s) ||
	    injected(READ_ONCE(s->rerr_off), READ_ONCE(s->rerr_len), off, len))
		return -EAGAIN;
	UFVM_TRACE2(store_read_start, off, len);
	err = s->ops->read_nowait(s, buf, off, len);
	UFVM_TRACE3(store_read_done, off, len, err);
	return err;
}

ssize_t vm_store_read_to_fd(struct vm_store *s, int fd, uint64_t off, size_t len,
			    const int pipefd[2])
{
	ssize_t n;

	if (!s->read_to_fd)
		return -EOPNOTSUPP;
	UFVM_TRACE2(store_read_start, off, len);
	if (read_injected(s, off, len))
		n = -EIO;
	else
		n = s->ops->read_to_fd(s, fd, off, len, pipefd);
	UFVM_TRACE3(store_read_done, off, len, n < 0 ? (int)n : 0);
	return n;
}

int vm_store_write(struct vm_store *s, const void *buf, uint64_t off, size_t len)
{
	int err;

	if (!s->writable)
		return -EBADF;
	UFVM_TRACE2(store_write_start, off, len);
	if (injected(READ_ONCE(s->werr_off), READ_ONCE(s->werr_len), off, len))
		err = -EIO;
	else
		err = s->ops->write(s, buf, off, len);
	UFVM_TRACE3(store_write_done, off, len, err);
	return err;
}

int vm_store_punch(struct vm_store *s, uint64_t off, uint64_t len, bool *untouched)
{
	bool dummy;

	if (!untouched)
		untouched = &dummy;
	*untouched = true;
	if (!s->writable)
		return -EBADF;
	if (injected(READ_ONCE(s->perr_off), READ_ONCE(s->perr_len), off, len))
		return -EIO;
	*untouched = false;
	return s->ops->punch(s, off, len, untouched);
}

int vm_store_truncate(struct vm_store *s, uint64_t size)
{
	return s->writable ? s->ops->truncate(s, size) : -EBADF;
}

int vm_store_sync(struct vm_store *s)
{
	return s->writable ? s->ops->sync(s) : 0;
}

int vm_store_size(struct vm_store *s, uint64_t *size)
{
	return s->ops->size(s, size);
}

void vm_store_destroy(struct vm_store *s)
{
	s->ops->destroy(s);
}
