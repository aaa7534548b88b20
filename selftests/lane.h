/* SPDX-License-Identifier: MIT */
/*
 * What scripts/vm-run.sh tells a test on the kernel command line: which
 * QEMU lane it runs in (its words "spnonce=", "splane=", "spbackends=",
 * "spmemfd="). Shared by lib_test.h and shmpool_test_util.h.
 */
#ifndef SHMPOOL_LANE_H
#define SHMPOOL_LANE_H

#include <fcntl.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>

/* Does the kernel command line hold @word? */
static inline bool lane_cmdline_has(const char *word)
{
	char buf[4096];
	ssize_t len = -1;
	int fd = open("/proc/cmdline", O_RDONLY | O_CLOEXEC);

	if (fd >= 0) {
		len = read(fd, buf, sizeof(buf) - 1);
		close(fd);
	}
	if (len <= 0)
		return false;
	buf[len] = 0;
	return strstr(buf, word) != NULL;
}

/*
 * @n, or a quarter of it (at least 1) in the debug lane ("splane=debug"),
 * for a count of rounds whose cost is process or system call churn, several
 * times dearer there under KASAN, lockdep and kmemleak. That lane is there
 * for the module's paths, which a quarter of the rounds still takes; the
 * other lanes run them all.
 */
static inline long lane_debug_quarter(long n)
{
	return lane_cmdline_has("splane=debug") ? (n + 3) / 4 : n;
}

#endif /* SHMPOOL_LANE_H */
