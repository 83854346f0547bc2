/* SPDX-License-Identifier: MIT */
/*
 * test_fork.c - a fork()ed child that touches a ufvm region gets SIGSEGV
 * (include/ufvm.h, ufvm_map), on every backend.
 *
 * Invariant: regions are not inherited (MADV_DONTFORK), and nothing in
 * the child serves them.  With the sigsegv backend the child inherits
 * ufvm's SIGSEGV handler and its list of regions; it must decline faults
 * in a process other than the one that created the backend, however the
 * child was made (glibc's fork(), or a raw system call that runs no atfork
 * handler).  With glibc's fork() the child keeps the regions' ranges
 * (PROT_NONE), so that nothing it maps lands there first: a child's thread
 * stack or allocator chunk there made a touch succeed (1 run in ~12 of the
 * ASan tree under ctest -j2).  And ufvm_close() in a child returns
 * -ECHILD, touching nothing.  Teeth:
 * without that check the child reads the parent's cached page and writes
 * into the parent's frame (a write the parent never writes back), exits
 * 0, and the parent sees the child's byte.
 *
 * The test's SIGSEGV action is the default (set before ufvm_open, which
 * saves it), so that the child dies of the signal rather than being
 * reported by a sanitizer's handler.
 */
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "race.h"

#define FILE_SIZE	(32 * PAGE)
#define SEED		0x5eed0c00

/* How the child is made: glibc's fork() runs atfork handlers, these do not. */
enum how { BY_FORK, BY_RAW_SYSCALL };

static pid_t make_child(enum how how)
{
	return how == BY_FORK ? fork() : (pid_t)syscall(SYS_fork);
}

static void child_touches(enum how how)
{
	char path[TMPSTORE_PATH_MAX];
	struct ufvm *vm;
	uint8_t *m;
	int status;
	pid_t pid;

	signal(SIGSEGV, SIG_DFL);
	ut_store("a", FILE_SIZE, SEED, path);
	vm = ut_open(NULL);
	m = ut_map(vm, path, 0, FILE_SIZE, UFVM_PROT_READ | UFVM_PROT_WRITE);
	for (int pg = 0; pg < 32; pg++)	/* every page cached in the parent */
		cr_assert_eq(*(volatile uint8_t *)(m + pg * PAGE), pattern_byte(SEED, pg * PAGE));

	pid = make_child(how);
	cr_assert(pid >= 0);
	if (pid == 0) {
		volatile uint8_t v;

		/*
		 * The range is kept (glibc's fork runs ufvm's handler), so no
		 * mapping of the child's can land there.
		 */
		if (how == BY_FORK && mmap(m, FILE_SIZE, PROT_READ | PROT_WRITE,
					   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
					   -1, 0) != MAP_FAILED)
			_exit(3);
		v = *(volatile uint8_t *)(m + 10 * PAGE);
		(void)v;
		*(volatile uint8_t *)(m + 20 * PAGE) = 'Z';
		_exit(0);
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV,
		  "the child was not killed by SIGSEGV (%s %d)",
		  WIFSIGNALED(status) ? "signal" : "exit status",
		  WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
	cr_assert_eq(*(volatile uint8_t *)(m + 20 * PAGE), pattern_byte(SEED, 20 * PAGE),
		     "the child's write reached the parent's page");
	ut_unmap(vm, m, FILE_SIZE);
	ut_close(vm);
}

Test(fork, child_touching_a_region_gets_sigsegv, .timeout = 30)
{
	child_touches(BY_FORK);
}

/* A child made without atfork handlers (a raw fork system call, _Fork()). */
Test(fork, raw_child_touching_a_region_gets_sigsegv, .timeout = 30)
{
	child_touches(BY_RAW_SYSCALL);
}

/*
 * ufvm_close() in a child leaves the parent's instance alone: its locks
 * may have been held by the parent's threads at the fork.
 */
Test(fork, close_in_a_child_is_echild, .timeout = 30)
{
	char path[TMPSTORE_PATH_MAX];
	struct ufvm *vm;
	uint8_t *m;
	int status;
	pid_t pid;

	ut_store("b", FILE_SIZE, SEED, path);
	vm = ut_open(NULL);
	m = ut_map(vm, path, 0, FILE_SIZE, UFVM_PROT_READ);
	cr_assert_eq(*(volatile uint8_t *)m, pattern_byte(SEED, 0));
	pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0)
		_exit(ufvm_close(vm) == -ECHILD ? 0 : 1);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		  "ufvm_close in the child did not return -ECHILD (%s %d)",
		  WIFSIGNALED(status) ? "signal" : "exit status",
		  WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
	cr_assert_eq(*(volatile uint8_t *)(m + 5 * PAGE), pattern_byte(SEED, 5 * PAGE));
	ut_unmap(vm, m, FILE_SIZE);
	ut_close(vm);
}

/*
 * A child of fork() that makes its own instance: maps, unmaps (which frees
 * the region after a grace period, by call_rcu()) and closes, and its
 * close returns.  liburcu's call_rcu() worker is a thread of the parent,
 * so not in the child: without fork handlers that make the child one, the
 * callbacks queued in the child never run and ufvm_close()'s rcu_barrier()
 * waits for them for ever.  The parent has used ufvm first, so that the
 * worker exists when it forks.
 */
static int child_instance(const char *path)
{
	struct ufvm *vm;
	uint8_t *m;
	int k;

	alarm(20);	/* a hang dies of SIGALRM, reported below */
	if (ufvm_open(NULL, &vm))
		return 2;
	for (k = 0; k < 3; k++) {
		if (ufvm_map(vm, path, 0, FILE_SIZE, UFVM_PROT_READ, 0, (void **)&m))
			return 3;
		if (*(volatile uint8_t *)(m + 7 * PAGE) != pattern_byte(SEED, 7 * PAGE))
			return 4;
		if (ufvm_unmap(vm, m, FILE_SIZE))
			return 5;
	}
	return ufvm_close(vm) ? 6 : 0;
}

Test(fork, child_makes_and_closes_its_own_instance, .timeout = 60)
{
	char path[TMPSTORE_PATH_MAX];
	struct ufvm *vm;
	uint8_t *m;
	int status;
	pid_t pid;

	ut_store("c", FILE_SIZE, SEED, path);
	vm = ut_open(NULL);
	m = ut_map(vm, path, 0, FILE_SIZE, UFVM_PROT_READ);
	cr_assert_eq(*(volatile uint8_t *)m, pattern_byte(SEED, 0));
	ut_unmap(vm, m, FILE_SIZE);
	m = ut_map(vm, path, 0, FILE_SIZE, UFVM_PROT_READ);
	/*
	 * The unmap frees its region by call_rcu() a grace period later:
	 * let that free run before the fork.  This toolchain's ASan
	 * allocator is not locked across fork(): a parent thread inside
	 * malloc() or free() at the fork leaves an allocator lock held in
	 * the child, whose next allocation of that size waits for ever (the
	 * child hung in 10 of 1200 runs, three at a time, every thread in
	 * __sanitizer::Mutex::Lock; glibc's malloc takes its locks around
	 * fork, so release builds are not exposed).
	 */
	race_sleep_us(50000);
	pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0)
		_exit(child_instance(path));
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		  "the child's own instance failed (%s %d%s)",
		  WIFSIGNALED(status) ? "signal" : "exit status",
		  WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status),
		  WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM ? ": it hung" : "");
	cr_assert_eq(*(volatile uint8_t *)(m + 5 * PAGE), pattern_byte(SEED, 5 * PAGE));
	ut_unmap(vm, m, FILE_SIZE);
	ut_close(vm);
}
