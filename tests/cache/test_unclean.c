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
 * - load_across_two_pages_completes: with the cache past its budget with
 *   dirty pages the store refuses, one load that straddles two pages of
 *   the mapping needs both resident at once.  Each fault's fill evicted
 *   the only clean page, the other half of the load, and the load faulted
 *   forever (a livelock at 100% CPU with the sigsegv backend).
 * - background_reclaim_stops_at_low_watermark: past the high watermark, the
 *   background thread reclaims down to the low one (budget - budget/8), or
 *   a batch or two below it, not a fixed 32 pages below (which evicted the
 *   hot pages of a small cache: a budget of 64 went down to 25-33).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
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

struct straddle {
	const uint8_t *at;
	uint64_t v;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool done;
};

static void *straddle_load(void *arg)
{
	struct straddle *sl = arg;
	uint64_t v;

	memcpy(&v, (const void *)sl->at, sizeof(v));	/* one 8-byte load, two pages */
	pthread_mutex_lock(&sl->lock);
	sl->v = v;
	sl->done = true;
	pthread_cond_signal(&sl->cond);
	pthread_mutex_unlock(&sl->lock);
	return NULL;
}

Test(unclean, load_across_two_pages_completes, .timeout = 30)
{
	const unsigned int npages = 64, at = 48;
	struct straddle sl = { .lock = PTHREAD_MUTEX_INITIALIZER,
			       .cond = PTHREAD_COND_INITIALIZER };
	struct timespec until;
	struct ut_file u;
	uint8_t buf[PAGE];
	unsigned int i;
	pthread_t t;
	uint8_t *m;

	start_failing(&u, "straddle", npages);
	memset(buf, 0x6d, sizeof(buf));
	for (i = 0; i < at; i++)
		if (ufvm_pwrite(u.f, buf, PAGE, (off_t)(i * PAGE)) != (ssize_t)PAGE)
			break;
	cr_assert_lt(i, at, "%u pages written, none refused", i);
	m = ut_map(u.vm, u.path, 0, npages * PAGE, UFVM_PROT_READ);
	sl.at = m + (at + 1) * PAGE - 4;
	cr_assert_eq(pthread_create(&t, NULL, straddle_load, &sl), 0);
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 5;
	pthread_mutex_lock(&sl.lock);
	while (!sl.done && pthread_cond_timedwait(&sl.cond, &sl.lock, &until) == 0)
		;
	pthread_mutex_unlock(&sl.lock);
	cr_assert(sl.done, "a load across pages %u and %u did not complete in 5 s "
		  "(%llu evictions, %llu faults)", at, at + 1,
		  (unsigned long long)ut_counter(u.vm, UFVM_CTR_EVICTIONS),
		  (unsigned long long)ut_counter(u.vm, UFVM_CTR_FAULTS));
	pthread_join(t, NULL);
	assert_pattern(SEED, (uint8_t *)&sl.v, (uint64_t)(at + 1) * PAGE - 4, sizeof(sl.v),
		       "the load across pages %u and %u", at, at + 1);
	stop_failing(&u);
	ut_unmap(u.vm, m, npages * PAGE);
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
