// SPDX-License-Identifier: MIT
/*
 * rendezvous: unrelated processes meet at a pool name, whoever comes first.
 *
 * Shows: shmpool_create() without SHMPOOL_EXCL as "create or open" (exactly
 * one of the racing processes creates the pool, shmpool_created() says
 * which), a fresh pool being all zero so it needs no initialisation, and a
 * barrier built from an atomic counter and an event count
 * (struct shmpool_event) in the pool.
 *
 * "rendezvous" starts PEERS copies of itself, "rendezvous --peer NAME",
 * all at once. Each creates-or-opens the pool NAME, checks in, and sleeps
 * until all have checked in. The driver then checks that exactly one of
 * them created the pool, and removes the name.
 */
#define _GNU_SOURCE
#include <stdatomic.h>
#include <stdint.h>

#include <shmpool.h>
#include <shmpool_sync.h>

#include "example.h"

#define PEERS	4

/* Offset 0 of the pool. A new pool is zeroed: count 0, event ready. */
struct meeting {
	_Atomic uint32_t arrived;	/* peers that checked in */
	_Atomic uint32_t creators;	/* peers whose create made the pool */
	struct shmpool_event all_here;	/* signalled by the last to arrive */
};

static int peer(const char *name)
{
	struct timespec dl = example_deadline();
	struct shmpool *p;
	struct meeting *m;
	uint32_t key;
	int ret;

	/* No SHMPOOL_EXCL: create the pool, or open it if someone was first. */
	ret = shmpool_create(name, (size_t)sysconf(_SC_PAGESIZE), 0600, 0, &p);
	if (ret)
		return example_fail("peer", "create-or-open", ret);
	m = shmpool_ptr(p, 0, sizeof(*m));
	if (shmpool_created(p))
		atomic_fetch_add(&m->creators, 1);

	/* The last to arrive wakes the others. */
	if (atomic_fetch_add(&m->arrived, 1) + 1 == PEERS)
		shmpool_event_signal(p, &m->all_here);
	while (atomic_load(&m->arrived) < PEERS) {
		key = shmpool_event_prepare_wait(&m->all_here);
		if (atomic_load(&m->arrived) >= PEERS)
			break;
		ret = shmpool_event_timedwait(p, &m->all_here, key, &dl);
		if (ret == -ETIMEDOUT) {
			shmpool_close(p);
			return example_fail("peer", "waiting for the others", ret);
		}
	}
	printf("peer %d: %s the pool, all %d here\n", (int)getpid(),
	       shmpool_created(p) ? "created" : "opened", PEERS);
	shmpool_close(p);
	return 0;
}

int main(int argc, char **argv)
{
	struct shmpool *p;
	struct meeting *m;
	char name[SHMPOOL_NAME_MAX];
	pid_t pids[PEERS];
	int i, ret, ok = 1;

	if (argc == 3 && !strcmp(argv[1], "--peer"))
		return peer(argv[2]);

	example_name(name, sizeof(name), "rendezvous");
	for (i = 0; i < PEERS; i++)
		pids[i] = example_spawn("rendezvous", "--peer", name, (char *)NULL);
	for (i = 0; i < PEERS; i++)
		if (example_wait(pids[i], "peer"))
			ok = 0;

	/* Look at what the peers left: the pool outlives its users until unlinked. */
	ret = shmpool_open(name, SHMPOOL_RDONLY, &p);
	if (ret)
		return example_fail("rendezvous", "open after the meeting", ret);
	m = shmpool_ptr(p, 0, sizeof(*m));
	printf("rendezvous: %u arrived, %u created the pool (%s backend)\n",
	       atomic_load(&m->arrived), atomic_load(&m->creators),
	       shmpool_backend_name(shmpool_backend(p)));
	if (atomic_load(&m->arrived) != PEERS || atomic_load(&m->creators) != 1)
		ok = 0;
	ret = shmpool_unlink(name, (unsigned int)shmpool_backend(p));
	if (ret) {
		example_fail("rendezvous", "unlink", ret);
		ok = 0;
	}
	shmpool_close(p);
	printf("rendezvous: %s\n", ok ? "OK" : "FAILED");
	return ok ? 0 : 1;
}
