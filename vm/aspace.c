// SPDX-License-Identifier: MIT
/*
 * vm/aspace.c - the region array of an address space.
 *
 * Writers (mmap_lock held for writing) build a new sorted array, bump
 * ->seq to odd, publish the array with rcu_assign_pointer, bump ->seq to
 * even, and free the old array after a grace period.  Readers binary-search
 * whichever array they loaded.
 */
#include <string.h>

#include "vm/aspace.h"
#include "vm/region.h"

int vm_aspace_init(struct vm_aspace *as, struct vm_pmap *pmap)
{
	memset(as, 0, sizeof(*as));
	as->pmap = pmap;
	as->regions = calloc(1, sizeof(*as->regions));
	if (!as->regions)
		return -ENOMEM;
	return vm_rwsem_init(&as->mmap_lock, VM_LC_MMAP);
}

void vm_aspace_destroy(struct vm_aspace *as)
{
	free(as->regions);
	as->regions = NULL;
	vm_rwsem_destroy(&as->mmap_lock);
}

static struct vm_region *array_find(struct vm_region_array *a, uintptr_t addr)
{
	size_t lo = 0, hi = a->n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		struct vm_region *r = a->r[mid];

		if (addr < r->start)
			hi = mid;
		else if (addr >= r->end)
			lo = mid + 1;
		else
			return r;
	}
	return NULL;
}

struct vm_region *vm_aspace_find_rcu(struct vm_aspace *as, uintptr_t addr)
{
	VM_ASSERT_RCU();
	return array_find(vm_rcu_dereference(as->regions), addr);
}

struct vm_region *vm_aspace_find_locked(struct vm_aspace *as, uintptr_t addr)
{
	VM_ASSERT_HELD(&as->mmap_lock);
	return array_find(as->regions, addr);
}

static void array_free_cb(struct rcu_head *h)
{
	free(container_of(h, struct vm_region_array, rcu));
}

static void publish(struct vm_aspace *as, struct vm_region_array *na)
{
	struct vm_region_array *old = as->regions;

	__atomic_fetch_add(&as->seq, 1, __ATOMIC_SEQ_CST);
	rcu_assign_pointer(as->regions, na);
	__atomic_fetch_add(&as->seq, 1, __ATOMIC_SEQ_CST);
	call_rcu(&old->rcu, array_free_cb);
}

int vm_aspace_insert_locked(struct vm_aspace *as, struct vm_region *r)
{
	struct vm_region_array *a = as->regions, *na;
	size_t i, j = 0;

	VM_ASSERT_HELD_EXCL(&as->mmap_lock);
	na = malloc(sizeof(*na) + (a->n + 1) * sizeof(na->r[0]));
	if (!na)
		return -ENOMEM;
	for (i = 0; i < a->n && a->r[i]->start < r->start; i++)
		na->r[j++] = a->r[i];
	na->r[j++] = r;
	for (; i < a->n; i++)
		na->r[j++] = a->r[i];
	na->n = j;
	publish(as, na);
	return 0;
}

struct vm_region_array *vm_aspace_build_locked(struct vm_aspace *as, struct vm_region *r,
					       struct vm_region *const *by, size_t n)
{
	struct vm_region_array *a = as->regions, *na;
	size_t i, j = 0, k;

	VM_ASSERT_HELD_EXCL(&as->mmap_lock);
	na = malloc(sizeof(*na) + (a->n + n) * sizeof(na->r[0]));
	if (!na)
		return NULL;
	for (i = 0; i < a->n; i++) {
		if (a->r[i] != r) {
			na->r[j++] = a->r[i];
			continue;
		}
		for (k = 0; k < n; k++) {
			VM_BUG_ON(by[k]->start < r->start || by[k]->end > r->end ||
				  (k && by[k]->start < by[k - 1]->end));
			na->r[j++] = by[k];
		}
	}
	VM_BUG_ON(j != a->n + n - 1);
	na->n = j;
	return na;
}

void vm_aspace_publish_locked(struct vm_aspace *as, struct vm_region_array *na)
{
	VM_ASSERT_HELD_EXCL(&as->mmap_lock);
	publish(as, na);
}

int vm_aspace_remove_locked(struct vm_aspace *as, struct vm_region *r)
{
	struct vm_region_array *na = vm_aspace_build_locked(as, r, NULL, 0);

	if (!na)
		return -ENOMEM;
	publish(as, na);
	return 0;
}
