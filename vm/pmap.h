/* SPDX-License-Identifier: MIT */
/*
 * vm/pmap.h - the one interface through which vm/ touches real mappings.
 *
 * vm/ never issues UFFDIO_* ioctls, mmap or mprotect on application
 * memory itself: a delivery backend (pager/) implements these ops.
 * Addresses are page aligned, lengths whole pages; every op may sleep
 * briefly (a system call) and is called with the region's ptl held unless
 * said otherwise.
 */
#ifndef UFVM_VM_PMAP_H
#define UFVM_VM_PMAP_H

#include "vm/compat.h"

struct vm_region;
struct vm_pmap;

/* One page-aligned range of a region, for the vectored ops. */
struct vm_pmap_range {
	uintptr_t addr;
	size_t len;
};

struct vm_pmap_ops {
	/*
	 * Map the frames behind [addr, addr+len) of @r (they exist in the
	 * object's memfd), write-protected if @wp, and wake threads faulting
	 * there.  Pages already mapped are skipped (and counted).
	 * Return: 0 or -errno.
	 */
	int (*install)(struct vm_pmap *pm, struct vm_region *r, uintptr_t addr,
		       size_t len, bool wp);
	/* Unmap [addr, addr+len) of @r; the frames stay. */
	int (*zap)(struct vm_pmap *pm, struct vm_region *r, uintptr_t addr, size_t len);
	/* Write-protect (@wp) or make writable and wake (!@wp) mapped pages. */
	int (*protect)(struct vm_pmap *pm, struct vm_region *r, uintptr_t addr,
		       size_t len, bool wp);
	/*
	 * Change the protection of [addr, addr+len) of @r, mapped pages and
	 * holes alike, to read-write (@writable) or read-only; a later fault
	 * there maps by the region that then covers it.  Pages mapped there
	 * (r->mapped) stay mapped, and none is mapped writable after a change
	 * to writable.  Context: mmap_lock held for writing and the ptl.
	 */
	int (*set_prot)(struct vm_pmap *pm, struct vm_region *r, uintptr_t addr,
			size_t len, bool writable);
	/* Wake threads faulting in [addr, addr+len) without mapping anything;
	 * @r may be NULL (the region is gone).  Context: any lock or none. */
	int (*wake)(struct vm_pmap *pm, struct vm_region *r, uintptr_t addr, size_t len);
	/*
	 * The page at @addr is counted mapped in @r, yet a thread faulted on
	 * it: a duplicate fault (another thread's fault mapped it meanwhile),
	 * or the kernel unmapped it behind ufvm's back.  Reclaim does that to
	 * a shmem page it picks (kswapd, DAMON's pageout, MADV_PAGEOUT from
	 * any process): try_to_unmap() runs before the write-out that, with
	 * no swap, fails and keeps the page.  Map it again if it is not
	 * mapped (write-protected if @wp), and wake the thread.  Optional:
	 * NULL means ->wake, for a backend whose mappings the kernel's own
	 * faults fill again.  Context: ptl held.
	 */
	int (*remap)(struct vm_pmap *pm, struct vm_region *r, uintptr_t addr, bool wp);
	/*
	 * Answer the fault at @addr with SIGBUS; wakes the faulter.  Poisons
	 * [addr, addr+len) (every access raises SIGBUS until a zap), or, where
	 * the faulting thread takes this fault's signal itself (the sigsegv
	 * backend, in-thread delivery), changes nothing: the next access
	 * faults again.
	 */
	int (*poison)(struct vm_pmap *pm, struct vm_region *r, uintptr_t addr, size_t len);
	/* Create the mapping for @r at @hint if not 0 (MAP_FIXED), else
	 * anywhere; sets r->start/end; not inherited across fork.
	 * Context: mmap_lock held for writing; no ptl. */
	int (*attach)(struct vm_pmap *pm, struct vm_region *r, uintptr_t hint);
	/*
	 * Remove the mapping for @r: unmap its range, or with @reserve put
	 * an inaccessible anonymous mapping (PROT_NONE) there in one step,
	 * so that no other mmap can take the range.
	 * Context: mmap_lock held for writing.
	 */
	void (*detach)(struct vm_pmap *pm, struct vm_region *r, bool reserve);
	/*
	 * Unmap the @n ranges @v of @r (increasing, not overlapping) at once:
	 * one system call for all of them instead of one each.  (The TLB
	 * flush is still one per range for pages installed by
	 * UFFDIO_CONTINUE, whose PTEs are dirty: docs/architecture.md,
	 * "Reclaim".)  The frames stay.  Optional: NULL means one ->zap per
	 * range.
	 */
	int (*zapv)(struct vm_pmap *pm, struct vm_region *r, const struct vm_pmap_range *v,
		    unsigned int n);
	/*
	 * Optional: create the frame of the page at @addr of @r (it has
	 * none: no page in the object's memfd there) from the page of bytes
	 * at @src, and map it, write-protected if @wp, waking threads
	 * faulting there: one call for what a write into the memfd and
	 * ->install do in two (UFFDIO_COPY).  Return: 0, -EEXIST (the memfd
	 * has a page there, or the address is mapped), or -errno; on failure
	 * nothing was mapped.
	 */
	int (*fill)(struct vm_pmap *pm, struct vm_region *r, uintptr_t addr, const void *src,
		    bool wp);
};

struct vm_pmap {
	const struct vm_pmap_ops *ops;
};

#endif /* UFVM_VM_PMAP_H */
