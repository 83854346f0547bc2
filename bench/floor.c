// SPDX-License-Identifier: MIT
/*
 * bench/floor.c - `ufvm bench floor`: what a fault costs at the bottom, and
 * ufvm's fault path next to it, in one run on one machine.
 *
 * The floor is built from raw userfaultfd (bench/minor.c), with nothing of
 * ufvm:
 *  - a memfd whose pages all exist (written once), mapped MAP_SHARED and
 *    registered MINOR, so every first touch after MADV_DONTNEED is a minor
 *    userfault;
 *  - a minimal handler thread: blocking read() of one message, one
 *    UFFDIO_CONTINUE of the faulting page (or of its aligned 16-page
 *    window), nothing else; pinned to the faulting thread's CPU, or to the
 *    other one;
 *  - in-thread: UFFD_FEATURE_SIGBUS, the faulting thread's SIGBUS handler
 *    issues the CONTINUE itself;
 *  - the kernel's own fault: the same memfd mapped without userfaultfd
 *    (its fault-around maps several pages per fault), ns/page of a
 *    sequential scan.
 * Then ufvm, default settings, unpinned application thread: a cached
 * 1-page fault (only one page of each fault-around window is cached, so
 * the fault maps exactly one page: the same work as the 1-page floor),
 * timed by the application around the touch; and a sequential scan of a
 * cached file (ns/page), with the default window and larger ones.
 *
 * --backend picks the delivery backend of those ufvm runs; a backend that
 * serves faults in the faulting thread (sigsegv, or uffd with
 * UFVM_DELIVERY=inthread) is judged against the SIGBUS floor, the handler
 * delivery against the same-CPU one.  The modes table after them measures
 * every mode whatever --backend says.
 *
 * Faulting threads of the floor are pinned to CPU 0; the handler to CPU 0
 * ("same") or CPU 1 ("other").  Each figure is the median over --reps
 * passes of the per-pass p50 (latencies) or of the per-pass mean (ns/page).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "bench/bench.h"

static uint64_t fl_pages = 2048;	/* 1-page samples per pass */
static uint64_t fl_scan_pages = 16384;	/* sequential scans */
static uint64_t fl_window = 16;		/* the multi-page CONTINUE */
static const char *fl_backend;		/* ufvm's backend; NULL: UFVM_BACKEND */

static const struct bench_opt fl_opts[] = {
	{ "pages", BOPT_UINT, &fl_pages, NULL, "1-page faults timed per pass" },
	{ "scan-pages", BOPT_UINT, &fl_scan_pages, NULL,
	  "pages of the sequential scans (the file is this big)" },
	{ "window", BOPT_UINT, &fl_window, NULL, "pages per CONTINUE of the window floor" },
	{ "backend", BOPT_STR, &fl_backend, NULL,
	  "uffd, sigsegv or auto: the backend of ufvm's runs (the modes table measures "
	  "every mode); default UFVM_BACKEND, else auto" },
	{ NULL },
};

/* ---- the bare userfaultfd ---- */

/* CONTINUE the aligned @window-page run around @addr; EEXIST wakes. */
static int fl_continue(int uffd, char *base, uint64_t pages, uintptr_t addr,
		       uint64_t window)
{
	uint64_t idx = (addr - (uintptr_t)base) / BENCH_PAGE, first = idx - idx % window;
	uint64_t n = first + window > pages ? pages - first : window;

	if (idx >= pages) {	/* the stop page */
		first = idx;
		n = 1;
	}
	struct uffdio_continue c = {
		.range = { .start = (uintptr_t)base + first * BENCH_PAGE, .len = n * BENCH_PAGE },
	};

	if (!ioctl(uffd, UFFDIO_CONTINUE, &c))
		return 0;
	if (errno == EEXIST || errno == EAGAIN) {
		struct uffdio_range r = c.range;

		ioctl(uffd, UFFDIO_WAKE, &r);
		return 0;
	}
	return -errno;
}

/*
 * The bare UFFDIO_CONTINUE, with no fault waiting on it (so no wake-up):
 * the median time of one call mapping @window pages, over the area.
 */
static int fl_ioctl_cost(struct bench_minor *a, uint64_t window, double *ns)
{
	uint64_t n = a->pages / window, i, *t = bench_alloc_array(n, sizeof(uint64_t));
	int err = 0;

	if (!t)
		return -ENOMEM;
	madvise(a->map, a->pages * BENCH_PAGE, MADV_DONTNEED);
	for (i = 0; i < n && !err; i++) {
		struct uffdio_continue c = {
			.range = { .start = (uintptr_t)a->map + i * window * BENCH_PAGE,
				   .len = window * BENCH_PAGE },
		};
		uint64_t t0 = bench_now_ns();

		if (ioctl(a->uffd, UFFDIO_CONTINUE, &c))
			err = -errno;
		t[i] = bench_now_ns() - t0;
	}
	*ns = (double)bench_pctl(t, n, 0.5);
	free(t);
	return err;
}

struct fl_handler {
	struct bench_minor *a;
	uint64_t window;
	int cpu;
	uint64_t *ioctl_ns;		/* time of each CONTINUE */
	uint64_t n, cap;
	int err;
	pthread_t th;
};

/* The minimal handler: one blocking read, one CONTINUE, per fault. */
static void *fl_handler_main(void *arg)
{
	struct fl_handler *h = arg;
	struct uffd_msg msg;

	bench_pin_self(h->cpu, NULL);
	for (;;) {
		ssize_t r = read(h->a->uffd, &msg, sizeof(msg));
		uint64_t t0;
		int err;

		if (r != sizeof(msg)) {
			if (r < 0 && (errno == EINTR || errno == EAGAIN))
				continue;
			h->err = r < 0 ? -errno : -EIO;
			break;
		}
		if (msg.event != UFFD_EVENT_PAGEFAULT)
			continue;
		t0 = bench_now_ns();
		err = fl_continue(h->a->uffd, h->a->map, h->a->pages,
				  (uintptr_t)msg.arg.pagefault.address, h->window);
		t0 = bench_now_ns() - t0;
		if (err && !h->err)
			h->err = err;
		if ((uintptr_t)msg.arg.pagefault.address >=
		    (uintptr_t)h->a->map + h->a->pages * BENCH_PAGE)
			break;	/* the stop page: fl_handler_stop() */
		if (h->n < h->cap)
			h->ioctl_ns[h->n++] = t0;
	}
	return NULL;
}

static int fl_handler_start(struct fl_handler *h, struct bench_minor *a, uint64_t window,
			    int cpu, uint64_t cap)
{
	memset(h, 0, sizeof(*h));
	h->a = a;
	h->window = window;
	h->cpu = cpu;
	h->cap = cap;
	h->ioctl_ns = bench_alloc_array(cap, sizeof(uint64_t));
	if (!h->ioctl_ns)
		return -ENOMEM;
	return -pthread_create(&h->th, NULL, fl_handler_main, h);
}

/* Stop the handler: touch the stop page, which it serves last. */
static int fl_handler_stop(struct fl_handler *h)
{
	char *stop = h->a->map + h->a->pages * BENCH_PAGE;

	madvise(stop, BENCH_PAGE, MADV_DONTNEED);
	bench_touch(stop);
	pthread_join(h->th, NULL);
	free(h->ioctl_ns);
	return h->err;
}

/* ---- in-thread: SIGBUS ---- */

static struct bench_minor *fl_sig_area;
static uint64_t fl_sig_window;
static int fl_sig_err;

static void fl_sigbus(int sig, siginfo_t *si, void *uc)
{
	struct bench_minor *a = fl_sig_area;
	uintptr_t addr = (uintptr_t)si->si_addr;
	int saved = errno, err;

	if (!a || addr < (uintptr_t)a->map || addr >= (uintptr_t)a->map + a->pages * BENCH_PAGE) {
		signal(SIGBUS, SIG_DFL);	/* not ours: die of it */
		return;
	}
	err = fl_continue(a->uffd, a->map, a->pages, addr, fl_sig_window);
	if (err) {
		fl_sig_err = err;
		signal(SIGBUS, SIG_DFL);
	}
	errno = saved;
}

/* ---- one measurement of the floor ---- */

struct fl_result {
	double same_p50, same_p99, other_p50, other_p99, sigbus_p50, sigbus_p99;
	double ioctl_p50;	/* 1-page CONTINUE, no waiter */
	double ioctl16_p50;	/* --window pages */
	double handler_ioctl_p50;	/* 1-page CONTINUE in the same-CPU handler */
	double win_nspp, sigbus_win_nspp, kernel_nspp, kernel_faults_pp;
};

/* Scan @a with @window-page CONTINUEs from a handler on @hcpu. */
static int fl_handler_scan(struct bench_ctx *bx, struct bench_minor *a, const uint64_t *order,
			   uint64_t n, uint64_t window, int hcpu, struct bench_scan *s,
			   double *ioctl_p50)
{
	struct bench_vm bv = { .base = a->map, .pages = a->pages };
	struct fl_handler h;
	int err, e;

	err = fl_handler_start(&h, a, window, hcpu, n * bx->reps + 1);
	if (err)
		return err;
	err = bench_scan_reps(&bv, order, n, bx->reps, order != NULL, s);
	if (ioctl_p50)
		*ioctl_p50 = (double)bench_pctl(h.ioctl_ns, h.n, 0.5);
	e = fl_handler_stop(&h);
	return err ? err : e;
}

static int fl_sigbus_scan(struct bench_ctx *bx, int memfd, uint64_t pages,
			  const uint64_t *order, uint64_t n, uint64_t window,
			  struct bench_scan *s)
{
	struct sigaction sa = { .sa_sigaction = fl_sigbus, .sa_flags = SA_SIGINFO }, old;
	struct bench_minor a;
	struct bench_vm bv;
	int err;

	err = bench_minor_open(&a, memfd, pages, UFFD_FEATURE_MINOR_SHMEM | UFFD_FEATURE_SIGBUS);
	if (err)
		return err;
	fl_sig_area = &a;
	fl_sig_window = window;
	fl_sig_err = 0;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGBUS, &sa, &old);
	bv = (struct bench_vm){ .base = a.map, .pages = pages };
	err = bench_scan_reps(&bv, order, n, bx->reps, order != NULL, s);
	sigaction(SIGBUS, &old, NULL);
	fl_sig_area = NULL;
	bench_minor_close(&a);
	return err ? err : fl_sig_err;
}

static int fl_measure(struct bench_ctx *bx, struct fl_result *res)
{
	uint64_t npg = fl_pages, spg = fl_scan_pages, *order = NULL;
	struct bench_scan s;
	struct bench_minor a;
	struct bench_vm kv;
	cpu_set_t old;
	int memfd = -1, err;

	if (bench_ncpus() < 2) {
		fprintf(stderr, "ufvm bench floor: needs 2 CPUs (the other-CPU handler)\n");
		return -EOPNOTSUPP;
	}
	err = bench_memfd((spg > npg ? spg : npg) + 1, &memfd);	/* + the stop page */
	if (err)
		return err;
	order = bench_perm(npg, 1, 42);
	if (!order) {
		err = -ENOMEM;
		goto out;
	}
	bench_pin_self(0, &old);

	err = bench_minor_open(&a, memfd, npg, UFFD_FEATURE_MINOR_SHMEM);
	if (err)
		goto out_unpin;
	err = fl_ioctl_cost(&a, 1, &res->ioctl_p50);
	if (!err)
		err = fl_ioctl_cost(&a, fl_window, &res->ioctl16_p50);
	if (!err)
		err = fl_handler_scan(bx, &a, order, npg, 1, 0, &s, &res->handler_ioctl_p50);
	res->same_p50 = s.p50_ns;
	res->same_p99 = s.p99_ns;
	if (!err)
		err = fl_handler_scan(bx, &a, order, npg, 1, 1, &s, NULL);
	res->other_p50 = s.p50_ns;
	res->other_p99 = s.p99_ns;
	bench_minor_close(&a);
	if (err)
		goto out_unpin;

	err = bench_minor_open(&a, memfd, spg, UFFD_FEATURE_MINOR_SHMEM);
	if (err)
		goto out_unpin;
	err = fl_handler_scan(bx, &a, NULL, spg, fl_window, 0, &s, NULL);
	res->win_nspp = s.ns_per_page;
	bench_minor_close(&a);
	if (err)
		goto out_unpin;

	err = fl_sigbus_scan(bx, memfd, npg, order, npg, 1, &s);
	res->sigbus_p50 = s.p50_ns;
	res->sigbus_p99 = s.p99_ns;
	if (!err)
		err = fl_sigbus_scan(bx, memfd, spg, NULL, spg, fl_window, &s);
	res->sigbus_win_nspp = s.ns_per_page;
	if (err)
		goto out_unpin;

	err = bench_vm_kernel(&kv, memfd, spg);
	if (err)
		goto out_unpin;
	err = bench_scan_reps(&kv, NULL, spg, bx->reps, false, &s);
	res->kernel_nspp = s.ns_per_page;
	res->kernel_faults_pp = s.faults_per_page;
	bench_vm_close(&kv);
out_unpin:
	bench_unpin_self(&old);
out:
	if (err)
		fprintf(stderr, "ufvm bench floor: the bare userfaultfd floor failed: %s\n",
			strerror(-err));
	free(order);
	close(memfd);
	return err;
}

/* ---- ufvm on the same workloads ---- */

struct fl_ufvm {
	double cached_p50, cached_p90, cached_p99;	/* application side */
	double service_p50;				/* pager side, same faults */
	double own_p50;					/* the same minus the install call */
	double seq_nspp, seq_fpp;
	double meta_per_page;
};

/*
 * Cached 1-page faults: only every window-th page is cached, so each fault
 * maps exactly its own page.  Then the whole file cached: sequential scan.
 */
static int fl_ufvm_run(struct bench_ctx *bx, const struct ufvm_config *cfg,
		       const char *path, const char *embed, struct fl_ufvm *out)
{
	uint64_t stride = cfg->fault_around ? cfg->fault_around : 1;
	uint64_t n = fl_scan_pages / stride, *order;
	struct ufvm_stats st;
	struct bench_scan s;
	struct bench_vm bv;
	int err;

	memset(out, 0, sizeof(*out));
	if (!n)
		return -EINVAL;
	order = bench_perm(n, stride, 7);
	if (!order)
		return -ENOMEM;
	err = bench_vm_open(&bv, cfg, path, fl_scan_pages);
	if (err)
		goto out;
	err = bench_cache_fill(bv.f, 0, n, stride);
	if (!err)
		err = bench_scan_reps(&bv, order, n, bx->reps, true, &s);
	if (err)
		goto out_close;
	out->cached_p50 = s.p50_ns;
	out->cached_p90 = s.p90_ns;
	out->cached_p99 = s.p99_ns;
	err = ufvm_stats(bv.vm, &st);
	if (err)
		goto out_close;
	out->service_p50 = (double)(st.latency[UFVM_PATH_SPEC].count >=
				    st.latency[UFVM_PATH_MINOR].count ?
				    st.latency[UFVM_PATH_SPEC].p50_ns :
				    st.latency[UFVM_PATH_MINOR].p50_ns);
	out->own_p50 = (double)st.own.p50_ns;
	err = bench_cache_fill(bv.f, 0, fl_scan_pages, 1);
	if (!err)
		err = bench_scan_reps(&bv, NULL, fl_scan_pages, bx->reps, false, &s);
	if (err)
		goto out_close;
	out->seq_nspp = s.ns_per_page;
	out->seq_fpp = s.faults_per_page;
	if (!ufvm_stats(bv.vm, &st) && st.cached_pages)
		out->meta_per_page = (double)st.meta_bytes / (double)st.cached_pages;
	if (embed)
		bench_embed_stats(bx, embed, bv.vm);
out_close:
	bench_vm_close(&bv);
out:
	free(order);
	return err;
}

/* Sequential ns/page of a cached file with a @window-page fault-around. */
static int fl_ufvm_seq(struct bench_ctx *bx, const struct ufvm_config *base,
		       const char *path, unsigned int window, double *nspp)
{
	struct ufvm_config cfg = *base;
	struct bench_scan s;
	struct bench_vm bv;
	int err;

	cfg.fault_around = window;
	err = bench_vm_open_cached(&bv, &cfg, path, fl_scan_pages);
	if (err)
		return err;
	err = bench_scan_reps(&bv, NULL, fl_scan_pages, bx->reps, false, &s);
	*nspp = s.ns_per_page;
	bench_vm_close(&bv);
	return err;
}

/*
 * Delivery modes measured beside the default configuration; @inthread: the
 * faulting thread serves its own fault (compared with the SIGBUS floor).
 */
static const struct {
	const char *name;
	unsigned int backend, delivery;
	bool inthread;
} fl_modes[] = {
	{ "uffd", UFVM_BACKEND_UFFD, UFVM_DELIVERY_HANDLER, false },
	{ "uffd-inthread", UFVM_BACKEND_UFFD, UFVM_DELIVERY_INTHREAD, true },
	{ "sigsegv", UFVM_BACKEND_SIGSEGV, UFVM_DELIVERY_HANDLER, true },
};

static const unsigned int fl_best_windows[] = { 64, 256 };

#define FL_MAX_REPS 16

/* Medians, field by field, of @n structs of @nf doubles each. */
static void fl_median_fields(double *out, const double *in, size_t nf, unsigned int n)
{
	double v[FL_MAX_REPS];
	unsigned int r;
	size_t f;

	for (f = 0; f < nf; f++) {
		for (r = 0; r < n; r++)
			v[r] = in[r * nf + f];
		out[f] = bench_median(v, n);
	}
}

static int fl_check(const struct bench_ctx *bx)
{
	if (bench_check_range("floor", "reps", bx->reps, 1, FL_MAX_REPS) ||
	    bench_check_range("floor", "pages", fl_pages, 16, BENCH_PAGES_MAX) ||
	    bench_check_range("floor", "scan-pages", fl_scan_pages, 256, BENCH_PAGES_MAX) ||
	    bench_check_range("floor", "window", fl_window, 1, 256))
		return -EINVAL;
	if (fl_window > fl_pages) {	/* its ioctl cost is timed over --pages pages */
		fprintf(stderr, "ufvm bench floor: --window %llu: at most --pages (%llu)\n",
			(unsigned long long)fl_window, (unsigned long long)fl_pages);
		return -EINVAL;
	}
	return bench_check_backend(fl_backend, "floor");
}

static int fl_run(struct bench_ctx *bx)
{
	unsigned int reps = bx->reps;	/* at most FL_MAX_REPS: fl_check() */
	struct fl_result fr = { 0 }, frs[FL_MAX_REPS];
	struct fl_ufvm u = { 0 }, us[FL_MAX_REPS];
	double rc[FL_MAX_REPS], rcs[FL_MAX_REPS], rs[FL_MAX_REPS], ratio_cached, ratio_seq;
	double ratio_cached_sig, ratio_mine;
	struct bench_ctx one = *bx;
	struct jw *w = bx->jw;
	struct ufvm_config cfg;
	char path[4096], b1[32], b2[32];
	double best = 0, nspp, best_in = 0;
	const char *best_in_name = NULL, *floor_name;
	unsigned int best_w = 0, i, r;
	bool inthread;
	int err;

	err = bench_config(&cfg);
	if (!err)
		err = bench_set_backend(&cfg, fl_backend, "floor");
	if (err)
		return err;
	inthread = bench_backend_inthread(&cfg);
	floor_name = inthread ? "SIGBUS" : "same-CPU";
	err = bench_file_create(bx, "floor", fl_scan_pages, false, path, sizeof(path));
	if (err) {
		fprintf(stderr, "ufvm bench floor: store file: %s\n", strerror(-err));
		return err;
	}
	/*
	 * The floor and ufvm side by side: --reps rounds of one pass each,
	 * so that a change of load on the machine moves both.
	 */
	one.reps = 1;
	for (r = 0; r < reps && !err; r++) {
		err = fl_measure(&one, &frs[r]);
		if (!err)
			err = fl_ufvm_run(&one, &cfg, path, r == reps - 1 ? "stats" : NULL, &us[r]);
		rc[r] = us[r].cached_p50 / frs[r].same_p50;
		rcs[r] = us[r].cached_p50 / frs[r].sigbus_p50;
		rs[r] = us[r].seq_nspp / frs[r].kernel_nspp;
	}
	if (err)
		goto out;
	fl_median_fields((double *)&fr, (const double *)frs, sizeof(fr) / sizeof(double), reps);
	fl_median_fields((double *)&u, (const double *)us, sizeof(u) / sizeof(double), reps);
	ratio_cached = bench_median(rc, reps);		/* issue 4: the same-CPU floor */
	ratio_cached_sig = bench_median(rcs, reps);
	ratio_mine = inthread ? ratio_cached_sig : ratio_cached;	/* its delivery's floor */
	ratio_seq = bench_median(rs, reps);
	best = u.seq_nspp;
	best_w = cfg.fault_around;
	for (i = 0; i < sizeof(fl_best_windows) / sizeof(fl_best_windows[0]); i++) {
		err = fl_ufvm_seq(bx, &cfg, path, fl_best_windows[i], &nspp);
		if (err)
			goto out;
		if (nspp < best) {
			best = nspp;
			best_w = fl_best_windows[i];
		}
	}

	fprintf(bx->out, "the floor (raw userfaultfd, faulting thread on CPU 0); medians of %u "
		"rounds, each the floor then ufvm:\n", reps);
	fprintf(bx->out, "  %-46s %10s %10s\n", "", "p50", "p99");
	fprintf(bx->out, "  %-46s %10s %10s\n", "1-page fault, handler on the same CPU",
		bench_fmt_ns(b1, sizeof(b1), fr.same_p50), bench_fmt_ns(b2, sizeof(b2), fr.same_p99));
	fprintf(bx->out, "  %-46s %10s %10s\n", "1-page fault, handler on the other CPU",
		bench_fmt_ns(b1, sizeof(b1), fr.other_p50), bench_fmt_ns(b2, sizeof(b2), fr.other_p99));
	fprintf(bx->out, "  %-46s %10s %10s\n", "1-page fault, in-thread (SIGBUS handler)",
		bench_fmt_ns(b1, sizeof(b1), fr.sigbus_p50), bench_fmt_ns(b2, sizeof(b2), fr.sigbus_p99));
	fprintf(bx->out, "  %-46s %10s\n", "UFFDIO_CONTINUE of 1 page, nobody waiting",
		bench_fmt_ns(b1, sizeof(b1), fr.ioctl_p50));
	fprintf(bx->out, "  %-46s %10s\n", "UFFDIO_CONTINUE of --window pages, nobody waiting",
		bench_fmt_ns(b1, sizeof(b1), fr.ioctl16_p50));
	fprintf(bx->out, "  %-46s %10s\n", "  the 1-page CONTINUE in the same-CPU handler",
		bench_fmt_ns(b1, sizeof(b1), fr.handler_ioctl_p50));
	fprintf(bx->out, "  sequential scan of %llu pages, ns/page:\n",
		(unsigned long long)fl_scan_pages);
	fprintf(bx->out, "  %-46s %10.0f\n", "handler, same CPU, windows of --window pages",
		fr.win_nspp);
	fprintf(bx->out, "  %-46s %10.0f\n", "in-thread, windows of --window pages",
		fr.sigbus_win_nspp);
	fprintf(bx->out, "  %-46s %10.0f   (%.3f faults/page)\n", "the kernel's memfd mmap fault",
		fr.kernel_nspp, fr.kernel_faults_pp);

	jw_u64(w, "pages", fl_pages);
	jw_u64(w, "scan_pages", fl_scan_pages);
	jw_u64(w, "window", fl_window);
	jw_str(w, "backend", bench_backend_name(&cfg));
	jw_str(w, "cached_floor", inthread ? "sigbus" : "same-cpu");
	jw_num(w, "floor_same_cpu_ns", fr.same_p50);
	jw_num(w, "floor_same_cpu_p99_ns", fr.same_p99);
	jw_num(w, "floor_other_cpu_ns", fr.other_p50);
	jw_num(w, "floor_other_cpu_p99_ns", fr.other_p99);
	jw_num(w, "floor_sigbus_ns", fr.sigbus_p50);
	jw_num(w, "floor_sigbus_p99_ns", fr.sigbus_p99);
	jw_num(w, "floor_continue_ioctl_ns", fr.ioctl_p50);
	jw_num(w, "floor_continue16_ioctl_ns", fr.ioctl16_p50);
	jw_num(w, "floor_handler_continue_ns", fr.handler_ioctl_p50);
	jw_num(w, "floor16_ns_per_page", fr.win_nspp);
	jw_num(w, "floor_sigbus16_ns_per_page", fr.sigbus_win_nspp);
	jw_num(w, "kernel_ns_per_page", fr.kernel_nspp);
	jw_num(w, "kernel_faults_per_page", fr.kernel_faults_pp);
	jw_num(w, "ufvm_cached_fault_ns", u.cached_p50);
	jw_num(w, "ufvm_cached_fault_p90_ns", u.cached_p90);
	jw_num(w, "ufvm_cached_fault_p99_ns", u.cached_p99);
	jw_num(w, "ufvm_service_p50_ns", u.service_p50);
	/*
	 * Issue 4's overhead above the ioctl: ufvm's own time, each fault's
	 * service time minus its own install call (which wakes the faulting
	 * thread: more than the idle ioctl), measured per fault.
	 */
	jw_num(w, "ufvm_overhead_ns", u.own_p50);
	jw_num(w, "ufvm_service_minus_idle_ioctl_ns", u.service_p50 - fr.ioctl_p50);
	jw_num(w, "ufvm_seq_ns_per_page", u.seq_nspp);
	jw_num(w, "ufvm_seq_faults_per_page", u.seq_fpp);
	jw_u64(w, "ufvm_seq_best_window", best_w);
	jw_num(w, "ufvm_seq_best_ns_per_page", best);
	jw_num(w, "ufvm_meta_bytes_per_page", u.meta_per_page);
	jw_num(w, "ratio_cached_to_floor", ratio_cached);
	jw_num(w, "ratio_cached_to_sigbus_floor", ratio_cached_sig);
	jw_num(w, "ratio_seq_to_kernel", ratio_seq);
	jw_num(w, "ratio_best_seq_to_kernel", best / fr.kernel_nspp);

	fprintf(bx->out, "\nufvm, backend %s, default settings (fault-around %u), unpinned "
		"application thread:\n", bench_backend_name(&cfg), cfg.fault_around);
	fprintf(bx->out, "  %-46s %10s %10s\n", "cached 1-page fault (application side)",
		bench_fmt_ns(b1, sizeof(b1), u.cached_p50), bench_fmt_ns(b2, sizeof(b2), u.cached_p99));
	fprintf(bx->out, "  %-46s %10s   (%.0f ns above the idle ioctl)\n",
		"  pager-side service time of those faults",
		bench_fmt_ns(b1, sizeof(b1), u.service_p50), u.service_p50 - fr.ioctl_p50);
	fprintf(bx->out, "  %-46s %10s\n", "    ufvm's own: minus each one's install call",
		bench_fmt_ns(b1, sizeof(b1), u.own_p50));
	fprintf(bx->out, "  %-46s %10.0f   (%.3f faults/page)\n", "sequential scan, ns/page",
		u.seq_nspp, u.seq_fpp);
	fprintf(bx->out, "  %-46s %10.0f   (window %u)\n", "best window's sequential ns/page",
		best, best_w);
	fprintf(bx->out, "  %-46s %10.1f\n", "metadata bytes per cached page", u.meta_per_page);

	jw_obj(w, "modes");
	fprintf(bx->out, "\ndelivery modes (cached 1-page fault p50, sequential ns/page):\n");
	for (i = 0; i < sizeof(fl_modes) / sizeof(fl_modes[0]); i++) {
		struct ufvm_config mc = cfg;
		struct ufvm *probe;
		struct fl_ufvm m;
		int e;

		mc.backend = fl_modes[i].backend;
		mc.delivery = fl_modes[i].delivery;
		jw_obj(w, fl_modes[i].name);
		e = ufvm_open(&mc, &probe);	/* is the mode built here? */
		if (!e) {
			ufvm_close(probe);
			e = fl_ufvm_run(bx, &mc, path, NULL, &m);
		}
		jw_bool(w, "available", !e);
		if (e) {
			jw_str(w, "error", ufvm_strerror(e));
			fprintf(bx->out, "  %-13s not available: %s\n", fl_modes[i].name,
				ufvm_strerror(e));
		} else {
			jw_num(w, "cached_fault_ns", m.cached_p50);
			jw_num(w, "cached_fault_p99_ns", m.cached_p99);
			jw_num(w, "service_p50_ns", m.service_p50);
			jw_num(w, "own_p50_ns", m.own_p50);
			jw_num(w, "seq_ns_per_page", m.seq_nspp);
			jw_num(w, "ratio_cached_to_floor", m.cached_p50 / fr.same_p50);
			jw_num(w, "ratio_cached_to_sigbus_floor", m.cached_p50 / fr.sigbus_p50);
			jw_num(w, "ratio_seq_to_kernel", m.seq_nspp / fr.kernel_nspp);
			fprintf(bx->out, "  %-13s %10s  %6.0f ns/page  (%.2fx the %s floor, "
				"%.2fx the kernel)\n", fl_modes[i].name,
				bench_fmt_ns(b1, sizeof(b1), m.cached_p50), m.seq_nspp,
				m.cached_p50 / (fl_modes[i].inthread ? fr.sigbus_p50 : fr.same_p50),
				fl_modes[i].inthread ? "SIGBUS" : "same-CPU",
				m.seq_nspp / fr.kernel_nspp);
			if (fl_modes[i].inthread && (!best_in || m.cached_p50 < best_in)) {
				best_in = m.cached_p50;
				best_in_name = fl_modes[i].name;
			}
		}
		jw_end(w, '}');
	}
	jw_end(w, '}');

	jw_obj(w, "targets");
	jw_num(w, "cached_ratio_to_its_floor", ratio_mine);	/* cached_floor names it */
	jw_bool(w, "cached_le_1.25x_floor", ratio_mine <= 1.25);
	jw_bool(w, "seq_le_2x_kernel", ratio_seq <= 2);
	jw_bool(w, "best_seq_le_1x_kernel", best <= fr.kernel_nspp);
	jw_bool(w, "overhead_le_1us", u.own_p50 <= 1000);
	jw_bool(w, "meta_le_64B_per_page", u.meta_per_page <= 64);
	if (best_in_name) {
		jw_str(w, "inthread_mode", best_in_name);
		jw_num(w, "inthread_ratio_to_sigbus_floor", best_in / fr.sigbus_p50);
		jw_bool(w, "inthread_le_1.25x_sigbus_floor", best_in <= 1.25 * fr.sigbus_p50);
	}
	jw_end(w, '}');

	fprintf(bx->out, "\ntargets (issue 4%s):\n"
		"  cached fault p50 <= 1.25 x %s floor: %*s%.2fx  %s\n"
		"  sequential ns/page <= 2 x kernel:           %.2fx  %s\n"
		"  best window ns/page <= 1 x kernel:          %.2fx  %s\n"
		"  ufvm's own time above the ioctl <= 1 us:    %.0f ns  %s\n"
		"  metadata per cached page <= 64 bytes:       %.1f  %s\n",
		cfg.backend == UFVM_BACKEND_SIGSEGV ?
		", set for userfaultfd; here on the sigsegv backend" : "",
		floor_name, inthread ? 2 : 0, "", ratio_mine,
		ratio_mine <= 1.25 ? "met" : "MISSED",
		ratio_seq, ratio_seq <= 2 ? "met" : "MISSED",
		best / fr.kernel_nspp, best <= fr.kernel_nspp ? "met" : "MISSED",
		u.own_p50, u.own_p50 <= 1000 ? "met" : "MISSED",
		u.meta_per_page, u.meta_per_page <= 64 ? "met" : "MISSED");
	if (best_in_name)
		fprintf(bx->out, "  in-thread (%s) p50 <= 1.25 x SIGBUS floor: %.2fx  %s\n",
			best_in_name, best_in / fr.sigbus_p50,
			best_in <= 1.25 * fr.sigbus_p50 ? "met" : "MISSED");
out:
	bench_file_remove(path);
	return err;
}

const struct bench_def bench_floor = {
	.name = "floor",
	.summary = "the bare userfaultfd and kernel fault costs, and ufvm's beside them",
	.opts = fl_opts,
	.check = fl_check,
	.run = fl_run,
	.in_all = true,
};
