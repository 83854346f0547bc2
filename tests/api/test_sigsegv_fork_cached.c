/* SPDX-License-Identifier: MIT */
/*
 * test_sigsegv_fork_cached.c - a fork()ed child gets SIGSEGV on a page
 * the parent has mapped, read or written, and cannot change the parent's
 * frames (include/ufvm.h, ufvm_map), on every backend.
 *
 * Invariant: no mapping of a region is inherited, including the ones the
 * sigsegv backend makes after ufvm_map() (each install and poison is a
 * new mmap over the region's reservation, which does not carry the
 * reservation's MADV_DONTFORK).  The parent reads every page (all cached
 * and installed) and writes page 3 (installed writable); a child then
 * reads page 10, and another writes page 3.  Both must die of SIGSEGV,
 * and the parent must still see its own byte.  test_fork.c touches pages
 * too, but its child's write hits a page installed read-only, which
 * faults into ufvm's handler and is declined there: the inherited
 * mappings go unseen.  Teeth: without MADV_DONTFORK on the installs, the
 * first child reads 'p' and exits, and the second one's byte reaches the
 * parent's page.
 *
 * install_window_fork: a fork() that lands between a sigsegv install's
 * mmap() and its MADV_DONTFORK (UFVM_HOOK_SEGV_INSTALLED holds the
 * faulting thread there while the main thread forks) still leaves the
 * child nothing of the region: the child hook replaces what it inherited
 * over the region's range.  Teeth: with UFVM_DEBUG_FORK_NOREPLACE it
 * reserves only what is free, and the child reads the parent's page.
 * A fork() cannot always land in the window: the install runs in an RCU
 * read-side section, and a fork() that finds a grace period under way
 * (liburcu's worker freeing what the set-up queued) waits in liburcu's
 * fork hooks until the hook lets the install go on.  Such a run forked
 * after the window and tells nothing, in either direction: it is run
 * again (a test that passed that way, or whose teeth failed, 1 run in
 * ~100 under ASan).
 *
 * The SIGSEGV action is the default (set before ufvm_open, which saves
 * it), so that a child dies of the signal rather than being reported by
 * a sanitizer's handler.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "race.h"

#define FILE_SIZE	(32 * PAGE)
#define SEED		0x5eed1a00
#define READ_PAGE	10
#define WRITE_PAGE	3

/* How the child is made: glibc's fork() runs atfork handlers, these do not. */
enum how { BY_FORK, BY_RAW_SYSCALL };

/* Run @touch(@m) in a child made @how; return its wait status. */
static int in_child(enum how how, void (*touch)(uint8_t *m), uint8_t *m)
{
	int status;
	pid_t pid = how == BY_FORK ? fork() : (pid_t)syscall(SYS_fork);

	cr_assert(pid >= 0);
	if (pid == 0) {
		touch(m);
		_exit(0);
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	return status;
}

static void child_reads(uint8_t *m)
{
	volatile uint8_t v = *(volatile uint8_t *)(m + READ_PAGE * PAGE);

	(void)v;
}

static void child_writes(uint8_t *m)
{
	*(volatile uint8_t *)(m + WRITE_PAGE * PAGE) = 'c';
}

#define assert_killed_by_segv(status, what)					\
	cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV,		\
		  "the child that %s was not killed by SIGSEGV (%s %d)", what,	\
		  WIFSIGNALED(status) ? "signal" : "exit status",		\
		  WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status))

static void cached_pages_not_inherited(enum how how, const char *name)
{
	char path[TMPSTORE_PATH_MAX];
	struct ufvm *vm;
	uint8_t *m;
	int status;

	signal(SIGSEGV, SIG_DFL);
	ut_store(name, FILE_SIZE, SEED, path);
	vm = ut_open(NULL);
	m = ut_map(vm, path, 0, FILE_SIZE, UFVM_PROT_READ | UFVM_PROT_WRITE);
	for (int pg = 0; pg < 32; pg++)	/* every page cached and mapped */
		cr_assert_eq(*(volatile uint8_t *)(m + pg * PAGE), pattern_byte(SEED, pg * PAGE));
	*(volatile uint8_t *)(m + WRITE_PAGE * PAGE) = 'p';	/* mapped writable */

	status = in_child(how, child_reads, m);
	assert_killed_by_segv(status, "read a cached page");
	status = in_child(how, child_writes, m);
	assert_killed_by_segv(status, "wrote a page the parent wrote");
	cr_assert_eq(*(volatile uint8_t *)(m + WRITE_PAGE * PAGE), 'p',
		     "the child's write reached the parent's page");
	cr_assert_eq(*(volatile uint8_t *)(m + READ_PAGE * PAGE),
		     pattern_byte(SEED, READ_PAGE * PAGE));
	ut_unmap(vm, m, FILE_SIZE);
	ut_close(vm);
}

Test(sigsegv_fork_cached, child_of_fork_gets_sigsegv, .timeout = 30)
{
	cached_pages_not_inherited(BY_FORK, "a");
}

/* A child made without atfork handlers (a raw fork system call, _Fork()). */
Test(sigsegv_fork_cached, child_of_raw_fork_gets_sigsegv, .timeout = 30)
{
	cached_pages_not_inherited(BY_RAW_SYSCALL, "b");
}

struct window {
	uint8_t *m;
	atomic_int armed, in, forked;
	atomic_int late;	/* the hook gave up waiting for the fork */
};

/* Hold the first install in the window until the main thread has forked. */
static void window_hook(void *arg, unsigned int point, uint64_t a, uint64_t b)
{
	struct window *w = arg;

	(void)a;
	(void)b;
	if (point != UFVM_HOOK_SEGV_INSTALLED || !atomic_exchange(&w->armed, 0))
		return;
	atomic_store(&w->in, 1);
	if (!race_wait(&w->forked, 1, 1000000))
		atomic_store(&w->late, 1);
}

static void *touch_page(void *arg)
{
	struct window *w = arg;

	(void)*(volatile uint8_t *)(w->m + READ_PAGE * PAGE);	/* installs it */
	return NULL;
}

/*
 * Return: the wait status of a child forked while an install waited in
 * its window, or -1 if the fork came after the window (see above).
 */
static int fork_in_window_once(unsigned int debug)
{
	char path[TMPSTORE_PATH_MAX];
	struct window w = { 0 };
	struct ufvm_config cfg;
	struct ufvm *vm;
	pthread_t th;
	int status;
	pid_t pid;

	signal(SIGSEGV, SIG_DFL);
	ut_store("w", FILE_SIZE, SEED, path);
	assert_ok(ufvm_config_init(&cfg));
	cfg.backend = UFVM_BACKEND_SIGSEGV;	/* the backend whose installs are mmap()s */
	cfg.fault_around = 1;
	cfg.debug_flags |= debug;
	vm = ut_open(&cfg);
	w.m = ut_map(vm, path, 0, FILE_SIZE, UFVM_PROT_READ);
	assert_ok(ufvm_debug_hook(vm, window_hook, &w));
	atomic_store(&w.armed, 1);
	cr_assert_eq(pthread_create(&th, NULL, touch_page, &w), 0);
	cr_assert(race_wait(&w.in, 1, 5000000), "no install came");
	pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		(void)*(volatile uint8_t *)(w.m + READ_PAGE * PAGE);
		_exit(7);	/* it read the parent's page */
	}
	atomic_store(&w.forked, 1);
	pthread_join(th, NULL);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	assert_ok(ufvm_debug_hook(vm, NULL, NULL));
	ut_unmap(vm, w.m, FILE_SIZE);
	ut_close(vm);
	return atomic_load(&w.late) ? -1 : status;
}

#define WINDOW_TRIES	10

/* Return: the wait status of a child forked inside an install's window. */
static int fork_in_window(unsigned int debug)
{
	int i, status = -1;

	for (i = 0; i < WINDOW_TRIES && status == -1; i++)
		status = fork_in_window_once(debug);
	cr_assert_neq(status, -1, "no fork() landed inside an install's window in %d runs",
		      WINDOW_TRIES);
	return status;
}

Test(sigsegv_fork_cached, install_window_fork_gets_sigsegv, .timeout = 30)
{
	int status = fork_in_window(0);

	assert_killed_by_segv(status, "was forked inside an install's window");
}

Test(sigsegv_fork_cached, teeth_fork_noreplace_inherits_the_install, .timeout = 30)
{
	int status = fork_in_window(UFVM_DEBUG_FORK_NOREPLACE);

	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 7,
		  "the child should have read the parent's page it inherited (%s %d)",
		  WIFSIGNALED(status) ? "signal" : "exit status",
		  WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
}
