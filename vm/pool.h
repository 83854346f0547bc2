/* SPDX-License-Identifier: MIT */
/*
 * vm/pool.h - fixed-size object pools that are safe in signal context.
 *
 * The in-thread delivery backends run the fault path inside a signal
 * handler, where malloc may deadlock (the interrupted code may hold its
 * lock).  Page structs and page-index nodes therefore come from pools:
 * slabs are mmap'd (a system call, async-signal-safe), free objects sit on
 * a lock-free stack.
 *
 * ABA: a pop reads head and head->next and then CASes head; it runs inside
 * an RCU read section, and objects are pushed back only from RCU callbacks
 * (after a grace period) or fresh from a new slab.  So an object popped
 * under our feet cannot come back to the head while our pop is under way,
 * and the CAS cannot succeed on a stale next pointer.
 */
#ifndef UFVM_VM_POOL_H
#define UFVM_VM_POOL_H

#include "vm/compat.h"

struct vm_pool {
	const char *name;
	size_t objsize;			/* (c) >= sizeof(void *) */
	size_t perslab;			/* (c) objects per slab */
	void *head;			/* (a) free stack */
	uint64_t nslabs;		/* (a) */
	uint64_t inuse;			/* (a) objects handed out */
};

#define VM_POOL_INIT(n, type, per) \
	{ .name = (n), .objsize = sizeof(type), .perslab = (per) }

/* Context: RCU read section; signal safe.  Return: zeroed object or NULL. */
void *vm_pool_alloc_rcu(struct vm_pool *pool);
/*
 * Return @obj to the pool.  Context: an RCU callback only (or after a grace
 * period), even for an object never published: a concurrent pop may hold
 * it as its expected head.  Signal safe.
 */
void vm_pool_free(struct vm_pool *pool, void *obj);

#endif /* UFVM_VM_POOL_H */
