// SPDX-License-Identifier: MIT
/*
 * test_clock.c - the clock keeps a mapped working set that is in use.
 *
 * The clock learns that a mapped page is used by zapping it (a sample) and
 * seeing it mapped again; a scan zaps a bounded batch.  A page mapped again
 * after a sample is active: the hand passes it by while the batch is full
 * and samples it, bit kept, when there is room (vm/reclaim_clock.c).
 *
 * hot_set_survives_a_scan: one thread reads a hot set of HOT pages over and
 * over, another streams through the rest of the file, with a budget of
 * BUDGET pages (the hot set is a quarter of it).  Invariant: the hot pages
 * are evicted at most a tenth as often as the streamed ones.  Before active
 * pages, every page past a full zap batch lost its bit unsampled and was a
 * victim at the hand's next pass however hot: about one hot eviction for
 * every five streamed ones (0.1-0.8% with them, on an idle machine).
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "check.h"
#include "race.h"

#define SEED	0x636c
#define NPAGES	8192ul			/* 32 MiB */
#define BUDGET	1024ul
#define HOT	256ul

struct counts {
	atomic_ulong hot, cold;
};

static void evict_hook(void *arg, unsigned int point, uint64_t a, uint64_t b)
{
	struct counts *c = arg;

	if (point == UFVM_HOOK_EVICT)
		atomic_fetch_add(a < HOT ? &c->hot : &c->cold, 1);
}

struct reader {
	const uint8_t *map;
	uint64_t first, n, until_us;
	unsigned long passes, errors;
};

/* Read a word of each page of [first, first + n), in order. */
static void read_pass(struct reader *r)
{
	for (uint64_t p = r->first; p < r->first + r->n; p++) {
		uint64_t word;

		memcpy(&word, r->map + p * PAGE + 8, sizeof(word));
		if (word != pattern_word(SEED, p * PAGE / 8 + 1))
			r->errors++;
	}
	r->passes++;
}

static void *reader_main(void *arg)
{
	struct reader *r = arg;

	while (race_now_us() < r->until_us)
		read_pass(r);
	return NULL;
}

Test(clock, hot_set_survives_a_scan, .timeout = 60)
{
	char path[TMPSTORE_PATH_MAX];
	struct reader hot, cold;
	pthread_t th[2];
	struct ufvm_config cfg;
	struct counts c = { 0 };
	struct ufvm *vm;
	uint8_t *map;
	uint64_t until;

	cr_assert(ufvm_config_init(&cfg) == 0);
	cfg.cache_pages = BUDGET;
	cfg.reclaim = UFVM_RECLAIM_CLOCK;
	ut_store("c", (off_t)(NPAGES * PAGE), SEED, path);
	vm = ut_open(&cfg);
	assert_ok(ufvm_debug_hook(vm, evict_hook, &c));
	map = ut_map(vm, path, 0, NPAGES * PAGE, UFVM_PROT_READ);
	until = race_now_us() + 1500000;
	hot = (struct reader){ .map = map, .first = 0, .n = HOT, .until_us = until };
	cold = (struct reader){ .map = map, .first = HOT, .n = NPAGES - HOT, .until_us = until };
	cr_assert(pthread_create(&th[0], NULL, reader_main, &hot) == 0);
	cr_assert(pthread_create(&th[1], NULL, reader_main, &cold) == 0);
	pthread_join(th[0], NULL);
	pthread_join(th[1], NULL);
	assert_ok(ufvm_debug_hook(vm, NULL, NULL));
	cr_assert_eq(hot.errors + cold.errors, 0, "reads saw wrong data");
	cr_log_info("hot pages evicted %lu times, streamed ones %lu (%lu hot passes, %lu stream "
		    "passes)", atomic_load(&c.hot), atomic_load(&c.cold), hot.passes, cold.passes);
	cr_assert_geq(cold.passes, 2, "the stream made %lu passes", cold.passes);
	cr_assert_geq(atomic_load(&c.cold), NPAGES, "only %lu streamed pages evicted",
		      atomic_load(&c.cold));
	cr_assert_leq(atomic_load(&c.hot) * 10, atomic_load(&c.cold),
		      "hot pages evicted %lu times, streamed ones %lu (%lu hot passes, "
		      "%lu stream passes)", atomic_load(&c.hot), atomic_load(&c.cold),
		      hot.passes, cold.passes);
	ut_unmap(vm, map, NPAGES * PAGE);
	ut_close(vm);
}
