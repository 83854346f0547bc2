/* SPDX-License-Identifier: MIT */
/*
 * test_sigsafe_alloc.c - a fault served in the faulting thread's signal
 * handler allocates nothing from malloc (the interrupted code may hold
 * the allocator's lock).
 *
 * direct_io_tail_fault: with direct I/O, the file's partial last block
 * is read through a bounce buffer; a fault of that page with in-thread
 * delivery (and with the sigsegv backend) must not take it from
 * posix_memalign() or malloc(), which this test interposes and counts,
 * per thread, while the access runs.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

#define SEED	0x5a11
#define SIZE	(3 * PAGE + 100)

/* Volatile: the signal handler runs between the stores around the access. */
static __thread volatile int counting, allocs;

int posix_memalign(void **p, size_t align, size_t size)
{
	static int (*real)(void **, size_t, size_t);

	if (!real)
		real = (int (*)(void **, size_t, size_t))dlsym(RTLD_NEXT, "posix_memalign");
	if (counting)
		allocs++;
	return real(p, align, size);
}

void *aligned_alloc(size_t align, size_t size)
{
	static void *(*real)(size_t, size_t);

	if (!real)
		real = (void *(*)(size_t, size_t))dlsym(RTLD_NEXT, "aligned_alloc");
	if (counting)
		allocs++;
	return real(align, size);
}

static void tail_fault(enum ufvm_backend backend, enum ufvm_delivery delivery)
{
	char path[TMPSTORE_PATH_MAX];
	struct ufvm_config cfg;
	struct ufvm *vm;
	uint8_t *m, v;
	int r = tmpstore_direct_io();

	cr_assert(r >= 0, "probing O_DIRECT in %s: %s", tmpstore_dir(), strerror(-r));
	if (!r)
		cr_skip_test("the file system of %s refuses O_DIRECT", tmpstore_dir());
	ut_store("tail", SIZE, SEED, path);
	assert_ok(ufvm_config_init(&cfg));
	if (backend == UFVM_BACKEND_UFFD && cfg.backend == UFVM_BACKEND_SIGSEGV)
		cr_skip_test("UFVM_BACKEND=sigsegv: in-thread delivery is a userfaultfd mode");
	cfg.backend = backend;
	cfg.delivery = delivery;
	cfg.direct_io = 1;
	cfg.fault_around = 1;
	cfg.readahead = 0;
	vm = ut_open(&cfg);
	m = ut_map(vm, path, 0, 4 * PAGE, UFVM_PROT_READ);
	counting = 1;
	v = *(volatile uint8_t *)(m + 3 * PAGE + 7);	/* the partial last page */
	counting = 0;
	cr_assert_eq(v, pattern_byte(SEED, 3 * PAGE + 7));
	cr_assert_eq(allocs, 0, "the fault allocated %d times in the signal handler", allocs);
	ut_unmap(vm, m, 4 * PAGE);
	ut_close(vm);
}

Test(sigsafe_alloc, direct_io_tail_fault_inthread, .timeout = 30)
{
	tail_fault(UFVM_BACKEND_UFFD, UFVM_DELIVERY_INTHREAD);
}

Test(sigsafe_alloc, direct_io_tail_fault_sigsegv, .timeout = 30)
{
	tail_fault(UFVM_BACKEND_SIGSEGV, UFVM_DELIVERY_HANDLER);
}
