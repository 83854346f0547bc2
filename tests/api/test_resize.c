/* SPDX-License-Identifier: MIT */
/*
 * test_resize.c - size changes racing writes, write-back, fills and punches.
 *
 * Checks: two ufvm_pwrite()s that extend the file at once never shrink it
 * (each only grows it, under the invalidate lock, in either mode); a write
 * that a truncate cuts between two of its pages starts over after it, so
 * that its first page is not lost; a write-back in flight
 * when ufvm_truncate() shrinks the file does not put the cut bytes back in
 * the store; growing a file zeroes what a mapping wrote past the old end
 * in its last page (the kernel's file systems do the same); a write or read
 * that races a shrinking truncate leaves no page past the new end that a
 * later grow would expose (nor any page at all, once the file is empty);
 * with UFVM_INVALIDATE=addblock, punches against multi-page fills never
 * deadlock; and the write-back error of a file's last user is reported by
 * that user's ufvm_file_close(), even while a readahead of ufvm's still
 * holds the file.
 *
 * The races run in bounded loops (a few hundred rounds, or a second);
 * each of them failed within its first rounds before the fixes they
 * check.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "check.h"
#include "race.h"

static const int RW = UFVM_PROT_READ | UFVM_PROT_WRITE;

static struct ufvm_file *ut_file(struct ufvm *vm, const char *path)
{
	struct ufvm_file *f = NULL;
	int r = ufvm_file_open(vm, path, UFVM_RDWR, &f);

	cr_assert(r == 0, "ufvm_file_open(%s) = %d (%s)", path, r, ufvm_strerror(r));
	return f;
}

static off_t ut_size(struct ufvm_file *f)
{
	off_t sz = -1;

	assert_ok(ufvm_file_size(f, &sz));
	return sz;
}

/* ---- two extending writes ---- */

struct extender {
	struct ufvm_file *f;
	pthread_barrier_t *bar;
	off_t off;
	size_t len;
	char c;
	ssize_t ret;
};

static void *extend_main(void *arg)
{
	struct extender *e = arg;
	char buf[2 * PAGE];

	memset(buf, e->c, e->len);
	pthread_barrier_wait(e->bar);
	e->ret = ufvm_pwrite(e->f, buf, e->len, e->off);
	return NULL;
}

static void extend_race(size_t len, unsigned int invalidate)
{
	struct ufvm_config cfg;
	struct ufvm *vm;
	char path[TMPSTORE_PATH_MAX];
	pthread_barrier_t bar;
	int round;

	assert_ok(ufvm_config_init(&cfg));
	cfg.invalidate = invalidate;
	vm = ut_open(&cfg);
	ut_store("extend", 0, 0, path);
	pthread_barrier_init(&bar, NULL, 2);
	for (round = 0; round < 250; round++) {
		struct ufvm_file *f = ut_file(vm, path);
		struct extender far = { f, &bar, 64 * PAGE, len, 'A', 0 };
		struct extender near = { f, &bar, PAGE, len, 'B', 0 };
		pthread_t a, b;
		char c = 0;

		assert_ok(ufvm_truncate(f, 0));
		pthread_create(&a, NULL, extend_main, &far);
		pthread_create(&b, NULL, extend_main, &near);
		pthread_join(a, NULL);
		pthread_join(b, NULL);
		cr_assert(far.ret == (ssize_t)len && near.ret == (ssize_t)len,
			  "round %d: pwrite = %zd, %zd", round, far.ret, near.ret);
		cr_assert(ut_size(f) == far.off + (off_t)len,
			  "round %d: size %lld after both writes, want %lld", round,
			  (long long)ut_size(f), (long long)(far.off + (off_t)len));
		ut_pread(f, &c, 1, far.off + (off_t)len - 1);
		cr_assert(c == 'A', "round %d: the far write's last byte is %#x", round, c);
		ut_pread(f, &c, 1, near.off);
		cr_assert(c == 'B', "round %d: the near write's first byte is %#x", round, c);
		assert_ok(ufvm_file_close(f));
	}
	pthread_barrier_destroy(&bar);
	ut_close(vm);
}

Test(resize, extending_writes_never_shrink_whole_pages, .timeout = 60)
{
	extend_race(PAGE, UFVM_INVALIDATE_RWSEM);
}

Test(resize, extending_writes_never_shrink_partial_pages, .timeout = 60)
{
	extend_race(100, UFVM_INVALIDATE_RWSEM);
}

/* Invalidations share the block side: they must still go one at a time. */
Test(resize, extending_writes_never_shrink_addblock, .timeout = 60)
{
	extend_race(PAGE, UFVM_INVALIDATE_ADDBLOCK);
}

/* ---- write-back against a shrinking truncate ---- */

struct wb_trunc {
	struct ufvm_file *f;
	pthread_barrier_t bar;
	unsigned int delay_us;
};

static void *wb_main(void *arg)
{
	struct wb_trunc *w = arg;

	pthread_barrier_wait(&w->bar);
	ufvm_writeback(w->f);
	return NULL;
}

static void *trunc_main(void *arg)
{
	struct wb_trunc *w = arg;

	pthread_barrier_wait(&w->bar);
	race_sleep_us(w->delay_us);
	assert_ok(ufvm_truncate(w->f, 0));
	return NULL;
}

Test(resize, writeback_does_not_regrow_a_truncated_store, .timeout = 60)
{
	const size_t len = 512 * PAGE;
	struct ufvm *vm = ut_open(NULL);
	char path[TMPSTORE_PATH_MAX];
	struct wb_trunc w;
	char *buf = malloc(len);
	uint64_t until = race_now_us() + 1000000;
	int round;

	cr_assert(buf);
	memset(buf, 'D', len);
	ut_store("wbtrunc", 0, 0, path);
	pthread_barrier_init(&w.bar, NULL, 2);
	for (round = 0; round < 2000 && race_now_us() < until; round++) {
		pthread_t a, b;

		w.f = ut_file(vm, path);
		ut_pwrite(w.f, buf, len, 0);
		w.delay_us = (unsigned int)(round % 200);
		pthread_create(&a, NULL, wb_main, &w);
		pthread_create(&b, NULL, trunc_main, &w);
		pthread_join(a, NULL);
		pthread_join(b, NULL);
		cr_assert(ut_size(w.f) == 0, "round %d: size %lld", round,
			  (long long)ut_size(w.f));
		cr_assert(tmpstore_size(path) == 0,
			  "round %d: the store file is %lld bytes after ufvm_truncate(0) "
			  "returned: a write-back put cut bytes back", round,
			  (long long)tmpstore_size(path));
		assert_ok(ufvm_file_close(w.f));
		cr_assert(tmpstore_size(path) == 0, "round %d: %lld bytes after close",
			  round, (long long)tmpstore_size(path));
	}
	pthread_barrier_destroy(&w.bar);
	free(buf);
	ut_close(vm);
}

/* ---- growing past what a mapping wrote beyond the end ---- */

Test(resize, growing_zeroes_bytes_written_past_the_old_end, .timeout = 30)
{
	struct ufvm *vm = ut_open(NULL);
	char path[TMPSTORE_PATH_MAX], c = 'x', back[PAGE];
	struct ufvm_file *f;
	uint8_t *map;

	ut_store("tail", 100, 7, path);
	f = ut_file(vm, path);
	map = ut_map(vm, path, 0, PAGE, RW);
	map[200] = 'J';		/* past the end, inside the last page */
	assert_ok(ufvm_truncate(f, PAGE));
	ut_pread(f, &c, 1, 200);
	cr_assert(c == 0, "byte 200 after growing to a page: %#x, want 0", c);
	cr_assert(map[200] == 0, "the mapping shows %#x at 200, want 0", map[200]);
	ut_unmap(vm, map, PAGE);

	/* The same through an extending write, and down to the store. */
	assert_ok(ufvm_truncate(f, 100));
	map = ut_map(vm, path, 0, PAGE, RW);
	map[300] = 'K';
	ut_pwrite(f, "end", 3, 2 * PAGE);
	ut_pread(f, &c, 1, 300);
	cr_assert(c == 0, "byte 300 after an extending write: %#x, want 0", c);
	ut_unmap(vm, map, PAGE);
	assert_ok(ufvm_fsync(f));
	assert_ok(tmpstore_read(path, back, PAGE, 0));
	assert_pattern(7, back, 0, 100, "the file's own bytes");
	assert_zeros(back + 100, 100, PAGE - 100, "the store past the old end");
	assert_ok(ufvm_file_close(f));
	ut_close(vm);
}

/* ---- fills against a shrinking truncate ---- */

struct fill_trunc {
	struct ufvm_file *f;
	pthread_barrier_t bar;
	unsigned int spin;
	bool write;
};

static void *fill_main(void *arg)
{
	struct fill_trunc *t = arg;
	char buf[100];

	memset(buf, 'P', sizeof(buf));
	pthread_barrier_wait(&t->bar);
	if (t->write)
		ufvm_pwrite(t->f, buf, sizeof(buf), 10 * PAGE);
	else
		ufvm_pread(t->f, buf, sizeof(buf), 10 * PAGE);
	return NULL;
}

static void *shrink_main(void *arg)
{
	struct fill_trunc *t = arg;

	pthread_barrier_wait(&t->bar);
	for (volatile unsigned int i = 0; i < t->spin; i++)
		;
	assert_ok(ufvm_truncate(t->f, 0));
	return NULL;
}

static void fill_vs_shrink(bool write)
{
	struct ufvm *vm = ut_open(NULL);
	char path[TMPSTORE_PATH_MAX];
	struct fill_trunc t = { .write = write };
	uint64_t until = race_now_us() + 1000000;
	int round;

	ut_store("filltrunc", 0, 0, path);
	t.f = ut_file(vm, path);
	pthread_barrier_init(&t.bar, NULL, 2);
	for (round = 0; round < 5000 && race_now_us() < until; round++) {
		struct ufvm_stats st;
		pthread_t a, b;
		char c = 0;
		off_t sz;

		assert_ok(ufvm_truncate(t.f, 0));
		ut_pwrite(t.f, "z", 1, 20 * PAGE);	/* page 10 inside, not cached */
		t.spin = (unsigned int)(round * 37) % 20000;
		pthread_create(&a, NULL, fill_main, &t);
		pthread_create(&b, NULL, shrink_main, &t);
		pthread_join(a, NULL);
		pthread_join(b, NULL);
		sz = ut_size(t.f);
		if (sz > (off_t)(10 * PAGE))
			continue;	/* the write came after the truncate */
		assert_ok(ufvm_stats(vm, &st));
		cr_assert(st.cached_pages == 0, "round %d: size %lld after the race, "
			  "%llu pages still cached", round, (long long)sz,
			  (unsigned long long)st.cached_pages);
		assert_ok(ufvm_truncate(t.f, 64 * PAGE));
		ut_pread(t.f, &c, 1, 10 * PAGE);
		cr_assert(c == 0, "round %d: size %lld after the race, then grown: "
			  "byte %#x at page 10, want 0", round, (long long)sz, c);
	}
	pthread_barrier_destroy(&t.bar);
	assert_ok(ufvm_file_close(t.f));
	ut_close(vm);
}

Test(resize, write_racing_shrink_leaves_no_page_past_the_end, .timeout = 60)
{
	fill_vs_shrink(true);
}

Test(resize, read_racing_shrink_leaves_no_page_past_the_end, .timeout = 60)
{
	fill_vs_shrink(false);
}

/* ---- a truncate between two pages of one write ---- */

struct torn {
	struct ufvm_file *f;
	atomic_int armed, go, done;
};

/* The write's source faults on its second page: truncate the target then. */
static void torn_hook(void *arg, unsigned int point, uint64_t a, uint64_t b)
{
	struct torn *t = arg;

	(void)b;
	if (point != UFVM_HOOK_FILL || a != PAGE || !atomic_exchange(&t->armed, 0))
		return;
	atomic_store(&t->go, 1);
	race_wait(&t->done, 1, 5000000);
}

static void *torn_truncate(void *arg)
{
	struct torn *t = arg;

	race_wait(&t->go, 1, 10000000);
	assert_ok(ufvm_truncate(t->f, 0));
	atomic_store(&t->done, 1);
	return NULL;
}

Test(resize, write_torn_by_truncate_starts_over, .timeout = 30)
{
	char src[TMPSTORE_PATH_MAX], dst[TMPSTORE_PATH_MAX], back[2 * PAGE];
	struct torn t = { 0 };
	struct ufvm_config cfg;
	struct ufvm *vm;
	uint8_t *map;
	pthread_t th;
	ssize_t n;

	assert_ok(ufvm_config_init(&cfg));
	cfg.fault_around = 1;
	cfg.readahead = 0;
	cfg.map_ahead = 0;
	vm = ut_open(&cfg);
	ut_store("tornsrc", 2 * PAGE, 0, src);
	ut_store("torndst", 2 * PAGE, 0, dst);
	map = ut_map(vm, src, 0, 2 * PAGE, RW);
	memset(map, 'W', PAGE);		/* the source's first page cached, not its second */
	t.f = ut_file(vm, dst);
	assert_ok(ufvm_debug_hook(vm, torn_hook, &t));
	atomic_store(&t.armed, 1);
	pthread_create(&th, NULL, torn_truncate, &t);
	n = ufvm_pwrite(t.f, map, 2 * PAGE, 0);
	cr_assert(race_join(th, 10000000) == 0, "the truncate did not finish");
	assert_ok(ufvm_debug_hook(vm, NULL, NULL));
	cr_assert(n == (ssize_t)(2 * PAGE), "ufvm_pwrite = %zd", n);
	cr_assert(ut_size(t.f) == (off_t)(2 * PAGE), "size %lld after the write",
		  (long long)ut_size(t.f));
	ut_pread(t.f, back, 2 * PAGE, 0);
	for (size_t i = 0; i < PAGE; i++)
		cr_assert(back[i] == 'W', "byte %zu of the first page is %#x: the truncate "
			  "removed it and the write went on", i, back[i]);
	ut_unmap(vm, map, 2 * PAGE);
	assert_ok(ufvm_file_close(t.f));
	ut_close(vm);
}

/* ---- add/block: punches against multi-page fills ---- */

struct ab_run {
	struct ufvm_file *f;
	atomic_int stop;
	atomic_long punches;
};

static void *ab_puncher(void *arg)
{
	struct ab_run *run = arg;

	while (!atomic_load(&run->stop)) {
		assert_ok(ufvm_punch(run->f, 0, 16 * MiB));
		atomic_fetch_add(&run->punches, 1);
	}
	return NULL;
}

Test(resize, addblock_punch_against_fault_runs_does_not_deadlock, .timeout = 60)
{
	struct ufvm_config cfg;
	struct ufvm *vm;
	char path[TMPSTORE_PATH_MAX];
	struct ab_run run = { 0 };
	uint64_t until = race_now_us() + 1000000;
	volatile uint8_t *map;
	pthread_t th;
	long rounds = 0;

	assert_ok(ufvm_config_init(&cfg));
	cfg.invalidate = UFVM_INVALIDATE_ADDBLOCK;
	cfg.fault_around = 32;
	vm = ut_open(&cfg);
	ut_store("addblock", 16 * MiB, 3, path);
	run.f = ut_file(vm, path);
	map = ut_map(vm, path, 0, 16 * MiB, UFVM_PROT_READ);
	pthread_create(&th, NULL, ab_puncher, &run);
	while (race_now_us() < until) {
		for (size_t off = 0; off < 16 * MiB; off += PAGE)
			(void)map[off];	/* the store's pattern or the punch's zeros */
		rounds++;
	}
	atomic_store(&run.stop, 1);
	cr_assert(race_join(th, 5000000) == 0,
		  "the puncher did not finish within 5 s of the last scan (deadlock)");
	cr_assert(rounds > 0 && atomic_load(&run.punches) > 0, "no progress: %ld scans, %ld punches",
		  rounds, atomic_load(&run.punches));
	ut_unmap(vm, (void *)map, 16 * MiB);
	assert_ok(ufvm_file_close(run.f));
	ut_close(vm);
}

/* ---- the last user reports the write-back error ---- */

struct ra_hold {
	atomic_int started;	/* a readahead reached its store read */
	atomic_int closed;	/* the file's last user is gone */
};

static void ra_hook(void *arg, unsigned int point, uint64_t a, uint64_t b)
{
	struct ra_hold *h = arg;
	char name[16] = "";

	(void)a;
	(void)b;
	if (point != UFVM_HOOK_FILL || prctl(PR_GET_NAME, name) ||
	    strncmp(name, "ufvm-readahead", 14))
		return;
	atomic_store(&h->started, 1);
	race_wait(&h->closed, 1, 5000000);	/* holds the file meanwhile */
}

Test(resize, last_user_reports_the_writeback_error, .timeout = 60)
{
	const size_t part = 2048 * PAGE, bad = 16000 * PAGE;
	char path[TMPSTORE_PATH_MAX], page[PAGE];
	struct ra_hold hold = { 0 };
	struct ufvm_config cfg;
	struct ufvm_file *f;
	struct ufvm *vm;
	size_t off = 0;
	int r;

	assert_ok(ufvm_config_init(&cfg));
	cfg.dirty_expire_ms = 3600000;	/* no background write-back of the bad page */
	vm = ut_open(&cfg);
	ut_store("lastuser", 64 * MiB, 9, path);
	f = ut_file(vm, path);
	memset(page, 'X', sizeof(page));
	ut_pwrite(f, page, PAGE, (off_t)bad);
	assert_ok(ufvm_inject(f, UFVM_INJECT_WRITE_EIO, (off_t)bad, PAGE));
	assert_ok(ufvm_debug_hook(vm, ra_hook, &hold));
	/*
	 * Sequential faults queue asynchronous readaheads.  After each one is
	 * queued, stop touching until it has run: the readahead holds its
	 * pages locked in the hook, and a fault on one of them would wait for
	 * it.  One of them must reach its store read (a fault may have filled
	 * the window first: then go on).
	 */
	for (; off + part <= bad && !atomic_load(&hold.started); off += part) {
		volatile uint8_t *map = ut_map(vm, path, (off_t)off, part, UFVM_PROT_READ);

		for (size_t i = 0; i < part && !atomic_load(&hold.started); i += PAGE) {
			uint64_t n = ut_counter(vm, UFVM_CTR_READAHEAD_ASYNC);

			(void)map[i];
			if (ut_counter(vm, UFVM_CTR_READAHEAD_ASYNC) != n)
				race_wait(&hold.started, 1, 200000);
		}
		ut_unmap(vm, (void *)map, part);
	}
	cr_assert(atomic_load(&hold.started), "no readahead reached the store in %zu MiB "
		  "(%llu asynchronous readaheads)", off / MiB,
		  (unsigned long long)ut_counter(vm, UFVM_CTR_READAHEAD_ASYNC));
	r = ufvm_file_close(f);
	atomic_store(&hold.closed, 1);
	cr_assert(r == -EIO, "ufvm_file_close of the last user = %d, want -EIO "
		  "(a page could not be written)", r);
	r = ufvm_close(vm);
	cr_assert(r == -EIO, "ufvm_close = %d, want -EIO: the page is still not written", r);
}
