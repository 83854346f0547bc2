// SPDX-License-Identifier: MIT
/*
 * test_writeback_api.c - ufvm_writeback() puts dirty pages in the store
 * file without a sync, and ufvm_backend_name() names the delivery in use.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "check.h"

#define SEED	0x7761

Test(writeback_api, dirty_pages_reach_the_file, .timeout = 20)
{
	char path[TMPSTORE_PATH_MAX];
	struct ufvm_file *f;
	struct ufvm *vm;
	uint8_t *map, buf[PAGE];
	const char *be;

	ut_store("wb", 16 * PAGE, SEED, path);
	vm = ut_open(NULL);
	be = ufvm_backend_name(vm);
	cr_assert(be && (!strcmp(be, "uffd") || !strcmp(be, "uffd-inthread") ||
			 !strcmp(be, "sigsegv")), "backend name '%s'", be ? be : "(null)");
	assert_ok(ufvm_file_open(vm, path, UFVM_RDWR, &f));
	map = ut_map(vm, path, 0, 16 * PAGE, UFVM_PROT_READ | UFVM_PROT_WRITE);
	memset(map + 3 * PAGE, 0x3c, PAGE);
	assert_ok(ufvm_writeback(f));
	cr_assert(tmpstore_read(path, buf, PAGE, 3 * PAGE) == 0);
	cr_assert(buf[0] == 0x3c && buf[PAGE - 1] == 0x3c, "ufvm_writeback left the page out");
	cr_assert_eq(ut_counter(vm, UFVM_CTR_STORE_WRITE_PAGES), 1);
	ut_unmap(vm, map, 16 * PAGE);
	assert_ok(ufvm_file_close(f));
	ut_close(vm);
}
