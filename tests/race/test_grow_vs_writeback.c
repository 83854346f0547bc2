/* SPDX-License-Identifier: MIT */
/*
 * test_grow_vs_writeback.c - a store past the old end of a file that a
 * grow is extending, and a write-back between the grow's zeroing of the
 * old last page and its new size (vm/object.c, resize_locked()).
 *
 * Race: a grow zeroes the old last page past the old size (a mapping may
 * have stored there: not file data), then publishes the new size.  A
 * store into that tail through a writable mapping in between lands in the
 * cache, and a write-back in between reads the old size, writes the page
 * only up to it and cleans the page: once the size is published the byte
 * is file data that the cache shows and the file lacks, until an eviction
 * shows zeros.  The grow dirties the page again once the size is out.
 * Here: a file of 2 pages + 100 bytes, its page 2 stored into (dirty and
 * writable); a thread grows it to 3 pages, held at UFVM_HOOK_GROW_ZEROED;
 * meanwhile a store of 'B' at 2P+200 and a sync of page 2; then the grow
 * goes on and the page is synced again: 'B' must be in the file; also
 * when the region is unmapped, or zapped, before the grow goes on (the
 * page is then mapped nowhere).  Teeth: UFVM_DEBUG_GROW_NO_REDIRTY leaves
 * the page clean, and the byte out.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>

#include "check.h"
#include "race.h"

#define SEED	0x6e0
#define OLD	(2 * PAGE + 100)
#define AT	(2 * PAGE + 200)
#define WAIT_US	(5 * 1000000u)

static struct {
	struct ufvm_file *f;
	atomic_int held, release;
	int err;
} g;

static void hook(void *arg, unsigned int point, uint64_t a, uint64_t b)
{
	(void)arg, (void)b;
	if (point == UFVM_HOOK_GROW_ZEROED && a == OLD) {
		atomic_store(&g.held, 1);
		race_wait(&g.release, 1, WAIT_US);
	}
}

static void *grower(void *arg)
{
	(void)arg;
	g.err = ufvm_truncate(g.f, 3 * PAGE);
	return NULL;
}

enum { STAY_MAPPED, UNMAP, ZAP };

/*
 * The race with @debug, the region left as @how says before the grow goes
 * on.  Return: whether the store reached the file.
 */
static bool store_in_file(uint64_t debug, int how)
{
	char path[TMPSTORE_PATH_MAX], got = 0;
	struct ufvm_config cfg;
	struct ufvm *vm;
	pthread_t th;
	uint8_t *m;
	void *addr;

	ut_store("gw", OLD, SEED, path);
	assert_ok(ufvm_config_init(&cfg));
	cfg.dirty_expire_ms = 3600000;
	cfg.debug_flags |= debug;
	vm = ut_open(&cfg);
	memset(&g, 0, sizeof(g));
	assert_ok(ufvm_file_open(vm, path, UFVM_RDWR, &g.f));
	assert_ok(ufvm_map_file(g.f, 0, 4 * PAGE, UFVM_PROT_READ | UFVM_PROT_WRITE,
				UFVM_MAP_SHARED, &addr));
	m = addr;
	m[2 * PAGE + 10] = 'a';		/* page 2: dirty, mapped writable */
	assert_ok(ufvm_debug_hook(vm, hook, NULL));
	cr_assert(pthread_create(&th, NULL, grower, NULL) == 0);
	cr_assert(race_wait(&g.held, 1, WAIT_US), "the grow never zeroed the old last page");
	m[AT] = 'B';			/* past the old end: no fault */
	assert_ok(ufvm_sync(vm, m + 2 * PAGE, PAGE));	/* up to the old size, clean */
	if (how == UNMAP)
		ut_unmap(vm, m, 4 * PAGE);
	else if (how == ZAP)
		assert_ok(ufvm_zap(vm, m, 4 * PAGE));
	atomic_store(&g.release, 1);
	cr_assert(race_join(th, WAIT_US) == 0, "the grow did not return");
	assert_ok(g.err);
	assert_ok(ufvm_debug_hook(vm, NULL, NULL));
	cr_assert(ufvm_pread(g.f, &got, 1, AT) == 1 && got == 'B', "the store is not in the cache");
	assert_ok(ufvm_fsync(g.f));
	got = 0;
	assert_ok(tmpstore_read(path, &got, 1, AT));
	if (how != UNMAP)
		ut_unmap(vm, m, 4 * PAGE);
	assert_ok(ufvm_file_close(g.f));
	ut_close(vm);
	return got == 'B';
}

Test(grow_vs_writeback, a_store_past_the_old_end_reaches_the_file, .timeout = 30)
{
	cr_assert(store_in_file(0, STAY_MAPPED), "the store at 2P+200, made while the file "
		  "grew and shown by the cache, is not in the file after a sync");
}

Test(grow_vs_writeback, a_store_past_the_old_end_reaches_the_file_unmapped, .timeout = 30)
{
	cr_assert(store_in_file(0, UNMAP), "the store at 2P+200 is not in the file: its region "
		  "was unmapped before the grow went on");
	cr_assert(store_in_file(0, ZAP), "the store at 2P+200 is not in the file: its region "
		  "was zapped before the grow went on");
}

Test(grow_vs_writeback, teeth_no_redirty_leaves_the_store_out, .timeout = 30)
{
	cr_assert(!store_in_file(UFVM_DEBUG_GROW_NO_REDIRTY, STAY_MAPPED),
		  "with the page left clean, the store should have stayed out of the file");
}
