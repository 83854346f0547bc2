// SPDX-License-Identifier: MIT
/*
 * vm/region.c - regions: what one mapped range maps, under its ptl.
 *
 * Lock order here: page lock -> ptl (invalidation and write-back lock the
 * page, then take each region's ptl; so does a 1-page fill that maps the
 * page it made, vm_region_fill_locked()); a fault that maps cached pages
 * takes the ptl without any page lock; nothing sleeps on a page while
 * holding a ptl.
 *
 * Mapcount first (seed 004): a mapper raises the page's mapcount, issues a
 * full barrier, and only then checks the page (unlocked, up to date, still
 * in the object); it does all of this under the ptl.  An invalidator locks
 * the page and then reads mapcount: if the mapper's check passed, its raise
 * came before the lock and is visible, so the invalidator walks the rmap
 * and serialises on this ptl, finding the new mapping and zapping it.
 */
#include <string.h>

#include "vm/aspace.h"
#include "vm/object.h"
#include "vm/region.h"

int vm_region_create(struct vm_object *obj, uint64_t pgoff, uint64_t npages,
		     bool writable, struct vm_region **out)
{
	size_t words = DIV_ROUND_UP(npages, 64);
	struct vm_region *r = calloc(1, sizeof(*r));

	if (!r)
		return -ENOMEM;
	r->mapped = calloc(words, sizeof(uint64_t));
	r->wmapped = calloc(words, sizeof(uint64_t));
	if (!r->mapped || !r->wmapped) {
		free(r->mapped);
		free(r->wmapped);
		free(r);
		return -ENOMEM;
	}
	r->object = obj;
	r->pgoff = pgoff;
	r->npages = npages;
	r->writable = writable;
	vm_mutex_init(&r->ptl, VM_LC_PTL);
	CDS_INIT_LIST_HEAD(&r->rmap);
	*out = r;
	return 0;
}

static void region_free_cb(struct rcu_head *h)
{
	struct vm_region *r = container_of(h, struct vm_region, rcu);

	vm_mutex_destroy(&r->ptl);
	free(r->mapped);
	free(r->wmapped);
	free(r);
}

void vm_region_free_rcu(struct vm_region *r)
{
	vm_call_rcu(&r->rcu, region_free_cb);
}

bool vm_region_map_try_locked(struct vm_region *r, struct vm_page *p)
{
	struct vm_object *obj = r->object;
	uint32_t f;

	VM_ASSERT_HELD(&r->ptl);
	if ((r->dead && !(obj->pol->debug & UFVM_DEBUG_NO_DEAD_CHECK)) ||
	    bit_test(r->mapped, p->index - r->pgoff))
		return false;
	if (unlikely(obj->pol->debug & UFVM_DEBUG_CHECK_THEN_RAISE)) {
		/* The broken order, for the race test only: check, then raise. */
		f = load_acquire(&p->flags);
		if (READ_ONCE(p->object) != obj ||
		    (f & (PG_LOCKED | PG_UPTODATE)) != PG_UPTODATE ||
		    p->index >= vm_object_npages(obj))
			return false;
		/* The window the bug lives in: checked, not yet raised. */
		vm_hook(obj->pol, UFVM_HOOK_AROUND_CHECKED, p->index, 0);
		vm_page_map_raise(p);
		return true;
	}
	vm_page_map_raise(p);
	f = vm_page_flags_sc(p);
	if (READ_ONCE(p->object) != obj ||
	    (f & (PG_LOCKED | PG_UPTODATE)) != PG_UPTODATE ||
	    p->index >= vm_object_npages(obj)) {
		vm_page_map_drop(p);
		return false;
	}
	return true;
}

static int install_run(struct vm_region *r, struct vm_page **pages,
		       uint64_t first, unsigned int n, bool writable)
{
	struct vm_pmap *pm = r->as->pmap;
	unsigned int i;
	int err;

	err = pm->ops->install(pm, r, vm_region_addr(r, first),
			       (size_t)n << PAGE_SHIFT, r->writable && !writable);
	if (err) {
		/* Leave nothing half-known: unmap the run and undo. */
		pm->ops->zap(pm, r, vm_region_addr(r, first), (size_t)n << PAGE_SHIFT);
		for (i = 0; i < n; i++)
			vm_page_map_drop(pages[i]);
		return err;
	}
	for (i = 0; i < n; i++) {
		bit_set(r->mapped, first + i - r->pgoff);
		if (writable)
			bit_set(r->wmapped, first + i - r->pgoff);
		if (!vm_page_test(pages[i], PG_REFERENCED))
			vm_page_set(pages[i], PG_REFERENCED);	/* for the clock */
	}
	return 0;
}

int vm_region_fill_locked(struct vm_region *r, struct vm_page *p, const void *src, bool write)
{
	struct vm_pmap *pm = r->as->pmap;
	uint64_t b = p->index - r->pgoff;
	int err;

	VM_ASSERT_HELD(&r->ptl);
	VM_ASSERT_HELD(p);
	if (!pm->ops->fill)
		return -EOPNOTSUPP;
	if (r->dead || bit_test(r->mapped, b))
		return -EEXIST;
	/*
	 * Mapcount first, as vm_region_map_try_locked(); the checks it makes
	 * after the raise hold already: the page is ours, locked, and an
	 * invalidation must lock it before it looks at the mapcount.
	 */
	vm_page_map_raise(p);
	/*
	 * Past the end, the size checked after the raise (mapcount first): a
	 * shrinking truncate that stored its size since the fill read it
	 * zaps what it finds mapped only once this page is unlocked, and may
	 * yet fail.  The caller writes the frame and maps the page the usual
	 * way, which refuses too (the fault then gets SIGBUS).
	 */
	if (p->index >= vm_object_npages(r->object) &&
	    !(r->object->pol->debug & UFVM_DEBUG_FILL_PAST_SHRINK)) {
		vm_page_map_drop(p);
		return -ERANGE;
	}
	/*
	 * Dirty before the call that maps it writable: the call wakes the
	 * writer, which may sync at once, and a sync skips a clean page (as
	 * vm_region_install_locked()).  If the call fails, the page stays
	 * dirty: the caller writes its frame and maps it for the write, or
	 * discards it (which forgets the dirt).
	 */
	if (write && r->writable)
		vm_object_set_dirty(r->object, p);
	err = pm->ops->fill(pm, r, vm_region_addr(r, p->index), src, r->writable && !write);
	if (err) {
		vm_page_map_drop(p);
		return err;
	}
	bit_set(r->mapped, b);
	if (write && r->writable)
		bit_set(r->wmapped, b);
	vm_page_set(p, PG_REFERENCED);	/* for the clock */
	return 0;
}

int vm_region_install_locked(struct vm_region *r, struct vm_page **pages,
			     uint64_t first, unsigned int n, bool write)
{
	unsigned int i, s = 0;
	int err = 0, e;

	VM_ASSERT_HELD(&r->ptl);
	if (!r->writable)
		return install_run(r, pages, first, n, false);
	if (write)
		for (i = 0; i < n; i++)
			vm_object_set_dirty(r->object, pages[i]);
	/*
	 * Dirty pages go in writable, clean ones write-protected (mkwrite).
	 * Each page's bit is read once: another thread may dirty a page
	 * meanwhile (ufvm_pwrite, a fault in another region), and a run read
	 * clean then installed writable would take stores unseen.  A page read
	 * dirty stays so: cleaning it needs this ptl first.
	 */
	const struct vm_policy *pol = r->object->pol;
	bool ws = vm_page_test(pages[0], PG_DIRTY), wi;
	/* Tests only: looked up once, not per page of the window. */
	bool hooked = __atomic_load_n(&pol->hook, __ATOMIC_RELAXED) != NULL;
	bool reread = pol->debug & UFVM_DEBUG_AROUND_REREAD;

	for (i = 1; i <= n; i++) {
		if (unlikely(hooked) && i < n)
			vm_hook(pol, UFVM_HOOK_AROUND_RUNS, first + i, 0);
		wi = i < n && vm_page_test(pages[i], PG_DIRTY);
		if (unlikely(reread))
			ws = vm_page_test(pages[s], PG_DIRTY);	/* the bug, for tests */
		if (i < n && wi == ws)
			continue;
		e = install_run(r, pages + s, first + s, i - s, ws);
		if (e && !err)
			err = e;
		s = i;
		ws = wi;
	}
	return err;
}

static void drop_mapped_locked(struct vm_region *r, uint64_t lo, uint64_t hi);

/*
 * Zap [addr, addr+len) of @r for a caller that frees the frames next.  If
 * the backend cannot, zap the whole region instead: the sigsegv backend's
 * zap of part of a mapping splits it, which fails at vm.max_map_count,
 * and a page left mapped over a freed frame would read a new, zeroed
 * frame and take writes into it that ufvm never sees
 * (tests/api/test_sigsegv_zap_enomem.c).  The whole region's zap takes no
 * new mapping.  Return: 0 (the range zapped), 1 (the whole region zapped,
 * its shadow bits and mapcounts dropped), or the backend's -errno (nothing
 * known to be zapped).  Context: ptl held.
 */
static int zap_or_all_locked(struct vm_region *r, uintptr_t addr, size_t len)
{
	struct vm_pmap *pm = r->as->pmap;
	int err = pm->ops->zap(pm, r, addr, len);

	if (!err || (addr == r->start && len == r->end - r->start))
		return err;
	if (pm->ops->zap(pm, r, r->start, r->end - r->start))
		return err;
	drop_mapped_locked(r, 0, r->npages - 1);
	return 1;
}

bool vm_region_zap_page_locked(struct vm_region *r, struct vm_page *p)
{
	uint64_t b;

	VM_ASSERT_HELD(&r->ptl);
	if (!vm_region_covers_idx(r, p->index))
		return false;
	b = p->index - r->pgoff;
	if (!bit_test(r->mapped, b))
		return false;
	if (zap_or_all_locked(r, vm_region_addr(r, p->index), PAGE_SIZE) == 1)
		return true;	/* and every other page of @r */
	/* Zapped, or nothing more to try: the punch that follows unmaps it
	 * in the uffd backend's regions. */
	bit_clear(r->mapped, b);
	bit_clear(r->wmapped, b);
	vm_page_map_drop(p);
	return true;
}

#define ZAP_PAGES_CHUNK	32	/* ranges per pmap call */

/*
 * Unmap the ranges v[0..n) of @r: one vectored call if the backend has it.
 * If that fails, the whole region (zap_or_all_locked()).  Return: true if
 * the whole region was zapped, its shadow bits and mapcounts dropped.
 */
static bool zapv_locked(struct vm_region *r, const struct vm_pmap_range *v, unsigned int n)
{
	struct vm_pmap *pm = r->as->pmap;
	unsigned int i;
	int err = 0;

	if (!n)
		return false;
	if (pm->ops->zapv) {
		err = pm->ops->zapv(pm, r, v, n);
	} else {
		for (i = 0; i < n; i++)
			if (pm->ops->zap(pm, r, v[i].addr, v[i].len) && !err)
				err = -1;
	}
	if (!err || pm->ops->zap(pm, r, r->start, r->end - r->start))
		return false;	/* zapped; or nothing more to try (as in zap_range()) */
	drop_mapped_locked(r, 0, r->npages - 1);
	return true;
}

/* Clear the shadow bits of pages[0..n) mapped in @r and drop their mapcounts. */
static void unmapped_locked(struct vm_region *r, struct vm_page **pages, unsigned int n)
{
	unsigned int i;

	for (i = 0; i < n; i++) {
		struct vm_page *p = pages[i];
		uint64_t b = p->index - r->pgoff;

		if (!vm_region_covers_idx(r, p->index) || !bit_test(r->mapped, b))
			continue;
		bit_clear(r->mapped, b);
		bit_clear(r->wmapped, b);
		vm_page_map_drop(p);
	}
}

unsigned int vm_region_zap_pages(struct vm_region *r, struct vm_page **pages, unsigned int n)
{
	struct vm_pmap_range v[ZAP_PAGES_CHUNK];
	unsigned int i, s = 0, k = 0, zapped = 0;

	vm_mutex_lock(&r->ptl);
	for (i = 0; i < n && !r->dead; i++) {
		struct vm_page *p = pages[i];
		uintptr_t a;

		if (!vm_region_covers_idx(r, p->index) || !bit_test(r->mapped, p->index - r->pgoff))
			continue;
		a = vm_region_addr(r, p->index);
		zapped++;
		if (k && v[k - 1].addr + v[k - 1].len == a) {
			v[k - 1].len += PAGE_SIZE;
			continue;
		}
		if (k == ZAP_PAGES_CHUNK) {
			if (zapv_locked(r, v, k))
				goto out;	/* the whole region: nothing left mapped */
			unmapped_locked(r, pages + s, i - s);
			s = i;
			k = 0;
		}
		v[k].addr = a;
		v[k++].len = PAGE_SIZE;
	}
	if (!zapv_locked(r, v, k))
		unmapped_locked(r, pages + s, i - s);
out:
	vm_mutex_unlock(&r->ptl);
	return zapped;
}

bool vm_region_wrprotect_page_locked(struct vm_region *r, struct vm_page *p)
{
	struct vm_pmap *pm = r->as->pmap;
	uint64_t b;

	VM_ASSERT_HELD(&r->ptl);
	if (!vm_region_covers_idx(r, p->index))
		return true;
	b = p->index - r->pgoff;
	if (!bit_test(r->wmapped, b))
		return true;
	if (pm->ops->protect(pm, r, vm_region_addr(r, p->index), PAGE_SIZE, true)) {
		/*
		 * Still writable: a store would go unseen once write-back has
		 * cleaned the page.  Unmap it instead (it faults back in); if
		 * that fails too, it stays as it is, and the caller keeps the
		 * page dirty.
		 */
		if (pm->ops->zap(pm, r, vm_region_addr(r, p->index), PAGE_SIZE))
			return false;
		vm_page_map_drop(p);
		bit_clear(r->mapped, b);
	}
	bit_clear(r->wmapped, b);
	return true;
}

uint64_t vm_region_wrprotect_run_locked(struct vm_region *r, struct vm_page **run, unsigned int n)
{
	struct vm_pmap *pm = r->as->pmap;
	unsigned int i = 0, s, k;
	uint64_t stuck = 0;

	VM_ASSERT_HELD(&r->ptl);
	while (i < n) {
		if (!vm_region_covers_idx(r, run[i]->index) ||
		    !bit_test(r->wmapped, run[i]->index - r->pgoff)) {
			i++;
			continue;
		}
		/* The pages from run[i] on mapped writable here, offsets in a row. */
		for (s = i++; i < n && run[i]->index == run[i - 1]->index + 1 &&
			      vm_region_covers_idx(r, run[i]->index) &&
			      bit_test(r->wmapped, run[i]->index - r->pgoff); i++)
			;
		if (i - s > 1 && !pm->ops->protect(pm, r, vm_region_addr(r, run[s]->index),
						   (size_t)(i - s) << PAGE_SHIFT, true)) {
			for (k = s; k < i; k++)
				bit_clear(r->wmapped, run[k]->index - r->pgoff);
			continue;
		}
		/* One page, or the call failed (maybe part way): page by page. */
		for (k = s; k < i; k++)
			if (!vm_region_wrprotect_page_locked(r, run[k]))
				stuck |= 1ull << k;
	}
	return stuck;
}

/* Drop the mapcount of every page mapped in [lo, hi] (region-relative
 * bit numbers) and clear their bits.  Context: ptl held. */
static void drop_mapped_locked(struct vm_region *r, uint64_t lo, uint64_t hi)
{
	uint64_t b;

	vm_rcu_read_lock();
	for (b = lo; b <= hi; b++) {
		struct vm_page *p;

		if (!(b % 64) && hi - b >= 63 && !r->mapped[b / 64]) {
			b += 63;	/* a whole word with nothing mapped */
			continue;
		}
		if (!bit_test(r->mapped, b))
			continue;
		p = vm_object_lookup_rcu(r->object, r->pgoff + b);
		VM_BUG_ON(!p);	/* mapped => in the index */
		vm_page_map_drop(p);
		bit_clear(r->mapped, b);
		bit_clear(r->wmapped, b);
	}
	vm_rcu_read_unlock();
}

/*
 * Zap [first, last] of @r.  If the backend fails, the pages may still be
 * mapped: with @keep_on_error their bits and mapcounts stay (they are
 * still write-protected by write-back, and a later zap finds them).  Else
 * (the caller frees the frames next: a punch, a truncate) the whole region
 * is zapped instead (zap_or_all_locked()).  Only if that fails too are the
 * pages dropped regardless: the uffd backend's punch of the frames unmaps
 * them in the kernel anyway; the sigsegv backend's whole-region zap falls
 * back on mprotect(), which needs no new mapping either.
 * Return: 0 or the backend's -errno.
 */
/* zap_range() with the ptl held. */
static int zap_range_locked(struct vm_region *r, uint64_t first, uint64_t last,
			    bool keep_on_error)
{
	struct vm_pmap *pm = r->as->pmap;
	uint64_t lo, hi;
	int err = 0;

	VM_ASSERT_HELD(&r->ptl);
	if (last < r->pgoff || first >= r->pgoff + r->npages || r->dead)
		return 0;
	lo = MAX(first, r->pgoff) - r->pgoff;
	hi = MIN(last, r->pgoff + r->npages - 1) - r->pgoff;
	uintptr_t a = r->start + (lo << PAGE_SHIFT);
	size_t len = (size_t)(hi - lo + 1) << PAGE_SHIFT;

	err = keep_on_error ? pm->ops->zap(pm, r, a, len) : zap_or_all_locked(r, a, len);
	if (err == 1)
		err = 0;	/* the whole region, bits and all */
	else if (!err || !keep_on_error)
		drop_mapped_locked(r, lo, hi);
	return err;
}

static int zap_range(struct vm_region *r, uint64_t first, uint64_t last, bool keep_on_error)
{
	int err;

	vm_mutex_lock(&r->ptl);
	err = zap_range_locked(r, first, last, keep_on_error);
	vm_mutex_unlock(&r->ptl);
	return err;
}

void vm_region_zap_range(struct vm_region *r, uint64_t first, uint64_t last)
{
	zap_range(r, first, last, false);
}

void vm_region_zap_range_locked(struct vm_region *r, uint64_t first, uint64_t last)
{
	zap_range_locked(r, first, last, false);
}

int vm_region_unmap_range(struct vm_region *r, uint64_t first, uint64_t last)
{
	return zap_range(r, first, last, true);
}

/* Move what @r maps in @n's part to @n (bitmaps and mapcounts).
 * Context: as vm_region_replace, rmap lock and @r's ptl held. */
static void take_locked(struct vm_region *r, struct vm_region *n)
{
	uint64_t off = n->pgoff - r->pgoff, b;

	VM_ASSERT_HELD(&r->ptl);
	VM_BUG_ON(n->object != r->object || n->pgoff < r->pgoff ||
		  off + n->npages > r->npages || r->dead);
	for (b = 0; b < n->npages; b++) {
		uint64_t rb = off + b;

		if (!(rb % 64) && !r->mapped[rb / 64] && b + 64 <= n->npages) {
			b += 63;	/* a whole word of r with nothing mapped */
			continue;
		}
		if (!bit_test(r->mapped, rb))
			continue;
		bit_set(n->mapped, b);
		if (bit_test(r->wmapped, rb)) {
			VM_BUG_ON(!n->writable);	/* reprotect first */
			bit_set(n->wmapped, b);
		}
		bit_clear(r->mapped, rb);
		bit_clear(r->wmapped, rb);
	}
	n->ra_prev = r->ra_prev;
	n->ra_next = r->ra_next;
	n->ra_size = r->ra_size;
	n->ra_miss = r->ra_miss;
	n->fa_next = r->fa_next;
	n->fa_win = r->fa_win;
}

int vm_region_reprotect_locked(struct vm_region *r, uint64_t first, uint64_t last,
			       bool writable)
{
	struct vm_pmap *pm = r->as->pmap;
	uint64_t lo = first - r->pgoff, hi = last - r->pgoff, b;
	uintptr_t a = vm_region_addr(r, first);
	size_t len = (size_t)(last - first + 1) << PAGE_SHIFT;
	int err;

	VM_ASSERT_HELD(&r->ptl);
	VM_BUG_ON(first < r->pgoff || last >= r->pgoff + r->npages || first > last);
	if (writable) {
		/*
		 * Read-only mappings of a page say nothing of whether it was
		 * written: drop them, so that no page is mapped writable
		 * without passing through mkwrite (which dirties it).
		 */
		pm->ops->zap(pm, r, a, len);
		drop_mapped_locked(r, lo, hi);
	}
	err = pm->ops->set_prot(pm, r, a, len, writable);
	if (err || writable)
		return err;
	for (b = lo; b <= hi; b++)
		bit_clear(r->wmapped, b);	/* dirty still; no longer writable */
	return 0;
}

int vm_region_replace(struct vm_region *r, struct vm_region **by, size_t n)
{
	struct vm_object *obj = r->object;
	struct vm_region_array *na;
	size_t i;
	int err = 0;

	VM_ASSERT_HELD_EXCL(&r->as->mmap_lock);
	VM_BUG_ON(!n || by[0]->start != r->start || by[n - 1]->end != r->end);
	for (i = 1; i < n; i++)
		VM_BUG_ON(by[i]->start != by[i - 1]->end);
	na = vm_aspace_build_locked(r->as, r, by, n);
	if (!na)
		return -ENOMEM;
	vm_mutex_lock(&obj->rmap_lock);
	vm_mutex_lock(&r->ptl);
	for (i = 0; i < n && !err; i++)
		if (by[i]->writable != r->writable)
			err = vm_region_reprotect_locked(r, by[i]->pgoff,
							 by[i]->pgoff + by[i]->npages - 1,
							 by[i]->writable);
	if (!err) {
		/*
		 * A lock-free fault that finds @r from here on sees it dead
		 * and takes the locked path, which waits for mmap_lock and
		 * then finds the pieces; invalidation finds them on the rmap
		 * with what they map.
		 */
		for (i = 0; i < n; i++) {
			take_locked(r, by[i]);
			cds_list_add_tail(&by[i]->rmap, &obj->regions);
		}
		r->dead = true;
		cds_list_del_init(&r->rmap);
	}
	vm_mutex_unlock(&r->ptl);
	vm_mutex_unlock(&obj->rmap_lock);
	if (err) {
		free(na);
		return err;
	}
	vm_aspace_publish_locked(r->as, na);
	vm_region_free_rcu(r);
	return 0;
}

void vm_region_kill(struct vm_region *r)
{
	struct vm_pmap *pm = r->as->pmap;

	vm_mutex_lock(&r->ptl);
	r->dead = true;
	if (r->npages) {
		/*
		 * Unmap the pages before their mapcounts drop: from then on a
		 * write-back no longer write-protects them here, so a write
		 * through an entry left writable until the region is detached
		 * would land in a page that write-back has cleaned.
		 */
		if (!(r->object->pol->debug & UFVM_DEBUG_KILL_NO_ZAP))
			pm->ops->zap(pm, r, r->start, (size_t)r->npages << PAGE_SHIFT);
		drop_mapped_locked(r, 0, r->npages - 1);
	}
	vm_mutex_unlock(&r->ptl);
}
