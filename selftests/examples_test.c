/* examples_test: every program in examples/ runs unattended and exits 0, on whichever backend the environment picks. */
// SPDX-License-Identifier: MIT
/*
 * One test per example, named after it, so a failure says which. An
 * example's output is passed on as TAP comments ("# name: line").
 *
 * The example programs are found in $SHMPOOL_EXAMPLES_DIR if set, else in
 * /examples (where scripts/vm-run.sh puts them in the VM: not under /tests,
 * whose every file the VM runs as a test), else in ../examples from this
 * program (build/selftests/ -> build/examples/). A missing example is a
 * failure, not a skip: `make` builds them all; and every program found
 * there must be one this file runs, so a new example cannot go untested.
 */
#define EXAMPLES(X)							\
	X(pingpong) X(rendezvous) X(fork_inherit) X(fd_passing)		\
	X(mutex_condvar) X(ring) X(zero_copy) X(config_reload) X(cache)	\
	X(offsets) X(observer) X(pipeline) X(camera)

#define _GNU_SOURCE
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* the 6.1 harness leaves parameters unused and defines unprototyped functions */
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#include "kselftest_harness.h"

/* An example that has not finished after this long has hung. */
#define EXAMPLE_LIMIT_S	60

/* Where the example programs are; "" if nowhere. */
static void examples_dir(char *buf, size_t len)
{
	const char *env = getenv("SHMPOOL_EXAMPLES_DIR");
	char self[PATH_MAX - 32], *slash;
	ssize_t n;

	if (env && *env) {
		snprintf(buf, len, "%s", env);
		return;
	}
	if (access("/examples/pingpong", X_OK) == 0) {
		snprintf(buf, len, "/examples");
		return;
	}
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	buf[0] = '\0';
	if (n <= 0)
		return;
	self[n] = '\0';
	slash = strrchr(self, '/');
	if (!slash)
		return;
	*slash = '\0';
	snprintf(buf, len, "%s/../examples", self);
}

/*
 * Run example @name; print its output as comments. Returns its exit
 * status, 128 + the signal that killed it, or -1 if it could not run.
 */
static int run_example(const char *name)
{
	char dir[PATH_MAX], path[PATH_MAX + 64], line[512];
	struct timespec start, now;
	int pfd[2], status = -1;
	FILE *out;
	pid_t pid;

	examples_dir(dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (access(path, X_OK)) {
		printf("# %s: %s not found (run make examples)\n", name, path);
		return -1;
	}
	if (pipe2(pfd, O_CLOEXEC))
		return -1;
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		dup2(pfd[1], 1);
		dup2(pfd[1], 2);
		execl(path, name, (char *)NULL);
		_exit(127);
	}
	close(pfd[1]);
	if (pid < 0) {
		close(pfd[0]);
		return -1;
	}
	clock_gettime(CLOCK_MONOTONIC, &start);
	out = fdopen(pfd[0], "r");
	for (;;) {
		struct pollfd pp = { .fd = pfd[0], .events = POLLIN };

		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec - start.tv_sec > EXAMPLE_LIMIT_S) {
			printf("# %s: still running after %d s, killed\n", name,
			       EXAMPLE_LIMIT_S);
			kill(pid, SIGKILL);
			break;
		}
		/* stdio buffers: poll only when it holds nothing */
		if (poll(&pp, 1, 1000) == 0)
			continue;
		if (!fgets(line, sizeof(line), out))
			break;	/* EOF: the example and its peers closed it */
		printf("# %s: %s%s", name, line,
		       line[strlen(line) - 1] == '\n' ? "" : "\n");
	}
	fclose(out);
	if (waitpid(pid, &status, 0) != pid)
		return -1;
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}

FIXTURE(examples) {
	int unused;
};

FIXTURE_SETUP(examples) { }
FIXTURE_TEARDOWN(examples) { }

#define EXAMPLE(name)						\
	TEST_F_TIMEOUT(examples, name, EXAMPLE_LIMIT_S + 30)	\
	{							\
		int rc = run_example(#name);			\
								\
		/* 77: what it needs is absent (it said what) */	\
		if (rc == 77)					\
			SKIP(return, "%s: see its output", #name);	\
		ASSERT_EQ(0, rc);				\
	}

EXAMPLES(EXAMPLE)

#define NAME_STRING(name) #name,
static const char *const listed[] = { EXAMPLES(NAME_STRING) };

/* Every program in the examples directory has its test above. */
TEST(every_example_is_run)
{
	char dir[PATH_MAX];
	struct dirent *e;
	unsigned int i, found = 0;
	DIR *d;

	examples_dir(dir, sizeof(dir));
	d = opendir(dir);
	ASSERT_NE(NULL, d) TH_LOG("no examples directory %s (run make examples)", dir);
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		for (i = 0; i < sizeof(listed) / sizeof(listed[0]); i++)
			if (!strcmp(e->d_name, listed[i]))
				break;
		EXPECT_LT(i, sizeof(listed) / sizeof(listed[0]))
			TH_LOG("examples/%s has no test in examples_test.c", e->d_name);
		found++;
	}
	closedir(d);
	EXPECT_EQ(sizeof(listed) / sizeof(listed[0]), found);
}

TEST_HARNESS_MAIN
