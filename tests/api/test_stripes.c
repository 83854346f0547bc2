/* SPDX-License-Identifier: MIT */
/*
 * test_stripes.c - a file's frames striped over several memfds (vm/object.h,
 * "Frame striping"; UFVM_FRAME_STRIPES, UFVM_CHUNK_PAGES).
 *
 * Invariant: striping changes where frames live, never what a mapping, a
 * read or the store sees.  Each page's frame is in exactly one memfd, at
 * the page's own offset, the same memfd for a whole chunk; reads, writes
 * through a mapping that starts inside a chunk, fault-around windows that
 * cross chunks, punches and truncates across chunks, and reclaim under a
 * budget all behave as with one memfd, and free the frames they should.
 * A file grown past the chunks mapped at open reaches its new pages the same
 * way, and a file no larger than one chunk stays in one memfd, even grown.
 *
 * Chunks of 4 pages and 4 stripes, so that every 16-page fault-around
 * window crosses chunks.  The sigsegv backend does not stripe: there the
 * frames are in one memfd and the layout checks are skipped.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include "check.h"
#include "pagemap.h"

#define NPAGES		64
#define CHUNK		4
#define STRIPES		4
#define SEED		0x5eed5731
#define SLACK		4	/* over the budget: a page per filling thread (docs/architecture.md) */

static void stripes_config(struct ufvm_config *cfg)
{
	assert_ok(ufvm_config_init(cfg));
	cfg->frame_stripes = STRIPES;
	cfg->chunk_pages = CHUNK;
}

static bool striped(struct ufvm *vm)
{
	return !strncmp(ufvm_backend_name(vm), "uffd", 4);	/* uffd, uffd-inthread */
}

#define MAX_FDS		16

struct frames {
	int fds[MAX_FDS];
	int n;
};

static void frames_open(struct frames *fr)
{
	fr->n = frames_fds_open(fr->fds, MAX_FDS);
	cr_assert(fr->n >= 1 && fr->n <= MAX_FDS, "%d memfds of frames open", fr->n);
	for (int i = 0; i < fr->n; i++)
		cr_assert(fr->fds[i] >= 0, "cannot open a frames memfd: %s", strerror(errno));
}

static void frames_close(struct frames *fr)
{
	for (int i = 0; i < fr->n; i++)
		close(fr->fds[i]);
}

/* Does memfd @fd hold a frame (data, not a hole) at page @pg? */
static bool has_frame(int fd, uint64_t pg)
{
	off_t o = lseek(fd, (off_t)(pg * PAGE), SEEK_DATA);

	return o == (off_t)(pg * PAGE);
}

/* The memfd (index into @fr) that holds page @pg's frame, -1 if none; asserts one at most. */
static int frame_owner(const struct frames *fr, uint64_t pg)
{
	int owner = -1;

	for (int i = 0; i < fr->n; i++) {
		if (!has_frame(fr->fds[i], pg))
			continue;
		cr_assert_eq(owner, -1, "page %llu has frames in memfds %d and %d",
			     (unsigned long long)pg, owner, i);
		owner = i;
	}
	return owner;
}

/* Frames held by all the memfds together, pages [0, npages). */
static unsigned int frames_count(const struct frames *fr, uint64_t npages)
{
	unsigned int n = 0;

	for (uint64_t pg = 0; pg < npages; pg++)
		n += frame_owner(fr, pg) >= 0;
	return n;
}

Test(stripes, every_frame_in_the_memfd_of_its_chunk, .timeout = 30)
{
	struct ufvm_config cfg;
	struct frames fr;
	struct ut_file u;
	int owner[NPAGES], used[MAX_FDS] = { 0 }, nused = 0;
	uint8_t *m, page[PAGE];

	stripes_config(&cfg);
	ut_file_open(&u, &cfg, "s", NPAGES, SEED, UFVM_RDWR);
	m = ut_map(u.vm, u.path, 0, NPAGES * PAGE, UFVM_PROT_READ);
	for (int pg = 0; pg < NPAGES; pg++)
		assert_pattern(SEED, m + pg * PAGE, (uint64_t)pg * PAGE, PAGE, "page %d", pg);
	frames_open(&fr);
	if (!striped(u.vm)) {
		cr_assert_eq(fr.n, 1, "backend %s: %d memfds, want one", ufvm_backend_name(u.vm),
			     fr.n);
		goto out;
	}
	cr_assert_eq(fr.n, STRIPES, "%d memfds of frames, want %d", fr.n, STRIPES);
	for (int pg = 0; pg < NPAGES; pg++) {
		owner[pg] = frame_owner(&fr, (uint64_t)pg);
		cr_assert_geq(owner[pg], 0, "page %d, read, has no frame", pg);
		cr_assert_eq(pread(fr.fds[owner[pg]], page, PAGE, (off_t)pg * PAGE), PAGE);
		assert_pattern(SEED, page, (uint64_t)pg * PAGE, PAGE, "page %d's frame", pg);
		if (pg % CHUNK)
			cr_assert_eq(owner[pg], owner[pg - 1],
				     "pages %d and %d of one chunk in memfds %d and %d", pg - 1,
				     pg, owner[pg - 1], owner[pg]);
		if (!used[owner[pg]]++)
			nused++;
	}
	cr_assert_geq(nused, 2, "all %d chunks in one memfd: not striped", NPAGES / CHUNK);
out:
	frames_close(&fr);
	ut_unmap(u.vm, m, NPAGES * PAGE);
	ut_file_close(&u);
}

/* Writes through a mapping that begins inside a chunk reach the store. */
Test(stripes, writes_from_inside_a_chunk_reach_the_store, .timeout = 30)
{
	const int first = 3, n = 41;
	struct ufvm_config cfg;
	struct ut_file u;
	uint8_t *m, b;
	int fd;

	stripes_config(&cfg);
	ut_file_open(&u, &cfg, "w", NPAGES, SEED, UFVM_RDWR);
	m = ut_map(u.vm, u.path, first * PAGE, n * PAGE, UFVM_PROT_READ | UFVM_PROT_WRITE);
	for (int i = 0; i < n; i++)
		m[i * PAGE + 5] = (uint8_t)(i * 7 + 1);
	assert_ok(ufvm_sync(u.vm, m, n * PAGE));
	fd = open(u.path, O_RDONLY | O_CLOEXEC);
	cr_assert(fd >= 0);
	for (int pg = 0; pg < NPAGES; pg++) {
		bool written = pg >= first && pg < first + n;

		cr_assert_eq(pread(fd, &b, 1, (off_t)pg * PAGE + 5), 1);
		cr_assert_eq(b, written ? (uint8_t)((pg - first) * 7 + 1)
					: pattern_byte(SEED, (uint64_t)pg * PAGE + 5),
			     "page %d of the store: %#x", pg, b);
		if (written)
			cr_assert_eq(m[(pg - first) * PAGE + 6],
				     pattern_byte(SEED, (uint64_t)pg * PAGE + 6));
	}
	close(fd);
	ut_unmap(u.vm, m, n * PAGE);
	ut_file_close(&u);
}

/*
 * Open file @name of NPAGES pages striped, readahead off (a window queued
 * before a punch may fill after it), map it writable and read every page.
 */
static uint8_t *open_read_all(struct ut_file *u, const char *name)
{
	struct ufvm_config cfg;
	uint8_t *m;

	stripes_config(&cfg);
	cfg.readahead = 0;
	ut_file_open(u, &cfg, name, NPAGES, SEED, UFVM_RDWR);
	m = ut_map(u->vm, u->path, 0, NPAGES * PAGE, UFVM_PROT_READ | UFVM_PROT_WRITE);
	for (int pg = 0; pg < NPAGES; pg++)
		cr_assert_eq(m[pg * PAGE], pattern_byte(SEED, (uint64_t)pg * PAGE));
	return m;
}

/* After a punch of pages [@lo, @hi]: no frame there, every other one kept. */
static void assert_frames_cut(const struct frames *fr, int lo, int hi)
{
	for (int pg = 0; pg < NPAGES; pg++) {
		bool cut = pg >= lo && pg <= hi;

		cr_assert_eq(frame_owner(fr, (uint64_t)pg) < 0, cut,
			     "page %d: %s frame after the punch", pg, cut ? "a" : "no");
	}
}

/* A punch and a truncate across chunks: zeros where they cut, frames freed. */
Test(stripes, punch_and_truncate_across_chunks, .timeout = 30)
{
	struct frames fr;
	struct ut_file u;
	uint8_t *m = open_read_all(&u, "p");

	assert_ok(ufvm_punch(u.f, 6 * PAGE, 9 * PAGE));		/* pages 6..14 */
	frames_open(&fr);
	assert_frames_cut(&fr, 6, 14);	/* before reads fill the hole again */
	for (int pg = 0; pg < NPAGES; pg++) {
		bool cut = pg >= 6 && pg < 15;

		for (int o = 0; o < (int)PAGE; o += 1021)
			cr_assert_eq(m[pg * PAGE + o],
				     cut ? 0 : pattern_byte(SEED, (uint64_t)pg * PAGE + o),
				     "page %d byte %d after the punch", pg, o);
	}
	assert_ok(ufvm_truncate(u.f, 30 * PAGE + 100));
	for (int pg = 31; pg < NPAGES; pg++)
		cr_assert_lt(frame_owner(&fr, (uint64_t)pg), 0, "page %d past the end has a frame",
			     pg);
	assert_ok(ufvm_truncate(u.f, NPAGES * PAGE));
	assert_pattern(SEED, m + 29 * PAGE, 29 * PAGE, PAGE, "page 29");
	assert_pattern(SEED, m + 30 * PAGE, 30 * PAGE, 100, "page 30, kept");
	for (int o = 100; o < (int)PAGE; o++)
		cr_assert_eq(m[30 * PAGE + o], 0, "page 30 byte %d, cut", o);
	for (int pg = 31; pg < NPAGES; pg++)
		cr_assert_eq(m[pg * PAGE + 17], 0, "page %d, cut then grown", pg);
	frames_close(&fr);
	ut_unmap(u.vm, m, NPAGES * PAGE);
	ut_file_close(&u);
}

/* Under a budget, evictions free the frames in whichever memfd holds them. */
Test(stripes, evictions_free_frames, .timeout = 30)
{
	const uint64_t budget = 16;
	struct ufvm_config cfg;
	struct ufvm_stats st;
	struct frames fr;
	struct ut_file u;
	uint8_t *m;

	ut_config_budget(&cfg, budget);
	cfg.frame_stripes = STRIPES;
	cfg.chunk_pages = CHUNK;
	cfg.readahead = 0;	/* after the reads, frames only go: a count holds */
	ut_file_open(&u, &cfg, "b", NPAGES, SEED, UFVM_RDWR);
	m = ut_map(u.vm, u.path, 0, NPAGES * PAGE, UFVM_PROT_READ | UFVM_PROT_WRITE);
	for (int round = 0; round < 2; round++)
		for (int pg = 0; pg < NPAGES; pg++) {
			cr_assert_eq(m[pg * PAGE + 9], pattern_byte(SEED, (uint64_t)pg * PAGE + 9));
			if (pg % 3 == 0)
				m[pg * PAGE + 1] = (uint8_t)(pg + round);
		}
	/*
	 * Background reclaim may still be evicting: bounded by the budget
	 * and its slack, not by a snapshot of the cached pages.  Without
	 * the evictions' punches all 64 would be there.
	 */
	assert_ok(ufvm_stats(u.vm, &st));
	frames_open(&fr);
	cr_assert_leq(frames_count(&fr, NPAGES), budget + SLACK,
		      "%u frames in the memfds under a budget of %llu pages (%llu cached)",
		      frames_count(&fr, NPAGES), (unsigned long long)budget,
		      (unsigned long long)st.cached_pages);
	cr_assert_gt(ut_counter(u.vm, UFVM_CTR_EVICTIONS), 0);
	frames_close(&fr);
	assert_ok(ufvm_sync(u.vm, m, NPAGES * PAGE));
	for (int pg = 0; pg < NPAGES; pg += 3)
		cr_assert_eq(m[pg * PAGE + 1], (uint8_t)(pg + 1), "page %d's write", pg);
	ut_unmap(u.vm, m, NPAGES * PAGE);
	ut_file_close(&u);
}

/* A file of one chunk stays in one memfd, even grown past it. */
Test(stripes, a_small_file_stays_in_one_memfd, .timeout = 30)
{
	struct ufvm_config cfg;
	struct frames fr;
	struct ut_file u;
	uint8_t b = 0x5a, got = 0;

	stripes_config(&cfg);
	ut_file_open(&u, &cfg, "one", CHUNK, SEED, UFVM_RDWR);
	assert_ok(ufvm_truncate(u.f, NPAGES * PAGE));
	ut_pwrite(u.f, &b, 1, 40 * PAGE + 3);
	ut_pread(u.f, &got, 1, 40 * PAGE + 3);
	cr_assert_eq(got, b);
	frames_open(&fr);
	cr_assert_eq(fr.n, 1, "%d memfds for a file of one chunk", fr.n);
	cr_assert(has_frame(fr.fds[0], 40), "page 40's frame is not in the one memfd");
	frames_close(&fr);
	ut_file_close(&u);
}

/*
 * A striped file grown past the chunks its view mapped at open: the new
 * pages are written, read and mapped through the memfds of their chunks.
 */
Test(stripes, growth_past_the_mapped_chunks, .timeout = 30)
{
	const int small = 2 * CHUNK;	/* striped: more than one chunk */
	struct ufvm_config cfg;
	struct frames fr;
	struct ut_file u;
	uint8_t b = 0xa5, got = 0, *m;
	int fd;

	stripes_config(&cfg);
	cfg.readahead = 0;
	ut_file_open(&u, &cfg, "grow", (uint64_t)small, SEED, UFVM_RDWR);
	assert_ok(ufvm_truncate(u.f, NPAGES * PAGE));
	ut_pwrite(u.f, &b, 1, 40 * PAGE + 3);	/* through the view, in a new chunk */
	ut_pread(u.f, &got, 1, 40 * PAGE + 3);
	cr_assert_eq(got, b);
	m = ut_map(u.vm, u.path, 0, NPAGES * PAGE, UFVM_PROT_READ | UFVM_PROT_WRITE);
	assert_pattern(SEED, m + (small - 1) * PAGE, (uint64_t)(small - 1) * PAGE, PAGE,
		       "page %d, from before the growth", small - 1);
	cr_assert_eq(m[40 * PAGE + 3], b);
	cr_assert_eq(m[40 * PAGE + 4], 0);
	for (int pg = small; pg < NPAGES; pg++)
		m[pg * PAGE + 9] = (uint8_t)(pg * 3);
	assert_ok(ufvm_sync(u.vm, m, NPAGES * PAGE));
	frames_open(&fr);
	if (striped(u.vm)) {
		cr_assert_eq(fr.n, STRIPES, "%d memfds of frames, want %d", fr.n, STRIPES);
		for (int pg = small; pg < NPAGES; pg++)
			cr_assert_geq(frame_owner(&fr, (uint64_t)pg), 0, "page %d has no frame", pg);
	}
	frames_close(&fr);
	fd = open(u.path, O_RDONLY | O_CLOEXEC);
	cr_assert(fd >= 0);
	for (int pg = small; pg < NPAGES; pg++) {
		cr_assert_eq(pread(fd, &got, 1, (off_t)pg * PAGE + 9), 1);
		cr_assert_eq(got, (uint8_t)(pg * 3), "page %d of the store", pg);
	}
	cr_assert_eq(pread(fd, &got, 1, 40 * PAGE + 3), 1);
	cr_assert_eq(got, b);
	close(fd);
	ut_unmap(u.vm, m, NPAGES * PAGE);
	ut_file_close(&u);
}

/*
 * Mappings of frames' memfds ("memfd:ufvm-frames" in /proc/self/maps): a
 * view's chunks, here, where nothing else maps the file.  Not every line:
 * a malloc arena the background thread makes meanwhile adds two.
 */
static unsigned int maps_count(void)
{
	FILE *f = fopen("/proc/self/maps", "re");
	unsigned int n = 0;
	char line[512];

	cr_assert(f, "/proc/self/maps: %s", strerror(errno));
	while (fgets(line, sizeof(line), f))
		n += strstr(line, "memfd:ufvm-frames") != NULL;
	fclose(f);
	return n;
}

static unsigned int max_map_count(void)
{
	FILE *f = fopen("/proc/sys/vm/max_map_count", "re");
	unsigned int n = 0;

	cr_assert(f, "/proc/sys/vm/max_map_count: %s", strerror(errno));
	cr_assert_eq(fscanf(f, "%u", &n), 1);
	fclose(f);
	return n;
}

/*
 * The view maps a chunk at a time as a striped file grows.  It unmaps them
 * as the file shrinks, and when a growth fails halfway (-ENOMEM at
 * vm.max_map_count): else the process stays at its limit of mappings, and
 * every later mmap() (a thread's stack, malloc, ufvm_map) fails.
 */
Test(stripes, view_chunks_go_with_the_size, .timeout = 60)
{
	const uint64_t small = 2 * CHUNK, big = 4096 * CHUNK;
	struct ufvm_config cfg;
	struct ut_file u;
	unsigned int before, n;
	uint8_t b = 0x5a, got = 0;
	off_t size;
	void *p;
	int err;

	stripes_config(&cfg);
	cfg.readahead = 0;
	ut_file_open(&u, &cfg, "chunks", small, SEED, UFVM_RDWR);
	if (!striped(u.vm)) {
		ut_file_close(&u);	/* one memfd, one mapping of it */
		return;
	}
	before = maps_count();
	assert_ok(ufvm_truncate(u.f, (off_t)(big * PAGE)));
	n = maps_count();
	cr_assert_geq(n, before + big / CHUNK - 4, "%u mappings of frames after growing to %llu "
		      "chunks, %u before", n, (unsigned long long)(big / CHUNK), before);
	ut_pwrite(u.f, &b, 1, (off_t)((big - 1) * PAGE));
	assert_ok(ufvm_truncate(u.f, (off_t)(small * PAGE)));
	n = maps_count();
	cr_assert_leq(n, before, "%u mappings of frames after shrinking back, %u before", n, before);

	err = ufvm_truncate(u.f, (off_t)((uint64_t)(max_map_count() + 1024) * CHUNK * PAGE));
	cr_assert_eq(err, -ENOMEM, "a growth to more chunks than vm.max_map_count: %d", err);
	n = maps_count();
	cr_assert_leq(n, before, "%u mappings of frames after a failed growth, %u before", n,
		      before);
	p = mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cr_assert(p != MAP_FAILED, "an mmap() after the failed growth: %s", strerror(errno));
	munmap(p, PAGE);
	assert_ok(ufvm_file_size(u.f, &size));
	cr_assert_eq(size, (off_t)(small * PAGE));

	/* What is left works, and grows again. */
	for (uint64_t pg = 0; pg < small; pg++) {
		uint8_t buf[PAGE];

		ut_pread(u.f, buf, PAGE, (off_t)(pg * PAGE));
		assert_pattern(SEED, buf, pg * PAGE, PAGE, "page %llu", (unsigned long long)pg);
	}
	assert_ok(ufvm_truncate(u.f, NPAGES * PAGE));
	ut_pwrite(u.f, &b, 1, 40 * PAGE + 3);
	ut_pread(u.f, &got, 1, 40 * PAGE + 3);
	cr_assert_eq(got, b);
	ut_pread(u.f, &got, 1, 40 * PAGE + 4);
	cr_assert_eq(got, 0);
	ut_file_close(&u);
}

/* A punch of more chunks than there are memfds (one punch of each memfd). */
Test(stripes, a_long_punch_frees_every_memfd, .timeout = 30)
{
	struct frames fr;
	struct ut_file u;
	uint8_t *m = open_read_all(&u, "long");

	m[30 * PAGE + 1] = 'd';		/* a dirty page in the range too */
	assert_ok(ufvm_punch(u.f, 2 * PAGE, 59 * PAGE));	/* pages 2..60: > 4 chunks */
	frames_open(&fr);
	assert_frames_cut(&fr, 2, 60);
	for (int pg = 0; pg < NPAGES; pg++) {
		bool cut = pg >= 2 && pg <= 60;

		cr_assert_eq(m[pg * PAGE + 1], cut ? 0 : pattern_byte(SEED, (uint64_t)pg * PAGE + 1),
			     "page %d after the punch", pg);
	}
	frames_close(&fr);
	ut_unmap(u.vm, m, NPAGES * PAGE);
	ut_file_close(&u);
}
