/* SPDX-License-Identifier: MIT */
/*
 * bench.h - the benchmark harness behind `ufvm bench` and `ufvm stats`.
 *
 * Every benchmark is a struct bench_def: a name, its options (a table that
 * the harness parses and prints in --help) and a run function.  A run
 * prints a readable table to bx->out (stdout, or stderr with --json) and
 * writes its result object through bx->jw; the harness prints the JSON on
 * stdout once the run succeeded, so stdout holds one JSON object or nothing.
 *
 * The benchmarks use ufvm's public API only (include/ufvm.h), plus raw
 * userfaultfd for the floor (bench/floor.c).
 *
 * Conventions: functions return 0 or -errno; a benchmark that cannot run
 * on this host (no userfaultfd, one CPU) says why on stderr and fails.
 */
#ifndef UFVM_BENCH_H
#define UFVM_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sched.h>
#include <linux/userfaultfd.h>

#include "ufvm.h"

#define BENCH_PAGE	4096ul

/*
 * Upper bounds of the benchmarks' options, checked before anything runs:
 * far above any useful run, and low enough that no product the harness
 * forms with them (pages * BENCH_PAGE, counts * sizeof an element, ms *
 * 1000 as a useconds_t) can wrap.
 */
#define BENCH_PAGES_MAX		(1ull << 28)	/* 1 TiB of pages */
#define BENCH_COUNT_MAX		(1ull << 32)	/* accesses, samples */
#define BENCH_MS_MAX		3600000ull	/* durations: one hour */

/* ---- JSON writer (bench/json.c) ---- */

#define JW_DEPTH 16

struct jw {
	FILE *f;
	unsigned int depth;
	bool first[JW_DEPTH];
};

/* @key is NULL inside an array.  The writer adds commas itself. */
void jw_init(struct jw *w, FILE *f);
void jw_obj(struct jw *w, const char *key);
void jw_arr(struct jw *w, const char *key);
void jw_end(struct jw *w, char close);		/* '}' or ']' */
void jw_u64(struct jw *w, const char *key, uint64_t v);
void jw_num(struct jw *w, const char *key, double v);	/* %.6g; NaN -> null */
void jw_str(struct jw *w, const char *key, const char *s);
void jw_bool(struct jw *w, const char *key, bool v);
void jw_null(struct jw *w, const char *key);
void jw_raw(struct jw *w, const char *key, const char *text);	/* a JSON value */

/* ---- JSON reader (bench/json.c) ---- */

enum jv_type { JV_NULL, JV_BOOL, JV_NUM, JV_STR, JV_ARR, JV_OBJ };

struct jv {
	enum jv_type type;
	bool b;
	double num;
	uint64_t u;		/* JV_NUM: the value if it is a non-negative integer */
	bool is_u;
	int64_t i;		/* JV_NUM: the value if it is a negative integer */
	bool is_i;
	char *str;
	size_t n;		/* JV_ARR, JV_OBJ: elements */
	struct jv *v;		/* elements */
	char **k;		/* JV_OBJ: keys */
};

/*
 * jv_parse - parse the @len bytes of @text (NUL-terminated at @len) into
 * *@out; a NUL byte before @len is an error, not the end of the text.
 * Return: 0, or -EINVAL with a message naming the byte offset in @err.
 */
int jv_parse(const char *text, size_t len, struct jv *out, char *err, size_t errlen);
void jv_free(struct jv *v);
/* The member @key of an object, or NULL. */
const struct jv *jv_get(const struct jv *o, const char *key);
/* Dotted path: "modes.uffd.p50_ns", array elements by index: "windows.0". */
const struct jv *jv_path(const struct jv *root, const char *path);
double jv_num(const struct jv *v, double dflt);
/* Print @v as compact JSON: integers exactly, other numbers in the fewest
 * digits that read back as the same double. */
void jv_print(FILE *f, const struct jv *v);
/* Read a whole file (or "-" for stdin) of less than BENCH_READ_MAX bytes.
 * Return: 0, *out (malloc'd and NUL-terminated) and its length *len;
 * -EFBIG for a longer one, or -errno. */
#define BENCH_READ_MAX	(16u << 20)
int bench_read_file(const char *path, char **out, size_t *len);

/* ---- the harness (bench/common.c) ---- */

enum bench_opt_type {
	BOPT_UINT,	/* uint64_t, by ufvm_parse_size(): K/M/G/T suffixes */
	BOPT_PAGES,	/* uint64_t pages: a number of pages, or a size (K/M/G/T) */
	BOPT_STR,	/* const char * */
	BOPT_FN,	/* fn(arg) for each occurrence; it reports its errors */
	BOPT_FLAG,	/* bool, no argument */
};

struct bench_opt {
	const char *name;		/* without the leading "--" */
	enum bench_opt_type type;
	void *ptr;
	int (*fn)(const char *arg);
	const char *help;
};

struct bench_ctx {
	FILE *out;		/* the readable table */
	bool json;
	unsigned int reps;	/* repetitions; medians are over these */
	struct jw *jw;		/* the result object is open: add members */
	const char *dir;	/* temporary directory for store files */
};

struct bench_def {
	const char *name;
	const char *summary;
	const struct bench_opt *opts;	/* NULL-terminated by name */
	/*
	 * The option values' own checks (ranges, lists, one option against
	 * another), or NULL.  The harness calls it after parsing and before
	 * any run (for `bench all`, every benchmark's, with its defaults), with
	 * bx->reps and bx->json set; nothing else of @bx is yet.  It reports
	 * what is wrong, naming the option, and may keep what it parsed for
	 * run.  Return: 0, or -EINVAL (a usage error: exit status 2).
	 */
	int (*check)(const struct bench_ctx *bx);
	int (*run)(struct bench_ctx *bx);	/* after check succeeded */
	bool in_all;			/* part of `ufvm bench all` */
};

extern const struct bench_def bench_floor, bench_faultaround, bench_retry,
	bench_spec, bench_invalidate, bench_sweep, bench_pf;

/*
 * ufvm_bench_main - `ufvm bench NAME [options] [--json]`.
 * Return: a process exit status (0 ok, 1 failed, 2 usage).
 */
int ufvm_bench_main(int argc, char **argv);
/* ufvm_stats_main - `ufvm stats [options] FILE.json`.  Same statuses. */
int ufvm_stats_main(int argc, char **argv);

/* ---- helpers (bench/common.c) ---- */

uint64_t bench_now_ns(void);

/* Pin the calling thread to @cpu (-1: every CPU), saving the old mask. */
int bench_pin_self(int cpu, cpu_set_t *old);
void bench_unpin_self(const cpu_set_t *old);
int bench_ncpus(void);

/* A store file of @pages pages in bx->dir, filled with bench_word() values,
 * or sparse (all zeros) with @sparse.  Removed by bench_file_remove(). */
int bench_file_create(struct bench_ctx *bx, const char *tag, uint64_t pages,
		      bool sparse, char *path, size_t pathlen);
void bench_file_remove(const char *path);
static inline uint64_t bench_word(uint64_t off)
{
	uint64_t x = off + 0x9e3779b97f4a7c15ull;

	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/* A small, fast PRNG (splitmix64), one state per thread. */
static inline uint64_t bench_rand(uint64_t *s)
{
	*s += 0x9e3779b97f4a7c15ull;
	return bench_word(*s - 0x9e3779b97f4a7c15ull);
}
/* A random permutation of [0, n) scaled by @stride: out[i] = perm(i)*stride. */
uint64_t *bench_perm(uint64_t n, uint64_t stride, uint64_t seed);

/* Read one byte of each page: the fault, if any, happens here. */
static inline uint8_t bench_touch(const void *p)
{
	return *(const volatile uint8_t *)p;
}

/* ---- raw userfaultfd (bench/minor.c) ---- */

/* Older kernel headers than the 6.1 one lack these. */
#ifndef UFFD_FEATURE_MINOR_SHMEM
#define UFFD_FEATURE_MINOR_SHMEM	(1 << 10)
#endif
#ifndef UFFD_FEATURE_SIGBUS
#define UFFD_FEATURE_SIGBUS		(1 << 7)
#endif
#ifndef UFFDIO_REGISTER_MODE_MINOR
#define UFFDIO_REGISTER_MODE_MINOR	((__u64)1 << 2)
#endif

/* A memfd of @pages pages, every one written (so all exist). */
int bench_memfd(uint64_t pages, int *out);

/* A memfd mapped MAP_SHARED, read-only, with one page more (a stop page). */
struct bench_minor {
	int memfd;
	int uffd;		/* -1 without userfaultfd */
	char *map;
	uint64_t pages;		/* scanned; page @pages is the stop page */
};
/*
 * Map @memfd's first @pages + 1 pages; with @features != 0, register the
 * mapping MINOR on a new userfaultfd that has @features.
 * Return: 0, or -errno (-EOPNOTSUPP: a feature is missing).
 */
int bench_minor_open(struct bench_minor *a, int memfd, uint64_t pages, uint64_t features);
void bench_minor_close(struct bench_minor *a);
/*
 * The mechanism's floor: @reps passes touching every page of @a (in
 * @order, or sequentially), each aligned @window-page run mapped by one
 * UFFDIO_CONTINUE issued before its first touch, so no fault happens;
 * *@nspp is the median pass's ns per page.
 */
int bench_minor_scan(struct bench_minor *a, const uint64_t *order, uint64_t window,
		     unsigned int reps, double *nspp);

/* Sorts @v in place; returns the value at quantile @q (nearest rank). */
uint64_t bench_pctl(uint64_t *v, size_t n, double q);
double bench_median(double *v, size_t n);

/* ufvm_config_init() then the harness's defaults; reports failures. */
int bench_config(struct ufvm_config *cfg);
/*
 * --backend NAME: "uffd", "sigsegv" or "auto" sets cfg->backend (the
 * delivery of the uffd backend stays UFVM_DELIVERY's); NULL keeps
 * UFVM_BACKEND's.  "auto" is resolved by opening an instance, so that the
 * result names the backend that ran.  Return: 0, or -EINVAL (reported,
 * naming @bench).
 */
int bench_set_backend(struct ufvm_config *cfg, const char *name, const char *bench);
/*
 * bench_check_backend - is @name (NULL: UFVM_BACKEND's) one that
 * bench_set_backend() takes?  For the benchmarks' check functions.
 * Return: 0, or -EINVAL (reported, naming @bench).
 */
int bench_check_backend(const char *name, const char *bench);
/*
 * bench_check_range - is @v, the value of --@opt of @bench, in [@lo, @hi]?
 * For the benchmarks' check functions.
 * Return: 0, or -EINVAL after a message naming the option and the range.
 */
int bench_check_range(const char *bench, const char *opt, uint64_t v, uint64_t lo,
		      uint64_t hi);
/*
 * bench_check_config - would ufvm_open() take @cfg, which --@opt @val of
 * @bench has set?  The same check, so that a value ufvm would refuse is a
 * usage error before the run rather than a failed open after its setup.
 * Return: 0, or -EINVAL after a message naming the option and the limit.
 */
int bench_check_config(const char *bench, const char *opt, const char *val,
		       const struct ufvm_config *cfg);
/* The same for a number: --@opt @v. */
int bench_check_config_u64(const char *bench, const char *opt, uint64_t v,
			   const struct ufvm_config *cfg);
/*
 * @v for an unsigned int field of struct ufvm_config: clamped, not cast,
 * so that 2^32 + 1 reaches the check as too large, not as 1.
 */
static inline unsigned int bench_clamp_uint(uint64_t v)
{
	return v > UINT32_MAX ? UINT32_MAX : (unsigned int)v;
}
/* The bytes of @pages pages, or -EOVERFLOW. */
int bench_pages_bytes(uint64_t pages, size_t *bytes);
/* malloc() of @n elements of @size, or NULL (also when n * size wraps). */
void *bench_alloc_array(uint64_t n, size_t size);
/* "uffd", "uffd-inthread", "sigsegv" or "auto": what @cfg asks for. */
const char *bench_backend_name(const struct ufvm_config *cfg);
/* Does @cfg serve faults in the faulting thread (sigsegv, uffd in-thread)? */
bool bench_backend_inthread(const struct ufvm_config *cfg);
/* ufvm_open() with a message naming what failed. */
int bench_open(const struct ufvm_config *cfg, struct ufvm **vm);
/* Fill the cache with every page of [first, first+n) (stride pages apart). */
int bench_cache_fill(struct ufvm_file *f, uint64_t first, uint64_t n, uint64_t stride);
/* The counter @c now (0 if the snapshot fails). */
uint64_t bench_counter(struct ufvm *vm, unsigned int c);
/* Embed ufvm_stats_write_json(@vm) as member @key of the result. */
void bench_embed_stats(struct bench_ctx *bx, const char *key, struct ufvm *vm);
/* The same snapshot as text (malloc'd; NULL on failure), to embed later
 * with bench_embed_text() (NULL text: a JSON null). */
char *bench_stats_text(struct ufvm *vm);
void bench_embed_text(struct bench_ctx *bx, const char *key, const char *text);

/*
 * One mapping to scan: a ufvm instance with one file mapped (vm != NULL),
 * or the kernel's own MAP_SHARED mapping of a file or memfd (vm == NULL).
 */
struct bench_vm {
	struct ufvm *vm;
	struct ufvm_file *f;
	char *base;
	uint64_t pages;
};

/* Open @cfg's instance, open @path and map its @pages pages read-only. */
int bench_vm_open(struct bench_vm *b, const struct ufvm_config *cfg, const char *path,
		  uint64_t pages);
/* bench_vm_open(), then every page read into the cache (ufvm_pread). */
int bench_vm_open_cached(struct bench_vm *b, const struct ufvm_config *cfg,
			 const char *path, uint64_t pages);
/* The kernel's mmap(MAP_SHARED) of @fd's first @pages pages. */
int bench_vm_kernel(struct bench_vm *b, int fd, uint64_t pages);
void bench_vm_close(struct bench_vm *b);
/* Drop every mapping of @b (ufvm_zap, or MADV_DONTNEED); keep the caches. */
int bench_vm_drop(struct bench_vm *b);
/* Faults this thread took so far: ufvm's fault counter (and its kernel
 * faults, bench_kernel_faults_too()), or its kernel faults (no ufvm). */
uint64_t bench_vm_faults(struct bench_vm *b);
/*
 * Do @vm's faults leave some to the kernel?  The sigsegv backend maps a run
 * with mmap(), whose pages the kernel then faults in itself (its own
 * fault-around, 16 at a time), unseen by ufvm: a thread's faults are ufvm's
 * count plus its kernel faults.  With userfaultfd each fault is one of
 * ufvm's, which the kernel counts too: ufvm's count alone.
 */
bool bench_kernel_faults_too(struct ufvm *vm);

struct bench_scan {
	double ns_per_page;	/* whole scan time / pages touched */
	double faults_per_page;
	double p50_ns, p90_ns, p99_ns;	/* per touch, with @timed */
};

/*
 * bench_scan_reps - @reps times: drop the mappings, then touch page
 * @order[i] (or i, with @order NULL) of @b for i < @n.  With @timed each
 * touch is timed on its own.  Figures are medians over the repetitions.
 * Return: 0 or -errno.
 */
int bench_scan_reps(struct bench_vm *b, const uint64_t *order, uint64_t n,
		    unsigned int reps, bool timed, struct bench_scan *out);

/* Human-readable numbers for the tables. */
const char *bench_fmt_ns(char *buf, size_t len, double ns);	/* "3.4 us" */

#endif /* UFVM_BENCH_H */
