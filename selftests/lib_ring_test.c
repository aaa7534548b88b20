/* lib_ring_test: libshmpool SPSC, MPMC and variable-size rings and zero-copy messages between processes: streams with order/loss/duplicate checks, bulk and burst, blocking, deadlines, shutdown, no-sleeper wake counts, and each rejected parameter. */
// SPDX-License-Identifier: MIT
/*
 * Streams pass RING_ELEMS sequence-numbered elements (10 million on the
 * host). Inside the QEMU lanes (detected by the vm-run "spnonce=" on the
 * kernel command line) they pass 1/200 of that, so that each program stays
 * well under a minute under TCG and the debug kernel; SHMPOOL_TEST_SCALE
 * multiplies either. Workers are forked processes that open the ring by name
 * and report through their exit status and pool-independent shared pages.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "shmpool.h"
#include "shmpool_alloc.h"
#include "shmpool_ring.h"
/* the 6.1 harness leaves parameters unused and defines unprototyped functions */
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wmissing-prototypes"
/* counts are uint32_t, expected values plain int literals */
#pragma GCC diagnostic ignored "-Wsign-compare"
/* the harness longjmp()s out of failed ASSERTs; nothing is used after one */
#pragma GCC diagnostic ignored "-Wclobbered"
#include "kselftest_harness.h"
#include "lib_test.h"

#define POOL_BYTES	(4U << 20)
#define RING_ELEMS	10000000ULL
#define VM_DIVISOR	200
/*
 * The sanitizer builds run 5 (ASan) or 20 (TSan) times slower: their
 * streams are shorter (TSan still sees every pair of accesses that can race
 * many thousand times over; the plain build runs the whole count).
 */
#if defined(UNDER_TSAN)
#define SAN_DIVISOR	20
#elif defined(__SANITIZE_ADDRESS__)
#define SAN_DIVISOR	5
#else
#define SAN_DIVISOR	1
#endif
#define BURST		32

/* ---- helpers ------------------------------------------------------------------- */

static uint64_t stream_elems(void)
{
	const char *s = getenv("SHMPOOL_TEST_SCALE");
	double v = s ? atof(s) : 1.0;
	uint64_t n;

	if (v <= 0)
		v = 1.0;
	n = (uint64_t)((double)RING_ELEMS * v) / (in_vm_lane() ? VM_DIVISOR : SAN_DIVISOR);
	return n < 1000 ? 1000 : n;
}

static pid_t spawn(int (*fn)(void *), void *arg)
{
	pid_t pid = fork();

	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		_exit(fn(arg));
	}
	return pid;
}

static int exit_code(int st)
{
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	return WIFSIGNALED(st) ? 128 + WTERMSIG(st) : -1;
}

/* exit status of @pid; 128 + signal if killed */
static int reap(pid_t pid)
{
	int st;

	if (pid < 0 || waitpid(pid, &st, 0) != pid)
		return -1;
	return exit_code(st);
}

/*
 * Exit status of whichever of the @n children in @pids ends first; its
 * index in *@which, its slot set to -1. -1 if none is left.
 */
static int reap_any(pid_t *pids, int n, int *which)
{
	pid_t pid;
	int st, i;

	for (;;) {
		pid = waitpid(-1, &st, 0);
		if (pid < 0)
			return -1;
		for (i = 0; i < n; i++)
			if (pids[i] == pid) {
				pids[i] = -1;
				*which = i;
				return exit_code(st);
			}
	}
}

static int device_has_doorbells(void)
{
	struct shmpool_api api = { .size = sizeof(api) };
	int fd, ret;

	fd = open(DEV_PATH, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ret = ioctl(fd, SHMPOOL_IOC_API, &api);
	close(fd);
	return !ret && (api.features & SHMPOOL_FEAT_DOORBELL);
}

/* ---- workers -------------------------------------------------------------------- */

/* what workers share outside the pool (a MAP_SHARED anonymous mapping);
 * wakes[]: consumers 0-1, producers 2-3 */
struct report {
	_Atomic uint64_t sum[4];
	_Atomic uint64_t got[4];
	_Atomic uint64_t wakes[4];
	_Atomic int32_t ret[4];
	_Atomic uint64_t bitmap[];	/* MPMC: one bit per element sent */
};

struct job {
	struct shmpool_heap *h;
	const char *name;
	uint32_t type, esize;
	int idx;		/* producer or consumer number */
	int nprod;		/* producers feeding the ring */
	uint64_t n;		/* elements per producer */
	int nonblock;		/* spin on the non-blocking calls only */
	struct report *rep;
};

/* element @seq of producer @prod, @esize bytes: the seq, then a check pattern */
static void make_elem(uint32_t *e, uint32_t esize, int prod, uint64_t seq)
{
	uint64_t v = ((uint64_t)prod << 56) | seq;
	uint32_t i;

	e[0] = (uint32_t)v;
	if (esize >= 8)
		e[1] = (uint32_t)(v >> 32);
	for (i = 2; i < esize / 4; i++)
		e[i] = (uint32_t)v ^ (i * 0x9e3779b9U);
}

/* the element's tagged sequence number, or UINT64_MAX if its pattern is broken */
static uint64_t elem_val(const uint32_t *e, uint32_t esize)
{
	uint64_t v = e[0];
	uint32_t i;

	if (esize >= 8)
		v |= (uint64_t)e[1] << 32;
	for (i = 2; i < esize / 4; i++)
		if (e[i] != ((uint32_t)v ^ (i * 0x9e3779b9U)))
			return UINT64_MAX;
	return v;
}

static int producer(void *arg)
{
	struct job *j = arg;
	struct shmpool_ring *r;
	uint32_t buf[BURST * 16];
	uint64_t seq = 0;
	unsigned int rnd = 12345 + j->idx;
	int ret;

	ret = shmpool_ring_open(j->h, j->name, j->type, j->esize, &r);
	if (ret) {
		fprintf(stderr, "producer %d: open: %d\n", j->idx, ret);
		return 2;
	}
	while (seq < j->n) {
		/* singles, bulks and bursts of 1..BURST, mixed */
		uint32_t want = (rnd = rnd * 1103515245 + 12345) >> 16;
		uint32_t k, ew = j->esize / 4;

		want = want % 4 == 0 ? 1 : 1 + want % BURST;
		if (want * j->esize > sizeof(buf))
			want = sizeof(buf) / j->esize;
		if (want > j->n - seq)
			want = (uint32_t)(j->n - seq);
		for (k = 0; k < want; k++)
			make_elem(buf + k * ew, j->esize, j->idx, seq + k);
		if (j->nonblock) {
			k = want == 1 ? shmpool_ring_enqueue(r, buf) :
			    (rnd & 1) ? shmpool_ring_enqueue_bulk(r, buf, want) :
				      shmpool_ring_enqueue_burst(r, buf, want);
			if (!k) {
				/* the parent gave up: a consumer failed */
				if (atomic_load(&r->hdr->ev.shut) & SHMPOOL_RING_CONS)
					return 7;
				sched_yield();
			}
		} else {
			ret = shmpool_ring_enqueue_wait(r, buf, want,
					(rnd & 1) ? SHMPOOL_RING_BULK : 0, NULL);
			if (ret <= 0) {
				fprintf(stderr, "producer %d: enqueue: %d\n", j->idx, ret);
				return 3;
			}
			k = (uint32_t)ret;
		}
		seq += k;
	}
	j->rep->wakes[2 + j->idx] = shmpool_ring_wake_calls();
	shmpool_ring_close(r);
	return 0;
}

/*
 * Consume until -EPIPE (blocking) or until @total elements arrived
 * (non-blocking, one producer), a quarter of the calls for one element
 * (an SPSC consumer's single path), the rest bursts of up to BURST; check
 * per-producer order, patterns and, with a bitmap, exactly-once delivery.
 */
static int consumer(void *arg)
{
	struct job *j = arg;
	struct shmpool_ring *r;
	uint32_t buf[BURST * 16];
	uint64_t next[4] = { 0 }, got = 0, sum = 0;
	uint64_t total = j->n * (uint64_t)j->nprod;
	unsigned int rnd = 54321 + j->idx;
	int ret, k;

	ret = shmpool_ring_open(j->h, j->name, j->type, j->esize, &r);
	if (ret) {
		fprintf(stderr, "consumer %d: open: %d\n", j->idx, ret);
		return 2;
	}
	for (;;) {
		uint32_t want = sizeof(buf) / j->esize;

		if (want > BURST)
			want = BURST;
		if (((rnd = rnd * 1103515245 + 12345) >> 16) % 4 == 0)
			want = 1;
		if (j->nonblock) {
			if (got == total)
				break;
			ret = (int)shmpool_ring_dequeue_burst(r, buf, want);
			if (!ret && (atomic_load(&r->hdr->ev.shut) & SHMPOOL_RING_PROD)) {
				/* producers are done or failed: empty is the end */
				ret = (int)shmpool_ring_dequeue_burst(r, buf, want);
				if (!ret)
					break;
			}
			if (!ret)
				sched_yield();
		} else {
			ret = shmpool_ring_dequeue_wait(r, buf, want, 0, NULL);
			if (ret == -EPIPE)
				break;
			if (ret <= 0) {
				fprintf(stderr, "consumer %d: dequeue: %d\n", j->idx, ret);
				return 3;
			}
		}
		for (k = 0; k < ret; k++) {
			uint64_t v = elem_val(buf + k * (j->esize / 4), j->esize);
			/* elements are at least 8 bytes: producer in the top byte */
			int prod = (int)(v >> 56);
			uint64_t seq = v & ((1ULL << 56) - 1);

			if (v == UINT64_MAX || prod >= j->nprod) {
				fprintf(stderr, "consumer %d: corrupt element\n", j->idx);
				return 4;
			}
			/* a consumer sees each producer's elements in order */
			if (seq < next[prod] || (j->nprod == 1 && seq != next[prod]) ||
			    seq >= j->n) {
				fprintf(stderr, "consumer %d: prod %d seq %llu, expected %s%llu\n",
					j->idx, prod, (unsigned long long)seq,
					j->nprod == 1 ? "" : ">= ",
					(unsigned long long)next[prod]);
				return 5;
			}
			next[prod] = seq + 1;
			if (j->nprod > 1) {
				uint64_t bit = (uint64_t)prod * j->n + seq;
				uint64_t old = atomic_fetch_or(&j->rep->bitmap[bit / 64],
							       1ULL << (bit % 64));

				if (old & (1ULL << (bit % 64))) {
					fprintf(stderr, "consumer %d: duplicate %llu\n",
						j->idx, (unsigned long long)bit);
					return 6;
				}
			}
			sum += seq;
			got++;
		}
	}
	j->rep->got[j->idx] = got;
	j->rep->sum[j->idx] = sum;
	j->rep->wakes[j->idx] = shmpool_ring_wake_calls();
	shmpool_ring_close(r);
	return 0;
}

/* ---- fixture ------------------------------------------------------------------- */

FIXTURE(ring) {
	struct shmpool *p;
	struct shmpool_heap *h;
	char name[SHMPOOL_OBJ_NAME_MAX];
};

FIXTURE_VARIANT(ring) {
	unsigned int backend;
};

FIXTURE_VARIANT_ADD(ring, memfd) {
	.backend = SHMPOOL_BACKEND_MEMFD,
};

FIXTURE_VARIANT_ADD(ring, device) {
	.backend = SHMPOOL_BACKEND_DEVICE,
};

FIXTURE_SETUP(ring)
{
	/* 6.1's harness would still run the test after SKIP() here */
	if (variant->backend == SHMPOOL_BACKEND_DEVICE && !device_has_doorbells())
		SKIP(longjmp(_metadata->env, 1), DEV_PATH " with doorbells not available");
	SKIP_MEMFD_IN_DEVICE_LANE(variant->backend);
	ASSERT_EQ(0, shmpool_create_anon(POOL_BYTES, variant->backend, &self->p));
	ASSERT_EQ(0, shmpool_heap_open(self->p, 0, &self->h));
	snprintf(self->name, sizeof(self->name), "ring.%d", (int)getpid());
}

FIXTURE_TEARDOWN(ring)
{
	shmpool_heap_close(self->h);
	shmpool_close(self->p);
}

static struct report *new_report(uint64_t bits)
{
	size_t len = sizeof(struct report) + (bits + 63) / 64 * 8;
	void *m = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	return m == MAP_FAILED ? NULL : m;
}

/*
 * @np producers and @nc consumers (separate processes) stream @n elements
 * per producer through a fresh ring; then the checks of consumer() and the
 * sums. Returns 0 if all is well.
 */
static int stream(struct shmpool_heap *h, const char *name, uint32_t type,
		  uint32_t count, uint32_t esize, unsigned int flags,
		  int np, int nc, uint64_t n, int nonblock, struct report **out)
{
	struct shmpool_ring *r;
	struct report *rep = new_report(np > 1 ? n * np : 0);
	struct job pj[4], cj[4];
	pid_t pp[4], cp[4], all[8];
	uint64_t got = 0, sum = 0, want;
	int i, k, ret, left, prods, bad = 0;

	if (!rep || shmpool_ring_create(h, name, type, count, esize, flags, &r) != 1)
		return -1;
	for (i = 0; i < nc; i++) {
		cj[i] = (struct job){ h, name, type, esize, i, np, n, nonblock, rep };
		cp[i] = spawn(consumer, &cj[i]);
	}
	for (i = 0; i < np; i++) {
		pj[i] = (struct job){ h, name, type, esize, i, np, n, nonblock, rep };
		pp[i] = spawn(producer, &pj[i]);
	}
	/*
	 * Reap in the order they end. The producers' end shuts the ring's
	 * producer end down (consumers drain, then stop); a failure shuts
	 * both ends down, so that nobody waits for a dead peer and a red
	 * test ends at once rather than at the harness's timeout.
	 */
	for (i = 0; i < nc; i++)
		all[i] = cp[i];
	for (i = 0; i < np; i++)
		all[nc + i] = pp[i];
	for (left = np + nc, prods = np; left; left--) {
		ret = reap_any(all, np + nc, &k);
		if (ret < 0) {
			bad = 1;
			break;
		}
		if (ret) {
			fprintf(stderr, "%s %d failed (%d)\n",
				k < nc ? "consumer" : "producer",
				k < nc ? k : k - nc, ret);
			bad = 1;
			shmpool_ring_shutdown(r, SHMPOOL_RING_PROD | SHMPOOL_RING_CONS);
		}
		if (k >= nc && !--prods)
			shmpool_ring_shutdown(r, SHMPOOL_RING_PROD);
	}
	for (i = 0; i < nc; i++) {
		got += rep->got[i];
		sum += rep->sum[i];
	}
	want = n * np;
	if (!bad && (got != want || sum != np * (n * (n - 1) / 2))) {
		fprintf(stderr, "got %llu of %llu elements, sum %llu\n",
			(unsigned long long)got, (unsigned long long)want,
			(unsigned long long)sum);
		bad = 1;
	}
	for (i = 0; !bad && np > 1 && (uint64_t)i < want / 64; i++)
		if (rep->bitmap[i] != ~0ULL)
			bad = 1;
	if (!bad && np > 1 && want % 64 &&
	    rep->bitmap[want / 64] != (1ULL << (want % 64)) - 1)
		bad = 1;
	shmpool_ring_close(r);
	if (out)
		*out = rep;
	else
		munmap(rep, sizeof(*rep) + (np > 1 ? (n * np + 63) / 64 * 8 : 0));
	return bad ? -1 : 0;
}

/* ---- streams --------------------------------------------------------------------- */

TEST_F_TIMEOUT(ring, spsc_stream_8, 300)
{
	ASSERT_EQ(0, stream(self->h, self->name, SHMPOOL_RING_SPSC, 1024, 8, 0,
			    1, 1, stream_elems(), 0, NULL));
}

TEST_F_TIMEOUT(ring, spsc_stream_12_byte_elements, 300)
{
	/* elements straddle the wrap in two memcpy()s; 1/4 of the count */
	ASSERT_EQ(0, stream(self->h, self->name, SHMPOOL_RING_SPSC, 256, 12, 0,
			    1, 1, stream_elems() / 4, 0, NULL));
}

TEST_F_TIMEOUT(ring, mpmc_stream_1p1c, 300)
{
	ASSERT_EQ(0, stream(self->h, self->name, SHMPOOL_RING_MPMC, 1024, 8, 0,
			    1, 1, stream_elems(), 0, NULL));
}

TEST_F_TIMEOUT(ring, mpmc_stream_sp_sc, 300)
{
	ASSERT_EQ(0, stream(self->h, self->name, SHMPOOL_RING_MPMC, 1024, 8,
			    SHMPOOL_RING_SP | SHMPOOL_RING_SC, 1, 1,
			    stream_elems(), 0, NULL));
}

TEST_F_TIMEOUT(ring, mpmc_stream_2p2c_exactly_once, 600)
{
	ASSERT_EQ(0, stream(self->h, self->name, SHMPOOL_RING_MPMC, 1024, 8, 0,
			    2, 2, stream_elems() / 2, 0, NULL));
}

TEST_F_TIMEOUT(ring, mpmc_stream_2p2c_16_byte_elements, 600)
{
	ASSERT_EQ(0, stream(self->h, self->name, SHMPOOL_RING_MPMC, 64, 16, 0,
			    2, 2, stream_elems() / 8, 0, NULL));
}

/*
 * Nobody ever sleeps (both sides only spin on the non-blocking calls), so
 * neither process may have made a single wake call.
 */
TEST_F_TIMEOUT(ring, spsc_no_sleeper_no_wake_calls, 300)
{
	struct report *rep;

	ASSERT_EQ(0, stream(self->h, self->name, SHMPOOL_RING_SPSC, 1024, 8, 0,
			    1, 1, stream_elems() / 10, 1, &rep));
	EXPECT_EQ(0, rep->wakes[0]);	/* consumer */
	EXPECT_EQ(0, rep->wakes[2]);	/* producer */
	EXPECT_EQ(stream_elems() / 10, rep->got[0]);
}

TEST_F_TIMEOUT(ring, mpmc_no_sleeper_no_wake_calls, 300)
{
	struct report *rep;

	ASSERT_EQ(0, stream(self->h, self->name, SHMPOOL_RING_MPMC, 1024, 8, 0,
			    1, 1, stream_elems() / 10, 1, &rep));
	EXPECT_EQ(0, rep->wakes[0]);
	EXPECT_EQ(0, rep->wakes[2]);
}

/* ---- bulk and burst --------------------------------------------------------------- */

static void bulk_burst(struct __test_metadata *_metadata, struct shmpool_heap *h,
		       const char *name, uint32_t type)
{
	struct shmpool_ring *r;
	uint64_t in[8] = { 1, 2, 3, 4, 5, 6, 7, 8 }, out[9] = { 0 };
	int i;

	ASSERT_EQ(1, shmpool_ring_create(h, name, type, 8, 8, 0, &r));
	EXPECT_EQ(8, shmpool_ring_capacity(r));
	EXPECT_EQ(5, shmpool_ring_enqueue_bulk(r, in, 5));
	EXPECT_EQ(0, shmpool_ring_enqueue_bulk(r, in, 4));	/* 3 free: none */
	EXPECT_EQ(5, shmpool_ring_count(r));
	EXPECT_EQ(3, shmpool_ring_enqueue_burst(r, in + 5, 4));	/* as many as fit */
	EXPECT_EQ(0, shmpool_ring_enqueue(r, in));
	EXPECT_EQ(8, shmpool_ring_count(r));
	EXPECT_EQ(0, shmpool_ring_dequeue_bulk(r, out, 9));
	EXPECT_EQ(1, shmpool_ring_dequeue(r, out));
	EXPECT_EQ(1, out[0]);
	EXPECT_EQ(7, shmpool_ring_dequeue_burst(r, out, 9));
	for (i = 0; i < 7; i++)
		EXPECT_EQ((uint64_t)i + 2, out[i]);
	EXPECT_EQ(0, shmpool_ring_dequeue_burst(r, out, 1));
	EXPECT_EQ(0, shmpool_ring_count(r));
	shmpool_ring_close(r);
}

TEST_F(ring, spsc_bulk_all_or_nothing_burst_partial)
{
	bulk_burst(_metadata, self->h, self->name, SHMPOOL_RING_SPSC);
}

TEST_F(ring, mpmc_bulk_all_or_nothing_burst_partial)
{
	bulk_burst(_metadata, self->h, self->name, SHMPOOL_RING_MPMC);
}

/*
 * SPSC: a burst dequeue updates only the consumer word of the last group
 * it read from; a single-element producer that finds an older word in its
 * group must fall back to cons.tail and still see every freed slot (the
 * ring holds all count elements, whatever the dequeue pattern was).
 */
TEST_F(ring, spsc_singles_after_burst_dequeue_see_all_room)
{
	struct shmpool_ring *r;
	uint64_t v, out[32];
	uint32_t lap, i;

	ASSERT_EQ(1, shmpool_ring_create(self->h, self->name, SHMPOOL_RING_SPSC,
					 32, 8, 0, &r));
	for (lap = 0; lap < 3; lap++) {
		for (i = 0; i < 32; i++) {
			v = lap * 32 + i;
			ASSERT_EQ(1, shmpool_ring_enqueue(r, &v)) {
				TH_LOG("lap %u: element %u refused", lap, i);
			}
		}
		v = 0;
		EXPECT_EQ(0, shmpool_ring_enqueue(r, &v));	/* full */
		ASSERT_EQ(32, shmpool_ring_dequeue_burst(r, out, 32));
		for (i = 0; i < 32; i++)
			ASSERT_EQ(lap * 32 + i, out[i]);
	}
	shmpool_ring_close(r);
}

/*
 * SPSC: the producer and consumer sides change hands (new handles, as a
 * process taking over a dead one's side would): each new handle starts
 * from the ring's state, so the ring holds exactly count elements and
 * passes each exactly once.
 */
TEST_F(ring, spsc_sides_change_hands)
{
	struct shmpool_ring *p, *c;
	uint64_t v, next_in = 0, next_out = 0;
	unsigned int k, i;

	for (k = 0; k < 20; k++) {
		ASSERT_LE(0, shmpool_ring_create(self->h, self->name,
						 SHMPOOL_RING_SPSC, 16, 8, 0, &p));
		ASSERT_EQ(0, shmpool_ring_open(self->h, self->name,
					       SHMPOOL_RING_SPSC, 8, &c));
		/* fill to the brim, then take a few: 1 to 13 */
		while (shmpool_ring_enqueue(p, &next_in))
			next_in++;
		ASSERT_EQ(16, next_in - next_out);
		for (i = 0; i <= k % 13; i++) {
			ASSERT_EQ(1, shmpool_ring_dequeue(c, &v));
			ASSERT_EQ(next_out, v);
			next_out++;
		}
		shmpool_ring_close(p);
		shmpool_ring_close(c);
	}
	ASSERT_EQ(0, shmpool_ring_open(self->h, self->name, SHMPOOL_RING_SPSC,
				       8, &c));
	while (shmpool_ring_dequeue(c, &v)) {
		ASSERT_EQ(next_out, v);
		next_out++;
	}
	EXPECT_EQ(next_in, next_out);
	shmpool_ring_close(c);
}

/*
 * SPSC: consumers killed at random points in their work, each followed by
 * a new consumer handle, while a producer streams sequence numbers. A new
 * handle starts at cons.tail. What the killed one had copied out but not
 * yet counted comes again, but it never noted those: it notes elements
 * after the call returns, and the call counts them (cons.tail) before it
 * returns. So a killed consumer that noted @last leaves cons.tail at
 * @last + 1, or up to one call's worth (16) further when it was killed
 * between a call and its noting: the next one starts from @last + 1 to
 * @last + 17. Outside that window, and anywhere within one consumer, a
 * jump is an element lost (or given twice) by the ring.
 */
#define TAKEOVER_KILLS	12

struct takeover {
	struct shmpool_heap *h;
	const char *name;
	_Atomic uint64_t *last;	/* shared: last sequence number each consumer got */
	unsigned int k;		/* this consumer's index */
	_Atomic int *bad;	/* shared: a consumer saw a gap */
};

/* is @first where a consumer following one that got up to @last may start? */
static bool takeover_resumes(uint64_t first, uint64_t last)
{
	return first > last && first <= last + 1 + 16;
}

static void takeover_consume(void *arg, _Atomic uint64_t *progress)
{
	struct takeover *t = arg;
	struct shmpool_ring *r;
	uint64_t buf[16], next = UINT64_MAX;
	unsigned int rnd = 777 + t->k;
	uint32_t n, i;

	if (shmpool_ring_open(t->h, t->name, SHMPOOL_RING_SPSC, 8, &r))
		_exit(2);
	for (;;) {
		rnd = rnd * 1103515245 + 12345;
		n = (rnd >> 16) % 3 ? 1 : 1 + (rnd >> 20) % 16;
		n = shmpool_ring_dequeue_burst(r, buf, n);
		for (i = 0; i < n; i++) {
			if (next == UINT64_MAX ?
			    (t->k ? !takeover_resumes(buf[i], t->last[t->k - 1]) :
				    buf[i] != 0) :
			    buf[i] != next)
				atomic_store(t->bad, 1);
			next = buf[i] + 1;
			atomic_store(&t->last[t->k], buf[i]);
			atomic_fetch_add(progress, 1);
		}
	}
}

static int takeover_produce(void *arg)
{
	struct takeover *t = arg;
	struct shmpool_ring *r;
	uint64_t seq = 0;
	int ret;

	if (shmpool_ring_open(t->h, t->name, SHMPOOL_RING_SPSC, 8, &r))
		return 2;
	/* -ECONNRESET: the killed consumer's side is dead until the next one */
	while ((ret = shmpool_ring_enqueue_wait(r, &seq, 1, 0, NULL)) == 1 ||
	       ret == -ECONNRESET) {
		if (ret == 1)
			seq++;
		else
			usleep(1000);
	}
	shmpool_ring_close(r);
	return ret == -EPIPE ? 0 : 3;
}

TEST_F_TIMEOUT(ring, spsc_killed_consumer_taken_over, 300)
{
	struct takeover t = { self->h, self->name, NULL, 0, NULL };
	struct shmpool_ring *r;
	uint64_t first, v;
	unsigned int k;
	pid_t prod;

	t.last = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
		      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, (void *)t.last);
	t.bad = (_Atomic int *)(t.last + TAKEOVER_KILLS + 1);
	ASSERT_EQ(1, shmpool_ring_create(self->h, self->name, SHMPOOL_RING_SPSC,
					 64, 8, 0, &r));
	prod = spawn(takeover_produce, &t);
	ASSERT_LT(0, prod);
	for (k = 0; k < TAKEOVER_KILLS; k++) {
		t.k = k;
		ASSERT_EQ(0, kill_midway(takeover_consume, &t, 2000,
					 (unsigned int)rand() % 400));
		ASSERT_EQ(0, atomic_load(t.bad));
	}
	/* the last handle: where it starts tells whether anything was lost */
	while (!shmpool_ring_dequeue(r, &first))
		;
	EXPECT_TRUE(takeover_resumes(first, t.last[TAKEOVER_KILLS - 1]));
	for (k = 0; k < 10000; k++) {
		while (!shmpool_ring_dequeue(r, &v))
			;
		ASSERT_EQ(first + k + 1, v);
	}
	shmpool_ring_shutdown(r, SHMPOOL_RING_CONS);
	EXPECT_EQ(0, reap(prod));
	shmpool_ring_close(r);
	munmap((void *)t.last, 4096);
}

/* ---- blocking ----------------------------------------------------------------- */

struct blk {
	struct shmpool_heap *h;
	const char *name;
	uint32_t type;
	int enq;		/* 1: enqueue_wait, 0: dequeue_wait */
	_Atomic int32_t *ret;	/* in a shared page */
	_Atomic uint64_t *val;
};

static int blocker(void *arg)
{
	struct blk *b = arg;
	struct shmpool_ring *r;
	uint64_t v = 42;
	int ret;

	ret = shmpool_ring_open(b->h, b->name, b->type, 8, &r);
	if (ret)
		return 2;
	ret = b->enq ? shmpool_ring_enqueue_wait(r, &v, 1, 0, NULL) :
		       shmpool_ring_dequeue_wait(r, &v, 1, 0, NULL);
	*b->ret = ret;
	*b->val = v;
	shmpool_ring_close(r);
	return 0;
}

/*
 * A process blocks in enqueue (ring full) or dequeue (ring empty); once it
 * is surely asleep, @act(r) either makes room / data or shuts the other end.
 */
static void blocked(struct __test_metadata *_metadata, struct shmpool_heap *h,
		    const char *name, uint32_t type, int enq, int shut,
		    int32_t want_ret, uint64_t want_val)
{
	struct shmpool_ring *r;
	_Atomic int32_t *sh = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
				   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	struct blk b = { h, name, type, enq, sh, (_Atomic uint64_t *)(sh + 2) };
	uint64_t v = 7, before;
	pid_t pid;
	int i;

	ASSERT_NE(MAP_FAILED, (void *)sh);
	ASSERT_EQ(1, shmpool_ring_create(h, name, type, 4, 8, 0, &r));
	for (i = 0; enq && i < 4; i++)
		ASSERT_EQ(1, shmpool_ring_enqueue(r, &v));
	*sh = 1000;
	pid = spawn(blocker, &b);
	ASSERT_EQ(0, wait_asleep(pid));
	EXPECT_EQ(1000, *sh);	/* still blocked */
	before = shmpool_ring_wake_calls();
	if (shut) {
		ASSERT_EQ(0, shmpool_ring_shutdown(r, enq ? SHMPOOL_RING_CONS :
							    SHMPOOL_RING_PROD));
	} else if (enq) {
		ASSERT_EQ(1, shmpool_ring_dequeue(r, &v));
	} else {
		ASSERT_EQ(1, shmpool_ring_enqueue(r, &v));
	}
	/* the sleeper announced itself, so this side made a wake call */
	EXPECT_LT(before, shmpool_ring_wake_calls());
	ASSERT_EQ(0, reap(pid));
	EXPECT_EQ(want_ret, *sh);
	if (want_ret > 0) {
		EXPECT_EQ(want_val, *b.val);
	}
	shmpool_ring_close(r);
	munmap((void *)sh, 4096);
}

TEST_F(ring, spsc_consumer_woken_by_first_enqueue)
{
	blocked(_metadata, self->h, self->name, SHMPOOL_RING_SPSC, 0, 0, 1, 7);
}

TEST_F(ring, spsc_producer_woken_by_first_dequeue)
{
	blocked(_metadata, self->h, self->name, SHMPOOL_RING_SPSC, 1, 0, 1, 42);
}

TEST_F(ring, mpmc_consumer_woken_by_first_enqueue)
{
	blocked(_metadata, self->h, self->name, SHMPOOL_RING_MPMC, 0, 0, 1, 7);
}

TEST_F(ring, mpmc_producer_woken_by_first_dequeue)
{
	blocked(_metadata, self->h, self->name, SHMPOOL_RING_MPMC, 1, 0, 1, 42);
}

TEST_F(ring, spsc_shutdown_prod_wakes_consumer_epipe)
{
	blocked(_metadata, self->h, self->name, SHMPOOL_RING_SPSC, 0, 1, -EPIPE, 0);
}

TEST_F(ring, spsc_shutdown_cons_wakes_producer_epipe)
{
	blocked(_metadata, self->h, self->name, SHMPOOL_RING_SPSC, 1, 1, -EPIPE, 0);
}

TEST_F(ring, mpmc_shutdown_prod_wakes_consumer_epipe)
{
	blocked(_metadata, self->h, self->name, SHMPOOL_RING_MPMC, 0, 1, -EPIPE, 0);
}

TEST_F(ring, mpmc_shutdown_cons_wakes_producer_epipe)
{
	blocked(_metadata, self->h, self->name, SHMPOOL_RING_MPMC, 1, 1, -EPIPE, 0);
}

/* after the producers shut down, consumers still get what was sent, then EPIPE */
TEST_F(ring, shutdown_prod_drains_first)
{
	struct shmpool_ring *r;
	uint64_t v[4] = { 1, 2, 3, 4 }, out[4];

	ASSERT_EQ(1, shmpool_ring_create(self->h, self->name, SHMPOOL_RING_SPSC,
					 8, 8, 0, &r));
	ASSERT_EQ(3, shmpool_ring_enqueue_burst(r, v, 3));
	ASSERT_EQ(0, shmpool_ring_shutdown(r, SHMPOOL_RING_PROD));
	EXPECT_EQ(3, shmpool_ring_dequeue_wait(r, out, 4, 0, NULL));
	EXPECT_EQ(3, out[2]);
	EXPECT_EQ(-EPIPE, shmpool_ring_dequeue_wait(r, out, 4, 0, NULL));
	shmpool_ring_close(r);
}

TEST_F(ring, shutdown_cons_refuses_blocking_enqueue)
{
	struct shmpool_ring *r;
	uint64_t v = 1;

	ASSERT_EQ(1, shmpool_ring_create(self->h, self->name, SHMPOOL_RING_MPMC,
					 8, 8, 0, &r));
	ASSERT_EQ(0, shmpool_ring_shutdown(r, SHMPOOL_RING_CONS));
	EXPECT_EQ(-EPIPE, shmpool_ring_enqueue_wait(r, &v, 1, 0, NULL));
	shmpool_ring_close(r);
}

static void timed(struct __test_metadata *_metadata, struct shmpool_heap *h,
		  const char *name, uint32_t type, int enq, long ms)
{
	struct shmpool_ring *r;
	struct timespec dl = after_ms(ms);
	uint64_t v[4] = { 0 };

	ASSERT_EQ(1, shmpool_ring_create(h, name, type, 4, 8, 0, &r));
	if (enq) {
		ASSERT_EQ(4, shmpool_ring_enqueue_bulk(r, v, 4));
	}
	EXPECT_EQ(-ETIMEDOUT, enq ? shmpool_ring_enqueue_wait(r, v, 1, 0, &dl) :
				    shmpool_ring_dequeue_wait(r, v, 1, 0, &dl));
	/* the deadline has passed when it returns */
	EXPECT_EQ(-ETIMEDOUT, enq ? shmpool_ring_enqueue_wait(r, v, 1, 0, &dl) :
				    shmpool_ring_dequeue_wait(r, v, 1, 0, &dl));
	shmpool_ring_close(r);
}

TEST_F(ring, spsc_timed_dequeue_times_out)
{
	timed(_metadata, self->h, self->name, SHMPOOL_RING_SPSC, 0, 50);
}

TEST_F(ring, spsc_timed_enqueue_times_out)
{
	timed(_metadata, self->h, self->name, SHMPOOL_RING_SPSC, 1, 50);
}

TEST_F(ring, mpmc_timed_dequeue_times_out)
{
	timed(_metadata, self->h, self->name, SHMPOOL_RING_MPMC, 0, 50);
}

TEST_F(ring, mpmc_timed_enqueue_times_out)
{
	timed(_metadata, self->h, self->name, SHMPOOL_RING_MPMC, 1, 50);
}

TEST_F(ring, timed_bulk_waits_for_all)
{
	struct shmpool_ring *r;
	struct timespec dl = after_ms(50);
	uint64_t v[4] = { 0 };

	ASSERT_EQ(1, shmpool_ring_create(self->h, self->name, SHMPOOL_RING_SPSC,
					 4, 8, 0, &r));
	ASSERT_EQ(1, shmpool_ring_enqueue(r, v));
	EXPECT_EQ(-ETIMEDOUT, shmpool_ring_dequeue_wait(r, v, 2, SHMPOOL_RING_BULK, &dl));
	EXPECT_EQ(1, shmpool_ring_count(r));
	shmpool_ring_close(r);
}

/* ---- creation and lookup -------------------------------------------------------- */

TEST_F(ring, create_then_find_same)
{
	struct shmpool_ring *a, *b, *c;
	uint64_t v = 5, out = 0;

	ASSERT_EQ(1, shmpool_ring_create(self->h, self->name, SHMPOOL_RING_MPMC,
					 16, 8, SHMPOOL_RING_SC, &a));
	ASSERT_EQ(0, shmpool_ring_create(self->h, self->name, SHMPOOL_RING_MPMC,
					 16, 8, SHMPOOL_RING_SC, &b));
	ASSERT_EQ(0, shmpool_ring_open(self->h, self->name, SHMPOOL_RING_MPMC, 8, &c));
	EXPECT_EQ(a->off, c->off);
	EXPECT_EQ(1, shmpool_ring_enqueue(a, &v));
	EXPECT_EQ(1, shmpool_ring_dequeue(c, &out));
	EXPECT_EQ(5, out);
	shmpool_ring_close(a);
	shmpool_ring_close(b);
	shmpool_ring_close(c);
}

#define BAD_CREATE(tname, type, count, esize, flags)				\
TEST_F(ring, tname)								\
{										\
	struct shmpool_ring *r = NULL;						\
										\
	EXPECT_EQ(-EINVAL, shmpool_ring_create(self->h, self->name, type,	\
					       count, esize, flags, &r));	\
	EXPECT_EQ(NULL, r);							\
	EXPECT_EQ(-ENOENT, shmpool_ring_open(self->h, self->name,		\
			   SHMPOOL_RING_SPSC, 8, &r));				\
}

BAD_CREATE(create_count_zero, SHMPOOL_RING_SPSC, 0, 8, 0)
BAD_CREATE(create_count_one, SHMPOOL_RING_SPSC, 1, 8, 0)
BAD_CREATE(create_count_not_pow2, SHMPOOL_RING_MPMC, 100, 8, 0)
BAD_CREATE(create_count_too_big, SHMPOOL_RING_MPMC, SHMPOOL_RING_MAX_COUNT * 2, 8, 0)
BAD_CREATE(create_count_2_pow_32_minus_1, SHMPOOL_RING_SPSC, 0xffffffffU, 8, 0)
BAD_CREATE(create_esize_zero, SHMPOOL_RING_SPSC, 16, 0, 0)
BAD_CREATE(create_esize_not_mult4, SHMPOOL_RING_SPSC, 16, 6, 0)
BAD_CREATE(create_esize_too_big, SHMPOOL_RING_MPMC, 16, SHMPOOL_RING_MAX_ESIZE + 4, 0)
BAD_CREATE(create_type_zero, 0, 16, 8, 0)
BAD_CREATE(create_type_unknown, 99, 16, 8, 0)
BAD_CREATE(create_mpmc_unknown_flag, SHMPOOL_RING_MPMC, 16, 8, 1U << 5)
BAD_CREATE(create_spsc_with_flags, SHMPOOL_RING_SPSC, 16, 8, SHMPOOL_RING_SP)

TEST_F(ring, create_null_heap)
{
	struct shmpool_ring *r;

	EXPECT_EQ(-EINVAL, shmpool_ring_create(NULL, self->name, SHMPOOL_RING_SPSC,
					       16, 8, 0, &r));
}

TEST_F(ring, create_null_name)
{
	struct shmpool_ring *r;

	EXPECT_EQ(-EINVAL, shmpool_ring_create(self->h, NULL, SHMPOOL_RING_SPSC,
					       16, 8, 0, &r));
}

TEST_F(ring, create_bad_name)
{
	struct shmpool_ring *r;

	EXPECT_EQ(-EINVAL, shmpool_ring_create(self->h, "", SHMPOOL_RING_SPSC,
					       16, 8, 0, &r));
}

TEST_F(ring, create_null_out)
{
	EXPECT_EQ(-EINVAL, shmpool_ring_create(self->h, self->name,
					       SHMPOOL_RING_SPSC, 16, 8, 0, NULL));
}

TEST_F(ring, create_too_big_for_pool)
{
	struct shmpool_ring *r;

	EXPECT_EQ(-ENOMEM, shmpool_ring_create(self->h, self->name, SHMPOOL_RING_SPSC,
					       1U << 20, 8, 0, &r));
}

static void mismatch(struct __test_metadata *_metadata, struct shmpool_heap *h,
		     const char *name, uint32_t type, uint32_t count,
		     uint32_t esize, unsigned int flags)
{
	struct shmpool_ring *r, *x = NULL;

	ASSERT_EQ(1, shmpool_ring_create(h, name, SHMPOOL_RING_MPMC, 16, 8, 0, &r));
	EXPECT_EQ(-EEXIST, shmpool_ring_create(h, name, type, count, esize, flags, &x));
	EXPECT_EQ(NULL, x);
	shmpool_ring_close(r);
}

TEST_F(ring, create_existing_other_type)
{
	mismatch(_metadata, self->h, self->name, SHMPOOL_RING_SPSC, 16, 8, 0);
}

TEST_F(ring, create_existing_other_esize)
{
	mismatch(_metadata, self->h, self->name, SHMPOOL_RING_MPMC, 16, 16, 0);
}

TEST_F(ring, create_existing_other_count)
{
	mismatch(_metadata, self->h, self->name, SHMPOOL_RING_MPMC, 32, 8, 0);
}

TEST_F(ring, create_existing_other_flags)
{
	mismatch(_metadata, self->h, self->name, SHMPOOL_RING_MPMC, 16, 8,
		 SHMPOOL_RING_SP);
}

TEST_F(ring, create_existing_non_ring_object)
{
	struct shmpool_obj obj;
	struct shmpool_ring *r = NULL;

	ASSERT_EQ(1, shmpool_obj_create(self->h, self->name, 64, 0, &obj));
	EXPECT_EQ(-EEXIST, shmpool_ring_create(self->h, self->name,
					       SHMPOOL_RING_SPSC, 16, 8, 0, &r));
	EXPECT_EQ(-EPROTOTYPE, shmpool_ring_open(self->h, self->name,
						 SHMPOOL_RING_SPSC, 8, &r));
}

TEST_F(ring, open_other_type)
{
	struct shmpool_ring *r, *x = NULL;

	ASSERT_EQ(1, shmpool_ring_create(self->h, self->name, SHMPOOL_RING_SPSC,
					 16, 8, 0, &r));
	EXPECT_EQ(-EPROTOTYPE, shmpool_ring_open(self->h, self->name,
						 SHMPOOL_RING_MPMC, 8, &x));
	EXPECT_EQ(NULL, x);
	shmpool_ring_close(r);
}

TEST_F(ring, open_other_esize)
{
	struct shmpool_ring *r, *x = NULL;

	ASSERT_EQ(1, shmpool_ring_create(self->h, self->name, SHMPOOL_RING_SPSC,
					 16, 8, 0, &r));
	EXPECT_EQ(-EPROTOTYPE, shmpool_ring_open(self->h, self->name,
						 SHMPOOL_RING_SPSC, 4, &x));
	EXPECT_EQ(NULL, x);
	shmpool_ring_close(r);
}

/*
 * A ring left by a library of another layout (version 0: the word was
 * reserved and zero; 2: a word per SPSC slot; 3: one word per SPSC group;
 * 5: message receivers that claim after the dequeue; 6: publishers that
 * record no ring index; or a newer one) is refused by name, not misused.
 */
TEST_F(ring, old_layout_version_refused)
{
	static const uint32_t other[] = { 0, 2, 3, 5, 6, __SHMPOOL_RING_VERSION + 1 };
	struct shmpool_ring *r, *x = NULL;
	unsigned int i;

	ASSERT_EQ(1, shmpool_ring_create(self->h, self->name, SHMPOOL_RING_SPSC,
					 16, 8, 0, &r));
	for (i = 0; i < sizeof(other) / sizeof(other[0]); i++) {
		r->hdr->d.version = other[i];
		EXPECT_EQ(-EPROTONOSUPPORT, shmpool_ring_open(self->h, self->name,
							      SHMPOOL_RING_SPSC,
							      8, &x));
		EXPECT_EQ(NULL, x);
		EXPECT_EQ(-EPROTONOSUPPORT, shmpool_ring_create(self->h, self->name,
								SHMPOOL_RING_SPSC,
								16, 8, 0, &x));
		EXPECT_EQ(NULL, x);
	}
	r->hdr->d.version = __SHMPOOL_RING_VERSION;
	EXPECT_EQ(0, shmpool_ring_open(self->h, self->name, SHMPOOL_RING_SPSC,
				       8, &x));
	shmpool_ring_close(x);
	shmpool_ring_close(r);
}

/*
 * Every slot shape (element after a 4- or 8-byte word, power-of-two slots
 * up to a cache line, 8-byte multiples beyond): laps of singles, bulks and
 * bursts through a small ring, each byte of each element checked.
 */
static unsigned char shape_byte(uint32_t seq, uint32_t byte)
{
	return (unsigned char)(seq * 31 + byte * 7 + 1);
}

static void shapes(struct __test_metadata *_metadata, struct shmpool_heap *h,
		   const char *name, uint32_t type)
{
	static const uint32_t esizes[] = { 4, 8, 12, 16, 20, 24, 28, 56, 60, 64, 68, 132 };
	unsigned char in[7 * 132], out[7 * 132];
	unsigned int rnd = 1, i, k, n, got;
	uint32_t e, seq_in, seq_out;
	struct shmpool_ring *r;
	char nm[80];

	for (i = 0; i < sizeof(esizes) / sizeof(esizes[0]); i++) {
		e = esizes[i];
		snprintf(nm, sizeof(nm), "%s.%u", name, e);
		ASSERT_EQ(1, shmpool_ring_create(h, nm, type, 8, e, 0, &r));
		seq_in = seq_out = 0;
		while (seq_out < 400) {
			rnd = rnd * 1103515245 + 12345;
			n = 1 + (rnd >> 16) % 7;
			for (k = 0; k < n * e; k++)
				in[k] = shape_byte(seq_in + k / e, k % e);
			n = (rnd >> 8) & 1 ? shmpool_ring_enqueue_bulk(r, in, n) :
					     shmpool_ring_enqueue_burst(r, in, n);
			seq_in += n;
			ASSERT_EQ(seq_in - seq_out, shmpool_ring_count(r));
			n = 1 + (rnd >> 20) % 7;
			got = (rnd >> 9) & 1 ? shmpool_ring_dequeue_bulk(r, out, n) :
					       shmpool_ring_dequeue_burst(r, out, n);
			ASSERT_TRUE(got == n || (got < n && got == seq_in - seq_out) ||
				    (!got && (rnd >> 9) & 1));
			for (k = 0; k < got * e; k++)
				ASSERT_EQ(shape_byte(seq_out + k / e, k % e), out[k]) {
					TH_LOG("esize %u element %u byte %u", e,
					       seq_out + k / e, k % e);
				}
			seq_out += got;
		}
		shmpool_ring_close(r);
	}
}

TEST_F(ring, spsc_every_slot_shape)
{
	shapes(_metadata, self->h, self->name, SHMPOOL_RING_SPSC);
}

TEST_F(ring, mpmc_every_slot_shape)
{
	shapes(_metadata, self->h, self->name, SHMPOOL_RING_MPMC);
}

TEST_F(ring, open_missing)
{
	struct shmpool_ring *r;

	EXPECT_EQ(-ENOENT, shmpool_ring_open(self->h, self->name,
					     SHMPOOL_RING_SPSC, 8, &r));
}

TEST_F(ring, open_bad_type)
{
	struct shmpool_ring *r;

	EXPECT_EQ(-EINVAL, shmpool_ring_open(self->h, self->name, 0, 8, &r));
}

/* rejected arguments of the blocking calls, each on a ring with room and data */
static void bad_wait(struct __test_metadata *_metadata, struct shmpool_heap *h,
		     const char *name, uint32_t n, unsigned int flags,
		     const struct timespec *dl)
{
	struct shmpool_ring *r;
	uint64_t v[8] = { 0 };

	ASSERT_EQ(1, shmpool_ring_create(h, name, SHMPOOL_RING_MPMC, 4, 8, 0, &r));
	ASSERT_EQ(2, shmpool_ring_enqueue_bulk(r, v, 2));
	EXPECT_EQ(-EINVAL, shmpool_ring_enqueue_wait(r, v, n, flags, dl));
	EXPECT_EQ(-EINVAL, shmpool_ring_dequeue_wait(r, v, n, flags, dl));
	EXPECT_EQ(2, shmpool_ring_count(r));	/* nothing moved */
	shmpool_ring_close(r);
}

TEST_F(ring, wait_bulk_above_count)
{
	bad_wait(_metadata, self->h, self->name, 5, SHMPOOL_RING_BULK, NULL);
}

TEST_F(ring, wait_unknown_flags)
{
	bad_wait(_metadata, self->h, self->name, 1, 1U << 7, NULL);
}

TEST_F(ring, wait_bad_nsec)
{
	struct timespec dl = { 1, 1000000000L };

	bad_wait(_metadata, self->h, self->name, 1, 0, &dl);
}

TEST_F(ring, wait_negative_sec)
{
	struct timespec dl = { -1, 0 };

	bad_wait(_metadata, self->h, self->name, 1, 0, &dl);
}

TEST_F(ring, wait_null_ring)
{
	uint64_t v = 0;

	EXPECT_EQ(-EINVAL, shmpool_ring_enqueue_wait(NULL, &v, 1, 0, NULL));
	EXPECT_EQ(-EINVAL, shmpool_ring_dequeue_wait(NULL, &v, 1, 0, NULL));
}

TEST_F(ring, shutdown_bad_ends)
{
	struct shmpool_ring *r;

	ASSERT_EQ(1, shmpool_ring_create(self->h, self->name, SHMPOOL_RING_SPSC,
					 4, 8, 0, &r));
	EXPECT_EQ(-EINVAL, shmpool_ring_shutdown(r, 0));
	EXPECT_EQ(-EINVAL, shmpool_ring_shutdown(r, 1U << 4));
	shmpool_ring_close(r);
}

/* ---- variable-size records --------------------------------------------------------- */

/* the length of record @i: mostly small, 1 in 16 anything up to @max */
static uint32_t var_len(uint64_t i, uint32_t max)
{
	uint64_t x = (i + 1) * 0x9e3779b97f4a7c15ULL;

	x ^= x >> 29;
	return (x & 15) ? 1 + (uint32_t)((x >> 8) % 24) :
			  1 + (uint32_t)((x >> 8) % max);
}

/* record @i: its number in the first bytes, then a byte that depends on @i */
static unsigned char var_byte(uint64_t i)
{
	return (unsigned char)(i * 31 + (i >> 8) + 1);
}

static void var_fill(unsigned char *p, uint64_t i, uint32_t len)
{
	memset(p, var_byte(i), len);
	memcpy(p, &i, len < 8 ? len : 8);
}

/* 0 if the @len bytes at @p are record @i's */
static int var_check(const unsigned char *p, uint64_t i, uint32_t len)
{
	unsigned char b = var_byte(i), bad = 0;
	uint32_t k;

	if (memcmp(p, &i, len < 8 ? len : 8))
		return -1;
	for (k = 8; k < len; k++)
		bad |= p[k] ^ b;
	return bad ? -1 : 0;
}

static int var_producer(void *arg)
{
	struct job *j = arg;
	struct shmpool_ring *r;
	uint64_t i;
	void *p;
	int ret;

	if (shmpool_ring_open(j->h, j->name, SHMPOOL_RING_VAR, 8, &r))
		return 2;
	for (i = 0; i < j->n; i++) {
		uint32_t len = var_len(i, shmpool_ring_max_record(r));

		/* every 4th record through the non-blocking call */
		ret = (i & 3) ? -EAGAIN : shmpool_ring_reserve(r, len, &p);
		if (ret == -EAGAIN)
			ret = shmpool_ring_reserve_wait(r, len, &p, NULL);
		if (ret) {
			fprintf(stderr, "var producer: reserve: %d\n", ret);
			return 3;
		}
		if ((uintptr_t)p & 7)
			return 4;
		var_fill(p, i, len);
		shmpool_ring_commit(r);
	}
	shmpool_ring_close(r);
	return 0;
}

static int var_consumer(void *arg)
{
	struct job *j = arg;
	struct shmpool_ring *r;
	const unsigned char *p;
	uint64_t i;
	int len;

	if (shmpool_ring_open(j->h, j->name, SHMPOOL_RING_VAR, 8, &r))
		return 2;
	for (i = 0;; i++) {
		len = (i & 1) ? -EAGAIN : shmpool_ring_peek(r, (const void **)&p);
		if (len == -EAGAIN)
			len = shmpool_ring_peek_wait(r, (const void **)&p, NULL);
		if (len == -EPIPE)
			break;
		if (len <= 0 || i >= j->n ||
		    (uint32_t)len != var_len(i, shmpool_ring_max_record(r))) {
			fprintf(stderr, "var consumer: record %llu: len %d\n",
				(unsigned long long)i, len);
			return 3;
		}
		if (var_check(p, i, (uint32_t)len)) {
			fprintf(stderr, "var consumer: record %llu corrupt\n",
				(unsigned long long)i);
			return 4;
		}
		shmpool_ring_release(r);
	}
	j->rep->got[0] = i;
	shmpool_ring_close(r);
	return 0;
}

static void var_stream(struct __test_metadata *_metadata,
		       struct shmpool_heap *h, const char *name,
		       uint32_t bytes, uint64_t n)
{
	struct report *rep = new_report(0);
	struct shmpool_ring *r;
	struct job j = { h, name, SHMPOOL_RING_VAR, 8, 0, 1, n, 0, rep };
	pid_t c, p;

	ASSERT_NE(NULL, rep);
	ASSERT_EQ(1, shmpool_ring_create(h, name, SHMPOOL_RING_VAR, bytes, 8, 0, &r));
	c = spawn(var_consumer, &j);
	p = spawn(var_producer, &j);
	EXPECT_EQ(0, reap(p));
	ASSERT_EQ(0, shmpool_ring_shutdown(r, SHMPOOL_RING_PROD));
	EXPECT_EQ(0, reap(c));
	EXPECT_EQ(n, rep->got[0]);
	shmpool_ring_close(r);
	munmap(rep, sizeof(*rep));
}

TEST_F_TIMEOUT(ring, var_stream_random_sizes, 300)
{
	var_stream(_metadata, self->h, self->name, 4096, stream_elems());
}

/* a small ring: most records land near the wrap, many straddle it */
TEST_F_TIMEOUT(ring, var_stream_small_ring_wraps, 300)
{
	var_stream(_metadata, self->h, self->name, 256, stream_elems() / 20);
}

/* a record that does not fit before the end starts at the ring's start */
TEST_F(ring, var_record_never_split_at_wrap)
{
	struct shmpool_ring *r;
	void *first, *p;
	const void *q;

	ASSERT_EQ(1, shmpool_ring_create(self->h, self->name, SHMPOOL_RING_VAR,
					 64, 8, 0, &r));
	ASSERT_EQ(24, shmpool_ring_max_record(r));
	ASSERT_EQ(0, shmpool_ring_reserve(r, 20, &first));	/* [0, 32) */
	memset(first, 1, 20);
	shmpool_ring_commit(r);
	ASSERT_EQ(0, shmpool_ring_reserve(r, 8, &p));		/* [32, 48) */
	memset(p, 2, 8);
	shmpool_ring_commit(r);
	/* 16 bytes before the end, 24 + 8 needed: a pad, then [0, 32) — no room yet */
	EXPECT_EQ(-EAGAIN, shmpool_ring_reserve(r, 24, &p));
	ASSERT_EQ(20, shmpool_ring_peek(r, &q));
	EXPECT_EQ(first, q);
	shmpool_ring_release(r);
	ASSERT_EQ(0, shmpool_ring_reserve(r, 24, &p));
	EXPECT_EQ(first, p);			/* wrapped whole to the start */
	memset(p, 3, 24);
	shmpool_ring_commit(r);
	ASSERT_EQ(8, shmpool_ring_peek(r, &q));
	EXPECT_EQ(2, ((const unsigned char *)q)[7]);
	shmpool_ring_release(r);
	ASSERT_EQ(24, shmpool_ring_peek(r, &q));	/* skips the pad */
	EXPECT_EQ(first, q);
	EXPECT_EQ(3, ((const unsigned char *)q)[23]);
	shmpool_ring_release(r);
	EXPECT_EQ(-EAGAIN, shmpool_ring_peek(r, &q));
	shmpool_ring_close(r);
}

TEST_F(ring, var_timed_and_shutdown)
{
	struct shmpool_ring *r;
	struct timespec dl = after_ms(50);
	const void *q;
	void *p;

	ASSERT_EQ(1, shmpool_ring_create(self->h, self->name, SHMPOOL_RING_VAR,
					 64, 8, 0, &r));
	EXPECT_EQ(-ETIMEDOUT, shmpool_ring_peek_wait(r, &q, &dl));
	ASSERT_EQ(0, shmpool_ring_reserve(r, 24, &p));
	shmpool_ring_commit(r);
	ASSERT_EQ(0, shmpool_ring_reserve(r, 24, &p));
	shmpool_ring_commit(r);
	dl = after_ms(50);
	EXPECT_EQ(-ETIMEDOUT, shmpool_ring_reserve_wait(r, 1, &p, &dl));
	ASSERT_EQ(0, shmpool_ring_shutdown(r, SHMPOOL_RING_PROD));
	EXPECT_EQ(24, shmpool_ring_peek_wait(r, &q, NULL));	/* drains first */
	shmpool_ring_release(r);
	EXPECT_EQ(24, shmpool_ring_peek_wait(r, &q, NULL));
	shmpool_ring_release(r);
	EXPECT_EQ(-EPIPE, shmpool_ring_peek_wait(r, &q, NULL));
	ASSERT_EQ(0, shmpool_ring_shutdown(r, SHMPOOL_RING_CONS));
	EXPECT_EQ(-EPIPE, shmpool_ring_reserve_wait(r, 1, &p, NULL));
	shmpool_ring_close(r);
}

TEST_F(ring, var_reserve_zero_length)
{
	struct shmpool_ring *r;
	void *p;

	ASSERT_EQ(1, shmpool_ring_create(self->h, self->name, SHMPOOL_RING_VAR,
					 64, 8, 0, &r));
	EXPECT_EQ(-EINVAL, shmpool_ring_reserve(r, 0, &p));
	EXPECT_EQ(-EINVAL, shmpool_ring_reserve_wait(r, 0, &p, NULL));
	shmpool_ring_close(r);
}

TEST_F(ring, var_reserve_above_max_record)
{
	struct shmpool_ring *r;
	void *p;

	ASSERT_EQ(1, shmpool_ring_create(self->h, self->name, SHMPOOL_RING_VAR,
					 64, 8, 0, &r));
	EXPECT_EQ(-EINVAL, shmpool_ring_reserve(r, 25, &p));
	EXPECT_EQ(-EINVAL, shmpool_ring_reserve_wait(r, 25, &p, NULL));
	shmpool_ring_close(r);
}

TEST_F(ring, var_calls_on_element_ring)
{
	struct shmpool_ring *r;
	const void *q;
	void *p;

	ASSERT_EQ(1, shmpool_ring_create(self->h, self->name, SHMPOOL_RING_SPSC,
					 64, 8, 0, &r));
	EXPECT_EQ(-EINVAL, shmpool_ring_reserve_wait(r, 1, &p, NULL));
	EXPECT_EQ(-EINVAL, shmpool_ring_peek_wait(r, &q, NULL));
	shmpool_ring_close(r);
}

TEST_F(ring, element_calls_on_var_ring)
{
	struct shmpool_ring *r;
	uint64_t v = 0;

	ASSERT_EQ(1, shmpool_ring_create(self->h, self->name, SHMPOOL_RING_VAR,
					 64, 8, 0, &r));
	EXPECT_EQ(-EINVAL, shmpool_ring_enqueue_wait(r, &v, 1, 0, NULL));
	EXPECT_EQ(-EINVAL, shmpool_ring_dequeue_wait(r, &v, 1, 0, NULL));
	shmpool_ring_close(r);
}

BAD_CREATE(create_var_esize_not_8, SHMPOOL_RING_VAR, 4096, 4, 0)
BAD_CREATE(create_var_too_small, SHMPOOL_RING_VAR, 32, 8, 0)
BAD_CREATE(create_var_not_pow2, SHMPOOL_RING_VAR, 3000, 8, 0)
BAD_CREATE(create_var_with_flags, SHMPOOL_RING_VAR, 4096, 8, SHMPOOL_RING_SC)

/* ---- zero-copy messages ------------------------------------------------------------ */

static int zc_producer(void *arg)
{
	struct job *j = arg;
	struct shmpool_ring *r;
	struct shmpool_msg m;
	uint64_t i, tag;
	void *p;
	int ret;

	if (shmpool_ring_open(j->h, j->name, j->type, sizeof(m), &r))
		return 2;
	for (i = 0; i < j->n; i++) {
		uint32_t len = 8 + var_len(i, 2040);

		/* the heap may run dry while the consumer lags: wait for frees */
		while ((ret = shmpool_msg_loan(r, len, &p, &m)) == -ENOMEM)
			sched_yield();
		if (ret)
			return 3;
		tag = ((uint64_t)j->idx << 56) | i;
		var_fill(p, tag, len);
		ret = shmpool_msg_publish(r, &m, (i & 1) ? SHMPOOL_MSG_NONBLOCK : 0, NULL);
		if (ret == -EAGAIN)
			ret = shmpool_msg_publish(r, &m, 0, NULL);
		if (ret) {
			fprintf(stderr, "zc producer: publish: %d\n", ret);
			return 4;
		}
	}
	shmpool_ring_close(r);
	return 0;
}

static int zc_consumer(void *arg)
{
	struct job *j = arg;
	struct shmpool_ring *r;
	struct shmpool_msg m;
	uint64_t got = 0, next[4] = { 0 };
	const unsigned char *p;
	int ret;

	if (shmpool_ring_open(j->h, j->name, j->type, sizeof(m), &r))
		return 2;
	for (;;) {
		uint64_t tag, seq;
		int prod;

		ret = shmpool_msg_receive(r, &m, (const void **)&p, 0, NULL);
		if (ret == -EPIPE)
			break;
		if (ret) {
			fprintf(stderr, "zc consumer: receive: %d\n", ret);
			return 3;
		}
		memcpy(&tag, p, 8);
		prod = (int)(tag >> 56);
		seq = tag & ((1ULL << 56) - 1);
		if (prod >= j->nprod || seq < next[prod] || seq >= j->n ||
		    m.len != 8 + var_len(seq, 2040) || var_check(p, tag, (uint32_t)m.len)) {
			fprintf(stderr, "zc consumer: bad message %d/%llu\n", prod,
				(unsigned long long)seq);
			return 4;
		}
		next[prod] = seq + 1;
		if (shmpool_msg_release(r, &m))
			return 5;
		got++;
	}
	j->rep->got[j->idx] = got;
	shmpool_ring_close(r);
	return 0;
}

/* heap blocks in use now: allocated blocks plus small objects of every class */
static uint64_t heap_used(struct shmpool_heap *h)
{
	struct shmpool_heap_stats st;
	uint64_t used;
	int i;

	if (shmpool_heap_stats(h, &st))
		return UINT64_MAX;
	used = st.alloc_blocks;
	for (i = 0; i < SHMPOOL_HEAP_NR_CLASSES; i++)
		used += st.classes[i].used;
	return used;
}

static void zc_stream(struct __test_metadata *_metadata, struct shmpool_heap *h,
		      const char *name, uint32_t type, int np, int nc, uint64_t n)
{
	struct report *rep = new_report(0);
	struct shmpool_ring *r;
	struct job pj[2], cj[2];
	pid_t pp[2], cp[2];
	char msg[256];
	uint64_t used0;
	int i;

	ASSERT_NE(NULL, rep);
	ASSERT_EQ(1, shmpool_ring_create(h, name, type, 256,
					 sizeof(struct shmpool_msg), 0, &r));
	used0 = heap_used(h);
	for (i = 0; i < nc; i++) {
		cj[i] = (struct job){ h, name, type, 16, i, np, n, 0, rep };
		cp[i] = spawn(zc_consumer, &cj[i]);
	}
	for (i = 0; i < np; i++) {
		pj[i] = (struct job){ h, name, type, 16, i, np, n, 0, rep };
		pp[i] = spawn(zc_producer, &pj[i]);
	}
	for (i = 0; i < np; i++)
		EXPECT_EQ(0, reap(pp[i]));
	ASSERT_EQ(0, shmpool_ring_shutdown(r, SHMPOOL_RING_PROD));
	for (i = 0; i < nc; i++)
		EXPECT_EQ(0, reap(cp[i]));
	EXPECT_EQ(n * np, rep->got[0] + rep->got[1]);
	/* every loaned block came back: the heap is as free as before */
	EXPECT_EQ(used0, heap_used(h));
	EXPECT_EQ(0, shmpool_heap_check(h, SHMPOOL_CHECK_QUIESCENT, msg, sizeof(msg)));
	shmpool_ring_close(r);
	munmap(rep, sizeof(*rep));
}

TEST_F_TIMEOUT(ring, zc_spsc_stream_heap_free_after, 300)
{
	zc_stream(_metadata, self->h, self->name, SHMPOOL_RING_SPSC, 1, 1,
		  stream_elems() / 10);
}

TEST_F_TIMEOUT(ring, zc_mpmc_2p2c_heap_free_after, 300)
{
	zc_stream(_metadata, self->h, self->name, SHMPOOL_RING_MPMC, 2, 2,
		  stream_elems() / 20);
}

TEST_F(ring, zc_receive_bad_descriptor)
{
	struct shmpool_ring *r;
	struct shmpool_msg m = { 12345, 10 }, got;
	const void *p;
	void *q;

	ASSERT_EQ(1, shmpool_ring_create(self->h, self->name, SHMPOOL_RING_SPSC,
					 16, sizeof(m), 0, &r));
	ASSERT_EQ(1, shmpool_ring_enqueue(r, &m));
	EXPECT_EQ(-EUCLEAN, shmpool_msg_receive(r, &got, &p, 0, NULL));
	/* a real block, but a length beyond it */
	ASSERT_EQ(0, shmpool_msg_loan(r, 32, &q, &m));
	m.len = 1 << 20;
	ASSERT_EQ(1, shmpool_ring_enqueue(r, &m));
	EXPECT_EQ(-EUCLEAN, shmpool_msg_receive(r, &got, &p, 0, NULL));
	EXPECT_EQ(0, shmpool_msg_release(r, &got));
	EXPECT_EQ(-EAGAIN, shmpool_msg_receive(r, &got, &p, SHMPOOL_MSG_NONBLOCK, NULL));
	shmpool_ring_close(r);
}

TEST_F(ring, zc_release_twice)
{
	struct shmpool_ring *r;
	struct shmpool_msg m;
	void *q;

	ASSERT_EQ(1, shmpool_ring_create(self->h, self->name, SHMPOOL_RING_MPMC,
					 16, sizeof(m), 0, &r));
	ASSERT_EQ(0, shmpool_msg_loan(r, 100, &q, &m));
	EXPECT_EQ(0, shmpool_msg_release(r, &m));
	EXPECT_EQ(-EINVAL, shmpool_msg_release(r, &m));
	shmpool_ring_close(r);
}

TEST_F(ring, zc_loan_zero_length)
{
	struct shmpool_ring *r;
	struct shmpool_msg m;
	void *q;

	ASSERT_EQ(1, shmpool_ring_create(self->h, self->name, SHMPOOL_RING_SPSC,
					 16, sizeof(m), 0, &r));
	EXPECT_EQ(-EINVAL, shmpool_msg_loan(r, 0, &q, &m));
	shmpool_ring_close(r);
}

TEST_F(ring, zc_ring_of_wrong_esize)
{
	struct shmpool_ring *r;
	struct shmpool_msg m = { 0, 0 };
	void *q;

	ASSERT_EQ(1, shmpool_ring_create(self->h, self->name, SHMPOOL_RING_SPSC,
					 16, 8, 0, &r));
	EXPECT_EQ(-EINVAL, shmpool_msg_loan(r, 16, &q, &m));
	EXPECT_EQ(-EINVAL, shmpool_msg_publish(r, &m, 0, NULL));
	shmpool_ring_close(r);
}

TEST_F(ring, zc_publish_full_nonblock)
{
	struct shmpool_ring *r;
	struct shmpool_msg m[3];
	void *q;
	int i;

	ASSERT_EQ(1, shmpool_ring_create(self->h, self->name, SHMPOOL_RING_SPSC,
					 2, sizeof(m[0]), 0, &r));
	for (i = 0; i < 3; i++)
		ASSERT_EQ(0, shmpool_msg_loan(r, 64, &q, &m[i]));
	EXPECT_EQ(0, shmpool_msg_publish(r, &m[0], SHMPOOL_MSG_NONBLOCK, NULL));
	EXPECT_EQ(0, shmpool_msg_publish(r, &m[1], SHMPOOL_MSG_NONBLOCK, NULL));
	EXPECT_EQ(-EAGAIN, shmpool_msg_publish(r, &m[2], SHMPOOL_MSG_NONBLOCK, NULL));
	for (i = 0; i < 3; i++)
		EXPECT_EQ(0, shmpool_msg_release(r, &m[i]));
	shmpool_ring_close(r);
}

/* ---- a process dies (shmpool_ring.h, "Owner death") ------------------------------ */

/* the old library (before layout 5) had no owners to record */
#ifndef __SHMPOOL_RING_CLAIM
#define __SHMPOOL_RING_CLAIM(r, side)	((void)(r))
#endif

#define DEATH_WAIT_MS	10000	/* a hang detector: the error comes long before */

struct death {
	struct shmpool_heap *h;
	const char *name;
	uint32_t type;
	_Atomic int32_t *ret;	/* shared: the survivor's last result */
	_Atomic int32_t *moved;	/* shared: what it moved before that */
	int senders;		/* one_shot_receiver(): how many to wait for */
};

/* one blocking call of @prod's side on @r: > 0 moved, or -errno */
static int death_call(struct shmpool_ring *r, uint32_t type, int prod,
		      uint64_t *v, const struct timespec *dl)
{
	const void *q;
	void *p;
	int ret;

	if (type != SHMPOOL_RING_VAR)
		return prod ? shmpool_ring_enqueue_wait(r, v, 1, 0, dl) :
			      shmpool_ring_dequeue_wait(r, v, 1, 0, dl);
	if (prod) {
		ret = shmpool_ring_reserve_wait(r, 24, &p, dl);
		if (ret)
			return ret;
		memcpy(p, v, 8);
		shmpool_ring_commit(r);
		return 1;
	}
	ret = shmpool_ring_peek_wait(r, &q, dl);
	if (ret < 0)
		return ret;
	memcpy(v, q, 8);
	shmpool_ring_release(r);
	return 1;
}

/*
 * The victims: a producer fills the ring (4 elements, 2 VAR records), a
 * consumer takes one element; then each waits to be killed.
 */
static int death_victim_prod(void *arg)
{
	struct death *d = arg;
	struct shmpool_ring *r;
	uint64_t v;

	if (shmpool_ring_open(d->h, d->name, d->type, 8, &r))
		return 2;
	for (v = 0; v < (d->type == SHMPOOL_RING_VAR ? 2 : 4); v++)
		if (death_call(r, d->type, 1, &v, NULL) != 1)
			return 3;
	for (;;)
		pause();
}

static int death_victim_cons(void *arg)
{
	struct death *d = arg;
	struct shmpool_ring *r;
	uint64_t v;

	if (shmpool_ring_open(d->h, d->name, d->type, 8, &r))
		return 2;
	if (death_call(r, d->type, 0, &v, NULL) != 1)
		return 3;
	for (;;)
		pause();
}

/* the survivor: move until a call fails; that result and the count */
static int death_survivor(void *arg, int prod)
{
	struct death *d = arg;
	struct shmpool_ring *r;
	struct timespec dl = after_ms(DEATH_WAIT_MS);
	uint64_t v = 100;
	int ret;

	if (shmpool_ring_open(d->h, d->name, d->type, 8, &r))
		return 2;
	while ((ret = death_call(r, d->type, prod, &v, &dl)) == 1)
		atomic_fetch_add(d->moved, 1);
	*d->ret = ret;
	shmpool_ring_close(r);
	return 0;
}

static int death_survivor_prod(void *arg)
{
	return death_survivor(arg, 1);
}

static int death_survivor_cons(void *arg)
{
	return death_survivor(arg, 0);
}

/*
 * The victim works one side and blocks (a full ring for a producer, an
 * empty one for a consumer); the survivor works the other side until it
 * blocks too; then the victim is SIGKILLed. The survivor's blocked call
 * must end with -ECONNRESET, not sleep to its deadline (-ETIMEDOUT); a
 * consumer first drains what the dead producer sent.
 */
static void peer_killed(struct __test_metadata *_metadata, struct shmpool_heap *h,
			const char *name, uint32_t type, int victim_prod)
{
	struct shmpool_ring *r;
	_Atomic int32_t *sh = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
				   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	struct death d = { h, name, type, sh, sh + 1, 0 };
	uint32_t count = type == SHMPOOL_RING_VAR ? 64 : 4;
	pid_t victim, surv;

	ASSERT_NE(MAP_FAILED, (void *)sh);
	ASSERT_EQ(1, shmpool_ring_create(h, name, type, count,
					 type == SHMPOOL_RING_VAR ? 8 : 8, 0, &r));
	*sh = 1000;
	victim = spawn(victim_prod ? death_victim_prod : death_victim_cons, &d);
	ASSERT_EQ(0, wait_asleep(victim));
	surv = spawn(victim_prod ? death_survivor_cons : death_survivor_prod, &d);
	ASSERT_EQ(0, wait_asleep(surv));
	EXPECT_EQ(1000, *sh);	/* the survivor still waits */
	kill(victim, SIGKILL);
	EXPECT_EQ(128 + SIGKILL, reap(victim));
	ASSERT_EQ(0, reap(surv));
	EXPECT_EQ(-ECONNRESET, *sh);
	if (victim_prod) {	/* what the producer sent came first */
		EXPECT_EQ(type == SHMPOOL_RING_VAR ? 2 : 4, *d.moved);
	}
	shmpool_ring_close(r);
	munmap((void *)sh, 4096);
}

TEST_F_TIMEOUT(ring, spsc_producer_killed_blocked_consumer_econnreset, 60)
{
	peer_killed(_metadata, self->h, self->name, SHMPOOL_RING_SPSC, 1);
}

TEST_F_TIMEOUT(ring, spsc_consumer_killed_blocked_producer_econnreset, 60)
{
	peer_killed(_metadata, self->h, self->name, SHMPOOL_RING_SPSC, 0);
}

TEST_F_TIMEOUT(ring, mpmc_producer_killed_blocked_consumer_econnreset, 60)
{
	peer_killed(_metadata, self->h, self->name, SHMPOOL_RING_MPMC, 1);
}

TEST_F_TIMEOUT(ring, mpmc_consumer_killed_blocked_producer_econnreset, 60)
{
	peer_killed(_metadata, self->h, self->name, SHMPOOL_RING_MPMC, 0);
}

TEST_F_TIMEOUT(ring, var_producer_killed_blocked_consumer_econnreset, 60)
{
	peer_killed(_metadata, self->h, self->name, SHMPOOL_RING_VAR, 1);
}

TEST_F_TIMEOUT(ring, var_consumer_killed_blocked_producer_econnreset, 60)
{
	peer_killed(_metadata, self->h, self->name, SHMPOOL_RING_VAR, 0);
}

/* a producer that sends *moved once, closes its handle and leaves */
static int one_shot_sender(void *arg)
{
	struct death *d = arg;
	struct shmpool_ring *r;
	uint64_t v = (uint64_t)*d->moved;

	if (shmpool_ring_open(d->h, d->name, d->type, 8, &r))
		return 2;
	if (death_call(r, d->type, 1, &v, NULL) != 1)
		return 3;
	shmpool_ring_close(r);
	return 0;
}

#define ONE_SHOT_SENDERS	64

/* the consumer: d->senders elements, 0, 1, ... in order; its error in *ret */
static int one_shot_receiver(void *arg)
{
	struct death *d = arg;
	struct shmpool_ring *r;
	struct timespec dl;
	uint64_t k, v;
	int ret;

	if (shmpool_ring_open(d->h, d->name, d->type, 8, &r))
		return 2;
	for (k = 0; k < (uint64_t)d->senders; k++) {
		dl = after_ms(DEATH_WAIT_MS);
		ret = death_call(r, d->type, 0, &v, &dl);
		if (ret != 1 || v != k) {
			*d->ret = ret;
			return 3;
		}
	}
	shmpool_ring_close(r);
	return 0;
}

/*
 * Producers one after another (ONE_SHOT_SENDERS, a quarter of them in the
 * debug lane), each sending one element, closing its
 * handle and exiting, while a consumer waits for the next element: it is
 * blocked on an empty ring, looking at the producer side, just as each one
 * closes and exits. A producer that closed its handle went away; it did
 * not die. The consumer must wait for the next one, never -ECONNRESET
 * (the side's owner read, then the owner closed and exited before its
 * liveness was looked at, passed for dead).
 */
static void closed_sender_not_dead(struct __test_metadata *_metadata,
				   struct shmpool_heap *h, const char *name,
				   uint32_t type)
{
	struct shmpool_ring *r;
	_Atomic int32_t *sh = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
				   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	struct death d = { h, name, type, sh, sh + 1,
			   (int)lane_debug_quarter(ONE_SHOT_SENDERS) };
	pid_t cons;
	int k;

	ASSERT_NE(MAP_FAILED, (void *)sh);
	ASSERT_EQ(1, shmpool_ring_create(h, name, type,
					 type == SHMPOOL_RING_VAR ? 1024 : 32, 8, 0, &r));
	*sh = 1;
	cons = spawn(one_shot_receiver, &d);
	for (k = 0; k < d.senders; k++) {
		*d.moved = k;
		ASSERT_EQ(0, reap(spawn(one_shot_sender, &d)));
	}
	EXPECT_EQ(0, reap(cons)) TH_LOG("the consumer's call returned %d", (int)*sh);
	shmpool_ring_close(r);
	munmap((void *)sh, 4096);
}

TEST_F_TIMEOUT(ring, spsc_closed_producer_is_not_dead, 60)
{
	closed_sender_not_dead(_metadata, self->h, self->name, SHMPOOL_RING_SPSC);
}

TEST_F_TIMEOUT(ring, mpmc_closed_producer_is_not_dead, 60)
{
	closed_sender_not_dead(_metadata, self->h, self->name, SHMPOOL_RING_MPMC);
}

TEST_F_TIMEOUT(ring, var_closed_producer_is_not_dead, 60)
{
	closed_sender_not_dead(_metadata, self->h, self->name, SHMPOOL_RING_VAR);
}

/* a producer that sends @first .. @first + 9, then waits to be killed */
static int takeover_sender(void *arg)
{
	struct death *d = arg;
	struct shmpool_ring *r;
	uint64_t v, first = (uint64_t)*d->moved;
	int ret;

	if (shmpool_ring_open(d->h, d->name, d->type, 8, &r))
		return 2;
	ret = shmpool_ring_takeover(r, SHMPOOL_RING_PROD);
	*d->ret = ret;
	for (v = first; v < first + 10; v++)
		if (death_call(r, d->type, 1, &v, NULL) != 1)
			return 3;
	if (first)	/* the second one leaves */
		return 0;
	for (;;)
		pause();
}

/*
 * A producer dies holding its side; a live one cannot be taken over
 * (-EBUSY), a dead one can (1), and the new producer's elements follow
 * the dead one's: nothing lost, nothing twice.
 */
static void takeover_new_process(struct __test_metadata *_metadata,
				 struct shmpool_heap *h, const char *name,
				 uint32_t type)
{
	struct shmpool_ring *r;
	_Atomic int32_t *sh = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
				   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	struct death d = { h, name, type, sh, sh + 1, 0 };
	struct timespec dl;
	uint64_t v, k;
	pid_t a, b;
	int ret;

	ASSERT_NE(MAP_FAILED, (void *)sh);
	ASSERT_EQ(1, shmpool_ring_create(h, name, type,
					 type == SHMPOOL_RING_VAR ? 1024 : 32, 8, 0, &r));
	*sh = 1000;
	*d.moved = 0;
	a = spawn(takeover_sender, &d);
	for (k = 0; k < 10; k++) {
		dl = after_ms(DEATH_WAIT_MS);
		ASSERT_EQ(1, death_call(r, type, 0, &v, &dl));
		ASSERT_EQ(k, v);
	}
	EXPECT_EQ(0, *sh);	/* a fresh side: nobody to replace */
	EXPECT_EQ(-EBUSY, shmpool_ring_takeover(r, SHMPOOL_RING_PROD));
	kill(a, SIGKILL);
	EXPECT_EQ(128 + SIGKILL, reap(a));
	/* nobody produces now: the consumer is told at once */
	dl = after_ms(DEATH_WAIT_MS);
	EXPECT_EQ(-ECONNRESET, death_call(r, type, 0, &v, &dl));
	*d.moved = 10;
	b = spawn(takeover_sender, &d);
	for (k = 10; k < 20; k++) {
		dl = after_ms(DEATH_WAIT_MS);
		/* until b has taken the side over, it is still a dead one's */
		while ((ret = death_call(r, type, 0, &v, &dl)) == -ECONNRESET)
			usleep(1000);
		ASSERT_EQ(1, ret);
		ASSERT_EQ(k, v);
	}
	EXPECT_EQ(0, reap(b));
	EXPECT_EQ(1, *sh);	/* b replaced a dead owner */
	EXPECT_EQ(0, shmpool_ring_count(r));
	shmpool_ring_close(r);
	munmap((void *)sh, 4096);
}

TEST_F_TIMEOUT(ring, spsc_dead_producer_taken_over_by_new_process, 60)
{
	takeover_new_process(_metadata, self->h, self->name, SHMPOOL_RING_SPSC);
}

TEST_F_TIMEOUT(ring, var_dead_producer_taken_over_by_new_process, 60)
{
	takeover_new_process(_metadata, self->h, self->name, SHMPOOL_RING_VAR);
}

/* one non-blocking call of @prod's side on @r (the inline paths): 1 moved, 0 not */
static int inline_call(struct shmpool_ring *r, uint32_t type, int prod, uint64_t *v)
{
	const void *q;
	void *p;

	if (type != SHMPOOL_RING_VAR)
		return prod ? (int)shmpool_ring_enqueue(r, v) : (int)shmpool_ring_dequeue(r, v);
	if (prod) {
		if (shmpool_ring_reserve(r, 24, &p))
			return 0;
		memcpy(p, v, 8);
		shmpool_ring_commit(r);
		return 1;
	}
	if (shmpool_ring_peek(r, &q) < 0)
		return 0;
	memcpy(v, q, 8);
	shmpool_ring_release(r);
	return 1;
}

struct newcomer {
	struct shmpool_heap *h;
	const char *name;
	uint32_t type;
	int prod;
	_Atomic int32_t *ret;	/* shared: its call's result */
};

/* a new handle in a new process: one call on the side, then wait to be killed */
static int newcomer(void *arg)
{
	struct newcomer *nc = arg;
	struct shmpool_ring *r;
	uint64_t v = 1;

	if (shmpool_ring_open(nc->h, nc->name, nc->type, 8, &r))
		return 2;
	*nc->ret = death_call(r, nc->type, nc->prod, &v, NULL);
	for (;;)
		pause();
}

/*
 * SPSC, VAR: handle A works a side; a new handle in another process works
 * it after A (its first call takes the side over, as SPSC hand-overs do)
 * and is killed; then A works it again. The side's owner is the process
 * whose handle last worked it, A's, which lives: the other side, blocked
 * on an empty (full) ring, must wait for it to its deadline, never be told
 * -ECONNRESET; and A's takeover finds the side its own (0).
 */
static void side_back_after_newcomer_died(struct __test_metadata *_metadata,
					  struct shmpool_heap *h, const char *name,
					  uint32_t type, int prod)
{
	struct shmpool_ring *a, *o, *pr, *co;
	_Atomic int32_t *sh = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
				   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	struct newcomer nc = { h, name, type, prod, sh };
	unsigned int side = prod ? SHMPOOL_RING_PROD : SHMPOOL_RING_CONS;
	struct timespec dl;
	uint64_t v = 0;
	pid_t b;
	int i, ret;

	ASSERT_NE(MAP_FAILED, (void *)sh);
	ASSERT_EQ(1, shmpool_ring_create(h, name, type,
					 type == SHMPOOL_RING_VAR ? 64 : 4, 8, 0, &a));
	ASSERT_EQ(0, shmpool_ring_open(h, name, type, 8, &o));
	pr = prod ? a : o;
	co = prod ? o : a;
	/* A works its side */
	ASSERT_EQ(1, inline_call(pr, type, 1, &v));
	ASSERT_EQ(1, inline_call(co, type, 0, &v));
	/* B works it after A, and dies */
	if (!prod)
		ASSERT_EQ(1, inline_call(pr, type, 1, &v));
	*sh = 1000;
	b = spawn(newcomer, &nc);
	ASSERT_LT(0, b);
	for (i = 0; i < 10000 && *sh == 1000; i++)
		usleep(1000);
	ASSERT_EQ(1, *sh);
	kill(b, SIGKILL);
	ASSERT_EQ(128 + SIGKILL, reap(b));
	if (prod)
		ASSERT_EQ(1, inline_call(co, type, 0, &v));
	/* A works it again: its handle, its process, its side */
	ASSERT_EQ(1, inline_call(pr, type, 1, &v));
	ASSERT_EQ(1, inline_call(co, type, 0, &v));
	/* the other side blocks; A lives */
	if (!prod)
		while (inline_call(pr, type, 1, &v))
			;
	dl = after_ms((long)(200 * scale()));
	ret = death_call(o, type, !prod, &v, &dl);
	EXPECT_EQ(-ETIMEDOUT, ret) TH_LOG("the %s side's live owner taken for dead",
					  prod ? "producer" : "consumer");
	EXPECT_EQ(0, shmpool_ring_takeover(a, side));
	shmpool_ring_close(o);
	shmpool_ring_close(a);
	munmap((void *)sh, 4096);
}

TEST_F_TIMEOUT(ring, spsc_producer_back_after_newcomer_died, 60)
{
	side_back_after_newcomer_died(_metadata, self->h, self->name, SHMPOOL_RING_SPSC, 1);
}

TEST_F_TIMEOUT(ring, spsc_consumer_back_after_newcomer_died, 60)
{
	side_back_after_newcomer_died(_metadata, self->h, self->name, SHMPOOL_RING_SPSC, 0);
}

TEST_F_TIMEOUT(ring, var_producer_back_after_newcomer_died, 60)
{
	side_back_after_newcomer_died(_metadata, self->h, self->name, SHMPOOL_RING_VAR, 1);
}

TEST_F_TIMEOUT(ring, var_consumer_back_after_newcomer_died, 60)
{
	side_back_after_newcomer_died(_metadata, self->h, self->name, SHMPOOL_RING_VAR, 0);
}

/*
 * A newcomer producer that sends 100 and is killed after 101's element
 * and word, before prod.tail (the header's own fill step, then SIGKILL:
 * the kill point that spsc_producer_killed_at_every_step finds by steps).
 */
static int newcomer_killed_mid_enqueue(void *arg)
{
	struct newcomer *nc = arg;
	struct shmpool_ring *r;
	uint64_t v = 100;

	if (shmpool_ring_open(nc->h, nc->name, SHMPOOL_RING_SPSC, 8, &r) ||
	    shmpool_ring_enqueue(r, &v) != 1)
		return 2;
	v = 101;
	__shmpool_spsc_fill(r, atomic_load(&r->hdr->prod.tail), &v, 1);
	raise(SIGKILL);
	return 3;
}

/*
 * SPSC: A produces, the newcomer after it and is killed between 101's
 * word and prod.tail, the consumer takes 100 and 101 (by the word); then
 * A produces again. Its elements must come after 101, each once: A must
 * not write from the dead one's prod.tail, over 101's slot, which the
 * consumer has passed (its first element lost).
 */
TEST_F_TIMEOUT(ring, spsc_producer_back_after_newcomer_killed_mid_enqueue, 60)
{
	struct newcomer nc = { self->h, self->name, SHMPOOL_RING_SPSC, 1, NULL };
	struct shmpool_ring *a, *c;
	struct timespec dl;
	uint64_t v = 0, k;

	ASSERT_EQ(1, shmpool_ring_create(self->h, self->name, SHMPOOL_RING_SPSC,
					 16, 8, 0, &a));
	ASSERT_EQ(0, shmpool_ring_open(self->h, self->name, SHMPOOL_RING_SPSC, 8, &c));
	ASSERT_EQ(1, shmpool_ring_enqueue(a, &v));
	ASSERT_EQ(1, shmpool_ring_dequeue(c, &v));
	ASSERT_EQ(0, v);
	ASSERT_EQ(128 + SIGKILL, reap(spawn(newcomer_killed_mid_enqueue, &nc)));
	for (k = 100; k < 102; k++) {
		ASSERT_EQ(1, shmpool_ring_dequeue(c, &v));
		ASSERT_EQ(k, v);
	}
	for (v = 200; v < 203; v++)
		ASSERT_EQ(1, shmpool_ring_enqueue(a, &v));
	for (k = 200; k < 203; k++) {
		dl = after_ms(DEATH_WAIT_MS);
		EXPECT_EQ(1, shmpool_ring_dequeue_wait(c, &v, 1, 0, &dl));
		EXPECT_EQ(k, v);
	}
	EXPECT_EQ(0, shmpool_ring_count(a));
	shmpool_ring_close(c);
	shmpool_ring_close(a);
}

/*
 * MPMC: a handle that reserved @n slots of its side (as enqueue or dequeue
 * does before it writes the slots' words) and is killed right there.
 * __shmpool_mpmc_reserve() is the header's own reservation step.
 */
struct holder {
	struct shmpool_heap *h;
	const char *name;
	int consumer;
	uint32_t n;
};

static int hold_and_die(void *arg)
{
	struct holder *hd = arg;
	struct shmpool_ring *r;
	uint32_t old;

	if (shmpool_ring_open(hd->h, hd->name, SHMPOOL_RING_MPMC, 8, &r))
		return 2;
	__SHMPOOL_RING_CLAIM(r, hd->consumer ? SHMPOOL_RING_CONS : SHMPOOL_RING_PROD);
	if (__shmpool_mpmc_reserve(r, hd->consumer ? &r->hdr->cons.head :
						     &r->hdr->prod.head,
				   hd->n, 1, hd->consumer, 0, &old) != hd->n)
		return 3;
	raise(SIGKILL);
	return 4;
}

/* a producer of @n sequence numbers from 1000 on, through a live handle */
static int seq_producer(void *arg)
{
	struct holder *hd = arg;
	struct shmpool_ring *r;
	uint64_t v;

	if (shmpool_ring_open(hd->h, hd->name, SHMPOOL_RING_MPMC, 8, &r))
		return 2;
	for (v = 1000; v < 1000 + hd->n; v++)
		if (shmpool_ring_enqueue_wait(r, &v, 1, 0, NULL) != 1)
			return 3;
	shmpool_ring_close(r);
	return 0;
}

/*
 * MPMC, 8 slots: a producer dies between reserving 3 slots and publishing
 * them. A live producer then sends about 100 elements through the same
 * slots (12 laps); the consumer, taking @n at a time (@flags: all @n,
 * SHMPOOL_RING_BULK), gets each exactly once and in order, not stuck in
 * front of the dead one's slots (a bulk: nor on the element before them).
 */
static void producer_killed(struct __test_metadata *_metadata,
			    struct shmpool_heap *h, const char *name,
			    uint32_t n, unsigned int flags)
{
	struct holder hd = { h, name, 0, 3 };
	struct shmpool_ring *r;
	struct timespec dl;
	uint64_t v[3], k, want = 7;
	uint32_t i;
	pid_t p;

	ASSERT_EQ(1, shmpool_ring_create(h, name, SHMPOOL_RING_MPMC, 8, 8, 0, &r));
	v[0] = 7;
	ASSERT_EQ(1, shmpool_ring_enqueue(r, v));	/* one before the holes */
	EXPECT_EQ(128 + SIGKILL, reap(spawn(hold_and_die, &hd)));
	hd.n = 100 - 101 % n;	/* 1 + hd.n elements: whole batches */
	p = spawn(seq_producer, &hd);
	for (k = 0; k < 1 + hd.n; k += n) {
		dl = after_ms(DEATH_WAIT_MS);
		ASSERT_EQ((int)n, shmpool_ring_dequeue_wait(r, v, n, flags, &dl));
		for (i = 0; i < n; i++) {
			ASSERT_EQ(want, v[i]);
			want = want == 7 ? 1000 : want + 1;
		}
	}
	EXPECT_EQ(0, reap(p));
	EXPECT_EQ(0, shmpool_ring_count(r));
	shmpool_ring_close(r);
}

TEST_F_TIMEOUT(ring, mpmc_producer_killed_between_reserve_and_publish, 60)
{
	producer_killed(_metadata, self->h, self->name, 1, 0);
}

/* a bulk of 2 wants the element before the holes and the first hole */
TEST_F_TIMEOUT(ring, mpmc_producer_killed_bulk_two, 60)
{
	producer_killed(_metadata, self->h, self->name, 2, SHMPOOL_RING_BULK);
}

/*
 * MPMC: two threads enqueue through one producer handle (allowed: a
 * handle may be shared by a side's threads). The first has reserved slot
 * 0 and not yet published it; the second's enqueue of slot 1 records its
 * own reservation in the handle's record. Both live: a blocked consumer
 * must wait for slot 0, not skip it as a dead producer's (which lost the
 * first thread's element once it published).
 */
TEST_F(ring, mpmc_shared_producer_handle_slot_not_skipped)
{
	struct shmpool_ring *prod, *cons;
	struct timespec dl;
	uint64_t v = 42, first = 7, got[2] = { 0, 0 };
	uint32_t old;

	ASSERT_EQ(1, shmpool_ring_create(self->h, self->name, SHMPOOL_RING_MPMC,
					 8, 8, 0, &prod));
	ASSERT_EQ(0, shmpool_ring_open(self->h, self->name, SHMPOOL_RING_MPMC, 8, &cons));
	__SHMPOOL_RING_CLAIM(prod, SHMPOOL_RING_PROD);
	/* the first thread: slot 0 reserved (the header's own step), being written */
	ASSERT_EQ(1, __shmpool_mpmc_reserve(prod, &prod->hdr->prod.head, 1, 1, 0, 0, &old));
	/* the second thread: slot 1 */
	ASSERT_EQ(1, shmpool_ring_enqueue(prod, &v));
	dl = after_ms(300);
	EXPECT_EQ(-ETIMEDOUT, shmpool_ring_dequeue_wait(cons, got, 1, 0, &dl));
	/* the first thread publishes: both come, in order */
	__shmpool_mpmc_fill(prod, old, &first, 1);
	dl = after_ms(DEATH_WAIT_MS);
	EXPECT_EQ(2, shmpool_ring_dequeue_wait(cons, got, 2, SHMPOOL_RING_BULK, &dl));
	EXPECT_EQ(7, got[0]);
	EXPECT_EQ(42, got[1]);
	shmpool_ring_close(cons);
	shmpool_ring_close(prod);
}

/*
 * MPMC, 8 slots holding 0..4: a consumer dies between reserving 2 of them
 * (0 and 1) and freeing them. A blocking consumer taking @n at a time
 * (@flags: all @n, SHMPOOL_RING_BULK) gets 2, 3, 4, the dead one's 0 and 1
 * again (never returned to its caller), and a live producer's 100
 * elements through the freed slots: each exactly once. Once it has taken
 * the others, the producer waits for the dead one's slots, which only
 * this consumer can give back.
 */
static void consumer_killed(struct __test_metadata *_metadata,
			    struct shmpool_heap *h, const char *name,
			    uint32_t n, unsigned int flags)
{
	struct holder hd = { h, name, 1, 2 };
	struct shmpool_ring *r;
	struct timespec dl;
	uint64_t v[3], k, seen = 0;
	uint32_t i;
	pid_t p;

	ASSERT_EQ(1, shmpool_ring_create(h, name, SHMPOOL_RING_MPMC, 8, 8, 0, &r));
	for (k = 0; k < 5; k++)
		ASSERT_EQ(1, shmpool_ring_enqueue(r, &k));
	EXPECT_EQ(128 + SIGKILL, reap(spawn(hold_and_die, &hd)));
	/*
	 * Join the consumer side before the producer may find it full:
	 * with only the dead consumer on it, the side is dead (-ECONNRESET).
	 */
	EXPECT_EQ(1, shmpool_ring_takeover(r, SHMPOOL_RING_CONS));
	hd.n = 100;
	p = spawn(seq_producer, &hd);
	for (k = 0; k < 105; k += n) {
		dl = after_ms(DEATH_WAIT_MS);
		ASSERT_EQ((int)n, shmpool_ring_dequeue_wait(r, v, n, flags, &dl));
		for (i = 0; i < n; i++) {
			if (v[i] < 5) {
				ASSERT_EQ(0, seen & (1ULL << v[i]));	/* not twice */
				seen |= 1ULL << v[i];
			} else {
				ASSERT_LE(1000, v[i]);
				ASSERT_GT(1100, v[i]);
			}
		}
	}
	EXPECT_EQ(0x1f, seen);
	EXPECT_EQ(0, reap(p));
	shmpool_ring_close(r);
}

TEST_F_TIMEOUT(ring, mpmc_consumer_killed_between_reserve_and_free, 60)
{
	consumer_killed(_metadata, self->h, self->name, 1, 0);
}

/* the same for a bulk consumer: it too gets the dead one's slots */
TEST_F_TIMEOUT(ring, mpmc_consumer_killed_bulk_one, 60)
{
	consumer_killed(_metadata, self->h, self->name, 1, SHMPOOL_RING_BULK);
}

/*
 * in bulks of 3: the dead one's 2 slots are fewer than a bulk, and the
 * ring holds no more until they are free
 */
TEST_F_TIMEOUT(ring, mpmc_consumer_killed_bulk_three, 60)
{
	consumer_killed(_metadata, self->h, self->name, 3, SHMPOOL_RING_BULK);
}

/* a consumer that holds 2 received and 3 loaned messages, then is killed */
static int loan_and_die(void *arg)
{
	struct holder *hd = arg;
	struct shmpool_ring *r;
	struct shmpool_msg m;
	const void *p;
	void *q;
	int i;

	if (shmpool_ring_open(hd->h, hd->name, SHMPOOL_RING_SPSC,
			      sizeof(struct shmpool_msg), &r))
		return 2;
	for (i = 0; i < 2; i++)
		if (shmpool_msg_receive(r, &m, &p, 0, NULL))
			return 3;
	for (i = 0; i < 3; i++)
		if (shmpool_msg_loan(r, 100 + 1000 * i, &q, &m))
			return 4;
	raise(SIGKILL);
	return 5;
}

/*
 * Messages a killed process had received but not released, and loaned
 * but not published, come back to the heap (shmpool_msg_reclaim()); a
 * published one still in the ring is left to its receiver.
 */
TEST_F(ring, zc_loans_of_dead_process_come_back)
{
	struct holder hd = { self->h, self->name, 0, 0 };
	struct shmpool_ring *r;
	struct shmpool_msg m;
	const void *p;
	char msg[256];
	uint64_t used0;
	void *q;
	int i;

	ASSERT_EQ(1, shmpool_ring_create(self->h, self->name, SHMPOOL_RING_SPSC,
					 16, sizeof(m), 0, &r));
	used0 = heap_used(self->h);
	for (i = 0; i < 3; i++) {
		ASSERT_EQ(0, shmpool_msg_loan(r, 64, &q, &m));
		memset(q, i, 64);
		ASSERT_EQ(0, shmpool_msg_publish(r, &m, 0, NULL));
	}
	EXPECT_EQ(128 + SIGKILL, reap(spawn(loan_and_die, &hd)));
	EXPECT_LT(used0, heap_used(self->h));
	EXPECT_EQ(5, shmpool_msg_reclaim(r));
	EXPECT_EQ(0, shmpool_msg_reclaim(r));
	/* the third, still in the ring, is intact and ours to release */
	ASSERT_EQ(0, shmpool_msg_receive(r, &m, &p, SHMPOOL_MSG_NONBLOCK, NULL));
	EXPECT_EQ(2, ((const unsigned char *)p)[63]);
	EXPECT_EQ(0, shmpool_msg_release(r, &m));
	shmpool_heap_flush(self->h);
	EXPECT_EQ(used0, heap_used(self->h));
	EXPECT_EQ(0, shmpool_heap_check(self->h, SHMPOOL_CHECK_QUIESCENT, msg, sizeof(msg)));
	shmpool_ring_close(r);
}

/* a producer that loans a message and publishes it into a full ring: it blocks */
static int publish_blocked(void *arg)
{
	struct holder *hd = arg;
	struct shmpool_ring *r;
	struct shmpool_msg m;
	void *q;

	if (shmpool_ring_open(hd->h, hd->name, SHMPOOL_RING_SPSC,
			      sizeof(struct shmpool_msg), &r))
		return 2;
	if (shmpool_msg_loan(r, 64, &q, &m))
		return 3;
	shmpool_msg_publish(r, &m, 0, NULL);
	return 4;
}

/*
 * A producer killed while its publish waits for room in a full ring: its
 * message never entered the ring, so it is a loan of a dead process, and
 * shmpool_msg_reclaim() gives it back (not a block and an entry lost for
 * good as if it had been published).
 */
TEST_F_TIMEOUT(ring, zc_loan_of_producer_killed_in_publish_comes_back, 60)
{
	struct holder hd = { self->h, self->name, 0, 0 };
	struct shmpool_ring_info ri;
	struct shmpool_ring *r;
	struct shmpool_msg m;
	const void *p;
	uint64_t used0;
	void *q;
	pid_t pid;
	int i;

	ASSERT_EQ(1, shmpool_ring_create(self->h, self->name, SHMPOOL_RING_SPSC,
					 16, sizeof(m), 0, &r));
	used0 = heap_used(self->h);
	for (i = 0; i < 16; i++) {
		ASSERT_EQ(0, shmpool_msg_loan(r, 64, &q, &m));
		ASSERT_EQ(0, shmpool_msg_publish(r, &m, SHMPOOL_MSG_NONBLOCK, NULL));
	}
	pid = spawn(publish_blocked, &hd);
	/* until it sleeps in the publish (a hang detector bounds the look) */
	for (i = 0; i < 10000; i++) {
		ASSERT_EQ(0, shmpool_ring_inspect(self->p, r->off, &ri));
		if (ri.prod_sleeping)
			break;
		usleep(1000);
	}
	ASSERT_NE(0, ri.prod_sleeping);
	kill(pid, SIGKILL);
	EXPECT_EQ(128 + SIGKILL, reap(pid));
	for (i = 0; i < 16; i++) {
		ASSERT_EQ(0, shmpool_msg_receive(r, &m, &p, SHMPOOL_MSG_NONBLOCK, NULL));
		EXPECT_EQ(0, shmpool_msg_release(r, &m));
	}
	EXPECT_EQ(1, shmpool_msg_reclaim(r));
	shmpool_heap_flush(self->h);
	EXPECT_EQ(used0, heap_used(self->h));
	for (i = 0; i < __SHMPOOL_MSG_LOANS; i++)
		EXPECT_EQ(0U, atomic_load(&r->loans[i].owner));
	shmpool_ring_close(r);
}

/*
 * A loan entry is shared memory: a dead process's entries whose block
 * offsets a peer moved off the 16-byte grid name no block. Reclaim frees
 * none of them and reads no header there (a misaligned read: UBSan in the
 * ASan build); the entries are free again.
 */
TEST_F(ring, zc_reclaim_ignores_misaligned_loans)
{
	struct holder hd = { self->h, self->name, 0, 0 };
	struct shmpool_ring *r;
	struct shmpool_msg m;
	uint64_t off;
	void *q;
	int i, n = 0;

	ASSERT_EQ(1, shmpool_ring_create(self->h, self->name, SHMPOOL_RING_SPSC,
					 16, sizeof(m), 0, &r));
	for (i = 0; i < 2; i++) {
		ASSERT_EQ(0, shmpool_msg_loan(r, 64, &q, &m));
		ASSERT_EQ(0, shmpool_msg_publish(r, &m, 0, NULL));
	}
	EXPECT_EQ(128 + SIGKILL, reap(spawn(loan_and_die, &hd)));
	ASSERT_NE(NULL, r->loans);
	for (i = 0; i < __SHMPOOL_MSG_LOANS; i++) {
		if (!atomic_load(&r->loans[i].owner))
			continue;
		off = r->loans[i].off;
		off += 1 + (uint64_t)(i % 8);	/* 1..8 bytes past the block */
		r->loans[i].off = off;
		n++;
	}
	EXPECT_EQ(5, n);
	EXPECT_EQ(0, shmpool_msg_reclaim(r));
	for (i = 0; i < __SHMPOOL_MSG_LOANS; i++)
		EXPECT_EQ(0U, atomic_load(&r->loans[i].owner));
	shmpool_ring_close(r);
}

/*
 * Killed at every instruction. A peer works one side through a call the
 * test single-steps (ptrace): for each k, a fresh ring, a peer stopped
 * before its call, k steps, SIGKILL. Then the survivor's side must get
 * what the dead one made visible and -ECONNRESET (producer killed), and a
 * new process on the dead side must work with the survivor exactly as if
 * nobody had died: its elements all arrive, in order, nothing is lost.
 */
#define STEP_ELEMS	9	/* one set up, then a burst of 8 crossing an SPSC group */
struct stepper {
	struct shmpool_heap *h;
	const char *name;
	uint32_t type;
	uint32_t n;		/* elements of the stepped call */
	uint32_t cn;		/* the survivor's dequeues: burst of this many */
	struct shmpool *p;	/* messages: the pool (our attachment id) */
};

/* the victim: open, move the first element (claims the side), stop, move @n */
static int stepped_producer(void *arg)
{
	struct stepper *s = arg;
	struct shmpool_ring *r;
	uint64_t v[STEP_ELEMS];
	uint32_t i;
	void *q;

	for (i = 0; i < STEP_ELEMS; i++)
		v[i] = i + 1;
	if (shmpool_ring_open(s->h, s->name, s->type, 8, &r))
		return 2;
	if (death_call(r, s->type, 1, &v[0], NULL) != 1)
		return 3;
	if (ptrace(PTRACE_TRACEME, 0, NULL, NULL))
		return 4;
	raise(SIGSTOP);
	if (s->type == SHMPOOL_RING_VAR) {
		if (shmpool_ring_reserve(r, 24, &q))
			return 5;
		memcpy(q, &v[1], 8);
		shmpool_ring_commit(r);
		return 0;
	}
	return shmpool_ring_enqueue_burst(r, &v[1], s->n) == s->n ? 0 : 6;
}

/* a producer process that comes after the dead one: 100, 101 */
static int next_producer(void *arg)
{
	struct stepper *s = arg;
	struct shmpool_ring *r;
	struct timespec dl = after_ms((long)(DEATH_WAIT_MS * scale()));
	uint64_t v;

	if (shmpool_ring_open(s->h, s->name, s->type, 8, &r))
		return 2;
	for (v = 100; v < 102; v++)
		if (death_call(r, s->type, 1, &v, &dl) != 1)
			return 3;
	return 0;
}

/*
 * One kill point of a producer: 0 if it finished unkilled, 1 if checked,
 * -1 on a failed check (logged).
 */
static int producer_killed_at(struct __test_metadata *_metadata,
			      struct stepper *s, long k)
{
	struct shmpool_ring *r;
	struct timespec dl;
	uint64_t got[STEP_ELEMS], want = 1, v;
	int ret, i, killed;

	shmpool_obj_remove(s->h, s->name);
	if (shmpool_ring_create(s->h, s->name, s->type,
				s->type == SHMPOOL_RING_VAR ? 256 : 16, 8, 0, &r) != 1)
		return -1;
	killed = step_and_kill(stepped_producer, s, k);
	if (killed < 0) {
		TH_LOG("step %ld: the victim failed", k);
		shmpool_ring_close(r);
		return -1;
	}
	/* what it made visible, in order, then -ECONNRESET (if killed) */
	for (;;) {
		dl = after_ms((long)(DEATH_WAIT_MS * scale()));
		if (s->type == SHMPOOL_RING_VAR)
			ret = death_call(r, s->type, 0, got, &dl);
		else
			ret = shmpool_ring_dequeue_wait(r, got, s->cn, 0, &dl);
		if (ret <= 0)
			break;
		for (i = 0; i < ret; i++, want++)
			if (got[i] != want) {
				TH_LOG("step %ld: got %llu, wanted %llu", k,
				       (unsigned long long)got[i], (unsigned long long)want);
				shmpool_ring_close(r);
				return -1;
			}
		if (!killed && want == s->n + 2)
			break;
	}
	if (killed && ret != -ECONNRESET) {
		TH_LOG("step %ld: after %llu elements: %d (%s), not -ECONNRESET", k,
		       (unsigned long long)want - 1, ret, strerror(-ret));
		shmpool_ring_close(r);
		return -1;
	}
	/* a new producer: both its elements come, in order */
	ret = reap(spawn(next_producer, s));
	for (v = 100; v < 102 && !ret; v++) {
		dl = after_ms((long)(DEATH_WAIT_MS * scale()));
		ret = death_call(r, s->type, 0, got, &dl);
		if (ret == 1 && got[0] == v) {
			ret = 0;
			continue;
		}
		TH_LOG("step %ld: after %llu from the dead producer, wanted %llu from the next: %d, %llu",
		       k, (unsigned long long)want - 1, (unsigned long long)v, ret,
		       (unsigned long long)got[0]);
		ret = -1;
	}
	shmpool_ring_close(r);
	return ret ? -1 : killed;
}

typedef int killed_at_fn(struct __test_metadata *_metadata, struct stepper *s, long k);

/* each kill point from 0 until the stepped call ends before it */
static void killed_everywhere(struct __test_metadata *_metadata, killed_at_fn *at,
			      struct stepper *s)
{
	long k;

	KILL_AT_EVERY_STEP(s->h->pool, k, at(_metadata, s, k));
}

static void producer_killed_everywhere(struct __test_metadata *_metadata,
				       struct shmpool_heap *h, const char *name,
				       uint32_t type, uint32_t n, uint32_t cn)
{
	struct stepper s = { h, name, type, n, cn, NULL };

	killed_everywhere(_metadata, producer_killed_at, &s);
}

/* the survivor takes one element a call: it reads the words, not prod.tail */
TEST_F_TIMEOUT(ring, spsc_producer_killed_at_every_step, 600)
{
	producer_killed_everywhere(_metadata, self->h, self->name, SHMPOOL_RING_SPSC, 8, 1);
}

TEST_F_TIMEOUT(ring, spsc_producer_killed_at_every_step_of_one, 600)
{
	producer_killed_everywhere(_metadata, self->h, self->name, SHMPOOL_RING_SPSC, 1, 1);
}

/* the survivor takes bursts: it counts by prod.tail */
TEST_F_TIMEOUT(ring, spsc_producer_killed_at_every_step_burst_consumer, 600)
{
	producer_killed_everywhere(_metadata, self->h, self->name, SHMPOOL_RING_SPSC, 8,
				   STEP_ELEMS);
}

TEST_F_TIMEOUT(ring, mpmc_producer_killed_at_every_step, 600)
{
	producer_killed_everywhere(_metadata, self->h, self->name, SHMPOOL_RING_MPMC, 8, 1);
}

TEST_F_TIMEOUT(ring, mpmc_producer_killed_at_every_step_burst_consumer, 600)
{
	producer_killed_everywhere(_metadata, self->h, self->name, SHMPOOL_RING_MPMC, 8,
				   STEP_ELEMS);
}

TEST_F_TIMEOUT(ring, var_producer_killed_at_every_step, 600)
{
	producer_killed_everywhere(_metadata, self->h, self->name, SHMPOOL_RING_VAR, 1, 1);
}

/* the victim consumer: open, take one element (claims the side), stop, take @n */
static int stepped_consumer(void *arg)
{
	struct stepper *s = arg;
	struct shmpool_ring *r;
	uint64_t v[STEP_ELEMS];

	if (shmpool_ring_open(s->h, s->name, s->type, 8, &r))
		return 2;
	if (death_call(r, s->type, 0, v, NULL) != 1 || v[0] != 1)
		return 3;
	if (ptrace(PTRACE_TRACEME, 0, NULL, NULL))
		return 4;
	raise(SIGSTOP);
	if (s->type == SHMPOOL_RING_VAR)
		return death_call(r, s->type, 0, v, NULL) == 1 ? 0 : 5;
	return shmpool_ring_dequeue_burst(r, v, s->n) == s->n ? 0 : 6;
}

/*
 * One kill point of a consumer (the producer sent 1..STEP_ELEMS, the
 * victim took 1 and is stepped through taking @n more): a new consumer
 * handle gets what the dead one did not count, then 100 and 101 sent
 * after the death: SPSC, VAR in order from where it stopped; MPMC each
 * element at most once, none of the unfreed ones lost (a set: redelivered
 * slots come when the ring looks empty).
 */
static int consumer_killed_at(struct __test_metadata *_metadata,
			      struct stepper *s, long k)
{
	struct shmpool_ring *r, *c = NULL;
	struct timespec dl;
	uint64_t v, seen = 0, last = 0;
	int ret = -1, killed, n = 0;

	shmpool_obj_remove(s->h, s->name);
	if (shmpool_ring_create(s->h, s->name, s->type,
				s->type == SHMPOOL_RING_VAR ? 512 : 16, 8, 0, &r) != 1)
		return -1;
	for (v = 1; v <= STEP_ELEMS; v++)
		if (death_call(r, s->type, 1, &v, NULL) != 1)
			goto out;
	killed = step_and_kill(stepped_consumer, s, k);
	if (killed < 0) {
		TH_LOG("step %ld: the victim failed", k);
		goto out;
	}
	for (v = 100; v < 102; v++)
		if (death_call(r, s->type, 1, &v, NULL) != 1)
			goto out;
	if (shmpool_ring_open(s->h, s->name, s->type, 8, &c))
		goto out;
	/*
	 * Until 101 has come and the ring stays empty. SPSC and VAR deliver
	 * in order, so 101 is the last: then a look that does not wait. An
	 * MPMC consumer's redelivery comes when the ring looks empty, in the
	 * first pass of a blocking call, before it sleeps: a short wait.
	 */
	for (;;) {
		if (!(seen & (1ULL << 63)))
			dl = after_ms((long)(DEATH_WAIT_MS * scale()));
		else
			dl = after_ms(s->type == SHMPOOL_RING_MPMC ? (long)(50 * scale()) : 0);
		ret = death_call(c, s->type, 0, &v, &dl);
		if (ret != 1)
			break;
		n++;
		if (v >= 100 && v < 102)
			v = v - 100 + 62;
		if (!v || v > 63 || (seen & (1ULL << v))) {
			TH_LOG("step %ld: element %llu unknown or twice", k,
			       (unsigned long long)v);
			ret = -1;
			goto out;
		}
		if (s->type != SHMPOOL_RING_MPMC && last && v != last + 1 &&
		    !(last == STEP_ELEMS && v == 62)) {
			TH_LOG("step %ld: element %llu after %llu", k,
			       (unsigned long long)v, (unsigned long long)last);
			ret = -1;
			goto out;
		}
		last = v;
		seen |= 1ULL << v;
	}
	/* 100, 101 and a run of 2..STEP_ELEMS that ends at STEP_ELEMS */
	v = seen & ~(3ULL << 62);
	if (ret != -ETIMEDOUT || !(seen & (1ULL << 62)) || !(seen & (1ULL << 63)) ||
	    (v && (v + (v & -v)) != (1ULL << (STEP_ELEMS + 1))) || (v & 3)) {
		TH_LOG("step %ld: after %d elements (%#llx): %d", k, n,
		       (unsigned long long)seen, ret);
		ret = -1;
		goto out;
	}
	ret = killed;
out:
	shmpool_ring_close(c);
	shmpool_ring_close(r);
	return ret;
}

static void consumer_killed_everywhere(struct __test_metadata *_metadata,
				       struct shmpool_heap *h, const char *name,
				       uint32_t type, uint32_t n)
{
	struct stepper s = { h, name, type, n, 1, NULL };

	killed_everywhere(_metadata, consumer_killed_at, &s);
}

TEST_F_TIMEOUT(ring, spsc_consumer_killed_at_every_step, 600)
{
	consumer_killed_everywhere(_metadata, self->h, self->name, SHMPOOL_RING_SPSC, 8);
}

TEST_F_TIMEOUT(ring, mpmc_consumer_killed_at_every_step, 600)
{
	consumer_killed_everywhere(_metadata, self->h, self->name, SHMPOOL_RING_MPMC, 8);
}

TEST_F_TIMEOUT(ring, var_consumer_killed_at_every_step, 600)
{
	consumer_killed_everywhere(_metadata, self->h, self->name, SHMPOOL_RING_VAR, 1);
}

/*
 * A receiver killed at every instruction of shmpool_msg_receive(): the
 * message's block must come back, reclaimed as the dead one's, or
 * delivered to the next receiver, who releases it. No instruction leaks
 * it (the receiver claims the entry before the descriptor leaves the
 * ring).
 */
static int stepped_receiver(void *arg)
{
	struct stepper *s = arg;
	struct shmpool_ring *r;
	struct shmpool_msg m;
	const void *q;

	if (shmpool_ring_open(s->h, s->name, s->type, sizeof(m), &r))
		return 2;
	if (shmpool_msg_receive(r, &m, &q, 0, NULL) || shmpool_msg_release(r, &m))
		return 3;
	if (ptrace(PTRACE_TRACEME, 0, NULL, NULL))
		return 4;
	raise(SIGSTOP);
	/* and exits holding it */
	return shmpool_msg_receive(r, &m, &q, SHMPOOL_MSG_NONBLOCK, NULL) ? 5 : 0;
}

/* the loan entry of the message at @off, if any */
static struct __shmpool_msg_loan *msg_loan_of(struct shmpool_ring *r, uint64_t off)
{
	struct __shmpool_msg_loan *e = NULL;
	int i;

	for (i = 0; i < __SHMPOOL_MSG_LOANS; i++)
		if (atomic_load(&r->loans[i].owner) && r->loans[i].off == off - 16)
			e = &r->loans[i];
	return e;
}

/*
 * Step @fn's victim @k times and kill it, reclaim, and open a new
 * receiver's handle in *@c: 1 if the victim was killed, 0 if it finished
 * first, -1 (logged) if it failed.
 */
static int kill_and_reclaim(struct __test_metadata *_metadata, struct stepper *s, long k,
			    int (*fn)(void *), struct shmpool_ring *r, struct shmpool_ring **c)
{
	int killed = step_and_kill(fn, s, k);

	if (killed < 0) {
		TH_LOG("step %ld: the victim failed", k);
		return -1;
	}
	shmpool_msg_reclaim(r);
	if (shmpool_ring_open(s->h, s->name, s->type, sizeof(struct shmpool_msg), c))
		return -1;
	return killed;
}

static int receiver_killed_at(struct __test_metadata *_metadata,
			      struct stepper *s, long k)
{
	struct shmpool_ring *r, *c = NULL;
	struct shmpool_msg m[2], got;
	struct __shmpool_msg_loan *e;
	struct timespec dl;
	const void *q;
	void *p;
	int i, ret = -1, killed;

	shmpool_obj_remove(s->h, s->name);
	if (shmpool_ring_create(s->h, s->name, s->type, 16, sizeof(got), 0, &r) != 1)
		return -1;
	for (i = 0; i < 2; i++)
		if (shmpool_msg_loan(r, 64, &p, &m[i]) || shmpool_msg_publish(r, &m[i], 0, NULL))
			goto out;
	/* a new receiver: the message if it is still (or again) to be had */
	killed = kill_and_reclaim(_metadata, s, k, stepped_receiver, r, &c);
	if (killed < 0)
		goto out;
	/*
	 * A short wait first: mostly there is nothing to receive (the dead
	 * one's block was reclaimed). Only if the block is not freed does a
	 * message have to come: then wait.
	 */
	dl = after_ms((long)(20 * scale()));
	ret = shmpool_msg_receive(c, &got, &q, 0, &dl);
	if (ret == -ETIMEDOUT && shmpool_alloc_size(s->h, m[1].off - 16) >= 0) {
		dl = after_ms((long)(DEATH_WAIT_MS * scale()));
		ret = shmpool_msg_receive(c, &got, &q, 0, &dl);
	}
	if (!ret && (got.off != m[1].off || shmpool_msg_release(c, &got))) {
		TH_LOG("step %ld: received %#llx, wanted %#llx", k,
		       (unsigned long long)got.off, (unsigned long long)m[1].off);
		ret = -1;
		goto out;
	}
	if (ret && ret != -ETIMEDOUT) {
		TH_LOG("step %ld: receive: %d", k, ret);
		goto out;
	}
	ret = killed;
	if (shmpool_alloc_size(s->h, m[1].off - 16) < 0)
		goto out;	/* freed */
	e = msg_loan_of(r, m[1].off);
	TH_LOG("step %ld: the message's block leaked: entry %s, owner %u, state %u", k,
	       e ? "in use" : "none", e ? atomic_load(&e->owner) : 0,
	       e ? atomic_load(&e->state) : 0);
	ret = -1;
out:
	shmpool_ring_close(c);
	shmpool_ring_close(r);
	return ret;
}

TEST_F_TIMEOUT(ring, zc_spsc_receiver_killed_at_every_step, 600)
{
	struct stepper s = { self->h, self->name, SHMPOOL_RING_SPSC, 1, 1, self->p };

	killed_everywhere(_metadata, receiver_killed_at, &s);
}

TEST_F_TIMEOUT(ring, zc_mpmc_receiver_killed_at_every_step, 600)
{
	struct stepper s = { self->h, self->name, SHMPOOL_RING_MPMC, 1, 1, self->p };

	killed_everywhere(_metadata, receiver_killed_at, &s);
}

#define MSG_RECEIVING	4U	/* lib/msg.c: claimed by a receiver, maybe still in the ring */
#define MSG_HELD	3U
#define NEVER_LIVED	0x3ffffff0U	/* above any pid_max and any module id */

/* is the element of index @idx still in @r (its slot not freed)? */
static bool slot_full(struct shmpool_ring *r, uint32_t idx)
{
	if (r->type == SHMPOOL_RING_MPMC)
		return atomic_load((_Atomic uint32_t *)(void *)
				   (r->slots + (size_t)(idx & r->mask) * r->stride)) == idx + 1;
	return atomic_load(&r->hdr->cons.tail) == idx;
}

/* the ring index a message's header records (lib/msg.c: struct msg_hdr) */
static uint32_t *msg_idx_of(struct shmpool_heap *h, uint64_t off)
{
	return (uint32_t *)shmpool_heap_ptr(h, off - 16, 16) + 2;
}

/*
 * Kill the stepped receiver after @k steps, on a fresh ring holding two
 * messages (it takes the first, is stepped through taking the second):
 * 1 if the second's entry then says receiving with its descriptor still
 * in the ring, 2 if the receive was past that point, 0 if not yet; -1
 * if the victim finished first (or failed).
 */
static int claim_probe(struct __test_metadata *_metadata, struct stepper *s,
		       long k, struct shmpool_ring **r, struct shmpool_msg *m)
{
	struct __shmpool_msg_loan *e;
	void *p;
	int i, killed;

	shmpool_ring_close(*r);
	*r = NULL;
	shmpool_obj_remove(s->h, s->name);
	if (shmpool_ring_create(s->h, s->name, s->type, 16, sizeof(*m), 0, r) != 1)
		return -1;
	for (i = 0; i < 2; i++) {
		if (shmpool_msg_loan(*r, 64, &p, &m[i]))
			return -1;
		memset(p, 0x40 + i, 64);
		if (shmpool_msg_publish(*r, &m[i], 0, NULL))
			return -1;
	}
	killed = step_and_kill(stepped_receiver, s, k);
	if (killed != 1) {
		TH_LOG("step %ld: the victim %s", k, killed ? "failed" : "finished");
		return -1;
	}
	e = msg_loan_of(*r, m[1].off);
	if (!e || !slot_full(*r, 1))
		return 2;
	return atomic_load(&e->state) == MSG_RECEIVING ? 1 : 0;
}

/*
 * A receiver killed after it claimed the message at the ring's head
 * (its entry says receiving) and before the descriptor left the ring:
 * reclaim leaves the block alone, and the next receiver gets the
 * message, intact and once.
 */
static void receiver_killed_after_claim(struct __test_metadata *_metadata,
					struct stepper *s)
{
	struct shmpool_ring *r = NULL, *c = NULL;
	struct shmpool_msg m[2], got, again;
	struct timespec dl;
	const void *q;
	long k, from = 0, at;
	int ret = 0, i;

	if (STEP_SANITIZED)
		SKIP(return, "sanitizer build: the plain build steps the receive");
	if (in_vm_lane() && shmpool_backend(s->h->pool) == SHMPOOL_BACKEND_MEMFD)
		SKIP(return, "memfd: stepped on the host");
	/* 32 steps at a time to the claim, then one at a time before it */
	for (k = 0; k < 100000; k += 32) {
		ret = claim_probe(_metadata, s, k, &r, m);
		if (ret)
			break;
		from = k;
	}
	at = k;
	if (ret == 2) {
		for (k = from + 1; k < at; k++) {
			ret = claim_probe(_metadata, s, k, &r, m);
			if (ret)
				break;
		}
		at = k;
	}
	ASSERT_EQ(1, ret) TH_LOG("no kill point between the claim and the dequeue");
	TH_LOG("killed after %ld steps: receiving, in the ring", at);
	EXPECT_EQ(0, shmpool_msg_reclaim(r));
	EXPECT_LE(0, shmpool_alloc_size(s->h, m[1].off - 16));
	ASSERT_EQ(0, shmpool_ring_open(s->h, s->name, s->type, sizeof(got), &c));
	dl = after_ms((long)(DEATH_WAIT_MS * scale()));
	ASSERT_EQ(0, shmpool_msg_receive(c, &got, &q, 0, &dl));
	EXPECT_EQ(m[1].off, got.off);
	EXPECT_EQ(0x41, ((const unsigned char *)q)[63]);
	/* once: nothing more comes, and the live holder's block stays */
	dl = after_ms((long)(100 * scale()));
	EXPECT_EQ(-ETIMEDOUT, shmpool_msg_receive(c, &again, &q, 0, &dl));
	EXPECT_EQ(0, shmpool_msg_reclaim(r));
	EXPECT_EQ(0, shmpool_msg_release(c, &got));
	for (i = 0; i < __SHMPOOL_MSG_LOANS; i++)
		EXPECT_EQ(0U, atomic_load(&r->loans[i].owner));
	shmpool_ring_close(c);
	shmpool_ring_close(r);
}

TEST_F_TIMEOUT(ring, zc_spsc_receiver_killed_after_claim_message_comes_once, 300)
{
	struct stepper s = { self->h, self->name, SHMPOOL_RING_SPSC, 1, 1, self->p };

	receiver_killed_after_claim(_metadata, &s);
}

TEST_F_TIMEOUT(ring, zc_mpmc_receiver_killed_after_claim_message_comes_once, 300)
{
	struct stepper s = { self->h, self->name, SHMPOOL_RING_MPMC, 1, 1, self->p };

	receiver_killed_after_claim(_metadata, &s);
}

/*
 * A producer killed at every instruction of shmpool_msg_publish() (its
 * message loaned before): after a survivor's reclaim the message either
 * arrives, once and intact, or its block is back in the heap; never
 * both, never neither (the publish records the ring index its enqueue
 * reserved before the descriptor enters the ring).
 */
static int stepped_publisher(void *arg)
{
	struct stepper *s = arg;
	struct shmpool_ring *r;
	struct shmpool_msg m;
	void *p;

	if (shmpool_ring_open(s->h, s->name, s->type, sizeof(m), &r))
		return 2;
	if (shmpool_msg_loan(r, 64, &p, &m))
		return 3;
	memset(p, 0x5a, 64);
	if (ptrace(PTRACE_TRACEME, 0, NULL, NULL))
		return 4;
	raise(SIGSTOP);
	return shmpool_msg_publish(r, &m, SHMPOOL_MSG_NONBLOCK, NULL) ? 5 : 0;
}

static int publisher_killed_at(struct __test_metadata *_metadata,
			       struct stepper *s, long k)
{
	struct shmpool_ring *r, *c = NULL;
	struct shmpool_msg got;
	char msg[256];
	uint64_t used0, used;
	const void *q;
	int ret = -1, killed, n = 0, i;

	shmpool_obj_remove(s->h, s->name);
	if (shmpool_ring_create(s->h, s->name, s->type, 16, sizeof(got), 0, &r) != 1)
		return -1;
	shmpool_heap_flush(s->h);
	used0 = heap_used(s->h);
	killed = kill_and_reclaim(_metadata, s, k, stepped_publisher, r, &c);
	if (killed < 0)
		goto out;
	/* what is in the ring comes once, intact, and goes back */
	while (!shmpool_msg_receive(c, &got, &q, SHMPOOL_MSG_NONBLOCK, NULL)) {
		STEP_CHECK(!n++ && ((const unsigned char *)q)[63] == 0x5a,
			   "received %#llx (%d. time)", (unsigned long long)got.off, n);
		STEP_CHECK(!shmpool_msg_release(c, &got), "release of the received failed");
	}
	STEP_CHECK(shmpool_msg_reclaim(r) == 0, "a second reclaim freed more");
	shmpool_heap_flush(s->h);
	used = heap_used(s->h);
	STEP_CHECK(used == used0, "%lld heap blocks leaked (%s)", (long long)(used - used0),
		   killed ? "killed" : "finished");
	STEP_CHECK(!shmpool_heap_check(s->h, SHMPOOL_CHECK_QUIESCENT, msg, sizeof(msg)),
		   "heap check: %s", msg);
	for (i = 0; i < __SHMPOOL_MSG_LOANS; i++)
		STEP_CHECK(!atomic_load(&r->loans[i].owner), "entry %d still owned (state %u)",
			   i, atomic_load(&r->loans[i].state));
	ret = killed;
out:
	shmpool_ring_close(c);
	shmpool_ring_close(r);
	return ret;
}

TEST_F_TIMEOUT(ring, zc_spsc_publisher_killed_at_every_step, 600)
{
	struct stepper s = { self->h, self->name, SHMPOOL_RING_SPSC, 1, 1, self->p };

	killed_everywhere(_metadata, publisher_killed_at, &s);
}

TEST_F_TIMEOUT(ring, zc_mpmc_publisher_killed_at_every_step, 600)
{
	struct stepper s = { self->h, self->name, SHMPOOL_RING_MPMC, 1, 1, self->p };

	killed_everywhere(_metadata, publisher_killed_at, &s);
}

/*
 * A peer writes a receiver's claim into the entry of a message still in
 * the ring: @state (receiving or held) by @owner, with the header's ring
 * index right (@idx_right: the descriptor's, 0) or not. Then a reclaim
 * and a receive: the block is never freed twice nor under the receiver
 * it was delivered to. Returns what the reclaim freed and the receive's
 * result; a delivered message is checked and released.
 */
static void claim_garbage(struct __test_metadata *_metadata, struct shmpool_heap *h,
			  const char *name, uint32_t type, uint32_t owner,
			  uint32_t state, bool idx_right, int *freed, int *ret)
{
	struct shmpool_ring *r;
	struct __shmpool_msg_loan *e;
	struct shmpool_msg m, got;
	const void *q;
	char msg[256];
	void *p;

	shmpool_obj_remove(h, name);
	ASSERT_EQ(1, shmpool_ring_create(h, name, type, 16, sizeof(m), 0, &r));
	ASSERT_EQ(0, shmpool_msg_loan(r, 64, &p, &m));
	memset(p, 0x5a, 64);
	ASSERT_EQ(0, shmpool_msg_publish(r, &m, 0, NULL));
	e = msg_loan_of(r, m.off);
	ASSERT_NE(NULL, e);
	*msg_idx_of(h, m.off) = idx_right ? 0 : 0x12345;
	atomic_store(&e->state, state);
	atomic_store(&e->owner, owner);
	*freed = shmpool_msg_reclaim(r);
	EXPECT_LE(0, *freed);
	*ret = shmpool_msg_receive(r, &got, &q, SHMPOOL_MSG_NONBLOCK, NULL);
	EXPECT_TRUE(*ret == 0 || *ret == -EUCLEAN) TH_LOG("receive: %d", *ret);
	if (*ret == 0) {
		EXPECT_EQ(0, *freed);
		EXPECT_EQ(m.off, got.off);
		EXPECT_EQ(0x5a, ((const unsigned char *)q)[63]);
		/* ours now: a reclaim leaves it */
		EXPECT_EQ(0, shmpool_msg_reclaim(r));
		EXPECT_LE(0, shmpool_alloc_size(h, m.off - 16));
		EXPECT_EQ(0, shmpool_msg_release(r, &got));
	}
	EXPECT_EQ(0, shmpool_heap_check(h, SHMPOOL_CHECK_QUIESCENT, msg, sizeof(msg)))
		TH_LOG("%s", msg);
	shmpool_ring_close(r);
}

/*
 * Claimed by a live process (here: us, who never received it): not
 * reclaimed, and not delivered to another receiver (-EUCLEAN; the
 * descriptor is consumed, the block stays its claimer's).
 */
TEST_F(ring, zc_claim_garbage_live_owner)
{
	static const uint32_t types[] = { SHMPOOL_RING_SPSC, SHMPOOL_RING_MPMC };
	static const uint32_t states[] = { MSG_RECEIVING, MSG_HELD };
	int t, st, ix, freed, ret;

	for (t = 0; t < 2; t++)
		for (st = 0; st < 2; st++)
			for (ix = 0; ix < 2; ix++) {
				claim_garbage(_metadata, self->h, self->name, types[t],
					      (uint32_t)shmpool_attach_id(self->p),
					      states[st], ix, &freed, &ret);
				EXPECT_EQ(0, freed) TH_LOG("type %u state %u idx %d",
							   types[t], states[st], ix);
				EXPECT_EQ(-EUCLEAN, ret) TH_LOG("type %u state %u idx %d",
								types[t], states[st], ix);
			}
}

/*
 * Claimed by a process that is gone (an id that never lived). Receiving
 * with the descriptor's index: a receiver killed before its dequeue, as
 * far as anyone can tell: the next receiver takes it over. Otherwise the
 * block is reclaimed (held: consumed, as the entry says; receiving at an
 * index whose slot is free: consumed) and the receive, which finds no
 * claim to take over, fails with -EUCLEAN instead of handing out a freed
 * block.
 */
TEST_F(ring, zc_claim_garbage_dead_owner)
{
	static const uint32_t types[] = { SHMPOOL_RING_SPSC, SHMPOOL_RING_MPMC };
	int t, freed, ret;

	for (t = 0; t < 2; t++) {
		claim_garbage(_metadata, self->h, self->name, types[t], NEVER_LIVED,
			      MSG_RECEIVING, true, &freed, &ret);
		EXPECT_EQ(0, freed) TH_LOG("type %u receiving", types[t]);
		EXPECT_EQ(0, ret) TH_LOG("type %u receiving", types[t]);
		claim_garbage(_metadata, self->h, self->name, types[t], NEVER_LIVED,
			      MSG_RECEIVING, false, &freed, &ret);
		EXPECT_EQ(1, freed) TH_LOG("type %u receiving, index wrong", types[t]);
		EXPECT_EQ(-EUCLEAN, ret) TH_LOG("type %u receiving, index wrong", types[t]);
		claim_garbage(_metadata, self->h, self->name, types[t], NEVER_LIVED,
			      MSG_HELD, true, &freed, &ret);
		EXPECT_EQ(1, freed) TH_LOG("type %u held", types[t]);
		EXPECT_EQ(-EUCLEAN, ret) TH_LOG("type %u held", types[t]);
	}
}

#define MSG_PASSED	5U	/* lib/msg.c: received by a process without an id */

/*
 * A message that a process without an attachment id received (the entry
 * says passed, the owner is still its publisher's) after its publisher
 * died: reclaim leaves block and entry alone (the receiver holds it, and
 * owns nothing a reclaimer could see die); the release frees both.
 */
TEST_F(ring, zc_passed_message_outlives_its_publisher)
{
	static const uint32_t types[] = { SHMPOOL_RING_SPSC, SHMPOOL_RING_MPMC };
	struct __shmpool_msg_loan *e;
	struct shmpool_ring *r;
	struct shmpool_msg m, got;
	uint64_t used0;
	const void *q;
	void *p;
	int t;

	for (t = 0; t < 2; t++) {
		shmpool_obj_remove(self->h, self->name);
		ASSERT_EQ(1, shmpool_ring_create(self->h, self->name, types[t], 16, sizeof(m),
						 0, &r));
		shmpool_heap_flush(self->h);
		used0 = heap_used(self->h);
		ASSERT_EQ(0, shmpool_msg_loan(r, 64, &p, &m));
		ASSERT_EQ(0, shmpool_msg_publish(r, &m, 0, NULL));
		ASSERT_EQ(0, shmpool_msg_receive(r, &got, &q, SHMPOOL_MSG_NONBLOCK, NULL));
		e = msg_loan_of(r, got.off);
		ASSERT_NE(NULL, e);
		atomic_store(&e->state, MSG_PASSED);
		atomic_store(&e->owner, NEVER_LIVED);
		EXPECT_EQ(0, shmpool_msg_reclaim(r)) TH_LOG("type %u", types[t]);
		EXPECT_LE(0, shmpool_alloc_size(self->h, got.off - 16));
		EXPECT_EQ(NEVER_LIVED, atomic_load(&e->owner));
		EXPECT_EQ(0, shmpool_msg_release(r, &got));
		EXPECT_EQ(0U, atomic_load(&e->owner));
		shmpool_heap_flush(self->h);
		EXPECT_EQ(used0, heap_used(self->h)) TH_LOG("type %u", types[t]);
		shmpool_ring_close(r);
	}
}

/*
 * Containers (device, kernel-issued attachment ids): the consumer runs in
 * a new PID namespace, where its process id means something else (or
 * nothing) to the producer. While it lives, the producer's wait on a full
 * ring is never cut short as if it had died; once it is killed, the wait
 * ends with -ECONNRESET.
 */
static int ns_consumer(void *arg)
{
	struct death *d = arg;
	struct shmpool_ring *r;
	uint64_t v;
	pid_t pid;

	if (unshare(CLONE_NEWPID))
		return 99;	/* not permitted here */
	pid = fork();
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (shmpool_ring_open(d->h, d->name, SHMPOOL_RING_SPSC, 8, &r))
			_exit(2);
		if (shmpool_ring_dequeue_wait(r, &v, 1, 0, NULL) != 1)
			_exit(3);
		*d->moved = (int32_t)getpid();	/* 1: its namespace's init */
		for (;;)
			pause();
	}
	*d->ret = (int32_t)pid;		/* its id in ours */
	return reap(pid);
}

TEST_F_TIMEOUT(ring, spsc_peer_in_other_pid_namespace, 60)
{
	struct shmpool_ring *r;
	_Atomic int32_t *sh = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
				   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	struct death d = { self->h, self->name, SHMPOOL_RING_SPSC, sh, sh + 1, 0 };
	struct timespec dl;
	uint32_t seq;
	uint64_t v = 5;
	pid_t c;
	int i;

	ASSERT_NE(MAP_FAILED, (void *)sh);
	if (variant->backend != SHMPOOL_BACKEND_DEVICE ||
	    shmpool_death_seq(self->p, &seq) == -EOPNOTSUPP)
		SKIP(return, "needs kernel-issued attachment ids (device, SHMPOOL_CAP_DEATH_NOTICE)");
	ASSERT_EQ(1, shmpool_ring_create(self->h, self->name, SHMPOOL_RING_SPSC,
					 4, 8, 0, &r));
	*sh = 0;
	c = spawn(ns_consumer, &d);
	ASSERT_EQ(1, shmpool_ring_enqueue(r, &v));
	for (i = 0; i < 20000 && !sh[1]; i++)
		usleep(1000);
	if (!sh[1]) {
		EXPECT_EQ(99, reap(c));
		SKIP(return, "unshare(CLONE_NEWPID) not permitted");
	}
	for (i = 0; i < 4; i++)
		ASSERT_EQ(1, shmpool_ring_enqueue(r, &v));
	/* full, the consumer alive in its namespace: a plain timeout */
	dl = after_ms(300);
	EXPECT_EQ(-ETIMEDOUT, shmpool_ring_enqueue_wait(r, &v, 1, 0, &dl));
	kill((pid_t)*sh, SIGKILL);
	dl = after_ms(DEATH_WAIT_MS);
	EXPECT_EQ(-ECONNRESET, shmpool_ring_enqueue_wait(r, &v, 1, 0, &dl));
	EXPECT_EQ(128 + SIGKILL, reap(c));
	shmpool_ring_close(r);
	munmap((void *)sh, 4096);
}

TEST_HARNESS_MAIN
