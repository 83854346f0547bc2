/* SPDX-License-Identifier: MIT */
/*
 * test_addblock_overlap.c - with the add/block invalidate lock (seed 000),
 * fills that overlap one another do not starve a punch.
 *
 * Invariant: while one side holds the lock with the other waiting,
 * newcomers of the holding side wait too, so that the lock falls free
 * (vm/object.c, addblock_get()).  Without it the add side, shared, went
 * from one fill to the next and a punch or truncate waited for as long as
 * they overlapped.
 *
 * Scenario: UFVM_INVALIDATE=addblock, no readahead.  READERS (4) threads
 * read pages not cached yet with ufvm_pread(), each fill holding the add
 * side for 2 ms (a hook at UFVM_HOOK_ADD_HELD), so that the fills overlap
 * all the time; a puncher punches one page at the end of the file, sleeps
 * 1 ms and punches again, for 2 s.  With the lock fair the punches get in
 * at least a twentieth as often as the fills; teeth
 * (UFVM_DEBUG_ADDBLOCK_UNFAIR): less than a twentieth (the punch waits
 * until the fills happen to leave the lock free together).  The puncher's
 * sleep keeps the unfair lock from going the other way: a puncher that
 * looped without one, once in, took the block side back before the
 * readers woke and starved them instead (536-1352 punches in some runs).  Under other load a reader that waits for a CPU between
 * two fills lets that happen, so the teeth holds if one of TEETH_ATTEMPTS
 * runs starves the punches; with the lock fair every run keeps up.  The
 * readers fill in their own threads, so no delivery skips it.
 * (race/test_addblock_turns: the other way round.)
 */
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "check.h"
#include "race.h"

#define NPAGES		8192
#define HOLD_NS		(2 * 1000 * 1000)
#define RUN_US		(2 * 1000 * 1000)
#define SEED		0x5eed0b1a
#define TEETH_ATTEMPTS	3
#define PUNCH_GAP_US	1000

#define READERS		4

struct overlap {
	struct ufvm_file *f;
	uint64_t until;
	unsigned int id;
	long fills;		/* this reader's pages read */
	atomic_long *punches;
};

static void add_hold_hook(void *arg, unsigned int point, uint64_t a, uint64_t b)
{
	struct timespec ts = { 0, HOLD_NS };

	(void)arg, (void)a, (void)b;
	if (point == UFVM_HOOK_ADD_HELD)
		nanosleep(&ts, NULL);	/* the add side held */
}

/* Reader @id reads its own pages, each one a fill, until ->until. */
static void *overlap_reader(void *arg)
{
	struct overlap *o = arg;
	uint64_t per = (NPAGES - 1) / READERS, pg = o->id * per;
	uint8_t b;

	while (race_now_us() < o->until && pg < (o->id + 1) * per) {
		ut_pread(o->f, &b, 1, pg * PAGE);
		cr_assert_eq(b, pattern_byte(SEED, pg * PAGE), "page %ju", (uintmax_t)pg);
		o->fills++;
		pg++;
	}
	return NULL;
}

static void *overlap_puncher(void *arg)
{
	struct overlap *o = arg;

	while (race_now_us() < o->until) {
		assert_ok(ufvm_punch(o->f, (NPAGES - 1) * PAGE, PAGE));
		atomic_fetch_add(o->punches, 1);
		race_sleep_us(PUNCH_GAP_US);	/* the fills go on meanwhile */
	}
	return NULL;
}

/* Punches in RUN_US beside READERS overlapping fillers; *@fills their pages. */
static long punches_beside_fills(unsigned int debug, long *fills)
{
	struct overlap o[READERS + 1];
	pthread_t th[READERS + 1];
	atomic_long punches = 0;
	struct ufvm_config cfg;
	struct ut_file u;
	uint64_t until;

	assert_ok(ufvm_config_init(&cfg));
	cfg.invalidate = UFVM_INVALIDATE_ADDBLOCK;
	cfg.readahead = 0;
	cfg.debug_flags |= debug;
	ut_file_open(&u, &cfg, "overlap", NPAGES, SEED, UFVM_RDWR);
	assert_ok(ufvm_debug_hook(u.vm, add_hold_hook, NULL));
	until = race_now_us() + RUN_US;
	for (unsigned int i = 0; i <= READERS; i++) {
		o[i] = (struct overlap){ .f = u.f, .until = until, .id = i, .punches = &punches };
		cr_assert(pthread_create(&th[i], NULL, i < READERS ? overlap_reader : overlap_puncher,
					 &o[i]) == 0);
	}
	*fills = 0;
	for (unsigned int i = 0; i <= READERS; i++) {
		cr_assert(race_join(th[i], 10 * 1000000) == 0, "thread %u did not stop", i);
		*fills += o[i].fills;
	}
	assert_ok(ufvm_debug_hook(u.vm, NULL, NULL));
	ut_file_close(&u);
	return atomic_load(&punches);
}

/* The punches got in at least a twentieth as often as the fills. */
static bool punches_kept_up(long punches, long fills)
{
	return punches >= fills / 20;
}

Test(addblock_overlap, punches_get_in_between_overlapping_fills, .timeout = 30)
{
	long fills, punches = punches_beside_fills(0, &fills);

	cr_log_info("%ld punches beside %ld pages filled", punches, fills);
	cr_assert(punches_kept_up(punches, fills) && fills > 0,
		  "%ld punches beside %ld pages filled: the punches waited behind the fills",
		  punches, fills);
}

Test(addblock_overlap, teeth_without_yielding_fills_starve_punches, .timeout = 60)
{
	long fills, punches;

	for (int attempt = 1;; attempt++) {
		punches = punches_beside_fills(UFVM_DEBUG_ADDBLOCK_UNFAIR, &fills);
		cr_log_info("%ld punches beside %ld pages filled", punches, fills);
		if (!punches_kept_up(punches, fills) || attempt == TEETH_ATTEMPTS)
			break;
	}
	cr_assert(!punches_kept_up(punches, fills),
		  "%ld punches beside %ld pages filled though the lock lets newcomers in",
		  punches, fills);
}
