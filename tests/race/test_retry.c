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
 *
 * Invariant: a retried fault whose store read failed delivers SIGBUS only
 * if the address still maps what failed.  The failed fault (its page
 * discarded, mmap_lock not held) is held in the UFVM_HOOK_DISCARDED hook
 * while the range is replaced by a mapping of another file; released, it
 * must not poison the new mapping, whose page then reads its own bytes.
 * The toucher, woken, faults again and reads the new file's byte.  Teeth:
 * UFVM_DEBUG_POISON_STALE (the error delivered to whatever region is at
 * the address now) gives the toucher SIGBUS and, where the pager poisons
 * (not in-thread delivery), leaves the new mapping's page failing.
 *
 * Invariant: the second attempt of a retried fault is final.  A failed
 * read that finds the regions changed runs once more holding mmap_lock,
 * so with maps changing all the time a page whose reads fail gets SIGBUS
 * after two reads (run_churn()).  Teeth: UFVM_DEBUG_FAILED_READ_WAKE
 * (wake the thread to fault again) reads it hundreds of times a second.
 */
#include <pthread.h>
#include <stdatomic.h>

#include "check.h"
#include "race.h"
#include "sigbus.h"

#define FILE_SIZE	(1 * MiB)
#define SEED		0x5eed0300
#define SEED_PROBE	0x5eed0301
#define SEED_NEW	0x5eed0302
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

/* ---- a failed read's SIGBUS and a mapping replaced meanwhile ---- */

static struct stale {
	uint8_t *map;
	atomic_int armed;	/* the hook holds the next failed target fault */
	atomic_int held;	/* ... and holds it now */
	atomic_int release;
	int sig;		/* the toucher's access: 0 or the signal */
	uint8_t got;
} st;

static void stale_hook(void *arg, unsigned int point, uint64_t a, uint64_t b)
{
	(void)arg;
	(void)b;
	if (point != UFVM_HOOK_DISCARDED || a != TARGET_PG * PAGE || !atomic_exchange(&st.armed, 0))
		return;
	atomic_store(&st.held, 1);
	race_wait(&st.release, 1, WAIT_US);
}

static void *stale_toucher(void *arg)
{
	struct sigbus_info info;

	(void)arg;
	st.sig = sigbus_read(st.map + TARGET_PG * PAGE + 5, &st.got, &info) ? SIGBUS : 0;
	return NULL;
}

static void run_stale(bool teeth)
{
	char path[TMPSTORE_PATH_MAX], npath[TMPSTORE_PATH_MAX];
	struct sigbus_info info;
	struct ufvm_config cfg;
	struct ufvm_file *f;
	struct ufvm *vm;
	void *addr;
	pthread_t th;
	uint8_t v;
	int r;

	memset(&st, 0, sizeof(st));
	sigbus_install();
	ut_store("a", FILE_SIZE, SEED, path);
	ut_store("n", FILE_SIZE, SEED_NEW, npath);
	assert_ok(ufvm_config_init(&cfg));
	cfg.retry = 1;
	cfg.debug_flags = teeth ? UFVM_DEBUG_POISON_STALE : 0;
	vm = ut_open(&cfg);
	assert_ok(ufvm_file_open(vm, path, UFVM_RDONLY, &f));
	assert_ok(ufvm_inject(f, UFVM_INJECT_READ_EIO, 0, FILE_SIZE));
	assert_ok(ufvm_map_file(f, 0, FILE_SIZE, UFVM_PROT_READ, 0, &addr));
	st.map = addr;
	assert_ok(ufvm_debug_hook(vm, stale_hook, NULL));
	atomic_store(&st.armed, 1);
	cr_assert(pthread_create(&th, NULL, stale_toucher, NULL) == 0);
	cr_assert(race_wait(&st.held, 1, WAIT_US), "the failed fault never reached the hook");
	/* The failed fault holds no lock: the range goes to another file. */
	assert_ok(ufvm_map(vm, npath, 0, FILE_SIZE, UFVM_PROT_READ,
			   UFVM_MAP_FIXED | UFVM_MAP_REPLACE, &addr));
	cr_assert_eq(addr, (void *)st.map);
	cr_assert(!atomic_load(&st.release), "the replace waited for the held fault");
	atomic_store(&st.release, 1);
	cr_assert_eq(race_join(th, WAIT_US), 0, "the toucher did not come back");
	assert_ok(ufvm_debug_hook(vm, NULL, NULL));
	r = sigbus_read(st.map + TARGET_PG * PAGE + 5, &v, &info);
	fprintf(stderr, "%s: the toucher got %s; the new mapping's page: %s\n",
		teeth ? "POISON_STALE" : "default", st.sig ? "SIGBUS" : "its byte",
		r ? "SIGBUS" : "its byte");
	if (teeth) {
		/* (In-thread delivery poisons nothing: the toucher's SIGBUS.) */
		cr_assert(r || st.sig, "POISON_STALE: no SIGBUS at all: the test cannot see "
			  "an error delivered to the new mapping");
	} else {
		cr_assert(!r, "the new mapping's page fails with SIGBUS: the error of the "
			  "file mapped before was delivered to it");
		cr_assert_eq(v, pattern_byte(SEED_NEW, TARGET_PG * PAGE + 5), "wrong byte");
		cr_assert(!st.sig, "the toucher, woken after the replace, got SIGBUS: the error "
			  "of the file mapped before");
		cr_assert_eq(st.got, pattern_byte(SEED_NEW, TARGET_PG * PAGE + 5),
			     "the toucher read a byte of neither file");
	}
	ut_unmap(vm, st.map, FILE_SIZE);
	assert_ok(ufvm_file_close(f));
	ut_close(vm);
}

Test(retry, failed_read_poisons_only_what_failed, .timeout = 30)
{
	run_stale(false);
}

Test(retry, failed_read_teeth_poison_stale, .timeout = 30)
{
	run_stale(true);
}

/* ---- a failed read while maps change: the second attempt is final ---- */

#define CHURN_STALL_US	2000u		/* each store read */
#define CHURN_US	1000000u	/* the teeth: maps change this long */
#define CHANGE_WAIT_US	200000u		/* a read waits this long for a change (one
					   map and unmap; under a parallel ctest
					   20 ms was once too short) */

static struct churn {
	uint8_t *map;
	struct ufvm *vm;
	char path[TMPSTORE_PATH_MAX];	/* another file, mapped and unmapped */
	atomic_int attempts;		/* store reads of the target page */
	atomic_int changes;		/* the churner's map + unmap pairs */
	atomic_int stop, done;
	int sig;
} ch;

static void churn_hook(void *arg, unsigned int point, uint64_t a, uint64_t b)
{
	(void)arg;
	if (point == UFVM_HOOK_FILL && a <= TARGET_PG * PAGE && TARGET_PG * PAGE < a + b) {
		int c = atomic_load(&ch.changes);

		atomic_fetch_add(&ch.attempts, 1);
		/* The maps change during every read (unless it holds mmap_lock). */
		race_wait(&ch.changes, c + 1, CHANGE_WAIT_US);
	}
}

static void *churner(void *arg)
{
	void *addr;

	(void)arg;
	while (!atomic_load(&ch.stop)) {
		if (ufvm_map(ch.vm, ch.path, 0, PAGE, UFVM_PROT_READ, 0, &addr) == 0)
			ufvm_unmap(ch.vm, addr, PAGE);
		atomic_fetch_add(&ch.changes, 1);
	}
	return NULL;
}

static void *churn_toucher(void *arg)
{
	struct sigbus_info info;
	uint8_t v;

	(void)arg;
	ch.sig = sigbus_read(ch.map + TARGET_PG * PAGE + 5, &v, &info) ? SIGBUS : 0;
	atomic_store(&ch.done, 1);
	return NULL;
}

/*
 * A page whose store reads all fail, touched while another thread maps and
 * unmaps a file all the time: every read drops mmap_lock (retry), and the
 * regions have always changed when it comes back (the fill hook waits, up
 * to CHANGE_WAIT_US, for one more map and unmap).  The second attempt
 * holds mmap_lock across its read, so its failure is final: SIGBUS after
 * two reads.  Teeth: UFVM_DEBUG_FAILED_READ_WAKE (wake the thread to fault
 * again) reads the page again and again for as long as the maps change.
 */
static void run_churn(bool teeth)
{
	char path[TMPSTORE_PATH_MAX];
	struct ufvm_config cfg;
	struct ufvm_file *f;
	pthread_t ct, tt;
	void *addr;
	int n;

	memset(&ch, 0, sizeof(ch));
	sigbus_install();
	ut_store("a", FILE_SIZE, SEED, path);
	ut_store("o", PAGE, SEED_PROBE, ch.path);
	assert_ok(ufvm_config_init(&cfg));
	cfg.retry = 1;
	cfg.readahead = 0;
	cfg.fault_around = 1;
	cfg.store_latency_us = CHURN_STALL_US;
	cfg.debug_flags = teeth ? UFVM_DEBUG_FAILED_READ_WAKE : 0;
	ch.vm = ut_open(&cfg);
	assert_ok(ufvm_file_open(ch.vm, path, UFVM_RDONLY, &f));
	assert_ok(ufvm_inject(f, UFVM_INJECT_READ_EIO, 0, FILE_SIZE));
	assert_ok(ufvm_map_file(f, 0, FILE_SIZE, UFVM_PROT_READ, 0, &addr));
	ch.map = addr;
	assert_ok(ufvm_debug_hook(ch.vm, churn_hook, NULL));
	cr_assert(pthread_create(&ct, NULL, churner, NULL) == 0);
	cr_assert(pthread_create(&tt, NULL, churn_toucher, NULL) == 0);
	race_wait(&ch.done, 1, CHURN_US);
	atomic_store(&ch.stop, 1);
	pthread_join(ct, NULL);
	cr_assert_eq(race_join(tt, WAIT_US), 0, "the toucher did not come back");
	n = atomic_load(&ch.attempts);
	fprintf(stderr, "%s: %d store reads of the page, then %s\n",
		teeth ? "FAILED_READ_WAKE" : "default", n, ch.sig ? "SIGBUS" : "its byte");
	cr_assert_eq(ch.sig, SIGBUS, "a page whose reads all fail was read");
	if (teeth)
		cr_assert_gt(n, 10, "FAILED_READ_WAKE: only %d reads while maps changed for %u ms: "
			     "the test cannot see the fault going round", n, CHURN_US / 1000);
	else
		cr_assert_leq(n, 2, "%d store reads for one fault: a failing read went round while "
			      "maps changed", n);
	assert_ok(ufvm_debug_hook(ch.vm, NULL, NULL));
	ut_unmap(ch.vm, ch.map, FILE_SIZE);
	assert_ok(ufvm_file_close(f));
	ut_close(ch.vm);
}

Test(retry, failed_read_while_maps_change_is_final, .timeout = 30)
{
	run_churn(false);
}

Test(retry, failed_read_while_maps_change_teeth_wake, .timeout = 30)
{
	run_churn(true);
}
