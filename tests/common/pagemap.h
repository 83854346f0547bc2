/* SPDX-License-Identifier: MIT */
/*
 * pagemap.h - what the kernel maps at an address: /proc/self/pagemap and
 * /proc/self/maps, to check ufvm's mappings against the real page tables.
 *
 * With the userfaultfd backend a region is a shared mapping of the file's
 * frames (a memfd named "ufvm-frames"; one mapping per chunk of a striped
 * file) whose pages are installed one by one: a page is mapped when its
 * page-table entry is present.
 * With the sigsegv backend a region is reserved anonymous memory, and an
 * installed page is a mapping of the frames over it, whose entry need not
 * be present yet: a page is mapped when the mapping at it is the frames'.
 * The process must be root for pagemap to show page frame numbers.
 */
#ifndef TESTS_PAGEMAP_H
#define TESTS_PAGEMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PM_PRESENT	(1ull << 63)
#define PM_PFN_MASK	((1ull << 55) - 1)

/*
 * frames_fds_open - open (read-only) each memfd of ufvm's frames that this
 * process has open, up to @max of them, into @fds.  A file's frames are in
 * one memfd, or striped over several (vm/object.h, "Frame striping").
 * Return: how many this process has (even past @max), or -errno.
 */
int frames_fds_open(int *fds, int max);

/* The pagemap entries of @npages pages from @addr into @out.  Return: 0 or -errno. */
int pagemap_read(const void *addr, size_t npages, uint64_t *out);

/*
 * maps_is_frames - is the mapping that holds @addr a mapping of ufvm's
 * frames (the memfd "ufvm-frames")?
 * Return: 1 yes, 0 no (another mapping, or none), or -errno.
 */
int maps_is_frames(const void *addr);

/*
 * frames_first_mapped - find the first of the @npages pages at @addr that
 * the kernel maps to ufvm's frames.  @uffd: the region was made by the
 * userfaultfd backend (maps_is_frames() of a fresh region says 1).
 * Return: 0 with *@idx the page's index (or -1: none is mapped) and
 * *@entry its pagemap entry; or -errno.
 */
int frames_first_mapped(const void *addr, size_t npages, bool uffd, long *idx,
			uint64_t *entry);

/*
 * maps_fill_table - fill the process's mapping table to vm.max_map_count:
 * reserve 2 * @max pages and make every other one readable, each a mapping
 * of its own, until mprotect() fails for want of one.  Then any change
 * that splits a mapping fails with ENOMEM until munmap(ret, *@len).
 * Return: the reservation; NULL if the table never filled (after @max).
 */
void *maps_fill_table(unsigned long max, size_t *len);

#endif /* TESTS_PAGEMAP_H */
