// SPDX-License-Identifier: MIT
/*
 * Versioned config objects (include/shmpool_state.h): a double-buffered
 * seqlock in a named heap object.
 *
 * Layout of the object: a 64-byte header (struct cfg_shared), then two
 * buffers of round_up(capacity, 64) bytes. The version @seq says which
 * buffer is current (seq & 1); @begin is the version the last writer began
 * to write (seq or seq + 1). A writer of version v only writes buffer v & 1,
 * which readers of version v - 1 do not read; it is the buffer of version
 * v - 2. So a reader that copied version s must retry only if a writer
 * began version s + 2 or later, i.e. if @begin - s >= 2 after its copy.
 *
 * Ordering (C11; each pairing named at both ends):
 * (W1) writer: store @begin = v, release fence, then the buffer stores.
 * (R2) reader: the buffer loads, acquire fence, then load @begin.
 *	If a reader's load read a store of writer v, W1 synchronises with R2
 *	and the reader's @begin load sees v or later: it retries.
 * (W3) writer: the buffer and @len stores, then store-release @seq = v.
 * (R1) reader: load-acquire @seq, then the buffer loads: it sees all of
 *	version v's contents.
 * Buffer words are copied with relaxed atomic accesses so that the races
 * the protocol tolerates (and then discards) are not data races in C11.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "shmpool_state.h"
#include "shmpool_sync.h"

#define CFG_MAGIC	0x73636667U	/* "scfg" */
#define CFG_HDR		64
#define CFG_CAP_MAX	(16U << 20)
#define CFG_OPEN_WAIT_MS 2000	/* open without a capacity: creator's window */
/*
 * Bounds on the loops over the shared header (a peer may write anything
 * there). A read copies at most CFG_READ_TRIES times: each retry means a
 * writer began version s + 2 during the copy, i.e. two versions were
 * published meanwhile; writers that keep doing that for cfg_read_tries()
 * copies in a row make the read -EAGAIN: 65536 for blobs up to 4 KiB, fewer
 * for larger ones so that a read never copies more than 256 MiB, and never
 * fewer than 256. (A reader that a busy writer outruns hundreds of times in
 * a row is ordinary under a sanitizer or an emulator: the bound is for a
 * peer that fakes writers, not for writers.) A retry during which the published version did
 * not move at all cannot come from a writer (a writer stores @begin = @seq
 * + 1 after it read @seq): after CFG_STUCK_TRIES of those the header is
 * -EUCLEAN. write_begin() retries its lock CFG_LOCK_TRIES times.
 */
#define CFG_READ_TRIES	65536
#define CFG_READ_BYTES	(256U << 20)
#define CFG_STUCK_TRIES	4
#define CFG_LOCK_TRIES	16
/*
 * The writes this thread has begun and not yet committed or aborted, by
 * header address and attachment id. The lock word alone cannot say: a word
 * naming this thread is also what a thread of ours leaves behind when it
 * dies mid-update and the kernel gives its id to a new thread, or what a
 * peer may write there. Such a claim, with no write of ours behind it, is
 * taken over like a dead writer's. Writes begun beyond CFG_HELD_MAX at once
 * are only counted; while any are, a claim in our name not found here is
 * taken for a real one (-EBUSY), as before this record existed.
 */
#define CFG_HELD_MAX	16

static _Thread_local struct {
	const void *sh;
	uint32_t id;
} cfg_held[CFG_HELD_MAX];
static _Thread_local unsigned int cfg_held_unrecorded;

struct cfg_shared {
	_Atomic uint64_t ident;		/* CFG_MAGIC << 32 | capacity; 0 while new */
	_Atomic uint64_t seq;		/* published version; current buffer seq & 1 */
	_Atomic uint64_t begin;		/* version being (or last) written */
	_Atomic uint64_t len[2];	/* blob length in each buffer */
	_Atomic uint32_t owner;		/* the writer's attachment id, 0 if none */
	struct shmpool_event changed;	/* signalled after each publish */
	_Atomic uint32_t owner_tid;	/* the writer's thread (an owner word's @tid) */
	uint32_t __pad;
	uint64_t __reserved;
};

_Static_assert(sizeof(struct cfg_shared) <= CFG_HDR, "config header");

struct shmpool_config {
	struct shmpool_heap *heap;
	struct cfg_shared *sh;
	_Atomic uint64_t *buf[2];	/* stride round_up(cap, 64), 64-aligned */
	size_t cap;
	bool writing;			/* a write_begin() through it is open */
};

static size_t cfg_stride(size_t cap)
{
	return (cap + 63) & ~(size_t)63;
}

static int cfg_bind(struct shmpool_config *c, uint64_t off, size_t cap)
{
	char *base = shmpool_heap_ptr(c->heap, off, CFG_HDR + 2 * cfg_stride(cap));

	if (!base)
		return -EUCLEAN;
	c->sh = (struct cfg_shared *)base;
	c->buf[0] = (_Atomic uint64_t *)(base + CFG_HDR);
	c->buf[1] = (_Atomic uint64_t *)(base + CFG_HDR + cfg_stride(cap));
	c->cap = cap;
	return 0;
}

/* Wait for the creator's ident store (open without a capacity). */
static int cfg_wait_ident(struct cfg_shared *sh, uint64_t *ident)
{
	struct timespec ts = { 0, 1000000 };
	int i, cs, ret = -EAGAIN;

	/* not a cancellation point (shmpool.h), as nanosleep() would be */
	pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &cs);
	for (i = 0; i < CFG_OPEN_WAIT_MS; i++) {
		/* acquire: pairs with __shmpool_ident_claim() */
		*ident = atomic_load_explicit(&sh->ident, memory_order_acquire);
		if (*ident) {
			ret = 0;
			break;
		}
		nanosleep(&ts, NULL);
	}
	pthread_setcancelstate(cs, NULL);
	return ret;
}

SHMPOOL_EXPORT
int shmpool_config_open(struct shmpool_heap *h, const char *name,
			size_t capacity, unsigned int flags,
			struct shmpool_config **out)
{
	struct shmpool_config *c;
	struct shmpool_obj obj;
	uint32_t kind = DIR_KIND_CONFIG;
	uint64_t ident = 0;
	size_t cap;
	int ret;

	if (!h || !out || (flags & ~SHMPOOL_CONFIG_CREATE) ||
	    capacity > CFG_CAP_MAX ||
	    ((flags & SHMPOOL_CONFIG_CREATE) && !capacity))
		return -EINVAL;
	ret = __shmpool_obj_get(h, name, flags & SHMPOOL_CONFIG_CREATE ?
				CFG_HDR + 2 * cfg_stride(capacity) : 0,
				64, &kind, &obj);
	if (ret < 0)
		return ret;
	if (obj.size < CFG_HDR + 128 || (obj.size - CFG_HDR) % 128)
		return -EUCLEAN;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->heap = h;
	/* the largest capacity the object has room for, until ident says */
	cap = (obj.size - CFG_HDR) / 2;
	ret = cfg_bind(c, obj.off, cap);
	if (ret)
		goto err;
	if (capacity) {
		ret = -EEXIST;
		if (cfg_stride(capacity) != cap)
			goto err;
		/* only a config object is ours to finish (DIR_KIND_*) */
		ret = __shmpool_ident_claim(&c->sh->ident, CFG_MAGIC,
					    (uint32_t)capacity,
					    kind == DIR_KIND_CONFIG);
		if (ret)
			goto err;
		ident = (uint64_t)CFG_MAGIC << 32 | capacity;
	} else if (kind != DIR_KIND_CONFIG) {
		/* acquire: pairs with __shmpool_ident_claim() (an older library's) */
		ident = atomic_load_explicit(&c->sh->ident, memory_order_acquire);
		/* no config's open made it: nobody will stamp it (DIR_KIND_*) */
		ret = -EUCLEAN;
		if (!ident)
			goto err;
	} else {
		ret = cfg_wait_ident(c->sh, &ident);
		if (ret)
			goto err;
	}
	if ((uint32_t)(ident >> 32) != CFG_MAGIC ||
	    cfg_stride((uint32_t)ident) != cap || !(uint32_t)ident) {
		ret = -EUCLEAN;
		goto err;
	}
	c->cap = (uint32_t)ident;
	*out = c;
	return 0;
err:
	free(c);
	return ret;
}

static int is_writer(struct shmpool_config *c, uint32_t *id);
static void writer_release(struct shmpool_config *c, uint32_t id);

/*
 * A write the calling thread began through @c and did not end is abandoned
 * (nothing of it was published): else the lock word would name this live
 * thread until the process exits, and every writer would get -EBUSY.
 */
SHMPOOL_EXPORT
int shmpool_config_close(struct shmpool_config *c)
{
	uint32_t id;

	/* the thread check first: a fork() child's close must not attach */
	if (c && c->writing &&
	    atomic_load_explicit(&c->sh->owner_tid, memory_order_relaxed) ==
	    __shmpool_tid() && !is_writer(c, &id))
		writer_release(c, id);
	free(c);
	return 0;
}

SHMPOOL_EXPORT
size_t shmpool_config_capacity(const struct shmpool_config *c)
{
	return c->cap;
}

SHMPOOL_EXPORT
uint64_t shmpool_config_version(const struct shmpool_config *c)
{
	/* acquire: pairs with (W3), so a later read sees at least this version */
	return atomic_load_explicit(&c->sh->seq, memory_order_acquire);
}

/* Copy @n bytes from buffer @src word by word (relaxed: see the top). */
static void copy_out(void *dst, _Atomic uint64_t *src, size_t n)
{
	char *d = dst;
	uint64_t w;
	size_t i;

	for (i = 0; i + 8 <= n; i += 8) {
		w = atomic_load_explicit(&src[i / 8], memory_order_relaxed);
		memcpy(d + i, &w, 8);
	}
	if (i < n) {
		w = atomic_load_explicit(&src[i / 8], memory_order_relaxed);
		memcpy(d + i, &w, n - i);
	}
}

static void copy_in(_Atomic uint64_t *dst, const void *src, size_t n)
{
	const char *s = src;
	uint64_t w;
	size_t i;

	for (i = 0; i + 8 <= n; i += 8) {
		memcpy(&w, s + i, 8);
		atomic_store_explicit(&dst[i / 8], w, memory_order_relaxed);
	}
	if (i < n) {
		w = 0;
		memcpy(&w, s + i, n - i);
		atomic_store_explicit(&dst[i / 8], w, memory_order_relaxed);
	}
}

/* How many copies a read may make (see CFG_READ_TRIES): from the capacity */
static int cfg_read_tries(size_t cap)
{
	size_t t = CFG_READ_BYTES / cfg_stride(cap > 64 ? cap : 64);

	return t > CFG_READ_TRIES ? CFG_READ_TRIES : t < 256 ? 256 : (int)t;
}

SHMPOOL_EXPORT
int shmpool_config_read(struct shmpool_config *c, void *buf, size_t len,
			uint64_t *version)
{
	uint64_t s, n, b, last = 0;
	int tries, stuck = 0, max_tries;

	if (!c || (!buf && len))
		return -EINVAL;
	max_tries = cfg_read_tries(c->cap);
	for (tries = 0;; tries++) {
		/* (R1): pairs with (W3) in commit */
		s = atomic_load_explicit(&c->sh->seq, memory_order_acquire);
		if (!s)
			return -ENODATA;
		n = atomic_load_explicit(&c->sh->len[s & 1],
					 memory_order_relaxed);
		if (n <= len && n <= c->cap)
			copy_out(buf, c->buf[s & 1], n);
		/* (R2): pairs with (W1) in write_begin */
		atomic_thread_fence(memory_order_acquire);
		b = atomic_load_explicit(&c->sh->begin, memory_order_relaxed);
		if (b < s)
			return -EUCLEAN;	/* a writer stores begin before seq */
		if (b - s < 2)
			break;
		/* a writer began to overwrite version s: a newer one is out */
		if (tries && s == last && ++stuck >= CFG_STUCK_TRIES)
			return -EUCLEAN;	/* ... but none came: no writer did this */
		if (tries + 1 >= max_tries)
			return -EAGAIN;
		last = s;
	}
	if (version)
		*version = s;
	if (n > c->cap)
		return -EUCLEAN;
	return n > len ? -EMSGSIZE : (int)n;
}

/*
 * Has a writer other than @seen (a writer already dead when the wait
 * began) died mid-update? Writers of the caller's own process are not
 * judged here: their process lives.
 */
static bool writer_died(struct shmpool_config *c, uint32_t seen, uint32_t id)
{
	uint32_t o = atomic_load(&c->sh->owner);

	return o && o != seen && o != id && !__shmpool_alive(c->heap->pool, o);
}

SHMPOOL_EXPORT
int shmpool_config_wait(struct shmpool_config *c, uint64_t since,
			const struct timespec *deadline, uint64_t *version)
{
	struct shmpool *p;
	uint32_t key, id, seq, seen;
	int64_t off;
	uint64_t v;
	int ret;

	if (!c)
		return -EINVAL;
	ret = __shmpool_deadline_check(deadline);
	if (ret)
		return ret;
	p = c->heap->pool;
	ret = __shmpool_self(p, &id);
	if (ret)
		return ret;
	off = shmpool_off(p, &c->sh->changed);
	/* a writer dead before we began is not news: wait for the next one */
	seen = atomic_load(&c->sh->owner);
	if (seen && (seen == id || __shmpool_alive(p, seen)))
		seen = 0;
	for (;;) {
		v = shmpool_config_version(c);
		if (v != since)
			break;
		/*
		 * Each time round, the event word moved or we were woken; a
		 * peer that keeps writing it cannot keep us past the deadline.
		 */
		if (__shmpool_deadline_passed(deadline))
			return -ETIMEDOUT;
		/* the event's Dekker pairing: see shmpool_event_prepare_wait() */
		key = shmpool_event_prepare_wait(&c->sh->changed);
		/* death_seq, then the writer, then sleep: no death is missed */
		seq = __shmpool_death_seq(p);
		if (writer_died(c, seen, id))
			return -EOWNERDEAD;
		v = shmpool_config_version(c);
		if (v != since)
			break;
		/* acquire: pairs with the release CAS in shmpool_event_wake() */
		if (atomic_load_explicit(&c->sh->changed.word,
					 memory_order_acquire) != key)
			continue;	/* signalled */
		ret = __shmpool_wait_peer(p, off, key, seq, deadline);
		if (ret == 0 || ret == -EAGAIN || ret == -EOWNERDEAD)
			continue;	/* woken, changed, or a death: look again */
		v = shmpool_config_version(c);
		if (v != since)
			break;	/* published as time ran out */
		return ret;
	}
	if (version)
		*version = v;
	return 0;
}

/* The slot of cfg_held that records @sh for attachment @id, or -1 */
static int cfg_held_find(const void *sh, uint32_t id)
{
	int i;

	for (i = 0; i < CFG_HELD_MAX; i++)
		if (cfg_held[i].sh == sh && cfg_held[i].id == id)
			return i;
	return -1;
}

/* Is the calling thread (attachment @id) writing @c? See CFG_HELD_MAX. */
static bool cfg_writing(const struct shmpool_config *c, uint32_t id)
{
	return cfg_held_find(c->sh, id) >= 0 || cfg_held_unrecorded > 0;
}

static void cfg_held_add(const struct shmpool_config *c, uint32_t id)
{
	int i = cfg_held_find(NULL, 0);	/* a free slot */

	if (i < 0) {
		cfg_held_unrecorded++;
		return;
	}
	cfg_held[i].sh = c->sh;
	cfg_held[i].id = id;
}

static void cfg_held_drop(const struct shmpool_config *c, uint32_t id)
{
	int i = cfg_held_find(c->sh, id);

	if (i >= 0) {
		cfg_held[i].sh = NULL;	/* free again: (NULL, 0) */
		cfg_held[i].id = 0;
	} else if (cfg_held_unrecorded) {
		cfg_held_unrecorded--;
	}
}

SHMPOOL_EXPORT
int shmpool_config_write_begin(struct shmpool_config *c, void **buf)
{
	uint32_t id, tid, cur;
	uint64_t v;
	int ret, took = 0, tries;

	if (!c || !buf)
		return -EINVAL;
	ret = __shmpool_self(c->heap->pool, &id);
	if (ret)
		return ret;
	tid = __shmpool_tid();
	for (tries = 0;; tries++) {
		if (tries == CFG_LOCK_TRIES)
			return -EBUSY;	/* the word keeps changing under us */
		cur = 0;
		/*
		 * seq_cst on the lock word: taking it must see everything the
		 * previous writer did before its last store to it.
		 */
		if (atomic_compare_exchange_strong(&c->sh->owner, &cur, id)) {
			/* release: as an owner word's @tid (internal.h) */
			atomic_store_explicit(&c->sh->owner_tid, tid,
					      memory_order_release);
			break;
		}
		if (cur == id && atomic_load_explicit(&c->sh->owner_tid,
				memory_order_relaxed) == tid) {
			if (cfg_writing(c, id))
				return -EBUSY;	/* the caller writes already */
			/*
			 * A claim in our name with no write of ours behind it
			 * (see CFG_HELD_MAX): nobody else takes a word naming
			 * a live thread, so it is ours as it stands. seq_cst,
			 * as taking a free word; a peer that changed it
			 * meanwhile makes us look again.
			 */
			if (atomic_compare_exchange_strong(&c->sh->owner,
							   &cur, id) &&
			    atomic_load_explicit(&c->sh->owner_tid,
						 memory_order_relaxed) == tid) {
				took = 1;
				break;
			}
			continue;
		}
		/* the writer died mid-update: ours now (acquire inside) */
		if (!__shmpool_owner_take_over(c->heap->pool, &c->sh->owner,
					       &c->sh->owner_tid, id, 0, 0)) {
			took = 1;
			break;
		}
		if (atomic_load(&c->sh->owner))
			return -EBUSY;	/* a live writer */
		/* it was released meanwhile: try again */
	}
	v = atomic_load_explicit(&c->sh->seq, memory_order_relaxed) + 1;
	if (!v) {
		/*
		 * The published version is UINT64_MAX: there is no next one
		 * (0 means "never published"). Only a peer writes that.
		 * Release the lock word as writer_release() does.
		 */
		atomic_store_explicit(&c->sh->owner_tid, 0, memory_order_relaxed);
		atomic_store(&c->sh->owner, 0);
		return -EUCLEAN;
	}
	cfg_held_add(c, id);
	c->writing = true;
	atomic_store_explicit(&c->sh->begin, v, memory_order_relaxed);
	/* (W1): pairs with (R2) in read; orders begin before the buffer stores */
	atomic_thread_fence(memory_order_release);
	*buf = (void *)c->buf[v & 1];
	return took;
}

/*
 * 0 if the calling thread is the writer: the lock word names it and it
 * began this write (a claim in its name it did not make is not its own).
 */
static int is_writer(struct shmpool_config *c, uint32_t *id)
{
	int ret = __shmpool_self(c->heap->pool, id);

	if (ret)
		return ret;
	return atomic_load_explicit(&c->sh->owner, memory_order_relaxed) == *id &&
	       atomic_load_explicit(&c->sh->owner_tid, memory_order_relaxed) ==
	       __shmpool_tid() && cfg_writing(c, *id) ? 0 : -EPERM;
}

/* Stop being the writer: @owner_tid first, as an owner word's @tid. */
static void writer_release(struct shmpool_config *c, uint32_t id)
{
	atomic_store_explicit(&c->sh->owner_tid, 0, memory_order_relaxed);
	atomic_store(&c->sh->owner, 0);
	cfg_held_drop(c, id);
	c->writing = false;
}

SHMPOOL_EXPORT
int shmpool_config_write_commit(struct shmpool_config *c, size_t len,
				uint64_t *version)
{
	uint32_t id;
	uint64_t v;
	int ret;

	if (!c)
		return -EINVAL;
	ret = is_writer(c, &id);
	if (ret)
		return ret;
	if (len > c->cap)
		return -EINVAL;
	v = atomic_load_explicit(&c->sh->begin, memory_order_relaxed);
	/*
	 * write_begin() stored begin = seq + 1 (never 0) and nobody else
	 * writes either while we hold the lock: a peer did. Publishing it
	 * could make the version 0 ("never published") or go back.
	 */
	if (!v || v != atomic_load_explicit(&c->sh->seq, memory_order_relaxed) + 1) {
		writer_release(c, id);
		return -EUCLEAN;
	}
	atomic_store_explicit(&c->sh->len[v & 1], len, memory_order_relaxed);
	/* (W3): pairs with (R1) in read and the acquire in version() */
	atomic_store_explicit(&c->sh->seq, v, memory_order_release);
	writer_release(c, id);
	if (version)
		*version = v;
	/* no syscall unless a waiter announced itself */
	ret = shmpool_event_signal(c->heap->pool, &c->sh->changed);
	return ret < 0 ? ret : 0;
}

SHMPOOL_EXPORT
int shmpool_config_write_abort(struct shmpool_config *c)
{
	uint32_t id;
	int ret;

	if (!c)
		return -EINVAL;
	ret = is_writer(c, &id);
	if (!ret)
		writer_release(c, id);
	return ret;
}

SHMPOOL_EXPORT
int shmpool_config_publish(struct shmpool_config *c, const void *data,
			   size_t len, uint64_t *version)
{
	void *buf;
	int ret;

	if (!c || (!data && len))
		return -EINVAL;
	if (len > c->cap)
		return -EINVAL;
	ret = shmpool_config_write_begin(c, &buf);
	if (ret < 0)
		return ret;
	copy_in(buf, data, len);
	return shmpool_config_write_commit(c, len, version);
}

/*
 * Read-only introspection of the config at @off, without a handle or a
 * write (@p may be SHMPOOL_RDONLY): version, capacity, current length,
 * writer and the waiters' event.
 */
SHMPOOL_EXPORT
int shmpool_config_inspect(struct shmpool *p, uint64_t off,
			   struct shmpool_config_info *ci)
{
	struct cfg_shared *sh;
	uint64_t ident, seq;
	uint32_t w;

	if (!p || !ci)
		return -EINVAL;
	memset(ci, 0, sizeof(*ci));
	sh = shmpool_ptr(p, off, CFG_HDR);
	if (!sh)
		return -EINVAL;
	if (off % _Alignof(struct cfg_shared))
		return -EPROTOTYPE;	/* objects are made aligned: not one */
	/* acquire: pairs with __shmpool_ident_claim() (the layout) */
	ident = atomic_load_explicit(&sh->ident, memory_order_acquire);
	if ((uint32_t)(ident >> 32) != CFG_MAGIC)
		return -EPROTOTYPE;
	ci->capacity = (uint32_t)ident;
	if (!shmpool_ptr(p, off, CFG_HDR + 2 * cfg_stride(ci->capacity)))
		return -EUCLEAN;
	/* acquire: pairs with (W3), as shmpool_config_version() */
	seq = atomic_load_explicit(&sh->seq, memory_order_acquire);
	ci->version = seq;
	ci->len = seq ? atomic_load_explicit(&sh->len[seq & 1], memory_order_relaxed) : 0;
	ci->writer = atomic_load_explicit(&sh->owner, memory_order_relaxed);
	w = atomic_load_explicit(&sh->changed.word, memory_order_relaxed);
	ci->sleeping = w & SHMPOOL_EVENT_NEED_WAKEUP;
	ci->wakes = w >> 1;
	return 0;
}
