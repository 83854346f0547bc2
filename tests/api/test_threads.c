/* SPDX-License-Identifier: MIT */
/*
 * test_threads.c - ufvm's own threads take no signal of the application.
 *
 * Checks: every thread ufvm starts (fault handlers "ufvm-uffd/N", the
 * background thread "ufvm-bg", readahead threads "ufvm-readahead", and
 * liburcu's worker that runs ufvm's RCU callbacks, "ufvm-rcu") blocks
 * the signals an application handles (SIGUSR1, SIGINT, SIGTERM, SIGALRM,
 * SIGCHLD) and those a fault raises (SIGSEGV, SIGBUS), even when the
 * thread that opened ufvm blocks none; a fault of its own still kills the
 * process (the kernel forces a fault's signal through the mask).  An
 * application handler run on a ufvm thread could interrupt it holding a
 * page lock and, touching ufvm memory, wait for a fault only that thread
 * could serve.  /proc/self/task/N/status shows each thread's mask.  A
 * SIGSEGV or SIGBUS sent with kill() while the application blocks it
 * waits for the application (it went to a ufvm thread at once).
 *
 * And where faults are served in a signal handler of the faulting thread
 * (sigsegv backend, in-thread delivery), an application signal whose
 * handler touches ufvm memory waits until the fault is served.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "race.h"

/* Thread @tid's name and blocked-signal mask, from /proc.  Return: found. */
static bool thread_info(const char *tid, char *name, size_t len, unsigned long long *blk)
{
	char path[320], line[256];
	bool got = false;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/task/%.255s/status", tid);
	f = fopen(path, "r");
	if (!f)
		return false;	/* exited meanwhile */
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, "Name:\t", 6)) {
			line[strcspn(line, "\n")] = 0;
			snprintf(name, len, "%.15s", line + 6);
		} else if (!strncmp(line, "SigBlk:\t", 8)) {
			*blk = strtoull(line + 8, NULL, 16);
			got = true;
		}
	}
	fclose(f);
	return got;
}

#define SIGBIT(s)	(1ull << ((s) - 1))

Test(threads, ufvm_threads_block_application_signals, .timeout = 30)
{
	const unsigned long long want = SIGBIT(SIGUSR1) | SIGBIT(SIGINT) | SIGBIT(SIGTERM) |
					SIGBIT(SIGALRM) | SIGBIT(SIGCHLD) | SIGBIT(SIGSEGV) |
					SIGBIT(SIGBUS);
	char path[TMPSTORE_PATH_MAX];
	volatile uint8_t *map;
	struct dirent *de;
	struct ufvm *vm;
	sigset_t none;
	int seen = 0, rcu = 0;
	DIR *d;

	sigemptyset(&none);
	pthread_sigmask(SIG_SETMASK, &none, NULL);
	vm = ut_open(NULL);
	ut_store("threads", 4 * MiB, 1, path);
	map = ut_map(vm, path, 0, 4 * MiB, UFVM_PROT_READ);
	for (size_t off = 0; off < 4 * MiB; off += PAGE)
		(void)map[off];
	/* An unmap frees the region after a grace period: by call_rcu(). */
	ut_unmap(vm, (void *)map, 4 * MiB);
	map = ut_map(vm, path, 0, 4 * MiB, UFVM_PROT_READ);
	d = opendir("/proc/self/task");
	cr_assert(d);
	while ((de = readdir(d))) {
		unsigned long long blk = 0;
		char name[32] = "";

		if (de->d_name[0] == '.' || !thread_info(de->d_name, name, sizeof(name), &blk) ||
		    strncmp(name, "ufvm-", 5))
			continue;
		seen++;
		rcu += !strcmp(name, "ufvm-rcu");
		cr_assert((blk & want) == want, "thread %s (%s) blocks %#llx: not all of %#llx",
			  de->d_name, name, blk, want);
	}
	closedir(d);
	cr_assert(seen > 0, "no thread of ufvm's found by name");
	cr_assert(rcu == 1, "%d threads named ufvm-rcu: liburcu's worker, which runs ufvm's "
		  "call_rcu() callbacks, is not ufvm's (it takes the application's signals)", rcu);
	ut_unmap(vm, (void *)map, 4 * MiB);
	ut_close(vm);
}

/* Threads of this process; *@ufvm_unblocked: ufvm-* threads that do not block SIGUSR1. */
static int count_threads(int *ufvm_unblocked)
{
	struct dirent *de;
	int n = 0;
	DIR *d = opendir("/proc/self/task");

	*ufvm_unblocked = 0;
	while (d && (de = readdir(d))) {
		unsigned long long blk = 0;
		char name[32] = "";

		if (de->d_name[0] == '.')
			continue;
		n++;
		if (thread_info(de->d_name, name, sizeof(name), &blk) && !strncmp(name, "ufvm-", 5) &&
		    !(blk & SIGBIT(SIGUSR1)))
			(*ufvm_unblocked)++;
	}
	if (d)
		closedir(d);
	return n;
}

/*
 * A fork()ed child of a process that has not used ufvm: the fork hooks
 * start no worker there (one started by them took the application's
 * signals: they started it after restoring the child's mask), and the
 * child's own ufvm_open() starts ufvm's threads with the signals blocked.
 */
Test(threads, fork_child_starts_no_worker_of_its_own, .timeout = 30)
{
	char path[TMPSTORE_PATH_MAX];
	int status, unblocked;
	sigset_t none;
	pid_t pid;

	sigemptyset(&none);
	pthread_sigmask(SIG_SETMASK, &none, NULL);
	ut_store("forkt", 1 * MiB, 1, path);
	pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		struct ufvm *vm;
		void *m;

		alarm(20);
		if (count_threads(&unblocked) != 1)
			_exit(1);	/* the fork hooks started a thread */
		if (ufvm_open(NULL, &vm) ||
		    ufvm_map(vm, path, 0, 1 * MiB, UFVM_PROT_READ, 0, &m) ||
		    *(volatile uint8_t *)m != pattern_byte(1, 0) || ufvm_unmap(vm, m, 1 * MiB))
			_exit(2);
		race_sleep_us(10000);	/* liburcu's moments with every signal blocked */
		count_threads(&unblocked);
		_exit(unblocked ? 3 : ufvm_close(vm) ? 4 : 0);
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		  "the child: %s %d (1: a thread right after fork, 2: ufvm failed, 3: a thread of "
		  "ufvm's takes SIGUSR1, 4: close failed)",
		  WIFSIGNALED(status) ? "signal" : "exit status",
		  WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
}

/*
 * A SIGSEGV or SIGBUS sent with kill() while the application's threads
 * block it waits for one of them, as without ufvm: no thread of ufvm's
 * takes it.  They blocked every signal but those their own faults raise,
 * so the kernel gave such a signal to one of them at once, and the
 * application's handler ran there (the same happened now and then with
 * the signal unblocked: liburcu's worker unblocks every signal after
 * masking them for a moment, and took a signal the sender had not yet
 * dequeued).  A fault of ufvm's own thread still kills the process: the
 * kernel forces a fault's signal through a mask.
 */
static volatile sig_atomic_t sent_calls, sent_wrong_thread;
static pid_t sent_main_tid;

static void sent_handler(int sig)
{
	(void)sig;
	sent_calls++;
	if (gettid() != sent_main_tid)
		sent_wrong_thread = 1;
}

/* In the child.  Return: 0, or what went wrong (below). */
static int sent_while_blocked(const char *path, int sig)
{
	struct sigaction sa = { .sa_handler = sent_handler };
	sigset_t one;
	struct ufvm *vm;
	uint8_t *m;

	sent_main_tid = gettid();
	sent_calls = sent_wrong_thread = 0;
	sigemptyset(&sa.sa_mask);
	sigaction(sig, &sa, NULL);	/* before ufvm_open(), which saves it */
	if (ufvm_open(NULL, &vm) ||
	    ufvm_map(vm, path, 0, 1 * MiB, UFVM_PROT_READ, 0, (void **)&m) ||
	    m[PAGE] != pattern_byte(1, PAGE))
		return 2;
	sigemptyset(&one);
	sigaddset(&one, sig);
	pthread_sigmask(SIG_BLOCK, &one, NULL);
	kill(getpid(), sig);
	race_sleep_us(100000);
	if (sent_calls)
		return 3;	/* taken by another thread while this one blocked it */
	pthread_sigmask(SIG_UNBLOCK, &one, NULL);
	if (sent_calls != 1 || sent_wrong_thread)
		return 4;
	if (m[200 * PAGE] != pattern_byte(1, 200 * PAGE))	/* ufvm still serves */
		return 5;
	if (ufvm_unmap(vm, m, 1 * MiB) || ufvm_close(vm))
		return 6;
	return 0;
}

Test(threads, sent_fault_signals_wait_for_an_application_thread, .timeout = 30)
{
	static const int sigs[] = { SIGSEGV, SIGBUS };
	char path[TMPSTORE_PATH_MAX];
	int status;
	pid_t pid;

	ut_store("sent", 1 * MiB, 1, path);
	for (unsigned int i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
		pid = fork();
		cr_assert(pid >= 0);
		if (pid == 0) {
			alarm(20);
			_exit(sent_while_blocked(path, sigs[i]));
		}
		cr_assert_eq(waitpid(pid, &status, 0), pid);
		cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
			  "%s: the child: %s %d (2: ufvm failed, 3: a thread of ufvm's took the "
			  "signal the application blocked, 4: not handled once by the application "
			  "thread once unblocked, 5: a fault after it not served, 6: close failed)",
			  strsignal(sigs[i]), WIFSIGNALED(status) ? "signal" : "exit status",
			  WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
	}
}

/* A write-back hook that faults (@arg: a page mapped PROT_NONE) on a thread of ufvm's (the flusher). */
static void fault_off_main(void *arg, unsigned int point, uint64_t a, uint64_t b)
{
	(void)a, (void)b;
	if (point == UFVM_HOOK_WRITEBACK && gettid() != sent_main_tid)
		*(volatile int *)arg = 1;
}

Test(threads, own_fault_still_kills, .timeout = 30)
{
	char path[TMPSTORE_PATH_MAX];
	int status;
	pid_t pid;

	ut_store("ownfault", 1 * MiB, 1, path);
	pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		struct rlimit no_core = { 0, 0 };
		struct ufvm_config cfg;
		struct ufvm_file *f;
		struct ufvm *vm;
		void *none;

		alarm(20);
		setrlimit(RLIMIT_CORE, &no_core);
		sent_main_tid = gettid();
		ufvm_config_init(&cfg);
		cfg.dirty_expire_ms = 1;
		none = mmap(NULL, PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (none == MAP_FAILED || ufvm_open(&cfg, &vm) ||
		    ufvm_debug_hook(vm, fault_off_main, none) ||
		    ufvm_file_open(vm, path, UFVM_RDWR, &f) || ufvm_pwrite(f, "x", 1, 0) != 1)
			_exit(2);
		race_sleep_us(5000000);	/* the flusher's write-back faults meanwhile */
		_exit(3);
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV,
		  "the child, whose flusher faulted: %s %d, not killed by SIGSEGV (2: ufvm "
		  "failed, 3: alive after 5 s)", WIFSIGNALED(status) ? "signal" : "exit status",
		  WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
}

/*
 * A signal of the application whose handler touches ufvm memory, sent
 * again and again while the thread takes faults.  With the sigsegv
 * backend and in-thread delivery the faults are served in a signal
 * handler of the faulting thread: the application's signal must wait
 * until the fault is served (as after a kernel fault), not interrupt it
 * and fault again inside, which the kernel answers by killing the process
 * (the fault's own signal is blocked there).  Both a standard and a
 * real-time signal (which libsigsegv's handler does not block).
 */
static volatile uint8_t *pest_map;
static volatile long pest_page;
static atomic_long pest_calls;
static atomic_int pest_stop;

static void pest_handler(int sig)
{
	(void)sig;
	(void)pest_map[pest_page * PAGE];	/* the page being faulted, maybe */
	atomic_fetch_add(&pest_calls, 1);
}

struct pest {
	pthread_t target;
	int sig;
};

static void *pest_main(void *arg)
{
	struct pest *p = arg;

	while (!atomic_load(&pest_stop)) {
		pthread_kill(p->target, p->sig);
		race_sleep_us(20);
	}
	return NULL;
}

static void app_signal_during_faults(int sig)
{
	const size_t pages = 4096;
	struct sigaction sa = { .sa_handler = pest_handler };
	char path[TMPSTORE_PATH_MAX];
	struct pest p = { pthread_self(), sig };
	struct ufvm_config cfg;
	struct ufvm *vm;
	pthread_t th;
	long sum = 0;

	sigemptyset(&sa.sa_mask);
	cr_assert(sigaction(sig, &sa, NULL) == 0);
	assert_ok(ufvm_config_init(&cfg));
	cfg.fault_around = 1;	/* a fault per page */
	cfg.map_ahead = 0;
	vm = ut_open(&cfg);
	ut_store("pest", (off_t)(pages * PAGE), 2, path);
	pest_map = ut_map(vm, path, 0, pages * PAGE, UFVM_PROT_READ);
	atomic_store(&pest_calls, 0);
	/*
	 * Passes of faults until enough signals came.  The pages are zapped
	 * between passes with the signals stopped: a handler that touches
	 * ufvm memory must not interrupt a ufvm call (docs/architecture.md).
	 */
	for (int pass = 0; pass < 50 && atomic_load(&pest_calls) < 200; pass++) {
		atomic_store(&pest_stop, 0);
		pthread_create(&th, NULL, pest_main, &p);
		for (size_t i = 0; i < pages; i++) {
			pest_page = (long)i;
			sum += pest_map[i * PAGE];
		}
		atomic_store(&pest_stop, 1);
		pthread_join(th, NULL);
		assert_ok(ufvm_zap(vm, (void *)pest_map, pages * PAGE));
	}
	cr_assert(atomic_load(&pest_calls) > 0, "no signal was handled");
	cr_assert(sum >= 0);
	ut_unmap(vm, (void *)pest_map, pages * PAGE);
	ut_close(vm);
	signal(sig, SIG_DFL);
}

Test(threads, app_signal_during_faults, .timeout = 60)
{
	app_signal_during_faults(SIGUSR1);
}

Test(threads, app_realtime_signal_during_faults, .timeout = 60)
{
	app_signal_during_faults(SIGRTMIN);
}
