/* SPDX-License-Identifier: MIT */
/*
 * test_map_vs_stale_access.c - a thread that touches a new region before
 * ufvm handed it out cannot reach its frames behind ufvm's back.
 *
 * Invariant: a region of the userfaultfd backend is inaccessible until it
 * is registered.  The kernel may place a new region where one was just
 * unmapped, and a thread still holding an address of the old one may touch
 * it there (an application's stale pointer; the fuzzer's peeker).  Mapped
 * accessible and not yet registered, that load was served by the kernel
 * from the memfd: it made a frame in a hole that ufvm knew nothing of, a
 * store through the region afterwards went into it unseen (no fault, no
 * dirty page), and the fill that later found the page uncached wrote the
 * store file's bytes over it: the store was lost (found by `ufvm fuzz
 * --peek --jitter 8`, a byte written through a mapping read back as zero).
 * Here a toucher thread loads from the new region's first page while
 * UFVM_HOOK_ATTACHED holds the mapping between its mmap and its
 * registration; then the main thread stores a byte there and reads the
 * file back with ufvm_pread.  Teeth: UFVM_DEBUG_ATTACH_OPEN (mapped with
 * its protection at once, as it was): the toucher's load succeeds, and
 * ufvm_pread returns the store file's byte instead of the one stored.
 */
#include <pthread.h>
#include <stdatomic.h>

#include "check.h"
#include "race.h"

#define NPAGES		8
#define SEED		0x5eed0a00
#define AT		(3 * PAGE + 21)	/* the byte touched and stored */
#define VALUE		0xa7
#define WAIT_US		(1000000u)

static struct {
	atomic_uintptr_t target;	/* the new region's address, from the hook */
	atomic_int touched;		/* the toucher loaded from it */
	atomic_int stop;
	int sig;			/* what the toucher's load got */
	uint8_t got;
} st;

/* Context: the thread mapping the region, mmap_lock held for writing. */
static void attach_hook(void *arg, unsigned int point, uint64_t a, uint64_t b)
{
	(void)arg, (void)b;
	if (point != UFVM_HOOK_ATTACHED || atomic_load(&st.touched))
		return;
	atomic_store(&st.target, (uintptr_t)a);
	race_wait(&st.touched, 1, WAIT_US);	/* the toucher's load, done */
}

static void *toucher(void *arg)
{
	struct sigbus_info info;
	uintptr_t t;

	(void)arg;
	while (!atomic_load(&st.stop)) {
		t = atomic_load(&st.target);
		if (!t) {
			race_sleep_us(50);
			continue;
		}
		st.sig = sigcatch_read((const uint8_t *)t + AT, &st.got, &info);
		atomic_store(&st.touched, 1);
		break;
	}
	return NULL;
}

/* Return: whether the byte stored through the new region reached ufvm. */
static bool run(uint64_t debug_flags)
{
	char path[TMPSTORE_PATH_MAX];
	struct ufvm_config cfg;
	struct ufvm_file *f;
	struct ufvm *vm;
	pthread_t th;
	uint8_t *m, v = 0;
	void *addr;

	sigcatch_install();
	memset(&st, 0, sizeof(st));
	ut_store("n", NPAGES * PAGE, SEED, path);
	assert_ok(ufvm_config_init(&cfg));
	if (cfg.backend == UFVM_BACKEND_SIGSEGV)
		cr_skip_test("the sigsegv backend reserves a region PROT_NONE: every access "
			     "faults into ufvm");
	cfg.debug_flags = debug_flags;
	vm = ut_open(&cfg);
	if (strncmp(ufvm_backend_name(vm), "uffd", 4)) {	/* "uffd", "uffd-inthread" */
		ut_close(vm);
		cr_skip_test("no userfaultfd: no registration");
	}
	assert_ok(ufvm_file_open(vm, path, UFVM_RDWR, &f));
	assert_ok(ufvm_debug_hook(vm, attach_hook, NULL));
	cr_assert(pthread_create(&th, NULL, toucher, NULL) == 0);
	assert_ok(ufvm_map_file(f, 0, NPAGES * PAGE, UFVM_PROT_READ | UFVM_PROT_WRITE,
				UFVM_MAP_SHARED, &addr));
	atomic_store(&st.stop, 1);
	pthread_join(th, NULL);
	assert_ok(ufvm_debug_hook(vm, NULL, NULL));
	cr_assert(atomic_load(&st.touched), "the toucher never loaded from the new region");
	m = addr;
	cr_log_info("%s: the early load got %s", debug_flags ? "ATTACH_OPEN" : "default",
		    st.sig == SIGSEGV ? "SIGSEGV" : st.sig ? "SIGBUS" : "a byte");
	if (!debug_flags)
		cr_assert_eq(st.sig, SIGSEGV, "a load before the registration got %s",
			     st.sig ? "SIGBUS" : "a byte");
	m[AT] = VALUE;
	cr_assert_eq(ufvm_pread(f, &v, 1, AT), 1);
	ut_unmap(vm, m, NPAGES * PAGE);
	assert_ok(ufvm_file_close(f));
	ut_close(vm);
	return v == VALUE;
}

Test(map_vs_stale_access, a_store_after_an_early_load_is_seen, .timeout = 30)
{
	cr_assert(run(0), "a byte stored through the new region did not reach ufvm's cache: "
		  "an early load made a frame behind its back");
}

Test(map_vs_stale_access, teeth_attach_open_loses_the_store, .timeout = 30)
{
	cr_assert(!run(UFVM_DEBUG_ATTACH_OPEN),
		  "ATTACH_OPEN: the store reached ufvm although the early load was served by "
		  "the kernel");
}
