/* SPDX-License-Identifier: MIT */
/*
 * test_cancel.c - a thread cancelled while ufvm works for it (a fault it
 * serves itself, a ufvm call) leaves nothing held.
 *
 * Invariant: ufvm's calls and the faults a thread serves in its own signal
 * handler (in-thread delivery, the sigsegv backend) are no cancellation
 * points.  A cancel that is pending while the work runs is acted on at the
 * thread's next cancellation point, after the work completed: the access
 * or the call returns the file's data, and the page, the locks and the
 * instance stay usable (another thread reads the page; ufvm_close
 * returns).
 *
 * How: the thread cancels itself (deferred) from the fill hook, which
 * runs in it just before the store read, and a store latency puts a
 * nanosleep(), a cancellation point, in that read.  After the access the
 * thread calls pthread_testcancel().
 *
 * Teeth (UFVM_DEBUG_CANCEL_INSIDE: cancellation left enabled): the thread
 * is unwound at the store read, inside ufvm, with the page locked; its
 * access never completes, and another thread's access to the same page
 * hangs.  Each scenario runs in a child process, which reports with its
 * exit status; a hung child is killed.
 *
 * Asynchronous cancellation (*_ASYNC): the thread's cancellation is
 * restored as the fault handler's last step, after its busy count is
 * dropped, so a cancel pending then acts with nothing held and
 * ufvm_close() returns (restored before, it left the count raised and
 * ufvm_close() waited for ever).
 *
 * A call that waits for a lock: a ufvm_unmap() that waits for mmap_lock,
 * held by another unmap (UFVM_HOOK_TAKEN_OUT), is cancelled by another
 * thread; it must complete once the lock is free.  Teeth: cancelled in the
 * rwsem's condition wait, it leaves the rwsem's mutex taken, and the
 * holder's unmap never returns; or, cancelled while it waited for that
 * mutex (no cancellation point), it is unwound at the next one inside
 * ufvm, after the holder's unmap, and ufvm_close() never returns (1 run in
 * 15 beside other load: the teeth count either as the hang).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "race.h"

#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/asan_interface.h>
#endif

#define FILE_SIZE	(16 * PAGE)
#define SEED		0x5eed1c00
#define PG		5		/* the page the cancelled thread touches */

/*
 * How the work is done: a fault served in the thread, or a ufvm call; or
 * (UNMAP_WAIT) a ufvm_unmap() that waits for mmap_lock, which another
 * unmap holds (UFVM_HOOK_TAKEN_OUT), and is cancelled by another thread.
 */
enum how { INTHREAD, SIGSEGV_BACKEND, PREAD, UNMAP_WAIT, INTHREAD_ASYNC, SIGSEGV_ASYNC };

/* The faults served in the thread, with asynchronous cancellation (*_ASYNC). */
static bool async_cancel(enum how h)
{
	return h == INTHREAD_ASYNC || h == SIGSEGV_ASYNC;
}


/* The child's exit status: bits of what went wrong (0: nothing). */
#define ST_CANCELLED_INSIDE	1	/* the access never completed */
#define ST_HUNG			2	/* a later access to the page hung */
#define ST_WRONG		4	/* data not the file's */
#define ST_SETUP		8	/* the scenario could not be set up */
#define ST_CLOSE		16	/* ufvm_close failed */

static enum how how;
static uint8_t *map;
static struct ufvm_file *file;
static pthread_t victim;
static atomic_int victim_known, fired, done, later_done;
static int value;

static void hook(void *arg, unsigned int point, uint64_t a, uint64_t b)
{
	(void)arg;
	(void)a;
	(void)b;
	if (point == UFVM_HOOK_FILL && atomic_load(&victim_known) &&
	    pthread_equal(pthread_self(), victim) && !atomic_exchange(&fired, 1))
		pthread_cancel(pthread_self());	/* pending until a cancellation point */
}

/* Read page PG's first byte the way @how says.  Return: it, or -1. */
static __attribute__((noinline)) int access_page(void)
{
	uint8_t v;

	if (how != PREAD)
		return *(volatile uint8_t *)(map + PG * PAGE);
	return ufvm_pread(file, &v, 1, PG * PAGE) == 1 ? v : -1;
}

/*
 * AddressSanitizer does not see a cancel's unwinding: the frames it
 * discarded stay poisoned, and the thread's exit (its TSD destructors)
 * writes there.  Run as the unwinding reaches victim_main(), this clears
 * the dead frames below.
 */
static void unpoison_dead_frames(void *arg)
{
	(void)arg;
#ifdef __SANITIZE_ADDRESS__
	{
		char *here = __builtin_frame_address(0);

		__asan_unpoison_memory_region(here - 256 * 1024, 256 * 1024);
	}
#endif
}

static void *victim_main(void *arg)
{
	(void)arg;
	pthread_cleanup_push(unpoison_dead_frames, NULL);
	if (async_cancel(how))
		pthread_setcanceltype(PTHREAD_CANCEL_ASYNCHRONOUS, NULL);
	victim = pthread_self();
	atomic_store(&victim_known, 1);
	value = access_page();
	atomic_store(&done, 1);
	pthread_testcancel();	/* the pending cancel: here, not inside ufvm */
	pthread_cleanup_pop(0);
	return NULL;
}

static void *later_main(void *arg)
{
	(void)arg;
	value = access_page();
	atomic_store(&later_done, 1);
	return NULL;
}

static struct ufvm *closing_vm;
static atomic_int closed;
static int close_err;

static void *close_main(void *arg)
{
	(void)arg;
	close_err = ufvm_close(closing_vm);
	atomic_store(&closed, 1);
	return NULL;
}

/*
 * Wait for *@v to be set: 3 s at most, or RACE_HUNG_US in a teeth run,
 * where a hang is what it looks for.  Return: true if it was set.
 */
static bool set_in_time(atomic_int *v, bool teeth)
{
	return race_wait(v, 1, teeth ? RACE_HUNG_US : 3000000u);
}

/* The scenario, in the child.  Return: its ST_* bits. */
static int scenario(const char *path, bool teeth)
{
	struct ufvm_config cfg;
	pthread_t t;
	struct ufvm *vm;
	void *res;
	int st = 0;

	if (ufvm_config_init(&cfg))
		return ST_SETUP;
	cfg.backend = how == SIGSEGV_BACKEND || how == SIGSEGV_ASYNC ? UFVM_BACKEND_SIGSEGV
								      : UFVM_BACKEND_UFFD;
	cfg.delivery = UFVM_DELIVERY_INTHREAD;	/* the sigsegv backend ignores it */
	cfg.readahead = 0;		/* every fill in the faulting thread */
	cfg.fault_around = 1;
	cfg.store_latency_us = 2000;	/* a nanosleep() in each store read */
	if (teeth)
		cfg.debug_flags |= UFVM_DEBUG_CANCEL_INSIDE;
	if (ufvm_open(&cfg, &vm))
		return ST_SETUP;
	if (how == PREAD ? ufvm_file_open(vm, path, UFVM_RDONLY, &file)
			 : ufvm_map(vm, path, 0, FILE_SIZE, UFVM_PROT_READ, 0, (void **)&map))
		return ST_SETUP;
	ufvm_debug_hook(vm, hook, NULL);
	if (pthread_create(&t, NULL, victim_main, NULL) || pthread_join(t, &res))
		return ST_SETUP;
	/* (glibc leaves the result NULL for a cancel acted on by pthread_setcancelstate()) */
	if ((res != PTHREAD_CANCELED && !(async_cancel(how) && !res && !atomic_load(&done))) ||
	    !atomic_load(&fired))
		return ST_SETUP;	/* the scenario did not happen */
	if (!atomic_load(&done))
		st |= ST_CANCELLED_INSIDE;
	else if (value != pattern_byte(SEED, PG * PAGE))
		st |= ST_WRONG;

	value = -1;
	if (pthread_create(&t, NULL, later_main, NULL))
		return st | ST_SETUP;
	if (!set_in_time(&later_done, teeth))
		return st | ST_HUNG;	/* nothing can be closed now */
	pthread_join(t, NULL);
	if (value != pattern_byte(SEED, PG * PAGE))
		st |= ST_WRONG;
	if (how == PREAD ? ufvm_file_close(file) : ufvm_unmap(vm, map, FILE_SIZE))
		st |= ST_CLOSE;
	closing_vm = vm;
	if (pthread_create(&t, NULL, close_main, NULL))
		return st | ST_SETUP;
	if (!set_in_time(&closed, teeth))
		return st | ST_HUNG;	/* it waits for a fault that is gone */
	pthread_join(t, NULL);
	if (close_err)
		st |= ST_CLOSE;
	return st;
}

/* ---- UNMAP_WAIT ---- */

static struct {
	struct ufvm *vm;
	void *a, *b;		/* two regions: the holder unmaps a, the victim b */
	atomic_int held, release, victim_tid, victim_done, holder_done, closed;
	int victim_err, close_err;
} uw;

static void hold_hook(void *arg, unsigned int point, uint64_t a, uint64_t b)
{
	(void)arg;
	(void)b;
	if (point != UFVM_HOOK_TAKEN_OUT || a != (uintptr_t)uw.a)
		return;
	atomic_store(&uw.held, 1);	/* mmap_lock held for writing */
	race_wait(&uw.release, 1, 20000000);
}

static void *holder_main(void *arg)
{
	(void)arg;
	ufvm_unmap(uw.vm, uw.a, FILE_SIZE);
	atomic_store(&uw.holder_done, 1);
	return NULL;
}

static void *closer_main(void *arg)
{
	(void)arg;
	uw.close_err = ufvm_close(uw.vm);
	atomic_store(&uw.closed, 1);
	return NULL;
}

static void *unmap_victim_main(void *arg)
{
	(void)arg;
	pthread_cleanup_push(unpoison_dead_frames, NULL);
	atomic_store(&uw.victim_tid, (int)syscall(SYS_gettid));
	uw.victim_err = ufvm_unmap(uw.vm, uw.b, FILE_SIZE);	/* waits for mmap_lock */
	atomic_store(&uw.victim_done, 1);
	pthread_testcancel();
	pthread_cleanup_pop(0);
	return NULL;
}

static int unmap_wait_scenario(const char *path, bool teeth)
{
	struct ufvm_config cfg;
	pthread_t h, v;
	void *res;
	int st = 0;

	if (ufvm_config_init(&cfg))
		return ST_SETUP;
	if (teeth)
		cfg.debug_flags |= UFVM_DEBUG_CANCEL_INSIDE;
	if (ufvm_open(&cfg, &uw.vm) ||
	    ufvm_map(uw.vm, path, 0, FILE_SIZE, UFVM_PROT_READ, 0, &uw.a) ||
	    ufvm_map(uw.vm, path, 0, FILE_SIZE, UFVM_PROT_READ, 0, &uw.b))
		return ST_SETUP;
	ufvm_debug_hook(uw.vm, hold_hook, NULL);
	if (pthread_create(&h, NULL, holder_main, NULL) || !race_wait(&uw.held, 1, 10000000))
		return ST_SETUP;
	if (pthread_create(&v, NULL, unmap_victim_main, NULL) ||
	    !race_wait_wchan(&uw.victim_tid, "futex", 10000000))
		return ST_SETUP;	/* the victim never waited for mmap_lock */
	pthread_cancel(v);
	race_sleep_us(20000);
	atomic_store(&uw.release, 1);
	if (pthread_join(v, &res) || res != PTHREAD_CANCELED)
		return ST_SETUP;
	if (!atomic_load(&uw.victim_done))
		st |= ST_CANCELLED_INSIDE;
	else if (uw.victim_err)
		st |= ST_CLOSE;
	if (!set_in_time(&uw.holder_done, teeth))
		return st | ST_HUNG;	/* the lock was left taken */
	pthread_join(h, NULL);
	ufvm_debug_hook(uw.vm, NULL, NULL);
	if (teeth) {
		/*
		 * Cancelled after the holder's unmap (it waited for the
		 * rwsem's mutex, no cancellation point, and met one inside
		 * later): the mutex is left taken, and the close hangs.
		 */
		if (pthread_create(&h, NULL, closer_main, NULL) ||
		    !set_in_time(&uw.closed, teeth))
			return st | ST_HUNG;
		return uw.close_err ? st | ST_CLOSE : st;
	}
	if (ufvm_close(uw.vm))
		st |= ST_CLOSE;
	return st;
}

/* Run the scenario in a child; kill it if it takes over 30 s.  Return: its status bits. */
static int run(enum how h, bool teeth)
{
	char path[TMPSTORE_PATH_MAX];
	int status = 0;
	pid_t pid;

	how = h;
	ut_store("c", FILE_SIZE, SEED, path);
	pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0)
		_exit(h == UNMAP_WAIT ? unmap_wait_scenario(path, teeth) : scenario(path, teeth));
	if (!ut_wait_child(pid, 30000, &status))
		cr_assert_fail("the child hung for 30 s (teeth %d)", teeth);
	cr_assert(WIFEXITED(status), "the child died of signal %d", WTERMSIG(status));
	cr_assert(!(WEXITSTATUS(status) & ST_SETUP), "the scenario did not happen (status %#x)",
		  WEXITSTATUS(status));
	return WEXITSTATUS(status);
}

static void nothing_held(enum how h)
{
	int st = run(h, false);

	/* An asynchronous cancel acts as the fault is done, before the access. */
	cr_assert(async_cancel(h) || !(st & ST_CANCELLED_INSIDE),
		  "the thread was cancelled inside ufvm: its access never completed");
	cr_assert(!(st & ST_HUNG), "an access to the page, or ufvm_close, hung after the cancel");
	cr_assert(!(st & ST_WRONG), "an access returned data not the file's");
	cr_assert(!(st & ST_CLOSE), "unmap or close failed after the cancel");
}

static void teeth(enum how h)
{
	int st = run(h, true);

	cr_assert(st & ST_CANCELLED_INSIDE, "with cancellation left on, the thread was not "
		  "cancelled inside ufvm (status %#x): the scenario has no teeth", st);
	cr_assert(st & ST_HUNG, "with cancellation left on, the page stayed usable "
		  "(status %#x): the test cannot see the bug", st);
}

static void need_uffd(void)
{
	struct ufvm_config cfg;

	assert_ok(ufvm_config_init(&cfg));
	if (cfg.backend == UFVM_BACKEND_SIGSEGV)
		cr_skip_test("UFVM_BACKEND=sigsegv: in-thread delivery is a userfaultfd mode");
}

Test(cancel, inthread_fault_holds_nothing, .timeout = 60)
{
	need_uffd();
	nothing_held(INTHREAD);
}

Test(cancel, inthread_fault_teeth, .timeout = 60)
{
	need_uffd();
	teeth(INTHREAD);
}

Test(cancel, sigsegv_fault_holds_nothing, .timeout = 60)
{
	nothing_held(SIGSEGV_BACKEND);
}

Test(cancel, sigsegv_fault_teeth, .timeout = 60)
{
	teeth(SIGSEGV_BACKEND);
}

Test(cancel, pread_holds_nothing, .timeout = 60)
{
	nothing_held(PREAD);
}

Test(cancel, pread_teeth, .timeout = 60)
{
	teeth(PREAD);
}

Test(cancel, unmap_waiting_for_mmap_lock_holds_nothing, .timeout = 60)
{
	nothing_held(UNMAP_WAIT);
}

Test(cancel, unmap_waiting_for_mmap_lock_teeth, .timeout = 60)
{
	teeth(UNMAP_WAIT);
}

Test(cancel, inthread_fault_async_holds_nothing, .timeout = 60)
{
	need_uffd();
	nothing_held(INTHREAD_ASYNC);
}

Test(cancel, inthread_fault_async_teeth, .timeout = 60)
{
	need_uffd();
	teeth(INTHREAD_ASYNC);
}

Test(cancel, sigsegv_fault_async_holds_nothing, .timeout = 60)
{
	nothing_held(SIGSEGV_ASYNC);
}

Test(cancel, sigsegv_fault_async_teeth, .timeout = 60)
{
	teeth(SIGSEGV_ASYNC);
}
