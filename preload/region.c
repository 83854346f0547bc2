// SPDX-License-Identifier: MIT
/*
 * preload/region.c - managed mappings and the mmap family: mmap, munmap,
 * mremap, mprotect, msync, madvise, posix_madvise.
 *
 * A managed mapping is a MAP_SHARED mapping, readable, not executable, of
 * a regular file that matches UFVM_MATCH.  Each is one or more pl_regions,
 * each a ufvm region (ufvm_map_file() with UFVM_MAP_FIXED) or, for
 * PROT_NONE, an anonymous PROT_NONE placeholder that remembers the file and
 * offset, so that a later mprotect() can map it through ufvm again.
 *
 * A partial munmap or an mprotect of part of a mapping changes just that
 * part: ufvm splits its regions in place (ufvm_protect, ufvm_unmap_reserve),
 * so the other parts stay mapped throughout, and a part that stops being
 * managed turns into a PROT_NONE reservation in the same step, never a
 * hole that another thread's mmap could take.
 * mremap grows in place by mapping the extension as a region of its own
 * next to the old one, or maps the file again elsewhere and unmaps the old
 * range; nothing is copied, the cache is the file's.
 *
 * Everything here runs with pl_lock held, except msync's ufvm_sync() calls
 * and madvise's prefetch and punch, which hold an inode reference instead.
 */
#define _GNU_SOURCE
#include "preload/preload.h"

#define PL_MIN(a, b) ((a) < (b) ? (a) : (b))
#define PL_MAX(a, b) ((a) > (b) ? (a) : (b))

struct pl_region *pl_regions;		/* (L) */
size_t pl_nregions;			/* (L) */
static size_t pl_capregions;		/* (L) */
static uintptr_t pl_lo = UINTPTR_MAX;	/* (a) written under L: no region below */
static uintptr_t pl_hi;			/* (a) written under L: no region above */

/* ---- the table ---- */

/* Index of the first region that ends after @addr.  Context: L held. */
static size_t pl_first_after_locked(uintptr_t addr)
{
	size_t lo = 0, hi = pl_nregions;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (pl_regions[mid].end <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static void pl_bounds_locked(void)
{
	uintptr_t lo = UINTPTR_MAX, hi = 0;

	if (pl_nregions) {
		lo = pl_regions[0].start;
		hi = pl_regions[pl_nregions - 1].end;
	}
	__atomic_store_n(&pl_lo, lo, __ATOMIC_RELEASE);
	__atomic_store_n(&pl_hi, hi, __ATOMIC_RELEASE);
}

static int pl_insert_locked(const struct pl_region *r)
{
	size_t i;

	if (pl_nregions == pl_capregions) {
		size_t cap = pl_capregions ? pl_capregions * 2 : 64;
		struct pl_region *n = realloc(pl_regions, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		pl_regions = n;
		pl_capregions = cap;
	}
	i = pl_first_after_locked(r->start);
	memmove(&pl_regions[i + 1], &pl_regions[i], (pl_nregions - i) * sizeof(*r));
	pl_regions[i] = *r;
	pl_nregions++;
	pl_bounds_locked();
	return 0;
}

static void pl_remove_locked(size_t i)
{
	memmove(&pl_regions[i], &pl_regions[i + 1], (pl_nregions - i - 1) * sizeof(*pl_regions));
	pl_nregions--;
	pl_bounds_locked();
}

/*
 * pl_overlaps_managed - does [addr, addr+len) touch a managed mapping?
 * Context: L not held (taken only when the range is inside the bounds).
 */
bool pl_overlaps_managed(const void *addr, size_t len)
{
	uintptr_t a = (uintptr_t)addr, e = a + (len ? len : 1);
	bool ret;
	size_t i;

	if (e < a)
		e = UINTPTR_MAX;
	if (e <= __atomic_load_n(&pl_lo, __ATOMIC_ACQUIRE) ||
	    a >= __atomic_load_n(&pl_hi, __ATOMIC_ACQUIRE))
		return false;
	pl_lock_acquire();
	i = pl_first_after_locked(a);
	ret = i < pl_nregions && pl_regions[i].start < e;
	pl_lock_release();
	return ret;
}

/* ---- mapping and unmapping pieces ---- */

/*
 * Map @len bytes of @ino at file offset @off with @prot (PROT_NONE, READ,
 * or READ|WRITE) at *@start (exactly, if @fixed) and record it.
 * Context: L held, @ino active.  Return: 0 and *start, or -errno.
 */
static int pl_map_one_locked(struct pl_inode *ino, uintptr_t *start, size_t len,
			     off_t off, int prot, bool maywrite, bool fixed)
{
	struct pl_region r;
	void *a = fixed ? (void *)*start : NULL;
	int err;

	len = PL_ROUND_UP(len);
	if (prot == PROT_NONE) {
		a = REAL(mmap)(a, len, PROT_NONE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | (fixed ? MAP_FIXED : 0),
			       -1, 0);
		if (a == MAP_FAILED)
			return -errno;
	} else {
		pl_guard++;
		err = ufvm_map_file(ino->uf, off, len,
				    UFVM_PROT_READ | ((prot & PROT_WRITE) ? UFVM_PROT_WRITE : 0),
				    UFVM_MAP_SHARED | (fixed ? UFVM_MAP_FIXED : 0), &a);
		pl_guard--;
		if (err)
			return err;
	}
	r.start = (uintptr_t)a;
	r.end = r.start + len;
	r.ino = ino;
	r.off = off;
	r.prot = prot;
	r.maywrite = maywrite;
	err = pl_insert_locked(&r);
	if (err) {
		pl_guard++;
		if (prot == PROT_NONE)
			REAL(munmap)(a, len);
		else
			ufvm_unmap(pl_vm, a, len);
		pl_guard--;
		return err;
	}
	pl_inode_get_locked(ino);
	*start = r.start;
	pl_log("map %s +%lld len %zu prot %d at %p", ino->path, (long long)off, len, prot, a);
	return 0;
}

/* Room for @extra more records.  Context: L held.  Return: 0 or -ENOMEM. */
static int pl_grow_locked(size_t extra)
{
	size_t cap = pl_capregions ? pl_capregions : 64;
	struct pl_region *n;

	while (cap < pl_nregions + extra)
		cap *= 2;
	if (cap == pl_capregions)
		return 0;
	n = realloc(pl_regions, cap * sizeof(*n));
	if (!n)
		return -ENOMEM;
	pl_regions = n;
	pl_capregions = cap;
	return 0;
}

/*
 * Make [s, t), inside record @i, a record of its own (each new record
 * holds a reference on the inode).  Context: L held, room for two more
 * records (pl_grow_locked).  Return: the index of the [s, t) record.
 */
static size_t pl_isolate_locked(size_t i, uintptr_t s, uintptr_t t)
{
	struct pl_region r = pl_regions[i], piece;

	if (r.start < s) {
		pl_regions[i].end = s;
		piece = r;
		piece.start = s;
		piece.off = r.off + (off_t)(s - r.start);
		pl_insert_locked(&piece);	/* room made: cannot fail */
		pl_inode_get_locked(r.ino);
		i++;
	}
	if (t < pl_regions[i].end) {
		piece = pl_regions[i];
		pl_regions[i].end = t;
		piece.off += (off_t)(t - piece.start);
		piece.start = t;
		pl_insert_locked(&piece);
		pl_inode_get_locked(r.ino);
	}
	return i;
}

/* Forget record @i (its mapping is the caller's business).  Context: L held. */
static void pl_forget_locked(size_t i)
{
	struct pl_inode *ino = pl_regions[i].ino;

	pl_remove_locked(i);
	pl_inode_put_locked(ino);
}

static int pl_uprot(int prot)
{
	return UFVM_PROT_READ | ((prot & PROT_WRITE) ? UFVM_PROT_WRITE : 0);
}

/*
 * pl_change_locked - give [start, end) a new protection wherever it is
 * managed (@prot: PROT_NONE, PROT_READ or PROT_READ|PROT_WRITE), or, with
 * @prot -1, stop managing it: those parts become anonymous PROT_NONE
 * reservations, which the caller maps over (MAP_FIXED), or which are
 * unmapped here with @unmap.  The parts outside [start, end) stay mapped
 * throughout: ufvm splits its regions in place (ufvm_protect,
 * ufvm_unmap_reserve), and a change is never an unmap and a map again.
 * Context: L held.  Return: 0, or the first error (what was done before
 * it stays done, as with mprotect).
 */
static int pl_change_locked(uintptr_t start, uintptr_t end, int prot, bool unmap)
{
	size_t i = pl_first_after_locked(start), k;
	int err = 0;

	while (i < pl_nregions && pl_regions[i].start < end) {
		struct pl_region r = pl_regions[i];
		uintptr_t s = PL_MAX(r.start, start), t = PL_MIN(r.end, end);
		void *a = (void *)s;

		if (prot == r.prot) {
			i++;
			continue;
		}
		err = pl_grow_locked(2);
		if (err)
			break;
		pl_guard++;
		if (r.prot != PROT_NONE && prot > 0)		/* read-only <-> read-write */
			err = ufvm_protect(pl_vm, a, t - s, pl_uprot(prot));
		else if (r.prot == PROT_NONE && prot > 0)	/* a placeholder mapped again */
			err = ufvm_map_file(r.ino->uf, r.off + (off_t)(s - r.start), t - s,
					    pl_uprot(prot), UFVM_MAP_SHARED | UFVM_MAP_FIXED, &a);
		else if (r.prot != PROT_NONE) {			/* unmapped, reserved */
			err = ufvm_unmap_reserve(pl_vm, a, t - s);
			if (err && err != -ENOMEM && err != -EINVAL) {
				pl_warn_once("%s: write-back at unmap failed: %s (the pages "
					     "stay cached)", r.ino->path, ufvm_strerror(err));
				err = 0;	/* unmapped regardless */
			}
		}
		pl_guard--;
		if (err)
			break;
		k = pl_isolate_locked(i, s, t);
		if (prot >= 0) {
			pl_regions[k].prot = prot;
		} else {
			if (unmap)
				REAL(munmap)(a, t - s);		/* the reservation */
			pl_forget_locked(k);
		}
		i = pl_first_after_locked(t);
	}
	if (err)
		pl_log("changing [%#lx, %#lx) to %d failed: %s", (unsigned long)start,
		       (unsigned long)end, prot, ufvm_strerror(err));
	return err;
}

/*
 * Unmap [start, end): the managed parts, and the rest (the program's own
 * mappings, or nothing) with munmap.  Context: L held.  Return: 0 or -errno.
 */
static int pl_unmap_locked(uintptr_t start, uintptr_t end)
{
	size_t i = pl_first_after_locked(start), n = 0, k;
	uintptr_t (*gap)[2], a = start;
	int err;

	for (k = i; k < pl_nregions && pl_regions[k].start < end; k++)
		n++;
	gap = malloc((n + 1) * sizeof(*gap));
	if (!gap)
		return -ENOMEM;
	n = 0;
	for (k = i; k < pl_nregions && pl_regions[k].start < end; k++) {
		if (pl_regions[k].start > a) {
			gap[n][0] = a;
			gap[n++][1] = pl_regions[k].start;
		}
		a = pl_regions[k].end;
	}
	if (a < end) {
		gap[n][0] = a;
		gap[n++][1] = end;
	}
	err = pl_change_locked(start, end, -1, true);
	for (k = 0; k < n; k++)
		if (REAL(munmap)((void *)gap[k][0], gap[k][1] - gap[k][0]) && !err)
			err = -errno;
	free(gap);
	return err;
}

/* For fork children: the same region again, in a new ufvm instance. */
int pl_region_remap_locked(struct pl_region *r)
{
	void *a = (void *)r->start;
	int err;

	if (r->prot == PROT_NONE)
		return 0;	/* the placeholder was inherited */
	pl_guard++;
	err = ufvm_map_file(r->ino->uf, r->off, r->end - r->start,
			    UFVM_PROT_READ | ((r->prot & PROT_WRITE) ? UFVM_PROT_WRITE : 0),
			    UFVM_MAP_SHARED | UFVM_MAP_FIXED, &a);
	pl_guard--;
	return err;
}

/*
 * For fork children that cannot run ufvm: the kernel's mapping instead (a
 * placeholder too, so that a later mprotect, which then goes to the
 * kernel, shows the file and not anonymous zeros).
 */
int pl_region_map_kernel_locked(struct pl_region *r)
{
	int fd = r->ino->priv_fd, ro = -1, err = 0;

	if (!r->maywrite) {
		/*
		 * Our duplicate may be read-write where the program's fd was
		 * not: through a read-only one, a later mprotect(PROT_WRITE)
		 * is EACCES, as it was.
		 */
		char path[64];

		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		ro = REAL(open)(path, O_RDONLY | O_CLOEXEC);
		if (ro >= 0)
			fd = ro;
	}
	if (REAL(mmap)((void *)r->start, r->end - r->start, r->prot, MAP_SHARED | MAP_FIXED, fd,
		       r->off) == MAP_FAILED)
		err = -errno;
	if (ro >= 0)
		REAL(close)(ro);
	return err;
}

/* ---- mmap ---- */

static bool pl_manageable(size_t len, int prot, int flags, off_t off)
{
	int type = flags & MAP_TYPE;

	return (type == MAP_SHARED || type == MAP_SHARED_VALIDATE) && len &&
	       !(prot & ~(PROT_READ | PROT_WRITE)) &&
	       !(flags & (MAP_HUGETLB | MAP_GROWSDOWN | MAP_SYNC)) &&
	       off >= 0 && !(off % (off_t)PL_PAGE);
}

/* Map a qualifying file through ufvm.  Context: L not held; @ino referenced. */
static void *pl_mmap_managed(struct pl_inode *ino, void *addr, size_t len, int prot,
			     int flags, int fd, off_t off, bool *fallback)
{
	int acc = REAL(fcntl)(fd, F_GETFL), np, err;
	uintptr_t a = (uintptr_t)addr;
	bool maywrite;

	if (acc < 0)
		return MAP_FAILED;
	acc &= O_ACCMODE;
	maywrite = acc == O_RDWR;
	if (acc == O_WRONLY || ((prot & PROT_WRITE) && !maywrite)) {
		errno = EACCES;
		return MAP_FAILED;
	}
	np = (prot & PROT_WRITE) ? PROT_READ | PROT_WRITE : (prot & PROT_READ) ? PROT_READ : 0;
	pl_lock_acquire();
	err = pl_start_locked();
	if (!err && !ino->active) {
		err = pl_inode_activate_locked(ino, fd);
		if (err)
			pl_warn_once("%s: ufvm cannot open it (%s): mapped by the kernel",
				     ino->path, ufvm_strerror(err));
	}
	if (err) {
		/* Not active: the kernel's mapping is coherent with everything else. */
		pl_lock_release();
		*fallback = true;
		return MAP_FAILED;
	}
	if ((flags & MAP_FIXED) && !(flags & MAP_FIXED_NOREPLACE)) {
		if (a % PL_PAGE) {
			err = -EINVAL;
			goto out;
		}
		err = pl_change_locked(a, a + PL_ROUND_UP(len), -1, false);
		if (!err)
			err = pl_map_one_locked(ino, &a, len, off, np, maywrite, true);
	} else if (a) {
		/* A hint (or MAP_FIXED_NOREPLACE): honour it when the range is free. */
		void *p = REAL(mmap)(addr, len, PROT_NONE,
				     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE |
				     MAP_FIXED_NOREPLACE, -1, 0);

		if (p == addr) {
			err = pl_map_one_locked(ino, &a, len, off, np, maywrite, true);
			if (err)
				REAL(munmap)(p, len);
		} else {
			err = p == MAP_FAILED ? -errno : -EEXIST;
			if (p != MAP_FAILED)
				REAL(munmap)(p, len);
			if (!(flags & MAP_FIXED_NOREPLACE))
				err = pl_map_one_locked(ino, &a, len, off, np, maywrite, false);
		}
	} else {
		err = pl_map_one_locked(ino, &a, len, off, np, maywrite, false);
	}
out:
	pl_lock_release();
	if (err) {
		errno = -err;
		return MAP_FAILED;
	}
	return (void *)a;
}

static void *pl_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	struct pl_inode *ino = NULL;
	bool fallback = false;
	void *ret;

	if (!(flags & MAP_ANONYMOUS) && fd >= 0)
		ino = pl_fd_inode(fd);
	if (ino && pl_manageable(len, prot, flags, off)) {
		ret = pl_mmap_managed(ino, addr, len, prot, flags, fd, off, &fallback);
		pl_inode_put(ino);
		if (!fallback)
			return ret;
		ino = NULL;
	}
	if (ino) {
		if (__atomic_load_n(&ino->active, __ATOMIC_ACQUIRE)) {
			/* A private or executable mapping of a managed file: the kernel's,
			   up to date as of now. */
			pl_guard++;
			ufvm_fsync(ino->uf);
			pl_guard--;
			pl_log("%s: kernel mapping (prot %d flags %#x) of a managed file",
			       ino->path, prot, flags);
		}
		pl_inode_put(ino);
	}
	if ((flags & MAP_FIXED) && pl_overlaps_managed(addr, len)) {
		int err;

		/*
		 * What the kernel would refuse must leave the managed mapping
		 * there.  Its checks, in its order, as far as they do not
		 * depend on the range: the fd, the address, NOREPLACE; then
		 * what the file allows (access mode, offset, flags), tried
		 * with the same mapping anywhere.  Not tried: anonymous and
		 * huge-page mappings (their refusals, such as MAP_LOCKED past
		 * RLIMIT_MEMLOCK, still cost the managed range).
		 */
		if (!(flags & MAP_ANONYMOUS)) {
			int fl = REAL(fcntl)(fd, F_GETFL);

			if (fl < 0 || (fl & O_PATH))	/* O_PATH maps nothing */
				return (void *)(intptr_t)pl_ret(-EBADF);
		}
		if ((uintptr_t)addr % PL_PAGE)
			return (void *)(intptr_t)pl_ret(-EINVAL);
		if (flags & MAP_FIXED_NOREPLACE)
			return (void *)(intptr_t)pl_ret(-EEXIST);
		if (!(flags & (MAP_ANONYMOUS | MAP_HUGETLB))) {
			void *probe = REAL(mmap)(NULL, len, prot,
						 (flags & ~(MAP_FIXED | MAP_POPULATE)) | MAP_NORESERVE,
						 fd, off);

			if (probe == MAP_FAILED)
				return MAP_FAILED;
			REAL(munmap)(probe, len);
		}
		pl_lock_acquire();
		err = pl_change_locked((uintptr_t)addr & ~(PL_PAGE - 1),
				       PL_ROUND_UP((uintptr_t)addr + len), -1, false);
		ret = err ? MAP_FAILED : REAL(mmap)(addr, len, prot, flags, fd, off);
		pl_lock_release();
		if (err)
			errno = -err;
		return ret;
	}
	return REAL(mmap)(addr, len, prot, flags, fd, off);
}

PL_EXPORT void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	if (PL_BYPASS())
		return REAL(mmap)(addr, len, prot, flags, fd, off);
	return pl_mmap(addr, len, prot, flags, fd, off);
}


PL_ALIAS(mmap64, mmap);

/* ---- munmap ---- */

PL_EXPORT int munmap(void *addr, size_t len)
{
	uintptr_t a = (uintptr_t)addr;
	int ret;

	if (PL_BYPASS() || a % PL_PAGE || !len || !pl_overlaps_managed(addr, len))
		return REAL(munmap)(addr, len);
	pl_lock_acquire();
	ret = (int)pl_ret(pl_unmap_locked(a, PL_ROUND_UP(a + len)));
	pl_lock_release();
	return ret;
}

/* ---- mremap ---- */

/*
 * The managed mapping at [a, a+len): one region, or adjacent regions
 * continuing one another in the file.  Context: L held.
 * Return: index of the first region, or -EFAULT.
 */
static long pl_find_run_locked(uintptr_t a, size_t len)
{
	size_t i = pl_first_after_locked(a), j;
	uintptr_t end = a + PL_ROUND_UP(len ? len : 1);

	if (i >= pl_nregions || pl_regions[i].start > a)
		return -EFAULT;
	for (j = i; pl_regions[j].end < end; j++) {
		const struct pl_region *p = &pl_regions[j], *n = &pl_regions[j + 1];

		if (j + 1 >= pl_nregions || n->start != p->end || n->ino != p->ino ||
		    n->prot != p->prot || n->off != p->off + (off_t)(p->end - p->start))
			return -EFAULT;
	}
	return (long)i;
}

static void *pl_mremap_locked(uintptr_t a, size_t osize, size_t nsize, int flags,
			      uintptr_t target)
{
	struct pl_region r;
	uintptr_t t;
	long i;
	off_t off;
	int err;

	osize = PL_ROUND_UP(osize);
	nsize = PL_ROUND_UP(nsize);
	if (a % PL_PAGE || !nsize || (flags & MREMAP_DONTUNMAP) ||
	    ((flags & MREMAP_FIXED) && (!(flags & MREMAP_MAYMOVE) || target % PL_PAGE)))
		return (void *)(long)-EINVAL;
	i = pl_find_run_locked(a, osize);
	if (i < 0)
		return (void *)i;
	r = pl_regions[i];
	off = r.off + (off_t)(a - r.start);
	pl_inode_get_locked(r.ino);
	if (flags & MREMAP_FIXED) {
		if (target < a + osize && a < target + nsize) {
			err = -EINVAL;
			goto out;
		}
		err = pl_change_locked(target, target + nsize, -1, false);
		t = target;
		if (!err)
			err = pl_map_one_locked(r.ino, &t, nsize, off, r.prot, r.maywrite, true);
		if (!err && osize)
			pl_unmap_locked(a, a + osize);
		goto out;
	}
	t = a;
	if (nsize <= osize && osize) {
		err = pl_unmap_locked(a + nsize, a + osize);
		goto out;
	}
	if (osize) {
		/* Grow in place when the pages after the mapping are free. */
		void *tail = (void *)(a + osize);
		void *p = REAL(mmap)(tail, nsize - osize, PROT_NONE,
				     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE |
				     MAP_FIXED_NOREPLACE, -1, 0);

		if (p == tail) {
			uintptr_t ta = (uintptr_t)tail;

			err = pl_map_one_locked(r.ino, &ta, nsize - osize, off + (off_t)osize,
						r.prot, r.maywrite, true);
			if (!err)
				goto out;
			REAL(munmap)(p, nsize - osize);
		} else if (p != MAP_FAILED) {
			REAL(munmap)(p, nsize - osize);
		}
	}
	if (!(flags & MREMAP_MAYMOVE)) {
		err = -ENOMEM;
		goto out;
	}
	err = pl_map_one_locked(r.ino, &t, nsize, off, r.prot, r.maywrite, false);
	if (!err && osize)
		pl_unmap_locked(a, a + osize);
out:
	pl_inode_put_locked(r.ino);
	return err ? (void *)(long)err : (void *)t;
}

PL_EXPORT void *mremap(void *old, size_t osize, size_t nsize, int flags, ...)
{
	void *target = NULL, *ret;
	va_list ap;

	if (flags & MREMAP_FIXED) {
		va_start(ap, flags);
		target = va_arg(ap, void *);
		va_end(ap);
	}
	if (PL_BYPASS())
		return REAL(mremap)(old, osize, nsize, flags, target);
	if (!pl_overlaps_managed(old, osize)) {
		if (!(flags & MREMAP_FIXED) || !pl_overlaps_managed(target, nsize))
			return REAL(mremap)(old, osize, nsize, flags, target);
		int err;

		pl_lock_acquire();
		err = pl_change_locked((uintptr_t)target, PL_ROUND_UP((uintptr_t)target + nsize),
				       -1, false);
		ret = err ? MAP_FAILED : REAL(mremap)(old, osize, nsize, flags, target);
		pl_lock_release();
		if (err)
			errno = -err;
		return ret;
	}
	pl_lock_acquire();
	ret = pl_mremap_locked((uintptr_t)old, osize, nsize, flags, (uintptr_t)target);
	pl_lock_release();
	if ((uintptr_t)ret >= (uintptr_t)-4095) {
		errno = -(int)(long)ret;
		return MAP_FAILED;
	}
	return ret;
}

/* ---- mprotect ---- */

/*
 * Call @fn on each unmanaged gap of [a, e), i.e. the parts the kernel
 * handles.  Context: L held.  Return: the first error of @fn.
 */
static int pl_gaps_locked(uintptr_t a, uintptr_t e, int (*fn)(uintptr_t, size_t, int), int arg)
{
	size_t i = pl_first_after_locked(a);
	int err = 0, x;

	while (a < e) {
		uintptr_t stop = i < pl_nregions ? PL_MIN(e, pl_regions[i].start) : e;

		if (stop > a) {
			x = fn(a, stop - a, arg);
			err = err ? err : x;
		}
		if (i >= pl_nregions || pl_regions[i].start >= e)
			break;
		a = pl_regions[i].end;
		i++;
	}
	return err;
}

static int pl_gap_mprotect(uintptr_t a, size_t len, int prot)
{
	return REAL(mprotect)((void *)a, len, prot) ? -errno : 0;
}

PL_EXPORT int mprotect(void *addr, size_t len, int prot)
{
	uintptr_t a = (uintptr_t)addr, e;
	int np, err = 0;
	size_t i;

	/* An empty range changes nothing: the kernel says what it says. */
	if (PL_BYPASS() || !len || a % PL_PAGE || !pl_overlaps_managed(addr, len))
		return REAL(mprotect)(addr, len, prot);
	if (prot & ~(PROT_READ | PROT_WRITE | PROT_EXEC))
		return REAL(mprotect)(addr, len, prot);
	e = PL_ROUND_UP(a + len);
	np = (prot & PROT_WRITE) ? PROT_READ | PROT_WRITE : (prot & PROT_READ) ? PROT_READ : 0;
	pl_lock_acquire();
	/* As the kernel: nothing changes if a part may not get this protection. */
	for (i = pl_first_after_locked(a); i < pl_nregions && pl_regions[i].start < e; i++) {
		if ((np & PROT_WRITE) && !pl_regions[i].maywrite)
			err = -EACCES;
		if (prot & PROT_EXEC)
			err = -EACCES;	/* ufvm cannot map for execution */
	}
	if (!err)
		err = pl_change_locked(a, e, np, false);
	if (!err)
		err = pl_gaps_locked(a, e, pl_gap_mprotect, prot);
	pl_lock_release();
	return (int)pl_ret(err);
}

/* ---- msync, madvise ---- */

struct pl_part {
	uintptr_t start, end;
	struct pl_inode *ino;
	off_t off;
	int prot;
};

/*
 * The managed, mapped (not PROT_NONE) parts of [a, e), each with a
 * reference on its inode.  Context: L held.  Return: count, or -ENOMEM.
 */
static long pl_parts_locked(uintptr_t a, uintptr_t e, struct pl_part **out)
{
	size_t i, n = 0;
	struct pl_part *p;

	for (i = pl_first_after_locked(a); i < pl_nregions && pl_regions[i].start < e; i++)
		n++;
	p = calloc(n ? n : 1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	n = 0;
	for (i = pl_first_after_locked(a); i < pl_nregions && pl_regions[i].start < e; i++) {
		const struct pl_region *r = &pl_regions[i];

		if (r->prot == PROT_NONE)
			continue;
		p[n].start = PL_MAX(a, r->start);
		p[n].end = PL_MIN(e, r->end);
		p[n].ino = r->ino;
		p[n].off = r->off + (off_t)(p[n].start - r->start);
		p[n].prot = r->prot;
		pl_inode_get_locked(r->ino);
		n++;
	}
	*out = p;
	return (long)n;
}

static void pl_parts_put(struct pl_part *p, long n)
{
	long i;

	pl_lock_acquire();
	for (i = 0; i < n; i++)
		pl_inode_put_locked(p[i].ino);
	pl_lock_release();
	free(p);
}

static int pl_gap_msync(uintptr_t a, size_t len, int flags)
{
	return REAL(msync)((void *)a, len, flags) ? -errno : 0;
}

PL_EXPORT int msync(void *addr, size_t len, int flags)
{
	uintptr_t a = (uintptr_t)addr, e;
	struct pl_part *p;
	long n, i;
	int err;

	if (PL_BYPASS() || !len || a % PL_PAGE || !pl_overlaps_managed(addr, len))
		return REAL(msync)(addr, len, flags);
	if ((flags & ~(MS_ASYNC | MS_SYNC | MS_INVALIDATE)) ||
	    ((flags & MS_ASYNC) && (flags & MS_SYNC)))
		return (int)pl_ret(-EINVAL);
	e = PL_ROUND_UP(a + len);
	pl_lock_acquire();
	n = pl_parts_locked(a, e, &p);
	err = n < 0 ? (int)n : pl_gaps_locked(a, e, pl_gap_msync, flags);
	pl_lock_release();
	if (n < 0)
		return (int)pl_ret(n);
	/*
	 * MS_ASYNC too writes back: until it is written back, a page is in
	 * this process's ufvm cache only, invisible to other readers of the file.
	 */
	for (i = 0; i < n && (flags & (MS_SYNC | MS_ASYNC)); i++) {
		int e2;

		pl_guard++;
		e2 = ufvm_sync(pl_vm, (void *)p[i].start, p[i].end - p[i].start);
		pl_guard--;
		err = err ? err : e2;
	}
	pl_parts_put(p, n);
	return (int)pl_ret(err);
}

static int pl_gap_madvise(uintptr_t a, size_t len, int advice)
{
	return REAL(madvise)((void *)a, len, advice) ? -errno : 0;
}

/* MADV_WILLNEED: read the range into the cache (at most 16 MiB of it). */
static int pl_prefetch(struct pl_part *p)
{
	size_t left = PL_MIN(p->end - p->start, (size_t)16 << 20), chunk = 256 << 10;
	off_t off = p->off;
	char *buf = malloc(chunk);
	ssize_t n;

	if (!buf)
		return 0;
	while (left) {
		pl_guard++;
		n = ufvm_pread(p->ino->uf, buf, PL_MIN(left, chunk), off);
		pl_guard--;
		if (n <= 0)
			break;
		left -= (size_t)n;
		off += n;
	}
	free(buf);
	return 0;
}

static int pl_madvise(void *addr, size_t len, int advice)
{
	uintptr_t a = (uintptr_t)addr, e;
	struct pl_part *p;
	long n, i;
	int err = 0, x;

	if (a % PL_PAGE)
		return -EINVAL;
	e = PL_ROUND_UP(a + len);
	switch (advice) {
	case MADV_NORMAL:
	case MADV_RANDOM:
	case MADV_SEQUENTIAL:
	case MADV_HUGEPAGE:
	case MADV_NOHUGEPAGE:
	case MADV_DONTDUMP:
	case MADV_DODUMP:
	case MADV_COLD:
		/* Hints that neither unmap nor change memory: the kernel's. */
		return REAL(madvise)(addr, len, advice) ? -errno : 0;
	case MADV_DONTNEED:
	case MADV_REMOVE:
	case MADV_WILLNEED:
		break;
	case MADV_FREE:
	case MADV_WIPEONFORK:
		return -EINVAL;	/* as the kernel says for shared file mappings */
	default:
		/* PAGEOUT, POPULATE_*, DONTFORK, ...: no effect on a managed range. */
		return 0;
	}
	pl_lock_acquire();
	n = pl_parts_locked(a, e, &p);
	if (n >= 0)
		err = pl_gaps_locked(a, e, pl_gap_madvise, advice);
	pl_lock_release();
	if (n < 0)
		return (int)n;
	for (i = 0; i < n; i++) {
		pl_guard++;
		switch (advice) {
		case MADV_DONTNEED:
			x = ufvm_zap(pl_vm, (void *)p[i].start, p[i].end - p[i].start);
			break;
		case MADV_REMOVE:
			x = (p[i].prot & PROT_WRITE) ?
				ufvm_punch(p[i].ino->uf, p[i].off, (off_t)(p[i].end - p[i].start)) :
				-EACCES;
			break;
		default:
			x = pl_prefetch(&p[i]);
			break;
		}
		pl_guard--;
		err = err ? err : x;
	}
	pl_parts_put(p, n);
	return err;
}

PL_EXPORT int madvise(void *addr, size_t len, int advice)
{
	if (PL_BYPASS() || !len || !pl_overlaps_managed(addr, len))
		return REAL(madvise)(addr, len, advice);
	return (int)pl_ret(pl_madvise(addr, len, advice));
}

PL_EXPORT int posix_madvise(void *addr, size_t len, int advice)
{
	if (PL_BYPASS() || !len || !pl_overlaps_managed(addr, len))
		return REAL(posix_madvise)(addr, len, advice);
	if (advice == POSIX_MADV_DONTNEED)
		return 0;	/* glibc ignores it too: it would discard data */
	return -pl_madvise(addr, len, advice);
}
