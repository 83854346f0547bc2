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
 * forward_as_delivered: a SIGBUS ufvm does not serve (past the end of the
 * file) goes to the application's action as the kernel would deliver it:
 * with the action's sa_mask blocked during the call, and SA_RESETHAND
 * making it one-shot, so the second access past the end kills the
 * process with SIGBUS (a child process runs it).  Teeth: calling the action without its mask, or
 * again after SA_RESETHAND, fails the test.
 *
 * handler_swapped_around_close: ufvm never takes its own handler for the
 * application's (it would forward to itself for ever).
 * null_siginfo_action_is_the_default: a SA_SIGINFO action with no
 * function is the default action.
 *
 * touch_during_unmap_is_sigsegv: a thread touching a page of a region
 * while ufvm_unmap() has taken the region out but not yet detached its
 * range (UFVM_HOOK_TAKEN_OUT holds it there) must get SIGSEGV once the
 * unmap is done, as with handler threads, not the SIGBUS userfaultfd
 * raised for the still-registered range (a child process runs it).
 *
 * fork_child_sigbus_is_its_own: a fork()ed child's own SIGBUS kills it,
 * whatever the parent's threads held at the fork (below).
 *
 * Only with the userfaultfd backend (in-thread delivery is one of its
 * modes); the tests ask for it whatever UFVM_DELIVERY says.
 */
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "race.h"

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

static sigjmp_buf app_jb;
static volatile sig_atomic_t app_calls, app_masked;

static void app_bus(int sig, siginfo_t *si, void *uc)
{
	sigset_t now;

	(void)sig, (void)si, (void)uc;
	app_calls++;
	pthread_sigmask(SIG_BLOCK, NULL, &now);
	app_masked = sigismember(&now, SIGUSR2);
	siglongjmp(app_jb, 1);
}

/* The scenario, in a child that must die of SIGBUS; other exits say why not. */
static void forward_child(const char *path)
{
	struct ufvm_config cfg;
	struct sigaction sa;
	struct ufvm *vm;
	uint8_t *m;
	void *a;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = app_bus;
	sa.sa_flags = SA_SIGINFO | SA_RESETHAND;
	sigemptyset(&sa.sa_mask);
	sigaddset(&sa.sa_mask, SIGUSR2);
	if (sigaction(SIGBUS, &sa, NULL) || ufvm_config_init(&cfg))	/* before ufvm_open */
		_exit(10);
	cfg.backend = UFVM_BACKEND_UFFD;
	cfg.delivery = UFVM_DELIVERY_INTHREAD;
	if (ufvm_open(&cfg, &vm) ||
	    ufvm_map(vm, path, 0, 2 * FILE_SIZE, UFVM_PROT_READ, 0, &a))	/* past the end */
		_exit(11);
	m = a;
	if (!sigsetjmp(app_jb, 1))
		(void)*(volatile uint8_t *)(m + FILE_SIZE + PAGE);
	if (app_calls != 1)
		_exit(2);
	if (!app_masked)
		_exit(3);
	if (!sigsetjmp(app_jb, 1))
		(void)*(volatile uint8_t *)(m + FILE_SIZE + PAGE);	/* dies of SIGBUS */
	_exit(4);
}

/*
 * Run @child on a store file named @name in a child process (in-thread
 * delivery needs the userfaultfd backend: skipped under UFVM_BACKEND=sigsegv).
 * Return: its wait status.
 */
static int in_child(void (*child)(const char *path), const char *name)
{
	char path[TMPSTORE_PATH_MAX];
	struct ufvm_config cfg;
	int status;
	pid_t pid;

	assert_ok(ufvm_config_init(&cfg));
	if (cfg.backend == UFVM_BACKEND_SIGSEGV)
		cr_skip_test("UFVM_BACKEND=sigsegv: in-thread delivery is a userfaultfd mode");
	ut_store(name, FILE_SIZE, SEED, path);
	pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0)
		child(path);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	return status;
}

Test(inthread_sigbus, forward_as_delivered, .timeout = 30)
{
	int status = in_child(forward_child, "a");

	cr_assert(!WIFEXITED(status) || WEXITSTATUS(status) != 2,
		  "the application's action did not get SIGBUS past the end");
	cr_assert(!WIFEXITED(status) || WEXITSTATUS(status) != 3,
		  "the action ran without its sa_mask blocked");
	cr_assert(!WIFEXITED(status) || WEXITSTATUS(status) != 4,
		  "SA_RESETHAND: the action ran again");
	cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGBUS,
		  "the child did not die of SIGBUS (%s %d)",
		  WIFSIGNALED(status) ? "signal" : "exit status",
		  WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
}

/*
 * The application swaps its own SIGBUS action in around a ufvm_close()
 * and then puts back what it replaced, which is ufvm's handler.  The
 * next instance must not take its own handler for "the application's"
 * (it would forward to itself for ever): a SIGBUS past the end of the
 * file reaches the application's first action, once.
 */
static sigjmp_buf swap_jb;
static volatile sig_atomic_t swap_calls;

static void swap_first(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)si;
	(void)uc;
	swap_calls++;
	siglongjmp(swap_jb, 1);
}

static void swap_second(int sig)
{
	(void)sig;
}

Test(inthread_sigbus, handler_swapped_around_close, .timeout = 30)
{
	struct sigaction first = { .sa_sigaction = swap_first, .sa_flags = SA_SIGINFO };
	struct sigaction second = { .sa_handler = swap_second }, replaced;
	char path[TMPSTORE_PATH_MAX];
	struct ufvm *vm;
	uint8_t *m;

	ut_store("swap", PAGE, SEED, path);
	sigemptyset(&first.sa_mask);
	sigemptyset(&second.sa_mask);
	cr_assert(sigaction(SIGBUS, &first, NULL) == 0);
	vm = open_inthread();
	cr_assert(sigaction(SIGBUS, &second, &replaced) == 0);
	ut_close(vm);
	cr_assert(sigaction(SIGBUS, &replaced, NULL) == 0);
	vm = open_inthread();
	m = ut_map(vm, path, 0, 4 * PAGE, UFVM_PROT_READ);
	cr_assert_eq(*(volatile uint8_t *)m, pattern_byte(SEED, 0));
	if (!sigsetjmp(swap_jb, 1)) {
		(void)*(volatile uint8_t *)(m + 2 * PAGE);	/* past the end */
		cr_assert_fail("no SIGBUS past the end of the file");
	}
	cr_assert_eq(swap_calls, 1, "the application's action ran %d times", (int)swap_calls);
	ut_unmap(vm, m, 4 * PAGE);
	ut_close(vm);
	signal(SIGBUS, SIG_DFL);
}

/*
 * A saved action with SA_SIGINFO and a NULL handler is the default
 * action: a SIGBUS ufvm does not serve kills the process with SIGBUS (a
 * child runs it), not with a jump to address 0.
 */
static void null_child(const char *path)
{
	struct sigaction dfl = { .sa_flags = SA_SIGINFO };	/* sa_sigaction NULL */
	struct ufvm *vm;
	uint8_t *m;

	sigemptyset(&dfl.sa_mask);
	sigaction(SIGBUS, &dfl, NULL);
	vm = open_inthread();
	m = ut_map(vm, path, 0, 4 * PAGE, UFVM_PROT_READ);
	(void)*(volatile uint8_t *)(m + 2 * PAGE);	/* past the end */
	_exit(0);
}

Test(inthread_sigbus, null_siginfo_action_is_the_default, .timeout = 30)
{
	char path[TMPSTORE_PATH_MAX];
	int status;
	pid_t pid;

	ut_store("null", PAGE, SEED, path);
	ut_close(open_inthread());	/* skips the test where it cannot run */
	pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0)
		null_child(path);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGBUS,
		  "the child ended with %s %d, not SIGBUS",
		  WIFSIGNALED(status) ? "signal" : "exit status",
		  WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
}

struct taken {
	uint8_t *m;
	atomic_int go;
};

static void *touch_when_taken_out(void *arg)
{
	struct taken *t = arg;

	while (!atomic_load(&t->go))
		sched_yield();
	(void)*(volatile uint8_t *)(t->m + 5 * PAGE);	/* never mapped: a fault */
	_exit(5);	/* the access went through after the unmap */
}

/* The unmap holds mmap_lock, its region out of the tree: let the toucher go. */
static void taken_out_hook(void *arg, unsigned int point, uint64_t a, uint64_t b)
{
	struct taken *t = arg;

	(void)a;
	(void)b;
	if (point != UFVM_HOOK_TAKEN_OUT)
		return;
	atomic_store(&t->go, 1);
	usleep(100000);	/* its fault is raised while the range is still registered */
}

/* SIGSEGV, said by an exit status (AddressSanitizer would report it instead). */
static void segv_exit(int sig)
{
	(void)sig;
	_exit(42);
}

static void taken_out_child(const char *path)
{
	static struct taken t;
	struct ufvm_config cfg;
	struct ufvm *vm;
	pthread_t th;
	void *a;

	signal(SIGSEGV, segv_exit);
	if (ufvm_config_init(&cfg))
		_exit(10);
	cfg.backend = UFVM_BACKEND_UFFD;
	cfg.delivery = UFVM_DELIVERY_INTHREAD;
	if (ufvm_open(&cfg, &vm) || ufvm_map(vm, path, 0, FILE_SIZE, UFVM_PROT_READ, 0, &a))
		_exit(11);
	t.m = a;
	if (ufvm_debug_hook(vm, taken_out_hook, &t) ||
	    pthread_create(&th, NULL, touch_when_taken_out, &t))
		_exit(12);
	if (ufvm_unmap(vm, a, FILE_SIZE))
		_exit(13);
	pthread_join(th, NULL);
	_exit(14);
}

Test(inthread_sigbus, touch_during_unmap_is_sigsegv, .timeout = 30)
{
	int status = in_child(taken_out_child, "t");

	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 42,
		  "the toucher's child " UT_STATUS_FMT " (SIGSEGV wanted: exit status 42)",
		  UT_STATUS_ARGS(status));
}

/*
 * fork_child_sigbus_is_its_own: a fork()ed child inherits ufvm's SIGBUS
 * handler and its list of in-thread instances, and, from a parent thread
 * inside ufvm_unmap() at the fork, a held mmap_lock that nobody in the
 * child will release.  A genuine SIGBUS of the child's own (an access
 * past the end of a file it mapped with mmap()) must kill it, as without
 * ufvm, not wait on that lock.  Teeth (UFVM_DEBUG_BUS_INHERITED: the
 * handler waits on the inherited instances too): the child hangs, and is
 * killed after a second (5 s when it must end).
 */
struct held {
	atomic_int in, release;
};

static void hold_hook(void *arg, unsigned int point, uint64_t a, uint64_t b)
{
	struct held *h = arg;

	(void)a;
	(void)b;
	if (point != UFVM_HOOK_TAKEN_OUT)
		return;
	atomic_store(&h->in, 1);	/* mmap_lock held for writing */
	while (!atomic_load(&h->release))
		usleep(1000);
}

struct unmapper {
	struct ufvm *vm;
	void *m;
	int err;
};

static void *unmap_main(void *arg)
{
	struct unmapper *u = arg;

	u->err = ufvm_unmap(u->vm, u->m, FILE_SIZE);
	return NULL;
}

/* Return: true if the child died of SIGBUS, false if it hung (killed). */
static bool fork_child_sigbus(unsigned int debug)
{
	char path[TMPSTORE_PATH_MAX], plain_path[TMPSTORE_PATH_MAX];
	struct ufvm_config cfg;
	struct unmapper u;
	struct held h = { 0 };
	pthread_t th;
	uint8_t *plain;
	int status = 0, fd;
	bool ended;
	pid_t pid;

	assert_ok(ufvm_config_init(&cfg));
	if (cfg.backend == UFVM_BACKEND_SIGSEGV)
		cr_skip_test("UFVM_BACKEND=sigsegv: in-thread delivery is a userfaultfd mode");
	cfg.backend = UFVM_BACKEND_UFFD;
	cfg.delivery = UFVM_DELIVERY_INTHREAD;
	cfg.debug_flags |= debug;
	signal(SIGBUS, SIG_DFL);	/* the saved action: no sanitizer's handler */
	ut_store("f", FILE_SIZE, SEED, path);
	ut_store("plain", PAGE, SEED, plain_path);
	fd = open(plain_path, O_RDONLY);
	cr_assert(fd >= 0);
	plain = mmap(NULL, 2 * PAGE, PROT_READ, MAP_SHARED, fd, 0);	/* page 1: past the end */
	cr_assert(plain != MAP_FAILED);
	close(fd);
	u.vm = ut_open(&cfg);
	u.m = ut_map(u.vm, path, 0, FILE_SIZE, UFVM_PROT_READ);
	cr_assert_eq(*(volatile uint8_t *)u.m, pattern_byte(SEED, 0));
	assert_ok(ufvm_debug_hook(u.vm, hold_hook, &h));
	cr_assert(!pthread_create(&th, NULL, unmap_main, &u));
	while (!atomic_load(&h.in))
		usleep(1000);
	pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		(void)*(volatile uint8_t *)(plain + PAGE);	/* SIGBUS, the child's own */
		_exit(7);
	}
	ended = ut_wait_child(pid, debug ? (int)(RACE_HUNG_US / 1000) : 5000, &status);
	atomic_store(&h.release, 1);
	pthread_join(th, NULL);
	assert_ok(u.err);
	ut_close(u.vm);
	munmap(plain, 2 * PAGE);
	if (!ended)
		return false;
	cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGBUS,
		  "the child " UT_STATUS_FMT ", not SIGBUS", UT_STATUS_ARGS(status));
	return true;
}

Test(inthread_sigbus, fork_child_sigbus_is_its_own, .timeout = 30)
{
	cr_assert(fork_child_sigbus(0), "the child's own SIGBUS hung on the parent's mmap_lock");
}

Test(inthread_sigbus, fork_child_sigbus_teeth, .timeout = 30)
{
	cr_assert(!fork_child_sigbus(UFVM_DEBUG_BUS_INHERITED),
		  "with the handler waiting on inherited instances, the child did not hang: "
		  "the test cannot see the bug");
}
