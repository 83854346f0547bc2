/* SPDX-License-Identifier: MIT */
/*
 * test_punch.c - after ufvm_punch() returns, every reader of the range sees
 * zeros and the store file has a hole there.
 *
 * Checks: the punched range reads as zeros through every region that maps
 * it (pages that were mapped, pages that were only cached, pages that were
 * cold, and pages that were dirty -- whose data must not come back with a
 * later write-back) and through ufvm_pread(); the bytes around the range are
 * untouched; the store file has a hole over the range right after the call
 * (lseek SEEK_DATA) and fewer blocks, and after sync and close still reads
 * zeros there; an unaligned punch zeroes exactly the requested bytes; the
 * range can be written again afterwards and the new data persists; a punch
 * whose store punch fails loses no write, and one needs no store write (it
 * works while writes fail, as on a full disk).
 */
#include <pthread.h>
#include <stdatomic.h>

#include "check.h"
#include "race.h"

#define FILE_SIZE	(4 * MiB)
#define SEED		0x5eed0020
#define P_OFF		(1 * MiB)
#define P_LEN		(256 * KiB)

static const int RW = UFVM_PROT_READ | UFVM_PROT_WRITE;

Test(punch, every_reader_sees_zeros, .timeout = 20)
{
	char path[TMPSTORE_PATH_MAX];
	uint8_t *a, *b, *buf = malloc(FILE_SIZE);
	struct ufvm_file *f;
	struct ufvm *vm;

	cr_assert(buf);
	ut_store("p", FILE_SIZE, SEED, path);
	vm = ut_open(NULL);
	assert_ok(ufvm_file_open(vm, path, UFVM_RDWR, &f));
	a = ut_map(vm, path, 0, FILE_SIZE, RW);
	b = ut_map(vm, path, P_OFF - 64 * KiB, 512 * KiB, UFVM_PROT_READ);

	/*
	 * In the range: pages 0-15 mapped in a and b, 16-31 dirty in a,
	 * 32-47 only cached (ufvm_pread), the rest cold.  Around it: a
	 * dirty page on each side, which must survive.
	 */
	assert_pattern(SEED, a + P_OFF, P_OFF, 16 * PAGE, "a before punch");
	assert_pattern(SEED, b + 64 * KiB, P_OFF, 16 * PAGE, "b before punch");
	memset(a + P_OFF + 16 * PAGE, 0x77, 16 * PAGE);
	ut_pread(f, buf, 16 * PAGE, P_OFF + 32 * PAGE);
	memset(a + P_OFF - PAGE, 0x11, PAGE);
	memset(a + P_OFF + P_LEN, 0x22, PAGE);

	assert_ok(ufvm_punch(f, P_OFF, P_LEN));

	assert_zeros(a + P_OFF, P_OFF, P_LEN, "region a after punch");
	assert_zeros(b + 64 * KiB, P_OFF, P_LEN, "region b after punch");
	ut_pread(f, buf, P_LEN, P_OFF);
	assert_zeros(buf, P_OFF, P_LEN, "ufvm_pread after punch");
	for (size_t i = 0; i < PAGE; i++) {
		cr_assert_eq(a[P_OFF - PAGE + i], 0x11, "dirty page before the range lost");
		cr_assert_eq(a[P_OFF + P_LEN + i], 0x22, "dirty page after the range lost");
	}
	assert_pattern(SEED, a, 0, P_OFF - PAGE, "bytes before the range");
	assert_pattern(SEED, a + P_OFF + P_LEN + PAGE, P_OFF + P_LEN + PAGE,
		       FILE_SIZE - P_OFF - P_LEN - PAGE, "bytes after the range");

	/* Write-back must not resurrect the dirty pages that were punched. */
	assert_ok(ufvm_sync(vm, a, FILE_SIZE));
	ut_unmap(vm, a, FILE_SIZE);
	ut_unmap(vm, b, 512 * KiB);
	assert_ok(ufvm_file_close(f));
	ut_close(vm);
	cr_assert(tmpstore_read(path, buf, FILE_SIZE, 0) == 0);
	assert_zeros(buf + P_OFF, P_OFF, P_LEN, "store file after punch, sync, close");
	assert_pattern(SEED, buf, 0, P_OFF - PAGE, "store file before the range");
	for (size_t i = 0; i < PAGE; i++) {
		cr_assert_eq(buf[P_OFF - PAGE + i], 0x11, "store: dirty page before the range");
		cr_assert_eq(buf[P_OFF + P_LEN + i], 0x22, "store: dirty page after the range");
	}
	free(buf);
}

Test(punch, store_file_has_hole, .timeout = 20)
{
	char path[TMPSTORE_PATH_MAX];
	struct ufvm_file *f;
	struct ufvm *vm;
	long long before, after;
	uint8_t *map;

	ut_store("p", FILE_SIZE, SEED, path);
	cr_assert_eq(tmpstore_is_hole(path, P_OFF, P_LEN), 0, "test set-up: file has a hole");
	before = tmpstore_blocks(path);
	vm = ut_open(NULL);
	assert_ok(ufvm_file_open(vm, path, UFVM_RDWR, &f));
	map = ut_map(vm, path, 0, FILE_SIZE, RW);
	memset(map + P_OFF + PAGE, 0x33, PAGE);		/* a dirty page inside */

	assert_ok(ufvm_punch(f, P_OFF, P_LEN));
	cr_assert_eq(tmpstore_is_hole(path, P_OFF, P_LEN), 1,
		     "no hole at [%#lx, +%#lx) in the store file after ufvm_punch",
		     (unsigned long)P_OFF, (unsigned long)P_LEN);
	after = tmpstore_blocks(path);
	cr_assert(after <= before - (long long)(P_LEN / 512),
		  "st_blocks %lld -> %lld: the punch freed less than %lu bytes", before, after,
		  (unsigned long)P_LEN);

	/* Still a hole after the dirty page's region is synced and unmapped. */
	assert_ok(ufvm_sync(vm, map, FILE_SIZE));
	ut_unmap(vm, map, FILE_SIZE);
	assert_ok(ufvm_file_close(f));
	ut_close(vm);
	cr_assert_eq(tmpstore_is_hole(path, P_OFF, P_LEN), 1,
		     "the hole was filled again by write-back");
}

/*
 * An unaligned punch zeroes exactly [off, off+len): the partial pages at
 * either end keep their other bytes, in the cache and in the store.
 */
Test(punch, unaligned_zeroes_only_requested_bytes, .timeout = 20)
{
	const off_t off = 3 * PAGE + 100;
	const off_t len = 2 * PAGE + 600;	/* ends at 5 * PAGE + 700 */
	const size_t lo = 3 * PAGE, hi = 6 * PAGE;	/* the pages touched */
	char path[TMPSTORE_PATH_MAX];
	uint8_t *map, buf[6 * PAGE], want[6 * PAGE];
	struct ufvm_file *f;
	struct ufvm *vm;

	ut_store("p", 1 * MiB, SEED, path);
	vm = ut_open(NULL);
	assert_ok(ufvm_file_open(vm, path, UFVM_RDWR, &f));
	map = ut_map(vm, path, 0, 1 * MiB, UFVM_PROT_READ);
	assert_pattern(SEED, map, 0, hi, "before punch");	/* cached and mapped */

	pattern_fill(SEED, want, 0, sizeof(want));
	memset(want + off, 0, len);
	assert_ok(ufvm_punch(f, off, len));

	assert_same(map + lo, want + lo, lo, hi - lo, "mapping after unaligned punch");
	ut_pread(f, buf, hi - lo, lo);
	assert_same(buf, want + lo, lo, hi - lo, "ufvm_pread after unaligned punch");
	assert_pattern(SEED, map + hi, hi, 1 * MiB - hi, "pages after the punch");

	ut_unmap(vm, map, 1 * MiB);
	assert_ok(ufvm_file_close(f));
	ut_close(vm);
	cr_assert(tmpstore_read(path, buf, sizeof(buf), 0) == 0);
	assert_same(buf, want, 0, sizeof(buf), "store file after unaligned punch");
}

/*
 * Punches of part of one page: from a page's start to inside it, inside
 * it, from inside it to its end, one whole page, and from a page's start
 * past the end of a file that ends inside that page (cut at the end).
 * Each zeroes exactly its bytes, with the page cached clean or dirty,
 * through the mapping, ufvm_pread() and, after a sync, the store (a punch
 * from a page's start to inside the same page used to zero nothing in the
 * cache, and write-back of a dirty page then put the bytes back).
 */
Test(punch, sub_page_punches_zero_their_bytes, .timeout = 20)
{
	static const struct {
		off_t off, len;
	} cases[] = {
		{ 2 * PAGE, 100 },
		{ 3 * PAGE + 100, 200 },
		{ 4 * PAGE + 100, PAGE - 100 },
		{ 5 * PAGE, PAGE },
		{ 15 * PAGE, 2 * PAGE },
	};
	const off_t size = 16 * PAGE - 1000;
	char path[TMPSTORE_PATH_MAX];
	uint8_t *map, buf[16 * PAGE], want[16 * PAGE];
	struct ufvm_file *f;
	struct ufvm *vm;

	for (unsigned int dirty = 0; dirty < 2; dirty++) {
		for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
			off_t off = cases[i].off, end = off + cases[i].len;

			if (end > size)
				end = size;
			ut_store("p", size, SEED, path);
			vm = ut_open(NULL);
			assert_ok(ufvm_file_open(vm, path, UFVM_RDWR, &f));
			map = ut_map(vm, path, 0, (size_t)size, RW);
			memset(want, 0, sizeof(want));
			pattern_fill(SEED, want, 0, (size_t)size);
			assert_same(map, want, 0, (size_t)size, "before the punch");
			if (dirty)	/* every page dirty, its first and last bytes */
				for (off_t pg = 0; pg < size; pg += PAGE) {
					off_t last = pg + (off_t)PAGE > size ? size - 1 : pg + (off_t)PAGE - 1;

					want[pg] = map[pg] = (uint8_t)(0x40 + pg / PAGE);
					want[last] = map[last] = (uint8_t)(0x80 + pg / PAGE);
				}
			assert_ok(ufvm_punch(f, off, cases[i].len));
			memset(want + off, 0, (size_t)(end - off));
			assert_same(map, want, 0, (size_t)size,
				    "mapping after punch [%jd, +%jd), %s", (intmax_t)off,
				    (intmax_t)cases[i].len, dirty ? "dirty" : "clean");
			ut_pread(f, buf, (size_t)size, 0);
			assert_same(buf, want, 0, (size_t)size,
				    "ufvm_pread after punch [%jd, +%jd), %s", (intmax_t)off,
				    (intmax_t)cases[i].len, dirty ? "dirty" : "clean");
			assert_ok(ufvm_fsync(f));
			ut_unmap(vm, map, (size_t)size);
			assert_ok(ufvm_file_close(f));
			ut_close(vm);
			cr_assert(tmpstore_read(path, buf, (size_t)size, 0) == 0);
			assert_same(buf, want, 0, (size_t)size,
				    "store after punch [%jd, +%jd), %s, and a sync", (intmax_t)off,
				    (intmax_t)cases[i].len, dirty ? "dirty" : "clean");
		}
	}
}

/*
 * A punch that fails loses no write.  Dirty pages in the range -- written
 * through a mapping, by ufvm_pwrite(), and the partial pages at both ends
 * -- with the store's hole punch failing (UFVM_INJECT_PUNCH_EIO): the punch
 * returns -EIO, and every byte reads back as written, through the mapping,
 * ufvm_pread() and, after ufvm_fsync(), the store file (the punch used to
 * drop the dirty pages and zero the partial ones in the cache first).
 * With the store's writes failing instead (UFVM_INJECT_WRITE_EIO, as on a
 * full disk) the punch needs none: it succeeds, the range reads zeros,
 * and a dirty page beside it stays dirty and is written once writes work.
 */
static void punch_dirty(int inject)
{
	const off_t off = 3 * PAGE + 100, len = 4 * PAGE;	/* pages 3..7, partial at both ends */
	char path[TMPSTORE_PATH_MAX];
	uint8_t *map, buf[10 * PAGE], want[10 * PAGE];
	bool fails = inject == UFVM_INJECT_PUNCH_EIO;
	struct ufvm_stats st;
	struct ufvm_file *f;
	struct ufvm *vm;

	ut_store("p", 1 * MiB, SEED, path);
	vm = ut_open(NULL);
	assert_ok(ufvm_file_open(vm, path, UFVM_RDWR, &f));
	map = ut_map(vm, path, 0, 1 * MiB, RW);
	pattern_fill(SEED, want, 0, sizeof(want));
	for (unsigned int pg = 3; pg <= 8; pg++)	/* dirty: the range and page 8 */
		want[pg * PAGE + 200] = map[pg * PAGE + 200] = (uint8_t)(0xa0 + pg);
	memset(want + 5 * PAGE + 50, 0xcc, 300);	/* and by ufvm_pwrite */
	ut_pwrite(f, want + 5 * PAGE + 50, 300, 5 * PAGE + 50);
	assert_ok(ufvm_inject(f, inject, 0, 1 * MiB));
	if (fails) {
		assert_err(ufvm_punch(f, off, len), EIO);
	} else {
		assert_ok(ufvm_punch(f, off, len));
		memset(want + off, 0, len);
		assert_ok(ufvm_stats(vm, &st));
		cr_assert_geq(st.dirty_pages, 1, "the dirty page beside the punch is clean");
	}
	assert_ok(ufvm_inject(f, inject, 0, 0));
	assert_same(map, want, 0, sizeof(want), "mapping after the punch");
	ut_pread(f, buf, sizeof(buf), 0);
	assert_same(buf, want, 0, sizeof(buf), "ufvm_pread after the punch");
	assert_ok(ufvm_fsync(f));
	cr_assert(tmpstore_read(path, buf, sizeof(buf), 0) == 0);
	assert_same(buf, want, 0, sizeof(buf), "store file after the punch and a sync");
	ut_unmap(vm, map, 1 * MiB);
	assert_ok(ufvm_file_close(f));
	ut_close(vm);
}

Test(punch, failed_store_punch_loses_no_write, .timeout = 20)
{
	punch_dirty(UFVM_INJECT_PUNCH_EIO);
}

Test(punch, punch_needs_no_store_write, .timeout = 20)
{
	punch_dirty(UFVM_INJECT_WRITE_EIO);
}

/* A punch of pages never read: the store is punched, not just the cache. */
Test(punch, cold_range, .timeout = 20)
{
	char path[TMPSTORE_PATH_MAX];
	struct ufvm_file *f;
	struct ufvm *vm;
	uint8_t *map;

	ut_store("p", FILE_SIZE, SEED, path);
	vm = ut_open(NULL);
	assert_ok(ufvm_file_open(vm, path, UFVM_RDWR, &f));
	map = ut_map(vm, path, 0, FILE_SIZE, UFVM_PROT_READ);
	assert_ok(ufvm_punch(f, P_OFF, P_LEN));
	assert_zeros(map + P_OFF, P_OFF, P_LEN, "cold range after punch");
	assert_pattern(SEED, map + P_OFF + P_LEN, P_OFF + P_LEN, PAGE, "page after the range");
	ut_unmap(vm, map, FILE_SIZE);
	assert_ok(ufvm_file_close(f));
	ut_close(vm);
}

/* After a punch the range can be written again, and the data persists. */
Test(punch, write_after_punch, .timeout = 20)
{
	char path[TMPSTORE_PATH_MAX];
	uint8_t *map, buf[PAGE];
	struct ufvm_file *f;
	struct ufvm *vm;

	ut_store("p", FILE_SIZE, SEED, path);
	vm = ut_open(NULL);
	assert_ok(ufvm_file_open(vm, path, UFVM_RDWR, &f));
	map = ut_map(vm, path, 0, FILE_SIZE, RW);
	memset(map + P_OFF, 0x44, 4 * PAGE);		/* dirty, mapped writable */
	assert_ok(ufvm_punch(f, P_OFF, P_LEN));
	assert_zeros(map + P_OFF, P_OFF, 4 * PAGE, "after punch");
	memset(map + P_OFF + PAGE, 0x55, PAGE);
	cr_assert_eq(map[P_OFF + PAGE + 17], 0x55);
	assert_ok(ufvm_sync(vm, map, FILE_SIZE));
	cr_assert(tmpstore_read(path, buf, PAGE, P_OFF + PAGE) == 0);
	for (size_t i = 0; i < PAGE; i++)
		cr_assert_eq(buf[i], 0x55, "store byte %#zx after write, punch, write, sync",
			     P_OFF + PAGE + i);
	cr_assert(tmpstore_read(path, buf, PAGE, P_OFF) == 0);
	assert_zeros(buf, P_OFF, PAGE, "store: punched page not rewritten");
	ut_unmap(vm, map, FILE_SIZE);
	assert_ok(ufvm_file_close(f));
	ut_close(vm);
}

/*
 * A ufvm_pwrite() that a punch lands in the middle of (its user buffer is
 * a ufvm mapping whose second page faults, held in the fill hook while
 * the punch runs) ends as one order or the other, never a mix: it starts
 * over after the punch, so both pages hold the write.  Without the restart
 * the first page was punched after it was written and read zeros.
 */
struct mid {
	uint64_t hold_off;
	atomic_int held, go;
};

static void mid_hook(void *arg, unsigned int point, uint64_t a, uint64_t b)
{
	struct mid *t = arg;

	(void)b;
	if (point != UFVM_HOOK_FILL || a != t->hold_off || atomic_exchange(&t->held, 1))
		return;
	race_wait(&t->go, 1, 5000000);
}

static struct ufvm_file *mid_f;

static void *mid_punch(void *arg)
{
	struct mid *t = arg;

	race_wait(&t->held, 1, 5000000);
	assert_ok(ufvm_punch(mid_f, PAGE, 2 * PAGE));
	atomic_store(&t->go, 1);
	return NULL;
}

Test(punch, pwrite_beside_a_punch_is_not_a_mix, .timeout = 20)
{
	char path[TMPSTORE_PATH_MAX], src[TMPSTORE_PATH_MAX], got[2];
	static struct mid t;
	struct ufvm_config cfg;
	struct ufvm *vm;
	pthread_t th;
	uint8_t *buf;

	assert_ok(ufvm_config_init(&cfg));
	cfg.fault_around = 1;	/* the buffer's second page faults on its own */
	cfg.readahead = 0;
	vm = ut_open(&cfg);
	ut_store("mid", 4 * PAGE, SEED, path);
	ut_store("src", 16 * PAGE, SEED + 1, src);
	assert_ok(ufvm_file_open(vm, path, UFVM_RDWR, &mid_f));
	buf = ut_map(vm, src, 0, 16 * PAGE, UFVM_PROT_READ);
	(void)*(volatile uint8_t *)(buf + 6 * PAGE);	/* the first source page: mapped */
	memset(&t, 0, sizeof(t));
	t.hold_off = 7 * PAGE;				/* the second: held in its fill */
	assert_ok(ufvm_debug_hook(vm, mid_hook, &t));
	cr_assert(pthread_create(&th, NULL, mid_punch, &t) == 0);
	cr_assert_eq(ufvm_pwrite(mid_f, buf + 6 * PAGE, 2 * PAGE, PAGE), (ssize_t)(2 * PAGE));
	pthread_join(th, NULL);
	assert_ok(ufvm_debug_hook(vm, NULL, NULL));
	cr_assert(atomic_load(&t.held), "the pwrite's source never faulted in its fill");
	ut_pread(mid_f, &got[0], 1, PAGE);
	ut_pread(mid_f, &got[1], 1, 2 * PAGE);
	cr_assert(got[0] == (char)pattern_byte(SEED + 1, 6 * PAGE) &&
		  got[1] == (char)pattern_byte(SEED + 1, 7 * PAGE),
		  "after the pwrite and the punch, page 1 reads %#x and page 2 %#x: a mix",
		  (uint8_t)got[0], (uint8_t)got[1]);
	ut_unmap(vm, buf, 16 * PAGE);
	assert_ok(ufvm_file_close(mid_f));
	ut_close(vm);
}

/*
 * A punch that fails changes no byte, so a ufvm_pwrite() of its range need
 * not start over for it.  Two threads punch a range back to back, every
 * store punch failing, each punch held 1 ms at UFVM_HOOK_INVALIDATED (so
 * one is nearly always under way); pwrites of the range must complete and
 * their bytes be there.  Teeth (UFVM_DEBUG_FAILED_PUNCH_CUTS: a failed
 * punch counts as cutting the range): every pass of a pwrite meets a punch
 * and starts over, and fewer than 5 complete in a second (none here).
 * Return: the pwrites done in at most @us (100 wanted).
 */
static int pwrites_beside_failing_punches(uint64_t debug, uint64_t us)
{
	char path[TMPSTORE_PATH_MAX];
	struct ufvm_config cfg;
	struct ufvm_file *f;
	struct ufvm *vm;
	int done;

	ut_store("bb", 8 * PAGE, SEED, path);
	assert_ok(ufvm_config_init(&cfg));
	cfg.debug_flags |= debug;
	vm = ut_open(&cfg);
	assert_ok(ufvm_file_open(vm, path, UFVM_RDWR, &f));
	assert_ok(ufvm_inject(f, UFVM_INJECT_PUNCH_EIO, 0, 8 * PAGE));
	done = ut_pwrites_beside_punches(vm, f, 8, EIO, us);
	assert_ok(ufvm_inject(f, UFVM_INJECT_PUNCH_EIO, 0, 0));
	assert_ok(ufvm_file_close(f));
	ut_close(vm);
	return done;
}

Test(punch, pwrite_beside_failing_punches_completes, .timeout = 20)
{
	int done = pwrites_beside_failing_punches(0, 10000000);	/* ~0.3 s here */

	cr_assert_eq(done, 100, "%d of 100 pwrites beside failing punches completed in 10 s", done);
}

Test(punch, pwrite_beside_failing_punches_teeth, .timeout = 30)
{
	ut_assert_pwrites_kept_back(pwrites_beside_failing_punches, UFVM_DEBUG_FAILED_PUNCH_CUTS);
}
