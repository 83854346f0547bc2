/* SPDX-License-Identifier: MIT */
/*
 * test_read.c - reads through ufvm mappings return the bytes of the file.
 *
 * Checks, against the store file read with plain pread(2): a whole-file
 * sequential scan; random offsets and lengths (cold pages faulted in random
 * order, reads that straddle pages); several regions of one file at once,
 * overlapping; regions whose file offset is 4 KiB * k but not 64 KiB aligned
 * and whose length is an odd number of pages (a fault-around window must be
 * clipped to the region and keep the region's offset); each of these with
 * fault-around off (1) and wide (64) as well as the default; a length that
 * is not a multiple of the page size; and the tail of the last page past the
 * end of the file, which reads as zeros as with the kernel's mmap.
 */
#include "check.h"

#define FILE_SIZE	(8 * MiB)
#define SEED		0x5eed0001

static struct ufvm *open_with_fault_around(unsigned int window)
{
	struct ufvm_config cfg;

	assert_ok(ufvm_config_init(&cfg));
	if (window)
		cfg.fault_around = window;
	return ut_open(&cfg);
}

/* The file's bytes per pread(2), and a sanity check that they are the pattern. */
static uint8_t *load_store(const char *path, size_t size, uint64_t seed)
{
	uint8_t *buf = malloc(size);

	cr_assert(buf);
	cr_assert(tmpstore_read(path, buf, size, 0) == 0);
	assert_pattern(seed, buf, 0, size, "store file (test set-up)");
	return buf;
}

static void sequential_scan(unsigned int window)
{
	char path[TMPSTORE_PATH_MAX];
	struct ufvm *vm;
	uint8_t *file, *map;

	ut_store("seq", FILE_SIZE, SEED, path);
	file = load_store(path, FILE_SIZE, SEED);
	vm = open_with_fault_around(window);
	map = ut_map(vm, path, 0, FILE_SIZE, UFVM_PROT_READ);
	assert_same(map, file, 0, FILE_SIZE, "sequential scan (fault_around %u)", window);
	/* Again, now that everything is cached and mapped. */
	assert_same(map, file, 0, FILE_SIZE, "second scan (fault_around %u)", window);
	ut_unmap(vm, map, FILE_SIZE);
	ut_close(vm);
	free(file);
}

Test(read, sequential_whole_file, .timeout = 30)
{
	sequential_scan(0);
}

Test(read, sequential_fault_around_off, .timeout = 30)
{
	sequential_scan(1);
}

static void random_reads(unsigned int window, uint64_t rseed)
{
	char path[TMPSTORE_PATH_MAX];
	struct rng r = { .s = rseed };
	struct ufvm *vm;
	uint8_t *file, *map;

	ut_store("rand", FILE_SIZE, SEED, path);
	file = load_store(path, FILE_SIZE, SEED);
	vm = open_with_fault_around(window);
	map = ut_map(vm, path, 0, FILE_SIZE, UFVM_PROT_READ);
	for (int i = 0; i < 4000; i++) {
		size_t len = 1 + rng_below(&r, 2 * PAGE);
		size_t off = rng_below(&r, FILE_SIZE - len);

		assert_same(map + off, file + off, off, len,
			    "random read %d (%zu bytes, fault_around %u)", i, len, window);
	}
	/* Every page, whether or not the random pass touched it. */
	assert_same(map, file, 0, FILE_SIZE, "full check after random reads");
	ut_unmap(vm, map, FILE_SIZE);
	ut_close(vm);
	free(file);
}

Test(read, random_offsets, .timeout = 30)
{
	random_reads(0, 1);
}

Test(read, random_offsets_fault_around_off, .timeout = 30)
{
	random_reads(1, 2);
}

Test(read, random_offsets_fault_around_64, .timeout = 30)
{
	random_reads(64, 3);
}

/*
 * Several regions of one file, overlapping, read in an interleaved random
 * order: each must show its own offset's bytes, whichever region brought a
 * page into the cache first.
 */
Test(read, several_regions_one_file, .timeout = 30)
{
	static const struct {
		off_t off;
		size_t len;
	} reg[] = {
		{ 0, FILE_SIZE },
		{ 1 * MiB, 2 * MiB },
		{ 2 * MiB, 4 * MiB },
		{ 2 * MiB + 4 * PAGE, 1 * MiB },
		{ 7 * MiB, 1 * MiB },
	};
	const int n = sizeof(reg) / sizeof(reg[0]);
	char path[TMPSTORE_PATH_MAX];
	struct rng r = { .s = 42 };
	uint8_t *file, *map[5];
	struct ufvm *vm;

	ut_store("multi", FILE_SIZE, SEED, path);
	file = load_store(path, FILE_SIZE, SEED);
	vm = ut_open(NULL);
	for (int i = 0; i < n; i++) {
		map[i] = ut_map(vm, path, reg[i].off, reg[i].len, UFVM_PROT_READ);
		for (int j = 0; j < i; j++)
			cr_assert(map[i] + reg[i].len <= map[j] ||
				  map[j] + reg[j].len <= map[i],
				  "regions %d and %d overlap in memory", i, j);
	}
	for (int k = 0; k < 6000; k++) {
		int i = (int)rng_below(&r, n);
		size_t len = 1 + rng_below(&r, 64);
		size_t roff = rng_below(&r, reg[i].len - len);
		size_t foff = reg[i].off + roff;

		assert_same(map[i] + roff, file + foff, foff, len,
			    "region %d, read %d", i, k);
	}
	for (int i = 0; i < n; i++) {
		assert_same(map[i], file + reg[i].off, reg[i].off, reg[i].len,
			    "region %d full check", i);
		ut_unmap(vm, map[i], reg[i].len);
	}
	ut_close(vm);
	free(file);
}

/*
 * Regions at file offsets 4 KiB * k that are not 64 KiB aligned, with odd
 * page counts, all mapped at once.  Each region's first page is read first
 * (so a fault-around window would reach before the region start if it were
 * aligned on the address instead of clipped), then its last page, then
 * the rest.
 */
static void unaligned_regions(unsigned int window)
{
	static const unsigned int kpages[] = { 1, 3, 5, 7, 15, 17, 31, 33, 100, 257 };
	static const unsigned int npages[] = { 1, 2, 3, 17, 5, 33, 63, 65, 129, 31 };
	const int n = sizeof(kpages) / sizeof(kpages[0]);
	char path[TMPSTORE_PATH_MAX];
	struct ufvm *vm;
	uint8_t *file, *map[10];

	ut_store("unaligned", FILE_SIZE, SEED, path);
	file = load_store(path, FILE_SIZE, SEED);
	vm = open_with_fault_around(window);
	for (int i = 0; i < n; i++) {
		off_t off = (off_t)kpages[i] * PAGE;
		size_t len = npages[i] * PAGE;

		cr_assert(off % (64 * KiB) != 0);
		map[i] = ut_map(vm, path, off, len, UFVM_PROT_READ);
	}
	for (int i = 0; i < n; i++) {
		off_t off = (off_t)kpages[i] * PAGE;
		size_t len = npages[i] * PAGE;

		assert_same(map[i], file + off, off, PAGE,
			    "region at page %u, first page (fault_around %u)", kpages[i], window);
		assert_same(map[i] + len - PAGE, file + off + len - PAGE, off + len - PAGE, PAGE,
			    "region at page %u, last page (fault_around %u)", kpages[i], window);
		assert_same(map[i], file + off, off, len,
			    "region at page %u, %u pages (fault_around %u)", kpages[i], npages[i],
			    window);
	}
	for (int i = 0; i < n; i++)
		ut_unmap(vm, map[i], npages[i] * PAGE);
	ut_close(vm);
	free(file);
}

Test(read, regions_not_64k_aligned, .timeout = 30)
{
	unaligned_regions(0);
}

Test(read, regions_not_64k_aligned_fault_around_off, .timeout = 30)
{
	unaligned_regions(1);
}

Test(read, regions_not_64k_aligned_fault_around_64, .timeout = 30)
{
	unaligned_regions(64);
}

/* A length that is not a multiple of the page size maps and reads fine. */
Test(read, length_not_page_multiple, .timeout = 20)
{
	const size_t len = 3 * PAGE + 100;
	const off_t off = 5 * PAGE;
	char path[TMPSTORE_PATH_MAX];
	struct ufvm *vm;
	uint8_t *map;

	ut_store("oddlen", 1 * MiB, SEED, path);
	vm = ut_open(NULL);
	map = ut_map(vm, path, off, len, UFVM_PROT_READ);
	assert_pattern(SEED, map, off, len, "odd-length region");
	ut_unmap(vm, map, len);
	ut_close(vm);
}

/*
 * A file whose size is not a multiple of the page size: the bytes of its
 * last page past the end of file read as zeros, as with the kernel's mmap.
 */
Test(read, last_partial_page_tail_is_zero, .timeout = 20)
{
	const size_t size = 5 * PAGE + 123;
	char path[TMPSTORE_PATH_MAX];
	struct ufvm *vm;
	uint8_t *map;

	ut_store("partial", size, SEED, path);
	vm = ut_open(NULL);
	map = ut_map(vm, path, 0, 6 * PAGE, UFVM_PROT_READ);
	assert_pattern(SEED, map, 0, size, "file data");
	assert_zeros(map + size, size, 6 * PAGE - size, "tail of the last page past EOF");
	ut_unmap(vm, map, 6 * PAGE);
	ut_close(vm);
}

/* Two files mapped at once never see each other's bytes. */
Test(read, two_files, .timeout = 20)
{
	char a[TMPSTORE_PATH_MAX], b[TMPSTORE_PATH_MAX];
	struct ufvm *vm;
	uint8_t *ma, *mb;

	ut_store("a", 2 * MiB, 0xa, a);
	ut_store("b", 2 * MiB, 0xb, b);
	vm = ut_open(NULL);
	ma = ut_map(vm, a, 0, 2 * MiB, UFVM_PROT_READ);
	mb = ut_map(vm, b, 0, 2 * MiB, UFVM_PROT_READ);
	for (size_t off = 0; off < 2 * MiB; off += PAGE) {
		assert_pattern(0xa, ma + off, off, PAGE, "file a");
		assert_pattern(0xb, mb + off, off, PAGE, "file b");
	}
	ut_unmap(vm, ma, 2 * MiB);
	ut_unmap(vm, mb, 2 * MiB);
	ut_close(vm);
}
