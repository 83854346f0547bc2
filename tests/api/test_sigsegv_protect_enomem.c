/* SPDX-License-Identifier: MIT */
/*
 * test_sigsegv_protect_enomem.c - a ufvm_protect() that fails leaves the
 * range writable for real, not only in ufvm's books.
 *
 * Invariant: after a failed change to read-only, the kernel's protection
 * of every mapped page agrees with ufvm's shadow of it (mapped writable or
 * write-protected), so a write to the range, which ufvm still treats as
 * writable, succeeds.  The sigsegv backend changes the mapped runs of the
 * range one mprotect() each; one that fails with ENOMEM (vm.max_map_count
 * reached) used to leave the runs before it read-only while their pages
 * stayed "mapped writable" in the shadow: a write there faulted, was
 * taken for a genuine protection fault and passed on as SIGSEGV (here to
 * the test's handler; by default it kills the process), and a later
 * ufvm_protect(READ|WRITE) changed nothing, the region being writable
 * already.  Teeth: without the rollback page 2 is left mapped read-only
 * (/proc/self/maps), and without the rollback and the coalesce that an
 * ENOMEM asks for, the write to page 2 gets SIGSEGV.
 *
 * How it fails on purpose: with fault-around off, pages 0, 2 and 4 are
 * mapped alone (0 and 4 read, 2 written: its own writable mapping) and 6-7
 * together, written (one writable mapping).  The process's mapping table
 * is then filled to vm.max_map_count (one page in two of a reservation
 * made readable), so that protecting pages [0, 7) changes the runs at 0,
 * 2 and 4 in place and fails on the one at 6, which needs a split.  The
 * table is emptied again before anything is checked.  Skipped where
 * vm.max_map_count is too large to fill quickly.
 *
 * Every backend runs it; the userfaultfd backends change the range with
 * one mprotect(), which fails before changing anything.
 */
#include <sys/mman.h>

#include "check.h"
#include "pagemap.h"

#define FILE_SIZE	(16 * PAGE)
#define SEED		0x5eed1b00
#define MAX_FILL	(1ul << 18)	/* mappings made at most to fill the table */

/* Is the mapping that holds @addr writable (/proc/self/maps)? */
static bool maps_writable(const void *addr)
{
	uintptr_t a = (uintptr_t)addr;
	unsigned long lo, hi;
	char perms[8], line[512];
	bool w = false;
	FILE *f = fopen("/proc/self/maps", "r");

	cr_assert(f);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) == 3 && lo <= a && a < hi) {
			w = perms[1] == 'w';
			break;
		}
	fclose(f);
	return w;
}

Test(sigsegv_protect_enomem, failed_protect_leaves_range_writable, .timeout = 60)
{
	struct ufvm_config cfg;
	struct sigbus_info info;
	struct ut_file u;
	uint8_t *m, v;
	void *table;
	size_t table_len;
	int err;

	sigcatch_install();	/* a genuine SIGSEGV comes back as a failure */
	assert_ok(ufvm_config_init(&cfg));
	cfg.fault_around = 1;
	ut_file_open(&u, &cfg, "a", FILE_SIZE / PAGE, SEED, 0);
	m = ut_map(u.vm, u.path, 0, FILE_SIZE, UFVM_PROT_READ | UFVM_PROT_WRITE);
	cr_assert_eq(m[0], pattern_byte(SEED, 0));
	m[2 * PAGE] = 'a';
	cr_assert_eq(m[4 * PAGE], pattern_byte(SEED, 4 * PAGE));
	m[6 * PAGE] = 'b';
	m[7 * PAGE] = 'c';

	table = maps_fill_table(MAX_FILL, &table_len);
	if (!table)
		cr_skip_test("the mapping table did not fill up (vm.max_map_count too large?)");
	err = ufvm_protect(u.vm, m, 7 * PAGE, UFVM_PROT_READ);
	munmap(table, table_len);
	if (!err)
		cr_skip_test("ufvm_protect did not fail with the mapping table full");

	/*
	 * The pages written before are mapped writable again, or not mapped
	 * (then a write faults and is served): never left read-only under a
	 * shadow that says writable.  Looked at before any access, which
	 * might mend things by the way (a coalesce of the backend's regions).
	 */
	for (int pg = 2; pg <= 6; pg += 4)
		cr_assert(maps_writable(m + pg * PAGE) || maps_is_frames(m + pg * PAGE) == 0,
			  "ufvm_protect failed (%d) and left page %d, written before, "
			  "mapped read-only", err, pg);

	/* Still writable: every page of the range takes a write. */
	for (int pg = 0; pg < 8; pg++)
		cr_assert_eq(sigcatch_write(m + pg * PAGE + 1, 'w', &info), 0,
			     "ufvm_protect failed (%d), and a write to page %d then got "
			     "signal %d", err, pg, info.sig);
	cr_assert_eq(sigcatch_read(m + 2 * PAGE, &v, &info), 0);
	cr_assert_eq(v, 'a');

	/* And a change to read-only works now, for real. */
	assert_ok(ufvm_protect(u.vm, m, 7 * PAGE, UFVM_PROT_READ));
	cr_assert_eq(sigcatch_write(m + 2 * PAGE, 'x', &info), SIGSEGV,
		     "a write to a page made read-only did not get SIGSEGV");
	assert_ok(ufvm_protect(u.vm, m, 7 * PAGE, UFVM_PROT_READ | UFVM_PROT_WRITE));
	cr_assert_eq(sigcatch_write(m + 2 * PAGE, 'y', &info), 0);
	assert_ok(ufvm_unmap_range(u.vm, m, FILE_SIZE));	/* split by ufvm_protect */
	ut_file_close(&u);
}
