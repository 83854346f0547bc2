// SPDX-License-Identifier: MIT
/*
 * bench/minor.c - raw userfaultfd, with nothing of ufvm: a memfd whose pages
 * all exist, mapped MAP_SHARED and registered MINOR, so that every first
 * touch after MADV_DONTNEED is a minor userfault.  The floor benchmark
 * builds its handlers on it; faultaround maps it with bare UFFDIO_CONTINUE
 * calls, the mechanism's own cost with no fault at all.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "bench/bench.h"

int bench_memfd(uint64_t pages, int *out)
{
	static uint64_t buf[BENCH_PAGE / sizeof(uint64_t)];
	uint64_t i;
	int fd = memfd_create("ufvm-bench", MFD_CLOEXEC), err = 0;

	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)(pages * BENCH_PAGE)))
		err = -errno;
	for (i = 0; !err && i < pages; i++) {
		buf[0] = bench_word(i * BENCH_PAGE);
		if (pwrite(fd, buf, sizeof(buf), (off_t)(i * BENCH_PAGE)) != sizeof(buf))
			err = -EIO;
	}
	if (err) {
		close(fd);
		return err;
	}
	*out = fd;
	return 0;
}

int bench_minor_open(struct bench_minor *a, int memfd, uint64_t pages, uint64_t features)
{
	struct uffdio_api api = { .api = UFFD_API, .features = features };
	struct uffdio_register reg = { .mode = UFFDIO_REGISTER_MODE_MINOR };

	a->memfd = memfd;
	a->pages = pages;
	a->uffd = -1;
	a->map = mmap(NULL, (pages + 1) * BENCH_PAGE, PROT_READ, MAP_SHARED, memfd, 0);
	if (a->map == MAP_FAILED)
		return -errno;
	if (!features)
		return 0;
	a->uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC);
	if (a->uffd < 0)
		goto fail;
	if (ioctl(a->uffd, UFFDIO_API, &api))
		goto fail;
	if ((api.features & features) != features) {
		errno = EOPNOTSUPP;
		goto fail;
	}
	reg.range.start = (uintptr_t)a->map;
	reg.range.len = (pages + 1) * BENCH_PAGE;
	if (ioctl(a->uffd, UFFDIO_REGISTER, &reg))
		goto fail;
	return 0;
fail:
	{
		int err = -errno;

		if (a->uffd >= 0)
			close(a->uffd);
		munmap(a->map, (pages + 1) * BENCH_PAGE);
		return err;
	}
}

void bench_minor_close(struct bench_minor *a)
{
	munmap(a->map, (a->pages + 1) * BENCH_PAGE);
	if (a->uffd >= 0)
		close(a->uffd);
}

/*
 * One pass: before the first touch of each aligned @window-page run, map
 * the run with one UFFDIO_CONTINUE from this thread (what fault-around
 * does, with the fault itself free), then touch the page.
 */
static int bench_minor_pass(struct bench_minor *a, const uint64_t *order, uint64_t window,
			    uint8_t *mapped, double *nspp)
{
	uint64_t i, t0;

	if (madvise(a->map, a->pages * BENCH_PAGE, MADV_DONTNEED))
		return -errno;
	memset(mapped, 0, (a->pages + window - 1) / window);
	t0 = bench_now_ns();
	for (i = 0; i < a->pages; i++) {
		uint64_t pg = order ? order[i] : i, run = pg / window;

		if (!mapped[run]) {
			uint64_t first = run * window;
			struct uffdio_continue c = {
				.range = { .start = (uintptr_t)a->map + first * BENCH_PAGE,
					   .len = (first + window > a->pages ? a->pages - first
									    : window) * BENCH_PAGE },
			};

			if (ioctl(a->uffd, UFFDIO_CONTINUE, &c))
				return -errno;
			mapped[run] = 1;
		}
		bench_touch(a->map + pg * BENCH_PAGE);
	}
	*nspp = (double)(bench_now_ns() - t0) / (double)a->pages;
	return 0;
}

int bench_minor_scan(struct bench_minor *a, const uint64_t *order, uint64_t window,
		     unsigned int reps, double *nspp)
{
	double *v = calloc(reps, sizeof(double));
	uint8_t *mapped = malloc((a->pages + window - 1) / window);
	unsigned int r;
	int err = 0;

	if (!v || !mapped) {
		err = -ENOMEM;
		goto out;
	}
	for (r = 0; r < reps && !err; r++)
		err = bench_minor_pass(a, order, window, mapped, &v[r]);
	if (!err)
		*nspp = bench_median(v, reps);
out:
	free(v);
	free(mapped);
	return err;
}
