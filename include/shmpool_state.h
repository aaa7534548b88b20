/* SPDX-License-Identifier: MIT */
/*
 * libshmpool shared state: a versioned configuration blob that one writer
 * publishes and any process reads without locks, and 64-bit handles that
 * point into any pool the calling process has attached.
 *
 * Functions return 0, a count, or -errno and never set errno.
 */
#ifndef SHMPOOL_STATE_H
#define SHMPOOL_STATE_H

#include "shmpool.h"
#include "shmpool_alloc.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * DOC: Versioned config
 *
 * A named object of a pool's heap holding a blob of at most @capacity bytes
 * (fixed when the object is created) and a 64-bit version that counts the
 * publishes: 0 until the first one. It is double-buffered: a writer fills
 * the buffer readers are not directed to, then publishes it by storing the
 * new version, whose low bit names the current buffer. Readers copy the
 * current buffer and check afterwards, with one load, that no writer has
 * begun to overwrite it meanwhile (a seqlock whose write side never touches
 * the buffer being read until a newer version is out); if one has, they
 * retry with the newer version. So a reader retries only when a newer
 * version was published during its copy, never waits for a writer, and
 * never returns a torn blob.
 *
 * Writers. One at a time: the writer's attachment id (shmpool.h,
 * "Attachments") and thread id sit in a lock word between
 * shmpool_config_write_begin() and _commit() or _abort(); a second writer
 * gets -EBUSY. A writer that died mid-update (its attachment ended, or it
 * was a thread of the caller's process that exited) is taken over by the
 * next write_begin(), which returns 1 to say so; so is a claim in the
 * caller's own name that the caller did not make (a thread of its process
 * died mid-update and the kernel gave its thread id to the caller, or a
 * peer wrote it there). Its half-written buffer
 * was never published, so readers saw nothing of it and kept reading the
 * last good version; there is nothing to repair (the taker gets the
 * unpublished buffer, contents unspecified, as any writer does). A live
 * writer is never taken over (device: in whatever PID namespace it is;
 * memfd: processes must share a PID namespace, and a dead writer whose
 * process id was reused by a live process is taken for alive, -EBUSY,
 * until that one exits too).
 *
 * Waiting: shmpool_config_wait() sleeps on an event count (shmpool_sync.h)
 * until the version differs from the one given; a publish makes a wake
 * syscall only if somebody announced a sleep. A writer of another process
 * that dies mid-update while somebody waits ends the wait with -EOWNERDEAD
 * (device: at once; memfd: within about 100 ms): no version is coming from
 * it. A writer already dead when the wait began is not reported: the wait
 * goes on for the next writer's version.
 *
 * Concurrency: reads, version(), and waits run concurrently with each
 * other and with a writer, from any thread of any process. write_begin()
 * excludes other writers. shmpool_config_close() must be the last call on
 * its handle.
 */
struct shmpool_config;

/* flags for shmpool_config_open() */
#define SHMPOOL_CONFIG_CREATE	(1U << 0)	/* create if absent */

/*
 * Open config object @name of @h's pool, creating it with room for
 * @capacity bytes (1..16 MiB) if SHMPOOL_CONFIG_CREATE is given and it does
 * not exist; without CREATE, @capacity 0 accepts any and -ENOENT means
 * absent. -EEXIST: it exists with another capacity; -EUCLEAN: the object is
 * not a config (a @capacity never makes a config of an object that
 * shmpool_obj_create() or another type made, even one still all
 * zeroes, and without one such an object is -EUCLEAN at once);
 * -EAGAIN (@capacity 0): its creator did not stamp it within
 * about 2 s (or died first): open with the capacity, which finishes the
 * creation, or call again; other errors as shmpool_obj_create(). The handle keeps
 * using @h: close it before the heap.
 */
int shmpool_config_open(struct shmpool_heap *h, const char *name,
			size_t capacity, unsigned int flags,
			struct shmpool_config **out);
/*
 * Free the handle (NULL is fine); the object stays in the pool. A write
 * the calling thread began through it and did not commit is abandoned,
 * as by shmpool_config_write_abort().
 */
int shmpool_config_close(struct shmpool_config *c);
/* The capacity fixed at creation. */
size_t shmpool_config_capacity(const struct shmpool_config *c);
/* The current version: one acquire load; 0 until the first publish. */
uint64_t shmpool_config_version(const struct shmpool_config *c);

/*
 * Copy the current blob into @buf (@len bytes) and its version into
 * *@version (may be NULL). Returns the blob's length; -ENODATA before the
 * first publish; -EMSGSIZE if @len is too small (nothing is copied; the
 * version is set); -EUCLEAN if the shared length is beyond the capacity or
 * the header is inconsistent (begin behind the version, or ahead by two
 * while no version is published across 4 copies); -EAGAIN if writers
 * published two versions during each of up to 65536 copies in a row
 * (fewer for blobs above 4 KiB: at most 256 MiB copied, at least 256
 * copies; call again). The retries are bounded by that count, never by a
 * clock.
 */
int shmpool_config_read(struct shmpool_config *c, void *buf, size_t len,
			uint64_t *version);
/*
 * Sleep until the version differs from @since or @deadline (absolute
 * CLOCK_MONOTONIC; NULL for ever). 0 with the new version in *@version
 * (may be NULL); -ETIMEDOUT; -EINTR (a handler without SA_RESTART ran);
 * -EOWNERDEAD: a writer died mid-update during the wait (see "Waiting");
 * -EINVAL for a deadline shmpool_wait() refuses, whether or not it passed.
 */
int shmpool_config_wait(struct shmpool_config *c, uint64_t since,
			const struct timespec *deadline, uint64_t *version);

/*
 * Become the writer and get the unpublished buffer in *@buf (capacity
 * bytes, contents unspecified). 0, or 1 if a dead writer was taken over;
 * -EBUSY if a live thread is writing (the caller included); -EUCLEAN if
 * the version is UINT64_MAX (only a peer writes that: there is no next
 * version, 0 meaning "never published"); the errors of
 * shmpool_attach_id() (a fork() child attaches on its first call).
 */
int shmpool_config_write_begin(struct shmpool_config *c, void **buf);
/*
 * Publish the first @len bytes of the buffer as the next version (returned
 * in *@version, may be NULL), wake waiters, stop being the writer. -EPERM
 * if the caller is not the writer (a lock word that names the caller's
 * thread is not enough: it must have begun this write), -EINVAL if @len > capacity (the caller
 * stays the writer), -EUCLEAN if the header no longer says the version
 * write_begin() began (a peer wrote it): nothing is published and the
 * caller is no longer the writer.
 */
int shmpool_config_write_commit(struct shmpool_config *c, size_t len,
				uint64_t *version);
/* Stop being the writer without publishing; -EPERM if not the writer. */
int shmpool_config_write_abort(struct shmpool_config *c);
/*
 * write_begin, copy @len bytes of @data, write_commit. Readers never see the
 * copy in progress. -EBUSY, -EINVAL (@len > capacity), -EUCLEAN as above.
 */
int shmpool_config_publish(struct shmpool_config *c, const void *data,
			   size_t len, uint64_t *version);

/**
 * DOC: Multi-pool handles
 *
 * A shmpool_handle_t names a byte in any pool the process has attached to
 * its handle table: the pool's slot (bits 54-63), the slot's generation
 * when it was attached (bits 48-53) and the offset (bits 0-47). Handles are
 * process-local names for slots: another process must attach the same
 * pools in the same order to resolve them the same way; store pool ids or
 * names in shared memory, not handles, when processes attach differently.
 *
 * The table is read on every resolution and changed only by attach and
 * detach. It is protected with liburcu (urcu-memb flavour): resolution is
 * wait-free (a few loads, no lock, no write to shared data) and valid inside
 * a read-side section; detach unpublishes the slot, waits for a grace
 * period (every section that could have seen the slot has ended), and only
 * then unmaps the pool. A pointer from shmpool_handle_ptr() may be used until
 * the matching shmpool_handle_read_unlock(), never after.
 *
 * Threading rules:
 * - A thread is registered with liburcu by its first
 *   shmpool_handle_read_lock() and unregistered when it exits (a
 *   pthread key destructor); shmpool_handle_thread_unregister() does it
 *   earlier. Threads that never resolve handles need nothing.
 * - Sections nest; shmpool_handle_ptr() outside any section is a bug
 *   (it returns NULL in this case).
 * - attach and detach may be called from any thread; attach also inside
 *   a read-side section, detach not (it would wait for itself: -EDEADLK).
 * - The library's liburcu state is process-wide. fork() while another
 *   thread is inside a section leaves the child unable to detach; the
 *   child of a fork() should attach and detach only after exec, or when
 *   the parent had no section open.
 * - An application that also uses urcu-memb shares its grace periods with
 *   the library; that is harmless.
 */
typedef uint64_t shmpool_handle_t;

#define SHMPOOL_HANDLE_NULL	((shmpool_handle_t)0)
#define SHMPOOL_HANDLE_SLOTS	1024	/* slots 1..1023; 0 is never used */
#define SHMPOOL_HANDLE_OFF_BITS	48
#define SHMPOOL_HANDLE_OFF_MASK	((1ULL << SHMPOOL_HANDLE_OFF_BITS) - 1)

/*
 * Put @p in the table and return its slot (1..1023) or -ENOSPC. From now on
 * the table owns @p: only shmpool_handle_detach() closes it.
 */
int shmpool_handle_attach(struct shmpool *p);
/*
 * Unpublish @slot, wait until no read-side section can still use it, then
 * shmpool_close() its pool. -ENOENT if the slot is empty, -EDEADLK inside a
 * read-side section.
 */
int shmpool_handle_detach(int slot);
/* The handle for offset @off of the pool in @slot, or SHMPOOL_HANDLE_NULL. */
shmpool_handle_t shmpool_handle_make(int slot, uint64_t off);

/* Enter a read-side section (registers the thread the first time). */
void shmpool_handle_read_lock(void);
void shmpool_handle_read_unlock(void);
/*
 * Resolve @h to a pointer to @len bytes, valid until read_unlock; NULL if
 * the slot is empty, was re-attached since @h was made (up to 63 times:
 * see below), or [off, off+len) is outside the pool. Wait-free. Call only
 * inside a read-side section.
 *
 * The generation has 6 bits: after 64 attaches of its slot a stale handle
 * resolves into whatever pool the slot then holds. Slots are taken round
 * robin, so that takes 64 attaches per free slot (about 65000 with an
 * empty table), but only 64 attach/detach cycles when a single slot is
 * free. Do not keep a handle past the detach of its pool.
 */
void *shmpool_handle_ptr(shmpool_handle_t h, size_t len);
/* Unregister the calling thread now (it must be outside any section). */
void shmpool_handle_thread_unregister(void);

static inline int shmpool_handle_slot(shmpool_handle_t h)
{
	return (int)(h >> 54);
}

static inline uint64_t shmpool_handle_off(shmpool_handle_t h)
{
	return h & SHMPOOL_HANDLE_OFF_MASK;
}

/**
 * struct shmpool_config_info - what shmpool_config_inspect() reports
 * @version: the published version (0 before the first publish)
 * @capacity: the capacity fixed at creation
 * @len: the current blob's length
 * @writer: the thread id in the writer's lock word, 0 if none
 * @sleeping: 1 if a waiter announced a sleep that no publish answered yet
 * @wakes: publishes that found a waiter announced (31 bits, wrapping)
 */
struct shmpool_config_info {
	uint64_t version;
	uint64_t capacity;
	uint64_t len;
	uint32_t writer;
	uint32_t sleeping;
	uint32_t wakes;
	uint32_t __reserved;
};

/*
 * Describe the config object at pool offset @off without a handle and
 * without writing (@p may be SHMPOOL_RDONLY). -EPROTOTYPE: no config there;
 * -EUCLEAN: its capacity does not fit the pool; -EINVAL.
 */
int shmpool_config_inspect(struct shmpool *p, uint64_t off,
			   struct shmpool_config_info *ci);

#ifdef __cplusplus
}
#endif

#endif /* SHMPOOL_STATE_H */
