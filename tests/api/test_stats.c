/* SPDX-License-Identifier: MIT */
/*
 * test_stats.c - ufvm_stats() counters move with what happened.
 *
 * Checks: a cold read counts a fault, a major fault, a store read and a
 * major-path latency sample, and caches a page, and no sample of ufvm's own
 * time (only faults served from the cache have one); a refault of a cached
 * page through a second region counts a minor fault (speculation off) or a
 * speculative hit or minor fault (default), and no store read, and one
 * sample of ufvm's own time per such fault, at least 100 ns (a system
 * call) below the fault's service time (it leaves out the install call);
 * the first
 * write to a read page counts mkwrite and a dirty page, which ufvm_sync()
 * writes back (store write counters up, dirty pages back to 0); a store to a
 * page never touched is one fault and no mkwrite, on every backend; a store read
 * error answered with SIGBUS counts SIGBUS and a store error; a punch counts
 * the cached pages it invalidated; the region count follows map/unmap; every
 * counter and path has a distinct name; stats_path gets a JSON object at
 * ufvm_close(), "%p" in it being the pid; a stats_path that cannot be
 * created fails ufvm_open() (not only a message after the run), the file
 * exists from ufvm_open() on, and a failed write makes ufvm_close() fail;
 * a reader never finds it half written, nor two snapshots in it;
 * the JSON's numbers do not follow the program's locale (a decimal comma
 * would make it invalid).
 */
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

#define SEED	0x5eed0080
#define SIZE	(1 * MiB)

static struct ufvm_stats stats(struct ufvm *vm)
{
	struct ufvm_stats st;

	assert_ok(ufvm_stats(vm, &st));
	return st;
}

#define DELTA(after, before, c)	((after).counters[c] - (before).counters[c])

Test(stats, cold_read_counts_major, .timeout = 20)
{
	char path[TMPSTORE_PATH_MAX];
	struct ufvm_stats a, b;
	struct ufvm *vm;
	uint8_t *map;

	ut_store("s", SIZE, SEED, path);
	vm = ut_open(NULL);
	map = ut_map(vm, path, 0, SIZE, UFVM_PROT_READ);
	a = stats(vm);
	cr_assert_eq(a.regions, 1);
	assert_pattern(SEED, map + 10 * PAGE + 5, 10 * PAGE + 5, 1, "cold read");
	b = stats(vm);
	cr_assert_geq(DELTA(b, a, UFVM_CTR_FAULTS), 1, "faults did not move");
	cr_assert_geq(DELTA(b, a, UFVM_CTR_MAJOR), 1, "a cold read did not count a major fault");
	cr_assert_geq(DELTA(b, a, UFVM_CTR_STORE_READS), 1, "no store read counted");
	cr_assert_geq(DELTA(b, a, UFVM_CTR_STORE_READ_PAGES), 1, "no store page read counted");
	cr_assert_geq(b.latency[UFVM_PATH_MAJOR].count - a.latency[UFVM_PATH_MAJOR].count, 1,
		      "no major-path latency sample");
	cr_assert_gt(b.latency[UFVM_PATH_MAJOR].max_ns, 0);
	cr_assert_eq(b.own.count, a.own.count, "a major fault counted a sample of ufvm's own time");
	cr_assert_geq(b.cached_pages, 1, "nothing cached after a cold read");
	ut_unmap(vm, map, SIZE);
	ut_close(vm);
}

static void refault(int speculative)
{
	char path[TMPSTORE_PATH_MAX];
	struct ufvm_config cfg;
	struct ufvm_stats a, b;
	uint64_t served;
	struct ufvm *vm;
	uint8_t *m1, *m2;

	ut_store("s", SIZE, SEED, path);
	assert_ok(ufvm_config_init(&cfg));
	cfg.speculative = (unsigned int)speculative;
	vm = ut_open(&cfg);
	m1 = ut_map(vm, path, 0, SIZE, UFVM_PROT_READ);
	m2 = ut_map(vm, path, 0, SIZE, UFVM_PROT_READ);
	assert_pattern(SEED, m1 + 20 * PAGE, 20 * PAGE, PAGE, "first read, region 1");
	a = stats(vm);
	assert_pattern(SEED, m2 + 20 * PAGE, 20 * PAGE, PAGE, "refault, region 2");
	b = stats(vm);
	cr_assert_eq(DELTA(b, a, UFVM_CTR_MAJOR), 0, "a refault of a cached page counted major");
	cr_assert_eq(DELTA(b, a, UFVM_CTR_STORE_READS), 0, "a refault of a cached page read the store");
	if (speculative)
		cr_assert_geq(DELTA(b, a, UFVM_CTR_MINOR) + DELTA(b, a, UFVM_CTR_SPEC_HIT), 1,
			      "a refault counted neither minor nor speculative hit");
	else
		cr_assert_geq(DELTA(b, a, UFVM_CTR_MINOR), 1, "a refault did not count minor");
	if (!speculative)
		cr_assert_eq(DELTA(b, a, UFVM_CTR_SPEC_HIT), 0, "speculation is off but counted");
	served = b.latency[UFVM_PATH_SPEC].count - a.latency[UFVM_PATH_SPEC].count +
		 b.latency[UFVM_PATH_MINOR].count - a.latency[UFVM_PATH_MINOR].count;
	cr_assert_geq(served, 1);
	cr_assert_eq(b.own.count - a.own.count, served,
		     "%llu samples of ufvm's own time for %llu faults served from the cache",
		     (unsigned long long)(b.own.count - a.own.count), (unsigned long long)served);
	/* The install call is a system call: surely 100 ns or more. */
	cr_assert_leq(b.own.sum_ns - a.own.sum_ns + served * 100,
		      b.latency[UFVM_PATH_SPEC].sum_ns - a.latency[UFVM_PATH_SPEC].sum_ns +
		      b.latency[UFVM_PATH_MINOR].sum_ns - a.latency[UFVM_PATH_MINOR].sum_ns,
		      "ufvm's own time does not leave out the install call");
	ut_unmap(vm, m1, SIZE);
	ut_unmap(vm, m2, SIZE);
	ut_close(vm);
}

Test(stats, refault_counts_minor, .timeout = 20)
{
	refault(0);
}

Test(stats, refault_default_config, .timeout = 20)
{
	refault(1);
}

/*
 * A store to a page never touched is one fault, served as a write: the page
 * is filled, made dirty and mapped writable at once, as the kernel's own
 * write fault does, not mapped read-only and then faulted again (mkwrite).
 * The sigsegv backend learns that the access was a store from the page-fault
 * error code in the signal's context (x86-64; elsewhere it still infers it
 * from its shadow, and takes two faults).
 */
Test(stats, store_to_untouched_page_is_one_fault, .timeout = 20)
{
	char path[TMPSTORE_PATH_MAX];
	struct ufvm_stats a, b;
	struct ufvm *vm;
	uint8_t *map;
	unsigned int i, n = 8;

#if !defined(__x86_64__)
	struct ufvm_config cfg;

	assert_ok(ufvm_config_init(&cfg));
	if (cfg.backend == UFVM_BACKEND_SIGSEGV)
		cr_skip_test("the sigsegv backend reads the access type on x86-64 only");
#endif
	ut_store("s", SIZE, SEED, path);
	vm = ut_open(NULL);
	map = ut_map(vm, path, 0, SIZE, UFVM_PROT_READ | UFVM_PROT_WRITE);
	a = stats(vm);
	for (i = 0; i < n; i++)	/* 32 pages apart: out of any fault-around window */
		map[i * 32 * PAGE + 7] = (uint8_t)i;
	b = stats(vm);
	cr_assert_eq(DELTA(b, a, UFVM_CTR_FAULTS), n, "%u stores to untouched pages took %" PRIu64
		     " faults", n, DELTA(b, a, UFVM_CTR_FAULTS));
	cr_assert_eq(DELTA(b, a, UFVM_CTR_MKWRITE), 0, "%" PRIu64 " mkwrites",
		     DELTA(b, a, UFVM_CTR_MKWRITE));
	cr_assert_geq(b.dirty_pages, n, "%" PRIu64 " dirty pages after %u stores", b.dirty_pages, n);
	for (i = 0; i < n; i++)
		cr_assert_eq(map[i * 32 * PAGE + 7], (uint8_t)i, "page %u lost its store", i * 32);
	ut_unmap(vm, map, SIZE);
	ut_close(vm);
}

Test(stats, write_counts_mkwrite_and_writeback, .timeout = 20)
{
	char path[TMPSTORE_PATH_MAX];
	struct ufvm_stats a, b, c;
	struct ufvm *vm;
	uint8_t *map;

	ut_store("s", SIZE, SEED, path);
	vm = ut_open(NULL);
	map = ut_map(vm, path, 0, SIZE, UFVM_PROT_READ | UFVM_PROT_WRITE);
	assert_pattern(SEED, map + 5 * PAGE, 5 * PAGE, PAGE, "read before write");
	a = stats(vm);
	cr_assert_eq(a.dirty_pages, 0, "dirty pages before any write");
	map[5 * PAGE + 1] = 0x42;
	b = stats(vm);
	cr_assert_geq(DELTA(b, a, UFVM_CTR_MKWRITE), 1, "first write did not count mkwrite");
	cr_assert_geq(b.dirty_pages, 1, "no dirty page after a write");
	assert_ok(ufvm_sync(vm, map, SIZE));
	c = stats(vm);
	cr_assert_eq(c.dirty_pages, 0, "dirty pages left after ufvm_sync");
	cr_assert_geq(DELTA(c, b, UFVM_CTR_STORE_WRITES), 1, "no store write counted");
	cr_assert_geq(DELTA(c, b, UFVM_CTR_STORE_WRITE_PAGES), 1, "no store page write counted");
	ut_unmap(vm, map, SIZE);
	ut_close(vm);
}

/*
 * A fault the pager answers with SIGBUS (store read error) is counted.  (An
 * access past EOF is not used here: the kernel may deliver that SIGBUS
 * itself, past the end of the frames, without asking the pager.)
 */
Test(stats, sigbus_counted, .timeout = 20)
{
	char path[TMPSTORE_PATH_MAX];
	struct ufvm_stats a, b;
	struct ufvm_file *f;
	struct ufvm *vm;
	uint8_t *map, v;

	sigbus_install();
	ut_store("s", SIZE, SEED, path);
	vm = ut_open(NULL);
	assert_ok(ufvm_file_open(vm, path, UFVM_RDONLY, &f));
	assert_ok(ufvm_inject(f, UFVM_INJECT_READ_EIO, 8 * PAGE, PAGE));
	map = ut_map(vm, path, 0, SIZE, UFVM_PROT_READ);
	a = stats(vm);
	cr_assert_eq(sigbus_read(map + 8 * PAGE, &v, NULL), 1, "no SIGBUS on a store read error");
	b = stats(vm);
	cr_assert_geq(DELTA(b, a, UFVM_CTR_SIGBUS), 1, "SIGBUS not counted");
	cr_assert_geq(DELTA(b, a, UFVM_CTR_STORE_ERRORS), 1, "store error not counted");
	cr_assert_geq(b.latency[UFVM_PATH_SIGBUS].count - a.latency[UFVM_PATH_SIGBUS].count, 1,
		      "no SIGBUS-path latency sample");
	ut_unmap(vm, map, SIZE);
	assert_ok(ufvm_file_close(f));
	ut_close(vm);
}

Test(stats, punch_counts_invalidated, .timeout = 20)
{
	char path[TMPSTORE_PATH_MAX];
	struct ufvm_stats a, b;
	struct ufvm_file *f;
	struct ufvm *vm;
	uint8_t *map;

	struct ufvm_config cfg;

	/* No readahead: a window read after the punch would add pages. */
	cr_assert(ufvm_config_init(&cfg) == 0);
	cfg.readahead = 0;
	ut_store("s", SIZE, SEED, path);
	vm = ut_open(&cfg);
	assert_ok(ufvm_file_open(vm, path, UFVM_RDWR, &f));
	map = ut_map(vm, path, 0, SIZE, UFVM_PROT_READ);
	assert_pattern(SEED, map + 32 * PAGE, 32 * PAGE, 8 * PAGE, "cache 8 pages");
	a = stats(vm);
	cr_assert_geq(a.cached_pages, 8);
	assert_ok(ufvm_punch(f, 32 * PAGE, 8 * PAGE));
	b = stats(vm);
	cr_assert_geq(DELTA(b, a, UFVM_CTR_PAGES_INVALIDATED), 8,
		      "punch of 8 cached pages counted %llu invalidated",
		      (unsigned long long)DELTA(b, a, UFVM_CTR_PAGES_INVALIDATED));
	cr_assert_leq(b.cached_pages, a.cached_pages - 8, "cached pages %llu -> %llu after punch",
		      (unsigned long long)a.cached_pages, (unsigned long long)b.cached_pages);
	ut_unmap(vm, map, SIZE);
	assert_ok(ufvm_file_close(f));
	ut_close(vm);
}

Test(stats, region_count, .timeout = 20)
{
	char path[TMPSTORE_PATH_MAX];
	struct ufvm *vm;
	void *m[3];

	ut_store("s", SIZE, SEED, path);
	vm = ut_open(NULL);
	cr_assert_eq(stats(vm).regions, 0);
	for (int i = 0; i < 3; i++) {
		m[i] = ut_map(vm, path, 0, SIZE, UFVM_PROT_READ);
		cr_assert_eq(stats(vm).regions, (uint64_t)i + 1);
	}
	ut_unmap(vm, m[1], SIZE);
	cr_assert_eq(stats(vm).regions, 2);
	ut_unmap(vm, m[0], SIZE);
	ut_unmap(vm, m[2], SIZE);
	cr_assert_eq(stats(vm).regions, 0);
	ut_close(vm);
}

Test(stats, names_distinct, .timeout = 5)
{
	for (unsigned int i = 0; i < UFVM_CTR__COUNT; i++) {
		const char *n = ufvm_counter_name(i);

		cr_assert(n && *n, "counter %u has no name", i);
		for (unsigned int j = 0; j < i; j++)
			cr_assert_str_neq(n, ufvm_counter_name(j), "counters %u and %u share a name",
					  i, j);
	}
	for (unsigned int i = 0; i < UFVM_PATH__COUNT; i++) {
		const char *n = ufvm_path_name(i);

		cr_assert(n && *n, "path %u has no name", i);
		for (unsigned int j = 0; j < i; j++)
			cr_assert_str_neq(n, ufvm_path_name(j), "paths %u and %u share a name", i, j);
	}
}

Test(stats, stats_path_json_at_close, .timeout = 20)
{
	char path[TMPSTORE_PATH_MAX], json[TMPSTORE_PATH_MAX], text[65536];
	struct ufvm_config cfg;
	struct ufvm *vm;
	uint8_t *map;
	size_t n;
	FILE *fp;

	ut_store("s", SIZE, SEED, path);
	tmpstore_path("stats.json", json);
	assert_ok(ufvm_config_init(&cfg));
	snprintf(cfg.stats_path, sizeof(cfg.stats_path), "%s", json);
	vm = ut_open(&cfg);
	map = ut_map(vm, path, 0, SIZE, UFVM_PROT_READ);
	assert_pattern(SEED, map, 0, 4 * PAGE, "a few faults");
	ut_unmap(vm, map, SIZE);
	ut_close(vm);

	fp = fopen(json, "r");
	cr_assert(fp, "no stats file %s after ufvm_close", json);
	n = fread(text, 1, sizeof(text) - 1, fp);
	fclose(fp);
	text[n] = 0;
	while (n && (text[n - 1] == '\n' || text[n - 1] == ' '))
		text[--n] = 0;
	cr_assert(n > 2 && text[0] == '{' && text[n - 1] == '}',
		  "stats file is not a JSON object: %.200s", text);
	cr_assert(strstr(text, ufvm_counter_name(UFVM_CTR_MAJOR)),
		  "stats file does not name the counter %s", ufvm_counter_name(UFVM_CTR_MAJOR));
	cr_assert(strstr(text, "},\"own\":{\"count\":"),
		  "stats file has no \"own\" summary after the paths: %.200s", text);
}

/*
 * Invariant: a relative stats_path names the file where the process was at
 * ufvm_open(): a chdir() (to a directory beside it) before ufvm_close()
 * does not move it (it used to be written, or fail, relative to the new
 * directory).
 */
Test(stats, relative_stats_path_survives_chdir, .timeout = 20)
{
	char json[TMPSTORE_PATH_MAX], dir[TMPSTORE_PATH_MAX], other[TMPSTORE_PATH_MAX + 16];
	char text[4096];
	struct ufvm_config cfg;
	struct ufvm *vm;
	size_t n;
	FILE *fp;

	tmpstore_path("rel.json", json);
	snprintf(dir, sizeof(dir), "%s", json);
	*strrchr(dir, '/') = 0;
	snprintf(other, sizeof(other), "%s/other", dir);
	cr_assert(mkdir(other, 0755) == 0);
	cr_assert(chdir(dir) == 0);
	assert_ok(ufvm_config_init(&cfg));
	snprintf(cfg.stats_path, sizeof(cfg.stats_path), "rel.json");
	vm = ut_open(&cfg);
	cr_assert(chdir(other) == 0);
	ut_close(vm);
	cr_assert(access("rel.json", F_OK) != 0, "the stats file went to the new directory");
	fp = fopen(json, "r");
	cr_assert(fp, "no stats file %s after a chdir and ufvm_close", json);
	n = fread(text, 1, sizeof(text) - 1, fp);
	fclose(fp);
	text[n] = 0;
	cr_assert(n > 2 && text[0] == '{', "stats file is not a JSON object: %.200s", text);
}

/* Invariant: a stats file that cannot be written is refused when ufvm starts. */
Test(stats, stats_path_unwritable_fails_open, .timeout = 20)
{
	struct ufvm_config cfg;
	struct ufvm *vm = NULL;
	int r;

	assert_ok(ufvm_config_init(&cfg));
	snprintf(cfg.stats_path, sizeof(cfg.stats_path), "%s/no/such/dir/s.json",
		 tmpstore_dir());
	r = ufvm_open(&cfg, &vm);
	if (!r)
		ufvm_close(vm);
	cr_assert_eq(r, -ENOENT, "ufvm_open with an unwritable stats_path = %d, want -ENOENT", r);
}

/* "%p" is the pid; the file is made by ufvm_open(), written at ufvm_close(). */
Test(stats, stats_path_pid_made_at_open, .timeout = 20)
{
	char json[TMPSTORE_PATH_MAX], want[TMPSTORE_PATH_MAX + 32];
	struct ufvm_config cfg;
	struct stat st;
	struct ufvm *vm;

	tmpstore_path("s-%p.json", json);
	snprintf(want, sizeof(want), "%s", json);
	*strstr(want, "%p") = 0;
	snprintf(want + strlen(want), sizeof(want) - strlen(want), "%d.json", (int)getpid());
	assert_ok(ufvm_config_init(&cfg));
	snprintf(cfg.stats_path, sizeof(cfg.stats_path), "%s", json);
	vm = ut_open(&cfg);
	cr_assert(stat(want, &st) == 0, "no %s after ufvm_open", want);
	ut_close(vm);
	cr_assert(stat(want, &st) == 0 && st.st_size > 2, "%s not written at ufvm_close", want);
	cr_assert(stat(json, &st) != 0, "a file named %s was made", json);
}

/* A failed write of the stats file is ufvm_close()'s error. */
Test(stats, stats_write_error_fails_close, .timeout = 20)
{
	struct ufvm_config cfg;
	struct ufvm *vm;

	if (access("/dev/full", W_OK))
		cr_skip_test("no writable /dev/full here");
	assert_ok(ufvm_config_init(&cfg));
	snprintf(cfg.stats_path, sizeof(cfg.stats_path), "/dev/full");
	vm = ut_open(&cfg);
	assert_err(ufvm_close(vm), ENOSPC);
}

/*
 * A ufvm_open() that fails after it made the statistics file removes it
 * (it used to be left behind, empty); a file that was there before stays,
 * its content whole.
 * The failure: no file descriptor left for the cache's eventfd, in a
 * child whose limit leaves exactly one for the statistics file.
 */
static int open_with_one_fd_left(const char *json)
{
	struct ufvm_config cfg;
	struct rlimit rl;
	struct ufvm *vm;
	int fd, r;

	if (ufvm_config_init(&cfg))
		return 100;
	snprintf(cfg.stats_path, sizeof(cfg.stats_path), "%s", json);
	fd = dup(0);		/* the lowest free descriptor */
	if (fd < 0)
		return 101;
	close(fd);
	rl.rlim_cur = rl.rlim_max = (rlim_t)fd + 1;
	if (setrlimit(RLIMIT_NOFILE, &rl))
		return 102;
	r = ufvm_open(&cfg, &vm);
	if (!r) {
		ufvm_close(vm);
		return 103;	/* nothing failed: the test proves nothing */
	}
	return r == -EMFILE ? 0 : 104;
}

Test(stats, failed_open_removes_the_file_it_made, .timeout = 20)
{
	char made[TMPSTORE_PATH_MAX], there[TMPSTORE_PATH_MAX];
	struct stat st;
	int status;
	FILE *f;
	pid_t pid;

	tmpstore_path("made.json", made);
	tmpstore_path("there.json", there);
	unlink(made);
	f = fopen(there, "w");
	cr_assert(f && fputs("old", f) >= 0 && fclose(f) == 0);
	for (int k = 0; k < 2; k++) {
		pid = fork();
		cr_assert(pid >= 0);
		if (pid == 0)
			_exit(open_with_one_fd_left(k ? there : made));
		cr_assert_eq(waitpid(pid, &status, 0), pid);
		cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
			  "the child: %s %d (0 wanted: ufvm_open failed with -EMFILE)",
			  WIFSIGNALED(status) ? "signal" : "exit status",
			  WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
	}
	cr_assert(stat(made, &st) != 0 && errno == ENOENT,
		  "%s, made by a ufvm_open that failed, is still there", made);
	cr_assert(stat(there, &st) == 0, "%s, there before, was removed", there);
	cr_assert_eq(st.st_size, 3, "%s, there before, lost its content (%lld bytes left)",
		     there, (long long)st.st_size);
}

/* Is the whole of @path one JSON object written by ufvm (not a part of one)? */
static bool whole_json(const char *path, char *text, size_t size, size_t *len)
{
	int fd = open(path, O_RDONLY);
	ssize_t n;
	size_t got = 0;
	int depth = 0;
	bool str = false, esc = false;

	if (fd < 0)
		return false;
	while (got < size - 1 && (n = read(fd, text + got, size - 1 - got)) > 0)
		got += (size_t)n;
	close(fd);
	text[got] = 0;
	*len = got;
	if (got < 3 || text[0] != '{' || strncmp(text + got - 2, "}\n", 2))
		return false;
	for (size_t i = 0; i < got; i++) {
		char c = text[i];

		if (str) {
			esc = !esc && c == '\\';
			str = esc || c != '"';
		} else if (c == '"') {
			str = true;
		} else if (c == '{' || c == '[') {
			depth++;
		} else if ((c == '}' || c == ']') && --depth == 0 && i != got - 2) {
			return false;	/* a second object after the first */
		}
	}
	return depth == 0 && !str;
}

/*
 * Several processes write one stats_path at their ufvm_close() while
 * another reads it: every read finds one whole JSON object (a new file
 * renamed over the old; written in place, a reader met it empty or half
 * written, and two writers left one's tail after the other's text), and
 * the file keeps its mode.
 */
Test(stats, stats_file_replaced_whole, .timeout = 60)
{
	char path[TMPSTORE_PATH_MAX], json[TMPSTORE_PATH_MAX];
	static char text[1 << 20];
	unsigned int reads = 0, live = 4;
	pid_t kids[4];
	struct stat st;
	size_t len;
	FILE *f;

	ut_store("s", SIZE, SEED, path);
	tmpstore_path("shared.json", json);
	f = fopen(json, "w");
	cr_assert(f && fputs("{}\n", f) >= 0 && fclose(f) == 0);
	cr_assert(!chmod(json, 0640));
	for (unsigned int k = 0; k < 4; k++) {
		kids[k] = fork();
		cr_assert(kids[k] >= 0);
		if (kids[k] == 0) {
			for (unsigned int i = 0; i < 25; i++) {
				struct ufvm_config cfg;
				struct ufvm *vm;
				uint8_t *map;

				if (ufvm_config_init(&cfg))
					_exit(10);
				snprintf(cfg.stats_path, sizeof(cfg.stats_path), "%s", json);
				if (ufvm_open(&cfg, &vm))
					_exit(11);
				/* Snapshots of different lengths: k + i pages faulted. */
				if (ufvm_map(vm, path, 0, SIZE, UFVM_PROT_READ, 0, (void **)&map))
					_exit(12);
				for (unsigned int p = 0; p < k * 7 + i; p++)
					(void)*(volatile uint8_t *)(map + p * PAGE);
				if (ufvm_unmap(vm, map, SIZE) || ufvm_close(vm))
					_exit(13);
			}
			_exit(0);
		}
	}
	while (live) {
		int status;

		cr_assert(whole_json(json, text, sizeof(text), &len),
			  "read %u of %s: not one whole JSON object (%zu bytes): %.80s ... %s",
			  reads, json, len, text, len > 40 ? text + len - 40 : "");
		reads++;
		for (unsigned int k = 0; k < 4; k++) {
			if (kids[k] > 0 && waitpid(kids[k], &status, WNOHANG) == kids[k]) {
				cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
					  "writer %u: status %#x", k, status);
				kids[k] = 0;
				live--;
			}
		}
	}
	cr_assert(whole_json(json, text, sizeof(text), &len) && strstr(text, "ufvm-stats-1"),
		  "the last file is not a whole snapshot: %.80s", text);
	cr_assert(!stat(json, &st) && (st.st_mode & 07777) == 0640,
		  "the file's mode went from 0640 to %#o", (unsigned int)(st.st_mode & 07777));
	cr_log_info("%u reads of the file while it was rewritten 100 times\n", reads);
}

/*
 * A locale whose decimal point is a comma, built with localedef (no locale
 * but C is installed on a fresh machine; it takes a second or two) once
 * per build tree, into locale/ beside the test executable: built in a
 * directory of its own and renamed into place, so that a build cut short
 * is never taken for one.  Return: whether it is now LC_NUMERIC.
 */
static bool comma_locale(void)
{
	char dir[PATH_MAX], tmp[PATH_MAX + 16], cmd[3 * PATH_MAX], num[16], *slash;
	ssize_t n = readlink("/proc/self/exe", dir, sizeof(dir) - 16);

	if (access("/usr/share/i18n/locales/de_DE", R_OK) || n <= 0)
		return false;
	dir[n] = 0;
	slash = strrchr(dir, '/');
	if (!slash)
		return false;
	strcpy(slash + 1, "locale");
	snprintf(tmp, sizeof(tmp), "%s.%d", dir, (int)getpid());
	snprintf(cmd, sizeof(cmd), "%s/de_DE.UTF-8", dir);
	if (access(cmd, R_OK)) {
		if (snprintf(cmd, sizeof(cmd), "rm -rf '%s' && mkdir -p '%s' && localedef -i "
			     "de_DE -f UTF-8 '%s/de_DE.UTF-8' >/dev/null 2>&1", tmp, tmp,
			     tmp) >= (int)sizeof(cmd) || system(cmd))
			return false;
		if (rename(tmp, dir)) {		/* another run's is there: take it */
			if (snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp) >= (int)sizeof(cmd) ||
			    system(cmd))
				return false;
		}
	}
	setenv("LOCPATH", dir, 1);
	if (!setlocale(LC_NUMERIC, "de_DE.UTF-8"))
		return false;
	snprintf(num, sizeof(num), "%.1f", 0.5);
	return !strcmp(num, "0,5");
}

Test(stats, json_numbers_ignore_the_locale, .timeout = 60)
{
	char path[TMPSTORE_PATH_MAX], *text = NULL, *p;
	struct ufvm *vm;
	uint8_t *map;
	size_t len = 0;
	unsigned int whole, tenth;
	char end;
	FILE *m;

	if (!comma_locale())
		cr_skip_test("no locale with a decimal comma could be made (localedef, de_DE)");
	ut_store("s", SIZE, SEED, path);
	vm = ut_open(NULL);
	map = ut_map(vm, path, 0, SIZE, UFVM_PROT_READ);
	assert_pattern(SEED, map, 0, 4 * PAGE, "a few cached pages");
	m = open_memstream(&text, &len);
	cr_assert(m);
	assert_ok(ufvm_stats_write_json(vm, m));
	fclose(m);
	p = strstr(text, "\"meta_bytes_per_cached_page\":");
	cr_assert(p, "no meta_bytes_per_cached_page in %.200s", text);
	p += strlen("\"meta_bytes_per_cached_page\":");
	cr_assert(sscanf(p, "%u.%u%c", &whole, &tenth, &end) == 3 && end == '}' && tenth < 10,
		  "not a JSON number with a decimal point: %.20s", p);
	cr_assert_gt(whole, 0);
	free(text);
	ut_unmap(vm, map, SIZE);
	ut_close(vm);
	setlocale(LC_NUMERIC, "C");
}
