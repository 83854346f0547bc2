/* SPDX-License-Identifier: MIT */
/*
 * test_write_ahead.c - a sequential writer's fault maps the pages ahead of
 * it writable (write_ahead, pager/fault.c), and nothing is lost or changed
 * by it.
 *
 * Checks: a writer that stores into every page in order, from one thread,
 * takes at most one fault in 8 pages (one a page with write_ahead = 0);
 * so does one that read the pages first (fault-around mapped them
 * write-protected: the mkwrites make the pages ahead writable); pages
 * dirtied ahead and never written reach the store with their own bytes; a
 * writer that stores into every other page in a shuffled order dirties only
 * those (nothing ahead, a store write of each page and no more); under a
 * budget of 256 pages a sequential writer of 4096 keeps the cache within
 * it, and every byte reaches the store; with a second instance open, or
 * after a fork, nothing is written ahead (another cache may write the
 * file: below).  Each on the backend the environment selects.
 */
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

#define SEED	0x5eed0a11
#define NPAGES	2048ul
#define SIZE	(NPAGES * PAGE)
#define OFF	3		/* the byte each page's store goes to */

/* What page @pg's store writes: never the byte it had. */
static uint8_t mark(uint64_t pg)
{
	return pattern_byte(SEED, pg * PAGE + OFF) ^ 0x5a;
}

/* An instance (defaults, then @write_ahead and @budget) and a writable mapping of @n pages. */
static uint8_t *open_rw(unsigned int write_ahead, uint64_t budget, uint64_t n, struct ufvm **vm,
			char *path)
{
	struct ufvm_config cfg;

	assert_ok(ufvm_config_init(&cfg));
	cfg.write_ahead = write_ahead;
	cfg.cache_pages = budget;
	cfg.dirty_expire_ms = 3600000;	/* no background write-back in the counts */
	ut_store("w", (off_t)(n * PAGE), SEED, path);
	*vm = ut_open(&cfg);
	return ut_map(*vm, path, 0, n * PAGE, UFVM_PROT_READ | UFVM_PROT_WRITE);
}

/*
 * Sync, unmap, close, then check the store file: page p holds mark(p) at OFF
 * where @written says so, else its own byte; every other byte its own.
 */
static void close_and_check(struct ufvm *vm, uint8_t *m, uint64_t n, const char *path,
			    bool (*written)(uint64_t pg))
{
	static uint8_t page[PAGE];

	assert_ok(ufvm_sync(vm, m, n * PAGE));
	ut_unmap(vm, m, n * PAGE);
	ut_close(vm);
	for (uint64_t pg = 0; pg < n; pg++) {
		assert_ok(tmpstore_read(path, page, PAGE, (off_t)(pg * PAGE)));
		if (written(pg)) {
			cr_assert_eq(page[OFF], mark(pg), "page %llu: the store is not in the file",
				     (unsigned long long)pg);
			page[OFF] = pattern_byte(SEED, pg * PAGE + OFF);
		}
		assert_pattern(SEED, page, pg * PAGE, PAGE, "page %llu of the file",
			       (unsigned long long)pg);
	}
}

static bool all(uint64_t pg)
{
	(void)pg;
	return true;
}

static bool first_100(uint64_t pg)
{
	return pg < 100;
}

static bool even(uint64_t pg)
{
	return pg % 2 == 0;
}

/* a_trail_of_eight_and_not_seven's stores */
static bool sevens_and_nine(uint64_t pg)
{
	return pg < NPAGES / 2 ? pg % 8 != 7 : pg <= NPAGES / 2 + 8;
}

/* Store into pages [0, @n) in order.  Return: the faults it took. */
static uint64_t write_seq(struct ufvm *vm, uint8_t *m, uint64_t n)
{
	uint64_t f0 = ut_counter(vm, UFVM_CTR_FAULTS);

	for (uint64_t pg = 0; pg < n; pg++)
		m[pg * PAGE + OFF] = mark(pg);
	return ut_counter(vm, UFVM_CTR_FAULTS) - f0;
}

/* Store into every page in order with @write_ahead; its faults and pages written ahead. */
static void write_all(unsigned int write_ahead, uint64_t *faults, uint64_t *ahead)
{
	char path[TMPSTORE_PATH_MAX];
	struct ufvm *vm;
	uint8_t *m = open_rw(write_ahead, 0, NPAGES, &vm, path);

	*faults = write_seq(vm, m, NPAGES);
	*ahead = ut_counter(vm, UFVM_CTR_WRITEAHEAD_PAGES);
	close_and_check(vm, m, NPAGES, path, all);
}

Test(write_ahead, a_sequential_writer_faults_once_a_window, .timeout = 60)
{
	uint64_t faults, ahead;

	write_all(64, &faults, &ahead);
	cr_assert_leq(faults, NPAGES / 8, "%llu faults for %lu pages written in order",
		      (unsigned long long)faults, NPAGES);
	cr_assert_gt(ahead, NPAGES / 2);
}

Test(write_ahead, off_a_fault_a_page, .timeout = 60)
{
	uint64_t faults, ahead;

	write_all(0, &faults, &ahead);
	cr_assert_geq(faults, NPAGES, "%llu faults for %lu pages with write_ahead 0",
		      (unsigned long long)faults, NPAGES);
	cr_assert_eq(ahead, 0);
}

Test(write_ahead, a_writer_over_pages_it_read_mkwrites_once_a_window, .timeout = 60)
{
	char path[TMPSTORE_PATH_MAX];
	struct ufvm *vm;
	uint8_t *m = open_rw(64, 0, NPAGES, &vm, path);
	uint64_t mk;

	for (uint64_t pg = 0; pg < NPAGES; pg++)	/* mapped write-protected */
		assert_pattern(SEED, m + pg * PAGE + OFF, pg * PAGE + OFF, 1, "page %llu",
			       (unsigned long long)pg);
	mk = ut_counter(vm, UFVM_CTR_MKWRITE);
	cr_assert_eq(mk, 0);
	write_seq(vm, m, NPAGES);
	mk = ut_counter(vm, UFVM_CTR_MKWRITE);
	cr_assert_leq(mk, NPAGES / 8, "%llu mkwrites for %lu pages read, then written in order",
		      (unsigned long long)mk, NPAGES);
	cr_assert_gt(ut_counter(vm, UFVM_CTR_WRITEAHEAD_PAGES), NPAGES / 2);
	close_and_check(vm, m, NPAGES, path, all);
}

Test(write_ahead, pages_dirtied_ahead_keep_their_bytes, .timeout = 60)
{
	char path[TMPSTORE_PATH_MAX];
	struct ufvm *vm;
	uint8_t *m = open_rw(64, 0, NPAGES, &vm, path);

	write_seq(vm, m, 100);
	cr_assert_gt(ut_counter(vm, UFVM_CTR_WRITEAHEAD_PAGES), 0, "nothing dirtied ahead");
	close_and_check(vm, m, NPAGES, path, first_100);
}

Test(write_ahead, a_scattered_writer_dirties_only_its_pages, .timeout = 60)
{
	char path[TMPSTORE_PATH_MAX];
	static uint64_t order[NPAGES / 2];
	struct rng rng = { SEED };
	struct ufvm *vm;
	uint8_t *m = open_rw(64, 0, NPAGES, &vm, path);

	for (uint64_t i = 0; i < NPAGES / 2; i++)
		order[i] = 2 * i;
	for (uint64_t i = NPAGES / 2 - 1; i > 0; i--) {
		uint64_t j = rng_below(&rng, i + 1), t = order[i];

		order[i] = order[j];
		order[j] = t;
	}
	for (uint64_t i = 0; i < NPAGES / 2; i++)
		m[order[i] * PAGE + OFF] = mark(order[i]);
	cr_assert_eq(ut_counter(vm, UFVM_CTR_WRITEAHEAD_PAGES), 0);
	assert_ok(ufvm_sync(vm, m, SIZE));
	cr_assert_eq(ut_counter(vm, UFVM_CTR_STORE_WRITE_PAGES), NPAGES / 2,
		     "%llu pages written back for %lu stored into",
		     (unsigned long long)ut_counter(vm, UFVM_CTR_STORE_WRITE_PAGES), NPAGES / 2);
	close_and_check(vm, m, NPAGES, path, even);
}

/*
 * The trail's threshold: stores into runs of 7 pages in order, a page
 * left out after each, write nothing ahead (a threshold of 6 or less
 * would); after 8 stores in a row, the 9th does (one of 9 or more would
 * not).
 */
Test(write_ahead, a_trail_of_eight_and_not_seven, .timeout = 60)
{
	char path[TMPSTORE_PATH_MAX];
	struct ufvm *vm;
	uint8_t *m = open_rw(64, 0, NPAGES, &vm, path);

	for (uint64_t pg = 0; pg + 7 < NPAGES / 2; pg += 8)
		for (uint64_t k = pg; k < pg + 7; k++)
			m[k * PAGE + OFF] = mark(k);
	cr_assert_eq(ut_counter(vm, UFVM_CTR_WRITEAHEAD_PAGES), 0,
		     "runs of 7 stores wrote ahead");
	for (uint64_t pg = NPAGES / 2; pg <= NPAGES / 2 + 8; pg++)
		m[pg * PAGE + OFF] = mark(pg);
	cr_assert_gt(ut_counter(vm, UFVM_CTR_WRITEAHEAD_PAGES), 0,
		     "a 9th store after 8 in a row wrote nothing ahead");
	close_and_check(vm, m, NPAGES, path, sevens_and_nine);
}

#define BUDGET	256ul
#define BIG	4096ul

Test(write_ahead, a_sequential_writer_stays_within_the_budget, .timeout = 120)
{
	char path[TMPSTORE_PATH_MAX];
	struct ufvm_stats st;
	struct ufvm *vm;
	uint8_t *m = open_rw(64, BUDGET, BIG, &vm, path);
	uint64_t faults = write_seq(vm, m, BIG);

	assert_ok(ufvm_stats(vm, &st));
	/* One page over per faulting thread (docs/architecture.md, "Budget"). */
	cr_assert_leq(st.cached_pages_max, BUDGET + 1, "%llu pages cached, budget %lu",
		      (unsigned long long)st.cached_pages_max, BUDGET);
	cr_assert_gt(ut_counter(vm, UFVM_CTR_WRITEAHEAD_PAGES), 0);
	cr_assert_lt(faults, BIG / 2, "%llu faults for %lu pages written in order",
		     (unsigned long long)faults, BIG);
	close_and_check(vm, m, BIG, path, all);
}

/*
 * Two caches of one file: instance A has every page cached, clean; B
 * writes page 20 and syncs it; then A stores into pages 0..11 in order and
 * syncs.  Page 20 must keep B's byte: A never stored into it.  Write-ahead
 * would have A dirty pages ahead of its trail, 20 among them, and write its
 * own copy back over B's; ufvm stops it once two instances were open
 * (vm_caches_apart()).  Teeth: UFVM_DEBUG_WA_APART lets A write ahead.
 * Return: whether B's byte is in the file.
 */
#define APART_PG	20

static bool two_caches(uint64_t a_debug)
{
	char path[TMPSTORE_PATH_MAX], b;
	struct ufvm_config cfg;
	struct ufvm *va, *vb;
	struct ufvm_file *fb;
	uint8_t *m;
	void *addr;

	ut_store("two", 64 * PAGE, SEED, path);
	assert_ok(ufvm_config_init(&cfg));
	cfg.write_ahead = 64;
	cfg.dirty_expire_ms = 3600000;
	cfg.debug_flags = a_debug;
	va = ut_open(&cfg);
	cfg.debug_flags = 0;
	vb = ut_open(&cfg);
	assert_ok(ufvm_map(va, path, 0, 64 * PAGE, UFVM_PROT_READ | UFVM_PROT_WRITE,
			   UFVM_MAP_SHARED, &addr));
	m = addr;
	for (uint64_t pg = 0; pg < 64; pg++)	/* A: cached, clean, write-protected */
		assert_pattern(SEED, m + pg * PAGE + OFF, pg * PAGE + OFF, 1, "page %llu",
			       (unsigned long long)pg);
	assert_ok(ufvm_file_open(vb, path, UFVM_RDWR, &fb));
	ut_pwrite(fb, "B", 1, APART_PG * PAGE + OFF + 1);
	assert_ok(ufvm_fsync(fb));
	assert_ok(ufvm_file_close(fb));
	ut_close(vb);
	write_seq(va, m, 12);
	assert_ok(ufvm_sync(va, m, 64 * PAGE));
	ut_unmap(va, m, 64 * PAGE);
	ut_close(va);
	assert_ok(tmpstore_read(path, &b, 1, APART_PG * PAGE + OFF + 1));
	return b == 'B';
}

Test(write_ahead, a_second_cache_s_write_is_kept, .timeout = 60)
{
	cr_assert(two_caches(0), "page %d: instance B's synced write was written over by A, "
		  "which never stored into it", APART_PG);
}

Test(write_ahead, teeth_apart_writes_over_the_other_cache, .timeout = 60)
{
	cr_assert(!two_caches(UFVM_DEBUG_WA_APART), "writing ahead with two instances open, A "
		  "should have written its copy of page %d over B's", APART_PG);
}

/* After a fork() with an instance open, this process writes ahead no more. */
Test(write_ahead, a_fork_stops_it, .timeout = 60)
{
	char path[TMPSTORE_PATH_MAX];
	struct ufvm *vm;
	uint8_t *m = open_rw(64, 0, NPAGES, &vm, path);
	int status;
	pid_t pid = fork();

	cr_assert(pid >= 0);
	if (pid == 0)
		_exit(0);
	cr_assert(waitpid(pid, &status, 0) == pid && WIFEXITED(status));
	write_seq(vm, m, NPAGES);
	cr_assert_eq(ut_counter(vm, UFVM_CTR_WRITEAHEAD_PAGES), 0,
		     "pages written ahead after a fork");
	close_and_check(vm, m, NPAGES, path, all);
}
