// SPDX-License-Identifier: MIT
/*
 * test_counters.c - what reclaim and write-back report about themselves.
 *
 * - evict_hook_fires_for_every_eviction: UFVM_HOOK_EVICT ("reclaim dropped
 *   page a") fires for each page reclaim drops, the ones it evicts in
 *   batches included: at any moment the hook has fired at least as often
 *   as UFVM_CTR_EVICTIONS counts (the counter is raised after the hook).
 * - flush_pages_counts_pages_written: UFVM_CTR_FLUSH_PAGES counts the pages
 *   the background flusher wrote, not the drop in the dirty count while it
 *   ran: with the flusher the only writer to the store, it ends equal to
 *   UFVM_CTR_STORE_WRITE_PAGES although a thread re-dirties the pages all
 *   along; and it does not move while every store write fails.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "check.h"
#include "race.h"

#define SEED	0x6374

struct hook_count {
	atomic_ulong evicts;
	atomic_ulong bad;	/* page offsets outside the file */
	uint64_t npages;
};

static void count_evict(void *arg, unsigned int point, uint64_t a, uint64_t b)
{
	struct hook_count *h = arg;

	(void)b;
	if (point != UFVM_HOOK_EVICT)
		return;
	atomic_fetch_add(&h->evicts, 1);
	if (a >= h->npages)
		atomic_fetch_add(&h->bad, 1);
}

Test(counters, evict_hook_fires_for_every_eviction, .timeout = 30)
{
	const unsigned int budget = 64, npages = 1024;
	struct hook_count h = { .npages = npages };
	uint8_t buf[PAGE];
	unsigned int i;
	struct ut_file u;
	struct ufvm_stats st;
	struct ufvm_config cfg;

	ut_config_budget(&cfg, budget);
	ut_file_open(&u, &cfg, "ev", npages, SEED, UFVM_RDONLY);
	assert_ok(ufvm_debug_hook(u.vm, count_evict, &h));
	for (i = 0; i < npages; i++)
		ut_pread(u.f, buf, PAGE, (off_t)(i * PAGE));
	assert_ok(ufvm_stats(u.vm, &st));
	cr_assert_gt(st.counters[UFVM_CTR_EVICTIONS], npages / 2, "only %llu evictions",
		     (unsigned long long)st.counters[UFVM_CTR_EVICTIONS]);
	cr_assert_geq(atomic_load(&h.evicts), st.counters[UFVM_CTR_EVICTIONS],
		      "the evict hook fired %lu times for %llu evictions",
		      atomic_load(&h.evicts), (unsigned long long)st.counters[UFVM_CTR_EVICTIONS]);
	cr_assert_eq(atomic_load(&h.bad), 0, "the hook was given offsets outside the file");
	assert_ok(ufvm_debug_hook(u.vm, NULL, NULL));
	ut_file_close(&u);
}

struct redirtier {
	struct ufvm_file *f;
	unsigned int npages;
	uint64_t until_us;
	atomic_long err;
};

static void *redirty_main(void *arg)
{
	struct redirtier *r = arg;
	uint8_t buf[64];
	unsigned int i = 0;
	ssize_t n;

	memset(buf, 0x3c, sizeof(buf));
	while (race_now_us() < r->until_us) {
		n = ufvm_pwrite(r->f, buf, sizeof(buf), (off_t)(i * PAGE));
		if (n != (ssize_t)sizeof(buf))
			atomic_store(&r->err, n < 0 ? n : -EIO);
		i = (i + 1) % r->npages;
	}
	return NULL;
}

/*
 * Wait until nothing is dirty, the store saw no write for a while, and the
 * flusher, which wrote every page, has counted them all: it counts a pass's
 * pages once the pass is done, after its last write.
 */
static void wait_flushed(struct ufvm *vm, struct ufvm_stats *st)
{
	uint64_t deadline = race_now_us() + 10 * 1000000ull, prev = UINT64_MAX;

	for (;;) {
		assert_ok(ufvm_stats(vm, st));
		if (!st->dirty_pages && st->counters[UFVM_CTR_STORE_WRITE_PAGES] == prev &&
		    st->counters[UFVM_CTR_FLUSH_PAGES] == prev)
			return;
		prev = st->counters[UFVM_CTR_STORE_WRITE_PAGES];
		cr_assert_lt(race_now_us(), deadline, "the flusher never finished: FLUSH_PAGES "
			     "%llu, the store wrote %llu pages",
			     (unsigned long long)st->counters[UFVM_CTR_FLUSH_PAGES],
			     (unsigned long long)prev);
		race_sleep_us(300000);	/* three flush intervals */
	}
}

Test(counters, flush_pages_counts_pages_written, .timeout = 30)
{
	const unsigned int npages = 48;	/* past the dirty limit, under the watermarks */
	struct redirtier r = { .npages = npages };
	char path[TMPSTORE_PATH_MAX];
	struct ufvm_config cfg;
	struct ufvm_stats st;
	uint64_t flushed;
	pthread_t th;
	struct ufvm *vm;

	cr_assert(ufvm_config_init(&cfg) == 0);
	cfg.cache_pages = 64;		/* dirty limit 32 */
	cfg.dirty_expire_ms = 100;	/* the flusher wakes every 100 ms */
	ut_store("fl", (off_t)(npages * PAGE), SEED, path);
	vm = ut_open(&cfg);
	assert_ok(ufvm_file_open(vm, path, UFVM_RDWR, &r.f));
	r.until_us = race_now_us() + 600000;
	cr_assert(pthread_create(&th, NULL, redirty_main, &r) == 0);
	pthread_join(th, NULL);
	cr_assert_eq(atomic_load(&r.err), 0, "ufvm_pwrite failed: %ld", atomic_load(&r.err));
	wait_flushed(vm, &st);
	/*
	 * A run the flusher cleaned may not be written yet (the page counts
	 * as clean from then on, and a loaded machine can hold the flusher
	 * past a sample): ufvm_fsync() waits for the runs in flight (with
	 * nothing dirty, it writes nothing itself); then their pass counts.
	 */
	assert_ok(ufvm_fsync(r.f));
	wait_flushed(vm, &st);
	cr_assert_eq(st.counters[UFVM_CTR_EVICTIONS], 0, "reclaim wrote pages too");
	cr_assert_gt(st.counters[UFVM_CTR_STORE_WRITE_PAGES], 0);
	cr_assert_eq(st.counters[UFVM_CTR_FLUSH_PAGES], st.counters[UFVM_CTR_STORE_WRITE_PAGES],
		     "FLUSH_PAGES %llu, but the flusher wrote %llu pages",
		     (unsigned long long)st.counters[UFVM_CTR_FLUSH_PAGES],
		     (unsigned long long)st.counters[UFVM_CTR_STORE_WRITE_PAGES]);

	/* Every store write fails: nothing is written, nothing counted. */
	flushed = st.counters[UFVM_CTR_FLUSH_PAGES];
	assert_ok(ufvm_inject(r.f, UFVM_INJECT_WRITE_EIO, 0, (off_t)(npages * PAGE)));
	r.until_us = race_now_us() + 300000;
	redirty_main(&r);
	race_sleep_us(500000);
	assert_ok(ufvm_stats(vm, &st));
	cr_assert_gt(st.counters[UFVM_CTR_STORE_ERRORS], 0, "the flusher did not try");
	cr_assert_eq(st.counters[UFVM_CTR_FLUSH_PAGES], flushed,
		     "FLUSH_PAGES rose by %llu while every store write failed",
		     (unsigned long long)(st.counters[UFVM_CTR_FLUSH_PAGES] - flushed));
	assert_ok(ufvm_inject(r.f, UFVM_INJECT_WRITE_EIO, 0, 0));
	cr_assert(ufvm_fsync(r.f) == -EIO, "the failed write-back was not reported");
	assert_ok(ufvm_fsync(r.f));
	assert_ok(ufvm_file_close(r.f));
	ut_close(vm);
}
