// SPDX-License-Identifier: MIT
/*
 * bench/sweep.c - `ufvm bench sweep`: one workload across the cartesian
 * product of policy settings, one row per combination.
 *
 *   ufvm bench sweep --workload random --policy speculative=0,1 \
 *                    --policy fault_around=1,16,64 --cache warm
 *
 * Keys: speculative, fault_around, retry, invalidate (rwsem, addblock,
 * none), store_latency_us, handlers, handler_park, install_split, readahead, map_ahead,
 * write_ahead,
 * cache_pages (a page count), reclaim (clock, fifo), delivery (handler,
 * inthread): the struct ufvm_config fields of those names.
 * --workload and --cache take lists too and become dimensions of the
 * product.
 *
 * Workloads touch one byte per access of a file of --pages pages:
 *   seq     every page in order;
 *   random  every page once, in a random order;
 *   zipf    --accesses draws from a Zipf(--zipf-s) law over the pages (hot
 *           pages scattered over the file), so pages repeat.
 * The access list is made once and is the same for every combination.
 * cache warm: one instance per combination, its cache filled with
 * ufvm_pread() before the runs, the mapping zapped before each run;
 * cold: a fresh instance (empty cache) for each run.
 *
 * Per combination, medians over --reps runs of: the latency of each first
 * touch of a page (application side, p50/p99, fault or not), faults per
 * distinct page touched, accesses per second.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench.h"

#define SW_MAX_REPS	64	/* --reps at most (the per-pass figures are kept) */

#define SW_MAX_KEYS	8
#define SW_MAX_VALS	16

static uint64_t sw_pages = 16384;
static uint64_t sw_accesses;		/* 0: --pages */
static uint64_t sw_seed = 1;
static const char *sw_workload = "random";
static const char *sw_cache = "warm";
static double sw_zipf_s = 0.99;

/* --workload and --cache, split and checked by sw_check() */
static char sw_wls[4][16], sw_caches[2][16];
static unsigned int sw_nwl, sw_nc;

struct sw_key {
	const char *name;
	bool named;		/* values are names (JSON strings) */
	unsigned int nvals;
	char vals[SW_MAX_VALS][24];
	unsigned int num[SW_MAX_VALS];
};

static struct sw_key sw_keys[SW_MAX_KEYS];
static unsigned int sw_nkeys;

static const char *const sw_invalidate_names[] = { "rwsem", "addblock", "none", NULL };
static const char *const sw_reclaim_names[] = { "clock", "fifo", NULL };
static const char *const sw_delivery_names[] = { "handler", "inthread", NULL };

/* The keys: a value is a number, or one of @names (its index is the enum). */
static const struct sw_keydef {
	const char *name;
	const char *const *names;
} sw_keydefs[] = {
	{ "speculative", NULL },
	{ "fault_around", NULL },
	{ "retry", NULL },
	{ "invalidate", sw_invalidate_names },
	{ "store_latency_us", NULL },
	{ "handlers", NULL },
	{ "handler_park", NULL },
	{ "install_split", NULL },
	{ "readahead", NULL },
	{ "map_ahead", NULL },
	{ "write_ahead", NULL },
	{ "cache_pages", NULL },
	{ "reclaim", sw_reclaim_names },
	{ "delivery", sw_delivery_names },
};
#define SW_NKEYDEFS (sizeof(sw_keydefs) / sizeof(sw_keydefs[0]))

static int sw_value(const struct sw_keydef *kd, const char *v, unsigned int *out)
{
	uint64_t u;
	unsigned int i;

	if (kd->names) {
		for (i = 0; kd->names[i]; i++)
			if (!strcmp(kd->names[i], v)) {
				*out = i;
				return 0;
			}
		return -EINVAL;
	}
	if (!strcmp(kd->name, "cache_pages")) {	/* pages, or a size: as --cache */
		if (ufvm_parse_size(v, BENCH_PAGE, &u))
			return -EINVAL;
		u /= BENCH_PAGE;
	} else if (ufvm_parse_size(v, 1, &u)) {
		return -EINVAL;
	}
	if (u > 10000000)
		return -EINVAL;
	*out = (unsigned int)u;
	return 0;
}

/* --policy KEY=V1,V2,... */
static int sw_policy(const char *arg)
{
	const char *eq = strchr(arg, '=');
	const struct sw_keydef *kd = NULL;
	struct sw_key *k;
	const char *p;
	unsigned int i;

	if (!eq || sw_nkeys == SW_MAX_KEYS)
		goto bad;
	for (i = 0; i < SW_NKEYDEFS; i++)
		if (strlen(sw_keydefs[i].name) == (size_t)(eq - arg) &&
		    !strncmp(arg, sw_keydefs[i].name, (size_t)(eq - arg)))
			kd = &sw_keydefs[i];
	if (!kd)
		goto bad;
	for (i = 0; i < sw_nkeys; i++)
		if (sw_keys[i].name == kd->name) {
			fprintf(stderr, "ufvm bench sweep: --policy %s: %s given twice (one --policy "
				"per key, its values comma-separated)\n", arg, kd->name);
			return -EINVAL;
		}
	k = &sw_keys[sw_nkeys];
	k->name = kd->name;
	k->named = kd->names != NULL;
	k->nvals = 0;
	for (p = eq + 1; *p;) {
		size_t n = strcspn(p, ",");
		char *v;

		if (!n || n >= sizeof(k->vals[0]) || k->nvals == SW_MAX_VALS)
			goto bad;
		v = k->vals[k->nvals];
		memcpy(v, p, n);
		v[n] = 0;
		if (sw_value(kd, v, &k->num[k->nvals]))
			goto bad;
		k->nvals++;
		p += n + (p[n] == ',');
	}
	if (!k->nvals)
		goto bad;
	sw_nkeys++;
	return 0;
bad:
	fprintf(stderr, "ufvm bench sweep: --policy %s: expected KEY=V1,V2,... with KEY one of "
		"speculative, fault_around, retry, invalidate (rwsem|addblock|none), "
		"store_latency_us, handlers, handler_park, install_split, readahead, map_ahead, write_ahead, "
		"cache_pages, "
		"reclaim (clock|fifo), "
		"delivery (handler|inthread)\n", arg);
	return -EINVAL;
}

/* --zipf-s S: a finite number above 0, whatever the workload */
static int sw_zipf(const char *arg)
{
	char *end;
	double v = strtod(arg, &end);

	if (end == arg || *end || !isfinite(v) || !(v > 0)) {
		fprintf(stderr, "ufvm bench sweep: --zipf-s %s: expected a number above 0\n", arg);
		return -EINVAL;
	}
	sw_zipf_s = v;
	return 0;
}

static const struct bench_opt sw_opts[] = {
	{ "workload", BOPT_STR, &sw_workload, NULL, "seq, random, zipf, or a comma list" },
	{ "policy", BOPT_FN, NULL, sw_policy,
	  "KEY=V1,V2,... (repeatable; default speculative=0,1 and fault_around=1,16)" },
	{ "cache", BOPT_STR, &sw_cache, NULL, "warm, cold, or warm,cold" },
	{ "pages", BOPT_UINT, &sw_pages, NULL, "pages of the file" },
	{ "accesses", BOPT_UINT, &sw_accesses, NULL, "zipf draws (0: --pages)" },
	{ "zipf-s", BOPT_FN, NULL, sw_zipf, "Zipf exponent, above 0 (default 0.99)" },
	{ "seed", BOPT_UINT, &sw_seed, NULL, "seed of the random orders" },
	{ NULL },
};

static void sw_apply(struct ufvm_config *cfg, const char *key, unsigned int v)
{
	if (!strcmp(key, "speculative"))
		cfg->speculative = v;
	else if (!strcmp(key, "fault_around"))
		cfg->fault_around = v;
	else if (!strcmp(key, "retry"))
		cfg->retry = v;
	else if (!strcmp(key, "invalidate"))
		cfg->invalidate = v;
	else if (!strcmp(key, "store_latency_us"))
		cfg->store_latency_us = v;
	else if (!strcmp(key, "handlers"))
		cfg->handler_threads = v;
	else if (!strcmp(key, "handler_park"))
		cfg->handler_park = v;
	else if (!strcmp(key, "install_split"))
		cfg->install_split = v;
	else if (!strcmp(key, "readahead"))
		cfg->readahead = v;
	else if (!strcmp(key, "map_ahead"))
		cfg->map_ahead = v;
	else if (!strcmp(key, "write_ahead"))
		cfg->write_ahead = v;
	else if (!strcmp(key, "cache_pages"))
		cfg->cache_pages = v;
	else if (!strcmp(key, "reclaim"))
		cfg->reclaim = v;
	else if (!strcmp(key, "delivery"))
		cfg->delivery = v;
}

/* The access list of @workload: page indices; *@n accesses. */
static int sw_make(const char *workload, uint64_t **out, uint64_t *n)
{
	uint64_t i, s = sw_seed, *acc;

	if (!strcmp(workload, "seq") || !strcmp(workload, "random")) {
		*n = sw_pages;
		if (!strcmp(workload, "random")) {
			*out = bench_perm(sw_pages, 1, sw_seed);
			return *out ? 0 : -ENOMEM;
		}
		acc = bench_alloc_array(sw_pages, sizeof(*acc));
		if (!acc)
			return -ENOMEM;
		for (i = 0; i < sw_pages; i++)
			acc[i] = i;
		*out = acc;
		return 0;
	}
	if (!strcmp(workload, "zipf")) {
		double zs = sw_zipf_s, *cdf, sum = 0;
		uint64_t *rank = bench_perm(sw_pages, 1, sw_seed + 1);

		*n = sw_accesses ? sw_accesses : sw_pages;
		cdf = bench_alloc_array(sw_pages, sizeof(*cdf));
		acc = bench_alloc_array(*n, sizeof(*acc));
		if (!cdf || !acc || !rank) {
			free(cdf);
			free(acc);
			free(rank);
			return -ENOMEM;
		}
		for (i = 0; i < sw_pages; i++) {
			sum += 1.0 / pow((double)(i + 1), zs);
			cdf[i] = sum;
		}
		for (i = 0; i < *n; i++) {
			double u = (double)(bench_rand(&s) >> 11) / 9007199254740992.0 * sum;
			uint64_t lo = 0, hi = sw_pages - 1;

			while (lo < hi) {
				uint64_t mid = (lo + hi) / 2;

				if (cdf[mid] < u)
					lo = mid + 1;
				else
					hi = mid;
			}
			acc[i] = rank[lo];	/* the lo-th hottest page */
		}
		free(cdf);
		free(rank);
		*out = acc;
		return 0;
	}
	return -EINVAL;
}

struct sw_row {
	double p50, p99, mean, fpp, aps;
	char *stats;	/* ufvm_stats JSON of the row's last instance (cold: the last
			   run; warm: all runs and the cache fill), or NULL */
};

/* One run of @acc on @b: first-touch latencies, faults, throughput. */
static int sw_once(struct bench_vm *b, const uint64_t *acc, uint64_t n, uint8_t *seen,
		   uint64_t *lat, double *out)
{
	uint64_t i, k = 0, f0, t0, sum = 0;
	int err = bench_vm_drop(b);

	if (err)
		return err;
	memset(seen, 0, b->pages);
	f0 = bench_vm_faults(b);
	t0 = bench_now_ns();
	for (i = 0; i < n; i++) {
		const char *p = b->base + acc[i] * BENCH_PAGE;

		if (seen[acc[i]]) {
			bench_touch(p);
			continue;
		}
		seen[acc[i]] = 1;
		lat[k] = bench_now_ns();
		bench_touch(p);
		lat[k] = bench_now_ns() - lat[k];
		sum += lat[k++];
	}
	t0 = bench_now_ns() - t0;
	out[3] = (double)(bench_vm_faults(b) - f0) / (double)k;
	out[4] = (double)n * 1e9 / (double)t0;
	out[2] = (double)sum / (double)k;
	out[0] = (double)bench_pctl(lat, k, 0.50);
	out[1] = (double)bench_pctl(lat, k, 0.99);
	return 0;
}

static int sw_combo(struct bench_ctx *bx, const struct ufvm_config *cfg, const char *path,
		    bool cold, const uint64_t *acc, uint64_t n, struct sw_row *row)
{
	double v[5][SW_MAX_REPS];
	uint8_t *seen = malloc(sw_pages);
	uint64_t *lat = bench_alloc_array(sw_pages, sizeof(*lat));
	unsigned int r, k, reps = bx->reps;
	struct bench_vm bv = { 0 };
	int err = 0;

	if (!seen || !lat) {
		err = -ENOMEM;
		goto out;
	}
	for (r = 0; r < reps && !err; r++) {
		double o[5] = { 0 };

		if (cold || !r) {
			bench_vm_close(&bv);
			err = cold ? bench_vm_open(&bv, cfg, path, sw_pages) :
				     bench_vm_open_cached(&bv, cfg, path, sw_pages);
			if (err)
				break;
		}
		err = sw_once(&bv, acc, n, seen, lat, o);
		for (k = 0; k < 5; k++)
			v[k][r] = o[k];
	}
	row->stats = !err && bx->json ? bench_stats_text(bv.vm) : NULL;
	bench_vm_close(&bv);
	if (!err) {
		row->p50 = bench_median(v[0], reps);
		row->p99 = bench_median(v[1], reps);
		row->mean = bench_median(v[2], reps);
		row->fpp = bench_median(v[3], reps);
		row->aps = bench_median(v[4], reps);
	}
out:
	free(seen);
	free(lat);
	return err;
}

/*
 * Split a comma list into up to @max distinct items of @items.
 * Return: the number of items, 0 if one is empty, too long, given twice
 * or one too many.
 */
static unsigned int sw_split(const char *list, char items[][16], unsigned int max)
{
	unsigned int n = 0, i;

	do {
		size_t len = strcspn(list, ",");

		if (!len || len >= 16 || n == max)
			return 0;
		memcpy(items[n], list, len);
		items[n][len] = 0;
		for (i = 0; i < n; i++)
			if (!strcmp(items[i], items[n]))
				return 0;
		n++;
		list += len;
	} while (*list++ == ',');
	return n;
}

/* Every --policy value: one that ufvm_open() would refuse is a usage error. */
static int sw_check_policy(void)
{
	struct ufvm_config base, cfg;
	unsigned int i, v;
	char val[64];

	if (bench_config(&base))
		return -EINVAL;
	for (i = 0; i < sw_nkeys; i++) {
		for (v = 0; v < sw_keys[i].nvals; v++) {
			cfg = base;
			sw_apply(&cfg, sw_keys[i].name, sw_keys[i].num[v]);
			snprintf(val, sizeof(val), "%s=%s", sw_keys[i].name, sw_keys[i].vals[v]);
			if (bench_check_config("sweep", "policy", val, &cfg))
				return -EINVAL;
		}
	}
	return 0;
}

static int sw_check(const struct bench_ctx *bx)
{
	unsigned int i;

	if (bench_check_range("sweep", "reps", bx->reps, 1, SW_MAX_REPS))
		return -EINVAL;
	sw_nwl = sw_split(sw_workload, sw_wls, 4);
	sw_nc = sw_split(sw_cache, sw_caches, 2);
	for (i = 0; i < sw_nwl; i++)
		if (strcmp(sw_wls[i], "seq") && strcmp(sw_wls[i], "random") &&
		    strcmp(sw_wls[i], "zipf"))
			sw_nwl = 0;
	for (i = 0; i < sw_nc; i++)
		if (strcmp(sw_caches[i], "warm") && strcmp(sw_caches[i], "cold"))
			sw_nc = 0;
	if (!sw_nwl) {
		fprintf(stderr, "ufvm bench sweep: --workload %s: expected seq, random or zipf, "
			"or a comma list of them, each once\n", sw_workload);
		return -EINVAL;
	}
	if (!sw_nc) {
		fprintf(stderr, "ufvm bench sweep: --cache %s: expected warm, cold, warm,cold or "
			"cold,warm\n", sw_cache);
		return -EINVAL;
	}
	if (sw_check_policy() ||
	    bench_check_range("sweep", "accesses", sw_accesses, 0, BENCH_COUNT_MAX))
		return -EINVAL;
	return bench_check_range("sweep", "pages", sw_pages, 16, BENCH_PAGES_MAX);
}

static int sw_run(struct bench_ctx *bx)
{
	const unsigned int nwl = sw_nwl, nc = sw_nc;
	char (*wls)[16] = sw_wls, (*caches)[16] = sw_caches, path[4096];
	unsigned int w, c, i, idx[SW_MAX_KEYS];
	struct ufvm_config base;
	struct jw *j = bx->jw;
	int err;

	if (!sw_nkeys) {
		sw_policy("speculative=0,1");
		sw_policy("fault_around=1,16");
	}
	err = bench_config(&base);
	if (err)
		return err;
	err = bench_file_create(bx, "sweep", sw_pages, false, path, sizeof(path));
	if (err)
		return err;

	fprintf(bx->out, "%llu-page file; latency of each first touch of a page (application "
		"side); medians of %u runs\n\n", (unsigned long long)sw_pages, bx->reps);
	fprintf(bx->out, "%-8s %-5s", "workload", "cache");
	for (i = 0; i < sw_nkeys; i++)
		fprintf(bx->out, " %*s", (int)strlen(sw_keys[i].name) > 6 ?
			(int)strlen(sw_keys[i].name) : 6, sw_keys[i].name);
	fprintf(bx->out, " %10s %10s %10s %9s %12s\n", "p50", "p99", "mean", "faults/pg",
		"accesses/s");

	jw_u64(j, "pages", sw_pages);
	jw_arr(j, "keys");
	for (i = 0; i < sw_nkeys; i++)
		jw_str(j, NULL, sw_keys[i].name);
	jw_end(j, ']');
	jw_arr(j, "rows");
	for (w = 0; w < nwl && !err; w++) {
		uint64_t *acc, n;

		err = sw_make(wls[w], &acc, &n);
		if (err)
			break;
		for (c = 0; c < nc && !err; c++) {
			memset(idx, 0, sizeof(idx));
			for (;;) {
				struct ufvm_config cfg = base;
				struct sw_row row = { 0 };
				char b[3][32];

				for (i = 0; i < sw_nkeys; i++)
					sw_apply(&cfg, sw_keys[i].name, sw_keys[i].num[idx[i]]);
				err = sw_combo(bx, &cfg, path, !strcmp(caches[c], "cold"),
					       acc, n, &row);
				if (err)
					break;
				fprintf(bx->out, "%-8s %-5s", wls[w], caches[c]);
				for (i = 0; i < sw_nkeys; i++)
					fprintf(bx->out, " %*s", (int)strlen(sw_keys[i].name) > 6 ?
						(int)strlen(sw_keys[i].name) : 6,
						sw_keys[i].vals[idx[i]]);
				fprintf(bx->out, " %10s %10s %10s %9.3f %12.0f\n",
					bench_fmt_ns(b[0], sizeof(b[0]), row.p50),
					bench_fmt_ns(b[1], sizeof(b[1]), row.p99),
					bench_fmt_ns(b[2], sizeof(b[2]), row.mean), row.fpp, row.aps);
				fflush(bx->out);
				jw_obj(j, NULL);
				jw_str(j, "workload", wls[w]);
				jw_str(j, "cache", caches[c]);
				jw_obj(j, "policy");
				for (i = 0; i < sw_nkeys; i++) {
					if (sw_keys[i].named)
						jw_str(j, sw_keys[i].name, sw_keys[i].vals[idx[i]]);
					else
						jw_u64(j, sw_keys[i].name, sw_keys[i].num[idx[i]]);
				}
				jw_end(j, '}');
				jw_num(j, "p50_ns", row.p50);
				jw_num(j, "p99_ns", row.p99);
				jw_num(j, "mean_ns", row.mean);
				jw_num(j, "faults_per_page", row.fpp);
				jw_num(j, "accesses_per_s", row.aps);
				bench_embed_text(bx, "stats", row.stats);
				free(row.stats);
				jw_end(j, '}');
				/* next combination: the last key varies fastest */
				for (i = sw_nkeys; i-- > 0;) {
					if (++idx[i] < sw_keys[i].nvals)
						break;
					idx[i] = 0;
				}
				if (i == (unsigned int)-1)
					break;
			}
		}
		free(acc);
	}
	jw_end(j, ']');
	bench_file_remove(path);
	if (err)
		fprintf(stderr, "ufvm bench sweep: %s\n", ufvm_strerror(err));
	return err;
}

const struct bench_def bench_sweep = {
	.name = "sweep",
	.summary = "a workload across the cartesian product of policy settings",
	.opts = sw_opts,
	.check = sw_check,
	.run = sw_run,
	.in_all = true,
};
