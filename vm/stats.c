// SPDX-License-Identifier: MIT
/* vm/stats.c - statistics shards (see vm/stats.h). */
#include <sched.h>
#include <string.h>

#include "vm/stats.h"

int vm_stats_set_init(struct vm_stats_set *set)
{
	memset(set, 0, sizeof(*set));
	set->common.shared = true;
	return vm_mutex_init(&set->lock, VM_LC_LEAF);
}

void vm_stats_set_destroy(struct vm_stats_set *set)
{
	struct vm_stats_shard *s, *n;

	for (s = set->head; s; s = n) {
		n = s->next;
		free(s);
	}
	vm_mutex_destroy(&set->lock);
}

struct vm_stats_shard *vm_stats_shard_new(struct vm_stats_set *set)
{
	struct vm_stats_shard *s;

	if (posix_memalign((void **)&s, CACHELINE, sizeof(*s)))
		return NULL;
	memset(s, 0, sizeof(*s));
	vm_mutex_lock(&set->lock);
	s->next = set->head;
	set->head = s;
	vm_mutex_unlock(&set->lock);
	return s;
}

static void add_shard(const struct vm_stats_shard *s, uint64_t *ctr,
		      struct vm_hist *hist)
{
	unsigned int i;

	for (i = 0; i < UFVM_CTR__COUNT; i++)
		ctr[i] += __atomic_load_n(&s->ctr[i], __ATOMIC_RELAXED);
	for (i = 0; i < UFVM_PATH__COUNT; i++)
		vm_hist_merge(&hist[i], &s->hist[i]);
}

void vm_stats_sum(struct vm_stats_set *set, uint64_t *ctr, struct vm_hist *hist)
{
	struct vm_stats_shard *s;

	uint64_t until = vm_now_ns() + 100 * 1000000ull;

	add_shard(&set->common, ctr, hist);
	vm_mutex_lock(&set->lock);
	for (s = set->head; s; s = s->next) {
		uint64_t b = __atomic_load_n(&s->busy, __ATOMIC_ACQUIRE);

		while ((b & 1) && __atomic_load_n(&s->busy, __ATOMIC_ACQUIRE) == b &&
		       vm_now_ns() < until)
			sched_yield();
		add_shard(s, ctr, hist);
	}
	vm_mutex_unlock(&set->lock);
}
