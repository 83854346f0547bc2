// SPDX-License-Identifier: MIT
/*
 * bench/retry.c - `ufvm bench retry` (seed 003): does a fault waiting for
 * the store stall everyone who needs the address-space lock?
 *
 * The seed's experiment.  Thread A reads one byte of pages of a large file
 * in a random order (every page once, so every touch is a major fault: a
 * store read with --latency-us of injected latency).  Thread B loops
 * ufvm_map() + ufvm_unmap() of another, small file; both take mmap_lock for
 * writing.  With retry off, A's fault holds mmap_lock (shared) across the
 * store read and B waits behind it; with retry on, the fault drops it.
 * Reported: B's iterations/s and A's faults/s, retry off and on (medians of
 * --reps runs of --seconds each), and the ratio of B's rates.
 *
 * The store file is sparse (reads of a hole cost no disk I/O): the latency
 * is the injected one.  The cache budget is set to --cache pages.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench/bench.h"

#define RT_MAX_REPS	16	/* --reps at most (the per-pass figures are kept) */

static uint64_t rt_latency_us = 2000;
static uint64_t rt_pages = 65536;
static uint64_t rt_small_pages = 16;
static uint64_t rt_ms = 1500;
static uint64_t rt_cache = 1024;

static const struct bench_opt rt_opts[] = {
	{ "latency-us", BOPT_UINT, &rt_latency_us, NULL, "injected latency of each store read" },
	{ "pages", BOPT_UINT, &rt_pages, NULL, "pages of thread A's file" },
	{ "small-pages", BOPT_UINT, &rt_small_pages, NULL, "pages of thread B's file" },
	{ "ms", BOPT_UINT, &rt_ms, NULL, "duration of each run, milliseconds" },
	{ "cache", BOPT_PAGES, &rt_cache, NULL, "page-cache budget: pages, or a size (K/M/G)" },
	{ NULL },
};

struct rt_shared {
	struct ufvm *vm;
	const char *small;
	char *base;
	const uint64_t *order;
	volatile bool stop;
	uint64_t touches, iters, b_max_ns;
	int err;
};

static void *rt_reader(void *arg)
{
	struct rt_shared *sh = arg;
	uint64_t i;

	for (i = 0; i < rt_pages && !sh->stop; i++) {
		bench_touch(sh->base + sh->order[i] * BENCH_PAGE);
		__atomic_store_n(&sh->touches, i + 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

static void *rt_mapper(void *arg)
{
	struct rt_shared *sh = arg;
	size_t len = rt_small_pages * BENCH_PAGE;

	while (!sh->stop) {
		uint64_t t0 = bench_now_ns();
		void *addr;
		int err = ufvm_map(sh->vm, sh->small, 0, len, UFVM_PROT_READ, 0, &addr);

		if (!err)
			err = ufvm_unmap(sh->vm, addr, len);
		if (err) {
			sh->err = err;
			break;
		}
		t0 = bench_now_ns() - t0;
		if (t0 > sh->b_max_ns)
			sh->b_max_ns = t0;
		__atomic_store_n(&sh->iters, sh->iters + 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

struct rt_result {
	double mapunmap_per_s, faults_per_s, b_max_ms;
};

/* One run of --ms with @retry; A starts at a fresh place of its order. */
static int rt_once(const struct ufvm_config *base, unsigned int retry, const char *big,
		   const char *small, uint64_t seed, struct rt_result *res,
		   struct bench_ctx *bx, const char *embed)
{
	struct ufvm_config cfg = *base;
	struct rt_shared sh = { .small = small };
	pthread_t a, b;
	struct bench_vm bv;
	uint64_t t0, i0, t1, i1, ns;
	uint64_t *order;
	int err;

	order = bench_perm(rt_pages, 1, seed);
	if (!order)
		return -ENOMEM;
	cfg.retry = retry;
	cfg.store_latency_us = bench_clamp_uint(rt_latency_us);	/* checked */
	cfg.cache_pages = rt_cache;
	err = bench_vm_open(&bv, &cfg, big, rt_pages);
	if (err)
		goto out;
	sh.vm = bv.vm;
	sh.base = bv.base;
	sh.order = order;
	if (pthread_create(&a, NULL, rt_reader, &sh)) {
		err = -EAGAIN;
		goto out_close;
	}
	if (pthread_create(&b, NULL, rt_mapper, &sh)) {
		sh.stop = true;
		pthread_join(a, NULL);
		err = -EAGAIN;
		goto out_close;
	}
	usleep(100000);		/* warm-up */
	t0 = bench_now_ns();
	i0 = __atomic_load_n(&sh.iters, __ATOMIC_RELAXED);
	t1 = __atomic_load_n(&sh.touches, __ATOMIC_RELAXED);
	sh.b_max_ns = 0;
	usleep((useconds_t)(rt_ms * 1000));
	ns = bench_now_ns() - t0;
	i1 = __atomic_load_n(&sh.iters, __ATOMIC_RELAXED) - i0;
	t1 = __atomic_load_n(&sh.touches, __ATOMIC_RELAXED) - t1;
	sh.stop = true;
	pthread_join(a, NULL);
	pthread_join(b, NULL);
	res->mapunmap_per_s = (double)i1 * 1e9 / (double)ns;
	res->faults_per_s = (double)t1 * 1e9 / (double)ns;
	res->b_max_ms = (double)sh.b_max_ns / 1e6;
	err = sh.err;
	if (err)
		fprintf(stderr, "ufvm bench retry: map/unmap: %s\n", ufvm_strerror(err));
	if (embed)
		bench_embed_stats(bx, embed, bv.vm);
out_close:
	bench_vm_close(&bv);
out:
	free(order);
	return err;
}

static int rt_check(const struct bench_ctx *bx)
{
	struct ufvm_config cfg;

	if (bench_check_range("retry", "reps", bx->reps, 1, RT_MAX_REPS) || bench_config(&cfg))
		return -EINVAL;
	cfg.store_latency_us = bench_clamp_uint(rt_latency_us);
	if (bench_check_config_u64("retry", "latency-us", rt_latency_us, &cfg))
		return -EINVAL;
	cfg.cache_pages = rt_cache;
	if (bench_check_config_u64("retry", "cache", rt_cache, &cfg) ||
	    bench_check_range("retry", "ms", rt_ms, 100, BENCH_MS_MAX) ||
	    bench_check_range("retry", "pages", rt_pages, 16, BENCH_PAGES_MAX) ||
	    bench_check_range("retry", "small-pages", rt_small_pages, 1, BENCH_PAGES_MAX))
		return -EINVAL;
	return 0;
}

static int rt_run(struct bench_ctx *bx)
{
	double m[2][3][RT_MAX_REPS];
	struct rt_result res = { 0 };
	struct ufvm_config cfg;
	struct jw *w = bx->jw;
	char big[4096], small[4096];
	double med[2][3];
	unsigned int r, on, reps = bx->reps;
	int err;

	err = bench_config(&cfg);
	if (err)
		return err;
	err = bench_file_create(bx, "retry-big", rt_pages, true, big, sizeof(big));
	if (err)
		return err;
	err = bench_file_create(bx, "retry-small", rt_small_pages, false, small, sizeof(small));
	if (err)
		goto out_big;
	jw_u64(w, "latency_us", rt_latency_us);
	jw_u64(w, "pages", rt_pages);
	jw_u64(w, "ms", rt_ms);
	jw_obj(w, "stats");
	for (r = 0; r < reps && !err; r++) {
		for (on = 0; on < 2 && !err; on++) {	/* side by side: off, on, off, on */
			err = rt_once(&cfg, on, big, small, r * 2 + on + 1, &res, bx,
				      r == reps - 1 ? (on ? "on" : "off") : NULL);
			m[on][0][r] = res.mapunmap_per_s;
			m[on][1][r] = res.faults_per_s;
			m[on][2][r] = res.b_max_ms;
		}
	}
	jw_end(w, '}');
	if (err)
		goto out;
	for (on = 0; on < 2; on++)
		for (r = 0; r < 3; r++)
			med[on][r] = bench_median(m[on][r], reps);

	fprintf(bx->out, "thread A: random major faults, %llu us store latency; thread B: "
		"ufvm_map+ufvm_unmap; medians of %u runs of %llu ms\n\n",
		(unsigned long long)rt_latency_us, reps, (unsigned long long)rt_ms);
	fprintf(bx->out, "%-10s %16s %14s %16s\n", "retry", "B map+unmap/s", "A faults/s",
		"B slowest (ms)");
	for (on = 0; on < 2; on++)
		fprintf(bx->out, "%-10s %16.0f %14.0f %16.2f\n", on ? "on" : "off",
			med[on][0], med[on][1], med[on][2]);
	fprintf(bx->out, "\nratio (B on / off): %.1f  (target >= 100: %s)\n",
		med[1][0] / med[0][0], med[1][0] / med[0][0] >= 100 ? "met" : "MISSED");

	for (on = 0; on < 2; on++) {
		jw_obj(w, on ? "on" : "off");
		jw_num(w, "mapunmap_per_s", med[on][0]);
		jw_num(w, "faults_per_s", med[on][1]);
		jw_num(w, "mapunmap_max_ms", med[on][2]);
		jw_end(w, '}');
	}
	jw_num(w, "cache_pages", (double)rt_cache);
	jw_num(w, "ratio", med[1][0] / med[0][0]);
	jw_num(w, "faults_ratio", med[1][1] / med[0][1]);
out:
	bench_file_remove(small);
out_big:
	bench_file_remove(big);
	return err;
}

const struct bench_def bench_retry = {
	.name = "retry",
	.summary = "map/unmap throughput beside faults waiting for a slow store, retry off/on",
	.opts = rt_opts,
	.check = rt_check,
	.run = rt_run,
	.in_all = true,
};
