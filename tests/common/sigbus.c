/* SPDX-License-Identifier: MIT */
/*
 * sigbus.c - touch memory and catch SIGBUS (or SIGSEGV): see sigbus.h.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sigbus.h"

#define ARM_BUS		1	/* bits of sigbus_armed: the signals caught now */
#define ARM_SEGV	2

static __thread sigjmp_buf sigbus_jmp;
static __thread volatile sig_atomic_t sigbus_armed;
static __thread struct sigbus_info sigbus_last;
static atomic_ulong sigbus_count, sigsegv_count;
static struct sigaction sigbus_prev, sigsegv_prev;

pid_t sigbus_gettid(void)
{
	return (pid_t)syscall(SYS_gettid);
}

static void sigbus_handler(int sig, siginfo_t *si, void *uc)
{
	struct sigaction *prev = sig == SIGSEGV ? &sigsegv_prev : &sigbus_prev;

	if (!(sigbus_armed & (sig == SIGSEGV ? ARM_SEGV : ARM_BUS))) {
		/* Not ours: pass it on, or die of it as without a handler. */
		if ((prev->sa_flags & SA_SIGINFO) && prev->sa_sigaction) {
			prev->sa_sigaction(sig, si, uc);
			return;
		}
		if (prev->sa_handler != SIG_DFL && prev->sa_handler != SIG_IGN) {
			prev->sa_handler(sig);
			return;
		}
		signal(sig, SIG_DFL);
		raise(sig);
		return;
	}
	sigbus_last.addr = si->si_addr;
	sigbus_last.code = si->si_code;
	sigbus_last.tid = sigbus_gettid();
	sigbus_last.sig = sig;
	atomic_fetch_add(sig == SIGSEGV ? &sigsegv_count : &sigbus_count, 1);
	sigbus_armed = 0;
	siglongjmp(sigbus_jmp, sig);
}

static void install(int sig, struct sigaction *prev)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = sigbus_handler;
	sa.sa_flags = SA_SIGINFO | SA_NODEFER;
	sigemptyset(&sa.sa_mask);
	sigaction(sig, &sa, prev);
}

void sigbus_install(void)
{
	static int installed;

	if (installed)
		return;
	installed = 1;
	install(SIGBUS, &sigbus_prev);
}

void sigcatch_install(void)
{
	static int installed;

	sigbus_install();
	if (installed)
		return;
	installed = 1;
	install(SIGSEGV, &sigsegv_prev);
}

/* Read *p with the signals of @arm caught.  Return: 0 or the signal. */
static int armed_read(const volatile void *p, uint8_t *out, struct sigbus_info *info, int arm)
{
	int sig = sigsetjmp(sigbus_jmp, 1);

	if (sig) {
		if (info)
			*info = sigbus_last;
		return sig;
	}
	sigbus_armed = arm;
	uint8_t v = *(const volatile uint8_t *)p;
	sigbus_armed = 0;
	*out = v;
	return 0;
}

int sigbus_read(const volatile void *p, uint8_t *out, struct sigbus_info *info)
{
	return armed_read(p, out, info, ARM_BUS) ? 1 : 0;
}

int sigcatch_read(const volatile void *p, uint8_t *out, struct sigbus_info *info)
{
	return armed_read(p, out, info, ARM_BUS | ARM_SEGV);
}

/* Store @v at @p with the signals of @arm caught.  Return: 0 or the signal. */
static int armed_write(volatile void *p, uint8_t v, struct sigbus_info *info, int arm)
{
	int sig = sigsetjmp(sigbus_jmp, 1);

	if (sig) {
		if (info)
			*info = sigbus_last;
		return sig;
	}
	sigbus_armed = arm;
	*(volatile uint8_t *)p = v;
	sigbus_armed = 0;
	return 0;
}

int sigbus_write(volatile void *p, uint8_t v, struct sigbus_info *info)
{
	return armed_write(p, v, info, ARM_BUS) ? 1 : 0;
}

int sigcatch_write(volatile void *p, uint8_t v, struct sigbus_info *info)
{
	return armed_write(p, v, info, ARM_BUS | ARM_SEGV);
}

unsigned long sigbus_caught(void)
{
	return atomic_load(&sigbus_count);
}

unsigned long sigsegv_caught(void)
{
	return atomic_load(&sigsegv_count);
}
