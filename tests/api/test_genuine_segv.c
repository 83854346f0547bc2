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
 * A handler that leaves with a plain longjmp() keeps the mask the kernel
 * would have given it, not that of ufvm's handler.
 *
 * With the userfaultfd backend the kernel sends the genuine SIGSEGV to the
 * application directly; the tests run there too.
 */
#include <sys/mman.h>

#include <pthread.h>
#include <setjmp.h>
#include <sys/wait.h>
#include <unistd.h>
#include <signal.h>

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

/*
 * The application's handler recovers with a plain longjmp(), which keeps
 * the signal mask of the handler: that must be the mask the kernel would
 * have given it (the interrupted one, plus its sa_mask; SA_NODEFER leaves
 * SIGSEGV out), not the mask of ufvm's own handler, or SIGSEGV and the
 * signals libsigsegv blocks would stay blocked, and the next fault on a
 * ufvm page would kill the process.
 */
static jmp_buf plain_jb;

static void plain_handler(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)si;
	(void)uc;
	longjmp(plain_jb, 1);
}

Test(genuine_segv, plain_longjmp_keeps_the_kernels_mask, .timeout = 30)
{
	struct sigaction sa = { .sa_sigaction = plain_handler,
				.sa_flags = SA_SIGINFO | SA_NODEFER };
	char path[TMPSTORE_PATH_MAX];
	volatile uint8_t *m;
	struct ufvm *vm;
	sigset_t none, cur;

	sigemptyset(&sa.sa_mask);
	sigemptyset(&none);
	pthread_sigmask(SIG_SETMASK, &none, NULL);
	cr_assert(sigaction(SIGSEGV, &sa, NULL) == 0);
	ut_store("plain", FILE_SIZE, SEED, path);
	vm = ut_open(NULL);
	m = ut_map(vm, path, 0, FILE_SIZE, UFVM_PROT_READ);
	cr_assert_eq(m[0], pattern_byte(SEED, 0));
	if (!setjmp(plain_jb)) {
		m[17] = 'x';	/* a read-only region: genuine */
		cr_assert_fail("a write to a read-only region did not fault");
	}
	pthread_sigmask(SIG_SETMASK, NULL, &cur);
	cr_assert(!sigismember(&cur, SIGSEGV) && !sigismember(&cur, SIGINT) &&
		  !sigismember(&cur, SIGTERM) && !sigismember(&cur, SIGUSR1),
		  "after longjmp out of the handler, SIGSEGV %d SIGINT %d SIGTERM %d "
		  "SIGUSR1 %d are blocked", sigismember(&cur, SIGSEGV),
		  sigismember(&cur, SIGINT), sigismember(&cur, SIGTERM),
		  sigismember(&cur, SIGUSR1));
	cr_assert_eq(m[9 * PAGE], pattern_byte(SEED, 9 * PAGE));	/* still served */
	ut_unmap(vm, (void *)m, FILE_SIZE);
	ut_close(vm);
	signal(SIGSEGV, SIG_DFL);
}

/*
 * The last ufvm_close() gives SIGSEGV back, and the next ufvm_open() puts
 * ufvm's handler in front of the action the application installed in
 * between: a page of the new instance is served, not passed to it.
 */
Test(genuine_segv, reopen_after_app_handler, .timeout = 30)
{
	char path[TMPSTORE_PATH_MAX];
	struct sigbus_info info;
	struct ufvm *vm;
	uint8_t *m, v = 0;

	ut_store("r", FILE_SIZE, SEED, path);
	vm = ut_open(NULL);
	m = ut_map(vm, path, 0, FILE_SIZE, UFVM_PROT_READ);
	cr_assert_eq(*(volatile uint8_t *)(m + 2 * PAGE), pattern_byte(SEED, 2 * PAGE));
	ut_unmap(vm, m, FILE_SIZE);
	ut_close(vm);

	sigcatch_install();	/* the application's action, between the instances */
	vm = ut_open(NULL);
	m = ut_map(vm, path, 0, FILE_SIZE, UFVM_PROT_READ);
	cr_assert_eq(sigcatch_read(m + 5 * PAGE, &v, &info), 0,
		     "the application's handler got ufvm's fault (signal %d)", info.sig);
	cr_assert_eq(v, pattern_byte(SEED, 5 * PAGE));
	ut_unmap(vm, m, FILE_SIZE);
	ut_close(vm);
}

/*
 * A program that saved the SIGSEGV action while ufvm ran (ufvm's) and puts
 * it back after ufvm_close(): the next instance must not take its own
 * handler for the application's, or a genuine fault is forwarded to ufvm
 * for ever (with the sigsegv backend the write below spun until killed).
 */
Test(genuine_segv, reopen_after_restoring_a_saved_action, .timeout = 10)
{
	char path[TMPSTORE_PATH_MAX];
	struct sigbus_info info;
	struct sigaction saved;
	struct ufvm *vm;
	uint8_t *m, v = 0;

	sigcatch_install();	/* the application's handler, before ufvm_open */
	ut_store("s", FILE_SIZE, SEED, path);
	vm = ut_open(NULL);
	cr_assert(!sigaction(SIGSEGV, NULL, &saved));	/* ufvm's, with the sigsegv backend */
	ut_close(vm);
	cr_assert(!sigaction(SIGSEGV, &saved, NULL));
	vm = ut_open(NULL);
	m = ut_map(vm, path, 0, FILE_SIZE, UFVM_PROT_READ);
	cr_assert_eq(sigcatch_read(m + 3 * PAGE, &v, &info), 0);
	cr_assert_eq(sigcatch_write(m + 3 * PAGE, 'x', &info), SIGSEGV,
		     "a write to a read-only region did not reach the application's handler");
	ut_unmap(vm, m, FILE_SIZE);
	ut_close(vm);
}

/*
 * A SIGSEGV outside every ufvm region (the application's own guard page, as
 * a garbage collector or a JIT keeps, and an address nothing maps) reaches
 * the handler the application installed before ufvm_open(), with the
 * kernel's siginfo, while ufvm runs; and ufvm serves faults after it.  Teeth:
 * with the sigsegv backend declining such a fault to libsigsegv, which puts
 * the default action back for the access to raise it again, the process
 * died of SIGSEGV and the application's handler never ran.
 */
Test(genuine_segv, fault_outside_ufvm_reaches_app_handler, .timeout = 30)
{
	char path[TMPSTORE_PATH_MAX];
	struct sigbus_info info;
	struct ufvm *vm;
	uint8_t *m, *guard, *hole, v = 0;

	sigcatch_install();	/* the application's handler, before ufvm_open */
	guard = mmap(NULL, PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cr_assert(guard != MAP_FAILED);
	hole = (uint8_t *)(uintptr_t)PAGE;	/* below mmap_min_addr: never mapped */
	ut_store("o", FILE_SIZE, SEED, path);
	vm = ut_open(NULL);
	m = ut_map(vm, path, 0, FILE_SIZE, UFVM_PROT_READ);
	for (int round = 0; round < 2; round++) {
		cr_assert_eq(sigcatch_read(guard + 100, &v, &info), SIGSEGV,
			     "round %d: a read of a PROT_NONE page of the application's "
			     "did not reach its handler", round);
		cr_assert_eq(info.addr, (void *)(guard + 100));
		cr_assert_eq(info.code, SEGV_ACCERR, "si_code %d", info.code);
		cr_assert_eq(sigcatch_write(hole + 8, 'x', &info), SIGSEGV,
			     "round %d: a write to an unmapped page did not reach the "
			     "application's handler", round);
		cr_assert_eq(info.addr, (void *)(hole + 8));
		cr_assert_eq(info.code, SEGV_MAPERR, "si_code %d", info.code);
		cr_assert_eq(sigcatch_read(m + (6 + round) * PAGE, &v, &info), 0,
			     "round %d: ufvm no longer serves faults (signal %d)", round,
			     info.sig);
		cr_assert_eq(v, pattern_byte(SEED, (6 + round) * PAGE));
	}
	ut_unmap(vm, m, FILE_SIZE);
	ut_close(vm);
	munmap(guard, PAGE);
}

/*
 * An application that uses libsigsegv itself: its stack-overflow handler,
 * installed before ufvm_open(), still runs when the stack overflows with
 * the sigsegv backend (the action ufvm's replaced is then libsigsegv's own:
 * calling it, as for other faults not ufvm's, called ufvm's handler again
 * until the alternate stack overflowed), and ufvm serves faults after the
 * application recovered.  In a child process, reporting by exit status.
 */
#include <sigsegv.h>

static char so_stack[64 * 1024];
static sigjmp_buf so_env;
static volatile int so_depth, so_stop;

static void so_leave(void *a, void *b, void *c)
{
	(void)a;
	(void)b;
	(void)c;
	siglongjmp(so_env, 1);
}

static void so_handler(int emergency, stackoverflow_context_t scp)
{
	(void)emergency;
	(void)scp;
	sigsegv_leave_handler(so_leave, NULL, NULL, NULL);
}

static int __attribute__((noinline)) so_recurse(int n)
{
	volatile char pad[1024];

	pad[0] = (char)n;
	so_depth++;
	if (so_stop)	/* never: until the stack overflows */
		return 0;
	return so_recurse(n + 1) + pad[0];
}

static void so_child(const char *path)
{
	struct ufvm_config cfg;
	struct ufvm *vm;
	void *a;

	if (stackoverflow_install_handler(so_handler, so_stack, sizeof(so_stack)) < 0)
		_exit(77);	/* no stack-overflow support here */
	if (ufvm_config_init(&cfg))
		_exit(10);
	cfg.backend = UFVM_BACKEND_SIGSEGV;
	if (ufvm_open(&cfg, &vm) || ufvm_map(vm, path, 0, FILE_SIZE, UFVM_PROT_READ, 0, &a))
		_exit(11);
	if (sigsetjmp(so_env, 1) == 0) {
		so_recurse(0);
		_exit(12);
	}
	if (*((volatile uint8_t *)a + 3 * PAGE) != pattern_byte(SEED, 3 * PAGE))
		_exit(13);
	_exit(ufvm_unmap(vm, a, FILE_SIZE) || ufvm_close(vm) ? 14 : 0);
}

static int so_run(void (*child)(const char *), const char *name)
{
	char path[TMPSTORE_PATH_MAX];
	int status;
	pid_t pid;

	ut_store(name, FILE_SIZE, SEED, path);
	pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0)
		child(path);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	if (WIFEXITED(status) && WEXITSTATUS(status) == 77)
		cr_skip_test("libsigsegv has no stack-overflow support here");
	return status;
}

Test(genuine_segv, apps_libsigsegv_stack_overflow_handler_runs, .timeout = 30)
{
	int status = so_run(so_child, "so");

	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		  "the child " UT_STATUS_FMT " (0 wanted: the application's stack-overflow handler ran "
		  "and ufvm served a fault after it)",
		  UT_STATUS_ARGS(status));
}

/*
 * With libsigsegv's stack-overflow handler installed before ufvm_open(), a
 * write to a read-only region still kills the process with SIGSEGV, as
 * without it (declined once, libsigsegv asks again: the second call looked
 * like a new fault to retry, and the access spun for ever).  And with the
 * handler installed after ufvm_open() (libsigsegv's action then calls
 * ufvm's directly), a served fault leaves the thread's cancellation as it
 * was (it stayed disabled).  Children, reporting by exit status.
 */
static void so_write_child(const char *path)
{
	struct ufvm_config cfg;
	struct ufvm *vm;
	void *a;

	alarm(10);	/* a spin dies of SIGALRM */
	if (stackoverflow_install_handler(so_handler, so_stack, sizeof(so_stack)) < 0)
		_exit(77);
	if (ufvm_config_init(&cfg))
		_exit(10);
	cfg.backend = UFVM_BACKEND_SIGSEGV;
	if (ufvm_open(&cfg, &vm) || ufvm_map(vm, path, 0, FILE_SIZE, UFVM_PROT_READ, 0, &a))
		_exit(11);
	if (*((volatile uint8_t *)a + PAGE) != pattern_byte(SEED, PAGE))
		_exit(12);
	*((volatile uint8_t *)a + PAGE) = 'x';	/* genuine: SIGSEGV */
	_exit(13);
}

static void so_after_child(const char *path)
{
	struct ufvm_config cfg;
	struct ufvm *vm;
	int old;
	void *a;

	if (ufvm_config_init(&cfg))
		_exit(10);
	cfg.backend = UFVM_BACKEND_SIGSEGV;
	if (ufvm_open(&cfg, &vm) || ufvm_map(vm, path, 0, FILE_SIZE, UFVM_PROT_READ, 0, &a))
		_exit(11);
	if (stackoverflow_install_handler(so_handler, so_stack, sizeof(so_stack)) < 0)
		_exit(77);
	if (*((volatile uint8_t *)a + 2 * PAGE) != pattern_byte(SEED, 2 * PAGE))
		_exit(12);
	pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, &old);
	_exit(old == PTHREAD_CANCEL_ENABLE ? 0 : 13);
}


Test(genuine_segv, apps_libsigsegv_genuine_write_still_kills, .timeout = 30)
{
	int status = so_run(so_write_child, "sow");

	cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV,
		  "the child " UT_STATUS_FMT " (SIGSEGV wanted; SIGALRM: the write spun)",
		  UT_STATUS_ARGS(status));
}

Test(genuine_segv, apps_libsigsegv_after_open_keeps_cancel_state, .timeout = 30)
{
	int status = so_run(so_after_child, "soa");

	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		  "the child " UT_STATUS_FMT " (0 wanted; 13: its cancellation was left disabled)",
		  UT_STATUS_ARGS(status));
}
