/* SPDX-License-Identifier: MIT */
/*
 * test_lifecycle.c - instances, files and regions come and go cleanly.
 *
 * Checks: ufvm_open/ufvm_close leave no thread and no file descriptor
 * behind; ufvm_close() with regions still mapped and files still open
 * succeeds and really unmaps the regions (mincore says the addresses are
 * gone); a mapping outlives the file handle it was made from; a file's page
 * cache goes away when the last handle and mapping do, and map/unmap cycles
 * leak no descriptors.
 */
#include <dirent.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include "check.h"
#include "pagemap.h"

#define SEED	0x5eed0090
#define SIZE	(1 * MiB)

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	cr_assert(d);
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

static int count_threads(void)
{
	char line[256];
	FILE *fp = fopen("/proc/self/status", "r");
	int n = -1;

	cr_assert(fp);
	while (fgets(line, sizeof(line), fp))
		if (sscanf(line, "Threads: %d", &n) == 1)
			break;
	fclose(fp);
	return n;
}

/*
 * One full cycle first (open, map, fault, unmap, close): process-wide
 * helpers that outlive an instance by design -- liburcu's call_rcu worker
 * thread, made at the first call_rcu() -- exist once, not per instance.
 */
static void warm_up(void)
{
	char path[TMPSTORE_PATH_MAX];
	struct ufvm *vm;
	uint8_t *m;

	ut_store("warm-up", 4 * PAGE, SEED, path);
	vm = ut_open(NULL);
	m = ut_map(vm, path, 0, 4 * PAGE, UFVM_PROT_READ);
	assert_pattern(SEED, m, 0, 4 * PAGE, "warm-up");
	ut_unmap(vm, m, 4 * PAGE);
	ut_close(vm);
}

Test(lifecycle, open_close_leaves_nothing, .timeout = 20)
{
	int fds, threads;

	warm_up();
	fds = count_fds();
	threads = count_threads();
	for (int i = 0; i < 10; i++) {
		struct ufvm *vm = ut_open(NULL);

		ut_close(vm);
	}
	cr_assert_eq(count_fds(), fds, "file descriptors leaked by ufvm_open/ufvm_close");
	cr_assert_eq(count_threads(), threads, "threads left behind by ufvm_close");
}

/*
 * Is @addr still a ufvm region?  After ufvm_close the address range is
 * free, and another mmap of the process (a pool slab, a stats shard, a
 * thread stack) may take it at once: only a mapping of ufvm's frames there
 * would be a region left behind.
 */
static int is_mapped(void *addr)
{
	unsigned char vec;

	return mincore(addr, PAGE, &vec) == 0 && maps_is_frames(addr) != 0;
}

Test(lifecycle, close_unmaps_everything, .timeout = 20)
{
	char path[TMPSTORE_PATH_MAX];
	struct ufvm_file *f;
	struct ufvm *vm;
	uint8_t *a, *b;
	int fds, threads;

	ut_store("l", SIZE, SEED, path);
	warm_up();
	fds = count_fds();
	threads = count_threads();
	vm = ut_open(NULL);
	assert_ok(ufvm_file_open(vm, path, UFVM_RDWR, &f));
	a = ut_map(vm, path, 0, SIZE, UFVM_PROT_READ);
	b = ut_map(vm, path, 0, SIZE, UFVM_PROT_READ | UFVM_PROT_WRITE);
	assert_pattern(SEED, a, 0, SIZE, "region a");
	b[7] = 1;
	cr_assert(is_mapped(a) && is_mapped(b));
	ut_close(vm);		/* regions mapped, file open */
	cr_assert(!is_mapped(a), "region a is still mapped after ufvm_close");
	cr_assert(!is_mapped(b), "region b is still mapped after ufvm_close");
	cr_assert_eq(count_fds(), fds, "file descriptors left after ufvm_close");
	cr_assert_eq(count_threads(), threads, "threads left behind by ufvm_close");
}

Test(lifecycle, mapping_outlives_file_handle, .timeout = 20)
{
	char path[TMPSTORE_PATH_MAX];
	struct ufvm_file *f;
	struct ufvm *vm;
	uint8_t *map, buf[PAGE];

	ut_store("l", SIZE, SEED, path);
	vm = ut_open(NULL);
	assert_ok(ufvm_file_open(vm, path, UFVM_RDWR, &f));
	map = NULL;
	assert_ok(ufvm_map_file(f, 0, SIZE, UFVM_PROT_READ | UFVM_PROT_WRITE, 0, (void **)&map));
	assert_pattern(SEED, map, 0, 4 * PAGE, "before the handle is closed");
	assert_ok(ufvm_file_close(f));
	assert_pattern(SEED, map + 4 * PAGE, 4 * PAGE, SIZE - 4 * PAGE, "after the handle is closed");
	memset(map + 9 * PAGE, 0x99, PAGE);
	ut_unmap(vm, map, SIZE);
	cr_assert(tmpstore_read(path, buf, PAGE, 9 * PAGE) == 0);
	for (size_t i = 0; i < PAGE; i++)
		cr_assert_eq(buf[i], 0x99, "write through a mapping whose handle was closed lost");
	ut_close(vm);
}

Test(lifecycle, cache_freed_with_last_user, .timeout = 30)
{
	char path[TMPSTORE_PATH_MAX];
	struct ufvm_stats st;
	struct ufvm *vm;
	int fds;

	ut_store("l", SIZE, SEED, path);
	vm = ut_open(NULL);
	fds = count_fds();
	for (int i = 0; i < 200; i++) {
		size_t off = (size_t)(i % 16) * 16 * PAGE;
		uint8_t *m = ut_map(vm, path, (off_t)off, SIZE - off,
				    i % 2 ? UFVM_PROT_READ : UFVM_PROT_READ | UFVM_PROT_WRITE);

		assert_pattern(SEED, m + (i % 7) * PAGE, off + (i % 7) * PAGE, 64, "cycle %d", i);
		if (i % 2 == 0)
			m[PAGE] = pattern_byte(SEED, off + PAGE);	/* dirty, same byte */
		ut_unmap(vm, m, SIZE - off);
	}
	/* A readahead queued by the last cycle may hold the cache a moment. */
	for (int i = 0; i < 100; i++) {
		assert_ok(ufvm_stats(vm, &st));
		if (!st.cached_pages)
			break;
		usleep(10000);
	}
	cr_assert_eq(st.regions, 0);
	cr_assert_eq(st.cached_pages, 0, "%llu pages still cached 1 s after the last user left",
		     (unsigned long long)st.cached_pages);
	cr_assert_eq(count_fds(), fds, "map/unmap cycles leaked file descriptors");
	ut_close(vm);
}
