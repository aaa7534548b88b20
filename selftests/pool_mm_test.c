/* pool_mm_test: what the kernel's mm does with pool mappings — PROT_EXEC, madvise, mlock, mremap, io_uring fixed buffers, FOLL_FORCE writes. */
// SPDX-License-Identifier: GPL-2.0
#define _GNU_SOURCE
#include <setjmp.h>
#include <stddef.h>
#include <sys/personality.h>
#include <sys/ptrace.h>
#include <sys/uio.h>

#include "shmpool_test_util.h"

FIXTURE(mm) {
	int fd;			/* O_RDWR, unbound */
	long page;
	struct shmpool_api api;
	char name[SHMPOOL_NAME_MAX];
};

FIXTURE_SETUP(mm)
{
	if (!sp_setup_dev(_metadata, &self->fd, &self->page, &self->api))
		return;
	sp_make_name(self->name, "mm");
}

FIXTURE_TEARDOWN(mm)
{
	sp_unlink_quiet(self->name);
	close(self->fd);
}

/* A named pool of @pages pages with pattern @seed, mode 0644, on self->fd. */
static int named_pool_with_data(FIXTURE_DATA(mm) *self, size_t pages,
				unsigned int seed, uint32_t flags)
{
	return sp_create_filled(self->fd, self->name, pages * self->page,
				SHMPOOL_CREATE_EXCL | flags, 0644, seed);
}

/* A new fd attached read-only to self->name, or -errno. */
static int open_read_only(FIXTURE_DATA(mm) *self)
{
	int ro = sp_open_dev(O_RDWR);
	int ret;

	if (ro < 0)
		return -errno;
	ret = sp_open_name(ro, self->name, SHMPOOL_OPEN_RDONLY, NULL);
	if (ret) {
		close(ro);
		return ret;
	}
	return ro;
}

/* ---- PROT_EXEC: refused unless the pool was created executable ---- */

TEST_F(mm, exec_feature_reported)
{
	EXPECT_EQ(SHMPOOL_FEAT_EXEC, self->api.features & SHMPOOL_FEAT_EXEC);
}

TEST_F(mm, exec_mmap_refused)
{
	ASSERT_EQ(0, sp_create(self->fd, NULL, self->page, 0, 0600, NULL));
	EXPECT_EQ(MAP_FAILED, sp_map(self->fd, self->page, PROT_READ | PROT_EXEC, 0));
	EXPECT_EQ(EPERM, errno);
}

TEST_F(mm, exec_mmap_write_exec_refused)
{
	ASSERT_EQ(0, sp_create(self->fd, NULL, self->page, 0, 0600, NULL));
	EXPECT_EQ(MAP_FAILED, sp_map(self->fd, self->page,
				     PROT_READ | PROT_WRITE | PROT_EXEC, 0));
	EXPECT_EQ(EPERM, errno);
}

TEST_F(mm, exec_mprotect_refused)
{
	char flags[256];
	void *p;

	ASSERT_EQ(0, sp_create(self->fd, NULL, self->page, 0, 0600, NULL));
	p = sp_map(self->fd, self->page, PROT_READ | PROT_WRITE, 0);
	ASSERT_NE(MAP_FAILED, p);
	ASSERT_EQ(0, sp_vm_flags_of(p, flags, sizeof(flags)));
	EXPECT_FALSE(sp_has_vm_flag(flags, "me")) TH_LOG("VmFlags:%s", flags);
	EXPECT_EQ(-1, mprotect(p, self->page, PROT_READ | PROT_EXEC));
	EXPECT_EQ(EACCES, errno);
	munmap(p, self->page);
}

/* The legacy personality turns PROT_READ into PROT_READ|PROT_EXEC. */
TEST_F(mm, exec_read_implies_exec_refused)
{
	pid_t pid;

	ASSERT_EQ(0, sp_create(self->fd, NULL, self->page, 0, 0600, NULL));
	fflush(NULL);
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		sp_child_init();
		CHILD_CHECK(personality(READ_IMPLIES_EXEC) != -1);
		CHILD_CHECK(sp_map(self->fd, self->page, PROT_READ, 0) == MAP_FAILED);
		CHILD_CHECK(errno == EPERM);
		_exit(0);
	}
	EXPECT_EQ(0, sp_wait(pid));
}

TEST_F(mm, exec_read_only_attachment_still_maps_read)
{
	int ro;
	void *p;

	ASSERT_EQ(0, named_pool_with_data(self, 2, 3, 0));
	ro = open_read_only(self);
	ASSERT_GE(ro, 0);
	p = sp_map(ro, 2 * self->page, PROT_READ, 0);
	ASSERT_NE(MAP_FAILED, p);
	EXPECT_EQ(-1, sp_check(p, 2 * self->page, 0, 3));
	munmap(p, 2 * self->page);
	EXPECT_EQ(MAP_FAILED, sp_map(ro, self->page, PROT_READ | PROT_EXEC, 0));
	EXPECT_EQ(EPERM, errno);
	close(ro);
}

#if defined(__x86_64__) || defined(__i386__)
#define SP_RET_INSN	0xc3	/* ret */
#endif

TEST_F(mm, exec_flag_allows_exec)
{
	struct shmpool_info info;
	char flags[256];
	uint8_t *w, *x;

	ASSERT_EQ(0, sp_create(self->fd, NULL, self->page, SHMPOOL_CREATE_EXEC,
			       0600, NULL));
	ASSERT_EQ(0, sp_info(self->fd, &info, NULL, 0));
	EXPECT_EQ(SHMPOOL_POOL_EXEC, info.pool_flags & SHMPOOL_POOL_EXEC);
	w = sp_map(self->fd, self->page, PROT_READ | PROT_WRITE, 0);
	ASSERT_NE(MAP_FAILED, w);
	x = sp_map(self->fd, self->page, PROT_READ | PROT_EXEC, 0);
	ASSERT_NE(MAP_FAILED, x);
	ASSERT_EQ(0, sp_vm_flags_of(x, flags, sizeof(flags)));
	EXPECT_TRUE(sp_has_vm_flag(flags, "ex")) TH_LOG("VmFlags:%s", flags);
	/* And mprotect can make the writable view executable too. */
	EXPECT_EQ(0, mprotect(w, self->page, PROT_READ | PROT_WRITE | PROT_EXEC));
#ifdef SP_RET_INSN
	/* Code written through one view runs through the other. */
	w[0] = SP_RET_INSN;
	__builtin___clear_cache((char *)x, (char *)x + 1);
	((void (*)(void))x)();
#endif
	munmap(x, self->page);
	munmap(w, self->page);
}

TEST_F(mm, exec_flag_not_reported_without_it)
{
	struct shmpool_info info;

	ASSERT_EQ(0, sp_create(self->fd, NULL, self->page, 0, 0600, NULL));
	ASSERT_EQ(0, sp_info(self->fd, &info, NULL, 0));
	EXPECT_EQ(0U, info.pool_flags & SHMPOOL_POOL_EXEC);
}

TEST_F(mm, exec_flag_read_only_attachment_may_exec_not_write)
{
	int ro;
	void *p;

	ASSERT_EQ(0, named_pool_with_data(self, 1, 4, SHMPOOL_CREATE_EXEC));
	ro = open_read_only(self);
	ASSERT_GE(ro, 0);
	p = sp_map(ro, self->page, PROT_READ | PROT_EXEC, 0);
	ASSERT_NE(MAP_FAILED, p);
	EXPECT_EQ(-1, sp_check(p, self->page, 0, 4));
	EXPECT_EQ(-1, mprotect(p, self->page, PROT_READ | PROT_WRITE | PROT_EXEC));
	EXPECT_EQ(EACCES, errno);
	munmap(p, self->page);
	close(ro);
}

TEST_HARNESS_MAIN
