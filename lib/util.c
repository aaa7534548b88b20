// SPDX-License-Identifier: MIT
/*
 * Small helpers shared by the files of lib/ (lib/internal.h).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

bool __shmpool_task_gone(uint32_t id)
{
	char path[48], buf[256], *s;
	ssize_t n;
	int fd;

	/* kill() takes any thread id too, and is ESRCH once it is reaped */
	if (kill((pid_t)id, 0) && errno == ESRCH)
		return true;
	snprintf(path, sizeof(path), "/proc/%u/stat", id);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;	/* no /proc: kill() said it lives */
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	/* the state follows the command name, which may hold ')' itself */
	s = strrchr(buf, ')');
	return s && s[1] == ' ' && (s[2] == 'Z' || s[2] == 'X');
}

int __shmpool_deadline_check(const struct timespec *deadline)
{
	if (deadline && (deadline->tv_sec < 0 || deadline->tv_nsec < 0 ||
			 deadline->tv_nsec >= 1000000000L))
		return -EINVAL;
	return 0;
}

bool __shmpool_deadline_passed(const struct timespec *deadline)
{
	struct timespec now;

	if (!deadline)
		return false;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return now.tv_sec > deadline->tv_sec ||
	       (now.tv_sec == deadline->tv_sec && now.tv_nsec >= deadline->tv_nsec);
}

const struct timespec *__shmpool_deadline_within(const struct timespec *deadline,
						 long ms, struct timespec *ts)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
	if (deadline && (deadline->tv_sec < ts->tv_sec ||
			 (deadline->tv_sec == ts->tv_sec &&
			  deadline->tv_nsec < ts->tv_nsec)))
		return deadline;
	return ts;
}
