// SPDX-License-Identifier: MIT
/*
 * zero_copy: messages written and read in place, only a descriptor copied.
 *
 * Shows: shmpool_msg_loan() (a block of the pool's heap to fill),
 * shmpool_msg_publish() (its 16-byte descriptor goes through a ring),
 * shmpool_msg_receive() (the consumer gets a pointer to the payload in its
 * own mapping, checked against the heap first) and shmpool_msg_release()
 * (the block goes back to the heap, freed by the other process). At the
 * end every loan has come back: the heap holds no more blocks than before.
 *
 * "zero_copy" creates the pool, heap and a ring of struct shmpool_msg,
 * starts "zero_copy --consumer NAME" and sends MESSAGES messages of
 * varying sizes, each filled with a pattern derived from its number; the
 * consumer checks every byte.
 */
#define _GNU_SOURCE
#include <stdint.h>

#include <shmpool.h>
#include <shmpool_alloc.h>
#include <shmpool_ring.h>

#include "example.h"

#define POOL_BYTES	(4U << 20)
#define MESSAGES	2000U

/* Message @i: a 4-byte number then (i * 37) % 3000 pattern bytes. */
static size_t msg_len(uint32_t i)
{
	return sizeof(uint32_t) + (i * 37U) % 3000U;
}

static unsigned char pattern(uint32_t i, size_t k)
{
	return (unsigned char)(i * 131U + k);
}

static int consumer(const char *name)
{
	struct timespec dl = example_deadline();
	struct shmpool_heap *h = NULL;
	struct shmpool_ring *r = NULL;
	struct shmpool_msg m;
	struct shmpool *p;
	const void *ptr;
	uint32_t i = 0, got;
	size_t k;
	int ret;

	ret = shmpool_open(name, 0, &p);
	if (ret)
		return example_fail("consumer", "open pool", ret);
	ret = shmpool_heap_open(p, 0, &h);
	if (!ret)
		ret = shmpool_ring_open(h, "messages", SHMPOOL_RING_SPSC,
					sizeof(struct shmpool_msg), &r);
	while (!ret) {
		ret = shmpool_msg_receive(r, &m, &ptr, 0, &dl);
		if (ret)
			break;
		/* ptr points into our mapping of the pool: no copy was made. */
		const unsigned char *b = ptr;

		memcpy(&got, b, sizeof(got));
		if (got != i || m.len != msg_len(i))
			ret = -EBADMSG;
		for (k = sizeof(got); !ret && k < m.len; k++)
			if (b[k] != pattern(i, k))
				ret = -EBADMSG;
		shmpool_msg_release(r, &m);	/* back to the heap */
		if (ret)
			fprintf(stderr, "consumer: message %u is wrong\n", i);
		i++;
	}
	printf("consumer: %u messages checked in place, then %s\n", i,
	       strerror(-ret));
	shmpool_ring_close(r);
	shmpool_heap_close(h);
	shmpool_close(p);
	return ret == -EPIPE && i == MESSAGES ? 0 : 1;
}

static int produce(struct shmpool_ring *r)
{
	struct timespec dl = example_deadline();
	struct shmpool_msg m;
	unsigned char *b;
	void *ptr;
	uint32_t i;
	size_t k;
	int ret;

	for (i = 0; i < MESSAGES; i++) {
		ret = shmpool_msg_loan(r, msg_len(i), &ptr, &m);
		if (ret)
			return example_fail("producer", "loan", ret);
		b = ptr;	/* written in place, in the pool */
		memcpy(b, &i, sizeof(i));
		for (k = sizeof(i); k < m.len; k++)
			b[k] = pattern(i, k);
		ret = shmpool_msg_publish(r, &m, 0, &dl);
		if (ret) {
			shmpool_msg_release(r, &m);	/* still ours */
			return example_fail("producer", "publish", ret);
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct shmpool_heap_stats before, after;
	struct shmpool_heap *h = NULL;
	struct shmpool_ring *r = NULL;
	char name[SHMPOOL_NAME_MAX];
	struct shmpool *p;
	int ret, ok = 0;
	pid_t pid = -1;

	if (argc == 3 && !strcmp(argv[1], "--consumer"))
		return consumer(argv[2]);

	example_name(name, sizeof(name), "zero-copy");
	ret = shmpool_create(name, POOL_BYTES, 0600, SHMPOOL_EXCL, &p);
	if (ret)
		return example_fail("zero_copy", "create pool", ret);
	/* No thread cache, so that the block counts below are exact. */
	ret = shmpool_heap_open(p, SHMPOOL_HEAP_NOCACHE, &h);
	if (!ret)
		ret = shmpool_ring_create(h, "messages", SHMPOOL_RING_SPSC, 64,
					  sizeof(struct shmpool_msg), 0, &r);
	if (ret >= 0)
		ret = shmpool_heap_stats(h, &before);
	if (ret < 0) {
		example_fail("zero_copy", "set up heap and ring", ret);
	} else {
		pid = example_spawn("zero_copy", "--consumer", name, (char *)NULL);
		ok = produce(r) == 0;
		shmpool_ring_shutdown(r, SHMPOOL_RING_PROD);
	}
	if (example_wait(pid, "consumer"))
		ok = 0;
	if (ok && shmpool_heap_stats(h, &after) == 0) {
		printf("zero_copy: %u messages; heap blocks before %llu, after %llu\n",
		       MESSAGES, (unsigned long long)before.alloc_blocks,
		       (unsigned long long)after.alloc_blocks);
		if (after.alloc_blocks != before.alloc_blocks)
			ok = 0;
	}
	shmpool_ring_close(r);
	shmpool_heap_close(h);
	shmpool_unlink(name, (unsigned int)shmpool_backend(p));
	shmpool_close(p);
	printf("zero_copy: %s\n", ok ? "OK" : "FAILED");
	return ok ? 0 : 1;
}
