/* SPDX-License-Identifier: MIT */
/*
 * vm/trace.h - static trace points (USDT, provider "ufvm").
 *
 * Each is a nop instruction in the code until a tracer (perf, bpftrace,
 * SystemTap) attaches; the arguments are evaluated only then (the
 * semaphore-less form costs one nop).  docs/tracing.md lists them with
 * their arguments.  Without sys/sdt.h they compile to nothing.
 */
#ifndef UFVM_VM_TRACE_H
#define UFVM_VM_TRACE_H

#include <stdint.h>

/* @v in a register: a probe argument that is a constant would be noted as
 * an immediate, which some tracers (perf) do not take. */
static inline uint64_t vm_trace_reg(uint64_t v)
{
	__asm__("" : "+r"(v));
	return v;
}

#ifdef UFVM_HAVE_SDT
#include <sys/sdt.h>
#define UFVM_TRACE1(n, a)		DTRACE_PROBE1(ufvm, n, a)
#define UFVM_TRACE2(n, a, b)		DTRACE_PROBE2(ufvm, n, a, b)
#define UFVM_TRACE3(n, a, b, c)		DTRACE_PROBE3(ufvm, n, a, b, c)
#define UFVM_TRACE4(n, a, b, c, d)	DTRACE_PROBE4(ufvm, n, a, b, c, d)
#else
#define UFVM_TRACE1(n, a)		do { } while (0)
#define UFVM_TRACE2(n, a, b)		do { } while (0)
#define UFVM_TRACE3(n, a, b, c)		do { } while (0)
#define UFVM_TRACE4(n, a, b, c, d)	do { } while (0)
#endif

#endif /* UFVM_VM_TRACE_H */
