// SPDX-License-Identifier: MIT
/*
 * vm/pindex.c - the RCU radix tree behind each object's page cache.
 *
 * Ordering: a writer fills a new node completely before it publishes the
 * pointer to it (rcu_assign_pointer: release); readers load pointers with
 * vm_rcu_dereference (acquire).  A node emptied by a delete is
 * unhooked and freed with call_rcu; a reader that still holds it sees only
 * NULL slots or the pages that were there, which are themselves freed
 * after a grace period (vm/page.c).
 */
#include <string.h>

#include "vm/pindex.h"
#include "vm/pool.h"
#include "vm/rcu.h"

#define PIDX_BITS	VM_PINDEX_LEAF_BITS
#define PIDX_SLOTS	(1u << PIDX_BITS)
#define PIDX_MASK	(PIDX_SLOTS - 1)
#define PIDX_MAXH	11	/* 66 bits of offset */

struct pidx_node {
	unsigned int shift;		/* (c) 0: slots hold pages */
	unsigned int count;		/* writer side */
	void *slots[PIDX_SLOTS];	/* rcu */
	struct rcu_head rcu;
};

/* Nodes come from a signal-safe pool: inserts run in signal context too. */
static struct vm_pool node_pool = VM_POOL_INIT("pindex", struct pidx_node, 64);

void vm_pindex_init(struct vm_pindex *t)
{
	memset(t, 0, sizeof(*t));
}

/* Context: after a grace period (no reader can see @n). */
static void node_free_all(struct pidx_node *n)
{
	unsigned int i;

	if (!n)
		return;
	if (n->shift)
		for (i = 0; i < PIDX_SLOTS; i++)
			node_free_all(n->slots[i]);
	vm_pool_free(&node_pool, n);
}

void vm_pindex_destroy(struct vm_pindex *t)
{
	node_free_all(t->root);
	t->root = NULL;
	t->nr = t->nodes = 0;
}

static inline uint64_t node_span_last(const struct pidx_node *n)
{
	unsigned int bits = n->shift + PIDX_BITS;

	return bits >= 64 ? UINT64_MAX : (1ull << bits) - 1;
}


void **vm_pindex_leaf_rcu(struct vm_pindex *t, uint64_t idx)
{
	struct pidx_node *n = vm_rcu_dereference(t->root);

	if (!n || idx > node_span_last(n))
		return NULL;
	while (n->shift) {
		n = vm_rcu_dereference(n->slots[(idx >> n->shift) & PIDX_MASK]);
		if (!n)
			return NULL;
	}
	return n->slots;
}

struct vm_page *vm_pindex_lookup_rcu(struct vm_pindex *t, uint64_t idx)
{
	void **slots = vm_pindex_leaf_rcu(t, idx);

	return slots ? vm_rcu_dereference(slots[idx & PIDX_MASK]) : NULL;
}

/* Find the first entry >= *idx under @n (which spans @base..). */
static struct vm_page *next_in(struct pidx_node *n, uint64_t base,
			       uint64_t *idx, uint64_t last)
{
	unsigned int i = (unsigned int)((*idx - base) >> n->shift) & PIDX_MASK;

	for (; i < PIDX_SLOTS; i++) {
		uint64_t sbase = base + ((uint64_t)i << n->shift);
		void *s;

		if (sbase > last)
			return NULL;
		s = vm_rcu_dereference(n->slots[i]);
		if (!s)
			continue;
		if (!n->shift) {
			if (sbase >= *idx) {
				*idx = sbase;
				return s;
			}
			continue;
		}
		{
			uint64_t from = MAX(*idx, sbase);
			struct vm_page *p = next_in(s, sbase, &from, last);

			if (p) {
				*idx = from;
				return p;
			}
		}
	}
	return NULL;
}

struct vm_page *vm_pindex_next_rcu(struct vm_pindex *t, uint64_t *idx,
				   uint64_t last)
{
	struct pidx_node *n = vm_rcu_dereference(t->root);

	if (!n || *idx > node_span_last(n) || *idx > last)
		return NULL;
	return next_in(n, 0, idx, MIN(last, node_span_last(n)));
}

static struct pidx_node *node_new(struct vm_pindex *t, unsigned int shift)
{
	struct pidx_node *n;

	vm_rcu_read_lock();
	n = vm_pool_alloc_rcu(&node_pool);
	vm_rcu_read_unlock();
	if (n) {
		n->shift = shift;
		t->nodes++;
	}
	return n;
}

int vm_pindex_insert(struct vm_pindex *t, uint64_t idx, struct vm_page *p)
{
	struct pidx_node *n = t->root, *c;
	unsigned int i;

	if (!n) {
		n = node_new(t, 0);
		if (!n)
			return -ENOMEM;
		rcu_assign_pointer(t->root, n);
	}
	while (idx > node_span_last(n)) {
		struct pidx_node *r = node_new(t, n->shift + PIDX_BITS);

		if (!r)
			return -ENOMEM;
		r->slots[0] = n;
		r->count = 1;
		rcu_assign_pointer(t->root, r);
		n = r;
	}
	while (n->shift) {
		i = (idx >> n->shift) & PIDX_MASK;
		c = n->slots[i];
		if (!c) {
			c = node_new(t, n->shift - PIDX_BITS);
			if (!c)
				return -ENOMEM;
			rcu_assign_pointer(n->slots[i], c);
			n->count++;
		}
		n = c;
	}
	i = idx & PIDX_MASK;
	if (n->slots[i])
		return -EEXIST;
	rcu_assign_pointer(n->slots[i], p);
	n->count++;
	t->nr++;
	return 0;
}

static void node_free_rcu(struct rcu_head *h)
{
	vm_pool_free(&node_pool, container_of(h, struct pidx_node, rcu));
}

struct vm_page *vm_pindex_delete(struct vm_pindex *t, uint64_t idx)
{
	struct pidx_node *path[PIDX_MAXH];
	unsigned int slot[PIDX_MAXH];
	struct pidx_node *n = t->root;
	struct vm_page *p;
	int d = 0;

	if (!n || idx > node_span_last(n))
		return NULL;
	for (;;) {
		path[d] = n;
		slot[d] = (idx >> n->shift) & PIDX_MASK;
		if (!n->shift)
			break;
		n = n->slots[slot[d]];
		if (!n)
			return NULL;
		d++;
	}
	p = n->slots[slot[d]];
	if (!p)
		return NULL;
	rcu_assign_pointer(n->slots[slot[d]], NULL);
	t->nr--;
	/* Unhook emptied nodes bottom-up; the root stays. */
	while (d >= 0 && --path[d]->count == 0 && d > 0) {
		rcu_assign_pointer(path[d - 1]->slots[slot[d - 1]], NULL);
		vm_call_rcu(&path[d]->rcu, node_free_rcu);
		t->nodes--;
		d--;
	}
	return p;
}

size_t vm_pindex_node_size(void)
{
	return sizeof(struct pidx_node);
}
