/* SPDX-License-Identifier: MIT */
/*
 * test_close_vs_signal.c - ufvm_close() stops every userfaultfd handler
 * thread and returns, even when a signal makes the closing thread fault
 * twice on the stop sentinel.
 *
 * Invariant: the stop counts handlers, not faults.  ufvm_close() faults on
 * a sentinel page to wake the handlers blocked in read(); a signal that
 * reaches the closing thread while a handler holds the sentinel's message
 * makes the thread leave the fault, run its handler and fault again, so a
 * second handler takes a second message for the same fault.  If each
 * message stopped one handler and the closing thread faulted once per
 * handler, its last fault would find no handler left and it would sleep
 * in the kernel for ever.
 *
 * With UFVM_HOOK_HANDLER_STOP the first handler to read a stop message
 * sends SIGUSR1 to the closing thread and waits (bounded) until a second
 * handler has read one too.  The closing thread's SIGUSR1 handler faults
 * on the sentinel again (the second message) and then waits, bounded,
 * until both handlers have exited, so that the closing thread goes on only
 * once both have answered: the worst order.  ufvm_close() must then return
 * within JOIN_US.  Teeth: with one sentinel fault per handler (the old
 * stop), the closing thread's next fault finds no handler, it stays in
 * handle_userfault and the join times out.
 *
 * Only with the userfaultfd backend's handler threads: the sigsegv backend
 * and in-thread delivery have none.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "check.h"
#include "race.h"

#define WAIT_US		(2 * 1000000u)	/* the second handler reads a message by then */
#define JOIN_US		(5 * 1000000u)	/* ufvm_close returns by then */

static struct {
	struct ufvm *vm;
	pthread_t closer;
	atomic_int closer_tid;
	atomic_int stops;		/* hook calls: stop messages read */
	atomic_int signals;		/* SIGUSR1 run on the closing thread */
	atomic_int second;		/* the second stop message came in time */
	atomic_int tids[2];		/* the handlers that read them */
	_Atomic(uintptr_t) sentinel;
	int rc;
} t;

/* Has thread @tid of this process exited?  Async-signal-safe. */
static bool gone(int tid)
{
	return syscall(SYS_tgkill, getpid(), tid, 0) && errno == ESRCH;
}

/* The closing thread, interrupted in its stop fault. */
static void on_usr1(int sig)
{
	uint64_t t0 = race_now_us();
	int saved = errno;

	(void)sig;
	atomic_fetch_add(&t.signals, 1);
	(void)*(volatile char *)atomic_load(&t.sentinel);	/* a second stop message */
	while ((!gone(atomic_load(&t.tids[0])) || !gone(atomic_load(&t.tids[1]))) &&
	       race_now_us() - t0 < WAIT_US)
		race_sleep_us(1000);
	errno = saved;
}

static void hook(void *arg, unsigned int point, uint64_t a, uint64_t b)
{
	int n;

	(void)arg, (void)b;
	if (point != UFVM_HOOK_HANDLER_STOP)
		return;
	n = atomic_fetch_add(&t.stops, 1);
	if (n < 2)
		atomic_store(&t.tids[n], (int)syscall(SYS_gettid));
	if (n == 0) {
		/* The closing thread waits in its fault: interrupt it. */
		atomic_store(&t.sentinel, (uintptr_t)a);
		pthread_kill(t.closer, SIGUSR1);
		atomic_store(&t.second, race_wait(&t.stops, 2, WAIT_US));
	}
}

static void *closer(void *arg)
{
	(void)arg;
	atomic_store(&t.closer_tid, (int)syscall(SYS_gettid));
	t.rc = ufvm_close(t.vm);
	return NULL;
}

Test(close_vs_signal, close_returns_when_a_signal_doubles_the_stop_fault, .timeout = 30)
{
	struct sigaction sa;
	struct ufvm_config cfg;
	char where[64];
	int err;

	assert_ok(ufvm_config_init(&cfg));
	if (cfg.backend == UFVM_BACKEND_SIGSEGV)
		cr_skip_test("UFVM_BACKEND=sigsegv: no handler threads to stop");
	if (cfg.delivery == UFVM_DELIVERY_INTHREAD)
		cr_skip_test("in-thread delivery: no handler threads to stop");
	cfg.backend = UFVM_BACKEND_UFFD;
	cfg.handler_threads = 2;
	cfg.handler_spin_us = 0;	/* handlers block in read() */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr1;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	cr_assert(sigaction(SIGUSR1, &sa, NULL) == 0);

	t.vm = ut_open(&cfg);
	assert_ok(ufvm_debug_hook(t.vm, hook, NULL));
	cr_assert(pthread_create(&t.closer, NULL, closer, NULL) == 0);
	err = race_join(t.closer, JOIN_US);
	if (err) {
		race_wchan(atomic_load(&t.closer_tid), where, sizeof(where));
		cr_assert_fail("ufvm_close did not return within %u us: the closing thread "
			       "sleeps in %s (%d stop messages read)", JOIN_US, where,
			       atomic_load(&t.stops));
	}
	cr_assert_eq(t.rc, 0);
	cr_assert_eq(atomic_load(&t.signals), 1, "the closing thread never ran SIGUSR1");
	cr_assert(atomic_load(&t.second),
		  "no second handler read a stop message: the race was not run");
}
