/* SPDX-License-Identifier: MIT */
/*
 * fuzz.c - `ufvm fuzz`: a differential fuzzer of the file and mapping API.
 *
 * Each worker thread owns a few store files and keeps a model of each in
 * memory: its bytes and its size.  It runs random operations on them
 * through ufvm (ufvm_pwrite, ufvm_pread, ufvm_punch, ufvm_truncate,
 * ufvm_fsync, ufvm_writeback, ufvm_file_close and open again, ufvm_map,
 * loads and stores through the mappings, ufvm_zap, ufvm_sync, and --
 * each of a whole region or of some of its pages, which cuts it --
 * ufvm_protect, ufvm_unmap_range and ufvm_map with UFVM_MAP_FIXED |
 * UFVM_MAP_REPLACE of another range over it), applies each to the model,
 * and checks every byte it reads, through a handle or a mapping, against
 * the model.  Where ufvm promises durability (a successful ufvm_fsync,
 * ufvm_sync of a range, the
 * last close of a file, ufvm_close of the instance), it reads the store
 * file itself, past ufvm, and checks that too.  The first difference ends
 * the run with the seed, the operation's number and what differed.
 *
 * The workers share one instance, so the budget (--cache before the
 * command, or UFVM_CACHE_PAGES), reclaim, write-back and readahead run
 * across their files; with one worker the instance is also closed and
 * opened again now and then.  With --shared the workers share their files
 * too, each through its own handle: every file has its full size from
 * the start, and page p belongs to worker p % workers, the only one that
 * writes, punches, reads or checks it, so one worker's fills,
 * fault-around, write-backs and punches run beside another's on the same
 * pages' neighbours.  The size is every worker's: a truncate (or a
 * pwrite that grows the file) waits for the others' operations that
 * depend on it and changes it for all, while their maps, unmaps, zaps,
 * protects and syncs go on.  A run is a function of its seed and its
 * options, up to the timing of ufvm's own threads: `--verbose` prints each
 * operation, to follow a failing seed.
 *
 * With --inject, a worker now and then makes the store writes of one of
 * its files fail (ufvm_inject(), -EIO) for a while.  Then a sync of that
 * file may fail, and any ufvm_pwrite may be refused (-EIO, -ENOSPC:
 * the cache can be full of pages no store takes), nothing written; no
 * store goes through a mapping (a refused write fault is SIGBUS), and the
 * failing file is not closed (its last close would drop the unwritten
 * pages, as documented).  Reads are checked throughout, and once the
 * store takes writes again a file's next sync may report the old error
 * once; the sync after it must succeed, with every byte in the store.
 * Or it makes the file's store reads fail for a while: then a ufvm_pread
 * or ufvm_pwrite of it (a partial page must be read first) may fail
 * (-EIO) or stop short, no load or store goes through its mappings
 * (SIGBUS), and it is not punched, truncated or closed; once its store
 * reads work again, every read must return the model's bytes (a failed
 * read may leave no page cached) and no sync may report the failure.  Or
 * it makes the store's hole punches of the file fail: a ufvm_punch that
 * gets -EIO must have changed no byte (the dirty pages of its range stay).
 *
 * With --peek, each worker has a thread that loads bytes of the worker's
 * regions while the worker changes them, as another thread of an
 * application may: its faults race the unmaps, replaces, protects, zaps,
 * punches and truncates (fz_peeker()), and, with one worker, every other
 * restart closes the instance with the files open and the regions mapped
 * while it loads from them, without a pause between loads (fz_restart()).
 * What it reads is not checked; its
 * SIGSEGVs and SIGBUSes are caught; the worker's own checks, and ufvm's
 * assertions, see what went wrong.  An address where a peek met a failing
 * store read stays poisoned for a while with handler threads
 * (documented), so the worker zaps the file's regions when such a failure
 * ends; with the other deliveries it does not: its loads must work then.
 *
 * With --jitter N, one call in N of ufvm's debug hooks (the UFVM_HOOK_*
 * points that race tests use to hold a window open) yields the CPU or
 * sleeps up to a quarter of a millisecond, in whichever thread made it:
 * the steps of ufvm's operations come apart, so that other threads' run
 * between them.  With --debug-flags, ufvm runs with protections turned
 * off (UFVM_DEBUG_*), to see which bugs the fuzzer finds (tools/fuzz.sh).
 *
 * Limits: only the accesses ufvm promises work are made (nothing past a
 * file's end through a mapping, no store while stores fail), so a failure
 * is a bug.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ufvm.h"

int ufvm_fuzz_main(int argc, char **argv);

#define FZ_PAGE		4096
#define FZ_FILES	2	/* per worker */
#define FZ_REGIONS	4	/* per worker */
#define FZ_MAX_THREADS	4
#define FZ_MAX_IO	(3 * FZ_PAGE + 123)	/* longest pwrite, pread, load, store */
#define FZ_HOOK_POINTS	32	/* UFVM_HOOK_* below this, counted (--jitter) */
#define FZ_JITTER_US	256	/* longest wait at a hook (--jitter) */

enum fz_op {
	FZ_PWRITE, FZ_PREAD, FZ_PUNCH, FZ_TRUNCATE, FZ_FSYNC, FZ_WRITEBACK,
	FZ_REOPEN, FZ_MAP, FZ_UNMAP, FZ_LOAD, FZ_STORE, FZ_PROTECT, FZ_ZAP,
	FZ_SYNC, FZ_REPLACE, FZ_CHECK, FZ_RESTART, FZ_INJECT, FZ_NOPS
};

static const char *const fz_op_names[FZ_NOPS] = {
	"pwrite", "pread", "punch", "truncate", "fsync", "writeback", "reopen", "map",
	"unmap", "load", "store", "protect", "zap", "sync", "replace", "check", "restart",
	"inject",
};

/* Relative weights of the operations. */
static const unsigned int fz_weights[FZ_NOPS] = {
	[FZ_PWRITE] = 14, [FZ_PREAD] = 10, [FZ_PUNCH] = 4, [FZ_TRUNCATE] = 4,
	[FZ_FSYNC] = 2, [FZ_WRITEBACK] = 2, [FZ_REOPEN] = 2, [FZ_MAP] = 5,
	[FZ_UNMAP] = 3, [FZ_LOAD] = 14, [FZ_STORE] = 14, [FZ_PROTECT] = 3,
	[FZ_ZAP] = 3, [FZ_SYNC] = 2, [FZ_REPLACE] = 2, [FZ_CHECK] = 1, [FZ_RESTART] = 1,
	[FZ_INJECT] = 1,	/* with --inject only */
};

/* What --inject makes fail: a file's store writes, reads or hole punches. */
enum fz_fail { FZ_FAIL_WRITES, FZ_FAIL_READS, FZ_FAIL_PUNCHES, FZ_FAIL_KINDS };

struct fz_file {
	char path[PATH_MAX];
	struct ufvm_file *f;		/* NULL while closed */
	unsigned char *model;		/* the file's bytes, zero past @size */
	off_t size;
	bool failing;			/* its store writes fail (--inject) */
	bool owed;			/* they failed: a sync may still say so once */
	bool rfailing;			/* its store reads fail (--inject) */
	bool pfailing;			/* its store's hole punches fail */
	uint64_t until[FZ_FAIL_KINDS];	/* the operation that ends each failure */
};

struct fz_region {
	unsigned char *addr;		/* NULL: a free slot */
	size_t len;			/* bytes, whole pages */
	off_t off;			/* file offset of addr */
	int file;
	int prot;			/* UFVM_PROT_* */
	bool can_write;			/* mapped writable, or from a writable handle:
					   ufvm_protect may make it writable */
};

struct fz_run;

/* A worker: its files, its mappings, its random numbers. */
struct fz_worker {
	struct fz_run *run;
	unsigned int id;
	uint64_t rng;
	uint64_t op;			/* operations done */
	const char *what;		/* the operation under way, for messages */
	struct fz_file files[FZ_FILES];
	struct fz_region regions[FZ_REGIONS];
	unsigned char buf[FZ_MAX_IO], got[FZ_MAX_IO];
	uint64_t done[FZ_NOPS];
	uint64_t refused, kept, sync_errors;	/* explained by a failing store
						   (--inject); kept: refused
						   pwrites whose growth stayed */
	uint64_t cut_short;		/* preads and pwrites a failing store
					   read failed or cut short */
	uint64_t punches_failed;	/* refused by a failing store punch */
	/*
	 * --peek: a thread that loads from this worker's regions while the
	 * worker changes them (fz_peeker()); it takes @peek_lock shared per
	 * load, the worker exclusive while it closes the instance.
	 */
	pthread_t peeker;
	bool peeking, peek_stop;
	pthread_rwlock_t peek_lock;
	uint64_t peeks, peek_segv, peek_bus;	/* loads done; signals instead */
	uint64_t restarts, live_closes;	/* restarts with --peek; of them with regions mapped */
	uint64_t peeks_closing;		/* loads begun during such a close */
	bool closing;			/* in such a close */
	bool failed;
};

struct fz_run {
	struct ufvm *vm;
	char dir[PATH_MAX];
	uint64_t seed, ops;
	unsigned int pages;		/* largest file, pages */
	unsigned int nthreads;
	bool shared;			/* the workers share worker 0's files */
	bool inject;			/* store writes fail now and then */
	bool verbose;
	uint64_t debug_flags;		/* UFVM_DEBUG_*: --debug-flags */
	/*
	 * --jitter N: one call in N of ufvm's debug hooks, from whichever
	 * thread, waits up to FZ_JITTER_US (fz_jitter()), to widen the
	 * windows between the steps of ufvm's operations.  Counted per
	 * hook point: calls, and the waits among them.
	 */
	unsigned int jitter;
	uint64_t hook_calls[FZ_HOOK_POINTS], hook_waits[FZ_HOOK_POINTS];
	bool peek;			/* --peek: fz_peeker() */
	uint64_t wa_pages;		/* writeahead_pages of the instances closed */
	bool poisons;			/* handler threads: a failed read poisons */
	/*
	 * Files failing, of every worker: while there are any, a pwrite may
	 * be refused and no store goes through a mapping.  Writes through
	 * ufvm take @lock shared, a worker that starts or ends a failure
	 * exclusive, so that no write is under way while the count changes.
	 * With --shared a file's size is every worker's: what changes it
	 * (pwrite, truncate) takes @lock exclusive and sets it in every
	 * worker's model, what depends on it takes @lock shared.
	 */
	pthread_rwlock_t lock;
	unsigned int failing;
	struct fz_worker *w[FZ_MAX_THREADS];
};

/* The next number of the sequence whose state is *@state (splitmix64). */
static uint64_t fz_next(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t fz_rand(struct fz_worker *w)
{
	return fz_next(&w->rng);
}

/* A number in [0, n); n > 0. */
static uint64_t fz_below(struct fz_worker *w, uint64_t n)
{
	return fz_rand(w) % n;
}

static off_t fz_max_bytes(const struct fz_worker *w)
{
	return (off_t)w->run->pages * FZ_PAGE;
}

/* Report a difference or an unexpected result; the worker stops. */
static __attribute__((format(printf, 2, 3))) void fz_fail(struct fz_worker *w,
							 const char *fmt, ...)
{
	va_list ap;

	flockfile(stderr);
	fprintf(stderr, "ufvm fuzz: FAIL: seed %" PRIu64 ", worker %u, operation %" PRIu64
		" (%s): ", w->run->seed, w->id, w->op, w->what);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	funlockfile(stderr);
	w->failed = true;
}

static __attribute__((format(printf, 2, 3))) void fz_trace(struct fz_worker *w,
							  const char *fmt, ...)
{
	va_list ap;

	if (!w->run->verbose)
		return;
	flockfile(stderr);
	fprintf(stderr, "[%u.%" PRIu64 "] %s ", w->id, w->op, w->what);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	funlockfile(stderr);
}

/*
 * Compare @n bytes @got, read at file offset @off of @file, with the
 * model.  Return: true if they are the same (a difference is reported).
 */
static bool fz_same(struct fz_worker *w, int file, off_t off, const unsigned char *got,
		    size_t n, const char *where)
{
	const unsigned char *want = w->files[file].model + off;
	size_t i;

	if (!memcmp(got, want, n))
		return true;
	for (i = 0; got[i] == want[i]; i++)
		;
	fz_fail(w, "%s: file %d byte %lld is 0x%02x, the model says 0x%02x (%zu bytes "
		"read from %lld, size %lld)", where, file, (long long)(off + (off_t)i), got[i],
		want[i], n, (long long)off, (long long)w->files[file].size);
	return false;
}

/* Bytes no write made before: never zero, so a lost write shows. */
static void fz_fill(struct fz_worker *w, unsigned char *p, size_t n)
{
	uint64_t x = fz_rand(w);
	size_t i;

	for (i = 0; i < n; i++) {
		if (!(i & 7))
			x = x * 6364136223846793005ull + 1442695040888963407ull;
		p[i] = (unsigned char)(1 + (x >> (8 * (i & 7))) % 255);
	}
}

/* A range in [0, limit): an offset and a length of 1 to @most bytes. */
static void fz_range(struct fz_worker *w, off_t limit, size_t most, off_t *off, size_t *len)
{
	*off = (off_t)fz_below(w, (uint64_t)limit);
	*len = 1 + fz_below(w, most);
	if (*off + (off_t)*len > limit)
		*len = (size_t)(limit - *off);
}

/* Whether @page of a file is the worker's to touch (see --shared). */
static bool fz_owns(const struct fz_worker *w, uint64_t page)
{
	return !w->run->shared || page % w->run->nthreads == w->id;
}

/*
 * A range of at most @most bytes in [lo, hi) that the worker owns: with
 * --shared, inside one of its pages.  Return: false if it owns none there.
 */
static bool fz_pick(struct fz_worker *w, off_t lo, off_t hi, size_t most, off_t *off,
		    size_t *len)
{
	uint64_t n = w->run->nthreads, p0, p1, first, p;

	if (hi <= lo)
		return false;
	if (w->run->shared) {
		p0 = (uint64_t)lo / FZ_PAGE;
		p1 = (uint64_t)(hi - 1) / FZ_PAGE;
		first = p0 + (w->id + n - p0 % n) % n;
		if (first > p1)
			return false;
		p = first + n * fz_below(w, (p1 - first) / n + 1);
		if ((off_t)(p * FZ_PAGE) > lo)
			lo = (off_t)(p * FZ_PAGE);
		if ((off_t)((p + 1) * FZ_PAGE) < hi)
			hi = (off_t)((p + 1) * FZ_PAGE);
	}
	fz_range(w, hi - lo, most, off, len);
	*off += lo;
	return true;
}

/*
 * Read the store file of @file past ufvm and compare [lo, hi) with the
 * model; with @whole, its size must be the model's too.
 */
static bool fz_check_store(struct fz_worker *w, int file, off_t lo, off_t hi, bool whole)
{
	struct fz_file *fl = &w->files[file];
	struct stat st;
	int fd = open(fl->path, O_RDONLY | O_CLOEXEC);
	bool ok = true;
	off_t at;

	if (fd < 0 || fstat(fd, &st)) {
		fz_fail(w, "the store file %s: %s", fl->path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return false;
	}
	if (whole && st.st_size != fl->size) {
		fz_fail(w, "the store file of file %d has %lld bytes, the model %lld", file,
			(long long)st.st_size, (long long)fl->size);
		ok = false;
	}
	for (at = lo; ok && at < hi; at += FZ_MAX_IO) {
		size_t n = (size_t)(hi - at < FZ_MAX_IO ? hi - at : FZ_MAX_IO);
		ssize_t r = pread(fd, w->got, n, at);

		if (r < 0) {
			fz_fail(w, "pread of the store file: %s", strerror(errno));
			ok = false;
		} else {
			/* Past the store's end reads as zeros; the model must agree. */
			memset(w->got + r, 0, n - (size_t)r);
			ok = fz_same(w, file, at, w->got, n, "the store file");
		}
	}
	close(fd);
	return ok;
}

/* fz_check_store() of the worker's pages of [lo, hi); @whole as there. */
static bool fz_check_store_own(struct fz_worker *w, int file, off_t lo, off_t hi, bool whole)
{
	off_t at, end;

	if (!w->run->shared)
		return fz_check_store(w, file, lo, hi, whole);
	for (at = lo; at < hi; at = end) {
		end = (at / FZ_PAGE + 1) * FZ_PAGE;
		if (end > hi)
			end = hi;
		if (fz_owns(w, (uint64_t)at / FZ_PAGE) && !fz_check_store(w, file, at, end, false))
			return false;
	}
	return true;
}

/*
 * The result @err of a sync of @file (fsync, writeback, sync, unmap):
 * Return: 1 if it succeeded (its bytes must be in the store), 0 if its
 * error is one the file's failing store explains, -1 after a failure.
 * @reports: a durable sync (ufvm_fsync, ufvm_sync), which reports an
 * old error once; ufvm_writeback and ufvm_unmap leave it to the next.
 */
static int fz_sync_result(struct fz_worker *w, int file, int err, bool reports)
{
	struct fz_file *fl = &w->files[file];

	if (!err) {
		fl->owed &= !reports;
		return 1;
	}
	if (err == -EIO && (fl->failing || fl->owed)) {
		fl->owed = fl->failing || !reports;
		w->sync_errors++;
		return 0;
	}
	fz_fail(w, "%s of file %d: %s%s", w->what, file, ufvm_strerror(err),
		fl->failing || fl->owed ? "" : " (its store takes writes)");
	return -1;
}

/* Whether @file's store fails the operations of @kind (--inject). */
static bool *fz_failing(struct fz_file *fl, enum fz_fail kind)
{
	return kind == FZ_FAIL_WRITES ? &fl->failing :
	       kind == FZ_FAIL_READS ? &fl->rfailing : &fl->pfailing;
}

/*
 * Start or end the failure of @file's store writes, reads or punches
 * (@kind).  Takes the run's lock exclusive: it waits for the other
 * workers' writes under way.
 */
static bool fz_set_failing(struct fz_worker *w, int file, enum fz_fail kind, bool on)
{
	static const char *const what[FZ_FAIL_KINDS] = { "writes", "reads", "punches" };
	static const int inject[FZ_FAIL_KINDS] = {
		UFVM_INJECT_WRITE_EIO, UFVM_INJECT_READ_EIO, UFVM_INJECT_PUNCH_EIO,
	};
	struct fz_file *fl = &w->files[file];
	off_t off = 0, len = 0;
	bool peek_end;
	int i, err;

	if (on && fz_below(w, 2)) {
		off = (off_t)fz_below(w, (uint64_t)fz_max_bytes(w));
		len = 1 + (off_t)fz_below(w, (uint64_t)(fz_max_bytes(w) - off));
	} else if (on) {
		len = fz_max_bytes(w);
	}
	fz_trace(w, "file %d: store %s of [%lld, +%lld) fail", file, what[kind],
		 (long long)off, (long long)len);
	/*
	 * The peeker's loads may have met the failing reads: with handler
	 * threads each address it got SIGBUS at stays poisoned for a while
	 * (documented), and the worker's own loads will go there.  Zap the
	 * file's regions once no peek is under way, and none can fail any
	 * more.  The other deliveries answer each fault with its own SIGBUS
	 * (the peeker has a handler) and keep nothing: the worker's loads
	 * must work with no zap.
	 */
	peek_end = kind == FZ_FAIL_READS && !on && w->peeking && w->run->poisons;
	if (peek_end)
		pthread_rwlock_wrlock(&w->peek_lock);
	pthread_rwlock_wrlock(&w->run->lock);
	err = ufvm_inject(fl->f, inject[kind], off, len);
	if (!err) {
		*fz_failing(fl, kind) = on;
		if (kind == FZ_FAIL_WRITES) {
			w->run->failing += on ? 1 : -1;
			fl->owed |= !on;
		}
	}
	pthread_rwlock_unlock(&w->run->lock);
	for (i = 0; peek_end && !err && i < FZ_REGIONS; i++)
		if (w->regions[i].addr && w->regions[i].file == file)
			err = ufvm_zap(w->run->vm, w->regions[i].addr, w->regions[i].len);
	if (peek_end)
		pthread_rwlock_unlock(&w->peek_lock);
	if (err) {
		fz_fail(w, "%s: %s", peek_end ? "ufvm_inject or ufvm_zap" : "ufvm_inject",
			ufvm_strerror(err));
		return false;
	}
	return true;
}

/* Make @file's store writes, reads or punches fail for 20-320 operations. */
static bool fz_inject(struct fz_worker *w, int file)
{
	struct fz_file *fl = &w->files[file];
	enum fz_fail kind = (enum fz_fail)fz_below(w, FZ_FAIL_KINDS);

	if (*fz_failing(fl, kind))
		return true;
	fl->until[kind] = w->op + 20 + fz_below(w, 300);
	return fz_set_failing(w, file, kind, true);
}

/* Whether some worker's files fail; the run's lock held. */
static bool fz_any_failing(struct fz_worker *w)
{
	return __atomic_load_n(&w->run->failing, __ATOMIC_RELAXED) != 0;
}

/* Read @n bytes at @at of @file into w->got, all of them, through ufvm. */
static bool fz_pread_all(struct fz_worker *w, int file, off_t at, size_t n)
{
	ssize_t r = ufvm_pread(w->files[file].f, w->got, n, at);

	if (r == (ssize_t)n)
		return true;
	fz_fail(w, "ufvm_pread of %zu bytes of file %d at %lld: %zd", n, file, (long long)at, r);
	return false;
}

/*
 * Bytes [lo, hi) of @file after a punch or truncate that failed: each is
 * the model's or zero (the store may have zeroed part); take them.
 */
static bool fz_take_old_or_zero(struct fz_worker *w, int file, off_t lo, off_t hi)
{
	struct fz_file *fl = &w->files[file];
	off_t at;

	for (at = lo; at < hi; at += FZ_PAGE) {
		size_t n = (size_t)(hi - at < FZ_PAGE ? hi - at : FZ_PAGE), i;

		if (!fz_pread_all(w, file, at, n))
			return false;
		for (i = 0; i < n; i++) {
			if (w->got[i] && w->got[i] != fl->model[at + (off_t)i]) {
				fz_fail(w, "after a failed %s, byte %lld of file %d is 0x%02x: "
					"neither the model's 0x%02x nor zero", w->what,
					(long long)(at + (off_t)i), file, w->got[i],
					fl->model[at + (off_t)i]);
				return false;
			}
		}
		memcpy(fl->model + at, w->got, n);
	}
	return true;
}

static bool fz_file_mapped(const struct fz_worker *w, int file)
{
	int i;

	for (i = 0; i < FZ_REGIONS; i++)
		if (w->regions[i].addr && w->regions[i].file == file)
			return true;
	return false;
}

/* Open @file's handle if it is closed.  Return: true, or false after a failure. */
static bool fz_handle(struct fz_worker *w, int file)
{
	struct fz_file *fl = &w->files[file];
	int err;

	if (fl->f)
		return true;
	err = ufvm_file_open(w->run->vm, fl->path, UFVM_RDWR, &fl->f);
	if (err) {
		fz_fail(w, "ufvm_file_open(%s): %s", fl->path, ufvm_strerror(err));
		return false;
	}
	return true;
}

/* The size of @file is now @size: every worker's, with --shared (the lock exclusive). */
static void fz_set_size(struct fz_worker *w, int file, off_t size)
{
	struct fz_file *fl = &w->files[file];
	unsigned int i;

	if (size < fl->size)
		memset(fl->model + size, 0, (size_t)(fl->size - size));
	fl->size = size;
	for (i = 0; w->run->shared && i < w->run->nthreads; i++)
		w->run->w[i]->files[file].size = size;
}

/* Take the run's lock: exclusive if @change (with --shared, see fz_run). */
static void fz_lock(struct fz_worker *w, bool change)
{
	if (change && w->run->shared)
		pthread_rwlock_wrlock(&w->run->lock);
	else
		pthread_rwlock_rdlock(&w->run->lock);
}

static void fz_unlock(struct fz_worker *w)
{
	pthread_rwlock_unlock(&w->run->lock);
}

/* Context: the run's lock held (fz_step). */
static bool fz_pwrite(struct fz_worker *w, int file)
{
	struct fz_file *fl = &w->files[file];
	off_t off, size, grown;
	size_t len, want;
	ssize_t r;
	int err;

	if (!fz_pick(w, 0, fz_max_bytes(w), FZ_MAX_IO, &off, &len))
		return true;
	fz_fill(w, w->buf, len);
	fz_trace(w, "file %d [%lld, +%zu)", file, (long long)off, len);
	want = len;
	r = ufvm_pwrite(fl->f, w->buf, len, off);
	if (r != (ssize_t)len && fl->rfailing && (r == -EIO || r > 0)) {
		fz_trace(w, "cut short: %zd", r);	/* a partial page not read */
		w->cut_short++;
		len = r > 0 ? (size_t)r : 0;
		r = (ssize_t)len;
	} else if (r != (ssize_t)len && fz_any_failing(w) &&
		   (r == -EIO || r == -ENOSPC || r > 0)) {
		fz_trace(w, "refused: %zd", r);	/* a full cache of unwritable pages */
		w->refused++;
		len = r > 0 ? (size_t)r : 0;
		r = (ssize_t)len;
	}
	if (r != (ssize_t)len) {
		fz_fail(w, "ufvm_pwrite of %zu bytes at %lld returned %zd (%s)", len,
			(long long)off, r, r < 0 ? ufvm_strerror((int)r) : "short");
		return false;
	}
	memcpy(fl->model + off, w->buf, len);
	size = len && off + (off_t)len > fl->size ? off + (off_t)len : fl->size;
	if (len < want && off + (off_t)want > size) {
		/*
		 * A refused write that grew the file takes the growth back
		 * to what it wrote, unless a page cached past that end (a
		 * readahead's) shows it in use: then it keeps it, as zeros.
		 */
		err = ufvm_file_size(fl->f, &grown);
		if (err || (grown != size && grown != off + (off_t)want)) {
			fz_fail(w, "after a refused ufvm_pwrite of [%lld, +%zu) (%zu written), the "
				"size is %lld, neither %lld nor %lld (%s)", (long long)off, want, len,
				(long long)grown, (long long)size, (long long)(off + (off_t)want),
				ufvm_strerror(err));
			return false;
		}
		if (grown != size) {
			fz_trace(w, "the growth to %lld stays", (long long)grown);
			w->kept++;
		}
		size = grown;
	}
	fz_set_size(w, file, size);
	return true;
}

static bool fz_pread(struct fz_worker *w, int file)
{
	struct fz_file *fl = &w->files[file];
	off_t off, size = fl->size;
	size_t len, want;
	ssize_t r;

	if (!fz_pick(w, 0, fz_max_bytes(w), FZ_MAX_IO, &off, &len))
		return true;
	want = off >= size ? 0 : (size_t)(size - off < (off_t)len ? size - off : (off_t)len);
	fz_trace(w, "file %d [%lld, +%zu)", file, (long long)off, len);
	r = ufvm_pread(fl->f, w->got, len, off);
	if (r != (ssize_t)want && fl->rfailing && (r == -EIO || (r > 0 && r < (ssize_t)want))) {
		fz_trace(w, "cut short: %zd", r);	/* a page not read */
		w->cut_short++;
		want = r > 0 ? (size_t)r : 0;
		r = (ssize_t)want;
	}
	if (r != (ssize_t)want) {
		fz_fail(w, "ufvm_pread of %zu bytes at %lld (size %lld) returned %zd, not %zu",
			len, (long long)off, (long long)size, r, want);
		return false;
	}
	return fz_same(w, file, off, w->got, want, "ufvm_pread");
}

static bool fz_punch(struct fz_worker *w, int file)
{
	struct fz_file *fl = &w->files[file];
	off_t off, end;
	size_t len;
	int err;

	if (!fz_pick(w, 0, fz_max_bytes(w), 4 * FZ_PAGE, &off, &len))
		return true;
	fz_trace(w, "file %d [%lld, +%zu)", file, (long long)off, len);
	err = ufvm_punch(fl->f, off, (off_t)len);
	end = off + (off_t)len < fl->size ? off + (off_t)len : fl->size;
	if (err == -EIO && fl->pfailing) {
		fz_trace(w, "refused: the store's punch failed, no byte changed");
		w->punches_failed++;
		return true;
	}
	if (err == -EIO && (fl->failing || fl->owed))
		return off >= end || fz_take_old_or_zero(w, file, off, end);
	if (err) {
		fz_fail(w, "ufvm_punch: %s", ufvm_strerror(err));
		return false;
	}
	if (off < end)
		memset(fl->model + off, 0, (size_t)(end - off));
	return true;
}

static bool fz_truncate(struct fz_worker *w, int file)
{
	struct fz_file *fl = &w->files[file];
	off_t size = (off_t)fz_below(w, (uint64_t)fz_max_bytes(w) + 1);
	off_t got;
	int err;

	if (fz_below(w, 2))
		size &= ~(off_t)(FZ_PAGE - 1);
	fz_trace(w, "file %d to %lld (from %lld)", file, (long long)size, (long long)fl->size);
	err = ufvm_truncate(fl->f, size);
	if (err == -EIO && (fl->failing || fl->owed)) {
		/* The size stays; what the shrink would cut may read zeros. */
		err = ufvm_file_size(fl->f, &got);
		if (err || got != fl->size) {
			fz_fail(w, "a failed ufvm_truncate changed the size from %lld to %lld (%s)",
				(long long)fl->size, (long long)got, ufvm_strerror(err));
			return false;
		}
		return size >= fl->size || fz_take_old_or_zero(w, file, size, fl->size);
	}
	if (err) {
		fz_fail(w, "ufvm_truncate to %lld: %s", (long long)size, ufvm_strerror(err));
		return false;
	}
	fz_set_size(w, file, size);
	err = ufvm_file_size(fl->f, &got);
	if (err || got != size) {
		fz_fail(w, "ufvm_file_size after ufvm_truncate to %lld: %lld (%s)",
			(long long)size, (long long)got, ufvm_strerror(err));
		return false;
	}
	return true;
}

static bool fz_fsync(struct fz_worker *w, int file, bool durable)
{
	struct fz_file *fl = &w->files[file];
	bool ok;
	int err;

	fz_trace(w, "file %d", file);
	err = fz_sync_result(w, file, durable ? ufvm_fsync(fl->f) : ufvm_writeback(fl->f),
			     durable);
	if (err <= 0)
		return !err;
	/* Both leave every byte in the store file (ufvm_writeback: not durable). */
	fz_lock(w, false);
	ok = fz_check_store_own(w, file, 0, fl->size, true);
	fz_unlock(w);
	return ok;
}

/* Close the handle, and open the file again (from its store if unmapped). */
static bool fz_reopen(struct fz_worker *w, int file)
{
	struct fz_file *fl = &w->files[file];
	bool last = !w->run->shared && !fz_file_mapped(w, file);
	int err;

	if (fl->failing || fl->owed)
		return fz_fsync(w, file, true);	/* a last close would drop its pages */
	if (fl->rfailing)
		return fz_fsync(w, file, true);	/* a last close would end the failure */
	fz_trace(w, "file %d%s", file, last ? " (its last user)" : "");
	err = ufvm_file_close(fl->f);
	fl->f = NULL;
	if (err) {
		fz_fail(w, "ufvm_file_close: %s", ufvm_strerror(err));
		return false;
	}
	if (last && !fz_check_store(w, file, 0, fl->size, true))
		return false;
	return fz_handle(w, file);
}

static struct fz_region *fz_pick_region(struct fz_worker *w, bool used)
{
	unsigned int i, k = (unsigned int)fz_below(w, FZ_REGIONS);

	for (i = 0; i < FZ_REGIONS; i++) {
		struct fz_region *rg = &w->regions[(k + i) % FZ_REGIONS];

		if (!rg->addr != used)
			return rg;
	}
	return NULL;
}

/*
 * Map a random range of a random file into slot @rg: @n pages (0: a random
 * count, which may run past the file's end), at @at with UFVM_MAP_FIXED |
 * UFVM_MAP_REPLACE (the region there goes, its dirty pages written back),
 * or where ufvm places it (@at NULL).
 */
static bool fz_map_into(struct fz_worker *w, struct fz_region *rg, unsigned int n, void *at)
{
	unsigned int pages = w->run->pages;
	int flags = UFVM_MAP_SHARED | (at ? UFVM_MAP_FIXED | UFVM_MAP_REPLACE : 0);
	unsigned int first;
	void *addr = at;
	bool by_path;
	int file, prot, err;

	file = (int)fz_below(w, FZ_FILES);
	first = (unsigned int)fz_below(w, pages);
	if (!n)
		n = 1 + (unsigned int)fz_below(w, pages - first + 2);
	prot = fz_below(w, 4) ? UFVM_PROT_READ | UFVM_PROT_WRITE : UFVM_PROT_READ;
	by_path = fz_below(w, 2);
	fz_trace(w, "file %d pages [%u, +%u) %s, by %s%s", file, first, n,
		 prot & UFVM_PROT_WRITE ? "rw" : "r", by_path ? "path" : "handle",
		 at ? ", replacing" : "");
	/* By path or by handle: both find the file's one object. */
	if (by_path)
		err = ufvm_map(w->run->vm, w->files[file].path, (off_t)first * FZ_PAGE,
			       (size_t)n * FZ_PAGE, prot, flags, &addr);
	else
		err = ufvm_map_file(w->files[file].f, (off_t)first * FZ_PAGE,
				    (size_t)n * FZ_PAGE, prot, flags, &addr);
	if (err) {
		fz_fail(w, "ufvm_map: %s", ufvm_strerror(err));
		return false;
	}
	if (at && addr != at) {
		fz_fail(w, "ufvm_map with UFVM_MAP_FIXED mapped at %p, not %p", addr, at);
		return false;
	}
	fz_trace(w, "mapped at %p", (void *)addr);
	*rg = (struct fz_region){ .addr = addr, .len = (size_t)n * FZ_PAGE,
				  .off = (off_t)first * FZ_PAGE, .file = file, .prot = prot,
				  .can_write = (prot & UFVM_PROT_WRITE) || !by_path };
	return true;
}

static bool fz_map(struct fz_worker *w)
{
	struct fz_region *rg = fz_pick_region(w, false);

	return !rg || fz_map_into(w, rg, 0, NULL);
}

static bool fz_unmap(struct fz_worker *w, struct fz_region *rg)
{
	int err;

	fz_trace(w, "file %d [%lld, +%zu)", rg->file, (long long)rg->off, rg->len);
	/* ufvm_protect may have split the region: unmap by range. */
	err = ufvm_unmap_range(w->run->vm, rg->addr, rg->len);
	rg->addr = NULL;
	return fz_sync_result(w, rg->file, err, false) >= 0;
}

/*
 * A range of @rg inside its file's size, for a load or a store.
 * Return: false if the region maps nothing of the file.
 */
static bool fz_region_range(struct fz_worker *w, const struct fz_region *rg, off_t *off,
			    size_t *len)
{
	off_t end = rg->off + (off_t)rg->len;

	if (end > w->files[rg->file].size)
		end = w->files[rg->file].size;
	return fz_pick(w, rg->off, end, FZ_MAX_IO, off, len);
}

static bool fz_load(struct fz_worker *w, struct fz_region *rg)
{
	off_t off;
	size_t len;

	if (w->files[rg->file].rfailing || !fz_region_range(w, rg, &off, &len))
		return true;	/* a fault whose store read fails is SIGBUS */
	fz_trace(w, "file %d [%lld, +%zu)", rg->file, (long long)off, len);
	memcpy(w->got, rg->addr + (off - rg->off), len);
	return fz_same(w, rg->file, off, w->got, len, "a load through a mapping");
}

#define FZ_SWEEP_PAGES	40	/* a sweep stores into this many pages at most */

/*
 * A sequential writer: one byte into each page of a run of @rg's pages, in
 * order, so that the write faults find a trail and map ahead (write-ahead).
 * Not with --shared (the pages in a row are several workers').
 * Context: the run's lock held (fz_step).
 */
static void fz_sweep(struct fz_worker *w, struct fz_region *rg)
{
	off_t end = rg->off + (off_t)rg->len, at = (off_t)fz_below(w, FZ_PAGE);
	size_t first, n, i;
	uint8_t b;

	if (end > w->files[rg->file].size)
		end = w->files[rg->file].size;
	if (end <= rg->off)
		return;
	first = fz_below(w, (uint64_t)(end - rg->off + FZ_PAGE - 1) / FZ_PAGE);
	n = 1 + fz_below(w, FZ_SWEEP_PAGES);
	fz_trace(w, "file %d: a byte at %lld of each page from %lld, %zu pages in order",
		 rg->file, (long long)at, (long long)(rg->off + (off_t)(first * FZ_PAGE)), n);
	for (i = first; i < first + n; i++) {
		off_t off = rg->off + (off_t)(i * FZ_PAGE) + at;

		if (off >= end)
			break;
		b = (uint8_t)fz_below(w, 256);
		rg->addr[off - rg->off] = b;
		w->files[rg->file].model[off] = b;
	}
}

/* Context: the run's lock held (fz_step). */
static bool fz_store(struct fz_worker *w, struct fz_region *rg)
{
	off_t off;
	size_t len;

	if (!(rg->prot & UFVM_PROT_WRITE) || w->files[rg->file].rfailing)
		return true;
	if (!w->run->shared && !fz_any_failing(w) && !fz_below(w, 4)) {
		fz_sweep(w, rg);
		return true;
	}
	if (!fz_region_range(w, rg, &off, &len))
		return true;
	fz_fill(w, w->buf, len);
	fz_trace(w, "file %d [%lld, +%zu)", rg->file, (long long)off, len);
	if (!fz_any_failing(w)) {	/* else a write fault may be refused: SIGBUS */
		memcpy(rg->addr + (off - rg->off), w->buf, len);
		memcpy(w->files[rg->file].model + off, w->buf, len);
	}
	return true;
}

/* A whole-page range of @rg: its first page and a count. */
static void fz_region_pages(struct fz_worker *w, const struct fz_region *rg, size_t *first,
			    size_t *n)
{
	size_t pages = rg->len / FZ_PAGE;

	*first = fz_below(w, pages);
	*n = 1 + fz_below(w, pages - *first);
}

/*
 * Make pages [first, first + n) of @rg a region of their own, as an
 * unmap, protect or replacement of them splits ufvm's: @rg keeps the pages
 * before them, free slots take the middle and the pages after it.  With
 * @gone, the middle is about to go (unmap), and is put there instead of in
 * a slot.  Return: the middle (@rg itself if it starts the region), or NULL
 * with nothing changed when there are too few free slots.
 */
static struct fz_region *fz_split(struct fz_worker *w, struct fz_region *rg, size_t first,
				  size_t n, struct fz_region *gone)
{
	const struct fz_region whole = *rg;
	size_t pages = whole.len / FZ_PAGE;
	unsigned int need = (first && !gone) + (first + n < pages), free = 0, i;
	struct fz_region *mid = rg, *tail;

	for (i = 0; i < FZ_REGIONS; i++)
		free += !w->regions[i].addr;
	if (free < need)
		return NULL;
	if (first) {
		mid = gone ? gone : fz_pick_region(w, false);
		rg->len = first * FZ_PAGE;
	}
	*mid = whole;
	mid->addr += first * FZ_PAGE;
	mid->off += (off_t)(first * FZ_PAGE);
	mid->len = n * FZ_PAGE;
	if (first + n < pages) {
		tail = fz_pick_region(w, false);
		*tail = whole;
		tail->addr += (first + n) * FZ_PAGE;
		tail->off += (off_t)((first + n) * FZ_PAGE);
		tail->len = (pages - first - n) * FZ_PAGE;
	}
	return mid;
}

/*
 * Unmap some pages of @rg (ufvm_unmap_range, munmap's way): the region is
 * cut there, and a hole in its middle leaves two regions, the second in a
 * free slot (without one, the whole region goes).
 */
static bool fz_unmap_part(struct fz_worker *w, struct fz_region *rg)
{
	struct fz_region gone, *mid;
	size_t first, n;

	fz_region_pages(w, rg, &first, &n);
	fz_trace(w, "file %d pages [%zu, +%zu) of the region [%lld, +%zu)", rg->file, first, n,
		 (long long)rg->off, rg->len);
	mid = fz_split(w, rg, first, n, &gone);
	return fz_unmap(w, mid ? mid : rg);
}

/*
 * Map another range (of either file, either protection) over some pages of
 * @rg with UFVM_MAP_FIXED | UFVM_MAP_REPLACE: the rest of the region stays
 * mapped, in its parts.  Without the free slots for them the whole region
 * is replaced.
 */
static bool fz_replace(struct fz_worker *w, struct fz_region *rg)
{
	struct fz_region *mid;
	size_t first, n;

	fz_region_pages(w, rg, &first, &n);
	fz_trace(w, "file %d pages [%zu, +%zu) of the region [%lld, +%zu)", rg->file, first, n,
		 (long long)rg->off, rg->len);
	mid = fz_split(w, rg, first, n, NULL);
	if (!mid)
		mid = rg;
	return fz_map_into(w, mid, (unsigned int)(mid->len / FZ_PAGE), mid->addr);
}

/*
 * Flip the write permission of some pages of @rg: they become a region of
 * their own (the whole region does without the free slots for its parts).
 * Pages mapped read-only by path cannot become writable: the file was
 * opened read-only (-EACCES, nothing changes).
 */
static bool fz_protect(struct fz_worker *w, struct fz_region *rg)
{
	int prot = rg->prot ^ UFVM_PROT_WRITE;
	struct fz_region *part;
	size_t first, n;
	int err;

	fz_region_pages(w, rg, &first, &n);
	if (!rg->can_write && (prot & UFVM_PROT_WRITE)) {
		fz_trace(w, "file %d pages [%zu, +%zu) of the region mapped read-only by path "
			 "to rw", rg->file, first, n);
		err = ufvm_protect(w->run->vm, rg->addr + first * FZ_PAGE, n * FZ_PAGE, prot);
		if (err != -EACCES) {
			fz_fail(w, "ufvm_protect of a region mapped read-only by path: %s, "
				"not -EACCES", err ? ufvm_strerror(err) : "0");
			return false;
		}
		return true;
	}
	part = fz_split(w, rg, first, n, NULL);
	if (!part)
		part = rg;
	fz_trace(w, "file %d [%lld, +%zu) to %s", part->file, (long long)part->off, part->len,
		 prot & UFVM_PROT_WRITE ? "rw" : "r");
	err = ufvm_protect(w->run->vm, part->addr, part->len, prot);
	if (err) {
		fz_fail(w, "ufvm_protect: %s", ufvm_strerror(err));
		return false;
	}
	part->prot = prot;
	return true;
}

static bool fz_zap(struct fz_worker *w, struct fz_region *rg)
{
	size_t first, n;
	int err;

	fz_region_pages(w, rg, &first, &n);
	fz_trace(w, "file %d pages [%zu, +%zu) of the region", rg->file, first, n);
	err = ufvm_zap(w->run->vm, rg->addr + first * FZ_PAGE, n * FZ_PAGE);
	if (err) {
		fz_fail(w, "ufvm_zap: %s", ufvm_strerror(err));
		return false;
	}
	return true;
}

static bool fz_sync(struct fz_worker *w, struct fz_region *rg)
{
	off_t lo, hi;
	size_t first, n;
	bool ok;
	int err;

	fz_region_pages(w, rg, &first, &n);
	fz_trace(w, "file %d pages [%zu, +%zu) of the region", rg->file, first, n);
	err = fz_sync_result(w, rg->file, ufvm_sync(w->run->vm, rg->addr + first * FZ_PAGE,
						    n * FZ_PAGE), true);
	if (err <= 0)
		return !err;
	lo = rg->off + (off_t)(first * FZ_PAGE);
	hi = lo + (off_t)(n * FZ_PAGE);
	fz_lock(w, false);
	if (hi > w->files[rg->file].size)
		hi = w->files[rg->file].size;
	ok = lo >= hi || fz_check_store_own(w, rg->file, lo, hi, false);
	fz_unlock(w);
	return ok;
}

/* Every byte of every file, by ufvm_pread and through every mapping. */
static bool fz_check_all(struct fz_worker *w)
{
	int i;

	for (i = 0; i < FZ_FILES; i++) {
		struct fz_file *fl = &w->files[i];
		off_t at, got;
		int err = ufvm_file_size(fl->f, &got);

		if (err || got != fl->size) {
			fz_fail(w, "ufvm_file_size of file %d: %lld, the model %lld (%s)", i,
				(long long)got, (long long)fl->size, ufvm_strerror(err));
			return false;
		}
		for (at = 0; !fl->rfailing && at < fl->size; at += FZ_PAGE) {
			size_t n = (size_t)(fl->size - at < FZ_PAGE ? fl->size - at : FZ_PAGE);

			if (fz_owns(w, (uint64_t)at / FZ_PAGE) &&
			    (!fz_pread_all(w, i, at, n) || !fz_same(w, i, at, w->got, n, "ufvm_pread")))
				return false;
		}
	}
	for (i = 0; i < FZ_REGIONS; i++) {
		struct fz_region *rg = &w->regions[i];
		off_t at, end;

		if (!rg->addr || w->files[rg->file].rfailing)
			continue;
		end = rg->off + (off_t)rg->len;
		if (end > w->files[rg->file].size)
			end = w->files[rg->file].size;
		for (at = rg->off; at < end; at += FZ_PAGE) {
			size_t n = (size_t)(end - at < FZ_PAGE ? end - at : FZ_PAGE);

			if (fz_owns(w, (uint64_t)at / FZ_PAGE) &&
			    !fz_same(w, rg->file, at, rg->addr + (at - rg->off), n, "a mapping"))
				return false;
		}
	}
	return true;
}

/* Unmap the worker's regions and close its handles.  Return: false after a failure. */
static bool fz_close_all(struct fz_worker *w)
{
	bool ok = true;
	int i, err;

	for (i = 0; i < FZ_REGIONS; i++)
		if (w->regions[i].addr && !fz_unmap(w, &w->regions[i]))
			ok = false;
	for (i = 0; i < FZ_FILES; i++) {
		err = w->files[i].f ? ufvm_file_close(w->files[i].f) : 0;
		w->files[i].f = NULL;
		if (err) {
			fz_fail(w, "ufvm_file_close: %s", ufvm_strerror(err));
			ok = false;
		}
	}
	return ok;
}

/*
 * Close everything and the instance, check the store files, open it again
 * (one worker only: the others would find their handles gone).
 */
/*
 * --peek.  A peeker loads bytes of its worker's regions, at random, while
 * the worker maps, unmaps, replaces, protects, zaps, syncs, punches and
 * truncates them: its faults race those changes, as an application's
 * threads may.  What it reads is not checked (it races the worker's own
 * writes); what it may see is a SIGSEGV (the range unmapped meanwhile, or
 * protected PROT_NONE) or a SIGBUS (past the end, a failed store read),
 * which fz_peek_signal() turns into a jump back to the peeker.  What it
 * checks is ufvm's: its assertions, and that the worker's reads, through
 * handles and mappings, still match the model (a fault that served a dead
 * region, say, put another file's page in a new mapping).  ufvm passes
 * the signals of accesses that are not its to serve to the action it
 * found installed, which is fz_peek_signal() (installed before any
 * instance is opened, with or without --peek: a worker's own signal is
 * reported, then takes its default action).
 */
static __thread sigjmp_buf fz_peek_env;
static __thread volatile sig_atomic_t fz_peek_armed;

static void fz_peek_signal(int sig, siginfo_t *si, void *uc)
{
	char segv[] = "ufvm fuzz: SIGSEGV at 0x0000000000000000, not a peek's\n";
	char bus[] = "ufvm fuzz: SIGBUS at 0x0000000000000000, not a peek's\n";
	char *msg = sig == SIGBUS ? bus : segv;
	size_t len = sig == SIGBUS ? sizeof(bus) - 1 : sizeof(segv) - 1;
	uintptr_t a = (uintptr_t)si->si_addr;
	ssize_t n;
	int i;

	(void)uc;
	if (fz_peek_armed) {
		fz_peek_armed = 0;
		siglongjmp(fz_peek_env, sig);
	}
	/* Not a peek's: say where (async-signal-safe), then the default action. */
	for (i = 1; i <= 16; i++, a >>= 4)
		strchr(msg, ',')[-i] = "0123456789abcdef"[a & 15];
	n = write(2, msg, len);
	(void)n;
	signal(sig, SIG_DFL);	/* the access runs again and dies of it */
}

static int fz_peek_install(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = fz_peek_signal;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGSEGV, &sa, NULL) || sigaction(SIGBUS, &sa, NULL)) {
		fprintf(stderr, "ufvm fuzz: sigaction: %s\n", strerror(errno));
		return -1;
	}
	return 0;
}

/* One load, not instrumented: @p may be anything the slot's fields made. */
__attribute__((noinline, no_sanitize("address")))
static unsigned char fz_peek_load(const unsigned char *p)
{
	return *(const volatile unsigned char *)p;
}

/* Load the byte at @p; count it, or the signal it raised. */
static void fz_peek_one(struct fz_worker *w, const unsigned char *p)
{
	bool closing = __atomic_load_n(&w->closing, __ATOMIC_RELAXED);
	int sig = sigsetjmp(fz_peek_env, 1);

	if (sig) {
		(*(sig == SIGSEGV ? &w->peek_segv : &w->peek_bus))++;
		w->peeks_closing += closing;
		if (w->run->verbose)
			fprintf(stderr, "[%u.%" PRIu64 "] peek: %s at %p\n", w->id,
				__atomic_load_n(&w->op, __ATOMIC_RELAXED),
				sig == SIGSEGV ? "SIGSEGV" : "SIGBUS", (const void *)p);
		return;
	}
	fz_peek_armed = 1;
	fz_peek_load(p);
	fz_peek_armed = 0;
	w->peeks++;
	w->peeks_closing += closing;
}

static void *fz_peeker(void *arg)
{
	struct fz_worker *w = arg;
	uint64_t state = ~(w->run->seed * 0x100000001b3ull + w->id), x;	/* not the worker's */
	struct timespec pause = { 0, 50000 };
	unsigned int i;

	while (!__atomic_load_n(&w->peek_stop, __ATOMIC_RELAXED)) {
		pthread_rwlock_rdlock(&w->peek_lock);
		for (i = 0; i < 8; i++) {
			const struct fz_region *rg;
			unsigned char *addr;
			off_t off, size;
			size_t len, o;
			int file;

			x = fz_next(&state);
			rg = &w->regions[x % FZ_REGIONS];
			/* The worker changes the slot meanwhile: read it twice. */
			addr = __atomic_load_n(&rg->addr, __ATOMIC_RELAXED);
			len = __atomic_load_n(&rg->len, __ATOMIC_RELAXED);
			off = __atomic_load_n(&rg->off, __ATOMIC_RELAXED);
			file = __atomic_load_n(&rg->file, __ATOMIC_RELAXED) % FZ_FILES;
			if (!addr || !len || addr != __atomic_load_n(&rg->addr, __ATOMIC_RELAXED))
				continue;
			/* Mostly inside the file, where the worker's own accesses go. */
			size = __atomic_load_n(&w->files[file].size, __ATOMIC_RELAXED);
			o = (x >> 20) % len;
			if (off + (off_t)o >= size && (x & 7))
				continue;
			fz_peek_one(w, addr + o);
		}
		pthread_rwlock_unlock(&w->peek_lock);
		if (!__atomic_load_n(&w->closing, __ATOMIC_RELAXED))
			nanosleep(&pause, NULL);	/* none while a close races the loads */
	}
	return NULL;
}

/* Start @w's peeker (--peek).  Return: 0, or -1 after a message. */
static int fz_peeker_start(struct fz_worker *w)
{
	pthread_rwlockattr_t a;
	int err;

	pthread_rwlockattr_init(&a);
	pthread_rwlockattr_setkind_np(&a, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&w->peek_lock, &a);
	pthread_rwlockattr_destroy(&a);
	err = pthread_create(&w->peeker, NULL, fz_peeker, w);
	if (err) {
		fprintf(stderr, "ufvm fuzz: pthread_create: %s\n", strerror(err));
		pthread_rwlock_destroy(&w->peek_lock);
		return -1;
	}
	w->peeking = true;
	return 0;
}

static void fz_peeker_stop(struct fz_worker *w)
{
	if (!w->peeking)
		return;
	__atomic_store_n(&w->peek_stop, true, __ATOMIC_RELAXED);
	pthread_join(w->peeker, NULL);
	pthread_rwlock_destroy(&w->peek_lock);
	w->peeking = false;
}

/*
 * --jitter's hook: called by ufvm at its UFVM_HOOK_* points, from any of
 * its threads or the workers (with its locks held as ufvm.h notes for each
 * point, and inside the sigsegv backend's signal handler: only
 * async-signal-safe calls here).  One call in run->jitter yields the CPU
 * or sleeps up to FZ_JITTER_US, chosen by a per-thread generator (the
 * timing of ufvm's threads is not the seed's anyway).
 */
static void fz_jitter(void *arg, unsigned int point, uint64_t a, uint64_t b)
{
	static __thread uint64_t state;	/* 0: not seeded yet in this thread */
	struct fz_run *run = arg;
	struct timespec ts = { 0 };
	unsigned int us;
	uint64_t x;

	(void)a;
	(void)b;
	if (!state)
		state = (run->seed + 1) * 0x100000001b3ull ^ (uint64_t)(uintptr_t)&state;
	x = fz_next(&state);
	if (point < FZ_HOOK_POINTS)
		__atomic_fetch_add(&run->hook_calls[point], 1, __ATOMIC_RELAXED);
	if (x % run->jitter)
		return;
	if (point < FZ_HOOK_POINTS)
		__atomic_fetch_add(&run->hook_waits[point], 1, __ATOMIC_RELAXED);
	us = (unsigned int)(x >> 40) % FZ_JITTER_US;
	if (us < 16) {
		sched_yield();
		return;
	}
	ts.tv_nsec = us * 1000L;
	nanosleep(&ts, NULL);
}

/* Open the run's instance: the policies of the environment, --debug-flags, --jitter. */
static int fz_open(struct fz_run *run)
{
	struct ufvm_config cfg;
	int err;

	err = ufvm_config_init(&cfg);
	if (err)
		return err;
	cfg.debug_flags = run->debug_flags;
	err = ufvm_open(&cfg, &run->vm);
	if (!err)	/* handler threads ("uffd-inthread" has none) */
		run->poisons = !strcmp(ufvm_backend_name(run->vm), "uffd");
	if (!err && run->jitter) {
		err = ufvm_debug_hook(run->vm, fz_jitter, run);
		if (err) {
			ufvm_close(run->vm);
			run->vm = NULL;
		}
	}
	return err;
}

/* Whether a store of one of @w's files fails, or owes a failure's report. */
static bool fz_store_trouble(const struct fz_worker *w)
{
	int i;

	for (i = 0; i < FZ_FILES; i++)
		if (w->files[i].failing || w->files[i].owed || w->files[i].rfailing ||
		    w->files[i].pfailing)
			return true;
	return false;
}

/* ufvm_close() the run's instance, its write-ahead counted first. */
static int fz_close_vm(struct fz_run *run)
{
	struct ufvm_stats st;

	if (!ufvm_stats(run->vm, &st))
		run->wa_pages += st.counters[UFVM_CTR_WRITEAHEAD_PAGES];
	return ufvm_close(run->vm);
}

static bool fz_restart(struct fz_worker *w)
{
	struct fz_run *run = w->run;
	const char *what = "ufvm_close";
	int i, err;

	/*
	 * With --peek, every other restart closes the instance with the files
	 * open and the regions mapped, while the peeker loads from them:
	 * ufvm_close() must write back, unmap and stop with faults coming in
	 * (a load gets the page, or SIGSEGV once its region is gone).  Not
	 * while a store fails (ufvm_close would report it, or drop pages the
	 * model keeps).
	 */
	bool live = w->peeking && (w->restarts++ & 1) && !fz_store_trouble(w);

	fz_trace(w, "the instance%s", live ? ", files open and regions mapped" : "");
	if (!live && !fz_close_all(w))
		return false;
	if (w->peeking && !live)
		pthread_rwlock_wrlock(&w->peek_lock);	/* no load while there is no instance */
	__atomic_store_n(&w->closing, live, __ATOMIC_RELAXED);
	err = fz_close_vm(run);
	__atomic_store_n(&w->closing, false, __ATOMIC_RELAXED);
	if (live) {
		/* Its handles and regions are gone: forget them before loads resume. */
		pthread_rwlock_wrlock(&w->peek_lock);
		for (i = 0; i < FZ_REGIONS; i++)
			__atomic_store_n(&w->regions[i].addr, NULL, __ATOMIC_RELAXED);
		for (i = 0; i < FZ_FILES; i++)
			w->files[i].f = NULL;
		w->live_closes++;
		if (err)
			what = "ufvm_close, files open and regions mapped";
	}
	run->vm = NULL;
	if (!err) {
		what = "ufvm_open";
		err = fz_open(run);
	}
	if (w->peeking)
		pthread_rwlock_unlock(&w->peek_lock);
	if (err) {
		fz_fail(w, "%s: %s", what, ufvm_strerror(err));
		return false;
	}
	for (i = 0; i < FZ_FILES; i++)
		if (!fz_check_store(w, i, 0, w->files[i].size, true))
			return false;
	for (i = 0; i < FZ_FILES; i++)
		if (!fz_handle(w, i))
			return false;
	return true;
}

static enum fz_op fz_pick_op(struct fz_worker *w)
{
	unsigned int total = 0, x, i;
	unsigned int last = w->run->inject ? FZ_NOPS : FZ_INJECT;

	for (i = 0; i < last; i++)
		total += fz_weights[i];
	x = (unsigned int)fz_below(w, total);
	for (i = 0; x >= fz_weights[i]; i++)
		x -= fz_weights[i];
	return (enum fz_op)i;
}

/* Run @op on @file or @rg. */
static bool fz_do(struct fz_worker *w, enum fz_op op, int file, struct fz_region *rg)
{
	switch (op) {
	case FZ_PWRITE:
		return fz_pwrite(w, file);
	case FZ_PREAD:
		return fz_pread(w, file);
	case FZ_PUNCH:
		return fz_punch(w, file);
	case FZ_TRUNCATE:
		return fz_truncate(w, file);
	case FZ_FSYNC:
		return fz_fsync(w, file, true);
	case FZ_WRITEBACK:
		return fz_fsync(w, file, false);
	case FZ_REOPEN:
		return fz_reopen(w, file);
	case FZ_MAP:
		return fz_map(w);
	case FZ_UNMAP:
		return fz_below(w, 2) ? fz_unmap(w, rg) : fz_unmap_part(w, rg);
	case FZ_LOAD:
		return fz_load(w, rg);
	case FZ_STORE:
		return fz_store(w, rg);
	case FZ_PROTECT:
		return fz_protect(w, rg);
	case FZ_ZAP:
		return fz_zap(w, rg);
	case FZ_SYNC:
		return fz_sync(w, rg);
	case FZ_REPLACE:
		return fz_replace(w, rg);
	case FZ_CHECK:
		fz_trace(w, "every file and mapping");
		return fz_check_all(w);
	case FZ_RESTART:
		return fz_restart(w);
	case FZ_INJECT:
		return fz_inject(w, file);
	case FZ_NOPS:
		break;
	}
	return false;
}

static bool fz_step(struct fz_worker *w)
{
	enum fz_op op = fz_pick_op(w);
	int file = (int)fz_below(w, FZ_FILES);
	struct fz_region *rg = NULL;
	bool sized, ok;
	enum fz_fail k;
	int i;

	if (op >= FZ_UNMAP && op <= FZ_REPLACE && !(rg = fz_pick_region(w, true)))
		op = FZ_MAP;		/* nothing mapped */
	for (i = 0; i < FZ_FILES; i++) {
		struct fz_file *fl = &w->files[i];

		w->what = "the end of a failure";
		for (k = 0; k < FZ_FAIL_KINDS; k++)
			if (*fz_failing(fl, k) && w->op >= fl->until[k] &&
			    !fz_set_failing(w, i, k, false))
				return false;
		if (op == FZ_RESTART && (fl->failing || fl->owed || fl->rfailing))
			op = FZ_CHECK;	/* a last close would drop unwritten pages */
	}
	if (op == FZ_RESTART && w->run->nthreads > 1)
		op = FZ_CHECK;
	if ((op == FZ_PUNCH || op == FZ_TRUNCATE) && w->files[file].rfailing)
		op = FZ_PREAD;		/* a partial page may need a read: left out */
	w->what = fz_op_names[op];
	w->done[op]++;
	/*
	 * What writes through ufvm (see fz_run: no failure starts or ends
	 * meanwhile) or depends on a file's size, which a pwrite or truncate
	 * changes (see fz_run: every worker's, with --shared).
	 */
	sized = op == FZ_PWRITE || op == FZ_PREAD || op == FZ_PUNCH || op == FZ_TRUNCATE ||
		op == FZ_LOAD || op == FZ_STORE || op == FZ_CHECK;
	if (sized)
		fz_lock(w, op == FZ_PWRITE || op == FZ_TRUNCATE);
	ok = fz_do(w, op, file, rg);
	if (sized)
		fz_unlock(w);
	return ok;
}

static void *fz_worker_main(void *arg)
{
	struct fz_worker *w = arg;

	while (w->op < w->run->ops && fz_step(w))
		w->op++;
	if (!w->failed) {
		w->what = "the last check";
		fz_lock(w, false);
		fz_check_all(w);
		fz_unlock(w);
	}
	return NULL;
}

/*
 * Make the worker's store files, empty, and open them; with --shared,
 * worker 0 makes them at their full size and the others open them too.
 */
static int fz_worker_init(struct fz_run *run, struct fz_worker *w, unsigned int id)
{
	int i, fd;

	memset(w, 0, sizeof(*w));
	w->run = run;
	w->id = id;
	w->rng = run->seed * 0x100000001b3ull + id;
	w->what = "setting up";
	for (i = 0; i < FZ_FILES; i++) {
		struct fz_file *fl = &w->files[i];

		if (run->shared && id) {
			*fl = run->w[0]->files[i];
			fl->f = NULL;
			if (!fz_handle(w, i))
				return -1;
			continue;
		}
		if (snprintf(fl->path, sizeof(fl->path), "%s/w%u-f%d", run->dir, id, i) >=
		    (int)sizeof(fl->path)) {
			fz_fail(w, "the directory's name is too long");
			return -1;
		}
		fd = open(fl->path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (fd < 0) {
			fz_fail(w, "%s: %s", fl->path, strerror(errno));
			return -1;
		}
		if (run->shared && ftruncate(fd, fz_max_bytes(w))) {
			fz_fail(w, "%s: %s", fl->path, strerror(errno));
			close(fd);
			return -1;
		}
		close(fd);
		fl->model = calloc(1, (size_t)run->pages * FZ_PAGE);
		if (!fl->model) {
			fz_fail(w, "out of memory");
			return -1;
		}
		if (run->shared)
			fl->size = fz_max_bytes(w);
		if (!fz_handle(w, i))
			return -1;
	}
	return 0;
}

/*
 * Close what a worker left open (its mappings, its handles); with @check,
 * check the store files (their last close wrote every byte back).
 */
static bool fz_worker_fini(struct fz_worker *w, bool check)
{
	bool ok = !w->failed;
	enum fz_fail k;
	int i;

	w->what = "the end";
	/*
	 * Stores take writes again: a sync may report the old error once;
	 * after it, the unmaps and closes must succeed.
	 */
	for (i = 0; ok && i < FZ_FILES; i++) {
		for (k = FZ_FAIL_KINDS; ok && k-- > 0;)
			if (*fz_failing(&w->files[i], k) && !fz_set_failing(w, i, k, false))
				ok = false;
		if (ok && w->files[i].owed)
			ok = fz_sync_result(w, i, ufvm_fsync(w->files[i].f), true) >= 0;
	}
	ok &= fz_close_all(w);
	for (i = 0; ok && check && i < FZ_FILES; i++)
		ok = fz_check_store(w, i, 0, w->files[i].size, true);
	return ok;
}

/* One seed: set up, run the workers, check, tear down.  Return: 0 or 1. */
static int fz_run_seed(struct fz_run *run, uint64_t totals[FZ_NOPS + 10])
{
	pthread_t th[FZ_MAX_THREADS];
	bool ok = true;
	unsigned int i, started = 0;
	int err, k;

	err = fz_open(run);
	if (err) {
		fprintf(stderr, "ufvm fuzz: ufvm_open: %s\n", ufvm_strerror(err));
		return 1;
	}
	for (i = 0; i < run->nthreads && ok; i++) {
		run->w[i] = malloc(sizeof(*run->w[i]));
		ok = run->w[i] && !fz_worker_init(run, run->w[i], i);
	}
	for (i = 0; i < run->nthreads && ok && run->peek; i++)
		ok = !fz_peeker_start(run->w[i]);
	for (i = 0; i < run->nthreads && ok; i++, started++) {
		err = pthread_create(&th[i], NULL, fz_worker_main, run->w[i]);
		if (err) {
			fprintf(stderr, "ufvm fuzz: pthread_create: %s\n", strerror(err));
			ok = false;
		}
	}
	for (i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	for (i = 0; i < run->nthreads && run->w[i]; i++)
		fz_peeker_stop(run->w[i]);
	for (i = 0; i < run->nthreads && run->w[i]; i++)
		ok &= fz_worker_fini(run->w[i], !run->shared);
	/* Shared files: the last worker's close was their last; their model is whole now. */
	for (k = 0; run->shared && ok && k < FZ_FILES; k++)
		ok &= fz_check_store(run->w[0], k, 0, run->w[0]->files[k].size, true);
	if (run->vm) {
		err = fz_close_vm(run);
		if (err) {
			fprintf(stderr, "ufvm fuzz: seed %" PRIu64 ": ufvm_close: %s\n", run->seed,
				ufvm_strerror(err));
			ok = false;
		}
		run->vm = NULL;
	}
	for (i = 0; i < run->nthreads && run->w[i]; i++) {
		for (k = 0; k < FZ_NOPS; k++)
			totals[k] += run->w[i]->done[k];
		totals[FZ_NOPS] += run->w[i]->refused;
		totals[FZ_NOPS + 1] += run->w[i]->kept;
		totals[FZ_NOPS + 2] += run->w[i]->sync_errors;
		totals[FZ_NOPS + 3] += run->w[i]->cut_short;
		totals[FZ_NOPS + 4] += run->w[i]->punches_failed;
		totals[FZ_NOPS + 5] += run->w[i]->peeks;
		totals[FZ_NOPS + 6] += run->w[i]->peek_segv;
		totals[FZ_NOPS + 7] += run->w[i]->peek_bus;
		totals[FZ_NOPS + 8] += run->w[i]->live_closes;
		totals[FZ_NOPS + 9] += run->w[i]->peeks_closing;
		for (k = 0; k < FZ_FILES && (!run->shared || !i); k++) {
			unlink(run->w[i]->files[k].path);
			free(run->w[i]->files[k].model);
		}
		free(run->w[i]);
		run->w[i] = NULL;
	}
	return ok ? 0 : 1;
}

static void fz_usage(FILE *f)
{
	fprintf(f,
		"usage: ufvm [POLICY OPTIONS] fuzz [--seed N] [--seeds N] [--ops N] [--threads N]\n"
		"                                  [--shared] [--inject] [--pages N] [--dir DIR]\n"
		"                                  [--peek] [--jitter N] [--debug-flags MASK]\n"
		"                                  [--verbose]\n"
		"  random file and mapping operations through ufvm, every byte read checked\n"
		"  against a model of the files, and the store files where ufvm promises\n"
		"  durability; exit 1 at the first difference (with its seed)\n\n"
		"  --seed N      first seed (default 1)\n"
		"  --seeds N     seeds to run, one after the other (default 1)\n"
		"  --ops N       operations per worker and seed (default 10000)\n"
		"  --threads N   workers sharing the instance, each on its own files (1-%d,\n"
		"                default 1; with 1 the instance is also closed and opened)\n"
		"  --shared      the workers share their files, each writing its own pages\n"
		"                (page p is worker p %% N's) and truncating them for all\n"
		"  --inject      now and then a worker's file fails its store writes, reads\n"
		"                or hole punches (-EIO) for a while; its syncs may fail,\n"
		"                pwrites may be refused, stores (and loads) through mappings\n"
		"                pause, a refused punch changes nothing; after it, every\n"
		"                sync and read must succeed\n"
		"  --pages N     largest file, pages of 4 KiB (4-4096, default 48)\n"
		"  --dir DIR     where the store files go (default $TMPDIR, else /var/tmp)\n"
		"  --peek        each worker has a thread that loads from its regions while\n"
		"                it changes them (faults racing unmaps, replaces, protects,\n"
		"                zaps, punches, truncates, and with one worker a close of\n"
		"                the instance with its regions mapped); its signals are caught\n"
		"  --jitter N    one call in N of ufvm's debug hooks (UFVM_HOOK_*) yields or\n"
		"                sleeps up to %d us, widening the windows of races\n"
		"  --debug-flags MASK\n"
		"                UFVM_DEBUG_* switches (hexadecimal with 0x): protections\n"
		"                turned off, to see that the fuzzer finds their bugs\n"
		"  --verbose     print each operation\n"
		"  the budget and the policies: options before `fuzz` (ufvm --cache 8 fuzz)\n"
		"  or UFVM_* variables\n", FZ_MAX_THREADS, FZ_JITTER_US);
}

/* A number in [lo, hi] from @s (strtoull()'s @base), or -1 after a message. */
static int fz_number_base(const char *opt, const char *s, int base, uint64_t lo, uint64_t hi,
			  uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (!s) {
		fprintf(stderr, "ufvm fuzz: %s needs a value\n", opt);
		return -1;
	}
	errno = 0;
	v = *s >= '0' && *s <= '9' ? strtoull(s, &end, base) : 0;
	if (*s < '0' || *s > '9' || *end || errno || v < lo || v > hi) {
		fprintf(stderr, "ufvm fuzz: %s wants a number from %" PRIu64 " to %" PRIu64
			", not '%s'\n", opt, lo, hi, s);
		return -1;
	}
	*out = v;
	return 0;
}

static int fz_number(const char *opt, const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
	return fz_number_base(opt, s, 10, lo, hi, out);
}

int ufvm_fuzz_main(int argc, char **argv)
{
	struct fz_run run = { .seed = 1, .ops = 10000, .pages = 48, .nthreads = 1,
			      .lock = PTHREAD_RWLOCK_INITIALIZER };
	uint64_t seeds = 1, first, v, totals[FZ_NOPS + 10] = { 0 };
	const char *dir = NULL, *tmp;
	int i, k, status = 0;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			fz_usage(stdout);
			return 0;
		} else if (!strcmp(a, "--verbose")) {
			run.verbose = true;
			continue;
		} else if (!strcmp(a, "--shared")) {
			run.shared = true;
			continue;
		} else if (!strcmp(a, "--inject")) {
			run.inject = true;
			continue;
		} else if (!strcmp(a, "--peek")) {
			run.peek = true;
			continue;
		} else if (!strcmp(a, "--dir")) {
			if (!val) {
				fprintf(stderr, "ufvm fuzz: --dir needs a value\n");
				return 2;
			}
			dir = val;
		} else if (!strcmp(a, "--seed")) {
			if (fz_number(a, val, 0, UINT64_MAX, &run.seed))
				return 2;
		} else if (!strcmp(a, "--seeds")) {
			if (fz_number(a, val, 1, 1000000, &seeds))
				return 2;
		} else if (!strcmp(a, "--ops")) {
			if (fz_number(a, val, 1, UINT64_MAX, &run.ops))
				return 2;
		} else if (!strcmp(a, "--threads")) {
			if (fz_number(a, val, 1, FZ_MAX_THREADS, &v))
				return 2;
			run.nthreads = (unsigned int)v;
		} else if (!strcmp(a, "--jitter")) {
			if (fz_number(a, val, 1, 1000000, &v))
				return 2;
			run.jitter = (unsigned int)v;
		} else if (!strcmp(a, "--debug-flags")) {
			if (fz_number_base(a, val, 0, 0, UINT64_MAX, &run.debug_flags))
				return 2;
		} else if (!strcmp(a, "--pages")) {
			if (fz_number(a, val, 4, 4096, &v))
				return 2;
			run.pages = (unsigned int)v;
		} else {
			fprintf(stderr, "ufvm fuzz: unknown option: %s\n\n", a);
			fz_usage(stderr);
			return 2;
		}
		i++;
	}
	if (run.inject && run.shared) {
		fprintf(stderr, "ufvm fuzz: --inject and --shared do not go together (a "
			"worker's failing store would be every worker's)\n");
		return 2;
	}
	/*
	 * Always: a worker's own SIGSEGV or SIGBUS (not a peek's) then says
	 * where before the default action, which tests/tools/fuzz.sh's teeth
	 * look for.
	 */
	if (fz_peek_install())
		return 1;
	if (!dir) {
		tmp = getenv("TMPDIR");
		dir = tmp && *tmp ? tmp : "/var/tmp";
	}
	if (snprintf(run.dir, sizeof(run.dir), "%s/ufvm-fuzz.XXXXXX", dir) >=
	    (int)sizeof(run.dir) || !mkdtemp(run.dir)) {
		fprintf(stderr, "ufvm fuzz: cannot make a directory in %s: %s\n", dir,
			strerror(errno));
		return 1;
	}
	first = run.seed;
	for (v = 0; v < seeds && !status; v++) {
		run.seed = first + v;
		status = fz_run_seed(&run, totals);
	}
	rmdir(run.dir);
	printf("ufvm fuzz: %" PRIu64 " seed%s from %" PRIu64 ", %u worker%s, %" PRIu64
	       " operations each: %s\n", v, v == 1 ? "" : "s", first, run.nthreads,
	       run.nthreads == 1 ? "" : "s", run.ops, status ? "FAILED" : "no difference");
	printf("ufvm fuzz: operations done:");
	for (k = 0; k < FZ_NOPS; k++)
		printf(" %s %" PRIu64, fz_op_names[k], totals[k]);
	printf("\n");
	if (run.inject)
		printf("ufvm fuzz: while stores failed: %" PRIu64 " pwrites refused (%" PRIu64
		       " of them kept their growth), %" PRIu64 " syncs failed; while store "
		       "reads failed: %" PRIu64 " preads and pwrites cut short; %" PRIu64
		       " punches refused\n", totals[FZ_NOPS], totals[FZ_NOPS + 1],
		       totals[FZ_NOPS + 2], totals[FZ_NOPS + 3], totals[FZ_NOPS + 4]);
	if (run.peek)
		printf("ufvm fuzz: peekers: %" PRIu64 " loads, and %" PRIu64 " SIGSEGV and %"
		       PRIu64 " SIGBUS instead; %" PRIu64 " instances closed with regions mapped,"
		       " %" PRIu64 " loads begun during those closes\n",
		       totals[FZ_NOPS + 5], totals[FZ_NOPS + 6], totals[FZ_NOPS + 7],
		       totals[FZ_NOPS + 8], totals[FZ_NOPS + 9]);
	printf("ufvm fuzz: %" PRIu64 " pages dirtied ahead of writers (write-ahead)\n",
	       run.wa_pages);
	if (run.jitter) {
		printf("ufvm fuzz: jitter, hook point: calls/waits:");
		for (k = 0; k < FZ_HOOK_POINTS; k++)
			if (run.hook_calls[k])
				printf(" %d: %" PRIu64 "/%" PRIu64, k, run.hook_calls[k],
				       run.hook_waits[k]);
		printf("\n");
	}
	return status;
}
