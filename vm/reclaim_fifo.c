// SPDX-License-Identifier: MIT
/*
 * vm/reclaim_fifo.c - FIFO reclaim: the oldest page goes first, used or
 * not.  The baseline (it is what umap does); no sampling cost at all.
 */
#include "vm/cache.h"

static void fifo_add(struct vm_cache *c, struct vm_page *p)
{
	cds_list_add_tail(&p->lru, &c->lru);
}

static void fifo_del(struct vm_cache *c, struct vm_page *p)
{
	cds_list_del(&p->lru);
}

static unsigned int fifo_scan(struct vm_cache *c, struct vm_page **victims, unsigned int n,
			      struct vm_page **zap, unsigned int nz, unsigned int *nzap,
			      bool force)
{
	struct vm_page *p;
	unsigned int found = 0;

	*nzap = 0;
	cds_list_for_each_entry(p, &c->lru, lru) {
		if (found == n)
			break;
		if (vm_page_test(p, PG_LOCKED) || !vm_page_get_unless_zero(p))
			continue;
		victims[found++] = p;
	}
	return found;
}

const struct vm_reclaim_ops vm_reclaim_fifo = {
	.name = "fifo",
	.add = fifo_add,
	.del = fifo_del,
	.scan = fifo_scan,
};
