/* SPDX-License-Identifier: MIT */
/*
 * race.c - clocks and bounded waits for the race tests: see race.h.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "race.h"

#define RACE_POLL_US	50

uint64_t race_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

void race_sleep_us(uint64_t us)
{
	struct timespec ts = { (time_t)(us / 1000000u), (long)(us % 1000000u) * 1000 };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

bool race_wait(atomic_int *v, int want, uint64_t timeout_us)
{
	uint64_t until = race_now_us() + timeout_us;

	while (atomic_load(v) < want) {
		if (race_now_us() >= until)
			return false;
		race_sleep_us(RACE_POLL_US);
	}
	return true;
}

int race_join(pthread_t th, uint64_t timeout_us)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += (time_t)(timeout_us / 1000000u);
	ts.tv_nsec += (long)(timeout_us % 1000000u) * 1000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	return pthread_timedjoin_np(th, NULL, &ts);
}

void race_wchan(pid_t tid, char *buf, size_t len)
{
	char path[64];
	ssize_t n = -1;
	int fd;

	snprintf(path, sizeof(path), "/proc/self/task/%d/wchan", (int)tid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		n = read(fd, buf, len - 1);
		close(fd);
	}
	buf[n > 0 ? n : 0] = 0;
	if (n <= 0)
		snprintf(buf, len, "?");
}

bool race_wait_wchan(atomic_int *tid, const char *where, uint64_t timeout_us)
{
	uint64_t t0 = race_now_us();
	char buf[64];

	while (race_now_us() - t0 < timeout_us) {
		if (atomic_load(tid)) {
			race_wchan(atomic_load(tid), buf, sizeof(buf));
			if (strstr(buf, where))
				return true;
		}
		race_sleep_us(1000);
	}
	return false;
}

#ifdef __SANITIZE_ADDRESS__
void race_teeth_asan(void (*run)(void), const char *kind, const char *where)
{
	char log[] = "/tmp/ufvm-teeth-XXXXXX", text[8192];
	int fd, status;
	ssize_t n;
	pid_t pid;

	fd = mkstemp(log);
	cr_assert(fd >= 0);
	unlink(log);
	pid = fork();
	cr_assert(pid >= 0);
	if (!pid) {
		dup2(fd, 2);
		run();
		_exit(0);
	}
	cr_assert(waitpid(pid, &status, 0) == pid);
	n = pread(fd, text, sizeof(text) - 1, 0);
	close(fd);
	text[n > 0 ? n : 0] = '\0';
	cr_assert(strstr(text, kind) && strstr(text, where),
		  "no %s in %s was seen (status %#x): %.300s", kind, where, status, text);
}
#else
void race_teeth_asan(void (*run)(void), const char *kind, const char *where)
{
	(void)run;
	(void)kind;
	(void)where;
	cr_skip_test("a use after free shows only under AddressSanitizer (the ASan tree runs it)");
}
#endif
