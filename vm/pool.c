// SPDX-License-Identifier: MIT
/* vm/pool.c - signal-safe object pools (see vm/pool.h). */
#include <string.h>
#include <sys/mman.h>

#include "vm/pool.h"
#include "vm/rcu.h"

/*
 * Under AddressSanitizer a free object is poisoned, so that a use after
 * its free (a pointer kept past the RCU section that protected it) is
 * reported where it happens, as for malloc'd memory.  The stack's own link
 * in a free object is read and written without the check: a pop may read
 * the link of an object another pop has just taken (the CAS then fails).
 */
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define POOL_NO_ASAN	__attribute__((no_sanitize_address))
#define pool_poison(p, n)	ASAN_POISON_MEMORY_REGION(p, n)
#define pool_unpoison(p, n)	ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define POOL_NO_ASAN
#define pool_poison(p, n)	((void)(p), (void)(n))
#define pool_unpoison(p, n)	((void)(p), (void)(n))
#endif

static POOL_NO_ASAN void set_link(void *obj, void *next)
{
	*(void *volatile *)obj = next;
}

static POOL_NO_ASAN void *get_link(void *obj)
{
	return *(void *volatile *)obj;
}

/* Context: @obj is poisoned already; nobody else can reach it. */
static void push(struct vm_pool *pool, void *obj)
{
	void *old = __atomic_load_n(&pool->head, __ATOMIC_RELAXED);

	do {
		set_link(obj, old);
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
	for (i = 1; i < n; i++) {
		pool_poison(slab + i * pool->objsize, pool->objsize);
		push(pool, slab + i * pool->objsize);
	}
	return slab;
}

void *vm_pool_alloc_rcu(struct vm_pool *pool)
{
	void *obj = __atomic_load_n(&pool->head, __ATOMIC_ACQUIRE), *next;

	VM_ASSERT_RCU();
	while (obj) {
		next = get_link(obj);
		if (__atomic_compare_exchange_n(&pool->head, &obj, next, true,
						__ATOMIC_ACQUIRE, __ATOMIC_ACQUIRE))
			break;
	}
	if (!obj) {
		obj = grow(pool);
		if (!obj)
			return NULL;
	}
	pool_unpoison(obj, pool->objsize);
	memset(obj, 0, pool->objsize);
	__atomic_fetch_add(&pool->inuse, 1, __ATOMIC_RELAXED);
	return obj;
}

void vm_pool_free(struct vm_pool *pool, void *obj)
{
	__atomic_fetch_sub(&pool->inuse, 1, __ATOMIC_RELAXED);
	pool_poison(obj, pool->objsize);	/* before another pop can take it */
	push(pool, obj);
}
