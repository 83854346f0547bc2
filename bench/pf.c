// SPDX-License-Identifier: MIT
/*
 * bench/pf.c - `ufvm bench pf` (issue 6): the workload of umap's
 * pfbenchmark, on ufvm and on the kernel's own mmap of the same file.
 *
 * A file of --pages pages of 4 KiB; the first 8 bytes of page i hold
 * i * 512 (the index of that word in the file).  --threads threads share
 * one list of page indexes, in order or shuffled with a fixed seed
 * (--shuffle, --seed), split statically into equal consecutive parts; each
 * thread reads its pages' words and checks them (default), writes them
 * (--write), or reads, checks and writes them back plus one (--rmw).  The
 * figure is ns per page: the wall time of the threads' loops over the
 * number of pages.
 *
 * Each of --reps rounds runs ufvm (a fresh instance: an empty cache, the
 * budget of --cache) and then the kernel's mmap(MAP_SHARED) of the same
 * file.  After a writing pass the mapping is synced (ufvm_sync, msync; timed
 * apart) and every page's word is read back from the file with pread.  The
 * words change from pass to pass: before a pass page i holds i * 512 + g,
 * where g counts the writing passes before it.
 *
 * Stores (--store):
 *   tmpfs   the file is in /dev/shm;
 *   file    the file is on disk under --dir (default $TMPDIR, else
 *           /var/tmp), and wholly in the host's page cache before each pass
 *           (read once more if it is not);
 *   direct  the same file, dropped from the host's page cache before each
 *           pass (fdatasync, posix_fadvise DONTNEED; the residency left is
 *           measured with mincore and reported), so the pass reads the disk;
 *           and ufvm's store is opened with O_DIRECT (cfg.direct_io, as
 *           UFVM_DIRECT_IO=1 would), so its reads and write-back bypass the
 *           host's page cache and the host's readahead: ufvm's own
 *           readahead is all there is.  The kernel's mmap pass reads the
 *           dropped file through the host's page cache, as mmap must.  The
 *           share of the file in the host's page cache after each pass
 *           (before any check reads it) is measured too: ~0 after ufvm's.
 * Any store: UFVM_DIRECT_IO=1 (or --direct-io=1 before `bench`) opens
 * ufvm's store with O_DIRECT; the result records it (options.direct_io).
 *
 * Shuffled reads under a budget (tmpfs and file stores) also time a bare
 * pass after each round's kernel pass (pf_bare_worker(): the system calls
 * of each miss, one page at a time, without a fault): what ufvm's fault
 * path and reclaim add to, or save on, the kernel's part of a miss.
 *
 * umap's figures are constants from issue 6 (measured there on this machine
 * kind), not measured here: 21-33 us/page from a tmpfs store, ~70 us/page
 * with O_DIRECT.  The targets (reads only): at least 10x faster than umap
 * sequentially and 4x shuffled; tmpfs and file runs are judged against the
 * low end of umap's tmpfs figure (21 us), direct runs against 70 us.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "bench/bench.h"

#define PF_WORDS		(BENCH_PAGE / sizeof(uint64_t))	/* 512 */
#define PF_MAX_THREADS		64
#define PF_MAX_REPS		64

#define PF_UMAP_TMPFS_LO_NS	21000.0	/* issue 6: umap, tmpfs store, 21-33 us/page */
#define PF_UMAP_TMPFS_HI_NS	33000.0
#define PF_UMAP_DIRECT_NS	70000.0	/* issue 6: umap, O_DIRECT store, ~70 us/page */
#define PF_TARGET_SEQ		10.0	/* x faster than umap, sequential reads */
#define PF_TARGET_SHUFFLE	4.0	/* x faster than umap, shuffled reads */

#define PF_TMPFS_MAGIC		0x01021994

static uint64_t pf_pages = 131072;
static uint64_t pf_threads = 2;
static uint64_t pf_seed = 1;
static bool pf_shuffle, pf_write, pf_rmw;
static const char *pf_cache;
static const char *pf_store = "file";
static const char *pf_backend;

static const struct bench_opt pf_opts[] = {
	{ "pages", BOPT_UINT, &pf_pages, NULL, "pages of 4 KiB in the file" },
	{ "threads", BOPT_UINT, &pf_threads, NULL, "threads sharing the index list" },
	{ "shuffle", BOPT_FLAG, &pf_shuffle, NULL, "shuffle the index list (fixed seed)" },
	{ "seed", BOPT_UINT, &pf_seed, NULL, "seed of the shuffle" },
	{ "write", BOPT_FLAG, &pf_write, NULL, "write each page's word instead of reading it" },
	{ "rmw", BOPT_FLAG, &pf_rmw, NULL, "read, check and write back each word plus one" },
	{ "cache", BOPT_STR, &pf_cache, NULL,
	  "ufvm's page-cache budget: pages, a size (K/M/G) or a share of the file (1/8); "
	  "default UFVM_CACHE_PAGES, else none" },
	{ "store", BOPT_STR, &pf_store, NULL,
	  "tmpfs (/dev/shm), file (--dir, host page cache warm) or direct (--dir, dropped "
	  "from the host page cache before each pass; ufvm's store opened O_DIRECT)" },
	{ "backend", BOPT_STR, &pf_backend, NULL,
	  "uffd, sigsegv or auto; default UFVM_BACKEND, else auto" },
	{ NULL },
};

enum pf_store { PF_TMPFS, PF_FILE, PF_DIRECT };
enum pf_mode { PF_READ, PF_WRITE, PF_RMW };

static const char *const pf_store_names[] = { "tmpfs", "file", "direct" };
static const char *const pf_mode_names[] = { "read", "write", "rmw" };

/* ---- one pass: the threads over the index list ---- */

struct pf_pass {
	char *base;
	const uint64_t *order;		/* NULL: sequential */
	uint64_t pages;
	enum pf_mode mode;
	uint64_t gen;			/* page i holds i * 512 + gen before the pass */
	void *(*worker)(void *);	/* pf_worker, or pf_bare_worker */
	int store_fd, memfd, uffd;	/* the bare pass's */
	uint64_t keep;			/* the bare pass: pages a thread keeps */
	pthread_mutex_t lock;		/* the start gate */
	pthread_cond_t cond;
	bool go, cancel;
};

struct pf_thread {
	struct pf_pass *p;
	pthread_t th;
	uint64_t lo, hi;		/* its part of the index list */
	uint64_t end_ns;		/* when its loop ended */
	uint64_t bad;			/* words that were not as expected */
	uint64_t minflt, majflt;	/* this thread's kernel faults in the loop */
	int err;			/* the bare pass: a system call failed */
};

/* Wait at the start gate.  Return: false if the pass was cancelled. */
static bool pf_gate(struct pf_pass *p)
{
	pthread_mutex_lock(&p->lock);
	while (!p->go && !p->cancel)
		pthread_cond_wait(&p->cond, &p->lock);
	pthread_mutex_unlock(&p->lock);
	return !p->cancel;
}

static void *pf_worker(void *arg)
{
	struct pf_thread *t = arg;
	struct pf_pass *p = t->p;
	struct rusage r0, r1;
	uint64_t k, bad = 0;

	getrusage(RUSAGE_THREAD, &r0);
	if (!pf_gate(p))
		return NULL;
	for (k = t->lo; k < t->hi; k++) {
		uint64_t i = p->order ? p->order[k] : k;
		volatile uint64_t *w = (volatile uint64_t *)(p->base + i * BENCH_PAGE);
		uint64_t want = i * PF_WORDS + p->gen, v;

		switch (p->mode) {
		case PF_READ:
			bad += *w != want;
			break;
		case PF_WRITE:
			*w = want + 1;
			break;
		case PF_RMW:
			v = *w;
			bad += v != want;
			*w = v + 1;
			break;
		}
	}
	t->end_ns = bench_now_ns();
	getrusage(RUSAGE_THREAD, &r1);
	t->bad = bad;
	t->minflt = (uint64_t)(r1.ru_minflt - r0.ru_minflt);
	t->majflt = (uint64_t)(r1.ru_majflt - r0.ru_majflt);
	return NULL;
}

/*
 * The bare pass: each page of the thread's part by the system calls of a
 * miss under a budget, with no fault and no bookkeeping: the store's bytes
 * read into a buffer, UFFDIO_COPY into a MISSING-registered mapping of a
 * memfd (the frame made and mapped in one call), the word checked; and
 * once the thread holds its share of the budget, the MADV_DONTNEED and
 * the punch of its oldest page.  Not a floor: it unmaps page by page, and
 * with another thread running each unmap costs a TLB shootdown, which
 * ufvm's batched zaps under a region's ptl mostly avoid.
 */
static void *pf_bare_worker(void *arg)
{
	struct pf_thread *t = arg;
	struct pf_pass *p = t->p;
	uint64_t *ring = calloc(p->keep ? p->keep : 1, sizeof(*ring));
	char *buf = aligned_alloc(BENCH_PAGE, BENCH_PAGE);
	uint64_t k, n = 0, bad = 0;

	if (!ring || !buf)
		t->err = -ENOMEM;
	if (!pf_gate(p) || t->err)
		goto out;
	for (k = t->lo; k < t->hi; k++) {
		uint64_t i = p->order ? p->order[k] : k, j;
		char *a = p->base + i * BENCH_PAGE;
		struct uffdio_copy c = {
			.dst = (uintptr_t)a, .src = (uintptr_t)buf, .len = BENCH_PAGE,
			.mode = UFFDIO_COPY_MODE_DONTWAKE,
		};
		ssize_t got = pread(p->store_fd, buf, BENCH_PAGE, (off_t)(i * BENCH_PAGE));

		if (got != (ssize_t)BENCH_PAGE || ioctl(p->uffd, UFFDIO_COPY, &c)) {
			t->err = got < 0 || got == (ssize_t)BENCH_PAGE ? -errno : -EIO;
			break;
		}
		bad += *(volatile uint64_t *)a != i * PF_WORDS + p->gen;
		if (!p->keep)
			continue;
		if (n >= p->keep) {
			j = ring[n % p->keep];
			if (madvise(p->base + j * BENCH_PAGE, BENCH_PAGE, MADV_DONTNEED) ||
			    fallocate(p->memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
				      (off_t)(j * BENCH_PAGE), BENCH_PAGE)) {
				t->err = -errno;
				break;
			}
		}
		ring[n++ % p->keep] = i;
	}
	t->end_ns = bench_now_ns();
	t->bad = bad;
out:
	free(ring);
	free(buf);
	return NULL;
}

struct pf_timing {
	uint64_t wall_ns;
	uint64_t bad;
	uint64_t minflt, majflt;	/* summed over the threads */
};

/*
 * Run the pass's threads; the wall time runs from opening the start gate
 * to the end of the last thread's loop.
 */
static int pf_run_threads(struct pf_pass *p, unsigned int nthreads, struct pf_timing *out)
{
	struct pf_thread th[PF_MAX_THREADS];
	unsigned int i, started = 0;
	uint64_t t0 = 0;
	int err = 0;

	memset(out, 0, sizeof(*out));
	memset(th, 0, sizeof(th));
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	p->go = false;
	p->cancel = false;
	for (i = 0; i < nthreads && !err; i++) {
		th[i].p = p;
		th[i].lo = p->pages * i / nthreads;
		th[i].hi = p->pages * (i + 1) / nthreads;
		err = -pthread_create(&th[i].th, NULL, p->worker ? p->worker : pf_worker, &th[i]);
		if (!err)
			started++;
	}
	pthread_mutex_lock(&p->lock);
	if (err)
		p->cancel = true;
	else
		p->go = true;
	t0 = bench_now_ns();
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	for (i = 0; i < started; i++) {
		pthread_join(th[i].th, NULL);
		if (!err && th[i].end_ns - t0 > out->wall_ns)
			out->wall_ns = th[i].end_ns - t0;
		out->bad += th[i].bad;
		out->minflt += th[i].minflt;
		out->majflt += th[i].majflt;
	}
	pthread_cond_destroy(&p->cond);
	pthread_mutex_destroy(&p->lock);
	if (err)
		fprintf(stderr, "ufvm bench pf: pthread_create: %s\n", strerror(-err));
	for (i = 0; i < started && !err; i++)
		err = th[i].err;
	return err;
}

/* ---- the store file ---- */

/* Fill @fd with the pages' words: i * 512 at the start of page i, zeros elsewhere. */
static int pf_fill(int fd, uint64_t pages)
{
	static uint64_t buf[256 * PF_WORDS];	/* 1 MiB */
	uint64_t i = 0, n, j;

	memset(buf, 0, sizeof(buf));
	while (i < pages) {
		n = pages - i < 256 ? pages - i : 256;
		for (j = 0; j < n; j++)
			buf[j * PF_WORDS] = (i + j) * PF_WORDS;
		if (pwrite(fd, buf, n * BENCH_PAGE, (off_t)(i * BENCH_PAGE)) !=
		    (ssize_t)(n * BENCH_PAGE))
			return -EIO;
		i += n;
	}
	return fdatasync(fd) ? -errno : 0;
}

/* Every page's word read back with pread: mismatches in *@bad. */
static int pf_verify(int fd, uint64_t pages, uint64_t gen, uint64_t *bad)
{
	static uint64_t buf[256 * PF_WORDS];
	uint64_t i = 0, n, j;

	*bad = 0;
	while (i < pages) {
		n = pages - i < 256 ? pages - i : 256;
		if (pread(fd, buf, n * BENCH_PAGE, (off_t)(i * BENCH_PAGE)) !=
		    (ssize_t)(n * BENCH_PAGE))
			return -EIO;
		for (j = 0; j < n; j++)
			*bad += buf[j * PF_WORDS] != (i + j) * PF_WORDS + gen;
		i += n;
	}
	return 0;
}

/* The share of the file's pages in the host's page cache (mincore). */
static double pf_resident(int fd, uint64_t pages)
{
	size_t len = pages * BENCH_PAGE;
	unsigned char *vec = malloc(pages);
	uint64_t i, n = 0;
	void *p;

	if (!vec)
		return -1;
	p = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED || mincore(p, len, vec)) {
		if (p != MAP_FAILED)
			munmap(p, len);
		free(vec);
		return -1;
	}
	for (i = 0; i < pages; i++)
		n += vec[i] & 1;
	munmap(p, len);
	free(vec);
	return (double)n / (double)pages;
}

/*
 * Make the host's page cache what --store says before a pass: direct, the
 * file dropped from it; file, all of it there.  Return the share resident.
 */
static double pf_prepare(enum pf_store store, int fd, uint64_t pages)
{
	static char buf[1 << 20];
	off_t off;

	if (store == PF_DIRECT) {
		fdatasync(fd);
		posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
	} else if (store == PF_FILE && pf_resident(fd, pages) < 1) {
		for (off = 0; pread(fd, buf, sizeof(buf), off) > 0; off += (off_t)sizeof(buf))
			;
	}
	return pf_resident(fd, pages);
}

static const char *pf_fs_name(const char *path)
{
	struct statfs sf;

	if (statfs(path, &sf))
		return "?";
	switch ((unsigned long)sf.f_type) {
	case PF_TMPFS_MAGIC:
		return "tmpfs";
	case 0xef53:
		return "ext4";
	case 0x58465342:
		return "xfs";
	case 0x9123683e:
		return "btrfs";
	default:
		return "other";
	}
}

/* ---- ufvm and the kernel ---- */

struct pf_one {
	double ns_per_page;
	double faults;		/* ufvm's fault counter, or the threads' kernel faults */
	double major;		/* the kernel's major faults */
	double store_reads, store_read_pages;
	double evictions, cached_max;
	double sync_ms;		/* ufvm_sync or msync after a writing pass */
	double resident;	/* host page cache share before the pass */
	double resident_after;	/* ... after it, before the file is checked */
};

static int pf_check(const char *who, const struct pf_timing *t, int fd, uint64_t *gen,
		    bool writes)
{
	uint64_t bad = 0;
	int err;

	if (t->bad) {
		fprintf(stderr, "ufvm bench pf: %s: %llu words were not as expected\n", who,
			(unsigned long long)t->bad);
		return -EIO;
	}
	if (!writes)
		return 0;
	(*gen)++;
	err = pf_verify(fd, pf_pages, *gen, &bad);
	if (!err && bad) {
		fprintf(stderr, "ufvm bench pf: %s: the file read back with pread differs in "
			"%llu pages\n", who, (unsigned long long)bad);
		err = -EIO;
	}
	return err;
}

static int pf_ufvm_pass(const struct ufvm_config *cfg, const char *path, int fd,
			struct pf_pass *p, unsigned int nthreads, uint64_t *gen,
			struct pf_one *res, char **stats)
{
	bool writes = p->mode != PF_READ;
	size_t len = p->pages * BENCH_PAGE;
	struct ufvm_stats st;
	struct pf_timing t;
	struct ufvm_file *f;
	struct ufvm *vm;
	void *addr;
	int err, e;

	err = bench_open(cfg, &vm);
	if (err)
		return err;
	err = ufvm_file_open(vm, path, writes ? UFVM_RDWR : UFVM_RDONLY, &f);
	if (!err)
		err = ufvm_map_file(f, 0, len, UFVM_PROT_READ | (writes ? UFVM_PROT_WRITE : 0),
				    0, &addr);
	if (err) {
		fprintf(stderr, "ufvm bench pf: mapping %s: %s\n", path, ufvm_strerror(err));
		ufvm_close(vm);
		return err;
	}
	p->base = addr;
	err = pf_run_threads(p, nthreads, &t);
	if (!err)
		err = ufvm_stats(vm, &st);
	if (!err) {
		res->ns_per_page = (double)t.wall_ns / (double)p->pages;
		res->faults = (double)st.counters[UFVM_CTR_FAULTS] +
			      (bench_kernel_faults_too(vm) ? (double)(t.minflt + t.majflt) : 0);
		res->store_reads = (double)st.counters[UFVM_CTR_STORE_READS];
		res->store_read_pages = (double)st.counters[UFVM_CTR_STORE_READ_PAGES];
		res->evictions = (double)st.counters[UFVM_CTR_EVICTIONS];
		res->cached_max = (double)st.cached_pages_max;
	}
	if (!err && writes) {
		uint64_t t0 = bench_now_ns();

		err = ufvm_sync(vm, addr, len);
		res->sync_ms = (double)(bench_now_ns() - t0) / 1e6;
		if (err)
			fprintf(stderr, "ufvm bench pf: ufvm_sync: %s\n", ufvm_strerror(err));
	}
	if (!err && stats) {
		free(*stats);
		*stats = bench_stats_text(vm);
	}
	e = ufvm_close(vm);
	if (e && !err) {
		fprintf(stderr, "ufvm bench pf: ufvm_close: %s\n", ufvm_strerror(e));
		err = e;
	}
	res->resident_after = pf_resident(fd, p->pages);
	if (!err)
		err = pf_check("ufvm", &t, fd, gen, writes);
	return err;
}

static int pf_kernel_pass(int fd, struct pf_pass *p, unsigned int nthreads, uint64_t *gen,
			  struct pf_one *res)
{
	bool writes = p->mode != PF_READ;
	size_t len = p->pages * BENCH_PAGE;
	struct pf_timing t;
	void *addr;
	int err;

	addr = mmap(NULL, len, PROT_READ | (writes ? PROT_WRITE : 0), MAP_SHARED, fd, 0);
	if (addr == MAP_FAILED)
		return -errno;
	p->base = addr;
	err = pf_run_threads(p, nthreads, &t);
	res->ns_per_page = (double)t.wall_ns / (double)p->pages;
	res->faults = (double)(t.minflt + t.majflt);
	res->major = (double)t.majflt;
	if (!err && writes) {
		uint64_t t0 = bench_now_ns();

		if (msync(addr, len, MS_SYNC))
			err = -errno;
		res->sync_ms = (double)(bench_now_ns() - t0) / 1e6;
	}
	munmap(addr, len);
	res->resident_after = pf_resident(fd, p->pages);
	if (!err)
		err = pf_check("kernel", &t, fd, gen, writes);
	return err;
}

/*
 * The bare pass over @fd's pages (pf_bare_worker), each thread keeping
 * @budget / threads pages.  Return: 0, or -errno (no userfaultfd here: the
 * caller reports the pass as not available).
 */
static int pf_bare_pass(int fd, struct pf_pass *p, unsigned int nthreads, uint64_t budget,
			struct pf_one *res)
{
	struct uffdio_api api = { .api = UFFD_API, .features = UFFD_FEATURE_MISSING_SHMEM };
	size_t len = p->pages * BENCH_PAGE;
	struct uffdio_register reg;
	struct pf_timing t;
	void *base = MAP_FAILED;
	int err = 0;

	p->uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | UFFD_USER_MODE_ONLY);
	p->memfd = memfd_create("ufvm-bench-pf-bare", MFD_CLOEXEC);
	if (p->uffd < 0 || p->memfd < 0 || ioctl(p->uffd, UFFDIO_API, &api) ||
	    ftruncate(p->memfd, (off_t)len))
		err = -errno;
	if (!err) {
		base = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, p->memfd, 0);
		if (base == MAP_FAILED)
			err = -errno;
	}
	if (!err) {
		memset(&reg, 0, sizeof(reg));
		reg.range.start = (uintptr_t)base;
		reg.range.len = len;
		reg.mode = UFFDIO_REGISTER_MODE_MISSING;
		if (ioctl(p->uffd, UFFDIO_REGISTER, &reg))
			err = -errno;
	}
	if (!err) {
		p->base = base;
		p->store_fd = fd;
		p->keep = budget / nthreads;
		p->worker = pf_bare_worker;
		err = pf_run_threads(p, nthreads, &t);
		p->worker = NULL;
		p->keep = 0;
		res->ns_per_page = (double)t.wall_ns / (double)p->pages;
		if (!err && t.bad) {
			fprintf(stderr, "ufvm bench pf: bare pass: %llu words were not as "
				"expected\n", (unsigned long long)t.bad);
			err = -EIO;
		}
	}
	if (base != MAP_FAILED)
		munmap(base, len);
	if (p->uffd >= 0)
		close(p->uffd);
	if (p->memfd >= 0)
		close(p->memfd);
	return err;
}

/* ---- options, figures, output ---- */

/*
 * --cache: pages, a size, or a share of the file's @pages.  A share must
 * come to at least one page: 0/8 or 1/64 of 32 pages is no budget at
 * all, which is not what was asked (0 pages, "--cache 0", says so).
 */
static int pf_parse_cache(const char *s, uint64_t pages, uint64_t *out)
{
	const char *slash = strchr(s, '/');
	uint64_t v, d, share;
	char num[32];

	if (slash) {
		if ((size_t)(slash - s) >= sizeof(num))
			return -EINVAL;
		memcpy(num, s, (size_t)(slash - s));
		num[slash - s] = 0;
		if (ufvm_parse_size(num, 1, &v) || ufvm_parse_size(slash + 1, 1, &d) || !d ||
		    v > d || __builtin_mul_overflow(pages, v, &share) || !(share / d))
			return -EINVAL;
		*out = share / d;
		return 0;
	}
	if (ufvm_parse_size(s, BENCH_PAGE, &v))	/* pages, or a size in bytes */
		return -EINVAL;
	*out = v / BENCH_PAGE;
	return 0;
}

/* Median of @v[0..n) with its minimum and maximum (sorts a copy). */
static double pf_median(const double *v, unsigned int n, double *lo, double *hi)
{
	double c[PF_MAX_REPS];

	memcpy(c, v, n * sizeof(*v));
	bench_median(c, n);	/* sorts */
	if (lo)
		*lo = c[0];
	if (hi)
		*hi = c[n - 1];
	return bench_median(c, n);
}

#define PF_FIELDS (sizeof(struct pf_one) / sizeof(double))

static void pf_medians(struct pf_one *out, const struct pf_one *runs, unsigned int n)
{
	double v[PF_MAX_REPS];
	unsigned int r;
	size_t f;

	for (f = 0; f < PF_FIELDS; f++) {
		for (r = 0; r < n; r++)
			v[r] = ((const double *)&runs[r])[f];
		((double *)out)[f] = pf_median(v, n, NULL, NULL);
	}
}

static void pf_json_runs(struct jw *w, const char *key, const struct pf_one *runs,
			 unsigned int n)
{
	unsigned int r;

	jw_arr(w, key);
	for (r = 0; r < n; r++)
		jw_num(w, NULL, runs[r].ns_per_page);
	jw_end(w, ']');
}

/* A run's settings and figures, for the table and the JSON. */
struct pf_run {
	enum pf_store store;
	enum pf_mode mode;
	unsigned int nthreads, reps;
	struct ufvm_config cfg;
	char path[4096];
	const char *fs;
	struct pf_one ur[PF_MAX_REPS], kr[PF_MAX_REPS];	/* per round */
	struct pf_one br[PF_MAX_REPS];			/* the bare pass's */
	struct pf_one u, k, b;				/* medians */
	double ulo, uhi, klo, khi, blo, bhi;		/* ns/page spread */
	bool bare;					/* shuffled reads, a budget */
	int bare_err;					/* the bare pass could not run */
	double umap_ns, umap_hi, target, speedup;
	char *stats;					/* the last ufvm instance's */
};

/* --store's index in pf_store_names, or PF_DIRECT + 1. */
static enum pf_store pf_store_find(void)
{
	enum pf_store s;

	for (s = PF_TMPFS; s <= PF_DIRECT; s++)
		if (!strcmp(pf_store, pf_store_names[s]))
			break;
	return s;
}

static int pf_check_options(const struct bench_ctx *bx)
{
	uint64_t budget;

	if (pf_store_find() > PF_DIRECT) {
		fprintf(stderr, "ufvm bench pf: --store %s: expected tmpfs, file or direct\n",
			pf_store);
		return -EINVAL;
	}
	if (bench_check_range("pf", "threads", pf_threads, 1, PF_MAX_THREADS) ||
	    bench_check_range("pf", "reps", bx->reps, 1, PF_MAX_REPS))
		return -EINVAL;
	if (bench_check_range("pf", "pages", pf_pages, 1, BENCH_PAGES_MAX))
		return -EINVAL;
	if (pf_pages < pf_threads) {
		fprintf(stderr, "ufvm bench pf: --pages %llu: expected at least --threads "
			"(%llu)\n", (unsigned long long)pf_pages, (unsigned long long)pf_threads);
		return -EINVAL;
	}
	if (pf_write && pf_rmw) {
		fprintf(stderr, "ufvm bench pf: --write and --rmw: expected at most one\n");
		return -EINVAL;
	}
	if (pf_cache && pf_parse_cache(pf_cache, pf_pages, &budget)) {
		fprintf(stderr, "ufvm bench pf: --cache %s: expected pages, a size with K/M/G, "
			"or a share of the file such as 1/8 that comes to a page or more\n",
			pf_cache);
		return -EINVAL;
	}
	if (pf_cache) {
		struct ufvm_config cfg;
		char val[64];

		if (bench_config(&cfg))
			return -EINVAL;
		cfg.cache_pages = budget;
		snprintf(val, sizeof(val), "%s (%llu pages)", pf_cache,
			 (unsigned long long)budget);
		if (bench_check_config("pf", "cache", val, &cfg))
			return -EINVAL;
	}
	return bench_check_backend(pf_backend, "pf");
}

/* Make the configuration of the options pf_check_options() accepted.  Return: 0 or -errno. */
static int pf_setup(struct pf_run *pr, unsigned int reps)
{
	int err;

	pr->reps = reps;
	pr->nthreads = (unsigned int)pf_threads;
	pr->mode = pf_rmw ? PF_RMW : pf_write ? PF_WRITE : PF_READ;
	pr->store = pf_store_find();
	err = bench_config(&pr->cfg);
	if (!err)
		err = bench_set_backend(&pr->cfg, pf_backend, "pf");
	if (err)
		return err;
	if (pf_cache)
		pf_parse_cache(pf_cache, pf_pages, &pr->cfg.cache_pages);
	if (pr->store == PF_DIRECT) {
		pr->cfg.direct_io = 1;
		pr->umap_ns = PF_UMAP_DIRECT_NS;
		pr->umap_hi = PF_UMAP_DIRECT_NS;
	} else {
		pr->umap_ns = PF_UMAP_TMPFS_LO_NS;
		pr->umap_hi = PF_UMAP_TMPFS_HI_NS;
	}
	pr->target = pf_shuffle ? PF_TARGET_SHUFFLE : PF_TARGET_SEQ;
	/* The bare pass: the system calls of misses one page at a time. */
	pr->bare = pf_shuffle && pr->mode == PF_READ && pr->store != PF_DIRECT &&
		   pr->cfg.cache_pages && pr->cfg.cache_pages < pf_pages;
	return 0;
}

/* Make and fill the store file; open it in *@fd. */
static int pf_file(struct bench_ctx *bx, struct pf_run *pr, int *fd)
{
	struct bench_ctx fbx = *bx;
	char tag[64];
	int err;

	if (pr->store == PF_TMPFS) {
		fbx.dir = "/dev/shm";
		snprintf(tag, sizeof(tag), "ufvm-bench-pf.%d", (int)getpid());
	} else {
		snprintf(tag, sizeof(tag), "pf");
	}
	err = bench_file_create(&fbx, tag, pf_pages, true, pr->path, sizeof(pr->path));
	if (err) {
		fprintf(stderr, "ufvm bench pf: store file in %s: %s\n", fbx.dir, strerror(-err));
		pr->path[0] = 0;
		return err;
	}
	pr->fs = pf_fs_name(pr->path);
	if (pr->store == PF_DIRECT && !strcmp(pr->fs, "tmpfs")) {
		fprintf(stderr, "ufvm bench pf: --store direct needs a file on disk; %s is on "
			"tmpfs (--dir)\n", fbx.dir);
		return -EINVAL;
	}
	*fd = open(pr->path, O_RDWR | O_CLOEXEC);
	if (*fd < 0)
		return -errno;
	err = pf_fill(*fd, pf_pages);
	if (err)
		fprintf(stderr, "ufvm bench pf: writing %s: %s\n", pr->path, strerror(-err));
	return err;
}

/* --reps rounds, each ufvm then the kernel (so that load moves both); medians. */
static int pf_rounds(struct pf_run *pr, int fd, const uint64_t *order)
{
	struct pf_pass pass = { .order = order, .pages = pf_pages, .mode = pr->mode };
	double uns[PF_MAX_REPS], kns[PF_MAX_REPS], bns[PF_MAX_REPS];
	uint64_t gen = 0;
	unsigned int r;
	int err = 0;

	for (r = 0; r < pr->reps && !err; r++) {
		pr->ur[r].resident = pf_prepare(pr->store, fd, pf_pages);
		pass.gen = gen;
		err = pf_ufvm_pass(&pr->cfg, pr->path, fd, &pass, pr->nthreads, &gen, &pr->ur[r],
				   r == pr->reps - 1 ? &pr->stats : NULL);
		if (err)
			break;
		pr->kr[r].resident = pf_prepare(pr->store, fd, pf_pages);
		pass.gen = gen;
		err = pf_kernel_pass(fd, &pass, pr->nthreads, &gen, &pr->kr[r]);
		uns[r] = pr->ur[r].ns_per_page;
		kns[r] = pr->kr[r].ns_per_page;
		if (err || !pr->bare || pr->bare_err)
			continue;
		pf_prepare(pr->store, fd, pf_pages);
		pass.gen = gen;
		pr->bare_err = pf_bare_pass(fd, &pass, pr->nthreads, pr->cfg.cache_pages,
					    &pr->br[r]);
		if (pr->bare_err == -EIO)
			err = -EIO;	/* wrong bytes: the bench is wrong */
		else if (pr->bare_err)
			fprintf(stderr, "ufvm bench pf: the bare pass is not available: %s\n",
				strerror(-pr->bare_err));
		bns[r] = pr->br[r].ns_per_page;
	}
	if (err)
		return err;
	if (pr->bare && !pr->bare_err) {
		pf_medians(&pr->b, pr->br, pr->reps);
		pf_median(bns, pr->reps, &pr->blo, &pr->bhi);
	}
	pf_medians(&pr->u, pr->ur, pr->reps);
	pf_medians(&pr->k, pr->kr, pr->reps);
	pf_median(uns, pr->reps, &pr->ulo, &pr->uhi);
	pf_median(kns, pr->reps, &pr->klo, &pr->khi);
	pr->speedup = pr->umap_ns / pr->u.ns_per_page;
	return 0;
}

/* The memfds a striped file of the run has: the sigsegv backend stripes none. */
static unsigned int pf_stripes(const struct pf_run *pr)
{
	return pr->cfg.backend == UFVM_BACKEND_SIGSEGV ? 1 : pr->cfg.frame_stripes;
}

static void pf_print(FILE *out, const struct pf_run *pr)
{
	const struct pf_one *u = &pr->u, *k = &pr->k;
	uint64_t budget = pr->cfg.cache_pages;
	char b1[32], b2[32];

	fprintf(out, "%llu pages of 4 KiB (%llu MiB), %u threads, %s order, %s%s\n",
		(unsigned long long)pf_pages, (unsigned long long)(pf_pages * BENCH_PAGE >> 20),
		pr->nthreads, pf_shuffle ? "shuffled" : "sequential", pf_mode_names[pr->mode],
		pr->mode == PF_READ ? " (every word checked)" :
		", the file read back with pread after each pass");
	fprintf(out, "store %s: %s (%s)", pf_store_names[pr->store], pr->path, pr->fs);
	if (pr->store == PF_TMPFS)
		fprintf(out, "\n");
	else if (pr->store == PF_FILE)
		fprintf(out, ", in the host page cache (%.0f%% resident before each pass)\n",
			u->resident * 100);
	else
		fprintf(out, ", dropped from the host page cache before\n  each pass "
			"(fdatasync + fadvise DONTNEED; %.1f%% left resident)\n",
			u->resident * 100);
	if (pr->cfg.direct_io)
		fprintf(out, "ufvm's store opened with O_DIRECT: %.1f%% of the file in the host "
			"page cache after its passes\n  (after the kernel's: %.1f%%)\n",
			u->resident_after * 100, k->resident_after * 100);
	fprintf(out, "ufvm: backend %s, cache budget ", bench_backend_name(&pr->cfg));
	if (budget)
		fprintf(out, "%llu pages (%.3g of the file)", (unsigned long long)budget,
			(double)budget / (double)pf_pages);
	else
		fprintf(out, "none");
	fprintf(out, ", readahead %u, fault-around %u, map-ahead %u, write-ahead %u, "
		"frame stripes %u\n", pr->cfg.readahead, pr->cfg.fault_around, pr->cfg.map_ahead,
		pr->cfg.write_ahead, pf_stripes(pr));
	fprintf(out, "medians of %u rounds, each ufvm (a fresh instance) then the kernel's "
		"mmap(MAP_SHARED) of the file\n\n", pr->reps);
	fprintf(out, "%-8s %10s %10s %10s %10s %12s %12s\n", "", "ns/page", "min", "max",
		"faults", "store reads", "(pages)");
	fprintf(out, "%-8s %10.0f %10.0f %10.0f %10.0f %12.0f %12.0f\n", "ufvm",
		u->ns_per_page, pr->ulo, pr->uhi, u->faults, u->store_reads, u->store_read_pages);
	fprintf(out, "%-8s %10.0f %10.0f %10.0f %10.0f %12s   (%.0f major)\n", "kernel",
		k->ns_per_page, pr->klo, pr->khi, k->faults, "-", k->major);
	if (pr->bare && !pr->bare_err)
		fprintf(out, "%-8s %10.0f %10.0f %10.0f %10d %12.0f\n", "bare",
			pr->b.ns_per_page, pr->blo, pr->bhi, 0, (double)pf_pages);
	fprintf(out, "\nufvm / kernel: %.2fx", u->ns_per_page / k->ns_per_page);
	if (budget)
		fprintf(out, "; ufvm cache: at most %.0f pages cached, %.0f evictions "
			"(the kernel's mapping has no budget)", u->cached_max, u->evictions);
	fprintf(out, "\n");
	if (pr->bare && !pr->bare_err)
		fprintf(out, "bare: the same pages by bare system calls, no fault: pread and "
			"UFFDIO_COPY into a memfd\n  mapping, and past the budget the "
			"MADV_DONTNEED and punch of each thread's oldest page\n  (page by "
			"page: not a floor, ufvm zaps in batches); ufvm / bare: %.2fx\n",
			u->ns_per_page / pr->b.ns_per_page);
	else if (pr->bare)
		fprintf(out, "bare: not available here (%s)\n", strerror(-pr->bare_err));
	if (pr->mode != PF_READ)
		fprintf(out, "after the pass: ufvm_sync %.1f ms, msync %.1f ms; every pass's "
			"writes read back with pread: all as expected\n", u->sync_ms, k->sync_ms);

	fprintf(out, "\numap (issue 6's figures, not measured here): 21-33 us/page from a "
		"tmpfs store, ~70 us/page O_DIRECT\n");
	fprintf(out, "  ufvm %s is %.1fx %s than umap's %s (%s)",
		bench_fmt_ns(b1, sizeof(b1), u->ns_per_page),
		pr->speedup >= 1 ? pr->speedup : 1 / pr->speedup,
		pr->speedup >= 1 ? "faster" : "slower", bench_fmt_ns(b2, sizeof(b2), pr->umap_ns),
		pr->store == PF_DIRECT ? "O_DIRECT" : "tmpfs, low end");
	if (pr->mode == PF_READ)
		fprintf(out, ": target (issue 6, %s reads, %s) >= %.0fx: %s\n",
			pf_shuffle ? "shuffled" : "sequential", budget ? "with a budget" : "no budget",
			pr->target, pr->speedup >= pr->target ? "met" : "MISSED");
	else
		fprintf(out, " (the targets are for reads)\n");
	if (pr->bare && !pr->bare_err)
		fprintf(out, "  the bare system calls alone: %s, %.1fx faster than umap's %s\n",
			bench_fmt_ns(b1, sizeof(b1), pr->b.ns_per_page),
			pr->umap_ns / pr->b.ns_per_page, bench_fmt_ns(b2, sizeof(b2), pr->umap_ns));
}

static void pf_json(struct bench_ctx *bx, const struct pf_run *pr)
{
	const struct pf_one *u = &pr->u, *k = &pr->k;
	struct jw *w = bx->jw;

	jw_num(w, "ufvm_ns_per_page", u->ns_per_page);
	jw_num(w, "kernel_ns_per_page", k->ns_per_page);
	jw_num(w, "faults", u->faults);
	jw_num(w, "store_reads", u->store_reads);
	jw_num(w, "store_read_pages", u->store_read_pages);
	jw_num(w, "kernel_faults", k->faults);
	jw_num(w, "kernel_major_faults", k->major);
	jw_num(w, "ratio_to_kernel", u->ns_per_page / k->ns_per_page);
	jw_num(w, "ufvm_ns_per_page_min", pr->ulo);
	jw_num(w, "ufvm_ns_per_page_max", pr->uhi);
	jw_num(w, "kernel_ns_per_page_min", pr->klo);
	jw_num(w, "kernel_ns_per_page_max", pr->khi);
	pf_json_runs(w, "ufvm_runs", pr->ur, pr->reps);
	pf_json_runs(w, "kernel_runs", pr->kr, pr->reps);
	if (pr->bare && !pr->bare_err) {
		jw_num(w, "bare_ns_per_page", pr->b.ns_per_page);
		jw_num(w, "bare_ns_per_page_min", pr->blo);
		jw_num(w, "bare_ns_per_page_max", pr->bhi);
		pf_json_runs(w, "bare_runs", pr->br, pr->reps);
		jw_num(w, "ratio_to_bare", u->ns_per_page / pr->b.ns_per_page);
	} else {
		jw_null(w, "bare_ns_per_page");
		if (pr->bare)
			jw_str(w, "bare_error", strerror(-pr->bare_err));
	}
	jw_num(w, "evictions", u->evictions);
	jw_num(w, "cached_pages_max", u->cached_max);
	if (pr->mode != PF_READ) {
		jw_num(w, "ufvm_sync_ms", u->sync_ms);
		jw_num(w, "kernel_msync_ms", k->sync_ms);
	}
	jw_num(w, "host_cache_resident_ufvm", u->resident);
	jw_num(w, "host_cache_resident_kernel", k->resident);
	jw_num(w, "host_cache_resident_after_ufvm", u->resident_after);
	jw_num(w, "host_cache_resident_after_kernel", k->resident_after);
	jw_bool(w, "verified", true);

	jw_obj(w, "options");
	jw_u64(w, "pages", pf_pages);
	jw_u64(w, "threads", pr->nthreads);
	jw_bool(w, "shuffle", pf_shuffle);
	jw_u64(w, "seed", pf_seed);
	jw_str(w, "access", pf_mode_names[pr->mode]);
	jw_str(w, "store", pf_store_names[pr->store]);
	jw_str(w, "store_fs", pr->fs);
	jw_bool(w, "direct_io", pr->cfg.direct_io);
	jw_str(w, "store_note", pr->store == PF_DIRECT ?
	       "dropped from the host page cache (fdatasync + POSIX_FADV_DONTNEED) before each "
	       "pass; ufvm's store opened with O_DIRECT (direct_io), the kernel's mmap reads "
	       "through the host page cache" :
	       pr->store == PF_FILE ? "wholly in the host page cache before each pass" :
	       "a file in /dev/shm");
	jw_str(w, "backend", bench_backend_name(&pr->cfg));
	if (pf_cache)
		jw_str(w, "cache", pf_cache);
	else
		jw_null(w, "cache");
	jw_u64(w, "cache_pages", pr->cfg.cache_pages);
	jw_u64(w, "readahead", pr->cfg.readahead);
	jw_u64(w, "fault_around", pr->cfg.fault_around);
	jw_u64(w, "map_ahead", pr->cfg.map_ahead);
	jw_u64(w, "write_ahead", pr->cfg.write_ahead);
	jw_u64(w, "frame_stripes", pf_stripes(pr));
	jw_end(w, '}');

	jw_obj(w, "umap");
	jw_str(w, "source", "issue 6 (not measured here)");
	jw_num(w, "tmpfs_ns_per_page_low", PF_UMAP_TMPFS_LO_NS);
	jw_num(w, "tmpfs_ns_per_page_high", PF_UMAP_TMPFS_HI_NS);
	jw_num(w, "direct_ns_per_page", PF_UMAP_DIRECT_NS);
	jw_num(w, "compared_ns_per_page", pr->umap_ns);
	jw_num(w, "compared_ns_per_page_high", pr->umap_hi);
	jw_num(w, "speedup", pr->speedup);
	jw_end(w, '}');
	if (pr->mode == PF_READ) {
		jw_obj(w, "targets");
		jw_num(w, "speedup_vs_umap", pr->speedup);
		jw_num(w, "speedup_target", pr->target);
		jw_bool(w, "met", pr->speedup >= pr->target);
		jw_end(w, '}');
	}
	bench_embed_text(bx, "stats", pr->stats);
}

static int pf_run(struct bench_ctx *bx)
{
	struct pf_run *pr = calloc(1, sizeof(*pr));
	uint64_t *order = NULL;
	int fd = -1, err;

	if (!pr)
		return -ENOMEM;
	err = pf_setup(pr, bx->reps);
	if (err)
		goto out;
	err = pf_file(bx, pr, &fd);
	if (!err && pf_shuffle) {
		order = bench_perm(pf_pages, 1, pf_seed);
		if (!order)
			err = -ENOMEM;
	}
	if (!err)
		err = pf_rounds(pr, fd, order);
	if (!err) {
		pf_print(bx->out, pr);
		pf_json(bx, pr);
	}
out:
	if (fd >= 0)
		close(fd);
	if (pr->path[0])
		bench_file_remove(pr->path);
	free(order);
	free(pr->stats);
	free(pr);
	return err;
}

const struct bench_def bench_pf = {
	.name = "pf",
	.summary = "umap's pfbenchmark workload: ns/page of threads reading or writing one word "
		   "per page, ufvm and the kernel",
	.opts = pf_opts,
	.check = pf_check_options,
	.run = pf_run,
	.in_all = true,
};
