/* SPDX-License-Identifier: MIT */
/*
 * test_concurrent_read.c - many threads reading one cold file at once,
 * through several regions and ufvm_pread(), all see the file's bytes.
 *
 * The threads start together (barrier) and walk the pages in the same
 * shuffled order, so they collide on the same cold page: several faults on
 * one page from different regions (duplicate fault messages, a fault
 * waiting for another's store read), and ufvm_pread() filling a page that a
 * fault is also filling.  Each thread checks every byte it reads against
 * the pattern.  Run with the default configuration, with fault-around off,
 * and with a store latency that keeps pages locked for a while.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>

#include "check.h"

#define FILE_SIZE	(4 * MiB)
#define NPAGES		(FILE_SIZE / PAGE)
#define SEED		0x5eed0070
#define NTHREADS	6

static const struct {
	size_t pg, npg;
} regs[] = {
	{ 0, NPAGES },
	{ 3, NPAGES - 3 },		/* 12 KiB: not 64 KiB aligned */
	{ 17, 600 },
	{ 700, NPAGES - 700 },
};
#define NREGS	(int)(sizeof(regs) / sizeof(regs[0]))

struct cread {
	uint8_t *map[NREGS];
	struct ufvm_file *f;
	size_t order[NPAGES];
	pthread_barrier_t start;
	atomic_long errors;
	char msg[256];
};

struct reader {
	struct cread *c;
	int id;
	pthread_t th;
};

static void *reader(void *arg)
{
	struct reader *rd = arg;
	struct cread *c = rd->c;
	struct rng r = { .s = 31 + rd->id };
	uint8_t buf[PAGE];

	pthread_barrier_wait(&c->start);
	for (size_t k = 0; k < NPAGES; k++) {
		size_t pg = c->order[k], off = pg * PAGE;
		const uint8_t *src = NULL;
		int how = (int)((rd->id + k) % (NREGS + 1));
		ssize_t m;

		if (how == NREGS) {
			if (ufvm_pread(c->f, buf, PAGE, off) != PAGE) {
				if (atomic_fetch_add(&c->errors, 1) == 0)
					snprintf(c->msg, sizeof(c->msg), "thread %d: ufvm_pread %#zx failed",
						 rd->id, off);
				break;
			}
			src = buf;
		} else {
			/* Some region that covers the page (the full one does). */
			for (int t = 0; t < NREGS && !src; t++) {
				int i = (how + t) % NREGS;

				if (pg >= regs[i].pg && pg < regs[i].pg + regs[i].npg)
					src = c->map[i] + (pg - regs[i].pg) * PAGE;
			}
		}
		/* Start at a random byte so the first touch is anywhere in the page. */
		size_t first = rng_below(&r, PAGE);

		if (src[first] != pattern_byte(SEED, off + first))
			m = (ssize_t)first;
		else
			m = pattern_mismatch(SEED, src, off, PAGE);
		if (m >= 0) {
			if (atomic_fetch_add(&c->errors, 1) == 0)
				snprintf(c->msg, sizeof(c->msg),
					 "thread %d (%s): file offset %#zx: %#x, want %#x", rd->id,
					 how == NREGS ? "ufvm_pread" : "mapping", off + m, src[m],
					 pattern_byte(SEED, off + m));
			break;
		}
	}
	return NULL;
}

static void run(const struct ufvm_config *cfg)
{
	static struct cread c;
	struct reader rd[NTHREADS];
	char path[TMPSTORE_PATH_MAX];
	struct rng r = { .s = 5 };
	struct ufvm *vm;

	memset(&c, 0, sizeof(c));
	ut_store("r", FILE_SIZE, SEED, path);
	vm = ut_open(cfg);
	assert_ok(ufvm_file_open(vm, path, UFVM_RDONLY, &c.f));
	for (int i = 0; i < NREGS; i++)
		c.map[i] = ut_map(vm, path, (off_t)(regs[i].pg * PAGE), regs[i].npg * PAGE,
				  UFVM_PROT_READ);
	for (size_t i = 0; i < NPAGES; i++)
		c.order[i] = i;
	for (size_t i = NPAGES - 1; i > 0; i--) {
		size_t j = rng_below(&r, i + 1), t = c.order[i];

		c.order[i] = c.order[j];
		c.order[j] = t;
	}
	pthread_barrier_init(&c.start, NULL, NTHREADS);
	for (int i = 0; i < NTHREADS; i++) {
		rd[i] = (struct reader){ .c = &c, .id = i };
		cr_assert(pthread_create(&rd[i].th, NULL, reader, &rd[i]) == 0);
	}
	for (int i = 0; i < NTHREADS; i++)
		pthread_join(rd[i].th, NULL);
	pthread_barrier_destroy(&c.start);
	cr_assert_eq(atomic_load(&c.errors), 0, "%ld errors; first: %s",
		     atomic_load(&c.errors), c.msg);
	for (int i = 0; i < NREGS; i++) {
		assert_pattern(SEED, c.map[i], regs[i].pg * PAGE, regs[i].npg * PAGE,
			       "region %d after the run", i);
		ut_unmap(vm, c.map[i], regs[i].npg * PAGE);
	}
	assert_ok(ufvm_file_close(c.f));
	ut_close(vm);
}

Test(concurrent_read, default_config, .timeout = 30)
{
	run(NULL);
}

Test(concurrent_read, fault_around_off, .timeout = 30)
{
	struct ufvm_config cfg;

	assert_ok(ufvm_config_init(&cfg));
	cfg.fault_around = 1;
	run(&cfg);
}

/* Store reads take 200 us: pages stay locked while other threads want them. */
Test(concurrent_read, slow_store, .timeout = 30)
{
	struct ufvm_config cfg;

	assert_ok(ufvm_config_init(&cfg));
	cfg.store_latency_us = 200;
	run(&cfg);
}
