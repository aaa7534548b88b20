// SPDX-License-Identifier: MIT
/*
 * mutex_condvar: a bounded queue guarded by a process-shared mutex and two
 * condition variables, like pthread_mutex_t and pthread_cond_t with
 * PTHREAD_PROCESS_SHARED, but placed in a pool.
 *
 * Shows: struct shmpool_mutex and struct shmpool_cond living in pool
 * memory (all zero is their initial state, so a fresh pool needs no init),
 * shmpool_cond_wait() releasing and retaking the mutex, signal and
 * broadcast, and what a locker does with -EOWNERDEAD (it holds the lock;
 * the previous owner died in the middle of its critical section).
 * Process-shared pthread objects cannot be used in a device pool: plain
 * shared futexes fail on its pages (shmpool(7), "Doorbells").
 *
 * The parent forks CONSUMERS children, then puts ITEMS numbers into the
 * queue; each child takes numbers until it meets the end, and adds them
 * up. The parent checks that the children's sums add up to 1 + ... + ITEMS.
 */
#define _GNU_SOURCE
#include <stdint.h>

#include <shmpool.h>
#include <shmpool_sync.h>

#include "example.h"

#define CONSUMERS	2
#define ITEMS		2000
#define QLEN		8

struct queue {
	struct shmpool_mutex lock;	/* guards everything below */
	struct shmpool_cond not_empty;
	struct shmpool_cond not_full;
	uint32_t head, tail;		/* free-running; slot = index % QLEN */
	uint32_t done;			/* no more items will come */
	uint32_t items[QLEN];
	uint64_t sums[CONSUMERS];	/* each consumer's total */
};

/* Lock @q; a lock taken over from a dead owner is still ours. */
static int lock(struct shmpool *p, struct queue *q)
{
	struct timespec dl = example_deadline();
	int ret = shmpool_mutex_timedlock(p, &q->lock, &dl);

	if (ret == -EOWNERDEAD) {
		/* The owner died inside its critical section; here every
		 * update is a single store, so there is nothing to repair. */
		fprintf(stderr, "pid %d: took the lock over from a dead owner\n",
			(int)getpid());
		ret = 0;
	}
	return ret;
}

/* Wait on @c with @q's lock held; -ETIMEDOUT after EXAMPLE_TIMEOUT_S. */
static int wait_on(struct shmpool *p, struct queue *q, struct shmpool_cond *c)
{
	struct timespec dl = example_deadline();
	int ret = shmpool_cond_timedwait(p, c, &q->lock, &dl);

	return ret == -EOWNERDEAD ? 0 : ret;	/* relocked in both cases */
}

static int consumer(struct shmpool *p, struct queue *q, int n)
{
	uint64_t sum = 0;
	int ret;

	if ((ret = lock(p, q)))
		return example_fail("consumer", "lock", ret);
	for (;;) {
		while (q->head == q->tail && !q->done)
			if ((ret = wait_on(p, q, &q->not_empty))) {
				shmpool_mutex_unlock(p, &q->lock);
				return example_fail("consumer", "wait", ret);
			}
		if (q->head == q->tail)
			break;	/* done and drained */
		sum += q->items[q->head++ % QLEN];
		shmpool_cond_signal(p, &q->not_full);
	}
	q->sums[n] = sum;
	shmpool_mutex_unlock(p, &q->lock);
	return 0;
}

static int producer(struct shmpool *p, struct queue *q)
{
	uint32_t i;
	int ret;

	if ((ret = lock(p, q)))
		return ret;
	for (i = 1; i <= ITEMS; i++) {
		while (q->tail - q->head == QLEN)
			if ((ret = wait_on(p, q, &q->not_full)))
				goto out;
		q->items[q->tail++ % QLEN] = i;
		shmpool_cond_signal(p, &q->not_empty);
	}
	q->done = 1;
	/* Every consumer must see the end, not just one. */
	shmpool_cond_broadcast(p, &q->not_empty);
out:
	shmpool_mutex_unlock(p, &q->lock);
	return ret;
}

int main(void)
{
	uint64_t total = 0, want = (uint64_t)ITEMS * (ITEMS + 1) / 2;
	struct shmpool *p;
	struct queue *q;
	pid_t pids[CONSUMERS];
	int i, ret, ok = 1;

	ret = shmpool_create_anon((size_t)sysconf(_SC_PAGESIZE), 0, &p);
	if (ret)
		return example_fail("mutex_condvar", "create_anon", ret);
	q = shmpool_ptr(p, 0, sizeof(*q));

	fflush(NULL);
	for (i = 0; i < CONSUMERS; i++) {
		pids[i] = fork();
		if (pids[i] == 0)
			_exit(consumer(p, q, i));
	}
	ret = producer(p, q);
	if (ret) {
		example_fail("mutex_condvar", "produce", ret);
		ok = 0;
	}
	for (i = 0; i < CONSUMERS; i++)
		if (example_wait(pids[i], "consumer"))
			ok = 0;
	for (i = 0; i < CONSUMERS; i++) {
		printf("consumer %d took items summing to %llu\n", i,
		       (unsigned long long)q->sums[i]);
		total += q->sums[i];
	}
	printf("mutex_condvar: total %llu, expected %llu (%s backend)\n",
	       (unsigned long long)total, (unsigned long long)want,
	       shmpool_backend_name(shmpool_backend(p)));
	if (total != want)
		ok = 0;
	shmpool_close(p);
	printf("mutex_condvar: %s\n", ok ? "OK" : "FAILED");
	return ok ? 0 : 1;
}
