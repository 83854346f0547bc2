// SPDX-License-Identifier: MIT
/* vm/hist.c - log-linear histogram read side (see vm/hist.h). */
#include "vm/hist.h"

uint64_t vm_hist_bucket_low(unsigned int b)
{
	unsigned int e, sub;

	if (b < 2 * HIST_SUB)
		return b;
	e = (b - 2 * HIST_SUB) / HIST_SUB + HIST_SUB_BITS + 1;
	sub = (b - 2 * HIST_SUB) % HIST_SUB;
	return (1ull << e) + ((uint64_t)sub << (e - HIST_SUB_BITS));
}

uint64_t vm_hist_bucket_width(unsigned int b)
{
	if (b < 2 * HIST_SUB)
		return 1;
	return 1ull << ((b - 2 * HIST_SUB) / HIST_SUB + 1);
}

void vm_hist_merge(struct vm_hist *dst, const struct vm_hist *src)
{
	unsigned int i;
	uint64_t m = __atomic_load_n(&src->max, __ATOMIC_RELAXED);

	for (i = 0; i < HIST_BUCKETS; i++)
		dst->b[i] += __atomic_load_n(&src->b[i], __ATOMIC_RELAXED);
	dst->count += __atomic_load_n(&src->count, __ATOMIC_RELAXED);
	dst->sum += __atomic_load_n(&src->sum, __ATOMIC_RELAXED);
	if (m > dst->max)
		dst->max = m;
}

uint64_t vm_hist_quantile(const struct vm_hist *h, double q)
{
	uint64_t total = 0, seen = 0, rank;
	unsigned int i;

	for (i = 0; i < HIST_BUCKETS; i++)
		total += h->b[i];
	if (!total)
		return 0;
	rank = (uint64_t)(q * (double)total);	/* 1-based: ceil(q * total) */
	if ((double)rank < q * (double)total)
		rank++;
	rank = MIN(MAX(rank, 1u), total);
	for (i = 0; i < HIST_BUCKETS; i++) {
		seen += h->b[i];
		if (seen >= rank) {
			uint64_t v = vm_hist_bucket_low(i) + vm_hist_bucket_width(i) / 2;

			return MIN(v, h->max ? h->max : v);
		}
	}
	return h->max;
}
