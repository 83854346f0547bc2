/* SPDX-License-Identifier: MIT */
/*
 * test_badinput.c - bad input gets a clear error and changes nothing.
 *
 * Checks each bad input of the API: unaligned offset, zero length, missing
 * file, unreadable file, directory, a FIFO (refused, with UFVM_CREAT too,
 * without waiting for a writer), read-only file mapped writable (and opened
 * read-only with UFVM_CREAT, which must open it), unknown
 * flags / protection / open flags / injection kind, double unmap, unmap of
 * a wrong length or address, negative offsets and lengths, address ranges
 * whose page round-up wraps, file ranges past the largest off_t, nonsense
 * configuration values, NULL arguments.  After each failure the instance
 * still works: the region count is unchanged and a good map still reads
 * the file.  A length past the end of the file maps fine; accesses past
 * the end get SIGBUS.
 *
 * Root: the tests run as root, and root's CAP_DAC_OVERRIDE and
 * CAP_DAC_READ_SEARCH make chmod 000 / 0444 meaningless.  The "unreadable"
 * and "read-only (mode)" tests therefore first drop those two capabilities
 * from the test process (capset; the other capabilities, which userfaultfd
 * may need, are kept), after which the kernel enforces the mode bits as for
 * any user.  The "read-only (immutable)" test uses chattr +i instead, which
 * stops even root from opening for writing (EPERM); it is skipped when the
 * file system does not support the attribute.
 *
 * Use after close is not tested: a closed ufvm or ufvm_file handle is
 * freed memory, and no API can tell a freed handle from a live one; the
 * skipped test below says so.
 */
#include <fcntl.h>
#include <linux/capability.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "check.h"

#define SEED	0x5eed0050
#define SIZE	(1 * MiB)

static const int RW = UFVM_PROT_READ | UFVM_PROT_WRITE;

static uint64_t regions(struct ufvm *vm)
{
	struct ufvm_stats st;

	assert_ok(ufvm_stats(vm, &st));
	return st.regions;
}

/* The instance still maps and reads @path correctly, with @n regions before. */
static void assert_still_works(struct ufvm *vm, const char *path, uint64_t n)
{
	uint8_t *map;

	cr_assert_eq(regions(vm), n, "a failed call changed the region count");
	map = ut_map(vm, path, PAGE, SIZE - PAGE, UFVM_PROT_READ);
	assert_pattern(SEED, map, PAGE, SIZE - PAGE, "a good map after failed calls");
	ut_unmap(vm, map, SIZE - PAGE);
}

/*
 * After failed calls: the one region, @map of all of @path, is intact and
 * still served; unmap it, check the instance still works, close it.
 */
static void region_intact_close(struct ufvm *vm, const char *path, uint8_t *map,
				const char *what)
{
	cr_assert_eq(regions(vm), 1, "%s changed the region count", what);
	assert_pattern(SEED, map, 0, SIZE, "region after %s", what);
	ut_unmap(vm, map, SIZE);
	assert_still_works(vm, path, 0);
	ut_close(vm);
}

static struct ufvm *setup(char *path)
{
	ut_store("good", SIZE, SEED, path);
	return ut_open(NULL);
}

static void map_expect(struct ufvm *vm, const char *path, off_t off, size_t len, int prot,
		       int flags, int err)
{
	void *addr = (void *)0x1;
	int r = ufvm_map(vm, path, off, len, prot, flags, &addr);

	cr_assert_eq(r, -err, "ufvm_map(%s, off %#llx, len %#zx, prot %#x, flags %#x) = %d (%s), want %d",
		     path, (unsigned long long)off, len, prot, flags, r, ufvm_strerror(r), -err);
}

Test(badinput, unaligned_offset, .timeout = 20)
{
	char path[TMPSTORE_PATH_MAX];
	struct ufvm *vm = setup(path);
	const off_t offs[] = { 1, 100, PAGE - 1, PAGE + 1, 3 * PAGE + 2048 };

	for (size_t i = 0; i < sizeof(offs) / sizeof(offs[0]); i++) {
		map_expect(vm, path, offs[i], PAGE, UFVM_PROT_READ, 0, EINVAL);
		map_expect(vm, path, offs[i], PAGE, RW, UFVM_MAP_SHARED, EINVAL);
	}
	map_expect(vm, path, -(off_t)PAGE, PAGE, UFVM_PROT_READ, 0, EINVAL);
	assert_still_works(vm, path, 0);
	ut_close(vm);
}

Test(badinput, zero_length, .timeout = 20)
{
	char path[TMPSTORE_PATH_MAX];
	struct ufvm *vm = setup(path);

	map_expect(vm, path, 0, 0, UFVM_PROT_READ, 0, EINVAL);
	map_expect(vm, path, PAGE, 0, RW, 0, EINVAL);
	assert_still_works(vm, path, 0);
	ut_close(vm);
}

Test(badinput, missing_file, .timeout = 20)
{
	char path[TMPSTORE_PATH_MAX], missing[TMPSTORE_PATH_MAX];
	struct ufvm *vm = setup(path);
	struct ufvm_file *f = NULL;

	tmpstore_path("no-such-file", missing);
	map_expect(vm, missing, 0, PAGE, UFVM_PROT_READ, 0, ENOENT);
	map_expect(vm, missing, 0, PAGE, RW, 0, ENOENT);
	map_expect(vm, "/nonexistent-dir/x", 0, PAGE, UFVM_PROT_READ, 0, ENOENT);
	assert_err(ufvm_file_open(vm, missing, UFVM_RDONLY, &f), ENOENT);
	cr_assert_eq(access(missing, F_OK), -1, "a failed map created the file");
	assert_still_works(vm, path, 0);
	ut_close(vm);
}

Test(badinput, directory, .timeout = 20)
{
	char path[TMPSTORE_PATH_MAX];
	struct ufvm *vm = setup(path);
	struct ufvm_file *f = NULL;

	map_expect(vm, tmpstore_dir(), 0, PAGE, UFVM_PROT_READ, 0, EISDIR);
	map_expect(vm, "/", 0, PAGE, RW, 0, EISDIR);
	assert_err(ufvm_file_open(vm, tmpstore_dir(), UFVM_RDONLY, &f), EISDIR);
	assert_still_works(vm, path, 0);
	ut_close(vm);
}

Test(badinput, fifo, .timeout = 20)
{
	char path[TMPSTORE_PATH_MAX], fifo[TMPSTORE_PATH_MAX];
	struct ufvm *vm = setup(path);
	struct ufvm_file *f = NULL;

	tmpstore_path("fifo", fifo);
	unlink(fifo);
	cr_assert(mkfifo(fifo, 0644) == 0, "mkfifo %s: %s", fifo, strerror(errno));
	map_expect(vm, fifo, 0, PAGE, UFVM_PROT_READ, 0, EINVAL);
	assert_err(ufvm_file_open(vm, fifo, UFVM_RDONLY, &f), EINVAL);
	/* Opened to create it if missing: no writer comes, none is waited for. */
	assert_err(ufvm_file_open(vm, fifo, UFVM_RDONLY | UFVM_CREAT, &f), EINVAL);
	assert_err(ufvm_file_open(vm, fifo, UFVM_RDWR | UFVM_CREAT, &f), EINVAL);
	unlink(fifo);
	assert_still_works(vm, path, 0);
	ut_close(vm);
}

/*
 * Drop CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH from this process's
 * effective set, so that file modes bind root too.
 */
static void drop_dac_override(void)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[2];

	cr_assert(syscall(SYS_capget, &hdr, data) == 0, "capget: %s", strerror(errno));
	data[0].effective &= ~((1u << CAP_DAC_OVERRIDE) | (1u << CAP_DAC_READ_SEARCH));
	cr_assert(syscall(SYS_capset, &hdr, data) == 0, "capset: %s", strerror(errno));
}

/* Is open(@path, @flags) refused now?  (Sanity check of the set-up.) */
static int open_refused(const char *path, int flags)
{
	int fd = open(path, flags);

	if (fd >= 0) {
		close(fd);
		return 0;
	}
	return 1;
}

Test(badinput, unreadable_file, .timeout = 20)
{
	char path[TMPSTORE_PATH_MAX], secret[TMPSTORE_PATH_MAX];
	struct ufvm_file *f = NULL;
	struct ufvm *vm;

	ut_store("secret", SIZE, SEED, secret);
	cr_assert(chmod(secret, 0) == 0);
	drop_dac_override();
	if (!open_refused(secret, O_RDONLY))
		cr_skip_test("mode 000 does not stop this process from reading a file");
	vm = setup(path);
	map_expect(vm, secret, 0, PAGE, UFVM_PROT_READ, 0, EACCES);
	map_expect(vm, secret, 0, PAGE, RW, 0, EACCES);
	assert_err(ufvm_file_open(vm, secret, UFVM_RDONLY, &f), EACCES);
	assert_still_works(vm, path, 0);
	ut_close(vm);
}

static void expect_readonly_refused(struct ufvm *vm, const char *ro, const char *why)
{
	struct ufvm_file *f = NULL;
	void *addr = NULL;
	uint8_t *map;
	int r;

	r = ufvm_map(vm, ro, 0, SIZE, RW, 0, &addr);
	cr_assert(r == -EACCES || r == -EPERM,
		  "writable map of a %s file = %d (%s), want -EACCES or -EPERM", why, r,
		  ufvm_strerror(r));
	r = ufvm_file_open(vm, ro, UFVM_RDWR, &f);
	cr_assert(r == -EACCES || r == -EPERM,
		  "ufvm_file_open(RDWR) of a %s file = %d (%s), want -EACCES or -EPERM", why, r,
		  ufvm_strerror(r));
	r = ufvm_file_open(vm, ro, UFVM_RDWR | UFVM_CREAT, &f);
	cr_assert(r == -EACCES || r == -EPERM,
		  "ufvm_file_open(RDWR | CREAT) of a %s file = %d (%s), want -EACCES or -EPERM",
		  why, r, ufvm_strerror(r));
	cr_assert_eq(regions(vm), 0);
	/* Read-only, creating if missing, it opens: it exists. */
	assert_ok(ufvm_file_open(vm, ro, UFVM_RDONLY | UFVM_CREAT, &f));
	assert_ok(ufvm_file_close(f));
	/* Read-only it maps fine. */
	map = ut_map(vm, ro, 0, SIZE, UFVM_PROT_READ);
	assert_pattern(SEED, map, 0, SIZE, "read-only map of a %s file", why);
	ut_unmap(vm, map, SIZE);
}

Test(badinput, readonly_file_mode_mapped_writable, .timeout = 20)
{
	char path[TMPSTORE_PATH_MAX], ro[TMPSTORE_PATH_MAX];
	struct ufvm *vm;

	ut_store("ro", SIZE, SEED, ro);
	cr_assert(chmod(ro, 0444) == 0);
	drop_dac_override();
	if (!open_refused(ro, O_RDWR))
		cr_skip_test("mode 0444 does not stop this process from writing a file");
	vm = setup(path);
	expect_readonly_refused(vm, ro, "mode 0444");
	assert_still_works(vm, path, 0);
	ut_close(vm);
}

Test(badinput, readonly_file_immutable_mapped_writable, .timeout = 20)
{
	char path[TMPSTORE_PATH_MAX], ro[TMPSTORE_PATH_MAX];
	struct ufvm *vm;
	int r;

	ut_store("immutable", SIZE, SEED, ro);
	r = tmpstore_set_immutable(ro, 1);
	if (r)
		cr_skip_test("chattr +i on %s: %s: the file system or this process cannot make "
			     "a file immutable", ro, strerror(-r));
	if (!open_refused(ro, O_RDWR)) {
		tmpstore_set_immutable(ro, 0);
		cr_skip_test("an immutable file can still be opened for writing here");
	}
	vm = setup(path);
	expect_readonly_refused(vm, ro, "immutable");
	assert_still_works(vm, path, 0);
	ut_close(vm);
	tmpstore_set_immutable(ro, 0);
}

/* A length past the end of the file maps; the part past EOF gets SIGBUS. */
Test(badinput, length_past_eof_maps_and_faults, .timeout = 20)
{
	char path[TMPSTORE_PATH_MAX];
	struct ufvm *vm = setup(path);
	struct sigbus_info si;
	uint8_t *map, v;

	sigbus_install();
	map = ut_map(vm, path, 0, SIZE + 8 * PAGE, UFVM_PROT_READ);
	assert_pattern(SEED, map, 0, SIZE, "the file part");
	cr_assert_eq(sigbus_read(map + SIZE + 3 * PAGE + 9, &v, &si), 1,
		     "no SIGBUS past EOF (read %#x)", v);
	cr_assert_eq(si.addr, (void *)(map + SIZE + 3 * PAGE + 9), "si_addr");
	cr_assert_eq(sigbus_read(map + SIZE, &v, &si), 1, "no SIGBUS at EOF");
	assert_pattern(SEED, map + SIZE - PAGE, SIZE - PAGE, PAGE, "last page after the SIGBUS");
	ut_unmap(vm, map, SIZE + 8 * PAGE);
	ut_close(vm);
}

/* An offset wholly past the end of the file maps too; every access faults. */
Test(badinput, offset_past_eof_maps_and_faults, .timeout = 20)
{
	char path[TMPSTORE_PATH_MAX];
	struct ufvm *vm = setup(path);
	struct sigbus_info si;
	uint8_t *map, v;

	sigbus_install();
	map = ut_map(vm, path, 2 * SIZE, 4 * PAGE, UFVM_PROT_READ);
	cr_assert_eq(sigbus_read(map + PAGE, &v, &si), 1, "no SIGBUS (read %#x)", v);
	cr_assert_eq(si.addr, (void *)(map + PAGE), "si_addr");
	ut_unmap(vm, map, 4 * PAGE);
	assert_still_works(vm, path, 0);
	ut_close(vm);
}

Test(badinput, length_past_eof_uncaught_sigbus, .timeout = 20, .signal = SIGBUS)
{
	char path[TMPSTORE_PATH_MAX];
	struct ufvm *vm = setup(path);
	uint8_t *map;

	map = ut_map(vm, path, 0, 2 * SIZE, UFVM_PROT_READ);
	assert_pattern(SEED, map, 0, SIZE, "the file part");
	ut_about_to_die(SIGBUS);
	(void)*(volatile uint8_t *)(map + SIZE + SIZE / 2);
	cr_assert_fail("read past EOF did not raise SIGBUS");
}

Test(badinput, unknown_flags_and_prot, .timeout = 20)
{
	char path[TMPSTORE_PATH_MAX];
	struct ufvm *vm = setup(path);
	struct ufvm_file *f = NULL;
	const int bad_flags[] = { 0x02 /* MAP_PRIVATE */, 0x04, 0x100, 0x4000, (int)0x80000000 };
	const int bad_prot[] = { 0x10, 0x100, (int)0x80000000, UFVM_PROT_READ | 0x40 };

	for (size_t i = 0; i < sizeof(bad_flags) / sizeof(bad_flags[0]); i++)
		map_expect(vm, path, 0, PAGE, UFVM_PROT_READ, bad_flags[i], EINVAL);
	for (size_t i = 0; i < sizeof(bad_prot) / sizeof(bad_prot[0]); i++)
		map_expect(vm, path, 0, PAGE, bad_prot[i], 0, EINVAL);
	assert_err(ufvm_file_open(vm, path, 0x1000000, &f), EINVAL);
	assert_err(ufvm_file_open(vm, path, UFVM_RDWR | 0x80000, &f), EINVAL);
	assert_still_works(vm, path, 0);

	assert_ok(ufvm_file_open(vm, path, UFVM_RDWR, &f));
	assert_err(ufvm_inject(f, 0, 0, PAGE), EINVAL);
	assert_err(ufvm_inject(f, 4, 0, PAGE), EINVAL);
	assert_err(ufvm_inject(f, 99, 0, PAGE), EINVAL);
	{
		void *addr = NULL;

		assert_err(ufvm_map_file(f, 0, PAGE, 0x10, 0, &addr), EINVAL);
		assert_err(ufvm_map_file(f, 0, PAGE, UFVM_PROT_READ, 0x100, &addr), EINVAL);
	}
	assert_ok(ufvm_file_close(f));
	ut_close(vm);
}

Test(badinput, double_unmap, .timeout = 20)
{
	char path[TMPSTORE_PATH_MAX];
	struct ufvm *vm = setup(path);
	uint8_t *map;

	map = ut_map(vm, path, 0, SIZE, UFVM_PROT_READ);
	(void)*(volatile uint8_t *)map;
	ut_unmap(vm, map, SIZE);
	assert_err(ufvm_unmap(vm, map, SIZE), EINVAL);
	assert_still_works(vm, path, 0);
	ut_close(vm);
}

Test(badinput, unmap_wrong_length_or_address, .timeout = 20)
{
	char path[TMPSTORE_PATH_MAX];
	struct ufvm *vm = setup(path);
	uint8_t *map;
	int stack;

	map = ut_map(vm, path, 0, SIZE, UFVM_PROT_READ);
	assert_pattern(SEED, map, 0, PAGE, "first page");
	assert_err(ufvm_unmap(vm, map, SIZE - PAGE), EINVAL);
	assert_err(ufvm_unmap(vm, map, SIZE + PAGE), EINVAL);
	assert_err(ufvm_unmap(vm, map, 0), EINVAL);
	assert_err(ufvm_unmap(vm, map + PAGE, SIZE - PAGE), EINVAL);
	assert_err(ufvm_unmap(vm, map + 1, SIZE), EINVAL);
	assert_err(ufvm_unmap(vm, &stack, PAGE), EINVAL);
	region_intact_close(vm, path, map, "the failed unmaps");
}

Test(badinput, sync_bad_range, .timeout = 20)
{
	char path[TMPSTORE_PATH_MAX];
	struct ufvm *vm = setup(path);
	uint8_t *map;
	int stack, r;

	map = ut_map(vm, path, 0, SIZE, RW);
	assert_err(ufvm_sync(vm, map + 1, PAGE), EINVAL);
	r = ufvm_sync(vm, &stack, PAGE);
	cr_assert(r == -EINVAL || r == -ENOMEM, "ufvm_sync of memory ufvm does not map = %d", r);
	r = ufvm_sync(vm, map, SIZE + 64 * PAGE);
	cr_assert(r == -EINVAL || r == -ENOMEM, "ufvm_sync past the region's end = %d", r);
	ut_unmap(vm, map, SIZE);
	assert_still_works(vm, path, 0);
	ut_close(vm);
}

/* Every call taking an address range refuses [a, a+len) with -EINVAL. */
static void assert_range_refused(struct ufvm *vm, uint8_t *a, size_t len)
{
	assert_err(ufvm_sync(vm, a, len), EINVAL);
	assert_err(ufvm_zap(vm, a, len), EINVAL);
	assert_err(ufvm_protect(vm, a, len, UFVM_PROT_READ), EINVAL);
	assert_err(ufvm_unmap_range(vm, a, len), EINVAL);
	assert_err(ufvm_unmap_reserve(vm, a, len), EINVAL);
}

/*
 * Invariant: a range whose page round-up wraps past the top of the address
 * space is refused (-EINVAL) by every call that takes an address range; it
 * must never be read as an empty range that "succeeds".
 */
Test(badinput, address_range_wraps, .timeout = 20)
{
	char path[TMPSTORE_PATH_MAX];
	struct ufvm *vm = setup(path);
	uint8_t *map, *gone;

	gone = ut_map(vm, path, 0, SIZE, RW);
	ut_unmap(vm, gone, SIZE);
	map = ut_map(vm, path, 0, SIZE, RW);
	for (int i = 0; i < 2; i++) {
		uint8_t *a = i ? map : gone;

		/* a + len: the last byte, whose page round-up is 0; then past it */
		assert_range_refused(vm, a, SIZE_MAX - (uintptr_t)a);
		assert_range_refused(vm, a, SIZE_MAX - (uintptr_t)a + 2);
	}
	region_intact_close(vm, path, map, "the refused calls");
}

/* A mapping whose file offsets pass the largest off_t: -EOVERFLOW, on every backend. */
Test(badinput, map_offset_overflows, .timeout = 20)
{
	char path[TMPSTORE_PATH_MAX];
	struct ufvm *vm = setup(path);

	map_expect(vm, path, INT64_MAX & ~(off_t)(PAGE - 1), 2 * PAGE, UFVM_PROT_READ, 0,
		   EOVERFLOW);
	map_expect(vm, path, (INT64_MAX & ~(off_t)(PAGE - 1)) - PAGE, PAGE, UFVM_PROT_READ, 0, 0);
	assert_still_works(vm, path, 1);
	ut_close(vm);
}

/*
 * The documented growth limit (include/ufvm.h, "Limits"): a file opened at
 * 1 MiB grows to 16 GiB and no further; beyond, -EFBIG and nothing changes.
 */
Test(badinput, growth_limit, .timeout = 20)
{
	char path[TMPSTORE_PATH_MAX];
	struct ufvm *vm = setup(path);
	struct ufvm_file *f;
	uint8_t buf[3] = { 1, 2, 3 };
	struct ufvm_config cfg;
	off_t size;

	/* Striped in small chunks, the view of 16 GiB would take a mapping a chunk. */
	assert_ok(ufvm_config_init(&cfg));
	if (cfg.frame_stripes > 1 && cfg.chunk_pages && (16ull << 30) / PAGE / cfg.chunk_pages > 4096)
		cr_skip_test("UFVM_CHUNK_PAGES=%u: a file striped in such chunks cannot grow to 16 GiB",
			     cfg.chunk_pages);
	assert_ok(ufvm_file_open(vm, path, UFVM_RDWR, &f));
	assert_err(ufvm_truncate(f, (16ll << 30) + PAGE), EFBIG);
	assert_err(ufvm_pwrite(f, buf, sizeof(buf), (16ll << 30) + 100), EFBIG);
	assert_ok(ufvm_file_size(f, &size));
	cr_assert_eq(size, (off_t)SIZE, "a refused growth changed the size to %lld",
		     (long long)size);
	assert_ok(ufvm_truncate(f, 16ll << 30));
	assert_ok(ufvm_truncate(f, SIZE));
	assert_ok(ufvm_file_close(f));
	assert_still_works(vm, path, 0);
	ut_close(vm);
}

Test(badinput, negative_offsets_and_lengths, .timeout = 20)
{
	char path[TMPSTORE_PATH_MAX];
	struct ufvm *vm = setup(path);
	struct ufvm_file *f;
	uint8_t buf[16];

	assert_ok(ufvm_file_open(vm, path, UFVM_RDWR, &f));
	assert_err(ufvm_pread(f, buf, sizeof(buf), -1), EINVAL);
	assert_err(ufvm_pwrite(f, buf, sizeof(buf), -PAGE), EINVAL);
	assert_err(ufvm_punch(f, -PAGE, PAGE), EINVAL);
	assert_err(ufvm_punch(f, 0, -PAGE), EINVAL);
	assert_err(ufvm_truncate(f, -1), EINVAL);
	assert_err(ufvm_inject(f, UFVM_INJECT_READ_EIO, -PAGE, PAGE), EINVAL);
	/*
	 * Invariant: a file range ending past the largest off_t is refused,
	 * checked without signed overflow (UBSan guards it in the sanitizer
	 * tree; the release build used to optimise the check away).
	 */
	assert_err(ufvm_punch(f, INT64_MAX, 2), EINVAL);
	assert_err(ufvm_punch(f, INT64_MAX - PAGE + 1, 2 * PAGE), EINVAL);
	assert_err(ufvm_pwrite(f, buf, sizeof(buf), INT64_MAX - 4), EINVAL);
	assert_err(ufvm_inject(f, UFVM_INJECT_READ_EIO, INT64_MAX, 2), EINVAL);
	{
		void *addr;

		assert_err(ufvm_map_file(f, -(off_t)PAGE, PAGE, UFVM_PROT_READ, 0, &addr), EINVAL);
		assert_err(ufvm_map_file(f, 1, PAGE, UFVM_PROT_READ, 0, &addr), EINVAL);
		assert_err(ufvm_map_file(f, 0, 0, UFVM_PROT_READ, 0, &addr), EINVAL);
	}
	/* Nothing changed: size and contents. */
	{
		off_t size;

		assert_ok(ufvm_file_size(f, &size));
		cr_assert_eq(size, (off_t)SIZE);
	}
	assert_ok(ufvm_file_close(f));
	assert_still_works(vm, path, 0);
	ut_close(vm);
}

/* Writing through a read-only file handle fails and changes nothing. */
Test(badinput, write_through_readonly_handle, .timeout = 20)
{
	char path[TMPSTORE_PATH_MAX];
	struct ufvm *vm = setup(path);
	struct ufvm_file *f;
	uint8_t buf[PAGE] = { 0 };
	void *addr;
	ssize_t r;

	assert_ok(ufvm_file_open(vm, path, UFVM_RDONLY, &f));
	r = ufvm_pwrite(f, buf, sizeof(buf), 0);
	cr_assert(r == -EBADF || r == -EACCES || r == -EPERM,
		  "ufvm_pwrite on a read-only handle = %zd", r);
	r = ufvm_punch(f, 0, PAGE);
	cr_assert(r == -EBADF || r == -EACCES || r == -EPERM,
		  "ufvm_punch on a read-only handle = %zd", r);
	r = ufvm_truncate(f, PAGE);
	cr_assert(r == -EBADF || r == -EACCES || r == -EPERM || r == -EINVAL,
		  "ufvm_truncate on a read-only handle = %zd", r);
	r = ufvm_map_file(f, 0, PAGE, RW, 0, &addr);
	cr_assert(r == -EBADF || r == -EACCES || r == -EPERM,
		  "writable ufvm_map_file on a read-only handle = %zd", r);
	assert_ok(ufvm_file_close(f));
	assert_still_works(vm, path, 0);	/* contents unchanged, too */
	ut_close(vm);
}

Test(badinput, nonsense_config, .timeout = 20)
{
	struct ufvm_config good, cfg;
	struct ufvm *vm = NULL;

	assert_ok(ufvm_config_init(&good));
#define BAD(field, value)							\
	do {									\
		cfg = good;							\
		cfg.field = value;						\
		vm = NULL;							\
		int _r = ufvm_open(&cfg, &vm);					\
		if (_r == 0)							\
			ufvm_close(vm);						\
		cr_assert_eq(_r, -EINVAL, "ufvm_open with " #field " = " #value	\
			     " returned %d (%s), want -EINVAL", _r, ufvm_strerror(_r));	\
	} while (0)
	BAD(handler_threads, 100000);
	BAD(fault_around, 0);
	BAD(fault_around, 100000);
	BAD(invalidate, 7);
	BAD(invalidate, 3);
	BAD(backend, 9);
	BAD(backend, 3);
	BAD(speculative, 2);
	BAD(retry, 2);
	BAD(direct_io, 2);
	BAD(frame_stripes, 0);
	BAD(frame_stripes, 9);
	BAD(chunk_pages, 3);
	BAD(chunk_pages, 1u << 21);
	BAD(debug_flags, 1ull << 63);	/* no such flag */
#undef BAD
	/* stats_path without its terminating NUL */
	cfg = good;
	memset(cfg.stats_path, 'a', sizeof(cfg.stats_path));
	assert_err(ufvm_open(&cfg, &vm), EINVAL);
	/* The defaults themselves are fine. */
	vm = ut_open(&good);
	ut_close(vm);
}

Test(badinput, null_arguments, .timeout = 20)
{
	char path[TMPSTORE_PATH_MAX];
	struct ufvm *vm = setup(path);
	struct ufvm_stats st;
	struct ufvm_file *f;
	void *addr;
	uint8_t *map;
	off_t size;
	ssize_t r;

	assert_err(ufvm_config_init(NULL), EINVAL);
	assert_err(ufvm_open(NULL, NULL), EINVAL);
	assert_err(ufvm_close(NULL), EINVAL);
	assert_err(ufvm_map(NULL, path, 0, PAGE, UFVM_PROT_READ, 0, &addr), EINVAL);
	assert_err(ufvm_map(vm, NULL, 0, PAGE, UFVM_PROT_READ, 0, &addr), EINVAL);
	assert_err(ufvm_map(vm, path, 0, PAGE, UFVM_PROT_READ, 0, NULL), EINVAL);
	assert_err(ufvm_map_file(NULL, 0, PAGE, UFVM_PROT_READ, 0, &addr), EINVAL);
	assert_err(ufvm_unmap(NULL, (void *)0x10000, PAGE), EINVAL);
	assert_err(ufvm_unmap(vm, NULL, PAGE), EINVAL);
	assert_err(ufvm_sync(NULL, (void *)0x10000, PAGE), EINVAL);
	assert_err(ufvm_sync(vm, NULL, PAGE), EINVAL);
	assert_err(ufvm_stats(NULL, &st), EINVAL);
	assert_err(ufvm_stats(vm, NULL), EINVAL);
	assert_err(ufvm_file_open(NULL, path, UFVM_RDONLY, &f), EINVAL);
	assert_err(ufvm_file_open(vm, NULL, UFVM_RDONLY, &f), EINVAL);
	assert_err(ufvm_file_open(vm, path, UFVM_RDONLY, NULL), EINVAL);
	assert_err(ufvm_file_close(NULL), EINVAL);
	assert_err(ufvm_pread(NULL, &size, 1, 0), EINVAL);
	assert_err(ufvm_pwrite(NULL, &size, 1, 0), EINVAL);
	assert_err(ufvm_punch(NULL, 0, PAGE), EINVAL);
	assert_err(ufvm_truncate(NULL, PAGE), EINVAL);
	assert_err(ufvm_fsync(NULL), EINVAL);
	assert_err(ufvm_file_size(NULL, &size), EINVAL);
	assert_err(ufvm_inject(NULL, UFVM_INJECT_READ_EIO, 0, PAGE), EINVAL);

	/* With a live file handle: NULL data buffers and out pointers. */
	assert_ok(ufvm_file_open(vm, path, UFVM_RDWR, &f));
	assert_err(ufvm_file_size(f, NULL), EINVAL);
	assert_err(ufvm_map_file(f, 0, PAGE, UFVM_PROT_READ, 0, NULL), EINVAL);
	/* A NULL data buffer: -EINVAL, or -EFAULT as read(2) would say. */
	r = ufvm_pread(f, NULL, PAGE, 0);
	cr_assert(r == -EINVAL || r == -EFAULT, "ufvm_pread(NULL buffer) = %zd", r);
	r = ufvm_pwrite(f, NULL, PAGE, 0);
	cr_assert(r == -EINVAL || r == -EFAULT, "ufvm_pwrite(NULL buffer) = %zd", r);
	assert_ok(ufvm_file_close(f));

	/* Nothing changed: the file is intact, the instance works. */
	cr_assert(ufvm_stats(vm, &st) == 0);
	map = ut_map(vm, path, 0, SIZE, UFVM_PROT_READ);
	assert_pattern(SEED, map, 0, SIZE, "file after the NULL calls");
	ut_unmap(vm, map, SIZE);
	ut_close(vm);
}

Test(badinput, use_after_close, .timeout = 5)
{
	cr_skip_test("not testable: a closed struct ufvm / ufvm_file is freed memory; the API "
		     "hands out opaque pointers and cannot detect a stale one (ASan would "
		     "flag the use, not ufvm)");
}
