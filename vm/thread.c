// SPDX-License-Identifier: MIT
/*
 * vm/thread.c - ufvm's own threads, the signals they and ufvm's signal
 * handlers block, and telling a fork()ed child from its parent.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vm/aspace.h"
#include "vm/compat.h"
#include "vm/rcu.h"

void vm_sigset_async(sigset_t *set)
{
	sigfillset(set);
	sigdelset(set, SIGSEGV);
	sigdelset(set, SIGBUS);
	sigdelset(set, SIGFPE);
	sigdelset(set, SIGILL);
	sigdelset(set, SIGTRAP);
	sigdelset(set, SIGABRT);
}

/*
 * Block every signal in this thread (for a thread of ufvm's to inherit);
 * *@old gets the mask to restore.  Those a fault of the thread raises
 * (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP) the kernel forces through the
 * mask with their default action, which kills the process as a bug should
 * (no handler runs, a sanitizer's included).  Blocked, one sent with
 * kill() waits for a thread of the application: unblocked, the kernel gave
 * it to a thread of ufvm's whenever the application's threads blocked it,
 * or whenever liburcu's worker unmasked signals before the sender took it,
 * and the application's handler ran there.
 */
static void async_block(sigset_t *old)
{
	sigset_t all;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, old);
}

static void async_restore(const sigset_t *old)
{
	pthread_sigmask(SIG_SETMASK, old, NULL);
}

int vm_thread_create(pthread_t *th, void *(*fn)(void *), void *arg)
{
	sigset_t old;
	int err;

	/*
	 * Signals of the application are not for ufvm's threads: a handler
	 * of its run on one could interrupt it holding a page lock and,
	 * touching ufvm memory, wait for a fault that only this thread could
	 * serve.  A fault of the thread itself still kills (async_block()).
	 * The thread inherits the mask.
	 */
	async_block(&old);
	err = pthread_create(th, NULL, fn, arg);
	async_restore(&old);
	return -err;
}

/*
 * liburcu runs call_rcu() callbacks (ufvm frees its pages, regions, index
 * nodes and objects that way) on a worker thread it starts the first time
 * one is queued, from whichever thread queues it, inheriting that
 * thread's signal mask: often an application thread's, which blocks
 * nothing.  The application's signals would then be delivered to it too,
 * and the handler run beside the thread that expects it.  The first
 * ufvm_open() starts it, with the application's signals blocked, and
 * names it.  (If the application queued callbacks of liburcu-bp's before,
 * the worker is there already, with the mask it was given then.)
 */
static bool rcu_worker_ours;	/* this copy of the library started it */

static void rcu_worker_name(struct call_rcu_data *crdp)
{
	if (crdp)
		pthread_setname_np(get_call_rcu_thread(crdp), "ufvm-rcu");	/* best effort */
}

static void rcu_worker_start(void)
{
	struct call_rcu_data *crdp;
	sigset_t old;

	async_block(&old);
	crdp = get_default_call_rcu_data();
	async_restore(&old);
	rcu_worker_ours = crdp != NULL;
	rcu_worker_name(crdp);
}

void vm_rcu_worker_init(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, rcu_worker_start);
}

/*
 * fork() copies only the forking thread: in the child the worker is gone,
 * callbacks queued there would never run (and ufvm_close()'s rcu_barrier()
 * would wait for them for ever), and urcu-bp's registry still lists the
 * parent's threads, some maybe inside a read-side section that will never
 * end.  urcu-bp's hooks hold the registry and the grace-period lock across
 * the fork and prune the registry in the child.  liburcu's call_rcu hooks
 * would also pause the worker first, but a worker that sleeps between
 * batches answers only after its 10 ms nap: every fork() of a process
 * that had used ufvm took 12 ms instead of 0.08.  The pause protects
 * nothing the child needs: in the child only its after-fork hook runs,
 * which drops the dead worker (its pending callbacks, the parent's frees,
 * go to the new one) and starts a new worker if there was one, here with
 * the application's signals blocked.
 */
unsigned int vm_rcu_gate;	/* vm_call_rcu() */

/*
 * Other layers' mutexes that a fork()ed child must find unlocked, with
 * whole data behind them: the pager's lists of backends, held while
 * ufvm_open() and ufvm_close() install or give back a signal handler.  A
 * child forked meanwhile would inherit them locked, by a thread it does
 * not have, and hang in its first ufvm_open().  The prepare hook takes
 * them after fork_lock (which serialises forks; none of their holders
 * waits for anything of ufvm's), the parent and child hooks release them.
 */
#define FORK_HELD_MAX	4
static pthread_mutex_t *fork_held[FORK_HELD_MAX];	/* set by constructors */
static unsigned int nfork_held;
static unsigned int fork_hold_off;	/* (a) UFVM_DEBUG_FORK_NO_HOLD instances */
static bool fork_holding;		/* (fork_lock) this fork holds them */

void vm_fork_hold(pthread_mutex_t *m)
{
	unsigned int i = __atomic_fetch_add(&nfork_held, 1, __ATOMIC_RELAXED);

	VM_BUG_ON(i >= FORK_HELD_MAX);
	__atomic_store_n(&fork_held[i], m, __ATOMIC_RELEASE);
}

void vm_fork_hold_off(int delta)
{
	__atomic_add_fetch(&fork_hold_off, (unsigned int)delta, __ATOMIC_RELAXED);
}

/* Context: the prepare hook, fork_lock held; blocks. */
static void fork_hold_take(void)
{
	unsigned int i, n = MIN(__atomic_load_n(&nfork_held, __ATOMIC_RELAXED), FORK_HELD_MAX);

	fork_holding = !__atomic_load_n(&fork_hold_off, __ATOMIC_RELAXED);	/* else: tests */
	for (i = 0; fork_holding && i < n; i++) {
		pthread_mutex_t *m = __atomic_load_n(&fork_held[i], __ATOMIC_ACQUIRE);

		if (m)
			pthread_mutex_lock(m);
	}
}

/* Context: the parent and child hooks, fork_lock held. */
static void fork_hold_release(void)
{
	unsigned int i = MIN(__atomic_load_n(&nfork_held, __ATOMIC_RELAXED), FORK_HELD_MAX);

	while (fork_holding && i-- > 0) {
		pthread_mutex_t *m = __atomic_load_n(&fork_held[i], __ATOMIC_ACQUIRE);

		if (m)
			pthread_mutex_unlock(m);
	}
	fork_holding = false;
}

static uint32_t instances;	/* (a) open in this process */
static uint32_t caches_apart;	/* (a) 1 for good: see vm_caches_apart() */

void vm_instances_add(int delta)
{
	if (__atomic_add_fetch(&instances, (uint32_t)delta, __ATOMIC_SEQ_CST) > 1)
		__atomic_store_n(&caches_apart, 1, __ATOMIC_RELAXED);
}

bool vm_caches_apart(void)
{
	return __atomic_load_n(&caches_apart, __ATOMIC_RELAXED);
}

void vm_rcu_fork_prepare(void)
{
	if (__atomic_load_n(&instances, __ATOMIC_SEQ_CST))	/* parent and child apart */
		__atomic_store_n(&caches_apart, 1, __ATOMIC_RELAXED);
	vm_aspace_fork_prepare();	/* the regions' ranges, for the child */
	fork_hold_take();
	/* After fork_lock: a caller of vm_call_rcu() may hold it meanwhile. */
	__atomic_fetch_or(&vm_rcu_gate, 1, __ATOMIC_ACQUIRE);
	while (__atomic_load_n(&vm_rcu_gate, __ATOMIC_ACQUIRE) != 1)
		sched_yield();	/* calls in flight */
#ifdef __SANITIZE_ADDRESS__
	/*
	 * The sanitizer's allocator (GCC 12's) takes no lock around fork():
	 * a child forked while the worker was in free() inherits the
	 * allocator's lock held and hangs at its first malloc().  Pause the
	 * worker there, whatever it costs (api/test_fork hung 1 run in ~20
	 * under ctest -j2).  glibc's malloc locks itself across fork().
	 */
	call_rcu_before_fork();
#endif
	rcu_bp_before_fork();
}

void vm_rcu_fork_parent(void)
{
	rcu_bp_after_fork_parent();
#ifdef __SANITIZE_ADDRESS__
	call_rcu_after_fork_parent();
#endif
	__atomic_fetch_and(&vm_rcu_gate, ~1u, __ATOMIC_RELEASE);
	fork_hold_release();
	vm_aspace_fork_parent();
}

void vm_rcu_fork_child(void)
{
	struct call_rcu_data *crdp = NULL;
	sigset_t old;

	fork_hold_release();
	vm_aspace_fork_child();	/* before the worker's stack is mapped */
	rcu_bp_after_fork_child();
	async_block(&old);
	call_rcu_after_fork_child();
	__atomic_store_n(&vm_rcu_gate, 0, __ATOMIC_RELEASE);	/* no call was in flight */
	if (rcu_worker_ours)	/* restarted above: this only finds it */
		crdp = get_default_call_rcu_data();
	async_restore(&old);
	rcu_worker_name(crdp);
}

/*
 * The hooks must run once per fork, however many copies of the library
 * the process holds (they share one liburcu-bp: a second
 * rcu_bp_before_fork() waits for ever on the lock the first took).
 * Under the preload, whose copy is linked into it (and a program it runs
 * may link its own), the preload's fork handlers, registered first thing
 * when it loads, call them at the right points of their own work; any
 * other process registers them here, when the library loads, so that
 * they run after the prepare handlers and before the child handlers that
 * the program registers later.
 */
__attribute__((constructor)) static void rcu_fork_handlers_init(void)
{
	if (!dlsym(RTLD_DEFAULT, "ufvm_preload_managed"))
		pthread_atfork(vm_rcu_fork_prepare, vm_rcu_fork_parent, vm_rcu_fork_child);
}

/*
 * One page for the whole process, made when the library loads (before any
 * region: a page made later could land in a range a fork()ed child keeps
 * for its regions): it holds this process's pid, and reads as zero in a
 * fork()ed child (MADV_WIPEONFORK) until the child makes an instance.
 */
static volatile pid_t *fork_page;

__attribute__((constructor)) static void fork_page_init(void)
{
	void *p = mmap(NULL, PAGE_SIZE, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return;
	if (madvise(p, PAGE_SIZE, MADV_WIPEONFORK)) {
		munmap(p, PAGE_SIZE);	/* older kernels: ask getpid() */
		return;
	}
	fork_page = p;
	*fork_page = getpid();
}

int vm_fork_id_init(struct vm_fork_id *id)
{
	id->pid = getpid();
	if (fork_page) {
		/* Wiped: a child of a fork; its instances carry its pid. */
		pid_t zero = 0;

		if (__atomic_compare_exchange_n(fork_page, &zero, id->pid, false,
						__ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST) &&
		    __atomic_load_n(&instances, __ATOMIC_SEQ_CST))
			/* A child made with the parent's instances open, without
			 * the fork hooks (a raw system call): apart too. */
			__atomic_store_n(&caches_apart, 1, __ATOMIC_RELAXED);
	}
	return 0;
}

bool vm_forked(const struct vm_fork_id *id)
{
	if (fork_page)
		return __atomic_load_n(fork_page, __ATOMIC_RELAXED) != id->pid;
	return getpid() != id->pid;
}
