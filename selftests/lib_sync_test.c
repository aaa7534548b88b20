/* lib_sync_test: libshmpool doorbells (wait/wake/waitv/notify) and the event, mutex, condvar and semaphore built on them, on the memfd and device backends. */
// SPDX-License-Identifier: MIT
/*
 * Workers are processes (fork) by default, as the library is meant to be
 * used; built with -DSHMPOOL_TEST_THREADS they are threads of the test
 * process, so that ThreadSanitizer sees both sides of every exchange. A
 * worker reports through pool memory only (a forked child's other writes
 * are its own), and a forked worker dies with the test (PR_SET_PDEATHSIG):
 * a stuck sleeper never outlives a failed test and never pins a pool.
 *
 * "No syscall" claims are checked by tracing a child with PTRACE_SYSCALL and
 * counting the system calls it enters between two getppid() markers: it
 * trusts nothing in the library, sees every syscall (futex, ioctl or any
 * other), and needs only ptrace, which every lane's kernel has.
 *
 * Lost wake-ups show up as stalls: long exchanges run under a monitor that
 * fails the test when the shared progress counter stops moving for
 * STALL_MS, then unsticks the workers so that nothing hangs.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/time.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include "shmpool.h"
#include "shmpool_alloc.h"
#include "shmpool_ring.h"
#include "shmpool_state.h"
#include "shmpool_sync.h"
/* the 6.1 harness leaves parameters unused and defines unprototyped functions */
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#include "kselftest_harness.h"
#include "lib_test.h"

#define MAX_WORKERS	8
#define STALL_MS	10000	/* no progress for this long is a lost wake-up */
#define PINGPONG_ROUNDS	100000	/* round trips of the lost-wake-up hunt */
#define PINGPONG_MIN_ROUNDS	2000	/* when it runs out of time */
#define PINGPONG_BUDGET_MS	40000
#define STOP		0xffffffffU	/* word value that tells workers to quit */

/*
 * Everything workers share, at offset 0 of the test pool. Doorbell words are
 * the w[] array, so w[i] is at pool offset 4 * i.
 */
struct shared {
	_Atomic uint32_t w[16];
	_Atomic uint32_t progress;	/* moves while an exchange is alive */
	_Atomic uint32_t ready;		/* workers about to sleep */
	_Atomic uint32_t done;		/* workers finished */
	_Atomic uint32_t woke;		/* workers back from a wait */
	_Atomic uint32_t hits;		/* signal handler runs */
	_Atomic uint32_t go;
	_Atomic int32_t result[MAX_WORKERS];
	_Atomic int32_t tid[MAX_WORKERS];
	_Atomic int32_t tgid[MAX_WORKERS];
	_Atomic uint32_t aid[MAX_WORKERS];	/* shmpool_attach_id() */
	struct shmpool_event ev[2];
	struct shmpool_mutex mtx;
	struct shmpool_cond cnd[2];
	struct shmpool_sem sem;
	uint64_t counter;		/* under mtx */
	uint32_t ring[4];		/* under mtx: a bounded buffer */
	uint32_t head, tail;
	uint64_t sum;
	/* a mutex at offset 4 mod 8: the 4-byte path of lock and unlock */
	struct {
		uint32_t pad;
		struct shmpool_mutex m;
	} odd;
};

_Static_assert(offsetof(struct shared, mtx) % 8 == 0, "mtx: the 8-byte path");
_Static_assert(offsetof(struct shared, odd.m) % 8 == 4, "odd.m: the 4-byte path");

#define W_OFF(i)	((uint64_t)(i) * sizeof(uint32_t))

/* A robust semaphore's @value: its units (shmpool_sync.h) */
static uint32_t sem_units(uint32_t v)
{
	return v & SHMPOOL_SEM_EMPTY ? 0 : v;
}

static size_t page_size(void)
{
	return (size_t)sysconf(_SC_PAGESIZE);
}

static pid_t sys_gettid(void)
{
	return (pid_t)syscall(SYS_gettid);
}

/* ---- time ------------------------------------------------------------------ */

static struct timespec now(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return ts;
}

static struct timespec ts_add_ms(struct timespec ts, long ms)
{
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	} else if (ts.tv_nsec < 0) {
		ts.tv_sec--;
		ts.tv_nsec += 1000000000L;
	}
	return ts;
}

/* @a - @b in milliseconds */
static long ts_ms(struct timespec a, struct timespec b)
{
	return (a.tv_sec - b.tv_sec) * 1000L + (a.tv_nsec - b.tv_nsec) / 1000000L;
}

static bool ts_before(struct timespec a, struct timespec b)
{
	return a.tv_sec < b.tv_sec ||
	       (a.tv_sec == b.tv_sec && a.tv_nsec < b.tv_nsec);
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* Wait until *@v >= @n; 0, or -1 after @ms. */
static int wait_count(_Atomic uint32_t *v, uint32_t n, long ms)
{
	struct timespec end = ts_add_ms(now(CLOCK_MONOTONIC), ms);

	while (atomic_load(v) < n) {
		if (!ts_before(now(CLOCK_MONOTONIC), end))
			return -1;
		sleep_ms(1);
	}
	return 0;
}

/*
 * Let @nr workers counting up sh->done run while sh->progress moves, and
 * log how long they took. On a stall of STALL_MS, call @unstick(@arg) so
 * they can finish, and return -1. With a @budget_ms, stop them the same way
 * once it is spent and return 1.
 */
static int monitor(struct __test_metadata *_metadata, struct shared *sh,
		   uint32_t nr, void (*unstick)(void *), void *arg,
		   long budget_ms)
{
	struct timespec t0 = now(CLOCK_MONOTONIC), since = t0;
	uint32_t last = atomic_load(&sh->progress);
	int ret = 0;

	while (atomic_load(&sh->done) < nr) {
		uint32_t cur = atomic_load(&sh->progress);

		sleep_ms(20);
		if (cur != last) {
			last = cur;
			since = now(CLOCK_MONOTONIC);
		} else if (ts_ms(now(CLOCK_MONOTONIC), since) > STALL_MS) {
			ret = -1;
			break;
		}
		if (budget_ms && ts_ms(now(CLOCK_MONOTONIC), t0) > budget_ms) {
			ret = 1;
			break;
		}
	}
	if (ret)
		unstick(arg);
	TH_LOG("%u steps in %ld ms%s", atomic_load(&sh->progress),
	       ts_ms(now(CLOCK_MONOTONIC), t0),
	       ret < 0 ? ", then stalled" : ret ? ", out of time" : "");
	return ret;
}

/* ---- fixture ------------------------------------------------------------------- */

struct ctx {
	struct shmpool *p;
	struct shared *sh;
	int idx;		/* worker index */
	int flag;		/* per-test knob */
};

/*
 * Skip the device variant without /dev/shmpool or without doorbells (the
 * module may predate them). 1 if usable.
 */
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

FIXTURE(sync) {
	struct shmpool *p;
	struct shared *sh;
	char name[SHMPOOL_NAME_MAX];
	struct ctx c[MAX_WORKERS];
	struct task t[MAX_WORKERS];
};

FIXTURE_VARIANT(sync) {
	unsigned int backend;	/* SHMPOOL_BACKEND_* flag forced on every call */
};

FIXTURE_VARIANT_ADD(sync, memfd) {
	.backend = SHMPOOL_BACKEND_MEMFD,
};

FIXTURE_VARIANT_ADD(sync, device) {
	.backend = SHMPOOL_BACKEND_DEVICE,
};

FIXTURE_SETUP(sync)
{
	int i;

	/* 6.1's harness would still run the test after SKIP() here */
	if (variant->backend == SHMPOOL_BACKEND_DEVICE && !device_has_doorbells())
		SKIP(longjmp(_metadata->env, 1), DEV_PATH " with doorbells not available");
	SKIP_MEMFD_IN_DEVICE_LANE(variant->backend);
	snprintf(self->name, sizeof(self->name), "lst.%d", (int)getpid());
	ASSERT_EQ(0, shmpool_create_anon(4 * page_size(), variant->backend,
					 &self->p));
	self->sh = shmpool_base(self->p);
	for (i = 0; i < MAX_WORKERS; i++)
		self->c[i] = (struct ctx) { self->p, self->sh, i, 0 };
}

FIXTURE_TEARDOWN(sync)
{
	shmpool_close(self->p);
	shmpool_unlink(self->name, variant->backend);
}

/* ---- doorbells: the lost-wake-up hunt --------------------------------------- */

/*
 * Two workers hand the word w[0] back and forth: worker k owns the even
 * (k = 0) or odd (k = 1) values, waits until the word is one of its own,
 * bumps it and wakes the other. Never spinning, so every hand-off needs
 * its wake-up to arrive.
 */
static int pingpong_worker(void *arg)
{
	struct ctx *c = arg;
	uint32_t i, v;
	int ret;

	for (i = (uint32_t)c->idx; i < 2 * PINGPONG_ROUNDS; i += 2) {
		while ((v = atomic_load(&c->sh->w[0])) != i) {
			if (v == STOP)
				return 2;
			ret = shmpool_wait(c->p, W_OFF(0), v, NULL, 0);
			if (ret && ret != -EAGAIN)
				return 3;
		}
		atomic_store(&c->sh->w[0], i + 1);
		atomic_fetch_add(&c->sh->progress, 1);
		if (shmpool_wake(c->p, W_OFF(0), 1) < 0)
			return 4;
	}
	atomic_fetch_add(&c->sh->done, 1);
	return 0;
}

/*
 * A hunt's time budget: a quarter of it in the debug lane, which is there
 * for KASAN, lockdep and kmemleak on the module's paths (a few thousand
 * hand-offs cover them) and runs them several times slower; the other lanes
 * hunt for lost wake-ups with the full budget.
 */
static long hunt_budget_ms(long ms)
{
	return lane_debug_quarter(ms);
}

static void pingpong_unstick(void *arg)
{
	struct ctx *c = arg;

	atomic_store(&c->sh->w[0], STOP);
	shmpool_wake(c->p, W_OFF(0), SHMPOOL_WAKE_ALL);
}

/*
 * 100,000 round trips, unless PINGPONG_BUDGET_MS (a quarter of it in the
 * debug lane: hunt_budget_ms()) runs out first, which
 * only a slow machine (a TCG guest) sees; then at least PINGPONG_MIN_ROUNDS.
 */
TEST_F_TIMEOUT(sync, pingpong_lost_wakeup, 90)
{
	int ret, i;

	for (i = 0; i < 2; i++)
		ASSERT_EQ(0, task_start(&self->t[i], pingpong_worker, &self->c[i]));
	ret = monitor(_metadata, self->sh, 2, pingpong_unstick, &self->c[0],
		      hunt_budget_ms(PINGPONG_BUDGET_MS));
	EXPECT_LE(0, ret) TH_LOG("lost wake-up: stalled at hand-off %u",
				 atomic_load(&self->sh->progress));
	for (i = 0; i < 2; i++)
		EXPECT_EQ(ret ? 2 : 0, task_join(&self->t[i]));
	if (!ret) {
		EXPECT_EQ(2U * PINGPONG_ROUNDS, atomic_load(&self->sh->w[0]));
	} else if (ret > 0) {
		EXPECT_LE(2U * PINGPONG_MIN_ROUNDS,
			  atomic_load(&self->sh->progress));
	}
}

/* ---- doorbells: wake counts --------------------------------------------------- */

/* Sleep on w[1] == 0 once (c->flag: with a deadline centuries away); count the return in sh->woke. */
static int sleeper(void *arg)
{
	struct ctx *c = arg;
	struct timespec far = { INT64_MAX / 2, 999999999L };
	int ret;

	atomic_store(&c->sh->tid[c->idx], sys_gettid());
	atomic_fetch_add(&c->sh->ready, 1);
	ret = shmpool_wait(c->p, W_OFF(1), 0, c->flag ? &far : NULL, 0);
	atomic_store(&c->sh->result[c->idx], ret);
	atomic_fetch_add(&c->sh->woke, 1);
	return ret ? 1 : 0;
}

TEST_F(sync, wake_n_of_many)
{
	const int n = 6;
	int i;

	for (i = 0; i < n; i++)
		ASSERT_EQ(0, task_start(&self->t[i], sleeper, &self->c[i]));
	ASSERT_EQ(0, wait_count(&self->sh->ready, n, 10000));
	for (i = 0; i < n; i++)
		ASSERT_EQ(0, wait_asleep(atomic_load(&self->sh->tid[i])));

	EXPECT_EQ(3, shmpool_wake(self->p, W_OFF(1), 3));
	EXPECT_EQ(0, wait_count(&self->sh->woke, 3, 10000));
	/* and no more than three: the others still sleep a while later */
	sleep_ms(200);
	EXPECT_EQ(3U, atomic_load(&self->sh->woke));

	EXPECT_EQ(n - 3, shmpool_wake(self->p, W_OFF(1), SHMPOOL_WAKE_ALL));
	for (i = 0; i < n; i++)
		EXPECT_EQ(0, task_join(&self->t[i]));
	EXPECT_EQ((uint32_t)n, atomic_load(&self->sh->woke));
}

TEST_F(sync, wake_no_waiters)
{
	EXPECT_EQ(0, shmpool_wake(self->p, W_OFF(1), 1));
	EXPECT_EQ(0, shmpool_wake(self->p, W_OFF(1), SHMPOOL_WAKE_ALL));
	EXPECT_EQ(0, shmpool_wake(self->p, W_OFF(1), 0));
}

/* WAKE(0) wakes nobody even with a sleeper (FUTEX_WAKE of 0 would wake one). */
TEST_F(sync, wake_zero_wakes_none)
{
	ASSERT_EQ(0, task_start(&self->t[0], sleeper, &self->c[0]));
	ASSERT_EQ(0, wait_count(&self->sh->ready, 1, 10000));
	ASSERT_EQ(0, wait_asleep(atomic_load(&self->sh->tid[0])));
	EXPECT_EQ(0, shmpool_wake(self->p, W_OFF(1), 0));
	sleep_ms(100);
	EXPECT_EQ(0U, atomic_load(&self->sh->woke));
	EXPECT_EQ(1, shmpool_wake(self->p, W_OFF(1), 1));
	EXPECT_EQ(0, task_join(&self->t[0]));
}

/* ---- doorbells: values and deadlines --------------------------------------------- */

TEST_F(sync, wait_value_differs)
{
	struct timespec t0 = now(CLOCK_MONOTONIC), far = ts_add_ms(t0, 60000);

	atomic_store(&self->sh->w[2], 7);
	EXPECT_EQ(-EAGAIN, shmpool_wait(self->p, W_OFF(2), 6, NULL, 0));
	EXPECT_EQ(-EAGAIN, shmpool_wait(self->p, W_OFF(2), 6, &far, 0));
	EXPECT_GT(1000, ts_ms(now(CLOCK_MONOTONIC), t0));
}

static void expect_timeout(struct __test_metadata *_metadata,
			   struct shmpool *p, clockid_t clk, unsigned int flags)
{
	struct timespec t0 = now(clk), dl = ts_add_ms(t0, 200), t1;

	EXPECT_EQ(-ETIMEDOUT, shmpool_wait(p, W_OFF(3), 0, &dl, flags));
	t1 = now(clk);
	EXPECT_FALSE(ts_before(t1, dl)) TH_LOG("returned %ld ms before the deadline",
					       ts_ms(dl, t1));
	EXPECT_GT(2000, ts_ms(t1, dl));
}

TEST_F(sync, wait_timeout_monotonic)
{
	expect_timeout(_metadata, self->p, CLOCK_MONOTONIC, 0);
}

TEST_F(sync, wait_timeout_realtime)
{
	expect_timeout(_metadata, self->p, CLOCK_REALTIME, SHMPOOL_WAIT_REALTIME);
}

TEST_F(sync, wait_past_deadline)
{
	struct timespec t0 = now(CLOCK_MONOTONIC), past = ts_add_ms(t0, -1000);
	struct timespec zero = { 0, 0 };

	EXPECT_EQ(-ETIMEDOUT, shmpool_wait(self->p, W_OFF(3), 0, &past, 0));
	EXPECT_EQ(-ETIMEDOUT, shmpool_wait(self->p, W_OFF(3), 0, &zero, 0));
	EXPECT_EQ(-ETIMEDOUT, shmpool_wait(self->p, W_OFF(3), 0, &zero,
					   SHMPOOL_WAIT_REALTIME));
	EXPECT_GT(1000, ts_ms(now(CLOCK_MONOTONIC), t0));
}

/* A deadline centuries away is a deadline, not an overflow into the past. */
TEST_F(sync, wait_far_deadline)
{
	self->c[0].flag = 1;
	ASSERT_EQ(0, task_start(&self->t[0], sleeper, &self->c[0]));
	ASSERT_EQ(0, wait_count(&self->sh->ready, 1, 10000));
	ASSERT_EQ(0, wait_asleep(atomic_load(&self->sh->tid[0])));
	EXPECT_EQ(0U, atomic_load(&self->sh->woke));
	EXPECT_EQ(1, shmpool_wake(self->p, W_OFF(1), 1));
	EXPECT_EQ(0, task_join(&self->t[0]));
	EXPECT_EQ(0, atomic_load(&self->sh->result[0]));
}

/* Sleep on w[1] == 0 until a CLOCK_REALTIME deadline half an hour away. */
static int realtime_sleeper(void *arg)
{
	struct ctx *c = arg;
	struct timespec dl = ts_add_ms(now(CLOCK_REALTIME), 1800 * 1000L);
	int ret;

	atomic_store(&c->sh->tid[c->idx], sys_gettid());
	atomic_fetch_add(&c->sh->ready, 1);
	ret = shmpool_wait(c->p, W_OFF(1), 0, &dl, SHMPOOL_WAIT_REALTIME);
	atomic_store(&c->sh->result[c->idx], ret);
	atomic_fetch_add(&c->sh->woke, 1);
	return 0;
}

/*
 * A CLOCK_REALTIME deadline is on the clock as it is set, as for futexes
 * and clock_nanosleep(TIMER_ABSTIME): a sleeper whose deadline the clock
 * jumps past (settimeofday, NTP step) times out then, not half an hour
 * later. Sets the system clock, so only in the test VM; the sleep-until
 * after the jump is a hang guard, not a timing assertion.
 */
TEST_F_TIMEOUT(sync, wait_realtime_clock_jumps_past_deadline, 120)
{
	struct timespec t;
	int ret;

	if (!in_vm_lane())
		SKIP(return, "sets the system clock: only in the test VM");
	ASSERT_EQ(0, task_start(&self->t[0], realtime_sleeper, &self->c[0]));
	ASSERT_EQ(0, wait_count(&self->sh->ready, 1, 10000));
	ASSERT_EQ(0, wait_asleep(atomic_load(&self->sh->tid[0])));
	t = now(CLOCK_REALTIME);
	t.tv_sec += 3600;
	ret = clock_settime(CLOCK_REALTIME, &t) ? -errno : 0;
	if (!ret) {
		ret = wait_count(&self->sh->woke, 1, (long)(30000 * scale()));
		t = now(CLOCK_REALTIME);
		t.tv_sec -= 3600;
		EXPECT_EQ(0, clock_settime(CLOCK_REALTIME, &t));
		EXPECT_EQ(0, ret) TH_LOG("asleep 30 s after the clock passed its deadline");
	}
	if (!atomic_load(&self->sh->woke)) {
		atomic_store(&self->sh->w[1], 1);
		shmpool_wake(self->p, W_OFF(1), 1);
	}
	EXPECT_EQ(0, task_join(&self->t[0]));
	if (ret == -EPERM)
		SKIP(return, "no CAP_SYS_TIME");
	EXPECT_EQ(-ETIMEDOUT, atomic_load(&self->sh->result[0]));
}

/* ---- doorbells: signals -------------------------------------------------------- */

static _Atomic uint32_t *hits_ptr;

static void count_hit(int sig)
{
	(void)sig;
	atomic_fetch_add(hits_ptr, 1);
}

/* Sleep on w[4] == 0 with SIGUSR1 handled, SA_RESTART if c->flag & 1, deadline if & 2. */
static int signalled_sleeper(void *arg)
{
	struct ctx *c = arg;
	struct sigaction sa = { .sa_handler = count_hit };
	struct timespec dl, *dlp = NULL;
	int ret;

	hits_ptr = &c->sh->hits;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = (c->flag & 1) ? SA_RESTART : 0;
	if (sigaction(SIGUSR1, &sa, NULL))
		return 10;
	if (c->flag & 2) {
		dl = ts_add_ms(now(CLOCK_MONOTONIC), 30000);
		dlp = &dl;
	}
	atomic_store(&c->sh->tid[c->idx], sys_gettid());
	atomic_store(&c->sh->tgid[c->idx], getpid());
	atomic_fetch_add(&c->sh->ready, 1);
	ret = shmpool_wait(c->p, W_OFF(4), 0, dlp, 0);
	atomic_store(&c->sh->result[c->idx], ret);
	atomic_fetch_add(&c->sh->woke, 1);
	return 0;
}

static void signal_case(struct __test_metadata *_metadata,
			FIXTURE_DATA(sync) *self, bool restart, bool timed)
{
	struct shared *sh = self->sh;
	pid_t tid;

#ifdef UNDER_TSAN
	/* TSan runs a handler only once the interrupted syscall returns */
	if (restart)
		SKIP(return, "ThreadSanitizer defers the handler of a restarted call");
#endif
	self->c[0].flag = (restart ? 1 : 0) | (timed ? 2 : 0);
	ASSERT_EQ(0, task_start(&self->t[0], signalled_sleeper, &self->c[0]));
	ASSERT_EQ(0, wait_count(&sh->ready, 1, 10000));
	tid = atomic_load(&sh->tid[0]);
	ASSERT_EQ(0, wait_asleep(tid));
	ASSERT_EQ(0, syscall(SYS_tgkill, atomic_load(&sh->tgid[0]), tid, SIGUSR1));
	ASSERT_EQ(0, wait_count(&sh->hits, 1, 10000));
	if (restart) {
		/* the handler ran and the wait went on */
		ASSERT_EQ(0, wait_asleep(tid));
		EXPECT_EQ(0U, atomic_load(&sh->woke));
		atomic_store(&sh->w[4], 1);
		EXPECT_EQ(1, shmpool_wake(self->p, W_OFF(4), 1));
		EXPECT_EQ(0, task_join(&self->t[0]));
		EXPECT_EQ(0, atomic_load(&sh->result[0]));
	} else {
		EXPECT_EQ(0, task_join(&self->t[0]));
		EXPECT_EQ(-EINTR, atomic_load(&sh->result[0]));
	}
	EXPECT_EQ(1U, atomic_load(&sh->hits));
}

TEST_F(sync, signal_sa_restart)
{
	signal_case(_metadata, self, true, false);
}

TEST_F(sync, signal_sa_restart_deadline)
{
	signal_case(_metadata, self, true, true);
}

TEST_F(sync, signal_eintr)
{
	signal_case(_metadata, self, false, false);
}

TEST_F(sync, signal_eintr_deadline)
{
	signal_case(_metadata, self, false, true);
}

/* ---- doorbells: several words ------------------------------------------------- */

/* waitv on w[5] of our pool and w[6] of c->flag's pool (sh->... of pool 2) */
struct waitv_ctx {
	struct shmpool_wait_entry e[2];
	struct shared *sh;
};

static int waitv_sleeper(void *arg)
{
	struct waitv_ctx *c = arg;
	int ret;

	atomic_store(&c->sh->tid[0], sys_gettid());
	atomic_fetch_add(&c->sh->ready, 1);
	ret = shmpool_waitv(c->e, 2, NULL, 0);
	atomic_store(&c->sh->result[0], ret);
	return 0;
}

static void waitv_case(struct __test_metadata *_metadata,
		       FIXTURE_DATA(sync) *self, unsigned int backend,
		       int which)
{
	struct waitv_ctx wc = { .sh = self->sh };
	struct shmpool *q;
	struct task t;
	int ret;

	ASSERT_EQ(0, shmpool_create_anon(page_size(), backend, &q));
	wc.e[0] = (struct shmpool_wait_entry) { self->p, W_OFF(5), 0, 0 };
	wc.e[1] = (struct shmpool_wait_entry) { q, 8, 0, 0 };

	ret = shmpool_waitv(wc.e, 2, &(struct timespec) { 0, 0 }, 0);
	if (ret == -ENOSYS) {
		shmpool_close(q);
		SKIP(return, "no futex_waitv() in this kernel");
	}
	EXPECT_EQ(-ETIMEDOUT, ret);

	ASSERT_EQ(0, task_start(&t, waitv_sleeper, &wc));
	ASSERT_EQ(0, wait_count(&self->sh->ready, 1, 10000));
	ASSERT_EQ(0, wait_asleep(atomic_load(&self->sh->tid[0])));
	if (which == 0) {
		atomic_store(&self->sh->w[5], 1);
		EXPECT_EQ(1, shmpool_wake(self->p, W_OFF(5), 1));
	} else {
		atomic_store((_Atomic uint32_t *)((char *)shmpool_base(q) + 8), 1);
		EXPECT_EQ(1, shmpool_wake(q, 8, 1));
	}
	EXPECT_EQ(0, task_join(&t));
	EXPECT_EQ(which, atomic_load(&self->sh->result[0]));
	shmpool_close(q);
}

TEST_F(sync, waitv_two_pools_first)
{
	waitv_case(_metadata, self, variant->backend, 0);
}

TEST_F(sync, waitv_two_pools_second)
{
	waitv_case(_metadata, self, variant->backend, 1);
}

TEST_F(sync, waitv_value_differs)
{
	struct shmpool_wait_entry e[2] = {
		{ self->p, W_OFF(5), 0, 0 },
		{ self->p, W_OFF(6), 1, 0 },	/* the word is 0 */
	};
	int ret = shmpool_waitv(e, 2, NULL, 0);

	if (ret == -ENOSYS)
		SKIP(return, "no futex_waitv() in this kernel");
	EXPECT_EQ(-EAGAIN, ret);
}

TEST_F(sync, waitv_timeout)
{
	struct shmpool_wait_entry e[2] = {
		{ self->p, W_OFF(5), 0, 0 },
		{ self->p, W_OFF(6), 0, 0 },
	};
	struct timespec dl = ts_add_ms(now(CLOCK_MONOTONIC), 200);
	int ret = shmpool_waitv(e, 2, &dl, 0);

	if (ret == -ENOSYS)
		SKIP(return, "no futex_waitv() in this kernel");
	EXPECT_EQ(-ETIMEDOUT, ret);
	EXPECT_FALSE(ts_before(now(CLOCK_MONOTONIC), dl));
}

/* ---- doorbells: rejected input, one test each ------------------------------------ */

TEST_F(sync, wait_misaligned)
{
	EXPECT_EQ(-EINVAL, shmpool_wait(self->p, 2, 0, NULL, 0));
	EXPECT_EQ(-EINVAL, shmpool_wait(self->p, 1, 0, NULL, 0));
}

TEST_F(sync, wake_misaligned)
{
	EXPECT_EQ(-EINVAL, shmpool_wake(self->p, 2, 1));
}

TEST_F(sync, wait_out_of_range)
{
	uint64_t size = shmpool_size(self->p);

	EXPECT_EQ(-EINVAL, shmpool_wait(self->p, size, 0, NULL, 0));
	EXPECT_EQ(-EINVAL, shmpool_wait(self->p, size + 4, 0, NULL, 0));
	/* offset + 4 would wrap around */
	EXPECT_EQ(-EINVAL, shmpool_wait(self->p, UINT64_MAX - 3, 0, NULL, 0));
	/* the last word is fine */
	EXPECT_EQ(-EAGAIN, shmpool_wait(self->p, size - 4, 1, NULL, 0));
}

TEST_F(sync, wake_out_of_range)
{
	uint64_t size = shmpool_size(self->p);

	EXPECT_EQ(-EINVAL, shmpool_wake(self->p, size, 1));
	EXPECT_EQ(-EINVAL, shmpool_wake(self->p, UINT64_MAX - 3, 1));
	EXPECT_EQ(0, shmpool_wake(self->p, size - 4, 1));
}

TEST_F(sync, wait_null_pool)
{
	EXPECT_EQ(-EINVAL, shmpool_wait(NULL, 0, 0, NULL, 0));
}

TEST_F(sync, wake_null_pool)
{
	EXPECT_EQ(-EINVAL, shmpool_wake(NULL, 0, 1));
}

TEST_F(sync, wait_unknown_flags)
{
	struct timespec dl = ts_add_ms(now(CLOCK_MONOTONIC), 1000);

	EXPECT_EQ(-EINVAL, shmpool_wait(self->p, 0, 0, &dl, 1U << 7));
	/* the library derives DEADLINE from the pointer: not a caller's flag */
	EXPECT_EQ(-EINVAL, shmpool_wait(self->p, 0, 0, &dl,
					SHMPOOL_WAIT_DEADLINE));
}

TEST_F(sync, wait_realtime_without_deadline)
{
	EXPECT_EQ(-EINVAL, shmpool_wait(self->p, 0, 0, NULL,
					SHMPOOL_WAIT_REALTIME));
}

TEST_F(sync, wait_bad_nsec)
{
	struct timespec dl = { 1, 1000000000L };

	EXPECT_EQ(-EINVAL, shmpool_wait(self->p, 0, 0, &dl, 0));
	dl.tv_nsec = -1;
	EXPECT_EQ(-EINVAL, shmpool_wait(self->p, 0, 0, &dl, 0));
}

TEST_F(sync, wait_negative_sec)
{
	struct timespec dl = { -1, 0 };

	EXPECT_EQ(-EINVAL, shmpool_wait(self->p, 0, 0, &dl, 0));
}

/* Read-only handles may wait, but not wake. */
static struct shmpool *open_rdonly(struct __test_metadata *_metadata,
				   FIXTURE_DATA(sync) *self,
				   unsigned int backend, struct shmpool **rw)
{
	struct shmpool *ro = NULL;

	EXPECT_EQ(0, shmpool_create(self->name, page_size(), 0600,
				    backend | SHMPOOL_EXCL, rw));
	EXPECT_EQ(0, shmpool_open(self->name, backend | SHMPOOL_RDONLY, &ro));
	return ro;
}

TEST_F(sync, wake_rdonly)
{
	struct shmpool *rw = NULL, *ro;

	ro = open_rdonly(_metadata, self, variant->backend, &rw);
	ASSERT_NE(NULL, ro);
	EXPECT_EQ(-EPERM, shmpool_wake(ro, 0, 1));
	EXPECT_EQ(0, shmpool_wake(rw, 0, 1));
	shmpool_close(ro);
	shmpool_close(rw);
}

TEST_F(sync, wait_rdonly)
{
	struct shmpool *rw = NULL, *ro;
	struct timespec dl;

	ro = open_rdonly(_metadata, self, variant->backend, &rw);
	ASSERT_NE(NULL, ro);
	*(volatile uint32_t *)shmpool_base(rw) = 5;
	EXPECT_EQ(-EAGAIN, shmpool_wait(ro, 0, 4, NULL, 0));
	dl = ts_add_ms(now(CLOCK_MONOTONIC), 50);
	EXPECT_EQ(-ETIMEDOUT, shmpool_wait(ro, 0, 5, &dl, 0));
	shmpool_close(ro);
	shmpool_close(rw);
}

TEST_F(sync, waitv_too_many)
{
	struct shmpool_wait_entry e[SHMPOOL_WAITV_MAX + 1];
	int i;

	for (i = 0; i <= SHMPOOL_WAITV_MAX; i++)
		e[i] = (struct shmpool_wait_entry) { self->p, W_OFF(0), 1, 0 };
	EXPECT_EQ(-EINVAL, shmpool_waitv(e, SHMPOOL_WAITV_MAX + 1, NULL, 0));
}

TEST_F(sync, waitv_zero_entries)
{
	struct shmpool_wait_entry e = { self->p, 0, 0, 0 };

	EXPECT_EQ(-EINVAL, shmpool_waitv(&e, 0, NULL, 0));
}

TEST_F(sync, waitv_null)
{
	EXPECT_EQ(-EINVAL, shmpool_waitv(NULL, 1, NULL, 0));
}

TEST_F(sync, waitv_null_pool)
{
	struct shmpool_wait_entry e[2] = {
		{ self->p, 0, 0, 0 },
		{ NULL, 0, 0, 0 },
	};

	EXPECT_EQ(-EINVAL, shmpool_waitv(e, 2, NULL, 0));
}

TEST_F(sync, waitv_misaligned)
{
	struct shmpool_wait_entry e[2] = {
		{ self->p, 0, 0, 0 },
		{ self->p, 6, 0, 0 },
	};

	EXPECT_EQ(-EINVAL, shmpool_waitv(e, 2, NULL, 0));
}

TEST_F(sync, waitv_out_of_range)
{
	struct shmpool_wait_entry e[2] = {
		{ self->p, 0, 0, 0 },
		{ self->p, shmpool_size(self->p), 0, 0 },
	};

	EXPECT_EQ(-EINVAL, shmpool_waitv(e, 2, NULL, 0));
}

TEST_F(sync, waitv_entry_flags)
{
	struct shmpool_wait_entry e = { self->p, 0, 0, 1 };

	EXPECT_EQ(-EINVAL, shmpool_waitv(&e, 1, NULL, 0));
}

/* One call cannot sleep on a futex and a doorbell at once. */
TEST_F(sync, waitv_mixed_backends)
{
	unsigned int other = variant->backend == SHMPOOL_BACKEND_MEMFD ?
			     SHMPOOL_BACKEND_DEVICE : SHMPOOL_BACKEND_MEMFD;
	struct shmpool_wait_entry e[2];
	struct shmpool *q;

	if (other == SHMPOOL_BACKEND_DEVICE && !device_has_doorbells())
		SKIP(return, "needs the device backend too");
	ASSERT_EQ(0, shmpool_create_anon(page_size(), other, &q));
	e[0] = (struct shmpool_wait_entry) { self->p, 0, 0, 0 };
	e[1] = (struct shmpool_wait_entry) { q, 0, 0, 0 };
	EXPECT_EQ(-EINVAL, shmpool_waitv(e, 2, NULL, 0));
	shmpool_close(q);
}

/* ---- doorbells: eventfd notification ------------------------------------------------ */

TEST_F(sync, notify)
{
	struct shmpool_pool_info info;
	uint64_t count = 0;
	int efd;

	efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	ASSERT_LE(0, efd);
	ASSERT_EQ(0, shmpool_info(self->p, &info));
	if (variant->backend == SHMPOOL_BACKEND_MEMFD) {
		EXPECT_NE(0U, info.lacks & SHMPOOL_CAP_NOTIFY);
		EXPECT_EQ(-EOPNOTSUPP, shmpool_notify_add(self->p, 0, efd));
		EXPECT_EQ(-EOPNOTSUPP, shmpool_notify_del(self->p, 0, efd));
		close(efd);
		return;
	}
	if (info.lacks & SHMPOOL_CAP_NOTIFY) {
		close(efd);
		SKIP(return, "module without NOTIFY");
	}
	EXPECT_EQ(0, shmpool_notify_add(self->p, W_OFF(7), efd));
	EXPECT_EQ(-EEXIST, shmpool_notify_add(self->p, W_OFF(7), efd));
	/* nobody sleeps, yet the eventfd counts the wake */
	EXPECT_EQ(0, shmpool_wake(self->p, W_OFF(7), 1));
	EXPECT_EQ(0, shmpool_wake(self->p, W_OFF(8), 1));	/* another word */
	EXPECT_EQ((ssize_t)sizeof(count), read(efd, &count, sizeof(count)));
	EXPECT_EQ(1U, count);
	EXPECT_EQ(0, shmpool_notify_del(self->p, W_OFF(7), efd));
	EXPECT_EQ(-ENOENT, shmpool_notify_del(self->p, W_OFF(7), efd));
	EXPECT_EQ(0, shmpool_wake(self->p, W_OFF(7), 1));
	EXPECT_EQ(-1, read(efd, &count, sizeof(count)));
	EXPECT_EQ(EAGAIN, errno);
	close(efd);
}

TEST_F(sync, notify_bad_offset)
{
	EXPECT_EQ(-EINVAL, shmpool_notify_add(self->p, 2, 0));
	EXPECT_EQ(-EINVAL, shmpool_notify_add(self->p, shmpool_size(self->p), 0));
	EXPECT_EQ(-EINVAL, shmpool_notify_add(NULL, 0, 0));
}

/* ==== synchronisation objects ========================================================== */

/* the system call a doorbell wake makes on this backend */
static long wake_syscall(unsigned int backend)
{
	return backend == SHMPOOL_BACKEND_DEVICE ? SYS_ioctl : SYS_futex;
}

static void signal_1000(void *arg)
{
	struct ctx *c = arg;
	int i;

	for (i = 0; i < 1000; i++)
		if (shmpool_event_signal(c->p, &c->sh->ev[0]) != 0)
			_exit(3);
}

TEST_F(sync, event_signal_no_sleeper_no_syscall)
{
	long first;

	ASSERT_EQ(0, shmpool_event_init(self->p, &self->sh->ev[0]));
	EXPECT_EQ(0, count_syscalls(signal_1000, &self->c[0], &first))
		TH_LOG("first syscall: %ld", first);
}

static void prepare_and_signal(void *arg)
{
	struct ctx *c = arg;
	shmpool_event_prepare_wait(&c->sh->ev[0]);
	if (shmpool_event_signal(c->p, &c->sh->ev[0]) != 0)
		_exit(3);	/* nobody sleeps: 0 woken */
	signal_1000(c);		/* the flag is gone again */
}

/* The control: with a sleep announced, a signal makes exactly one wake call. */
TEST_F(sync, event_signal_announced_one_syscall)
{
	long first;

	ASSERT_EQ(0, shmpool_event_init(self->p, &self->sh->ev[0]));
	EXPECT_EQ(1, count_syscalls(prepare_and_signal, &self->c[0], &first));
	EXPECT_EQ(wake_syscall(variant->backend), first);
}

static void lock_unlock_1000(void *arg)
{
	struct ctx *c = arg;
	int i;

	for (i = 0; i < 1000; i++)
		if (shmpool_mutex_lock(c->p, &c->sh->mtx) ||
		    shmpool_mutex_trylock(c->p, &c->sh->mtx) != -EBUSY ||
		    shmpool_mutex_unlock(c->p, &c->sh->mtx))
			_exit(3);
}

TEST_F(sync, mutex_uncontended_no_syscall)
{
	long first;

	ASSERT_EQ(0, shmpool_mutex_init(self->p, &self->sh->mtx));
	EXPECT_EQ(0, count_syscalls(lock_unlock_1000, &self->c[0], &first))
		TH_LOG("first syscall: %ld", first);
}

static void post_take_1000(void *arg)
{
	struct ctx *c = arg;
	int i;

	for (i = 0; i < 1000; i++)
		if (shmpool_sem_post(c->p, &c->sh->sem) ||
		    shmpool_sem_wait(c->p, &c->sh->sem) ||
		    shmpool_cond_signal(c->p, &c->sh->cnd[0]) ||
		    shmpool_cond_broadcast(c->p, &c->sh->cnd[0]))
			_exit(3);
}

TEST_F(sync, sem_cond_no_waiter_no_syscall)
{
	long first;

	ASSERT_EQ(0, shmpool_sem_init(self->p, &self->sh->sem, 0));
	ASSERT_EQ(0, shmpool_cond_init(self->p, &self->sh->cnd[0]));
	EXPECT_EQ(0, count_syscalls(post_take_1000, &self->c[0], &first))
		TH_LOG("first syscall: %ld", first);
}

/* ---- event count ------------------------------------------------------------------------ */

/*
 * Ping-pong through two events: worker k waits on ev[k] for w[0] to reach
 * its turn, then bumps w[0] and signals ev[1 - k].
 */
#define EVENT_ROUNDS	20000
#define EVENT_MIN_ROUNDS	2000	/* when it runs out of time */
#define EVENT_BUDGET_MS	30000

static int event_worker(void *arg)
{
	struct ctx *c = arg;
	struct shmpool_event *mine = &c->sh->ev[c->idx];
	struct shmpool_event *other = &c->sh->ev[1 - c->idx];
	struct timespec dl, *dlp = NULL;
	uint32_t i, key, v;
	int ret;

	for (i = (uint32_t)c->idx; i < 2 * EVENT_ROUNDS; i += 2) {
		while ((v = atomic_load(&c->sh->w[0])) != i) {
			if (v == STOP)
				return 2;
			key = shmpool_event_prepare_wait(mine);
			v = atomic_load(&c->sh->w[0]);
			if (v == i || v == STOP)
				continue;
			if (c->flag) {	/* the timed path */
				dl = ts_add_ms(now(CLOCK_MONOTONIC), 60000);
				dlp = &dl;
			}
			ret = shmpool_event_timedwait(c->p, mine, key, dlp);
			if (ret)
				return 3;
		}
		atomic_store(&c->sh->w[0], i + 1);
		atomic_fetch_add(&c->sh->progress, 1);
		if (shmpool_event_signal(c->p, other) < 0)
			return 4;
	}
	atomic_fetch_add(&c->sh->done, 1);
	return 0;
}

static void event_unstick(void *arg)
{
	struct ctx *c = arg;

	atomic_store(&c->sh->w[0], STOP);
	shmpool_event_wake(c->p, &c->sh->ev[0]);
	shmpool_event_wake(c->p, &c->sh->ev[1]);
}

/* EVENT_ROUNDS, or at least EVENT_MIN_ROUNDS in EVENT_BUDGET_MS */
static void event_pingpong(struct __test_metadata *_metadata,
			   FIXTURE_DATA(sync) *self, int timed)
{
	int i, ret;

	for (i = 0; i < 2; i++) {
		ASSERT_EQ(0, shmpool_event_init(self->p, &self->sh->ev[i]));
		self->c[i].flag = timed;
	}
	for (i = 0; i < 2; i++)
		ASSERT_EQ(0, task_start(&self->t[i], event_worker, &self->c[i]));
	ret = monitor(_metadata, self->sh, 2, event_unstick, &self->c[0],
		      hunt_budget_ms(EVENT_BUDGET_MS));
	EXPECT_LE(0, ret) TH_LOG("lost wake-up: stalled at hand-off %u",
				 atomic_load(&self->sh->progress));
	for (i = 0; i < 2; i++)
		EXPECT_EQ(ret ? 2 : 0, task_join(&self->t[i]));
	if (ret > 0)
		EXPECT_LE(2U * EVENT_MIN_ROUNDS, atomic_load(&self->sh->progress));
}

TEST_F_TIMEOUT(sync, event_pingpong, 60)
{
	event_pingpong(_metadata, self, 0);
}

TEST_F_TIMEOUT(sync, event_pingpong_timed, 60)
{
	event_pingpong(_metadata, self, 1);
}

TEST_F(sync, event_timedwait_timeout)
{
	struct shmpool_event *ev = &self->sh->ev[0];
	struct timespec dl;
	uint32_t key;

	ASSERT_EQ(0, shmpool_event_init(self->p, ev));
	key = shmpool_event_prepare_wait(ev);
	dl = ts_add_ms(now(CLOCK_MONOTONIC), 100);
	EXPECT_EQ(-ETIMEDOUT, shmpool_event_timedwait(self->p, ev, key, &dl));
	EXPECT_FALSE(ts_before(now(CLOCK_MONOTONIC), dl));
	/* a signal after prepare_wait makes the key stale: no sleep at all */
	EXPECT_EQ(0, shmpool_event_signal(self->p, ev));
	EXPECT_EQ(0, shmpool_event_wait(self->p, ev, key));
}

TEST_F(sync, event_bad_key)
{
	struct shmpool_event *ev = &self->sh->ev[0];

	ASSERT_EQ(0, shmpool_event_init(self->p, ev));
	/* keys always carry NEED_WAKEUP */
	EXPECT_EQ(-EINVAL, shmpool_event_wait(self->p, ev, 0));
}

TEST_F(sync, event_outside_pool)
{
	struct shmpool_event local;

	EXPECT_EQ(-EINVAL, shmpool_event_init(self->p, &local));
	EXPECT_EQ(-EINVAL, shmpool_event_wake(self->p, &local));
}

/* ---- mutex -------------------------------------------------------------------------------- */

#define MUTEX_WORKERS	4
#define MUTEX_INCS	20000

/* the mutex under test: mtx, or odd.m if the test set c->flag */
static struct shmpool_mutex *test_mutex(struct ctx *c)
{
	return c->flag ? &c->sh->odd.m : &c->sh->mtx;
}

/*
 * Worker 0 holds the lock until every other worker has come to take it and
 * one of them sleeps (WAITERS set), so that the sleeping paths run however
 * the workers happen to be scheduled (bounded: STALL_MS / 2).
 */
static void hold_for_sleepers(struct ctx *c, struct shmpool_mutex *m)
{
	struct timespec t0 = now(CLOCK_MONOTONIC);

	while ((atomic_load(&c->sh->ready) < MUTEX_WORKERS ||
		!(atomic_load(&m->word) & SHMPOOL_MUTEX_WAITERS)) &&
	       ts_ms(now(CLOCK_MONOTONIC), t0) < STALL_MS / 2)
		sleep_ms(1);
}

static int mutex_worker(void *arg)
{
	struct ctx *c = arg;
	struct shmpool_mutex *m = test_mutex(c);
	volatile uint64_t *counter = &c->sh->counter;
	int i;

	/* worker 0 first, so that it cannot be one of the sleepers it awaits */
	if (c->idx) {
		struct timespec t0 = now(CLOCK_MONOTONIC);

		while (!atomic_load(&c->sh->go) &&
		       ts_ms(now(CLOCK_MONOTONIC), t0) < STALL_MS / 2)
			sleep_ms(1);
	}
	atomic_fetch_add(&c->sh->ready, 1);
	for (i = 0; i < MUTEX_INCS; i++) {
		if (shmpool_mutex_lock(c->p, m))
			return 2;
		if (!i && !c->idx) {
			atomic_store(&c->sh->go, 1);
			hold_for_sleepers(c, m);
		}
		/* a read-modify-write that only the lock makes atomic */
		*counter = *counter + 1;
		/* now and then hold on long enough for the others to sleep */
		if (!(i % 16))
			sched_yield();
		if (atomic_load(&m->word) & SHMPOOL_MUTEX_WAITERS)
			atomic_fetch_add(&c->sh->woke, 1);
		if (shmpool_mutex_unlock(c->p, m))
			return 3;
		atomic_fetch_add(&c->sh->progress, 1);
	}
	atomic_fetch_add(&c->sh->done, 1);
	return 0;
}

static void no_unstick(void *arg)
{
	(void)arg;
}

static void mutex_counter(struct __test_metadata *_metadata,
			  FIXTURE_DATA(sync) *self, int odd)
{
	struct shmpool_mutex *m;
	int i, stalled;

	for (i = 0; i < MUTEX_WORKERS; i++)
		self->c[i].flag = odd;
	m = test_mutex(&self->c[0]);
	ASSERT_EQ(0, shmpool_mutex_init(self->p, m));
	for (i = 0; i < MUTEX_WORKERS; i++)
		ASSERT_EQ(0, task_start(&self->t[i], mutex_worker, &self->c[i]));
	stalled = monitor(_metadata, self->sh, MUTEX_WORKERS, no_unstick, NULL, 0);
	ASSERT_EQ(0, stalled) TH_LOG("stalled after %u increments",
				     atomic_load(&self->sh->progress));
	for (i = 0; i < MUTEX_WORKERS; i++)
		EXPECT_EQ(0, task_join(&self->t[i]));
	EXPECT_EQ((uint64_t)MUTEX_WORKERS * MUTEX_INCS, self->sh->counter);
	EXPECT_EQ(0U, atomic_load(&m->word));
	EXPECT_EQ(0U, atomic_load(&m->tid));
	/* the sleeping paths ran: some unlocks had to wake somebody */
	EXPECT_LT(0U, atomic_load(&self->sh->woke));
	TH_LOG("%u of %d unlocks found sleepers", atomic_load(&self->sh->woke),
	       MUTEX_WORKERS * MUTEX_INCS);
}

TEST_F_TIMEOUT(sync, mutex_counter, 60)
{
	mutex_counter(_metadata, self, 0);
}

/* The same at offset 4 mod 8, where lock and unlock take the 4-byte path. */
TEST_F_TIMEOUT(sync, mutex_counter_odd_offset, 60)
{
	mutex_counter(_metadata, self, 1);
}

/*
 * Uncontended, at both alignments: the word holds our attachment id and
 * @tid our thread while we hold it, both are 0 once we let go, relocking
 * is -EDEADLK and trylock -EBUSY. 0, or the number of the step that failed.
 * Run by a second thread too, whose thread id is not the process id (on
 * memfd the main thread's id is also the attachment id).
 */
struct owner_fields {
	struct shmpool *p;
	struct shmpool_mutex *m;
	int step;
};

static void *mutex_owner_fields(void *arg)
{
	struct owner_fields *f = arg;
	struct shmpool *p = f->p;
	struct shmpool_mutex *m = f->m;
	uint32_t id = (uint32_t)shmpool_attach_id(p), tid = (uint32_t)sys_gettid();

	f->step = 1;
	if (shmpool_mutex_lock(p, m) || atomic_load(&m->word) != id ||
	    atomic_load(&m->tid) != tid)
		return NULL;
	f->step = 2;
	if (shmpool_mutex_lock(p, m) != -EDEADLK ||
	    shmpool_mutex_trylock(p, m) != -EBUSY)
		return NULL;
	f->step = 3;
	if (shmpool_mutex_unlock(p, m) || atomic_load(&m->word) ||
	    atomic_load(&m->tid) || shmpool_mutex_unlock(p, m) != -EPERM)
		return NULL;
	f->step = 4;
	if (shmpool_mutex_trylock(p, m) || atomic_load(&m->word) != id ||
	    atomic_load(&m->tid) != tid)
		return NULL;
	f->step = 5;
	if (shmpool_mutex_unlock(p, m) || atomic_load(&m->word) ||
	    atomic_load(&m->tid))
		return NULL;
	f->step = 0;
	return NULL;
}

static void owner_fields_twice(struct __test_metadata *_metadata,
			       struct shmpool *p, struct shmpool_mutex *m)
{
	struct owner_fields f = { p, m, -1 };
	pthread_t th;

	ASSERT_EQ(0, shmpool_mutex_init(p, m));
	mutex_owner_fields(&f);
	EXPECT_EQ(0, f.step) TH_LOG("main thread");
	f.step = -1;
	ASSERT_EQ(0, pthread_create(&th, NULL, mutex_owner_fields, &f));
	ASSERT_EQ(0, pthread_join(th, NULL));
	EXPECT_EQ(0, f.step) TH_LOG("second thread");
}

TEST_F(sync, mutex_owner_fields_aligned)
{
	owner_fields_twice(_metadata, self->p, &self->sh->mtx);
}

TEST_F(sync, mutex_owner_fields_odd_offset)
{
	owner_fields_twice(_metadata, self->p, &self->sh->odd.m);
}

/*
 * A free word beside a stale thread id (a peer must clear it first, but a
 * hostile or broken one may not): the one-compare fast path fails, and
 * lock must still take the mutex, not spin, sleep or report it busy.
 */
TEST_F(sync, mutex_free_word_stale_tid)
{
	struct shmpool_mutex *m = &self->sh->mtx;
	struct timespec dl = ts_add_ms(now(CLOCK_MONOTONIC), 10000);

	ASSERT_EQ(0, shmpool_mutex_init(self->p, m));
	atomic_store(&m->tid, 12345);
	EXPECT_EQ(0, shmpool_mutex_timedlock(self->p, m, &dl));
	EXPECT_EQ((uint32_t)shmpool_attach_id(self->p), atomic_load(&m->word));
	EXPECT_EQ((uint32_t)sys_gettid(), atomic_load(&m->tid));
	EXPECT_EQ(0, shmpool_mutex_unlock(self->p, m));
	EXPECT_EQ(0U, atomic_load(&m->word));
	EXPECT_EQ(0U, atomic_load(&m->tid));
	atomic_store(&m->tid, 12345);
	EXPECT_EQ(0, shmpool_mutex_trylock(self->p, m));
	EXPECT_EQ(0, shmpool_mutex_unlock(self->p, m));
}

/* Hold mtx until sh->go, reporting the thread id. */
static int mutex_holder(void *arg)
{
	struct ctx *c = arg;
	int ret;

	if (shmpool_mutex_lock(c->p, &c->sh->mtx))
		return 2;
	atomic_store(&c->sh->tid[c->idx], sys_gettid());
	atomic_store(&c->sh->aid[c->idx], (uint32_t)shmpool_attach_id(c->p));
	atomic_fetch_add(&c->sh->ready, 1);
	while (!atomic_load(&c->sh->go))
		sleep_ms(1);
	ret = shmpool_mutex_unlock(c->p, &c->sh->mtx);
	return ret ? 3 : 0;
}

TEST_F(sync, mutex_trylock)
{
	struct shmpool_mutex *m = &self->sh->mtx;

	ASSERT_EQ(0, shmpool_mutex_init(self->p, m));
	EXPECT_EQ(0, shmpool_mutex_trylock(self->p, m));
	EXPECT_EQ(-EBUSY, shmpool_mutex_trylock(self->p, m));
	EXPECT_EQ(0, shmpool_mutex_unlock(self->p, m));

	ASSERT_EQ(0, task_start(&self->t[0], mutex_holder, &self->c[0]));
	ASSERT_EQ(0, wait_count(&self->sh->ready, 1, 10000));
	EXPECT_EQ(-EBUSY, shmpool_mutex_trylock(self->p, m));
	atomic_store(&self->sh->go, 1);
	EXPECT_EQ(0, task_join(&self->t[0]));
	EXPECT_EQ(0, shmpool_mutex_trylock(self->p, m));
	EXPECT_EQ(0, shmpool_mutex_unlock(self->p, m));
}

/*
 * The word holds the owner's attachment id, and WAITERS once somebody
 * sleeps; the tid field its thread.
 */
TEST_F(sync, mutex_timedlock_and_owner)
{
	struct shmpool_mutex *m = &self->sh->mtx;
	struct timespec dl;
	uint32_t word;

	ASSERT_EQ(0, shmpool_mutex_init(self->p, m));
	ASSERT_EQ(0, task_start(&self->t[0], mutex_holder, &self->c[0]));
	ASSERT_EQ(0, wait_count(&self->sh->ready, 1, 10000));
	word = atomic_load(&m->word);
	EXPECT_EQ(atomic_load(&self->sh->aid[0]), word);
	EXPECT_EQ((uint32_t)atomic_load(&self->sh->tid[0]), atomic_load(&m->tid));

	dl = ts_add_ms(now(CLOCK_MONOTONIC), 200);
	EXPECT_EQ(-ETIMEDOUT, shmpool_mutex_timedlock(self->p, m, &dl));
	EXPECT_FALSE(ts_before(now(CLOCK_MONOTONIC), dl));
	/* we slept on it, and left WAITERS behind for the owner's unlock */
	word = atomic_load(&m->word);
	EXPECT_EQ(atomic_load(&self->sh->aid[0]), word & SHMPOOL_MUTEX_OWNER_MASK);
	EXPECT_NE(0U, word & SHMPOOL_MUTEX_WAITERS);

	/* the holder's unlock must wake us, long before the deadline */
	dl = ts_add_ms(now(CLOCK_MONOTONIC), 20000);
	atomic_store(&self->sh->go, 1);
	EXPECT_EQ(0, shmpool_mutex_timedlock(self->p, m, &dl));
	EXPECT_LT(10000, ts_ms(dl, now(CLOCK_MONOTONIC)));
	EXPECT_EQ((uint32_t)shmpool_attach_id(self->p),
		  atomic_load(&m->word) & SHMPOOL_MUTEX_OWNER_MASK);
	EXPECT_EQ((uint32_t)sys_gettid(), atomic_load(&m->tid));
	EXPECT_EQ(0, shmpool_mutex_unlock(self->p, m));
	EXPECT_EQ(0, task_join(&self->t[0]));
}

/* ---- mutex: owner death ------------------------------------------------------------------- */

/* Lock mtx and end without unlocking it. */
static int mutex_abandoner(void *arg)
{
	struct ctx *c = arg;

	if (shmpool_mutex_lock(c->p, &c->sh->mtx))
		return 2;
	atomic_store(&c->sh->tid[c->idx], sys_gettid());
	atomic_store(&c->sh->aid[c->idx], (uint32_t)shmpool_attach_id(c->p));
	return 0;
}

/* An owner that ended holding the lock: the next locker takes it over. */
TEST_F(sync, mutex_owner_died)
{
	struct shmpool_mutex *m = &self->sh->mtx;
	struct timespec t0, dl;

	ASSERT_EQ(0, shmpool_mutex_init(self->p, m));
	ASSERT_EQ(0, task_start(&self->t[0], mutex_abandoner, &self->c[0]));
	ASSERT_EQ(0, task_join(&self->t[0]));
	EXPECT_EQ(atomic_load(&self->sh->aid[0]), atomic_load(&m->word));

	t0 = now(CLOCK_MONOTONIC);
	dl = ts_add_ms(t0, 20000);
	EXPECT_EQ(-EOWNERDEAD, shmpool_mutex_timedlock(self->p, m, &dl));
	EXPECT_GT(5000, ts_ms(now(CLOCK_MONOTONIC), t0));
	EXPECT_EQ((uint32_t)shmpool_attach_id(self->p) | SHMPOOL_MUTEX_OWNER_DIED,
		  atomic_load(&m->word) & ~SHMPOOL_MUTEX_WAITERS);
	EXPECT_EQ((uint32_t)sys_gettid(), atomic_load(&m->tid));
	/* held: ours, and unlocking clears the mark */
	EXPECT_EQ(-EDEADLK, shmpool_mutex_lock(self->p, m));
	EXPECT_EQ(-EBUSY, shmpool_mutex_trylock(self->p, m));
	EXPECT_EQ(0, shmpool_mutex_unlock(self->p, m));
	EXPECT_EQ(0U, atomic_load(&m->word));
	EXPECT_EQ(0, shmpool_mutex_lock(self->p, m));
	EXPECT_EQ(0, shmpool_mutex_unlock(self->p, m));
}

/* A live owner is waited for: a deadline shorter than its hold still times out. */
TEST_F(sync, mutex_live_owner_not_taken_over)
{
	struct shmpool_mutex *m = &self->sh->mtx;
	struct timespec dl;

	ASSERT_EQ(0, shmpool_mutex_init(self->p, m));
	ASSERT_EQ(0, task_start(&self->t[0], mutex_holder, &self->c[0]));
	ASSERT_EQ(0, wait_count(&self->sh->ready, 1, 10000));
	/* several owner checks pass while we wait */
	dl = ts_add_ms(now(CLOCK_MONOTONIC), 450);
	EXPECT_EQ(-ETIMEDOUT, shmpool_mutex_timedlock(self->p, m, &dl));
	EXPECT_EQ(atomic_load(&self->sh->aid[0]),
		  atomic_load(&m->word) & SHMPOOL_MUTEX_OWNER_MASK);
	atomic_store(&self->sh->go, 1);
	EXPECT_EQ(0, task_join(&self->t[0]));
}

#ifndef SHMPOOL_TEST_THREADS
/* Hold mtx until killed. */
static int mutex_hold_forever(void *arg)
{
	struct ctx *c = arg;

	if (shmpool_mutex_lock(c->p, &c->sh->mtx))
		return 2;
	atomic_fetch_add(&c->sh->ready, 1);
	for (;;)
		pause();
}

/* Lock mtx, count under it, unlock; 1 if the lock came with -EOWNERDEAD. */
static int mutex_counter_once(void *arg)
{
	struct ctx *c = arg;
	int ret;

	atomic_fetch_add(&c->sh->woke, 1);
	ret = shmpool_mutex_lock(c->p, &c->sh->mtx);
	if (ret && ret != -EOWNERDEAD)
		return 2;
	c->sh->counter++;
	if (shmpool_mutex_unlock(c->p, &c->sh->mtx))
		return 3;
	return ret ? 1 : 0;
}

/* Sleepers on a lock whose owner is killed: one takes it over, the other follows. */
TEST_F_TIMEOUT(sync, mutex_owner_killed_with_sleepers, 60)
{
	struct shmpool_mutex *m = &self->sh->mtx;
	int rc[2];

	ASSERT_EQ(0, shmpool_mutex_init(self->p, m));
	self->sh->counter = 0;
	ASSERT_EQ(0, task_start(&self->t[0], mutex_hold_forever, &self->c[0]));
	ASSERT_EQ(0, wait_count(&self->sh->ready, 1, 10000));
	ASSERT_EQ(0, task_start(&self->t[1], mutex_counter_once, &self->c[1]));
	ASSERT_EQ(0, task_start(&self->t[2], mutex_counter_once, &self->c[2]));
	ASSERT_EQ(0, wait_count(&self->sh->woke, 2, 10000));
	sleep_ms(300);		/* both asleep on the word */
	EXPECT_NE(0U, atomic_load(&m->word) & SHMPOOL_MUTEX_WAITERS);
	ASSERT_EQ(0, kill(self->t[0].pid, SIGKILL));
	EXPECT_EQ(128 + SIGKILL, task_join(&self->t[0]));
	rc[0] = task_join(&self->t[1]);
	rc[1] = task_join(&self->t[2]);
	EXPECT_EQ(1, rc[0] + rc[1]) TH_LOG("results %d %d", rc[0], rc[1]);
	EXPECT_GE(1, rc[0]);
	EXPECT_GE(1, rc[1]);
	EXPECT_EQ(2U, self->sh->counter);
	EXPECT_EQ(0U, atomic_load(&m->word));
}
#endif

/* Write a claim in this thread's name into @m, as a peer could. */
static void forge_own_claim(struct shmpool *p, struct shmpool_mutex *m,
			    uint32_t bits)
{
	atomic_store(&m->tid, (uint32_t)sys_gettid());
	atomic_store(&m->word, (uint32_t)shmpool_attach_id(p) | bits);
}

/*
 * A mutex whose word names this thread while the thread holds no mutex: a
 * thread of ours died holding it and the kernel gave its id to us, or a
 * peer wrote it. As with a robust pthread mutex whose owner died, lock,
 * timedlock and trylock take it over (-EOWNERDEAD), at both alignments;
 * unlock and a condition wait refuse it (-EPERM). (Before: -EDEADLK and
 * -EBUSY for as long as the thread lived, and unlock said 0.)
 */
TEST_F(sync, mutex_naming_this_thread_is_taken_over)
{
	struct shmpool_mutex *ms[] = { &self->sh->mtx, &self->sh->odd.m };
	struct timespec dl = ts_add_ms(now(CLOCK_MONOTONIC), 5000);
	uint32_t id = (uint32_t)shmpool_attach_id(self->p);
	unsigned int i;

	for (i = 0; i < 2; i++) {
		struct shmpool_mutex *m = ms[i];

		ASSERT_EQ(0, shmpool_mutex_init(self->p, m));
		forge_own_claim(self->p, m, 0);
		EXPECT_EQ(-EPERM, shmpool_mutex_unlock(self->p, m));
		EXPECT_EQ(-EPERM, shmpool_cond_timedwait(self->p, &self->sh->cnd[0],
							 m, &dl));
		EXPECT_EQ(-EOWNERDEAD, shmpool_mutex_lock(self->p, m));
		EXPECT_EQ(id | SHMPOOL_MUTEX_OWNER_DIED, atomic_load(&m->word));
		/* now really held */
		EXPECT_EQ(-EDEADLK, shmpool_mutex_lock(self->p, m));
		EXPECT_EQ(0, shmpool_mutex_unlock(self->p, m));
		EXPECT_EQ(0U, atomic_load(&m->word));

		forge_own_claim(self->p, m, SHMPOOL_MUTEX_WAITERS);
		EXPECT_EQ(-EOWNERDEAD, shmpool_mutex_trylock(self->p, m));
		EXPECT_EQ(-EBUSY, shmpool_mutex_trylock(self->p, m));
		EXPECT_EQ(0, shmpool_mutex_unlock(self->p, m));

		forge_own_claim(self->p, m, 0);
		EXPECT_EQ(-EOWNERDEAD, shmpool_mutex_timedlock(self->p, m, &dl));
		EXPECT_EQ(0, shmpool_mutex_unlock(self->p, m));
		EXPECT_EQ(-EPERM, shmpool_mutex_unlock(self->p, m));
		EXPECT_EQ(0U, atomic_load(&m->word));
		EXPECT_EQ(0, shmpool_mutex_lock(self->p, m));
		EXPECT_EQ(0, shmpool_mutex_unlock(self->p, m));
	}
}

/*
 * While the thread holds another mutex, a claim in its name cannot be told
 * from a relock: -EDEADLK and -EBUSY, as documented; once it holds none,
 * the claim is taken over.
 */
TEST_F(sync, mutex_naming_this_thread_while_holding_another_is_edeadlk)
{
	struct shmpool_mutex *m = &self->sh->mtx, *other = &self->sh->odd.m;

	ASSERT_EQ(0, shmpool_mutex_init(self->p, m));
	ASSERT_EQ(0, shmpool_mutex_init(self->p, other));
	ASSERT_EQ(0, shmpool_mutex_lock(self->p, other));
	forge_own_claim(self->p, m, 0);
	EXPECT_EQ(-EDEADLK, shmpool_mutex_lock(self->p, m));
	EXPECT_EQ(-EBUSY, shmpool_mutex_trylock(self->p, m));
	EXPECT_EQ(0, shmpool_mutex_unlock(self->p, other));
	EXPECT_EQ(-EOWNERDEAD, shmpool_mutex_lock(self->p, m));
	EXPECT_EQ(0, shmpool_mutex_unlock(self->p, m));
}

/* what the SIGALRM handler of the next test saw */
static struct shmpool *sig_pool;
static struct shmpool_mutex *sig_mutex;
static volatile sig_atomic_t sig_took, sig_busy, sig_other, sig_last;

static void trylock_in_handler(int sig)
{
	int ret = shmpool_mutex_trylock(sig_pool, sig_mutex);

	(void)sig;
	if (!ret)
		ret = shmpool_mutex_unlock(sig_pool, sig_mutex);
	if (!ret)
		sig_took++;
	else if (ret == -EBUSY)
		sig_busy++;
	else {
		sig_other++;
		sig_last = ret;
	}
}

/*
 * A signal handler that interrupts this thread's lock or unlock of a mutex
 * and tries the mutex itself sees it held while the interrupted call holds
 * it or is taking it (-EBUSY), or free: never a claim to take over from a
 * dead owner (-EOWNERDEAD would let the handler and the interrupted code
 * into the critical section at once). Signals every 20 us over lock/unlock
 * pairs.
 */
TEST_F(sync, mutex_trylock_from_signal_handler_never_takes_over)
{
	struct itimerval it = { { 0, 20 }, { 0, 20 } };
	struct sigaction sa = { .sa_handler = trylock_in_handler };
	struct shmpool_mutex *m = &self->sh->mtx;
	uint64_t soft, hard;
	int ret = 0;
	long i;

	ASSERT_EQ(0, shmpool_mutex_init(self->p, m));
	/*
	 * A budget, not a timing assertion: on a slow lane (TCG, a debug
	 * kernel) the signals can starve the loop, so it also ends after 5 s
	 * once the handler has seen the mutex held 10 times, and after 20 s.
	 */
	soft = now_ms() + (uint64_t)(5000 * scale());
	hard = now_ms() + (uint64_t)(20000 * scale());
	sig_pool = self->p;
	sig_mutex = m;
	sig_took = sig_busy = sig_other = 0;
	ASSERT_EQ(0, sigaction(SIGALRM, &sa, NULL));
	ASSERT_EQ(0, setitimer(ITIMER_REAL, &it, NULL));
	for (i = 0; i < 20000000 && (i < 200000 || sig_busy < 10); i++) {
		if (!(i & 1023) && i &&
		    (now_ms() > hard || (sig_busy >= 10 && now_ms() > soft)))
			break;
		ret = shmpool_mutex_lock(self->p, m);
		if (!ret) {
			self->sh->counter++;
			ret = shmpool_mutex_unlock(self->p, m);
		}
		if (ret)
			break;
	}
	memset(&it, 0, sizeof(it));
	ASSERT_EQ(0, setitimer(ITIMER_REAL, &it, NULL));
	signal(SIGALRM, SIG_DFL);
	EXPECT_EQ(0, ret) TH_LOG("lock/unlock pair %ld", i);
	TH_LOG("%ld lock/unlock pairs: the handler's trylocks: %d took, %d -EBUSY",
	       i, (int)sig_took, (int)sig_busy);
	EXPECT_EQ(0, sig_other) TH_LOG("the handler got %d", (int)sig_last);
	EXPECT_LE(10, sig_busy);
	EXPECT_EQ(0U, atomic_load(&m->word));
}

/* xorshift64: the hostile trials' bytes, repeatable from the seed */
static uint64_t next_rand(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/*
 * Trial @t's owner word and thread for a mutex, as a peer could write
 * them: random bytes; our attachment with random flags and a random
 * thread, with our own thread, with no thread yet; a small id (memfd: a
 * process id, maybe a live one) with a random thread; a free word with a
 * stray thread.
 */
static void hostile_owner(uint64_t *seed, unsigned int t, uint32_t id,
			  uint32_t *word, uint32_t *tid)
{
	uint32_t r = (uint32_t)next_rand(seed), flags;

	flags = r & (SHMPOOL_MUTEX_WAITERS | SHMPOOL_MUTEX_OWNER_DIED);
	*tid = (uint32_t)(next_rand(seed) >> 32);
	switch (t % 6) {
	case 0:
		*word = r;
		break;
	case 1:
		*word = id | flags;
		break;
	case 2:
		*word = id | flags;
		*tid = (uint32_t)sys_gettid();
		break;
	case 3:
		*word = id | flags;
		*tid = 0;
		break;
	case 4:
		*word = (1 + r % 2048) | flags;
		break;
	default:
		*word = 0;
		break;
	}
}

/* Write trial @t's owner into @m (thread first, as a taker does). */
static void hostile_store(struct shmpool_mutex *m, uint64_t seed, unsigned int t,
			  uint32_t id)
{
	uint32_t word, tid;

	hostile_owner(&seed, t, id, &word, &tid);
	atomic_store(&m->tid, tid);
	atomic_store(&m->word, word);
}

/*
 * A peer writes an owner word and thread of its choosing into a mutex,
 * 120 seeded trials at both alignments. The victim holds no mutex. unlock
 * refuses it and changes nothing (-EPERM); timedlock with a 20 ms deadline
 * takes the mutex (0, or -EOWNERDEAD where the word names no live holder)
 * or gives up by its deadline (-ETIMEDOUT, a live process's id); trylock
 * says 0, -EOWNERDEAD or -EBUSY. Whatever it took, the victim's unlock
 * frees it. Nothing else: no -EDEADLK (the victim holds nothing), no hang.
 */
TEST_F_TIMEOUT(sync, mutex_hostile_owner_words, 120)
{
	struct shmpool_mutex *ms[] = { &self->sh->mtx, &self->sh->odd.m };
	uint32_t id = (uint32_t)shmpool_attach_id(self->p);
	unsigned int t, a, took = 0, dead = 0, timedout = 0;
	uint64_t seed;
	int ret;

	for (t = 0; t < 120; t++) {
		for (a = 0; a < 2; a++) {
			struct shmpool_mutex *m = ms[a];
			struct timespec t0 = now(CLOCK_MONOTONIC);
			struct timespec dl = ts_add_ms(t0, 20);
			uint32_t w, tid;

			seed = 0x9e3779b97f4a7c15ULL * (t + 1);
			hostile_store(m, seed, t, id);
			w = atomic_load(&m->word);
			tid = atomic_load(&m->tid);
			if (w) {
				EXPECT_EQ(-EPERM, shmpool_mutex_unlock(self->p, m))
					TH_LOG("trial %u/%u word %#x tid %u", t, a, w, tid);
				EXPECT_EQ(w, atomic_load(&m->word));
				EXPECT_EQ(tid, atomic_load(&m->tid));
			}
			ret = shmpool_mutex_timedlock(self->p, m, &dl);
			EXPECT_TRUE(ret == 0 || ret == -EOWNERDEAD || ret == -ETIMEDOUT)
				TH_LOG("trial %u/%u word %#x tid %u: timedlock %d",
				       t, a, w, tid, ret);
			/* a hang bound, not a latency claim */
			EXPECT_GT(3000, ts_ms(now(CLOCK_MONOTONIC), t0));
			took += ret == 0;
			dead += ret == -EOWNERDEAD;
			timedout += ret == -ETIMEDOUT;
			if (ret == 0 || ret == -EOWNERDEAD) {
				EXPECT_EQ(0, shmpool_mutex_unlock(self->p, m));
				EXPECT_EQ(0U, atomic_load(&m->word) &
					      ~SHMPOOL_MUTEX_WAITERS);
			}
			hostile_store(m, seed, t, id);
			ret = shmpool_mutex_trylock(self->p, m);
			EXPECT_TRUE(ret == 0 || ret == -EOWNERDEAD || ret == -EBUSY)
				TH_LOG("trial %u/%u word %#x tid %u: trylock %d",
				       t, a, w, tid, ret);
			if (ret == 0 || ret == -EOWNERDEAD)
				EXPECT_EQ(0, shmpool_mutex_unlock(self->p, m));
			ASSERT_EQ(0, shmpool_mutex_init(self->p, m));
		}
	}
	TH_LOG("timedlock: %u free, %u taken over, %u timed out", took, dead, timedout);
	/* the count of mutexes held came back to none: a forged claim is still taken over */
	forge_own_claim(self->p, &self->sh->mtx, 0);
	EXPECT_EQ(-EOWNERDEAD, shmpool_mutex_lock(self->p, &self->sh->mtx));
	EXPECT_EQ(0, shmpool_mutex_unlock(self->p, &self->sh->mtx));
}

TEST_F(sync, mutex_relock_deadlk)
{
	struct shmpool_mutex *m = &self->sh->mtx;

	ASSERT_EQ(0, shmpool_mutex_init(self->p, m));
	ASSERT_EQ(0, shmpool_mutex_lock(self->p, m));
	EXPECT_EQ(-EDEADLK, shmpool_mutex_lock(self->p, m));
	EXPECT_EQ(0, shmpool_mutex_unlock(self->p, m));
}

TEST_F(sync, mutex_unlock_not_owner)
{
	struct shmpool_mutex *m = &self->sh->mtx;

	ASSERT_EQ(0, shmpool_mutex_init(self->p, m));
	EXPECT_EQ(-EPERM, shmpool_mutex_unlock(self->p, m));
	ASSERT_EQ(0, task_start(&self->t[0], mutex_holder, &self->c[0]));
	ASSERT_EQ(0, wait_count(&self->sh->ready, 1, 10000));
	EXPECT_EQ(-EPERM, shmpool_mutex_unlock(self->p, m));
	EXPECT_EQ(atomic_load(&self->sh->aid[0]), atomic_load(&m->word));
	atomic_store(&self->sh->go, 1);
	EXPECT_EQ(0, task_join(&self->t[0]));
}

TEST_F(sync, mutex_outside_pool)
{
	struct shmpool_mutex local = { 0 };

	EXPECT_EQ(-EINVAL, shmpool_mutex_lock(self->p, &local));
	EXPECT_EQ(-EINVAL, shmpool_mutex_lock(NULL, &self->sh->mtx));
	EXPECT_EQ(-EINVAL, shmpool_mutex_lock(self->p, NULL));
}

TEST_F(sync, mutex_misaligned)
{
	struct shmpool_mutex *m = (void *)((char *)shmpool_base(self->p) + 2);

	EXPECT_EQ(-EINVAL, shmpool_mutex_trylock(self->p, m));
}

TEST_F(sync, mutex_straddles_end)
{
	struct shmpool_mutex *m = (void *)((char *)shmpool_base(self->p) +
					   shmpool_size(self->p) - 4);

	EXPECT_EQ(-EINVAL, shmpool_mutex_trylock(self->p, m));
}

/* ---- condition variable ----------------------------------------------------------------------- */

/*
 * Strict turns through one condvar: each hand-off needs its signal, and no
 * later signal could make up for a lost one. Turns live in w[0]. Worker 0
 * sleeps in cond_wait for its turn; worker 1 polls for its own, so that it
 * locks and signals the moment worker 0 unlocks inside cond_wait: right in
 * the window between reading the sequence and sleeping on it.
 */
#define COND_ROUNDS	20000

static int cond_pingpong_worker(void *arg)
{
	struct ctx *c = arg;
	struct shared *sh = c->sh;
	uint32_t i;

	for (i = (uint32_t)c->idx; i < 2 * COND_ROUNDS; i += 2) {
		while (c->idx == 1 && atomic_load(&sh->w[0]) != i &&
		       !atomic_load(&sh->go))
			;
		if (shmpool_mutex_lock(c->p, &sh->mtx))
			return 2;
		while (atomic_load(&sh->w[0]) != i && !atomic_load(&sh->go))
			if (shmpool_cond_wait(c->p, &sh->cnd[0], &sh->mtx))
				return 3;
		if (atomic_load(&sh->go)) {
			shmpool_mutex_unlock(c->p, &sh->mtx);
			return 5;
		}
		atomic_store(&sh->w[0], i + 1);
		if (shmpool_cond_signal(c->p, &sh->cnd[0]) ||
		    shmpool_mutex_unlock(c->p, &sh->mtx))
			return 4;
		atomic_fetch_add(&sh->progress, 1);
	}
	atomic_fetch_add(&sh->done, 1);
	return 0;
}

static void cond_unstick(void *arg)
{
	struct ctx *c = arg;

	shmpool_mutex_lock(c->p, &c->sh->mtx);
	atomic_store(&c->sh->go, 1);
	shmpool_cond_broadcast(c->p, &c->sh->cnd[0]);
	shmpool_cond_broadcast(c->p, &c->sh->cnd[1]);
	shmpool_mutex_unlock(c->p, &c->sh->mtx);
}

TEST_F_TIMEOUT(sync, cond_pingpong, 60)
{
	int i, stalled;

	ASSERT_EQ(0, shmpool_mutex_init(self->p, &self->sh->mtx));
	ASSERT_EQ(0, shmpool_cond_init(self->p, &self->sh->cnd[0]));
	for (i = 0; i < 2; i++)
		ASSERT_EQ(0, task_start(&self->t[i], cond_pingpong_worker,
					&self->c[i]));
	stalled = monitor(_metadata, self->sh, 2, cond_unstick, &self->c[0], 0);
	EXPECT_EQ(0, stalled) TH_LOG("lost signal: stalled at turn %u",
				     atomic_load(&self->sh->w[0]));
	for (i = 0; i < 2; i++)
		EXPECT_EQ(stalled ? 5 : 0, task_join(&self->t[i]));
}

#define PC_ITEMS	5000	/* per producer */

/* workers 0, 1 produce 1..PC_ITEMS; 2, 3 consume; cnd[0] not empty, cnd[1] not full */
static int pc_worker(void *arg)
{
	struct ctx *c = arg;
	struct shared *sh = c->sh;
	bool producer = c->idx < 2;
	uint32_t i, item;
	int ret;

	for (i = 1; i <= PC_ITEMS; i++) {
		if (shmpool_mutex_lock(c->p, &sh->mtx))
			return 2;
		if (producer) {
			while (sh->tail - sh->head == 4 && !sh->go) {
				ret = shmpool_cond_wait(c->p, &sh->cnd[1], &sh->mtx);
				if (ret)
					return 3;
			}
			sh->ring[sh->tail++ % 4] = i;
			ret = shmpool_cond_signal(c->p, &sh->cnd[0]);
		} else {
			while (sh->tail == sh->head && !sh->go) {
				ret = shmpool_cond_wait(c->p, &sh->cnd[0], &sh->mtx);
				if (ret)
					return 3;
			}
			item = sh->ring[sh->head++ % 4];
			sh->sum += item;
			ret = shmpool_cond_signal(c->p, &sh->cnd[1]);
		}
		if (sh->go) {
			shmpool_mutex_unlock(c->p, &sh->mtx);
			return 5;	/* the monitor gave up on us */
		}
		if (ret || shmpool_mutex_unlock(c->p, &sh->mtx))
			return 4;
		atomic_fetch_add(&sh->progress, 1);
	}
	atomic_fetch_add(&sh->done, 1);
	return 0;
}

TEST_F_TIMEOUT(sync, cond_producer_consumer, 60)
{
	uint64_t expect = 2ULL * PC_ITEMS * (PC_ITEMS + 1) / 2;
	int i, stalled;

	ASSERT_EQ(0, shmpool_mutex_init(self->p, &self->sh->mtx));
	ASSERT_EQ(0, shmpool_cond_init(self->p, &self->sh->cnd[0]));
	ASSERT_EQ(0, shmpool_cond_init(self->p, &self->sh->cnd[1]));
	for (i = 0; i < 4; i++)
		ASSERT_EQ(0, task_start(&self->t[i], pc_worker, &self->c[i]));
	stalled = monitor(_metadata, self->sh, 4, cond_unstick, &self->c[0], 0);
	EXPECT_EQ(0, stalled) TH_LOG("lost signal: stalled after %u items",
				     atomic_load(&self->sh->progress));
	for (i = 0; i < 4; i++) {
		int rc = task_join(&self->t[i]);

		if (!stalled)
			EXPECT_EQ(0, rc);
	}
	if (!stalled)
		EXPECT_EQ(expect, self->sh->sum);
}

TEST_F(sync, cond_timedwait_timeout)
{
	struct shmpool_mutex *m = &self->sh->mtx;
	struct timespec dl;

	ASSERT_EQ(0, shmpool_mutex_init(self->p, m));
	ASSERT_EQ(0, shmpool_cond_init(self->p, &self->sh->cnd[0]));
	ASSERT_EQ(0, shmpool_mutex_lock(self->p, m));
	dl = ts_add_ms(now(CLOCK_MONOTONIC), 200);
	EXPECT_EQ(-ETIMEDOUT, shmpool_cond_timedwait(self->p, &self->sh->cnd[0],
						     m, &dl));
	EXPECT_FALSE(ts_before(now(CLOCK_MONOTONIC), dl));
	/* back with the mutex held */
	EXPECT_EQ((uint32_t)shmpool_attach_id(self->p),
		  atomic_load(&m->word) & SHMPOOL_MUTEX_OWNER_MASK);
	EXPECT_EQ((uint32_t)sys_gettid(), atomic_load(&m->tid));
	EXPECT_EQ(0U, atomic_load(&self->sh->cnd[0].waiters));
	EXPECT_EQ(0, shmpool_mutex_unlock(self->p, m));
}

TEST_F(sync, cond_wait_without_mutex)
{
	ASSERT_EQ(0, shmpool_mutex_init(self->p, &self->sh->mtx));
	EXPECT_EQ(-EPERM, shmpool_cond_wait(self->p, &self->sh->cnd[0],
					    &self->sh->mtx));
}

/* Wait on cnd[0] for sh->go under mtx. */
static int cond_waiter(void *arg)
{
	struct ctx *c = arg;

	if (shmpool_mutex_lock(c->p, &c->sh->mtx))
		return 2;
	atomic_store(&c->sh->tid[c->idx], sys_gettid());
	atomic_fetch_add(&c->sh->ready, 1);
	while (!atomic_load(&c->sh->go))
		if (shmpool_cond_wait(c->p, &c->sh->cnd[0], &c->sh->mtx))
			return 3;
	atomic_fetch_add(&c->sh->woke, 1);
	if (shmpool_mutex_unlock(c->p, &c->sh->mtx))
		return 4;
	/*
	 * Live on until the test has counted: on the device a process's end
	 * right after a signal may wake the other waiters spuriously
	 * (shmpool_sync.h, "Owner death").
	 */
	while (atomic_load(&c->sh->go) != 2)
		sleep_ms(1);
	return 0;
}

/* @n cond_waiters asleep on cnd[0] */
static void start_cond_waiters(struct __test_metadata *_metadata,
			       FIXTURE_DATA(sync) *self, int n)
{
	int i;

	ASSERT_EQ(0, shmpool_mutex_init(self->p, &self->sh->mtx));
	ASSERT_EQ(0, shmpool_cond_init(self->p, &self->sh->cnd[0]));
	for (i = 0; i < n; i++)
		ASSERT_EQ(0, task_start(&self->t[i], cond_waiter, &self->c[i]));
	ASSERT_EQ(0, wait_count(&self->sh->ready, n, 10000));
	for (i = 0; i < n; i++)
		ASSERT_EQ(0, wait_asleep(atomic_load(&self->sh->tid[i])));
	EXPECT_EQ((uint32_t)n, atomic_load(&self->sh->cnd[0].waiters));
}

TEST_F(sync, cond_broadcast_wakes_all)
{
	const int n = 5;
	int i;

	start_cond_waiters(_metadata, self, n);

	ASSERT_EQ(0, shmpool_mutex_lock(self->p, &self->sh->mtx));
	atomic_store(&self->sh->go, 1);
	EXPECT_EQ(0, shmpool_cond_broadcast(self->p, &self->sh->cnd[0]));
	EXPECT_EQ(0, shmpool_mutex_unlock(self->p, &self->sh->mtx));
	EXPECT_EQ(0, wait_count(&self->sh->woke, n, 10000));
	atomic_store(&self->sh->go, 2);
	for (i = 0; i < n; i++)
		EXPECT_EQ(0, task_join(&self->t[i]));
	EXPECT_EQ((uint32_t)n, atomic_load(&self->sh->woke));
}

/* signal wakes one sleeper, not all */
TEST_F(sync, cond_signal_wakes_one)
{
	const int n = 3;
	int i;

	start_cond_waiters(_metadata, self, n);

	ASSERT_EQ(0, shmpool_mutex_lock(self->p, &self->sh->mtx));
	atomic_store(&self->sh->go, 1);
	EXPECT_EQ(0, shmpool_cond_signal(self->p, &self->sh->cnd[0]));
	EXPECT_EQ(0, shmpool_mutex_unlock(self->p, &self->sh->mtx));
	EXPECT_EQ(0, wait_count(&self->sh->woke, 1, 10000));
	sleep_ms(200);
	EXPECT_EQ(1U, atomic_load(&self->sh->woke));
	atomic_store(&self->sh->go, 2);
	EXPECT_EQ(0, shmpool_cond_broadcast(self->p, &self->sh->cnd[0]));
	for (i = 0; i < n; i++)
		EXPECT_EQ(0, task_join(&self->t[i]));
}

/* ---- semaphore ------------------------------------------------------------------------------------ */

TEST_F(sync, sem_counts)
{
	struct shmpool_sem *s = &self->sh->sem;
	uint32_t id = (uint32_t)shmpool_attach_id(self->p);

	ASSERT_EQ(0, shmpool_sem_init(self->p, s, 3));
	EXPECT_EQ(0, shmpool_sem_trywait(self->p, s));
	EXPECT_EQ(0, shmpool_sem_trywait(self->p, s));
	EXPECT_EQ(0, shmpool_sem_wait(self->p, s));
	EXPECT_EQ(-EAGAIN, shmpool_sem_trywait(self->p, s));
	EXPECT_EQ(id, atomic_load(&s->last_wait));
	EXPECT_EQ(0U, atomic_load(&s->last_post));
	EXPECT_EQ(0, shmpool_sem_post(self->p, s));
	EXPECT_EQ(0, shmpool_sem_post(self->p, s));
	EXPECT_EQ(id, atomic_load(&s->last_post));
	EXPECT_EQ(2U, atomic_load(&s->value));
	EXPECT_EQ(0, shmpool_sem_trywait(self->p, s));
	EXPECT_EQ(1U, atomic_load(&s->value));
}

TEST_F(sync, sem_init_too_big)
{
	EXPECT_EQ(-EINVAL, shmpool_sem_init(self->p, &self->sh->sem,
					    SHMPOOL_SEM_VALUE_MAX + 1));
}

TEST_F(sync, sem_post_overflow)
{
	struct shmpool_sem *s = &self->sh->sem;

	ASSERT_EQ(0, shmpool_sem_init(self->p, s, SHMPOOL_SEM_VALUE_MAX - 1));
	EXPECT_EQ(0, shmpool_sem_post(self->p, s));
	EXPECT_EQ(-EOVERFLOW, shmpool_sem_post(self->p, s));
	EXPECT_EQ(SHMPOOL_SEM_VALUE_MAX, atomic_load(&s->value));
}

TEST_F(sync, sem_timedwait_timeout)
{
	struct shmpool_sem *s = &self->sh->sem;
	struct timespec dl;

	ASSERT_EQ(0, shmpool_sem_init(self->p, s, 0));
	dl = ts_add_ms(now(CLOCK_MONOTONIC), 200);
	EXPECT_EQ(-ETIMEDOUT, shmpool_sem_timedwait(self->p, s, &dl));
	EXPECT_FALSE(ts_before(now(CLOCK_MONOTONIC), dl));
	EXPECT_EQ(0U, atomic_load(&s->waiters));
}

/*
 * A bad deadline (shmpool.h: tv_nsec outside [0, 1e9), negative tv_sec) an
 * hour away, given to a call that has to wait and sleeps in slices to look
 * at owners: -EINVAL at once, as shmpool_wait() and the device give, not
 * the slices' wait until it comes within one (if ever).
 */
static struct timespec bad_deadline_in_an_hour(long nsec)
{
	struct timespec dl = now(CLOCK_MONOTONIC);

	dl.tv_sec += 3600;
	dl.tv_nsec = nsec;
	return dl;
}

TEST_F(sync, mutex_timedlock_contended_bad_nsec)
{
	struct shmpool_mutex *m = &self->sh->mtx;
	struct timespec dl = bad_deadline_in_an_hour(1000000000L);

	ASSERT_EQ(0, shmpool_mutex_init(self->p, m));
	/* free: taken without a look at the deadline, as pthread_mutex_timedlock() */
	EXPECT_EQ(0, shmpool_mutex_timedlock(self->p, m, &dl));
	EXPECT_EQ(0, shmpool_mutex_unlock(self->p, m));
	ASSERT_EQ(0, task_start(&self->t[0], mutex_holder, &self->c[0]));
	ASSERT_EQ(0, wait_count(&self->sh->ready, 1, 10000));
	EXPECT_EQ(-EINVAL, shmpool_mutex_timedlock(self->p, m, &dl));
	atomic_store(&self->sh->go, 1);
	EXPECT_EQ(0, task_join(&self->t[0]));
}

TEST_F(sync, sem_robust_timedwait_negative_nsec)
{
	struct shmpool_sem *s = &self->sh->sem;
	struct timespec dl = bad_deadline_in_an_hour(-1);

	ASSERT_EQ(0, shmpool_sem_init_robust(self->p, s, 0));
	EXPECT_EQ(-EINVAL, shmpool_sem_timedwait(self->p, s, &dl));
	EXPECT_EQ(0U, atomic_load(&s->waiters));
}

TEST_F(sync, sem_rdonly)
{
	char name[SHMPOOL_NAME_MAX];
	struct shmpool *rw, *ro;
	struct shmpool_sem *s;

	snprintf(name, sizeof(name), "lst.%d.ro", (int)getpid());
	ASSERT_EQ(0, shmpool_create(name, page_size(), 0600,
				    variant->backend | SHMPOOL_EXCL, &rw));
	ASSERT_EQ(0, shmpool_open(name, variant->backend | SHMPOOL_RDONLY, &ro));
	shmpool_unlink(name, variant->backend);
	s = shmpool_base(ro);
	EXPECT_EQ(-EPERM, shmpool_sem_post(ro, s));
	EXPECT_EQ(-EPERM, shmpool_sem_trywait(ro, s));
	EXPECT_EQ(0, shmpool_sem_post(rw, shmpool_base(rw)));
	shmpool_close(ro);
	shmpool_close(rw);
}

#define SEM_ITEMS	10000	/* per poster */

/* workers 0, 1 post SEM_ITEMS each; 2, 3 take SEM_ITEMS each */
static int sem_worker(void *arg)
{
	struct ctx *c = arg;
	int i;

	for (i = 0; i < SEM_ITEMS; i++) {
		if (c->idx < 2) {
			if (shmpool_sem_post(c->p, &c->sh->sem))
				return 2;
		} else if (shmpool_sem_wait(c->p, &c->sh->sem)) {
			return 3;
		}
		if (atomic_load(&c->sh->go))
			return 5;
		atomic_fetch_add(&c->sh->progress, 1);
	}
	atomic_fetch_add(&c->sh->done, 1);
	return 0;
}

static void sem_unstick(void *arg)
{
	struct ctx *c = arg;

	atomic_store(&c->sh->go, 1);
	shmpool_sem_post(c->p, &c->sh->sem);
	shmpool_sem_post(c->p, &c->sh->sem);
}

TEST_F_TIMEOUT(sync, sem_producer_consumer, 60)
{
	int i, stalled;

	ASSERT_EQ(0, shmpool_sem_init(self->p, &self->sh->sem, 0));
	for (i = 0; i < 4; i++)
		ASSERT_EQ(0, task_start(&self->t[i], sem_worker, &self->c[i]));
	stalled = monitor(_metadata, self->sh, 4, sem_unstick, &self->c[0], 0);
	EXPECT_EQ(0, stalled) TH_LOG("lost post: stalled after %u operations",
				     atomic_load(&self->sh->progress));
	for (i = 0; i < 4; i++) {
		int rc = task_join(&self->t[i]);

		if (!stalled)
			EXPECT_EQ(0, rc);
	}
	if (!stalled) {
		EXPECT_EQ(0U, atomic_load(&self->sh->sem.value));
		EXPECT_EQ(0U, atomic_load(&self->sh->sem.waiters));
	}
}

/* Take one unit; report through result[]. */
static int sem_sleeper(void *arg)
{
	struct ctx *c = arg;

	atomic_store(&c->sh->tid[c->idx], sys_gettid());
	atomic_fetch_add(&c->sh->ready, 1);
	atomic_store(&c->sh->result[c->idx], shmpool_sem_wait(c->p, &c->sh->sem));
	atomic_fetch_add(&c->sh->woke, 1);
	return 0;
}

/* Each post wakes exactly one of several sleepers. */
TEST_F(sync, sem_post_wakes_one)
{
	const int n = 3;
	int i;

	ASSERT_EQ(0, shmpool_sem_init(self->p, &self->sh->sem, 0));
	for (i = 0; i < n; i++)
		ASSERT_EQ(0, task_start(&self->t[i], sem_sleeper, &self->c[i]));
	ASSERT_EQ(0, wait_count(&self->sh->ready, n, 10000));
	for (i = 0; i < n; i++)
		ASSERT_EQ(0, wait_asleep(atomic_load(&self->sh->tid[i])));
	EXPECT_EQ((uint32_t)n, atomic_load(&self->sh->sem.waiters));
	for (i = 1; i <= n; i++) {
		EXPECT_EQ(0, shmpool_sem_post(self->p, &self->sh->sem));
		EXPECT_EQ(0, wait_count(&self->sh->woke, i, 10000));
		sleep_ms(100);
		EXPECT_EQ((uint32_t)i, atomic_load(&self->sh->woke));
	}
	for (i = 0; i < n; i++) {
		EXPECT_EQ(0, task_join(&self->t[i]));
		EXPECT_EQ(0, atomic_load(&self->sh->result[i]));
	}
	EXPECT_EQ(0U, atomic_load(&self->sh->sem.value));
}

/* ---- owners are attachments ------------------------------------------------------------- */

/* Hold mtx from a second thread of a worker process until sh->go. */
static void *thread_holder(void *arg)
{
	struct ctx *c = arg;

	if (shmpool_mutex_lock(c->p, &c->sh->mtx)) {
		atomic_store(&c->sh->result[c->idx], 2);
		return NULL;
	}
	atomic_store(&c->sh->tid[c->idx], sys_gettid());
	atomic_fetch_add(&c->sh->ready, 1);
	while (!atomic_load(&c->sh->go))
		sleep_ms(1);
	atomic_store(&c->sh->result[c->idx],
		     shmpool_mutex_unlock(c->p, &c->sh->mtx) ? 3 : 0);
	return NULL;
}

static int thread_holder_worker(void *arg)
{
	struct ctx *c = arg;
	pthread_t th;

	atomic_store(&c->sh->result[c->idx], -1);
	if (pthread_create(&th, NULL, thread_holder, c))
		return 2;
	pthread_join(th, NULL);
	return atomic_load(&c->sh->result[c->idx]);
}

/*
 * A live holder that is not its process's main thread is waited for, not
 * taken over (kill(tid, 0), which the thread-id owners used, says ESRCH
 * for such a thread on kernels since 6.9).
 */
TEST_F(sync, mutex_holder_thread_not_taken_over)
{
	struct shmpool_mutex *m = &self->sh->mtx;
	struct timespec dl;

	ASSERT_EQ(0, shmpool_mutex_init(self->p, m));
	ASSERT_EQ(0, task_start(&self->t[0], thread_holder_worker, &self->c[0]));
	ASSERT_EQ(0, wait_count(&self->sh->ready, 1, 10000));
	/* several owner checks pass while we wait */
	dl = ts_add_ms(now(CLOCK_MONOTONIC), 1000);
	EXPECT_EQ(-ETIMEDOUT, shmpool_mutex_timedlock(self->p, m, &dl));
	EXPECT_EQ(-EBUSY, shmpool_mutex_trylock(self->p, m));
	EXPECT_EQ((uint32_t)atomic_load(&self->sh->tid[0]), atomic_load(&m->tid));
	atomic_store(&self->sh->go, 1);
	EXPECT_EQ(0, task_join(&self->t[0]));
	EXPECT_EQ(0, shmpool_mutex_lock(self->p, m));
	EXPECT_EQ(0, shmpool_mutex_unlock(self->p, m));
}

#ifndef SHMPOOL_TEST_THREADS
/* Report the attachment id, then hold mtx until sh->go. */
static int pidns_holder(void *arg)
{
	struct ctx *c = arg;

	if (shmpool_mutex_lock(c->p, &c->sh->mtx))
		return 2;
	atomic_store(&c->sh->tid[c->idx], (int32_t)getpid());
	atomic_store(&c->sh->aid[c->idx], (uint32_t)shmpool_attach_id(c->p));
	atomic_fetch_add(&c->sh->ready, 1);
	while (!atomic_load(&c->sh->go))
		sleep_ms(1);
	return shmpool_mutex_unlock(c->p, &c->sh->mtx) ? 3 : 0;
}

/*
 * A holder alive in another PID namespace is never taken over: the waiter
 * times out (device; memfd's ids are process ids, a documented limit).
 * Its process id there names no process of ours, so a thread-id owner
 * looked dead.
 */
TEST_F(sync, mutex_pidns_live_owner_not_taken_over)
{
	struct shmpool_mutex *m = &self->sh->mtx;
	struct timespec dl;
	pid_t a;

	if (!attachments_exact(self->p))
		SKIP(return, "owners are process ids here (memfd, or no attachments)");
	ASSERT_EQ(0, shmpool_mutex_init(self->p, m));
	a = pidns_start(pidns_holder, &self->c[0]);
	if (a < 0 && (errno == EPERM || errno == EINVAL || errno == ENOSYS))
		SKIP(return, "no PID namespaces here: %s", strerror(errno));
	ASSERT_LT(0, a);
	ASSERT_EQ(0, wait_count(&self->sh->ready, 1, 20000));
	TH_LOG("holder is pid %d in its namespace", atomic_load(&self->sh->tid[0]));
	dl = ts_add_ms(now(CLOCK_MONOTONIC), 1500);
	EXPECT_EQ(-ETIMEDOUT, shmpool_mutex_timedlock(self->p, m, &dl));
	EXPECT_EQ(-EBUSY, shmpool_mutex_trylock(self->p, m));
	EXPECT_EQ(atomic_load(&self->sh->aid[0]),
		  atomic_load(&m->word) & SHMPOOL_MUTEX_OWNER_MASK);
	atomic_store(&self->sh->go, 1);
	EXPECT_EQ(0, pidns_join(a));
	/* and its death is seen across the namespace too */
	atomic_store(&self->sh->go, 0);
	atomic_store(&self->sh->ready, 0);
	a = pidns_start(mutex_hold_forever, &self->c[0]);
	ASSERT_LT(0, a);
	ASSERT_EQ(0, wait_count(&self->sh->ready, 1, 20000));
	kill(a, SIGKILL);
	EXPECT_EQ(128 + SIGKILL, pidns_join(a));
	dl = ts_add_ms(now(CLOCK_MONOTONIC), 20000);
	EXPECT_EQ(-EOWNERDEAD, shmpool_mutex_timedlock(self->p, m, &dl));
	EXPECT_EQ(0, shmpool_mutex_unlock(self->p, m));
}

/*
 * A dead owner whose process id now belongs to a live process is still
 * dead (device: its attachment ended; thread-id owners took the new
 * process for the owner and waited).
 */
TEST_F(sync, mutex_dead_owner_pid_reused)
{
	struct shmpool_mutex *m = &self->sh->mtx;
	struct timespec dl;
	pid_t dead, reuse;
	int status;

	if (!attachments_exact(self->p))
		SKIP(return, "owners are process ids here (memfd, or no attachments)");
	ASSERT_EQ(0, shmpool_mutex_init(self->p, m));
	ASSERT_EQ(0, task_start(&self->t[0], mutex_abandoner, &self->c[0]));
	ASSERT_EQ(0, task_join(&self->t[0]));
	dead = self->t[0].pid;
	if (set_next_pid(dead))
		SKIP(return, "cannot set ns_last_pid: %s", strerror(errno));
	reuse = fork();
	ASSERT_LE(0, reuse);
	if (reuse == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		for (;;)
			pause();
	}
	if (reuse != dead) {
		kill(reuse, SIGKILL);
		waitpid(reuse, &status, 0);
		SKIP(return, "pid %d went to another process", (int)dead);
	}
	dl = ts_add_ms(now(CLOCK_MONOTONIC), 20000);
	EXPECT_EQ(-EOWNERDEAD, shmpool_mutex_timedlock(self->p, m, &dl));
	EXPECT_EQ(0, shmpool_mutex_unlock(self->p, m));
	kill(reuse, SIGKILL);
	waitpid(reuse, &status, 0);
}

/* Lock mtx, note it, wait on cnd[0] with a 30 s deadline; report the result. */
static int cond_death_waiter(void *arg)
{
	struct ctx *c = arg;
	struct timespec dl;
	int ret;

	if (shmpool_mutex_lock(c->p, &c->sh->mtx))
		return 2;
	atomic_store(&c->sh->tid[c->idx], sys_gettid());
	atomic_fetch_add(&c->sh->ready, 1);
	dl = ts_add_ms(now(CLOCK_MONOTONIC), 30000);
	ret = shmpool_cond_timedwait(c->p, &c->sh->cnd[0], &c->sh->mtx, &dl);
	atomic_store(&c->sh->result[c->idx], ret);
	/* how long before its deadline it came back */
	atomic_store(&c->sh->w[8 + c->idx], (uint32_t)ts_ms(dl, now(CLOCK_MONOTONIC)));
	return shmpool_mutex_unlock(c->p, &c->sh->mtx) ? 3 : 0;
}

/*
 * A condvar waiter whose mutex is then taken by a process that dies
 * holding it wakes (device: at once, by the death notice) and comes back
 * with the mutex taken over, long before its deadline.
 */
TEST_F_TIMEOUT(sync, cond_waiter_learns_of_owner_death, 60)
{
	if (!attachments_exact(self->p))
		SKIP(return, "no death notice here (memfd waiters sleep until signalled)");
	ASSERT_EQ(0, shmpool_mutex_init(self->p, &self->sh->mtx));
	ASSERT_EQ(0, shmpool_cond_init(self->p, &self->sh->cnd[0]));
	ASSERT_EQ(0, task_start(&self->t[0], cond_death_waiter, &self->c[0]));
	ASSERT_EQ(0, wait_count(&self->sh->ready, 1, 10000));
	ASSERT_EQ(0, wait_asleep(atomic_load(&self->sh->tid[0])));
	ASSERT_EQ(0, task_start(&self->t[1], mutex_hold_forever, &self->c[1]));
	ASSERT_EQ(0, wait_count(&self->sh->ready, 2, 10000));
	ASSERT_EQ(0, kill(self->t[1].pid, SIGKILL));
	EXPECT_EQ(128 + SIGKILL, task_join(&self->t[1]));
	EXPECT_EQ(0, task_join(&self->t[0]));
	EXPECT_EQ(-EOWNERDEAD, atomic_load(&self->sh->result[0]));
	/* a hang bound, not a latency claim: 30 s deadline, back within 15 */
	EXPECT_LT(15000U, atomic_load(&self->sh->w[8]));
	EXPECT_EQ(0U, atomic_load(&self->sh->mtx.word));
}

/* Take a unit of sem and hold it until killed. */
static int sem_hold_forever(void *arg)
{
	struct ctx *c = arg;

	if (shmpool_sem_wait(c->p, &c->sh->sem))
		return 2;
	atomic_fetch_add(&c->sh->ready, 1);
	for (;;)
		pause();
}

/* Wait for a unit of sem with a 30 s deadline; report as cond_death_waiter. */
static int sem_death_waiter(void *arg)
{
	struct ctx *c = arg;
	struct timespec dl = ts_add_ms(now(CLOCK_MONOTONIC), 30000);

	atomic_store(&c->sh->tid[c->idx], sys_gettid());
	atomic_fetch_add(&c->sh->ready, 1);
	atomic_store(&c->sh->result[c->idx],
		     shmpool_sem_timedwait(c->p, &c->sh->sem, &dl));
	atomic_store(&c->sh->w[8 + c->idx], (uint32_t)ts_ms(dl, now(CLOCK_MONOTONIC)));
	return 0;
}

/*
 * A robust semaphore's holder is killed while a waiter sleeps: the waiter
 * gets -EOWNERDEAD (no unit) long before its deadline, once; the unit
 * posted back goes on working. @old: a semaphore an older library made
 * (SHMPOOL_SEM_ROBUST alone: counts to 0, the taker in @last_wait), which
 * this one keeps in that format.
 */
static void sem_holder_killed(struct __test_metadata *_metadata,
			      FIXTURE_DATA(sync) *self, bool old)
{
	struct shmpool_sem *s = &self->sh->sem;

	ASSERT_EQ(0, shmpool_sem_init_robust(self->p, s, 1));
	if (old)
		s->flags = SHMPOOL_SEM_ROBUST;
	ASSERT_EQ(0, task_start(&self->t[0], sem_hold_forever, &self->c[0]));
	ASSERT_EQ(0, wait_count(&self->sh->ready, 1, 10000));
	EXPECT_EQ(old ? 0 : SHMPOOL_SEM_EMPTY | atomic_load(&s->last_wait),
		  atomic_load(&s->value));
	ASSERT_EQ(0, task_start(&self->t[1], sem_death_waiter, &self->c[1]));
	ASSERT_EQ(0, wait_count(&self->sh->ready, 2, 10000));
	ASSERT_EQ(0, wait_asleep(atomic_load(&self->sh->tid[1])));
	ASSERT_EQ(0, kill(self->t[0].pid, SIGKILL));
	EXPECT_EQ(128 + SIGKILL, task_join(&self->t[0]));
	EXPECT_EQ(0, task_join(&self->t[1]));
	EXPECT_EQ(-EOWNERDEAD, atomic_load(&self->sh->result[1]));
	/* a hang bound, not a latency claim: 30 s deadline, back within 15 */
	EXPECT_LT(15000U, atomic_load(&self->sh->w[9]));
	/* reported once: the notice is cleared, and the unit comes back */
	EXPECT_EQ(0U, atomic_load(&s->last_wait));
	EXPECT_EQ(old ? 0 : SHMPOOL_SEM_EMPTY, atomic_load(&s->value));
	EXPECT_EQ(-EAGAIN, shmpool_sem_trywait(self->p, s));
	EXPECT_EQ(0, shmpool_sem_post(self->p, s));
	EXPECT_EQ(0, shmpool_sem_wait(self->p, s));
	EXPECT_EQ(0, shmpool_sem_post(self->p, s));
	EXPECT_EQ(1U, atomic_load(&s->value));
}

TEST_F_TIMEOUT(sync, sem_robust_holder_killed, 60)
{
	sem_holder_killed(_metadata, self, false);
}

TEST_F_TIMEOUT(sync, sem_robust_older_format_holder_killed, 60)
{
	sem_holder_killed(_metadata, self, true);
}

/*
 * Two waiters sleep on a robust semaphore that names no taker (made empty;
 * the same after a death notice was claimed). One post lets the first
 * take the unit, and it ends holding it. The second must hear of that end
 * (-EOWNERDEAD long before its deadline) though the word named nobody
 * when it went to sleep: a post wakes one sleeper, and the word then names
 * the new taker under the other's feet. @old: the older format.
 */
static void sem_unnamed_taker_dies(struct __test_metadata *_metadata,
				   FIXTURE_DATA(sync) *self, bool old)
{
	struct shmpool_sem *s = &self->sh->sem;
	int i, took;

#ifdef SHMPOOL_TEST_THREADS
	SKIP(return, "needs waiters in other processes");
#endif
	ASSERT_EQ(0, shmpool_sem_init_robust(self->p, s, 0));
	if (old) {	/* as an older library leaves it: 0, nobody in last_wait */
		s->flags = SHMPOOL_SEM_ROBUST;
		atomic_store(&s->value, 0);
	}
	for (i = 0; i < 2; i++) {
		atomic_store(&self->sh->result[i], 1);
		ASSERT_EQ(0, task_start(&self->t[i], sem_death_waiter, &self->c[i]));
		ASSERT_EQ(0, wait_count(&self->sh->ready, (uint32_t)i + 1, 10000));
		ASSERT_EQ(0, wait_asleep(atomic_load(&self->sh->tid[i])));
	}
	/* the taker returns and ends, holding the unit */
	ASSERT_EQ(0, shmpool_sem_post(self->p, s));
	for (i = 0; i < 2; i++)
		EXPECT_EQ(0, task_join(&self->t[i]));
	took = atomic_load(&self->sh->result[0]) ? 1 : 0;
	EXPECT_EQ(0, atomic_load(&self->sh->result[took]));
	EXPECT_EQ(-EOWNERDEAD, atomic_load(&self->sh->result[!took]));
	/* a hang bound, not a latency claim: 30 s deadline, back within 15 */
	EXPECT_LT(15000U, atomic_load(&self->sh->w[8 + !took]));
}

TEST_F_TIMEOUT(sync, robust_sem_sleeper_hears_of_a_taker_it_could_not_name, 60)
{
	sem_unnamed_taker_dies(_metadata, self, false);
}

TEST_F_TIMEOUT(sync, robust_sem_older_format_sleeper_hears_of_a_later_taker, 60)
{
	sem_unnamed_taker_dies(_metadata, self, true);
}

/* A plain semaphore's taker that exits is no news: waiters keep waiting. */
TEST_F(sync, sem_plain_taker_exit_not_reported)
{
	struct shmpool_sem *s = &self->sh->sem;
	struct timespec dl;

	ASSERT_EQ(0, shmpool_sem_init(self->p, s, 1));
	ASSERT_EQ(0, task_start(&self->t[0], sem_hold_forever, &self->c[0]));
	ASSERT_EQ(0, wait_count(&self->sh->ready, 1, 10000));
	ASSERT_EQ(0, kill(self->t[0].pid, SIGKILL));
	EXPECT_EQ(128 + SIGKILL, task_join(&self->t[0]));
	dl = ts_add_ms(now(CLOCK_MONOTONIC), 300);
	EXPECT_EQ(-ETIMEDOUT, shmpool_sem_timedwait(self->p, s, &dl));
	EXPECT_NE(0U, atomic_load(&s->last_wait));
}

/*
 * A fork() child, in the one thread it has, after that thread learned its
 * new thread id through another pool: the parent's lock is not the child's
 * (trylock -EBUSY, unlock -EPERM, timedlock waits), and a free mutex it
 * takes names the child's attachment, never the parent's, which the handle
 * still holds until the child's first full call re-attaches it.
 */
static int fork_child_locks(struct shmpool *p, struct shmpool_mutex *held,
			    struct shmpool_mutex *free_m, struct shmpool *q,
			    struct shmpool_mutex *qm, uint32_t parent_id)
{
	struct timespec dl;
	uint32_t word;

	if (shmpool_mutex_lock(q, qm) || shmpool_mutex_unlock(q, qm))
		return 10;
	if (shmpool_mutex_lock(p, free_m))
		return 11;
	word = atomic_load(&free_m->word);
	if (word == parent_id || word != (uint32_t)shmpool_attach_id(p))
		return 12;
	if (atomic_load(&free_m->tid) != (uint32_t)sys_gettid())
		return 13;
	if (shmpool_mutex_unlock(p, free_m))
		return 14;
	if (shmpool_mutex_trylock(p, held) != -EBUSY)
		return 15;
	if (shmpool_mutex_unlock(p, held) != -EPERM)
		return 16;
	dl = ts_add_ms(now(CLOCK_MONOTONIC), 100);
	if (shmpool_mutex_timedlock(p, held, &dl) != -ETIMEDOUT)
		return 17;
	return 0;
}

TEST_F(sync, mutex_fork_child_not_parent)
{
	struct shmpool_mutex *m[2] = { &self->sh->mtx, &self->sh->odd.m };
	uint32_t id = (uint32_t)shmpool_attach_id(self->p);
	struct shmpool_mutex *qm;
	struct shmpool *q;
	int i, status;
	pid_t pid;

	ASSERT_EQ(0, shmpool_create_anon(page_size(), variant->backend, &q));
	qm = shmpool_base(q);
	ASSERT_EQ(0, shmpool_mutex_init(q, qm));
	for (i = 0; i < 2; i++) {
		ASSERT_EQ(0, shmpool_mutex_init(self->p, m[i]));
		ASSERT_EQ(0, shmpool_mutex_lock(self->p, m[i]));
		pid = fork();
		ASSERT_LE(0, pid);
		if (!pid)
			_exit(fork_child_locks(self->p, m[i], m[1 - i], q, qm, id));
		ASSERT_EQ(pid, waitpid(pid, &status, 0));
		EXPECT_TRUE(WIFEXITED(status));
		EXPECT_EQ(0, WEXITSTATUS(status)) TH_LOG("mutex %d", i);
		EXPECT_EQ(id, atomic_load(&m[i]->word) & SHMPOOL_MUTEX_OWNER_MASK);
		EXPECT_EQ((uint32_t)sys_gettid(), atomic_load(&m[i]->tid));
		EXPECT_EQ(0, shmpool_mutex_unlock(self->p, m[i]));
		EXPECT_EQ(0U, atomic_load(&m[1 - i]->word));
	}
	shmpool_close(q);
}
/* ---- thread cancellation ---------------------------------------------------- */

static pthread_barrier_t cancel_barrier;

/* Lock mtx with a cancel already pending; unlock; then act on the cancel. */
static void *cancel_locker(void *arg)
{
	struct ctx *c = arg;
	int ret;

	pthread_barrier_wait(&cancel_barrier);	/* not a cancellation point */
	ret = shmpool_mutex_lock(c->p, &c->sh->mtx);
	c->flag = ret;
	if (!ret || ret == -EOWNERDEAD)
		shmpool_mutex_unlock(c->p, &c->sh->mtx);
	pthread_testcancel();
	return NULL;
}

/*
 * No call is a cancellation point (shmpool.h): a deferred cancel that
 * arrives while a thread waits for a mutex held by a live process of its
 * own is acted on only after the lock returned, however many owner checks
 * (pidfd_open(), poll()) the wait made. A call cancelled in the middle of
 * one would leave the library's process-wide take-over lock held, and every
 * later fork() and owner take-over of the process would hang.
 */
TEST_F(sync, mutex_lock_not_a_cancellation_point)
{
	struct shmpool_mutex *m = &self->sh->mtx;
	struct ctx *c = &self->c[1];
	void *res = NULL;
	int i, status;
	pthread_t t;
	pid_t pid;

	ASSERT_EQ(0, shmpool_mutex_init(self->p, m));
	ASSERT_EQ(0, task_start(&self->t[0], mutex_holder, &self->c[0]));
	ASSERT_EQ(0, wait_count(&self->sh->ready, 1, 10000));
	ASSERT_EQ(0, pthread_barrier_init(&cancel_barrier, NULL, 2));
	c->flag = 1;
	ASSERT_EQ(0, pthread_create(&t, NULL, cancel_locker, c));
	ASSERT_EQ(0, pthread_cancel(t));
	pthread_barrier_wait(&cancel_barrier);
	/* the locker sleeps once it has set WAITERS, after its owner checks */
	for (i = 0; i < 10000; i++) {
		if (atomic_load(&m->word) & SHMPOOL_MUTEX_WAITERS)
			break;
		if (pthread_tryjoin_np(t, &res) == 0)
			break;
		sleep_ms(1);
	}
	EXPECT_NE(PTHREAD_CANCELED, res) TH_LOG("cancelled inside shmpool_mutex_lock()");
	atomic_store(&self->sh->go, 1);
	EXPECT_EQ(0, task_join(&self->t[0]));
	if (res != PTHREAD_CANCELED) {
		ASSERT_EQ(0, pthread_join(t, &res));
		EXPECT_EQ(PTHREAD_CANCELED, res);
		EXPECT_EQ(0, c->flag);
	}
	pthread_barrier_destroy(&cancel_barrier);
	/* the process is still whole: fork() and taking over a dead owner */
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid)
		_exit(0);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_EQ(0, shmpool_mutex_lock(self->p, m));
	EXPECT_EQ(0, shmpool_mutex_unlock(self->p, m));
}

/* ---- fork() while another thread is inside the library --------------------- */

#define FORK_POOLS	200
#define FORK_ROUNDS	20

static struct shmpool *fork_pools[FORK_POOLS + 1];
static atomic_int fork_go;

/*
 * Every handle but the last: re-attach it (a fork() child's first call;
 * @arg NULL) or close it (memfd: each unmapping takes a lock).
 */
static void *busy_all(void *arg)
{
	int i;

	while (!atomic_load(&fork_go))
		;
	for (i = 0; i < FORK_POOLS; i++) {
		if (arg)
			shmpool_close(fork_pools[i]);
		else
			shmpool_attach_id(fork_pools[i]);
	}
	return NULL;
}

/* the grandchild: its first call on the last handle */
static int child_attach(void)
{
	return shmpool_attach_id(fork_pools[FORK_POOLS]) == (int)getpid() ? 0 : 22;
}

static int child_close(void)
{
	shmpool_close(fork_pools[FORK_POOLS]);
	return 0;
}

/*
 * In a fork() child B, one thread runs busy_all() over B's handles while
 * another forks C, which then runs @first on a handle: 0 if C returned.
 */
static int fork_while_busy(bool closing, int (*first)(void))
{
	int status, ret = 0;
	pthread_t t;
	pid_t pid;

	if (pthread_create(&t, NULL, busy_all, closing ? &fork_go : NULL))
		return 20;
	atomic_store(&fork_go, 1);
	pid = fork();
	if (pid < 0)
		return 21;
	if (!pid)
		_exit(first());
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		ret = 23;
	else
		ret = WEXITSTATUS(status);
	pthread_join(t, NULL);
	return ret;
}

/*
 * A process-wide lock of the library must not reach a fork() child held by
 * a thread the child lacks: its call would wait for ever. Rounds of B and
 * C as in fork_while_busy().
 */
static void fork_rounds(struct __test_metadata *_metadata, unsigned int backend,
			bool closing, int (*first)(void))
{
	int i, status;
	pid_t pid;

	if (backend != SHMPOOL_BACKEND_MEMFD)
		SKIP(return, "memfd's locks");
	for (i = 0; i <= FORK_POOLS; i++)
		ASSERT_EQ(0, shmpool_create_anon(page_size(), backend,
						 &fork_pools[i]));
	for (i = 0; i < FORK_ROUNDS; i++) {
		pid = fork();
		ASSERT_LE(0, pid);
		if (!pid)
			_exit(fork_while_busy(closing, first));
		ASSERT_EQ(pid, waitpid(pid, &status, 0));
		ASSERT_TRUE(WIFEXITED(status));
		ASSERT_EQ(0, WEXITSTATUS(status)) TH_LOG("round %d", i);
	}
	for (i = 0; i <= FORK_POOLS; i++)
		shmpool_close(fork_pools[i]);
}

/* C gets an attachment of its own on its first call (shmpool.h) */
TEST_F_TIMEOUT(sync, fork_while_another_thread_reattaches, 60)
{
	fork_rounds(_metadata, variant->backend, false, child_attach);
}

/* C closes a handle (memfd: the SIGBUS rescue table's lock) */
TEST_F_TIMEOUT(sync, fork_while_another_thread_closes, 60)
{
	fork_rounds(_metadata, variant->backend, true, child_close);
}

#endif

/* ---- a peer writes a semaphore's word ---------------------------------------- */

/* A task that attaches, says who it is, and waits for sh->go. */
static int attach_and_wait(void *arg)
{
	struct ctx *c = arg;
	int id = shmpool_attach_id(c->p);

	if (id <= 0)
		return 2;
	atomic_store(&c->sh->aid[c->idx], (uint32_t)id);
	atomic_fetch_add(&c->sh->ready, 1);
	while (!atomic_load(&c->sh->go))
		sleep_ms(1);
	return 0;
}

/*
 * A peer wrote an empty robust semaphore's word naming a taker that is not
 * a live attachment (never issued: the largest id; with bit 30, outside
 * the id bits, set too): the waiter gets -EOWNERDEAD at once, as for a
 * taker that died, once; the semaphore then works as before.
 */
TEST_F(sync, robust_sem_hostile_dead_taker)
{
	static const uint32_t words[] = {
		SHMPOOL_SEM_EMPTY | SHMPOOL_ATTACH_ID_MAX,
		SHMPOOL_SEM_EMPTY | (1U << 30) | SHMPOOL_ATTACH_ID_MAX,
	};
	struct shmpool_sem *s = &self->sh->sem;
	struct timespec t0, dl;
	unsigned int i;

	for (i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
		ASSERT_EQ(0, shmpool_sem_init_robust(self->p, s, 0));
		atomic_store(&s->value, words[i]);
		t0 = now(CLOCK_MONOTONIC);
		dl = ts_add_ms(t0, 5000);
		EXPECT_EQ(-EOWNERDEAD, shmpool_sem_timedwait(self->p, s, &dl))
			TH_LOG("word %#x", words[i]);
		EXPECT_GT(1000, ts_ms(now(CLOCK_MONOTONIC), t0));
		/* told once: the next waiter waits for a post */
		dl = ts_add_ms(now(CLOCK_MONOTONIC), 200);
		EXPECT_EQ(-ETIMEDOUT, shmpool_sem_timedwait(self->p, s, &dl));
		EXPECT_EQ(-EAGAIN, shmpool_sem_trywait(self->p, s));
		EXPECT_EQ(0, shmpool_sem_post(self->p, s));
		EXPECT_EQ(0, shmpool_sem_trywait(self->p, s));
		EXPECT_EQ(0, shmpool_sem_post(self->p, s));
		EXPECT_EQ(1U, atomic_load(&s->value));
		EXPECT_EQ(0U, atomic_load(&s->waiters));
	}
}

/*
 * A peer wrote an empty robust semaphore's word naming a live attachment
 * that holds nothing (another process's): it is waited for as a taker, and
 * the deadline holds: -ETIMEDOUT at it, not later.
 */
TEST_F(sync, robust_sem_hostile_live_taker_times_out)
{
	struct shmpool_sem *s = &self->sh->sem;
	struct timespec dl;
	long late;

#ifdef SHMPOOL_TEST_THREADS
	SKIP(return, "needs a live attachment of another process");
#endif
	ASSERT_EQ(0, task_start(&self->t[0], attach_and_wait, &self->c[0]));
	ASSERT_EQ(0, wait_count(&self->sh->ready, 1, 10000));
	ASSERT_EQ(0, shmpool_sem_init_robust(self->p, s, 0));
	atomic_store(&s->value, SHMPOOL_SEM_EMPTY | atomic_load(&self->sh->aid[0]));
	dl = ts_add_ms(now(CLOCK_MONOTONIC), 300);
	EXPECT_EQ(-ETIMEDOUT, shmpool_sem_timedwait(self->p, s, &dl));
	late = ts_ms(now(CLOCK_MONOTONIC), dl);
	EXPECT_LE(0, late);
	EXPECT_GT(500, late);
	EXPECT_EQ(0U, atomic_load(&s->waiters));
	/* its end is a taker's death: the next waiter is told */
	ASSERT_EQ(0, kill(self->t[0].pid, SIGKILL));
	EXPECT_EQ(128 + SIGKILL, task_join(&self->t[0]));
	dl = ts_add_ms(now(CLOCK_MONOTONIC), 5000);
	EXPECT_EQ(-EOWNERDEAD, shmpool_sem_timedwait(self->p, s, &dl));
	EXPECT_EQ(0, shmpool_sem_post(self->p, s));
	EXPECT_EQ(0, shmpool_sem_trywait(self->p, s));
}

/*
 * A plain semaphore's word a peer set above SHMPOOL_SEM_VALUE_MAX: post
 * refuses (-EOVERFLOW, as documented), takes go on counting down, and
 * nothing loops.
 */
TEST_F(sync, sem_hostile_value_above_max)
{
	struct shmpool_sem *s = &self->sh->sem;

	ASSERT_EQ(0, shmpool_sem_init(self->p, s, 0));
	atomic_store(&s->value, SHMPOOL_SEM_EMPTY | 5);
	EXPECT_EQ(-EOVERFLOW, shmpool_sem_post(self->p, s));
	EXPECT_EQ(0, shmpool_sem_trywait(self->p, s));
	EXPECT_EQ(SHMPOOL_SEM_EMPTY | 4, atomic_load(&s->value));
}

/* ---- a bad deadline changes nothing ------------------------------------------ */

/*
 * pthread_cond_timedwait() checks its deadline before it touches the mutex
 * (EINVAL, mutex still held, nothing unlocked in between). Ours did the
 * unlock and relock first: that clears OWNER_DIED (the "repaired" mark of
 * a mutex taken over from a dead owner) and lets another locker in with
 * the caller's invariant broken. Held with OWNER_DIED, the word must come
 * back unchanged with -EINVAL.
 */
static void cond_bad_deadline(struct __test_metadata *_metadata,
			      struct shmpool *p, struct shared *sh,
			      struct timespec dl)
{
	struct shmpool_mutex *m = &sh->mtx;
	uint32_t id = (uint32_t)shmpool_attach_id(p);

	ASSERT_EQ(0, shmpool_mutex_init(p, m));
	ASSERT_EQ(0, shmpool_cond_init(p, &sh->cnd[0]));
	forge_own_claim(p, m, 0);
	ASSERT_EQ(-EOWNERDEAD, shmpool_mutex_lock(p, m));
	EXPECT_EQ(-EINVAL, shmpool_cond_timedwait(p, &sh->cnd[0], m, &dl));
	/* still held, still marked for repair, nothing counted */
	EXPECT_EQ(id | SHMPOOL_MUTEX_OWNER_DIED, atomic_load(&m->word));
	EXPECT_EQ((uint32_t)sys_gettid(), atomic_load(&m->tid));
	EXPECT_EQ(0U, atomic_load(&sh->cnd[0].waiters));
	EXPECT_EQ(0, shmpool_mutex_unlock(p, m));
}

TEST_F(sync, cond_timedwait_nsec_too_big_leaves_mutex_alone)
{
	cond_bad_deadline(_metadata, self->p, self->sh,
			  bad_deadline_in_an_hour(1000000000L));
}

TEST_F(sync, cond_timedwait_negative_nsec_leaves_mutex_alone)
{
	cond_bad_deadline(_metadata, self->p, self->sh,
			  bad_deadline_in_an_hour(-1));
}

TEST_F(sync, cond_timedwait_negative_sec_leaves_mutex_alone)
{
	struct timespec dl = { .tv_sec = -1, .tv_nsec = 0 };

	cond_bad_deadline(_metadata, self->p, self->sh, dl);
}

/* ---- a peer that changes a word between every load and compare-exchange ---- */

/*
 * The adversary of the CAS retry loops, made deterministic: the page that
 * holds the object is read-only, so every write the call makes faults;
 * the SIGSEGV handler makes the page writable, changes the word (a peer's
 * store that lands between the call's load and its compare-exchange) and
 * sets the trap flag, so the faulting instruction runs once (and its
 * compare fails) before SIGTRAP makes the page read-only again. A loop that
 * retries for as long as the word changes never ends; a watchdog in the
 * handler stops the game after HAMMER_MS (the call then finishes) and the
 * test fails. x86-64 only (the trap flag), not under TSan (its runtime
 * defers signals and makes its own writes).
 */
#define HAMMER_MS	10000

static struct {
	char *page;
	size_t len;
	_Atomic uint32_t *word;		/* changed at every write fault */
	uint32_t a, b;			/* ... from one of these to the other */
	struct timespec give_up;
	volatile sig_atomic_t gave_up;
	volatile long faults;
	const unsigned char *step_ip;	/* the load game: where the last step was */
	long steps;
} ham;

#if defined(__x86_64__) && !defined(UNDER_TSAN)
#define HAMMER_OK	1
#else
#define HAMMER_OK	0
#endif

#define HAMMER_REQUIRE()						\
	do {								\
		if (!HAMMER_OK)						\
			SKIP(return, "needs x86-64's trap flag, and no TSan"); \
	} while (0)

#if HAMMER_OK
#define X86_TF		0x100

/*
 * A fault on the game's page: make it writable; false if it is not the
 * game's (a real crash: fault again, die) or the watchdog ended the game
 * (the page stays writable: let the call end).
 */
static bool ham_fault(int sig, siginfo_t *si)
{
	char *a = si->si_addr;
	struct timespec t;

	if (a < ham.page || a >= ham.page + ham.len) {
		signal(sig, SIG_DFL);
		return false;
	}
	mprotect(ham.page, ham.len, PROT_READ | PROT_WRITE);
	clock_gettime(CLOCK_MONOTONIC, &t);
	if (!ts_before(t, ham.give_up)) {
		ham.gave_up = 1;
		return false;
	}
	ham.faults++;
	return true;
}

static void ham_segv(int sig, siginfo_t *si, void *uc_)
{
	ucontext_t *uc = uc_;
	uint32_t v;

	if (!ham_fault(sig, si))
		return;
	v = atomic_load(ham.word);
	atomic_store(ham.word, v == ham.a ? ham.b : ham.a);
	uc->uc_mcontext.gregs[REG_EFL] |= X86_TF;
}

static void ham_trap(int sig, siginfo_t *si, void *uc_)
{
	ucontext_t *uc = uc_;

	(void)sig;
	(void)si;
	uc->uc_mcontext.gregs[REG_EFL] &= ~(greg_t)X86_TF;
	if (!ham.gave_up)
		mprotect(ham.page, ham.len, PROT_READ);
}

/*
 * The same game for a call that only reads the word and passes it to the
 * kernel's compare (a doorbell wait): the page is PROT_NONE, so the call's
 * load faults; the handler makes it readable, with the word at @a, and
 * single-steps from there. After the load (the first step) the word flips
 * to @b: the peer's store lands between our load and the kernel's compare.
 * The steps go on until the system call has returned (the instruction
 * just stepped was a syscall); then the word flips back to @a and the page
 * becomes PROT_NONE again, ready for the call's next load. A wait that
 * retries for as long as the word it finds differs from the one it loaded
 * never ends; the watchdog then leaves the word at @b and the page readable.
 */
static void ham_segv_load(int sig, siginfo_t *si, void *uc_)
{
	ucontext_t *uc = uc_;

	if (!ham_fault(sig, si)) {
		if (ham.gave_up)	/* the word changed for good: let it end */
			atomic_store(ham.word, ham.b);
		return;
	}
	atomic_store(ham.word, ham.a);
	ham.steps = 0;
	ham.step_ip = (const unsigned char *)uc->uc_mcontext.gregs[REG_RIP];
	uc->uc_mcontext.gregs[REG_EFL] |= X86_TF;
}

static void ham_trap_load(int sig, siginfo_t *si, void *uc_)
{
	ucontext_t *uc = uc_;
	const unsigned char *done = ham.step_ip;	/* the instruction just run */

	(void)sig;
	(void)si;
	ham.step_ip = (const unsigned char *)uc->uc_mcontext.gregs[REG_RIP];
	if (ham.steps++ == 0) {
		atomic_store(ham.word, ham.b);	/* after our load */
		return;
	}
	if (done[0] != 0x0f || done[1] != 0x05)	/* not a syscall: go on */
		return;
	atomic_store(ham.word, ham.a);		/* after the kernel's compare */
	uc->uc_mcontext.gregs[REG_EFL] &= ~(greg_t)X86_TF;
	mprotect(ham.page, ham.len, PROT_NONE);
}
#endif

/*
 * Start the game on @word (in page 2 of @p), which holds @a, against @b.
 * The test said HAMMER_REQUIRE() first. @loads: the load game above.
 */
static void hammer_game(struct __test_metadata *_metadata, struct shmpool *p,
			_Atomic uint32_t *word, uint32_t a, uint32_t b,
			bool loads)
{
#if HAMMER_OK
	struct sigaction sa = { .sa_flags = SA_SIGINFO | SA_NODEFER };

	ham.page = (char *)shmpool_base(p) + 2 * page_size();
	ham.len = page_size();
	ASSERT_TRUE((char *)word >= ham.page &&
		    (char *)word < ham.page + ham.len);
	ham.word = word;
	ham.a = a;
	ham.b = b;
	ham.gave_up = 0;
	ham.faults = 0;
	/*
	 * In the QEMU lanes a trapped compare-exchange costs milliseconds
	 * (the debug lane: 5 ms, so the 2,148 a sem_timedwait() fails
	 * before it looks at its deadline took 11 s): a longer watchdog.
	 */
	ham.give_up = ts_add_ms(now(CLOCK_MONOTONIC),
				(long)(HAMMER_MS * (in_vm_lane() ? 6 : 1) * scale()));
	atomic_store(word, a);
	sa.sa_sigaction = loads ? ham_segv_load : ham_segv;
	ASSERT_EQ(0, sigaction(SIGSEGV, &sa, NULL));
	sa.sa_sigaction = loads ? ham_trap_load : ham_trap;
	ASSERT_EQ(0, sigaction(SIGTRAP, &sa, NULL));
	ASSERT_EQ(0, mprotect(ham.page, ham.len, loads ? PROT_NONE : PROT_READ));
#else
	(void)p;
	(void)word;
	(void)a;
	(void)b;
	(void)loads;
	ASSERT_TRUE(HAMMER_OK);
#endif
}

static void hammer_start(struct __test_metadata *_metadata, struct shmpool *p,
			 _Atomic uint32_t *word, uint32_t a, uint32_t b)
{
	hammer_game(_metadata, p, word, a, b, false);
}

/* Stop the game; the call under test must have ended it (not the watchdog). */
static void hammer_stop(struct __test_metadata *_metadata)
{
	ASSERT_EQ(0, mprotect(ham.page, ham.len, PROT_READ | PROT_WRITE));
	signal(SIGSEGV, SIG_DFL);
	signal(SIGTRAP, SIG_DFL);
	TH_LOG("%ld compare-exchanges failed", ham.faults);
	EXPECT_EQ(0, ham.gave_up);
	EXPECT_GT(ham.faults, 0);
}

static void *page2(struct shmpool *p)
{
	return (char *)shmpool_base(p) + 2 * page_size();
}

/* trywait on a semaphore whose value a peer keeps changing: -EAGAIN soon */
TEST_F_TIMEOUT(sync, sem_trywait_value_keeps_changing, 180)
{
	struct shmpool_sem *s = page2(self->p);
	int ret;

	HAMMER_REQUIRE();
	ASSERT_EQ(0, shmpool_sem_init(self->p, s, 1));
	hammer_start(_metadata, self->p, &s->value, 1, 2);
	ret = shmpool_sem_trywait(self->p, s);
	hammer_stop(_metadata);
	EXPECT_EQ(-EAGAIN, ret);
}

/* post on a semaphore whose value a peer keeps changing: -EBUSY soon */
TEST_F_TIMEOUT(sync, sem_post_value_keeps_changing, 180)
{
	struct shmpool_sem *s = page2(self->p);
	int ret;

	HAMMER_REQUIRE();
	ASSERT_EQ(0, shmpool_sem_init(self->p, s, 1));
	hammer_start(_metadata, self->p, &s->value, 1, 2);
	ret = shmpool_sem_post(self->p, s);
	hammer_stop(_metadata);
	EXPECT_EQ(-EBUSY, ret);
}

/* timedwait on one: -ETIMEDOUT by its deadline, however often it changes */
TEST_F_TIMEOUT(sync, sem_timedwait_value_keeps_changing, 180)
{
	struct shmpool_sem *s = page2(self->p);
	struct timespec dl;
	int ret;

	HAMMER_REQUIRE();
	ASSERT_EQ(0, shmpool_sem_init(self->p, s, 1));
	hammer_start(_metadata, self->p, &s->value, 1, 2);
	dl = ts_add_ms(now(CLOCK_MONOTONIC), 200);
	ret = shmpool_sem_timedwait(self->p, s, &dl);
	hammer_stop(_metadata);
	EXPECT_EQ(-ETIMEDOUT, ret);
	EXPECT_EQ(0U, atomic_load(&s->waiters));
}

/*
 * signal (and wake) an event whose word a peer keeps changing: returns
 * soon, having woken the sleepers (none here) without its step
 */
TEST_F_TIMEOUT(sync, event_wake_word_keeps_changing, 180)
{
	struct shmpool_event *ev = page2(self->p);
	int ret;

	HAMMER_REQUIRE();
	ASSERT_EQ(0, shmpool_event_init(self->p, ev));
	hammer_start(_metadata, self->p, &ev->word,
		     2 | SHMPOOL_EVENT_NEED_WAKEUP, 4 | SHMPOOL_EVENT_NEED_WAKEUP);
	ret = shmpool_event_signal(self->p, ev);
	hammer_stop(_metadata);
	EXPECT_EQ(0, ret);
}

/*
 * wait on an event whose word a peer flips between our load and the
 * doorbell's compare, and back after it: the doorbell says "changed"
 * (-EAGAIN), and the word has moved since the key, so it was signalled: 0
 * at once, not a retry for as long as the peer plays (which no deadline
 * ends: the doorbell compares before it looks at the time)
 */
TEST_F_TIMEOUT(sync, event_timedwait_word_flips_under_doorbell, 180)
{
	struct shmpool_event *ev = page2(self->p);
	uint32_t key = 2 | SHMPOOL_EVENT_NEED_WAKEUP;
	struct timespec dl;
	int ret;

	HAMMER_REQUIRE();
	ASSERT_EQ(0, shmpool_event_init(self->p, ev));
	hammer_game(_metadata, self->p, &ev->word, key,
		    4 | SHMPOOL_EVENT_NEED_WAKEUP, true);
	dl = ts_add_ms(now(CLOCK_MONOTONIC), 200);
	ret = shmpool_event_timedwait(self->p, ev, key, &dl);
	hammer_stop(_metadata);
	EXPECT_EQ(0, ret);
}

/* the same without a deadline (shmpool_event_wait()) */
TEST_F_TIMEOUT(sync, event_wait_word_flips_under_doorbell, 180)
{
	struct shmpool_event *ev = page2(self->p);
	uint32_t key = 2 | SHMPOOL_EVENT_NEED_WAKEUP;
	int ret;

	HAMMER_REQUIRE();
	ASSERT_EQ(0, shmpool_event_init(self->p, ev));
	hammer_game(_metadata, self->p, &ev->word, key,
		    4 | SHMPOOL_EVENT_NEED_WAKEUP, true);
	ret = shmpool_event_wait(self->p, ev, key);
	hammer_stop(_metadata);
	EXPECT_EQ(0, ret);
}

/*
 * timedlock on a mutex whose word a peer keeps moving between two live
 * owners (so it never sleeps: the word is never what it last saw):
 * -ETIMEDOUT by its deadline, and not held.
 */
TEST_F_TIMEOUT(sync, mutex_timedlock_owner_keeps_changing, 180)
{
	struct shmpool_mutex *m = page2(self->p);
	struct timespec dl;
	uint32_t a, b;
	int i, ret;

	HAMMER_REQUIRE();
#ifdef SHMPOOL_TEST_THREADS
	SKIP(return, "needs owners in other processes");
#endif
	for (i = 0; i < 2; i++)
		ASSERT_EQ(0, task_start(&self->t[i], attach_and_wait,
					&self->c[i]));
	ASSERT_EQ(0, wait_count(&self->sh->ready, 2, 10000));
	a = atomic_load(&self->sh->aid[0]);
	b = atomic_load(&self->sh->aid[1]);
	ASSERT_NE(a, b);
	ASSERT_EQ(0, shmpool_mutex_init(self->p, m));
	hammer_start(_metadata, self->p, &m->word, a, b);
	dl = ts_add_ms(now(CLOCK_MONOTONIC), 200);
	ret = shmpool_mutex_timedlock(self->p, m, &dl);
	hammer_stop(_metadata);
	EXPECT_EQ(-ETIMEDOUT, ret);
	EXPECT_NE((uint32_t)shmpool_attach_id(self->p),
		  atomic_load(&m->word) & SHMPOOL_MUTEX_OWNER_MASK);
	atomic_store(&self->sh->go, 1);
	for (i = 0; i < 2; i++)
		EXPECT_EQ(0, task_join(&self->t[i]));
}

/* ---- peers that keep dying while we wait --------------------------------- */

/*
 * The other way a peer keeps a blocking call awake: on the device, a sleep
 * that also waits for deaths (SHMPOOL_WAIT_DEATH) returns -EOWNERDEAD
 * before the module looks at the deadline whenever the pool's death_seq
 * moved, and any attachment's end moves it: a peer that opens and closes
 * writable handles, or ATTACHes and DETACHes, is a death every time. The
 * game makes it deterministic: the call runs single-stepped (trap flag),
 * and just before each syscall instruction that is a WAIT_DEATH ioctl the
 * SIGTRAP handler has a peer process DETACH (and ATTACH anew) and waits
 * until it did, so that sleep always finds death_seq moved. A loop that
 * looks again after every death without looking at its deadline never
 * ends; the watchdog stops the deaths after HAMMER_MS (the call then times
 * out) and the test fails. x86-64 only, not under TSan, as the games above.
 */
struct dpeer {
	pid_t pid;
	int req;	/* a byte: die (and attach anew); EOF: exit */
	int ack;	/* the id at start, then a byte per death */
	uint32_t id;	/* its first attachment's id */
};

static struct {
	struct dpeer *peer;
	struct timespec give_up;
	volatile sig_atomic_t gave_up;
	volatile long deaths;
	long max;			/* stop after this many deaths */
	const struct timespec *hold;	/* after a death, wait until then */
	struct timespec *dl;		/* the call's deadline, set at its first sleep */
	long dl_ms;			/* to dg_deadline_ms() from then */
	volatile sig_atomic_t slept;	/* that sleep came */
} dg;

/* a forked child: raw ATTACH and DETACH on @fd, nothing of the library */
static void dpeer_main(int fd, int req, int ack)
{
	struct shmpool_attach a = { .size = sizeof(a) };
	struct shmpool_detach d = { .size = sizeof(d) };
	char c;

	if (ioctl(fd, SHMPOOL_IOC_ATTACH, &a) ||
	    write(ack, &a.id, sizeof(a.id)) != sizeof(a.id))
		_exit(2);
	while (read(req, &c, 1) == 1) {
		d.id = a.id;
		/* its only ATTACH undone: the attachment ends, death_seq moves */
		if (ioctl(fd, SHMPOOL_IOC_DETACH, &d) != 0)
			_exit(3);
		a = (struct shmpool_attach) { .size = sizeof(a) };
		if (ioctl(fd, SHMPOOL_IOC_ATTACH, &a) || write(ack, &c, 1) != 1)
			_exit(4);
	}
	_exit(0);
}

static void dpeer_start(struct __test_metadata *_metadata, struct shmpool *p,
			struct dpeer *d)
{
	int req[2], ack[2];

	ASSERT_EQ(0, pipe2(req, O_CLOEXEC));
	ASSERT_EQ(0, pipe2(ack, O_CLOEXEC));
	d->pid = fork();
	ASSERT_LE(0, d->pid);
	if (!d->pid) {
		close(req[1]);
		close(ack[0]);
		dpeer_main(shmpool_fd(p), req[0], ack[1]);
	}
	close(req[0]);
	close(ack[1]);
	d->req = req[1];
	d->ack = ack[0];
	ASSERT_EQ((ssize_t)sizeof(d->id), read(d->ack, &d->id, sizeof(d->id)));
	ASSERT_NE(0U, d->id);
}

static void dpeer_stop(struct __test_metadata *_metadata, struct dpeer *d)
{
	int st;

	close(d->req);
	close(d->ack);
	ASSERT_EQ(d->pid, waitpid(d->pid, &st, 0));
	EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* VM lanes single-step slowly (under TCG): longer budgets there */
static long dg_ms(long ms)
{
	return (long)(ms * (in_vm_lane() ? 6 : 1) * scale());
}

/*
 * The deadline: 1 s from the call's first sleep (dg_trap() sets it then),
 * during which the peers keep dying; the call waits it out. Before that
 * sleep, the call runs against the watchdog's time (HAMMER_MS): a ring
 * spins first, seconds single-stepped under TCG, more on a busy host, and
 * a deadline from the call's start once ran out before the first sleep
 * (no death at all). Deaths come at tens a second in the QEMU lanes.
 */
#define DEATH_DEADLINE_MS	1000
#define DEATH_MARGIN_MS		2000

#if HAMMER_OK
static long dg_deadline_ms(void)
{
	return (long)(DEATH_DEADLINE_MS * scale());
}

/* Kill a peer now (async-signal-safe: two system calls). */
static bool dpeer_die(struct dpeer *d)
{
	char c = 'd';

	return write(d->req, &c, 1) == 1 && read(d->ack, &c, 1) == 1;
}

static void dg_trap(int sig, siginfo_t *si, void *uc_)
{
	ucontext_t *uc = uc_;
	greg_t *g = uc->uc_mcontext.gregs;
	const unsigned char *ip = (const unsigned char *)g[REG_RIP];
	const struct shmpool_wait *w;
	struct timespec t;

	(void)sig;
	(void)si;
	/* the next instruction: ioctl(fd, SHMPOOL_IOC_WAIT, w)? */
	if (ip[0] != 0x0f || ip[1] != 0x05 || g[REG_RAX] != SYS_ioctl ||
	    (unsigned long)g[REG_RSI] != (unsigned long)SHMPOOL_IOC_WAIT)
		return;
	w = (const struct shmpool_wait *)g[REG_RDX];
	if (!(w->flags & SHMPOOL_WAIT_DEATH))
		return;
	clock_gettime(CLOCK_MONOTONIC, &t);
	if (!dg.slept) {
		/*
		 * The call's first sleep: its deadline starts now, in the
		 * caller's timespec (the library reads it there at each
		 * look) and in this WAIT's copy. What came before (a ring
		 * spins first: seconds, single-stepped under TCG, more on a
		 * busy host) does not eat into the time the peers die in.
		 */
		struct shmpool_wait *ww = (struct shmpool_wait *)w;

		dg.slept = 1;
		*dg.dl = ts_add_ms(t, dg.dl_ms);
		if (ww->flags & SHMPOOL_WAIT_DEADLINE)
			ww->deadline_ns = (uint64_t)dg.dl->tv_sec * 1000000000ULL +
					  (uint64_t)dg.dl->tv_nsec;
	}
	if (!ts_before(t, dg.give_up) || !dpeer_die(dg.peer)) {
		dg.gave_up = 1;		/* no more deaths: let the call end */
		g[REG_EFL] &= ~(greg_t)X86_TF;
		return;
	}
	if (++dg.deaths >= dg.max)	/* the game is over: run freely */
		g[REG_EFL] &= ~(greg_t)X86_TF;
	/* the call then learns of the death only after its deadline */
	while (dg.hold && ts_before(t, *dg.hold))
		clock_gettime(CLOCK_MONOTONIC, &t);
}

/* the trap flag on/off in the caller (past the red zone, for pushfq) */
static inline void dg_step(bool on)
{
	if (on)
		__asm__ volatile("lea -128(%%rsp), %%rsp\n\tpushfq\n\t"
				 "orq $0x100, (%%rsp)\n\tpopfq\n\t"
				 "lea 128(%%rsp), %%rsp" ::: "memory", "cc");
	else
		__asm__ volatile("lea -128(%%rsp), %%rsp\n\tpushfq\n\t"
				 "andq $~0x100, (%%rsp)\n\tpopfq\n\t"
				 "lea 128(%%rsp), %%rsp" ::: "memory", "cc");
}
#endif


/*
 * The death game against peer @d, around one call with deadline @dl
 * (DEATH_DEADLINE_MS from its first sleep, scaled): DEATH_GAME(..., ret =
 * call(..., &dl)). At most @max deaths; @hold: after each, wait until the
 * deadline passed. Checks that the call slept and deaths came, that the
 * watchdog did not have to stop them, and that the call returned within
 * DEATH_MARGIN_MS of its deadline.
 */
#define DEATH_GAME(_d, _max, _hold, _dl, _call)				\
	do {								\
		struct timespec _t0, _t1;				\
									\
		_t0 = now(CLOCK_MONOTONIC);				\
		/* until the first sleep: the watchdog's time */	\
		_dl = ts_add_ms(_t0, dg_ms(HAMMER_MS));			\
		death_game_start(_metadata, _d, _max, &(_dl), _hold);	\
		death_step(true);					\
		_call;							\
		death_step(false);					\
		_t1 = now(CLOCK_MONOTONIC);				\
		death_game_stop(_metadata, ts_ms(_t1, _dl));		\
	} while (0)

static void death_step(bool on)
{
#if HAMMER_OK
	dg_step(on);
#else
	(void)on;
#endif
}

static void death_game_start(struct __test_metadata *_metadata,
			     struct dpeer *d, long max, struct timespec *dl,
			     bool hold)
{
#if HAMMER_OK
	struct sigaction sa = { .sa_flags = SA_SIGINFO,
				.sa_sigaction = dg_trap };

	dg.peer = d;
	dg.gave_up = 0;
	dg.deaths = 0;
	dg.max = max;
	dg.dl = dl;
	dg.dl_ms = dg_deadline_ms();
	dg.slept = 0;
	dg.hold = hold ? dl : NULL;
	dg.give_up = ts_add_ms(now(CLOCK_MONOTONIC), dg_ms(HAMMER_MS));
	ASSERT_EQ(0, sigaction(SIGTRAP, &sa, NULL));
#else
	(void)d;
	(void)max;
	(void)dl;
	(void)hold;
	ASSERT_TRUE(HAMMER_OK);
#endif
}

static void death_game_stop(struct __test_metadata *_metadata, long late_ms)
{
	signal(SIGTRAP, SIG_DFL);
	TH_LOG("%ld deaths, returned %ld ms after the deadline", dg.deaths,
	       late_ms);
	EXPECT_TRUE(dg.slept);
	EXPECT_EQ(0, dg.gave_up);
	EXPECT_GT(dg.deaths, 0);
	EXPECT_GT(dg_ms(DEATH_MARGIN_MS), late_ms);
}

#define DEATH_REQUIRE()							\
	do {								\
		HAMMER_REQUIRE();					\
		if (variant->backend != SHMPOOL_BACKEND_DEVICE)		\
			SKIP(return, "deaths wake sleepers on the device " \
			     "backend only (SHMPOOL_WAIT_DEATH)");	\
		/* each step costs ms under KASAN; the loops are the library's */ \
		if (lane_is_debug())					\
			SKIP(return, "debug lane: the 6.1, 6.12 and rt " \
			     "lanes play the death games");		\
	} while (0)

/*
 * timedlock on a mutex a live peer holds, while another keeps dying. With
 * SHMPOOL_FEAT_WAIT_OWNER the dying peer's ends do not end the sleep (it
 * watches the owner only): one death, then the deadline; the game bites
 * on older modules.
 */
TEST_F_TIMEOUT(sync, mutex_timedlock_peers_keep_dying, 180)
{
	struct shmpool_mutex *m = page2(self->p);
	struct dpeer owner, dying;
	struct timespec dl;
	int ret;

	DEATH_REQUIRE();
	dpeer_start(_metadata, self->p, &owner);
	dpeer_start(_metadata, self->p, &dying);
	ASSERT_EQ(0, shmpool_mutex_init(self->p, m));
	atomic_store(&m->word, owner.id);
	DEATH_GAME(&dying, LONG_MAX, false, dl,
		   ret = shmpool_mutex_timedlock(self->p, m, &dl));
	EXPECT_EQ(-ETIMEDOUT, ret);
	EXPECT_EQ(owner.id, atomic_load(&m->word) & SHMPOOL_MUTEX_OWNER_MASK);
	dpeer_stop(_metadata, &dying);
	dpeer_stop(_metadata, &owner);
}

/* cond_timedwait that nobody signals, while a peer keeps dying */
TEST_F_TIMEOUT(sync, cond_timedwait_peers_keep_dying, 180)
{
	struct shmpool_mutex *m = page2(self->p);
	struct shmpool_cond *c = (struct shmpool_cond *)(m + 1);
	struct dpeer dying;
	struct timespec dl;
	int ret;

	DEATH_REQUIRE();
	dpeer_start(_metadata, self->p, &dying);
	ASSERT_EQ(0, shmpool_mutex_init(self->p, m));
	ASSERT_EQ(0, shmpool_cond_init(self->p, c));
	ASSERT_EQ(0, shmpool_mutex_lock(self->p, m));
	DEATH_GAME(&dying, LONG_MAX, false, dl,
		   ret = shmpool_cond_timedwait(self->p, c, m, &dl));
	EXPECT_EQ(-ETIMEDOUT, ret);
	EXPECT_EQ(0, shmpool_mutex_unlock(self->p, m));
	dpeer_stop(_metadata, &dying);
}

/*
 * timedwait on an empty robust semaphore that a live peer emptied, while
 * another keeps dying. As for the mutex: with SHMPOOL_FEAT_WAIT_OWNER the
 * dying peer's ends do not end the sleep (it watches the taker only);
 * the game bites on older modules, and on a robust semaphore made by an
 * older library (the second round: its taker in @last_wait).
 */
TEST_F_TIMEOUT(sync, robust_sem_timedwait_peers_keep_dying, 180)
{
	struct shmpool_sem *s = page2(self->p);
	struct dpeer taker, dying;
	struct timespec dl;
	int old, ret;

	DEATH_REQUIRE();
	dpeer_start(_metadata, self->p, &taker);
	dpeer_start(_metadata, self->p, &dying);
	for (old = 0; old < 2; old++) {
		ASSERT_EQ(0, shmpool_sem_init_robust(self->p, s, 0));
		if (old) {
			s->flags = SHMPOOL_SEM_ROBUST;
			atomic_store(&s->value, 0);
			atomic_store(&s->last_wait, taker.id);
		} else {
			atomic_store(&s->value, SHMPOOL_SEM_EMPTY | taker.id);
		}
		DEATH_GAME(&dying, LONG_MAX, false, dl,
			   ret = shmpool_sem_timedwait(self->p, s, &dl));
		EXPECT_EQ(-ETIMEDOUT, ret);
		EXPECT_EQ(0U, atomic_load(&s->waiters));
	}
	dpeer_stop(_metadata, &dying);
	dpeer_stop(_metadata, &taker);
}

/*
 * The mutex's owner dies while we sleep, and we learn of it only after our
 * deadline (the module reports a death before it looks at the time): the
 * owner is dead, so the lock is ours (-EOWNERDEAD), as on the first pass
 * and as pthread_mutex_timedlock() does, not -ETIMEDOUT with the lock
 * left to a dead owner
 */
TEST_F_TIMEOUT(sync, mutex_timedlock_owner_dies_at_deadline, 180)
{
	struct shmpool_mutex *m = page2(self->p);
	struct dpeer dying;
	struct timespec dl;
	int ret;

	DEATH_REQUIRE();
	dpeer_start(_metadata, self->p, &dying);
	ASSERT_EQ(0, shmpool_mutex_init(self->p, m));
	atomic_store(&m->word, dying.id);
	DEATH_GAME(&dying, 1, true, dl,
		   ret = shmpool_mutex_timedlock(self->p, m, &dl));
	EXPECT_EQ(-EOWNERDEAD, ret);
	if (ret == -EOWNERDEAD)
		EXPECT_EQ(0, shmpool_mutex_unlock(self->p, m));
	dpeer_stop(_metadata, &dying);
}

/* the same for a robust semaphore whose last taker dies */
TEST_F_TIMEOUT(sync, robust_sem_timedwait_taker_dies_at_deadline, 180)
{
	struct shmpool_sem *s = page2(self->p);
	struct dpeer dying;
	struct timespec dl;
	int ret;

	DEATH_REQUIRE();
	dpeer_start(_metadata, self->p, &dying);
	ASSERT_EQ(0, shmpool_sem_init_robust(self->p, s, 0));
	atomic_store(&s->value, SHMPOOL_SEM_EMPTY | dying.id);
	atomic_store(&s->last_wait, dying.id);
	DEATH_GAME(&dying, 1, true, dl,
		   ret = shmpool_sem_timedwait(self->p, s, &dl));
	EXPECT_EQ(-EOWNERDEAD, ret);
	EXPECT_EQ(SHMPOOL_SEM_EMPTY, atomic_load(&s->value));
	EXPECT_EQ(0U, atomic_load(&s->last_wait));
	dpeer_stop(_metadata, &dying);
}

/* a pool with a heap, for the structures that live in one */
static struct shmpool_heap *death_heap(struct __test_metadata *_metadata,
				       unsigned int backend,
				       struct shmpool **q)
{
	struct shmpool_heap *h = NULL;

	EXPECT_EQ(0, shmpool_create_anon(1 << 20, backend, q));
	if (*q)
		EXPECT_EQ(0, shmpool_heap_open(*q, 0, &h));
	return h;
}

static void death_heap_close(struct shmpool *q, struct shmpool_heap *h)
{
	shmpool_heap_close(h);
	shmpool_close(q);
}

/* a ring's blocking dequeue (@full 0, on empty) or enqueue (1, on full) */
static void ring_wait_peers_keep_dying(struct __test_metadata *_metadata,
				       unsigned int backend, int full)
{
	uint64_t e[8] = { 0 };
	struct shmpool_ring *r;
	struct shmpool_heap *h;
	struct shmpool *q = NULL;
	struct dpeer dying;
	struct timespec dl;
	int ret;

	h = death_heap(_metadata, backend, &q);
	ASSERT_NE(NULL, h);
	ASSERT_EQ(1, shmpool_ring_create(h, "dring", SHMPOOL_RING_SPSC, 8, 8,
					 0, &r));
	if (full)
		ASSERT_EQ(8, shmpool_ring_enqueue_wait(r, e, 8, 0, NULL));
	dpeer_start(_metadata, q, &dying);
	DEATH_GAME(&dying, LONG_MAX, false, dl, ret = full ?
		   shmpool_ring_enqueue_wait(r, e, 1, 0, &dl) :
		   shmpool_ring_dequeue_wait(r, e, 1, 0, &dl));
	EXPECT_EQ(-ETIMEDOUT, ret);
	dpeer_stop(_metadata, &dying);
	shmpool_ring_close(r);
	death_heap_close(q, h);
}

TEST_F_TIMEOUT(sync, ring_dequeue_wait_peers_keep_dying, 180)
{
	DEATH_REQUIRE();
	ring_wait_peers_keep_dying(_metadata, variant->backend, 0);
}

TEST_F_TIMEOUT(sync, ring_enqueue_wait_peers_keep_dying, 180)
{
	DEATH_REQUIRE();
	ring_wait_peers_keep_dying(_metadata, variant->backend, 1);
}

/* config_wait for a version nobody publishes, while a peer keeps dying */
TEST_F_TIMEOUT(sync, config_wait_peers_keep_dying, 180)
{
	struct shmpool_config *c;
	struct shmpool_heap *h;
	struct shmpool *q = NULL;
	struct dpeer dying;
	struct timespec dl;
	int ret;

	DEATH_REQUIRE();
	h = death_heap(_metadata, variant->backend, &q);
	ASSERT_NE(NULL, h);
	ASSERT_LE(0, shmpool_config_open(h, "dcfg", 64,
					 SHMPOOL_CONFIG_CREATE, &c));
	dpeer_start(_metadata, q, &dying);
	DEATH_GAME(&dying, LONG_MAX, false, dl,
		   ret = shmpool_config_wait(c, shmpool_config_version(c), &dl,
					     NULL));
	EXPECT_EQ(-ETIMEDOUT, ret);
	dpeer_stop(_metadata, &dying);
	shmpool_config_close(c);
	death_heap_close(q, h);
}

/* ---- killed at every instruction ------------------------------------------- */

/*
 * A victim process single-stepped through one lock call and SIGKILLed
 * after k instructions, for every k (lib_test.h, KILL_AT_EVERY_STEP).
 * What "Owner death" above promises the survivor (this process), at
 * every kill point: its timedlock returns by a deadline, 0 if the word
 * names nobody and -EOWNERDEAD if it names the victim (the victim had
 * taken the lock: the word is the only record of an owner), never
 * anything else, and the mutex works normally afterwards.
 */
enum lk_op {
	LK_LOCK,		/* shmpool_mutex_lock() of a free mutex */
	LK_LOCK_BUSY,		/* of a mutex this process holds, sleepers queued */
	LK_LOCK_DEAD,		/* of a mutex a dead process holds: the takeover */
	LK_UNLOCK,		/* shmpool_mutex_unlock() */
	LK_SEM_WAIT,		/* robust shmpool_sem_timedwait() of a unit */
	LK_SEM_POST,		/* robust shmpool_sem_post() of the unit taken */
	LK_SEM_WAIT_BUSY,	/* of the unit this process holds: sleeps, then takes it */
};

/* the two that sleep until we let them go (lk_release()) */
static bool lk_sleeps(enum lk_op op)
{
	return op == LK_LOCK_BUSY || op == LK_SEM_WAIT_BUSY;
}

static bool lk_sem(enum lk_op op)
{
	return op == LK_SEM_WAIT || op == LK_SEM_POST || op == LK_SEM_WAIT_BUSY;
}

struct lk {
	struct shmpool *p;
	struct shared *sh;
	struct shmpool_mutex *m;
	enum lk_op op;
	bool held;		/* lk_sleeps(): we hold m or the unit until the victim sleeps */
	long eownerdead, released;
	bool after_wake;	/* lk_sleeps(): k counts the steps after its sleep */
	long woken_kills;	/* kill points past the victim's wake-up */
};

/* the victim: attach (unstepped), set up, stop, make the call */
static int lk_victim(void *arg)
{
	struct lk *s = arg;
	int id = shmpool_attach_id(s->p);

	if (id <= 0)
		return 2;
	atomic_store(&s->sh->aid[0], (uint32_t)id);
	if (s->op == LK_UNLOCK && shmpool_mutex_lock(s->p, s->m))
		return 3;
	if (s->op == LK_SEM_POST && shmpool_sem_trywait(s->p, &s->sh->sem))
		return 3;
	if (ptrace(PTRACE_TRACEME, 0, NULL, NULL))
		return 4;
	raise(SIGSTOP);
	switch (s->op) {
	case LK_LOCK:
	case LK_LOCK_BUSY:
		return shmpool_mutex_lock(s->p, s->m) ? 5 : 0;
	case LK_LOCK_DEAD:
		return shmpool_mutex_lock(s->p, s->m) == -EOWNERDEAD ? 0 : 5;
	case LK_UNLOCK:
		return shmpool_mutex_unlock(s->p, s->m) ? 5 : 0;
	case LK_SEM_WAIT:
	case LK_SEM_WAIT_BUSY:
		return shmpool_sem_wait(s->p, &s->sh->sem) ? 5 : 0;
	case LK_SEM_POST:
		return shmpool_sem_post(s->p, &s->sh->sem) ? 5 : 0;
	}
	return 6;
}

/* a process that locks the mutex and ends holding it */
static int lk_die_holding(void *arg)
{
	struct lk *s = arg;

	return shmpool_mutex_lock(s->p, s->m) ? 1 : 0;
}

/* the victim sleeps behind us: let it have the mutex, or the unit */
static void lk_release(void *arg)
{
	struct lk *s = arg;

	if (s->held && !(lk_sem(s->op) ? shmpool_sem_post(s->p, &s->sh->sem) :
			 shmpool_mutex_unlock(s->p, s->m))) {
		s->held = false;
		s->released++;
	}
}


/*
 * The semaphore: 0 with a unit, or -EOWNERDEAD. The victim was the only
 * taker of the only unit: empty, it died holding it, at whatever step the
 * kill came, and the waiter is told (it posts the unit back). Before the
 * take and its record were one store, a victim killed between its take
 * and the store to @last_wait was not seen: the waiter timed out.
 */
static int lk_sem_after(struct __test_metadata *_metadata, struct lk *s, long k,
			uint32_t victim)
{
	uint32_t v = atomic_load(&s->sh->sem.value), lw = atomic_load(&s->sh->sem.last_wait);
	struct timespec dl;
	int ret, want;

	STEP_CHECK(sem_units(v) <= 1, "value %#x", v);
	/* empty: the victim took the unit, and the word says so */
	STEP_CHECK(sem_units(v) || (v & SHMPOOL_SEM_TAKER_MASK) == victim,
		   "value %#x: empty, but not the victim's (%u)", v, victim);
	want = sem_units(v) ? 0 : -EOWNERDEAD;
	dl = ts_add_ms(now(CLOCK_MONOTONIC), 3000);
	ret = shmpool_sem_timedwait(s->p, &s->sh->sem, &dl);
	STEP_CHECK(ret == want, "value %#x, last taker %u, the victim %u: %d, wanted %d",
		 v, lw, victim, ret, want);
	if (ret == -EOWNERDEAD)
		s->eownerdead++;
	if (ret) {	/* the dead one held the unit: it is ours to post back */
		STEP_CHECK(!shmpool_sem_post(s->p, &s->sh->sem), "post");
		STEP_CHECK(!shmpool_sem_trywait(s->p, &s->sh->sem), "trywait");
	}
	STEP_CHECK(!shmpool_sem_post(s->p, &s->sh->sem), "post");
	STEP_CHECK(atomic_load(&s->sh->sem.value) == 1, "value %u",
		 atomic_load(&s->sh->sem.value));
	return 0;
}

/* One kill point: 1 checked, 0 the call ended before step k, -1 failed (logged). */
static int lk_killed_at(struct __test_metadata *_metadata, struct lk *s, long k)
{
	struct timespec dl;
	uint32_t w, victim;
	int killed, ret, want, woken = 0;

	atomic_store(&s->sh->aid[0], 0);
	if (lk_sem(s->op)) {
		STEP_CHECK(!shmpool_sem_init_robust(s->p, &s->sh->sem, 1), "sem init");
	} else {
		STEP_CHECK(!shmpool_mutex_init(s->p, s->m), "init");
	}
	if (s->op == LK_LOCK_DEAD) {
		struct task t;

		STEP_CHECK(!task_start(&t, lk_die_holding, s) && !task_join(&t),
			   "the first owner failed");
		/*
		 * As if a sleeper had queued before it died: the victim skips
		 * its spin (100 reads of a held word: every kill point there
		 * is the same as before the call) and goes to the takeover.
		 */
		atomic_fetch_or(&s->m->word, SHMPOOL_MUTEX_WAITERS);
	}
	if (s->op == LK_LOCK_BUSY) {
		STEP_CHECK(!shmpool_mutex_lock(s->p, s->m), "lock");
		/* as if others slept already: the victim queues without its spin */
		atomic_fetch_or(&s->m->word, SHMPOOL_MUTEX_WAITERS);
		s->held = true;
	}
	if (s->op == LK_SEM_WAIT_BUSY) {	/* empty, its word naming us */
		STEP_CHECK(!shmpool_sem_trywait(s->p, &s->sh->sem), "trywait");
		s->held = true;
	}
	if (s->after_wake) {
		killed = step_and_kill_after_wake(lk_victim, s, k, lk_release, s);
		woken = 1;
	} else {
		killed = step_and_kill_waking(lk_victim, s, k,
					      lk_sleeps(s->op) ? lk_release : NULL, s,
					      &woken);
	}
	STEP_CHECK(killed >= 0, "the victim failed");
	if (woken && killed)
		s->woken_kills++;
	victim = atomic_load(&s->sh->aid[0]);
	STEP_CHECK(victim, "the victim did not attach");
	if (lk_sem(s->op)) {
		/* killed before it slept: the unit is still ours */
		if (s->held) {
			STEP_CHECK(!shmpool_sem_post(s->p, &s->sh->sem), "post");
			s->held = false;
		}
		return lk_sem_after(_metadata, s, k, victim) ? -1 : killed;
	}
	if (s->held) {	/* killed before it slept: it never had the lock */
		STEP_CHECK(!shmpool_mutex_unlock(s->p, s->m), "unlock");
		s->held = false;
	}
	w = atomic_load(&s->m->word);
	STEP_CHECK(!(w & SHMPOOL_MUTEX_OWNER_MASK) || (w & SHMPOOL_MUTEX_OWNER_MASK) == victim ||
		 s->op == LK_LOCK_DEAD,
		 "word %#x: neither free nor the victim's (%u)", w, victim);
	want = (w & SHMPOOL_MUTEX_OWNER_MASK) ? -EOWNERDEAD : 0;
	dl = ts_add_ms(now(CLOCK_MONOTONIC), 10000);
	ret = shmpool_mutex_timedlock(s->p, s->m, &dl);
	STEP_CHECK(ret == want, "word %#x (the victim %u): timedlock %d, wanted %d", w,
		 victim, ret, want);
	if (ret == -EOWNERDEAD)
		s->eownerdead++;
	/* ours now, and it works as before */
	STEP_CHECK((atomic_load(&s->m->word) & SHMPOOL_MUTEX_OWNER_MASK) ==
		 (uint32_t)shmpool_attach_id(s->p), "word %#x after the lock",
		 atomic_load(&s->m->word));
	STEP_CHECK(!shmpool_mutex_unlock(s->p, s->m), "unlock");
	STEP_CHECK(!atomic_load(&s->m->word), "word %#x after the unlock",
		 atomic_load(&s->m->word));
	STEP_CHECK(!shmpool_mutex_trylock(s->p, s->m), "trylock");
	STEP_CHECK(!shmpool_mutex_unlock(s->p, s->m), "unlock");
	return killed;
}

static void lk_everywhere(struct __test_metadata *_metadata, struct shmpool *p,
			  struct shared *sh, struct shmpool_mutex *m, enum lk_op op)
{
	struct lk s = { p, sh, m, op, false, 0, 0, false, 0 };
	long k;

#ifdef SHMPOOL_TEST_THREADS
	SKIP(return, "needs owners in other processes");
#endif
	if (lk_sleeps(op)) {	/* see mutex_lock_contended_killed_at_every_step */
		/* the semaphore's way to its sleep is mostly its spin (100 tries) */
		KILL_AT_STEPS_EVERYWHERE_APART(p, k, lk_killed_at(_metadata, &s, k),
					       op == LK_SEM_WAIT_BUSY ? 127 : 61);
		s.after_wake = true;
		KILL_AT_STEPS_EVERYWHERE_APART(p, k, lk_killed_at(_metadata, &s, k), 1);
	} else {
		KILL_AT_EVERY_STEP(p, k, lk_killed_at(_metadata, &s, k));
	}
	/*
	 * The second walk went through the sleep, not only up to it: its
	 * victim that ends without sleeping fails the kill point.
	 */
	TH_LOG("%ld times -EOWNERDEAD, released %ld times asleep, killed %ld times "
	       "after its wake-up", s.eownerdead, s.released, s.woken_kills);
}

TEST_F_TIMEOUT(sync, mutex_lock_killed_at_every_step, 600)
{
	lk_everywhere(_metadata, self->p, self->sh, &self->sh->mtx, LK_LOCK);
}

/* the 4-byte path: the word, then the thread id, in two stores */
TEST_F_TIMEOUT(sync, mutex_lock_4byte_killed_at_every_step, 600)
{
	lk_everywhere(_metadata, self->p, self->sh, &self->sh->odd.m, LK_LOCK);
}

/*
 * Contended: we hold it, the victim queues and sleeps; we unlock when it
 * sleeps (asleep in its wait: victim_asleep()). Its spin is left out
 * (WAITERS set as by an earlier sleeper): it only reads a held word.
 * Killed on the way to its sleep every 61st step everywhere (on memfd the
 * way is 1,000 to 5,000 steps, as its look at the owner reads the
 * attachment table; the walk's time grows as the square of that over the
 * stride, and the uncontended test takes every step of the common part
 * on the host); then at every step after its wake-up, through its take
 * and return, counted from the end of the call it slept in.
 */
TEST_F_TIMEOUT(sync, mutex_lock_contended_killed_at_every_step, 600)
{
	lk_everywhere(_metadata, self->p, self->sh, &self->sh->mtx, LK_LOCK_BUSY);
}

/* the victim takes the mutex over from a dead owner: -EOWNERDEAD whatever the step */
TEST_F_TIMEOUT(sync, mutex_takeover_killed_at_every_step, 600)
{
	lk_everywhere(_metadata, self->p, self->sh, &self->sh->mtx, LK_LOCK_DEAD);
}

TEST_F_TIMEOUT(sync, mutex_unlock_killed_at_every_step, 600)
{
	lk_everywhere(_metadata, self->p, self->sh, &self->sh->mtx, LK_UNLOCK);
}

TEST_F_TIMEOUT(sync, mutex_unlock_4byte_killed_at_every_step, 600)
{
	lk_everywhere(_metadata, self->p, self->sh, &self->sh->odd.m, LK_UNLOCK);
}

TEST_F_TIMEOUT(sync, robust_sem_wait_killed_at_every_step, 600)
{
	lk_everywhere(_metadata, self->p, self->sh, &self->sh->mtx, LK_SEM_WAIT);
}

TEST_F_TIMEOUT(sync, robust_sem_post_killed_at_every_step, 600)
{
	lk_everywhere(_metadata, self->p, self->sh, &self->sh->mtx, LK_SEM_POST);
}

/*
 * Contended, as the mutex's: we hold the only unit, the victim sleeps on
 * the empty semaphore (its word names us), our post wakes it; killed on
 * the way to its sleep and at every step after its wake-up, through its
 * take. The next waiter gets the unit, or -EOWNERDEAD once the word
 * names the dead victim.
 */
TEST_F_TIMEOUT(sync, robust_sem_wait_contended_killed_at_every_step, 600)
{
	lk_everywhere(_metadata, self->p, self->sh, &self->sh->mtx, LK_SEM_WAIT_BUSY);
}

/* ---- a signalled waiter dies ------------------------------------------------------ */

/*
 * A signal wakes the first of two waiters, which is then killed at every
 * step after its wake-up (before, while and after it relocks the mutex):
 * the second waiter must not sleep on as if nobody had signalled, nor
 * for ever on a mutex the dead one took (shmpool_sync.h, "Owner death":
 * a waiter woken by a death right after a signal meant for another
 * returns, and a dead owner's mutex is taken over). Device only: on memfd
 * a waiter sleeps until signalled or its deadline, as documented, so
 * there the signal goes with the dead waiter.
 */
struct cw {
	struct shmpool *p;
	struct shared *sh;
	pid_t other;		/* the second waiter, started once the first sleeps */
	long eownerdead;	/* the second took the mutex over */
};

#define CW_DEADLINE_MS	60000	/* the waiters' own: far beyond the test's patience */
#define CW_PATIENCE_MS	10000	/* for the second waiter, once the first is dead */

/* lock, wait for a signal, unlock: 0, or a failure code */
static int cw_wait(struct shmpool *p, struct shared *sh)
{
	struct timespec dl = ts_add_ms(now(CLOCK_MONOTONIC), CW_DEADLINE_MS);
	int ret;

	ret = shmpool_cond_timedwait(p, &sh->cnd[0], &sh->mtx, &dl);
	if (ret && ret != -EOWNERDEAD)
		return ret == -ETIMEDOUT ? 3 : 4;
	if (shmpool_mutex_unlock(p, &sh->mtx))
		return 5;
	return ret == -EOWNERDEAD ? 10 : 0;
}

static int cw_victim(void *arg)
{
	struct cw *s = arg;

	if (shmpool_attach_id(s->p) <= 0 || shmpool_mutex_lock(s->p, &s->sh->mtx))
		return 2;
	if (ptrace(PTRACE_TRACEME, 0, NULL, NULL))
		return 6;
	raise(SIGSTOP);
	return cw_wait(s->p, s->sh);	/* 0: it had the signal, the mutex was free */
}

/* the victim sleeps: a second waiter joins it, then the signal (to the first) */
static void cw_signal(void *arg)
{
	struct cw *s = arg;
	pid_t pid = fork();
	uint64_t t0 = now_ms();

	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (shmpool_mutex_lock(s->p, &s->sh->mtx))
			_exit(2);
		_exit(cw_wait(s->p, s->sh));
	}
	s->other = pid;
	while (pid > 0 && !victim_asleep(pid) && now_ms() - t0 < CW_PATIENCE_MS)
		usleep(200);
	shmpool_cond_signal(s->p, &s->sh->cnd[0]);
}

static int cw_killed_at(struct __test_metadata *_metadata, struct cw *s, long k)
{
	uint64_t t0;
	int killed, st = 0;
	pid_t got;

	STEP_CHECK(!shmpool_mutex_init(s->p, &s->sh->mtx) &&
		   !shmpool_cond_init(s->p, &s->sh->cnd[0]), "init");
	s->other = 0;
	killed = step_and_kill_after_wake(cw_victim, s, k, cw_signal, s);
	if (killed < 0 && s->other > 0) {
		kill(s->other, SIGKILL);
		waitpid(s->other, &st, 0);
	}
	STEP_CHECK(killed >= 0 && s->other > 0, "the first waiter failed (%d)", killed);
	t0 = now_ms();
	while ((got = waitpid(s->other, &st, WNOHANG)) == 0 &&
	       now_ms() - t0 < (uint64_t)CW_PATIENCE_MS * (uint64_t)scale())
		usleep(1000);
	if (!got) {
		kill(s->other, SIGKILL);
		waitpid(s->other, &st, 0);
	}
	STEP_CHECK(got == s->other, "the second waiter still sleeps %llu ms after the first one's end",
		   (unsigned long long)(now_ms() - t0));
	STEP_CHECK(WIFEXITED(st) && (!WEXITSTATUS(st) || WEXITSTATUS(st) == 10),
		   "the second waiter: status %#x", st);
	if (WEXITSTATUS(st) == 10)
		s->eownerdead++;
	STEP_CHECK(!atomic_load(&s->sh->mtx.word), "mutex word %#x after both",
		   atomic_load(&s->sh->mtx.word));
	return killed;
}

TEST_F_TIMEOUT(sync, cond_signalled_waiter_killed_after_wake, 600)
{
	struct cw s = { self->p, self->sh, 0, 0 };
	long k;

#ifdef SHMPOOL_TEST_THREADS
	SKIP(return, "needs waiters in other processes");
#endif
	if (variant->backend == SHMPOOL_BACKEND_MEMFD)
		SKIP(return, "memfd: a waiter sleeps until signalled (shmpool_sync.h)");
	/* every 3rd step: 159 kill points cost a QEMU lane 12 s */
	KILL_WALK(self->p, k, cw_killed_at(_metadata, &s, k), 1, 3);
	TH_LOG("the second waiter took the mutex over %ld times", s.eownerdead);
}

/* ---- wake order: real-time lockers first ----------------------------------------- */

#define ORDER_LOCKERS	4

/* policy and priority per locker, in the order they go to sleep */
static const int locker_prio[ORDER_LOCKERS] = { 0, 10, 0, 20 };

/*
 * Lock, note our turn, unlock. Then stay attached until each of @lockers
 * had its turn: on a module without SHMPOOL_FEAT_WAIT_OWNER an
 * attachment's end wakes every sleeper that watches for deaths (a mutex
 * held by another attachment), and they queue again in whatever order
 * they run, which would lose the order among equal priorities
 * (mutex_sleepers_ignore_unrelated_deaths checks that it no longer does).
 */
static int take_turn(struct ctx *c, uint32_t lockers)
{
	atomic_store(&c->sh->tid[c->idx], sys_gettid());
	if (shmpool_mutex_lock(c->p, &c->sh->mtx))
		return 3;
	atomic_store(&c->sh->result[c->idx],
		     (int32_t)atomic_fetch_add(&c->sh->progress, 1));
	if (shmpool_mutex_unlock(c->p, &c->sh->mtx))
		return 4;
	return wait_count(&c->sh->progress, lockers, 20000) ? 5 : 0;
}

/*
 * Start lockers 0..@n-1 running @fn (their ctx its argument) one at a
 * time, each once the one before is asleep on the mutex we hold, so that
 * they sleep in index order; result[] -1 until a locker has its turn.
 */
static void start_sleeping_lockers(struct __test_metadata *_metadata,
				   FIXTURE_DATA(sync) *self,
				   int (*fn)(void *), int n)
{
	int i;

	for (i = 0; i < n; i++) {
		atomic_store(&self->sh->result[i], -1);
		ASSERT_EQ(0, task_start(&self->t[i], fn, &self->c[i]));
		ASSERT_EQ(0, wait_count((_Atomic uint32_t *)&self->sh->tid[i], 1, 10000));
		ASSERT_EQ(0, wait_asleep(atomic_load(&self->sh->tid[i])));
	}
}

/* Become SCHED_FIFO locker_prio[idx] (or stay), then take our turn. */
static int ordered_locker(void *arg)
{
	struct ctx *c = arg;
	struct sched_param sp = { .sched_priority = locker_prio[c->idx] };

	if (sp.sched_priority && sched_setscheduler(0, SCHED_FIFO, &sp))
		return 2;
	return take_turn(c, ORDER_LOCKERS);
}

/*
 * Four lockers go to sleep on a held mutex, one after the other: OTHER,
 * FIFO 10, OTHER, FIFO 20. Each unlock wakes one sleeper, as futex would
 * pick it: FIFO 20, then FIFO 10, then the two others in the order they
 * slept. Before the doorbells queued by priority (device backend) they
 * took the lock in the order they slept. On memfd a sleeper looks for
 * deaths every 100 ms, and one that looks just as the mutex is freed
 * takes it ahead of the one the unlock woke (6.1 lane: the first OTHER
 * locker had the first turn): there each has one turn, in no order.
 */
TEST_F_TIMEOUT(sync, mutex_unlock_wakes_real_time_lockers_first, 60)
{
	static const int32_t turn[ORDER_LOCKERS] = { 2, 1, 3, 0 };
	unsigned int seen = 0;
	int i;

	if (geteuid())
		SKIP(return, "SCHED_FIFO needs root");
	atomic_store(&self->sh->progress, 0);
	ASSERT_EQ(0, shmpool_mutex_lock(self->p, &self->sh->mtx));
	start_sleeping_lockers(_metadata, self, ordered_locker, ORDER_LOCKERS);
	ASSERT_EQ(0, shmpool_mutex_unlock(self->p, &self->sh->mtx));
	for (i = 0; i < ORDER_LOCKERS; i++)
		EXPECT_EQ(0, task_join(&self->t[i]));
	for (i = 0; i < ORDER_LOCKERS; i++) {
		int32_t got = atomic_load(&self->sh->result[i]);

		if (variant->backend == SHMPOOL_BACKEND_MEMFD) {
			EXPECT_TRUE(got >= 0 && got < ORDER_LOCKERS && !(seen & 1U << got))
				TH_LOG("locker %d: %d", i, got);
			seen |= got >= 0 && got < ORDER_LOCKERS ? 1U << got : 0;
		} else {
			EXPECT_EQ(turn[i], got) TH_LOG("locker %d (FIFO %d)", i, locker_prio[i]);
		}
	}
}

/* ---- unrelated deaths leave mutex sleepers asleep, in order ---------------- */

#define QUIET_LOCKERS	2
#define QUIET_DEATHS	10

/* voluntary_ctxt_switches of @tid, or -1 */
static long voluntary_switches(pid_t tid)
{
	char path[64], buf[2048], *p;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)tid);
	if (read_small(path, buf, sizeof(buf)))
		return -1;
	p = strstr(buf, "\nvoluntary_ctxt_switches:");
	return p ? strtol(p + sizeof("\nvoluntary_ctxt_switches:") - 1, NULL, 10) : -1;
}

static int quiet_locker(void *arg)
{
	return take_turn(arg, QUIET_LOCKERS);
}

/* A peer that attaches (a fork() child's first id) and exits: a death. */
static int attach_and_exit(void *arg)
{
	struct ctx *c = arg;

	return shmpool_attach_id(c->p) > 0 ? 0 : 2;
}

/*
 * Start QUIET_LOCKERS sleepers of @fn, let QUIET_DEATHS unrelated peers
 * attach and exit, and (@quiet) check that no sleeper ran meanwhile.
 */
static void sleepers_and_deaths(struct __test_metadata *_metadata,
				FIXTURE_DATA(sync) *self, int (*fn)(void *),
				bool quiet)
{
	long before[QUIET_LOCKERS], after;
	struct task deaths[QUIET_DEATHS];
	int i;

	start_sleeping_lockers(_metadata, self, fn, QUIET_LOCKERS);
	for (i = 0; i < QUIET_LOCKERS; i++) {
		before[i] = voluntary_switches(atomic_load(&self->sh->tid[i]));
		ASSERT_LE(0, before[i]);
	}
	/* task_join() reaps each: its end was told to every sleeper by then */
	for (i = 0; i < QUIET_DEATHS; i++) {
		ASSERT_EQ(0, task_start(&deaths[i], attach_and_exit, &self->c[0]));
		EXPECT_EQ(0, task_join(&deaths[i]));
	}
	for (i = 0; i < QUIET_LOCKERS && quiet; i++) {
		after = voluntary_switches(atomic_load(&self->sh->tid[i]));
		EXPECT_EQ(before[i], after) TH_LOG("sleeper %d woke %ld times", i,
						    after - before[i]);
	}
}

/*
 * Two lockers of other processes sleep on a mutex we hold; ten unrelated
 * processes attach to the pool and exit. Only the owner's end concerns a
 * mutex sleeper (SHMPOOL_WAIT_OWNER), as only the owner's death concerns
 * a robust futex's: the sleepers never ran (their voluntary context
 * switches stand still), so they keep their places and the unlocks hand
 * the mutex on in the order they slept. Before, every end woke every
 * sleeper, which queued again in whatever order it ran. The device
 * backend only: on memfd sleepers look for deaths every 100 ms.
 */
TEST_F_TIMEOUT(sync, mutex_sleepers_ignore_unrelated_deaths, 60)
{
	int i;

#ifdef SHMPOOL_TEST_THREADS
	SKIP(return, "needs lockers in other processes");
#endif
	if (variant->backend != SHMPOOL_BACKEND_DEVICE)
		SKIP(return, "memfd sleepers look for deaths in slices");
	atomic_store(&self->sh->progress, 0);
	ASSERT_EQ(0, shmpool_mutex_lock(self->p, &self->sh->mtx));
	sleepers_and_deaths(_metadata, self, quiet_locker, true);
	ASSERT_EQ(0, shmpool_mutex_unlock(self->p, &self->sh->mtx));
	for (i = 0; i < QUIET_LOCKERS; i++)
		EXPECT_EQ(0, task_join(&self->t[i]));
	for (i = 0; i < QUIET_LOCKERS; i++)
		EXPECT_EQ(i, atomic_load(&self->sh->result[i])) TH_LOG("locker %d", i);
}

/*
 * Wait for a unit of sem (30 s); note our turn in result[] (or the error),
 * and hold the unit until sh->go: a taker that ended would be news.
 */
static int quiet_sem_waiter(void *arg)
{
	struct ctx *c = arg;
	struct timespec dl = ts_add_ms(now(CLOCK_MONOTONIC), 30000);
	int ret;

	atomic_store(&c->sh->tid[c->idx], sys_gettid());
	ret = shmpool_sem_timedwait(c->p, &c->sh->sem, &dl);
	if (ret) {
		atomic_store(&c->sh->result[c->idx], ret);
		return 3;
	}
	atomic_store(&c->sh->result[c->idx],
		     (int32_t)atomic_fetch_add(&c->sh->progress, 1));
	return wait_count(&c->sh->go, 1, 30000) ? 4 : 0;
}

/*
 * The same for a robust semaphore that we emptied (its word names us, who
 * live on): two waiters of other processes sleep, ten unrelated processes
 * attach and exit. Only the end of the taker that emptied it concerns a
 * waiter, so they never run, and keep their order: each post hands a
 * unit to the one that slept first. Before, every end woke every robust
 * sleeper (SHMPOOL_WAIT_DEATH with the pool's death_seq). @old: a robust
 * semaphore an older library made (its taker in @last_wait), whose
 * waiters still wake at every end: only that each post reaches one.
 */
static void sem_sleepers_and_deaths(struct __test_metadata *_metadata,
				    FIXTURE_DATA(sync) *self, bool old)
{
	int i;

	atomic_store(&self->sh->progress, 0);
	ASSERT_EQ(0, shmpool_sem_init_robust(self->p, &self->sh->sem, 1));
	if (old)
		self->sh->sem.flags = SHMPOOL_SEM_ROBUST;
	ASSERT_EQ(0, shmpool_sem_trywait(self->p, &self->sh->sem));
	sleepers_and_deaths(_metadata, self, quiet_sem_waiter, !old);
	for (i = 0; i < QUIET_LOCKERS; i++) {
		EXPECT_EQ(0, shmpool_sem_post(self->p, &self->sh->sem));
		EXPECT_EQ(0, wait_count(&self->sh->progress, i + 1, 10000))
			TH_LOG("post %d reached no waiter", i);
	}
	atomic_store(&self->sh->go, 1);
	for (i = 0; i < QUIET_LOCKERS; i++) {
		EXPECT_EQ(0, task_join(&self->t[i]));
		if (old) {
			EXPECT_LE(0, atomic_load(&self->sh->result[i]));
		} else {
			EXPECT_EQ(i, atomic_load(&self->sh->result[i]));
		}
	}
}

TEST_F_TIMEOUT(sync, robust_sem_sleepers_ignore_unrelated_deaths, 60)
{
#ifdef SHMPOOL_TEST_THREADS
	SKIP(return, "needs waiters in other processes");
#endif
	if (variant->backend != SHMPOOL_BACKEND_DEVICE)
		SKIP(return, "memfd sleepers look for deaths in slices");
	sem_sleepers_and_deaths(_metadata, self, false);
}

TEST_F_TIMEOUT(sync, robust_sem_older_format_sleepers_and_deaths, 60)
{
#ifdef SHMPOOL_TEST_THREADS
	SKIP(return, "needs waiters in other processes");
#endif
	sem_sleepers_and_deaths(_metadata, self, true);
}

/* Lock and hold until killed (after noting that it holds). */
static int holding_locker(void *arg)
{
	struct ctx *c = arg;

	atomic_store(&c->sh->tid[c->idx], sys_gettid());
	if (shmpool_mutex_lock(c->p, &c->sh->mtx))
		return 3;
	atomic_store(&c->sh->result[c->idx], 1);
	for (;;)
		pause();
}

/* Lock: 0 or what lock returned, in result[]; unlock after -EOWNERDEAD. */
static int dead_owner_locker(void *arg)
{
	struct ctx *c = arg;
	int ret;

	atomic_store(&c->sh->tid[c->idx], sys_gettid());
	ret = shmpool_mutex_lock(c->p, &c->sh->mtx);
	atomic_store(&c->sh->result[c->idx], ret);
	if (ret == 0 || ret == -EOWNERDEAD)
		shmpool_mutex_unlock(c->p, &c->sh->mtx);
	return 0;
}

/*
 * A sleeper watches whoever the word names when a death comes, not the
 * owner it went to sleep under: we hold the mutex, A and then B sleep on
 * it; our unlock hands it to A (B sleeps on, not woken); A is killed
 * holding it; B takes it over (-EOWNERDEAD), as a robust futex's waiter
 * is woken by the death of the owner its word names. The device backend
 * only, where the wake order is FIFO.
 */
TEST_F_TIMEOUT(sync, mutex_sleeper_sees_handed_on_owner_die, 60)
{
#ifdef SHMPOOL_TEST_THREADS
	SKIP(return, "needs lockers in other processes");
#endif
	if (variant->backend != SHMPOOL_BACKEND_DEVICE)
		SKIP(return, "memfd sleepers lose their order (they look for deaths in slices)");
	ASSERT_EQ(0, shmpool_mutex_lock(self->p, &self->sh->mtx));
	atomic_store(&self->sh->result[0], 0);
	atomic_store(&self->sh->result[1], 1);
	ASSERT_EQ(0, task_start(&self->t[0], holding_locker, &self->c[0]));
	ASSERT_EQ(0, wait_count((_Atomic uint32_t *)&self->sh->tid[0], 1, 10000));
	ASSERT_EQ(0, wait_asleep(atomic_load(&self->sh->tid[0])));
	ASSERT_EQ(0, task_start(&self->t[1], dead_owner_locker, &self->c[1]));
	ASSERT_EQ(0, wait_count((_Atomic uint32_t *)&self->sh->tid[1], 1, 10000));
	ASSERT_EQ(0, wait_asleep(atomic_load(&self->sh->tid[1])));
	ASSERT_EQ(0, shmpool_mutex_unlock(self->p, &self->sh->mtx));
	ASSERT_EQ(0, wait_count((_Atomic uint32_t *)&self->sh->result[0], 1, 10000));
	/* B slept on through the hand-over: it is not the one holding */
	EXPECT_EQ(1, atomic_load(&self->sh->result[1]));
	kill(self->t[0].pid, SIGKILL);
	task_join(&self->t[0]);
	EXPECT_EQ(0, task_join(&self->t[1]));
	EXPECT_EQ(-EOWNERDEAD, atomic_load(&self->sh->result[1]));
}

TEST_HARNESS_MAIN
