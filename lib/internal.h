/* SPDX-License-Identifier: MIT */
/*
 * libshmpool internals shared by the files of lib/; nothing here is exported
 * (lib/libshmpool.map hides every __shmpool_ symbol).
 */
#ifndef SHMPOOL_INTERNAL_H
#define SHMPOOL_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <time.h>

#include "shmpool.h"

/*
 * Marks the definition of every function in lib/libshmpool.map: the library
 * may be built with -fvisibility=hidden, and the map can only narrow.
 */
#define SHMPOOL_EXPORT	__attribute__((visibility("default")))

/* private bits of struct shmpool.flags, above the public SHMPOOL_* ones */
#define __SHMPOOL_F_CREATED	(1U << 16)	/* this handle's call made the pool */
#define __SHMPOOL_F_NAMED	(1U << 17)	/* memfd: a /dev/shm file, not a memfd */
#define __SHMPOOL_F_NOATTACH	(1U << 18)	/* device without ATTACH (API < 3): pid ids */

#define __SHMPOOL_DEV_PATH	"/dev/shmpool"
/* a container's own scope: a shmpool instance mounted here (README) */
#define __SHMPOOL_SCOPE_DIR	"/dev/shmpool.d"

/*
 * The scope fd the device backend uses: $SHMPOOL_SCOPE if set (a mounted
 * shmpool instance's directory, or the device node), else /dev/shmpool.d
 * if a shmpool instance is mounted there, else /dev/shmpool. -errno if it
 * cannot be opened.
 */
int __shmpool_dev_open_scope(void);
/* true if @fd is a pool fd of the module (a file of a shmpool instance) */
bool __shmpool_dev_is_pool_fd(int fd);

/*
 * One backend. pool.c validates every argument (name, size, mode, flags)
 * before calling in, and owns the handle: on entry p->fd is the backend's
 * already opened scope fd (device) or -1 (memfd); a backend sets p->fd,
 * p->size, p->id and p->flags bits and leaves unmapping, closing p->fd and
 * freeing to pool.c, on success and on error alike.
 */
struct __shmpool_ops {
	int backend;	/* SHMPOOL_BACKEND_* */
	/* @name NULL for an anonymous pool; flags: SHMPOOL_EXCL, SHMPOOL_CONTIG */
	int (*create)(struct shmpool *p, const char *name, uint64_t bytes,
		      unsigned int mode, unsigned int flags);
	/* flags: SHMPOOL_RDONLY */
	int (*open)(struct shmpool *p, const char *name, unsigned int flags);
	/* @devfd: an open scope fd (device) or -1 (memfd) */
	int (*unlink)(int devfd, const char *name);
	/* p->fd is the adopted fd; set size and id, add SHMPOOL_RDONLY if the fd is read-only */
	int (*adopt)(struct shmpool *p);
	/* all of @info but @backend, which pool.c sets */
	int (*info)(struct shmpool *p, struct shmpool_pool_info *info);
	int (*extents)(struct shmpool *p, struct shmpool_extent *ext,
		       unsigned int cap);
};

extern const struct __shmpool_ops __shmpool_dev_ops;
extern const struct __shmpool_ops __shmpool_memfd_ops;
/*
 * backend_memfd.c: after mapping a memfd-backend pool, seal it against
 * shrinking, or (a file that cannot be sealed) have the mapping rescued
 * from a peer's truncation; before unmapping it, forget it.
 */
void __shmpool_memfd_mapped(struct shmpool *p);
void __shmpool_memfd_unmapping(struct shmpool *p);

/* 0 if @name is 1-63 characters of [A-Za-z0-9._-], else -EINVAL */
int __shmpool_check_name(const char *name);

/* SHMPOOL_CAP_* bits about doorbells that @p's backend lacks (for shmpool_info()). */
uint32_t __shmpool_doorbell_lacks(struct shmpool *p);

/*
 * Set a typed named object's identity word to @magic << 32 | @value unless
 * it is set already (lib/ident.c): 0 if it holds that now, -EEXIST if it
 * holds @magic with another value, -EUCLEAN if it holds something else.
 * Without @stamp (the object was not made as this type: see DIR_KIND_*)
 * a word still 0 is left alone and is -EUCLEAN.
 */
int __shmpool_ident_claim(_Atomic uint64_t *ident, uint32_t magic,
			  uint32_t value, bool stamp);

/*
 * fork() (util.c). The library registers one set of handlers when it is
 * loaded. A thread of the parent may hold any of the library's
 * process-wide locks at the copy, and a child that inherits one held by a
 * thread it does not have waits for it for ever; so the prepare stage takes
 * each of them, and the parent and child stages let go of them. The child
 * stage also forgets what belonged to the parent's threads. util.c calls
 * the hooks below in the order their locks nest (prepare outermost first,
 * the others innermost first): keep that order when a lock is added, and
 * give every new process-wide lock a hook.
 */
enum __shmpool_fork_stage {
	__SHMPOOL_FORK_PREPARE,
	__SHMPOOL_FORK_PARENT,
	__SHMPOOL_FORK_CHILD,
};

void __shmpool_ring_atfork(enum __shmpool_fork_stage stage);	/* handles_lock, stash_lock */
void __shmpool_tcache_atfork(enum __shmpool_fork_stage stage);	/* tc_lock */
void __shmpool_sync_atfork(enum __shmpool_fork_stage stage);	/* takeover_lock */
void __shmpool_attach_atfork(enum __shmpool_fork_stage stage);	/* reattach_lock */
void __shmpool_handle_atfork(enum __shmpool_fork_stage stage);	/* table_lock */
void __shmpool_memfd_atfork(enum __shmpool_fork_stage stage);	/* rescue_lock */

/* a hook's lock: taken to prepare, let go of after the copy */
static inline void __shmpool_fork_lock(pthread_mutex_t *m,
				       enum __shmpool_fork_stage stage)
{
	if (stage == __SHMPOOL_FORK_PREPARE)
		pthread_mutex_lock(m);
	else
		pthread_mutex_unlock(m);
}

/* bumped in the child of every fork(), before the child hooks run */
extern atomic_uint __shmpool_fork_gen;

/*
 * util.c: is thread or process @id (of our PID namespace) gone: no such
 * task, or a zombie?
 */
bool __shmpool_task_gone(uint32_t id);
/*
 * 0 if @deadline (NULL: none) is one shmpool_wait() takes, else -EINVAL: a
 * tv_nsec outside [0, 1e9) or a negative tv_sec (shmpool.h). For calls
 * that sleep in slices, which would otherwise pass a bad deadline on to
 * shmpool_wait() only once it fell inside a slice, if ever.
 */
int __shmpool_deadline_check(const struct timespec *deadline);
/* Has @deadline (absolute CLOCK_MONOTONIC; NULL: never) passed? */
bool __shmpool_deadline_passed(const struct timespec *deadline);
/* The earlier of @deadline (NULL: none) and @ms from now (CLOCK_MONOTONIC, in @ts). */
const struct timespec *__shmpool_deadline_within(const struct timespec *deadline,
						 long ms, struct timespec *ts);

/*
 * sync.c: the library's own locks (the heap's, the cache's stripes), never
 * held across a call. Lock is shmpool_mutex_timedlock() with a deadline @ms
 * from the call (-1: none), read off the clock only if the caller has to
 * wait; and a word that names the calling thread while it holds none of
 * these locks is a stale claim, taken over as from a dead owner
 * (-EOWNERDEAD), where shmpool_mutex_lock() would say -EDEADLK. Unlock
 * with __shmpool_lib_unlock() after 0 and after -EOWNERDEAD.
 */
struct shmpool_mutex;
int __shmpool_lib_lock(struct shmpool *p, struct shmpool_mutex *m, long ms);
void __shmpool_lib_unlock(struct shmpool *p, struct shmpool_mutex *m);

/* heap.c: the handle's shmpool_heap_set_lock_timeout() (the cache's locks use it too) */
struct shmpool_heap;
long __shmpool_heap_lock_ms(struct shmpool_heap *h);

/*
 * attach.c: attachments (include/shmpool.h, "Attachments").
 *
 * An owner field in shared memory holds an attachment id (1..2^30-1): the
 * module's on the device backend, the process id on memfd. The pattern for
 * anything that waits on a peer:
 *
 *	seq = __shmpool_death_seq(p);
 *	if (!__shmpool_alive(p, owner)) -> recover;
 *	ret = __shmpool_wait_peer(p, off, word, seq, deadline);
 *	if (ret == -EOWNERDEAD) -> look at the owner again
 *
 * so a death between the look and the sleep is never missed.
 */
#define __SHMPOOL_PEER_POLL_MS	100	/* memfd: a sleeper looks at its peers this often */
/*
 * Failed compare-exchanges on one shared word (a lock, a semaphore, a list
 * top, an owner) before a call stops retrying. Each failure means the word
 * changed between our load and our compare: between well-behaved callers,
 * another operation on it completed, so this many in a row is a peer
 * writing the word in a loop (README, "Trust between processes"). What the
 * call does then is said where it gives up.
 */
#define __SHMPOOL_CAS_TRIES	1024
/* attach @p for this process (handle constructors); 0 or -errno */
int __shmpool_attach(struct shmpool *p);
/* undo __shmpool_attach() (shmpool_close()) */
void __shmpool_detach(struct shmpool *p);
int __shmpool_self_slow(struct shmpool *p, uint32_t *id);
/*
 * This process's id in @p, attaching anew in a fork() child (or a read-only
 * handle's first time): 0 or -errno. Inline, since every lock and unlock
 * asks: two loads and a compare when the handle has its id. The acquire
 * pairs with the release of __self_gen after __self in
 * __shmpool_self_slow(); a handle made by __shmpool_attach() is published
 * to other threads by whatever hands the handle over.
 */
static inline int __shmpool_self(struct shmpool *p, uint32_t *id)
{
	if (__atomic_load_n(&p->__self_gen, __ATOMIC_ACQUIRE) ==
	    atomic_load_explicit(&__shmpool_fork_gen, memory_order_relaxed)) {
		*id = __atomic_load_n(&p->__self, __ATOMIC_RELAXED);
		if (*id)
			return 0;
	}
	return __shmpool_self_slow(p, id);
}
/* is attachment @id of @p alive? (0 and out-of-range ids are not) */
bool __shmpool_alive(struct shmpool *p, uint32_t id);
/* the count of attachment ends so far (device), to pass to __shmpool_wait_peer() */
uint32_t __shmpool_death_seq(struct shmpool *p);
/*
 * shmpool_wait(p, off, expected, deadline, 0), but -EOWNERDEAD when a peer's
 * attachment ended after @seq was read: device at once (WAIT_DEATH); memfd
 * at the end of each __SHMPOOL_PEER_POLL_MS slice, meaning "look again".
 */
int __shmpool_wait_peer(struct shmpool *p, int64_t off, uint32_t expected,
			uint32_t seq, const struct timespec *deadline);
/*
 * __shmpool_wait_peer() for a word that names its owner in @owner_mask
 * bits (non-zero in @expected): where the module can, only the death of
 * the owner the word names ends the sleep (SHMPOOL_WAIT_OWNER), so a lock's
 * sleepers neither wake nor lose their order when other peers come and
 * go; elsewhere any death after @seq does, as in __shmpool_wait_peer().
 */
int __shmpool_wait_owner(struct shmpool *p, int64_t off, uint32_t expected,
			 uint32_t owner_mask, uint32_t seq,
			 const struct timespec *deadline);
/*
 * doorbell.c: the device's SHMPOOL_IOC_WAIT with SHMPOOL_WAIT_DEATH, and
 * with @owner_mask non-zero SHMPOOL_WAIT_OWNER (then @seq is unused)
 */
int __shmpool_dev_wait_death(struct shmpool *p, int64_t off, uint32_t expected,
			     uint32_t seq, uint32_t owner_mask,
			     const struct timespec *deadline);

/*
 * sync.c: owner words. An owner word holds an attachment id in bits 0-29
 * (SHMPOOL_MUTEX_OWNER_MASK); a @tid field beside it, stored with release by
 * the owner right after it took the word and cleared before it releases it,
 * tells apart the threads of the owner's own process.
 */
/* the calling thread's id, cached (no system call after the first) */
uint32_t __shmpool_tid(void);
/*
 * If the owner in *@word is gone (its attachment ended; or, if it is @id,
 * the thread in *@tid exited), make *@word @id | @set | (old & @keep) and
 * *@tid the caller's thread: 0. -EAGAIN if it lives or the word changed.
 */
int __shmpool_owner_take_over(struct shmpool *p, _Atomic uint32_t *word,
			      _Atomic uint32_t *tid, uint32_t id,
			      uint32_t set, uint32_t keep);

/* tcache.c: @p is being closed; close out the caches of heaps still open on it */
void __shmpool_tcache_pool_closing(struct shmpool *p);

/* Set p->size from a size the backend read; -EFBIG if it does not fit size_t. */
static inline int __shmpool_set_size(struct shmpool *p, uint64_t bytes)
{
	if ((uint64_t)(size_t)bytes != bytes)
		return -EFBIG;
	p->size = (size_t)bytes;
	return 0;
}

/*
 * dir.c: does [@off, @off + @len) lie in @h's block area (past the heap's
 * metadata, inside the pool)? For offsets read from shared memory.
 */
struct shmpool_heap;
bool __shmpool_heap_span_ok(const struct shmpool_heap *h, uint64_t off,
			    uint64_t len);

/*
 * What made a named object (its directory entry's @kind, written with the
 * entry under the heap lock): shmpool_obj_create() (a plain object, or one
 * made by a library older than that field), or the open of a config or a
 * cache with a capacity. An open stamps its identity word only on an
 * object of its own kind: a plain object of the right size whose first
 * word is still 0 is somebody else's data.
 */
#define DIR_KIND_PLAIN	0U
#define DIR_KIND_CONFIG	1U
#define DIR_KIND_CACHE	2U

/*
 * dir.c, for config.c and cache.c: find named object @name, or (@size not
 * 0) create it as shmpool_obj_create() does, with the kind @kind
 * (DIR_KIND_* of heap.h) in its directory entry. 1 if this call created
 * it, 0 if it existed, with the kind its entry records in *@kind; the
 * errors of shmpool_obj_create() and shmpool_obj_find().
 */
struct shmpool_obj;
int __shmpool_obj_get(struct shmpool_heap *h, const char *name, size_t size,
		      size_t align, uint32_t *kind, struct shmpool_obj *obj);

/*
 * ring.c, for msg.c: shmpool_ring_enqueue_wait() of one element, where
 * each try is @try_one(@r, @arg) (1: enqueued, 0: not now).
 */
struct shmpool_ring;
int __shmpool_ring_enqueue_wait_with(struct shmpool_ring *r,
				     uint32_t (*try_one)(struct shmpool_ring *r,
							 const void *arg),
				     const void *arg,
				     const struct timespec *deadline);

/*
 * ring.c, for msg.c's receive: a consumer's look at one element between
 * copying it out of its slot and freeing the slot (@idx: its ring index),
 * so that the caller can claim what the element names while it is still
 * in the ring. @taken: the slot was freed already (an element a bulk
 * blocking dequeue stashed). Returns false only to leave the slot to
 * another consumer that is claiming it (a dead consumer's slot, which
 * several may try to take); otherwise the element is consumed.
 */
typedef bool __shmpool_ring_look_fn(struct shmpool_ring *r, const void *elem,
				    uint32_t idx, bool taken, void *arg);
/* shmpool_ring_dequeue() of one element with @look (SPSC, MPMC) */
uint32_t __shmpool_ring_dequeue_with(struct shmpool_ring *r, void *obj,
				     __shmpool_ring_look_fn *look, void *arg);
/* shmpool_ring_dequeue_wait() of one element with @look */
int __shmpool_ring_dequeue_wait_with(struct shmpool_ring *r, void *obj,
				     __shmpool_ring_look_fn *look, void *arg,
				     const struct timespec *deadline);
/*
 * Has the element at index @idx left the ring (its slot freed)? Exact for
 * an index less than a lap from the consumers' (wrap: an element held
 * 2^32 - count indices long may look unconsumed again).
 */
bool __shmpool_ring_consumed(const struct shmpool_ring *r, uint32_t idx);
/*
 * shmpool_ring_enqueue() of one element (SPSC, MPMC) with @look called
 * with the index it takes (@taken false), after the slot is reserved and
 * before the element is written and published: so that a producer
 * killed in between leaves what @look recorded, and the ring's index
 * tells whether the element entered the ring (__shmpool_ring_queued()).
 * @look is called only by a try that enqueues. @look's result is unused.
 */
uint32_t __shmpool_ring_enqueue_with(struct shmpool_ring *r, const void *obj,
				     __shmpool_ring_look_fn *look, void *arg);
/*
 * Is the element of index @idx in the ring now: published and not yet
 * consumed? False for an index whose producer died before it published
 * (never will be: an MPMC hole is skipped, an SPSC side's next producer
 * takes the index over). Exact for an index less than a lap from the
 * consumers', as __shmpool_ring_consumed().
 */
bool __shmpool_ring_queued(const struct shmpool_ring *r, uint32_t idx);

#endif /* SHMPOOL_INTERNAL_H */
