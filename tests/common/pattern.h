/* SPDX-License-Identifier: MIT */
/*
 * pattern.h - deterministic file contents and a small PRNG for the tests.
 *
 * The byte at file offset @off of a store made with seed @seed is
 * pattern_byte(seed, off): byte (off & 7) of a 64-bit mix of (seed, off / 8).
 * Every 8-byte word differs from its neighbours and from the same word of a
 * file with another seed, so a page served from the wrong offset, the wrong
 * file or a stale generation is always caught.
 */
#ifndef TESTS_PATTERN_H
#define TESTS_PATTERN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

uint64_t pattern_word(uint64_t seed, uint64_t word_index);
uint8_t pattern_byte(uint64_t seed, uint64_t off);
/* Fill @buf with the bytes of file offsets [off, off+len). */
void pattern_fill(uint64_t seed, void *buf, uint64_t off, size_t len);
/* Index of the first byte of @buf that is not the pattern at @off, or -1. */
ssize_t pattern_mismatch(uint64_t seed, const void *buf, uint64_t off, size_t len);
/* Index of the first non-zero byte, or -1. */
ssize_t zero_mismatch(const void *buf, size_t len);
/* Index of the first byte where @a and @b differ, or -1. */
ssize_t buf_mismatch(const void *a, const void *b, size_t len);

/* splitmix64: a fast, seedable PRNG; one per thread, no shared state. */
struct rng {
	uint64_t s;
};

static inline uint64_t rng_next(struct rng *r)
{
	uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Uniform in [0, n), n > 0. */
static inline uint64_t rng_below(struct rng *r, uint64_t n)
{
	return rng_next(r) % n;
}

#endif /* TESTS_PATTERN_H */
