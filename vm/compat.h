/* SPDX-License-Identifier: MIT */
/*
 * vm/compat.h - small helpers shared by every layer: page arithmetic,
 * atomics (C11 __atomic builtins with explicit orders), assertions, time.
 */
#ifndef UFVM_VM_COMPAT_H
#define UFVM_VM_COMPAT_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define PAGE_SHIFT	12
#define PAGE_SIZE	(1UL << PAGE_SHIFT)
#define PAGE_MASK	(~(PAGE_SIZE - 1))

#define likely(x)	__builtin_expect(!!(x), 1)
#define unlikely(x)	__builtin_expect(!!(x), 0)

#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))
#define MIN(a, b)	((a) < (b) ? (a) : (b))
#define MAX(a, b)	((a) > (b) ? (a) : (b))
#define ROUND_UP(x, a)	((((x) + (a) - 1) / (a)) * (a))
#define DIV_ROUND_UP(x, a) (((x) + (a) - 1) / (a))

#ifndef container_of
#define container_of(ptr, type, member) \
	((type *)((char *)(ptr) - offsetof(type, member)))
#endif

#define CACHELINE	64
#define __cacheline_aligned __attribute__((aligned(CACHELINE)))

#define READ_ONCE(x)		__atomic_load_n(&(x), __ATOMIC_RELAXED)
#define WRITE_ONCE(x, v)	__atomic_store_n(&(x), (v), __ATOMIC_RELAXED)
#define load_acquire(p)		__atomic_load_n((p), __ATOMIC_ACQUIRE)
#define store_release(p, v)	__atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define smp_mb()		__atomic_thread_fence(__ATOMIC_SEQ_CST)

static inline uint64_t vm_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/*
 * Write all of @buf[len] to @fd at byte @off, again after a short write or
 * EINTR.  Context: may block.  Return: 0 or -errno (-EIO: nothing written).
 */
static inline int vm_pwrite_all(int fd, const void *buf, size_t len, uint64_t off)
{
	const char *p = buf;

	while (len) {
		ssize_t n = pwrite(fd, p, len, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

/* Coarse seconds since the first call, for page ages (never 0). */
uint32_t vm_now_s(void);

void vm__assert_fail(const char *expr, const char *file, int line,
		     const char *func) __attribute__((noreturn));

/* Always-on check for states that would corrupt data if ignored. */
#define VM_BUG_ON(cond)							\
	do {								\
		if (unlikely(cond))					\
			vm__assert_fail(#cond, __FILE__, __LINE__, __func__); \
	} while (0)

#ifdef UFVM_DEBUG
#define VM_ASSERT(cond)	VM_BUG_ON(!(cond))
#else
#define VM_ASSERT(cond)	do { (void)sizeof(cond); } while (0)
#endif

#include <pthread.h>
#include <signal.h>
#include <sys/types.h>

/* @set = every signal but those a thread's own fault raises (the async ones). */
void vm_sigset_async(sigset_t *set);

/*
 * vm_thread_create - start a thread of ufvm's own, with every signal
 * blocked (a fault of its own still kills: vm/thread.c, async_block()).
 * Return: 0 or -errno.
 */
int vm_thread_create(pthread_t *th, void *(*fn)(void *), void *arg);

/*
 * Start liburcu's call_rcu() worker now, as a thread of ufvm's own: the
 * application's signals blocked, named "ufvm-rcu".  Once per process; the
 * first ufvm_open() calls it.  Context: may sleep.
 */
void vm_rcu_worker_init(void);

/*
 * liburcu's fork hooks, once per fork: registered with pthread_atfork()
 * when the library loads, or, under the preload, called by its own fork
 * handlers (vm/thread.c).
 */
void vm_rcu_fork_prepare(void);
void vm_rcu_fork_parent(void);
void vm_rcu_fork_child(void);

/*
 * vm_fork_hold - hold mutex @m across every fork() (the hooks above), so
 * that a child finds it unlocked.  For leaf locks of other layers, whose
 * holders wait for nothing of ufvm's; at most 4, registered once (from a
 * constructor).
 */
void vm_fork_hold(pthread_mutex_t *m);
/* Tests (UFVM_DEBUG_FORK_NO_HOLD): +1 / -1 per instance; while > 0 forks hold nothing. */
void vm_fork_hold_off(int delta);

/*
 * Which process made something: told by a page that reads as zero in any
 * fork()ed child (MADV_WIPEONFORK), however the child was made (fork(),
 * _Fork(), a raw system call: no atfork handler needed), at no system
 * call per check; getpid() where the kernel lacks it.  A vfork() child
 * shares the memory and counts as the parent.
 */
struct vm_fork_id {
	pid_t pid;
};

/* Return: 0 or -errno.  Context: may sleep. */
int vm_fork_id_init(struct vm_fork_id *id);

/*
 * Caches of one file apart: each instance has its own page cache, and a
 * forked child its own instances, so two caches may hold one file, each
 * writing back what it dirtied.  ufvm cannot tell which files they share;
 * it tells whether the process ever had two instances open at once, or
 * forked (by fork(), or made a child that opens one) with one open: from
 * then on, for good, vm_caches_apart() is true (write-ahead stops, which
 * would write back pages this cache never stored into: pager/fault.c).
 * vm_instances_add(+1) at each ufvm_open(), -1 at its close.
 */
void vm_instances_add(int delta);
bool vm_caches_apart(void);
/* Is this a fork()ed child of the process that made @id?  Signal safe. */
bool vm_forked(const struct vm_fork_id *id);

#endif /* UFVM_VM_COMPAT_H */
