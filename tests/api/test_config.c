/* SPDX-License-Identifier: MIT */
/*
 * test_config.c - configuration: defaults, environment, and every valid
 * setting giving a working instance.
 *
 * Checks (docs/configuration.md): ufvm_config_init() with no UFVM_*
 * variables gives the documented defaults; each variable sets its field
 * (sizes like 64M for UFVM_CACHE_PAGES); a malformed value makes
 * ufvm_config_init() -- and ufvm_open(NULL, ...) -- fail with -EINVAL;
 * ufvm_parse_size() takes decimal digits only, with an optional K/M/G/T
 * suffix, and reports overflow; a cache budget under two pages, given as
 * pages or as a size, is refused by ufvm_config_init() itself;
 * and an instance opened with each valid non-default setting (one handler
 * thread, three unpinned handlers, spinning handlers, speculation off,
 * retry off, fault-around 1 and 256, addblock and none invalidation, store
 * latency) reads, writes, punches and syncs a file correctly; and pinned
 * handler threads run SCHED_BATCH, or SCHED_OTHER with handler_batch 0,
 * unpinned ones SCHED_OTHER.
 */
#define _GNU_SOURCE	/* SCHED_BATCH */
#include <dirent.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "check.h"

#define SEED	0x5eed00c0
#define SIZE	(1 * MiB)

static const char *const vars[] = {
	"UFVM_BACKEND", "UFVM_HANDLERS", "UFVM_HANDLER_SPIN_US", "UFVM_SPECULATIVE",
	"UFVM_FAULT_AROUND", "UFVM_RETRY", "UFVM_INVALIDATE", "UFVM_STORE_LATENCY_US",
	"UFVM_CACHE_PAGES", "UFVM_STATS", "UFVM_DIRECT_IO", "UFVM_HANDLER_BATCH",
	"UFVM_HANDLER_PARK", "UFVM_INSTALL_SPLIT", "UFVM_FRAME_STRIPES", "UFVM_CHUNK_PAGES",
	"UFVM_WRITE_AHEAD",
};

static void clear_env(void)
{
	for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
		unsetenv(vars[i]);
}

Test(config, defaults, .timeout = 5)
{
	struct ufvm_config cfg;

	clear_env();
	memset(&cfg, 0xa5, sizeof(cfg));
	assert_ok(ufvm_config_init(&cfg));
	cr_assert_eq(cfg.backend, UFVM_BACKEND_AUTO);
	cr_assert_eq(cfg.handler_threads, 0);
	cr_assert_eq(cfg.handler_batch, 1);
	cr_assert_eq(cfg.handler_park, 1);
	cr_assert_eq(cfg.install_split, 1);
	cr_assert_eq(cfg.speculative, 1);
	cr_assert_eq(cfg.fault_around, 16);
	cr_assert_eq(cfg.retry, 1);
	cr_assert_eq(cfg.invalidate, UFVM_INVALIDATE_RWSEM);
	cr_assert_eq(cfg.store_latency_us, 0);
	cr_assert_eq(cfg.direct_io, 0);
	cr_assert_eq(cfg.cache_pages, 0);
	cr_assert_eq(cfg.stats_path[0], 0);
	cr_assert_eq(cfg.debug_flags, 0);
	cr_assert_eq(cfg.frame_stripes, 4);
	cr_assert_eq(cfg.chunk_pages, 0);
	cr_assert_eq(cfg.write_ahead, 0);
}

Test(config, environment_sets_fields, .timeout = 5)
{
	struct ufvm_config cfg;

	clear_env();
	setenv("UFVM_HANDLERS", "3", 1);
	setenv("UFVM_HANDLER_SPIN_US", "50", 1);
	setenv("UFVM_HANDLER_BATCH", "0", 1);
	setenv("UFVM_HANDLER_PARK", "0", 1);
	setenv("UFVM_INSTALL_SPLIT", "0", 1);
	setenv("UFVM_SPECULATIVE", "0", 1);
	setenv("UFVM_FAULT_AROUND", "4", 1);
	setenv("UFVM_RETRY", "0", 1);
	setenv("UFVM_INVALIDATE", "addblock", 1);
	setenv("UFVM_STORE_LATENCY_US", "100", 1);
	setenv("UFVM_DIRECT_IO", "1", 1);
	setenv("UFVM_CACHE_PAGES", "64M", 1);
	setenv("UFVM_STATS", "/var/tmp/x.json", 1);
	setenv("UFVM_BACKEND", "uffd", 1);
	setenv("UFVM_FRAME_STRIPES", "2", 1);
	setenv("UFVM_CHUNK_PAGES", "16", 1);
	setenv("UFVM_WRITE_AHEAD", "64", 1);
	assert_ok(ufvm_config_init(&cfg));
	cr_assert_eq(cfg.write_ahead, 64);
	cr_assert_eq(cfg.frame_stripes, 2);
	cr_assert_eq(cfg.chunk_pages, 16);
	cr_assert_eq(cfg.handler_threads, 3);
	cr_assert_eq(cfg.handler_spin_us, 50);
	cr_assert_eq(cfg.handler_batch, 0);
	cr_assert_eq(cfg.handler_park, 0);
	cr_assert_eq(cfg.install_split, 0);
	cr_assert_eq(cfg.speculative, 0);
	cr_assert_eq(cfg.fault_around, 4);
	cr_assert_eq(cfg.retry, 0);
	cr_assert_eq(cfg.invalidate, UFVM_INVALIDATE_ADDBLOCK);
	cr_assert_eq(cfg.store_latency_us, 100);
	cr_assert_eq(cfg.direct_io, 1);
	cr_assert_eq(cfg.cache_pages, 64 * MiB / PAGE, "UFVM_CACHE_PAGES=64M gave %llu pages",
		     (unsigned long long)cfg.cache_pages);
	cr_assert_str_eq(cfg.stats_path, "/var/tmp/x.json");
	cr_assert_eq(cfg.backend, UFVM_BACKEND_UFFD);
	setenv("UFVM_INVALIDATE", "none", 1);
	setenv("UFVM_CACHE_PAGES", "1000", 1);
	assert_ok(ufvm_config_init(&cfg));
	cr_assert_eq(cfg.invalidate, UFVM_INVALIDATE_NONE);
	cr_assert_eq(cfg.cache_pages, 1000);
	clear_env();
}

/* UFVM_CACHE_PAGES: pages, or a size rounded down to pages; decimal always. */
Test(config, cache_pages_values, .timeout = 5)
{
	static const struct {
		const char *v;
		uint64_t pages;
	} cases[] = {
		{ "010M", 10 * MiB / PAGE },	{ "12287", 12287 },
		{ "11kib", 2 },			{ "0", 0 /* no budget */ },
		{ "2", 2 },
	};
	struct ufvm_config cfg;

	clear_env();
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		setenv("UFVM_CACHE_PAGES", cases[i].v, 1);
		assert_ok(ufvm_config_init(&cfg));
		cr_assert_eq(cfg.cache_pages, cases[i].pages,
			     "UFVM_CACHE_PAGES=%s gave %llu pages, want %llu", cases[i].v,
			     (unsigned long long)cfg.cache_pages,
			     (unsigned long long)cases[i].pages);
	}
	clear_env();
}

/* One strict size parser for the library, the demo and the benchmarks. */
Test(config, parse_size_strict, .timeout = 5)
{
	static const struct {
		const char *s;
		uint64_t unit, want;
	} good[] = {
		{ "0", 1, 0 },			{ "42", 1, 42 },
		{ "010", 1, 10 },		{ "010M", 1, 10 * MiB },
		{ "3", 4096, 3 * 4096 },	{ "1k", 4096, 1024 },
		{ "2KB", 1, 2048 },		{ "2kib", 1, 2048 },
		{ "5M", 1, 5 * MiB },		{ "5MiB", 1, 5 * MiB },
		{ "1G", 1, 1ull << 30 },	{ "1gb", 1, 1ull << 30 },
		{ "2T", 1, 2ull << 40 },	{ "2TiB", 1, 2ull << 40 },
		{ "18446744073709551615", 1, UINT64_MAX },
		{ "16777215T", 1, 16777215ull << 40 },
	};
	static const struct {
		const char *s;
		uint64_t unit;
		int err;
	} bad[] = {
		{ "", 1, EINVAL },		{ " 1", 1, EINVAL },
		{ "-1", 1, EINVAL },		{ " -1", 1, EINVAL },
		{ "+1", 1, EINVAL },		{ "0x10", 1, EINVAL },
		{ "1.5M", 1, EINVAL },		{ "1 M", 1, EINVAL },
		{ "1M ", 1, EINVAL },		{ "1P", 1, EINVAL },
		{ "1MB2", 1, EINVAL },		{ "1iB", 1, EINVAL },
		{ "1Mi", 1, EINVAL },		{ "M", 1, EINVAL },
		{ "1", 0, EINVAL },
		{ "18446744073709551616", 1, ERANGE },
		{ "99999999999999999999999", 1, ERANGE },
		{ "16777216T", 1, ERANGE },	{ "17179869184G", 1, ERANGE },
		{ "4503599627370496", 4096, ERANGE },
	};
	uint64_t v;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		v = 7;
		cr_assert_eq(ufvm_parse_size(good[i].s, good[i].unit, &v), 0,
			     "ufvm_parse_size(\"%s\", %llu) failed", good[i].s,
			     (unsigned long long)good[i].unit);
		cr_assert_eq(v, good[i].want, "ufvm_parse_size(\"%s\") = %llu, want %llu",
			     good[i].s, (unsigned long long)v, (unsigned long long)good[i].want);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		v = 7;
		cr_assert_eq(ufvm_parse_size(bad[i].s, bad[i].unit, &v), -bad[i].err,
			     "ufvm_parse_size(\"%s\", %llu) = %d, want %d", bad[i].s,
			     (unsigned long long)bad[i].unit,
			     ufvm_parse_size(bad[i].s, bad[i].unit, &v), -bad[i].err);
		cr_assert_eq(v, 7, "a failed ufvm_parse_size(\"%s\") changed *out", bad[i].s);
	}
	assert_err(ufvm_parse_size(NULL, 1, &v), EINVAL);
	assert_err(ufvm_parse_size("1", 1, NULL), EINVAL);
}

Test(config, malformed_environment, .timeout = 5)
{
	static const char *const bad[][2] = {
		{ "UFVM_FAULT_AROUND", "abc" },	{ "UFVM_FAULT_AROUND", "0" },
		{ "UFVM_FAULT_AROUND", "257" },	{ "UFVM_FAULT_AROUND", "16x" },
		{ "UFVM_FAULT_AROUND", "-1" },	{ "UFVM_SPECULATIVE", "2" },
		{ "UFVM_RETRY", "yes" },	{ "UFVM_INVALIDATE", "rwlock" },
		{ "UFVM_BACKEND", "kernel" },	{ "UFVM_HANDLERS", "100000" },
		{ "UFVM_CACHE_PAGES", "lots" },	{ "UFVM_STORE_LATENCY_US", "1e9" },
		{ "UFVM_DIRECT_IO", "2" },	{ "UFVM_DIRECT_IO", "on" },
		{ "UFVM_HANDLER_BATCH", "2" },	{ "UFVM_FAULT_AROUND", " 4" },
		{ "UFVM_HANDLER_PARK", "2" },	{ "UFVM_HANDLER_PARK", "on" },
		{ "UFVM_INSTALL_SPLIT", "2" },	{ "UFVM_INSTALL_SPLIT", "on" },
		{ "UFVM_FAULT_AROUND", "+4" },	{ "UFVM_HANDLERS", " -1" },
		{ "UFVM_CACHE_PAGES", "1" },	{ "UFVM_CACHE_PAGES", "1K" },
		{ "UFVM_CACHE_PAGES", "3K" },	{ "UFVM_CACHE_PAGES", "4095B" },
		{ "UFVM_CACHE_PAGES", " -1" },	{ "UFVM_CACHE_PAGES", "-1" },
		{ "UFVM_CACHE_PAGES", "+64M" },	{ "UFVM_CACHE_PAGES", "0x100" },
		{ "UFVM_CACHE_PAGES", "17179869184G" },
		{ "UFVM_CACHE_PAGES", "99999999999G" },
		{ "UFVM_CACHE_PAGES", "99999999999999999999" },
		{ "UFVM_CACHE_PAGES", "64MX" },	{ "UFVM_CACHE_PAGES", "64 M" },
		{ "UFVM_FRAME_STRIPES", "0" },	{ "UFVM_FRAME_STRIPES", "9" },
		{ "UFVM_CHUNK_PAGES", "4k" },	{ "UFVM_CHUNK_PAGES", "2097152" },
		{ "UFVM_CHUNK_PAGES", "3" },	{ "UFVM_WRITE_AHEAD", "257" },
		{ "UFVM_WRITE_AHEAD", "-1" },
	};
	struct ufvm_config cfg;
	struct ufvm *vm = NULL;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		clear_env();
		setenv(bad[i][0], bad[i][1], 1);
		assert_err(ufvm_config_init(&cfg), EINVAL);
		cr_assert_eq(ufvm_open(NULL, &vm), -EINVAL, "ufvm_open(NULL) with %s=%s",
			     bad[i][0], bad[i][1]);
	}
	clear_env();
}

/* Read, write, punch and sync 1 MiB through an instance opened with @cfg. */
static void workout(const struct ufvm_config *cfg, const char *what)
{
	char path[TMPSTORE_PATH_MAX];
	uint8_t *map, *want = malloc(SIZE), *buf = malloc(SIZE);
	struct ufvm_file *f;
	struct ufvm *vm;

	cr_assert(want && buf);
	ut_store("cfg", SIZE, SEED, path);
	vm = ut_open(cfg);
	assert_ok(ufvm_file_open(vm, path, UFVM_RDWR, &f));
	map = ut_map(vm, path, 0, SIZE, UFVM_PROT_READ | UFVM_PROT_WRITE);
	assert_pattern(SEED, map, 0, SIZE, "%s: read", what);
	pattern_fill(SEED, want, 0, SIZE);
	for (size_t off = 0; off < SIZE; off += 3 * PAGE + 8) {
		map[off] = (uint8_t)(off >> 8);
		want[off] = (uint8_t)(off >> 8);
	}
	assert_ok(ufvm_punch(f, 64 * PAGE, 16 * PAGE));
	memset(want + 64 * PAGE, 0, 16 * PAGE);
	assert_same(map, want, 0, SIZE, "%s: mapping after writes and punch", what);
	assert_ok(ufvm_sync(vm, map, SIZE));
	cr_assert(tmpstore_read(path, buf, SIZE, 0) == 0);
	assert_same(buf, want, 0, SIZE, "%s: store file after sync", what);
	ut_unmap(vm, map, SIZE);
	assert_ok(ufvm_file_close(f));
	ut_close(vm);
	free(want);
	free(buf);
}

#define SETTING(name, field, value)						\
	Test(config, name, .timeout = 20)					\
	{									\
		struct ufvm_config cfg;						\
										\
		clear_env();							\
		assert_ok(ufvm_config_init(&cfg));				\
		cfg.field = value;						\
		workout(&cfg, #field " = " #value);				\
	}

SETTING(one_handler, handler_threads, 1)
SETTING(three_unpinned_handlers, handler_threads, 3)
SETTING(spinning_handlers, handler_spin_us, 200)
SETTING(handlers_not_batch, handler_batch, 0)
SETTING(speculation_off, speculative, 0)
SETTING(retry_off, retry, 0)
SETTING(fault_around_1, fault_around, 1)
SETTING(fault_around_256, fault_around, 256)
SETTING(invalidate_addblock, invalidate, UFVM_INVALIDATE_ADDBLOCK)

/*
 * Without the invalidate lock a fill may race a punch and bring the old
 * bytes back (race/test_punch_vs_fill shows it): with readahead on, the
 * workout's own punch races the background readahead of its earlier reads.
 * A single thread with no readahead has nothing to race.
 */
Test(config, invalidate_none, .timeout = 20)
{
	struct ufvm_config cfg;

	clear_env();
	assert_ok(ufvm_config_init(&cfg));
	cfg.invalidate = UFVM_INVALIDATE_NONE;
	cfg.readahead = 0;
	workout(&cfg, "invalidate = UFVM_INVALIDATE_NONE, readahead = 0");
}
SETTING(store_latency, store_latency_us, 50)
SETTING(backend_uffd, backend, UFVM_BACKEND_UFFD)

/*
 * The scheduling policy of the handler threads (named ufvm-uffd/N) after
 * they served a fault, @threads of them (0: one per CPU, pinned): must be
 * SCHED_BATCH if @want_batch, else SCHED_OTHER.
 * Return: how many handlers were checked (0: no handler thread here).
 */
static int handlers_policy(unsigned int batch, unsigned int threads, bool want_batch)
{
	char path[TMPSTORE_PATH_MAX];
	struct ufvm_config cfg;
	struct ufvm *vm;
	struct dirent *de;
	DIR *d;
	uint8_t *map;
	int n = 0;

	unsetenv("UFVM_HANDLER_BATCH");	/* the suite's backend and delivery stay */
	assert_ok(ufvm_config_init(&cfg));
	cfg.handler_batch = batch;
	cfg.handler_threads = threads;
	ut_store("sched", PAGE, SEED, path);
	vm = ut_open(&cfg);
	map = ut_map(vm, path, 0, PAGE, UFVM_PROT_READ);
	cr_assert_eq(pattern_mismatch(SEED, map, 0, PAGE), -1);
	/*
	 * A handler sets its policy when it starts, which on a loaded
	 * machine may come a while after ufvm_open: look again until every
	 * one has, for up to 5 s, then judge.
	 */
	for (int tries = 0;; tries++) {
		char bad[64] = "";
		int pol_bad = 0;

		n = 0;
		cr_assert(d = opendir("/proc/self/task"));
		while ((de = readdir(d))) {
			char file[300], comm[32] = "";
			FILE *fp;

			snprintf(file, sizeof(file), "/proc/self/task/%s/comm", de->d_name);
			if (de->d_name[0] == '.' || !(fp = fopen(file, "r")))
				continue;
			if (fgets(comm, sizeof(comm), fp) && !strncmp(comm, "ufvm-uffd/", 10)) {
				int pol = sched_getscheduler((pid_t)atoi(de->d_name));

				if (pol != (want_batch ? SCHED_BATCH : SCHED_OTHER)) {
					snprintf(bad, sizeof(bad), "%.31s", comm);
					pol_bad = pol;
				}
				n++;
			}
			fclose(fp);
		}
		closedir(d);
		if (!bad[0])
			break;
		cr_assert(tries < 100, "handler %s: policy %d with handler_batch = %u, %u threads",
			  bad, pol_bad, batch, threads);
		usleep(50000);
	}
	cr_assert_eq(n == 0, strcmp(ufvm_backend_name(vm), "uffd") != 0,
		     "%d handler threads with the %s delivery", n, ufvm_backend_name(vm));
	ut_unmap(vm, map, PAGE);
	ut_close(vm);
	return n;
}

Test(config, handlers_run_sched_batch, .timeout = 20)
{
	unsigned int unpinned = (unsigned int)sysconf(_SC_NPROCESSORS_ONLN) + 1;

	if (!handlers_policy(1, 0, true))
		cr_skip_test("no handler threads with this delivery");
	cr_assert_gt(handlers_policy(0, 0, false), 0);
	cr_assert_eq(handlers_policy(1, unpinned, false), (int)unpinned,
		     "unpinned handlers stay SCHED_OTHER");
}

/* ufvm_config_check() refuses what ufvm_open() refuses, naming the field. */
Test(config, check_names_what_open_refuses, .timeout = 5)
{
	struct ufvm_config cfg;
	const char *why = "unset";

	assert_ok(ufvm_config_init(&cfg));
	cr_assert_eq(ufvm_config_check(&cfg, &why), 0);
	cr_assert_null(why);
	cfg.map_ahead = 100000;
	cr_assert_eq(ufvm_config_check(&cfg, &why), -EINVAL);
	cr_assert(why && strstr(why, "map_ahead"), "why: %s", why ? why : "(null)");
	cfg.map_ahead = 0;
	cfg.write_ahead = 257;
	cr_assert_eq(ufvm_config_check(&cfg, &why), -EINVAL);
	cr_assert(why && strstr(why, "write_ahead"), "why: %s", why ? why : "(null)");
	cr_assert_eq(ufvm_open(&cfg, &(struct ufvm *){ NULL }), -EINVAL);
	cr_assert_eq(ufvm_config_check(NULL, NULL), 0, "NULL is ufvm_open()'s defaults");
}
