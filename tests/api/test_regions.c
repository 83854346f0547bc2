/* SPDX-License-Identifier: MIT */
/*
 * test_regions.c - many regions at once: each serves its own file bytes.
 *
 * Maps hundreds of small regions of two files (1 to 9 pages, random page
 * offsets, read-only and writable), checks that no two overlap in memory and
 * that each reads its own file's bytes at its own offset, unmaps half of them
 * in random order, maps more (reusing the freed address space), and checks
 * every live region again -- the region lookup (sorted array, RCU) must
 * stay right as it grows, shrinks and is rebuilt.  Then writes one byte
 * through each writable region and checks that every other region mapping
 * that page of the same file sees it.
 */
#include "check.h"

#define SIZE	(2 * MiB)
#define NPG	(SIZE / PAGE)
#define NREG	400
#define SEED_A	0x5eed00a0
#define SEED_B	0x5eed00b0

struct reg {
	uint8_t *addr;
	size_t pg, npg;
	int file, prot, live;
};

static void map_one(struct ufvm *vm, char path[2][TMPSTORE_PATH_MAX], struct reg *r,
		    struct rng *g)
{
	r->file = (int)rng_below(g, 2);
	r->npg = 1 + rng_below(g, 9);
	r->pg = rng_below(g, NPG - r->npg);
	r->prot = rng_below(g, 3) ? UFVM_PROT_READ : UFVM_PROT_READ | UFVM_PROT_WRITE;
	r->addr = ut_map(vm, path[r->file], (off_t)(r->pg * PAGE), r->npg * PAGE, r->prot);
	r->live = 1;
}

static void check_all(struct reg *regs, int n, const char *when)
{
	for (int i = 0; i < n; i++) {
		struct reg *r = &regs[i];
		uint64_t seed = r->file ? SEED_B : SEED_A;

		if (!r->live)
			continue;
		assert_pattern(seed, r->addr, r->pg * PAGE, r->npg * PAGE, "%s: region %d", when, i);
		for (int j = 0; j < i; j++)
			cr_assert(!regs[j].live || r->addr + r->npg * PAGE <= regs[j].addr ||
				  regs[j].addr + regs[j].npg * PAGE <= r->addr,
				  "%s: regions %d and %d overlap in memory", when, i, j);
	}
}

Test(regions, many_regions_map_unmap, .timeout = 60)
{
	static struct reg regs[NREG + NREG / 2];
	char path[2][TMPSTORE_PATH_MAX];
	struct rng g = { .s = 2024 };
	struct ufvm_stats st;
	struct ufvm *vm;
	int n = NREG, live = NREG;

	ut_store("a", SIZE, SEED_A, path[0]);
	ut_store("b", SIZE, SEED_B, path[1]);
	vm = ut_open(NULL);
	for (int i = 0; i < n; i++)
		map_one(vm, path, &regs[i], &g);
	check_all(regs, n, "after mapping");

	for (int k = 0; k < NREG / 2; k++) {
		int i = (int)rng_below(&g, n);

		while (!regs[i].live)
			i = (i + 1) % n;
		ut_unmap(vm, regs[i].addr, regs[i].npg * PAGE);
		regs[i].live = 0;
		live--;
	}
	assert_ok(ufvm_stats(vm, &st));
	cr_assert_eq(st.regions, (uint64_t)live);
	check_all(regs, n, "after unmapping half");

	for (int k = 0; k < NREG / 2; k++, n++, live++)
		map_one(vm, path, &regs[n], &g);
	assert_ok(ufvm_stats(vm, &st));
	cr_assert_eq(st.regions, (uint64_t)live);
	check_all(regs, n, "after mapping more");

	/* One write per writable region, seen by every region of that page. */
	for (int i = 0; i < n; i++) {
		struct reg *w = &regs[i];
		uint8_t v = (uint8_t)(i + 1);
		size_t pg = w->pg + w->npg / 2, off = pg * PAGE + (size_t)i % PAGE;

		if (!w->live || !(w->prot & UFVM_PROT_WRITE))
			continue;
		w->addr[off - w->pg * PAGE] = v;
		for (int j = 0; j < n; j++) {
			struct reg *r = &regs[j];

			if (r->live && r->file == w->file && pg >= r->pg && pg < r->pg + r->npg)
				cr_assert_eq(r->addr[off - r->pg * PAGE], v,
					     "region %d misses region %d's write", j, i);
		}
		w->addr[off - w->pg * PAGE] = pattern_byte(w->file ? SEED_B : SEED_A, off);
	}

	for (int i = 0; i < n; i++)
		if (regs[i].live)
			ut_unmap(vm, regs[i].addr, regs[i].npg * PAGE);
	assert_ok(ufvm_stats(vm, &st));
	cr_assert_eq(st.regions, 0);
	ut_close(vm);
}
