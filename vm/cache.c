// SPDX-License-Identifier: MIT
/*
 * vm/cache.c - budget, reclaim, background write-back and readahead for
 * the whole page cache of an instance (see vm/cache.h).
 *
 * Lock order: lru_lock nests inside the page lock (a page enters and
 * leaves the list locked) and is never held while taking another lock.
 * Reclaim takes victims' page locks with trylock only.
 *
 * Threads: one background thread (reclaim between the watermarks, and
 * write-back of pages dirty longer than dirty_expire, or of everything
 * past the dirty limit; after a failed write-back pass, not again before
 * a flush interval) and one or two readahead readers.  Both sleep on an
 * eventfd, which signal handlers may write (the in-thread backends kick
 * them from a fault).
 */
#define _GNU_SOURCE	/* pthread_setname_np */
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "vm/cache.h"
#include "vm/object.h"
#include "vm/pool.h"

static struct vm_pool ra_pool = VM_POOL_INIT("readahead", struct vm_ra_req, 64);

const struct vm_reclaim_ops *vm_reclaim_find(const char *name)
{
	if (!strcmp(name, "clock"))
		return &vm_reclaim_clock;
	if (!strcmp(name, "fifo"))
		return &vm_reclaim_fifo;
	return NULL;
}

static void efd_kick(int fd)
{
	uint64_t one = 1;
	ssize_t n = write(fd, &one, sizeof(one));

	(void)n;	/* a full counter still wakes the reader */
}

void vm_cache_kick(struct vm_cache *c)
{
	efd_kick(c->bg_efd);
}

void vm_cache_add(struct vm_cache *c, struct vm_page *p)
{
	uint64_t nr, max;

	vm_mutex_lock(&c->lru_lock);
	c->ops->add(c, p);
	vm_mutex_unlock(&c->lru_lock);
	nr = __atomic_add_fetch(&c->nr, 1, __ATOMIC_RELAXED);
	max = __atomic_load_n(&c->max_nr, __ATOMIC_RELAXED);
	while (nr > max && !__atomic_compare_exchange_n(&c->max_nr, &max, nr, true,
							__ATOMIC_RELAXED, __ATOMIC_RELAXED))
		;
	if (c->budget && nr == c->high + 1)
		vm_cache_kick(c);
}

void vm_cache_del(struct vm_cache *c, struct vm_page *p)
{
	vm_mutex_lock(&c->lru_lock);
	c->ops->del(c, p);
	vm_mutex_unlock(&c->lru_lock);
	__atomic_sub_fetch(&c->nr, 1, __ATOMIC_RELAXED);
}

unsigned int vm_cache_reclaim(struct vm_cache *c, struct vm_evict_space *sp, unsigned int n,
			      bool force, int *wb_err)
{
	struct vm_stats_shard *s = vm_stats_shard_get(c->stats);
	unsigned int k, nz, i, freed = 0;

	if (n > sp->cap)
		n = sp->cap;
	vm_mutex_lock(&c->lru_lock);
	k = c->ops->scan(c, sp->victims, n, sp->zap, sp->cap, &nz, force);
	vm_mutex_unlock(&c->lru_lock);
	if (nz)
		vm_stat_add(s, UFVM_CTR_RECLAIM_ZAPS, vm_object_sample_pages(sp, nz));
	for (i = 0; i < nz; i++)
		vm_page_put(sp->zap[i]);
	vm_object_evict_pages(sp, k, c->ops == &vm_reclaim_clock && !force);
	for (i = 0; i < k; i++) {
		int r = sp->res[i];

		if (r > 0) {
			freed++;
			vm_stat_inc(s, UFVM_CTR_EVICTIONS);
			if (r > 1)
				vm_stat_inc(s, UFVM_CTR_EVICT_WRITEBACK);
		} else if (r < 0 && wb_err) {
			*wb_err = r;
		}
		vm_page_put(sp->victims[i]);
	}
	return freed;
}

/*
 * Direct reclaim's bounds (docs/architecture.md, "Budget"): after
 * EMPTY_ROUNDS rounds that freed nothing, no more second chances, and a
 * fill gives up its window for the pages it needs; a fill stops after
 * MAX_ROUNDS rounds whatever they freed (pages it freed may have gone to
 * other fills every time).
 */
#define EMPTY_ROUNDS	4
#define MAX_ROUNDS	200

/*
 * The write-back error of this fill's rounds, else the last one of
 * anyone's while dirty pages are left (with none, none is left that cannot
 * be cleaned: the failing pages went another way, punched, truncated or
 * dropped at a last close; vm_cache_dirty_gone() forgets it then).
 */
static int unclean_err(struct vm_cache *c, int wb_err)
{
	if (wb_err || !__atomic_load_n(&c->nr_dirty, __ATOMIC_RELAXED))
		return wb_err;
	return vm_cache_wb_failing(c);
}

/*
 * What reclaim brings the resident pages down to: @base (the budget for a
 * fill, a watermark for the background thread), unless the pages whose
 * write-back failed fill it.  Evicting the others cannot reach @base then,
 * and a fill that evicted the last of them evicted the other half of the
 * very access it served: a load across two pages, or a copy between two,
 * faulted for ever.  So the others keep a slack of their own above the
 * unclean pages.  Judged on the pages (nr_unclean), not on the last
 * write-back's error, which one healthy page's write-back clears: a copy
 * from a clean page into a dirty one of a healthy file ping-ponged so.  A
 * dirtying fill keeps @base: past the unclean pages' slack it is refused.
 */
static uint64_t room_target(struct vm_cache *c, uint64_t base, bool dirtying)
{
	if (dirtying)
		return base;
	return MAX(base, __atomic_load_n(&c->nr_unclean, __ATOMIC_RELAXED) + c->slack);
}

int vm_cache_make_room(struct vm_cache *c, unsigned int n, unsigned int min, bool dirtying)
{
	VM_EVICT_SPACE(sp, VM_EVICT_BATCH);
	unsigned int rounds = 0, empty = 0, batch;
	int wb_err = 0, err;	/* this fill's own write-backs' error; the one it fails with */

	if (!c->budget)
		return (int)n;
	n = (unsigned int)MIN((uint64_t)n, MAX(c->budget / 4, 1));
	/* Victims per round: the pages wanted, at least 8 (1/16 of a small budget). */
	batch = (unsigned int)MAX((uint64_t)n, MIN(8u, MAX(c->budget / 16, 1)));
	__atomic_add_fetch(&c->reserved, n, __ATOMIC_RELAXED);
	while (__atomic_load_n(&c->nr, __ATOMIC_RELAXED) +
	       __atomic_load_n(&c->reserved, __ATOMIC_RELAXED) >
	       room_target(c, c->budget, dirtying)) {
		if (n > min && (empty >= EMPTY_ROUNDS ||
				__atomic_load_n(&c->reserved, __ATOMIC_RELAXED) > c->budget / 2)) {
			/*
			 * The window does not fit now: nothing could go for a
			 * few rounds, or the reservations alone take more than
			 * half the budget (those of fills waiting together
			 * may).  No eviction helps the one, and in the other
			 * the pages read ahead before would go before they are
			 * used.  Keep only what the caller needs, at once.
			 */
			if (c->overshoot_window)
				return (int)n;	/* the bug, for tests */
			__atomic_sub_fetch(&c->reserved, n - min, __ATOMIC_RELAXED);
			n = min;
			if (!n)
				return 0;	/* readahead: never over the budget */
			continue;
		}
		vm_stat_inc(vm_stats_shard_get(c->stats), UFVM_CTR_DIRECT_RECLAIM);
		if (vm_cache_reclaim(c, &sp, batch, empty >= EMPTY_ROUNDS, &wb_err))
			empty = 0;
		else
			empty++;
		if (++rounds >= MAX_ROUNDS)
			break;
		if (empty < EMPTY_ROUNDS) {
			if (empty)
				sched_yield();	/* let fills and evictions in flight finish */
			continue;
		}
		if (n > min)
			continue;	/* shrinks first */
		/*
		 * Pages that cannot be cleaned: waiting will not help a fill
		 * that would add one more.  A read's fill goes on through the
		 * list, where clean pages may lie past the unwritable ones, for
		 * one lap of it; then it goes over with its clean page (the
		 * next fill may evict it): rounds that found nothing but
		 * failing write-backs, each retried, would go on to MAX_ROUNDS
		 * for every read.  The failure may be another thread's (the
		 * flusher's, holding the pages this reclaim found locked).
		 */
		if (unclean_err(c, wb_err) && (dirtying || empty >= EMPTY_ROUNDS +
				DIV_ROUND_UP(__atomic_load_n(&c->nr, __ATOMIC_RELAXED), batch)))
			break;
		sched_yield();
	}
	if (__atomic_load_n(&c->nr, __ATOMIC_RELAXED) +
	    __atomic_load_n(&c->reserved, __ATOMIC_RELAXED) <= room_target(c, c->budget, dirtying))
		return (int)n;
	/*
	 * Over the budget.  A readahead window is dropped; a fill goes over
	 * with the pages it needs, @min: by one page per filling thread while
	 * pages are only locked for a moment, and by at most the slack for
	 * pages that cannot be cleaned when write-backs fail; past that, the
	 * fill fails with the write-back's error.
	 */
	if (n > min && !c->overshoot_window) {
		__atomic_sub_fetch(&c->reserved, n - min, __ATOMIC_RELAXED);
		n = min;
	}
	if (!n)
		return 0;
	/*
	 * Only a fill that will dirty its page can add to what cannot be
	 * cleaned; a read's page is clean, and the next fill may evict it.
	 * Judged on the pages resident, not on what fills waiting together
	 * reserved: one unwritable page must not fail the reads of others.
	 */
	if (!dirtying || __atomic_load_n(&c->nr, __ATOMIC_RELAXED) < c->budget + c->slack)
		return (int)n;
	err = unclean_err(c, wb_err);
	if (err && !wb_err) {
		/*
		 * Not this fill's own failure: another's (the flusher's, on
		 * the pages it holds) or an old one.  Ask a failed page's
		 * store (vm__cache_dirty_retry()); if none could tell, each
		 * kept for a punch or truncate under way over it, the error
		 * may be stale, and this fill goes over by its page.
		 */
		err = vm__cache_dirty_retry(c) ? unclean_err(c, 0) : 0;
	}
	if (err) {
		__atomic_sub_fetch(&c->reserved, n, __ATOMIC_RELAXED);
		vm_stat_inc(vm_stats_shard_get(c->stats), UFVM_CTR_NOROOM);
		return err;
	}
	return (int)n;
}

/* vm_cache_dirty_full() past its inline test: over the slack. */
int vm__cache_dirty_refuse(struct vm_cache *c)
{
	int err = unclean_err(c, 0);

	if (err)
		vm_stat_inc(vm_stats_shard_get(c->stats), UFVM_CTR_NOROOM);
	return err;
}

#define RETRY_FILES	4	/* vm_cache_dirty_retry(): files tried at most */

bool vm__cache_dirty_retry(struct vm_cache *c)
{
	struct vm_page *p, *cand[RETRY_FILES];
	unsigned int n = 0, i;
	bool written = false, told = false;
	int r;

	if (!unclean_err(c, 0))
		return true;
	/* The first unwritable page of each of a few files: one store may
	 * have recovered while another still fails. */
	vm_mutex_lock(&c->lru_lock);
	cds_list_for_each_entry(p, &c->lru, lru) {
		if (!vm_page_test(p, PG_WBFAIL))
			continue;
		for (i = 0; i < n && READ_ONCE(cand[i]->object) != READ_ONCE(p->object); i++)
			;
		if (i == n && vm_page_get_unless_zero(p))
			cand[n++] = p;
		if (n == RETRY_FILES)
			break;
	}
	vm_mutex_unlock(&c->lru_lock);
	for (i = 0; i < n; i++) {
		/* One written forgets the error; the others only cost a write each. */
		if (!written) {
			r = vm_object_retry_writeback(cand[i]);
			written = r == 0;
			told |= r <= 0;	/* written, or failed again: not kept */
		}
		vm_page_put(cand[i]);
	}
	return told || c->refuse_guess;	/* the bug, for tests */
}

void vm_cache_unreserve(struct vm_cache *c, unsigned int n)
{
	if (c->budget)
		__atomic_sub_fetch(&c->reserved, n, __ATOMIC_RELAXED);
}

#define FILL_BUF_BYTES	((size_t)VM_FILL_BUF_PAGES << PAGE_SHIFT)

void *vm_cache_fill_buf_try(struct vm_cache *c)
{
	unsigned int i;

	if (!c->fill_buf)
		return NULL;
	for (i = 0; i < VM_FILL_BUFS; i++)
		if (!__atomic_load_n(&c->fill_busy[i], __ATOMIC_RELAXED) &&
		    !__atomic_exchange_n(&c->fill_busy[i], true, __ATOMIC_ACQUIRE))
			return c->fill_buf + i * FILL_BUF_BYTES;
	return NULL;
}

static size_t fill_slot(struct vm_cache *c, void *buf)
{
	return (size_t)((char *)buf - c->fill_buf) / FILL_BUF_BYTES;
}

void vm_cache_fill_buf_put(struct vm_cache *c, void *buf)
{
	__atomic_store_n(&c->fill_busy[fill_slot(c, buf)], false, __ATOMIC_RELEASE);
}

/*
 * A pipe for a fill of up to VM_FILL_BUF_PAGES pages, in @fds, or -1s.  A
 * smaller pipe (F_SETPIPE_SZ refused, e.g. past the user's pipe-buffer
 * limit) still works, in more splice() calls.
 */
static void fill_pipe_open(int fds[2])
{
	if (pipe2(fds, O_CLOEXEC)) {
		fds[0] = fds[1] = -1;
		return;
	}
	fcntl(fds[1], F_SETPIPE_SZ, (int)FILL_BUF_BYTES);
}

static void fill_pipe_close(int fds[2])
{
	if (fds[0] >= 0) {
		close(fds[0]);
		close(fds[1]);
	}
	fds[0] = fds[1] = -1;
}

const int *vm_cache_fill_pipe(struct vm_cache *c, void *buf)
{
	int *fds = c->fill_pipe[fill_slot(c, buf)];

	return fds[0] >= 0 ? fds : NULL;
}

void vm_cache_fill_pipe_reset(struct vm_cache *c, void *buf)
{
	int *fds = c->fill_pipe[fill_slot(c, buf)];

	fill_pipe_close(fds);
	fill_pipe_open(fds);
}

void vm_cache_readahead(struct vm_cache *c, struct vm_object *obj, uint64_t first,
			unsigned int n)
{
	struct vm_ra_req *rq;

	if (!c->nreaders || !n)
		return;
	vm_rcu_read_lock();
	rq = vm_pool_alloc_rcu(&ra_pool);
	vm_rcu_read_unlock();
	if (!rq)
		return;
	cds_wfcq_node_init(&rq->node);
	rq->obj = obj;
	vm_object_get_ref(obj);
	rq->first = first;
	rq->n = n;
	cds_wfcq_enqueue(&c->rq_head, &c->rq_tail, &rq->node);
	efd_kick(c->rq_efd);
}

static void ra_req_free(struct rcu_head *h)
{
	vm_pool_free(&ra_pool, container_of(h, struct vm_ra_req, rcu));
}

static void efd_wait(int fd, int timeout_ms)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	uint64_t v;

	if (poll(&pfd, 1, timeout_ms) > 0 && read(fd, &v, sizeof(v)) < 0)
		v = 0;
}

static void *reader_main(void *arg)
{
	struct vm_cache *c = arg;

	for (;;) {
		struct cds_wfcq_node *node;

		while ((node = cds_wfcq_dequeue_blocking(&c->rq_head, &c->rq_tail))) {
			struct vm_ra_req *rq = caa_container_of(node, struct vm_ra_req, node);

			/* Skip it if the request is all that holds the object. */
			if (!__atomic_load_n(&c->bg_stop, __ATOMIC_ACQUIRE) &&
			    __atomic_load_n(&rq->obj->refs, __ATOMIC_RELAXED) > 1)
				vm_object_readahead(rq->obj, rq->first, rq->n);
			c->hooks.put_object(c->hooks.arg, rq->obj);
			vm_call_rcu(&rq->rcu, ra_req_free);
		}
		if (__atomic_load_n(&c->bg_stop, __ATOMIC_ACQUIRE))
			break;
		efd_wait(c->rq_efd, -1);
	}
	return NULL;
}

/* One pass of the background flusher over every object. */
struct flush_pass {
	struct vm_cache *c;
	int err;		/* a write-back of this pass failed */
};

static void flush_one(struct vm_object *obj, void *arg)
{
	struct flush_pass *fp = arg;
	struct vm_cache *c = fp->c;
	uint32_t now = vm_now_s(), age = (c->dirty_expire_ms + 999) / 1000;
	bool over = __atomic_load_n(&c->nr_dirty, __ATOMIC_RELAXED) > c->dirty_limit;
	int err;

	if (!__atomic_load_n(&obj->nr_dirty, __ATOMIC_RELAXED))
		return;
	err = vm_object_writeback_aged(obj, over ? UINT32_MAX : (now > age ? now - age : 0));
	if (err)
		fp->err = err;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/*
 * The background thread's write-back pass, unless one failed less than a
 * flush interval ago (*@retry_at): pages whose store writes fail stay
 * dirty, and retrying them on every kick would spin on the failing store.
 * Context: the background thread; may sleep (I/O).
 */
static void flush_all(struct vm_cache *c, uint64_t *retry_at)
{
	struct flush_pass fp = { .c = c };

	if (*retry_at && now_ms() + 10 < *retry_at)	/* 10 ms: a timed wake-up's slop */
		return;
	c->hooks.for_each_object(c->hooks.arg, flush_one, &fp);
	*retry_at = fp.err ? now_ms() + c->flush_interval_ms : 0;
}

static void *bg_main(void *arg)
{
	VM_EVICT_SPACE(sp, VM_EVICT_BATCH_BG);	/* ~14 KiB of this thread's stack */
	struct vm_cache *c = arg;
	uint64_t retry_at = 0;

	for (;;) {
		efd_wait(c->bg_efd, (int)c->flush_interval_ms);
		if (__atomic_load_n(&c->bg_stop, __ATOMIC_ACQUIRE))
			break;
		if (c->hooks.tick)
			c->hooks.tick(c->hooks.arg);
		if (c->budget && __atomic_load_n(&c->nr, __ATOMIC_RELAXED) >
				 room_target(c, c->high, false)) {
			unsigned int idle = 0;
			uint64_t nr, low;

			while ((nr = __atomic_load_n(&c->nr, __ATOMIC_RELAXED)) >
			       (low = room_target(c, c->low, false)) && idle < 4) {
				/*
				 * Down to the low watermark, not far below it:
				 * a batch of at least VM_EVICT_BATCH pages (one
				 * zap, one TLB flush for many), but no more than
				 * 1/16 of a small budget.
				 */
				uint64_t batch = MIN((uint64_t)VM_EVICT_BATCH,
						     MAX(c->budget / 16, 1));
				unsigned int n = (unsigned int)MIN(MAX(nr - low, batch),
								   (uint64_t)sp.cap);

				/*
				 * Past the dirty limit, write back first, in runs:
				 * else every victim is dirty, each eviction writes
				 * one page while the thread's flush below waits for
				 * the loop to end, and reclaim never catches up.
				 */
				if (__atomic_load_n(&c->nr_dirty, __ATOMIC_RELAXED) > c->dirty_limit)
					flush_all(c, &retry_at);
				idle = vm_cache_reclaim(c, &sp, n, false, NULL) ? 0 : idle + 1;
			}
		}
		flush_all(c, &retry_at);
	}
	return NULL;
}

int vm_cache_init(struct vm_cache *c, const struct vm_cache_config *cfg,
		  struct vm_stats_set *stats, const struct vm_cache_hooks *hooks)
{
	unsigned int i;
	int err;

	memset(c, 0, sizeof(*c));
	c->ops = cfg->reclaim ? cfg->reclaim : &vm_reclaim_clock;
	c->budget = cfg->budget;
	c->overshoot_window = cfg->overshoot_window;
	c->refuse_guess = cfg->refuse_guess;
	c->no_active = cfg->no_active;
	c->high = c->budget - c->budget / 16;
	c->low = c->budget - c->budget / 8;
	c->slack = MAX(c->budget / 16, VM_CACHE_SLACK_MIN);
	c->ra_max = cfg->readahead;
	if (c->budget && c->ra_max > MAX(c->budget / 4, 1))
		c->ra_max = (unsigned int)MAX(c->budget / 4, 1);
	c->dirty_expire_ms = cfg->dirty_expire_ms;
	c->flush_interval_ms = cfg->flush_interval_ms ? cfg->flush_interval_ms : 1000;
	c->dirty_limit = c->budget ? c->budget / 2 : UINT64_MAX;
	c->stats = stats;
	c->hooks = *hooks;
	vm_mutex_init(&c->lru_lock, VM_LC_LRU);
	CDS_INIT_LIST_HEAD(&c->lru);
	cds_wfcq_init(&c->rq_head, &c->rq_tail);
	/* Touched on use only; without them every fill goes through the view. */
	c->fill_buf = mmap(NULL, VM_FILL_BUFS * FILL_BUF_BYTES, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (c->fill_buf == MAP_FAILED)
		c->fill_buf = NULL;
	for (i = 0; i < VM_FILL_BUFS; i++)	/* without one, a fill reads into its buffer */
		fill_pipe_open(c->fill_pipe[i]);
	c->bg_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	c->rq_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK | EFD_SEMAPHORE);	/* a kick each */
	if (c->bg_efd < 0 || c->rq_efd < 0) {
		err = -errno;
		goto fail;
	}
	err = vm_thread_create(&c->bg, bg_main, c);
	if (err)
		goto fail;
	pthread_setname_np(c->bg, "ufvm-bg");	/* for top, perf: best effort */
	if (c->ra_max > 1) {
		unsigned int nr = MIN(MAX(cfg->readers, 1u), (unsigned int)ARRAY_SIZE(c->readers));

		for (i = 0; i < nr; i++) {
			err = vm_thread_create(&c->readers[i], reader_main, c);
			if (err)
				break;
			pthread_setname_np(c->readers[i], "ufvm-readahead");
			c->nreaders++;
		}
		if (err) {
			vm_cache_destroy(c);
			return err;
		}
	}
	return 0;
fail:
	for (i = 0; i < VM_FILL_BUFS; i++)
		fill_pipe_close(c->fill_pipe[i]);
	if (c->fill_buf)
		munmap(c->fill_buf, VM_FILL_BUFS * FILL_BUF_BYTES);
	if (c->bg_efd >= 0)
		close(c->bg_efd);
	if (c->rq_efd >= 0)
		close(c->rq_efd);
	vm_mutex_destroy(&c->lru_lock);
	return err;
}

void vm_cache_stop(struct vm_cache *c)
{
	unsigned int i;

	if (__atomic_exchange_n(&c->bg_stop, true, __ATOMIC_ACQ_REL))
		return;
	for (i = 0; i < c->nreaders; i++)
		efd_kick(c->rq_efd);
	for (i = 0; i < c->nreaders; i++)
		pthread_join(c->readers[i], NULL);
	efd_kick(c->bg_efd);
	pthread_join(c->bg, NULL);
}

void vm_cache_destroy(struct vm_cache *c)
{
	unsigned int i;

	vm_cache_stop(c);
	/* Every page is gone: a page's PG_WBFAIL counted once, uncounted once. */
	VM_BUG_ON(__atomic_load_n(&c->nr_unclean, __ATOMIC_RELAXED));
	close(c->bg_efd);
	close(c->rq_efd);
	cds_wfcq_destroy(&c->rq_head, &c->rq_tail);
	vm_mutex_destroy(&c->lru_lock);
	for (i = 0; i < VM_FILL_BUFS; i++)
		fill_pipe_close(c->fill_pipe[i]);
	if (c->fill_buf)
		munmap(c->fill_buf, VM_FILL_BUFS * FILL_BUF_BYTES);
}
