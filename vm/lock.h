/* SPDX-License-Identifier: MIT */
/*
 * vm/lock.h - the locks of ufvm and their order checker.
 *
 * Lock order, outermost first (docs/locking.md is the full text):
 *
 *   registry      (vm: the list of open objects)
 *   mmap_lock     (aspace)                  vm_rwsem
 *   invalidate    (object: rwsem or add/block)
 *   page lock     (page: futex bit)         one at a time
 *   index lock    (object: page-index writers)
 *   rmap lock     (object: list of regions)
 *   ptl           (region)
 *   leaf          (stats, errseq; nothing nests inside)
 *
 * In debug builds (UFVM_DEBUG) every blocking acquisition checks that the
 * thread holds no lock of the same or an inner class (a lock-order
 * inversion, or a second page lock, aborts with both locks named), and
 * VM_ASSERT_HELD() checks that the caller holds a lock.  Trylocks are
 * recorded but not order-checked: they cannot deadlock.  In release builds
 * all of this compiles away.
 */
#ifndef UFVM_VM_LOCK_H
#define UFVM_VM_LOCK_H

#include <pthread.h>

#include "vm/compat.h"

enum vm_lock_class {
	VM_LC_REGISTRY = 1,
	VM_LC_MMAP,
	VM_LC_INVALIDATE,
	VM_LC_PAGE,
	VM_LC_INDEX,
	VM_LC_LRU,
	VM_LC_RMAP,
	VM_LC_PTL,
	VM_LC_LEAF,
};

/*
 * A reader-writer semaphore (mmap_lock, invalidate_lock), task-fair like
 * the kernel's: requests are served in arrival order, a run of readers
 * together.  A reader that arrives while a writer waits queues behind it,
 * and a writer that releases and asks again queues behind the readers that
 * waited meanwhile, so neither side can starve the other (a map/unmap loop
 * cannot starve page faults, nor faults a map).
 */
struct vm_rwsem {
	/*
	 * Readers in (low bits), plus VM_RWSEM_SLOW while a writer is in or
	 * anyone holds a ticket not yet served.  Without the flag a reader
	 * enters and leaves with one compare-and-swap / one atomic add and
	 * never touches @mu (the common case: faults beside no map/unmap).
	 */
	uint64_t count;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	uint64_t next;			/* (mu) next ticket to hand out */
	uint64_t serving;		/* (mu) ticket allowed in next */
	bool writer;			/* (mu) holding it exclusive */
	unsigned int waiters;		/* (mu) */
	unsigned char lclass;
};

#define VM_RWSEM_SLOW		(1ull << 62)
#define VM_RWSEM_READERS	(VM_RWSEM_SLOW - 1)

struct vm_mutex {
	pthread_mutex_t mu;
	unsigned char lclass;
};

int vm_rwsem_init(struct vm_rwsem *s, enum vm_lock_class lc);
void vm_rwsem_destroy(struct vm_rwsem *s);
/* Context: may sleep. */
void vm_rwsem_read(struct vm_rwsem *s);
void vm_rwsem_write(struct vm_rwsem *s);
/* Context: never sleeps.  Return: true if taken. */
bool vm_rwsem_read_try(struct vm_rwsem *s);
void vm_rwsem_read_unlock(struct vm_rwsem *s);
void vm_rwsem_write_unlock(struct vm_rwsem *s);

int vm_mutex_init(struct vm_mutex *m, enum vm_lock_class lc);
void vm_mutex_destroy(struct vm_mutex *m);
/* Context: may sleep. */
void vm_mutex_lock(struct vm_mutex *m);
bool vm_mutex_try(struct vm_mutex *m);
void vm_mutex_unlock(struct vm_mutex *m);

#ifdef UFVM_DEBUG
void vm__lockdep_acquire(const void *lock, unsigned lc, bool try, int mode);
void vm__lockdep_release(const void *lock);
/* Return: 0 not held, 1 held shared, 2 held exclusive. */
int vm__lockdep_held(const void *lock);
int vm__lockdep_depth(void);
#define VM_ASSERT_HELD(l)	VM_BUG_ON(vm__lockdep_held(l) == 0)
#define VM_ASSERT_HELD_EXCL(l)	VM_BUG_ON(vm__lockdep_held(l) != 2)
#define VM_ASSERT_NOT_HELD(l)	VM_BUG_ON(vm__lockdep_held(l) != 0)
/* No lock at all: a path that may block on I/O or on another fault. */
#define VM_ASSERT_NO_LOCKS()	VM_BUG_ON(vm__lockdep_depth() != 0)
#define vm_locks_held()	vm__lockdep_depth()
#else
/* Release builds keep only the count (the in-thread backends check it). */
extern __thread int vm__nlocks;
static inline void vm__lockdep_acquire(const void *l, unsigned lc, bool t, int m)
{
	vm__nlocks++;
}
static inline void vm__lockdep_release(const void *l)
{
	vm__nlocks--;
}
#define vm_locks_held()	vm__nlocks
#define VM_ASSERT_HELD(l)	do { } while (0)
#define VM_ASSERT_HELD_EXCL(l)	do { } while (0)
#define VM_ASSERT_NOT_HELD(l)	do { } while (0)
#define VM_ASSERT_NO_LOCKS()	do { } while (0)
#endif

#endif /* UFVM_VM_LOCK_H */
