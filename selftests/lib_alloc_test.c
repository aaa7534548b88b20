/* lib_alloc_test: the pool heap (shmpool_alloc.h): layout and init races, general and small-class allocation against a model, several processes, bad input, corruption reports, named objects; memfd and device backends. */
// SPDX-License-Identifier: MIT
/*
 * Workers are processes (fork) by default, as the heap is meant to be used;
 * built with -DSHMPOOL_TEST_THREADS they are threads of the test process so
 * that ThreadSanitizer sees both sides of every exchange.
 *
 * The long tests run for a number of operations or a time budget, whichever
 * ends first, so that they fit in the QEMU lanes (TCG, KASAN): the budget
 * only bounds the run, nothing asserts on time. SHMPOOL_TEST_SCALE (a
 * positive number, default 1) multiplies both.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
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
#include <sched.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "shmpool.h"
#include "shmpool_alloc.h"
#include "shmpool_sync.h"
/* the 6.1 harness leaves parameters unused and defines unprototyped functions */
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#include "kselftest_harness.h"
#include "lib_test.h"

#define POOL_BYTES	(8U << 20)
#define MAX_WORKERS	4
#define MSG_LEN		256

/* ---- helpers ------------------------------------------------------------------- */

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* A size: mostly small, some medium, a few up to 64 KiB. */
static size_t rnd_size(uint64_t *s)
{
	uint64_t r = rnd(s) % 100;

	if (r < 65)
		return 1 + rnd(s) % 256;
	if (r < 95)
		return 257 + rnd(s) % 4000;
	return 4097 + rnd(s) % (60 * 1024);
}

static size_t rnd_align(uint64_t *s)
{
	uint64_t r = rnd(s) % 100;

	if (r < 75)
		return 0;
	return (size_t)1 << (rnd(s) % 13);	/* 1 .. 4096 */
}

/* The byte block @id carries at position @i */
static uint8_t pattern(uint32_t id, size_t i)
{
	return (uint8_t)(id * 131 + i * 7 + (i >> 8));
}

static void fill(void *p, size_t n, uint32_t id)
{
	uint8_t *b = p;
	size_t i;

	for (i = 0; i < n; i++)
		b[i] = pattern(id, i);
}

/* index of the first wrong byte, or n */
static size_t verify(const void *p, size_t n, uint32_t id)
{
	const uint8_t *b = p;
	size_t i;

	for (i = 0; i < n; i++)
		if (b[i] != pattern(id, i))
			break;
	return i;
}


/* ---- fixture ------------------------------------------------------------------- */

FIXTURE(alloc) {
	char name[SHMPOOL_NAME_MAX];
	struct shmpool *p;
	struct shmpool_heap *h;
};

FIXTURE_VARIANT(alloc) {
	unsigned int backend;	/* SHMPOOL_BACKEND_* flag forced on every call */
};

FIXTURE_VARIANT_ADD(alloc, memfd) {
	.backend = SHMPOOL_BACKEND_MEMFD,
};

FIXTURE_VARIANT_ADD(alloc, device) {
	.backend = SHMPOOL_BACKEND_DEVICE,
};

FIXTURE_SETUP(alloc)
{
	/* 6.1's harness would still run the test after SKIP() here */
	if (variant->backend == SHMPOOL_BACKEND_DEVICE && !device_ok())
		SKIP(longjmp(_metadata->env, 1), DEV_PATH " not available");
	SKIP_MEMFD_IN_DEVICE_LANE(variant->backend);
	snprintf(self->name, sizeof(self->name), "lat.%d", (int)getpid());
	ASSERT_EQ(0, shmpool_create(self->name, POOL_BYTES, 0600,
				    variant->backend | SHMPOOL_EXCL, &self->p));
	ASSERT_EQ(0, shmpool_heap_open(self->p, 0, &self->h));
}

FIXTURE_TEARDOWN(alloc)
{
	shmpool_heap_close(self->h);
	shmpool_close(self->p);
	shmpool_unlink(self->name, variant->backend);
}

/* The checker's verdict, with its message in the log on failure. */
#define EXPECT_HEAP_OK(h, flags) do {					\
	char __m[MSG_LEN];						\
	int __r = shmpool_heap_check((h), (flags), __m, sizeof(__m));	\
	EXPECT_EQ(0, __r) TH_LOG("heap check: %s", __m);		\
} while (0)

/* ---- layout ---------------------------------------------------------------------- */

/* A fresh heap: everything free, consistent, and a second handle agrees. */
TEST_F(alloc, fresh_heap)
{
	struct shmpool_heap_stats st, st2;
	struct shmpool_heap *h2;
	int i;

	ASSERT_EQ(0, shmpool_heap_stats(self->h, &st));
	EXPECT_EQ(0U, st.alloc_blocks);
	EXPECT_EQ(0U, st.slabs);
	EXPECT_EQ(0U, st.objects);
	EXPECT_EQ(1U, st.free_blocks);
	EXPECT_EQ(1U, st.nr_attach);
	EXPECT_LT(POOL_BYTES - POOL_BYTES / 64, st.heap_bytes);
	EXPECT_EQ(st.heap_bytes - 16, st.free_bytes);
	EXPECT_EQ(st.free_bytes, st.largest_free);
	EXPECT_EQ(0U, st.used_bytes);
	for (i = 0; i < SHMPOOL_HEAP_NR_CLASSES; i++) {
		EXPECT_EQ(0U, st.classes[i].used);
		EXPECT_LE(16U, st.classes[i].size);
	}
	EXPECT_EQ(8192U, st.classes[SHMPOOL_HEAP_NR_CLASSES - 1].size);
	EXPECT_EQ((uint32_t)SHMPOOL_HEAP_SMALL_MAX, st.classes[SHMPOOL_HEAP_NR_CLASSES - 1].size);
	EXPECT_HEAP_OK(self->h, SHMPOOL_CHECK_QUIESCENT);

	ASSERT_EQ(0, shmpool_heap_open(self->p, 0, &h2));
	EXPECT_NE(shmpool_heap_attach_id(self->h), shmpool_heap_attach_id(h2));
	ASSERT_EQ(0, shmpool_heap_stats(h2, &st2));
	EXPECT_EQ(st.heap_bytes, st2.heap_bytes);
	EXPECT_EQ(2U, st2.nr_attach);
	EXPECT_EQ(0, shmpool_heap_close(h2));
}

/* Blocks allocated through one handle are seen, freed, through another. */
TEST_F(alloc, shared_between_handles)
{
	struct shmpool_heap *h2;
	struct shmpool *p2;
	uint64_t a, b;

	ASSERT_EQ(0, shmpool_open(self->name, variant->backend, &p2));
	ASSERT_EQ(0, shmpool_heap_open(p2, 0, &h2));
	ASSERT_EQ(0, shmpool_alloc(self->h, 100, &a));
	ASSERT_EQ(0, shmpool_alloc(self->h, 10000, &b));
	strcpy(shmpool_heap_ptr(self->h, a, 100), "hello");
	EXPECT_STREQ("hello", (char *)shmpool_heap_ptr(h2, a, 100));
	EXPECT_EQ(0, shmpool_free(h2, a));
	EXPECT_EQ(0, shmpool_free(h2, b));
	EXPECT_EQ(-EINVAL, shmpool_free(self->h, a));
	EXPECT_HEAP_OK(self->h, SHMPOOL_CHECK_QUIESCENT);
	shmpool_heap_close(h2);
	shmpool_close(p2);
}

TEST_F(alloc, rejects_flags)
{
	struct shmpool_heap *h2 = NULL;

	EXPECT_EQ(-EINVAL, shmpool_heap_open(self->p, 1U << 2, &h2));
	EXPECT_EQ(-EINVAL, shmpool_heap_open(self->p, SHMPOOL_HEAP_NOCACHE | 0x80000000U, &h2));
	EXPECT_EQ(NULL, h2);
}

TEST_F(alloc, rejects_small_pool)
{
	struct shmpool_heap *h2 = NULL;
	struct shmpool *p2;

	ASSERT_EQ(0, shmpool_create_anon(SHMPOOL_HEAP_MIN_POOL / 2,
					 variant->backend, &p2));
	EXPECT_EQ(-EINVAL, shmpool_heap_open(p2, 0, &h2));
	EXPECT_EQ(NULL, h2);
	shmpool_close(p2);
}

TEST_F(alloc, rejects_readonly_pool)
{
	struct shmpool_heap *h2 = NULL;
	struct shmpool *p2;

	ASSERT_EQ(0, shmpool_open(self->name, variant->backend | SHMPOOL_RDONLY, &p2));
	EXPECT_EQ(-EPERM, shmpool_heap_open(p2, 0, &h2));
	EXPECT_EQ(NULL, h2);
	shmpool_close(p2);
}

/* A pool holding something else is refused, not overwritten. */
TEST_F(alloc, rejects_foreign_pool)
{
	struct shmpool_heap *h2 = NULL;
	struct shmpool *p2;
	uint32_t *w;

	ASSERT_EQ(0, shmpool_create_anon(POOL_BYTES / 8, variant->backend, &p2));
	w = shmpool_base(p2);
	w[0] = 0x12345678;
	EXPECT_EQ(-EUCLEAN, shmpool_heap_open(p2, 0, &h2));
	EXPECT_EQ(0x12345678U, w[0]);
	w[0] = 1;	/* "ready", but no heap behind it */
	EXPECT_EQ(-EUCLEAN, shmpool_heap_open(p2, 0, &h2));
	EXPECT_EQ(NULL, h2);
	shmpool_close(p2);
}

/* ---- init races ------------------------------------------------------------------ */

struct init_race {
	const char *name;
	unsigned int backend;
	_Atomic uint32_t *go;		/* MAP_SHARED anonymous page */
	_Atomic uint64_t *offs;		/* each racer's allocation */
	int idx;
};

static int init_racer(void *arg)
{
	struct init_race *r = arg;
	struct shmpool_heap *h;
	struct shmpool *p;
	uint64_t off;
	int ret;

	while (!atomic_load(r->go))
		;
	ret = shmpool_create(r->name, POOL_BYTES / 4, 0600, r->backend, &p);
	if (ret)
		return 10;
	ret = shmpool_heap_open(p, 0, &h);
	if (ret)
		return 11;
	if (shmpool_alloc(h, 1000, &off))
		return 12;
	memset(shmpool_heap_ptr(h, off, 1000), r->idx + 1, 1000);
	atomic_store(&r->offs[r->idx], off);
	shmpool_heap_close(h);
	shmpool_close(p);
	return 0;
}

/*
 * Several processes create (without EXCL) and open the same heap at once:
 * exactly one lays it out, everyone gets a working heap, and their blocks
 * are distinct and intact.
 */
TEST_F(alloc, init_race)
{
	struct init_race r[MAX_WORKERS];
	struct task t[MAX_WORKERS];
	struct shmpool_heap_stats st;
	struct shmpool_heap *h;
	struct shmpool *p;
	char name[SHMPOOL_NAME_MAX];
	_Atomic uint32_t *go;
	_Atomic uint64_t *offs;
	int round, i, j;

	go = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, go);
	offs = (_Atomic uint64_t *)(go + 16);
	for (round = 0; round < 5; round++) {
		snprintf(name, sizeof(name), "lat.%d.race%d", (int)getpid(), round);
		atomic_store(go, 0);
		for (i = 0; i < MAX_WORKERS; i++) {
			r[i] = (struct init_race){ name, variant->backend, go, offs, i };
			atomic_store(&offs[i], 0);
			ASSERT_EQ(0, task_start(&t[i], init_racer, &r[i]));
		}
		atomic_store(go, 1);
		for (i = 0; i < MAX_WORKERS; i++)
			EXPECT_EQ(0, task_join(&t[i])) TH_LOG("racer %d", i);
		ASSERT_EQ(0, shmpool_open(name, variant->backend, &p));
		ASSERT_EQ(0, shmpool_heap_open(p, 0, &h));
		ASSERT_EQ(0, shmpool_heap_stats(h, &st));
		EXPECT_EQ((uint64_t)MAX_WORKERS, st.alloc_blocks);
		for (i = 0; i < MAX_WORKERS; i++) {
			uint8_t *b = shmpool_heap_ptr(h, atomic_load(&offs[i]), 1000);

			ASSERT_NE(NULL, b);
			for (j = 0; j < 1000; j++)
				if (b[j] != i + 1)
					break;
			EXPECT_EQ(1000, j) TH_LOG("racer %d's block overwritten", i);
			EXPECT_EQ(0, shmpool_free(h, atomic_load(&offs[i])));
		}
		EXPECT_HEAP_OK(h, SHMPOOL_CHECK_QUIESCENT);
		shmpool_heap_close(h);
		shmpool_close(p);
		shmpool_unlink(name, variant->backend);
	}
	munmap((void *)go, 4096);
}

/* An initialiser that died half-way (state word names a dead attachment) is replaced. */
TEST_F(alloc, dead_initialiser_taken_over)
{
	struct shmpool_heap_stats st;
	struct shmpool_heap *h2;
	struct shmpool *p2;
	uint32_t *w;
	pid_t pid;
	int status;
	uint64_t off;

	ASSERT_EQ(0, shmpool_create_anon(POOL_BYTES / 8, variant->backend, &p2));
	w = shmpool_base(p2);
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		/* what a dead initialiser leaves: its claim and half a header */
		w[0] = 0x80000000U | (uint32_t)shmpool_attach_id(p2);
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_EQ(0, status);
	memset(w + 1, 0xa5, 3000);
	ASSERT_EQ(0, shmpool_heap_open(p2, 0, &h2));
	EXPECT_EQ(1U, w[0]);
	ASSERT_EQ(0, shmpool_heap_stats(h2, &st));
	EXPECT_EQ(0U, st.alloc_blocks);
	EXPECT_EQ(1U, st.nr_attach);
	EXPECT_EQ(0, shmpool_alloc(h2, 5000, &off));
	EXPECT_HEAP_OK(h2, SHMPOOL_CHECK_QUIESCENT);
	shmpool_heap_close(h2);
	shmpool_close(p2);
}

/*
 * An initialiser that is alive keeps openers waiting; when it dies without
 * finishing, the waiter takes over. The opener must not return before the
 * initialiser announced its death.
 */
TEST_F(alloc, live_initialiser_waited_for_then_taken_over)
{
	struct shmpool_heap *h2;
	struct shmpool *p2;
	_Atomic uint32_t *w, *dying;
	pid_t pid, gc;
	int status;

	ASSERT_EQ(0, shmpool_create_anon(POOL_BYTES / 8, variant->backend, &p2));
	w = shmpool_base(p2);
	dying = (_Atomic uint32_t *)((char *)shmpool_base(p2) + shmpool_size(p2) - 64);
	/* a grandchild, so that init reaps it and it never lingers as a zombie */
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		gc = fork();
		if (gc == 0) {
			atomic_store(w, 0x80000000U | (uint32_t)shmpool_attach_id(p2));
			usleep(300 * 1000);
			atomic_store(dying, 1);
			_exit(0);
		}
		_exit(gc < 0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_EQ(0, WEXITSTATUS(status));
	while (!(atomic_load(w) & 0x80000000U))
		usleep(1000);

	ASSERT_EQ(0, shmpool_heap_open(p2, 0, &h2));
	EXPECT_EQ(1U, atomic_load(dying));
	EXPECT_EQ(1U, atomic_load(w));
	EXPECT_HEAP_OK(h2, SHMPOOL_CHECK_QUIESCENT);
	shmpool_heap_close(h2);
	shmpool_close(p2);
}

/* ---- allocation -------------------------------------------------------------------- */

/* Every size class and a range of general sizes and alignments. */
TEST_F(alloc, sizes_and_alignments)
{
	static const size_t sizes[] = { 1, 15, 16, 17, 100, 128, 129, 200, 255, 256,
					257, 1000, 4096, 4097, 65536, 1 << 20 };
	uint64_t off[96];
	size_t a;
	int n = 0, i, j;
	int64_t us;

	for (i = 0; i < (int)(sizeof(sizes) / sizeof(sizes[0])); i++) {
		for (a = 1; a <= 4096; a <<= 3) {
			ASSERT_EQ(0, shmpool_alloc_aligned(self->h, sizes[i], a, &off[n]));
			EXPECT_EQ(0U, off[n] % (a < 16 ? 16 : a)) TH_LOG("size %zu align %zu", sizes[i], a);
			us = shmpool_alloc_size(self->h, off[n]);
			EXPECT_LE((int64_t)sizes[i], us);
			EXPECT_EQ(shmpool_heap_attach_id(self->h),
				  shmpool_alloc_owner(self->h, off[n]));
			memset(shmpool_heap_ptr(self->h, off[n], sizes[i]), 0x5a, sizes[i]);
			n++;
		}
	}
	EXPECT_HEAP_OK(self->h, SHMPOOL_CHECK_QUIESCENT);
	for (i = 0; i < n; i++)
		for (j = i + 1; j < n; j++)
			EXPECT_NE(off[i], off[j]);
	for (i = 0; i < n; i++)
		EXPECT_EQ(0, shmpool_free(self->h, off[i]));
	EXPECT_HEAP_OK(self->h, SHMPOOL_CHECK_QUIESCENT);
}

/* Small sizes come from the classes (no header, counted per class). */
TEST_F(alloc, small_sizes_use_classes)
{
	struct shmpool_heap_stats st;
	uint64_t off[3];

	ASSERT_EQ(0, shmpool_alloc(self->h, 20, &off[0]));
	ASSERT_EQ(0, shmpool_alloc(self->h, 32, &off[1]));
	ASSERT_EQ(0, shmpool_alloc(self->h, 8000, &off[2]));
	EXPECT_EQ(32, shmpool_alloc_size(self->h, off[0]));
	EXPECT_EQ(32, shmpool_alloc_size(self->h, off[1]));
	EXPECT_EQ(8192, shmpool_alloc_size(self->h, off[2]));
	ASSERT_EQ(0, shmpool_heap_stats(self->h, &st));
	EXPECT_EQ(2U, st.classes[1].used);
	EXPECT_EQ(1U, st.classes[SHMPOOL_HEAP_NR_CLASSES - 1].used);
	EXPECT_EQ(2U, st.slabs);
	EXPECT_EQ(3U, st.alloc_blocks);
	EXPECT_EQ(0, shmpool_free(self->h, off[0]));
	EXPECT_EQ(0, shmpool_free(self->h, off[1]));
	EXPECT_EQ(0, shmpool_free(self->h, off[2]));
	ASSERT_EQ(0, shmpool_heap_stats(self->h, &st));
	EXPECT_EQ(0U, st.classes[1].used);
	EXPECT_EQ(0U, st.alloc_blocks);
}

/* Classes above 2 KiB live in 64 KiB slabs: objects in all four chunks work. */
TEST_F(alloc, big_classes_span_64k_slabs)
{
	struct shmpool_heap_stats st;
	uint64_t off[24];
	int i, j;

	for (i = 0; i < 24; i++) {
		ASSERT_EQ(0, shmpool_alloc(self->h, 8192, &off[i]));
		EXPECT_EQ(8192, shmpool_alloc_size(self->h, off[i]));
		memset(shmpool_heap_ptr(self->h, off[i], 8192), i + 1, 8192);
	}
	for (i = 0; i < 24; i++)
		for (j = i + 1; j < 24; j++)
			EXPECT_LE(8192U, off[i] > off[j] ? off[i] - off[j] : off[j] - off[i]);
	ASSERT_EQ(0, shmpool_heap_stats(self->h, &st));
	EXPECT_EQ(24U, st.classes[SHMPOOL_HEAP_NR_CLASSES - 1].used);
	EXPECT_LE(3U, st.classes[SHMPOOL_HEAP_NR_CLASSES - 1].slabs);
	EXPECT_EQ(7U * st.classes[SHMPOOL_HEAP_NR_CLASSES - 1].slabs,
		  st.classes[SHMPOOL_HEAP_NR_CLASSES - 1].objs);
	EXPECT_HEAP_OK(self->h, SHMPOOL_CHECK_QUIESCENT);
	/* an offset inside an object in a later chunk of its slab is not one */
	EXPECT_EQ(-EINVAL, shmpool_free(self->h, off[6] + 4096));
	for (i = 0; i < 24; i++) {
		EXPECT_EQ(i + 1, *(uint8_t *)shmpool_heap_ptr(self->h, off[i] + 8191, 1));
		EXPECT_EQ(0, shmpool_free(self->h, off[i]));
	}
	EXPECT_EQ(0, shmpool_heap_flush(self->h));
	ASSERT_EQ(0, shmpool_heap_stats(self->h, &st));
	EXPECT_EQ(0U, st.classes[SHMPOOL_HEAP_NR_CLASSES - 1].used);
	EXPECT_EQ(0U, st.classes[SHMPOOL_HEAP_NR_CLASSES - 1].cached);
	EXPECT_HEAP_OK(self->h, SHMPOOL_CHECK_QUIESCENT);
}

/* Freeing coalesces: after any order of frees the heap is one block again. */
TEST_F(alloc, coalesces_to_one_block)
{
	struct shmpool_heap_stats st0, st;
	uint64_t off[200], s = 42;
	int i, j;

	ASSERT_EQ(0, shmpool_heap_stats(self->h, &st0));
	for (i = 0; i < 200; i++)
		ASSERT_EQ(0, shmpool_alloc_aligned(self->h, 8200 + rnd(&s) % 20000,
						   16 << (rnd(&s) % 5), &off[i]));
	for (i = 199; i > 0; i--) {	/* shuffle */
		j = (int)(rnd(&s) % (uint64_t)(i + 1));
		s = off[i]; off[i] = off[j]; off[j] = s;
	}
	for (i = 0; i < 200; i++)
		ASSERT_EQ(0, shmpool_free(self->h, off[i]));
	ASSERT_EQ(0, shmpool_heap_stats(self->h, &st));
	EXPECT_EQ(1U, st.free_blocks);
	EXPECT_EQ(st0.free_bytes, st.free_bytes);
	EXPECT_EQ(st0.largest_free, st.largest_free);
	EXPECT_HEAP_OK(self->h, SHMPOOL_CHECK_QUIESCENT);
}

/* Allocating until -ENOMEM, then freeing everything, leaves a whole heap. */
TEST_F(alloc, exhaustion_is_enomem)
{
	struct shmpool_heap_stats st0, st;
	static uint64_t off[1 << 16];
	int n = 0, i, ret;

	ASSERT_EQ(0, shmpool_heap_stats(self->h, &st0));
	while ((ret = shmpool_alloc(self->h, 4000, &off[n])) == 0 && n < (1 << 16) - 1)
		n++;
	EXPECT_EQ(-ENOMEM, ret);
	EXPECT_LT(1000, n);
	ASSERT_EQ(0, shmpool_heap_stats(self->h, &st));
	EXPECT_GT(4000U, st.largest_free);
	EXPECT_HEAP_OK(self->h, SHMPOOL_CHECK_QUIESCENT);
	/* small sizes fall back to the general heap's crumbs, then fail too */
	while (shmpool_alloc(self->h, 16, &off[n]) == 0 && n < (1 << 16) - 1)
		n++;
	EXPECT_EQ(-ENOMEM, shmpool_alloc(self->h, 16, &off[n]));
	for (i = 0; i < n; i++)
		ASSERT_EQ(0, shmpool_free(self->h, off[i]));
	ASSERT_EQ(0, shmpool_heap_stats(self->h, &st));
	EXPECT_EQ(0U, st.alloc_blocks);
	EXPECT_HEAP_OK(self->h, SHMPOOL_CHECK_QUIESCENT);
}

TEST_F(alloc, too_big_is_enomem)
{
	uint64_t off;

	EXPECT_EQ(-ENOMEM, shmpool_alloc(self->h, POOL_BYTES, &off));
	EXPECT_EQ(-ENOMEM, shmpool_alloc(self->h, SIZE_MAX, &off));
	EXPECT_EQ(-ENOMEM, shmpool_alloc_aligned(self->h, 16, (size_t)1 << 40, &off));
	EXPECT_HEAP_OK(self->h, SHMPOOL_CHECK_QUIESCENT);
}

TEST_F(alloc, zero_size_is_einval)
{
	uint64_t off;

	EXPECT_EQ(-EINVAL, shmpool_alloc(self->h, 0, &off));
}

TEST_F(alloc, bad_alignment_is_einval)
{
	uint64_t off;

	EXPECT_EQ(-EINVAL, shmpool_alloc_aligned(self->h, 16, 3, &off));
	EXPECT_EQ(-EINVAL, shmpool_alloc_aligned(self->h, 16, 48, &off));
}

/*
 * The model test: random sizes, alignments and frees against a reference
 * (a granule map of who owns what), every block filled with its own pattern
 * and verified before it is freed, the checker every CHECK_EVERY steps.
 */
#define MODEL_LIVE	3000
#define CHECK_EVERY	4096
#define MODEL_MIN_ALLOCS	10000

struct live {
	uint64_t off;
	size_t size;
	uint32_t id;
};

TEST_F_TIMEOUT(alloc, model_random, 120)
{
	uint64_t ops = (uint64_t)(2000000 * scale()), budget = (uint64_t)(4000 * scale());
	uint64_t s = 0x9e3779b97f4a7c15ULL ^ (uint64_t)getpid(), i, t0 = now_ms();
	static struct live live[MODEL_LIVE];
	uint32_t *owner, next_id = 1;
	struct shmpool_heap_stats st;
	size_t nlive = 0, k, g, size, align;
	uint64_t off, nalloc = 0, nfree = 0, nomem = 0;
	char msg[MSG_LEN];
	int ret;

	owner = calloc(POOL_BYTES / 16, sizeof(*owner));
	ASSERT_NE(NULL, owner);
	for (i = 0; i < ops; i++) {
		/* the budget ends a slow run, but never before a real test */
		if ((i & 1023) == 0 && nalloc > MODEL_MIN_ALLOCS && now_ms() - t0 > budget)
			break;
		if (nlive && (nlive == MODEL_LIVE || rnd(&s) % MODEL_LIVE < nlive)) {
			k = rnd(&s) % nlive;
			ASSERT_EQ(live[k].size, verify(shmpool_heap_ptr(self->h, live[k].off,
								      live[k].size),
						       live[k].size, live[k].id))
				TH_LOG("block 0x%llx (%zu bytes) damaged",
				       (unsigned long long)live[k].off, live[k].size);
			for (g = live[k].off / 16; g < (live[k].off + live[k].size + 15) / 16; g++)
				owner[g] = 0;
			ASSERT_EQ(0, shmpool_free(self->h, live[k].off));
			live[k] = live[--nlive];
			nfree++;
		} else {
			size = rnd_size(&s);
			align = rnd_align(&s);
			ret = shmpool_alloc_aligned(self->h, size, align, &off);
			if (ret == -ENOMEM) {
				nomem++;
				continue;
			}
			ASSERT_EQ(0, ret);
			ASSERT_EQ(0U, off % (align > 16 ? align : 16));
			ASSERT_NE(NULL, shmpool_heap_ptr(self->h, off, size));
			ASSERT_LE((int64_t)size, shmpool_alloc_size(self->h, off));
			for (g = off / 16; g < (off + size + 15) / 16; g++) {
				ASSERT_EQ(0U, owner[g])
					TH_LOG("new block 0x%llx+%zu overlaps block %u",
					       (unsigned long long)off, size, owner[g]);
				owner[g] = next_id;
			}
			live[nlive] = (struct live){ off, size, next_id++ };
			fill(shmpool_heap_ptr(self->h, off, size), size, live[nlive].id);
			nlive++;
			nalloc++;
		}
		if (i % CHECK_EVERY == 0) {
			ret = shmpool_heap_check(self->h, SHMPOOL_CHECK_QUIESCENT, msg, sizeof(msg));
			ASSERT_EQ(0, ret) TH_LOG("step %llu: %s", (unsigned long long)i, msg);
		}
	}
	ASSERT_EQ(0, shmpool_heap_stats(self->h, &st));
	EXPECT_EQ(nlive, st.alloc_blocks);
	while (nlive) {
		nlive--;
		ASSERT_EQ(live[nlive].size,
			  verify(shmpool_heap_ptr(self->h, live[nlive].off, live[nlive].size),
				 live[nlive].size, live[nlive].id));
		ASSERT_EQ(0, shmpool_free(self->h, live[nlive].off));
	}
	ASSERT_EQ(0, shmpool_heap_stats(self->h, &st));
	EXPECT_EQ(0U, st.alloc_blocks);
	EXPECT_HEAP_OK(self->h, SHMPOOL_CHECK_QUIESCENT);
	TH_LOG("%llu allocations, %llu frees, %llu ENOMEM, %u slabs, in %llu ms",
	       (unsigned long long)nalloc, (unsigned long long)nfree,
	       (unsigned long long)nomem, st.slabs, (unsigned long long)(now_ms() - t0));
	free(owner);
}

/* ---- several processes ----------------------------------------------------------- */

#define MAILBOX		64

/* Shared through the named object "ctl" of the heap under test. */
struct ctl {
	_Atomic uint64_t mailbox[MAILBOX];	/* offsets handed over, 0: empty */
	_Atomic uint32_t stop;
	_Atomic uint64_t passed;		/* blocks taken from another worker */
};

struct worker {
	const char *name;
	unsigned int backend;
	struct shmpool_heap *h;	/* threads: the shared handle */
	int idx;
	uint64_t ops;
	uint64_t budget_ms;
};

/*
 * A block handed over carries its own description: size in the first 8
 * bytes, then a pattern keyed by its offset.
 */
static void stamp(uint8_t *b, uint64_t off, size_t size)
{
	memcpy(b, &size, sizeof(size));
	fill(b + 8, size - 8, (uint32_t)(off >> 4));
}

static bool stamp_ok(const uint8_t *b, uint64_t off, size_t *size)
{
	memcpy(size, b, sizeof(*size));
	return *size >= 8 && *size <= 70000 &&
	       verify(b + 8, *size - 8, (uint32_t)(off >> 4)) == *size - 8;
}

static int mp_worker(void *arg)
{
	struct worker *w = arg;
	struct shmpool_heap *h = w->h;
	struct shmpool *p = NULL;
	uint64_t s = 0x2545f4914f6cdd1dULL * (uint64_t)(w->idx + 1), i, off, t0 = now_ms();
	uint64_t mine[256];
	struct shmpool_obj obj;
	struct ctl *ctl;
	size_t n = 0, size, k;
	int ret, rc = 0;

#ifndef SHMPOOL_TEST_THREADS
	/* a process of its own: its own handles, as an unrelated process would */
	if (shmpool_open(w->name, w->backend, &p) || shmpool_heap_open(p, 0, &h))
		return 20;
#endif
	if (shmpool_obj_find(h, "ctl", &obj))
		return 21;
	ctl = shmpool_heap_ptr(h, obj.off, sizeof(*ctl));
	for (i = 0; i < w->ops && !atomic_load(&ctl->stop); i++) {
		if ((i & 255) == 0 && now_ms() - t0 > w->budget_ms)
			break;
		switch (rnd(&s) % 4) {
		case 0:
		case 1:		/* allocate, keep */
			if (n == 256)
				break;
			size = 8 + (rnd(&s) % 8 ? rnd(&s) % 249 : rnd(&s) % 20000);
			ret = shmpool_alloc(h, size, &off);
			if (ret == -ENOMEM)
				break;
			if (ret) {
				rc = 22;
				goto out;
			}
			stamp(shmpool_heap_ptr(h, off, size), off, size);
			mine[n++] = off;
			break;
		case 2:		/* hand one over */
			if (!n)
				break;
			k = rnd(&s) % MAILBOX;
			off = 0;
			if (atomic_compare_exchange_strong(&ctl->mailbox[k], &off, mine[n - 1]))
				n--;
			break;
		case 3:		/* take one from the mailbox, or free one of ours */
			off = atomic_exchange(&ctl->mailbox[rnd(&s) % MAILBOX], 0);
			if (off) {
				atomic_fetch_add(&ctl->passed, 1);
			} else if (n) {
				k = rnd(&s) % n;
				off = mine[k];
				mine[k] = mine[--n];
			} else {
				break;
			}
			if (!stamp_ok(shmpool_heap_ptr(h, off, 8), off, &size) ||
			    !shmpool_heap_ptr(h, off, size)) {
				rc = 23;
				goto out;
			}
			if (shmpool_free(h, off)) {
				rc = 24;
				goto out;
			}
			break;
		}
	}
out:
	while (n)
		if (shmpool_free(h, mine[--n]) && !rc)
			rc = 25;
	if (p) {
		shmpool_heap_close(h);
		shmpool_close(p);
	}
	return rc;
}

TEST_F_TIMEOUT(alloc, processes_share_and_pass_blocks, 120)
{
	struct worker w[MAX_WORKERS];
	struct task t[MAX_WORKERS];
	struct shmpool_heap_stats st;
	struct shmpool_obj obj;
	struct ctl *ctl;
	uint64_t off;
	size_t size;
	int i;

	ASSERT_EQ(1, shmpool_obj_create(self->h, "ctl", sizeof(*ctl), 64, &obj));
	ctl = shmpool_heap_ptr(self->h, obj.off, sizeof(*ctl));
	for (i = 0; i < MAX_WORKERS; i++) {
		w[i] = (struct worker){ self->name, variant->backend, self->h, i,
					(uint64_t)(1000000 * scale()),
					(uint64_t)(3500 * scale()) };
		ASSERT_EQ(0, task_start(&t[i], mp_worker, &w[i]));
	}
	for (i = 0; i < MAX_WORKERS; i++)
		EXPECT_EQ(0, task_join(&t[i])) TH_LOG("worker %d", i);
	EXPECT_HEAP_OK(self->h, SHMPOOL_CHECK_QUIESCENT);
	for (i = 0; i < MAILBOX; i++) {
		off = atomic_exchange(&ctl->mailbox[i], 0);
		if (!off)
			continue;
		EXPECT_TRUE(stamp_ok(shmpool_heap_ptr(self->h, off, 8), off, &size));
		EXPECT_EQ(0, shmpool_free(self->h, off));
	}
	EXPECT_LT(0U, atomic_load(&ctl->passed));
	EXPECT_EQ(0, shmpool_obj_remove(self->h, "ctl"));
	/* the workers' caches went back when they closed (or exited) */
	EXPECT_EQ(0, shmpool_heap_flush(self->h));
	ASSERT_EQ(0, shmpool_heap_stats(self->h, &st));
	EXPECT_EQ(0U, st.alloc_blocks);
	EXPECT_EQ(0U, st.objects);
	for (i = 0; i < SHMPOOL_HEAP_NR_CLASSES; i++) {
		EXPECT_EQ(0U, st.classes[i].used) TH_LOG("class %d", i);
		EXPECT_EQ(0U, st.classes[i].cached) TH_LOG("class %d", i);
	}
	EXPECT_HEAP_OK(self->h, SHMPOOL_CHECK_QUIESCENT);
	TH_LOG("%llu blocks passed between workers", (unsigned long long)atomic_load(&ctl->passed));
}

#ifndef SHMPOOL_TEST_THREADS
/* Each process allocates under its own attachment id, an inherited handle too. */
TEST_F(alloc, owner_is_the_allocating_process)
{
	struct shmpool_obj obj;
	_Atomic uint64_t *box;
	int mine, status;
	uint64_t off;
	pid_t pid;

	ASSERT_EQ(1, shmpool_obj_create(self->h, "box", 16, 0, &obj));
	box = shmpool_heap_ptr(self->h, obj.off, 16);
	mine = shmpool_heap_attach_id(self->h);
	ASSERT_LT(0, mine);
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		/* the inherited handle re-attaches under a new id */
		if (shmpool_alloc(self->h, 100, &off))
			_exit(1);
		atomic_store(&box[0], off);
		atomic_store(&box[1], (uint64_t)shmpool_heap_attach_id(self->h));
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_EQ(0, status);
	off = atomic_load(&box[0]);
	EXPECT_NE((uint64_t)mine, atomic_load(&box[1]));
	EXPECT_EQ((int)atomic_load(&box[1]), shmpool_alloc_owner(self->h, off));
	EXPECT_EQ(mine, shmpool_heap_attach_id(self->h));
	EXPECT_EQ(0, shmpool_free(self->h, off));
	EXPECT_EQ(-EINVAL, shmpool_alloc_owner(self->h, off));
}
#endif

/* ---- thread caches ---------------------------------------------------------------- */

/* Class @c's cached and used objects, as shmpool_heap_stats() counts them. */
static void class_counts(struct __test_metadata *_metadata, struct shmpool_heap *h,
			 int c, uint64_t *cached, uint64_t *used)
{
	struct shmpool_heap_stats st;

	ASSERT_EQ(0, shmpool_heap_stats(h, &st));
	*cached = st.classes[c].cached;
	*used = st.classes[c].used;
}

/* Freed small objects wait in the thread's cache: counted, checked, flushed. */
TEST_F(alloc, freed_objects_are_cached_then_flushed)
{
	struct shmpool_heap_stats st;
	uint64_t off[10], cached, used;
	int i;

	for (i = 0; i < 10; i++)
		ASSERT_EQ(0, shmpool_alloc(self->h, 64, &off[i]));
	class_counts(_metadata, self->h, 3, &cached, &used);
	EXPECT_EQ(10U, used);
	for (i = 0; i < 10; i++)
		ASSERT_EQ(0, shmpool_free(self->h, off[i]));
	class_counts(_metadata, self->h, 3, &cached, &used);
	EXPECT_EQ(0U, used);
	EXPECT_LE(10U, cached);
	ASSERT_EQ(0, shmpool_heap_stats(self->h, &st));
	EXPECT_EQ(0U, st.alloc_blocks);
	EXPECT_HEAP_OK(self->h, SHMPOOL_CHECK_QUIESCENT);
	/* a cached object is not allocated: neither sized nor freeable */
	EXPECT_EQ(-EINVAL, shmpool_alloc_size(self->h, off[3]));
	EXPECT_EQ(-EINVAL, shmpool_free(self->h, off[3]));
	EXPECT_EQ(0, shmpool_heap_flush(self->h));
	class_counts(_metadata, self->h, 3, &cached, &used);
	EXPECT_EQ(0U, cached);
	EXPECT_EQ(0U, used);
	EXPECT_HEAP_OK(self->h, SHMPOOL_CHECK_QUIESCENT);
	EXPECT_EQ(-EINVAL, shmpool_heap_flush(NULL));
}

/* The cache hands back what this thread freed before taking from the list. */
TEST_F(alloc, cache_is_reused_first)
{
	uint64_t a, b;

	ASSERT_EQ(0, shmpool_alloc(self->h, 100, &a));
	ASSERT_EQ(0, shmpool_free(self->h, a));
	ASSERT_EQ(0, shmpool_alloc(self->h, 100, &b));
	EXPECT_EQ(a, b);
	EXPECT_EQ(0, shmpool_free(self->h, b));
}

static void *cache_thread(void *arg)
{
	struct shmpool_heap *h = arg;
	uint64_t off[20];
	intptr_t bad = 0;
	int i;

	for (i = 0; i < 20; i++)
		bad |= shmpool_alloc(h, 200, &off[i]);
	for (i = 0; i < 20; i++)
		bad |= shmpool_free(h, off[i]);
	return (void *)bad;
}

/* A thread's cache goes back to the shared lists when the thread exits. */
TEST_F(alloc, cache_returns_at_thread_exit)
{
	uint64_t cached, used;
	pthread_t t;
	void *bad;

	ASSERT_EQ(0, pthread_create(&t, NULL, cache_thread, self->h));
	ASSERT_EQ(0, pthread_join(t, &bad));
	EXPECT_EQ(NULL, bad);
	class_counts(_metadata, self->h, 11, &cached, &used);	/* 224 < 200 <= 256 */
	EXPECT_EQ(0U, cached);
	EXPECT_EQ(0U, used);
	EXPECT_HEAP_OK(self->h, SHMPOOL_CHECK_QUIESCENT);
}

/*
 * Lanes (lib/slab.c): a thread's cache takes from its own lane's list, so
 * two threads (or processes) allocating at once get objects of different
 * slabs and do not write each other's slot lines; with no room for a slab
 * of its own a lane takes from the others; and a slab whose free objects
 * lie on several lanes is still given back once empty.
 */
struct lane_job {
	struct shmpool_heap *h;
	size_t size;
	int nalloc;		/* allocate this many into @off */
	int nfree;		/* then free @off[0 .. nfree) */
	uint64_t off[8];
	int ret;
};

static void *lane_thread(void *arg)
{
	struct lane_job *j = arg;
	int i;

	for (i = 0; i < j->nalloc && !j->ret; i++)
		j->ret = shmpool_alloc(j->h, j->size, &j->off[i]);
	for (i = 0; i < j->nfree && !j->ret; i++)
		j->ret = shmpool_free(j->h, j->off[i]);
	return NULL;	/* its cache goes back to its lane as it exits */
}

static void run_lane_job(struct __test_metadata *_metadata, struct lane_job *j)
{
	pthread_t t;

	ASSERT_EQ(0, pthread_create(&t, NULL, lane_thread, j));
	ASSERT_EQ(0, pthread_join(t, NULL));
	ASSERT_EQ(0, j->ret);
}

TEST_F(alloc, threads_allocate_from_their_own_slabs)
{
	struct lane_job a = { .h = self->h, .size = 100, .nalloc = 8 };
	struct lane_job b = a;
	int i, k, shared = 0;

	run_lane_job(_metadata, &a);
	run_lane_job(_metadata, &b);
	for (i = 0; i < 8; i++)
		for (k = 0; k < 8; k++)
			if (a.off[i] >> 14 == b.off[k] >> 14)
				shared++;
	EXPECT_EQ(0, shared) TH_LOG("%d pairs of objects share a slab", shared);
	for (i = 0; i < 8; i++) {
		EXPECT_EQ(0, shmpool_free(self->h, a.off[i]));
		EXPECT_EQ(0, shmpool_free(self->h, b.off[i]));
	}
	EXPECT_EQ(0, shmpool_heap_flush(self->h));
	EXPECT_HEAP_OK(self->h, SHMPOOL_CHECK_QUIESCENT);
}

TEST_F(alloc, lane_without_room_takes_from_another)
{
	struct lane_job a = { .size = 16, .nalloc = 2, .nfree = 1 };
	struct lane_job b = { .size = 16, .nalloc = 1 };
	struct shmpool_heap_stats st;
	struct shmpool_heap *h2;
	struct shmpool *p2;
	uint64_t off, big[64];
	size_t size;
	int n = 0;

	ASSERT_EQ(0, shmpool_create_anon(512 << 10, variant->backend, &p2));
	ASSERT_EQ(0, shmpool_heap_open(p2, 0, &h2));
	a.h = b.h = h2;
	/* a's lane: a slab with one object held (so it stays) and one listed */
	run_lane_job(_metadata, &a);
	/* the general heap full: no room for another slab */
	for (size = 256 << 10; size > SHMPOOL_HEAP_SMALL_MAX && n < 64; size /= 2)
		while (n < 64 && !shmpool_alloc(h2, size, &off))
			big[n++] = off;
	ASSERT_EQ(0, shmpool_heap_stats(h2, &st));
	ASSERT_GT(16384U, st.largest_free);
	/* b's lane is empty and cannot grow: it gets what a's lane lists */
	run_lane_job(_metadata, &b);
	EXPECT_EQ(a.off[1] >> 14, b.off[0] >> 14);
	EXPECT_NE(a.off[1], b.off[0]);
	EXPECT_EQ(0, shmpool_free(h2, b.off[0]));
	EXPECT_EQ(0, shmpool_free(h2, a.off[1]));
	while (n)
		EXPECT_EQ(0, shmpool_free(h2, big[--n]));
	EXPECT_HEAP_OK(h2, SHMPOOL_CHECK_QUIESCENT);
	shmpool_heap_close(h2);
	shmpool_close(p2);
}

TEST_F(alloc, slab_freed_on_several_lanes_is_given_back)
{
	struct lane_job a = { .h = self->h, .size = 16, .nalloc = 2 };
	struct lane_job b = { .h = self->h };
	struct shmpool_heap_stats st;

	run_lane_job(_metadata, &a);
	ASSERT_EQ(a.off[0] >> 14, a.off[1] >> 14);
	/* one object freed into b's lane, the other into ours */
	b.off[0] = a.off[0];
	b.nfree = 1;
	run_lane_job(_metadata, &b);
	EXPECT_EQ(0, shmpool_free(self->h, a.off[1]));
	EXPECT_EQ(0, shmpool_heap_flush(self->h));
	EXPECT_HEAP_OK(self->h, SHMPOOL_CHECK_QUIESCENT);
	/* stats give the empty slabs back first */
	ASSERT_EQ(0, shmpool_heap_stats(self->h, &st));
	EXPECT_EQ(0U, st.classes[0].slabs);
	EXPECT_EQ(0U, st.slabs);
	EXPECT_HEAP_OK(self->h, SHMPOOL_CHECK_QUIESCENT);
}

/* Closing a handle empties every cache made for it. */
TEST_F(alloc, cache_returns_at_close)
{
	struct shmpool_heap *h2;
	uint64_t off, cached, used;

	ASSERT_EQ(0, shmpool_heap_open(self->p, 0, &h2));
	ASSERT_EQ(0, shmpool_alloc(h2, 16, &off));
	ASSERT_EQ(0, shmpool_free(h2, off));
	class_counts(_metadata, self->h, 0, &cached, &used);
	EXPECT_LE(1U, cached);
	EXPECT_EQ(0, shmpool_heap_close(h2));
	class_counts(_metadata, self->h, 0, &cached, &used);
	EXPECT_EQ(0U, cached);
	EXPECT_HEAP_OK(self->h, SHMPOOL_CHECK_QUIESCENT);
	/* a new handle, maybe at the same address, starts with a new cache */
	ASSERT_EQ(0, shmpool_heap_open(self->p, 0, &h2));
	ASSERT_EQ(0, shmpool_alloc(h2, 16, &off));
	EXPECT_EQ(0, shmpool_free(h2, off));
	EXPECT_EQ(0, shmpool_heap_close(h2));
	class_counts(_metadata, self->h, 0, &cached, &used);
	EXPECT_EQ(0U, cached);
}

/* A thread that switches between two heaps keeps a cache for each. */
TEST_F(alloc, two_heaps_alternate)
{
	struct shmpool_heap *h2;
	struct shmpool *p2;
	uint64_t a, b, cached, used;
	int i;

	ASSERT_EQ(0, shmpool_create_anon(1 << 20, variant->backend, &p2));
	ASSERT_EQ(0, shmpool_heap_open(p2, 0, &h2));
	for (i = 0; i < 1000; i++) {
		ASSERT_EQ(0, shmpool_alloc(self->h, 64, &a));
		ASSERT_EQ(0, shmpool_alloc(h2, 64, &b));
		ASSERT_EQ(0, shmpool_free(self->h, a));
		ASSERT_EQ(0, shmpool_free(h2, b));
	}
	class_counts(_metadata, self->h, 3, &cached, &used);
	EXPECT_LE(1U, cached);
	EXPECT_EQ(0U, used);
	class_counts(_metadata, h2, 3, &cached, &used);
	EXPECT_LE(1U, cached);
	EXPECT_EQ(0U, used);
	EXPECT_EQ(0, shmpool_heap_flush(h2));
	class_counts(_metadata, h2, 3, &cached, &used);
	EXPECT_EQ(0U, cached);
	class_counts(_metadata, self->h, 3, &cached, &used);
	EXPECT_LE(1U, cached);	/* flushing one heap leaves the other's cache */
	EXPECT_HEAP_OK(self->h, SHMPOOL_CHECK_QUIESCENT);
	EXPECT_HEAP_OK(h2, SHMPOOL_CHECK_QUIESCENT);
	shmpool_heap_close(h2);
	shmpool_close(p2);
	/* the closed heap's cache is gone; this one's still works */
	ASSERT_EQ(0, shmpool_alloc(self->h, 64, &a));
	EXPECT_EQ(0, shmpool_free(self->h, a));
}

/* SHMPOOL_HEAP_NOCACHE: frees go straight back to the shared list. */
TEST_F(alloc, nocache_handle_caches_nothing)
{
	struct shmpool_heap *h2;
	uint64_t off[4], cached, used;
	int i;

	ASSERT_EQ(0, shmpool_heap_open(self->p, SHMPOOL_HEAP_NOCACHE, &h2));
	for (i = 0; i < 4; i++)
		ASSERT_EQ(0, shmpool_alloc(h2, 48, &off[i]));
	for (i = 0; i < 4; i++)
		ASSERT_EQ(0, shmpool_free(h2, off[i]));
	class_counts(_metadata, self->h, 2, &cached, &used);
	EXPECT_EQ(0U, cached);
	EXPECT_EQ(0U, used);
	EXPECT_EQ(-EINVAL, shmpool_free(h2, off[0]));
	EXPECT_HEAP_OK(self->h, SHMPOOL_CHECK_QUIESCENT);
	shmpool_heap_close(h2);
}

/* In a small pool a thread caches little: pool/1024 bytes per class, so no 2 KiB objects. */
TEST_F(alloc, small_pool_caps_the_cache)
{
	struct shmpool_heap *h2;
	struct shmpool *p2;
	uint64_t off, cached, used;

	ASSERT_EQ(0, shmpool_create_anon(256 << 10, variant->backend, &p2));
	ASSERT_EQ(0, shmpool_heap_open(p2, 0, &h2));
	ASSERT_EQ(0, shmpool_alloc(h2, 2048, &off));
	ASSERT_EQ(0, shmpool_free(h2, off));
	class_counts(_metadata, h2, SHMPOOL_HEAP_NR_CLASSES - 1, &cached, &used);
	EXPECT_EQ(0U, cached);
	ASSERT_EQ(0, shmpool_alloc(h2, 16, &off));
	ASSERT_EQ(0, shmpool_free(h2, off));
	class_counts(_metadata, h2, 0, &cached, &used);
	EXPECT_LE(1U, cached);
	EXPECT_HEAP_OK(h2, SHMPOOL_CHECK_QUIESCENT);
	shmpool_heap_close(h2);
	shmpool_close(p2);
}

#ifndef SHMPOOL_TEST_THREADS
/* exit() without closing the heap still returns the exiting thread's cache. */
TEST_F(alloc, cache_returns_at_exit)
{
	uint64_t off[8], cached, used;
	int status, i;
	pid_t pid;

	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		for (i = 0; i < 8; i++)
			if (shmpool_alloc(self->h, 500, &off[i]))
				_exit(1);
		for (i = 0; i < 8; i++)
			if (shmpool_free(self->h, off[i]))
				_exit(2);
		exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_EQ(0, status);
	class_counts(_metadata, self->h, 15, &cached, &used);	/* 448 < 500 <= 512 */
	EXPECT_EQ(0U, cached);
	EXPECT_EQ(0U, used);
	EXPECT_HEAP_OK(self->h, SHMPOOL_CHECK_QUIESCENT);
}

/* A fork()ed child does not hand out what the parent's cache holds. */
TEST_F(alloc, fork_child_leaves_parent_cache_alone)
{
	struct shmpool_obj obj;
	_Atomic uint64_t *box;
	uint64_t x, off, i;
	int status;
	pid_t pid;

	ASSERT_EQ(1, shmpool_obj_create(self->h, "box", 8, 0, &obj));
	box = shmpool_heap_ptr(self->h, obj.off, 8);
	ASSERT_EQ(0, shmpool_alloc(self->h, 120, &x));
	ASSERT_EQ(0, shmpool_free(self->h, x));	/* cached here */
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		for (i = 0; i < 200; i++) {
			if (shmpool_alloc(self->h, 120, &off))
				_exit(1);
			if (off == x)
				atomic_store(box, 1);
		}
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_EQ(0, status);
	EXPECT_EQ(0U, atomic_load(box));
	ASSERT_EQ(0, shmpool_alloc(self->h, 120, &off));
	EXPECT_EQ(x, off);
	EXPECT_EQ(0, shmpool_free(self->h, off));
	EXPECT_HEAP_OK(self->h, 0);
}
#endif

/* ---- a process dies holding the heap lock ----------------------------------------- */

#ifndef SHMPOOL_TEST_THREADS
/* Allocate and free general blocks until killed: mostly under the heap lock. */
struct churn {
	struct shmpool_heap *h;
	uint64_t seed;
};

static void heap_churn(void *arg, _Atomic uint64_t *progress)
{
	struct shmpool_heap *h = ((struct churn *)arg)->h;
	uint64_t off[4] = { 0 }, s = ((struct churn *)arg)->seed;	/* leaves < 128 KiB */
	unsigned int k;

	for (;;) {
		k = (unsigned int)(rnd(&s) % 4);
		if (off[k] && shmpool_free(h, off[k]))
			_exit(1);
		off[k] = 0;
		if (shmpool_alloc(h, 9000 + rnd(&s) % 20000, &off[k]) == -EUCLEAN)
			_exit(2);
		atomic_fetch_add(progress, 1);
	}
}

/*
 * Processes killed at random points of allocating and freeing: whoever
 * locks the heap next takes the lock over and repairs the heap; nobody
 * waits for ever and the heap stays consistent.
 */
TEST_F_TIMEOUT(alloc, killed_lock_holders_are_recovered_from, 120)
{
	struct shmpool_heap_stats st;
	struct churn ch = { self->h, 0 };
	uint64_t off, s = 99;
	int round;

	for (round = 0; round < 30; round++) {
		ch.seed = (uint64_t)round + 1;
		ASSERT_EQ(0, kill_midway(heap_churn, &ch, 100,
					 2000 + (unsigned int)(rnd(&s) % 20000)));
		ASSERT_EQ(0, shmpool_alloc(self->h, 20000, &off));
		ASSERT_EQ(0, shmpool_free(self->h, off));
		EXPECT_HEAP_OK(self->h, 0);
	}
	ASSERT_EQ(0, shmpool_heap_stats(self->h, &st));
	TH_LOG("%u of 30 kills left the heap lock held and were repaired", st.repairs);
	EXPECT_LT(0U, st.repairs);
	EXPECT_HEAP_OK(self->h, SHMPOOL_CHECK_QUIESCENT);
}
#endif

/* ---- a process dies: what it cached and held comes back ---------------------------- */

#ifndef SHMPOOL_TEST_THREADS
/* A page shared with the children of this test. */
static _Atomic uint64_t *shared_box(struct __test_metadata *_metadata)
{
	_Atomic uint64_t *box = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
				     MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	ASSERT_NE(MAP_FAILED, box);
	return box;
}

/*
 * A child allocates a general block (box[0]) and a small object (box[1]),
 * frees 8 small objects into its thread cache, notes its owner id (box[2])
 * and dies without a word (_exit(): no exit handlers empty its caches).
 */
static void child_holds_and_dies(struct __test_metadata *_metadata,
				 struct shmpool_heap *h, _Atomic uint64_t *box)
{
	uint64_t off[8];
	int status, i;
	pid_t pid;

	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		if (shmpool_alloc(h, 30000, &off[0]))
			_exit(1);
		atomic_store(&box[0], off[0]);
		if (shmpool_alloc(h, 100, &off[0]))
			_exit(2);
		atomic_store(&box[1], off[0]);
		for (i = 0; i < 8; i++)
			if (shmpool_alloc(h, 500, &off[i]))
				_exit(3);
		for (i = 0; i < 8; i++)
			if (shmpool_free(h, off[i]))
				_exit(4);
		atomic_store(&box[2], (uint64_t)shmpool_heap_attach_id(h));
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_EQ(0, status);
}

/*
 * A dead process's thread cache comes back when the next process opens the
 * heap (on memfd nobody else hears of the death), and what it held stays,
 * as orphans (owner 0), until an explicit reclaim frees them.
 */
TEST_F(alloc, dead_process_cache_returns_at_open)
{
	_Atomic uint64_t *box = shared_box(_metadata);
	struct shmpool_heap_stats st;
	struct shmpool_heap *h2;

	child_holds_and_dies(_metadata, self->h, box);
	ASSERT_EQ(0, shmpool_heap_open(self->p, 0, &h2));
	ASSERT_EQ(0, shmpool_heap_stats(h2, &st));
	EXPECT_EQ(0U, st.classes[15].cached);	/* 448 < 500 <= 512 */
	EXPECT_EQ(2U, st.alloc_blocks);
	EXPECT_EQ(0, shmpool_alloc_owner(h2, atomic_load(&box[0])));
	EXPECT_EQ(0, shmpool_alloc_owner(h2, atomic_load(&box[1])));
	EXPECT_HEAP_OK(h2, SHMPOOL_CHECK_QUIESCENT);
	EXPECT_EQ(2, shmpool_heap_reclaim(h2, SHMPOOL_RECLAIM_HELD));
	ASSERT_EQ(0, shmpool_heap_stats(h2, &st));
	EXPECT_EQ(0U, st.alloc_blocks);
	EXPECT_HEAP_OK(h2, SHMPOOL_CHECK_QUIESCENT);
	EXPECT_EQ(0, shmpool_heap_close(h2));
	munmap((void *)box, 4096);
}

/*
 * The owner id of a dead process goes to the next handle that opens, which
 * does not inherit what the dead one held: those blocks are orphans, and
 * closing the new handle leaves them alone.
 */
TEST_F(alloc, dead_slot_reused_without_its_blocks)
{
	_Atomic uint64_t *box = shared_box(_metadata);
	struct shmpool_heap *h2;
	int id2;

	child_holds_and_dies(_metadata, self->h, box);
	ASSERT_EQ(0, shmpool_heap_open(self->p, 0, &h2));
	id2 = shmpool_heap_attach_id(h2);
	EXPECT_EQ((int)atomic_load(&box[2]), id2) TH_LOG("the dead one's id is not reused");
	EXPECT_NE(id2, shmpool_alloc_owner(h2, atomic_load(&box[0])));
	EXPECT_NE(id2, shmpool_alloc_owner(h2, atomic_load(&box[1])));
	EXPECT_EQ(0, shmpool_heap_close(h2));
	EXPECT_LT(0, shmpool_alloc_size(self->h, atomic_load(&box[0])));
	EXPECT_LT(0, shmpool_alloc_size(self->h, atomic_load(&box[1])));
	EXPECT_EQ(2, shmpool_heap_reclaim(self->h, SHMPOOL_RECLAIM_HELD));
	EXPECT_HEAP_OK(self->h, SHMPOOL_CHECK_QUIESCENT);
	munmap((void *)box, 4096);
}

/* A block handed over and adopted stays when its allocator dies. */
TEST_F(alloc, adopted_blocks_outlive_their_allocator)
{
	_Atomic uint64_t *box = shared_box(_metadata);
	struct shmpool_heap_stats st;
	uint64_t x, y;

	child_holds_and_dies(_metadata, self->h, box);
	x = atomic_load(&box[0]);
	y = atomic_load(&box[1]);
	EXPECT_EQ(0, shmpool_alloc_adopt(self->h, x));
	EXPECT_EQ(0, shmpool_alloc_adopt(self->h, y));
	/* its cached objects come back (if nobody noticed its death yet) */
	EXPECT_LE(0, shmpool_heap_reclaim(self->h, SHMPOOL_RECLAIM_HELD));
	EXPECT_EQ(shmpool_heap_attach_id(self->h), shmpool_alloc_owner(self->h, x));
	EXPECT_EQ(shmpool_heap_attach_id(self->h), shmpool_alloc_owner(self->h, y));
	ASSERT_EQ(0, shmpool_heap_stats(self->h, &st));
	EXPECT_EQ(0U, st.classes[15].cached);
	EXPECT_EQ(0, shmpool_free(self->h, x));
	EXPECT_EQ(0, shmpool_free(self->h, y));
	EXPECT_HEAP_OK(self->h, SHMPOOL_CHECK_QUIESCENT);
	munmap((void *)box, 4096);
}

/* Allocate and free everything: general blocks, small classes through the cache, many slabs. */
static void mixed_churn(void *arg, _Atomic uint64_t *progress)
{
	struct shmpool_heap *h = ((struct churn *)arg)->h;
	uint64_t s = ((struct churn *)arg)->seed, off[256] = { 0 };
	unsigned int k, n;

	for (;;) {
		k = (unsigned int)(rnd(&s) % 256);
		if (off[k] && shmpool_free(h, off[k]))
			_exit(1);
		off[k] = 0;
		n = rnd(&s) % 8 ? 1 + (unsigned int)(rnd(&s) % 8192) :
				  9000 + (unsigned int)(rnd(&s) % 20000);
		if (shmpool_alloc(h, n, &off[k]) == -EUCLEAN)
			_exit(2);
		/* now and then a burst of one class: new slabs, batches */
		if (rnd(&s) % 64 == 0) {
			uint64_t burst[64];
			unsigned int i, m = 16 + (unsigned int)(rnd(&s) % 48);

			n = 1 + (unsigned int)(rnd(&s) % 8192);
			for (i = 0; i < m; i++)
				if (shmpool_alloc(h, n, &burst[i]))
					break;
			while (i--)
				if (shmpool_free(h, burst[i]))
					_exit(3);
		}
		atomic_fetch_add(progress, 1);
	}
}

/*
 * Processes killed at random points of allocating and freeing general
 * blocks and small objects (holding the heap lock, refilling a class,
 * moving a batch, with full caches): after each, the explicit reclaim
 * (nobody allocates then) brings the heap back to its baseline, and the
 * quiescent check is clean.
 */
TEST_F_TIMEOUT(alloc, killed_allocators_are_reclaimed, 120)
{
	struct shmpool_heap_stats st, base;
	struct churn ch = { self->h, 0 };
	uint64_t off, left, slab_bytes, s = 7;
	long n, total = 0, stranded = 0;
	int round, c;

	ASSERT_EQ(0, shmpool_heap_stats(self->h, &base));
	for (round = 0; round < 30; round++) {
		ch.seed = (uint64_t)round + 1;
		ASSERT_EQ(0, kill_midway(mixed_churn, &ch, 200,
					 (unsigned int)(rnd(&s) % 30000)));
		n = shmpool_heap_reclaim(self->h, SHMPOOL_RECLAIM_HELD);
		ASSERT_LE(0, n);
		total += n;
		n = shmpool_heap_reclaim(self->h, SHMPOOL_RECLAIM_STRANDED);
		ASSERT_LE(0, n);
		stranded += n;
		EXPECT_HEAP_OK(self->h, SHMPOOL_CHECK_QUIESCENT);
		ASSERT_EQ(0, shmpool_heap_stats(self->h, &st));
		for (c = 0, left = 0; c < SHMPOOL_HEAP_NR_CLASSES; c++)
			left += st.classes[c].used + st.classes[c].cached;
		ASSERT_EQ(base.alloc_blocks, st.alloc_blocks) TH_LOG("round %d", round);
		ASSERT_EQ(base.nr_attach, st.nr_attach) TH_LOG("round %d", round);
		ASSERT_EQ(0U, left) TH_LOG("round %d: small objects used or cached", round);
	}
	TH_LOG("30 kills: %ld blocks and objects reclaimed, %ld stranded objects listed, %u heap lock takeovers",
	       total, stranded, st.repairs);
	/* the general heap holds nothing but the slabs made meanwhile (kept) */
	for (c = 0, slab_bytes = 0; c < SHMPOOL_HEAP_NR_CLASSES; c++)
		slab_bytes += (uint64_t)st.classes[c].slabs *
			      ((st.classes[c].size > 2048 ? 65536 : 16384) + 16);
	EXPECT_EQ(base.used_bytes + slab_bytes, st.used_bytes);
	ASSERT_EQ(0, shmpool_alloc(self->h, st.largest_free / 2, &off));
	EXPECT_EQ(0, shmpool_free(self->h, off));
}

/*
 * A process that is pid 1 of a PID namespace of its own (a pid that is
 * alive here too, and means another process): a child unshares the
 * namespace and forks it; it runs @body(@h, @box), which returns 0 once it
 * has done its part, and then lives until ns_peer_kill(). Returns the
 * child's pid, or -1 if the test was skipped (no unshare(CLONE_NEWPID)).
 */
#define BOX_NS_PID	511	/* shared_box() slot: that process's pid, as seen here */

static pid_t ns_peer_start(struct __test_metadata *_metadata, struct shmpool_heap *h,
			   _Atomic uint64_t *box,
			   int (*body)(struct shmpool_heap *h, _Atomic uint64_t *box))
{
	int status, fds[2];
	pid_t pid;
	char c;

	ASSERT_EQ(0, pipe(fds));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		pid_t gc;

		close(fds[0]);
		if (unshare(CLONE_NEWPID))
			_exit(99);
		gc = fork();
		if (gc < 0)
			_exit(98);
		if (gc == 0) {
			if (getpid() != 1 || body(h, box) || write(fds[1], "r", 1) != 1)
				_exit(1);
			for (;;)
				pause();
		}
		atomic_store(&box[BOX_NS_PID], (uint64_t)gc);
		close(fds[1]);
		_exit(waitpid(gc, &status, 0) == gc && WIFSIGNALED(status) ? 0 : 5);
	}
	close(fds[1]);
	if (read(fds[0], &c, 1) != 1) {
		ASSERT_EQ(pid, waitpid(pid, &status, 0));
		close(fds[0]);
		if (WIFEXITED(status) && WEXITSTATUS(status) == 99)
			SKIP(return -1, "unshare(CLONE_NEWPID) not permitted");
		ASSERT_EQ(0, status) TH_LOG("the namespaced peer failed");
	}
	close(fds[0]);
	return pid;
}

/* Kill ns_peer_start()'s process; its parent, @pid, must see it killed. */
static void ns_peer_kill(struct __test_metadata *_metadata, _Atomic uint64_t *box,
			 pid_t pid)
{
	int status;

	while (!atomic_load(&box[BOX_NS_PID]))
		usleep(1000);
	ASSERT_EQ(0, kill((pid_t)atomic_load(&box[BOX_NS_PID]), SIGKILL));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_EQ(0, status);
}

/* ns_peer_start()'s body: a general block (box[0]), 8 small objects cached, its id (box[2]) */
static int ns_holds_and_caches(struct shmpool_heap *h, _Atomic uint64_t *box)
{
	uint64_t off[8];
	int i;

	if (shmpool_alloc(h, 30000, &off[0]))
		return 1;
	atomic_store(&box[0], off[0]);
	for (i = 0; i < 8; i++)
		if (shmpool_alloc(h, 500, &off[i]))
			return 2;
	for (i = 0; i < 8; i++)
		if (shmpool_free(h, off[i]))
			return 3;
	atomic_store(&box[2], (uint64_t)shmpool_heap_attach_id(h));
	return 0;
}

/*
 * A live owner in another PID namespace is never taken for dead (its pid
 * means nothing here); once it is killed, what it cached and held comes
 * back. Device backend with the module's attachments.
 */
TEST_F(alloc, live_owner_in_other_pid_namespace_is_kept)
{
	_Atomic uint64_t *box;
	struct shmpool_heap_stats st, before;
	uint32_t seq;
	uint64_t x;
	pid_t pid;

	if (variant->backend != SHMPOOL_BACKEND_DEVICE ||
	    shmpool_death_seq(self->p, &seq))
		SKIP(return, "needs the module's attachments (device backend)");
	box = shared_box(_metadata);
	pid = ns_peer_start(_metadata, self->h, box, ns_holds_and_caches);
	if (pid < 0)
		return;
	x = atomic_load(&box[0]);

	/* alive: nothing of it is touched */
	ASSERT_EQ(0, shmpool_heap_stats(self->h, &before));
	EXPECT_LT(0U, before.classes[15].cached);
	EXPECT_EQ(0, shmpool_heap_reclaim(self->h, SHMPOOL_RECLAIM_HELD));
	EXPECT_EQ((int)atomic_load(&box[2]), shmpool_alloc_owner(self->h, x));
	ASSERT_EQ(0, shmpool_heap_stats(self->h, &st));
	EXPECT_EQ(before.classes[15].cached, st.classes[15].cached);
	EXPECT_EQ(1U, st.alloc_blocks);

	/* dead: all of it comes back */
	ns_peer_kill(_metadata, box, pid);
	EXPECT_EQ(1, shmpool_heap_reclaim(self->h, SHMPOOL_RECLAIM_HELD));
	ASSERT_EQ(0, shmpool_heap_stats(self->h, &st));
	EXPECT_EQ(0U, st.classes[15].cached);
	EXPECT_EQ(0U, st.alloc_blocks);
	EXPECT_HEAP_OK(self->h, SHMPOOL_CHECK_QUIESCENT);
	munmap((void *)box, 4096);
}
#endif

TEST_F(alloc, reclaim_rejects_flags)
{
	EXPECT_EQ(-EINVAL, shmpool_heap_reclaim(self->h, 1U << 2));
	EXPECT_EQ(-EINVAL, shmpool_heap_reclaim(NULL, 0));
}

TEST_F(alloc, adopt_free_block_is_einval)
{
	uint64_t off;

	ASSERT_EQ(0, shmpool_alloc(self->h, 30000, &off));
	ASSERT_EQ(0, shmpool_free(self->h, off));
	EXPECT_EQ(-EINVAL, shmpool_alloc_adopt(self->h, off));
}

TEST_F(alloc, adopt_cached_object_is_einval)
{
	uint64_t off;

	ASSERT_EQ(0, shmpool_alloc(self->h, 100, &off));
	ASSERT_EQ(0, shmpool_free(self->h, off));	/* into the cache */
	EXPECT_EQ(-EINVAL, shmpool_alloc_adopt(self->h, off));
}

TEST_F(alloc, adopt_named_object_is_einval)
{
	struct shmpool_obj obj;

	ASSERT_EQ(1, shmpool_obj_create(self->h, "n", 30000, 0, &obj));
	EXPECT_EQ(-EINVAL, shmpool_alloc_adopt(self->h, obj.off));
}

TEST_F(alloc, adopt_outside_pool_is_einval)
{
	EXPECT_EQ(-EINVAL, shmpool_alloc_adopt(self->h, POOL_BYTES));
}

/* ---- bad input: each its own test; the heap must be unchanged afterwards ---------- */

static void expect_bad_free(struct __test_metadata *_metadata,
			    struct shmpool_heap *h, uint64_t off, int err)
{
	struct shmpool_heap_stats a, b;

	ASSERT_EQ(0, shmpool_heap_stats(h, &a));
	EXPECT_EQ(err, shmpool_free(h, off)) TH_LOG("free(0x%llx)", (unsigned long long)off);
	ASSERT_EQ(0, shmpool_heap_stats(h, &b));
	EXPECT_EQ(0, memcmp(&a, &b, sizeof(a))) TH_LOG("free(0x%llx) changed the heap",
						       (unsigned long long)off);
	EXPECT_HEAP_OK(h, SHMPOOL_CHECK_QUIESCENT);
}

TEST_F(alloc, free_outside_pool)
{
	uint64_t off;

	ASSERT_EQ(0, shmpool_alloc(self->h, 1000, &off));
	expect_bad_free(_metadata, self->h, POOL_BYTES, -EINVAL);
	expect_bad_free(_metadata, self->h, POOL_BYTES + 4096, -EINVAL);
	expect_bad_free(_metadata, self->h, UINT64_MAX & ~15ULL, -EINVAL);
}

TEST_F(alloc, free_metadata)
{
	uint64_t off;

	ASSERT_EQ(0, shmpool_alloc(self->h, 1000, &off));
	expect_bad_free(_metadata, self->h, 0, -EINVAL);
	expect_bad_free(_metadata, self->h, 16, -EINVAL);
	expect_bad_free(_metadata, self->h, 8192, -EINVAL);
}

TEST_F(alloc, free_misaligned_general)
{
	uint64_t off;

	ASSERT_EQ(0, shmpool_alloc(self->h, 9000, &off));
	expect_bad_free(_metadata, self->h, off + 1, -EINVAL);
	expect_bad_free(_metadata, self->h, off + 8, -EINVAL);
	expect_bad_free(_metadata, self->h, off - 1, -EINVAL);
}

TEST_F(alloc, free_misaligned_small)
{
	uint64_t off;

	ASSERT_EQ(0, shmpool_alloc(self->h, 48, &off));
	expect_bad_free(_metadata, self->h, off + 1, -EINVAL);
	expect_bad_free(_metadata, self->h, off + 8, -EINVAL);
}

TEST_F(alloc, free_interior_general)
{
	uint64_t off;

	ASSERT_EQ(0, shmpool_alloc(self->h, 9000, &off));
	/* a fake header in the payload does not fool the bitmap */
	memcpy(shmpool_heap_ptr(self->h, off + 256, 16),
	       shmpool_heap_ptr(self->h, off - 16, 16), 16);
	expect_bad_free(_metadata, self->h, off + 272, -EINVAL);
	expect_bad_free(_metadata, self->h, off + 16, -EINVAL);
	expect_bad_free(_metadata, self->h, off - 16, -EINVAL);
}

/*
 * A peer forges a free block over a block we hold: the first block (1 MiB)
 * freed, its header and its successor's previous size rewritten to what
 * they would be had the held 9000-byte block after it been freed and
 * merged (the headers such a merge writes, taken from a real one), so
 * that its check words, list and links all hold. Only the block-start
 * bitmap still says the held block is there: an allocation that would
 * take the forged block over it is -EUCLEAN, for a held block whose start
 * falls in the last bitmap word of what would be handed out (@span 0) and
 * in a word between the ends (@span 1: the summary's bit of that word).
 */
static void forged_free_over_held(struct __test_metadata *_metadata,
				  struct shmpool_heap *h, int span)
{
	uint64_t x, l, y, want;
	unsigned char merged[16], succ[16];
	struct shmpool_heap_stats st;
	unsigned char *p;
	size_t i;

	ASSERT_EQ(0, shmpool_alloc(h, 1U << 20, &x));
	ASSERT_EQ(0, shmpool_alloc(h, 9000, &l));
	ASSERT_EQ(0, shmpool_heap_stats(h, &st));
	ASSERT_EQ(0, shmpool_alloc(h, st.largest_free, &y));
	ASSERT_EQ(l, x + (1U << 20) + 16);
	ASSERT_EQ(y, l + 9008 + 16);
	/* the headers of the two merged and of the next block, as a merge writes them */
	ASSERT_EQ(0, shmpool_free(h, x));
	ASSERT_EQ(0, shmpool_free(h, l));
	memcpy(merged, shmpool_heap_ptr(h, x - 16, 16), 16);
	memcpy(succ, shmpool_heap_ptr(h, y - 16, 16), 16);
	ASSERT_EQ(0, shmpool_alloc(h, 1U << 20, &x));
	ASSERT_EQ(0, shmpool_alloc(h, 9000, &l));
	ASSERT_EQ(x + (1U << 20) + 16, l);
	p = shmpool_heap_ptr(h, l, 9000);
	memset(p, 0x5a, 9000);
	ASSERT_EQ(0, shmpool_free(h, x));
	/* the peer's writes */
	memcpy(shmpool_heap_ptr(h, x - 16, 16), merged, 16);
	memcpy(shmpool_heap_ptr(h, y - 16, 16), succ, 16);

	want = span ? y - x - 16 : (1U << 20) + 16;	/* up to the held block's header */
	EXPECT_EQ(-EUCLEAN, shmpool_alloc(h, want, &x));
	for (i = 0; i < 9000; i++)
		if (p[i] != 0x5a)
			break;
	EXPECT_EQ(9000U, i) TH_LOG("the held block changed at byte %zu", i);
}

TEST_F(alloc, forged_free_block_over_held_end)
{
	forged_free_over_held(_metadata, self->h, 0);
}

TEST_F(alloc, forged_free_block_over_held_between)
{
	forged_free_over_held(_metadata, self->h, 1);
}

/*
 * The check word covers every bit of the header's fields: each of the 96
 * bits of a held block's size, previous size, owner and flags flipped in
 * turn makes its free -EUCLEAN and changes nothing; put back, the block
 * frees.
 */
TEST_F(alloc, header_bit_flip_is_unclean)
{
	struct shmpool_heap_stats a, b;
	uint64_t x, y, z;
	unsigned char *hdr;
	unsigned int bit;

	ASSERT_EQ(0, shmpool_alloc(self->h, 9000, &x));
	ASSERT_EQ(0, shmpool_alloc(self->h, 9000, &y));
	ASSERT_EQ(0, shmpool_alloc(self->h, 9000, &z));
	hdr = shmpool_heap_ptr(self->h, y - 16, 16);
	ASSERT_NE(NULL, hdr);
	ASSERT_EQ(0, shmpool_heap_stats(self->h, &a));
	for (bit = 0; bit < 96; bit++) {
		hdr[bit / 8] ^= (unsigned char)(1U << bit % 8);
		EXPECT_EQ(-EUCLEAN, shmpool_free(self->h, y)) TH_LOG("bit %u", bit);
		hdr[bit / 8] ^= (unsigned char)(1U << bit % 8);
		ASSERT_EQ(0, shmpool_heap_stats(self->h, &b));
		EXPECT_EQ(0, memcmp(&a, &b, sizeof(a))) TH_LOG("bit %u changed the heap", bit);
	}
	EXPECT_HEAP_OK(self->h, SHMPOOL_CHECK_QUIESCENT);
	EXPECT_EQ(0, shmpool_free(self->h, y));
	EXPECT_EQ(0, shmpool_free(self->h, x));
	EXPECT_EQ(0, shmpool_free(self->h, z));
}

/*
 * It also covers where the header lies: the second of three equal held
 * blocks has the same size, previous size, owner and flags as the third,
 * yet its header copied over the third's makes the third's free -EUCLEAN.
 */
TEST_F(alloc, header_copied_elsewhere_is_unclean)
{
	uint64_t x, y, z, w;
	unsigned char save[16];

	ASSERT_EQ(0, shmpool_alloc(self->h, 9000, &x));
	ASSERT_EQ(0, shmpool_alloc(self->h, 9000, &y));
	ASSERT_EQ(0, shmpool_alloc(self->h, 9000, &z));
	ASSERT_EQ(0, shmpool_alloc(self->h, 9000, &w));
	ASSERT_EQ(y + 9024, z);
	/* the fields agree, only the check words differ */
	ASSERT_EQ(0, memcmp(shmpool_heap_ptr(self->h, y - 16, 12),
			    shmpool_heap_ptr(self->h, z - 16, 12), 12));
	memcpy(save, shmpool_heap_ptr(self->h, z - 16, 16), 16);
	memcpy(shmpool_heap_ptr(self->h, z - 16, 16),
	       shmpool_heap_ptr(self->h, y - 16, 16), 16);
	EXPECT_EQ(-EUCLEAN, shmpool_free(self->h, z));
	/* and the freeing of its neighbours, which would merge with it */
	EXPECT_EQ(-EUCLEAN, shmpool_free(self->h, w));
	memcpy(shmpool_heap_ptr(self->h, z - 16, 16), save, 16);
	EXPECT_HEAP_OK(self->h, SHMPOOL_CHECK_QUIESCENT);
	EXPECT_EQ(0, shmpool_free(self->h, z));
	EXPECT_EQ(0, shmpool_free(self->h, w));
	EXPECT_EQ(0, shmpool_free(self->h, y));
	EXPECT_EQ(0, shmpool_free(self->h, x));
}

TEST_F(alloc, free_interior_small)
{
	uint64_t off;

	ASSERT_EQ(0, shmpool_alloc(self->h, 96, &off));
	expect_bad_free(_metadata, self->h, off + 16, -EINVAL);
	expect_bad_free(_metadata, self->h, off + 48, -EINVAL);
}

/* The slab's own header and its chunk start are not objects. */
TEST_F(alloc, free_slab_metadata)
{
	uint64_t off;

	ASSERT_EQ(0, shmpool_alloc(self->h, 64, &off));
	expect_bad_free(_metadata, self->h, off & ~16383ULL, -EINVAL);
	expect_bad_free(_metadata, self->h, (off & ~16383ULL) + 16, -EINVAL);
}

TEST_F(alloc, double_free_general)
{
	uint64_t off, keep;

	ASSERT_EQ(0, shmpool_alloc(self->h, 9000, &off));
	ASSERT_EQ(0, shmpool_alloc(self->h, 9000, &keep));
	ASSERT_EQ(0, shmpool_free(self->h, off));
	expect_bad_free(_metadata, self->h, off, -EINVAL);
}

TEST_F(alloc, double_free_small)
{
	uint64_t off, keep;

	ASSERT_EQ(0, shmpool_alloc(self->h, 24, &off));
	ASSERT_EQ(0, shmpool_alloc(self->h, 24, &keep));
	ASSERT_EQ(0, shmpool_free(self->h, off));
	expect_bad_free(_metadata, self->h, off, -EINVAL);
	/* the list holds it once: two allocations get two objects */
	ASSERT_EQ(0, shmpool_alloc(self->h, 24, &off));
	ASSERT_EQ(0, shmpool_alloc(self->h, 24, &keep));
	EXPECT_NE(off, keep);
}

/* A small object never allocated (free in its slab) is not freeable. */
TEST_F(alloc, free_never_allocated_small)
{
	uint64_t off;

	ASSERT_EQ(0, shmpool_alloc(self->h, 32, &off));
	expect_bad_free(_metadata, self->h, off + 32, -EINVAL);
}

/* Named objects are freed through the directory only. */
TEST_F(alloc, free_named_object_is_ebusy)
{
	struct shmpool_obj obj;

	ASSERT_EQ(1, shmpool_obj_create(self->h, "cfg", 100, 0, &obj));
	expect_bad_free(_metadata, self->h, obj.off, -EBUSY);
	EXPECT_EQ(0, shmpool_obj_find(self->h, "cfg", &obj));
}

/* Concurrent double frees of one object: exactly one succeeds. */
static int racing_free(void *arg)
{
	struct worker *w = arg;
	struct shmpool_heap *h = w->h;
	struct shmpool *p = NULL;
	int ret;

#ifndef SHMPOOL_TEST_THREADS
	if (shmpool_open(w->name, w->backend, &p) || shmpool_heap_open(p, 0, &h))
		return 20;
#endif
	ret = shmpool_free(h, w->ops);
	if (p) {
		shmpool_heap_close(h);
		shmpool_close(p);
	}
	return ret == 0 ? 0 : ret == -EINVAL ? 1 : 2;
}

TEST_F(alloc, double_free_race)
{
	struct worker w[MAX_WORKERS];
	struct task t[MAX_WORKERS];
	uint64_t off;
	int i, round, ok, rc;

	for (round = 0; round < 20; round++) {
		ASSERT_EQ(0, shmpool_alloc(self->h, round % 2 ? 40 : 9000, &off));
		ok = 0;
		for (i = 0; i < MAX_WORKERS; i++) {
			w[i] = (struct worker){ self->name, variant->backend, self->h, i, off, 0 };
			ASSERT_EQ(0, task_start(&t[i], racing_free, &w[i]));
		}
		for (i = 0; i < MAX_WORKERS; i++) {
			rc = task_join(&t[i]);
			EXPECT_GE(1, rc);
			ok += rc == 0;
		}
		EXPECT_EQ(1, ok);
		EXPECT_HEAP_OK(self->h, SHMPOOL_CHECK_QUIESCENT);
	}
}

/* ---- corruption reports ------------------------------------------------------------ */

/* An overrun into the next block's header is reported, with its offset, and not followed. */
TEST_F(alloc, overrun_is_reported)
{
	uint64_t a, b;
	char msg[MSG_LEN], want[64];

	ASSERT_EQ(0, shmpool_alloc(self->h, 9000, &a));
	ASSERT_EQ(0, shmpool_alloc(self->h, 9000, &b));
	ASSERT_EQ(a + 9008 + 16, b);
	memset(shmpool_heap_ptr(self->h, a, 9020), 0x77, 9020);	/* 12 bytes too many */
	EXPECT_EQ(-EUCLEAN, shmpool_heap_check(self->h, 0, msg, sizeof(msg)));
	snprintf(want, sizeof(want), "0x%llx", (unsigned long long)(b - 16));
	EXPECT_NE(NULL, strstr(msg, want)) TH_LOG("message: %s", msg);
	EXPECT_EQ(-EUCLEAN, shmpool_free(self->h, b));
	EXPECT_EQ(-EUCLEAN, shmpool_free(self->h, a));	/* its neighbour is damaged */
}

/* The block-start bitmap's offset: offset 32 of the layout (lib/heap.h asserts it). */
#define HEAP_BITMAP_OFF_OFF	32

/*
 * The bitmap's summary (a bit per bitmap word, right after the bitmap)
 * must agree with the bitmap: a bit set over a word of no block start, and
 * a bit cleared over a held block's start, are each reported.
 */
TEST_F(alloc, bitmap_summary_lie_is_reported)
{
	uint64_t off, g, bitmap_off, *sum, bit;
	char msg[MSG_LEN];
	int lie;

	ASSERT_EQ(0, shmpool_alloc(self->h, 9000, &off));
	EXPECT_HEAP_OK(self->h, SHMPOOL_CHECK_QUIESCENT);
	memcpy(&bitmap_off, shmpool_heap_ptr(self->h, HEAP_BITMAP_OFF_OFF, 8), 8);
	sum = shmpool_heap_ptr(self->h, bitmap_off + (POOL_BYTES / 16 + 63) / 64 * 8, 8);
	ASSERT_NE(NULL, sum);
	for (lie = 0; lie < 2; lie++) {
		/* the held block's header's word; the last word (the sentinel's, never set) */
		g = lie ? off / 16 - 1 : POOL_BYTES / 16 - 1;
		bit = 1ULL << (g / 64 % 64);
		EXPECT_EQ(lie ? bit : 0, sum[g / 4096] & bit);
		sum[g / 4096] ^= bit;
		EXPECT_EQ(-EUCLEAN, shmpool_heap_check(self->h, 0, msg, sizeof(msg)));
		EXPECT_NE(NULL, strstr(msg, "bitmap summary")) TH_LOG("message: %s", msg);
		sum[g / 4096] ^= bit;
		EXPECT_HEAP_OK(self->h, SHMPOOL_CHECK_QUIESCENT);
	}
}

/* A damaged slab header is reported with the slab's offset. */
TEST_F(alloc, damaged_slab_is_reported)
{
	uint64_t off, slab;
	char msg[MSG_LEN], want[64];
	uint32_t *magic;

	ASSERT_EQ(0, shmpool_alloc(self->h, 16, &off));
	EXPECT_HEAP_OK(self->h, SHMPOOL_CHECK_QUIESCENT);
	slab = off & ~16383ULL;
	magic = shmpool_heap_ptr(self->h, slab, 4);
	*magic ^= 1;
	EXPECT_EQ(-EUCLEAN, shmpool_heap_check(self->h, 0, msg, sizeof(msg)));
	snprintf(want, sizeof(want), "slab at 0x%llx", (unsigned long long)slab);
	EXPECT_NE(NULL, strstr(msg, want)) TH_LOG("message: %s", msg);
	*magic ^= 1;
	EXPECT_HEAP_OK(self->h, SHMPOOL_CHECK_QUIESCENT);
}

#ifndef SHMPOOL_TEST_THREADS
/* The heap's mutex: offset 56 of the layout (lib/heap.h asserts it). */
#define HEAP_MUTEX_OFF	56

/* Lock the heap's mutex and die holding it. */
static void die_holding_heap_lock(struct __test_metadata *_metadata,
				  struct shmpool_heap *h)
{
	struct shmpool_mutex *m = shmpool_heap_ptr(h, HEAP_MUTEX_OFF, sizeof(*m));
	int status;
	pid_t pid;

	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0)
		_exit(shmpool_mutex_lock(h->pool, m) ? 1 : 0);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_EQ(0, status);
}

/* A dead holder and an intact heap: the next call repairs and goes on. */
TEST_F(alloc, dead_holder_repaired)
{
	struct shmpool_heap_stats st;
	uint64_t a, b;

	ASSERT_EQ(0, shmpool_alloc(self->h, 30000, &a));
	die_holding_heap_lock(_metadata, self->h);
	ASSERT_EQ(0, shmpool_alloc(self->h, 30000, &b));
	EXPECT_NE(a, b);
	ASSERT_EQ(0, shmpool_heap_stats(self->h, &st));
	EXPECT_EQ(1U, st.repairs);
	EXPECT_EQ(2U, st.alloc_blocks);
	EXPECT_EQ(0, shmpool_free(self->h, a));
	EXPECT_EQ(0, shmpool_free(self->h, b));
	EXPECT_HEAP_OK(self->h, SHMPOOL_CHECK_QUIESCENT);
}

/* Lock the heap's mutex in a child that lives on holding it, in *@pid. */
static void live_heap_lock_holder(struct __test_metadata *_metadata,
				  struct shmpool_heap *h, pid_t *pid)
{
	struct shmpool_mutex *m = shmpool_heap_ptr(h, HEAP_MUTEX_OFF, sizeof(*m));
	int fd[2];
	char c;

	ASSERT_EQ(0, pipe(fd));
	*pid = fork();
	ASSERT_LE(0, *pid);
	if (*pid == 0) {
		if (shmpool_mutex_lock(h->pool, m) || write(fd[1], "l", 1) != 1)
			_exit(1);
		pause();
		_exit(0);
	}
	close(fd[1]);
	ASSERT_EQ(1, read(fd[0], &c, 1));
	close(fd[0]);
}

static long ms_since(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (t1.tv_sec - t0->tv_sec) * 1000 + (t1.tv_nsec - t0->tv_nsec) / 1000000;
}

/*
 * A live peer that holds the heap's lock does not hang us: calls that need
 * it give up at the handle's timeout with -ETIMEDOUT and change nothing
 * (the old code waited for ever), and go on once the holder is gone.
 */
TEST_F(alloc, live_lock_holder_times_calls_out)
{
	struct shmpool_heap_stats st;
	struct timespec t0;
	uint64_t a, b, small;
	long ms;
	pid_t pid;

	ASSERT_EQ(0, shmpool_alloc(self->h, 30000, &a));
	ASSERT_EQ(0, shmpool_heap_set_lock_timeout(self->h, 300));
	live_heap_lock_holder(_metadata, self->h, &pid);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	EXPECT_EQ(-ETIMEDOUT, shmpool_alloc(self->h, 30000, &b));	/* a general block */
	EXPECT_EQ(-ETIMEDOUT, shmpool_free(self->h, a));
	EXPECT_EQ(-ETIMEDOUT, shmpool_alloc(self->h, 5000, &small));	/* a class with no slab yet */
	ms = ms_since(&t0);
	EXPECT_LE(900, ms);
	EXPECT_GT(60000, ms);
	EXPECT_EQ(-ETIMEDOUT, shmpool_heap_stats(self->h, &st));
	/* 0: only if it is free now */
	ASSERT_EQ(0, shmpool_heap_set_lock_timeout(self->h, 0));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	EXPECT_EQ(-ETIMEDOUT, shmpool_alloc(self->h, 30000, &b));
	EXPECT_GT(5000, ms_since(&t0));
	/* the holder dies: taken over, and nothing was lost meanwhile */
	ASSERT_EQ(0, shmpool_heap_set_lock_timeout(self->h, -1));
	ASSERT_EQ(0, kill(pid, SIGKILL));
	ASSERT_EQ(pid, waitpid(pid, NULL, 0));
	ASSERT_EQ(0, shmpool_heap_stats(self->h, &st));
	EXPECT_EQ(1U, st.alloc_blocks);
	EXPECT_EQ(0, shmpool_free(self->h, a));
	ASSERT_EQ(0, shmpool_alloc(self->h, 5000, &small));
	EXPECT_EQ(0, shmpool_free(self->h, small));
	EXPECT_HEAP_OK(self->h, SHMPOOL_CHECK_QUIESCENT);
}

/* ns_peer_start()'s body: hold the heap's lock */
static int ns_locks_heap(struct shmpool_heap *h, _Atomic uint64_t *box)
{
	(void)box;
	return shmpool_mutex_lock(h->pool, shmpool_heap_ptr(h, HEAP_MUTEX_OFF,
							    sizeof(struct shmpool_mutex)));
}

/*
 * The holder lives in a PID namespace of its own, where it is pid 1 (a pid
 * that is alive here too, and means another process): it is neither taken
 * for dead nor waited for beyond the timeout; once it is killed, the next
 * call takes the lock over and nothing was lost. Device backend: the
 * module's attachments are what make liveness hold across namespaces (on
 * memfd, processes must share one; README, "When a process dies").
 */
TEST_F(alloc, lock_holder_in_other_pid_namespace_times_calls_out)
{
	struct shmpool_heap_stats st;
	_Atomic uint64_t *box;
	uint64_t a, b;
	uint32_t seq;
	pid_t pid;

	if (variant->backend != SHMPOOL_BACKEND_DEVICE ||
	    shmpool_death_seq(self->p, &seq))
		SKIP(return, "needs the module's attachments (device backend)");
	ASSERT_EQ(0, shmpool_alloc(self->h, 30000, &a));
	box = shared_box(_metadata);
	pid = ns_peer_start(_metadata, self->h, box, ns_locks_heap);
	if (pid < 0)
		return;

	ASSERT_EQ(0, shmpool_heap_set_lock_timeout(self->h, 200));
	EXPECT_EQ(-ETIMEDOUT, shmpool_alloc(self->h, 30000, &b));
	EXPECT_EQ(-ETIMEDOUT, shmpool_free(self->h, a));
	EXPECT_EQ(-ETIMEDOUT, shmpool_heap_stats(self->h, &st));
	EXPECT_EQ(-ETIMEDOUT, shmpool_heap_reclaim(self->h, SHMPOOL_RECLAIM_HELD));

	ns_peer_kill(_metadata, box, pid);
	ASSERT_EQ(0, shmpool_heap_set_lock_timeout(self->h, -1));
	ASSERT_EQ(0, shmpool_heap_stats(self->h, &st));
	EXPECT_EQ(1U, st.repairs);
	EXPECT_EQ(1U, st.alloc_blocks);
	EXPECT_EQ(0, shmpool_free(self->h, a));
	EXPECT_HEAP_OK(self->h, SHMPOOL_CHECK_QUIESCENT);
	munmap((void *)box, 4096);
}

/*
 * A peer writes this very thread (attachment id and thread id) into the
 * heap's lock, as a thread of ours whose id was recycled would leave it: a
 * heap call holds no lock on entry, so the claim is stale. It is taken over
 * as from a dead holder (the heap checked and repaired), with and without
 * waiters marked, and nothing is lost. The old code answered -EDEADLK for
 * as long as this thread lived.
 */
TEST_F(alloc, lock_naming_this_thread_is_taken_over)
{
	struct shmpool_mutex *m = shmpool_heap_ptr(self->h, HEAP_MUTEX_OFF, sizeof(*m));
	uint32_t tid = (uint32_t)syscall(SYS_gettid);
	int id = shmpool_attach_id(self->p);
	struct shmpool_heap_stats st;
	uint64_t a, b;

	ASSERT_LT(0, id);
	ASSERT_EQ(0, shmpool_alloc(self->h, 30000, &a));
	ASSERT_EQ(0, shmpool_heap_set_lock_timeout(self->h, 200));
	atomic_store(&m->word, (uint32_t)id);
	atomic_store(&m->tid, tid);
	EXPECT_EQ(0, shmpool_alloc(self->h, 30000, &b));
	atomic_store(&m->word, (uint32_t)id | SHMPOOL_MUTEX_WAITERS);
	atomic_store(&m->tid, tid);
	EXPECT_EQ(0, shmpool_free(self->h, b));
	EXPECT_EQ(0U, atomic_load(&m->word));
	ASSERT_EQ(0, shmpool_heap_stats(self->h, &st));
	EXPECT_EQ(2U, st.repairs);
	EXPECT_EQ(1U, st.alloc_blocks);
	EXPECT_EQ(0, shmpool_free(self->h, a));
	EXPECT_HEAP_OK(self->h, SHMPOOL_CHECK_QUIESCENT);
}

/* what the SIGALRM handler of the next test saw */
static struct shmpool_heap *sig_heap;
static volatile sig_atomic_t sig_ok, sig_deadlk, sig_other, sig_last;

static void heap_call_in_handler(int sig)
{
	uint64_t off;
	int ret = shmpool_alloc(sig_heap, 20000, &off);	/* a general block: the heap's lock */

	(void)sig;
	if (!ret)
		ret = shmpool_free(sig_heap, off);
	if (!ret)
		sig_ok++;
	else if (ret == -EDEADLK)
		sig_deadlk++;
	else {
		sig_other++;
		sig_last = ret;
	}
}

/*
 * A signal handler that interrupts this thread's heap call and calls the
 * heap itself meets the lock its own thread holds, or is taking: -EDEADLK,
 * having changed nothing, never a take-over of that lock as a stale claim
 * (which would let the handler and the interrupted call into the heap at
 * once). Signals every 20 us over some thousands of general allocations.
 */
TEST_F(alloc, heap_call_from_signal_handler_is_edeadlk)
{
	struct itimerval it = { { 0, 20 }, { 0, 20 } };
	struct shmpool_heap_stats st;
	struct sigaction sa = { .sa_handler = heap_call_in_handler };
	uint64_t off;
	int i, ret;

	sig_heap = self->h;
	sig_ok = sig_deadlk = sig_other = 0;
	ASSERT_EQ(0, sigaction(SIGALRM, &sa, NULL));
	ASSERT_EQ(0, setitimer(ITIMER_REAL, &it, NULL));
	for (i = 0; i < 20000 && (i < 2000 || !sig_deadlk); i++) {
		ret = shmpool_alloc(self->h, 30000, &off);
		if (ret == -EINTR)
			continue;
		ASSERT_EQ(0, ret);
		ASSERT_EQ(0, shmpool_free(self->h, off));
	}
	memset(&it, 0, sizeof(it));
	ASSERT_EQ(0, setitimer(ITIMER_REAL, &it, NULL));
	signal(SIGALRM, SIG_DFL);
	TH_LOG("%d iterations: the handler's calls: %d done, %d -EDEADLK",
	       i, (int)sig_ok, (int)sig_deadlk);
	EXPECT_EQ(0, sig_other) TH_LOG("the handler got %d", (int)sig_last);
	EXPECT_LT(0, sig_deadlk);
	ASSERT_EQ(0, shmpool_heap_stats(self->h, &st));
	EXPECT_EQ(0U, st.repairs);
	EXPECT_EQ(0U, st.alloc_blocks);
	EXPECT_HEAP_OK(self->h, SHMPOOL_CHECK_QUIESCENT);
}

TEST_F(alloc, lock_timeout_null_heap_is_einval)
{
	EXPECT_EQ(-EINVAL, shmpool_heap_set_lock_timeout(NULL, 10));
}

TEST_F(alloc, lock_timeout_below_minus_one_is_einval)
{
	EXPECT_EQ(-EINVAL, shmpool_heap_set_lock_timeout(self->h, -2));
	EXPECT_EQ(0, shmpool_heap_set_lock_timeout(self->h, -1));
	EXPECT_EQ(0, shmpool_heap_set_lock_timeout(self->h, 0));
	EXPECT_EQ(0, shmpool_heap_set_lock_timeout(self->h, 10000));
}

/* The directory of names: offset 8192 + 4096 of the layout, 64-byte entries. */
#define HEAP_DIR_OFF	12288
#define HEAP_DIR_ENT	64

/*
 * A holder killed creating a named object, after the block was allocated
 * and before its directory entry was: the repair frees the block that
 * nobody can find, and the heap checks clean.
 */
TEST_F(alloc, dead_holder_mid_create_repaired)
{
	struct shmpool_heap_stats st;
	struct shmpool_obj obj;

	ASSERT_EQ(1, shmpool_obj_create(self->h, "half", 30000, 0, &obj));
	/* the entry's offset is written last: as if that store never came */
	memset(shmpool_heap_ptr(self->h, HEAP_DIR_OFF, HEAP_DIR_ENT), 0, HEAP_DIR_ENT);
	die_holding_heap_lock(_metadata, self->h);
	ASSERT_EQ(0, shmpool_heap_stats(self->h, &st));
	EXPECT_EQ(1U, st.repairs);
	EXPECT_EQ(0U, st.objects);
	EXPECT_EQ(0U, st.alloc_blocks);
	EXPECT_EQ(-ENOENT, shmpool_obj_find(self->h, "half", &obj));
	EXPECT_HEAP_OK(self->h, SHMPOOL_CHECK_QUIESCENT);
}

/* A dead holder and a broken block chain: -EUCLEAN from then on, no hang. */
TEST_F(alloc, dead_holder_broken_chain_is_euclean)
{
	uint32_t *size;
	uint64_t a;

	ASSERT_EQ(0, shmpool_alloc(self->h, 30000, &a));
	size = shmpool_heap_ptr(self->h, a - 16, 4);	/* the block's header */
	*size = 1;	/* below the smallest block: the walk cannot go on */
	die_holding_heap_lock(_metadata, self->h);
	EXPECT_EQ(-EUCLEAN, shmpool_alloc(self->h, 30000, &a));
	EXPECT_EQ(-EUCLEAN, shmpool_alloc(self->h, 30000, &a));
	EXPECT_EQ(-EUCLEAN, shmpool_heap_check(self->h, 0, NULL, 0));
}
#endif

/* ---- named objects ----------------------------------------------------------------- */

TEST_F(alloc, obj_create_find_remove)
{
	struct shmpool_obj a, b;
	struct shmpool_heap_stats st;
	uint8_t *m;
	size_t i;

	EXPECT_EQ(-ENOENT, shmpool_obj_find(self->h, "requests", &a));
	ASSERT_EQ(1, shmpool_obj_create(self->h, "requests", 5000, 256, &a));
	EXPECT_EQ(0U, a.off % 256);
	EXPECT_EQ(5000U, a.size);
	m = shmpool_heap_ptr(self->h, a.off, a.size);
	for (i = 0; i < a.size; i++)
		ASSERT_EQ(0, m[i]);
	memset(m, 1, a.size);
	ASSERT_EQ(0, shmpool_obj_create(self->h, "requests", 10, 0, &b));
	EXPECT_EQ(a.off, b.off);
	EXPECT_EQ(5000U, b.size);
	ASSERT_EQ(0, shmpool_obj_find(self->h, "requests", &b));
	EXPECT_EQ(a.off, b.off);
	ASSERT_EQ(0, shmpool_heap_stats(self->h, &st));
	EXPECT_EQ(1U, st.objects);
	EXPECT_EQ(0U, st.alloc_blocks);
	EXPECT_HEAP_OK(self->h, SHMPOOL_CHECK_QUIESCENT);
	EXPECT_EQ(0, shmpool_obj_remove(self->h, "requests"));
	EXPECT_EQ(-ENOENT, shmpool_obj_find(self->h, "requests", &b));
	EXPECT_EQ(-ENOENT, shmpool_obj_remove(self->h, "requests"));
	/* a new object of the name is a new, zeroed one */
	ASSERT_EQ(1, shmpool_obj_create(self->h, "requests", 5000, 256, &a));
	m = shmpool_heap_ptr(self->h, a.off, a.size);
	for (i = 0; i < a.size; i++)
		ASSERT_EQ(0, m[i]);
	EXPECT_HEAP_OK(self->h, SHMPOOL_CHECK_QUIESCENT);
}

TEST_F(alloc, obj_bad_names)
{
	struct shmpool_obj o;
	char name[SHMPOOL_OBJ_NAME_MAX + 1];

	EXPECT_EQ(-EINVAL, shmpool_obj_create(self->h, "", 10, 0, &o));
	EXPECT_EQ(-EINVAL, shmpool_obj_create(self->h, NULL, 10, 0, &o));
	EXPECT_EQ(-EINVAL, shmpool_obj_find(self->h, "", &o));
	memset(name, 'x', SHMPOOL_OBJ_NAME_MAX);
	name[SHMPOOL_OBJ_NAME_MAX] = '\0';
	EXPECT_EQ(-ENAMETOOLONG, shmpool_obj_create(self->h, name, 10, 0, &o));
	name[SHMPOOL_OBJ_NAME_MAX - 1] = '\0';	/* 39 characters: fine */
	EXPECT_EQ(1, shmpool_obj_create(self->h, name, 10, 0, &o));
	EXPECT_EQ(0, shmpool_obj_find(self->h, name, &o));
}

TEST_F(alloc, obj_bad_size_and_align)
{
	struct shmpool_obj o;

	EXPECT_EQ(-EINVAL, shmpool_obj_create(self->h, "a", 0, 0, &o));
	EXPECT_EQ(-EINVAL, shmpool_obj_create(self->h, "a", 10, 24, &o));
	EXPECT_EQ(-ENOMEM, shmpool_obj_create(self->h, "a", POOL_BYTES, 0, &o));
	EXPECT_EQ(-ENOENT, shmpool_obj_find(self->h, "a", &o));
}

TEST_F(alloc, obj_directory_full_is_enospc)
{
	struct shmpool_obj o;
	char name[32];
	int i, ret = 0;

	for (i = 0; i < 1000; i++) {
		snprintf(name, sizeof(name), "o%d", i);
		ret = shmpool_obj_create(self->h, name, 16, 0, &o);
		if (ret != 1)
			break;
	}
	EXPECT_EQ(-ENOSPC, ret);
	EXPECT_LE(32, i);
	EXPECT_EQ(0, shmpool_obj_remove(self->h, "o0"));
	EXPECT_EQ(1, shmpool_obj_create(self->h, name, 16, 0, &o));
	EXPECT_HEAP_OK(self->h, SHMPOOL_CHECK_QUIESCENT);
}

static int obj_racer(void *arg)
{
	struct worker *w = arg;
	struct shmpool_heap *h = w->h;
	struct shmpool *p = NULL;
	struct shmpool_obj o;
	_Atomic uint64_t *res = (_Atomic uint64_t *)(uintptr_t)w->budget_ms;
	int ret;

#ifndef SHMPOOL_TEST_THREADS
	if (shmpool_open(w->name, w->backend, &p) || shmpool_heap_open(p, 0, &h))
		return 20;
#endif
	while (!atomic_load(&res[2 * MAX_WORKERS]))
		;
	ret = shmpool_obj_create(h, "requests", 4096, 0, &o);
	if (ret < 0)
		return 21;
	atomic_store(&res[w->idx], o.off);
	atomic_store(&res[MAX_WORKERS + w->idx], (uint64_t)ret);
	if (p) {
		shmpool_heap_close(h);
		shmpool_close(p);
	}
	return 0;
}

/* Processes racing to create the same name all get one and the same object. */
TEST_F(alloc, obj_create_race)
{
	struct worker w[MAX_WORKERS];
	struct task t[MAX_WORKERS];
	_Atomic uint64_t *res;
	int i, round, created;

	res = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, res);
	for (round = 0; round < 10; round++) {
		memset((void *)res, 0, 4096);
		for (i = 0; i < MAX_WORKERS; i++) {
			w[i] = (struct worker){ self->name, variant->backend, self->h, i, 0,
						(uint64_t)(uintptr_t)res };
			ASSERT_EQ(0, task_start(&t[i], obj_racer, &w[i]));
		}
		atomic_store(&res[2 * MAX_WORKERS], 1);
		created = 0;
		for (i = 0; i < MAX_WORKERS; i++) {
			EXPECT_EQ(0, task_join(&t[i]));
			EXPECT_EQ(atomic_load(&res[0]), atomic_load(&res[i]));
			created += (int)atomic_load(&res[MAX_WORKERS + i]);
		}
		EXPECT_NE(0U, atomic_load(&res[0]));
		EXPECT_EQ(1, created);
		EXPECT_EQ(0, shmpool_obj_remove(self->h, "requests"));
		EXPECT_HEAP_OK(self->h, SHMPOOL_CHECK_QUIESCENT);
	}
	munmap((void *)res, 4096);
}

/* ---- what stats promise, and slabs coming back ------------------------------------ */

/*
 * shmpool_heap_stats()' largest_free is what one shmpool_alloc() gets: on a
 * fresh heap, and after the heap was cut up, allocating exactly that
 * succeeds, and one granule more does not.
 */
TEST_F(alloc, largest_free_is_allocatable)
{
	struct shmpool_heap_stats st;
	uint64_t off[64], big;
	int i;

	ASSERT_EQ(0, shmpool_heap_stats(self->h, &st));
	EXPECT_EQ(-ENOMEM, shmpool_alloc(self->h, st.largest_free + 16, &big));
	ASSERT_EQ(0, shmpool_alloc(self->h, st.largest_free, &big))
		TH_LOG("largest_free %llu of %llu free", (unsigned long long)st.largest_free,
		       (unsigned long long)st.free_bytes);
	EXPECT_EQ(0, shmpool_free(self->h, big));

	/* cut up: every other block of a row freed, then the largest again */
	for (i = 0; i < 64; i++)
		ASSERT_EQ(0, shmpool_alloc(self->h, 20000 + 1024 * (size_t)i, &off[i]));
	for (i = 0; i < 64; i += 2)
		ASSERT_EQ(0, shmpool_free(self->h, off[i]));
	ASSERT_EQ(0, shmpool_heap_stats(self->h, &st));
	EXPECT_EQ(-ENOMEM, shmpool_alloc(self->h, st.largest_free + 16, &big));
	ASSERT_EQ(0, shmpool_alloc(self->h, st.largest_free, &big))
		TH_LOG("largest_free %llu", (unsigned long long)st.largest_free);
	EXPECT_EQ(0, shmpool_free(self->h, big));
	for (i = 1; i < 64; i += 2)
		ASSERT_EQ(0, shmpool_free(self->h, off[i]));
	EXPECT_HEAP_OK(self->h, SHMPOOL_CHECK_QUIESCENT);
}

#define CHURN_LIVE	2048

/* random allocations and frees, mostly small, all freed at the end */
static int churn_worker(void *arg)
{
	struct worker *w = arg;
	struct shmpool_heap *h = w->h;
	uint64_t s = 0x9e3779b97f4a7c15ULL * (uint64_t)(w->idx + 1), i, t0 = now_ms();
	static __thread uint64_t live[CHURN_LIVE];
	size_t n = 0, k;
	int ret;
#ifndef SHMPOOL_TEST_THREADS
	struct shmpool *p = NULL;

	if (shmpool_open(w->name, w->backend, &p) || shmpool_heap_open(p, 0, &h))
		return 20;
#endif
	for (i = 0; i < w->ops; i++) {
		if ((i & 1023) == 0 && now_ms() - t0 > w->budget_ms)
			break;
		if (n < CHURN_LIVE && (n < CHURN_LIVE / 2 || rnd(&s) % 2)) {
			ret = shmpool_alloc(h, rnd_size(&s), &live[n]);
			if (ret == -ENOMEM)
				continue;
			if (ret)
				return 21;
			n++;
		} else {
			k = rnd(&s) % n;
			if (shmpool_free(h, live[k]))
				return 22;
			live[k] = live[--n];
		}
	}
	while (n)
		if (shmpool_free(h, live[--n]))
			return 23;
#ifndef SHMPOOL_TEST_THREADS
	if (shmpool_heap_close(h) || shmpool_close(p))
		return 24;
#else
	if (shmpool_heap_flush(h))
		return 24;
#endif
	return 0;
}

/*
 * Memory comes back from slabs: after 4 workers' random allocations are
 * all freed, the largest free block holds at least 90% of the free bytes
 * (slabs left with their classes would cut the heap up), and it can be
 * allocated in one piece.
 */
TEST_F_TIMEOUT(alloc, slabs_come_back_after_churn, 120)
{
	struct worker w[MAX_WORKERS];
	struct task t[MAX_WORKERS];
	struct shmpool_heap_stats st;
	uint64_t off;
	int i;

	for (i = 0; i < MAX_WORKERS; i++) {
		w[i] = (struct worker){ self->name, variant->backend, self->h, i,
					(uint64_t)(200000 * scale()),
					(uint64_t)(3000 * scale()) };
		ASSERT_EQ(0, task_start(&t[i], churn_worker, &w[i]));
	}
	for (i = 0; i < MAX_WORKERS; i++)
		EXPECT_EQ(0, task_join(&t[i])) TH_LOG("worker %d", i);
	EXPECT_EQ(0, shmpool_heap_flush(self->h));
	ASSERT_EQ(0, shmpool_heap_stats(self->h, &st));
	EXPECT_EQ(0U, st.alloc_blocks);
	EXPECT_LE(st.free_bytes * 9 / 10, st.largest_free)
		TH_LOG("largest free %llu of %llu free bytes, %u slabs left",
		       (unsigned long long)st.largest_free,
		       (unsigned long long)st.free_bytes, st.slabs);
	ASSERT_EQ(0, shmpool_alloc(self->h, st.largest_free, &off));
	EXPECT_EQ(0, shmpool_free(self->h, off));
	EXPECT_HEAP_OK(self->h, SHMPOOL_CHECK_QUIESCENT);
}

/* ---- killed at every instruction ------------------------------------------------ */

/*
 * A victim process single-stepped through one heap call and SIGKILLed
 * after k instructions, for every k (lib_test.h, KILL_AT_EVERY_STEP).
 * After each kill the survivor (this process) must find what "Owner
 * death" in shmpool_alloc.h promises: the dead one's cached objects back
 * on the lists at the next reclaim, a clean check, what it still held
 * (at most the blocks it had allocated, counted exactly below) orphaned
 * (owner 0), and after SHMPOOL_RECLAIM_HELD and SHMPOOL_RECLAIM_STRANDED
 * (nobody allocates) the heap exactly at its baseline; then every object
 * of two slabs' worth and the largest free block are handed out, none
 * twice.
 */
#define KS_SMALL	256	/* cache limit 8 in an 8 MiB pool, batches of 4 */
#define KS_SLAB_OBJ	1024	/* 16 to a slab: a new slab is made in few steps */
#define KS_BIG		20000	/* a general (TLSF) block */
#define KS_OBJ		"ks.obj"
#define KS_OBJ_SIZE	1000	/* memset() below its rep stosb size: few steps */

enum ks_op {
	KS_REFILL,		/* shmpool_alloc() of a small object, empty cache */
	KS_DRAIN,		/* shmpool_free() with the class's cache full */
	KS_FLUSH,		/* shmpool_heap_flush() of 6 cached objects */
	KS_BIG_ALLOC,		/* shmpool_alloc() of a general block */
	KS_BIG_FREE,		/* shmpool_free() of a general block */
	KS_OBJ_CREATE,		/* shmpool_obj_create() */
};

struct ks {
	struct shmpool_heap *h;
	enum ks_op op;
	uint32_t size;		/* the small objects' size */
	_Atomic uint64_t *box;	/* [0] the victim's owner id, [1..] its blocks */
	int held;		/* blocks the victim may hold at its death */
	struct shmpool_heap_stats base;
	long stranded, reclaimed;
};

#define KS_BOX_BLOCKS	10

/* the victim: set up, stop (the tracer steps from here), make the call */
static int ks_victim(void *arg)
{
	struct ks *s = arg;
	struct shmpool_obj obj;
	uint64_t off[KS_BOX_BLOCKS - 1];
	int i, id;

	/* after fork(): our own owner id and an empty thread cache, unstepped */
	id = shmpool_heap_attach_id(s->h);
	if (id <= 0 || shmpool_alloc(s->h, 16, &off[0]) || shmpool_free(s->h, off[0]) ||
	    shmpool_heap_flush(s->h))
		return 2;
	atomic_store(&s->box[0], (uint64_t)id);
	switch (s->op) {
	case KS_DRAIN:
	case KS_FLUSH:
		for (i = 0; i < 9; i++) {
			if (shmpool_alloc(s->h, s->size, &off[i]))
				return 3;
			atomic_store(&s->box[1 + i], off[i]);
		}
		for (i = 0; i < (s->op == KS_DRAIN ? 8 : 9); i++)
			if (shmpool_free(s->h, off[i]))
				return 4;
		break;
	case KS_BIG_FREE:
		if (shmpool_alloc(s->h, KS_BIG, &off[0]))
			return 3;
		atomic_store(&s->box[1], off[0]);
		break;
	default:
		break;
	}
	if (ptrace(PTRACE_TRACEME, 0, NULL, NULL))
		return 5;
	raise(SIGSTOP);
	switch (s->op) {
	case KS_REFILL:
		return shmpool_alloc(s->h, s->size, &off[0]) ? 6 : 0;
	case KS_DRAIN:
		return shmpool_free(s->h, off[8]) ? 6 : 0;
	case KS_FLUSH:
		return shmpool_heap_flush(s->h) ? 6 : 0;
	case KS_BIG_ALLOC:
		return shmpool_alloc(s->h, KS_BIG, &off[0]) ? 6 : 0;
	case KS_BIG_FREE:
		return shmpool_free(s->h, off[0]) ? 6 : 0;
	case KS_OBJ_CREATE:
		return shmpool_obj_create(s->h, KS_OBJ, KS_OBJ_SIZE, 0, &obj) == 1 ? 0 : 6;
	}
	return 7;
}


/*
 * Two slabs' worth of @size objects and the largest free block: all
 * allocated at once, pairwise apart (no block handed out twice); freed.
 */
static int ks_hand_out(struct __test_metadata *_metadata, struct ks *s, long k,
		       uint32_t size, uint32_t n)
{
	struct shmpool_heap_stats st;
	uint64_t off[256 + 1];
	uint32_t i, j;
	int ret = 0;

	if (n > 256)
		n = 256;
	for (i = 0; i < n; i++)
		if (shmpool_alloc(s->h, size, &off[i])) {
			TH_LOG("step %ld: allocation %u of %u bytes failed", k, i, size);
			ret = -1;
			n = i;
			break;
		}
	if (!ret && shmpool_heap_stats(s->h, &st))
		ret = -1;
	if (!ret && shmpool_alloc(s->h, st.largest_free, &off[n])) {
		TH_LOG("step %ld: the largest free block (%llu) is not there", k,
		       (unsigned long long)st.largest_free);
		ret = -1;
	} else if (!ret) {
		n++;
	}
	for (i = 0; i < n && !ret; i++)
		for (j = i + 1; j < n; j++) {
			uint64_t a = off[i], b = off[j];
			uint64_t la = (uint64_t)shmpool_alloc_size(s->h, a);
			uint64_t lb = (uint64_t)shmpool_alloc_size(s->h, b);

			if (a < b + lb && b < a + la) {
				TH_LOG("step %ld: blocks at %llu and %llu overlap", k,
				       (unsigned long long)a, (unsigned long long)b);
				ret = -1;
				break;
			}
		}
	for (i = 0; i < n; i++)
		if (shmpool_free(s->h, off[i]))
			ret = -1;
	if (shmpool_heap_flush(s->h))
		ret = -1;
	return ret;
}

/* One kill point: 1 checked, 0 the call ended before step k, -1 failed (logged). */
static int ks_killed_at(struct __test_metadata *_metadata, struct ks *s, long k)
{
	struct shmpool_heap_stats st;
	struct shmpool_obj obj;
	char msg[MSG_LEN];
	uint64_t off, cached = 0, objs;
	long n;
	int killed, c, i, owner, orphans = 0;

	for (i = 0; i < KS_BOX_BLOCKS; i++)
		atomic_store(&s->box[i], 0);
	killed = step_and_kill(ks_victim, s, k);
	STEP_CHECK(killed >= 0, "the victim failed");
	/* what comes back by itself: the dead one's cache, at the next reclaim */
	n = shmpool_heap_reclaim(s->h, 0);
	STEP_CHECK(n >= 0, "reclaim: %ld", n);
	STEP_CHECK(!shmpool_heap_check(s->h, 0, msg, sizeof(msg)), "%s", msg);
	STEP_CHECK(!shmpool_heap_stats(s->h, &st), "stats");
	for (c = 0; c < SHMPOOL_HEAP_NR_CLASSES; c++)
		cached += st.classes[c].cached;
	STEP_CHECK(cached == 0, "%llu objects still cached", (unsigned long long)cached);
	STEP_CHECK(st.nr_attach == s->base.nr_attach, "%u attachments, %u before",
		 st.nr_attach, s->base.nr_attach);
	/* what stays: orphans, no more than the victim had allocated */
	for (i = 1; i < KS_BOX_BLOCKS; i++) {
		off = atomic_load(&s->box[i]);
		if (!off)
			continue;
		owner = shmpool_alloc_owner(s->h, off);
		STEP_CHECK(owner == 0 || owner == -EINVAL,
			 "the dead one's block %llu has owner %d", (unsigned long long)off, owner);
		orphans += owner == 0;
	}
	STEP_CHECK(st.alloc_blocks <= s->base.alloc_blocks + (uint64_t)s->held,
		 "%llu blocks allocated, %llu before, the victim held at most %d",
		 (unsigned long long)st.alloc_blocks,
		 (unsigned long long)s->base.alloc_blocks, s->held);
	STEP_CHECK(st.alloc_blocks >= s->base.alloc_blocks + (uint64_t)orphans,
		 "%d orphans known, %llu blocks allocated, %llu before", orphans,
		 (unsigned long long)st.alloc_blocks,
		 (unsigned long long)s->base.alloc_blocks);
	objs = st.objects;
	/* on request: the orphans, the stranded objects; then the baseline */
	n = shmpool_heap_reclaim(s->h, SHMPOOL_RECLAIM_HELD);
	STEP_CHECK(n >= 0, "reclaim held: %ld", n);
	s->reclaimed += n;
	n = shmpool_heap_reclaim(s->h, SHMPOOL_RECLAIM_STRANDED);
	STEP_CHECK(n >= 0, "reclaim stranded: %ld", n);
	s->stranded += n;
	if (s->op == KS_OBJ_CREATE && shmpool_obj_find(s->h, KS_OBJ, &obj) == 0) {
		STEP_CHECK(objs == s->base.objects + 1, "%llu objects", (unsigned long long)objs);
		STEP_CHECK(obj.size >= KS_OBJ_SIZE, "object of %llu bytes", (unsigned long long)obj.size);
		STEP_CHECK(!shmpool_obj_remove(s->h, KS_OBJ), "remove");
	} else {
		STEP_CHECK(objs == s->base.objects, "%llu objects, no %s", (unsigned long long)objs,
			 KS_OBJ);
	}
	STEP_CHECK(!shmpool_heap_check(s->h, SHMPOOL_CHECK_QUIESCENT, msg, sizeof(msg)), "%s", msg);
	STEP_CHECK(!shmpool_heap_stats(s->h, &st), "stats");
	for (c = 0; c < SHMPOOL_HEAP_NR_CLASSES; c++) {
		STEP_CHECK(st.classes[c].used == s->base.classes[c].used &&
			 st.classes[c].cached == 0,
			 "class %u: %llu used (%llu before), %llu cached", st.classes[c].size,
			 (unsigned long long)st.classes[c].used,
			 (unsigned long long)s->base.classes[c].used,
			 (unsigned long long)st.classes[c].cached);
	}
	STEP_CHECK(st.alloc_blocks == s->base.alloc_blocks && st.objects == s->base.objects &&
		 st.free_bytes == s->base.free_bytes && st.used_bytes == s->base.used_bytes,
		 "%llu blocks, %u objects, %llu free, %llu used; before: %llu, %u, %llu, %llu",
		 (unsigned long long)st.alloc_blocks, st.objects,
		 (unsigned long long)st.free_bytes, (unsigned long long)st.used_bytes,
		 (unsigned long long)s->base.alloc_blocks, s->base.objects,
		 (unsigned long long)s->base.free_bytes, (unsigned long long)s->base.used_bytes);
	if (ks_hand_out(_metadata, s, k, s->size, 2 * (uint32_t)(16384 / s->size)))
		return -1;
	/* and back to the baseline once more: the hand-out left nothing */
	STEP_CHECK(!shmpool_heap_stats(s->h, &st), "stats");
	STEP_CHECK(st.free_bytes == s->base.free_bytes, "%llu free after the hand-out, %llu before",
		 (unsigned long long)st.free_bytes, (unsigned long long)s->base.free_bytes);
	return killed;
}

/*
 * @pin: keep one object of the class allocated, so that its slab stays
 * and its free objects wait on the shared lists (else every refill makes
 * a new slab under the heap lock). @vm_apart: kill points apart in the
 * QEMU lanes (61 for calls below about 800 steps; a 6.12 lane took 30 s
 * for the new slab's 1586 steps 61 apart).
 */
static void ks_everywhere(struct __test_metadata *_metadata, struct shmpool_heap *h,
			  enum ks_op op, uint32_t size, int held, bool pin, long vm_apart)
{
	struct ks s = { h, op, size, NULL, held, { 0 }, 0, 0 };
	uint64_t pinned = 0, spare[16];
	long k;
	int i;

	s.box = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, s.box);
	if (pin) {
		/* the pin, and 15 of its slab's objects freed onto the lists */
		ASSERT_EQ(0, shmpool_alloc(h, size, &pinned));
		for (i = 0; i < 16; i++)
			ASSERT_EQ(0, shmpool_alloc(h, size, &spare[i]));
		for (i = 0; i < 16; i++)
			ASSERT_EQ(0, shmpool_free(h, spare[i]));
	}
	ASSERT_EQ(0, shmpool_heap_flush(h));
	ASSERT_EQ(0, shmpool_heap_stats(h, &s.base));
	KILL_AT_STEPS_APART(h->pool, k, ks_killed_at(_metadata, &s, k), vm_apart);
	TH_LOG("%ld orphans and %ld stranded objects reclaimed on request", s.reclaimed,
	       s.stranded);
	if (pin)
		EXPECT_EQ(0, shmpool_free(h, pinned));
	EXPECT_HEAP_OK(h, SHMPOOL_CHECK_QUIESCENT);
	munmap((void *)s.box, 4096);
}

/* the refill takes a batch from the class's shared list */
TEST_F_TIMEOUT(alloc, small_alloc_refill_killed_at_every_step, 600)
{
	ks_everywhere(_metadata, self->h, KS_REFILL, KS_SMALL, 1, true, 61);
}

/* the class has no slab: the refill makes one under the heap lock */
TEST_F_TIMEOUT(alloc, small_alloc_new_slab_killed_at_every_step, 600)
{
	ks_everywhere(_metadata, self->h, KS_REFILL, KS_SLAB_OBJ, 1, false, 181);
}

/* the cache holds 8 (its limit): the free moves the oldest 4 to the list */
TEST_F_TIMEOUT(alloc, small_free_drain_killed_at_every_step, 600)
{
	ks_everywhere(_metadata, self->h, KS_DRAIN, KS_SMALL, 1, true, 61);
}

TEST_F_TIMEOUT(alloc, heap_flush_killed_at_every_step, 600)
{
	ks_everywhere(_metadata, self->h, KS_FLUSH, KS_SMALL, 0, true, 127);
}

TEST_F_TIMEOUT(alloc, general_alloc_killed_at_every_step, 600)
{
	ks_everywhere(_metadata, self->h, KS_BIG_ALLOC, KS_SMALL, 1, false, 127);
}

TEST_F_TIMEOUT(alloc, general_free_killed_at_every_step, 600)
{
	ks_everywhere(_metadata, self->h, KS_BIG_FREE, KS_SMALL, 1, false, 127);
}

TEST_F_TIMEOUT(alloc, obj_create_killed_at_every_step, 600)
{
	ks_everywhere(_metadata, self->h, KS_OBJ_CREATE, KS_SMALL, 0, false, 181);
}

#ifndef SHMPOOL_TEST_THREADS	/* processes: the owner dies */
/*
 * A free of another process's small object while that process's handle
 * ends. The free's claim of the object's slot first guesses the caller as
 * the owner, then tries the owner it found; the end of the owner's handle
 * (here: the reclaim after its death) makes the slot OWNER_ORPHAN by CAS.
 * At every step of the free, a fresh object of a fresh dead owner becomes
 * an orphan: the free must still succeed, and nothing may leak. Before
 * f8e3b53, an orphaning between the claim's two CASes failed the free
 * with -EINVAL and leaked the object.
 */
struct of {
	struct shmpool_heap *h;
	_Atomic uint64_t *box;		/* [0] the dead owner's object */
	struct shmpool_heap_stats base;
	unsigned int c;			/* its class */
};

#define OF_SIZE	16

static int of_victim(void *arg)
{
	struct of *s = arg;
	uint64_t off;

	/* after fork(): our own owner id and an empty thread cache, unstepped */
	if (shmpool_heap_attach_id(s->h) <= 0 || shmpool_alloc(s->h, OF_SIZE, &off) ||
	    shmpool_free(s->h, off) || shmpool_heap_flush(s->h))
		return 2;
	if (ptrace(PTRACE_TRACEME, 0, NULL, NULL))
		return 5;
	raise(SIGSTOP);
	return shmpool_free(s->h, atomic_load(&s->box[0])) ? 6 : 0;
}

/* Step the free k times, orphan its object, let it go on: 1, 0 (it ended before), -1. */
static int of_orphaned_at(struct __test_metadata *_metadata, struct of *s, long k)
{
	struct shmpool_heap_stats st;
	uint64_t off;
	long n, j;
	int ret = 1, owner, st_, stopped = 1;
	pid_t a, pid;

	/* the owner: allocates one object and dies without a word */
	atomic_store(&s->box[0], 0);
	a = fork();
	STEP_CHECK(a >= 0, "fork");
	if (a == 0)
		_exit(shmpool_alloc(s->h, OF_SIZE, &off) ? 1 :
		      (atomic_store(&s->box[0], off), 0));
	STEP_CHECK(waitpid(a, &st_, 0) == a && WIFEXITED(st_) && !WEXITSTATUS(st_),
		   "the owner: status %#x", st_);
	off = atomic_load(&s->box[0]);
	owner = shmpool_alloc_owner(s->h, off);
	STEP_CHECK(owner > 0 && owner != shmpool_heap_attach_id(s->h),
		   "the dead owner's object has owner %d", owner);

	pid = victim_start(of_victim, s);
	STEP_CHECK(pid > 0, "the victim did not start");
	for (j = 0; j < k; j++) {
		if (ptrace(PTRACE_SINGLESTEP, pid, NULL, NULL) || waitpid(pid, &st_, 0) != pid) {
			victim_kill(pid);
			STEP_CHECK(0, "step %ld failed", j);
		}
		if (!WIFSTOPPED(st_)) {
			stopped = 0;
			break;
		}
	}
	/* the owner's end: its cached objects back, the object an orphan */
	n = shmpool_heap_reclaim(s->h, 0);
	if (stopped) {
		if (ptrace(PTRACE_DETACH, pid, NULL, NULL) || waitpid(pid, &st_, 0) != pid)
			st_ = -1;
		ret = 1;
	} else {
		ret = 0;	/* the free ended before step k */
	}
	STEP_CHECK(n >= 0, "reclaim: %ld", n);
	STEP_CHECK(WIFEXITED(st_) && !WEXITSTATUS(st_),
		   "the free of the orphaned object failed (status %#x)", st_);
	/* the free took it (the victim's cache, back now that it is dead) */
	STEP_CHECK(shmpool_heap_reclaim(s->h, 0) >= 0, "reclaim");
	STEP_CHECK(!shmpool_heap_stats(s->h, &st), "stats");
	STEP_CHECK(st.classes[s->c].used == s->base.classes[s->c].used &&
		   st.classes[s->c].cached == 0,
		   "class %u: %llu used (%llu before), %llu cached", st.classes[s->c].size,
		   (unsigned long long)st.classes[s->c].used,
		   (unsigned long long)s->base.classes[s->c].used,
		   (unsigned long long)st.classes[s->c].cached);
	return ret;
}

TEST_F_TIMEOUT(alloc, free_of_object_orphaned_at_every_step, 600)
{
	struct of s = { self->h, NULL, { 0 }, 0 };
	uint64_t off;
	long k;

	s.box = shared_box(_metadata);
	/* the class of OF_SIZE: the one whose use a fresh allocation moves */
	ASSERT_EQ(0, shmpool_alloc(self->h, OF_SIZE, &off));
	ASSERT_EQ(0, shmpool_heap_stats(self->h, &s.base));
	while (s.c < SHMPOOL_HEAP_NR_CLASSES && s.base.classes[s.c].size < OF_SIZE)
		s.c++;
	ASSERT_GT((unsigned int)SHMPOOL_HEAP_NR_CLASSES, s.c);
	ASSERT_EQ(0, shmpool_free(self->h, off));
	ASSERT_EQ(0, shmpool_heap_flush(self->h));
	ASSERT_EQ(0, shmpool_heap_stats(self->h, &s.base));
	KILL_AT_EVERY_STEP(self->h->pool, k, of_orphaned_at(_metadata, &s, k));
	EXPECT_EQ(0, shmpool_heap_reclaim(self->h, SHMPOOL_RECLAIM_HELD));
	EXPECT_HEAP_OK(self->h, SHMPOOL_CHECK_QUIESCENT);
	munmap((void *)s.box, 4096);
}

#endif

TEST_HARNESS_MAIN
