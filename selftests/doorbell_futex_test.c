/* doorbell_futex_test: the same multi-waiter scenarios against a shared futex on a memfd and against doorbells; wake counts and wake order must be equal. */
// SPDX-License-Identifier: GPL-2.0
#define _GNU_SOURCE
#include <dirent.h>
#include <pthread.h>
#include <linux/futex.h>
#include <poll.h>
#include <sched.h>
#include <sys/mount.h>

#include "shmpool_test_util.h"

#define NWORDS		4
#define WORD_STRIDE	16		/* u32s between words: separate lines */
#define FIFO_KIDS	8
#define REWAITERS	32
#define REWAIT_ROUNDS	10
#define AWAIT_MS	20000
#define REPORT_MS	20000
#define MAX_EVENTS	64
#define HOG_VICTIM_MS	2000	/* the victim's deadline, from its start */
#define HOG_GUARD_MS	10000	/* the hog's longest spin: a hang guard */
#define SCHED_PREEMPT	"/sys/kernel/debug/sched/preempt"

/* One way of sleeping on and waking 32-bit words shared between processes. */
struct fx {
	const char *name;
	uint32_t *words;	/* word i at words[i * WORD_STRIDE] */
	int fd;			/* doorbell: the pool fd */
	long wait_nr;		/* the syscall a sleeper is blocked in */
	long waitv_nr;
	int rep[2];		/* children's reports */
	pid_t kids[REWAITERS + 2];
	int nkids;
};

struct fx_report {
	int idx;
	int ret;
};

static uint32_t *fx_word(struct fx *f, int w)
{
	return &f->words[w * WORD_STRIDE];
}

/* 0 when woken, or -errno; @deadline_ns: absolute CLOCK_MONOTONIC, 0 none. */
static int fx_wait(struct fx *f, int w, uint32_t expected, uint32_t bitset,
		   uint64_t deadline_ns)
{
	if (f->fd < 0) {
		struct timespec ts = {
			.tv_sec = deadline_ns / 1000000000ULL,
			.tv_nsec = deadline_ns % 1000000000ULL,
		};
		long r = syscall(SYS_futex, fx_word(f, w), FUTEX_WAIT_BITSET, expected,
				 deadline_ns ? &ts : NULL, NULL, bitset);

		return r < 0 ? -errno : 0;
	}
	return sp_db_wait(f->fd, w * WORD_STRIDE * 4, expected, bitset,
			  deadline_ns ? SHMPOOL_WAIT_DEADLINE : 0, deadline_ns);
}

/* How many were woken, or -errno. */
static int fx_wake(struct fx *f, int w, uint32_t nr, uint32_t bitset)
{
	if (f->fd < 0) {
		long r = syscall(SYS_futex, fx_word(f, w), FUTEX_WAKE_BITSET,
				 nr == SHMPOOL_WAKE_ALL ? INT32_MAX : (int)nr,
				 NULL, NULL, bitset);

		return r < 0 ? -errno : (int)r;
	}
	return sp_db_wake(f->fd, w * WORD_STRIDE * 4, nr, bitset);
}

/* The woken entry's index, or -errno. */
static int fx_waitv(struct fx *f, const int *w, const uint32_t *expected, int n)
{
	int i;

	if (f->fd < 0) {
		struct futex_waitv v[NWORDS];
		long r;

		memset(v, 0, sizeof(v));
		for (i = 0; i < n; i++) {
			v[i].val = expected[i];
			v[i].uaddr = (uintptr_t)fx_word(f, w[i]);
			v[i].flags = FUTEX_32;
		}
		r = syscall(SYS_futex_waitv, v, n, 0, NULL, CLOCK_MONOTONIC);
		return r < 0 ? -errno : (int)r;
	} else {
		struct shmpool_waitv_entry e[NWORDS];

		for (i = 0; i < n; i++)
			sp_db_entry(&e[i], -1, w[i] * WORD_STRIDE * 4, expected[i],
				    SHMPOOL_BITSET_ANY);
		return sp_db_waitv(f->fd, e, n, 0, 0);
	}
}

/* Is @pid asleep inside the backend's wait syscall (queued, then)? */
static bool fx_asleep(struct fx *f, pid_t pid)
{
	char path[64], buf[128];
	ssize_t n;
	long nr;
	int fd;

	if (sp_proc_state(pid) != 'S')
		return false;
	snprintf(path, sizeof(path), "/proc/%d/syscall", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = 0;
	nr = strtol(buf, NULL, 10);
	return nr == f->wait_nr || nr == f->waitv_nr;
}

/* Wait until @pid is asleep in the wait syscall ('S') or in @state. */
static bool fx_await(struct fx *f, pid_t pid, char state)
{
	uint64_t end = sp_now_ns(CLOCK_MONOTONIC) + AWAIT_MS * 1000000ULL;

	while (state == 'S' ? !fx_asleep(f, pid) : sp_proc_state(pid) != state) {
		if (sp_now_ns(CLOCK_MONOTONIC) > end)
			return false;
		usleep(1000);
	}
	return true;
}

static void fx_report(struct fx *f, int idx, int ret)
{
	struct fx_report r = { .idx = idx, .ret = ret };

	if (write(f->rep[1], &r, sizeof(r)) != sizeof(r))
		_exit(3);
}

static bool fx_read_report(struct fx *f, struct fx_report *r)
{
	struct pollfd p = { .fd = f->rep[0], .events = POLLIN };

	if (poll(&p, 1, REPORT_MS) != 1)
		return false;
	return read(f->rep[0], r, sizeof(*r)) == sizeof(*r);
}

static pid_t fx_fork(struct fx *f)
{
	pid_t pid = fork();

	if (pid == 0) {
		sp_child_init();
		return 0;
	}
	if (pid > 0)
		f->kids[f->nkids++] = pid;
	return pid;
}

static void fx_reap_all(struct fx *f)
{
	int i;

	for (i = 0; i < f->nkids; i++) {
		kill(f->kids[i], SIGKILL);
		waitpid(f->kids[i], NULL, 0);
	}
	f->nkids = 0;
}

/* What a scenario observed: a list of numbers, compared between backends. */
struct fx_log {
	int ev[MAX_EVENTS];
	int n;
	bool broken;		/* a step could not be carried out */
};

static void fx_log(struct fx_log *l, int v)
{
	if (l->n < MAX_EVENTS)
		l->ev[l->n++] = v;
}

/* Read @n reports; log their idx as a bit mask (order among them is free). */
static void fx_log_set(struct fx *f, struct fx_log *l, int n)
{
	struct fx_report r;
	int i, mask = 0;

	for (i = 0; i < n; i++) {
		if (!fx_read_report(f, &r)) {
			l->broken = true;
			return;
		}
		mask |= 1 << r.idx;
		fx_log(l, r.ret);
	}
	fx_log(l, mask);
}

/* WAKE(@nr, @bitset) on word 0: log its count and the set of woken. */
static void fx_step_wake(struct fx *f, struct fx_log *l, uint32_t nr, uint32_t bitset)
{
	int ret = fx_wake(f, 0, nr, bitset);

	fx_log(l, ret);
	if (ret > 0)
		fx_log_set(f, l, ret);
}

/*
 * Eight waiters queued in a known order on word 0 with bitsets; WAKE(3)
 * and WAKE(1) with bitsets; a stopped and continued waiter (a signal takes
 * a waiter out of the queue; the restarted call queues again at the end);
 * the rest one by one; then WAITV: a later entry that differs, and a woken
 * second entry; a WAKE with nobody, a WAIT that does not match.
 */
static void fx_fifo_scenario(struct fx *f, struct fx_log *l)
{
	static const uint32_t bits[FIFO_KIDS] = { 1, 2, 1, 3, 2, 1, 2, 1 };
	int i, ret;

	for (i = 0; i < FIFO_KIDS; i++) {
		pid_t pid = fx_fork(f);

		if (pid == 0) {
			fx_report(f, i, fx_wait(f, 0, 0, bits[i], 0));
			_exit(0);
		}
		if (pid < 0 || !fx_await(f, pid, 'S')) {
			l->broken = true;
			return;
		}
	}
	fx_step_wake(f, l, 3, 1);		/* 0, 2, 3 */
	fx_step_wake(f, l, 1, 2);		/* 1 */

	/* Waiter 4 (bits 2) is next for bit 2; stop and continue it. */
	if (kill(f->kids[4], SIGSTOP) || !fx_await(f, f->kids[4], 'T') ||
	    kill(f->kids[4], SIGCONT) || !fx_await(f, f->kids[4], 'S')) {
		l->broken = true;
		return;
	}
	fx_step_wake(f, l, 1, 2);
	for (i = 0; i < FIFO_KIDS; i++) {
		ret = fx_wake(f, 0, 1, SHMPOOL_BITSET_ANY);
		fx_log(l, ret);
		if (ret <= 0)
			break;
		fx_log_set(f, l, 1);
	}

	/* WAITV: entry 2 differs (word 3 is 0, expected 1): at once. */
	{
		const int w[3] = { 1, 2, 3 };
		const uint32_t e[3] = { 0, 0, 1 };

		fx_log(l, fx_waitv(f, w, e, 3));
	}
	/* WAITV asleep on words 1 and 2; WAKE word 2: entry 1. */
	{
		const int w[2] = { 1, 2 };
		const uint32_t e[2] = { 0, 0 };
		pid_t pid = fx_fork(f);

		if (pid == 0) {
			fx_report(f, 0, fx_waitv(f, w, e, 2));
			_exit(0);
		}
		if (pid < 0 || !fx_await(f, pid, 'S')) {
			l->broken = true;
			return;
		}
		/*
		 * (Not WAKE with nr 0 on word 1 first: futex_wake() wakes one
		 * waiter for nr 0, a doorbell WAKE none, as documented.)
		 */
		ret = f->fd < 0 ?
			(int)syscall(SYS_futex, fx_word(f, 2), FUTEX_WAKE, INT32_MAX,
				     NULL, NULL, 0) :
			fx_wake(f, 2, SHMPOOL_WAKE_ALL, SHMPOOL_BITSET_ANY);
		fx_log(l, ret);
		if (ret == 1) {
			struct fx_report r;

			if (!fx_read_report(f, &r))
				l->broken = true;
			else
				fx_log(l, r.ret);
		}
	}
	fx_log(l, fx_wake(f, 0, SHMPOOL_WAKE_ALL, SHMPOOL_BITSET_ANY));
	fx_log(l, fx_wait(f, 0, 1, SHMPOOL_BITSET_ANY, 0));
}

/*
 * WAKE_ALL over sleepers that WAIT again as soon as they are woken: each
 * WAKE_ALL counts every sleeper once, and only once.
 */
static void fx_rewait_scenario(struct fx *f, struct fx_log *l)
{
	uint32_t *stop = fx_word(f, 3), *returns = fx_word(f, 2);
	int i, round, ret;

	for (i = 0; i < REWAITERS; i++) {
		pid_t pid = fx_fork(f);

		if (pid == 0) {
			while (!__atomic_load_n(stop, __ATOMIC_SEQ_CST)) {
				fx_wait(f, 1, 0, SHMPOOL_BITSET_ANY, 0);
				__atomic_add_fetch(returns, 1, __ATOMIC_SEQ_CST);
			}
			_exit(0);
		}
		if (pid < 0) {
			l->broken = true;
			return;
		}
	}
	for (round = 0; round < REWAIT_ROUNDS; round++) {
		uint64_t end = sp_now_ns(CLOCK_MONOTONIC) + AWAIT_MS * 1000000ULL;

		/* All back from the last round's wait, then all asleep again. */
		while (__atomic_load_n(returns, __ATOMIC_SEQ_CST) <
		       (uint32_t)(round * REWAITERS)) {
			if (sp_now_ns(CLOCK_MONOTONIC) > end) {
				l->broken = true;
				return;
			}
			usleep(1000);
		}
		for (i = 0; i < REWAITERS; i++) {
			if (!fx_await(f, f->kids[f->nkids - REWAITERS + i], 'S')) {
				l->broken = true;
				return;
			}
		}
		ret = fx_wake(f, 1, SHMPOOL_WAKE_ALL, SHMPOOL_BITSET_ANY);
		fx_log(l, ret);
	}
	__atomic_store_n(stop, 1, __ATOMIC_SEQ_CST);
	fx_wake(f, 1, SHMPOOL_WAKE_ALL, SHMPOOL_BITSET_ANY);
}

/* Pin the caller to @cpu and, with @prio non-zero, make it SCHED_FIFO @prio. */
static bool fx_place(int cpu, int prio)
{
	struct sched_param sp = { .sched_priority = prio };
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set))
		return false;
	return !prio || !sched_setscheduler(0, SCHED_FIFO, &sp);
}

/* The hog's state, in word 1; word 2 tells it to stop. */
enum { HOG_ASLEEP, HOG_SPINNING, HOG_GAVE_UP, HOG_STOPPED };

/* The hog: FIFO 2 on CPU 0, sleeps on word 0, then spins until told. */
static void fx_hog(struct fx *f)
{
	uint32_t *hog = fx_word(f, 1), *stop = fx_word(f, 2);
	uint64_t end;

	CHILD_CHECK(fx_place(0, 2));
	fx_wait(f, 0, 0, SHMPOOL_BITSET_ANY, 0);
	__atomic_store_n(hog, HOG_SPINNING, __ATOMIC_SEQ_CST);
	end = sp_now_ns(CLOCK_MONOTONIC) + HOG_GUARD_MS * 1000000ULL;
	while (!__atomic_load_n(stop, __ATOMIC_SEQ_CST)) {
		if (sp_now_ns(CLOCK_MONOTONIC) > end) {
			__atomic_store_n(hog, HOG_GAVE_UP, __ATOMIC_SEQ_CST);
			return;
		}
	}
	__atomic_store_n(hog, HOG_STOPPED, __ATOMIC_SEQ_CST);
}

/* The victim: on CPU 1, sleeps on word 0 until woken or its deadline. */
static void fx_victim(struct fx *f)
{
	uint64_t d = sp_now_ns(CLOCK_MONOTONIC) + HOG_VICTIM_MS * 1000000ULL;

	fx_report(f, 1, fx_wait(f, 0, 0, SHMPOOL_BITSET_ANY, d));
}

/* Fork a child that runs @body and exits; wait until it sleeps in a wait. */
static bool fx_start_sleeper(struct fx *f, void (*body)(struct fx *f))
{
	pid_t pid = fx_fork(f);

	if (pid == 0) {
		body(f);
		_exit(0);
	}
	return pid > 0 && fx_await(f, pid, 'S');
}

/*
 * A SCHED_FIFO hog on the waker's CPU. The hog (FIFO 2, CPU 0) and then a
 * victim (CPU 1, deadline HOG_VICTIM_MS away) sleep on word 0; a waker
 * (FIFO 1, CPU 0) wakes all. Waking the hog preempts the waker, which does
 * not run again while the hog spins. The WAKE took the victim too, so the
 * victim returns 0 at its deadline at the latest, while the hog spins: its
 * return cannot wait for the waker. The hog spins until told to stop or, as
 * a hang guard only, HOG_GUARD_MS. Logs the first report's index, the
 * hog's state when it came, the victim's result and the WAKE's count.
 */
static void fx_hog_scenario(struct fx *f, struct fx_log *l)
{
	int ret[3] = { 0, 0, 0 }, i;
	struct fx_report r;
	pid_t pid;

	if (!fx_place(1, 0) || !fx_start_sleeper(f, fx_hog) ||
	    !fx_start_sleeper(f, fx_victim)) {
		l->broken = true;
		return;
	}
	pid = fx_fork(f);
	if (pid == 0) {
		CHILD_CHECK(fx_place(0, 1));
		fx_report(f, 2, fx_wake(f, 0, SHMPOOL_WAKE_ALL, SHMPOOL_BITSET_ANY));
		_exit(0);
	}
	for (i = 0; i < 2; i++) {
		if (pid < 0 || !fx_read_report(f, &r) || r.idx < 1 || r.idx > 2) {
			l->broken = true;
			break;
		}
		ret[r.idx] = r.ret;
		if (i == 0) {
			fx_log(l, r.idx);
			fx_log(l, __atomic_load_n(fx_word(f, 1), __ATOMIC_SEQ_CST));
		}
		/* The hog may stop once the first report is in. */
		__atomic_store_n(fx_word(f, 2), 1, __ATOMIC_SEQ_CST);
	}
	__atomic_store_n(fx_word(f, 2), 1, __ATOMIC_SEQ_CST);
	fx_log(l, ret[1]);
	fx_log(l, ret[2]);
}

/* Who sleeps in fx_prio_scenario(), in the order they queue. */
static const struct fx_sleeper {
	int policy, prio, nice;
	bool waitv;		/* on words 1 and 0, woken through entry 1 */
} fx_prio_kids[] = {
	{ SCHED_OTHER, 0, 0, false },	{ SCHED_FIFO, 10, 0, false },
	{ SCHED_FIFO, 30, 0, false },	{ SCHED_OTHER, 0, -10, false },
	{ SCHED_FIFO, 10, 0, false },	{ SCHED_RR, 30, 0, false },
	{ SCHED_OTHER, 0, 0, false },	{ SCHED_FIFO, 20, 0, true },
	{ SCHED_BATCH, 0, 5, false },
};
#define PRIO_KIDS	((int)(sizeof(fx_prio_kids) / sizeof(fx_prio_kids[0])))
#define PRIO_RAISED	6	/* made SCHED_FIFO 50 while it sleeps */

static bool fx_set_policy(const struct fx_sleeper *s)
{
	struct sched_param sp = { .sched_priority = s->prio };

	if (s->nice && setpriority(PRIO_PROCESS, 0, s->nice))
		return false;
	return !sched_setscheduler(0, s->policy, &sp);
}

/*
 * Sleepers of different scheduling classes and priorities queue on word
 * 0, one after the other (one of them through WAITV); then one is made
 * SCHED_FIFO 50 while it sleeps; then WAKE(1) until nobody is left. Logs
 * each WAKE's count, the woken one's index and what its call returned.
 * futex wakes real-time sleepers first, the higher priority first, then
 * the others (nice and SCHED_BATCH do not count), in queueing order within
 * a priority; a priority changed during the sleep does not move a sleeper.
 */
static void fx_prio_scenario(struct fx *f, struct fx_log *l)
{
	const int w[2] = { 1, 0 };
	const uint32_t e[2] = { 0, 0 };
	struct sched_param raise = { .sched_priority = 50 };
	struct fx_report r;
	int i, ret;

	for (i = 0; i < PRIO_KIDS; i++) {
		pid_t pid = fx_fork(f);

		if (pid == 0) {
			CHILD_CHECK(fx_set_policy(&fx_prio_kids[i]));
			fx_report(f, i, fx_prio_kids[i].waitv ? fx_waitv(f, w, e, 2) :
				  fx_wait(f, 0, 0, SHMPOOL_BITSET_ANY, 0));
			_exit(0);
		}
		if (pid < 0 || !fx_await(f, pid, 'S')) {
			l->broken = true;
			return;
		}
	}
	if (sched_setscheduler(f->kids[PRIO_RAISED], SCHED_FIFO, &raise)) {
		l->broken = true;
		return;
	}
	for (i = 0; i <= PRIO_KIDS; i++) {
		ret = fx_wake(f, 0, 1, SHMPOOL_BITSET_ANY);
		fx_log(l, ret);
		if (ret <= 0)
			break;
		if (!fx_read_report(f, &r)) {
			l->broken = true;
			return;
		}
		fx_log(l, r.idx);
		fx_log(l, r.ret);
	}
}

/* Set up the futex backend on a memfd page, or the doorbell one on a pool. */
static int fx_init(struct fx *f, bool doorbell)
{
	long page = sp_page_size();

	memset(f, 0, sizeof(*f));
	if (pipe2(f->rep, O_CLOEXEC))
		return -errno;
	if (doorbell) {
		f->name = "doorbell";
		f->fd = sp_anon_pool(page);
		if (f->fd < 0)
			return f->fd;
		f->words = sp_map(f->fd, page, PROT_READ | PROT_WRITE, 0);
		f->wait_nr = f->waitv_nr = SYS_ioctl;
	} else {
		int mfd = memfd_create("fx", MFD_CLOEXEC);

		f->name = "futex";
		f->fd = -1;
		if (mfd < 0 || ftruncate(mfd, page))
			return -errno;
		f->words = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
		close(mfd);
		f->wait_nr = SYS_futex;
		f->waitv_nr = SYS_futex_waitv;
	}
	if (f->words == MAP_FAILED)
		return -errno;
	return 0;
}

static void fx_fini(struct fx *f)
{
	fx_reap_all(f);
	munmap(f->words, sp_page_size());
	if (f->fd >= 0)
		close(f->fd);
	close(f->rep[0]);
	close(f->rep[1]);
}

/* false when fx_run() skipped (no doorbells here): the caller returns */
static bool fx_compare(struct __test_metadata *_metadata, const struct fx_log *fl,
		       const struct fx_log *dl)
{
	char a[512] = "", b[512] = "";
	int i;

	if (_metadata->skip)
		return false;

	for (i = 0; i < fl->n; i++)
		snprintf(a + strlen(a), sizeof(a) - strlen(a), " %d", fl->ev[i]);
	for (i = 0; i < dl->n; i++)
		snprintf(b + strlen(b), sizeof(b) - strlen(b), " %d", dl->ev[i]);
	TH_LOG("futex:   %s", a);
	TH_LOG("doorbell:%s", b);
	ASSERT_FALSE(fl->broken);
	ASSERT_FALSE(dl->broken);
	ASSERT_EQ(fl->n, dl->n);
	/* braces: the harness's TH_LOG after EXPECT_EQ is a loop of its own */
	for (i = 0; i < fl->n; i++) {
		EXPECT_EQ(fl->ev[i], dl->ev[i]) TH_LOG("event %d differs", i);
	}
	return true;
}

static void fx_run(struct __test_metadata *_metadata,
		   void (*scenario)(struct fx *f, struct fx_log *l),
		   struct fx_log *fl, struct fx_log *dl)
{
	struct fx f;
	int ret;

	memset(fl, 0, sizeof(*fl));
	memset(dl, 0, sizeof(*dl));
	ASSERT_EQ(0, fx_init(&f, false));
	scenario(&f, fl);
	fx_fini(&f);
	ret = fx_init(&f, true);
	if (ret == -ENOENT)
		SKIP(return, "cannot open " SP_DEV);
	ASSERT_EQ(0, ret);
	scenario(&f, dl);
	fx_fini(&f);
}

FIXTURE(fx) {
	int unused;
};

FIXTURE_SETUP(fx)
{
	self->unused = 0;
}

FIXTURE_TEARDOWN(fx)
{
}

TEST_F_TIMEOUT(fx, fifo_bitsets_signals_and_waitv_as_futex, 120)
{
	struct fx_log fl, dl;

	fx_run(_metadata, fx_fifo_scenario, &fl, &dl);
	if (!fx_compare(_metadata, &fl, &dl))
		return;
	/* And what futex does is what the UAPI header promises. */
	ASSERT_GE(fl.n, 6);
	EXPECT_EQ(3, fl.ev[0]);				/* WAKE(3, bit 1) */
	EXPECT_EQ((1 << 0) | (1 << 2) | (1 << 3), fl.ev[4]);
}

TEST_F_TIMEOUT(fx, wake_all_over_rewaiters_as_futex, 300)
{
	struct fx_log fl, dl;
	int i;

	fx_run(_metadata, fx_rewait_scenario, &fl, &dl);
	if (!fx_compare(_metadata, &fl, &dl))
		return;
	for (i = 0; i < dl.n; i++)
		EXPECT_EQ(REWAITERS, dl.ev[i]) TH_LOG("round %d", i);
}

/*
 * Run @scenario with the kernel preemptible for its real-time tasks, as a
 * PREEMPT_RT kernel always is: in mode full, or lazy (PREEMPT_LAZY defers
 * only the preemption of fair-class tasks; a SCHED_FIFO wake-up preempts at
 * once, as in full). From none or voluntary the mode is switched to full
 * and restored after. Lazy, Debian's rt kernel's default, is not switched:
 * the switch rewrites every static call of the preemption model while the
 * other CPU runs, and under TCG a vCPU once executed a stale int3 of that
 * rewrite there ("Oops: int3" in kcompactd, a kernel panic, 2026-12-07);
 * booting rt with preempt=full instead made every ptrace stop there cost a
 * tick (the tracer, woken first, waits for the stopped task to leave the
 * CPU) and the rt lane 4.6 min longer. Skips without root, two CPUs or a
 * mode to switch to: false then.
 */
static bool fx_run_preemptible(struct __test_metadata *_metadata,
			       void (*scenario)(struct fx *f, struct fx_log *l),
			       struct fx_log *fl, struct fx_log *dl)
{
	char modes[128] = "", was[32] = "";
	cpu_set_t cpus;
	char *p, *q;
	bool keep;
	FILE *m;

	if (sysconf(_SC_NPROCESSORS_ONLN) < 2)
		SKIP(return false, "needs two CPUs");
	if (geteuid())
		SKIP(return false, "SCHED_FIFO needs root");
	m = fopen(SCHED_PREEMPT, "re");
	if (m) {
		if (!fgets(modes, sizeof(modes), m))
			modes[0] = 0;
		fclose(m);
	}
	/* "none voluntary (full) lazy": the current mode in parentheses */
	p = strchr(modes, '(');
	q = p ? strchr(p, ')') : NULL;
	if (!q)
		SKIP(return false, "cannot read the preemption mode from " SCHED_PREEMPT);
	snprintf(was, sizeof(was), "%.*s", (int)(q - p - 1), p + 1);
	keep = !strcmp(was, "full") || !strcmp(was, "lazy");
	if (!keep && sp_write_string(SCHED_PREEMPT, "full"))
		SKIP(return false, "cannot switch to full preemption");
	if (sched_getaffinity(0, sizeof(cpus), &cpus))
		return false;
	fx_run(_metadata, scenario, fl, dl);
	sched_setaffinity(0, sizeof(cpus), &cpus);
	if (!keep)
		EXPECT_EQ(0, sp_write_string(SCHED_PREEMPT, was));
	return !_metadata->skip;
}

TEST_F_TIMEOUT(fx, woken_waiter_returns_while_the_waker_is_preempted_as_futex, 120)
{
	struct fx_log fl, dl;

	if (!fx_run_preemptible(_metadata, fx_hog_scenario, &fl, &dl))
		return;
	if (!fx_compare(_metadata, &fl, &dl))
		return;
	/* Futex: the victim reports first, woken, while the hog spins. */
	ASSERT_EQ(4, fl.n);
	EXPECT_EQ(1, fl.ev[0]);
	EXPECT_EQ(HOG_SPINNING, fl.ev[1]);
	EXPECT_EQ(0, fl.ev[2]);
	EXPECT_EQ(2, fl.ev[3]);
}

TEST_F_TIMEOUT(fx, wake_order_by_priority_as_futex, 120)
{
	static const int order[PRIO_KIDS] = { 2, 5, 7, 1, 4, 0, 3, 6, 8 };
	struct fx_log fl, dl;
	int i;

	if (geteuid())
		SKIP(return, "real-time policies need root");
	fx_run(_metadata, fx_prio_scenario, &fl, &dl);
	if (!fx_compare(_metadata, &fl, &dl))
		return;
	/* And what futex does is what the README promises. */
	ASSERT_EQ(3 * PRIO_KIDS + 1, fl.n);
	for (i = 0; i < PRIO_KIDS; i++) {
		EXPECT_EQ(1, fl.ev[3 * i]);
		EXPECT_EQ(order[i], fl.ev[3 * i + 1]) TH_LOG("wake %d", i);
		EXPECT_EQ(fx_prio_kids[order[i]].waitv, fl.ev[3 * i + 2]);
	}
	EXPECT_EQ(0, fl.ev[3 * PRIO_KIDS]);
}

/* ---- futexdiff: WAITV's index, stopped sleepers (beyond wake order) ---- */

#define STOP_DEADLINE_MS	2000	/* the stopped sleeper's deadline */
#define STOP_PAST_MS		3000	/* how long it stays stopped */

/*
 * WAITV on word 1 twice, then on words 1, 2, 1: one WAKE_ALL of word 1
 * takes two entries in one pass, before the sleeper runs. futex_waitv()
 * returns the highest woken index (futex_unqueue_multiple() keeps the last
 * one it finds). Logs each WAKE's count and each WAITV's return, then a
 * WAKE of word 2, whose entry left with its call.
 */
static void fx_waitv_index_scenario(struct fx *f, struct fx_log *l)
{
	static const int w[2][3] = { { 1, 1 }, { 1, 2, 1 } };
	static const int n[2] = { 2, 3 };
	static const uint32_t e[3] = { 0, 0, 0 };
	struct fx_report r;
	int round;

	for (round = 0; round < 2; round++) {
		pid_t pid = fx_fork(f);

		if (pid == 0) {
			fx_report(f, round, fx_waitv(f, w[round], e, n[round]));
			_exit(0);
		}
		if (pid < 0 || !fx_await(f, pid, 'S')) {
			l->broken = true;
			return;
		}
		fx_log(l, fx_wake(f, 1, SHMPOOL_WAKE_ALL, SHMPOOL_BITSET_ANY));
		if (!fx_read_report(f, &r)) {
			l->broken = true;
			return;
		}
		fx_log(l, r.ret);
	}
	fx_log(l, fx_wake(f, 2, SHMPOOL_WAKE_ALL, SHMPOOL_BITSET_ANY));
}

/*
 * Run @scenario on both backends: the logs must be equal, and futex's must
 * be @want[0..@n), what the test's name promises.
 */
static void fx_expect(struct __test_metadata *_metadata,
		      void (*scenario)(struct fx *f, struct fx_log *l),
		      const int *want, int n)
{
	struct fx_log fl, dl;
	int i;

	fx_run(_metadata, scenario, &fl, &dl);
	if (!fx_compare(_metadata, &fl, &dl))
		return;
	ASSERT_EQ(n, fl.n);
	/* Braces: EXPECT_EQ() and its TH_LOG() are two statements. */
	for (i = 0; i < n; i++) {
		EXPECT_EQ(want[i], fl.ev[i]) TH_LOG("futex event %d", i);
	}
}

TEST_F_TIMEOUT(fx, waitv_returns_the_highest_woken_index_as_futex, 60)
{
	/* WAKE_ALL took 2, entry 1; took 2, entry 2; word 2: nobody */
	static const int want[] = { 2, 1, 2, 2, 0 };

	fx_expect(_metadata, fx_waitv_index_scenario, want, 5);
}

/* SIGSTOP @pid, keep it stopped @ms, set *@store (if any), SIGCONT it. */
static bool fx_stop_for(struct fx *f, pid_t pid, int ms, uint32_t *store)
{
	if (kill(pid, SIGSTOP) || !fx_await(f, pid, 'T'))
		return false;
	usleep(ms * 1000);
	if (store)
		__atomic_store_n(store, 1, __ATOMIC_SEQ_CST);
	return !kill(pid, SIGCONT);
}

/*
 * A sleeper stopped (SIGSTOP) past its deadline and continued: ETIMEDOUT
 * (the interrupted wait restarts with the same absolute deadline), not a
 * spurious EINTR or 0. A sleeper without a deadline whose word changed,
 * without a WAKE, while it was stopped: the restarted wait compares again,
 * EAGAIN. Logs both results and the WAKE after them (nobody left: 0).
 */
static void fx_stopped_scenario(struct fx *f, struct fx_log *l)
{
	struct fx_report r;
	int round;

	for (round = 0; round < 2; round++) {
		pid_t pid = fx_fork(f);

		if (pid == 0) {
			uint64_t d = sp_now_ns(CLOCK_MONOTONIC) +
				     STOP_DEADLINE_MS * 1000000ULL;

			fx_report(f, round, fx_wait(f, 3, 0, SHMPOOL_BITSET_ANY,
						    round ? 0 : d));
			_exit(0);
		}
		if (pid < 0 || !fx_await(f, pid, 'S') ||
		    !fx_stop_for(f, pid, round ? 100 : STOP_PAST_MS,
				 round ? fx_word(f, 3) : NULL) ||
		    !fx_read_report(f, &r)) {
			l->broken = true;
			return;
		}
		fx_log(l, r.ret);
	}
	fx_log(l, fx_wake(f, 3, SHMPOOL_WAKE_ALL, SHMPOOL_BITSET_ANY));
}

TEST_F_TIMEOUT(fx, stopped_sleeper_times_out_or_recompares_as_futex, 60)
{
	static const int want[] = { -ETIMEDOUT, -EAGAIN, 0 };

	fx_expect(_metadata, fx_stopped_scenario, want, 3);
}


/*
 * A deadline already past: a word that differs still gives EAGAIN (the
 * compare comes first), an equal one ETIMEDOUT. Logs both.
 */
static void fx_past_deadline_scenario(struct fx *f, struct fx_log *l)
{
	fx_log(l, fx_wait(f, 0, 1, SHMPOOL_BITSET_ANY, 1));
	fx_log(l, fx_wait(f, 0, 0, SHMPOOL_BITSET_ANY, 1));
}

TEST_F_TIMEOUT(fx, past_deadline_compares_first_as_futex, 30)
{
	static const int want[] = { -EAGAIN, -ETIMEDOUT };

	fx_expect(_metadata, fx_past_deadline_scenario, want, 2);
}

#define RT_JUMP_S	3600	/* how far the realtime clock is set */
#define RT_DEADLINE_S	20	/* the sleeper's realtime deadline, from now */
#define RT_SOON_MS	5000	/* "at once" after a jump past the deadline */

/* As fx_wait(), with @deadline_ns absolute on CLOCK_REALTIME. */
static int fx_wait_realtime(struct fx *f, int w, uint32_t expected,
			    uint64_t deadline_ns)
{
	if (f->fd < 0) {
		struct timespec ts = {
			.tv_sec = deadline_ns / 1000000000ULL,
			.tv_nsec = deadline_ns % 1000000000ULL,
		};
		long r = syscall(SYS_futex, fx_word(f, w),
				 FUTEX_WAIT_BITSET | FUTEX_CLOCK_REALTIME,
				 expected, &ts, NULL, FUTEX_BITSET_MATCH_ANY);

		return r < 0 ? -errno : 0;
	}
	return sp_db_wait(f->fd, w * WORD_STRIDE * 4, expected, SHMPOOL_BITSET_ANY,
			  SHMPOOL_WAIT_DEADLINE | SHMPOOL_WAIT_REALTIME,
			  deadline_ns);
}

/* Set CLOCK_REALTIME to @rt0 + @jump_s + the monotonic time since @mono0. */
static bool fx_set_realtime(uint64_t rt0, uint64_t mono0, long jump_s)
{
	uint64_t ns = rt0 + jump_s * 1000000000LL + sp_now_ns(CLOCK_MONOTONIC) - mono0;
	struct timespec ts = {
		.tv_sec = ns / 1000000000ULL,
		.tv_nsec = ns % 1000000000ULL,
	};

	return !clock_settime(CLOCK_REALTIME, &ts);
}

/*
 * A sleeper with a CLOCK_REALTIME deadline RT_DEADLINE_S away. Round 0 sets
 * the clock RT_JUMP_S forward: ETIMEDOUT at once (logged: the result, and
 * 1 if it came within RT_SOON_MS). Round 1 sets it RT_JUMP_S back: still
 * asleep RT_SOON_MS later (logged: 1), then the clock jumps past the
 * deadline: ETIMEDOUT at once again. The clock is put right after each.
 */
static void fx_realtime_jump_scenario(struct fx *f, struct fx_log *l)
{
	uint64_t rt0 = sp_now_ns(CLOCK_REALTIME), mono0 = sp_now_ns(CLOCK_MONOTONIC);
	struct fx_report r = { .ret = 0 };
	int round;

	for (round = 0; round < 2; round++) {
		uint64_t d = sp_now_ns(CLOCK_REALTIME) + RT_DEADLINE_S * 1000000000ULL;
		pid_t pid = fx_fork(f);
		uint64_t t;
		bool ok;

		if (pid == 0) {
			fx_report(f, round, fx_wait_realtime(f, 0, 0, d));
			_exit(0);
		}
		if (pid < 0 || !fx_await(f, pid, 'S')) {
			l->broken = true;
			return;
		}
		t = sp_now_ns(CLOCK_MONOTONIC);
		ok = fx_set_realtime(rt0, mono0, round ? -RT_JUMP_S : RT_JUMP_S);
		if (ok && round) {
			usleep(RT_SOON_MS * 1000);
			fx_log(l, fx_asleep(f, pid));
			/* Past the deadline: right time, plus RT_DEADLINE_S. */
			ok = fx_set_realtime(rt0, mono0, RT_DEADLINE_S);
			t = sp_now_ns(CLOCK_MONOTONIC);
		}
		ok = fx_read_report(f, &r) && ok;
		fx_log(l, r.ret);
		fx_log(l, sp_now_ns(CLOCK_MONOTONIC) - t < RT_SOON_MS * 1000000ULL);
		if (!fx_set_realtime(rt0, mono0, 0) || !ok) {
			l->broken = true;
			return;
		}
	}
}

/* Booted by scripts/vm-run.sh (its nonce is on the command line)? */
static bool fx_in_test_vm(void)
{
	return lane_cmdline_has("spnonce=");
}

TEST_F_TIMEOUT(fx, realtime_deadline_follows_clock_settime_as_futex, 120)
{
	static const int want[] = { -ETIMEDOUT, 1, 1, -ETIMEDOUT, 1 };

	/* Setting the clock is for a throwaway guest only, never a host. */
	if (!fx_in_test_vm())
		SKIP(return, "sets CLOCK_REALTIME: only in a scripts/vm-run.sh guest");
	if (geteuid())
		SKIP(return, "clock_settime() needs root");
	fx_expect(_metadata, fx_realtime_jump_scenario, want, 5);
}

static pid_t fx_sleeper_tid;

static void *fx_thread_sleeper(void *arg)
{
	struct fx *f = arg;

	__atomic_store_n(&fx_sleeper_tid, (pid_t)syscall(SYS_gettid), __ATOMIC_SEQ_CST);
	fx_wait(f, 0, 0, SHMPOOL_BITSET_ANY, 0);
	/* Never woken: exec() took this thread with the rest. */
	__atomic_store_n(fx_word(f, 1), 1, __ATOMIC_SEQ_CST);
	return NULL;
}

/*
 * A process whose second thread sleeps on word 0 calls execve() (busybox's
 * true): exec kills the sleeping thread, which leaves no waiter behind.
 * Logs the exec'd program's exit status, whether the thread ever returned
 * to user space, and a WAKE of word 0 (nobody: 0). The doorbell's sleeper
 * count must also come back (checked by the test).
 */
static void fx_exec_scenario(struct fx *f, struct fx_log *l)
{
	pid_t pid = fx_fork(f);
	int status = -1;

	if (pid == 0) {
		pthread_t t;
		pid_t tid;

		if (pthread_create(&t, NULL, fx_thread_sleeper, f))
			_exit(5);
		while (!(tid = __atomic_load_n(&fx_sleeper_tid, __ATOMIC_SEQ_CST)))
			usleep(1000);
		if (!fx_await(f, tid, 'S'))
			_exit(6);
		execl("/bin/true", "true", (char *)NULL);
		execl("/bin/busybox", "true", (char *)NULL);
		_exit(7);
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid) {
		l->broken = true;
		return;
	}
	fx_log(l, status);
	fx_log(l, __atomic_load_n(fx_word(f, 1), __ATOMIC_SEQ_CST));
	fx_log(l, fx_wake(f, 0, SHMPOOL_WAKE_ALL, SHMPOOL_BITSET_ANY));
}

TEST_F_TIMEOUT(fx, exec_takes_a_sleeping_thread_as_futex, 60)
{
	static const int want[] = { 0, 0, 0 };
	long long waiters0 = sp_counter("waiters");

	fx_expect(_metadata, fx_exec_scenario, want, 3);
	if (waiters0 >= 0)
		EXPECT_EQ(0, sp_await_waiters(waiters0, false, AWAIT_MS));
}


#define FREEZER		"/tmp/fx-freezer"	/* a cgroup v1 freezer hierarchy */
#define FREEZER_G	FREEZER "/g"
#define THAW_MS		2000	/* how long a thawed, woken sleeper may take */

/* Wait until the freezer group's state reads @want. */
static bool fx_freezer_is(const char *want)
{
	uint64_t end = sp_now_ns(CLOCK_MONOTONIC) + AWAIT_MS * 1000000ULL;
	char buf[32];

	for (;;) {
		FILE *st = fopen(FREEZER_G "/freezer.state", "re");
		bool is = st && fgets(buf, sizeof(buf), st) &&
			  !strncmp(buf, want, strlen(want));

		if (st)
			fclose(st);
		if (is)
			return true;
		if (sp_now_ns(CLOCK_MONOTONIC) > end)
			return false;
		usleep(1000);
	}
}

/*
 * A sleeper frozen by the cgroup v1 freezer (as the system's suspend
 * freezer freezes every task) while a WAKE comes: futex sleeps
 * TASK_FREEZABLE, so it is frozen in place, still queued, the WAKE takes
 * it (1) and it returns 0 once thawed. Logs the WAKE's count, whether a
 * report came within THAW_MS of the thaw (if not, a second WAKE's count),
 * and the sleeper's result.
 */
static void fx_freezer_scenario(struct fx *f, struct fx_log *l)
{
	struct pollfd p = { .fd = f->rep[0], .events = POLLIN };
	pid_t pid = fx_fork(f);
	struct fx_report r;
	char pid_s[16];

	if (pid == 0) {
		fx_report(f, 0, fx_wait(f, 0, 0, SHMPOOL_BITSET_ANY, 0));
		_exit(0);
	}
	snprintf(pid_s, sizeof(pid_s), "%d", (int)pid);
	if (pid < 0 || !fx_await(f, pid, 'S') ||
	    sp_write_string(FREEZER_G "/cgroup.procs", pid_s) ||
	    sp_write_string(FREEZER_G "/freezer.state", "FROZEN") ||
	    !fx_freezer_is("FROZEN")) {
		l->broken = true;
		sp_write_string(FREEZER_G "/freezer.state", "THAWED");
		return;
	}
	fx_log(l, fx_wake(f, 0, SHMPOOL_WAKE_ALL, SHMPOOL_BITSET_ANY));
	if (sp_write_string(FREEZER_G "/freezer.state", "THAWED")) {
		l->broken = true;
		return;
	}
	if (poll(&p, 1, THAW_MS) == 1) {
		fx_log(l, 1);
	} else {
		fx_log(l, 0);
		fx_log(l, fx_wake(f, 0, SHMPOOL_WAKE_ALL, SHMPOOL_BITSET_ANY));
	}
	if (!fx_read_report(f, &r))
		l->broken = true;
	else
		fx_log(l, r.ret);
}

TEST_F_TIMEOUT(fx, frozen_sleeper_stays_queued_as_futex, 60)
{
	static const int want[] = { 1, 1, 0 };

	/* Mounting a freezer hierarchy is for a throwaway guest only. */
	if (!fx_in_test_vm())
		SKIP(return, "mounts a cgroup v1 freezer: only in a scripts/vm-run.sh guest");
	if (mkdir(FREEZER, 0755) && errno != EEXIST)
		SKIP(return, "mkdir " FREEZER ": %s", strerror(errno));
	if (mount("freezer", FREEZER, "cgroup", 0, "freezer")) {
		rmdir(FREEZER);
		SKIP(return, "no cgroup v1 freezer: %s", strerror(errno));
	}
	if (mkdir(FREEZER_G, 0755) && errno != EEXIST) {
		umount(FREEZER);
		rmdir(FREEZER);
		ASSERT_TRUE(false) TH_LOG("mkdir " FREEZER_G ": %s", strerror(errno));
	}
	fx_expect(_metadata, fx_freezer_scenario, want, 3);
	EXPECT_EQ(0, rmdir(FREEZER_G));
	EXPECT_EQ(0, umount(FREEZER));
	rmdir(FREEZER);
}

TEST_HARNESS_MAIN
