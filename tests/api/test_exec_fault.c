/* SPDX-License-Identifier: MIT */
/*
 * test_exec_fault.c - executing a mapped page of a writable region gets
 * SIGSEGV; ufvm does not retry it for ever.
 *
 * Invariant: a fault ufvm cannot serve is passed on, whatever the page's
 * state.  ufvm never maps PROT_EXEC, so a call into a region faults on a
 * page that is mapped readable (clean) or writable (dirty).  With the
 * sigsegv backend the handler does not know the access type: the fault
 * on a page mapped writable looks like a race with an install and is
 * retried; it must be retried once, and the same fault again at the same
 * address, with no change to the mapping since, is genuine and goes to
 * the application's SIGSEGV handler (installed before ufvm_open()).  Teeth:
 * without that rule on the writable path the calling thread faults for
 * ever and the join times out.
 *
 * With the userfaultfd backend the kernel raises the SIGSEGV; the test
 * runs there too.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdatomic.h>

#include "check.h"
#include "race.h"

#define FILE_SIZE	(16 * PAGE)
#define SEED		0x5eed0b00
#define JOIN_US		(5 * 1000000u)

static __thread sigjmp_buf jb;
static __thread volatile sig_atomic_t armed;
static struct sigaction prev;

static void on_segv(int sig, siginfo_t *si, void *uc)
{
	if (armed) {
		armed = 0;
		siglongjmp(jb, 1);
	}
	/* Not ours: as without this handler. */
	if ((prev.sa_flags & SA_SIGINFO) && prev.sa_sigaction) {
		prev.sa_sigaction(sig, si, uc);
		return;
	}
	signal(sig, SIG_DFL);
}

struct call {
	uint8_t *page;
	atomic_int caught;
};

static void *caller(void *arg)
{
	struct call *c = arg;

	if (!sigsetjmp(jb, 1)) {
		armed = 1;
		((void (*)(void))c->page)();	/* faults: the page is not executable */
		armed = 0;
	} else {
		atomic_store(&c->caught, 1);
	}
	return NULL;
}

static void run(bool dirty)
{
	char path[TMPSTORE_PATH_MAX];
	struct sigaction sa;
	struct call c = { 0 };
	struct ufvm *vm;
	pthread_t th;
	uint8_t *m;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_segv;
	sa.sa_flags = SA_SIGINFO | SA_NODEFER;
	sigemptyset(&sa.sa_mask);
	cr_assert(sigaction(SIGSEGV, &sa, &prev) == 0);	/* before ufvm_open */
	ut_store("a", FILE_SIZE, SEED, path);
	vm = ut_open(NULL);
	m = ut_map(vm, path, 0, FILE_SIZE, UFVM_PROT_READ | UFVM_PROT_WRITE);
	c.page = m + 3 * PAGE;
	if (dirty)
		c.page[0] = 0xc3;	/* ret: would return if it ran */
	else
		cr_assert_eq(*(volatile uint8_t *)c.page, pattern_byte(SEED, 3 * PAGE));
	cr_assert(pthread_create(&th, NULL, caller, &c) == 0);
	cr_assert_eq(race_join(th, JOIN_US), 0,
		     "a call into a %s page still faults after %u us", dirty ? "dirty" : "clean",
		     JOIN_US);
	cr_assert(atomic_load(&c.caught), "a call into a %s page did not get SIGSEGV",
		  dirty ? "dirty" : "clean");
	/* ufvm still serves faults. */
	cr_assert_eq(*(volatile uint8_t *)(m + 9 * PAGE), pattern_byte(SEED, 9 * PAGE));
	ut_unmap(vm, m, FILE_SIZE);
	ut_close(vm);
}

Test(exec_fault, call_into_dirty_page_gets_sigsegv, .timeout = 30)
{
	run(true);
}

Test(exec_fault, call_into_clean_page_gets_sigsegv, .timeout = 30)
{
	run(false);
}
