// SPDX-License-Identifier: MIT
/*
 * ring_bench: shmpool rings against DPDK's rte_ring and Concurrency Kit's
 * ck_ring, cross-process, 8-byte elements, all in MAP_SHARED memory of the
 * same kind (a memfd: shmpool's pool on the memfd backend, or the device's
 * pool when /dev/shmpool is there; the peers in a memfd mapping).
 *
 * Throughput: side 1 produces, side 0 consumes and is timed; both spin on the
 * non-blocking calls (no sleeper, so shmpool makes no wake syscall: see the
 * syscalls column). Single = one element per call; burst-32 = up to 32 per
 * call; MP/MC 1P+1C = one producer and one consumer through the
 * multi-producer/multi-consumer code path (BENCHMARKING.md: four spinning
 * processes on two CPUs would measure the scheduler).
 *
 * Latency: one-way = half a spinning ping-pong through two SPSC rings. The
 * zero-copy row sends a 64-byte message (shmpool_msg loan/publish, receive/
 * release) each way; its peer is a Unix socket pair doing the same with
 * copies and blocking reads.
 *
 * rte_ring is compiled in only with -DHAVE_RTE_RING and DPDK's flags
 * (pkg-config libdpdk, -lrte_ring -lrte_eal); rte_ring_init() on caller
 * memory needs no rte_eal_init(). Without it the rows compare with ck_ring.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ck_ring.h>
#ifdef HAVE_RTE_RING
#include <rte_ring.h>
#endif

#include <shmpool.h>
#include <shmpool_alloc.h>
#include <shmpool_ring.h>

#include "bench.h"

#define ITERS		20000000ULL	/* elements per throughput run, at most */
#define LAT_ITERS	2000000ULL	/* ping-pongs per latency run, at most */
#define SLOTS		1024		/* every ring's size */
#define BURST		32

/* ---- the contenders' state, all in shared memory ---------------------------------- */

struct ck_pair {
	struct ck_ring ring;
	struct ck_ring_buffer buf[SLOTS];
};

struct rings {
	struct shmpool *pool;
	struct shmpool_heap *heap;
	struct shmpool_ring *spsc[2], *mpmc, *msg[2];
	struct ck_pair *ck[2], *ckm;
#ifdef HAVE_RTE_RING
	struct rte_ring *rte[2], *rtem;
#endif
};

static struct rings R;

static void *memfd_map(size_t len)
{
	int fd = memfd_create("ring_bench", MFD_CLOEXEC);
	void *p;

	if (fd < 0 || ftruncate(fd, (off_t)len))
		bench_die("memfd", errno);
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		bench_die("mmap", errno);
	close(fd);
	return p;
}

/* reset one shmpool ring's shared indices (no process is using it) */
static void shm_reset_one(struct shmpool_ring *r)
{
	struct __shmpool_ring_hdr *h = r->hdr;

	atomic_store(&h->prod.head, 0);
	atomic_store(&h->prod.tail, 0);
	atomic_store(&h->cons.head, 0);
	atomic_store(&h->cons.tail, 0);
	r->cons_cache = r->prod_cache = 0;
}

static void reset_all(void *arg)
{
	(void)arg;
	shm_reset_one(R.spsc[0]);
	shm_reset_one(R.spsc[1]);
	shm_reset_one(R.mpmc);
	shm_reset_one(R.msg[0]);
	shm_reset_one(R.msg[1]);
	ck_ring_init(&R.ck[0]->ring, SLOTS);
	ck_ring_init(&R.ck[1]->ring, SLOTS);
	ck_ring_init(&R.ckm->ring, SLOTS);
#ifdef HAVE_RTE_RING
	rte_ring_reset(R.rte[0]);
	rte_ring_reset(R.rte[1]);
	rte_ring_reset(R.rtem);
#endif
}

static void check_sum(uint64_t sum, uint64_t iters)
{
	if (sum != iters * (iters - 1) / 2) {
		fprintf(stderr, "error: elements lost or corrupted\n");
		exit(1);
	}
}

/* ---- throughput ------------------------------------------------------------------- */

/*
 * One loop per contender and mode, generated, so that each is fully inlined
 * as its users would have it. ENQ(v) / DEQ(&v) move one element and are
 * true on success; ENQN(a, n) / DEQN(a, n) return how many moved.
 */
#define SINGLE_CASE(fname, ENQ, DEQ)						\
static void fname(void *arg, int side, uint64_t iters)			\
{										\
	uint64_t i, v, sum = 0;							\
										\
	(void)arg;								\
	if (side == 1) {							\
		for (i = 0; i < iters; i++)					\
			while (!(ENQ(i)))					\
				;						\
		return;								\
	}									\
	for (i = 0; i < iters; i++) {						\
		while (!(DEQ(&v)))						\
			;							\
		sum += v;							\
	}									\
	check_sum(sum, iters);							\
}

#define BURST_CASE(fname, ENQN, DEQN)						\
static void fname(void *arg, int side, uint64_t iters)			\
{										\
	uint64_t a[BURST], i = 0, sum = 0;					\
	unsigned int k, n;							\
										\
	(void)arg;								\
	if (side == 1) {							\
		while (i < iters) {						\
			n = iters - i < BURST ? (unsigned int)(iters - i) : BURST; \
			for (k = 0; k < n; k++)					\
				a[k] = i + k;					\
			i += ENQN(a, n);					\
		}								\
		return;								\
	}									\
	while (i < iters) {							\
		n = DEQN(a, BURST);						\
		for (k = 0; k < n; k++)						\
			sum += a[k];						\
		i += n;								\
	}									\
	check_sum(sum, iters);							\
}

#define SHM_ENQ(v)	({ uint64_t _v = (v); shmpool_ring_enqueue(R.spsc[0], &_v); })
#define SHM_DEQ(p)	shmpool_ring_dequeue(R.spsc[0], p)
#define SHM_ENQN(a, n)	shmpool_ring_enqueue_burst(R.spsc[0], a, n)
#define SHM_DEQN(a, n)	shmpool_ring_dequeue_burst(R.spsc[0], a, n)
#define SHMM_ENQ(v)	({ uint64_t _v = (v); shmpool_ring_enqueue(R.mpmc, &_v); })
#define SHMM_DEQ(p)	shmpool_ring_dequeue(R.mpmc, p)
#define CK_ENQ(v)	ck_ring_enqueue_spsc(&R.ck[0]->ring, R.ck[0]->buf, (void *)(uintptr_t)(v))
#define CK_DEQ(p)	ck_ring_dequeue_spsc(&R.ck[0]->ring, R.ck[0]->buf, p)
#define CKM_ENQ(v)	ck_ring_enqueue_mpmc(&R.ckm->ring, R.ckm->buf, (void *)(uintptr_t)(v))
#define CKM_DEQ(p)	ck_ring_dequeue_mpmc(&R.ckm->ring, R.ckm->buf, p)

SINGLE_CASE(shm_single, SHM_ENQ, SHM_DEQ)
BURST_CASE(shm_burst, SHM_ENQN, SHM_DEQN)
SINGLE_CASE(shmm_single, SHMM_ENQ, SHMM_DEQ)
SINGLE_CASE(ck_single, CK_ENQ, CK_DEQ)
SINGLE_CASE(ckm_single, CKM_ENQ, CKM_DEQ)

#ifdef HAVE_RTE_RING
#define RTE_ENQ(v)	(rte_ring_sp_enqueue(R.rte[0], (void *)(uintptr_t)(v)) == 0)
#define RTE_DEQ(p)	(rte_ring_sc_dequeue(R.rte[0], (void **)(p)) == 0)
#define RTE_ENQN(a, n)	rte_ring_sp_enqueue_burst(R.rte[0], (void *const *)(a), n, NULL)
#define RTE_DEQN(a, n)	rte_ring_sc_dequeue_burst(R.rte[0], (void **)(a), n, NULL)
#define RTEM_ENQ(v)	(rte_ring_mp_enqueue(R.rtem, (void *)(uintptr_t)(v)) == 0)
#define RTEM_DEQ(p)	(rte_ring_mc_dequeue(R.rtem, (void **)(p)) == 0)
SINGLE_CASE(rte_single, RTE_ENQ, RTE_DEQ)
BURST_CASE(rte_burst, RTE_ENQN, RTE_DEQN)
SINGLE_CASE(rtem_single, RTEM_ENQ, RTEM_DEQ)
#endif

/* ---- one-way latency: half a spinning ping-pong through two SPSC rings ------------ */

#define PINGPONG_CASE(fname, ENQ, DEQ)						\
static void fname(void *arg, int side, uint64_t iters)			\
{										\
	uint64_t i, v, t0 = bench_now_ns();					\
										\
	(void)arg;								\
	for (i = 0; i < iters; i++) {						\
		if (side == 0) {						\
			while (!(ENQ(0, i)))					\
				;						\
			while (!(DEQ(1, &v)))					\
				;						\
		} else {							\
			while (!(DEQ(0, &v)))					\
				;						\
			while (!(ENQ(1, v)))					\
				;						\
		}								\
	}									\
	if (side == 0)								\
		bench_set_result_ns((bench_now_ns() - t0) / 2);			\
}

#define SHP_ENQ(k, v)	({ uint64_t _v = (v); shmpool_ring_enqueue(R.spsc[k], &_v); })
#define SHP_DEQ(k, p)	shmpool_ring_dequeue(R.spsc[k], p)
#define CKP_ENQ(k, v)	ck_ring_enqueue_spsc(&R.ck[k]->ring, R.ck[k]->buf, (void *)(uintptr_t)(v))
#define CKP_DEQ(k, p)	ck_ring_dequeue_spsc(&R.ck[k]->ring, R.ck[k]->buf, p)
PINGPONG_CASE(shm_pingpong, SHP_ENQ, SHP_DEQ)
PINGPONG_CASE(ck_pingpong, CKP_ENQ, CKP_DEQ)
#ifdef HAVE_RTE_RING
#define RTEP_ENQ(k, v)	(rte_ring_sp_enqueue(R.rte[k], (void *)(uintptr_t)(v)) == 0)
#define RTEP_DEQ(k, p)	(rte_ring_sc_dequeue(R.rte[k], (void **)(p)) == 0)
PINGPONG_CASE(rte_pingpong, RTEP_ENQ, RTEP_DEQ)
#endif

/* receive one message on R.msg[@k] (spinning), read its last word, release it */
static uint64_t msg_take(int k)
{
	struct shmpool_msg m;
	const void *q;
	uint64_t x;
	int ret;

	while ((ret = shmpool_msg_receive(R.msg[k], &m, &q, SHMPOOL_MSG_NONBLOCK,
					  NULL)) == -EAGAIN)
		;
	if (ret)
		bench_die("msg receive", -ret);
	x = ((const uint64_t *)q)[7];
	shmpool_msg_release(R.msg[k], &m);
	return x;
}

/* 64-byte zero-copy messages each way: loan, fill, publish / receive, read, release */
static void msg_pingpong(void *arg, int side, uint64_t iters)
{
	uint64_t i, t0 = bench_now_ns(), x = 0;
	struct shmpool_msg m;
	void *p;
	int ret;

	(void)arg;
	for (i = 0; i < iters; i++) {
		if (side == 1)
			x += msg_take(0);
		if ((ret = shmpool_msg_loan(R.msg[side], 64, &p, &m)))
			bench_die("msg loan", -ret);
		memset(p, (int)i, 64);
		while (shmpool_msg_publish(R.msg[side], &m, SHMPOOL_MSG_NONBLOCK,
					   NULL) == -EAGAIN)
			;
		if (side == 0)
			x += msg_take(1);
	}
	if (side == 0)
		bench_set_result_ns((bench_now_ns() - t0) / 2);
	if (x == 1)	/* keeps the reads */
		fprintf(stderr, "\n");
}

static int sock[2];

/* 64 bytes each way over a Unix stream socket pair, blocking reads */
static void sock_pingpong(void *arg, int side, uint64_t iters)
{
	uint64_t i, t0 = bench_now_ns();
	char buf[64];
	int fd = sock[side];

	(void)arg;
	memset(buf, 1, sizeof(buf));
	for (i = 0; i < iters; i++) {
		if (side == 1 && read(fd, buf, 64) != 64)
			bench_die("socket read", errno);
		if (write(fd, buf, 64) != 64)
			bench_die("socket write", errno);
		if (side == 0 && read(fd, buf, 64) != 64)
			bench_die("socket read", errno);
	}
	if (side == 0)
		bench_set_result_ns((bench_now_ns() - t0) / 2);
}

/* ---- setup ------------------------------------------------------------------------- */

static struct shmpool_ring *shm_ring(const char *name, uint32_t type,
				     uint32_t esize, unsigned int flags)
{
	struct shmpool_ring *r;
	int ret = shmpool_ring_create(R.heap, name, type, SLOTS, esize, flags, &r);

	if (ret < 0)
		bench_die(name, -ret);
	return r;
}

#ifdef HAVE_RTE_RING
static struct rte_ring *rte_ring_in(void *mem, const char *name, unsigned int flags)
{
	int ret = rte_ring_init(mem, name, SLOTS, flags);

	if (ret)
		bench_die("rte_ring_init", -ret);
	return mem;
}
#endif

int main(int argc, char **argv)
{
	struct bench_case tp[8], lat[6];
	struct bench_table t = {
		.title = "ring throughput between two processes, 8-byte elements, spinning",
		.op = "one element from producer to consumer",
		.unit = "ns",
		.cases = tp,
	};
	struct bench_table l = {
		.title = "one-way latency between two processes, spinning receivers",
		.op = "one way (half a ping-pong)",
		.unit = "ns",
		.cases = lat,
	};
	const char *peer_s, *peer_b, *peer_m, *peer_l;
	char *mem;
	int n = 0, ret;

	bench_init(argc, argv, "Prints shmpool ring throughput and latency against rte_ring and ck_ring.\n");

	ret = shmpool_create_anon(4 << 20, 0, &R.pool);
	if (ret)
		bench_die("shmpool_create_anon", -ret);
	ret = shmpool_heap_open(R.pool, 0, &R.heap);
	if (ret)
		bench_die("shmpool_heap_open", -ret);
	R.spsc[0] = shm_ring("spsc0", SHMPOOL_RING_SPSC, 8, 0);
	R.spsc[1] = shm_ring("spsc1", SHMPOOL_RING_SPSC, 8, 0);
	R.mpmc = shm_ring("mpmc", SHMPOOL_RING_MPMC, 8, 0);
	R.msg[0] = shm_ring("msg0", SHMPOOL_RING_SPSC, sizeof(struct shmpool_msg), 0);
	R.msg[1] = shm_ring("msg1", SHMPOOL_RING_SPSC, sizeof(struct shmpool_msg), 0);

	mem = memfd_map(1 << 20);
	R.ck[0] = (struct ck_pair *)mem;
	R.ck[1] = (struct ck_pair *)(mem + (64 << 10));
	R.ckm = (struct ck_pair *)(mem + (128 << 10));
#ifdef HAVE_RTE_RING
	R.rte[0] = rte_ring_in(mem + (256 << 10), "rte0", RING_F_SP_ENQ | RING_F_SC_DEQ);
	R.rte[1] = rte_ring_in(mem + (384 << 10), "rte1", RING_F_SP_ENQ | RING_F_SC_DEQ);
	R.rtem = rte_ring_in(mem + (512 << 10), "rtem", 0);
	peer_s = "rte_ring SPSC single";
	peer_b = "rte_ring SPSC burst-32";
	peer_m = "rte_ring MP/MC 1P+1C single";
	peer_l = "rte_ring SPSC";
#else
	peer_s = "ck_ring SPSC single";
	peer_b = NULL;
	peer_m = "ck_ring MPMC 1P+1C single";
	peer_l = "ck_ring SPSC";
	t.notes[0] = "rte_ring rows: build with -DHAVE_RTE_RING and DPDK's flags (see the top of bench/ring_bench.c)";
#endif
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sock))
		bench_die("socketpair", errno);

#define CASE(nm, pr, f, it) (struct bench_case){ .name = nm, .peer = pr, .nprocs = 2, \
	.iters = it, .fn = f, .reset = reset_all, .count_syscalls = 1 }
	tp[n++] = CASE("shmpool SPSC single", peer_s, shm_single, ITERS);
	tp[n++] = CASE("shmpool SPSC burst-32", peer_b, shm_burst, ITERS);
	tp[n++] = CASE("shmpool MP/MC 1P+1C single", peer_m, shmm_single, ITERS);
#ifdef HAVE_RTE_RING
	tp[n++] = CASE("rte_ring SPSC single", NULL, rte_single, ITERS);
	tp[n++] = CASE("rte_ring SPSC burst-32", NULL, rte_burst, ITERS);
	tp[n++] = CASE("rte_ring MP/MC 1P+1C single", NULL, rtem_single, ITERS);
#endif
	tp[n++] = CASE("ck_ring SPSC single", NULL, ck_single, ITERS);
	tp[n++] = CASE("ck_ring MPMC 1P+1C single", NULL, ckm_single, ITERS);
	t.ncases = n;
	t.notes[1] = "M elements/s = 1000 / ns; ratios < 1 mean shmpool is faster than the peer";
	bench_table(&t);

	n = 0;
	lat[n++] = CASE("shmpool SPSC", peer_l, shm_pingpong, LAT_ITERS);
#ifdef HAVE_RTE_RING
	lat[n++] = CASE("rte_ring SPSC", NULL, rte_pingpong, LAT_ITERS);
#endif
	lat[n++] = CASE("ck_ring SPSC", NULL, ck_pingpong, LAT_ITERS);
	lat[n++] = CASE("shmpool zero-copy msg 64 B", "Unix socket 64 B (blocking)",
			msg_pingpong, LAT_ITERS);
	lat[n++] = CASE("Unix socket 64 B (blocking)", NULL, sock_pingpong, LAT_ITERS / 20);
	l.ncases = n;
	l.notes[0] = "iceoryx is not measured here: it needs its RouDi daemon running";
	bench_table(&l);
	return 0;
}
