/* SPDX-License-Identifier: MIT */
/*
 * test_eof_vs_grow.c - a fault that found its page past the end of the
 * file does not poison it once the file has grown over it.
 *
 * Invariant: the SIGBUS answer to a page past EOF is decided again under
 * the region's ptl.  The locked fault path compares the page with the
 * size without the invalidate lock; a truncate that grows the file in
 * between stores the new size and zaps the old end (clearing earlier
 * SIGBUS mappings) before the fault poisons the page.  Poisoned then, the
 * page would raise SIGBUS on every access although it lies inside the
 * file, until something zapped it.
 *
 * UFVM_HOOK_PAST_EOF (the fault found page 8 past the end, has not
 * answered) lets the test grow the file from 8 to 9 pages there.  The
 * access must then read page 8 (zeros), not get SIGBUS.  Teeth: without
 * the size check under the ptl it gets SIGBUS.
 *
 * The sigsegv backend: the file is shrunk to 8 pages and the thread
 * touches page 8, serving its own fault.  The userfaultfd backend: the
 * kernel itself raises SIGBUS past the end of the memfd, so the fault
 * must be queued while page 8 is inside the file: the only handler
 * thread is held in a fill of another file (UFVM_HOOK_FILL), the thread
 * touches page 8 of 9, the test shrinks the file to 8 pages, and lets the
 * handler go on to the message.  In-thread delivery is skipped (the
 * kernel raises SIGBUS itself there).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "check.h"
#include "race.h"

#define SEED_A		0x5eed0d00
#define SEED_B		0x5eed0d01
#define MAP_SIZE	(16 * PAGE)
#define TARGET_PG	8
#define STALL_PG	5		/* file B's page whose fill holds the handler */
#define WAIT_US		(5 * 1000000u)

static struct {
	uint8_t *a, *b;
	atomic_int fill_started, release_fill;
	atomic_int past_eof, grown;
	atomic_int tid_reader;
	int sig;
	uint8_t got;
} t;

static void hook(void *arg, unsigned int point, uint64_t a, uint64_t b)
{
	(void)arg, (void)b;
	if (point == UFVM_HOOK_FILL && a == STALL_PG * PAGE &&
	    !atomic_exchange(&t.fill_started, 1)) {
		race_wait(&t.release_fill, 1, WAIT_US);
	} else if (point == UFVM_HOOK_PAST_EOF && a == TARGET_PG * PAGE &&
		   !atomic_exchange(&t.past_eof, 1)) {
		race_wait(&t.grown, 1, WAIT_US);	/* the test grows the file */
	}
}

static void *staller(void *arg)
{
	(void)arg;
	(void)*(volatile uint8_t *)(t.b + STALL_PG * PAGE);
	return NULL;
}

static void *reader(void *arg)
{
	struct sigbus_info info;

	(void)arg;
	atomic_store(&t.tid_reader, (int)syscall(SYS_gettid));
	t.sig = sigbus_read(t.a + TARGET_PG * PAGE + 1, &t.got, &info) ? SIGBUS : 0;
	return NULL;
}

Test(eof_vs_grow, page_inside_grown_file_is_not_poisoned, .timeout = 30)
{
	char pa[TMPSTORE_PATH_MAX], pb[TMPSTORE_PATH_MAX];
	struct ufvm_config cfg;
	struct ufvm_file *f;
	pthread_t st, rd;
	struct ufvm *vm;
	bool uffd;

	sigbus_install();
	ut_store("a", (TARGET_PG + 1) * PAGE, SEED_A, pa);
	ut_store("b", 16 * PAGE, SEED_B, pb);
	assert_ok(ufvm_config_init(&cfg));
	if (cfg.delivery == UFVM_DELIVERY_INTHREAD)
		cr_skip_test("in-thread delivery: the kernel raises SIGBUS past the end itself");
	cfg.handler_threads = 1;
	cfg.readahead = 0;
	vm = ut_open(&cfg);
	uffd = strcmp(ufvm_backend_name(vm), "sigsegv") != 0;
	assert_ok(ufvm_file_open(vm, pa, UFVM_RDWR, &f));
	t.a = ut_map(vm, pa, 0, MAP_SIZE, UFVM_PROT_READ);
	t.b = ut_map(vm, pb, 0, 16 * PAGE, UFVM_PROT_READ);
	assert_ok(ufvm_debug_hook(vm, hook, NULL));

	if (uffd) {
		cr_assert(pthread_create(&st, NULL, staller, NULL) == 0);
		cr_assert(race_wait(&t.fill_started, 1, WAIT_US), "the handler never filled");
		cr_assert(pthread_create(&rd, NULL, reader, NULL) == 0);
		cr_assert(race_wait_wchan(&t.tid_reader, "handle_userfault", WAIT_US),
			  "the reader never faulted");
		assert_ok(ufvm_truncate(f, TARGET_PG * PAGE));
		atomic_store(&t.release_fill, 1);
	} else {
		assert_ok(ufvm_truncate(f, TARGET_PG * PAGE));
		cr_assert(pthread_create(&rd, NULL, reader, NULL) == 0);
	}
	cr_assert(race_wait(&t.past_eof, 1, WAIT_US), "no fault found page %d past the end",
		  TARGET_PG);
	assert_ok(ufvm_truncate(f, (TARGET_PG + 1) * PAGE));
	atomic_store(&t.grown, 1);
	cr_assert_eq(race_join(rd, WAIT_US), 0);
	if (uffd)
		cr_assert_eq(race_join(st, WAIT_US), 0);
	assert_ok(ufvm_debug_hook(vm, NULL, NULL));

	cr_assert_eq(t.sig, 0, "page %d is inside the file (%d pages) but its read got SIGBUS",
		     TARGET_PG, TARGET_PG + 1);
	cr_assert_eq(t.got, 0, "page %d of the grown file reads %#x, want 0", TARGET_PG, t.got);
	ut_unmap(vm, t.a, MAP_SIZE);
	ut_unmap(vm, t.b, 16 * PAGE);
	assert_ok(ufvm_file_close(f));
	ut_close(vm);
}
