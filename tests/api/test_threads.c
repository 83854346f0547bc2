/* SPDX-License-Identifier: MIT */
/*
 * test_threads.c - ufvm's own threads take no signal of the application.
 *
 * Checks: every thread ufvm starts (fault handlers "ufvm-uffd/N", the
 * background thread "ufvm-bg", readahead threads "ufvm-readahead") blocks
 * the signals an application handles (SIGUSR1, SIGINT, SIGTERM, SIGALRM,
 * SIGCHLD), even when the thread that opened ufvm blocks none, while it
 * still takes those its own faults would raise (SIGSEGV, SIGBUS).  An
 * application handler run on a ufvm thread could interrupt it holding a
 * page lock and, touching ufvm memory, wait for a fault only that thread
 * could serve.  /proc/self/task/N/status shows each thread's mask.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <signal.h>

#include "check.h"

/* Thread @tid's name and blocked-signal mask, from /proc.  Return: found. */
static bool thread_info(const char *tid, char *name, size_t len, unsigned long long *blk)
{
	char path[320], line[256];
	bool got = false;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/task/%.255s/status", tid);
	f = fopen(path, "r");
	if (!f)
		return false;	/* exited meanwhile */
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, "Name:\t", 6)) {
			line[strcspn(line, "\n")] = 0;
			snprintf(name, len, "%.15s", line + 6);
		} else if (!strncmp(line, "SigBlk:\t", 8)) {
			*blk = strtoull(line + 8, NULL, 16);
			got = true;
		}
	}
	fclose(f);
	return got;
}

#define SIGBIT(s)	(1ull << ((s) - 1))

Test(threads, ufvm_threads_block_application_signals, .timeout = 30)
{
	const unsigned long long want = SIGBIT(SIGUSR1) | SIGBIT(SIGINT) | SIGBIT(SIGTERM) |
					SIGBIT(SIGALRM) | SIGBIT(SIGCHLD);
	const unsigned long long keep = SIGBIT(SIGSEGV) | SIGBIT(SIGBUS);
	char path[TMPSTORE_PATH_MAX];
	volatile uint8_t *map;
	struct dirent *de;
	struct ufvm *vm;
	sigset_t none;
	int seen = 0;
	DIR *d;

	sigemptyset(&none);
	pthread_sigmask(SIG_SETMASK, &none, NULL);
	vm = ut_open(NULL);
	ut_store("threads", 4 * MiB, 1, path);
	map = ut_map(vm, path, 0, 4 * MiB, UFVM_PROT_READ);
	for (size_t off = 0; off < 4 * MiB; off += PAGE)
		(void)map[off];
	d = opendir("/proc/self/task");
	cr_assert(d);
	while ((de = readdir(d))) {
		unsigned long long blk = 0;
		char name[32] = "";

		if (de->d_name[0] == '.' || !thread_info(de->d_name, name, sizeof(name), &blk) ||
		    strncmp(name, "ufvm-", 5))
			continue;
		seen++;
		cr_assert((blk & want) == want, "thread %s (%s) blocks %#llx: not all of %#llx",
			  de->d_name, name, blk, want);
		cr_assert(!(blk & keep), "thread %s (%s) blocks %#llx, its own faults' signals "
			  "among them", de->d_name, name, blk);
	}
	closedir(d);
	cr_assert(seen > 0, "no thread of ufvm's found by name");
	ut_unmap(vm, (void *)map, 4 * MiB);
	ut_close(vm);
}
