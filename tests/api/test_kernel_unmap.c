/* SPDX-License-Identifier: MIT */
/*
 * test_kernel_unmap.c - a page the kernel unmapped behind ufvm's back is
 * mapped again by its next fault.
 *
 * Invariant: an access to a page of a region completes, whatever the
 * kernel did to the page tables meanwhile.  The kernel's reclaim may unmap
 * a page of a region at any time (kswapd under memory pressure, DAMON's
 * pageout scheme, MADV_PAGEOUT from any process): it unmaps a shmem page
 * before it tries to write it out and, with no swap, keeps it cached.
 * ufvm still counts the page mapped.  With the userfaultfd backend the
 * next access faults on a page ufvm believes mapped, which it took for a
 * duplicate fault and answered by waking the thread only: the access
 * faulted again, for ever (seen as a rare 30 s hang of
 * tests/api/test_install_split on a host whose DAMON pages out unmapped
 * file pages: it picked frames while a zap had them unmapped, and the next
 * scan mapped them before reclaim unmapped them again).  Such a fault now
 * maps the page again (vm/pmap.h, ->remap).
 *
 * Scenario, in a child killed after 10 s (a second for the teeth): map a
 * file, read every page (read-only mapping) or write it (writable),
 * MADV_PAGEOUT the range, see in /proc/self/pagemap that the kernel
 * unmapped the pages (else skip), then read them again (and write them,
 * then fsync and check the store).
 * With the environment's delivery and with in-thread delivery.  Teeth
 * (UFVM_DEBUG_DUP_ONLY_WAKES: such a fault only wakes): the child hangs.
 * The sigsegv backend maps the frames with plain shared mappings, which
 * the kernel's own faults fill again: its teeth are skipped.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "check.h"
#include "pagemap.h"
#include "race.h"

#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT	21
#endif

#define NPAGES		64
#define SEED		0x5eed2701

enum {
	CHILD_OK,
	CHILD_SETUP,		/* the scenario could not be set up */
	CHILD_NOT_UNMAPPED,	/* MADV_PAGEOUT left the pages mapped: skip */
	CHILD_BAD,		/* wrong bytes */
	CHILD_HUNG = 100,	/* (the parent's verdict) */
};

static int scenario(const char *path, bool write, bool inthread, unsigned int debug)
{
	struct ufvm_config cfg;
	struct ufvm_file *f;
	uint64_t pm[NPAGES];
	struct ufvm *vm;
	uint8_t *m, b;
	void *addr;
	int present = 0, i, fd;

	if (ufvm_config_init(&cfg))
		return CHILD_SETUP;
	cfg.readahead = 0;
	cfg.debug_flags |= debug;
	if (inthread)
		cfg.delivery = UFVM_DELIVERY_INTHREAD;
	if (ufvm_open(&cfg, &vm) || ufvm_file_open(vm, path, UFVM_RDWR, &f) ||
	    ufvm_map(vm, path, 0, NPAGES * PAGE,
		     UFVM_PROT_READ | (write ? UFVM_PROT_WRITE : 0), UFVM_MAP_SHARED, &addr))
		return CHILD_SETUP;
	m = addr;
	for (i = 0; i < NPAGES; i++) {
		if (write)
			m[i * PAGE] = (uint8_t)i;
		else if (m[i * PAGE + 3] != pattern_byte(SEED, (uint64_t)i * PAGE + 3))
			return CHILD_BAD;
	}
	if (madvise(m, NPAGES * PAGE, MADV_PAGEOUT) || pagemap_read(m, NPAGES, pm))
		return CHILD_SETUP;
	for (i = 0; i < NPAGES; i++)
		present += !!(pm[i] & PM_PRESENT);
	if (present == NPAGES)
		return CHILD_NOT_UNMAPPED;
	for (i = NPAGES - 1; i >= 0; i--) {
		if (m[i * PAGE + 3] != pattern_byte(SEED, (uint64_t)i * PAGE + 3))
			return CHILD_BAD;
		if (write && m[i * PAGE] != (uint8_t)i)
			return CHILD_BAD;
		if (write)
			m[i * PAGE + 5] = 'w';
	}
	if (write) {
		if (ufvm_fsync(f))
			return CHILD_SETUP;
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return CHILD_SETUP;
		for (i = 0; i < NPAGES; i++)
			if (pread(fd, &b, 1, (off_t)i * PAGE + 5) != 1 || b != 'w')
				return CHILD_BAD;
		close(fd);
	}
	if (ufvm_unmap(vm, addr, NPAGES * PAGE) || ufvm_file_close(f) || ufvm_close(vm))
		return CHILD_SETUP;
	return CHILD_OK;
}

/* Run the scenario in a child; kill it after @ms.  Return: its code or CHILD_HUNG. */
static int run(bool write, bool inthread, unsigned int debug, int ms)
{
	char path[TMPSTORE_PATH_MAX];
	struct ufvm_config cfg;
	int status = 0;
	pid_t pid;

	assert_ok(ufvm_config_init(&cfg));
	if (inthread && cfg.backend == UFVM_BACKEND_SIGSEGV)
		cr_skip_test("in-thread delivery is the uffd backend's");
	if (debug && cfg.backend == UFVM_BACKEND_SIGSEGV)
		cr_skip_test("the sigsegv backend's mappings are filled again by the kernel");
	ut_store("k", NPAGES * PAGE, SEED, path);
	pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0)
		_exit(scenario(path, write, inthread, debug));
	if (!ut_wait_child(pid, ms, &status))
		return CHILD_HUNG;
	cr_assert(WIFEXITED(status), "the child died of signal %d", WTERMSIG(status));
	if (WEXITSTATUS(status) == CHILD_NOT_UNMAPPED)
		cr_skip_test("MADV_PAGEOUT left every page mapped here");
	cr_assert_neq(WEXITSTATUS(status), CHILD_SETUP, "the scenario could not be set up");
	return WEXITSTATUS(status);
}

static void check(bool write, bool inthread)
{
	int st = run(write, inthread, 0, 10000);

	cr_assert_neq(st, CHILD_HUNG, "an access to a page the kernel unmapped never completed "
		      "(10 s)");
	cr_assert_eq(st, CHILD_OK, "wrong bytes after the kernel unmapped the pages");
}

Test(kernel_unmap, read_after_pageout, .timeout = 30)
{
	check(false, false);
}

Test(kernel_unmap, write_after_pageout, .timeout = 30)
{
	check(true, false);
}

Test(kernel_unmap, in_thread_read_after_pageout, .timeout = 30)
{
	check(false, true);
}

Test(kernel_unmap, in_thread_write_after_pageout, .timeout = 30)
{
	check(true, true);
}

Test(kernel_unmap, teeth_dup_only_wakes_hangs, .timeout = 30)
{
	cr_assert_eq(run(false, false, UFVM_DEBUG_DUP_ONLY_WAKES, RACE_HUNG_US / 1000), CHILD_HUNG,
		     "with a fault on a page counted mapped only waking, the access completed: "
		     "the test cannot see the kernel's unmapping");
}

Test(kernel_unmap, teeth_in_thread_dup_only_wakes_hangs, .timeout = 30)
{
	cr_assert_eq(run(false, true, UFVM_DEBUG_DUP_ONLY_WAKES, RACE_HUNG_US / 1000), CHILD_HUNG,
		     "with a fault on a page counted mapped only waking, the access completed "
		     "in-thread: the test cannot see the kernel's unmapping");
}
