/* lib_hostile_ring_test: a peer writes garbage or crafted values into an SPSC, MPMC or VAR ring or a message ring; the victim's calls must not crash, hang, write outside the ring, hand out memory outside it, or return undocumented errors. Also: a fork() child working a side is never taken for dead because its parent died. */
// SPDX-License-Identifier: MIT
/*
 * Each trial (selftests/hostile.h) makes a fresh pool and ring, moves a few
 * elements through it (so that indices, words and owners hold real values),
 * opens a handle, and then, as the peer, writes (a) random bytes over the
 * ring's header, (b) random bytes over the whole ring object, or (c) crafted
 * plausible values: indices one past or ahead of the other side, slot words
 * and record lengths at the limits, owners that are dead, alive or us, loan
 * entries and descriptors naming the ring itself, a canary block or
 * nothing. A forked victim then runs a seeded sequence of the ring's calls
 * (non-blocking ones, and blocking ones with a deadline of a few ms) on the
 * handle opened before the damage and, if the ring still says it is one,
 * on a handle opened after it, under the watchdog. The victim makes the
 * pool's pages outside the ring inaccessible first (guard pages; messages
 * need the heap, so they have a canary block instead), checks every result
 * against the documented errors and every pointer it gets against the
 * ring (messages: the pool, outside the ring and the canary), and exits
 * non-zero with a line on stderr otherwise. The test then checks that no
 * byte outside the ring (messages: of the canary) changed.
 *
 * Trials per test: 40 on the host (ASan 10, TSan 2), 2 on the device
 * backend inside the QEMU lanes (TCG; none on memfd there, and the
 * fork() tests run on the device only: the host covers memfd), or
 * SHMPOOL_HOSTILE_TRIALS; SHMPOOL_HOSTILE_SEED replays a failure, and
 * SHMPOOL_HOSTILE_ONLY=<part of a test's name> runs only those tests.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "shmpool.h"
#include "shmpool_alloc.h"
#include "shmpool_ring.h"
/* the 6.1 harness leaves parameters unused and defines unprototyped functions */
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wclobbered"
#include "kselftest_harness.h"
#include "lib_test.h"
#include "hostile.h"

#define POOL_BYTES	(1U << 20)
#define HOST_TRIALS	40
#define ASAN_TRIALS	10	/* the sanitizer builds fork slowly */
#define TSAN_TRIALS	2
#define VM_TRIALS	2	/* device backend; memfd runs on the host */
#define WAIT_MS		2	/* deadline of the victim's blocking calls */
#define WATCHDOG_MS	10000	/* a hang detector, not a timing assertion */
#define OPS		10	/* calls per handle per trial */
#define CANARY_BYTES	4096

enum kind { K_SPSC, K_MPMC, K_VAR, K_MSG };
enum mode { M_HEADER, M_OBJECT, M_CRAFTED };

struct trial {
	struct shmpool *p;
	struct shmpool_heap *h;
	struct shmpool_ring *r;		/* opened before the damage */
	struct shmpool_obj obj;		/* the ring object */
	struct shmpool_obj canary;	/* messages: a live block nobody may touch */
	uint64_t msgs[4];		/* messages: blocks published before the damage */
	unsigned char *base;
	size_t size;
	enum kind kind;
	uint32_t type, count, esize;
	uint32_t stride, per_group;	/* the geometry before the damage */
	uint64_t seed, rng;
	pid_t dead;			/* a process that has exited */
	char name[32];
};

static pid_t dead_pid(void)
{
	pid_t pid = fork();

	if (pid == 0)
		_exit(0);
	if (pid > 0)
		waitpid(pid, NULL, 0);
	return pid;
}

static struct __shmpool_ring_hdr *hdr_of(struct trial *t)
{
	return (struct __shmpool_ring_hdr *)(void *)(t->base + t->obj.off);
}

static unsigned char *slots_of(struct trial *t)
{
	return t->base + t->obj.off + sizeof(struct __shmpool_ring_hdr);
}

/* ---- the victim ------------------------------------------------------------------ */

#define FAIL(...) do { fprintf(stderr, "victim: " __VA_ARGS__); fputc('\n', stderr); return 1; } while (0)

static bool is_one_of(int ret, const int *ok, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (ret == ok[i])
			return true;
	return false;
}

#define ERR_OK(ret, ...) is_one_of(ret, (const int[]){ __VA_ARGS__ }, \
				   sizeof((const int[]){ __VA_ARGS__ }) / sizeof(int))

/* does [p, p + len) lie inside [lo, lo + n)? */
static bool inside(const void *p, size_t len, const void *lo, size_t n)
{
	uintptr_t a = (uintptr_t)p, b = (uintptr_t)lo;

	return a >= b && a - b <= n && len <= n - (a - b);
}

static bool overlaps(const void *p, size_t len, const void *lo, size_t n)
{
	uintptr_t a = (uintptr_t)p, b = (uintptr_t)lo;

	return a < b + n && b < a + len;
}

static unsigned char vbuf[2 * 64 * 64];	/* 2 * count elements of up to 64 bytes */

static int victim_elems(struct trial *t, struct shmpool_ring *r)
{
	struct timespec dl;
	uint32_t n, got, i;
	int ret;

	for (i = 0; i < OPS; i++) {
		n = 1 + (uint32_t)hostile_below(&t->rng, 2 * t->count);
		switch (hostile_below(&t->rng, 10)) {
		case 0:
			got = shmpool_ring_enqueue(r, vbuf);
			if (got > 1)
				FAIL("enqueue: %u", got);
			break;
		case 1:
			got = shmpool_ring_enqueue_burst(r, vbuf, n);
			if (got > n)
				FAIL("enqueue_burst(%u): %u", n, got);
			break;
		case 2:
			got = shmpool_ring_dequeue_burst(r, vbuf, n);
			if (got > n)
				FAIL("dequeue_burst(%u): %u", n, got);
			break;
		case 3:
			n = 1 + n % t->count;
			got = shmpool_ring_enqueue_bulk(r, vbuf, n);
			if (got && got != n)
				FAIL("enqueue_bulk(%u): %u", n, got);
			got = shmpool_ring_dequeue_bulk(r, vbuf, n);
			if (got && got != n)
				FAIL("dequeue_bulk(%u): %u", n, got);
			break;
		case 4:
			got = shmpool_ring_dequeue(r, vbuf);
			if (got > 1)
				FAIL("dequeue: %u", got);
			break;
		case 5:
			n = 1 + n % t->count;
			dl = after_ms(WAIT_MS);
			ret = shmpool_ring_enqueue_wait(r, vbuf, n, n & 1 ? SHMPOOL_RING_BULK : 0, &dl);
			if (ret > (int)n || (ret <= 0 && !ERR_OK(ret, -ETIMEDOUT, -EPIPE,
								-ECONNRESET, -EUCLEAN)))
				FAIL("enqueue_wait(%u): %d", n, ret);
			break;
		case 6:
			n = 1 + n % t->count;
			dl = after_ms(WAIT_MS);
			ret = shmpool_ring_dequeue_wait(r, vbuf, n, n & 1 ? SHMPOOL_RING_BULK : 0, &dl);
			if (ret > (int)n || (ret <= 0 && !ERR_OK(ret, -ETIMEDOUT, -EPIPE,
								-ECONNRESET, -EUCLEAN)))
				FAIL("dequeue_wait(%u): %d", n, ret);
			break;
		case 7:
			ret = shmpool_ring_takeover(r, n & 1 ? SHMPOOL_RING_PROD : SHMPOOL_RING_CONS);
			if (!ERR_OK(ret, 0, 1, -EBUSY))
				FAIL("takeover: %d", ret);
			break;
		case 8: {
			struct shmpool_ring_info ri;

			if (shmpool_ring_count(r) > shmpool_ring_capacity(r))
				FAIL("count %u above capacity", shmpool_ring_count(r));
			ret = shmpool_ring_inspect(t->p, t->obj.off, &ri);
			if (!ERR_OK(ret, 0, -EPROTOTYPE, -EPROTONOSUPPORT))
				FAIL("inspect: %d", ret);
			break;
		}
		default:
			if (n % 8 == 0) {
				ret = shmpool_ring_shutdown(r, n & 2 ? SHMPOOL_RING_PROD : SHMPOOL_RING_CONS);
				if (ret)
					FAIL("shutdown: %d", ret);
			}
			break;
		}
	}
	return 0;
}

static int victim_var(struct trial *t, struct shmpool_ring *r)
{
	uint32_t max = shmpool_ring_max_record(r), len, i;
	unsigned char *slots = slots_of(t);
	struct timespec dl;
	const void *cp;
	void *p;
	int ret;

	if (max != t->count / 2 - 8)
		FAIL("max_record %u", max);
	for (i = 0; i < OPS; i++) {
		switch (hostile_below(&t->rng, 5)) {
		case 0:
		case 1:
			len = (uint32_t)hostile_plausible(&t->rng, max);
			if (i & 1) {
				dl = after_ms(WAIT_MS);
				ret = shmpool_ring_reserve_wait(r, len, &p, &dl);
			} else {
				ret = shmpool_ring_reserve(r, len, &p);
			}
			if (!len || len > max) {
				if (ret != -EINVAL)
					FAIL("reserve(%u) above max %u: %d", len, max, ret);
				break;
			}
			if (!ret) {
				if (!inside(p, len, slots, t->count))
					FAIL("reserve(%u): %p outside the ring [%p, +%u)",
					     len, p, (void *)slots, t->count);
				memset(p, 0x77, len);
				shmpool_ring_commit(r);
			} else if (!ERR_OK(ret, -EAGAIN, -EUCLEAN, -ETIMEDOUT, -EPIPE,
					   -ECONNRESET)) {
				FAIL("reserve(%u): %d", len, ret);
			}
			break;
		case 2:
		case 3:
			if (i & 1) {
				dl = after_ms(WAIT_MS);
				ret = shmpool_ring_peek_wait(r, &cp, &dl);
			} else {
				ret = shmpool_ring_peek(r, &cp);
			}
			if (ret > 0) {
				if ((uint32_t)ret > max || !inside(cp, (size_t)ret, slots, t->count))
					FAIL("peek: %d bytes at %p, outside the ring [%p, +%u)",
					     ret, cp, (void *)slots, t->count);
				if (((const volatile unsigned char *)cp)[ret - 1] == 0x5a)
					vbuf[0]++;
				shmpool_ring_release(r);
			} else if (!ERR_OK(ret, -EAGAIN, -EUCLEAN, -ETIMEDOUT, -EPIPE,
					   -ECONNRESET)) {
				FAIL("peek: %d", ret);
			}
			break;
		default:
			ret = shmpool_ring_takeover(r, i & 1 ? SHMPOOL_RING_PROD : SHMPOOL_RING_CONS);
			if (!ERR_OK(ret, 0, 1, -EBUSY))
				FAIL("takeover: %d", ret);
			if (shmpool_ring_count(r) > shmpool_ring_capacity(r))
				FAIL("count above capacity");
			break;
		}
	}
	return 0;
}

/* a message's payload must be in the pool, outside the ring and the canary */
static int check_payload(struct trial *t, const void *p, size_t len, const char *what)
{
	if (!inside(p, len, t->base, t->size) ||
	    overlaps(p, len, t->base + t->obj.off, t->obj.size) ||
	    overlaps(p, len, t->base + t->canary.off, t->canary.size))
		FAIL("%s: %zu bytes at offset %td: not a message block", what, len,
		     (const unsigned char *)p - t->base);
	return 0;
}

static int victim_msg(struct trial *t, struct shmpool_ring *r)
{
	struct shmpool_msg m;
	struct timespec dl;
	const void *cp;
	uint32_t i;
	size_t len;
	void *p;
	int ret;

	for (i = 0; i < OPS; i++) {
		switch (hostile_below(&t->rng, 4)) {
		case 0:
			len = 1 + hostile_below(&t->rng, 256);
			ret = shmpool_msg_loan(r, len, &p, &m);
			if (ret) {
				if (ret != -ENOMEM)
					FAIL("loan: %d", ret);
				break;
			}
			if (check_payload(t, p, len, "loan"))
				return 1;
			memset(p, 0x42, len);
			dl = after_ms(WAIT_MS);
			ret = shmpool_msg_publish(r, &m, i & 1 ? SHMPOOL_MSG_NONBLOCK : 0, &dl);
			if (ret) {
				if (!ERR_OK(ret, -EAGAIN, -ETIMEDOUT, -EPIPE, -ECONNRESET, -EUCLEAN))
					FAIL("publish: %d", ret);
				ret = shmpool_msg_release(r, &m);
				if (ret)
					FAIL("release of an unpublished loan: %d", ret);
			}
			break;
		case 1:
		case 2:
			dl = after_ms(WAIT_MS);
			ret = shmpool_msg_receive(r, &m, &cp, i & 1 ? SHMPOOL_MSG_NONBLOCK : 0, &dl);
			if (ret) {
				if (!ERR_OK(ret, -EAGAIN, -ETIMEDOUT, -EPIPE, -ECONNRESET, -EUCLEAN))
					FAIL("receive: %d", ret);
				break;
			}
			if (check_payload(t, cp, m.len, "receive"))
				return 1;
			if (((const volatile unsigned char *)cp)[m.len - 1] == 0x5a)
				vbuf[0]++;
			ret = shmpool_msg_release(r, &m);
			if (!ERR_OK(ret, 0, -EINVAL))
				FAIL("release: %d", ret);
			break;
		default:
			ret = shmpool_msg_reclaim(r);
			if (ret < 0)
				FAIL("reclaim: %d", ret);
			break;
		}
	}
	return 0;
}

static int victim_ops(struct trial *t, struct shmpool_ring *r)
{
	switch (t->kind) {
	case K_VAR:
		return victim_var(t, r);
	case K_MSG:
		return victim_msg(t, r);
	default:
		return victim_elems(t, r);
	}
}

static int victim(void *arg)
{
	struct trial *t = arg;
	struct shmpool_ring *r2 = NULL;
	int ret;

	/* a handle opened after the damage, if the ring still says it is one */
	if (atomic_load_explicit(&hdr_of(t)->d.magic, memory_order_relaxed) ==
	    __SHMPOOL_RING_MAGIC) {
		ret = shmpool_ring_open(t->h, t->name, t->type, t->esize, &r2);
		if (!ERR_OK(ret, 0, -EUCLEAN, -EPROTONOSUPPORT, -EPROTOTYPE))
			FAIL("open after the damage: %d", ret);
	}
	/* everything but the ring faults from now on (messages need the heap) */
	if (t->kind != K_MSG) {
		ret = hostile_guard(t->base, t->size, t->obj.off, t->obj.size);
		if (ret)
			FAIL("guard: %d", ret);
	}
	if (victim_ops(t, t->r))
		return 1;
	if (r2 && victim_ops(t, r2))
		return 1;
	shmpool_ring_close(r2);
	shmpool_ring_close(t->r);
	return 0;
}

/* ---- the peer -------------------------------------------------------------------- */

static void put32(void *p, uint64_t v)
{
	uint32_t x = (uint32_t)v;

	memcpy(p, &x, 4);
}

static uint32_t get32(const void *p)
{
	uint32_t x;

	memcpy(&x, p, 4);
	return x;
}

/* an owner: dead, alive (us, the victim's parent), init, or anything */
static uint32_t craft_owner(struct trial *t)
{
	switch (hostile_below(&t->rng, 4)) {
	case 0: return (uint32_t)t->dead;
	case 1: return (uint32_t)getpid();
	case 2: return 1;
	default: return (uint32_t)hostile_next(&t->rng);
	}
}

static void craft_one(struct trial *t)
{
	struct __shmpool_ring_hdr *hd = hdr_of(t);
	unsigned char *slots = slots_of(t);
	uint32_t count = t->count, stride = t->stride, per = t->per_group;
	uint32_t pt = get32(&hd->prod.tail), ct = get32(&hd->cons.tail);
	uint32_t ph = get32(&hd->prod.head), ch = get32(&hd->cons.head);
	struct __shmpool_ring_ht *ht = hostile_below(&t->rng, 2) ? &hd->prod : &hd->cons;
	uint32_t k = (uint32_t)hostile_below(&t->rng, count);
	unsigned char *w;

	switch (hostile_below(&t->rng, 12)) {
	case 0:	/* the producer ahead of the consumer */
		put32(&hd->prod.tail, ct + hostile_plausible(&t->rng, count));
		put32(&hd->prod.head, ch + hostile_plausible(&t->rng, count));
		break;
	case 1:	/* the consumer ahead of the producer */
		put32(&hd->cons.tail, pt + hostile_plausible(&t->rng, count));
		put32(&hd->cons.head, ph + hostile_plausible(&t->rng, count));
		break;
	case 2:	/* one past, one short */
		put32(&ht->tail, get32(&ht->tail) + (hostile_below(&t->rng, 2) ? 1 : -1));
		put32(&ht->head, get32(&ht->head) + (hostile_below(&t->rng, 2) ? 1 : -1));
		break;
	case 3:	/* an index anywhere */
		put32(hostile_below(&t->rng, 2) ? (void *)&ht->tail : (void *)&ht->head,
		      hostile_plausible(&t->rng, count));
		break;
	case 4:	/* slot words, record lengths */
		if (t->kind == K_VAR) {
			/* a length at the limits where the consumer reads next, or anywhere */
			uint32_t at = hostile_below(&t->rng, 2) ? ct & (count - 1) :
				      (uint32_t)hostile_below(&t->rng, count / 8) * 8;

			put32(slots + at, hostile_below(&t->rng, 4) ? hostile_plausible(&t->rng, count / 2 - 8) :
					    __SHMPOOL_VAR_PAD);
		} else if (t->kind == K_SPSC || (t->kind == K_MSG && t->type == SHMPOOL_RING_SPSC)) {
			w = slots + (size_t)(k / per) * stride + stride - 8 +
			    4 * hostile_below(&t->rng, 2);
			put32(w, hostile_below(&t->rng, 2) ? pt + hostile_plausible(&t->rng, count) :
				 hostile_plausible(&t->rng, count));
		} else {
			w = slots + (size_t)k * stride;
			switch (hostile_below(&t->rng, 4)) {
			case 0: put32(w, get32(w) + 1); break;
			case 1: put32(w, get32(w) + count); break;
			case 2: put32(w, ph + hostile_plausible(&t->rng, count)); break;
			default: put32(w, hostile_plausible(&t->rng, count)); break;
			}
		}
		break;
	case 5:	/* a record of reserved slots */
		k %= __SHMPOOL_RING_RECS;
		put32(&ht->rec[k].owner, craft_owner(t));
		put32(&ht->rec[k].start, get32(&ht->head) - hostile_plausible(&t->rng, count));
		put32(&ht->rec[k].len, hostile_plausible(&t->rng, count));
		break;
	case 6:	/* owners */
		put32(&ht->owner, craft_owner(t));
		put32(&ht->untracked, hostile_below(&t->rng, 2) ? 0 : hostile_plausible(&t->rng, 8));
		break;
	case 7:	/* shutdown bits, event words */
		put32(&hd->ev.shut, hostile_below(&t->rng, 4));
		put32(&hd->ev.data.word, hostile_next(&t->rng));
		put32(&hd->ev.space.word, hostile_next(&t->rng));
		break;
	case 8: {	/* the description: only a handle opened after this may see it */
		uint32_t *f = (uint32_t *)(void *)&hd->d;
		unsigned int i = 1 + (unsigned int)hostile_below(&t->rng, 9);

		put32(&f[i], hostile_plausible(&t->rng, f[i]));
		break;
	}
	case 9:
	case 10:	/* messages: a loan entry, a descriptor */
		if (t->kind == K_MSG) {
			struct __shmpool_msg_loan *e = t->r->loans +
				hostile_below(&t->rng, __SHMPOOL_MSG_LOANS);
			uint64_t offs[] = { t->canary.off, t->canary.off + 16, t->obj.off,
					    t->obj.off + 16, t->msgs[k % 4], t->msgs[k % 4] - 16,
					    hostile_plausible(&t->rng, t->size) };
			uint64_t off = offs[hostile_below(&t->rng, 7)];
			struct shmpool_msg m = { off, hostile_plausible(&t->rng, 256) };

			if (hostile_below(&t->rng, 2)) {
				put32(&e->owner, craft_owner(t));
				put32(&e->state, hostile_below(&t->rng, 5));
				memcpy(&e->off, &off, 8);
			} else if (t->type == SHMPOOL_RING_SPSC) {
				/* the element at the consumer's index */
				uint32_t s = ct & (count - 1);

				memcpy(slots + (size_t)(s / per) * stride +
				       (size_t)(s % per) * 16, &m, 16);
			} else {
				memcpy(slots + (size_t)(ch & (count - 1)) * stride + 8, &m, 16);
			}
			break;
		}
		/* fall through */
	default:	/* a random word of the object */
		put32(t->base + t->obj.off + 4 * hostile_below(&t->rng, t->obj.size / 4),
		      hostile_plausible(&t->rng, count));
		break;
	}
}

static void damage(struct trial *t, enum mode mode)
{
	unsigned int i, n;

	switch (mode) {
	case M_HEADER:
		hostile_fill(&t->rng, hdr_of(t), sizeof(struct __shmpool_ring_hdr));
		break;
	case M_OBJECT:
		hostile_fill(&t->rng, hdr_of(t), t->obj.size);
		break;
	case M_CRAFTED:
		n = 1 + (unsigned int)hostile_below(&t->rng, 4);
		for (i = 0; i < n; i++)
			craft_one(t);
		break;
	}
}

/* a fresh pool and ring with some history: 0, or a line in @why */
static int setup(struct trial *t, unsigned int backend, enum kind kind, char *why)
{
	static const uint32_t esizes[] = { 8, 12, 16, 24, 64 };
	unsigned char buf[64 * 64] = { 0 };
	struct shmpool_msg m;
	uint32_t i, n, flags = 0;
	const void *cp;
	void *p;
	int ret;

	t->kind = kind;
	t->count = 64;
	t->esize = esizes[hostile_below(&t->rng, 5)];
	switch (kind) {
	case K_SPSC:
		t->type = SHMPOOL_RING_SPSC;
		break;
	case K_MPMC:
		t->type = SHMPOOL_RING_MPMC;
		flags = (uint32_t)hostile_below(&t->rng, 4);
		break;
	case K_VAR:
		t->type = SHMPOOL_RING_VAR;
		t->count = 1024;
		t->esize = 8;
		break;
	case K_MSG:
		t->type = hostile_below(&t->rng, 2) ? SHMPOOL_RING_SPSC : SHMPOOL_RING_MPMC;
		t->count = 16;
		t->esize = sizeof(struct shmpool_msg);
		break;
	}
	snprintf(t->name, sizeof(t->name), "hostile.%d", (int)getpid());
	ret = shmpool_create_anon(POOL_BYTES, backend, &t->p);
	if (!ret)
		ret = shmpool_heap_open(t->p, 0, &t->h);
	if (ret) {
		snprintf(why, 96, "pool: %d", ret);
		return -1;
	}
	t->base = shmpool_base(t->p);
	t->size = shmpool_size(t->p);
	ret = shmpool_ring_create(t->h, t->name, t->type, t->count, t->esize, flags, &t->r);
	if (ret == 1)
		ret = shmpool_obj_find(t->h, t->name, &t->obj);
	if (!ret && kind == K_MSG) {
		ret = shmpool_obj_create(t->h, "canary", CANARY_BYTES, 64, &t->canary);
		ret = ret == 1 ? 0 : ret ? ret : -EEXIST;
	}
	if (ret) {
		snprintf(why, 96, "ring: %d", ret);
		return -1;
	}
	t->stride = hdr_of(t)->d.stride;
	t->per_group = hdr_of(t)->d.per_group;
	/* history: indices away from 0, owners recorded, some elements in */
	n = (uint32_t)hostile_below(&t->rng, 3 * t->count);
	for (i = 0; i < n; i++) {
		switch (kind) {
		case K_VAR:
			if (!shmpool_ring_reserve(t->r, 1 + (uint32_t)hostile_below(&t->rng, 200), &p))
				shmpool_ring_commit(t->r);
			if (i % 3 && shmpool_ring_peek(t->r, &cp) > 0)
				shmpool_ring_release(t->r);
			break;
		case K_MSG:
			if (i < 4) {
				if (shmpool_msg_loan(t->r, 64, &p, &m))
					break;
				memset(p, 0x33, 64);
				t->msgs[i] = m.off;
				shmpool_msg_publish(t->r, &m, SHMPOOL_MSG_NONBLOCK, NULL);
			}
			break;
		default:
			shmpool_ring_enqueue_burst(t->r, buf, 1 + (uint32_t)hostile_below(&t->rng, 8));
			shmpool_ring_dequeue_burst(t->r, buf, 1 + (uint32_t)hostile_below(&t->rng, 8));
			break;
		}
	}
	if (kind == K_MSG)
		memset(t->base + t->canary.off, 0x5a, CANARY_BYTES);
	return 0;
}

static void teardown(struct trial *t)
{
	shmpool_ring_close(t->r);
	shmpool_heap_close(t->h);
	shmpool_close(t->p);
	t->r = NULL;
	t->h = NULL;
	t->p = NULL;
}

/*
 * One trial: 0, or -1 with the reason in @why (at least 200 bytes).
 */
static int one_trial(unsigned int backend, enum kind kind, enum mode mode,
		     uint64_t seed, pid_t dead, char *why)
{
	struct trial t = { .seed = seed, .rng = seed, .dead = dead };
	unsigned char *snap;
	long at;
	int ret;

	if (setup(&t, backend, kind, why)) {
		teardown(&t);
		return -1;
	}
	damage(&t, mode);
	snap = hostile_snapshot(t.base, t.size);
	if (!snap) {
		snprintf(why, 96, "snapshot: no memory");
		teardown(&t);
		return -1;
	}
	ret = hostile_run(victim, &t, (unsigned int)(WATCHDOG_MS * scale()), seed, why);
	if (!ret) {
		if (kind == K_MSG)
			at = memcmp(t.base + t.canary.off, snap + t.canary.off, CANARY_BYTES) ?
			     (long)t.canary.off : -1;
		else
			at = hostile_changed_outside(t.base, snap, t.size, t.obj.off, t.obj.size);
		if (at >= 0) {
			snprintf(why, 200, "byte at pool offset %ld changed outside the ring "
				 "[%llu, +%llu), seed 0x%llx", at, (unsigned long long)t.obj.off,
				 (unsigned long long)t.obj.size, (unsigned long long)seed);
			ret = -1;
		}
	}
	free(snap);
	teardown(&t);
	return ret;
}

/* ---- tests ----------------------------------------------------------------------- */

FIXTURE(hring) {
	pid_t dead;
};

FIXTURE_VARIANT(hring) {
	unsigned int backend;
};

FIXTURE_VARIANT_ADD(hring, memfd) {
	.backend = SHMPOOL_BACKEND_MEMFD,
};

FIXTURE_VARIANT_ADD(hring, device) {
	.backend = SHMPOOL_BACKEND_DEVICE,
};

FIXTURE_SETUP(hring)
{
	/* 6.1's harness would still run the test after SKIP() here */
	if (variant->backend == SHMPOOL_BACKEND_DEVICE && !device_ok())
		SKIP(longjmp(_metadata->env, 1), DEV_PATH " not available");
	SKIP_MEMFD_IN_DEVICE_LANE(variant->backend);
	self->dead = dead_pid();
	ASSERT_LT(0, self->dead);
}

FIXTURE_TEARDOWN(hring)
{
}

static unsigned int default_trials(unsigned int backend)
{
	if (in_vm_lane())
		return backend == SHMPOOL_BACKEND_DEVICE ? VM_TRIALS : 0;
#if defined(UNDER_TSAN)
	return TSAN_TRIALS;
#elif defined(__SANITIZE_ADDRESS__)
	return ASAN_TRIALS;
#else
	return HOST_TRIALS;
#endif
}

/*
 * SHMPOOL_HOSTILE_ONLY=<part of a test name>: run only those (to replay
 * one; this harness has no -t).
 */
static bool selected(const char *name)
{
	const char *s = getenv("SHMPOOL_HOSTILE_ONLY");

	return !s || !*s || strstr(name, s);
}

static void run_trials(struct __test_metadata *_metadata, unsigned int backend,
		       enum kind kind, enum mode mode, pid_t dead)
{
	unsigned int i, n = hostile_trials(default_trials(backend));
	/* each kind and mode its own seeds, replayable with SHMPOOL_HOSTILE_SEED */
	uint64_t seed = hostile_seed() + ((uint64_t)kind << 40) + ((uint64_t)mode << 32);
	char why[200];

	if (!selected(_metadata->name))
		SKIP(return, "not in SHMPOOL_HOSTILE_ONLY");
	if (!n)
		SKIP(return, "memfd: run on the host");
	for (i = 0; i < n; i++) {
		if (one_trial(backend, kind, mode, seed + i, dead, why)) {
			TH_LOG("trial %u of %u: %s (replay: SHMPOOL_HOSTILE_SEED=0x%llx "
			       "SHMPOOL_HOSTILE_TRIALS=1)", i, n, why,
			       (unsigned long long)(seed + i - ((uint64_t)kind << 40) -
						    ((uint64_t)mode << 32)));
			ASSERT_TRUE(false);
		}
	}
}

#define HOSTILE_TEST(tname, kind, mode)						\
TEST_F_TIMEOUT(hring, tname, 300)						\
{										\
	run_trials(_metadata, variant->backend, kind, mode, self->dead);	\
}

HOSTILE_TEST(spsc_header_garbage, K_SPSC, M_HEADER)
HOSTILE_TEST(spsc_object_garbage, K_SPSC, M_OBJECT)
HOSTILE_TEST(spsc_crafted_values, K_SPSC, M_CRAFTED)
HOSTILE_TEST(mpmc_header_garbage, K_MPMC, M_HEADER)
HOSTILE_TEST(mpmc_object_garbage, K_MPMC, M_OBJECT)
HOSTILE_TEST(mpmc_crafted_values, K_MPMC, M_CRAFTED)
HOSTILE_TEST(var_header_garbage, K_VAR, M_HEADER)
HOSTILE_TEST(var_object_garbage, K_VAR, M_OBJECT)
HOSTILE_TEST(var_crafted_values, K_VAR, M_CRAFTED)
HOSTILE_TEST(msg_header_garbage, K_MSG, M_HEADER)
HOSTILE_TEST(msg_object_garbage, K_MSG, M_OBJECT)
HOSTILE_TEST(msg_crafted_values, K_MSG, M_CRAFTED)

/*
 * Not a hostile peer, but the same question: who is taken for dead. A
 * process M opens a ring (and, with @used, enqueues on it), forks C and
 * exits; C goes on producing through the inherited handle. C must be
 * recorded as itself at its first call after the fork, blocking or not, so
 * that a consumer blocked on the empty ring waits for C's elements instead
 * of reporting the producer dead (-ECONNRESET) because M died.
 */
static int orphan_producer(struct shmpool_heap *h, const char *name, uint32_t type,
			   int used, _Atomic int *second)
{
	struct shmpool_ring *r;
	uint64_t v = 1;
	pid_t m = getpid(), c;

	if (shmpool_ring_open(h, name, type, 8, &r))
		return 1;
	if (used && shmpool_ring_enqueue(r, &v) != 1)
		return 2;
	c = fork();
	if (c < 0)
		return 3;
	if (c > 0)
		return 0;	/* M exits: C's parent is dead */
	while (getppid() == m)
		usleep(1000);
	v = 2;
	if (shmpool_ring_enqueue(r, &v) != 1)
		_exit(4);
	atomic_store(second, 1);
	/* the consumer now waits, and looks at the producer's owner meanwhile */
	usleep(150000);
	v = 3;
	_exit(shmpool_ring_enqueue(r, &v) == 1 ? 0 : 5);
}

static void orphan_case(struct __test_metadata *_metadata, unsigned int backend,
			uint32_t type, int used)
{
	struct shmpool_ring *r;
	struct shmpool_heap *h;
	struct shmpool *p;
	_Atomic int *second;
	struct timespec dl;
	uint64_t v, want, end;
	int status, ret;
	pid_t m;

	if (!selected(_metadata->name))
		SKIP(return, "not in SHMPOOL_HOSTILE_ONLY");
	if (in_vm_lane() && backend != SHMPOOL_BACKEND_DEVICE)
		SKIP(return, "memfd: run on the host");
	second = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, second);
	ASSERT_EQ(0, shmpool_create_anon(POOL_BYTES, backend, &p));
	ASSERT_EQ(0, shmpool_heap_open(p, 0, &h));
	ASSERT_EQ(1, shmpool_ring_create(h, "orphan", type, 16, 8, 0, &r));
	m = fork();
	ASSERT_LE(0, m);
	if (m == 0)
		_exit(orphan_producer(h, "orphan", type, used, second));
	ASSERT_EQ(m, waitpid(m, &status, 0));
	ASSERT_EQ(0, status);
	/*
	 * Until C's first call the side's owner is M, dead: a consumer that
	 * looked then would rightly be told so. Wait for C's first element.
	 */
	end = now_ms() + (uint64_t)(10000 * scale());
	while (!atomic_load(second) && now_ms() < end)
		usleep(1000);
	ASSERT_TRUE(atomic_load(second));
	for (want = used ? 1 : 2; want <= 3; want++) {
		dl = after_ms((long)(10000 * scale()));
		ret = shmpool_ring_dequeue_wait(r, &v, 1, 0, &dl);
		if (ret != 1)
			TH_LOG("waiting for element %llu: %d (%s)", (unsigned long long)want,
			       ret, strerror(-ret));
		ASSERT_EQ(1, ret);
		ASSERT_EQ(want, v);
	}
	shmpool_ring_close(r);
	shmpool_heap_close(h);
	shmpool_close(p);
	munmap((void *)second, 4096);
}

TEST_F_TIMEOUT(hring, spsc_child_of_dead_parent_not_taken_for_dead, 60)
{
	orphan_case(_metadata, variant->backend, SHMPOOL_RING_SPSC, 1);
}

TEST_F_TIMEOUT(hring, spsc_child_of_dead_opener_not_taken_for_dead, 60)
{
	orphan_case(_metadata, variant->backend, SHMPOOL_RING_SPSC, 0);
}

TEST_F_TIMEOUT(hring, mpmc_child_of_dead_parent_not_taken_for_dead, 60)
{
	orphan_case(_metadata, variant->backend, SHMPOOL_RING_MPMC, 1);
}

TEST_F_TIMEOUT(hring, mpmc_child_of_dead_opener_not_taken_for_dead, 60)
{
	orphan_case(_metadata, variant->backend, SHMPOOL_RING_MPMC, 0);
}

TEST_HARNESS_MAIN
