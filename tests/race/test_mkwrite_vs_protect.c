/* SPDX-License-Identifier: MIT */
/*
 * test_mkwrite_vs_protect.c - a write fault that waited behind
 * ufvm_protect(READ) is not served as a write on the read-only region.
 *
 * Invariant: mkwrite makes a page writable only in a writable region.  A
 * write to a clean page raises a write-protect fault; if ufvm_protect()
 * makes the region read-only while that fault waits for mmap_lock, the
 * fault finds the read-only piece.  It must not dirty the page, make it
 * writable or mark it mapped writable (a later split of the piece would
 * then trip over the mark); it wakes the thread, whose write then gets
 * SIGSEGV, as the kernel would give it.
 *
 * The order is forced: a fill of another file, stalled in UFVM_HOOK_FILL
 * with retry off, holds mmap_lock shared; ufvm_protect() queues for it
 * (the lock is task-fair); the write faults and its fault queues behind
 * the protect (the test waits until the thread serving it sleeps: in
 * handle_userfault with the userfaultfd backend, whose handler then
 * queues; on the rwsem's futex with the sigsegv backend, where the
 * writing thread serves itself); then the fill goes on.  The write must
 * get SIGSEGV and UFVM_CTR_MKWRITE must not move.  Teeth: without the
 * writable check in do_mkwrite the counter moves by one, and with the
 * sigsegv backend the write even succeeds.
 *
 * The test's SIGSEGV handler is installed before ufvm_open(), so that
 * with the sigsegv backend ufvm passes the genuine fault on to it.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "check.h"
#include "race.h"

#define FILE_SIZE	(16 * PAGE)
#define SEED_A		0x5eed0900
#define SEED_B		0x5eed0901
#define TARGET_PG	3		/* the page written in file A */
#define STALL_PG	5		/* the page whose fill holds mmap_lock (file B) */
#define WAIT_US		(5 * 1000000u)

static struct {
	uint8_t *a, *b;			/* file A (writable), file B (read-only) */
	atomic_int fill_started;
	atomic_int release;
	atomic_int tid_protect, tid_write;
	int protect_rc;
	int write_sig;
} t;

static void hook(void *arg, unsigned int point, uint64_t a, uint64_t b)
{
	(void)b;
	if (point != UFVM_HOOK_FILL || a != STALL_PG * PAGE)
		return;
	atomic_store(&t.fill_started, 1);
	race_wait(&t.release, 1, WAIT_US);
}

static void *reader(void *arg)
{
	(void)*(volatile uint8_t *)(t.b + STALL_PG * PAGE);
	return NULL;
}

static void *protector(void *arg)
{
	atomic_store(&t.tid_protect, (int)syscall(SYS_gettid));
	t.protect_rc = ufvm_protect(arg, t.a, FILE_SIZE, UFVM_PROT_READ);
	return NULL;
}

static void *writer(void *arg)
{
	struct sigbus_info info;

	(void)arg;
	atomic_store(&t.tid_write, (int)syscall(SYS_gettid));
	t.write_sig = sigcatch_write(t.a + TARGET_PG * PAGE, 'W', &info);
	return NULL;
}

Test(mkwrite_vs_protect, queued_write_fault_is_not_served_on_read_only_piece, .timeout = 30)
{
	char pa[TMPSTORE_PATH_MAX], pb[TMPSTORE_PATH_MAX];
	struct ufvm_config cfg;
	pthread_t rd, pr, wr;
	struct ufvm *vm;
	uint64_t mkwrites;
	bool sigsegv;

	sigcatch_install();	/* before ufvm_open: see above */
	ut_store("a", FILE_SIZE, SEED_A, pa);
	ut_store("b", FILE_SIZE, SEED_B, pb);
	assert_ok(ufvm_config_init(&cfg));
	if (cfg.delivery == UFVM_DELIVERY_INTHREAD)
		cr_skip_test("in-thread delivery: the test counts on handler threads");
	cfg.retry = 0;		/* the stalled fill keeps mmap_lock */
	cfg.handler_threads = 2;	/* one for the fill, one for the write */
	cfg.readahead = 0;
	vm = ut_open(&cfg);
	sigsegv = !strcmp(ufvm_backend_name(vm), "sigsegv");
	t.a = ut_map(vm, pa, 0, FILE_SIZE, UFVM_PROT_READ | UFVM_PROT_WRITE);
	t.b = ut_map(vm, pb, 0, FILE_SIZE, UFVM_PROT_READ);
	cr_assert_eq(*(volatile uint8_t *)(t.a + TARGET_PG * PAGE),
		     pattern_byte(SEED_A, TARGET_PG * PAGE));	/* mapped clean */
	mkwrites = ut_counter(vm, UFVM_CTR_MKWRITE);
	assert_ok(ufvm_debug_hook(vm, hook, NULL));

	cr_assert(pthread_create(&rd, NULL, reader, NULL) == 0);
	cr_assert(race_wait(&t.fill_started, 1, WAIT_US), "the fill never began");
	cr_assert(pthread_create(&pr, NULL, protector, vm) == 0);
	cr_assert(race_wait_wchan(&t.tid_protect, "futex", WAIT_US), "ufvm_protect never waited");
	cr_assert(pthread_create(&wr, NULL, writer, NULL) == 0);
	cr_assert(race_wait_wchan(&t.tid_write, sigsegv ? "futex" : "handle_userfault",
				  WAIT_US), "the write never faulted");
	atomic_store(&t.release, 1);
	cr_assert_eq(race_join(rd, WAIT_US), 0);
	cr_assert_eq(race_join(pr, WAIT_US), 0);
	cr_assert_eq(race_join(wr, WAIT_US), 0);
	assert_ok(ufvm_debug_hook(vm, NULL, NULL));

	cr_assert_eq(t.protect_rc, 0);
	cr_assert_eq(ut_counter(vm, UFVM_CTR_MKWRITE), mkwrites,
		     "a write fault was served as mkwrite on the read-only region");
	cr_assert_eq(t.write_sig, SIGSEGV, "the write to the read-only region %s",
		     t.write_sig ? "got SIGBUS" : "succeeded");
	/* Split the read-only region: it must carry no writable mapping. */
	assert_ok(ufvm_unmap_range(vm, t.a, 8 * PAGE));
	ut_unmap(vm, t.b, FILE_SIZE);
	ut_close(vm);
}
