// SPDX-License-Identifier: MIT
/*
 * ownlib.c - a program with a copy of libufvm of its own, run under the
 * preload (which holds another copy): both share one liburcu-bp, whose
 * fork hooks must run once per fork.  Run as `ufvm run -- ownlib DIR`
 * (tests/preload/CMakeLists.txt), with the store outside what the preload
 * manages.  Each step has an alarm: a hang dies of SIGALRM.
 *
 * 1. fork() before ufvm is used (the hooks ran twice and the second
 *    deadlocked on liburcu's mutex, with every signal blocked);
 * 2. the program's own instance, then fork(): the child opens, uses and
 *    closes an instance of its own (its close waited for ever in
 *    rcu_barrier() when no hook ran), and no thread but its own takes the
 *    application's signals.
 *
 * With every signal blocked (the double hooks' deadlock), only SIGKILL
 * ends it: run-ownlib.sh sends it after 45 s.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <ufvm.h>

#define PG	4096
#define NPG	16

static int fails;

#define CHECK(c)								\
	do {									\
		if (!(c)) {							\
			fprintf(stderr, "ownlib: %s:%d: check failed: %s (errno %d)\n", \
				__FILE__, __LINE__, #c, errno);			\
			fails++;						\
		}								\
	} while (0)

/*
 * Threads of this process that do not block SIGUSR1 (ufvm's threads all
 * do; liburcu blocks every signal of a thread for moments, never fewer).
 */
static int threads_taking_usr1(void)
{
	char path[300], line[256];
	struct dirent *de;
	int n = 0;
	DIR *d = opendir("/proc/self/task");

	while (d && (de = readdir(d))) {
		FILE *f;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%.200s/status", de->d_name);
		f = fopen(path, "r");
		while (f && fgets(line, sizeof(line), f))
			if (!strncmp(line, "SigBlk:\t", 8))
				n += !((strtoull(line + 8, NULL, 16) >> (SIGUSR1 - 1)) & 1);
		if (f)
			fclose(f);
	}
	if (d)
		closedir(d);
	return n;
}

/* Open an instance, map @path, check a byte, unmap, close.  Return: 0 or a step. */
static int use_instance(const char *path)
{
	struct ufvm *vm;
	char *m;

	if (ufvm_open(NULL, &vm))
		return 1;
	if (ufvm_map(vm, path, 0, NPG * PG, UFVM_PROT_READ, 0, (void **)&m))
		return 2;
	if (m[5 * PG] != 'u')
		return 3;
	if (ufvm_unmap(vm, m, NPG * PG))
		return 4;
	return ufvm_close(vm) ? 5 : 0;
}

static int wait_child(pid_t pid)
{
	int st;

	if (pid < 0 || waitpid(pid, &st, 0) != pid)
		return -1;
	if (WIFSIGNALED(st))
		fprintf(stderr, "ownlib: child killed by signal %d%s\n", WTERMSIG(st),
			WTERMSIG(st) == SIGALRM ? " (it hung)" : "");
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int main(int argc, char **argv)
{
	char path[4096], buf[PG];
	struct ufvm *vm;
	pid_t pid;
	char *m;
	int fd;

	if (argc != 2)
		return 2;
	snprintf(path, sizeof(path), "%s/ownlib", argv[1]);
	memset(buf, 'u', sizeof(buf));
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	CHECK(fd >= 0);
	for (int i = 0; i < NPG; i++)
		CHECK(pwrite(fd, buf, PG, (off_t)i * PG) == PG);
	close(fd);

	alarm(20);
	pid = fork();				/* 1 */
	if (pid == 0)
		_exit(0);
	CHECK(wait_child(pid) == 0);

	CHECK(ufvm_open(NULL, &vm) == 0);	/* 2 */
	CHECK(ufvm_map(vm, path, 0, NPG * PG, UFVM_PROT_READ, 0, (void **)&m) == 0);
	CHECK(m[3 * PG] == 'u');
	CHECK(ufvm_unmap(vm, m, NPG * PG) == 0);	/* a call_rcu() */
	CHECK(ufvm_map(vm, path, 0, NPG * PG, UFVM_PROT_READ, 0, (void **)&m) == 0);
	pid = fork();
	if (pid == 0) {
		int r;

		alarm(20);	/* not inherited */
		r = use_instance(path);
		if (!r && threads_taking_usr1() != 1)	/* this one only */
			r = 10;
		_exit(r);
	}
	CHECK(wait_child(pid) == 0);
	CHECK(m[7 * PG] == 'u');
	CHECK(ufvm_unmap(vm, m, NPG * PG) == 0);
	CHECK(ufvm_close(vm) == 0);
	alarm(0);
	if (fails)
		fprintf(stderr, "ownlib: %d check(s) failed\n", fails);
	return fails ? 1 : 0;
}
