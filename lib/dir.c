// SPDX-License-Identifier: MIT
/*
 * Named objects of the heap (include/shmpool_alloc.h): a fixed directory of
 * NR_DIR entries {name, offset, size, kind} in the pool's metadata, each
 * naming a general block marked BLK_NAMED. Every operation runs under the
 * heap lock, which is what makes create-if-absent atomic across processes:
 * the lookup and the insert happen in one critical section, and the object
 * is zeroed before the entry that makes it findable is written. The kind
 * (DIR_KIND_*, internal.h) says which call made the object, so that a
 * config or cache open finishes only its own type's creation and never
 * stamps somebody else's zeroed object.
 *
 * A peer may write anything into the directory (README, "Trust between
 * processes"): the lookup is a bounded scan of NR_DIR entries, a name is
 * compared within its field, and an entry's offset and size are read once
 * and must name a span of the heap's block area (__shmpool_heap_span_ok()),
 * else the call is -EUCLEAN: a config or cache opened on it would
 * otherwise write into the heap's metadata or past the pool.
 */
#define _GNU_SOURCE
#include <string.h>

#include "heap.h"

/*
 * Does [@off, @off + @len) lie in the heap's block area: past the fixed
 * metadata (header, owner table, directory) and the first block the
 * header names, and inside the pool? The first-block granule is read once
 * and is only trusted to raise the lower bound.
 */
bool __shmpool_heap_span_ok(const struct shmpool_heap *h, uint64_t off,
			    uint64_t len)
{
	uint64_t lo = DIR_OFF + NR_DIR * sizeof(struct dir_ent);
	uint64_t g = (uint64_t)__atomic_load_n(&heap_hdr(h)->heap_g,
					       __ATOMIC_RELAXED) << GRAN_SHIFT;
	uint64_t size = h->pool->size;

	if (g > lo && g < size)
		lo = g;
	return off >= lo && off <= size && len <= size - off;
}

/* One read of an entry's offset and size, checked; -EUCLEAN if not sane. */
static int ent_read(const struct shmpool_heap *h, const struct dir_ent *e,
		    struct shmpool_obj *obj)
{
	obj->off = __atomic_load_n(&e->off, __ATOMIC_RELAXED);
	obj->size = __atomic_load_n(&e->size, __ATOMIC_RELAXED);
	if (obj->off % GRAN || !obj->size ||
	    !__shmpool_heap_span_ok(h, obj->off, obj->size))
		return -EUCLEAN;
	return 0;
}

/* FNV-1a: a cheap filter before comparing names */
static uint32_t name_hash(const char *name)
{
	uint32_t hash = 2166136261U;

	while (*name)
		hash = (hash ^ (unsigned char)*name++) * 16777619U;
	return hash;
}

static int check_name(const char *name)
{
	size_t n;

	if (!name || !*name)
		return -EINVAL;
	n = strnlen(name, SHMPOOL_OBJ_NAME_MAX);
	return n >= SHMPOOL_OBJ_NAME_MAX ? -ENAMETOOLONG : 0;
}

/* Entry named @name, or NULL; heap lock held. */
static struct dir_ent *lookup(struct shmpool_heap *h, const char *name,
			      uint32_t hash)
{
	struct dir_ent *e = heap_dir(h);
	int i;

	for (i = 0; i < NR_DIR; i++)
		if (e[i].off && e[i].hash == hash &&
		    !strncmp(e[i].name, name, SHMPOOL_OBJ_NAME_MAX))
			return &e[i];
	return NULL;
}

/*
 * Find @name, or (@size not 0) create it with kind *@kind; the kind its
 * entry records in *@kind. 1 if created, 0 if found, or -errno.
 */
static int obj_get(struct shmpool_heap *h, const char *name, size_t size,
		   size_t align, uint32_t *kind, struct shmpool_obj *obj)
{
	struct dir_ent *e, *slot = NULL;
	uint32_t hash;
	uint64_t off;
	int ret, i;

	if (!h || !obj || (align & (align - 1)))
		return -EINVAL;
	ret = check_name(name);
	if (ret)
		return ret;
	hash = name_hash(name);
	ret = __shmpool_heap_lock(h);
	if (ret)
		return ret;
	e = lookup(h, name, hash);
	if (e) {
		ret = ent_read(h, e, obj);
		*kind = e->kind;
		goto out;
	}
	ret = -ENOENT;
	if (!size)
		goto out;
	for (i = 0; i < NR_DIR && !slot; i++)
		if (!heap_dir(h)[i].off)
			slot = &heap_dir(h)[i];
	ret = -ENOSPC;
	if (!slot)
		goto out;
	ret = __shmpool_tlsf_alloc(h, size, align, BLK_NAMED, &off);
	if (ret)
		goto out;
	heap_hdr(h)->nr_named++;
	/* zeroed before it is findable: finders take the same lock */
	memset(heap_base(h) + off, 0, size);
	memset(slot->name, 0, sizeof(slot->name));
	strcpy(slot->name, name);
	slot->hash = hash;
	slot->kind = *kind;
	slot->size = size;
	KILL_POINT();	/* the offset last: it makes the entry (heap_repair()) */
	slot->off = off;
	obj->off = off;
	obj->size = size;
	ret = 1;
out:
	__shmpool_heap_unlock(h);
	return ret;
}

SHMPOOL_EXPORT
int shmpool_obj_create(struct shmpool_heap *h, const char *name, size_t size,
		       size_t align, struct shmpool_obj *obj)
{
	uint32_t kind = DIR_KIND_PLAIN;

	if (!size)
		return -EINVAL;
	return obj_get(h, name, size, align, &kind, obj);
}

int __shmpool_obj_get(struct shmpool_heap *h, const char *name, size_t size,
		      size_t align, uint32_t *kind, struct shmpool_obj *obj)
{
	if (!kind)
		return -EINVAL;
	return obj_get(h, name, size, align, kind, obj);
}

/* Check @name, take the heap lock and look it up; 0 with the lock held. */
static int lock_lookup(struct shmpool_heap *h, const char *name,
		       struct dir_ent **e)
{
	int ret;

	if (!h)
		return -EINVAL;
	ret = check_name(name);
	if (!ret)
		ret = __shmpool_heap_lock(h);
	if (!ret)
		*e = lookup(h, name, name_hash(name));
	return ret;
}

SHMPOOL_EXPORT
int shmpool_obj_find(struct shmpool_heap *h, const char *name,
		     struct shmpool_obj *obj)
{
	struct dir_ent *e;
	int ret;

	if (!obj)
		return -EINVAL;
	ret = lock_lookup(h, name, &e);
	if (ret)
		return ret;
	ret = e ? ent_read(h, e, obj) : -ENOENT;
	__shmpool_heap_unlock(h);
	return ret;
}

SHMPOOL_EXPORT
int shmpool_obj_remove(struct shmpool_heap *h, const char *name)
{
	struct shmpool_obj obj;
	struct dir_ent *e;
	int ret;

	ret = lock_lookup(h, name, &e);
	if (ret)
		return ret;
	ret = e ? ent_read(h, e, &obj) : -ENOENT;
	if (!ret) {
		ret = __shmpool_tlsf_free(h, obj.off, BLK_NAMED);
		if (!ret) {
			heap_hdr(h)->nr_named--;
			memset(e, 0, sizeof(*e));
		}
	}
	__shmpool_heap_unlock(h);
	return ret;
}

/*
 * Directory iteration for observers: no heap handle and no lock (a
 * SHMPOOL_RDONLY handle cannot take it), nothing written. An entry that
 * changes while it is copied is read again; one that keeps changing is
 * skipped, so a walk during creates and removes may miss those objects.
 */
SHMPOOL_EXPORT
int shmpool_obj_next(struct shmpool *p, unsigned int *pos,
		     struct shmpool_obj_entry *e)
{
	const volatile struct dir_ent *d;
	struct dir_ent snap;
	int tries;

	if (!p || !pos || !e)
		return -EINVAL;
	if (p->size < SHMPOOL_HEAP_MIN_POOL ||
	    ((const volatile struct heap_hdr *)p->base)->magic != HEAP_MAGIC)
		return -ENODATA;
	for (; *pos < NR_DIR; (*pos)++) {
		d = (const volatile struct dir_ent *)((char *)p->base + DIR_OFF) + *pos;
		for (tries = 0; tries < 4; tries++) {
			memcpy(&snap, (const void *)d, sizeof(snap));
			/* acquire: the copy above before the second look at @off */
			atomic_thread_fence(memory_order_acquire);
			if (d->off == snap.off && d->hash == snap.hash)
				break;
		}
		if (tries == 4 || !snap.off || snap.off >= p->size ||
		    snap.size > p->size - snap.off)
			continue;
		memcpy(e->name, snap.name, sizeof(e->name));
		e->name[sizeof(e->name) - 1] = '\0';
		e->off = snap.off;
		e->size = snap.size;
		(*pos)++;
		return 0;
	}
	return -ENOENT;
}
