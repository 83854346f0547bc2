// SPDX-License-Identifier: MIT
/*
 * bench/spec.c - `ufvm bench spec` (seed 002): cached faults with and
 * without the speculative (RCU, no mmap_lock) path, beside a writer.
 *
 * Two fault threads share one region of a cached file, each its own half:
 * touch every page of the half, ufvm_zap() it, again.  A third thread, the
 * writer, loops ufvm_map() + ufvm_unmap() of another file: both take
 * mmap_lock for writing, which the locked fault path needs shared.
 * Faults/s is ufvm's fault counter over the run.  Runs: speculation off and
 * on, with the writer and without it (idle), side by side, --reps times
 * each; medians.  The fallback counters are those of the speculative runs.
 *
 * --fault-around defaults to 1 here so that every touch is a fault (the
 * zap, which takes mmap_lock too, then comes once per half-region of
 * faults); any window can be chosen.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench/bench.h"

#define SP_MAX_REPS	16	/* --reps at most (the per-pass figures are kept) */

static uint64_t sp_pages = 4096;
static uint64_t sp_ms = 1000;
static uint64_t sp_window = 1;
static uint64_t sp_threads = 2;

static const struct bench_opt sp_opts[] = {
	{ "pages", BOPT_UINT, &sp_pages, NULL, "pages of the faulted region" },
	{ "ms", BOPT_UINT, &sp_ms, NULL, "duration of each run, milliseconds" },
	{ "fault-around", BOPT_UINT, &sp_window, NULL, "fault-around window" },
	{ "threads", BOPT_UINT, &sp_threads, NULL, "fault threads" },
	{ NULL },
};

#define SP_MAX_THREADS 16

static const unsigned int sp_fallbacks[] = {
	UFVM_CTR_SPEC_FALLBACK_NOREGION, UFVM_CTR_SPEC_FALLBACK_NOPAGE,
	UFVM_CTR_SPEC_FALLBACK_LOCKED, UFVM_CTR_SPEC_FALLBACK_NOTUPTODATE,
	UFVM_CTR_SPEC_FALLBACK_SEQ, UFVM_CTR_SPEC_FALLBACK_SIZE,
	UFVM_CTR_SPEC_FALLBACK_WRITE,
};
#define SP_NFB (sizeof(sp_fallbacks) / sizeof(sp_fallbacks[0]))

struct sp_shared {
	struct ufvm *vm;
	const char *other;
	char *base;
	uint64_t per_thread;
	volatile bool stop;
	uint64_t writer_iters;
	int err;
};

struct sp_faulter {
	struct sp_shared *sh;
	unsigned int id;
};

static void *sp_fault_main(void *arg)
{
	struct sp_faulter *ft = arg;
	struct sp_shared *sh = ft->sh;
	char *p = sh->base + ft->id * sh->per_thread * BENCH_PAGE;
	uint64_t i;

	while (!sh->stop) {
		for (i = 0; i < sh->per_thread; i++)
			bench_touch(p + i * BENCH_PAGE);
		if (ufvm_zap(sh->vm, p, sh->per_thread * BENCH_PAGE))
			break;
	}
	return NULL;
}

static void *sp_writer_main(void *arg)
{
	struct sp_shared *sh = arg;

	while (!sh->stop) {
		void *addr;
		int err = ufvm_map(sh->vm, sh->other, 0, 16 * BENCH_PAGE, UFVM_PROT_READ, 0, &addr);

		if (!err)
			err = ufvm_unmap(sh->vm, addr, 16 * BENCH_PAGE);
		if (err) {
			sh->err = err;
			break;
		}
		__atomic_store_n(&sh->writer_iters, sh->writer_iters + 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

struct sp_result {
	double faults_per_s, writer_per_s;
	uint64_t hits, fb[SP_NFB];
};

static int sp_once(const struct ufvm_config *base, unsigned int spec, bool writer,
		   const char *path, const char *other, struct sp_result *res,
		   struct bench_ctx *bx, const char *embed)
{
	struct ufvm_config cfg = *base;
	struct sp_faulter ft[SP_MAX_THREADS];
	struct sp_shared sh = { .other = other };
	struct ufvm_stats s0, s1;
	pthread_t th[SP_MAX_THREADS], wt;
	struct bench_vm bv;
	unsigned int i, n = 0;
	uint64_t t0, w0;
	int err;

	cfg.speculative = spec;
	cfg.fault_around = (unsigned int)sp_window;
	err = bench_vm_open_cached(&bv, &cfg, path, sp_pages);
	if (err)
		return err;
	sh.vm = bv.vm;
	sh.base = bv.base;
	sh.per_thread = sp_pages / sp_threads;
	for (n = 0; n < sp_threads; n++) {
		ft[n] = (struct sp_faulter){ .sh = &sh, .id = n };
		if (pthread_create(&th[n], NULL, sp_fault_main, &ft[n])) {
			err = -EAGAIN;
			goto stop;
		}
	}
	if (writer && pthread_create(&wt, NULL, sp_writer_main, &sh)) {
		writer = false;
		err = -EAGAIN;
		goto stop;
	}
	usleep(50000);
	w0 = __atomic_load_n(&sh.writer_iters, __ATOMIC_RELAXED);
	err = ufvm_stats(bv.vm, &s0);
	t0 = bench_now_ns();
	usleep((useconds_t)(sp_ms * 1000));
	if (!err)
		err = ufvm_stats(bv.vm, &s1);
	t0 = bench_now_ns() - t0;
	res->writer_per_s = (double)(__atomic_load_n(&sh.writer_iters, __ATOMIC_RELAXED) - w0) *
			    1e9 / (double)t0;
stop:
	sh.stop = true;
	for (i = 0; i < n; i++)
		pthread_join(th[i], NULL);
	if (writer)
		pthread_join(wt, NULL);
	if (!err)
		err = sh.err;
	if (!err) {
		res->faults_per_s = (double)(s1.counters[UFVM_CTR_FAULTS] -
					     s0.counters[UFVM_CTR_FAULTS]) * 1e9 / (double)t0;
		res->hits = s1.counters[UFVM_CTR_SPEC_HIT] - s0.counters[UFVM_CTR_SPEC_HIT];
		for (i = 0; i < SP_NFB; i++)
			res->fb[i] = s1.counters[sp_fallbacks[i]] - s0.counters[sp_fallbacks[i]];
		if (embed)
			bench_embed_stats(bx, embed, bv.vm);
	}
	bench_vm_close(&bv);
	return err;
}

struct sp_case {
	double off, on, writer_off, writer_on;
	uint64_t hits, fb[SP_NFB];
};

static void sp_json_case(struct jw *w, const char *key, const struct sp_case *c, bool writer)
{
	jw_obj(w, key);
	jw_obj(w, "off");
	jw_num(w, "faults_per_s", c->off);
	if (writer)
		jw_num(w, "writer_per_s", c->writer_off);
	jw_end(w, '}');
	jw_obj(w, "on");
	jw_num(w, "faults_per_s", c->on);
	if (writer)
		jw_num(w, "writer_per_s", c->writer_on);
	jw_end(w, '}');
	jw_num(w, "ratio", c->on / c->off);
	jw_end(w, '}');
}

static const char *sp_fb_name(unsigned int i)
{
	const char *n = ufvm_counter_name(sp_fallbacks[i]);
	const char *pfx = "spec_fallback_";

	return strncmp(n, pfx, strlen(pfx)) ? n : n + strlen(pfx);
}

static int sp_check(const struct bench_ctx *bx)
{
	if (bench_check_range("spec", "reps", bx->reps, 1, SP_MAX_REPS) ||
	    bench_check_range("spec", "pages", sp_pages, 1, BENCH_PAGES_MAX) ||
	    bench_check_range("spec", "threads", sp_threads, 1, SP_MAX_THREADS) ||
	    bench_check_range("spec", "fault-around", sp_window, 1, 256) ||
	    bench_check_range("spec", "ms", sp_ms, 100, BENCH_MS_MAX))
		return -EINVAL;
	if (sp_pages < sp_threads) {
		fprintf(stderr, "ufvm bench spec: --pages %llu: expected at least --threads "
			"(%llu)\n", (unsigned long long)sp_pages, (unsigned long long)sp_threads);
		return -EINVAL;
	}
	return 0;
}

static int sp_run(struct bench_ctx *bx)
{
	double v[2][2][2][SP_MAX_REPS];	/* [writer][spec][faults, writer rate][rep] */
	struct sp_case cs[2];
	struct sp_result res;
	struct ufvm_config cfg;
	struct jw *w = bx->jw;
	char path[4096], other[4096];
	unsigned int r, wr, on, i, reps = bx->reps;
	int err;

	err = bench_config(&cfg);
	if (err)
		return err;
	err = bench_file_create(bx, "spec", sp_pages, false, path, sizeof(path));
	if (err)
		return err;
	err = bench_file_create(bx, "spec-other", 16, false, other, sizeof(other));
	if (err)
		goto out_path;
	memset(cs, 0, sizeof(cs));
	for (r = 0; r < reps && !err; r++)
		for (wr = 0; wr < 2 && !err; wr++)
			for (on = 0; on < 2 && !err; on++) {
				memset(&res, 0, sizeof(res));
				err = sp_once(&cfg, on, wr, path, other, &res, bx,
					      r == reps - 1 && wr && on ? "stats" : NULL);
				v[wr][on][0][r] = res.faults_per_s;
				v[wr][on][1][r] = res.writer_per_s;
				if (on) {
					cs[wr].hits += res.hits;
					for (i = 0; i < SP_NFB; i++)
						cs[wr].fb[i] += res.fb[i];
				}
			}
	if (err)
		goto out;
	for (wr = 0; wr < 2; wr++) {
		cs[wr].off = bench_median(v[wr][0][0], reps);
		cs[wr].on = bench_median(v[wr][1][0], reps);
		cs[wr].writer_off = bench_median(v[wr][0][1], reps);
		cs[wr].writer_on = bench_median(v[wr][1][1], reps);
	}

	fprintf(bx->out, "%llu fault threads zap+refault a cached region of %llu pages "
		"(fault-around %llu); medians of %u runs of %llu ms\n\n",
		(unsigned long long)sp_threads, (unsigned long long)sp_pages,
		(unsigned long long)sp_window, reps, (unsigned long long)sp_ms);
	fprintf(bx->out, "%-22s %12s %12s %8s %14s %14s\n", "", "spec off", "spec on", "ratio",
		"writer/s off", "writer/s on");
	for (wr = 2; wr-- > 0;)
		fprintf(bx->out, "%-22s %12.0f %12.0f %8.2f %14.0f %14.0f\n",
			wr ? "faults/s, writer" : "faults/s, idle", cs[wr].off, cs[wr].on,
			cs[wr].on / cs[wr].off, cs[wr].writer_off, cs[wr].writer_on);
	fprintf(bx->out, "\nspeculative runs, summed:   %12s %12s\n", "writer", "idle");
	fprintf(bx->out, "  %-26s %12llu %12llu\n", "spec_hit",
		(unsigned long long)cs[1].hits, (unsigned long long)cs[0].hits);
	for (i = 0; i < SP_NFB; i++)
		fprintf(bx->out, "  %-26s %12llu %12llu\n", ufvm_counter_name(sp_fallbacks[i]),
			(unsigned long long)cs[1].fb[i], (unsigned long long)cs[0].fb[i]);
	fprintf(bx->out, "\ntargets (issue 3): ratio with the writer %.2f (>= 2: %s), "
		"idle %.2f (>= 0.95: %s)\n", cs[1].on / cs[1].off,
		cs[1].on / cs[1].off >= 2 ? "met" : "MISSED", cs[0].on / cs[0].off,
		cs[0].on / cs[0].off >= 0.95 ? "met" : "MISSED");

	jw_u64(w, "pages", sp_pages);
	jw_u64(w, "threads", sp_threads);
	jw_u64(w, "fault_around", sp_window);
	jw_u64(w, "ms", sp_ms);
	sp_json_case(w, "writer", &cs[1], true);
	sp_json_case(w, "idle", &cs[0], false);
	jw_obj(w, "fallbacks");
	for (wr = 2; wr-- > 0;) {
		jw_obj(w, wr ? "writer" : "idle");
		jw_u64(w, "spec_hit", cs[wr].hits);
		for (i = 0; i < SP_NFB; i++)
			jw_u64(w, sp_fb_name(i), cs[wr].fb[i]);
		jw_end(w, '}');
	}
	jw_end(w, '}');
out:
	bench_file_remove(other);
out_path:
	bench_file_remove(path);
	return err;
}

const struct bench_def bench_spec = {
	.name = "spec",
	.summary = "cached-fault throughput, speculation off/on, with a map/unmap writer and idle",
	.opts = sp_opts,
	.check = sp_check,
	.run = sp_run,
	.in_all = true,
};
