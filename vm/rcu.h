/* SPDX-License-Identifier: MIT */
/*
 * vm/rcu.h - the RCU flavour of ufvm: liburcu's "bulletproof" flavour, so
 * that any application thread (a ufvm_pread() caller, a faulting thread in
 * the in-thread backends) can enter a read section without registering.
 * Read sections nest inside every lock and never block.
 */
#ifndef UFVM_VM_RCU_H
#define UFVM_VM_RCU_H

/*
 * Not _LGPL_SOURCE: the inline read side of urcu-bp 0.13 dereferences its
 * reader registry at an address UBSan flags as misaligned, and a call
 * costs a few ns against a fault's microseconds.
 */
#include <sched.h>
#include <urcu-bp.h>

/*
 * Load an RCU-protected pointer: rcu_dereference() without _LGPL_SOURCE is
 * a call into liburcu for each pointer, and the fault path's index walk
 * loads one per level for every page of a fault-around window.  What it
 * must be is a load with consume ordering; acquire is stronger (a plain
 * load on x86), and inline.  @p: the pointer (an lvalue).
 */
#define vm_rcu_dereference(p)	__atomic_load_n(&(p), __ATOMIC_ACQUIRE)

#ifdef UFVM_DEBUG
extern __thread int vm__rcu_depth;
#define vm_rcu_read_lock()   do { rcu_read_lock(); vm__rcu_depth++; } while (0)
#define vm_rcu_read_unlock() do { vm__rcu_depth--; rcu_read_unlock(); } while (0)
#define VM_ASSERT_RCU()      VM_BUG_ON(vm__rcu_depth <= 0)
#else
#define vm_rcu_read_lock()   rcu_read_lock()
#define vm_rcu_read_unlock() rcu_read_unlock()
#define VM_ASSERT_RCU()      do { } while (0)
#endif

/*
 * vm_call_rcu - call_rcu(), kept out of fork().  A fork() while another
 * thread is inside call_rcu() gives the child the worker's queue with a
 * node half linked (the tail swapped, the previous node's next not yet
 * set); the child's new worker, which takes that queue over, then waits
 * for the link for ever, and the child's ufvm_close() with it.
 * vm_rcu_fork_prepare() closes the gate (low bit) and waits for the calls
 * in flight (counted in twos); a call meeting the closed gate waits for
 * the fork to be done.  Context: any, signal handlers included; never
 * sleeps but while a fork() is being prepared.
 */
extern unsigned int vm_rcu_gate;

static inline void vm_call_rcu(struct rcu_head *head, void (*fn)(struct rcu_head *))
{
	unsigned int v = __atomic_load_n(&vm_rcu_gate, __ATOMIC_RELAXED);

	for (;;) {
		if (v & 1) {
			sched_yield();
			v = __atomic_load_n(&vm_rcu_gate, __ATOMIC_RELAXED);
			continue;
		}
		if (__atomic_compare_exchange_n(&vm_rcu_gate, &v, v + 2, true, __ATOMIC_ACQUIRE,
						__ATOMIC_RELAXED))
			break;
	}
	call_rcu(head, fn);
	__atomic_fetch_sub(&vm_rcu_gate, 2, __ATOMIC_RELEASE);
}

#endif /* UFVM_VM_RCU_H */
