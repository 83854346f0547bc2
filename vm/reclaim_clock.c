// SPDX-License-Identifier: MIT
/*
 * vm/reclaim_clock.c - CLOCK (second chance), the default reclaim policy.
 *
 * Pages sit on a ring in insertion order; the hand sweeps it.  A page whose
 * PG_REFERENCED bit is set gets a second chance: the bit is cleared and,
 * if the page is mapped, it is queued to be zapped.  That zap is how ufvm
 * learns that a *mapped* page is still used: an access to it after the
 * zap faults it back in (a cheap speculative or minor fault), and every
 * fault that maps a page sets PG_REFERENCED.  A page the hand finds
 * unreferenced is a victim.  Cost: per revolution of the hand, one zap for
 * each mapped page and one minor fault for each of those still in use.
 * New pages start referenced, so a page just read is not the next victim.
 *
 * Active pages.  A page that is mapped again after a sample (PG_SAMPLED
 * and a mapcount) is in use: a working set.  The hand samples it with its
 * bit kept, so that it has a whole revolution more to fault back in
 * before it can become a victim, and passes it by, bit kept, when the
 * scan's zap batch is full.  Any other referenced page loses its bit when
 * the hand passes, sampled or not: one mapped once and never sampled is
 * most often a page a scan read and left, which must go before the pages
 * read ahead of the scan and not yet used.  Without this, every page past
 * a full zap batch lost its bit unsampled and became a victim at the next
 * pass however hot it was (tests/cache/test_clock.c: a hot quarter of the
 * budget was evicted about once per five streamed pages).
 */
#include "vm/cache.h"

static void clock_add(struct vm_cache *c, struct vm_page *p)
{
	vm_page_set(p, PG_REFERENCED);
	cds_list_add_tail(&p->lru, &c->lru);
}

static void clock_del(struct vm_cache *c, struct vm_page *p)
{
	if (c->hand == &p->lru)
		c->hand = p->lru.next;
	cds_list_del(&p->lru);
}

static unsigned int clock_scan(struct vm_cache *c, struct vm_page **victims, unsigned int n,
			       struct vm_page **zap, unsigned int nz, unsigned int *nzap,
			       bool force)
{
	uint64_t steps = 2 * __atomic_load_n(&c->nr, __ATOMIC_RELAXED) + 1;
	unsigned int found = 0, z = 0;

	while (found < n && steps-- && !cds_list_empty(&c->lru)) {
		struct vm_page *p;

		if (c->hand == &c->lru || !c->hand)
			c->hand = c->lru.next;
		p = cds_list_entry(c->hand, struct vm_page, lru);
		c->hand = c->hand->next;
		if (vm_page_test(p, PG_REFERENCED) && !force) {
			bool mapped = vm_page_mapcount(p);
			bool active = mapped && vm_page_test(p, PG_SAMPLED) && !c->no_active;

			if (active && z >= nz)
				continue;	/* wait for a batch with room */
			if (!active)
				vm_page_clear(p, PG_REFERENCED);
			if (mapped && z < nz && vm_page_get_unless_zero(p))
				zap[z++] = p;
			continue;
		}
		if (vm_page_test(p, PG_LOCKED) || !vm_page_get_unless_zero(p))
			continue;
		victims[found++] = p;
	}
	*nzap = z;
	return found;
}

const struct vm_reclaim_ops vm_reclaim_clock = {
	.name = "clock",
	.add = clock_add,
	.del = clock_del,
	.scan = clock_scan,
};
