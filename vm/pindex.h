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
