// SPDX-License-Identifier: MIT
/*
 * bench/stats_cmd.c - `ufvm stats`: read a ufvm-stats-1 JSON file (written
 * by UFVM_STATS=path at ufvm_close, or embedded in a `ufvm bench --json`
 * result) and print its counters, its latency table and an ASCII histogram
 * per fault path.  docs/stats.md describes the schema.
 *
 * Script helpers on any JSON file: --get PATH prints one value, --rows
 * PATH FIELDS prints an array as columns, --cdf prints each path's latency
 * CDF as gnuplot data blocks.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench.h"

#define ST_BAR		40	/* histogram bar width */
#define ST_MAX_ROWS	32	/* histogram rows per path */

struct st_opts {
	const char *file, *at, *get, *rows, *fields, *pctl;
	double q;		/* --pctl's quantile */
	bool all, cdf;
};

static void st_usage(FILE *f)
{
	fprintf(f,
		"usage: ufvm stats [--all] [--at PATH] FILE.json\n"
		"       ufvm stats --cdf [--at PATH] FILE.json\n"
		"       ufvm stats --get PATH FILE.json\n"
		"       ufvm stats --rows PATH FIELD,FIELD,... FILE.json\n"
		"       ufvm stats --pctl Q PATH FILE.json\n"
		"\n"
		"Prints a ufvm-stats-1 snapshot (UFVM_STATS=FILE.json, docs/stats.md): the\n"
		"non-zero counters (--all: every counter), the latency percentiles per\n"
		"fault path, and an ASCII histogram of each path's buckets.  FILE may be\n"
		"'-' for standard input.\n"
		"\n"
		"  --at PATH    the snapshot is the member PATH of the file (a dotted path,\n"
		"               e.g. 'stats' or 'stats.on' in a ufvm bench --json result)\n"
		"  --cdf        print each path's latency CDF as gnuplot data: one block\n"
		"               per path (a title row, then 'ns fraction' rows), blocks\n"
		"               separated by two blank lines\n"
		"  --get PATH   print the value at PATH of any JSON file\n"
		"  --rows PATH FIELDS\n"
		"               print the array at PATH one element per line, the given\n"
		"               fields (dotted paths inside each element) as columns\n"
		"  --pctl Q PATH\n"
		"               print the quantile Q (0 < Q <= 1; nearest rank, as the\n"
		"               benchmarks compute theirs) of the array of non-negative\n"
		"               integers at PATH\n");
}

/*
 * @ns with 3 significant digits in the largest unit that keeps it at 1 or
 * more.  The unit is chosen after the rounding: 999999 ns is "1 ms", not
 * "1e+03 us".
 */
static void st_fmt_ns(char *buf, size_t len, double ns)
{
	char r[32];

	if (!isfinite(ns)) {
		snprintf(buf, len, "%s", isnan(ns) ? "?" : "inf");
		return;
	}
	snprintf(r, sizeof(r), "%.3g", ns);
	ns = strtod(r, NULL);
	if (ns < 1000)
		snprintf(buf, len, "%.3g ns", ns);
	else if (ns < 1e6)
		snprintf(buf, len, "%.3g us", ns / 1e3);
	else if (ns < 1e9)
		snprintf(buf, len, "%.3g ms", ns / 1e6);
	else
		snprintf(buf, len, "%.3g s", ns / 1e9);
}

/*
 * A bucket triple [low_ns, width_ns, count], or false.  A bucket whose
 * bounds are not finite (low + width can overflow) has no place on the
 * histogram's scale.
 */
static bool st_bucket(const struct jv *b, double *low, double *width, double *count)
{
	if (!b || b->type != JV_ARR || b->n != 3)
		return false;
	*low = jv_num(&b->v[0], -1);
	*width = jv_num(&b->v[1], -1);
	*count = jv_num(&b->v[2], -1);
	return *low >= 0 && *width > 0 && *count >= 0 && isfinite(*low + *width) &&
	       isfinite(*count);
}

static void st_counters(const struct jv *root, bool all)
{
	const struct jv *c = jv_get(root, "counters");
	size_t i, shown = 0;

	if (!c || c->type != JV_OBJ) {
		printf("counters: none in the file\n");
		return;
	}
	printf("counters%s:\n", all ? "" : " (non-zero; --all shows every one)");
	for (i = 0; i < c->n; i++) {
		if (!all && jv_num(&c->v[i], 0) == 0)
			continue;
		printf("  %-28s %14.0f\n", c->k[i], jv_num(&c->v[i], 0));
		shown++;
	}
	if (!shown)
		printf("  (all zero)\n");
}

static void st_cache(const struct jv *root)
{
	static const char *const keys[] = {
		"cached_pages", "dirty_pages", "regions", "meta_bytes",
	};
	const struct jv *per = jv_get(root, "meta_bytes_per_cached_page");
	size_t i;

	printf("\ncache:\n");
	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		const struct jv *v = jv_get(root, keys[i]);

		if (v)
			printf("  %-28s %14.0f\n", keys[i], jv_num(v, 0));
	}
	if (per)
		printf("  %-28s %14.1f\n", "meta_bytes_per_cached_page", jv_num(per, 0));
}

/* One row of the latency table: @name, then @p's count and times. */
static void st_row(const char *name, const struct jv *p)
{
	static const char *const q[] = { "p50_ns", "p90_ns", "p99_ns", "p999_ns", "max_ns" };
	char b[16];
	size_t k;

	printf("  %-10s %10.0f", name, jv_num(jv_get(p, "count"), 0));
	if (jv_num(jv_get(p, "count"), 0) == 0) {
		printf("\n");
		return;
	}
	st_fmt_ns(b, sizeof(b), jv_num(jv_get(p, "mean_ns"), 0));
	printf(" %10s", b);
	for (k = 0; k < sizeof(q) / sizeof(q[0]); k++) {
		st_fmt_ns(b, sizeof(b), jv_num(jv_get(p, q[k]), 0));
		printf(" %10s", b);
	}
	printf("\n");
}

/* The paths' rows, then ufvm's own time (@own, NULL in older files). */
static void st_table(const struct jv *lat, const struct jv *own)
{
	size_t i;

	printf("\nlatency by path (pager-side service time):\n");
	printf("  %-10s %10s %10s %10s %10s %10s %10s %10s\n", "path", "count", "mean",
	       "p50", "p90", "p99", "p99.9", "max");
	for (i = 0; i < lat->n; i++)
		st_row(lat->k[i], &lat->v[i]);
	if (!own || own->type != JV_OBJ)
		return;
	printf("\nufvm's own time in faults served from the cache (service time minus the\n"
	       "backend's install call):\n");
	st_row("own", own);
}

/*
 * Re-bin the fine buckets into rows of equal ratio: @per_octave rows per
 * power of two, fewer when that would make more than ST_MAX_ROWS rows.
 * The scale starts at 1 ns (log2 of less is far below any row) and spans
 * at most ST_MAX_ROWS rows: a bucket below the first row or above the last
 * is counted in that row, which then says so ("< X", ">= Y") rather than
 * show a range its values are not in.
 */
static void st_histogram(const char *name, const struct jv *p)
{
	const struct jv *bk = jv_get(p, "buckets");
	double total = 0, lo = INFINITY, hi = 0, low, width, count, cum = 0, top = 0;
	double rows[ST_MAX_ROWS] = { 0 };
	int per_octave = 8, first, last, r, i;
	bool below = false, above = false;
	size_t j;

	if (!bk || bk->type != JV_ARR || !bk->n)
		return;
	for (j = 0; j < bk->n; j++) {
		if (!st_bucket(&bk->v[j], &low, &width, &count))
			continue;
		total += count;
		if (low < lo)
			lo = low;
		if (low + width > hi)
			hi = low + width;
	}
	if (!(total > 0) || !isfinite(total))
		return;
	lo = lo < 1 ? 1 : lo;
	hi = hi < lo ? lo : hi;
	while (per_octave > 1 &&
	       floor(log2(hi) * per_octave) - floor(log2(lo) * per_octave) >= ST_MAX_ROWS)
		per_octave /= 2;
	/* below 2^1024 ns, so these fit an int even at 8 rows per octave */
	first = (int)floor(log2(lo) * per_octave);
	last = (int)floor(log2(hi) * per_octave);
	if (last - first >= ST_MAX_ROWS)	/* wider than 32 octaves: clip the top */
		last = first + ST_MAX_ROWS - 1;
	for (j = 0; j < bk->n; j++) {
		double f;

		if (!st_bucket(&bk->v[j], &low, &width, &count))
			continue;
		f = floor(log2(low < 1 ? 1 : low) * per_octave) - first;
		if (low < exp2((double)first / per_octave))
			below |= count > 0;
		if (f > last - first)
			above |= count > 0;
		r = f < 0 ? 0 : f > last - first ? last - first : (int)f;
		rows[r] += count;
	}
	for (r = 0; r <= last - first; r++)
		if (rows[r] > top)
			top = rows[r];
	printf("\n%s: %.0f faults\n", name, total);
	for (r = 0; r <= last - first; r++) {
		char a[16], b[16], range[48], bar[ST_BAR + 1];
		int n = (int)lround(rows[r] / top * ST_BAR);

		cum += rows[r];
		st_fmt_ns(a, sizeof(a), exp2((double)(first + r) / per_octave));
		st_fmt_ns(b, sizeof(b), exp2((double)(first + r + 1) / per_octave));
		if (!r && below)
			snprintf(range, sizeof(range), "%11s %-9s", "<", b);
		else if (r == last - first && above)
			snprintf(range, sizeof(range), "%11s %-9s", ">=", a);
		else
			snprintf(range, sizeof(range), "%9s - %-9s", a, b);
		for (i = 0; i < ST_BAR; i++)
			bar[i] = i < n ? '#' : ' ';
		if (!n && rows[r] > 0)
			bar[0] = '.';
		bar[ST_BAR] = 0;
		printf("  %s |%s| %9.0f %5.1f%% %6.2f%%\n", range, bar, rows[r],
		       100 * rows[r] / total, 100 * cum / total);
	}
}

static void st_cdf(const struct jv *lat)
{
	size_t i, j;
	bool firstblock = true;

	for (i = 0; i < lat->n; i++) {
		const struct jv *bk = jv_get(&lat->v[i], "buckets");
		double total = 0, cum = 0, low, width, count;

		if (!bk || bk->type != JV_ARR)
			continue;
		for (j = 0; j < bk->n; j++)
			if (st_bucket(&bk->v[j], &low, &width, &count))
				total += count;
		if (total <= 0)
			continue;
		if (!firstblock)
			printf("\n\n");
		firstblock = false;
		printf("\"%s\" \"\"\n", lat->k[i]);
		for (j = 0; j < bk->n; j++) {
			if (!st_bucket(&bk->v[j], &low, &width, &count))
				continue;
			if (cum == 0)
				printf("%.0f 0\n", low);
			cum += count;
			printf("%.0f %.6f\n", low + width, cum / total);
		}
	}
}

static int st_rows(const struct jv *root, const char *path, const char *fields)
{
	const struct jv *a = jv_path(root, path);
	char f[256];
	size_t i;

	if (!a || a->type != JV_ARR) {
		fprintf(stderr, "ufvm stats: %s is not an array\n", path);
		return 1;
	}
	for (i = 0; i < a->n; i++) {
		const char *p = fields;
		bool first = true;

		while (*p) {
			size_t n = strcspn(p, ",");
			const struct jv *v;

			snprintf(f, sizeof(f), "%.*s", (int)n, p);
			p += n + (p[n] == ',');
			v = jv_path(&a->v[i], f);
			printf("%s", first ? "" : " ");
			first = false;
			if (!v)
				printf("?");
			else if (v->type == JV_STR)
				printf("%s", v->str);
			else
				jv_print(stdout, v);
		}
		printf("\n");
	}
	return 0;
}

/* --pctl: the nearest-rank quantile of an array of non-negative integers. */
static int st_pctl(const struct jv *root, const char *path, double q)
{
	const struct jv *a = jv_path(root, path);
	uint64_t *v;
	size_t i;

	if (!a || a->type != JV_ARR || !a->n) {
		fprintf(stderr, "ufvm stats: %s is not a non-empty array\n", path);
		return 1;
	}
	v = malloc(a->n * sizeof(*v));
	if (!v) {
		fprintf(stderr, "ufvm stats: %s\n", strerror(ENOMEM));
		return 1;
	}
	for (i = 0; i < a->n; i++) {
		if (a->v[i].type != JV_NUM || !a->v[i].is_u) {
			fprintf(stderr, "ufvm stats: %s.%zu is not a non-negative integer\n",
				path, i);
			free(v);
			return 1;
		}
		v[i] = a->v[i].u;
	}
	printf("%llu\n", (unsigned long long)bench_pctl(v, a->n, q));
	free(v);
	return 0;
}

static int st_parse_args(int argc, char **argv, struct st_opts *o)
{
	int i;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			st_usage(stdout);
			return 1;
		} else if (!strcmp(a, "--all")) {
			o->all = true;
		} else if (!strcmp(a, "--cdf")) {
			o->cdf = true;
		} else if (!strcmp(a, "--at") && i + 1 < argc) {
			o->at = argv[++i];
		} else if (!strcmp(a, "--get") && i + 1 < argc) {
			o->get = argv[++i];
		} else if (!strcmp(a, "--rows") && i + 2 < argc) {
			o->rows = argv[++i];
			o->fields = argv[++i];
		} else if (!strcmp(a, "--pctl") && i + 2 < argc) {
			char *end;

			o->q = strtod(argv[++i], &end);
			if (end == argv[i] || *end || !(o->q > 0 && o->q <= 1)) {
				fprintf(stderr, "ufvm stats: --pctl %s: expected a quantile, "
					"0 < Q <= 1\n", argv[i]);
				return -EINVAL;
			}
			o->pctl = argv[++i];
		} else if ((a[0] != '-' || !strcmp(a, "-")) && !o->file) {
			o->file = a;
		} else {
			fprintf(stderr, "ufvm stats: unexpected argument '%s'\n\n", a);
			st_usage(stderr);
			return -EINVAL;
		}
	}
	if (!o->file) {
		st_usage(stderr);
		return -EINVAL;
	}
	return 0;
}

int ufvm_stats_main(int argc, char **argv)
{
	struct st_opts o = { 0 };
	const struct jv *root, *lat, *own, *schema;
	char *text = NULL, err[128];
	struct jv doc;
	size_t i, len;
	int r;

	r = st_parse_args(argc, argv, &o);
	if (r)
		return r > 0 ? 0 : 2;
	r = bench_read_file(o.file, &text, &len);
	if (r) {
		fprintf(stderr, "ufvm stats: %s: %s\n", o.file, strerror(-r));
		return 1;
	}
	r = jv_parse(text, len, &doc, err, sizeof(err));
	free(text);
	if (r) {
		fprintf(stderr, "ufvm stats: %s: not JSON: %s\n", o.file, err);
		return 1;
	}
	r = 1;
	if (o.get) {
		const struct jv *v = jv_path(&doc, o.get);

		if (!v) {
			fprintf(stderr, "ufvm stats: %s: no %s\n", o.file, o.get);
		} else {
			if (v->type == JV_STR)
				printf("%s", v->str);
			else
				jv_print(stdout, v);
			printf("\n");
			r = 0;
		}
		goto out;
	}
	if (o.rows) {
		r = st_rows(&doc, o.rows, o.fields);
		goto out;
	}
	if (o.pctl) {
		r = st_pctl(&doc, o.pctl, o.q);
		goto out;
	}
	root = o.at ? jv_path(&doc, o.at) : &doc;
	schema = jv_get(root, "schema");
	if (!schema || schema->type != JV_STR || strcmp(schema->str, "ufvm-stats-1")) {
		fprintf(stderr, "ufvm stats: %s%s%s: not a ufvm-stats-1 snapshot%s\n", o.file,
			o.at ? " at " : "", o.at ? o.at : "",
			o.at ? "" : " (for a bench result, --at names where it is)");
		goto out;
	}
	lat = jv_get(root, "latency");
	if (!lat || lat->type != JV_OBJ) {
		fprintf(stderr, "ufvm stats: %s: no latency object\n", o.file);
		goto out;
	}
	r = 0;
	if (o.cdf) {
		st_cdf(lat);
		goto out;
	}
	printf("ufvm statistics: %s%s%s\n\n", o.file, o.at ? " at " : "", o.at ? o.at : "");
	st_counters(root, o.all);
	st_cache(root);
	own = jv_get(root, "own");
	st_table(lat, own);
	printf("\nhistograms (rows of equal ratio; count, share, cumulative share):\n");
	for (i = 0; i < lat->n; i++)
		st_histogram(lat->k[i], &lat->v[i]);
	if (own && own->type == JV_OBJ)
		st_histogram("own (service time minus the install call)", own);
out:
	jv_free(&doc);
	return r;
}
