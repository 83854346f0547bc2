/* SPDX-License-Identifier: MIT */
/*
 * test_store.c - the file store (vm/store.c) with direct I/O: any offset,
 * length and buffer, not just the aligned whole pages the page cache asks
 * for, reads and writes exactly the bytes a buffered store would.
 *
 * Checks: a store opened with VM_STORE_DIRECT runs thousands of random
 * reads, writes, punches and truncates (offsets and lengths in bytes, odd
 * and aligned; buffers at odd addresses and aligned ones; ranges across and
 * past the end of the file) against an in-memory model of the file: every
 * read returns the model's bytes with zeros past the end, every write and
 * truncate leaves the size the model has (a write past the end grows the
 * file to exactly its end, never to the end of an O_DIRECT block), and
 * after a sync the file read with plain pread(2) is the model; the same
 * sequence on a buffered store passes too (the model is right).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "check.h"

#include "vm/store.h"

#define SEED	0x5eed0d20
#define SIZE0	(200 * 1024 + 77)	/* not a multiple of a block or a page */
#define CAP	(512 * 1024)		/* the model's room; the file stays below */
#define MAXIO	(3 * PAGE + 700)
#define OPS	3000

struct model {
	uint8_t *b;	/* CAP bytes: the file, zeros past its size */
	size_t size;
};

/* A length for one I/O: aligned to 512 or a page, or any. */
static size_t pick_len(struct rng *r)
{
	switch (rng_below(r, 4)) {
	case 0:
		return (1 + rng_below(r, MAXIO / 512)) * 512;
	case 1:
		return (1 + rng_below(r, MAXIO / PAGE)) * PAGE;
	default:
		return 1 + rng_below(r, MAXIO);
	}
}

/* An offset for one I/O of @len: aligned or any, now and then past the end. */
static uint64_t pick_off(struct rng *r, const struct model *m, size_t len)
{
	uint64_t room = MIN((uint64_t)m->size + PAGE, CAP - len), off = rng_below(r, room + 1);

	switch (rng_below(r, 3)) {
	case 0:
		return off - off % 512;
	case 1:
		return off - off % PAGE;
	default:
		return off;
	}
}

static void store_open(const char *path, unsigned int flags, struct vm_store **s)
{
	dev_t dev;
	ino_t ino;
	int r = vm_store_file_open(path, VM_STORE_WRITABLE | flags, s, &dev, &ino);

	cr_assert(r == 0, "vm_store_file_open(%s, %#x) = %d (%s)", path, flags, r, strerror(-r));
}

static void assert_size(struct vm_store *s, const struct model *m, int op, const char *what)
{
	uint64_t size = 0;

	assert_ok(vm_store_size(s, &size));
	cr_assert_eq(size, m->size, "op %d (%s): store size %llu, want %zu", op, what,
		     (unsigned long long)size, m->size);
}

/* Run the random sequence of @seed on the store at @path, opened with @flags. */
static void workout(const char *path, unsigned int flags, uint64_t seed)
{
	uint8_t *arena, *got = malloc(CAP);
	struct model m = { .b = calloc(1, CAP), .size = SIZE0 };
	struct rng r = { .s = seed };
	struct vm_store *s;
	int memfd = memfd_create("test_store", MFD_CLOEXEC), pipefd[2];

	cr_assert(m.b && got && posix_memalign((void **)&arena, PAGE, MAXIO + PAGE) == 0);
	/* A one-page pipe: reads to a file of several pages take several rounds. */
	cr_assert(memfd >= 0 && pipe2(pipefd, O_CLOEXEC) == 0);
	cr_assert(fcntl(pipefd[1], F_SETPIPE_SZ, (int)PAGE) >= (int)PAGE);
	pattern_fill(SEED, m.b, 0, SIZE0);
	store_open(path, flags, &s);
	for (int op = 0; op < OPS; op++) {
		size_t len = pick_len(&r);
		uint64_t off = pick_off(&r, &m, len);
		/* an aligned buffer, or one a few bytes off */
		uint8_t *buf = arena + (rng_below(&r, 2) ? 0 : 1 + rng_below(&r, 511));

		switch (rng_below(&r, 11)) {
		case 0 ... 4:
			memset(buf, 0xa5, len);
			assert_ok(vm_store_read(s, buf, off, len));
			assert_same(buf, m.b + off, off, len, "op %d: read of %zu bytes", op, len);
			break;
		case 5 ... 7:
			pattern_fill(seed + (uint64_t)op, buf, off, len);
			assert_ok(vm_store_write(s, buf, off, len));
			memcpy(m.b + off, buf, len);
			m.size = MAX(m.size, off + len);
			assert_size(s, &m, op, "write");
			break;
		case 8:
			assert_ok(vm_store_punch(s, off, len, NULL));
			if (off < m.size)
				memset(m.b + off, 0, MIN(len, m.size - off));
			assert_size(s, &m, op, "punch");
			break;
		case 9: {
			size_t nsize = SIZE0 / 2 + rng_below(&r, SIZE0);

			assert_ok(vm_store_truncate(s, nsize));
			if (nsize < m.size)
				memset(m.b + nsize, 0, m.size - nsize);
			m.size = nsize;
			assert_size(s, &m, op, "truncate");
			break;
		}
		case 10: {
			/* Into a file at the same offset: as many bytes as the store has there. */
			size_t want = off < m.size ? MIN(len, m.size - off) : 0;
			ssize_t k = vm_store_read_to_fd(s, memfd, off, len, pipefd);

			if (flags & VM_STORE_DIRECT) {
				cr_assert_eq(k, -EOPNOTSUPP, "op %d: read_to_fd with O_DIRECT = %zd",
					     op, k);
				break;
			}
			cr_assert_eq(k, (ssize_t)want, "op %d: read_to_fd of %zu bytes at %llu = %zd, "
				     "want %zu", op, len, (unsigned long long)off, k, want);
			cr_assert(pread(memfd, buf, want, (off_t)off) == (ssize_t)want);
			assert_same(buf, m.b + off, off, want, "op %d: read_to_fd of %zu bytes", op,
				    len);
			break;
		}
		}
	}
	close(pipefd[0]);
	close(pipefd[1]);
	close(memfd);
	assert_ok(vm_store_sync(s));
	vm_store_destroy(s);
	cr_assert_eq(tmpstore_size(path), (off_t)m.size, "file size after the sequence");
	cr_assert(tmpstore_read(path, got, m.size, 0) == 0);
	assert_same(got, m.b, 0, m.size, "the file after the sequence");
	free(arena);
	free(got);
	free(m.b);
}

Test(store, direct_any_offset_length_buffer, .timeout = 60)
{
	char path[TMPSTORE_PATH_MAX];
	int r = tmpstore_direct_io();

	cr_assert(r >= 0, "probing O_DIRECT in %s: %s", tmpstore_dir(), strerror(-r));
	if (!r)
		cr_skip_test("the file system of %s refuses O_DIRECT", tmpstore_dir());
	ut_store("direct", SIZE0, SEED, path);
	workout(path, VM_STORE_DIRECT, 1);
	ut_store("direct", SIZE0, SEED, path);
	workout(path, VM_STORE_DIRECT, 2);
}

/* The model itself, on the buffered store. */
Test(store, buffered_any_offset_length_buffer, .timeout = 60)
{
	char path[TMPSTORE_PATH_MAX];

	ut_store("buffered", SIZE0, SEED, path);
	workout(path, 0, 1);
}
