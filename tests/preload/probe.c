/* SPDX-License-Identifier: MIT */
/*
 * probe.c - an ordinary program, written against libc only, that checks
 * the kernel's semantics of shared file mappings and the fd calls around
 * them.  Run under `ufvm run` it checks them on ufvm: each scenario also
 * checks that its mappings are managed (ufvm_preload_managed(), found with
 * dlsym, so that the same binary runs without the preload too).
 *
 *   probe SCENARIO DIR     run one scenario with its files in DIR
 *
 * Scenarios: coherence, append, appendfail, appendshared, fdcalls, remap, protect, fork, forkgaps,
 * exec (execveat, and posix_spawn), vfork (and clone(CLONE_VM | CLONE_VFORK)), vforksig, exit
 * (exit, _exit, quick_exit, and a crash), threads, split, signal, efault, splice, unmanaged,
 * trunc (O_TRUNC of a file ufvm manages, and of a tracefs file it does not; tracefs mounted
 * for the test if it is not and root may; exit 77 without a tracefs instance to use), dupfds
 * (write and read through an fd and its dup at once), unlinked (a tracked file by other names:
 * unlinked, a hard link), readonly (a
 * file made read-only: truncate by path, a fork child that cannot reopen it; run as a user other
 * than root), edges (the kernel's
 * refusals: offsets, segment counts, flags), times (modification times: writes, futimens and
 * utimensat after stores into a mapping), locks (POSIX locks kept through an O_RDONLY|O_TRUNC
 * open), privclose (a thread closing fd numbers it never opened, beside last closes), cancel
 * (a thread cancelled at a managed file's last close).  Exit
 * status 0 when every check passed, 1 otherwise; a scenario that needs a
 * signal to kill a child checks it in a child.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/falloc.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PG 4096UL

static const char *dir;
static const char *scenario;
static int failures;
static int (*is_managed)(const void *);
static const char *(*backend)(void);

#define CHECK(cond)							\
	do {								\
		if (!(cond)) {						\
			fprintf(stderr, "probe %s: %s:%d: check failed: %s (errno %d)\n", \
				scenario, __FILE__, __LINE__, #cond, errno); \
			failures++;					\
		}							\
	} while (0)

/*
 * Managed when the preload is there (anything goes without it); never
 * with PROBE_EXPECT=unmanaged (ufvm refused to start).
 */
#define CHECK_MANAGED(p) CHECK(!is_managed || is_managed(p) == expect_managed)

static int expect_managed = 1;

static char *path_of(const char *name)
{
	static char buf[4][512];
	static int i;
	char *p = buf[i++ % 4];

	snprintf(p, 512, "%s/%s", dir, name);
	return p;
}

/* The byte pattern of file offset @off for @seed. */
static uint8_t pat(uint64_t off, unsigned int seed)
{
	uint64_t x = (off / 8 + 1) * 0x9e3779b97f4a7c15ull + seed;

	return (uint8_t)(x >> ((off % 8) * 8));
}

static void fill(void *buf, size_t len, uint64_t off, unsigned int seed)
{
	uint8_t *b = buf;
	size_t i;

	for (i = 0; i < len; i++)
		b[i] = pat(off + i, seed);
}

static bool same(const void *buf, size_t len, uint64_t off, unsigned int seed)
{
	const uint8_t *b = buf;
	size_t i;

	for (i = 0; i < len; i++)
		if (b[i] != pat(off + i, seed))
			return false;
	return true;
}

static bool zeros(const void *buf, size_t len)
{
	const uint8_t *b = buf;
	size_t i;

	for (i = 0; i < len; i++)
		if (b[i])
			return false;
	return true;
}

/* A file of @pages pages of pattern @seed, written with write(2). */
static int make_file(const char *name, size_t pages, unsigned int seed)
{
	int fd = open(path_of(name), O_RDWR | O_CREAT | O_TRUNC, 0644);
	char buf[PG];
	size_t i;

	if (fd < 0) {
		perror(name);
		exit(1);
	}
	for (i = 0; i < pages; i++) {
		fill(buf, PG, i * PG, seed);
		if (write(fd, buf, PG) != (ssize_t)PG) {
			perror("write");
			exit(1);
		}
	}
	return fd;
}

/*
 * Does the file hold, at @off, the pattern of @seed for offset @poff?  Read
 * by the kernel itself (raw syscalls, past any preload).
 */
static bool kernel_has(const char *name, uint64_t off, size_t len, uint64_t poff,
		       unsigned int seed)
{
	int fd = (int)syscall(SYS_openat, AT_FDCWD, path_of(name), O_RDONLY);
	char *buf = malloc(len);
	bool ok;

	ok = fd >= 0 && buf && syscall(SYS_pread64, fd, buf, len, off) == (long)len &&
	     same(buf, len, poff, seed);
	free(buf);
	if (fd >= 0)
		syscall(SYS_close, fd);
	return ok;
}

#define kernel_same(name, off, len, seed) kernel_has(name, off, len, off, seed)

/* Run @fn in a child; return how it ended: exit status, or 128 + signal. */
static int in_child(void (*fn)(void *), void *arg)
{
	pid_t pid = fork();
	int st;

	if (pid == 0) {
		fn(arg);
		_exit(failures ? 1 : 0);
	}
	if (pid < 0 || waitpid(pid, &st, 0) != pid)
		return -1;
	return WIFSIGNALED(st) ? 128 + WTERMSIG(st) : WEXITSTATUS(st);
}

/* in_child(), but a child still running after @secs seconds is killed (SIGKILL). */
static int in_child_within(void (*fn)(void *), void *arg, int secs)
{
	pid_t pid = fork();
	int st, i;

	if (pid == 0) {
		fn(arg);
		_exit(failures ? 1 : 0);
	}
	if (pid < 0)
		return -1;
	for (i = 0; i < secs * 100; i++) {
		if (waitpid(pid, &st, WNOHANG) == pid)
			return WIFSIGNALED(st) ? 128 + WTERMSIG(st) : WEXITSTATUS(st);
		usleep(10000);
	}
	kill(pid, SIGKILL);
	if (waitpid(pid, &st, 0) != pid)
		return -1;
	return WIFSIGNALED(st) ? 128 + WTERMSIG(st) : WEXITSTATUS(st);
}

static void touch(void *p)
{
	(void)*(volatile char *)p;
}

/* Is the page at @p mapped?  (msync says ENOMEM for unmapped memory.) */
static bool mapped(void *p)
{
	return !syscall(SYS_msync, (uintptr_t)p & ~(PG - 1), PG, MS_ASYNC);
}

/* ---- coherence: every fd call against the mapping ---- */

static void sc_coherence(void)
{
	size_t n = 16;
	int fd = make_file("c", n, 1), fd2;
	char buf[3 * PG], *m;
	struct iovec iov[2];
	struct stat st;
	off_t pos;

	m = mmap(NULL, 32 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	CHECK(m != MAP_FAILED);
	CHECK_MANAGED(m);
	CHECK(same(m, n * PG, 0, 1));

	/* map -> pread, pwrite -> map */
	fill(m + PG, PG, PG, 2);
	CHECK(pread(fd, buf, PG, PG) == (ssize_t)PG && same(buf, PG, PG, 2));
	fill(buf, PG, 2 * PG, 3);
	CHECK(pwrite(fd, buf, PG, 2 * PG) == (ssize_t)PG && same(m + 2 * PG, PG, 2 * PG, 3));

	/* read/write at the fd's offset, readv/writev, lseek */
	CHECK(lseek(fd, 3 * PG, SEEK_SET) == (off_t)(3 * PG));
	CHECK(read(fd, buf, PG) == (ssize_t)PG && same(buf, PG, 3 * PG, 1));
	CHECK(lseek(fd, 0, SEEK_CUR) == (off_t)(4 * PG));
	fill(buf, 2 * PG, 4 * PG, 4);
	iov[0] = (struct iovec){ buf, PG };
	iov[1] = (struct iovec){ buf + PG, PG };
	CHECK(writev(fd, iov, 2) == (ssize_t)(2 * PG) && same(m + 4 * PG, 2 * PG, 4 * PG, 4));
	CHECK(lseek(fd, 0, SEEK_CUR) == (off_t)(6 * PG));
	memset(buf, 0, sizeof(buf));
	CHECK(preadv(fd, iov, 2, 4 * PG) == (ssize_t)(2 * PG) && same(buf, 2 * PG, 4 * PG, 4));
	fill(buf, 2 * PG, 6 * PG, 5);
	CHECK(pwritev(fd, iov, 2, 6 * PG) == (ssize_t)(2 * PG) && same(m + 6 * PG, 2 * PG, 6 * PG, 5));

	/* growing by pwrite: size from fstat, stat, lseek; the mapping sees it */
	fill(buf, PG, n * PG, 6);
	CHECK(pwrite(fd, buf, PG, n * PG) == (ssize_t)PG);
	CHECK(!fstat(fd, &st) && st.st_size == (off_t)((n + 1) * PG));
	CHECK(!stat(path_of("c"), &st) && st.st_size == (off_t)((n + 1) * PG));
	CHECK(lseek(fd, 0, SEEK_END) == (off_t)((n + 1) * PG));
	CHECK(same(m + n * PG, PG, n * PG, 6));

	/* O_APPEND through a second fd */
	fd2 = open(path_of("c"), O_WRONLY | O_APPEND);
	CHECK(fd2 >= 0);
	fill(buf, PG, (n + 1) * PG, 7);
	CHECK(write(fd2, buf, PG) == (ssize_t)PG);
	CHECK(same(m + (n + 1) * PG, PG, (n + 1) * PG, 7));
	CHECK(!fstat(fd, &st) && st.st_size == (off_t)((n + 2) * PG));

	/* punch and zero range: zeros through the mapping */
	CHECK(!fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 8 * PG, PG));
	CHECK(zeros(m + 8 * PG, PG) && same(m + 9 * PG, PG, 9 * PG, 1));
	CHECK(!fallocate(fd, FALLOC_FL_ZERO_RANGE, 9 * PG, PG));
	CHECK(zeros(m + 9 * PG, PG));

	/* ... not through a read-only fd (EBADF), which changes nothing */
	fd2 = open(path_of("c"), O_RDONLY);
	CHECK(fd2 >= 0);
	errno = 0;
	CHECK(fallocate(fd2, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 10 * PG, PG) == -1 &&
	      errno == EBADF);
	errno = 0;
	CHECK(fallocate(fd2, FALLOC_FL_ZERO_RANGE, 10 * PG, PG) == -1 && errno == EBADF);
	errno = 0;	/* a mode the kernel refuses first */
	CHECK(fallocate(fd2, FALLOC_FL_PUNCH_HOLE, 10 * PG, PG) == -1 && errno == EOPNOTSUPP);
	errno = 0;	/* offset + length past the largest off_t */
	CHECK(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, PG, INT64_MAX) == -1 &&
	      errno == EFBIG);
	CHECK(same(m + 10 * PG, PG, 10 * PG, 1));
	close(fd2);

	/* empty ranges inside the mapping: nothing to do, 0 */
	CHECK(!mprotect(m + PG, 0, PROT_READ) && !msync(m + PG, 0, MS_SYNC) &&
	      !madvise(m + PG, 0, MADV_DONTNEED));

	/* ftruncate down then up: the tail reads zeros */
	CHECK(!ftruncate(fd, 12 * PG));
	CHECK(!fstat(fd, &st) && st.st_size == (off_t)(12 * PG));
	CHECK(!ftruncate(fd, 20 * PG));
	CHECK(zeros(m + 12 * PG, 8 * PG) && same(m + 11 * PG, PG, 11 * PG, 1));
	CHECK(!posix_fallocate(fd, 0, 24 * PG));
	CHECK(!fstat(fd, &st) && st.st_size == (off_t)(24 * PG));

	/* copy_file_range and sendfile out of and into the managed file */
	{
		int out = open(path_of("c.copy"), O_RDWR | O_CREAT | O_TRUNC, 0644);
		off64_t in_off = 2 * PG, out_off = 0;
		int pfd[2];

		CHECK(out >= 0);
		CHECK(copy_file_range(fd, &in_off, out, &out_off, PG, 0) == (ssize_t)PG);
		CHECK(pread(out, buf, PG, 0) == (ssize_t)PG && same(buf, PG, 2 * PG, 3));
		in_off = 0;
		fill(buf, PG, 0, 9);
		CHECK(pwrite(out, buf, PG, 0) == (ssize_t)PG);
		out_off = 10 * PG;
		CHECK(copy_file_range(out, &in_off, fd, &out_off, PG, 0) == (ssize_t)PG);
		CHECK(same(m + 10 * PG, PG, 0, 9));
		CHECK(!pipe(pfd));
		pos = 4 * PG;
		CHECK(sendfile(pfd[1], fd, &pos, PG) == (ssize_t)PG && pos == (off_t)(5 * PG));
		CHECK(read(pfd[0], buf, PG) == (ssize_t)PG && same(buf, PG, 4 * PG, 4));
		close(pfd[0]);
		close(pfd[1]);
		close(out);
	}

	/* fsync: the file itself (read by the kernel) has it all */
	CHECK(!fsync(fd));
	CHECK(kernel_same("c", 4 * PG, 2 * PG, 4));
	CHECK(kernel_has("c", 10 * PG, PG, 0, 9));
	CHECK(!msync(m, 32 * PG, MS_SYNC));

	/* O_TRUNC of the managed file through a new fd: everything reads zeros */
	fd2 = open(path_of("c"), O_RDWR | O_TRUNC);
	CHECK(fd2 >= 0);
	CHECK(!fstat(fd, &st) && st.st_size == 0);
	CHECK(pwrite(fd2, "x", 1, 0) == 1 && m[0] == 'x' && zeros(m + 1, PG - 1));
	close(fd2);
	CHECK(!munmap(m, 32 * PG));
	close(fd);
}

/*
 * ---- append: appends land at the end of the file as the kernel puts
 * them: after truncate(path), by pwrite on an O_APPEND fd (Linux appends,
 * the position stays), by pwritev2 with RWF_APPEND (the position moves
 * with offset -1 only) ----
 */

static void sc_append(void)
{
	int fd = open(path_of("a"), O_RDWR | O_CREAT | O_TRUNC | O_APPEND, 0644), fd2;
	struct iovec v = { (void *)"AB", 2 };
	char *m, buf[16];
	struct stat st;

	CHECK(fd >= 0 && !ftruncate(fd, PG));
	m = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	CHECK(m != MAP_FAILED);
	CHECK_MANAGED(m);

	/* truncate(path) resets where the next append goes */
	CHECK(!ftruncate(fd, 0));
	CHECK(write(fd, "abc", 3) == 3);
	CHECK(!truncate(path_of("a"), 0));
	CHECK(write(fd, "x", 1) == 1);
	CHECK(!fstat(fd, &st) && st.st_size == 1);
	CHECK(pread(fd, buf, 4, 0) == 1 && buf[0] == 'x');

	/* pwrite on an O_APPEND fd appends; the position does not move */
	CHECK(!ftruncate(fd, 0) && write(fd, "0123456789", 10) == 10);
	CHECK(lseek(fd, 3, SEEK_SET) == 3);
	CHECK(pwrite(fd, "XY", 2, 0) == 2);
	CHECK(!fstat(fd, &st) && st.st_size == 12);
	CHECK(pread(fd, buf, 12, 0) == 12 && !memcmp(buf, "0123456789XY", 12));
	CHECK(!memcmp(m, "0123456789XY", 12));
	CHECK(lseek(fd, 0, SEEK_CUR) == 3);

	/*
	 * pwritev2 on an O_APPEND fd: RWF_NOAPPEND writes at the offset;
	 * an offset below -1 is EINVAL, an unknown flag EOPNOTSUPP, even
	 * with RWF_APPEND (nothing written)
	 */
	CHECK(pwritev2(fd, &v, 1, 4, 0x20 /* RWF_NOAPPEND */) == 2);
	CHECK(!fstat(fd, &st) && st.st_size == 12);
	CHECK(pread(fd, buf, 12, 0) == 12 && !memcmp(buf, "0123AB6789XY", 12));
	errno = 0;
	CHECK(pwritev2(fd, &v, 1, -2, 0) == -1 && errno == EINVAL);
	errno = 0;
	CHECK(pwritev2(fd, &v, 1, -2, RWF_APPEND) == -1 && errno == EINVAL);
	errno = 0;
	CHECK(pwritev2(fd, &v, 1, 0, 0x4000) == -1 && errno == EOPNOTSUPP);
	errno = 0;
	CHECK(preadv2(fd, &(struct iovec){ buf, 2 }, 1, 0, 0x4000) == -1 && errno == EOPNOTSUPP);
	CHECK(!fstat(fd, &st) && st.st_size == 12 && lseek(fd, 0, SEEK_CUR) == 3);
	CHECK(pwrite(fd, "45", 2, 4) == 2);	/* appends: "0123AB6789XY45" */
	CHECK(!ftruncate(fd, 12) && pwritev2(fd, &v, 1, 4, 0x20) == 2);
	CHECK(pread(fd, buf, 12, 0) == 12 && !memcmp(buf, "0123AB6789XY", 12));
	v.iov_base = (void *)"45";
	CHECK(pwritev2(fd, &v, 1, 4, 0x20) == 2 && !memcmp(m, "012345", 6));
	v.iov_base = (void *)"AB";

	/* RWF_APPEND on a plain fd: offset -1 moves the position, 0 does not */
	fd2 = open(path_of("a"), O_RDWR);
	CHECK(fd2 >= 0 && lseek(fd2, 2, SEEK_SET) == 2);
	CHECK(pwritev2(fd2, &v, 1, -1, RWF_APPEND) == 2);
	CHECK(lseek(fd2, 0, SEEK_CUR) == 14);
	CHECK(pwritev2(fd2, &v, 1, 0, RWF_APPEND) == 2);
	CHECK(lseek(fd2, 0, SEEK_CUR) == 14);
	CHECK(!memcmp(m, "0123456789XYABAB", 16) && !memcmp(m + 16, "\0", 1));
	CHECK(!msync(m, PG, MS_SYNC));
	CHECK(!munmap(m, PG));
	close(fd2);
	close(fd);

	/*
	 * preadv2/pwritev2 at the position (-1) of fds ufvm does not manage
	 * keep their flags: RWF_APPEND appends to a plain file, RWF_NOWAIT
	 * on an empty pipe is EAGAIN
	 */
	fd = open(path_of("a.plain"), O_RDWR | O_CREAT | O_TRUNC, 0644);
	CHECK(fd >= 0 && write(fd, "0123456789", 10) == 10 && lseek(fd, 0, SEEK_SET) == 0);
	v.iov_base = (void *)"AP";
	CHECK(pwritev2(fd, &v, 1, -1, RWF_APPEND) == 2);
	CHECK(pread(fd, buf, 12, 0) == 12 && !memcmp(buf, "0123456789AP", 12));
	close(fd);
	{
		int pfd[2];

		CHECK(!pipe(pfd));
		errno = 0;
		CHECK(preadv2(pfd[0], &(struct iovec){ buf, 2 }, 1, -1, 0x8 /* RWF_NOWAIT */) ==
		      -1 && errno == EAGAIN);
		close(pfd[0]);
		close(pfd[1]);
	}
}

/*
 * ---- appendfail: an append that fails (EBADF: the fd is read-only;
 * EFAULT: the buffer is unreadable, which must not crash either) or
 * writes less than asked leaves nothing behind: the next append starts at
 * the end of the file, no hole of zeros before it ----
 */

static long kernel_size(const char *name);

static void *volatile bad_buf = (void *)8;	/* never mapped */

/* A file @name holding @s, and a managed mapping of its first page in *@m. */
static int small_file_mapped(const char *name, const char *s, char **m)
{
	int fd = open(path_of(name), O_RDWR | O_CREAT | O_TRUNC, 0644);

	CHECK(fd >= 0 && write(fd, s, strlen(s)) == (ssize_t)strlen(s));
	*m = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	CHECK(*m != MAP_FAILED);
	CHECK_MANAGED(*m);
	return fd;
}

static void sc_appendfail(void)
{
	struct iovec v = { (void *)"VVVVV", 5 };
	char *m, buf[64];
	int fd = small_file_mapped("af", "0123456789", &m), ro, ap;
	struct stat st;

	ro = open(path_of("af"), O_RDONLY | O_APPEND);
	CHECK(ro >= 0);
	errno = 0;
	CHECK(write(ro, "XXXXX", 5) == -1 && errno == EBADF);
	errno = 0;
	CHECK(pwrite(ro, "YYYYY", 5, 0) == -1 && errno == EBADF);
	errno = 0;
	CHECK(writev(ro, &v, 1) == -1 && errno == EBADF);
	errno = 0;
	CHECK(pwritev2(ro, &v, 1, 0, RWF_APPEND) == -1 && errno == EBADF);
	CHECK(lseek(ro, 0, SEEK_CUR) == 0);
	/* an unreadable buffer: EFAULT, as the kernel says, not a crash */
	ap = open(path_of("af"), O_WRONLY | O_APPEND);
	errno = 0;
	CHECK(ap >= 0 && write(ap, bad_buf, 4) == -1 && errno == EFAULT);
	errno = 0;
	CHECK(pwrite(fd, bad_buf, 4, 0) == -1 && errno == EFAULT);
	CHECK(lseek(ap, 0, SEEK_CUR) == 0);
	CHECK(write(ap, "abc", 3) == 3 && lseek(ap, 0, SEEK_CUR) == 13);
	CHECK(write(ap, "", 0) == 0 && lseek(ap, 0, SEEK_CUR) == 13);
	CHECK(!fstat(fd, &st) && st.st_size == 13);
	CHECK(pread(fd, buf, sizeof(buf), 0) == 13 && !memcmp(buf, "0123456789abc", 13));
	CHECK(!memcmp(m, "0123456789abc", 13) && zeros(m + 13, PG - 13));
	/* a buffer whose second page is unreadable: a short write */
	{
		char *g = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		CHECK(g != MAP_FAILED && !mprotect(g + PG, PG, PROT_NONE));
		memcpy(g + PG - 2, "de", 2);
		CHECK(write(ap, g + PG - 2, 4) == 2 && lseek(ap, 0, SEEK_CUR) == 15);
		CHECK(!fstat(fd, &st) && st.st_size == 15 && !memcmp(m, "0123456789abcde", 15));
		munmap(g, 2 * PG);
	}
	CHECK(!munmap(m, PG));
	close(ap);
	close(ro);
	close(fd);
	CHECK(kernel_size("af") == 15);
}

/*
 * ---- appendshared: an append through a managed fd lands after what
 * another process appended through the kernel meanwhile (here: raw
 * system calls, past the preload), and ufvm then shows those bytes: a log
 * file appended by several processes loses nothing ----
 */

static void kernel_append(const char *name, const char *s)
{
	int fd = (int)syscall(SYS_openat, AT_FDCWD, path_of(name), O_WRONLY | O_APPEND);

	CHECK(fd >= 0 && syscall(SYS_write, fd, s, strlen(s)) == (long)strlen(s));
	syscall(SYS_close, fd);
}

static void sc_appendshared(void)
{
	static const char want[] = "LINE0\nA1\nK1\nA2\nK2 a longer line\nA3\n";
	char *m, buf[128];
	int fd = small_file_mapped("as", "line0\n", &m), ap;
	struct stat st;

	memcpy(m, "LINE0", 5);		/* dirty in ufvm */
	ap = open(path_of("as"), O_WRONLY | O_APPEND);
	CHECK(ap >= 0 && write(ap, "A1\n", 3) == 3);
	kernel_append("as", "K1\n");
	CHECK(write(ap, "A2\n", 3) == 3);
	kernel_append("as", "K2 a longer line\n");
	CHECK(pwrite(ap, "A3\n", 3, 0) == 3);
	CHECK(!fstat(fd, &st) && st.st_size == (off_t)strlen(want));
	CHECK(pread(fd, buf, sizeof(buf), 0) == (ssize_t)strlen(want) &&
	      !memcmp(buf, want, strlen(want)));
	CHECK(!memcmp(m, want, strlen(want)));
	CHECK(!munmap(m, PG));
	close(ap);
	close(fd);
	fd = (int)syscall(SYS_openat, AT_FDCWD, path_of("as"), O_RDONLY);
	CHECK(fd >= 0 && syscall(SYS_pread64, fd, buf, sizeof(buf), 0) == (long)strlen(want) &&
	      !memcmp(buf, want, strlen(want)));
	syscall(SYS_close, fd);
}

/*
 * ---- fdcalls: the fd calls on a managed file do and refuse what the
 * kernel does and refuses: reading an fd opened O_WRONLY (EBADF);
 * O_RDONLY|O_TRUNC truncates, through ufvm; copy_file_range between
 * overlapping ranges of one file (EINVAL) or into an O_APPEND fd (EBADF),
 * and in the kernel's order: the fds' modes (EBADF) and negative offsets
 * (EOVERFLOW) before the overlap ----
 */

/* The size of @name as the kernel has it (raw system calls). */
static long kernel_size(const char *name)
{
	int fd = (int)syscall(SYS_openat, AT_FDCWD, path_of(name), O_RDONLY);
	struct stat st;
	long r = -1;

	if (fd >= 0 && !syscall(SYS_fstat, fd, &st))
		r = (long)st.st_size;
	if (fd >= 0)
		syscall(SYS_close, fd);
	return r;
}

static void sc_fdcalls(void)
{
	int fd = make_file("fc", 2, 111), wfd;
	char *m = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	struct stat buf_st;
	struct iovec v;
	char buf[PG];

	CHECK(m != MAP_FAILED);
	CHECK_MANAGED(m);
	v = (struct iovec){ buf, 16 };

	/* reading an O_WRONLY fd: EBADF, even at the end of the file */
	wfd = open(path_of("fc"), O_WRONLY);
	CHECK(wfd >= 0);
	errno = 0;
	CHECK(pread(wfd, buf, 16, 0) == -1 && errno == EBADF);
	errno = 0;
	CHECK(read(wfd, buf, 16) == -1 && errno == EBADF);
	errno = 0;
	CHECK(readv(wfd, &v, 1) == -1 && errno == EBADF);
	errno = 0;
	CHECK(preadv(wfd, &v, 1, 0) == -1 && errno == EBADF);
	CHECK(lseek(wfd, 0, SEEK_END) == (off_t)(2 * PG));
	errno = 0;
	CHECK(read(wfd, buf, 16) == -1 && errno == EBADF);
	CHECK(lseek(wfd, 0, SEEK_CUR) == (off_t)(2 * PG));
	CHECK(write(wfd, "w", 1) == 1 && pread(fd, buf, 2, 2 * PG) == 1 && buf[0] == 'w');
	close(wfd);

	/* copy_file_range within one file: overlapping ranges are refused */
	{
		off64_t i = 0, o = 4;

		fill(buf, 16, 0, 111);
		errno = 0;
		CHECK(copy_file_range(fd, &i, fd, &o, 8, 0) == -1 && errno == EINVAL);
		CHECK(i == 0 && o == 4 && same(m, 16, 0, 111));
		o = 2 * PG - 4;		/* clipped to the end of the file: [8188, 8192) */
		i = 2 * PG - 8;
		errno = 0;
		CHECK(copy_file_range(fd, &i, fd, &o, 64, 0) == -1 && errno == EINVAL);
		/* ... but first: the fds' modes (EBADF), negative offsets (EOVERFLOW) */
		wfd = open(path_of("fc"), O_WRONLY);
		i = 0;
		o = 4;
		errno = 0;
		CHECK(copy_file_range(wfd, &i, fd, &o, 8, 0) == -1 && errno == EBADF);
		close(wfd);
		wfd = open(path_of("fc"), O_RDONLY);
		errno = 0;
		CHECK(copy_file_range(fd, &i, wfd, &o, 8, 0) == -1 && errno == EBADF);
		close(wfd);
		i = -1;
		errno = 0;
		CHECK(copy_file_range(fd, &i, fd, &o, 8, 0) == -1 && errno == EOVERFLOW);
		i = 0;
		o = -1;
		errno = 0;
		CHECK(copy_file_range(fd, &i, fd, &o, 8, 0) == -1 && errno == EOVERFLOW);
		CHECK(same(m, 16, 0, 111));
		i = 0;
		o = PG;
		CHECK(copy_file_range(fd, &i, fd, &o, 8, 0) == 8 && !memcmp(m + PG, m, 8));
		wfd = open(path_of("fc"), O_WRONLY | O_APPEND);
		i = 0;
		errno = 0;
		CHECK(wfd >= 0 && copy_file_range(fd, &i, wfd, NULL, 8, 0) == -1 && errno == EBADF);
		close(wfd);
	}

	/* O_RDONLY|O_TRUNC: ufvm truncates (the kernel alone would, behind it) */
	m[0] = 'Z';			/* dirty: must not come back at exit */
	wfd = open(path_of("fc"), O_RDONLY | O_TRUNC);
	CHECK(wfd >= 0);
	CHECK(!fstat(fd, &buf_st) && buf_st.st_size == 0);
	CHECK(pread(fd, buf, 16, 0) == 0);
	close(wfd);
	CHECK(!munmap(m, 2 * PG));
	close(fd);
	CHECK(kernel_size("fc") == 0);
	/* ... and an unmanaged file by the kernel, as before */
	close(make_file("fc2", 1, 112));
	wfd = open(path_of("fc2"), O_RDONLY | O_TRUNC);
	CHECK(wfd >= 0 && kernel_size("fc2") == 0);
	close(wfd);
}

/* ---- remap: mremap, partial munmap, MAP_FIXED over a managed range ---- */

static void die_touching(void *p)
{
	touch(p);
}

static void sc_remap(void)
{
	int fd = make_file("r", 64, 11);
	char *m, *m2, *a;

	m = mmap(NULL, 8 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	CHECK(m != MAP_FAILED);
	CHECK_MANAGED(m);
	fill(m, PG, 0, 12);

	/* grow (in place or moved), then shrink */
	m2 = mremap(m, 8 * PG, 32 * PG, MREMAP_MAYMOVE);
	CHECK(m2 != MAP_FAILED);
	CHECK_MANAGED(m2 + 31 * PG);
	CHECK(same(m2, PG, 0, 12) && same(m2 + PG, 31 * PG, PG, 11));
	fill(m2 + 20 * PG, PG, 20 * PG, 13);
	m = mremap(m2, 32 * PG, 16 * PG, 0);
	CHECK(m == m2);
	CHECK(!mapped(m + 16 * PG) && !mapped(m + 31 * PG) && mapped(m + 15 * PG));

	/* duplicate with old size 0 */
	m2 = mremap(m, 0, 4 * PG, MREMAP_MAYMOVE);
	CHECK(m2 != MAP_FAILED && m2 != m);
	CHECK(same(m2, PG, 0, 12));
	m2[5] = 'd';
	CHECK(m[5] == 'd');
	fill(m2, PG, 0, 12);
	CHECK(!munmap(m2, 4 * PG));

	/* partial munmap: middle, then head; the rest keeps its data */
	CHECK(!munmap(m + 4 * PG, 2 * PG));
	CHECK(same(m, PG, 0, 12) && same(m + PG, 3 * PG, PG, 11));
	CHECK(same(m + 6 * PG, 10 * PG, 6 * PG, 11));
	CHECK(!mapped(m + 4 * PG) && !mapped(m + 5 * PG) && mapped(m + 6 * PG));
	CHECK(!munmap(m, PG));
	CHECK(!mapped(m) && same(m + PG, 3 * PG, PG, 11));
	CHECK_MANAGED(m + 2 * PG);
	m[7 * PG] = 'z';

	/* MAP_FIXED anonymous memory over part of it */
	a = mmap(m + 8 * PG, 2 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
		 -1, 0);
	CHECK(a == m + 8 * PG && zeros(a, 2 * PG));
	CHECK(!is_managed || !is_managed(a));
	CHECK(same(m + 10 * PG, 6 * PG, 10 * PG, 11) && m[7 * PG] == 'z');

	/* a MAP_FIXED mapping the kernel refuses leaves the managed one there */
	{
		char shm[64];
		int ro;

		snprintf(shm, sizeof(shm), "/dev/shm/ufvm-probe-%d", (int)getpid());
		ro = open(shm, O_RDWR | O_CREAT | O_TRUNC, 0600);
		CHECK(ro >= 0 && !ftruncate(ro, PG));
		close(ro);
		ro = open(shm, O_RDONLY);	/* not writable: EACCES */
		unlink(shm);
		errno = 0;
		CHECK(mmap(m + 14 * PG, PG, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, ro, 0) ==
		      MAP_FAILED && errno == EACCES);
		CHECK(same(m + 14 * PG, PG, 14 * PG, 11));
		close(ro);
		/* an O_PATH fd maps nothing: EBADF first */
		ro = open(path_of("r"), O_PATH);
		errno = 0;
		CHECK(mmap(m + 14 * PG, PG, PROT_READ, MAP_SHARED | MAP_FIXED | MAP_FIXED_NOREPLACE,
			   ro, 0) == MAP_FAILED && errno == EBADF);
		close(ro);
		/* MAP_FIXED with MAP_FIXED_NOREPLACE over it: EEXIST, kept */
		errno = 0;
		CHECK(mmap(m + 14 * PG, PG, PROT_READ, MAP_SHARED | MAP_FIXED | MAP_FIXED_NOREPLACE,
			   fd, 0) == MAP_FAILED && errno == EEXIST);
		CHECK(same(m + 14 * PG, PG, 14 * PG, 11));
	}

	/* MAP_FIXED of the file over its own mapping, at another offset */
	a = mmap(m + 12 * PG, 2 * PG, PROT_READ, MAP_SHARED | MAP_FIXED, fd, 40 * PG);
	CHECK(a == m + 12 * PG && same(a, 2 * PG, 40 * PG, 11));
	CHECK_MANAGED(a);

	CHECK(!msync(m + PG, 3 * PG, MS_SYNC) && !msync(m + 6 * PG, 10 * PG, MS_SYNC));
	CHECK(!munmap(m, 16 * PG));
	CHECK(kernel_same("r", 0, PG, 12));
	close(fd);
}

/* ---- protect: mprotect and madvise on managed ranges ---- */

static void write_at(void *p)
{
	*(volatile char *)p = 1;
}

static void sc_protect(void)
{
	int fd = make_file("p", 16, 21), rfd;
	char *m, buf[PG];

	m = mmap(NULL, 16 * PG, PROT_READ, MAP_SHARED, fd, 0);
	CHECK(m != MAP_FAILED);
	CHECK_MANAGED(m);
	touch(m);
	/* A write to a read-only page kills with SIGSEGV, on every backend. */
	CHECK(in_child(write_at, m + PG) == 128 + SIGSEGV);

	/* read-only -> read-write on a part; write through it */
	CHECK(!mprotect(m + 4 * PG, 4 * PG, PROT_READ | PROT_WRITE));
	fill(m + 5 * PG, PG, 5 * PG, 22);
	CHECK(pread(fd, buf, PG, 5 * PG) == (ssize_t)PG && same(buf, PG, 5 * PG, 22));
	CHECK(in_child(write_at, m + 9 * PG) == 128 + SIGSEGV);
	CHECK_MANAGED(m + 9 * PG);

	/* PROT_NONE and back */
	CHECK(!mprotect(m, 2 * PG, PROT_NONE));
	CHECK(in_child(die_touching, m) == 128 + SIGSEGV);
	CHECK(!mprotect(m, 2 * PG, PROT_READ));
	CHECK(same(m, 2 * PG, 0, 21));
	CHECK_MANAGED(m);

	/* a read-only fd: no PROT_WRITE, as the kernel says */
	rfd = open(path_of("p"), O_RDONLY);
	CHECK(rfd >= 0);
	CHECK(mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_SHARED, rfd, 0) == MAP_FAILED &&
	      errno == EACCES);
	{
		char *r = mmap(NULL, PG, PROT_READ, MAP_SHARED, rfd, 0);

		CHECK(r != MAP_FAILED && mprotect(r, PG, PROT_READ | PROT_WRITE) && errno == EACCES);
		CHECK(!munmap(r, PG));
	}
	close(rfd);

	/* madvise: DONTNEED keeps shared data, REMOVE punches, WILLNEED reads */
	CHECK(!madvise(m + 4 * PG, 4 * PG, MADV_DONTNEED));
	CHECK(same(m + 5 * PG, PG, 5 * PG, 22));
	CHECK(!madvise(m, 16 * PG, MADV_WILLNEED));
	CHECK(!posix_madvise(m, 16 * PG, POSIX_MADV_RANDOM));
	CHECK(!madvise(m + 6 * PG, PG, MADV_REMOVE));
	CHECK(zeros(m + 6 * PG, PG) && pread(fd, buf, PG, 6 * PG) == (ssize_t)PG && zeros(buf, PG));
	CHECK(!munmap(m, 16 * PG));
	close(fd);
}

/* ---- fork: the child keeps its memory ---- */

static char *fork_map;

static void fork_child(void *arg)
{
	CHECK_MANAGED(fork_map);
	CHECK(same(fork_map, PG, 0, 32));	/* the parent's unsynced write */
	CHECK(same(fork_map + PG, 7 * PG, PG, 31));
	fill(fork_map + 5 * PG, PG, 5 * PG, 33);
	CHECK(!msync(fork_map + 5 * PG, PG, MS_SYNC));
}

static void sc_fork(void)
{
	int fd = make_file("f", 8, 31);
	char buf[PG];

	fork_map = mmap(NULL, 8 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	CHECK(fork_map != MAP_FAILED);
	CHECK(same(fork_map, 4 * PG, 0, 31));	/* cache pages 0-3 in the parent */
	fill(fork_map, PG, 0, 32);		/* dirty, not synced */
	close(fd);	/* the mapping alone keeps the file */
	CHECK(in_child(fork_child, NULL) == 0);
	fd = open(path_of("f"), O_RDONLY);
	/* the child's synced write is in the file (this process may have
	   page 5 cached: separate caches, coherent through the file) */
	CHECK(kernel_same("f", 5 * PG, PG, 33));
	CHECK(pread(fd, buf, PG, 0) == (ssize_t)PG && same(buf, PG, 0, 32));
	CHECK(!munmap(fork_map, 8 * PG));
	close(fd);
}

/*
 * ---- forkgaps: a fork child's new ufvm instance never lands in the
 * ranges of the mappings it is about to map again (the parent's regions
 * are not inherited, so their ranges are free in the child; a mapping of
 * ufvm's own there would be mapped over and the child hang or read
 * zeros) ----
 */

static void forkgaps_child(void *arg)
{
	size_t i, hole = (size_t)arg;

	alarm(10);	/* a hang fails the check, SIGALRM */
	for (i = 0; i < 8; i++)
		if (i != hole)
			CHECK(same(fork_map + i * PG, PG, i * PG, 34));
	CHECK_MANAGED(fork_map + (hole ? 0 : PG));
}

static void sc_forkgaps(void)
{
	static const size_t holes[] = { 6, 0, 3, 7, 5 };
	size_t k;
	int fd;

	for (k = 0; k < sizeof(holes) / sizeof(holes[0]); k++) {
		fd = make_file("g", 8, 34);
		fork_map = mmap(NULL, 8 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		CHECK(fork_map != MAP_FAILED);
		CHECK(!munmap(fork_map + holes[k] * PG, PG));
		CHECK(in_child(forkgaps_child, (void *)holes[k]) == 0);
		if (holes[k])
			CHECK(!munmap(fork_map, holes[k] * PG));
		if (holes[k] < 7)
			CHECK(!munmap(fork_map + (holes[k] + 1) * PG, (7 - holes[k]) * PG));
		close(fd);
	}
}

/* ---- exec: dirty pages reach the new image; the preload is re-armed ---- */

static void sc_exec(char *self)
{
	int fd = make_file("e", 4, 41);
	char *m = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	char *argv[] = { self, (char *)"exec-child", (char *)dir, NULL };
	char *envp[] = { (char *)"PROBE_EXEC=1", NULL, NULL, NULL, NULL };
	static char fdvar[32], pathvar[40];

	CHECK(m != MAP_FAILED);
	CHECK_MANAGED(m);
	fill(m + PG, PG, PG, 42);	/* dirty, not synced */
	/*
	 * A spawned program reads the file while this one runs on; given an
	 * environment without LD_PRELOAD, it is managed again, as after exec.
	 */
	{
		pid_t pid;
		int st;

		CHECK(!posix_spawn(&pid, self, NULL, NULL, argv, is_managed ? envp : environ));
		CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && !WEXITSTATUS(st));
	}
	if (failures)
		return;
	/*
	 * An environment without LD_PRELOAD: the preload puts itself back.
	 * By execveat, which glibc does not route through execve; a page
	 * dirtied since the spawn is in the file for the new image.
	 */
	fill(m + 2 * PG, PG, 2 * PG, 43);
	envp[1] = (char *)"PROBE_EXEC_DIRTY=1";
	setenv("PROBE_EXEC_DIRTY", "1", 1);
	/* @fd stays open in the new image, which no open() of its own made */
	snprintf(fdvar, sizeof(fdvar), "PROBE_EXEC_FD=%d", fd);
	envp[2] = fdvar;
	setenv("PROBE_EXEC_FD", fdvar + 14, 1);
	/* and an O_PATH fd of it, which reads nothing (EBADF) there either */
	snprintf(pathvar, sizeof(pathvar), "PROBE_EXEC_PATHFD=%d", open(path_of("e"), O_PATH));
	envp[3] = pathvar;
	setenv("PROBE_EXEC_PATHFD", pathvar + 18, 1);
	execveat(AT_FDCWD, self, argv, is_managed ? envp : environ, 0);
	CHECK(!"execveat");
}

static void sc_exec_child(void)
{
	int fd = open(path_of("e"), O_RDWR);
	char *m;

	CHECK(fd >= 0);
	CHECK(kernel_same("e", PG, PG, 42));
	if (getenv("PROBE_EXEC_DIRTY"))
		CHECK(kernel_same("e", 2 * PG, PG, 43));
	m = mmap(NULL, 4 * PG, PROT_READ, MAP_SHARED, fd, 0);
	CHECK(m != MAP_FAILED && same(m + PG, PG, PG, 42) && same(m, PG, 0, 41));
	if (getenv("PROBE_EXEC"))
		CHECK(is_managed && is_managed(m));
	if (getenv("PROBE_EXEC_FD")) {
		/* The inherited fd and the mapping see each other's writes. */
		int in = atoi(getenv("PROBE_EXEC_FD"));
		char *w = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		char c = 0;

		CHECK(w != MAP_FAILED);
		w[3 * PG] = 'M';
		CHECK(pread(in, &c, 1, 3 * PG) == 1 && c == 'M');
		CHECK(pwrite(in, "W", 1, 3 * PG + 1) == 1 && w[3 * PG + 1] == 'W');
		CHECK(!munmap(w, 4 * PG));	/* writes the range back */
		c = 0;
		CHECK(syscall(SYS_pread64, in, &c, 1, 3 * PG + 1) == 1 && c == 'W');
		CHECK(syscall(SYS_pread64, in, &c, 1, 3 * PG) == 1 && c == 'M');
		errno = 0;
		CHECK(pread(atoi(getenv("PROBE_EXEC_PATHFD")), &c, 1, 0) == -1 && errno == EBADF);
	}
	CHECK(!munmap(m, 4 * PG));
	close(fd);
}

/*
 * ---- vfork: a child that shares this process's memory closes its fds
 * (as Python's subprocess does) and execs: it sees this process's writes
 * as of the vfork, none are lost afterwards, and this process's fds stay
 * managed ----
 */

static char *vf_argv[5];

/* The child: close every fd but stdio (one managed fd by close()), exec. */
static int vfork_child(void *arg)
{
	close(*(int *)arg);
	syscall(SYS_close_range, 3, ~0U, 0);
	execv(vf_argv[0], vf_argv);
	_exit(127);
}

static char vf_stack[64 << 10] __attribute__((aligned(16)));

static void sc_vfork(char *self)
{
	int fd = make_file("v", 4, 91), st, round;
	char *m = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	char seed[16], buf[PG];
	pid_t pid;

	CHECK(m != MAP_FAILED);
	CHECK_MANAGED(m);
	vf_argv[0] = self;
	vf_argv[1] = (char *)"vfork-child";
	vf_argv[2] = (char *)dir;
	vf_argv[3] = seed;
	for (round = 0; round < 4; round++) {
		int dfd = dup(fd);	/* the child closes it, this process keeps it */

		fill(m, PG, 0, 92 + round);	/* dirty, not synced */
		snprintf(seed, sizeof(seed), "%d", 92 + round);
		if (round % 2 == 0) {
			pid = vfork();
			if (pid == 0)
				vfork_child(&dfd);
		} else {
			pid = clone(vfork_child, vf_stack + sizeof(vf_stack),
				    CLONE_VM | CLONE_VFORK | SIGCHLD, &dfd);
		}
		CHECK(pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) &&
		      WEXITSTATUS(st) == 0);
		/* dfd is still this file's, through ufvm */
		fill(buf, PG, 2 * PG, 100 + round);
		CHECK(pwrite(dfd, buf, PG, 2 * PG) == (ssize_t)PG &&
		      same(m + 2 * PG, PG, 2 * PG, 100 + round));
		CHECK(!close(dfd));
	}
	fill(m, PG, 0, 99);		/* after the last child: still written back */
	CHECK(!munmap(m, 4 * PG));
	CHECK(kernel_same("v", 0, PG, 99) && kernel_same("v", 2 * PG, PG, 103));
	close(fd);
}

/* The program a vfork child execs: the file holds what its parent wrote. */
static void sc_vfork_child(const char *seed)
{
	CHECK(kernel_same("v", 0, PG, (unsigned int)atoi(seed)));
	CHECK(kernel_same("v", PG, PG, 91) && kernel_same("v", 3 * PG, PG, 91));
}

/*
 * ---- vforksig: a signal that reaches the parent while its vfork child
 * runs is handled as soon as vfork returns, in the parent, which must be
 * served by the preload then: the handler's pwrite on a managed fd goes
 * through ufvm, so the mapping and pread see it.  The same for
 * clone(CLONE_VM | CLONE_VFORK); and a clone(CLONE_VM) child that runs
 * beside its parent on the parent's TLS never leaves the parent's guard
 * raised (which would send the parent's own I/O past ufvm) ----
 */

static int vs_fd;
static char vs_byte;

static void vs_handler(int sig)
{
	(void)sig;
	if (pwrite(vs_fd, &vs_byte, 1, 0) != 1)
		_exit(3);
}

static int vs_child(void *arg)
{
	(void)arg;
	kill(getppid(), SIGUSR1);
	_exit(0);
}

static int vs_beside(void *arg)
{
	char b;
	int i;

	for (i = 0; i < 200000; i++)
		if (pread(*(int *)arg, &b, 1, PG) != 1)
			_exit(3);
	_exit(0);
}

static void sc_vforksig(void)
{
	int fd = make_file("vs", 2, 121), st, round, i;
	char *m = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	struct sigaction sa = { .sa_handler = vs_handler };
	char b;
	pid_t pid;

	CHECK(m != MAP_FAILED);
	CHECK_MANAGED(m);
	vs_fd = fd;
	CHECK(!sigaction(SIGUSR1, &sa, NULL));
	for (round = 0; round < 2; round++) {
		m[0] = 'A';
		vs_byte = (char)('B' + round);
		if (round == 0) {
			pid = vfork();
			if (pid == 0)
				vs_child(NULL);
		} else {
			pid = clone(vs_child, vf_stack + sizeof(vf_stack),
				    CLONE_VM | CLONE_VFORK | SIGCHLD, NULL);
		}
		CHECK(pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) &&
		      WEXITSTATUS(st) == 0);
		b = 0;
		CHECK(m[0] == vs_byte && pread(fd, &b, 1, 0) == 1 && b == vs_byte);
	}
	/* a child beside us, on our TLS, doing I/O through the preload */
	pid = clone(vs_beside, vf_stack + sizeof(vf_stack), CLONE_VM | SIGCHLD, &fd);
	CHECK(pid > 0);
	for (i = 0; i < 200000; i++)
		if (pread(fd, &b, 1, PG) != 1)
			failures++;
	CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
	for (i = 0; i < 16; i++) {
		m[1] = (char)('a' + i);		/* dirty in ufvm only */
		b = 0;
		CHECK(pread(fd, &b, 1, 1) == 1 && b == m[1]);
	}
	CHECK(!munmap(m, 2 * PG));
	CHECK(kernel_size("vs") == (long)(2 * PG));
	close(fd);
	fd = (int)syscall(SYS_openat, AT_FDCWD, path_of("vs"), O_RDONLY);
	b = 0;
	CHECK(fd >= 0 && syscall(SYS_pread64, fd, &b, 1, 0) == 1 && b == 'C');
	syscall(SYS_close, fd);
}

/* ---- exit: dirty pages are written back on exit() and _exit() ---- */

static void exit_child(void *arg)
{
	int fd = open(path_of("x"), O_RDWR);
	char *m = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

	if (m == MAP_FAILED)
		_exit(2);
	fill(m + 2 * PG, PG, 2 * PG, 52);
	if (arg == (void *)2)
		quick_exit(0);
	if (arg)
		_exit(0);
	exit(0);
}

/* A crash: what was synced is in the file. */
static void crash_child(void *arg)
{
	int fd = open(path_of("x"), O_RDWR);
	char *m = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

	if (m == MAP_FAILED)
		_exit(2);
	fill(m + PG, PG, PG, 53);
	if (msync(m + PG, PG, MS_SYNC))
		_exit(3);
	fill(m + 3 * PG, PG, 3 * PG, 54);	/* not synced: may be lost */
	raise(SIGKILL);
}

static void sc_exit(void)
{
	close(make_file("x", 4, 51));
	CHECK(in_child(exit_child, NULL) == 0);
	CHECK(kernel_same("x", 2 * PG, PG, 52));
	close(make_file("x", 4, 51));
	CHECK(in_child(exit_child, (void *)1) == 0);
	CHECK(kernel_same("x", 2 * PG, PG, 52));
	close(make_file("x", 4, 51));
	CHECK(in_child(exit_child, (void *)2) == 0);	/* quick_exit */
	CHECK(kernel_same("x", 2 * PG, PG, 52));
	CHECK(in_child(crash_child, NULL) == 128 + SIGKILL);
	CHECK(kernel_same("x", PG, PG, 53));
}

/* ---- threads: mappings made and unmade while others read and write ---- */

#define NTHREADS 4
#define TPAGES 64

static int thr_fd;

static void *thr_main(void *arg)
{
	long t = (long)arg;
	char buf[PG];
	int i, bad = 0;

	for (i = 0; i < 50; i++) {
		char *m = mmap(NULL, TPAGES * PG, PROT_READ | PROT_WRITE, MAP_SHARED, thr_fd, 0);
		int p = (int)(t + (long)NTHREADS * (i % (TPAGES / NTHREADS)));

		if (m == MAP_FAILED)
			return (void *)1L;
		fill(m + (size_t)p * PG, PG, (uint64_t)p * PG, (unsigned int)(60 + t + i));
		if (pread(thr_fd, buf, PG, (off_t)p * PG) != (ssize_t)PG ||
		    !same(buf, PG, (uint64_t)p * PG, (unsigned int)(60 + t + i)))
			bad++;
		fill(buf, PG, (uint64_t)p * PG, (unsigned int)(160 + t + i));
		if (pwrite(thr_fd, buf, PG, (off_t)p * PG) != (ssize_t)PG ||
		    !same(m + (size_t)p * PG, PG, (uint64_t)p * PG, (unsigned int)(160 + t + i)))
			bad++;
		munmap(m, TPAGES * PG);
	}
	return (void *)(long)bad;
}

static void sc_threads(void)
{
	pthread_t th[NTHREADS];
	void *ret;
	long t;

	thr_fd = make_file("t", TPAGES, 61);
	for (t = 0; t < NTHREADS; t++)
		CHECK(!pthread_create(&th[t], NULL, thr_main, (void *)t));
	for (t = 0; t < NTHREADS; t++) {
		CHECK(!pthread_join(th[t], &ret));
		CHECK(ret == NULL);
	}
	close(thr_fd);
}

/*
 * ---- split: mprotect, munmap and MAP_FIXED on parts of a mapping while
 * other threads read the parts that stay (they must never fault) ----
 */

#define SPAGES 384	/* readers: [0, 32) and [96, 128); a tail is cut page by page */

static const char *volatile split_map;
static volatile int split_stop;

static void *split_reader(void *arg)
{
	unsigned long i = (unsigned long)arg, bad = 0;

	while (!split_stop) {
		size_t pg = (i % 64) < 32 ? i % 32 : 96 + i % 32;
		size_t off = pg * PG + (i * 131) % PG;

		bad += (uint8_t)split_map[off] != pat(off, 81);
		i++;
	}
	return (void *)bad;
}

static void sc_split(void)
{
	int fd = make_file("s", SPAGES, 81);
	char *m = mmap(NULL, SPAGES * PG, PROT_READ, MAP_SHARED, fd, 0);
	pthread_t th[2];
	void *ret;
	long t;

	CHECK(m != MAP_FAILED);
	CHECK_MANAGED(m);
	split_map = m;
	for (t = 0; t < 2; t++)
		CHECK(!pthread_create(&th[t], NULL, split_reader, (void *)(t * 7)));
	for (size_t end = SPAGES; end > 128; end--) {
		CHECK(!mprotect(m + 16 * PG, 32 * PG, PROT_READ | PROT_WRITE));
		CHECK(mmap(m + 40 * PG, 48 * PG, PROT_READ, MAP_SHARED | MAP_FIXED, fd,
			   40 * PG) == m + 40 * PG);
		CHECK(!munmap(m + (end - 1) * PG, PG));	/* cuts [96, end) */
		CHECK(!mprotect(m, (end - 1) * PG, PROT_READ));
		if (end % 32 == 0)
			CHECK(!madvise(m, (end - 1) * PG, MADV_DONTNEED));
	}
	split_stop = 1;
	for (t = 0; t < 2; t++) {
		CHECK(!pthread_join(th[t], &ret));
		CHECK(ret == NULL);
	}
	CHECK_MANAGED(m + 100 * PG);
	CHECK(!munmap(m, 128 * PG));
	close(fd);
}

/*
 * ---- signal: a signal handler's I/O on a managed file (pread, pwrite,
 * read: async-signal-safe) never waits for a lock of the preload that the
 * frame it interrupted holds ----
 */

static int sig_fd, sig_rfd;
static volatile long sig_count;

static void sig_handler(int sig)
{
	char b[8];
	int e = errno;

	(void)sig;
	if (pwrite(sig_fd, "s", 1, 2 * PG) != 1 || pread(sig_fd, b, 1, 0) != 1)
		_exit(3);
	/* the same position lock as the main loop's read() */
	if (lseek(sig_rfd + 64, 0, SEEK_SET) || read(sig_rfd + 64, b, 1) != 1)
		_exit(4);
	sig_count++;
	errno = e;
}

static void signal_child(void *arg)
{
	struct sigaction sa = { .sa_handler = sig_handler, .sa_flags = SA_RESTART };
	struct itimerval it = { { 0, 50 }, { 0, 50 } };
	char *m = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, sig_fd, 0);
	char b[8];
	int i, fd;

	(void)arg;
	CHECK(m != MAP_FAILED);
	CHECK_MANAGED(m);
	sig_rfd = open(path_of("sig"), O_RDONLY);
	CHECK(sig_rfd >= 0 && dup2(sig_rfd, sig_rfd + 64) == sig_rfd + 64);
	CHECK(!sigaction(SIGALRM, &sa, NULL) && !setitimer(ITIMER_REAL, &it, NULL));
	for (i = 0; i < 12000; i++) {
		fd = open(path_of("sig"), O_RDONLY);	/* tracking takes the preload's lock */
		if (fd < 0 || pread(fd, b, 1, 0) != 1)
			failures++;
		close(fd);
		if (lseek(sig_rfd, 0, SEEK_SET) || read(sig_rfd, b, 1) != 1)
			failures++;
	}
	it = (struct itimerval){ { 0, 0 }, { 0, 0 } };
	setitimer(ITIMER_REAL, &it, NULL);
	CHECK(sig_count > 0);
	CHECK(!munmap(m, 4 * PG));
}

static void sc_signal(void)
{
	sig_fd = make_file("sig", 4, 75);
	CHECK(in_child_within(signal_child, NULL, 20) == 0);
	close(sig_fd);
}

/* ---- efault: a managed mapping as the buffer of a pipe's read/write ---- */

static void sc_efault(void)
{
	int fd = make_file("b", 8, 71), pfd[2];
	char *m = mmap(NULL, 8 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	char buf[2 * PG];

	CHECK(m != MAP_FAILED);
	CHECK_MANAGED(m);
	CHECK(!pipe(pfd));
	/* never touched before: with the sigsegv backend the kernel alone
	   would fail these with EFAULT */
	CHECK(write(pfd[1], m + 2 * PG, 2 * PG) == (ssize_t)(2 * PG));
	CHECK(read(pfd[0], buf, 2 * PG) == (ssize_t)(2 * PG) && same(buf, 2 * PG, 2 * PG, 71));
	fill(buf, 2 * PG, 5 * PG, 72);
	CHECK(write(pfd[1], buf, 2 * PG) == (ssize_t)(2 * PG));
	CHECK(read(pfd[0], m + 5 * PG, 2 * PG) == (ssize_t)(2 * PG));
	CHECK(same(m + 5 * PG, 2 * PG, 5 * PG, 72));
	CHECK(pread(fd, buf, PG, 6 * PG) == (ssize_t)PG && same(buf, PG, 6 * PG, 72));
	close(pfd[0]);
	close(pfd[1]);
	CHECK(!munmap(m, 8 * PG));
	close(fd);
}

/*
 * ---- splice: to and from a pipe, coherent with the mapping ----
 *
 * Out of a managed file into a pipe the pipe gets what the mapping shows,
 * written there and not yet synced; from a pipe into a managed file the
 * mapping, read and a later write-back show the pipe's bytes, over a page
 * the mapping had dirtied.  The kernel's own semantics stay: the offsets
 * and the file position move, a splice into a pipe stops where the pipe is
 * full instead of waiting for a reader, and the refusals are the kernel's.
 */
static void sc_splice(void)
{
	int fd = make_file("s", 64, 81), pfd[2], wfd, afd;
	char *m = mmap(NULL, 64 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	static char buf[64 * PG];
	loff_t off;
	ssize_t r, got;
	struct stat st;

	CHECK(m != MAP_FAILED);
	CHECK_MANAGED(m);
	CHECK(!pipe(pfd));

	/* file -> pipe at an offset: the mapping's unsynced bytes */
	fill(m + 2 * PG, PG, 2 * PG, 82);
	off = 2 * PG;
	CHECK(splice(fd, &off, pfd[1], NULL, PG, 0) == (ssize_t)PG && off == (loff_t)(3 * PG));
	CHECK(read(pfd[0], buf, PG) == (ssize_t)PG && same(buf, PG, 2 * PG, 82));

	/* ... at the file position, which moves */
	fill(m + 5 * PG, 2 * PG, 5 * PG, 83);
	CHECK(lseek(fd, 5 * PG, SEEK_SET) == (off_t)(5 * PG));
	CHECK(splice(fd, NULL, pfd[1], NULL, 2 * PG, 0) == (ssize_t)(2 * PG));
	CHECK(lseek(fd, 0, SEEK_CUR) == (off_t)(7 * PG));
	CHECK(read(pfd[0], buf, 2 * PG) == (ssize_t)(2 * PG) && same(buf, 2 * PG, 5 * PG, 83));

	/* ... more than the pipe holds: a short splice, not a wait for a reader */
	fill(m + 8 * PG, 48 * PG, 8 * PG, 84);
	off = 8 * PG;
	r = splice(fd, &off, pfd[1], NULL, 48 * PG, 0);
	CHECK(r > 0 && r < (ssize_t)(48 * PG) && off == (loff_t)(8 * PG) + r);
	for (got = 0; r > 0 && got < r; got += read(pfd[0], buf + got, (size_t)(r - got)))
		;
	CHECK(r > 0 && got == r && same(buf, (size_t)r, 8 * PG, 84));

	/* pipe -> file at an offset, over a page the mapping dirtied */
	fill(m + 3 * PG, PG, 3 * PG, 85);
	fill(buf, PG + 100, 3 * PG + 50, 86);
	CHECK(write(pfd[1], buf, PG + 100) == (ssize_t)(PG + 100));
	off = 3 * PG + 50;
	CHECK(splice(pfd[0], NULL, fd, &off, 2 * PG, 0) == (ssize_t)(PG + 100) &&
	      off == (loff_t)(4 * PG + 150));
	CHECK(same(m + 3 * PG, 50, 3 * PG, 85) && same(m + 3 * PG + 50, PG + 100, 3 * PG + 50, 86) &&
	      same(m + 4 * PG + 150, PG - 150, 4 * PG + 150, 81));
	CHECK(pread(fd, buf, PG + 100, 3 * PG + 50) == (ssize_t)(PG + 100) &&
	      same(buf, PG + 100, 3 * PG + 50, 86));
	CHECK(!msync(m, 64 * PG, MS_SYNC));
	CHECK(kernel_same("s", 3 * PG, 50, 85) && kernel_same("s", 3 * PG + 50, PG + 100, 86));

	/* ... at the file position, growing the file */
	fill(buf, PG, 64 * PG, 87);
	CHECK(write(pfd[1], buf, PG) == (ssize_t)PG);
	CHECK(lseek(fd, 64 * PG, SEEK_SET) == (off_t)(64 * PG));
	CHECK(splice(pfd[0], NULL, fd, NULL, PG, 0) == (ssize_t)PG);
	CHECK(lseek(fd, 0, SEEK_CUR) == (off_t)(65 * PG));
	CHECK(!fstat(fd, &st) && st.st_size == (off_t)(65 * PG));
	CHECK(pread(fd, buf, PG, 64 * PG) == (ssize_t)PG && same(buf, PG, 64 * PG, 87));

	/* the kernel's refusals and its empty, non-blocking pipe */
	errno = 0;
	CHECK(splice(pfd[0], NULL, fd, NULL, PG, SPLICE_F_NONBLOCK) == -1 && errno == EAGAIN);
	errno = 0;
	off = 0;
	CHECK(splice(pfd[0], &off, fd, NULL, PG, 0) == -1 && errno == ESPIPE);
	errno = 0;
	off = -1;
	CHECK(splice(pfd[0], NULL, fd, &off, PG, 0) == -1 && errno == EINVAL);
	afd = open(path_of("s"), O_WRONLY | O_APPEND);
	errno = 0;
	CHECK(afd >= 0 && splice(pfd[0], NULL, afd, NULL, PG, 0) == -1 && errno == EINVAL);
	close(afd);
	wfd = open(path_of("s"), O_WRONLY);
	errno = 0;
	CHECK(wfd >= 0 && splice(wfd, NULL, pfd[1], NULL, PG, 0) == -1 && errno == EBADF);
	close(wfd);
	errno = 0;
	CHECK(splice(fd, NULL, fd, NULL, PG, 0) == -1 && errno == EINVAL);
	CHECK(splice(pfd[0], NULL, fd, NULL, 0, 0) == 0);
	close(pfd[1]);
	CHECK(splice(pfd[0], NULL, fd, NULL, PG, 0) == 0);	/* no writer left: end */
	close(pfd[0]);
	CHECK(!munmap(m, 64 * PG));
	close(fd);
}

/* ---- unmanaged: private, executable and anonymous mappings still work ---- */

static void sc_unmanaged(void)
{
	int fd = make_file("u", 4, 81);
	char *s = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	char *p, *x, *a;

	CHECK(s != MAP_FAILED);
	CHECK_MANAGED(s);
	fill(s, PG, 0, 82);		/* dirty in ufvm: a private mapping must see it */
	p = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	CHECK(p != MAP_FAILED && same(p, PG, 0, 82) && same(p + PG, PG, PG, 81));
	CHECK(!is_managed || !is_managed(p));
	p[0] ^= 1;			/* private: the file does not change */
	CHECK(same(s, PG, 0, 82));
	x = mmap(NULL, PG, PROT_READ | PROT_EXEC, MAP_SHARED, fd, 0);
	CHECK(x != MAP_FAILED && same(x, PG, 0, 82));
	a = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK(a != MAP_FAILED && zeros(a, PG));
	CHECK(!munmap(p, 4 * PG) && !munmap(x, PG) && !munmap(a, PG) && !munmap(s, 4 * PG));
	close(fd);
}

/* ---- trunc: O_TRUNC where ufvm has the file, and where only the driver can ---- */

/* Does the tracefs file @path hold @what?  (Read whole.) */
static bool trace_holds(const char *path, const char *what)
{
	static char buf[1 << 16];
	size_t len = 0;
	ssize_t n;
	int fd = open(path, O_RDONLY);

	CHECK(fd >= 0);
	if (fd < 0)
		return false;
	while (len < sizeof(buf) - 1 && (n = read(fd, buf + len, sizeof(buf) - 1 - len)) > 0)
		len += (size_t)n;
	buf[len] = 0;
	close(fd);
	return strstr(buf, what) != NULL;
}

static void sc_trunc(void)
{
	static const char mark[] = "ufvm-probe-trunc-mark\n";
	char inst[128], path[192];
	int fd = make_file("t", 4, 91), fd2;
	bool mounted = false;
	char *s = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	struct stat st;

	CHECK(s != MAP_FAILED);
	CHECK_MANAGED(s);
	fill(s, PG, 0, 92);		/* dirty in ufvm's cache */
	/* A managed file: truncated through ufvm, the dirty page gone too. */
	fd2 = open(path_of("t"), O_WRONLY | O_TRUNC);
	CHECK(fd2 >= 0 && !fstat(fd2, &st) && st.st_size == 0 && !fstat(fd, &st) && st.st_size == 0);
	close(fd2);
	CHECK(!munmap(s, 4 * PG));
	close(fd);
	/*
	 * A tracefs instance's buffer: emptied by the driver's O_TRUNC open
	 * only.  A fresh machine may not have tracefs mounted: mounted here
	 * for the test (root only), and unmounted after.
	 */
	if (access("/sys/kernel/tracing/instances", F_OK) &&
	    !mount("tracefs", "/sys/kernel/tracing", "tracefs", 0, NULL))
		mounted = true;
	snprintf(inst, sizeof(inst), "/sys/kernel/tracing/instances/ufvm-probe-%d", (int)getpid());
	if (mkdir(inst, 0755)) {
		printf("probe trunc: no tracefs instance (%s): skipped\n", strerror(errno));
		exit(77);
	}
	snprintf(path, sizeof(path), "%s/trace_marker", inst);
	fd = open(path, O_WRONLY);
	CHECK(fd >= 0 && write(fd, mark, sizeof(mark) - 1) == (ssize_t)sizeof(mark) - 1);
	close(fd);
	snprintf(path, sizeof(path), "%s/trace", inst);
	CHECK(trace_holds(path, "ufvm-probe-trunc-mark"));
	fd = open(path, O_WRONLY | O_TRUNC);
	CHECK(fd >= 0);
	close(fd);
	CHECK(!trace_holds(path, "ufvm-probe-trunc-mark"));
	CHECK(!rmdir(inst));
	if (mounted)
		CHECK(!umount2("/sys/kernel/tracing", MNT_DETACH));
}

/*
 * ---- dupfds: two threads write() 8-byte records through an fd and its
 * dup() (one file position), then two read() the file back through them:
 * every record lands in a slot of its own, every byte is read once (the
 * kernel serialises the shared position; so must the preload: one
 * position lock per file, not per fd number) ----
 */

#define DUP_RECS 20000
#define DUP_ROUNDS 1

static int dup_fds[2];
static uint64_t dup_read[2];

static void *dup_writer(void *arg)
{
	uint64_t t = (uint64_t)(uintptr_t)arg;

	for (uint64_t i = 0; i < DUP_RECS; i++) {
		uint64_t rec = t << 32 | i;

		if (write(dup_fds[t], &rec, sizeof(rec)) != (ssize_t)sizeof(rec))
			return (void *)1;
	}
	return NULL;
}

static void *dup_reader(void *arg)
{
	uint64_t t = (uint64_t)(uintptr_t)arg, rec;
	ssize_t r;

	while ((r = read(dup_fds[t], &rec, sizeof(rec))) > 0)
		dup_read[t] += (uint64_t)r;
	return r < 0 ? (void *)1 : NULL;
}

/* Run @fn on both fds at once.  Return: a thread failed. */
static bool dup_both(void *(*fn)(void *))
{
	pthread_t th[2];
	void *ret;
	bool bad = false;

	for (uintptr_t t = 0; t < 2; t++)
		CHECK(!pthread_create(&th[t], NULL, fn, (void *)t));
	for (int t = 0; t < 2; t++) {
		CHECK(!pthread_join(th[t], &ret));
		bad |= ret != NULL;
	}
	return bad;
}

static void sc_dupfds(void)
{
	const size_t size = 2 * DUP_RECS * sizeof(uint64_t);
	uint64_t *recs = malloc(size);
	int fd = make_file("dup", 1, 71);
	char *m = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

	CHECK(recs && m != MAP_FAILED);
	CHECK_MANAGED(m);
	dup_fds[0] = fd;
	dup_fds[1] = dup(fd);
	CHECK(dup_fds[1] >= 0);
	for (int round = 0; round < DUP_ROUNDS && !failures; round++) {
		uint64_t seen[2] = { 0, 0 };
		struct stat st;

		CHECK(!ftruncate(fd, 0) && lseek(fd, 0, SEEK_SET) == 0);
		CHECK(!dup_both(dup_writer));
		CHECK(!fstat(fd, &st) && (size_t)st.st_size == size);
		CHECK(pread(fd, recs, size, 0) == (ssize_t)size);
		for (size_t i = 0; i < size / sizeof(*recs); i++)
			if (recs[i] >> 32 < 2 && (recs[i] & 0xffffffffu) < DUP_RECS)
				seen[recs[i] >> 32]++;
		CHECK(seen[0] == DUP_RECS && seen[1] == DUP_RECS);
		dup_read[0] = dup_read[1] = 0;
		CHECK(lseek(fd, 0, SEEK_SET) == 0);
		CHECK(!dup_both(dup_reader));
		CHECK(dup_read[0] + dup_read[1] == size);
		if (failures)
			fprintf(stderr, "probe dupfds: round %d: size %lld, records %llu + %llu, "
				"%llu bytes read, of %zu and %d each\n", round, (long long)st.st_size,
				(unsigned long long)seen[0], (unsigned long long)seen[1],
				(unsigned long long)(dup_read[0] + dup_read[1]), size, DUP_RECS);
	}
	munmap(m, PG);
	close(dup_fds[1]);
	close(fd);
	free(recs);
}

/*
 * ---- unlinked: a file the preload tracks stays managed by every fd and
 * mapping of it, whatever it is called: unlinked (a new mapping of its fd,
 * a new fd from /proc/self/fd), or reached through a hard link whose name
 * UFVM_MATCH leaves out (run-probe.sh's "match" mode excludes DIR/excl), O_TRUNC
 * included ----
 */

static void sc_unlinked(void)
{
	char proc[64], hl[512], c;
	int fd = make_file("ul", 2, 73), fd2, fd3;
	char *m1 = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), *m2;
	struct stat st;

	CHECK(m1 != MAP_FAILED);
	CHECK_MANAGED(m1);
	m1[0] = 'a';
	CHECK(!unlink(path_of("ul")));
	m2 = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	CHECK(m2 != MAP_FAILED);
	CHECK_MANAGED(m2);
	CHECK(m2[0] == 'a');
	m2[1] = 'b';
	CHECK(m1[1] == 'b');
	CHECK(pwrite(fd, "c", 1, 2) == 1);
	CHECK(m1[2] == 'c' && m2[2] == 'c');
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	fd2 = open(proc, O_RDWR);
	CHECK(fd2 >= 0);
	CHECK(pread(fd2, &c, 1, 1) == 1 && c == 'b');
	CHECK(pwrite(fd2, "d", 1, 3) == 1);
	CHECK(m1[3] == 'd');
	munmap(m2, 2 * PG);
	munmap(m1, 2 * PG);
	close(fd2);
	close(fd);

	/* A hard link, by a name the match may leave out. */
	fd = make_file("hl", 1, 74);
	m1 = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	CHECK(m1 != MAP_FAILED);
	CHECK_MANAGED(m1);
	m1[0] = 'e';
	snprintf(hl, sizeof(hl), "%s/excl", dir);
	CHECK(!mkdir(hl, 0755) || errno == EEXIST);
	snprintf(hl, sizeof(hl), "%s/excl/hl", dir);
	unlink(hl);
	CHECK(!link(path_of("hl"), hl));
	fd2 = open(hl, O_RDWR);
	CHECK(fd2 >= 0 && pread(fd2, &c, 1, 0) == 1 && c == 'e');
	CHECK(pwrite(fd2, "f", 1, 1) == 1);
	CHECK(m1[1] == 'f');
	munmap(m1, PG);
	fd3 = open(hl, O_WRONLY | O_TRUNC);
	CHECK(fd3 >= 0);
	CHECK(!fstat(fd, &st) && st.st_size == 0);
	CHECK(pwrite(fd3, "new", 3, 0) == 3);
	CHECK(pread(fd, proc, 4, 0) == 3 && !memcmp(proc, "new", 3));
	close(fd3);
	close(fd2);
	close(fd);
	fd = (int)syscall(SYS_openat, AT_FDCWD, hl, O_RDONLY);	/* the kernel's view */
	CHECK(fd >= 0 && syscall(SYS_pread64, fd, proc, 8, 0) == 3 && !memcmp(proc, "new", 3));
	if (fd >= 0)
		syscall(SYS_close, fd);
}

/*
 * ---- readonly: a managed file made read-only by its mode, for a user
 * the mode binds (run it as one): truncate() by its path is refused, as
 * the kernel's is; a fork child, which cannot open it again through ufvm,
 * serves its fds through the kernel: they read and write as they did ----
 */

static void readonly_child(void *arg)
{
	int fd = *(int *)arg;
	char c = 0;

	CHECK(pread(fd, &c, 1, 0) == 1 && c == 'p');
	CHECK(pwrite(fd, "c", 1, 1) == 1);
	CHECK(lseek(fd, 0, SEEK_SET) == 0 && read(fd, &c, 1) == 1 && c == 'p');
}

static void sc_readonly(void)
{
	int fd = make_file("ro", 2, 76);
	char *m = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), c;

	CHECK(m != MAP_FAILED);
	CHECK_MANAGED(m);
	m[0] = 'p';
	munmap(m, 2 * PG);
	CHECK(!chmod(path_of("ro"), 0444));
	if (geteuid()) {	/* root may write anything */
		struct stat st;

		CHECK(truncate(path_of("ro"), 10) == -1 && errno == EACCES);
		CHECK(!fstat(fd, &st) && st.st_size == (off_t)(2 * PG));
	}
	CHECK(in_child(readonly_child, &fd) == 0);
	/* The child's write, in the file (this process's cache has the page). */
	CHECK(syscall(SYS_pread64, fd, &c, 1, 1) == 1 && c == 'c');
	close(fd);
}

/*
 * ---- edges: the kernel's refusals on a managed file, which the preload
 * must make as the kernel does, in its order (each checked against the
 * kernel's own run of the probe) ----
 */

static void sc_edges(void)
{
	int fd = make_file("ed", 2, 77), wr = open(path_of("ed"), O_WRONLY), ap, i;
	char *m = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), buf[16];
	static struct iovec iov[1025];
	off_t off = -1;

	CHECK(m != MAP_FAILED && wr >= 0);
	CHECK_MANAGED(m);
	m[0] = 'M';
	errno = 0;
	CHECK(pread(wr, buf, 1, -1) == -1 && errno == EINVAL);	/* before EBADF */
	CHECK(pread(fd, buf, 10, LLONG_MAX - 5) == -1 && errno == EINVAL);
	CHECK(pwrite(fd, buf, 10, LLONG_MAX - 5) == -1 && errno == EINVAL);
	for (i = 0; i < 1025; i++)
		iov[i] = (struct iovec){ .iov_base = buf, .iov_len = 1 };
	buf[0] = 'z';
	CHECK(pwritev(fd, iov, 1025, 0) == -1 && errno == EINVAL);
	CHECK(writev(fd, iov, 1025) == -1 && errno == EINVAL);
	CHECK(readv(fd, iov, 1025) == -1 && errno == EINVAL);
	CHECK(preadv(fd, iov, 1025, 0) == -1 && errno == EINVAL);
	CHECK(m[0] == 'M');	/* nothing written */
	CHECK(lseek(fd, -1, SEEK_HOLE) == -1 && errno == ENXIO);
	CHECK(lseek(fd, -1, SEEK_DATA) == -1 && errno == ENXIO);
	CHECK(sync_file_range(fd, 0, 0, 0x100) == -1 && errno == EINVAL);
	CHECK(sync_file_range(fd, -1, 0, SYNC_FILE_RANGE_WRITE) == -1 && errno == EINVAL);
	ap = open(path_of("ed-out"), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
	CHECK(ap >= 0);
	CHECK(sendfile(ap, fd, NULL, 10) == -1 && errno == EINVAL);
	close(ap);
	ap = open(path_of("ed-out"), O_WRONLY);
	CHECK(sendfile(ap, fd, &off, 1) == -1 && errno == EINVAL);
	close(ap);
	munmap(m, 2 * PG);
	close(wr);
	close(fd);
}

/*
 * ---- times: a file's modification time, as the kernel keeps it: a
 * write() or pwrite() sets it at once; times the program sets (futimens,
 * utimensat, utimes) after storing into a mapping stay, though the pages
 * are written back later (unmap, close) ----
 */

static time_t mtime_of(const char *name)
{
	struct stat st;

	return stat(path_of(name), &st) ? -1 : st.st_mtime;
}

static void sc_times(void)
{
	const time_t past = time(NULL) - 100000;
	struct timespec ts[2] = { { .tv_sec = past }, { .tv_sec = past } };
	struct timeval tv[2] = { { .tv_sec = past - 10 }, { .tv_sec = past - 10 } };
	int fd = make_file("tm", 2, 78);
	char *m = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), got[2];

	CHECK(m != MAP_FAILED);
	CHECK_MANAGED(m);
	CHECK(!futimens(fd, ts));
	CHECK(pwrite(fd, "w", 1, 0) == 1);
	CHECK(mtime_of("tm") > past + 1000);	/* the write's, at once */

	m[1] = 'x';				/* dirty, not written back yet */
	CHECK(!futimens(fd, ts));
	CHECK(mtime_of("tm") == past);
	m[PG] = 'y';
	CHECK(!utimensat(AT_FDCWD, path_of("tm"), ts, 0));
	CHECK(mtime_of("tm") == past);
	m[PG + 1] = 'z';
	CHECK(!utimes(path_of("tm"), tv));	/* glibc's goes to the kernel directly */
	munmap(m, 2 * PG);
	close(fd);
	CHECK(mtime_of("tm") == past - 10);	/* after the write-back of the stores */
	fd = (int)syscall(SYS_openat, AT_FDCWD, path_of("tm"), O_RDONLY);	/* the kernel's view */
	CHECK(fd >= 0 && syscall(SYS_pread64, fd, got, 2, 0) == 2 && !memcmp(got, "wx", 2) &&
	      syscall(SYS_pread64, fd, got, 2, PG) == 2 && !memcmp(got, "yz", 2));
	if (fd >= 0)
		syscall(SYS_close, fd);
}

/*
 * ---- locks: the process's POSIX (fcntl) locks on a managed file stay
 * through the preload's own work on it: an O_RDONLY|O_TRUNC open (which
 * Linux truncates) must not open and close the file (any close of an fd
 * of a file drops every such lock of the process on it) ----
 */

static pid_t locks_parent;

static void locks_child(void *arg)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	int fd = open(path_of("lk"), O_RDWR);

	(void)arg;
	CHECK(fd >= 0 && !fcntl(fd, F_GETLK, &fl));
	CHECK(fl.l_type == F_WRLCK && fl.l_pid == locks_parent);	/* still held */
	close(fd);
}

static void sc_locks(void)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	int fd = make_file("lk", 2, 79), fd2;
	char *m = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	struct stat st;

	CHECK(m != MAP_FAILED);
	CHECK_MANAGED(m);
	m[0] = 'l';
	munmap(m, 2 * PG);
	CHECK(!fcntl(fd, F_SETLK, &fl));
	locks_parent = getpid();
	fd2 = open(path_of("lk"), O_RDONLY | O_TRUNC);
	CHECK(fd2 >= 0 && !fstat(fd2, &st) && st.st_size == 0);
	CHECK(in_child(locks_child, NULL) == 0);
	close(fd2);
	close(fd);
}

/*
 * ---- privclose: a program thread that closes fd numbers it never opened
 * (a daemon closing "every other fd") beside another thread's opens and
 * last closes of a managed file: the file stays managed (the preload's own
 * fd of it, if closed as it was made, is made again), every write reaches
 * it, and the preload's close of its fd at the file's last close never
 * closes one the program opened since.  The preload's fds are numbered
 * from 100 (F_DUPFD): the closer closes 100-103, then takes the lowest
 * number from 100 for an fd of its own, holds it a moment and checks it is
 * still open ----
 */

#define PRIV_ROUNDS	400
#define PRIV_PAGES	16

static atomic_int priv_done;
static unsigned long priv_foreign, priv_stolen, priv_tries;

static void *priv_closer(void *arg)
{
	int null = open("/dev/null", O_RDONLY | O_CLOEXEC);

	(void)arg;
	if (null < 0)
		return (void *)1;
	while (!atomic_load(&priv_done)) {
		int x;

		for (int n = 100; n < 104; n++)
			if (!close(n))
				priv_foreign++;	/* the preload's, as it was made: it makes another */
		x = fcntl(null, F_DUPFD_CLOEXEC, 100);
		if (x < 0)
			continue;
		priv_tries++;
		usleep(20);
		if (fcntl(x, F_GETFD) < 0 || close(x))
			priv_stolen++;	/* closed behind our back */
	}
	close(null);
	return NULL;
}

static void sc_privclose(void)
{
	char buf[PRIV_ROUNDS];
	pthread_t th;
	int fd, lost = 0;
	void *ret;

	close(make_file("pc", PRIV_PAGES, 81));
	CHECK(pthread_create(&th, NULL, priv_closer, NULL) == 0);
	for (int round = 0; round < PRIV_ROUNDS && !failures; round++) {
		fd = open(path_of("pc"), O_RDWR);
		char *m = fd < 0 ? MAP_FAILED :
			  mmap(NULL, PRIV_PAGES * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

		CHECK(m != MAP_FAILED);
		if (m == MAP_FAILED)
			break;
		CHECK_MANAGED(m);
		for (int pg = 0; pg < PRIV_PAGES; pg++)
			m[pg * PG + round] = (char)(round + 1);	/* the last close writes them back */
		munmap(m, PRIV_PAGES * PG);
		CHECK(!close(fd));
	}
	atomic_store(&priv_done, 1);
	CHECK(pthread_join(th, &ret) == 0 && !ret);
	fd = open(path_of("pc"), O_RDONLY);
	CHECK(fd >= 0);
	for (int pg = 0; pg < PRIV_PAGES && fd >= 0; pg++) {
		CHECK(pread(fd, buf, PRIV_ROUNDS, (off_t)pg * PG) == PRIV_ROUNDS);
		for (int round = 0; round < PRIV_ROUNDS; round++)
			lost += buf[round] != (char)(round + 1);
	}
	close(fd);
	if (priv_stolen || lost)
		fprintf(stderr, "probe privclose: %lu of %lu fds of the program's own closed "
			"behind its back; %d bytes written lost; %lu closes of numbers it never "
			"had succeeded\n", priv_stolen, priv_tries, lost, priv_foreign);
	CHECK(priv_stolen == 0 && lost == 0);
}

/*
 * ---- cancel: a thread cancelled at its close() of a managed file's last
 * fd (close() is a cancellation point) leaves the preload usable: its own
 * fd of the file, closed in that call, is not left marked as closing
 * (every close() of that number would wait for ever) nor its lock held ----
 */

static void *cancel_worker(void *arg)
{
	int fd = open(path_of("cn"), O_RDWR);
	char *m = fd < 0 ? MAP_FAILED : mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

	(void)arg;
	if (m == MAP_FAILED)
		return NULL;
	CHECK_MANAGED(m);
	m[0] = 'c';
	munmap(m, PG);
	pthread_cancel(pthread_self());	/* acted upon at the next cancellation point */
	close(fd);
	return NULL;			/* not reached */
}

static void sc_cancel(void)
{
	pthread_t th;
	void *ret;
	char *m;
	int fd;

	close(make_file("cn", 1, 83));
	CHECK(pthread_create(&th, NULL, cancel_worker, NULL) == 0);
	CHECK(pthread_join(th, &ret) == 0 && ret == PTHREAD_CANCELED);
	alarm(20);	/* a hang below kills the probe */
	for (int n = 100; n < 104; n++)
		close(n);
	fd = open(path_of("cn"), O_RDWR);
	m = fd < 0 ? MAP_FAILED : mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	CHECK(m != MAP_FAILED);
	if (m != MAP_FAILED) {
		CHECK_MANAGED(m);
		CHECK(m[0] == 'c');
		munmap(m, PG);
	}
	close(fd);
	alarm(0);
}

int main(int argc, char **argv)
{
	if (argc != 3 && argc != 4) {
		fprintf(stderr, "usage: probe SCENARIO DIR\n");
		return 2;
	}
	scenario = argv[1];
	dir = argv[2];
	is_managed = (int (*)(const void *))dlsym(RTLD_DEFAULT, "ufvm_preload_managed");
	backend = (const char *(*)(void))dlsym(RTLD_DEFAULT, "ufvm_preload_backend");
	if (getenv("PROBE_EXPECT") && !strcmp(getenv("PROBE_EXPECT"), "unmanaged"))
		expect_managed = 0;
	if (!strcmp(scenario, "coherence"))
		sc_coherence();
	else if (!strcmp(scenario, "append"))
		sc_append();
	else if (!strcmp(scenario, "appendfail"))
		sc_appendfail();
	else if (!strcmp(scenario, "appendshared"))
		sc_appendshared();
	else if (!strcmp(scenario, "fdcalls"))
		sc_fdcalls();
	else if (!strcmp(scenario, "remap"))
		sc_remap();
	else if (!strcmp(scenario, "protect"))
		sc_protect();
	else if (!strcmp(scenario, "fork"))
		sc_fork();
	else if (!strcmp(scenario, "forkgaps"))
		sc_forkgaps();
	else if (!strcmp(scenario, "exec"))
		sc_exec(argv[0]);
	else if (!strcmp(scenario, "exec-child"))
		sc_exec_child();
	else if (!strcmp(scenario, "vfork"))
		sc_vfork(argv[0]);
	else if (!strcmp(scenario, "vforksig"))
		sc_vforksig();
	else if (!strcmp(scenario, "vfork-child") && argc == 4)
		sc_vfork_child(argv[3]);
	else if (!strcmp(scenario, "exit"))
		sc_exit();
	else if (!strcmp(scenario, "threads"))
		sc_threads();
	else if (!strcmp(scenario, "split"))
		sc_split();
	else if (!strcmp(scenario, "signal"))
		sc_signal();
	else if (!strcmp(scenario, "efault"))
		sc_efault();
	else if (!strcmp(scenario, "splice"))
		sc_splice();
	else if (!strcmp(scenario, "unmanaged"))
		sc_unmanaged();
	else if (!strcmp(scenario, "trunc"))
		sc_trunc();
	else if (!strcmp(scenario, "dupfds"))
		sc_dupfds();
	else if (!strcmp(scenario, "unlinked"))
		sc_unlinked();
	else if (!strcmp(scenario, "readonly"))
		sc_readonly();
	else if (!strcmp(scenario, "edges"))
		sc_edges();
	else if (!strcmp(scenario, "times"))
		sc_times();
	else if (!strcmp(scenario, "locks"))
		sc_locks();
	else if (!strcmp(scenario, "privclose"))
		sc_privclose();
	else if (!strcmp(scenario, "cancel"))
		sc_cancel();
	else {
		fprintf(stderr, "probe: unknown scenario %s\n", scenario);
		return 2;
	}
	if (failures) {
		fprintf(stderr, "probe %s: %d check(s) failed\n", scenario, failures);
		return 1;
	}
	printf("probe %s: ok (%s)\n", scenario,
	       is_managed && expect_managed ? "managed by ufvm" : "kernel mappings");
	return 0;
}
