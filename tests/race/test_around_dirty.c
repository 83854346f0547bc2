/* SPDX-License-Identifier: MIT */
/*
 * test_around_dirty.c - fault-around never maps a clean page writable.
 *
 * Invariant: a store to a mapped page either finds the page dirty in
 * ufvm's cache already or takes a write-protect fault that dirties it, so
 * that write-back (here ufvm_sync) writes it.  Fault-around maps a window
 * in runs, dirty pages writable and clean ones write-protected; it holds
 * the region's ptl but no page lock, so another thread may dirty a page of
 * the window meanwhile (here ufvm_pwrite of the window's first page).
 *
 * UFVM_HOOK_AROUND_RUNS holds the grouping halfway through a window of
 * clean pages while that pwrite runs; then the program stores into every
 * page of the window, syncs, and reads the file back.  Every store must be
 * there.  Teeth: UFVM_DEBUG_AROUND_REREAD reads the run's first page's bit
 * again at each page, finds it dirty, and maps the clean pages before it
 * writable: their stores never reach the file.
 */
#include <pthread.h>
#include <stdatomic.h>

#include "check.h"
#include "race.h"

#define NPAGES	64
#define SEED	0x5eed0800
#define TRIG	32		/* the page where the grouping waits */
#define WAIT_US	(5 * 1000000u)

struct ad {
	struct ufvm_file *f;
	atomic_int armed, go, done;
};

static void hook(void *arg, unsigned int point, uint64_t a, uint64_t b)
{
	struct ad *t = arg;

	(void)b;
	if (point != UFVM_HOOK_AROUND_RUNS || a != TRIG || !atomic_exchange(&t->armed, 0))
		return;
	atomic_store(&t->go, 1);
	race_wait(&t->done, 1, WAIT_US);	/* page 0 is dirty now */
}

static void *writer(void *arg)
{
	struct ad *t = arg;

	race_wait(&t->go, 1, WAIT_US);
	if (ufvm_pwrite(t->f, "D", 1, 0) != 1)
		abort();
	atomic_store(&t->done, 1);
	return NULL;
}

/* Return: how many of the window's stores the file lacks after a sync. */
static int run(unsigned int debug_flags)
{
	char path[TMPSTORE_PATH_MAX], page[PAGE];
	static struct ad t;
	struct ufvm_config cfg;
	struct ufvm *vm;
	pthread_t th;
	void *addr = NULL;
	uint8_t *m, b;
	int pg, lost = 0;

	ut_store("d", NPAGES * PAGE, SEED, path);
	assert_ok(ufvm_config_init(&cfg));
	cfg.fault_around = NPAGES;
	cfg.map_ahead = 0;
	cfg.debug_flags = debug_flags;
	vm = ut_open(&cfg);
	memset(&t, 0, sizeof(t));
	assert_ok(ufvm_file_open(vm, path, UFVM_RDWR, &t.f));
	for (pg = 0; pg < NPAGES; pg++)		/* cached and clean */
		ut_pread(t.f, page, PAGE, pg * PAGE);
	assert_ok(ufvm_map_file(t.f, 0, NPAGES * PAGE, UFVM_PROT_READ | UFVM_PROT_WRITE,
				UFVM_MAP_SHARED, &addr));
	m = addr;
	assert_ok(ufvm_debug_hook(vm, hook, &t));
	cr_assert(pthread_create(&th, NULL, writer, &t) == 0);
	atomic_store(&t.armed, 1);
	b = *(volatile uint8_t *)(m + PAGE + 1);	/* maps the window */
	(void)b;
	pthread_join(th, NULL);
	assert_ok(ufvm_debug_hook(vm, NULL, NULL));
	cr_assert(atomic_load(&t.done), "the grouping never reached page %d", TRIG);
	for (pg = 1; pg < NPAGES; pg++)
		m[pg * PAGE + 7] = 'S';
	assert_ok(ufvm_sync(vm, m, NPAGES * PAGE));
	for (pg = 1; pg < NPAGES; pg++) {
		assert_ok(tmpstore_read(path, page, 8, pg * PAGE));
		lost += page[7] != 'S';
	}
	assert_ok(tmpstore_read(path, page, 1, 0));
	cr_assert_eq(page[0], 'D', "the pwrite to page 0 is not in the file");
	ut_unmap(vm, m, NPAGES * PAGE);
	assert_ok(ufvm_file_close(t.f));
	ut_close(vm);
	return lost;
}

Test(around_dirty, clean_neighbours_stay_write_protected, .timeout = 30)
{
	int lost = run(0);

	cr_assert_eq(lost, 0, "%d stores into clean pages mapped by fault-around are not in "
		     "the file after ufvm_sync", lost);
}

Test(around_dirty, teeth_reread_maps_clean_pages_writable, .timeout = 30)
{
	int lost = run(UFVM_DEBUG_AROUND_REREAD);

	cr_assert_gt(lost, 0, "rereading the run's first page, the clean pages should have "
		     "gone in writable and their stores be lost");
}
