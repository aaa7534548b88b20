/* pool_map_test: mmap of shmpool pools — what mmap/mprotect/mremap refuse, faults on every page, VMA split/move/fork, zeroing, a 64 MiB pool. */
// SPDX-License-Identifier: GPL-2.0
#define _GNU_SOURCE
#include <stddef.h>

#include "shmpool_test_util.h"

FIXTURE(map) {
	int fd;			/* O_RDWR, unbound */
	long page;
	struct shmpool_api api;
	char name[SHMPOOL_NAME_MAX];
};

FIXTURE_SETUP(map)
{
	if (!sp_setup_dev(_metadata, &self->fd, &self->page, &self->api))
		return;
	sp_make_name(self->name, "map");
}

FIXTURE_TEARDOWN(map)
{
	sp_unlink_quiet(self->name);
	close(self->fd);
}

/* A read-write attached named pool of @pages pages with a pattern in it. */
static int named_pool_with_data(FIXTURE_DATA(map) *self, size_t pages,
				unsigned int seed, uint32_t mode)
{
	return sp_create_filled(self->fd, self->name, pages * self->page,
				SHMPOOL_CREATE_EXCL, mode, seed);
}

/* ---- what works ---- */

TEST_F(map, anon_pool_map_write_read)
{
	size_t len = 16 * self->page;
	uint8_t *p, *q;

	ASSERT_EQ(0, sp_create(self->fd, NULL, len, 0, 0600, NULL));
	p = sp_map(self->fd, len, PROT_READ | PROT_WRITE, 0);
	ASSERT_NE(MAP_FAILED, p);
	EXPECT_EQ(-1, sp_check_byte(p, len, 0));
	sp_fill(p, len, 0, 1);
	EXPECT_EQ(-1, sp_check(p, len, 0, 1));
	/* A second mapping is the same memory, both ways. */
	q = sp_map(self->fd, len, PROT_READ | PROT_WRITE, 0);
	ASSERT_NE(MAP_FAILED, q);
	EXPECT_EQ(-1, sp_check(q, len, 0, 1));
	sp_fill(q, len, 0, 2);
	EXPECT_EQ(-1, sp_check(p, len, 0, 2));
	/* And it outlives both mappings while the fd holds the pool. */
	munmap(p, len);
	munmap(q, len);
	p = sp_map(self->fd, len, PROT_READ, 0);
	ASSERT_NE(MAP_FAILED, p);
	EXPECT_EQ(-1, sp_check(p, len, 0, 2));
	munmap(p, len);
}

TEST_F(map, fault_every_page)
{
	size_t pages = 256, len = pages * self->page, i;
	volatile uint8_t *p;
	uint8_t *q;

	ASSERT_EQ(0, sp_create(self->fd, NULL, len, 0, 0600, NULL));
	p = sp_map(self->fd, len, PROT_READ | PROT_WRITE, 0);
	ASSERT_NE(MAP_FAILED, p);
	/* Read faults first (nothing touched yet), from the last page down. */
	for (i = pages; i-- > 0;)
		ASSERT_EQ(0, p[i * self->page + self->page - 1]);
	/* Then write faults, first and last byte of every page. */
	for (i = 0; i < pages; i++) {
		p[i * self->page] = (uint8_t)(i + 1);
		p[i * self->page + self->page - 1] = (uint8_t)~i;
	}
	q = sp_map(self->fd, len, PROT_READ, 0);
	ASSERT_NE(MAP_FAILED, q);
	for (i = 0; i < pages; i++) {
		ASSERT_EQ((uint8_t)(i + 1), q[i * self->page]) TH_LOG("page %zu", i);
		ASSERT_EQ((uint8_t)~i, q[i * self->page + self->page - 1]);
	}
	munmap((void *)p, len);
	munmap(q, len);
}

TEST_F(map, mapping_at_offset_sees_that_offset)
{
	size_t pages = 8, len = pages * self->page, k;
	uint8_t *p, *q;

	ASSERT_EQ(0, sp_create(self->fd, NULL, len, 0, 0600, NULL));
	p = sp_map(self->fd, len, PROT_READ | PROT_WRITE, 0);
	ASSERT_NE(MAP_FAILED, p);
	sp_fill(p, len, 0, 3);
	for (k = 1; k < pages; k++) {
		q = sp_map(self->fd, len - k * self->page, PROT_READ | PROT_WRITE,
			   k * self->page);
		ASSERT_NE(MAP_FAILED, q) TH_LOG("offset page %zu: %s", k, strerror(errno));
		EXPECT_EQ(-1, sp_check(q, len - k * self->page, k * self->page, 3));
		munmap(q, len - k * self->page);
	}
	/* The last page alone, written through the offset mapping. */
	q = sp_map(self->fd, self->page, PROT_READ | PROT_WRITE, len - self->page);
	ASSERT_NE(MAP_FAILED, q);
	q[0] = 0x77;
	EXPECT_EQ(0x77, p[len - self->page]);
	munmap(q, self->page);
	munmap(p, len);
}

TEST_F(map, read_write_mapping_can_mprotect_write)
{
	size_t len = 2 * self->page;
	uint8_t *p;

	ASSERT_EQ(0, sp_create(self->fd, NULL, len, 0, 0600, NULL));
	p = sp_map(self->fd, len, PROT_READ, 0);
	ASSERT_NE(MAP_FAILED, p);
	ASSERT_EQ(0, mprotect(p, len, PROT_READ | PROT_WRITE));
	p[len - 1] = 9;
	EXPECT_EQ(9, p[len - 1]);
	munmap(p, len);
}

TEST_F(map, madvise_dontneed_keeps_data)
{
	size_t len = 32 * self->page;
	uint8_t *p;

	ASSERT_EQ(0, sp_create(self->fd, NULL, len, 0, 0600, NULL));
	p = sp_map(self->fd, len, PROT_READ | PROT_WRITE, 0);
	ASSERT_NE(MAP_FAILED, p);
	sp_fill(p, len, 0, 4);
	/* Zapping the PTEs of a shared mapping must fault the same pages back. */
	if (madvise(p, len, MADV_DONTNEED) && errno == ENOSYS)
		SKIP(goto out, "madvise() not built in (CONFIG_ADVISE_SYSCALLS)");
	ASSERT_EQ(0, madvise(p, len, MADV_DONTNEED));
	EXPECT_EQ(-1, sp_check(p, len, 0, 4));
out:
	munmap(p, len);
}

TEST_F(map, mapping_vm_flags)
{
	char flags[256];
	size_t len = 2 * self->page;
	void *p;

	ASSERT_EQ(0, sp_create(self->fd, NULL, len, 0, 0600, NULL));
	p = sp_map(self->fd, len, PROT_READ | PROT_WRITE, 0);
	ASSERT_NE(MAP_FAILED, p);
	ASSERT_EQ(0, sp_vm_flags_of(p, flags, sizeof(flags)));
	EXPECT_TRUE(sp_has_vm_flag(flags, "sh")) TH_LOG("VmFlags:%s", flags);
	EXPECT_TRUE(sp_has_vm_flag(flags, "mw")) TH_LOG("VmFlags:%s", flags);
	/* Not expandable, not in core dumps. */
	EXPECT_TRUE(sp_has_vm_flag(flags, "de")) TH_LOG("VmFlags:%s", flags);
	EXPECT_TRUE(sp_has_vm_flag(flags, "dd")) TH_LOG("VmFlags:%s", flags);
	munmap(p, len);
}

/* Generous: every page faults, and the debug lane's kernel is slow at it. */
TEST_F_TIMEOUT(map, pages_zeroed_after_dirty_pool_freed, 120)
{
	size_t len = 4 << 20;
	long long before = sp_counter("pages");
	unsigned int round;
	uint8_t *p;

	if ((uint64_t)len > self->api.max_pool_bytes)
		len = self->api.max_pool_bytes;
	ASSERT_GE(before, 0);
	for (round = 0; round < 4; round++) {
		uint32_t flags = round & 1 ? SHMPOOL_CREATE_CONTIG : 0;
		/* 1 MiB: a block size that is free in any freshly booted VM. */
		size_t l = !flags ? len : self->api.max_contig_bytes < (1 << 20) ?
			   self->api.max_contig_bytes : 1 << 20;
		int fd = sp_open_dev(O_RDWR);

		ASSERT_GE(fd, 0);
		ASSERT_EQ(0, sp_create(fd, NULL, l, flags, 0600, NULL));
		p = sp_map(fd, l, PROT_READ | PROT_WRITE, 0);
		ASSERT_NE(MAP_FAILED, p);
		/* Whatever the previous round left must not show. */
		EXPECT_EQ(-1, sp_check_byte(p, l, 0)) TH_LOG("round %u", round);
		memset(p, 0xAA, l);
		munmap(p, l);
		close(fd);
		EXPECT_EQ(before, sp_counter("pages")) TH_LOG("round %u", round);
	}
}

TEST_F_TIMEOUT(map, large_pool_64mib_fully_usable, 180)
{
	const size_t len = 64 << 20;
	struct shmpool_info info;
	long long before = sp_counter("pages");
	uint64_t *w;
	size_t i, words = len / sizeof(*w);

	if ((uint64_t)len > self->api.max_pool_bytes ||
	    (uint64_t)len > self->api.max_total_bytes)
		SKIP(return, "max_pool_bytes/max_total_bytes below 64 MiB");
	ASSERT_GE(before, 0);
	ASSERT_EQ(0, sp_create(self->fd, NULL, len, 0, 0600, NULL));
	EXPECT_EQ(before + (long long)(len / self->page), sp_counter("pages"));
	ASSERT_EQ(0, sp_info(self->fd, &info, NULL, 0));
	EXPECT_GT(info.nr_extents, 1U);
	EXPECT_GE(info.nr_extents, len / self->api.max_contig_bytes);
	w = sp_map(self->fd, len, PROT_READ | PROT_WRITE, 0);
	ASSERT_NE(MAP_FAILED, w);
	for (i = 0; i < words; i++)
		w[i] = i * 0x9e3779b97f4a7c15ULL;
	for (i = 0; i < words; i++)
		if (w[i] != i * 0x9e3779b97f4a7c15ULL)
			break;
	EXPECT_EQ(words, i) TH_LOG("first bad word at byte %zu", i * sizeof(*w));
	munmap(w, len);
	close(self->fd);
	self->fd = -1;
	EXPECT_EQ(before, sp_counter("pages"));
}

/* ---- what mmap, mprotect and mremap refuse ---- */

TEST_F(map, mmap_private_rejected)
{
	size_t len = 2 * self->page;

	ASSERT_EQ(0, sp_create(self->fd, NULL, len, 0, 0600, NULL));
	EXPECT_EQ(MAP_FAILED, mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE,
				   self->fd, 0));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(MAP_FAILED, mmap(NULL, len, PROT_READ, MAP_PRIVATE, self->fd, 0));
	EXPECT_EQ(EINVAL, errno);
}

TEST_F(map, mmap_longer_than_pool)
{
	size_t len = 4 * self->page;

	ASSERT_EQ(0, sp_create(self->fd, NULL, len, 0, 0600, NULL));
	EXPECT_EQ(MAP_FAILED, sp_map(self->fd, len + self->page,
				     PROT_READ | PROT_WRITE, 0));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(MAP_FAILED, sp_map(self->fd, 2 * len, PROT_READ, 0));
	EXPECT_EQ(EINVAL, errno);
}

TEST_F(map, mmap_offset_at_end)
{
	size_t len = 4 * self->page;

	ASSERT_EQ(0, sp_create(self->fd, NULL, len, 0, 0600, NULL));
	EXPECT_EQ(MAP_FAILED, sp_map(self->fd, self->page, PROT_READ, len));
	EXPECT_EQ(EINVAL, errno);
}

TEST_F(map, mmap_offset_plus_length_past_end)
{
	size_t len = 4 * self->page;

	ASSERT_EQ(0, sp_create(self->fd, NULL, len, 0, 0600, NULL));
	EXPECT_EQ(MAP_FAILED, sp_map(self->fd, len, PROT_READ, self->page));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(MAP_FAILED, sp_map(self->fd, 2 * self->page, PROT_READ,
				     len - self->page));
	EXPECT_EQ(EINVAL, errno);
}

TEST_F(map, mmap_huge_offset)
{
	size_t len = 4 * self->page;
	off_t offs[] = { (off_t)1 << 40, INT64_MAX - self->page + 1,
			 INT64_MAX / 2 + 1 };
	unsigned int i;

	ASSERT_EQ(0, sp_create(self->fd, NULL, len, 0, 0600, NULL));
	for (i = 0; i < sizeof(offs) / sizeof(offs[0]); i++) {
		off_t off = offs[i] & ~((off_t)self->page - 1);

		EXPECT_EQ(MAP_FAILED, sp_map(self->fd, self->page, PROT_READ, off))
			TH_LOG("offset %#llx mapped", (unsigned long long)off);
		/* Past the largest file offset the VFS answers first. */
		EXPECT_TRUE(errno == EINVAL || errno == EOVERFLOW)
			TH_LOG("offset %#llx: errno %d", (unsigned long long)off, errno);
	}
}

/* /dev/shmpool is a scope fd, no pool: it cannot be mapped. */
TEST_F(map, mmap_scope_fd)
{
	EXPECT_EQ(MAP_FAILED, sp_map(self->fd, self->page, PROT_READ, 0));
	EXPECT_EQ(ENODEV, errno);
	EXPECT_EQ(MAP_FAILED, sp_map(self->fd, self->page, PROT_READ | PROT_WRITE, 0));
	EXPECT_EQ(ENODEV, errno);
}

TEST_F(map, mremap_growth_fails)
{
	size_t len = 4 * self->page;
	uint8_t *p, *q;

	ASSERT_EQ(0, sp_create(self->fd, NULL, len, 0, 0600, NULL));
	p = sp_map(self->fd, len, PROT_READ | PROT_WRITE, 0);
	ASSERT_NE(MAP_FAILED, p);
	sp_fill(p, len, 0, 5);
	/* Past the pool, in place and moving. */
	EXPECT_EQ(MAP_FAILED, mremap(p, len, len + self->page, 0));
	EXPECT_TRUE(errno == EFAULT || errno == ENOMEM) TH_LOG("errno %d", errno);
	EXPECT_EQ(MAP_FAILED, mremap(p, len, len + self->page, MREMAP_MAYMOVE));
	EXPECT_TRUE(errno == EFAULT || errno == ENOMEM) TH_LOG("errno %d", errno);
	EXPECT_EQ(-1, sp_check(p, len, 0, 5));
	munmap(p, len);

	/* Even within the pool: a mapping never grows. */
	p = sp_map(self->fd, self->page, PROT_READ | PROT_WRITE, 0);
	ASSERT_NE(MAP_FAILED, p);
	q = mremap(p, self->page, 2 * self->page, MREMAP_MAYMOVE);
	EXPECT_EQ(MAP_FAILED, q);
	EXPECT_TRUE(errno == EFAULT || errno == ENOMEM) TH_LOG("errno %d", errno);
	if (q != MAP_FAILED)
		p = q;
	EXPECT_EQ(-1, sp_check(p, self->page, 0, 5));
	munmap(p, q == MAP_FAILED ? self->page : 2 * self->page);
}

TEST_F(map, mremap_shrink_keeps_data)
{
	size_t len = 4 * self->page;
	uint8_t *p, *q;

	ASSERT_EQ(0, sp_create(self->fd, NULL, len, 0, 0600, NULL));
	p = sp_map(self->fd, len, PROT_READ | PROT_WRITE, 0);
	ASSERT_NE(MAP_FAILED, p);
	sp_fill(p, len, 0, 6);
	q = mremap(p, len, 2 * self->page, 0);
	ASSERT_EQ(p, q);
	EXPECT_EQ(-1, sp_check(q, 2 * self->page, 0, 6));
	munmap(q, 2 * self->page);
}

TEST_F(map, read_only_attachment_mmap_write)
{
	int ro = sp_open_dev(O_RDWR);
	uint8_t *p;

	ASSERT_GE(ro, 0);
	ASSERT_EQ(0, named_pool_with_data(self, 4, 7, 0644));
	ASSERT_EQ(0, sp_open_name(ro, self->name, SHMPOOL_OPEN_RDONLY, NULL));
	/* The device fd is O_RDWR: only the attachment says read-only. */
	EXPECT_EQ(MAP_FAILED, sp_map(ro, 4 * self->page, PROT_READ | PROT_WRITE, 0));
	EXPECT_EQ(EACCES, errno);
	EXPECT_EQ(MAP_FAILED, sp_map(ro, self->page, PROT_WRITE, self->page));
	EXPECT_EQ(EACCES, errno);
	p = sp_map(ro, 4 * self->page, PROT_READ, 0);
	ASSERT_NE(MAP_FAILED, p);
	EXPECT_EQ(-1, sp_check(p, 4 * self->page, 0, 7));
	munmap(p, 4 * self->page);
	close(ro);
}

TEST_F(map, read_only_attachment_mprotect_write)
{
	struct shmpool_info info;
	char flags[256];
	int ro = sp_open_dev(O_RDWR);
	uint8_t *p, *w;

	ASSERT_GE(ro, 0);
	ASSERT_EQ(0, named_pool_with_data(self, 4, 8, 0644));
	ASSERT_EQ(0, sp_open_name(ro, self->name, SHMPOOL_OPEN_RDONLY, NULL));
	ASSERT_EQ(0, sp_info(ro, &info, NULL, 0));
	EXPECT_EQ(SHMPOOL_POOL_RDONLY, info.pool_flags & SHMPOOL_POOL_RDONLY);
	p = sp_map(ro, 4 * self->page, PROT_READ, 0);
	ASSERT_NE(MAP_FAILED, p);
	EXPECT_EQ(-1, mprotect(p, 4 * self->page, PROT_READ | PROT_WRITE));
	EXPECT_EQ(EACCES, errno);
	EXPECT_EQ(-1, mprotect(p + self->page, self->page, PROT_WRITE));
	EXPECT_EQ(EACCES, errno);
	ASSERT_EQ(0, sp_vm_flags_of(p, flags, sizeof(flags)));
	EXPECT_FALSE(sp_has_vm_flag(flags, "mw")) TH_LOG("VmFlags:%s", flags);
	/* Still a live view of what the writer does. */
	w = sp_map(self->fd, self->page, PROT_READ | PROT_WRITE, 0);
	ASSERT_NE(MAP_FAILED, w);
	w[0] = 0x42;
	EXPECT_EQ(0x42, p[0]);
	munmap(w, self->page);
	munmap(p, 4 * self->page);
	close(ro);
}

TEST_F(map, read_only_device_fd_maps_read_only)
{
	int ro = sp_open_dev(O_RDONLY);
	uint8_t *p;

	ASSERT_GE(ro, 0);
	ASSERT_EQ(0, named_pool_with_data(self, 2, 9, 0644));
	ASSERT_EQ(0, sp_open_name(ro, self->name, SHMPOOL_OPEN_RDONLY, NULL));
	p = sp_map(ro, 2 * self->page, PROT_READ, 0);
	ASSERT_NE(MAP_FAILED, p);
	EXPECT_EQ(-1, sp_check(p, 2 * self->page, 0, 9));
	munmap(p, 2 * self->page);
	EXPECT_EQ(MAP_FAILED, sp_map(ro, 2 * self->page, PROT_READ | PROT_WRITE, 0));
	EXPECT_EQ(EACCES, errno);
	close(ro);
}

/* ---- VMAs split, moved and copied ---- */

/* Child: drop the first 4 pages, move the rest, check and write seed 2. */
static int fork_split_child(uint8_t *p, size_t page)
{
	uint8_t *dst, *moved;

	sp_child_init();
	CHILD_CHECK(munmap(p, 4 * page) == 0);
	dst = mmap(NULL, 12 * page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHILD_CHECK(dst != MAP_FAILED);
	moved = mremap(p + 4 * page, 12 * page, 12 * page,
		       MREMAP_MAYMOVE | MREMAP_FIXED, dst);
	CHILD_CHECK(moved == dst);
	CHILD_CHECK(sp_check(moved, 12 * page, 4 * page, 1) == -1);
	/* Pool pages 8..11 get seed 2. */
	sp_fill(moved + 4 * page, 4 * page, 8 * page, 2);
	CHILD_CHECK(munmap(moved, 12 * page) == 0);
	return 0;
}

TEST_F(map, fork_partial_munmap_mremap_keep_data)
{
	size_t page = self->page, len = 16 * page;
	long long before = sp_counter("pages");
	struct shmpool_info info;
	uint8_t *p, *dst, *moved;
	pid_t pid;

	ASSERT_GE(before, 0);
	ASSERT_EQ(0, sp_create(self->fd, NULL, len, 0, 0600, NULL));
	p = sp_map(self->fd, len, PROT_READ | PROT_WRITE, 0);
	ASSERT_NE(MAP_FAILED, p);
	sp_fill(p, len, 0, 1);
	ASSERT_EQ(0, sp_info(self->fd, &info, NULL, 0));
	EXPECT_EQ(1U, info.mappings);
	/* From here on only VMAs hold the pool. */
	close(self->fd);
	self->fd = -1;

	fflush(NULL);
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0)
		_exit(fork_split_child(p, page));
	ASSERT_EQ(0, sp_wait(pid));
	EXPECT_EQ(before + 16, sp_counter("pages"));

	/* Parent: cut off the tail, punch a hole, move a middle piece. */
	ASSERT_EQ(0, munmap(p + 12 * page, 4 * page));
	ASSERT_EQ(0, munmap(p + 6 * page, page));
	dst = mmap(NULL, 5 * page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, dst);
	moved = mremap(p + 7 * page, 5 * page, 5 * page,
		       MREMAP_MAYMOVE | MREMAP_FIXED, dst);
	ASSERT_EQ(dst, moved);

	EXPECT_EQ(-1, sp_check(p, 6 * page, 0, 1));
	EXPECT_EQ(-1, sp_check(moved, page, 7 * page, 1));
	EXPECT_EQ(-1, sp_check(moved + page, 4 * page, 8 * page, 2));
	EXPECT_EQ(before + 16, sp_counter("pages"));

	/* The pool goes when its last piece of mapping does. */
	ASSERT_EQ(0, munmap(p, 6 * page));
	EXPECT_EQ(before + 16, sp_counter("pages"));
	ASSERT_EQ(0, munmap(moved, 5 * page));
	EXPECT_EQ(before, sp_counter("pages"));
}

TEST_HARNESS_MAIN
