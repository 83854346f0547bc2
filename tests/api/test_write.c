/* SPDX-License-Identifier: MIT */
/*
 * test_write.c - writes through ufvm reach the store file.
 *
 * Checks that after ufvm_sync() the store file, read with plain pread(2),
 * holds every byte written through a writable mapping before the call and
 * nothing else changed (whole pages, single bytes, writes that straddle two
 * pages, pages first read then written and pages first touched by a write);
 * that a second write to a page after a sync is written back by the next
 * sync (the page was write-protected again, and the write re-dirtied it);
 * that bytes written into the last page past the end of file stay out of
 * the file (it does not grow);
 * that ufvm_unmap(), ufvm_close() and ufvm_fsync() also write back; and that
 * writing to a read-only region is refused with SIGSEGV, as with mmap.
 */
#include "check.h"

#define FILE_SIZE	(4 * MiB)
#define SEED		0x5eed0002
#define SEED2		0x5eed0003

/* Expected file contents: the pattern of SEED with the test's writes applied. */
static uint8_t *shadow_new(void)
{
	uint8_t *s = malloc(FILE_SIZE);

	cr_assert(s);
	pattern_fill(SEED, s, 0, FILE_SIZE);
	return s;
}

static void assert_store_is(const char *path, const uint8_t *shadow, const char *when)
{
	uint8_t *file = malloc(FILE_SIZE);

	cr_assert(file);
	cr_assert(tmpstore_read(path, file, FILE_SIZE, 0) == 0);
	assert_same(file, shadow, 0, FILE_SIZE, "store file %s", when);
	free(file);
}

/* A mix of writes into @map (the whole file), mirrored in @shadow. */
static void scribble(uint8_t *map, uint8_t *shadow, uint64_t seed)
{
	struct rng r = { .s = seed };
	uint8_t page[PAGE];

	/* Whole pages, every 7th page: some cold, some read first. */
	for (size_t pg = 0; pg < FILE_SIZE / PAGE; pg += 7) {
		if (pg % 2)
			(void)*(volatile uint8_t *)(map + pg * PAGE);
		pattern_fill(seed, page, pg * PAGE, PAGE);
		memcpy(map + pg * PAGE, page, PAGE);
		memcpy(shadow + pg * PAGE, page, PAGE);
	}
	/* Single bytes at random offsets. */
	for (int i = 0; i < 500; i++) {
		size_t off = rng_below(&r, FILE_SIZE);
		uint8_t v = (uint8_t)rng_next(&r);

		map[off] = v;
		shadow[off] = v;
	}
	/* 16 bytes straddling each of a few page boundaries. */
	for (size_t pg = 3; pg < FILE_SIZE / PAGE; pg += 97) {
		size_t off = pg * PAGE - 8;

		pattern_fill(seed ^ 0xff, map + off, off, 16);
		pattern_fill(seed ^ 0xff, shadow + off, off, 16);
	}
}

Test(write, sync_then_pread_store, .timeout = 30)
{
	char path[TMPSTORE_PATH_MAX];
	uint8_t *map, *shadow = shadow_new();
	struct ufvm *vm;

	ut_store("w", FILE_SIZE, SEED, path);
	vm = ut_open(NULL);
	map = ut_map(vm, path, 0, FILE_SIZE, UFVM_PROT_READ | UFVM_PROT_WRITE);
	scribble(map, shadow, SEED2);
	assert_same(map, shadow, 0, FILE_SIZE, "mapping after writes");
	assert_ok(ufvm_sync(vm, map, FILE_SIZE));
	assert_store_is(path, shadow, "after ufvm_sync");
	ut_unmap(vm, map, FILE_SIZE);
	free(shadow);
	ut_close(vm);
}

/* Sync of a sub-range writes back that range (the rest is not checked). */
Test(write, sync_subrange, .timeout = 20)
{
	char path[TMPSTORE_PATH_MAX];
	uint8_t *map, got[2 * PAGE], want[2 * PAGE];
	struct ufvm *vm;

	ut_store("w", FILE_SIZE, SEED, path);
	vm = ut_open(NULL);
	map = ut_map(vm, path, 0, FILE_SIZE, UFVM_PROT_READ | UFVM_PROT_WRITE);
	pattern_fill(SEED2, map + 100 * PAGE, 100 * PAGE, 2 * PAGE);
	pattern_fill(SEED2, map + 900 * PAGE, 900 * PAGE, PAGE);
	assert_ok(ufvm_sync(vm, map + 100 * PAGE, 2 * PAGE));
	cr_assert(tmpstore_read(path, got, 2 * PAGE, 100 * PAGE) == 0);
	pattern_fill(SEED2, want, 100 * PAGE, 2 * PAGE);
	assert_same(got, want, 100 * PAGE, 2 * PAGE, "store after sync of pages 100-101");
	ut_unmap(vm, map, FILE_SIZE);
	ut_close(vm);
}

/*
 * Write, sync, write the same pages again, sync: the second generation must
 * reach the store.  Catches a sync that leaves pages writable (the second
 * write then dirties nothing) or marks them clean after a racing write.
 */
Test(write, rewrite_after_sync, .timeout = 30)
{
	char path[TMPSTORE_PATH_MAX];
	uint8_t *map, *shadow = shadow_new();
	struct ufvm *vm;

	ut_store("w", FILE_SIZE, SEED, path);
	vm = ut_open(NULL);
	map = ut_map(vm, path, 0, FILE_SIZE, UFVM_PROT_READ | UFVM_PROT_WRITE);
	for (int gen = 1; gen <= 4; gen++) {
		scribble(map, shadow, SEED2 + gen);
		assert_ok(ufvm_sync(vm, map, FILE_SIZE));
		assert_store_is(path, shadow, "after a later ufvm_sync");
	}
	ut_unmap(vm, map, FILE_SIZE);
	free(shadow);
	ut_close(vm);
}

Test(write, unmap_writes_back, .timeout = 30)
{
	char path[TMPSTORE_PATH_MAX];
	uint8_t *map, *shadow = shadow_new();
	struct ufvm *vm;

	ut_store("w", FILE_SIZE, SEED, path);
	vm = ut_open(NULL);
	map = ut_map(vm, path, 0, FILE_SIZE, UFVM_PROT_READ | UFVM_PROT_WRITE);
	scribble(map, shadow, SEED2);
	ut_unmap(vm, map, FILE_SIZE);
	assert_store_is(path, shadow, "after ufvm_unmap");
	free(shadow);
	ut_close(vm);
}

Test(write, close_writes_back, .timeout = 30)
{
	char path[TMPSTORE_PATH_MAX];
	uint8_t *map, *shadow = shadow_new();
	struct ufvm *vm;

	ut_store("w", FILE_SIZE, SEED, path);
	vm = ut_open(NULL);
	map = ut_map(vm, path, 0, FILE_SIZE, UFVM_PROT_READ | UFVM_PROT_WRITE);
	scribble(map, shadow, SEED2);
	ut_close(vm);		/* the region is still mapped */
	assert_store_is(path, shadow, "after ufvm_close");
	free(shadow);
}

/* ufvm_pwrite() then ufvm_fsync() of the file handle. */
Test(write, pwrite_fsync, .timeout = 20)
{
	char path[TMPSTORE_PATH_MAX];
	uint8_t *shadow = shadow_new(), buf[3 * PAGE];
	struct ufvm_file *f;
	struct ufvm *vm;

	ut_store("w", FILE_SIZE, SEED, path);
	vm = ut_open(NULL);
	assert_ok(ufvm_file_open(vm, path, UFVM_RDWR, &f));
	for (size_t off = 1000; off < FILE_SIZE - sizeof(buf); off += 301 * PAGE + 77) {
		pattern_fill(SEED2, buf, off, sizeof(buf));
		ut_pwrite(f, buf, sizeof(buf), off);
		memcpy(shadow + off, buf, sizeof(buf));
	}
	assert_ok(ufvm_fsync(f));
	assert_store_is(path, shadow, "after ufvm_fsync");
	assert_ok(ufvm_file_close(f));
	free(shadow);
	ut_close(vm);
}

/*
 * The last page of a file whose size is not page aligned: writes before EOF
 * persist, writes past EOF inside that page are allowed (as with mmap) but
 * neither grow the file nor reach it.
 */
Test(write, last_page_tail_stays_out_of_file, .timeout = 20)
{
	const off_t size = 5 * PAGE + 123;
	char path[TMPSTORE_PATH_MAX];
	uint8_t *map, buf[6 * PAGE], want[6 * PAGE];
	struct ufvm *vm;

	ut_store("tail", size, SEED, path);
	vm = ut_open(NULL);
	map = ut_map(vm, path, 0, 6 * PAGE, UFVM_PROT_READ | UFVM_PROT_WRITE);
	pattern_fill(SEED, want, 0, size);
	memset(map + size - 23, 0x5c, 23);		/* last bytes of the file */
	memset(want + size - 23, 0x5c, 23);
	memset(map + size, 0xee, 6 * PAGE - size);	/* past EOF, same page */
	assert_ok(ufvm_sync(vm, map, 6 * PAGE));
	cr_assert_eq(tmpstore_size(path), size, "store file grew to %lld after a write past EOF",
		     (long long)tmpstore_size(path));
	cr_assert(tmpstore_read(path, buf, size, 0) == 0);
	assert_same(buf, want, 0, size, "store file");
	ut_unmap(vm, map, 6 * PAGE);
	ut_close(vm);
	cr_assert_eq(tmpstore_size(path), size, "store file grew to %lld after unmap and close",
		     (long long)tmpstore_size(path));
}

/* Writing to a read-only region faults like a PROT_READ mmap: SIGSEGV. */
Test(write, readonly_region_refuses_writes, .timeout = 20, .signal = SIGSEGV)
{
	char path[TMPSTORE_PATH_MAX];
	struct ufvm *vm;
	uint8_t *map;

	ut_store("ro", 1 * MiB, SEED, path);
	vm = ut_open(NULL);
	map = ut_map(vm, path, 0, 1 * MiB, UFVM_PROT_READ);
	assert_pattern(SEED, map, 0, PAGE, "read before the write");
	ut_about_to_die(SIGSEGV);
	*(volatile uint8_t *)(map + 10) = 1;
	cr_assert_fail("a write to a read-only region succeeded");
}
