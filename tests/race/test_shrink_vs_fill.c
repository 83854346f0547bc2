/* SPDX-License-Identifier: MIT */
/*
 * test_shrink_vs_fill.c - fills, mapped writes and pwrites at the end of a
 * file while shrinking truncates that always fail run in another thread,
 * in the add/block mode.
 *
 * A fill there holds "add" only to insert its pages and reads the size
 * later, so it can read a pending truncate's new size.  Invariant: every
 * truncate fails, so no byte of the file ever changes but those the
 * threads write (the first CUT_BYTES bytes of the new last page): a pread
 * of the pages from the new last one on never returns other bytes, and
 * after a sync the store holds the file's pattern everywhere else.  A
 * fill that filled the new last page short (zeros past the new end) and
 * was mapped, written and written back, or read by a pread, breaks it.
 *
 * Store truncates take 0-300 us before they fail (the store's ftruncate
 * is interposed: the library is linked statically into this test), and a
 * debug hook holds each fill of a page from the new last one on for 0-100
 * us before it reads the size, so fills meet pending truncates often
 * (fill_waits counts the fills that waited for one).  A budget of 24
 * pages and a 1 ms dirty expiry keep pages coming and going, and a
 * quarter of the pwrites copy from the page they write, so their fault
 * comes inside the copy.
 * Teeth: UFVM_DEBUG_FILL_PAST_SHRINK (fills go on against the pending
 * size) must be caught within a few rounds.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <unistd.h>

#include "check.h"
#include "race.h"

#define NPAGES		48
#define SEED		0x5417
#define CUT_PAGE	30			/* the new last page */
#define CUT_BYTES	50			/* of it, inside the new size */
#define CUT_SIZE	((uint64_t)CUT_PAGE * PAGE + CUT_BYTES)
#define FILE_SIZE	((uint64_t)NPAGES * PAGE + 100)
#define ROUND_MS	300
#define MAX_ROUNDS	5

static atomic_ullong rng_seeds = 1;

/* Uniform in [0, below): each thread its own splitmix64 (pattern.h). */
static uint64_t draw(uint64_t below)
{
	static __thread struct rng r;

	if (!r.s)
		r.s = atomic_fetch_add(&rng_seeds, 1);
	return rng_below(&r, below);
}

int ftruncate(int fd, off_t len)
{
	static int (*real)(int, off_t);

	if (!real)
		real = (int (*)(int, off_t))dlsym(RTLD_NEXT, "ftruncate");
	if (len == (off_t)CUT_SIZE) {
		race_sleep_us(draw(300));
		errno = EIO;
		return -1;
	}
	return real(fd, len);
}

struct round {
	struct ufvm_file *f;
	uint8_t *map;
	atomic_int stop, bad;
	atomic_ulong truncates;
	char why[160];
};

static void fail(struct round *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void fail(struct round *r, const char *fmt, ...)
{
	va_list ap;

	if (atomic_exchange(&r->bad, 1))
		return;
	va_start(ap, fmt);
	vsnprintf(r->why, sizeof(r->why), fmt, ap);
	va_end(ap);
	atomic_store(&r->stop, 1);
}

/* Hold a fill of the new last page or past it just before its size read. */
static void hold_fill(void *arg, unsigned int point, uint64_t a, uint64_t b)
{
	(void)arg;
	(void)b;
	if (point == UFVM_HOOK_FILL_SIZE && a >= (uint64_t)CUT_PAGE * PAGE)
		race_sleep_us(draw(100));
}

static void *truncater(void *arg)
{
	struct round *r = arg;

	while (!atomic_load(&r->stop)) {
		int e = ufvm_truncate(r->f, CUT_SIZE);

		if (e != -EIO)
			fail(r, "a truncate whose store fails returned %d", e);
		atomic_fetch_add(&r->truncates, 1);
		race_sleep_us(50);
	}
	return NULL;
}

/* Writes into the first CUT_BYTES bytes of the new last page; reads below. */
static void *mapper(void *arg)
{
	struct round *r = arg;

	while (!atomic_load(&r->stop)) {
		uint64_t p = draw(CUT_PAGE + 1);

		if (p == CUT_PAGE)
			r->map[p * PAGE + draw(CUT_BYTES)] = (uint8_t)draw(256);
		else
			(void)*(volatile uint8_t *)(r->map + p * PAGE + draw(PAGE));
	}
	return NULL;
}

/*
 * pwrites into the first CUT_BYTES bytes of the new last page from the
 * mapping, and preads from the new last page on, checked past those bytes.
 */
static void *writer(void *arg)
{
	struct round *r = arg;
	uint8_t buf[2 * PAGE];

	while (!atomic_load(&r->stop)) {
		size_t n = 1 + draw(CUT_BYTES - 1);
		uint64_t src = draw(CUT_PAGE) * PAGE + draw(PAGE - CUT_BYTES);
		off_t off = (off_t)(CUT_PAGE + draw(NPAGES - CUT_PAGE)) * PAGE;
		ssize_t k;

		if (!draw(4))	/* from the page it writes: faults inside the copy */
			src = CUT_PAGE * PAGE + draw(CUT_BYTES - n);
		k = ufvm_pwrite(r->f, r->map + src, n, CUT_PAGE * PAGE + draw(CUT_BYTES - n + 1));
		if (k != (ssize_t)n)
			fail(r, "pwrite of %zu bytes returned %zd", n, k);
		k = ufvm_pread(r->f, buf, sizeof(buf), off);
		if (k < 0)
			fail(r, "pread at %lld returned %zd", (long long)off, k);
		for (ssize_t i = 0; i < k; i++) {
			uint64_t o = (uint64_t)off + (uint64_t)i;

			if (o >= CUT_SIZE && buf[i] != pattern_byte(SEED, o)) {
				fail(r, "pread: byte %llu is %#x, the file has %#x",
				     (unsigned long long)o, buf[i], pattern_byte(SEED, o));
				break;
			}
		}
	}
	return NULL;
}

/* Reads pages below the cut and writes back: evictions and write-back. */
static void *churner(void *arg)
{
	struct round *r = arg;
	uint8_t buf[PAGE];

	while (!atomic_load(&r->stop)) {
		(void)ufvm_pread(r->f, buf, PAGE, (off_t)draw(CUT_PAGE) * PAGE);
		if (!draw(8))
			(void)ufvm_writeback(r->f);
	}
	return NULL;
}

/*
 * One round of ROUND_MS with @debug.  Return: whether the invariant held;
 * *@waits: fills that waited for a truncate's outcome.
 */
static bool run_round(unsigned int debug, uint64_t *waits)
{
	void *(*const mains[])(void *) = { truncater, mapper, mapper, writer, writer, churner };
	static uint8_t back[FILE_SIZE];
	char path[TMPSTORE_PATH_MAX];
	pthread_t th[6];
	struct ufvm_config cfg;
	struct round r = { 0 };
	struct ufvm *vm;
	bool ok;

	ut_config_budget(&cfg, 24);
	cfg.invalidate = UFVM_INVALIDATE_ADDBLOCK;
	cfg.dirty_expire_ms = 1;
	cfg.debug_flags |= debug;
	ut_store("shrink", FILE_SIZE, SEED, path);
	vm = ut_open(&cfg);
	assert_ok(ufvm_file_open(vm, path, UFVM_RDWR, &r.f));
	assert_ok(ufvm_map_file(r.f, 0, (size_t)(NPAGES + 1) * PAGE,
				UFVM_PROT_READ | UFVM_PROT_WRITE, 0, (void **)&r.map));
	assert_ok(ufvm_debug_hook(vm, hold_fill, NULL));
	for (unsigned int i = 0; i < 6; i++)
		cr_assert_eq(pthread_create(&th[i], NULL, mains[i], &r), 0);
	/* On past ROUND_MS until a truncate ran (under load its thread may not have). */
	for (uint64_t start = race_now_us(), until = start + ROUND_MS * 1000;
	     (race_now_us() < until || (!atomic_load(&r.truncates) &&
					race_now_us() < start + 10000000)) && !atomic_load(&r.stop);)
		race_sleep_us(5000);
	atomic_store(&r.stop, 1);
	for (unsigned int i = 0; i < 6; i++)
		cr_assert_eq(race_join(th[i], 30 * 1000000), 0, "thread %u is stuck", i);
	assert_ok(ufvm_debug_hook(vm, NULL, NULL));
	assert_ok(ufvm_sync(vm, r.map, (size_t)(NPAGES + 1) * PAGE));
	*waits = ut_counter(vm, UFVM_CTR_FILL_WAITS);
	assert_ok(ufvm_unmap(vm, r.map, (size_t)(NPAGES + 1) * PAGE));
	assert_ok(ufvm_file_close(r.f));
	ut_close(vm);
	cr_assert(atomic_load(&r.truncates) > 0, "no truncate ran");
	ok = !atomic_load(&r.bad);
	cr_assert(tmpstore_read(path, back, FILE_SIZE, 0) == 0);
	for (uint64_t o = 0; ok && o < FILE_SIZE; o++) {
		if (o >= (uint64_t)CUT_PAGE * PAGE && o < CUT_SIZE)
			continue;	/* written by the threads */
		if (back[o] != pattern_byte(SEED, o)) {
			snprintf(r.why, sizeof(r.why), "the store's byte %llu is %#x, the file "
				 "had %#x", (unsigned long long)o, back[o], pattern_byte(SEED, o));
			ok = false;
		}
	}
	if (!ok)
		cr_log_info("round with debug %#x: %s (%lu truncates, %llu fill waits)", debug,
			    r.why, atomic_load(&r.truncates), (unsigned long long)*waits);
	return ok;
}

Test(shrink_vs_fill, failed_truncates_change_no_byte, .timeout = 60)
{
	uint64_t waits;

	cr_assert(run_round(0, &waits), "a failed truncate changed the file's bytes");
	cr_assert(waits > 0, "no fill met a pending truncate: the race was not run");
}

Test(shrink_vs_fill, teeth_fill_past_shrink_changes_bytes, .timeout = 60)
{
	uint64_t waits;
	unsigned int i;

	for (i = 0; i < MAX_ROUNDS; i++)
		if (!run_round(UFVM_DEBUG_FILL_PAST_SHRINK, &waits))
			break;
	cr_assert(i < MAX_ROUNDS, "fills against the pending size went unseen in %u rounds",
		  MAX_ROUNDS);
}
