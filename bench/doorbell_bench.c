// SPDX-License-Identifier: MIT
/*
 * doorbell_bench: what it costs to block and be woken between two processes,
 * shmpool doorbells against the kernel's own mechanisms, on one kernel in one
 * run.
 *
 * Round trip: two processes pinned to different CPUs hand a turn back and
 * forth; each waits in the kernel until the other wakes it. Doorbell
 * (SHMPOOL_IOC_WAIT/WAKE on a /dev/shmpool pool word) against a shared futex
 * on a memfd mapping, an eventfd pair and a pipe pair. Without /dev/shmpool
 * the doorbell row is left out.
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

#define RT_ITERS	2000	/* round trips per case per round */

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

#define FUTEX_ROW	"futex (memfd, shared)"

int main(int argc, char **argv)
{
	static struct word_pp fx, db;
	static struct fd_pp ev, pp;
	struct bench_case rt[4];
	struct bench_table t = {
		.title = "blocking round trip between two processes (WAIT/WAKE ping-pong)",
		.op = "round trip (each side wakes the other once and sleeps once)",
		.unit = "us",
		.cases = rt,
	};
	struct shmpool *pool = NULL;
	int n = 0, ret;

	bench_init(argc, argv, "Prints doorbell round-trip and signalling costs against futex, eventfd, pipe.\n");

	ret = shmpool_create_anon(4096, SHMPOOL_BACKEND_DEVICE, &pool);
	if (ret == 0) {
		db = (struct word_pp){ .word = shmpool_base(pool), .fd = shmpool_fd(pool),
				       .off = 0, .wait = db_wait, .wake = db_wake };
		rt[n++] = (struct bench_case){
			.name = "doorbell ioctl (/dev/shmpool)", .peer = FUTEX_ROW,
			.nprocs = 2, .iters = RT_ITERS, .fn = word_pingpong, .arg = &db,
			.reset = word_reset, .count_syscalls = 1 };
	} else {
		t.notes[0] = "doorbell row left out: /dev/shmpool is absent (module not loaded on this kernel);"
			     " the library's memfd backend would block with the futex of the 'futex' row";
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
	bench_table(&t);

	shmpool_close(pool);
	return 0;
}
