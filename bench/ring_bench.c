// SPDX-License-Identifier: MIT
/*
 * ring_bench: shmpool rings against DPDK's rte_ring and Concurrency Kit's
 * ck_ring, cross-process, 8-byte elements, all in MAP_SHARED memory of the
 * same kind (a memfd: shmpool's pool on the memfd backend, or the device's
 * pool when /dev/shmpool is there; the peers in a memfd mapping), and
 * shmpool's zero-copy messages against iceoryx's.
 *
 * Throughput: side 1 produces, side 0 consumes and is timed; both spin on the
 * non-blocking calls (no sleeper, so shmpool makes no wake syscall: see the
 * syscalls column). Single = one element per call; burst-32 = up to 32 per
 * call; MP/MC 1P+1C = one producer and one consumer through the
 * multi-producer/multi-consumer code path (BENCHMARKING.md: four spinning
 * processes on two CPUs would measure the scheduler).
 *
 * Latency: one-way = half a ping-pong. The SPSC rows pass 8 bytes through
 * two SPSC rings, spinning. The zero-copy rows send a 64-byte message each
 * way (shmpool_msg loan/fill/publish, receive/read/release), once with
 * spinning receivers against iceoryx publish/take_chunk in a loop, once with
 * blocking receivers (shmpool_msg_receive() without NONBLOCK) against
 * iceoryx waiting in a WaitSet, whose peer in turn is a Unix socket pair
 * doing the same with copies and blocking reads.
 *
 * rte_ring is compiled in only with -DHAVE_RTE_RING and DPDK's flags
 * (pkg-config libdpdk, -lrte_ring -lrte_eal); rte_ring_init() on caller
 * memory needs no rte_eal_init(). Without it the rows compare with ck_ring.
 *
 * iceoryx 2.0 (C binding) is compiled in only with -DHAVE_ICEORYX and
 * -DIOX_ROUDI="path of iox-roudi"; its libraries are shared objects only, so
 * that build is dynamic (the Makefile's build/bench/ring_bench-iceoryx, for
 * the host). Its rows need the RouDi daemon: we start our own with a small
 * memory config, wait until it is ready, and stop it after the table (also
 * on exit(1)). Without it, or if it does not start, the rows are left out
 * with a line saying why.
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
#ifdef HAVE_ICEORYX
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <iceoryx_binding_c/log.h>
#include <iceoryx_binding_c/publisher.h>
#include <iceoryx_binding_c/runtime.h>
#include <iceoryx_binding_c/subscriber.h>
#include <iceoryx_binding_c/wait_set.h>
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

/*
 * Give the parent a fresh handle on a shmpool ring, so that the next run's
 * sides (forked from it) start with private copies of the indices as they
 * are now. Every run drains its rings, so they are empty; the indices run on
 * freely, as they do for users.
 */
static void shm_reset_one(struct shmpool_ring **r, const char *name)
{
	uint32_t type = (*r)->type, esize = (*r)->esize;
	int ret;

	shmpool_ring_close(*r);
	ret = shmpool_ring_open(R.heap, name, type, esize, r);
	if (ret)
		bench_die(name, -ret);
}

static void reset_all(void *arg)
{
	(void)arg;
	shm_reset_one(&R.spsc[0], "spsc0");
	shm_reset_one(&R.spsc[1], "spsc1");
	shm_reset_one(&R.mpmc, "mpmc");
	shm_reset_one(&R.msg[0], "msg0");
	shm_reset_one(&R.msg[1], "msg1");
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

/*
 * Receive one message on R.msg[@k], read its last word, release it. @flags
 * SHMPOOL_MSG_NONBLOCK: spin on the non-blocking call; 0: the blocking one.
 */
static uint64_t msg_take(int k, unsigned int flags)
{
	struct shmpool_msg m;
	const void *q;
	uint64_t x;
	int ret;

	while ((ret = shmpool_msg_receive(R.msg[k], &m, &q, flags, NULL)) == -EAGAIN)
		;
	if (ret)
		bench_die("msg receive", -ret);
	x = ((const uint64_t *)q)[7];
	shmpool_msg_release(R.msg[k], &m);
	return x;
}

/* 64-byte zero-copy messages each way: loan, fill, publish / receive, read, release */
static void msg_exchange(int side, uint64_t iters, unsigned int flags)
{
	uint64_t i, t0 = bench_now_ns(), x = 0;
	struct shmpool_msg m;
	void *p;
	int ret;

	for (i = 0; i < iters; i++) {
		if (side == 1)
			x += msg_take(0, flags);
		if ((ret = shmpool_msg_loan(R.msg[side], 64, &p, &m)))
			bench_die("msg loan", -ret);
		memset(p, (int)i, 64);
		while ((ret = shmpool_msg_publish(R.msg[side], &m, flags, NULL)) == -EAGAIN)
			;
		if (ret)
			bench_die("msg publish", -ret);
		if (side == 0)
			x += msg_take(1, flags);
	}
	if (side == 0)
		bench_set_result_ns((bench_now_ns() - t0) / 2);
	if (x == 1)	/* keeps the reads */
		fprintf(stderr, "\n");
	/*
	 * Leave the sides we worked without an owner: a side exiting with
	 * its handles open is a dead peer ("Owner death" in shmpool_ring.h),
	 * and the next run's blocking receiver, looking before the new
	 * sender's first call, would rightly get -ECONNRESET.
	 */
	shmpool_ring_close(R.msg[0]);
	shmpool_ring_close(R.msg[1]);
}

static void msg_pingpong(void *arg, int side, uint64_t iters)
{
	(void)arg;
	msg_exchange(side, iters, SHMPOOL_MSG_NONBLOCK);
}

static void msg_pingpong_wait(void *arg, int side, uint64_t iters)
{
	(void)arg;
	msg_exchange(side, iters, 0);
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

/* ---- iceoryx 2.0: the same exchanges through its C binding ------------------------ */

#define ZC_SPIN		"shmpool zero-copy msg 64 B, spinning"
#define ZC_WAIT		"shmpool zero-copy msg 64 B, blocking"
#define IOX_SPIN	"iceoryx pub/sub 64 B, spinning"
#define IOX_WAIT	"iceoryx pub/sub 64 B, WaitSet"
#define SOCK_ROW	"Unix socket 64 B (blocking)"

#ifdef HAVE_ICEORYX
#define IOX_SERVICE	"ring_bench"
#define IOX_CONNECT_NS	10000000000ULL	/* a side gives up connecting after this */
#define ROUDI_READY_NS	10000000000ULL	/* RouDi must be ready within this */
#define ROUDI_STOP_NS	10000000000ULL	/* and stopped within this */
#define ROUDI_DROP_NS	5000000000ULL	/* it drops a dead runtime after 1.5 s */

/*
 * Our RouDi's payload memory: 1024 chunks of up to 128 bytes are plenty for
 * 64-byte ping-pongs (its built-in config maps 150 MB). Its management
 * segment (about 65 MB, sized at iceoryx's build) is the same either way.
 */
static const char roudi_config[] =
	"[general]\nversion = 1\n\n[[segment]]\n\n"
	"[[segment.mempool]]\nsize = 128\ncount = 1024\n";

static struct {
	pid_t pid;		/* 0: not running */
	pid_t owner;		/* the process that started it, and alone stops it */
	int log;		/* memfd holding its stdout and stderr */
} roudi = { .log = -1 };

/* Shared with the sides. */
struct iox_shared {
	_Atomic int connected;	/* sides connected in this run: their start barrier */
	_Atomic int registered;	/* runtimes that ever registered with RouDi */
};
static struct iox_shared *iox_sh;
static unsigned int iox_run;	/* bumped before each run's fork: names its ports */

struct iox_case {
	int waitset;		/* 0: spin on take_chunk; 1: sleep in a WaitSet */
};
static struct iox_case iox_spin = { 0 }, iox_wait = { 1 };

/* A side's iceoryx state, set up before the harness starts the side's clock. */
struct iox_side {
	int side;
	iox_pub_storage_t pub_st;
	iox_sub_storage_t sub_st;
	iox_ws_storage_t ws_st;
	iox_pub_t pub;
	iox_sub_t sub;
	iox_ws_t ws;		/* NULL when spinning */
};
static struct iox_side iox_me;

static void iox_fail(int side, const char *what)
{
	fprintf(stderr, "error: iceoryx side %d: %s\n", side, what);
	exit(1);
}

/*
 * Become runtime "ring_bench.<our pid>.<run>.<side>" (every side of every
 * run is a new process: no name is used twice), publish our event of the
 * run's own service instance and subscribe to the other side's, so that no
 * run ever meets the ports of an earlier one. RouDi connects the ports on
 * its side, and the first message must not be lost: wait until both
 * directions are connected, then for the other side.
 */
static void iox_side_open(struct iox_side *s, int side, int waitset)
{
	static const char *const event[2] = { "ping", "pong" };
	char name[64], inst[32];
	iox_pub_options_t po;
	iox_sub_options_t so;
	uint64_t deadline;

	snprintf(name, sizeof(name), "ring_bench.%d.%u.%d", (int)roudi.owner, iox_run, side);
	snprintf(inst, sizeof(inst), "%d.%u", (int)roudi.owner, iox_run);
	s->side = side;
	iox_set_loglevel(Iceoryx_LogLevel_Warn);
	iox_runtime_init(name);
	atomic_fetch_add(&iox_sh->registered, 1);
	iox_pub_options_init(&po);
	iox_sub_options_init(&so);
	s->pub = iox_pub_init(&s->pub_st, IOX_SERVICE, inst, event[side], &po);
	s->sub = iox_sub_init(&s->sub_st, IOX_SERVICE, inst, event[!side], &so);
	if (!s->pub || !s->sub)
		iox_fail(side, "no publisher or subscriber");
	s->ws = NULL;
	if (waitset) {
		s->ws = iox_ws_init(&s->ws_st);
		if (!s->ws || iox_ws_attach_subscriber_state(s->ws, s->sub,
				SubscriberState_HAS_DATA, 0, NULL) != WaitSetResult_SUCCESS)
			iox_fail(side, "cannot attach the subscriber to a WaitSet");
	}
	deadline = bench_now_ns() + IOX_CONNECT_NS;
	while (iox_sub_get_subscription_state(s->sub) != SubscribeState_SUBSCRIBED ||
	       !iox_pub_has_subscribers(s->pub)) {
		if (bench_now_ns() > deadline)
			iox_fail(side, "publisher and subscriber not connected after 10 s");
		usleep(50);	/* leave RouDi the CPU */
	}
	atomic_fetch_add(&iox_sh->connected, 1);
	while (atomic_load(&iox_sh->connected) < 2)
		if (bench_now_ns() > deadline)
			iox_fail(side, "the other side did not connect in 10 s");
}

/*
 * When to set up. The harness times side 0 from just before its bench_fn,
 * sizes the runs by that time, and counts syscalls from there on; a setup
 * in the bench_fn (2-40 ms here, mostly waiting for RouDi) would skew all
 * three, and the harness has no per-side setup hook. So the sides set up in
 * a pthread_atfork() child handler, which runs right after fork(), before
 * anything of the harness's side: iox_reset() arms the next two forks,
 * which are the run's side 0 and side 1, in that order (bench.c run_case()).
 * The parent is single-threaded, so the child may do anything there.
 */
static int iox_forks;		/* forks left to arm in this run */
static int iox_fork_side = -1;	/* the side the child of this fork becomes, or -1 */
static int iox_fork_waitset;

static void iox_atfork_prepare(void)
{
	iox_fork_side = iox_forks ? 2 - iox_forks-- : -1;
}

static void iox_atfork_child(void)
{
	if (iox_fork_side >= 0)
		iox_side_open(&iox_me, iox_fork_side, iox_fork_waitset);
}

static void iox_reset(void *arg)
{
	const struct iox_case *c = arg;

	iox_run++;
	iox_forks = 2;
	iox_fork_waitset = c->waitset;
	atomic_store(&iox_sh->connected, 0);
}

/*
 * Take the next message, spinning or sleeping in the WaitSet (which returns
 * at once while the subscriber has data), read its last word, release it.
 */
static uint64_t iox_take(struct iox_side *s)
{
	iox_notification_info_t info[1];
	enum iox_ChunkReceiveResult ret;
	uint64_t x, missed;
	const void *q;

	while ((ret = iox_sub_take_chunk(s->sub, &q)) == ChunkReceiveResult_NO_CHUNK_AVAILABLE)
		if (s->ws)
			iox_ws_wait(s->ws, info, 1, &missed);
	if (ret != ChunkReceiveResult_SUCCESS)
		iox_fail(s->side, "take_chunk failed");
	x = ((const uint64_t *)q)[7];
	iox_sub_release_chunk(s->sub, q);
	return x;
}

/* 64-byte zero-copy messages each way: loan, fill, publish / take, read, release */
static void iox_pingpong(void *arg, int side, uint64_t iters)
{
	struct iox_side *s = &iox_me;
	uint64_t i, t0 = bench_now_ns(), x = 0;
	void *p;

	(void)arg;	/* iox_reset() passed it on to the setup */
	if (side != s->side || !s->pub)
		iox_fail(side, "not set up (see iox_atfork_child())");
	for (i = 0; i < iters; i++) {
		if (side == 1)
			x += iox_take(s);
		if (iox_pub_loan_chunk(s->pub, &p, 64) != AllocationResult_SUCCESS)
			iox_fail(side, "loan_chunk failed");
		memset(p, (int)i, 64);
		iox_pub_publish_chunk(s->pub, p);
		if (side == 0)
			x += iox_take(s);
	}
	if (side == 0)
		bench_set_result_ns((bench_now_ns() - t0) / 2);
	if (s->ws)
		iox_ws_deinit(s->ws);
	iox_sub_deinit(s->sub);
	iox_pub_deinit(s->pub);
	if (x == 1)	/* keeps the reads */
		fprintf(stderr, "\n");
}

#define IOX_CASE(nm, pr, c, it) (struct bench_case){ .name = nm, .peer = pr, .nprocs = 2, \
	.iters = it, .fn = iox_pingpong, .arg = c, .reset = iox_reset, .count_syscalls = 1 }

/* RouDi's output so far without its colour codes, NUL-terminated; free() it. */
static char *roudi_output(void)
{
	struct stat st;
	char *buf, *s, *d;
	ssize_t n;

	if (roudi.log < 0 || fstat(roudi.log, &st))
		return NULL;
	buf = malloc((size_t)st.st_size + 1);
	if (!buf)
		return NULL;
	n = pread(roudi.log, buf, (size_t)st.st_size, 0);
	buf[n > 0 ? n : 0] = 0;
	for (s = d = buf; *s; s++) {
		if (*s == '\033') {	/* ESC [ ... m */
			s += strcspn(s, "m");
			if (!*s)
				break;
			continue;
		}
		*d++ = *s;
	}
	*d = 0;
	return buf;
}

static int count_str(const char *s, const char *what)
{
	int n = 0;

	while (s && (s = strstr(s, what))) {
		n++;
		s += strlen(what);
	}
	return n;
}

/* Why RouDi gave up: its first Fatal or Error message, else its last line. */
static void roudi_why(char *why, size_t len)
{
	char *out = roudi_output(), *p, *e;

	snprintf(why, len, "iox-roudi exited");
	if (!out)
		return;
	p = strstr(out, "Fatal");
	if (!p)
		p = strstr(out, "Error");
	if (p) {
		while (p > out && p[-1] != '\n')
			p--;
	} else {
		e = out + strlen(out);
		while (e > out && (e[-1] == '\n' || e[-1] == ' '))
			*--e = 0;
		p = strrchr(out, '\n');
		p = p ? p + 1 : out;
	}
	e = strstr(p, "]: ");
	if (e && e < p + strcspn(p, "\n"))
		p = e + 3;	/* past the time stamp and level */
	snprintf(why, len, "iox-roudi exited: %.*s", (int)strcspn(p, "\n"), p);
	free(out);
}

/* SIGTERM, then SIGKILL after ROUDI_STOP_NS; 1 if it exited cleanly. */
static int roudi_kill(void)
{
	uint64_t t0 = bench_now_ns();
	pid_t ret;
	int st;

	kill(roudi.pid, SIGTERM);
	while ((ret = waitpid(roudi.pid, &st, WNOHANG)) == 0 &&
	       bench_now_ns() - t0 < ROUDI_STOP_NS)
		usleep(10000);
	if (ret == 0) {
		kill(roudi.pid, SIGKILL);
		ret = waitpid(roudi.pid, &st, 0);
	}
	roudi.pid = 0;
	return ret > 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

/*
 * Each runtime has a socket /tmp/<its name> and a /tmp/<its name>.lock,
 * which its exit() would remove; the sides leave by _exit(). Remove ours,
 * and those of ring_bench processes that are gone.
 */
static void iox_sweep(void)
{
	char path[300];
	struct dirent *e;
	int pid, side, end;
	unsigned int run;
	DIR *d = opendir("/tmp");

	if (!d)
		return;
	while ((e = readdir(d))) {
		end = 0;
		if (sscanf(e->d_name, "ring_bench.%d.%u.%d%n", &pid, &run, &side, &end) != 3 ||
		    (e->d_name[end] && strcmp(e->d_name + end, ".lock")))
			continue;
		if (pid != getpid() && !(kill(pid, 0) && errno == ESRCH))
			continue;
		snprintf(path, sizeof(path), "/tmp/%s", e->d_name);
		unlink(path);
	}
	closedir(d);
}

/*
 * Stop our RouDi: only in the process that started it (an atexit handler,
 * which the forked sides inherit), and only once.
 */
static void roudi_stop(void)
{
	uint64_t t0 = bench_now_ns();
	char *out, *p, *e;
	int clean, dropped = 0;

	if (!roudi.pid || getpid() != roudi.owner)
		return;
	/*
	 * The sides never unregister (bench.c ends them with _exit()), so
	 * RouDi drops each runtime 1.5 s after its last keep-alive. One
	 * stopped before that tries to kill them, fails, and aborts, leaving
	 * its shared memory behind: wait until it has dropped them all.
	 */
	for (;;) {
		out = roudi_output();
		dropped = count_str(out, "not responding");
		clean = dropped >= atomic_load(&iox_sh->registered);
		free(out);
		if (clean || bench_now_ns() - t0 > ROUDI_DROP_NS)
			break;
		usleep(20000);
	}
	out = roudi_output();
	if (!roudi_kill()) {
		/* remove what it said it created, so that nothing stale stays */
		for (p = out; p && (p = strstr(p, "in the shared memory [")); p = e) {
			p += strlen("in the shared memory [");
			e = p + strcspn(p, "]\n");
			if (*e == ']') {
				*e++ = 0;
				shm_unlink(p);
			}
		}
		unlink("/tmp/roudi");
		unlink("/tmp/roudi.lock");
		unlink("/tmp/iox-unique-roudi.lock");
		printf("iceoryx: iox-roudi did not stop cleanly: removed its shared memory and sockets\n");
	} else {
		printf("iceoryx: stopped iox-roudi after %.0f ms (it first dropped %d ended runtimes)\n",
		       (double)(bench_now_ns() - t0) / 1e6, dropped);
	}
	free(out);
	iox_sweep();
	close(roudi.log);
	roudi.log = -1;
}

/*
 * Start our own RouDi and wait until it is ready for clients: 0, or -1 with
 * @why set. It gets SIGTERM if we die without roudi_stop().
 */
static int roudi_start(char *why, size_t len)
{
	uint64_t t0 = bench_now_ns();
	int cfg, ready, st;
	char *out;

	if (!IOX_ROUDI[0] || access(IOX_ROUDI, X_OK)) {
		snprintf(why, len, "no iox-roudi%s%s (Debian package iceoryx)",
			 IOX_ROUDI[0] ? " at " : "", IOX_ROUDI);
		return -1;
	}
	/* it reads the config as /proc/self/fd/3: no file to clean up (closed below) */
	cfg = memfd_create("roudi_config.toml", 0);
	roudi.log = memfd_create("roudi.log", MFD_CLOEXEC);
	if (cfg < 0 || roudi.log < 0 ||
	    write(cfg, roudi_config, sizeof(roudi_config) - 1) !=
	    (ssize_t)sizeof(roudi_config) - 1)
		bench_die("memfd for RouDi", errno);
	roudi.owner = getpid();
	roudi.pid = fork();
	if (roudi.pid < 0)
		bench_die("fork", errno);
	if (roudi.pid == 0) {
		int null = open("/dev/null", O_RDONLY);

		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() != roudi.owner || null < 0 || dup2(null, 0) < 0 ||
		    dup2(roudi.log, 1) < 0 || dup2(roudi.log, 2) < 0 || dup2(cfg, 3) < 0)
			_exit(126);
		close_range(4, ~0U, 0);	/* our rings' and sockets' fds are none of its business */
		execl(IOX_ROUDI, "iox-roudi", "-c", "/proc/self/fd/3", "-l", "warning",
		      (char *)NULL);
		_exit(127);
	}
	close(cfg);
	for (;;) {
		out = roudi_output();
		ready = out && strstr(out, "RouDi is ready for clients");
		free(out);
		if (ready)
			break;
		if (waitpid(roudi.pid, &st, WNOHANG) == roudi.pid) {
			roudi.pid = 0;
			roudi_why(why, len);
			return -1;
		}
		if (bench_now_ns() - t0 > ROUDI_READY_NS) {
			roudi_kill();
			snprintf(why, len, "iox-roudi not ready after 10 s");
			return -1;
		}
		usleep(10000);
	}
	printf("iceoryx: started iox-roudi 2.0 (pid %d, ready in %.0f ms; payload: 1024 chunks of 128 B)\n",
	       (int)roudi.pid, (double)(bench_now_ns() - t0) / 1e6);
	return 0;
}
#endif /* HAVE_ICEORYX */

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
	struct bench_case tp[8], lat[8];
	struct bench_table t = {
		.title = "ring throughput between two processes, 8-byte elements, spinning",
		.op = "one element from producer to consumer",
		.unit = "ns",
		.cases = tp,
	};
	struct bench_table l = {
		.title = "one-way latency between two processes, spinning and blocking receivers",
		.op = "one way (half a ping-pong)",
		.unit = "ns",
		.cases = lat,
	};
	const char *peer_s, *peer_b, *peer_m, *peer_l, *peer_zs = NULL, *peer_zb = SOCK_ROW;
	char *mem;
	int n = 0, ret;

	bench_init(argc, argv, "Prints shmpool ring throughput and latency against rte_ring and ck_ring,\n"
		   "and zero-copy message latency against iceoryx (which needs iox-roudi).\n");

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

	/* iceoryx's daemon runs for the latency table only */
#ifdef HAVE_ICEORYX
	{
		char why[200];

		iox_sh = bench_shared_page();
		iox_sweep();
		atexit(roudi_stop);
		if (roudi_start(why, sizeof(why))) {
			printf("iceoryx: rows left out: %s\n", why);
		} else {
			ret = pthread_atfork(iox_atfork_prepare, NULL, iox_atfork_child);
			if (ret)
				bench_die("pthread_atfork", ret);
			peer_zs = IOX_SPIN;
			peer_zb = IOX_WAIT;
		}
	}
#else
	printf("iceoryx: rows left out: built without it (make bench runs build/bench/ring_bench-iceoryx on the host; see the top of bench/ring_bench.c)\n");
#endif
	n = 0;
	lat[n++] = CASE("shmpool SPSC", peer_l, shm_pingpong, LAT_ITERS);
#ifdef HAVE_RTE_RING
	lat[n++] = CASE("rte_ring SPSC", NULL, rte_pingpong, LAT_ITERS);
#endif
	lat[n++] = CASE("ck_ring SPSC", NULL, ck_pingpong, LAT_ITERS);
	lat[n++] = CASE(ZC_SPIN, peer_zs, msg_pingpong, LAT_ITERS);
#ifdef HAVE_ICEORYX
	if (peer_zs)
		lat[n++] = IOX_CASE(IOX_SPIN, NULL, &iox_spin, LAT_ITERS);
#endif
	lat[n++] = CASE(ZC_WAIT, peer_zb, msg_pingpong_wait, LAT_ITERS);
#ifdef HAVE_ICEORYX
	if (peer_zs)
		lat[n++] = IOX_CASE(IOX_WAIT, SOCK_ROW, &iox_wait, LAT_ITERS / 20);
#endif
	lat[n++] = CASE(SOCK_ROW, NULL, sock_pingpong, LAT_ITERS / 20);
	l.ncases = n;
	l.notes[0] = peer_zs ?
		"spinning rows poll (shmpool_msg_receive NONBLOCK, iox_sub_take_chunk in a loop); blocking rows "
		"call shmpool_msg_receive (which spins briefly before it sleeps), iox_ws_wait on HAS_DATA, read" :
		"spinning rows poll (shmpool_msg_receive NONBLOCK); blocking rows call shmpool_msg_receive "
		"(which spins briefly before it sleeps), read";
	l.notes[1] = "vcsw/op says how often a row slept; sleeping rows measure how fast a halted vCPU wakes "
		     "(BENCHMARKING.md): compare blocking rows with each other only";
	l.notes[2] = "ratio = row / its peer in the same round: < 1 means the row is faster";
	if (peer_zs)
		l.notes[3] = "iceoryx 2.0 C binding: each side its own runtime with ports of its own per run, "
			     "connected before the clock starts; our iox-roudi";
	bench_table(&l);
#ifdef HAVE_ICEORYX
	roudi_stop();
#endif
	return 0;
}
