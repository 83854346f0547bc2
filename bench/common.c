// SPDX-License-Identifier: MIT
/*
 * bench/common.c - the harness of `ufvm bench`: option tables, the result
 * JSON, store files, timing, CPU pinning, percentiles.
 *
 * Output: the readable table goes to stdout, or to stderr with --json so
 * that stdout carries exactly one JSON object (printed after the run
 * succeeded; nothing on failure).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "bench/bench.h"

#define BENCH_REPS_DEFAULT	3
#define BENCH_MAX_FILES		16

static const struct bench_def *const bench_defs[] = {
	&bench_floor, &bench_faultaround, &bench_retry, &bench_spec,
	&bench_invalidate, &bench_sweep, &bench_pf,
};

#define BENCH_NDEFS (sizeof(bench_defs) / sizeof(bench_defs[0]))

/* ---- time, CPUs ---- */

uint64_t bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int bench_ncpus(void)
{
	cpu_set_t set;

	if (sched_getaffinity(0, sizeof(set), &set))
		return 1;
	return CPU_COUNT(&set);
}

int bench_pin_self(int cpu, cpu_set_t *old)
{
	cpu_set_t set;
	int i, n = (int)sysconf(_SC_NPROCESSORS_ONLN);

	if (old)
		pthread_getaffinity_np(pthread_self(), sizeof(*old), old);
	CPU_ZERO(&set);
	if (cpu >= 0)
		CPU_SET(cpu, &set);
	else
		for (i = 0; i < n; i++)
			CPU_SET(i, &set);
	return -pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

void bench_unpin_self(const cpu_set_t *old)
{
	pthread_setaffinity_np(pthread_self(), sizeof(*old), old);
}

/* ---- numbers ---- */

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int cmp_dbl(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/*
 * Nearest rank: the smallest sample with at least a share @q of the
 * samples at or below it, the ceil(q * n)-th (1-based).  q * n is a
 * product of doubles: 0.07 * 100 is 7.000000000000001, so a rank that
 * is whole but for the rounding is not moved up one.
 */
uint64_t bench_pctl(uint64_t *v, size_t n, double q)
{
	double x = q * (double)n;
	size_t rank;

	if (!n)
		return 0;
	qsort(v, n, sizeof(*v), cmp_u64);
	if (!(x > 0))
		return v[0];
	if (x >= (double)n)
		return v[n - 1];
	rank = (size_t)x;
	if ((double)rank < x - x * 1e-12)
		rank++;
	return v[rank ? rank - 1 : 0];
}

double bench_median(double *v, size_t n)
{
	if (!n)
		return 0;
	qsort(v, n, sizeof(*v), cmp_dbl);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int bench_pages_bytes(uint64_t pages, size_t *bytes)
{
	return __builtin_mul_overflow(pages, BENCH_PAGE, bytes) ? -EOVERFLOW : 0;
}

void *bench_alloc_array(uint64_t n, size_t size)
{
	size_t bytes;

	if (__builtin_mul_overflow(n ? n : 1, size, &bytes))
		return NULL;
	return malloc(bytes);
}

uint64_t *bench_perm(uint64_t n, uint64_t stride, uint64_t seed)
{
	uint64_t *p = bench_alloc_array(n, sizeof(*p)), i, s = seed;

	if (!p)
		return NULL;
	for (i = 0; i < n; i++)
		p[i] = i;
	for (i = n; i > 1; i--) {
		uint64_t j = bench_rand(&s) % i, t = p[i - 1];

		p[i - 1] = p[j];
		p[j] = t;
	}
	for (i = 0; i < n; i++)
		p[i] *= stride;
	return p;
}

const char *bench_fmt_ns(char *buf, size_t len, double ns)
{
	if (ns < 10000)
		snprintf(buf, len, "%.0f ns", ns);
	else if (ns < 1e7)
		snprintf(buf, len, "%.1f us", ns / 1e3);
	else
		snprintf(buf, len, "%.1f ms", ns / 1e6);
	return buf;
}

/* ---- store files ---- */

static char bench_files[BENCH_MAX_FILES][PATH_MAX];
static char bench_dir[PATH_MAX];

static void bench_cleanup(void)
{
	unsigned int i;

	for (i = 0; i < BENCH_MAX_FILES; i++)
		if (bench_files[i][0])
			unlink(bench_files[i]);
	if (bench_dir[0])
		rmdir(bench_dir);
}

static void bench_signal(int sig)
{
	bench_cleanup();
	signal(sig, SIG_DFL);
	raise(sig);
}

static int bench_mkdir(const char *base)
{
	if (!base)
		base = getenv("TMPDIR");
	if (!base || !*base)
		base = "/var/tmp";
	if (snprintf(bench_dir, sizeof(bench_dir), "%s/ufvm-bench.XXXXXX", base) >=
	    (int)sizeof(bench_dir))
		return -ENAMETOOLONG;
	if (!mkdtemp(bench_dir)) {
		int err = -errno;

		fprintf(stderr, "ufvm bench: cannot make a directory in %s: %s\n", base,
			strerror(-err));
		bench_dir[0] = 0;
		return err;
	}
	atexit(bench_cleanup);
	signal(SIGINT, bench_signal);
	signal(SIGTERM, bench_signal);
	return 0;
}

int bench_file_create(struct bench_ctx *bx, const char *tag, uint64_t pages,
		      bool sparse, char *path, size_t pathlen)
{
	static uint64_t buf[(1u << 20) / sizeof(uint64_t)];
	uint64_t off = 0;
	unsigned int slot;
	size_t size;
	int fd, err;

	err = bench_pages_bytes(pages, &size);
	if (err || size > (uint64_t)INT64_MAX)
		return -EFBIG;
	for (slot = 0; slot < BENCH_MAX_FILES && bench_files[slot][0]; slot++)
		;
	if (slot == BENCH_MAX_FILES)
		return -EMFILE;
	if (snprintf(path, pathlen, "%s/%s", bx->dir, tag) >= (int)pathlen)
		return -ENAMETOOLONG;
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	snprintf(bench_files[slot], PATH_MAX, "%s", path);
	if (ftruncate(fd, (off_t)size)) {
		err = -errno;
		goto out;
	}
	while (!sparse && off < size) {
		size_t n = size - off < sizeof(buf) ? (size_t)(size - off) : sizeof(buf), i;
		ssize_t w;

		for (i = 0; i < n / sizeof(uint64_t); i++)
			buf[i] = bench_word(off + i * sizeof(uint64_t));
		w = pwrite(fd, buf, n, (off_t)off);
		if (w <= 0) {
			err = w < 0 ? -errno : -EIO;
			goto out;
		}
		off += (uint64_t)w;
	}
out:
	close(fd);
	if (err)
		bench_file_remove(path);
	return err;
}

void bench_file_remove(const char *path)
{
	unsigned int i;

	unlink(path);
	for (i = 0; i < BENCH_MAX_FILES; i++)
		if (!strcmp(bench_files[i], path))
			bench_files[i][0] = 0;
}

/* ---- ufvm ---- */

int bench_config(struct ufvm_config *cfg)
{
	int err = ufvm_config_init(cfg);

	if (err)
		fprintf(stderr, "ufvm bench: ufvm_config_init: %s\n", ufvm_strerror(err));
	return err;
}

int bench_check_backend(const char *name, const char *bench)
{
	if (!name || !strcmp(name, "uffd") || !strcmp(name, "sigsegv") ||
	    !strcmp(name, "auto"))
		return 0;
	fprintf(stderr, "ufvm bench %s: --backend %s: expected uffd, sigsegv or auto\n",
		bench, name);
	return -EINVAL;
}

int bench_set_backend(struct ufvm_config *cfg, const char *name, const char *bench)
{
	struct ufvm *probe;
	const char *used;

	if (bench_check_backend(name, bench))
		return -EINVAL;
	if (!name)
		name = cfg->backend == UFVM_BACKEND_UFFD ? "uffd" :
		       cfg->backend == UFVM_BACKEND_SIGSEGV ? "sigsegv" : "auto";
	if (!strcmp(name, "uffd"))
		cfg->backend = UFVM_BACKEND_UFFD;
	else if (!strcmp(name, "sigsegv"))
		cfg->backend = UFVM_BACKEND_SIGSEGV;
	else
		cfg->backend = UFVM_BACKEND_AUTO;
	if (cfg->backend != UFVM_BACKEND_AUTO || ufvm_open(cfg, &probe))
		return 0;	/* a failing open is reported by the benchmark's own */
	used = ufvm_backend_name(probe);
	if (used && !strcmp(used, "sigsegv"))
		cfg->backend = UFVM_BACKEND_SIGSEGV;
	else if (used)
		cfg->backend = UFVM_BACKEND_UFFD;
	ufvm_close(probe);
	return 0;
}

const char *bench_backend_name(const struct ufvm_config *cfg)
{
	switch (cfg->backend) {
	case UFVM_BACKEND_UFFD:
		return cfg->delivery == UFVM_DELIVERY_INTHREAD ? "uffd-inthread" : "uffd";
	case UFVM_BACKEND_SIGSEGV:
		return "sigsegv";
	default:
		return "auto";
	}
}

bool bench_backend_inthread(const struct ufvm_config *cfg)
{
	return cfg->backend == UFVM_BACKEND_SIGSEGV || cfg->delivery == UFVM_DELIVERY_INTHREAD;
}

int bench_open(const struct ufvm_config *cfg, struct ufvm **vm)
{
	int err = ufvm_open(cfg, vm);

	if (err)
		fprintf(stderr, "ufvm bench: ufvm_open: %s\n", ufvm_strerror(err));
	return err;
}

int bench_cache_fill(struct ufvm_file *f, uint64_t first, uint64_t n, uint64_t stride)
{
	char buf[BENCH_PAGE];
	uint64_t i;
	ssize_t r;

	for (i = 0; i < n; i++) {
		r = ufvm_pread(f, buf, sizeof(buf), (off_t)((first + i * stride) * BENCH_PAGE));
		if (r < 0)
			return (int)r;
	}
	return 0;
}

uint64_t bench_counter(struct ufvm *vm, unsigned int c)
{
	struct ufvm_stats st;

	if (ufvm_stats(vm, &st))
		return 0;
	return st.counters[c];
}

char *bench_stats_text(struct ufvm *vm)
{
	char *text = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&text, &len);
	int err;

	if (!m)
		return NULL;
	err = ufvm_stats_write_json(vm, m);
	fclose(m);
	if (err) {
		free(text);
		return NULL;
	}
	return text;
}

void bench_embed_text(struct bench_ctx *bx, const char *key, const char *text)
{
	if (!bx->json)
		return;
	if (text)
		jw_raw(bx->jw, key, text);
	else
		jw_null(bx->jw, key);
}

void bench_embed_stats(struct bench_ctx *bx, const char *key, struct ufvm *vm)
{
	char *text;

	if (!bx->json)
		return;
	text = bench_stats_text(vm);
	bench_embed_text(bx, key, text);
	free(text);
}

/* ---- mappings and scans ---- */

int bench_vm_open(struct bench_vm *b, const struct ufvm_config *cfg, const char *path,
		  uint64_t pages)
{
	size_t len;
	void *addr;
	int err;

	memset(b, 0, sizeof(*b));
	if (bench_pages_bytes(pages, &len))
		return -EFBIG;
	err = bench_open(cfg, &b->vm);
	if (err)
		return err;
	err = ufvm_file_open(b->vm, path, UFVM_RDONLY, &b->f);
	if (!err)
		err = ufvm_map_file(b->f, 0, len, UFVM_PROT_READ, 0, &addr);
	if (err) {
		fprintf(stderr, "ufvm bench: mapping %s: %s\n", path, ufvm_strerror(err));
		ufvm_close(b->vm);
		b->vm = NULL;
		return err;
	}
	b->base = addr;
	b->pages = pages;
	return 0;
}

int bench_vm_open_cached(struct bench_vm *b, const struct ufvm_config *cfg,
			 const char *path, uint64_t pages)
{
	int err = bench_vm_open(b, cfg, path, pages);

	if (!err)
		err = bench_cache_fill(b->f, 0, pages, 1);
	if (err)
		bench_vm_close(b);
	return err;
}

int bench_vm_kernel(struct bench_vm *b, int fd, uint64_t pages)
{
	size_t len;
	void *p;

	memset(b, 0, sizeof(*b));
	if (bench_pages_bytes(pages, &len))
		return -EFBIG;
	p = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		return -errno;
	b->base = p;
	b->pages = pages;
	return 0;
}

void bench_vm_close(struct bench_vm *b)
{
	if (b->vm) {
		ufvm_close(b->vm);	/* unmaps and closes the file */
	} else if (b->base) {
		munmap(b->base, b->pages * BENCH_PAGE);
	}
	memset(b, 0, sizeof(*b));
}

int bench_vm_drop(struct bench_vm *b)
{
	if (b->vm)
		return ufvm_zap(b->vm, b->base, b->pages * BENCH_PAGE);
	return madvise(b->base, b->pages * BENCH_PAGE, MADV_DONTNEED) ? -errno : 0;
}

bool bench_kernel_faults_too(struct ufvm *vm)
{
	return !strcmp(ufvm_backend_name(vm), "sigsegv");
}

uint64_t bench_vm_faults(struct bench_vm *b)
{
	struct rusage ru;
	uint64_t k = 0;

	if (!getrusage(RUSAGE_THREAD, &ru))
		k = (uint64_t)ru.ru_minflt + (uint64_t)ru.ru_majflt;
	if (!b->vm)
		return k;
	return bench_counter(b->vm, UFVM_CTR_FAULTS) + (bench_kernel_faults_too(b->vm) ? k : 0);
}

int bench_scan_reps(struct bench_vm *b, const uint64_t *order, uint64_t n,
		    unsigned int reps, bool timed, struct bench_scan *out)
{
	double *nspp = calloc(reps, sizeof(double)), *fpp = calloc(reps, sizeof(double));
	double *p50 = calloc(reps, sizeof(double)), *p90 = calloc(reps, sizeof(double));
	double *p99 = calloc(reps, sizeof(double));
	uint64_t *lat = timed ? bench_alloc_array(n, sizeof(uint64_t)) : NULL;
	unsigned int r;
	int err = 0;

	if (!nspp || !fpp || !p50 || !p90 || !p99 || (timed && !lat)) {
		err = -ENOMEM;
		goto out;
	}
	for (r = 0; r < reps && !err; r++) {
		uint64_t f0, t0, i, sum = 0;

		err = bench_vm_drop(b);
		if (err)
			break;
		f0 = bench_vm_faults(b);
		t0 = bench_now_ns();
		for (i = 0; i < n; i++) {
			const char *p = b->base + (order ? order[i] : i) * BENCH_PAGE;

			if (timed) {
				uint64_t a = bench_now_ns();

				bench_touch(p);
				lat[i] = bench_now_ns() - a;
				sum += lat[i];
			} else {
				bench_touch(p);
			}
		}
		t0 = bench_now_ns() - t0;
		nspp[r] = (double)(timed ? sum : t0) / (double)n;
		fpp[r] = (double)(bench_vm_faults(b) - f0) / (double)n;
		if (timed) {
			p50[r] = (double)bench_pctl(lat, n, 0.50);
			p90[r] = (double)bench_pctl(lat, n, 0.90);
			p99[r] = (double)bench_pctl(lat, n, 0.99);
		}
	}
	if (!err) {
		out->ns_per_page = bench_median(nspp, reps);
		out->faults_per_page = bench_median(fpp, reps);
		out->p50_ns = bench_median(p50, reps);
		out->p90_ns = bench_median(p90, reps);
		out->p99_ns = bench_median(p99, reps);
	}
out:
	free(nspp);
	free(fpp);
	free(p50);
	free(p90);
	free(p99);
	free(lat);
	return err;
}

/* ---- options ---- */

int bench_check_range(const char *bench, const char *opt, uint64_t v, uint64_t lo,
		      uint64_t hi)
{
	if (v >= lo && v <= hi)
		return 0;
	fprintf(stderr, "ufvm bench %s: --%s %llu: expected %llu..%llu\n", bench, opt,
		(unsigned long long)v, (unsigned long long)lo, (unsigned long long)hi);
	return -EINVAL;
}

int bench_check_config(const char *bench, const char *opt, const char *val,
		       const struct ufvm_config *cfg)
{
	const char *why;

	if (!ufvm_config_check(cfg, &why))
		return 0;
	fprintf(stderr, "ufvm bench %s: --%s %s: ufvm would refuse %s\n", bench, opt, val, why);
	return -EINVAL;
}

int bench_check_config_u64(const char *bench, const char *opt, uint64_t v,
			   const struct ufvm_config *cfg)
{
	char val[24];

	snprintf(val, sizeof(val), "%llu", (unsigned long long)v);
	return bench_check_config(bench, opt, val, cfg);
}

static const struct bench_def *bench_find(const char *name)
{
	size_t i;

	for (i = 0; i < BENCH_NDEFS; i++)
		if (!strcmp(bench_defs[i]->name, name))
			return bench_defs[i];
	return NULL;
}

static void bench_usage(FILE *f)
{
	size_t i;

	fprintf(f, "usage: ufvm bench NAME [OPTIONS] [--json]\n"
		"       ufvm bench all [--json] [--reps N]\n"
		"       ufvm bench NAME --help\n\nbenchmarks:\n");
	for (i = 0; i < BENCH_NDEFS; i++)
		fprintf(f, "  %-12s %s\n", bench_defs[i]->name, bench_defs[i]->summary);
	fprintf(f, "\ncommon options:\n"
		"  --json       print one JSON object on stdout (the table goes to stderr)\n"
		"  --reps N     repetitions; reported figures are medians (default %d)\n"
		"  --dir DIR    where the store files go (default $TMPDIR, else /var/tmp)\n"
		"\nufvm's own knobs (UFVM_* variables, docs/configuration.md) apply to every\n"
		"run except where a benchmark sets them itself.\n"
		"exit status: 0 success, 1 a benchmark failed, 2 a usage error (an\n"
		"unknown option, a malformed value, a value out of its range, a bad\n"
		"UFVM_* variable).\n", BENCH_REPS_DEFAULT);
}

static void bench_help(const struct bench_def *d)
{
	const struct bench_opt *o;

	printf("usage: ufvm bench %s [OPTIONS] [--json] [--reps N] [--dir DIR]\n  %s\n",
	       d->name, d->summary);
	if (d->opts && d->opts[0].name) {
		printf("\noptions:\n");
		for (o = d->opts; o->name; o++) {
			char arg[64];

			snprintf(arg, sizeof(arg), "--%s%s", o->name,
				 o->type == BOPT_FLAG ? "" : " V");
			printf("  %-22s %s", arg, o->help);
			if (o->type == BOPT_UINT || o->type == BOPT_PAGES)
				printf(" (default %llu)",
				       (unsigned long long)*(uint64_t *)o->ptr);
			else if (o->type == BOPT_STR && *(const char **)o->ptr)
				printf(" (default %s)", *(const char **)o->ptr);
			printf("\n");
		}
	}
}

static int bench_set(const struct bench_opt *o, const char *arg)
{
	switch (o->type) {
	case BOPT_UINT:
		return ufvm_parse_size(arg, 1, (uint64_t *)o->ptr);
	case BOPT_PAGES: {
		uint64_t v;

		if (ufvm_parse_size(arg, BENCH_PAGE, &v))
			return -EINVAL;
		*(uint64_t *)o->ptr = v / BENCH_PAGE;
		return 0;
	}
	case BOPT_STR:
		*(const char **)o->ptr = arg;
		return 0;
	case BOPT_FN:
		return o->fn(arg);
	case BOPT_FLAG:
		*(bool *)o->ptr = true;
		return 0;
	}
	return -EINVAL;
}

/*
 * Parse argv[1..] into the common settings and @d's options (d NULL: only
 * the common ones).  Return: 0, 1 (help printed), or -EINVAL (reported).
 */
static int bench_parse(const struct bench_def *d, int argc, char **argv,
		       struct bench_ctx *bx, const char **dirbase)
{
	int i;

	/* Help first: options before it must not show as the defaults. */
	for (i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "--h")) {
			if (d)
				bench_help(d);
			else
				bench_usage(stdout);
			return 1;
		}
	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *val = NULL;
		const struct bench_opt *o = NULL;
		char name[64];
		size_t n;

		if (strncmp(a, "--", 2)) {
			fprintf(stderr, "ufvm bench: unexpected argument '%s'\n", a);
			return -EINVAL;
		}
		a += 2;
		n = strcspn(a, "=");
		if (n >= sizeof(name))
			n = sizeof(name) - 1;
		memcpy(name, a, n);
		name[n] = 0;
		if (a[n] == '=')
			val = a + n + 1;
		if (!strcmp(name, "help") || !strcmp(name, "h")) {
			if (d)
				bench_help(d);
			else
				bench_usage(stdout);
			return 1;
		}
		for (o = d ? d->opts : NULL; o && o->name; o++)
			if (!strcmp(o->name, name))
				break;
		if (o && !o->name)
			o = NULL;
		/*
		 * A flag is on when named: --json=no must not turn it on, and
		 * cannot turn it off either, so a value is refused.
		 */
		if (val && (!strcmp(name, "json") || (o && o->type == BOPT_FLAG))) {
			fprintf(stderr, "ufvm bench: --%s: takes no value (--%s=%s)\n", name,
				name, val);
			return -EINVAL;
		}
		if (!strcmp(name, "json")) {
			bx->json = true;
			continue;
		}
		if (o && o->type == BOPT_FLAG) {
			bench_set(o, NULL);
			continue;
		}
		if (!o && strcmp(name, "reps") && strcmp(name, "dir")) {
			fprintf(stderr, "ufvm bench: unknown option --%s%s%s\n", name,
				d ? " for " : "", d ? d->name : "");
			return -EINVAL;
		}
		if (!val) {
			if (i + 1 >= argc) {
				fprintf(stderr, "ufvm bench: --%s needs a value\n", name);
				return -EINVAL;
			}
			val = argv[++i];
		}
		if (!strcmp(name, "reps")) {
			uint64_t r;

			if (ufvm_parse_size(val, 1, &r) || !r || r > 1000) {
				fprintf(stderr, "ufvm bench: --reps %s: expected 1..1000\n", val);
				return -EINVAL;
			}
			bx->reps = (unsigned int)r;
			continue;
		}
		if (!strcmp(name, "dir")) {
			if (!val[0]) {
				fprintf(stderr, "ufvm bench: --dir: an empty value\n");
				return -EINVAL;
			}
			*dirbase = val;
			continue;
		}
		if (bench_set(o, val)) {
			if (o->type != BOPT_FN)	/* (which says why itself) */
				fprintf(stderr, "ufvm bench: --%s %s: bad value\n", name, val);
			return -EINVAL;
		}
	}
	return 0;
}

/*
 * The CPU's model name from /proc/cpuinfo into @buf ("" if none): figures
 * of runs on different hosts of one machine kind differ by that much.
 */
static void bench_cpu_model(char *buf, size_t len)
{
	FILE *f = fopen("/proc/cpuinfo", "r");
	char line[256];

	buf[0] = '\0';
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		char *v = strchr(line, ':');

		if (strncmp(line, "model name", 10) || !v)
			continue;
		v += strspn(v + 1, " \t") + 1;
		v[strcspn(v, "\n")] = '\0';
		snprintf(buf, len, "%s", v);
		break;
	}
	fclose(f);
}

static void bench_host(struct jw *w)
{
	struct utsname u;
	char model[128];

	jw_obj(w, "host");
	if (!uname(&u)) {
		jw_str(w, "kernel", u.release);
		jw_str(w, "machine", u.machine);
	}
	bench_cpu_model(model, sizeof(model));
	if (model[0])
		jw_str(w, "cpu_model", model);
	jw_u64(w, "cpus", (uint64_t)bench_ncpus());
	jw_u64(w, "time", (uint64_t)time(NULL));
	jw_end(w, '}');
}

static int bench_run_one(const struct bench_def *d, struct bench_ctx *bx)
{
	uint64_t t0 = bench_now_ns();
	bool top = !bx->jw->depth;
	int err;

	fprintf(bx->out, "== ufvm bench %s: %s\n", d->name, d->summary);
	jw_obj(bx->jw, top ? NULL : d->name);
	jw_str(bx->jw, "bench", d->name);
	if (top)
		bench_host(bx->jw);
	jw_u64(bx->jw, "reps", bx->reps);
	err = d->run(bx);
	jw_num(bx->jw, "elapsed_s", (double)(bench_now_ns() - t0) / 1e9);
	jw_end(bx->jw, '}');
	fprintf(bx->out, "(%s: %.1f s)\n\n", d->name, (double)(bench_now_ns() - t0) / 1e9);
	fflush(bx->out);
	return err;
}

int ufvm_bench_main(int argc, char **argv)
{
	struct bench_ctx bx = { .reps = BENCH_REPS_DEFAULT };
	const struct bench_def *d = NULL;
	struct ufvm_config cfg;
	const char *dirbase = NULL;
	char *text = NULL;
	size_t len = 0, i;
	struct jw jw;
	FILE *m;
	bool all;
	int err = 0, r;

	if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") ||
	    !strcmp(argv[1], "help") || !strcmp(argv[1], "list")) {
		bench_usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	all = !strcmp(argv[1], "all");
	if (!all) {
		d = bench_find(argv[1]);
		if (!d) {
			fprintf(stderr, "ufvm bench: no benchmark '%s'\n\n", argv[1]);
			bench_usage(stderr);
			return 2;
		}
	}
	r = bench_parse(d, argc - 1, argv + 1, &bx, &dirbase);
	if (r)
		return r > 0 ? 0 : 2;
	/*
	 * A bad UFVM_* variable is a usage error whichever benchmark reads
	 * it, and whenever it does: read them once, here.  The library has
	 * said what is wrong.
	 */
	if (ufvm_config_init(&cfg))
		return 2;
	/* every option value checked before anything runs: a usage error */
	for (i = 0; i < BENCH_NDEFS; i++) {
		const struct bench_def *c = bench_defs[i];

		if ((all ? c->in_all : c == d) && c->check && c->check(&bx))
			return 2;
	}
	bx.out = bx.json ? stderr : stdout;
	if (bench_mkdir(dirbase))
		return 1;
	bx.dir = bench_dir;
	m = open_memstream(&text, &len);
	if (!m)
		return 1;
	jw_init(&jw, m);
	bx.jw = &jw;
	if (all) {
		jw_obj(&jw, NULL);
		jw_str(&jw, "bench", "all");
		bench_host(&jw);
		for (i = 0; i < BENCH_NDEFS; i++) {
			if (!bench_defs[i]->in_all)
				continue;
			r = bench_run_one(bench_defs[i], &bx);
			if (r && !err)
				err = r;
		}
		jw_end(&jw, '}');
	} else {
		err = bench_run_one(d, &bx);
	}
	fputc('\n', m);
	fclose(m);
	if (!err && bx.json)
		fputs(text, stdout);
	free(text);
	return err ? 1 : 0;
}
