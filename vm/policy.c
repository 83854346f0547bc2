// SPDX-License-Identifier: MIT
/*
 * vm/policy.c - configuration defaults, the UFVM_* environment, validation.
 * docs/configuration.md lists every variable.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "vm/policy.h"

extern char **environ;

#define HANDLERS_MAX	256

#define CACHE_PAGES_MIN	2

int vm_policy_parse_size(const char *s, uint64_t unit, uint64_t *out)
{
	static const char suffixes[] = "KMGT";
	uint64_t x = 0, mult = unit;
	bool wrapped = false;
	const char *p = s;

	if (!s || !out || !unit || !isdigit((unsigned char)*p))
		return -EINVAL;
	for (; isdigit((unsigned char)*p); p++)
		wrapped |= __builtin_mul_overflow(x, 10, &x) ||
			   __builtin_add_overflow(x, (uint64_t)(*p - '0'), &x);
	if (*p) {
		const char *k = strchr(suffixes, toupper((unsigned char)*p));

		if (!k)
			return -EINVAL;
		mult = 1ull << (10 * (k - suffixes + 1));
		p++;
		if (*p && strcasecmp(p, "b") && strcasecmp(p, "ib"))
			return -EINVAL;
	}
	if (wrapped || __builtin_mul_overflow(x, mult, &x))
		return -ERANGE;
	*out = x;
	return 0;
}

/*
 * Parse an unsigned decimal in [lo, hi]: digits only, no sign, no space.
 * Return: 0, 1 (unset), or -EINVAL (message on stderr).
 */
static int env_uint(const char *name, unsigned long lo, unsigned long hi,
		    unsigned long *out)
{
	const char *v = getenv(name);
	char *end;
	unsigned long x;

	if (!v || !*v)
		return 1;
	errno = 0;
	x = strtoul(v, &end, 10);
	if (!isdigit((unsigned char)v[0]) || errno || *end || x < lo || x > hi) {
		fprintf(stderr, "ufvm: %s=%s: expected a number from %lu to %lu\n",
			name, v, lo, hi);
		return -EINVAL;
	}
	*out = x;
	return 0;
}

/*
 * The cache budget: pages, or a size in bytes (64M) rounded down to pages;
 * 0 is no budget, anything else must come to CACHE_PAGES_MIN pages.
 * Return: 0, 1 (unset), or -EINVAL (message on stderr).
 */
static int env_cache_pages(const char *name, uint64_t *out)
{
	const char *v = getenv(name);
	uint64_t bytes;
	int err;

	if (!v || !*v)
		return 1;
	err = vm_policy_parse_size(v, PAGE_SIZE, &bytes);
	if (err == -ERANGE) {
		fprintf(stderr, "ufvm: %s=%s: too large\n", name, v);
		return -EINVAL;
	}
	if (err) {
		fprintf(stderr, "ufvm: %s=%s: expected pages, or a size like 64M\n", name, v);
		return -EINVAL;
	}
	if (bytes && (bytes >> PAGE_SHIFT) < CACHE_PAGES_MIN) {
		fprintf(stderr, "ufvm: %s=%s: the budget must be at least %d pages (%luK), "
			"or 0 for no budget\n", name, v, CACHE_PAGES_MIN,
			CACHE_PAGES_MIN * PAGE_SIZE >> 10);
		return -EINVAL;
	}
	*out = bytes >> PAGE_SHIFT;
	return 0;
}

/*
 * What is wrong with @cfg, or NULL.  Also the ufvm tool's check of the
 * values its benchmarks set (bench/bench.h), so that it refuses what
 * ufvm_open() would.  Context: any.
 */
const char *vm_policy_check(const struct ufvm_config *cfg)
{
	const char *why = NULL;

	if (cfg->backend > UFVM_BACKEND_SIGSEGV)
		why = "backend";
	else if (cfg->handler_threads > HANDLERS_MAX)
		why = "handler_threads (at most 256)";
	else if (cfg->handler_spin_us > 1000000)
		why = "handler_spin_us (at most 1 s)";
	else if (cfg->handler_batch > 1)
		why = "handler_batch (0 or 1)";
	else if (cfg->handler_park > 1)
		why = "handler_park (0 or 1)";
	else if (cfg->install_split > 1)
		why = "install_split (0 or 1)";
	else if (cfg->speculative > 1)
		why = "speculative (0 or 1)";
	else if (cfg->fault_around < 1 || cfg->fault_around > VM_FAULT_AROUND_MAX)
		why = "fault_around (1 to 256 pages)";
	else if (cfg->retry > 1)
		why = "retry (0 or 1)";
	else if (cfg->invalidate > UFVM_INVALIDATE_NONE)
		why = "invalidate";
	else if (cfg->delivery > UFVM_DELIVERY_INTHREAD)
		why = "delivery";
	else if (cfg->reclaim > UFVM_RECLAIM_FIFO)
		why = "reclaim";
	else if (cfg->map_ahead > VM_FAULT_AROUND_MAX)
		why = "map_ahead (0 to 256 pages)";
	else if (cfg->write_ahead > VM_FAULT_AROUND_MAX)
		why = "write_ahead (0 to 256 pages)";
	else if (cfg->readahead > 256)
		why = "readahead (0 to 256 pages)";
	else if (cfg->dirty_expire_ms < 1 || cfg->dirty_expire_ms > 3600000)
		why = "dirty_expire_ms (1 ms to 1 h)";
	else if (cfg->cache_pages && cfg->cache_pages < CACHE_PAGES_MIN)
		why = "cache_pages (at least 2, or 0 for no budget)";
	else if (cfg->store_latency_us > 10000000)
		why = "store_latency_us (at most 10 s)";
	else if (cfg->direct_io > 1)
		why = "direct_io (0 or 1)";
	else if (cfg->frame_stripes < 1 || cfg->frame_stripes > VM_FRAME_STRIPES_MAX)
		why = "frame_stripes (1 to 8)";
	else if (cfg->chunk_pages & (cfg->chunk_pages - 1) || cfg->chunk_pages > (1u << 20))
		why = "chunk_pages (0, or a power of two up to 1048576)";
	else if (cfg->debug_flags & ~(UFVM_DEBUG_CHECK_THEN_RAISE | UFVM_DEBUG_NO_DEAD_CHECK |
				      UFVM_DEBUG_EVICT_PUNCH_LATE | UFVM_DEBUG_OVERSHOOT_WINDOW |
				      UFVM_DEBUG_NO_ACTIVE | UFVM_DEBUG_FILL_END_LATE |
				      UFVM_DEBUG_KILL_NO_ZAP | UFVM_DEBUG_WB_EPOCH_ONCE |
				      UFVM_DEBUG_CLOSE_NO_WAIT | UFVM_DEBUG_AROUND_REREAD |
				      UFVM_DEBUG_DROP_GET_LATE |
				      UFVM_DEBUG_FORK_NOREPLACE | UFVM_DEBUG_FILL_HOOKED |
				      UFVM_DEBUG_FILL_PAST_SHRINK | UFVM_DEBUG_PARK_PAST_STOP |
				      UFVM_DEBUG_SPLIT_NO_WAIT | UFVM_DEBUG_SPLIT_FAIL |
				      UFVM_DEBUG_PARK_PAST_WAIT | UFVM_DEBUG_FORK_NO_HOLD |
				      UFVM_DEBUG_REPLACE_FAIL | UFVM_DEBUG_STAT_OPEN_RACE |
				      UFVM_DEBUG_POISON_STALE | UFVM_DEBUG_WB_PAST_PUNCH |
				      UFVM_DEBUG_CANCEL_INSIDE | UFVM_DEBUG_BUS_INHERITED |
				      UFVM_DEBUG_SYNC_PAST_PUNCH | UFVM_DEBUG_FAILED_READ_WAKE |
				      UFVM_DEBUG_FAILED_PUNCH_CUTS | UFVM_DEBUG_PARTIAL_PUNCH_EMPTY |
				      UFVM_DEBUG_DUP_ONLY_WAKES | UFVM_DEBUG_ADDBLOCK_UNFAIR |
				      UFVM_DEBUG_REFUSE_GUESS | UFVM_DEBUG_GUESS_ACCESS |
				      UFVM_DEBUG_ATTACH_OPEN | UFVM_DEBUG_WA_PAST_LOCK |
				      UFVM_DEBUG_WA_APART | UFVM_DEBUG_DROP_DIRTY_EARLY |
				      UFVM_DEBUG_COUNT_LATE | UFVM_DEBUG_FAILED_SHRINK_CUTS |
				      UFVM_DEBUG_UNEXTEND_GUESS | UFVM_DEBUG_GROW_NO_REDIRTY))
		why = "debug_flags";
	else if (memchr(cfg->stats_path, 0, sizeof(cfg->stats_path)) == NULL)
		why = "stats_path (not terminated)";
	return why;
}

/*
 * Every UFVM_* variable anything of ufvm reads: the parsers below, and
 * those of the preload and `ufvm run` (docs/configuration.md,
 * docs/preload.md).  Keep it in step with them.
 */
static const char *const env_known[] = {
	"UFVM_BACKEND", "UFVM_CACHE_PAGES", "UFVM_DELIVERY", "UFVM_DIRECT_IO",
	"UFVM_CHUNK_PAGES", "UFVM_DIRTY_EXPIRE_MS", "UFVM_FAULT_AROUND", "UFVM_FRAME_STRIPES",
	"UFVM_HANDLERS", "UFVM_HANDLER_BATCH",
	"UFVM_HANDLER_PARK", "UFVM_HANDLER_SPIN_US", "UFVM_INSTALL_SPLIT", "UFVM_INVALIDATE",
	"UFVM_MAP_AHEAD", "UFVM_READAHEAD",
	"UFVM_RECLAIM", "UFVM_RETRY", "UFVM_SPECULATIVE", "UFVM_STATS",
	"UFVM_STORE_LATENCY_US", "UFVM_WRITE_AHEAD",
	"UFVM_MATCH", "UFVM_PRELOAD_LIB", "UFVM_PRELOAD_TEETH", "UFVM_PRELOAD_VERBOSE",
	"UFVM_REPORT",
};

/* Edit distance of @a and @b (letters, lengths below 64), capped at 9. */
static unsigned int env_distance(const char *a, const char *b)
{
	unsigned int row[64], i, j, la = (unsigned int)strlen(a), lb = (unsigned int)strlen(b);

	if (la >= 64 || lb >= 64)
		return 9;
	for (j = 0; j <= lb; j++)
		row[j] = j;
	for (i = 1; i <= la; i++) {
		unsigned int diag = row[0], up;

		row[0] = i;
		for (j = 1; j <= lb; j++) {
			up = row[j];
			row[j] = MIN(MIN(row[j] + 1, row[j - 1] + 1),
				     diag + (a[i - 1] != b[j - 1]));
			diag = up;
		}
	}
	return MIN(row[lb], 9u);
}

/*
 * A UFVM_* variable that nothing reads is most often a misspelt one, which
 * would leave the setting it meant at its default without a word: say so
 * on stderr, with the nearest known name, once per process.
 */
static void env_warn_unknown(void)
{
	static bool warned;
	char name[64];
	size_t i, k;

	if (__atomic_exchange_n(&warned, true, __ATOMIC_RELAXED))
		return;
	for (i = 0; environ && environ[i]; i++) {
		const char *e = environ[i], *eq = strchr(e, '='), *best = NULL;
		unsigned int d, bestd = 4;	/* suggest within 3 edits */

		if (strncmp(e, "UFVM_", 5) || !eq || (size_t)(eq - e) >= sizeof(name))
			continue;
		memcpy(name, e, (size_t)(eq - e));
		name[eq - e] = 0;
		for (k = 0; k < ARRAY_SIZE(env_known) && strcmp(name, env_known[k]); k++)
			;
		if (k < ARRAY_SIZE(env_known))
			continue;
		for (k = 0; k < ARRAY_SIZE(env_known); k++) {
			d = env_distance(name, env_known[k]);
			if (d < bestd) {
				bestd = d;
				best = env_known[k];
			}
		}
		fprintf(stderr, "ufvm: %s is not a variable of ufvm's: ignored%s%s%s\n", name,
			best ? " (did you mean " : "", best ? best : "", best ? "?)" : "");
	}
}

int vm_policy_config_init(struct ufvm_config *cfg)
{
	unsigned long x;
	const char *v, *why;
	int err;

	env_warn_unknown();
	memset(cfg, 0, sizeof(*cfg));
	cfg->backend = UFVM_BACKEND_AUTO;
	cfg->handler_threads = 0;
	cfg->handler_spin_us = 0;
	cfg->handler_batch = 1;
	cfg->handler_park = 1;
	cfg->install_split = 1;
	cfg->speculative = 1;
	cfg->fault_around = 16;
	cfg->retry = 1;
	cfg->invalidate = UFVM_INVALIDATE_RWSEM;
	cfg->reclaim = UFVM_RECLAIM_CLOCK;
	cfg->readahead = 256;
	cfg->dirty_expire_ms = 5000;
	cfg->map_ahead = 256;
	cfg->write_ahead = 0;	/* opt-in: see docs/architecture.md, "Write-ahead" */
	cfg->frame_stripes = 4;
	cfg->chunk_pages = 0;

#define ENV_UINT(name, lo, hi, field)					\
	do {								\
		err = env_uint(name, lo, hi, &x);			\
		if (err < 0)						\
			return err;					\
		if (!err)						\
			cfg->field = (unsigned int)x;			\
	} while (0)

	ENV_UINT("UFVM_SPECULATIVE", 0, 1, speculative);
	ENV_UINT("UFVM_FAULT_AROUND", 1, VM_FAULT_AROUND_MAX, fault_around);
	ENV_UINT("UFVM_RETRY", 0, 1, retry);
	ENV_UINT("UFVM_STORE_LATENCY_US", 0, 10000000, store_latency_us);
	ENV_UINT("UFVM_DIRECT_IO", 0, 1, direct_io);
	ENV_UINT("UFVM_HANDLERS", 0, HANDLERS_MAX, handler_threads);
	ENV_UINT("UFVM_HANDLER_SPIN_US", 0, 1000000, handler_spin_us);
	ENV_UINT("UFVM_HANDLER_BATCH", 0, 1, handler_batch);
	ENV_UINT("UFVM_HANDLER_PARK", 0, 1, handler_park);
	ENV_UINT("UFVM_INSTALL_SPLIT", 0, 1, install_split);
	ENV_UINT("UFVM_READAHEAD", 0, 256, readahead);
	ENV_UINT("UFVM_MAP_AHEAD", 0, VM_FAULT_AROUND_MAX, map_ahead);
	ENV_UINT("UFVM_WRITE_AHEAD", 0, VM_FAULT_AROUND_MAX, write_ahead);
	ENV_UINT("UFVM_DIRTY_EXPIRE_MS", 1, 3600000, dirty_expire_ms);
	ENV_UINT("UFVM_FRAME_STRIPES", 1, VM_FRAME_STRIPES_MAX, frame_stripes);
	ENV_UINT("UFVM_CHUNK_PAGES", 0, 1u << 20, chunk_pages);
#undef ENV_UINT
	err = env_cache_pages("UFVM_CACHE_PAGES", &cfg->cache_pages);
	if (err < 0)
		return err;
	v = getenv("UFVM_INVALIDATE");
	if (v && *v) {
		if (!strcmp(v, "rwsem"))
			cfg->invalidate = UFVM_INVALIDATE_RWSEM;
		else if (!strcmp(v, "addblock"))
			cfg->invalidate = UFVM_INVALIDATE_ADDBLOCK;
		else if (!strcmp(v, "none"))
			cfg->invalidate = UFVM_INVALIDATE_NONE;
		else {
			fprintf(stderr, "ufvm: UFVM_INVALIDATE=%s: expected rwsem, addblock or none\n", v);
			return -EINVAL;
		}
	}
	v = getenv("UFVM_DELIVERY");
	if (v && *v) {
		if (!strcmp(v, "handler"))
			cfg->delivery = UFVM_DELIVERY_HANDLER;
		else if (!strcmp(v, "inthread"))
			cfg->delivery = UFVM_DELIVERY_INTHREAD;
		else {
			fprintf(stderr, "ufvm: UFVM_DELIVERY=%s: expected handler or inthread\n", v);
			return -EINVAL;
		}
	}
	v = getenv("UFVM_RECLAIM");
	if (v && *v) {
		if (!strcmp(v, "clock"))
			cfg->reclaim = UFVM_RECLAIM_CLOCK;
		else if (!strcmp(v, "fifo"))
			cfg->reclaim = UFVM_RECLAIM_FIFO;
		else {
			fprintf(stderr, "ufvm: UFVM_RECLAIM=%s: expected clock or fifo\n", v);
			return -EINVAL;
		}
	}
	v = getenv("UFVM_BACKEND");
	if (v && *v) {
		if (!strcmp(v, "auto"))
			cfg->backend = UFVM_BACKEND_AUTO;
		else if (!strcmp(v, "uffd"))
			cfg->backend = UFVM_BACKEND_UFFD;
		else if (!strcmp(v, "sigsegv"))
			cfg->backend = UFVM_BACKEND_SIGSEGV;
		else {
			fprintf(stderr, "ufvm: UFVM_BACKEND=%s: expected auto, uffd or sigsegv\n", v);
			return -EINVAL;
		}
	}
	v = getenv("UFVM_STATS");
	if (v && *v) {
		if (strlen(v) >= sizeof(cfg->stats_path)) {
			fprintf(stderr, "ufvm: UFVM_STATS: path too long\n");
			return -EINVAL;
		}
		strcpy(cfg->stats_path, v);
	}
	/* Whatever ufvm_open() would refuse is refused here, where the
	 * variables are known (each parser above checks its own range). */
	why = vm_policy_check(cfg);
	if (why) {
		fprintf(stderr, "ufvm: the UFVM_* variables give an invalid configuration: %s\n",
			why);
		return -EINVAL;
	}
	return 0;
}

int vm_policy_from_config(const struct ufvm_config *cfg, struct vm_policy *pol)
{
	const char *why = vm_policy_check(cfg);

	if (why) {
		fprintf(stderr, "ufvm: invalid configuration: %s\n", why);
		return -EINVAL;
	}
	pol->speculative = cfg->speculative;
	pol->fault_around = cfg->fault_around;
	pol->retry = cfg->retry;
	pol->map_ahead = cfg->map_ahead;
	pol->write_ahead = cfg->write_ahead;
	pol->invalidate = cfg->invalidate;
	pol->frame_stripes = cfg->frame_stripes;
	pol->chunk_pages = cfg->chunk_pages;
	pol->debug = cfg->debug_flags;
	return 0;
}
