// SPDX-License-Identifier: MIT
/*
 * observer: a read-only process watches a pool that another one writes.
 *
 * Shows: shmpool_open() with SHMPOOL_RDONLY (on the device backend an
 * attachment that can never become writable; on memfd, a file opened
 * read-only), a read-only process sleeping on a doorbell word with
 * shmpool_wait() (waiting needs no write access; waking does, so
 * shmpool_wake() is -EPERM here), mprotect(PROT_WRITE) being refused
 * (EACCES), and a stray store into the read-only mapping killing only the
 * process that tried (SIGSEGV), never changing the pool.
 *
 * "observer" creates the pool 0644 and starts "observer --watch NAME".
 * The watcher opens the pool read-only, tries to write and to wake (all
 * refused), says it is ready through a pipe, then follows a counter that the writer advances UPDATES
 * times, waking sleepers each time, until it sees the last value.
 */
#define _GNU_SOURCE
#include <stdatomic.h>
#include <stdint.h>
#include <sys/mman.h>

#include <shmpool.h>

#include "example.h"

#define UPDATES	50

/* Offset 0 of the pool: written by the writer only. */
struct status {
	_Atomic uint32_t counter;	/* the doorbell word: 0..UPDATES */
	char text[56];
};

/* A child that stores into the read-only mapping: it must die of SIGSEGV. */
static int stray_store_is_killed(struct status *s)
{
	int status;
	pid_t pid;

	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		s->text[0] = 'X';	/* the mapping is PROT_READ */
		_exit(0);
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid)
		return 0;
	return WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV;
}

static int watch(const char *name, int ready_fd)
{
	struct timespec dl = example_deadline();
	struct shmpool *p;
	struct status *s;
	uint32_t sleeps = 0, v;
	int ret, ok = 1;

	ret = shmpool_open(name, SHMPOOL_RDONLY, &p);
	if (ret)
		return example_fail("watcher", "open read-only", ret);
	s = shmpool_ptr(p, 0, sizeof(*s));

	/* What a read-only attachment may not do. */
	ret = mprotect(shmpool_base(p), shmpool_size(p), PROT_READ | PROT_WRITE);
	printf("watcher: mprotect(PROT_WRITE): %s\n", ret ? strerror(errno) : "allowed!");
	if (ret == 0 || errno != EACCES)
		ok = 0;
	ret = shmpool_wake(p, 0, SHMPOOL_WAKE_ALL);
	printf("watcher: shmpool_wake: %s\n", ret < 0 ? strerror(-ret) : "allowed!");
	if (ret != -EPERM)
		ok = 0;
	ret = stray_store_is_killed(s);
	printf("watcher: a store into the mapping %s\n",
	       ret ? "was killed by SIGSEGV" : "was NOT stopped");
	if (!ret)
		ok = 0;

	/* Tell the writer to start (a pipe: we may not write to the pool). */
	if (write(ready_fd, "R", 1) != 1)
		ok = 0;
	close(ready_fd);

	/* Follow the counter: sleep while it still has the value we saw. */
	while (ok && (v = atomic_load_explicit(&s->counter, memory_order_acquire)) < UPDATES) {
		ret = shmpool_wait(p, 0, v, &dl, 0);
		if (ret == 0)
			sleeps++;
		else if (ret != -EAGAIN) {	/* -EAGAIN: it moved already */
			example_fail("watcher", "wait", ret);
			ok = 0;
		}
	}
	if (ok)
		printf("watcher: counter reached %u after %u sleeps (%s backend), last text \"%s\"\n",
		       atomic_load(&s->counter), sleeps,
		       shmpool_backend_name(shmpool_backend(p)), s->text);
	shmpool_close(p);
	return ok ? 0 : 1;
}

int main(int argc, char **argv)
{
	struct timespec gap = { 0, 2000000L };
	char name[SHMPOOL_NAME_MAX], arg[16], byte;
	struct shmpool *p;
	struct status *s;
	int ret, ok, pfd[2];
	uint32_t i;
	pid_t pid;

	if (argc == 4 && !strcmp(argv[1], "--watch"))
		return watch(argv[2], atoi(argv[3]));

	example_name(name, sizeof(name), "observer");
	/* 0644: others may read, only the owner may write. */
	ret = shmpool_create(name, (size_t)sysconf(_SC_PAGESIZE), 0644, SHMPOOL_EXCL, &p);
	if (ret)
		return example_fail("observer", "create", ret);
	s = shmpool_ptr(p, 0, sizeof(*s));
	if (pipe(pfd))
		return example_fail("observer", "pipe", errno);
	snprintf(arg, sizeof(arg), "%d", pfd[1]);
	pid = example_spawn("observer", "--watch", name, arg, (char *)NULL);
	close(pfd[1]);
	/* Start once the watcher is there (EOF: it failed before that). */
	ok = read(pfd[0], &byte, 1) == 1;
	close(pfd[0]);
	for (i = 1; ok && i <= UPDATES; i++) {
		snprintf(s->text, sizeof(s->text), "update %u", i);
		/* release: the text is complete before the counter says so */
		atomic_store_explicit(&s->counter, i, memory_order_release);
		ret = shmpool_wake(p, 0, SHMPOOL_WAKE_ALL);
		if (ret < 0)
			example_fail("observer", "wake", ret);
		nanosleep(&gap, NULL);
	}
	if (example_wait(pid, "watcher"))
		ok = 0;
	shmpool_unlink(name, (unsigned int)shmpool_backend(p));
	shmpool_close(p);
	printf("observer: %s\n", ok ? "OK" : "FAILED");
	return ok ? 0 : 1;
}
