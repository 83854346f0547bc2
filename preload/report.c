// SPDX-License-Identifier: MIT
/*
 * preload/report.c - the statistics of a managed run, at exit (and before
 * an exec): UFVM_STATS=FILE writes ufvm's JSON (docs/stats.md), UFVM_REPORT
 * prints a summary a person can read: faults by path, the service time of
 * each path and its histogram.  "%p" in either path is this process's pid;
 * "-" (or an empty UFVM_REPORT) is stderr.  Only a process that started
 * ufvm (mapped a managed file) writes anything.
 *
 * Context: pl_lock not held; never from a signal handler.
 */
#define _GNU_SOURCE
#include <math.h>

#include "lib/internal.h"
#include "preload/preload.h"

#define PL_HBINS 24	/* <1 us, [1,2) us, [2,4) us, ... */

/*
 * Where a report goes: standard error ("-" or ""), or a file whose text is
 * gathered in memory and then replaces the file whole (ufvm__replace_file:
 * a reader never sees half of it; of processes writing one name, the last
 * wins).
 */
struct pl_out {
	FILE *f;
	char path[PATH_MAX];
	char *text;
	size_t len;
};

/* Start output to the expanded @tmpl.  Return: the stream, or NULL (said why). */
static FILE *pl_open_out(struct pl_out *o, const char *tmpl)
{
	o->text = NULL;
	o->len = 0;
	if (!tmpl[0] || !strcmp(tmpl, "-")) {
		o->path[0] = 0;
		return o->f = stderr;
	}
	if (ufvm__expand_pid(tmpl, o->path, sizeof(o->path))) {
		pl_warn_once("cannot write %s: %s", tmpl, strerror(ENAMETOOLONG));
		return NULL;
	}
	o->f = open_memstream(&o->text, &o->len);
	if (!o->f)
		pl_warn_once("cannot write %s: %s", o->path, strerror(errno));
	return o->f;
}

/* Finish the output pl_open_out() started; @ok: its text is whole. */
static void pl_close_out(struct pl_out *o, bool ok)
{
	int err;

	if (o->f == stderr) {
		fflush(stderr);
		return;
	}
	err = fclose(o->f) ? -ENOMEM : 0;
	if (ok && !err)
		err = ufvm__replace_file(o->path, o->text, o->len);
	if (ok && err)
		pl_warn_once("cannot write %s: %s", o->path, strerror(-err));
	free(o->text);
}

/*
 * The histogram of path @name from ufvm's JSON: each bucket [low, width,
 * count] in ns, folded into power-of-two microsecond bins.
 */
static void pl_hist_from_json(const char *json, const char *name, uint64_t *bins)
{
	char key[64];
	const char *p, *end;

	snprintf(key, sizeof(key), "\"%s\":{\"count\"", name);
	p = strstr(json, "\"latency\":{");
	p = p ? strstr(p, key) : NULL;
	p = p ? strstr(p, "\"buckets\":[") : NULL;
	if (!p)
		return;
	p += strlen("\"buckets\":[");
	end = strstr(p, "]]");
	if (!end || (*p == ']'))
		return;
	while (p && p < end && *p == '[') {
		unsigned long long lo, w, c;
		int bin;

		if (sscanf(p, "[%llu,%llu,%llu]", &lo, &w, &c) != 3)
			break;
		bin = lo < 1000 ? 0 : 1 + (int)floor(log2((double)lo / 1000.0));
		if (bin >= PL_HBINS)
			bin = PL_HBINS - 1;
		bins[bin] += c;
		p = strchr(p + 1, '[');
	}
}

static void pl_print_hist(FILE *f, const char *name, const uint64_t *bins)
{
	uint64_t max = 0;
	int i, first = -1, last = -1;

	for (i = 0; i < PL_HBINS; i++) {
		if (!bins[i])
			continue;
		if (first < 0)
			first = i;
		last = i;
		if (bins[i] > max)
			max = bins[i];
	}
	if (first < 0)
		return;
	fprintf(f, "  %s:\n", name);
	for (i = first; i <= last; i++) {
		char range[32];
		int bar = (int)((bins[i] * 40 + max - 1) / max);

		if (i == 0)
			snprintf(range, sizeof(range), "< 1 us");
		else
			snprintf(range, sizeof(range), "%g-%g us", ldexp(1, i - 1), ldexp(1, i));
		fprintf(f, "    %16s %10llu %.*s\n", range, (unsigned long long)bins[i],
			bar, "########################################");
	}
}

static void pl_print_report(FILE *f, const char *why, const struct ufvm_stats *st,
			    const char *json)
{
	unsigned int i;
	int col = 0;

	fprintf(f, "\nufvm report: %s (pid %d), at %s; %s backend\n",
		program_invocation_short_name, (int)getpid(), why, ufvm_preload_backend());
	fprintf(f, "  regions now %llu, cached pages %llu, dirty pages %llu, metadata %llu bytes\n",
		(unsigned long long)st->regions, (unsigned long long)st->cached_pages,
		(unsigned long long)st->dirty_pages, (unsigned long long)st->meta_bytes);
	fprintf(f, "faults by path (non-zero counters):\n");
	for (i = 0; i < UFVM_CTR__COUNT; i++) {
		if (!st->counters[i])
			continue;
		fprintf(f, "%s%-26s %12llu", col ? "  " : "  ", ufvm_counter_name(i),
			(unsigned long long)st->counters[i]);
		col = !col;
		if (!col)
			fputc('\n', f);
	}
	if (col)
		fputc('\n', f);
	fprintf(f, "fault service time by path (us):\n"
		"  %-10s %10s %9s %9s %9s %9s %10s\n", "path", "count", "mean", "p50", "p90",
		"p99", "max");
	for (i = 0; i < UFVM_PATH__COUNT; i++) {
		const struct ufvm_latency *l = &st->latency[i];

		if (!l->count)
			continue;
		fprintf(f, "  %-10s %10llu %9.1f %9.1f %9.1f %9.1f %10.1f\n", ufvm_path_name(i),
			(unsigned long long)l->count, (double)l->sum_ns / (double)l->count / 1e3,
			l->p50_ns / 1e3, l->p90_ns / 1e3, l->p99_ns / 1e3, l->max_ns / 1e3);
	}
	if (!json)
		return;
	fprintf(f, "histograms (fault service time, power-of-two bins):\n");
	for (i = 0; i < UFVM_PATH__COUNT; i++) {
		uint64_t bins[PL_HBINS] = { 0 };

		if (!st->latency[i].count)
			continue;
		pl_hist_from_json(json, ufvm_path_name(i), bins);
		pl_print_hist(f, ufvm_path_name(i), bins);
	}
}

/*
 * pl_report_write - write UFVM_STATS and UFVM_REPORT, if set, for this
 * process (@why: "exit" or "exec").  Context: ufvm running; L not held.
 */
void pl_report_write(const char *why)
{
	const char *stats = getenv("UFVM_STATS"), *report = getenv("UFVM_REPORT");
	struct ufvm_stats st;
	struct pl_out out;
	char *json = NULL;
	size_t jlen = 0;
	FILE *f;

	if (!pl_vm || ((!stats || !stats[0]) && !report))
		return;
	pl_guard++;
	if (stats && stats[0]) {
		f = pl_open_out(&out, stats);
		if (f) {
			bool ok = !ufvm_stats_write_json(pl_vm, f);

			if (!ok)
				pl_warn_once("writing the statistics failed");
			pl_close_out(&out, ok);
		}
	}
	if (report && !ufvm_stats(pl_vm, &st)) {
		FILE *m = open_memstream(&json, &jlen);

		if (m && ufvm_stats_write_json(pl_vm, m)) {
			fclose(m);
			free(json);
			json = NULL;
		} else if (m) {
			fclose(m);
		}
		f = pl_open_out(&out, report);
		if (f) {
			pl_print_report(f, why, &st, json);
			pl_close_out(&out, !ferror(f));
		}
		free(json);
	}
	pl_guard--;
}
