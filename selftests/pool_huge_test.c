/* pool_huge_test: first touch maps 16 pages per fault (GUP still works); SHMPOOL_CREATE_HUGE maps 2 MiB with one PMD entry where SHMPOOL_FEAT_HUGE says so, and is EOPNOTSUPP elsewhere. */
// SPDX-License-Identifier: GPL-2.0
#define _GNU_SOURCE
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/uio.h>

#include <shmpool.h>

#include "shmpool_test_util.h"

#define MIB		(1UL << 20)
#define PMD_BYTES	(2 * MIB)

FIXTURE(huge) {
	int fd;			/* scope fd; a pool fd after sp_create() */
	long page;
	struct shmpool_api api;
	bool have_huge;		/* SHMPOOL_FEAT_HUGE */
	char name[SHMPOOL_NAME_MAX];
};

FIXTURE_SETUP(huge)
{
	if (!sp_setup_dev(_metadata, &self->fd, &self->page, &self->api))
		return;
	self->have_huge = self->api.features & SHMPOOL_FEAT_HUGE;
	sp_make_name(self->name, "huge");
}

FIXTURE_TEARDOWN(huge)
{
	sp_unlink_quiet(self->name);
	close(self->fd);
}

/* Minor faults of this process so far. */
static long minflt(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru))
		return -1;
	return ru.ru_minflt;
}

/* Write one byte in every page of [p, p + len); the faults it took. */
static long touch_pages(volatile uint8_t *p, size_t len, long page)
{
	long before = minflt();
	size_t i;

	for (i = 0; i < len; i += page)
		p[i] = (uint8_t)(i / page + 1);
	return minflt() - before;
}

/* Read one byte in every page; the faults it took. */
static long read_pages(const volatile uint8_t *p, size_t len, long page)
{
	long before = minflt();
	unsigned int sum = 0;
	size_t i;

	for (i = 0; i < len; i += page)
		sum += p[i];
	(void)sum;
	return minflt() - before;
}

/* MAP_SHARED of @fd at @off at an address congruent to @mis mod 2 MiB. */
static void *map_at(int fd, size_t len, off_t off, size_t mis)
{
	uint8_t *r = mmap(NULL, len + 2 * PMD_BYTES, PROT_NONE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	uintptr_t a;

	if (r == MAP_FAILED)
		return r;
	a = ((uintptr_t)r + PMD_BYTES - 1) & ~(uintptr_t)(PMD_BYTES - 1);
	return mmap((void *)(a + mis), len, PROT_READ | PROT_WRITE,
		    MAP_SHARED | MAP_FIXED, fd, off);
}

/* Does writing to @p kill a child with SIGSEGV? */
static bool write_segfaults(volatile uint8_t *p)
{
	pid_t pid = fork();

	if (!pid) {
		sp_child_init();
		*p = 1;
		_exit(0);
	}
	return pid > 0 && sp_wait(pid) == 128 + SIGSEGV;
}

#define NEED_HUGE() do {						\
	if (!self->have_huge)						\
		SKIP(return, "no SHMPOOL_FEAT_HUGE on this kernel");	\
} while (0)

/* ---- first touch: fault-around, every pool ---- */

TEST_F(huge, first_touch_maps_many_pages_per_fault)
{
	size_t len = 4 * MIB;
	long faults;
	uint8_t *p;

	ASSERT_EQ(0, sp_create(self->fd, NULL, len, 0, 0600, NULL));
	p = sp_map(self->fd, len, PROT_READ | PROT_WRITE, 0);
	ASSERT_NE(MAP_FAILED, p);
	faults = touch_pages(p, len, self->page);
	/* 1024 pages; one fault per page before fault-around, 64 with it. */
	EXPECT_LE(faults, (long)(len / self->page / 8)) TH_LOG("%ld faults", faults);
	EXPECT_EQ(1, p[0]);
	EXPECT_EQ((uint8_t)(len / self->page), p[len - self->page]);
	munmap(p, len);
}

TEST_F(huge, first_touch_read_faults_too)
{
	size_t len = 1 * MIB;
	long faults;
	uint8_t *p;

	ASSERT_EQ(0, sp_create_filled(self->fd, NULL, len, 0, 0600, 3));
	p = sp_map(self->fd, len, PROT_READ, 0);
	ASSERT_NE(MAP_FAILED, p);
	faults = read_pages(p, len, self->page);
	EXPECT_LE(faults, (long)(len / self->page / 8)) TH_LOG("%ld faults", faults);
	EXPECT_EQ(-1, sp_check(p, len, 0, 3));
	munmap(p, len);
}

/* The pages mapped around a fault are the right ones for the file offset. */
TEST_F(huge, first_touch_offset_mapping_right_pages)
{
	size_t len = 64 * self->page, off = 5 * self->page, mlen = 21 * self->page;
	uint8_t *p;

	ASSERT_EQ(0, sp_create_filled(self->fd, NULL, len, 0, 0600, 4));
	p = sp_map(self->fd, mlen, PROT_READ, off);
	ASSERT_NE(MAP_FAILED, p);
	/* One fault in the middle maps its neighbours: check them all. */
	EXPECT_EQ(sp_pattern(off + 9 * self->page, 4), p[9 * self->page]);
	EXPECT_EQ(-1, sp_check(p, mlen, off, 4));
	munmap(p, mlen);
}

/* Neighbours of a read fault in a PROT_READ mapping are not writable. */
TEST_F(huge, first_touch_neighbours_keep_protection)
{
	size_t len = 16 * self->page;
	volatile uint8_t *p;

	ASSERT_EQ(0, sp_create(self->fd, NULL, len, 0, 0600, NULL));
	p = sp_map(self->fd, len, PROT_READ, 0);
	ASSERT_NE(MAP_FAILED, p);
	EXPECT_EQ(0, p[0]);
	EXPECT_TRUE(write_segfaults(p + 3 * self->page));
	EXPECT_EQ(0, p[3 * self->page]);
	munmap((void *)p, len);
}

/* get_user_pages() finds pages that fault-around mapped (vmsplice pins them). */
TEST_F(huge, first_touch_neighbours_work_with_gup)
{
	size_t len = 16 * self->page;
	struct iovec iov;
	int pfd[2];
	char buf[64];
	uint8_t *p;

	ASSERT_EQ(0, sp_create_filled(self->fd, NULL, len, 0, 0600, 5));
	p = sp_map(self->fd, len, PROT_READ | PROT_WRITE, 0);
	ASSERT_NE(MAP_FAILED, p);
	EXPECT_EQ(sp_pattern(0, 5), p[0]);	/* maps pages 1..15 around it */
	ASSERT_EQ(0, pipe(pfd));
	iov.iov_base = p + 7 * self->page;
	iov.iov_len = sizeof(buf);
	EXPECT_EQ((ssize_t)sizeof(buf), vmsplice(pfd[1], &iov, 1, 0));
	EXPECT_EQ((ssize_t)sizeof(buf), read(pfd[0], buf, sizeof(buf)));
	EXPECT_EQ(-1, sp_check(buf, sizeof(buf), 7 * self->page, 5));
	close(pfd[0]);
	close(pfd[1]);
	munmap(p, len);
}

/* ---- SHMPOOL_CREATE_HUGE ---- */

/* The flag works exactly where the feature bit says; elsewhere EOPNOTSUPP. */
TEST_F(huge, huge_create_matches_feature)
{
	struct shmpool_info info;
	long long pages = sp_counter("pages");
	int ret;

	ret = sp_create(self->fd, NULL, PMD_BYTES, SHMPOOL_CREATE_HUGE, 0600, NULL);
	if (!self->have_huge) {
		EXPECT_EQ(-EOPNOTSUPP, ret);
		/* Refused before anything was allocated. */
		EXPECT_EQ(pages, sp_counter("pages"));
		return;
	}
	ASSERT_EQ(0, ret);
	ASSERT_EQ(0, sp_info(self->fd, &info, NULL, 0));
	EXPECT_TRUE(!!(info.pool_flags & SHMPOOL_POOL_HUGE));
}

TEST_F(huge, huge_flag_not_reported_without_it)
{
	struct shmpool_info info;

	ASSERT_EQ(0, sp_create(self->fd, NULL, PMD_BYTES, 0, 0600, NULL));
	ASSERT_EQ(0, sp_info(self->fd, &info, NULL, 0));
	EXPECT_FALSE(!!(info.pool_flags & SHMPOOL_POOL_HUGE));
}

TEST_F(huge, huge_map_private_refused)
{
	NEED_HUGE();
	ASSERT_EQ(0, sp_create(self->fd, NULL, PMD_BYTES, SHMPOOL_CREATE_HUGE,
			       0600, NULL));
	EXPECT_EQ(MAP_FAILED, mmap(NULL, PMD_BYTES, PROT_READ, MAP_PRIVATE,
				   self->fd, 0));
	EXPECT_EQ(EINVAL, errno);
}

/* Plain mmap() picks a 2 MiB-aligned address, and 2 MiB take one fault. */
TEST_F(huge, huge_one_fault_per_2mib)
{
	size_t len = 8 * MIB;
	long faults;
	uint8_t *p;

	NEED_HUGE();
	ASSERT_EQ(0, sp_create(self->fd, NULL, len, SHMPOOL_CREATE_HUGE, 0600, NULL));
	p = sp_map(self->fd, len, PROT_READ | PROT_WRITE, 0);
	ASSERT_NE(MAP_FAILED, p);
	EXPECT_EQ(0UL, (uintptr_t)p % PMD_BYTES) TH_LOG("mapped at %p", p);
	faults = touch_pages(p, len, self->page);
	/* 4 PMDs; slack for retried faults (4 KiB entries would take 128+). */
	EXPECT_LE(faults, 8) TH_LOG("%ld faults for %zu pages", faults,
				   len / self->page);
	EXPECT_EQ(1, p[0]);
	EXPECT_EQ((uint8_t)(len / self->page), p[len - self->page]);
	munmap(p, len);
}

/* The same pages as a 4 KiB mapping: data written one way reads the other. */
TEST_F(huge, huge_data_matches_offset_mapping)
{
	size_t len = 4 * MIB;
	uint8_t *p, *q;
	long faults;

	NEED_HUGE();
	ASSERT_EQ(0, sp_create(self->fd, NULL, len, SHMPOOL_CREATE_HUGE, 0600, NULL));
	p = map_at(self->fd, len, 0, 0);
	ASSERT_NE(MAP_FAILED, p);
	sp_fill(p, len, 0, 6);
	/* The second 2 MiB alone, at its own aligned address: one PMD. */
	q = map_at(self->fd, PMD_BYTES, PMD_BYTES, 0);
	ASSERT_NE(MAP_FAILED, q);
	faults = read_pages(q, PMD_BYTES, self->page);
	EXPECT_LE(faults, 2) TH_LOG("%ld faults", faults);
	EXPECT_EQ(-1, sp_check(q, PMD_BYTES, PMD_BYTES, 6));
	munmap(q, PMD_BYTES);
	/* Misaligned by a page (MAP_FIXED): 4 KiB entries, same data. */
	q = map_at(self->fd, PMD_BYTES, PMD_BYTES, self->page);
	ASSERT_NE(MAP_FAILED, q);
	faults = read_pages(q, PMD_BYTES, self->page);
	EXPECT_GE(faults, 16) TH_LOG("%ld faults", faults);
	EXPECT_EQ(-1, sp_check(q, PMD_BYTES, PMD_BYTES, 6));
	munmap(q, PMD_BYTES);
	munmap(p, len);
}

/* A size that is not a 2 MiB multiple: the tail is mapped with 4 KiB. */
TEST_F(huge, huge_unaligned_tail)
{
	size_t len = PMD_BYTES + 3 * self->page;
	uint8_t *p;

	NEED_HUGE();
	ASSERT_EQ(0, sp_create(self->fd, NULL, len, SHMPOOL_CREATE_HUGE, 0600, NULL));
	p = map_at(self->fd, len, 0, 0);
	ASSERT_NE(MAP_FAILED, p);
	sp_fill(p, len, 0, 7);
	EXPECT_EQ(-1, sp_check(p, len, 0, 7));
	munmap(p, len);
}

/* Another process opens the pool by name and sees and changes the data. */
TEST_F(huge, huge_data_across_processes)
{
	size_t len = 4 * MIB;
	uint8_t *p;
	pid_t pid;

	NEED_HUGE();
	ASSERT_EQ(0, sp_create(self->fd, self->name, len,
			       SHMPOOL_CREATE_HUGE | SHMPOOL_CREATE_EXCL, 0600, NULL));
	p = sp_map(self->fd, len, PROT_READ | PROT_WRITE, 0);
	ASSERT_NE(MAP_FAILED, p);
	sp_fill(p, len, 0, 8);
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		int fd = sp_open_dev(O_RDWR);
		uint8_t *q;

		sp_child_init();
		CHILD_CHECK(fd >= 0);
		CHILD_CHECK(sp_open_name(fd, self->name, 0, NULL) == 0);
		q = sp_map(fd, len, PROT_READ | PROT_WRITE, 0);
		CHILD_CHECK(q != MAP_FAILED);
		CHILD_CHECK(read_pages(q, len, self->page) <= 4);
		CHILD_CHECK(sp_check(q, len, 0, 8) == -1);
		sp_fill(q, len, 0, 9);
		_exit(0);
	}
	EXPECT_EQ(0, sp_wait(pid));
	EXPECT_EQ(-1, sp_check(p, len, 0, 9));
	munmap(p, len);
}

/* fork() children share the mapping both ways. */
TEST_F(huge, huge_fork_shares)
{
	size_t len = 4 * MIB;
	uint8_t *p;
	pid_t pid;

	NEED_HUGE();
	ASSERT_EQ(0, sp_create(self->fd, NULL, len, SHMPOOL_CREATE_HUGE, 0600, NULL));
	p = sp_map(self->fd, len, PROT_READ | PROT_WRITE, 0);
	ASSERT_NE(MAP_FAILED, p);
	sp_fill(p, len, 0, 10);
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		sp_child_init();
		CHILD_CHECK(sp_check(p, len, 0, 10) == -1);
		sp_fill(p, len, 0, 11);
		_exit(0);
	}
	EXPECT_EQ(0, sp_wait(pid));
	EXPECT_EQ(-1, sp_check(p, len, 0, 11));
	munmap(p, len);
}

/* munmap() of one page inside a 2 MiB entry: the rest stays, data intact. */
TEST_F(huge, huge_partial_munmap_splits)
{
	size_t len = 4 * MIB, hole = 100 * self->page;
	long faults;
	uint8_t *p;

	NEED_HUGE();
	ASSERT_EQ(0, sp_create(self->fd, NULL, len, SHMPOOL_CREATE_HUGE, 0600, NULL));
	p = map_at(self->fd, len, 0, 0);
	ASSERT_NE(MAP_FAILED, p);
	sp_fill(p, len, 0, 12);
	ASSERT_EQ(0, munmap(p + hole, self->page));
	/* The first 2 MiB fault back in with 4 KiB entries; the second is a PMD. */
	faults = read_pages(p, hole, self->page);
	faults += read_pages(p + hole + self->page, PMD_BYTES - hole - self->page,
			     self->page);
	EXPECT_GE(faults, 16) TH_LOG("%ld faults", faults);
	EXPECT_EQ(-1, sp_check(p, hole, 0, 12));
	EXPECT_EQ(-1, sp_check(p + hole + self->page, len - hole - self->page,
			       hole + self->page, 12));
	faults = read_pages(p + PMD_BYTES, PMD_BYTES, self->page);
	EXPECT_EQ(0, faults);
	munmap(p, len);
}

/* mprotect() of one page inside a 2 MiB entry: only that page is read-only. */
TEST_F(huge, huge_mprotect_splits)
{
	size_t len = 2 * MIB, at = 300 * self->page;
	uint8_t *p;

	NEED_HUGE();
	ASSERT_EQ(0, sp_create(self->fd, NULL, len, SHMPOOL_CREATE_HUGE, 0600, NULL));
	p = map_at(self->fd, len, 0, 0);
	ASSERT_NE(MAP_FAILED, p);
	sp_fill(p, len, 0, 13);
	ASSERT_EQ(0, mprotect(p + at, self->page, PROT_READ));
	EXPECT_TRUE(write_segfaults(p + at));
	EXPECT_FALSE(write_segfaults(p + at + self->page));	/* wrote 1 */
	EXPECT_EQ(1, p[at + self->page]);
	p[at + self->page] = sp_pattern(at + self->page, 13);
	p[at - 1] = sp_pattern(at - 1, 13);	/* still writable */
	EXPECT_EQ(-1, sp_check(p, len, 0, 13));
	ASSERT_EQ(0, mprotect(p + at, self->page, PROT_READ | PROT_WRITE));
	p[at] = sp_pattern(at, 13);
	EXPECT_EQ(-1, sp_check(p, len, 0, 13));
	munmap(p, len);
}

/* What the flag gives up: get_user_pages() on the mapping (vmsplice: EFAULT). */
TEST_F(huge, huge_gup_refused)
{
	size_t len = PMD_BYTES;
	struct iovec iov;
	int pfd[2];
	uint8_t *p;

	NEED_HUGE();
	ASSERT_EQ(0, sp_create(self->fd, NULL, len, SHMPOOL_CREATE_HUGE, 0600, NULL));
	p = map_at(self->fd, len, 0, 0);
	ASSERT_NE(MAP_FAILED, p);
	p[0] = 1;
	ASSERT_EQ(0, pipe(pfd));
	iov.iov_base = p;
	iov.iov_len = 64;
	EXPECT_EQ(-1, vmsplice(pfd[1], &iov, 1, 0));
	EXPECT_EQ(EFAULT, errno);
	/* A copy (write()) of the same bytes works. */
	EXPECT_EQ(64, write(pfd[1], p, 64));
	close(pfd[0]);
	close(pfd[1]);
	munmap(p, len);
}

/*
 * madvise(@advice) on part of a HUGE pool's mapping: EINVAL, as on any
 * VM_PFNMAP mapping (the Huge mappings DOC); the data stays.
 */
static void madvise_refused(struct __test_metadata *_metadata,
			    FIXTURE_DATA(huge) *self, int advice, unsigned int seed)
{
	size_t len = 4 * MIB;
	uint8_t *p;

	ASSERT_EQ(0, sp_create(self->fd, NULL, len, SHMPOOL_CREATE_HUGE, 0600, NULL));
	p = map_at(self->fd, len, 0, 0);
	ASSERT_NE(MAP_FAILED, p);
	sp_fill(p, len, 0, seed);
	EXPECT_EQ(-1, madvise(p + self->page, 2 * self->page, advice));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, sp_check(p, len, 0, seed));
	munmap(p, len);
}

/* MADV_DONTNEED: nothing is dropped. */
TEST_F(huge, huge_madvise_dontneed_refused)
{
	NEED_HUGE();
	madvise_refused(_metadata, self, MADV_DONTNEED, 14);
}

/* Unlike other pools' mappings (0, nothing reclaimed): MADV_COLD ... */
TEST_F(huge, huge_madvise_cold_refused)
{
	NEED_HUGE();
	madvise_refused(_metadata, self, MADV_COLD, 15);
}

/* ... and MADV_PAGEOUT. */
TEST_F(huge, huge_madvise_pageout_refused)
{
	NEED_HUGE();
	madvise_refused(_metadata, self, MADV_PAGEOUT, 16);
}

/* MADV_POPULATE_READ (get_user_pages() refuses VM_PFNMAP) ... */
TEST_F(huge, huge_madvise_populate_read_refused)
{
	NEED_HUGE();
	madvise_refused(_metadata, self, MADV_POPULATE_READ, 17);
}

/* ... and MADV_POPULATE_WRITE. */
TEST_F(huge, huge_madvise_populate_write_refused)
{
	NEED_HUGE();
	madvise_refused(_metadata, self, MADV_POPULATE_WRITE, 18);
}

/* The library's SHMPOOL_HUGE: the device's flag, mapped 2 MiB-aligned. */
TEST_F(huge, library_huge_flag_device)
{
	struct shmpool_pool_info info;
	struct shmpool *p;
	int ret;

	ret = shmpool_create_anon(4 * MIB, SHMPOOL_HUGE | SHMPOOL_BACKEND_DEVICE, &p);
	if (!self->have_huge) {
		EXPECT_EQ(-EOPNOTSUPP, ret);
		return;
	}
	ASSERT_EQ(0, ret);
	EXPECT_EQ(0UL, (uintptr_t)p->base % PMD_BYTES);
	ASSERT_EQ(0, shmpool_info(p, &info));
	EXPECT_TRUE(!!(info.flags & SHMPOOL_POOL_HUGE));
	EXPECT_LE(touch_pages(p->base, p->size, self->page), 4);
	EXPECT_EQ(0, shmpool_close(p));
}

/* memfd cannot do it: EOPNOTSUPP, as for SHMPOOL_CONTIG. */
TEST_F(huge, library_huge_flag_memfd_refused)
{
	struct shmpool *p;

	EXPECT_EQ(-EOPNOTSUPP, shmpool_create_anon(4 * MIB, SHMPOOL_HUGE |
						   SHMPOOL_BACKEND_MEMFD, &p));
}

TEST_HARNESS_MAIN
