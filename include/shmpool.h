/* SPDX-License-Identifier: MIT */
/*
 * libshmpool: shared memory pools for unrelated processes.
 *
 * A pool is a named or anonymous range of shared pages, mapped MAP_SHARED at
 * once by every handle. Two backends provide it:
 *
 * - device: the shmpool kernel module (/dev/shmpool). Physically contiguous
 *   extents, access checked against the pool's uid/gid/mode, memory charged
 *   to the creator, attachment and mapping counts.
 * - memfd:  plain Linux. Anonymous pools are memfds; a named pool is the
 *   file "shmpool.<name>" in /dev/shm (or in $SHMPOOL_SHM_DIR), protected by
 *   that file's mode.
 *
 * Backend choice, per call: SHMPOOL_BACKEND_DEVICE or SHMPOOL_BACKEND_MEMFD
 * in flags forces one; otherwise the environment variable
 * SHMPOOL_BACKEND=device|memfd forces one (any other non-empty value makes
 * the call fail with -EINVAL); otherwise the device is used if the module's
 * scope can be opened, else memfd. The scope (where device pool names live)
 * is $SHMPOOL_SCOPE if set (a mounted shmpool instance or the device node),
 * else a shmpool instance mounted on /dev/shmpool.d (a container's own),
 * else /dev/shmpool. The two backends have separate name spaces, and so do
 * scopes: processes sharing a named pool must end up on the same one.
 *
 * Names are 1-63 characters of [A-Za-z0-9._-], not "." or "..", on both
 * backends.
 *
 * Functions return 0, a count, or -errno; they never set errno to report
 * an error. A handle may be used by several threads at once except that
 * shmpool_close() must be the last call on it.
 *
 * Thread cancellation: no call that works on a pool's contents (doorbells,
 * the objects of shmpool_sync.h, heaps, rings, caches, configs) is a
 * cancellation point, however long it sleeps: a deferred pthread_cancel()
 * is acted on at the thread's next cancellation point after the call
 * returned. Calls that make or end a handle (create, open, close) may be
 * cancelled in open(2) or close(2), leaking the handle. Asynchronous
 * cancellation inside any call is not supported.
 *
 * fork() from any thread is safe (the library holds its process-wide locks
 * across the copy); fork() from a signal handler that interrupted a
 * library call is not: the child may wait for ever for a lock that call
 * held.
 */
#ifndef SHMPOOL_H
#define SHMPOOL_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* the UAPI header: beside us in the source tree, <linux/shmpool.h> installed */
#if defined(__has_include)
#if __has_include("uapi/linux/shmpool.h")
#include "uapi/linux/shmpool.h"
#else
#include <linux/shmpool.h>
#endif
#else
#include <linux/shmpool.h>
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* flags for shmpool_create*(), shmpool_open(), shmpool_adopt_fd() */
#define SHMPOOL_EXCL		(1U << 0)	/* create: fail if the name exists */
#define SHMPOOL_CONTIG		(1U << 1)	/* create: one physically contiguous extent */
#define SHMPOOL_RDONLY		(1U << 2)	/* open/adopt: map read-only */
#define SHMPOOL_EXEC		(1U << 3)	/* create: PROT_EXEC allowed (see below) */
#define SHMPOOL_HUGE		(1U << 4)	/* create: 2 MiB mappings, device only, no GUP */
#define SHMPOOL_BACKEND_DEVICE	(1U << 8)	/* use /dev/shmpool, -ENODEV if absent */
#define SHMPOOL_BACKEND_MEMFD	(1U << 9)	/* use memfd and /dev/shm files */

/*
 * struct shmpool_pool_info capability bits: lacks has a bit set for each
 * thing the pool's backend does not provide.
 */
#define SHMPOOL_CAP_CONTIG		(1U << 0)	/* physically contiguous extents, SHMPOOL_CONTIG */
#define SHMPOOL_CAP_ACCOUNTING		(1U << 1)	/* RLIMIT_MEMLOCK/memcg charge, size caps */
#define SHMPOOL_CAP_ACCESS_CONTROL	(1U << 2)	/* read-only attachments that cannot be upgraded */
#define SHMPOOL_CAP_USAGE		(1U << 3)	/* attachments and mappings counts */
#define SHMPOOL_CAP_NOTIFY		(1U << 4)	/* shmpool_notify_add(): doorbell -> eventfd */
#define SHMPOOL_CAP_DEATH_NOTICE	(1U << 5)	/* kernel-issued attachment ids; a peer's end wakes sleepers at once */

/**
 * struct shmpool - a mapped pool
 * @base: where the whole pool is mapped in this process
 * @size: pool size in bytes
 *
 * Only @base and @size are part of the API (the inline helpers below read
 * them); the fields after them are private to the library and may change.
 * Handles are allocated by the library: never embed or copy one.
 */
struct shmpool {
	void *base;
	size_t size;

	/* private: */
	int fd;			/* owns the pool: device fd or memfd/file */
	int backend;		/* SHMPOOL_BACKEND_DEVICE or _MEMFD */
	unsigned int flags;	/* SHMPOOL_RDONLY and private __SHMPOOL_F_* */
	int __api_err;		/* device: 0, or -errno of SHMPOOL_IOC_API at open */
	uint64_t id;		/* device pool id, or memfd inode number */
	char name[SHMPOOL_NAME_MAX];	/* "" if anonymous or unknown */
	uint32_t __self;	/* this process's attachment id (lib/attach.c) */
	uint32_t __self_gen;	/* the fork() generation that set __self */
	const void *__status;	/* device: the read-only status page */
	uint64_t __features;	/* device: the module's SHMPOOL_FEAT_* (0 if unknown) */
};

/**
 * struct shmpool_pool_info - what shmpool_info() reports
 * @bytes: pool size
 * @id: device: the module's pool id; memfd: the file's inode number
 * @backend: SHMPOOL_BACKEND_DEVICE or SHMPOOL_BACKEND_MEMFD
 * @flags: SHMPOOL_POOL_NAMED, _UNLINKED, _CONTIG, _RDONLY, _EXEC (UAPI
 *	bits); memfd never sets _CONTIG nor _EXEC (though a memfd pool can
 *	always be mapped PROT_EXEC, see shmpool_create())
 * @mode: permission bits (memfd: of the file; anonymous memfds are 0777,
 *	0666 where MFD_NOEXEC_SEAL applies)
 * @uid: owner
 * @gid: group
 * @attachments: fds bound to the pool; 0 if SHMPOOL_CAP_USAGE is lacking
 * @mappings: VMAs mapping it; 0 if SHMPOOL_CAP_USAGE is lacking
 * @nr_extents: physically contiguous extents (memfd: 1, see shmpool_extents())
 * @lacks: SHMPOOL_CAP_* bits the backend does not provide
 * @name: the pool name; "" if anonymous, or for a memfd pool adopted from
 *	an fd whose name cannot be recovered
 *
 * The memfd backend lacks all of SHMPOOL_CAP_*: it cannot promise
 * contiguity, charges pages like any tmpfs file, does not count users, a
 * read-only fd of an anonymous pool can be reopened read-write through
 * /proc/self/fd (named pools are as safe as their file's mode), and it has no
 * way to turn a wake into an eventfd count. A device whose module predates
 * NOTIFY lacks SHMPOOL_CAP_NOTIFY too.
 */
/*
 * shmpool_pool_info.flags, library only (above the UAPI's bits): memfd
 * backend, a peer shrank the pool's file under this mapping; the part past
 * the new end is private zeros in this process now (README, "Trust
 * between processes"). Close the pool.
 */
#define SHMPOOL_POOL_TRUNCATED	(1U << 16)

struct shmpool_pool_info {
	uint64_t bytes;
	uint64_t id;
	int backend;
	uint32_t flags;
	uint32_t mode;
	uint32_t uid;
	uint32_t gid;
	uint32_t attachments;
	uint32_t mappings;
	uint32_t nr_extents;
	uint32_t lacks;
	char name[SHMPOOL_NAME_MAX];
};

/*
 * Create pool @name of @bytes (non-zero page multiple) with permission @mode
 * (at most 0777, umask applied); without SHMPOOL_EXCL an existing pool of the
 * same size is opened instead (-EEXIST if its size differs). memfd only:
 * such a create returns -EAGAIN, having made nothing, if the name appeared
 * and vanished between its open and its link 64 times in a row (peers that
 * keep creating and unlinking it); the device decides under a lock.
 *
 * Pools are not executable unless created with SHMPOOL_EXEC. Device: without
 * it mmap(PROT_EXEC) of the pool fails with EPERM and mprotect(PROT_EXEC)
 * with EACCES, for every process. memfd: the kernel has no such switch for
 * tmpfs files, so the promise is smaller: without SHMPOOL_EXEC an anonymous
 * pool is a memfd made with MFD_NOEXEC_SEAL (Linux 6.3+; older kernels get
 * a plain memfd) and a named pool's file gets no x bits, so neither can be
 * execve()d; but a holder of the fd can still map it PROT_EXEC. With
 * SHMPOOL_EXEC anonymous memfds are made with MFD_EXEC (which fails with
 * -EACCES where the vm.memfd_noexec sysctl is 2).
 */
int shmpool_create(const char *name, size_t bytes, unsigned int mode,
		   unsigned int flags, struct shmpool **out);
/* Create an anonymous pool that lives while a handle, fd or mapping holds it. */
int shmpool_create_anon(size_t bytes, unsigned int flags, struct shmpool **out);
/* Open existing pool @name read-write, or read-only with SHMPOOL_RDONLY. */
int shmpool_open(const char *name, unsigned int flags, struct shmpool **out);
/* Map the pool behind @fd; on success the handle owns @fd, on error the caller still does. */
int shmpool_adopt_fd(int fd, unsigned int flags, struct shmpool **out);
/* Unmap, close and free @p (NULL is fine); returns 0 or the close() error. */
int shmpool_close(struct shmpool *p);
/* Remove the name @name; mapped pools live on until their last user goes. */
int shmpool_unlink(const char *name, unsigned int flags);
/* Describe @p's pool in @info. */
int shmpool_info(struct shmpool *p, struct shmpool_pool_info *info);
/* Fill up to @cap extents of @p's pool (memfd: one, phys 0); returns how many there are. */
int shmpool_extents(struct shmpool *p, struct shmpool_extent *ext, unsigned int cap);
/* SHMPOOL_BACKEND_DEVICE or SHMPOOL_BACKEND_MEMFD. */
int shmpool_backend(const struct shmpool *p);
/* Printable name of a backend: "device", "memfd", or "unknown". */
const char *shmpool_backend_name(int backend);
/* The fd holding @p's pool (still owned by @p), e.g. to send over SCM_RIGHTS. */
int shmpool_fd(const struct shmpool *p);
/* 1 if the call that made @p created the pool, 0 if it opened an existing one. */
int shmpool_created(const struct shmpool *p);

/*
 * dma-buf export: a new dma-buf fd (O_CLOEXEC unless flags has
 * SHMPOOL_EXPORT_NOCLOEXEC) of @length bytes of @p's pool from @offset, both
 * page multiples, for a device: V4L2 (V4L2_MEMORY_DMABUF), DRM (PRIME),
 * RDMA. The dma-buf and whatever imports it keep the pool alive; mmap() it
 * MAP_SHARED and bracket CPU access with DMA_BUF_IOCTL_SYNC. Returns the fd
 * or -EINVAL (range, flags), -EACCES (read-only handle: a device's writes
 * cannot be refused), -EOPNOTSUPP (memfd backend, or a module without
 * dma-buf export), -EMFILE, -ENOMEM. See shmpool_export_dmabuf(3).
 */
int shmpool_export_dmabuf(struct shmpool *p, uint64_t offset, uint64_t length,
			  unsigned int flags);

/*
 * Attachments. Every handle makes its process a member of the pool: an
 * attachment, with an id 1..2^30-1 that the library's structures record as
 * owner (mutexes, rings, heap blocks, loans) and that survivors test to
 * learn that an owner died.
 *
 * device: the module issues the id and ends the attachment the moment the
 *	process exits, is killed or exec()s (or closes its last handle); a
 *	read-only status page the module writes says which ids live, so a
 *	peer cannot forge it, and sleepers in the library's locks and rings
 *	are woken at once when a peer dies. Ids work across PID namespaces.
 * memfd: SHMPOOL_CAP_DEATH_NOTICE is lacking. The id is the process id in
 *	the caller's PID namespace and a peer is dead when it has exited
 *	(pidfd); sleepers look at their peers every 100 ms. Processes that
 *	share a memfd pool must share a PID namespace, and a recycled PID can
 *	pass for its dead predecessor until it exits too.
 *
 * A fork() child gets an attachment of its own on its first call that
 * needs one; threads share their process's.
 */
/* This process's attachment id in @p (> 0), or -errno (-EUSERS: the pool has SHMPOOL_ATTACH_MAX). */
int shmpool_attach_id(struct shmpool *p);
/* 1 if attachment @id of @p is alive, 0 if it ended; -EINVAL for 0 or > SHMPOOL_ATTACH_ID_MAX. */
int shmpool_peer_alive(struct shmpool *p, uint32_t id);
/*
 * device: *@seq = how many attachments of @p have ended so far (wrapping).
 * poll() on shmpool_fd(@p) reports POLLPRI while it differs from what
 * shmpool_death_ack() last acknowledged on that fd. -EOPNOTSUPP on memfd.
 */
int shmpool_death_seq(struct shmpool *p, uint32_t *seq);
int shmpool_death_ack(struct shmpool *p);

/**
 * DOC: Doorbells
 *
 * Futexes for pool words, with the same behaviour on both backends (device:
 * the module's SHMPOOL_IOC_WAIT/WAKE/WAITV; memfd: shared futexes on the
 * mapping, futex_waitv() for several words).
 *
 * @off is a byte offset into the pool: 4-byte aligned, the whole u32 inside
 * the pool, else -EINVAL. Deadlines are absolute, on CLOCK_MONOTONIC unless
 * SHMPOOL_WAIT_REALTIME is in @flags (which needs a deadline); NULL waits
 * for ever; a tv_nsec outside [0, 1e9) or a negative tv_sec is -EINVAL.
 * A wait returns 0 when woken (not a promise that the word changed: re-check
 * it), -EAGAIN at once if the word differs from @expected, -ETIMEDOUT once the
 * deadline has passed (at once if it already had), and -EINTR if a signal
 * handler without SA_RESTART ran; after a handler with SA_RESTART the wait
 * goes on. Read-only handles may wait; waking needs a read-write one
 * (-EPERM), since whoever may not change a word has nothing to announce.
 */

/**
 * struct shmpool_wait_entry - one word of shmpool_waitv()
 * @pool: the pool holding the word; every entry's pool has the same backend
 * @off: the word's offset in @pool
 * @expected: sleep only while the word equals this
 * @flags: must be 0
 */
struct shmpool_wait_entry {
	struct shmpool *pool;
	uint64_t off;
	uint32_t expected;
	uint32_t flags;
};

/* Sleep while the u32 at @off equals @expected; @flags: 0 or SHMPOOL_WAIT_REALTIME. */
int shmpool_wait(struct shmpool *p, uint64_t off, uint32_t expected,
		 const struct timespec *deadline, unsigned int flags);
/* Wake at most @n sleepers on @off (SHMPOOL_WAKE_ALL: all); returns how many woke. */
int shmpool_wake(struct shmpool *p, uint64_t off, uint32_t n);
/*
 * Sleep until one of @nr (1..SHMPOOL_WAITV_MAX) words is woken; returns the
 * index of a woken entry, -EAGAIN if any word differs from its @expected.
 * memfd: -ENOSYS on kernels without futex_waitv() (before 5.16).
 */
int shmpool_waitv(const struct shmpool_wait_entry *v, unsigned int nr,
		  const struct timespec *deadline, unsigned int flags);
/*
 * Count each wake of @off in @eventfd (device only: -EOPNOTSUPP on memfd,
 * see SHMPOOL_CAP_NOTIFY); the binding lives until notify_del or until @p
 * is closed. The eventfd says "look again": read it, then re-check the word.
 */
int shmpool_notify_add(struct shmpool *p, uint64_t off, int eventfd);
/*
 * Undo shmpool_notify_add() of the same @off and @eventfd (-ENOENT if none);
 * @eventfd -1 undoes every binding of @off on @p, also after its eventfd
 * was closed.
 */
int shmpool_notify_del(struct shmpool *p, uint64_t off, int eventfd);

static inline void *shmpool_base(const struct shmpool *p)
{
	return p->base;
}

static inline size_t shmpool_size(const struct shmpool *p)
{
	return p->size;
}

/*
 * Pointer to pool offset @off if [off, off + len) lies inside the pool,
 * else NULL. Offsets come from shared memory, so treat them as untrusted:
 * the check cannot overflow. The pointer is writable only if the pool is.
 */
static inline void *shmpool_ptr(const struct shmpool *p, uint64_t off,
				size_t len)
{
	if (off > p->size || len > p->size - off)
		return NULL;
	return (char *)p->base + off;
}

/*
 * Pool offset of @ptr, or -EINVAL if @ptr is not inside the pool
 * (one past the end is outside).
 */
static inline int64_t shmpool_off(const struct shmpool *p, const void *ptr)
{
	uintptr_t b = (uintptr_t)p->base, q = (uintptr_t)ptr;

	if (q < b || q - b >= p->size)
		return -EINVAL;
	return (int64_t)(q - b);
}

#ifdef __cplusplus
}
#endif

#endif /* SHMPOOL_H */
