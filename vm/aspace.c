// SPDX-License-Identifier: MIT
/*
 * vm/aspace.c - the region array of an address space.
 *
 * Writers (mmap_lock held for writing) build a new sorted array, bump
 * ->seq to odd, publish the array with rcu_assign_pointer, bump ->seq to
 * even, and free the old array after a grace period.  Readers binary-search
 * whichever array they loaded.
 */
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>

#include "vm/aspace.h"
#include "vm/object.h"
#include "vm/region.h"

static struct vm_aspace *all_aspaces;		/* (fork_lock) */
static pthread_mutex_t fork_lock = PTHREAD_MUTEX_INITIALIZER;

int vm_aspace_init(struct vm_aspace *as, struct vm_pmap *pmap)
{
	memset(as, 0, sizeof(*as));
	as->pmap = pmap;
	int err;

	as->regions = calloc(1, sizeof(*as->regions));
	if (!as->regions)
		return -ENOMEM;
	err = vm_rwsem_init(&as->mmap_lock, VM_LC_MMAP);
	if (err)
		return err;
	pthread_mutex_lock(&fork_lock);
	as->fork_next = all_aspaces;
	if (all_aspaces)
		all_aspaces->fork_prev = as;
	all_aspaces = as;
	pthread_mutex_unlock(&fork_lock);
	return 0;
}

void vm_aspace_destroy(struct vm_aspace *as)
{
	pthread_mutex_lock(&fork_lock);
	if (as->fork_prev)
		as->fork_prev->fork_next = as->fork_next;
	else if (all_aspaces == as)
		all_aspaces = as->fork_next;
	if (as->fork_next)
		as->fork_next->fork_prev = as->fork_prev;
	as->fork_next = as->fork_prev = NULL;
	pthread_mutex_unlock(&fork_lock);
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
	vm_call_rcu(&old->rcu, array_free_cb);
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

void vm_aspace_fork_prepare(void)
{
	pthread_mutex_lock(&fork_lock);
}

void vm_aspace_fork_parent(void)
{
	pthread_mutex_unlock(&fork_lock);
}

void vm_aspace_fork_child(void)
{
	struct vm_aspace *as;
	size_t i;

	/*
	 * One thread here: the arrays are the parent's as of the fork.  A
	 * region enters its array after its range is mapped and leaves it
	 * before the range is unmapped, so whatever the child holds in a
	 * range of the array is ufvm's: a sigsegv install a fork() caught
	 * between its mmap() and its MADV_DONTFORK, which would share the
	 * parent's frames.  MAP_FIXED replaces it.
	 */
	for (as = all_aspaces; as; as = as->fork_next) {
		struct vm_region_array *a = as->regions;

		for (i = 0; a && i < a->n; i++) {
			struct vm_region *r = a->r[i];
			bool bug = r->object->pol->debug & UFVM_DEBUG_FORK_NOREPLACE;	/* tests */
			size_t len = r->end - r->start;
			void *p = mmap((void *)r->start, len, PROT_NONE,
				       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE |
				       (bug ? MAP_FIXED_NOREPLACE : MAP_FIXED), -1, 0);

			if (bug && p != MAP_FAILED && p != (void *)r->start)
				munmap(p, len);	/* a kernel without NOREPLACE */
		}
	}
	pthread_mutex_unlock(&fork_lock);
}
