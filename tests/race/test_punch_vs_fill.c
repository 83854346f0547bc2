/* SPDX-License-Identifier: MIT */
/*
 * test_punch_vs_fill.c - once ufvm_punch() returns, no reader ever sees the
 * punched generation's bytes (invalidate lock, seed 001; add/block lock,
 * seed 000).
 *
 * A writer fills a range of the file with generation g (every 8-byte word
 * names its generation and its own offset), writes it back to the store
 * (ufvm_pwrite + ufvm_fsync, or stores through a mapping + ufvm_sync, in
 * turn), punches the range and publishes "g is punched"; then g + 1, and
 * so on.  Readers read the range all the time, through ufvm_pread() and
 * through a mapping (faults), and note the last punched generation before
 * each read: a word of that generation or an older one is a violation.
 * Right after each punch the writer reads the whole range too, which must
 * be all zeros.
 *
 * The window, made wide with the hooks.  At UFVM_HOOK_INVALIDATED the punch
 * has dropped the cached pages but not yet freed their frames nor changed
 * the store; the puncher sleeps there, so that readers come back for the
 * pages, and a fill that starts now reads the store's old bytes.  Such a
 * fill's bytes would be undone when the punch frees the frames, so the
 * fill hook holds a fill whose frame still exists (lseek SEEK_DATA on the
 * frames' memfd) until the punch has freed it, and then lets it read the
 * store, which the punch has not changed yet.  With the invalidate lock
 * (rwsem) or the add/block lock no fill can start between the two, so no
 * fill waits there and nothing stale is cached: zero violations.  Teeth:
 * with invalidate = none the same run must count violations (it runs until
 * it does, within a time budget).
 *
 * Write-back during a punch.  A punch keeps the dirty pages of its range
 * cached until the store's punch succeeded (so that a failed one loses no
 * write); a write-back of one of them after the store's punch would put
 * its old bytes back over the hole.  Write-back leaves the pages of a
 * punch under way dirty.  The test dirties a page of the range, and at
 * UFVM_HOOK_PUNCHED (store punched, pages not dropped yet) has another
 * thread write the file back, given up to WB_WAIT_US; the store must then
 * read zeros over the range.  Teeth: UFVM_DEBUG_WB_PAST_PUNCH (write-back
 * writes them) must leave the page's bytes in the store.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <unistd.h>

#include "check.h"
#include "pagemap.h"
#include "race.h"

#define FILE_SIZE	(2 * MiB)
#define R_OFF		(256 * KiB)	/* the range written and punched */
#define R_LEN		(1 * MiB)
#define R_PAGES		(R_LEN / PAGE)
#define SEED		0x5eed0400
#define GEN_TAG		0xa5ull
#define NPREAD		2		/* ufvm_pread readers; one more reads the mapping */
#define READ_PAGES	8		/* pages per ufvm_pread */
#define INVAL_SLEEP_US	3000		/* puncher's sleep at UFVM_HOOK_INVALIDATED */
#define FRAME_WAIT_US	1000000		/* longest hold of a fill whose frame exists */
#define ROUNDS_ON	20		/* rounds with a protection on */
#define BUDGET_ON_US	(8 * 1000000u)
#define BUDGET_OFF_US	(20 * 1000000u)	/* teeth: run until caught, or this long */

struct pvf {
	struct ufvm *vm;
	struct ufvm_file *f;
	const uint8_t *map;		/* read-only, the whole file */
	uint8_t *wmap;			/* writable, the range */
	int frames_fd;			/* our own fd of the file's frames memfd */
	atomic_int done_gen;		/* the last generation whose punch returned */
	atomic_int stop;
	atomic_long violations, writer_violations, corrupt, reads;
	atomic_long fill_waits, fill_wait_timeouts;
	pthread_mutex_t msg_lock;
	char msg[256];			/* the first violation */
};

static uint64_t gen_word(int g, uint64_t off)
{
	return GEN_TAG << 56 | (uint64_t)g << 32 | (off >> 3);
}

/* The generation of word @w at file offset @off: > 0, 0 (zeros), -1 (garbage). */
static long word_gen(uint64_t w, uint64_t off)
{
	if (!w)
		return 0;
	if (w >> 56 != GEN_TAG || (uint32_t)w != (uint32_t)(off >> 3))
		return -1;
	return (long)((w >> 32) & 0xffffff);
}

static void note(struct pvf *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void note(struct pvf *s, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&s->msg_lock);
	if (!s->msg[0]) {
		va_start(ap, fmt);
		vsnprintf(s->msg, sizeof(s->msg), fmt, ap);
		va_end(ap);
	}
	pthread_mutex_unlock(&s->msg_lock);
}

/*
 * Check @len bytes read from file offset @off, read after generation @done
 * was punched.  Return: the number of stale words.
 */
static long check_words(struct pvf *s, const uint8_t *buf, uint64_t off, size_t len,
			int done, const char *who)
{
	long stale = 0;

	for (size_t i = 0; i < len; i += 8) {
		uint64_t w;
		long g;

		memcpy(&w, buf + i, 8);
		g = word_gen(w, off + i);
		if (g < 0) {
			atomic_fetch_add(&s->corrupt, 1);
			note(s, "%s: garbage %#llx at %#llx", who, (unsigned long long)w,
			     (unsigned long long)(off + i));
		} else if (g > 0 && g <= done) {
			if (!stale++)
				note(s, "%s: generation %ld at %#llx after generation %d was punched",
				     who, g, (unsigned long long)(off + i), done);
		}
	}
	atomic_fetch_add(&s->violations, stale);
	return stale;
}

/* Does the file's frame at byte offset @off exist (not a hole in the memfd)? */
static bool frame_exists(struct pvf *s, uint64_t off)
{
	return lseek(s->frames_fd, (off_t)off, SEEK_DATA) == (off_t)off;
}

static void hook(void *arg, unsigned int point, uint64_t a, uint64_t b)
{
	struct pvf *s = arg;

	if (point == UFVM_HOOK_INVALIDATED && a <= R_OFF && R_OFF < a + b) {
		race_sleep_us(INVAL_SLEEP_US);
	} else if (point == UFVM_HOOK_FILL) {
		for (uint64_t off = a & ~(PAGE - 1); off < a + b; off += PAGE) {
			uint64_t until;

			if (off < R_OFF || off >= R_OFF + R_LEN || !frame_exists(s, off))
				continue;
			/* Dropped from the cache, frame not freed: a punch is at work. */
			atomic_fetch_add(&s->fill_waits, 1);
			until = race_now_us() + FRAME_WAIT_US;
			while (frame_exists(s, off) && race_now_us() < until)
				race_sleep_us(20);
			if (frame_exists(s, off))
				atomic_fetch_add(&s->fill_wait_timeouts, 1);
		}
	}
}

static void *pread_reader(void *arg)
{
	struct pvf *s = arg;
	struct rng r = { .s = (uint64_t)(uintptr_t)&r };
	uint8_t *buf = malloc(READ_PAGES * PAGE);

	while (buf && !atomic_load(&s->stop)) {
		uint64_t off = R_OFF + rng_below(&r, R_PAGES - READ_PAGES + 1) * PAGE;
		int done = atomic_load(&s->done_gen);

		if (ufvm_pread(s->f, buf, READ_PAGES * PAGE, (off_t)off) != READ_PAGES * PAGE) {
			atomic_fetch_add(&s->corrupt, 1);
			note(s, "reader: ufvm_pread at %#llx failed", (unsigned long long)off);
			break;
		}
		check_words(s, buf, off, READ_PAGES * PAGE, done, "ufvm_pread reader");
		atomic_fetch_add(&s->reads, 1);
	}
	free(buf);
	return NULL;
}

static void *map_reader(void *arg)
{
	struct pvf *s = arg;
	struct rng r = { .s = 99 };
	uint8_t buf[PAGE];

	while (!atomic_load(&s->stop)) {
		uint64_t off = R_OFF + rng_below(&r, R_PAGES) * PAGE;
		int done = atomic_load(&s->done_gen);

		memcpy(buf, s->map + off, PAGE);
		check_words(s, buf, off, PAGE, done, "mapping reader");
		atomic_fetch_add(&s->reads, 1);
	}
	return NULL;
}

/* Open our own fd of the memfd that holds the frames of the (one) file. */
static int open_frames(void)
{
	int fd = -1, found = frames_fds_open(&fd, 1);

	cr_assert_eq(found, 1, "%d memfds of frames open, want the one of the file under test",
		     found);
	cr_assert(fd >= 0, "cannot open the frames' memfd: %s", strerror(errno));
	return fd;
}

/* Write generation @g over the range and back to the store. */
static void write_gen(struct pvf *s, uint64_t *gbuf, int g)
{
	for (size_t i = 0; i < R_LEN / 8; i++)
		gbuf[i] = gen_word(g, R_OFF + i * 8);
	if (g & 1) {
		ut_pwrite(s->f, gbuf, R_LEN, R_OFF);
		assert_ok(ufvm_fsync(s->f));
	} else {
		memcpy(s->wmap, gbuf, R_LEN);
		assert_ok(ufvm_sync(s->vm, s->wmap, R_LEN));
	}
}

static void run_punch_vs_fill(unsigned int mode)
{
	static const char *const names[] = { "rwsem", "addblock", "none" };
	static struct pvf s;
	const int teeth = mode == UFVM_INVALIDATE_NONE;
	char path[TMPSTORE_PATH_MAX];
	pthread_t rd[NPREAD + 1];
	struct ufvm_config cfg;
	uint64_t *gbuf = malloc(R_LEN), start, budget;
	uint8_t *buf = malloc(R_LEN);
	uint64_t inval0, sreads0;
	int g;

	cr_assert(gbuf && buf);
	memset(&s, 0, sizeof(s));
	pthread_mutex_init(&s.msg_lock, NULL);
	ut_store("f", FILE_SIZE, SEED, path);
	assert_ok(ufvm_config_init(&cfg));
	cfg.invalidate = mode;
	cfg.frame_stripes = 1;	/* open_frames(): the file's frames in one memfd */
	s.vm = ut_open(&cfg);
	assert_ok(ufvm_file_open(s.vm, path, UFVM_RDWR, &s.f));
	s.frames_fd = open_frames();
	s.map = ut_map(s.vm, path, 0, FILE_SIZE, UFVM_PROT_READ);
	s.wmap = ut_map(s.vm, path, R_OFF, R_LEN, UFVM_PROT_READ | UFVM_PROT_WRITE);
	write_gen(&s, gbuf, 1);
	inval0 = ut_counter(s.vm, UFVM_CTR_PAGES_INVALIDATED);
	sreads0 = ut_counter(s.vm, UFVM_CTR_STORE_READS);

	assert_ok(ufvm_debug_hook(s.vm, hook, &s));
	for (int i = 0; i < NPREAD; i++)
		cr_assert(pthread_create(&rd[i], NULL, pread_reader, &s) == 0);
	cr_assert(pthread_create(&rd[NPREAD], NULL, map_reader, &s) == 0);

	start = race_now_us();
	budget = teeth ? BUDGET_OFF_US : BUDGET_ON_US;
	for (g = 1;; g++) {
		if (g > 1)
			write_gen(&s, gbuf, g);
		assert_ok(ufvm_punch(s.f, R_OFF, R_LEN));
		atomic_store(&s.done_gen, g);
		/* Right after the punch: all zeros, through the cache and the mapping. */
		ut_pread(s.f, buf, R_LEN, R_OFF);
		atomic_fetch_add(&s.writer_violations,
				 check_words(&s, buf, R_OFF, R_LEN, g, "ufvm_pread after the punch"));
		memcpy(buf, s.map + R_OFF, R_LEN);
		atomic_fetch_add(&s.writer_violations,
				 check_words(&s, buf, R_OFF, R_LEN, g, "mapping after the punch"));
		if (race_now_us() - start > budget)
			break;
		if (teeth ? atomic_load(&s.violations) > 0 && g >= 3 : g >= ROUNDS_ON)
			break;
	}
	atomic_store(&s.stop, 1);
	for (int i = 0; i <= NPREAD; i++)
		pthread_join(rd[i], NULL);
	assert_ok(ufvm_debug_hook(s.vm, NULL, NULL));

	fprintf(stderr,
		"punch vs fill, invalidate=%s: %d rounds in %llu ms, %ld stale words read (%ld by "
		"the writer), %ld garbage words, %ld reads, %ld fills held for a frame (%ld timed "
		"out), %llu pages invalidated, %llu store reads%s%s\n",
		names[mode], g, (unsigned long long)(race_now_us() - start) / 1000,
		atomic_load(&s.violations), atomic_load(&s.writer_violations),
		atomic_load(&s.corrupt), atomic_load(&s.reads), atomic_load(&s.fill_waits),
		atomic_load(&s.fill_wait_timeouts),
		(unsigned long long)(ut_counter(s.vm, UFVM_CTR_PAGES_INVALIDATED) - inval0),
		(unsigned long long)(ut_counter(s.vm, UFVM_CTR_STORE_READS) - sreads0),
		s.msg[0] ? "; first: " : "", s.msg);

	/* The run raced what it is meant to: punches, refills, readers. */
	cr_assert_gt(ut_counter(s.vm, UFVM_CTR_PAGES_INVALIDATED), inval0, "nothing was punched");
	cr_assert_gt(ut_counter(s.vm, UFVM_CTR_STORE_READS), sreads0, "no fill read the store");
	cr_assert_gt(atomic_load(&s.reads), 0, "the readers never read");
	if (teeth) {
		cr_assert_gt(atomic_load(&s.violations), 0,
			     "invalidate=none: %d rounds and no reader saw a punched generation: "
			     "the test cannot catch a fill racing with a punch (%ld fills were "
			     "held in the window)", g, atomic_load(&s.fill_waits));
	} else {
		cr_assert_eq(atomic_load(&s.violations), 0,
			     "invalidate=%s: %ld words of a punched generation read; first: %s",
			     names[mode], atomic_load(&s.violations), s.msg);
		cr_assert_eq(atomic_load(&s.corrupt), 0, "invalidate=%s: %s", names[mode], s.msg);
	}

	close(s.frames_fd);
	ut_unmap(s.vm, s.wmap, R_LEN);
	ut_unmap(s.vm, (void *)s.map, FILE_SIZE);
	assert_ok(ufvm_file_close(s.f));
	ut_close(s.vm);
	free(gbuf);
	free(buf);
}

Test(punch_vs_fill, invalidate_lock, .timeout = 40)
{
	run_punch_vs_fill(UFVM_INVALIDATE_RWSEM);
}

Test(punch_vs_fill, addblock_lock, .timeout = 40)
{
	run_punch_vs_fill(UFVM_INVALIDATE_ADDBLOCK);
}

Test(punch_vs_fill, teeth_no_lock_serves_stale_data, .timeout = 40)
{
	run_punch_vs_fill(UFVM_INVALIDATE_NONE);
}

/* ---- write-back during a punch ---- */

#define WB_WAIT_US	300000
#define WB_PAGE		5		/* dirty, inside the punched [4, 7) */

static struct wbp {
	struct ufvm_file *f;
	atomic_int punched, wb_done, armed;
	int wb_err;
} wbp;

static void wbp_hook(void *arg, unsigned int point, uint64_t a, uint64_t b)
{
	(void)arg;
	(void)a;
	(void)b;
	if (point != UFVM_HOOK_PUNCHED || !atomic_exchange(&wbp.armed, 0))
		return;
	atomic_store(&wbp.punched, 1);
	race_wait(&wbp.wb_done, 1, WB_WAIT_US);	/* kept out: times out */
}

static void *wbp_writer(void *arg)
{
	(void)arg;
	if (race_wait(&wbp.punched, 1, 10 * 1000000u))
		wbp.wb_err = ufvm_writeback(wbp.f);
	atomic_store(&wbp.wb_done, 1);
	return NULL;
}

static void run_wb_vs_punch(bool teeth)
{
	char path[TMPSTORE_PATH_MAX];
	struct ufvm_config cfg;
	uint8_t *map, buf[3 * PAGE];
	struct ufvm *vm;
	pthread_t th;
	size_t nz = 0;

	memset(&wbp, 0, sizeof(wbp));
	ut_store("w", 16 * PAGE, SEED, path);
	assert_ok(ufvm_config_init(&cfg));
	cfg.debug_flags = teeth ? UFVM_DEBUG_WB_PAST_PUNCH : 0;
	vm = ut_open(&cfg);
	assert_ok(ufvm_file_open(vm, path, UFVM_RDWR, &wbp.f));
	map = ut_map(vm, path, 0, 16 * PAGE, UFVM_PROT_READ | UFVM_PROT_WRITE);
	memset(map + WB_PAGE * PAGE, 0x77, PAGE);	/* dirty */
	assert_ok(ufvm_debug_hook(vm, wbp_hook, NULL));
	atomic_store(&wbp.armed, 1);
	cr_assert(pthread_create(&th, NULL, wbp_writer, NULL) == 0);
	assert_ok(ufvm_punch(wbp.f, 4 * PAGE, 3 * PAGE));
	cr_assert_eq(race_join(th, 10 * 1000000u), 0, "the write-back did not come back");
	assert_ok(ufvm_debug_hook(vm, NULL, NULL));
	cr_assert(atomic_load(&wbp.punched), "the punch never reached UFVM_HOOK_PUNCHED");
	assert_ok(wbp.wb_err);
	cr_assert(tmpstore_read(path, buf, sizeof(buf), 4 * PAGE) == 0);
	for (size_t i = 0; i < sizeof(buf); i++)
		nz += buf[i] != 0;
	fprintf(stderr, "write-back during a punch%s: %zu bytes of the hole not zero in the "
		"store\n", teeth ? " (WB_PAST_PUNCH)" : "", nz);
	if (teeth)
		cr_assert_gt(nz, 0, "WB_PAST_PUNCH: the store's hole is zeros: the test cannot "
			     "see a write-back over it");
	else
		cr_assert_eq(nz, 0, "a write-back during the punch put %zu bytes over the hole",
			     nz);
	if (!teeth)	/* (else refilled from the store's bytes) */
		assert_zeros(map + 4 * PAGE, 4 * PAGE, 3 * PAGE, "the mapping after the punch");
	ut_unmap(vm, map, 16 * PAGE);
	assert_ok(ufvm_file_close(wbp.f));
	ut_close(vm);
}

Test(punch_vs_fill, writeback_during_punch_keeps_the_hole, .timeout = 30)
{
	run_wb_vs_punch(false);
}

Test(punch_vs_fill, teeth_writeback_past_punch_fills_the_hole, .timeout = 30)
{
	run_wb_vs_punch(true);
}
