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

atomic_uint __shmpool_fork_gen = 1;

/* in the order their locks nest: see internal.h */
static void (*const fork_hooks[])(enum __shmpool_fork_stage) = {
	__shmpool_ring_atfork,
	__shmpool_tcache_atfork,
	__shmpool_sync_atfork,
	__shmpool_attach_atfork,
	__shmpool_handle_atfork,
	__shmpool_memfd_atfork,
};

#define NR_FORK_HOOKS	(sizeof(fork_hooks) / sizeof(fork_hooks[0]))

static void fork_prepare(void)
{
	size_t i;

	for (i = 0; i < NR_FORK_HOOKS; i++)
		fork_hooks[i](__SHMPOOL_FORK_PREPARE);
}

static void fork_parent(void)
{
	size_t i;

	for (i = NR_FORK_HOOKS; i-- > 0;)
		fork_hooks[i](__SHMPOOL_FORK_PARENT);
}

static void fork_child(void)
{
	size_t i;

	atomic_fetch_add_explicit(&__shmpool_fork_gen, 1, memory_order_relaxed);
	for (i = NR_FORK_HOOKS; i-- > 0;)
		fork_hooks[i](__SHMPOOL_FORK_CHILD);
}

/*
 * At load, not at first use: registered lazily, per file, the handlers
 * ran in the order of first use, which need not be the order the locks
 * nest in (a fork() then took two of them the other way round from a
 * thread that held one and waited for the other).
 */
__attribute__((constructor)) static void fork_register(void)
{
	pthread_atfork(fork_prepare, fork_parent, fork_child);
}

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
