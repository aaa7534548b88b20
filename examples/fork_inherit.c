// SPDX-License-Identifier: MIT
/*
 * fork_inherit: an anonymous pool shared with children through fork().
 *
 * Shows: shmpool_create_anon() (no name, nothing to clean up: the pool goes
 * with its last handle, fd or mapping), a handle and its mapping inherited
 * across fork() and usable at once in the child, at the same address, and
 * each child getting an attachment of its own (shmpool_attach_id()), which
 * is what the library's structures record as owner and what survivors
 * check when a process dies.
 *
 * The parent creates the pool and forks WORKERS children. Each child
 * writes its attachment id and a result into its own slot and exits; the
 * parent checks every slot and that every id is distinct from its own.
 */
#define _GNU_SOURCE
#include <stdint.h>

#include <shmpool.h>

#include "example.h"

#define WORKERS	3

struct slot {
	uint32_t attach_id;	/* the child's attachment id in this pool */
	uint32_t pid;
	uint64_t result;	/* sum of 1..(child number * 1000) */
};

static int child(struct shmpool *p, struct slot *s, int n)
{
	uint64_t sum = 0, i;
	int id;

	/* The handle came with fork(); the first call that needs an
	 * attachment makes one for this process. */
	id = shmpool_attach_id(p);
	if (id < 0)
		return example_fail("child", "attach id", id);
	for (i = 1; i <= (uint64_t)(n + 1) * 1000; i++)
		sum += i;
	s->attach_id = (uint32_t)id;
	s->pid = (uint32_t)getpid();
	s->result = sum;
	shmpool_close(p);
	return 0;
}

int main(void)
{
	struct shmpool *p;
	struct slot *slots;
	pid_t pids[WORKERS];
	int i, ret, me, ok = 1;

	ret = shmpool_create_anon((size_t)sysconf(_SC_PAGESIZE), 0, &p);
	if (ret)
		return example_fail("fork_inherit", "create_anon", ret);
	slots = shmpool_ptr(p, 0, WORKERS * sizeof(*slots));
	me = shmpool_attach_id(p);
	if (me < 0)
		return example_fail("fork_inherit", "attach id", me);
	printf("fork_inherit: anonymous pool at %p, %s backend, parent attachment %d\n",
	       shmpool_base(p), shmpool_backend_name(shmpool_backend(p)), me);

	fflush(NULL);
	for (i = 0; i < WORKERS; i++) {
		pids[i] = fork();
		if (pids[i] == 0)
			_exit(child(p, &slots[i], i));
	}
	for (i = 0; i < WORKERS; i++)
		if (example_wait(pids[i], "child"))
			ok = 0;

	for (i = 0; i < WORKERS; i++) {
		struct slot *s = &slots[i];
		uint64_t n = (uint64_t)(i + 1) * 1000, want = n * (n + 1) / 2;

		printf("child %d (pid %u): attachment %u, sum %llu\n", i, s->pid,
		       s->attach_id, (unsigned long long)s->result);
		if (s->result != want || s->attach_id == 0 ||
		    s->attach_id == (uint32_t)me)
			ok = 0;
	}
	/* Ids are per process: no two children may share one. */
	for (i = 1; i < WORKERS; i++)
		if (slots[i].attach_id == slots[i - 1].attach_id)
			ok = 0;
	shmpool_close(p);	/* the last handle: the pool is gone */
	printf("fork_inherit: %s\n", ok ? "OK" : "FAILED");
	return ok ? 0 : 1;
}
