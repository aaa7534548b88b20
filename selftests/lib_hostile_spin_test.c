// SPDX-License-Identifier: GPL-2.0
/*
 * A peer that rewrites one shared word under every instruction of a call
 * (issue 14, item 3: every loop over shared state is bounded).
 *
 * The lock-free loops of the library retry a CAS that lost: each loss
 * means that someone else's push, pop or takeover went through, which is
 * progress. A peer that writes the word in a loop fakes that progress for
 * ever. Here the test is that peer at its most exact: it single-steps the
 * victim (ptrace) and before every step writes the word again (a list
 * top's ABA tag bumped, an object's owner or a ring side's owner set to
 * another id), so that every CAS the victim makes fails. The heap's
 * state word at open is rewritten at each of the victim's system calls
 * instead (its loop sleeps between looks).
 *
 * Each call must return within a bounded number of steps, with what its
 * header promises for the case: the allocation served from the general
 * heap, the flush done (its objects stranded, which the reclaim lists
 * again), the stats given, -EBUSY (adopt, ring takeover), -ETIMEDOUT
 * (heap open, after its 10 s). Before the bounds, each of them ran until
 * the test's cap.
 *
 * Host only, memfd, plain build: the loops are the library's, the same on
 * either backend, and single-stepping a thousand rounds is too slow under
 * TCG or under the sanitizers' instrumentation.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/user.h>

#include <shmpool.h>
#include <shmpool_alloc.h>
#include <shmpool_ring.h>

#include "../lib/heap.h"
/* the 6.1 harness leaves parameters unused and defines unprototyped functions */
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#include "kselftest_harness.h"
#include "lib_test.h"

#define POOL_BYTES	(4UL << 20)	/* a 512-byte class caches 2, in batches of 1 */
#define OBJ		512
#define NOBJ		12
#define STEPS_MAX	400000L	/* over 3 times what the longest bounded call here takes */
#define OPEN_CAP_MS	30000		/* heap open: its 10 s and more than enough slack */
#define RING		"spin.ring"

enum op { OP_TAKE, OP_PUSH, OP_TRIM, OP_ADOPT, OP_TAKEOVER, OP_OPEN };

struct spin {
	struct shmpool *p;
	struct shmpool_heap *h;
	enum op op;
	unsigned int c;			/* OBJ's class */
	uint64_t off;			/* OP_ADOPT: the object */
	_Atomic uint64_t *top;		/* a list top whose tag is bumped, or NULL: all lanes */
	_Atomic uint32_t *word;		/* a word rewritten as @a + k % @span at step k */
	uint32_t a, span;
};

static bool skip_here(void)
{
	return STEP_SANITIZED || in_vm_lane();
}

/* The victim: set up, stop, make the call; exits with the call's -errno (0: success). */
static int spin_victim(void *arg)
{
	struct spin *s = arg;
	struct shmpool_heap_stats st;
	struct shmpool_ring *r;
	struct shmpool_heap *h;
	uint64_t off[NOBJ];
	int i, ret = 0;

	/* after fork(): our own owner id, and a cache on our own lane */
	if (s->op != OP_OPEN) {
		if (shmpool_heap_attach_id(s->h) <= 0)
			return 100;
		for (i = 0; i < NOBJ; i++)
			if (shmpool_alloc(s->h, OBJ, &off[i]))
				return 101;
		for (i = 0; i < NOBJ; i++)
			if (shmpool_free(s->h, off[i]))
				return 102;
		/* OP_PUSH keeps the cache's last objects for the stepped flush */
		if (s->op != OP_PUSH && shmpool_heap_flush(s->h))
			return 103;
	}
	if (ptrace(PTRACE_TRACEME, 0, NULL, NULL))
		return 104;
	raise(SIGSTOP);
	switch (s->op) {
	case OP_TAKE:
		/* served from another lane, or from the general heap */
		ret = shmpool_alloc(s->h, OBJ, &off[0]);
		break;
	case OP_PUSH:
		ret = shmpool_heap_flush(s->h);
		break;
	case OP_TRIM:
		ret = shmpool_heap_stats(s->h, &st);
		break;
	case OP_ADOPT:
		ret = shmpool_alloc_adopt(s->h, s->off);
		break;
	case OP_TAKEOVER:
		ret = shmpool_ring_open(s->h, RING, SHMPOOL_RING_SPSC, 8, &r);
		if (!ret)
			ret = shmpool_ring_takeover(r, SHMPOOL_RING_PROD);
		break;
	case OP_OPEN:
		ret = shmpool_heap_open(s->p, 0, &h);
		break;
	}
	return ret < 0 ? -ret : ret ? 106 : 0;
}

/* The peer's write before step @k. */
static void flip(struct spin *s, long k)
{
	unsigned int l;

	/* never the value of a few steps before: a CAS loop's body is longer than one step */
	if (s->word)
		atomic_store(s->word, s->a + (uint32_t)(k % s->span));
	else if (s->top)
		atomic_fetch_add(s->top, 1ULL << 32);
	else
		for (l = 0; l < NR_LANES; l++)
			atomic_fetch_add(&heap_hdr(s->h)->cls[s->c].top[l], 1ULL << 32);
}

/*
 * Run the victim from its stop, one instruction at a time, flipping before
 * each: its exit status (the call's errno), or -1 if it did not end within
 * STEPS_MAX steps (killed; logged) or the tracing failed.
 */
static int step_flipping(struct __test_metadata *_metadata, struct spin *s, pid_t pid)
{
	cpu_set_t was;
	int pinned = pin_cpu(&was), st, ret = -1;
	long k;

	for (k = 0; k < STEPS_MAX; k++) {
		flip(s, k);
		if (ptrace(PTRACE_SINGLESTEP, pid, NULL, NULL) || waitpid(pid, &st, 0) != pid)
			break;
		if (WIFEXITED(st)) {
			TH_LOG("the call returned -%d after %ld steps", WEXITSTATUS(st), k);
			ret = WEXITSTATUS(st);
			break;
		}
		if (!WIFSTOPPED(st))
			break;
	}
	if (pinned)
		unpin_cpu(&was);
	if (ret < 0) {
		TH_LOG("the call still runs after %ld steps of a peer rewriting its word", k);
		victim_kill(pid);
	}
	return ret;
}

/*
 * The victim's lane (tc_pick_lane(): the one given out last) of class @c:
 * read after its cache was made.
 */
static _Atomic uint64_t *victim_top(struct shmpool_heap *h, unsigned int c)
{
	struct heap_hdr *hh = heap_hdr(h);

	return &hh->cls[c].top[(atomic_load(&hh->lane_next) - 1) % NR_LANES];
}

FIXTURE(spin) {
	char name[SHMPOOL_NAME_MAX];
	struct spin s;
	struct shmpool_heap_stats base;
};

FIXTURE_SETUP(spin)
{
	uint64_t off;

	if (skip_here())
		SKIP(longjmp(_metadata->env, 1),
		     "single-steps a thousand rounds: the plain host build's (memfd)");
	snprintf(self->name, sizeof(self->name), "spin.%d", (int)getpid());
	ASSERT_EQ(0, shmpool_create(self->name, POOL_BYTES, 0600,
				    SHMPOOL_BACKEND_MEMFD | SHMPOOL_EXCL, &self->s.p));
	ASSERT_EQ(0, shmpool_heap_open(self->s.p, 0, &self->s.h));
	/* OBJ's class, and the baseline with one of its slabs made */
	ASSERT_EQ(0, shmpool_alloc(self->s.h, OBJ, &off));
	ASSERT_EQ(0, shmpool_heap_stats(self->s.h, &self->base));
	while (self->s.c < SHMPOOL_HEAP_NR_CLASSES &&
	       self->base.classes[self->s.c].size < OBJ)
		self->s.c++;
	ASSERT_GT((unsigned int)SHMPOOL_HEAP_NR_CLASSES, self->s.c);
	ASSERT_EQ(0, shmpool_free(self->s.h, off));
	ASSERT_EQ(0, shmpool_heap_flush(self->s.h));
	ASSERT_EQ(0, shmpool_heap_stats(self->s.h, &self->base));
}

FIXTURE_TEARDOWN(spin)
{
	if (skip_here())
		return;
	shmpool_heap_close(self->s.h);
	shmpool_close(self->s.p);
	shmpool_unlink(self->name, SHMPOOL_BACKEND_MEMFD);
}

/* The heap after the victim died: consistent once reclaimed, nothing lost. */
static void heap_whole(struct __test_metadata *_metadata, FIXTURE_DATA(spin) *self)
{
	struct shmpool_heap_stats st;
	char msg[256];
	unsigned int c = self->s.c;

	ASSERT_LE(0, shmpool_heap_reclaim(self->s.h, SHMPOOL_RECLAIM_HELD));
	ASSERT_LE(0, shmpool_heap_reclaim(self->s.h, SHMPOOL_RECLAIM_STRANDED));
	EXPECT_EQ(0, shmpool_heap_check(self->s.h, SHMPOOL_CHECK_QUIESCENT, msg, sizeof(msg)))
		TH_LOG("%s", msg);
	ASSERT_EQ(0, shmpool_heap_stats(self->s.h, &st));
	EXPECT_EQ(self->base.classes[c].used, st.classes[c].used);
	EXPECT_EQ(0U, st.classes[c].cached);
	EXPECT_EQ(self->base.alloc_blocks, st.alloc_blocks);
}

static pid_t start(struct __test_metadata *_metadata, FIXTURE_DATA(spin) *self, enum op op)
{
	pid_t pid;

	self->s.op = op;
	pid = victim_start(spin_victim, &self->s);
	if (pid <= 0)
		TH_LOG("the victim did not start");
	return pid;
}

/* A refill whose list top moves under every pop: the allocation comes from the general heap. */
TEST_F_TIMEOUT(spin, refill_pop_loses_every_cas, 300)
{
	pid_t pid = start(_metadata, self, OP_TAKE);

	ASSERT_LT(0, pid);
	self->s.top = victim_top(self->s.h, self->s.c);
	ASSERT_NE(0U, (uint32_t)atomic_load(self->s.top));	/* its objects are there */
	EXPECT_EQ(0, step_flipping(_metadata, &self->s, pid));
	heap_whole(_metadata, self);
}

/* A flush whose pushes lose every CAS: it returns; its objects are listed again by the reclaim. */
TEST_F_TIMEOUT(spin, flush_push_loses_every_cas, 300)
{
	pid_t pid = start(_metadata, self, OP_PUSH);

	ASSERT_LT(0, pid);
	self->s.top = victim_top(self->s.h, self->s.c);
	EXPECT_EQ(0, step_flipping(_metadata, &self->s, pid));
	heap_whole(_metadata, self);
}

/* The stats' trim of empty slabs, every lane's top moving: the lanes it cannot take stay. */
TEST_F_TIMEOUT(spin, trim_loses_every_cas, 300)
{
	pid_t pid = start(_metadata, self, OP_TRIM);

	ASSERT_LT(0, pid);
	self->s.top = NULL;	/* all of the class's lanes */
	EXPECT_EQ(0, step_flipping(_metadata, &self->s, pid));
	heap_whole(_metadata, self);
}

/* An adopt whose object's owner changes under every look: -EBUSY. */
TEST_F_TIMEOUT(spin, adopt_of_an_object_whose_owner_keeps_changing, 300)
{
	_Atomic uint32_t *slot;
	uint32_t idx;
	uint64_t s0;
	int owner;
	pid_t pid;

	ASSERT_EQ(0, shmpool_alloc(self->s.h, OBJ, &self->s.off));
	owner = shmpool_alloc_owner(self->s.h, self->s.off);
	ASSERT_LT(0, owner);
	s0 = self->s.off & ~(uint64_t)heap_priv(self->s.h)->cls[self->s.c].slab_mask;
	idx = (uint32_t)((self->s.off - s0 - heap_priv(self->s.h)->cls[self->s.c].obj_off) /
			 heap_priv(self->s.h)->cls[self->s.c].size);
	slot = (_Atomic uint32_t *)((char *)shmpool_base(self->s.p) + s0 +
				    heap_priv(self->s.h)->cls[self->s.c].slot_off) + idx;
	ASSERT_EQ((uint32_t)owner, atomic_load(slot));
	/* owner ids 1..1000: "allocated", by someone else at every look */
	self->s.word = slot;
	self->s.a = 1;
	self->s.span = 1000;
	pid = start(_metadata, self, OP_ADOPT);
	ASSERT_LT(0, pid);
	EXPECT_EQ(EBUSY, step_flipping(_metadata, &self->s, pid));
	atomic_store(slot, (uint32_t)owner);
	EXPECT_EQ(owner, shmpool_alloc_owner(self->s.h, self->s.off));
	EXPECT_EQ(0, shmpool_free(self->s.h, self->s.off));
	ASSERT_EQ(0, shmpool_heap_flush(self->s.h));
	heap_whole(_metadata, self);
}

/* A takeover of an SPSC side whose owner changes under every look, dead each time: -EBUSY. */
TEST_F_TIMEOUT(spin, ring_takeover_of_a_side_whose_owner_keeps_changing, 300)
{
	struct shmpool_ring *r;
	pid_t pid;

	ASSERT_LE(0, shmpool_ring_create(self->s.h, RING, SHMPOOL_RING_SPSC, 64, 8, 0, &r));
	/* ids above SHMPOOL_ATTACH_ID_MAX: dead without a system call (fewer steps) */
	self->s.word = &r->hdr->prod.owner;
	self->s.a = SHMPOOL_ATTACH_ID_MAX + 1;
	self->s.span = 1U << 20;
	pid = start(_metadata, self, OP_TAKEOVER);
	ASSERT_LT(0, pid);
	EXPECT_EQ(EBUSY, step_flipping(_metadata, &self->s, pid));
	atomic_store(&r->hdr->prod.owner, 0);
	EXPECT_EQ(0, shmpool_ring_takeover(r, SHMPOOL_RING_PROD));
	shmpool_ring_close(r);
}

#if defined(__x86_64__)
/* A hardware watchpoint on the 4 bytes at @addr (reads and writes) in the stopped @pid. */
static int watch_word(pid_t pid, const void *addr)
{
	unsigned long dr7 = 1UL | 3UL << 16 | 3UL << 18;	/* L0, RW0 = rw, LEN0 = 4 */

	if (ptrace(PTRACE_POKEUSER, pid, (void *)offsetof(struct user, u_debugreg[0]),
		   (void *)addr))
		return -1;
	return ptrace(PTRACE_POKEUSER, pid, (void *)offsetof(struct user, u_debugreg[7]),
		      (void *)dr7) ? -1 : 0;
}

#define REPAIR_HITS_MAX	10000	/* the size word is read twice per repair */

/*
 * The repair after a dead holder of the heap's lock walks the block
 * headers twice: once to check the chain, once to rebuild. A peer that
 * writes a block's size to 0 between the two (here: as soon as a
 * watchpoint on it sees the first walk read it) must get -EUCLEAN, not a
 * walk that stays on that block for ever with the lock held.
 */
TEST_F_TIMEOUT(spin, repair_meets_a_size_rewritten_between_its_walks, 60)
{
	struct shmpool_mutex *m = (struct shmpool_mutex *)&heap_hdr(self->s.h)->lock;
	_Atomic uint32_t *size;
	int st, hits = 0;
	pid_t pid, holder;
	uint64_t a;

	ASSERT_EQ(0, shmpool_alloc(self->s.h, 30000, &a));
	size = (_Atomic uint32_t *)((char *)shmpool_base(self->s.p) + a - sizeof(struct blk));
	pid = start(_metadata, self, OP_TRIM);	/* shmpool_heap_stats(): takes the lock */
	ASSERT_LT(0, pid);
	/* then the heap's lock is left to a dead holder: the victim's stats repair */
	holder = fork();
	ASSERT_LE(0, holder);
	if (holder == 0)
		_exit(shmpool_mutex_lock(self->s.p, m) ? 1 : 0);
	ASSERT_EQ(holder, waitpid(holder, &st, 0));
	ASSERT_EQ(0, st);
	ASSERT_EQ(0, watch_word(pid, size));
	for (;;) {
		ASSERT_EQ(0, ptrace(PTRACE_CONT, pid, NULL, NULL));
		ASSERT_EQ(pid, waitpid(pid, &st, 0));
		if (WIFEXITED(st) || WIFSIGNALED(st))
			break;
		ASSERT_EQ(SIGTRAP, WSTOPSIG(st));
		if (++hits == 1)
			atomic_store(size, 0);	/* the first walk has read it */
		if (hits > REPAIR_HITS_MAX) {
			victim_kill(pid);
			ASSERT_TRUE(0) TH_LOG("the repair read the size %d times", hits);
		}
	}
	TH_LOG("the size was read %d times", hits);
	ASSERT_TRUE(WIFEXITED(st));
	EXPECT_EQ(EUCLEAN, WEXITSTATUS(st));
}
#endif

/*
 * A heap open on a pool whose state word says "initialiser n at work", n
 * dead and another at each of the opener's system calls (its look at the
 * initialiser, its sleep): every takeover CAS fails. -ETIMEDOUT after its
 * 10 s.
 */
struct state_flip {
	_Atomic uint32_t *state;
	long calls;
	uint64_t t0;
};

static int flip_state(void *arg, long nr)
{
	struct state_flip *f = arg;

	if (now_ms() - f->t0 > OPEN_CAP_MS)
		return 1;	/* it still runs */
	/* ids above any pid (pid_max is at most 2^22): dead */
	atomic_store(f->state, HEAP_STATE_INIT | 1U << 24 | (uint32_t)(++f->calls % (1 << 20)));
	return 0;
}

TEST_F_TIMEOUT(spin, heap_open_on_a_state_that_keeps_changing, 120)
{
	struct state_flip f = { NULL, 0, now_ms() };
	int st, ret;
	pid_t pid;

	shmpool_heap_close(self->s.h);
	shmpool_close(self->s.p);
	ASSERT_EQ(0, shmpool_create_anon(POOL_BYTES / 4, SHMPOOL_BACKEND_MEMFD, &self->s.p));
	self->s.h = NULL;
	f.state = shmpool_base(self->s.p);
	atomic_store(f.state, HEAP_STATE_INIT | 1U << 24);
	pid = start(_metadata, self, OP_OPEN);
	ASSERT_LT(0, pid);
	ret = trace_syscall_entries(pid, flip_state, &f, &st);
	TH_LOG("%ld system calls in %llu ms", f.calls, (unsigned long long)(now_ms() - f.t0));
	ASSERT_EQ(1, ret) TH_LOG("the open still runs after %d ms", OPEN_CAP_MS);
	ASSERT_TRUE(WIFEXITED(st));
	EXPECT_EQ(ETIMEDOUT, WEXITSTATUS(st));
	/* once the word holds still, the next open takes over from the dead one */
	EXPECT_EQ(0, shmpool_heap_open(self->s.p, 0, &self->s.h));
}

TEST_HARNESS_MAIN
