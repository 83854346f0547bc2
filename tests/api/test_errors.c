/* SPDX-License-Identifier: MIT */
/*
 * test_errors.c - store I/O errors reach the right caller and nobody else.
 *
 * Checks: a store read error (ufvm_inject READ_EIO) on a page delivers
 * SIGBUS to the thread that faulted on it -- the handler runs on that
 * thread and si_addr is the faulting address -- while another thread keeps
 * faulting other pages of the same region and reads correct data, and the
 * process survives (an unexpected SIGBUS on any other thread kills it, see
 * sigbus.h); ufvm_pread() of that range returns -EIO and of other ranges
 * works; a store write error (WRITE_EIO) makes ufvm_sync() return -EIO while
 * the other dirty pages still reach the store, and ufvm_unmap() and
 * ufvm_close() report a write-back error too.  A store read error is
 * tried again at every access where the faulting thread takes its own
 * SIGBUS (sigsegv backend, in-thread delivery), and with handler threads
 * once the poisoned address is lifted; a process whose SIGBUS is blocked,
 * ignored or left to its default dies of it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "race.h"

#define FILE_SIZE	(8 * MiB)
#define NPAGES		(FILE_SIZE / PAGE)
#define SEED		0x5eed0040
#define BAD_PAGE	300ul

static const int RW = UFVM_PROT_READ | UFVM_PROT_WRITE;

struct eio_run {
	uint8_t *map;
	atomic_int phase;		/* 0 warm-up, 1 faulter ran, 2 stop */
	/* faulting thread */
	pid_t faulter_tid;
	int faulter_got_sigbus;
	struct sigbus_info faulter_si;
	/* reading thread */
	atomic_long reads;
	long reads_after;		/* reads done after the faulter's SIGBUS */
	long bad_offset;		/* first wrong byte seen, or -1 */
	long sigbus_seen;		/* SIGBUS caught by the reader, or 0 */
};

/* Reads cold pages of the region (never BAD_PAGE), checking each. */
static void *reader(void *arg)
{
	struct eio_run *run = arg;
	struct rng r = { .s = 99 };
	struct sigbus_info si;
	long after = 0;

	run->bad_offset = -1;
	for (size_t pg = 0;; pg = (pg + 1 + rng_below(&r, 7)) % NPAGES) {
		size_t off;
		uint8_t v;

		if (pg == BAD_PAGE)
			continue;
		off = pg * PAGE + rng_below(&r, PAGE);
		/* Armed, so a stray SIGBUS here is counted, not fatal. */
		if (sigbus_read(run->map + off, &v, &si)) {
			run->sigbus_seen++;
			break;
		}
		if (v != pattern_byte(SEED, off)) {
			run->bad_offset = (long)off;
			break;
		}
		atomic_fetch_add(&run->reads, 1);
		int ph = atomic_load(&run->phase);

		if (ph >= 1)
			after++;
		if (ph == 2 && after >= 200)
			break;
	}
	run->reads_after = after;
	return NULL;
}

static void *faulter(void *arg)
{
	struct eio_run *run = arg;
	uint8_t v;

	run->faulter_tid = sigbus_gettid();
	run->faulter_got_sigbus =
		sigbus_read(run->map + BAD_PAGE * PAGE + 123, &v, &run->faulter_si);
	atomic_store(&run->phase, 1);
	return NULL;
}

Test(errors, read_eio_sigbus_in_faulting_thread_only, .timeout = 30)
{
	char path[TMPSTORE_PATH_MAX];
	struct eio_run run = { 0 };
	pthread_t rt, ft;
	struct ufvm_file *f;
	struct ufvm *vm;
	uint8_t buf[PAGE];

	sigbus_install();
	ut_store("e", FILE_SIZE, SEED, path);
	vm = ut_open(NULL);
	assert_ok(ufvm_file_open(vm, path, UFVM_RDWR, &f));
	assert_ok(ufvm_inject(f, UFVM_INJECT_READ_EIO, BAD_PAGE * PAGE, PAGE));
	run.map = ut_map(vm, path, 0, FILE_SIZE, UFVM_PROT_READ);

	cr_assert(pthread_create(&rt, NULL, reader, &run) == 0);
	while (atomic_load(&run.reads) < 100)
		sched_yield();
	cr_assert(pthread_create(&ft, NULL, faulter, &run) == 0);
	pthread_join(ft, NULL);
	atomic_store(&run.phase, 2);
	pthread_join(rt, NULL);

	cr_assert_eq(run.faulter_got_sigbus, 1, "the read of the failing page did not SIGBUS");
	cr_assert_eq(run.faulter_si.tid, run.faulter_tid,
		     "SIGBUS handled on thread %d, the faulting thread is %d",
		     run.faulter_si.tid, run.faulter_tid);
	cr_assert_eq(run.faulter_si.addr, (void *)(run.map + BAD_PAGE * PAGE + 123),
		     "si_addr %p, want %p", run.faulter_si.addr,
		     (void *)(run.map + BAD_PAGE * PAGE + 123));
	cr_assert_eq(run.sigbus_seen, 0, "the other thread got a SIGBUS");
	cr_assert_eq(run.bad_offset, -1, "the other thread read a wrong byte at %#lx",
		     run.bad_offset);
	cr_assert_geq(run.reads_after, 200, "the other thread stalled after the SIGBUS");

	/* The main thread carries on too, and ufvm_pread reports the error. */
	assert_pattern(SEED, run.map + (BAD_PAGE + 1) * PAGE, (BAD_PAGE + 1) * PAGE, PAGE,
		       "page after the failing one");
	assert_err(ufvm_pread(f, buf, PAGE, BAD_PAGE * PAGE), EIO);
	ut_pread(f, buf, PAGE, (BAD_PAGE - 1) * PAGE);
	assert_pattern(SEED, buf, (BAD_PAGE - 1) * PAGE, PAGE, "ufvm_pread of a good page");
	ut_unmap(vm, run.map, FILE_SIZE);
	assert_ok(ufvm_file_close(f));
	ut_close(vm);
}

/*
 * Whether a fault's SIGBUS for a store read error is per fault, as the
 * kernel's for a file: the sigsegv backend queues it to the faulting
 * thread, in-thread delivery forwards it.  Handler threads cannot: a
 * fault-like SIGBUS (a positive si_code) can be queued by a thread to
 * itself only, so they poison the address, and lift the poison some time
 * later (PAGER_POISON_HOLD_NS, 100 ms, then the background thread's next
 * round: within a second or so).
 */
static bool per_fault_sigbus(void)
{
	struct ufvm_config cfg;

	assert_ok(ufvm_config_init(&cfg));
	return cfg.backend == UFVM_BACKEND_SIGSEGV || cfg.delivery == UFVM_DELIVERY_INTHREAD;
}

/*
 * A store read error is not kept: every access of the failing page faults,
 * tries the store again and gets SIGBUS (BUS_ADRERR, the exact address;
 * per_fault_sigbus()), and once the store reads again, the same address
 * reads the file's byte, with no zap.  With handler threads the accesses
 * that follow the first within the hold get the poison's SIGBUS, with no
 * store read, and an access after the poison is lifted reads the store.
 */
Test(errors, read_eio_sigbus_is_per_fault, .timeout = 20)
{
	char path[TMPSTORE_PATH_MAX];
	const bool per_fault = per_fault_sigbus();
	const size_t at = 10 * PAGE + 77;
	struct sigbus_info si;
	struct ufvm_file *f;
	struct ufvm *vm;
	uint64_t e0, e1 = 0, e2, t0, span_us;
	uint8_t *map, v;
	int i, r;

	sigbus_install();
	ut_store("e", 1 * MiB, SEED, path);
	vm = ut_open(NULL);
	assert_ok(ufvm_file_open(vm, path, UFVM_RDONLY, &f));
	assert_ok(ufvm_inject(f, UFVM_INJECT_READ_EIO, 10 * PAGE, PAGE));
	map = ut_map(vm, path, 0, 1 * MiB, UFVM_PROT_READ);
	e0 = ut_counter(vm, UFVM_CTR_STORE_ERRORS);
	t0 = race_now_us();
	for (i = 0; i < 3; i++) {
		cr_assert_eq(sigbus_read(map + at, &v, &si), 1, "access %d of the failing page "
			     "read %#x", i, v);
		cr_assert_eq(si.addr, (void *)(map + at), "si_addr %p, want %p", si.addr,
			     (void *)(map + at));
		if (per_fault)
			cr_assert_eq(si.code, BUS_ADRERR, "si_code %d", si.code);
		if (!i)	/* the errors of one fault's reads */
			e1 = ut_counter(vm, UFVM_CTR_STORE_ERRORS) - e0;
	}
	span_us = race_now_us() - t0;
	cr_assert_geq(e1, 1, "a SIGBUS with no store read error");
	e2 = ut_counter(vm, UFVM_CTR_STORE_ERRORS) - e0;
	if (per_fault)
		cr_assert_eq(e2, 3 * e1, "3 accesses, %" PRIu64 " store read errors, %" PRIu64
			     " for the first: the error was kept", e2, e1);
	else if (span_us < 50 * 1000)	/* well inside the hold */
		cr_assert_eq(e2, e1, "handler threads: the poison should answer the accesses "
			     "after the first (%" PRIu64 " store read errors, %" PRIu64 " for the "
			     "first)", e2, e1);
	assert_ok(ufvm_inject(f, UFVM_INJECT_READ_EIO, 0, 0));
	/* Handler threads: until the poison is lifted (5 s at most). */
	for (i = 0; (r = sigbus_read(map + at, &v, &si)) && !per_fault && i < 250; i++)
		race_sleep_us(20000);
	cr_assert_eq(r, 0, "SIGBUS after the store recovered%s",
		     per_fault ? "" : ", 5 s later: the poison was never lifted");
	cr_assert_eq(v, pattern_byte(SEED, at), "wrong byte after the store recovered");
	ut_unmap(vm, map, 1 * MiB);
	assert_ok(ufvm_file_close(f));
	ut_close(vm);
}

/*
 * A fault's SIGBUS is forced through the faulting thread's mask and an
 * ignoring action, as the kernel's: the process dies of it, it does not
 * fault for ever.  The sigsegv backend, which cannot force it, poisons
 * the address instead of queueing it (the kernel's SIGBUS of the access
 * run again is forced).
 */
static void die_of_read_eio(int how)
{
	char path[TMPSTORE_PATH_MAX];
	struct ufvm_file *f;
	struct ufvm *vm;
	uint8_t *map;
	sigset_t bus;

	ut_store("e", 1 * MiB, SEED, path);
	vm = ut_open(NULL);
	assert_ok(ufvm_file_open(vm, path, UFVM_RDONLY, &f));
	assert_ok(ufvm_inject(f, UFVM_INJECT_READ_EIO, 10 * PAGE, PAGE));
	map = ut_map(vm, path, 0, 1 * MiB, UFVM_PROT_READ);
	ut_about_to_die(SIGBUS);
	if (how == 1) {
		sigemptyset(&bus);
		sigaddset(&bus, SIGBUS);
		pthread_sigmask(SIG_BLOCK, &bus, NULL);
	} else if (how == 2) {
		signal(SIGBUS, SIG_IGN);
	}
	(void)*(volatile uint8_t *)(map + 10 * PAGE + 5);
	cr_assert_fail("a failing store read did not raise SIGBUS");
}

Test(errors, read_eio_default_action_kills, .timeout = 20, .signal = SIGBUS)
{
	die_of_read_eio(0);
}

Test(errors, read_eio_sigbus_blocked_kills, .timeout = 20, .signal = SIGBUS)
{
	die_of_read_eio(1);
}

Test(errors, read_eio_sigbus_ignored_kills, .timeout = 20, .signal = SIGBUS)
{
	die_of_read_eio(2);
}

/*
 * The init of a PID namespace (a container without an init) gets no
 * signal sent to it with its default action, only those the kernel forces,
 * as a fault's: a failing store read must still kill it, not fault for
 * ever.  The sigsegv backend queued its SIGBUS there once, and the access
 * faulted again and again (the signal dropped each time); it poisons the
 * address instead when the action is the default.  Skipped where a PID
 * namespace cannot be made.
 */
Test(errors, read_eio_kills_a_pid_namespace_init, .timeout = 30)
{
	char path[TMPSTORE_PATH_MAX];
	int st = 0, i;
	pid_t pid;

	ut_store("e", 1 * MiB, SEED, path);
	if (unshare(CLONE_NEWPID))
		cr_skip_test("unshare(CLONE_NEWPID): %s", strerror(errno));
	pid = fork();
	cr_assert_geq(pid, 0, "fork: %s", strerror(errno));
	if (!pid) {
		struct ufvm_file *f;
		struct ufvm *vm;
		void *map;

		if (getpid() != 1 || ufvm_open(NULL, &vm) || ufvm_file_open(vm, path, UFVM_RDONLY, &f) ||
		    ufvm_inject(f, UFVM_INJECT_READ_EIO, 10 * PAGE, PAGE) ||
		    ufvm_map_file(f, 0, 1 * MiB, UFVM_PROT_READ, 0, &map))
			_exit(2);
		signal(SIGBUS, SIG_DFL);	/* not a sanitizer's */
		(void)*(volatile uint8_t *)((uint8_t *)map + 10 * PAGE + 5);
		_exit(3);
	}
	for (i = 0; i < 200 && !waitpid(pid, &st, WNOHANG); i++)
		race_sleep_us(50000);
	if (i == 200) {
		kill(pid, SIGKILL);
		waitpid(pid, &st, 0);
		cr_assert_fail("the namespace's init still ran 10 s after its read failed: "
			       "its SIGBUS was dropped, and the access faulted again and again");
	}
	cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGBUS, "the init ended with %s %d",
		  WIFSIGNALED(st) ? "signal" : "exit status",
		  WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
}

/*
 * An instance of the sigsegv backend beside one with in-thread delivery:
 * the SIGBUS action is then in-thread delivery's handler, which takes a
 * SIGBUS at an address of none of its regions for a race with an unmap and
 * lets the access run again.  A SIGBUS the sigsegv backend queued was
 * swallowed so, and the access served again: a second store read per
 * failing access (and, had the store recovered, a SIGBUS lost).  With that
 * handler installed the backend poisons the address: the access run again
 * raises SIGBUS again, which reaches the application.  Skipped without
 * userfaultfd.
 */
Test(errors, read_eio_sigsegv_beside_inthread_delivery, .timeout = 20)
{
	struct ut_file b;
	struct ufvm_config ca, cb;
	struct sigbus_info si;
	struct ufvm *a;
	uint64_t e0, one, two;
	uint8_t *map, v;
	int err;

	sigbus_install();
	assert_ok(ufvm_config_init(&cb));
	cb.backend = UFVM_BACKEND_SIGSEGV;
	ut_file_open(&b, &cb, "b", 64, SEED, UFVM_RDONLY);
	assert_ok(ufvm_inject(b.f, UFVM_INJECT_READ_EIO, 10 * PAGE, 40 * PAGE));
	assert_ok(ufvm_map_file(b.f, 0, 64 * PAGE, UFVM_PROT_READ, 0, (void **)&map));
	/* Alone: the queued SIGBUS, one fault's store reads. */
	e0 = ut_counter(b.vm, UFVM_CTR_STORE_ERRORS);
	cr_assert_eq(sigbus_read(map + 10 * PAGE + 3, &v, &si), 1, "no SIGBUS");
	one = ut_counter(b.vm, UFVM_CTR_STORE_ERRORS) - e0;
	assert_ok(ufvm_config_init(&ca));
	ca.backend = UFVM_BACKEND_UFFD;
	ca.delivery = UFVM_DELIVERY_INTHREAD;
	err = ufvm_open(&ca, &a);
	if (err) {
		ufvm_unmap(b.vm, map, 64 * PAGE);
		ut_file_close(&b);
		cr_skip_test("no userfaultfd: %s", ufvm_strerror(err));
	}
	e0 = ut_counter(b.vm, UFVM_CTR_STORE_ERRORS);
	cr_assert_eq(sigbus_read(map + 40 * PAGE + 3, &v, &si), 1, "no SIGBUS beside in-thread "
		     "delivery");
	cr_assert_eq(si.addr, (void *)(map + 40 * PAGE + 3), "si_addr %p", si.addr);
	two = ut_counter(b.vm, UFVM_CTR_STORE_ERRORS) - e0;
	cr_assert_eq(two, one, "beside in-thread delivery a failing access cost %" PRIu64
		     " store read errors, alone %" PRIu64 ": its SIGBUS was swallowed and the "
		     "access served again", two, one);
	ut_close(a);
	assert_ok(ufvm_unmap(b.vm, map, 64 * PAGE));
	ut_file_close(&b);
}

/* ufvm_pread() of a range with an injected read error: -EIO, nothing cached. */
Test(errors, read_eio_pread, .timeout = 20)
{
	char path[TMPSTORE_PATH_MAX];
	struct ufvm_file *f;
	struct ufvm *vm;
	uint8_t buf[4 * PAGE];

	ut_store("e", 1 * MiB, SEED, path);
	vm = ut_open(NULL);
	assert_ok(ufvm_file_open(vm, path, UFVM_RDONLY, &f));
	assert_ok(ufvm_inject(f, UFVM_INJECT_READ_EIO, 10 * PAGE, PAGE));
	assert_err(ufvm_pread(f, buf, PAGE, 10 * PAGE), EIO);
	/* Cleared: the same page now reads correctly (the error was not cached). */
	assert_ok(ufvm_inject(f, UFVM_INJECT_READ_EIO, 0, 0));
	ut_pread(f, buf, sizeof(buf), 9 * PAGE);
	assert_pattern(SEED, buf, 9 * PAGE, sizeof(buf), "ufvm_pread after clearing the error");
	assert_ok(ufvm_file_close(f));
	ut_close(vm);
}

/*
 * Store write error: ufvm_sync returns -EIO; the dirty pages outside the
 * failing range still reach the store.
 */
Test(errors, write_eio_sync_returns_eio, .timeout = 20)
{
	char path[TMPSTORE_PATH_MAX];
	struct ufvm_file *f;
	struct ufvm *vm;
	uint8_t *map, buf[PAGE];

	ut_store("e", 1 * MiB, SEED, path);
	vm = ut_open(NULL);
	assert_ok(ufvm_file_open(vm, path, UFVM_RDWR, &f));
	map = ut_map(vm, path, 0, 1 * MiB, RW);
	memset(map + 10 * PAGE, 0x10, PAGE);
	memset(map + 20 * PAGE, 0x20, PAGE);
	memset(map + 200 * PAGE, 0x30, PAGE);
	assert_ok(ufvm_inject(f, UFVM_INJECT_WRITE_EIO, 20 * PAGE, PAGE));

	assert_err(ufvm_sync(vm, map, 1 * MiB), EIO);

	cr_assert(tmpstore_read(path, buf, PAGE, 10 * PAGE) == 0);
	for (size_t i = 0; i < PAGE; i++)
		cr_assert_eq(buf[i], 0x10, "page 10 (before the failing page) not written back");
	cr_assert(tmpstore_read(path, buf, PAGE, 200 * PAGE) == 0);
	for (size_t i = 0; i < PAGE; i++)
		cr_assert_eq(buf[i], 0x30, "page 200 (after the failing page) not written back");
	cr_assert(tmpstore_read(path, buf, PAGE, 20 * PAGE) == 0);
	assert_pattern(SEED, buf, 20 * PAGE, PAGE, "the failing page in the store");
	/* The mapping itself still shows what was written. */
	cr_assert_eq(map[20 * PAGE + 5], 0x20);

	assert_ok(ufvm_inject(f, UFVM_INJECT_WRITE_EIO, 0, 0));
	ut_unmap(vm, map, 1 * MiB);
	assert_ok(ufvm_file_close(f));
	ut_close(vm);
}

/* ufvm_unmap() reports a write-back error, and the region is gone anyway. */
Test(errors, write_eio_unmap_reports_it, .timeout = 20)
{
	char path[TMPSTORE_PATH_MAX];
	struct ufvm_file *f;
	struct ufvm *vm;
	uint8_t *map;

	ut_store("e", 1 * MiB, SEED, path);
	vm = ut_open(NULL);
	assert_ok(ufvm_file_open(vm, path, UFVM_RDWR, &f));
	map = ut_map(vm, path, 0, 1 * MiB, RW);
	memset(map + 3 * PAGE, 0x10, PAGE);
	assert_ok(ufvm_inject(f, UFVM_INJECT_WRITE_EIO, 0, 1 * MiB));
	assert_err(ufvm_unmap(vm, map, 1 * MiB), EIO);
	assert_err(ufvm_unmap(vm, map, 1 * MiB), EINVAL);
	assert_ok(ufvm_inject(f, UFVM_INJECT_WRITE_EIO, 0, 0));
	assert_ok(ufvm_file_close(f));
	ut_close(vm);
}

/* ufvm_close() returns the first write-back error. */
Test(errors, write_eio_close_reports_it, .timeout = 20)
{
	char path[TMPSTORE_PATH_MAX];
	struct ufvm_file *f;
	struct ufvm *vm;
	uint8_t *map;

	ut_store("e", 1 * MiB, SEED, path);
	vm = ut_open(NULL);
	assert_ok(ufvm_file_open(vm, path, UFVM_RDWR, &f));
	map = ut_map(vm, path, 0, 1 * MiB, RW);
	memset(map + 3 * PAGE, 0x10, PAGE);
	assert_ok(ufvm_inject(f, UFVM_INJECT_WRITE_EIO, 0, 1 * MiB));
	assert_err(ufvm_close(vm), EIO);
}

/*
 * A write that extends the file and fails (here: the partial last page it
 * must read first cannot be read) leaves the size as it was, in ufvm and
 * in the store; one that fails after some pages takes back only what it
 * did not write.
 */
struct tail {
	char path[TMPSTORE_PATH_MAX];
	struct ufvm *vm;
	struct ufvm_file *f;
};

/*
 * A store @name of @size bytes whose page 1 cannot be read, and a write of
 * @len bytes of 0x77 at @off into it.  Afterwards the size must be @keep,
 * in ufvm and in the store.  Return: the write's result.
 */
static ssize_t write_over_unreadable(struct tail *t, const char *name, off_t size, off_t off,
				     size_t len, off_t keep)
{
	uint8_t buf[PAGE];
	off_t now;
	ssize_t r;

	cr_assert(len <= sizeof(buf));
	ut_store(name, size, SEED, t->path);
	t->vm = ut_open(NULL);
	assert_ok(ufvm_file_open(t->vm, t->path, UFVM_RDWR, &t->f));
	memset(buf, 0x77, len);
	assert_ok(ufvm_inject(t->f, UFVM_INJECT_READ_EIO, PAGE, PAGE));
	r = ufvm_pwrite(t->f, buf, len, off);
	assert_ok(ufvm_file_size(t->f, &now));
	cr_assert_eq(now, keep, "a write of %zu bytes at %lld (result %zd) left the size at "
		     "%lld", len, (long long)off, r, (long long)now);
	cr_assert_eq(tmpstore_size(t->path), keep, "the store is not %lld bytes",
		     (long long)keep);
	assert_ok(ufvm_inject(t->f, UFVM_INJECT_READ_EIO, 0, 0));
	return r;
}

static void tail_close(struct tail *t)
{
	assert_ok(ufvm_file_close(t->f));
	ut_close(t->vm);
}

Test(errors, failed_extending_write_keeps_the_size, .timeout = 20)
{
	uint8_t buf[100];
	struct tail t;
	off_t size;

	cr_assert_eq(write_over_unreadable(&t, "x", 5000, 4990, 100, 5000), -EIO);
	memset(buf, 0x77, sizeof(buf));
	cr_assert_eq(ufvm_pwrite(t.f, buf, 100, 4990), 100, "the write, once it can be read");
	assert_ok(ufvm_file_size(t.f, &size));
	cr_assert_eq(size, 5090);
	tail_close(&t);
}

/* A failed write at an offset past the end leaves no hole behind it. */
Test(errors, failed_write_past_the_end_keeps_the_size, .timeout = 20)
{
	struct tail t;

	cr_assert_eq(write_over_unreadable(&t, "z", 5000, 6000, 100, 5000), -EIO);
	tail_close(&t);
}

/* Short: page 0 is written (96 bytes), page 1 cannot be read. */
Test(errors, short_extending_write_keeps_only_what_it_wrote, .timeout = 20)
{
	struct tail t;

	cr_assert_eq(write_over_unreadable(&t, "y", 4500, 4000, 1000, 4500), PAGE - 4000);
	tail_close(&t);
}
