/* SPDX-License-Identifier: MIT */
/*
 * test_truncate.c - ufvm_truncate() shrinks and grows a file like ftruncate
 * on a file mapped MAP_SHARED.
 *
 * Checks: after shrinking, a read past the new end through a mapping that
 * still covers it dies of SIGBUS (uncaught, as in a plain program), and a
 * caught SIGBUS reports the faulting address, for reads and writes; the
 * part before the new end is intact (clean and dirty pages), the rest of the
 * last partial page reads as zeros, ufvm_pread() stops at the end, and the
 * store file has the new size -- also after write-back of pages that were
 * dirty past the new end; growing makes the new part read as zeros, also
 * where SIGBUS was delivered before and where old data lived before a
 * shrink; a file created empty through ufvm_file_open(UFVM_CREAT) maps,
 * faults past its (zero) end, and grows into something written back.
 */
#include "check.h"

#define SEED	0x5eed0030

static const int RW = UFVM_PROT_READ | UFVM_PROT_WRITE;

Test(truncate, down_then_access_past_eof_dies_of_sigbus, .timeout = 20, .signal = SIGBUS)
{
	char path[TMPSTORE_PATH_MAX];
	struct ufvm_file *f;
	struct ufvm *vm;
	uint8_t *map;

	ut_store("t", 16 * PAGE, SEED, path);
	vm = ut_open(NULL);
	assert_ok(ufvm_file_open(vm, path, UFVM_RDWR, &f));
	map = ut_map(vm, path, 0, 16 * PAGE, UFVM_PROT_READ);
	assert_pattern(SEED, map, 0, 16 * PAGE, "before truncate");	/* all mapped */
	assert_ok(ufvm_truncate(f, 8 * PAGE));
	assert_pattern(SEED, map, 0, 8 * PAGE, "after truncate, before EOF");
	ut_about_to_die(SIGBUS);
	(void)*(volatile uint8_t *)(map + 12 * PAGE + 5);
	cr_assert_fail("read of page 12 after truncate to 8 pages did not raise SIGBUS");
}

/* Expect a caught SIGBUS at @p (read, or write if @wr). */
static void expect_sigbus(uint8_t *p, int wr, const char *what)
{
	struct sigbus_info si;
	uint8_t v;
	int r = wr ? sigbus_write(p, 0xab, &si) : sigbus_read(p, &v, &si);

	cr_assert_eq(r, 1, "%s at %p: no SIGBUS (read %#x)", what, (void *)p, wr ? 0 : v);
	cr_assert_eq(si.addr, (void *)p, "%s: si_addr %p, want %p", what, si.addr, (void *)p);
}

Test(truncate, down_keeps_head_and_faults_past_eof, .timeout = 20)
{
	const off_t size = 5 * PAGE + 1000;
	char path[TMPSTORE_PATH_MAX];
	uint8_t *map, buf[16 * PAGE], want[6 * PAGE];
	struct ufvm_file *f;
	struct ufvm *vm;
	off_t fsize;

	sigbus_install();
	ut_store("t", 16 * PAGE, SEED, path);
	vm = ut_open(NULL);
	assert_ok(ufvm_file_open(vm, path, UFVM_RDWR, &f));
	map = ut_map(vm, path, 0, 16 * PAGE, RW);
	assert_pattern(SEED, map, 0, 16 * PAGE, "before truncate");
	pattern_fill(SEED, want, 0, sizeof(want));
	memset(map + 2 * PAGE, 0x12, 100);		/* dirty, kept */
	memset(want + 2 * PAGE, 0x12, 100);
	memset(map + 5 * PAGE + 10, 0x13, 10);		/* dirty, in the last page */
	memset(want + 5 * PAGE + 10, 0x13, 10);
	memset(map + 10 * PAGE, 0x14, PAGE);		/* dirty, past the new end */
	memset(want + size, 0, sizeof(want) - size);

	assert_ok(ufvm_truncate(f, size));

	assert_ok(ufvm_file_size(f, &fsize));
	cr_assert_eq(fsize, size, "ufvm_file_size %lld, want %lld", (long long)fsize,
		     (long long)size);
	cr_assert_eq(tmpstore_size(path), size, "store file size %lld, want %lld",
		     (long long)tmpstore_size(path), (long long)size);
	assert_same(map, want, 0, 6 * PAGE, "mapping after truncate");
	cr_assert_eq(ufvm_pread(f, buf, 16 * PAGE, 0), size, "ufvm_pread across the end");
	assert_same(buf, want, 0, size, "ufvm_pread after truncate");
	cr_assert_eq(ufvm_pread(f, buf, PAGE, size), 0, "ufvm_pread at the end");
	cr_assert_eq(ufvm_pread(f, buf, PAGE, 8 * PAGE), 0, "ufvm_pread past the end");

	expect_sigbus(map + 6 * PAGE, 0, "read of the first page past EOF");
	expect_sigbus(map + 10 * PAGE + 77, 0, "read of the dirty page past EOF");
	expect_sigbus(map + 15 * PAGE + 4095, 0, "read of the last page");
	expect_sigbus(map + 7 * PAGE + 1, 1, "write past EOF");
	/* The head is still fine after those SIGBUSes. */
	assert_same(map, want, 0, size, "mapping after the SIGBUSes");

	assert_ok(ufvm_sync(vm, map, 6 * PAGE));
	ut_unmap(vm, map, 16 * PAGE);
	assert_ok(ufvm_file_close(f));
	ut_close(vm);
	cr_assert_eq(tmpstore_size(path), size,
		     "store file size %lld after close, want %lld: a page past EOF was written back",
		     (long long)tmpstore_size(path), (long long)size);
	cr_assert(tmpstore_read(path, buf, size, 0) == 0);
	assert_same(buf, want, 0, size, "store file after truncate and close");
}

/*
 * Growing: the new part reads as zeros, including a page that got SIGBUS
 * while it was past the end.
 */
Test(truncate, up_reads_zeros, .timeout = 20)
{
	char path[TMPSTORE_PATH_MAX];
	uint8_t *map, buf[PAGE];
	struct ufvm_file *f;
	struct ufvm *vm;
	off_t fsize;

	sigbus_install();
	ut_store("t", 4 * PAGE, SEED, path);
	vm = ut_open(NULL);
	assert_ok(ufvm_file_open(vm, path, UFVM_RDWR, &f));
	map = ut_map(vm, path, 0, 16 * PAGE, RW);
	assert_pattern(SEED, map, 0, 4 * PAGE, "before grow");
	expect_sigbus(map + 8 * PAGE, 0, "read past EOF before grow");

	assert_ok(ufvm_truncate(f, 16 * PAGE));
	assert_ok(ufvm_file_size(f, &fsize));
	cr_assert_eq(fsize, 16 * PAGE);
	cr_assert_eq(tmpstore_size(path), (off_t)(16 * PAGE), "store file size after grow");
	assert_pattern(SEED, map, 0, 4 * PAGE, "old part after grow");
	assert_zeros(map + 8 * PAGE, 8 * PAGE, PAGE, "page that had SIGBUS, after grow");
	assert_zeros(map + 4 * PAGE, 4 * PAGE, 12 * PAGE, "new part after grow");
	ut_pread(f, buf, PAGE, 12 * PAGE);
	assert_zeros(buf, 12 * PAGE, PAGE, "ufvm_pread of the new part");

	memset(map + 9 * PAGE, 0x66, PAGE);
	assert_ok(ufvm_sync(vm, map, 16 * PAGE));
	cr_assert(tmpstore_read(path, buf, PAGE, 9 * PAGE) == 0);
	for (size_t i = 0; i < PAGE; i++)
		cr_assert_eq(buf[i], 0x66, "store after a write into the grown part");
	ut_unmap(vm, map, 16 * PAGE);
	assert_ok(ufvm_file_close(f));
	ut_close(vm);
}

/* Shrink then grow: the regrown part is zeros, not the old cached data. */
Test(truncate, down_then_up_reads_zeros, .timeout = 20)
{
	char path[TMPSTORE_PATH_MAX];
	uint8_t *map, buf[12 * PAGE];
	struct ufvm_file *f;
	struct ufvm *vm;

	ut_store("t", 16 * PAGE, SEED, path);
	vm = ut_open(NULL);
	assert_ok(ufvm_file_open(vm, path, UFVM_RDWR, &f));
	map = ut_map(vm, path, 0, 16 * PAGE, RW);
	assert_pattern(SEED, map, 0, 16 * PAGE, "before");
	memset(map + 12 * PAGE, 0x77, PAGE);		/* dirty, will be cut */

	assert_ok(ufvm_truncate(f, 4 * PAGE));
	assert_ok(ufvm_truncate(f, 16 * PAGE));

	assert_pattern(SEED, map, 0, 4 * PAGE, "head");
	assert_zeros(map + 4 * PAGE, 4 * PAGE, 12 * PAGE, "regrown part through the mapping");
	ut_pread(f, buf, 12 * PAGE, 4 * PAGE);
	assert_zeros(buf, 4 * PAGE, 12 * PAGE, "regrown part through ufvm_pread");
	ut_unmap(vm, map, 16 * PAGE);
	assert_ok(ufvm_file_close(f));
	ut_close(vm);
	cr_assert(tmpstore_read(path, buf, 12 * PAGE, 4 * PAGE) == 0);
	assert_zeros(buf, 4 * PAGE, 12 * PAGE, "regrown part in the store file");
}

/* An empty file made by ufvm_file_open(CREAT): map, SIGBUS, grow, write, persist. */
Test(truncate, create_empty_then_grow, .timeout = 20)
{
	char path[TMPSTORE_PATH_MAX];
	uint8_t *map, buf[4 * PAGE];
	struct ufvm_file *f;
	struct ufvm *vm;
	off_t fsize = -1;

	sigbus_install();
	tmpstore_path("new", path);
	vm = ut_open(NULL);
	assert_ok(ufvm_file_open(vm, path, UFVM_RDWR | UFVM_CREAT, &f));
	cr_assert_eq(tmpstore_size(path), 0, "UFVM_CREAT did not create an empty file");
	assert_ok(ufvm_file_size(f, &fsize));
	cr_assert_eq(fsize, 0);
	map = ut_map(vm, path, 0, 4 * PAGE, RW);
	expect_sigbus(map, 0, "read of an empty file");
	expect_sigbus(map + PAGE, 1, "write to an empty file");

	assert_ok(ufvm_truncate(f, 4 * PAGE));
	assert_zeros(map, 0, 4 * PAGE, "grown empty file");
	pattern_fill(SEED, map, 0, 4 * PAGE);
	assert_ok(ufvm_sync(vm, map, 4 * PAGE));
	cr_assert(tmpstore_read(path, buf, sizeof(buf), 0) == 0);
	assert_pattern(SEED, buf, 0, sizeof(buf), "store file after grow, write, sync");
	ut_unmap(vm, map, 4 * PAGE);
	assert_ok(ufvm_file_close(f));
	ut_close(vm);
}
