// SPDX-License-Identifier: MIT
/*
 * pager/signal.c - hand a signal ufvm does not serve to the action the
 * application had installed before ufvm took the signal over.
 *
 * The backends that serve faults from a signal handler (the sigsegv
 * backend, in-thread delivery's SIGBUS handler) keep their own handler
 * installed for good: putting the application's action back with
 * sigaction() would take every later fault away from ufvm if that action
 * recovers (siglongjmp).  So the saved action is called directly, the way
 * the kernel would have delivered the signal to it.
 */
#define _GNU_SOURCE
#include <signal.h>

#include "pager/pager.h"

void pager_signal_forward(struct sigaction *sa, int sig, siginfo_t *si, void *uc)
{
	sigset_t mask, old;

	if (!(sa->sa_flags & SA_SIGINFO) &&
	    (sa->sa_handler == SIG_DFL || sa->sa_handler == SIG_IGN)) {
		/*
		 * The default action (a fault's signal cannot be ignored): the
		 * access is retried once the handler returns and kills the
		 * process with the kernel's own siginfo.
		 */
		signal(sig, SIG_DFL);
		return;
	}
	/* What the kernel does on delivery: the action's mask, then the call. */
	mask = sa->sa_mask;
	if (!(sa->sa_flags & SA_NODEFER))
		sigaddset(&mask, sig);
	pthread_sigmask(SIG_BLOCK, &mask, &old);
	if (sa->sa_flags & SA_SIGINFO) {
		void (*fn)(int, siginfo_t *, void *) = sa->sa_sigaction;

		if (sa->sa_flags & SA_RESETHAND) {
			sa->sa_handler = SIG_DFL;	/* one shot: the next one is fatal */
			sa->sa_flags &= ~SA_SIGINFO;
		}
		fn(sig, si, uc);
	} else {
		void (*fn)(int) = sa->sa_handler;

		if (sa->sa_flags & SA_RESETHAND)
			sa->sa_handler = SIG_DFL;
		fn(sig);
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);	/* unless it siglongjmp'd */
}
