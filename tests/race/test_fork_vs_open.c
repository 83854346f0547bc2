/* SPDX-License-Identifier: MIT */
/*
 * test_fork_vs_open.c - fork() while another thread opens and closes
 * instances: the child can open and close an instance of its own
 * (include/ufvm.h: "A child of fork() may open and close instances").
 *
 * Race: ufvm_open() and ufvm_close() hold a pager lock while they install
 * or give back the process's signal handler: the sigsegv backend's list of
 * backends (SIGSEGV), the in-thread delivery's list of instances (SIGBUS).
 * A child forked meanwhile inherits that lock held by a thread it does not
 * have, and hangs in its first ufvm_open() of that kind.  The fork hooks
 * hold those locks across fork() (vm_fork_hold(), vm/thread.c).  To open
 * the window, this file's sigaction() (which the library's calls reach)
 * sleeps SLOW_US in the opening thread before it installs or restores a
 * SIGSEGV or SIGBUS action, and the main thread forks during that sleep;
 * each child opens and closes an instance of the same kind within
 * CHILD_US, or is killed and counted hung.  No child may hang.  Teeth: with
 * UFVM_DEBUG_FORK_NO_HOLD on the opening thread's instances, the fork
 * holds nothing, and children hang.
 *
 * Race 2: a child forked while an instance is being made has two caches
 * beside it once it opens its own (the parent's, made after the fork, and
 * its own): it must not write ahead (docs/architecture.md, "Write-ahead").
 * ufvm_open() counts its instance open from its start, so the fork sees
 * it.  Each child opens an instance with write_ahead and stores into the
 * pages of a file in order: no page may be written ahead.  Teeth:
 * UFVM_DEBUG_COUNT_LATE on the opening thread's instances counts them
 * only once made, and a child forked inside the window writes ahead.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "race.h"

#define FORKS		8
#define SLOW_US		20000u			/* the opening thread's sigaction() sleeps */
#define CHILD_US	(5 * 1000000u)		/* a child opens and closes by then */
#define WAIT_US		(10 * 1000000u)

#define AHEAD_PAGES	64			/* race 2's file */

enum { CHILD_OK = 0, CHILD_OPEN_FAILED = 3, CHILD_WROTE_AHEAD = 4 };

static int (*real_sigaction)(int, const struct sigaction *, struct sigaction *);
static int (*real_pthread_create)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);
static __thread bool slow_thread;	/* this thread's sigaction() sleeps */
static __thread bool opening;		/* this thread is in ufvm_open() */
static char ahead_path[TMPSTORE_PATH_MAX];	/* race 2: the children's file, or "" */
static atomic_int in_window;		/* a slow sigaction() sleeps now */
static atomic_int stop;
static atomic_int open_failed;		/* the opener's ufvm_open() failed */

__attribute__((constructor)) static void find_sigaction(void)
{
	real_sigaction = (int (*)(int, const struct sigaction *, struct sigaction *))
		dlsym(RTLD_NEXT, "sigaction");
	real_pthread_create = (int (*)(pthread_t *, const pthread_attr_t *, void *(*)(void *),
				       void *))dlsym(RTLD_NEXT, "pthread_create");
}

/* Interposes libc's for the whole process; only the opening thread sleeps (race 1). */
int sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
	if (slow_thread && !ahead_path[0] && act && (sig == SIGSEGV || sig == SIGBUS)) {
		atomic_store(&in_window, 1);
		race_sleep_us(SLOW_US);
	}
	return real_sigaction(sig, act, old);
}

/*
 * Race 2's window: the threads an instance starts while it is made (the
 * cache's), with no lock held that fork() waits for (the signal handlers'
 * are: a fork inside race 1's window completes only once that sigaction()
 * is done, and by then the instance may be made).
 */
int pthread_create(pthread_t *th, const pthread_attr_t *attr, void *(*fn)(void *), void *arg)
{
	if (slow_thread && opening && ahead_path[0]) {
		atomic_store(&in_window, 1);
		race_sleep_us(SLOW_US);
	}
	return real_pthread_create(th, attr, fn, arg);
}

/* The kind of instance under test: the sigsegv backend, or in-thread delivery. */
static void kind_config(struct ufvm_config *cfg, bool inthread, uint64_t debug)
{
	cr_assert(ufvm_config_init(cfg) == 0);
	if (inthread) {
		cfg->backend = UFVM_BACKEND_UFFD;
		cfg->delivery = UFVM_DELIVERY_INTHREAD;
	} else {
		cfg->backend = UFVM_BACKEND_SIGSEGV;
	}
	cfg->debug_flags |= debug;
}

static struct ufvm_config opener_cfg;

/* Open and close instances, slowly, until told to stop. */
static void *opener(void *arg)
{
	(void)arg;
	slow_thread = true;
	while (!atomic_load(&stop)) {
		struct ufvm *vm;

		opening = true;
		if (ufvm_open(&opener_cfg, &vm)) {
			atomic_store(&open_failed, 1);
			break;
		}
		opening = false;
		ufvm_close(vm);
	}
	return NULL;
}

/*
 * Race 2's child, with @vm open: store into the pages of ahead_path in
 * order.  Return: CHILD_WROTE_AHEAD if any page was written ahead.
 */
static int child_stores(struct ufvm *vm)
{
	struct ufvm_stats st;
	void *addr;
	uint8_t *m;

	if (ufvm_map(vm, ahead_path, 0, AHEAD_PAGES * PAGE, UFVM_PROT_READ | UFVM_PROT_WRITE,
		     UFVM_MAP_SHARED, &addr))
		return CHILD_OPEN_FAILED;
	m = addr;
	for (unsigned int pg = 0; pg < AHEAD_PAGES; pg++)
		m[pg * PAGE] = (uint8_t)pg;
	if (ufvm_stats(vm, &st) || ufvm_unmap(vm, addr, AHEAD_PAGES * PAGE))
		return CHILD_OPEN_FAILED;
	return st.counters[UFVM_CTR_WRITEAHEAD_PAGES] ? CHILD_WROTE_AHEAD : CHILD_OK;
}

/* The child: an instance of the kind, opened (and used, in race 2) and closed. */
static int child(const struct ufvm_config *cfg)
{
	struct ufvm *vm;
	int ret = CHILD_OK;

	if (ufvm_open(cfg, &vm))
		return CHILD_OPEN_FAILED;
	if (ahead_path[0])
		ret = child_stores(vm);
	if (ufvm_close(vm))
		ret = CHILD_OPEN_FAILED;
	return ret;
}

static unsigned int wrote_ahead;	/* race 2: children that wrote ahead */

/*
 * Wait for child @pid until CHILD_US (RACE_HUNG_US in a @teeth run); kill
 * it then.  Return: hung.
 */
static bool child_hung(pid_t pid, bool teeth)
{
	uint64_t end = race_now_us() + (teeth ? RACE_HUNG_US : CHILD_US);
	int status;

	for (;;) {
		pid_t r = waitpid(pid, &status, WNOHANG);

		cr_assert(r >= 0, "waitpid: %s", strerror(errno));
		if (r == pid)
			break;
		if (race_now_us() >= end) {
			kill(pid, SIGKILL);
			cr_assert(waitpid(pid, &status, 0) == pid);
			return true;
		}
		race_sleep_us(1000);
	}
	cr_assert(WIFEXITED(status), "a child died of signal %d", WTERMSIG(status));
	wrote_ahead += WEXITSTATUS(status) == CHILD_WROTE_AHEAD;
	cr_assert(WEXITSTATUS(status) == CHILD_OK || WEXITSTATUS(status) == CHILD_WROTE_AHEAD,
		  "a child could not open or use an instance");
	return false;
}

/*
 * Fork FORKS times inside the opener's window (with UFVM_DEBUG_FORK_NO_HOLD
 * in @debug, until a child hangs).  Return: children hung.
 */
static unsigned int forks_vs_open(bool inthread, uint64_t debug)
{
	struct ufvm_config cfg;
	unsigned int hung = 0;
	struct ufvm *probe;
	pthread_t th;

	kind_config(&cfg, inthread, 0);
	cfg.write_ahead = ahead_path[0] ? AHEAD_PAGES : 0;
	wrote_ahead = 0;
	if (ufvm_open(&cfg, &probe))
		cr_skip_test("no instance of this kind here (userfaultfd with SIGBUS delivery)");
	ufvm_close(probe);
	kind_config(&opener_cfg, inthread, debug);
	atomic_store(&stop, 0);
	atomic_store(&open_failed, 0);
	cr_assert(pthread_create(&th, NULL, opener, NULL) == 0);
	for (int i = 0; i < FORKS && !(hung && (debug & UFVM_DEBUG_FORK_NO_HOLD)); i++) {
		pid_t pid;

		atomic_store(&in_window, 0);
		cr_assert(race_wait(&in_window, 1, WAIT_US), "the opener never reached sigaction()%s",
			  atomic_load(&open_failed) ? " (its ufvm_open failed)" : "");
		pid = fork();
		cr_assert(pid >= 0);
		if (pid == 0)
			_exit(child(&cfg));
		hung += child_hung(pid, debug & UFVM_DEBUG_FORK_NO_HOLD);
	}
	atomic_store(&stop, 1);
	cr_assert(race_join(th, WAIT_US) == 0, "the opener did not stop");
	cr_assert_eq(atomic_load(&open_failed), 0, "the opener's ufvm_open failed");
	return hung;
}

Test(fork_vs_open, sigsegv_child_opens_its_own, .timeout = 60)
{
	unsigned int hung = forks_vs_open(false, 0);

	cr_assert_eq(hung, 0, "%u of %d children hung in ufvm_open()", hung, FORKS);
}

Test(fork_vs_open, inthread_child_opens_its_own, .timeout = 60)
{
	unsigned int hung = forks_vs_open(true, 0);

	cr_assert_eq(hung, 0, "%u of %d children hung in ufvm_open()", hung, FORKS);
}

Test(fork_vs_open, teeth_sigsegv_no_hold_hangs_children, .timeout = 60)
{
	unsigned int hung = forks_vs_open(false, UFVM_DEBUG_FORK_NO_HOLD);

	cr_assert_gt(hung, 0, "no child hung though forks held nothing");
}

Test(fork_vs_open, teeth_inthread_no_hold_hangs_children, .timeout = 60)
{
	unsigned int hung = forks_vs_open(true, UFVM_DEBUG_FORK_NO_HOLD);

	cr_assert_gt(hung, 0, "no child hung though forks held nothing");
}

/*
 * Under AddressSanitizer a child of race 2 may hang in the sanitizer's
 * allocator, on a lock of the sanitizer's: race 2 forks while the parent
 * starts threads, whose start-up allocates under the allocator's lock,
 * and GCC 12's runtime does not hold that lock across fork() (the child's
 * threads all wait for it: one child of 8 in 2 of 39 runs beside two other
 * copies, and once in a whole ASan pass): two of 8 are let pass there.
 * The release passes check that no child hangs.
 */
#ifdef __SANITIZE_ADDRESS__
#define RACE2_HANG_OK	true
#else
#define RACE2_HANG_OK	false
#endif

/* Race 2: forks inside an instance's open, each child writing in order. */
static unsigned int children_writing_ahead(uint64_t debug)
{
	unsigned int hung;

	ut_store("ahead", AHEAD_PAGES * PAGE, 1, ahead_path);
	hung = forks_vs_open(false, debug);
	cr_assert(hung == 0 || (RACE2_HANG_OK && hung <= 2), "%u of %d children hung",
		  hung, FORKS);
	return wrote_ahead;
}

Test(fork_vs_open, child_of_a_fork_inside_open_writes_nothing_ahead, .timeout = 60)
{
	unsigned int n = children_writing_ahead(0);

	cr_assert_eq(n, 0, "%u of %d children forked while an instance was being made "
		     "wrote ahead beside it", n, FORKS);
}

Test(fork_vs_open, teeth_count_late_children_write_ahead, .timeout = 60)
{
	cr_assert_gt(children_writing_ahead(UFVM_DEBUG_COUNT_LATE), 0,
		     "no child wrote ahead though instances were counted only once made");
}
