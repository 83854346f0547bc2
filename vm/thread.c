// SPDX-License-Identifier: MIT
/*
 * vm/thread.c - ufvm's own threads (fault handlers, background and
 * readahead threads).
 */
#include <pthread.h>
#include <signal.h>

#include "vm/compat.h"

int vm_thread_create(pthread_t *th, void *(*fn)(void *), void *arg)
{
	sigset_t all, old;
	int err;

	/*
	 * Signals of the application are not for ufvm's threads: a handler
	 * of its run on one could interrupt it holding a page lock and,
	 * touching ufvm memory, wait for a fault that only this thread could
	 * serve.  Those raised by a fault of the thread itself stay, so that
	 * a bug still dies as it should.  The thread inherits the mask.
	 */
	sigfillset(&all);
	sigdelset(&all, SIGSEGV);
	sigdelset(&all, SIGBUS);
	sigdelset(&all, SIGFPE);
	sigdelset(&all, SIGILL);
	sigdelset(&all, SIGTRAP);
	sigdelset(&all, SIGABRT);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	err = pthread_create(th, NULL, fn, arg);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return -err;
}
