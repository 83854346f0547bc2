// SPDX-License-Identifier: MIT
/* vm/pool.c - signal-safe object pools (see vm/pool.h). */
#include <string.h>
#include <sys/mman.h>

#include "vm/pool.h"
#include "vm/rcu.h"

static void push(struct vm_pool *pool, void *obj)
{
	void *old = __atomic_load_n(&pool->head, __ATOMIC_RELAXED);

	do {
		*(void **)obj = old;
	} while (!__atomic_compare_exchange_n(&pool->head, &old, obj, true,
					      __ATOMIC_RELEASE, __ATOMIC_RELAXED));
}

/* Map a new slab and push all but one of its objects; return that one. */
static void *grow(struct vm_pool *pool)
{
	size_t len = ROUND_UP(pool->objsize * pool->perslab, PAGE_SIZE);
	size_t n = len / pool->objsize, i;
	char *slab = mmap(NULL, len, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (slab == MAP_FAILED)
		return NULL;
	__atomic_fetch_add(&pool->nslabs, 1, __ATOMIC_RELAXED);
	for (i = 1; i < n; i++)
		push(pool, slab + i * pool->objsize);
	return slab;
}

void *vm_pool_alloc_rcu(struct vm_pool *pool)
{
	void *obj = __atomic_load_n(&pool->head, __ATOMIC_ACQUIRE), *next;

	VM_ASSERT_RCU();
	while (obj) {
		next = *(void *volatile *)obj;
		if (__atomic_compare_exchange_n(&pool->head, &obj, next, true,
						__ATOMIC_ACQUIRE, __ATOMIC_ACQUIRE))
			break;
	}
	if (!obj) {
		obj = grow(pool);
		if (!obj)
			return NULL;
	}
	memset(obj, 0, pool->objsize);
	__atomic_fetch_add(&pool->inuse, 1, __ATOMIC_RELAXED);
	return obj;
}

void vm_pool_free(struct vm_pool *pool, void *obj)
{
	__atomic_fetch_sub(&pool->inuse, 1, __ATOMIC_RELAXED);
	push(pool, obj);
}
