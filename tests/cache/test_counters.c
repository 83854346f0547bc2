// SPDX-License-Identifier: MIT
/*
 * test_counters.c - what reclaim and write-back report about themselves.
 *
 * - evict_hook_fires_for_every_eviction: UFVM_HOOK_EVICT ("reclaim dropped
 *   page a") fires for each page reclaim drops, the ones it evicts in
 *   batches included: at any moment the hook has fired at least as often
 *   as UFVM_CTR_EVICTIONS counts (the counter is raised after the hook).
 */
#include <criterion/criterion.h>
#include <stdatomic.h>
#include <string.h>

#include "check.h"

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
	char path[TMPSTORE_PATH_MAX];
	struct ufvm_config cfg;
	struct ufvm_stats st;
	struct ufvm_file *f;
	struct ufvm *vm;
	uint8_t buf[PAGE];
	unsigned int i;

	cr_assert(ufvm_config_init(&cfg) == 0);
	cfg.cache_pages = budget;
	ut_store("ev", (off_t)(npages * PAGE), SEED, path);
	vm = ut_open(&cfg);
	assert_ok(ufvm_debug_hook(vm, count_evict, &h));
	assert_ok(ufvm_file_open(vm, path, UFVM_RDONLY, &f));
	for (i = 0; i < npages; i++)
		ut_pread(f, buf, PAGE, (off_t)(i * PAGE));
	assert_ok(ufvm_stats(vm, &st));
	cr_assert_gt(st.counters[UFVM_CTR_EVICTIONS], npages / 2, "only %llu evictions",
		     (unsigned long long)st.counters[UFVM_CTR_EVICTIONS]);
	cr_assert_geq(atomic_load(&h.evicts), st.counters[UFVM_CTR_EVICTIONS],
		      "the evict hook fired %lu times for %llu evictions",
		      atomic_load(&h.evicts), (unsigned long long)st.counters[UFVM_CTR_EVICTIONS]);
	cr_assert_eq(atomic_load(&h.bad), 0, "the hook was given offsets outside the file");
	assert_ok(ufvm_file_close(f));
	assert_ok(ufvm_debug_hook(vm, NULL, NULL));
	ut_close(vm);
}
