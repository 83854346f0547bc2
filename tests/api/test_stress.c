/* SPDX-License-Identifier: MIT */
/*
 * test_stress.c - many threads fault, write and re-map at once, and every
 * byte ends up right.
 *
 * Several worker threads read and write random pages of several regions of
 * one file (overlapping regions, one of them read-only), through the
 * mappings and through ufvm_pread()/ufvm_pwrite(), while another thread maps
 * and unmaps regions of two other files and of the file itself in a loop
 * (reading and rewriting their bytes), and -- in the second test -- a third
 * thread calls
 * ufvm_sync() in a loop, so write-back and write-protect re-arming race with
 * the writers.  Each file page has one owner: only the owning worker writes
 * it, so that worker's shadow copy is exact and it checks every read of its
 * own pages on the spot; now and then it punches one of its pages and checks
 * at once that it reads zeros (while the others fault, and fault around,
 * its neighbours); every fifth page is never written and everybody checks it
 * against the original pattern.  The run must really have faulted, dirtied
 * and invalidated pages (ufvm_stats), or it proves nothing.  At the end: ufvm_sync(), then
 * every byte of the file through a mapping, through ufvm_pread() and in the
 * store file (plain pread) must equal the shadow, and the other files must
 * still hold their pattern.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <unistd.h>

#include "check.h"

#define FILE_SIZE	(8 * MiB)
#define NPAGES		(FILE_SIZE / PAGE)
#define SEED		0x5eed0060
#define SEED_B		0x5eed0061
#define SEED_C		0x5eed0062
#define NWORKERS	4
#define OPS		60000
#define OTHER_SIZE	(2 * MiB)
#define MAPPER_MIN	200		/* map/unmap cycles at least */

static const int RW = UFVM_PROT_READ | UFVM_PROT_WRITE;

/* Regions of the file under test (offsets and lengths in pages). */
static const struct {
	size_t pg, npg;
	int prot;
} regs[] = {
	{ 0, NPAGES, UFVM_PROT_READ | UFVM_PROT_WRITE },
	{ 259, 1024 - 3, UFVM_PROT_READ | UFVM_PROT_WRITE },	/* 1 MiB + 12 KiB */
	{ 1025, 1023, UFVM_PROT_READ | UFVM_PROT_WRITE },
	{ 512, 1024, UFVM_PROT_READ },
};
#define NREGS	(int)(sizeof(regs) / sizeof(regs[0]))

struct stress {
	struct ufvm *vm;
	struct ufvm_file *f;
	uint8_t *map[NREGS];
	uint8_t *shadow;		/* owned pages written by their owner only */
	char path[TMPSTORE_PATH_MAX];	/* the file under test */
	char other[2][TMPSTORE_PATH_MAX];
	atomic_int workers_left;
	atomic_int stop_sync;
	atomic_long errors;
	atomic_long syncs, map_cycles, sync_errors;
	pthread_mutex_t msg_lock;
	char msg[512];			/* the first error */
};

struct worker {
	struct stress *s;
	int id;
	pthread_t th;
};

static void fail(struct stress *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void fail(struct stress *s, const char *fmt, ...)
{
	va_list ap;

	if (atomic_fetch_add(&s->errors, 1) > 0)
		return;
	pthread_mutex_lock(&s->msg_lock);
	va_start(ap, fmt);
	vsnprintf(s->msg, sizeof(s->msg), fmt, ap);
	va_end(ap);
	pthread_mutex_unlock(&s->msg_lock);
}

/* Page owner: 0..NWORKERS-1, or -1 for a page nobody writes. */
static int owner(size_t pg)
{
	int o = (int)(pg % (NWORKERS + 1));

	return o == NWORKERS ? -1 : o;
}

static void *worker(void *arg)
{
	struct worker *w = arg;
	struct stress *s = w->s;
	struct rng r = { .s = 1000 + w->id };

	for (int op = 0; op < OPS && !atomic_load(&s->errors); op++) {
		int i = (int)rng_below(&r, NREGS);
		size_t pg = regs[i].pg + rng_below(&r, regs[i].npg);
		size_t off = pg * PAGE + rng_below(&r, PAGE / 8) * 8;	/* file offset */
		volatile uint64_t *p = (volatile uint64_t *)(s->map[i] + off - regs[i].pg * PAGE);
		unsigned int kind = (unsigned int)rng_below(&r, 16);
		uint64_t v, want;

		if (owner(pg) == w->id && kind < 6 && (regs[i].prot & UFVM_PROT_WRITE)) {
			v = rng_next(&r);
			*p = v;
			memcpy(s->shadow + off, &v, 8);
		} else if (owner(pg) == w->id && kind == 6) {
			v = rng_next(&r);
			if (ufvm_pwrite(s->f, &v, 8, off) != 8) {
				fail(s, "worker %d: ufvm_pwrite at %#zx failed", w->id, off);
				break;
			}
			memcpy(s->shadow + off, &v, 8);
		} else if (owner(pg) == w->id && kind == 8 && rng_below(&r, 8) == 0) {
			/*
			 * Punch the page: every region must read zeros at once,
			 * even while other threads fault (and fault around)
			 * its neighbours.
			 */
			int ret = ufvm_punch(s->f, (off_t)(pg * PAGE), PAGE);
			const uint8_t *page = s->map[i] + (pg - regs[i].pg) * PAGE;
			ssize_t m;

			if (ret) {
				fail(s, "worker %d: ufvm_punch of page %zu = %d", w->id, pg, ret);
				break;
			}
			memset(s->shadow + pg * PAGE, 0, PAGE);
			m = zero_mismatch(page, PAGE);
			if (m >= 0)
				fail(s, "worker %d: region %d, page %zu punched: byte %zd is %#x",
				     w->id, i, pg, m, page[m]);
		} else if (owner(pg) == w->id && kind == 7) {
			if (ufvm_pread(s->f, &v, 8, off) != 8) {
				fail(s, "worker %d: ufvm_pread at %#zx failed", w->id, off);
				break;
			}
			memcpy(&want, s->shadow + off, 8);
			if (v != want)
				fail(s, "worker %d: ufvm_pread of own word at %#zx: %#llx, want %#llx",
				     w->id, off, (unsigned long long)v, (unsigned long long)want);
		} else if (owner(pg) == w->id) {
			v = *p;
			memcpy(&want, s->shadow + off, 8);
			if (v != want)
				fail(s, "worker %d: region %d, own word at %#zx: %#llx, want %#llx",
				     w->id, i, off, (unsigned long long)v, (unsigned long long)want);
		} else if (owner(pg) < 0) {
			v = *p;
			want = pattern_word(SEED, off / 8);
			if (v != want)
				fail(s, "worker %d: region %d, unwritten word at %#zx: %#llx, want %#llx",
				     w->id, i, off, (unsigned long long)v, (unsigned long long)want);
		} else {
			(void)*p;	/* someone else's page: just fault it */
		}
	}
	atomic_fetch_sub(&s->workers_left, 1);
	return NULL;
}

/* Map @npg pages of the file under test at page @pg, check its unwritten pages. */
static int mapper_own_file(struct stress *s, struct rng *r, size_t pg, size_t npg)
{
	void *addr = NULL;
	uint8_t *m;
	int ret;

	ret = ufvm_map(s->vm, s->path, (off_t)(pg * PAGE), npg * PAGE, UFVM_PROT_READ, 0, &addr);
	if (ret) {
		fail(s, "mapper: ufvm_map of the file under test = %d (%s)", ret, ufvm_strerror(ret));
		return ret;
	}
	m = addr;
	for (int k = 0; k < 8; k++) {
		size_t p = pg + rng_below(r, npg), foff;

		if (owner(p) >= 0) {
			(void)*(volatile uint8_t *)(m + (p - pg) * PAGE);	/* just fault */
			continue;
		}
		foff = p * PAGE + rng_below(r, PAGE);
		if (m[foff - pg * PAGE] != pattern_byte(SEED, foff)) {
			fail(s, "mapper: file under test, unwritten byte %#zx: %#x, want %#x", foff,
			     m[foff - pg * PAGE], pattern_byte(SEED, foff));
			break;
		}
	}
	ret = ufvm_unmap(s->vm, addr, npg * PAGE);
	if (ret)
		fail(s, "mapper: ufvm_unmap = %d (%s)", ret, ufvm_strerror(ret));
	return ret;
}

/*
 * Maps and unmaps regions of the other files, and read-only regions of the
 * file under test, until the workers are done.
 */
static void *mapper(void *arg)
{
	struct stress *s = arg;
	const uint64_t seeds[2] = { SEED_B, SEED_C };
	struct rng r = { .s = 77 };
	long n = 0;

	while ((atomic_load(&s->workers_left) > 0 || n < MAPPER_MIN) && !atomic_load(&s->errors)) {
		int which = (int)rng_below(&r, 3);
		size_t pg, npg;
		int prot = rng_below(&r, 2) ? RW : UFVM_PROT_READ;
		void *addr = NULL;
		uint8_t *m;
		int ret;

		if (which == 2) {
			pg = rng_below(&r, NPAGES);
			npg = 1 + rng_below(&r, NPAGES - pg < 256 ? NPAGES - pg : 256);
			if (mapper_own_file(s, &r, pg, npg))
				break;
			n++;
			continue;
		}
		pg = rng_below(&r, OTHER_SIZE / PAGE);
		npg = 1 + rng_below(&r, OTHER_SIZE / PAGE - pg);
		ret = ufvm_map(s->vm, s->other[which], (off_t)(pg * PAGE), npg * PAGE, prot, 0, &addr);
		if (ret) {
			fail(s, "mapper: ufvm_map = %d (%s)", ret, ufvm_strerror(ret));
			break;
		}
		m = addr;
		for (int k = 0; k < 8; k++) {
			size_t o = rng_below(&r, npg * PAGE);
			size_t foff = pg * PAGE + o;
			uint8_t want = pattern_byte(seeds[which], foff);

			if (m[o] != want) {
				fail(s, "mapper: file %d offset %#zx: %#x, want %#x", which, foff, m[o],
				     want);
				break;
			}
			if (prot & UFVM_PROT_WRITE)
				m[o] = want;	/* dirty it, same bytes */
		}
		ret = ufvm_unmap(s->vm, addr, npg * PAGE);
		if (ret) {
			fail(s, "mapper: ufvm_unmap = %d (%s)", ret, ufvm_strerror(ret));
			break;
		}
		n++;
	}
	atomic_store(&s->map_cycles, n);
	return NULL;
}

static void *syncer(void *arg)
{
	struct stress *s = arg;

	while (!atomic_load(&s->stop_sync)) {
		int ret = ufvm_sync(s->vm, s->map[0], FILE_SIZE);

		if (ret) {
			atomic_fetch_add(&s->sync_errors, 1);
			fail(s, "syncer: ufvm_sync = %d (%s)", ret, ufvm_strerror(ret));
			break;
		}
		atomic_fetch_add(&s->syncs, 1);
		usleep(500);
	}
	return NULL;
}

static void run_stress(int with_syncer)
{
	static struct stress s;
	struct worker w[NWORKERS];
	const char *path = s.path;
	struct ufvm_stats st0, st1;
	pthread_t mt, st;
	uint8_t *buf;

	memset(&s, 0, sizeof(s));
	pthread_mutex_init(&s.msg_lock, NULL);
	s.shadow = malloc(FILE_SIZE);
	buf = malloc(FILE_SIZE);
	cr_assert(s.shadow && buf);
	pattern_fill(SEED, s.shadow, 0, FILE_SIZE);
	ut_store("a", FILE_SIZE, SEED, s.path);
	ut_store("b", OTHER_SIZE, SEED_B, s.other[0]);
	ut_store("c", OTHER_SIZE, SEED_C, s.other[1]);

	s.vm = ut_open(NULL);
	assert_ok(ufvm_file_open(s.vm, path, UFVM_RDWR, &s.f));
	for (int i = 0; i < NREGS; i++)
		s.map[i] = ut_map(s.vm, path, (off_t)(regs[i].pg * PAGE), regs[i].npg * PAGE,
				  regs[i].prot);

	assert_ok(ufvm_stats(s.vm, &st0));
	atomic_store(&s.workers_left, NWORKERS);
	for (int i = 0; i < NWORKERS; i++) {
		w[i] = (struct worker){ .s = &s, .id = i };
		cr_assert(pthread_create(&w[i].th, NULL, worker, &w[i]) == 0);
	}
	cr_assert(pthread_create(&mt, NULL, mapper, &s) == 0);
	if (with_syncer)
		cr_assert(pthread_create(&st, NULL, syncer, &s) == 0);
	for (int i = 0; i < NWORKERS; i++)
		pthread_join(w[i].th, NULL);
	pthread_join(mt, NULL);
	atomic_store(&s.stop_sync, 1);
	if (with_syncer)
		pthread_join(st, NULL);

	cr_assert_eq(atomic_load(&s.errors), 0, "%ld errors; first: %s",
		     atomic_load(&s.errors), s.msg);
	cr_assert_geq(atomic_load(&s.map_cycles), MAPPER_MIN);
	/* The run exercised what it is meant to. */
	assert_ok(ufvm_stats(s.vm, &st1));
	cr_assert_geq(st1.counters[UFVM_CTR_FAULTS] - st0.counters[UFVM_CTR_FAULTS], NPAGES,
		      "fewer faults than pages: the run did not fault");
	cr_assert_gt(st1.counters[UFVM_CTR_MKWRITE] - st0.counters[UFVM_CTR_MKWRITE], 0,
		     "no mkwrite during the run");
	cr_assert_gt(st1.counters[UFVM_CTR_PAGES_INVALIDATED] -
		     st0.counters[UFVM_CTR_PAGES_INVALIDATED], 0, "no page invalidated by punches");
	if (with_syncer)
		cr_assert_gt(atomic_load(&s.syncs), 0, "the syncer never completed a sync");

	assert_ok(ufvm_sync(s.vm, s.map[0], FILE_SIZE));
	assert_same(s.map[0], s.shadow, 0, FILE_SIZE, "mapping vs shadow");
	for (int i = 1; i < NREGS; i++)
		assert_same(s.map[i], s.shadow + regs[i].pg * PAGE, regs[i].pg * PAGE,
			    regs[i].npg * PAGE, "region %d vs shadow", i);
	ut_pread(s.f, buf, FILE_SIZE, 0);
	assert_same(buf, s.shadow, 0, FILE_SIZE, "ufvm_pread vs shadow");
	cr_assert(tmpstore_read(path, buf, FILE_SIZE, 0) == 0);
	assert_same(buf, s.shadow, 0, FILE_SIZE, "store file after ufvm_sync vs shadow");

	for (int i = 0; i < NREGS; i++)
		ut_unmap(s.vm, s.map[i], regs[i].npg * PAGE);
	assert_ok(ufvm_file_close(s.f));
	ut_close(s.vm);
	cr_assert(tmpstore_read(path, buf, FILE_SIZE, 0) == 0);
	assert_same(buf, s.shadow, 0, FILE_SIZE, "store file after ufvm_close vs shadow");
	for (int k = 0; k < 2; k++) {
		cr_assert(tmpstore_read(s.other[k], buf, OTHER_SIZE, 0) == 0);
		assert_pattern(k ? SEED_C : SEED_B, buf, 0, OTHER_SIZE, "other file %d", k);
	}
	free(buf);
	free(s.shadow);
}

Test(stress, faults_vs_map_unmap, .timeout = 90)
{
	run_stress(0);
}

Test(stress, faults_vs_map_unmap_vs_sync, .timeout = 90)
{
	run_stress(1);
}
