/* SPDX-License-Identifier: MIT */
/*
 * test_genuine_segv.c - a genuine SIGSEGV on a ufvm region goes to the
 * application's handler, and ufvm keeps serving faults after that handler
 * recovered.
 *
 * Invariant: passing a fault on never takes the signal away from ufvm.
 * The application installs a SIGSEGV handler before ufvm_open() (the
 * tests' sigcatch handler, which siglongjmps back).  A write to a
 * read-only region must reach it with the signal's own siginfo (the exact
 * address, SEGV_ACCERR); afterwards, pages never touched must still be
 * served, and a second genuine fault must reach the handler again.  Teeth:
 * with the sigsegv backend passing the fault on by putting the saved
 * action back with sigaction(), the read of an untouched page goes to the
 * application's handler as a SIGSEGV instead of being served.
 *
 * With the userfaultfd backend the kernel sends the genuine SIGSEGV to the
 * application directly; the test runs there too.
 */
#include "check.h"

#define FILE_SIZE	(16 * PAGE)
#define SEED		0x5eed0a00

Test(genuine_segv, app_handler_recovers_and_ufvm_still_serves, .timeout = 30)
{
	char path[TMPSTORE_PATH_MAX];
	struct sigbus_info info;
	struct ufvm *vm;
	uint8_t *m, v = 0;
	int round;

	sigcatch_install();	/* the application's handler, before ufvm_open */
	ut_store("a", FILE_SIZE, SEED, path);
	vm = ut_open(NULL);
	m = ut_map(vm, path, 0, FILE_SIZE, UFVM_PROT_READ);
	for (round = 0; round < 2; round++) {
		uint8_t *w = m + round * PAGE + 17;
		uint64_t pg = 4 + round * 5;

		cr_assert_eq(sigcatch_read(w, &v, &info), 0);
		cr_assert_eq(sigcatch_write(w, 'x', &info), SIGSEGV,
			     "round %d: a write to a read-only region did not get SIGSEGV", round);
		cr_assert_eq(info.addr, (void *)w, "round %d: si_addr %p, want %p", round,
			     info.addr, (void *)w);
		cr_assert_eq(info.code, SEGV_ACCERR, "round %d: si_code %d", round, info.code);
		cr_assert_eq(sigcatch_read(m + pg * PAGE, &v, &info), 0,
			     "round %d: page %llu (never touched) got signal %d: ufvm no "
			     "longer serves faults", round, (unsigned long long)pg, info.sig);
		cr_assert_eq(v, pattern_byte(SEED, pg * PAGE));
	}
	ut_unmap(vm, m, FILE_SIZE);
	ut_close(vm);
}
