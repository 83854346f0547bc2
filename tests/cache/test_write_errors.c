// SPDX-License-Identifier: MIT
/*
 * test_write_errors.c - the page cache under a budget while store writes
 * fail (UFVM_INJECT_WRITE_EIO): dirty pages that cannot be cleaned stay
 * dirty (their data is written by a later sync once the store works), and
 * the rest of the cache keeps working around them.
 *
 * - fifo_moves_past_pages_that_cannot_be_cleaned: FIFO reclaim with dirty
 *   pages that cannot be written at the head of its list still reclaims
 *   the clean pages behind them: reads of clean pages stay within the
 *   budget and each needs about one direct reclaim round, not hundreds.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "check.h"

#define SEED	0x7765

/* Fill pages [0, ndirty) of @f with @byte through ufvm_pwrite. */
static void dirty_pages(struct ufvm_file *f, unsigned int ndirty, int byte)
{
	uint8_t buf[PAGE];
	unsigned int i;

	memset(buf, byte, sizeof(buf));
	for (i = 0; i < ndirty; i++)
		ut_pwrite(f, buf, PAGE, (off_t)(i * PAGE));
}

/* After the store heals: the first sync reports the error, a second one writes. */
static void heal_and_check(struct ufvm_file *f, const char *path, unsigned int ndirty,
			   int byte)
{
	uint8_t buf[PAGE], want[PAGE];
	unsigned int i;
	int err;

	assert_ok(ufvm_inject(f, UFVM_INJECT_WRITE_EIO, 0, 0));
	err = ufvm_fsync(f);
	cr_assert(err == 0 || err == -EIO, "ufvm_fsync = %d", err);
	assert_ok(ufvm_fsync(f));
	memset(want, byte, sizeof(want));
	for (i = 0; i < ndirty; i++) {
		cr_assert(tmpstore_read(path, buf, PAGE, (off_t)(i * PAGE)) == 0);
		assert_same(buf, want, (uint64_t)i * PAGE, PAGE, "dirty page %u lost", i);
	}
}

Test(write_errors, fifo_moves_past_pages_that_cannot_be_cleaned, .timeout = 30)
{
	const unsigned int budget = 64, ndirty = 32, nread = 2000;
	char path[TMPSTORE_PATH_MAX];
	struct ufvm_config cfg;
	struct ufvm_stats st;
	struct ufvm_file *f;
	struct ufvm *vm;
	uint8_t buf[PAGE];
	unsigned int i;

	cr_assert(ufvm_config_init(&cfg) == 0);
	cfg.cache_pages = budget;
	cfg.reclaim = UFVM_RECLAIM_FIFO;
	ut_store("fifo", (off_t)((ndirty + nread) * PAGE), SEED, path);
	vm = ut_open(&cfg);
	assert_ok(ufvm_file_open(vm, path, UFVM_RDWR, &f));
	assert_ok(ufvm_inject(f, UFVM_INJECT_WRITE_EIO, 0, (off_t)(ndirty * PAGE)));
	dirty_pages(f, ndirty, 0xd1);
	for (i = ndirty; i < ndirty + nread; i++) {
		ut_pread(f, buf, PAGE, (off_t)(i * PAGE));
		assert_pattern(SEED, buf, (uint64_t)i * PAGE, PAGE, "clean page %u", i);
	}
	assert_ok(ufvm_stats(vm, &st));
	cr_assert_leq(st.cached_pages_max, budget + 1,
		      "%llu pages cached with a budget of %u: clean pages were not reclaimed",
		      (unsigned long long)st.cached_pages_max, budget);
	cr_assert_lt(st.counters[UFVM_CTR_DIRECT_RECLAIM], 4ull * nread,
		     "%llu direct reclaim rounds for %u reads",
		     (unsigned long long)st.counters[UFVM_CTR_DIRECT_RECLAIM], nread);
	heal_and_check(f, path, ndirty, 0xd1);
	assert_ok(ufvm_file_close(f));
	ut_close(vm);
}
