// SPDX-License-Identifier: MIT
/*
 * pager/uffd.c - the userfaultfd delivery backend.
 *
 * Every region is a MAP_SHARED mapping of its object's memfd, registered
 * MISSING|MINOR (and WP when writable): a hole in the memfd raises MISSING,
 * a frame that exists but is not mapped here raises MINOR (MINOR alone
 * would not see holes), a write to a page installed write-protected raises
 * WP (mkwrite).  Pages are installed with UFFDIO_CONTINUE (zero copy, the
 * frame is already in the memfd), with CONTINUE_MODE_WP for clean pages of
 * writable regions.
 *
 * Kernel behaviour handled here (DESIGN.md, "Kernel facts"):
 *  - UFFDIO_API works once per fd: features are probed on a throw-away fd;
 *  - CONTINUE on a page already mapped returns EEXIST and wakes nobody:
 *    skip the page and UFFDIO_WAKE the range at the end;
 *  - a partly done range returns EAGAIN with ->mapped bytes done;
 *  - POISON over a uffd-wp marker returns EEXIST: clear the marker
 *    (WRITEPROTECT 0, DONTWAKE) and poison again;
 *  - every blocked reader is woken on each fault: readers use a
 *    non-blocking fd and treat EAGAIN as "someone else took it".
 *
 * Handler threads: one per CPU, each pinned to its CPU, blocking in read()
 * on the userfaultfd itself (no poll: one system call less per fault).  The
 * handler on the faulting thread's CPU is woken locally, which is the cheap
 * case (docs/architecture.md has the figures).  A handler blocked in
 * read() leaves it only with a message, so to stop them the pager faults
 * once on a sentinel page of its own, and the stop passes from handler to
 * handler: each that reads a sentinel message counts itself out of ->live
 * and, unless it was the last, faults on the sentinel itself (a message
 * for another handler) before it exits; the last resolves the sentinel,
 * which wakes every thread waiting on it.  Counting handlers rather than
 * faults matters: a signal to a faulting thread makes it leave the fault
 * and fault again, so one fault may reach two handlers.  With a spin
 * budget (handler_spin_us) the fd is non-blocking and handlers poll the
 * stop eventfd with it instead.
 * Pinned handlers run SCHED_BATCH by default (handler_batch): every
 * handler is woken on each fault, and one woken on a CPU where an
 * application thread runs must not preempt it only to find the message
 * taken by the handler on the faulting thread's CPU, which is free then
 * (docs/architecture.md).
 *
 * Parking (handler_park): the wake-up of a handler on a CPU where no
 * faulting thread runs costs the faulting CPU an IPI, and when that handler
 * wins the message, a wake-up back across CPUs.  So a pinned handler that
 * serves a fault of a thread on another CPU, and has served none for a
 * thread on its own CPU for PARK_IDLE_NS, parks on a futex instead of
 * reading; a handler that serves a fault of a thread on a parked handler's
 * CPU unparks it.  The message names the thread (UFFD_FEATURE_THREAD_ID);
 * its CPU comes from /proc/self/task/TID/stat, re-read at most every
 * PARK_RECHECK_NS per thread and PARK_LOOKUP_GAP_NS per handler, so a
 * thread that moved to a parked handler's CPU is served across CPUs until
 * the next read shows the move.  One handler always reads (->nactive >= 1),
 * and the stop unparks every handler before it starts.  The readers are
 * pinned and may be unable to run, so a handler about to wait for the
 * store unparks the parked ones (handler_will_wait()), and a parked one
 * looks for unread faults every PARK_CHECK_NS (park_sleep()).
 *
 * Split installs (install_split): UFFDIO_CONTINUE costs about as much a
 * page as the kernel's whole fault of a page with fault-around, and a
 * sequential reader's map-ahead window of 256 pages is one call of ~57 us.
 * CONTINUEs of disjoint ranges run side by side on two CPUs.  So an
 * install of SPLIT_MIN_PAGES or more is cut into chunks; the caller takes
 * them from the front and the installer thread pinned to the next CPU from
 * the back, and the caller returns when all are in (install_split()).  The
 * installer's chunks belong to the caller's critical section: the caller
 * holds the region's ptl until they are done, and the installer takes no
 * lock of ufvm's.  An installer slow to start (its CPU halted or busy)
 * costs nothing but the chunks it took; it runs SCHED_BATCH, so it does
 * not preempt a thread running on its CPU.  A chunk it began is waited
 * for, though: a real-time thread spinning on its CPU delays it until
 * real-time throttling lets it run (docs/architecture.md).
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "pager/pager.h"
#include "vm/object.h"
#include "vm/region.h"

/* Newer than the installed kernel header (6.1). */
#ifndef UFFD_FEATURE_POISON
#define UFFD_FEATURE_POISON		(1u << 14)
#endif
#ifndef UFFDIO_CONTINUE_MODE_WP
#define UFFDIO_CONTINUE_MODE_WP		((__u64)1 << 1)
#endif
#ifndef UFFDIO_POISON
#define _UFFDIO_POISON			(0x08)
struct uffdio_poison {
	struct uffdio_range range;
#define UFFDIO_POISON_MODE_DONTWAKE	((__u64)1 << 0)
	__u64 mode;
	__s64 updated;
};
#define UFFDIO_POISON	_IOWR(UFFDIO, _UFFDIO_POISON, struct uffdio_poison)
#endif

#include <signal.h>
#include <ucontext.h>

#define REQUIRED_FEATURES (UFFD_FEATURE_MISSING_SHMEM | UFFD_FEATURE_MINOR_SHMEM | \
			   UFFD_FEATURE_WP_HUGETLBFS_SHMEM | UFFD_FEATURE_POISON)
#define MSG_BATCH 16

#define PARK_TIDS		16			/* threads' CPUs a handler keeps */
#define PARK_RECHECK_NS		(2000 * 1000ull)	/* a thread's CPU is re-read */
#define PARK_LOOKUP_GAP_NS	(500 * 1000ull)		/* reads per handler: one per */
#define PARK_LOOKUP_BURST	4			/* ... gap, this many at once */
#define PARK_CHECK_NS		(10 * 1000 * 1000ull)	/* a parked handler looks */
#define PARK_IDLE_NS		(5 * 1000 * 1000ull)	/* no local fault: may park */
#define PARK_SEEN_NS		(1000 * 1000ull)	/* ->seen_ns resolution */

/* A handler thread (one cache line or more each). */
struct handler {
	struct uffd_backend *ub;
	unsigned int cpu;
	bool pin;
	uint32_t parked;		/* (a) futex word: 1 while parked */
	bool reading;			/* (a) in read(), or about to be */
	uint64_t reads;			/* (a) read() calls that returned */
	uint64_t seen_ns;		/* (a) a thread on this CPU last faulted */
	uint64_t lookup_ns;		/* the handler's own from here: last read */
	uint64_t lookup_credit;		/* ns of reads allowed (PARK_LOOKUP_*) */
	struct park_tid {
		pid_t tid;
		int cpu;
		uint64_t at;
	} tids[PARK_TIDS];
} __attribute__((aligned(64)));

#define SPLIT_MIN_PAGES		128	/* installs this long or longer are split */
#define SPLIT_CHUNK_PAGES	32	/* ... into chunks of this many pages */

/*
 * Where a region's frames change memfd (vm/object.h, "Frame striping"):
 * every @cb bytes from @base, the address of the file's page 0 in the
 * region's mapping; @cb 0 if never.  One UFFDIO_CONTINUE covers one
 * mapping: across two it fails with ENOENT, as at a hole.
 */
struct stripe_geom {
	uintptr_t base;
	uintptr_t cb;
};

/*
 * An installer thread (split installs, top of file), and the job slot a
 * caller of u_install() on another CPU owns while ->busy.
 */
struct installer {
	struct uffd_backend *ub;
	unsigned int cpu;
	bool pinned;			/* (a) it runs on ->cpu: may take jobs */
	uint32_t busy;			/* (a) a caller owns the job slot */
	uint32_t posted;		/* (a) futex word: bumped per job and at stop */
	uint32_t done;			/* (a) futex word: chunks it finished, ever */
	uint32_t waiting;		/* (a) the owner waits on ->done */
	uint64_t claim;			/* (a) job generation << 32 | back << 16 | front */
	/* The job; the owner's, read by the installer after it claimed a chunk. */
	uintptr_t start;
	size_t npages;
	uint64_t mode;
	struct stripe_geom geom;
	int err;			/* the installer's first error in the job */
	bool need_wake;			/* the installer owes a wake of its chunks */
} __attribute__((aligned(64)));

/*
 * A poisoned address, until the background thread zaps it (u_poison()):
 * @addr 0 is a free slot, POISON_CLAIMED one being filled.  (a)
 */
#define POISON_SLOTS	64
#define POISON_CLAIMED	((uintptr_t)1)

struct poisoned {
	uintptr_t addr;
	uint64_t at;		/* vm_now_ns() when poisoned */
};

struct uffd_backend {
	struct pager_backend be;
	struct vm_fork_id made_by;	/* (c) the process that created it */
	struct vm_aspace *as;
	const struct vm_policy *pol;
	struct vm_stats_set *stats;
	int uffd;
	int stopfd;			/* spin mode: poll()ed with the uffd */
	char *sentinel;			/* blocking mode: a page faulted to stop */
	unsigned int nthreads;
	unsigned int live;		/* (a) handlers not yet stopped */
	bool inthread;			/* UFFD_FEATURE_SIGBUS: no handler threads */
	uint32_t busy;			/* (a) in-thread faults being served */
	int zapv_pidfd;			/* process_madvise() target (ourselves), or -1 */
	int zap_advice;			/* MADV_DONTNEED_LOCKED, or MADV_DONTNEED */
	struct uffd_backend *next;	/* (inthread_lock) in-thread backends */
	unsigned int spin_us;
	bool batch;			/* handlers SCHED_BATCH */
	bool park;			/* handler parking (top of file) */
	uint32_t nactive;		/* (a) handlers not parked */
	uint32_t store_waits;		/* (a) handler_will_wait() calls, ever: a
					   handler that parks looks whether one
					   began meanwhile (park()) */
	uint32_t stopping;		/* (a) no more parking */
	pthread_t *threads;
	struct handler *h;		/* [nthreads] */
	struct installer *inst;		/* [ninst], or NULL: split installs */
	pthread_t *inst_threads;	/* [ninst] */
	unsigned int ninst;
	uint32_t inst_stop;		/* (a) installers exit; no more splits */
	struct poisoned pois[POISON_SLOTS];	/* u_poison(), u_poisons_due() */
};

#define to_ub(pm) container_of(pm, struct uffd_backend, be.pmap)
#define be_ub(b) container_of(b, struct uffd_backend, be)


static int uffd_ioctl(struct uffd_backend *ub, unsigned long req, void *arg)
{
	return ioctl(ub->uffd, req, arg) ? -errno : 0;
}

static int u_wake(struct vm_pmap *pm, struct vm_region *r, uintptr_t addr, size_t len)
{
	struct uffdio_range rg = { .start = addr, .len = len };

	return uffd_ioctl(to_ub(pm), UFFDIO_WAKE, &rg);
}

static struct stripe_geom region_geom(const struct vm_region *r)
{
	const struct vm_object *obj = r->object;

	if (obj->nstripes == 1)
		return (struct stripe_geom){ 0, 0 };
	return (struct stripe_geom){
		.base = r->start - (uintptr_t)(r->pgoff << PAGE_SHIFT),
		.cb = (uintptr_t)1 << (obj->chunk_shift + PAGE_SHIFT),
	};
}

/* The end of the piece of [@a, @end) that one mapping holds. */
static uintptr_t geom_piece_end(struct stripe_geom g, uintptr_t a, uintptr_t end)
{
	uintptr_t next;

	if (!g.cb)
		return end;
	next = a + g.cb - ((a - g.base) & (g.cb - 1));
	return next < end ? next : end;
}

/*
 * UFFDIO_CONTINUE [@a, @end) with @mode, one mapping (@g) at a time,
 * skipping pages mapped already (EEXIST) and going on after a partial
 * EAGAIN; sets *@need_wake when a skipped or partial range leaves the
 * range's waiters unwoken.
 * Return: 0 or -errno.  Context: any thread; the caller's locks.
 */
static int continue_range(struct uffd_backend *ub, struct stripe_geom g, uintptr_t a,
			  uintptr_t end, uint64_t mode, bool *need_wake)
{
	struct vm_stats_shard *s = vm_stats_shard_get(ub->stats);

	while (a < end) {
		uintptr_t e = geom_piece_end(g, a, end);
		struct uffdio_continue c = {
			.range = { .start = a, .len = e - a },
			.mode = mode,
		};

		if (ioctl(ub->uffd, UFFDIO_CONTINUE, &c) == 0) {
			a = e;
			continue;
		}
		if (errno == EAGAIN) {
			vm_stat_inc(s, UFVM_CTR_EAGAIN);
			if (c.mapped > 0) {
				a += (uintptr_t)c.mapped;
				*need_wake = true;
			}
			continue;
		}
		if (errno == EEXIST) {
			/* Mapped already (not by us): skip it, wake at the end. */
			vm_stat_inc(s, UFVM_CTR_EEXIST);
			a += PAGE_SIZE;
			*need_wake = true;
			continue;
		}
		vm_stat_inc(s, UFVM_CTR_INSTALL_ERRORS);
		return -errno;
	}
	return 0;
}

#define CLAIM_FRONT(v)	((uint32_t)((v) & 0xffff))
#define CLAIM_BACK(v)	((uint32_t)(((v) >> 16) & 0xffff))

/* The first page's address and the end of chunk @c of @in's job. */
static void chunk_range(const struct installer *in, uint32_t c, uintptr_t *a, uintptr_t *end)
{
	size_t first = (size_t)c * SPLIT_CHUNK_PAGES;

	*a = in->start + (first << PAGE_SHIFT);
	*end = in->start + (MIN(in->npages, first + SPLIT_CHUNK_PAGES) << PAGE_SHIFT);
}

/*
 * The job slot of the installer of the CPU after the caller's, or NULL if
 * there is none, it stops, or another caller owns it.
 */
static struct installer *claim_installer(struct uffd_backend *ub)
{
	struct installer *in;
	uint32_t zero = 0;
	int cpu;

	if (!ub->ninst || __atomic_load_n(&ub->inst_stop, __ATOMIC_RELAXED))
		return NULL;
	cpu = sched_getcpu();
	if (cpu < 0)
		return NULL;
	in = &ub->inst[((unsigned int)cpu + 1) % ub->ninst];
	if (in->cpu == (unsigned int)cpu || !__atomic_load_n(&in->pinned, __ATOMIC_RELAXED) ||
	    !__atomic_compare_exchange_n(&in->busy, &zero, 1, false, __ATOMIC_ACQUIRE,
					 __ATOMIC_RELAXED))
		return NULL;
	return in;
}

/*
 * install_split - CONTINUE @npages pages at @addr, sharing the chunks with
 * the installer @in (claimed), and release it.  Return: 0 or the first
 * -errno of either side; *@need_wake as continue_range().
 * Context: the caller's locks (the region's ptl); blocks until the
 * installer's chunks are in, which the installer serves without a lock.
 */
static int install_split(struct uffd_backend *ub, struct installer *in, struct stripe_geom g,
			 uintptr_t addr, size_t npages, uint64_t mode, bool *need_wake)
{
	uint32_t nchunks = (uint32_t)((npages + SPLIT_CHUNK_PAGES - 1) / SPLIT_CHUNK_PAGES);
	uint32_t base = __atomic_load_n(&in->done, __ATOMIC_RELAXED), target, d;
	uint64_t v = __atomic_load_n(&in->claim, __ATOMIC_RELAXED);
	int err = 0, e;

	in->start = addr;
	in->npages = npages;
	in->mode = mode;
	in->geom = g;
	in->err = 0;
	in->need_wake = false;
	v = ((v >> 32) + 1) << 32 | (uint64_t)nchunks << 16;	/* a new generation */
	__atomic_store_n(&in->claim, v, __ATOMIC_RELEASE);
	__atomic_add_fetch(&in->posted, 1, __ATOMIC_RELEASE);
	vm_futex_wake_all(&in->posted);
	vm_stat_inc(vm_stats_shard_get(ub->stats), UFVM_CTR_INSTALL_SPLITS);
	vm_hook(ub->pol, UFVM_HOOK_SPLIT_POSTED, addr, npages << PAGE_SHIFT);
	for (;;) {
		uintptr_t a, end;

		v = __atomic_load_n(&in->claim, __ATOMIC_RELAXED);
		if (CLAIM_FRONT(v) >= CLAIM_BACK(v))
			break;	/* no chunk left: the rest is the installer's */
		if (!__atomic_compare_exchange_n(&in->claim, &v, v + 1, false, __ATOMIC_RELAXED,
						 __ATOMIC_RELAXED))
			continue;
		chunk_range(in, CLAIM_FRONT(v), &a, &end);
		e = continue_range(ub, g, a, end, mode, need_wake);
		if (e && !err)
			err = e;
	}
	target = base + (nchunks - CLAIM_BACK(v));	/* the chunks it took */
	if (!(ub->pol->debug & UFVM_DEBUG_SPLIT_NO_WAIT)) {	/* else: the bug, for tests */
		__atomic_store_n(&in->waiting, 1, __ATOMIC_SEQ_CST);
		while ((int32_t)((d = __atomic_load_n(&in->done, __ATOMIC_SEQ_CST)) - target) < 0)
			vm_futex_wait(&in->done, d);
		__atomic_store_n(&in->waiting, 0, __ATOMIC_RELAXED);
		if (!err)
			err = in->err;
		*need_wake |= in->need_wake;
	}
	__atomic_store_n(&in->busy, 0, __ATOMIC_RELEASE);
	return err;
}

/*
 * An installer thread: sleeps until a job is posted, then installs chunks
 * from its back until none is left.
 * Context: pinned to ->cpu by installers_start(); takes no lock (the job's
 * owner holds them).
 */
static void *installer_main(void *arg)
{
	struct installer *in = arg;
	struct uffd_backend *ub = in->ub;
	struct sched_param sp = { .sched_priority = 0 };
	uint32_t seen = 0;

	pthread_setschedparam(pthread_self(), SCHED_BATCH, &sp);	/* best effort */
	vm_stats_shard_get(ub->stats);	/* this thread's own shard */
	for (;;) {
		uint32_t p;
		uint64_t v;

		if (__atomic_load_n(&ub->inst_stop, __ATOMIC_SEQ_CST))
			break;
		p = __atomic_load_n(&in->posted, __ATOMIC_ACQUIRE);
		if (p == seen) {
			vm_futex_wait(&in->posted, seen);
			continue;
		}
		seen = p;
		for (v = __atomic_load_n(&in->claim, __ATOMIC_ACQUIRE);
		     CLAIM_FRONT(v) < CLAIM_BACK(v);
		     v = __atomic_load_n(&in->claim, __ATOMIC_ACQUIRE)) {
			uintptr_t a, end;
			bool wake = false;
			int e;

			if (!__atomic_compare_exchange_n(&in->claim, &v, v - (1u << 16), false,
							 __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
				continue;
			/* The job is ours to read until ->done counts this chunk. */
			chunk_range(in, CLAIM_BACK(v) - 1, &a, &end);
			vm_hook(ub->pol, UFVM_HOOK_INSTALL_SPLIT, a, end - a);
			if (unlikely(ub->pol->debug & UFVM_DEBUG_SPLIT_FAIL) && (seen & 1)) {
				/* Tests: a chunk the kernel refuses, as for want of memory. */
				vm_stat_inc(vm_stats_shard_get(ub->stats), UFVM_CTR_INSTALL_ERRORS);
				e = -ENOMEM;
			} else {
				e = continue_range(ub, in->geom, a, end, in->mode, &wake);
			}
			if (e && !in->err)
				in->err = e;
			if (wake)
				in->need_wake = true;
			if (!e)
				vm_stat_add(vm_stats_shard_get(ub->stats), UFVM_CTR_INSTALLER_PAGES,
					    (end - a) >> PAGE_SHIFT);
			__atomic_add_fetch(&in->done, 1, __ATOMIC_SEQ_CST);
			if (__atomic_load_n(&in->waiting, __ATOMIC_SEQ_CST))
				vm_futex_wake_all(&in->done);
		}
	}
	return NULL;
}

/* Pin thread @th to @cpu.  Return: true if it now runs there only. */
static bool pin_thread(pthread_t th, unsigned int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return pthread_setaffinity_np(th, sizeof(set), &set) == 0;
}

/* Name thread @th "@what/@i" for top and perf (the kernel keeps 15 bytes). */
static void name_thread(pthread_t th, const char *what, unsigned int i)
{
	char name[24];

	snprintf(name, sizeof(name), "%s/%u", what, i);
	name[15] = 0;
	pthread_setname_np(th, name);	/* best effort */
}

/*
 * Stop the installers and free them.  A job posted and not taken is done
 * by its owner.  Context: no install runs (the backend is being destroyed).
 */
static void installers_stop(struct uffd_backend *ub)
{
	unsigned int i;

	__atomic_store_n(&ub->inst_stop, 1, __ATOMIC_SEQ_CST);
	for (i = 0; i < ub->ninst; i++) {
		__atomic_add_fetch(&ub->inst[i].posted, 1, __ATOMIC_SEQ_CST);
		vm_futex_wake_all(&ub->inst[i].posted);
		pthread_join(ub->inst_threads[i], NULL);
	}
	free(ub->inst);
	free(ub->inst_threads);
	ub->inst = NULL;
	ub->ninst = 0;
}

/*
 * Start one installer per CPU (split installs).  Return: 0, or -errno with
 * none left running (no install is split then).
 */
static int installers_start(struct uffd_backend *ub, unsigned int ncpu)
{
	unsigned int i;
	int err = 0;

	ub->inst = aligned_alloc(_Alignof(struct installer), ncpu * sizeof(*ub->inst));
	ub->inst_threads = calloc(ncpu, sizeof(pthread_t));
	if (!ub->inst || !ub->inst_threads) {
		free(ub->inst);
		free(ub->inst_threads);
		ub->inst = NULL;
		ub->inst_threads = NULL;
		return -ENOMEM;
	}
	memset(ub->inst, 0, ncpu * sizeof(*ub->inst));
	for (i = 0; i < ncpu; i++) {
		ub->inst[i].ub = ub;
		ub->inst[i].cpu = i;
		err = vm_thread_create(&ub->inst_threads[i], installer_main, &ub->inst[i]);
		if (err)
			break;
		/*
		 * Pinned here, so that it takes jobs from the start; one that
		 * cannot run on its CPU (a cpuset without it) would share the
		 * caller's, and takes none.
		 */
		if (pin_thread(ub->inst_threads[i], i))
			__atomic_store_n(&ub->inst[i].pinned, true, __ATOMIC_RELAXED);
		name_thread(ub->inst_threads[i], "ufvm-inst", i);
	}
	ub->ninst = i;
	if (err)
		installers_stop(ub);
	return err;
}

static int u_install(struct vm_pmap *pm, struct vm_region *r, uintptr_t addr,
		     size_t len, bool wp)
{
	struct uffd_backend *ub = to_ub(pm);
	/* In-thread delivery: nobody sleeps, nobody to wake. */
	uint64_t mode = (wp ? UFFDIO_CONTINUE_MODE_WP : 0) |
			(ub->inthread ? UFFDIO_CONTINUE_MODE_DONTWAKE : 0);
	struct installer *in = NULL;
	bool need_wake = false;
	int err;

	if (len >= SPLIT_MIN_PAGES * PAGE_SIZE &&
	    len <= (size_t)0xffff * SPLIT_CHUNK_PAGES * PAGE_SIZE)	/* chunks fit the claim */
		in = claim_installer(ub);
	if (in)
		err = install_split(ub, in, region_geom(r), addr, len >> PAGE_SHIFT, mode,
				    &need_wake);
	else
		err = continue_range(ub, region_geom(r), addr, addr + len, mode, &need_wake);
	if ((need_wake || err) && !ub->inthread)
		u_wake(pm, r, addr, len);
	return err;
}

/* pmap.h: UFFDIO_CONTINUE skips the page if it is mapped (EEXIST) and wakes. */
static int u_remap(struct vm_pmap *pm, struct vm_region *r, uintptr_t addr, bool wp)
{
	return u_install(pm, r, addr, PAGE_SIZE, wp);
}

/*
 * Zap with one madvise().  ENOMEM means part of the range was not mapped
 * (the application unmapped it): everything mapped in it was zapped all
 * the same, which is all a zap asks for.  Return: 0 or -errno.
 */
static int zap_advise(struct uffd_backend *ub, uintptr_t addr, size_t len)
{
	return madvise((void *)addr, len, ub->zap_advice) && errno != ENOMEM ? -errno : 0;
}

static int u_zap(struct vm_pmap *pm, struct vm_region *r, uintptr_t addr, size_t len)
{
	struct uffd_backend *ub = to_ub(pm);
	struct vm_stats_shard *s = vm_stats_shard_get(ub->stats);

	vm_stat_inc(s, UFVM_CTR_ZAPS);
	return zap_advise(ub, addr, len);
}

/* The calling process, for process_madvise() (Linux 6.15; older: a pidfd). */
#ifndef PIDFD_SELF_THREAD_GROUP
#define PIDFD_SELF_THREAD_GROUP		-10001
#endif
#define ZAPV_CHUNK	64	/* ranges per process_madvise() */

/*
 * One MADV_DONTNEED of many ranges: process_madvise() on ourselves (any
 * advice is allowed on the caller's own process since Linux 6.13) zaps
 * them all in one system call.  Clean PTEs share one TLB shootdown; the
 * dirty PTEs UFFDIO_CONTINUE installs still cost one per range (the
 * kernel flushes before it drops the rmap of a dirty shared page) when
 * another CPU runs this process's code: 32 shootdowns for 32 scattered
 * CONTINUE-mapped pages, 1 for 32 mapped by read faults, with a thread
 * spinning there.  Where it is refused, or on a
 * partial result, every range of the chunk is zapped with madvise()
 * (zapping a range twice is harmless).
 */
static int u_zapv(struct vm_pmap *pm, struct vm_region *r, const struct vm_pmap_range *v,
		  unsigned int n)
{
	struct uffd_backend *ub = to_ub(pm);
	struct vm_stats_shard *s = vm_stats_shard_get(ub->stats);
	struct iovec iov[ZAPV_CHUNK];
	unsigned int i, k;
	int err = 0;

	while (n) {
		size_t total = 0;
		int pidfd = READ_ONCE(ub->zapv_pidfd);

		k = MIN(n, (unsigned int)ZAPV_CHUNK);
		for (i = 0; i < k; i++) {
			iov[i].iov_base = (void *)v[i].addr;
			iov[i].iov_len = v[i].len;
			total += v[i].len;
		}
		vm_stat_inc(s, UFVM_CTR_ZAPS);
		if (pidfd == -1 || k == 1 ||
		    syscall(SYS_process_madvise, pidfd, iov, k, ub->zap_advice, 0) !=
			    (ssize_t)total) {
			for (i = 0; i < k; i++) {
				int e = zap_advise(ub, (uintptr_t)iov[i].iov_base, iov[i].iov_len);

				if (e && !err)
					err = e;
			}
		}
		v += k;
		n -= k;
	}
	return err;
}

#ifndef MADV_DONTNEED_LOCKED
#define MADV_DONTNEED_LOCKED	24
#endif

/*
 * The advice that zaps: MADV_DONTNEED refuses (EINVAL) a range the
 * application mlock()ed, and a page ufvm believes unmapped but is not
 * takes writes that mkwrite never sees; MADV_DONTNEED_LOCKED (Linux 5.18)
 * zaps it too.  Tried on a throw-away page of our own.
 */
static int probe_zap_advice(void)
{
	char *pg = mmap(NULL, PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			-1, 0);
	int advice = MADV_DONTNEED;

	if (pg == MAP_FAILED)
		return advice;
	pg[0] = 1;
	if (!madvise(pg, PAGE_SIZE, MADV_DONTNEED_LOCKED))
		advice = MADV_DONTNEED_LOCKED;
	munmap(pg, PAGE_SIZE);
	return advice;
}

/*
 * Find how this kernel lets us zap many ranges at once: process_madvise()
 * with PIDFD_SELF_THREAD_GROUP, else with a pidfd of our own; else -1.
 * Tried on a throw-away page of our own.
 */
static int probe_zapv(void)
{
	char *pg = mmap(NULL, PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			-1, 0);
	struct iovec iov = { .iov_base = pg, .iov_len = PAGE_SIZE };
	int fd = -1;

	if (pg == MAP_FAILED)
		return -1;
	pg[0] = 1;
	if (syscall(SYS_process_madvise, PIDFD_SELF_THREAD_GROUP, &iov, 1, MADV_DONTNEED, 0) ==
	    PAGE_SIZE) {
		fd = PIDFD_SELF_THREAD_GROUP;
	} else {
		fd = (int)syscall(SYS_pidfd_open, getpid(), 0);
		if (fd >= 0 && syscall(SYS_process_madvise, fd, &iov, 1, MADV_DONTNEED, 0) !=
		    PAGE_SIZE) {
			close(fd);
			fd = -1;
		}
	}
	munmap(pg, PAGE_SIZE);
	return fd;
}

static int u_protect(struct vm_pmap *pm, struct vm_region *r, uintptr_t addr,
		     size_t len, bool wp)
{
	struct uffdio_writeprotect w = {
		.range = { .start = addr, .len = len },
		.mode = wp ? UFFDIO_WRITEPROTECT_MODE_WP : 0,
	};

	return uffd_ioctl(to_ub(pm), UFFDIO_WRITEPROTECT, &w);
}

static int u_set_prot(struct vm_pmap *pm, struct vm_region *r, uintptr_t addr,
		      size_t len, bool writable)
{
	/*
	 * The range is registered for WP whenever the region may become
	 * writable (u_attach), so a read-only page mapped after this comes
	 * in write-protected.  A page mapped read-only before a change to
	 * writable was zapped by the caller: mprotect may upgrade a shared
	 * mapping's PTEs to writable, which must never skip mkwrite.
	 *
	 * Striped, the range may span mappings, and mprotect() changes them
	 * one by one: one that fails (ENOMEM at vm.max_map_count, for a
	 * split) leaves those before it changed.  They go back (merging,
	 * which needs no new mapping), so that a failure changes nothing, as
	 * it does for one mapping.
	 */
	int err = mprotect((void *)addr, len, PROT_READ | (writable ? PROT_WRITE : 0)) ? -errno : 0;

	if (err && region_geom(r).cb)
		mprotect((void *)addr, len, PROT_READ | (writable ? 0 : PROT_WRITE));
	return err;
}

/*
 * UFFDIO_POISON of [@addr, @addr + @len), one mapping (@g) at a time,
 * going on after a partial EAGAIN.  A page that is not empty (EEXIST)
 * may hold a uffd-wp marker: the markers of the rest of that piece are
 * cleared, once, and the rest poisoned.
 */
static int poison_range(struct uffd_backend *ub, struct stripe_geom g, uintptr_t addr,
			size_t len)
{
	uintptr_t end = addr + len, cleared = 0;

	while (addr < end) {
		uintptr_t e = geom_piece_end(g, addr, end);
		struct uffdio_poison p = { .range = { .start = addr, .len = e - addr } };
		int err = uffd_ioctl(ub, UFFDIO_POISON, &p);

		if (err == -EAGAIN && p.updated > 0) {
			addr += (uintptr_t)p.updated;
			continue;
		}
		if (err == -EEXIST && cleared != e) {
			struct uffdio_writeprotect w = {
				.range = { .start = addr, .len = e - addr },
				.mode = UFFDIO_WRITEPROTECT_MODE_DONTWAKE,
			};

			uffd_ioctl(ub, UFFDIO_WRITEPROTECT, &w);
			cleared = e;
			continue;
		}
		if (err)
			return err;
		addr = e;
	}
	return 0;
}

/*
 * Poison [@addr, @addr + @len): the faulting thread, woken, runs its access
 * again and gets the kernel's SIGBUS.  The kernel's own file faults try the
 * read again at every access; a handler thread cannot answer each access
 * with its own SIGBUS (a fault-like one, with a positive si_code, can be
 * queued by a thread to itself only: docs/architecture.md), so the poison
 * answers the accesses that follow, and is lifted once it has been in place
 * for PAGER_POISON_HOLD_NS: the address is noted here, and the background
 * thread zaps it (u_poisons_due(), lib/ufvm.c).  With every slot taken the
 * poison stays until a zap, punch, truncate or unmap.
 * Context: ptl held.
 */
static int u_poison(struct vm_pmap *pm, struct vm_region *r, uintptr_t addr, size_t len)
{
	struct uffd_backend *ub = to_ub(pm);
	unsigned int i;
	int err;

	if (ub->inthread)
		return 0;	/* the faulting thread's handler forwards SIGBUS */
	err = poison_range(ub, region_geom(r), addr, len);
	if (err) {
		u_wake(pm, r, addr, len);
		return err;
	}
	for (i = 0; i < POISON_SLOTS; i++) {
		uintptr_t none = 0;

		if (!__atomic_load_n(&ub->pois[i].addr, __ATOMIC_RELAXED) &&
		    __atomic_compare_exchange_n(&ub->pois[i].addr, &none, POISON_CLAIMED, false,
						__ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) {
			__atomic_store_n(&ub->pois[i].at, vm_now_ns(), __ATOMIC_RELAXED);
			__atomic_store_n(&ub->pois[i].addr, addr, __ATOMIC_RELEASE);
			break;
		}
	}
	return 0;
}

static unsigned int u_poisons_due(struct pager_backend *be, uintptr_t *addrs, unsigned int max)
{
	struct uffd_backend *ub = be_ub(be);
	uint64_t now = vm_now_ns();
	unsigned int i, n = 0;

	for (i = 0; i < POISON_SLOTS && n < max; i++) {
		uintptr_t a = __atomic_load_n(&ub->pois[i].addr, __ATOMIC_ACQUIRE);
		uint64_t at;

		if (a <= POISON_CLAIMED)
			continue;
		/* Claimed after @now was read, it may be younger than @now. */
		at = __atomic_load_n(&ub->pois[i].at, __ATOMIC_RELAXED);
		if (at > now || now - at < PAGER_POISON_HOLD_NS)
			continue;
		/* One caller at a time (the background thread): no claim race. */
		addrs[n++] = a;
		__atomic_store_n(&ub->pois[i].addr, 0, __ATOMIC_RELEASE);
	}
	return n;
}

/*
 * Map @len bytes of @obj's frames from page @pgoff on, at @hint (fixed)
 * or anywhere: one mapping, or striped one per chunk (vm/object.h) into a
 * reservation.  Return: the address, or MAP_FAILED with errno set: no
 * frame left mapped (at @hint, what was there is gone, a reservation in
 * its place if one could be made).
 */
static void *map_frames(struct vm_object *obj, uintptr_t hint, size_t len, int prot,
			uint64_t pgoff)
{
	uint64_t idx = pgoff, end = pgoff + (len >> PAGE_SHIFT);
	size_t k;
	char *a;

	if (obj->nstripes == 1)
		return mmap((void *)hint, len, prot, MAP_SHARED | (hint ? MAP_FIXED : 0),
			    obj->memfds[0], (off_t)(pgoff << PAGE_SHIFT));
	a = mmap((void *)hint, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE |
		 (hint ? MAP_FIXED : 0), -1, 0);
	if (a == MAP_FAILED)
		return a;
	for (; idx < end; idx += k >> PAGE_SHIFT) {
		k = (size_t)vm_object_chunk_run(obj, idx, end - idx) << PAGE_SHIFT;

		if (mmap(a + ((idx - pgoff) << PAGE_SHIFT), k, prot, MAP_SHARED | MAP_FIXED,
			 vm_object_memfd(obj, idx), (off_t)(idx << PAGE_SHIFT)) == MAP_FAILED) {
			int err = errno;
			size_t done = (size_t)(idx - pgoff) << PAGE_SHIFT;

			/*
			 * Chunks mapped already must not stay: unregistered,
			 * they would let the application reach the frames
			 * behind ufvm's back.  They end at mapping boundaries,
			 * so replacing or removing just them splits nothing
			 * (which vm.max_map_count, likely full now, could
			 * refuse); at @hint the reservation they replace gets
			 * them back, and merges with the rest of it.
			 */
			if (!hint || pager_reserve((uintptr_t)a, done))
				munmap(a, done);
			if (!hint)
				munmap(a + done, len - done);	/* the rest of ours */
			errno = err;
			return MAP_FAILED;
		}
	}
	return a;
}

static int u_attach(struct vm_pmap *pm, struct vm_region *r, uintptr_t hint)
{
	struct uffd_backend *ub = to_ub(pm);
	size_t len = r->npages << PAGE_SHIFT;
	int prot = PROT_READ | (r->writable ? PROT_WRITE : 0);
	/* Tests only: accessible at once, as it was (a stale access's race). */
	bool open = !hint && (ub->pol->debug & UFVM_DEBUG_ATTACH_OPEN);
	struct uffdio_register reg;
	void *a;
	int err;

	/*
	 * Until it is registered, an access would be served by the kernel
	 * from the memfd, allocating a frame in a hole that ufvm never
	 * learns of: a store there goes unseen, and the fill that later
	 * finds the page uncached writes the store's bytes over it.  So the
	 * mapping starts inaccessible and gets its protection once
	 * registered.  At a fixed address it replaces one that threads are
	 * touching; anywhere else the kernel may place it where a region
	 * was just unmapped, and a thread still holding an address of that
	 * region touched it there (a store of another thread then lost:
	 * race/test_map_vs_stale_access, found by ufvm fuzz --peek).
	 */
	a = map_frames(r->object, hint, len, open ? prot : PROT_NONE, r->pgoff);
	if (a == MAP_FAILED)
		return -errno;
	vm_hook(ub->pol, UFVM_HOOK_ATTACHED, (uintptr_t)a, len);
	/* A child would see holes as zeros: it gets no mapping at all. */
	madvise(a, len, MADV_DONTFORK);
	/*
	 * No recency: a zap of a young PTE then skips folio_mark_accessed(),
	 * which moved every evicted frame to the active LRU just before its
	 * punch freed it (docs/performance.md, "One readahead thread, zaps
	 * without recency").  What it costs: with swap, the kernel's reclaim
	 * would not see accesses through these mappings when it picks shmem
	 * pages to swap out (without swap it never takes them).  Best effort.
	 */
	madvise(a, len, MADV_RANDOM);
	memset(&reg, 0, sizeof(reg));
	reg.range.start = (uintptr_t)a;
	reg.range.len = len;
	reg.mode = UFFDIO_REGISTER_MODE_MISSING | UFFDIO_REGISTER_MODE_MINOR;
	if (r->maywrite)	/* writable now or after ufvm_protect() */
		reg.mode |= UFFDIO_REGISTER_MODE_WP;
	if (ioctl(ub->uffd, UFFDIO_REGISTER, &reg) || (!open && mprotect(a, len, prot))) {
		err = -errno;
		/* At a fixed address what was there is gone: no hole either. */
		if (!hint || pager_reserve((uintptr_t)a, len))
			munmap(a, len);
		return err;
	}
	r->start = (uintptr_t)a;
	r->end = (uintptr_t)a + len;
	return 0;
}

static int u_fill(struct vm_pmap *pm, struct vm_region *r, uintptr_t addr, const void *src,
		  bool wp)
{
	struct uffd_backend *ub = to_ub(pm);
	struct uffdio_copy c = {
		.dst = addr,
		.src = (uintptr_t)src,
		.len = PAGE_SIZE,
		.mode = (wp ? UFFDIO_COPY_MODE_WP : 0) |
			(ub->inthread ? UFFDIO_COPY_MODE_DONTWAKE : 0),
	};

	/* EAGAIN: the address space is changing (fork, mremap); nothing mapped. */
	return ioctl(ub->uffd, UFFDIO_COPY, &c) ? -errno : 0;
}

static const struct vm_pmap_ops uffd_pmap_ops = {
	.install = u_install,
	.fill = u_fill,
	.zap = u_zap,
	.protect = u_protect,
	.set_prot = u_set_prot,
	.wake = u_wake,
	.remap = u_remap,
	.poison = u_poison,
	.attach = u_attach,
	.detach = pager_detach,
	.zapv = u_zapv,
};

/*
 * A handler read a sentinel message (once per handler, however many it
 * read): pass the stop on to another handler by faulting on the sentinel
 * itself, or, as the last one, resolve the sentinel, which wakes the
 * closing thread and every handler that faulted on it.
 * Context: handler thread, no lock held; blocks in the fault until the
 * last handler resolves it.
 */
static void handler_stop(struct uffd_backend *ub)
{
	struct uffdio_zeropage z = {
		.range = { .start = (uintptr_t)ub->sentinel, .len = PAGE_SIZE },
	};

	vm_hook(ub->pol, UFVM_HOOK_HANDLER_STOP, (uintptr_t)ub->sentinel, 0);
	if (__atomic_sub_fetch(&ub->live, 1, __ATOMIC_ACQ_REL) > 0) {
		(void)*(volatile char *)ub->sentinel;
		return;
	}
	if (ioctl(ub->uffd, UFFDIO_ZEROPAGE, &z) && errno == EEXIST)
		u_wake(&ub->be.pmap, NULL, (uintptr_t)ub->sentinel, PAGE_SIZE);
}

static void handler_will_wait(void *arg);

/* Return: true if @m was a sentinel message (the handler stops). */
static bool handle_msg(struct handler *h, const struct uffd_msg *m)
{
	struct uffd_backend *ub = h->ub;
	struct pager_fault vmf;
	uint64_t f;

	if (m->event != UFFD_EVENT_PAGEFAULT)
		return false;	/* no other event is enabled */
	if ((m->arg.pagefault.address & PAGE_MASK) == (uintptr_t)ub->sentinel)
		return true;
	f = m->arg.pagefault.flags;
	vmf.as = ub->as;
	vmf.pol = ub->pol;
	vmf.stats = vm_stats_shard_get(ub->stats);
	vmf.addr = (uintptr_t)m->arg.pagefault.address & PAGE_MASK;
	vmf.flags = 0;
	vmf.will_wait = ub->park ? handler_will_wait : NULL;
	vmf.wait_arg = h;
	if (f & UFFD_PAGEFAULT_FLAG_WRITE)
		vmf.flags |= PF_WRITE;
	if (f & UFFD_PAGEFAULT_FLAG_WP)
		vmf.flags |= PF_WP | PF_WRITE;
	pager_fault(&vmf);
	return false;
}

/*
 * Read procfs file @path into @buf (NUL-terminated).  Return: success.
 * Context: three system calls, no allocation.
 */
static bool read_proc(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return false;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = 0;
	return true;
}

/*
 * The CPU thread @tid of this process last ran on (field 39 of its stat), or
 * -1.  For a thread blocked in a fault, the CPU it faulted on.
 * Context: handler thread; three system calls (procfs), no allocation.
 */
static int task_cpu(pid_t tid)
{
	char path[48], buf[1024], *p;
	int field = 2;

	snprintf(path, sizeof(path), "/proc/self/task/%d/stat", (int)tid);
	if (!read_proc(path, buf, sizeof(buf)))
		return -1;
	p = strrchr(buf, ')');	/* the end of field 2, the name */
	if (!p)
		return -1;
	for (; *p && field < 39; p++)
		if (*p == ' ')
			field++;
	return field == 39 && isdigit((unsigned char)*p) ? atoi(p) : -1;
}

/* The CPU of the thread that sent a message, as @h last read it, or -1. */
static int faulter_cpu(struct handler *h, pid_t tid, uint64_t now)
{
	struct park_tid *t = &h->tids[(uint32_t)tid % PARK_TIDS];
	uint64_t credit;

	if (tid <= 0)
		return -1;
	if (t->tid == tid && now - t->at < PARK_RECHECK_NS)
		return t->cpu;
	/* A budget of reads: one per gap on average, a few at once. */
	credit = h->lookup_credit + (now - h->lookup_ns);
	if (credit > PARK_LOOKUP_BURST * PARK_LOOKUP_GAP_NS)
		credit = PARK_LOOKUP_BURST * PARK_LOOKUP_GAP_NS;
	h->lookup_ns = now;
	if (credit < PARK_LOOKUP_GAP_NS) {
		h->lookup_credit = credit;
		return -1;	/* unknown, or too old to act on */
	}
	h->lookup_credit = credit - PARK_LOOKUP_GAP_NS;
	t->tid = tid;
	t->cpu = task_cpu(tid);
	t->at = now;
	return t->cpu;
}

/* Is @t more than @ns before @now?  (@t may be another thread's "now", later.) */
static bool older(uint64_t now, uint64_t t, uint64_t ns)
{
	return (int64_t)(now - t) > (int64_t)ns;
}

/* Return: true if @h was parked (and now reads again). */
static bool unpark(struct handler *h)
{
	if (__atomic_exchange_n(&h->parked, 0, __ATOMIC_SEQ_CST) != 1)
		return false;
	__atomic_add_fetch(&h->ub->nactive, 1, __ATOMIC_RELAXED);
	vm_futex_wake_all(&h->parked);
	return true;
}

/* unpark() @h for a fault that needs it, counted (handler_unparks). */
static void unpark_for_faults(struct handler *h)
{
	if (unpark(h))
		vm_stat_inc(vm_stats_shard_get(h->ub->stats), UFVM_CTR_HANDLER_UNPARKS);
}

/* Is a handler other than @h blocked in read() (or about to be)? */
static bool other_reading(struct handler *h)
{
	struct uffd_backend *ub = h->ub;
	unsigned int i;

	for (i = 0; i < ub->nthreads; i++)
		if (&ub->h[i] != h && __atomic_load_n(&ub->h[i].reading, __ATOMIC_RELAXED))
			return true;
	return false;
}

/*
 * Are fault messages waiting that no handler has read?  poll() cannot
 * tell on a blocking userfaultfd (it answers POLLERR); the fd's fdinfo
 * counts them ("pending:").
 */
static bool msgs_waiting(struct uffd_backend *ub)
{
	char path[48], buf[256], *p;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", ub->uffd);
	if (!read_proc(path, buf, sizeof(buf)))
		return false;
	p = strstr(buf, "\npending:");
	return p && strtoul(p + strlen("\npending:"), NULL, 10) > 0;
}

/* Messages read so far by all handlers of @ub (each counts its own). */
static uint64_t all_reads(struct uffd_backend *ub)
{
	uint64_t sum = 0;
	unsigned int i;

	for (i = 0; i < ub->nthreads; i++)
		sum += __atomic_load_n(&ub->h[i].reads, __ATOMIC_RELAXED);
	return sum;
}

/*
 * Sleep while @h is parked.  Every PARK_CHECK_NS it looks whether the
 * reading handlers read nothing since its last look while faults wait
 * unread, and if so unparks itself: they may be unable to run (their CPUs
 * busy with threads that do not fault, or they wait for something), and
 * the faults must not wait for them for ever.
 * Context: handler thread, no lock held; blocks.
 */
static void park_sleep(struct handler *h)
{
	bool look = !(h->ub->pol->debug & UFVM_DEBUG_PARK_PAST_STOP);	/* else: for tests */
	uint64_t seen = all_reads(h->ub), now;

	while (__atomic_load_n(&h->parked, __ATOMIC_ACQUIRE)) {
		if (!look) {
			vm_futex_wait(&h->parked, 1);
			continue;
		}
		if (!vm_futex_wait_ns(&h->parked, 1, PARK_CHECK_NS))
			continue;
		now = all_reads(h->ub);
		if (now == seen && msgs_waiting(h->ub))
			unpark_for_faults(h);
		seen = now;
	}
}

/*
 * Unpark every parked handler of @h's backend: @h is about to wait for the
 * store, and faults of other threads must not queue behind it.
 * Context: handler thread serving a fault (pager_fault's wait hook); any
 * lock; does not block.
 */
static void handler_will_wait(void *arg)
{
	struct handler *h = arg;
	struct uffd_backend *ub = h->ub;
	unsigned int i;

	/*
	 * seq_cst, with park()'s CAS, store of ->parked and load of
	 * ->store_waits: a handler parking now either is seen (counted out
	 * of nactive, or parked) and unparked here, or sees this wait and
	 * unparks itself.
	 */
	__atomic_add_fetch(&ub->store_waits, 1, __ATOMIC_SEQ_CST);
	if (__atomic_load_n(&ub->nactive, __ATOMIC_SEQ_CST) == ub->nthreads)
		return;
	for (i = 0; i < ub->nthreads; i++)
		if (__atomic_load_n(&ub->h[i].parked, __ATOMIC_SEQ_CST))
			unpark_for_faults(&ub->h[i]);
}

/*
 * Park @h unless it is the last handler reading, no other handler is in
 * read() now (the others are busy serving), the backend stops, a thread
 * on its CPU has faulted meanwhile (the seq_cst pair with park_after()'s
 * store of ->seen_ns and load of ->parked), or a handler began to wait for
 * the store meanwhile (the pair with handler_will_wait(), which may have
 * looked before ->parked was set).
 * Context: handler thread, no lock held; blocks until unparked.
 */
static void park(struct handler *h)
{
	struct uffd_backend *ub = h->ub;
	uint32_t waits = __atomic_load_n(&ub->store_waits, __ATOMIC_SEQ_CST);
	uint32_t n = __atomic_load_n(&ub->nactive, __ATOMIC_RELAXED);

	if (!other_reading(h))
		return;
	do {
		if (n <= 1)
			return;
	} while (!__atomic_compare_exchange_n(&ub->nactive, &n, n - 1, true,
					      __ATOMIC_SEQ_CST, __ATOMIC_RELAXED));
	vm_hook(ub->pol, UFVM_HOOK_HANDLER_PARK, h->cpu, 0);
	__atomic_store_n(&h->parked, 1, __ATOMIC_SEQ_CST);
	if ((__atomic_load_n(&ub->stopping, __ATOMIC_SEQ_CST) &&
	     !(ub->pol->debug & UFVM_DEBUG_PARK_PAST_STOP)) ||	/* else: the bug, for tests */
	    (__atomic_load_n(&ub->store_waits, __ATOMIC_SEQ_CST) != waits &&
	     !(ub->pol->debug & UFVM_DEBUG_PARK_PAST_WAIT)) ||	/* likewise */
	    !older(vm_now_ns(), __atomic_load_n(&h->seen_ns, __ATOMIC_SEQ_CST), PARK_IDLE_NS)) {
		unpark(h);
		return;
	}
	vm_stat_inc(vm_stats_shard_get(ub->stats), UFVM_CTR_HANDLER_PARKS);
	park_sleep(h);
}

/*
 * After @h served @msgs: note the CPUs their threads fault on, unpark the
 * handlers of those CPUs, and park @h if it served only threads elsewhere
 * for PARK_IDLE_NS.
 * Context: handler thread, no lock held; may block (park()).
 */
static void park_after(struct handler *h, const struct uffd_msg *msgs, int n)
{
	struct uffd_backend *ub = h->ub;
	uint64_t now = vm_now_ns();
	bool remote = false;
	int i;

	for (i = 0; i < n; i++) {
		struct handler *o;
		int cpu;

		if (msgs[i].event != UFFD_EVENT_PAGEFAULT)
			continue;
		cpu = faulter_cpu(h, (pid_t)msgs[i].arg.pagefault.feat.ptid, now);
		if (cpu < 0 || (unsigned int)cpu >= ub->nthreads ||
		    ub->h[cpu].cpu != (unsigned int)cpu)
			continue;
		o = &ub->h[cpu];
		/*
		 * seq_cst load too: a store skipped because ->seen_ns is fresh
		 * must still order before the load of ->parked below (a plain
		 * load on x86).
		 */
		if (older(now, __atomic_load_n(&o->seen_ns, __ATOMIC_SEQ_CST), PARK_SEEN_NS))
			__atomic_store_n(&o->seen_ns, now, __ATOMIC_SEQ_CST);
		if (o == h)
			continue;
		remote = true;
		if (__atomic_load_n(&o->parked, __ATOMIC_SEQ_CST))
			unpark_for_faults(o);
	}
	if (remote && older(now, __atomic_load_n(&h->seen_ns, __ATOMIC_RELAXED), PARK_IDLE_NS))
		park(h);
}

/*
 * Read and serve a batch of messages (blocking unless the fd is not).
 * Return: messages handled, 0 if none was waiting, -1 to stop.
 * Context: handler thread; may block in park().
 */
static int drain(struct handler *h)
{
	struct uffd_backend *ub = h->ub;
	struct uffd_msg msgs[MSG_BATCH];
	bool stop = false;
	ssize_t n;
	int i;

	if (ub->park)	/* other handlers look at these: park(), park_sleep() */
		__atomic_store_n(&h->reading, true, __ATOMIC_RELAXED);
	n = read(ub->uffd, msgs, sizeof(msgs));
	if (ub->park) {
		__atomic_store_n(&h->reading, false, __ATOMIC_RELAXED);
		if (n > 0)	/* only h writes it */
			__atomic_store_n(&h->reads, h->reads + 1, __ATOMIC_RELAXED);
	}
	if (n < 0)
		return (errno == EAGAIN || errno == EINTR) ? 0 : -1;
	n /= (ssize_t)sizeof(msgs[0]);
	for (i = 0; i < n; i++)
		stop |= handle_msg(h, &msgs[i]);
	if (stop) {
		handler_stop(ub);
		return -1;
	}
	if (ub->park && n > 0)
		park_after(h, msgs, (int)n);
	return (int)n;
}

static void *handler_main(void *arg)
{
	struct handler *h = arg;
	struct uffd_backend *ub = h->ub;
	struct pollfd pfd[2] = {
		{ .fd = ub->uffd, .events = POLLIN },
		{ .fd = ub->stopfd, .events = POLLIN },
	};

	if (h->pin)
		pin_thread(pthread_self(), h->cpu);
	vm_stats_shard_get(ub->stats);	/* this thread's own shard */
	if (ub->batch && h->pin) {
		struct sched_param sp = { .sched_priority = 0 };

		/*
		 * Pinned handlers only: the faulting thread blocks on the CPU
		 * of the handler that serves it, so that one never needs to
		 * preempt anybody.  An unpinned handler may be woken on a CPU
		 * where another thread runs, and must preempt it.  No privilege
		 * needed; on failure the handler stays SCHED_OTHER.
		 */
		pthread_setschedparam(pthread_self(), SCHED_BATCH, &sp);
	}
	/*
	 * A little more weight than the threads it serves: the thread a
	 * handler wakes on its own CPU waits the few hundred ns until the
	 * handler blocks again instead of preempting it mid-fault (without
	 * privilege this fails, harmlessly).
	 */
	setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), -5);
	if (!ub->spin_us) {
		while (drain(h) >= 0)	/* blocks in read() */
			;
		return NULL;
	}
	for (;;) {
		int n = drain(h);

		if (n < 0)
			break;
		if (n == MSG_BATCH)
			continue;	/* more may be queued: read again */
		if (ub->spin_us) {
			uint64_t until = vm_now_ns() + ub->spin_us * 1000ull;

			while (n == 0 && vm_now_ns() < until)
				n = drain(h);
			if (n != 0)
				continue;
		}
		if (poll(pfd, 2, -1) < 0 && errno != EINTR)
			break;
		if (pfd[1].revents)
			break;
	}
	return NULL;
}

/* ---- in-thread delivery (UFFD_FEATURE_SIGBUS) ---- */

static struct uffd_backend *inthread_list;	/* rcu */
static pthread_mutex_t inthread_lock = PTHREAD_MUTEX_INITIALIZER;

/* A fork()ed child must find it unlocked (vm_fork_hold()). */
__attribute__((constructor)) static void inthread_lock_fork_init(void)
{
	vm_fork_hold(&inthread_lock);
}
static bool bus_installed;			/* (inthread_lock) */
static struct sigaction saved_bus;		/* the application's SIGBUS action */

/*
 * Hand a SIGBUS that is not a fault to serve to what was there before,
 * as the kernel would (its mask, SA_RESETHAND); for the default action
 * the access is retried and kills the process.
 */
static void bus_forward(int sig, siginfo_t *si, void *uc)
{
	pager_signal_forward(&saved_bus, sig, si, uc);
}

/*
 * The SIGBUS handler of in-thread delivery: the kernel raises SIGBUS in the
 * faulting thread instead of queueing a message, and the thread serves its
 * own fault here (signal context: see pager/sigsegv.c for the rules, which
 * are the same).  A SIGBUS that is not a fault ufvm serves (past the end of
 * the file, a store read error, not a ufvm address) is forwarded.
 */
/* The address of this thread's last fault that found no region (below). */
static __thread uintptr_t bus_nowhere;

/*
 * A fault that found no region may have raced with an unmap: the region
 * is out of the tree, its range still registered until the unmap detaches
 * it under mmap_lock.  Wait for every in-thread instance's writers to be
 * done; then the access, run again, meets what is there now (nothing:
 * SIGSEGV, as with handler threads; or a new region).  No RCU section is
 * held while waiting: the unmap may wait for a grace period.
 * Context: signal handler, no ufvm lock held; may sleep.
 */
static void bus_wait_unmaps(void)
{
	struct uffd_backend *ub, *held[8];
	unsigned int n, i, skip = 0;

	/*
	 * Up to 8 instances per pass, each pinned by its busy count (so its
	 * address space stays) while no RCU section is held; the list is
	 * walked again from the start, past those done, until its end.
	 */
	do {
		unsigned int k = 0;

		n = 0;
		vm_rcu_read_lock();
		for (ub = vm_rcu_dereference(inthread_list); ub && n < ARRAY_SIZE(held);
		     ub = vm_rcu_dereference(ub->next)) {
			if (k++ < skip || (vm_forked(&ub->made_by) &&	/* a fork child's copy: */
					   !(ub->pol->debug & UFVM_DEBUG_BUS_INHERITED)))	/* (tests) */
				continue;	/* nothing unmaps it, its locks as the fork left them */
			pager_busy_enter(&ub->busy);	/* ufvm_close waits for it */
			held[n++] = ub;
		}
		vm_rcu_read_unlock();
		for (i = 0; i < n; i++) {
			vm_rwsem_read(&held[i]->as->mmap_lock);
			vm_rwsem_read_unlock(&held[i]->as->mmap_lock);
			pager_busy_exit(&held[i]->busy);
		}
		skip += n;
	} while (n == ARRAY_SIZE(held));
}

static void bus_handler(int sig, siginfo_t *si, void *ucv)
{
	uintptr_t addr = (uintptr_t)si->si_addr & PAGE_MASK;
	struct uffd_backend *ub;
	struct vm_region *r = NULL;
	struct pager_fault vmf;
	long pf_err = pager_fault_error(ucv);
	bool is_write = pf_err > 0 && (pf_err & PAGER_PF_WRITE);
	bool mapped = false, wmapped = false, past = false;
	int saved = errno, cs, ret;

	vm_rcu_read_lock();
	for (ub = vm_rcu_dereference(inthread_list); ub; ub = vm_rcu_dereference(ub->next)) {
		/*
		 * A fork()ed child inherits the list but not the regions, nor
		 * the locks' state: its faults are not ufvm's.
		 */
		if (vm_forked(&ub->made_by))
			continue;
		r = vm_aspace_find_rcu(ub->as, addr);
		if (r)
			break;
	}
	if (r) {
		uint64_t idx = vm_region_pgidx(r, addr);

		past = idx >= vm_object_npages(r->object);
		mapped = bit_test(r->mapped, idx - r->pgoff);
		wmapped = bit_test(r->wmapped, idx - r->pgoff);
		if (!past && si->si_code == BUS_ADRERR)
			pager_busy_enter(&ub->busy);	/* ufvm_close waits for it */
	}
	vm_rcu_read_unlock();
	if (!r && si->si_code == BUS_ADRERR && !vm_locks_held() && bus_nowhere != addr) {
		/* Once per address: a SIGBUS of the application's own comes back. */
		bus_nowhere = addr;
		pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &cs);
		bus_wait_unmaps();
		pthread_setcancelstate(cs, NULL);
		errno = saved;
		return;
	}
	if (unlikely(bus_nowhere))
		bus_nowhere = 0;	/* (a store per fault otherwise) */
	if (!r || past || si->si_code != BUS_ADRERR)
		goto forward;
	if (vm_locks_held()) {
		static const char msg[] = "ufvm: BUG: a fault on ufvm memory inside a ufvm locked section\n";
		ssize_t n = write(2, msg, sizeof(msg) - 1);

		(void)n;
		abort();
	}
	vmf.as = ub->as;
	vmf.pol = ub->pol;
	vmf.stats = vm_stats_shard_get(ub->stats);
	vmf.addr = addr;
	vmf.flags = is_write ? PF_WRITE : 0;
	vmf.will_wait = NULL;
	if (is_write && mapped && !wmapped)
		vmf.flags |= PF_WP;
	cs = pager_cancel_off(vmf.pol);
	ret = pager_fault(&vmf);
	pager_busy_exit(&ub->busy);
	pager_cancel_restore(cs);	/* last: an asynchronous cancel acts here */
	if (ret == PAGER_SIGBUS)
		goto forward;
	errno = saved;
	return;
forward:
	errno = saved;
	bus_forward(sig, si, ucv);
}

bool pager_sigbus_is_ufvms(const struct sigaction *sa)
{
	return (sa->sa_flags & SA_SIGINFO) && sa->sa_sigaction == bus_handler;
}

static int inthread_add(struct uffd_backend *ub)
{
	int err = 0;

	pthread_mutex_lock(&inthread_lock);
	if (!bus_installed) {
		struct sigaction sa, prev;

		memset(&sa, 0, sizeof(sa));
		sa.sa_sigaction = bus_handler;
		sa.sa_flags = SA_SIGINFO | SA_RESTART;
		/*
		 * No signal of the application's while a fault is served: its
		 * handler could touch ufvm memory with this thread's locks
		 * held.  They are delivered when the fault is done.
		 */
		vm_sigset_async(&sa.sa_mask);
		if (sigaction(SIGBUS, &sa, &prev)) {
			err = -errno;
		} else {
			/* Ours is never "the application's" (it forwards to it). */
			if (!(prev.sa_flags & SA_SIGINFO) || prev.sa_sigaction != bus_handler)
				saved_bus = prev;
			bus_installed = true;
		}
	}
	if (!err) {
		ub->next = inthread_list;
		rcu_assign_pointer(inthread_list, ub);
	}
	pthread_mutex_unlock(&inthread_lock);
	return err;
}

static void inthread_del(struct uffd_backend *ub)
{
	struct uffd_backend **pp;

	pthread_mutex_lock(&inthread_lock);
	for (pp = &inthread_list; *pp; pp = &(*pp)->next) {
		if (*pp == ub) {
			rcu_assign_pointer(*pp, ub->next);
			break;
		}
	}
	if (!inthread_list && bus_installed) {
		struct sigaction cur;

		/*
		 * The last one: give SIGBUS back, and the next inthread_add()
		 * installs ours again in front of whatever is there then.
		 * Unless the application has installed its own since: that
		 * one may hand on to ours, so ours stays where it is (with no
		 * instance it forwards everything to what was there before).
		 */
		if (!sigaction(SIGBUS, NULL, &cur) && (cur.sa_flags & SA_SIGINFO) &&
		    cur.sa_sigaction == bus_handler &&
		    !sigaction(SIGBUS, &saved_bus, NULL))
			bus_installed = false;
	}
	pthread_mutex_unlock(&inthread_lock);
	synchronize_rcu();	/* no handler still looks at it */
}

static void uffd_destroy(struct pager_backend *be)
{
	struct uffd_backend *ub = container_of(be, struct uffd_backend, be);
	uint64_t one = 1;
	unsigned int i;

	if (ub->zapv_pidfd >= 0)
		close(ub->zapv_pidfd);
	if (ub->inthread) {
		inthread_del(ub);
		if (!(ub->pol->debug & UFVM_DEBUG_CLOSE_NO_WAIT))	/* else: the bug, for tests */
			pager_busy_wait(&ub->busy);	/* faults in application threads */
		installers_stop(ub);
		close(ub->uffd);
		free(ub);
		return;
	}

	if (ub->park) {
		/* Every handler reads again before the stop passes among them. */
		__atomic_store_n(&ub->stopping, 1, __ATOMIC_SEQ_CST);
		for (i = 0; i < ub->nthreads; i++)
			unpark(&ub->h[i]);
	}
	if (ub->spin_us) {
		if (write(ub->stopfd, &one, sizeof(one)) != sizeof(one))
			perror("ufvm: stopping handlers");
	} else if (ub->nthreads) {
		/* Start the stop: it passes from handler to handler (handler_stop). */
		__atomic_store_n(&ub->live, ub->nthreads, __ATOMIC_RELEASE);
		(void)*(volatile char *)ub->sentinel;
	}
	for (i = 0; i < ub->nthreads; i++)
		pthread_join(ub->threads[i], NULL);
	installers_stop(ub);
	munmap(ub->sentinel, PAGE_SIZE);
	close(ub->stopfd);
	close(ub->uffd);
	free(ub->threads);
	free(ub->h);
	free(ub);
}

static int uffd_open(int flags)
{
	return (int)syscall(SYS_userfaultfd, flags);
}

/* Probe the kernel's features on a throw-away fd (UFFDIO_API is once per fd). */
static int probe_features(uint64_t *features, bool quiet)
{
	struct uffdio_api api = { .api = UFFD_API, .features = 0 };
	int fd = uffd_open(O_CLOEXEC | O_NONBLOCK), err = 0;

	if (fd < 0) {
		err = -errno;
		if (quiet)
			return err;
		if (err == -EPERM)
			fprintf(stderr,
				"ufvm: userfaultfd is not permitted for this process.\n"
				"ufvm: allow it with 'sysctl -w vm.unprivileged_userfaultfd=1', or run\n"
				"ufvm: with CAP_SYS_PTRACE (e.g. as root); or use UFVM_BACKEND=sigsegv.\n");
		else if (err == -ENOSYS)
			fprintf(stderr, "ufvm: this kernel has no userfaultfd (CONFIG_USERFAULTFD)\n");
		else
			fprintf(stderr, "ufvm: userfaultfd: %s\n", strerror(-err));
		return err;
	}
	if (ioctl(fd, UFFDIO_API, &api)) {
		err = -errno;
		fprintf(stderr, "ufvm: UFFDIO_API: %s\n", strerror(-err));
	}
	close(fd);
	*features = api.features;
	return err;
}

int pager_uffd_create(struct vm_aspace *as, const struct vm_policy *pol,
		      struct vm_stats_set *stats, const struct pager_uffd_config *cfg,
		      struct pager_backend **out)
{
	struct uffdio_api api = {
		.api = UFFD_API,
		.features = REQUIRED_FEATURES | (cfg->inthread ? UFFD_FEATURE_SIGBUS : 0),
	};
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	struct uffd_backend *ub;
	uint64_t have = 0;
	unsigned int i;
	int err;

	err = probe_features(&have, cfg->quiet);
	if (err)
		return err;
	if ((have & REQUIRED_FEATURES) != REQUIRED_FEATURES) {
		if (cfg->quiet)
			return -EOPNOTSUPP;
		fprintf(stderr,
			"ufvm: userfaultfd lacks features ufvm needs (have 0x%llx, need 0x%llx:\n"
			"ufvm: MISSING_SHMEM, MINOR_SHMEM, WP_HUGETLBFS_SHMEM, POISON; Linux >= 6.6)\n",
			(unsigned long long)have, (unsigned long long)REQUIRED_FEATURES);
		return -EOPNOTSUPP;
	}
	ub = calloc(1, sizeof(*ub));
	if (!ub)
		return -ENOMEM;
	ub->be.pmap.ops = &uffd_pmap_ops;
	ub->be.name = "uffd";
	ub->be.destroy = uffd_destroy;
	ub->be.poisons_due = u_poisons_due;
	if (vm_fork_id_init(&ub->made_by)) {
		free(ub);
		return -ENOMEM;
	}
	ub->as = as;
	ub->pol = pol;
	ub->stats = stats;
	ub->spin_us = cfg->spin_us;
	ub->batch = cfg->batch;
	ub->inthread = cfg->inthread;
	/* Pinned, blocking handlers, one per CPU, and more than one. */
	ub->park = cfg->park && !cfg->spin_us && !cfg->inthread && ncpu > 1 &&
		   (!cfg->threads || cfg->threads == (unsigned int)ncpu) &&
		   (have & UFFD_FEATURE_THREAD_ID);
	if (ub->park)
		api.features |= UFFD_FEATURE_THREAD_ID;
	ub->zap_advice = probe_zap_advice();
	ub->zapv_pidfd = probe_zapv();
	ub->uffd = uffd_open(O_CLOEXEC | (cfg->spin_us ? O_NONBLOCK : 0));
	if (ub->uffd < 0) {
		err = -errno;
		goto fail;
	}
	if (ioctl(ub->uffd, UFFDIO_API, &api)) {
		err = -errno;
		fprintf(stderr, "ufvm: UFFDIO_API: %s\n", strerror(-err));
		goto fail_fd;
	}
	/*
	 * Installers only where an install can be long enough to split; a
	 * failure to start them costs the splits, not the instance.
	 */
	if (cfg->split && ncpu > 1 && MAX(pol->fault_around, pol->map_ahead) >= SPLIT_MIN_PAGES)
		(void)installers_start(ub, (unsigned int)ncpu);
	if (ub->inthread) {
		err = inthread_add(ub);
		if (err)
			goto fail_inst;
		*out = &ub->be;
		return 0;
	}
	ub->sentinel = mmap(NULL, PAGE_SIZE, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (ub->sentinel == MAP_FAILED) {
		err = -errno;
		goto fail_inst;
	} else {
		struct uffdio_register reg = {
			.range = { .start = (uintptr_t)ub->sentinel, .len = PAGE_SIZE },
			.mode = UFFDIO_REGISTER_MODE_MISSING,
		};

		if (ioctl(ub->uffd, UFFDIO_REGISTER, &reg)) {
			err = -errno;
			munmap(ub->sentinel, PAGE_SIZE);
			goto fail_inst;
		}
	}
	ub->stopfd = eventfd(0, EFD_CLOEXEC);
	if (ub->stopfd < 0) {
		err = -errno;
		munmap(ub->sentinel, PAGE_SIZE);
		goto fail_inst;
	}
	if (ncpu < 1)
		ncpu = 1;
	ub->nthreads = cfg->threads ? cfg->threads : (unsigned int)ncpu;
	ub->threads = calloc(ub->nthreads, sizeof(pthread_t));
	ub->h = aligned_alloc(_Alignof(struct handler), ub->nthreads * sizeof(*ub->h));
	if (!ub->threads || !ub->h) {
		free(ub->threads);
		free(ub->h);
		err = -ENOMEM;
		goto fail_stop;
	}
	memset(ub->h, 0, ub->nthreads * sizeof(*ub->h));
	ub->nactive = ub->nthreads;
	for (i = 0; i < ub->nthreads; i++)
		ub->h[i].seen_ns = vm_now_ns();	/* no parking in the first PARK_IDLE_NS */
	for (i = 0; i < ub->nthreads; i++) {
		struct handler *h = &ub->h[i];

		h->ub = ub;
		h->cpu = i % (unsigned int)ncpu;
		h->pin = !cfg->threads || cfg->threads == (unsigned int)ncpu;
		err = vm_thread_create(&ub->threads[i], handler_main, h);
		if (err)
			break;
		name_thread(ub->threads[i], "ufvm-uffd", i);
	}
	if (err) {
		ub->nthreads = i;
		ub->nactive = i;
		uffd_destroy(&ub->be);
		return err;
	}
	*out = &ub->be;
	return 0;
fail_stop:
	close(ub->stopfd);
	munmap(ub->sentinel, PAGE_SIZE);
fail_inst:
	installers_stop(ub);
fail_fd:
	close(ub->uffd);
fail:
	if (ub->zapv_pidfd >= 0)
		close(ub->zapv_pidfd);
	free(ub);
	return err;
}
