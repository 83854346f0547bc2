/* SPDX-License-Identifier: MIT */
/*
 * vm/stats.h - per-thread statistics shards.
 *
 * Each pager thread owns a shard on its own cache lines and is its only
 * writer, so the fast path writes no shared cache line; readers sum the
 * shards with relaxed loads.  Threads without a shard of their own (API
 * callers) share the instance's common shard through atomic adds.
 */
#ifndef UFVM_VM_STATS_H
#define UFVM_VM_STATS_H

#include <ufvm.h>

#include "vm/hist.h"
#include "vm/lock.h"

struct vm_stats_shard {
	uint64_t ctr[UFVM_CTR__COUNT];
	struct vm_hist hist[UFVM_PATH__COUNT];
	uint64_t busy;			/* (a) odd while a fault is served */
	struct vm_stats_shard *next;	/* (set lock) */
	bool shared;			/* (c) several writers: atomic adds */
} __cacheline_aligned;

struct vm_stats_set {
	struct vm_mutex lock;
	struct vm_stats_shard *head;	/* (lock) every shard ever made */
	struct vm_stats_shard common;	/* shared by threads without a shard */
};

int vm_stats_set_init(struct vm_stats_set *set);
void vm_stats_set_destroy(struct vm_stats_set *set);
/* Return: a new shard owned by the calling thread, or NULL. */
struct vm_stats_shard *vm_stats_shard_new(struct vm_stats_set *set);
/*
 * Sum every shard into @ctr and @hist (arrays of the enum sizes).  Waits
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

/* Context: owner thread of @s; shared shards take no histogram. */
static inline void vm_stat_lat(struct vm_stats_shard *s, unsigned int path, uint64_t ns)
{
	if (!s->shared)
		vm_hist_add(&s->hist[path], ns);
}

/* The calling thread's own shard (pager threads), else NULL. */
extern __thread struct vm_stats_shard *vm__thread_shard;

#endif /* UFVM_VM_STATS_H */
