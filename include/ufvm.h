/* SPDX-License-Identifier: MIT */
/*
 * ufvm.h - the public interface of ufvm, a userspace virtual-memory system.
 *
 * Programs map files through ufvm.  Page faults on those mappings are
 * delivered to ufvm's pager, which serves them from ufvm's own page cache
 * (one per file, shared by every mapping of that file) backed by the file.
 *
 * Conventions:
 *  - every function returns 0 (or a byte count) on success and -errno on
 *    failure; errno is never the channel;
 *  - handles are opaque; new objects come back through an out parameter;
 *  - a function that fails changes nothing;
 *  - no function is a cancellation point, nor is a fault on ufvm memory:
 *    a thread cancelled (deferred) meanwhile is cancelled at its next
 *    cancellation point after the call returns.
 *
 * Semantics follow the kernel's MAP_SHARED file mappings: every mapping of
 * one file and ufvm_pread()/ufvm_pwrite() see the same bytes at once;
 * ufvm_sync() has msync(MS_SYNC) semantics; an access past the end of the
 * file gets SIGBUS.  The store file must not be changed behind ufvm's back
 * while ufvm has it open (ufvm's page cache is then the authority).
 *
 * Limits:
 *  - a file should be open in one ufvm instance at a time: two instances
 *    (in one process or two) have two page caches, do not see each other's
 *    writes, and write back whole pages over each other's; the same holds
 *    for a second ufvm and any other writer of the file;
 *  - an open file can grow only to max(16 GiB, twice its size when it was
 *    first opened, that is when no handle or mapping of it was open in
 *    the instance): beyond that ufvm_pwrite() and ufvm_truncate() return
 *    -EFBIG.  Close every handle and mapping and open it again to grow
 *    further;
 *  - with the userfaultfd backend a file larger than one chunk when first
 *    opened (32 MiB, for files up to 8 GiB) holds frame_stripes (4) memfd
 *    descriptors, and each mapping of it is one kernel mapping per chunk
 *    (docs/configuration.md, UFVM_FRAME_STRIPES); a smaller chunk_pages
 *    multiplies the mappings, and a mapping of more chunks than the
 *    process may have mappings (vm.max_map_count, 65530 by default: about
 *    2 TiB of 32 MiB chunks, past the file's end included) fails with
 *    -ENOMEM;
 *  - with in-thread delivery and the sigsegv backend a fault is served on
 *    the faulting thread's own stack, in a signal handler: about 11 KiB of
 *    it (measured, release build) on top of what the thread uses, so a
 *    thread made with a PTHREAD_STACK_MIN (16 KiB) stack overflows there.
 *    Handler-thread delivery (the default) uses none of it.
 */
#ifndef UFVM_H
#define UFVM_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define UFVM_API __attribute__((visibility("default")))

struct ufvm;
struct ufvm_file;

/* Delivery backends. */
enum ufvm_backend {
	UFVM_BACKEND_AUTO = 0,	/* userfaultfd, else the fallback */
	UFVM_BACKEND_UFFD,	/* userfaultfd with handler threads */
	UFVM_BACKEND_SIGSEGV,	/* libsigsegv, in the faulting thread */
};

/* How the userfaultfd backend delivers a fault to the pager. */
enum ufvm_delivery {
	UFVM_DELIVERY_HANDLER = 0,	/* handler threads, one per CPU (default) */
	UFVM_DELIVERY_INTHREAD,		/* the faulting thread, from a SIGBUS handler
					   (UFFD_FEATURE_SIGBUS); see docs/architecture.md */
};

/* Invalidate-lock modes (what page-cache fills and hole punches take). */
enum ufvm_invalidate {
	UFVM_INVALIDATE_RWSEM = 0,	/* invalidate_lock: fills shared, punch exclusive */
	UFVM_INVALIDATE_ADDBLOCK,	/* two-state add/block lock */
	UFVM_INVALIDATE_NONE,		/* no protection: for experiments only */
};

/* Reclaim policies (what goes when the cache is over its budget). */
enum ufvm_reclaim {
	UFVM_RECLAIM_CLOCK = 0,		/* second chance, zap-and-refault sampling */
	UFVM_RECLAIM_FIFO,		/* oldest first */
};

/*
 * Configuration.  ufvm_config_init() fills in the defaults and then applies
 * the UFVM_* environment variables (see docs/configuration.md); the caller
 * may change any field afterwards.  ufvm_open() validates every field.
 */
struct ufvm_config {
	unsigned int backend;		/* enum ufvm_backend */
	unsigned int delivery;		/* enum ufvm_delivery (uffd backend) */
	unsigned int handler_threads;	/* uffd handler threads; 0 = one per CPU */
	unsigned int handler_spin_us;	/* poll this long before blocking */
	unsigned int handler_batch;	/* 0/1: pinned handlers run SCHED_BATCH: a
					   woken handler does not preempt a running
					   thread */
	unsigned int speculative;	/* 0/1: RCU fault before mmap_lock */
	unsigned int fault_around;	/* pages mapped around a fault (1 = off) */
	unsigned int map_ahead;		/* sequential readers: windows grow to this
					   many pages, mapped ahead (0 = off) */
	unsigned int retry;		/* 0/1: drop mmap_lock while waiting */
	unsigned int invalidate;	/* enum ufvm_invalidate */
	unsigned int store_latency_us;	/* injected latency of each store read */
	unsigned int direct_io;		/* 0/1: store files opened with O_DIRECT,
					   bypassing the host's page cache */
	uint64_t cache_pages;		/* page-cache budget; 0 = unlimited.  Dirty
					   pages whose write-back fails may take
					   it budget/16 (at least 4) pages over,
					   and clean pages as many again */
	unsigned int reclaim;		/* enum ufvm_reclaim */
	unsigned int readahead;		/* largest readahead window, pages; 0 = off */
	unsigned int dirty_expire_ms;	/* background write-back of older dirty pages */
	char stats_path[256];		/* JSON stats file, made at ufvm_open and
					   written at ufvm_close; "%p": the pid */
	uint64_t debug_flags;		/* UFVM_DEBUG_*: test switches */
	unsigned int handler_park;	/* 0/1: a pinned handler whose CPU runs no
					   faulting thread stops reading the uffd
					   until one does */
	unsigned int install_split;	/* 0/1: uffd installs of 128 pages or more
					   are shared with an installer thread
					   on another CPU */
	unsigned int frame_stripes;	/* uffd backend: a file's frames striped
					   over this many memfds (1 to 8; 1 =
					   one memfd) */
	unsigned int chunk_pages;	/* pages per stripe chunk, a power of two;
					   0 = 512 (grown for large files) */
	unsigned int write_ahead;	/* sequential writers: a write fault maps up
					   to this many pages writable and dirty,
					   from its own on (0 or 1 = its page, the
					   default); only for files no other
					   cache writes (docs/architecture.md) */
};

/*
 * Debug switches for tests: most disable a protection, so that tests can
 * show the bug; UFVM_DEBUG_FILL_HOOKED lets a path run under a hook.
 */
#define UFVM_DEBUG_CHECK_THEN_RAISE	0x1u	/* fault-around raises mapcount after its check */
#define UFVM_DEBUG_NO_DEAD_CHECK	0x2u	/* speculative faults ignore unmapped regions */
#define UFVM_DEBUG_EVICT_PUNCH_LATE	0x4u	/* reclaim frees a frame after it gives up the
						   page's index slot */
#define UFVM_DEBUG_OVERSHOOT_WINDOW	0x8u	/* a fill that finds no room goes over the
						   budget with its whole window */
#define UFVM_DEBUG_NO_ACTIVE		0x10u	/* the clock clears every bit it passes:
						   no active pages */
#define UFVM_DEBUG_FILL_END_LATE	0x20u	/* a major fault ends its fill after it
						   unlocks its pages, when an unmap may
						   have freed the file's object */
#define UFVM_DEBUG_KILL_NO_ZAP		0x40u	/* an unmap drops its region's
						   mapcounts before it unmaps the pages */
#define UFVM_DEBUG_WB_EPOCH_ONCE	0x80u	/* a write-back counts in the flush epoch
						   it read, though a flush flipped it */
#define UFVM_DEBUG_CLOSE_NO_WAIT	0x100u	/* ufvm_close does not wait for faults
						   served in application threads */
#define UFVM_DEBUG_AROUND_REREAD	0x200u	/* fault-around reads a run's first page's
						   dirty bit again for each page */
#define UFVM_DEBUG_DROP_GET_LATE	0x400u	/* a file's last close pins each page it
						   drops after leaving the RCU section
						   that found it */
#define UFVM_DEBUG_ADDBLOCK_UNFAIR	0x800u	/* the add/block lock keeps no turns:
						   a side that releases it may take
						   it back before the other side's
						   waiters, and while one side holds
						   it its newcomers enter however
						   long the other side waits */
#define UFVM_DEBUG_FORK_NOREPLACE	0x1000u	/* a fork child reserves region ranges
						   only where nothing was inherited */
#define UFVM_DEBUG_FILL_HOOKED		0x2000u	/* a 1-page fill from a store in memory
						   keeps mmap_lock (no retry) even with
						   a debug hook installed, whose
						   UFVM_HOOK_FILL_SIZE it calls: for a
						   hook that needs no mmap_lock */
#define UFVM_DEBUG_FILL_PAST_SHRINK	0x4000u	/* fills go on while a shrinking
						   truncate is pending: that fill maps
						   its page (even one cut off), and an
						   add/block fill of a page the new
						   size cuts fills it short instead of
						   waiting for the outcome */
#define UFVM_DEBUG_PARK_PAST_STOP	0x8000u	/* a uffd handler that parks does not
						   look whether ufvm_close() began,
						   nor, once parked, for unread faults
						   (pager/uffd.c, park()) */
#define UFVM_DEBUG_SPLIT_NO_WAIT	0x10000u	/* a split install returns without
						   waiting for the installer's chunks
						   (pager/uffd.c, install_split()) */
#define UFVM_DEBUG_SPLIT_FAIL		0x20000u	/* an installer fails the chunks of
						   every other job it takes (-ENOMEM)
						   without mapping them: the error
						   path of a split install, for tests
						   (pager/uffd.c, installer_main()) */
#define UFVM_DEBUG_PARK_PAST_WAIT	0x40000u	/* a uffd handler that parks does not
						   look whether another began to wait
						   for the store meanwhile (pager/uffd.c,
						   park()) */
#define UFVM_DEBUG_FORK_NO_HOLD		0x80000u	/* while an instance with it is made,
						   lives or is closed, fork() does not
						   hold the pager's lists of backends
						   (vm/thread.c, vm_fork_hold()) */
#define UFVM_DEBUG_REPLACE_FAIL		0x100000u	/* a UFVM_MAP_REPLACE map fails
						   (-ENOMEM) after it took out the
						   regions it replaces, as an attach
						   without memory would: for tests of
						   that error path (lib/ufvm.c) */
#define UFVM_DEBUG_STAT_OPEN_RACE	0x200000u	/* a file's object is looked up by
						   the inode stat() found only, not
						   again by the one open() got
						   (lib/ufvm.c, object_get()) */
#define UFVM_DEBUG_POISON_STALE		0x400000u	/* a retried major fault whose
						   store read failed poisons the
						   address whatever was mapped there
						   meanwhile (pager/fault.c) */
#define UFVM_DEBUG_WB_PAST_PUNCH	0x800000u	/* write-back writes pages that a
						   punch under way overlaps
						   (vm/object.c, punch_pending()) */
#define UFVM_DEBUG_CANCEL_INSIDE	0x1000000u	/* ufvm's calls, and the faults a
						   thread serves itself (in-thread
						   delivery, sigsegv backend), leave
						   its cancellation enabled */
#define UFVM_DEBUG_BUS_INHERITED	0x2000000u	/* in a fork() child, in-thread
						   delivery's SIGBUS handler waits
						   on the instances it inherited
						   (pager/uffd.c, bus_wait_unmaps()) */
#define UFVM_DEBUG_SYNC_PAST_PUNCH	0x4000000u	/* a sync that met a punch or a
						   shrink waits for it and writes
						   once more, letting the next one
						   start meanwhile (vm/object.c,
						   vm_object_writeback()) */
#define UFVM_DEBUG_FAILED_READ_WAKE	0x8000000u	/* a retried major fault whose
						   store read failed, finding the
						   regions changed, wakes the thread
						   to fault again instead of running
						   once more holding mmap_lock
						   (pager/fault.c) */
#define UFVM_DEBUG_FAILED_PUNCH_CUTS	0x10000000u	/* a punch that failed counts as
						   cutting its range: a ufvm_pwrite()
						   beside it starts over
						   (vm/object.c) */
#define UFVM_DEBUG_PARTIAL_PUNCH_EMPTY	0x20000000u	/* a punch that failed after the
						   store zeroed part of its range
						   counts as cutting nothing
						   (vm/object.c) */
#define UFVM_DEBUG_DUP_ONLY_WAKES	0x40000000u	/* a fault on a page counted
						   mapped only wakes the thread,
						   though the kernel may have
						   unmapped it (pager/fault.c) */
#define UFVM_DEBUG_REFUSE_GUESS		0x80000000u	/* a write past the budget's
						   slack is refused on an old
						   write-back error that no retry
						   could confirm (vm/cache.c,
						   vm__cache_dirty_retry()) */
#define UFVM_DEBUG_GUESS_ACCESS		0x100000000ull	/* the sigsegv backend takes a
						   fault on a page its shadow counts
						   mapped read-only in a writable
						   region for a write, as it did
						   before it read the access type
						   from the fault's context
						   (pager/sigsegv.c) */
#define UFVM_DEBUG_ATTACH_OPEN		0x200000000ull	/* a new region of the userfaultfd
						   backend is mapped accessible
						   before it is registered, as it
						   was: a stale access by another
						   thread then has the kernel make
						   a frame behind ufvm's back
						   (pager/uffd.c, u_attach()) */
#define UFVM_DEBUG_WA_PAST_LOCK		0x400000000ull	/* write-ahead after a mkwrite
						   makes a page writable though it
						   is locked, as by a write-back
						   that write-protected it and is
						   about to clean it: a store after
						   that write-back is lost
						   (pager/fault.c, mkwrite_ahead()) */
#define UFVM_DEBUG_WA_APART		0x800000000ull	/* write-ahead goes on with
						   another instance open, or after a
						   fork: a page dirtied ahead and
						   never stored into goes back over
						   what the other cache synced
						   (pager/fault.c, write_window()) */
#define UFVM_DEBUG_DROP_DIRTY_EARLY	0x1000000000ull	/* a punch reads a page's
						   dirty bit before it unmaps the
						   page, as it did: a fault that
						   dirties it meanwhile has its store
						   dropped, though the punch fails
						   (vm/object.c, remove_pages()) */
#define UFVM_DEBUG_COUNT_LATE		0x2000000000ull	/* ufvm_open() counts its
						   instance open only once made, as
						   it did: a child forked meanwhile
						   misses it, opens its own, and both
						   write ahead (lib/ufvm.c) */
#define UFVM_DEBUG_FAILED_SHRINK_CUTS	0x4000000000ull	/* a shrinking truncate
						   that failed counts as a cut: a
						   ufvm_pwrite() beside truncates
						   failing back to back starts over
						   for ever (vm/object.c) */
#define UFVM_DEBUG_UNEXTEND_GUESS	0x8000000000ull	/* a failed extending
						   ufvm_pwrite() takes its extension
						   back when no page past it is
						   cached, though one was stored into
						   and synced (vm/object.c,
						   unextend()) */
#define UFVM_DEBUG_GROW_NO_REDIRTY	0x10000000000ull	/* a grow leaves the
						   old last page as it is after
						   publishing the new size: a store
						   past the old end that a write-back
						   cleaned meanwhile never reaches the
						   file (vm/object.c, resize_locked()) */

UFVM_API int ufvm_config_init(struct ufvm_config *cfg);
/*
 * ufvm_config_check - would ufvm_open() accept @cfg (NULL: the defaults
 * and the environment, as for ufvm_open())?  Prints nothing (but for a
 * malformed environment, which ufvm_config_init() reports).
 * Return: 0, or -EINVAL with *@why (when @why is not NULL) a static string
 * naming the first setting out of range and its range.
 */
UFVM_API int ufvm_config_check(const struct ufvm_config *cfg, const char **why);

/*
 * ufvm_parse_size - parse a size the way UFVM_CACHE_PAGES is read: decimal
 * digits (no sign, no space, no 0x; leading zeros are decimal), then
 * optionally K, M, G or T (powers of 1024, any case), which may be
 * followed by "B" or "iB".  A number without a suffix counts @unit bytes
 * ("16" with @unit 4096 is 65536; "16K" is 16384 whatever @unit is).
 * Return: 0 and *@out, -EINVAL (bad syntax, @unit 0), or -ERANGE (the
 * result does not fit in 64 bits); *@out is unchanged on failure.
 */
UFVM_API int ufvm_parse_size(const char *s, uint64_t unit, uint64_t *out);

/*
 * ufvm_open - start an instance of ufvm (an address space and its pager).
 * @cfg: configuration, or NULL for ufvm_config_init()'s.
 * With cfg.stats_path (UFVM_STATS) set, the statistics file is created
 * (or opened for writing, its content kept until then) here, "%p" in its
 * name replaced by the pid, and its content replaced at ufvm_close().
 * Return: 0 and *out, or -EINVAL (bad configuration), -EPERM (userfaultfd
 * not permitted: see the message on stderr), -ENOSYS, -ENOMEM, or the
 * -errno of creating the statistics file (-ENOENT, -EACCES, ...: said on
 * stderr).
 */
UFVM_API int ufvm_open(const struct ufvm_config *cfg, struct ufvm **out);

/*
 * ufvm_close - write back every dirty page, unmap every region, stop the
 * pager, free everything.  Every ufvm_file still open is closed and freed:
 * its handle must not be used afterwards, not even by ufvm_file_close()
 * (close the files first, or not at all).  @vm itself is freed: a second
 * ufvm_close() is a use after free.
 * In a fork()ed child, which has a copy of the parent's instance and not
 * the instance (its regions and threads are the parent's), it does
 * nothing and returns -ECHILD.  A child of fork() may open and close
 * instances of its own; one made without fork()'s atfork handlers
 * (_Fork(), a raw system call) must not (its ufvm_close() could wait for
 * ever: docs/architecture.md, "fork()").
 * Return: 0, or the first write-back error (the data of that page is lost,
 * as it would be after a failed fsync of a closed file), or the error of
 * writing the statistics file (said on stderr); everything is freed even
 * then; -ECHILD in a fork()ed child.
 */
UFVM_API int ufvm_close(struct ufvm *vm);

/* Open flags for ufvm_file_open(). */
#define UFVM_RDONLY	0x0
#define UFVM_RDWR	0x2
#define UFVM_CREAT	0x40

/*
 * ufvm_file_open - open @path as a ufvm file: its page cache lives as long
 * as a file handle or a mapping refers to it.  UFVM_CREAT makes @path (mode
 * 0644, empty) if it does not exist; an existing file is opened as without
 * it (read-only unless UFVM_RDWR, so a file this process may only read
 * opens).
 * Return: 0 and *out, or -errno (-ENOENT, -EACCES, -EISDIR, -EINVAL: not a
 * regular file, or cfg.direct_io and the file system refuses O_DIRECT).
 */
UFVM_API int ufvm_file_open(struct ufvm *vm, const char *path, int flags,
		   struct ufvm_file **out);
/*
 * ufvm_file_close - close a handle.  The file's last user (handle or
 * mapping) writes back its dirty pages and fdatasyncs the store if ufvm
 * wrote to it, even while ufvm's own threads still hold it for a moment.
 * If that write-back fails, the error is returned and the file's cache is
 * dropped all the same, its unwritten pages with it (as a process's last
 * close of a file the kernel could not write back loses them): a caller
 * that must not lose them keeps a handle open and retries ufvm_fsync().
 * Return: 0, or that write-back's (or a not yet reported) error.
 */
UFVM_API int ufvm_file_close(struct ufvm_file *f);

/*
 * Bytes read or written, or -errno.  Both go through the page cache.
 * -EINVAL: a negative offset, or an end past the largest off_t (pwrite);
 * -EBADF: writing through a read-only handle; -EFBIG: the write would grow
 * the file past its limit (see "Limits" at the top); -ENOMEM: growing a
 * striped file maps its new chunks, and the process has no mappings left
 * (vm.max_map_count), nothing written; -EIO, -ENOSPC (the
 * failing store write's error), ufvm_pwrite only: a page had to be cached
 * to be written, and the cache is at its budget plus slack with dirty
 * pages the store refuses to take (docs/architecture.md, "Budget"; a
 * write-back is tried first, so a store that takes writes again ends
 * this at once).  A write fault gets SIGBUS then (with handler-thread
 * delivery the address stays poisoned for a while, a second or so when
 * ufvm's background thread is idle; the other deliveries try again at
 * each access: docs/architecture.md); reads never fail for room.
 * A ufvm_pwrite() that grew the file and then failed or came up short
 * takes the growth back to the end of what it wrote, unless another write
 * or a cached page past that end shows the growth in use; a mapping's
 * writes past that end in its last page are cut with it (they lie past the
 * file's end then, as writes past the end of a mapped file's last page do).
 */
UFVM_API ssize_t ufvm_pread(struct ufvm_file *f, void *buf, size_t len, off_t off);
UFVM_API ssize_t ufvm_pwrite(struct ufvm_file *f, const void *buf, size_t len, off_t off);

/* Hole punch: afterwards every reader of the range sees zeros.
 * Return: 0, -EINVAL (negative offset, length not positive, end past the
 * largest off_t), -EBADF (read-only handle), or the store's error (-EIO:
 * the punch loses no write; on a store that cannot punch holes part of
 * the range may read zeros). */
UFVM_API int ufvm_punch(struct ufvm_file *f, off_t off, off_t len);
/* Shrink or grow; accesses past the new end get SIGBUS.
 * Return: 0, -EINVAL, -EBADF, -EFBIG (past the file's growth limit),
 * -ENOMEM (growing a striped file maps its new chunks, and the process has
 * no mappings left; those it mapped are unmapped again), or the store's
 * error (-EIO, -ENOSPC); on an error the size is unchanged. */
UFVM_API int ufvm_truncate(struct ufvm_file *f, off_t size);
/* Write back every dirty page of the file and fdatasync the store. */
UFVM_API int ufvm_fsync(struct ufvm_file *f);
/*
 * Write back every dirty page of the file to the store file, without
 * fdatasync: the bytes are in the file (the kernel's page cache), not yet
 * durable (like sync_file_range or msync MS_ASYNC done at once).
 * Return: 0 or the first write error (reported again by the next sync).
 */
UFVM_API int ufvm_writeback(struct ufvm_file *f);
/* The file's size as ufvm sees it. */
UFVM_API int ufvm_file_size(struct ufvm_file *f, off_t *size);

/* Protection and flags for ufvm_map(). */
#define UFVM_PROT_READ	0x1
#define UFVM_PROT_WRITE	0x2
#define UFVM_MAP_SHARED	0x01	/* the only sharing mode; 0 means the same */
#define UFVM_MAP_FIXED	0x10	/* map exactly at *addr (page aligned), replacing
				   whatever is there, like mmap's MAP_FIXED; it
				   must not overlap another ufvm region unless
				   UFVM_MAP_REPLACE is given too */
#define UFVM_MAP_REPLACE 0x20	/* with UFVM_MAP_FIXED: the parts of ufvm regions
				   in the range are replaced (their dirty pages
				   written back); the other parts of those
				   regions stay mapped throughout.  The range
				   itself is never a hole another mmap could
				   take, but a thread touching it while it is
				   replaced may get SIGSEGV: the new mapping is
				   inaccessible until ufvm's fault handling
				   covers it.  If the map fails once the old
				   parts are out (-ENOMEM), they stay out (their
				   dirty pages written back) and the range is
				   left as ufvm_unmap_reserve() leaves it */

/*
 * ufvm_map - map @length bytes of @path at file offset @offset.
 * @offset must be page aligned; @length may run past the end of the file
 * (accesses past the end get SIGBUS).  A writable mapping needs a file
 * that can be opened for writing.  ufvm regions are not inherited by a
 * fork()ed child (MADV_DONTFORK): a child that touches one gets SIGSEGV,
 * never silently wrong data.
 * Return: 0 and *addr, or -EINVAL, -ENOENT, -EACCES, -EISDIR, -ENOMEM, or
 * -EOVERFLOW (@offset + @length, rounded up to pages, passes the largest
 * off_t).
 */
UFVM_API int ufvm_map(struct ufvm *vm, const char *path, off_t offset, size_t length,
	     int prot, int flags, void **addr);
UFVM_API int ufvm_map_file(struct ufvm_file *f, off_t offset, size_t length, int prot,
		  int flags, void **addr);

/*
 * ufvm_unmap - write back the region's dirty pages and unmap it.
 * @addr, @length must be exactly a region returned by ufvm_map().
 * Return: 0, -EINVAL (no such region), or a write-back error (the region is
 * unmapped regardless; the dirty pages stay in the file's cache).
 */
UFVM_API int ufvm_unmap(struct ufvm *vm, void *addr, size_t length);

/*
 * ufvm_unmap_range - munmap for ufvm: unmap whatever ufvm regions map in
 * [addr, addr+length) (@addr page aligned, @length rounded up to pages),
 * writing back their dirty pages.  A region that runs past either end is
 * split there: its other part stays mapped throughout, never unmapped for
 * a moment.  Parts of the range that ufvm does not map are left alone.
 * Return: 0, -EINVAL, -ENOMEM, or a write-back error (the range is
 * unmapped regardless; the dirty pages stay in the file's cache).
 */
UFVM_API int ufvm_unmap_range(struct ufvm *vm, void *addr, size_t length);

/*
 * ufvm_unmap_reserve - ufvm_unmap_range(), but what ufvm unmaps becomes an
 * inaccessible anonymous mapping (PROT_NONE, like mmap's with MAP_NORESERVE)
 * in the same step, so that no other thread's mmap can take the range
 * before the caller maps something there (with MAP_FIXED) or unmaps it.
 */
UFVM_API int ufvm_unmap_reserve(struct ufvm *vm, void *addr, size_t length);

/*
 * ufvm_protect - mprotect for ufvm: make [addr, addr+length) readable
 * (UFVM_PROT_READ) or readable and writable (UFVM_PROT_READ |
 * UFVM_PROT_WRITE).  Every page of the range must be mapped by ufvm
 * (-ENOMEM otherwise, nothing changed), and making it writable needs
 * regions mapped from a file opened for writing (-EACCES otherwise).
 * Regions running past either end are split there; what stays mapped is
 * never unmapped for a moment, but pages mapped read-only in a part made
 * writable are dropped and fault back in (so that their first write is
 * seen and they are written back).  Pages mapped writable in a part made
 * read-only stay dirty until written back.  A write to a read-only part
 * raises SIGSEGV.  PROT_NONE is not a ufvm protection: unmap instead.
 * Return: 0, -EINVAL, -ENOMEM, -EACCES; on an error past the checks (no
 * memory, a kernel refusal) part of the range may have changed, as with
 * mprotect.
 */
UFVM_API int ufvm_protect(struct ufvm *vm, void *addr, size_t length, int prot);

/*
 * ufvm_sync - msync(MS_SYNC): write back the dirty pages of the mapped range
 * [addr, addr+length) and fdatasync the stores.  The range may cover parts
 * of several regions; every byte of it must be mapped by ufvm.
 */
UFVM_API int ufvm_sync(struct ufvm *vm, void *addr, size_t length);

/*
 * ufvm_zap - drop the mappings of [addr, addr+length) (madvise DONTNEED on a
 * shared file mapping): the pages stay cached, dirty ones stay dirty, and
 * the next access faults them back in (a minor or speculative fault).
 * The range must be page aligned and wholly mapped by ufvm.  Pages the
 * application mlock()ed are dropped too.
 * Return: 0, -EINVAL, -ENOMEM (part of the range not mapped by ufvm), or
 * the kernel's -errno for pages it could not unmap (they stay mapped, and
 * a write to them is still seen).
 */
UFVM_API int ufvm_zap(struct ufvm *vm, void *addr, size_t length);

/* Statistics: see docs/stats.md. */
enum ufvm_counter {
	UFVM_CTR_FAULTS,		/* fault messages served */
	UFVM_CTR_SPEC_HIT,		/* served speculatively under RCU */
	UFVM_CTR_SPEC_FALLBACK_NOREGION,
	UFVM_CTR_SPEC_FALLBACK_NOPAGE,
	UFVM_CTR_SPEC_FALLBACK_LOCKED,
	UFVM_CTR_SPEC_FALLBACK_NOTUPTODATE,
	UFVM_CTR_SPEC_FALLBACK_SEQ,
	UFVM_CTR_SPEC_FALLBACK_SIZE,
	UFVM_CTR_SPEC_FALLBACK_WRITE,
	UFVM_CTR_MINOR,			/* locked path, page cached */
	UFVM_CTR_MAJOR,			/* locked path, read from the store */
	UFVM_CTR_RETRY,			/* faults that dropped mmap_lock and retried */
	UFVM_CTR_MKWRITE,		/* first write to a clean page */
	UFVM_CTR_SIGBUS,		/* faults answered with SIGBUS */
	UFVM_CTR_FAULTAROUND,		/* faults that mapped more than one page */
	UFVM_CTR_FAULTAROUND_PAGES,	/* extra pages they mapped */
	UFVM_CTR_EEXIST,		/* install found the page mapped already */
	UFVM_CTR_EAGAIN,		/* install was partly done */
	UFVM_CTR_DUP,			/* a fault on a page counted mapped: a duplicate,
					   or the kernel unmapped it (mapped again) */
	UFVM_CTR_NOREGION,		/* fault on an address no region covers */
	UFVM_CTR_STORE_READS,		/* store read calls */
	UFVM_CTR_STORE_READ_PAGES,
	UFVM_CTR_STORE_WRITES,		/* store write calls */
	UFVM_CTR_STORE_WRITE_PAGES,
	UFVM_CTR_STORE_ERRORS,
	UFVM_CTR_PAGES_INVALIDATED,	/* pages dropped by punch/truncate */
	UFVM_CTR_ZAPS,			/* zap calls */
	UFVM_CTR_INSTALL_ERRORS,	/* installs the kernel refused */
	UFVM_CTR_EVICTIONS,		/* pages reclaimed */
	UFVM_CTR_EVICT_WRITEBACK,	/* of which written back first */
	UFVM_CTR_RECLAIM_ZAPS,		/* mapped pages zapped to sample use */
	UFVM_CTR_DIRECT_RECLAIM,	/* direct reclaim rounds of fills (a fill
					   that finds no room may take several) */
	UFVM_CTR_READAHEAD_PAGES,	/* pages read ahead asynchronously */
	UFVM_CTR_READAHEAD_ASYNC,	/* asynchronous windows started */
	UFVM_CTR_FLUSH_PAGES,		/* pages written by background write-back */
	UFVM_CTR_NOROOM,		/* fills refused: the cache is at its budget
					   plus slack with pages whose write-back
					   fails (docs/architecture.md, "Budget") */
	UFVM_CTR_FILL_MAPPED,		/* 1-page fills that made and mapped their
					   frame in one call (UFFDIO_COPY) */
	UFVM_CTR_FILL_WAITS,		/* fills that waited for a pending shrinking
					   truncate's outcome (add/block mode) */
	UFVM_CTR_HANDLER_PARKS,		/* handlers that stopped reading: no
					   faulting thread on their CPU */
	UFVM_CTR_HANDLER_UNPARKS,	/* handlers woken to read again: a
					   thread on their CPU faulted */
	UFVM_CTR_INSTALL_SPLITS,	/* installs offered to an installer thread
					   (install_split) */
	UFVM_CTR_INSTALLER_PAGES,	/* pages installer threads mapped */
	UFVM_CTR_WRITEAHEAD_PAGES,	/* pages write faults dirtied ahead of a
					   sequential writer (write_ahead) */
	UFVM_CTR__COUNT
};

/* Fault paths with a latency histogram (pager-side service time). */
enum ufvm_path {
	UFVM_PATH_SPEC,		/* speculative hit */
	UFVM_PATH_MINOR,	/* locked path, cached */
	UFVM_PATH_MAJOR,	/* locked path, store read */
	UFVM_PATH_MKWRITE,
	UFVM_PATH_RETRY,	/* whole fault that took a retry */
	UFVM_PATH_SIGBUS,
	UFVM_PATH__COUNT
};

struct ufvm_latency {
	uint64_t count;
	uint64_t sum_ns;
	uint64_t p50_ns, p90_ns, p99_ns, p999_ns, max_ns;
};

struct ufvm_stats {
	uint64_t counters[UFVM_CTR__COUNT];
	struct ufvm_latency latency[UFVM_PATH__COUNT];
	uint64_t cached_pages;		/* pages in all page caches now */
	uint64_t dirty_pages;
	uint64_t regions;
	uint64_t meta_bytes;		/* ufvm's metadata for the cached pages */
	uint64_t budget_pages;		/* 0 = unlimited */
	uint64_t cached_pages_max;	/* the most ever cached at once */
	/*
	 * ufvm's own time in the faults served from the cache (paths spec
	 * and minor): each one's service time minus the time spent in the
	 * backend's call that maps the pages (UFFDIO_CONTINUE; mmap on the
	 * sigsegv backend), which includes the kernel's wake-up of the
	 * faulting thread.  Its count is those faults'.
	 */
	struct ufvm_latency own;
};

UFVM_API int ufvm_stats(struct ufvm *vm, struct ufvm_stats *out);
/*
 * Write the statistics snapshot as one JSON object (docs/stats.md has the
 * schema), with every histogram's non-empty buckets.  Return: 0 or -errno.
 */
UFVM_API int ufvm_stats_write_json(struct ufvm *vm, FILE *out);
UFVM_API const char *ufvm_counter_name(unsigned int c);
UFVM_API const char *ufvm_path_name(unsigned int p);

/*
 * Fault injection, for tests and experiments: make store reads (or writes,
 * or hole punches) of the byte range [off, off+len) of @f fail with -EIO
 * until cleared (len 0 clears).  Latency is injected with
 * cfg.store_latency_us.
 */
#define UFVM_INJECT_READ_EIO	1
#define UFVM_INJECT_WRITE_EIO	2
#define UFVM_INJECT_PUNCH_EIO	3
UFVM_API int ufvm_inject(struct ufvm_file *f, int what, off_t off, off_t len);

/*
 * Debug hooks, for race tests: @fn is called at the points below, from
 * whichever thread reaches them, with ufvm's locks held as noted.  It may
 * sleep to widen a race window; it must not call ufvm.  NULL removes it.
 */
#define UFVM_HOOK_FILL		1	/* before a fill's store read; a = byte offset,
					   b = length; page locked, fill side held */
#define UFVM_HOOK_AROUND_CHECKED 2	/* fault-around accepted neighbour a (page
					   offset) and has not installed it; ptl held */
#define UFVM_HOOK_INVALIDATED	3	/* punch/truncate dropped the cached pages of
					   [a, a+b) bytes; frames not freed yet, store
					   unchanged; invalidate side held */
#define UFVM_HOOK_EVICT		4	/* reclaim dropped page a from the cache; with
					   UFVM_DEBUG_EVICT_PUNCH_LATE its frame is
					   freed after the hook returns */
#define UFVM_HOOK_SPEC_FOUND	5	/* a speculative fault found the region of
					   address a and page b cached and up to
					   date; RCU read section, no lock held */
#define UFVM_HOOK_HANDLER_STOP	6	/* ufvm_close: a userfaultfd handler thread
					   read a message that stops it (a = the
					   sentinel address) and has not answered
					   it; no lock held */
#define UFVM_HOOK_PAST_EOF	7	/* a fault found byte offset a past the end
					   of the file (size b) and has not answered
					   SIGBUS; mmap_lock held shared */
#define UFVM_HOOK_WRITEBACK	8	/* before a write-back's store write of
					   [a, a+b) bytes; the run's pages locked */
#define UFVM_HOOK_FILLED	9	/* a major fault unlocked the b pages from
					   byte offset a it filled; with retry on
					   it holds no lock (mmap_lock dropped) */
#define UFVM_HOOK_TAKEN_OUT	10	/* ufvm_unmap: the regions of [a, a+b) are
					   out of the address space and the rmap,
					   not yet unmapped from the process;
					   mmap_lock held for writing */
#define UFVM_HOOK_WB_EPOCH	11	/* a write-back run from byte offset a read
					   the flush epoch b and has not counted
					   itself in it; the run's pages locked */
#define UFVM_HOOK_DISCARDED	12	/* a major fault whose store read failed
					   discarded its page (byte offset a); with
					   retry on it holds no lock */
#define UFVM_HOOK_AROUND_RUNS	13	/* fault-around groups its pages into dirty
					   and clean runs and is at page offset a;
					   the region's ptl held, no page lock */
#define UFVM_HOOK_DROP_FOUND	14	/* a file's last close found the page at
					   byte offset a to drop from the cache;
					   no lock held */
#define UFVM_HOOK_FILL_SIZE	15	/* a 1-page fill of byte offset a is about
					   to read the file's size; page locked */
#define UFVM_HOOK_SEGV_INSTALLED 16	/* the sigsegv backend mapped [a, a+b) and
					   has not yet kept it out of fork()
					   children; the region's ptl held */
#define UFVM_HOOK_HANDLER_PARK	17	/* a uffd handler pinned to CPU a counted
					   itself out of the reading handlers
					   and is about to park; no lock held */
#define UFVM_HOOK_INSTALL_SPLIT	18	/* an installer thread took the chunk
					   [a, a+b) of a split install and is
					   about to map it; it holds no lock
					   (the install's caller holds the
					   region's ptl) */
#define UFVM_HOOK_SPLIT_POSTED	19	/* a split install of [a, a+b) offered
					   its chunks to an installer and takes
					   none yet; the region's ptl held */
#define UFVM_HOOK_FILE_STAT	20	/* ufvm_map()/ufvm_file_open() stat()ed the
					   path (a = the inode number), found no
					   object of that inode, and has not
					   opened the path yet; the instance's
					   registry lock held */
#define UFVM_HOOK_PUNCHED	21	/* a punch of [a, a+b) punched the store
					   and has not yet dropped the range's
					   pages from the cache; the invalidate
					   lock held exclusive */
#define UFVM_HOOK_WB_CHECK	22	/* write-back is about to check the run
					   [a, a+b) against punches under way;
					   the run's pages locked */
#define UFVM_HOOK_ADD_HELD	23	/* UFVM_INVALIDATE=addblock: a fill took
					   the add side to insert pages from
					   byte offset a; held until the hook
					   returns and the pages are in */
#define UFVM_HOOK_ATTACHED	24	/* the userfaultfd backend mapped a new
					   region at [a, a+b) and has not yet
					   registered it (nor made it
					   accessible); mmap_lock held for
					   writing */
#define UFVM_HOOK_WB_PROTECTED	25	/* a write-back write-protected the run
					   [a, a+b) in every region and has not
					   cleaned it yet; its pages locked */
#define UFVM_HOOK_DROP_PAGE	26	/* a punch or truncate is about to lock
					   the page at byte offset a to drop it
					   (b = 0), or locked it and has not
					   unmapped it (b = 1); the invalidate
					   lock held exclusive */
#define UFVM_HOOK_GROW_ZEROED	27	/* a growing truncate or write zeroed
					   the old last page past the old size a
					   and has not published the new size b;
					   the invalidate lock held exclusive */
typedef void (*ufvm_hook_fn)(void *arg, unsigned int point, uint64_t a, uint64_t b);
UFVM_API int ufvm_debug_hook(struct ufvm *vm, ufvm_hook_fn fn, void *arg);

/* The delivery this instance runs: "uffd", "uffd-inthread" or "sigsegv". */
UFVM_API const char *ufvm_backend_name(struct ufvm *vm);

/* Human-readable description of a -errno returned by ufvm. */
UFVM_API const char *ufvm_strerror(int err);

#ifdef __cplusplus
}
#endif
#endif /* UFVM_H */
