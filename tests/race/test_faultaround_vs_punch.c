/* SPDX-License-Identifier: MIT */
/*
 * test_faultaround_vs_punch.c - after ufvm_punch() drops a range, no region
 * maps a page of it (fault-around, mapcount first: seed 004).
 *
 * Invariant: a fault-around that maps a cached neighbour raises its
 * mapcount before it checks it, so an invalidation that locks the page
 * and finds mapcount 0 knows no mapper can still map it, and one that
 * finds it raised walks the regions and zaps it.  Checked where it
 * matters: at UFVM_HOOK_INVALIDATED (the punch dropped the pages, has not
 * freed the frames yet) no page of the range may be mapped in any region,
 * per the real page tables (/proc/self/pagemap; with the sigsegv backend,
 * /proc/self/maps); and after the punch the range reads zeros.
 *
 * One round, pages of a 16-page fault-around window [16, 32):
 *  - a filler reads page 20 (not cached) and holds it at UFVM_HOOK_FILL:
 *    page 20 stays locked;
 *  - the punch of [20, 26) begins (invalidate=addblock, so a fill that
 *    has added its page does not hold the punch off): it zaps every
 *    region, then its walk waits for page 20;
 *  - once the zap has passed (a sentinel page mapped in a second region
 *    disappears), a fault on page 31 maps its window; at neighbour 21 it
 *    stops at UFVM_HOOK_AROUND_CHECKED until the punch reaches
 *    UFVM_HOOK_INVALIDATED, and lets the filler go;
 *  - the walk goes on.  Mapcount first, the walk finds page 21 raised and
 *    waits on the region's ptl until the fault-around has installed it,
 *    then zaps it: the fault-around's wait times out, and nothing of the
 *    range is mapped at UFVM_HOOK_INVALIDATED.
 * Teeth: with UFVM_DEBUG_CHECK_THEN_RAISE the fault-around has checked
 * page 21 but not raised its mapcount when it stops, so the walk finds
 * mapcount 0 and drops the page, and the fault-around then maps a page the
 * cache no longer has: the check at UFVM_HOOK_INVALIDATED must see it.
 * That run leaves the cache inconsistent, so it runs in a child process.
 *
 * The teeth need the hook to run between the check and the raise when the
 * order is reversed.  If the walk never gets past the stopped fault-around
 * in that mode (the hook runs after the raise in both orders), the window
 * cannot be opened and the teeth test says so and skips.
 */
#define _GNU_SOURCE
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "pagemap.h"
#include "race.h"

#define FILE_PAGES	64
#define FILE_SIZE	(FILE_PAGES * PAGE)
#define SEED		0x5eed0500
#define WINDOW		16
#define W_LO		16		/* the fault-around window [16, 32) */
#define PARK_PG		20		/* held locked by the filler */
#define NB_PG		21		/* the neighbour where the fault-around stops */
#define P_FIRST		20		/* the punched pages [20, 26) */
#define P_PAGES		6
#define FAULT_PG	31
#define ROUNDS_ON	4
#define ROUNDS_OFF	6		/* teeth: at most; stops at the first catch */
#define WAIT_US		(2 * 1000000u)	/* a step that must happen */
#define AROUND_WAIT_US	300000u		/* fault-around waits for the walk this long */
#define STALE_WAIT_US	100000u		/* the invalidation hook looks this long */

struct fa_result {
	int rounds;
	int opened;		/* the walk passed the stopped fault-around */
	int caught;		/* rounds with a page of the range mapped */
	char region;		/* where: 'A' or 'B' */
	long page;		/* file page */
	uint64_t entry;		/* its pagemap entry */
	bool uffd;		/* userfaultfd backend (else: sigsegv) */
	char err[256];		/* the run failed to set up a round */
};

struct fa {
	struct ufvm *vm;
	struct ufvm_file *f;
	uint8_t *a, *b;		/* region A faults around; B holds the sentinel */
	bool uffd;		/* regions are frames mappings (userfaultfd) */
	atomic_int fill_armed, around_armed, inval_armed;
	atomic_int parked, around_hit, inval_entered, around_done;
	atomic_int opened, caught;
	char stale_region;
	long stale_page;
	uint64_t stale_entry;
	uint8_t touched;
	struct fa_result *res;
};

static void fail(struct fa *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void fail(struct fa *t, const char *fmt, ...)
{
	va_list ap;

	if (t->res->err[0])
		return;
	va_start(ap, fmt);
	vsnprintf(t->res->err, sizeof(t->res->err), fmt, ap);
	va_end(ap);
}

/* Is file page @pg mapped in region @r (which maps the file from offset 0)? */
static int mapped(struct fa *t, const uint8_t *r, long pg, uint64_t *entry)
{
	long idx;
	int err = frames_first_mapped(r + pg * PAGE, 1, t->uffd, &idx, entry);

	return err ? err : idx == 0;
}

/* Look for a page of the punched range mapped in A or B, for up to @us. */
static void look_for_stale(struct fa *t, uint64_t us)
{
	uint64_t until = race_now_us() + us;

	do {
		for (int k = 0; k < 2; k++) {
			uint8_t *r = k ? t->b : t->a;
			uint64_t e;
			long idx;

			if (frames_first_mapped(r + P_FIRST * PAGE, P_PAGES, t->uffd, &idx, &e) ||
			    idx < 0)
				continue;
			t->stale_region = k ? 'B' : 'A';
			t->stale_page = P_FIRST + idx;
			t->stale_entry = e;
			atomic_store(&t->caught, 1);
			return;
		}
		race_sleep_us(200);
	} while (race_now_us() < until);
}

static void hook(void *arg, unsigned int point, uint64_t a, uint64_t b)
{
	struct fa *t = arg;

	switch (point) {
	case UFVM_HOOK_FILL:
		if (a <= PARK_PG * PAGE && PARK_PG * PAGE < a + b &&
		    atomic_exchange(&t->fill_armed, 0)) {
			/* Page 20 is locked: the punch's walk will wait for it. */
			atomic_store(&t->parked, 1);
			race_wait(&t->around_hit, 1, WAIT_US);
		}
		break;
	case UFVM_HOOK_AROUND_CHECKED:
		if (a == NB_PG && atomic_exchange(&t->around_armed, 0)) {
			atomic_store(&t->around_hit, 1);
			if (race_wait(&t->inval_entered, 1, AROUND_WAIT_US))
				atomic_store(&t->opened, 1);
			atomic_store(&t->around_done, 1);
		}
		break;
	case UFVM_HOOK_INVALIDATED:
		if (a == P_FIRST * PAGE && atomic_exchange(&t->inval_armed, 0)) {
			atomic_store(&t->inval_entered, 1);
			race_wait(&t->around_done, 1, WAIT_US);
			look_for_stale(t, STALE_WAIT_US);
		}
		break;
	}
}

static void *filler(void *arg)
{
	struct fa *t = arg;
	uint8_t buf[PAGE];

	if (ufvm_pread(t->f, buf, PAGE, PARK_PG * PAGE) != PAGE)
		fail(t, "filler: ufvm_pread of page %d failed", PARK_PG);
	return NULL;
}

static void *puncher(void *arg)
{
	struct fa *t = arg;
	int err = ufvm_punch(t->f, P_FIRST * PAGE, P_PAGES * PAGE);

	if (err)
		fail(t, "ufvm_punch = %d (%s)", err, ufvm_strerror(err));
	return NULL;
}

static void *toucher(void *arg)
{
	struct fa *t = arg;

	t->touched = *(volatile uint8_t *)(t->a + FAULT_PG * PAGE + 9);
	return NULL;
}

/* One round (see the top of the file).  Return: 0, or -1 with res->err set. */
static int round_once(struct fa *t, bool check_data)
{
	pthread_t fth, pth, tth;
	uint8_t buf[PAGE];
	uint64_t e, until;
	int m;

	/* Cached and unmapped: [16, 32) but page 20; sentinel B:21 mapped. */
	if (ufvm_zap(t->vm, t->a + W_LO * PAGE, WINDOW * PAGE) ||
	    ufvm_zap(t->vm, t->b + W_LO * PAGE, WINDOW * PAGE)) {
		fail(t, "ufvm_zap failed");
		return -1;
	}
	for (long pg = W_LO; pg < W_LO + WINDOW; pg++)
		if (pg != PARK_PG && ufvm_pread(t->f, buf, PAGE, pg * PAGE) != PAGE) {
			fail(t, "ufvm_pread of page %ld failed", pg);
			return -1;
		}
	(void)*(volatile uint8_t *)(t->b + NB_PG * PAGE);
	if (mapped(t, t->b, NB_PG, &e) != 1) {
		fail(t, "the sentinel page is not mapped after a read (entry %#llx)",
		     (unsigned long long)e);
		return -1;
	}

	atomic_store(&t->parked, 0);
	atomic_store(&t->around_hit, 0);
	atomic_store(&t->inval_entered, 0);
	atomic_store(&t->around_done, 0);
	atomic_store(&t->opened, 0);
	atomic_store(&t->caught, 0);
	atomic_store(&t->fill_armed, 1);
	atomic_store(&t->around_armed, 1);
	atomic_store(&t->inval_armed, 1);

	pthread_create(&fth, NULL, filler, t);
	if (!race_wait(&t->parked, 1, WAIT_US))
		fail(t, "the filler never reached UFVM_HOOK_FILL");
	pthread_create(&pth, NULL, puncher, t);
	/* The punch zaps A, then B: when the sentinel goes, A is done. */
	for (until = race_now_us() + WAIT_US; (m = mapped(t, t->b, NB_PG, &e)) == 1;) {
		if (race_now_us() > until) {
			fail(t, "the punch never zapped the sentinel");
			break;
		}
		race_sleep_us(100);
	}
	pthread_create(&tth, NULL, toucher, t);
	pthread_join(tth, NULL);
	pthread_join(pth, NULL);
	pthread_join(fth, NULL);
	atomic_store(&t->fill_armed, 0);
	atomic_store(&t->around_armed, 0);
	atomic_store(&t->inval_armed, 0);

	t->res->rounds++;
	t->res->opened += atomic_load(&t->opened);
	if (atomic_load(&t->caught) && !t->res->caught++) {
		t->res->region = t->stale_region;
		t->res->page = t->stale_page;
		t->res->entry = t->stale_entry;
	}
	if (t->touched != pattern_byte(SEED, FAULT_PG * PAGE + 9))
		fail(t, "the faulting page read %#x, want %#x", t->touched,
		     pattern_byte(SEED, FAULT_PG * PAGE + 9));
	if (check_data) {
		/* After the punch the range reads zeros, through both regions and the cache. */
		for (long pg = P_FIRST; pg < P_FIRST + P_PAGES; pg++) {
			if (zero_mismatch(t->a + pg * PAGE, PAGE) >= 0 ||
			    zero_mismatch(t->b + pg * PAGE, PAGE) >= 0)
				fail(t, "page %ld does not read zeros through a region after the punch",
				     pg);
			if (ufvm_pread(t->f, buf, PAGE, pg * PAGE) != PAGE ||
			    zero_mismatch(buf, PAGE) >= 0)
				fail(t, "page %ld does not read zeros with ufvm_pread after the punch",
				     pg);
		}
		/* That cached the range again: the next round needs page 20 cold. */
		if (ufvm_punch(t->f, P_FIRST * PAGE, P_PAGES * PAGE))
			fail(t, "ufvm_punch after the check failed");
	}
	return t->res->err[0] ? -1 : 0;
}

/*
 * Run up to @rounds rounds with @debug_flags; stop at the first catch when
 * @stop_on_catch.  No Criterion assertion here: the teeth run in a child.
 */
/*
 * The teeth child sends its result after every round, not only at the end:
 * the stale mapping it is there to produce leaves a page freed with its
 * mapcount raised, and ufvm's debug check of that (page_free_rcu) may abort
 * the child, in an RCU callback, right after the round that caught it, or
 * during the first round, before any result.  Its stderr goes to the parent
 * too, which counts that abort as the bug caught: a page freed while a
 * mapper that checked before it raised still holds it mapped.
 */
static int report_fd = -1;

static void report_round(const struct fa_result *res)
{
	if (report_fd >= 0 && write(report_fd, res, sizeof(*res)) != sizeof(*res))
		_exit(2);
}

static void run_rounds(unsigned int debug_flags, int rounds, bool stop_on_catch,
		       struct fa_result *res)
{
	static struct fa t;
	char path[TMPSTORE_PATH_MAX];
	struct ufvm_config cfg;
	void *addr;
	int err;

	memset(&t, 0, sizeof(t));
	memset(res, 0, sizeof(*res));
	t.res = res;
	err = tmpstore_create("f", FILE_SIZE, SEED, path);
	if (!err)
		err = ufvm_config_init(&cfg);
	if (err) {
		fail(&t, "set-up: %s", strerror(-err));
		return;
	}
	cfg.fault_around = WINDOW;
	cfg.readahead = 0;	/* nothing but the filler may bring page 20 in */
	cfg.invalidate = UFVM_INVALIDATE_ADDBLOCK;
	cfg.debug_flags = debug_flags;
	err = ufvm_open(&cfg, &t.vm);
	if (!err)
		err = ufvm_file_open(t.vm, path, UFVM_RDWR, &t.f);
	if (!err)
		err = ufvm_map(t.vm, path, 0, FILE_SIZE, UFVM_PROT_READ, 0, &addr);
	if (!err) {
		t.a = addr;
		err = ufvm_map(t.vm, path, 0, FILE_SIZE, UFVM_PROT_READ, 0, &addr);
		t.b = addr;
	}
	if (err) {
		fail(&t, "set-up: %s", ufvm_strerror(err));
		return;
	}
	t.uffd = maps_is_frames(t.a) == 1;
	res->uffd = t.uffd;
	/* Page 20 must start uncached. */
	if (ufvm_punch(t.f, P_FIRST * PAGE, P_PAGES * PAGE))
		fail(&t, "set-up: ufvm_punch failed");
	ufvm_debug_hook(t.vm, hook, &t);
	while (!res->err[0] && res->rounds < rounds) {
		bool stop = round_once(&t, !debug_flags) || (stop_on_catch && res->caught);

		report_round(res);
		if (stop)
			break;
	}
	ufvm_debug_hook(t.vm, NULL, NULL);
	if (debug_flags)
		return;	/* the cache is not to be trusted: the child just exits */
	ufvm_unmap(t.vm, t.b, FILE_SIZE);
	ufvm_unmap(t.vm, t.a, FILE_SIZE);
	ufvm_file_close(t.f);
	err = ufvm_close(t.vm);
	if (err)
		fail(&t, "ufvm_close = %d (%s)", err, ufvm_strerror(err));
}

static void report(const char *what, const struct fa_result *res)
{
	fprintf(stderr,
		"fault-around vs punch, %s: %d rounds, window opened in %d, stale mapping seen in "
		"%d", what, res->rounds, res->opened, res->caught);
	if (res->caught && res->uffd)
		fprintf(stderr, " (first: region %c, page %ld, pagemap %#llx, pfn %#llx)",
			res->region, res->page, (unsigned long long)res->entry,
			(unsigned long long)(res->entry & PM_PFN_MASK));
	else if (res->caught)
		fprintf(stderr, " (first: region %c, page %ld, a mapping of the frames)",
			res->region, res->page);
	fprintf(stderr, "%s%s\n", res->err[0] ? "; error: " : "", res->err);
}

Test(faultaround_vs_punch, mapcount_first, .timeout = 30)
{
	struct fa_result res;

	run_rounds(0, ROUNDS_ON, false, &res);
	report("mapcount first", &res);
	cr_assert(!res.err[0], "%s", res.err);
	cr_assert_eq(res.rounds, ROUNDS_ON);
	cr_assert_eq(res.caught, 0,
		     "%d of %d rounds: a page of the punched range still mapped at "
		     "UFVM_HOOK_INVALIDATED (first: region %c, page %ld, pagemap %#llx)",
		     res.caught, res.rounds, res.region, res.page, (unsigned long long)res.entry);
}

/* The debug check that a freed page is unmapped, in the child's stderr. */
static bool freed_while_mapped(const char *err)
{
	return strstr(err, "mapcount") && strstr(err, "(page_free_rcu)");
}

Test(faultaround_vs_punch, teeth_check_then_raise_maps_dropped_page, .timeout = 60)
{
	struct fa_result res;
	struct pollfd pfd[2];
	int fds[2], efds[2], status = 0;
	char err[8192];
	size_t elen = 0;
	bool aborted = false;
	ssize_t n = 0;
	pid_t pid;

	memset(&res, 0, sizeof(res));
	cr_assert(pipe(fds) == 0 && pipe(efds) == 0);
	pid = fork();
	cr_assert(pid >= 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		close(fds[0]);
		close(efds[0]);
		dup2(efds[1], STDERR_FILENO);
		report_fd = fds[1];
		run_rounds(UFVM_DEBUG_CHECK_THEN_RAISE, ROUNDS_OFF, true, &res);
		report_round(&res);	/* a set-up failure, or the last round */
		tmpstore_cleanup();
		_exit(0);
	}
	close(fds[1]);
	close(efds[1]);
	/*
	 * The last whole record before the child exits (or dies) is its
	 * result; its stderr is kept (and passed on) until both pipes close.
	 */
	pfd[0] = (struct pollfd){ .fd = fds[0], .events = POLLIN };
	pfd[1] = (struct pollfd){ .fd = efds[0], .events = POLLIN };
	while (pfd[0].fd >= 0 || pfd[1].fd >= 0) {
		if (poll(pfd, 2, 50 * 1000) <= 0)
			break;
		if (pfd[0].revents) {
			struct fa_result r;

			if (read(fds[0], &r, sizeof(r)) == (ssize_t)sizeof(r)) {
				res = r;
				n = sizeof(r);
			} else {
				pfd[0].fd = -1;
			}
		}
		if (pfd[1].revents) {
			char buf[1024];
			ssize_t k = read(efds[0], buf, sizeof(buf));

			if (k <= 0) {
				pfd[1].fd = -1;
				continue;
			}
			if (write(STDERR_FILENO, buf, (size_t)k) < 0) {
				/* passing it on is best effort */
			}
			if (elen + (size_t)k < sizeof(err)) {
				memcpy(err + elen, buf, (size_t)k);
				elen += (size_t)k;
			}
		}
	}
	err[elen] = 0;
	close(fds[0]);
	close(efds[0]);
	kill(pid, SIGKILL);	/* gone already, unless it hangs */
	waitpid(pid, &status, 0);
	if (WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT && freed_while_mapped(err)) {
		aborted = true;
		fprintf(stderr, "check then raise: the child aborted in ufvm's check that a "
			"freed page is unmapped: the bug, caught\n");
	} else if (WIFSIGNALED(status) && WTERMSIG(status) != SIGKILL) {
		fprintf(stderr, "check then raise: the child died of signal %d after its "
			"last round\n", WTERMSIG(status));
	}
	cr_assert(n == (ssize_t)sizeof(res) || aborted,
		  "the child died without a result (status %#x)", status);
	report("check then raise", &res);
	cr_assert(!res.err[0], "%s", res.err);
	cr_assert(res.caught > 0 || aborted,
		     "check then raise: the walk passed the checked neighbour in %d of %d rounds "
		     "and no stale mapping was seen: the test cannot catch the bug", res.opened,
		     res.rounds);
}
