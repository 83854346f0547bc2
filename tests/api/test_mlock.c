/* SPDX-License-Identifier: MIT */
/*
 * test_mlock.c - pages the application mlock()s stay under ufvm's control.
 *
 * zap_of_locked_page_sees_the_next_write: a written, synced page is
 * mlock()ed, then ufvm_zap()ped: the zap must really unmap it (plain
 * MADV_DONTNEED refuses a locked range), so that the next write faults,
 * dirties the page and reaches the store at the next sync.  A zap that
 * failed and was taken for done would leave the page mapped writable and
 * clean: that write would be lost.
 */
#include <criterion/criterion.h>
#include <string.h>
#include <sys/mman.h>

#include "check.h"

#define SEED	0x6d6c

Test(mlock, zap_of_locked_page_sees_the_next_write, .timeout = 20)
{
	char path[TMPSTORE_PATH_MAX];
	uint8_t *map, buf[PAGE];
	struct ufvm *vm;

	ut_store("ml", 16 * PAGE, SEED, path);
	vm = ut_open(NULL);
	map = ut_map(vm, path, 0, 16 * PAGE, UFVM_PROT_READ | UFVM_PROT_WRITE);
	memset(map + 5 * PAGE, 'd', PAGE);
	assert_ok(ufvm_sync(vm, map, 16 * PAGE));
	if (mlock(map + 5 * PAGE, PAGE))
		cr_skip_test("mlock: %s", strerror(errno));
	assert_ok(ufvm_zap(vm, map + 5 * PAGE, PAGE));
	map[5 * PAGE + 7] = 'X';
	assert_ok(ufvm_sync(vm, map, 16 * PAGE));
	cr_assert(tmpstore_read(path, buf, PAGE, 5 * PAGE) == 0);
	cr_assert_eq(buf[7], 'X', "the write after the zap did not reach the store ('%c')",
		     buf[7]);
	munlock(map + 5 * PAGE, PAGE);
	ut_unmap(vm, map, 16 * PAGE);
	ut_close(vm);
}
