// SPDX-License-Identifier: MIT
/*
 * Shared hash map cache (include/shmpool_cache.h).
 *
 * Locking: bucket b and every entry on its chain belong to stripe b % 64;
 * chains, entry fields and the referenced bits are read and written only
 * under that stripe's shmpool_mutex, which gives the ordering too (lock
 * acquires, unlock releases). An entry is freed only after it was unlinked
 * under its stripe lock: every other thread that could reach it held the
 * same lock, so it has finished with it. The entry count and statistics are
 * relaxed atomics: counters, not synchronisation.
 *
 * A peer may write anything into the cache (README, "Trust between
 * processes"). So a chain walk reads each link once, checks the entry it
 * names (aligned, inside the heap's block area, sane lengths, and the tag
 * that only this cache's entries carry) and stops with -EUCLEAN after
 * max_chain steps (every entry takes at least ENTRY_MIN bytes of the pool)
 * or as soon as it meets a cycle (Brent's tortoise), so no stripe lock is
 * held across an unbounded walk. An entry is written (its bit, its @next
 * link when the entry after it is unlinked or a new one appended, a link
 * to it unlinked, freed) only if the heap also says it is an allocated
 * block big enough for it.
 */
#define _GNU_SOURCE
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "shmpool_cache.h"
#include "shmpool_sync.h"

#define CACHE_MAGIC	0x73636863U	/* "schc" */
#define NR_STRIPES	64
#define MIN_BUCKETS	64

struct cache_shared {
	_Atomic uint64_t ident;		/* CACHE_MAGIC << 32 | capacity; 0 while new */
	_Atomic uint32_t hand;		/* CLOCK hand: next bucket to sweep */
	uint32_t __pad;
	_Atomic uint64_t count;
	_Atomic uint64_t hits, misses, inserts, updates, deletes, evictions;
	struct shmpool_mutex stripe[NR_STRIPES];
	uint64_t bucket[];		/* entry offsets, 0 = end; under stripe */
};

/* lib_cache_test.c reaches the stripe locks there to look at their owners */
_Static_assert(offsetof(struct cache_shared, stripe) == 72, "stripes moved");

struct entry {
	uint64_t next;
	uint64_t hash;
	uint32_t klen;
	uint32_t vlen;
	uint32_t ref;			/* got since the hand last passed */
	uint32_t tag;			/* entry_tag(): this cache's entry at its offset */
	unsigned char data[];		/* key, then value */
};

/* the smallest block an entry takes: header, a 1-byte key, 16-byte granules */
#define ENTRY_MIN	((sizeof(struct entry) + 1 + 15) & ~(size_t)15)

struct shmpool_cache {
	struct shmpool_heap *heap;
	struct cache_shared *sh;
	uint32_t cap;
	uint32_t nb;			/* buckets, a power of two */
	uint64_t off;			/* the object's offset */
	uint64_t max_chain;		/* no chain is longer: pool size / ENTRY_MIN */
};

/* A cache's mark on its entry at @off: not a secret, a sanity check. */
static uint32_t entry_tag(const struct shmpool_cache *c, uint64_t off)
{
	uint64_t x = (off ^ (c->off << 20)) * 0x9e3779b97f4a7c15ULL;

	return (uint32_t)(x >> 32) | 1;
}

static uint32_t nr_buckets(uint32_t cap)
{
	uint32_t nb = MIN_BUCKETS;

	while (nb < cap)
		nb <<= 1;
	return nb;
}

static size_t cache_bytes(uint32_t cap)
{
	return sizeof(struct cache_shared) + (size_t)nr_buckets(cap) * 8;
}

/* FNV-1a, 64 bits */
static uint64_t key_hash(const void *key, size_t n)
{
	const unsigned char *k = key;
	uint64_t h = 14695981039346656037ULL;

	while (n--)
		h = (h ^ *k++) * 1099511628211ULL;
	return h;
}

static void count_add(_Atomic uint64_t *ctr, int64_t n)
{
	atomic_fetch_add_explicit(ctr, (uint64_t)n, memory_order_relaxed);
}

SHMPOOL_EXPORT
int shmpool_cache_open(struct shmpool_heap *h, const char *name,
		       uint32_t capacity, unsigned int flags,
		       struct shmpool_cache **out)
{
	struct shmpool_cache *c;
	struct shmpool_obj obj;
	uint32_t kind = DIR_KIND_CACHE;
	uint64_t ident = 0;
	uint32_t cap;
	int ret;

	if (!h || !out || (flags & ~SHMPOOL_CACHE_CREATE) ||
	    capacity > SHMPOOL_CACHE_CAP_MAX ||
	    ((flags & SHMPOOL_CACHE_CREATE) && !capacity))
		return -EINVAL;
	ret = __shmpool_obj_get(h, name, flags & SHMPOOL_CACHE_CREATE ?
				cache_bytes(capacity) : 0, 64, &kind, &obj);
	if (ret < 0)
		return ret;
	if (obj.size < cache_bytes(1) ||
	    !shmpool_heap_ptr(h, obj.off, obj.size))
		return -EUCLEAN;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->heap = h;
	c->sh = shmpool_heap_ptr(h, obj.off, obj.size);
	if (capacity) {
		ret = -EEXIST;
		if (cache_bytes(capacity) != obj.size)
			goto err;
		/* only a cache object is ours to finish (DIR_KIND_*) */
		ret = __shmpool_ident_claim(&c->sh->ident, CACHE_MAGIC, capacity,
					    kind == DIR_KIND_CACHE);
		if (ret)
			goto err;
		ident = (uint64_t)CACHE_MAGIC << 32 | capacity;
	} else {
		/* acquire: pairs with __shmpool_ident_claim() */
		ident = atomic_load_explicit(&c->sh->ident, memory_order_acquire);
		/* being created: try again; unless no cache's open made it */
		ret = kind == DIR_KIND_CACHE ? -EAGAIN : -EUCLEAN;
		if (!ident)
			goto err;
	}
	cap = (uint32_t)ident;
	ret = -EUCLEAN;
	if ((uint32_t)(ident >> 32) != CACHE_MAGIC || !cap ||
	    cap > SHMPOOL_CACHE_CAP_MAX || cache_bytes(cap) != obj.size)
		goto err;
	c->cap = cap;
	c->nb = nr_buckets(cap);
	c->off = obj.off;
	c->max_chain = h->pool->size / ENTRY_MIN;
	*out = c;
	return 0;
err:
	free(c);
	return ret;
}

SHMPOOL_EXPORT
int shmpool_cache_close(struct shmpool_cache *c)
{
	free(c);
	return 0;
}

static struct shmpool_mutex *stripe_of(struct shmpool_cache *c, uint32_t b)
{
	return &c->sh->stripe[b % NR_STRIPES];
}

/*
 * A holder that died leaves nothing to repair: every change to a chain is
 * one store of a link to an entry already complete (entries are freed after
 * the unlock), so a chain is whole at every instruction. At worst the entry
 * count is one off, or an unlinked entry is never freed. The mutex takes
 * a dead holder's stripe over (its owner is an attachment: at once on the
 * device, within about 100 ms on memfd) and never a live holder's, which
 * is waited for up to the heap handle's lock timeout (-ETIMEDOUT).
 */
static int lock_bucket(struct shmpool_cache *c, uint32_t b)
{
	int ret = __shmpool_lib_lock(c->heap->pool, stripe_of(c, b),
				     __shmpool_heap_lock_ms(c->heap));

	return ret == -EOWNERDEAD ? 0 : ret;
}

static void unlock_bucket(struct shmpool_cache *c, uint32_t b)
{
	__shmpool_lib_unlock(c->heap->pool, stripe_of(c, b));
}

/* One read of a link: a peer may change it between two reads. */
static uint64_t link_load(const uint64_t *l)
{
	return __atomic_load_n(l, __ATOMIC_RELAXED);
}

static uint32_t u32_load(const uint32_t *v)
{
	return __atomic_load_n(v, __ATOMIC_RELAXED);
}

/*
 * The entry at @off, checked to lie in the heap's block area whole, with
 * sane lengths (read once into *@klen, *@vlen) and this cache's tag; NULL
 * if not.
 */
static struct entry *entry_at(struct shmpool_cache *c, uint64_t off,
			      uint32_t *klen, uint32_t *vlen)
{
	struct entry *e;

	if (off % 16 || !__shmpool_heap_span_ok(c->heap, off, sizeof(*e)))
		return NULL;
	e = shmpool_heap_ptr(c->heap, off, sizeof(*e));
	*klen = u32_load(&e->klen);
	*vlen = u32_load(&e->vlen);
	if (!*klen || *klen > SHMPOOL_CACHE_KEY_MAX ||
	    *vlen > SHMPOOL_CACHE_VALUE_MAX ||
	    u32_load(&e->tag) != entry_tag(c, off) ||
	    !__shmpool_heap_span_ok(c->heap, off, sizeof(*e) + *klen + *vlen))
		return NULL;
	return e;
}

/*
 * Before writing the entry at @off (its bit, its unlinking, its free):
 * the heap must hold an allocated block there big enough for it, so a
 * forged link cannot make us write into another block or a free one.
 */
static bool entry_live(struct shmpool_cache *c, uint64_t off, uint32_t klen,
		       uint32_t vlen)
{
	int64_t n = shmpool_alloc_size(c->heap, off);

	return n >= (int64_t)(sizeof(struct entry) + klen + vlen);
}

/* A chain walk's bound and cycle check (Brent): see the top. */
struct walk {
	uint64_t tortoise;
	uint64_t steps;
	uint64_t lap, power;
};

#define WALK_INIT { 0, 0, 0, 1 }

static int walk_step(const struct shmpool_cache *c, struct walk *w,
		     uint64_t off)
{
	if (off == w->tortoise || ++w->steps > c->max_chain)
		return -EUCLEAN;
	if (++w->lap == w->power) {
		w->tortoise = off;
		w->power <<= 1;
		w->lap = 0;
	}
	return 0;
}

/* what find() found */
struct hit {
	uint64_t *link;			/* the link that holds its offset */
	struct entry *e;
	uint64_t off;
	uint32_t vlen;
};

/*
 * Find @key in bucket @b (locked): 1 with @hit filled in, 0 if absent
 * (hit->link is then the chain's end), -EUCLEAN on a damaged chain. With
 * @relink the caller will store into hit->link: if that link is an entry's
 * @next, that entry must be live too (entry_live()), else a forged link to
 * a freed entry would have us write into a free block (its list links).
 */
static int find(struct shmpool_cache *c, uint32_t b, uint64_t hash,
		const void *key, size_t klen, bool relink, struct hit *hit)
{
	struct walk w = WALK_INIT;
	uint64_t *l = &c->sh->bucket[b], off, prev = 0;
	uint32_t kl, vl, pkl = 0, pvl = 0;
	struct entry *e;
	int ret = 0;

	while ((off = link_load(l))) {
		e = entry_at(c, off, &kl, &vl);
		if (!e || walk_step(c, &w, off))
			return -EUCLEAN;
		if (kl == klen && e->hash == hash &&
		    !memcmp(e->data, key, klen)) {
			if (!entry_live(c, off, kl, vl))
				return -EUCLEAN;
			hit->e = e;
			hit->off = off;
			hit->vlen = vl;
			ret = 1;
			break;
		}
		prev = off;
		pkl = kl;
		pvl = vl;
		l = &e->next;
	}
	if (relink && prev && !entry_live(c, prev, pkl, pvl))
		return -EUCLEAN;
	hit->link = l;
	return ret;
}

/*
 * Lock @key's bucket (in *@b) and find it there, as find() does. Any
 * error but find()'s -EUCLEAN comes from the lock: nothing is locked then.
 */
static int lock_find(struct shmpool_cache *c, const void *key, size_t klen,
		     bool relink, uint32_t *b, struct hit *hit)
{
	uint64_t hash = key_hash(key, klen);
	int ret;

	*b = (uint32_t)hash & (c->nb - 1);
	ret = lock_bucket(c, *b);
	return ret ? ret : find(c, *b, hash, key, klen, relink, hit);
}

static int check_key(struct shmpool_cache *c, const void *key, size_t klen)
{
	return !c || !key || !klen || klen > SHMPOOL_CACHE_KEY_MAX ? -EINVAL : 0;
}

SHMPOOL_EXPORT
int shmpool_cache_get(struct shmpool_cache *c, const void *key, size_t klen,
		      void *val, size_t len)
{
	struct hit hit;
	uint32_t b;
	int ret;

	ret = check_key(c, key, klen);
	if (ret || (!val && len))
		return ret ? ret : -EINVAL;
	ret = lock_find(c, key, klen, false, &b, &hit);
	if (ret < 0 && ret != -EUCLEAN)
		return ret;	/* not locked */
	if (ret == 1) {
		hit.e->ref = 1;
		if (hit.vlen > len) {
			ret = -EMSGSIZE;
		} else {
			memcpy(val, hit.e->data + klen, hit.vlen);
			ret = (int)hit.vlen;
		}
	} else if (!ret) {
		ret = -ENOENT;
	}
	unlock_bucket(c, b);
	if (ret >= 0 || ret == -EMSGSIZE)
		count_add(&c->sh->hits, 1);
	else if (ret == -ENOENT)
		count_add(&c->sh->misses, 1);
	return ret;
}

/*
 * Evict by CLOCK until the count is within the capacity: the hand visits
 * one bucket at a time under its stripe lock, clears referenced bits and
 * unlinks the first entry it finds unreferenced. Two sweeps of the whole
 * table clear every bit and find a victim, unless other threads keep
 * getting every entry; then we give up and leave it to the next insert.
 */
static void evict(struct shmpool_cache *c)
{
	uint64_t *l, off, victim;
	struct entry *e;
	uint32_t b, i, kl, vl;
	struct walk w;

	for (i = 0; i < 2 * c->nb + 1; i++) {
		if (atomic_load_explicit(&c->sh->count, memory_order_relaxed) <=
		    c->cap)
			return;
		b = atomic_fetch_add_explicit(&c->sh->hand, 1,
					      memory_order_relaxed) & (c->nb - 1);
		if (lock_bucket(c, b))
			return;
		victim = 0;
		w = (struct walk)WALK_INIT;
		for (l = &c->sh->bucket[b]; (off = link_load(l)); l = &e->next) {
			e = entry_at(c, off, &kl, &vl);
			/* a damaged chain: leave it (get/put/delete say -EUCLEAN) */
			if (!e || walk_step(c, &w, off) || !entry_live(c, off, kl, vl))
				break;
			if (e->ref) {
				e->ref = 0;
				continue;
			}
			victim = off;
			*l = link_load(&e->next);
			count_add(&c->sh->count, -1);
			count_add(&c->sh->evictions, 1);
			break;
		}
		unlock_bucket(c, b);
		if (victim)
			shmpool_free(c->heap, victim);
	}
}

SHMPOOL_EXPORT
int shmpool_cache_put(struct shmpool_cache *c, const void *key, size_t klen,
		      const void *val, size_t vlen, unsigned int flags)
{
	struct entry *n;
	uint64_t hash, noff, ooff = 0;
	struct hit hit;
	uint32_t b;
	int ret;

	ret = check_key(c, key, klen);
	if (ret)
		return ret;
	if ((!val && vlen) || vlen > SHMPOOL_CACHE_VALUE_MAX ||
	    (flags & ~SHMPOOL_CACHE_IF_ABSENT))
		return -EINVAL;
	/* allocate and fill outside the lock; nobody sees it before it is linked */
	ret = shmpool_alloc(c->heap, sizeof(*n) + klen + vlen, &noff);
	if (ret)
		return ret;
	n = shmpool_heap_ptr(c->heap, noff, sizeof(*n) + klen + vlen);
	hash = key_hash(key, klen);
	n->hash = hash;
	n->klen = (uint32_t)klen;
	n->vlen = (uint32_t)vlen;
	n->ref = 0;
	n->tag = entry_tag(c, noff);
	memcpy(n->data, key, klen);
	if (vlen)
		memcpy(n->data + klen, val, vlen);
	b = (uint32_t)hash & (c->nb - 1);
	ret = lock_bucket(c, b);
	if (ret)
		goto free_new;
	ret = find(c, b, hash, key, klen, true, &hit);
	if (ret == 1 && (flags & SHMPOOL_CACHE_IF_ABSENT)) {
		ret = -EEXIST;
	} else if (ret == 1) {
		/* replace: the new entry takes the old one's place and bit */
		ooff = hit.off;
		n->next = link_load(&hit.e->next);
		n->ref = hit.e->ref;
		*hit.link = noff;
		noff = 0;
	} else if (ret == 0) {
		n->next = 0;
		*hit.link = noff;
		noff = 0;
		count_add(&c->sh->count, 1);
	}
	unlock_bucket(c, b);
	if (ret == 1) {
		count_add(&c->sh->updates, 1);
		shmpool_free(c->heap, ooff);	/* unlinked under the lock */
	} else if (ret == 0) {
		count_add(&c->sh->inserts, 1);
		evict(c);
	}
free_new:
	if (noff)
		shmpool_free(c->heap, noff);
	return ret;
}

SHMPOOL_EXPORT
int shmpool_cache_delete(struct shmpool_cache *c, const void *key,
			 size_t klen)
{
	struct hit hit;
	uint64_t off = 0;
	uint32_t b;
	int ret;

	ret = check_key(c, key, klen);
	if (ret)
		return ret;
	ret = lock_find(c, key, klen, true, &b, &hit);
	if (ret < 0 && ret != -EUCLEAN)
		return ret;	/* not locked */
	if (ret == 1) {
		off = hit.off;
		*hit.link = link_load(&hit.e->next);
		count_add(&c->sh->count, -1);
		ret = 0;
	} else if (!ret) {
		ret = -ENOENT;
	}
	unlock_bucket(c, b);
	if (off) {
		count_add(&c->sh->deletes, 1);
		shmpool_free(c->heap, off);
	}
	return ret;
}

SHMPOOL_EXPORT
int shmpool_cache_iterate(struct shmpool_cache *c,
			  int (*fn)(const void *key, size_t klen,
				    const void *val, size_t vlen, void *arg),
			  void *arg)
{
	struct entry *e;
	struct walk w;
	uint64_t off;
	uint32_t b, kl, vl;
	int ret = 0, n = 0;

	if (!c || !fn)
		return -EINVAL;
	for (b = 0; b < c->nb && !ret; b++) {
		ret = lock_bucket(c, b);
		if (ret)
			return ret;
		w = (struct walk)WALK_INIT;
		for (off = link_load(&c->sh->bucket[b]); off && !ret;
		     off = link_load(&e->next)) {
			e = entry_at(c, off, &kl, &vl);
			/*
			 * An entry of another bucket is damage, not one more
			 * entry: else a peer that links every bucket to one
			 * chain has us call back nb times for each entry.
			 */
			if (!e || walk_step(c, &w, off) ||
			    ((uint32_t)__atomic_load_n(&e->hash, __ATOMIC_RELAXED) &
			     (c->nb - 1)) != b) {
				ret = -EUCLEAN;
				break;
			}
			ret = fn(e->data, kl, e->data + kl, vl, arg);
			n++;
		}
		unlock_bucket(c, b);
	}
	return ret ? ret : n;
}

/* the shared counters of @sh into @st (relaxed: statistics, no order) */
static void cache_counters(struct cache_shared *sh, struct shmpool_cache_stats *st)
{
	st->hits = atomic_load_explicit(&sh->hits, memory_order_relaxed);
	st->misses = atomic_load_explicit(&sh->misses, memory_order_relaxed);
	st->inserts = atomic_load_explicit(&sh->inserts, memory_order_relaxed);
	st->updates = atomic_load_explicit(&sh->updates, memory_order_relaxed);
	st->deletes = atomic_load_explicit(&sh->deletes, memory_order_relaxed);
	st->evictions = atomic_load_explicit(&sh->evictions, memory_order_relaxed);
	st->entries = atomic_load_explicit(&sh->count, memory_order_relaxed);
}

SHMPOOL_EXPORT
int shmpool_cache_stats(struct shmpool_cache *c,
			struct shmpool_cache_stats *st)
{
	struct cache_shared *sh;

	if (!c || !st)
		return -EINVAL;
	sh = c->sh;
	cache_counters(sh, st);
	st->capacity = c->cap;
	return 0;
}

/*
 * Read-only introspection of the cache at @off: shmpool_cache_stats()
 * without a handle or a write (@p may be SHMPOOL_RDONLY).
 */
SHMPOOL_EXPORT
int shmpool_cache_inspect(struct shmpool *p, uint64_t off,
			  struct shmpool_cache_stats *st)
{
	struct cache_shared *sh;
	uint64_t ident;

	if (!p || !st)
		return -EINVAL;
	memset(st, 0, sizeof(*st));
	sh = shmpool_ptr(p, off, sizeof(*sh));
	if (!sh)
		return -EINVAL;
	if (off % _Alignof(struct cache_shared))
		return -EPROTOTYPE;	/* objects are made aligned: not one */
	/* acquire: pairs with __shmpool_ident_claim() (the layout) */
	ident = atomic_load_explicit(&sh->ident, memory_order_acquire);
	if ((uint32_t)(ident >> 32) != CACHE_MAGIC)
		return -EPROTOTYPE;
	cache_counters(sh, st);
	st->capacity = (uint32_t)ident;
	return 0;
}
