// SPDX-License-Identifier: MIT
/*
 * vm/reclaim_fifo.c - FIFO reclaim: the oldest page goes first, used or
 * not.  The baseline (it is what umap does); no sampling cost at all.
 *
 * A page picked as a victim moves to the tail of the list at once.  One
 * that is evicted leaves the list anyway; one that stays (its write-back
 * failed) is not picked again before every other page was: without the
 * move, a few pages that cannot be cleaned at the head were the whole of
 * every scan, and the clean pages behind them were never reclaimed.
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
	struct cds_list_head *last = c->lru.prev;	/* the tail when the scan starts */
	struct vm_page *p, *t;
	unsigned int found = 0;

	*nzap = 0;
	cds_list_for_each_entry_safe(p, t, &c->lru, lru) {
		bool end = &p->lru == last;

		if (found == n)
			break;
		if (!vm_page_test(p, PG_LOCKED) && vm_page_get_unless_zero(p)) {
			victims[found++] = p;
			cds_list_del(&p->lru);		/* second chance if it stays */
			cds_list_add_tail(&p->lru, &c->lru);
		}
		if (end)
			break;	/* each page once per scan */
	}
	return found;
}

const struct vm_reclaim_ops vm_reclaim_fifo = {
	.name = "fifo",
	.add = fifo_add,
	.del = fifo_del,
	.scan = fifo_scan,
};
