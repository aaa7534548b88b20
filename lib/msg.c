// SPDX-License-Identifier: MIT
/*
 * Zero-copy messages (include/shmpool_ring.h): heap blocks whose descriptors
 * travel through a ring. The ring's release/acquire on its indices is what
 * makes the producer's writes to the block visible to the consumer that
 * dequeues the descriptor; the heap's free is safe from any process.
 */
#include "internal.h"
#include "shmpool_ring.h"

static int check_ring(const struct shmpool_ring *r)
{
	if (!r || r->type == SHMPOOL_RING_VAR ||
	    r->esize != sizeof(struct shmpool_msg))
		return -EINVAL;
	return 0;
}

SHMPOOL_EXPORT
int shmpool_msg_loan(struct shmpool_ring *r, size_t len, void **ptr,
		     struct shmpool_msg *m)
{
	uint64_t off;
	int ret;

	ret = check_ring(r);
	if (ret)
		return ret;
	if (!len || !ptr || !m)
		return -EINVAL;
	ret = shmpool_alloc(r->heap, len, &off);
	if (ret)
		return ret;
	m->off = off;
	m->len = len;
	*ptr = shmpool_heap_ptr(r->heap, off, len);
	return 0;
}

SHMPOOL_EXPORT
int shmpool_msg_publish(struct shmpool_ring *r, const struct shmpool_msg *m,
			unsigned int flags, const struct timespec *deadline)
{
	int ret;

	ret = check_ring(r);
	if (ret)
		return ret;
	if (!m || (flags & ~SHMPOOL_MSG_NONBLOCK))
		return -EINVAL;
	if (flags & SHMPOOL_MSG_NONBLOCK)
		return shmpool_ring_enqueue(r, m) ? 0 : -EAGAIN;
	ret = shmpool_ring_enqueue_wait(r, m, 1, 0, deadline);
	return ret < 0 ? ret : 0;
}

SHMPOOL_EXPORT
int shmpool_msg_receive(struct shmpool_ring *r, struct shmpool_msg *m,
			const void **ptr, unsigned int flags,
			const struct timespec *deadline)
{
	int64_t size;
	int ret;

	ret = check_ring(r);
	if (ret)
		return ret;
	if (!m || !ptr || (flags & ~SHMPOOL_MSG_NONBLOCK))
		return -EINVAL;
	if (flags & SHMPOOL_MSG_NONBLOCK) {
		if (!shmpool_ring_dequeue(r, m))
			return -EAGAIN;
	} else {
		ret = shmpool_ring_dequeue_wait(r, m, 1, 0, deadline);
		if (ret < 0)
			return ret;
	}
	/* the descriptor is untrusted: it must name an allocated block */
	size = shmpool_alloc_size(r->heap, m->off);
	if (size < 0 || !m->len || m->len > (uint64_t)size)
		return -EUCLEAN;
	*ptr = shmpool_heap_ptr(r->heap, m->off, m->len);
	return *ptr ? 0 : -EUCLEAN;
}

SHMPOOL_EXPORT
int shmpool_msg_release(struct shmpool_ring *r, const struct shmpool_msg *m)
{
	if (!r || !m)
		return -EINVAL;
	return shmpool_free(r->heap, m->off);
}
