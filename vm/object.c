// SPDX-License-Identifier: MIT
/*
 * vm/object.c - the page cache of one file.
 *
 * Lock order in this file (docs/locking.md has the whole picture):
 *   invalidate lock (fill shared / inval exclusive; or add/block)
 *     page lock                 (one blocking page lock at a time; a run of
 *                                neighbours is taken with trylock only)
 *       index lock              (vm_object_grab_page, remove)
 *       rmap lock               (remove, write-back)
 *         ptl                   (vm/region.c)
 *
 * Invariants:
 *  - a page in the index with PG_UPTODATE holds in its frame the file's
 *    bytes plus every write made to it; bytes past the end of the file
 *    within the last page are zero;
 *  - a page is removed from the index only locked and only after every
 *    region's mapping of it is zapped (mapcount 0), so no region maps a
 *    page the cache no longer has;
 *  - PG_DIRTY is cleared only under the page lock and only after every
 *    writable mapping was write-protected, so a racing write re-dirties it
 *    through mkwrite instead of being lost.
 *
 * User buffers (pread/pwrite) are never touched with a page lock held: a
 * buffer may itself be a ufvm mapping whose fault needs that very page.
 * Data goes through a bounce buffer on the stack instead.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sched.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vm/aspace.h"
#include "vm/cache.h"
#include "vm/object.h"
#include "vm/region.h"
#include "vm/trace.h"

#define VIEW_MIN_PAGES	((16ull << 30) >> PAGE_SHIFT)	/* 16 GiB of VA */
#define WB_RUN_MAX	64				/* pages per store write */
#define WB_KEPT		1				/* write_run(): pages stay dirty */

/* ---- the add/block lock (seed 000) ---- */

/* The object whose block side this thread holds: its own fills pass. */
static __thread struct vm_object *block_owner;

/*
 * Take the add (@dir 1) or block (-1) side.  The add side is checked by the
 * lock-order checker as the invalidate class, shared: a fill that takes it
 * holding a page lock could deadlock against an invalidation that holds
 * block and waits for that page.  The block side is inval_mutex's, held
 * around it.
 *
 * Turns: when the lock falls free while the other side waits, that side
 * enters next (->turn), and a newcomer of the side that held it waits
 * for it.  Without this a thread that punches in a loop took the block
 * side back before the woken fills could run, and the fills waited as
 * long as the punches went on (api/test_resize's add/block test, with
 * slow punches).  And while one side holds the lock with the other
 * waiting, a newcomer of the holding side waits too (unless it is that
 * side's turn), so that the lock falls free: fills that overlapped one another kept a punch or a
 * truncate out for as long as they went on.  No thread holding one side
 * waits for a newcomer of that side (the add side is taken in lock order
 * before any page lock, never twice by one thread: the lock-order
 * checker aborts on that), so the newcomer's wait ends.  Context: may
 * sleep.
 */
static void addblock_get(struct vm_addblock *l, long dir)
{
	unsigned int side = dir > 0;

	if (dir > 0)
		vm__lockdep_acquire(l, VM_LC_INVALIDATE, false, 1);
	pthread_mutex_lock(&l->mu);
	l->waiting[side]++;
	while ((dir > 0 ? l->v < 0 : l->v > 0) || l->turn == -dir ||
	       /* the other side waits: let the lock fall free (unfair: tests) */
	       (l->v && l->waiting[!side] && l->turn != dir && !l->unfair))
		pthread_cond_wait(&l->cv, &l->mu);
	l->waiting[side]--;
	if (l->turn == dir && !l->waiting[side])
		l->turn = 0;	/* every one of this side that waited is in */
	l->v += dir;
	pthread_mutex_unlock(&l->mu);
}

static void addblock_put(struct vm_addblock *l, long dir)
{
	pthread_mutex_lock(&l->mu);
	l->v -= dir;
	if (l->v == 0) {
		if (l->waiting[dir < 0] && !l->unfair)	/* else: the bug, for tests */
			l->turn = (int)-dir;	/* the other side's turn */
		pthread_cond_broadcast(&l->cv);
	}
	pthread_mutex_unlock(&l->mu);
	if (dir > 0)
		vm__lockdep_release(l);
}

void vm_object_fill_begin(struct vm_object *obj)
{
	if (obj->pol->invalidate == UFVM_INVALIDATE_RWSEM)
		vm_rwsem_read(&obj->invalidate_lock);
}

void vm_object_fill_end(struct vm_object *obj)
{
	if (obj->pol->invalidate == UFVM_INVALIDATE_RWSEM)
		vm_rwsem_read_unlock(&obj->invalidate_lock);
}

/*
 * Take the fill side of the invalidate lock: no invalidation (punch,
 * truncate) starts until fill_side_put(); one under way is waited for.
 * Not taken by the thread inside an invalidation of @obj (add/block), nor
 * with invalidate = none.  Context: no page lock held; may sleep.
 * Return: whether it was taken, for fill_side_put().
 */
static bool fill_side_get(struct vm_object *obj)
{
	switch (obj->pol->invalidate) {
	case UFVM_INVALIDATE_RWSEM:
		vm_rwsem_read(&obj->invalidate_lock);
		return true;
	case UFVM_INVALIDATE_ADDBLOCK:
		if (block_owner == obj)
			return false;
		addblock_get(&obj->addblock, 1);
		return true;
	}
	return false;
}

static void fill_side_put(struct vm_object *obj, bool taken)
{
	if (!taken)
		return;
	if (obj->pol->invalidate == UFVM_INVALIDATE_RWSEM)
		vm_rwsem_read_unlock(&obj->invalidate_lock);
	else
		addblock_put(&obj->addblock, 1);
}

/*
 * Wait until no invalidation of @obj is in progress: take the fill side
 * and let it go.  Whatever an invalidation did before it ended is visible
 * afterwards.  Context: no page lock held; may sleep.
 */
static void fill_sync(struct vm_object *obj)
{
	fill_side_put(obj, fill_side_get(obj));
}

void vm_object_inval_begin(struct vm_object *obj)
{
	switch (obj->pol->invalidate) {
	case UFVM_INVALIDATE_RWSEM:
		vm_rwsem_write(&obj->invalidate_lock);
		break;
	case UFVM_INVALIDATE_ADDBLOCK:
		/*
		 * Invalidations go one at a time (two truncates must not
		 * interleave), queued outside "block": one waiting inside it
		 * kept the count from reaching zero as each handed over to the
		 * next, and fills waited for as long as punches kept coming.
		 */
		vm_mutex_lock(&obj->inval_mutex);
		addblock_get(&obj->addblock, -1);
		block_owner = obj;
		break;
	case UFVM_INVALIDATE_NONE:
		/*
		 * Fills take nothing, which is the experiment; invalidations
		 * still go one at a time, for their own state (the size, a
		 * striped view's chunks) is not.
		 */
		vm_mutex_lock(&obj->inval_mutex);
		break;
	}
}

void vm_object_inval_end(struct vm_object *obj)
{
	switch (obj->pol->invalidate) {
	case UFVM_INVALIDATE_RWSEM:
		vm_rwsem_write_unlock(&obj->invalidate_lock);
		break;
	case UFVM_INVALIDATE_ADDBLOCK:
		block_owner = NULL;
		addblock_put(&obj->addblock, -1);
		vm_mutex_unlock(&obj->inval_mutex);
		break;
	case UFVM_INVALIDATE_NONE:
		vm_mutex_unlock(&obj->inval_mutex);
		break;
	}
}

/* ---- creation and teardown ---- */

#define CHUNK_MIN_SHIFT	9	/* striped: chunks of 2 MiB at least */
#define VIEW_CHUNKS	512	/* striped, chunk_pages 0: the chunk grows so
				   that the view, grown to its limit, has no
				   more mappings than this */

static void frames_close(struct vm_object *obj)
{
	unsigned int i;

	for (i = 0; i < obj->nstripes; i++)
		if (obj->memfds[i] >= 0)
			close(obj->memfds[i]);
}

/* Set every memfd's size to @npages pages.  Return: 0 or the first -errno. */
static int frames_truncate(struct vm_object *obj, uint64_t npages)
{
	unsigned int i;
	int err = 0;

	for (i = 0; i < obj->nstripes; i++)
		if (ftruncate(obj->memfds[i], (off_t)(npages << PAGE_SHIFT)) && !err)
			err = -errno;
	return err;
}

/*
 * Striped: map the view's chunks up to page @npages from their memfds
 * (the rest of the view stays reserved).  Context: creation, or (I) on a
 * growing truncate before the size is published.  Return: 0 or -errno.
 */
static int view_map(struct vm_object *obj, uint64_t npages)
{
	uint64_t c = obj->view_mapped;

	for (; c < npages && c < obj->view_pages; c += 1ull << obj->chunk_shift) {
		size_t len = (size_t)MIN(1ull << obj->chunk_shift, obj->view_pages - c) << PAGE_SHIFT;

		if (c == obj->view_hole)
			return -ENOMEM;	/* not ours any more: view_unmap() */
		if (mmap(obj->view + (c << PAGE_SHIFT), len, PROT_READ | PROT_WRITE,
			 MAP_SHARED | MAP_FIXED | MAP_NORESERVE, vm_object_memfd(obj, c),
			 (off_t)(c << PAGE_SHIFT)) == MAP_FAILED)
			return -errno;
		obj->view_mapped = c + (1ull << obj->chunk_shift);
	}
	return 0;
}

/*
 * Striped: put the view's chunks past page @npages (the chunk holding it
 * stays) back to reserved memory, so that a shrunk file, or a growth that
 * failed halfway, does not keep a mapping per chunk it no longer has (the
 * process's vm.max_map_count).  Context: (I), the pages past @npages gone
 * or never made.  A chunk that cannot be replaced stays mapped and
 * counted in view_mapped: only a mapping is lost, until the file closes.
 */
static void view_unmap(struct vm_object *obj, uint64_t npages)
{
	uint64_t chunk = 1ull << obj->chunk_shift, keep = ROUND_UP(npages, chunk);

	if (obj->nstripes == 1)
		return;	/* one mapping of one memfd, the whole view */
	while (obj->view_mapped > keep) {
		uint64_t c = obj->view_mapped - chunk;
		size_t len = (size_t)MIN(chunk, obj->view_pages - c) << PAGE_SHIFT;
		char *at = obj->view + (c << PAGE_SHIFT), *back;
		const int how = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE;

		if (mmap(at, len, PROT_NONE, how | MAP_FIXED, -1, 0) != MAP_FAILED) {
			obj->view_mapped = c;
			continue;
		}
		if (errno != ENOMEM || obj->view_hole < obj->view_pages || munmap(at, len))
			return;	/* (one hole at most is remembered) */
		/*
		 * At vm.max_map_count (a growth failed there), mmap() fails
		 * whatever it would free; munmap() of a whole mapping does
		 * not.  The reservation comes back at once, unless another
		 * thread's mmap() took the place meanwhile: then the view
		 * never grows into it, and its munmap() at close goes
		 * around it.
		 */
		obj->view_mapped = c;
		back = mmap(at, len, PROT_NONE, how | MAP_FIXED_NOREPLACE, -1, 0);
		if (back != at) {
			if (back != MAP_FAILED)
				munmap(back, len);	/* a kernel that took it for a hint */
			obj->view_hole = c;
			return;
		}
	}
}

/* Unmap the whole view, but for a chunk of it another mapping may hold. */
static void view_destroy(struct vm_object *obj)
{
	uint64_t end = obj->view_pages, hole = obj->view_hole;

	if (hole >= end) {
		munmap(obj->view, end << PAGE_SHIFT);
		return;
	}
	munmap(obj->view, hole << PAGE_SHIFT);
	hole += 1ull << obj->chunk_shift;
	if (hole < end)
		munmap(obj->view + (hole << PAGE_SHIFT), (end - hole) << PAGE_SHIFT);
}

/*
 * Make the frames' memfds of @npages pages, and the view: one memfd, or
 * for a file larger than a chunk pol->frame_stripes striped by chunks
 * (vm/object.h, "Frame striping").  Return: 0 or -errno, nothing left made.
 */
static int frames_create(struct vm_object *obj, uint64_t npages)
{
	unsigned int i, shift = CHUNK_MIN_SHIFT;
	int err = 0;

	if (obj->pol->chunk_pages)
		shift = (unsigned int)__builtin_ctz(obj->pol->chunk_pages);
	else
		while ((obj->view_pages >> shift) > VIEW_CHUNKS)
			shift++;
	obj->chunk_shift = shift;
	/* A file of one chunk or less stays in one memfd, grown or not. */
	obj->nstripes = npages > (1ull << shift) ? obj->pol->frame_stripes : 1;
	for (i = 0; i < obj->nstripes; i++)
		obj->memfds[i] = -1;
	for (i = 0; i < obj->nstripes && !err; i++) {
		obj->memfds[i] = memfd_create("ufvm-frames", MFD_CLOEXEC);
		if (obj->memfds[i] < 0)
			err = -errno;
	}
	if (!err)
		err = frames_truncate(obj, npages);
	if (err)
		goto fail;
	if (obj->nstripes == 1)		/* the whole reservation, at once */
		obj->view = mmap(NULL, obj->view_pages << PAGE_SHIFT, PROT_READ | PROT_WRITE,
				 MAP_SHARED | MAP_NORESERVE, obj->memfds[0], 0);
	else				/* reserved; chunks mapped by view_map() */
		obj->view = mmap(NULL, obj->view_pages << PAGE_SHIFT, PROT_NONE,
				 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (obj->view == MAP_FAILED) {
		err = -errno;
		goto fail;
	}
	obj->view_mapped = obj->nstripes == 1 ? obj->view_pages : 0;
	obj->view_hole = obj->view_pages;
	err = view_map(obj, npages);
	if (!err)
		return 0;
	munmap(obj->view, obj->view_pages << PAGE_SHIFT);
fail:
	frames_close(obj);
	return err;
}

int vm_object_create(struct vm_store *store, dev_t dev, ino_t ino,
		     const struct vm_policy *pol, struct vm_stats_set *stats,
		     struct vm_cache *cache, struct vm_object **out)
{
	struct vm_object *obj;
	uint64_t size;
	int err;

	err = vm_store_size(store, &size);
	if (err)
		return err;
	obj = calloc(1, sizeof(*obj));
	if (!obj)
		return -ENOMEM;
	obj->store = store;
	obj->dev = dev;
	obj->ino = ino;
	obj->size = size;
	obj->pol = pol;
	obj->stats = stats;
	obj->cache = cache;
	obj->view_pages = MAX(VIEW_MIN_PAGES, 2 * DIV_ROUND_UP(size, PAGE_SIZE));
	err = frames_create(obj, DIV_ROUND_UP(size, PAGE_SIZE));
	if (err)
		goto fail;
	vm_pindex_init(&obj->index);
	vm_mutex_init(&obj->index_lock, VM_LC_INDEX);
	vm_mutex_init(&obj->rmap_lock, VM_LC_RMAP);
	vm_rwsem_init(&obj->invalidate_lock, VM_LC_INVALIDATE);
	vm_mutex_init(&obj->inval_mutex, VM_LC_INVALIDATE);
	pthread_mutex_init(&obj->wb_wait_mu, NULL);
	pthread_mutex_init(&obj->addblock.mu, NULL);
	obj->addblock.unfair = pol->debug & UFVM_DEBUG_ADDBLOCK_UNFAIR;
	pthread_cond_init(&obj->addblock.cv, NULL);
	CDS_INIT_LIST_HEAD(&obj->regions);
	CDS_INIT_LIST_HEAD(&obj->node);
	*out = obj;
	return 0;
fail:
	free(obj);
	return err;
}

static void delete_page(struct vm_object *obj, struct vm_page *p);

static void drop_all_pages(struct vm_object *obj)
{
	uint64_t idx = 0;
	struct vm_page *p;

	bool late = obj->pol->debug & UFVM_DEBUG_DROP_GET_LATE;	/* the bug, for tests */

	for (;;) {
		bool got = false;

		vm_rcu_read_lock();
		p = vm_pindex_next_rcu(&obj->index, &idx, UINT64_MAX);
		/*
		 * Pin it inside the section: out of it, reclaim (a fill of
		 * another file) may evict and free the page at any moment.
		 */
		if (p && !late)
			got = vm_page_get_unless_zero(p);
		vm_rcu_read_unlock();
		if (!p)
			break;
		vm_hook(obj->pol, UFVM_HOOK_DROP_FOUND, idx << PAGE_SHIFT, 0);
		if (late)
			got = vm_page_get_unless_zero(p);
		if (!got) {	/* being freed: already out of the index */
			idx++;
			continue;
		}
		/* No region maps it; reclaim may hold it locked: wait for it. */
		vm_page_lock(p);
		if (p->object == obj) {
			VM_BUG_ON(vm_page_mapcount(p) != 0);
			delete_page(obj, p);
		}
		vm_page_unlock(p);
		vm_page_put(p);
		idx++;
	}
}

/* Reclaim may still look at the object (and readers at empty tree nodes)
 * inside an RCU read section: free both after a grace period. */
static void object_free_cb(struct rcu_head *h)
{
	struct vm_object *obj = container_of(h, struct vm_object, rcu);

	vm_pindex_destroy(&obj->index);
	free(obj);
}

static void wait_writeback(struct vm_object *obj);

int vm_object_flush(struct vm_object *obj)
{
	int err = vm_object_writeback(obj, 0, UINT64_MAX), e;

	/* fdatasync only if ufvm wrote since the last sync. */
	if (__atomic_exchange_n(&obj->unsynced, false, __ATOMIC_RELAXED)) {
		e = vm_store_sync(obj->store);
		if (!err)
			err = e;
	}
	e = vm_object_check_errors(obj);
	return err ? err : e;
}

int vm_object_destroy(struct vm_object *obj)
{
	int err;

	VM_BUG_ON(!cds_list_empty(&obj->regions));
	err = vm_object_flush(obj);
	drop_all_pages(obj);
	view_destroy(obj);
	frames_close(obj);
	vm_store_destroy(obj->store);
	vm_rwsem_destroy(&obj->invalidate_lock);
	vm_mutex_destroy(&obj->inval_mutex);
	pthread_mutex_destroy(&obj->wb_wait_mu);
	vm_mutex_destroy(&obj->index_lock);
	vm_mutex_destroy(&obj->rmap_lock);
	pthread_mutex_destroy(&obj->addblock.mu);
	pthread_cond_destroy(&obj->addblock.cv);
	vm_call_rcu(&obj->rcu, object_free_cb);
	return err;
}

/* ---- lookup and fill ---- */

struct vm_page *vm_object_find_get(struct vm_object *obj, uint64_t idx)
{
	struct vm_page *p;

	vm_rcu_read_lock();
	p = vm_object_lookup_rcu(obj, idx);
	if (p && !vm_page_get_unless_zero(p))
		p = NULL;
	vm_rcu_read_unlock();
	return p;
}

/* Does a fill of @obj by this thread take the add side (seed 000)? */
static bool fill_takes_add(struct vm_object *obj)
{
	return obj->pol->invalidate == UFVM_INVALIDATE_ADDBLOCK && block_owner != obj;
}

/* The add side, to insert pages from @idx.  Context: may sleep. */
static void add_side_get(struct vm_object *obj, uint64_t idx)
{
	addblock_get(&obj->addblock, 1);
	vm_hook(obj->pol, UFVM_HOOK_ADD_HELD, idx << PAGE_SHIFT, 0);
}

/*
 * Find the page at @idx or insert a new locked one; with @add, the add
 * side is taken around the insertion.  Context: may sleep (allocation).
 */
static int grab_page(struct vm_object *obj, uint64_t idx, bool add,
		     struct vm_page **pagep, bool *created)
{
	struct vm_page *p, *np;
	int err;

	for (;;) {
		p = vm_object_find_get(obj, idx);
		if (p) {
			*pagep = p;
			*created = false;
			return 0;
		}
		/* Add before the page lock, in the documented order. */
		if (add)
			add_side_get(obj, idx);
		np = vm_page_alloc(idx);	/* locked, one reference */
		if (np) {
			np->object = obj;
			vm_mutex_lock(&obj->index_lock);
			err = vm_pindex_insert(&obj->index, idx, np);
			vm_mutex_unlock(&obj->index_lock);
		}
		if (add)
			addblock_put(&obj->addblock, 1);
		if (!np)
			return -ENOMEM;
		if (!err) {
			vm_page_get(np);	/* the index's reference */
			vm_cache_add(obj->cache, np);
			*pagep = np;
			*created = true;
			return 0;
		}
		np->object = NULL;
		vm_page_unlock(np);
		vm_page_put(np);
		if (err != -EEXIST)
			return err;
	}
}

int vm_object_grab_page(struct vm_object *obj, uint64_t idx,
			struct vm_page **pagep, bool *created)
{
	return grab_page(obj, idx, fill_takes_add(obj), pagep, created);
}

static struct vm_stats_shard *shard(struct vm_object *obj);

/*
 * The file's size, and in *@pending whether a shrinking truncate's outcome
 * is pending (shrinks odd, or changed while the size was read): the size
 * may then be the new one of a truncate that will fail and restore the old
 * one, so no byte past it may be taken for gone.  Write-back keeps dirty
 * what it does not write; a fill must not fill a page short against it.
 */
static uint64_t size_pending(struct vm_object *obj, bool *pending)
{
	unsigned int g = __atomic_load_n(&obj->shrinks, __ATOMIC_SEQ_CST);
	uint64_t size = __atomic_load_n(&obj->size, __ATOMIC_SEQ_CST);

	*pending = (g & 1) || __atomic_load_n(&obj->shrinks, __ATOMIC_SEQ_CST) != g;
	return size;
}

/*
 * The size a fill of [@off, @off + @span) reads the store up to, or
 * VM_FILL_WAIT.  In the add/block mode a fill holds "add" only to insert
 * its pages, and reads later: a shrinking truncate may be pending then.  A
 * page cut by its new size, filled short (zeros past it), mapped and
 * written meanwhile, would be written back over the file's bytes if the
 * store truncate failed and the old size came back.  Such a fill waits for
 * the outcome instead (its caller lets its pages go and calls
 * vm_object_fill_wait()).  In the rwsem mode the fill side held across the
 * read keeps truncates out; in the none mode nothing does (by design); the
 * invalidating thread's own fill cannot wait for itself.
 */
static int fill_size(struct vm_object *obj, uint64_t off, size_t span, uint64_t *sizep)
{
	bool pending;

	*sizep = size_pending(obj, &pending);
	if (pending && off + span > *sizep && fill_takes_add(obj) &&
	    !(obj->pol->debug & UFVM_DEBUG_FILL_PAST_SHRINK)) {
		vm_stat_inc(shard(obj), UFVM_CTR_FILL_WAITS);
		return VM_FILL_WAIT;
	}
	return 0;
}

void vm_object_fill_wait(struct vm_object *obj)
{
	fill_sync(obj);
}

/*
 * fill_frames - read @len bytes of the store from page @idx on into the
 * frames of pages [@idx, @idx + @n), zeroing the rest of those pages.
 *
 * The frames are written with the memfd's own write path, not through the
 * view: a frame the view never touched has no PTE there, so punching it at
 * eviction needs no TLB shootdown (through the view, every evicted page
 * cost one, ~15 us while another thread of the process runs on the other
 * CPU, and a dirty PTE cannot share a shootdown with others); and the
 * kernel allocates the frames without a page fault per page.  A buffered
 * store splices its bytes into the frames through the fill buffer's pipe
 * (vm_store_read_to_fd(): one copy, out of the host page cache); any
 * other reads into the bounce buffer and pwrite()s it.  A fill that finds
 * every buffer taken goes through the view.
 * Context: the pages locked; may sleep (I/O); signal safe.
 * Return: 0 or -errno (store or memfd), the frames then undefined.
 */
_Static_assert(VM_FILL_BUF_PAGES >= VM_RA_MAX, "a bounce buffer holds the largest fill");

/* Write @span bytes of @buf into the frames from page @idx on, chunk by chunk. */
static int write_frames(struct vm_object *obj, uint64_t idx, const char *buf, size_t span)
{
	while (span) {
		size_t k = (size_t)vm_object_chunk_run(obj, idx, span >> PAGE_SHIFT) << PAGE_SHIFT;
		int err = vm_pwrite_all(vm_object_memfd(obj, idx), buf, k, idx << PAGE_SHIFT);

		if (err)
			return err;
		buf += k;
		span -= k;
		idx += k >> PAGE_SHIFT;
	}
	return 0;
}

/*
 * Splice the store's @len bytes from page @idx on into the frames of pages
 * [@idx, @idx + @n), chunk by chunk, zeroing the rest of those pages from
 * @zbuf (a bounce buffer).  Return: 0 or -errno (-EOPNOTSUPP from the first
 * chunk: the store cannot splice, nothing was written).
 */
static int splice_frames(struct vm_object *obj, uint64_t idx, unsigned int n, size_t len,
			 const int *pipefd, char *zbuf)
{
	uint64_t end = idx + n;

	while (idx < end) {
		size_t span = (size_t)vm_object_chunk_run(obj, idx, end - idx) << PAGE_SHIFT;
		size_t want = MIN(len, span), got = 0;
		int fd = vm_object_memfd(obj, idx);

		if (want) {
			ssize_t k = vm_store_read_to_fd(obj->store, fd, idx << PAGE_SHIFT, want, pipefd);

			if (k < 0)
				return (int)k;
			got = (size_t)k;	/* in the frames; past the end of the file, zeros */
		}
		if (got < span) {
			int err;

			memset(zbuf, 0, span - got);
			err = vm_pwrite_all(fd, zbuf, span - got, (idx << PAGE_SHIFT) + got);
			if (err)
				return err;
		}
		len = got < want ? 0 : len - got;	/* short: the end of the file */
		idx += span >> PAGE_SHIFT;
	}
	return 0;
}

static int fill_frames(struct vm_object *obj, uint64_t idx, unsigned int n, size_t len)
{
	size_t span = (size_t)n << PAGE_SHIFT;
	uint64_t off = idx << PAGE_SHIFT;
	char *buf = vm_cache_fill_buf_try(obj->cache);
	char *dst = buf ? buf : vm_object_frame(obj, idx);
	const int *pipefd = buf && len ? vm_cache_fill_pipe(obj->cache, buf) : NULL;
	int err = pipefd ? splice_frames(obj, idx, n, len, pipefd, buf) : -EOPNOTSUPP;

	if (err != -EOPNOTSUPP) {
		if (err)
			vm_cache_fill_pipe_reset(obj->cache, buf);	/* it may hold data */
		vm_cache_fill_buf_put(obj->cache, buf);
		return err;
	}
	err = 0;
	if (len)
		err = vm_store_read(obj->store, dst, off, len);
	if (!err && len < span)
		memset(dst + len, 0, span - len);
	if (buf) {
		if (!err)
			err = write_frames(obj, idx, buf, span);
		vm_cache_fill_buf_put(obj->cache, buf);
	}
	return err;
}

int vm_object_read_page(struct vm_object *obj, struct vm_page *page)
{
	uint64_t off = page->index << PAGE_SHIFT, size;
	struct vm_stats_shard *s = shard(obj);
	size_t len;
	int err;

	VM_ASSERT_HELD(page);
	vm_hook(obj->pol, UFVM_HOOK_FILL_SIZE, off, 0);
	err = fill_size(obj, off, PAGE_SIZE, &size);
	if (err)
		return err;
	len = off < size ? (size_t)MIN(PAGE_SIZE, size - off) : 0;
	if (len) {
		vm_hook(obj->pol, UFVM_HOOK_FILL, off, len);
		vm_stat_inc(s, UFVM_CTR_STORE_READS);
		vm_stat_inc(s, UFVM_CTR_STORE_READ_PAGES);
	}
	err = fill_frames(obj, page->index, 1, len);
	if (err) {
		vm_stat_inc(s, UFVM_CTR_STORE_ERRORS);
		vm_page_set(page, PG_ERROR);
		return err;
	}
	vm_page_clear(page, PG_ERROR);
	vm_page_set(page, PG_UPTODATE);
	return 0;
}

static void clear_dirty(struct vm_object *obj, struct vm_page *p);

int vm_object_fill_map_page(struct vm_object *obj, struct vm_page *page, struct vm_region *r,
			    bool write)
{
	uint64_t off = page->index << PAGE_SHIFT, size;
	struct vm_stats_shard *s = shard(obj);
	bool pending;
	int mapped = 0;
	size_t len;
	char *buf;

	VM_ASSERT_HELD(page);
	if ((__atomic_load_n(&obj->pol->hook, __ATOMIC_RELAXED) &&
	     !(obj->pol->debug & UFVM_DEBUG_FILL_HOOKED)) ||
	    !vm_store_may_read_nowait(obj->store))
		return -EAGAIN;	/* before a shared fill buffer is taken for nothing */
	buf = vm_cache_fill_buf_try(obj->cache);
	if (!buf)
		return -EAGAIN;
	vm_hook(obj->pol, UFVM_HOOK_FILL_SIZE, off, 0);
	/*
	 * A shrinking truncate in progress may fail and restore the size:
	 * a page filled short against its new size must not be mapped and
	 * dirtied (written back, its zeros would replace the file's bytes).
	 * The retry path's fill waits for the outcome (fill_size()).
	 */
	size = size_pending(obj, &pending);
	if (pending && !(obj->pol->debug & UFVM_DEBUG_FILL_PAST_SHRINK)) {
		vm_cache_fill_buf_put(obj->cache, buf);
		return -EAGAIN;
	}
	len = off < size ? (size_t)MIN(PAGE_SIZE, size - off) : 0;
	if (len && vm_store_read_nowait(obj->store, buf, off, len)) {
		vm_cache_fill_buf_put(obj->cache, buf);
		return -EAGAIN;	/* an error is read again, and reported, the slow way */
	}
	if (len) {
		vm_stat_inc(s, UFVM_CTR_STORE_READS);
		vm_stat_inc(s, UFVM_CTR_STORE_READ_PAGES);
	}
	memset(buf + len, 0, PAGE_SIZE - len);
	if (r->as->pmap->ops->fill) {
		vm_mutex_lock(&r->ptl);
		mapped = !vm_region_fill_locked(r, page, buf, write);
		vm_mutex_unlock(&r->ptl);
		if (mapped)
			vm_stat_inc(s, UFVM_CTR_FILL_MAPPED);
		else
			clear_dirty(obj, page);	/* new, locked, unmapped: the
						   map of the write dirties it */
	}
	/*
	 * Not mapped: the backend cannot, the region is dying, or the memfd
	 * has a frame there (EEXIST: one left by a failed fill).  Write it.
	 */
	if (!mapped && vm_pwrite_all(vm_object_memfd(obj, page->index), buf, PAGE_SIZE, off)) {
		vm_cache_fill_buf_put(obj->cache, buf);
		return -EAGAIN;
	}
	vm_cache_fill_buf_put(obj->cache, buf);
	vm_page_clear(page, PG_ERROR);
	vm_page_set(page, PG_UPTODATE);
	return mapped;
}

/* ---- removal ---- */

/* A page stops counting as dirty (its write reached the store, or it is gone). */
static void dirty_uncount(struct vm_object *obj)
{
	__atomic_fetch_sub(&obj->nr_dirty, 1, __ATOMIC_RELAXED);
	vm_cache_dirty_gone(obj->cache);
}

static void clear_dirty(struct vm_object *obj, struct vm_page *p)
{
	if (vm_page_test_clear(p, PG_DIRTY))
		dirty_uncount(obj);
}

void vm_object_set_dirty(struct vm_object *obj, struct vm_page *p)
{
	if (!(__atomic_fetch_or(&p->flags, PG_DIRTY, __ATOMIC_SEQ_CST) & PG_DIRTY)) {
		uint64_t end = __atomic_load_n(&obj->dirty_end, __ATOMIC_RELAXED);

		while (end <= p->index && !__atomic_compare_exchange_n(&obj->dirty_end, &end,
				p->index + 1, true, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED))
			;
		__atomic_store_n(&p->dirtied, vm_now_s(), __ATOMIC_RELAXED);
		__atomic_fetch_add(&obj->nr_dirty, 1, __ATOMIC_RELAXED);
		if (__atomic_add_fetch(&obj->cache->nr_dirty, 1, __ATOMIC_RELAXED) ==
		    obj->cache->dirty_limit + 1)
			vm_cache_kick(obj->cache);
	}
}

#define set_dirty vm_object_set_dirty

/*
 * A write-back of the locked page @p failed (@failed) or did not: the
 * cache counts the pages whose last one failed (vm_cache.nr_unclean).
 */
static void wb_mark(struct vm_object *obj, struct vm_page *p, bool failed)
{
	if (failed) {
		if (!(__atomic_fetch_or(&p->flags, PG_WBFAIL, __ATOMIC_SEQ_CST) & PG_WBFAIL))
			__atomic_add_fetch(&obj->cache->nr_unclean, 1, __ATOMIC_RELAXED);
	} else if (vm_page_test(p, PG_WBFAIL) && vm_page_test_clear(p, PG_WBFAIL)) {
		/* A load first: every write-back and every eviction comes here,
		 * nearly always with the flag clear (it changes under the lock). */
		__atomic_sub_fetch(&obj->cache->nr_unclean, 1, __ATOMIC_RELAXED);
	}
}

/* Drop @p from the index and the cache.  Context: page locked, unmapped. */
static void delete_page(struct vm_object *obj, struct vm_page *p)
{
	vm_mutex_lock(&obj->index_lock);
	VM_BUG_ON(vm_pindex_delete(&obj->index, p->index) != p);
	vm_mutex_unlock(&obj->index_lock);
	vm_cache_del(obj->cache, p);
	WRITE_ONCE(p->object, NULL);
	clear_dirty(obj, p);
	wb_mark(obj, p, false);
	vm_page_clear(p, PG_READAHEAD);
	vm_page_put(p);	/* the index's reference; the caller still has one */
}

/*
 * Zap every mapping of the locked page @p, until its mapcount is zero.
 * Context: page locked; takes the rmap lock and ptls.
 */
static void unmap_page_all(struct vm_object *obj, struct vm_page *p)
{
	struct vm_region *r;
	int walks = 0;

	VM_ASSERT_HELD(p);
	/*
	 * Mapcount first: a mapper that passed its check raised mapcount
	 * before we locked the page, so it is visible here.  A walk that
	 * leaves it raised met a mapper between raise and undo (or between
	 * check and install, on another region's ptl): walk again, each walk
	 * serialised on the ptls, until it drops.
	 */
	while (vm_page_mapcount(p) > 0) {
		if (walks++)
			sched_yield();
		vm_mutex_lock(&obj->rmap_lock);
		cds_list_for_each_entry(r, &obj->regions, rmap) {
			if (!vm_region_covers_idx(r, p->index))
				continue;
			vm_mutex_lock(&r->ptl);
			vm_region_zap_page_locked(r, p);
			vm_mutex_unlock(&r->ptl);
		}
		vm_mutex_unlock(&obj->rmap_lock);
		VM_BUG_ON(walks > 1000000);
	}
}

void vm_object_remove_page(struct vm_object *obj, struct vm_page *p)
{
	unmap_page_all(obj, p);
	delete_page(obj, p);
	vm_stat_inc(shard(obj), UFVM_CTR_PAGES_INVALIDATED);
}

/* Free the frames of [first, first+n) of @obj.  Context: the pages locked,
 * or the range invalidated under the invalidate lock. */
static void punch_frames(struct vm_object *obj, uint64_t first, uint64_t n)
{
	unsigned int i;

	/*
	 * Striped, a memfd holds frames only at the offsets of its own
	 * chunks: a range of more chunks than memfds is one punch of each
	 * memfd over all of it (the other chunks' offsets are holes there;
	 * with shmem huge pages, a folio may cover some, which this frees).
	 */
	if (obj->nstripes > 1 && n > ((uint64_t)obj->nstripes << obj->chunk_shift)) {
		for (i = 0; i < obj->nstripes; i++)
			fallocate(obj->memfds[i], FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
				  (off_t)(first << PAGE_SHIFT), (off_t)(n << PAGE_SHIFT));
		return;
	}
	while (n) {
		uint64_t k = vm_object_chunk_run(obj, first, n);

		fallocate(vm_object_memfd(obj, first), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			  (off_t)(first << PAGE_SHIFT), (off_t)(k << PAGE_SHIFT));
		first += k;
		n -= k;
	}
}

/* Free the frame of the locked page @p.  Context: page locked, in the index. */
static void punch_frame(struct vm_object *obj, struct vm_page *p)
{
	punch_frames(obj, p->index, 1);
}

void vm_object_discard_page(struct vm_object *obj, struct vm_page *p)
{
	unmap_page_all(obj, p);
	/*
	 * A failed fill may have written part of the frame: free it while the
	 * locked page still holds its index slot, so that no new page for
	 * this offset can be filled meanwhile and lose its frame to the punch.
	 */
	punch_frame(obj, p);
	vm_rcu_read_lock();	/* out of the index, @p no longer pins @obj */
	delete_page(obj, p);
	vm_rcu_read_unlock();
}

/* Unmap [first, last] (page offsets) from every region.  Context: rmap free. */
static void zap_regions(struct vm_object *obj, uint64_t first, uint64_t last)
{
	struct vm_region *r;

	vm_mutex_lock(&obj->rmap_lock);
	cds_list_for_each_entry(r, &obj->regions, rmap)
		vm_region_zap_range(r, first, last);
	vm_mutex_unlock(&obj->rmap_lock);
}

/*
 * Remove the pages of [first, last] from the cache, but with @keep_dirty
 * the dirty ones.  A page whose pin fails is being freed, out of the
 * index already: the walk goes on past it.  A page's dirty bit is read
 * once it is locked and unmapped from every region: a fault that passed
 * its checks before the lock may still map the page writable and dirty it
 * (under a ptl, which the unmap waits for), and a store into it then must
 * keep it if the punch fails (race/test_punch_vs_write_ahead).
 * Context: inval side held.  Return: whether a dirty page was kept.
 */
static bool remove_pages(struct vm_object *obj, uint64_t first, uint64_t last, bool keep_dirty)
{
	uint64_t idx = first;
	struct vm_page *p;
	bool kept = false;

	for (;;) {
		bool got = false;

		vm_rcu_read_lock();
		p = vm_pindex_next_rcu(&obj->index, &idx, last);
		if (p)
			got = vm_page_get_unless_zero(p);
		vm_rcu_read_unlock();
		if (!p)
			break;
		if (got) {
			vm_hook(obj->pol, UFVM_HOOK_DROP_PAGE, p->index << PAGE_SHIFT, 0);
			vm_page_lock(p);
			if (p->object == obj) {
				bool early = obj->pol->debug & UFVM_DEBUG_DROP_DIRTY_EARLY;
				bool dirty = early && vm_page_test(p, PG_DIRTY);	/* the bug */

				vm_hook(obj->pol, UFVM_HOOK_DROP_PAGE, p->index << PAGE_SHIFT, 1);
				if (!early) {
					unmap_page_all(obj, p);
					dirty = vm_page_test(p, PG_DIRTY);
				}
				if (keep_dirty && dirty)
					kept = true;
				else
					vm_object_remove_page(obj, p);
			}
			vm_page_unlock(p);
			vm_page_put(p);
		}
		if (idx++ == last)
			break;
	}
	return kept;
}

static void remove_range(struct vm_object *obj, uint64_t first, uint64_t last)
{
	if (first > last)
		return;
	zap_regions(obj, first, last);	/* one zap per region, not per page */
	remove_pages(obj, first, last, false);
}

/* Zero [from, to) bytes of the cached page @idx, if cached. */
static void zero_partial(struct vm_object *obj, uint64_t idx, size_t from, size_t to)
{
	struct vm_page *p = vm_object_find_get(obj, idx);

	if (!p)
		return;
	vm_page_lock(p);
	if (p->object == obj && vm_page_test(p, PG_UPTODATE))
		memset(vm_object_frame(obj, idx) + from, 0, to - from);
	vm_page_unlock(p);
	vm_page_put(p);
}

/*
 * Dirty page @idx if it is cached and up to date (mapped or not: it may
 * have been unmapped since the store).  May sleep (page lock).
 */
static void redirty(struct vm_object *obj, uint64_t idx)
{
	struct vm_page *p = vm_object_find_get(obj, idx);

	if (!p)
		return;
	vm_page_lock(p);
	if (p->object == obj && vm_page_test(p, PG_UPTODATE))
		set_dirty(obj, p);
	vm_page_unlock(p);
	vm_page_put(p);
}

static void wait_page_locks(struct vm_object *obj, uint64_t first, uint64_t last);

/*
 * Free the frames of the pages of [@first, @last] not cached: one punch per
 * gap.  (With invalidate=none a fill may cache and map a page in a gap
 * meanwhile, as it may after any punch of frames there.)
 */
static void punch_gaps(struct vm_object *obj, uint64_t first, uint64_t last)
{
	uint64_t idx = first, next;
	struct vm_page *p;

	for (;;) {
		next = idx;
		vm_rcu_read_lock();
		p = vm_pindex_next_rcu(&obj->index, &next, last);
		vm_rcu_read_unlock();
		if (!p) {
			punch_frames(obj, idx, last - idx + 1);
			return;
		}
		if (next > idx)
			punch_frames(obj, idx, next - idx);
		if (next == last)
			return;
		idx = next + 1;
	}
}

/*
 * Write entry @id (odd) of a range log of @n entries: [@off, @end).
 * Context: the inval side held.  Return: its slot.
 */
static unsigned int range_log_put(struct vm_range_log *log, unsigned int n, unsigned int id,
				  uint64_t off, uint64_t end)
{
	unsigned int slot = (id / 2) % n;

	__atomic_store_n(&log[slot].id, 0, __ATOMIC_SEQ_CST);
	__atomic_store_n(&log[slot].off, off, __ATOMIC_SEQ_CST);
	__atomic_store_n(&log[slot].end, end, __ATOMIC_SEQ_CST);
	__atomic_store_n(&log[slot].id, id, __ATOMIC_SEQ_CST);
	return slot;
}

/*
 * Punch [off, off+len) (cut at the end of the file), in the kernel's
 * order: the cache first, then the store, fills kept out between the two
 * by the invalidate lock (seed 001).  The punch publishes itself (punches
 * odd, its range in the log), so that write-back leaves the pages it
 * overlaps dirty (punch_pending()).  Then the clean whole pages go (the
 * store has their bytes), the runs under way on the others are waited
 * for, the store is punched, and only once that succeeded do the dirty
 * ones go and the partial pages at the ends get their zeros: a punch that
 * fails loses no write (dropping every page first lost the dirty ones),
 * and no write-back puts old bytes over the hole meanwhile.
 * Context: takes the inval side; may sleep (I/O).  Return: 0 or -errno.
 */
int vm_object_punch(struct vm_object *obj, uint64_t off, uint64_t len)
{
	uint64_t end = off + len, size, first, last;
	unsigned int id, slot;
	bool kept = false, untouched = true;
	int err = 0;

	if (!obj->store->writable)
		return -EBADF;
	UFVM_TRACE2(inval_start, off, len);
	vm_object_inval_begin(obj);
	id = __atomic_add_fetch(&obj->punches, 1, __ATOMIC_SEQ_CST);	/* odd */
	slot = range_log_put(obj->punch_log, ARRAY_SIZE(obj->punch_log), id, off, end);
	size = vm_object_size(obj);
	if (end > size)
		end = size;
	if (off < end) {
		first = DIV_ROUND_UP(off, PAGE_SIZE);
		last = end / PAGE_SIZE;		/* first page not wholly inside */
		if (first < last) {
			zap_regions(obj, first, last - 1);	/* one zap per region */
			kept = remove_pages(obj, first, last - 1, true);	/* clean ones */
			vm_hook(obj->pol, UFVM_HOOK_INVALIDATED, first << PAGE_SHIFT,
				(last - first) << PAGE_SHIFT);
			if (kept)
				punch_gaps(obj, first, last - 1);
			else
				punch_frames(obj, first, last - first);
		}
		/* What is left cached: dirty pages, and the partial ones. */
		wait_page_locks(obj, off / PAGE_SIZE, (end - 1) / PAGE_SIZE);
		/* Nothing past the end: a store without hole punching writes zeros. */
		err = vm_store_punch(obj->store, off, end - off, &untouched);
	}
	if (off < end && !err) {
		/* A range inside one page (off < end) is partial, aligned start or not. */
		bool one = off / PAGE_SIZE == end / PAGE_SIZE;

		vm_hook(obj->pol, UFVM_HOOK_PUNCHED, off, end - off);
		if (kept) {
			remove_pages(obj, first, last - 1, false);	/* the dirty ones */
			punch_frames(obj, first, last - first);
		}
		if (off % PAGE_SIZE || one)
			zero_partial(obj, off / PAGE_SIZE, off % PAGE_SIZE,
				     one ? end % PAGE_SIZE : PAGE_SIZE);
		if (end % PAGE_SIZE && !one)
			zero_partial(obj, end / PAGE_SIZE, 0, end % PAGE_SIZE);
	}
	/*
	 * Failed with the store untouched, it changed no byte of the file
	 * (it dropped only clean pages, which the store holds): its log
	 * entry cuts nothing, so a ufvm_pwrite() it ran beside need not start
	 * over (against punches failing back to back one never finished).
	 * A store that zeroed part of the range before it failed (no holes
	 * on its file system) did change bytes: the write starts over.
	 */
	if (err && (untouched || (obj->pol->debug & UFVM_DEBUG_PARTIAL_PUNCH_EMPTY)) &&
	    !(obj->pol->debug & UFVM_DEBUG_FAILED_PUNCH_CUTS))	/* (the debug flags: tests) */
		__atomic_store_n(&obj->punch_log[slot].end, 0, __ATOMIC_SEQ_CST);
	__atomic_fetch_add(&obj->punches, 1, __ATOMIC_SEQ_CST);
	vm_object_inval_end(obj);
	UFVM_TRACE3(inval_done, off, len, err);
	return err;
}

/*
 * Lock and unlock every cached page of [@first, @last]: whoever held one (a
 * write-back run) is done with it.  Context: no page lock held; may sleep.
 */
static void wait_page_locks(struct vm_object *obj, uint64_t first, uint64_t last)
{
	uint64_t idx = first;
	struct vm_page *p;
	bool got;

	for (;;) {
		vm_rcu_read_lock();
		p = vm_pindex_next_rcu(&obj->index, &idx, last);
		got = p && vm_page_get_unless_zero(p);	/* else being freed: not written */
		vm_rcu_read_unlock();
		if (!p)
			break;
		if (got) {
			vm_page_lock(p);
			vm_page_unlock(p);
			vm_page_put(p);
		}
		if (idx++ == last)
			break;
	}
}

/*
 * A shrinking truncate to @nsize took effect (or, in the teeth's mode, was
 * tried): log it for the pwrites it ran beside (vm_object_pwrite()).
 * Context: the inval side held.
 */
static void cut_log(struct vm_object *obj, uint64_t nsize)
{
	unsigned int id = __atomic_add_fetch(&obj->cuts, 1, __ATOMIC_SEQ_CST);	/* odd */

	range_log_put(obj->cut_log, ARRAY_SIZE(obj->cut_log), id, nsize, UINT64_MAX);
	__atomic_fetch_add(&obj->cuts, 1, __ATOMIC_SEQ_CST);
}

/*
 * Change the size to @nsize.  Shrinking: the new size first (faults past
 * it answer SIGBUS, write-back stops there but keeps what it did not write
 * dirty until the outcome is known: shrinks odd); then every cached page from
 * the new last one on is locked once, so that a write-back in flight on
 * them, which read the old size, has finished; then the store is cut,
 * and nothing writes past its new end afterwards.  Only once the store
 * is cut do the pages past the end go (if it fails, the old size comes
 * back and nothing is lost), then the memfd's tail.  Growing: the
 * memfd and the store first (undone if the store fails), then the old last
 * page's tail is zeroed (a mapping may have written past the old end), and
 * the new size is published last.
 * Context: inval side held; may sleep (I/O).  Return: 0 or -errno.
 */
static int resize_locked(struct vm_object *obj, uint64_t nsize)
{
	uint64_t osize = vm_object_size(obj), npages = DIV_ROUND_UP(nsize, PAGE_SIZE);
	uint64_t opages = DIV_ROUND_UP(osize, PAGE_SIZE);
	int err = 0;

	if (nsize < osize) {
		__atomic_fetch_add(&obj->shrinks, 1, __ATOMIC_SEQ_CST);	/* odd */
		__atomic_store_n(&obj->size, nsize, __ATOMIC_SEQ_CST);
		wait_page_locks(obj, nsize / PAGE_SIZE, UINT64_MAX - 1);
		err = vm_store_truncate(obj->store, nsize);
		if (err) {
			/*
			 * Every page is still cached, dirty ones included
			 * (write-back kept those it did not write meanwhile),
			 * and none was filled short against the new size
			 * but in the none mode, which keeps fills out of
			 * nothing (fill_size(): such a fill waits for this
			 * outcome in the add/block mode; the rwsem mode's
			 * fills wait for the whole truncate).
			 */
			__atomic_store_n(&obj->size, osize, __ATOMIC_SEQ_CST);
		}
		__atomic_fetch_add(&obj->shrinks, 1, __ATOMIC_SEQ_CST);	/* decided */
		if (err) {
			/* Back at the old size: clear what faults past the new
			 * one left (SIGBUS mappings). */
			zap_regions(obj, npages, opages - 1);
			if (obj->pol->debug & UFVM_DEBUG_FAILED_SHRINK_CUTS)
				cut_log(obj, 0);	/* the bug, for tests: any
							 * shrink restarted a pwrite */
			return err;
		}
		cut_log(obj, nsize);	/* before its pages go */
		if (__atomic_load_n(&obj->dirty_end, __ATOMIC_SEQ_CST) > npages)
			__atomic_store_n(&obj->dirty_end, npages, __ATOMIC_SEQ_CST);
		remove_range(obj, npages, UINT64_MAX - 1);
		vm_hook(obj->pol, UFVM_HOOK_INVALIDATED, npages << PAGE_SHIFT,
			(opages - npages) << PAGE_SHIFT);
		if (nsize % PAGE_SIZE)
			zero_partial(obj, nsize / PAGE_SIZE, nsize % PAGE_SIZE, PAGE_SIZE);
		/*
		 * The file is cut: a memfd that stays longer only keeps
		 * frames no page uses (the punches freed them), so its
		 * failure is not the truncate's.
		 */
		if (frames_truncate(obj, npages)) {
		}
		view_unmap(obj, npages);
		return 0;
	}
	if (nsize == osize)
		return vm_store_truncate(obj->store, nsize);
	err = frames_truncate(obj, npages);
	if (!err)
		err = view_map(obj, npages);
	if (!err)
		err = vm_store_truncate(obj->store, nsize);
	if (err) {
		int e = frames_truncate(obj, opages);

		view_unmap(obj, opages);
		return e ? e : err;
	}
	if (osize % PAGE_SIZE)
		zero_partial(obj, osize / PAGE_SIZE, osize % PAGE_SIZE, PAGE_SIZE);
	vm_hook(obj->pol, UFVM_HOOK_GROW_ZEROED, osize, nsize);
	__atomic_store_n(&obj->size, nsize, __ATOMIC_RELEASE);
	/*
	 * A mapping may have stored past the old end since the zeroing, and a
	 * write-back, which read the old size, written the page only up to it
	 * and cleaned it: that byte is file data now, though the region may
	 * be gone since.  (The kernel write-protects that page for the same
	 * reason: pagecache_isize_extended().)  One page write at most.
	 */
	if (osize % PAGE_SIZE && !(obj->pol->debug & UFVM_DEBUG_GROW_NO_REDIRTY))
		redirty(obj, osize / PAGE_SIZE);
	/* Clear what accesses past the old end left (SIGBUS mappings). */
	zap_regions(obj, opages, npages - 1);
	return 0;
}

/*
 * Truncate (@grow_only false) or extend to @nsize under the inval side.
 * With @from, *@from is the size it grew from, read under the lock, or
 * UINT64_MAX if it did not grow the file.
 * Context: may sleep; takes the invalidate lock exclusive.  Return: 0/-errno.
 */
static int resize(struct vm_object *obj, uint64_t nsize, bool grow_only, uint64_t *from)
{
	uint64_t osize;
	int err = 0;

	if (from)
		*from = UINT64_MAX;
	if (!obj->store->writable)
		return -EBADF;
	if (DIV_ROUND_UP(nsize, PAGE_SIZE) > obj->view_pages)
		return -EFBIG;
	/*
	 * A truncate invalidates [nsize, end): len UINT64_MAX, passed in a
	 * register, so that this site's arguments have the same kinds as the
	 * punch's (perf refuses a probe whose sites differ: a constant is
	 * noted as an immediate).
	 */
	UFVM_TRACE2(inval_start, nsize, vm_trace_reg(UINT64_MAX));
	vm_object_inval_begin(obj);
	osize = vm_object_size(obj);
	if (!grow_only || nsize > osize) {
		err = resize_locked(obj, nsize);
		if (!err && from && nsize > osize)
			*from = osize;
	}
	vm_object_inval_end(obj);
	UFVM_TRACE3(inval_done, nsize, vm_trace_reg(UINT64_MAX), err);
	return err;
}

int vm_object_truncate(struct vm_object *obj, uint64_t nsize)
{
	return resize(obj, nsize, false, NULL);
}

/* ---- write-back ---- */

static void record_wb_error(struct vm_object *obj, int err)
{
	int zero = 0;

	__atomic_compare_exchange_n(&obj->wb_err, &zero, err, false,
				    __ATOMIC_RELAXED, __ATOMIC_RELAXED);
}

/* Write-protect every writable mapping of the locked pages run[0..n). */
/* Return: a bit per page of the run (n <= 64) still writable somewhere. */
static uint64_t wrprotect_run(struct vm_object *obj, struct vm_page **run, unsigned int n)
{
	struct vm_region *r;
	unsigned int i;
	bool mapped = false;
	uint64_t stuck = 0;

	for (i = 0; i < n && !mapped; i++)
		mapped = vm_page_mapcount(run[i]) > 0;
	if (!mapped)
		return 0;
	vm_mutex_lock(&obj->rmap_lock);
	cds_list_for_each_entry(r, &obj->regions, rmap) {
		if (!r->writable)
			continue;
		vm_mutex_lock(&r->ptl);
		stuck |= vm_region_wrprotect_run_locked(r, run, n);
		vm_mutex_unlock(&r->ptl);
	}
	vm_mutex_unlock(&obj->rmap_lock);
	return stuck;
}

/* Write back the locked, dirty run[0..n) (consecutive offsets). */
/*
 * Write @len bytes of frames from offset @off to the store, read from the
 * memfd with pread() into a bounce buffer, not through the view: a frame
 * the view never touched has no PTE there, so evicting it later needs no
 * TLB shootdown (see fill_frames()).  Through the view if every buffer is
 * taken.  Context: the pages locked; may sleep (I/O).  Return: 0 or -errno.
 */
static int store_write_frames(struct vm_object *obj, uint64_t off, size_t len)
{
	char *buf = vm_cache_fill_buf_try(obj->cache);
	int err = 0;

	if (!buf)
		return vm_store_write(obj->store, obj->view + off, off, len);
	while (len && !err) {
		size_t k = MIN(len, (size_t)vm_object_chunk_run(obj, off >> PAGE_SHIFT,
							       VM_FILL_BUF_PAGES) << PAGE_SHIFT);
		ssize_t n = pread(vm_object_memfd(obj, off >> PAGE_SHIFT), buf, k, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n != (ssize_t)k) {
			err = n < 0 ? -errno : -EIO;
			break;
		}
		err = vm_store_write(obj->store, buf, off, k);
		off += k;
		len -= k;
	}
	vm_cache_fill_buf_put(obj->cache, buf);
	return err;
}

static void wb_end(struct vm_object *obj, unsigned int e)
{
	if (__atomic_sub_fetch(&obj->wb_busy[e], 1, __ATOMIC_SEQ_CST) == 0 &&
	    __atomic_load_n(&obj->wb_waiters, __ATOMIC_SEQ_CST))
		vm_futex_wake_all(&obj->wb_busy[e]);
}

/*
 * A write-back run (of byte offset @off on) starts: flushes wait for it
 * (wait_writeback()).  A flush that flips the epoch between this run's
 * load of it and its count has looked at that epoch's count already, so
 * the run checks the epoch again once counted, and moves to the new one
 * if it changed.  Return: the epoch it counts in, for wb_end().
 */
static unsigned int wb_begin(struct vm_object *obj, uint64_t off)
{
	for (;;) {
		unsigned int e = __atomic_load_n(&obj->wb_epoch, __ATOMIC_SEQ_CST) & 1;

		vm_hook(obj->pol, UFVM_HOOK_WB_EPOCH, off, e);
		__atomic_fetch_add(&obj->wb_busy[e], 1, __ATOMIC_SEQ_CST);
		if ((__atomic_load_n(&obj->wb_epoch, __ATOMIC_SEQ_CST) & 1) == e ||
		    (obj->pol->debug & UFVM_DEBUG_WB_EPOCH_ONCE))	/* the bug, for tests */
			return e;
		wb_end(obj, e);
	}
}

/*
 * Wait until the write-back runs of @obj in flight now are done: a run of
 * another thread (the background flusher, reclaim) cleared the dirty bits
 * of its pages before its write, so a flush that found them clean must
 * still wait for its outcome (and error) before it reports.  Runs that
 * start later count in the other epoch and are not waited for, so a
 * steady stream of write-backs cannot hold a flush up.
 * Context: no page lock held; may sleep.
 */
static void wait_writeback(struct vm_object *obj)
{
	unsigned int old;
	uint32_t v;

	pthread_mutex_lock(&obj->wb_wait_mu);
	old = __atomic_fetch_xor(&obj->wb_epoch, 1, __ATOMIC_SEQ_CST) & 1;
	if (__atomic_load_n(&obj->wb_busy[old], __ATOMIC_SEQ_CST)) {
		__atomic_fetch_add(&obj->wb_waiters, 1, __ATOMIC_SEQ_CST);
		while ((v = __atomic_load_n(&obj->wb_busy[old], __ATOMIC_SEQ_CST)))
			vm_futex_wait(&obj->wb_busy[old], v);
		__atomic_fetch_sub(&obj->wb_waiters, 1, __ATOMIC_SEQ_CST);
	}
	pthread_mutex_unlock(&obj->wb_wait_mu);
}

static bool punched_into(struct vm_object *obj, unsigned int from, unsigned int to,
			 uint64_t off, uint64_t end);

/*
 * Does a punch under way overlap [@off, @end)?  (Maybe, if its log entry
 * is being written.)  Read under the page locks of the range: a punch
 * waits for those (wait_page_locks()) after it published itself.
 */
static bool punch_pending(struct vm_object *obj, uint64_t off, uint64_t end)
{
	unsigned int id = __atomic_load_n(&obj->punches, __ATOMIC_SEQ_CST);

	if (obj->pol->debug & UFVM_DEBUG_WB_PAST_PUNCH)
		return false;	/* the bug, for tests */
	return (id & 1) && punched_into(obj, id, id, off, end);
}

/*
 * Write back the locked dirty pages run[0..n) (consecutive): write-protect
 * them, clear their dirty bits, write them up to the end of the file.  A
 * page whose write fails is dirty again; so is one past the size, or cut
 * by it, while a shrinking truncate is pending (WB_KEPT); a run that a
 * punch under way overlaps is not written (WB_KEPT).
 * Context: the run's pages locked; may sleep (I/O).
 * Return: 0, WB_KEPT (nothing failed, some pages stay dirty) or -errno.
 */
static int write_run(struct vm_object *obj, struct vm_page **run, unsigned int n)
{
	uint64_t off = run[0]->index << PAGE_SHIFT, size;
	struct vm_stats_shard *s = shard(obj);
	unsigned int i, epoch;
	bool keep, kept = false;
	uint64_t stuck;
	size_t len;
	int err = 0;

	vm_hook(obj->pol, UFVM_HOOK_WB_CHECK, off, (uint64_t)n << PAGE_SHIFT);
	if (punch_pending(obj, off, off + ((uint64_t)n << PAGE_SHIFT)))
		return WB_KEPT;	/* the punch drops them, or they stay if it fails */
	epoch = wb_begin(obj, off);
	stuck = wrprotect_run(obj, run, n);
	vm_hook(obj->pol, UFVM_HOOK_WB_PROTECTED, off, (uint64_t)n << PAGE_SHIFT);
	for (i = 0; i < n; i++)
		vm_page_clear(run[i], PG_DIRTY);
	size = size_pending(obj, &keep);
	if (off < size) {
		len = (size_t)MIN((uint64_t)n << PAGE_SHIFT, size - off);
		vm_hook(obj->pol, UFVM_HOOK_WRITEBACK, off, len);
		err = store_write_frames(obj, off, len);
		vm_cache_writeback_result(obj->cache, err);
		__atomic_store_n(&obj->unsynced, true, __ATOMIC_RELAXED);
		vm_stat_inc(s, UFVM_CTR_STORE_WRITES);
		vm_stat_add(s, UFVM_CTR_STORE_WRITE_PAGES, n);
	}
	for (i = 0; i < n; i++) {
		bool again = err || (keep && (run[i]->index + 1) << PAGE_SHIFT > size) ||
			     (stuck >> i & 1);	/* still writable: not clean */

		kept |= again;
		if (!again || (__atomic_fetch_or(&run[i]->flags, PG_DIRTY, __ATOMIC_SEQ_CST) & PG_DIRTY))
			dirty_uncount(obj);
		wb_mark(obj, run[i], err);
	}
	if (err) {
		vm_stat_inc(s, UFVM_CTR_STORE_ERRORS);
		record_wb_error(obj, err);
	}
	wb_end(obj, epoch);
	return err ? err : kept ? WB_KEPT : 0;
}

/* Dirty, and dirtied no later than @older_than (UINT32_MAX: any age)? */
static bool wb_wanted(struct vm_page *p, uint32_t older_than)
{
	return vm_page_test(p, PG_DIRTY) &&
	       (older_than == UINT32_MAX ||
		__atomic_load_n(&p->dirtied, __ATOMIC_RELAXED) <= older_than);
}

/*
 * Write back the dirty pages of [first, last] dirtied no later than
 * @older_than, in runs; *@written (if not NULL) counts the pages of the
 * runs that reached the store.  Context: no page lock held; may sleep.
 * Return: 0 or the first error.
 */
static int writeback_range(struct vm_object *obj, uint64_t first, uint64_t last,
			   uint32_t older_than, uint64_t *written, bool *kept)
{
	struct vm_page *run[WB_RUN_MAX];
	uint64_t idx = first;
	unsigned int n, i;
	int err = 0, e;

	while (__atomic_load_n(&obj->nr_dirty, __ATOMIC_RELAXED) && idx <= last) {
		struct vm_page *p;

		vm_rcu_read_lock();
		p = vm_pindex_next_rcu(&obj->index, &idx, last);
		if (p && (!wb_wanted(p, older_than) || !vm_page_get_unless_zero(p)))
			p = (struct vm_page *)1;	/* skip this one */
		vm_rcu_read_unlock();
		if (!p)
			break;
		if (p == (struct vm_page *)1) {
			if (idx++ == last)
				break;
			continue;
		}
		vm_page_lock(p);
		if (p->object != obj || !vm_page_test(p, PG_DIRTY)) {
			vm_page_unlock(p);
			vm_page_put(p);
			idx++;
			continue;
		}
		/* Gather dirty neighbours, trylock only (no second blocking lock). */
		run[0] = p;
		for (n = 1; n < WB_RUN_MAX && idx + n <= last; n++) {
			struct vm_page *q = vm_object_find_get(obj, idx + n);

			if (!q)
				break;
			if (!wb_wanted(q, older_than) || !vm_page_trylock(q)) {
				vm_page_put(q);
				break;
			}
			if (q->object != obj || !vm_page_test(q, PG_DIRTY)) {
				vm_page_unlock(q);
				vm_page_put(q);
				break;
			}
			run[n] = q;
		}
		e = write_run(obj, run, n);
		if (e < 0 && !err)
			err = e;
		if (e == WB_KEPT && kept)
			*kept = true;
		if (!e && written)
			*written += n;
		for (i = 0; i < n; i++) {
			vm_page_unlock(run[i]);
			vm_page_put(run[i]);
		}
		if (idx + n - 1 >= last)
			break;
		idx += n;
	}
	return err;
}

/*
 * Write back the dirty pages of [@first, @last] and wait for the runs of
 * other threads (flusher, reclaim) in flight, which cleaned their pages
 * before writing them: when it returns, what was dirty is in the store or
 * has failed.  Return: 0 or the first error, its own or one not yet
 * reported (left for the next sync to report too).
 */
int vm_object_writeback(struct vm_object *obj, uint64_t first, uint64_t last)
{
	bool kept = false, held = false;
	int err = writeback_range(obj, first, last, UINT32_MAX, NULL, &kept), e;

	if (kept) {
		/*
		 * A shrinking truncate or a punch was pending: wait for its
		 * outcome, then write what it kept dirty (if it failed, its
		 * pages are the file's again, and this write-back must not
		 * report them done), holding the fill side, under which none
		 * is pending: each publishes itself and ends inside the
		 * invalidation side.  (A page kept because it stays writable
		 * is not waited for.)
		 */
		if (obj->pol->debug & UFVM_DEBUG_SYNC_PAST_PUNCH)
			fill_sync(obj);	/* the bug, for tests: the next punch may start now */
		else
			held = fill_side_get(obj);
		e = writeback_range(obj, first, last, UINT32_MAX, NULL, NULL);
		fill_side_put(obj, held);
		if (!err)
			err = e;
	}
	wait_writeback(obj);
	if (!err)
		err = __atomic_load_n(&obj->wb_err, __ATOMIC_RELAXED);
	return err;
}

int vm_object_writeback_aged(struct vm_object *obj, uint32_t older_than)
{
	uint64_t written = 0;
	int err = writeback_range(obj, 0, UINT64_MAX, older_than, &written, NULL);

	/* Pages written, not the drop in nr_dirty: others clean and dirty too. */
	if (written)
		vm_stat_add(shard(obj), UFVM_CTR_FLUSH_PAGES, written);
	return err;
}

int vm_object_sync(struct vm_object *obj, uint64_t first, uint64_t last)
{
	int err = vm_object_writeback(obj, first, last), e;

	__atomic_store_n(&obj->unsynced, false, __ATOMIC_RELAXED);
	e = vm_store_sync(obj->store);
	if (!err)
		err = e;
	e = vm_object_check_errors(obj);
	if (!err)
		err = e;
	return err;
}

int vm_object_check_errors(struct vm_object *obj)
{
	return __atomic_exchange_n(&obj->wb_err, 0, __ATOMIC_RELAXED);
}

/* ---- read and write through the cache ---- */

#define PAST_EOF	1	/* get_uptodate_locked(): @idx is past the end */

/*
 * Get page @idx locked and up to date, filling it if need be.
 * Context: no page lock held; may sleep (I/O).  @write: the caller will
 * dirty it (it may then find no room, see vm_cache_make_room()).  @full:
 * the caller will overwrite the whole page, so a missing page need not be
 * read.
 * Return: 0 with the page locked and referenced; PAST_EOF if @idx is past
 * the end of the file (a truncate raced with the caller); or -errno.
 */
static int get_uptodate_locked(struct vm_object *obj, uint64_t idx, bool write, bool full,
			       struct vm_page **pagep)
{
	struct vm_page *p;
	bool created;
	int err;

	p = vm_object_find_get(obj, idx);
	if (p) {
		vm_page_lock(p);
		if (p->object == obj && vm_page_test(p, PG_UPTODATE)) {
			if (!vm_page_test(p, PG_REFERENCED))
				vm_page_set(p, PG_REFERENCED);
			*pagep = p;
			return 0;
		}
		vm_page_unlock(p);
		vm_page_put(p);
	}
	err = vm_cache_make_room(obj->cache, 1, 1, write);
	if (err < 0)
		return err;	/* full of pages the store does not take back */
	vm_object_fill_begin(obj);
	for (;;) {
		err = vm_object_grab_page(obj, idx, &p, &created);
		if (err)
			break;
		if (!created) {
			vm_page_lock(p);
			if (p->object != obj) {	/* removed meanwhile */
				vm_page_unlock(p);
				vm_page_put(p);
				continue;
			}
		}
		if (vm_page_test(p, PG_UPTODATE)) {
			*pagep = p;
			break;
		}
		/*
		 * Checked with the page locked in the index: a truncate stores
		 * its size before it removes pages, each under its lock, so
		 * either it sees this page or this sees its size.
		 */
		if (idx >= vm_object_npages(obj)) {
			vm_object_remove_page(obj, p);
			vm_page_unlock(p);
			vm_page_put(p);
			err = PAST_EOF;
			break;
		}
		if (full) {
			vm_page_set(p, PG_UPTODATE);	/* caller overwrites it */
			*pagep = p;
			break;
		}
		err = vm_object_read_page(obj, p);
		if (err) {
			vm_object_discard_page(obj, p);
			vm_page_unlock(p);
			vm_page_put(p);
			if (err != VM_FILL_WAIT)
				break;
			vm_object_fill_wait(obj);	/* the truncate's outcome */
			continue;
		}
		*pagep = p;
		break;
	}
	vm_object_fill_end(obj);
	vm_cache_unreserve(obj->cache, 1);
	return err;
}

ssize_t vm_object_pread(struct vm_object *obj, void *buf, size_t len, uint64_t off)
{
	char bounce[PAGE_SIZE];
	uint64_t size = vm_object_size(obj);
	size_t done = 0;

	if (off >= size)
		return 0;
	len = (size_t)MIN(len, size - off);
	while (done < len) {
		uint64_t pos = off + done, idx = pos >> PAGE_SHIFT;
		size_t in = pos & (PAGE_SIZE - 1), n = MIN(PAGE_SIZE - in, len - done);
		struct vm_page *p;
		int err = get_uptodate_locked(obj, idx, false, false, &p);

		if (err == PAST_EOF)
			break;	/* truncated meanwhile: a short read */
		if (err)
			return done ? (ssize_t)done : err;
		memcpy(bounce, vm_object_frame(obj, idx) + in, n);
		vm_page_unlock(p);
		vm_page_put(p);
		memcpy((char *)buf + done, bounce, n);
		done += n;
	}
	return (ssize_t)done;
}

/*
 * Grow the file to @nsize if it is smaller; never shrinks it (two extending
 * writers, or a writer and a truncate, each see the size under the lock).
 * *@from: the size it grew from, or UINT64_MAX if this call did not grow it.
 * Context: may sleep; takes the invalidate lock exclusive.  Return: 0/-errno.
 */
static int extend(struct vm_object *obj, uint64_t nsize, uint64_t *from)
{
	*from = UINT64_MAX;
	if (nsize <= vm_object_size(obj))
		return 0;
	return resize(obj, nsize, true, from);
}

/*
 * Did an entry of the range log @log (@n entries) whose odd count is in
 * (@from, @to] cut [@off, @end)?  The log keeps the last ones; with more,
 * or an entry overwritten meanwhile, the answer is yes (start over, to be
 * sure).
 */
static bool logged_into(const struct vm_range_log *log, unsigned int n, unsigned int from,
			unsigned int to, uint64_t off, uint64_t end)
{
	unsigned int id;

	if ((to - from) / 2 + 1 >= n)
		return true;
	for (id = from | 1; (int)(to - id) >= 0; id += 2) {
		unsigned int slot = (id / 2) % n;
		uint64_t po, pe;

		if (__atomic_load_n(&log[slot].id, __ATOMIC_SEQ_CST) != id)
			return true;
		po = __atomic_load_n(&log[slot].off, __ATOMIC_SEQ_CST);
		pe = __atomic_load_n(&log[slot].end, __ATOMIC_SEQ_CST);
		if (__atomic_load_n(&log[slot].id, __ATOMIC_SEQ_CST) != id)
			return true;
		if (po < end && off < pe)
			return true;
	}
	return false;
}

/* Did a punch that started at or after the count @from, up to @to, cut [@off, @end)? */
static bool punched_into(struct vm_object *obj, unsigned int from, unsigned int to,
			 uint64_t off, uint64_t end)
{
	return logged_into(obj->punch_log, ARRAY_SIZE(obj->punch_log), from, to, off, end);
}

/* Is page @idx cached and dirty?  (A hint: it may change at once.) */
static bool page_is_dirty(struct vm_object *obj, uint64_t idx)
{
	struct vm_page *p;
	bool dirty;

	vm_rcu_read_lock();
	p = vm_pindex_lookup_rcu(&obj->index, idx);
	dirty = p && vm_page_test(p, PG_DIRTY);
	vm_rcu_read_unlock();
	return dirty;
}

/*
 * A write that extended the file to @ours and then failed, having written
 * up to @target, takes the extension back: POSIX extends a file only by
 * the bytes written.  Only while nothing else can have used the extension:
 * the size is still @ours, no other pwrite is under way, no page past
 * @target's is cached (a mapping's or a reader's), and no page from
 * @target's on was dirtied (a store into the extension, or into the old
 * last page past the old end, synced and maybe evicted since: the cut
 * took it from the file).  Otherwise it stays, as zeros.
 * Context: may sleep; takes the invalidate lock exclusive.
 */
static void unextend(struct vm_object *obj, uint64_t ours, uint64_t target)
{
	uint64_t idx = DIV_ROUND_UP(target, PAGE_SIZE);
	bool guess = obj->pol->debug & UFVM_DEBUG_UNEXTEND_GUESS;	/* the bug, for tests */
	struct vm_page *p;

	vm_object_inval_begin(obj);
	if (vm_object_size(obj) == ours &&
	    __atomic_load_n(&obj->pwriters, __ATOMIC_SEQ_CST) == 1 &&
	    (guess || __atomic_load_n(&obj->dirty_end, __ATOMIC_SEQ_CST) <= target / PAGE_SIZE)) {
		vm_rcu_read_lock();
		p = vm_pindex_next_rcu(&obj->index, &idx, UINT64_MAX);
		vm_rcu_read_unlock();
		if (!p)
			(void)resize_locked(obj, target);	/* refused: it stays */
	}
	vm_object_inval_end(obj);
}

/*
 * The write goes page by page, each page locked on its own, so a shrinking
 * truncate or a punch may land between two of its pages and remove those
 * written already.  The write then starts over, after it: the result is
 * always one of the two orders, never a mix.
 */
ssize_t vm_object_pwrite(struct vm_object *obj, const void *buf, size_t len, uint64_t off)
{
	char bounce[PAGE_SIZE];
	unsigned int cuts, punches, now;
	uint64_t from;
	size_t done;
	int err;

	if (!obj->store->writable)
		return -EBADF;
	__atomic_fetch_add(&obj->pwriters, 1, __ATOMIC_SEQ_CST);
again:
	/*
	 * Before extend(): a truncate that ran whole between it and this
	 * read would go unseen, its size cutting bytes this write then puts
	 * back past the end.
	 */
	cuts = __atomic_load_n(&obj->cuts, __ATOMIC_SEQ_CST);
	punches = __atomic_load_n(&obj->punches, __ATOMIC_SEQ_CST);
	done = 0;
	err = extend(obj, off + len, &from);
	if (err)
		goto out;
	while (done < len) {
		uint64_t pos = off + done, idx = pos >> PAGE_SHIFT;
		size_t in = pos & (PAGE_SIZE - 1), n = MIN(PAGE_SIZE - in, len - done);
		struct vm_page *p;

		memcpy(bounce, (const char *)buf + done, n);	/* may fault */
		/*
		 * No room for one more page that cannot be cleaned: refused
		 * before the page is looked up, as a full overwrite would make
		 * it up to date unread (and leave it so, holding zeros).
		 * Not on a stale error: a write-back is tried first.
		 */
		err = 0;
		if (vm_cache_over_slack(obj->cache) && !page_is_dirty(obj, idx) &&
		    vm_cache_dirty_retry(obj->cache))
			err = vm_cache_dirty_full(obj->cache);
		if (!err)
			err = get_uptodate_locked(obj, idx, true, n == PAGE_SIZE, &p);
		if (err == PAST_EOF)
			goto again;	/* truncated meanwhile */
		if (err) {
			if (from != UINT64_MAX)	/* this write grew it from there */
				unextend(obj, off + len, done ? MAX(from, off + done) : from);
			goto out;	/* short (done bytes) or failed */
		}
		memcpy(vm_object_frame(obj, idx) + in, bounce, n);
		set_dirty(obj, p);
		vm_page_unlock(p);
		vm_page_put(p);
		done += n;
	}
	/* A truncate or punch in progress is done after this, and its count seen. */
	fill_sync(obj);
	now = __atomic_load_n(&obj->cuts, __ATOMIC_SEQ_CST);
	if (now != cuts && logged_into(obj->cut_log, ARRAY_SIZE(obj->cut_log), cuts, now,
				       off, off + len))
		goto again;	/* only a truncate that took effect, below this write's end */
	now = __atomic_load_n(&obj->punches, __ATOMIC_SEQ_CST);
	if (now != punches && punched_into(obj, punches, now, off, off + len))
		goto again;	/* only a punch that cut this write's range */
	__atomic_fetch_sub(&obj->pwriters, 1, __ATOMIC_SEQ_CST);
	return (ssize_t)done;
out:
	__atomic_fetch_sub(&obj->pwriters, 1, __ATOMIC_SEQ_CST);
	return done ? (ssize_t)done : err;
}

/* ---- runs of pages: fault readahead and async readahead ---- */

int vm_object_grab_run(struct vm_object *obj, uint64_t first, unsigned int n,
		       struct vm_page **pages, unsigned int *got)
{
	bool add = fill_takes_add(obj);
	uint64_t npages;
	unsigned int i;
	int err = 0;

	/*
	 * In the add/block mode, the add side is held across the whole run:
	 * taking it again for each page while holding the run's earlier pages
	 * locked would deadlock against an invalidation that holds block and
	 * waits for one of those page locks.  It also keeps the size read
	 * below valid until every page of the run is in the index.
	 */
	if (add)
		add_side_get(obj, first);
	npages = vm_object_npages(obj);
	*got = 0;
	for (i = 0; i < n && first + i < npages; i++) {
		struct vm_page *p;
		bool created;

		err = grab_page(obj, first + i, false, &p, &created);
		if (err)
			break;
		if (!created) {
			vm_page_put(p);
			break;	/* cached already: the run ends here */
		}
		pages[(*got)++] = p;
	}
	if (add)
		addblock_put(&obj->addblock, 1);
	return *got ? 0 : err;
}

int vm_object_read_run(struct vm_object *obj, struct vm_page **pages, unsigned int n)
{
	uint64_t off = pages[0]->index << PAGE_SHIFT, size;
	struct vm_stats_shard *s = shard(obj);
	unsigned int i;
	size_t len;
	int err;

	if (n == 1)
		return vm_object_read_page(obj, pages[0]);
	err = fill_size(obj, off, (size_t)n << PAGE_SHIFT, &size);
	if (err)
		return err;
	len = off < size ? (size_t)MIN((uint64_t)n << PAGE_SHIFT, size - off) : 0;
	if (len) {
		vm_hook(obj->pol, UFVM_HOOK_FILL, off, len);
		vm_stat_inc(s, UFVM_CTR_STORE_READS);
		vm_stat_add(s, UFVM_CTR_STORE_READ_PAGES, n);
	}
	err = fill_frames(obj, pages[0]->index, n, len);
	if (err) {
		vm_stat_inc(s, UFVM_CTR_STORE_ERRORS);
		return err;
	}
	for (i = 0; i < n; i++) {
		vm_page_clear(pages[i], PG_ERROR);
		vm_page_set(pages[i], PG_UPTODATE);
	}
	return 0;
}

unsigned int vm_object_cached_run(struct vm_object *obj, uint64_t idx, unsigned int max,
				  bool back)
{
	struct vm_pindex_cursor cur;
	unsigned int i = 0;

	if (back)
		max = (unsigned int)MIN((uint64_t)max, idx);
	vm_rcu_read_lock();
	vm_pindex_cursor_init(&cur, &obj->index);
	while (i < max && vm_pindex_cursor_get(&cur, back ? idx - i - 1 : idx + i))
		i++;
	vm_rcu_read_unlock();
	return i;
}

void vm_object_readahead(struct vm_object *obj, uint64_t first, unsigned int n)
{
	struct vm_page *pages[VM_RA_MAX];
	unsigned int got, i;
	int err;

	/*
	 * Read the rest of the window, marked at its first page read: a
	 * reader's fault may have filled its first pages before this ran.
	 */
	i = vm_object_cached_run(obj, first, MIN(n, (unsigned int)VM_RA_MAX), false);
	first += i;
	n = MIN(n, (unsigned int)VM_RA_MAX) - i;
	if (!n)
		return;
	n = (unsigned int)vm_cache_make_room(obj->cache, n, 0, false);
	if (!n)
		return;	/* no room: readahead never goes over the budget */
	vm_object_fill_begin(obj);
	err = vm_object_grab_run(obj, first, n, pages, &got);
	if (!err && got) {
		/* Reaching the first page read starts the next window. */
		vm_page_set(pages[0], PG_READAHEAD);
		err = vm_object_read_run(obj, pages, got);
		if (!err)
			vm_stat_add(shard(obj), UFVM_CTR_READAHEAD_PAGES, got);
	}
	for (i = 0; i < got; i++) {
		if (err)	/* a fault will read (and report) it itself */
			vm_object_discard_page(obj, pages[i]);
		vm_page_unlock(pages[i]);
		vm_page_put(pages[i]);
	}
	vm_object_fill_end(obj);
	vm_cache_unreserve(obj->cache, n);
}

void vm_object_get_ref(struct vm_object *obj)
{
	__atomic_fetch_add(&obj->refs, 1, __ATOMIC_RELAXED);
}

/* ---- reclaim ---- */

/*
 * Lock @p for reclaim and return its object, or NULL.  Takes no object
 * reference: the page lock keeps the object alive (see vm/cache.h).
 */
static struct vm_object *reclaim_lock(struct vm_page *p)
{
	struct vm_object *obj;

	vm_rcu_read_lock();
	obj = READ_ONCE(p->object);
	if (obj && !vm_page_trylock(p))
		obj = NULL;
	if (obj && READ_ONCE(p->object) != obj) {
		vm_page_unlock(p);
		obj = NULL;
	}
	vm_rcu_read_unlock();
	return obj;
}

/*
 * Unmap the locked pages pages[0..n) of @obj (increasing offsets) from
 * every region: per region one ptl hold and one vectored zap for all of
 * them, instead of one each per page (or per run of consecutive pages).
 * Pages no region maps
 * (mapcount 0, read after the lock: mapcount first) cost nothing.
 * Context: the pages locked; takes the rmap lock and ptls; may sleep
 * briefly (the zap system calls).
 */
static void zap_pages_locked(struct vm_object *obj, struct vm_page **pages, unsigned int n)
{
	struct vm_region *r;
	unsigned int i;

	for (i = 0; i < n && !vm_page_mapcount(pages[i]); i++)
		;
	if (i == n)
		return;
	vm_mutex_lock(&obj->rmap_lock);
	cds_list_for_each_entry(r, &obj->regions, rmap)
		vm_region_zap_pages(r, pages + i, n - i);
	vm_mutex_unlock(&obj->rmap_lock);
	for (; i < n; i++)
		unmap_page_all(obj, pages[i]);	/* a mapper met between raise and undo */
}

/*
 * Reclaim's pages of one batch, locked by trylock and sorted by (object,
 * offset) in the caller's space, so that each object's pages are zapped
 * together and frames at consecutive offsets are punched together.
 */
static void batch_add(struct vm_evict_space *sp, unsigned int *n, struct vm_object *obj,
		      struct vm_page *p, int *where)
{
	unsigned int j;

	for (j = *n; j > 0 && (sp->objs[j - 1] > obj ||
			       (sp->objs[j - 1] == obj && sp->pages[j - 1]->index > p->index)); j--) {
		sp->objs[j] = sp->objs[j - 1];
		sp->pages[j] = sp->pages[j - 1];
		sp->where[j] = sp->where[j - 1];
	}
	sp->objs[j] = obj;
	sp->pages[j] = p;
	sp->where[j] = where;
	(*n)++;
}

/* Return: the end of the group of the batch's pages that share the object of [s]. */
static unsigned int batch_group_end(const struct vm_evict_space *sp, unsigned int n,
				    unsigned int s)
{
	unsigned int e = s + 1;

	while (e < n && sp->objs[e] == sp->objs[s])
		e++;
	return e;
}

unsigned int vm_object_sample_pages(struct vm_evict_space *sp, unsigned int n)
{
	unsigned int i, s, e, nb = 0;

	for (i = 0; i < n && i < sp->cap; i++) {
		struct vm_object *obj = reclaim_lock(sp->zap[i]);

		if (obj)
			batch_add(sp, &nb, obj, sp->zap[i], NULL);
	}
	for (s = 0; s < nb; s = e) {
		e = batch_group_end(sp, nb, s);
		zap_pages_locked(sp->objs[s], sp->pages + s, e - s);
	}
	for (i = 0; i < nb; i++) {
		vm_page_set(sp->pages[i], PG_SAMPLED);	/* a later mapping: in use */
		vm_page_unlock(sp->pages[i]);
	}
	return nb;
}

int vm_object_evict_page(struct vm_page *p, bool second_chance)
{
	struct vm_object *obj = reclaim_lock(p);
	int ret = 1;

	if (!obj)
		return 0;
	if (second_chance && vm_page_test(p, PG_REFERENCED)) {
		vm_page_unlock(p);
		return 0;	/* used since the scan */
	}
	unmap_page_all(obj, p);
	if (vm_page_test(p, PG_DIRTY)) {
		/* Write-protect, clean, write: a racing write re-dirties it. */
		int err = write_run(obj, &p, 1);

		if (err) {
			vm_page_set(p, PG_REFERENCED);	/* not again at once */
			vm_page_unlock(p);
			return err < 0 ? err : 0;	/* WB_KEPT: it stays */
		}
		ret = 2;
	}
	/* Free the frame while the page, locked, still holds its index slot:
	 * no fill can put a new page there and lose its frame to this punch. */
	if (!(obj->pol->debug & UFVM_DEBUG_EVICT_PUNCH_LATE))
		punch_frame(obj, p);
	/*
	 * Once out of the index the page no longer pins the object (destroy
	 * does not see it): the RCU section keeps the struct for the hook.
	 */
	vm_rcu_read_lock();
	delete_page(obj, p);
	vm_hook(obj->pol, UFVM_HOOK_EVICT, p->index, 0);
	if (obj->pol->debug & UFVM_DEBUG_EVICT_PUNCH_LATE)	/* the bug, for tests */
		punch_frame(obj, p);
	vm_rcu_read_unlock();
	vm_page_unlock(p);
	return ret;
}

int vm_object_retry_writeback(struct vm_page *p)
{
	struct vm_object *obj = reclaim_lock(p);
	int err = 1;

	if (!obj && READ_ONCE(p->object)) {
		/*
		 * Locked: most likely the flusher writing it back, whose
		 * outcome is what this would learn.  Wait for it, once.
		 */
		vm_page_wait_unlocked(p);
		obj = reclaim_lock(p);
	}
	if (!obj)
		return 1;
	if (vm_page_test(p, PG_DIRTY) && vm_page_test(p, PG_WBFAIL))
		err = write_run(obj, &p, 1);
	vm_page_unlock(p);
	return err == WB_KEPT ? 1 : err;	/* kept dirty: nothing failed, nothing learnt */
}

/*
 * Evict the locked pages pages[0..n) of @obj (increasing offsets): one zap
 * per region for all of them, one punch per stretch of consecutive
 * offsets.  Pages that cannot go (a failing write-back, or one kept by a
 * pending truncate) stay; res[i] says (1, 2, 0, or the write-back's -errno).  Unlocks every page.
 */
static void evict_locked(struct vm_object *obj, struct vm_page **pages, unsigned int n,
			 int *res)
{
	unsigned int i, s;

	zap_pages_locked(obj, pages, n);
	for (i = 0; i < n; i++) {
		res[i] = 1;
		if (vm_page_test(pages[i], PG_DIRTY)) {
			int err = write_run(obj, &pages[i], 1);

			if (err) {
				vm_page_set(pages[i], PG_REFERENCED);	/* not again at once */
				res[i] = err < 0 ? err : 0;	/* WB_KEPT: it stays */
			} else {
				res[i] = 2;
			}
		}
	}
	/* Punch each stretch of pages that go, while they hold their slots. */
	for (s = 0; s < n; s = i) {
		for (i = s + 1; i < n && pages[i]->index == pages[i - 1]->index + 1 &&
				(res[i] > 0) == (res[s] > 0); i++)
			;
		if (res[s] > 0)
			punch_frames(obj, pages[s]->index, i - s);
	}
	vm_rcu_read_lock();	/* see vm_object_evict_page() */
	for (i = 0; i < n; i++) {
		if (res[i] > 0) {
			delete_page(obj, pages[i]);
			vm_hook(obj->pol, UFVM_HOOK_EVICT, pages[i]->index, 0);
		}
	}
	vm_rcu_read_unlock();
	for (i = 0; i < n; i++)
		vm_page_unlock(pages[i]);
}

void vm_object_evict_pages(struct vm_evict_space *sp, unsigned int n, bool second_chance)
{
	struct vm_page **v = sp->victims;
	int *res = sp->res;
	unsigned int i, j, s, e, nb = 0;

	for (i = 0; i < n; i++) {
		struct vm_object *obj;

		res[i] = 0;
		if (n == 1 || i >= sp->cap) {
			res[i] = vm_object_evict_page(v[i], second_chance);
			continue;
		}
		obj = reclaim_lock(v[i]);
		if (!obj)
			continue;
		if ((second_chance && vm_page_test(v[i], PG_REFERENCED)) ||
		    (obj->pol->debug & UFVM_DEBUG_EVICT_PUNCH_LATE)) {
			vm_page_unlock(v[i]);
			if (!second_chance || !vm_page_test(v[i], PG_REFERENCED))
				res[i] = vm_object_evict_page(v[i], second_chance);
			continue;
		}
		batch_add(sp, &nb, obj, v[i], &res[i]);
	}
	for (s = 0; s < nb; s = e) {
		e = batch_group_end(sp, nb, s);
		evict_locked(sp->objs[s], sp->pages + s, e - s, sp->rr + s);
		for (j = s; j < e; j++)
			*sp->where[j] = sp->rr[j];
	}
}

/* ---- rmap ---- */

void vm_object_rmap_add(struct vm_object *obj, struct vm_region *r)
{
	vm_mutex_lock(&obj->rmap_lock);
	cds_list_add_tail(&r->rmap, &obj->regions);
	vm_mutex_unlock(&obj->rmap_lock);
}

void vm_object_rmap_del(struct vm_object *obj, struct vm_region *r)
{
	vm_mutex_lock(&obj->rmap_lock);
	cds_list_del_init(&r->rmap);
	vm_mutex_unlock(&obj->rmap_lock);
}

/* ---- stats ---- */

static struct vm_stats_shard *shard(struct vm_object *obj)
{
	return vm_stats_shard_get(obj->stats);
}
