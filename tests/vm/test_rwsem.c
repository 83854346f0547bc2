/* SPDX-License-Identifier: MIT */
/*
 * test_rwsem.c - the task-fair rwsem (vm/lock.c) behind mmap_lock and the
 * invalidate lock: readers take a lock-free path while nobody queues.
 *
 * Checks:
 *  - exclusion: readers and writers hammer one lock; a writer inside never
 *    meets a reader or another writer, a reader never meets a writer, and
 *    every thread gets through its rounds (no lost wake-up hangs it);
 *  - fairness: while a writer waits behind a reader, a new reader (try or
 *    blocking) queues behind the writer instead of slipping in on the fast
 *    path, and gets in once the writer is done;
 *  - try: a try succeeds on a free or read-held lock and fails while a writer
 *    holds it.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#include "check.h"

#include "vm/lock.h"

#define READERS		3
#define WRITERS		2
#define ROUNDS		50000
#define WROUNDS		5000

static struct vm_rwsem sem;
static atomic_int readers_in, writers_in, violations;

static void *reader(void *arg)
{
	(void)arg;
	for (int i = 0; i < ROUNDS; i++) {
		if (i % 7 == 0 && vm_rwsem_read_try(&sem)) {
			/* taken by try */
		} else {
			vm_rwsem_read(&sem);
		}
		atomic_fetch_add(&readers_in, 1);
		if (atomic_load(&writers_in))
			atomic_fetch_add(&violations, 1);
		atomic_fetch_sub(&readers_in, 1);
		vm_rwsem_read_unlock(&sem);
	}
	return NULL;
}

static void *writer(void *arg)
{
	(void)arg;
	for (int i = 0; i < WROUNDS; i++) {
		vm_rwsem_write(&sem);
		if (atomic_fetch_add(&writers_in, 1) || atomic_load(&readers_in))
			atomic_fetch_add(&violations, 1);
		atomic_fetch_sub(&writers_in, 1);
		vm_rwsem_write_unlock(&sem);
	}
	return NULL;
}

Test(rwsem, exclusion, .timeout = 60)
{
	pthread_t t[READERS + WRITERS];
	int i;

	cr_assert_eq(vm_rwsem_init(&sem, VM_LC_MMAP), 0);
	for (i = 0; i < READERS; i++)
		cr_assert_eq(pthread_create(&t[i], NULL, reader, NULL), 0);
	for (; i < READERS + WRITERS; i++)
		cr_assert_eq(pthread_create(&t[i], NULL, writer, NULL), 0);
	for (i = 0; i < READERS + WRITERS; i++)
		pthread_join(t[i], NULL);
	cr_assert_eq(atomic_load(&violations), 0, "%d times inside together",
		     atomic_load(&violations));
	vm_rwsem_destroy(&sem);
}

static atomic_int stage;

static void *queued_writer(void *arg)
{
	(void)arg;
	atomic_store(&stage, 1);
	vm_rwsem_write(&sem);
	atomic_store(&stage, 2);
	vm_rwsem_write_unlock(&sem);
	return NULL;
}

static void *late_reader(void *arg)
{
	(void)arg;
	vm_rwsem_read(&sem);
	atomic_store(&stage, atomic_load(&stage) == 2 ? 3 : -1);	/* after the writer */
	vm_rwsem_read_unlock(&sem);
	return NULL;
}

Test(rwsem, reader_queues_behind_waiting_writer, .timeout = 30)
{
	pthread_t w, r;
	int i;

	cr_assert_eq(vm_rwsem_init(&sem, VM_LC_MMAP), 0);
	vm_rwsem_read(&sem);
	cr_assert_eq(pthread_create(&w, NULL, queued_writer, NULL), 0);
	/* The writer has its ticket once a try fails (the lock is only read-held). */
	for (i = 0; i < 5000; i++) {
		if (atomic_load(&stage) == 1 && !vm_rwsem_read_try(&sem))
			break;
		if (atomic_load(&stage) == 1)
			vm_rwsem_read_unlock(&sem);	/* the try got in: not queued yet */
		usleep(1000);
	}
	cr_assert_lt(i, 5000, "the writer never queued");
	cr_assert_eq(pthread_create(&r, NULL, late_reader, NULL), 0);
	usleep(50000);
	cr_assert_eq(atomic_load(&stage), 1, "the late reader got in past the waiting writer");
	vm_rwsem_read_unlock(&sem);
	pthread_join(w, NULL);
	pthread_join(r, NULL);
	cr_assert_eq(atomic_load(&stage), 3, "the writer went first, then the reader");
	vm_rwsem_destroy(&sem);
}

Test(rwsem, try, .timeout = 10)
{
	cr_assert_eq(vm_rwsem_init(&sem, VM_LC_MMAP), 0);
	cr_assert(vm_rwsem_read_try(&sem));
	cr_assert(vm_rwsem_read_try(&sem));
	vm_rwsem_read_unlock(&sem);
	vm_rwsem_read_unlock(&sem);
	vm_rwsem_write(&sem);
	cr_assert_not(vm_rwsem_read_try(&sem));
	vm_rwsem_write_unlock(&sem);
	cr_assert(vm_rwsem_read_try(&sem));
	vm_rwsem_read_unlock(&sem);
	vm_rwsem_destroy(&sem);
}
