// SPDX-License-Identifier: MIT
/*
 * preload/preload.c - the preload instance: its constructor, the real libc
 * functions, the bypass rules, the configuration, and the lazy start of
 * ufvm at the first managed mapping.
 *
 * Lock order: pl_lock -> ufvm's locks (ufvm_open, ufvm_file_open,
 * ufvm_map_file, ufvm_unmap are called with pl_lock held).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fnmatch.h>
#include <link.h>
#include <sys/resource.h>
#include <sys/syscall.h>

#include "preload/preload.h"

#define PL_X(fn) __typeof__(fn) *pl_real_##fn;
PL_REAL_FUNCS(PL_X)
#undef PL_X

int pl_state;
pthread_mutex_t pl_lock = PTHREAD_MUTEX_INITIALIZER;
struct ufvm *pl_vm;
bool pl_bounce;
bool pl_sigsegv;
bool pl_verbose;
unsigned int pl_teeth;
pid_t pl_pid;
__thread int pl_guard __attribute__((tls_model("initial-exec")));
__thread int pl_vforking __attribute__((tls_model("initial-exec")));
int pl_clones;

/* Code whose calls bypass the preload: ours (with ufvm's), liburcu, libsigsegv. */
#define PL_MAX_RANGES 16
static struct { uintptr_t lo, hi; } pl_ranges[PL_MAX_RANGES];	/* (c) */
static int pl_nranges;						/* (c) */

/* UFVM_MATCH, split at ':'; a leading '!' excludes. */
#define PL_DEFAULT_MATCH "*:!/dev/*:!/proc/*:!/sys/*:!/run/*"
static char *pl_globs[64];	/* (c) */
static int pl_nglobs;		/* (c) */

void *pl_dlsym(const char *name)
{
	void *p = dlsym(RTLD_NEXT, name);

	if (!p) {
		static const char msg[] = "ufvm-preload: a libc function is missing\n";
		ssize_t n = syscall(SYS_write, 2, msg, sizeof(msg) - 1);

		(void)n;
		abort();
	}
	return p;
}

bool pl_internal_caller(const void *ra)
{
	uintptr_t a = (uintptr_t)ra;
	int i;

	for (i = 0; i < pl_nranges; i++)
		if (a >= pl_ranges[i].lo && a < pl_ranges[i].hi)
			return true;
	return false;
}

static int pl_range_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
	const char *name = info->dlpi_name ? info->dlpi_name : "";
	uintptr_t self = (uintptr_t)arg;
	bool ours = false;
	int i;

	for (i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		uintptr_t lo = info->dlpi_addr + ph->p_vaddr;

		if (ph->p_type == PT_LOAD && self >= lo && self < lo + ph->p_memsz)
			ours = true;
	}
	if (!ours && !strstr(name, "liburcu") && !strstr(name, "libsigsegv"))
		return 0;
	for (i = 0; i < info->dlpi_phnum && pl_nranges < PL_MAX_RANGES; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];

		if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X))
			continue;
		pl_ranges[pl_nranges].lo = info->dlpi_addr + ph->p_vaddr;
		pl_ranges[pl_nranges].hi = info->dlpi_addr + ph->p_vaddr + ph->p_memsz;
		pl_nranges++;
	}
	return 0;
}

/* ---- messages ---- */

static void pl_vlog(const char *fmt, va_list ap)
{
	char buf[512];
	int n;

	n = snprintf(buf, sizeof(buf), "ufvm-preload[%d]: ", (int)getpid());
	n += vsnprintf(buf + n, sizeof(buf) - (size_t)n - 1, fmt, ap);
	if (n > (int)sizeof(buf) - 2)
		n = (int)sizeof(buf) - 2;
	buf[n++] = '\n';
	if (REAL(write)(2, buf, (size_t)n) < 0)
		return;
}

void pl_log(const char *fmt, ...)
{
	va_list ap;

	if (!pl_verbose)
		return;
	va_start(ap, fmt);
	pl_vlog(fmt, ap);
	va_end(ap);
}

/* One warning per process: the first reason ufvm was not used. */
void pl_warn_once(const char *fmt, ...)
{
	static int warned;
	va_list ap;

	if (__atomic_exchange_n(&warned, 1, __ATOMIC_RELAXED))
		return;
	va_start(ap, fmt);
	pl_vlog(fmt, ap);
	va_end(ap);
}

/* ---- configuration ---- */

static void pl_parse_match(void)
{
	const char *v = getenv("UFVM_MATCH");
	char *s, *tok, *save = NULL;

	if (!v || !*v)
		v = PL_DEFAULT_MATCH;
	s = strdup(v);
	if (!s)
		return;
	for (tok = strtok_r(s, ":", &save); tok && pl_nglobs < 64;
	     tok = strtok_r(NULL, ":", &save))
		pl_globs[pl_nglobs++] = tok;
}

/*
 * pl_match - is @path (absolute, as /proc/self/fd shows it) to be managed?
 * It must match one glob and no '!' glob; memfds and deleted files never
 * are (they are how processes share memory).
 */
bool pl_match(const char *path)
{
	size_t n = strlen(path);
	bool in = false;
	int i;

	if (path[0] != '/' || !strncmp(path, "/memfd:", 7) ||
	    (n > 10 && !strcmp(path + n - 10, " (deleted)")))
		return false;
	for (i = 0; i < pl_nglobs; i++) {
		const char *g = pl_globs[i];

		if (g[0] == '!') {
			if (!fnmatch(g + 1, path, 0))
				return false;
		} else if (!in && !fnmatch(g, path, 0)) {
			in = true;
		}
	}
	return in;
}

/* ---- the lock ---- */

/*
 * pl_lock and every other lock of the preload (the position locks of
 * io.c) are taken with pl_guard raised: a signal handler that interrupts
 * the thread while it holds one goes straight to libc instead of waiting
 * for a lock its own thread holds.
 */
void pl_lock_acquire(void)
{
	pl_guard++;
	pthread_mutex_lock(&pl_lock);
}

void pl_lock_release(void)
{
	struct pl_inode *dead = pl_inode_take_dead_locked();

	pthread_mutex_unlock(&pl_lock);
	pl_guard--;
	if (dead)
		pl_inode_reap(dead);
}

/* ---- starting ufvm ---- */

/*
 * The configuration (UFVM_*), read and checked at the first managed
 * mapping, not when the preload loads: every process under the preload
 * (a shell, each program it runs) loads it, and one that never maps a
 * managed file must cost nothing and say nothing, not even about a bad
 * value or an unknown variable (ufvm_config_init() prints those).  Read
 * once per process image: a fork child that starts ufvm again reuses it
 * (no getenv, no stdio in an atfork handler), and says nothing again.
 */
static struct ufvm_config pl_cfg;	/* (L) valid once pl_cfg_state is 1 */
static int pl_cfg_state;		/* (L) 0 not read, 1 good, -errno bad */

/*
 * pl_config_locked - the configuration, read the first time.
 * Context: pl_lock held.  Return: 0, or the -errno of ufvm_config_init()
 * (which said why on stderr, the first time only).
 */
static int pl_config_locked(void)
{
	if (!pl_cfg_state) {
		int err = ufvm_config_init(&pl_cfg);

		pl_cfg.stats_path[0] = '\0';	/* written by report.c, per process */
		pl_cfg_state = err ? err : 1;
	}
	return pl_cfg_state < 0 ? pl_cfg_state : 0;
}

/*
 * pl_start_locked - start ufvm for this process, once.
 * Context: pl_lock held.  Return: 0, or -errno (and the process runs
 * unmanaged from now on, after one warning).
 */
int pl_start_locked(void)
{
	int err;

	if (pl_vm)
		return 0;
	if (pl_state != PL_READY)
		return -ENODEV;
	err = pl_config_locked();
	if (err) {
		__atomic_store_n(&pl_state, PL_OFF, __ATOMIC_RELEASE);
		pl_warn_once("bad ufvm configuration: %s runs unmanaged",
			     program_invocation_short_name);
		return err;
	}
	pl_guard++;
	err = ufvm_open(&pl_cfg, &pl_vm);
	pl_guard--;
	if (err) {
		pl_vm = NULL;
		__atomic_store_n(&pl_state, PL_OFF, __ATOMIC_RELEASE);
		pl_warn_once("ufvm cannot start (%s): %s runs unmanaged, on the kernel's mappings",
			     ufvm_strerror(err), program_invocation_short_name);
		return err;
	}
	/*
	 * A system call cannot take a fault of the sigsegv backend nor of
	 * in-thread userfaultfd delivery (UFFD_FEATURE_SIGBUS): it fails with
	 * EFAULT.
	 */
	pl_sigsegv = !strcmp(ufvm_backend_name(pl_vm), "sigsegv");
	pl_bounce = strcmp(ufvm_backend_name(pl_vm), "uffd") != 0;
	__atomic_store_n(&pl_state, PL_RUNNING, __ATOMIC_RELEASE);
	pl_log("ufvm started (%s)", ufvm_preload_backend());
	return 0;
}

/*
 * ufvm_preload_managed - is @addr inside a mapping that ufvm serves?
 * For tests and curious programs (dlsym(RTLD_DEFAULT, ...)).
 * Return: 1 if managed, 0 if not.
 */
PL_EXPORT int ufvm_preload_managed(const void *addr)
{
	uintptr_t a = (uintptr_t)addr;
	int ret = 0;
	size_t i;

	if (__atomic_load_n(&pl_state, __ATOMIC_ACQUIRE) == PL_INIT)
		return 0;
	pl_guard++;
	pl_lock_acquire();
	for (i = 0; i < pl_nregions; i++)
		if (a >= pl_regions[i].start && a < pl_regions[i].end)
			ret = pl_regions[i].prot != PROT_NONE;
	pl_lock_release();
	pl_guard--;
	return ret;
}

/*
 * ufvm_preload_backend - "uffd", "uffd-inthread", "sigsegv", or "none"
 * (not started).
 */
PL_EXPORT const char *ufvm_preload_backend(void)
{
	if (__atomic_load_n(&pl_state, __ATOMIC_ACQUIRE) != PL_RUNNING)
		return "none";
	return pl_sigsegv ? "sigsegv" : pl_bounce ? "uffd-inthread" : "uffd";
}

__attribute__((constructor)) static void pl_init(void)
{
	const char *v;
	Dl_info di;
	int err;

#define PL_X(fn) pl_real_##fn = (__typeof__(fn) *)pl_dlsym(#fn);
	PL_REAL_FUNCS(PL_X)
#undef PL_X
	pl_pid = getpid();
	if (pl_proc_atfork())
		pl_warn_once("cannot register the fork handlers: a fork()ed child must not use ufvm");
	if (dladdr((void *)pl_init, &di))
		dl_iterate_phdr(pl_range_cb, (void *)pl_init);
	v = getenv("UFVM_PRELOAD_VERBOSE");
	pl_verbose = v && *v && strcmp(v, "0");
	v = getenv("UFVM_PRELOAD_TEETH");	/* tests only: a fixed bug back */
	pl_teeth = !v ? 0 : !strcmp(v, "fd-poslock") ? PL_TEETH_FD_POSLOCK :
		   !strcmp(v, "priv-late") ? PL_TEETH_PRIV_LATE : 0;
	pl_parse_match();
	err = pl_inode_init();
	if (!err)
		err = pl_proc_init();
	if (err) {
		pl_warn_once("cannot initialise (%s): %s runs unmanaged", strerror(-err),
			     program_invocation_short_name);
		__atomic_store_n(&pl_state, PL_OFF, __ATOMIC_RELEASE);
		return;
	}
	/*
	 * The UFVM_* knobs are not read here but at the first managed
	 * mapping (pl_config_locked).  What must be known before that stays
	 * here: UFVM_MATCH (which fds to track), UFVM_PRELOAD_VERBOSE, and
	 * the UFVM_* variables exec passes on (pl_proc_init); none prints.
	 */
	__atomic_store_n(&pl_state, PL_READY, __ATOMIC_RELEASE);
	pl_fd_track_inherited();
}

__attribute__((destructor)) static void pl_fini(void)
{
	if (__atomic_load_n(&pl_state, __ATOMIC_ACQUIRE) == PL_RUNNING)
		pl_proc_exit();
}
