/* SPDX-License-Identifier: MIT */
/*
 * test_fork.c - a fork()ed child that touches a ufvm region gets SIGSEGV
 * (include/ufvm.h, ufvm_map), on every backend.
 *
 * Invariant: regions are not inherited (MADV_DONTFORK), and nothing in
 * the child serves them.  With the sigsegv backend the child inherits
 * ufvm's SIGSEGV handler and its list of regions; it must decline faults
 * in a process other than the one that created the backend.  Teeth:
 * without that check the child reads the parent's cached page and writes
 * into the parent's frame (a write the parent never writes back), exits
 * 0, and the parent sees the child's byte.
 *
 * The test's SIGSEGV action is the default (set before ufvm_open, which
 * saves it), so that the child dies of the signal rather than being
 * reported by a sanitizer's handler.
 */
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

#define FILE_SIZE	(32 * PAGE)
#define SEED		0x5eed0c00

Test(fork, child_touching_a_region_gets_sigsegv, .timeout = 30)
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

	pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		volatile uint8_t v = *(volatile uint8_t *)(m + 10 * PAGE);

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
