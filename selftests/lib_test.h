/* SPDX-License-Identifier: MIT */
/*
 * Helpers of the library tests (lib_state_test, lib_cache_test): the time
 * budget scale, a monotonic clock, the device check, and workers that are
 * processes (fork) by default, or threads of the test process when built
 * with -DSHMPOOL_TEST_THREADS or under ThreadSanitizer, so that TSan sees
 * both sides of every exchange. A forked worker dies with the test
 * (PR_SET_PDEATHSIG).
 */
#ifndef SHMPOOL_LIB_TEST_H
#define SHMPOOL_LIB_TEST_H

#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#if defined(__SANITIZE_THREAD__) && !defined(SHMPOOL_TEST_THREADS)
#define SHMPOOL_TEST_THREADS 1
#endif

#define DEV_PATH	"/dev/shmpool"

/* SHMPOOL_TEST_SCALE (a positive number, default 1) multiplies budgets */
static double scale(void)
{
	const char *s = getenv("SHMPOOL_TEST_SCALE");
	double v = s ? atof(s) : 1.0;

	return v > 0 ? v : 1.0;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int device_ok(void)
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
static void *task_thread(void *t)
{
	struct task *tk = t;

	tk->rc = tk->fn(tk->arg);
	return NULL;
}
#endif

static int task_start(struct task *t, int (*fn)(void *), void *arg)
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

static int task_join(struct task *t)
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

#endif /* SHMPOOL_LIB_TEST_H */
