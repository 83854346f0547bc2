/* SPDX-License-Identifier: MIT */
/*
 * test_install_split.c - large uffd installs shared with an installer
 * thread on another CPU (install_split, pager/uffd.c).
 *
 * Checks, on a machine of two CPUs or more with the uffd backend, with the
 * delivery the environment picks and again with in-thread delivery:
 * sequential scans of a cached file with 256-page fault-around windows
 * read the right bytes through SPLITS split installs (install_splits), of
 * which installer threads map pages (installer_pages moves); with
 * install_split = 0 nothing is split.
 *
 * Race: the caller of a split install holds the region's ptl, and an
 * installer maps its chunks without taking it.  A zap of the range (which
 * takes the ptl) must not run between the caller's return and the end of
 * the installer's chunk, or the chunk is mapped after the zap, behind
 * ufvm's back (its pages counted unmapped, their PTEs present).
 * UFVM_HOOK_SPLIT_POSTED holds the caller until the installer has taken a
 * chunk (an installer on a busy CPU may take none), and
 * UFVM_HOOK_INSTALL_SPLIT holds the installer before that chunk until a zap
 * of the chunk's pages has returned, or HOLD_US.  With the caller waiting
 * for the chunk, the zap waits for the ptl and comes after the chunk:
 * nothing of the chunk is left mapped (pagemap).  Teeth: with
 * UFVM_DEBUG_SPLIT_NO_WAIT the caller returns without waiting, the zap
 * runs while the installer is held, and the chunk is mapped after it.
 * Only the chunk is zapped: the faulting page stays mapped, so the faulting
 * thread does not fault again (in-thread delivery retries the access after
 * its handler returns) and map the chunk anew.  The race and its teeth run
 * with the environment's delivery and with in-thread delivery.
 *
 * Errors: with UFVM_DEBUG_SPLIT_FAIL the installers fail every other job's
 * chunks.  The scans still read every page right (a failed install is
 * undone, and its fault is served again), the failures are counted
 * (install_errors), and nothing of a failed install stays counted mapped:
 * a punch of the whole file, which waits until no region maps a page,
 * returns, the pages read zeros afterwards, and the instance closes (a
 * debug build checks every freed page's mapcount).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "race.h"

#define SEED	0x5eed0510
#define NPAGES	1024
#define SIZE	(NPAGES * PAGE)
#define WINDOW	256
#define HOLD_US	(2 * 1000000u)		/* the installer is held at most this */
#define SPLITS	1000			/* split installs the scans go through */
#define WAIT_US	(10 * 1000000u)
#define FAILS	100			/* installs failed by an installer */

/*
 * Defaults (and the environment) with 256-page windows, in-thread delivery
 * if @inthread; skips where nothing splits.
 */
static void split_config(struct ufvm_config *cfg, unsigned int split, bool inthread)
{
	cr_assert(ufvm_config_init(cfg) == 0);
	if (sysconf(_SC_NPROCESSORS_ONLN) < 2)
		cr_skip_test("one CPU: no installer thread");
	if (cfg->backend == UFVM_BACKEND_SIGSEGV)
		cr_skip_test("the sigsegv backend does not split installs");
	cfg->fault_around = WINDOW;
	cfg->install_split = split;
	if (inthread)
		cfg->delivery = UFVM_DELIVERY_INTHREAD;
}

/*
 * An instance and a read-only mapping of a store of NPAGES pages, all
 * cached; the store's path in @path if not NULL.
 */
static uint8_t *open_cached(const struct ufvm_config *cfg, struct ufvm **vm, char *path)
{
	char buf[TMPSTORE_PATH_MAX];
	uint8_t *map;

	if (!path)
		path = buf;
	ut_store("s", SIZE, SEED, path);
	*vm = ut_open(cfg);
	if (strcmp(ufvm_backend_name(*vm), "uffd") && strcmp(ufvm_backend_name(*vm), "uffd-inthread"))
		cr_skip_test("backend %s does not split installs", ufvm_backend_name(*vm));
	map = ut_map(*vm, path, 0, SIZE, UFVM_PROT_READ);
	for (size_t i = 0; i < NPAGES; i++)	/* fills the cache */
		(void)*(volatile uint8_t *)(map + i * PAGE);
	assert_ok(ufvm_zap(*vm, map, SIZE));
	return map;
}

/* Scan @map sequentially, checking a word of each page, then zap it. */
static void scan(struct ufvm *vm, const uint8_t *map)
{
	for (size_t i = 0; i < NPAGES; i++)
		assert_pattern(SEED, map + i * PAGE + 16, i * PAGE + 16, 8, "page %zu", i);
	assert_ok(ufvm_zap(vm, (void *)map, SIZE));
}

/* Scan through SPLITS split installs, and until an installer mapped pages. */
static void scans_split(bool inthread)
{
	struct ufvm_config cfg;
	struct ufvm *vm;
	uint64_t end = race_now_us() + WAIT_US;
	uint8_t *map;

	split_config(&cfg, 1, inthread);
	map = open_cached(&cfg, &vm, NULL);
	do {
		scan(vm, map);
	} while ((ut_counter(vm, UFVM_CTR_INSTALL_SPLITS) < SPLITS ||
		  !ut_counter(vm, UFVM_CTR_INSTALLER_PAGES)) && race_now_us() < end);
	cr_assert_geq(ut_counter(vm, UFVM_CTR_INSTALL_SPLITS), SPLITS,
		      "fewer than %u installs split in %u s", SPLITS, WAIT_US / 1000000);
	cr_assert_gt(ut_counter(vm, UFVM_CTR_INSTALLER_PAGES), 0,
		     "no installer thread mapped a page in %u s", WAIT_US / 1000000);
	ut_close(vm);
}

Test(install_split, large_installs_are_split_and_read_right, .timeout = 30)
{
	scans_split(false);
}

Test(install_split, in_thread_large_installs_are_split_and_read_right, .timeout = 30)
{
	scans_split(true);
}

Test(install_split, off_nothing_is_split, .timeout = 30)
{
	struct ufvm_config cfg;
	struct ufvm *vm;
	uint8_t *map;

	split_config(&cfg, 0, false);
	map = open_cached(&cfg, &vm, NULL);
	for (int pass = 0; pass < 3; pass++)
		scan(vm, map);
	cr_assert_eq(ut_counter(vm, UFVM_CTR_INSTALL_SPLITS), 0);
	cr_assert_eq(ut_counter(vm, UFVM_CTR_INSTALLER_PAGES), 0);
	ut_close(vm);
}

/* ---- the race: a zap against an installer's chunk ---- */

static struct {
	atomic_int posted;	/* a caller posted a split */
	atomic_int taken;	/* the installer took its first chunk */
	atomic_int held;	/* ... and sc.a, sc.len name it */
	atomic_int zapped;	/* the zap returned */
	uint64_t a, len;	/* the held chunk */
} sc;

/* Context: a handler, the faulting thread (in-thread: its signal handler) or an installer. */
static void split_hook(void *arg, unsigned int point, uint64_t a, uint64_t b)
{
	(void)arg;
	if (point == UFVM_HOOK_SPLIT_POSTED && !atomic_exchange(&sc.posted, 1)) {
		race_wait(&sc.held, 1, WAIT_US);	/* the installer takes a chunk */
	} else if (point == UFVM_HOOK_INSTALL_SPLIT && !atomic_exchange(&sc.taken, 1)) {
		sc.a = a;
		sc.len = b;
		atomic_store(&sc.held, 1);
		race_wait(&sc.zapped, 1, HOLD_US);	/* times out unless the zap overtook us */
	}
}

static void *toucher(void *arg)
{
	(void)*(volatile uint8_t *)arg;
	return NULL;
}

/* Pages of [a, a+len) with a present PTE (/proc/self/pagemap bit 63). */
static unsigned int present_pages(uint64_t a, uint64_t len)
{
	int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	unsigned int n = 0;

	cr_assert(fd >= 0, "/proc/self/pagemap: %s", strerror(errno));
	for (uint64_t p = a; p < a + len; p += PAGE) {
		uint64_t e = 0;

		cr_assert(pread(fd, &e, sizeof(e), (off_t)(p / PAGE * sizeof(e))) == sizeof(e));
		n += (unsigned int)(e >> 63);
	}
	close(fd);
	return n;
}

/* Zap while an installer holds a chunk; return the chunk's pages left mapped. */
static unsigned int zap_vs_installer(unsigned int debug, bool inthread)
{
	struct ufvm_config cfg;
	struct ufvm *vm;
	uint64_t pages0, end;
	pthread_t th;
	uint8_t *map;
	unsigned int left;

	split_config(&cfg, 1, inthread);
	cfg.debug_flags |= debug;
	map = open_cached(&cfg, &vm, NULL);
	memset(&sc, 0, sizeof(sc));
	pages0 = ut_counter(vm, UFVM_CTR_INSTALLER_PAGES);
	/*
	 * A fault of the scan that was still queued when the scan's zap ran
	 * (the reader is woken by its window's first chunk and may fault
	 * again in a chunk not yet in) maps its window when it is served.
	 * Wait for the map to be empty, and the toucher's fault is a fault.
	 */
	end = race_now_us() + WAIT_US;
	while (present_pages((uintptr_t)map, SIZE) && race_now_us() < end) {
		race_sleep_us(10000);
		assert_ok(ufvm_zap(vm, map, SIZE));
	}
	cr_assert_eq(present_pages((uintptr_t)map, SIZE), 0, "the map stays mapped after zaps");
	assert_ok(ufvm_debug_hook(vm, split_hook, NULL));
	cr_assert(pthread_create(&th, NULL, toucher, map) == 0);
	cr_assert(race_wait(&sc.held, 1, WAIT_US), "no installer took a chunk (%s split posted)",
		  atomic_load(&sc.posted) ? "a" : "no");
	assert_ok(ufvm_zap(vm, (void *)(uintptr_t)sc.a, sc.len));
	atomic_store(&sc.zapped, 1);
	cr_assert(race_join(th, WAIT_US) == 0, "the faulting thread was not served");
	/* The held chunk is in, wherever it went. */
	end = race_now_us() + WAIT_US;
	while (ut_counter(vm, UFVM_CTR_INSTALLER_PAGES) < pages0 + sc.len / PAGE &&
	       race_now_us() < end)
		race_sleep_us(1000);
	left = present_pages(sc.a, sc.len);
	assert_ok(ufvm_debug_hook(vm, NULL, NULL));
	ut_close(vm);
	return left;
}

Test(install_split, zap_comes_after_the_installers_chunk, .timeout = 60)
{
	unsigned int left = zap_vs_installer(0, false);

	cr_assert_eq(left, 0, "%u pages of an installer's chunk stayed mapped after a zap", left);
}

Test(install_split, in_thread_zap_comes_after_the_installers_chunk, .timeout = 60)
{
	unsigned int left = zap_vs_installer(0, true);

	cr_assert_eq(left, 0, "%u pages of an installer's chunk stayed mapped after a zap", left);
}

Test(install_split, teeth_no_wait_maps_after_the_zap, .timeout = 60)
{
	unsigned int left = zap_vs_installer(UFVM_DEBUG_SPLIT_NO_WAIT, false);

	cr_assert_gt(left, 0, "the installer's chunk did not outlive the zap without the wait");
}

Test(install_split, teeth_in_thread_no_wait_maps_after_the_zap, .timeout = 60)
{
	unsigned int left = zap_vs_installer(UFVM_DEBUG_SPLIT_NO_WAIT, true);

	cr_assert_gt(left, 0, "the installer's chunk did not outlive the zap without the wait");
}

/* ---- an installer's chunk that fails ---- */

static void scans_fail(bool inthread)
{
	char path[TMPSTORE_PATH_MAX];
	static const uint8_t zero[8];
	struct ufvm_config cfg;
	struct ufvm_file *f;
	struct ufvm *vm;
	uint64_t end = race_now_us() + WAIT_US;
	uint8_t *map;

	split_config(&cfg, 1, inthread);
	cfg.debug_flags |= UFVM_DEBUG_SPLIT_FAIL;
	map = open_cached(&cfg, &vm, path);
	do {
		scan(vm, map);
	} while (ut_counter(vm, UFVM_CTR_INSTALL_ERRORS) < FAILS && race_now_us() < end);
	cr_assert_geq(ut_counter(vm, UFVM_CTR_INSTALL_ERRORS), FAILS,
		      "installers failed fewer than %u installs in %u s (%llu split)", FAILS,
		      WAIT_US / 1000000,
		      (unsigned long long)ut_counter(vm, UFVM_CTR_INSTALL_SPLITS));
	for (size_t i = 0; i < NPAGES; i++)	/* leave the map mapped */
		assert_pattern(SEED, map + i * PAGE + 16, i * PAGE + 16, 8, "page %zu", i);
	assert_ok(ufvm_file_open(vm, path, UFVM_RDWR, &f));
	assert_ok(ufvm_punch(f, 0, SIZE));
	for (size_t i = 0; i < NPAGES; i++)
		cr_assert(!memcmp(map + i * PAGE + 16, zero, sizeof(zero)),
			  "page %zu not zero after the punch", i);
	assert_ok(ufvm_file_close(f));
	ut_close(vm);
}

Test(install_split, failed_chunks_undo_the_install, .timeout = 60)
{
	scans_fail(false);
}

Test(install_split, in_thread_failed_chunks_undo_the_install, .timeout = 60)
{
	scans_fail(true);
}
