/* SPDX-License-Identifier: MIT */
/*
 * Helpers of the library tests (lib_*_test.c): the time budget scale, a
 * monotonic clock, the device check, whether a task sleeps, and workers
 * that are
 * processes (fork) by default, or threads of the test process when built
 * with -DSHMPOOL_TEST_THREADS or under ThreadSanitizer, so that TSan sees
 * both sides of every exchange. A forked worker dies with the test
 * (PR_SET_PDEATHSIG).
 */
#ifndef SHMPOOL_LIB_TEST_H
#define SHMPOOL_LIB_TEST_H

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#if defined(__SANITIZE_THREAD__) && !defined(SHMPOOL_TEST_THREADS)
#define SHMPOOL_TEST_THREADS 1
#endif

#define DEV_PATH	"/dev/shmpool"

/* SHMPOOL_TEST_SCALE (a positive number, default 1) multiplies budgets */
static inline double scale(void)
{
	const char *s = getenv("SHMPOOL_TEST_SCALE");
	double v = s ? atof(s) : 1.0;

	return v > 0 ? v : 1.0;
}

static inline uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static inline int device_ok(void)
{
	return !access(DEV_PATH, R_OK | W_OK);
}

struct task {
	int (*fn)(void *arg);
	void *arg;
	pid_t pid;
	pthread_t th;
	int rc;
};

#ifdef SHMPOOL_TEST_THREADS
static inline void *task_thread(void *t)
{
	struct task *tk = t;

	tk->rc = tk->fn(tk->arg);
	return NULL;
}
#endif

static inline int task_start(struct task *t, int (*fn)(void *), void *arg)
{
	t->fn = fn;
	t->arg = arg;
	t->rc = -1;
#ifdef SHMPOOL_TEST_THREADS
	return pthread_create(&t->th, NULL, task_thread, t) ? -1 : 0;
#else
	t->pid = fork();
	if (t->pid < 0)
		return -1;
	if (t->pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		_exit(fn(arg));
	}
	return 0;
#endif
}

static inline int task_join(struct task *t)
{
#ifdef SHMPOOL_TEST_THREADS
	pthread_join(t->th, NULL);
	return t->rc;
#else
	int status;

	if (waitpid(t->pid, &status, 0) != t->pid)
		return -1;
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : -1;
#endif
}

/* State letter of thread/process @tid from /proc ('S' asleep), or '?' */
static inline char task_state(pid_t tid)
{
	char path[64], buf[512], *p;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)tid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return '?';
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return '?';
	buf[n] = '\0';
	p = strrchr(buf, ')');
	return p && p[1] == ' ' ? p[2] : '?';
}

/*
 * Wait until @tid has slept (state S) for 50 ms in a row: it got past its
 * "ready" mark and into the wait. 0, or -1 after 20 s.
 */
static inline int wait_asleep(pid_t tid)
{
	const struct timespec ms = { 0, 1000000L };
	int i, in_a_row = 0;

	for (i = 0; i < 20000; i++) {
		in_a_row = task_state(tid) == 'S' ? in_a_row + 1 : 0;
		if (in_a_row == 50)
			return 0;
		nanosleep(&ms, NULL);
	}
	return -1;
}

#endif /* SHMPOOL_LIB_TEST_H */
