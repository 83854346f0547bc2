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

struct run {
	struct ufvm_file *f;
	uint8_t *map;			/* NULL: readers use ufvm_pread only */
	uint64_t until_us;
	atomic_ulong bad, reads;
};

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
	unsigned long reads = 0;

	while (race_now_us() < r->until_us) {
		uint64_t p = rng_below(&rng, NPAGES / 4);	/* a hot set, 2x budget */
		const uint8_t *src = buf;

		if (r->map && (reads & 1)) {
			src = r->map + p * PAGE;
		} else if (ufvm_pread(r->f, buf, PAGE, (off_t)(p * PAGE)) != (ssize_t)PAGE) {
			atomic_fetch_add(&r->bad, 1);
			continue;
		}
		if (pattern_mismatch(SEED, src, p * PAGE, PAGE) >= 0)
			atomic_fetch_add(&r->bad, 1);
		reads++;
	}
	atomic_fetch_add(&r->reads, reads);
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
	for (i = 0; i < 3; i++)
		cr_assert(pthread_create(&th[i], NULL, reader, &r) == 0);
	for (i = 0; i < 3; i++)
		pthread_join(th[i], NULL);
	cr_assert_gt(ut_counter(vm, UFVM_CTR_EVICTIONS), 100, "too few evictions to race");
	cr_assert_gt(atomic_load(&r.reads), 1000, "too few reads to race");
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
	unsigned long bad = 0;
	int tries;

	for (tries = 0; tries < 5 && !bad; tries++)
		bad = run_race(UFVM_DEBUG_EVICT_PUNCH_LATE, false, 1000);
	cr_assert_gt(bad, 0, "the late punch was never caught: the test has no teeth");
}
