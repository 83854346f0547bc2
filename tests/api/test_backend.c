// SPDX-License-Identifier: MIT
/*
 * test_backend.c - choosing the delivery backend.
 *
 * Where userfaultfd is not permitted (an unprivileged process while
 * vm.unprivileged_userfaultfd is 0), UFVM_BACKEND=auto falls back to the
 * sigsegv backend with one line on stderr, and mappings work; an explicit
 * UFVM_BACKEND=uffd fails with -EPERM and a message naming the sysctl.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

#define SEED	0x6265

static int read_sysctl(void)
{
	FILE *f = fopen("/proc/sys/vm/unprivileged_userfaultfd", "r");
	int v = -1;

	if (f) {
		if (fscanf(f, "%d", &v) != 1)
			v = -1;
		fclose(f);
	}
	return v;
}

/*
 * Run @fn in a child that dropped root (uid/gid 65534) with stderr in a
 * pipe; return its exit status and what it printed in @err.
 */
static int as_nobody(int (*fn)(const char *), const char *path, char *err, size_t len)
{
	int pfd[2], status = 0;
	ssize_t n, got = 0;
	pid_t pid;

	cr_assert(pipe(pfd) == 0);
	pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		close(pfd[0]);
		dup2(pfd[1], 2);
		if (setgid(65534) || setuid(65534))
			_exit(99);
		_exit(fn(path));
	}
	close(pfd[1]);
	while ((n = read(pfd[0], err + got, len - 1 - (size_t)got)) > 0)
		got += n;
	err[got] = 0;
	close(pfd[0]);
	waitpid(pid, &status, 0);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static int child_auto(const char *path)
{
	struct ufvm_config cfg;
	struct ufvm *vm;
	uint8_t *map;
	void *a;

	if (ufvm_config_init(&cfg))
		return 1;
	cfg.backend = UFVM_BACKEND_AUTO;
	if (ufvm_open(&cfg, &vm))
		return 2;
	if (ufvm_map(vm, path, 0, 64 * PAGE, UFVM_PROT_READ, 0, &a))
		return 3;
	map = a;
	if (pattern_mismatch(SEED, map, 0, 64 * PAGE) >= 0)
		return 4;
	if (ufvm_unmap(vm, a, 64 * PAGE) || ufvm_close(vm))
		return 5;
	return 0;
}

static int child_uffd(const char *path)
{
	struct ufvm_config cfg;
	struct ufvm *vm;

	if (ufvm_config_init(&cfg))
		return 1;
	cfg.backend = UFVM_BACKEND_UFFD;
	return ufvm_open(&cfg, &vm) == -EPERM ? 0 : 2;
}

static void setup(char *path)
{
	if (getuid() != 0)
		cr_skip_test("needs root to drop to an unprivileged user");
	if (read_sysctl() != 0)
		cr_skip_test("vm.unprivileged_userfaultfd is not 0: an unprivileged process may use it");
	ut_store("be", 64 * PAGE, SEED, path);
	/* The directory and file must be readable by the unprivileged child. */
	chmod(tmpstore_dir(), 0755);
	chmod(path, 0644);
}

Test(backend, auto_falls_back_to_sigsegv_with_one_line, .timeout = 30)
{
	char path[TMPSTORE_PATH_MAX], err[4096];
	int rc;

	setup(path);
	rc = as_nobody(child_auto, path, err, sizeof(err));
	cr_assert_eq(rc, 0, "unprivileged child with UFVM_BACKEND=auto: exit %d, stderr: %s", rc, err);
	cr_assert(strstr(err, "using the sigsegv backend"), "no fallback notice on stderr: '%s'", err);
	cr_assert(strchr(err, '\n') == strrchr(err, '\n'), "more than one line on stderr: '%s'", err);
}

Test(backend, uffd_not_permitted_names_the_sysctl, .timeout = 30)
{
	char path[TMPSTORE_PATH_MAX], err[4096];
	int rc;

	setup(path);
	rc = as_nobody(child_uffd, path, err, sizeof(err));
	cr_assert_eq(rc, 0, "unprivileged ufvm_open(UFVM_BACKEND_UFFD) did not fail with -EPERM");
	cr_assert(strstr(err, "vm.unprivileged_userfaultfd"), "the message does not name the sysctl: '%s'",
		  err);
}
