// SPDX-License-Identifier: MIT
/*
 * preload/proc.c - processes: fork, exec, exit.
 *
 * fork.  ufvm's regions are not inherited (MADV_DONTFORK), and a child
 * must not use the parent's instance: its locks may be held by threads
 * that do not exist in the child.  So, from pthread_atfork handlers:
 *   prepare  take pl_lock (the tables stay consistent), write every
 *            managed file's dirty pages back (the child's cache starts
 *            from the file), and quiesce liburcu (vm_rcu_fork_prepare():
 *            libufvm leaves its fork hooks to us in a preloaded process,
 *            whose program may hold a copy of libufvm of its own);
 *   child    reserve the ranges of the managed regions (PROT_NONE), so
 *            that nothing of the new instance lands there, start a fresh
 *            ufvm instance and map every managed region again at the same
 *            address, same file, offset and protection (UFVM_MAP_FIXED).  If ufvm cannot start in the child, the
 *            kernel's own mappings of the files take their place.  The
 *            parent's instance is abandoned, never touched.
 * From then on parent and child have separate caches, coherent through
 * the file only: a write becomes visible to the other process when it is
 * synced (msync/fsync) and the other process reads a page it does not
 * have cached.
 *
 * vfork.  A child of vfork() or clone(CLONE_VM) shares the parent's
 * memory, so its preload state and its ufvm instance, but not its fds: a
 * child that closes every fd (Python's subprocess does close_range) has
 * closed ufvm's.  It must not touch that state: not write back at exec,
 * not untrack the fds it closes.  Our vfork() writes every managed file
 * back in the parent first (the new program reads the files through the
 * kernel) and raises pl_vforking in the TLS that parent and child share;
 * a caller that finds it raised and whose pid is not ours is the child
 * (pl_borrowed), and goes straight to libc for everything; its exec only
 * completes the environment, without allocating.  The guard is not what
 * marks the child: the parent lowers what it raised only after the system
 * call, and a signal that arrived meanwhile is handled in between, in the
 * parent, which must then be served (its handler's I/O on a managed file
 * must go through ufvm).  clone(CLONE_VM | CLONE_VFORK) without
 * CLONE_SETTLS (the child runs on the parent thread's TLS) does the same;
 * any other clone(CLONE_VM) that is not a thread sets pl_clones for good,
 * and from then on every call checks its pid.  A child made by a raw
 * system call is recognised by its pid (pl_foreign) where it would change
 * the state: exec, exit, the fd table.  posix_spawn, system and popen
 * write back first; glibc's child never enters the preload.
 *
 * exec.  The new image loads the preload again (LD_PRELOAD is put back
 * into the environment if the program dropped it), so the old image's
 * dirty pages are written back first: nothing else would write them.
 *
 * exit.  exit() runs our destructor, _exit() and _Exit() are interposed:
 * both write every managed file back and write the statistics.  ufvm is
 * not closed (other threads may still run and touch their mappings until
 * the process is gone).  A process killed by a signal loses what it had
 * not synced, like a machine that crashes with dirty page cache.
 */
#define _GNU_SOURCE
#include <alloca.h>
#include <dlfcn.h>
#include <spawn.h>

#include "preload/preload.h"
#include "vm/compat.h"

static const char *pl_self_path;	/* (c) this library, for LD_PRELOAD */
static char **pl_env_ufvm;		/* (c) our UFVM_* variables */
static size_t pl_n_env_ufvm;		/* (c) */

/* ---- fork ---- */

static void pl_atfork_prepare(void)
{
	pl_guard++;
	pthread_mutex_lock(&pl_lock);
	if (pl_vm) {
		int err = 0;

		pl_inode_for_each_locked(pl_inode_writeback_one, &err);
		if (err)
			pl_warn_once("write-back before fork failed: %s", ufvm_strerror(err));
	}
	vm_rcu_fork_prepare();	/* whoever used ufvm's RCU: this copy or the program's */
}

static void pl_atfork_parent(void)
{
	vm_rcu_fork_parent();
	pthread_mutex_unlock(&pl_lock);
	pl_guard--;
}

/* Reopen an active inode in the child's instance (or give it up). */
static void pl_child_reopen(struct pl_inode *ino, void *arg)
{
	struct ufvm *vm = arg;
	char path[64];
	int err;

	if (!ino->uf)
		return;
	ino->uf = NULL;		/* the parent's: abandoned */
	if (!vm)
		return;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", ino->priv_fd);
	pl_guard++;
	err = ufvm_file_open(vm, path, ino->writable ? UFVM_RDWR : UFVM_RDONLY, &ino->uf);
	pl_guard--;
	if (err) {
		ino->uf = NULL;
		pl_warn_once("child: cannot reopen %s through ufvm: %s (the kernel's from now on)",
			     ino->path, ufvm_strerror(err));
	}
}

/* The regions [0, @n) of a fork child, mapped through ufvm: the kernel's. */
static void pl_child_all_to_kernel(size_t n)
{
	size_t i;
	int err;

	for (i = 0; i < n; i++) {
		struct pl_region *r = &pl_regions[i];

		if (r->prot != PROT_NONE) {
			pl_guard++;
			ufvm_unmap(pl_vm, (void *)r->start, r->end - r->start);	/* nothing dirty */
			pl_guard--;
		}
		err = pl_region_map_kernel_locked(r);	/* over it, if that failed */
		if (err)
			pl_warn_once("child: %s at %p is lost: %s", r->ino->path,
				     (void *)r->start, strerror(-err));
	}
}

static void pl_atfork_child(void)
{
	struct ufvm *old = pl_vm;
	bool kernel = false;
	size_t i;
	int err;

	__atomic_store_n(&pl_pid, getpid(), __ATOMIC_RELAXED);
	vm_rcu_fork_child();
	if (pl_off()) {		/* the preload did not start: nothing of ours to redo */
		pthread_mutex_unlock(&pl_lock);
		pl_guard--;
		return;
	}
	pl_io_atfork_child_locked();
	if (!old) {
		pthread_mutex_unlock(&pl_lock);
		pl_guard--;
		return;
	}
	/*
	 * The regions were not inherited: their ranges are free in the child.
	 * Reserve them before the new instance starts, or its own mappings
	 * (the handler-stop page, pools, views) could land there and then be
	 * mapped over.  A range that is not free was inherited after all and
	 * cannot be taken either.
	 */
	for (i = 0; i < pl_nregions; i++) {
		struct pl_region *r = &pl_regions[i];
		void *p;

		if (r->prot == PROT_NONE)
			continue;
		p = REAL(mmap)((void *)r->start, r->end - r->start, PROT_NONE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE,
			       -1, 0);
		if (p != MAP_FAILED && p != (void *)r->start)
			REAL(munmap)(p, r->end - r->start);	/* a kernel without NOREPLACE */
	}
	pl_vm = NULL;
	__atomic_store_n(&pl_state, PL_READY, __ATOMIC_RELEASE);
	err = pl_start_locked();
	pl_inode_for_each_locked(pl_child_reopen, pl_vm);
	for (i = 0; i < pl_nregions; i++) {
		struct pl_region *r = &pl_regions[i];

		err = !kernel && r->ino->uf ? pl_region_remap_locked(r) : -ENODEV;
		if (err && !kernel) {
			/*
			 * Mixed ufvm and kernel mappings of one file would not
			 * be coherent, and once off the preload writes nothing
			 * back: the regions mapped through ufvm so far go to
			 * the kernel too (only this thread runs here).
			 */
			pl_child_all_to_kernel(i);
			kernel = true;
		}
		if (err) {
			/* Never leave a hole that would read as zeros or fault. */
			err = pl_region_map_kernel_locked(r);
			if (err)
				pl_warn_once("child: %s at %p is lost: %s", r->ino->path,
					     (void *)r->start, strerror(-err));
		}
	}
	/* Files not reopened: the kernel's (after their regions took their fds). */
	pl_inode_for_each_locked(pl_inode_drop_failed_locked, NULL);
	if (kernel) {
		pl_warn_once("child: managed mappings fell back to the kernel's");
		/* Mixed ufvm and kernel mappings of one file would not be coherent. */
		__atomic_store_n(&pl_state, PL_OFF, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&pl_lock);
	pl_guard--;
}

/* ---- exec ---- */

static bool pl_env_has(char *const envp[], const char *entry)
{
	size_t n = strcspn(entry, "=") + 1;
	size_t i;

	for (i = 0; envp && envp[i]; i++)
		if (!strncmp(envp[i], entry, n))
			return true;
	return false;
}

/*
 * The number of entries of @envp, and its LD_PRELOAD value (or NULL).
 */
static size_t pl_env_scan(char *const envp[], const char **preload)
{
	size_t n = 0;

	*preload = NULL;
	for (n = 0; envp && envp[n]; n++)
		if (!strncmp(envp[n], "LD_PRELOAD=", 11))
			*preload = envp[n] + 11;
	return n;
}

/*
 * Fill @out (room for @n + pl_n_env_ufvm + 2 entries) with the environment
 * for the new image: @envp (@n entries), with our library in LD_PRELOAD
 * (built in @pre, room for the old value, ours and 13 bytes) and our
 * UFVM_* variables where @envp lacks them.  No allocation, no lock: a
 * vfork child runs this on its parent's memory.
 */
static void pl_exec_env(char *const envp[], size_t n, const char *old, char **out, char *pre)
{
	size_t i, k = 0, len;

	for (i = 0; i < n; i++)
		if (strncmp(envp[i], "LD_PRELOAD=", 11))
			out[k++] = envp[i];
	if (pl_self_path && !(old && strstr(old, pl_self_path))) {
		len = strlen(pl_self_path);
		memcpy(pre, "LD_PRELOAD=", 11);
		memcpy(pre + 11, pl_self_path, len);
		pre[11 + len] = '\0';
		if (old && *old) {
			pre[11 + len] = ':';
			strcpy(pre + 12 + len, old);
		}
		out[k++] = pre;
	} else if (old) {
		out[k++] = (char *)old - 11;
	}
	for (i = 0; i < pl_n_env_ufvm; i++)
		if (!pl_env_has(envp, pl_env_ufvm[i]))
			out[k++] = pl_env_ufvm[i];
	out[k] = NULL;
}

/*
 * Run an exec: write everything back, and the statistics so far, first
 * (not in a vfork child: that is the parent's state, written back by our
 * vfork); then @fn with the environment completed.  Return: only on
 * failure, with fn's errno.
 */
static int pl_exec(int (*fn)(const void *what, char *const argv[], char *const envp[]),
		   const void *what, char *const argv[], char *const envp[])
{
	const char *old;
	size_t n = pl_env_scan(envp, &old);
	char **env = alloca((n + pl_n_env_ufvm + 2) * sizeof(*env));
	char *pre = alloca((pl_self_path ? strlen(pl_self_path) : 0) + (old ? strlen(old) : 0) + 13);

	if (__atomic_load_n(&pl_state, __ATOMIC_ACQUIRE) == PL_RUNNING && !pl_foreign()) {
		pl_inode_writeback_all();
		pl_report_write("exec");
	}
	pl_exec_env(envp, n, old, env, pre);
	return fn(what, argv, env);
}

static int pl_do_execve(const void *path, char *const argv[], char *const envp[])
{
	return REAL(execve)(path, argv, envp);
}

static int pl_do_execvpe(const void *file, char *const argv[], char *const envp[])
{
	return REAL(execvpe)(file, argv, envp);
}

static int pl_do_fexecve(const void *fdp, char *const argv[], char *const envp[])
{
	return REAL(fexecve)(*(const int *)fdp, argv, envp);
}

struct pl_execveat {
	int dirfd, flags;
	const char *path;
};

static int pl_do_execveat(const void *what, char *const argv[], char *const envp[])
{
	const struct pl_execveat *x = what;

	return REAL(execveat)(x->dirfd, x->path, argv, envp, x->flags);
}

/*
 * exec's bypass: as PL_BYPASS(), but a child that shares our memory
 * (pl_borrowed) still gets the environment completed (pl_exec writes
 * nothing back for it).
 */
#define PL_EXEC_BYPASS()						\
	(pl_off() || pl_guard || pl_internal_caller(__builtin_return_address(0)))

PL_EXPORT int execve(const char *path, char *const argv[], char *const envp[])
{
	if (PL_EXEC_BYPASS())
		return REAL(execve)(path, argv, envp);
	return pl_exec(pl_do_execve, path, argv, envp);
}

PL_EXPORT int execvpe(const char *file, char *const argv[], char *const envp[])
{
	if (PL_EXEC_BYPASS())
		return REAL(execvpe)(file, argv, envp);
	return pl_exec(pl_do_execvpe, file, argv, envp);
}

PL_EXPORT int execv(const char *path, char *const argv[])
{
	if (PL_EXEC_BYPASS())
		return REAL(execv)(path, argv);
	return pl_exec(pl_do_execve, path, argv, environ);
}

PL_EXPORT int execvp(const char *file, char *const argv[])
{
	if (PL_EXEC_BYPASS())
		return REAL(execvp)(file, argv);
	return pl_exec(pl_do_execvpe, file, argv, environ);
}

PL_EXPORT int fexecve(int fd, char *const argv[], char *const envp[])
{
	if (PL_EXEC_BYPASS())
		return REAL(fexecve)(fd, argv, envp);
	return pl_exec(pl_do_fexecve, &fd, argv, envp);
}

PL_EXPORT int execveat(int dirfd, const char *path, char *const argv[], char *const envp[],
		       int flags)
{
	struct pl_execveat x = { .dirfd = dirfd, .flags = flags, .path = path };

	if (PL_EXEC_BYPASS())
		return REAL(execveat)(dirfd, path, argv, envp, flags);
	return pl_exec(pl_do_execveat, &x, argv, envp);
}

/*
 * execl, execlp, execle: the arguments from @ap (after @arg, up to NULL;
 * then envp for execle) into an array, then the v form.
 */
static int pl_execl(bool bypass, bool search, bool with_env, const char *what,
		    const char *arg, va_list ap)
{
	char **argv, **envp = environ;
	size_t n = 1, i;
	va_list c;

	va_copy(c, ap);
	while (va_arg(c, char *))
		n++;
	va_end(c);
	argv = alloca((n + 1) * sizeof(*argv));
	argv[0] = (char *)arg;
	for (i = 1; i <= n; i++)
		argv[i] = va_arg(ap, char *);
	if (with_env)
		envp = va_arg(ap, char **);
	if (bypass)
		return search ? REAL(execvpe)(what, argv, envp) : REAL(execve)(what, argv, envp);
	return pl_exec(search ? pl_do_execvpe : pl_do_execve, what, argv, envp);
}

PL_EXPORT int execl(const char *path, const char *arg, ...)
{
	bool bypass = PL_EXEC_BYPASS();
	va_list ap;
	int r;

	va_start(ap, arg);
	r = pl_execl(bypass, false, false, path, arg, ap);
	va_end(ap);
	return r;
}

PL_EXPORT int execlp(const char *file, const char *arg, ...)
{
	bool bypass = PL_EXEC_BYPASS();
	va_list ap;
	int r;

	va_start(ap, arg);
	r = pl_execl(bypass, true, false, file, arg, ap);
	va_end(ap);
	return r;
}

PL_EXPORT int execle(const char *path, const char *arg, ...)
{
	bool bypass = PL_EXEC_BYPASS();
	va_list ap;
	int r;

	va_start(ap, arg);
	r = pl_execl(bypass, false, true, path, arg, ap);
	va_end(ap);
	return r;
}

/*
 * posix_spawn, system, popen: the new program reads the files through the
 * kernel while this process keeps running, so write back first.  system
 * and popen pass environ as it is: there is no environment to complete.
 */
static void pl_before_spawn(void)
{
	if (__atomic_load_n(&pl_state, __ATOMIC_ACQUIRE) == PL_RUNNING)
		pl_inode_writeback_all();
}

/*
 * posix_spawn(p): write back, and complete @envp as exec does (the new
 * program loads the preload again, whatever environment it was given).
 * Return: posix_spawn's (an error number), ENOMEM if the environment
 * cannot be built.
 */
static int pl_spawn(bool search, pid_t *pid, const char *what,
		    const posix_spawn_file_actions_t *fa, const posix_spawnattr_t *attr,
		    char *const argv[], char *const envp[])
{
	const char *old;
	size_t n = pl_env_scan(envp, &old);
	char **env = malloc((n + pl_n_env_ufvm + 2) * sizeof(*env));
	char *pre = malloc((pl_self_path ? strlen(pl_self_path) : 0) + (old ? strlen(old) : 0) + 13);
	int r = ENOMEM;

	if (env && pre) {
		pl_before_spawn();
		pl_exec_env(envp, n, old, env, pre);
		r = search ? REAL(posix_spawnp)(pid, what, fa, attr, argv, env) :
			     REAL(posix_spawn)(pid, what, fa, attr, argv, env);
	}
	free(env);
	free(pre);
	return r;
}

PL_EXPORT int posix_spawn(pid_t *pid, const char *path, const posix_spawn_file_actions_t *fa,
			  const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
	if (PL_BYPASS())
		return REAL(posix_spawn)(pid, path, fa, attr, argv, envp);
	return pl_spawn(false, pid, path, fa, attr, argv, envp);
}

PL_EXPORT int posix_spawnp(pid_t *pid, const char *file, const posix_spawn_file_actions_t *fa,
			   const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
	if (PL_BYPASS())
		return REAL(posix_spawnp)(pid, file, fa, attr, argv, envp);
	return pl_spawn(true, pid, file, fa, attr, argv, envp);
}

PL_EXPORT int system(const char *cmd)
{
	if (!PL_BYPASS())
		pl_before_spawn();
	return REAL(system)(cmd);
}

PL_EXPORT FILE *popen(const char *cmd, const char *type)
{
	if (!PL_BYPASS())
		pl_before_spawn();
	return REAL(popen)(cmd, type);
}

/* ---- vfork, clone(CLONE_VM) ---- */

/*
 * Before a vfork: write back (the new program reads the files through the
 * kernel), then raise pl_vforking, which the child, running on this
 * thread's memory and TLS, finds raised: with its own pid, it never
 * enters the preload (pl_borrowed).  @ra is vfork's caller.  Context: the
 * parent, L not held.
 */
__attribute__((visibility("hidden"), used)) void pl_vfork_prepare(const void *ra)
{
	int e = errno;

	if (!pl_off() && !pl_guard && !pl_internal_caller(ra) && !pl_foreign())
		pl_before_spawn();
	errno = e;
	pl_vforking++;
}

/*
 * After a vfork, in the parent: the child has exec'd or exited.  Signals
 * that arrived meanwhile have been handled already, just after the system
 * call, with pl_vforking still raised: by pid, as the parent.  Return:
 * vfork's.
 */
__attribute__((visibility("hidden"), used)) pid_t pl_vfork_parent(long r)
{
	pl_vforking--;
	return (pid_t)pl_ret(r);
}

#if defined(__x86_64__)
/*
 * vfork() itself, as glibc's: the child returns on the parent's stack and
 * may overwrite it before the parent resumes, so nothing is kept there
 * across the system call; the return address waits in %rdi.  The child
 * returns 0 with pl_vforking raised; the parent lowers it
 * (pl_vfork_parent).
 */
__asm__(".text\n"
	".globl vfork\n"
	".type vfork, @function\n"
	"vfork:\n"
	"	mov (%rsp), %rdi\n"
	"	sub $8, %rsp\n"
	"	call pl_vfork_prepare\n"
	"	add $8, %rsp\n"
	"	pop %rdi\n"
	"	mov $58, %eax\n"		/* SYS_vfork */
	"	syscall\n"
	"	push %rdi\n"
	"	test %rax, %rax\n"
	"	jz 1f\n"
	"	mov %rax, %rdi\n"
	"	jmp pl_vfork_parent\n"
	"1:	ret\n"
	".size vfork, .-vfork\n"
	".globl __vfork\n"
	".set __vfork, vfork\n");
#endif

/*
 * clone() of a process that shares this memory (CLONE_VM, not a thread):
 * write back first, as for posix_spawn.  With CLONE_VFORK and no
 * CLONE_SETTLS the child runs on this thread's TLS while this thread
 * waits, and finds pl_vforking raised, as after vfork.  Any other such
 * child runs beside us, on this thread's TLS (a plain pl_guard++ of both
 * would lose updates) or its own: pl_clones makes every call check its
 * pid from now on.
 */
PL_EXPORT int clone(int (*fn)(void *), void *stack, int flags, void *arg, ...)
{
	bool vf = false;
	pid_t *ptid, *ctid;
	va_list ap;
	void *tls;
	int r, e;

	va_start(ap, arg);
	ptid = va_arg(ap, pid_t *);
	tls = va_arg(ap, void *);
	ctid = va_arg(ap, pid_t *);
	va_end(ap);
	if ((flags & CLONE_VM) && !(flags & CLONE_THREAD) && !PL_BYPASS()) {
		if (!pl_foreign())
			pl_before_spawn();
		vf = (flags & CLONE_VFORK) && !(flags & CLONE_SETTLS);
		if (!vf)
			__atomic_store_n(&pl_clones, 1, __ATOMIC_SEQ_CST);
	}
	if (vf)
		pl_vforking++;
	r = REAL(clone)(fn, stack, flags, arg, ptid, tls, ctid);
	if (vf) {
		e = errno;
		pl_vforking--;
		errno = e;
	}
	return r;
}

/* ---- exit ---- */

/* Orderly exit: write every managed file back, then the statistics. */
void pl_proc_exit(void)
{
	int err;

	if (__atomic_load_n(&pl_state, __ATOMIC_ACQUIRE) != PL_RUNNING || pl_foreign())
		return;	/* a vfork child: the state is its parent's */
	err = pl_inode_writeback_all();	/* exit(2) does not fsync either */
	if (err)
		pl_warn_once("write-back at exit failed: %s", ufvm_strerror(err));
	pl_report_write("exit");
}

PL_EXPORT void _exit(int status)
{
	if (!PL_BYPASS())
		pl_proc_exit();
	REAL(_exit)(status);
	__builtin_unreachable();
}


PL_ALIAS(_Exit, _exit);

/*
 * quick_exit() runs the at_quick_exit() handlers, then glibc's internal
 * _exit, which no interposition sees: the write-back is a handler of its
 * own, registered when the preload loads, so it runs after the program's.
 */
static void pl_quick_exit(void)
{
	/*
	 * Called from libc: not PL_BYPASS(), which would see libc as the
	 * caller.  quick_exit() may be called from a signal handler: not
	 * inside the preload, whose lock this thread may hold.
	 */
	if (!pl_guard)
		pl_proc_exit();
}

/* ---- set-up ---- */

int pl_proc_init(void)
{
	size_t i, n = 0;
	Dl_info di;

	if (dladdr((void *)pl_proc_init, &di) && di.dli_fname && di.dli_fname[0] == '/')
		pl_self_path = strdup(di.dli_fname);
	for (i = 0; environ && environ[i]; i++)
		n += !strncmp(environ[i], "UFVM_", 5);
	pl_env_ufvm = calloc(n + 1, sizeof(*pl_env_ufvm));
	if (!pl_env_ufvm || at_quick_exit(pl_quick_exit))
		return -ENOMEM;
	for (i = 0; environ && environ[i]; i++)
		if (!strncmp(environ[i], "UFVM_", 5) &&
		    (pl_env_ufvm[pl_n_env_ufvm] = strdup(environ[i])))
			pl_n_env_ufvm++;
	return 0;
}

/*
 * Register the fork handlers.  First thing when the preload loads, before
 * anything that can fail: they also run liburcu's fork hooks for every
 * copy of libufvm in the process, the program's own included, which
 * leaves them to the preload (vm/thread.c).  Return: 0 or -ENOMEM.
 */
int pl_proc_atfork(void)
{
	return pthread_atfork(pl_atfork_prepare, pl_atfork_parent, pl_atfork_child) ? -ENOMEM : 0;
}
