/* SPDX-License-Identifier: MIT */
/*
 * test_unclean.c - the budget when pages cannot be cleaned (every store
 * write fails), and the background thread's stopping point.
 *
 * - rmw_pwrite_stays_within_slack, rmw_mapped_stays_within_slack: a
 *   program that reads a page and then writes it (ufvm_pread + ufvm_pwrite
 *   of one page; or through a mapping, a read fault then mkwrite) dirties a
 *   page that was filled clean: the read fill may go over the budget (a
 *   clean page goes again at the next fill), so the write must meet the
 *   same limit as a dirtying fill, budget + slack, and fail past it
 *   (an error, SIGBUS through a mapping): the cache must not grow with each
 *   (dirty pages within budget + slack, clean ones within a slack above
 *   the dirty ones).
 * - refused_full_page_write_leaves_no_zeros: a whole-page write refused
 *   so is refused before its page is made: not left cached, up to date
 *   and never read, holding zeros that reads return and a later write
 *   puts in the store.
 * - read_over_unclean_pages_is_cheap: with unwritable dirty pages filling
 *   the cache, a read of a new page gives up reclaim after a few rounds
 *   that found nothing to free, instead of retrying their failed
 *   write-backs for hundreds of rounds.
 * - writes_go_on_once_the_store_takes_them: the store fails, the cache
 *   fills with its dirty pages, one clean page is cached past the slack,
 *   then the store takes writes again.  A write that dirties that page
 *   (ufvm_pwrite; through the mapping, a write fault on the cached page and
 *   a write to it mapped read-only) must try a write-back first, not be
 *   refused on the error of the last one, however old (it was, until a
 *   background write-back happened to succeed, about a second later).
 * - a_recovered_store_is_found_beside_a_failing_one: the same, with two
 *   files whose stores fail, one of which recovers: its writes go through,
 *   though the other's unwritable pages come first on the reclaim list.
 * - load_across_two_pages_completes: with the cache past its budget with
 *   dirty pages the store refuses, one load that straddles two pages of
 *   the mapping needs both resident at once.  Each fault's fill evicted
 *   the only clean page, the other half of the load, and the load faulted
 *   forever (a livelock at 100% CPU with the sigsegv backend).
 * - refused_write_to_a_mapped_page_ends: the same cache; a write to a page
 *   mapped read-only is refused at once (SIGBUS), not retried for ever.
 * - healthy_writes_beside_a_few_unclean_pages: 4 unwritable pages under a
 *   budget of 16 cost a healthy file none of its writes.
 * - background_reclaim_stops_at_low_watermark: past the high watermark, the
 *   background thread reclaims down to the low one (budget - budget/8), or
 *   a batch or two below it, not a fixed 32 pages below (which evicted the
 *   hot pages of a small cache: a budget of 64 went down to 25-33).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <time.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "sigbus.h"

#define SEED	0x7265
#define BUDGET	16
#define SLACK	4	/* MAX(budget / 16, VM_CACHE_SLACK_MIN) */

/* @u: a new file of @npages under the budget, every store write failing. */
static void start_failing(struct ut_file *u, const char *name, unsigned int npages)
{
	struct ufvm_config cfg;

	ut_config_budget(&cfg, BUDGET);
	ut_file_open(u, &cfg, name, npages, SEED, UFVM_RDWR);
	assert_ok(ufvm_inject(u->f, UFVM_INJECT_WRITE_EIO, 0, (off_t)(npages * PAGE)));
}

static void stop_failing(struct ut_file *u)
{
	assert_ok(ufvm_inject(u->f, UFVM_INJECT_WRITE_EIO, 0, 0));
	(void)ufvm_fsync(u->f);		/* reports the failures once */
	assert_ok(ufvm_fsync(u->f));
}

/*
 * Dirty pages that cannot be cleaned stay within the budget + slack, and
 * clean pages within a slack of their own above them (room_target() in
 * vm/cache.c); a reading thread's fill goes over by its page.
 */
static void assert_within_slacks(const struct ufvm_stats *st, unsigned int rmws)
{
	cr_assert_leq(st->dirty_pages, BUDGET + SLACK,
		      "%llu pages dirty, budget %u + slack %u, after %u read-modify-writes",
		      (unsigned long long)st->dirty_pages, BUDGET, SLACK, rmws);
	cr_assert_leq(st->cached_pages_max, BUDGET + 2 * SLACK + 1,
		      "%llu pages cached (%llu dirty), budget %u + twice the slack %u, after "
		      "%u read-modify-writes", (unsigned long long)st->cached_pages_max,
		      (unsigned long long)st->dirty_pages, BUDGET, SLACK, rmws);
}

Test(unclean, rmw_pwrite_stays_within_slack, .timeout = 30)
{
	const unsigned int npages = 128;
	struct ufvm_stats st;
	struct ut_file u;
	uint8_t buf[PAGE];
	unsigned int i;
	ssize_t w = 0;

	start_failing(&u, "rmw", npages);
	for (i = 0; i < npages; i++) {
		ut_pread(u.f, buf, PAGE, (off_t)(i * PAGE));
		buf[0] ^= 1;
		w = ufvm_pwrite(u.f, buf, PAGE, (off_t)(i * PAGE));
		if (w != (ssize_t)PAGE)
			break;
	}
	assert_ok(ufvm_stats(u.vm, &st));
	cr_assert_eq(w, -EIO, "the write past the slack: %zd (-EIO wanted)", w);
	assert_within_slacks(&st, i);
	stop_failing(&u);
	ut_file_close(&u);
}

Test(unclean, rmw_mapped_stays_within_slack, .timeout = 30)
{
	const unsigned int npages = 128;
	struct sigbus_info info;
	struct ufvm_stats st;
	struct ut_file u;
	uint8_t *m;
	unsigned int i;
	int sig = 0;

	sigcatch_install();
	start_failing(&u, "rmwm", npages);
	m = ut_map(u.vm, u.path, 0, npages * PAGE, UFVM_PROT_READ | UFVM_PROT_WRITE);
	for (i = 0; i < npages && !sig; i++) {
		uint8_t v = *(volatile uint8_t *)(m + i * PAGE);	/* read fault */

		sig = sigcatch_write(m + i * PAGE, (uint8_t)(v ^ 1), &info);	/* mkwrite */
	}
	assert_ok(ufvm_stats(u.vm, &st));
	cr_assert(sig, "%u read-modify-writes through the mapping, none refused", i);
	assert_within_slacks(&st, i);
	stop_failing(&u);
	ut_unmap(u.vm, m, npages * PAGE);
	ut_file_close(&u);
}

Test(unclean, read_over_unclean_pages_is_cheap, .timeout = 30)
{
	const unsigned int npages = 256, nread = 20;
	struct ut_file u;
	uint8_t buf[PAGE];
	uint64_t errs;
	unsigned int i, ndirty = 0;

	start_failing(&u, "rd", npages);
	memset(buf, 7, sizeof(buf));
	while (ndirty < npages &&
	       ufvm_pwrite(u.f, buf, PAGE, (off_t)(ndirty * PAGE)) == (ssize_t)PAGE)
		ndirty++;
	errs = ut_counter(u.vm, UFVM_CTR_STORE_ERRORS);
	for (i = 0; i < nread; i++)
		ut_pread(u.f, buf, PAGE, (off_t)((128 + i) * PAGE));
	errs = ut_counter(u.vm, UFVM_CTR_STORE_ERRORS) - errs;
	cr_assert_leq(errs, 100ull * nread, "%u reads over %u unwritable dirty pages retried "
		      "%llu failed store writes", nread, ndirty, (unsigned long long)errs);
	stop_failing(&u);
	ut_file_close(&u);
}

/*
 * Fill the cache past its slack with dirty pages the store refuses (pages
 * from 0), then cache page @clean clean (read through @m if set), then let
 * the store take writes again.
 */
static void refuse_then_recover(struct ut_file *u, uint8_t *m, unsigned int clean)
{
	uint8_t buf[PAGE];
	unsigned int i;
	ssize_t w = 0;

	assert_ok(ufvm_inject(u->f, UFVM_INJECT_WRITE_EIO, 0, (off_t)(clean * PAGE)));
	memset(buf, 0x3e, sizeof(buf));
	for (i = 0; i < clean; i++) {
		w = ufvm_pwrite(u->f, buf, PAGE, (off_t)(i * PAGE));
		if (w != (ssize_t)PAGE)
			break;
	}
	cr_assert_eq(w, -EIO, "the write past the slack: %zd (-EIO wanted)", w);
	if (m)
		(void)*(volatile uint8_t *)(m + clean * PAGE);	/* mapped read-only */
	else
		ut_pread(u->f, buf, 1, (off_t)(clean * PAGE));
	assert_ok(ufvm_inject(u->f, UFVM_INJECT_WRITE_EIO, 0, 0));
}

/*
 * Two files' stores fail and their pages fill the cache past its slack;
 * then the second file's store takes writes again, the first's not.  A
 * write to a cached clean page of the second must go through: the retry
 * before a refusal wrote back only the first unwritable page on the list,
 * the first file's, which failed again, and the write was refused until
 * the background flusher got to the second file's pages.
 */
Test(unclean, a_recovered_store_is_found_beside_a_failing_one, .timeout = 30)
{
	const unsigned int npages = 64, clean = 40;
	char pb[TMPSTORE_PATH_MAX];
	struct ufvm_file *b;
	struct ut_file u;
	uint8_t buf[PAGE], v = 0x5b;
	unsigned int i;
	ssize_t w = 0;

	start_failing(&u, "twoa", npages);
	ut_store("twob", npages * PAGE, SEED + 1, pb);
	assert_ok(ufvm_file_open(u.vm, pb, UFVM_RDWR, &b));
	assert_ok(ufvm_inject(b, UFVM_INJECT_WRITE_EIO, 0, (off_t)(npages * PAGE)));
	memset(buf, 0x3e, sizeof(buf));
	for (i = 0; i < BUDGET / 2; i++)	/* the first file's pages first on the list */
		ut_pwrite(u.f, buf, PAGE, (off_t)(i * PAGE));
	for (i = 0; i < npages; i++) {
		w = ufvm_pwrite(b, buf, PAGE, (off_t)(i * PAGE));
		if (w != (ssize_t)PAGE)
			break;
	}
	cr_assert_eq(w, -EIO, "the write past the slack: %zd (-EIO wanted)", w);
	ut_pread(b, buf, 1, (off_t)(clean * PAGE));	/* cached clean, past the slack */
	assert_ok(ufvm_inject(b, UFVM_INJECT_WRITE_EIO, 0, 0));
	w = ufvm_pwrite(b, &v, 1, (off_t)(clean * PAGE));
	cr_assert_eq(w, 1, "a write to the recovered file beside a failing one: %zd (%s)", w,
		     w < 0 ? ufvm_strerror((int)w) : "short");
	(void)ufvm_fsync(b);		/* the failures, once */
	assert_ok(ufvm_fsync(b));
	assert_ok(ufvm_file_close(b));
	stop_failing(&u);
	ut_file_close(&u);
}

/* Byte @v at the start of page @idx, through ufvm and, after a sync, the store. */
static void assert_written(struct ut_file *u, unsigned int idx, uint8_t v, const char *how)
{
	uint8_t got;
	int fd;

	(void)ufvm_fsync(u->f);		/* the failures, once */
	assert_ok(ufvm_fsync(u->f));
	ut_pread(u->f, &got, 1, (off_t)(idx * PAGE));
	cr_assert_eq(got, v, "%s: page %u holds 0x%02x, 0x%02x written", how, idx, got, v);
	fd = open(u->path, O_RDONLY);
	cr_assert(fd >= 0);
	cr_assert_eq(pread(fd, &got, 1, (off_t)(idx * PAGE)), 1);
	close(fd);
	cr_assert_eq(got, v, "%s: the store's page %u holds 0x%02x, 0x%02x written", how, idx,
		     got, v);
}

Test(unclean, writes_go_on_once_the_store_takes_them, .timeout = 30)
{
	const unsigned int npages = 64, clean = BUDGET + SLACK + 8;
	struct sigbus_info info;
	struct ut_file u;
	uint8_t v = 0xa1;
	uint8_t *m;
	ssize_t w;

	sigbus_install();
	start_failing(&u, "recover", npages);
	m = ut_map(u.vm, u.path, 0, npages * PAGE, UFVM_PROT_READ | UFVM_PROT_WRITE);

	refuse_then_recover(&u, NULL, clean);
	w = ufvm_pwrite(u.f, &v, 1, (off_t)(clean * PAGE));
	cr_assert_eq(w, 1, "ufvm_pwrite() of a cached clean page once the store takes writes: "
		     "%zd (%s)", w, w < 0 ? ufvm_strerror((int)w) : "short");
	assert_written(&u, clean, v, "ufvm_pwrite()");

	refuse_then_recover(&u, NULL, clean + 1);
	cr_assert(!sigbus_write(m + (clean + 1) * PAGE, ++v, &info),
		  "a write fault on a cached clean page once the store takes writes: SIGBUS");
	assert_written(&u, clean + 1, v, "write fault");

	refuse_then_recover(&u, m, clean + 2);
	cr_assert(!sigbus_write(m + (clean + 2) * PAGE, ++v, &info),
		  "a write to a page mapped read-only once the store takes writes: SIGBUS");
	assert_written(&u, clean + 2, v, "write to a read-only mapping");

	ut_unmap(u.vm, m, npages * PAGE);
	ut_file_close(&u);
}

/* An access run on a thread of its own, so that one that never ends is seen. */
struct timed_access {
	void (*fn)(struct timed_access *);
	uint8_t *at;
	uint64_t v;
	int sig;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool done;
};

static void *timed_access_main(void *arg)
{
	struct timed_access *a = arg;

	a->fn(a);
	pthread_mutex_lock(&a->lock);
	a->done = true;
	pthread_cond_signal(&a->cond);
	pthread_mutex_unlock(&a->lock);
	return NULL;
}

/* Run @a->fn.  Return: whether it ended within @secs (then joined). */
static bool timed_access(struct timed_access *a, int secs)
{
	struct timespec until;
	pthread_t t;
	bool done;

	pthread_mutex_init(&a->lock, NULL);
	pthread_cond_init(&a->cond, NULL);
	a->done = false;
	cr_assert_eq(pthread_create(&t, NULL, timed_access_main, a), 0);
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += secs;
	pthread_mutex_lock(&a->lock);
	while (!a->done && pthread_cond_timedwait(&a->cond, &a->lock, &until) == 0)
		;
	done = a->done;
	pthread_mutex_unlock(&a->lock);
	if (done)
		pthread_join(t, NULL);
	return done;	/* else the thread stays, faulting: the test fails */
}

static void load_across(struct timed_access *a)
{
	memcpy(&a->v, (const void *)a->at, sizeof(a->v));	/* one 8-byte load, two pages */
}

/* Fill the cache past its slack with pages the store refuses: pages from 0 on. */
static void fill_unclean(struct ut_file *u, unsigned int max)
{
	uint8_t buf[PAGE];
	unsigned int i;

	memset(buf, 0x6d, sizeof(buf));
	for (i = 0; i < max; i++)
		if (ufvm_pwrite(u->f, buf, PAGE, (off_t)(i * PAGE)) != (ssize_t)PAGE)
			break;
	cr_assert_lt(i, max, "%u pages written, none refused", i);
}

Test(unclean, load_across_two_pages_completes, .timeout = 30)
{
	const unsigned int npages = 64, at = 48;
	struct timed_access a = { .fn = load_across };
	struct ut_file u;
	uint8_t *m;

	start_failing(&u, "straddle", npages);
	fill_unclean(&u, at);
	m = ut_map(u.vm, u.path, 0, npages * PAGE, UFVM_PROT_READ);
	a.at = m + (at + 1) * PAGE - 4;
	cr_assert(timed_access(&a, 5), "a load across pages %u and %u did not complete in 5 s "
		  "(%llu evictions, %llu faults)", at, at + 1,
		  (unsigned long long)ut_counter(u.vm, UFVM_CTR_EVICTIONS),
		  (unsigned long long)ut_counter(u.vm, UFVM_CTR_FAULTS));
	assert_pattern(SEED, (uint8_t *)&a.v, (uint64_t)(at + 1) * PAGE - 4, sizeof(a.v),
		       "the load across pages %u and %u", at, at + 1);
	stop_failing(&u);
	ut_unmap(u.vm, m, npages * PAGE);
	ut_file_close(&u);
}

static void write_one(struct timed_access *a)
{
	struct sigbus_info info;

	a->sig = sigbus_write(a->at, 0x77, &info);
}

/*
 * A write to a page mapped read-only, while the store still fails and the
 * cache is past its slack, is refused (SIGBUS) at once.  The write-back
 * tried before the refusal was a direct reclaim, which evicted or sampled
 * (unmapped) that very page: the write faulted again, as a read with the
 * sigsegv backend, for ever.
 */
Test(unclean, refused_write_to_a_mapped_page_ends, .timeout = 30)
{
	const unsigned int npages = 64, at = 48;
	struct timed_access a = { .fn = write_one };
	struct ufvm_config cfg;
	struct ut_file u;
	uint8_t *m;

	sigbus_install();
	ut_config_budget(&cfg, 4);	/* the clock's hand passes every page in a few rounds */
	ut_file_open(&u, &cfg, "wloop", npages, SEED, UFVM_RDWR);
	assert_ok(ufvm_inject(u.f, UFVM_INJECT_WRITE_EIO, 0, (off_t)(npages * PAGE)));
	fill_unclean(&u, at);
	m = ut_map(u.vm, u.path, 0, npages * PAGE, UFVM_PROT_READ | UFVM_PROT_WRITE);
	(void)*(volatile uint8_t *)(m + at * PAGE);	/* mapped read-only */
	a.at = m + at * PAGE;
	cr_assert(timed_access(&a, 5), "a write to a page mapped read-only did not end in 5 s "
		  "(%llu faults)", (unsigned long long)ut_counter(u.vm, UFVM_CTR_FAULTS));
	cr_assert(a.sig, "the write past the slack was not refused");
	stop_failing(&u);
	ut_unmap(u.vm, m, npages * PAGE);
	ut_file_close(&u);
}

/*
 * A few unwritable pages (well under the budget) must not cost a healthy
 * file its writes.  Reads' fills aimed at the dirty pages plus the slack
 * while any write-back failed, counting the healthy file's dirty pages
 * too: the cache climbed to budget + slack, where writes to cached clean
 * pages are refused, and 6-42 of the healthy file's read-modify-writes in
 * 3 s got -EIO beside 4 unwritable pages under a budget of 16.
 */
struct beside {
	struct ufvm_file *y;
	const uint8_t *z;
	atomic_int stop;
	atomic_long refused, done;
};

static void *beside_rmw(void *arg)
{
	struct beside *b = arg;
	uint8_t v;

	for (unsigned long i = 0; !atomic_load(&b->stop); i++) {
		off_t off = (off_t)((i * 7) % 256) * PAGE;
		ssize_t w;

		ut_pread(b->y, &v, 1, off);
		v++;
		w = ufvm_pwrite(b->y, &v, 1, off);
		if (w == 1)
			atomic_fetch_add(&b->done, 1);
		else
			atomic_fetch_add(&b->refused, 1);
	}
	return NULL;
}

static void *beside_read(void *arg)
{
	struct beside *b = arg;
	unsigned long sum = 0;

	for (unsigned long i = 0; !atomic_load(&b->stop); i++)
		sum += b->z[(i % 256) * PAGE];
	return (void *)sum;
}

Test(unclean, healthy_writes_beside_a_few_unclean_pages, .timeout = 30)
{
	char py[TMPSTORE_PATH_MAX], pz[TMPSTORE_PATH_MAX];
	struct beside b = { 0 };
	struct ufvm_file *z;
	struct ut_file u;
	uint8_t *m, page[PAGE];
	pthread_t t[3];

	start_failing(&u, "fewx", 256);
	memset(page, 0x6d, sizeof(page));
	for (unsigned int i = 0; i < 4; i++)
		ut_pwrite(u.f, page, PAGE, (off_t)(i * PAGE));
	assert_err(ufvm_fsync(u.f), EIO);	/* their write-backs failed */
	ut_store("fewy", 256 * PAGE, SEED + 1, py);
	ut_store("fewz", 256 * PAGE, SEED + 2, pz);
	assert_ok(ufvm_file_open(u.vm, py, UFVM_RDWR, &b.y));
	assert_ok(ufvm_file_open(u.vm, pz, UFVM_RDONLY, &z));
	m = ut_map(u.vm, pz, 0, 256 * PAGE, UFVM_PROT_READ);
	b.z = m;
	cr_assert_eq(pthread_create(&t[0], NULL, beside_rmw, &b), 0);
	cr_assert_eq(pthread_create(&t[1], NULL, beside_rmw, &b), 0);
	cr_assert_eq(pthread_create(&t[2], NULL, beside_read, &b), 0);
	usleep(1500000);
	atomic_store(&b.stop, 1);
	for (int i = 0; i < 3; i++)
		pthread_join(t[i], NULL);
	cr_assert_eq(atomic_load(&b.refused), 0, "%ld of %ld read-modify-writes of a healthy "
		     "file refused beside 4 unwritable pages under a budget of %u",
		     atomic_load(&b.refused), atomic_load(&b.refused) + atomic_load(&b.done),
		     BUDGET);
	ut_unmap(u.vm, m, 256 * PAGE);
	assert_ok(ufvm_file_close(z));
	assert_ok(ufvm_file_close(b.y));
	stop_failing(&u);
	ut_file_close(&u);
}

Test(unclean, background_reclaim_stops_at_low_watermark, .timeout = 30)
{
	const unsigned int budget = 64, low = budget - budget / 8;
	struct ufvm_config cfg;
	struct ufvm_stats st;
	struct ut_file u;
	uint8_t buf[PAGE];
	unsigned int i;

	ut_config_budget(&cfg, budget);
	cfg.readahead = 0;
	ut_file_open(&u, &cfg, "lw", 4 * budget, SEED, UFVM_RDWR);
	for (i = 0; i < budget + 1; i++)
		ut_pread(u.f, buf, PAGE, (off_t)(i * PAGE));
	usleep(300000);
	assert_ok(ufvm_stats(u.vm, &st));
	/* A batch of budget/16 each from the last fill's direct reclaim and the thread. */
	cr_assert_geq(st.cached_pages, low - budget / 8,
		      "%llu pages cached after the background reclaim (low watermark %u)",
		      (unsigned long long)st.cached_pages, low);
	ut_file_close(&u);
}

Test(unclean, refused_full_page_write_leaves_no_zeros, .timeout = 30)
{
	const unsigned int npages = 64;
	struct ut_file u;
	uint8_t buf[PAGE];
	unsigned int i;
	ssize_t w = 0;

	start_failing(&u, "zero", npages);
	memset(buf, 0x5c, sizeof(buf));
	for (i = 0; i < npages; i++) {
		w = ufvm_pwrite(u.f, buf, PAGE, (off_t)(i * PAGE));
		if (w != (ssize_t)PAGE)
			break;
	}
	cr_assert_eq(w, -EIO, "the write past the slack: %zd (-EIO wanted)", w);
	ut_pread(u.f, buf, PAGE, (off_t)(i * PAGE));
	assert_pattern(SEED, buf, (uint64_t)i * PAGE, PAGE, "page %u after its refused write", i);
	stop_failing(&u);
	ut_file_close(&u);
}
