/* SPDX-License-Identifier: MIT */
/*
 * demo.c - the ufvm demo: map a file through ufvm, read it, write it, check
 * every word read, and run the same scans through the kernel's own mmap of
 * the same file, so that every figure comes with its kernel counterpart.
 *
 * The store is a file the demo makes in a fresh temporary directory (under
 * $TMPDIR, else /var/tmp) and removes at exit.  Word w of the file holds
 * demo_word(offset of w, generation), generation 0 everywhere at first; the
 * write pass rewrites a pseudo-random eighth of the pages with generation 1.
 * The expected value of any word is therefore known without a copy.
 *
 * Passes, in order (each "cold" pass starts with the kernel's page cache of
 * the file dropped, POSIX_FADV_DONTNEED, and, for ufvm, an empty ufvm page
 * cache; each "warm" pass uses a new mapping of a file whose cache is full):
 *
 *   ufvm   seq cold     one word of every page, in order: major faults
 *   ufvm   seq warm     a second region of the file: cached pages
 *   ufvm   random cold  N distinct pages in a fixed pseudo-random order,
 *                       each first touch timed on its own
 *   ufvm   random warm  the same order on a second region
 *   ufvm   write        whole pages of the random-cold region, then
 *                       ufvm_sync(); then the second region must see every
 *                       write and pread() of the file must find every byte
 *                       as expected
 *   kernel seq cold/warm, random cold/warm: the same through mmap(MAP_SHARED)
 *
 * Context: single-threaded; ufvm's pager runs in its own threads.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

#include "ufvm.h"
#include "demo.h"

#define DEMO_DEFAULT_SIZE	(256ull << 20)
#define DEMO_MIN_PAGES		64
/*
 * The demo writes the whole store file before it starts and keeps 9 bytes
 * of its own per page (the random order, the generation written): 1 TiB
 * of 4 KiB pages, the benchmarks' bound too, is already 2.25 GiB of it.
 * A larger --size is refused up front, not found out of memory or disk
 * after the setup.
 */
#define DEMO_MAX_PAGES		(1ull << 28)
#define DEMO_FILL_CHUNK		(1u << 20)
#define DEMO_WRITE_ONE_IN	8	/* the write pass writes ~1/8 of the pages */
#define DEMO_MAX_ERRORS		8	/* mismatches described in full */
#define DEMO_TMPFS_MAGIC	0x01021994
#define DEMO_RAMFS_MAGIC	0x858458f6

enum demo_pass {
	DEMO_SEQ_COLD,
	DEMO_SEQ_WARM,
	DEMO_RAND_COLD,
	DEMO_RAND_WARM,
	DEMO_PASS__NR
};

static const char *const demo_pass_names[DEMO_PASS__NR] = {
	"seq cold", "seq warm", "random cold", "random warm",
};

/* Points at which ufvm's counters are sampled; a column is a difference. */
enum demo_snap {
	DEMO_SNAP_START,
	DEMO_SNAP_SEQ_COLD,
	DEMO_SNAP_SEQ_WARM,
	DEMO_SNAP_RAND_COLD,
	DEMO_SNAP_RAND_WARM,
	DEMO_SNAP_WRITE,
	DEMO_SNAP_CHECK,
	DEMO_SNAP__NR
};

static const char *const demo_snap_names[DEMO_SNAP__NR] = {
	"", "seq cold", "seq warm", "rand cold", "rand warm", "write+sync", "check",
};

struct demo_result {
	uint64_t pages;
	uint64_t ns;
	bool done;
};

struct demo_latency {
	uint64_t n;
	uint64_t p50, p99, max;
};

struct demo {
	/* options */
	uint64_t size;
	uint64_t touches;
	uint64_t seed;
	const char *dir_base;
	const char *prog;
	bool keep;
	bool progress;

	/* the store */
	long psize;
	uint64_t npages;
	uint64_t words_per_page;
	char dir[PATH_MAX];
	char path[PATH_MAX];
	int fd;
	bool on_tmpfs;

	/* the work */
	uint64_t *order;		/* random passes: page indices */
	uint64_t *lat;			/* per-touch nanoseconds, scratch */
	uint8_t *written;		/* per page: generation */
	uint64_t nwritten;

	/* results */
	struct ufvm_config cfg;
	struct demo_result ufvm[DEMO_PASS__NR];
	struct demo_result kern[DEMO_PASS__NR];
	struct demo_latency ufvm_lat[DEMO_PASS__NR];
	struct demo_latency kern_lat[DEMO_PASS__NR];
	struct demo_result write;
	uint64_t sync_ns;
	uint64_t verify_bytes;
	uint64_t coherent_pages;
	struct ufvm_stats snap[DEMO_SNAP__NR];
	bool have_stats;
	char backend[32];		/* the delivery that ran; "" if ufvm did not start */
	bool cache_not_empty;
	uint64_t cache_left;
	double resident_left;		/* worst kernel page-cache residue */

	/* checks */
	uint64_t checked_words;
	uint64_t errors;
	uint64_t t_start;
};

/* The temporary files, for the exit and signal handlers. */
static char demo_cleanup_dir[PATH_MAX];
static char demo_cleanup_file[PATH_MAX];
static const char *volatile demo_current = "setting up";

static uint64_t demo_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* splitmix64's finaliser: a good 64-bit mix, cheap enough for every word. */
static inline uint64_t demo_mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/* The value of the word at byte offset @off written by generation @gen. */
static inline uint64_t demo_word(uint64_t off, unsigned int gen)
{
	return demo_mix(off ^ ((uint64_t)gen << 56) ^ 0x75667600ull);
}

/* What the word at @off must hold now. */
static inline uint64_t demo_expect(const struct demo *d, uint64_t off)
{
	return demo_word(off, d->written[off / (uint64_t)d->psize]);
}

/* The byte offset of the word the scans read in page @page. */
static inline uint64_t demo_probe(const struct demo *d, uint64_t page)
{
	return page * (uint64_t)d->psize +
	       (demo_mix(page) % d->words_per_page) * sizeof(uint64_t);
}

static void demo_remove_files(void)
{
	if (demo_cleanup_file[0]) {
		unlink(demo_cleanup_file);
		demo_cleanup_file[0] = 0;
	}
	if (demo_cleanup_dir[0]) {
		rmdir(demo_cleanup_dir);
		demo_cleanup_dir[0] = 0;
	}
}

static void demo_fatal_signal(int sig, siginfo_t *si, void *uc)
{
	char msg[256];
	int n;

	(void)uc;
	if (sig == SIGBUS || sig == SIGSEGV)
		n = snprintf(msg, sizeof(msg),
			     "\nufvm demo: %s at address %p during %s: the mapping "
			     "did not deliver the page\n",
			     sig == SIGBUS ? "SIGBUS" : "SIGSEGV", si->si_addr,
			     demo_current);
	else
		n = snprintf(msg, sizeof(msg), "\nufvm demo: interrupted during %s\n",
			     demo_current);
	if (n > 0)
		(void)!write(STDERR_FILENO, msg, (size_t)n < sizeof(msg) ? (size_t)n :
			     sizeof(msg) - 1);
	demo_remove_files();
	signal(sig, SIG_DFL);
	raise(sig);
	_exit(128 + sig);
}

static void demo_install_signals(void)
{
	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGBUS, SIGSEGV };
	struct sigaction sa;
	size_t i;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = demo_fatal_signal;
	sa.sa_flags = SA_SIGINFO | SA_RESETHAND;
	sigemptyset(&sa.sa_mask);
	for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaction(sigs[i], &sa, NULL);
}

static void demo_usage(FILE *f, const char *prog)
{
	fprintf(f,
		"usage: %s [--size SIZE] [--touches N] [--seed N] [--dir DIR] [--keep]\n"
		"\n"
		"Maps a store file it makes through ufvm, reads, writes and checks it,\n"
		"then runs the same scans through the kernel's mmap of the same file,\n"
		"and prints one report.\n"
		"\n"
		"  --size SIZE    store size in bytes, K/M/G/T suffixes (default 256M;\n"
		"                 64 to 268435456 pages: 1T of 4 KiB pages)\n"
		"  --touches N    pages touched by each random pass (default 1/8 of the\n"
		"                 pages; an N above the number of pages touches every page)\n"
		"  --seed N       seed of the random page order (default 1)\n"
		"  --dir DIR      make the temporary directory in DIR\n"
		"                 (default $TMPDIR, else /var/tmp)\n"
		"  --keep         keep the store file and print its path\n"
		"  --quiet        no progress lines on stderr\n"
		"\n"
		"ufvm's knobs come from the UFVM_* environment variables: see\n"
		"docs/configuration.md.\n"
		"\n"
		"exit status: 0 all checks passed, 1 a check failed or ufvm could not\n"
		"start, 2 a usage or configuration error (a bad option or UFVM_* value).\n",
		prog);
}

static int demo_parse_args(struct demo *d, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "size", required_argument, NULL, 's' },
		{ "touches", required_argument, NULL, 'n' },
		{ "seed", required_argument, NULL, 'S' },
		{ "dir", required_argument, NULL, 'd' },
		{ "keep", no_argument, NULL, 'k' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	uint64_t v;
	int c;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":s:n:S:d:kqh", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			if (ufvm_parse_size(optarg, 1, &d->size) || !d->size) {
				fprintf(stderr, "%s: bad --size '%s'\n", d->prog, optarg);
				return -EINVAL;
			}
			if (d->size / (uint64_t)d->psize > DEMO_MAX_PAGES) {
				fprintf(stderr, "%s: --size %s: at most %llu pages (%lluG of "
					"%ld-byte pages)\n", d->prog, optarg, DEMO_MAX_PAGES,
					(DEMO_MAX_PAGES * (uint64_t)d->psize) >> 30, d->psize);
				return -EINVAL;
			}
			break;
		case 'n':
			if (ufvm_parse_size(optarg, 1, &v) || !v) {
				fprintf(stderr, "%s: bad --touches '%s'\n", d->prog, optarg);
				return -EINVAL;
			}
			d->touches = v;
			break;
		case 'S':
			if (ufvm_parse_size(optarg, 1, &d->seed)) {
				fprintf(stderr, "%s: bad --seed '%s'\n", d->prog, optarg);
				return -EINVAL;
			}
			break;
		case 'd':
			if (!optarg[0]) {
				fprintf(stderr, "%s: --dir: an empty value\n", d->prog);
				return -EINVAL;
			}
			d->dir_base = optarg;
			break;
		case 'k':
			d->keep = true;
			break;
		case 'q':
			d->progress = false;
			break;
		case 'h':
			demo_usage(stdout, d->prog);
			return 1;
		case ':':
			fprintf(stderr, "%s: %s needs a value\n", d->prog, argv[optind - 1]);
			demo_usage(stderr, d->prog);
			return -EINVAL;
		default:
			if (optopt)
				fprintf(stderr, "%s: bad or incomplete option '-%c'\n",
					d->prog, optopt);
			else
				fprintf(stderr, "%s: unknown option '%s'\n", d->prog,
					argv[optind - 1]);
			demo_usage(stderr, d->prog);
			return -EINVAL;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "%s: unexpected argument '%s'\n", d->prog, argv[optind]);
		demo_usage(stderr, d->prog);
		return -EINVAL;
	}
	if (d->size % (uint64_t)d->psize) {
		fprintf(stderr, "%s: --size must be a multiple of the page size (%ld)\n",
			d->prog, d->psize);
		return -EINVAL;
	}
	if (d->size / (uint64_t)d->psize < DEMO_MIN_PAGES) {
		fprintf(stderr, "%s: --size must be at least %d pages\n", d->prog,
			DEMO_MIN_PAGES);
		return -EINVAL;
	}
	return 0;
}

static void demo_progress(const struct demo *d, const char *what)
{
	demo_current = what;
	if (d->progress)
		fprintf(stderr, "%s: %s...\n", d->prog, what);
}

/* Record a mismatch; the first few are described. */
static void demo_mismatch(struct demo *d, const char *where, uint64_t off, uint64_t got,
			  uint64_t want)
{
	if (d->errors++ < DEMO_MAX_ERRORS)
		fprintf(stderr,
			"%s: MISMATCH in %s: offset %#" PRIx64 " (page %" PRIu64
			"): read %#018" PRIx64 ", expected %#018" PRIx64 "\n",
			d->prog, where, off, off / (uint64_t)d->psize, got, want);
}

/*
 * Drop the kernel's page cache of the store file, so that the next pass
 * reads from the disk.  Records how much could not be dropped.
 */
static void demo_drop_kernel_cache(struct demo *d)
{
	unsigned char *vec;
	uint64_t i, resident = 0;
	void *m;

	fdatasync(d->fd);
	posix_fadvise(d->fd, 0, 0, POSIX_FADV_DONTNEED);

	/* mincore() of a file mapping reports the file's page-cache pages. */
	vec = malloc(d->npages);
	if (!vec)
		return;
	m = mmap(NULL, d->size, PROT_READ, MAP_SHARED, d->fd, 0);
	if (m != MAP_FAILED) {
		if (!mincore(m, d->size, vec)) {
			for (i = 0; i < d->npages; i++)
				resident += vec[i] & 1;
			if ((double)resident / d->npages > d->resident_left)
				d->resident_left = (double)resident / d->npages;
		}
		munmap(m, d->size);
	}
	free(vec);
}

/*
 * Remove what earlier runs left behind when they were killed before they
 * could clean up (SIGKILL, a test timeout): directories ufvm-demo.PID.XXXXXX
 * in @base whose PID no longer exists.  Only their "store" file is removed,
 * so a directory holding anything else stays.
 */
static void demo_reap_stale(const char *base)
{
	char path[PATH_MAX];
	struct dirent *de;
	char *end;
	long pid;
	DIR *dir;

	dir = opendir(base);
	if (!dir)
		return;
	while ((de = readdir(dir))) {
		if (strncmp(de->d_name, "ufvm-demo.", 10))
			continue;
		pid = strtol(de->d_name + 10, &end, 10);
		if (end == de->d_name + 10 || *end != '.' || pid <= 0 || pid > INT_MAX)
			continue;
		if (!kill((pid_t)pid, 0) || errno != ESRCH)
			continue;
		if (snprintf(path, sizeof(path), "%s/%s/store", base, de->d_name) >=
		    (int)sizeof(path))
			continue;
		unlink(path);
		path[strlen(path) - strlen("/store")] = 0;
		rmdir(path);
	}
	closedir(dir);
}

/* Make the temporary directory and the store file, filled with generation 0. */
static int demo_make_store(struct demo *d)
{
	const char *base = d->dir_base;
	struct statfs sfs;
	uint64_t *buf, off, i, n;
	ssize_t w;
	int ret;

	if (!base || !*base)
		base = getenv("TMPDIR");
	if (!base || !*base)
		base = "/var/tmp";
	demo_reap_stale(base);
	if (snprintf(d->dir, sizeof(d->dir), "%s/ufvm-demo.%d.XXXXXX", base, (int)getpid()) >=
	    (int)sizeof(d->dir))
		return -ENAMETOOLONG;
	if (!mkdtemp(d->dir)) {
		ret = -errno;
		fprintf(stderr, "%s: cannot make a temporary directory in %s: %s\n",
			d->prog, base, strerror(-ret));
		return ret;
	}
	strcpy(demo_cleanup_dir, d->dir);
	if (snprintf(d->path, sizeof(d->path), "%s/store", d->dir) >= (int)sizeof(d->path))
		return -ENAMETOOLONG;
	if (!statfs(d->dir, &sfs) &&
	    (sfs.f_type == DEMO_TMPFS_MAGIC || sfs.f_type == DEMO_RAMFS_MAGIC))
		d->on_tmpfs = true;

	d->fd = open(d->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (d->fd < 0) {
		ret = -errno;
		fprintf(stderr, "%s: cannot create %s: %s\n", d->prog, d->path,
			strerror(-ret));
		return ret;
	}
	strcpy(demo_cleanup_file, d->path);

	buf = malloc(DEMO_FILL_CHUNK);
	if (!buf)
		return -ENOMEM;
	ret = 0;
	for (off = 0; off < d->size; off += n) {
		n = d->size - off < DEMO_FILL_CHUNK ? d->size - off : DEMO_FILL_CHUNK;
		for (i = 0; i < n / sizeof(uint64_t); i++)
			buf[i] = demo_word(off + i * sizeof(uint64_t), 0);
		w = pwrite(d->fd, buf, n, (off_t)off);
		if (w != (ssize_t)n) {
			ret = w < 0 ? -errno : -EIO;
			fprintf(stderr, "%s: cannot write %s: %s\n", d->prog, d->path,
				strerror(-ret));
			break;
		}
	}
	free(buf);
	if (!ret && fdatasync(d->fd)) {
		ret = -errno;
		fprintf(stderr, "%s: fdatasync %s: %s\n", d->prog, d->path, strerror(-ret));
	}
	return ret;
}

/* A fixed pseudo-random order of d->touches distinct pages (Fisher-Yates). */
static int demo_make_order(struct demo *d)
{
	uint64_t *perm, i, j, t, x = d->seed;

	perm = malloc(d->npages * sizeof(*perm));
	if (!perm)
		return -ENOMEM;
	for (i = 0; i < d->npages; i++)
		perm[i] = i;
	for (i = 0; i < d->touches; i++) {
		x = demo_mix(x);
		j = i + x % (d->npages - i);
		t = perm[i];
		perm[i] = perm[j];
		perm[j] = t;
	}
	d->order = perm;
	return 0;
}

/* Read one word of every page of @base in order; check each. */
static void demo_scan_seq(struct demo *d, const char *base, const char *where,
			  struct demo_result *r)
{
	uint64_t i, off, v, t0;

	t0 = demo_now_ns();
	for (i = 0; i < d->npages; i++) {
		off = demo_probe(d, i);
		v = *(const volatile uint64_t *)(base + off);
		if (__builtin_expect(v != demo_expect(d, off), 0))
			demo_mismatch(d, where, off, v, demo_expect(d, off));
	}
	r->ns = demo_now_ns() - t0;
	r->pages = d->npages;
	r->done = true;
	d->checked_words += d->npages;
}

static int demo_cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Nearest-rank percentiles of d->lat[0..n). */
static void demo_percentiles(struct demo *d, uint64_t n, struct demo_latency *l)
{
	qsort(d->lat, n, sizeof(*d->lat), demo_cmp_u64);
	l->n = n;
	l->p50 = d->lat[(n * 50 + 99) / 100 - 1];
	l->p99 = d->lat[(n * 99 + 99) / 100 - 1];
	l->max = d->lat[n - 1];
}

/*
 * Touch d->touches distinct pages of @base in the fixed random order, timing
 * each touch (every one is the page's first touch through this mapping).
 */
static void demo_scan_random(struct demo *d, const char *base, const char *where,
			     struct demo_result *r, struct demo_latency *l)
{
	uint64_t k, off, v, t0, t1, t2;

	t0 = demo_now_ns();
	for (k = 0; k < d->touches; k++) {
		off = demo_probe(d, d->order[k]);
		t1 = demo_now_ns();
		v = *(const volatile uint64_t *)(base + off);
		t2 = demo_now_ns();
		d->lat[k] = t2 - t1;
		if (__builtin_expect(v != demo_expect(d, off), 0))
			demo_mismatch(d, where, off, v, demo_expect(d, off));
	}
	r->ns = demo_now_ns() - t0;
	r->pages = d->touches;
	r->done = true;
	d->checked_words += d->touches;
	demo_percentiles(d, d->touches, l);
}

static bool demo_page_chosen(const struct demo *d, uint64_t page)
{
	return demo_mix(page ^ 0x77726974ull ^ d->seed) % DEMO_WRITE_ONE_IN == 0;
}

/* Write generation 1 into every word of the chosen pages of @base. */
static void demo_write_pages(struct demo *d, char *base)
{
	uint64_t i, w, off, t0;
	volatile uint64_t *p;

	t0 = demo_now_ns();
	for (i = 0; i < d->npages; i++) {
		if (!demo_page_chosen(d, i))
			continue;
		off = i * (uint64_t)d->psize;
		p = (volatile uint64_t *)(base + off);
		for (w = 0; w < d->words_per_page; w++)
			p[w] = demo_word(off + w * sizeof(uint64_t), 1);
		d->written[i] = 1;
		d->nwritten++;
	}
	d->write.ns = demo_now_ns() - t0;
	d->write.pages = d->nwritten;
	d->write.done = true;
}

/* Every written page, read through another region, must show the write. */
static void demo_check_coherent(struct demo *d, const char *other)
{
	uint64_t i, off, v;

	for (i = 0; i < d->npages; i++) {
		if (!d->written[i])
			continue;
		off = demo_probe(d, i);
		v = *(const volatile uint64_t *)(other + off);
		if (v != demo_expect(d, off))
			demo_mismatch(d, "the second region after the write pass", off, v,
				      demo_expect(d, off));
		else
			d->coherent_pages++;
		d->checked_words++;
	}
}

/*
 * Read the whole store file with pread() and compare every word with what it
 * must hold: every write of the write pass there, nothing else changed.
 */
static int demo_verify_file(struct demo *d)
{
	uint64_t *buf, off, i, n;
	ssize_t r;
	int ret = 0;

	buf = malloc(DEMO_FILL_CHUNK);
	if (!buf)
		return -ENOMEM;
	for (off = 0; off < d->size; off += n) {
		n = d->size - off < DEMO_FILL_CHUNK ? d->size - off : DEMO_FILL_CHUNK;
		r = pread(d->fd, buf, n, (off_t)off);
		if (r != (ssize_t)n) {
			ret = r < 0 ? -errno : -EIO;
			fprintf(stderr, "%s: pread %s at %" PRIu64 ": %s\n", d->prog,
				d->path, off, r < 0 ? strerror(-ret) : "short read");
			break;
		}
		for (i = 0; i < n / sizeof(uint64_t); i++) {
			uint64_t o = off + i * sizeof(uint64_t);

			if (__builtin_expect(buf[i] != demo_expect(d, o), 0))
				demo_mismatch(d, "the store file (pread after ufvm_sync)", o,
					      buf[i], demo_expect(d, o));
		}
		d->verify_bytes += n;
	}
	free(buf);
	return ret;
}

static void demo_snap(struct demo *d, struct ufvm *vm, enum demo_snap s)
{
	int ret;

	if (!d->have_stats)
		return;
	ret = ufvm_stats(vm, &d->snap[s]);
	if (ret) {
		fprintf(stderr, "%s: ufvm_stats: %s (no fault counters in the report)\n",
			d->prog, ufvm_strerror(ret));
		d->have_stats = false;
	}
}

static int demo_map(struct demo *d, struct ufvm *vm, void **addr)
{
	int ret;

	ret = ufvm_map(vm, d->path, 0, d->size, UFVM_PROT_READ | UFVM_PROT_WRITE,
		       UFVM_MAP_SHARED, addr);
	if (ret)
		fprintf(stderr, "%s: ufvm_map %s: %s\n", d->prog, d->path,
			ufvm_strerror(ret));
	return ret;
}

static int demo_unmap(struct demo *d, struct ufvm *vm, void **addr)
{
	int ret;

	if (!*addr)
		return 0;
	ret = ufvm_unmap(vm, *addr, d->size);
	if (ret)
		fprintf(stderr, "%s: ufvm_unmap: %s\n", d->prog, ufvm_strerror(ret));
	*addr = NULL;
	return ret;
}

/*
 * The ufvm half.  Return: 0, -EPERM when userfaultfd is not permitted (the
 * library has said why), or another -errno after printing what failed.
 */
static int demo_run_ufvm(struct demo *d)
{
	void *a = NULL, *b = NULL;
	struct ufvm_stats st;
	struct ufvm *vm;
	int ret, ret2;

	ret = ufvm_open(&d->cfg, &vm);
	if (ret) {
		fprintf(stderr, "%s: cannot start ufvm: %s\n", d->prog, ufvm_strerror(ret));
		return ret;
	}
	/* After a fallback (backend auto) this is the one that runs. */
	snprintf(d->backend, sizeof(d->backend), "%s", ufvm_backend_name(vm));
	d->have_stats = true;

	demo_drop_kernel_cache(d);
	demo_snap(d, vm, DEMO_SNAP_START);

	demo_progress(d, "ufvm sequential scan, cold");
	ret = demo_map(d, vm, &a);
	if (ret)
		goto out;
	demo_scan_seq(d, a, "ufvm seq cold", &d->ufvm[DEMO_SEQ_COLD]);
	demo_snap(d, vm, DEMO_SNAP_SEQ_COLD);

	demo_progress(d, "ufvm sequential scan, warm (second region)");
	ret = demo_map(d, vm, &b);
	if (ret)
		goto out;
	demo_scan_seq(d, b, "ufvm seq warm", &d->ufvm[DEMO_SEQ_WARM]);
	demo_snap(d, vm, DEMO_SNAP_SEQ_WARM);

	/* Empty both caches: unmapping the last region frees ufvm's. */
	ret = demo_unmap(d, vm, &a);
	ret2 = demo_unmap(d, vm, &b);
	if (ret || ret2) {
		ret = ret ? ret : ret2;
		goto out;
	}
	if (d->have_stats && !ufvm_stats(vm, &st) && st.cached_pages) {
		d->cache_not_empty = true;
		d->cache_left = st.cached_pages;
	}
	demo_drop_kernel_cache(d);

	demo_progress(d, "ufvm random reads, cold");
	ret = demo_map(d, vm, &a);
	if (ret)
		goto out;
	demo_scan_random(d, a, "ufvm random cold", &d->ufvm[DEMO_RAND_COLD],
			 &d->ufvm_lat[DEMO_RAND_COLD]);
	demo_snap(d, vm, DEMO_SNAP_RAND_COLD);

	demo_progress(d, "ufvm random reads, warm (second region)");
	ret = demo_map(d, vm, &b);
	if (ret)
		goto out;
	demo_scan_random(d, b, "ufvm random warm", &d->ufvm[DEMO_RAND_WARM],
			 &d->ufvm_lat[DEMO_RAND_WARM]);
	demo_snap(d, vm, DEMO_SNAP_RAND_WARM);

	demo_progress(d, "ufvm write pass and ufvm_sync");
	demo_write_pages(d, a);
	{
		uint64_t t0 = demo_now_ns();

		ret = ufvm_sync(vm, a, d->size);
		d->sync_ns = demo_now_ns() - t0;
	}
	if (ret) {
		fprintf(stderr, "%s: ufvm_sync: %s\n", d->prog, ufvm_strerror(ret));
		goto out;
	}
	demo_snap(d, vm, DEMO_SNAP_WRITE);

	demo_progress(d, "checking the writes through the other region and pread");
	demo_check_coherent(d, b);
	demo_snap(d, vm, DEMO_SNAP_CHECK);
	ret = demo_verify_file(d);
out:
	ret2 = demo_unmap(d, vm, &a);
	ret = ret ? ret : ret2;
	ret2 = demo_unmap(d, vm, &b);
	ret = ret ? ret : ret2;
	ret2 = ufvm_close(vm);
	if (ret2)
		fprintf(stderr, "%s: ufvm_close: %s\n", d->prog, ufvm_strerror(ret2));
	return ret ? ret : ret2;
}

static int demo_kmap(struct demo *d, void **addr)
{
	void *m;

	m = mmap(NULL, d->size, PROT_READ | PROT_WRITE, MAP_SHARED, d->fd, 0);
	if (m == MAP_FAILED) {
		int ret = -errno;

		fprintf(stderr, "%s: mmap %s: %s\n", d->prog, d->path, strerror(-ret));
		return ret;
	}
	*addr = m;
	return 0;
}

static void demo_kunmap(struct demo *d, void **addr)
{
	if (*addr)
		munmap(*addr, d->size);
	*addr = NULL;
}

/* The kernel half: the same scans through mmap(MAP_SHARED) of the file. */
static int demo_run_kernel(struct demo *d)
{
	void *a = NULL, *b = NULL;
	int ret;

	demo_drop_kernel_cache(d);
	demo_progress(d, "kernel sequential scan, cold");
	ret = demo_kmap(d, &a);
	if (ret)
		goto out;
	demo_scan_seq(d, a, "kernel seq cold", &d->kern[DEMO_SEQ_COLD]);

	demo_progress(d, "kernel sequential scan, warm (second mapping)");
	ret = demo_kmap(d, &b);
	if (ret)
		goto out;
	demo_scan_seq(d, b, "kernel seq warm", &d->kern[DEMO_SEQ_WARM]);
	demo_kunmap(d, &a);
	demo_kunmap(d, &b);

	demo_drop_kernel_cache(d);
	demo_progress(d, "kernel random reads, cold");
	ret = demo_kmap(d, &a);
	if (ret)
		goto out;
	demo_scan_random(d, a, "kernel random cold", &d->kern[DEMO_RAND_COLD],
			 &d->kern_lat[DEMO_RAND_COLD]);

	demo_progress(d, "kernel random reads, warm (second mapping)");
	ret = demo_kmap(d, &b);
	if (ret)
		goto out;
	demo_scan_random(d, b, "kernel random warm", &d->kern[DEMO_RAND_WARM],
			 &d->kern_lat[DEMO_RAND_WARM]);
out:
	demo_kunmap(d, &a);
	demo_kunmap(d, &b);
	return ret;
}

/* ---- the report ---- */

static void demo_fmt_size(char *buf, size_t len, uint64_t bytes)
{
	if (bytes >= (1ull << 30) && !(bytes % (1ull << 30)))
		snprintf(buf, len, "%" PRIu64 " GiB", bytes >> 30);
	else if (bytes >= (1ull << 20) && !(bytes % (1ull << 20)))
		snprintf(buf, len, "%" PRIu64 " MiB", bytes >> 20);
	else if (bytes >= (1ull << 10) && !(bytes % (1ull << 10)))
		snprintf(buf, len, "%" PRIu64 " KiB", bytes >> 10);
	else
		snprintf(buf, len, "%" PRIu64 " B", bytes);
}

/* "time ms  ns/page  MB/s" for one result, or blanks. */
static void demo_print_cols(const struct demo *d, const struct demo_result *r)
{
	double ms, ns_page, mbs;

	if (!r->done || !r->pages) {
		printf("  %9s %8s %8s", "-", "-", "-");
		return;
	}
	ms = r->ns / 1e6;
	ns_page = (double)r->ns / r->pages;
	mbs = r->ns ? (double)r->pages * d->psize / (r->ns / 1e9) / 1e6 : 0;
	printf("  %9.1f %8.0f %8.0f", ms, ns_page, mbs);
}

static void demo_print_passes(const struct demo *d)
{
	const struct demo_result *u, *k;
	int p;

	printf("\n%-12s %7s  %-27s  %-27s  %s\n", "", "", "----------- ufvm -----------",
	       "---------- kernel ----------", "ufvm/kernel");
	printf("%-12s %7s  %9s %8s %8s  %9s %8s %8s  %s\n", "pass", "pages", "time ms",
	       "ns/page", "MB/s", "time ms", "ns/page", "MB/s", "time");
	for (p = 0; p < DEMO_PASS__NR; p++) {
		u = &d->ufvm[p];
		k = &d->kern[p];
		printf("%-12s %7" PRIu64, demo_pass_names[p], u->done ? u->pages : k->pages);
		demo_print_cols(d, u);
		demo_print_cols(d, k);
		if (u->done && k->done && k->ns)
			printf("  %6.2fx", (double)u->ns / k->ns);
		else
			printf("  %7s", "-");
		printf("\n");
	}
	printf("%-12s %7" PRIu64, "write", d->write.pages);
	demo_print_cols(d, &d->write);
	printf("  %9s %8s %8s  %7s   (whole pages, first writes)\n", "-", "-", "-", "-");
	if (d->write.done)
		printf("%-12s %7s  %9.1f %8s %8s  %9s %8s %8s  %7s   (ufvm_sync of the region)\n",
		       "sync", "", d->sync_ns / 1e6, "", "", "-", "-", "-", "-");
}

static void demo_print_lat(const struct demo_latency *l)
{
	if (!l->n) {
		printf("  %8s %8s %8s", "-", "-", "-");
		return;
	}
	printf("  %8.1f %8.1f %8.1f", l->p50 / 1e3, l->p99 / 1e3, l->max / 1e3);
}

static void demo_print_e2e(const struct demo *d)
{
	int p;

	printf("\nfault latency seen by the application (each first touch timed, us):\n");
	printf("%-12s %7s  %8s %8s %8s  %8s %8s %8s\n", "", "", "ufvm p50", "p99", "max",
	       "kern p50", "p99", "max");
	for (p = DEMO_RAND_COLD; p <= DEMO_RAND_WARM; p++) {
		printf("%-12s %7" PRIu64, demo_pass_names[p], d->touches);
		demo_print_lat(&d->ufvm_lat[p]);
		demo_print_lat(&d->kern_lat[p]);
		printf("\n");
	}
}

static void demo_print_counters(const struct demo *d)
{
	const struct ufvm_stats *s = d->snap;
	unsigned int c;
	int i, last = DEMO_SNAP_START;
	bool any = false;

	for (i = DEMO_SNAP_START + 1; i < DEMO_SNAP__NR; i++)
		if (s[i].counters[UFVM_CTR_FAULTS] || s[i].counters[UFVM_CTR_STORE_READS] ||
		    s[i].counters[UFVM_CTR_STORE_WRITES])
			last = i;
	if (last == DEMO_SNAP_START) {
		for (c = 0; c < UFVM_CTR__COUNT; c++)
			any |= s[DEMO_SNAP_START].counters[c] != 0;
		if (!any)
			printf("\nufvm counters: all zero\n");
		return;
	}

	printf("\nufvm faults by path (counter increase in each pass; non-zero counters only):\n");
	printf("%-26s", "counter");
	for (i = DEMO_SNAP_START + 1; i <= last; i++)
		printf(" %10s", demo_snap_names[i]);
	printf(" %10s\n", "total");
	for (c = 0; c < UFVM_CTR__COUNT; c++) {
		const char *name = ufvm_counter_name(c);
		uint64_t total = s[last].counters[c] - s[DEMO_SNAP_START].counters[c];

		if (!total)
			continue;
		printf("%-26s", name ? name : "?");
		for (i = DEMO_SNAP_START + 1; i <= last; i++)
			printf(" %10" PRIu64, s[i].counters[c] - s[i - 1].counters[c]);
		printf(" %10" PRIu64 "\n", total);
	}
}

static void demo_print_paths(const struct demo *d)
{
	const struct ufvm_stats *s = &d->snap[DEMO_SNAP_CHECK];
	const struct ufvm_latency *l;
	unsigned int p;
	bool any = false;

	for (p = 0; p < UFVM_PATH__COUNT; p++)
		any |= s->latency[p].count != 0;
	if (!any)
		return;
	printf("\nufvm pager-side service time by path (whole run, us):\n");
	printf("%-14s %10s %8s %8s %8s %8s\n", "path", "faults", "mean", "p50", "p99", "max");
	for (p = 0; p < UFVM_PATH__COUNT; p++) {
		const char *name = ufvm_path_name(p);

		l = &s->latency[p];
		if (!l->count)
			continue;
		printf("%-14s %10" PRIu64 " %8.1f %8.1f %8.1f %8.1f\n", name ? name : "?",
		       l->count, (double)l->sum_ns / l->count / 1e3, l->p50_ns / 1e3,
		       l->p99_ns / 1e3, l->max_ns / 1e3);
	}
	printf("%-14s %" PRIu64 " pages cached, %" PRIu64 " dirty, %" PRIu64
	       " bytes of metadata\n", "ufvm cache:", s->cached_pages, s->dirty_pages,
	       s->meta_bytes);
}

static const char *demo_invalidate_name(unsigned int m)
{
	switch (m) {
	case UFVM_INVALIDATE_RWSEM:
		return "rwsem";
	case UFVM_INVALIDATE_ADDBLOCK:
		return "add/block";
	case UFVM_INVALIDATE_NONE:
		return "none";
	default:
		return "?";
	}
}

static void demo_print_header(const struct demo *d)
{
	const struct ufvm_config *c = &d->cfg;
	char sz[32], ps[32], handlers[32];

	demo_fmt_size(sz, sizeof(sz), d->size);
	demo_fmt_size(ps, sizeof(ps), (uint64_t)d->psize);
	if (c->handler_threads)
		snprintf(handlers, sizeof(handlers), "%u", c->handler_threads);
	else
		snprintf(handlers, sizeof(handlers), "1 per CPU");
	printf("ufvm demo: %s store file, %" PRIu64 " pages of %s, in %s\n", sz, d->npages,
	       ps, d->dir);
	printf("ufvm config: backend %s%s, handlers %s, spin %u us, speculative %s, "
	       "fault-around %u, retry %s,\n             invalidate %s, store latency "
	       "%u us, cache budget ",
	       d->backend, c->backend == UFVM_BACKEND_AUTO ? " (auto)" : "", handlers, c->handler_spin_us,
	       c->speculative ? "on" : "off", c->fault_around, c->retry ? "on" : "off",
	       demo_invalidate_name(c->invalidate), c->store_latency_us);
	if (c->cache_pages)
		printf("%" PRIu64 " pages\n", c->cache_pages);
	else
		printf("unlimited\n");
	printf("random passes: %" PRIu64 " distinct pages, seed %" PRIu64
	       "; cold = caches dropped, warm = new mapping, cache full\n",
	       d->touches, d->seed);
}

static void demo_print_checks(const struct demo *d, uint64_t total_ns)
{
	char sz[32];

	printf("\nchecks:\n");
	printf("  words read through ufvm and the kernel mappings: %" PRIu64 ", %s\n",
	       d->checked_words, d->errors ? "SOME WRONG (see above)" : "all as expected");
	if (d->write.done) {
		printf("  write pass: %" PRIu64 " pages rewritten, %" PRIu64
		       " of them read back through the second region\n",
		       d->nwritten, d->coherent_pages);
		demo_fmt_size(sz, sizeof(sz), d->verify_bytes);
		printf("  store file after ufvm_sync, read with pread: %s compared word by word\n",
		       sz);
	}
	if (d->on_tmpfs)
		printf("  note: %s is on tmpfs: the cold passes read from memory\n", d->dir);
	if (d->resident_left > 0.05)
		printf("  note: %.0f%% of the file stayed in the kernel's page cache after "
		       "POSIX_FADV_DONTNEED: cold passes are partly warm\n",
		       d->resident_left * 100);
	if (d->cache_not_empty)
		printf("  note: ufvm still cached %" PRIu64 " pages after its last region was "
		       "unmapped: the random cold pass is partly warm\n", d->cache_left);
	printf("  total run time: %.1f s\n", total_ns / 1e9);
}

static void demo_report(const struct demo *d)
{
	demo_print_header(d);
	demo_print_passes(d);
	demo_print_e2e(d);
	if (d->have_stats) {
		demo_print_counters(d);
		demo_print_paths(d);
	}
	demo_print_checks(d, demo_now_ns() - d->t_start);
}

static void demo_cleanup(void)
{
	demo_remove_files();
}

int ufvm_demo_main(const char *prog, int argc, char **argv)
{
	static bool atexit_done;
	struct demo *d;
	int ret, status = 1;

	d = calloc(1, sizeof(*d));
	if (!d) {
		fprintf(stderr, "%s: out of memory\n", prog);
		return 1;
	}
	d->prog = prog;
	d->fd = -1;
	d->size = DEMO_DEFAULT_SIZE;
	d->seed = 1;
	d->progress = isatty(STDERR_FILENO);
	d->psize = sysconf(_SC_PAGESIZE);
	d->t_start = demo_now_ns();

	ret = demo_parse_args(d, argc, argv);
	if (ret) {
		status = ret > 0 ? 0 : 2;
		goto out_free;
	}
	d->npages = d->size / (uint64_t)d->psize;
	d->words_per_page = (uint64_t)d->psize / sizeof(uint64_t);
	if (!d->touches)
		d->touches = d->npages / 8;
	if (d->touches > d->npages)
		d->touches = d->npages;

	ret = ufvm_config_init(&d->cfg);
	if (ret) {
		fprintf(stderr, "%s: bad ufvm configuration in the environment: %s\n", prog,
			ufvm_strerror(ret));
		status = 2;
		goto out_free;
	}

	if (!atexit_done) {
		atexit(demo_cleanup);
		atexit_done = true;
	}
	demo_install_signals();

	d->written = calloc(d->npages, 1);
	d->lat = calloc(d->touches, sizeof(*d->lat));
	if (!d->written || !d->lat || demo_make_order(d)) {
		fprintf(stderr, "%s: out of memory\n", prog);
		goto out;
	}
	demo_progress(d, "writing the store file");
	ret = demo_make_store(d);
	if (ret)
		goto out;

	ret = demo_run_ufvm(d);
	if (ret && !d->backend[0]) {
		/* ufvm did not start (-EPERM: the library has printed why and
		 * which sysctl to change): there is nothing to report. */
		goto out;
	}
	if (!ret)
		ret = demo_run_kernel(d);
	demo_current = "the report";

	demo_report(d);
	if (ret) {
		printf("\n%s: FAILED: %s\n", prog, ufvm_strerror(ret));
	} else if (d->errors) {
		printf("\n%s: FAILED: %" PRIu64 " word(s) differ from what they must be\n", prog,
		       d->errors);
	} else {
		printf("\n%s: all checks passed\n", prog);
		status = 0;
	}
out:
	if (d->keep && d->path[0] && d->fd >= 0) {
		printf("%s: store file kept: %s\n", prog, d->path);
		demo_cleanup_file[0] = 0;
		demo_cleanup_dir[0] = 0;
	}
	if (d->fd >= 0)
		close(d->fd);
	demo_remove_files();
	free(d->order);
	free(d->lat);
	free(d->written);
out_free:
	free(d);
	fflush(stdout);
	return status;
}
