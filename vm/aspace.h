/* SPDX-License-Identifier: MIT */
/*
 * vm/aspace.h - an address space: its regions and its mmap_lock
 * (Linux: mm_struct).
 *
 * Regions live in a sorted array published through RCU (a lock-free
 * lookup sees the old or the new array, whole) and change only under
 * mmap_lock held for writing.  ->seq is bumped before and after every
 * change (odd while one is under way), so a speculative fault can tell
 * that what it read may have changed.
 */
#ifndef UFVM_VM_ASPACE_H
#define UFVM_VM_ASPACE_H

#include "vm/lock.h"
#include "vm/pmap.h"
#include "vm/rcu.h"

struct vm_region;

struct vm_region_array {
	size_t n;
	struct rcu_head rcu;
	struct vm_region *r[];
};

struct vm_aspace {
	struct vm_rwsem mmap_lock;
	struct vm_region_array *regions;	/* rcu; changed under mmap_lock (w) */
	uint64_t seq;				/* (a) */
	struct vm_pmap *pmap;			/* (c) */
	struct vm_aspace *fork_next, *fork_prev;	/* every aspace (fork lock) */
};

int vm_aspace_init(struct vm_aspace *as, struct vm_pmap *pmap);
void vm_aspace_destroy(struct vm_aspace *as);

/*
 * fork(): the regions are not inherited (MADV_DONTFORK).  In the child,
 * before anything of it can map memory (a thread's stack, an allocator's
 * chunk), vm_aspace_fork_child() reserves their ranges PROT_NONE: a touch
 * of a region gets SIGSEGV, never memory that landed there meanwhile.  The
 * list of aspaces is held across the fork.  Context: the fork handlers.
 */
void vm_aspace_fork_prepare(void);
void vm_aspace_fork_parent(void);
void vm_aspace_fork_child(void);

/* Context: RCU read section.  Return: the region covering @addr or NULL. */
struct vm_region *vm_aspace_find_rcu(struct vm_aspace *as, uintptr_t addr);
/* Context: mmap_lock held (either mode). */
struct vm_region *vm_aspace_find_locked(struct vm_aspace *as, uintptr_t addr);
/* Context: mmap_lock held for writing.  Return: 0 or -ENOMEM. */
int vm_aspace_insert_locked(struct vm_aspace *as, struct vm_region *r);
int vm_aspace_remove_locked(struct vm_aspace *as, struct vm_region *r);
/*
 * The array with @by[0..n) (sorted, inside @r's range) where @r is, built
 * but not published: vm_aspace_publish_locked() makes it current in one
 * step (a lock-free lookup sees @r or the pieces), or free() drops it.
 * Context: mmap_lock held for writing.  Return: the array or NULL (ENOMEM).
 */
struct vm_region_array *vm_aspace_build_locked(struct vm_aspace *as, struct vm_region *r,
					       struct vm_region *const *by, size_t n);
void vm_aspace_publish_locked(struct vm_aspace *as, struct vm_region_array *na);

static inline uint64_t vm_aspace_seq_read(struct vm_aspace *as)
{
	return __atomic_load_n(&as->seq, __ATOMIC_ACQUIRE);
}

#endif /* UFVM_VM_ASPACE_H */
