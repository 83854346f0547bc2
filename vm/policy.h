/* SPDX-License-Identifier: MIT */
/*
 * vm/policy.h - the fault-path policy switches of one ufvm instance.
 * Set once at ufvm_open (from struct ufvm_config); constant afterwards.
 */
#ifndef UFVM_VM_POLICY_H
#define UFVM_VM_POLICY_H

#include <ufvm.h>

#include "vm/compat.h"

#define VM_FAULT_AROUND_MAX	256

#define VM_FRAME_STRIPES_MAX	8	/* memfds a file's frames may be striped over */

struct vm_policy {
	bool speculative;		/* seed 002 */
	unsigned int fault_around;	/* seed 004: window in pages, 1 = off */
	bool retry;			/* seed 003 */
	unsigned int map_ahead;		/* largest window for sequential readers */
	unsigned int write_ahead;	/* ... and for sequential writers */
	unsigned int invalidate;	/* enum ufvm_invalidate: seeds 001/000 */
	unsigned int frame_stripes;	/* memfds per object (vm/object.h) */
	unsigned int chunk_pages;	/* their chunk; 0 = the default */
	uint64_t debug;			/* UFVM_DEBUG_* */
	ufvm_hook_fn hook;		/* (a) debug hook, or NULL */
	void *hook_arg;
};

static inline void vm_hook(const struct vm_policy *pol, unsigned int point,
			   uint64_t a, uint64_t b)
{
	ufvm_hook_fn fn = __atomic_load_n(&pol->hook, __ATOMIC_ACQUIRE);

	if (unlikely(fn != NULL))
		fn(pol->hook_arg, point, a, b);
}

/*
 * ufvm_parse_size(): @s is decimal digits, then optionally K, M, G or T
 * (powers of 1024, any case) and "B" or "iB"; without a suffix the number
 * counts @unit bytes.  Context: any.  Return: 0 and *@out, -EINVAL (syntax),
 * or -ERANGE (does not fit in 64 bits).
 */
int vm_policy_parse_size(const char *s, uint64_t unit, uint64_t *out);
/* Fill @cfg with defaults and the UFVM_* environment.  Return: 0 or -EINVAL. */
int vm_policy_config_init(struct ufvm_config *cfg);
/* What ufvm_open() would refuse in @cfg, or NULL.  Prints nothing. */
const char *vm_policy_check(const struct ufvm_config *cfg);
/* Check @cfg and derive @pol.  Return: 0 or -EINVAL (message on stderr). */
int vm_policy_from_config(const struct ufvm_config *cfg, struct vm_policy *pol);

#endif /* UFVM_VM_POLICY_H */
