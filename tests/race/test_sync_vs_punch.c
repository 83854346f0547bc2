/* SPDX-License-Identifier: MIT */
/*
 * test_sync_vs_punch.c - a sync that returns 0 has put every byte written
 * before it in the store, however many punches of the range fail meanwhile.
 *
 * A punch keeps the dirty pages of its range until the store's punch
 * succeeded, and write-back leaves them dirty while it is under way (a
 * write over the hole would bring old bytes back).  If the punch fails,
 * they are the file's again, and a sync that met the punch must write them
 * before it returns.  Here the store's punches always fail
 * (UFVM_INJECT_PUNCH_EIO) and two threads punch the range back to back,
 * while a writer writes a new value into a page of it with ufvm_pwrite(), calls ufvm_writeback()
 * (the write-back of ufvm_fsync()) and, when that returns 0, reads the
 * store file: it must hold the value.  The sync writes what a punch kept dirty holding the
 * fill side of the invalidate lock, which no punch starts under; before,
 * it waited for the punch and wrote once more, and the next punch could
 * be under way again by then.  Teeth: UFVM_DEBUG_SYNC_PAST_PUNCH (that old
 * way) must let a sync return 0 with the store still holding an older
 * value; the run goes on until it does, within a time budget.  The
 * writer's write-back sleeps at UFVM_HOOK_WB_CHECK, before it looks for
 * punches under way, so that the next punch starts in the old way's
 * window.  Both invalidate locks (rwsem, add/block) are run.
 */
#include <pthread.h>
#include <stdatomic.h>

#include "check.h"
#include "race.h"

#define FILE_SIZE	(8 * PAGE)
#define PG		3		/* the page written */
#define SEED		0x5eed1d00
#define RUN_US		1000000		/* the protected run */
#define TEETH_US	20000000	/* the teeth run's budget */
#define PUNCHERS	2
#define HOOK_SLEEP_US	200		/* the writer's, before it looks for punches */

struct run {
	struct ufvm_file *f;
	atomic_int stop;
	atomic_long punches, unexpected;
};

static pthread_t writer;

/* Widen the window: the writer's write-back waits before it looks for punches. */
static void hook(void *arg, unsigned int point, uint64_t a, uint64_t b)
{
	(void)arg;
	(void)a;
	(void)b;
	if (point == UFVM_HOOK_WB_CHECK && pthread_equal(pthread_self(), writer))
		race_sleep_us(HOOK_SLEEP_US);
}

static void *puncher(void *arg)
{
	struct run *r = arg;

	while (!atomic_load(&r->stop)) {
		int err = ufvm_punch(r->f, 0, FILE_SIZE);

		if (err != -EIO)
			atomic_fetch_add(&r->unexpected, 1);
		atomic_fetch_add(&r->punches, 1);
	}
	return NULL;
}

/* Write, sync, check, for @us or until a stale store is seen (@until_stale). */
static void sync_vs_punch(unsigned int inval, unsigned int debug, uint64_t us, bool until_stale,
			  long *syncs, long *stale, long *punches)
{
	char path[TMPSTORE_PATH_MAX];
	pthread_t th[PUNCHERS];
	struct ufvm_config cfg;
	struct run r = { 0 };
	uint64_t v = 0, got, end;
	struct ufvm *vm;
	int i, err;

	assert_ok(ufvm_config_init(&cfg));
	cfg.invalidate = inval;
	cfg.debug_flags |= debug;
	ut_store("s", FILE_SIZE, SEED, path);
	vm = ut_open(&cfg);
	assert_ok(ufvm_file_open(vm, path, UFVM_RDWR, &r.f));
	assert_ok(ufvm_inject(r.f, UFVM_INJECT_PUNCH_EIO, 0, FILE_SIZE));
	writer = pthread_self();
	assert_ok(ufvm_debug_hook(vm, hook, NULL));
	for (i = 0; i < PUNCHERS; i++)
		cr_assert(!pthread_create(&th[i], NULL, puncher, &r));
	*syncs = *stale = 0;
	end = race_now_us() + us;
	/* On past @us until both sides ran 100 times (at most 10 s more: load). */
	while ((race_now_us() < end || ((*syncs <= 100 || atomic_load(&r.punches) <= 100) &&
					race_now_us() < end + 10000000)) &&
	       !(until_stale && *stale)) {
		v++;
		ut_pwrite(r.f, &v, sizeof(v), PG * PAGE + 64);
		err = ufvm_writeback(r.f);
		cr_assert_eq(err, 0, "ufvm_writeback: %s", ufvm_strerror(err));
		(*syncs)++;
		cr_assert(tmpstore_read(path, &got, sizeof(got), PG * PAGE + 64) == 0);
		if (got != v)
			(*stale)++;
	}
	atomic_store(&r.stop, 1);
	for (i = 0; i < PUNCHERS; i++)
		pthread_join(th[i], NULL);
	*punches = atomic_load(&r.punches);
	cr_assert_eq(atomic_load(&r.unexpected), 0, "a punch did not fail with -EIO");
	assert_ok(ufvm_inject(r.f, UFVM_INJECT_PUNCH_EIO, 0, 0));
	assert_ok(ufvm_file_close(r.f));
	ut_close(vm);
	cr_assert(tmpstore_read(path, &got, sizeof(got), PG * PAGE + 64) == 0);
	cr_assert_eq(got, v, "after close the store holds %llu, not the last value %llu",
		     (unsigned long long)got, (unsigned long long)v);
}

static void protected(unsigned int inval)
{
	long syncs, stale, punches;

	sync_vs_punch(inval, 0, RUN_US, false, &syncs, &stale, &punches);
	cr_log_info("%ld syncs beside %ld failing punches, %ld stale", syncs, punches, stale);
	cr_assert_gt(syncs, 100, "only %ld syncs ran", syncs);
	cr_assert_gt(punches, 100, "only %ld punches ran", punches);
	cr_assert_eq(stale, 0, "%ld of %ld syncs returned 0 with the store holding an older "
		     "value", stale, syncs);
}

Test(sync_vs_punch, rwsem, .timeout = 60)
{
	protected(UFVM_INVALIDATE_RWSEM);
}

Test(sync_vs_punch, addblock, .timeout = 60)
{
	protected(UFVM_INVALIDATE_ADDBLOCK);
}

Test(sync_vs_punch, teeth, .timeout = 60)
{
	long syncs, stale, punches;

	sync_vs_punch(UFVM_INVALIDATE_RWSEM, UFVM_DEBUG_SYNC_PAST_PUNCH, TEETH_US, true,
		      &syncs, &stale, &punches);
	cr_assert_gt(stale, 0, "with the old sync, none of %ld syncs beside %ld failing "
		     "punches left the store stale: the test cannot see the bug", syncs, punches);
}
