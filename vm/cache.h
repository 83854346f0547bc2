/* SPDX-License-Identifier: MIT */
/*
 * vm/cache.h - the page cache of one ufvm instance as a whole: the memory
 * budget, reclaim (pluggable policy), background write-back and readahead.
 *
 * Locking key: (c) constant, (a) atomic, (l) lru_lock.
 *
 * Every cached page is on the reclaim list from its insertion into an
 * object's index until its removal; ->nr counts them, which is the number
 * of resident frames.  With a budget B (pages), a background thread starts
 * reclaiming when nr exceeds the high watermark and stops below the low one;
 * a fill that would take nr past B reclaims directly first.
 *
 * Lifetime rule for reclaim: it takes no object reference.  It finds a page
 * on the list, locks it with a trylock inside an RCU read section and checks
 * that the page still belongs to its object; from then on the page lock
 * keeps the object alive (object destruction locks every page it drops),
 * and the object struct itself is freed only after a grace period.
 */
#ifndef UFVM_VM_CACHE_H
#define UFVM_VM_CACHE_H

#include <pthread.h>
#include <urcu/list.h>
#include <urcu/wfcqueue.h>

#include "vm/lock.h"
#include "vm/page.h"
#include "vm/stats.h"

struct vm_cache;
struct vm_object;
struct vm_evict_space;
struct vm_region;

/* A reclaim policy (vm/reclaim_*.c).  Every op runs with lru_lock held. */
struct vm_reclaim_ops {
	const char *name;
	void (*add)(struct vm_cache *c, struct vm_page *p);	/* new page */
	void (*del)(struct vm_cache *c, struct vm_page *p);	/* leaving */
	/*
	 * Pick up to @n victims into @victims and up to @nz mapped pages to
	 * zap for reference sampling into @zap, each with a reference taken.
	 * Return: the number of victims; *nzap the number to zap.
	 */
	unsigned int (*scan)(struct vm_cache *c, struct vm_page **victims, unsigned int n,
			     struct vm_page **zap, unsigned int nz, unsigned int *nzap,
			     bool force);
};

extern const struct vm_reclaim_ops vm_reclaim_clock, vm_reclaim_fifo;
/* Return: the policy called @name, or NULL. */
const struct vm_reclaim_ops *vm_reclaim_find(const char *name);

/* What the owner of the objects (lib) provides to the background thread. */
struct vm_cache_hooks {
	/* Call @fn on every open object, each pinned for the call. */
	void (*for_each_object)(void *arg, void (*fn)(struct vm_object *, void *),
				void *fnarg);
	/* Drop a reference taken by vm_object_get_ref(). */
	void (*put_object)(void *arg, struct vm_object *obj);
	/*
	 * Called by the background thread at each of its rounds (a round
	 * starts every flush interval when idle, later when the last one's
	 * write-back or reclaim ran long), no lock held.
	 */
	void (*tick)(void *arg);
	void *arg;
};

struct vm_cache_config {
	uint64_t budget;		/* pages; 0 = unlimited */
	const struct vm_reclaim_ops *reclaim;
	unsigned int readahead;		/* largest window, pages; 0 = off */
	unsigned int readers;		/* readahead threads (1 or 2; 0 = 1) */
	unsigned int dirty_expire_ms;	/* write back pages dirty this long */
	unsigned int flush_interval_ms;
	bool overshoot_window;		/* test switch: the bug make_room avoids */
	bool refuse_guess;		/* test switch: the bug dirty_retry avoids */
	bool no_active;			/* test switch: the clock without active pages */
};

/* A queued asynchronous readahead. */
struct vm_ra_req {
	struct cds_wfcq_node node;
	struct vm_object *obj;		/* referenced */
	uint64_t first;
	unsigned int n;
	struct rcu_head rcu;
};

/*
 * The budget's slack for pages that cannot be cleaned (their write-back
 * fails): fills may take the cache this far past the budget, budget/16
 * pages but at least this many (docs/architecture.md, "Budget").
 */
#define VM_CACHE_SLACK_MIN	4

/*
 * Bounce buffers for fills: the store is read into one and the frames are
 * written with pwrite() on the memfd, so that a filled frame has no PTE in
 * the object's view and evicting it later punches it with no TLB
 * shootdown (vm/object.c, fill_frames()).
 */
#define VM_FILL_BUFS		4	/* the handlers and readers of a 2-CPU host */
#define VM_FILL_BUF_PAGES	256	/* the largest fill (VM_RA_MAX) */

struct vm_cache {
	const struct vm_reclaim_ops *ops;	/* (c) */
	uint64_t budget, high, low;		/* (c) pages */
	uint64_t slack;				/* (c) over budget for unclean pages */
	unsigned int ra_max;			/* (c) */
	bool overshoot_window;			/* (c) UFVM_DEBUG_OVERSHOOT_WINDOW */
	bool refuse_guess;			/* (c) UFVM_DEBUG_REFUSE_GUESS */
	bool no_active;				/* (c) UFVM_DEBUG_NO_ACTIVE */
	uint32_t dirty_expire_ms;		/* (c) */
	uint32_t flush_interval_ms;		/* (c) */
	uint64_t dirty_limit;			/* (c) write back past this */
	struct vm_stats_set *stats;		/* (c) */
	struct vm_cache_hooks hooks;		/* (c) */

	struct vm_mutex lru_lock;
	struct cds_list_head lru;		/* (l) oldest first */
	struct cds_list_head *hand;		/* (l) clock hand */
	uint64_t nr;				/* (a) pages cached = frames */
	uint64_t reserved;			/* (a) slots promised to fills */
	uint64_t nr_dirty;			/* (a) */
	uint64_t nr_unclean;			/* (a) pages whose last write-back
						   failed (PG_WBFAIL): reclaim
						   cannot free them */
	uint64_t max_nr;			/* (a) high-water mark seen */
	uint64_t wb_failing;			/* (a) the last write-back's store
						   error (-errno, low half; 0 once
						   one succeeds, or once no dirty
						   page is left) and a count of the
						   failures (high half) */

	bool bg_stop;				/* (a) */
	int bg_efd;				/* kicks the background thread */
	pthread_t bg;

	char *fill_buf;				/* (c) VM_FILL_BUFS bounce buffers */
	bool fill_busy[VM_FILL_BUFS];		/* (a) taken by a fill */
	int fill_pipe[VM_FILL_BUFS][2];		/* (buffer's owner) -1: none */

	struct cds_wfcq_head rq_head;		/* readahead queue */
	struct cds_wfcq_tail rq_tail;
	int rq_efd;
	unsigned int nreaders;
	pthread_t readers[2];
};

/* Return: 0 or -errno.  Starts the background and readahead threads. */
int vm_cache_init(struct vm_cache *c, const struct vm_cache_config *cfg,
		  struct vm_stats_set *stats, const struct vm_cache_hooks *hooks);
/*
 * Stop the threads; queued readaheads are dropped and their object
 * references put (which may destroy objects).  Idempotent.
 */
void vm_cache_stop(struct vm_cache *c);
/* Stop, then free.  Context: every object is gone. */
void vm_cache_destroy(struct vm_cache *c);

/* A page enters or leaves the cache.  Context: page locked; signal safe. */
void vm_cache_add(struct vm_cache *c, struct vm_page *p);
void vm_cache_del(struct vm_cache *c, struct vm_page *p);

/*
 * vm_cache_make_room - before filling up to @n pages: reserve room for
 * them, reclaiming directly if the budget would be exceeded.  Reservations
 * count against the budget until vm_cache_unreserve(), so concurrent fills
 * cannot together overshoot it.  A fill that finds nothing to evict for a
 * few rounds keeps only @min pages (1 for the page a fault needs, 0 for
 * readahead); after a bounded number of rounds it goes over the budget
 * with them, unless the fill is @dirtying (a write) and budget + slack
 * pages are resident with write-backs failing: then it fails.
 * Context: no page lock, no invalidate lock; may sleep (write-back of
 * dirty victims); signal safe.
 * Return: how many pages the caller may fill and must unreserve
 * (@min <= ret <= @n; @n clamped to a quarter of the budget), or the
 * failing write-back's -errno (nothing reserved; only if @min > 0 and
 * @dirtying).
 */
int vm_cache_make_room(struct vm_cache *c, unsigned int n, unsigned int min, bool dirtying);
/*
 * A write-back's store write ended with @err (0 or -errno): while they
 * fail, dirtying fills stop at the budget's slack (vm_cache_make_room()),
 * whichever thread saw the failure.  Context: any.
 */
static inline void vm_cache_writeback_result(struct vm_cache *c, int err)
{
	uint64_t v = __atomic_load_n(&c->wb_failing, __ATOMIC_RELAXED);

	if (err)	/* a new failure: the count changes, see vm_cache_dirty_gone() */
		__atomic_store_n(&c->wb_failing, ((v >> 32) + 1) << 32 | (uint32_t)-err,
				 __ATOMIC_RELAXED);
	else if ((uint32_t)v)
		__atomic_store_n(&c->wb_failing, v >> 32 << 32, __ATOMIC_RELAXED);
}

/* The last write-back's store error, or 0. */
static inline int vm_cache_wb_failing(struct vm_cache *c)
{
	return -(int)(uint32_t)__atomic_load_n(&c->wb_failing, __ATOMIC_RELAXED);
}

/*
 * vm_cache_dirty_full - may one more clean page become dirty (mkwrite, a
 * write fault or a pwrite on a cached page)?  Not while write-backs fail
 * and the resident pages fill the budget and its slack: it could not be
 * cleaned, and a cache that only grows would follow (as for a dirtying
 * fill in vm_cache_make_room()).  Counts a refusal.  Context: any.
 * Return: 0, or the write-back's error.
 */
int vm__cache_dirty_refuse(struct vm_cache *c);

/*
 * vm_cache_dirty_retry - before vm_cache_dirty_full() refuses a clean page
 * on the error of the last write-back, however old: if the resident pages
 * are at the budget plus its slack and write-backs have failed, write back
 * a page whose last write-back failed: the first on the reclaim list of
 * each of up to 4 files, until one is written.  It tells whether a store
 * takes writes again: one that does forgets the failure.  Nothing is
 * evicted or unmapped (a reclaim here evicted or sampled the very page a
 * write fault wanted, which faulted again, for ever).  Walks the list
 * under its lock as far as those pages.
 * Context: no page lock and no ptl held (mmap_lock shared may be).
 * May block: a store write.
 * Return: false if no write-back told whether a store takes writes (no
 * such page found, or each kept: a punch or truncate under way over it,
 * which drops it): the error may be stale, and a refusal on it would be
 * a guess (a recovered store's pwrites got -EIO so, found by `ufvm fuzz
 * --inject`); true otherwise, or with no error to retry.
 */
bool vm__cache_dirty_retry(struct vm_cache *c);

/* Are the resident pages at the budget plus its slack?  (One load.) */
static inline bool vm_cache_over_slack(struct vm_cache *c)
{
	return c->budget && __atomic_load_n(&c->nr, __ATOMIC_RELAXED) >= c->budget + c->slack;
}

/*
 * vm__cache_dirty_retry(), if the cache is past its slack (one load first).
 * Return: false if a refusal (vm_cache_dirty_full()) would be a guess.
 */
static inline bool vm_cache_dirty_retry(struct vm_cache *c)
{
	return !vm_cache_over_slack(c) || vm__cache_dirty_retry(c);
}

static inline int vm_cache_dirty_full(struct vm_cache *c)
{
	return vm_cache_over_slack(c) ? vm__cache_dirty_refuse(c) : 0;
}

/*
 * A dirty page stops counting (written, or gone).  With none left, none is
 * left that cannot be cleaned: the last failure is forgotten, unless a
 * newer one came meanwhile (the count tells).  Context: any.
 */
static inline void vm_cache_dirty_gone(struct vm_cache *c)
{
	uint64_t v;

	if (__atomic_sub_fetch(&c->nr_dirty, 1, __ATOMIC_SEQ_CST))
		return;
	v = __atomic_load_n(&c->wb_failing, __ATOMIC_SEQ_CST);
	while ((uint32_t)v && !__atomic_load_n(&c->nr_dirty, __ATOMIC_SEQ_CST) &&
	       !__atomic_compare_exchange_n(&c->wb_failing, &v, v >> 32 << 32, false,
					    __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
		;	/* a failure stored meanwhile: its pages count, or went too */
}

/* The fill is done (its pages are counted in ->nr now, or were not made). */
void vm_cache_unreserve(struct vm_cache *c, unsigned int n);

/*
 * vm_cache_fill_buf_try - take a bounce buffer of VM_FILL_BUF_PAGES pages
 * for one fill.  Context: any; signal safe; never blocks.
 * Return: the buffer, or NULL if every one is taken (fill another way).
 */
void *vm_cache_fill_buf_try(struct vm_cache *c);
/* Give back a buffer from vm_cache_fill_buf_try().  Context: any. */
void vm_cache_fill_buf_put(struct vm_cache *c, void *buf);
/*
 * The pipe that goes with the fill buffer @buf (vm_store_read_to_fd()),
 * empty between fills, or NULL if it has none.  Context: @buf taken.
 */
const int *vm_cache_fill_pipe(struct vm_cache *c, void *buf);
/* A fill left data in @buf's pipe (an error): replace it.  Context: @buf taken; signal safe. */
void vm_cache_fill_pipe_reset(struct vm_cache *c, void *buf);

/* Wake the background thread (dirty limit reached, watermark passed). */
void vm_cache_kick(struct vm_cache *c);

/*
 * vm_cache_readahead - queue an asynchronous read of [first, first+n) of
 * @obj.  Context: signal safe; the caller holds something that keeps @obj
 * alive (a region of it, under mmap_lock or RCU).
 */
void vm_cache_readahead(struct vm_cache *c, struct vm_object *obj, uint64_t first,
			unsigned int n);

/*
 * Reclaim up to @n pages now (at most sp->cap), in the caller's working
 * space @sp (vm/object.h).  @force: no second chance (the clock's
 * referenced bit is ignored), for a fill that found nothing to evict.
 * *@wb_err (if not NULL) gets the -errno of a victim's failed write-back.
 * Context: no page lock; may sleep (zaps, write-back).  Return: pages freed.
 */
unsigned int vm_cache_reclaim(struct vm_cache *c, struct vm_evict_space *sp, unsigned int n,
			      bool force, int *wb_err);

#endif /* UFVM_VM_CACHE_H */
