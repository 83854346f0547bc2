/* SPDX-License-Identifier: MIT */
/*
 * pager/pager.h - delivery backends and the fault path.
 *
 * A backend turns hardware faults into calls of pager_fault() and
 * implements the pmap ops (vm/pmap.h) on real page tables.  The fault path
 * is the same for every backend.
 */
#ifndef UFVM_PAGER_H
#define UFVM_PAGER_H

#include <signal.h>
#include <sys/mman.h>
#include <ufvm.h>

#include "vm/aspace.h"
#include "vm/policy.h"
#include "vm/region.h"
#include "vm/stats.h"

/*
 * Put an inaccessible anonymous mapping over [addr, addr+len), replacing
 * what is there in one step.  Return: 0 or -errno.
 */
static inline int pager_reserve(uintptr_t addr, size_t len)
{
	if (mmap((void *)addr, len, PROT_NONE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0) == MAP_FAILED)
		return -errno;
	return 0;
}

/*
 * Every backend's detach (vm/pmap.h): reserve @r's range if @reserve,
 * else (or if that fails) unmap it.  With userfaultfd either unregisters
 * the range and wakes any thread still waiting there.
 */
static inline void pager_detach(struct vm_pmap *pm, struct vm_region *r, bool reserve)
{
	size_t len = r->end - r->start;

	(void)pm;
	if (!reserve || pager_reserve(r->start, len))
		munmap((void *)r->start, len);
}

/*
 * pager_signal_forward - deliver @sig, which ufvm does not serve, to the
 * application's action @sa (saved when ufvm installed its own handler),
 * as the kernel would: @sa's mask (and @sig unless SA_NODEFER) blocked
 * during the call; SA_RESETHAND turns @sa into SIG_DFL.  For SIG_DFL and
 * SIG_IGN of a signal a fault raised, the default action is restored: the
 * caller returns and the faulting access, retried, kills the process.  A
 * sent one (si_code <= 0: kill, sigqueue) stays ignored if ignored; with
 * the default action it is raised again under SIG_DFL, delivered as the
 * handler returns.
 * Context: signal handler of the faulting thread; async-signal-safe; may
 * not return (the action may siglongjmp).
 */
void pager_signal_forward(struct sigaction *sa, int sig, siginfo_t *si, void *uc);

/*
 * pager_action_is_handler - whether @sa runs a function of the
 * application's (not the default action, not ignored, not a NULL
 * SA_SIGINFO handler, which is the default).  Context: async-signal-safe.
 */
bool pager_action_is_handler(const struct sigaction *sa);

/*
 * pager_sigbus_is_ufvms - whether @sa is in-thread delivery's SIGBUS
 * handler (pager/uffd.c), which takes a SIGBUS at an address of no uffd
 * region for a race with an unmap.  Context: async-signal-safe.
 */
bool pager_sigbus_is_ufvms(const struct sigaction *sa);

/*
 * pager_fault_error - the page-fault error code of the fault whose signal
 * context is @uc (x86-64: PAGER_PF_* bits), or -1 where none is known
 * (another architecture, or @uc NULL).  Context: signal handler.
 */
#define PAGER_PF_WRITE	0x2	/* the access was a store */
#define PAGER_PF_INSTR	0x10	/* ... an instruction fetch */
long pager_fault_error(const void *uc);

/*
 * Faults a signal delivery serves in application threads, counted so that
 * destroying the backend waits for them: the handler counts one in its RCU
 * section, having found its backend there, and uncounts it before it
 * returns or forwards the signal (a forwarded action may not return).
 */
static inline void pager_busy_enter(uint32_t *busy)
{
	__atomic_add_fetch(busy, 1, __ATOMIC_SEQ_CST);
}

static inline void pager_busy_exit(uint32_t *busy)
{
	__atomic_sub_fetch(busy, 1, __ATOMIC_SEQ_CST);
}

/*
 * Wait until no fault counted in @busy is being served.  Context: after
 * the backend left the handler's list and a grace period passed; may
 * sleep.
 */
void pager_busy_wait(uint32_t *busy);

/* Fault flags. */
#define PF_WRITE	0x1u	/* write access */
#define PF_WP		0x2u	/* write to a write-protected page (mkwrite) */
#define PF_ALLOW_RETRY	0x4u	/* may drop mmap_lock and return RETRY */
#define PF_TRIED	0x8u	/* second attempt */

/*
 * The result of one attempt at a fault.
 *   DONE      the fault is resolved (mapped, or woken to fault again);
 *   RETRY     mmap_lock was dropped to wait; try again without
 *             PF_ALLOW_RETRY (it cannot starve: the page is cached now);
 *   FALLBACK  the speculative attempt gave up: take the locked path;
 *   SIGBUS    the faulting thread was sent SIGBUS (past EOF, read error,
 *             a page the backend could not map);
 *   NOMAP     inside pager/fault.c only: the backend failed to map the
 *             faulting page (a speculative fault falls back on it, the
 *             locked path answers SIGBUS).
 */
enum pager_fault_result {
	PAGER_DONE,
	PAGER_RETRY,
	PAGER_FALLBACK,
	PAGER_SIGBUS,
	PAGER_NOMAP,
};

struct pager_fault {
	struct vm_aspace *as;
	const struct vm_policy *pol;
	struct vm_stats_shard *stats;
	uintptr_t addr;		/* page aligned */
	unsigned int flags;	/* PF_* */
	unsigned int path;	/* enum ufvm_path that served it */
	uint64_t install_ns;	/* time in the backend's install calls */
	/* Called, if set, before the fault waits for the store's I/O. */
	void (*will_wait)(void *arg);
	void *wait_arg;
};

/*
 * pager_fault - serve one fault to completion (with its retry).
 * Context: no lock held; may sleep (store I/O, page locks, mmap_lock).
 * Return: the final enum pager_fault_result (never RETRY or FALLBACK).
 */
int pager_fault(struct pager_fault *vmf);

/*
 * pager_cancel_off - disable the calling thread's cancellation around a
 * fault it serves in its own signal handler: a deferred cancel acted on at
 * a store read or a lock wait would unwind out of the handler with a page
 * lock, mmap_lock and the busy count held, and the next touch of the page
 * would hang.  (A kernel page fault is no cancellation point either.)
 * pager_cancel_restore(), the handler's last step (after its busy count
 * is dropped): a pending asynchronous cancel is acted on there.  With
 * UFVM_DEBUG_CANCEL_INSIDE (tests) the state is left alone (-1).
 * Context: signal handler; async-signal-safe.  Return: the old state, or -1.
 */
int pager_cancel_off(const struct vm_policy *pol);
void pager_cancel_restore(int cs);

/* A delivery backend. */
struct pager_backend {
	struct vm_pmap pmap;		/* installs/zaps for vm/ */
	const char *name;
	/* Stop delivering and free the backend.  Context: no region left. */
	void (*destroy)(struct pager_backend *be);
	/*
	 * Optional: the addresses of up to @max poisons that have been in
	 * place for PAGER_POISON_HOLD_NS, each forgotten as it is returned;
	 * the caller zaps each, so that the next access there faults and is
	 * served again (a failed store read tried again).  Context: one
	 * caller at a time (the background thread: a second one could free
	 * a slot claimed again meanwhile), no lock held.  Return: how many.
	 */
	unsigned int (*poisons_due)(struct pager_backend *be, uintptr_t *addrs,
				    unsigned int max);
};

/* How long a poisoned address answers SIGBUS before it is zapped. */
#define PAGER_POISON_HOLD_NS	(100ull * 1000 * 1000)

struct pager_uffd_config {
	unsigned int threads;	/* 0: one per CPU */
	unsigned int spin_us;
	bool batch;		/* handlers SCHED_BATCH (no wake-up preemption) */
	bool park;		/* handlers with no faulting thread on their CPU
				   park (pager/uffd.c) */
	bool split;		/* large installs shared with installer threads */
	bool quiet;		/* no message when userfaultfd is unavailable */
	bool inthread;		/* UFFD_FEATURE_SIGBUS: faulting threads serve
				   their own faults from a SIGBUS handler */
};

/*
 * pager_uffd_create - the userfaultfd backend: handler threads reading a
 * userfaultfd that every region is registered with.
 * Return: 0 and *out, -EPERM (not permitted; a message naming the sysctl
 * went to stderr), -ENOSYS, -EOPNOTSUPP (a required feature is missing).
 */
int pager_uffd_create(struct vm_aspace *as, const struct vm_policy *pol,
		      struct vm_stats_set *stats, const struct pager_uffd_config *cfg,
		      struct pager_backend **out);

/*
 * pager_sigsegv_create - the libsigsegv backend: faulting threads serve
 * their own faults from a SIGSEGV handler (pager/sigsegv.c).
 * Return: 0 and *out, or -ENOTSUP, -ENOMEM.
 */
int pager_sigsegv_create(struct vm_aspace *as, const struct vm_policy *pol,
			 struct vm_stats_set *stats, struct pager_backend **out);

#endif /* UFVM_PAGER_H */
