/* SPDX-License-Identifier: MIT */
/*
 * preload.h - libufvm-preload.so: an unmodified program's shared file
 * mappings routed through ufvm (docs/preload.md).
 *
 * Objects (one file each):
 *   preload.c  the instance: constructor, real libc symbols, the bypass
 *              rules, configuration (UFVM_MATCH), lazy start of ufvm
 *   inode.c    files the program has open (fd table -> pl_inode, one per
 *              dev/ino, holding the ufvm_file once the file is mapped)
 *   region.c   managed mappings and the mmap family
 *   io.c       read/write and the other fd calls that must stay coherent
 *              with the mappings
 *   proc.c     fork, exec, exit
 *   report.c   statistics at exit (UFVM_STATS, UFVM_REPORT)
 *
 * Bypass.  Every interposed function first asks PL_BYPASS(): before the
 * constructor has finished, inside the preload itself (pl_guard, per
 * thread, raised around every call into ufvm and while any lock of the
 * preload is held, so that a signal handler interrupting such a section
 * goes to libc instead of deadlocking on its own thread's lock), and for calls whose caller is ufvm's own code or its libraries
 * (liburcu, libsigsegv: found by return address, so that ufvm's handler
 * threads and its SIGSEGV handler never enter the preload), the call goes
 * straight to libc.
 *
 * Locking.  One mutex, pl_lock (L below), guards the inode hash, writes to
 * the fd table, the region table and the ufvm instance.  ufvm's own locks
 * nest inside it (mappings are made and unmade with L held).  L is never
 * held while application memory is touched, so a fault on a managed page
 * never waits for it; I/O through ufvm_pread/ufvm_pwrite runs without it,
 * holding a reference on the inode instead.  Fields are marked (L) guarded
 * by pl_lock, (a) atomic, (c) constant after creation.
 */
#ifndef UFVM_PRELOAD_H
#define UFVM_PRELOAD_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>
#include <utime.h>

#include "ufvm.h"

#define PL_PAGE		4096UL
#define PL_ROUND_UP(x)	(((x) + PL_PAGE - 1) & ~(PL_PAGE - 1))
#define PL_EXPORT	__attribute__((visibility("default")))
/* Export @name as another name of the interposer @target. */
#define PL_ALIAS(name, target)						\
	extern __typeof__(target) name __attribute__((alias(#target), visibility("default")))

/* ---- the real functions ---- */

/* glibc entry points that have no prototype in its headers. */
int __open_2(const char *path, int flags);
int __open64_2(const char *path, int flags);
int __openat_2(int dirfd, const char *path, int flags);
int __openat64_2(int dirfd, const char *path, int flags);
ssize_t __read_chk(int fd, void *buf, size_t n, size_t buflen);
ssize_t __pread_chk(int fd, void *buf, size_t n, off_t off, size_t buflen);
ssize_t __pread64_chk(int fd, void *buf, size_t n, off_t off, size_t buflen);
int __fxstat(int ver, int fd, struct stat *st);
int __fxstat64(int ver, int fd, struct stat64 *st);
int __xstat(int ver, const char *path, struct stat *st);
int __xstat64(int ver, const char *path, struct stat64 *st);
int __lxstat(int ver, const char *path, struct stat *st);
int __lxstat64(int ver, const char *path, struct stat64 *st);
int __fxstatat(int ver, int dirfd, const char *path, struct stat *st, int flags);
int __fxstatat64(int ver, int dirfd, const char *path, struct stat64 *st, int flags);
int fcntl64(int fd, int cmd, ...);

#define PL_REAL_FUNCS(X)						\
	X(mmap) X(mmap64) X(munmap) X(mremap) X(mprotect) X(msync)	\
	X(madvise) X(posix_madvise)					\
	X(open) X(open64) X(openat) X(openat64) X(creat) X(creat64)	\
	X(__open_2) X(__open64_2) X(__openat_2) X(__openat64_2)		\
	X(close) X(dup) X(dup2) X(dup3) X(fcntl) X(fcntl64)		\
	X(read) X(pread) X(pread64) X(readv) X(preadv) X(preadv64)	\
	X(preadv2) X(preadv64v2) X(__read_chk) X(__pread_chk)		\
	X(__pread64_chk)						\
	X(write) X(pwrite) X(pwrite64) X(writev) X(pwritev) X(pwritev64) \
	X(pwritev2) X(pwritev64v2)					\
	X(lseek) X(lseek64) X(ftruncate) X(ftruncate64) X(truncate)	\
	X(truncate64) X(fallocate) X(fallocate64) X(posix_fallocate)	\
	X(posix_fallocate64) X(fsync) X(fdatasync) X(sync_file_range)	\
	X(sync) X(syncfs) X(copy_file_range) X(sendfile) X(sendfile64)	\
	X(splice)							\
	X(utimensat) X(futimens) X(utimes) X(futimes) X(lutimes)	\
	X(futimesat) X(utime)						\
	X(fstat) X(fstat64) X(stat) X(stat64) X(lstat) X(lstat64)	\
	X(fstatat) X(fstatat64) X(statx) X(__fxstat) X(__fxstat64)	\
	X(__xstat) X(__xstat64) X(__lxstat) X(__lxstat64) X(__fxstatat) \
	X(__fxstatat64)							\
	X(fork) X(execve) X(execv) X(execvp) X(execvpe) X(fexecve)	\
	X(execveat)							\
	X(_exit) X(_Exit) X(posix_spawn) X(posix_spawnp) X(system) X(popen)	\
	X(clone)

#define PL_X(fn) extern __typeof__(fn) *pl_real_##fn;
PL_REAL_FUNCS(PL_X)
#undef PL_X

void *pl_dlsym(const char *name);

/* The libc function @fn, resolved on first use. */
#define REAL(fn)							\
	(__atomic_load_n(&pl_real_##fn, __ATOMIC_RELAXED) ?:		\
	 (pl_real_##fn = (__typeof__(fn) *)pl_dlsym(#fn)))

/* ---- state and the bypass ---- */

enum pl_state {
	PL_INIT = 0,	/* constructor not finished: everything bypasses */
	PL_READY,	/* no ufvm instance yet: started at the first managed mmap */
	PL_RUNNING,	/* pl_vm serves the managed mappings */
	PL_OFF,		/* ufvm could not start, or configuration error: unmanaged */
};

extern int pl_state;			/* (a) enum pl_state */
extern pthread_mutex_t pl_lock;
extern struct ufvm *pl_vm;		/* (L) set once running */
extern bool pl_bounce;			/* (L) EFAULT-prone delivery: bounce syscall buffers */
extern bool pl_sigsegv;			/* (L) the sigsegv backend runs */
extern bool pl_verbose;			/* (c) */
/*
 * UFVM_PRELOAD_TEETH, for the tests' teeth only, puts a fixed bug back:
 * fd-poslock: file positions locked per fd number, not per file, as they
 * were (dup()ed fds race); priv-late: a dead inode's own fd unmarked at
 * once but closed after its file's write-back (a program thread closing
 * every fd closes ours, and ours, closed late, is its next open's fd).
 */
#define PL_TEETH_FD_POSLOCK	1u
#define PL_TEETH_PRIV_LATE	2u
extern unsigned int pl_teeth;		/* (c) */
extern pid_t pl_pid;			/* (a) the process this state belongs to */
extern __thread int pl_guard __attribute__((tls_model("initial-exec")));
extern __thread int pl_vforking __attribute__((tls_model("initial-exec")));
extern int pl_clones;		/* (a) a clone(CLONE_VM) child may run beside us */

bool pl_internal_caller(const void *ra);

/* Go straight to libc?  Must be used in the interposed function itself. */
#define PL_BYPASS()							\
	(pl_off() || pl_guard || pl_internal_caller(__builtin_return_address(0)) || \
	 pl_borrowed())

/* Before the constructor, or after ufvm failed: everything goes to libc. */
static inline bool pl_off(void)
{
	int s = __atomic_load_n(&pl_state, __ATOMIC_ACQUIRE);

	return s == PL_INIT || s == PL_OFF;
}

/*
 * A process that shares this state without owning it: a child of vfork()
 * or clone(CLONE_VM).  It must not change the preload's tables nor use
 * ufvm: they are its parent's.  One system call; used where the state is
 * about to change, not on every call.
 */
static inline bool pl_foreign(void)
{
	return getpid() != __atomic_load_n(&pl_pid, __ATOMIC_RELAXED);
}

/*
 * Is this a child that shares its parent's memory: of our vfork() or
 * clone(CLONE_VM | CLONE_VFORK) without CLONE_SETTLS (pl_vforking, raised
 * in the parent thread's TLS, which the child runs on, for the child's
 * lifetime), or of another clone(CLONE_VM) that is not a thread
 * (pl_clones, set for good: such a child runs beside its parent)?  It goes
 * straight to libc for everything and never writes the state it shares,
 * pl_guard included.  The parent, and a signal handler that runs in the
 * parent while pl_vforking is up, are told apart by their pid and served
 * as usual.  No system call unless such a child may exist.
 */
static inline bool pl_borrowed(void)
{
	return (pl_vforking || __atomic_load_n(&pl_clones, __ATOMIC_RELAXED)) &&
	       pl_foreign();
}

/* Set the errno of a 0/-errno result; return @ok on success, -1 on failure. */
static inline long pl_ret(long r)
{
	if (r < 0) {
		errno = (int)-r;
		return -1;
	}
	return r;
}

/* Take pl_lock, with pl_guard raised (a signal handler bypasses the preload). */
void pl_lock_acquire(void);
/* Drop pl_lock and pl_guard, and close the files of inodes that died meanwhile. */
void pl_lock_release(void);

int pl_start_locked(void);
const char *ufvm_preload_backend(void);
bool pl_match(const char *path);
void pl_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void pl_warn_once(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- inodes and the fd table (inode.c) ---- */

struct pl_inode {
	dev_t dev;			/* (L) */
	ino_t ino;			/* (L) */
	unsigned int refs;		/* (L) fd table entries, regions, calls in flight */
	int active;			/* (a) uf is open: reads of a stale pointer are benign */
	struct ufvm_file *uf;		/* (L) set while active */
	bool writable;			/* (L) uf was opened read-write */
	int priv_fd;			/* (L) our CLOEXEC duplicate while active */
	pthread_mutex_t append_lock;	/* appends and truncates, one at a time (io.c) */
	pthread_mutex_t pos_lock;	/* the file positions of its fds (io.c): one for
					   all, as dup()s share theirs */
	uint64_t touched;		/* (a) the coarse clock when a write last set
					   its mtime (io.c, pl_touch()) */
	struct pl_inode *next;		/* (L) hash chain, reap list or free list */
	char path[256];			/* (L) for messages */
};

extern int pl_fd_max;			/* (c) size of the fd table */

int pl_inode_init(void);
void pl_fd_track(int fd);
void pl_fd_track_inherited(void);
void pl_fd_untrack(int fd);
void pl_fd_dup(int oldfd, int newfd);
bool pl_fd_is_priv(int fd);
void pl_fd_evict_priv(int fd);
struct pl_inode *pl_fd_inode(int fd);
/*
 * In a fork child: @ino active but not open in ufvm (its reopen failed):
 * it goes back to the kernel (its fds' calls go to libc, which sees what
 * the parent wrote back before the fork).  Context: L held, the only
 * thread.  For pl_inode_for_each_locked().
 */
void pl_inode_drop_failed_locked(struct pl_inode *ino, void *arg);
/* Is (@dev, @ino) tracked (by any name)?  Context: L not held. */
bool pl_inode_known(dev_t dev, ino_t ino);
struct pl_inode *pl_fd_get(int fd);
void pl_inode_get_locked(struct pl_inode *ino);
void pl_inode_put(struct pl_inode *ino);
void pl_inode_put_locked(struct pl_inode *ino);
int pl_inode_activate_locked(struct pl_inode *ino, int fd);
struct pl_inode *pl_inode_lookup_locked(dev_t dev, ino_t ino);
int pl_inode_sync_all(void);
int pl_inode_writeback_all(void);
void pl_inode_writeback_one(struct pl_inode *ino, void *arg);
void pl_inode_sync_one(struct pl_inode *ino, void *arg);
void pl_inode_for_each_locked(void (*fn)(struct pl_inode *ino, void *arg), void *arg);
void pl_inode_reap(struct pl_inode *dead);
struct pl_inode *pl_inode_take_dead_locked(void);
bool pl_any_active(void);

/* ---- regions (region.c) ---- */

struct pl_region {
	uintptr_t start, end;		/* (L) page aligned */
	struct pl_inode *ino;		/* (L) holds a reference */
	off_t off;			/* (L) file offset of start */
	int prot;			/* (L) PROT_NONE: a placeholder, not a ufvm region */
	bool maywrite;			/* (L) the fd allowed PROT_WRITE */
};

extern struct pl_region *pl_regions;	/* (L) sorted by start */
extern size_t pl_nregions;		/* (L) */

bool pl_overlaps_managed(const void *addr, size_t len);
int pl_region_map_kernel_locked(struct pl_region *r);
int pl_region_remap_locked(struct pl_region *r);
void pl_region_drop_all_locked(void);

/* ---- I/O helpers (io.c) ---- */

ssize_t pl_ino_pread(struct pl_inode *ino, int fd, void *buf, size_t n, off_t off);
ssize_t pl_ino_pwrite(struct pl_inode *ino, int fd, const void *buf, size_t n, off_t off);
void pl_io_atfork_child_locked(void);

/* ---- processes and reports (proc.c, report.c) ---- */

int pl_proc_init(void);
int pl_proc_atfork(void);
void pl_proc_exit(void);
void pl_report_write(const char *why);

#endif /* UFVM_PRELOAD_H */
