/* SPDX-License-Identifier: MIT */
/*
 * check.h - assertion macros and ufvm wrappers shared by the tests.
 *
 * The wrappers assert (Criterion) and therefore belong in the test's main
 * thread only: Criterion's asserts longjmp out of the test function.  Worker
 * threads record what they saw and the main thread asserts on it.
 */
#ifndef TESTS_CHECK_H
#define TESTS_CHECK_H

#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <ufvm.h>

#include "pattern.h"
#include "sigbus.h"
#include "tmpstore.h"

#define PAGE	4096ul
#define KiB	1024ul
#define MiB	(1024ul * 1024ul)

/* Assert that @buf holds the pattern of @seed at file offset @off. */
#define assert_pattern(seed, buf, off, len, what, ...)				\
	do {									\
		const uint8_t *_b = (const uint8_t *)(buf);			\
		ssize_t _m = pattern_mismatch((seed), _b, (off), (len));	\
		cr_assert(_m < 0,						\
			  what ": file offset %#llx: got %#04x, want %#04x",	\
			  ##__VA_ARGS__,						\
			  (unsigned long long)((off) + (_m < 0 ? 0 : _m)),	\
			  _m < 0 ? 0 : _b[_m],					\
			  _m < 0 ? 0 : pattern_byte((seed), (off) + _m));	\
	} while (0)

/* Assert that @buf (holding file offset @off) is all zeros. */
#define assert_zeros(buf, off, len, what, ...)					\
	do {									\
		const uint8_t *_b = (const uint8_t *)(buf);			\
		ssize_t _m = zero_mismatch(_b, (len));				\
		cr_assert(_m < 0, what ": file offset %#llx: got %#04x, want 0",	\
			  ##__VA_ARGS__,						\
			  (unsigned long long)((off) + (_m < 0 ? 0 : _m)),	\
			  _m < 0 ? 0 : _b[_m]);					\
	} while (0)

/* Assert that @a and @b (holding file offset @off) are equal. */
#define assert_same(a, b, off, len, what, ...)					\
	do {									\
		const uint8_t *_a = (const uint8_t *)(a);			\
		const uint8_t *_b = (const uint8_t *)(b);			\
		ssize_t _m = buf_mismatch(_a, _b, (len));			\
		cr_assert(_m < 0, what ": file offset %#llx: got %#04x, want %#04x",	\
			  ##__VA_ARGS__,						\
			  (unsigned long long)((off) + (_m < 0 ? 0 : _m)),	\
			  _m < 0 ? 0 : _a[_m], _m < 0 ? 0 : _b[_m]);		\
	} while (0)

/* Assert that a ufvm call returned 0 (or a non-negative count). */
#define assert_ok(expr)								\
	do {									\
		long long _r = (long long)(expr);				\
		cr_assert(_r >= 0, "%s = %lld (%s)", #expr, _r,			\
			  ufvm_strerror((int)_r));				\
	} while (0)

/* Assert that a ufvm call failed with -@err. */
#define assert_err(expr, err)							\
	do {									\
		long long _r = (long long)(expr);				\
		cr_assert(_r == -(err), "%s = %lld (%s), want -%s", #expr, _r,	\
			  _r < 0 ? ufvm_strerror((int)_r) : "success", #err);	\
	} while (0)

/* ufvm_open() with the default configuration (or @cfg); asserts success. */
struct ufvm *ut_open(const struct ufvm_config *cfg);
/* ufvm_close(); asserts it returns 0. */
void ut_close(struct ufvm *vm);
/* ufvm_map(); asserts success and returns the address. */
void *ut_map(struct ufvm *vm, const char *path, off_t off, size_t len, int prot);
/* ufvm_unmap(); asserts it returns 0. */
void ut_unmap(struct ufvm *vm, void *addr, size_t len);
/* tmpstore_create(); asserts success. */
void ut_store(const char *name, off_t size, uint64_t seed, char *path);
/* ufvm_pread()/ufvm_pwrite() of exactly @len bytes; asserts. */
void ut_pread(struct ufvm_file *f, void *buf, size_t len, off_t off);
void ut_pwrite(struct ufvm_file *f, const void *buf, size_t len, off_t off);
/*
 * ut_about_to_die - the test is about to die of @sig on purpose (a test
 * with .signal = @sig): remove the temporary directory (ufvm has its files
 * open) and restore the default action of @sig, so that a handler someone
 * else installed (AddressSanitizer's, which would exit(1) instead) cannot
 * turn the expected death into something else.
 */
void ut_about_to_die(int sig);
/* A store file of the test and its handle in an instance of its own. */
struct ut_file {
	char path[TMPSTORE_PATH_MAX];
	struct ufvm *vm;
	struct ufvm_file *f;
};
/*
 * ut_file_open - make store @name of @npages pages holding the pattern of
 * @seed, open an instance with @cfg, and the file in it with @flags;
 * asserts.  ut_file_close() closes both.
 */
void ut_file_open(struct ut_file *u, const struct ufvm_config *cfg, const char *name,
		  uint64_t npages, uint64_t seed, int flags);
void ut_file_close(struct ut_file *u);
/* ufvm_config_init() with a page-cache budget of @budget pages; asserts. */
void ut_config_budget(struct ufvm_config *cfg, uint64_t budget);
/* The value of one counter now. */
uint64_t ut_counter(struct ufvm *vm, enum ufvm_counter c);
/* The byte at offset @off of the store file at @path (plain pread); asserts. */
uint8_t ut_store_byte(const char *path, off_t off);
/*
 * ut_wait_child - wait up to @ms for child @pid to end, its status in
 * *@status; if it has not, kill it (SIGKILL) and reap it.
 * Return: true if it ended by itself in time.
 */
bool ut_wait_child(pid_t pid, int ms, int *status);
/* "exited with" or "died of signal" for a wait status, and its number. */
#define UT_STATUS_FMT		"%s %d"
#define UT_STATUS_ARGS(st)	(WIFSIGNALED(st) ? "died of signal" : "exited with"), \
				(WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st))
/*
 * ut_pwrites_beside - two threads run @disrupt (which loops until *@stop)
 * while a third, once *@started is set, makes 100 pwrites of 8 bytes into
 * pages [0, @npages) of @f, each read back; asserts.  Sets *@stop after
 * the 100, or after @us.  Return: the pwrites done by then.
 */
int ut_pwrites_beside(struct ufvm_file *f, unsigned int npages, void *(*disrupt)(void *),
		      atomic_int *stop, atomic_int *started, uint64_t us);
/*
 * ut_pwrites_beside_punches - two threads ufvm_punch() [0, @npages pages)
 * of @f back to back, each failing with -@punch_errno and held 1 ms once
 * its pages are dropped (UFVM_HOOK_INVALIDATED, so that one is nearly
 * always under way), while a third makes 100 pwrites of 8 bytes into the
 * range, each read back; asserts.  Installs and removes @vm's debug hook.
 * Return: the pwrites done within @us.
 */
int ut_pwrites_beside_punches(struct ufvm *vm, struct ufvm_file *f, unsigned int npages,
			      int punch_errno, uint64_t us);
/*
 * The teeth of such a test: @run(@debug, RACE_HUNG_US), with the debug
 * flag of the bug, keeps the pwrites back (fewer than 5 complete) in one
 * of three runs.  A pwrite starts over only if a punch ran during it, and under
 * load both punchers may sit descheduled while a few complete (once in a
 * run beside a fuzzer); with the fix every run completes all 100 in well
 * under that second.  Asserts.
 */
void ut_assert_pwrites_kept_back(int (*run)(uint64_t debug, uint64_t us), uint64_t debug);

#endif /* TESTS_CHECK_H */
