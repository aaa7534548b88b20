/* lib_state_test: shared state (shmpool_state.h): versioned config objects read consistently by other processes while a writer publishes, waits for a change, dead writers, bad input; multi-pool handles resolved by threads while pools are attached and detached. */
// SPDX-License-Identifier: MIT
/*
 * Workers are processes (fork) by default; built with -DSHMPOOL_TEST_THREADS
 * (or under ThreadSanitizer) they are threads of the test process, so that
 * TSan sees both sides of every exchange. Workers report through shared
 * memory. Long tests run for a number of steps or a time budget, whichever
 * ends first, so that they fit in the QEMU lanes; nothing asserts on time.
 * SHMPOOL_TEST_SCALE (default 1) multiplies both.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "shmpool.h"
#include "shmpool_alloc.h"
#include "shmpool_state.h"
/* the 6.1 harness leaves parameters unused and defines unprototyped functions */
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#include "kselftest_harness.h"
#include "lib_test.h"

#define POOL_BYTES	(1U << 20)
#define CAP		256U
#define NR_READERS	2

/* ---- helpers ------------------------------------------------------------------- */

/*
 * A self-checking blob for version @v: 8 bytes of v, then bytes that
 * depend on v, then a 4-byte sum of everything before it. Its length
 * varies with v (12..CAP bytes).
 */
static size_t blob_make(uint8_t *b, uint64_t v)
{
	size_t n = 12 + (size_t)(v * 37 % (CAP - 11)), i;
	uint32_t sum = 0;

	memcpy(b, &v, 8);
	for (i = 8; i < n - 4; i++)
		b[i] = (uint8_t)(v * 131 + i * 7);
	for (i = 0; i < n - 4; i++)
		sum = sum * 31 + b[i];
	memcpy(b + n - 4, &sum, 4);
	return n;
}

/* 0 if @b (@n bytes) is the blob of version @v */
static int blob_check(const uint8_t *b, size_t n, uint64_t v)
{
	uint8_t want[CAP];
	size_t wn = blob_make(want, v);

	return n == wn && !memcmp(b, want, n) ? 0 : -1;
}

/* ---- config fixture ---------------------------------------------------------------- */

/* what workers share, in an anonymous shared mapping */
struct shared {
	atomic_int stop;
	atomic_uint_fast64_t reads[NR_READERS];
	atomic_uint_fast64_t retries_seen;	/* version went back: must stay 0 */
	atomic_uint_fast64_t bad;		/* torn or wrong copies: must stay 0 */
	atomic_uint_fast64_t last_bad_version;
	atomic_uint_fast64_t published;
	atomic_uint_fast64_t woken_version;
	atomic_int ready, go, result;		/* owner-death tests */
	atomic_long left_ms;			/* how long before its deadline a wait came back */
};

FIXTURE(config) {
	char name[SHMPOOL_NAME_MAX];
	struct shmpool *p;
	struct shmpool_heap *h;
	struct shmpool_config *c;
	struct shared *sh;
};

FIXTURE_VARIANT(config) {
	unsigned int backend;
};

FIXTURE_VARIANT_ADD(config, memfd) {
	.backend = SHMPOOL_BACKEND_MEMFD,
};

FIXTURE_VARIANT_ADD(config, device) {
	.backend = SHMPOOL_BACKEND_DEVICE,
};

FIXTURE_SETUP(config)
{
	/* 6.1's harness would still run the test after SKIP() here */
	if (variant->backend == SHMPOOL_BACKEND_DEVICE && !device_ok())
		SKIP(longjmp(_metadata->env, 1), DEV_PATH " not available");
	SKIP_MEMFD_IN_DEVICE_LANE(variant->backend);
	snprintf(self->name, sizeof(self->name), "state.%d", (int)getpid());
	ASSERT_EQ(0, shmpool_create(self->name, POOL_BYTES, 0600,
				    variant->backend | SHMPOOL_EXCL, &self->p));
	ASSERT_EQ(0, shmpool_heap_open(self->p, 0, &self->h));
	ASSERT_EQ(0, shmpool_config_open(self->h, "cfg", CAP,
					 SHMPOOL_CONFIG_CREATE, &self->c));
	self->sh = mmap(NULL, sizeof(*self->sh), PROT_READ | PROT_WRITE,
			MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, self->sh);
}

FIXTURE_TEARDOWN(config)
{
	if (self->sh && self->sh != MAP_FAILED)
		munmap(self->sh, sizeof(*self->sh));
	shmpool_config_close(self->c);
	shmpool_heap_close(self->h);
	shmpool_close(self->p);
	shmpool_unlink(self->name, variant->backend);
}

/* ---- basics ------------------------------------------------------------------------ */

/* Nothing before the first publish; then each publish is one version, seen by another handle. */
TEST_F(config, publish_then_read)
{
	struct shmpool_config *c2;
	uint8_t b[CAP];
	uint64_t v = 99;
	size_t n;

	EXPECT_EQ(0U, shmpool_config_version(self->c));
	EXPECT_EQ(-ENODATA, shmpool_config_read(self->c, b, sizeof(b), &v));
	EXPECT_EQ(CAP, shmpool_config_capacity(self->c));

	n = blob_make(b, 1);
	ASSERT_EQ(0, shmpool_config_publish(self->c, b, n, &v));
	EXPECT_EQ(1U, v);
	n = blob_make(b, 2);
	ASSERT_EQ(0, shmpool_config_publish(self->c, b, n, &v));
	EXPECT_EQ(2U, v);

	/* open without a capacity: the object's own */
	ASSERT_EQ(0, shmpool_config_open(self->h, "cfg", 0, 0, &c2));
	EXPECT_EQ(CAP, shmpool_config_capacity(c2));
	EXPECT_EQ(2U, shmpool_config_version(c2));
	memset(b, 0, sizeof(b));
	v = 0;
	EXPECT_EQ((int)n, shmpool_config_read(c2, b, sizeof(b), &v));
	EXPECT_EQ(2U, v);
	EXPECT_EQ(0, blob_check(b, n, 2));
	EXPECT_EQ(0, shmpool_config_close(c2));

	/* a zero-length blob is a version too */
	ASSERT_EQ(0, shmpool_config_publish(self->c, NULL, 0, &v));
	EXPECT_EQ(3U, v);
	EXPECT_EQ(0, shmpool_config_read(self->c, b, sizeof(b), &v));
}

/* The zero-copy write path: begin gives a buffer, commit publishes a prefix of it. */
TEST_F(config, write_begin_commit)
{
	uint8_t want[CAP], got[CAP];
	uint64_t v;
	void *buf;
	size_t n = blob_make(want, 7);

	ASSERT_EQ(0, shmpool_config_write_begin(self->c, &buf));
	memcpy(buf, want, n);
	ASSERT_EQ(0, shmpool_config_write_commit(self->c, n, &v));
	EXPECT_EQ(1U, v);
	EXPECT_EQ((int)n, shmpool_config_read(self->c, got, sizeof(got), NULL));
	EXPECT_EQ(0, memcmp(want, got, n));

	/* aborted: nothing published, the old blob stays */
	ASSERT_EQ(0, shmpool_config_write_begin(self->c, &buf));
	memset(buf, 0xee, CAP);
	ASSERT_EQ(0, shmpool_config_write_abort(self->c));
	EXPECT_EQ(1U, shmpool_config_version(self->c));
	EXPECT_EQ((int)n, shmpool_config_read(self->c, got, sizeof(got), &v));
	EXPECT_EQ(1U, v);
	EXPECT_EQ(0, memcmp(want, got, n));
}

/* ---- bad input ----------------------------------------------------------------------- */

TEST_F(config, open_missing_is_enoent)
{
	struct shmpool_config *c2;

	EXPECT_EQ(-ENOENT, shmpool_config_open(self->h, "nope", 0, 0, &c2));
	EXPECT_EQ(-ENOENT, shmpool_config_open(self->h, "nope", CAP, 0, &c2));
}

TEST_F(config, open_bad_arguments_are_einval)
{
	struct shmpool_config *c2;

	EXPECT_EQ(-EINVAL, shmpool_config_open(NULL, "x", CAP, SHMPOOL_CONFIG_CREATE, &c2));
	EXPECT_EQ(-EINVAL, shmpool_config_open(self->h, "x", CAP, SHMPOOL_CONFIG_CREATE, NULL));
	EXPECT_EQ(-EINVAL, shmpool_config_open(self->h, "x", 0, SHMPOOL_CONFIG_CREATE, &c2));
	EXPECT_EQ(-EINVAL, shmpool_config_open(self->h, "x", (16U << 20) + 1,
					       SHMPOOL_CONFIG_CREATE, &c2));
	EXPECT_EQ(-EINVAL, shmpool_config_open(self->h, "x", CAP, 1U << 5, &c2));
	EXPECT_EQ(-EINVAL, shmpool_config_open(self->h, "", CAP, SHMPOOL_CONFIG_CREATE, &c2));
	EXPECT_EQ(-ENAMETOOLONG, shmpool_config_open(self->h,
		"a-name-that-is-far-too-long-for-the-directory", CAP,
		SHMPOOL_CONFIG_CREATE, &c2));
}

/* An existing config opened with another capacity, in the same 64-byte stride or not. */
TEST_F(config, other_capacity_is_eexist)
{
	struct shmpool_config *c2;

	EXPECT_EQ(-EEXIST, shmpool_config_open(self->h, "cfg", CAP + 1,
					       SHMPOOL_CONFIG_CREATE, &c2));
	EXPECT_EQ(-EEXIST, shmpool_config_open(self->h, "cfg", CAP - 1,
					       SHMPOOL_CONFIG_CREATE, &c2));
	EXPECT_EQ(-EEXIST, shmpool_config_open(self->h, "cfg", CAP * 2, 0, &c2));
}

/* A named object that is not a config. */
TEST_F(config, foreign_object_is_euclean)
{
	struct shmpool_config *c2;
	struct shmpool_obj obj;
	uint64_t *w;

	ASSERT_EQ(1, shmpool_obj_create(self->h, "small", 100, 0, &obj));
	EXPECT_EQ(-EUCLEAN, shmpool_config_open(self->h, "small", 0, 0, &c2));
	/* the right size, but something else in it */
	ASSERT_EQ(1, shmpool_obj_create(self->h, "other", 64 + 2 * CAP, 64, &obj));
	w = shmpool_heap_ptr(self->h, obj.off, 8);
	ASSERT_NE(NULL, w);
	*w = 0x1234567800000100ULL;
	EXPECT_EQ(-EUCLEAN, shmpool_config_open(self->h, "other", 0, 0, &c2));
	EXPECT_EQ(-EUCLEAN, shmpool_config_open(self->h, "other", CAP, 0, &c2));
}

/*
 * A config object whose creator died between making the object and
 * stamping it (its identity word still 0): an open without a capacity
 * cannot tell its size and gives -EAGAIN after its wait (documented in
 * shmpool_config_open(3)); an open with the capacity finishes the creation.
 */
TEST_F(config, unstamped_object_is_eagain_until_opened_with_capacity)
{
	struct shmpool_config *c2;
	struct shmpool_obj obj;
	_Atomic uint64_t *ident;

	/* made by the config's own create, then its identity word back at 0 */
	ASSERT_EQ(0, shmpool_config_open(self->h, "half", CAP, SHMPOOL_CONFIG_CREATE, &c2));
	EXPECT_EQ(0, shmpool_config_close(c2));
	ASSERT_EQ(0, shmpool_obj_find(self->h, "half", &obj));
	ident = shmpool_heap_ptr(self->h, obj.off, 8);
	ASSERT_NE(NULL, ident);
	atomic_store(ident, 0);
	EXPECT_EQ(-EAGAIN, shmpool_config_open(self->h, "half", 0, 0, &c2));
	ASSERT_EQ(0, shmpool_config_open(self->h, "half", CAP, SHMPOOL_CONFIG_CREATE, &c2));
	EXPECT_EQ(-ENODATA, shmpool_config_read(c2, NULL, 0, NULL));
	EXPECT_EQ(0, shmpool_config_close(c2));
	ASSERT_EQ(0, shmpool_config_open(self->h, "half", 0, 0, &c2));
	EXPECT_EQ((size_t)CAP, shmpool_config_capacity(c2));
	EXPECT_EQ(0, shmpool_config_close(c2));
}

/*
 * A plain named object of a config's size, not yet written (its first word
 * 0), is somebody else's: an open with a capacity must not stamp it a
 * config (and then write a config into it), with or without CREATE.
 * (It did: any unstamped object of the right size was taken.)
 */
static void plain_object_is_not_stamped(struct __test_metadata *_metadata,
					struct shmpool_heap *h, unsigned int flags)
{
	struct shmpool_config *c2;
	uint8_t *b, want[64 + 2 * CAP];

	b = plain_object_make(h, "plain", sizeof(want), want);
	ASSERT_NE(NULL, b);
	EXPECT_EQ(-EUCLEAN, shmpool_config_open(h, "plain", CAP, flags, &c2));
	EXPECT_EQ(0, memcmp(want, b, sizeof(want)));
	/* and nobody will stamp it: not "being created" (no 2 s wait) */
	EXPECT_EQ(-EUCLEAN, shmpool_config_open(h, "plain", 0, 0, &c2));
}

TEST_F(config, create_does_not_stamp_a_plain_object)
{
	plain_object_is_not_stamped(_metadata, self->h, SHMPOOL_CONFIG_CREATE);
}

TEST_F(config, open_with_capacity_does_not_stamp_a_plain_object)
{
	plain_object_is_not_stamped(_metadata, self->h, 0);
}

TEST_F(config, publish_too_long_is_einval)
{
	uint8_t b[CAP + 1] = { 0 };

	EXPECT_EQ(-EINVAL, shmpool_config_publish(self->c, b, CAP + 1, NULL));
	EXPECT_EQ(-EINVAL, shmpool_config_publish(self->c, NULL, 1, NULL));
	EXPECT_EQ(-EINVAL, shmpool_config_publish(NULL, b, 1, NULL));
	EXPECT_EQ(0U, shmpool_config_version(self->c));
	/* and the writer slot is free again */
	EXPECT_EQ(0, shmpool_config_publish(self->c, b, CAP, NULL));
}

TEST_F(config, commit_too_long_is_einval_and_keeps_writer)
{
	void *buf;

	ASSERT_EQ(0, shmpool_config_write_begin(self->c, &buf));
	EXPECT_EQ(-EINVAL, shmpool_config_write_commit(self->c, CAP + 1, NULL));
	EXPECT_EQ(0U, shmpool_config_version(self->c));
	EXPECT_EQ(0, shmpool_config_write_commit(self->c, CAP, NULL));
	EXPECT_EQ(1U, shmpool_config_version(self->c));
}

TEST_F(config, short_buffer_is_emsgsize)
{
	uint8_t b[CAP];
	uint64_t v = 0;
	size_t n = blob_make(b, 5);

	ASSERT_LT(20U, n);
	ASSERT_EQ(0, shmpool_config_publish(self->c, b, n, NULL));
	memset(b, 0, sizeof(b));
	EXPECT_EQ(-EMSGSIZE, shmpool_config_read(self->c, b, n - 1, &v));
	EXPECT_EQ(1U, v);
	EXPECT_EQ(0, b[0]);	/* nothing copied */
	EXPECT_EQ(-EINVAL, shmpool_config_read(self->c, NULL, 1, NULL));
	EXPECT_EQ(-EINVAL, shmpool_config_read(NULL, b, 1, NULL));
}

/*
 * A handle closed between write_begin() and commit/abort does not keep the
 * writer's lock for the rest of the process's life: close abandons the
 * write (nothing was published), and the next writer of this thread, of
 * another handle, or of another process begins at once.
 */
TEST_F(config, close_during_write_abandons_it)
{
	struct shmpool_config *c2;
	void *buf;
	pid_t pid;
	int st;

	ASSERT_EQ(0, shmpool_config_publish(self->c, "one", 4, NULL));
	ASSERT_EQ(0, shmpool_config_write_begin(self->c, &buf));
	memcpy(buf, "two", 4);
	EXPECT_EQ(0, shmpool_config_close(self->c));
	self->c = NULL;
	ASSERT_EQ(0, shmpool_config_open(self->h, "cfg", 0, 0, &c2));
	self->c = c2;
	EXPECT_EQ(1U, shmpool_config_version(c2));
	/* another process: the lock names a live attachment only while it writes */
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid)
		_exit(shmpool_config_publish(c2, "child", 6, NULL) ? 1 : 0);
	ASSERT_EQ(pid, waitpid(pid, &st, 0));
	EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) TH_LOG("child's publish failed");
	EXPECT_EQ(0, shmpool_config_write_begin(c2, &buf));
	EXPECT_EQ(0, shmpool_config_write_abort(c2));
}

/* One writer at a time; only the writer commits or aborts. */
TEST_F(config, second_writer_is_ebusy)
{
	void *buf, *buf2;

	EXPECT_EQ(-EPERM, shmpool_config_write_commit(self->c, 0, NULL));
	EXPECT_EQ(-EPERM, shmpool_config_write_abort(self->c));
	ASSERT_EQ(0, shmpool_config_write_begin(self->c, &buf));
	EXPECT_EQ(-EBUSY, shmpool_config_write_begin(self->c, &buf2));
	EXPECT_EQ(-EBUSY, shmpool_config_publish(self->c, "x", 1, NULL));
	EXPECT_EQ(-EINVAL, shmpool_config_write_begin(self->c, NULL));
	EXPECT_EQ(0, shmpool_config_write_abort(self->c));
	EXPECT_EQ(-EPERM, shmpool_config_write_abort(self->c));
	EXPECT_EQ(0, shmpool_config_write_begin(self->c, &buf2));
	EXPECT_EQ(buf, buf2);	/* the unpublished buffer is still the same */
	EXPECT_EQ(0, shmpool_config_write_abort(self->c));
}

/*
 * The writer's lock naming this thread when it began no write: what a
 * thread of ours that died mid-update leaves when the kernel gives its id
 * to a new thread, or what a peer may write there. It is a dead writer's
 * claim: the next write_begin() takes it over (1); no commit or abort
 * publishes or drops it before that (-EPERM). (Before, begin said -EBUSY
 * for as long as the thread lived, and a commit published the dead
 * writer's half-written buffer.)
 */
TEST_F(config, writer_lock_naming_this_thread_is_taken_over)
{
	struct shmpool_config *c2;
	struct shmpool_obj obj;
	_Atomic uint32_t *owner, *owner_tid;
	uint8_t b[CAP], got[CAP];
	uint64_t v;
	void *buf;
	char *hdr;
	size_t n;
	int id;

	n = blob_make(b, 1);
	ASSERT_EQ(0, shmpool_config_publish(self->c, b, n, NULL));
	id = shmpool_attach_id(self->p);
	ASSERT_LT(0, id);
	ASSERT_EQ(0, shmpool_obj_find(self->h, "cfg", &obj));
	hdr = shmpool_heap_ptr(self->h, obj.off, 64);
	ASSERT_NE(NULL, hdr);
	/* struct cfg_shared: ident, seq, begin, len[2], owner, changed, owner_tid */
	owner = (_Atomic uint32_t *)(hdr + 40);
	owner_tid = (_Atomic uint32_t *)(hdr + 48);
	atomic_store(owner_tid, (uint32_t)syscall(SYS_gettid));
	atomic_store(owner, (uint32_t)id);

	EXPECT_EQ(-EPERM, shmpool_config_write_commit(self->c, 8, NULL));
	EXPECT_EQ(-EPERM, shmpool_config_write_abort(self->c));
	EXPECT_EQ(1U, shmpool_config_version(self->c));
	EXPECT_EQ((int)n, shmpool_config_read(self->c, got, sizeof(got), &v));
	EXPECT_EQ(0, blob_check(got, n, 1));

	EXPECT_EQ(1, shmpool_config_write_begin(self->c, &buf));
	/* now it is a real write of ours: a second one, on any handle, is -EBUSY */
	ASSERT_EQ(0, shmpool_config_open(self->h, "cfg", 0, 0, &c2));
	EXPECT_EQ(-EBUSY, shmpool_config_write_begin(c2, &buf));
	EXPECT_EQ(-EBUSY, shmpool_config_write_begin(self->c, &buf));
	n = blob_make(b, 2);
	memcpy(buf, b, n);
	EXPECT_EQ(0, shmpool_config_write_commit(c2, n, &v));
	EXPECT_EQ(2U, v);
	EXPECT_EQ(0U, atomic_load(owner));
	EXPECT_EQ((int)n, shmpool_config_read(self->c, got, sizeof(got), &v));
	EXPECT_EQ(0, blob_check(got, n, 2));
	EXPECT_EQ(0, shmpool_config_write_begin(self->c, &buf));
	EXPECT_EQ(0, shmpool_config_write_abort(self->c));
	EXPECT_EQ(0, shmpool_config_close(c2));
}

/*
 * Publish the blob of version 1 (into @b, its length in *@n) and return the
 * config's header: struct cfg_shared's words ident, seq, begin, ...
 */
static _Atomic uint64_t *cfg_hdr_at_1(struct shmpool_heap *h,
				      struct shmpool_config *c, uint8_t *b,
				      size_t *n)
{
	struct shmpool_obj obj;

	*n = blob_make(b, 1);
	if (shmpool_config_publish(c, b, *n, NULL) ||
	    shmpool_obj_find(h, "cfg", &obj))
		return NULL;
	return shmpool_heap_ptr(h, obj.off, 64);
}

/*
 * A peer sets the published version to UINT64_MAX: there is no next
 * version (it would be 0, "never published", and readers would lose the
 * blob). Publishing is -EUCLEAN, the writer's lock stays free, the last
 * blob stays readable at its version. (The publish made version 0.)
 */
TEST_F(config, publish_after_version_max_is_euclean)
{
	uint8_t b[CAP], got[CAP];
	_Atomic uint64_t *hdr;
	uint64_t v = 0;
	void *buf;
	size_t n;

	hdr = cfg_hdr_at_1(self->h, self->c, b, &n);
	ASSERT_NE(NULL, hdr);
	/* odd like 1: the blob of version 1 stays the current one */
	atomic_store(&hdr[2], UINT64_MAX);	/* begin */
	atomic_store(&hdr[1], UINT64_MAX);	/* seq */
	EXPECT_EQ(-EUCLEAN, shmpool_config_publish(self->c, b, n, &v));
	EXPECT_EQ(UINT64_MAX, shmpool_config_version(self->c));
	EXPECT_EQ((int)n, shmpool_config_read(self->c, got, sizeof(got), &v));
	EXPECT_EQ(UINT64_MAX, v);
	EXPECT_EQ(0, blob_check(got, n, 1));
	EXPECT_EQ(-EUCLEAN, shmpool_config_write_begin(self->c, &buf));
	EXPECT_EQ(-EPERM, shmpool_config_write_abort(self->c));
}

/*
 * A peer moves @begin (the version being written) while a write is open:
 * the commit must not publish it (0 would be "never published"). The write
 * is abandoned, nothing published, and the next one goes through. (The
 * commit made version 0.)
 */
TEST_F(config, commit_after_begin_moved_is_euclean)
{
	_Atomic uint64_t *hdr;
	uint8_t b[CAP], got[CAP];
	uint64_t v = 0;
	size_t n;
	void *buf;

	ASSERT_NE(NULL, hdr = cfg_hdr_at_1(self->h, self->c, b, &n));
	ASSERT_EQ(0, shmpool_config_write_begin(self->c, &buf));
	memcpy(buf, b, n);
	atomic_store(&hdr[2], 0);	/* begin, "never published" */
	EXPECT_EQ(-EUCLEAN, shmpool_config_write_commit(self->c, n, &v));
	EXPECT_EQ(1U, shmpool_config_version(self->c));
	EXPECT_EQ(-EPERM, shmpool_config_write_abort(self->c));
	/* begin behind the version, as the peer left it: readers say so */
	EXPECT_EQ(-EUCLEAN, shmpool_config_read(self->c, got, sizeof(got), &v));
	n = blob_make(b, 2);
	EXPECT_EQ(0, shmpool_config_publish(self->c, b, n, &v));
	EXPECT_EQ(2U, v);
	EXPECT_EQ((int)n, shmpool_config_read(self->c, got, sizeof(got), &v));
	EXPECT_EQ(2U, v);
	EXPECT_EQ(0, blob_check(got, n, 2));
}

#ifndef SHMPOOL_TEST_THREADS
/* A writer in another, live process keeps the slot; others get -EBUSY, then it is free. */
TEST_F(config, live_writer_elsewhere_is_ebusy)
{
	int go[2], done[2], status;
	char x;
	void *buf;
	pid_t pid;

	ASSERT_EQ(0, pipe(go));
	ASSERT_EQ(0, pipe(done));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (shmpool_config_write_begin(self->c, &buf))
			_exit(1);
		if (write(done[1], "b", 1) != 1 || read(go[0], &x, 1) != 1)
			_exit(2);
		_exit(shmpool_config_write_commit(self->c, 0, NULL) ? 3 : 0);
	}
	ASSERT_EQ(1, read(done[0], &x, 1));
	EXPECT_EQ(-EBUSY, shmpool_config_write_begin(self->c, &buf));
	ASSERT_EQ(1, write(go[1], "g", 1));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_EQ(0, WEXITSTATUS(status));
	EXPECT_EQ(1U, shmpool_config_version(self->c));
	EXPECT_EQ(0, shmpool_config_write_begin(self->c, &buf));
	EXPECT_EQ(0, shmpool_config_write_abort(self->c));
}
#endif

/* ---- concurrency -------------------------------------------------------------------- */

struct cfg_arg {
	struct shmpool_config *c;
	struct shared *sh;
	int idx;
	uint64_t budget_ms;
	uint64_t steps;
};

static int writer_fn(void *a)
{
	struct cfg_arg *w = a;
	uint8_t b[CAP];
	uint64_t v, i, end = now_ms() + w->budget_ms;
	int ret;

	for (i = 0; i < w->steps && now_ms() < end; i++) {
		size_t n = blob_make(b, shmpool_config_version(w->c) + 1);

		ret = shmpool_config_publish(w->c, b, n, &v);
		if (ret)
			return 10;
		atomic_store(&w->sh->published, v);
	}
	atomic_store(&w->sh->stop, 1);
	return 0;
}

static int reader_fn(void *a)
{
	struct cfg_arg *r = a;
	struct shared *sh = r->sh;
	uint8_t b[CAP];
	uint64_t v, last = 0;
	int n;

	while (!atomic_load(&sh->stop)) {
		n = shmpool_config_read(r->c, b, sizeof(b), &v);
		if (n == -ENODATA)
			continue;
		if (n < 0)
			return 20;
		if (blob_check(b, (size_t)n, v)) {
			atomic_fetch_add(&sh->bad, 1);
			atomic_store(&sh->last_bad_version, v);
		}
		if (v < last)
			atomic_fetch_add(&sh->retries_seen, 1);
		last = v;
		atomic_fetch_add(&sh->reads[r->idx], 1);
	}
	return 0;
}

/*
 * A writer publishes continuously (blobs of varying length with a checksum
 * and their version inside) while readers in other processes copy: every
 * copy is exactly the blob of the version it reports, and versions never go
 * back.
 */
TEST_F_TIMEOUT(config, readers_never_see_torn_writes, 120)
{
	struct cfg_arg wa, ra[NR_READERS];
	struct task wt, rt[NR_READERS];
	uint64_t total = 0;
	int i;

	for (i = 0; i < NR_READERS; i++) {
		ra[i] = (struct cfg_arg){ .c = self->c, .sh = self->sh, .idx = i };
		ASSERT_EQ(0, task_start(&rt[i], reader_fn, &ra[i]));
	}
	wa = (struct cfg_arg){ .c = self->c, .sh = self->sh,
			       .budget_ms = (uint64_t)(3000 * scale()),
			       .steps = (uint64_t)(2000000 * scale()) };
	ASSERT_EQ(0, task_start(&wt, writer_fn, &wa));
	EXPECT_EQ(0, task_join(&wt));
	for (i = 0; i < NR_READERS; i++) {
		EXPECT_EQ(0, task_join(&rt[i]));
		total += atomic_load(&self->sh->reads[i]);
	}
	EXPECT_EQ(0U, atomic_load(&self->sh->bad))
		TH_LOG("torn copy of version %llu",
		       (unsigned long long)atomic_load(&self->sh->last_bad_version));
	EXPECT_EQ(0U, atomic_load(&self->sh->retries_seen));
	EXPECT_LT(0U, total);
	EXPECT_EQ(atomic_load(&self->sh->published),
		  shmpool_config_version(self->c));
	TH_LOG("%llu versions, %llu consistent reads",
	       (unsigned long long)shmpool_config_version(self->c),
	       (unsigned long long)total);
}

static int waiter_fn(void *a)
{
	struct cfg_arg *r = a;
	struct timespec dl = after_ms(20000);
	uint8_t b[CAP];
	uint64_t v;
	int n;

	if (shmpool_config_wait(r->c, 0, &dl, &v))
		return 30;
	atomic_store(&r->sh->woken_version, v);
	n = shmpool_config_read(r->c, b, sizeof(b), &v);
	if (n < 0 || blob_check(b, (size_t)n, v))
		return 31;
	return 0;
}

/* Readers blocked until a change wake on the next publish and read it. */
TEST_F(config, wait_wakes_on_publish)
{
	struct cfg_arg ra[NR_READERS];
	struct task rt[NR_READERS];
	struct timespec ts = { 0, 50 * 1000000L };
	uint8_t b[CAP];
	int i;

	for (i = 0; i < NR_READERS; i++) {
		ra[i] = (struct cfg_arg){ .c = self->c, .sh = self->sh, .idx = i };
		ASSERT_EQ(0, task_start(&rt[i], waiter_fn, &ra[i]));
	}
	/* let them go to sleep (if they are slower, they see the change at once) */
	nanosleep(&ts, NULL);
	ASSERT_EQ(0, shmpool_config_publish(self->c, b, blob_make(b, 1), NULL));
	for (i = 0; i < NR_READERS; i++)
		EXPECT_EQ(0, task_join(&rt[i]));
	EXPECT_EQ(1U, atomic_load(&self->sh->woken_version));
}

TEST_F(config, wait_returns_at_once_if_changed)
{
	struct timespec dl = after_ms(0);
	uint64_t v = 0;

	ASSERT_EQ(0, shmpool_config_publish(self->c, "a", 1, NULL));
	EXPECT_EQ(0, shmpool_config_wait(self->c, 0, NULL, &v));
	EXPECT_EQ(1U, v);
	EXPECT_EQ(-ETIMEDOUT, shmpool_config_wait(self->c, 1, &dl, &v));
	EXPECT_EQ(-EINVAL, shmpool_config_wait(NULL, 1, &dl, &v));
}

/* a bad deadline (shmpool.h) is -EINVAL, not "passed": as the device and the rings say */
TEST_F(config, wait_bad_nsec_is_einval)
{
	struct timespec dl = { 1, 1000000000L };

	EXPECT_EQ(-EINVAL, shmpool_config_wait(self->c, 0, &dl, NULL));
}

TEST_F(config, wait_times_out)
{
	struct timespec dl = after_ms(30);

	EXPECT_EQ(-ETIMEDOUT, shmpool_config_wait(self->c, 0, &dl, NULL));
	EXPECT_EQ(0U, shmpool_config_version(self->c));
}

/* ---- dead writers --------------------------------------------------------------------- */

static int half_writer_fn(void *a)
{
	struct cfg_arg *w = a;
	void *buf;

	if (shmpool_config_write_begin(w->c, &buf))
		return 40;
	memset(buf, 0xdd, CAP / 2);	/* and die mid-update */
	return 0;
}

/* begin until a dead writer is taken over (its thread may linger a moment) */
static int begin_taking_over(struct shmpool_config *c, void **buf)
{
	struct timespec ts = { 0, 1000000 };
	int ret, i;

	for (i = 0; i < 10000; i++) {
		ret = shmpool_config_write_begin(c, buf);
		if (ret != -EBUSY)
			return ret;
		nanosleep(&ts, NULL);
	}
	return ret;
}

/*
 * A writer dies mid-update: readers keep getting the last good version
 * without spinning, and the next writer takes over (begin returns 1).
 */
TEST_F(config, dead_writer_is_taken_over)
{
	struct cfg_arg wa = { .c = self->c, .sh = self->sh };
	uint8_t b[CAP], got[CAP];
	struct task wt;
	size_t n = blob_make(b, 1);
	uint64_t v;
	void *buf;

	ASSERT_EQ(0, shmpool_config_publish(self->c, b, n, NULL));
	ASSERT_EQ(0, task_start(&wt, half_writer_fn, &wa));
	ASSERT_EQ(0, task_join(&wt));

	EXPECT_EQ((int)n, shmpool_config_read(self->c, got, sizeof(got), &v));
	EXPECT_EQ(1U, v);
	EXPECT_EQ(0, blob_check(got, n, 1));
	EXPECT_EQ(1, begin_taking_over(self->c, &buf));
	n = blob_make(buf, 2);
	ASSERT_EQ(0, shmpool_config_write_commit(self->c, n, &v));
	EXPECT_EQ(2U, v);
	EXPECT_EQ((int)n, shmpool_config_read(self->c, got, sizeof(got), &v));
	EXPECT_EQ(0, blob_check(got, n, 2));
	EXPECT_EQ(0, shmpool_config_write_begin(self->c, &buf));
	EXPECT_EQ(0, shmpool_config_write_abort(self->c));
}

#ifndef SHMPOOL_TEST_THREADS
/* A writer process that died but is not reaped yet (a zombie) counts as dead. */
TEST_F(config, zombie_writer_is_taken_over)
{
	siginfo_t si;
	void *buf;
	pid_t pid;

	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		if (shmpool_config_write_begin(self->c, &buf))
			_exit(1);
		_exit(0);
	}
	memset(&si, 0, sizeof(si));
	ASSERT_EQ(0, waitid(P_PID, pid, &si, WEXITED | WNOWAIT));
	ASSERT_EQ(0, si.si_status);
	EXPECT_EQ(1, shmpool_config_write_begin(self->c, &buf));
	EXPECT_EQ(0, shmpool_config_write_abort(self->c));
	ASSERT_EQ(pid, waitpid(pid, NULL, 0));
}

/* Begin writing, say so, and die only when killed. */
static int stuck_writer_fn(void *a)
{
	struct cfg_arg *w = a;
	void *buf;

	if (shmpool_config_write_begin(w->c, &buf))
		return 40;
	atomic_store(&w->sh->ready, 1);
	for (;;)
		pause();
}

/* Wait for a version after 0 with a 30 s deadline; report in sh. */
static int death_waiter_fn(void *a)
{
	struct cfg_arg *r = a;
	struct timespec dl = after_ms(30000), t;

	atomic_store(&r->sh->result, shmpool_config_wait(r->c, 0, &dl, NULL));
	clock_gettime(CLOCK_MONOTONIC, &t);
	atomic_store(&r->sh->left_ms, (dl.tv_sec - t.tv_sec) * 1000L +
				       (dl.tv_nsec - t.tv_nsec) / 1000000L);
	return 0;
}

/*
 * A writer killed mid-update while a reader waits for its version: the
 * wait ends with -EOWNERDEAD, long before its deadline (device: at once;
 * memfd: within a 100 ms look), and the next writer takes over.
 */
TEST_F_TIMEOUT(config, wait_learns_of_writer_death, 60)
{
	struct cfg_arg wa = { .c = self->c, .sh = self->sh };
	struct timespec dl;
	struct task wt, rt;
	void *buf;

	ASSERT_EQ(0, task_start(&wt, stuck_writer_fn, &wa));
	while (!atomic_load(&self->sh->ready))
		usleep(1000);
	ASSERT_EQ(0, task_start(&rt, death_waiter_fn, &wa));
	ASSERT_EQ(0, wait_asleep(rt.pid));
	ASSERT_EQ(0, kill(wt.pid, SIGKILL));
	EXPECT_EQ(128 + SIGKILL, task_join(&wt));
	EXPECT_EQ(0, task_join(&rt));
	EXPECT_EQ(-EOWNERDEAD, atomic_load(&self->sh->result));
	/* a hang bound, not a latency claim: 30 s deadline, back within 15 */
	EXPECT_LT(15000, atomic_load(&self->sh->left_ms));
	EXPECT_EQ(1, shmpool_config_write_begin(self->c, &buf));
	EXPECT_EQ(0, shmpool_config_write_abort(self->c));
	/* a writer dead before a wait began is not news: the wait goes on */
	atomic_store(&self->sh->ready, 0);
	ASSERT_EQ(0, task_start(&wt, stuck_writer_fn, &wa));
	while (!atomic_load(&self->sh->ready))
		usleep(1000);
	ASSERT_EQ(0, kill(wt.pid, SIGKILL));
	EXPECT_EQ(128 + SIGKILL, task_join(&wt));
	dl = after_ms(300);
	EXPECT_EQ(-ETIMEDOUT, shmpool_config_wait(self->c, 0, &dl, NULL));
}

/* Write from another PID namespace until sh->go. */
static int pidns_writer_fn(void *a)
{
	struct cfg_arg *w = a;
	void *buf;

	if (shmpool_config_write_begin(w->c, &buf))
		return 40;
	atomic_store(&w->sh->ready, 1);
	while (!atomic_load(&w->sh->go))
		usleep(1000);
	return shmpool_config_write_commit(w->c, 0, NULL) ? 41 : 0;
}

/*
 * A writer alive in another PID namespace keeps the slot (device): its
 * process id there names no process of ours, so a thread-id owner looked
 * dead and was taken over.
 */
TEST_F(config, pidns_live_writer_is_ebusy)
{
	struct cfg_arg wa = { .c = self->c, .sh = self->sh };
	void *buf;
	pid_t a;

	if (!attachments_exact(self->p))
		SKIP(return, "owners are process ids here (memfd, or no attachments)");
	a = pidns_start(pidns_writer_fn, &wa);
	if (a < 0 && (errno == EPERM || errno == EINVAL || errno == ENOSYS))
		SKIP(return, "no PID namespaces here: %s", strerror(errno));
	ASSERT_LT(0, a);
	while (!atomic_load(&self->sh->ready))
		usleep(1000);
	EXPECT_EQ(-EBUSY, shmpool_config_write_begin(self->c, &buf));
	atomic_store(&self->sh->go, 1);
	EXPECT_EQ(0, pidns_join(a));
	EXPECT_EQ(1U, shmpool_config_version(self->c));
}

static void publish_100(void *a)
{
	struct shmpool_config *c = a;
	uint8_t b[CAP];
	int i;

	for (i = 0; i < 100; i++)
		if (shmpool_config_publish(c, b, blob_make(b, (uint64_t)i + 1), NULL))
			_exit(3);
}

/* With nobody waiting, publishing makes no system call. */
TEST_F(config, publish_without_waiters_no_syscall)
{
	long first;

	EXPECT_EQ(0, count_syscalls(publish_100, self->c, &first))
		TH_LOG("first syscall: %ld", first);
}
#endif

/* ---- multi-pool handles ------------------------------------------------------------- */

/*
 * The handle table is the process's own (liburcu), tested over memfd
 * pools: the device-only lanes (6.12, debug; lib_test.h) leave these tests
 * to the host, 6.1 and rt, as they do the fixtures' memfd variants (the
 * costly ones, that is: in the debug lane they took 47 s).
 */
#define SKIP_HANDLES_IN_DEVICE_LANE()						\
	do {									\
		if (lane_is_device_only())					\
			SKIP(return, "memfd: this lane tests the device backend only"); \
	} while (0)

#define HPOOL_BYTES	(64U << 10)
#define NR_RESOLVERS	3

/* Make an anonymous pool whose first and last 8 bytes hold @stamp. */
static struct shmpool *stamped_pool(uint64_t stamp)
{
	struct shmpool *p;

	if (shmpool_create_anon(HPOOL_BYTES, SHMPOOL_BACKEND_MEMFD, &p))
		return NULL;
	memcpy(shmpool_base(p), &stamp, 8);
	memcpy((char *)shmpool_base(p) + HPOOL_BYTES - 8, &stamp, 8);
	return p;
}

/* 1 if [@addr, +page) is mapped in this process */
static int mapped(void *addr)
{
	return msync(addr, (size_t)getpagesize(), MS_ASYNC) == 0;
}

static void *detach_thread(void *slot)
{
	return (void *)(intptr_t)shmpool_handle_detach(*(int *)slot);
}

/* Resolve, bounds, stale handles, and detach really unmapping. */
TEST(handle_resolve_and_detach)
{
	struct shmpool *p = stamped_pool(42), *q;
	shmpool_handle_t h, end;
	pthread_t th;
	uint64_t *w;
	void *base, *rc;
	int slot, slot2, slot3;

	ASSERT_NE(NULL, p);
	base = shmpool_base(p);
	slot = shmpool_handle_attach(p);
	ASSERT_LT(0, slot);
	h = shmpool_handle_make(slot, 0);
	ASSERT_NE(SHMPOOL_HANDLE_NULL, h);
	EXPECT_EQ(slot, shmpool_handle_slot(h));
	EXPECT_EQ(0U, shmpool_handle_off(h));
	end = shmpool_handle_make(slot, HPOOL_BYTES - 8);
	EXPECT_EQ(HPOOL_BYTES - 8, shmpool_handle_off(end));

	/* outside a read-side section: nothing */
	EXPECT_EQ(NULL, shmpool_handle_ptr(h, 8));

	shmpool_handle_read_lock();
	w = shmpool_handle_ptr(h, 8);
	ASSERT_NE(NULL, w);
	EXPECT_EQ(42U, *w);
	EXPECT_EQ(base, (void *)w);
	w = shmpool_handle_ptr(end, 8);
	ASSERT_NE(NULL, w);
	EXPECT_EQ(42U, *w);
	EXPECT_EQ(NULL, shmpool_handle_ptr(end, 9));	/* past the end */
	EXPECT_EQ(NULL, shmpool_handle_ptr(SHMPOOL_HANDLE_NULL, 1));
	EXPECT_EQ(NULL, shmpool_handle_ptr(h + (1ULL << 54), 1));	/* empty slot */
	EXPECT_EQ(NULL, shmpool_handle_ptr(h ^ (1ULL << 48), 1));	/* wrong generation */
	/* sections nest; detach inside one would wait for itself */
	shmpool_handle_read_lock();
	EXPECT_NE(NULL, shmpool_handle_ptr(h, 1));
	shmpool_handle_read_unlock();
	EXPECT_EQ(-EDEADLK, shmpool_handle_detach(slot));
	/* attach inside a section is fine, while another thread detaches too */
	q = stamped_pool(44);
	ASSERT_NE(NULL, q);
	ASSERT_EQ(0, pthread_create(&th, NULL, detach_thread, &slot));
	slot3 = shmpool_handle_attach(q);
	EXPECT_LT(0, slot3);
	/* the detach waits for this section: the pool is still mapped */
	EXPECT_EQ(1, mapped(base));
	shmpool_handle_read_unlock();
	pthread_join(th, &rc);
	EXPECT_EQ(0, (int)(intptr_t)rc);	/* detached (after our section) */
	EXPECT_EQ(0, mapped(base));
	EXPECT_EQ(0, shmpool_handle_detach(slot3));
	p = stamped_pool(42);
	ASSERT_NE(NULL, p);
	base = shmpool_base(p);
	slot = shmpool_handle_attach(p);
	ASSERT_LT(0, slot);
	h = shmpool_handle_make(slot, 0);

	EXPECT_EQ(1, mapped(base));
	EXPECT_EQ(0, shmpool_handle_detach(slot));
	EXPECT_EQ(0, mapped(base));	/* unmapped by detach */
	EXPECT_EQ(-ENOENT, shmpool_handle_detach(slot));

	/* the slot's next pool: old handles stay dead */
	p = stamped_pool(43);
	ASSERT_NE(NULL, p);
	slot2 = shmpool_handle_attach(p);
	ASSERT_LT(0, slot2);
	shmpool_handle_read_lock();
	EXPECT_EQ(NULL, shmpool_handle_ptr(h, 8));
	w = shmpool_handle_ptr(shmpool_handle_make(slot2, 0), 8);
	ASSERT_NE(NULL, w);
	EXPECT_EQ(43U, *w);
	shmpool_handle_read_unlock();
	EXPECT_EQ(0, shmpool_handle_detach(slot2));
	shmpool_handle_thread_unregister();
}

TEST(handle_bad_arguments)
{
	EXPECT_EQ(-EINVAL, shmpool_handle_attach(NULL));
	EXPECT_EQ(-EINVAL, shmpool_handle_detach(0));
	EXPECT_EQ(-EINVAL, shmpool_handle_detach(-1));
	EXPECT_EQ(-EINVAL, shmpool_handle_detach(SHMPOOL_HANDLE_SLOTS));
	EXPECT_EQ(-ENOENT, shmpool_handle_detach(SHMPOOL_HANDLE_SLOTS - 1));
	EXPECT_EQ(SHMPOOL_HANDLE_NULL, shmpool_handle_make(0, 0));
	EXPECT_EQ(SHMPOOL_HANDLE_NULL, shmpool_handle_make(SHMPOOL_HANDLE_SLOTS, 0));
	EXPECT_EQ(SHMPOOL_HANDLE_NULL, shmpool_handle_make(5, 0));	/* empty */
}
/*
 * Raise RLIMIT_NOFILE for a full table (every attached pool keeps its fd);
 * 0, or -1 if it cannot be raised that far.
 */
static int nofile_for_full_table(void)
{
	struct rlimit rl, want = { 2 * SHMPOOL_HANDLE_SLOTS, 2 * SHMPOOL_HANDLE_SLOTS };

	if (getrlimit(RLIMIT_NOFILE, &rl))
		return -1;
	if (rl.rlim_cur >= want.rlim_cur)
		return 0;
	if (rl.rlim_max > want.rlim_max)
		want.rlim_max = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &want)) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	return !getrlimit(RLIMIT_NOFILE, &rl) &&
	       rl.rlim_cur >= SHMPOOL_HANDLE_SLOTS + 64 ? 0 : -1;
}

/*
 * Attach 4 KiB memfd pools until the table says no: their slots in
 * @slots, the count in *@n; the last attach's result (-ENOSPC when full).
 */
static int table_fill(int *slots, int *n)
{
	struct shmpool *p;
	int ret = 0;

	for (*n = 0; *n < SHMPOOL_HANDLE_SLOTS; slots[(*n)++] = ret) {
		ret = shmpool_create_anon(4096, SHMPOOL_BACKEND_MEMFD, &p);
		if (ret)
			return ret;
		ret = shmpool_handle_attach(p);
		if (ret < 0) {
			shmpool_close(p);
			break;
		}
	}
	return ret;
}

/* A full table is -ENOSPC; detaching makes room again. */
TEST(handle_table_full_is_enospc)
{
	static int slots[SHMPOOL_HANDLE_SLOTS];
	int i, n;

	SKIP_HANDLES_IN_DEVICE_LANE();

	if (nofile_for_full_table())
		SKIP(return, "RLIMIT_NOFILE is below a full table");
	EXPECT_EQ(-ENOSPC, table_fill(slots, &n));
	EXPECT_EQ(SHMPOOL_HANDLE_SLOTS - 1, n);
	for (i = 0; i < n; i++)
		EXPECT_EQ(0, shmpool_handle_detach(slots[i]));
}

struct hstress {
	_Atomic shmpool_handle_t live[4];	/* handles the resolvers try */
	atomic_int stop;
	atomic_uint_fast64_t hits, misses, bad;
};

static void *resolver(void *a)
{
	struct hstress *hs = a;
	uint64_t hits = 0, misses = 0, bad = 0, stamp;
	unsigned int i = 0;
	shmpool_handle_t h;
	char *q;

	while (!atomic_load_explicit(&hs->stop, memory_order_relaxed)) {
		/* acquire: pairs with the store after stamping the pool */
		h = atomic_load_explicit(&hs->live[i++ % 4], memory_order_acquire);
		shmpool_handle_read_lock();
		q = shmpool_handle_ptr(h, HPOOL_BYTES);
		if (q) {
			/* the pool must be the one the handle was made for */
			memcpy(&stamp, q, 8);
			if (stamp != h)
				bad++;
			memcpy(&stamp, q + HPOOL_BYTES - 8, 8);
			if (stamp != h)
				bad++;
			hits++;
		} else {
			misses++;
		}
		shmpool_handle_read_unlock();
	}
	atomic_fetch_add(&hs->hits, hits);
	atomic_fetch_add(&hs->misses, misses);
	atomic_fetch_add(&hs->bad, bad);
	return NULL;
}

/* attach a fresh pool stamped with its own handle; the slot, or -1 */
static int attach_stamped(shmpool_handle_t *hp)
{
	struct shmpool *p = stamped_pool(0);
	shmpool_handle_t h;
	int slot;

	if (!p)
		return -1;
	slot = shmpool_handle_attach(p);
	if (slot < 0) {
		shmpool_close(p);
		return -1;
	}
	h = shmpool_handle_make(slot, 0);
	/* readers check the stamp only through a handle they can resolve */
	memcpy(shmpool_base(p), &h, 8);
	memcpy((char *)shmpool_base(p) + HPOOL_BYTES - 8, &h, 8);
	*hp = h;
	return slot;
}

/*
 * Threads resolve handles in a tight loop and read both ends of the pool
 * while another thread attaches and detaches pools under them: no crash
 * (a use after munmap faults; ASan also checks), every pool they reach is
 * the one their handle names.
 */
/* ---- fork() while another thread holds the table lock ---- */

static struct shmpool *fork_pool;
static atomic_int fork_stop;

/* attach to a full table for ever: each call scans every slot, locked */
static void *attach_full(void *arg)
{
	(void)arg;
	while (!atomic_load(&fork_stop))
		shmpool_handle_attach(fork_pool);
	return NULL;
}

/*
 * The documented bound on stale handles: slots are reused round robin,
 * and a slot's 6-bit generation comes back after 64 attaches of it. With
 * one free slot every attach takes that slot: a handle made before stays
 * NULL through the next 63 pools attached there (the documents promised
 * "NULL" without the bound, which the 64th breaks).
 */
TEST(handle_stale_is_null_for_63_reattaches_of_its_slot)
{
	static int slots[SHMPOOL_HANDLE_SLOTS];
	shmpool_handle_t stale;
	struct shmpool *p;
	int i, n, slot;
	void *q;

	SKIP_HANDLES_IN_DEVICE_LANE();

	if (nofile_for_full_table())
		SKIP(return, "RLIMIT_NOFILE is below a full table");
	ASSERT_EQ(-ENOSPC, table_fill(slots, &n));
	/* one free slot: every attach from now on takes it */
	slot = slots[--n];
	stale = shmpool_handle_make(slot, 0);
	ASSERT_NE(SHMPOOL_HANDLE_NULL, stale);
	ASSERT_EQ(0, shmpool_handle_detach(slot));
	for (i = 1; i < 64; i++) {
		ASSERT_EQ(0, shmpool_create_anon(4096, SHMPOOL_BACKEND_MEMFD, &p));
		ASSERT_EQ(slot, shmpool_handle_attach(p));
		shmpool_handle_read_lock();
		q = shmpool_handle_ptr(stale, 8);
		shmpool_handle_read_unlock();
		EXPECT_EQ(NULL, q) TH_LOG("re-attach %d", i);
		ASSERT_EQ(0, shmpool_handle_detach(slot));
	}
	for (i = 0; i < n; i++)
		EXPECT_EQ(0, shmpool_handle_detach(slots[i]));
}

/*
 * A fork() child made while another thread attaches finds the table lock
 * free: its own attach returns (-ENOSPC, the table is full) rather than
 * wait for ever for a thread the child does not have.
 */
TEST(handle_fork_while_another_thread_attaches)
{
	int i, status = 0, ret;
	pthread_t t;
	pid_t pid;

	SKIP_HANDLES_IN_DEVICE_LANE();

	ASSERT_EQ(0, shmpool_create_anon(4096, SHMPOOL_BACKEND_MEMFD, &fork_pool));
	while ((ret = shmpool_handle_attach(fork_pool)) > 0)
		;
	ASSERT_EQ(-ENOSPC, ret);
	ASSERT_EQ(0, pthread_create(&t, NULL, attach_full, NULL));
	for (i = 0; i < 200; i++) {
		pid = fork();
		ASSERT_LE(0, pid);
		if (!pid) {
			alarm(5);	/* a child that waits for the lock dies of it */
			_exit(shmpool_handle_attach(fork_pool) == -ENOSPC ? 0 : 1);
		}
		ASSERT_EQ(pid, waitpid(pid, &status, 0));
		if (!WIFEXITED(status) || WEXITSTATUS(status))
			break;
	}
	atomic_store(&fork_stop, 1);
	pthread_join(t, NULL);
	EXPECT_TRUE(WIFEXITED(status)) TH_LOG("round %d: the child hung in attach", i);
	EXPECT_EQ(0, WEXITSTATUS(status));
}

TEST(handle_resolve_while_attach_detach)
{
	static struct hstress hs;
	pthread_t th[NR_RESOLVERS];
	shmpool_handle_t h;
	uint64_t end = now_ms() + (uint64_t)(2000 * scale());
	uint64_t rounds = 0, max = (uint64_t)(20000 * scale());
	int slots[4], i, k;

	SKIP_HANDLES_IN_DEVICE_LANE();

	memset(&hs, 0, sizeof(hs));
	for (k = 0; k < 4; k++) {
		slots[k] = attach_stamped(&h);
		ASSERT_LT(0, slots[k]);
		atomic_store(&hs.live[k], h);
	}
	for (i = 0; i < NR_RESOLVERS; i++)
		ASSERT_EQ(0, pthread_create(&th[i], NULL, resolver, &hs));
	while (rounds < max && now_ms() < end) {
		/* replace pools 1..3; pool 0 stays, so some resolutions always hit */
		k = 1 + (int)(rounds++ % 3);
		ASSERT_EQ(0, shmpool_handle_detach(slots[k]));
		slots[k] = attach_stamped(&h);
		ASSERT_LT(0, slots[k]);
		atomic_store(&hs.live[k], h);
	}
	atomic_store(&hs.stop, 1);
	for (i = 0; i < NR_RESOLVERS; i++)
		pthread_join(th[i], NULL);
	for (k = 0; k < 4; k++)
		EXPECT_EQ(0, shmpool_handle_detach(slots[k]));
	EXPECT_EQ(0U, atomic_load(&hs.bad));
	EXPECT_LT(0U, atomic_load(&hs.hits));
	TH_LOG("%llu attach/detach rounds, %llu hits, %llu misses",
	       (unsigned long long)rounds, (unsigned long long)atomic_load(&hs.hits),
	       (unsigned long long)atomic_load(&hs.misses));
}

/* ---- killed at every instruction ---------------------------------------------------- */

/*
 * A writer single-stepped through shmpool_config_publish() and SIGKILLed
 * after k instructions, for every k (lib_test.h, KILL_AT_EVERY_STEP).
 * "Writers" above promises, at every kill point: a reader gets the old
 * version or the new one, each with its own complete bytes (never a
 * torn blob), and the next write_begin() goes ahead (1 if it took the
 * dead writer's place), its version then read whole.
 */
#define KS_LEN		CAP

struct cks {
	struct shmpool *p;
	struct shmpool_config *c;
	uint64_t v0;		/* the version before the victim's */
	long takeovers, published;
};

static void cks_blob(uint8_t *b, uint64_t v)
{
	size_t i;

	for (i = 0; i < KS_LEN; i++)
		b[i] = (uint8_t)(v * 31 + i * 7 + 1);
}

static int cks_victim(void *arg)
{
	struct cks *s = arg;
	uint8_t b[KS_LEN];

	if (shmpool_attach_id(s->p) <= 0)
		return 2;
	cks_blob(b, s->v0 + 1);
	if (ptrace(PTRACE_TRACEME, 0, NULL, NULL))
		return 3;
	raise(SIGSTOP);
	return shmpool_config_publish(s->c, b, KS_LEN, NULL) ? 4 : 0;
}

/* the blob read is version *@v's, whole */
static int cks_read(struct __test_metadata *_metadata, struct cks *s, long k, uint64_t *v)
{
	uint8_t b[KS_LEN], want[KS_LEN];
	int ret = shmpool_config_read(s->c, b, sizeof(b), v);

	if (ret != KS_LEN) {
		TH_LOG("step %ld: read %d", k, ret);
		return -1;
	}
	cks_blob(want, *v);
	if (memcmp(b, want, KS_LEN)) {
		TH_LOG("step %ld: version %llu's blob is not its own: torn", k,
		       (unsigned long long)*v);
		return -1;
	}
	return 0;
}

static int cks_killed_at(struct __test_metadata *_metadata, struct cks *s, long k)
{
	uint8_t *buf;
	uint64_t v, v2;
	void *w;
	int killed, ret;

	killed = step_and_kill(cks_victim, s, k);
	if (killed < 0) {
		TH_LOG("step %ld: the victim failed", k);
		return -1;
	}
	if (cks_read(_metadata, s, k, &v))
		return -1;
	if (v != s->v0 && v != s->v0 + 1) {
		TH_LOG("step %ld: version %llu after %llu", k, (unsigned long long)v,
		       (unsigned long long)s->v0);
		return -1;
	}
	s->published += v != s->v0;
	/* the next writer goes ahead */
	ret = shmpool_config_write_begin(s->c, &w);
	if (ret != 0 && ret != 1) {
		TH_LOG("step %ld: write_begin %d", k, ret);
		return -1;
	}
	s->takeovers += ret;
	buf = w;
	cks_blob(buf, v + 1);
	ret = shmpool_config_write_commit(s->c, KS_LEN, &v2);
	if (ret || v2 != v + 1) {
		TH_LOG("step %ld: commit %d, version %llu after %llu", k, ret,
		       (unsigned long long)v2, (unsigned long long)v);
		return -1;
	}
	if (cks_read(_metadata, s, k, &v) || v != v2)
		return -1;
	s->v0 = v;
	return killed;
}

TEST_F_TIMEOUT(config, publish_killed_at_every_step, 600)
{
	struct cks s = { self->p, self->c, 0, 0, 0 };
	uint8_t b[KS_LEN];
	long k;

#ifdef SHMPOOL_TEST_THREADS
	SKIP(return, "needs writers in other processes");
#endif
	cks_blob(b, 1);
	ASSERT_EQ(0, shmpool_config_publish(self->c, b, KS_LEN, &s.v0));
	KILL_AT_EVERY_STEP(self->p, k, cks_killed_at(_metadata, &s, k));
	TH_LOG("the victim's version out %ld times, its lock taken over %ld times",
	       s.published, s.takeovers);
	/* every kill point's writer got the lock after the dead one */
	EXPECT_LE(1, s.takeovers);
}

TEST_HARNESS_MAIN
