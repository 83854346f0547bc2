/* SPDX-License-Identifier: MIT */
/*
 * test_direct_io.c - direct I/O (cfg.direct_io, UFVM_DIRECT_IO=1): the
 * store file is read and written with O_DIRECT, and every byte still comes
 * out right.
 *
 * Checks, on a file whose size is not a multiple of the page size (its last
 * page holds whole O_DIRECT blocks and a piece of one): reads through a
 * mapping and ufvm_pread() (unaligned offsets and buffers, a read across
 * the end) see the file and zeros past its end; writes through the mapping
 * and ufvm_pwrite() at unaligned offsets, in the middle and in the partial
 * last page, written twice with a sync between, reach the file -- read back
 * with plain pread(2), every byte is right and the size is unchanged;
 * punch and truncate (shrinking and growing to unaligned sizes, growing by
 * ufvm_pwrite() past the end) leave the file as they would without it;
 * reading the file through ufvm leaves none of it in the host's page cache
 * and writing it back leaves at most its partial last page there, where
 * buffered I/O leaves the file there (so the check has teeth); and a file
 * system that refuses O_DIRECT fails ufvm_file_open() and ufvm_map() with
 * -EINVAL and one line on stderr that names the file, where the same file
 * opens without direct I/O.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <unistd.h>

#include "check.h"

#define SEED	0x5eed0d10
#define SEED2	0x5eed0d11
#define SIZE	(37 * PAGE + 1333)		/* 1333 = 2 * 512 + 309 */
#define MAPLEN	(38 * PAGE)

static const int RW = UFVM_PROT_READ | UFVM_PROT_WRITE;

/* Skip the test where the file system of the store files refuses O_DIRECT. */
static void need_direct_io(void)
{
	int r = tmpstore_direct_io();

	cr_assert(r >= 0, "probing O_DIRECT in %s: %s", tmpstore_dir(), strerror(-r));
	if (!r)
		cr_skip_test("the file system of %s refuses O_DIRECT", tmpstore_dir());
}

/* An instance with direct I/O @on. */
static struct ufvm *open_direct(int on)
{
	struct ufvm_config cfg;

	assert_ok(ufvm_config_init(&cfg));
	cfg.direct_io = (unsigned int)on;
	return ut_open(&cfg);
}

/* The store file is @shadow, exactly @size bytes. */
static void assert_file_is(const char *path, const uint8_t *shadow, off_t size, const char *when)
{
	uint8_t *file = malloc((size_t)size);

	cr_assert(file);
	cr_assert_eq(tmpstore_size(path), size, "store file size %s: %lld, want %lld", when,
		     (long long)tmpstore_size(path), (long long)size);
	cr_assert(tmpstore_read(path, file, (size_t)size, 0) == 0, "pread of the store %s", when);
	assert_same(file, shadow, 0, (size_t)size, "store file %s", when);
	free(file);
}

/* Write @len bytes of @seed's pattern at @off into the mapping and the shadow. */
static void poke(uint8_t *map, uint8_t *shadow, uint64_t seed, size_t off, size_t len)
{
	pattern_fill(seed, map + off, off, len);
	pattern_fill(seed, shadow + off, off, len);
}

/* Write @len bytes of @seed's pattern at @off with ufvm_pwrite(), from an odd address. */
static void pwrite_odd(struct ufvm_file *f, uint8_t *shadow, uint64_t seed, size_t off, size_t len)
{
	uint8_t *buf = malloc(len + 3);

	cr_assert(buf);
	pattern_fill(seed, buf + 3, off, len);
	ut_pwrite(f, buf + 3, len, (off_t)off);
	memcpy(shadow + off, buf + 3, len);
	free(buf);
}

/* A store file mapped whole and writable through a direct-I/O instance. */
struct fixture {
	char path[TMPSTORE_PATH_MAX];
	struct ufvm *vm;
	struct ufvm_file *f;
	uint8_t *map;
	uint8_t *shadow;	/* MAPLEN bytes: what the file should hold */
};

static void setup(struct fixture *x, const char *name)
{
	void *addr;

	need_direct_io();
	x->shadow = malloc(MAPLEN);
	cr_assert(x->shadow);
	pattern_fill(SEED, x->shadow, 0, SIZE);
	memset(x->shadow + SIZE, 0, MAPLEN - SIZE);
	ut_store(name, SIZE, SEED, x->path);
	x->vm = open_direct(1);
	assert_ok(ufvm_file_open(x->vm, x->path, UFVM_RDWR, &x->f));
	assert_ok(ufvm_map_file(x->f, 0, MAPLEN, RW, 0, &addr));
	x->map = addr;
}

/* Close everything; the file must then be the shadow, @size bytes. */
static void teardown(struct fixture *x, off_t size)
{
	ut_unmap(x->vm, x->map, MAPLEN);
	assert_ok(ufvm_file_close(x->f));
	ut_close(x->vm);
	assert_file_is(x->path, x->shadow, size, "after ufvm_close");
	free(x->shadow);
}

Test(direct_io, read_write_sync_unaligned, .timeout = 30)
{
	uint8_t *buf = malloc(4 * PAGE + 1);
	struct fixture x;

	cr_assert(buf);
	setup(&x, "d");

	/* Reads: the mapping, then ufvm_pread at odd offsets into odd buffers. */
	assert_pattern(SEED, x.map, 0, SIZE, "mapping");
	assert_zeros(x.map + SIZE, SIZE, MAPLEN - SIZE, "mapping past the end");
	ut_pread(x.f, buf + 1, 3 * PAGE + 3, PAGE - 1);
	assert_pattern(SEED, buf + 1, PAGE - 1, 3 * PAGE + 3, "ufvm_pread");
	cr_assert_eq(ufvm_pread(x.f, buf + 1, 1000, SIZE - 700), 700, "ufvm_pread across the end");
	assert_pattern(SEED, buf + 1, SIZE - 700, 700, "ufvm_pread across the end");

	/* Writes, twice over, with a sync between: the tail page is written back twice. */
	for (uint64_t gen = 0; gen < 2; gen++) {
		uint64_t seed = SEED2 + gen;

		for (size_t off = 5; off < 36 * PAGE; off += 3 * PAGE + 37)
			poke(x.map, x.shadow, seed, off, 1);
		poke(x.map, x.shadow, seed, 9 * PAGE - 8, 16);		/* two pages */
		poke(x.map, x.shadow, seed, 37 * PAGE + 511, 2);	/* two 512-byte blocks */
		poke(x.map, x.shadow, seed, SIZE - 310, 2);		/* block and piece */
		poke(x.map, x.shadow, seed, SIZE - 1, 1);		/* the last byte */
		pwrite_odd(x.f, x.shadow, seed, PAGE + 1, 5000);
		pwrite_odd(x.f, x.shadow, seed, 20 * PAGE + 511, 2);
		pwrite_odd(x.f, x.shadow, seed, SIZE - 200, 200);	/* ends at the end */
		assert_same(x.map, x.shadow, 0, MAPLEN, "mapping after writes, round %d", (int)gen);
		assert_ok(ufvm_sync(x.vm, x.map, MAPLEN));
		assert_file_is(x.path, x.shadow, SIZE, "after ufvm_sync");
	}
	teardown(&x, SIZE);
	free(buf);
}

Test(direct_io, punch_and_truncate, .timeout = 30)
{
	uint8_t buf[1000];
	struct fixture x;
	off_t size = SIZE;

	setup(&x, "p");
	poke(x.map, x.shadow, SEED2, 4 * PAGE, 100);	/* dirty, then punched */
	assert_ok(ufvm_punch(x.f, 3 * PAGE + 100, 5 * PAGE));
	memset(x.shadow + 3 * PAGE + 100, 0, 5 * PAGE);
	assert_ok(ufvm_punch(x.f, SIZE - 500, 300));	/* inside the partial last page */
	memset(x.shadow + SIZE - 500, 0, 300);
	assert_same(x.map, x.shadow, 0, SIZE, "mapping after punch");
	assert_ok(ufvm_fsync(x.f));
	assert_file_is(x.path, x.shadow, size, "after punch");

	/* Shrink to an unaligned size, then write into the new last page. */
	size = 20 * PAGE + 77;
	assert_ok(ufvm_truncate(x.f, size));
	memset(x.shadow + size, 0, MAPLEN - (size_t)size);
	assert_same(x.map, x.shadow, 0, 21 * PAGE, "mapping after truncate down");
	poke(x.map, x.shadow, SEED2, 20 * PAGE + 50, 27);
	assert_ok(ufvm_fsync(x.f));
	assert_file_is(x.path, x.shadow, size, "after truncate down");

	/* Grow by writing past the end, and by truncate; write in the new part. */
	pattern_fill(SEED2, buf, 21 * PAGE + 5, sizeof(buf));
	ut_pwrite(x.f, buf, sizeof(buf), 21 * PAGE + 5);
	memcpy(x.shadow + 21 * PAGE + 5, buf, sizeof(buf));
	size = 21 * PAGE + 5 + sizeof(buf);
	assert_ok(ufvm_fsync(x.f));
	assert_file_is(x.path, x.shadow, size, "after ufvm_pwrite past the end");
	size = 25 * PAGE + 5;
	assert_ok(ufvm_truncate(x.f, size));
	poke(x.map, x.shadow, SEED2, 25 * PAGE + 1, 4);
	assert_same(x.map, x.shadow, 0, (size_t)size, "mapping after truncate up");
	assert_ok(ufvm_sync(x.vm, x.map, MAPLEN));
	assert_file_is(x.path, x.shadow, size, "after truncate up");
	teardown(&x, size);
}

/*
 * Read the whole file through ufvm, then write every page and sync, with
 * direct I/O @on; return the pages of the file in the host's page cache
 * after the reads (*@after_read) and after the write-back (*@after_write).
 */
static void host_cache_use(int on, long long *after_read, long long *after_write)
{
	char path[TMPSTORE_PATH_MAX];
	struct ufvm *vm;
	uint8_t *map;

	ut_store(on ? "hc1" : "hc0", SIZE, SEED, path);
	vm = open_direct(on);
	assert_ok(tmpstore_drop_cache(path));
	if (tmpstore_resident(path) != 0)
		cr_skip_test("the host keeps %s in its page cache after POSIX_FADV_DONTNEED", path);
	map = ut_map(vm, path, 0, MAPLEN, RW);
	assert_pattern(SEED, map, 0, SIZE, "mapping, direct_io %d", on);
	*after_read = tmpstore_resident(path);
	for (size_t off = 0; off < SIZE; off += PAGE)
		map[off] ^= 1;
	assert_ok(ufvm_sync(vm, map, MAPLEN));
	*after_write = tmpstore_resident(path);
	ut_unmap(vm, map, MAPLEN);
	ut_close(vm);
}

Test(direct_io, bypasses_host_page_cache, .timeout = 30)
{
	long long rd, wr;

	need_direct_io();
	host_cache_use(0, &rd, &wr);
	cr_assert(rd > 0 && wr > 1, "buffered: %lld pages in the host page cache after the reads, "
		  "%lld after the write-back: the check below would have no teeth", rd, wr);
	host_cache_use(1, &rd, &wr);
	cr_assert_eq(rd, 0, "direct I/O: %lld pages in the host page cache after the reads", rd);
	cr_assert(wr <= 1, "direct I/O: %lld pages in the host page cache after the write-back "
		  "(at most the partial last page may be)", wr);
}

/* Run @fn(@arg) with stderr captured into @err (NUL-terminated). */
static int with_stderr(int (*fn)(void *), void *arg, char *err, size_t len)
{
	FILE *tmp = tmpfile();
	int saved = dup(2), r;
	size_t n;

	cr_assert(tmp && saved >= 0);
	fflush(stderr);
	cr_assert(dup2(fileno(tmp), 2) == 2);
	r = fn(arg);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	rewind(tmp);
	n = fread(err, 1, len - 1, tmp);
	err[n] = 0;
	fclose(tmp);
	return r;
}

struct open_args {
	struct ufvm *vm;
	const char *path;
	struct ufvm_file *f;
	void *addr;
	int map_err;
};

static int open_and_map(void *arg)
{
	struct open_args *a = arg;
	int err = ufvm_file_open(a->vm, a->path, UFVM_RDONLY, &a->f);

	a->map_err = ufvm_map(a->vm, a->path, 0, PAGE, UFVM_PROT_READ, 0, &a->addr);
	return err;
}

/* Does a plain open(2) of @path with O_DIRECT fail with EINVAL? */
static bool refuses_direct(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECT | O_CLOEXEC);

	if (fd >= 0)
		close(fd);
	return fd < 0 && errno == EINVAL;
}

/* @path is on a file system that refuses O_DIRECT: a clear error, and only with direct I/O. */
static void check_refused(const char *path)
{
	struct open_args a = { .path = path };
	struct ufvm_file *f;
	char err[1024];
	int r;

	a.vm = open_direct(1);
	r = with_stderr(open_and_map, &a, err, sizeof(err));
	cr_assert_eq(r, -EINVAL, "ufvm_file_open(%s) with direct I/O = %d (%s), want -EINVAL",
		     path, r, ufvm_strerror(r));
	cr_assert_eq(a.map_err, -EINVAL, "ufvm_map(%s) with direct I/O = %d, want -EINVAL",
		     path, a.map_err);
	cr_assert(strstr(err, path) && strstr(err, "O_DIRECT") && strstr(err, "UFVM_DIRECT_IO"),
		  "the message does not name the file, O_DIRECT and UFVM_DIRECT_IO: '%s'", err);
	ut_close(a.vm);

	a.vm = open_direct(0);
	assert_ok(ufvm_file_open(a.vm, path, UFVM_RDONLY, &f));
	assert_ok(ufvm_file_close(f));
	ut_close(a.vm);
}

/*
 * tmpfs, the file system most likely to refuse: since Linux 6.6 it accepts
 * O_DIRECT, and then there is nothing to check here.
 */
Test(direct_io, refused_by_tmpfs, .timeout = 20)
{
	char path[64];
	int fd;

	snprintf(path, sizeof(path), "/dev/shm/ufvm-test-direct-%d", (int)getpid());
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		cr_skip_test("no writable /dev/shm: %s", strerror(errno));
	close(fd);
	if (!refuses_direct(path)) {
		unlink(path);
		cr_skip_test("tmpfs accepts O_DIRECT on this kernel (Linux 6.6 and later)");
	}
	check_refused(path);
	unlink(path);
}

/* procfs has never done O_DIRECT: a refusal on every kernel. */
Test(direct_io, refused_by_procfs, .timeout = 20)
{
	const char *path = "/proc/version";

	cr_assert(refuses_direct(path), "open(%s, O_DIRECT) did not fail with EINVAL", path);
	check_refused(path);
}
