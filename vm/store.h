/* SPDX-License-Identifier: MIT */
/*
 * vm/store.h - where a file's bytes live.
 *
 * A store is an ops table plus common state: injected read latency and
 * injected errors (for experiments and tests), applied by the vm_store_*
 * wrappers so that every store kind gets them.  Offsets and lengths are in
 * bytes.  Every op may block (I/O); none is called with a spinning lock.
 */
#ifndef UFVM_VM_STORE_H
#define UFVM_VM_STORE_H

#include <sys/types.h>

#include "vm/compat.h"

struct vm_store;

struct vm_store_ops {
	const char *name;
	/* Read @len bytes at @off into @buf; bytes past the end read as zero. */
	int (*read)(struct vm_store *s, void *buf, uint64_t off, size_t len);
	/*
	 * Optional: copy @len bytes at @off into the file @fd at the same
	 * offset through the pipe @pipefd (empty on entry), without a copy
	 * into a user buffer; used only where the store sets ->read_to_fd.
	 * Return: the bytes copied (fewer at the end of the file; the rest
	 * is the caller's) or -errno (the pipe may hold data then).
	 */
	ssize_t (*read_to_fd)(struct vm_store *s, int fd, uint64_t off, size_t len,
			      const int pipefd[2]);
	/*
	 * Optional: ->read, but only if it needs no I/O (the bytes are in
	 * memory already); the caller holds locks it would rather not hold
	 * across I/O.  Return: 0, -EAGAIN (it would wait: use ->read), or
	 * -errno.
	 */
	int (*read_nowait)(struct vm_store *s, void *buf, uint64_t off, size_t len);
	int (*write)(struct vm_store *s, const void *buf, uint64_t off, size_t len);
	/* On failure, *untouched: the file is known unchanged (no byte zeroed). */
	int (*punch)(struct vm_store *s, uint64_t off, uint64_t len, bool *untouched);
	int (*truncate)(struct vm_store *s, uint64_t size);
	int (*sync)(struct vm_store *s);
	int (*size)(struct vm_store *s, uint64_t *size);
	void (*destroy)(struct vm_store *s);
};

struct vm_store {
	const struct vm_store_ops *ops;	/* (c) */
	unsigned int latency_us;	/* (a) added to every read */
	bool writable;			/* (c) */
	bool read_to_fd;		/* (c) ops->read_to_fd may be used */
	bool read_nowait;		/* (c) ops->read_nowait may be used */
	/* injected errors: [off, off+len) fails with -EIO; len 0 = none (a) */
	uint64_t rerr_off, rerr_len;
	uint64_t werr_off, werr_len;
	uint64_t perr_off, perr_len;	/* hole punches */
};

/* vm_store_file_open() flags */
#define VM_STORE_WRITABLE	0x1u	/* open it read-write */
#define VM_STORE_CREATE		0x2u	/* create it if it does not exist */
#define VM_STORE_DIRECT		0x4u	/* O_DIRECT: bypass the host's page cache */

/*
 * vm_store_file_open - open the local file @path as a store.
 * With VM_STORE_DIRECT, whole aligned blocks are read and written with
 * O_DIRECT (vm/store.c says how the rest is done); a file system that
 * refuses O_DIRECT, or says it would not honour it, fails the open.
 * Context: may sleep (open, statx).
 * Return: 0 and *@out, *@dev, *@ino; -EINVAL (not a regular file, or no
 * O_DIRECT: a message on stderr), -EISDIR, -ESTALE (@path was replaced
 * while it was being opened), or the -errno of open(2).
 */
int vm_store_file_open(const char *path, unsigned int flags,
		       struct vm_store **out, dev_t *dev, ino_t *ino);

/* Context: may sleep (I/O, injected latency). */
int vm_store_read(struct vm_store *s, void *buf, uint64_t off, size_t len);
/*
 * ->read_nowait.  Injected latency or an injected error in the range make
 * it -EAGAIN (vm_store_read() injects them), as does a store without the op.
 * Context: does not sleep on I/O.  Return: 0, -EAGAIN, or -errno.
 */
int vm_store_read_nowait(struct vm_store *s, void *buf, uint64_t off, size_t len);
/* Can vm_store_read_nowait() read at all (not O_DIRECT, no injected latency)? */
static inline bool vm_store_may_read_nowait(struct vm_store *s)
{
	return s->read_nowait && !READ_ONCE(s->latency_us);
}
/*
 * ->read_to_fd with the injected latency and errors.  Return: as the op,
 * or -EOPNOTSUPP (the store cannot: read into a buffer; the pipe untouched).
 */
ssize_t vm_store_read_to_fd(struct vm_store *s, int fd, uint64_t off, size_t len,
			    const int pipefd[2]);
int vm_store_write(struct vm_store *s, const void *buf, uint64_t off, size_t len);
/*
 * Punch [off, off+len): a hole, or zeros where the file system has no
 * holes.  Return: 0 or -errno; on failure *@untouched (if not NULL) says
 * whether the file is known unchanged (an injected error, or a refusal
 * before anything was done) or may have part of the range zeroed.
 */
int vm_store_punch(struct vm_store *s, uint64_t off, uint64_t len, bool *untouched);
int vm_store_truncate(struct vm_store *s, uint64_t size);
int vm_store_sync(struct vm_store *s);
int vm_store_size(struct vm_store *s, uint64_t *size);
void vm_store_destroy(struct vm_store *s);

#endif /* UFVM_VM_STORE_H */
