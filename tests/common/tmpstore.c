/* SPDX-License-Identifier: MIT */
/*
 * tmpstore.c - store files for the tests: see tmpstore.h.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pattern.h"
#include "tmpstore.h"

static char tmpstore_dirname[TMPSTORE_PATH_MAX];
static pid_t tmpstore_owner;

static void tmpstore_atexit(void)
{
	/* Criterion's runner and forked children share the atexit list. */
	if (getpid() == tmpstore_owner)
		tmpstore_cleanup();
}

/*
 * Remove directory @dir and everything in it (clearing immutable flags;
 * subdirectories too: test_stats builds a locale tree in its directory).
 */
static void tmpstore_rmdir(const char *dir)
{
	char path[TMPSTORE_PATH_MAX + 256];
	struct dirent *de;
	DIR *d;

	d = opendir(dir);
	if (d) {
		while ((de = readdir(d))) {
			if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
				continue;
			snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
			if (unlink(path) < 0 && errno == EPERM) {
				tmpstore_set_immutable(path, 0);
				unlink(path);
			}
			if (de->d_type == DT_DIR)
				tmpstore_rmdir(path);
		}
		closedir(d);
	}
	rmdir(dir);
}

/*
 * Remove the directories of test processes that died without cleaning up
 * (killed by a signal or a timeout): their names carry the pid, and a pid
 * that no longer exists cannot come back for its files.
 */
static void tmpstore_sweep(void)
{
	char path[TMPSTORE_PATH_MAX + 256];
	struct dirent *de;
	DIR *d = opendir("/var/tmp");

	if (!d)
		return;
	while ((de = readdir(d))) {
		long pid;

		if (sscanf(de->d_name, "ufvm-test-%ld-", &pid) != 1 || pid <= 0)
			continue;
		if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
			continue;
		snprintf(path, sizeof(path), "/var/tmp/%s", de->d_name);
		tmpstore_rmdir(path);
	}
	closedir(d);
}

const char *tmpstore_dir(void)
{
	static int registered;

	if (tmpstore_dirname[0] && tmpstore_owner == getpid())
		return tmpstore_dirname;
	tmpstore_sweep();
	snprintf(tmpstore_dirname, sizeof(tmpstore_dirname),
		 "/var/tmp/ufvm-test-%ld-XXXXXX", (long)getpid());
	if (!mkdtemp(tmpstore_dirname)) {
		perror("tmpstore: mkdtemp /var/tmp/ufvm-test-PID-XXXXXX");
		abort();
	}
	tmpstore_owner = getpid();
	if (!registered) {
		registered = 1;
		atexit(tmpstore_atexit);
	}
	return tmpstore_dirname;
}

void tmpstore_path(const char *name, char *path)
{
	if (snprintf(path, TMPSTORE_PATH_MAX, "%s/%s", tmpstore_dir(), name) >=
	    TMPSTORE_PATH_MAX) {
		fprintf(stderr, "tmpstore: name too long: %s\n", name);
		abort();
	}
}

int tmpstore_create(const char *name, off_t size, uint64_t seed, char *path)
{
	static uint8_t buf[1 << 20];
	int fd, err = 0;

	tmpstore_path(name, path);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	for (off_t off = 0; off < size;) {
		size_t n = size - off < (off_t)sizeof(buf) ? (size_t)(size - off) : sizeof(buf);

		pattern_fill(seed, buf, (uint64_t)off, n);
		ssize_t w = pwrite(fd, buf, n, off);
		if (w <= 0) {
			err = w < 0 ? -errno : -EIO;
			goto out;
		}
		off += w;
	}
	if (fsync(fd) < 0)
		err = -errno;
out:
	close(fd);
	return err;
}

static int tmpstore_io(const char *path, void *buf, size_t len, off_t off, int wr)
{
	int fd = open(path, (wr ? O_WRONLY : O_RDONLY) | O_CLOEXEC);
	int err = 0;
	size_t done = 0;

	if (fd < 0)
		return -errno;
	while (done < len) {
		ssize_t n = wr ? pwrite(fd, (char *)buf + done, len - done, off + done)
			       : pread(fd, (char *)buf + done, len - done, off + done);
		if (n < 0) {
			err = -errno;
			break;
		}
		if (n == 0) {		/* short file: the rest reads as nothing */
			err = -ENODATA;
			break;
		}
		done += n;
	}
	close(fd);
	return err;
}

int tmpstore_read(const char *path, void *buf, size_t len, off_t off)
{
	return tmpstore_io(path, buf, len, off, 0);
}

int tmpstore_write(const char *path, const void *buf, size_t len, off_t off)
{
	return tmpstore_io(path, (void *)buf, len, off, 1);
}

off_t tmpstore_size(const char *path)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return -errno;
	return st.st_size;
}

int tmpstore_is_hole(const char *path, off_t off, off_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	off_t d;
	int ret;

	if (fd < 0)
		return -errno;
	d = lseek(fd, off, SEEK_DATA);
	if (d < 0)
		ret = errno == ENXIO ? 1 : -errno;	/* no data after off */
	else
		ret = d >= off + len;
	close(fd);
	return ret;
}

long long tmpstore_blocks(const char *path)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return -errno;
	return (long long)st.st_blocks;
}

int tmpstore_direct_io(void)
{
	char path[TMPSTORE_PATH_MAX];
	int fd, ret = 1;

	tmpstore_path(".direct-io-probe", path);
	fd = open(path, O_RDWR | O_CREAT | O_DIRECT | O_CLOEXEC, 0644);
	if (fd < 0) {
		ret = errno == EINVAL ? 0 : -errno;
		/* Some file systems create the file before they refuse. */
		unlink(path);
		return ret;
	}
	close(fd);
	unlink(path);
	return ret;
}

int tmpstore_drop_cache(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), err = 0;

	if (fd < 0)
		return -errno;
	if (fdatasync(fd) < 0)
		err = -errno;
	else
		err = -posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
	close(fd);
	return err;
}

long long tmpstore_resident(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	long long n = 0;
	unsigned char *vec;
	struct stat st;
	size_t pages;
	void *p;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		n = -errno;
		goto out;
	}
	if (!st.st_size)
		goto out;
	pages = ((size_t)st.st_size + 4095) / 4096;
	vec = malloc(pages);
	p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
	if (!vec || p == MAP_FAILED) {
		n = !vec ? -ENOMEM : -errno;
	} else if (mincore(p, (size_t)st.st_size, vec) < 0) {
		n = -errno;
	} else {
		for (size_t i = 0; i < pages; i++)
			n += vec[i] & 1;
	}
	if (p != MAP_FAILED)
		munmap(p, (size_t)st.st_size);
	free(vec);
out:
	close(fd);
	return n;
}

int tmpstore_set_immutable(const char *path, int on)
{
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	int flags, err = 0;

	if (fd < 0)
		return -errno;
	if (ioctl(fd, FS_IOC_GETFLAGS, &flags) < 0) {
		err = -errno;
		goto out;
	}
	flags = on ? (flags | FS_IMMUTABLE_FL) : (flags & ~FS_IMMUTABLE_FL);
	if (ioctl(fd, FS_IOC_SETFLAGS, &flags) < 0)
		err = -errno;
out:
	close(fd);
	return err;
}

void tmpstore_cleanup(void)
{
	if (!tmpstore_dirname[0] || tmpstore_owner != getpid())
		return;
	tmpstore_rmdir(tmpstore_dirname);
	tmpstore_dirname[0] = 0;
}
