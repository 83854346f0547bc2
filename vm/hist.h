/* SPDX-License-Identifier: MIT */
/*
 * vm/hist.h - log-linear latency histograms.
 *
 * Values (ns) below 128 have a bucket each; above, each power of two is cut
 * into 64 equal buckets, so a bucket's midpoint is within 1/128 (0.8%) of
 * any value in it.  The range runs to 2^35 ns (34 s); larger values land in
 * the last bucket.  Histograms merge by adding buckets.
 */
#ifndef UFVM_VM_HIST_H
#define UFVM_VM_HIST_H

#include "vm/compat.h"

#define HIST_SUB_BITS	6
#define HIST_SUB	(1u << HIST_SUB_BITS)
#define HIST_MAX_EXP	35
#define HIST_BUCKETS	(2 * HIST_SUB + (HIST_MAX_EXP - HIST_SUB_BITS - 1) * HIST_SUB)

struct vm_hist {
	uint64_t count;
	uint64_t sum;
	uint64_t max;
	uint64_t b[HIST_BUCKETS];
};

static inline unsigned int vm_hist_bucket(uint64_t v)
{
	unsigned int e;

	if (v < 2 * HIST_SUB)
		return (unsigned int)v;
	e = 63u - (unsigned int)__builtin_clzll(v);	/* e >= 7 */
	if (e >= HIST_MAX_EXP)
		return HIST_BUCKETS - 1;
	return 2 * HIST_SUB + (e - HIST_SUB_BITS - 1) * HIST_SUB +
	       (unsigned int)((v >> (e - HIST_SUB_BITS)) & (HIST_SUB - 1));
}

/* Record @v.  Context: the histogram's owner thread only (relaxed). */
static inline void vm_hist_add(struct vm_hist *h, uint64_t v)
{
	__atomic_store_n(&h->b[vm_hist_bucket(v)], h->b[vm_hist_bucket(v)] + 1,
			 __ATOMIC_RELAXED);
	__atomic_store_n(&h->count, h->count + 1, __ATOMIC_RELAXED);
	__atomic_store_n(&h->sum, h->sum + v, __ATOMIC_RELAXED);
	if (v > h->max)
		__atomic_store_n(&h->max, v, __ATOMIC_RELAXED);
}

/* Record @v in a histogram several threads write (atomic adds). */
static inline void vm_hist_add_shared(struct vm_hist *h, uint64_t v)
{
	uint64_t m = __atomic_load_n(&h->max, __ATOMIC_RELAXED);

	__atomic_fetch_add(&h->b[vm_hist_bucket(v)], 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&h->count, 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&h->sum, v, __ATOMIC_RELAXED);
	while (v > m && !__atomic_compare_exchange_n(&h->max, &m, v, true, __ATOMIC_RELAXED,
						     __ATOMIC_RELAXED))
		;
}

/* Add @src into @dst (readers: relaxed loads of a live histogram). */
void vm_hist_merge(struct vm_hist *dst, const struct vm_hist *src);
/*
 * Return: the value at quantile @q (0..1), nearest rank (the ceil(q * n)-th
 * smallest value, the smallest for q = 0): the midpoint of its bucket,
 * capped at the maximum.
 */
uint64_t vm_hist_quantile(const struct vm_hist *h, double q);
/* Return: the smallest value that lands in bucket @b, and the width. */
uint64_t vm_hist_bucket_low(unsigned int b);
uint64_t vm_hist_bucket_width(unsigned int b);

#endif /* UFVM_VM_HIST_H */
