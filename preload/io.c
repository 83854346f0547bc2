// SPDX-License-Identifier: MIT
/*
 * preload/io.c - the fd calls that must stay coherent with the mappings:
 * open (tracking, O_TRUNC), close, dup, read/write and their vector and
 * positioned forms, lseek, ftruncate, fallocate, fsync, stat (size),
 * copy_file_range, sendfile and splice.
 *
 * On an fd whose file is managed (active inode, see inode.c) the data goes
 * through ufvm_pread()/ufvm_pwrite(), which see exactly what the mappings
 * see.  The fd's own offset is the store of the file position: a read or
 * write reserves [pos, pos+n) by moving it with lseek on the real fd, under
 * its inode's position lock (one for all its fds: a dup() shares the
 * position, and two threads reserving through two fds that share one
 * would both get the same range), and then copies with no lock held, so
 * no lock of ours is held while application memory is touched.
 *
 * The sigsegv backend cannot serve a fault taken inside a system call: the
 * kernel returns EFAULT.  So with that backend, a read into or a write from
 * a buffer that lies in a managed mapping, on an fd that is not managed
 * (a pipe, a socket, another file), goes through a bounce buffer: the copy
 * between the mapping and the bounce buffer faults in user space, where
 * the backend serves it.  Calls on managed fds need no bounce: ufvm_pread()
 * and ufvm_pwrite() copy through their own bounce buffer.
 */
#define _GNU_SOURCE
#include <limits.h>
#include <linux/falloc.h>
#include <poll.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>

#include "preload/preload.h"

#define PL_BOUNCE_MAX	((size_t)64 << 20)
#define PL_COPY_CHUNK	((size_t)1 << 20)
#define PL_MIN(a, b) ((a) < (b) ? (a) : (b))

/* The teeth's per-fd position locks (PL_TEETH_FD_POSLOCK). */
#define PL_NFDPOSLOCKS	64
static pthread_mutex_t pl_fdposlock[PL_NFDPOSLOCKS] = {
	[0 ... PL_NFDPOSLOCKS - 1] = PTHREAD_MUTEX_INITIALIZER
};

/* The lock of the file position of @fd, an fd of @ino. */
static pthread_mutex_t *pl_pos_lock(struct pl_inode *ino, int fd)
{
	if (pl_teeth & PL_TEETH_FD_POSLOCK)	/* the bug, for tests */
		return &pl_fdposlock[(unsigned int)fd % PL_NFDPOSLOCKS];
	return &ino->pos_lock;
}

/*
 * The RWF_* flags of preadv2/pwritev2 that the kernel takes on a regular
 * file and that ufvm honours (DSYNC, SYNC, APPEND, NOAPPEND) or may ignore
 * (hints); any other, RWF_ATOMIC included (direct I/O only), fails with
 * EOPNOTSUPP, as an unknown flag does on the kernel.
 */
#define PL_RWF_NOAPPEND		0x20
#define PL_RWF_DONTCACHE	0x80
#define PL_RWF_NOSIGNAL		0x100
#define PL_RWF_KNOWN	(RWF_HIPRI | RWF_DSYNC | RWF_SYNC | RWF_NOWAIT | RWF_APPEND | \
			 PL_RWF_NOAPPEND | PL_RWF_DONTCACHE | PL_RWF_NOSIGNAL)

/* ---- helpers ---- */

/* May @fd be read?  Return: 0, -EBADF (opened O_WRONLY, as the kernel says) or -errno. */
static int pl_fd_readable(int fd)
{
	int fl = REAL(fcntl)(fd, F_GETFL);

	if (fl < 0)
		return -errno;
	return (fl & O_ACCMODE) == O_WRONLY ? -EBADF : 0;
}

/*
 * Does [@off, @off + @n) fit in a file offset?  The kernel refuses a
 * transfer whose end overflows one (rw_verify_area()).  Return: 0 or
 * -EINVAL.
 */
static int pl_range_fits(off_t off, size_t n)
{
	return (ssize_t)n < 0 || n > (size_t)(LLONG_MAX - off) ? -EINVAL : 0;
}

/* Read through ufvm, if @fd may be read; the kernel's refusals in its order. */
ssize_t pl_ino_pread(struct pl_inode *ino, int fd, void *buf, size_t n, off_t off)
{
	ssize_t r;

	if (off < 0)
		return -EINVAL;
	if ((r = pl_fd_readable(fd)) < 0 || (r = pl_range_fits(off, n)) < 0)
		return r;
	pl_guard++;
	r = ufvm_pread(ino->uf, buf, n, off);
	pl_guard--;
	return r;
}

/*
 * May @fd be written?  Return: its status flags (O_APPEND, O_DSYNC, ...),
 * -EBADF (opened O_RDONLY, as the kernel says) or -errno.
 */
static int pl_fd_wflags(int fd)
{
	int fl = REAL(fcntl)(fd, F_GETFL);

	if (fl < 0)
		return -errno;
	return (fl & O_ACCMODE) == O_RDONLY ? -EBADF : fl;
}

/*
 * How much of [buf, buf+n), from its start, may be read?  ufvm_pwrite()
 * copies from it in user space, where an unreadable page is a SIGSEGV,
 * while the kernel's write fails with EFAULT (or writes what comes before
 * the page).  So the kernel is asked about each page: process_vm_readv()
 * of one byte of it, many pages per call.  Managed pages are not asked
 * about (they are readable, and with the sigsegv backend the kernel would
 * say EFAULT for one not mapped yet).  Return: the readable length, page
 * granular; @n when the kernel cannot tell.
 */
static size_t pl_user_readable(const void *buf, size_t n)
{
	enum { BATCH = 256 };
	uintptr_t a = (uintptr_t)buf, end = a + n, p;
	struct iovec rem[BATCH], loc;
	char sink[BATCH];
	size_t k;
	ssize_t r;

	if (!n || end < a || pl_overlaps_managed(buf, n))
		return n;
	for (p = a & ~(PL_PAGE - 1); p < end; p += k * PL_PAGE) {
		for (k = 0; k < BATCH && p + k * PL_PAGE < end; k++)
			rem[k] = (struct iovec){ (void *)(k || p >= a ? p + k * PL_PAGE : a), 1 };
		loc = (struct iovec){ sink, k };
		r = syscall(SYS_process_vm_readv, __atomic_load_n(&pl_pid, __ATOMIC_RELAXED),
			    &loc, 1UL, rem, (unsigned long)k, 0UL);
		if (r < 0 && errno != EFAULT)
			return n;	/* not allowed here: as before, trust the buffer */
		if (r < (ssize_t)k) {
			uintptr_t bad = p + (size_t)(r > 0 ? r : 0) * PL_PAGE;

			return bad <= a ? 0 : bad - a;
		}
	}
	return n;
}

/*
 * Write through ufvm at @off; @fl, the fd's status flags: O_DSYNC/O_SYNC
 * make it synchronous.  An unreadable buffer is EFAULT (or a short write
 * up to its first unreadable page), as with the kernel.
 */
/*
 * A write through ufvm changed @ino's bytes: set the file's modification
 * and change times now, as the kernel's write does (ufvm's own write-back
 * sets them again when it writes the store).  Like the kernel, at most once
 * per tick of the coarse clock: one futimens() per tick and file.
 */
static void pl_touch(struct pl_inode *ino)
{
	const struct timespec now_ts[2] = { { .tv_nsec = UTIME_OMIT }, { .tv_nsec = UTIME_NOW } };
	struct timespec c;
	uint64_t now;

	if (clock_gettime(CLOCK_REALTIME_COARSE, &c))
		return;
	now = (uint64_t)c.tv_sec * 1000000000u + (uint64_t)c.tv_nsec;
	if (__atomic_load_n(&ino->touched, __ATOMIC_RELAXED) != now &&	/* no write in a tick */
	    __atomic_exchange_n(&ino->touched, now, __ATOMIC_RELAXED) != now)
		(void)REAL(futimens)(ino->priv_fd, now_ts);	/* not allowed: as it was */
}

static ssize_t pl_ino_pwrite_fl(struct pl_inode *ino, int fl, const void *buf, size_t n,
				off_t off)
{
	size_t ok = pl_user_readable(buf, n);
	ssize_t r;

	if (n && !ok)
		return -EFAULT;
	n = ok;
	pl_guard++;
	r = ufvm_pwrite(ino->uf, buf, n, off);
	if (r > 0)
		pl_touch(ino);
	if (r > 0 && (fl & O_DSYNC)) {
		int err = ufvm_fsync(ino->uf);

		if (err)
			r = err;
	}
	pl_guard--;
	return r;
}

/* Write through ufvm at @off (not appending), if @fd may be written. */
ssize_t pl_ino_pwrite(struct pl_inode *ino, int fd, const void *buf, size_t n, off_t off)
{
	int fl;

	if (off < 0)
		return -EINVAL;
	if ((fl = pl_fd_wflags(fd)) < 0)
		return fl;
	if (pl_range_fits(off, n))
		return -EINVAL;
	return pl_ino_pwrite_fl(ino, fl, buf, n, off);
}

static off_t pl_ino_size(struct pl_inode *ino)
{
	off_t size = 0;

	ufvm_file_size(ino->uf, &size);
	return size;
}

/*
 * Appends (O_APPEND, RWF_APPEND) are made as the kernel makes them under
 * its inode lock: ino->append_lock is held from finding the end of the
 * file until the write is done, so an append starts where the one before
 * it ended, and a failed or short append leaves nothing behind (no room
 * reserved past what was written).  Truncates take the lock too.  It is
 * held while the application's buffer is read (by ufvm_pwrite, whose
 * faults on a managed page are served by ufvm's threads or its fault
 * handler, which never enter the preload) and with pl_guard raised (a
 * signal handler of this thread goes to libc instead of waiting for it).
 */

/*
 * The end of the file, for an append.  Another process may have appended
 * through the kernel since ufvm learnt the size: the store is then longer
 * than ufvm's view, and an append at ufvm's end would overwrite those
 * bytes.  ufvm cannot be told a larger size without zeroing what lies
 * between (ufvm_truncate, or a write past its end, zero the range), so
 * the bytes between ufvm's end and the store's are read from the file and
 * written through ufvm at the same offsets: ufvm then has them, and its
 * end is the store's.  Context: the append lock held, pl_guard raised.
 * Return: the end of the file, or -errno.
 */
static off_t pl_append_adopt(struct pl_inode *ino)
{
	off_t size = pl_ino_size(ino), pos;
	struct stat st;
	ssize_t n, w;
	char *buf;

	if (REAL(fstat)(ino->priv_fd, &st) || st.st_size <= size)
		return size;
	buf = malloc(PL_COPY_CHUNK);
	if (!buf)
		return -ENOMEM;
	for (pos = size; pos < st.st_size; pos += w) {
		n = REAL(pread64)(ino->priv_fd, buf, PL_MIN(PL_COPY_CHUNK, (size_t)(st.st_size - pos)),
				  pos);
		if (n <= 0)
			break;	/* shortened meanwhile */
		w = ufvm_pwrite(ino->uf, buf, (size_t)n, pos);
		if (w <= 0) {
			free(buf);
			return w < 0 ? w : -EIO;
		}
	}
	free(buf);
	return pl_ino_size(ino);
}

/*
 * Take @ino's append lock and find where an append to it starts: the end
 * of the file, as ufvm and the kernel see it (pl_append_adopt).
 * Context: L not held.  Return: the position, the lock held; or -errno,
 * the lock dropped.
 */
static off_t pl_append_begin(struct pl_inode *ino)
{
	off_t pos;

	pl_guard++;
	pthread_mutex_lock(&ino->append_lock);
	pos = pl_append_adopt(ino);
	if (pos < 0) {
		pthread_mutex_unlock(&ino->append_lock);
		pl_guard--;
	}
	return pos;
}

static void pl_append_done(struct pl_inode *ino)
{
	pthread_mutex_unlock(&ino->append_lock);
	pl_guard--;
}

/*
 * In a fork child: the position and append locks may have been held by
 * threads the child does not have.  Context: L held, the only thread.
 */
static void pl_append_reinit(struct pl_inode *ino, void *arg)
{
	(void)arg;
	pthread_mutex_init(&ino->append_lock, NULL);
	pthread_mutex_init(&ino->pos_lock, NULL);
}

void pl_io_atfork_child_locked(void)
{
	pl_inode_for_each_locked(pl_append_reinit, NULL);
}

/* Truncate through ufvm, between two appends.  Return: 0 or -errno. */
static int pl_ino_truncate(struct pl_inode *ino, off_t len)
{
	int err;

	pl_guard++;
	pthread_mutex_lock(&ino->append_lock);
	err = ufvm_truncate(ino->uf, len);
	pl_append_done(ino);
	return err;
}

/* Set @fd's file position to @pos (after an append through it). */
static void pl_pos_set(struct pl_inode *ino, int fd, off_t pos)
{
	pthread_mutex_t *m = pl_pos_lock(ino, fd);

	pl_guard++;
	pthread_mutex_lock(m);
	REAL(lseek)(fd, pos, SEEK_SET);
	pthread_mutex_unlock(m);
	pl_guard--;
}

/*
 * Append @n bytes at the end of @ino's file; with @setpos, @fd's position
 * then moves to the end of what was written (write(2) on an O_APPEND fd;
 * not pwrite).  @fl: @fd's status flags.  Return: bytes written or -errno.
 */
static ssize_t pl_ino_append(struct pl_inode *ino, int fd, int fl, const void *buf, size_t n,
			     bool setpos)
{
	off_t pos;
	ssize_t r;

	if (!n)
		return 0;
	pos = pl_append_begin(ino);
	if (pos < 0)
		return pos;
	r = pl_ino_pwrite_fl(ino, fl, buf, n, pos);
	if (r > 0 && setpos)
		pl_pos_set(ino, fd, pos + r);
	pl_append_done(ino);
	return r;
}

/*
 * Reserve [pos, pos+n) of @fd's file position for a read (clipped to the
 * size) or a write that does not append.  Context: L not held.  Return:
 * the start position, or -errno; *n clipped.
 */
static off_t pl_pos_reserve(struct pl_inode *ino, int fd, size_t *n, bool write)
{
	pthread_mutex_t *m = pl_pos_lock(ino, fd);
	off_t pos, size;

	pl_guard++;	/* a signal handler must not wait for m: see pl_lock_acquire */
	pthread_mutex_lock(m);
	pos = REAL(lseek)(fd, 0, SEEK_CUR);
	if (pos < 0) {
		pos = -errno;
		goto out;
	}
	if (!write) {
		size = pl_ino_size(ino);
		*n = pos >= size ? 0 : PL_MIN(*n, (size_t)(size - pos));
	}
	if (REAL(lseek)(fd, pos + (off_t)*n, SEEK_SET) < 0)
		pos = -errno;
out:
	pthread_mutex_unlock(m);
	pl_guard--;
	return pos;
}

/* A transfer of @want at @pos did @done: move the position back to its end. */
static void pl_pos_settle(struct pl_inode *ino, int fd, off_t pos, size_t want, ssize_t done)
{
	pthread_mutex_t *m = pl_pos_lock(ino, fd);

	if (done >= 0 && (size_t)done == want)
		return;
	pl_guard++;
	pthread_mutex_lock(m);
	if (REAL(lseek)(fd, 0, SEEK_CUR) == pos + (off_t)want)
		REAL(lseek)(fd, pos + (done > 0 ? done : 0), SEEK_SET);
	pthread_mutex_unlock(m);
	pl_guard--;
}

static ssize_t pl_read_pos(struct pl_inode *ino, int fd, void *buf, size_t n)
{
	off_t pos = pl_pos_reserve(ino, fd, &n, false);
	ssize_t r;

	if (pos < 0)
		return pos;
	r = pl_ino_pread(ino, fd, buf, n, pos);
	pl_pos_settle(ino, fd, pos, n, r);
	return r;
}

/* write(2) through ufvm: at the file position, or appending with O_APPEND. */
static ssize_t pl_write_pos(struct pl_inode *ino, int fd, const void *buf, size_t n)
{
	int fl = pl_fd_wflags(fd);
	off_t pos;
	ssize_t r;

	if (fl < 0)
		return fl;
	if (fl & O_APPEND)
		return pl_ino_append(ino, fd, fl, buf, n, true);
	if (!n)
		return 0;
	pos = pl_pos_reserve(ino, fd, &n, true);
	if (pos < 0)
		return pos;
	r = pl_ino_pwrite_fl(ino, fl, buf, n, pos);
	pl_pos_settle(ino, fd, pos, n, r);
	return r;
}

/* Does a syscall buffer need bouncing (sigsegv backend, managed memory)? */
static bool pl_needs_bounce(const void *buf, size_t n)
{
	return pl_bounce && n && pl_overlaps_managed(buf, n);
}

static bool pl_iov_needs_bounce(const struct iovec *iov, int cnt)
{
	int i;

	if (!pl_bounce)
		return false;
	for (i = 0; i < cnt; i++)
		if (pl_needs_bounce(iov[i].iov_base, iov[i].iov_len))
			return true;
	return false;
}

static size_t pl_iov_len(const struct iovec *iov, int cnt)
{
	size_t n = 0;
	int i;

	for (i = 0; i < cnt; i++)
		n += iov[i].iov_len;
	return n;
}

static void pl_iov_scatter(const struct iovec *iov, int cnt, const char *src, size_t n)
{
	int i;

	for (i = 0; i < cnt && n; i++) {
		size_t c = PL_MIN(n, iov[i].iov_len);

		memcpy(iov[i].iov_base, src, c);
		src += c;
		n -= c;
	}
}

static size_t pl_iov_gather(const struct iovec *iov, int cnt, char *dst, size_t max)
{
	size_t n = 0;
	int i;

	for (i = 0; i < cnt && n < max; i++) {
		size_t c = PL_MIN(max - n, iov[i].iov_len);

		memcpy(dst + n, iov[i].iov_base, c);
		n += c;
	}
	return n;
}

/*
 * A read or write of an unmanaged fd, with a bounce buffer when the
 * application's buffer is managed memory and the backend is sigsegv.
 * @kind: 0 read, 1 pread, 2 write, 3 pwrite.
 */
static ssize_t pl_sys_rw(int kind, int fd, void *buf, size_t n, off_t off)
{
	size_t c;
	ssize_t r;
	char *b;

	if (!pl_needs_bounce(buf, n)) {
		switch (kind) {
		case 0: return REAL(read)(fd, buf, n);
		case 1: return REAL(pread64)(fd, buf, n, off);
		case 2: return REAL(write)(fd, buf, n);
		default: return REAL(pwrite64)(fd, buf, n, off);
		}
	}
	c = PL_MIN(n, PL_BOUNCE_MAX);
	b = malloc(c);
	if (!b) {
		errno = ENOMEM;
		return -1;
	}
	if (kind >= 2)
		memcpy(b, buf, c);	/* faults on the mapping are served here */
	switch (kind) {
	case 0: r = REAL(read)(fd, b, c); break;
	case 1: r = REAL(pread64)(fd, b, c, off); break;
	case 2: r = REAL(write)(fd, b, c); break;
	default: r = REAL(pwrite64)(fd, b, c, off); break;
	}
	if (kind < 2 && r > 0)
		memcpy(buf, b, (size_t)r);
	free(b);
	return r;
}

/*
 * Vector form of pl_sys_rw.  @kind: 0 readv, 1 preadv2, 2 writev, 3
 * pwritev2.  Kinds 0 and 2 with @flags are preadv2/pwritev2 at the file
 * position (offset -1): the flags go to the kernel as they came.
 */
static ssize_t pl_sys_rwv(int kind, int fd, const struct iovec *iov, int cnt, off_t off,
			  int flags)
{
	size_t n, c;
	ssize_t r;
	char *b;

	if (kind == 0 && flags) {
		kind = 1;
		off = -1;
	} else if (kind == 2 && flags) {
		kind = 3;
		off = -1;
	}
	if (!pl_iov_needs_bounce(iov, cnt)) {
		switch (kind) {
		case 0: return REAL(readv)(fd, iov, cnt);
		case 1: return REAL(preadv64v2)(fd, iov, cnt, off, flags);
		case 2: return REAL(writev)(fd, iov, cnt);
		default: return REAL(pwritev64v2)(fd, iov, cnt, off, flags);
		}
	}
	n = pl_iov_len(iov, cnt);
	c = PL_MIN(n, PL_BOUNCE_MAX);
	b = malloc(c ? c : 1);
	if (!b) {
		errno = ENOMEM;
		return -1;
	}
	if (kind >= 2)
		pl_iov_gather(iov, cnt, b, c);
	switch (kind) {
	case 0: r = REAL(read)(fd, b, c); break;
	case 1: r = REAL(preadv64v2)(fd, &(struct iovec){ b, c }, 1, off, flags); break;
	case 2: r = REAL(write)(fd, b, c); break;
	default: r = REAL(pwritev64v2)(fd, &(struct iovec){ b, c }, 1, off, flags); break;
	}
	if (kind < 2 && r > 0)
		pl_iov_scatter(iov, cnt, b, (size_t)r);
	free(b);
	return r;
}

/*
 * Read (@fl < 0) or write (@fl: @fd's status flags) @n bytes of
 * @iov[0..cnt) at @off, segment by segment, stopping at the first short
 * transfer.  Return: bytes transferred, or -errno if none.
 */
static ssize_t pl_ino_segs(struct pl_inode *ino, int fd, int fl, const struct iovec *iov,
			   int cnt, size_t n, off_t off)
{
	size_t done = 0;
	ssize_t r = 0;
	int i;

	for (i = 0; i < cnt && done < n; i++) {
		size_t c = PL_MIN(iov[i].iov_len, n - done);

		if (!c)
			continue;
		r = fl < 0 ? pl_ino_pread(ino, fd, iov[i].iov_base, c, off + (off_t)done) :
			     pl_ino_pwrite_fl(ino, fl, iov[i].iov_base, c, off + (off_t)done);
		if (r <= 0)
			break;
		done += (size_t)r;
		if ((size_t)r < c)
			break;
	}
	return done ? (ssize_t)done : r;
}

/*
 * Vector read of a managed file at @off (-1: the file position), segment
 * by segment, stopping at the first short read; the kernel's refusals
 * first, in its order.
 */
static ssize_t pl_ino_readv(struct pl_inode *ino, int fd, const struct iovec *iov, int cnt,
			    off_t off, int rwf)
{
	size_t n = pl_iov_len(iov, cnt);
	bool usepos = off == -1;
	ssize_t r;

	if (cnt < 0 || cnt > IOV_MAX || off < -1)
		return -EINVAL;	/* the kernel takes IOV_MAX (1024) segments at most */
	if ((r = pl_fd_readable(fd)) < 0)
		return r;	/* even when nothing is left to read */
	if (!n)
		return 0;
	if (rwf & ~PL_RWF_KNOWN)
		return -EOPNOTSUPP;
	if (usepos)
		off = pl_pos_reserve(ino, fd, &n, false);
	if (off < 0)
		return off;
	r = pl_ino_segs(ino, fd, -1, iov, cnt, n, off);
	if (usepos)
		pl_pos_settle(ino, fd, off, n, r);
	return r;
}

/*
 * Vector write to a managed file at @off (-1: the file position), the
 * kernel's refusals first, in its order.  A write to an O_APPEND fd
 * without RWF_NOAPPEND, or with RWF_APPEND, appends; it moves the file
 * position only with @off -1 (as Linux).
 */
static ssize_t pl_ino_writev(struct pl_inode *ino, int fd, const struct iovec *iov, int cnt,
			     off_t off, int rwf)
{
	size_t n = pl_iov_len(iov, cnt);
	bool usepos = off == -1;
	off_t pos;
	ssize_t r;
	int fl;

	if (cnt < 0 || cnt > IOV_MAX || off < -1)
		return -EINVAL;	/* the kernel takes IOV_MAX (1024) segments at most */
	fl = pl_fd_wflags(fd);
	if (fl < 0)
		return fl;
	if (!n)
		return 0;
	if (rwf & ~PL_RWF_KNOWN)
		return -EOPNOTSUPP;
	if (((fl & O_APPEND) || (rwf & RWF_APPEND)) && !(rwf & PL_RWF_NOAPPEND)) {
		pos = pl_append_begin(ino);
		if (pos < 0)
			return pos;
		r = pl_ino_segs(ino, fd, fl, iov, cnt, n, pos);
		if (r > 0 && usepos)
			pl_pos_set(ino, fd, pos + r);
		pl_append_done(ino);
	} else if (usepos) {
		pos = pl_pos_reserve(ino, fd, &n, true);
		if (pos < 0)
			return pos;
		r = pl_ino_segs(ino, fd, fl, iov, cnt, n, pos);
		pl_pos_settle(ino, fd, pos, n, r);
	} else {
		r = pl_ino_segs(ino, fd, fl, iov, cnt, n, off);
	}
	if (r > 0 && (rwf & (RWF_DSYNC | RWF_SYNC))) {
		int err;

		pl_guard++;
		err = ufvm_fsync(ino->uf);
		pl_guard--;
		if (err)
			return err;
	}
	return r;
}

/* ---- open, close, dup ---- */

static off_t pl_size_of(dev_t dev, ino_t ino);

/*
 * Open @fd's file again for writing and truncate it, as the kernel does
 * for an O_RDONLY|O_TRUNC open: write permission, a read-only file system,
 * a running executable.  (A file ufvm does not have: its close drops the
 * process's POSIX locks on it, which the program's open did not.)
 * Return: 0 or -errno.
 */
static int pl_reopen_trunc(int fd)
{
	char path[64];
	int w;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	w = REAL(open)(path, O_WRONLY | O_CLOEXEC | O_NOCTTY | O_TRUNC);
	if (w < 0)
		return -errno;
	REAL(close)(w);
	return 0;
}

/*
 * After the program's open: track the fd; O_TRUNC of a managed file
 * through ufvm (for O_RDONLY, once write permission is checked), of
 * another regular file by ftruncate (or, O_RDONLY, a reopen).
 */
static int pl_opened(int fd, int flags)
{
	bool rdonly = (flags & O_ACCMODE) == O_RDONLY;
	struct pl_inode *ino;
	int err;

	if (fd < 0 || (flags & O_PATH))
		return fd;
	pl_fd_track(fd);
	if (!(flags & O_TRUNC))
		return fd;
	ino = pl_fd_get(fd);
	if (ino) {
		/*
		 * The kernel's check of an O_RDONLY|O_TRUNC open is write
		 * permission: asked without opening the file, whose close would
		 * drop every POSIX lock the process holds on it.
		 */
		err = 0;
		if (rdonly) {
			char path[64];

			snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
			err = faccessat(AT_FDCWD, path, W_OK, AT_EACCESS) ? -errno : 0;
		}
		if (!err)
			err = pl_ino_truncate(ino, 0);
		pl_inode_put(ino);
	} else {
		struct stat st;

		err = 0;
		if (!REAL(fstat)(fd, &st) && S_ISREG(st.st_mode))
			err = rdonly ? pl_reopen_trunc(fd) : REAL(ftruncate)(fd, 0) ? -errno : 0;
	}
	if (err) {
		REAL(close)(fd);
		pl_fd_untrack(fd);
		errno = -err;
		return -1;
	}
	return fd;
}

/*
 * Could ufvm manage the file @path (at @dirfd) names now: an existing
 * regular file whose real path matches UFVM_MATCH?  Only for O_TRUNC
 * opens (realpath() costs a system call or two per component).
 */
static bool pl_may_manage(int dirfd, const char *path, int flags)
{
	char full[PATH_MAX], real[PATH_MAX];
	struct stat st;
	int n;

	if (REAL(fstatat)(dirfd, path, &st, (flags & O_NOFOLLOW) ? AT_SYMLINK_NOFOLLOW : 0) ||
	    !S_ISREG(st.st_mode))
		return false;
	if (path[0] == '/' || dirfd == AT_FDCWD)
		n = snprintf(full, sizeof(full), "%s", path);
	else	/* the directory's link resolves to its path */
		n = snprintf(full, sizeof(full), "/proc/self/fd/%d/%s", dirfd, path);
	if (n < 0 || (size_t)n >= sizeof(full) || !realpath(full, real))
		return true;	/* cannot tell: ufvm may have it */
	return pl_match(real) || pl_inode_known(st.st_dev, st.st_ino);	/* another name */
}

/*
 * The flags for the kernel's open of @path (at @dirfd): O_TRUNC is
 * applied by pl_opened(), once we know whether ufvm has the file; but an
 * O_RDONLY|O_TRUNC open of a file that ufvm does not have stays the
 * kernel's (pl_opened could only reopen it), and so does any open of a
 * file ufvm could not manage (a device, a path UFVM_MATCH leaves out, such
 * as a tracefs file, whose driver empties a buffer only for an O_TRUNC
 * open): there the truncation is the open's, atomic with it.
 */
static int pl_open_flags(int dirfd, const char *path, int flags)
{
	struct stat st;

	if (!(flags & O_TRUNC))
		return flags;
	if ((flags & O_ACCMODE) != O_RDONLY)
		return pl_may_manage(dirfd, path, flags) ? flags & ~O_TRUNC : flags;
	if (pl_any_active() &&
	    !REAL(fstatat)(dirfd, path, &st, (flags & O_NOFOLLOW) ? AT_SYMLINK_NOFOLLOW : 0) &&
	    S_ISREG(st.st_mode) && pl_size_of(st.st_dev, st.st_ino) >= 0)
		return flags & ~O_TRUNC;
	return flags;
}

static mode_t pl_mode(int flags, va_list ap)
{
	return (flags & (O_CREAT | O_TMPFILE)) ? (mode_t)va_arg(ap, int) : 0;
}

/* The open call @name of @path at @dirfd, its arguments before the flags in "...". */
#define PL_OPEN(name, dirfd, path, ...)					\
	do {								\
		int fd_, kfl_;						\
		if (PL_BYPASS())					\
			return REAL(name)(__VA_ARGS__, flags, mode);	\
		kfl_ = pl_open_flags(dirfd, path, flags);		\
		fd_ = REAL(name)(__VA_ARGS__, kfl_, mode);		\
		return pl_opened(fd_, (kfl_ & O_TRUNC) ? flags & ~O_TRUNC : flags); \
	} while (0)

PL_EXPORT int open(const char *path, int flags, ...)
{
	va_list ap;
	mode_t mode;

	va_start(ap, flags);
	mode = pl_mode(flags, ap);
	va_end(ap);
	PL_OPEN(open, AT_FDCWD, path, path);
}

PL_EXPORT int openat(int dirfd, const char *path, int flags, ...)
{
	va_list ap;
	mode_t mode;

	va_start(ap, flags);
	mode = pl_mode(flags, ap);
	va_end(ap);
	PL_OPEN(openat, dirfd, path, dirfd, path);
}

PL_EXPORT int __open_2(const char *path, int flags)
{
	mode_t mode = 0;

	PL_OPEN(open, AT_FDCWD, path, path);
}

PL_EXPORT int __openat_2(int dirfd, const char *path, int flags)
{
	mode_t mode = 0;

	PL_OPEN(openat, dirfd, path, dirfd, path);
}

PL_EXPORT int creat(const char *path, mode_t mode)
{
	int flags = O_CREAT | O_WRONLY | O_TRUNC;

	PL_OPEN(open, AT_FDCWD, path, path);
}

/*
 * Our own fds (the duplicates that keep managed files open) are invisible
 * to the program: closing one says EBADF, as if it were not open (a
 * program that closes every fd it does not know, e.g. a daemon, leaves
 * them alone), and a dup2() over one first moves ours elsewhere.
 */
PL_EXPORT int close(int fd)
{
	if (PL_BYPASS())
		return REAL(close)(fd);
	if (pl_fd_is_priv(fd))
		return (int)pl_ret(-EBADF);
	pl_fd_untrack(fd);
	return REAL(close)(fd);
}

PL_EXPORT int dup(int fd)
{
	int nfd = REAL(dup)(fd);

	if (nfd >= 0 && !PL_BYPASS())
		pl_fd_dup(fd, nfd);
	return nfd;
}

PL_EXPORT int dup2(int fd, int nfd)
{
	bool bypass = PL_BYPASS();
	int r;

	if (!bypass && fd != nfd && pl_fd_is_priv(nfd))
		pl_fd_evict_priv(nfd);
	r = REAL(dup2)(fd, nfd);
	if (r >= 0 && fd != nfd && !bypass)
		pl_fd_dup(fd, nfd);
	return r;
}

PL_EXPORT int dup3(int fd, int nfd, int flags)
{
	bool bypass = PL_BYPASS();
	int r;

	if (!bypass && fd != nfd && pl_fd_is_priv(nfd))
		pl_fd_evict_priv(nfd);
	r = REAL(dup3)(fd, nfd, flags);
	if (r >= 0 && !bypass)
		pl_fd_dup(fd, nfd);
	return r;
}

static int pl_fcntl(int (*real)(int, int, ...), int fd, int cmd, void *arg, bool bypass)
{
	int r = real(fd, cmd, arg);

	if (r >= 0 && !bypass && (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC))
		pl_fd_dup(fd, r);
	return r;
}

PL_EXPORT int fcntl(int fd, int cmd, ...)
{
	va_list ap;
	void *arg;

	va_start(ap, cmd);
	arg = va_arg(ap, void *);
	va_end(ap);
	return pl_fcntl(REAL(fcntl), fd, cmd, arg, PL_BYPASS());
}

/* ---- read and write ---- */

static ssize_t pl_read(int fd, void *buf, size_t n)
{
	struct pl_inode *ino = pl_fd_get(fd);
	ssize_t r;

	if (!ino)
		return pl_sys_rw(0, fd, buf, n, 0);
	r = pl_read_pos(ino, fd, buf, n);
	pl_inode_put(ino);
	return pl_ret(r);
}

static ssize_t pl_pread(int fd, void *buf, size_t n, off_t off)
{
	struct pl_inode *ino = pl_fd_get(fd);
	ssize_t r;

	if (!ino)
		return pl_sys_rw(1, fd, buf, n, off);
	r = pl_ino_pread(ino, fd, buf, n, off);
	pl_inode_put(ino);
	return pl_ret(r);
}

static ssize_t pl_write(int fd, const void *buf, size_t n)
{
	struct pl_inode *ino = pl_fd_get(fd);
	ssize_t r;

	if (!ino)
		return pl_sys_rw(2, fd, (void *)buf, n, 0);
	r = pl_write_pos(ino, fd, buf, n);
	pl_inode_put(ino);
	return pl_ret(r);
}

/* pwrite: on an O_APPEND fd it appends, as Linux's does, without moving the position. */
static ssize_t pl_pwrite(int fd, const void *buf, size_t n, off_t off)
{
	struct pl_inode *ino = pl_fd_get(fd);
	ssize_t r;
	int fl;

	if (!ino)
		return pl_sys_rw(3, fd, (void *)buf, n, off);
	if (off < 0)
		r = -EINVAL;
	else if ((fl = pl_fd_wflags(fd)) < 0)
		r = fl;
	else if (pl_range_fits(off, n))
		r = -EINVAL;
	else if (fl & O_APPEND)
		r = pl_ino_append(ino, fd, fl, buf, n, false);
	else
		r = pl_ino_pwrite_fl(ino, fl, buf, n, off);
	pl_inode_put(ino);
	return pl_ret(r);
}

/* @kind as pl_sys_rwv; @off -1 for the file position. */
static ssize_t pl_rwv(int kind, int fd, const struct iovec *iov, int cnt, off_t off, int flags)
{
	struct pl_inode *ino = pl_fd_get(fd);
	ssize_t r;

	if (!ino)
		return pl_sys_rwv(kind, fd, iov, cnt, off, flags);
	r = kind >= 2 ? pl_ino_writev(ino, fd, iov, cnt, off, flags) :
			pl_ino_readv(ino, fd, iov, cnt, off, flags);
	pl_inode_put(ino);
	return pl_ret(r);
}

PL_EXPORT ssize_t read(int fd, void *buf, size_t n)
{
	if (PL_BYPASS())
		return REAL(read)(fd, buf, n);
	return pl_read(fd, buf, n);
}

PL_EXPORT ssize_t __read_chk(int fd, void *buf, size_t n, size_t buflen)
{
	if (PL_BYPASS() || n > buflen)
		return REAL(__read_chk)(fd, buf, n, buflen);
	return pl_read(fd, buf, n);
}

PL_EXPORT ssize_t pread(int fd, void *buf, size_t n, off_t off)
{
	if (PL_BYPASS())
		return REAL(pread)(fd, buf, n, off);
	return pl_pread(fd, buf, n, off);
}

PL_EXPORT ssize_t __pread_chk(int fd, void *buf, size_t n, off_t off, size_t buflen)
{
	if (PL_BYPASS() || n > buflen)
		return REAL(__pread_chk)(fd, buf, n, off, buflen);
	return pl_pread(fd, buf, n, off);
}

PL_EXPORT ssize_t write(int fd, const void *buf, size_t n)
{
	if (PL_BYPASS())
		return REAL(write)(fd, buf, n);
	return pl_write(fd, buf, n);
}

PL_EXPORT ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
	if (PL_BYPASS())
		return REAL(pwrite)(fd, buf, n, off);
	return pl_pwrite(fd, buf, n, off);
}

PL_EXPORT ssize_t readv(int fd, const struct iovec *iov, int cnt)
{
	if (PL_BYPASS())
		return REAL(readv)(fd, iov, cnt);
	return pl_rwv(0, fd, iov, cnt, -1, 0);
}

PL_EXPORT ssize_t writev(int fd, const struct iovec *iov, int cnt)
{
	if (PL_BYPASS())
		return REAL(writev)(fd, iov, cnt);
	return pl_rwv(2, fd, iov, cnt, -1, 0);
}

PL_EXPORT ssize_t preadv(int fd, const struct iovec *iov, int cnt, off_t off)
{
	if (PL_BYPASS())
		return REAL(preadv)(fd, iov, cnt, off);
	return off < 0 ? pl_ret(-EINVAL) : pl_rwv(1, fd, iov, cnt, off, 0);
}

PL_EXPORT ssize_t pwritev(int fd, const struct iovec *iov, int cnt, off_t off)
{
	if (PL_BYPASS())
		return REAL(pwritev)(fd, iov, cnt, off);
	return off < 0 ? pl_ret(-EINVAL) : pl_rwv(3, fd, iov, cnt, off, 0);
}

PL_EXPORT ssize_t preadv2(int fd, const struct iovec *iov, int cnt, off_t off, int flags)
{
	if (PL_BYPASS())
		return REAL(preadv2)(fd, iov, cnt, off, flags);
	return pl_rwv(off == -1 ? 0 : 1, fd, iov, cnt, off, flags);
}

PL_EXPORT ssize_t pwritev2(int fd, const struct iovec *iov, int cnt, off_t off, int flags)
{
	if (PL_BYPASS())
		return REAL(pwritev2)(fd, iov, cnt, off, flags);
	return pl_rwv(off == -1 ? 2 : 3, fd, iov, cnt, off, flags);
}

/* ---- position, size, sync ---- */

static off_t pl_lseek(int fd, off_t off, int whence)
{
	struct pl_inode *ino;
	off_t size, pos;

	if (whence != SEEK_END && whence != SEEK_DATA && whence != SEEK_HOLE)
		return REAL(lseek)(fd, off, whence);
	ino = pl_fd_get(fd);
	if (!ino)
		return REAL(lseek)(fd, off, whence);
	size = pl_ino_size(ino);
	pl_inode_put(ino);
	switch (whence) {
	case SEEK_END:
		pos = size + off;
		break;
	case SEEK_DATA:		/* ufvm keeps no hole map: data up to the end */
		pos = off;
		break;
	default:
		pos = size;
		break;
	}
	if (whence != SEEK_END && (off < 0 || off >= size))
		return pl_ret(-ENXIO);	/* before the start too, as ext4's and tmpfs's */
	return REAL(lseek)(fd, pos, SEEK_SET);
}

PL_EXPORT off_t lseek(int fd, off_t off, int whence)
{
	if (PL_BYPASS())
		return REAL(lseek)(fd, off, whence);
	return pl_lseek(fd, off, whence);
}

static int pl_ftruncate(int fd, off_t len)
{
	struct pl_inode *ino = pl_fd_get(fd);
	int fl, err;

	if (!ino)
		return REAL(ftruncate)(fd, len);
	fl = REAL(fcntl)(fd, F_GETFL);
	if (len < 0 || fl < 0 || (fl & O_ACCMODE) == O_RDONLY) {
		err = len < 0 || fl >= 0 ? -EINVAL : -errno;
	} else {
		err = pl_ino_truncate(ino, len);
	}
	pl_inode_put(ino);
	return (int)pl_ret(err);
}

PL_EXPORT int ftruncate(int fd, off_t len)
{
	if (PL_BYPASS())
		return REAL(ftruncate)(fd, len);
	return pl_ftruncate(fd, len);
}

/* truncate(path): through ufvm when the file is managed. */
/*
 * The active inode of @path at @dirfd (@atflags: AT_SYMLINK_NOFOLLOW),
 * referenced, if it is one, and with @writable only if ufvm has it
 * read-write; else NULL.  Context: L not held.
 */
static struct pl_inode *pl_active_at(int dirfd, const char *path, int atflags, bool writable)
{
	struct pl_inode *ino;
	struct stat st;

	if (!pl_any_active() || REAL(fstatat)(dirfd, path, &st, atflags & AT_SYMLINK_NOFOLLOW) ||
	    !S_ISREG(st.st_mode))
		return NULL;
	pl_lock_acquire();
	ino = pl_inode_lookup_locked(st.st_dev, st.st_ino);
	if (ino && ino->active && (ino->writable || !writable))
		pl_inode_get_locked(ino);
	else
		ino = NULL;
	pl_lock_release();
	return ino;
}

static int pl_truncate_path(const char *path, off_t len, bool *done)
{
	struct pl_inode *ino = pl_active_at(AT_FDCWD, path, 0, true);
	int err;

	*done = false;
	if (!ino)
		return 0;
	*done = true;
	/* The kernel's checks of the caller, by this path, in its order. */
	if (len < 0)
		err = -EINVAL;
	else if (faccessat(AT_FDCWD, path, W_OK, AT_EACCESS))
		err = -errno;
	else
		err = pl_ino_truncate(ino, len);
	pl_inode_put(ino);
	return err;
}

PL_EXPORT int truncate(const char *path, off_t len)
{
	bool done;
	int err;

	if (PL_BYPASS())
		return REAL(truncate)(path, len);
	err = pl_truncate_path(path, len, &done);
	return done ? (int)pl_ret(err) : REAL(truncate)(path, len);
}

/*
 * fallocate on a managed file: PUNCH_HOLE and ZERO_RANGE through ufvm
 * (every mapping sees zeros); plain allocation by the kernel, then the
 * size through ufvm.  Return: 0 or -errno.
 */
static int pl_ino_fallocate(struct pl_inode *ino, int fd, int mode, off_t off, off_t len)
{
	off_t size = pl_ino_size(ino), end;
	int err = 0;

	/* The kernel's checks, in its order (vfs_fallocate). */
	if (off < 0 || len <= 0)
		return -EINVAL;
	if (mode & ~(FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE))
		return -EOPNOTSUPP;	/* collapse, insert, unshare: not through ufvm */
	if ((mode & FALLOC_FL_PUNCH_HOLE) &&
	    (!(mode & FALLOC_FL_KEEP_SIZE) || (mode & FALLOC_FL_ZERO_RANGE)))
		return -EOPNOTSUPP;
	err = pl_fd_wflags(fd);		/* ufvm's own handle may write; @fd may not */
	if (err < 0)
		return err;
	if (__builtin_add_overflow(off, len, &end))
		return -EFBIG;
	err = 0;
	pl_guard++;
	if (mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE)) {
		if (off < size)
			err = ufvm_punch(ino->uf, off, (end < size ? end : size) - off);
	} else if (REAL(fallocate)(fd, mode, off, len)) {
		err = -errno;
	}
	if (!err && !(mode & FALLOC_FL_KEEP_SIZE) && end > size)
		err = ufvm_truncate(ino->uf, end);
	pl_guard--;
	return err;
}

static int pl_fallocate(int fd, int mode, off_t off, off_t len)
{
	struct pl_inode *ino = pl_fd_get(fd);
	int err;

	if (!ino)
		return REAL(fallocate)(fd, mode, off, len);
	err = pl_ino_fallocate(ino, fd, mode, off, len);
	pl_inode_put(ino);
	return (int)pl_ret(err);
}

PL_EXPORT int fallocate(int fd, int mode, off_t off, off_t len)
{
	if (PL_BYPASS())
		return REAL(fallocate)(fd, mode, off, len);
	return pl_fallocate(fd, mode, off, len);
}

/* posix_fallocate returns the error number. */
static int pl_posix_fallocate(int fd, off_t off, off_t len)
{
	struct pl_inode *ino = pl_fd_get(fd);
	int err;

	if (!ino)
		return REAL(posix_fallocate)(fd, off, len);
	err = pl_ino_fallocate(ino, fd, 0, off, len);
	if (err == -EOPNOTSUPP) {
		/* The file system cannot allocate: the size is what matters. */
		off_t size = pl_ino_size(ino);

		pl_guard++;
		err = off + len > size ? ufvm_truncate(ino->uf, off + len) : 0;
		pl_guard--;
	}
	pl_inode_put(ino);
	return -err;
}

PL_EXPORT int posix_fallocate(int fd, off_t off, off_t len)
{
	if (PL_BYPASS())
		return REAL(posix_fallocate)(fd, off, len);
	return pl_posix_fallocate(fd, off, len);
}

/* fsync and friends: ufvm_fsync() on a managed fd.  @done: it was managed. */
static int pl_fsync(int fd, bool *done)
{
	struct pl_inode *ino = pl_fd_get(fd);
	int err;

	*done = ino != NULL;
	if (!ino)
		return 0;
	pl_guard++;
	err = ufvm_fsync(ino->uf);
	pl_guard--;
	pl_inode_put(ino);
	return (int)pl_ret(err);
}

#define PL_FSYNC(fd, realcall)						\
	do {								\
		bool done_ = false;					\
		int r_;							\
		if (PL_BYPASS())					\
			return realcall;				\
		r_ = pl_fsync(fd, &done_);				\
		return done_ ? r_ : realcall;				\
	} while (0)

/*
 * ---- utimensat and friends: a managed file's times ----
 *
 * ufvm writes a file's dirty pages back later, and the store's write sets
 * its modification time then: times the program set meanwhile (tar, cp
 * -p, rsync keep a source's) would not stay.  So the dirty pages are
 * written back first; what the program writes after the call changes the
 * times again, as on the kernel.  glibc's utime, utimes and the futimes
 * calls reach the kernel directly, so each is interposed.
 */

/* Before a times call on @path at @dirfd, or on the fd @dirfd if @path is NULL. */
static void pl_times_first(int dirfd, const char *path, int atflags)
{
	struct pl_inode *ino = path ? pl_active_at(dirfd, path, atflags, false) : pl_fd_get(dirfd);

	if (!ino)
		return;
	pl_guard++;
	(void)ufvm_writeback(ino->uf);	/* failed: the call still goes on */
	pl_guard--;
	pl_inode_put(ino);
}

#define PL_TIMES(dirfd, path, atflags, realcall)			\
	do {								\
		if (!PL_BYPASS())					\
			pl_times_first(dirfd, path, atflags);		\
		return realcall;					\
	} while (0)

PL_EXPORT int utimensat(int dirfd, const char *path, const struct timespec t[2], int flags)
{
	PL_TIMES(dirfd, path, flags, REAL(utimensat)(dirfd, path, t, flags));
}

PL_EXPORT int futimens(int fd, const struct timespec t[2])
{
	PL_TIMES(fd, NULL, 0, REAL(futimens)(fd, t));
}

PL_EXPORT int utimes(const char *path, const struct timeval t[2])
{
	PL_TIMES(AT_FDCWD, path, 0, REAL(utimes)(path, t));
}

PL_EXPORT int lutimes(const char *path, const struct timeval t[2])
{
	PL_TIMES(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW, REAL(lutimes)(path, t));
}

PL_EXPORT int futimes(int fd, const struct timeval t[2])
{
	PL_TIMES(fd, NULL, 0, REAL(futimes)(fd, t));
}

PL_EXPORT int futimesat(int dirfd, const char *path, const struct timeval t[2])
{
	PL_TIMES(dirfd, path, 0, REAL(futimesat)(dirfd, path, t));
}

PL_EXPORT int utime(const char *path, const struct utimbuf *t)
{
	PL_TIMES(AT_FDCWD, path, 0, REAL(utime)(path, t));
}

PL_EXPORT int fsync(int fd)
{
	PL_FSYNC(fd, REAL(fsync)(fd));
}

PL_EXPORT int fdatasync(int fd)
{
	PL_FSYNC(fd, REAL(fdatasync)(fd));
}

PL_EXPORT int sync_file_range(int fd, off64_t off, off64_t len, unsigned int flags)
{
	/* The kernel's refusals first: ufvm would write back whatever asked. */
	if (flags & ~(unsigned int)(SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
				    SYNC_FILE_RANGE_WAIT_AFTER) ||
	    off < 0 || len < 0 || len > LLONG_MAX - off) {
		errno = EINVAL;
		return -1;
	}
	PL_FSYNC(fd, REAL(sync_file_range)(fd, off, len, flags));
}

PL_EXPORT void sync(void)
{
	if (!PL_BYPASS())
		pl_inode_sync_all();
	REAL(sync)();
}

PL_EXPORT int syncfs(int fd)
{
	if (!PL_BYPASS())
		pl_inode_sync_all();
	return REAL(syncfs)(fd);
}

/* ---- stat: the size is ufvm's ---- */

/* The managed size of (dev, ino), or -1. */
static off_t pl_size_of(dev_t dev, ino_t ino)
{
	struct pl_inode *p;
	off_t size = -1;

	if (!pl_any_active())
		return -1;
	pl_lock_acquire();
	p = pl_inode_lookup_locked(dev, ino);
	if (p && p->active)
		ufvm_file_size(p->uf, &size);
	pl_lock_release();
	return size;
}

static void pl_fix_stat(struct stat *st)
{
	off_t size;

	if (!S_ISREG(st->st_mode))
		return;
	size = pl_size_of(st->st_dev, st->st_ino);
	if (size >= 0)
		st->st_size = size;
}

#define PL_STAT(call, st)						\
	do {								\
		int r_ = (call);					\
		if (!r_ && !PL_BYPASS())				\
			pl_fix_stat((struct stat *)(st));		\
		return r_;						\
	} while (0)

PL_EXPORT int fstat(int fd, struct stat *st)
{
	PL_STAT(REAL(fstat)(fd, st), st);
}

PL_EXPORT int fstat64(int fd, struct stat64 *st)
{
	PL_STAT(REAL(fstat64)(fd, st), st);
}

PL_EXPORT int stat(const char *path, struct stat *st)
{
	PL_STAT(REAL(stat)(path, st), st);
}

PL_EXPORT int stat64(const char *path, struct stat64 *st)
{
	PL_STAT(REAL(stat64)(path, st), st);
}

PL_EXPORT int lstat(const char *path, struct stat *st)
{
	PL_STAT(REAL(lstat)(path, st), st);
}

PL_EXPORT int lstat64(const char *path, struct stat64 *st)
{
	PL_STAT(REAL(lstat64)(path, st), st);
}

PL_EXPORT int fstatat(int dirfd, const char *path, struct stat *st, int flags)
{
	PL_STAT(REAL(fstatat)(dirfd, path, st, flags), st);
}

PL_EXPORT int fstatat64(int dirfd, const char *path, struct stat64 *st, int flags)
{
	PL_STAT(REAL(fstatat64)(dirfd, path, st, flags), st);
}

PL_EXPORT int __fxstat(int ver, int fd, struct stat *st)
{
	PL_STAT(REAL(__fxstat)(ver, fd, st), st);
}

PL_EXPORT int __fxstat64(int ver, int fd, struct stat64 *st)
{
	PL_STAT(REAL(__fxstat64)(ver, fd, st), st);
}

PL_EXPORT int __xstat(int ver, const char *path, struct stat *st)
{
	PL_STAT(REAL(__xstat)(ver, path, st), st);
}

PL_EXPORT int __xstat64(int ver, const char *path, struct stat64 *st)
{
	PL_STAT(REAL(__xstat64)(ver, path, st), st);
}

PL_EXPORT int __lxstat(int ver, const char *path, struct stat *st)
{
	PL_STAT(REAL(__lxstat)(ver, path, st), st);
}

PL_EXPORT int __lxstat64(int ver, const char *path, struct stat64 *st)
{
	PL_STAT(REAL(__lxstat64)(ver, path, st), st);
}

PL_EXPORT int __fxstatat(int ver, int dirfd, const char *path, struct stat *st, int flags)
{
	PL_STAT(REAL(__fxstatat)(ver, dirfd, path, st, flags), st);
}

PL_EXPORT int __fxstatat64(int ver, int dirfd, const char *path, struct stat64 *st, int flags)
{
	PL_STAT(REAL(__fxstatat64)(ver, dirfd, path, st, flags), st);
}

PL_EXPORT int statx(int dirfd, const char *path, int flags, unsigned int mask,
		    struct statx *stx)
{
	int r = REAL(statx)(dirfd, path, flags, mask, stx);
	off_t size;

	if (r || PL_BYPASS() || !(stx->stx_mask & STATX_SIZE) || !S_ISREG(stx->stx_mode))
		return r;
	size = pl_size_of(makedev(stx->stx_dev_major, stx->stx_dev_minor), stx->stx_ino);
	if (size >= 0)
		stx->stx_size = (uint64_t)size;
	return r;
}

/* ---- copy_file_range, sendfile: read and write through ufvm ---- */

/* Read @n at @pos from @fd: ufvm for a managed file, else pread. */
static ssize_t pl_read_at(struct pl_inode *ino, int fd, void *buf, size_t n, off_t pos)
{
	ssize_t r;

	if (ino)
		return pl_ino_pread(ino, fd, buf, n, pos);
	r = REAL(pread64)(fd, buf, n, pos);
	return r < 0 ? -errno : r;
}

static ssize_t pl_write_at(struct pl_inode *ino, int fd, const void *buf, size_t n, off_t pos)
{
	ssize_t r;

	if (ino)
		return pl_ino_pwrite(ino, fd, buf, n, pos);
	r = REAL(pwrite64)(fd, buf, n, pos);
	return r < 0 ? -errno : r;
}

/*
 * Copy @len bytes from @in to @out through a bounce buffer, either side at
 * *@pin / *@pout (updated), or at its file position if that is NULL.
 * Return: bytes copied, or -errno if none.
 */
static ssize_t pl_copy(struct pl_inode *ii, int in, off64_t *pin, struct pl_inode *io,
		       int out, off64_t *pout, size_t len)
{
	off_t pi = pin ? *pin : REAL(lseek)(in, 0, SEEK_CUR), po = pout ? *pout : 0;
	char *buf = malloc(PL_MIN(len, PL_COPY_CHUNK) + 1);
	size_t total = 0;
	ssize_t r = 0;

	if (!buf || pi < 0) {
		r = !buf ? -ENOMEM : -errno;
		goto out;
	}
	while (total < len) {
		size_t done = 0;

		r = pl_read_at(ii, in, buf, PL_MIN(len - total, PL_COPY_CHUNK), pi);
		if (r <= 0)
			break;
		while (done < (size_t)r) {
			ssize_t w;

			if (pout)
				w = pl_write_at(io, out, buf + done, (size_t)r - done, po + (off_t)done);
			else if (io)
				w = pl_write_pos(io, out, buf + done, (size_t)r - done);
			else if ((w = REAL(write)(out, buf + done, (size_t)r - done)) < 0)
				w = -errno;
			if (w <= 0) {
				r = w;
				break;
			}
			done += (size_t)w;
		}
		total += done;
		pi += (off_t)done;
		po += (off_t)done;
		if (r <= 0)
			break;
	}
	if (pin)
		*pin = pi;
	else
		REAL(lseek)(in, pi, SEEK_SET);
	if (pout)
		*pout = po;
out:
	free(buf);
	return total ? (ssize_t)total : r;
}

/*
 * The kernel's own refusals of a copy_file_range (generic_file_rw_checks,
 * generic_copy_file_checks) that the copy through ufvm would not make, in
 * its order: EBADF for an @in not open for reading, an @out not open for
 * writing or opened O_APPEND; EOVERFLOW for an offset that wraps with
 * @len, EINVAL for a negative one; EINVAL for overlapping ranges of one
 * file (@len clipped to the end of the file first).  Return: 0 or -errno.
 */
static int pl_copy_checks(struct pl_inode *ii, int in, const off64_t *pin,
			  struct pl_inode *io, int out, const off64_t *pout, size_t len)
{
	int fi = REAL(fcntl)(in, F_GETFL), fo = fi < 0 ? -1 : REAL(fcntl)(out, F_GETFL);
	off_t pi, po, size;

	if (fi < 0 || fo < 0)
		return -errno;
	if ((fi & O_ACCMODE) == O_WRONLY || (fo & O_ACCMODE) == O_RDONLY || (fo & O_APPEND))
		return -EBADF;
	pi = pin ? *pin : REAL(lseek)(in, 0, SEEK_CUR);
	po = pout ? *pout : REAL(lseek)(out, 0, SEEK_CUR);
	if (len && ((uint64_t)pi + len < (uint64_t)pi || (uint64_t)po + len < (uint64_t)po))
		return -EOVERFLOW;
	if (pi < 0 || po < 0)
		return -EINVAL;
	if (!ii || ii != io)
		return 0;
	size = pl_ino_size(ii);
	len = pi >= size ? 0 : PL_MIN(len, (size_t)(size - pi));
	if (po + (off_t)len > pi && po < pi + (off_t)len)
		return -EINVAL;
	return 0;
}

PL_EXPORT ssize_t copy_file_range(int in, off64_t *off_in, int out, off64_t *off_out,
				  size_t len, unsigned int flags)
{
	struct pl_inode *ii, *io;
	ssize_t r;

	if (PL_BYPASS())
		return REAL(copy_file_range)(in, off_in, out, off_out, len, flags);
	ii = pl_fd_get(in);
	io = pl_fd_get(out);
	if (!ii && !io)
		r = REAL(copy_file_range)(in, off_in, out, off_out, len, flags);
	else if (flags)
		r = pl_ret(-EINVAL);
	else if ((r = pl_copy_checks(ii, in, off_in, io, out, off_out, len)) < 0)
		r = pl_ret(r);
	else
		r = pl_ret(pl_copy(ii, in, off_in, io, out, off_out, len));
	pl_inode_put(ii);
	pl_inode_put(io);
	return r;
}

PL_EXPORT ssize_t sendfile(int out, int in, off_t *offset, size_t count)
{
	struct pl_inode *ii, *io;
	ssize_t r;
	int fl;

	if (PL_BYPASS())
		return REAL(sendfile)(out, in, offset, count);
	ii = pl_fd_get(in);
	io = pl_fd_get(out);
	if (!ii && !io)
		r = REAL(sendfile)(out, in, offset, count);
	else if ((offset && *offset < 0) || ((fl = REAL(fcntl)(out, F_GETFL)) >= 0 && (fl & O_APPEND)))
		r = pl_ret(-EINVAL);	/* the kernel's refusals: no append */
	else
		r = pl_ret(pl_copy(ii, in, offset, io, out, NULL, count));
	pl_inode_put(ii);
	pl_inode_put(io);
	return r;
}

/*
 * ---- splice: the kernel's out of a managed file, ufvm's into one ----
 *
 * One side of a splice is a pipe.  Out of a managed file, the kernel reads
 * the file, so ufvm writes the file back first (its dirty pages, which the
 * mappings may have written since the last sync) and the kernel splices
 * as usual: its offsets, file position, partial transfers into a full
 * pipe and refusals are all its own.  Into a managed file the kernel's
 * write would land behind ufvm's cache (and a later write-back of a page
 * ufvm had dirty would undo it), so the bytes are read from the pipe and
 * written through ufvm, after the kernel's refusals, in its order.
 */
#define PL_SPLICE_F_ALL	(SPLICE_F_MOVE | SPLICE_F_NONBLOCK | SPLICE_F_MORE | SPLICE_F_GIFT)

/*
 * Splice up to @len bytes from the pipe @in into @ino's file (@out) at
 * *@poff (moved), or at @out's file position if @poff is NULL.  As the
 * kernel's, it waits for the pipe to hold something (not with
 * SPLICE_F_NONBLOCK or an O_NONBLOCK pipe: -EAGAIN), returns 0 when it is
 * empty and has no writer, and moves what the pipe holds, up to @len and
 * 1 MiB.  Bytes read from the pipe that ufvm then fails to write are lost
 * (the kernel's leave them in the pipe).  Return: bytes moved or -errno.
 */
static ssize_t pl_splice_into(struct pl_inode *ino, int in, const loff_t *off_in, int out,
			      loff_t *poff, size_t len, unsigned int flags)
{
	int fi = REAL(fcntl)(in, F_GETFL), fo;
	size_t done = 0;
	struct stat st;
	ssize_t n, w;
	off_t pos;
	char *buf;

	if (!len)
		return 0;
	if (flags & ~PL_SPLICE_F_ALL)
		return -EINVAL;
	if (fi < 0 || REAL(fstat)(in, &st))
		return -errno;
	if (S_ISFIFO(st.st_mode) && off_in)
		return -ESPIPE;
	if ((fi & O_ACCMODE) == O_WRONLY)
		return -EBADF;
	fo = pl_fd_wflags(out);
	if (fo < 0)
		return fo;
	if (!S_ISFIFO(st.st_mode) || (fo & O_APPEND) || (poff && *poff < 0))
		return -EINVAL;	/* no pipe on either side; append; rw_verify_area */
	if (((flags & SPLICE_F_NONBLOCK) || (fi & O_NONBLOCK)) &&
	    !poll(&(struct pollfd){ .fd = in, .events = POLLIN }, 1, 0))
		return -EAGAIN;	/* else read() returns at once (data, or no writer)
				   unless another reader empties the pipe first */
	buf = malloc(PL_MIN(len, PL_COPY_CHUNK));
	if (!buf)
		return -ENOMEM;
	n = REAL(read)(in, buf, PL_MIN(len, PL_COPY_CHUNK));
	if (n < 0)
		n = -errno;
	while (n > 0 && done < (size_t)n) {
		if (poff) {
			pos = *poff + (off_t)done;
			w = pl_ino_pwrite_fl(ino, fo, buf + done, (size_t)n - done, pos);
		} else {
			w = pl_write_pos(ino, out, buf + done, (size_t)n - done);
		}
		if (w <= 0) {
			n = done ? (ssize_t)done : w ? w : -EIO;
			break;
		}
		done += (size_t)w;
	}
	if (poff && done)
		*poff += (loff_t)done;
	free(buf);
	return n > 0 ? (ssize_t)done : n;
}

PL_EXPORT ssize_t splice(int in, loff_t *off_in, int out, loff_t *off_out, size_t len,
			 unsigned int flags)
{
	struct pl_inode *ii, *io;
	ssize_t r;
	int err = 0;

	if (PL_BYPASS())
		return REAL(splice)(in, off_in, out, off_out, len, flags);
	ii = pl_fd_get(in);
	io = pl_fd_get(out);
	if (io) {
		r = pl_ret(pl_splice_into(io, in, off_in, out, off_out, len, flags));
	} else {
		if (ii) {
			pl_guard++;
			err = ufvm_writeback(ii->uf);
			pl_guard--;
		}
		r = err ? pl_ret(err) : REAL(splice)(in, off_in, out, off_out, len, flags);
	}
	pl_inode_put(ii);
	pl_inode_put(io);
	return r;
}

/* On x86-64 the *64 entry points are the same functions as the plain ones. */
_Static_assert(sizeof(off_t) == sizeof(off64_t), "64-bit off_t only");
PL_ALIAS(open64, open);
PL_ALIAS(openat64, openat);
PL_ALIAS(__open64_2, __open_2);
PL_ALIAS(__openat64_2, __openat_2);
PL_ALIAS(creat64, creat);
PL_ALIAS(fcntl64, fcntl);
PL_ALIAS(pread64, pread);
PL_ALIAS(__pread64_chk, __pread_chk);
PL_ALIAS(pwrite64, pwrite);
PL_ALIAS(preadv64, preadv);
PL_ALIAS(pwritev64, pwritev);
PL_ALIAS(preadv64v2, preadv2);
PL_ALIAS(pwritev64v2, pwritev2);
PL_ALIAS(lseek64, lseek);
PL_ALIAS(ftruncate64, ftruncate);
PL_ALIAS(truncate64, truncate);
PL_ALIAS(fallocate64, fallocate);
PL_ALIAS(posix_fallocate64, posix_fallocate);
PL_ALIAS(sendfile64, sendfile);
