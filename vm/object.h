/* SPDX-License-Identifier: MIT */
/*
 * vm/object.h - the page cache of one file (Linux: address_space).
 *
 * Locking key: (c) constant, (a) atomic, (i) index lock, (r) rmap lock,
 * (I) invalidate lock exclusive (or add/block in block mode), (L) owner
 * (lib registry lock).
 *
 * Frames live in a memfd: page i of the file is page i of the memfd, so a
 * cached page can be mapped into any region with zero copies (or in one of
 * several memfds, by chunks: "Frame striping" below).  The pager reaches the
 * frames through ->view, its own unregistered mapping of the memfds over
 * the view's reservation.
 */
#ifndef UFVM_VM_OBJECT_H
#define UFVM_VM_OBJECT_H

#include <pthread.h>
#include <sys/types.h>
#include <urcu/list.h>

#include "vm/lock.h"
#include "vm/page.h"
#include "vm/pindex.h"
#include "vm/policy.h"
#include "vm/stats.h"
#include "vm/store.h"

struct vm_region;
struct vm_cache;

#define VM_RA_MAX	256	/* largest readahead window, pages */

/* The two-state add/block lock of seed 000 (both states shared). */
struct vm_addblock {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	long v;			/* (mu) > 0: adders, < 0: blockers */
	unsigned int waiting[2];	/* (mu) blockers [0] and adders [1] waiting */
	int turn;		/* (mu) 1 or -1: that side enters next; 0: either */
	bool unfair;		/* (c) UFVM_DEBUG_ADDBLOCK_UNFAIR: no turns,
				   holders' newcomers enter */
};

/* What a punch or a cut removed, for vm_object_pwrite()s it ran beside. */
struct vm_range_log {
	unsigned int id;		/* (a) its odd count; 0: being written */
	uint64_t off, end;		/* (a) its byte range */
};

struct vm_object {
	struct vm_store *store;		/* (c) */
	dev_t dev;			/* (c) */
	ino_t ino;			/* (c) */
	uint64_t size;			/* (a) bytes; changed under (I) */
	int memfds[VM_FRAME_STRIPES_MAX];	/* (c) frames: memfds[0..nstripes) */
	unsigned int nstripes;		/* (c) 1: every frame in memfds[0] */
	unsigned int chunk_shift;	/* (c) striped: pages per chunk, log2 */
	char *view;			/* (c) pager's mapping of the frames */
	uint64_t view_pages;		/* (c) reserved: the size limit */
	uint64_t view_mapped;		/* (I) striped: pages of the view mapped */
	uint64_t view_hole;		/* (I) striped: a chunk of the view whose
					   reservation was lost (view_unmap()),
					   the view's end if none */
	const struct vm_policy *pol;	/* (c) */
	struct vm_stats_set *stats;	/* (c) */
	struct vm_cache *cache;		/* (c) budget, reclaim, readahead */

	struct vm_pindex index;		/* rcu readers, (i) writers */
	struct vm_mutex index_lock;
	struct vm_rwsem invalidate_lock;
	struct vm_addblock addblock;
	struct vm_mutex inval_mutex;	/* add/block and none modes: one
					   invalidation at a time (blocks share
					   their side) */
	unsigned int shrinks;		/* (a) bumped as a shrinking truncate starts
					   (odd) and once its store truncate is
					   done or failed (even) */
	unsigned int punches;		/* (a) bumped as a punch starts (odd) and
					   ends (even) */
	unsigned int pwriters;		/* (a) vm_object_pwrite()s under way */
	uint64_t dirty_end;		/* (a) one past the highest page ever
					   dirtied (lowered by a cut): a failed
					   extending pwrite leaves its extension
					   if a page in it was (unextend()) */
	struct vm_range_log punch_log[32];	/* the last punches, by (id / 2) % 32;
					   written under the invalidate side */
	unsigned int cuts;		/* (a) bumped (odd, then even) around the
					   log entry of each shrinking truncate
					   that took effect (its store was cut) */
	struct vm_range_log cut_log[64];	/* [new size, end of file) of the
					   last cuts, by (id / 2) % 64; written
					   under the invalidate side.  A pwrite
					   that saw more cuts in one pass starts
					   over (fill_sync() queues it behind the
					   truncates waiting: with 24 threads
					   truncating above it, 8 entries kept it
					   starting over for good) */

	struct vm_mutex rmap_lock;
	struct cds_list_head regions;	/* (r) regions mapping this object */

	uint64_t nr_dirty;		/* (a) */
	bool unsynced;			/* (a) written to the store since its last sync */
	int wb_err;			/* (a) first unreported write-back error */
	uint32_t wb_busy[2];		/* (a) write-back runs in flight, per epoch
					   (futexes) */
	uint32_t wb_epoch;		/* (a) which of them new runs count in */
	uint32_t wb_waiters;		/* (a) someone waits for a count to drop */
	pthread_mutex_t wb_wait_mu;	/* waiters flip the epoch one at a time */
	unsigned int refs;		/* (a) dropped to 0 under (L) */
	unsigned int users;		/* (a) of refs: file handles and regions */
	struct cds_list_head node;	/* (L) */
	struct rcu_head rcu;		/* freed after a grace period */
};

/* Return: 0 and *out, or -errno.  Takes ownership of @store on success. */
int vm_object_create(struct vm_store *store, dev_t dev, ino_t ino,
		     const struct vm_policy *pol, struct vm_stats_set *stats,
		     struct vm_cache *cache, struct vm_object **out);
/* Write back, free every page and frame.  Context: no region maps it.
 * Return: 0 or the write-back error. */
int vm_object_destroy(struct vm_object *obj);
/*
 * vm_object_flush - write back every dirty page, fdatasync the store if
 * ufvm wrote to it since its last sync, and report (and clear) the first
 * write-back error.  What the last user of a file does before it goes.
 * Context: no page lock held; may sleep (I/O).  Return: 0 or -errno.
 */
int vm_object_flush(struct vm_object *obj);

static inline uint64_t vm_object_size(struct vm_object *obj)
{
	return __atomic_load_n(&obj->size, __ATOMIC_ACQUIRE);
}

static inline uint64_t vm_object_npages(struct vm_object *obj)
{
	return DIV_ROUND_UP(vm_object_size(obj), PAGE_SIZE);
}

/*
 * Frame striping.  Frames are striped over nstripes memfds by chunks of
 * 1 << chunk_shift pages: page i's frame is page i of the memfd of its
 * chunk (the same offset in every memfd; each is the file's size), chosen
 * by a hash of the chunk so that two distant chunks seldom share one.
 * Fills and punches of different memfds do not wait for each other's inode
 * lock.  A range of frames is reached chunk by chunk: vm_object_chunk_run().
 */
static inline unsigned int vm_object_stripe(const struct vm_object *obj, uint64_t idx)
{
	uint64_t c = idx >> obj->chunk_shift;

	if (obj->nstripes == 1)
		return 0;
	return (unsigned int)(((c * 0x9e3779b97f4a7c15ull) >> 32) % obj->nstripes);
}

/* The memfd that holds page @idx's frame, at offset @idx << PAGE_SHIFT. */
static inline int vm_object_memfd(const struct vm_object *obj, uint64_t idx)
{
	return obj->memfds[vm_object_stripe(obj, idx)];
}

/* How many of the @n pages from @idx on lie in @idx's chunk (all, unstriped). */
static inline uint64_t vm_object_chunk_run(const struct vm_object *obj, uint64_t idx, uint64_t n)
{
	uint64_t left;

	if (obj->nstripes == 1)
		return n;
	left = (1ull << obj->chunk_shift) - (idx & ((1ull << obj->chunk_shift) - 1));
	return MIN(n, left);
}

static inline char *vm_object_frame(struct vm_object *obj, uint64_t idx)
{
	return obj->view + (idx << PAGE_SHIFT);
}

/* Context: RCU read section. */
static inline struct vm_page *vm_object_lookup_rcu(struct vm_object *obj, uint64_t idx)
{
	return vm_pindex_lookup_rcu(&obj->index, idx);
}

/* Return: the page at @idx with a reference, or NULL.  Never sleeps. */
struct vm_page *vm_object_find_get(struct vm_object *obj, uint64_t idx);

/*
 * Fill side of the invalidate lock: taken (shared) by anything that creates
 * a page or brings one up to date; not by cached hits.
 * Context: may sleep.  Lock order: after mmap_lock, before page locks.
 */
void vm_object_fill_begin(struct vm_object *obj);
void vm_object_fill_end(struct vm_object *obj);
/* Invalidation side: exclusive against fills (punch, truncate). */
void vm_object_inval_begin(struct vm_object *obj);
void vm_object_inval_end(struct vm_object *obj);

/*
 * vm_object_grab_page - find the page at @idx or insert a new locked one.
 * Context: fill side held; may sleep (allocation).  Return: 0 with *pagep
 * referenced (and locked if *created), or -ENOMEM.
 */
int vm_object_grab_page(struct vm_object *obj, uint64_t idx,
			struct vm_page **pagep, bool *created);

/*
 * vm_object_fill_map_page - vm_object_read_page() for a fault that holds
 * mmap_lock and will not drop it, when the store has the bytes in memory:
 * read them into a fill buffer, then create the frame from it and map it
 * into @r in one backend call (vm_region_fill_locked(), UFFDIO_COPY: no
 * write through the memfd, whose inode lock evictions' punches take too),
 * or, where the backend has no such call or it fails, write the frame
 * with pwrite() for the caller to map.  Not with a test hook installed
 * (one may wait for what mmap_lock held would block; unless
 * UFVM_DEBUG_FILL_HOOKED), injected latency or errors, a store that must do
 * I/O, or a shrinking truncate pending: -EAGAIN then, and the caller reads
 * with vm_object_read_page().
 * @write: the fault was a write (vm_region_fill_locked()).
 * Context: page locked, fill side held, mmap_lock held (@r stays); takes
 * @r's ptl; does not wait for the store's device.
 * Return: 1 (up to date and mapped in @r), 0 (up to date, not mapped), or
 * -EAGAIN (nothing done: the page is as it was).
 */
int vm_object_fill_map_page(struct vm_object *obj, struct vm_page *page, struct vm_region *r,
			    bool write);

/*
 * vm_object_read_page - read a locked, not up-to-date page from the store.
 * Context: page locked, fill side held, may sleep (I/O).  On failure the
 * page is marked PG_ERROR and stays not up to date.
 * Return: 0, -errno, or VM_FILL_WAIT: nothing read, as a shrinking
 * truncate whose outcome is pending cuts the page (add/block mode); the
 * caller discards the page, unlocks it, calls vm_object_fill_wait() and
 * looks the page up again.
 */
int vm_object_read_page(struct vm_object *obj, struct vm_page *page);
#define VM_FILL_WAIT	1

/*
 * vm_object_fill_wait - wait until no invalidation of @obj is in progress
 * (after VM_FILL_WAIT: the truncate is decided).  Context: no page lock
 * held (mmap_lock may be); may sleep.
 */
void vm_object_fill_wait(struct vm_object *obj);

/*
 * vm_object_remove_page - unmap @page from every region and drop it from
 * the cache; its frame is not freed (the caller punches the memfd).
 * Context: page locked (and stays locked: the caller unlocks and puts it).
 */
void vm_object_remove_page(struct vm_object *obj, struct vm_page *page);
/*
 * vm_object_discard_page - remove a page whose fill failed, and free its
 * frame (the fill may have written part of it).
 * Context: page locked (and stays locked), not up to date.
 */
void vm_object_discard_page(struct vm_object *obj, struct vm_page *page);

/*
 * vm_object_writeback - write back dirty pages in [first, last] (page
 * offsets): write-protect every mapping, clear dirty, write.  Pages locked
 * one at a time; pages a pending shrinking truncate kept dirty are written
 * once it is decided; then waits for the write-back runs of other threads
 * in flight (they cleaned their pages before writing).  Context: may
 * sleep; no page lock and no side of the invalidate lock held on entry.
 * Return: 0 or the first error (the page stays dirty), or an error recorded
 * and not yet reported (it stays recorded).
 */
int vm_object_writeback(struct vm_object *obj, uint64_t first, uint64_t last);
/* Write back the pages dirtied no later than @older_than (vm_now_s()). */
int vm_object_writeback_aged(struct vm_object *obj, uint32_t older_than);
/* Write back and fdatasync; reports (and clears) a recorded error. */
int vm_object_sync(struct vm_object *obj, uint64_t first, uint64_t last);

/* Return: and clear the first write-back error not yet reported. */
int vm_object_check_errors(struct vm_object *obj);

/* Context: may sleep.  Return: bytes done, or -errno. */
ssize_t vm_object_pread(struct vm_object *obj, void *buf, size_t len, uint64_t off);
ssize_t vm_object_pwrite(struct vm_object *obj, const void *buf, size_t len, uint64_t off);
/* Context: may sleep; takes the invalidate lock exclusive.  Return: 0/-errno. */
int vm_object_punch(struct vm_object *obj, uint64_t off, uint64_t len);
int vm_object_truncate(struct vm_object *obj, uint64_t size);

/* Mark @p dirty (and when).  Context: page locked, or the mapcount-first
 * protocol under a ptl (vm/region.c). */
void vm_object_set_dirty(struct vm_object *obj, struct vm_page *p);

/*
 * vm_object_grab_run - insert up to @n new locked pages from @first on,
 * stopping at the first page already cached (or the end of the file).
 * Context: fill side held.  Return: 0 with *got >= 1 pages, or -errno.
 */
int vm_object_grab_run(struct vm_object *obj, uint64_t first, unsigned int n,
		       struct vm_page **pages, unsigned int *got);
/* Read a run from vm_object_grab_run with one store read.  Context and
 * return: as vm_object_read_page.  On failure the pages stay not up to
 * date. */
int vm_object_read_run(struct vm_object *obj, struct vm_page **pages, unsigned int n);
/*
 * Asynchronous readahead of [first, first+n): from its first page not
 * cached up to the next cached one, the first page read marked
 * PG_READAHEAD.  Context: may sleep.
 */
void vm_object_readahead(struct vm_object *obj, uint64_t first, unsigned int n);
/*
 * vm_object_cached_run - the number of pages in a row cached (or being
 * filled) from @idx on, or with @back the pages right before @idx counted
 * down from @idx - 1; at most @max.  A lock-free snapshot.
 * Context: any; takes its own RCU read section.
 */
unsigned int vm_object_cached_run(struct vm_object *obj, uint64_t idx, unsigned int max,
				  bool back);
/* Take one more reference; the caller already holds one (or a region). */
void vm_object_get_ref(struct vm_object *obj);

/*
 * Reclaim (vm/cache.c).  Context: the caller holds a page reference and
 * no page lock; may sleep (write-back).  evict: write back if dirty,
 * unmap, free its frame and drop it from the cache.
 * Return: evict 0 (kept), 1 (evicted), 2 (evicted after write-back), or
 * the -errno of a failed write-back (kept, still dirty).
 */
int vm_object_evict_page(struct vm_page *p, bool second_chance);

/*
 * vm_object_retry_writeback - write back @p, found on the reclaim list,
 * if its last write-back failed (PG_WBFAIL) and it is still dirty: does
 * the store take writes again?  The page stays cached (write-protected as
 * by any write-back).  A page locked meanwhile is waited for once.
 * Context: a reference on @p, no page lock; may sleep (I/O, the page lock).
 * Return: 0 (written), the store write's -errno, or 1 (nothing written:
 * its lock was taken, it was cleaned or went meanwhile, or a truncate or
 * punch under way keeps it dirty).
 */
int vm_object_retry_writeback(struct vm_page *p);
/*
 * The working space of one reclaim batch of up to @cap pages, the caller's:
 * the victims the policy chose and their results, the pages to sample, and
 * the locked batch sorted by (object, offset).  A batch zaps its pages of
 * one object with one vectored call per region, which the kernel flushes
 * once per range: the larger the batch of a sequential victim stream, the
 * fewer TLB shootdowns.  Direct reclaim, which may run on an application
 * thread's stack or in a signal handler, uses VM_EVICT_BATCH; the
 * background thread VM_EVICT_BATCH_BG.
 */
#define VM_EVICT_BATCH		32
#define VM_EVICT_BATCH_BG	256

struct vm_evict_space {
	unsigned int cap;
	struct vm_page **victims, **zap;
	int *res;		/* per victim: 0 kept, 1 evicted, 2 after write-back,
				   -errno kept: its write-back failed */
	struct vm_object **objs;	/* the locked batch ... */
	struct vm_page **pages;
	int **where;		/* ... each page's slot in res */
	int *rr;
};

/* Define @name, a struct vm_evict_space of @N pages, and its arrays. */
#define VM_EVICT_SPACE(name, N)							\
	struct {								\
		struct vm_page *victims[N], *zap[N], *pages[N];			\
		struct vm_object *objs[N];					\
		int *where[N];							\
		int res[N], rr[N];						\
	} name##_arrays;							\
	struct vm_evict_space name = {						\
		.cap = (N), .victims = name##_arrays.victims,			\
		.zap = name##_arrays.zap, .res = name##_arrays.res,		\
		.objs = name##_arrays.objs, .pages = name##_arrays.pages,	\
		.where = name##_arrays.where, .rr = name##_arrays.rr,		\
	}

/*
 * Sample sp->zap[0..n) (any objects, n <= sp->cap): unmap each everywhere,
 * so that its next use refaults and marks it referenced; pages of one
 * object share one zap per region.  Pages locked by someone else are
 * skipped.  Context: as above.  Return: the number sampled.
 */
unsigned int vm_object_sample_pages(struct vm_evict_space *sp, unsigned int n);
/* Evict sp->victims[0..n) (any objects): the pages of one object share one
 * zap per region, and those at consecutive offsets one frame punch.
 * sp->res[i] gets each result. */
void vm_object_evict_pages(struct vm_evict_space *sp, unsigned int n, bool second_chance);

/* rmap: the regions mapping the object.  Context: may sleep (rmap lock). */
void vm_object_rmap_add(struct vm_object *obj, struct vm_region *r);
void vm_object_rmap_del(struct vm_object *obj, struct vm_region *r);

#endif /* UFVM_VM_OBJECT_H */
