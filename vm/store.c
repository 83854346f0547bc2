// SPDX-License-Identifier: MIT
/*
 * vm/store.c - the store wrappers (latency and error injection) and the
 * local-file store: pread/pwrite/fallocate/ftruncate/fdatasync.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vm/store.h"
#include "vm/trace.h"

struct store_file {
	struct vm_store s;
	int fd;
};

#define to_sf(s) container_of(s, struct store_file, s)

static int sf_read(struct vm_store *s, void *buf, uint64_t off, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pread(to_sf(s)->fd, (char *)buf + done, len - done,
				  (off_t)(off + done));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0) {
			memset((char *)buf + done, 0, len - done);
			break;
		}
		done += (size_t)n;
	}
	return 0;
}

static int sf_write(struct vm_store *s, const void *buf, uint64_t off, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pwrite(to_sf(s)->fd, (const char *)buf + done,
				   len - done, (off_t)(off + done));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO;
		done += (size_t)n;
	}
	return 0;
}

static int sf_punch(struct vm_store *s, uint64_t off, uint64_t len)
{
	if (fallocate(to_sf(s)->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		      (off_t)off, (off_t)len) == 0)
		return 0;
	if (errno != EOPNOTSUPP)
		return -errno;
	/* No hole support on this file system: write zeros instead. */
	{
		static const char zeros[65536];
		uint64_t done = 0;

		while (done < len) {
			size_t n = (size_t)MIN(len - done, sizeof(zeros));
			int err = sf_write(s, zeros, off + done, n);

			if (err)
				return err;
			done += n;
		}
	}
	return 0;
}

static int sf_truncate(struct vm_store *s, uint64_t size)
{
	return ftruncate(to_sf(s)->fd, (off_t)size) ? -errno : 0;
}

static int sf_sync(struct vm_store *s)
{
	return fdatasync(to_sf(s)->fd) ? -errno : 0;
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
	close(to_sf(s)->fd);
	free(to_sf(s));
}

static const struct vm_store_ops store_file_ops = {
	.name = "file",
	.read = sf_read,
	.write = sf_write,
	.punch = sf_punch,
	.truncate = sf_truncate,
	.sync = sf_sync,
	.size = sf_size,
	.destroy = sf_destroy,
};

int vm_store_file_open(const char *path, bool writable, bool create,
		       struct vm_store **out, dev_t *dev, ino_t *ino)
{
	struct store_file *sf;
	struct stat st;
	int fd, flags = O_CLOEXEC | (writable ? O_RDWR : O_RDONLY);

	if (create)
		flags |= O_CREAT;
	fd = open(path, flags, 0644);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st)) {
		int err = -errno;

		close(fd);
		return err;
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
	}
	sf = calloc(1, sizeof(*sf));
	if (!sf) {
		close(fd);
		return -ENOMEM;
	}
	sf->s.ops = &store_file_ops;
	sf->s.writable = writable;
	sf->fd = fd;
	*dev = st.st_dev;
	*ino = st.st_ino;
	*out = &sf->s;
	return 0;
}

static bool injected(uint64_t eoff, uint64_t elen, uint64_t off, size_t len)
{
	return elen && off < eoff + elen && eoff < off + len;
}

int vm_store_read(struct vm_store *s, void *buf, uint64_t off, size_t len)
{
	unsigned int lat = READ_ONCE(s->latency_us);
	int err;

	UFVM_TRACE2(store_read_start, off, len);
	if (lat) {
		struct timespec ts = { lat / 1000000, (long)(lat % 1000000) * 1000 };

		while (nanosleep(&ts, &ts) && errno == EINTR)
			;
	}
	if (injected(READ_ONCE(s->rerr_off), READ_ONCE(s->rerr_len), off, len))
		err = -EIO;
	else
		err = s->ops->read(s, buf, off, len);
	UFVM_TRACE3(store_read_done, off, len, err);
	return err;
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

int vm_store_punch(struct vm_store *s, uint64_t off, uint64_t len)
{
	return s->writable ? s->ops->punch(s, off, len) : -EBADF;
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
