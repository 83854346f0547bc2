// SPDX-License-Identifier: MIT
/*
 * test_reclaim_race.c - reclaim against faults, fault-around and reads.
 *
 * Invariant: a page reclaim takes from the cache never takes a frame a new
 * page of the same offset has been filled into: reclaim frees the frame
 * while its locked page still holds the index slot, so no fill can insert
 * a new page there until the frame is gone.  Readers (mapping with
 * fault-around, and ufvm_pread) of a file much larger than a tiny budget
 * always see the file's bytes, never the zeros of a freed frame.
 *
 * Teeth: UFVM_DEBUG_EVICT_PUNCH_LATE frees the frame after the slot is
 * given up; a hook widens that window; readers must then see zeros.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "check.h"
#include "race.h"

#define SEED	0x7263
#define NPAGES	128ul
#define BUDGET	16

#define MIN_READS	2000ul	/* a run goes on past its time until it has these */
#define MAX_RUN_US	10000000ul	/* ... or for this long at most */

struct run {
	struct ufvm_file *f;
	uint8_t *map;			/* NULL: readers use ufvm_pread only */
	uint64_t until_us, cap_us;
	atomic_ulong bad, reads;
};

/* Time is up, and the readers did enough to race (a slow, loaded machine
 * under ASan may need much longer than its share of time). */
static bool run_done(struct run *r)
{
	uint64_t now = race_now_us();

	return now >= r->cap_us ||
	       (now >= r->until_us && atomic_load_explicit(&r->reads, memory_order_relaxed) >= MIN_READS);
}

static void evict_hook(void *arg, unsigned int point, uint64_t a, uint64_t b)
{
	if (point == UFVM_HOOK_EVICT)
		race_sleep_us(300);	/* a fill of the same page fits in here */
}

static void *reader(void *arg)
{
	struct run *r = arg;
	struct rng rng = { .s = (uint64_t)(uintptr_t)&rng };
	uint8_t buf[PAGE];
	unsigned long n = 0;

	while (!run_done(r)) {
		uint64_t p = rng_below(&rng, NPAGES / 4);	/* a hot set, 2x budget */
		const uint8_t *src = buf;

		if (r->map && (n++ & 1)) {
			src = r->map + p * PAGE;
		} else if (ufvm_pread(r->f, buf, PAGE, (off_t)(p * PAGE)) != (ssize_t)PAGE) {
			atomic_fetch_add(&r->bad, 1);
			continue;
		}
		if (pattern_mismatch(SEED, src, p * PAGE, PAGE) >= 0)
			atomic_fetch_add(&r->bad, 1);
		atomic_fetch_add_explicit(&r->reads, 1, memory_order_relaxed);
	}
	return NULL;
}

static unsigned long run_race(unsigned int debug, bool mapped, uint64_t ms)
{
	char path[TMPSTORE_PATH_MAX];
	struct ufvm_config cfg;
	struct ufvm *vm;
	struct run r;
	pthread_t th[3];
	int i;

	memset(&r, 0, sizeof(r));
	cr_assert(ufvm_config_init(&cfg) == 0);
	cfg.cache_pages = BUDGET;
	cfg.fault_around = 16;
	cfg.readahead = 0;
	cfg.debug_flags = debug;
	ut_store("r", (off_t)(NPAGES * PAGE), SEED, path);
	vm = ut_open(&cfg);
	assert_ok(ufvm_debug_hook(vm, evict_hook, NULL));
	assert_ok(ufvm_file_open(vm, path, UFVM_RDWR, &r.f));
	if (mapped)
		r.map = ut_map(vm, path, 0, NPAGES * PAGE, UFVM_PROT_READ);
	r.until_us = race_now_us() + ms * 1000;
	r.cap_us = r.until_us + MAX_RUN_US;
	for (i = 0; i < 3; i++)
		cr_assert(pthread_create(&th[i], NULL, reader, &r) == 0);
	for (i = 0; i < 3; i++)
		pthread_join(th[i], NULL);
	cr_assert_gt(ut_counter(vm, UFVM_CTR_EVICTIONS), 100, "too few evictions to race");
	cr_assert_geq(atomic_load(&r.reads), MIN_READS, "too few reads to race in %lu s",
		      (MAX_RUN_US + ms * 1000) / 1000000);
	assert_ok(ufvm_debug_hook(vm, NULL, NULL));
	if (r.map)
		ut_unmap(vm, r.map, NPAGES * PAGE);
	assert_ok(ufvm_file_close(r.f));
	ut_close(vm);
	return atomic_load(&r.bad);
}

Test(reclaim_race, fault_around_and_pread_see_the_file, .timeout = 60)
{
	unsigned long bad = run_race(0, true, 1500);

	cr_assert_eq(bad, 0, "%lu reads saw bytes that are not the file's", bad);
}

/* Teeth: freeing the frame after the slot is free loses filled data.  Reads
 * go through ufvm_pread only: a mapped access of a lost frame would loop. */
Test(reclaim_race, teeth_late_punch_loses_data, .timeout = 60)
{
	uint64_t give_up = race_now_us() + 35000000;
	unsigned long bad = 0;
	int tries;

	for (tries = 0; tries < 5 && !bad && race_now_us() < give_up; tries++)
		bad = run_race(UFVM_DEBUG_EVICT_PUNCH_LATE, false, 1000);
	cr_assert_gt(bad, 0, "the late punch was never caught: the test has no teeth");
}
