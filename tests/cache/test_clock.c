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
 * BUDGET pages (the hot set is a quarter of it).  Invariant: active pages
 * at least halve how often the hot pages are evicted per streamed one,
 * against the same run with UFVM_DEBUG_NO_ACTIVE (every page past a full
 * zap batch loses its bit unsampled and is a victim at the hand's next
 * pass however hot, as before active pages), which is also the teeth: it
 * must evict them at least a tenth as often.  Measured: 19-27% without
 * active pages, 0.2-6.6% with them in quiet runs, in every delivery, under
 * ASan; under heavy load the two move together (12.4% against 27.3% once,
 * ASan, uffd, ctest -j2 beside a stability loop, which a fixed bound of
 * 10% failed).  Every 256 pages the stream waits for a whole pass of the
 * hot reader, so that a hot reader starved of CPU by the load (ctest -j2,
 * in-thread delivery: 13% once) does not decide the count.
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
#define RUN_MS	1000

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
	uint64_t first, n;
	atomic_bool *stop;
	atomic_ulong passes;
	unsigned long errors;
	struct reader *hot;	/* the stream: wait for this one every 256 pages */
};

/* Read a word of each page of [first, first + n), in order. */
static void read_pass(struct reader *r)
{
	for (uint64_t p = r->first; p < r->first + r->n; p++) {
		uint64_t word;

		memcpy(&word, r->map + p * PAGE + 8, sizeof(word));
		if (word != pattern_word(SEED, p * PAGE / 8 + 1))
			r->errors++;
		if (r->hot && p % 256 == 255) {
			/* A whole pass of the hot reader, whatever the scheduler gives it. */
			unsigned long want = atomic_load(&r->hot->passes) + 2;

			while (atomic_load(&r->hot->passes) < want && !atomic_load(r->stop))
				race_sleep_us(20);
		}
	}
	atomic_fetch_add(&r->passes, 1);
}

static void *reader_main(void *arg)
{
	struct reader *r = arg;

	while (!atomic_load(r->stop))
		read_pass(r);
	return NULL;
}

/* Hot and streamed evictions of a run of RUN_MS ms with @debug flags. */
static void run_hot_and_stream(unsigned int debug, unsigned long *hot_ev, unsigned long *cold_ev)
{
	char path[TMPSTORE_PATH_MAX];
	struct reader hot, cold;
	pthread_t th[2];
	struct ufvm_config cfg;
	struct counts c = { 0 };
	struct ufvm *vm;
	uint8_t *map;
	atomic_bool stop = false;
	uint64_t t0;

	cr_assert(ufvm_config_init(&cfg) == 0);
	cfg.cache_pages = BUDGET;
	cfg.reclaim = UFVM_RECLAIM_CLOCK;
	cfg.debug_flags = debug;
	ut_store("c", (off_t)(NPAGES * PAGE), SEED, path);
	vm = ut_open(&cfg);
	assert_ok(ufvm_debug_hook(vm, evict_hook, &c));
	map = ut_map(vm, path, 0, NPAGES * PAGE, UFVM_PROT_READ);
	hot = (struct reader){ .map = map, .first = 0, .n = HOT, .stop = &stop };
	cold = (struct reader){ .map = map, .first = HOT, .n = NPAGES - HOT, .stop = &stop,
				.hot = &hot };
	cr_assert(pthread_create(&th[0], NULL, reader_main, &hot) == 0);
	cr_assert(pthread_create(&th[1], NULL, reader_main, &cold) == 0);
	/* RUN_MS, and on until the stream made 3 passes (a slow tree), 20 s at most. */
	t0 = race_now_us();
	while (race_now_us() - t0 < RUN_MS * 1000 ||
	       (atomic_load(&cold.passes) < 3 && race_now_us() - t0 < 20000000))
		race_sleep_us(10000);
	atomic_store(&stop, true);
	pthread_join(th[0], NULL);
	pthread_join(th[1], NULL);
	assert_ok(ufvm_debug_hook(vm, NULL, NULL));
	cr_assert_eq(hot.errors + cold.errors, 0, "reads saw wrong data");
	*hot_ev = atomic_load(&c.hot);
	*cold_ev = atomic_load(&c.cold);
	cr_log_info("%s: hot pages evicted %lu times, streamed ones %lu (%lu hot passes, "
		    "%lu stream passes)", debug ? "without active pages" : "with active pages",
		    *hot_ev, *cold_ev, atomic_load(&hot.passes), atomic_load(&cold.passes));
	cr_assert_geq(atomic_load(&cold.passes), 2, "the stream made %lu passes",
		      atomic_load(&cold.passes));
	cr_assert_geq(*cold_ev, NPAGES, "only %lu streamed pages evicted", *cold_ev);
	ut_unmap(vm, map, NPAGES * PAGE);
	ut_close(vm);
}

/*
 * Under a load spike both runs of a pair move together, and once in 29
 * loaded runs a pair missed a bound (ctest -j2 beside other builds and
 * tests, uffd): a pair that misses is run again, ATTEMPTS pairs at most.
 * With active pages not working every pair misses, so this keeps the test's
 * teeth.
 */
#define ATTEMPTS	3

Test(clock, hot_set_survives_a_scan, .timeout = 120)
{
	unsigned long hot_on, cold_on, hot_off, cold_off;
	bool shown, halved;

	for (int attempt = 1;; attempt++) {
		run_hot_and_stream(0, &hot_on, &cold_on);
		run_hot_and_stream(UFVM_DEBUG_NO_ACTIVE, &hot_off, &cold_off);
		shown = hot_off * 10 >= cold_off;
		halved = hot_on * cold_off * 2 <= hot_off * cold_on;
		if ((shown && halved) || attempt == ATTEMPTS)
			break;
		cr_log_warn("attempt %d: hot pages evicted %lu times, streamed ones %lu; without "
			    "active pages %lu and %lu: once more", attempt, hot_on, cold_on,
			    hot_off, cold_off);
	}
	/* Teeth: without active pages the scenario evicts the hot set. */
	cr_assert(shown,
		  "without active pages, hot pages evicted %lu times, streamed ones %lu: "
		  "the scenario no longer shows the problem", hot_off, cold_off);
	cr_assert(halved,
		  "hot pages evicted %lu times, streamed ones %lu; without active pages "
		  "%lu and %lu: not even halved", hot_on, cold_on, hot_off, cold_off);
}
