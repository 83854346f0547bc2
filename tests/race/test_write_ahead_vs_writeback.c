/* SPDX-License-Identifier: MIT */
/*
 * test_write_ahead_vs_writeback.c - write-ahead never makes writable a page
 * that a write-back is cleaning.
 *
 * Invariant: a store to a mapped page either finds the page dirty or takes
 * a write-protect fault that dirties it, so that a sync writes it.  After a
 * mkwrite, a sequential writer's fault makes the pages after its own
 * writable and dirty (mkwrite_ahead(), pager/fault.c) under the region's
 * ptl, without their page locks: it must stop at a locked page.  A
 * write-back locks its pages, write-protects them, and only then clears
 * their dirty bits; a page made writable in between is clean and writable
 * once the write-back is done, and a store into it is never written.
 *
 * Set-up: a writable region over a file whose pages were read through it
 * (mapped write-protected); stores into pages Q-9 .. Q-2 in order (a trail
 * of 8: the next mkwrite writes ahead); ufvm_pwrite() dirties page Q, still
 * write-protected in the region.  A thread syncs page Q's range;
 * UFVM_HOOK_WB_PROTECTED holds its write-back after the write-protect
 * while the main thread stores into page Q-1 (a mkwrite with a trail: it
 * writes ahead over Q).  Then the write-back ends, the main thread stores
 * into page Q, syncs everything, and reads the file: the store must be
 * there.  Teeth: UFVM_DEBUG_WA_PAST_LOCK ignores page Q's lock; page Q is
 * made writable, cleaned, and its store is lost.
 */
#include <pthread.h>
#include <stdatomic.h>

#include "check.h"
#include "race.h"

#define NPAGES	64
#define SEED	0x5eed0a12
#define Q	40		/* the page the write-back cleans */
#define WAIT_US	(5 * 1000000u)

static struct {
	struct ufvm *vm;
	uint8_t *m;
	atomic_int armed, held, done, synced;
	int err;
} wr;

static void hook(void *arg, unsigned int point, uint64_t a, uint64_t b)
{
	(void)arg, (void)b;
	if (point != UFVM_HOOK_WB_PROTECTED || a != Q * PAGE || !atomic_exchange(&wr.armed, 0))
		return;
	atomic_store(&wr.held, 1);
	race_wait(&wr.done, 1, WAIT_US);	/* the store into page Q-1 is done */
}

static void *syncer(void *arg)
{
	(void)arg;
	wr.err = ufvm_sync(wr.vm, wr.m + Q * PAGE, PAGE);
	atomic_store(&wr.synced, 1);
	return NULL;
}

/* Return: whether page Q's store is in the file after the final sync. */
static bool run(uint64_t debug_flags)
{
	char path[TMPSTORE_PATH_MAX], page[8];
	struct ufvm_config cfg;
	struct ufvm_file *f;
	pthread_t th;
	void *addr;
	int pg;

	ut_store("q", NPAGES * PAGE, SEED, path);
	assert_ok(ufvm_config_init(&cfg));
	cfg.write_ahead = 64;
	cfg.dirty_expire_ms = 3600000;	/* no background write-back meanwhile */
	cfg.debug_flags = debug_flags;
	wr.vm = ut_open(&cfg);
	atomic_store(&wr.armed, 0);
	atomic_store(&wr.held, 0);
	atomic_store(&wr.done, 0);
	atomic_store(&wr.synced, 0);
	assert_ok(ufvm_file_open(wr.vm, path, UFVM_RDWR, &f));
	assert_ok(ufvm_map_file(f, 0, NPAGES * PAGE, UFVM_PROT_READ | UFVM_PROT_WRITE,
				UFVM_MAP_SHARED, &addr));
	wr.m = addr;
	for (pg = 0; pg < NPAGES; pg++)		/* mapped write-protected, clean */
		assert_pattern(SEED, wr.m + pg * PAGE, pg * PAGE, 8, "page %d", pg);
	for (pg = Q - 9; pg <= Q - 2; pg++)	/* the trail */
		wr.m[pg * PAGE] = 'T';
	cr_assert_eq(ut_counter(wr.vm, UFVM_CTR_WRITEAHEAD_PAGES), 0,
		     "a trail of 7 pages wrote ahead");
	ut_pwrite(f, "P", 1, Q * PAGE + 1);	/* dirty, write-protected here */

	assert_ok(ufvm_debug_hook(wr.vm, hook, NULL));
	atomic_store(&wr.armed, 1);
	cr_assert(pthread_create(&th, NULL, syncer, NULL) == 0);
	cr_assert(race_wait(&wr.held, 1, WAIT_US), "the write-back of page %d never came", Q);
	wr.m[(Q - 1) * PAGE] = 'T';		/* a mkwrite with a trail of 8 */
	atomic_store(&wr.done, 1);
	cr_assert(race_join(th, WAIT_US) == 0, "the sync did not return");
	assert_ok(wr.err);
	assert_ok(ufvm_debug_hook(wr.vm, NULL, NULL));

	wr.m[Q * PAGE + 7] = 'S';
	assert_ok(ufvm_sync(wr.vm, wr.m, NPAGES * PAGE));
	assert_ok(tmpstore_read(path, page, 8, Q * PAGE));
	cr_assert_eq(page[1], 'P', "the pwrite into page %d is not in the file", Q);
	ut_unmap(wr.vm, wr.m, NPAGES * PAGE);
	assert_ok(ufvm_file_close(f));
	ut_close(wr.vm);
	return page[7] == 'S';
}

Test(write_ahead_vs_writeback, a_page_being_cleaned_stays_write_protected, .timeout = 30)
{
	cr_assert(run(0), "the store into page %d, after a write-back that wrote ahead of "
		  "page %d, is not in the file after ufvm_sync", Q, Q - 1);
}

Test(write_ahead_vs_writeback, teeth_past_the_lock_loses_the_store, .timeout = 30)
{
	cr_assert(!run(UFVM_DEBUG_WA_PAST_LOCK), "write-ahead past page %d's lock should have "
		  "made it writable while the write-back cleaned it, and its store be lost", Q);
}
