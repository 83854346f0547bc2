// SPDX-License-Identifier: MIT
/*
 * test_readahead.c - sequential scans read the store in large windows.
 *
 * A sequential scan of a cold file through a mapping issues at most one
 * store read per 8 pages (the windows grow to 256 pages), and every byte
 * is right; with UFVM_READAHEAD off it takes one store read per page,
 * which shows the count measures readahead.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "check.h"

#define SEED	0x7261
#define NPAGES	4096ul

static uint64_t scan(unsigned int readahead)
{
	char path[TMPSTORE_PATH_MAX];
	struct ufvm_config cfg;
	struct ufvm *vm;
	uint8_t *map;
	uint64_t reads, p;

	cr_assert(ufvm_config_init(&cfg) == 0);
	cfg.readahead = readahead;
	ut_store("ra", (off_t)(NPAGES * PAGE), SEED, path);
	vm = ut_open(&cfg);
	map = ut_map(vm, path, 0, NPAGES * PAGE, UFVM_PROT_READ);
	for (p = 0; p < NPAGES; p++)
		assert_pattern(SEED, map + p * PAGE, p * PAGE, PAGE, "page %llu",
			       (unsigned long long)p);
	reads = ut_counter(vm, UFVM_CTR_STORE_READS);
	ut_unmap(vm, map, NPAGES * PAGE);
	ut_close(vm);
	return reads;
}

Test(readahead, sequential_scan_reads_in_windows, .timeout = 60)
{
	uint64_t reads = scan(256);

	cr_assert_leq(reads, NPAGES / 8, "%llu store reads for %lu pages",
		      (unsigned long long)reads, NPAGES);
}

Test(readahead, off_reads_page_by_page, .timeout = 60)
{
	uint64_t reads = scan(0);

	cr_assert_geq(reads, NPAGES, "%llu store reads for %lu pages without readahead",
		      (unsigned long long)reads, NPAGES);
}
