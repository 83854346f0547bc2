/* SPDX-License-Identifier: MIT */
/*
 * test_resize_errors.c - store errors in the middle of a truncate or a
 * write-back that another thread is waiting on.
 *
 * Checks: a shrinking ufvm_truncate() whose store truncate fails returns
 * the error and loses nothing (the size stays, a dirty page still reaches
 * the store), also when a write-back ran while the truncate waited for its
 * store; a sync waits for another thread's write-back that counted itself
 * in the flush epoch just as a sync flipped it; and the last user's
 * ufvm_file_close() reports the error of a background write-back that was
 * in flight when it looked (its page was no longer marked dirty, but not
 * yet written either).
 *
 * In the add/block mode a fill holds "add" only to insert its page and
 * reads the file's size later: one that reads while a shrinking truncate's
 * new size is in force would fill its page short (zeros past the new end),
 * and the store truncate may still fail.  Such a fill waits for the
 * outcome: a pread of a page past the new end then reads the file's bytes,
 * and so does the store after a write fault on the new last page (inside
 * both sizes, mapped and dirtied: written back, a short fill's zeros
 * would replace the file's bytes).  A write fault's fill from a store in
 * memory, which keeps mmap_lock and maps its page in the same call that
 * makes it, must not map and dirty a page past the new end either.
 * Teeth for all three: UFVM_DEBUG_FILL_PAST_SHRINK (fills go on).
 *
 * A pwrite that extended the file and then failed takes back only its own
 * extension, from the size it grew from under the lock: not past another
 * thread's truncate that grew the file while it waited for that lock.
 *
 * The store's ftruncate() and pwrite() are interposed here (the library is
 * linked statically into this test) to fail on demand.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "check.h"
#include "race.h"
#include "sigbus.h"

static atomic_llong slow_truncate_to = -1;	/* ftruncate(fd, this) waits, succeeds */
static atomic_int in_slow_truncate, release_slow_truncate;
static atomic_llong fail_truncate_to = -1;	/* ftruncate(fd, this) fails: EIO */
static atomic_int hold_truncate, in_truncate;	/* ... after waiting for */
static atomic_int release_truncate;		/* this */
static atomic_llong bg_write_at = -1;		/* the background thread's pwrite here: */
static atomic_int bg_in_write, bg_release;	/* held until released, then EIO */
static atomic_llong any_write_at = -1;		/* any thread's pwrite here: the same */
static atomic_int any_in_write, any_release, any_done;

int ftruncate(int fd, off_t len)
{
	static int (*real)(int, off_t);

	if (!real)
		real = (int (*)(int, off_t))dlsym(RTLD_NEXT, "ftruncate");
	if (len == atomic_load(&slow_truncate_to)) {
		atomic_store(&in_slow_truncate, 1);
		race_wait(&release_slow_truncate, 1, 5000000);
		return real(fd, len);
	}
	if (len == atomic_load(&fail_truncate_to)) {
		if (atomic_load(&hold_truncate)) {
			atomic_store(&in_truncate, 1);
			race_wait(&release_truncate, 1, 5000000);	/* a slow store */
		}
		errno = EIO;
		return -1;
	}
	return real(fd, len);
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
	static ssize_t (*real)(int, const void *, size_t, off_t);
	char name[16] = "";

	if (!real)
		real = (ssize_t (*)(int, const void *, size_t, off_t))dlsym(RTLD_NEXT, "pwrite");
	if (off == atomic_load(&any_write_at)) {
		atomic_store(&any_write_at, -1);
		atomic_store(&any_in_write, 1);
		race_wait(&any_release, 1, 5000000);
		atomic_store(&any_done, 1);
		errno = EIO;
		return -1;
	}
	if (off == atomic_load(&bg_write_at) && !prctl(PR_GET_NAME, name) &&
	    !strcmp(name, "ufvm-bg")) {
		atomic_store(&bg_write_at, -1);
		atomic_store(&bg_in_write, 1);
		race_wait(&bg_release, 1, 5000000);
		errno = EIO;
		return -1;
	}
	return real(fd, buf, n, off);
}

static struct ufvm_file *ut_file(struct ufvm *vm, const char *path)
{
	struct ufvm_file *f = NULL;
	int r = ufvm_file_open(vm, path, UFVM_RDWR, &f);

	cr_assert(r == 0, "ufvm_file_open(%s) = %d (%s)", path, r, ufvm_strerror(r));
	return f;
}

Test(resize_errors, failed_store_truncate_loses_nothing, .timeout = 30)
{
	char path[TMPSTORE_PATH_MAX], page[PAGE], back[PAGE];
	struct ufvm *vm = ut_open(NULL);
	struct ufvm_file *f;
	off_t sz = -1;
	int r;

	ut_store("ftrunc", 3 * PAGE, 5, path);
	f = ut_file(vm, path);
	memset(page, 'N', PAGE);
	ut_pwrite(f, page, PAGE, 2 * PAGE);	/* dirty, not written back yet */
	atomic_store(&fail_truncate_to, 100);
	r = ufvm_truncate(f, 100);
	atomic_store(&fail_truncate_to, -1);
	cr_assert(r == -EIO, "ufvm_truncate with a failing store = %d, want -EIO", r);
	assert_ok(ufvm_file_size(f, &sz));
	cr_assert(sz == 3 * PAGE, "a failed truncate left the size at %lld", (long long)sz);
	ut_pread(f, back, PAGE, 2 * PAGE);
	cr_assert(back[0] == 'N' && back[PAGE - 1] == 'N', "the dirty page reads %#x",
		  back[0]);
	assert_ok(ufvm_fsync(f));
	assert_ok(tmpstore_read(path, back, PAGE, 2 * PAGE));
	cr_assert(back[0] == 'N' && back[PAGE - 1] == 'N',
		  "the store holds %#x: the dirty page was lost", back[0]);
	assert_ok(ufvm_file_close(f));
	ut_close(vm);
}

static struct ufvm_file *trunc_file;

static void *truncate_to_100(void *arg)
{
	(void)arg;
	return (void *)(long)ufvm_truncate(trunc_file, 100);
}

/*
 * A write-back while a shrinking truncate waits for its store: it sees the
 * new size, so it writes nothing past it, but the truncate may still fail
 * and restore the old size.  The pages it did not write (the one the new
 * end cuts, the ones past it) must stay dirty until then, and an fsync
 * must write them once the truncate has failed before it returns.
 */
static void *fsync_trunc_file(void *arg)
{
	(void)arg;
	return (void *)(long)ufvm_fsync(trunc_file);
}

Test(resize_errors, writeback_during_a_failing_truncate_keeps_the_pages, .timeout = 30)
{
	char path[TMPSTORE_PATH_MAX], page[PAGE], back[PAGE];
	struct ufvm *vm = ut_open(NULL);
	pthread_t th, sy;
	void *ret, *r;

	ut_store("ftrunc2", 3 * PAGE, 5, path);
	trunc_file = ut_file(vm, path);
	memset(page, 'N', PAGE);
	ut_pwrite(trunc_file, page, PAGE, 2 * PAGE);	/* past the new end */
	ut_pwrite(trunc_file, page, PAGE, 0);		/* cut by it */
	atomic_store(&fail_truncate_to, 100);
	atomic_store(&hold_truncate, 1);
	pthread_create(&th, NULL, truncate_to_100, NULL);
	cr_assert(race_wait(&in_truncate, 1, 5000000), "the truncate never reached the store");
	pthread_create(&sy, NULL, fsync_trunc_file, NULL);	/* meanwhile */
	race_sleep_us(50000);		/* it writes up to the new end, then waits */
	atomic_store(&release_truncate, 1);
	pthread_join(th, &ret);
	pthread_join(sy, &r);
	atomic_store(&fail_truncate_to, -1);
	atomic_store(&hold_truncate, 0);
	cr_assert((long)ret == -EIO, "ufvm_truncate with a failing store = %ld", (long)ret);
	cr_assert((long)r == 0, "ufvm_fsync beside the truncate = %ld", (long)r);
	/* That fsync began after the writes: they are in the store now. */
	assert_ok(tmpstore_read(path, back, PAGE, 2 * PAGE));
	cr_assert(back[0] == 'N' && back[PAGE - 1] == 'N',
		  "page 2 in the store reads %#x after an fsync beside the failed truncate",
		  back[0]);
	assert_ok(tmpstore_read(path, back, PAGE, 0));
	cr_assert(back[100] == 'N' && back[PAGE - 1] == 'N',
		  "page 0 in the store reads %#x past byte 100 after an fsync beside the "
		  "failed truncate", back[PAGE - 1]);
	assert_ok(ufvm_file_close(trunc_file));
	ut_close(vm);
}

static void *release_later(void *arg)
{
	(void)arg;
	race_sleep_us(100000);
	atomic_store(&bg_release, 1);
	return NULL;
}

Test(resize_errors, last_user_waits_for_writeback_in_flight, .timeout = 30)
{
	char path[TMPSTORE_PATH_MAX], page[PAGE];
	struct ufvm_config cfg;
	struct ufvm_file *f;
	struct ufvm *vm;
	pthread_t th;
	int r;

	assert_ok(ufvm_config_init(&cfg));
	cfg.dirty_expire_ms = 20;	/* the background thread writes it back soon */
	vm = ut_open(&cfg);
	ut_store("bgwb", 16 * PAGE, 9, path);
	f = ut_file(vm, path);
	memset(page, 'X', PAGE);
	atomic_store(&bg_write_at, 4 * PAGE);
	ut_pwrite(f, page, PAGE, 4 * PAGE);
	cr_assert(race_wait(&bg_in_write, 1, 10000000), "no background write-back came");
	/* The page is clean now and its write not done: it fails in 100 ms. */
	pthread_create(&th, NULL, release_later, NULL);
	r = ufvm_file_close(f);
	pthread_join(th, NULL);
	cr_assert(r == -EIO, "ufvm_file_close of the last user = %d, want the "
		  "in-flight write-back's -EIO", r);
	ufvm_close(vm);
}

/*
 * A sync waits for the write-backs of other threads in flight: they count
 * in a flush epoch, which each sync flips before it waits for the old one.
 * A run that read the epoch just before another sync flipped it, and only
 * then counted itself, is in the epoch that sync has looked at already;
 * it must move to the new one, or the next sync does not wait for it and
 * may miss its error.  UFVM_HOOK_WB_EPOCH holds the run there while a
 * sync of another page flips the epoch; then the run's store write is
 * held for 100 ms, and fails.  A sync made meanwhile must return after
 * the write (whichever of the two syncs then reports its error).  Teeth:
 * UFVM_DEBUG_WB_EPOCH_ONCE keeps the run in the epoch it read, and the
 * sync returns while the write is still in flight.
 */
struct epoch_race {
	struct ufvm_file *f;
	atomic_int armed, in_begin, go_on;
	int fsync_err;
};

static void epoch_hook(void *arg, unsigned int point, uint64_t a, uint64_t b)
{
	struct epoch_race *t = arg;

	(void)b;
	if (point != UFVM_HOOK_WB_EPOCH || a != 3 * PAGE || !atomic_exchange(&t->armed, 0))
		return;
	atomic_store(&t->in_begin, 1);
	race_wait(&t->go_on, 1, 5000000);
}

static void *epoch_fsync(void *arg)
{
	struct epoch_race *t = arg;

	t->fsync_err = ufvm_fsync(t->f);
	return NULL;
}

static void *release_any_later(void *arg)
{
	(void)arg;
	race_sleep_us(100000);
	atomic_store(&any_release, 1);
	return NULL;
}

/* Return: whether the sync made while the write was held returned after it. */
static bool run_epoch(unsigned int debug_flags)
{
	char path[TMPSTORE_PATH_MAX], page[PAGE];
	static struct epoch_race t;
	struct ufvm_config cfg;
	pthread_t th, rel;
	struct ufvm *vm;
	void *addr = NULL;
	bool after;
	int r;

	memset(&t, 0, sizeof(t));
	atomic_store(&any_release, 0);
	atomic_store(&any_in_write, 0);
	atomic_store(&any_done, 0);
	assert_ok(ufvm_config_init(&cfg));
	cfg.debug_flags = debug_flags;
	vm = ut_open(&cfg);
	ut_store("epoch", 4 * PAGE, 11, path);
	t.f = ut_file(vm, path);
	assert_ok(ufvm_map_file(t.f, 0, 4 * PAGE, UFVM_PROT_READ | UFVM_PROT_WRITE,
				UFVM_MAP_SHARED, &addr));
	memset(page, 'E', PAGE);
	ut_pwrite(t.f, page, PAGE, 3 * PAGE);		/* page 3 dirty */
	assert_ok(ufvm_debug_hook(vm, epoch_hook, &t));
	atomic_store(&any_write_at, 3 * PAGE);
	atomic_store(&t.armed, 1);
	cr_assert(pthread_create(&th, NULL, epoch_fsync, &t) == 0);	/* writes page 3 */
	cr_assert(race_wait(&t.in_begin, 1, 5000000), "no write-back of page 3 began");
	assert_ok(ufvm_sync(vm, addr, PAGE));		/* page 0 only: flips the epoch */
	atomic_store(&t.go_on, 1);
	cr_assert(race_wait(&any_in_write, 1, 5000000), "page 3's store write never came");
	/* Page 3 is clean now, its write in flight; it fails in 100 ms. */
	cr_assert(pthread_create(&rel, NULL, release_any_later, NULL) == 0);
	r = ufvm_fsync(t.f);
	after = atomic_load(&any_done);
	pthread_join(rel, NULL);
	pthread_join(th, NULL);
	cr_assert(t.fsync_err == -EIO, "the fsync that wrote page 3 got %d", t.fsync_err);
	cr_assert(!after || r == 0 || r == -EIO, "the other fsync got %d", r);
	assert_ok(ufvm_debug_hook(vm, NULL, NULL));
	assert_ok(ufvm_unmap(vm, addr, 4 * PAGE));
	ufvm_file_close(t.f);	/* what it reports depends on the run */
	ut_close(vm);
	return after;
}

Test(resize_errors, sync_waits_for_a_writeback_that_counted_late, .timeout = 30)
{
	cr_assert(run_epoch(0), "ufvm_fsync returned while another thread's write-back "
		  "was in flight");
}

Test(resize_errors, teeth_epoch_once_misses_the_writeback, .timeout = 30)
{
	cr_assert(!run_epoch(UFVM_DEBUG_WB_EPOCH_ONCE), "counting in the epoch it read, the "
		  "write-back should be missed by the sync, which returns at once");
}

struct short_fill {
	struct ufvm_file *f;
	uint64_t page;		/* whose fill the hook holds */
	atomic_int armed, at_size, go;
	long trunc_err;
};

/* Hold the 1-page fill of page t->page just before it reads the size. */
static void short_fill_hook(void *arg, unsigned int point, uint64_t a, uint64_t b)
{
	struct short_fill *t = arg;

	(void)b;
	if (point != UFVM_HOOK_FILL_SIZE || a != t->page * PAGE || !atomic_exchange(&t->armed, 0))
		return;
	atomic_store(&t->at_size, 1);
	race_wait(&t->go, 1, 5000000);
}

static void *read_page_12(void *arg)
{
	struct short_fill *t = arg;
	char buf[PAGE];

	ufvm_pread(t->f, buf, PAGE, 12 * PAGE);	/* whatever it returns */
	return NULL;
}

static void *truncate_short(void *arg)
{
	struct short_fill *t = arg;

	t->trunc_err = ufvm_truncate(t->f, 10 * PAGE + 1);
	return NULL;
}

/* The add/block configuration of these races, with @debug. */
static void short_fill_config(struct ufvm_config *cfg, unsigned int debug)
{
	assert_ok(ufvm_config_init(cfg));
	cfg->invalidate = UFVM_INVALIDATE_ADDBLOCK;
	cfg->readahead = 0;	/* a 1-page fill */
	cfg->debug_flags |= debug;
}

/*
 * Start @filler(@arg), whose 1-page fill of page t->page the hook holds at
 * its size read, then a truncate to 10 pages and a byte whose store
 * truncate fails; release the fill once the new size is in force; wait for
 * both.
 * The truncate must fail and leave the size at 16 pages.
 */
static void race_short_fill(struct short_fill *t, struct ufvm *vm, void *(*filler)(void *),
			    void *arg)
{
	pthread_t fl, tr;
	off_t sz = 0;

	assert_ok(ufvm_debug_hook(vm, short_fill_hook, t));
	atomic_store(&fail_truncate_to, 10 * PAGE + 1);
	atomic_store(&t->armed, 1);
	cr_assert(pthread_create(&fl, NULL, filler, arg) == 0);
	cr_assert(race_wait(&t->at_size, 1, 5000000), "the fill of page %lu never came",
		  (unsigned long)t->page);
	cr_assert(pthread_create(&tr, NULL, truncate_short, t) == 0);
	for (uint64_t until = race_now_us() + 5000000; sz != 10 * PAGE + 1;) {
		assert_ok(ufvm_file_size(t->f, &sz));	/* the new size, in force */
		cr_assert(race_now_us() < until, "the truncate never set its size");
		race_sleep_us(1000);
	}
	atomic_store(&t->go, 1);
	pthread_join(fl, NULL);
	pthread_join(tr, NULL);
	atomic_store(&fail_truncate_to, -1);
	assert_ok(ufvm_debug_hook(vm, NULL, NULL));
	cr_assert_eq(t->trunc_err, -EIO, "the truncate with a failing store returned %ld",
		     t->trunc_err);
	assert_ok(ufvm_file_size(t->f, &sz));
	cr_assert_eq(sz, 16 * PAGE);
}

/* Return: whether page 12 reads right after the failed truncate. */
static bool run_short_fill(unsigned int debug)
{
	char path[TMPSTORE_PATH_MAX], buf[PAGE];
	struct short_fill t = { 0 };
	struct ufvm_config cfg;
	struct ufvm *vm;
	bool ok;

	short_fill_config(&cfg, debug);
	ut_store("short", 16 * PAGE, 12, path);
	vm = ut_open(&cfg);
	t.f = ut_file(vm, path);
	t.page = 12;
	race_short_fill(&t, vm, read_page_12, &t);
	ut_pread(t.f, buf, PAGE, 12 * PAGE);
	ok = pattern_mismatch(12, buf, 12 * PAGE, PAGE) < 0;
	assert_ok(ufvm_file_close(t.f));
	ut_close(vm);
	return ok;
}

Test(resize_errors, pread_past_a_failed_truncate_s_size_reads_the_file, .timeout = 30)
{
	cr_assert(run_short_fill(0), "page 12 reads zeros: filled against the failed "
		  "truncate's size, it stayed cached");
}

Test(resize_errors, teeth_fill_past_shrink_preads_zeros, .timeout = 30)
{
	cr_assert(!run_short_fill(UFVM_DEBUG_FILL_PAST_SHRINK), "page 12 should read the "
		  "zeros it was filled with");
}

struct fault_fill {
	struct short_fill s;
	uint8_t *map, byte;
	size_t at;		/* the byte written */
	int sig;
};

/* Write a byte of the page back: the page's bytes do not change. */
static void *write_own_byte(void *arg)
{
	struct fault_fill *t = arg;
	struct sigbus_info info;

	t->sig = sigbus_write(t->map + t->s.page * PAGE + t->at, t->byte, &info);
	return NULL;
}

/*
 * The fill of a write fault on byte @at of page @page, held at its size
 * read until a truncate to 10 pages and a byte has stored its size; the
 * store's truncate then fails.  With UFVM_DEBUG_FILL_HOOKED in @debug the
 * fill is the in-memory one that keeps mmap_lock; without, the retry
 * path's.  Return: whether that page of the store file holds its bytes
 * after a sync; *@copies: the backend maps pages in its fill (the
 * userfaultfd one).
 */
static bool run_fault_short_fill(uint64_t page, size_t at, unsigned int debug, bool *copies)
{
	char path[TMPSTORE_PATH_MAX], buf[PAGE];
	struct fault_fill t = { .s.page = page, .at = at };
	struct ufvm_config cfg;
	struct ufvm *vm;
	bool ok;

	short_fill_config(&cfg, debug);
	cfg.fault_around = 1;
	ut_store("short", 16 * PAGE, 12, path);
	cr_assert(tmpstore_read(path, &t.byte, 1, page * PAGE + at) == 0);
	sigbus_install();	/* the application's, before ufvm_open: a SIGBUS
				   ufvm does not serve in-thread comes here */
	vm = ut_open(&cfg);
	*copies = !strncmp(ufvm_backend_name(vm), "uffd", 4);
	t.s.f = ut_file(vm, path);
	assert_ok(ufvm_map_file(t.s.f, 0, 16 * PAGE, UFVM_PROT_READ | UFVM_PROT_WRITE, 0,
				(void **)&t.map));
	race_short_fill(&t.s, vm, write_own_byte, &t);
	if (page * PAGE + at < 10 * PAGE + 1)	/* inside both sizes */
		cr_assert_eq(t.sig, 0, "the write to page %lu got a signal", (unsigned long)page);
	assert_ok(ufvm_sync(vm, t.map, 16 * PAGE));
	cr_assert(tmpstore_read(path, buf, PAGE, page * PAGE) == 0);
	ok = pattern_mismatch(12, buf, page * PAGE, PAGE) < 0;
	assert_ok(ufvm_unmap(vm, t.map, 16 * PAGE));
	assert_ok(ufvm_file_close(t.s.f));
	ut_close(vm);
	return ok;
}

Test(resize_errors, failed_truncate_leaves_a_faulted_page_s_bytes, .timeout = 30)
{
	bool copies;

	cr_assert(run_fault_short_fill(12, 5, UFVM_DEBUG_FILL_HOOKED, &copies), "page 12 of "
		  "the store lost its bytes: its fill against the failed truncate's size was "
		  "mapped, dirtied and written back");
}

Test(resize_errors, teeth_fill_past_shrink_writes_zeros_back, .timeout = 30)
{
	bool copies, ok = run_fault_short_fill(12, 5, UFVM_DEBUG_FILL_HOOKED |
					       UFVM_DEBUG_FILL_PAST_SHRINK, &copies);

	if (!copies)
		cr_skip_test("the sigsegv backend's fill maps nothing: the usual map refuses");
	cr_assert(!ok, "page 12 of the store should hold the zeros its fill mapped and the "
		  "sync wrote back");
}

/* Page 10 is the new last page: the truncate to 10 pages and a byte cuts it. */
Test(resize_errors, failed_truncate_leaves_the_new_last_page_s_bytes, .timeout = 30)
{
	bool copies;

	cr_assert(run_fault_short_fill(10, 0, 0, &copies), "page 10 of the store lost its "
		  "bytes: filled short against the failed truncate's size, then written");
}

Test(resize_errors, teeth_fill_past_shrink_cuts_the_new_last_page, .timeout = 30)
{
	bool copies;

	cr_assert(!run_fault_short_fill(10, 0, UFVM_DEBUG_FILL_PAST_SHRINK, &copies),
		  "page 10 of the store should hold the zeros its short fill wrote back");
}

struct grow {
	struct ufvm_file *f;
	long r;
};

static void *grow_to_5000(void *arg)
{
	struct grow *g = arg;

	g->r = ufvm_truncate(g->f, 5000);
	return NULL;
}

static void *write_8000_at_10(void *arg)
{
	struct grow *g = arg;
	char buf[8000];

	memset(buf, 0x77, sizeof(buf));
	g->r = ufvm_pwrite(g->f, buf, sizeof(buf), 10);	/* page 0 cannot be read */
	return NULL;
}

Test(resize_errors, failed_pwrite_keeps_a_truncate_that_grew_the_file, .timeout = 30)
{
	char path[TMPSTORE_PATH_MAX];
	struct grow c = { 0 }, a = { 0 };
	pthread_t tc, ta;
	struct ufvm *vm;
	off_t sz;

	ut_store("unext", 100, 7, path);
	vm = ut_open(NULL);
	c.f = a.f = ut_file(vm, path);
	assert_ok(ufvm_inject(c.f, UFVM_INJECT_READ_EIO, 0, PAGE));
	atomic_store(&slow_truncate_to, 5000);
	cr_assert(pthread_create(&tc, NULL, grow_to_5000, &c) == 0);
	cr_assert(race_wait(&in_slow_truncate, 1, 5000000), "the truncate never reached the store");
	cr_assert(pthread_create(&ta, NULL, write_8000_at_10, &a) == 0);	/* waits for the lock */
	race_sleep_us(100000);
	atomic_store(&release_slow_truncate, 1);
	pthread_join(tc, NULL);
	pthread_join(ta, NULL);
	atomic_store(&slow_truncate_to, -1);
	cr_assert_eq(c.r, 0, "ufvm_truncate(5000) = %ld", c.r);
	cr_assert_eq(a.r, -EIO, "ufvm_pwrite = %ld", a.r);
	assert_ok(ufvm_file_size(c.f, &sz));
	assert_ok(ufvm_inject(c.f, UFVM_INJECT_READ_EIO, 0, 0));
	assert_ok(ufvm_file_close(c.f));
	ut_close(vm);
	cr_assert_eq(sz, 5000, "the truncate to 5000 succeeded and the pwrite wrote nothing, "
		     "yet the size is %lld", (long long)sz);
}
