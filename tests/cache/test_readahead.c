// SPDX-License-Identifier: MIT
/*
 * test_readahead.c - sequential scans read the store in large windows.
 *
 * A sequential scan of a cold file through a mapping issues at most one
 * store read per 8 pages (the windows grow to 256 pages), and every byte
 * is right; with UFVM_READAHEAD off it takes one store read per page,
 * which shows the count measures readahead.  Threads scanning
 * parts of one mapping at once read in full windows too: each reader's
 * windows follow its own pages, not the region's last fault (the other
 * reader's).
 */
#include <criterion/criterion.h>
#include <pthread.h>
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

#define READERS	4
#define PART	4096ul	/* pages per reader of the scan by READERS threads */

struct part {
	const uint8_t *map;
	uint64_t first;
};

static void *scan_part(void *arg)
{
	const struct part *h = arg;
	uint64_t p;

	for (p = h->first; p < h->first + PART; p++)
		assert_pattern(SEED, h->map + p * PAGE, p * PAGE, PAGE, "page %llu",
			       (unsigned long long)p);
	return NULL;
}

Test(readahead, readers_of_one_mapping_read_in_full_windows, .timeout = 60)
{
	char path[TMPSTORE_PATH_MAX];
	struct ufvm_config cfg;
	struct part h[READERS];
	pthread_t t[READERS];
	struct ufvm *vm;
	uint8_t *map;
	uint64_t reads, majors;
	int i;

	cr_assert(ufvm_config_init(&cfg) == 0);
	cfg.readahead = 256;
	cfg.cache_pages = 0;	/* not UFVM_CACHE_PAGES's: no eviction to read again for */
	ut_store("ra2", (off_t)(READERS * PART * PAGE), SEED, path);
	vm = ut_open(&cfg);
	map = ut_map(vm, path, 0, READERS * PART * PAGE, UFVM_PROT_READ);
	for (i = 0; i < READERS; i++) {
		h[i] = (struct part){ .map = map, .first = (uint64_t)i * PART };
		cr_assert(pthread_create(&t[i], NULL, scan_part, &h[i]) == 0);
	}
	for (i = 0; i < READERS; i++)
		pthread_join(t[i], NULL);
	reads = ut_counter(vm, UFVM_CTR_STORE_READS);
	majors = ut_counter(vm, UFVM_CTR_MAJOR);
	ut_unmap(vm, map, READERS * PART * PAGE);
	ut_close(vm);
	/*
	 * 64 windows of 256 pages and each reader's ramp up to them (4 reads:
	 * 73-82 in all, with each backend and delivery, under ASan, on one
	 * CPU beside a busy loop); readers that took the region's last
	 * window for theirs read 116-353 times.
	 */
	cr_assert_leq(reads, READERS * PART / 256 + READERS * 8, "%llu store reads (%llu major faults) for %lu pages",
		      (unsigned long long)reads, (unsigned long long)majors, READERS * PART);
}
