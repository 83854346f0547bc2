/* SPDX-License-Identifier: MIT */
/*
 * race.h - clocks and bounded waits for the race tests.
 *
 * Race tests coordinate the threads of a race through ufvm's debug hooks:
 * a hook publishes that a thread reached a point and waits, bounded, for
 * another to reach its own.  Every wait has a time limit, so that a
 * protection that serialises the two sides (the point the hook waits for
 * can then never come) costs the limit instead of a deadlock; the caller
 * counts the timeouts.  Everything here is async-signal-safe: with the
 * sigsegv backend a hook runs in the faulting thread's signal handler.
 */
#ifndef TESTS_RACE_H
#define TESTS_RACE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * How long a teeth run waits before it calls its scenario hung.  A scenario
 * that completes does so in milliseconds here, one that the missing
 * protection hangs never does; runs that must complete keep their own,
 * longer limits (a slow machine must not fail them).
 */
#define RACE_HUNG_US	(1000000u)

/* CLOCK_MONOTONIC in microseconds. */
uint64_t race_now_us(void);

/* Sleep @us microseconds, whatever signals arrive. */
void race_sleep_us(uint64_t us);

/*
 * race_wait - wait until *@v >= @want, for at most @timeout_us.
 * Return: true if it got there, false on timeout.
 */
bool race_wait(atomic_int *v, int want, uint64_t timeout_us);

/*
 * race_join - pthread_join() for at most @timeout_us.
 * Return: 0, or ETIMEDOUT (the thread still runs, or sleeps: see race_wchan).
 * Not async-signal-safe.
 */
int race_join(pthread_t th, uint64_t timeout_us);

/* Where thread @tid of this process sleeps in the kernel (its wchan), into @buf. */
void race_wchan(pid_t tid, char *buf, size_t len);

/*
 * race_wait_wchan - wait until thread *@tid (0: not started yet) sleeps in
 * the kernel in a function whose name contains @where, for at most
 * @timeout_us.  Return: true if it got there, false on timeout.
 * Not async-signal-safe.
 */
bool race_wait_wchan(atomic_int *tid, const char *where, uint64_t timeout_us);

/*
 * race_teeth_asan - run @run in a child whose stderr is kept, and assert
 * that AddressSanitizer ended it with a report of @kind (e.g.
 * "heap-use-after-free") that names @where.  Without ASan the test is
 * skipped: the use after free it shows is silent there.
 */
void race_teeth_asan(void (*run)(void), const char *kind, const char *where);

#endif /* TESTS_RACE_H */
