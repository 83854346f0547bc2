/* SPDX-License-Identifier: MIT */
/*
 * vm/pindex.h - an RCU-readable radix tree from page offset to page.
 *
 * Readers walk it under rcu_read_lock with no lock at all; writers are
 * serialised by the caller (the object's index lock).  Interior nodes of
 * 64 slots are published with rcu_assign_pointer and freed after a grace
 * period, so a reader sees either the old or the new tree, never a torn one.
 * The tree grows in height as larger offsets are inserted.
 */
#ifndef UFVM_VM_PINDEX_H
#define UFVM_VM_PINDEX_H

#include "vm/compat.h"

struct vm_page;
struct pidx_node;

struct vm_pindex {
	struct pidx_node *root;		/* rcu */
	uint64_t nr;			/* entries (writer side) */
	uint64_t nodes;			/* nodes allocated (writer side) */
};

void vm_pindex_init(struct vm_pindex *t);
/* Free every node.  Context: no reader can exist any more. */
void vm_pindex_destroy(struct vm_pindex *t);

/* Context: RCU read section.  Return: the page at @idx or NULL. */
struct vm_page *vm_pindex_lookup_rcu(struct vm_pindex *t, uint64_t idx);

/*
 * A cursor for lookups at nearby offsets in one RCU read section (a
 * fault-around window): it keeps the leaf node of the last lookup, so that
 * each further offset in that leaf costs one load instead of a walk from
 * the root.  What it returns is what vm_pindex_lookup_rcu() would have at
 * the time the leaf was found, or later: a leaf a delete unhooked reads as
 * empty, or as the pages it held, which the caller checks as it would any
 * RCU lookup's result.
 */
#define VM_PINDEX_LEAF_BITS	6
#define VM_PINDEX_LEAF_MASK	((1ull << VM_PINDEX_LEAF_BITS) - 1)

struct vm_pindex_cursor {
	struct vm_pindex *t;
	void **slots;		/* the leaf of [base, base + 64), or NULL */
	uint64_t base;		/* UINT64_MAX: none looked up yet */
};

/* Context: RCU read section.  Return: the slots of the leaf holding @idx, or NULL. */
void **vm_pindex_leaf_rcu(struct vm_pindex *t, uint64_t idx);

static inline void vm_pindex_cursor_init(struct vm_pindex_cursor *c, struct vm_pindex *t)
{
	c->t = t;
	c->slots = NULL;
	c->base = UINT64_MAX;
}

/* Context: the RCU read section of the cursor's whole use.  Return: the page at @idx or NULL. */
static inline struct vm_page *vm_pindex_cursor_get(struct vm_pindex_cursor *c, uint64_t idx)
{
	if ((idx & ~VM_PINDEX_LEAF_MASK) != c->base) {
		c->base = idx & ~VM_PINDEX_LEAF_MASK;
		c->slots = vm_pindex_leaf_rcu(c->t, idx);
	}
	return c->slots ? (struct vm_page *)__atomic_load_n(&c->slots[idx & VM_PINDEX_LEAF_MASK],
							     __ATOMIC_ACQUIRE) : NULL;
}

/*
 * Context: RCU read section.  Return: the first page at an offset in
 * [*idx, last], with *idx set to its offset; NULL if none.
 */
struct vm_page *vm_pindex_next_rcu(struct vm_pindex *t, uint64_t *idx,
				   uint64_t last);

/* Context: writer (index lock held).  Return: 0, -EEXIST, -ENOMEM. */
int vm_pindex_insert(struct vm_pindex *t, uint64_t idx, struct vm_page *p);
/* Context: writer.  Return: the page that was at @idx, or NULL. */
struct vm_page *vm_pindex_delete(struct vm_pindex *t, uint64_t idx);

/* Return: the size of one tree node, for memory accounting. */
size_t vm_pindex_node_size(void);

#endif /* UFVM_VM_PINDEX_H */
