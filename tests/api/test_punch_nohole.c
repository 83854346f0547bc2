/* SPDX-License-Identifier: MIT */
/*
 * test_punch_nohole.c - a punch that fails half way on a file system
 * without holes is not taken for one that changed nothing.
 *
 * Where the store's file system has no hole punching, a punch writes
 * zeros, in 64 KiB pieces.  If a later piece fails, part of the range is
 * zero in the store already.  A ufvm_pwrite() of the range that ran beside
 * such a punch must start over after it, as beside one that succeeded: a
 * failed punch that left the store untouched counts as cutting nothing,
 * one that zeroed part of it does not.
 *
 * The scenario: this executable's own fallocate() refuses hole punching
 * on the store (EOPNOTSUPP) and its pwrite() fails the second piece of
 * zeros (ENOSPC), both while armed.  A pwrite of 32 pages and a bit is
 * held at its last, partial page's fill (UFVM_HOOK_FILL) while another
 * thread writes the file back (the 32 pages are clean now, in the store)
 * and punches the 32 pages: the punch drops the clean pages, zeroes the
 * first 16 in the store and fails.  The pwrite, released, must start over,
 * so every page reads its bytes.  Teeth (UFVM_DEBUG_PARTIAL_PUNCH_EMPTY:
 * such a punch counts as cutting nothing): the first 16 pages read zeros,
 * and the pwrite returned its full length.
 *
 * And the other way round: a punch whose *first* piece of zeros fails
 * changed no byte, so it cuts nothing.  Two threads punch 16 pages back to
 * back, every punch failing so (ENOSPC, as on a full disk), each held 1 ms
 * after its pages are dropped, while a third makes 100 small pwrites into
 * the range: all complete.  Such a punch used to count as having changed
 * the store, and every pwrite met one and started over, for ever.  Teeth
 * (UFVM_DEBUG_FAILED_PUNCH_CUTS): fewer than 5 pwrites in 1 s (in one of
 * up to three runs).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#include "check.h"
#include "race.h"

#define NPG		32		/* pages punched: two 64 KiB pieces of zeros */
#define SEED		0x5eed1e00
#define WAIT_US		10000000

static atomic_int arm, zero_writes, fail_first;
static char store_path[TMPSTORE_PATH_MAX];

static bool is_store(int fd)
{
	char l[64], t[PATH_MAX];
	ssize_t n;

	snprintf(l, sizeof(l), "/proc/self/fd/%d", fd);
	n = readlink(l, t, sizeof(t) - 1);
	if (n < 0)
		return false;
	t[n] = 0;
	return !strcmp(t, store_path);
}

/* A file system without hole punching, for the store, while armed. */
int fallocate(int fd, int mode, off_t off, off_t len)
{
	static int (*real)(int, int, off_t, off_t);

	if (!real)
		real = (int (*)(int, int, off_t, off_t))dlsym(RTLD_NEXT, "fallocate");
	if (atomic_load(&arm) && (mode & FALLOC_FL_PUNCH_HOLE) && is_store(fd)) {
		errno = EOPNOTSUPP;
		return -1;
	}
	return real(fd, mode, off, len);
}

/* ... whose second piece of zeros fails, while armed (every one: fail_first). */
ssize_t pwrite(int fd, const void *buf, size_t len, off_t off)
{
	static ssize_t (*real)(int, const void *, size_t, off_t);
	static const char z[65536];

	if (!real)
		real = (ssize_t (*)(int, const void *, size_t, off_t))dlsym(RTLD_NEXT, "pwrite");
	if (atomic_load(&arm) && len == sizeof(z) && !memcmp(buf, z, len) && is_store(fd) &&
	    (atomic_fetch_add(&zero_writes, 1) == 1 || atomic_load(&fail_first))) {
		errno = ENOSPC;
		return -1;
	}
	return real(fd, buf, len, off);
}

static struct {
	struct ufvm_file *f;
	pthread_t writer;
	atomic_int held, punched;
	int wb_err, punch_err;
	ssize_t wrote;
	char src[NPG * PAGE + 100];
} t;

static void hook(void *arg, unsigned int point, uint64_t a, uint64_t b)
{
	(void)arg;
	(void)b;
	/* The pwrite fills its last, partial page: pages 0..31 are written. */
	if (point == UFVM_HOOK_FILL && a == NPG * PAGE && pthread_equal(pthread_self(), t.writer) &&
	    !atomic_exchange(&t.held, 1))
		race_wait(&t.punched, 1, WAIT_US);
}

static void *writer_main(void *arg)
{
	(void)arg;
	t.wrote = ufvm_pwrite(t.f, t.src, sizeof(t.src), 0);
	return NULL;
}

/* Return: the pages of the pwrite's range that do not hold its bytes. */
static int run(unsigned int debug)
{
	struct ufvm_config cfg;
	struct ufvm *vm;
	uint8_t b[PAGE];
	int bad = 0, i;

	memset(&t, 0, sizeof(t));
	atomic_store(&zero_writes, 0);
	ut_store("nohole", (NPG + 4) * PAGE, SEED, store_path);
	memset(t.src, 0xab, sizeof(t.src));
	assert_ok(ufvm_config_init(&cfg));
	cfg.invalidate = UFVM_INVALIDATE_ADDBLOCK;	/* the fill hook holds no fill side */
	cfg.readahead = 0;
	cfg.debug_flags |= debug;
	vm = ut_open(&cfg);
	assert_ok(ufvm_file_open(vm, store_path, UFVM_RDWR, &t.f));
	assert_ok(ufvm_debug_hook(vm, hook, NULL));
	cr_assert(pthread_create(&t.writer, NULL, writer_main, NULL) == 0);
	cr_assert(race_wait(&t.held, 1, WAIT_US), "the pwrite never filled its last page");
	t.wb_err = ufvm_writeback(t.f);		/* pages 0..31 clean, in the store */
	atomic_store(&arm, 1);
	t.punch_err = ufvm_punch(t.f, 0, NPG * PAGE);	/* zeroes 64 KiB, then fails */
	atomic_store(&arm, 0);
	atomic_store(&t.punched, 1);
	pthread_join(t.writer, NULL);
	assert_ok(ufvm_debug_hook(vm, NULL, NULL));
	assert_ok(t.wb_err);
	cr_assert_eq(t.punch_err, -ENOSPC, "the punch: %d, want -ENOSPC", t.punch_err);
	cr_assert_eq(atomic_load(&zero_writes), 2, "%d pieces of zeros written, want 2",
		     atomic_load(&zero_writes));
	cr_assert_eq(t.wrote, (ssize_t)sizeof(t.src));
	for (i = 0; i < NPG; i++) {
		ut_pread(t.f, b, PAGE, (off_t)i * PAGE);
		bad += b[0] != 0xab || b[PAGE - 1] != 0xab;
	}
	assert_ok(ufvm_file_close(t.f));
	ut_close(vm);
	return bad;
}

Test(punch_nohole, pwrite_beside_a_half_done_punch_starts_over, .timeout = 30)
{
	int bad = run(0);

	cr_assert_eq(bad, 0, "%d of %d pages of a pwrite that returned its length do not hold "
		     "its bytes: it did not start over after a punch that zeroed part of the "
		     "store", bad, NPG);
}

Test(punch_nohole, teeth, .timeout = 30)
{
	int bad = run(UFVM_DEBUG_PARTIAL_PUNCH_EMPTY);

	cr_assert_gt(bad, 0, "with a half-done punch counting as cutting nothing, every page "
		     "holds the pwrite's bytes: the test cannot see the mix");
}

/* ---- punches whose first piece of zeros fails, back to back ---- */

/* Return: the pwrites done in at most @us (100 wanted). */
static int pwrites_beside_first_piece_failures(uint64_t debug, uint64_t us)
{
	struct ufvm_config cfg;
	struct ufvm_file *f;
	struct ufvm *vm;
	int done;

	ut_store("nohole-bb", NPG * PAGE, SEED, store_path);
	assert_ok(ufvm_config_init(&cfg));
	cfg.debug_flags |= debug;
	vm = ut_open(&cfg);
	assert_ok(ufvm_file_open(vm, store_path, UFVM_RDWR, &f));
	atomic_store(&fail_first, 1);
	atomic_store(&arm, 1);
	done = ut_pwrites_beside_punches(vm, f, NPG / 2, ENOSPC, us);
	atomic_store(&arm, 0);
	atomic_store(&fail_first, 0);
	assert_ok(ufvm_file_close(f));
	ut_close(vm);
	return done;
}

Test(punch_nohole, pwrite_beside_punches_failing_at_once_completes, .timeout = 30)
{
	int done = pwrites_beside_first_piece_failures(0, 10000000);

	cr_assert_eq(done, 100, "%d of 100 pwrites beside punches that failed before writing "
		     "a byte completed in 10 s", done);
}

Test(punch_nohole, pwrite_beside_punches_failing_at_once_teeth, .timeout = 30)
{
	ut_assert_pwrites_kept_back(pwrites_beside_first_piece_failures,
				    UFVM_DEBUG_FAILED_PUNCH_CUTS);
}
