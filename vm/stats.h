/* SPDX-License-Identifier: MIT */
/*
 * vm/stats.h - per-thread statistics shards.
 *
 * Each thread that serves faults or calls ufvm gets a shard of its own on
 * its own cache lines and is its only writer, so the fast path writes no
 * shared cache line; readers sum the shards with relaxed loads.  Shards are
 * mmap'd and pushed on a lock-free list, so a thread can get one inside a
 * signal handler (the in-thread backends).  A thread's shard is released at
 * its exit and reused by a later thread of the same instance, its counts
 * kept; the shards of a closed instance are reset and reused by any.
 * Shard memory is never unmapped, so a stale per-thread cache entry is
 * recognised (by the instance id) instead of being dereferenced after free.
 */
#ifndef UFVM_VM_STATS_H
#define UFVM_VM_STATS_H

#include <ufvm.h>

#include "vm/hist.h"
#include "vm/lock.h"

/*
 * The histograms of a shard: one per fault path, then ufvm's own time of
 * the faults served from the cache (struct ufvm_stats.own).
 */
#define VM_HIST_OWN	UFVM_PATH__COUNT
#define VM_HIST__COUNT	(UFVM_PATH__COUNT + 1)

struct vm_stats_shard {
	uint64_t ctr[UFVM_CTR__COUNT];
	struct vm_hist hist[VM_HIST__COUNT];
	uint64_t busy;			/* (a) odd while a fault is served */
	uint64_t set_id;		/* (a) instance it counts for; 0 = none */
	int owned;			/* (a) a live thread writes it */
	bool shared;			/* (c) several writers: atomic adds */
	struct vm_stats_shard *next;	/* (c once pushed) all shards */
} __cacheline_aligned;

struct vm_stats_set {
	uint64_t id;			/* (c) unique, never 0 */
	struct vm_stats_shard common;	/* fallback: shared, atomic adds */
};

int vm_stats_set_init(struct vm_stats_set *set);
void vm_stats_set_destroy(struct vm_stats_set *set);

/*
 * vm_stats_shard_get - the calling thread's shard for @set, made or
 * reclaimed on first use.  Context: signal safe; never sleeps.
 * Return: the shard; the instance's shared one (atomic adds) if there is
 * no memory, the thread already has shards of TLS_SHARDS (4) others, or
 * its exit could not be told without an allocation (vm/stats.c, make_key()).
 */
struct vm_stats_shard *vm_stats_shard_get(struct vm_stats_set *set);

/*
 * Sum every shard into @ctr and @hist (UFVM_CTR__COUNT and VM_HIST__COUNT).  Waits
 * (up to 100 ms) for the faults being served to finish, so that a fault
 * whose thread has already resumed is in the sum.  Context: may sleep.
 */
void vm_stats_sum(struct vm_stats_set *set, uint64_t *ctr, struct vm_hist *hist);

static inline void vm_stat_add(struct vm_stats_shard *s, unsigned int c, uint64_t n)
{
	if (s->shared)
		__atomic_fetch_add(&s->ctr[c], n, __ATOMIC_RELAXED);
	else
		__atomic_store_n(&s->ctr[c], s->ctr[c] + n, __ATOMIC_RELAXED);
}

static inline void vm_stat_inc(struct vm_stats_shard *s, unsigned int c)
{
	vm_stat_add(s, c, 1);
}

/* Bracket the service of one fault.  Context: owner thread of @s. */
static inline void vm_stat_busy(struct vm_stats_shard *s)
{
	if (!s->shared)
		__atomic_store_n(&s->busy, s->busy + 1, __ATOMIC_RELEASE);
}

/* Context: owner thread of @s, or any thread for the shared one. */
static inline void vm_stat_lat(struct vm_stats_shard *s, unsigned int path, uint64_t ns)
{
	if (s->shared)
		vm_hist_add_shared(&s->hist[path], ns);
	else
		vm_hist_add(&s->hist[path], ns);
}

#endif /* UFVM_VM_STATS_H */
