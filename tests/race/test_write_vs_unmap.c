/* SPDX-License-Identifier: MIT */
/*
 * test_write_vs_unmap.c - a write that lands while ufvm_unmap() runs is
 * not lost.
 *
 * Invariant: a store into a writable region either completes before the
 * region is gone, and then reaches the file (the unmap writes back what the
 * region mapped), or faults and gets a signal: SIGSEGV once the region is
 * gone, or with in-thread delivery SIGBUS passed on at once (the region is
 * out of the address space, the range not yet unmapped).
 *
 * The window: ufvm_unmap() takes its regions out of the address space and
 * the rmap, dropping their pages' mapcounts, and unmaps them from the
 * process only after that (UFVM_HOOK_TAKEN_OUT sits between the two).  A
 * write-back then finds the page mapped nowhere, so it cleans it without
 * write-protecting it; a store through a writable entry still in the page
 * tables then dirties the frame and nothing else, and the unmap's own
 * write-back skips the clean page.  Held in the hook: a write-back of the
 * file (ufvm_writeback from another thread), then the writer's second
 * store, which must not complete unseen.
 *
 * The region's pages are unmapped before their mapcounts drop, so that
 * store faults.  Teeth:
 * UFVM_DEBUG_KILL_NO_ZAP drops the mapcounts first, and the store lands
 * unseen: the file keeps the first value.
 *
 * Only with the userfaultfd backend (a fault on a region that is gone kills
 * the process with the sigsegv backend, test_spec_vs_unmap.c says why).
 */
#include <pthread.h>
#include <stdatomic.h>

#include "check.h"
#include "race.h"

#define NPAGES		4
#define SEED		0x5eed0700
#define WAIT_US		(5 * 1000000u)
#define STORE_US	200000u		/* the second store completes by then, or faulted */

struct wvu {
	struct ufvm_file *f;
	uint8_t *m;
	pid_t tid;
	atomic_int armed, in_hook, wb_go, wb_done, store_go, stored, hook_done;
	int wb_err, sig;
};

static void hook(void *arg, unsigned int point, uint64_t a, uint64_t b)
{
	struct wvu *t = arg;

	(void)a;
	(void)b;
	if (point != UFVM_HOOK_TAKEN_OUT || !atomic_exchange(&t->armed, 0))
		return;
	atomic_store(&t->in_hook, 1);
	atomic_store(&t->wb_go, 1);		/* a write-back of the file now */
	race_wait(&t->wb_done, 1, WAIT_US);
	atomic_store(&t->store_go, 1);		/* then the second store */
	race_wait(&t->stored, 1, STORE_US);	/* it faults and waits: time out */
	atomic_store(&t->hook_done, 1);
}

static void *writeback_thread(void *arg)
{
	struct wvu *t = arg;

	race_wait(&t->wb_go, 1, WAIT_US);
	t->wb_err = ufvm_writeback(t->f);
	atomic_store(&t->wb_done, 1);
	return NULL;
}

static void *writer(void *arg)
{
	struct wvu *t = arg;
	struct sigbus_info si;

	t->tid = sigbus_gettid();
	race_wait(&t->store_go, 1, WAIT_US);
	t->sig = sigcatch_write(t->m + 8, 'B', &si);
	atomic_store(&t->stored, 1);
	return NULL;
}

/* Return: the byte at offset 8 of the store file after the unmap. */
static uint8_t run(unsigned int debug_flags, int *sig)
{
	char path[TMPSTORE_PATH_MAX];
	static struct wvu t;
	struct ufvm_config cfg;
	pthread_t wb, wr;
	struct ufvm *vm;
	void *addr = NULL;
	uint8_t back[16];

	ut_store("w", NPAGES * PAGE, SEED, path);
	assert_ok(ufvm_config_init(&cfg));
	cfg.debug_flags = debug_flags;
	if (cfg.backend == UFVM_BACKEND_SIGSEGV)
		cr_skip_test("UFVM_BACKEND=sigsegv: a touch of an unmapped region kills the "
			     "process there; this race needs the userfaultfd backend");
	cfg.backend = UFVM_BACKEND_UFFD;
	sigcatch_install();	/* before ufvm: SIGSEGVs of the writer are caught */
	vm = ut_open(&cfg);
	memset(&t, 0, sizeof(t));
	assert_ok(ufvm_file_open(vm, path, UFVM_RDWR, &t.f));
	assert_ok(ufvm_map_file(t.f, 0, NPAGES * PAGE, UFVM_PROT_READ | UFVM_PROT_WRITE, UFVM_MAP_SHARED,
				&addr));
	t.m = addr;
	t.m[8] = 'A';		/* mapped writable, dirty */
	assert_ok(ufvm_debug_hook(vm, hook, &t));
	atomic_store(&t.armed, 1);
	cr_assert(pthread_create(&wb, NULL, writeback_thread, &t) == 0);
	cr_assert(pthread_create(&wr, NULL, writer, &t) == 0);
	ut_unmap(vm, t.m, NPAGES * PAGE);
	cr_assert(atomic_load(&t.hook_done), "ufvm_unmap never reached UFVM_HOOK_TAKEN_OUT");
	pthread_join(wb, NULL);
	cr_assert(race_join(wr, WAIT_US) == 0, "the writer (tid %d) is not back after the unmap",
		  (int)t.tid);
	assert_ok(t.wb_err);
	assert_ok(ufvm_debug_hook(vm, NULL, NULL));
	assert_ok(ufvm_fsync(t.f));
	assert_ok(tmpstore_read(path, back, sizeof(back), 0));
	assert_ok(ufvm_file_close(t.f));
	ut_close(vm);
	*sig = t.sig;
	return back[8];
}

Test(write_vs_unmap, store_during_unmap_is_not_lost, .timeout = 30)
{
	int sig;
	uint8_t v = run(0, &sig);

	cr_assert(sig || v == 'B',
		  "the store during the unmap completed, and the file holds %#x after it", v);
	cr_assert(sig, "the store completed while the region was going (file: %#x)", v);
	cr_assert_eq(v, 'A', "the file holds %#x, want the first store's 'A'", v);
}

Test(write_vs_unmap, teeth_no_zap_loses_the_store, .timeout = 30)
{
	int sig;
	uint8_t v = run(UFVM_DEBUG_KILL_NO_ZAP, &sig);

	cr_assert(!sig && v == 'A', "with the mapcounts dropped first, the store should "
		  "complete unseen and the file keep 'A'; got %s and %#x",
		  sig ? "a fault" : "a completed store", v);
}
