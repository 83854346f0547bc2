/* SPDX-License-Identifier: MIT */
/*
 * pagemap.c - what the kernel maps at an address: see pagemap.h.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "pagemap.h"

#define PAGEMAP_PAGE	4096ul

int frames_fds_open(int *fds, int max)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int found = 0;

	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		char path[300], link[PATH_MAX];
		ssize_t n;

		snprintf(path, sizeof(path), "/proc/self/fd/%s", de->d_name);
		n = readlink(path, link, sizeof(link) - 1);
		if (n <= 0)
			continue;
		link[n] = 0;
		if (!strstr(link, "memfd:ufvm-frames"))
			continue;
		if (found < max)
			fds[found] = open(path, O_RDONLY | O_CLOEXEC);
		found++;
	}
	closedir(d);
	return found;
}

int pagemap_read(const void *addr, size_t npages, uint64_t *out)
{
	off_t off = (off_t)((uintptr_t)addr / PAGEMAP_PAGE * sizeof(uint64_t));
	size_t len = npages * sizeof(uint64_t), done = 0;
	int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC), err = 0;

	if (fd < 0)
		return -errno;
	while (done < len) {
		ssize_t n = pread(fd, (char *)out + done, len - done, off + (off_t)done);

		if (n <= 0) {
			err = n < 0 ? -errno : -EIO;
			break;
		}
		done += (size_t)n;
	}
	close(fd);
	return err;
}

int maps_is_frames(const void *addr)
{
	uintptr_t a = (uintptr_t)addr;
	FILE *f = fopen("/proc/self/maps", "re");
	char *line = NULL;
	size_t cap = 0;
	int ret = 0;

	if (!f)
		return -errno;
	while (getline(&line, &cap, f) > 0) {
		uintptr_t lo, hi;

		if (sscanf(line, "%" SCNxPTR "-%" SCNxPTR, &lo, &hi) != 2 || a < lo || a >= hi)
			continue;
		ret = strstr(line, "memfd:ufvm-frames") != NULL;
		break;
	}
	free(line);
	fclose(f);
	return ret;
}

int frames_first_mapped(const void *addr, size_t npages, bool uffd, long *idx,
			uint64_t *entry)
{
	uint64_t e;
	int err;

	*idx = -1;
	*entry = 0;
	for (size_t i = 0; i < npages; i++) {
		const char *p = (const char *)addr + i * PAGEMAP_PAGE;
		int mapped;

		err = pagemap_read(p, 1, &e);
		if (err)
			return err;
		if (uffd) {
			mapped = !!(e & PM_PRESENT);
		} else {
			mapped = maps_is_frames(p);
			if (mapped < 0)
				return mapped;
		}
		if (mapped) {
			*idx = (long)i;
			*entry = e;
			return 0;
		}
	}
	return 0;
}

void *maps_fill_table(unsigned long max, size_t *len)
{
	uint8_t *p;
	unsigned long i;

	*len = 2 * max * PAGEMAP_PAGE;
	p = mmap(NULL, *len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	for (i = 1; i < 2 * max; i += 2)
		if (mprotect(p + i * PAGEMAP_PAGE, PAGEMAP_PAGE, PROT_READ) && errno == ENOMEM)
			return p;
	munmap(p, *len);
	return NULL;
}
