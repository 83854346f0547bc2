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
 * the kernel would have delivered the signal to it.  The default action
 * of a fault's signal is taken when the faulting access runs again; a
 * signal sent with kill() has no such access, so it is raised again.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <ucontext.h>
#include <unistd.h>

#include "pager/pager.h"

bool pager_action_is_handler(const struct sigaction *sa)
{
	return (sa->sa_flags & SA_SIGINFO) ? sa->sa_sigaction != NULL
					   : sa->sa_handler != SIG_DFL && sa->sa_handler != SIG_IGN;
}

void pager_signal_forward(struct sigaction *sa, int sig, siginfo_t *si, void *ucv)
{
	void (*info)(int, siginfo_t *, void *) = NULL;
	void (*plain)(int) = NULL;
	ucontext_t *uc = ucv;
	sigset_t mask, old;

	if (pager_action_is_handler(sa)) {
		if (sa->sa_flags & SA_SIGINFO)
			info = sa->sa_sigaction;
		else
			plain = sa->sa_handler;
	}
	if (!info && !plain && si && si->si_code <= 0) {
		/*
		 * Sent, not raised by a fault (kill(), sigqueue(), tgkill()):
		 * no instruction runs again to raise it anew.  Ignored, it
		 * stays so, and ufvm's handler with it.  The default action is
		 * taken now: raised again with the default in place, it is
		 * delivered as this handler returns (it is blocked in here
		 * unless SA_NODEFER, then at once).
		 */
		if (!(sa->sa_flags & SA_SIGINFO) && sa->sa_handler == SIG_IGN)
			return;
		signal(sig, SIG_DFL);
		raise(sig);
		return;
	}
	if (!info && !plain) {
		/*
		 * The default action (a fault's signal cannot be ignored; a
		 * NULL SA_SIGINFO handler is the default too): the access is
		 * retried once the handler returns and kills the process with
		 * the kernel's own siginfo.
		 */
		signal(sig, SIG_DFL);
		return;
	}
	/*
	 * What the kernel does on delivery: the interrupted context's mask,
	 * plus the action's, plus the signal; not the mask of ufvm's own
	 * handler, which a handler that longjmp()s out would keep.
	 */
	if (uc)
		mask = uc->uc_sigmask;
	else
		pthread_sigmask(SIG_SETMASK, NULL, &mask);
	sigorset(&mask, &mask, &sa->sa_mask);
	if (!(sa->sa_flags & SA_NODEFER))
		sigaddset(&mask, sig);
	if (sa->sa_flags & SA_RESETHAND) {
		sa->sa_handler = SIG_DFL;	/* one shot: the next one is fatal */
		sa->sa_flags &= ~SA_SIGINFO;
	}
	pthread_sigmask(SIG_SETMASK, &mask, &old);
	if (info)
		info(sig, si, ucv);
	else
		plain(sig);
	pthread_sigmask(SIG_SETMASK, &old, NULL);	/* unless it longjmp()ed */
}

void pager_busy_wait(uint32_t *busy)
{
	while (__atomic_load_n(busy, __ATOMIC_SEQ_CST))
		usleep(100);	/* a fault may wait for the store: no hurry */
}

long pager_fault_error(const void *uc)
{
#ifdef __x86_64__
	if (uc)
		return (long)((const ucontext_t *)uc)->uc_mcontext.gregs[REG_ERR];
#endif
	(void)uc;
	return -1;
}
