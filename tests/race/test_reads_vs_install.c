/* SPDX-License-Identifier: MIT */
/*
 * test_reads_vs_install.c - loads never dirty a page, however their faults
 * interleave.
 *
 * Invariant: a page only read stays clean: no mkwrite, nothing for a sync
 * to write back, and no SIGBUS for want of room while write-backs fail.
 * Two threads read the same pages of a writable mapping at once, in the
 * same order, after each zap: both fault on a page, the first fault maps
 * it write-protected (a clean page of a writable region goes in so, for
 * dirty tracking), and the second is served after that.  The userfaultfd
 * backend is told the access type by the kernel; libsigsegv does not tell
 * it, and the sigsegv backend took a fault on a page its shadow counted
 * mapped read-only in a writable region for a write: the second reader's
 * load made the page dirty (a write-back of a file only read), and while
 * the store refused writes and such pages filled the cache it got SIGBUS
 * (found by `ufvm fuzz --peek`).  On x86-64 the fault's context says what
 * the access was.  Teeth: UFVM_DEBUG_GUESS_ACCESS (the sigsegv backend
 * guesses from the shadow, as before) makes pages dirty within the rounds.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>

#include "check.h"
#include "race.h"

#define NPAGES		64
#define SEED		0x5eed0900
#define ROUNDS		400
#define RUN_US		(1000000u)

struct rr {
	struct ufvm *vm;
	uint8_t *m;
	pthread_barrier_t start, end;
	atomic_int stop;
	unsigned long sum;
};

static void *reader(void *arg)
{
	struct rr *t = arg;
	unsigned long sum = 0;
	int pg;

	for (;;) {
		pthread_barrier_wait(&t->start);
		if (atomic_load(&t->stop))
			break;
		for (pg = 0; pg < NPAGES; pg++)
			sum += *(volatile uint8_t *)(t->m + pg * PAGE + 5);
		pthread_barrier_wait(&t->end);
	}
	t->sum += sum;
	return NULL;
}

/*
 * Zap the mapping and let two readers read it, round after round, up to
 * ROUNDS rounds or RUN_US; stop early once a page went dirty if @stop_early.
 * Return: the mkwrites counted (each one a load taken for a write).
 */
static uint64_t run(unsigned int backend, uint64_t debug_flags, bool stop_early)
{
	char path[TMPSTORE_PATH_MAX], page[PAGE];
	struct ufvm_config cfg;
	struct ufvm_file *f;
	pthread_t th[2];
	static struct rr t;
	uint64_t t0, mkw, writes;
	void *addr = NULL;
	int i, pg, rounds = 0;

	ut_store("r", NPAGES * PAGE, SEED, path);
	assert_ok(ufvm_config_init(&cfg));
	if (backend)
		cfg.backend = backend;
	cfg.fault_around = 1;	/* a fault per page: as many collisions as can be */
	cfg.map_ahead = 0;
	cfg.speculative = 0;
	cfg.debug_flags = debug_flags;
	memset(&t, 0, sizeof(t));
	t.vm = ut_open(&cfg);
	assert_ok(ufvm_file_open(t.vm, path, UFVM_RDWR, &f));
	for (pg = 0; pg < NPAGES; pg++)		/* cached and clean */
		ut_pread(f, page, PAGE, pg * PAGE);
	assert_ok(ufvm_map_file(f, 0, NPAGES * PAGE, UFVM_PROT_READ | UFVM_PROT_WRITE,
				UFVM_MAP_SHARED, &addr));
	t.m = addr;
	cr_assert(pthread_barrier_init(&t.start, NULL, 3) == 0);
	cr_assert(pthread_barrier_init(&t.end, NULL, 3) == 0);
	for (i = 0; i < 2; i++)
		cr_assert(pthread_create(&th[i], NULL, reader, &t) == 0);
	t0 = race_now_us();
	do {
		assert_ok(ufvm_zap(t.vm, t.m, NPAGES * PAGE));
		pthread_barrier_wait(&t.start);
		pthread_barrier_wait(&t.end);
		rounds++;
		mkw = ut_counter(t.vm, UFVM_CTR_MKWRITE);
	} while (rounds < ROUNDS && race_now_us() - t0 < RUN_US && !(stop_early && mkw));
	atomic_store(&t.stop, 1);
	pthread_barrier_wait(&t.start);
	for (i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	writes = ut_counter(t.vm, UFVM_CTR_STORE_WRITES);
	assert_ok(ufvm_fsync(f));
	writes = ut_counter(t.vm, UFVM_CTR_STORE_WRITES) - writes;
	cr_log_info("%s, %s: %d rounds, %" PRIu64 " mkwrites, %" PRIu64 " store writes by the sync",
		    ufvm_backend_name(t.vm), debug_flags ? "guessed access" : "known access",
		    rounds, mkw, writes);
	if (!mkw)
		cr_assert_eq(writes, 0, "a sync of a file only read wrote %" PRIu64 " times", writes);
	ut_unmap(t.vm, t.m, NPAGES * PAGE);
	assert_ok(ufvm_file_close(f));
	ut_close(t.vm);
	pthread_barrier_destroy(&t.start);
	pthread_barrier_destroy(&t.end);
	return mkw;
}

Test(reads_vs_install, loads_leave_pages_clean, .timeout = 60)
{
	uint64_t mkw = run(0, 0, false);

	cr_assert_eq(mkw, 0, "loads alone made %" PRIu64 " pages dirty", mkw);
}

Test(reads_vs_install, loads_leave_pages_clean_on_sigsegv, .timeout = 60)
{
	uint64_t mkw = run(UFVM_BACKEND_SIGSEGV, 0, false);

	cr_assert_eq(mkw, 0, "loads alone made %" PRIu64 " pages dirty (sigsegv backend)", mkw);
}

Test(reads_vs_install, teeth_guessed_access_dirties_pages, .timeout = 60)
{
	uint64_t mkw = run(UFVM_BACKEND_SIGSEGV, UFVM_DEBUG_GUESS_ACCESS, true);

	cr_assert_gt(mkw, 0, "guessing the access from the shadow, a load that faulted after "
		     "the other reader's install should have been taken for a write");
}
