// SPDX-License-Identifier: MIT
/*
 * test_writeback.c - background write-back and write errors.
 *
 * - Pages dirty longer than dirty_expire reach the store without any sync.
 * - A full disk (a tmpfs of 256 KiB in a private mount namespace) makes
 *   ufvm_sync fail with -ENOSPC; the pages stay dirty, and once space is
 *   freed the next ufvm_sync writes them: no byte lost.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <fcntl.h>
#include <sched.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "race.h"

#define SEED	0x7762

Test(writeback, expired_pages_reach_the_store, .timeout = 30)
{
	char path[TMPSTORE_PATH_MAX];
	struct ufvm_config cfg;
	struct ufvm *vm;
	uint8_t *map, buf[PAGE];
	uint64_t deadline;
	bool seen = false;
	int i;

	cr_assert(ufvm_config_init(&cfg) == 0);
	cfg.dirty_expire_ms = 200;
	ut_store("w", 64 * PAGE, SEED, path);
	vm = ut_open(&cfg);
	map = ut_map(vm, path, 0, 64 * PAGE, UFVM_PROT_READ | UFVM_PROT_WRITE);
	for (i = 0; i < 10; i++)
		memset(map + (size_t)i * 5 * PAGE, 0x5a, PAGE);
	deadline = race_now_us() + 10 * 1000000ull;
	while (!seen && race_now_us() < deadline) {
		race_sleep_us(100000);
		cr_assert(tmpstore_read(path, buf, PAGE, 45 * PAGE) == 0);
		seen = buf[0] == 0x5a && buf[PAGE - 1] == 0x5a;
	}
	cr_assert(seen, "a page dirty for 10 s never reached the store without a sync");
	cr_assert_geq(ut_counter(vm, UFVM_CTR_FLUSH_PAGES), 10);
	ut_unmap(vm, map, 64 * PAGE);
	ut_close(vm);
}

Test(writeback, full_disk_then_space, .timeout = 30)
{
	char dir[] = "/var/tmp/ufvm-enospc-XXXXXX", path[256], ballast[256];
	struct ufvm_file *f;
	struct ufvm *vm;
	uint8_t *map, buf[PAGE];
	int fd, i;

	if (unshare(CLONE_NEWNS) || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL))
		cr_skip_test("needs a private mount namespace (root): %s", strerror(errno));
	cr_assert(mkdtemp(dir));
	if (mount("tmpfs", dir, "tmpfs", 0, "size=256k")) {
		rmdir(dir);
		cr_skip_test("cannot mount a small tmpfs: %s", strerror(errno));
	}
	snprintf(path, sizeof(path), "%s/store", dir);
	snprintf(ballast, sizeof(ballast), "%s/ballast", dir);
	fd = open(path, O_CREAT | O_RDWR, 0644);
	cr_assert(fd >= 0 && ftruncate(fd, 32 * PAGE) == 0);	/* sparse: no space yet */
	close(fd);
	fd = open(ballast, O_CREAT | O_RDWR, 0644);
	memset(buf, 0xee, sizeof(buf));
	while (write(fd, buf, sizeof(buf)) == (ssize_t)sizeof(buf))
		;
	close(fd);

	vm = ut_open(NULL);
	assert_ok(ufvm_file_open(vm, path, UFVM_RDWR, &f));
	map = ut_map(vm, path, 0, 32 * PAGE, UFVM_PROT_READ | UFVM_PROT_WRITE);
	for (i = 0; i < 32; i++)
		memset(map + (size_t)i * PAGE, i + 1, PAGE);
	assert_err(ufvm_sync(vm, map, 32 * PAGE), ENOSPC);
	cr_assert(unlink(ballast) == 0);
	assert_ok(ufvm_sync(vm, map, 32 * PAGE));
	for (i = 0; i < 32; i++) {
		cr_assert(tmpstore_read(path, buf, PAGE, (off_t)i * PAGE) == 0);
		cr_assert(buf[0] == i + 1 && buf[PAGE - 1] == i + 1, "page %d lost", i);
	}
	ut_unmap(vm, map, 32 * PAGE);
	assert_ok(ufvm_file_close(f));
	ut_close(vm);
	umount(dir);
	rmdir(dir);
}
