// SPDX-License-Identifier: MIT
/* vm/stats.c - statistics shards (see vm/stats.h). */
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <sys/mman.h>

#include "vm/stats.h"

/* A thread's shards, one per instance it touched (rarely more than one). */
#define TLS_SHARDS 4

struct tls_slot {
	uint64_t set_id;
	struct vm_stats_shard *shard;
};

static __thread struct tls_slot tls_shards[TLS_SHARDS];
static struct vm_stats_shard *all_shards;	/* (a) push-only list */
static uint64_t next_set_id = 1;		/* (a) */
static pthread_key_t release_key;
static pthread_once_t release_once = PTHREAD_ONCE_INIT;
static bool key_ok;	/* (once) release_key made, and safe to set in a signal handler */

static void release_slot(struct tls_slot *t)
{
	if (t->shard)
		__atomic_store_n(&t->shard->owned, 0, __ATOMIC_RELEASE);
	t->set_id = 0;
	t->shard = NULL;
}

/* At thread exit: hand the thread's shards back for reuse. */
static void release_shards(void *unused)
{
	unsigned int i;

	for (i = 0; i < TLS_SHARDS; i++)
		release_slot(&tls_shards[i]);
}

/*
 * glibc keeps the values of the first 32 keys (PTHREAD_KEY_2NDLEVEL_SIZE) in
 * the thread's descriptor; a later key's first pthread_setspecific() in a
 * thread calloc()s its block, which a fault served in a signal handler
 * (in-thread delivery, the sigsegv backend) must not.  With such a key (a
 * program that made 32 before ufvm was loaded) threads use the instance's
 * shared shard instead.  Made when the library is loaded, when few keys
 * exist yet.
 */
static void make_key(void)
{
	key_ok = !pthread_key_create(&release_key, release_shards) && release_key < 32;
}

__attribute__((constructor)) static void make_key_early(void)
{
	pthread_once(&release_once, make_key);
}

int vm_stats_set_init(struct vm_stats_set *set)
{
	memset(set, 0, sizeof(*set));
	set->common.shared = true;
	set->id = __atomic_fetch_add(&next_set_id, 1, __ATOMIC_RELAXED);
	pthread_once(&release_once, make_key);
	return 0;
}

void vm_stats_set_destroy(struct vm_stats_set *set)
{
	struct vm_stats_shard *s;

	for (s = __atomic_load_n(&all_shards, __ATOMIC_ACQUIRE); s; s = s->next)
		if (__atomic_load_n(&s->set_id, __ATOMIC_RELAXED) == set->id)
			__atomic_store_n(&s->set_id, 0, __ATOMIC_RELEASE);
}

static void shard_reset(struct vm_stats_shard *s)
{
	memset(s->ctr, 0, sizeof(s->ctr));
	memset(s->hist, 0, sizeof(s->hist));
	s->busy = 0;
}

/* Find a free shard of @set (its counts kept) or of no set (reset). */
static struct vm_stats_shard *claim(struct vm_stats_set *set)
{
	struct vm_stats_shard *s;
	int pass, zero;

	for (pass = 0; pass < 2; pass++) {
		uint64_t want = pass ? 0 : set->id;

		for (s = __atomic_load_n(&all_shards, __ATOMIC_ACQUIRE); s; s = s->next) {
			zero = 0;
			if (__atomic_load_n(&s->set_id, __ATOMIC_RELAXED) != want ||
			    __atomic_load_n(&s->owned, __ATOMIC_RELAXED) != 0 ||
			    !__atomic_compare_exchange_n(&s->owned, &zero, 1, false,
							 __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
				continue;
			if (__atomic_load_n(&s->set_id, __ATOMIC_ACQUIRE) != want) {
				__atomic_store_n(&s->owned, 0, __ATOMIC_RELEASE);
				continue;	/* re-assigned under us */
			}
			if (!want) {
				shard_reset(s);
				__atomic_store_n(&s->set_id, set->id, __ATOMIC_RELEASE);
			}
			return s;
		}
	}
	s = mmap(NULL, sizeof(*s), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (s == MAP_FAILED)
		return NULL;
	s->owned = 1;
	s->set_id = set->id;
	s->next = __atomic_load_n(&all_shards, __ATOMIC_RELAXED);
	while (!__atomic_compare_exchange_n(&all_shards, &s->next, s, true,
					    __ATOMIC_RELEASE, __ATOMIC_RELAXED))
		;
	return s;
}

struct vm_stats_shard *vm_stats_shard_get(struct vm_stats_set *set)
{
	struct tls_slot *free_slot = NULL;
	struct vm_stats_shard *s;
	unsigned int i;

	for (i = 0; i < TLS_SHARDS; i++) {
		struct tls_slot *t = &tls_shards[i];

		if (t->shard && __atomic_load_n(&t->shard->set_id, __ATOMIC_RELAXED) != t->set_id)
			release_slot(t);	/* its instance was closed */
		if (t->set_id == set->id)
			return t->shard;
		if (!t->shard && !free_slot)
			free_slot = t;
	}
	if (!free_slot || !key_ok)
		return &set->common;
	s = claim(set);
	if (!s)
		return &set->common;
	free_slot->shard = s;
	free_slot->set_id = set->id;
	pthread_setspecific(release_key, (void *)1);	/* run release at exit */
	return s;
}

static void add_shard(const struct vm_stats_shard *s, uint64_t *ctr,
		      struct vm_hist *hist)
{
	unsigned int i;

	for (i = 0; i < UFVM_CTR__COUNT; i++)
		ctr[i] += __atomic_load_n(&s->ctr[i], __ATOMIC_RELAXED);
	for (i = 0; i < VM_HIST__COUNT; i++)
		vm_hist_merge(&hist[i], &s->hist[i]);
}

void vm_stats_sum(struct vm_stats_set *set, uint64_t *ctr, struct vm_hist *hist)
{
	uint64_t until = vm_now_ns() + 100 * 1000000ull;
	struct vm_stats_shard *s;

	add_shard(&set->common, ctr, hist);
	for (s = __atomic_load_n(&all_shards, __ATOMIC_ACQUIRE); s; s = s->next) {
		uint64_t b;

		if (__atomic_load_n(&s->set_id, __ATOMIC_ACQUIRE) != set->id)
			continue;
		b = __atomic_load_n(&s->busy, __ATOMIC_ACQUIRE);
		while ((b & 1) && __atomic_load_n(&s->busy, __ATOMIC_ACQUIRE) == b &&
		       vm_now_ns() < until)
			sched_yield();
		add_shard(s, ctr, hist);
	}
}
