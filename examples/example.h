/* SPDX-License-Identifier: MIT */
/*
 * Helpers shared by the examples, none of them about shmpool: start a peer
 * process, wait for it with a time limit, make a deadline, pick a pool name
 * of our own. Each example runs unattended: it starts its peers itself and
 * exits 0 when everything it shows worked, 1 when something did not.
 */
#ifndef SHMPOOL_EXAMPLE_H
#define SHMPOOL_EXAMPLE_H

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Every wait in an example gives up after this long: a hang is a failure. */
#define EXAMPLE_TIMEOUT_S	10

/* An absolute CLOCK_MONOTONIC deadline @ms milliseconds from now. */
static inline struct timespec example_deadline_ms(long ms)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	t.tv_sec += ms / 1000;
	t.tv_nsec += (ms % 1000) * 1000000L;
	if (t.tv_nsec >= 1000000000L) {
		t.tv_sec++;
		t.tv_nsec -= 1000000000L;
	}
	return t;
}

static inline struct timespec example_deadline(void)
{
	return example_deadline_ms(EXAMPLE_TIMEOUT_S * 1000L);
}

/*
 * A pool name no other run uses at the same time: "<what>-<pid>". The
 * peers get it on their command line, as unrelated programs would get a
 * name from their configuration.
 */
static inline void example_name(char *buf, size_t len, const char *what)
{
	snprintf(buf, len, "ex-%s-%d", what, (int)getpid());
}

/*
 * Start a fresh copy of this program (a new process image that shares
 * nothing with us but what its arguments say) with the NULL-terminated
 * arguments after @argv0. Returns its pid, or -1.
 */
static inline pid_t example_spawn(const char *argv0, ...)
{
	const char *argv[16];
	va_list ap;
	pid_t pid;
	int n = 0;

	argv[n++] = argv0;
	va_start(ap, argv0);
	while (n < 15 && (argv[n] = va_arg(ap, const char *)) != NULL)
		n++;
	va_end(ap);
	argv[n] = NULL;

	fflush(NULL);	/* keep the output in order when piped */
	pid = fork();
	if (pid == 0) {
		execv("/proc/self/exe", (char **)argv);
		perror("exec /proc/self/exe");
		_exit(127);
	}
	if (pid < 0)
		perror("fork");
	return pid;
}

/*
 * Wait for child @pid for at most EXAMPLE_TIMEOUT_S seconds (then kill
 * it). 0 if it exited with status 0, else -1 with a message naming @what.
 */
static inline int example_wait(pid_t pid, const char *what)
{
	struct timespec dl = example_deadline(), now, nap = { 0, 10000000L };
	int status;
	pid_t r;

	if (pid <= 0)
		return -1;
	for (;;) {
		r = waitpid(pid, &status, WNOHANG);
		if (r == pid)
			break;
		if (r < 0) {
			perror("waitpid");
			return -1;
		}
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec > dl.tv_sec ||
		    (now.tv_sec == dl.tv_sec && now.tv_nsec >= dl.tv_nsec)) {
			fprintf(stderr, "%s: still running after %d s, killed\n",
				what, EXAMPLE_TIMEOUT_S);
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			return -1;
		}
		nanosleep(&nap, NULL);
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	if (WIFSIGNALED(status))
		fprintf(stderr, "%s: killed by signal %d\n", what, WTERMSIG(status));
	else
		fprintf(stderr, "%s: exit status %d\n", what, WEXITSTATUS(status));
	return -1;
}

/* Print "<prog>: <what>: <strerror(-err)>" and return 1 (an exit status). */
static inline int example_fail(const char *prog, const char *what, int err)
{
	fprintf(stderr, "%s: %s: %s\n", prog, what, strerror(err < 0 ? -err : err));
	return 1;
}

#endif /* SHMPOOL_EXAMPLE_H */
