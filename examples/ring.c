// SPDX-License-Identifier: MIT
/*
 * ring: a producer and a consumer in unrelated processes, through a ring.
 *
 * Shows: a heap laid out in a named pool (shmpool_heap_open()), a ring
 * created there by name (shmpool_ring_create()) and found by name by a
 * program that shares nothing else with the creator (shmpool_ring_open()),
 * blocking enqueue and dequeue in bursts, and the end of the stream told
 * by shmpool_ring_shutdown(): the consumer drains what was sent, then gets
 * -EPIPE. Nobody polls: a side with nothing to do sleeps on a doorbell,
 * and a wake syscall is made only when someone sleeps.
 *
 * "ring" creates the pool, heap and SPSC ring "jobs", starts "ring
 * --consumer NAME" and enqueues COUNT sequence numbers, then shuts its end
 * down. The consumer checks that it received exactly 1..COUNT, in order.
 */
#define _GNU_SOURCE
#include <stdint.h>

#include <shmpool.h>
#include <shmpool_alloc.h>
#include <shmpool_ring.h>

#include "example.h"

#define POOL_BYTES	(1U << 20)
#define COUNT		100000U
#define BURST		32U

static int consumer(const char *name)
{
	struct timespec dl = example_deadline();
	struct shmpool_heap *h = NULL;
	struct shmpool_ring *r = NULL;
	struct shmpool *p;
	uint64_t buf[BURST], next = 1;
	int ret, i;

	ret = shmpool_open(name, 0, &p);
	if (ret)
		return example_fail("consumer", "open pool", ret);
	ret = shmpool_heap_open(p, 0, &h);
	if (!ret)
		ret = shmpool_ring_open(h, "jobs", SHMPOOL_RING_SPSC, sizeof(uint64_t), &r);
	while (!ret) {
		ret = shmpool_ring_dequeue_wait(r, buf, BURST, 0, &dl);
		for (i = 0; i < ret; i++)
			if (buf[i] != next++) {
				fprintf(stderr, "consumer: got %llu, expected %llu\n",
					(unsigned long long)buf[i],
					(unsigned long long)next - 1);
				ret = -EBADMSG;
				break;
			}
		if (ret > 0)
			ret = 0;
	}
	/* -EPIPE: the producer shut its end down and the ring is empty. */
	printf("consumer: received %llu elements, then %s\n",
	       (unsigned long long)next - 1, strerror(-ret));
	shmpool_ring_close(r);
	shmpool_heap_close(h);
	shmpool_close(p);
	return ret == -EPIPE && next - 1 == COUNT ? 0 : 1;
}

static int produce(struct shmpool_ring *r)
{
	struct timespec dl = example_deadline();
	uint64_t buf[BURST], next = 1;
	uint32_t i, n;
	int ret;

	while (next <= COUNT) {
		n = COUNT - next + 1 < BURST ? (uint32_t)(COUNT - next + 1) : BURST;
		for (i = 0; i < n; i++)
			buf[i] = next + i;
		/* Burst: as many as fit now, at least one; we send the rest next. */
		ret = shmpool_ring_enqueue_wait(r, buf, n, 0, &dl);
		if (ret < 0)
			return example_fail("producer", "enqueue", ret);
		next += (uint64_t)ret;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct shmpool_heap *h = NULL;
	struct shmpool_ring *r = NULL;
	char name[SHMPOOL_NAME_MAX];
	struct shmpool *p;
	int ret, ok = 0;
	pid_t pid;

	if (argc == 3 && !strcmp(argv[1], "--consumer"))
		return consumer(argv[2]);

	example_name(name, sizeof(name), "ring");
	ret = shmpool_create(name, POOL_BYTES, 0600, SHMPOOL_EXCL, &p);
	if (ret)
		return example_fail("ring", "create pool", ret);
	ret = shmpool_heap_open(p, 0, &h);
	if (!ret)
		ret = shmpool_ring_create(h, "jobs", SHMPOOL_RING_SPSC, 1024,
					  sizeof(uint64_t), 0, &r);
	if (ret < 0) {
		example_fail("ring", "create heap and ring", ret);
		pid = -1;
	} else {
		pid = example_spawn("ring", "--consumer", name, (char *)NULL);
		ok = produce(r) == 0;
		/* No more elements: the consumer drains, then sees -EPIPE. */
		shmpool_ring_shutdown(r, SHMPOOL_RING_PROD);
		printf("producer: sent %u elements, %llu wake calls\n", COUNT,
		       (unsigned long long)shmpool_ring_wake_calls());
	}
	if (example_wait(pid, "consumer"))
		ok = 0;
	shmpool_ring_close(r);
	shmpool_heap_close(h);
	shmpool_unlink(name, (unsigned int)shmpool_backend(p));
	shmpool_close(p);
	printf("ring: %s\n", ok ? "OK" : "FAILED");
	return ok ? 0 : 1;
}
