/* SPDX-License-Identifier: MIT */
/*
 * test_close_vs_reclaim.c - the last close of a file drops its cached
 * pages while reclaim, run by a fill of another file, evicts them.
 *
 * Invariant: the close never touches a page struct after its free.  It
 * finds each page under RCU and must pin it (a reference) before it leaves
 * that section: out of it, reclaim may evict the page and free it after a
 * grace period the close no longer holds back.
 *
 * drop_vs_evict: with UFVM_HOOK_DROP_FOUND (the close found page 0 of file
 * A, no lock held), the close waits while another thread reads file B
 * through a full cache (budget 64 pages, FIFO reclaim: A's pages are the
 * oldest) until reclaim has evicted a page at offset 0 and its free has
 * had time to run (the reader fills nothing more until the close is done);
 * then the close goes on and must finish cleanly, with B's bytes read
 * right.
 * Teeth (ASan tree): UFVM_DEBUG_DROP_GET_LATE pins the page only after the
 * hook; ASan, which sees page structs of the pool as poisoned while they
 * are free, must report the close's use of the freed page.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "check.h"
#include "race.h"

#define SEED_A	0xa11ce
#define SEED_B	0xb0b
#define PAGES_A	32
#define PAGES_B	256
#define BUDGET	64

struct drop {
	struct ufvm_file *b;
	atomic_int go, evicted0, kicked, closed, done;
	atomic_ulong bad;
};

static void drop_hook(void *arg, unsigned int point, uint64_t a, uint64_t b)
{
	struct drop *d = arg;

	(void)b;
	if (point == UFVM_HOOK_EVICT && a == 0)
		atomic_store(&d->evicted0, 1);
	if (point == UFVM_HOOK_DROP_FOUND && a == 0 && !atomic_exchange(&d->kicked, 1)) {
		atomic_store(&d->go, 1);
		race_wait(&d->evicted0, 1, 5 * 1000000);
		race_sleep_us(100000);	/* the RCU callback that frees it */
	}
}

static void *reader_main(void *arg)
{
	struct drop *d = arg;
	uint8_t buf[PAGE];
	unsigned int i;

	race_wait(&d->go, 1, 30 * 1000000);
	for (i = 0; i < PAGES_B; i++) {
		/*
		 * Once page 0 is evicted, no fill until the close is done: a
		 * fill's new page could take the freed struct from the pool,
		 * no longer poisoned, and hide the teeth's use of it.
		 */
		if (atomic_load(&d->evicted0))
			race_wait(&d->closed, 1, 30 * 1000000);
		if (ufvm_pread(d->b, buf, PAGE, (off_t)i * PAGE) != (ssize_t)PAGE ||
		    pattern_mismatch(SEED_B, buf, (uint64_t)i * PAGE, PAGE) >= 0)
			atomic_fetch_add(&d->bad, 1);
	}
	atomic_store(&d->done, 1);
	return NULL;
}

static void run_drop_vs_evict(unsigned int debug)
{
	char pa[TMPSTORE_PATH_MAX], pb[TMPSTORE_PATH_MAX];
	struct drop d = { 0 };
	struct ufvm_config cfg;
	struct ufvm_file *a;
	uint8_t buf[PAGE];
	struct ufvm *vm;
	pthread_t th;
	unsigned int i;

	ut_config_budget(&cfg, BUDGET);
	cfg.reclaim = UFVM_RECLAIM_FIFO;
	cfg.readahead = 0;	/* B's reads fill a page each: one eviction each */
	cfg.debug_flags |= debug;
	ut_store("a", PAGES_A * PAGE, SEED_A, pa);
	ut_store("b", PAGES_B * PAGE, SEED_B, pb);
	vm = ut_open(&cfg);
	assert_ok(ufvm_file_open(vm, pa, UFVM_RDONLY, &a));
	assert_ok(ufvm_file_open(vm, pb, UFVM_RDONLY, &d.b));
	for (i = 0; i < PAGES_A; i++)
		ut_pread(a, buf, PAGE, (off_t)i * PAGE);
	assert_ok(ufvm_debug_hook(vm, drop_hook, &d));
	cr_assert_eq(pthread_create(&th, NULL, reader_main, &d), 0);
	assert_ok(ufvm_file_close(a));	/* the last close: drops A's pages */
	atomic_store(&d.closed, 1);
	cr_assert_eq(race_join(th, 30 * 1000000), 0, "the reader of B is stuck");
	assert_ok(ufvm_debug_hook(vm, NULL, NULL));
	cr_assert(atomic_load(&d.kicked), "the close never reported page 0");
	cr_assert(atomic_load(&d.evicted0), "reclaim evicted no page at offset 0");
	cr_assert_eq(atomic_load(&d.bad), 0, "%lu pages of B read wrong", atomic_load(&d.bad));
	assert_ok(ufvm_file_close(d.b));
	ut_close(vm);
}

Test(close_vs_reclaim, drop_vs_evict, .timeout = 60)
{
	run_drop_vs_evict(0);
}

static void teeth_drop_get_late(void)
{
	run_drop_vs_evict(UFVM_DEBUG_DROP_GET_LATE);
}

Test(close_vs_reclaim, teeth_drop_get_late_touches_freed_page, .timeout = 60)
{
	race_teeth_asan(teeth_drop_get_late, "use-after-poison", "drop_all_pages");
}
