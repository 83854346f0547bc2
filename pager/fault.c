// SPDX-License-Identifier: MIT
/*
 * pager/fault.c - the fault path, the same for every delivery backend.
 *
 * Lock order on this path (docs/locking.md):
 *   mmap_lock (shared) -> invalidate lock (shared, fills only)
 *     -> page lock -> ptl
 * The ptl is taken with no page lock held, but for a 1-page fill from a
 * store in memory, which maps its still locked page
 * (vm_object_fill_map_page()); nothing sleeps under it but the install
 * ioctl.  RCU read sections nest inside the ptl.
 *
 * One fault, in order (DESIGN.md "The fault path"):
 *  1. speculative (policy): no mmap_lock; RCU region and page lookups;
 *     any doubt -> FALLBACK, counted by reason;
 *  2. locked: mmap_lock shared; cached and up to date -> map (with
 *     fault-around); cached but locked -> vm_page_lock_or_retry; missing ->
 *     fill under the invalidate lock, dropping mmap_lock for the read when
 *     retry is allowed and the read is I/O (one page already in memory is
 *     filled and mapped at once);
 *  3. write to a write-protected page -> mkwrite.
 * A fault that finds nothing to do (page mapped by a duplicate message,
 * region gone) wakes the faulting thread, which faults again if it must.
 *
 * The retry contract (seed 003): an attempt with PF_ALLOW_RETRY that must
 * wait drops mmap_lock first and returns RETRY; the second attempt runs
 * without PF_ALLOW_RETRY and may wait holding it, so it cannot starve.
 */
#include <pthread.h>

#include "pager/pager.h"
#include "vm/cache.h"
#include "vm/object.h"
#include "vm/region.h"
#include "vm/trace.h"

static inline struct vm_pmap *pmap_of(struct pager_fault *vmf)
{
	return vmf->as->pmap;
}

static void wake(struct pager_fault *vmf, struct vm_region *r)
{
	struct vm_pmap *pm = pmap_of(vmf);

	pm->ops->wake(pm, r, vmf->addr, PAGE_SIZE);
}

/*
 * A fault on page @idx, which @r counts mapped: a duplicate, or the kernel
 * unmapped it behind our back (vm/pmap.h, ->remap).  Map it again if so,
 * with the protection it had, and wake the thread: only waking it would
 * have it fault again for ever.  Context: ptl held.
 */
static void remap(struct pager_fault *vmf, struct vm_region *r, uint64_t idx)
{
	struct vm_pmap *pm = pmap_of(vmf);

	vm_stat_inc(vmf->stats, UFVM_CTR_DUP);
	if (!pm->ops->remap || (vmf->pol->debug & UFVM_DEBUG_DUP_ONLY_WAKES)) {
		pm->ops->wake(pm, r, vmf->addr, PAGE_SIZE);
		return;
	}
	pm->ops->remap(pm, r, vmf->addr, r->writable && !bit_test(r->wmapped, idx - r->pgoff));
}

#define WA_TRAIL_MIN	8	/* pages written in a row before a write maps ahead */

/*
 * write_window - the pages a write fault at @idx of @r maps writable, and
 * so dirties, from @idx on (write-ahead).  A write maps its own page only,
 * unless the writer is sequential: the WA_TRAIL_MIN pages right before
 * @idx or more are mapped writable in @r (its trail); then twice the
 * trail, up to the policy's write_ahead, and no more than the cache takes
 * dirty at once (none over its slack, none past its dirty limit, none
 * while write-backs fail).  A page dirtied ahead and never written costs a
 * store write of its own bytes, as a large folio's does in the kernel; a
 * random writer rarely has a trail (docs/architecture.md, "Write-ahead").
 * The trail is read from the region's writable bits, so two writers of
 * one region each keep theirs.  At most write_ahead / 2 bit tests (8 at
 * least).  None once this file may be cached apart too (vm_caches_apart():
 * another instance's or process's cache may write it, and a page dirtied
 * here but never stored into would go back over what that one synced).
 * Context: ptl held.
 */
static uint64_t write_window(struct pager_fault *vmf, struct vm_region *r, uint64_t idx)
{
	struct vm_cache *c = r->object->cache;
	uint64_t max = vmf->pol->write_ahead, b = idx - r->pgoff, t = 0, room;

	if (max <= 1 || b < WA_TRAIL_MIN || !bit_test(r->wmapped, b - 1))
		return 1;
	if (vm_caches_apart() && !(vmf->pol->debug & UFVM_DEBUG_WA_APART))	/* else: the bug */
		return 1;
	while (t < MAX(max / 2, WA_TRAIL_MIN) && t < b && bit_test(r->wmapped, b - t - 1))
		t++;
	if (t < WA_TRAIL_MIN || vm_cache_over_slack(c) ||
	    __atomic_load_n(&c->nr_unclean, __ATOMIC_RELAXED))
		return 1;
	room = c->dirty_limit - MIN(c->dirty_limit, __atomic_load_n(&c->nr_dirty, __ATOMIC_RELAXED));
	return MAX(MIN(MIN(2 * t, max), room), 1);
}

/*
 * The window of fault-around for page @idx of @r: aligned down to the
 * window like the kernel's, inside the region and the file.
 */
static void fa_window(struct pager_fault *vmf, struct vm_region *r, uint64_t idx,
		      uint64_t *lo, uint64_t *hi)
{
	uint64_t w = vmf->pol->fault_around, npages = vm_object_npages(r->object);
	uint64_t s, e;

	if (vmf->flags & PF_WRITE) {
		w = write_window(vmf, r, idx);
		if (w > 1) {
			s = idx;
			e = s + w - 1;
			goto clamp;
		}
	} else if (w > 1 && vmf->pol->map_ahead > w && idx == READ_ONCE(r->fa_next)) {
		/*
		 * Map-ahead: the fault lands where the last window ended, so
		 * the reader is sequential: map a window twice as large, all
		 * of it ahead of the reader (racy per-region hint).
		 */
		w = MIN(2 * (uint64_t)MAX(READ_ONCE(r->fa_win), 1u), vmf->pol->map_ahead);
		WRITE_ONCE(r->fa_win, (uint32_t)w);
		s = idx;
		e = s + w - 1;
		goto clamp;
	}
	if (READ_ONCE(r->fa_win) != w)
		WRITE_ONCE(r->fa_win, (uint32_t)w);
	s = idx - idx % w;
	e = s + w - 1;
clamp:
	s = MAX(s, r->pgoff);
	e = MIN(e, r->pgoff + r->npages - 1);
	if (npages)
		e = MIN(e, npages - 1);
	*lo = s;
	*hi = MAX(e, idx);
}

/* ---- readahead (the kernel's on-demand readahead is the model) ---- */

#define RA_AROUND	32	/* read-around of a random miss, pages */
#define RA_MISS_MAX	100	/* misses without hits before read-around stops */
#define RA_TRAIL_MIN	8	/* cached pages before a miss that make it sequential */
#define RA_TRAIL_FULL	64	/* the same in a cache full under its budget */

/*
 * Read-around only into free room: in a full cache under a budget it would
 * evict pages to make room for neighbours that random access rarely uses.
 * Room promised to fills in flight is not free (a cache drained by fills
 * waiting for room is not an empty one).
 */
static bool read_around_fits(struct vm_cache *c)
{
	return !c->budget || __atomic_load_n(&c->nr, __ATOMIC_RELAXED) +
			     __atomic_load_n(&c->reserved, __ATOMIC_RELAXED) + RA_AROUND < c->low;
}

/*
 * The window to read on a major fault at @idx: a first window when the
 * fault follows the previous one; double the last window when it lands
 * right after it; twice a reader's trail, the pages cached right before
 * @idx, when that is RA_TRAIL_MIN pages or more (RA_TRAIL_FULL when the
 * cache is full under its budget): it tells a reader's major fault from a
 * random one when the region's last fault was another reader's (two
 * threads scanning two parts of one region); otherwise a read-around of
 * RA_AROUND pages from the fault on, unless the region's recent misses
 * went unused (the kernel's mmap_miss: each major fault counts one up,
 * each page mapped from the cache one down) or the cache is full under its
 * budget; then the one page.  *@mark says whether the window gets a
 * PG_READAHEAD page: not a read-around under a budget.  Racy per-region
 * heuristics: a lost update only changes a window size.
 */
static unsigned int ra_window(struct vm_region *r, uint64_t idx, unsigned int around,
			      bool *mark)
{
	unsigned int max = r->object->cache->ra_max, n;
	uint64_t prev = READ_ONCE(r->ra_prev), next = READ_ONCE(r->ra_next);
	uint32_t size = READ_ONCE(r->ra_size), miss = READ_ONCE(r->ra_miss);

	*mark = true;
	WRITE_ONCE(r->ra_prev, idx);
	if (miss < UINT32_MAX)
		WRITE_ONCE(r->ra_miss, miss + 1);
	if (max <= 1)
		return 1;
	if (idx == next && size) {
		n = MIN(2 * size, max);
	} else if (idx > prev && idx <= prev + MAX(around, 1u)) {
		n = MIN(MAX(around, 4u), max);
	} else if ((n = vm_object_cached_run(r->object, idx, max, true)) >= RA_TRAIL_MIN &&
		   (n >= RA_TRAIL_FULL || read_around_fits(r->object->cache))) {
		n = MIN(2 * n, max);
	} else if (miss < RA_MISS_MAX && read_around_fits(r->object->cache)) {
		n = MIN(RA_AROUND, max);	/* read-around */
		/*
		 * Not marked under a budget: a random reader that maps its
		 * middle would start a window after it, evicting for it.
		 */
		*mark = !r->object->cache->budget;
	} else {
		return 1;
	}
	n = (unsigned int)MIN((uint64_t)n, r->pgoff + r->npages - idx);
	WRITE_ONCE(r->ra_next, idx + n);
	WRITE_ONCE(r->ra_size, n);
	return n;
}

/* @n pages mapped from the cache: what was read around is being used. */
static inline void ra_hit(struct vm_region *r, unsigned int n)
{
	uint32_t miss = READ_ONCE(r->ra_miss);

	if (miss)
		WRITE_ONCE(r->ra_miss, miss > n ? miss - n : 0);
}

/*
 * The page at @idx, marked PG_READAHEAD, was mapped: start the next
 * window, at the first page not cached after it, twice as long as the
 * cached run from @idx to there (the marker is a window's first page, or
 * the middle of a fault's window).  Derived from the index, as the
 * kernel's async readahead does, not from the region's last window, which
 * another reader of the region may have set.  At most 2 * ra_max index
 * loads, once per window.
 * Context: the ptl held (map_pages_locked()).
 */
static void ra_async(struct vm_region *r, uint64_t idx)
{
	struct vm_cache *c = r->object->cache;
	uint64_t end = MIN(r->pgoff + r->npages, vm_object_npages(r->object));
	uint64_t ahead = 2 * (uint64_t)c->ra_max, first, n;

	if (idx + 1 >= end)
		return;
	first = idx + 1 + vm_object_cached_run(r->object, idx + 1,
					       (unsigned int)MIN(end - idx - 1, ahead - 1), false);
	if (first >= end || first - idx >= ahead)
		return;	/* the end, or read far enough ahead already */
	n = MIN(MIN(2 * (first - idx), (uint64_t)c->ra_max), end - first);
	vm_stat_inc(vm_stats_shard_get(c->stats), UFVM_CTR_READAHEAD_ASYNC);
	vm_cache_readahead(c, r->object, first, (unsigned int)n);
}

/*
 * Install a run, timing the backend's call: pager_fault() records the
 * service time without it (struct ufvm_stats.own).  Two clock reads
 * (vDSO, ~25 ns each).  Context: as vm_region_install_locked().
 */
static void install_timed(struct pager_fault *vmf, struct vm_region *r, struct vm_page **run,
			  uint64_t first, unsigned int n, bool write)
{
	uint64_t t = vm_now_ns();

	vm_region_install_locked(r, run, first, n, write);
	vmf->install_ns += vm_now_ns() - t;
}

#define NOMAP_LIMIT	16	/* failed installs in a row, in a region, before SIGBUS */

/*
 * map_pages_locked - map page @fp (at @idx) and its cached neighbours;
 * with @fp_mapped, @fp was mapped by its fill (vm_object_fill_map_page()):
 * only the neighbours.
 * Context: ptl held, RCU read section; @fp stays valid for the section.
 * Return: PAGER_DONE, or PAGER_FALLBACK if @fp itself may not be mapped
 * (locked, not up to date, removed): the caller must look again; or
 * PAGER_NOMAP if the backend failed to map @fp NOMAP_LIMIT times in a row
 * in @r.  A failure may pass (the uffd backend's ENOMEM; the sigsegv
 * backend's ENOMEM at vm.max_map_count coalesces the regions at the next
 * fault, which may make room): before that the fault is answered DONE
 * and the access faults again.  One that does not pass (the process's
 * own mappings fill the table) must not have it fault for ever.
 */
static int map_pages_locked(struct pager_fault *vmf, struct vm_region *r,
			    uint64_t idx, struct vm_page *fp, bool fp_mapped)
{
	struct vm_page *run[VM_FAULT_AROUND_MAX];
	struct vm_pindex_cursor cur;
	uint64_t lo, hi, j, first = 0;
	unsigned int n = 0, extra = 0;
	bool write = vmf->flags & PF_WRITE;	/* then the window starts at @idx */

	if (fp_mapped) {
		/* The window's pages around it, if cached. */
	} else if (bit_test(r->mapped, idx - r->pgoff)) {
		/*
		 * A duplicate message: someone mapped it already; or the
		 * kernel unmapped it.  A write to it, if write-protected,
		 * comes back as a WP fault.
		 */
		remap(vmf, r, idx);
		return PAGER_DONE;
	} else if (!vm_region_map_try_locked(r, fp)) {
		return PAGER_FALLBACK;
	}

	fa_window(vmf, r, idx, &lo, &hi);
	vm_pindex_cursor_init(&cur, &r->object->index);
	for (j = lo; j <= hi; j++) {
		struct vm_page *p = j == idx ? fp : vm_pindex_cursor_get(&cur, j);
		bool ok = j == idx ? !fp_mapped : p && vm_region_map_try_locked(r, p);

		if (ok) {
			if (j != idx && !(vmf->pol->debug & UFVM_DEBUG_CHECK_THEN_RAISE))
				vm_hook(vmf->pol, UFVM_HOOK_AROUND_CHECKED, j, 0);
			if (unlikely(vm_page_test(p, PG_READAHEAD)) &&
			    vm_page_test_clear(p, PG_READAHEAD))
				ra_async(r, j);
			if (!n)
				first = j;
			run[n++] = p;
			extra += j != idx;
			continue;
		}
		if (n) {
			install_timed(vmf, r, run, first, n, write && j > idx);
			n = 0;
		}
		if (j > idx)
			break;	/* the faulting page's run is done */
	}
	if (n)
		install_timed(vmf, r, run, first, n, write);
	if (!fp_mapped && !bit_test(r->mapped, idx - r->pgoff)) {
		/* Its run's install failed (and undid itself). */
		if (r->nomap >= NOMAP_LIMIT)
			return PAGER_NOMAP;
		r->nomap++;
	} else if (unlikely(r->nomap)) {
		r->nomap = 0;
	}
	WRITE_ONCE(r->fa_next, n ? first + n : idx + 1);	/* where the reader faults next */
	ra_hit(r, 1 + extra);	/* like the kernel's mmap_miss, per page mapped */
	if (extra) {
		vm_stat_inc(vmf->stats, UFVM_CTR_FAULTAROUND);
		vm_stat_add(vmf->stats, UFVM_CTR_FAULTAROUND_PAGES, extra);
		if (write)	/* the window lies after @idx: all dirtied */
			vm_stat_add(vmf->stats, UFVM_CTR_WRITEAHEAD_PAGES, extra);
	}
	return PAGER_DONE;
}

static int sigbus(struct pager_fault *vmf, struct vm_region *r, bool eof);

/*
 * Map the cached page @p.  Context: as map_pages_locked, minus the ptl;
 * mmap_lock held shared.  Return: as map_pages_locked, but SIGBUS for its
 * NOMAP.
 */
static int map_cached(struct pager_fault *vmf, struct vm_region *r, uint64_t idx,
		      struct vm_page *p, bool p_mapped)
{
	int ret;

	vm_mutex_lock(&r->ptl);
	if (r->dead) {
		vm_mutex_unlock(&r->ptl);
		return PAGER_DONE;	/* unmapped under us: nothing to map */
	}
	vm_rcu_read_lock();
	ret = map_pages_locked(vmf, r, idx, p, p_mapped);
	vm_rcu_read_unlock();
	if (ret == PAGER_NOMAP)
		r->nomap = 0;	/* answered: the next failure may pass again */
	vm_mutex_unlock(&r->ptl);
	if (ret == PAGER_NOMAP)
		ret = sigbus(vmf, r, false);
	return ret;
}

/*
 * sigbus - answer the fault with SIGBUS (the pmap's ->poison: the address
 * poisoned until a zap, or, where the faulting thread takes it itself, a
 * SIGBUS for this fault alone).
 * @eof: the reason is that the page lies past the end of the file.  That
 * was checked without the invalidate lock, and the file may have grown
 * since: the size is read again under the ptl.  vm_object_truncate()
 * stores a grown size before it zaps the old end in every region (under
 * each ptl), so either this sees the new size and only wakes the thread
 * (it faults again and finds the page), or the zap comes after and clears
 * the poison (a SIGBUS of this fault alone is decided then, and arrives
 * like the kernel's own past the end of a file that grew meanwhile).
 * Context: mmap_lock held shared; takes the ptl.
 * Return: PAGER_SIGBUS, or PAGER_DONE if it only woke the thread: the page
 * is no longer past EOF, is mapped meanwhile, or its region is dead (the
 * access, run again, meets what is there now).
 */
static int sigbus(struct pager_fault *vmf, struct vm_region *r, bool eof)
{
	struct vm_pmap *pm = pmap_of(vmf);
	uint64_t idx = vm_region_pgidx(r, vmf->addr);

	vm_mutex_lock(&r->ptl);
	if (eof && idx < vm_object_npages(r->object)) {
		pm->ops->wake(pm, r, vmf->addr, PAGE_SIZE);
		vm_mutex_unlock(&r->ptl);
		return PAGER_DONE;
	}
	if (r->dead) {
		pm->ops->wake(pm, r, vmf->addr, PAGE_SIZE);
		vm_mutex_unlock(&r->ptl);
		return PAGER_DONE;
	}
	if (bit_test(r->mapped, idx - r->pgoff)) {
		remap(vmf, r, idx);
		vm_mutex_unlock(&r->ptl);
		return PAGER_DONE;
	}
	pm->ops->poison(pm, r, vmf->addr, PAGE_SIZE);
	vm_mutex_unlock(&r->ptl);
	vm_stat_inc(vmf->stats, UFVM_CTR_SIGBUS);
	vmf->path = UFVM_PATH_SIGBUS;
	return PAGER_SIGBUS;
}

/* ---- speculative (seed 002) ---- */

static int fault_spec(struct pager_fault *vmf)
{
	struct vm_aspace *as = vmf->as;
	unsigned int why;
	struct vm_region *r;
	struct vm_page *p;
	uint64_t seq, idx;
	uint32_t f;
	int ret;

	vm_rcu_read_lock();
	seq = vm_aspace_seq_read(as);
	if (seq & 1) {
		why = UFVM_CTR_SPEC_FALLBACK_SEQ;
		goto fallback;
	}
	r = vm_aspace_find_rcu(as, vmf->addr);
	if (!r) {
		why = UFVM_CTR_SPEC_FALLBACK_NOREGION;
		goto fallback;
	}
	idx = vm_region_pgidx(r, vmf->addr);
	if (idx >= vm_object_npages(r->object)) {
		why = UFVM_CTR_SPEC_FALLBACK_SIZE;
		goto fallback;
	}
	p = vm_object_lookup_rcu(r->object, idx);
	if (!p) {
		why = UFVM_CTR_SPEC_FALLBACK_NOPAGE;
		goto fallback;
	}
	f = load_acquire(&p->flags);
	if (f & PG_LOCKED) {
		why = UFVM_CTR_SPEC_FALLBACK_LOCKED;
		goto fallback;
	}
	if (!(f & PG_UPTODATE)) {
		why = UFVM_CTR_SPEC_FALLBACK_NOTUPTODATE;
		goto fallback;
	}
	if ((vmf->flags & PF_WRITE) && !(f & PG_DIRTY) && vm_cache_over_slack(r->object->cache)) {
		why = UFVM_CTR_SPEC_FALLBACK_WRITE;	/* the locked path decides */
		goto fallback;
	}
	vm_hook(vmf->pol, UFVM_HOOK_SPEC_FOUND, vmf->addr, idx);
	vm_mutex_lock(&r->ptl);
	if ((r->dead || vm_aspace_seq_read(as) != seq) &&
	    !(vmf->pol->debug & UFVM_DEBUG_NO_DEAD_CHECK)) {
		vm_mutex_unlock(&r->ptl);
		why = UFVM_CTR_SPEC_FALLBACK_SEQ;
		goto fallback;
	}
	ret = map_pages_locked(vmf, r, idx, p, false);
	vm_mutex_unlock(&r->ptl);
	if (ret == PAGER_FALLBACK || ret == PAGER_NOMAP) {	/* the locked path decides */
		why = (vmf->flags & PF_WRITE) ? UFVM_CTR_SPEC_FALLBACK_WRITE
					      : UFVM_CTR_SPEC_FALLBACK_LOCKED;
		goto fallback;
	}
	vm_rcu_read_unlock();
	vm_stat_inc(vmf->stats, UFVM_CTR_SPEC_HIT);
	vmf->path = UFVM_PATH_SPEC;
	return PAGER_DONE;
fallback:
	vm_rcu_read_unlock();
	vm_stat_inc(vmf->stats, why);
	return PAGER_FALLBACK;
}

/* ---- mkwrite ---- */

/*
 * mkwrite_ahead - a write is about to make page @idx of @r writable: dirty
 * the pages after it too, as far as write_window() allows and as long as
 * they are mapped read-only in @r, cached, up to date and not locked, so
 * that the caller makes them writable with its own page, in one call.  A
 * sequential writer over pages it read first (fault-around mapped them
 * write-protected) then takes one fault a window, not one a page.  No page
 * lock: each is dirtied under the ptl after it was seen unlocked, so a
 * write-back or eviction that locks it later write-protects or unmaps it
 * under this ptl, after the caller's call; one that locked it already
 * stops the window here (docs/locking.md, "Dirty bits").
 * Context: ptl held, the page at @idx locked.
 * Return: the pages dirtied after @idx.
 */
static uint64_t mkwrite_ahead(struct pager_fault *vmf, struct vm_region *r, uint64_t idx)
{
	struct vm_object *obj = r->object;
	uint64_t w = write_window(vmf, r, idx), end, j;
	struct vm_pindex_cursor cur;

	if (w <= 1)
		return 0;
	end = MIN(MIN(idx + w, r->pgoff + r->npages), vm_object_npages(obj));
	vm_rcu_read_lock();
	vm_pindex_cursor_init(&cur, &obj->index);
	for (j = idx + 1; j < end; j++) {
		struct vm_page *q;
		uint32_t f;

		if (!bit_test(r->mapped, j - r->pgoff) || bit_test(r->wmapped, j - r->pgoff))
			break;
		q = vm_pindex_cursor_get(&cur, j);
		if (!q)
			break;
		f = vm_page_flags_sc(q);
		if (vmf->pol->debug & UFVM_DEBUG_WA_PAST_LOCK)
			f &= ~PG_LOCKED;	/* the bug, for tests */
		if (READ_ONCE(q->object) != obj || (f & (PG_LOCKED | PG_UPTODATE)) != PG_UPTODATE)
			break;
		vm_object_set_dirty(obj, q);
	}
	vm_rcu_read_unlock();
	return j - idx - 1;
}

/*
 * Context: mmap_lock held shared on entry; dropped on return.  May sleep
 * on the page lock (with PF_ALLOW_RETRY after dropping mmap_lock: RETRY),
 * and on store writes when write-backs have failed and the cache is full
 * (vm_cache_dirty_retry()).
 *
 * Only a writable region gets its page made writable.  The fault may have
 * waited for mmap_lock behind ufvm_protect(READ) and now find the
 * read-only piece: then it only wakes the thread, whose write faults again
 * and gets SIGSEGV, as it would from the kernel.
 */
static int do_mkwrite(struct pager_fault *vmf, struct vm_region *r)
{
	struct vm_aspace *as = vmf->as;
	struct vm_pmap *pm = pmap_of(vmf);
	struct vm_object *obj = r->object;
	uint64_t idx = vm_region_pgidx(r, vmf->addr), b = idx - r->pgoff;
	struct vm_page *p = vm_object_find_get(obj, idx);
	bool ro, tells = true;	/* a refusal would not be a guess */
	int ret;

	vmf->path = UFVM_PATH_MKWRITE;
	if (!p) {
		/* Dropped meanwhile: the thread refaults on the hole. */
		wake(vmf, r);
		vm_rwsem_read_unlock(&as->mmap_lock);
		return PAGER_DONE;
	}
	if (!vm_page_test(p, PG_DIRTY))
		tells = vm_cache_dirty_retry(obj->cache);	/* may block; see below */
	if (!vm_page_lock_or_retry(p, &as->mmap_lock, vmf->flags & PF_ALLOW_RETRY)) {
		vm_page_put(p);
		return PAGER_RETRY;
	}
	vm_mutex_lock(&r->ptl);
	ro = p->object == obj && !r->dead && r->writable && bit_test(r->mapped, b) &&
	     !bit_test(r->wmapped, b);	/* mapped read-only here: the write is ours */
	if (ro && !vm_page_test(p, PG_DIRTY) && tells && vm_cache_dirty_full(obj->cache)) {
		/*
		 * Write-backs fail and the cache is full: this page could not
		 * be cleaned either.  The write gets SIGBUS, as a dirtying
		 * fill does (unmapped first, so that the address takes it).
		 */
		vm_region_zap_page_locked(r, p);
		vm_mutex_unlock(&r->ptl);
		vm_page_unlock(p);
		vm_page_put(p);
		ret = sigbus(vmf, r, false);
		vm_rwsem_read_unlock(&as->mmap_lock);
		return ret;
	}
	if (ro) {
		uint64_t k, i;

		vm_object_set_dirty(obj, p);
		k = mkwrite_ahead(vmf, r, idx);	/* and the pages after it */
		if (!pm->ops->protect(pm, r, vm_region_addr(r, idx), (k + 1) << PAGE_SHIFT,
				      false)) {	/* wakes */
			for (i = 0; i <= k; i++)
				bit_set(r->wmapped, b + i);
			vm_stat_inc(vmf->stats, UFVM_CTR_MKWRITE);
			vm_stat_add(vmf->stats, UFVM_CTR_WRITEAHEAD_PAGES, k);
		} else {
			/*
			 * Still read-only: the write faults again (the pages
			 * stay dirty).  A call over several pages may have
			 * failed part way (mprotect over mappings it splits):
			 * unmap them all rather than leave one writable that
			 * the writable bits do not show (write-back would
			 * clean it without write-protecting it).
			 */
			if (k)
				vm_region_zap_range_locked(r, idx, idx + k);
			wake(vmf, r);
		}
	} else {
		wake(vmf, r);
	}
	vm_mutex_unlock(&r->ptl);
	vm_page_unlock(p);
	vm_page_put(p);
	vm_rwsem_read_unlock(&as->mmap_lock);
	return PAGER_DONE;
}

/* ---- the locked path ---- */

/*
 * fault_locked - one attempt under mmap_lock.
 * Context: no lock held on entry or on return; takes mmap_lock shared and,
 * with PF_ALLOW_RETRY, may drop it to wait (then returns RETRY).
 */
static int fault_locked(struct pager_fault *vmf)
{
	struct vm_aspace *as = vmf->as;
	bool allow_retry = vmf->flags & PF_ALLOW_RETRY, mark;
	struct vm_page *run[VM_RA_MAX];
	unsigned int n, got, i;
	int room;
	struct vm_object *obj;
	struct vm_region *r;
	struct vm_page *p;
	bool created;
	uint64_t idx, seq = 0;
	int ret, err;

	vm_rwsem_read(&as->mmap_lock);
	r = vm_aspace_find_locked(as, vmf->addr);
	if (!r) {
		/*
		 * Unmapped while the message waited.  The faulting thread
		 * still sleeps in the kernel: wake it, so that it retries the
		 * access and gets SIGSEGV.
		 */
		vm_stat_inc(vmf->stats, UFVM_CTR_NOREGION);
		vm_rwsem_read_unlock(&as->mmap_lock);
		as->pmap->ops->wake(as->pmap, NULL, vmf->addr, PAGE_SIZE);
		return PAGER_DONE;
	}
	if (vmf->flags & PF_WP)
		return do_mkwrite(vmf, r);
	obj = r->object;
	idx = vm_region_pgidx(r, vmf->addr);
again:
	if (idx >= vm_object_npages(obj)) {
		vm_hook(vmf->pol, UFVM_HOOK_PAST_EOF, idx << PAGE_SHIFT, vm_object_size(obj));
		ret = sigbus(vmf, r, true);
		goto out_unlock;
	}
	p = vm_object_find_get(obj, idx);
	if (p) {
		uint32_t f = load_acquire(&p->flags);

		if ((f & (PG_LOCKED | PG_UPTODATE)) == PG_UPTODATE && (vmf->flags & PF_WRITE) &&
		    !(f & PG_DIRTY) && vm_cache_over_slack(obj->cache)) {
			if (vm_cache_dirty_retry(obj->cache) &&	/* may block */
			    vm_cache_dirty_full(obj->cache)) {
				vm_page_put(p);	/* a write would dirty it: no room (do_mkwrite) */
				ret = sigbus(vmf, r, false);
				goto out_unlock;
			}
		}
		if ((f & (PG_LOCKED | PG_UPTODATE)) == PG_UPTODATE) {
			ret = map_cached(vmf, r, idx, p, false);
			vm_page_put(p);
			if (ret == PAGER_FALLBACK)
				goto again;	/* locked or removed meanwhile */
			if (ret == PAGER_SIGBUS)
				goto out_unlock;
			if (vmf->path != UFVM_PATH_MAJOR) {
				vmf->path = UFVM_PATH_MINOR;
				vm_stat_inc(vmf->stats, UFVM_CTR_MINOR);
			}
			goto out_unlock;
		}
		/* Locked (I/O or invalidation in flight) or not up to date. */
		if (!vm_page_lock_or_retry(p, &as->mmap_lock, allow_retry)) {
			vm_page_put(p);
			return PAGER_RETRY;	/* mmap_lock dropped */
		}
		created = p->object == obj && vm_page_test(p, PG_UPTODATE);
		vm_page_unlock(p);
		vm_page_put(p);
		if (created)
			goto again;
		/* Removed, or its read failed: fill it ourselves. */
	}

	/*
	 * Major fault: fill the page, and a readahead window after it if the
	 * faults look sequential, under the invalidate lock.
	 */
	room = vm_cache_make_room(obj->cache, ra_window(r, idx, vmf->pol->fault_around, &mark), 1,
				  vmf->flags & PF_WRITE);
	if (room < 0) {	/* full of pages the store does not take back */
		ret = sigbus(vmf, r, false);
		goto out_unlock;
	}
	n = (unsigned int)room;
	vm_object_fill_begin(obj);
	err = vm_object_grab_run(obj, idx, n, run, &got);
	if (err || !got) {
		vm_object_fill_end(obj);
		vm_cache_unreserve(obj->cache, n);
		if (!err)
			goto again;	/* someone else is filling it */
		ret = sigbus(vmf, r, false);
		goto out_unlock;
	}
	p = run[0];
	if (got > 1 && mark)
		vm_page_set(run[got / 2], PG_READAHEAD);
	vmf->path = UFVM_PATH_MAJOR;
	if (got == 1) {
		/*
		 * The store has the bytes in memory: no I/O to drop mmap_lock
		 * for (seed 003 drops it to wait for I/O), and one call makes
		 * and maps the frame.
		 */
		int c = vm_object_fill_map_page(obj, p, r, vmf->flags & PF_WRITE);

		if (c >= 0) {
			vm_object_fill_end(obj);
			vm_cache_unreserve(obj->cache, n);
			vm_page_unlock(p);
			vm_stat_inc(vmf->stats, UFVM_CTR_MAJOR);
			ret = map_cached(vmf, r, idx, p, c == 1);	/* and the neighbours */
			vm_page_put(p);
			if (ret == PAGER_FALLBACK)
				goto again;	/* removed meanwhile */
			goto out_unlock;
		}
	}
	if (allow_retry) {
		/* Seed 003: do not hold mmap_lock across the store read. */
		seq = vm_aspace_seq_read(as);
		vm_rwsem_read_unlock(&as->mmap_lock);
	}
	if (vmf->will_wait)
		vmf->will_wait(vmf->wait_arg);
	err = vm_object_read_run(obj, run, got);
	if (err < 0 && got > 1) {
		/* Keep the error to the page that faulted: read it alone. */
		for (i = 1; i < got; i++) {
			vm_object_discard_page(obj, run[i]);
			vm_page_unlock(run[i]);
			vm_page_put(run[i]);
		}
		got = 1;
		err = vm_object_read_page(obj, p);
	}
	/*
	 * End the fill while the locked pages, still in the index, pin the
	 * object: with mmap_lock dropped (retry), an unmap may free it once
	 * they are unlocked, or once a failed one is discarded.
	 */
	if (!(vmf->pol->debug & UFVM_DEBUG_FILL_END_LATE)) {
		vm_object_fill_end(obj);
		vm_cache_unreserve(obj->cache, n);
	}
	if (err) {	/* the page that failed (the run was cut to it), or a run to wait */
		for (i = 0; i < got; i++)
			vm_object_discard_page(obj, run[i]);
		if (err < 0)
			vm_hook(vmf->pol, UFVM_HOOK_DISCARDED, idx << PAGE_SHIFT, 0);
	}
	for (i = 0; i < got; i++) {
		vm_page_unlock(run[i]);
		if (i)
			vm_page_put(run[i]);
	}
	vm_hook(vmf->pol, UFVM_HOOK_FILLED, idx << PAGE_SHIFT, got);
	if (vmf->pol->debug & UFVM_DEBUG_FILL_END_LATE) {	/* the bug, for tests */
		vm_object_fill_end(obj);
		vm_cache_unreserve(obj->cache, n);
	}
	if (err == VM_FILL_WAIT) {
		/*
		 * A shrinking truncate is pending and cuts the run: fill it
		 * once the truncate is decided.  With mmap_lock dropped
		 * (retry) the object may go: the next attempt, which keeps
		 * mmap_lock, waits (mmap_lock -> invalidate, as the rwsem
		 * mode's fills do).
		 */
		vm_page_put(p);
		if (allow_retry)
			return PAGER_RETRY;
		vm_object_fill_wait(obj);
		goto again;
	}
	if (!err)
		vm_stat_inc(vmf->stats, UFVM_CTR_MAJOR);
	if (allow_retry) {
		vm_page_put(p);
		if (!err)
			return PAGER_RETRY;
		/*
		 * Deliver the error, if the address still maps what failed:
		 * with the regions changed meanwhile (->seq moved), the region
		 * there now may be another file's, which a poison would fail
		 * until it is zapped.  Then the fault runs again, on what is
		 * there now.
		 */
		vm_rwsem_read(&as->mmap_lock);
		if (vm_aspace_seq_read(as) != seq &&
		    !(vmf->pol->debug & UFVM_DEBUG_POISON_STALE)) {	/* else: the bug, for tests */
			if (vmf->pol->debug & UFVM_DEBUG_FAILED_READ_WAKE) {
				/* The bug, for tests: it goes round while maps change. */
				as->pmap->ops->wake(as->pmap, NULL, vmf->addr, PAGE_SIZE);
				ret = PAGER_DONE;
				goto out_unlock;
			}
			/*
			 * Again, holding mmap_lock across the read this time
			 * (no PF_ALLOW_RETRY): its answer is final, so a
			 * failing read cannot go round while maps change.
			 */
			vm_rwsem_read_unlock(&as->mmap_lock);
			return PAGER_RETRY;
		}
		r = vm_aspace_find_locked(as, vmf->addr);
		if (!r)
			as->pmap->ops->wake(as->pmap, NULL, vmf->addr, PAGE_SIZE);
		ret = r ? sigbus(vmf, r, false) : PAGER_DONE;
		goto out_unlock;
	}
	if (err) {
		vm_page_put(p);
		ret = sigbus(vmf, r, false);
		goto out_unlock;
	}
	ret = map_cached(vmf, r, idx, p, false);
	vm_page_put(p);
	if (ret == PAGER_FALLBACK)
		goto again;
out_unlock:
	vm_rwsem_read_unlock(&as->mmap_lock);
	return ret;
}

int pager_fault(struct pager_fault *vmf)
{
	uint64_t t0 = vm_now_ns();
	bool retried = false;
	int ret;

	VM_ASSERT_NO_LOCKS();
	UFVM_TRACE2(fault_entry, vmf->addr, vmf->flags);
	vm_stat_busy(vmf->stats);
	vmf->path = UFVM_PATH__COUNT;	/* none yet: a fault that serves nothing keeps it */
	vmf->install_ns = 0;
	vm_stat_inc(vmf->stats, UFVM_CTR_FAULTS);
	if (vmf->pol->retry)
		vmf->flags |= PF_ALLOW_RETRY;
	if (vmf->pol->speculative && !(vmf->flags & PF_WP)) {
		ret = fault_spec(vmf);
		if (ret != PAGER_FALLBACK)
			goto done;
	}
	for (;;) {
		ret = fault_locked(vmf);
		if (ret != PAGER_RETRY)
			break;
		retried = true;
		UFVM_TRACE1(fault_retry, vmf->addr);
		vm_stat_inc(vmf->stats, UFVM_CTR_RETRY);
		vmf->flags = (vmf->flags & ~PF_ALLOW_RETRY) | PF_TRIED;
	}
	if (retried && vmf->path != UFVM_PATH_SIGBUS && vmf->path != UFVM_PATH_MAJOR)
		vmf->path = UFVM_PATH_RETRY;
done:
	VM_ASSERT_NO_LOCKS();
	t0 = vm_now_ns() - t0;
	UFVM_TRACE4(fault_exit, vmf->addr, vmf->path, t0, ret);
	if (vmf->path < UFVM_PATH__COUNT)
		vm_stat_lat(vmf->stats, vmf->path, t0);
	if ((vmf->path == UFVM_PATH_SPEC || vmf->path == UFVM_PATH_MINOR) && vmf->install_ns)
		vm_stat_lat(vmf->stats, VM_HIST_OWN, t0 - MIN(t0, vmf->install_ns));
	vm_stat_busy(vmf->stats);
	return ret;
}

int pager_cancel_off(const struct vm_policy *pol)
{
	int cs;

	if (pol->debug & UFVM_DEBUG_CANCEL_INSIDE)
		return -1;	/* the bug, for tests */
	pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &cs);
	return cs;
}

void pager_cancel_restore(int cs)
{
	if (cs >= 0)
		pthread_setcancelstate(cs, NULL);
}
