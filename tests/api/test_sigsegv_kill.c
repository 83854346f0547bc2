/* SPDX-License-Identifier: MIT */
/*
 * test_sigsegv_kill.c - a SIGSEGV or SIGBUS sent with kill() to a process
 * whose fault signal ufvm handles gets the action the application chose,
 * as without ufvm.
 *
 * Invariant: a signal that no fault raised is never swallowed.  ufvm's
 * handler declines it, and for a fault's signal the default action is
 * taken by resetting it and letting the faulting instruction run again;
 * a kill()ed signal has no such instruction, so that reset alone lost
 * the signal and left ufvm's handler uninstalled (the next ufvm fault
 * then killed the process).  Checked for SIGSEGV with the sigsegv
 * backend (libsigsegv's handler, which declines it and resets the action
 * itself) and for SIGBUS with in-thread delivery, each in a child
 * process that has an instance open and has served a fault:
 *   default action: the child dies of the signal (teeth: it survived);
 *   ignored: the child survives, and ufvm still serves its next fault
 *     (teeth: the fault killed it);
 *   the application's handler: it runs once, with si_code SI_USER, and
 *     ufvm still serves the next fault (teeth with the sigsegv backend:
 *     the handler never ran).
 *
 * The SIGSEGV tests ask for the sigsegv backend whatever UFVM_BACKEND
 * says; the SIGBUS tests ask for in-thread delivery and are skipped with
 * UFVM_BACKEND=sigsegv, as in test_inthread_sigbus.c.
 */
#include <criterion/parameterized.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

#define FILE_SIZE	(64 * PAGE)
#define LATER_PAGE	40	/* past the fault-around window of page 2 */
#define SEED		0x5eed1c00

enum disposition { DEFAULT, IGNORED, HANDLED };

/* Exit statuses of the child. */
enum {
	SURVIVED = 0,
	NO_OPEN = 2,		/* ufvm_open failed: skipped */
	NO_MAP,
	BAD_BYTE,		/* a page read back wrong */
	NO_HANDLER,		/* the application's handler did not run */
	BAD_INFO,		/* ... or not with the kill()'s siginfo */
};

static volatile sig_atomic_t app_calls, app_code;

static void app_handler(int sig, siginfo_t *si, void *uc)
{
	(void)sig, (void)uc;
	app_calls++;
	app_code = si->si_code;
}

/* Runs in the child: open an instance, serve a fault, kill() itself. */
static int child(const struct ufvm_config *cfg, const char *path, int sig,
		 enum disposition d)
{
	struct sigaction sa = { .sa_sigaction = app_handler, .sa_flags = SA_SIGINFO };
	struct ufvm *vm;
	uint8_t *m;

	alarm(20);	/* a hang dies of SIGALRM */
	sigemptyset(&sa.sa_mask);
	/* The application's action, before ufvm_open, which saves it. */
	if (d == HANDLED)
		sigaction(sig, &sa, NULL);
	else
		signal(sig, d == IGNORED ? SIG_IGN : SIG_DFL);
	if (ufvm_open(cfg, &vm))
		return NO_OPEN;
	if (ufvm_map(vm, path, 0, FILE_SIZE, UFVM_PROT_READ, UFVM_MAP_SHARED, (void **)&m))
		return NO_MAP;
	if (*(volatile uint8_t *)(m + 2 * PAGE) != pattern_byte(SEED, 2 * PAGE))
		return BAD_BYTE;
	kill(getpid(), sig);
	if (d == DEFAULT)
		return SURVIVED;	/* no fault after it: that would kill us */
	if (d == HANDLED && app_calls != 1)
		return NO_HANDLER;
	if (d == HANDLED && app_code != SI_USER)
		return BAD_INFO;
	/* ufvm's handler is still there: a page never touched is served. */
	if (*(volatile uint8_t *)(m + LATER_PAGE * PAGE) != pattern_byte(SEED, LATER_PAGE * PAGE))
		return BAD_BYTE;
	return SURVIVED;
}

struct kill_case {
	int sig;
	enum disposition d;
	char name[16];		/* of the case, and of its store file (copied: no pointers) */
};

ParameterizedTestParameters(sigsegv_kill, kill_self)
{
	static struct kill_case cases[] = {
		{ SIGSEGV, DEFAULT, "segv_default" },
		{ SIGSEGV, IGNORED, "segv_ignored" },
		{ SIGSEGV, HANDLED, "segv_handled" },
		{ SIGBUS, DEFAULT, "bus_default" },
		{ SIGBUS, IGNORED, "bus_ignored" },
		{ SIGBUS, HANDLED, "bus_handled" },
	};

	return cr_make_param_array(struct kill_case, cases, sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct kill_case *c, sigsegv_kill, kill_self, .timeout = 30)
{
	char path[TMPSTORE_PATH_MAX];
	struct ufvm_config cfg;
	int status;
	pid_t pid;

	assert_ok(ufvm_config_init(&cfg));
	if (c->sig == SIGBUS && cfg.backend == UFVM_BACKEND_SIGSEGV)
		cr_skip_test("%s: UFVM_BACKEND=sigsegv: in-thread delivery is a userfaultfd mode",
			     c->name);
	/* SIGSEGV: the sigsegv backend, whatever UFVM_BACKEND says. */
	cfg.backend = c->sig == SIGSEGV ? UFVM_BACKEND_SIGSEGV : UFVM_BACKEND_UFFD;
	if (c->sig == SIGBUS)
		cfg.delivery = UFVM_DELIVERY_INTHREAD;
	ut_store(c->name, FILE_SIZE, SEED, path);
	pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0)
		_exit(child(&cfg, path, c->sig, c->d));
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	if (WIFEXITED(status) && WEXITSTATUS(status) == NO_OPEN)
		cr_skip_test("%s: ufvm_open failed in the child: the backend is not usable here",
			     c->name);
	if (c->d == DEFAULT)
		cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == c->sig,
			  "%s: the child was not killed by the signal it kill()ed itself "
			  "with (%s %d)", c->name, WIFSIGNALED(status) ? "signal" : "exit status",
			  WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
	else
		cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == SURVIVED,
			  "%s: the child did not survive the signal and go on (%s %d)", c->name,
			  WIFSIGNALED(status) ? "signal" : "exit status",
			  WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
}
