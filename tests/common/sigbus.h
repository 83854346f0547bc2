/* SPDX-License-Identifier: MIT */
/*
 * sigbus.h - touch memory and catch the SIGBUS it may raise.
 *
 * sigbus_read()/sigbus_write() arm a per-thread sigjmp_buf, touch one byte,
 * and disarm.  A SIGBUS that arrives while armed is caught: the handler
 * records si_addr, si_code and the thread id it ran on, and siglongjmps
 * back.  A SIGBUS while no sigbus_* call is armed on that thread restores
 * the default action and re-raises, so an unexpected SIGBUS still kills the
 * test process (and Criterion reports the crash).
 */
#ifndef TESTS_SIGBUS_H
#define TESTS_SIGBUS_H

#include <stdint.h>
#include <sys/types.h>

struct sigbus_info {
	void *addr;	/* si_addr */
	int code;	/* si_code */
	pid_t tid;	/* thread the handler ran on */
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

/* The calling thread's kernel thread id. */
pid_t sigbus_gettid(void);

#endif /* TESTS_SIGBUS_H */
