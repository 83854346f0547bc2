// SPDX-License-Identifier: MIT
/*
 * preload/proc.c - processes: fork, exec, exit.
 *
 * fork.  ufvm's regions are not inherited (MADV_DONTFORK), and a child
 * must not use the parent's instance: its locks may be held by threads
 * that do not exist in the child.  So, from pthread_atfork handlers:
 *   prepare  take pl_lock (the tables stay consistent), write every managed
 *            file's dirty pages back (the child's cache starts from the
 *            file), and quiesce liburcu (its fork hooks);
 *   child    start a fresh ufvm instance and map every managed region
 *            again at the same address, same file, offset and protection
 *            (UFVM_MAP_FIXED).  If ufvm cannot start in the child, the
 *            kernel's own mappings of the files take their place.  The
 *            parent's instance is abandoned, never touched.
 * From then on parent and child have separate caches, coherent through
 * the file only: a write becomes visible to the other process when it is
 * synced (msync/fsync) and the other process reads a page it does not
 * have cached.  vfork and posix_spawn run nothing of this (and need not:
 * the child shares the parent's memory until it execs).
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
#include <urcu-bp.h>

#include "preload/preload.h"

static const char *pl_self_path;	/* (c) this library, for LD_PRELOAD */
static char **pl_env_ufvm;		/* (c) our UFVM_* variables */
static size_t pl_n_env_ufvm;		/* (c) */

/* ---- fork ---- */

static void pl_atfork_prepare(void)
{
	pthread_mutex_lock(&pl_lock);
	if (pl_vm) {
		int err = 0;

		pl_inode_for_each_locked(pl_inode_writeback_one, &err);
		if (err)
			pl_warn_once("write-back before fork failed: %s", ufvm_strerror(err));
		urcu_bp_call_rcu_before_fork();
		urcu_bp_before_fork();
	}
}

static void pl_atfork_parent(void)
{
	if (pl_vm) {
		urcu_bp_after_fork_parent();
		urcu_bp_call_rcu_after_fork_parent();
	}
	pthread_mutex_unlock(&pl_lock);
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
		pl_warn_once("child: cannot reopen %s through ufvm: %s", ino->path,
			     ufvm_strerror(err));
	}
}

static void pl_atfork_child(void)
{
	struct ufvm *old = pl_vm;
	bool kernel = false;
	size_t i;
	int err;

	if (!old) {
		pthread_mutex_unlock(&pl_lock);
		return;
	}
	urcu_bp_after_fork_child();
	urcu_bp_call_rcu_after_fork_child();
	pl_vm = NULL;
	__atomic_store_n(&pl_state, PL_READY, __ATOMIC_RELEASE);
	err = pl_start_locked();
	pl_inode_for_each_locked(pl_child_reopen, pl_vm);
	for (i = 0; i < pl_nregions; i++) {
		struct pl_region *r = &pl_regions[i];

		err = r->ino->uf ? pl_region_remap_locked(r) : -ENODEV;
		if (err) {
			/* Never leave a hole that would read as zeros or fault. */
			err = pl_region_map_kernel_locked(r);
			kernel = true;
			if (err)
				pl_warn_once("child: %s at %p is lost: %s", r->ino->path,
					     (void *)r->start, strerror(-err));
		}
	}
	if (kernel) {
		pl_warn_once("child: managed mappings fell back to the kernel's");
		/* Mixed ufvm and kernel mappings of one file would not be coherent. */
		__atomic_store_n(&pl_state, PL_OFF, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&pl_lock);
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
 * The environment for the new image: @envp, with our library in
 * LD_PRELOAD and our UFVM_* variables where @envp lacks them.
 * Return: a new array (free() it and *@extra), or NULL (no memory).
 */
static char **pl_exec_env(char *const envp[], char **extra)
{
	size_t n = 0, i, k = 0;
	const char *old = NULL;
	char **out;

	*extra = NULL;
	while (envp && envp[n])
		n++;
	out = malloc((n + pl_n_env_ufvm + 2) * sizeof(*out));
	if (!out)
		return NULL;
	for (i = 0; i < n; i++) {
		if (!strncmp(envp[i], "LD_PRELOAD=", 11)) {
			old = envp[i] + 11;
			continue;
		}
		out[k++] = envp[i];
	}
	if (pl_self_path) {
		if (old && strstr(old, pl_self_path))
			*extra = strdup(old - 11);
		else if (asprintf(extra, "LD_PRELOAD=%s%s%s", pl_self_path,
				  old && *old ? ":" : "", old ? old : "") < 0)
			*extra = NULL;
	}
	if (*extra)
		out[k++] = *extra;
	else if (old)
		out[k++] = (char *)old - 11;
	for (i = 0; i < pl_n_env_ufvm; i++)
		if (!pl_env_has(envp, pl_env_ufvm[i]))
			out[k++] = pl_env_ufvm[i];
	out[k] = NULL;
	return out;
}

/*
 * Run an exec: write everything back, and the statistics so far, first;
 * then @fn with the environment completed.  Return: only on failure.
 */
static int pl_exec(int (*fn)(const void *what, char *const argv[], char *const envp[]),
		   const void *what, char *const argv[], char *const envp[])
{
	char *extra, **env;
	int r, e;

	if (__atomic_load_n(&pl_state, __ATOMIC_ACQUIRE) == PL_RUNNING) {
		pl_inode_writeback_all();
		pl_report_write("exec");
	}
	env = pl_exec_env(envp, &extra);
	r = fn(what, argv, env ? env : envp);
	e = errno;
	free(env);
	free(extra);
	errno = e;
	return r;
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

PL_EXPORT int execve(const char *path, char *const argv[], char *const envp[])
{
	if (PL_BYPASS())
		return REAL(execve)(path, argv, envp);
	return pl_exec(pl_do_execve, path, argv, envp);
}

PL_EXPORT int execvpe(const char *file, char *const argv[], char *const envp[])
{
	if (PL_BYPASS())
		return REAL(execvpe)(file, argv, envp);
	return pl_exec(pl_do_execvpe, file, argv, envp);
}

PL_EXPORT int execv(const char *path, char *const argv[])
{
	if (PL_BYPASS())
		return REAL(execv)(path, argv);
	return pl_exec(pl_do_execve, path, argv, environ);
}

PL_EXPORT int execvp(const char *file, char *const argv[])
{
	if (PL_BYPASS())
		return REAL(execvp)(file, argv);
	return pl_exec(pl_do_execvpe, file, argv, environ);
}

PL_EXPORT int fexecve(int fd, char *const argv[], char *const envp[])
{
	if (PL_BYPASS())
		return REAL(fexecve)(fd, argv, envp);
	return pl_exec(pl_do_fexecve, &fd, argv, envp);
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
	bool bypass = PL_BYPASS();
	va_list ap;
	int r;

	va_start(ap, arg);
	r = pl_execl(bypass, false, false, path, arg, ap);
	va_end(ap);
	return r;
}

PL_EXPORT int execlp(const char *file, const char *arg, ...)
{
	bool bypass = PL_BYPASS();
	va_list ap;
	int r;

	va_start(ap, arg);
	r = pl_execl(bypass, true, false, file, arg, ap);
	va_end(ap);
	return r;
}

PL_EXPORT int execle(const char *path, const char *arg, ...)
{
	bool bypass = PL_BYPASS();
	va_list ap;
	int r;

	va_start(ap, arg);
	r = pl_execl(bypass, false, true, path, arg, ap);
	va_end(ap);
	return r;
}

/*
 * posix_spawn, system, popen: the new program reads the files through the
 * kernel while this process keeps running, so write back first.
 */
static void pl_before_spawn(void)
{
	if (__atomic_load_n(&pl_state, __ATOMIC_ACQUIRE) == PL_RUNNING)
		pl_inode_writeback_all();
}

PL_EXPORT int posix_spawn(pid_t *pid, const char *path, const posix_spawn_file_actions_t *fa,
			  const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
	if (!PL_BYPASS())
		pl_before_spawn();
	return REAL(posix_spawn)(pid, path, fa, attr, argv, envp);
}

PL_EXPORT int posix_spawnp(pid_t *pid, const char *file, const posix_spawn_file_actions_t *fa,
			   const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
	if (!PL_BYPASS())
		pl_before_spawn();
	return REAL(posix_spawnp)(pid, file, fa, attr, argv, envp);
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

/* ---- exit ---- */

/* Orderly exit: write every managed file back, then the statistics. */
void pl_proc_exit(void)
{
	int err;

	if (__atomic_load_n(&pl_state, __ATOMIC_ACQUIRE) != PL_RUNNING)
		return;
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
	if (!pl_env_ufvm)
		return -ENOMEM;
	for (i = 0; environ && environ[i]; i++)
		if (!strncmp(environ[i], "UFVM_", 5) &&
		    (pl_env_ufvm[pl_n_env_ufvm] = strdup(environ[i])))
			pl_n_env_ufvm++;
	if (pthread_atfork(pl_atfork_prepare, pl_atfork_parent, pl_atfork_child))
		return -ENOMEM;
	return 0;
}
