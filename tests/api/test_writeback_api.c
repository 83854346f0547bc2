// SPDX-License-Identifier: MIT
/*
 * test_writeback_api.c - ufvm_writeback() puts dirty pages in the store
 * file without a sync, and ufvm_backend_name() names the delivery in use.
 *
 * waits_for_the_flusher (and ..._and_reports_its_error): the background
 * flusher cleans its pages before it writes them; while its write is held
 * (UFVM_HOOK_WRITEBACK in the background thread), ufvm_writeback()
 * and ufvm_unmap() must not return: when they do, the bytes are in the
 * store, or the write's error is their result.
 */
#define _GNU_SOURCE	/* pthread_getname_np */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "check.h"
#include "race.h"

#define SEED	0x7761

Test(writeback_api, dirty_pages_reach_the_file, .timeout = 20)
{
	char path[TMPSTORE_PATH_MAX];
	struct ufvm_file *f;
	struct ufvm *vm;
	uint8_t *map, buf[PAGE];
	const char *be;

	ut_store("wb", 16 * PAGE, SEED, path);
	vm = ut_open(NULL);
	be = ufvm_backend_name(vm);
	cr_assert(be && (!strcmp(be, "uffd") || !strcmp(be, "uffd-inthread") ||
			 !strcmp(be, "sigsegv")), "backend name '%s'", be ? be : "(null)");
	assert_ok(ufvm_file_open(vm, path, UFVM_RDWR, &f));
	map = ut_map(vm, path, 0, 16 * PAGE, UFVM_PROT_READ | UFVM_PROT_WRITE);
	memset(map + 3 * PAGE, 0x3c, PAGE);
	assert_ok(ufvm_writeback(f));
	cr_assert(tmpstore_read(path, buf, PAGE, 3 * PAGE) == 0);
	cr_assert(buf[0] == 0x3c && buf[PAGE - 1] == 0x3c, "ufvm_writeback left the page out");
	cr_assert_eq(ut_counter(vm, UFVM_CTR_STORE_WRITE_PAGES), 1);
	ut_unmap(vm, map, 16 * PAGE);
	assert_ok(ufvm_file_close(f));
	ut_close(vm);
}

struct held {
	pthread_t main;
	atomic_int armed, holding, release;
};

/*
 * Hold the first write-back of the background thread ("ufvm-bg": not a
 * fault handler's direct reclaim, which would hold the test's own write)
 * until the test releases it.
 */
static void hold_hook(void *arg, unsigned int point, uint64_t a, uint64_t b)
{
	struct held *h = arg;
	char name[16] = "";

	(void)a;
	(void)b;
	if (point != UFVM_HOOK_WRITEBACK || pthread_equal(pthread_self(), h->main) ||
	    pthread_getname_np(pthread_self(), name, sizeof(name)) || strcmp(name, "ufvm-bg") ||
	    !atomic_exchange(&h->armed, 0))
		return;
	atomic_store(&h->holding, 1);
	race_wait(&h->release, 1, 10 * 1000000);
}

struct call {
	struct ufvm *vm;
	struct ufvm_file *f;
	void *map;
	int ret;
	atomic_int done;
};

static void *writeback_main(void *arg)
{
	struct call *c = arg;

	c->ret = c->map ? ufvm_unmap(c->vm, c->map, 4 * PAGE) : ufvm_writeback(c->f);
	atomic_store(&c->done, 1);
	return NULL;
}

/*
 * Three pages dirtied through @how (0: ufvm_pwrite and ufvm_writeback; 1: a
 * mapping and ufvm_unmap, a second handle keeping the file open); the
 * flusher writes them once they are 100 ms old (a budget's dirty limit
 * would start it at once, but also hold the writer until it is done); with
 * @fail, every store write fails.
 */
static void waits_for_flusher(int how, bool fail)
{
	char path[TMPSTORE_PATH_MAX];
	struct held h = { .main = pthread_self() };
	struct call c = { 0 };
	struct ufvm_config cfg;
	uint8_t buf[PAGE], *map = NULL;
	pthread_t th;
	unsigned int i;

	ut_store("wbw", 8 * PAGE, SEED, path);
	assert_ok(ufvm_config_init(&cfg));
	cfg.dirty_expire_ms = 100;
	c.vm = ut_open(&cfg);
	assert_ok(ufvm_file_open(c.vm, path, UFVM_RDWR, &c.f));
	assert_ok(ufvm_debug_hook(c.vm, hold_hook, &h));
	if (fail)
		assert_ok(ufvm_inject(c.f, UFVM_INJECT_WRITE_EIO, 0, 8 * PAGE));
	memset(buf, 0x5a, sizeof(buf));
	atomic_store(&h.armed, 1);
	if (how) {
		map = ut_map(c.vm, path, 0, 4 * PAGE, UFVM_PROT_READ | UFVM_PROT_WRITE);
		for (i = 0; i < 3; i++)
			memset(map + i * PAGE, 0x5a, PAGE);
		c.map = map;
	} else {
		for (i = 0; i < 3; i++)
			cr_assert_eq(ufvm_pwrite(c.f, buf, PAGE, (off_t)i * PAGE), PAGE);
	}
	cr_assert(race_wait(&h.holding, 1, 10 * 1000000), "the flusher wrote nothing");
	cr_assert_eq(pthread_create(&th, NULL, writeback_main, &c), 0);
	race_sleep_us(200000);
	cr_assert(!atomic_load(&c.done), "%s returned (%d) while the flusher's write was held",
		  how ? "ufvm_unmap" : "ufvm_writeback", c.ret);
	atomic_store(&h.release, 1);
	cr_assert_eq(race_join(th, 10 * 1000000), 0);
	if (fail) {
		cr_assert_eq(c.ret, -EIO, "the held write failed, the call returned %d", c.ret);
		assert_ok(ufvm_inject(c.f, UFVM_INJECT_WRITE_EIO, 0, 0));
	} else {
		assert_ok(c.ret);
		for (i = 0; i < 3; i++) {
			cr_assert(tmpstore_read(path, buf, PAGE, (off_t)i * PAGE) == 0);
			cr_assert(buf[0] == 0x5a && buf[PAGE - 1] == 0x5a,
				  "page %u is not in the store", i);
		}
	}
	assert_ok(ufvm_debug_hook(c.vm, NULL, NULL));
	ufvm_fsync(c.f);	/* (reports the failure again, or nothing) */
	assert_ok(ufvm_fsync(c.f));
	assert_ok(ufvm_file_close(c.f));
	ut_close(c.vm);
}

Test(writeback_api, writeback_waits_for_the_flusher, .timeout = 30)
{
	waits_for_flusher(0, false);
}

Test(writeback_api, writeback_waits_for_the_flusher_and_reports_its_error, .timeout = 30)
{
	waits_for_flusher(0, true);
}

Test(writeback_api, unmap_waits_for_the_flusher_and_reports_its_error, .timeout = 30)
{
	waits_for_flusher(1, true);
}
