/* SPDX-License-Identifier: MIT */
/*
 * libshmpool cache: a hash map of byte-string keys and values in a pool,
 * shared by every process that attaches the pool's heap.
 *
 * A named heap object holds the table: a power-of-two array of buckets
 * (chains of entries), 64 stripe locks (shmpool_mutex; bucket b is guarded
 * by stripe b % 64), an entry count, a clock hand and statistics. Each entry
 * is one heap block {next, hash, lengths, referenced bit, key, value}.
 *
 * Every operation on a key takes its stripe lock: values are copied out
 * under it, and entries are unlinked under it and freed only after that,
 * so no reader can see a value being freed under it (there are no
 * lock-free readers). A replaced value is a new entry swapped into the
 * chain; the old one is freed at once, which is safe for the same reason.
 *
 * Capacity is a number of entries, fixed at creation. An insert that takes
 * the count above it evicts by CLOCK (second chance, an approximation of
 * LRU): the hand sweeps buckets; a get sets an entry's referenced bit, the
 * sweep clears set bits and evicts the first entry it finds clear. Eviction
 * runs after the inserting stripe is unlocked and holds one stripe at a
 * time, so there is no lock order to get wrong; while several processes
 * insert at once the count can exceed the capacity by at most one entry
 * per concurrent insert, and is back within it when they return.
 *
 * Owner death: a process that dies holding a stripe lock does not leave its
 * stripe locked. The stripe locks are shmpool_mutexes owned by attachments
 * (shmpool_sync.h, "Owner death"): the next caller that needs the stripe
 * takes it over (device: at once; memfd: within about 100 ms) and carries
 * on; a holder alive in another PID namespace is waited for (device). There
 * is nothing to repair: every change to a chain is one store of a link to
 * an entry already complete, so chains are whole at every instruction. What
 * a death can leave is bounded: the entry count one off (so eviction keeps
 * one entry more or less than the capacity), and the heap block of one
 * entry the dead process had allocated or unlinked but not yet linked or
 * freed, which the cache no longer reaches (shmpool_alloc.h says what the
 * heap does with a dead process's blocks). Callers see no error for it.
 *
 * Concurrency: every call may run concurrently with every other, from any
 * thread of any process, except shmpool_cache_close(), the last call on its
 * handle. The iterate callback runs under a stripe lock and must not call
 * the cache: a call for a key on the stripe being walked returns -EDEADLK.
 */
#ifndef SHMPOOL_CACHE_H
#define SHMPOOL_CACHE_H

#include "shmpool.h"
#include "shmpool_alloc.h"

#ifdef __cplusplus
extern "C" {
#endif

struct shmpool_cache;

#define SHMPOOL_CACHE_CREATE	(1U << 0)	/* open: create if absent */
#define SHMPOOL_CACHE_IF_ABSENT	(1U << 0)	/* put: -EEXIST if the key is there */

#define SHMPOOL_CACHE_KEY_MAX	4096U		/* key bytes: 1..this */
#define SHMPOOL_CACHE_VALUE_MAX	(1U << 20)	/* value bytes: 0..this */
#define SHMPOOL_CACHE_CAP_MAX	(1U << 22)	/* entries */

/**
 * struct shmpool_cache_stats - counters since creation, all processes
 * @hits: gets that found the key
 * @misses: gets that did not
 * @inserts: puts that added a key
 * @updates: puts that replaced a value
 * @deletes: successful deletes
 * @evictions: entries evicted to stay within the capacity
 * @entries: entries now
 * @capacity: the capacity fixed at creation
 */
struct shmpool_cache_stats {
	uint64_t hits;
	uint64_t misses;
	uint64_t inserts;
	uint64_t updates;
	uint64_t deletes;
	uint64_t evictions;
	uint64_t entries;
	uint64_t capacity;
};

/*
 * Open cache @name of @h's heap, creating it for @capacity entries
 * (1..SHMPOOL_CACHE_CAP_MAX) with SHMPOOL_CACHE_CREATE. Without CREATE,
 * @capacity 0 accepts any. -ENOENT: absent; -EEXIST: another capacity;
 * -EUCLEAN: the object is not a cache (a @capacity never makes a cache of
 * an object that shmpool_obj_create() or another type made, even one still
 * all zeroes, and without one such an object is -EUCLEAN at once);
 * -EAGAIN (@capacity 0): its creator
 * has not stamped it yet (or died first): open with the capacity, which
 * finishes the creation, or call again; else as shmpool_obj_create().
 */
int shmpool_cache_open(struct shmpool_heap *h, const char *name,
		       uint32_t capacity, unsigned int flags,
		       struct shmpool_cache **out);
/* Free the handle (NULL is fine); the cache stays in the pool. */
int shmpool_cache_close(struct shmpool_cache *c);

/*
 * get, put, delete and iterate return -EUCLEAN for a damaged chain (a peer
 * wrote into the cache: README, "Trust between processes"): each link is
 * checked before use and a walk stops at a cycle or after pool size / 48
 * entries (iterate also at an entry of another bucket's chain), with the
 * stripe unlocked and nothing written. They wait for a
 * stripe's lock at most the heap handle's lock timeout
 * (shmpool_heap_set_lock_timeout(), 10 s unless set), then return
 * -ETIMEDOUT having changed nothing: a live peer holds that stripe. A
 * stripe lock that names the calling thread while it is in no cache call
 * (a claim left by a thread whose id was recycled, or written by a peer)
 * is taken over as from a dead holder.
 *
 * Copy the value of @key into @val (@len bytes). Returns the value's
 * length; -ENOENT if absent; -EMSGSIZE if @len is too small (nothing
 * is copied; a get with SHMPOOL_CACHE_VALUE_MAX bytes always fits).
 */
int shmpool_cache_get(struct shmpool_cache *c, const void *key, size_t klen,
		      void *val, size_t len);
/*
 * Set @key to @val. 0: inserted; 1: replaced; -EEXIST with
 * SHMPOOL_CACHE_IF_ABSENT if present (unchanged); -ENOMEM if the heap is
 * full; -EINVAL for bad lengths or flags.
 */
int shmpool_cache_put(struct shmpool_cache *c, const void *key, size_t klen,
		      const void *val, size_t vlen, unsigned int flags);
/* Remove @key; -ENOENT if absent. */
int shmpool_cache_delete(struct shmpool_cache *c, const void *key,
			 size_t klen);
/*
 * Call @fn for each entry, bucket by bucket under that bucket's stripe
 * lock (entries added or removed meanwhile in other buckets may or may
 * not be seen). @key and @val point into the pool, valid only until @fn
 * returns. A non-zero return from @fn stops the walk and is returned;
 * else the number of entries visited.
 */
int shmpool_cache_iterate(struct shmpool_cache *c,
			  int (*fn)(const void *key, size_t klen,
				    const void *val, size_t vlen, void *arg),
			  void *arg);
/* Fill *@st. */
int shmpool_cache_stats(struct shmpool_cache *c,
			struct shmpool_cache_stats *st);

/*
 * shmpool_cache_stats() of the cache at pool offset @off, without a handle
 * and without writing (@p may be SHMPOOL_RDONLY). -EPROTOTYPE: no cache
 * there; -EINVAL.
 */
int shmpool_cache_inspect(struct shmpool *p, uint64_t off,
			  struct shmpool_cache_stats *st);

#ifdef __cplusplus
}
#endif

#endif /* SHMPOOL_CACHE_H */
