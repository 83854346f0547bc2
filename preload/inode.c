// SPDX-License-Identifier: MIT
/*
 * preload/inode.c - the files the program has open, and the fd table.
 *
 * A pl_inode stands for one file (dev, ino) that matches UFVM_MATCH and
 * that the program has open or mapped.  Every fd the program opens on such
 * a file points to it from the fd table; every region holds it too.  At
 * the first managed mapping of the file the inode becomes *active*: it
 * opens a ufvm_file (through our own duplicate of the fd, by its
 * /proc/self/fd path, so deleted and renamed files work), and from then on
 * every read, write, truncate and sync on any of its fds goes through that
 * ufvm_file, so they stay coherent with the mappings.  It stays active
 * until no fd and no mapping refers to it; the last reference closes the
 * ufvm_file (which writes the cache back) after pl_lock is dropped.
 *
 * The fd table is read without pl_lock by the fast path of every I/O call
 * (an fd with no entry, or whose inode is not active, goes straight to
 * libc); entries are written under pl_lock.  Inodes are never freed, only
 * recycled, so a stale pointer read by the fast path is harmless: the
 * slow path checks again under pl_lock, and checks that the fd still is
 * the file (the program may have closed it behind our back, e.g. with
 * fclose() of an fdopen()ed stream, which calls close inside libc).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <sys/resource.h>

#include "preload/preload.h"

#define PL_HASH_SIZE 256

int pl_fd_max;				/* (c) */
static struct pl_inode **pl_fdtab;	/* (c) array; entries written under L, read (a) */
static uint8_t *pl_fdpriv;		/* (c) array of PL_PRIV_*, written under L */

/* What pl_fdpriv says of an fd number. */
#define PL_PRIV_NONE	0	/* not ours */
#define PL_PRIV_OURS	1	/* one of our own fds */
#define PL_PRIV_CLOSING	2	/* ours, being closed (pl_priv_close_locked()) */
static struct pl_inode *pl_hash[PL_HASH_SIZE];	/* (L) */
static struct pl_inode *pl_free;	/* (L) recycled inodes */
static struct pl_inode *pl_dead;	/* (L) refs dropped to 0, file still to close */
static int pl_nactive;			/* (a) active inodes */

int pl_inode_init(void)
{
	struct rlimit rl;
	size_t bytes;
	void *p;

	pl_fd_max = 65536;
	if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_max != RLIM_INFINITY &&
	    rl.rlim_max > (rlim_t)pl_fd_max)
		pl_fd_max = rl.rlim_max > (1u << 20) ? (1 << 20) : (int)rl.rlim_max;
	bytes = PL_ROUND_UP((size_t)pl_fd_max * (sizeof(*pl_fdtab) + 1));
	p = REAL(mmap)(NULL, bytes, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return -errno;
	pl_fdtab = p;
	pl_fdpriv = (uint8_t *)(pl_fdtab + pl_fd_max);
	return 0;
}

static unsigned int pl_hash_of(dev_t dev, ino_t ino)
{
	uint64_t h = ((uint64_t)dev * 0x9e3779b97f4a7c15ull) ^ (uint64_t)ino;

	return (unsigned int)((h ^ (h >> 29)) % PL_HASH_SIZE);
}

struct pl_inode *pl_inode_lookup_locked(dev_t dev, ino_t ino)
{
	struct pl_inode *p;

	for (p = pl_hash[pl_hash_of(dev, ino)]; p; p = p->next)
		if (p->dev == dev && p->ino == ino)
			return p;
	return NULL;
}

/*
 * More free inodes, from a chunk of anonymous memory, not malloc: open()
 * tracks its fd, and open() may be called from a signal handler that
 * interrupted malloc.  Inodes are recycled, never unmapped.
 * Context: L held.
 */
static void pl_inode_refill_locked(void)
{
	enum { CHUNK = 64 << 10 };
	struct pl_inode *c = REAL(mmap)(NULL, CHUNK, PROT_READ | PROT_WRITE,
					MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	size_t i;

	if (c == MAP_FAILED)
		return;
	for (i = 0; i < CHUNK / sizeof(*c); i++) {
		c[i].next = pl_free;
		pl_free = &c[i];
	}
}

/* Context: L held.  Return: the inode of (dev, ino) with a new reference, or NULL. */
static struct pl_inode *pl_inode_get_or_create_locked(const struct stat *st,
						      const char *path)
{
	struct pl_inode *p = pl_inode_lookup_locked(st->st_dev, st->st_ino);
	unsigned int h;

	if (p) {
		p->refs++;
		return p;
	}
	if (!pl_free)
		pl_inode_refill_locked();
	p = pl_free;
	if (!p)
		return NULL;
	pl_free = p->next;
	memset(p, 0, sizeof(*p));
	pthread_mutex_init(&p->append_lock, NULL);
	pthread_mutex_init(&p->pos_lock, NULL);
	p->dev = st->st_dev;
	p->ino = st->st_ino;
	p->refs = 1;
	p->priv_fd = -1;
	snprintf(p->path, sizeof(p->path), "%s", path);
	h = pl_hash_of(p->dev, p->ino);
	p->next = pl_hash[h];
	pl_hash[h] = p;
	return p;
}

void pl_inode_get_locked(struct pl_inode *ino)
{
	ino->refs++;
}

/*
 * pl_priv_dup_locked - a CLOEXEC duplicate of @fd (a fd of @ino's file),
 * numbered @min or more, below pl_fd_max and marked ours, so that the
 * program's close() and dup2() leave it alone.  A program thread that
 * closes numbers it never opened may close it between the dup and the
 * mark: then the number, no longer @ino's file (it may be the program's
 * own fd by now), is left to the program and the dup done again.
 * Context: L held.  Return: the fd, or -errno.
 */
static int pl_priv_dup_locked(const struct pl_inode *ino, int fd, int min)
{
	struct stat st;
	int priv, tries;

	for (tries = 0; tries < 4; tries++) {
		priv = REAL(fcntl)(fd, F_DUPFD_CLOEXEC, min);
		if (priv < 0)
			return -errno;
		if (priv >= pl_fd_max) {
			REAL(close)(priv);
			return -EMFILE;
		}
		__atomic_store_n(&pl_fdpriv[priv], PL_PRIV_OURS, __ATOMIC_SEQ_CST);
		if (!REAL(fstat)(priv, &st) && st.st_dev == ino->dev && st.st_ino == ino->ino)
			return priv;
		__atomic_store_n(&pl_fdpriv[priv], PL_PRIV_NONE, __ATOMIC_RELAXED);
	}
	return -EBADF;
}

/*
 * pl_priv_close_locked - close @ino's own fd, if it has one.  Its number is
 * marked "closing" across the close(): a program thread that closes or
 * dup2()s over that number meanwhile waits (pl_fd_is_priv()) until it is
 * free.  Otherwise it could close ours, and ours, closed later, would be
 * the fd its next open got; or, if the mark went first, its close() of
 * that open's fd would be refused.  Under L: a fork() (its prepare takes
 * L) never copies a "closing" mark, nor does a signal handler of this
 * thread wait for it (pl_guard is raised).
 * Context: L held.
 */
static void pl_priv_close_locked(struct pl_inode *ino)
{
	int fd = ino->priv_fd, cs;

	if (fd < 0)
		return;
	/*
	 * close() is a cancellation point: a thread cancelled there would
	 * unwind holding L, the mark left "closing" for ever.
	 */
	pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &cs);
	if (fd < pl_fd_max)
		__atomic_store_n(&pl_fdpriv[fd], PL_PRIV_CLOSING, __ATOMIC_RELAXED);
	REAL(close)(fd);
	if (fd < pl_fd_max)
		__atomic_store_n(&pl_fdpriv[fd], PL_PRIV_NONE, __ATOMIC_RELEASE);
	pthread_setcancelstate(cs, NULL);
	ino->priv_fd = -1;
}

/*
 * Drop a reference.  The last one unhooks the inode; its ufvm_file is
 * closed by pl_lock_release(), outside the lock.  Context: L held.
 */
void pl_inode_put_locked(struct pl_inode *ino)
{
	struct pl_inode **pp;

	if (--ino->refs)
		return;
	for (pp = &pl_hash[pl_hash_of(ino->dev, ino->ino)]; *pp; pp = &(*pp)->next) {
		if (*pp == ino) {
			*pp = ino->next;
			break;
		}
	}
	if (ino->active) {
		__atomic_store_n(&ino->active, 0, __ATOMIC_RELEASE);
		__atomic_fetch_sub(&pl_nactive, 1, __ATOMIC_RELAXED);
	}
	if (pl_teeth & PL_TEETH_PRIV_LATE) {	/* the bug, for tests: reap closes it */
		if (ino->priv_fd >= 0 && ino->priv_fd < pl_fd_max)
			__atomic_store_n(&pl_fdpriv[ino->priv_fd], PL_PRIV_NONE, __ATOMIC_RELAXED);
	} else {
		pl_priv_close_locked(ino);
	}
	ino->next = pl_dead;
	pl_dead = ino;
}

void pl_inode_drop_failed_locked(struct pl_inode *ino, void *arg)
{
	(void)arg;
	if (!ino->active || ino->uf)
		return;
	__atomic_store_n(&ino->active, 0, __ATOMIC_RELEASE);
	__atomic_fetch_sub(&pl_nactive, 1, __ATOMIC_RELAXED);
	pl_priv_close_locked(ino);
}

void pl_inode_put(struct pl_inode *ino)
{
	if (!ino)
		return;
	pl_lock_acquire();
	pl_inode_put_locked(ino);
	pl_lock_release();
}

struct pl_inode *pl_inode_take_dead_locked(void)
{
	struct pl_inode *d = pl_dead;

	pl_dead = NULL;
	return d;
}

/*
 * Close the ufvm files of dead inodes (the last close writes the cache
 * back) and recycle them.  Context: L not held; may sleep.
 */
void pl_inode_reap(struct pl_inode *dead)
{
	struct pl_inode *p, *next;
	int err;

	for (p = dead; p; p = p->next) {
		if (p->uf) {
			pl_guard++;
			err = ufvm_file_close(p->uf);
			pl_guard--;
			if (err)
				pl_warn_once("%s: write-back at last close failed: %s", p->path,
					     ufvm_strerror(err));
			p->uf = NULL;
		}
		if (p->priv_fd >= 0) {	/* PL_TEETH_PRIV_LATE left it open */
			REAL(close)(p->priv_fd);
			p->priv_fd = -1;
		}
	}
	pl_guard++;
	pthread_mutex_lock(&pl_lock);
	for (p = dead; p; p = next) {
		next = p->next;
		p->next = pl_free;
		pl_free = p;
	}
	pthread_mutex_unlock(&pl_lock);
	pl_guard--;
}

bool pl_any_active(void)
{
	return __atomic_load_n(&pl_nactive, __ATOMIC_RELAXED) > 0;
}

bool pl_inode_known(dev_t dev, ino_t ino)
{
	bool known;

	pl_lock_acquire();
	known = pl_inode_lookup_locked(dev, ino) != NULL;
	pl_lock_release();
	return known;
}

/*
 * Does this fd's file qualify?  Its path must match (pl_match()), unless
 * the file is tracked already (opened or mapped by a name that matched):
 * then it qualifies whatever it is called now, deleted, or reached by a
 * name UFVM_MATCH leaves out (a hard link), for its fds and mappings must
 * all see ufvm's cache.  Fills @st and @path.  Context: L not held.
 */
static bool pl_fd_qualifies(int fd, struct stat *st, char *path, size_t len)
{
	char link[64];
	ssize_t n;

	int fl = REAL(fcntl)(fd, F_GETFL);

	/* An O_PATH fd reads and maps nothing (EBADF): not ours to serve. */
	if (fl < 0 || (fl & O_PATH) || REAL(fstat)(fd, st) || !S_ISREG(st->st_mode))
		return false;
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, path, len - 1);
	if (n <= 0)
		return false;
	path[n] = '\0';
	return pl_match(path) || pl_inode_known(st->st_dev, st->st_ino);
}

static void pl_fd_set_locked(int fd, struct pl_inode *ino)
{
	struct pl_inode *old = pl_fdtab[fd];

	__atomic_store_n(&pl_fdtab[fd], ino, __ATOMIC_RELEASE);
	if (old)
		pl_inode_put_locked(old);
}

/* pl_fd_track - the program opened @fd: remember its file if it qualifies. */
void pl_fd_track(int fd)
{
	char path[4096];
	struct pl_inode *ino = NULL;
	struct stat st;
	bool ok;

	if (fd < 0 || fd >= pl_fd_max)
		return;
	ok = pl_fd_qualifies(fd, &st, path, sizeof(path));
	if ((!ok && !__atomic_load_n(&pl_fdtab[fd], __ATOMIC_RELAXED)) || pl_foreign())
		return;
	pl_lock_acquire();
	if (ok)
		ino = pl_inode_get_or_create_locked(&st, path);
	pl_fd_set_locked(fd, ino);
	pl_lock_release();
}

/*
 * pl_fd_track_inherited - track the fds open before the preload started
 * (inherited across exec: a shell's redirections, a parent's fds), which
 * no open() of ours saw, so that their I/O goes through ufvm once their
 * file is managed.  Context: the constructor, L not held.
 */
void pl_fd_track_inherited(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;

	if (!d)
		return;
	while ((e = readdir(d))) {
		char *end;
		long fd = strtol(e->d_name, &end, 10);

		if (e->d_name[0] >= '0' && e->d_name[0] <= '9' && !*end && fd != dirfd(d))
			pl_fd_track((int)fd);
	}
	closedir(d);
}

void pl_fd_untrack(int fd)
{
	if (fd < 0 || fd >= pl_fd_max || !__atomic_load_n(&pl_fdtab[fd], __ATOMIC_RELAXED) ||
	    pl_foreign())
		return;
	pl_lock_acquire();
	pl_fd_set_locked(fd, NULL);
	pl_lock_release();
}

/* pl_fd_dup - @newfd is now a duplicate of @oldfd. */
void pl_fd_dup(int oldfd, int newfd)
{
	struct pl_inode *ino;

	if (newfd < 0 || newfd >= pl_fd_max || oldfd < 0 || oldfd >= pl_fd_max)
		return;
	if ((!__atomic_load_n(&pl_fdtab[oldfd], __ATOMIC_RELAXED) &&
	     !__atomic_load_n(&pl_fdtab[newfd], __ATOMIC_RELAXED)) || pl_foreign())
		return;
	pl_lock_acquire();
	ino = pl_fdtab[oldfd];
	if (ino)
		ino->refs++;
	pl_fd_set_locked(newfd, ino);
	pl_lock_release();
}

/*
 * pl_fd_inode - the inode of @fd, referenced, for mmap: tracked already, or
 * tracked now if its file qualifies (an fd opened before the preload
 * started, or inside libc, e.g. by fopen).
 * Context: L not held.  Return: the inode with a reference, or NULL (not a
 * file to manage).
 */
struct pl_inode *pl_fd_inode(int fd)
{
	char path[4096];
	struct pl_inode *ino;
	struct stat st;

	if (fd < 0 || fd >= pl_fd_max)
		return NULL;
	if (!pl_fd_qualifies(fd, &st, path, sizeof(path))) {
		pl_fd_untrack(fd);
		return NULL;
	}
	pl_lock_acquire();
	ino = pl_fdtab[fd];
	if (!ino || ino->dev != st.st_dev || ino->ino != st.st_ino) {
		ino = pl_inode_get_or_create_locked(&st, path);	/* the table's */
		pl_fd_set_locked(fd, ino);
	}
	if (ino)
		ino->refs++;	/* the caller's */
	pl_lock_release();
	return ino;
}

/*
 * pl_fd_get - the active inode of @fd, referenced, for an I/O call; NULL
 * when the call should go to libc (not a managed file, or not mapped yet).
 * Context: L not held.  The caller drops the reference with pl_inode_put().
 */
struct pl_inode *pl_fd_get(int fd)
{
	struct pl_inode *ino;
	struct stat st;
	int tries;

	for (tries = 0; tries < 2; tries++) {
		if (fd < 0 || fd >= pl_fd_max)
			return NULL;
		ino = __atomic_load_n(&pl_fdtab[fd], __ATOMIC_ACQUIRE);
		if (!ino || !__atomic_load_n(&ino->active, __ATOMIC_ACQUIRE))
			return NULL;
		if (REAL(fstat)(fd, &st))
			return NULL;
		pl_lock_acquire();
		ino = pl_fdtab[fd];
		if (ino && ino->active && ino->dev == st.st_dev && ino->ino == st.st_ino) {
			ino->refs++;
			pl_lock_release();
			return ino;
		}
		if (ino && (ino->dev != st.st_dev || ino->ino != st.st_ino)) {
			pl_fd_set_locked(fd, NULL);
			pl_lock_release();
			pl_fd_track(fd);	/* the fd was reused behind our back */
			continue;
		}
		pl_lock_release();
		return NULL;
	}
	return NULL;
}

/*
 * pl_inode_activate_locked - open the ufvm_file of @ino, through @fd.
 * Context: L held, ufvm running.  Return: 0 or -errno.
 */
int pl_inode_activate_locked(struct pl_inode *ino, int fd)
{
	struct ufvm_file *uf;
	char path[64];
	int priv, err;

	if (ino->uf)
		return 0;
	priv = pl_priv_dup_locked(ino, fd, 100);
	if (priv == -EINVAL || priv == -EMFILE)	/* no number from 100 */
		priv = pl_priv_dup_locked(ino, fd, 3);
	if (priv < 0)
		return priv;
	ino->priv_fd = priv;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", priv);
	pl_guard++;
	err = ufvm_file_open(pl_vm, path, UFVM_RDWR, &uf);
	ino->writable = !err;
	if (err == -EACCES || err == -EROFS || err == -EPERM || err == -ETXTBSY)
		err = ufvm_file_open(pl_vm, path, UFVM_RDONLY, &uf);
	pl_guard--;
	if (err) {
		pl_priv_close_locked(ino);
		return err;
	}
	ino->uf = uf;
	__atomic_fetch_add(&pl_nactive, 1, __ATOMIC_RELAXED);
	__atomic_store_n(&ino->active, 1, __ATOMIC_RELEASE);
	pl_log("managing %s (%s)", ino->path, ino->writable ? "read-write" : "read-only");
	return 0;
}

void pl_inode_for_each_locked(void (*fn)(struct pl_inode *ino, void *arg), void *arg)
{
	struct pl_inode *p;
	int h;

	for (h = 0; h < PL_HASH_SIZE; h++)
		for (p = pl_hash[h]; p; p = p->next)
			fn(p, arg);
}

/* Write @ino back; the first error goes to *(int *)@arg.  Context: L held. */
void pl_inode_sync_one(struct pl_inode *ino, void *arg)
{
	int *errp = arg, err;

	if (!ino->uf)
		return;
	pl_guard++;
	err = ufvm_fsync(ino->uf);
	pl_guard--;
	if (err && !*errp)
		*errp = err;
}

/* Write @ino's dirty pages to its file, no fdatasync.  Context: L held. */
void pl_inode_writeback_one(struct pl_inode *ino, void *arg)
{
	int *errp = arg, err;

	if (!ino->uf)
		return;
	pl_guard++;
	err = ufvm_writeback(ino->uf);
	pl_guard--;
	if (err && !*errp)
		*errp = err;
}

static int for_each_active(void (*fn)(struct pl_inode *, void *))
{
	int err = 0;

	if (!pl_any_active())
		return 0;
	pl_lock_acquire();
	pl_inode_for_each_locked(fn, &err);
	pl_lock_release();
	return err;
}

/*
 * pl_inode_sync_all - write every managed file's dirty pages back and
 * fdatasync it (sync, syncfs).  Context: L not held; may sleep.
 */
int pl_inode_sync_all(void)
{
	return for_each_active(pl_inode_sync_one);
}

/*
 * pl_inode_writeback_all - write every managed file's dirty pages into the
 * file, without fdatasync: what another process reading the file through
 * the kernel needs (fork, exec, spawn, exit).  Context: L not held.
 */
int pl_inode_writeback_all(void)
{
	return for_each_active(pl_inode_writeback_one);
}

/*
 * Is @fd one of ours (an active inode's duplicate)?  Lock-free, but if ours
 * is being closed, waits until it is (one close() under L, by a thread
 * that has no reason to wait for this one): the answer is then "no", and
 * the number free for the program's call.  The wait sleeps rather than
 * yields (a real-time caller would otherwise never let a closer of lower
 * priority on its CPU run), and ends at once in a child made without
 * fork()'s handlers (_Fork(), clone() or a raw fork system call), which
 * may have copied a "closing" mark that nothing there will clear: the fd
 * is the child's own copy then.
 */
bool pl_fd_is_priv(int fd)
{
	const struct timespec nap = { 0, 20 * 1000 };
	uint8_t v;

	if (fd < 0 || fd >= pl_fd_max)
		return false;
	while ((v = __atomic_load_n(&pl_fdpriv[fd], __ATOMIC_ACQUIRE)) == PL_PRIV_CLOSING) {
		if (pl_foreign())
			return false;
		nanosleep(&nap, NULL);
	}
	return v == PL_PRIV_OURS;
}

static void pl_priv_move_one(struct pl_inode *ino, void *arg)
{
	int *fdp = arg, nfd;

	if (ino->priv_fd != *fdp)
		return;
	nfd = pl_priv_dup_locked(ino, *fdp, *fdp + 1);
	if (nfd < 0)
		return;
	__atomic_store_n(&pl_fdpriv[*fdp], PL_PRIV_NONE, __ATOMIC_RELAXED);
	ino->priv_fd = nfd;
}

/*
 * pl_fd_evict_priv - the program is about to dup2() over @fd, one of our
 * own fds: move ours to another number first.  Context: L not held.
 */
void pl_fd_evict_priv(int fd)
{
	if (pl_foreign())
		return;
	pl_lock_acquire();
	if (pl_fd_is_priv(fd))
		pl_inode_for_each_locked(pl_priv_move_one, &fd);
	pl_lock_release();
}
