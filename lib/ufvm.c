// SPDX-License-Identifier: MIT
/*
 * lib/ufvm.c - the public interface (include/ufvm.h) over vm/ and pager/.
 *
 * Lock order here: registry -> mmap_lock -> (vm/ and pager/ locks).
 * The registry lock guards the list of objects and of open files; an
 * object's last reference is dropped, and the object written back and
 * destroyed, under it, so that a concurrent open of the same file cannot
 * build a second cache that reads the store before the first has written
 * it back.  A reference may be taken without the registry lock by one who
 * already holds one (a region does).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ufvm.h>

#include "lib/internal.h"
#include "pager/pager.h"
#include "vm/aspace.h"
#include "vm/cache.h"
#include "vm/object.h"
#include "vm/policy.h"
#include "vm/region.h"
#include "vm/stats.h"

struct ufvm {
	struct ufvm_config cfg;		/* (c) */
	struct vm_policy pol;		/* (c) */
	struct vm_stats_set stats;
	struct vm_cache cache;
	struct vm_aspace as;
	struct pager_backend *be;	/* (c) */
	struct pager_backend *tick_be;	/* (a) be, once made: for tick_hook() */
	struct vm_mutex registry;
	struct cds_list_head objects;	/* (registry) */
	struct cds_list_head files;	/* (registry) */
	int late_err;			/* (a) first error of a final put inside ufvm */
	struct vm_fork_id made_by;	/* (c) the process that opened it */
	FILE *stats_file;		/* (c) cfg.stats_path, opened at ufvm_open */
	bool stats_made;		/* (c) ufvm_open created it */
	char stats_name[PATH_MAX];	/* (c) its name, "%p" expanded */
	struct vm_object **bg_objs;	/* the background thread's: for_each_object() */
	size_t bg_cap;
};

struct ufvm_file {
	struct ufvm *vm;		/* (c) */
	struct vm_object *obj;		/* (c) holds a reference */
	bool writable;			/* (c) */
	struct cds_list_head node;	/* (registry) */
};

/*
 * NOCANCEL(vm, call): @call with the calling thread's cancellation disabled,
 * its value the call's.  ufvm's calls are no cancellation points: a
 * deferred cancel acted on at a store read, an rwsem's wait or a file's
 * open inside would unwind with a page lock, mmap_lock or the registry
 * held, and the next access to them would hang.  (A system call, too,
 * finishes or backs out before a cancel is acted on.)  A pending cancel
 * is acted on at the caller's next cancellation point.  The faults that
 * a thread serves itself (in-thread delivery, the sigsegv backend) are
 * covered in pager/.  UFVM_DEBUG_CANCEL_INSIDE (tests) leaves the state
 * alone.
 */
#define NOCANCEL(vm, call) ({						\
	bool keep_ = (vm) && ((vm)->pol.debug & UFVM_DEBUG_CANCEL_INSIDE);	\
	int cs_ = 0;							\
	if (!keep_)							\
		pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &cs_);	\
	__typeof__(call) r_ = (call);					\
	if (!keep_)							\
		pthread_setcancelstate(cs_, NULL);			\
	r_;								\
})

static const char *const counter_names[UFVM_CTR__COUNT] = {
	[UFVM_CTR_FAULTS] = "faults",
	[UFVM_CTR_SPEC_HIT] = "spec_hit",
	[UFVM_CTR_SPEC_FALLBACK_NOREGION] = "spec_fallback_noregion",
	[UFVM_CTR_SPEC_FALLBACK_NOPAGE] = "spec_fallback_nopage",
	[UFVM_CTR_SPEC_FALLBACK_LOCKED] = "spec_fallback_locked",
	[UFVM_CTR_SPEC_FALLBACK_NOTUPTODATE] = "spec_fallback_notuptodate",
	[UFVM_CTR_SPEC_FALLBACK_SEQ] = "spec_fallback_seq",
	[UFVM_CTR_SPEC_FALLBACK_SIZE] = "spec_fallback_size",
	[UFVM_CTR_SPEC_FALLBACK_WRITE] = "spec_fallback_write",
	[UFVM_CTR_MINOR] = "minor",
	[UFVM_CTR_MAJOR] = "major",
	[UFVM_CTR_RETRY] = "retry",
	[UFVM_CTR_MKWRITE] = "mkwrite",
	[UFVM_CTR_SIGBUS] = "sigbus",
	[UFVM_CTR_FAULTAROUND] = "faultaround",
	[UFVM_CTR_FAULTAROUND_PAGES] = "faultaround_pages",
	[UFVM_CTR_EEXIST] = "eexist",
	[UFVM_CTR_EAGAIN] = "eagain",
	[UFVM_CTR_DUP] = "dup",
	[UFVM_CTR_NOREGION] = "noregion",
	[UFVM_CTR_STORE_READS] = "store_reads",
	[UFVM_CTR_STORE_READ_PAGES] = "store_read_pages",
	[UFVM_CTR_STORE_WRITES] = "store_writes",
	[UFVM_CTR_STORE_WRITE_PAGES] = "store_write_pages",
	[UFVM_CTR_STORE_ERRORS] = "store_errors",
	[UFVM_CTR_PAGES_INVALIDATED] = "pages_invalidated",
	[UFVM_CTR_ZAPS] = "zaps",
	[UFVM_CTR_INSTALL_ERRORS] = "install_errors",
	[UFVM_CTR_EVICTIONS] = "evictions",
	[UFVM_CTR_EVICT_WRITEBACK] = "evict_writeback",
	[UFVM_CTR_RECLAIM_ZAPS] = "reclaim_zaps",
	[UFVM_CTR_DIRECT_RECLAIM] = "direct_reclaim",
	[UFVM_CTR_READAHEAD_PAGES] = "readahead_pages",
	[UFVM_CTR_READAHEAD_ASYNC] = "readahead_async",
	[UFVM_CTR_FLUSH_PAGES] = "flush_pages",
	[UFVM_CTR_NOROOM] = "noroom",
	[UFVM_CTR_FILL_MAPPED] = "fill_mapped",
	[UFVM_CTR_FILL_WAITS] = "fill_waits",
	[UFVM_CTR_HANDLER_PARKS] = "handler_parks",
	[UFVM_CTR_HANDLER_UNPARKS] = "handler_unparks",
	[UFVM_CTR_INSTALL_SPLITS] = "install_splits",
	[UFVM_CTR_INSTALLER_PAGES] = "installer_pages",
	[UFVM_CTR_WRITEAHEAD_PAGES] = "writeahead_pages",
};

static const char *const path_names[UFVM_PATH__COUNT] = {
	[UFVM_PATH_SPEC] = "spec",
	[UFVM_PATH_MINOR] = "minor",
	[UFVM_PATH_MAJOR] = "major",
	[UFVM_PATH_MKWRITE] = "mkwrite",
	[UFVM_PATH_RETRY] = "retry",
	[UFVM_PATH_SIGBUS] = "sigbus",
};

const char *ufvm_counter_name(unsigned int c)
{
	return c < UFVM_CTR__COUNT ? counter_names[c] : NULL;
}

const char *ufvm_path_name(unsigned int p)
{
	return p < UFVM_PATH__COUNT ? path_names[p] : NULL;
}

const char *ufvm_strerror(int err)
{
	switch (err) {
	case -EPERM:
		return "userfaultfd not permitted (see vm.unprivileged_userfaultfd)";
	case -EOPNOTSUPP:
		return "the kernel lacks a userfaultfd feature ufvm needs";
	case -EFBIG:
		return "file too large for ufvm's frame reservation";
	default:
		return strerror(err < 0 ? -err : err);
	}
}

int ufvm_config_init(struct ufvm_config *cfg)
{
	if (!cfg)
		return -EINVAL;
	return vm_policy_config_init(cfg);
}

int ufvm_config_check(const struct ufvm_config *cfg, const char **why)
{
	struct ufvm_config dcfg;
	const char *bad;

	if (!cfg) {	/* ufvm_open(NULL)'s: the defaults and the environment */
		if (ufvm_config_init(&dcfg)) {
			if (why)
				*why = "the UFVM_* environment (see the message on stderr)";
			return -EINVAL;
		}
		cfg = &dcfg;
	}
	bad = vm_policy_check(cfg);
	if (why)
		*why = bad;
	return bad ? -EINVAL : 0;
}

int ufvm_parse_size(const char *s, uint64_t unit, uint64_t *out)
{
	return vm_policy_parse_size(s, unit, out);
}

static int object_put(struct ufvm *vm, struct vm_object *obj);

/*
 * A thread of ufvm (the background thread, a readahead) drops its
 * reference.  Should that be the last one, the object's last user has
 * already flushed it (object_put_user()); an error of the final write-back
 * is kept for ufvm_close() to report, not dropped.
 */
static void keep_late_error(struct ufvm *vm, int err)
{
	int zero = 0;

	__atomic_compare_exchange_n(&vm->late_err, &zero, err, false,
				    __ATOMIC_RELAXED, __ATOMIC_RELAXED);
}

static void object_put_internal(struct ufvm *vm, struct vm_object *obj)
{
	int err = object_put(vm, obj);

	if (err)
		keep_late_error(vm, err);
}

/*
 * For the cache's background thread: every open object, pinned.  The
 * array is kept from pass to pass (only that thread calls this), so a
 * pass allocates only when the objects outgrew every earlier one; if that
 * fails, the objects past the array wait for the next pass.
 */
static void for_each_object(void *arg, void (*fn)(struct vm_object *, void *), void *fnarg)
{
	struct ufvm *vm = arg;
	struct vm_object *obj;
	size_t n = 0, i;

	vm_mutex_lock(&vm->registry);
	cds_list_for_each_entry(obj, &vm->objects, node) {
		if (n == vm->bg_cap) {
			size_t cap = vm->bg_cap * 2 + 8;
			struct vm_object **no = realloc(vm->bg_objs, cap * sizeof(*no));

			if (!no)
				break;
			vm->bg_objs = no;
			vm->bg_cap = cap;
		}
		vm_object_get_ref(obj);
		vm->bg_objs[n++] = obj;
	}
	vm_mutex_unlock(&vm->registry);
	for (i = 0; i < n; i++) {
		fn(vm->bg_objs[i], fnarg);
		object_put_internal(vm, vm->bg_objs[i]);
	}
}

static void put_object_hook(void *arg, struct vm_object *obj)
{
	object_put_internal(arg, obj);
}

static int zap(struct ufvm *vm, void *addr, size_t length);

/*
 * The background thread's round: zap the addresses the backend poisoned
 * PAGER_POISON_HOLD_NS ago or more (pager/uffd.c, u_poison()), so that
 * their next access faults and tries the store again.  Whatever region is
 * there now is zapped: a zap only makes its pages fault again.
 * Context: the background thread; no lock held; takes mmap_lock shared.
 */
static void tick_hook(void *arg)
{
	struct ufvm *vm = arg;
	struct pager_backend *be = __atomic_load_n(&vm->tick_be, __ATOMIC_ACQUIRE);
	uintptr_t due[16];
	unsigned int n, i;

	if (!be || !be->poisons_due)
		return;
	do {
		n = be->poisons_due(be, due, ARRAY_SIZE(due));
		for (i = 0; i < n; i++)
			zap(vm, (void *)due[i], PAGE_SIZE);	/* -ENOMEM: unmapped since */
	} while (n == ARRAY_SIZE(due));
}

int ufvm__expand_pid(const char *tmpl, char *out, size_t len)
{
	char pid[16];
	size_t n = 0, plen = (size_t)snprintf(pid, sizeof(pid), "%d", (int)getpid());
	const char *p;

	for (p = tmpl; *p; p++) {
		const char *piece = p;
		size_t k = 1;

		if (p[0] == '%' && p[1] == 'p') {
			piece = pid;
			k = plen;
			p++;
		}
		if (n + k >= len)
			return -ENAMETOOLONG;
		memcpy(out + n, piece, k);
		n += k;
	}
	out[n] = '\0';
	return 0;
}

/* Write @text[len] to @f and flush it.  Return: 0 or -errno (-EIO if none said). */
static int stream_write(FILE *f, const void *text, size_t len)
{
	errno = 0;
	if (fwrite(text, 1, len, f) != len || fflush(f))
		return errno ? -errno : -EIO;
	return 0;
}

int ufvm__replace_file(const char *path, const void *text, size_t len)
{
	static unsigned int seq;
	char real[PATH_MAX], tmp[PATH_MAX];
	const char *target = path;
	struct stat st;
	bool was = !stat(path, &st);
	int fd, err;

	if (was && !S_ISREG(st.st_mode)) {
		FILE *f = fopen(path, "we");

		if (!f)
			return -errno;
		err = stream_write(f, text, len);
		if (fclose(f) && !err)
			err = -errno;
		return err;
	}
	if (was && realpath(path, real))
		target = real;
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp.%d.%u", target, (int)getpid(),
			     __atomic_fetch_add(&seq, 1, __ATOMIC_RELAXED)) >= sizeof(tmp))
		return -ENAMETOOLONG;
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
	if (fd < 0)
		return -errno;
	err = vm_pwrite_all(fd, text, len, 0);
	if (!err && was && fchmod(fd, st.st_mode & 07777))
		err = -errno;
	if (close(fd) && !err)
		err = -errno;
	if (!err && rename(tmp, target))
		err = -errno;
	if (err)
		unlink(tmp);
	return err;
}

/*
 * UFVM_STATS / cfg.stats_path: make (or open for writing) the file now, so
 * that a path that cannot be written stops ufvm before the work, not after
 * it; write_stats_file() replaces it at close.  A file that was there
 * keeps its content until then: a failed ufvm_open() or a process that
 * dies before ufvm_close() leaves the previous result whole.  "-" is
 * standard error.
 * Return: 0 or -errno (said why).
 */
static int stats_file_open(struct ufvm *vm)
{
	int err = ufvm__expand_pid(vm->cfg.stats_path, vm->stats_name, sizeof(vm->stats_name));

	if (!err && !strcmp(vm->stats_name, "-")) {
		vm->stats_file = stderr;
	} else if (!err) {
		/* Made here, or there before?  A failing ufvm_open removes only its own. */
		vm->stats_file = fopen(vm->stats_name, "wxe");
		vm->stats_made = vm->stats_file != NULL;
		if (!vm->stats_file && errno == EEXIST) {
			/* Write-only, not emptied yet ("w" would truncate, "r+" read). */
			int fd = open(vm->stats_name, O_WRONLY | O_CLOEXEC);

			vm->stats_file = fd >= 0 ? fdopen(fd, "w") : NULL;
			if (fd >= 0 && !vm->stats_file) {
				int e = errno;

				close(fd);
				errno = e;
			}
		}
		err = vm->stats_file ? 0 : -errno;
		if (!err) {	/* where it is now: a chdir() must not move it */
			char real[PATH_MAX];

			if (realpath(vm->stats_name, real))
				memcpy(vm->stats_name, real, strlen(real) + 1);
		}
	}
	if (err)
		fprintf(stderr, "ufvm: statistics file (UFVM_STATS, stats_path) %s: %s\n",
			err == -ENAMETOOLONG ? vm->cfg.stats_path : vm->stats_name,
			strerror(-err));
	return err;
}

static int open_instance(const struct ufvm_config *ucfg, struct ufvm **out)
{
	struct vm_cache_hooks hooks;
	struct vm_cache_config ccfg;
	struct pager_uffd_config ucf;
	struct ufvm_config dcfg;
	struct ufvm *vm;
	bool late;
	int err;

	if (!out)
		return -EINVAL;
	if (!ucfg) {
		err = ufvm_config_init(&dcfg);
		if (err)
			return err;
		ucfg = &dcfg;
	}
	vm = calloc(1, sizeof(*vm));
	if (!vm)
		return -ENOMEM;
	vm->cfg = *ucfg;
	err = vm_policy_from_config(&vm->cfg, &vm->pol);
	if (err)
		goto fail;
	err = vm_fork_id_init(&vm->made_by);	/* before the count: a raw fork's check */
	if (err)
		goto fail;
	/*
	 * Counted from here, not once made: a fork() while this one is being
	 * made sees it, and a child that opens its own makes two caches
	 * (write-ahead stops; vm_caches_apart()).
	 */
	late = vm->cfg.debug_flags & UFVM_DEBUG_COUNT_LATE;	/* the bug, for tests */
	if (!late)
		vm_instances_add(1);
	vm_rcu_worker_init();
	if (vm->cfg.stats_path[0]) {
		err = stats_file_open(vm);
		if (err)
			goto fail_count;
	}
	vm_stats_set_init(&vm->stats);
	vm_mutex_init(&vm->registry, VM_LC_REGISTRY);
	CDS_INIT_LIST_HEAD(&vm->objects);
	CDS_INIT_LIST_HEAD(&vm->files);
	hooks.for_each_object = for_each_object;
	hooks.put_object = put_object_hook;
	hooks.tick = tick_hook;
	hooks.arg = vm;
	ccfg.budget = vm->cfg.cache_pages;
	ccfg.overshoot_window = vm->cfg.debug_flags & UFVM_DEBUG_OVERSHOOT_WINDOW;
	ccfg.refuse_guess = vm->cfg.debug_flags & UFVM_DEBUG_REFUSE_GUESS;
	ccfg.no_active = vm->cfg.debug_flags & UFVM_DEBUG_NO_ACTIVE;
	ccfg.reclaim = vm->cfg.reclaim == UFVM_RECLAIM_FIFO ? &vm_reclaim_fifo : &vm_reclaim_clock;
	ccfg.readahead = vm->cfg.readahead;
	/*
	 * A fill from a buffered store is a copy into the memfd under its
	 * inode lock, which two readers would take in turns, the waiting
	 * one spinning: one reader.  Direct reads wait for the device and
	 * overlap: two (docs/performance.md, "One readahead thread").
	 */
	ccfg.readers = vm->cfg.direct_io ? 2 : 1;
	ccfg.dirty_expire_ms = vm->cfg.dirty_expire_ms;
	ccfg.flush_interval_ms = MIN(1000u, vm->cfg.dirty_expire_ms);
	err = vm_cache_init(&vm->cache, &ccfg, &vm->stats, &hooks);
	if (err)
		goto fail_stats;
	err = vm_aspace_init(&vm->as, NULL);
	if (err)
		goto fail_cache;
	ucf.threads = vm->cfg.handler_threads;
	ucf.spin_us = vm->cfg.handler_spin_us;
	ucf.batch = vm->cfg.handler_batch;
	ucf.park = vm->cfg.handler_park;
	ucf.split = vm->cfg.install_split;
	ucf.quiet = vm->cfg.backend == UFVM_BACKEND_AUTO;
	ucf.inthread = vm->cfg.delivery == UFVM_DELIVERY_INTHREAD;
	if (vm->cfg.debug_flags & UFVM_DEBUG_FORK_NO_HOLD)
		vm_fork_hold_off(1);	/* tests: undone at close, or below */
	err = -ENOENT;
	if (vm->cfg.backend != UFVM_BACKEND_SIGSEGV)
		err = pager_uffd_create(&vm->as, &vm->pol, &vm->stats, &ucf, &vm->be);
	if (err && vm->cfg.backend == UFVM_BACKEND_AUTO) {
		/*
		 * Only userfaultfd missing or refused is a reason to change
		 * the delivery's semantics; a lack of resources (memory,
		 * fds, threads) is reported as it is.
		 */
		if (err != -EPERM && err != -EACCES && err != -ENOSYS && err != -EOPNOTSUPP &&
		    err != -EINVAL)
			goto fail_as;
		fprintf(stderr, "ufvm: userfaultfd unavailable (%s): using the sigsegv backend\n",
			ufvm_strerror(err));
	}
	if (err && vm->cfg.backend != UFVM_BACKEND_UFFD) {
		vm->pol.frame_stripes = 1;	/* its installs map one memfd */
		err = pager_sigsegv_create(&vm->as, &vm->pol, &vm->stats, &vm->be);
	}
	if (err)
		goto fail_as;
	vm->as.pmap = &vm->be->pmap;
	__atomic_store_n(&vm->tick_be, vm->be, __ATOMIC_RELEASE);
	if (late)
		vm_instances_add(1);
	*out = vm;
	return 0;
fail_as:
	if (vm->cfg.debug_flags & UFVM_DEBUG_FORK_NO_HOLD)
		vm_fork_hold_off(-1);
	vm_aspace_destroy(&vm->as);
fail_cache:
	vm_cache_destroy(&vm->cache);
	free(vm->bg_objs);
fail_stats:
	vm_mutex_destroy(&vm->registry);
	vm_stats_set_destroy(&vm->stats);
	if (vm->stats_file && vm->stats_file != stderr) {
		fclose(vm->stats_file);
		if (vm->stats_made)
			unlink(vm->stats_name);
	}
fail_count:
	if (!late)
		vm_instances_add(-1);
fail:
	free(vm);
	return err;
}

int ufvm_open(const struct ufvm_config *ucfg, struct ufvm **out)
{
	return NOCANCEL((struct ufvm *)NULL, open_instance(ucfg, out));
}

/* ---- objects ---- */

/*
 * The object of file (@dev, @ino) in @vm's registry, referenced for a new
 * user, in *@out.  Return: 1 found, 0 none, -EACCES (@want_write, and the
 * object's store is read-only).  Context: registry lock held.
 */
static int registry_find(struct ufvm *vm, dev_t dev, ino_t ino, bool want_write,
			 struct vm_object **out)
{
	struct vm_object *obj;

	cds_list_for_each_entry(obj, &vm->objects, node) {
		if (obj->dev != dev || obj->ino != ino)
			continue;
		if (want_write && !obj->store->writable)
			return -EACCES;
		__atomic_fetch_add(&obj->refs, 1, __ATOMIC_RELAXED);
		__atomic_fetch_add(&obj->users, 1, __ATOMIC_RELAXED);
		*out = obj;
		return 1;
	}
	return 0;
}

/*
 * Find or make the object of @path.
 * Context: registry lock not held; may sleep (opens the store file).
 * Return: 0 and a referenced object, or -errno.
 */
static int object_get(struct ufvm *vm, const char *path, bool want_write,
		      bool create, struct vm_object **out)
{
	struct vm_object *obj;
	struct vm_store *store;
	unsigned int sflags;
	struct stat st;
	dev_t dev;
	ino_t ino;
	int err;

	if (create) {
		/*
		 * Only what the caller asked for: an existing file it may read
		 * but not write opens read-only.  O_NONBLOCK: a FIFO must not
		 * wait for a writer here (it is refused below).
		 */
		int fd = open(path, O_CREAT | (want_write ? O_RDWR : O_RDONLY) | O_NONBLOCK |
				    O_NOCTTY | O_CLOEXEC, 0644);

		if (fd < 0)
			return -errno;
		close(fd);
	}
	if (stat(path, &st))
		return -errno;
	if (S_ISDIR(st.st_mode))
		return -EISDIR;
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	vm_mutex_lock(&vm->registry);
	err = registry_find(vm, st.st_dev, st.st_ino, want_write, out);
	if (err)
		goto out_found;
	vm_hook(&vm->pol, UFVM_HOOK_FILE_STAT, (uint64_t)st.st_ino, 0);
	/* Open it writable when we may, so later writable users can share it. */
	sflags = vm->cfg.direct_io ? VM_STORE_DIRECT : 0;
	err = vm_store_file_open(path, sflags | VM_STORE_WRITABLE, &store, &dev, &ino);
	if (err == -EACCES || err == -EROFS || err == -EPERM || err == -ETXTBSY) {
		if (want_write)
			goto out;
		err = vm_store_file_open(path, sflags, &store, &dev, &ino);
	}
	if (err)
		goto out;
	/*
	 * The path may name another file than it did at the stat (a rename
	 * meanwhile): look again by the file opened, which may have an
	 * object already; a second one would be a second cache of the file.
	 */
	if ((dev != st.st_dev || ino != st.st_ino) &&
	    !(vm->cfg.debug_flags & UFVM_DEBUG_STAT_OPEN_RACE)) {	/* else: the bug, for tests */
		err = registry_find(vm, dev, ino, want_write, out);
		if (err) {
			vm_store_destroy(store);
			goto out_found;
		}
	}
	store->latency_us = vm->cfg.store_latency_us;
	err = vm_object_create(store, dev, ino, &vm->pol, &vm->stats, &vm->cache, &obj);
	if (err) {
		vm_store_destroy(store);
		goto out;
	}
	obj->refs = 1;
	obj->users = 1;
	cds_list_add(&obj->node, &vm->objects);
	*out = obj;
out:
	vm_mutex_unlock(&vm->registry);
	return err;
out_found:
	vm_mutex_unlock(&vm->registry);
	return err < 0 ? err : 0;
}

/*
 * Drop a reference; the last one writes the object back and frees it.
 * Context: registry lock not held; may sleep (write-back).
 * Return: 0 or the write-back error of the final release.
 */
static int object_put(struct ufvm *vm, struct vm_object *obj)
{
	int err = 0;

	vm_mutex_lock(&vm->registry);
	if (__atomic_sub_fetch(&obj->refs, 1, __ATOMIC_ACQ_REL) == 0) {
		cds_list_del(&obj->node);
		err = vm_object_destroy(obj);
	}
	vm_mutex_unlock(&vm->registry);
	return err;
}

/* A user's reference (a file handle or @n regions) on top of one held. */
static void object_get_user(struct vm_object *obj, unsigned int n)
{
	__atomic_fetch_add(&obj->refs, n, __ATOMIC_RELAXED);
	__atomic_fetch_add(&obj->users, n, __ATOMIC_RELAXED);
}

/*
 * Drop a user's reference.  The last user flushes the object even when a
 * thread of ufvm still holds it (a queued readahead, the background
 * thread), so that this put, not a later one inside ufvm, reports the
 * write-back error.
 * Context: registry lock not held; may sleep (write-back).
 * Return: 0 or the flush's error.
 */
static int object_put_user(struct ufvm *vm, struct vm_object *obj)
{
	int err = 0, e;

	if (__atomic_sub_fetch(&obj->users, 1, __ATOMIC_ACQ_REL) == 0)
		err = vm_object_flush(obj);
	e = object_put(vm, obj);
	return err ? err : e;
}

/* ---- files ---- */

int ufvm_file_open(struct ufvm *vm, const char *path, int flags,
		   struct ufvm_file **out)
{
	struct ufvm_file *f;
	int err;

	if (!vm || !path || !out || (flags & ~(UFVM_RDWR | UFVM_CREAT)))
		return -EINVAL;
	f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	f->vm = vm;
	f->writable = flags & UFVM_RDWR;
	err = NOCANCEL(vm, object_get(vm, path, f->writable, flags & UFVM_CREAT, &f->obj));
	if (err) {
		free(f);
		return err;
	}
	vm_mutex_lock(&vm->registry);
	cds_list_add(&f->node, &vm->files);
	vm_mutex_unlock(&vm->registry);
	*out = f;
	return 0;
}

int ufvm_file_close(struct ufvm_file *f)
{
	struct ufvm *vm;
	int err;

	if (!f)
		return -EINVAL;
	vm = f->vm;
	vm_mutex_lock(&vm->registry);
	cds_list_del(&f->node);
	vm_mutex_unlock(&vm->registry);
	err = NOCANCEL(vm, object_put_user(vm, f->obj));
	free(f);
	return err;
}

/*
 * Is [off, off+len) a range of file offsets: @off not negative, and its end
 * no further than the largest off_t (checked without overflowing)?
 */
static bool file_range_ok(off_t off, uint64_t len)
{
	return off >= 0 && len <= (uint64_t)(INT64_MAX - off);
}

ssize_t ufvm_pread(struct ufvm_file *f, void *buf, size_t len, off_t off)
{
	if (!f || (!buf && len) || off < 0 || len > SSIZE_MAX)
		return -EINVAL;
	if (!len)
		return 0;
	return NOCANCEL(f->vm, vm_object_pread(f->obj, buf, len, (uint64_t)off));
}

ssize_t ufvm_pwrite(struct ufvm_file *f, const void *buf, size_t len, off_t off)
{
	if (!f || (!buf && len) || len > SSIZE_MAX || !file_range_ok(off, len))
		return -EINVAL;
	if (!f->writable)
		return -EBADF;
	if (!len)
		return 0;
	return NOCANCEL(f->vm, vm_object_pwrite(f->obj, buf, len, (uint64_t)off));
}

int ufvm_punch(struct ufvm_file *f, off_t off, off_t len)
{
	if (!f || len <= 0 || !file_range_ok(off, (uint64_t)len))
		return -EINVAL;
	if (!f->writable)
		return -EBADF;
	return NOCANCEL(f->vm, vm_object_punch(f->obj, (uint64_t)off, (uint64_t)len));
}

int ufvm_truncate(struct ufvm_file *f, off_t size)
{
	if (!f || size < 0)
		return -EINVAL;
	if (!f->writable)
		return -EBADF;
	return NOCANCEL(f->vm, vm_object_truncate(f->obj, (uint64_t)size));
}

int ufvm_fsync(struct ufvm_file *f)
{
	if (!f)
		return -EINVAL;
	return NOCANCEL(f->vm, vm_object_sync(f->obj, 0, UINT64_MAX));
}

int ufvm_writeback(struct ufvm_file *f)
{
	if (!f)
		return -EINVAL;
	return NOCANCEL(f->vm, vm_object_writeback(f->obj, 0, UINT64_MAX));
}

const char *ufvm_backend_name(struct ufvm *vm)
{
	if (!vm)
		return NULL;
	if (strcmp(vm->be->name, "uffd"))
		return vm->be->name;
	return vm->cfg.delivery == UFVM_DELIVERY_INTHREAD ? "uffd-inthread" : "uffd";
}

int ufvm_file_size(struct ufvm_file *f, off_t *size)
{
	if (!f || !size)
		return -EINVAL;
	*size = (off_t)vm_object_size(f->obj);
	return 0;
}

int ufvm_inject(struct ufvm_file *f, int what, off_t off, off_t len)
{
	struct vm_store *s;

	if (!f || len < 0 || !file_range_ok(off, (uint64_t)len))
		return -EINVAL;
	s = f->obj->store;
	switch (what) {
	case UFVM_INJECT_READ_EIO:
		WRITE_ONCE(s->rerr_len, 0);
		WRITE_ONCE(s->rerr_off, (uint64_t)off);
		WRITE_ONCE(s->rerr_len, (uint64_t)len);
		return 0;
	case UFVM_INJECT_WRITE_EIO:
		WRITE_ONCE(s->werr_len, 0);
		WRITE_ONCE(s->werr_off, (uint64_t)off);
		WRITE_ONCE(s->werr_len, (uint64_t)len);
		return 0;
	case UFVM_INJECT_PUNCH_EIO:
		WRITE_ONCE(s->perr_len, 0);
		WRITE_ONCE(s->perr_off, (uint64_t)off);
		WRITE_ONCE(s->perr_len, (uint64_t)len);
		return 0;
	default:
		return -EINVAL;
	}
}

/* ---- mappings ---- */

/*
 * The pages [*start, *end) of a call's range [addr, addr+length): @addr
 * page aligned, @length not 0, and the end rounded up to a page not past
 * the top of the address space (checked without wrapping).
 * Return: 0, or -EINVAL.
 */
static int page_range(void *addr, size_t length, uintptr_t *start, uintptr_t *end)
{
	uintptr_t a = (uintptr_t)addr, e;

	if (!addr || a % PAGE_SIZE || !length || __builtin_add_overflow(a, length, &e) ||
	    __builtin_add_overflow(e, PAGE_SIZE - 1, &e))
		return -EINVAL;
	*start = a;
	*end = e & PAGE_MASK;
	return 0;
}

/*
 * A region that is going away: what must be written back and put once
 * mmap_lock is dropped.
 */
struct gone {
	struct vm_object *obj;
	uint64_t first, last;
};

/*
 * Take @r out of the address space and the rmap, dropping its mappings'
 * mapcounts; its real mapping stays until detached.  Context: mmap_lock
 * held for writing; may sleep briefly.  Return: 0 or -ENOMEM (@r stays).
 */
static int take_out_locked(struct ufvm *vm, struct vm_region *r, struct gone *g)
{
	int err = vm_aspace_remove_locked(&vm->as, r);

	if (err)
		return err;
	vm_region_kill(r);
	vm_object_rmap_del(r->object, r);
	g->obj = r->object;
	g->first = r->pgoff;
	g->last = r->pgoff + r->npages - 1;
	return 0;
}

/*
 * Write back and put what take_out_locked() took, @n of them.  With
 * @report, a write-back error is returned and so reported (not again by a
 * later sync); without, it stays for the next sync or close to report.
 * Context: no ufvm lock held; may block (store I/O).  Return: 0 or the
 * first error.
 */
static int gone_finish(struct ufvm *vm, struct gone *g, size_t n, bool report)
{
	size_t i;
	int e, err = 0;

	for (i = 0; i < n; i++) {
		e = vm_object_writeback(g[i].obj, g[i].first, g[i].last);
		if (e && !err && report)
			err = e;
		e = report ? vm_object_check_errors(g[i].obj) : 0;
		if (e && !err)
			err = e;
		e = object_put_user(vm, g[i].obj);
		if (e && !report)
			keep_late_error(vm, e);	/* no sync of it is left to report it */
		else if (e && !err)
			err = e;
	}
	return err;
}

/*
 * A region for [start, end) of @r, writable if @writable, not yet in
 * place (vm_region_replace() puts it there).  Return: 0 or -ENOMEM.
 */
static int piece_create(struct vm_region *r, uintptr_t start, uintptr_t end, bool writable,
			struct vm_region **out)
{
	struct vm_region *n;
	int err;

	err = vm_region_create(r->object, vm_region_pgidx(r, start),
			       (end - start) >> PAGE_SHIFT, writable, &n);
	if (err)
		return err;
	n->maywrite = r->maywrite;
	n->as = r->as;
	n->start = start;
	n->end = end;
	*out = n;
	return 0;
}

/*
 * Put the pieces @by[0..n) in @r's place (vm_region_replace), taking the
 * object references they hold beyond @r's; free them if that fails.
 * Context: mmap_lock held for writing; may sleep briefly.  Return: 0 or -errno.
 */
static int replace_locked(struct vm_region *r, struct vm_region **by, size_t n)
{
	size_t i;
	int err = vm_region_replace(r, by, n);

	if (err) {
		for (i = 0; i < n; i++)
			vm_region_free_rcu(by[i]);
		return err;
	}
	object_get_user(by[0]->object, (unsigned int)(n - 1));
	return 0;
}

/*
 * If a region straddles @addr, cut it in two there; the kernel's mapping
 * is left as it is, so nothing mapped is unmapped even for a moment.
 * Context: mmap_lock held for writing; may sleep briefly.  Return: 0 or -errno.
 */
static int split_at_locked(struct ufvm *vm, uintptr_t addr)
{
	struct vm_region *r = vm_aspace_find_locked(&vm->as, addr), *by[2];
	int err;

	if (!r || r->start == addr)
		return 0;
	err = piece_create(r, r->start, addr, r->writable, &by[0]);
	if (err)
		return err;
	err = piece_create(r, addr, r->end, r->writable, &by[1]);
	if (err) {
		vm_region_free_rcu(by[0]);
		return err;
	}
	return replace_locked(r, by, 2);
}

/* Cut the regions straddling either end of [start, end).  Context: as above. */
static int split_range_locked(struct ufvm *vm, uintptr_t start, uintptr_t end)
{
	int err = split_at_locked(vm, start);

	return err ? err : split_at_locked(vm, end);
}

/*
 * The regions inside [start, end) once split_range_locked() has run, in
 * order: their count, and the first's index in the array.
 * Context: mmap_lock held.
 */
static size_t regions_inside_locked(struct ufvm *vm, uintptr_t start, uintptr_t end,
				    size_t *first)
{
	struct vm_region_array *a = vm->as.regions;
	size_t i, n = 0;

	for (i = 0; i < a->n && a->r[i]->end <= start; i++)
		;
	*first = i;
	for (; i < a->n && a->r[i]->start < end; i++)
		n++;
	return n;
}

/*
 * Take out every region inside [start, end) (split at both ends first),
 * into @g (room for all of them, allocated here; the caller frees it), and
 * detach them if @detach.  Context: mmap_lock held for writing; may sleep
 * briefly.  Return: how many were taken out (*@gp, *@np), 0 or -errno.
 */
static int take_out_range_locked(struct ufvm *vm, uintptr_t start, uintptr_t end,
				 struct vm_region ***rp, struct gone **gp, size_t *np)
{
	struct vm_region **rs;
	struct gone *g;
	size_t i, first, n;
	int err;

	*np = 0;
	*gp = NULL;
	*rp = NULL;
	err = split_range_locked(vm, start, end);
	if (err)
		return err;
	n = regions_inside_locked(vm, start, end, &first);
	if (!n)
		return 0;
	g = calloc(n, sizeof(*g));
	rs = calloc(n, sizeof(*rs));
	if (!g || !rs) {
		free(g);
		free(rs);
		return -ENOMEM;
	}
	memcpy(rs, &vm->as.regions->r[first], n * sizeof(*rs));
	for (i = 0; i < n; i++) {
		err = take_out_locked(vm, rs[i], &g[i]);
		if (err)
			break;
	}
	*rp = rs;
	*gp = g;
	*np = i;
	return err;
}

/* Does [start, end) overlap a region?  Context: mmap_lock held. */
static bool fixed_overlaps(struct ufvm *vm, uintptr_t start, uintptr_t end)
{
	struct vm_region_array *a = vm->as.regions;
	size_t i;

	if (end < start)
		return true;
	for (i = 0; i < a->n; i++)
		if (a->r[i]->start < end && start < a->r[i]->end)
			return true;
	return false;
}

static int map_file(struct ufvm_file *f, off_t offset, size_t length, int prot, int flags,
		    void **addr)
{
	struct vm_region **old = NULL;
	struct gone *g = NULL;
	size_t nold = 0, i;
	struct ufvm *vm;
	struct vm_region *r;
	bool writable;
	uint64_t npages;
	int err;

	uintptr_t hint = 0;

	if (!f || !addr || offset < 0 || offset % PAGE_SIZE || !length ||
	    length > (1ull << 46) || !(prot & UFVM_PROT_READ) ||
	    (prot & ~(UFVM_PROT_READ | UFVM_PROT_WRITE)) ||
	    (flags & ~(UFVM_MAP_SHARED | UFVM_MAP_FIXED | UFVM_MAP_REPLACE)) ||
	    ((flags & UFVM_MAP_REPLACE) && !(flags & UFVM_MAP_FIXED)))
		return -EINVAL;
	npages = DIV_ROUND_UP(length, PAGE_SIZE);
	if (!file_range_ok(offset, npages << PAGE_SHIFT))
		return -EOVERFLOW;	/* like mmap: the file offsets do not fit */
	if (flags & UFVM_MAP_FIXED) {
		hint = (uintptr_t)*addr;
		if (!hint || hint % PAGE_SIZE || hint + (npages << PAGE_SHIFT) < hint)
			return -EINVAL;
	}
	vm = f->vm;
	writable = prot & UFVM_PROT_WRITE;
	if (writable && !f->writable)
		return -EACCES;
	object_get_user(f->obj, 1);	/* the region's */
	err = vm_region_create(f->obj, (uint64_t)offset >> PAGE_SHIFT, npages,
			       writable, &r);
	if (err)
		goto fail_put;
	r->as = &vm->as;
	r->maywrite = f->writable;
	vm_rwsem_write(&vm->as.mmap_lock);
	if (hint && (flags & UFVM_MAP_REPLACE)) {
		/* The regions there go; their real mappings are replaced by
		 * the new one in one step (mmap MAP_FIXED). */
		err = take_out_range_locked(vm, hint, hint + (npages << PAGE_SHIFT),
					    &old, &g, &nold);
		if (err)
			goto fail_unlock;
	} else if (hint && fixed_overlaps(vm, hint, hint + (npages << PAGE_SHIFT))) {
		err = -EINVAL;
		goto fail_unlock;
	}
	if (nold && (vm->cfg.debug_flags & UFVM_DEBUG_REPLACE_FAIL))
		err = -ENOMEM;	/* tests: as an attach without memory */
	else
		err = vm->as.pmap->ops->attach(vm->as.pmap, r, hint);
	if (err)
		goto fail_unlock;
	/*
	 * On the rmap before speculative faults can find it: a page one of
	 * them maps writable must be write-protected by write-back.
	 */
	vm_object_rmap_add(f->obj, r);
	err = vm_aspace_insert_locked(&vm->as, r);
	if (err) {
		vm_object_rmap_del(f->obj, r);
		/* At a fixed address: what the mapping replaced is gone, and
		 * its range must not become a hole. */
		vm->as.pmap->ops->detach(vm->as.pmap, r, hint != 0);
		goto fail_unlock;
	}
	for (i = 0; i < nold; i++)
		vm_region_free_rcu(old[i]);
	vm_rwsem_write_unlock(&vm->as.mmap_lock);
	free(old);
	*addr = (void *)r->start;
	gone_finish(vm, g, nold, false);	/* errors stay for the next sync */
	free(g);
	return 0;
fail_unlock:
	/*
	 * Like mmap's MAP_FIXED, what was replaced is gone even on failure;
	 * but its range stays reserved, never a hole (UFVM_MAP_REPLACE).
	 */
	for (i = 0; i < nold; i++) {
		vm->as.pmap->ops->detach(vm->as.pmap, old[i], true);
		vm_region_free_rcu(old[i]);
	}
	vm_rwsem_write_unlock(&vm->as.mmap_lock);
	free(old);
	gone_finish(vm, g, nold, false);
	free(g);
	vm_region_free_rcu(r);
fail_put:
	object_put_user(vm, f->obj);
	return err;
}

int ufvm_map_file(struct ufvm_file *f, off_t offset, size_t length, int prot,
		  int flags, void **addr)
{
	return NOCANCEL(f ? f->vm : NULL, map_file(f, offset, length, prot, flags, addr));
}
int ufvm_map(struct ufvm *vm, const char *path, off_t offset, size_t length,
	     int prot, int flags, void **addr)
{
	struct ufvm_file *f;
	int err;

	if (!vm || !path || !addr)
		return -EINVAL;
	err = ufvm_file_open(vm, path, (prot & UFVM_PROT_WRITE) ? UFVM_RDWR : UFVM_RDONLY, &f);
	if (err)
		return err;
	err = ufvm_map_file(f, offset, length, prot, flags, addr);
	ufvm_file_close(f);	/* the region keeps the object */
	return err;
}

/*
 * Unmap the regions inside [start, end), splitting those that straddle its
 * ends, leaving reservations if @reserve, then write back what they mapped.
 * Context: takes mmap_lock for writing; may block (write-back).
 * Return: 0, or -errno.
 */
static int unmap_range(struct ufvm *vm, uintptr_t start, uintptr_t end, bool reserve)
{
	struct vm_region **rs;
	struct gone *g;
	size_t n, i;
	int err, e;

	vm_rwsem_write(&vm->as.mmap_lock);
	err = take_out_range_locked(vm, start, end, &rs, &g, &n);
	if (n)
		vm_hook(&vm->pol, UFVM_HOOK_TAKEN_OUT, start, end - start);
	for (i = 0; i < n; i++) {
		vm->as.pmap->ops->detach(vm->as.pmap, rs[i], reserve);
		vm_region_free_rcu(rs[i]);
	}
	vm_rwsem_write_unlock(&vm->as.mmap_lock);
	free(rs);
	e = gone_finish(vm, g, n, true);
	free(g);
	return err ? err : e;
}

static int unmap_exact(struct ufvm *vm, void *addr, size_t length)
{
	uint64_t npages = DIV_ROUND_UP(length, PAGE_SIZE);
	struct vm_region *r;
	bool exact;

	vm_rwsem_read(&vm->as.mmap_lock);
	r = vm_aspace_find_locked(&vm->as, (uintptr_t)addr);
	exact = r && r->start == (uintptr_t)addr && npages == r->npages;
	vm_rwsem_read_unlock(&vm->as.mmap_lock);	/* @r may go now */
	if (!exact)
		return -EINVAL;
	return unmap_range(vm, (uintptr_t)addr, (uintptr_t)addr + (npages << PAGE_SHIFT), false);
}

int ufvm_unmap(struct ufvm *vm, void *addr, size_t length)
{
	if (!vm || !addr || !length)
		return -EINVAL;
	return NOCANCEL(vm, unmap_exact(vm, addr, length));
}

static int unmap_range_checked(struct ufvm *vm, void *addr, size_t length, bool reserve)
{
	uintptr_t a, end;

	if (!vm || page_range(addr, length, &a, &end))
		return -EINVAL;
	return NOCANCEL(vm, unmap_range(vm, a, end, reserve));
}

int ufvm_unmap_range(struct ufvm *vm, void *addr, size_t length)
{
	return unmap_range_checked(vm, addr, length, false);
}

int ufvm_unmap_reserve(struct ufvm *vm, void *addr, size_t length)
{
	return unmap_range_checked(vm, addr, length, true);
}

static int protect(struct ufvm *vm, void *addr, size_t length, int prot)
{
	bool writable = prot & UFVM_PROT_WRITE;
	uintptr_t a, end, x;
	struct vm_region *r;
	size_t i, first, n;
	int err = 0;

	if (!vm || page_range(addr, length, &a, &end) ||
	    (prot != UFVM_PROT_READ && prot != (UFVM_PROT_READ | UFVM_PROT_WRITE)))
		return -EINVAL;
	vm_rwsem_write(&vm->as.mmap_lock);
	for (x = a; x < end; x = r->end) {	/* like mprotect: all or nothing checked first */
		r = vm_aspace_find_locked(&vm->as, x);
		if (!r) {
			err = -ENOMEM;
			goto out;
		}
		if (writable && !r->maywrite) {
			err = -EACCES;
			goto out;
		}
	}
	/*
	 * Split only what changes: an end in a region that has the protection
	 * already moves to that region's edge.  A no-op leaves the regions
	 * whole, so the range ufvm_map() returned still unmaps as one.
	 */
	r = vm_aspace_find_locked(&vm->as, a);
	if (r->writable == writable)
		a = MIN(end, r->end);
	r = a < end ? vm_aspace_find_locked(&vm->as, end - 1) : NULL;
	if (r && r->writable == writable)
		end = MAX(a, r->start);
	if (a >= end)
		goto out;
	err = split_range_locked(vm, a, end);
	if (err)
		goto out;
	n = regions_inside_locked(vm, a, end, &first);
	for (i = 0; i < n && !err; i++) {
		struct vm_region *by;

		r = vm->as.regions->r[first + i];	/* the array changes each time */
		if (r->writable == writable)
			continue;
		err = piece_create(r, r->start, r->end, writable, &by);
		if (!err)
			err = replace_locked(r, &by, 1);
	}
out:
	vm_rwsem_write_unlock(&vm->as.mmap_lock);
	return err;
}

int ufvm_protect(struct ufvm *vm, void *addr, size_t length, int prot)
{
	return NOCANCEL(vm, protect(vm, addr, length, prot));
}

struct sync_part {
	struct vm_object *obj;
	uint64_t first, last;
};

static int sync_range(struct ufvm *vm, void *addr, size_t length)
{
	struct sync_part *parts = NULL;
	size_t n = 0, cap = 0, i;
	uintptr_t a, end;
	int err = 0, e;

	if (!vm || page_range(addr, length, &a, &end))
		return -EINVAL;
	vm_rwsem_read(&vm->as.mmap_lock);
	while (a < end) {
		struct vm_region *r = vm_aspace_find_locked(&vm->as, a);
		uintptr_t stop;

		if (!r) {
			err = -ENOMEM;	/* like msync: part of the range is unmapped */
			break;
		}
		stop = MIN(end, r->end);
		if (n == cap) {
			struct sync_part *np = realloc(parts, (cap = cap * 2 + 4) * sizeof(*np));

			if (!np) {
				err = -ENOMEM;
				break;
			}
			parts = np;
		}
		parts[n].obj = r->object;
		parts[n].first = vm_region_pgidx(r, a);
		parts[n].last = vm_region_pgidx(r, stop - 1);
		__atomic_fetch_add(&r->object->refs, 1, __ATOMIC_RELAXED);
		n++;
		a = stop;
	}
	vm_rwsem_read_unlock(&vm->as.mmap_lock);
	for (i = 0; i < n; i++) {
		if (!err) {
			e = vm_object_sync(parts[i].obj, parts[i].first, parts[i].last);
			if (e)
				err = e;
		}
		e = object_put(vm, parts[i].obj);
		if (e && !err)
			err = e;
	}
	free(parts);
	return err;
}

int ufvm_sync(struct ufvm *vm, void *addr, size_t length)
{
	return NOCANCEL(vm, sync_range(vm, addr, length));
}

int ufvm_debug_hook(struct ufvm *vm, ufvm_hook_fn fn, void *arg)
{
	if (!vm)
		return -EINVAL;
	__atomic_store_n(&vm->pol.hook, NULL, __ATOMIC_RELEASE);
	vm->pol.hook_arg = arg;
	__atomic_store_n(&vm->pol.hook, fn, __ATOMIC_RELEASE);
	return 0;
}

static int zap(struct ufvm *vm, void *addr, size_t length)
{
	uintptr_t a, end;
	int err = 0;

	if (!vm || page_range(addr, length, &a, &end))
		return -EINVAL;
	vm_rwsem_read(&vm->as.mmap_lock);
	for (uintptr_t x = a; x < end;) {
		struct vm_region *r = vm_aspace_find_locked(&vm->as, x);

		if (!r) {
			err = -ENOMEM;
			break;
		}
		x = MIN(end, r->end);
	}
	while (!err && a < end) {
		struct vm_region *r = vm_aspace_find_locked(&vm->as, a);
		uintptr_t stop = MIN(end, r->end);

		err = vm_region_unmap_range(r, vm_region_pgidx(r, a), vm_region_pgidx(r, stop - 1));
		a = stop;
	}
	vm_rwsem_read_unlock(&vm->as.mmap_lock);
	return err;
}

int ufvm_zap(struct ufvm *vm, void *addr, size_t length)
{
	return NOCANCEL(vm, zap(vm, addr, length));
}

/* ---- statistics ---- */

/*
 * The snapshot into @out, and the histograms it was computed from into
 * @hist (VM_HIST__COUNT of them), from one sum of the shards.  A
 * histogram's count is its buckets' sum: a reader racing with a writer can
 * see a bucket raised before the count is.
 */
static int stats_snapshot(struct ufvm *vm, struct ufvm_stats *out, struct vm_hist *hist)
{
	struct vm_object *obj;
	unsigned int i, b;
	uint64_t nodes = 0;

	memset(out, 0, sizeof(*out));
	vm_stats_sum(&vm->stats, out->counters, hist);
	for (i = 0; i < VM_HIST__COUNT; i++) {
		struct ufvm_latency *l = i == VM_HIST_OWN ? &out->own : &out->latency[i];

		for (b = 0; b < HIST_BUCKETS; b++)
			l->count += hist[i].b[b];
		hist[i].count = l->count;
		l->sum_ns = hist[i].sum;
		l->max_ns = hist[i].max;
		l->p50_ns = vm_hist_quantile(&hist[i], 0.50);
		l->p90_ns = vm_hist_quantile(&hist[i], 0.90);
		l->p99_ns = vm_hist_quantile(&hist[i], 0.99);
		l->p999_ns = vm_hist_quantile(&hist[i], 0.999);
	}
	vm_mutex_lock(&vm->registry);
	cds_list_for_each_entry(obj, &vm->objects, node) {
		out->cached_pages += READ_ONCE(obj->index.nr);
		out->dirty_pages += __atomic_load_n(&obj->nr_dirty, __ATOMIC_RELAXED);
		nodes += READ_ONCE(obj->index.nodes);
	}
	vm_mutex_unlock(&vm->registry);
	vm_rwsem_read(&vm->as.mmap_lock);
	out->regions = vm->as.regions->n;
	vm_rwsem_read_unlock(&vm->as.mmap_lock);
	out->meta_bytes = __atomic_load_n(&vm_pages_live, __ATOMIC_RELAXED) *
			  sizeof(struct vm_page) + nodes * vm_pindex_node_size();
	out->budget_pages = vm->cache.budget;
	out->cached_pages_max = __atomic_load_n(&vm->cache.max_nr, __ATOMIC_RELAXED);
	return 0;
}

/* (It waits for the registry and mmap_lock: no cancellation point either.) */
void ufvm__stats_snapshot(struct ufvm *vm, struct ufvm_stats *out, struct vm_hist *hist)
{
	(void)NOCANCEL(vm, stats_snapshot(vm, out, hist));
}

int ufvm_stats(struct ufvm *vm, struct ufvm_stats *out)
{
	struct vm_hist *hist;

	if (!vm || !out)
		return -EINVAL;
	hist = calloc(VM_HIST__COUNT, sizeof(*hist));
	if (!hist)
		return -ENOMEM;
	ufvm__stats_snapshot(vm, out, hist);
	free(hist);
	return 0;
}

/*
 * UFVM_STATS / cfg.stats_path: the snapshot at close, as JSON, in place
 * of the file stats_file_open() made: a new regular file renamed over it
 * (a reader never sees half of one; of several processes writing one
 * name, the last wins), or written to what is not a regular file (a
 * device, a pipe, standard error).  The file is closed whatever happens.
 * Return: 0 or -errno (said why on stderr).
 */
static int write_stats_file(struct ufvm *vm)
{
	FILE *f = vm->stats_file;
	char *text = NULL;
	size_t len = 0;
	FILE *m;
	int err;

	vm->stats_file = NULL;
	/* Into memory first: a failed write to the file then keeps its errno. */
	m = open_memstream(&text, &len);
	err = m ? ufvm_stats_write_json(vm, m) : -ENOMEM;
	if (m && fclose(m) && !err)
		err = -ENOMEM;
	if (!err) {
		struct stat st;

		if (f != stderr && !fstat(fileno(f), &st) && S_ISREG(st.st_mode)) {
			err = ufvm__replace_file(vm->stats_name, text, len);
			/*
			 * No new file beside it (a directory this process may
			 * not write, a file bind-mounted alone, ...): in place,
			 * through the file checked at ufvm_open().
			 */
			if (err == -EACCES || err == -EPERM || err == -EBUSY || err == -EXDEV ||
			    err == -EROFS)
				err = ftruncate(fileno(f), 0) ? -errno : stream_write(f, text, len);
		} else {
			err = stream_write(f, text, len);
		}
	}
	if (f != stderr && fclose(f) && !err)
		err = -errno;
	free(text);
	if (err)
		fprintf(stderr, "ufvm: writing the statistics to %s failed: %s\n",
			vm->stats_name, strerror(-err));
	return err;
}

/* ---- teardown ---- */

static int close_instance(struct ufvm *vm)
{
	int err = 0, e;

	if (!vm)
		return -EINVAL;
	/*
	 * A fork()ed child has a copy of the instance, not the instance: its
	 * locks may have been held by the parent's threads at the fork, its
	 * regions and handler threads are not there.  Leave it alone.
	 */
	if (vm_forked(&vm->made_by))
		return -ECHILD;
	for (;;) {
		uintptr_t start = 0, end = 0;

		vm_rwsem_read(&vm->as.mmap_lock);
		if (vm->as.regions->n) {
			start = vm->as.regions->r[0]->start;
			end = vm->as.regions->r[vm->as.regions->n - 1]->end;
		}
		vm_rwsem_read_unlock(&vm->as.mmap_lock);
		if (start == end)
			break;
		e = unmap_range(vm, start, end, false);
		if (e && !err)
			err = e;
	}
	for (;;) {
		struct ufvm_file *f = NULL;

		vm_mutex_lock(&vm->registry);
		if (!cds_list_empty(&vm->files))
			f = cds_list_first_entry(&vm->files, struct ufvm_file, node);
		vm_mutex_unlock(&vm->registry);
		if (!f)
			break;
		e = ufvm_file_close(f);
		if (e && !err)
			err = e;
	}
	vm_cache_stop(&vm->cache);	/* drops what queued readaheads hold */
	VM_BUG_ON(!cds_list_empty(&vm->objects));
	e = __atomic_load_n(&vm->late_err, __ATOMIC_RELAXED);
	if (e && !err)
		err = e;
	if (vm->stats_file) {
		e = write_stats_file(vm);
		if (e && !err)
			err = e;
	}
	vm->be->destroy(vm->be);
	if (vm->cfg.debug_flags & UFVM_DEBUG_FORK_NO_HOLD)
		vm_fork_hold_off(-1);
	vm_cache_destroy(&vm->cache);	/* joins the background thread */
	free(vm->bg_objs);
	rcu_barrier();	/* every deferred free has run */
	vm_aspace_destroy(&vm->as);
	vm_mutex_destroy(&vm->registry);
	vm_stats_set_destroy(&vm->stats);
	free(vm);
	vm_instances_add(-1);
	return err;
}

int ufvm_close(struct ufvm *vm)
{
	return NOCANCEL(vm, close_instance(vm));
}
