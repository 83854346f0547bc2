/* SPDX-License-Identifier: MIT */
/*
 * test_handler_park.c - uffd handlers park when no faulting thread runs on
 * their CPU, and come back when one does (handler_park, pager/uffd.c).
 *
 * Checks, with the default handlers (one per CPU, pinned) on a machine of
 * two CPUs or more: a thread faulting from CPU 0 only makes another CPU's
 * handler park (handler_parks moves) and reads the right bytes throughout;
 * the same thread moved to the CPU of a parked handler still has every
 * fault served, and that handler is unparked (handler_unparks moves) within
 * a few seconds; ufvm_close() returns with handlers parked; with
 * handler_park = 0 no handler parks; a handler about to wait for a slow
 * store read unparks the parked ones.  Skipped on one CPU, on the sigsegv
 * backend and with in-thread delivery (no handler threads there), and when
 * the environment sets a handler count or a spin budget (no parking then).
 *
 * Race: a handler decides to park while ufvm_close() runs.  The close marks
 * the backend stopping, unparks every parked handler, and then passes the
 * stop from handler to handler; each must read a stop message.  A handler
 * that parks after the unpark pass would never read one, and the close
 * would wait for ever.  UFVM_HOOK_HANDLER_PARK holds the parking handler
 * (counted out of the readers, not yet parked) until another handler has
 * read a stop message (UFVM_HOOK_HANDLER_STOP): past the unpark pass.
 * ufvm_close() must return within JOIN_US.  Teeth: with
 * UFVM_DEBUG_PARK_PAST_STOP the handler parks anyway, and without the
 * parked handlers' periodic look for unread faults (which would find the
 * stop message after PARK_CHECK_NS) the close hangs.
 * Each run is a child process, so that the teeth's hang ends with it.
 *
 * Race: a handler decides to park while another begins to wait for the
 * store.  The waiting one unparks the parked handlers before its read
 * (handler_will_wait()), but one that is between counting itself out of
 * the readers and setting ->parked is not parked yet: it must see the wait
 * itself and stay.  UFVM_HOOK_HANDLER_PARK holds the parking handler in
 * that window until the other handler's store read began (UFVM_HOOK_FILL,
 * which then holds that read for FILL_HOLD_US); then a thread faults a
 * cached page, which only the first handler can read now.  It must be
 * served within LATE_US.  UFVM_DEBUG_PARK_PAST_STOP switches off the
 * parked handlers' periodic look for unread faults, which would otherwise
 * serve the fault after PARK_CHECK_NS.  Teeth: with
 * UFVM_DEBUG_PARK_PAST_WAIT as well, the handler parks, and the fault
 * waits for the held store read.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "race.h"

#define SEED	0x5eed0410
#define NPAGES	512
#define SIZE	(NPAGES * PAGE)
#define WAIT_S	10
#define HOLD_US	(5 * 1000000u)	/* the parking handler is held at most this */
#define JOIN_US	(3 * 1000000u)	/* ufvm_close returns by then */

static bool pin(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return pthread_setaffinity_np(pthread_self(), sizeof(set), &set) == 0;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/*
 * A thread that runs on CPU 0 until the caller stops it, while faults come
 * from CPU 0 only until a handler parks.  Handler 0, woken on CPU 0 for
 * each fault, then waits for its turn there (SCHED_BATCH does not preempt),
 * so the handler of CPU 1 serves faults of CPU 0 and parks.  Without it,
 * handler 0 may take every fault while CPU 0 is idle and CPU 1 busy with
 * another process, and none parks: the set-up waits ran out twice beside
 * other loads (once under ASan beside another test binary, once in
 * release beside a fuzz campaign), not again since.
 */
struct crowd {
	atomic_int stop;
	pthread_t th;
};

static void *crowd_main(void *arg)
{
	struct crowd *c = arg;

	if (pin(0))
		while (!atomic_load_explicit(&c->stop, memory_order_relaxed))
			;
	return NULL;
}

/* Return: false if the thread could not be made.  (No assertion: a forked child calls it.) */
static bool crowd_start(struct crowd *c)
{
	atomic_store(&c->stop, 0);
	return pthread_create(&c->th, NULL, crowd_main, c) == 0;
}

static void crowd_stop(struct crowd *c)
{
	atomic_store(&c->stop, 1);
	pthread_join(c->th, NULL);
}

/* Defaults (and the environment), one page per fault; skips where no handler parks. */
static void park_config(struct ufvm_config *cfg, unsigned int park)
{
	cr_assert(ufvm_config_init(cfg) == 0);
	if (sysconf(_SC_NPROCESSORS_ONLN) < 2)
		cr_skip_test("one CPU: one handler, nothing to park");
	if (cfg->backend == UFVM_BACKEND_SIGSEGV || cfg->delivery == UFVM_DELIVERY_INTHREAD)
		cr_skip_test("no handler threads in this mode");
	if ((cfg->handler_threads && cfg->handler_threads != sysconf(_SC_NPROCESSORS_ONLN)) ||
	    cfg->handler_spin_us)
		cr_skip_test("UFVM_HANDLERS (not the CPU count) or UFVM_HANDLER_SPIN_US set: "
			     "handlers do not park");
	cfg->fault_around = 1;
	cfg->map_ahead = 0;
	cfg->handler_park = park;
}

/*
 * Fault every page of @map from CPU @cpu (zapping between passes) until
 * counter @c moved past @base or @secs passed; checks every page read.
 * Return: the counter's last value.
 */
static uint64_t fault_until(struct ufvm *vm, const uint8_t *map, int cpu,
			    enum ufvm_counter c, uint64_t base, double secs)
{
	double end = now_s() + secs;
	uint64_t v;

	cr_assert(pin(cpu), "cannot run on CPU %d", cpu);
	do {
		for (size_t i = 0; i < NPAGES; i++)
			assert_pattern(SEED, map + i * PAGE + 8, i * PAGE + 8, 8, "page %zu", i);
		v = ut_counter(vm, c);
		assert_ok(ufvm_zap(vm, (void *)map, SIZE));
	} while (v <= base && now_s() < end);
	return v;
}

/* An instance with handler_park = @park and a mapped store of NPAGES pages. */
static uint8_t *open_mapped(unsigned int park, struct ufvm **vm)
{
	char path[TMPSTORE_PATH_MAX];
	struct ufvm_config cfg;

	park_config(&cfg, park);
	ut_store("s", SIZE, SEED, path);
	*vm = ut_open(&cfg);
	if (strcmp(ufvm_backend_name(*vm), "uffd"))
		cr_skip_test("backend %s has no handler threads", ufvm_backend_name(*vm));
	return ut_map(*vm, path, 0, SIZE, UFVM_PROT_READ);
}

Test(handler_park, idle_cpu_handler_parks_and_comes_back, .timeout = 3 * WAIT_S + 10)
{
	uint64_t parks, unparks, faults;
	struct ufvm *vm;
	uint8_t *map = open_mapped(1, &vm);
	struct crowd cw;

	cr_assert(crowd_start(&cw));
	parks = fault_until(vm, map, 0, UFVM_CTR_HANDLER_PARKS, 0, WAIT_S);
	crowd_stop(&cw);
	cr_assert_geq(parks, 1, "no handler parked in %d s of faults from CPU 0 only", WAIT_S);

	faults = ut_counter(vm, UFVM_CTR_FAULTS);
	unparks = fault_until(vm, map, 1, UFVM_CTR_HANDLER_UNPARKS, 0, WAIT_S);
	cr_assert_geq(unparks, 1, "faults from CPU 1 for %d s unparked no handler", WAIT_S);
	cr_assert_gt(ut_counter(vm, UFVM_CTR_FAULTS), faults, "no fault served from CPU 1");

	/* And back: the handler of CPU 1 may park again; the faults are served. */
	(void)fault_until(vm, map, 0, UFVM_CTR_HANDLER_PARKS, parks, WAIT_S);
	ut_unmap(vm, map, SIZE);
	ut_close(vm);	/* with a handler parked, most likely: must return */
}

Test(handler_park, off_no_handler_parks, .timeout = 20)
{
	struct ufvm *vm;
	uint8_t *map = open_mapped(0, &vm);

	cr_assert_eq(fault_until(vm, map, 0, UFVM_CTR_HANDLER_PARKS, 0, 1.0), 0,
		     "a handler parked with handler_park = 0");
	cr_assert_eq(ut_counter(vm, UFVM_CTR_HANDLER_UNPARKS), 0);
	ut_unmap(vm, map, SIZE);
	ut_close(vm);
}

/* ---- a reader waiting for the store unparks the others ---- */

#define SLOW_US		20000	/* each store read */
#define WARM		32	/* pages cached before the parking */

static struct {
	struct ufvm *vm;
	const uint8_t *map;
	atomic_int stop;
} sr;

/* On CPU 0: fault uncached pages, each a slow store read. */
static void *slow_reader(void *arg)
{
	(void)arg;
	if (!pin(0))
		return NULL;
	for (size_t i = WARM; i < NPAGES && !atomic_load(&sr.stop); i++)
		(void)*(volatile const uint8_t *)(sr.map + i * PAGE);
	return NULL;
}

/*
 * Handler 1 parked while a thread on CPU 0 faulted; then that thread
 * faults pages the store takes SLOW_US to read.  Handler 0 waits for each
 * read, and the parked handler must come back meanwhile, so that threads
 * on its CPU are not served behind those reads: handler 0 unparks it
 * before it waits (handler_will_wait()), and a parked handler that finds
 * faults unread when it looks (every PARK_CHECK_NS) unparks itself.  With
 * neither (checked by hand), no handler is unparked and the test fails.
 */
Test(handler_park, a_reader_waiting_for_the_store_unparks_the_others, .timeout = 40)
{
	char path[TMPSTORE_PATH_MAX];
	struct ufvm_config cfg;
	double end = now_s() + WAIT_S;
	uint64_t unparks;
	struct crowd cw;
	pthread_t th;
	void *addr;

	park_config(&cfg, 1);
	cfg.store_latency_us = SLOW_US;
	cfg.readahead = 0;
	ut_store("s", SIZE, SEED, path);
	sr.vm = ut_open(&cfg);
	if (strcmp(ufvm_backend_name(sr.vm), "uffd"))
		cr_skip_test("backend %s has no handler threads", ufvm_backend_name(sr.vm));
	assert_ok(ufvm_map(sr.vm, path, 0, SIZE, UFVM_PROT_READ, UFVM_MAP_SHARED, &addr));
	sr.map = addr;
	cr_assert(pin(0));
	cr_assert(crowd_start(&cw));
	do {	/* until a handler is parked now */
		for (size_t i = 0; i < WARM; i++)
			assert_pattern(SEED, sr.map + i * PAGE, i * PAGE, 8, "page %zu", i);
		assert_ok(ufvm_zap(sr.vm, addr, WARM * PAGE));
	} while (ut_counter(sr.vm, UFVM_CTR_HANDLER_PARKS) <=
		 ut_counter(sr.vm, UFVM_CTR_HANDLER_UNPARKS) && now_s() < end);
	crowd_stop(&cw);
	unparks = ut_counter(sr.vm, UFVM_CTR_HANDLER_UNPARKS);
	cr_assert_gt(ut_counter(sr.vm, UFVM_CTR_HANDLER_PARKS), unparks,
		     "no handler parked in %d s of faults from CPU 0 only", WAIT_S);

	cr_assert(pin(1));	/* away from the slow reader */
	cr_assert(pthread_create(&th, NULL, slow_reader, NULL) == 0);
	end = now_s() + 5;
	while (ut_counter(sr.vm, UFVM_CTR_HANDLER_UNPARKS) == unparks && now_s() < end)
		usleep(1000);
	cr_assert_gt(ut_counter(sr.vm, UFVM_CTR_HANDLER_UNPARKS), unparks,
		     "a handler waiting for the store left the parked handler parked for 5 s");
	atomic_store(&sr.stop, 1);
	cr_assert(pthread_join(th, NULL) == 0);
	ut_unmap(sr.vm, addr, SIZE);
	ut_close(sr.vm);
}

/* ---- a handler parks while ufvm_close() runs ---- */

enum { CHILD_CLOSED = 0, CHILD_HUNG = 3, CHILD_NO_WINDOW = 4, CHILD_SETUP = 5 };

static struct {
	atomic_int held;	/* a handler is in the park window */
	atomic_int stopping;	/* a handler read a stop message */
	struct ufvm *vm;
	int rc;
} pc;

static void park_hook(void *arg, unsigned int point, uint64_t a, uint64_t b)
{
	(void)arg, (void)a, (void)b;
	if (point == UFVM_HOOK_HANDLER_STOP) {
		atomic_store(&pc.stopping, 1);
	} else if (point == UFVM_HOOK_HANDLER_PARK && atomic_exchange(&pc.held, 1) == 0) {
		/* Past the close's unpark pass, or give up. */
		race_wait(&pc.stopping, 1, HOLD_US);
	}
}

static void *closer(void *arg)
{
	(void)arg;
	pc.rc = ufvm_close(pc.vm);
	return NULL;
}

/* The child: fault from CPU 0 until a handler enters the window, then close. */
static int park_vs_close(unsigned int debug)
{
	char path[TMPSTORE_PATH_MAX];
	struct ufvm_config cfg;
	double end = now_s() + WAIT_S;
	struct crowd cw;
	pthread_t th;
	uint8_t *map;
	void *addr;

	if (ufvm_config_init(&cfg) || tmpstore_create("s", SIZE, SEED, path))
		return CHILD_SETUP;
	cfg.fault_around = 1;
	cfg.map_ahead = 0;
	cfg.handler_park = 1;
	cfg.debug_flags |= debug;
	if (ufvm_open(&cfg, &pc.vm) || ufvm_debug_hook(pc.vm, park_hook, NULL) ||
	    ufvm_map(pc.vm, path, 0, SIZE, UFVM_PROT_READ, UFVM_MAP_SHARED, &addr) || !pin(0))
		return CHILD_SETUP;
	map = addr;
	if (!crowd_start(&cw))
		return CHILD_SETUP;
	while (!atomic_load(&pc.held) && now_s() < end) {
		for (size_t i = 0; i < NPAGES && !atomic_load(&pc.held); i++)
			(void)*(volatile uint8_t *)(map + i * PAGE);
		if (ufvm_zap(pc.vm, map, SIZE))
			return CHILD_SETUP;
	}
	crowd_stop(&cw);
	if (!atomic_load(&pc.held))
		return CHILD_NO_WINDOW;
	if (ufvm_unmap(pc.vm, map, SIZE) || pthread_create(&th, NULL, closer, NULL))
		return CHILD_SETUP;
	if (race_join(th, debug ? RACE_HUNG_US : JOIN_US))	/* teeth: a hang is the point */
		return CHILD_HUNG;
	return pc.rc ? CHILD_SETUP : CHILD_CLOSED;
}

/* Run park_vs_close() in a child; its exit status. */
static int run_child(unsigned int debug)
{
	struct ufvm_config cfg;
	int status;
	pid_t pid;

	park_config(&cfg, 1);	/* skips where nothing parks */
	pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0)
		_exit(park_vs_close(debug));	/* _exit: the hung threads die with it */
	cr_assert(waitpid(pid, &status, 0) == pid);
	cr_assert(WIFEXITED(status), "the child died of signal %d", WTERMSIG(status));
	cr_assert_neq(WEXITSTATUS(status), CHILD_SETUP, "the child's set-up failed");
	cr_assert_neq(WEXITSTATUS(status), CHILD_NO_WINDOW,
		      "no handler went to park in %d s: the race was not run", WAIT_S);
	return WEXITSTATUS(status);
}

Test(handler_park, close_while_a_handler_parks_returns, .timeout = 40)
{
	cr_assert_eq(run_child(0), CHILD_CLOSED,
		     "ufvm_close did not return within %u us of a handler parking", JOIN_US);
}

Test(handler_park, teeth_park_past_stop_hangs_close, .timeout = 40)
{
	cr_assert_eq(run_child(UFVM_DEBUG_PARK_PAST_STOP), CHILD_HUNG,
		     "ufvm_close returned although a handler parked past its unpark pass");
}

/* ---- a handler parks while another begins to wait for the store ---- */

#define FILL_HOLD_US	(3 * 1000000u)	/* the store read is held at most this */
#define PARK_WAIT_S	20	/* for a handler to park: longer under load */
#define LATE_US		(1000000u)	/* a fault served later waited for that read */

static struct {
	atomic_int armed;	/* hold the next parking handler */
	atomic_int held;	/* a handler is in the park window */
	atomic_int filling;	/* another began a store read */
	atomic_int served;	/* the probe's fault was served */
	const uint8_t *map;
} pw;

/* Context: a handler thread. */
static void wait_hook(void *arg, unsigned int point, uint64_t a, uint64_t b)
{
	(void)arg, (void)a, (void)b;
	if (point == UFVM_HOOK_HANDLER_PARK && atomic_load(&pw.armed) &&
	    !atomic_exchange(&pw.held, 1))
		race_wait(&pw.filling, 1, HOLD_US);	/* until the other waits for the store */
	else if (point == UFVM_HOOK_FILL && a >= WARM * PAGE && atomic_load(&pw.held) &&
		 !atomic_exchange(&pw.filling, 1))	/* the uncached reader's fill only */
		race_wait(&pw.served, 1, FILL_HOLD_US);
}

/* On CPU 0: fault a page not cached yet (its store read is held). */
static void *uncached_reader(void *arg)
{
	(void)arg;
	if (pin(0))
		assert_pattern(SEED, pw.map + WARM * PAGE, WARM * PAGE, 8, "page %d", WARM);
	return NULL;
}

/* How long the probe's fault of a cached page took, in us. */
static uint64_t park_vs_store_wait(unsigned int debug)
{
	char path[TMPSTORE_PATH_MAX];
	struct ufvm_config cfg;
	double end = now_s() + PARK_WAIT_S;
	struct crowd cw;
	uint64_t t;
	struct ufvm *vm;
	pthread_t th;
	void *addr;

	park_config(&cfg, 1);
	cfg.readahead = 0;
	cfg.debug_flags |= debug;
	ut_store("s", SIZE, SEED, path);
	vm = ut_open(&cfg);
	if (strcmp(ufvm_backend_name(vm), "uffd"))
		cr_skip_test("backend %s has no handler threads", ufvm_backend_name(vm));
	assert_ok(ufvm_map(vm, path, 0, SIZE, UFVM_PROT_READ, UFVM_MAP_SHARED, &addr));
	pw.map = addr;
	assert_ok(ufvm_debug_hook(vm, wait_hook, NULL));
	cr_assert(pin(0));
	/*
	 * Cache the warm pages before a handler may be held parking: a fill
	 * of theirs while it is held would be taken for the uncached
	 * reader's (seen under load: the probe then served at once).
	 */
	for (size_t i = 0; i < WARM; i++)
		assert_pattern(SEED, pw.map + i * PAGE, i * PAGE, 8, "page %zu", i);
	/*
	 * A handler that parked during those faults, not held (the hook is
	 * not armed yet), stays parked while the faults come from CPU 0 only,
	 * served by handler 0, which then never parks: the set-up waited its
	 * 20 s for nothing (1 run in 10 beside a fuzz campaign).  Faults from
	 * CPU 1 unpark it first (its own CPU's).  The last fault's handler
	 * parks, if it does, after it woke this thread: given 20 ms.
	 */
	race_sleep_us(20000);
	if (ut_counter(vm, UFVM_CTR_HANDLER_PARKS) > ut_counter(vm, UFVM_CTR_HANDLER_UNPARKS)) {
		uint64_t unparks = ut_counter(vm, UFVM_CTR_HANDLER_UNPARKS);

		cr_assert(pin(1));
		while (ut_counter(vm, UFVM_CTR_HANDLER_UNPARKS) == unparks && now_s() < end) {
			assert_ok(ufvm_zap(vm, addr, WARM * PAGE));
			for (size_t i = 0; i < WARM; i++)
				assert_pattern(SEED, pw.map + i * PAGE, i * PAGE, 8, "page %zu", i);
		}
		cr_assert(pin(0));
	}
	atomic_store(&pw.armed, 1);
	cr_assert(crowd_start(&cw));
	while (!atomic_load(&pw.held) && now_s() < end) {	/* from CPU 0 only */
		for (size_t i = 0; i < WARM; i++)
			assert_pattern(SEED, pw.map + i * PAGE, i * PAGE, 8, "page %zu", i);
		assert_ok(ufvm_zap(vm, addr, WARM * PAGE));
	}
	crowd_stop(&cw);
	cr_assert(atomic_load(&pw.held), "no handler went to park in %d s", PARK_WAIT_S);
	assert_ok(ufvm_zap(vm, addr, WARM * PAGE));
	cr_assert(pthread_create(&th, NULL, uncached_reader, NULL) == 0);
	cr_assert(race_wait(&pw.filling, 1, WAIT_S * 1000000u), "the store read did not begin");
	cr_assert(pin(1));
	t = race_now_us();
	assert_pattern(SEED, pw.map, 0, 8, "page 0");	/* cached, zapped: a fault */
	t = race_now_us() - t;
	atomic_store(&pw.served, 1);
	cr_assert(race_join(th, WAIT_S * 1000000u) == 0, "the uncached read was not served");
	assert_ok(ufvm_debug_hook(vm, NULL, NULL));
	ut_unmap(vm, addr, SIZE);
	ut_close(vm);
	return t;
}

Test(handler_park, a_handler_parking_beside_a_store_wait_stays, .timeout = 60)
{
	uint64_t us = park_vs_store_wait(UFVM_DEBUG_PARK_PAST_STOP);

	cr_assert_lt(us, LATE_US, "a fault waited %llu us behind a held store read",
		     (unsigned long long)us);
}

Test(handler_park, teeth_park_past_wait_leaves_faults_unread, .timeout = 60)
{
	uint64_t us = park_vs_store_wait(UFVM_DEBUG_PARK_PAST_STOP | UFVM_DEBUG_PARK_PAST_WAIT);

	cr_assert_geq(us, LATE_US, "a fault was served in %llu us though the handler parked",
		      (unsigned long long)us);
}
