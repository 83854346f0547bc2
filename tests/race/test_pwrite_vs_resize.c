/* SPDX-License-Identifier: MIT */
/*
 * test_pwrite_vs_resize.c - ufvm_pwrite() beside truncates, and a failed
 * extending ufvm_pwrite() beside a mapping's stores (vm/object.c,
 * vm_object_pwrite() and unextend()).
 *
 * Race 1: a pwrite starts over when a truncate cut the range it wrote
 * meanwhile.  A truncate whose store truncate fails cuts nothing (the old
 * size comes back, every page stays): two threads truncate an 8-page file
 * to 4 pages + 1000 bytes back to back, the store's ftruncate() to that size
 * (interposed here) failing after 1 ms, and a third pwrites 8 bytes into
 * pages 0-3, below either size, 100 times: all 100 complete.  Teeth:
 * UFVM_DEBUG_FAILED_SHRINK_CUTS counts each failed truncate as a cut of
 * the whole file, and the pwrites start over for as long as they go on.
 *
 * Race 2: a pwrite that extended the file and then failed takes its
 * extension back, unless something used it.  Writer A's pwrite extends the
 * file; its read of a page is held (UFVM_HOOK_FILL) and then fails
 * (UFVM_INJECT_READ_EIO); meanwhile the main thread stores a byte into the
 * extension through a mapping and syncs it: (a) a page past the old end,
 * then evicted under a budget of 8 pages (no longer cached); (b) the old
 * last page past the old, unaligned end (cached).  The synced byte must
 * stay in the file.  Teeth: UFVM_DEBUG_UNEXTEND_GUESS judges by the
 * cached pages alone, and the cut takes the byte.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "race.h"

#define SEED	0x51e
#define CUT	((off_t)4 * PAGE + 1000)	/* race 1's truncates, which fail */
#define WAIT_US	(5 * 1000000u)

/* ---- race 1 ---- */

static atomic_int truncating;

/* The store's ftruncate() to CUT: slow, then failing.  Others pass. */
int ftruncate(int fd, off_t len)
{
	static int (*real)(int, off_t);

	if (!real)
		real = (int (*)(int, off_t))dlsym(RTLD_NEXT, "ftruncate");
	if (len == CUT) {
		atomic_store(&truncating, 1);
		race_sleep_us(1000);
		errno = EIO;
		return -1;
	}
	return real(fd, len);
}

static struct {
	struct ufvm_file *f;
	atomic_int stop, bad;
} t;

static void *truncater(void *arg)
{
	(void)arg;
	while (!atomic_load(&t.stop))
		if (ufvm_truncate(t.f, CUT) != -EIO)
			atomic_store(&t.bad, 1);
	return NULL;
}

/* Race 1 for up to @us with @debug.  Return: pwrites completed. */
static int pwrites_beside_failing_truncates(uint64_t debug, uint64_t us)
{
	char path[TMPSTORE_PATH_MAX];
	struct ufvm_config cfg;
	struct ufvm *vm;
	int done;

	ut_store("tr", 8 * PAGE, SEED, path);
	assert_ok(ufvm_config_init(&cfg));
	cfg.invalidate = UFVM_INVALIDATE_RWSEM;	/* add/block's turns let a pwrite through */
	cfg.debug_flags |= debug;
	vm = ut_open(&cfg);
	assert_ok(ufvm_file_open(vm, path, UFVM_RDWR, &t.f));
	atomic_store(&t.bad, 0);
	atomic_store(&truncating, 0);
	done = ut_pwrites_beside(t.f, 4, truncater, &t.stop, &truncating, us);
	cr_assert_eq(atomic_load(&t.bad), 0, "a truncate did not fail");
	assert_ok(ufvm_file_close(t.f));
	ut_close(vm);
	return done;
}

Test(pwrite_vs_resize, pwrites_beside_failing_truncates_complete, .timeout = 30)
{
	int done = pwrites_beside_failing_truncates(0, 10000000);

	cr_assert_eq(done, 100, "%d of 100 pwrites beside failing truncates completed in 10 s",
		     done);
}

Test(pwrite_vs_resize, teeth_failed_truncates_cut_and_pwrites_start_over, .timeout = 30)
{
	ut_assert_pwrites_kept_back(pwrites_beside_failing_truncates,
				    UFVM_DEBUG_FAILED_SHRINK_CUTS);
}

/* ---- race 2 ---- */

static struct {
	struct ufvm_file *f;
	uint64_t hold;			/* the fill held: its byte offset */
	atomic_int armed, held, release, evicted;
	off_t wr_off;			/* A's pwrite */
	size_t wr_len;
	ssize_t ret;
} u;

static void hook(void *arg, unsigned int point, uint64_t a, uint64_t b)
{
	(void)arg, (void)b;
	if (point == UFVM_HOOK_FILL && a == u.hold && atomic_exchange(&u.armed, 0)) {
		atomic_store(&u.held, 1);
		race_wait(&u.release, 1, WAIT_US);
	} else if (point == UFVM_HOOK_EVICT && a == 5) {
		atomic_store(&u.evicted, 1);
	}
}

static void *writer_a(void *arg)
{
	static char buf[2 * PAGE];

	(void)arg;
	memset(buf, 'A', sizeof(buf));
	u.ret = ufvm_pwrite(u.f, buf, u.wr_len, u.wr_off);
	return NULL;
}

/*
 * Race 2 with @debug: a file of @size bytes; A pwrites [@wr_off, +@wr_len),
 * its fill of the page at @hold held and then failed; meanwhile a store of
 * 'B' at @at through a mapping, synced, and with @evict, page 5 evicted.
 * Return: whether the byte is in the file afterwards.
 */
static bool synced_store_kept(uint64_t debug, off_t size, off_t wr_off, size_t wr_len,
			      uint64_t hold, off_t at, bool evict)
{
	char path[TMPSTORE_PATH_MAX], other[TMPSTORE_PATH_MAX], got = 0, b;
	struct ufvm_config cfg;
	struct ufvm_file *f2;
	struct ufvm *vm;
	pthread_t th;
	uint8_t *m;
	void *addr;

	ut_store("ue", size, SEED, path);
	ut_store("ev", 200 * PAGE, SEED + 1, other);
	ut_config_budget(&cfg, evict ? 8 : 0);
	cfg.readahead = 0;
	cfg.fault_around = 1;
	cfg.dirty_expire_ms = 3600000;
	cfg.debug_flags |= debug;
	vm = ut_open(&cfg);
	memset(&u, 0, sizeof(u));
	u.hold = hold;
	u.wr_off = wr_off;
	u.wr_len = wr_len;
	assert_ok(ufvm_file_open(vm, path, UFVM_RDWR, &u.f));
	assert_ok(ufvm_file_open(vm, other, UFVM_RDONLY, &f2));
	assert_ok(ufvm_map_file(u.f, 0, 8 * PAGE, UFVM_PROT_READ | UFVM_PROT_WRITE,
				UFVM_MAP_SHARED, &addr));
	m = addr;
	assert_ok(ufvm_debug_hook(vm, hook, NULL));
	atomic_store(&u.armed, 1);
	cr_assert(pthread_create(&th, NULL, writer_a, NULL) == 0);
	cr_assert(race_wait(&u.held, 1, WAIT_US), "A's fill never came");
	m[at] = 'B';					/* inside the extended file */
	assert_ok(ufvm_sync(vm, m + at / PAGE * PAGE, PAGE));
	assert_ok(tmpstore_read(path, &got, 1, at));
	cr_assert_eq(got, 'B', "the sync did not write the store");
	for (int round = 0; evict && round < 50 && !atomic_load(&u.evicted); round++)
		for (int pg = 100; pg < 200; pg++)
			ut_pread(f2, &b, 1, (off_t)pg * PAGE);
	cr_assert(!evict || atomic_load(&u.evicted), "page 5 was never evicted");
	assert_ok(ufvm_inject(u.f, UFVM_INJECT_READ_EIO, hold, PAGE));
	atomic_store(&u.release, 1);
	cr_assert(race_join(th, WAIT_US) == 0, "A's pwrite did not return");
	cr_assert_eq(u.ret, -EIO, "A's pwrite returned %zd", u.ret);
	assert_ok(ufvm_debug_hook(vm, NULL, NULL));
	assert_ok(ufvm_inject(u.f, UFVM_INJECT_READ_EIO, 0, 0));
	ut_unmap(vm, m, 8 * PAGE);
	assert_ok(ufvm_file_close(f2));
	assert_ok(ufvm_file_close(u.f));
	ut_close(vm);
	got = 0;
	(void)tmpstore_read(path, &got, 1, at);
	return got == 'B';
}

/* (a): a 4-page file extended to 6 pages; the store at 5P+8, evicted. */
static bool evicted_page(uint64_t debug)
{
	return synced_store_kept(debug, 4 * PAGE, 4 * PAGE + 100, 2 * PAGE - 100, 4 * PAGE,
				 5 * PAGE + 8, true);
}

/* (b): a file of 4P+100 extended to 5P+200; the store at 4P+200, cached. */
static bool old_last_page(uint64_t debug)
{
	return synced_store_kept(debug, 4 * PAGE + 100, 5 * PAGE + 100, 100, 5 * PAGE,
				 4 * PAGE + 200, false);
}

Test(pwrite_vs_resize, failed_extension_keeps_a_synced_store_evicted_since, .timeout = 60)
{
	cr_assert(evicted_page(0), "the store at 5P+8, synced and evicted, is gone: the failed "
		  "pwrite took its extension back");
}

Test(pwrite_vs_resize, failed_extension_keeps_a_synced_store_in_the_old_last_page,
     .timeout = 60)
{
	cr_assert(old_last_page(0), "the store at 4P+200, synced, is gone: the failed pwrite "
		  "took its extension back");
}

Test(pwrite_vs_resize, teeth_unextend_guess_loses_the_evicted_store, .timeout = 60)
{
	cr_assert(!evicted_page(UFVM_DEBUG_UNEXTEND_GUESS),
		  "judged by the cached pages, the extension should have gone, the store too");
}

Test(pwrite_vs_resize, teeth_unextend_guess_loses_the_old_last_page_s_store, .timeout = 60)
{
	cr_assert(!old_last_page(UFVM_DEBUG_UNEXTEND_GUESS),
		  "judged by the cached pages, the extension should have gone, the store too");
}
