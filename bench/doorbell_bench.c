// SPDX-License-Identifier: MIT
/*
 * doorbell_bench: what it costs to block and be woken between two processes,
 * shmpool doorbells against the kernel's own mechanisms, on one kernel in one
 * run. The mechanisms: the doorbell ioctls (SHMPOOL_IOC_WAIT/WAKE on a word
 * of a /dev/shmpool pool), a shared futex on a memfd mapping, an eventfd
 * pair, a pipe pair.
 *
 * Round trip: two processes pinned to different CPUs hand a turn back and
 * forth; each waits in the kernel until the other wakes it. When the answer
 * comes back faster than a syscall, neither side sleeps (vcsw/op near 0)
 * and a round trip costs a few hundred ns: a real mode of this protocol,
 * but not the blocking path. So a second table measures the wake-up latency
 * of a process that is surely asleep (its /proc state is S when the waker
 * starts), one way, from the waker's call to the sleeper running again.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <shmpool.h>

#include "bench.h"

/* Most ops per run; bench_table() runs fewer where they take long (VMs). */
#define RT_ITERS	2000	/* round trips */
#define WAKE_ITERS	1000	/* wake-ups of a sleeper */

/* ---- ping-pong on one 32-bit word, for futex and doorbell ---------------- */

struct word_pp {
	_Atomic uint32_t *word;
	int fd;			/* doorbell: the pool fd */
	uint64_t off;		/* doorbell: the word's pool offset */
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

/* Is the process whose /proc/PID/stat is open as @fd sleeping? */
static int asleep(int fd)
{
	char buf[512], *p;
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);

	if (n <= 0)
		bench_die("read /proc/PID/stat", n ? errno : EIO);
	buf[n] = 0;
	p = strrchr(buf, ')');
	return p && (p[2] == 'S' || p[2] == 'D');
}

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
	char path[64];
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
	while (!atomic_load(&sh->pid))
		;
	snprintf(path, sizeof(path), "/proc/%d/stat", atomic_load(&sh->pid));
	fd = open(path, O_RDONLY);
	if (fd < 0)
		bench_die(path, errno);
	for (i = 0; i < iters; i++) {
		while (atomic_load(&sh->ack) != (uint32_t)i || !asleep(fd))
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

#define FUTEX_ROW	"futex (memfd, shared)"

int main(int argc, char **argv)
{
	static struct word_pp fx, db;
	static struct fd_pp ev, pp;
	static struct wake_lat wl[5];
	struct lat_shared *sh = bench_shared_page();
	struct bench_case rt[5], wk[5];
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
	struct shmpool *dev = NULL, *pool;
	int n = 0, ret;

	bench_init(argc, argv, "Prints doorbell round-trip and wake-up costs against futex, eventfd, pipe.\n");

	/* The library's own choice: the device if /dev/shmpool opens, else memfd. */
	ret = shmpool_create_anon(4096, 0, &pool);
	if (ret)
		bench_die("shmpool_create_anon", -ret);
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

	shmpool_close(pool);
	return 0;
}
