// SPDX-License-Identifier: MIT
/*
 * Doorbells: sleep while a u32 in pool memory holds a value, wake sleepers.
 *
 * device: the module's SHMPOOL_IOC_WAIT/WAKE/WAITV/NOTIFY on the pool's fd.
 * memfd:  shared (not FUTEX_PRIVATE_FLAG) futexes on the MAP_SHARED mapping,
 *	   so that every process mapping the pool meets on the same futex.
 *
 * Both backends take the same arguments and fail the same way: the library
 * checks offsets, flags and deadlines before either is called. The one thing
 * the library has to supply for memfd is the read-only rule (a futex wake
 * works through any mapping, the device refuses read-only fds).
 *
 * Signals. The device restarts an interrupted wait after a handler with
 * SA_RESTART (deadlines are absolute, so a restart waits for the same
 * moment). FUTEX_WAIT_BITSET does so only without a timeout: with one it
 * ends in -EINTR whatever the handler's flags. futex_waitv() restarts in
 * both cases, so a wait with a deadline goes through it; on kernels without
 * futex_waitv() (before 5.16) it falls back to FUTEX_WAIT_BITSET and a
 * timed wait can end in -EINTR after an SA_RESTART handler.
 */
#define _GNU_SOURCE
#include <limits.h>
#include <linux/futex.h>
#include <linux/time_types.h>
#include <stdatomic.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"

#ifndef SYS_futex_waitv
#define SYS_futex_waitv	449	/* the same on every architecture */
#endif

#define NSEC_PER_SEC	1000000000L

/* set once futex_waitv() said ENOSYS: no use asking again */
static atomic_int no_futex_waitv;

/* 0 if @off names a whole, aligned u32 inside @p, else -EINVAL */
static int check_word(const struct shmpool *p, uint64_t off)
{
	if (!p || (off & 3) || p->size < sizeof(uint32_t) ||
	    off > p->size - sizeof(uint32_t))
		return -EINVAL;
	return 0;
}

static uint32_t *word_ptr(const struct shmpool *p, uint64_t off)
{
	return (uint32_t *)((char *)p->base + off);
}

static int check_deadline(const struct timespec *deadline, unsigned int flags)
{
	if (flags & ~SHMPOOL_WAIT_REALTIME)
		return -EINVAL;
	if (!deadline)
		return (flags & SHMPOOL_WAIT_REALTIME) ? -EINVAL : 0;
	if (deadline->tv_sec < 0 || deadline->tv_nsec < 0 ||
	    deadline->tv_nsec >= NSEC_PER_SEC)
		return -EINVAL;
	return 0;
}

/* UAPI flags for a checked deadline and @flags */
static uint32_t dev_flags(const struct timespec *deadline, unsigned int flags)
{
	return deadline ? SHMPOOL_WAIT_DEADLINE | flags : 0;
}

/* UAPI deadline_ns of a checked deadline; far futures saturate */
static uint64_t dev_deadline_ns(const struct timespec *deadline)
{
	if (!deadline)
		return 0;
	if ((uint64_t)deadline->tv_sec >= (uint64_t)INT64_MAX / NSEC_PER_SEC)
		return INT64_MAX;
	return (uint64_t)deadline->tv_sec * NSEC_PER_SEC +
	       (uint64_t)deadline->tv_nsec;
}

static long sys_futex_waitv(struct futex_waitv *v, unsigned int nr,
			    const struct timespec *deadline, unsigned int flags)
{
	struct __kernel_timespec ts, *tsp = NULL;
	clockid_t clk = CLOCK_MONOTONIC;
	long ret;

	if (atomic_load_explicit(&no_futex_waitv, memory_order_relaxed))
		return -ENOSYS;
	if (deadline) {
		ts.tv_sec = deadline->tv_sec;
		ts.tv_nsec = deadline->tv_nsec;
		tsp = &ts;
		if (flags & SHMPOOL_WAIT_REALTIME)
			clk = CLOCK_REALTIME;
	}
	ret = syscall(SYS_futex_waitv, v, nr, 0, tsp, clk);
	if (ret >= 0)
		return ret;
	if (errno == ENOSYS)
		atomic_store_explicit(&no_futex_waitv, 1, memory_order_relaxed);
	return -errno;
}

static int memfd_wait(struct shmpool *p, uint64_t off, uint32_t expected,
		      const struct timespec *deadline, unsigned int flags)
{
	uint32_t *w = word_ptr(p, off);
	struct futex_waitv v = {
		.val = expected,
		.uaddr = (uintptr_t)w,
		.flags = FUTEX_32,
	};
	int op = FUTEX_WAIT_BITSET;
	long ret;

	if (deadline) {
		/* restarts after SA_RESTART handlers, see the top of the file */
		ret = sys_futex_waitv(&v, 1, deadline, flags);
		if (ret != -ENOSYS)
			return ret < 0 ? (int)ret : 0;
		if (flags & SHMPOOL_WAIT_REALTIME)
			op |= FUTEX_CLOCK_REALTIME;
	}
	ret = syscall(SYS_futex, w, op, expected, deadline, NULL,
		      FUTEX_BITSET_MATCH_ANY);
	return ret < 0 ? -errno : 0;
}

static int dev_wait(struct shmpool *p, uint64_t off, uint32_t expected,
		    const struct timespec *deadline, unsigned int flags)
{
	struct shmpool_wait w = {
		.size = sizeof(w),
		.flags = dev_flags(deadline, flags),
		.offset = off,
		.expected = expected,
		.bitset = SHMPOOL_BITSET_ANY,
		.deadline_ns = dev_deadline_ns(deadline),
	};

	return ioctl(p->fd, SHMPOOL_IOC_WAIT, &w) ? -errno : 0;
}

int __shmpool_dev_wait_death(struct shmpool *p, int64_t off, uint32_t expected,
			     uint32_t seq, uint32_t owner_mask,
			     const struct timespec *deadline)
{
	struct shmpool_wait w = {
		.size = sizeof(w),
		.flags = dev_flags(deadline, 0) | SHMPOOL_WAIT_DEATH |
			 (owner_mask ? SHMPOOL_WAIT_OWNER : 0),
		.offset = (uint64_t)off,
		.expected = expected,
		.bitset = SHMPOOL_BITSET_ANY,
		.deadline_ns = dev_deadline_ns(deadline),
		.death_seq = owner_mask ? 0 : seq,
		.owner_mask = owner_mask,
	};
	int ret;

	ret = check_word(p, (uint64_t)off);
	if (!ret)
		ret = check_deadline(deadline, 0);
	if (ret)
		return ret;
	return ioctl(p->fd, SHMPOOL_IOC_WAIT, &w) ? -errno : 0;
}

SHMPOOL_EXPORT
int shmpool_wait(struct shmpool *p, uint64_t off, uint32_t expected,
		 const struct timespec *deadline, unsigned int flags)
{
	int ret;

	ret = check_word(p, off);
	if (ret)
		return ret;
	ret = check_deadline(deadline, flags);
	if (ret)
		return ret;
	if (p->backend == SHMPOOL_BACKEND_DEVICE)
		return dev_wait(p, off, expected, deadline, flags);
	return memfd_wait(p, off, expected, deadline, flags);
}

SHMPOOL_EXPORT
int shmpool_wake(struct shmpool *p, uint64_t off, uint32_t n)
{
	struct shmpool_wake k = {
		.size = sizeof(k),
		.offset = off,
		.nr = n,
		.bitset = SHMPOOL_BITSET_ANY,
	};
	long ret;

	ret = check_word(p, off);
	if (ret)
		return (int)ret;
	if (p->backend == SHMPOOL_BACKEND_DEVICE) {
		/* the module enforces the read-only rule itself */
		ret = ioctl(p->fd, SHMPOOL_IOC_WAKE, &k);
		return ret < 0 ? -errno : (int)ret;
	}
	if (p->flags & SHMPOOL_RDONLY)
		return -EPERM;
	/* FUTEX_WAKE of none would wake one */
	if (!n)
		return 0;
	ret = syscall(SYS_futex, word_ptr(p, off), FUTEX_WAKE,
		      n > INT_MAX ? INT_MAX : (int)n, NULL, NULL, 0);
	return ret < 0 ? -errno : (int)ret;
}

static int dev_waitv(const struct shmpool_wait_entry *v, unsigned int nr,
		     const struct timespec *deadline, unsigned int flags)
{
	struct shmpool_waitv_entry e[SHMPOOL_WAITV_MAX];
	struct shmpool_waitv w = {
		.size = sizeof(w),
		.flags = dev_flags(deadline, flags),
		.entries = (uintptr_t)e,
		.nr_entries = nr,
		.deadline_ns = dev_deadline_ns(deadline),
	};
	unsigned int i;
	int ret;

	for (i = 0; i < nr; i++) {
		e[i] = (struct shmpool_waitv_entry) {
			.fd = v[i].pool->fd,
			.expected = v[i].expected,
			.offset = v[i].off,
			.bitset = SHMPOOL_BITSET_ANY,
		};
	}
	ret = ioctl(v[0].pool->fd, SHMPOOL_IOC_WAITV, &w);
	return ret < 0 ? -errno : ret;
}

static int memfd_waitv(const struct shmpool_wait_entry *v, unsigned int nr,
		       const struct timespec *deadline, unsigned int flags)
{
	struct futex_waitv f[SHMPOOL_WAITV_MAX];
	unsigned int i;

	for (i = 0; i < nr; i++) {
		f[i] = (struct futex_waitv) {
			.val = v[i].expected,
			.uaddr = (uintptr_t)word_ptr(v[i].pool, v[i].off),
			.flags = FUTEX_32,
		};
	}
	return (int)sys_futex_waitv(f, nr, deadline, flags);
}

SHMPOOL_EXPORT
int shmpool_waitv(const struct shmpool_wait_entry *v, unsigned int nr,
		  const struct timespec *deadline, unsigned int flags)
{
	unsigned int i;
	int ret;

	if (!v || !nr || nr > SHMPOOL_WAITV_MAX)
		return -EINVAL;
	for (i = 0; i < nr; i++) {
		ret = check_word(v[i].pool, v[i].off);
		if (ret)
			return ret;
		/* one kernel call sleeps on all: it cannot mix futexes and doorbells */
		if (v[i].flags || v[i].pool->backend != v[0].pool->backend)
			return -EINVAL;
	}
	ret = check_deadline(deadline, flags);
	if (ret)
		return ret;
	if (v[0].pool->backend == SHMPOOL_BACKEND_DEVICE)
		return dev_waitv(v, nr, deadline, flags);
	return memfd_waitv(v, nr, deadline, flags);
}

static int notify(struct shmpool *p, uint64_t off, int eventfd,
		  uint32_t op)
{
	struct shmpool_notify n = {
		.size = sizeof(n),
		.flags = op,
		.offset = off,
		.eventfd = eventfd,
		.bitset = SHMPOOL_BITSET_ANY,
	};
	int ret;

	ret = check_word(p, off);
	if (ret)
		return ret;
	if (p->backend != SHMPOOL_BACKEND_DEVICE)
		return -EOPNOTSUPP;
	return ioctl(p->fd, SHMPOOL_IOC_NOTIFY, &n) ? -errno : 0;
}

SHMPOOL_EXPORT
int shmpool_notify_add(struct shmpool *p, uint64_t off, int eventfd)
{
	return notify(p, off, eventfd, SHMPOOL_NOTIFY_ADD);
}

SHMPOOL_EXPORT
int shmpool_notify_del(struct shmpool *p, uint64_t off, int eventfd)
{
	return notify(p, off, eventfd, SHMPOOL_NOTIFY_DEL);
}

uint32_t __shmpool_doorbell_lacks(struct shmpool *p)
{
	/* a module that failed SHMPOOL_IOC_API at open has __features 0 */
	if (p->backend != SHMPOOL_BACKEND_DEVICE ||
	    !(p->__features & SHMPOOL_FEAT_NOTIFY))
		return SHMPOOL_CAP_NOTIFY;
	return 0;
}
