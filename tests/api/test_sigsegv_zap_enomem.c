/* SPDX-License-Identifier: MIT */
/*
 * test_sigsegv_zap_enomem.c - a zap that fails for want of a mapping
 * leaves no page mapped over a frame that is then freed.
 *
 * Invariant: once a punch or reclaim has freed a page's frame, no region
 * maps that page any more, so the next access to it faults: a read gets
 * the file's bytes (reclaim) or zeros (punch), and ufvm tracks what is
 * written there.  The sigsegv backend unmaps a page by mapping reserved
 * memory over it; inside a run of mapped pages that splits the run's
 * mapping, which fails (ENOMEM) once the process has vm.max_map_count
 * mappings.  Punch and reclaim used to forget the pages anyway and free
 * their frames: the mapping of the memfd stayed, a read of the page got a
 * new frame of zeros and a write went into it unseen.  Now a failed zap
 * unmaps the whole region instead (one mapping replacing many, no split),
 * and past the limit, where even that new mapping is refused, makes the
 * whole region inaccessible (mprotect(), which needs no new mapping).
 *
 * How it fails on purpose: pages mapped one by one merge into one mapping;
 * the mapping table is filled (tests/common/pagemap.c), one more mapping
 * made in the "past the limit" cases, and a page in the middle of the run
 * punched or evicted.  The table is emptied before the pages are checked.
 * Skipped where vm.max_map_count is too large to fill quickly.  Every
 * backend runs it; the userfaultfd backend's zap (MADV_DONTNEED) never
 * splits, and the test checks the same outcome.
 */
#include <sys/mman.h>
#include <unistd.h>

#include "check.h"
#include "pagemap.h"

#define NPAGES		16
#define SEED		0x5eed2700
#define MAX_FILL	(1ul << 18)	/* mappings made at most to fill the table */

static struct {
	void *table, *extra;
	size_t table_len;
} full;

/* Fill the mapping table, and with @past make one mapping more; or skip. */
static void table_fill(bool past)
{
	full.table = maps_fill_table(MAX_FILL, &full.table_len);
	if (!full.table)
		cr_skip_test("the mapping table did not fill up (vm.max_map_count too large?)");
	full.extra = NULL;
	if (past) {
		full.extra = mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		cr_assert(full.extra != MAP_FAILED, "no mapping past the limit: %s",
			  strerror(errno));
	}
}

static void table_empty(void)
{
	if (full.extra)
		munmap(full.extra, PAGE);
	munmap(full.table, full.table_len);
}

static void punch_with_table_full(bool past)
{
	struct ufvm_config cfg;
	struct ut_file u;
	uint8_t *m, b;

	assert_ok(ufvm_config_init(&cfg));
	cfg.readahead = 0;
	ut_file_open(&u, &cfg, "a", NPAGES, SEED, UFVM_RDWR);
	m = ut_map(u.vm, u.path, 0, NPAGES * PAGE, UFVM_PROT_READ | UFVM_PROT_WRITE);
	for (int pg = 2; pg <= 4; pg++)
		m[pg * PAGE] = (uint8_t)('a' + pg);	/* mapped writable, one mapping */

	table_fill(past);
	assert_ok(ufvm_punch(u.f, 3 * PAGE, PAGE));
	table_empty();

	/* Punched: zeros, and a write there is ufvm's to write back. */
	cr_assert_eq(m[3 * PAGE + 7], 0);
	m[3 * PAGE + 7] = 'z';
	assert_ok(ufvm_fsync(u.f));
	b = ut_store_byte(u.path, 3 * PAGE + 7);
	cr_assert_eq(b, 'z', "a write after a punch whose unmapping failed did not reach "
		     "the store (it holds %#x)", b);
	/* The pages beside it kept their bytes. */
	cr_assert_eq(m[2 * PAGE], 'a' + 2);
	cr_assert_eq(m[4 * PAGE], 'a' + 4);
	ut_unmap(u.vm, m, NPAGES * PAGE);
	ut_file_close(&u);
}

Test(sigsegv_zap_enomem, write_after_punch_at_the_limit_reaches_store, .timeout = 60)
{
	punch_with_table_full(false);
}

Test(sigsegv_zap_enomem, write_after_punch_past_the_limit_reaches_store, .timeout = 60)
{
	punch_with_table_full(true);
}

/*
 * Reclaim: a budget of 32 pages, FIFO, pages 8-15 the oldest.  Pages 0-23
 * are mapped (one mapping), the table filled, and 16 more pages read with
 * ufvm_pread(), which evicts 8-15 from the middle of the mapping.  Read:
 * each mapped page must read the file's bytes.  @write: each was written
 * before (so write-back cleaned the evicted ones), and is written again
 * after: every write must reach the store.  Before the reads, four rounds
 * of 128 pages read and punched fill the instance's pools, which would
 * otherwise want a new mapping in the middle of the test.
 */
static void reclaim_with_table_full(bool write)
{
	static uint8_t buf[128 * PAGE];
	struct ufvm_config cfg;
	struct ut_file u;
	uint64_t evicted;
	int bad = 0;
	uint8_t *m;

	ut_config_budget(&cfg, write ? 64 : 32);
	cfg.readahead = 0;
	cfg.fault_around = 1;
	cfg.reclaim = UFVM_RECLAIM_FIFO;
	if (write)
		cfg.dirty_expire_ms = 600000;	/* no write-back but reclaim's */
	ut_file_open(&u, &cfg, "r", 256, SEED, UFVM_RDWR);
	for (int i = 0; i < 4; i++)
		ut_pread(u.f, buf, 128 * PAGE, 128 * PAGE);
	assert_ok(ufvm_punch(u.f, 128 * PAGE, 128 * PAGE));
	sleep(1);	/* freed after a grace period, back to the pools */
	ut_pread(u.f, buf, 8 * PAGE, 8 * PAGE);		/* 8..15, the oldest */
	ut_pread(u.f, buf, 8 * PAGE, 0);
	ut_pread(u.f, buf, 8 * PAGE, 16 * PAGE);
	m = ut_map(u.vm, u.path, 0, 256 * PAGE,
		   UFVM_PROT_READ | (write ? UFVM_PROT_WRITE : 0));
	for (int pg = 0; pg < 24; pg++) {
		if (write)
			m[pg * PAGE] = (uint8_t)(0xa0 + pg);	/* dirty */
		else
			(void)*(volatile uint8_t *)(m + pg * PAGE);
	}

	evicted = ut_counter(u.vm, UFVM_CTR_EVICTIONS);
	table_fill(false);
	for (int pg = 24; pg < (write ? 80 : 40); pg += 2)
		ut_pread(u.f, buf, 2 * PAGE, (off_t)pg * PAGE);	/* evicts 8..15 */
	table_empty();
	evicted = ut_counter(u.vm, UFVM_CTR_EVICTIONS) - evicted;
	cr_assert_geq(evicted, 8, "%llu pages evicted with the table full, want 8 or more",
		      (unsigned long long)evicted);

	/*
	 * From the top: the evicted pages in the middle (8..15) before those
	 * at the start of the mapping (whose zap, which splits it at one end
	 * only, may have worked): a fault there would repair the rest (the
	 * backend coalesces at the next fault after a failed zap).
	 */
	for (int pg = 23; pg >= 0; pg--) {
		uint64_t off = (uint64_t)pg * PAGE + 9;

		if (!write) {
			bad += m[off] != pattern_byte(SEED, off);
			continue;
		}
		m[off] = 'W';
	}
	if (write) {
		assert_ok(ufvm_fsync(u.f));
		for (int pg = 0; pg < 24; pg++)
			bad += ut_store_byte(u.path, (off_t)pg * PAGE) != (uint8_t)(0xa0 + pg) ||
			       ut_store_byte(u.path, (off_t)pg * PAGE + 9) != 'W';
	}
	cr_assert_eq(bad, 0, "%d of 24 mapped pages %s after reclaim with the mapping table "
		     "full", bad, write ? "lost a write" : "read wrong bytes");
	ut_unmap(u.vm, m, 256 * PAGE);
	ut_file_close(&u);
}

Test(sigsegv_zap_enomem, mapped_pages_read_the_file_after_reclaim_at_the_limit, .timeout = 60)
{
	reclaim_with_table_full(false);
}

Test(sigsegv_zap_enomem, writes_after_reclaim_at_the_limit_reach_store, .timeout = 60)
{
	reclaim_with_table_full(true);
}
