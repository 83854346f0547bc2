/* SPDX-License-Identifier: MIT */
/*
 * pattern.c - deterministic file contents: see pattern.h.
 */
#include <string.h>

#include "pattern.h"

uint64_t pattern_word(uint64_t seed, uint64_t word_index)
{
	struct rng r = { .s = seed * 0xd1b54a32d192ed03ull ^ word_index };

	return rng_next(&r);
}

uint8_t pattern_byte(uint64_t seed, uint64_t off)
{
	return (uint8_t)(pattern_word(seed, off >> 3) >> ((off & 7) * 8));
}

void pattern_fill(uint64_t seed, void *buf, uint64_t off, size_t len)
{
	uint8_t *p = buf;
	size_t i = 0;

	while (i < len && ((off + i) & 7))
		p[i] = pattern_byte(seed, off + i), i++;
	for (; i + 8 <= len; i += 8) {
		uint64_t w = pattern_word(seed, (off + i) >> 3);

		memcpy(p + i, &w, 8);	/* little endian, as pattern_byte */
	}
	for (; i < len; i++)
		p[i] = pattern_byte(seed, off + i);
}

ssize_t pattern_mismatch(uint64_t seed, const void *buf, uint64_t off, size_t len)
{
	const uint8_t *p = buf;
	uint8_t tmp[4096];
	size_t done = 0;

	while (done < len) {
		size_t n = len - done < sizeof(tmp) ? len - done : sizeof(tmp);

		pattern_fill(seed, tmp, off + done, n);
		if (memcmp(tmp, p + done, n)) {
			for (size_t i = 0; i < n; i++)
				if (tmp[i] != p[done + i])
					return (ssize_t)(done + i);
		}
		done += n;
	}
	return -1;
}

ssize_t zero_mismatch(const void *buf, size_t len)
{
	const uint8_t *p = buf;

	for (size_t i = 0; i < len; i++)
		if (p[i])
			return (ssize_t)i;
	return -1;
}

ssize_t buf_mismatch(const void *a, const void *b, size_t len)
{
	const uint8_t *x = a, *y = b;

	if (!memcmp(a, b, len))
		return -1;
	for (size_t i = 0; i < len; i++)
		if (x[i] != y[i])
			return (ssize_t)i;
	return -1;
}
