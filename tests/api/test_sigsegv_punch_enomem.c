/* SPDX-License-Identifier: MIT */
/*
 * test_sigsegv_punch_enomem.c - a punch whose unmapping fails for want of
 * a mapping leaves no page mapped behind ufvm's back.
 *
 * Invariant: after ufvm_punch() every page of the range that ufvm does not
 * count as mapped is unmapped for real, so the next access to it faults
 * and ufvm tracks what is written there.  The sigsegv backend unmaps a
 * page by mapping reserved memory over it; inside a run of mapped pages
 * that splits the run's mapping, which fails (ENOMEM) once the process has
 * vm.max_map_count mappings.  The punch used to forget the pages anyway
 * and free their frames: the memfd mapping stayed, a write to the page
 * went into a new frame that ufvm never saw, and ufvm_fsync() left the
 * store with the punch's zeros there.  Now a failed unmapping of part of
 * a region unmaps the whole region instead (one mapping replacing many,
 * no split), as the backend's coalescing does.
 *
 * How it fails on purpose: pages 2, 3 and 4 are written, each mapped
 * writable and the three merged into one mapping; the mapping table is
 * filled (tests/common/pagemap.c) and page 3 punched, which needs a
 * split.  The table is emptied, page 3 written, the file synced, and the
 * store read back.  Skipped where vm.max_map_count is too large to fill
 * quickly.  Every backend runs it; the userfaultfd backend's unmapping
 * (MADV_DONTNEED) never splits, and the test checks the same outcome.
 */
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "check.h"
#include "pagemap.h"

#define NPAGES		16
#define SEED		0x5eed2700
#define MAX_FILL	(1ul << 18)	/* mappings made at most to fill the table */

Test(sigsegv_punch_enomem, write_after_failed_unmap_reaches_store, .timeout = 60)
{
	struct ufvm_config cfg;
	struct ut_file u;
	size_t table_len;
	uint8_t *m, b;
	void *table;
	int fd;

	assert_ok(ufvm_config_init(&cfg));
	cfg.readahead = 0;
	ut_file_open(&u, &cfg, "a", NPAGES, SEED, UFVM_RDWR);
	m = ut_map(u.vm, u.path, 0, NPAGES * PAGE, UFVM_PROT_READ | UFVM_PROT_WRITE);
	for (int pg = 2; pg <= 4; pg++)
		m[pg * PAGE] = (uint8_t)('a' + pg);	/* mapped writable */

	table = maps_fill_table(MAX_FILL, &table_len);
	if (!table)
		cr_skip_test("the mapping table did not fill up (vm.max_map_count too large?)");
	assert_ok(ufvm_punch(u.f, 3 * PAGE, PAGE));
	munmap(table, table_len);

	/* Punched: zeros, and a write there is ufvm's to write back. */
	cr_assert_eq(m[3 * PAGE + 7], 0);
	m[3 * PAGE + 7] = 'z';
	assert_ok(ufvm_fsync(u.f));
	fd = open(u.path, O_RDONLY | O_CLOEXEC);
	cr_assert(fd >= 0);
	cr_assert_eq(pread(fd, &b, 1, 3 * PAGE + 7), 1);
	close(fd);
	cr_assert_eq(b, 'z', "a write after a punch whose unmapping failed did not reach "
		     "the store (it holds %#x)", b);
	/* The pages beside it kept their bytes. */
	cr_assert_eq(m[2 * PAGE], 'a' + 2);
	cr_assert_eq(m[4 * PAGE], 'a' + 4);
	ut_unmap(u.vm, m, NPAGES * PAGE);
	ut_file_close(&u);
}
