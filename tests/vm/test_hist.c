/* SPDX-License-Identifier: MIT */
/*
 * test_hist.c - the latency histograms (vm/hist.c) and what ufvm_stats()
 * builds from them.
 *
 * Checks:
 *  - quantiles are nearest rank: the ceil(q * n)-th smallest value (p50 of
 *    1..10 is 5, p90 is 9, p99 of 1..100 is 99; q = 0 is the smallest, q = 1
 *    the largest);
 *  - a histogram several threads record into with vm_hist_add_shared()
 *    loses no sample, and keeps the largest;
 *  - a thread that serves faults of more instances than it has shard slots
 *    (the in-thread backends) still records their latency: every instance's
 *    faults show up in its histograms;
 *  - each path's count in a snapshot is the sum of its buckets, in
 *    ufvm_stats() and in ufvm_stats_write_json(), while faults go on.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

#include "vm/hist.h"

static void hist_of(struct vm_hist *h, uint64_t lo, uint64_t hi)
{
	uint64_t v;

	memset(h, 0, sizeof(*h));
	for (v = lo; v <= hi; v++)
		vm_hist_add(h, v);
}

Test(hist, quantiles_are_nearest_rank, .timeout = 10)
{
	struct vm_hist *h = calloc(1, sizeof(*h));

	cr_assert(h);
	hist_of(h, 1, 10);	/* below 128 ns every value has its own bucket */
	cr_assert_eq(vm_hist_quantile(h, 0.5), 5);
	cr_assert_eq(vm_hist_quantile(h, 0.9), 9);
	cr_assert_eq(vm_hist_quantile(h, 0.91), 10);
	cr_assert_eq(vm_hist_quantile(h, 0), 1);
	cr_assert_eq(vm_hist_quantile(h, 1), 10);
	hist_of(h, 1, 100);
	cr_assert_eq(vm_hist_quantile(h, 0.99), 99);
	cr_assert_eq(vm_hist_quantile(h, 0.999), 100);
	memset(h, 0, sizeof(*h));
	vm_hist_add(h, 10);
	vm_hist_add(h, 100);
	cr_assert_eq(vm_hist_quantile(h, 0.5), 10, "p50 of {10, 100} is 10");
	free(h);
}

#define SHARED_THREADS	4
#define SHARED_ADDS	50000

static void *add_shared_main(void *arg)
{
	struct vm_hist *h = arg;
	unsigned int i;

	for (i = 0; i < SHARED_ADDS; i++)
		vm_hist_add_shared(h, 100 + i % 5000);
	return NULL;
}

Test(hist, shared_adds_lose_nothing, .timeout = 20)
{
	struct vm_hist *h = calloc(1, sizeof(*h));
	pthread_t th[SHARED_THREADS];
	uint64_t sum = 0;
	unsigned int i;

	cr_assert(h);
	for (i = 0; i < SHARED_THREADS; i++)
		cr_assert_eq(pthread_create(&th[i], NULL, add_shared_main, h), 0);
	for (i = 0; i < SHARED_THREADS; i++)
		pthread_join(th[i], NULL);
	for (i = 0; i < HIST_BUCKETS; i++)
		sum += h->b[i];
	cr_assert_eq(sum, SHARED_THREADS * SHARED_ADDS, "buckets hold %llu samples",
		     (unsigned long long)sum);
	cr_assert_eq(h->count, SHARED_THREADS * SHARED_ADDS);
	cr_assert_eq(h->max, 100 + 4999);
	free(h);
}

#define INSTANCES	6	/* more than a thread's shard slots (4) */

static uint64_t latency_count(const struct ufvm_stats *st)
{
	uint64_t n = 0;
	unsigned int i;

	for (i = 0; i < UFVM_PATH__COUNT; i++)
		n += st->latency[i].count;
	return n;
}

Test(hist, every_instance_of_an_inthread_thread_records_latency, .timeout = 30)
{
	char path[TMPSTORE_PATH_MAX];
	struct ufvm *vm[INSTANCES];
	uint8_t *map[INSTANCES];
	struct ufvm_config cfg;
	struct ufvm_stats st;
	unsigned int i;

	ut_store("h", 4 * PAGE, 0x4157, path);
	assert_ok(ufvm_config_init(&cfg));
	cfg.backend = UFVM_BACKEND_SIGSEGV;	/* faults served by this thread */
	for (i = 0; i < INSTANCES; i++) {
		vm[i] = ut_open(&cfg);
		map[i] = ut_map(vm[i], path, 0, 4 * PAGE, UFVM_PROT_READ);
		assert_pattern(0x4157, map[i], 0, 2 * PAGE, "a read through instance %u", i);
	}
	for (i = 0; i < INSTANCES; i++) {
		assert_ok(ufvm_stats(vm[i], &st));
		cr_assert_gt(st.counters[UFVM_CTR_FAULTS], 0, "instance %u took no fault", i);
		cr_assert_gt(latency_count(&st), 0,
			     "instance %u: %llu faults, none in a latency histogram", i,
			     (unsigned long long)st.counters[UFVM_CTR_FAULTS]);
	}
	for (i = 0; i < INSTANCES; i++) {
		ut_unmap(vm[i], map[i], 4 * PAGE);
		ut_close(vm[i]);
	}
}

struct faulter {
	struct ufvm *vm;
	uint8_t *map;
	atomic_int stop;
};

static void *faulter_main(void *arg)
{
	struct faulter *f = arg;
	unsigned int i;

	while (!atomic_load(&f->stop)) {
		for (i = 0; i < 64; i++)
			(void)*(volatile uint8_t *)(f->map + i * PAGE);
		assert_ok(ufvm_zap(f->vm, f->map, 64 * PAGE));
	}
	return NULL;
}

/*
 * Check each path's "count" against its buckets in one JSON snapshot.
 * Return: true, or false with what differs in @why.
 */
static bool json_counts_match(const char *text, char *why, size_t len)
{
	const char *p = strstr(text, "\"latency\":{");
	unsigned int i;

	if (!p) {
		snprintf(why, len, "no latency object");
		return false;
	}
	for (i = 0; i < UFVM_PATH__COUNT; i++) {
		char key[64];
		unsigned long long count, low, width, n, sum = 0;
		const char *b;

		snprintf(key, sizeof(key), "\"%s\":{\"count\":", ufvm_path_name(i));
		p = strstr(p, key);
		b = p ? strstr(p, "\"buckets\":[") : NULL;
		if (!b || sscanf(p + strlen(key), "%llu", &count) != 1) {
			snprintf(why, len, "no count or buckets for %s", ufvm_path_name(i));
			return false;
		}
		b += strlen("\"buckets\":[");
		while (sscanf(b, "[%llu,%llu,%llu]", &low, &width, &n) == 3) {
			sum += n;
			b = strchr(b, ']') + 1;
			if (*b == ',')
				b++;
		}
		if (count != sum) {
			snprintf(why, len, "path %s: count %llu, buckets hold %llu",
				 ufvm_path_name(i), count, sum);
			return false;
		}
		p = b;
	}
	return true;
}

Test(hist, snapshot_counts_match_buckets, .timeout = 60)
{
	char path[TMPSTORE_PATH_MAX];
	struct faulter f = { 0 };
	struct ufvm_stats st;
	pthread_t th;
	unsigned int snap, i;
	bool ok = true;
	char why[160] = "";

	ut_store("c", 64 * PAGE, 0x6375, path);
	f.vm = ut_open(NULL);
	f.map = ut_map(f.vm, path, 0, 64 * PAGE, UFVM_PROT_READ);
	cr_assert_eq(pthread_create(&th, NULL, faulter_main, &f), 0);
	for (snap = 0; snap < 100 && ok; snap++) {
		char *text = NULL;
		size_t len = 0;
		FILE *m = open_memstream(&text, &len);

		if (!m || ufvm_stats_write_json(f.vm, m)) {
			snprintf(why, sizeof(why), "writing the snapshot failed");
			ok = false;
		}
		if (m)
			fclose(m);
		ok = ok && json_counts_match(text, why, sizeof(why));
		free(text);
		if (ok && ufvm_stats(f.vm, &st)) {
			snprintf(why, sizeof(why), "ufvm_stats failed");
			ok = false;
		}
		for (i = 0; ok && i < UFVM_PATH__COUNT; i++) {
			if (st.latency[i].count && !(st.latency[i].p50_ns && st.latency[i].max_ns)) {
				snprintf(why, sizeof(why), "path %s: %llu faults, p50 %llu, max %llu",
					 ufvm_path_name(i), (unsigned long long)st.latency[i].count,
					 (unsigned long long)st.latency[i].p50_ns,
					 (unsigned long long)st.latency[i].max_ns);
				ok = false;
			}
		}
	}
	atomic_store(&f.stop, 1);
	pthread_join(th, NULL);
	cr_assert(ok, "snapshot %u: %s", snap - 1, why);
	ut_unmap(f.vm, f.map, 64 * PAGE);
	ut_close(f.vm);
}
