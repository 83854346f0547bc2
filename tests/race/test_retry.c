/* SPDX-License-Identifier: MIT */
/*
 * test_retry.c - a fault that waits for I/O does not hold mmap_lock
 * (lock-or-retry, seed 003).
 *
 * Invariant: with retry on, a fault that must wait -- for its own store
 * read, or for a page another thread is reading -- drops mmap_lock first,
 * so a thread that takes mmap_lock for writing meanwhile (the probe:
 * ufvm_map + ufvm_unmap of another file) gets it at once.
 *
 * Every store read takes STALL (store_latency_us); the fill hook tells the
 * test that the read has begun.  With retry on, the probe must finish
 * within STALL / 3 while the faulting thread is still stalled.  Teeth: the
 * same with retry off, where the fault holds mmap_lock while it waits, the
 * probe must take longer than STALL / 3 (it waits for about the rest of
 * the stall), and no fault retries.
 */
#include <pthread.h>
#include <stdatomic.h>

#include "check.h"
#include "race.h"

#define FILE_SIZE	(1 * MiB)
#define SEED		0x5eed0300
#define SEED_PROBE	0x5eed0301
#define STALL_US	300000u
#define BOUND_US	(STALL_US / 3)
#define TARGET_PG	77		/* the page whose read is stalled */
#define WAIT_US		(10 * 1000000u)
#define TOUCH_US	20000u		/* a fault reaches its page lock by then */

struct retry {
	struct ufvm *vm;
	struct ufvm_file *f;
	uint8_t *map;
	atomic_int fill_started;	/* the target page's store read began */
	atomic_int touching;		/* the toucher is about to fault */
	atomic_int touched;		/* the toucher's access returned */
	uint64_t touched_us;
	uint8_t got;
};

static void hook(void *arg, unsigned int point, uint64_t a, uint64_t b)
{
	struct retry *t = arg;

	if (point == UFVM_HOOK_FILL && a <= TARGET_PG * PAGE && TARGET_PG * PAGE < a + b)
		atomic_store(&t->fill_started, 1);
}

/* Fault the target page through the mapping. */
static void *toucher(void *arg)
{
	struct retry *t = arg;

	atomic_store(&t->touching, 1);
	t->got = *(volatile uint8_t *)(t->map + TARGET_PG * PAGE + 5);
	t->touched_us = race_now_us();
	atomic_store(&t->touched, 1);
	return NULL;
}

/* Fill the target page with ufvm_pread. */
static void *reader(void *arg)
{
	struct retry *t = arg;
	uint8_t buf[PAGE];

	if (ufvm_pread(t->f, buf, PAGE, TARGET_PG * PAGE) != PAGE)
		buf[5] = (uint8_t)~pattern_byte(SEED, TARGET_PG * PAGE + 5);
	t->got = buf[5];
	return NULL;
}

/* ufvm_map + ufvm_unmap of another file: takes mmap_lock for writing twice. */
static uint64_t probe(struct retry *t, const char *path)
{
	uint64_t t0 = race_now_us();
	void *addr = ut_map(t->vm, path, 0, 64 * KiB, UFVM_PROT_READ);

	ut_unmap(t->vm, addr, 64 * KiB);
	return race_now_us() - t0;
}

/*
 * @own: the stalled read is the faulting thread's own (major fault); else
 * another thread's ufvm_pread, which the fault waits for on the page lock.
 */
static void run_retry(unsigned int retry, int own)
{
	char path[TMPSTORE_PATH_MAX], ppath[TMPSTORE_PATH_MAX];
	static struct retry t;
	struct ufvm_config cfg;
	pthread_t th, rd;
	uint64_t probe_us, retries;
	int stalled;

	memset(&t, 0, sizeof(t));
	ut_store("a", FILE_SIZE, SEED, path);
	ut_store("b", 64 * KiB, SEED_PROBE, ppath);
	assert_ok(ufvm_config_init(&cfg));
	cfg.retry = retry;
	cfg.store_latency_us = STALL_US;
	t.vm = ut_open(&cfg);
	assert_ok(ufvm_file_open(t.vm, path, UFVM_RDONLY, &t.f));
	t.map = ut_map(t.vm, path, 0, FILE_SIZE, UFVM_PROT_READ);
	assert_ok(ufvm_debug_hook(t.vm, hook, &t));

	if (own) {
		cr_assert(pthread_create(&th, NULL, toucher, &t) == 0);
		cr_assert(race_wait(&t.fill_started, 1, WAIT_US), "the fault never began its read");
	} else {
		cr_assert(pthread_create(&rd, NULL, reader, &t) == 0);
		cr_assert(race_wait(&t.fill_started, 1, WAIT_US), "ufvm_pread never began its read");
		cr_assert(pthread_create(&th, NULL, toucher, &t) == 0);
		/*
		 * Give the fault time to reach the page lock (ufvm_stats()
		 * cannot tell: it waits for faults in progress).
		 */
		cr_assert(race_wait(&t.touching, 1, WAIT_US));
		race_sleep_us(TOUCH_US);
	}
	probe_us = probe(&t, ppath);
	stalled = !atomic_load(&t.touched);
	pthread_join(th, NULL);
	if (!own)
		pthread_join(rd, NULL);
	retries = ut_counter(t.vm, UFVM_CTR_RETRY);
	fprintf(stderr, "retry %s, %s read: probe took %llu us (stall %u us), %llu retries\n",
		retry ? "on" : "off", own ? "own" : "another thread's",
		(unsigned long long)probe_us, STALL_US, (unsigned long long)retries);

	cr_assert_eq(t.got, pattern_byte(SEED, TARGET_PG * PAGE + 5), "wrong byte read");
	if (retry) {
		cr_assert(stalled, "the fault was over before the probe was: the test proves nothing");
		cr_assert_lt(probe_us, BOUND_US,
			     "retry on: mmap_lock was held across the read: the probe took %llu us",
			     (unsigned long long)probe_us);
		cr_assert_gt(retries, 0, "retry on, but no fault retried");
	} else {
		cr_assert_geq(probe_us, BOUND_US,
			      "retry off: the probe took only %llu us: the test cannot see "
			      "mmap_lock held across a read", (unsigned long long)probe_us);
		cr_assert_eq(retries, 0, "retry off, but %llu faults retried",
			     (unsigned long long)retries);
	}
	assert_ok(ufvm_debug_hook(t.vm, NULL, NULL));
	ut_unmap(t.vm, t.map, FILE_SIZE);
	assert_ok(ufvm_file_close(t.f));
	ut_close(t.vm);
}

Test(retry, own_read_drops_mmap_lock, .timeout = 30)
{
	run_retry(1, 1);
}

Test(retry, own_read_teeth_retry_off_holds_mmap_lock, .timeout = 30)
{
	run_retry(0, 1);
}

Test(retry, wait_on_others_read_drops_mmap_lock, .timeout = 30)
{
	run_retry(1, 0);
}

Test(retry, wait_on_others_read_teeth_retry_off_holds_mmap_lock, .timeout = 30)
{
	run_retry(0, 0);
}
