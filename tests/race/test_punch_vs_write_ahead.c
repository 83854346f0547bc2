/* SPDX-License-Identifier: MIT */
/*
 * test_punch_vs_write_ahead.c - a punch that fails loses no store, even one
 * into a page that a fault mapped writable while the punch took it.
 *
 * Invariant: a punch the store refuses changes no byte of the file.  It
 * keeps the dirty pages of its range (their stores are not in the file
 * yet) and drops the clean ones.  A fault that checked a cached page
 * before the punch locked it (mapcount first) still maps it, writable and
 * dirty if it is in a write fault's window (write-ahead), and the thread
 * stores into it; the punch's unmap waits for that fault's ptl.  So the
 * punch must read the dirty bit after the unmap: read before it, the page
 * looked clean, was dropped with the store, and the file kept its old
 * byte although the punch failed.
 *
 * Set-up: pages cached (not mapped); stores into pages Q-9 .. Q-2 in
 * order (a trail of 8); page Q's punch made to fail (UFVM_INJECT_PUNCH_EIO).
 * The punch of page Q is held at UFVM_HOOK_DROP_PAGE (b = 0), past its
 * zap of the regions, not yet holding page Q; the store into page Q-1
 * faults, and its window (Q-1 on) checks page Q: UFVM_HOOK_AROUND_CHECKED
 * holds the fault there while the punch locks page Q and reaches
 * UFVM_HOOK_DROP_PAGE (b = 1); the fault maps page Q writable and dirty,
 * the thread stores into it, and the punch goes on, and fails.  After a
 * sync the file must hold the store.  Teeth: UFVM_DEBUG_DROP_DIRTY_EARLY
 * reads the bit before the unmap: the store is lost.
 */
#include <pthread.h>
#include <stdatomic.h>

#include "check.h"
#include "race.h"

#define NPAGES	64
#define SEED	0x5eed0a13
#define Q	40
#define WAIT_US	(5 * 1000000u)

static struct {
	struct ufvm_file *f;
	atomic_int armed, punch_ready, checked, locked, stored;
	int err;
} pw;

static void hook(void *arg, unsigned int point, uint64_t a, uint64_t b)
{
	(void)arg;
	if (!atomic_load(&pw.armed))
		return;
	if (point == UFVM_HOOK_DROP_PAGE && a == Q * PAGE && b == 0) {
		atomic_store(&pw.punch_ready, 1);
		race_wait(&pw.checked, 1, WAIT_US);	/* a fault checked page Q */
	} else if (point == UFVM_HOOK_AROUND_CHECKED && a == Q) {
		atomic_store(&pw.checked, 1);
		race_wait(&pw.locked, 1, WAIT_US);	/* the punch holds page Q */
	} else if (point == UFVM_HOOK_DROP_PAGE && a == Q * PAGE && b == 1) {
		atomic_store(&pw.locked, 1);
		race_wait(&pw.stored, 1, WAIT_US);	/* the store into page Q is done */
	}
}

static void *puncher(void *arg)
{
	(void)arg;
	pw.err = ufvm_punch(pw.f, Q * PAGE, PAGE);
	return NULL;
}

/* Return: whether the store into page Q is in the file after the failed punch. */
static bool run(uint64_t debug_flags)
{
	char path[TMPSTORE_PATH_MAX], page[PAGE];
	struct ufvm_config cfg;
	struct ufvm *vm;
	pthread_t th;
	uint8_t *m;
	void *addr;
	int pg;

	ut_store("p", NPAGES * PAGE, SEED, path);
	assert_ok(ufvm_config_init(&cfg));
	cfg.write_ahead = 64;
	cfg.dirty_expire_ms = 3600000;
	cfg.debug_flags = debug_flags;
	vm = ut_open(&cfg);
	memset(&pw, 0, sizeof(pw));
	assert_ok(ufvm_file_open(vm, path, UFVM_RDWR, &pw.f));
	for (pg = 0; pg < NPAGES; pg++)		/* cached, clean, not mapped */
		ut_pread(pw.f, page, PAGE, pg * PAGE);
	assert_ok(ufvm_map_file(pw.f, 0, NPAGES * PAGE, UFVM_PROT_READ | UFVM_PROT_WRITE,
				UFVM_MAP_SHARED, &addr));
	m = addr;
	for (pg = Q - 9; pg <= Q - 2; pg++)	/* the trail */
		m[pg * PAGE] = 'T';
	assert_ok(ufvm_inject(pw.f, UFVM_INJECT_PUNCH_EIO, Q * PAGE, PAGE));
	assert_ok(ufvm_debug_hook(vm, hook, NULL));
	atomic_store(&pw.armed, 1);
	cr_assert(pthread_create(&th, NULL, puncher, NULL) == 0);
	cr_assert(race_wait(&pw.punch_ready, 1, WAIT_US), "the punch never reached page %d", Q);
	m[(Q - 1) * PAGE] = 'T';	/* its window checks page Q, and maps it */
	cr_assert(atomic_load(&pw.locked), "the window of page %d did not reach page %d",
		  Q - 1, Q);
	m[Q * PAGE + 7] = 'S';
	atomic_store(&pw.stored, 1);
	cr_assert(race_join(th, WAIT_US) == 0, "the punch did not return");
	atomic_store(&pw.armed, 0);
	assert_ok(ufvm_debug_hook(vm, NULL, NULL));
	cr_assert_eq(pw.err, -EIO, "the punch did not fail: %s", ufvm_strerror(pw.err));
	assert_ok(ufvm_inject(pw.f, UFVM_INJECT_PUNCH_EIO, 0, 0));
	assert_ok(ufvm_sync(vm, m, NPAGES * PAGE));
	assert_ok(tmpstore_read(path, page, 8, Q * PAGE));
	ut_unmap(vm, m, NPAGES * PAGE);
	assert_ok(ufvm_file_close(pw.f));
	ut_close(vm);
	return page[7] == 'S';
}

Test(punch_vs_write_ahead, a_failed_punch_keeps_the_store, .timeout = 30)
{
	cr_assert(run(0), "the store into page %d, mapped by a fault while the punch took "
		  "it, is gone though the punch failed", Q);
}

Test(punch_vs_write_ahead, teeth_dirty_read_early_drops_the_store, .timeout = 30)
{
	cr_assert(!run(UFVM_DEBUG_DROP_DIRTY_EARLY), "reading page %d's dirty bit before the "
		  "unmap, the punch should have dropped it with its store", Q);
}
