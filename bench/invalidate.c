// SPDX-License-Identifier: MIT
/*
 * bench/invalidate.c - `ufvm bench invalidate` (seeds 001, 000): cached
 * faults beside hole punches of the same file, per invalidate-lock mode.
 *
 * One file, two parts.  The hot part is mapped and cached; a reader thread
 * touches every page and zaps it, again (cached faults: with either lock
 * they take no invalidate lock, which is what the seed 000 argument is
 * about).  The punch part is not mapped: a puncher thread loops over its
 * chunks: ufvm_pwrite() a new generation of the chunk, ufvm_fsync() (the
 * store now holds it), ufvm_punch() the chunk, then ufvm_pread() it and
 * check that it reads as zeros; a non-zero byte is a violation (stale data
 * re-instantiated after the punch returned).  A filler thread meanwhile
 * ufvm_pread()s the punch part, page after page (page-cache fills racing
 * the punches).  A debug hook sleeps --window-us at the point where a punch
 * has dropped the cached pages and not yet changed the store, so the race
 * the lock exists for happens often enough to be seen with mode none.
 *
 * Reported per mode (rwsem, addblock, none): the reader's faults/s, the
 * filler's page preads/s (mostly cached hits, some fills), punches/s, and the violations.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench/bench.h"

#define IV_MAX_REPS	16	/* --reps at most (the per-pass figures are kept) */

static uint64_t iv_hot = 4096;
static uint64_t iv_punch = 1024;
static uint64_t iv_chunk = 16;
static uint64_t iv_ms = 1500;
static uint64_t iv_window_us = 200;
static uint64_t iv_fa = 1;

static const struct bench_opt iv_opts[] = {
	{ "hot-pages", BOPT_UINT, &iv_hot, NULL, "pages of the part faulted by the reader" },
	{ "punch-pages", BOPT_UINT, &iv_punch, NULL, "pages of the part punched and filled" },
	{ "chunk", BOPT_UINT, &iv_chunk, NULL, "pages per punch" },
	{ "ms", BOPT_UINT, &iv_ms, NULL, "duration of each run, milliseconds" },
	{ "window-us", BOPT_UINT, &iv_window_us, NULL,
	  "sleep between dropping the pages and changing the store (0: none)" },
	{ "fault-around", BOPT_UINT, &iv_fa, NULL, "fault-around window of the reader" },
	{ NULL },
};

static const struct {
	const char *name;
	unsigned int mode;
} iv_modes[] = {
	{ "rwsem", UFVM_INVALIDATE_RWSEM },
	{ "addblock", UFVM_INVALIDATE_ADDBLOCK },
	{ "none", UFVM_INVALIDATE_NONE },
};
#define IV_NMODES (sizeof(iv_modes) / sizeof(iv_modes[0]))

struct iv_shared {
	struct ufvm *vm;
	struct ufvm_file *f;
	char *hot;
	volatile bool stop;
	uint64_t punches, fills, violations;
	int err;
};

static void iv_hook(void *arg, unsigned int point, uint64_t a, uint64_t b)
{
	struct timespec ts = { 0, (long)iv_window_us * 1000 };

	if (point == UFVM_HOOK_INVALIDATED && iv_window_us)
		nanosleep(&ts, NULL);
}

static void *iv_reader(void *arg)
{
	struct iv_shared *sh = arg;
	uint64_t i;

	while (!sh->stop) {
		for (i = 0; i < iv_hot; i++)
			bench_touch(sh->hot + i * BENCH_PAGE);
		if (ufvm_zap(sh->vm, sh->hot, iv_hot * BENCH_PAGE))
			break;
	}
	return NULL;
}

static void *iv_filler(void *arg)
{
	struct iv_shared *sh = arg;
	char buf[BENCH_PAGE];
	uint64_t i = 0;

	while (!sh->stop) {
		off_t off = (off_t)((iv_hot + i) * BENCH_PAGE);

		if (ufvm_pread(sh->f, buf, sizeof(buf), off) < 0)
			break;
		__atomic_store_n(&sh->fills, sh->fills + 1, __ATOMIC_RELAXED);
		i = (i + 1) % iv_punch;
	}
	return NULL;
}

static void *iv_puncher(void *arg)
{
	struct iv_shared *sh = arg;
	size_t len = iv_chunk * BENCH_PAGE, j;
	uint64_t *buf = malloc(len), gen = 0, chunk = 0;

	if (!buf) {
		sh->err = -ENOMEM;
		return NULL;
	}
	while (!sh->stop) {
		off_t off = (off_t)((iv_hot + chunk * iv_chunk) * BENCH_PAGE);
		ssize_t r;
		int err;

		gen++;
		for (j = 0; j < len / sizeof(uint64_t); j++)
			buf[j] = bench_word(gen * 0x10000 + j) | 1;	/* never zero */
		r = ufvm_pwrite(sh->f, buf, len, off);
		err = r < 0 ? (int)r : ufvm_fsync(sh->f);
		if (!err)
			err = ufvm_punch(sh->f, off, (off_t)len);
		if (!err) {
			r = ufvm_pread(sh->f, buf, len, off);
			err = r < 0 ? (int)r : 0;
		}
		if (err) {
			sh->err = err;
			break;
		}
		for (j = 0; j < len / sizeof(uint64_t); j++)
			if (buf[j]) {
				sh->violations++;
				break;
			}
		__atomic_store_n(&sh->punches, sh->punches + 1, __ATOMIC_RELAXED);
		chunk = (chunk + 1) % (iv_punch / iv_chunk);
	}
	free(buf);
	return NULL;
}

struct iv_result {
	double faults_per_s, fills_per_s, punches_per_s;
	uint64_t violations;
};

static int iv_once(const struct ufvm_config *base, unsigned int mode, const char *path,
		   struct iv_result *res, struct bench_ctx *bx, const char *embed)
{
	void *(*fns[3])(void *) = { iv_reader, iv_filler, iv_puncher };
	struct ufvm_config cfg = *base;
	struct iv_shared sh = { 0 };
	uint64_t f0, p0, c0, t0;
	pthread_t th[3];
	unsigned int i, n;
	void *addr;
	int err;

	cfg.invalidate = mode;
	cfg.fault_around = (unsigned int)iv_fa;
	err = bench_open(&cfg, &sh.vm);
	if (err)
		return err;
	err = ufvm_file_open(sh.vm, path, UFVM_RDWR, &sh.f);
	if (!err)
		err = ufvm_map_file(sh.f, 0, iv_hot * BENCH_PAGE, UFVM_PROT_READ, 0, &addr);
	if (!err)
		err = bench_cache_fill(sh.f, 0, iv_hot, 1);
	if (!err)
		err = ufvm_debug_hook(sh.vm, iv_hook, NULL);
	if (err) {
		fprintf(stderr, "ufvm bench invalidate: setting up: %s\n", ufvm_strerror(err));
		goto out;
	}
	sh.hot = addr;
	for (n = 0; n < 3; n++)
		if (pthread_create(&th[n], NULL, fns[n], &sh)) {
			err = -EAGAIN;
			break;
		}
	if (!err) {
		usleep(50000);
		f0 = bench_counter(sh.vm, UFVM_CTR_FAULTS);
		p0 = __atomic_load_n(&sh.punches, __ATOMIC_RELAXED);
		c0 = __atomic_load_n(&sh.fills, __ATOMIC_RELAXED);
		t0 = bench_now_ns();
		usleep((useconds_t)(iv_ms * 1000));
		t0 = bench_now_ns() - t0;
		res->faults_per_s = (double)(bench_counter(sh.vm, UFVM_CTR_FAULTS) - f0) * 1e9 /
				    (double)t0;
		res->punches_per_s = (double)(__atomic_load_n(&sh.punches, __ATOMIC_RELAXED) - p0) *
				     1e9 / (double)t0;
		res->fills_per_s = (double)(__atomic_load_n(&sh.fills, __ATOMIC_RELAXED) - c0) *
				   1e9 / (double)t0;
	}
	sh.stop = true;
	for (i = 0; i < n; i++)
		pthread_join(th[i], NULL);
	res->violations = sh.violations;
	if (!err && embed)
		bench_embed_stats(bx, embed, sh.vm);
	if (!err && sh.err) {
		err = sh.err;
		fprintf(stderr, "ufvm bench invalidate: puncher: %s\n", ufvm_strerror(err));
	}
out:
	ufvm_close(sh.vm);
	return err;
}

static int iv_check(const struct bench_ctx *bx)
{
	/* --window-us is a struct timespec's tv_nsec: under a second */
	if (bench_check_range("invalidate", "reps", bx->reps, 1, IV_MAX_REPS) ||
	    bench_check_range("invalidate", "hot-pages", iv_hot, 1, BENCH_PAGES_MAX) ||
	    bench_check_range("invalidate", "punch-pages", iv_punch, 1, BENCH_PAGES_MAX) ||
	    bench_check_range("invalidate", "chunk", iv_chunk, 1, BENCH_PAGES_MAX) ||
	    bench_check_range("invalidate", "fault-around", iv_fa, 1, 256) ||
	    bench_check_range("invalidate", "window-us", iv_window_us, 0, 999999) ||
	    bench_check_range("invalidate", "ms", iv_ms, 100, BENCH_MS_MAX))
		return -EINVAL;
	if (iv_punch < iv_chunk || iv_punch % iv_chunk) {
		fprintf(stderr, "ufvm bench invalidate: --punch-pages %llu: expected a multiple "
			"of --chunk (%llu)\n", (unsigned long long)iv_punch,
			(unsigned long long)iv_chunk);
		return -EINVAL;
	}
	return 0;
}

static int iv_run(struct bench_ctx *bx)
{
	double v[IV_NMODES][3][IV_MAX_REPS];
	uint64_t viol[IV_NMODES] = { 0 };
	struct iv_result res;
	struct ufvm_config cfg;
	struct jw *w = bx->jw;
	char path[4096];
	unsigned int r, m, k, reps = bx->reps;
	int err;

	err = bench_config(&cfg);
	if (err)
		return err;
	err = bench_file_create(bx, "invalidate", iv_hot + iv_punch, false, path, sizeof(path));
	if (err)
		return err;
	jw_obj(w, "stats");	/* each mode's last run */
	for (r = 0; r < reps && !err; r++)
		for (m = 0; m < IV_NMODES && !err; m++) {
			memset(&res, 0, sizeof(res));
			err = iv_once(&cfg, iv_modes[m].mode, path, &res, bx,
				      r == reps - 1 ? iv_modes[m].name : NULL);
			v[m][0][r] = res.faults_per_s;
			v[m][1][r] = res.fills_per_s;
			v[m][2][r] = res.punches_per_s;
			viol[m] += res.violations;
		}
	jw_end(w, '}');
	if (err)
		goto out;

	fprintf(bx->out, "reader: zap+refault %llu cached pages (fault-around %llu); filler: "
		"pread of the %llu-page punch part;\npuncher: pwrite+fsync+punch+check of %llu-page "
		"chunks, %llu us between dropping the pages and changing the store;\nmedians of %u "
		"runs of %llu ms; violations summed over the runs\n\n",
		(unsigned long long)iv_hot, (unsigned long long)iv_fa,
		(unsigned long long)iv_punch, (unsigned long long)iv_chunk,
		(unsigned long long)iv_window_us, reps, (unsigned long long)iv_ms);
	fprintf(bx->out, "%-10s %14s %12s %12s %12s\n", "mode", "faults/s", "preads/s",
		"punches/s", "violations");
	jw_u64(w, "hot_pages", iv_hot);
	jw_u64(w, "punch_pages", iv_punch);
	jw_u64(w, "chunk", iv_chunk);
	jw_u64(w, "window_us", iv_window_us);
	jw_u64(w, "ms", iv_ms);
	jw_obj(w, "modes");
	for (m = 0; m < IV_NMODES; m++) {
		double med[3];

		for (k = 0; k < 3; k++)
			med[k] = bench_median(v[m][k], reps);
		fprintf(bx->out, "%-10s %14.0f %12.0f %12.0f %12llu\n", iv_modes[m].name,
			med[0], med[1], med[2], (unsigned long long)viol[m]);
		jw_obj(w, iv_modes[m].name);
		jw_num(w, "faults_per_s", med[0]);
		jw_num(w, "preads_per_s", med[1]);
		jw_num(w, "punches_per_s", med[2]);
		jw_u64(w, "violations", viol[m]);
		jw_end(w, '}');
	}
	jw_end(w, '}');
out:
	bench_file_remove(path);
	return err;
}

const struct bench_def bench_invalidate = {
	.name = "invalidate",
	.summary = "cached faults beside hole punches and fills, per invalidate-lock mode",
	.opts = iv_opts,
	.check = iv_check,
	.run = iv_run,
	.in_all = true,
};
