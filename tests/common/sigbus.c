/* SPDX-License-Identifier: MIT */
/*
 * sigbus.c - touch memory and catch SIGBUS: see sigbus.h.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sigbus.h"

static __thread sigjmp_buf sigbus_jmp;
static __thread volatile sig_atomic_t sigbus_armed;
static __thread struct sigbus_info sigbus_last;
static atomic_ulong sigbus_count;
static struct sigaction sigbus_prev;

pid_t sigbus_gettid(void)
{
	return (pid_t)syscall(SYS_gettid);
}

static void sigbus_handler(int sig, siginfo_t *si, void *uc)
{
	if (!sigbus_armed) {
		/* Not ours: pass it on, or die of it as without a handler. */
		if ((sigbus_prev.sa_flags & SA_SIGINFO) && sigbus_prev.sa_sigaction) {
			sigbus_prev.sa_sigaction(sig, si, uc);
			return;
		}
		if (sigbus_prev.sa_handler != SIG_DFL &&
		    sigbus_prev.sa_handler != SIG_IGN) {
			sigbus_prev.sa_handler(sig);
			return;
		}
		signal(sig, SIG_DFL);
		raise(sig);
		return;
	}
	sigbus_last.addr = si->si_addr;
	sigbus_last.code = si->si_code;
	sigbus_last.tid = sigbus_gettid();
	atomic_fetch_add(&sigbus_count, 1);
	sigbus_armed = 0;
	siglongjmp(sigbus_jmp, 1);
}

void sigbus_install(void)
{
	static int installed;
	struct sigaction sa;

	if (installed)
		return;
	installed = 1;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = sigbus_handler;
	sa.sa_flags = SA_SIGINFO | SA_NODEFER;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGBUS, &sa, &sigbus_prev);
}

int sigbus_read(const volatile void *p, uint8_t *out, struct sigbus_info *info)
{
	if (sigsetjmp(sigbus_jmp, 1)) {
		if (info)
			*info = sigbus_last;
		return 1;
	}
	sigbus_armed = 1;
	uint8_t v = *(const volatile uint8_t *)p;
	sigbus_armed = 0;
	*out = v;
	return 0;
}

int sigbus_write(volatile void *p, uint8_t v, struct sigbus_info *info)
{
	if (sigsetjmp(sigbus_jmp, 1)) {
		if (info)
			*info = sigbus_last;
		return 1;
	}
	sigbus_armed = 1;
	*(volatile uint8_t *)p = v;
	sigbus_armed = 0;
	return 0;
}

unsigned long sigbus_caught(void)
{
	return atomic_load(&sigbus_count);
}
