/* SPDX-License-Identifier: MIT */
/*
 * vm/page.h - one cached page of a file.
 *
 * Locking key: (a) atomic, (c) constant after creation, (p) under the page
 * lock, (r) freed only after an RCU grace period, (l) the cache's lru lock.
 * 48 bytes: the reclaim-list link and the RCU head share their space (a
 * page leaves the list before its last reference is dropped).
 *
 * Lifetime: the page index holds one reference while the page is in it;
 * lookups outside an RCU section take their own (vm_page_get_unless_zero);
 * the last vm_page_put() frees the struct after a grace period, so code in
 * an RCU read section may look at any page it found there.
 *
 * ->object is the owner while the page is in the object's index; removal
 * (under the page lock) clears it, which is what every lock-free user
 * re-checks after raising ->mapcount (fault-around, speculative faults).
 *
 * ->mapcount counts the regions that map the page.  It is raised *before*
 * a mapper checks that the page may be mapped ("mapcount first", seed 004):
 * an invalidation that locks the page and then sees mapcount == 0 knows
 * no mapper can still pass its check.
 */
#ifndef UFVM_VM_PAGE_H
#define UFVM_VM_PAGE_H

#include <urcu/list.h>

#include "vm/compat.h"
#include "vm/lock.h"
#include "vm/rcu.h"

struct vm_object;
struct vm_rwsem;

enum vm_page_flag {
	PG_LOCKED	= 1u << 0,
	PG_WAITERS	= 1u << 1,	/* someone sleeps on the futex */
	PG_UPTODATE	= 1u << 2,
	PG_DIRTY	= 1u << 3,
	PG_ERROR	= 1u << 4,	/* last store read failed */
	PG_REFERENCED	= 1u << 5,	/* used since the clock hand last passed */
	PG_READAHEAD	= 1u << 6,	/* mapping it starts the next async window */
	PG_SAMPLED	= 1u << 7,	/* the clock zapped it to learn if it is used */
	PG_WBFAIL	= 1u << 8,	/* its last write-back failed (counted in
					   the cache's nr_unclean; page lock) */
};

struct vm_page {
	uint32_t flags;			/* (a) PG_*; the futex word */
	uint32_t refcount;		/* (a) */
	uint32_t mapcount;		/* (a) regions mapping the page */
	uint32_t dirtied;		/* (a) when it became dirty (vm_now_s) */
	uint64_t index;			/* (c) page offset in the file */
	struct vm_object *object;	/* (a) owner; NULL once removed (p) */
	union {
		struct cds_list_head lru;	/* (l) the cache's reclaim list */
		struct rcu_head rcu;		/* (r) once off the list, to free */
	};
};

_Static_assert(sizeof(struct vm_page) == 48, "page metadata must stay small");

/* Return: a locked page with refcount 1, or NULL. */
struct vm_page *vm_page_alloc(uint64_t index);

static inline bool vm_page_test(struct vm_page *p, uint32_t f)
{
	return load_acquire(&p->flags) & f;
}

static inline void vm_page_set(struct vm_page *p, uint32_t f)
{
	__atomic_fetch_or(&p->flags, f, __ATOMIC_SEQ_CST);
}

static inline void vm_page_clear(struct vm_page *p, uint32_t f)
{
	__atomic_fetch_and(&p->flags, ~f, __ATOMIC_SEQ_CST);
}

/* Return: true if @f was set (and is now clear). */
static inline bool vm_page_test_clear(struct vm_page *p, uint32_t f)
{
	return __atomic_fetch_and(&p->flags, ~f, __ATOMIC_SEQ_CST) & f;
}

static inline void vm_page_get(struct vm_page *p)
{
	__atomic_fetch_add(&p->refcount, 1, __ATOMIC_RELAXED);
}

/* Context: RCU read section (the page may be on its way out).
 * Return: true if a reference was taken. */
bool vm_page_get_unless_zero(struct vm_page *p);
/* Drop a reference; the last one frees the page after a grace period. */
void vm_page_put(struct vm_page *p);

/* Context: never sleeps.  Return: true if the page lock was taken. */
static inline bool vm_page_trylock(struct vm_page *p)
{
	/* seq_cst: the locker's half of the mapcount-first handshake */
	if (__atomic_fetch_or(&p->flags, PG_LOCKED, __ATOMIC_SEQ_CST) & PG_LOCKED)
		return false;
	vm__lockdep_acquire(p, VM_LC_PAGE, true, 2);
	return true;
}

/* Context: may sleep; caller holds a reference.  Takes the page lock. */
void vm_page_lock(struct vm_page *p);
void vm_page_unlock(struct vm_page *p);
/* Context: may sleep; sleeps until the page is unlocked (does not take it). */
void vm_page_wait_unlocked(struct vm_page *p);

/*
 * vm_page_lock_or_retry - the lock_page_or_retry() of seed 003.
 * @mmap_lock: held for reading on entry.
 * Context: may sleep.  If @allow_retry and the page is locked, *drops
 * @mmap_lock*, waits for the page to be unlocked and returns false without
 * the page lock: the caller must return RETRY.  Otherwise takes the page
 * lock (sleeping with @mmap_lock held) and returns true.
 */
bool vm_page_lock_or_retry(struct vm_page *p, struct vm_rwsem *mmap_lock,
			   bool allow_retry);

/*
 * Raise mapcount: the mapcount-first step.  A store-then-load handshake
 * with the page lock (Dekker's): the mapper raises mapcount, then reads
 * the flags (vm_page_flags_sc()); a locker sets PG_LOCKED, then reads
 * mapcount (vm_page_mapcount()).  Every one of those four accesses is
 * seq_cst, so at least one side sees the other; on x86 the RMWs are locked
 * instructions, full barriers already, and the loads plain loads.
 */
static inline void vm_page_map_raise(struct vm_page *p)
{
	__atomic_fetch_add(&p->mapcount, 1, __ATOMIC_SEQ_CST);
}

/* The flags, read as the second half of the mapcount-first handshake. */
static inline uint32_t vm_page_flags_sc(struct vm_page *p)
{
	return __atomic_load_n(&p->flags, __ATOMIC_SEQ_CST);
}

static inline void vm_page_map_drop(struct vm_page *p)
{
	uint32_t old = __atomic_fetch_sub(&p->mapcount, 1, __ATOMIC_SEQ_CST);

	VM_BUG_ON(old == 0);
}

static inline uint32_t vm_page_mapcount(struct vm_page *p)
{
	return __atomic_load_n(&p->mapcount, __ATOMIC_SEQ_CST);
}

extern uint64_t vm_pages_live;	/* (a) page structs allocated, for stats */

/* Sleep while *@w == @val (a private futex); wake every sleeper on @w. */
void vm_futex_wait(uint32_t *w, uint32_t val);
void vm_futex_wake_all(uint32_t *w);
/* vm_futex_wait() for at most @ns.  Return: true if it timed out. */
bool vm_futex_wait_ns(uint32_t *w, uint32_t val, uint64_t ns);

#endif /* UFVM_VM_PAGE_H */
