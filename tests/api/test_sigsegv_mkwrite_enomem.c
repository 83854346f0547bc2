/* SPDX-License-Identifier: MIT */
/*
 * test_sigsegv_mkwrite_enomem.c - a fault that needs a new mapping when
 * the process has vm.max_map_count of them (most of them the
 * application's) ends: served, or answered with SIGBUS; never retried for
 * ever.
 *
 * The sigsegv backend maps each page apart from its neighbours; making one
 * page of a read-only run writable (a write to a page read before), or
 * installing one page inside the region's reservation, splits a mapping,
 * which the kernel refuses (ENOMEM) with the table full.  A write to a
 * page mapped read-only: the failed mprotect() has the next fault zap
 * every region back to one mapping (docs/architecture.md), which gives
 * back mappings; the write then completes and reaches the store, or, if
 * the table's slack leaves no room for its page even so, gets SIGBUS.  A
 * page of a region nothing of which is mapped (one mapping already,
 * nothing to give back), cached or not: the install fails and the access
 * gets SIGBUS, as a fill that fails does (on the userfaultfd backend too
 * when the fill wants a mapping: a cache pool's growth).  A cached page
 * used to be answered as mapped, and the access faulted again at once,
 * for ever (install errors were dropped; the cached-page case fails so
 * without the fix); now after 16 failures in a row (pager/fault.c,
 * NOMAP_LIMIT).  The faulting thread
 * is made before the table is filled (a thread's stack is a mapping too)
 * and runs the access while the main thread waits at most WAIT_MS, then
 * empties the table (which lets a fault retried in a loop through).
 *
 * Every backend runs it; the userfaultfd backend changes protection
 * without splitting mappings.  Skipped under AddressSanitizer, whose
 * allocator aborts the process when it cannot map.
 */
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/mman.h>
#include <unistd.h>

#include "check.h"
#include "pagemap.h"

#define NPAGES		16
#define SEED		0x5eed3700
#define MAX_FILL	(1ul << 18)	/* mappings made at most to fill the table */
#define WAIT_MS		5000

struct access {
	volatile uint8_t *p;
	bool write;
	int sig;			/* 0, or the signal the access got */
	int go, done;			/* (a) */
};

static void *access_main(void *arg)
{
	struct access *a = arg;
	struct sigbus_info info;
	uint8_t v;

	while (!__atomic_load_n(&a->go, __ATOMIC_ACQUIRE))
		usleep(1000);
	a->sig = a->write ? sigcatch_write(a->p, 'w', &info) : sigcatch_read(a->p, &v, &info);
	__atomic_store_n(&a->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

/*
 * Run @a's access with the mapping table full.  Return: the ms it took, or
 * WAIT_MS if it was not done by then (done once the table was emptied).
 */
static int access_with_table_full(struct access *a)
{
	size_t table_len;
	pthread_t th;
	void *table;
	int ms;

#ifdef __SANITIZE_ADDRESS__
	cr_skip_test("AddressSanitizer's own allocator needs new mappings (it aborts with the "
		     "table full)");
#endif
	cr_assert_eq(pthread_create(&th, NULL, access_main, a), 0);
	table = maps_fill_table(MAX_FILL, &table_len);
	if (!table) {
		__atomic_store_n(&a->go, 1, __ATOMIC_RELEASE);
		pthread_join(th, NULL);
		cr_skip_test("the mapping table did not fill up (vm.max_map_count too large?)");
	}
	__atomic_store_n(&a->go, 1, __ATOMIC_RELEASE);
	for (ms = 0; ms < WAIT_MS && !__atomic_load_n(&a->done, __ATOMIC_ACQUIRE); ms++)
		usleep(1000);
	munmap(table, table_len);
	pthread_join(th, NULL);
	return ms;
}

static uint8_t *map_file(struct ut_file *u)
{
	struct ufvm_config cfg;

	sigcatch_install();	/* a SIGBUS or genuine SIGSEGV comes back to the thread */
	assert_ok(ufvm_config_init(&cfg));
	cfg.readahead = 0;
	ut_file_open(u, &cfg, "a", NPAGES, SEED, UFVM_RDWR);
	return ut_map(u->vm, u->path, 0, NPAGES * PAGE, UFVM_PROT_READ | UFVM_PROT_WRITE);
}

Test(sigsegv_mkwrite_enomem, write_to_a_page_mapped_read_only_completes, .timeout = 60)
{
	struct access a = { .write = true };
	struct ut_file u;
	uint8_t *m = map_file(&u), b;
	int ms;

	for (int pg = 0; pg < 4; pg++)	/* 0..3 mapped read-only, one mapping */
		cr_assert_eq(m[pg * PAGE], pattern_byte(SEED, pg * PAGE));
	a.p = m + PAGE + 5;
	ms = access_with_table_full(&a);
	cr_assert_lt(ms, WAIT_MS, "a write to a page mapped read-only, with the mapping table "
		     "full, was not done in %d ms", WAIT_MS);
	cr_assert(a.sig == 0 || a.sig == SIGBUS, "the write got signal %d", a.sig);
	if (a.sig) {	/* no room for its page even in a region of one mapping */
		assert_ok(ufvm_zap(u.vm, m + PAGE, PAGE));	/* lifts the poison at once */
		m[PAGE + 5] = 'w';
	}
	cr_assert_eq(m[PAGE + 5], 'w');
	assert_ok(ufvm_fsync(u.f));
	b = ut_store_byte(u.path, PAGE + 5);
	cr_assert_eq(b, 'w', "the write did not reach the store (it holds %#x)", b);
	ut_unmap(u.vm, m, NPAGES * PAGE);
	ut_file_close(&u);
}

static void read_with_table_full(bool cached)
{
	struct access a = { .write = false };
	struct ut_file u;
	uint8_t *m = map_file(&u);
	int ms;

	if (cached) {	/* cached, then unmapped: the region is one mapping again */
		cr_assert_eq(m[5 * PAGE], pattern_byte(SEED, 5 * PAGE));
		assert_ok(ufvm_zap(u.vm, m, NPAGES * PAGE));
	}
	a.p = m + 5 * PAGE;
	ms = access_with_table_full(&a);
	cr_assert_lt(ms, WAIT_MS, "a read of an unmapped page, with the mapping table full, "
		     "was not done in %d ms", WAIT_MS);
	cr_assert(a.sig == 0 || a.sig == SIGBUS, "the read got signal %d", a.sig);
	assert_ok(ufvm_zap(u.vm, m + 5 * PAGE, PAGE));	/* lifts a SIGBUS's poison at once */
	cr_assert_eq(m[5 * PAGE + 5], pattern_byte(SEED, 5 * PAGE + 5));	/* table empty again */
	ut_unmap(u.vm, m, NPAGES * PAGE);
	ut_file_close(&u);
}

Test(sigsegv_mkwrite_enomem, a_page_that_cannot_be_mapped_gets_sigbus, .timeout = 60)
{
	read_with_table_full(false);
}

Test(sigsegv_mkwrite_enomem, a_cached_page_that_cannot_be_mapped_gets_sigbus, .timeout = 60)
{
	read_with_table_full(true);
}

/*
 * The same with SIGBUS at its default action, in a child of its own: the
 * answer cannot be queued to a handler, and the sigsegv backend's poison
 * (a mapping) cannot be made with the table full either; the signal is
 * forced, as the kernel forces a fault's, and the child dies of it (or,
 * given room, is served: always on the userfaultfd backend, whose poison
 * takes no mapping).  It used to fault for ever.
 */
static int default_action_child(const char *path)
{
	struct ufvm_config cfg;
	size_t table_len;
	struct ufvm *vm;
	void *addr;
	uint8_t *m;

	signal(SIGBUS, SIG_DFL);
	setrlimit(RLIMIT_CORE, &(struct rlimit){ 0, 0 });	/* no core of 65,000 mappings */
	if (ufvm_config_init(&cfg))
		return 2;
	cfg.readahead = 0;
	if (ufvm_open(&cfg, &vm) ||
	    ufvm_map(vm, path, 0, NPAGES * PAGE, UFVM_PROT_READ, UFVM_MAP_SHARED, &addr))
		return 2;
	m = addr;
	if (m[5 * PAGE] != pattern_byte(SEED, 5 * PAGE) || ufvm_zap(vm, m, NPAGES * PAGE))
		return 2;
	if (!maps_fill_table(MAX_FILL, &table_len))
		return 77;
	return *(volatile uint8_t *)(m + 5 * PAGE + 5) == pattern_byte(SEED, 5 * PAGE + 5) ? 0 : 3;
}

Test(sigsegv_mkwrite_enomem, default_action_sigbus_kills, .timeout = 60)
{
	char path[TMPSTORE_PATH_MAX];
	int status;
	pid_t pid;

#ifdef __SANITIZE_ADDRESS__
	cr_skip_test("AddressSanitizer's own allocator needs new mappings");
#endif
	ut_store("d", NPAGES * PAGE, SEED, path);
	pid = fork();
	cr_assert(pid >= 0);
	if (!pid)
		_exit(default_action_child(path));
	cr_assert(ut_wait_child(pid, WAIT_MS, &status), "a read of a cached page that cannot "
		  "be mapped, SIGBUS at its default action, was not done in %d ms", WAIT_MS);
	if (WIFEXITED(status) && WEXITSTATUS(status) == 77)
		cr_skip_test("the mapping table did not fill up (vm.max_map_count too large?)");
	cr_assert((WIFSIGNALED(status) && WTERMSIG(status) == SIGBUS) ||
		  (WIFEXITED(status) && !WEXITSTATUS(status)),
		  "the child " UT_STATUS_FMT ", not SIGBUS nor served", UT_STATUS_ARGS(status));
}
