/* SPDX-License-Identifier: MIT */
/*
 * test_coherence.c - every view of one file sees the same bytes at once.
 *
 * Checks, with no ufvm_sync() in between: two writable regions of one file
 * (mapped by path) see each other's writes immediately, for pages already
 * mapped in both and for pages cold in both; a read-only region of the same
 * file sees them too; ufvm_pwrite() is seen by every mapping (including a
 * page that was already mapped), and a write through a mapping is seen by
 * ufvm_pread() on a handle from ufvm_file_open() of the same path; a region
 * made with ufvm_map_file() and one made with ufvm_map() share one cache;
 * unmapping one region leaves the other's view (and the written data)
 * intact.
 */
#include "check.h"

#define FILE_SIZE	(4 * MiB)
#define SEED		0x5eed0010

static const int RW = UFVM_PROT_READ | UFVM_PROT_WRITE;

Test(coherence, two_regions_see_each_others_writes, .timeout = 20)
{
	/* a maps [0, 3M), b maps [1M, 4M): the overlap is file [1M, 3M). */
	char path[TMPSTORE_PATH_MAX];
	uint8_t *a, *b, *ro;
	struct ufvm *vm;
	struct rng r = { .s = 7 };

	ut_store("c", FILE_SIZE, SEED, path);
	vm = ut_open(NULL);
	a = ut_map(vm, path, 0, 3 * MiB, RW);
	b = ut_map(vm, path, 1 * MiB, 3 * MiB, RW);
	ro = ut_map(vm, path, 0, FILE_SIZE, UFVM_PROT_READ);

	/* Warm half the overlap in both regions (read), leave the rest cold. */
	for (size_t off = 1 * MiB; off < 2 * MiB; off += PAGE) {
		assert_pattern(SEED, a + off, off, 8, "a, warm-up");
		assert_pattern(SEED, b + off - 1 * MiB, off, 8, "b, warm-up");
	}
	for (int i = 0; i < 2000; i++) {
		size_t off = 1 * MiB + rng_below(&r, 2 * MiB);
		uint8_t v = (uint8_t)(i * 31 + 1), w = (uint8_t)~v;

		a[off] = v;
		cr_assert_eq(b[off - 1 * MiB], v, "b does not see a's write at %#zx (%s page)",
			     off, off < 2 * MiB ? "warm" : "cold");
		cr_assert_eq(ro[off], v, "read-only region does not see a's write at %#zx", off);
		b[off - 1 * MiB] = w;
		cr_assert_eq(a[off], w, "a does not see b's write at %#zx", off);
		cr_assert_eq(ro[off], w, "read-only region does not see b's write at %#zx", off);
	}
	/* A page first touched by a write in b, then read through a. */
	memset(b + 2 * MiB + 5 * PAGE - 1 * MiB, 0x5a, PAGE);
	for (size_t i = 0; i < PAGE; i++)
		cr_assert_eq(a[2 * MiB + 5 * PAGE + i], 0x5a, "cold page written in b, read in a");

	/* Unmapping a leaves b's view, with a's writes, intact. */
	a[1 * MiB + 3] = 0xc3;
	ut_unmap(vm, a, 3 * MiB);
	cr_assert_eq(b[3], 0xc3, "b lost a's write when a was unmapped");
	assert_pattern(SEED, b + 3 * MiB - 1 * MiB, 3 * MiB, 1 * MiB, "b outside the overlap");
	ut_unmap(vm, b, 3 * MiB);
	ut_unmap(vm, ro, FILE_SIZE);
	ut_close(vm);
}

/* ufvm_pwrite() then a read through the mapping (mapped page and cold page). */
Test(coherence, pwrite_then_mapping_read, .timeout = 20)
{
	char path[TMPSTORE_PATH_MAX];
	uint8_t buf[3 * PAGE], *map;
	struct ufvm_file *f;
	struct ufvm *vm;

	ut_store("c", FILE_SIZE, SEED, path);
	vm = ut_open(NULL);
	assert_ok(ufvm_file_open(vm, path, UFVM_RDWR, &f));
	map = ut_map(vm, path, 0, FILE_SIZE, UFVM_PROT_READ);

	/* Page 10 is mapped (read), page 500 is cold; both straddled by writes. */
	assert_pattern(SEED, map + 10 * PAGE, 10 * PAGE, PAGE, "page 10 before");
	for (int gen = 0; gen < 3; gen++) {
		const size_t offs[] = { 10 * PAGE, 10 * PAGE + 4000, 500 * PAGE - 100 };

		for (int k = 0; k < 3; k++) {
			size_t off = offs[k];

			pattern_fill(SEED + 100 + gen * 3 + k, buf, off, sizeof(buf));
			ut_pwrite(f, buf, sizeof(buf), off);
			assert_same(map + off, buf, off, sizeof(buf),
				    "mapping after ufvm_pwrite (gen %d, write %d)", gen, k);
		}
	}
	ut_unmap(vm, map, FILE_SIZE);
	assert_ok(ufvm_file_close(f));
	ut_close(vm);
}

/* A write through the mapping, then ufvm_pread(). */
Test(coherence, mapping_write_then_pread, .timeout = 20)
{
	char path[TMPSTORE_PATH_MAX];
	uint8_t buf[2 * PAGE], want[2 * PAGE], *map;
	struct ufvm_file *f;
	struct ufvm *vm;

	ut_store("c", FILE_SIZE, SEED, path);
	vm = ut_open(NULL);
	map = ut_map(vm, path, 0, FILE_SIZE, RW);
	assert_ok(ufvm_file_open(vm, path, UFVM_RDONLY, &f));

	for (size_t pg = 1; pg < FILE_SIZE / PAGE - 1; pg += 61) {
		size_t off = pg * PAGE - 1000;	/* straddles two pages */

		/* Half the time the cache already holds the page via pread. */
		if (pg % 2)
			ut_pread(f, buf, sizeof(buf), off);
		pattern_fill(SEED + pg, want, off, sizeof(want));
		memcpy(map + off, want, sizeof(want));
		ut_pread(f, buf, sizeof(buf), off);
		assert_same(buf, want, off, sizeof(buf), "ufvm_pread after a mapping write");
	}
	/* Unwritten bytes are still the file's. */
	ut_pread(f, buf, PAGE, 3 * PAGE);
	assert_pattern(SEED, buf, 3 * PAGE, PAGE, "ufvm_pread of an unwritten page");
	assert_ok(ufvm_file_close(f));
	ut_unmap(vm, map, FILE_SIZE);
	ut_close(vm);
}

/* ufvm_map_file() and ufvm_map() of the same path share one page cache. */
Test(coherence, map_file_and_map_path_share_cache, .timeout = 20)
{
	char path[TMPSTORE_PATH_MAX];
	uint8_t *a, *b;
	struct ufvm_file *f;
	struct ufvm *vm;

	ut_store("c", FILE_SIZE, SEED, path);
	vm = ut_open(NULL);
	assert_ok(ufvm_file_open(vm, path, UFVM_RDWR, &f));
	a = NULL;
	assert_ok(ufvm_map_file(f, 0, FILE_SIZE, RW, UFVM_MAP_SHARED, (void **)&a));
	b = ut_map(vm, path, 0, FILE_SIZE, RW);
	for (size_t off = 0; off < FILE_SIZE; off += 37 * PAGE + 11) {
		a[off] = (uint8_t)(off >> 12);
		cr_assert_eq(b[off], (uint8_t)(off >> 12), "ufvm_map region misses write at %#zx",
			     off);
		b[off + 1] = 0xee;
		cr_assert_eq(a[off + 1], 0xee, "ufvm_map_file region misses write at %#zx",
			     off + 1);
	}
	ut_unmap(vm, a, FILE_SIZE);
	ut_unmap(vm, b, FILE_SIZE);
	assert_ok(ufvm_file_close(f));
	ut_close(vm);
}

/*
 * Interleaved writers: pwrite and mapping writes to the same bytes in turn,
 * the last one wins in every view.
 */
Test(coherence, last_writer_wins, .timeout = 20)
{
	char path[TMPSTORE_PATH_MAX];
	struct ufvm_file *f;
	struct ufvm *vm;
	uint8_t *map, v, got;

	ut_store("c", 1 * MiB, SEED, path);
	vm = ut_open(NULL);
	assert_ok(ufvm_file_open(vm, path, UFVM_RDWR, &f));
	map = ut_map(vm, path, 0, 1 * MiB, RW);
	for (int i = 0; i < 1000; i++) {
		size_t off = (size_t)(i * 7919) % (1 * MiB);

		v = (uint8_t)i;
		if (i % 2) {
			map[off] = v;
		} else {
			ut_pwrite(f, &v, 1, off);
		}
		ut_pread(f, &got, 1, off);
		cr_assert_eq(got, v, "ufvm_pread at %#zx, iteration %d", off, i);
		cr_assert_eq(map[off], v, "mapping at %#zx, iteration %d", off, i);
	}
	ut_unmap(vm, map, 1 * MiB);
	assert_ok(ufvm_file_close(f));
	ut_close(vm);
}
