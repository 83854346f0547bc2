/* SPDX-License-Identifier: MIT */
/*
 * vm/region.h - a mapped range of an object (Linux: vm_area_struct).
 *
 * Locking key: (c) constant after attach, (p) the region's ptl, (r) the
 * object's rmap lock, (m) the aspace's mmap_lock held for writing.
 *
 * The ptl serialises every change of what the region maps: installs,
 * zaps, write-protect changes, and the shadow bitmaps below.  A bit in
 * ->mapped means: this region maps that page and holds one of its
 * mapcounts, so the page is in the object's index (removal zaps first).
 * Regions are freed after an RCU grace period; ->dead (p) tells a
 * lock-free fault that found one through RCU that it is going away.
 */
#ifndef UFVM_VM_REGION_H
#define UFVM_VM_REGION_H

#include <urcu/list.h>

#include "vm/lock.h"
#include "vm/rcu.h"

struct vm_object;
struct vm_aspace;
struct vm_page;

struct vm_region {
	uintptr_t start;		/* (c) */
	uintptr_t end;			/* (c) */
	uint64_t pgoff;			/* (c) file page offset of start */
	uint64_t npages;		/* (c) */
	struct vm_object *object;	/* (c) */
	struct vm_aspace *as;		/* (c) */
	bool writable;			/* (c) */
	bool maywrite;			/* (c) may be made writable (ufvm_protect) */
	bool dead;			/* (p) unmapped: install nothing */
	struct vm_mutex ptl;
	uint64_t *mapped;		/* (p) bitmap: page mapped here */
	uint64_t *wmapped;		/* (p) bitmap: mapped writable */
	uint64_t pmap_seq;		/* (p) bumped by a backend at each change it
					   makes to the real mapping (sigsegv) */
	uint32_t nomap;			/* (p) faults in a row whose page the
					   backend failed to map (pager/fault.c) */
	struct cds_list_head rmap;	/* (r) in object->regions */
	uint64_t ra_prev;		/* (a) page of the last major fault */
	uint64_t ra_next;		/* (a) first page past the readahead window */
	uint32_t ra_size;		/* (a) size of the last window */
	uint32_t ra_miss;		/* (a) major faults minus cache hits */
	uint64_t fa_next;		/* (a) page after the last fault-around run */
	uint32_t fa_win;		/* (a) its window (grows with map-ahead) */
	struct rcu_head rcu;
};

static inline bool bit_test(const uint64_t *map, uint64_t i)
{
	return map[i / 64] & (1ull << (i % 64));
}

static inline void bit_set(uint64_t *map, uint64_t i)
{
	map[i / 64] |= 1ull << (i % 64);
}

static inline void bit_clear(uint64_t *map, uint64_t i)
{
	map[i / 64] &= ~(1ull << (i % 64));
}

static inline uintptr_t vm_region_addr(const struct vm_region *r, uint64_t pgidx)
{
	return r->start + ((pgidx - r->pgoff) << PAGE_SHIFT);
}

static inline uint64_t vm_region_pgidx(const struct vm_region *r, uintptr_t addr)
{
	return r->pgoff + ((addr - r->start) >> PAGE_SHIFT);
}

static inline bool vm_region_covers_idx(const struct vm_region *r, uint64_t idx)
{
	return idx >= r->pgoff && idx < r->pgoff + r->npages;
}

/* Return: 0 and *out (not yet attached), or -ENOMEM. */
int vm_region_create(struct vm_object *obj, uint64_t pgoff, uint64_t npages,
		     bool writable, struct vm_region **out);
/* Free after a grace period.  Context: detached, unmapped, off the rmap. */
void vm_region_free_rcu(struct vm_region *r);

/*
 * vm_region_replace - put the regions @by[0..n) in @r's place: pieces of
 * @r made by vm_region_create() (same object; start/end/as set; in order,
 * together exactly @r's range; not attached anywhere) whose
 * writability may differ from @r's.  Where it does, the real mapping is
 * changed first (see vm_region_reprotect_locked); then what @r maps moves
 * to the pieces with its mapcounts, the pieces go on the object's rmap and
 * into the address space's array, and @r, marked dead, leaves both and is
 * freed after a grace period.  Mapped pages stay mapped throughout (but
 * those that become writable).  The pieces take over @r's object
 * reference; the caller adds the n - 1 more they hold.
 * Context: mmap_lock held for writing; takes the rmap lock and @r's ptl;
 * may sleep briefly.  Return: 0, or -errno with nothing changed but, on a
 * change to writable, pages of that part unmapped.
 */
int vm_region_replace(struct vm_region *r, struct vm_region **by, size_t n);

/*
 * vm_region_reprotect_locked - make @r's real mapping of [@first, @last]
 * (file page offsets) writable (@writable) or read-only, for a piece that
 * will say so.  Going writable, every page mapped there is zapped first,
 * so that each comes back through a fault and the first write to it
 * through mkwrite; going read-only, pages mapped writable stay dirty and
 * stop being writable.  Context: mmap_lock held for writing, @r's ptl;
 * may sleep briefly.  Return: 0 or -errno.
 */
int vm_region_reprotect_locked(struct vm_region *r, uint64_t first, uint64_t last,
			       bool writable);

/*
 * vm_region_fill_locked - create the frame of the locked, not up-to-date
 * page @p from the page of bytes @src and map it, mapcount first, when the
 * backend can do both in one call (->fill).  @write: the fault was a
 * write: @p is dirtied and mapped writable.
 * Context: @p locked by the caller, ptl held; may sleep briefly (ioctl).
 * Return: 0 (mapped), -EOPNOTSUPP (no ->fill), -EEXIST (the region is
 * dying), -ERANGE (@p is past the size: a shrinking truncate cut it off),
 * or the backend's -errno; on failure nothing is mapped and @p has no
 * frame made by this call (it may be left dirty: the caller cleans it).
 */
int vm_region_fill_locked(struct vm_region *r, struct vm_page *p, const void *src, bool write);

/*
 * vm_region_install_locked - map a run of cached pages, mapcount first.
 * @pages: the pages at file offsets @first .. @first+@n-1, each already
 * mapcount-raised and checked by the caller (vm_region_map_try_locked);
 * @write: the fault was a write: the pages are dirty, map them writable.
 * Context: ptl held; may sleep briefly (ioctl), and wait for an installer
 * thread's chunks of a large install (pager/uffd.c, split installs).
 * Return: 0 or -errno.
 */
int vm_region_install_locked(struct vm_region *r, struct vm_page **pages,
			     uint64_t first, unsigned int n, bool write);

/*
 * vm_region_map_try_locked - raise @p's mapcount, full barrier, then check
 * that it may be mapped here (in the object, up to date, unlocked, inside
 * the size, not yet mapped in @r).  Undo and return false otherwise.
 * Context: ptl held, RCU read section (or a reference on @p).
 */
bool vm_region_map_try_locked(struct vm_region *r, struct vm_page *p);

/*
 * vm_region_zap_page_locked - unmap one page from @r if mapped here.
 * Context: ptl held; page locked by the caller.  Return: true if it was.
 */
bool vm_region_zap_page_locked(struct vm_region *r, struct vm_page *p);

/*
 * vm_region_zap_pages - unmap those of the locked pages pages[0..n) (one
 * object, increasing offsets) that @r maps, dropping their mapcounts: one
 * ptl hold and one vectored pmap call (->zapv) for all of them, so that a
 * reclaim batch costs one system call and one ptl hold per region, not
 * one each per page.
 * Context: the pages locked by the caller; takes the ptl; may sleep
 * briefly (the zap system call).  Return: the number of pages unmapped.
 */
unsigned int vm_region_zap_pages(struct vm_region *r, struct vm_page **pages, unsigned int n);
/*
 * vm_region_zap_range - unmap [first, last] (file page offsets) from @r,
 * dropping the mapcounts, even if the backend fails: for invalidations,
 * whose punch of the frames then unmaps them in the kernel.  Context: takes
 * the ptl; RCU inside.
 */
void vm_region_zap_range(struct vm_region *r, uint64_t first, uint64_t last);
/* The same with the ptl held by the caller. */
void vm_region_zap_range_locked(struct vm_region *r, uint64_t first, uint64_t last);
/*
 * vm_region_unmap_range - as vm_region_zap_range(), for a caller whose
 * pages stay in the cache (ufvm_zap): if the backend fails, what it may
 * have left mapped stays accounted as mapped.  Return: 0 or -errno.
 */
int vm_region_unmap_range(struct vm_region *r, uint64_t first, uint64_t last);

/*
 * vm_region_wrprotect_page_locked - write-protect @p in @r if it is mapped
 * writable here (unmap it if that fails).  Context: ptl held, page locked.
 * Return: false if it stays mapped writable (both failed: the caller must
 * not take the page for clean).
 */
bool vm_region_wrprotect_page_locked(struct vm_region *r, struct vm_page *p);
/*
 * vm_region_wrprotect_run_locked - vm_region_wrprotect_page_locked() for
 * each of the locked pages run[0..n) (n <= 64, increasing offsets), with
 * one protect call for each run of them mapped writable here at offsets in
 * a row.  Context: ptl held.  Return: a bit per page still writable.
 */
uint64_t vm_region_wrprotect_run_locked(struct vm_region *r, struct vm_page **run, unsigned int n);

/*
 * vm_region_kill - mark @r dead and drop the mapcount of every page it
 * maps.  Context: mmap_lock held for writing; takes the ptl.
 */
void vm_region_kill(struct vm_region *r);

#endif /* UFVM_VM_REGION_H */
