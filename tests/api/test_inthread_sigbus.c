/* SPDX-License-Identifier: MIT */
/*
 * test_inthread_sigbus.c - in-thread delivery's SIGBUS handler and the
 * application's SIGBUS action.
 *
 * reopen_after_app_handler: ufvm_close() of the last in-thread instance
 * gives SIGBUS back, and the next ufvm_open() puts ufvm's handler in
 * front of the action the application installed in between.  A read of
 * a page of the new instance, with that action armed to catch any
 * SIGBUS, must be served by ufvm.  Teeth: if the handler is never
 * reinstalled, the application's action gets ufvm's fault.
 *
 * Only with the userfaultfd backend (in-thread delivery is one of its
 * modes); the tests ask for it whatever UFVM_DELIVERY says.
 */
#include "check.h"

#define FILE_SIZE	(16 * PAGE)
#define SEED		0x5eed0e00

static struct ufvm *open_inthread(void)
{
	struct ufvm_config cfg;

	assert_ok(ufvm_config_init(&cfg));
	if (cfg.backend == UFVM_BACKEND_SIGSEGV)
		cr_skip_test("UFVM_BACKEND=sigsegv: in-thread delivery is a userfaultfd mode");
	cfg.backend = UFVM_BACKEND_UFFD;
	cfg.delivery = UFVM_DELIVERY_INTHREAD;
	return ut_open(&cfg);
}

Test(inthread_sigbus, reopen_after_app_handler, .timeout = 30)
{
	char path[TMPSTORE_PATH_MAX];
	struct sigbus_info info;
	struct ufvm *vm;
	uint8_t *m, v = 0;

	ut_store("a", FILE_SIZE, SEED, path);
	vm = open_inthread();
	m = ut_map(vm, path, 0, FILE_SIZE, UFVM_PROT_READ);
	cr_assert_eq(*(volatile uint8_t *)(m + 2 * PAGE), pattern_byte(SEED, 2 * PAGE));
	ut_unmap(vm, m, FILE_SIZE);
	ut_close(vm);

	sigbus_install();	/* the application's action, between the instances */
	vm = open_inthread();
	m = ut_map(vm, path, 0, FILE_SIZE, UFVM_PROT_READ);
	cr_assert_eq(sigbus_read(m + 5 * PAGE, &v, &info), 0,
		     "the application's SIGBUS action got ufvm's fault (si_code %d)", info.code);
	cr_assert_eq(v, pattern_byte(SEED, 5 * PAGE));
	ut_unmap(vm, m, FILE_SIZE);
	ut_close(vm);
}
