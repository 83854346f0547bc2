/* SPDX-License-Identifier: MIT */
/*
 * check.c - ufvm wrappers that assert: see check.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include "check.h"
#include "race.h"

struct ufvm *ut_open(const struct ufvm_config *cfg)
{
	struct ufvm *vm = NULL;
	int r = ufvm_open(cfg, &vm);

	if (r == -EPERM || r == -ENOSYS)
		cr_skip_test("ufvm_open: %s: userfaultfd is not usable here", ufvm_strerror(r));
	cr_assert(r == 0, "ufvm_open = %d (%s)", r, ufvm_strerror(r));
	cr_assert(vm != NULL, "ufvm_open returned 0 but no handle");
	return vm;
}

void ut_close(struct ufvm *vm)
{
	int r = ufvm_close(vm);

	cr_assert(r == 0, "ufvm_close = %d (%s)", r, ufvm_strerror(r));
}

void *ut_map(struct ufvm *vm, const char *path, off_t off, size_t len, int prot)
{
	void *addr = NULL;
	int r = ufvm_map(vm, path, off, len, prot, UFVM_MAP_SHARED, &addr);

	cr_assert(r == 0, "ufvm_map(%s, %#llx, %#zx, prot %d) = %d (%s)", path,
		  (unsigned long long)off, len, prot, r, ufvm_strerror(r));
	cr_assert(addr != NULL, "ufvm_map returned 0 but no address");
	cr_assert(((uintptr_t)addr & (PAGE - 1)) == 0, "ufvm_map address %p unaligned", addr);
	return addr;
}

void ut_unmap(struct ufvm *vm, void *addr, size_t len)
{
	int r = ufvm_unmap(vm, addr, len);

	cr_assert(r == 0, "ufvm_unmap(%p, %#zx) = %d (%s)", addr, len, r, ufvm_strerror(r));
}

void ut_store(const char *name, off_t size, uint64_t seed, char *path)
{
	int r = tmpstore_create(name, size, seed, path);

	cr_assert(r == 0, "tmpstore_create(%s, %lld) = %d (%s)", name, (long long)size,
		  r, strerror(-r));
}

void ut_pread(struct ufvm_file *f, void *buf, size_t len, off_t off)
{
	ssize_t r = ufvm_pread(f, buf, len, off);

	cr_assert(r == (ssize_t)len, "ufvm_pread(%#zx @ %#llx) = %zd (%s)", len,
		  (unsigned long long)off, r, r < 0 ? ufvm_strerror((int)r) : "short");
}

void ut_pwrite(struct ufvm_file *f, const void *buf, size_t len, off_t off)
{
	ssize_t r = ufvm_pwrite(f, buf, len, off);

	cr_assert(r == (ssize_t)len, "ufvm_pwrite(%#zx @ %#llx) = %zd (%s)", len,
		  (unsigned long long)off, r, r < 0 ? ufvm_strerror((int)r) : "short");
}

uint64_t ut_counter(struct ufvm *vm, enum ufvm_counter c)
{
	struct ufvm_stats st;
	int r = ufvm_stats(vm, &st);

	cr_assert(r == 0, "ufvm_stats = %d (%s)", r, ufvm_strerror(r));
	return st.counters[c];
}

uint8_t ut_store_byte(const char *path, off_t off)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	uint8_t b = 0;

	cr_assert(fd >= 0, "open %s: %s", path, strerror(errno));
	cr_assert_eq(pread(fd, &b, 1, off), 1);
	close(fd);
	return b;
}

void ut_about_to_die(int sig)
{
	sigset_t set;

	tmpstore_cleanup();
	signal(sig, SIG_DFL);
	sigemptyset(&set);
	sigaddset(&set, sig);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
}

void ut_file_open(struct ut_file *u, const struct ufvm_config *cfg, const char *name,
		  uint64_t npages, uint64_t seed, int flags)
{
	ut_store(name, (off_t)(npages * PAGE), seed, u->path);
	u->vm = ut_open(cfg);
	assert_ok(ufvm_file_open(u->vm, u->path, flags, &u->f));
}

void ut_file_close(struct ut_file *u)
{
	assert_ok(ufvm_file_close(u->f));
	ut_close(u->vm);
}

void ut_config_budget(struct ufvm_config *cfg, uint64_t budget)
{
	cr_assert(ufvm_config_init(cfg) == 0);
	cfg->cache_pages = budget;
}

static struct {
	struct ufvm_file *f;
	unsigned int npages;
	atomic_int *stop, *started, done;
} pb;

static void *pb_writer(void *arg)
{
	uint64_t v, got;

	(void)arg;
	/*
	 * From the first disruption on: under load the disrupters may not
	 * have run yet, and 100 pwrites done before it met none (a teeth
	 * once saw them all complete in 20 ms).
	 */
	while (!atomic_load(pb.started) && !atomic_load(pb.stop))
		race_sleep_us(100);
	for (v = 1; v <= 100 && !atomic_load(pb.stop); v++) {
		off_t at = (off_t)(v % pb.npages) * PAGE + 8;

		ut_pwrite(pb.f, &v, sizeof(v), at);
		ut_pread(pb.f, &got, sizeof(got), at);
		cr_assert_eq(got, v, "pwrite %llu read back %llu", (unsigned long long)v,
			     (unsigned long long)got);
		atomic_fetch_add(&pb.done, 1);
	}
	return NULL;
}

int ut_pwrites_beside(struct ufvm_file *f, unsigned int npages, void *(*disrupt)(void *),
		      atomic_int *stop, atomic_int *started, uint64_t us)
{
	pthread_t th[2], w;
	int i;

	pb.f = f;
	pb.npages = npages;
	pb.stop = stop;
	pb.started = started;
	atomic_store(stop, 0);
	atomic_store(&pb.done, 0);
	for (i = 0; i < 2; i++)
		cr_assert(pthread_create(&th[i], NULL, disrupt, NULL) == 0);
	cr_assert(pthread_create(&w, NULL, pb_writer, NULL) == 0);
	race_wait(&pb.done, 100, us);
	atomic_store(stop, 1);	/* the disruptions stop: a pending pwrite completes */
	for (i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	pthread_join(w, NULL);
	return atomic_load(&pb.done);
}

static struct {
	struct ufvm_file *f;
	unsigned int npages;
	int err;
	atomic_int stop, punching;
} bb;

static void bb_hook(void *arg, unsigned int point, uint64_t a, uint64_t b)
{
	(void)arg;
	(void)a;
	(void)b;
	if (point == UFVM_HOOK_INVALIDATED) {
		atomic_store(&bb.punching, 1);
		race_sleep_us(1000);
	}
}

static void *bb_puncher(void *arg)
{
	(void)arg;
	while (!atomic_load(&bb.stop))
		assert_err(ufvm_punch(bb.f, 0, (off_t)bb.npages * PAGE), bb.err);
	return NULL;
}

int ut_pwrites_beside_punches(struct ufvm *vm, struct ufvm_file *f, unsigned int npages,
			      int punch_errno, uint64_t us)
{
	int done;

	bb.f = f;
	bb.npages = npages;
	bb.err = punch_errno;
	atomic_store(&bb.punching, 0);
	assert_ok(ufvm_debug_hook(vm, bb_hook, NULL));
	done = ut_pwrites_beside(f, npages, bb_puncher, &bb.stop, &bb.punching, us);
	assert_ok(ufvm_debug_hook(vm, NULL, NULL));
	return done;
}

void ut_assert_pwrites_kept_back(int (*run)(uint64_t debug, uint64_t us), uint64_t debug)
{
	const int attempts = 3;
	int done = 0;

	for (int attempt = 1; attempt <= attempts; attempt++) {
		done = run(debug, RACE_HUNG_US);
		if (done < 5)
			return;
	}
	cr_assert_lt(done, 5, "with the bug's switch on, %d pwrites completed in %u us, in each "
		     "of %d runs: the test cannot see them start over", done, RACE_HUNG_US,
		     attempts);
}

bool ut_wait_child(pid_t pid, int ms, int *status)
{
	int i;

	for (i = 0; i < ms / 10; i++) {
		if (waitpid(pid, status, WNOHANG) == pid)
			return true;
		usleep(10000);
	}
	if (waitpid(pid, status, WNOHANG) == pid)
		return true;
	kill(pid, SIGKILL);
	cr_assert_eq(waitpid(pid, status, 0), pid);
	return false;
}
