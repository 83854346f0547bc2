/* SPDX-License-Identifier: MIT */
/*
 * sigbus.h - touch memory and catch the SIGBUS (or SIGSEGV) it may raise.
 *
 * sigbus_read()/sigbus_write() arm a per-thread sigjmp_buf, touch one byte,
 * and disarm.  A SIGBUS that arrives while armed is caught: the handler
 * records si_addr, si_code and the thread id it ran on, and siglongjmps
 * back.  A SIGBUS while no sigbus_* call is armed on that thread is passed
 * to the handler installed before ours, or gets the default action, so an
 * unexpected SIGBUS still kills the test process (and Criterion reports the
 * crash).
 *
 * sigcatch_read() does the same for SIGSEGV as well, for a thread that
 * touches a region another thread may unmap.  Only with ufvm's userfaultfd
 * backend: with the sigsegv backend every ufvm fault is a SIGSEGV, which
 * must reach ufvm's handler.
 */
#ifndef TESTS_SIGBUS_H
#define TESTS_SIGBUS_H

#include <stdint.h>
#include <sys/types.h>

struct sigbus_info {
	void *addr;	/* si_addr */
	int code;	/* si_code */
	pid_t tid;	/* thread the handler ran on */
	int sig;	/* SIGBUS or SIGSEGV */
};

/* Install the handler (idempotent, process wide). */
void sigbus_install(void);

/*
 * sigbus_read - read the byte at @p into *@out.
 * Return: 0 (read done), or 1 (SIGBUS caught; *@info filled, *@out untouched).
 */
int sigbus_read(const volatile void *p, uint8_t *out, struct sigbus_info *info);

/* sigbus_write - store @v at @p.  Return: 0 or 1 as sigbus_read(). */
int sigbus_write(volatile void *p, uint8_t v, struct sigbus_info *info);

/* SIGBUS signals caught by this process so far. */
unsigned long sigbus_caught(void);

/* Install the handler for SIGSEGV too (idempotent, process wide). */
void sigcatch_install(void);

/*
 * sigcatch_read - read the byte at @p into *@out, catching SIGBUS and SIGSEGV.
 * Return: 0 (read done), or the signal caught (*@info filled, *@out untouched).
 */
int sigcatch_read(const volatile void *p, uint8_t *out, struct sigbus_info *info);

/* sigcatch_write - store @v at @p, catching SIGBUS and SIGSEGV.
 * Return: 0 (stored), or the signal caught. */
int sigcatch_write(volatile void *p, uint8_t v, struct sigbus_info *info);
/* SIGSEGV signals caught by this process so far. */
unsigned long sigsegv_caught(void);

/* The calling thread's kernel thread id. */
pid_t sigbus_gettid(void);

#endif /* TESTS_SIGBUS_H */
