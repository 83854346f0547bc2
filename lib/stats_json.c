// SPDX-License-Identifier: MIT
/*
 * lib/stats_json.c - the statistics snapshot as JSON (docs/stats.md).
 */
#include <stdio.h>
#include <string.h>

#include <ufvm.h>

#include "lib/internal.h"
#include "vm/stats.h"

/* One latency summary as "NAME":{...} with its non-empty buckets. */
static void write_latency(FILE *out, const char *name, const struct ufvm_latency *l,
			  const struct vm_hist *h)
{
	bool first = true;
	unsigned int b;

	fprintf(out, "\"%s\":{\"count\":%llu,\"mean_ns\":%llu,\"p50_ns\":%llu,"
		"\"p90_ns\":%llu,\"p99_ns\":%llu,\"p999_ns\":%llu,\"max_ns\":%llu,"
		"\"buckets\":[",
		name, (unsigned long long)l->count,
		(unsigned long long)(l->count ? l->sum_ns / l->count : 0),
		(unsigned long long)l->p50_ns, (unsigned long long)l->p90_ns,
		(unsigned long long)l->p99_ns, (unsigned long long)l->p999_ns,
		(unsigned long long)l->max_ns);
	for (b = 0; b < HIST_BUCKETS; b++) {
		if (!h->b[b])
			continue;
		fprintf(out, "%s[%llu,%llu,%llu]", first ? "" : ",",
			(unsigned long long)vm_hist_bucket_low(b),
			(unsigned long long)vm_hist_bucket_width(b),
			(unsigned long long)h->b[b]);
		first = false;
	}
	fprintf(out, "]}");
}

int ufvm_stats_write_json(struct ufvm *vm, FILE *out)
{
	struct vm_hist *hist;
	struct ufvm_stats st;
	uint64_t tenths;
	unsigned int i;

	if (!vm || !out)
		return -EINVAL;
	hist = calloc(VM_HIST__COUNT, sizeof(*hist));
	if (!hist)
		return -ENOMEM;
	ufvm__stats_snapshot(vm, &st, hist);	/* one sum: counts match buckets */
	fprintf(out, "{\"schema\":\"ufvm-stats-1\",\"counters\":{");
	for (i = 0; i < UFVM_CTR__COUNT; i++)
		fprintf(out, "%s\"%s\":%llu", i ? "," : "", ufvm_counter_name(i),
			(unsigned long long)st.counters[i]);
	fprintf(out, "},\"latency\":{");
	for (i = 0; i < UFVM_PATH__COUNT; i++) {
		if (i)
			fputc(',', out);
		write_latency(out, ufvm_path_name(i), &st.latency[i], &hist[i]);
	}
	fputs("},", out);
	write_latency(out, "own", &st.own, &hist[VM_HIST_OWN]);
	/* Tenths by integer arithmetic: "%.1f" would follow LC_NUMERIC (a comma). */
	tenths = st.cached_pages ? (st.meta_bytes * 10 + st.cached_pages / 2) / st.cached_pages : 0;
	fprintf(out, ",\"cached_pages\":%llu,\"dirty_pages\":%llu,\"regions\":%llu,"
		"\"meta_bytes\":%llu,\"meta_bytes_per_cached_page\":%llu.%llu}\n",
		(unsigned long long)st.cached_pages, (unsigned long long)st.dirty_pages,
		(unsigned long long)st.regions, (unsigned long long)st.meta_bytes,
		(unsigned long long)(tenths / 10), (unsigned long long)(tenths % 10));
	free(hist);
	return (fflush(out) || ferror(out)) ? -EIO : 0;
}
