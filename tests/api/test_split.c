/* SPDX-License-Identifier: MIT */
/*
 * test_split.c - changing part of a region: ufvm_unmap_range(),
 * ufvm_unmap_reserve(), ufvm_protect() and UFVM_MAP_FIXED | UFVM_MAP_REPLACE.
 *
 * Each cuts regions where the range begins and ends and leaves the other
 * parts mapped, with their pages and their dirty state.  The checks: the
 * bytes every part shows, the file's bytes after write-back (a page made
 * writable must pass through mkwrite again, or its writes never reach the
 * file), the errors for bad input, a replace that fails once it took the
 * old parts out (injected with UFVM_DEBUG_REPLACE_FAIL: it leaves no hole),
 * and a race: readers that touch only the
 * parts that stay must never fault while another thread cuts, protects and
 * replaces around them.  Its teeth variant does the same by unmapping the
 * whole region and mapping the parts back, which the readers catch (uffd
 * backend only: there a SIGSEGV can be caught per thread).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <sys/mman.h>
#include <unistd.h>

#include "check.h"

#define NPG	64
#define SEED_A	0x5e1170a1
#define SEED_B	0x5e1170b2

static bool uffd_backend(struct ufvm *vm)
{
	return !strcmp(ufvm_backend_name(vm), "uffd");
}

/* Is [p, p+len) mapped at all?  msync fails with ENOMEM on a hole. */
/*
 * Is all of [p, p+len) mapped?  ("!mapped" then means some of it is not.)
 * An unmapped range may be taken at once by another thread's mmap (the
 * sanitizer's allocator, ufvm's own pools): a mapping there that is not
 * ufvm's (its memfd, or an inaccessible placeholder) does not count.
 */
static bool mapped(void *p, size_t len)
{
	uintptr_t lo = (uintptr_t)p, hi = lo + len, covered = 0;
	char line[512];
	FILE *f;

	if (msync(p, len, MS_ASYNC) != 0)
		return false;
	f = fopen("/proc/self/maps", "r");
	cr_assert(f);
	while (fgets(line, sizeof(line), f)) {
		unsigned long s, e;
		char perms[8] = "";

		if (sscanf(line, "%lx-%lx %7s", &s, &e, perms) != 3 || e <= lo || s >= hi)
			continue;
		if (strstr(line, "ufvm") || !strcmp(perms, "---p") || !strcmp(perms, "---s"))
			covered += (e < hi ? e : hi) - (s > lo ? s : lo);
	}
	fclose(f);
	return covered == len;
}

Test(split, unmap_range_keeps_the_rest, .timeout = 30)
{
	char path[TMPSTORE_PATH_MAX];
	struct ufvm *vm;
	uint8_t *a;

	sigbus_install();
	ut_store("a", NPG * PAGE, SEED_A, path);
	vm = ut_open(NULL);
	a = ut_map(vm, path, 0, NPG * PAGE, UFVM_PROT_READ | UFVM_PROT_WRITE);
	assert_pattern(SEED_A, a, 0, NPG * PAGE, "before");
	a[5 * PAGE] = (uint8_t)~pattern_byte(SEED_A, 5 * PAGE);
	a[20 * PAGE] = (uint8_t)~pattern_byte(SEED_A, 20 * PAGE);

	assert_ok(ufvm_unmap_range(vm, a + 16 * PAGE, 16 * PAGE));
	cr_assert(!mapped(a + 16 * PAGE, 16 * PAGE), "the cut-out part is unmapped");
	cr_assert(mapped(a, 16 * PAGE) && mapped(a + 32 * PAGE, 32 * PAGE));
	cr_assert_eq(ut_store_byte(path, 20 * PAGE), (uint8_t)~pattern_byte(SEED_A, 20 * PAGE),
		     "the cut-out part's dirty page was written back");
	cr_assert_eq(a[5 * PAGE], (uint8_t)~pattern_byte(SEED_A, 5 * PAGE));
	assert_pattern(SEED_A, a + 6 * PAGE, 6 * PAGE, 10 * PAGE, "left part");
	assert_pattern(SEED_A, a + 32 * PAGE, 32 * PAGE, 32 * PAGE, "right part");
	cr_assert_eq(ut_counter(vm, UFVM_CTR_SIGBUS), 0);

	/* The parts are regions of their own now; the whole is not one. */
	assert_err(ufvm_unmap(vm, a, NPG * PAGE), EINVAL);
	/* Writes to a part still count: page 5 is dirty, page 40 becomes so. */
	a[40 * PAGE] = 0x5a;
	assert_ok(ufvm_sync(vm, a + 32 * PAGE, 32 * PAGE));
	cr_assert_eq(ut_store_byte(path, 40 * PAGE), 0x5a);
	/* A range over a part, the hole and half of the other part. */
	assert_ok(ufvm_unmap_range(vm, a + 8 * PAGE, 40 * PAGE));
	cr_assert(mapped(a, 8 * PAGE) && !mapped(a + 8 * PAGE, 40 * PAGE) &&
		  mapped(a + 48 * PAGE, 16 * PAGE));
	cr_assert_eq(a[5 * PAGE], (uint8_t)~pattern_byte(SEED_A, 5 * PAGE));
	ut_unmap(vm, a, 8 * PAGE);
	cr_assert_eq(ut_store_byte(path, 5 * PAGE), (uint8_t)~pattern_byte(SEED_A, 5 * PAGE),
		     "dirty in a part that was never cut: written back at its unmap");
	ut_unmap(vm, a + 48 * PAGE, 16 * PAGE);
	assert_ok(ufvm_unmap_range(vm, a, NPG * PAGE));	/* nothing there: fine */
	ut_close(vm);
}

Test(split, protect_read_only_and_back, .timeout = 30)
{
	char path[TMPSTORE_PATH_MAX];
	struct sigbus_info info;
	struct ufvm *vm;
	uint8_t *a;
	bool catch;

	sigcatch_install();
	ut_store("a", NPG * PAGE, SEED_A, path);
	vm = ut_open(NULL);
	catch = uffd_backend(vm);	/* sigsegv: a real SIGSEGV is not catchable */
	a = ut_map(vm, path, 0, NPG * PAGE, UFVM_PROT_READ | UFVM_PROT_WRITE);
	assert_pattern(SEED_A, a, 0, NPG * PAGE, "before");
	a[3 * PAGE] = 0x11;	/* dirty, mapped writable */
	a[12 * PAGE] = 0x12;

	assert_ok(ufvm_protect(vm, a, 8 * PAGE, UFVM_PROT_READ));
	if (catch)
		cr_assert_eq(sigcatch_write(a + 3 * PAGE, 0x66, &info), SIGSEGV,
			     "a write to the read-only part faults");
	cr_assert_eq(a[3 * PAGE], 0x11);
	a[12 * PAGE] = 0x13;	/* the rest stays writable */
	assert_ok(ufvm_sync(vm, a, NPG * PAGE));
	cr_assert_eq(ut_store_byte(path, 3 * PAGE), 0x11, "dirty before the change: written");
	cr_assert_eq(ut_store_byte(path, 12 * PAGE), 0x13);

	/* Back to writable: page 3 was mapped read-only, clean now. */
	assert_ok(ufvm_protect(vm, a, 8 * PAGE, UFVM_PROT_READ | UFVM_PROT_WRITE));
	cr_assert_eq(a[3 * PAGE], 0x11);
	a[3 * PAGE] = 0x21;
	assert_ok(ufvm_sync(vm, a, NPG * PAGE));
	cr_assert_eq(ut_store_byte(path, 3 * PAGE), 0x21,
		     "a write after the change to writable reaches the file");
	cr_assert(ut_counter(vm, UFVM_CTR_MKWRITE) + ut_counter(vm, UFVM_CTR_FAULTS) > 0);
	/* The whole range is one region per protection change: unmap all. */
	assert_ok(ufvm_unmap_range(vm, a, NPG * PAGE));
	ut_close(vm);
}

/*
 * A protection change that changes nothing splits nothing: the range
 * ufvm_map() returned still unmaps as one (ufvm_unmap() takes only a
 * whole region), and a change inside a region that has it already leaves
 * that region whole too.
 */
Test(split, protect_to_the_same_splits_nothing, .timeout = 30)
{
	char path[TMPSTORE_PATH_MAX];
	struct ufvm_stats st;
	struct ufvm *vm;
	uint8_t *a;

	ut_store("s", NPG * PAGE, SEED_A, path);
	vm = ut_open(NULL);
	a = ut_map(vm, path, 0, NPG * PAGE, UFVM_PROT_READ | UFVM_PROT_WRITE);
	assert_ok(ufvm_protect(vm, a + 4 * PAGE, 4 * PAGE, UFVM_PROT_READ | UFVM_PROT_WRITE));
	assert_ok(ufvm_stats(vm, &st));
	cr_assert_eq(st.regions, 1, "a no-op protect left %llu regions",
		     (unsigned long long)st.regions);
	assert_ok(ufvm_protect(vm, a + 4 * PAGE, 4 * PAGE, UFVM_PROT_READ));	/* 3 regions */
	assert_ok(ufvm_protect(vm, a + 5 * PAGE, 2 * PAGE, UFVM_PROT_READ));
	assert_ok(ufvm_stats(vm, &st));
	cr_assert_eq(st.regions, 3, "pages 5..7, read-only already, made %llu regions",
		     (unsigned long long)st.regions);
	assert_ok(ufvm_protect(vm, a + 6 * PAGE, 6 * PAGE, UFVM_PROT_READ));	/* 4..8 is */
	assert_ok(ufvm_stats(vm, &st));
	cr_assert_eq(st.regions, 4, "pages 6..12 read-only: %llu regions, 4 wanted",
		     (unsigned long long)st.regions);
	assert_ok(ufvm_unmap_range(vm, a, NPG * PAGE));
	a = ut_map(vm, path, 0, NPG * PAGE, UFVM_PROT_READ);
	assert_ok(ufvm_protect(vm, a, NPG * PAGE, UFVM_PROT_READ));
	assert_ok(ufvm_unmap(vm, a, NPG * PAGE));
	ut_close(vm);
}

Test(split, protect_read_only_mapping_writable, .timeout = 30)
{
	char path[TMPSTORE_PATH_MAX];
	struct ufvm_file *f;
	struct ufvm *vm;
	void *p = NULL;
	uint8_t *a;

	ut_store("a", NPG * PAGE, SEED_A, path);
	vm = ut_open(NULL);
	assert_ok(ufvm_file_open(vm, path, UFVM_RDWR, &f));
	assert_ok(ufvm_map_file(f, 0, NPG * PAGE, UFVM_PROT_READ, UFVM_MAP_SHARED, &p));
	a = p;
	assert_pattern(SEED_A, a, 0, NPG * PAGE, "read-only, from a writable file");
	assert_ok(ufvm_protect(vm, a + 8 * PAGE, 48 * PAGE, UFVM_PROT_READ | UFVM_PROT_WRITE));
	for (int i = 8; i < 56; i++)
		a[i * PAGE + 7] = (uint8_t)i;
	assert_ok(ufvm_sync(vm, a, NPG * PAGE));
	for (int i = 8; i < 56; i++)
		cr_assert_eq(ut_store_byte(path, i * PAGE + 7), (uint8_t)i, "page %d", i);
	assert_pattern(SEED_A, a, 0, 8 * PAGE, "read-only part");
	assert_ok(ufvm_unmap_range(vm, a, NPG * PAGE));
	assert_ok(ufvm_file_close(f));
	ut_close(vm);
}

Test(split, bad_input, .timeout = 30)
{
	char path[TMPSTORE_PATH_MAX];
	struct ufvm *vm;
	uint8_t *a, *b;

	ut_store("a", NPG * PAGE, SEED_A, path);
	vm = ut_open(NULL);
	a = ut_map(vm, path, 0, NPG * PAGE, UFVM_PROT_READ);
	b = ut_map(vm, path, 0, NPG * PAGE, UFVM_PROT_READ);
	/* Read-only file handle: never writable. */
	assert_err(ufvm_protect(vm, a, PAGE, UFVM_PROT_READ | UFVM_PROT_WRITE), EACCES);
	assert_err(ufvm_protect(vm, a, PAGE, 0), EINVAL);
	assert_err(ufvm_protect(vm, a, PAGE, UFVM_PROT_WRITE), EINVAL);
	assert_err(ufvm_protect(vm, a, PAGE, 0x10 | UFVM_PROT_READ), EINVAL);
	assert_err(ufvm_protect(vm, a + 1, PAGE, UFVM_PROT_READ), EINVAL);
	assert_err(ufvm_protect(vm, a, 0, UFVM_PROT_READ), EINVAL);
	assert_err(ufvm_protect(NULL, a, PAGE, UFVM_PROT_READ), EINVAL);
	assert_err(ufvm_unmap_range(vm, a + 1, PAGE), EINVAL);
	assert_err(ufvm_unmap_range(vm, a, 0), EINVAL);
	assert_err(ufvm_unmap_range(vm, (void *)(UINTPTR_MAX & ~(PAGE - 1)), 2 * PAGE), EINVAL);
	/* A range with a hole: nothing changes. */
	if (a + NPG * PAGE != b && b + NPG * PAGE != a) {
		uint8_t *lo = a < b ? a : b;

		assert_err(ufvm_protect(vm, lo, (size_t)((a < b ? b : a) - lo) + NPG * PAGE,
					UFVM_PROT_READ), ENOMEM);
	}
	/* REPLACE needs FIXED; FIXED alone must not overlap. */
	void *p = a;
	assert_err(ufvm_map(vm, path, 0, PAGE, UFVM_PROT_READ, UFVM_MAP_REPLACE, &p), EINVAL);
	p = a + PAGE;
	assert_err(ufvm_map(vm, path, 0, PAGE, UFVM_PROT_READ, UFVM_MAP_FIXED, &p), EINVAL);
	assert_pattern(SEED_A, a, 0, NPG * PAGE, "a, after the refusals");
	ut_unmap(vm, a, NPG * PAGE);
	ut_unmap(vm, b, NPG * PAGE);
	ut_close(vm);
}

Test(split, map_replace_middle, .timeout = 30)
{
	char pa[TMPSTORE_PATH_MAX], pb[TMPSTORE_PATH_MAX];
	struct ufvm *vm;
	uint8_t *a;
	void *p;

	ut_store("a", NPG * PAGE, SEED_A, pa);
	ut_store("b", NPG * PAGE, SEED_B, pb);
	vm = ut_open(NULL);
	a = ut_map(vm, pa, 0, NPG * PAGE, UFVM_PROT_READ | UFVM_PROT_WRITE);
	assert_pattern(SEED_A, a, 0, NPG * PAGE, "before");
	a[20 * PAGE] = 0x77;
	p = a + 16 * PAGE;
	assert_ok(ufvm_map(vm, pb, 32 * PAGE, 16 * PAGE, UFVM_PROT_READ,
			   UFVM_MAP_FIXED | UFVM_MAP_REPLACE, &p));
	cr_assert_eq(p, a + 16 * PAGE);
	assert_pattern(SEED_A, a, 0, 16 * PAGE, "left of the new mapping");
	assert_pattern(SEED_B, a + 16 * PAGE, 32 * PAGE, 16 * PAGE, "the new mapping");
	assert_pattern(SEED_A, a + 32 * PAGE, 32 * PAGE, 32 * PAGE, "right of it");
	cr_assert_eq(ut_store_byte(pa, 20 * PAGE), 0x77, "the replaced part was written back");
	/* Over the new one and part of each neighbour, read-write. */
	p = a + 8 * PAGE;
	assert_ok(ufvm_map(vm, pa, 8 * PAGE, 32 * PAGE, UFVM_PROT_READ | UFVM_PROT_WRITE,
			   UFVM_MAP_FIXED | UFVM_MAP_REPLACE, &p));
	assert_pattern(SEED_A, a, 0, 20 * PAGE, "back to a, left");
	cr_assert_eq(a[20 * PAGE], 0x77);
	assert_pattern(SEED_A, a + 21 * PAGE, 21 * PAGE, 43 * PAGE, "back to a, right");
	assert_ok(ufvm_unmap_range(vm, a, NPG * PAGE));
	cr_assert(!mapped(a, NPG * PAGE));
	ut_close(vm);
}

/*
 * A replacing map that fails once the old parts are out (injected): they
 * stay out, written back, and their range is reserved, not a hole; the
 * parts outside the range stay mapped with their bytes, and the range
 * takes a new mapping.
 */
Test(split, map_replace_failure_leaves_no_hole, .timeout = 30)
{
	char pa[TMPSTORE_PATH_MAX], pb[TMPSTORE_PATH_MAX];
	struct ufvm_config cfg;
	struct ufvm *vm;
	uint8_t *a;
	void *p;

	ut_store("a", NPG * PAGE, SEED_A, pa);
	ut_store("b", NPG * PAGE, SEED_B, pb);
	cr_assert(ufvm_config_init(&cfg) == 0);
	cfg.debug_flags |= UFVM_DEBUG_REPLACE_FAIL;
	vm = ut_open(&cfg);
	a = ut_map(vm, pa, 0, NPG * PAGE, UFVM_PROT_READ | UFVM_PROT_WRITE);
	a[20 * PAGE] = 0x77;
	p = a + 16 * PAGE;
	assert_err(ufvm_map(vm, pb, 32 * PAGE, 16 * PAGE, UFVM_PROT_READ,
			    UFVM_MAP_FIXED | UFVM_MAP_REPLACE, &p), ENOMEM);
	cr_assert(mapped(a + 16 * PAGE, 16 * PAGE), "the failed replace left a hole");
	cr_assert_eq(ut_store_byte(pa, 20 * PAGE), 0x77, "the replaced part was not written back");
	assert_pattern(SEED_A, a, 0, 16 * PAGE, "left of the range");
	assert_pattern(SEED_A, a + 32 * PAGE, 32 * PAGE, 32 * PAGE, "right of it");
	/* The range is no region's now: a plain fixed map takes it. */
	p = a + 16 * PAGE;
	assert_ok(ufvm_map(vm, pb, 32 * PAGE, 16 * PAGE, UFVM_PROT_READ, UFVM_MAP_FIXED, &p));
	assert_pattern(SEED_B, a + 16 * PAGE, 32 * PAGE, 16 * PAGE, "the new mapping");
	assert_ok(ufvm_unmap_range(vm, a, NPG * PAGE));
	ut_close(vm);
}

/* ---- the race: readers of the parts that stay ---- */

#define RPG	256		/* readers read pages [0, 64) and [192, 256) */
#define ROUNDS	300		/* and a tail of ROUNDS pages is cut page by page */

struct reader {
	pthread_t t;
	const uint8_t *a;
	bool catch;
	bool *stop;
	unsigned long reads, faults, wrong;	/* written by the reader only */
};

#define READ_ONCE(x)	__atomic_load_n(&(x), __ATOMIC_RELAXED)
#define WRITE_ONCE(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELAXED)

static void *reader_main(void *arg)
{
	struct reader *rd = arg;
	struct sigbus_info info;
	uint64_t i = 0;

	while (!__atomic_load_n(rd->stop, __ATOMIC_RELAXED)) {
		size_t pg = (i % 128) < 64 ? i % 64 : 192 + i % 64;
		off_t off = (off_t)(pg * PAGE + (i * 97) % PAGE);
		uint8_t v;

		if (rd->catch) {
			if (sigcatch_read(rd->a + off, &v, &info)) {
				WRITE_ONCE(rd->faults, rd->faults + 1);
				if (getenv("SPLIT_DEBUG"))
					fprintf(stderr, "sig %d at page %ld code %d\n", info.sig,
						(long)(((uint8_t *)info.addr - rd->a) / (long)PAGE), info.code);
				i++;
				continue;
			}
		} else {
			v = rd->a[off];
		}
		rd->wrong += v != pattern_byte(SEED_A, (uint64_t)off);
		WRITE_ONCE(rd->reads, rd->reads + 1);
		i++;
	}
	return NULL;
}

/*
 * One round of the old way: unmap the region whole, hold its addresses
 * with a reservation as soon as it can (another thread's mmap may land in
 * the hole first: then the round is skipped), and map it back over that.
 */
static void round_whole(struct ufvm *vm, struct ufvm_file *f, uint8_t *a, size_t npg)
{
	void *p;

	assert_ok(ufvm_unmap(vm, a, npg * PAGE));
	p = mmap(a, npg * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
		 -1, 0);
	if (p != a) {
		cr_assert(p == MAP_FAILED, "MAP_FIXED_NOREPLACE ignored");
		cr_skip_test("another mapping took the hole");
	}
	assert_ok(ufvm_map_file(f, 0, npg * PAGE, UFVM_PROT_READ, UFVM_MAP_FIXED, &p));
}

/*
 * Round @k in place: cut, protect and replace around the readers, never
 * leaving a hole that a later fixed mapping would fill (another thread's
 * mmap may take a hole the moment it exists).  The tail ends at @end
 * pages and loses its last page each round.
 */
static void round_in_place(struct ufvm *vm, struct ufvm_file *f, uint8_t *a, size_t end,
			   int k)
{
	void *p;

	assert_ok(ufvm_protect(vm, a + 32 * PAGE, 64 * PAGE, UFVM_PROT_READ | UFVM_PROT_WRITE));
	p = a + 64 * PAGE;	/* not over the readers: see ufvm.h */
	assert_ok(ufvm_map_file(f, 64 * PAGE, 128 * PAGE, UFVM_PROT_READ,
				UFVM_MAP_FIXED | UFVM_MAP_REPLACE, &p));
	assert_ok(ufvm_unmap_range(vm, a + (end - 1) * PAGE, PAGE));	/* splits [192, end) */
	assert_ok(ufvm_protect(vm, a, (end - 1) * PAGE, UFVM_PROT_READ));
	if (k % 16 == 0)	/* make the readers fault again too */
		assert_ok(ufvm_zap(vm, a, (end - 1) * PAGE));
}

/*
 * Change the mapping around the readers ROUNDS times: in place (@whole
 * false), or the way a caller without these calls would, by unmapping the
 * region whole and mapping it back (@whole true: until a reader faults).
 * Return: the faults the readers caught.
 */
static unsigned long race(bool whole)
{
	char path[TMPSTORE_PATH_MAX];
	struct reader rd[2];
	bool stop = false;
	unsigned long faults = 0, wrong = 0, reads = 0;
	size_t npg = RPG + ROUNDS;
	struct ufvm_file *f;
	struct ufvm *vm;
	uint8_t *a;
	void *p = NULL;

	sigcatch_install();
	ut_store("race", (off_t)(npg * PAGE), SEED_A, path);
	vm = ut_open(NULL);
	assert_ok(ufvm_file_open(vm, path, UFVM_RDWR, &f));
	assert_ok(ufvm_map_file(f, 0, npg * PAGE, UFVM_PROT_READ, UFVM_MAP_SHARED, &p));
	a = p;
	for (int i = 0; i < 2; i++) {
		rd[i] = (struct reader){ .a = a, .catch = uffd_backend(vm), .stop = &stop };
		cr_assert_eq(pthread_create(&rd[i].t, NULL, reader_main, &rd[i]), 0);
	}
	while (!READ_ONCE(rd[0].reads) || !READ_ONCE(rd[1].reads))
		sched_yield();		/* both readers at work */
	for (int k = 0; k < (whole ? 100 * ROUNDS : ROUNDS); k++) {
		if (!whole) {
			round_in_place(vm, f, a, npg - (size_t)k, k);
			continue;
		}
		if (READ_ONCE(rd[0].faults) + READ_ONCE(rd[1].faults))
			break;	/* caught */
		round_whole(vm, f, a, npg);
	}
	__atomic_store_n(&stop, true, __ATOMIC_RELAXED);
	for (int i = 0; i < 2; i++) {
		pthread_join(rd[i].t, NULL);
		faults += rd[i].faults;
		wrong += rd[i].wrong;
		reads += rd[i].reads;
	}
	cr_assert_eq(wrong, 0, "readers saw wrong bytes");
	cr_assert_gt(reads + faults, 0);
	if (!whole)
		cr_assert(!mapped(a + (npg - ROUNDS) * PAGE, ROUNDS * PAGE), "the tail is gone");
	assert_ok(ufvm_unmap_range(vm, a, npg * PAGE));
	assert_ok(ufvm_file_close(f));
	ut_close(vm);
	return faults;
}

Test(split, readers_of_kept_parts_never_fault, .timeout = 60)
{
	cr_assert_eq(race(false), 0, "a reader faulted on a part that stayed mapped");
}

Test(split, teeth_unmap_whole_and_map_back_faults, .timeout = 60)
{
	struct ufvm *vm = ut_open(NULL);
	bool catchable = uffd_backend(vm);

	ut_close(vm);
	if (!catchable)	/* sigsegv backend, or in-thread delivery's SIGBUS handler */
		cr_skip_test("a real SIGSEGV is caught per thread with uffd handler threads only");
	cr_assert_gt(race(true), 0, "the readers must catch the hole the old way leaves");
}
