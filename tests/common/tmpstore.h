/* SPDX-License-Identifier: MIT */
/*
 * tmpstore.h - store files for the tests, in a fresh temporary directory.
 *
 * Each test process gets its own directory /var/tmp/ufvm-test-PID-XXXXXX
 * (made on first use, removed at exit or by tmpstore_cleanup()).  A process
 * killed before it could clean up leaves its directory behind; the next
 * test process to make one removes those whose PID no longer exists.  /var/tmp rather
 * than /tmp because /tmp may be tmpfs, and the tests need a disk file
 * system with real holes, immutable files and O_DIRECT-free pread.
 *
 * A test that is expected to die by a signal calls tmpstore_cleanup() once
 * ufvm has the files open: the directory is gone, the open files live on.
 */
#ifndef TESTS_TMPSTORE_H
#define TESTS_TMPSTORE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define TMPSTORE_PATH_MAX 256

/* The directory of this process's store files (made on first call). */
const char *tmpstore_dir(void);

/*
 * tmpstore_create - make file @name of @size bytes holding the pattern of
 * @seed (see pattern.h); its path goes to @path (TMPSTORE_PATH_MAX bytes).
 * Return: 0 or -errno.
 */
int tmpstore_create(const char *name, off_t size, uint64_t seed, char *path);

/* Path of @name in the directory, into @path (TMPSTORE_PATH_MAX bytes). */
void tmpstore_path(const char *name, char *path);

/* pread(2) of the store file itself, bypassing ufvm: 0 or -errno. */
int tmpstore_read(const char *path, void *buf, size_t len, off_t off);

/* pwrite(2) of the store file itself, bypassing ufvm: 0 or -errno. */
int tmpstore_write(const char *path, const void *buf, size_t len, off_t off);

/* The store file's size per fstat, or -errno. */
off_t tmpstore_size(const char *path);

/*
 * tmpstore_is_hole - does [off, off+len) of the store file hold no data
 * (SEEK_DATA from @off lands at or past off+len)?
 * Return: 1 (hole), 0 (data), or -errno.
 */
int tmpstore_is_hole(const char *path, off_t off, off_t len);

/* 512-byte blocks allocated to the file (st_blocks), or -errno. */
long long tmpstore_blocks(const char *path);

/*
 * tmpstore_direct_io - can the file system of this process's directory do
 * O_DIRECT (does open(2) with O_DIRECT accept a file there)?
 * Return: 1 yes, 0 no (EINVAL), or -errno.
 */
int tmpstore_direct_io(void);

/*
 * tmpstore_drop_cache - write the store file back and drop its pages from
 * the host's page cache (fdatasync, POSIX_FADV_DONTNEED).  Return: 0 or -errno.
 */
int tmpstore_drop_cache(const char *path);

/* Pages of the store file in the host's page cache now (mincore), or -errno. */
long long tmpstore_resident(const char *path);

/* Set or clear the immutable attribute (chattr +i): 0 or -errno. */
int tmpstore_set_immutable(const char *path, int on);

/* Remove the directory and everything in it (immutable flags cleared). */
void tmpstore_cleanup(void);

#endif /* TESTS_TMPSTORE_H */
