/* SPDX-License-Identifier: MIT */
/*
 * test_spec_vs_unmap.c - speculative faults racing with ufvm_unmap() of
 * their own region never touch freed memory and never map into the region
 * once it is gone (speculative fault under RCU, seed 002).
 *
 * Invariants: a speculative fault finds its region and page under RCU with
 * no lock, so both must stay valid memory until it leaves its RCU section
 * (AddressSanitizer checks this in the ASan tree); and it takes the
 * region's ptl and checks the region is not dead before it installs, so an
 * unmapped region never gets a page (ufvm's counter of installs the kernel
 * refused, UFVM_CTR_INSTALL_ERRORS, stays 0: an install into an unmapped
 * range is refused).
 *
 * stress: threads fault cached pages of a region that the main thread maps
 * and unmaps in a loop; each fault that outlives the region is answered,
 * and the thread's next touch gets SIGSEGV, which it catches.  Every read
 * made while the region stayed mapped must return the file's bytes, and a
 * thread whose fault lost its region must not be left asleep in the kernel
 * (it is back within JOIN_US, or the test names where it sleeps).  Such a
 * fault served nothing, so no latency histogram counts it.
 *
 * dead_region: with UFVM_HOOK_SPEC_FOUND (a speculative fault found its
 * region and page, holds no lock yet) the fault waits until ufvm_unmap()
 * has returned, then goes on: it must see the region dead and fall back.
 * Teeth: with UFVM_DEBUG_NO_DEAD_CHECK it must install into the unmapped
 * range instead, which the kernel refuses and the counter shows.
 *
 * major_fault_outlives_its_file (and failed_...: its read fails): a major
 * fault that dropped mmap_lock for its read is done with the file's object
 * before it unlocks or discards its pages, the object's last pins (below).
 *
 * Only with the userfaultfd backend: with the sigsegv backend a touch of a
 * region that is gone is a SIGSEGV that ufvm's handler declines, and the
 * process dies of it, so the race cannot be run there.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "race.h"

#define FILE_SIZE	(1 * MiB)
#define SEED		0x5eed0600
#define NTOUCHERS	2
#define STRESS_US	(1 * 1000000u)
#define STRESS_MAPS	300		/* map/unmap cycles at least */
#define STRESS_MAX_US	(10 * 1000000u)	/* ... and until a touch outlived its region */
#define ROUNDS		5
#define WAIT_US		(2 * 1000000u)
#define TARGET_PG	40		/* the page the dead_region fault wants */
#define JOIN_US		(5 * 1000000u)	/* a touching thread is back by then */

/* Open ufvm with the userfaultfd backend, or skip. */
static struct ufvm *open_uffd(struct ufvm_config *cfg)
{
	if (cfg->backend == UFVM_BACKEND_SIGSEGV)
		cr_skip_test("UFVM_BACKEND=sigsegv: a touch of an unmapped region kills the "
			     "process there; this race needs the userfaultfd backend");
	cfg->backend = UFVM_BACKEND_UFFD;
	return ut_open(cfg);
}

/*
 * Join a thread that touched a region being unmapped.  One that is not back
 * within JOIN_US sleeps on a fault that nobody will ever answer.
 */
static void assert_back(pthread_t th, pid_t tid, const char *who)
{
	char wchan[64];

	if (race_join(th, JOIN_US) == 0)
		return;
	race_wchan(tid, wchan, sizeof(wchan));
	cr_assert_fail("%s (tid %d) is not back %u s after its region was unmapped; it "
		       "sleeps in %s: a fault on a region unmapped under it was never woken",
		       who, (int)tid, JOIN_US / 1000000u, wchan);
}

/* ---- stress ---- */

struct stress {
	struct ufvm_file *f;
	pid_t tid[NTOUCHERS];
	_Atomic(uint8_t *) cur;		/* the mapped region, or NULL */
	atomic_ulong seq;		/* odd while the region is going */
	atomic_int stop;
	atomic_long reads, segvs, errors;
	char msg[256];
};

struct toucher_arg {
	struct stress *s;
	int id;
};

static void *toucher(void *arg)
{
	struct toucher_arg *ta = arg;
	struct stress *s = ta->s;
	struct rng r = { .s = 17 + ta->id };

	s->tid[ta->id] = sigbus_gettid();
	while (!atomic_load(&s->stop)) {
		unsigned long s1 = atomic_load(&s->seq);
		uint8_t *m = atomic_load(&s->cur);
		uint64_t off = rng_below(&r, FILE_SIZE);
		struct sigbus_info si;
		uint8_t v;
		int sig;

		if ((s1 & 1) || !m)
			continue;
		sig = sigcatch_read(m + off, &v, &si);
		if (atomic_load(&s->seq) != s1) {
			/* The region went while we touched it: anything goes but a crash. */
			if (sig == SIGSEGV)
				atomic_fetch_add(&s->segvs, 1);
			continue;
		}
		atomic_fetch_add(&s->reads, 1);
		if (sig || v != pattern_byte(SEED, off)) {
			if (!atomic_fetch_add(&s->errors, 1))
				snprintf(s->msg, sizeof(s->msg),
					 "offset %#llx of a live region: %s %#x, want %#x",
					 (unsigned long long)off, sig ? "signal" : "read",
					 sig ? sig : v, pattern_byte(SEED, off));
		}
	}
	return NULL;
}

Test(spec_vs_unmap, stress, .timeout = 40)
{
	char path[TMPSTORE_PATH_MAX];
	static struct stress s;
	struct toucher_arg ta[NTOUCHERS];
	pthread_t th[NTOUCHERS];
	struct ufvm_stats st;
	struct ufvm_config cfg;
	struct rng r = { .s = 5 };
	uint8_t *buf = malloc(FILE_SIZE);
	uint64_t start;
	struct ufvm *vm;
	long maps = 0;

	cr_assert(buf);
	memset(&s, 0, sizeof(s));
	atomic_store(&s.seq, 1);		/* odd: no region */
	ut_store("f", FILE_SIZE, SEED, path);
	assert_ok(ufvm_config_init(&cfg));
	cfg.speculative = 1;
	sigcatch_install();	/* before ufvm: in-thread delivery passes it what is not ufvm's */
	vm = open_uffd(&cfg);
	assert_ok(ufvm_file_open(vm, path, UFVM_RDONLY, &s.f));
	ut_pread(s.f, buf, FILE_SIZE, 0);	/* all cached: faults go speculative */
	for (int i = 0; i < NTOUCHERS; i++) {
		ta[i] = (struct toucher_arg){ .s = &s, .id = i };
		cr_assert(pthread_create(&th[i], NULL, toucher, &ta[i]) == 0);
	}

	start = race_now_us();
	while ((race_now_us() - start < STRESS_US || maps < STRESS_MAPS ||
		(!atomic_load(&s.segvs) && race_now_us() - start < STRESS_MAX_US)) &&
	       !atomic_load(&s.errors)) {
		uint8_t *m = ut_map(vm, path, 0, FILE_SIZE, UFVM_PROT_READ);

		atomic_store(&s.cur, m);
		atomic_fetch_add(&s.seq, 1);		/* even: live */
		race_sleep_us(rng_below(&r, 400));
		atomic_fetch_add(&s.seq, 1);		/* odd: going */
		atomic_store(&s.cur, NULL);
		ut_unmap(vm, m, FILE_SIZE);
		maps++;
	}
	atomic_store(&s.stop, 1);
	for (int i = 0; i < NTOUCHERS; i++)
		assert_back(th[i], s.tid[i], "toucher");

	assert_ok(ufvm_stats(vm, &st));
	fprintf(stderr,
		"spec vs unmap stress: %ld map/unmap cycles, %ld reads, %ld SIGSEGVs caught, "
		"%llu faults, %llu speculative hits, fallbacks: %llu seq, %llu no region; %llu "
		"faults on a gone region, %llu install errors\n",
		maps, atomic_load(&s.reads), atomic_load(&s.segvs),
		(unsigned long long)st.counters[UFVM_CTR_FAULTS],
		(unsigned long long)st.counters[UFVM_CTR_SPEC_HIT],
		(unsigned long long)st.counters[UFVM_CTR_SPEC_FALLBACK_SEQ],
		(unsigned long long)st.counters[UFVM_CTR_SPEC_FALLBACK_NOREGION],
		(unsigned long long)st.counters[UFVM_CTR_NOREGION],
		(unsigned long long)st.counters[UFVM_CTR_INSTALL_ERRORS]);
	cr_assert_eq(atomic_load(&s.errors), 0, "%ld bad reads; first: %s",
		     atomic_load(&s.errors), s.msg);
	cr_assert_eq(st.counters[UFVM_CTR_INSTALL_ERRORS], 0,
		     "%llu installs into a region that was gone",
		     (unsigned long long)st.counters[UFVM_CTR_INSTALL_ERRORS]);
	/* It raced: speculative faults ran, and touches outlived their region. */
	cr_assert_gt(st.counters[UFVM_CTR_SPEC_HIT], 0, "no speculative fault");
	cr_assert_gt(atomic_load(&s.reads), 0);
	cr_assert_gt(atomic_load(&s.segvs), 0, "no touch outlived its region: no race");
	/* A fault that found its region gone served nothing: no path's sample. */
	cr_assert_leq(st.latency[UFVM_PATH_MINOR].count, st.counters[UFVM_CTR_MINOR],
		      "%llu minor-path samples for %llu minor faults (%llu found no region)",
		      (unsigned long long)st.latency[UFVM_PATH_MINOR].count,
		      (unsigned long long)st.counters[UFVM_CTR_MINOR],
		      (unsigned long long)st.counters[UFVM_CTR_NOREGION]);
	assert_ok(ufvm_file_close(s.f));
	ut_close(vm);
	free(buf);
}

/* ---- dead_region ---- */

#ifdef UFVM_HOOK_SPEC_FOUND
struct dead {
	uint8_t *m;
	pid_t tid;
	atomic_int armed, hooked, unmapped;
	int sig;
	uint8_t v;
};

static void dead_hook(void *arg, unsigned int point, uint64_t a, uint64_t b)
{
	struct dead *d = arg;

	if (point != UFVM_HOOK_SPEC_FOUND || a != (uintptr_t)(d->m + TARGET_PG * PAGE) ||
	    !atomic_exchange(&d->armed, 0))
		return;
	/* Region and page found under RCU, no lock taken yet: let the unmap run. */
	atomic_store(&d->hooked, 1);
	race_wait(&d->unmapped, 1, WAIT_US);
}

static void *dead_toucher(void *arg)
{
	struct dead *d = arg;
	struct sigbus_info si;

	d->tid = sigbus_gettid();
	d->sig = sigcatch_read(d->m + TARGET_PG * PAGE + 3, &d->v, &si);
	return NULL;
}

static void run_dead_region(unsigned int debug_flags)
{
	char path[TMPSTORE_PATH_MAX];
	static struct dead d;
	struct ufvm_config cfg;
	struct ufvm_file *f;
	uint64_t err0, seq0, errs, seqs;
	uint8_t buf[PAGE];
	struct ufvm *vm;
	pthread_t th;
	int rounds, segvs = 0, hooked = 0;

	ut_store("f", FILE_SIZE, SEED, path);
	assert_ok(ufvm_config_init(&cfg));
	cfg.speculative = 1;
	cfg.debug_flags = debug_flags;
	sigcatch_install();	/* before ufvm, as above */
	vm = open_uffd(&cfg);
	assert_ok(ufvm_file_open(vm, path, UFVM_RDONLY, &f));
	ut_pread(f, buf, PAGE, TARGET_PG * PAGE);	/* cached: the fault goes speculative */
	assert_ok(ufvm_debug_hook(vm, dead_hook, &d));
	err0 = ut_counter(vm, UFVM_CTR_INSTALL_ERRORS);
	seq0 = ut_counter(vm, UFVM_CTR_SPEC_FALLBACK_SEQ);
	for (rounds = 0; rounds < ROUNDS;) {
		memset(&d, 0, sizeof(d));
		d.m = ut_map(vm, path, 0, FILE_SIZE, UFVM_PROT_READ);
		atomic_store(&d.armed, 1);
		cr_assert(pthread_create(&th, NULL, dead_toucher, &d) == 0);
		hooked += race_wait(&d.hooked, 1, WAIT_US);
		ut_unmap(vm, d.m, FILE_SIZE);
		atomic_store(&d.unmapped, 1);
		assert_back(th, d.tid, "the toucher");
		rounds++;
		segvs += d.sig == SIGSEGV;
		cr_assert(d.sig == SIGSEGV || (!d.sig && d.v == pattern_byte(SEED,
			  TARGET_PG * PAGE + 3)), "round %d: signal %d, byte %#x", rounds, d.sig,
			  d.v);
		if (debug_flags && ut_counter(vm, UFVM_CTR_INSTALL_ERRORS) > err0)
			break;
	}
	assert_ok(ufvm_debug_hook(vm, NULL, NULL));
	errs = ut_counter(vm, UFVM_CTR_INSTALL_ERRORS) - err0;
	seqs = ut_counter(vm, UFVM_CTR_SPEC_FALLBACK_SEQ) - seq0;
	fprintf(stderr,
		"spec vs unmap, dead region, %s: %d rounds, fault held in %d, %d SIGSEGVs, "
		"%llu installs into the unmapped region, %llu dead-region fallbacks\n",
		debug_flags ? "no dead check" : "dead check", rounds, hooked, segvs,
		(unsigned long long)errs, (unsigned long long)seqs);
	cr_assert_eq(hooked, rounds, "the fault did not stop at UFVM_HOOK_SPEC_FOUND");
	if (debug_flags) {
		cr_assert_gt(errs, 0, "no dead check: %d faults went on into an unmapped region "
			     "and none was seen installing there", rounds);
	} else {
		cr_assert_eq(errs, 0, "%llu installs into a region that was gone",
			     (unsigned long long)errs);
		cr_assert_geq(seqs, (uint64_t)rounds, "the fault did not fall back on the dead "
			      "region");
		cr_assert_eq(segvs, rounds, "the toucher's region was gone, yet it read");
	}
	assert_ok(ufvm_file_close(f));
	ut_close(vm);
}

/*
 * ---- a major fault outlives its file ----
 *
 * With retry on, a major fault drops mmap_lock for its store read; once
 * it unlocks the pages it filled, nothing holds the file's object, and
 * ufvm_unmap() of the only region mapping the file frees it.  The fault
 * must be done with the object by then (it ends its fill first).  The
 * fill hook holds the fault right after the unlock while the region is
 * unmapped and a grace period passes.  Teeth: UFVM_DEBUG_FILL_END_LATE
 * ends the fill after the hook, on freed memory, which AddressSanitizer
 * reports (in a child process, whose report the test reads); a release
 * build cannot see it, so the teeth run only in the ASan tree.
 */
static void outlive_hook(void *arg, unsigned int point, uint64_t a, uint64_t b)
{
	struct dead *o = arg;

	(void)b;
	if ((point != UFVM_HOOK_FILLED && point != UFVM_HOOK_DISCARDED) ||
	    a > TARGET_PG * PAGE || !atomic_exchange(&o->armed, 0))
		return;
	atomic_store(&o->hooked, 1);
	race_wait(&o->unmapped, 1, WAIT_US);	/* and freed */
}

/* A store file @name in @path, and an instance with retry on (in-thread delivery). */
static struct ufvm *open_retry(const char *name, char *path, unsigned int debug_flags,
			       bool inthread)
{
	struct ufvm_config cfg;

	ut_store(name, FILE_SIZE, SEED, path);
	assert_ok(ufvm_config_init(&cfg));
	cfg.retry = 1;
	if (inthread)
		cfg.delivery = UFVM_DELIVERY_INTHREAD;
	cfg.debug_flags = debug_flags;
	sigcatch_install();	/* before ufvm, as above */
	return open_uffd(&cfg);
}

/* @read_error: the store read fails, and the fault discards its page. */
static void run_outlive(unsigned int debug_flags, bool read_error)
{
	char path[TMPSTORE_PATH_MAX];
	static struct dead o;
	struct ufvm_file *f;
	struct ufvm *vm;
	pthread_t th;

	vm = open_retry("o", path, debug_flags, false);
	memset(&o, 0, sizeof(o));
	assert_ok(ufvm_file_open(vm, path, UFVM_RDONLY, &f));
	if (read_error)
		assert_ok(ufvm_inject(f, UFVM_INJECT_READ_EIO, 0, FILE_SIZE));
	o.m = ut_map(vm, path, 0, FILE_SIZE, UFVM_PROT_READ);
	assert_ok(ufvm_file_close(f));	/* the region is the file's only user */
	assert_ok(ufvm_debug_hook(vm, outlive_hook, &o));	/* DISCARDED comes first */
	atomic_store(&o.armed, 1);
	cr_assert(pthread_create(&th, NULL, dead_toucher, &o) == 0);
	cr_assert(race_wait(&o.hooked, 1, WAIT_US), "the major fault never reached "
		  "UFVM_HOOK_FILLED");
	ut_unmap(vm, o.m, FILE_SIZE);	/* the object goes, after a grace period */
	race_sleep_us(200000);
	atomic_store(&o.unmapped, 1);
	assert_back(th, o.tid, "the toucher");
	cr_assert(o.sig == SIGSEGV || (read_error && o.sig == SIGBUS) ||
		  (!o.sig && !read_error && o.v == pattern_byte(SEED, TARGET_PG * PAGE + 3)),
		  "signal %d, byte %#x", o.sig, o.v);
	assert_ok(ufvm_debug_hook(vm, NULL, NULL));
	ut_close(vm);
}
#endif

Test(spec_vs_unmap, dead_region_not_mapped, .timeout = 30)
{
#ifdef UFVM_HOOK_SPEC_FOUND
	run_dead_region(0);
#else
	cr_skip_test("needs UFVM_HOOK_SPEC_FOUND (a hook between a speculative fault's RCU "
		     "lookups and its ptl) to hold the fault while the region is unmapped");
#endif
}

Test(spec_vs_unmap, teeth_no_dead_check_maps_dead_region, .timeout = 30)
{
#ifdef UFVM_HOOK_SPEC_FOUND
	run_dead_region(UFVM_DEBUG_NO_DEAD_CHECK);
#else
	cr_skip_test("needs UFVM_HOOK_SPEC_FOUND (a hook between a speculative fault's RCU "
		     "lookups and its ptl) to hold the fault while the region is unmapped");
#endif
}

Test(spec_vs_unmap, major_fault_outlives_its_file, .timeout = 30)
{
	run_outlive(0, false);
}

Test(spec_vs_unmap, failed_major_fault_outlives_its_file, .timeout = 30)
{
	run_outlive(0, true);
}

/*
 * ---- ufvm_close while a fault is served in an application thread ----
 *
 * With in-thread delivery (and the sigsegv backend) the faulting thread
 * serves its own fault, not a handler thread that close joins.  Held in
 * the fill hook after its store read (retry on: no lock held), the fault
 * must still find the instance there when it goes on: ufvm_close waits
 * for the faults its signal handlers are serving.  Teeth:
 * UFVM_DEBUG_CLOSE_NO_WAIT, and the fault goes on in freed memory (ASan).
 * In-thread delivery only: after the close, the toucher's access faults
 * again, and with the sigsegv backend that kills the process.
 */
static void close_hook(void *arg, unsigned int point, uint64_t a, uint64_t b)
{
	struct dead *o = arg;

	(void)b;
	if (point != UFVM_HOOK_FILLED || a > TARGET_PG * PAGE || !atomic_exchange(&o->armed, 0))
		return;
	atomic_store(&o->hooked, 1);
	/*
	 * ufvm_close runs meanwhile: until it returned, or for a second if
	 * it waits for this fault (a fixed sleep lost the race to a slow
	 * close on a loaded machine, and the teeth saw nothing).
	 */
	race_wait(&o->unmapped, 1, 1000000);
}

static void run_close_inthread(unsigned int debug_flags)
{
	char path[TMPSTORE_PATH_MAX];
	static struct dead o;
	struct ufvm *vm;
	pthread_t th;

	vm = open_retry("ci", path, debug_flags, true);
	memset(&o, 0, sizeof(o));
	o.m = ut_map(vm, path, 0, FILE_SIZE, UFVM_PROT_READ);
	assert_ok(ufvm_debug_hook(vm, close_hook, &o));
	atomic_store(&o.armed, 1);
	cr_assert(pthread_create(&th, NULL, dead_toucher, &o) == 0);
	cr_assert(race_wait(&o.hooked, 1, WAIT_US), "the major fault never reached "
		  "UFVM_HOOK_FILLED");
	ut_close(vm);
	atomic_store(&o.unmapped, 1);	/* (closed) */
	assert_back(th, o.tid, "the toucher");
	cr_assert(o.sig == SIGSEGV || o.sig == SIGBUS ||
		  (!o.sig && o.v == pattern_byte(SEED, TARGET_PG * PAGE + 3)),
		  "signal %d, byte %#x", o.sig, o.v);
}

Test(spec_vs_unmap, close_waits_for_an_inthread_fault, .timeout = 30)
{
	run_close_inthread(0);
}

static void teeth_fill_late(void)
{
	run_outlive(UFVM_DEBUG_FILL_END_LATE, false);
}

static void teeth_failed_fill_late(void)
{
	run_outlive(UFVM_DEBUG_FILL_END_LATE, true);
}

static void teeth_close_no_wait(void)
{
	run_close_inthread(UFVM_DEBUG_CLOSE_NO_WAIT);
}

/* Teeth under ASan; a touch of an unmapped region kills a sigsegv child. */
static void teeth_asan(void (*run)(void), const char *where)
{
	struct ufvm_config cfg;

	assert_ok(ufvm_config_init(&cfg));
	if (cfg.backend == UFVM_BACKEND_SIGSEGV)
		cr_skip_test("UFVM_BACKEND=sigsegv: a touch of an unmapped region kills the "
			     "process there; this race needs the userfaultfd backend");
	race_teeth_asan(run, "heap-use-after-free", where);
}

Test(spec_vs_unmap, teeth_fill_end_late_touches_freed_file, .timeout = 30)
{
	teeth_asan(teeth_fill_late, "vm_object_fill_end");
}

Test(spec_vs_unmap, teeth_failed_fill_end_late_touches_freed_file, .timeout = 30)
{
	teeth_asan(teeth_failed_fill_late, "vm_object_fill_end");
}

Test(spec_vs_unmap, teeth_close_no_wait_faults_in_freed_instance, .timeout = 30)
{
	teeth_asan(teeth_close_no_wait, "fault_locked");
}
