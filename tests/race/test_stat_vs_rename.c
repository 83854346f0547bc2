/* SPDX-License-Identifier: MIT */
/*
 * test_stat_vs_rename.c - a rename between the stat() and the open() of a
 * path that ufvm_file_open() (or ufvm_map()) is given: one file, one cache.
 *
 * Race: object_get() (lib/ufvm.c) looks the file up in the instance's
 * registry by the inode stat() finds, and opens the path only when it
 * finds none.  If a rename makes the path name a file that has an object
 * already in between, the open gets that file: it must be looked up again
 * by the inode opened, or the file gets a second object, a second cache,
 * and writes through one handle are not seen through the other (and the
 * two write back over each other).  UFVM_HOOK_FILE_STAT renames file A's
 * path over B's after the stat of B's path found B; A is open already.
 * A byte written through A's handle must read back through the new one.
 * Teeth: with UFVM_DEBUG_STAT_OPEN_RACE the lookup is by stat()'s inode
 * only, and the new handle reads the store's old byte from its own cache.
 */
#define _GNU_SOURCE
#include <stdatomic.h>
#include <stdio.h>
#include <unistd.h>

#include "check.h"

#define SEED_A	0x5ea7a000
#define SEED_B	0x5ea7b000
#define SIZE	(4 * PAGE)

static struct {
	atomic_int armed;
	char from[TMPSTORE_PATH_MAX], to[TMPSTORE_PATH_MAX];
} rn;

/* Context: the opening thread, registry lock held. */
static void stat_hook(void *arg, unsigned int point, uint64_t a, uint64_t b)
{
	(void)arg, (void)a, (void)b;
	if (point == UFVM_HOOK_FILE_STAT && atomic_exchange(&rn.armed, 0))
		cr_assert(rename(rn.from, rn.to) == 0, "rename: %s", strerror(errno));
}

/* The byte at offset 0 that A's path's open reads after a write through A's handle. */
static uint8_t read_through_renamed(unsigned int debug)
{
	struct ufvm_file *fa, *fb;
	struct ufvm_config cfg;
	struct ufvm *vm;
	uint8_t x = 0xa5, got = 0;

	ut_store("a", SIZE, SEED_A, rn.from);
	ut_store("b", SIZE, SEED_B, rn.to);
	cr_assert(ufvm_config_init(&cfg) == 0);
	cfg.debug_flags |= debug;
	cfg.dirty_expire_ms = 3600000;	/* the write stays in the cache */
	vm = ut_open(&cfg);
	assert_ok(ufvm_file_open(vm, rn.from, UFVM_RDWR, &fa));
	cr_assert_neq(pattern_byte(SEED_A, 0), x);
	ut_pwrite(fa, &x, 1, 0);
	assert_ok(ufvm_debug_hook(vm, stat_hook, NULL));
	atomic_store(&rn.armed, 1);
	assert_ok(ufvm_file_open(vm, rn.to, UFVM_RDWR, &fb));	/* stat finds B, open gets A */
	cr_assert_eq(atomic_load(&rn.armed), 0, "the hook did not run: nothing was raced");
	assert_ok(ufvm_debug_hook(vm, NULL, NULL));
	ut_pread(fb, &got, 1, 0);
	assert_ok(ufvm_file_close(fb));
	assert_ok(ufvm_file_close(fa));
	ut_close(vm);
	return got;
}

Test(stat_vs_rename, one_file_one_cache, .timeout = 30)
{
	uint8_t got = read_through_renamed(0);

	cr_assert_eq(got, 0xa5, "the renamed path's handle read %#x, not the byte written "
		     "through the other handle of the same file", got);
}

Test(stat_vs_rename, teeth_stat_only_makes_a_second_cache, .timeout = 30)
{
	uint8_t got = read_through_renamed(UFVM_DEBUG_STAT_OPEN_RACE);

	cr_assert_eq(got, pattern_byte(SEED_A, 0),
		     "with the lookup by stat()'s inode only, the second handle read %#x, "
		     "not the store's old byte", got);
}
