// SPDX-License-Identifier: MIT
/*
 * death_bench: how soon a survivor learns that a peer died. A holder process
 * locks a mutex in shared memory; a waiter sleeps in lock; the holder is
 * SIGKILLed. Measured: from the kill() call to the waiter's lock call
 * returning EOWNERDEAD (it then holds the mutex). The mechanisms:
 *
 * - robust pthread_mutex_t on a memfd: the kernel's robust futex list (the
 *   dying task's exit walks it, marks FUTEX_OWNER_DIED and wakes a waiter).
 *   The peer: the kernel's own answer, for one lock word.
 * - shmpool_mutex on the device backend: the module ends the holder's
 *   attachment when its mm goes, and the waiter's sleep (SHMPOOL_WAIT_DEATH
 *   with SHMPOOL_WAIT_OWNER: the end of the owner its word names) ends at
 *   once.
 * - shmpool_mutex on the memfd backend: no one tells; the waiter looks at
 *   the owner (pidfd) every 100 ms slice, which is what the library did on
 *   both backends before attachments (with kill(tid, 0)).
 *
 * iceoryx, for scale: its RouDi declares a runtime dead after
 * PROCESS_KEEP_ALIVE_TIMEOUT without a keep-alive (1.5 s in 2.0.x, see
 * iceoryx_posh_types.hpp), which README's table quotes beside these rows.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <shmpool.h>
#include <shmpool_sync.h>

#include "bench.h"

#define DEATH_ITERS	200	/* most deaths per run */
#define ROBUST_ROW	"robust pthread_mutex (memfd): kernel robust futex list"

struct death_shared {
	_Atomic uint64_t t_kill;	/* when the killer called kill() */
	_Atomic uint32_t held;		/* the holder of round i stores i + 1 */
	_Atomic uint32_t ack;		/* the waiter of round i stores i + 1 ... */
	_Atomic uint32_t done;		/* ... and i + 1 here once it unlocked */
	_Atomic int pid;		/* ... and is this process */
};

struct death_case {
	struct death_shared *sh;
	struct shmpool *pool;		/* shmpool rows */
	struct shmpool_mutex *m;
	pthread_mutex_t *pm;		/* the robust row */
};

static int dc_lock(struct death_case *d)
{
	if (d->pm)
		return pthread_mutex_lock(d->pm);
	return -shmpool_mutex_lock(d->pool, d->m);
}

static void dc_unlock(struct death_case *d)
{
	if (d->pm) {
		pthread_mutex_consistent(d->pm);
		pthread_mutex_unlock(d->pm);
	} else {
		shmpool_mutex_unlock(d->pool, d->m);
	}
}

/* A holder: lock, say so, wait for the kill. */
static void holder(struct death_case *d, uint32_t round)
{
	int ret = dc_lock(d);

	/* the waiter of the round before unlocked: the lock is clean */
	if (ret)
		bench_die("holder lock", ret);
	atomic_store(&d->sh->held, round + 1);
	for (;;)
		pause();
}

/*
 * Side 1 forks round i's holder, waits until it holds the lock and side 0
 * sleeps in lock (its /proc state), stamps t_kill and kills it. Side 0 adds
 * now - t_kill once its lock returns EOWNERDEAD, then unlocks; only then
 * does side 1 fork the next holder.
 */
static void death_latency(void *arg, int side, uint64_t iters)
{
	struct death_case *d = arg;
	struct death_shared *sh = d->sh;
	uint64_t i, sum = 0;
	pid_t h;
	int fd, ret;

	if (side == 0) {
		atomic_store(&sh->pid, getpid());
		for (i = 0; i < iters; i++) {
			while (atomic_load(&sh->held) != (uint32_t)i + 1)
				;
			atomic_store(&sh->ack, (uint32_t)i + 1);
			ret = dc_lock(d);
			if (ret != EOWNERDEAD)
				bench_die("waiter lock did not report the dead owner", ret ? ret : EPROTO);
			sum += bench_now_ns() - atomic_load(&sh->t_kill);
			dc_unlock(d);
			atomic_store(&sh->done, (uint32_t)i + 1);
		}
		bench_set_result_ns(sum);
		return;
	}
	fd = bench_open_proc_stat(&sh->pid);
	for (i = 0; i < iters; i++) {
		h = fork();
		if (h < 0)
			bench_die("fork", errno);
		if (h == 0)
			holder(d, (uint32_t)i);
		while (atomic_load(&sh->ack) != (uint32_t)i + 1 || !bench_proc_asleep(fd))
			;
		atomic_store(&sh->t_kill, bench_now_ns());
		kill(h, SIGKILL);
		waitpid(h, NULL, 0);
		/* the next holder must not take the dead one's lock first */
		while (atomic_load(&sh->done) != (uint32_t)i + 1)
			;
	}
	close(fd);
}

static void death_reset(void *arg)
{
	struct death_case *d = arg;

	atomic_store(&d->sh->pid, 0);
	atomic_store(&d->sh->held, 0);
	atomic_store(&d->sh->ack, 0);
	atomic_store(&d->sh->done, 0);
	atomic_store(&d->sh->t_kill, 0);
}

static pthread_mutex_t *robust_mutex(void)
{
	pthread_mutexattr_t a;
	pthread_mutex_t *m;
	int fd;

	fd = memfd_create("death_bench", MFD_CLOEXEC);
	if (fd < 0 || ftruncate(fd, 4096))
		bench_die("memfd", errno);
	m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED)
		bench_die("mmap", errno);
	close(fd);
	pthread_mutexattr_init(&a);
	pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
	pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
	pthread_mutex_init(m, &a);
	pthread_mutexattr_destroy(&a);
	return m;
}

static void shmpool_case(struct death_case *d, unsigned int backend)
{
	int ret = shmpool_create_anon(4096, backend, &d->pool);

	if (ret)
		bench_die("shmpool_create_anon", -ret);
	d->m = shmpool_ptr(d->pool, 0, sizeof(*d->m));
	ret = shmpool_mutex_init(d->pool, d->m);
	if (ret)
		bench_die("shmpool_mutex_init", -ret);
}

int main(int argc, char **argv)
{
	struct death_case dc[3] = { 0 };
	struct bench_case c[3];
	struct bench_table t = {
		.title = "death notice: holder SIGKILLed while a waiter sleeps in lock",
		.op = "kill() -> the waiter's lock returns EOWNERDEAD",
		.unit = "us",
		.cases = c,
	};
	struct shmpool *probe;
	int n = 0, nn = 0, i, dev;

	bench_init(argc, argv, "death_bench [-r ROUNDS] [-s SCALE]");
	dev = shmpool_create_anon(4096, SHMPOOL_BACKEND_DEVICE, &probe) == 0;
	if (dev)
		shmpool_close(probe);

	for (i = 0; i < 3; i++)
		dc[i].sh = bench_shared_page();
	dc[0].pm = robust_mutex();
	c[n++] = (struct bench_case){
		.name = ROBUST_ROW, .nprocs = 2, .iters = DEATH_ITERS,
		.fn = death_latency, .arg = &dc[0], .reset = death_reset };
	if (dev) {
		shmpool_case(&dc[1], SHMPOOL_BACKEND_DEVICE);
		c[n++] = (struct bench_case){
			.name = "shmpool_mutex (device): owner's attachment end, WAIT_OWNER",
			.peer = ROBUST_ROW, .nprocs = 2, .iters = DEATH_ITERS,
			.fn = death_latency, .arg = &dc[1], .reset = death_reset };
	} else {
		t.notes[nn++] = "no device row: /dev/shmpool is absent (module not loaded on this kernel)";
	}
	shmpool_case(&dc[2], SHMPOOL_BACKEND_MEMFD);
	c[n++] = (struct bench_case){
		.name = "shmpool_mutex (memfd): pidfd look every 100 ms",
		.peer = ROBUST_ROW, .nprocs = 2, .iters = DEATH_ITERS,
		.fn = death_latency, .arg = &dc[2], .reset = death_reset };
	t.ncases = n;
	t.notes[nn++] = "iceoryx 2.0 (for scale, not run): RouDi drops a runtime after PROCESS_KEEP_ALIVE_TIMEOUT = 1.5 s without keep-alive";
	t.notes[nn++] = "each op forks a holder and waits until the waiter is asleep in /proc (not timed)";
	bench_table(&t);
	return 0;
}
