// SPDX-License-Identifier: MIT
/*
 * doorbell_bench: what it costs to block and be woken between two processes,
 * shmpool doorbells against the kernel's own mechanisms, on one kernel in one
 * run. The mechanisms: the doorbell ioctls (SHMPOOL_IOC_WAIT/WAKE on a word
 * of a /dev/shmpool pool), the library's shmpool_wait()/shmpool_wake() on
 * whichever backend it picked (memfd, without the module: a shared futex
 * underneath), a shared futex on a memfd mapping, an eventfd pair, a pipe
 * pair.
 *
 * Round trip: two processes pinned to different CPUs hand a turn back and
 * forth; each waits in the kernel until the other wakes it. When the answer
 * comes back faster than a syscall, neither side sleeps (vcsw/op near 0)
 * and a round trip costs a few hundred ns: a real mode of this protocol,
 * but not the blocking path. So a second table measures the wake-up latency
 * of a process that is surely asleep (its /proc state is S when the waker
 * starts), one way, from the waker's call to the sleeper running again.
 *
 * No sleeper: one process, uncontended shmpool_mutex lock+unlock and
 * shmpool_event_signal() with nobody waiting, against a process-shared
 * pthread_mutex_t on a memfd, and a robust one (the guarantee ours gives:
 * a dead owner is reported; glibc keeps a per-thread list of held robust
 * mutexes for the kernel to walk at thread exit); a robust shmpool_sem's
 * take and post of its one unit against a process-shared sem_t (glibc's
 * has no owner and reports no death); the raw wake syscalls
 * with nobody waiting show what the library's "wake only if someone
 * sleeps" saves.
 *
 * Churn: what a process that ATTACHes and DETACHes in a loop costs another
 * process that only maps and unmaps a file they both map. Registering an
 * mm's mmu notifier write-locks every file mapping of the registering
 * process (mm_take_all_locks()); the module registers it once per process,
 * so the churn should cost the victim nothing. The peer row is the same
 * call without the churn.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <shmpool.h>
#include <shmpool_sync.h>

#include "bench.h"

/* Most ops per run; bench_table() runs fewer where they take long (VMs). */
#define RT_ITERS	2000	/* round trips */
#define WAKE_ITERS	1000	/* wake-ups of a sleeper */
#define OP_ITERS	1000000	/* uncontended operations */

/* ---- ping-pong on one 32-bit word, for futex and doorbell ---------------- */

struct word_pp {
	_Atomic uint32_t *word;
	int fd;			/* doorbell: the pool fd */
	uint64_t off;		/* doorbell, library: the word's pool offset */
	struct shmpool *pool;	/* library */
	void (*wait)(struct word_pp *w, uint32_t expected);
	void (*wake)(struct word_pp *w);
};

static void futex_wait(struct word_pp *w, uint32_t expected)
{
	/* Shared (not PRIVATE): the word lives in a memfd both processes map. */
	syscall(SYS_futex, w->word, FUTEX_WAIT, expected, NULL, NULL, 0);
}

static void futex_wake(struct word_pp *w)
{
	syscall(SYS_futex, w->word, FUTEX_WAKE, 1, NULL, NULL, 0);
}

static void db_wait(struct word_pp *w, uint32_t expected)
{
	struct shmpool_wait a = {
		.size = sizeof(a), .offset = w->off, .expected = expected,
		.bitset = SHMPOOL_BITSET_ANY,
	};

	ioctl(w->fd, SHMPOOL_IOC_WAIT, &a);	/* EAGAIN/EINTR: the caller re-checks */
}

static void db_wake(struct word_pp *w)
{
	struct shmpool_wake a = {
		.size = sizeof(a), .offset = w->off, .nr = 1,
		.bitset = SHMPOOL_BITSET_ANY,
	};

	ioctl(w->fd, SHMPOOL_IOC_WAKE, &a);
}

static void lib_wait(struct word_pp *w, uint32_t expected)
{
	shmpool_wait(w->pool, w->off, expected, NULL, 0);
}

static void lib_wake(struct word_pp *w)
{
	shmpool_wake(w->pool, w->off, 1);
}

/*
 * Side 0 moves the word to odd values, side 1 to even ones; each wakes the
 * other after its store (always: this measures the mechanism, not a
 * wake-only-if-sleeping protocol) and sleeps until the other has answered.
 */
static void word_pingpong(void *arg, int side, uint64_t iters)
{
	struct word_pp *w = arg;
	uint32_t i, v;

	for (i = 0; i < iters; i++) {
		if (side == 0) {
			atomic_store(w->word, 2 * i + 1);
			w->wake(w);
			while (atomic_load(w->word) == 2 * i + 1)
				w->wait(w, 2 * i + 1);
		} else {
			while ((v = atomic_load(w->word)) == 2 * i)
				w->wait(w, v);
			atomic_store(w->word, 2 * i + 2);
			w->wake(w);
		}
	}
}

static void word_reset(void *arg)
{
	atomic_store(((struct word_pp *)arg)->word, 0);
}

/* ---- ping-pong through two fds each way: eventfd or pipe pairs ------------ */

struct fd_pp {
	int to1[2];	/* side 0 writes [1], side 1 reads [0] */
	int to0[2];	/* side 1 writes [1], side 0 reads [0] */
	size_t len;	/* 8 for eventfd, 1 for a pipe */
};

static void fd_pingpong(void *arg, int side, uint64_t iters)
{
	struct fd_pp *f = arg;
	uint64_t i, one = 1, buf;

	for (i = 0; i < iters; i++) {
		if (side == 0) {
			if (write(f->to1[1], &one, f->len) != (ssize_t)f->len ||
			    read(f->to0[0], &buf, f->len) != (ssize_t)f->len)
				bench_die("fd ping", errno);
		} else {
			if (read(f->to1[0], &buf, f->len) != (ssize_t)f->len ||
			    write(f->to0[1], &one, f->len) != (ssize_t)f->len)
				bench_die("fd pong", errno);
		}
	}
}

static void eventfd_pair(struct fd_pp *f)
{
	f->to1[0] = f->to1[1] = eventfd(0, 0);
	f->to0[0] = f->to0[1] = eventfd(0, 0);
	if (f->to1[0] < 0 || f->to0[0] < 0)
		bench_die("eventfd", errno);
	f->len = 8;
}

static void pipe_pair(struct fd_pp *f)
{
	if (pipe(f->to1) || pipe(f->to0))
		bench_die("pipe", errno);
	f->len = 1;
}

/* A page of a memfd, mapped shared: what a plain shared futex lives in. */
static void *memfd_page(void)
{
	int fd = memfd_create("doorbell_bench", MFD_CLOEXEC);
	void *p;

	if (fd < 0 || ftruncate(fd, 4096))
		bench_die("memfd", errno);
	p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		bench_die("mmap memfd", errno);
	close(fd);
	return p;
}

/* ---- wake-up latency of a process that is surely asleep ------------------ */

struct lat_shared {
	_Atomic uint64_t t_wake;	/* when the waker started its wake call */
	_Atomic uint32_t ack;		/* the sleeper is in iteration ack */
	_Atomic int pid;		/* the sleeper's */
};

struct wake_lat {
	struct word_pp *w;	/* sleep on a word (futex, doorbell, library) */
	struct fd_pp *f;	/* or in read() of f->to1 (eventfd, pipe) */
	struct lat_shared *sh;
};

/*
 * Side 0 sleeps until the word moves to i + 1 (or a read returns), then adds
 * now - t_wake; side 1 waits until side 0 is in iteration i and asleep, then
 * stamps t_wake and wakes it. The run's result is the sum of latencies.
 */
static void wake_latency(void *arg, int side, uint64_t iters)
{
	struct wake_lat *l = arg;
	struct lat_shared *sh = l->sh;
	uint64_t i, sum = 0, val = 1;
	uint32_t v;
	int fd;

	if (side == 0) {
		atomic_store(&sh->pid, getpid());
		for (i = 0; i < iters; i++) {
			atomic_store(&sh->ack, (uint32_t)i);
			if (l->w) {
				while ((v = atomic_load(l->w->word)) == (uint32_t)i)
					l->w->wait(l->w, v);
			} else if (read(l->f->to1[0], &val, l->f->len) != (ssize_t)l->f->len) {
				bench_die("read", errno);
			}
			sum += bench_now_ns() - atomic_load(&sh->t_wake);
		}
		bench_set_result_ns(sum);
		return;
	}
	fd = bench_open_proc_stat(&sh->pid);
	for (i = 0; i < iters; i++) {
		while (atomic_load(&sh->ack) != (uint32_t)i || !bench_proc_asleep(fd))
			;
		atomic_store(&sh->t_wake, bench_now_ns());
		if (l->w) {
			atomic_store(l->w->word, (uint32_t)i + 1);
			l->w->wake(l->w);
		} else if (write(l->f->to1[1], &val, l->f->len) != (ssize_t)l->f->len) {
			bench_die("write", errno);
		}
	}
	close(fd);
}

static void wake_lat_reset(void *arg)
{
	struct wake_lat *l = arg;

	if (l->w)
		atomic_store(l->w->word, 0);
	atomic_store(&l->sh->pid, 0);
	atomic_store(&l->sh->ack, 0);
	atomic_store(&l->sh->t_wake, 0);
}

/* ---- uncontended, one process ------------------------------------------- */

struct sync_objs {
	struct shmpool *pool;
	struct shmpool_mutex *mutex;	/* in the pool */
	struct shmpool_event *event;	/* in the pool */
	pthread_mutex_t *pmutex;	/* process-shared, in a memfd */
	pthread_mutex_t *rmutex;	/* process-shared and robust, in a memfd */
	struct shmpool_sem *sem;	/* robust, one unit, in the pool */
	sem_t *psem;			/* process-shared, one unit, in a memfd */
	_Atomic uint32_t *fword;	/* a futex word in a memfd */
	int db_fd;			/* device pool fd, or -1 */
};

/* One operation each; negative on failure. */
static int shmpool_mutex_op(struct sync_objs *o)
{
	int ret = shmpool_mutex_lock(o->pool, o->mutex);

	return ret ? ret : shmpool_mutex_unlock(o->pool, o->mutex);
}

static int pthread_mutex_op(struct sync_objs *o)
{
	int ret = pthread_mutex_lock(o->pmutex);

	return -(ret ? ret : pthread_mutex_unlock(o->pmutex));
}

static int robust_mutex_op(struct sync_objs *o)
{
	int ret = pthread_mutex_lock(o->rmutex);

	return -(ret ? ret : pthread_mutex_unlock(o->rmutex));
}

/* take the unit and give it back */
static int shmpool_sem_op(struct sync_objs *o)
{
	int ret = shmpool_sem_trywait(o->pool, o->sem);

	return ret ? ret : shmpool_sem_post(o->pool, o->sem);
}

static int posix_sem_op(struct sync_objs *o)
{
	return sem_trywait(o->psem) || sem_post(o->psem) ? -1 : 0;
}

static int event_signal_op(struct sync_objs *o)
{
	/* Nobody waits: anything but 0 (woke no one, made no syscall) is wrong. */
	return shmpool_event_signal(o->pool, o->event) ? -EPROTO : 0;
}

static int futex_wake_op(struct sync_objs *o)
{
	return (int)syscall(SYS_futex, o->fword, FUTEX_WAKE, 1, NULL, NULL, 0);
}

static int db_wake_op(struct sync_objs *o)
{
	struct word_pp w = { .fd = o->db_fd, .off = 0 };

	db_wake(&w);
	return 0;
}

struct sync_case {
	struct sync_objs *o;
	int (*op)(struct sync_objs *o);
};

static void sync_loop(void *arg, int side, uint64_t iters)
{
	struct sync_case *sc = arg;
	uint64_t i;
	int ret;

	(void)side;
	for (i = 0; i < iters; i++) {
		ret = sc->op(sc->o);
		if (ret < 0)
			bench_die("uncontended op", ret == -1 ? errno : -ret);
	}
}

static void sync_objs_init(struct sync_objs *o, struct shmpool *pool)
{
	pthread_mutexattr_t a;
	char *mem = memfd_page();
	int ret;

	o->pool = pool;
	o->mutex = shmpool_ptr(pool, 64, sizeof(*o->mutex));
	o->event = shmpool_ptr(pool, 128, sizeof(*o->event));
	o->sem = shmpool_ptr(pool, 192, sizeof(*o->sem));
	ret = shmpool_mutex_init(pool, o->mutex);
	if (!ret)
		ret = shmpool_event_init(pool, o->event);
	if (!ret)
		ret = shmpool_sem_init_robust(pool, o->sem, 1);
	if (ret)
		bench_die("shmpool sync init", -ret);
	o->pmutex = (pthread_mutex_t *)mem;
	o->fword = (_Atomic uint32_t *)(mem + 2048);
	pthread_mutexattr_init(&a);
	pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
	ret = pthread_mutex_init(o->pmutex, &a);
	if (ret)
		bench_die("pthread_mutex_init", ret);
	/* the same guarantee as ours: an owner's death is reported (EOWNERDEAD) */
	o->rmutex = (pthread_mutex_t *)(mem + 1024);
	pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
	ret = pthread_mutex_init(o->rmutex, &a);
	if (ret)
		bench_die("pthread_mutex_init (robust)", ret);
	o->psem = (sem_t *)(mem + 3072);
	if (sem_init(o->psem, 1, 1))
		bench_die("sem_init", errno);
	o->db_fd = shmpool_backend(pool) == SHMPOOL_BACKEND_DEVICE ? shmpool_fd(pool) : -1;
}

/* ---- a NOTIFY and sleeper flood by another pool's owner ------------------ */

/*
 * The flooder: as many NOTIFY bindings and sleeping WAITV entries as the
 * per-user limits let one user have, on words of pools of its own. With
 * the old fixed-seed hash it could have aimed them all at the victim's
 * bucket; now the bucket is a keyed hash of kernel addresses, so they land
 * all over the table and the victim's WAKE should not notice them.
 */
#define FLOOD_POOLS	32	/* NOTIFY bindings: 64 per fd */
#define FLOOD_THREADS	64	/* sleepers: a WAITV of 64 entries each */

struct flood_shared {
	_Atomic int bindings;
	_Atomic int sleepers;	/* threads whose WAITV was accepted */
	_Atomic int refused;	/* threads refused (ENOSPC: the limit) */
	_Atomic int ready;
};

struct flood_thread {
	int fd;
	struct flood_shared *sh;
};

static void *flood_sleeper(void *arg)
{
	struct flood_thread *t = arg;
	struct shmpool_waitv_entry e[SHMPOOL_WAITV_MAX];
	struct shmpool_waitv w = {
		.size = sizeof(w), .entries = (uintptr_t)e,
		.nr_entries = SHMPOOL_WAITV_MAX,
	};
	int i;

	memset(e, 0, sizeof(e));
	for (i = 0; i < SHMPOOL_WAITV_MAX; i++) {
		e[i].fd = -1;
		e[i].offset = 4 * i;
		e[i].bitset = SHMPOOL_BITSET_ANY;
	}
	atomic_fetch_add(&t->sh->sleepers, 1);
	if (ioctl(t->fd, SHMPOOL_IOC_WAITV, &w) && errno == ENOSPC) {
		atomic_fetch_sub(&t->sh->sleepers, 1);
		atomic_fetch_add(&t->sh->refused, 1);
	}
	return NULL;
}

/* Runs until killed: make the flood, say how big it is, then sleep. */
static void flood_child(struct flood_shared *sh)
{
	static struct flood_thread th[FLOOD_THREADS];
	pthread_t t;
	int i, j, efd = eventfd(0, EFD_CLOEXEC);

	if (efd < 0)
		bench_die("eventfd", errno);
	for (i = 0; i < FLOOD_POOLS; i++) {
		struct shmpool *p;
		int ret = shmpool_create_anon(4096, SHMPOOL_BACKEND_DEVICE, &p);

		if (ret)
			bench_die("flood pool", -ret);
		for (j = 0; j < SHMPOOL_NOTIFY_MAX; j++) {
			ret = shmpool_notify_add(p, 4 * j, efd);
			if (ret == -ENOSPC)
				break;
			if (ret)
				bench_die("flood notify", -ret);
			atomic_fetch_add(&sh->bindings, 1);
		}
		if (i < FLOOD_THREADS)
			th[i].fd = shmpool_fd(p);
	}
	for (i = 0; i < FLOOD_THREADS; i++) {
		th[i].fd = th[i % FLOOD_POOLS].fd;
		th[i].sh = sh;
		if (pthread_create(&t, NULL, flood_sleeper, &th[i]))
			bench_die("pthread_create", EAGAIN);
	}
	atomic_store(&sh->ready, 1);
	for (;;)
		pause();
}

/* The sleeping doorbell waiters (tasks) the module counts, or -1. */
static long sysfs_waiters(void)
{
	FILE *f = fopen("/sys/class/misc/shmpool/waiters", "re");
	long n = -1;

	if (f) {
		if (fscanf(f, "%ld", &n) != 1)
			n = -1;
		fclose(f);
	}
	return n;
}

struct flood {
	struct flood_shared *sh;
	long base;		/* sleeping waiters before the flood */
	pid_t pid;		/* the flooder, or 0 */
};

static struct flood flood;

/* Start the flood unless it is up; return once all its sleepers sleep. */
static void flood_up(struct flood *fl)
{
	uint64_t end = bench_now_ns() + 60000000000ULL;
	struct flood_shared *sh = fl->sh;

	if (fl->pid)
		return;
	memset(sh, 0, sizeof(*sh));
	fl->pid = fork();
	if (fl->pid < 0)
		bench_die("fork", errno);
	if (fl->pid == 0)
		flood_child(sh);
	while (!atomic_load(&sh->ready) ||
	       atomic_load(&sh->sleepers) + atomic_load(&sh->refused) < FLOOD_THREADS ||
	       sysfs_waiters() < fl->base + atomic_load(&sh->sleepers)) {
		if (bench_now_ns() > end)
			bench_die("flood never slept", ETIMEDOUT);
		usleep(1000);
	}
}

/* End the flood: its bindings and sleepers go with the process. */
static void flood_down(struct flood *fl)
{
	if (!fl->pid)
		return;
	kill(fl->pid, SIGKILL);
	waitpid(fl->pid, NULL, 0);
	fl->pid = 0;
	while (sysfs_waiters() > fl->base)
		usleep(1000);
}

static void flood_reset_up(void *arg)
{
	(void)arg;
	flood_up(&flood);
}

static void flood_reset_down(void *arg)
{
	(void)arg;
	flood_down(&flood);
}

/* ---- a peer that ATTACHes and DETACHes in a loop ------------------------ */

#define CHURN_VMAS	2000	/* the churner's mappings of the shared file */

enum churn_kind { CHURN_NONE, CHURN_BUSY, CHURN_ATTACH };

struct churn {
	int fd;			/* the pool's */
	int file;		/* a memfd of one page, which both map */
	enum churn_kind kind;	/* what the churner does now */
	pid_t pid;		/* the churner, or 0 */
};

static struct churn churn;

/*
 * Runs until killed, on the other CPU: map the file many times, then loop
 * ATTACH+DETACH (CHURN_ATTACH) or, as busy in the same ioctl without
 * making an attachment, ATTACH with SHMPOOL_ATTACH_ACK (CHURN_BUSY).
 */
static void churn_child(struct churn *c)
{
	struct shmpool_attach a;
	struct shmpool_detach d;
	cpu_set_t cpus;
	int i;

	CPU_ZERO(&cpus);
	CPU_SET(1, &cpus);
	sched_setaffinity(0, sizeof(cpus), &cpus);
	/* Alternating protections: the kernel cannot merge them into one. */
	for (i = 0; i < CHURN_VMAS; i++)
		if (mmap(NULL, 4096, i & 1 ? PROT_READ : PROT_READ | PROT_WRITE,
			 MAP_SHARED, c->file, 0) == MAP_FAILED)
			break;
	for (;;) {
		memset(&a, 0, sizeof(a));
		a.size = sizeof(a);
		a.flags = c->kind == CHURN_BUSY ? SHMPOOL_ATTACH_ACK : 0;
		if (ioctl(c->fd, SHMPOOL_IOC_ATTACH, &a))
			_exit(1);
		if (c->kind == CHURN_BUSY)
			continue;
		memset(&d, 0, sizeof(d));
		d.size = sizeof(d);
		d.id = a.id;
		if (ioctl(c->fd, SHMPOOL_IOC_DETACH, &d) < 0)
			_exit(1);
	}
}

/* End the churner, if any, and start one of @kind. */
static void churn_set(struct churn *c, enum churn_kind kind)
{
	if (c->pid) {
		kill(c->pid, SIGKILL);
		waitpid(c->pid, NULL, 0);
		c->pid = 0;
	}
	c->kind = kind;
	if (kind == CHURN_NONE)
		return;
	c->pid = fork();
	if (c->pid < 0)
		bench_die("fork", errno);
	if (c->pid == 0)
		churn_child(c);
	usleep(100000);	/* its mappings made, its loop running */
}

static void churn_reset_none(void *arg)
{
	churn_set(arg, CHURN_NONE);
}

static void churn_reset_busy(void *arg)
{
	churn_set(arg, CHURN_BUSY);
}

static void churn_reset_attach(void *arg)
{
	churn_set(arg, CHURN_ATTACH);
}

/* The victim: map and unmap one page of the file the churner maps. */
static void churn_victim(void *arg, int side, uint64_t iters)
{
	struct churn *c = arg;
	uint64_t i;
	void *p;

	(void)side;
	for (i = 0; i < iters; i++) {
		p = mmap(NULL, 4096, PROT_READ, MAP_SHARED, c->file, 0);
		if (p == MAP_FAILED)
			bench_die("victim mmap", errno);
		munmap(p, 4096);
	}
}

#define FUTEX_ROW	"futex (memfd, shared)"
#define PMUTEX_ROW	"pthread_mutex pshared (memfd)"
#define PSEM_ROW	"sem_t pshared (memfd), trywait+post"

static char lib_rt_name[64], lib_mutex_name[64], lib_event_name[64], lib_sem_name[64];

int main(int argc, char **argv)
{
	static struct word_pp fx, db, lib;
	static struct fd_pp ev, pp;
	static struct sync_objs so;
	static struct wake_lat wl[5];
	static struct sync_case sc[8] = {
		{ &so, pthread_mutex_op }, { &so, shmpool_mutex_op }, { &so, event_signal_op },
		{ &so, db_wake_op }, { &so, futex_wake_op }, { &so, robust_mutex_op },
		{ &so, posix_sem_op }, { &so, shmpool_sem_op },
	};
	struct lat_shared *sh = bench_shared_page();
	struct bench_case rt[5], wk[5], op[8];
	struct bench_table t = {
		.title = "blocking round trip between two processes (WAIT/WAKE ping-pong)",
		.op = "round trip (each side wakes the other once and sleeps once)",
		.unit = "us",
		.cases = rt,
	};
	struct bench_table w = {
		.title = "wake-up latency of a sleeping process (one way, waker's call -> sleeper runs)",
		.op = "one wake-up of a process seen asleep in /proc/PID/stat",
		.unit = "us",
		.cases = wk,
	};
	struct bench_table u = {
		.title = "no contention, no sleeper: one process, objects in shared memory",
		.op = "one lock+unlock pair, one take+post of a semaphore's unit, or one signal/wake with nobody waiting",
		.unit = "ns",
		.cases = op,
	};
	struct shmpool *dev = NULL, *pool;
	const char *bk;
	int n = 0, ret;

	bench_init(argc, argv, "Prints doorbell round-trip and signalling costs against futex, eventfd, pipe\n"
		   "and a process-shared pthread mutex.\n");

	/* The library's own choice: the device if /dev/shmpool opens, else memfd. */
	ret = shmpool_create_anon(4096, 0, &pool);
	if (ret)
		bench_die("shmpool_create_anon", -ret);
	bk = shmpool_backend_name(shmpool_backend(pool));
	if (shmpool_backend(pool) == SHMPOOL_BACKEND_DEVICE)
		dev = pool;

	if (dev) {
		db = (struct word_pp){ .word = shmpool_base(dev), .fd = shmpool_fd(dev),
				       .off = 0, .wait = db_wait, .wake = db_wake };
		rt[n++] = (struct bench_case){
			.name = "doorbell ioctl (/dev/shmpool)", .peer = FUTEX_ROW,
			.nprocs = 2, .iters = RT_ITERS, .fn = word_pingpong, .arg = &db,
			.reset = word_reset, .count_syscalls = 1 };
	} else {
		t.notes[0] = "no doorbell ioctl row: /dev/shmpool is absent (module not loaded on this kernel)";
	}
	/* The library's wait/wake on a word of its own, beside the ioctl's. */
	lib = (struct word_pp){ .word = shmpool_ptr(pool, 4, 4), .pool = pool, .off = 4,
				.wait = lib_wait, .wake = lib_wake };
	snprintf(lib_rt_name, sizeof(lib_rt_name), "shmpool_wait/wake (%s%s)", bk,
		 dev ? "" : ": a shared futex");
	rt[n++] = (struct bench_case){
		.name = lib_rt_name, .peer = FUTEX_ROW, .nprocs = 2, .iters = RT_ITERS,
		.fn = word_pingpong, .arg = &lib, .reset = word_reset, .count_syscalls = 1 };
	fx = (struct word_pp){ .word = memfd_page(), .wait = futex_wait, .wake = futex_wake };
	rt[n++] = (struct bench_case){
		.name = FUTEX_ROW, .nprocs = 2, .iters = RT_ITERS, .fn = word_pingpong,
		.arg = &fx, .reset = word_reset, .count_syscalls = 1 };
	eventfd_pair(&ev);
	rt[n++] = (struct bench_case){
		.name = "eventfd pair", .peer = FUTEX_ROW, .nprocs = 2,
		.iters = RT_ITERS, .fn = fd_pingpong, .arg = &ev, .count_syscalls = 1 };
	pipe_pair(&pp);
	rt[n++] = (struct bench_case){
		.name = "pipe pair", .peer = FUTEX_ROW, .nprocs = 2,
		.iters = RT_ITERS, .fn = fd_pingpong, .arg = &pp, .count_syscalls = 1 };
	t.ncases = n;
	t.notes[1] = "vcsw/op near 2 = both sides slept every round trip; near 0 = nobody slept (answers beat the syscalls)";
	bench_table(&t);

	/* The same mechanisms, each waking a sleeper that is surely asleep. */
	for (n = 0; n < t.ncases; n++) {
		struct bench_case *c = &rt[n];

		wl[n] = (struct wake_lat){ .sh = sh };
		if (c->fn == word_pingpong)
			wl[n].w = c->arg;
		else
			wl[n].f = c->arg;
		wk[n] = (struct bench_case){
			.name = c->name, .peer = c->peer, .nprocs = 2, .iters = WAKE_ITERS,
			.fn = wake_latency, .arg = &wl[n], .reset = wake_lat_reset };
	}
	w.ncases = n;
	w.notes[0] = t.notes[0];
	w.notes[1] = "the waker polls /proc/PID/stat between wake-ups (not timed); vcsw/op near 1 = the sleeper slept each time";
	bench_table(&w);

	sync_objs_init(&so, pool);
	n = 0;
	op[n++] = (struct bench_case){
		.name = PMUTEX_ROW, .nprocs = 1, .iters = OP_ITERS,
		.fn = sync_loop, .arg = &sc[0], .count_syscalls = 1 };
	snprintf(lib_mutex_name, sizeof(lib_mutex_name), "shmpool_mutex (%s)", bk);
	op[n++] = (struct bench_case){
		.name = lib_mutex_name, .peer = PMUTEX_ROW, .nprocs = 1, .iters = OP_ITERS,
		.fn = sync_loop, .arg = &sc[1], .count_syscalls = 1 };
	op[n++] = (struct bench_case){
		.name = "pthread_mutex pshared robust (memfd)", .peer = PMUTEX_ROW,
		.nprocs = 1, .iters = OP_ITERS, .fn = sync_loop, .arg = &sc[5],
		.count_syscalls = 1 };
	op[n++] = (struct bench_case){
		.name = PSEM_ROW, .nprocs = 1, .iters = OP_ITERS,
		.fn = sync_loop, .arg = &sc[6], .count_syscalls = 1 };
	snprintf(lib_sem_name, sizeof(lib_sem_name), "shmpool_sem robust (%s)", bk);
	op[n++] = (struct bench_case){
		.name = lib_sem_name, .peer = PSEM_ROW, .nprocs = 1, .iters = OP_ITERS,
		.fn = sync_loop, .arg = &sc[7], .count_syscalls = 1 };
	snprintf(lib_event_name, sizeof(lib_event_name), "shmpool_event_signal (%s)", bk);
	op[n++] = (struct bench_case){
		.name = lib_event_name, .peer = PMUTEX_ROW, .nprocs = 1, .iters = OP_ITERS,
		.fn = sync_loop, .arg = &sc[2], .count_syscalls = 1 };
	if (dev)
		op[n++] = (struct bench_case){
			.name = "doorbell WAKE ioctl, no sleeper", .peer = PMUTEX_ROW,
			.nprocs = 1, .iters = OP_ITERS / 10, .fn = sync_loop, .arg = &sc[3],
			.count_syscalls = 1 };
	op[n++] = (struct bench_case){
		.name = "futex WAKE (memfd), no sleeper", .peer = PMUTEX_ROW, .nprocs = 1,
		.iters = OP_ITERS / 10, .fn = sync_loop, .arg = &sc[4], .count_syscalls = 1 };
	u.ncases = n;
	u.notes[0] = "the raw wake rows are what shmpool_event_signal() would cost if it always made the syscall";
	bench_table(&u);

	if (dev) {
		static char flood_row[128];
		struct bench_case fl[2];
		struct bench_table f = {
			.title = "victim WAKE with no sleeper, while another pool's owner floods the doorbells",
			.op = "one WAKE ioctl on a word nobody waits on",
			.unit = "ns",
			.cases = fl,
			.ncases = 2,
			.notes = {
				"the flood: as many NOTIFY bindings and sleeping WAITV entries as max_notify_per_user and max_waiters_per_user allow",
				"the flood is started before each flood run and ended before each baseline run (not timed)",
			},
		};

		flood.sh = bench_shared_page();
		flood.base = sysfs_waiters();
		flood_up(&flood);	/* once first, for the row's name */
		snprintf(flood_row, sizeof(flood_row),
			 "WAKE, flood: %d bindings, %d sleeping WAITV x 64",
			 atomic_load(&flood.sh->bindings), atomic_load(&flood.sh->sleepers));
		flood_down(&flood);
		fl[0] = (struct bench_case){
			.name = "WAKE, no flood", .nprocs = 1, .iters = OP_ITERS / 10,
			.fn = sync_loop, .arg = &sc[3], .reset = flood_reset_down };
		fl[1] = (struct bench_case){
			.name = flood_row, .peer = "WAKE, no flood", .nprocs = 1,
			.iters = OP_ITERS / 10, .fn = sync_loop, .arg = &sc[3],
			.reset = flood_reset_up };
		bench_table(&f);
		flood_down(&flood);
	}

	if (dev) {
		struct bench_case ch[3];
		struct bench_table c = {
			.title = "victim maps a file while a peer that maps it ATTACHes and DETACHes in a loop",
			.op = "one mmap+munmap of a page of a memfd the peer maps too",
			.unit = "ns",
			.cases = ch,
			.ncases = 3,
			.notes = {
				"the peer: pinned to the other CPU, the file mapped 2000 times; busy: ATTACH with SHMPOOL_ATTACH_ACK in a loop (the same ioctl, no attachment); churn: ATTACH+DETACH in a loop",
				"under TCG a busy vCPU slows the other, hence the busy row as the churn's peer",
				"the peer is started before each run and ended before the next (not timed)",
			},
		};

		churn.fd = shmpool_fd(pool);
		churn.file = memfd_create("doorbell_bench-churn", MFD_CLOEXEC);
		if (churn.file < 0 || ftruncate(churn.file, 4096))
			bench_die("memfd", errno);
		ch[0] = (struct bench_case){
			.name = "mmap+munmap, peer idle", .nprocs = 1, .iters = OP_ITERS / 10,
			.fn = churn_victim, .arg = &churn, .reset = churn_reset_none };
		ch[1] = (struct bench_case){
			.name = "mmap+munmap, peer busy", .peer = "mmap+munmap, peer idle",
			.nprocs = 1, .iters = OP_ITERS / 10, .fn = churn_victim,
			.arg = &churn, .reset = churn_reset_busy };
		ch[2] = (struct bench_case){
			.name = "mmap+munmap, peer loops ATTACH/DETACH",
			.peer = "mmap+munmap, peer busy", .nprocs = 1,
			.iters = OP_ITERS / 10, .fn = churn_victim, .arg = &churn,
			.reset = churn_reset_attach };
		bench_table(&c);
		churn_set(&churn, CHURN_NONE);
		close(churn.file);
	}

	shmpool_close(pool);
	return 0;
}
