// SPDX-License-Identifier: MIT
/*
 * vm/page.c - page structs, their references and their futex lock.
 *
 * The page lock is the PG_LOCKED bit of ->flags; sleepers set PG_WAITERS
 * and FUTEX_WAIT on the whole word; unlock clears both bits and wakes all
 * sleepers if PG_WAITERS was set (they race again for the bit).  Waking
 * all is simple and right: page locks are held across one store I/O or
 * one invalidation step, and there are rarely more than a few sleepers.
 */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "vm/lock.h"
#include "vm/page.h"
#include "vm/pool.h"

static struct vm_pool page_pool = VM_POOL_INIT("page", struct vm_page, 256);

uint64_t vm_pages_live;

#ifdef UFVM_DEBUG
__thread int vm__rcu_depth;
#endif

void vm_futex_wait(uint32_t *w, uint32_t val)
{
	syscall(SYS_futex, w, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0);
}

bool vm_futex_wait_ns(uint32_t *w, uint32_t val, uint64_t ns)
{
	const struct timespec ts = { .tv_sec = (time_t)(ns / 1000000000ull),
				     .tv_nsec = (long)(ns % 1000000000ull) };

	return syscall(SYS_futex, w, FUTEX_WAIT_PRIVATE, val, &ts, NULL, 0) && errno == ETIMEDOUT;
}

void vm_futex_wake_all(uint32_t *w)
{
	syscall(SYS_futex, w, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

struct vm_page *vm_page_alloc(uint64_t index)
{
	struct vm_page *p;

	vm_rcu_read_lock();
	p = vm_pool_alloc_rcu(&page_pool);
	vm_rcu_read_unlock();
	if (!p)
		return NULL;
	p->flags = PG_LOCKED;
	p->refcount = 1;
	p->index = index;
	__atomic_fetch_add(&vm_pages_live, 1, __ATOMIC_RELAXED);
	vm__lockdep_acquire(p, VM_LC_PAGE, true, 2);
	return p;
}

bool vm_page_get_unless_zero(struct vm_page *p)
{
	uint32_t old = __atomic_load_n(&p->refcount, __ATOMIC_RELAXED);

	do {
		if (old == 0)
			return false;
	} while (!__atomic_compare_exchange_n(&p->refcount, &old, old + 1, true,
					      __ATOMIC_ACQUIRE, __ATOMIC_RELAXED));
	return true;
}

static void page_free_rcu(struct rcu_head *head)
{
	struct vm_page *p = container_of(head, struct vm_page, rcu);

	/*
	 * Not at the last put: a lock-free mapper that found the page under
	 * RCU may have raised mapcount on it then (mapcount first), and sees
	 * it is no longer in the object and undoes the raise, all inside its
	 * RCU read section.  A grace period later, nobody may hold one.
	 */
	VM_BUG_ON(__atomic_load_n(&p->mapcount, __ATOMIC_RELAXED) != 0);
	__atomic_fetch_sub(&vm_pages_live, 1, __ATOMIC_RELAXED);
	vm_pool_free(&page_pool, p);
}

void vm_page_put(struct vm_page *p)
{
	uint32_t old = __atomic_fetch_sub(&p->refcount, 1, __ATOMIC_ACQ_REL);

	VM_BUG_ON(old == 0);
	if (old == 1)
		vm_call_rcu(&p->rcu, page_free_rcu);
}

static void page_sleep(struct vm_page *p)
{
	uint32_t f = __atomic_load_n(&p->flags, __ATOMIC_RELAXED);

	while (f & PG_LOCKED) {
		if (!(f & PG_WAITERS)) {
			if (!__atomic_compare_exchange_n(&p->flags, &f, f | PG_WAITERS,
							 false, __ATOMIC_RELAXED,
							 __ATOMIC_RELAXED))
				continue;
			f |= PG_WAITERS;
		}
		vm_futex_wait(&p->flags, f);
		f = __atomic_load_n(&p->flags, __ATOMIC_RELAXED);
	}
}

void vm_page_lock(struct vm_page *p)
{
	vm__lockdep_acquire(p, VM_LC_PAGE, false, 2);
	/* seq_cst: the locker's half of the handshake in vm_page_map_raise() */
	while (__atomic_fetch_or(&p->flags, PG_LOCKED, __ATOMIC_SEQ_CST) & PG_LOCKED)
		page_sleep(p);
}

void vm_page_unlock(struct vm_page *p)
{
	uint32_t old;

	vm__lockdep_release(p);
	old = __atomic_fetch_and(&p->flags, ~(PG_LOCKED | PG_WAITERS), __ATOMIC_RELEASE);
	VM_BUG_ON(!(old & PG_LOCKED));
	if (old & PG_WAITERS)
		vm_futex_wake_all(&p->flags);
}

void vm_page_wait_unlocked(struct vm_page *p)
{
	page_sleep(p);
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
}

bool vm_page_lock_or_retry(struct vm_page *p, struct vm_rwsem *mmap_lock,
			   bool allow_retry)
{
	if (vm_page_trylock(p))
		return true;
	if (!allow_retry) {
		vm_page_lock(p);
		return true;
	}
	vm_rwsem_read_unlock(mmap_lock);
	vm_page_wait_unlocked(p);
	return false;
}
