// SPDX-License-Identifier: MIT
/*
 * vm/lock.c - rwsem and mutex wrappers with a per-thread lock-order checker.
 *
 * The checker keeps, per thread, the stack of locks held with their class
 * (vm/lock.h lists the order).  A blocking acquisition of class C while the
 * thread holds a lock of class >= C is an inversion (or a second page lock)
 * and aborts, naming both.  This is the whole of "lockdep" here: classes
 * are static, so one run through each path proves its order.
 */
#include <stdio.h>
#include <string.h>

#include "vm/lock.h"

uint32_t vm_now_s(void)
{
	static uint64_t base;
	uint64_t now = vm_now_ns() / 1000000000ull, b = __atomic_load_n(&base, __ATOMIC_RELAXED);

	if (!b) {
		uint64_t zero = 0;

		__atomic_compare_exchange_n(&base, &zero, now - 1, false,
					    __ATOMIC_RELAXED, __ATOMIC_RELAXED);
		b = __atomic_load_n(&base, __ATOMIC_RELAXED);
	}
	return (uint32_t)(now - b);
}

void vm__assert_fail(const char *expr, const char *file, int line,
		     const char *func)
{
	fprintf(stderr, "ufvm: BUG: %s at %s:%d (%s)\n", expr, file, line, func);
	abort();
}

/*
 * The task-fair rwsem: a ticket per request; the holder of ticket
 * ->serving may enter when compatible (a reader: no writer in; a writer:
 * nobody in) and, on entering, lets the next ticket try.  Waiters sleep on
 * one condition variable; every state change that can let someone in
 * broadcasts, but only when someone waits.
 *
 * Readers are counted in ->count, whichever way they came in.  While no
 * ticket is outstanding and no writer is in, ->count has no VM_RWSEM_SLOW
 * and a reader takes the fast path: one CAS in, one atomic decrement out.
 * A writer sets the flag (under ->mu, before it waits), so every reader
 * after it queues behind it: the order stays task fair.  A fast reader that
 * raced the flag is counted before the writer looks at the count, and the
 * last reader out while the flag is set wakes the waiters.  The flag is
 * cleared, under ->mu, when the last ticket is served and no writer is in.
 */
int vm_rwsem_init(struct vm_rwsem *s, enum vm_lock_class lc)
{
	memset(s, 0, sizeof(*s));
	s->lclass = lc;
	pthread_mutex_init(&s->mu, NULL);
	return -pthread_cond_init(&s->cv, NULL);
}

void vm_rwsem_destroy(struct vm_rwsem *s)
{
	pthread_cond_destroy(&s->cv);
	pthread_mutex_destroy(&s->mu);
}

static uint64_t rwsem_readers(struct vm_rwsem *s)
{
	return __atomic_load_n(&s->count, __ATOMIC_ACQUIRE) & VM_RWSEM_READERS;
}

/* Context: ->mu held.  Keep the flag set exactly while it must be. */
static void rwsem_update_flag(struct vm_rwsem *s)
{
	if (s->writer || s->next != s->serving)
		__atomic_fetch_or(&s->count, VM_RWSEM_SLOW, __ATOMIC_SEQ_CST);
	else
		__atomic_fetch_and(&s->count, ~VM_RWSEM_SLOW, __ATOMIC_SEQ_CST);
}

static void rwsem_wake(struct vm_rwsem *s)
{
	if (s->waiters)
		pthread_cond_broadcast(&s->cv);
}

/* Return: true if a reader got in without the mutex. */
static bool rwsem_read_fast(struct vm_rwsem *s)
{
	uint64_t c = __atomic_load_n(&s->count, __ATOMIC_RELAXED);

	while (!(c & VM_RWSEM_SLOW))
		if (__atomic_compare_exchange_n(&s->count, &c, c + 1, true,
						__ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
			return true;
	return false;
}

static void rwsem_enter(struct vm_rwsem *s, bool write)
{
	uint64_t t;

	pthread_mutex_lock(&s->mu);
	t = s->next++;
	rwsem_update_flag(s);	/* a ticket is out: readers queue from here */
	while (t != s->serving || s->writer || (write && rwsem_readers(s))) {
		s->waiters++;
		pthread_cond_wait(&s->cv, &s->mu);
		s->waiters--;
	}
	s->serving++;
	if (write)
		s->writer = true;
	else
		__atomic_fetch_add(&s->count, 1, __ATOMIC_ACQUIRE);
	rwsem_update_flag(s);
	rwsem_wake(s);		/* the next ticket may be a compatible reader */
	pthread_mutex_unlock(&s->mu);
}

void vm_rwsem_read(struct vm_rwsem *s)
{
	vm__lockdep_acquire(s, s->lclass, false, 1);
	if (!rwsem_read_fast(s))
		rwsem_enter(s, false);
}

bool vm_rwsem_read_try(struct vm_rwsem *s)
{
	bool ok = rwsem_read_fast(s);

	if (!ok) {
		pthread_mutex_lock(&s->mu);
		ok = s->next == s->serving && !s->writer;
		if (ok)
			__atomic_fetch_add(&s->count, 1, __ATOMIC_ACQUIRE);
		pthread_mutex_unlock(&s->mu);
	}
	if (ok)
		vm__lockdep_acquire(s, s->lclass, true, 1);
	return ok;
}

void vm_rwsem_write(struct vm_rwsem *s)
{
	vm__lockdep_acquire(s, s->lclass, false, 2);
	rwsem_enter(s, true);
}

void vm_rwsem_read_unlock(struct vm_rwsem *s)
{
	uint64_t c;

	vm__lockdep_release(s);
	c = __atomic_sub_fetch(&s->count, 1, __ATOMIC_RELEASE);
	if (c == VM_RWSEM_SLOW) {
		/* The last reader out while someone queues: let the next in. */
		pthread_mutex_lock(&s->mu);
		rwsem_wake(s);
		pthread_mutex_unlock(&s->mu);
	}
}

void vm_rwsem_write_unlock(struct vm_rwsem *s)
{
	vm__lockdep_release(s);
	pthread_mutex_lock(&s->mu);
	s->writer = false;
	rwsem_update_flag(s);
	rwsem_wake(s);
	pthread_mutex_unlock(&s->mu);
}

int vm_mutex_init(struct vm_mutex *m, enum vm_lock_class lc)
{
	pthread_mutexattr_t a;
	int err;

	pthread_mutexattr_init(&a);
	pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ADAPTIVE_NP);
	err = pthread_mutex_init(&m->mu, &a);
	pthread_mutexattr_destroy(&a);
	m->lclass = lc;
	return -err;
}

void vm_mutex_destroy(struct vm_mutex *m)
{
	pthread_mutex_destroy(&m->mu);
}

void vm_mutex_lock(struct vm_mutex *m)
{
	vm__lockdep_acquire(m, m->lclass, false, 2);
	pthread_mutex_lock(&m->mu);
}

bool vm_mutex_try(struct vm_mutex *m)
{
	if (pthread_mutex_trylock(&m->mu))
		return false;
	vm__lockdep_acquire(m, m->lclass, true, 2);
	return true;
}

void vm_mutex_unlock(struct vm_mutex *m)
{
	vm__lockdep_release(m);
	pthread_mutex_unlock(&m->mu);
}

#ifndef UFVM_DEBUG
__thread int vm__nlocks;
#else
#define LOCKDEP_MAX 300	/* a readahead run holds up to 256 page locks */

struct held_lock {
	const void *lock;
	unsigned char lclass;
	unsigned char mode;
};

static __thread struct held_lock held[LOCKDEP_MAX];
static __thread int nheld;

static const char *const class_names[] = {
	[VM_LC_REGISTRY] = "registry", [VM_LC_MMAP] = "mmap_lock",
	[VM_LC_INVALIDATE] = "invalidate", [VM_LC_PAGE] = "page",
	[VM_LC_INDEX] = "index", [VM_LC_LRU] = "lru", [VM_LC_RMAP] = "rmap",
	[VM_LC_PTL] = "ptl", [VM_LC_LEAF] = "leaf",
};

void vm__lockdep_acquire(const void *lock, unsigned lc, bool try, int mode)
{
	int i;

	if (!try) {
		for (i = 0; i < nheld; i++) {
			if (held[i].lclass >= lc) {
				fprintf(stderr,
					"ufvm: BUG: lock order: taking %s (%p) while holding %s (%p)\n",
					class_names[lc], lock,
					class_names[held[i].lclass], held[i].lock);
				abort();
			}
		}
	}
	if (nheld >= LOCKDEP_MAX) {
		for (i = 0; i < nheld; i++)
			fprintf(stderr, "ufvm: held: %s %p\n",
				class_names[held[i].lclass], held[i].lock);
		VM_BUG_ON(nheld >= LOCKDEP_MAX);
	}
	held[nheld].lock = lock;
	held[nheld].lclass = (unsigned char)lc;
	held[nheld].mode = (unsigned char)mode;
	nheld++;
}

void vm__lockdep_release(const void *lock)
{
	int i;

	for (i = nheld - 1; i >= 0; i--) {
		if (held[i].lock == lock) {
			memmove(&held[i], &held[i + 1],
				(size_t)(nheld - i - 1) * sizeof(held[0]));
			nheld--;
			return;
		}
	}
	fprintf(stderr, "ufvm: BUG: releasing lock %p that is not held\n", lock);
	abort();
}

int vm__lockdep_held(const void *lock)
{
	int i;

	for (i = 0; i < nheld; i++)
		if (held[i].lock == lock)
			return held[i].mode;
	return 0;
}

int vm__lockdep_depth(void)
{
	return nheld;
}
#endif
