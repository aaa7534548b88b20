// SPDX-License-Identifier: MIT
/*
 * Attachments: who a process is in a pool, and whether a peer still lives
 * (include/shmpool.h, "Attachments"; the kernel side is in the UAPI header,
 * DOC: Attachments).
 *
 * device: the module issues the id (SHMPOOL_IOC_ATTACH) and keeps a read-only
 *	status page that says which ids are alive and counts their ends; a
 *	sleep with SHMPOOL_WAIT_DEATH ends the moment any peer's attachment
 *	ends, or with SHMPOOL_WAIT_OWNER too (modules with
 *	SHMPOOL_FEAT_WAIT_OWNER) the moment the one its word names ends.
 *	Nothing here can be forged by a peer.
 * memfd: there is no one to issue ids, so the id is the process id (in the
 *	caller's PID namespace), and a peer is dead when pidfd_open() finds no
 *	such process or its pidfd polls readable (it exited). No one tells a
 *	sleeper: __shmpool_wait_peer() sleeps in slices and asks again. PID
 *	reuse and PID namespaces are the limits (SHMPOOL_CAP_DEATH_NOTICE
 *	lacking; README, "When a process dies").
 *
 * Every writable handle attaches when it is made and detaches when it is
 * closed (the module counts per process); a read-only one attaches only when
 * asked for an id. A fork() child inherits handles whose id is its parent's:
 * the first __shmpool_self() in the child attaches anew.
 */
#define _GNU_SOURCE
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

/* memfd: how long a sleeper waits before it looks at its peers again */
#define PEER_POLL_MS	__SHMPOOL_PEER_POLL_MS

/* serialises re-attaching a handle after fork() (rare: once per handle) */
static pthread_mutex_t reattach_lock = PTHREAD_MUTEX_INITIALIZER;

/* a leaf lock: nothing is taken while it is held */
void __shmpool_attach_atfork(enum __shmpool_fork_stage stage)
{
	__shmpool_fork_lock(&reattach_lock, stage);
}

static unsigned int cur_fork_gen(void)
{
	return atomic_load_explicit(&__shmpool_fork_gen, memory_order_relaxed);
}

static const struct shmpool_status *status_page(const struct shmpool *p)
{
	return (const struct shmpool_status *)p->__status;
}

/*
 * The status page, mapped once per handle. 0; -ENOTTY from a module before
 * API 3 (no status page there: the offset is beyond any pool).
 */
static int map_status(struct shmpool *p)
{
	void *st;

	if (p->__status)
		return 0;
	st = mmap(NULL, sizeof(struct shmpool_status), PROT_READ, MAP_SHARED,
		  p->fd, (off_t)SHMPOOL_STATUS_OFFSET);
	if (st == MAP_FAILED)
		return errno == EINVAL ? -ENOTTY : -errno;
	p->__status = st;
	return 0;
}

/* a module before API 3: ids as on memfd */
static void no_attachments(struct shmpool *p, uint32_t *id)
{
	p->flags |= __SHMPOOL_F_NOATTACH;
	*id = (uint32_t)getpid();
}

/* Get an id for this process; device: and the status page. */
static int attach(struct shmpool *p, uint32_t *id)
{
	struct shmpool_attach a = { .size = sizeof(a) };
	int ret;

	if (p->backend != SHMPOOL_BACKEND_DEVICE || (p->flags & __SHMPOOL_F_NOATTACH)) {
		*id = (uint32_t)getpid();
		return 0;
	}
	if (ioctl(p->fd, SHMPOOL_IOC_ATTACH, &a)) {
		if (errno != ENOTTY)
			return -errno;
		no_attachments(p, id);
		return 0;
	}
	ret = map_status(p);
	if (ret) {
		struct shmpool_detach d = { .size = sizeof(d), .id = a.id };

		ioctl(p->fd, SHMPOOL_IOC_DETACH, &d);
		return ret;
	}
	*id = a.id;
	return 0;
}

int __shmpool_attach(struct shmpool *p)
{
	uint32_t id = 0;
	int ret;

	__atomic_store_n(&p->__self_gen, cur_fork_gen(), __ATOMIC_RELAXED);
	/*
	 * A read-only handle owns nothing until it asks for an id (it cannot
	 * take a lock or work a ring side): it only reads the status page, so
	 * that looking at a pool (shmpoolctl) does not end an attachment,
	 * which every sleeper of the pool would hear of.
	 */
	if ((p->flags & SHMPOOL_RDONLY) && p->backend == SHMPOOL_BACKEND_DEVICE) {
		ret = map_status(p);
		if (ret == -ENOTTY) {
			no_attachments(p, &id);
			ret = 0;
		}
		return ret;
	}
	ret = attach(p, &id);
	if (!ret)
		__atomic_store_n(&p->__self, id, __ATOMIC_RELAXED);
	return ret;
}

void __shmpool_detach(struct shmpool *p)
{
	struct shmpool_detach d = { .size = sizeof(d) };

	d.id = __atomic_load_n(&p->__self, __ATOMIC_RELAXED);
	/* a fork() child never attached under the id it inherited */
	if (p->backend == SHMPOOL_BACKEND_DEVICE && d.id &&
	    !(p->flags & __SHMPOOL_F_NOATTACH) &&
	    __atomic_load_n(&p->__self_gen, __ATOMIC_RELAXED) == cur_fork_gen())
		ioctl(p->fd, SHMPOOL_IOC_DETACH, &d);
	if (p->__status)
		munmap((void *)p->__status, sizeof(struct shmpool_status));
	p->__status = NULL;
	__atomic_store_n(&p->__self, 0, __ATOMIC_RELAXED);
}

int __shmpool_self_slow(struct shmpool *p, uint32_t *id)
{
	unsigned int gen = cur_fork_gen();
	int ret = 0;

	pthread_mutex_lock(&reattach_lock);
	if (__atomic_load_n(&p->__self_gen, __ATOMIC_RELAXED) != gen ||
	    !__atomic_load_n(&p->__self, __ATOMIC_RELAXED)) {
		uint32_t nid = 0;

		ret = attach(p, &nid);
		if (!ret) {
			__atomic_store_n(&p->__self, nid, __ATOMIC_RELAXED);
			/* Release: pairs with the acquire in __shmpool_self() (internal.h). */
			__atomic_store_n(&p->__self_gen, gen, __ATOMIC_RELEASE);
		}
	}
	*id = __atomic_load_n(&p->__self, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&reattach_lock);
	return ret;
}

/* pid_alive() without its cancellation guard */
static bool pid_alive_nocancel(uint32_t pid)
{
	struct pollfd pfd = { .events = POLLIN };
	int fd, n;

	fd = (int)syscall(SYS_pidfd_open, (pid_t)pid, 0);
	if (fd < 0) {
		if (errno == ESRCH)
			return false;
		/* no pidfds (before 5.3): /proc and kill() decide */
		return !__shmpool_task_gone(pid);
	}
	/* a pidfd polls readable once the process has exited (zombie too) */
	pfd.fd = fd;
	n = poll(&pfd, 1, 0);
	close(fd);
	return n == 0;
}

/*
 * memfd (and old modules): is process @pid still there? Never a
 * cancellation point (shmpool.h), though poll(), close(), open() and
 * read() are: callers hold takeover_lock (sync.c), whose holder must not
 * vanish or every later take-over and fork() of the process would hang, or
 * a pool's lock, and the pidfd must not leak.
 */
static bool pid_alive(uint32_t pid)
{
	bool alive;
	int cs;

	if (!pid || pid > SHMPOOL_ATTACH_ID_MAX)
		return false;
	if (pid == (uint32_t)getpid())
		return true;
	pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &cs);
	alive = pid_alive_nocancel(pid);
	pthread_setcancelstate(cs, NULL);
	return alive;
}

bool __shmpool_alive(struct shmpool *p, uint32_t id)
{
	const struct shmpool_status *st = status_page(p);
	uint32_t slot;

	if (!id || id > SHMPOOL_ATTACH_ID_MAX)
		return false;
	if (!st)
		return pid_alive(id);
	slot = id & SHMPOOL_ATTACH_SLOT_MASK;
	if (slot >= SHMPOOL_ATTACH_MAX)
		return false;
	/* Acquire: pairs with the module's release of the slot. */
	return __atomic_load_n(&st->slot[slot], __ATOMIC_ACQUIRE) == id;
}

uint32_t __shmpool_death_seq(struct shmpool *p)
{
	const struct shmpool_status *st = status_page(p);

	/*
	 * Acquire: pairs with the module's release store of death_seq, which
	 * follows its clearing of the dead slot: whoever reads the new seq
	 * sees the slot cleared.
	 */
	return st ? __atomic_load_n(&st->death_seq, __ATOMIC_ACQUIRE) : 0;
}

int __shmpool_wait_peer(struct shmpool *p, int64_t off, uint32_t expected,
			uint32_t seq, const struct timespec *deadline)
{
	const struct timespec *until;
	struct timespec ts;
	int ret;

	if (status_page(p))
		return __shmpool_dev_wait_death(p, off, expected, seq, 0, deadline);
	until = __shmpool_deadline_within(deadline, PEER_POLL_MS, &ts);
	ret = shmpool_wait(p, off, expected, until, 0);
	/* a slice ended: "look at your peers again" */
	if (ret == -ETIMEDOUT && until != deadline)
		return -EOWNERDEAD;
	return ret;
}

int __shmpool_wait_owner(struct shmpool *p, int64_t off, uint32_t expected,
			 uint32_t owner_mask, uint32_t seq,
			 const struct timespec *deadline)
{
	/*
	 * An owner of 0 would be EOWNERDEAD at once, over and over: such a
	 * word (a peer's write) is waited on as any, for a wake or a death.
	 * A module older than SHMPOOL_FEAT_WAIT_OWNER (a newer library over
	 * DKMS's older module) leaves owner waits to SHMPOOL_WAIT_DEATH alone;
	 * __features is the constructor's (backend_dev.c), never written after.
	 */
	if (status_page(p) && (p->__features & SHMPOOL_FEAT_WAIT_OWNER) &&
	    (expected & owner_mask))
		return __shmpool_dev_wait_death(p, off, expected, seq,
						owner_mask, deadline);
	return __shmpool_wait_peer(p, off, expected, seq, deadline);
}

SHMPOOL_EXPORT
int shmpool_attach_id(struct shmpool *p)
{
	uint32_t id;
	int ret;

	if (!p)
		return -EINVAL;
	ret = __shmpool_self(p, &id);
	return ret ? ret : (int)id;
}

SHMPOOL_EXPORT
int shmpool_peer_alive(struct shmpool *p, uint32_t id)
{
	if (!p || !id || id > SHMPOOL_ATTACH_ID_MAX)
		return -EINVAL;
	return __shmpool_alive(p, id);
}

SHMPOOL_EXPORT
int shmpool_death_seq(struct shmpool *p, uint32_t *seq)
{
	if (!p || !seq)
		return -EINVAL;
	if (!status_page(p))
		return -EOPNOTSUPP;
	*seq = __shmpool_death_seq(p);
	return 0;
}

SHMPOOL_EXPORT
int shmpool_death_ack(struct shmpool *p)
{
	struct shmpool_attach a = { .size = sizeof(a), .flags = SHMPOOL_ATTACH_ACK };

	if (!p)
		return -EINVAL;
	if (!status_page(p))
		return -EOPNOTSUPP;
	if (ioctl(p->fd, SHMPOOL_IOC_ATTACH, &a))
		return -errno;
	return 0;
}
