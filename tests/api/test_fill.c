/* SPDX-License-Identifier: MIT */
/*
 * test_fill.c - how a major fault fills its page: in one step under
 * mmap_lock when the store's bytes are in memory, through a retry (seed
 * 003) when there is I/O to wait for.
 *
 * Checks, with fault-around and readahead off (each fault fills one page):
 * cold reads of a store in the host page cache, and of one on tmpfs, count
 * a major fault each and no retry, and read the store's bytes; a cold
 * write there reads the page's other bytes from the store, and ufvm_sync()
 * writes the page back; the same reads with an injected store latency, or
 * with a debug hook installed, or (on a file system that has a device)
 * with the store dropped from the host page cache, retry: they drop
 * mmap_lock for the read.  The userfaultfd backend fills and maps in one
 * call (UFFDIO_COPY: every fill without a retry counts fill_mapped); the
 * sigsegv backend writes the frame and maps it (none does): the bytes are
 * the same.  A cold write synced at once reaches the store:
 * the page is dirty before the thread that wrote it runs again (the fill's
 * UFFDIO_COPY wakes it; a page dirtied only after that could be skipped by
 * the sync that thread then issues).
 */
#include <fcntl.h>
#include <string.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "check.h"

#define SIZE	(2 * MiB)
#define SEED	0x5eed00f1
#define PAGES	(SIZE / PAGE)

static struct ufvm *open_one_page(unsigned int latency_us)
{
	struct ufvm_config cfg;

	assert_ok(ufvm_config_init(&cfg));
	cfg.fault_around = 1;
	cfg.readahead = 0;
	cfg.retry = 1;	/* whatever UFVM_RETRY says */
	cfg.store_latency_us = latency_us;
	return ut_open(&cfg);
}

/* Touch every 7th page of the region, in a scattered order; check the bytes. */
static void read_scattered(uint8_t *map, const char *what)
{
	uint64_t k, i;

	for (k = 0; k < PAGES / 7; k++) {
		i = (k * 7 * 13) % PAGES;
		assert_pattern(SEED, map + i * PAGE + 100, i * PAGE + 100, 8, "%s: page %llu",
			       what, (unsigned long long)i);
	}
}

static void no_op_hook(void *arg, unsigned int point, uint64_t a, uint64_t b)
{
}

/*
 * Cold reads of the store at @path: return the retries they counted, and
 * in *@majors the major faults.  With the userfaultfd backend, a fill that
 * did not retry must have mapped its page by UFFDIO_COPY (fill_mapped);
 * with the sigsegv backend, none does.
 */
static uint64_t cold_reads(const char *path, unsigned int latency_us, bool hook,
			   uint64_t *majors)
{
	struct ufvm *vm = open_one_page(latency_us);
	bool copies = !strncmp(ufvm_backend_name(vm), "uffd", 4);
	uint64_t r0, m0, c0, r, c;
	uint8_t *map;

	if (hook)
		assert_ok(ufvm_debug_hook(vm, no_op_hook, NULL));
	map = ut_map(vm, path, 0, SIZE, UFVM_PROT_READ);
	r0 = ut_counter(vm, UFVM_CTR_RETRY);
	m0 = ut_counter(vm, UFVM_CTR_MAJOR);
	c0 = ut_counter(vm, UFVM_CTR_FILL_MAPPED);
	read_scattered(map, path);
	r = ut_counter(vm, UFVM_CTR_RETRY) - r0;
	*majors = ut_counter(vm, UFVM_CTR_MAJOR) - m0;
	c = ut_counter(vm, UFVM_CTR_FILL_MAPPED) - c0;
	cr_assert_eq(c, copies ? *majors - r : 0,
		     "%s: %llu fills mapped by UFFDIO_COPY of %llu major faults, %llu retried",
		     ufvm_backend_name(vm), (unsigned long long)c, (unsigned long long)*majors,
		     (unsigned long long)r);
	ut_unmap(vm, map, SIZE);
	ut_close(vm);
	return r;
}

/* A copy of the test store on tmpfs, in @out; false if there is no /dev/shm. */
static bool shm_store(const char *from, char *out, size_t len)
{
	uint8_t *buf = malloc(SIZE);
	struct statfs fs;
	int fd;

	cr_assert(buf);
	if (statfs("/dev/shm", &fs) || fs.f_type != 0x01021994 /* TMPFS_MAGIC */) {
		free(buf);
		return false;
	}
	snprintf(out, len, "/dev/shm/ufvm-test-fill-%d", (int)getpid());
	cr_assert(tmpstore_read(from, buf, SIZE, 0) == 0);
	fd = open(out, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	cr_assert(fd >= 0);
	cr_assert(pwrite(fd, buf, SIZE, 0) == (ssize_t)SIZE);
	close(fd);
	free(buf);
	return true;
}

Test(fill, in_memory_store_fills_without_retry, .timeout = 30)
{
	char path[TMPSTORE_PATH_MAX], shm[256];
	uint64_t majors, retries;

	ut_store("s", SIZE, SEED, path);
	retries = cold_reads(path, 0, false, &majors);	/* just written: in the host page cache */
	cr_assert_geq(majors, PAGES / 7 - 1, "%llu major faults", (unsigned long long)majors);
	cr_assert_eq(retries, 0, "%llu of %llu cold reads of a store in memory retried",
		     (unsigned long long)retries, (unsigned long long)majors);
	if (!shm_store(path, shm, sizeof(shm)))
		return;
	retries = cold_reads(shm, 0, false, &majors);
	unlink(shm);
	cr_assert_geq(majors, PAGES / 7 - 1);
	cr_assert_eq(retries, 0, "%llu of %llu cold reads of a tmpfs store retried",
		     (unsigned long long)retries, (unsigned long long)majors);
}

Test(fill, io_to_wait_for_retries, .timeout = 60)
{
	char path[TMPSTORE_PATH_MAX];
	uint64_t majors, retries;
	struct statfs fs;
	int fd;

	ut_store("s", SIZE, SEED, path);
	retries = cold_reads(path, 200, false, &majors);
	cr_assert_eq(retries, majors, "injected latency: %llu retries for %llu major faults",
		     (unsigned long long)retries, (unsigned long long)majors);
	retries = cold_reads(path, 0, true, &majors);
	cr_assert_eq(retries, majors, "a hook installed: %llu retries for %llu major faults",
		     (unsigned long long)retries, (unsigned long long)majors);
	/* Out of the host page cache: a read must wait for the device. */
	cr_assert(statfs(path, &fs) == 0);
	if (fs.f_type == 0x01021994 /* TMPFS_MAGIC: no device */)
		return;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	cr_assert(fd >= 0);
	cr_assert(fdatasync(fd) == 0 && posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED) == 0);
	close(fd);
	retries = cold_reads(path, 0, false, &majors);
	cr_assert_geq(retries, 1, "no retry for %llu reads of a store dropped from the host cache",
		      (unsigned long long)majors);
}

Test(fill, cold_write_fills_then_writes_back, .timeout = 30)
{
	char path[TMPSTORE_PATH_MAX];
	uint8_t *map, page[PAGE];
	struct ufvm *vm;
	uint64_t i, r0;

	ut_store("s", SIZE, SEED, path);
	vm = open_one_page(0);
	map = ut_map(vm, path, 0, SIZE, UFVM_PROT_READ | UFVM_PROT_WRITE);
	r0 = ut_counter(vm, UFVM_CTR_RETRY);
	for (i = 3; i < PAGES; i += 11)
		map[i * PAGE + 17] = (uint8_t)(i ^ 0xa5);
	cr_assert_eq(ut_counter(vm, UFVM_CTR_RETRY), r0, "cold writes retried");
	cr_assert_geq(ut_counter(vm, UFVM_CTR_MAJOR), PAGES / 11 - 1);
	assert_ok(ufvm_sync(vm, map, SIZE));
	for (i = 3; i < PAGES; i += 11) {
		cr_assert(tmpstore_read(path, page, PAGE, (off_t)(i * PAGE)) == 0);
		cr_assert_eq(page[17], (uint8_t)(i ^ 0xa5), "page %llu: the write is not in the store",
			     (unsigned long long)i);
		/* The rest: the store's own bytes. */
		assert_pattern(SEED, page, i * PAGE, 17, "page %llu before the write",
			       (unsigned long long)i);
		assert_pattern(SEED, page + 18, i * PAGE + 18, PAGE - 18, "page %llu after it",
			       (unsigned long long)i);
	}
	ut_unmap(vm, map, SIZE);
	ut_close(vm);
}

Test(fill, cold_write_synced_at_once_reaches_the_store, .timeout = 60)
{
	char path[TMPSTORE_PATH_MAX];
	uint8_t *map, b;
	struct ufvm *vm;
	uint64_t i;

	ut_store("s", SIZE, SEED, path);
	vm = open_one_page(0);
	map = ut_map(vm, path, 0, SIZE, UFVM_PROT_READ | UFVM_PROT_WRITE);
	for (i = 0; i < PAGES; i++) {
		map[i * PAGE + 9] = (uint8_t)(i * 7 + 1);
		assert_ok(ufvm_sync(vm, map + i * PAGE, PAGE));
		cr_assert(tmpstore_read(path, &b, 1, (off_t)(i * PAGE + 9)) == 0);
		cr_assert_eq(b, (uint8_t)(i * 7 + 1),
			     "page %llu: ufvm_sync() right after the write left the store's byte",
			     (unsigned long long)i);
	}
	ut_unmap(vm, map, SIZE);
	ut_close(vm);
}
