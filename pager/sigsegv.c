// SPDX-License-Identifier: MIT
/*
 * pager/sigsegv.c - the libsigsegv delivery backend, for hosts where
 * userfaultfd is not allowed.
 *
 * A region is reserved PROT_NONE; an access raises SIGSEGV, and the
 * faulting thread serves its own fault from libsigsegv's handler through
 * the same fault path as the userfaultfd backend (pager_fault()).  The pmap
 * operations become mappings of the object's memfd:
 *   install    mmap(MAP_FIXED|MAP_SHARED|MAP_POPULATE) of the frames,
 *              read-only for a clean page of a writable region (dirty
 *              tracking), writable for a dirty one; adjacent runs merge
 *              into one mapping.  Populated: else the first access to each
 *              page takes a fault of the kernel's own (one a page for a
 *              store; docs/performance.md, "Populated installs")
 *   zap        mmap(MAP_FIXED) of PROT_NONE anonymous memory over the range
 *   protect    mprotect
 *   poison     SIGBUS queued to the faulting thread (per fault, like the
 *              kernel's); else a mapping of an empty memfd: any access
 *              raises SIGBUS until the range is zapped
 *   wake       nothing: the faulting thread is the one serving the fault
 *
 * Signal context.  The whole fault path runs in the handler, so it must not
 * call malloc (pages and index nodes come from vm/pool.c, statistics shards
 * are mmap'd) and must not take a lock the interrupted code may hold.  ufvm
 * never touches application memory while holding one of its own locks (the
 * user buffers of ufvm_pread/ufvm_pwrite go through a bounce buffer), so a
 * fault inside a ufvm locked section is a bug: the handler checks the
 * thread's held-lock count and aborts with a message instead of deadlocking.
 *
 * What libsigsegv does not tell: the access type.  On x86-64 the fault's
 * context does (the page-fault error code, segv_entry() keeps it): a load
 * is served as a read whatever the shadow says, a page counted mapped
 * being mapped again (another thread's fault may have mapped it
 * write-protected since this one's, or a zap may be under way); a store to
 * a page not mapped, in a writable region, as a write: filled dirty and
 * mapped writable, one fault (not a read, then mkwrite).  Else, and
 * for writes, the handler infers it from the region's shadow bitmaps: a
 * fault on a page mapped read-only in a writable region is a write
 * (mkwrite; a load taken so made the page dirty, and got SIGBUS while the
 * store refused writes: race/test_reads_vs_install); a fault on a page that is mapped
 * writable, or mapped in a read-only region, was either a race with another
 * thread's install (retry the access once) or a genuine protection fault (the
 * same address faults again at once: the SIGSEGV goes to the action that
 * was installed before ufvm's, called directly with the signal's siginfo
 * and context; ufvm's handler stays, so a handler that recovers does not
 * take later faults away from ufvm).  A fault outside every region goes
 * to that action the same way: declined, libsigsegv would reset the action
 * to the default and kill the process without the application's handler
 * ever running.
 *
 * A SIGSEGV that no fault raised (kill(), sigqueue()) never reaches
 * libsigsegv, which would decline it and reset the action, losing it: it
 * goes to the action installed before ufvm's, the default one taken at
 * once (segv_entry()).
 *
 * vm.max_map_count: every install may split the region's mapping.  The
 * backend counts installs and, past half the limit, zaps every region back
 * to one mapping (the pages stay cached; later accesses refault cheaply).
 *
 * fork(): the child inherits the handler and the backend list but not the
 * regions (MADV_DONTFORK, on the reservation and on every install, zap
 * and poison mapped over it since: a new mapping does not inherit it).  A
 * fault in a process other than the one that created the backend is
 * passed on: the child gets SIGSEGV, as ufvm_map() documents, never the
 * parent's frames.  A child made any way (fork(), _Fork(), a raw system
 * call) is told by a page of the backend's that it sees wiped
 * (vm_fork_id): no system call per fault.
 *
 * Limit: a system call given a not-yet-mapped page of a region fails with
 * EFAULT instead of faulting (the kernel does not raise SIGSEGV for it).
 * ufvm's own calls (ufvm_pread, ufvm_pwrite, write-back) never touch
 * region memory, so they are immune.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sigsegv.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#include "pager/pager.h"
#include "vm/object.h"
#include "vm/region.h"

struct sigsegv_backend {
	struct pager_backend be;
	struct vm_aspace *as;		/* (c) */
	const struct vm_policy *pol;	/* (c) */
	struct vm_stats_set *stats;	/* (c) */
	int poison_fd;			/* (c) an empty memfd */
	uint64_t maps;			/* (a) mappings made since the last coalesce */
	uint64_t maps_limit;		/* (c) */
	struct vm_fork_id made_by;	/* (c) the process that created it */
	uint32_t busy;			/* (a) faults being served */
	struct sigsegv_backend *next;	/* (backends_lock) */
};

#define to_sb(pm) container_of(pm, struct sigsegv_backend, be.pmap)

/* The live backends; the handler walks the list under RCU. */
static struct sigsegv_backend *backends;	/* rcu */
static pthread_mutex_t backends_lock = PTHREAD_MUTEX_INITIALIZER;

/* A fork()ed child must find it unlocked (vm_fork_hold()). */
__attribute__((constructor)) static void backends_lock_fork_init(void)
{
	vm_fork_hold(&backends_lock);
}
static bool handler_installed;			/* (backends_lock) */
static struct sigaction saved_segv;		/* the action libsigsegv replaced */
static struct sigaction libsigsegv_act;		/* libsigsegv's own, wrapped by segv_entry */
static bool saved_is_libsigsegv;		/* (backends_lock) saved_segv is libsigsegv's */

/* The signal segv_handler() runs for (libsigsegv does not pass it on). */
static __thread siginfo_t *cur_si;
static __thread void *cur_uc;
static __thread int cancel_prev = -1;	/* segv_handler()'s, for segv_entry() */
static __thread uintptr_t declined_at;	/* the page segv_handler() last declined */

/*
 * The last address this thread retried, and the region's pmap_seq then:
 * the same fault again with no change to the mapping in between is a real
 * protection fault (a read of a page mapped readable cannot fault).
 */
static __thread uintptr_t last_retry;
static __thread uint64_t last_retry_seq;
static __thread uint64_t last_retry_since;	/* vm_now_ns() of its first retry */

/*
 * A fault on a page the shadow says is mapped writable can also come from
 * a change of the region in progress on another thread (a split or
 * reprotect under mmap_lock, which is seen through another region's
 * bits): it is retried until it has repeated, with no change to the
 * mapping, for this long; only then is it genuine (a call into the
 * mapping: ufvm never maps PROT_EXEC).  Legitimate races are over in
 * microseconds.
 */
#define GENUINE_AFTER_NS	(200ull * 1000 * 1000)

static off_t file_off(struct vm_region *r, uintptr_t addr)
{
	return (off_t)(vm_region_pgidx(r, addr) << PAGE_SHIFT);
}

/*
 * Keep a mapping just made over a region out of fork() children: a new
 * mmap() does not inherit the reservation's MADV_DONTFORK, and a child
 * that inherited an install would read (and, mapped writable, write) the
 * parent's frames without faulting; the fork hook's MAP_FIXED_NOREPLACE
 * reservation of the range would fail there too.  The madvise() merges
 * the mapping with its neighbours of the same kind instead of splitting
 * anything.  (A fork() by another thread between the mmap() and this call
 * still inherits the range.)
 */
static int nofork(uintptr_t addr, size_t len)
{
	return madvise((void *)addr, len, MADV_DONTFORK) ? -errno : 0;
}

static int s_install(struct vm_pmap *pm, struct vm_region *r, uintptr_t addr,
		     size_t len, bool wp)
{
	r->pmap_seq++;	/* under the ptl, like every pmap op */
	struct sigsegv_backend *sb = to_sb(pm);
	int prot = PROT_READ | ((r->writable && !wp) ? PROT_WRITE : 0);

	/* One memfd: lib/ufvm.c does not stripe this backend's objects. */
	if (mmap((void *)addr, len, prot, MAP_SHARED | MAP_FIXED | MAP_POPULATE,
		 r->object->memfds[0], file_off(r, addr)) == MAP_FAILED) {
		int err = -errno;

		vm_stat_inc(vm_stats_shard_get(sb->stats), UFVM_CTR_INSTALL_ERRORS);
		if (err == -ENOMEM)	/* the map limit: coalesce at the next fault */
			__atomic_store_n(&sb->maps, sb->maps_limit + 1, __ATOMIC_RELAXED);
		return err;
	}
	__atomic_fetch_add(&sb->maps, 2, __ATOMIC_RELAXED);
	vm_hook(r->object->pol, UFVM_HOOK_SEGV_INSTALLED, addr, len);
	return nofork(addr, len);	/* on error the caller zaps the run */
}

static int s_zap(struct vm_pmap *pm, struct vm_region *r, uintptr_t addr, size_t len)
{
	r->pmap_seq++;	/* under the ptl, like every pmap op */
	vm_stat_inc(vm_stats_shard_get(to_sb(pm)->stats), UFVM_CTR_ZAPS);
	int err;

	if (len < ((r->end - r->start)))	/* a hole inside a mapping splits it */
		__atomic_fetch_add(&to_sb(pm)->maps, 2, __ATOMIC_RELAXED);
	err = pager_reserve(addr, len);
	if (err == -ENOMEM) {	/* the map limit: coalesce at the next fault */
		__atomic_store_n(&to_sb(pm)->maps, to_sb(pm)->maps_limit + 1, __ATOMIC_RELAXED);
		/*
		 * Past the limit even the whole region's reservation, a new
		 * mapping, is refused.  Made inaccessible where it is (no new
		 * mapping: whole mappings change protection), each of its
		 * pages faults again and is installed afresh.  Every piece
		 * has MADV_DONTFORK already.
		 */
		if (len == r->end - r->start && !mprotect((void *)addr, len, PROT_NONE))
			return 0;
	}
	if (err)
		return err;
	/*
	 * Not inherited either: with nothing of the region in a child, the
	 * fork hook can reserve the whole range there.  Best effort: the
	 * range is unmapped whether or not this takes.
	 */
	nofork(addr, len);
	return 0;
}

static int s_protect(struct vm_pmap *pm, struct vm_region *r, uintptr_t addr,
		     size_t len, bool wp)
{
	r->pmap_seq++;	/* under the ptl, like every pmap op */
	if (mprotect((void *)addr, len, PROT_READ | (wp ? 0 : PROT_WRITE))) {
		int err = -errno;

		if (err == -ENOMEM)	/* the map limit: coalesce at the next fault */
			__atomic_store_n(&to_sb(pm)->maps, to_sb(pm)->maps_limit + 1,
					 __ATOMIC_RELAXED);
		return err;
	}
	/*
	 * A page's protection apart from its neighbours' splits the mapping:
	 * counted like the zaps' splits, so that the regions are coalesced
	 * before vm.max_map_count makes mprotect fail (ENOMEM).
	 */
	if (len < r->end - r->start)
		__atomic_fetch_add(&to_sb(pm)->maps, 2, __ATOMIC_RELAXED);
	return 0;
}

static uintptr_t bit_addr(struct vm_region *r, uint64_t b)
{
	return r->start + (b << PAGE_SHIFT);
}

/*
 * Find the next run of set bits of @map from *@b, short of @end: its first
 * bit in *@s, *@b just past it.  Return: false if there is none.
 */
static bool next_run(const uint64_t *map, uint64_t *b, uint64_t end, uint64_t *s)
{
	while (*b < end && !bit_test(map, *b))
		(*b)++;
	if (*b == end)
		return false;
	for (*s = *b; *b < end && bit_test(map, *b); (*b)++)
		;
	return true;
}

/*
 * Give the pages of the mapped run [s, e) of @r (region-relative bits)
 * back the protection their shadow bits say: writable where r->wmapped is
 * set (a page mapped read-only stays so).  Context: ptl held.
 * Return: 0 or -errno (the run is then partly restored).
 */
static int restore_run_locked(struct vm_region *r, uint64_t s, uint64_t e)
{
	uint64_t b = s, w;

	while (next_run(r->wmapped, &b, e, &w)) {
		if (mprotect((void *)bit_addr(r, w), (b - w) << PAGE_SHIFT,
			     PROT_READ | PROT_WRITE))
			return -errno;
	}
	return 0;
}

/*
 * Unmap the mapped run [s, e) of @r and forget it: clear its bits and
 * drop its pages' mapcounts, as a zap by vm/ does.  One mapping over the
 * whole run: its ends are those of its mappings (holes are separate
 * reservations), so nothing is split unless the range being changed ended
 * inside the run.  Context: ptl held.
 * Return: 0 or -errno (nothing changed).
 */
static int forget_run_locked(struct sigsegv_backend *sb, struct vm_region *r, uint64_t s,
			     uint64_t e)
{
	uintptr_t a = bit_addr(r, s);
	size_t len = (e - s) << PAGE_SHIFT;
	uint64_t b;
	int err;

	err = pager_reserve(a, len);
	if (err)
		return err;
	nofork(a, len);	/* a PROT_NONE range, if inherited: no frames */
	vm_stat_inc(vm_stats_shard_get(sb->stats), UFVM_CTR_ZAPS);
	vm_rcu_read_lock();
	for (b = s; b < e; b++) {
		struct vm_page *p = vm_object_lookup_rcu(r->object, r->pgoff + b);

		VM_BUG_ON(!p);	/* mapped => in the index */
		vm_page_map_drop(p);
		bit_clear(r->mapped, b);
		bit_clear(r->wmapped, b);
	}
	vm_rcu_read_unlock();
	return 0;
}

/*
 * A change of bits [lo, hi) of @r to read-only failed part-way (ENOMEM
 * from a split at vm.max_map_count, or anything else): the runs before
 * the failing one are read-only, the failing one partly, and the shadow
 * still says "mapped writable" of their dirty pages, in a region that
 * stays writable.  A write there would be taken for a genuine protection
 * fault.  Put each run back as it was; one that cannot be put back (its
 * pages may be in either state) is unmapped, so that a later access
 * faults and is served again.  Restoring mostly reuses the mapping slots
 * the change freed by merging a run's read-only and writable mappings.
 * Context: ptl held.
 */
static void undo_read_only_locked(struct sigsegv_backend *sb, struct vm_region *r,
				  uint64_t lo, uint64_t hi)
{
	uint64_t b = lo, s;

	while (next_run(r->mapped, &b, hi, &s)) {
		if (restore_run_locked(r, s, b) && forget_run_locked(sb, r, s, b)) {
			/*
			 * Neither: the shadow may be wrong about this run.  The
			 * next fault coalesces the backend's regions, zapping
			 * it with the rest.
			 */
			__atomic_store_n(&sb->maps, sb->maps_limit + 1, __ATOMIC_RELAXED);
		}
	}
}

static int s_set_prot(struct vm_pmap *pm, struct vm_region *r, uintptr_t addr,
		      size_t len, bool writable)
{
	struct sigsegv_backend *sb = to_sb(pm);
	uint64_t lo = (addr - r->start) >> PAGE_SHIFT, end = lo + (len >> PAGE_SHIFT);
	uint64_t b = lo, s;
	int err;

	r->pmap_seq++;	/* under the ptl, like every pmap op */
	if (writable)
		return 0;	/* mapped pages are read-only until mkwrite */
	/* Holes are PROT_NONE reservations: only mapped runs change. */
	while (next_run(r->mapped, &b, end, &s)) {
		if (mprotect((void *)bit_addr(r, s), (b - s) << PAGE_SHIFT, PROT_READ)) {
			err = -errno;
			/* The region stays writable: so must the pages be. */
			undo_read_only_locked(sb, r, lo, b);
			if (err == -ENOMEM)	/* the map limit: coalesce at the next fault */
				__atomic_store_n(&sb->maps, sb->maps_limit + 1, __ATOMIC_RELAXED);
			return err;
		}
		__atomic_fetch_add(&sb->maps, 2, __ATOMIC_RELAXED);	/* splits */
	}
	return 0;
}

static int s_wake(struct vm_pmap *pm, struct vm_region *r, uintptr_t addr, size_t len)
{
	return 0;	/* the faulting thread serves itself */
}

/*
 * Queue SIGBUS (BUS_ADRERR, the faulting address) to this thread for the
 * fault it serves, as the kernel's own fault would raise it: blocked until
 * the handler returns, it is delivered at the faulting access, with its
 * context, the action's flags and the interrupted mask, and if the
 * handler returns the access runs again, faults again and is served again
 * (a store read that failed is tried again).  Only to an application's
 * handler that the interrupted context does not block: a signal queued,
 * not raised by a fault, is dropped where the action ignores it (the
 * access would fault for ever: errors/read_eio_sigbus_ignored_kills),
 * waits where it is blocked, and is dropped too where the action is the
 * default in the init of a PID namespace; the kernel forces a fault's
 * signal through all of those, and the process dies, as it should.  Nor
 * to in-thread delivery's handler (an instance of the uffd backend in the
 * same process), which takes a SIGBUS at an address of none of its
 * regions for a race with an unmap.  Nor without the fault's context.
 * Context: signal handler of the faulting thread.  Return: queued.
 */
static bool queue_sigbus(uintptr_t addr, size_t len)
{
	const ucontext_t *uc = cur_uc;
	struct sigaction act;
	sigset_t bus;
	siginfo_t si;
	uintptr_t at;

	if (!uc || !cur_si || sigismember(&uc->uc_sigmask, SIGBUS) ||
	    sigaction(SIGBUS, NULL, &act) || !pager_action_is_handler(&act) ||
	    pager_sigbus_is_ufvms(&act))
		return false;
	at = (uintptr_t)cur_si->si_addr;
	if (at < addr || at - addr >= len)
		at = addr;	/* (not this fault's page: cannot happen) */
	sigemptyset(&bus);
	sigaddset(&bus, SIGBUS);
	pthread_sigmask(SIG_BLOCK, &bus, NULL);	/* the handler's return puts uc's back */
	memset(&si, 0, sizeof(si));
	si.si_signo = SIGBUS;
	si.si_code = BUS_ADRERR;	/* a positive code: to the calling thread only */
	si.si_addr = (void *)at;
	return !syscall(SYS_rt_tgsigqueueinfo, getpid(), syscall(SYS_gettid), SIGBUS, &si);
}

/*
 * force_sigbus - what the kernel's force_sig_fault() does, for a fault
 * that can be neither served nor poisoned (no mapping left for the
 * poison, vm.max_map_count): SIGBUS to the faulting thread, at the default
 * action if it is ignored or blocked (then unblocked in the context the
 * handler returns to), so that the process dies of it rather than the
 * access faulting for ever.  A handler the application installed and
 * left unblocked gets it as queue_sigbus() would have given it.  The init
 * of a PID namespace drops a signal at its default action that it sends
 * itself (the kernel's forced one it would not): it aborts instead.
 * Context: signal handler of the faulting thread.  Return: queued.
 */
static void fatal(const char *msg);

static bool force_sigbus(uintptr_t addr)
{
	ucontext_t *uc = cur_uc;
	struct sigaction act, dfl;
	siginfo_t si;

	if (!uc || sigaction(SIGBUS, NULL, &act))
		return false;
	if (sigismember(&uc->uc_sigmask, SIGBUS) || !pager_action_is_handler(&act) ||
	    pager_sigbus_is_ufvms(&act)) {
		if (getpid() == 1)
			fatal("ufvm: a SIGBUS a namespace's init cannot send itself: abort\n");
		memset(&dfl, 0, sizeof(dfl));
		dfl.sa_handler = SIG_DFL;
		sigaction(SIGBUS, &dfl, NULL);
		sigdelset(&uc->uc_sigmask, SIGBUS);
	}
	memset(&si, 0, sizeof(si));
	si.si_signo = SIGBUS;
	si.si_code = BUS_ADRERR;
	si.si_addr = (void *)addr;
	return !syscall(SYS_rt_tgsigqueueinfo, getpid(), syscall(SYS_gettid), SIGBUS, &si);
}

/*
 * The fault's answer is SIGBUS: queued to the faulting thread, per fault,
 * like the kernel's (queue_sigbus()); where it cannot be, the range is
 * poisoned: a mapping of an empty memfd, where the access, run again,
 * raises the kernel's own SIGBUS, and so does every access until a zap;
 * where that mapping cannot be made either, forced (force_sigbus()).
 */
static int s_poison(struct vm_pmap *pm, struct vm_region *r, uintptr_t addr, size_t len)
{
	if (queue_sigbus(addr, len))
		return 0;
	r->pmap_seq++;	/* under the ptl, like every pmap op */
	/* Readable and writable, so that a write raises SIGBUS, not SIGSEGV. */
	if (mmap((void *)addr, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED,
		 to_sb(pm)->poison_fd, 0) == MAP_FAILED) {
		int err = -errno;

		return force_sigbus(addr) ? 0 : err;
	}
	__atomic_fetch_add(&to_sb(pm)->maps, 2, __ATOMIC_RELAXED);
	return nofork(addr, len);
}

static int s_attach(struct vm_pmap *pm, struct vm_region *r, uintptr_t hint)
{
	size_t len = r->npages << PAGE_SHIFT;
	void *a = mmap((void *)hint, len, PROT_NONE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | (hint ? MAP_FIXED : 0),
		       -1, 0);

	if (a == MAP_FAILED)
		return -errno;
	madvise(a, len, MADV_DONTFORK);
	r->start = (uintptr_t)a;
	r->end = (uintptr_t)a + len;
	return 0;
}

static const struct vm_pmap_ops sigsegv_pmap_ops = {
	.install = s_install,
	.zap = s_zap,
	.protect = s_protect,
	.set_prot = s_set_prot,
	.wake = s_wake,
	.poison = s_poison,
	.attach = s_attach,
	.detach = pager_detach,
};

/*
 * Too many mappings: zap every region back to one PROT_NONE mapping.
 * Context: RCU read section; signal safe; takes each region's ptl.
 */
static void coalesce_rcu(struct sigsegv_backend *sb)
{
	struct vm_region_array *a = vm_rcu_dereference(sb->as->regions);
	size_t i;

	__atomic_store_n(&sb->maps, 0, __ATOMIC_RELAXED);
	for (i = 0; i < a->n; i++)
		vm_region_zap_range(a->r[i], 0, UINT64_MAX);
}

static void fatal(const char *msg)
{
	ssize_t n = write(2, msg, strlen(msg));

	(void)n;
	abort();
}

/*
 * A SIGSEGV that is not ufvm's to serve goes to the action libsigsegv
 * replaced, called directly.  Unless that action is libsigsegv's own (the
 * application installed its stack-overflow handler, say, before ufvm's):
 * it would call segv_handler() again, for ever.  Then the fault is declined,
 * and libsigsegv does what it does for it without ufvm.
 * Return: segv_handler()'s.
 */
static int pass_on(void)
{
	if (saved_is_libsigsegv)
		return 0;
	pager_signal_forward(&saved_segv, SIGSEGV, cur_si, cur_uc);
	return 1;
}

/*
 * What the access that raised the SIGSEGV being served was: its
 * PAGER_PF_* bits if the fault's context says (x86-64), or -1 if nothing
 * says (another architecture, or no context: libsigsegv called
 * segv_handler() without segv_entry()).  Context: signal handler.
 */
static long fault_access(const struct vm_policy *pol)
{
	if (pol->debug & UFVM_DEBUG_GUESS_ACCESS)	/* the old guess, for tests */
		return -1;
	return pager_fault_error(cur_uc);
}

/*
 * The libsigsegv handler.  Context: signal handler of the faulting thread.
 * Return: 1: served, or passed to the action libsigsegv replaced (the
 * access is retried either way); 0: declined to libsigsegv (pass_on()).
 */
static int segv_handler(void *fault_address, int serious)
{
	uintptr_t addr = (uintptr_t)fault_address & PAGE_MASK;
	struct sigsegv_backend *sb;
	struct pager_fault vmf;
	struct vm_region *r = NULL;
	int saved = errno, ret = 1, cs = -1;
	bool mapped = false, wmapped = false, writable = false, busy = false;
	uint64_t seq = 0;
	long access;

	/*
	 * Declined, libsigsegv asks again (@serious) once it has found no
	 * stack overflow: declined again, or the retry bookkeeping below
	 * would take the second call for a new fault and retry it for ever.
	 */
	if (serious && declined_at == addr) {
		declined_at = 0;
		return 0;
	}
	declined_at = 0;
	vm_rcu_read_lock();
	for (sb = vm_rcu_dereference(backends); sb; sb = vm_rcu_dereference(sb->next)) {
		r = vm_aspace_find_rcu(sb->as, addr);
		if (r)
			break;
	}
	if (r && vm_forked(&sb->made_by)) {
		/*
		 * A fork()ed child inherited this handler and the region list,
		 * but not the regions (MADV_DONTFORK): it must get SIGSEGV, not
		 * the parent's frames (nor its ptl, which a parent thread may
		 * have held at the fork).
		 */
		vm_rcu_read_unlock();
		ret = pass_on();
		goto out;
	}
	if (r && vm_locks_held())
		fatal("ufvm: BUG: a fault on ufvm memory inside a ufvm locked section\n");
	if (r) {
		uint64_t b = vm_region_pgidx(r, addr) - r->pgoff;

		pager_busy_enter(&sb->busy);	/* ufvm_close waits for it */
		busy = true;

		/*
		 * Read the shadow under the ptl: every change of a page's
		 * protection and of its bits happens together under it, so
		 * what we read is what the kernel maps now.
		 */
		vm_mutex_lock(&r->ptl);
		if (!r->dead) {
			mapped = bit_test(r->mapped, b);
			wmapped = bit_test(r->wmapped, b);
		}
		writable = r->writable;
		seq = r->pmap_seq;
		vm_mutex_unlock(&r->ptl);
		if (__atomic_load_n(&sb->maps, __ATOMIC_RELAXED) > sb->maps_limit)
			coalesce_rcu(sb);
	}
	vm_rcu_read_unlock();
	if (!r && vm_locks_held())
		fatal("ufvm: BUG: a fault inside a ufvm locked section\n");
	if (!r) {
		/*
		 * Not ufvm's: the application's (its own guard page, a bad
		 * pointer).  Declined, libsigsegv would put the default action
		 * back and the access would kill the process without the
		 * action it installed before ufvm ever running; it gets the
		 * signal, as it would without ufvm.
		 */
		ret = pass_on();
		goto out;
	}
	access = fault_access(sb->pol);
	if (mapped && access >= 0 && !(access & (PAGER_PF_WRITE | PAGER_PF_INSTR))) {
		/*
		 * A load of a page counted mapped: the page went in since the
		 * fault (another thread's), or is being zapped.  A read fault
		 * maps it again (remap()), as the kernel's own answer would.
		 */
		mapped = false;
	} else if (mapped && (wmapped || !writable)) {
		/*
		 * Mapped writable, or mapped in a read-only region: a fault
		 * that raced with an install, or a genuine one (a write to a
		 * read-only region, an instruction fetch: PROT_EXEC is never
		 * set).
		 */
		if (last_retry == addr && last_retry_seq == seq && wmapped &&
		    vm_now_ns() - last_retry_since < GENUINE_AFTER_NS) {
			sched_yield();	/* let the change in progress finish */
			goto out;
		}
		if (last_retry == addr && last_retry_seq == seq) {
			/*
			 * The same fault twice: a real protection fault.  Hand
			 * it to the action libsigsegv replaced (the default, or
			 * the application's), which gets the SIGSEGV it would
			 * without ufvm; ufvm's handler stays installed.
			 */
			last_retry = 0;
			pager_busy_exit(&sb->busy);
			busy = false;
			ret = pass_on();
			goto out;
		}
		last_retry = addr;
		last_retry_seq = seq;
		last_retry_since = vm_now_ns();
		goto out;
	}
	last_retry = 0;
	vmf.as = sb->as;
	vmf.pol = sb->pol;
	vmf.stats = vm_stats_shard_get(sb->stats);
	vmf.addr = addr;
	if (mapped)
		vmf.flags = PF_WP | PF_WRITE;	/* mkwrite */
	else if (writable && access >= 0 && (access & PAGER_PF_WRITE))
		vmf.flags = PF_WRITE;	/* filled dirty and mapped writable: one fault */
	else
		vmf.flags = 0;	/* a read: a store then faults again (mkwrite) */
	vmf.will_wait = NULL;
	cs = pager_cancel_off(vmf.pol);
	pager_fault(&vmf);
out:
	if (busy)
		pager_busy_exit(&sb->busy);
	if (!ret)
		declined_at = addr;
	errno = saved;
	/*
	 * The state is restored last: by segv_entry(), after its own
	 * bookkeeping; here if libsigsegv called this without it (the
	 * application installed a libsigsegv handler after ufvm's, which
	 * put libsigsegv's own action back in front).
	 */
	if (cur_si)
		cancel_prev = cs;
	else
		pager_cancel_restore(cs);
	return ret;
}

/*
 * The process's SIGSEGV handler: libsigsegv's, called with the signal's
 * siginfo and context noted for segv_handler(), which may have to pass
 * them on.  Context: signal handler; async-signal-safe.
 */
static void segv_entry(int sig, siginfo_t *si, void *uc)
{
	siginfo_t *psi = cur_si;
	void *puc = cur_uc;
	int cs;

	if (si && si->si_code <= 0) {
		/*
		 * Sent, not a fault (kill(), sigqueue(), tgkill()): never
		 * ufvm's.  libsigsegv would take it for one at the sender's
		 * pid, decline it and put the default action back for the
		 * access to raise it again, which nothing does: the signal
		 * was lost and ufvm's handler with it.  It goes to the
		 * application's action instead, as without ufvm.
		 */
		pager_signal_forward(&saved_segv, sig, si, uc);
		return;
	}
	cur_si = si;
	cur_uc = uc;
	cancel_prev = -1;
	if (libsigsegv_act.sa_flags & SA_SIGINFO)
		libsigsegv_act.sa_sigaction(sig, si, uc);
	else
		libsigsegv_act.sa_handler(sig);
	cs = cancel_prev;
	cancel_prev = -1;
	cur_si = psi;
	cur_uc = puc;
	pager_cancel_restore(cs);	/* last: an asynchronous cancel acts here */
}

/*
 * Install libsigsegv's handler with segv_entry() in front of it.
 * Context: backends_lock held.  Return: 0 or -ENOTSUP.
 */
static int install_handler_locked(void)
{
	struct sigaction sa;
	sigset_t async;

	struct sigaction prev;

	/*
	 * What is there now is the application's, unless it is ours: put
	 * back by a program that saved the action while ufvm ran.  Ours is
	 * never saved (ufvm would forward genuine faults to itself).
	 */
	sigaction(SIGSEGV, NULL, &prev);
	if (!(prev.sa_flags & SA_SIGINFO) || prev.sa_sigaction != segv_entry)
		saved_segv = prev;
	if (sigsegv_install_handler(segv_handler) < 0 ||
	    sigaction(SIGSEGV, NULL, &libsigsegv_act))
		return -ENOTSUP;
	saved_is_libsigsegv = (saved_segv.sa_flags & SA_SIGINFO) ==
				      (libsigsegv_act.sa_flags & SA_SIGINFO) &&
			      ((saved_segv.sa_flags & SA_SIGINFO)
				       ? saved_segv.sa_sigaction == libsigsegv_act.sa_sigaction
				       : saved_segv.sa_handler == libsigsegv_act.sa_handler);
	sa = libsigsegv_act;
	sa.sa_sigaction = segv_entry;
	sa.sa_flags |= SA_SIGINFO;
	/*
	 * No signal of the application's while a fault is served: its
	 * handler could touch ufvm memory with this thread's locks held.
	 * They are delivered when the fault is done, as after a kernel fault.
	 */
	vm_sigset_async(&async);
	sigorset(&sa.sa_mask, &sa.sa_mask, &async);
	if (sigaction(SIGSEGV, &sa, NULL))
		return -ENOTSUP;
	return 0;
}

static void sigsegv_destroy(struct pager_backend *be)
{
	struct sigsegv_backend *sb = container_of(be, struct sigsegv_backend, be);
	struct sigsegv_backend **pp;

	pthread_mutex_lock(&backends_lock);
	for (pp = &backends; *pp; pp = &(*pp)->next) {
		if (*pp == sb) {
			rcu_assign_pointer(*pp, sb->next);
			break;
		}
	}
	if (!backends && handler_installed) {
		struct sigaction cur;

		/*
		 * The last one: give SIGSEGV back, and the next instance puts
		 * ours in front of whatever is there then.  Unless the
		 * application has installed its own since (it may hand on to
		 * ours): ours stays, and forwards everything.
		 */
		if (!sigaction(SIGSEGV, NULL, &cur) && (cur.sa_flags & SA_SIGINFO) &&
		    cur.sa_sigaction == segv_entry && !sigaction(SIGSEGV, &saved_segv, NULL))
			handler_installed = false;
	}
	pthread_mutex_unlock(&backends_lock);
	synchronize_rcu();	/* no handler still looks at it */
	if (!(sb->pol->debug & UFVM_DEBUG_CLOSE_NO_WAIT))	/* else: the bug, for tests */
		pager_busy_wait(&sb->busy);	/* nor serves a fault of it */
	close(sb->poison_fd);
	free(sb);
}

static uint64_t max_map_count(void)
{
	unsigned long v = 65530;
	FILE *f = fopen("/proc/sys/vm/max_map_count", "r");

	if (f) {
		if (fscanf(f, "%lu", &v) != 1)
			v = 65530;
		fclose(f);
	}
	return v;
}

int pager_sigsegv_create(struct vm_aspace *as, const struct vm_policy *pol,
			 struct vm_stats_set *stats, struct pager_backend **out)
{
	struct sigsegv_backend *sb = calloc(1, sizeof(*sb));
	int err = 0;

	if (!sb)
		return -ENOMEM;
	sb->be.pmap.ops = &sigsegv_pmap_ops;
	sb->be.name = "sigsegv";
	sb->be.destroy = sigsegv_destroy;
	sb->as = as;
	sb->pol = pol;
	sb->stats = stats;
	sb->maps_limit = max_map_count() / 2;
	err = vm_fork_id_init(&sb->made_by);
	if (err) {
		free(sb);
		return err;
	}
	sb->poison_fd = memfd_create("ufvm-poison", MFD_CLOEXEC);
	if (sb->poison_fd < 0) {
		err = -errno;
		free(sb);
		return err;
	}
	pthread_mutex_lock(&backends_lock);
	if (!handler_installed) {
		if (install_handler_locked()) {
			fprintf(stderr, "ufvm: libsigsegv cannot catch SIGSEGV on this system\n");
			err = -ENOTSUP;
		} else {
			handler_installed = true;
		}
	}
	if (!err) {
		sb->next = backends;
		rcu_assign_pointer(backends, sb);
	}
	pthread_mutex_unlock(&backends_lock);
	if (err) {
		close(sb->poison_fd);
		free(sb);
		return err;
	}
	*out = &sb->be;
	return 0;
}
