/* lib_pool_test: libshmpool pool handles (create/open/adopt/unlink/info) on the memfd and device backends. */
// SPDX-License-Identifier: MIT
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "shmpool.h"
/* the 6.1 harness leaves parameters unused and defines unprototyped functions */
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#include "kselftest_harness.h"
#include "lib_test.h"

#define DEV_PATH	"/dev/shmpool"
#define NOBODY		65534

static size_t page_size(void)
{
	return (size_t)sysconf(_SC_PAGESIZE);
}

/* Exit code of @pid, or 128 + the signal that killed it, or -1. */
static int wait_child(pid_t pid)
{
	int status;

	if (waitpid(pid, &status, 0) != pid)
		return -1;
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return -1;
}

static int send_fd(int sock, int fd)
{
	char byte = 'F';
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} u;
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	struct msghdr msg = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = u.buf,
		.msg_controllen = sizeof(u.buf),
	};
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);

	memset(u.buf, 0, sizeof(u.buf));
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	return sendmsg(sock, &msg, 0) == 1 ? 0 : -errno;
}

static int recv_fd(int sock)
{
	char byte;
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} u;
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	struct msghdr msg = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = u.buf,
		.msg_controllen = sizeof(u.buf),
	};
	struct cmsghdr *c;
	int fd;

	if (recvmsg(sock, &msg, MSG_CMSG_CLOEXEC) != 1)
		return -errno;
	c = CMSG_FIRSTHDR(&msg);
	if (!c || c->cmsg_type != SCM_RIGHTS ||
	    c->cmsg_len != CMSG_LEN(sizeof(int)))
		return -EPROTO;
	memcpy(&fd, CMSG_DATA(c), sizeof(int));
	return fd;
}

/* Write to a read-only pool in a child; returns how the child ended. */
static int child_write(void *addr)
{
	pid_t pid = fork();

	if (pid == 0) {
		/* sanitizers catch SIGSEGV themselves; we want to die of it */
		signal(SIGSEGV, SIG_DFL);
		*(volatile char *)addr = 1;
		_exit(0);
	}
	return wait_child(pid);
}

FIXTURE(pool) {
	char name[SHMPOOL_NAME_MAX];
	size_t page;
};

FIXTURE_VARIANT(pool) {
	unsigned int backend;	/* SHMPOOL_BACKEND_* flag forced on every call */
};

FIXTURE_VARIANT_ADD(pool, memfd) {
	.backend = SHMPOOL_BACKEND_MEMFD,
};

FIXTURE_VARIANT_ADD(pool, device) {
	.backend = SHMPOOL_BACKEND_DEVICE,
};

FIXTURE_SETUP(pool)
{
	/*
	 * 6.1's harness would still run the test after SKIP() here; leave
	 * through its abort path instead (skip is set, teardown not run).
	 */
	if (variant->backend == SHMPOOL_BACKEND_DEVICE &&
	    access(DEV_PATH, R_OK | W_OK))
		SKIP(longjmp(_metadata->env, 1), DEV_PATH " not available");
	SKIP_MEMFD_IN_DEVICE_LANE(variant->backend);
	/* each test runs in its own process: the pid makes the name unique */
	snprintf(self->name, sizeof(self->name), "lpt.%d", (int)getpid());
	self->page = page_size();
	umask(022);
}

FIXTURE_TEARDOWN(pool)
{
	shmpool_unlink(self->name, variant->backend);
}

/* Create by name, then check everything a new pool must be. */
TEST_F(pool, create_new)
{
	struct shmpool_pool_info info;
	struct shmpool *p;
	unsigned char *b;
	size_t i;

	ASSERT_EQ(0, shmpool_create(self->name, 4 * self->page, 0640,
				    variant->backend, &p));
	EXPECT_EQ(1, shmpool_created(p));
	EXPECT_EQ((int)variant->backend, shmpool_backend(p));
	EXPECT_EQ(4 * self->page, shmpool_size(p));
	EXPECT_LE(0, shmpool_fd(p));
	b = shmpool_base(p);
	ASSERT_NE(NULL, b);
	for (i = 0; i < 4 * self->page; i++)
		if (b[i])
			break;
	EXPECT_EQ(4 * self->page, i) TH_LOG("pool not zeroed at %zu", i);
	b[0] = 0xa5;
	b[4 * self->page - 1] = 0x5a;

	ASSERT_EQ(0, shmpool_info(p, &info));
	EXPECT_EQ(4 * self->page, info.bytes);
	EXPECT_EQ((int)variant->backend, info.backend);
	EXPECT_EQ(SHMPOOL_POOL_NAMED, info.flags);
	EXPECT_EQ(0640U, info.mode);
	EXPECT_EQ(geteuid(), info.uid);
	EXPECT_EQ(getegid(), info.gid);
	EXPECT_STREQ(self->name, info.name);
	EXPECT_LE(1U, info.nr_extents);
	if (variant->backend == SHMPOOL_BACKEND_DEVICE) {
		EXPECT_EQ(0U, info.lacks & SHMPOOL_CAP_ACCESS_CONTROL);
		EXPECT_EQ(0U, info.lacks & SHMPOOL_CAP_USAGE);
		/* a module with attachments (API 3) tells of deaths */
		EXPECT_EQ(0U, info.lacks & SHMPOOL_CAP_DEATH_NOTICE);
		EXPECT_EQ(1U, info.attachments);
		EXPECT_EQ(1U, info.mappings);
	} else {
		EXPECT_EQ(SHMPOOL_CAP_CONTIG | SHMPOOL_CAP_ACCOUNTING |
			  SHMPOOL_CAP_ACCESS_CONTROL | SHMPOOL_CAP_USAGE |
			  SHMPOOL_CAP_NOTIFY | SHMPOOL_CAP_DEATH_NOTICE, info.lacks);
	}
	EXPECT_EQ(0, shmpool_close(p));
}

/* The umask applies to the mode, as for shm_open(). */
TEST_F(pool, create_applies_umask)
{
	struct shmpool_pool_info info;
	struct shmpool *p;

	umask(027);
	ASSERT_EQ(0, shmpool_create(self->name, self->page, 0666,
				    variant->backend, &p));
	ASSERT_EQ(0, shmpool_info(p, &info));
	EXPECT_EQ(0640U, info.mode);
	shmpool_close(p);
}

static void expect_bad_name(struct __test_metadata *_metadata,
			    unsigned int backend, const char *name)
{
	struct shmpool *p = NULL;

	EXPECT_EQ(-EINVAL, shmpool_create(name, page_size(), 0600, backend, &p));
	EXPECT_EQ(-EINVAL, shmpool_create(name, page_size(), 0600,
					  backend | SHMPOOL_EXCL, &p));
	EXPECT_EQ(-EINVAL, shmpool_open(name, backend, &p));
	EXPECT_EQ(-EINVAL, shmpool_unlink(name, backend));
	EXPECT_EQ(NULL, p);
}

TEST_F(pool, name_empty)
{
	expect_bad_name(_metadata, variant->backend, "");
}

TEST_F(pool, name_null)
{
	expect_bad_name(_metadata, variant->backend, NULL);
}

TEST_F(pool, name_64_chars)
{
	char name[65];

	memset(name, 'a', 64);
	name[64] = '\0';
	expect_bad_name(_metadata, variant->backend, name);
}

TEST_F(pool, name_slash)
{
	expect_bad_name(_metadata, variant->backend, "a/b");
}

TEST_F(pool, name_dotdot_slash)
{
	expect_bad_name(_metadata, variant->backend, "../etc");
}

TEST_F(pool, name_space)
{
	expect_bad_name(_metadata, variant->backend, "a b");
}

TEST_F(pool, name_control_char)
{
	expect_bad_name(_metadata, variant->backend, "a\nb");
}

TEST_F(pool, name_non_ascii)
{
	expect_bad_name(_metadata, variant->backend, "caf\xc3\xa9");
}

TEST_F(pool, name_shell_chars)
{
	expect_bad_name(_metadata, variant->backend, "a*b");
}

/* 63 characters of every allowed kind is the longest good name. */
TEST_F(pool, name_63_chars)
{
	struct shmpool *p;
	char name[64];
	size_t i;

	for (i = 0; i < 63; i++)
		name[i] = "aZ09._-"[i % 7];
	name[63] = '\0';
	ASSERT_EQ(0, shmpool_create(name, self->page, 0600,
				    variant->backend | SHMPOOL_EXCL, &p));
	EXPECT_EQ(0, shmpool_close(p));
	ASSERT_EQ(0, shmpool_open(name, variant->backend, &p));
	EXPECT_EQ(0, shmpool_close(p));
	EXPECT_EQ(0, shmpool_unlink(name, variant->backend));
}

TEST_F(pool, size_zero)
{
	struct shmpool *p = NULL;

	EXPECT_EQ(-EINVAL, shmpool_create(self->name, 0, 0600,
					  variant->backend, &p));
	EXPECT_EQ(-EINVAL, shmpool_create_anon(0, variant->backend, &p));
	EXPECT_EQ(NULL, p);
	EXPECT_EQ(-ENOENT, shmpool_open(self->name, variant->backend, &p));
}

TEST_F(pool, size_not_page_multiple)
{
	struct shmpool *p = NULL;

	EXPECT_EQ(-EINVAL, shmpool_create(self->name, self->page + 1, 0600,
					  variant->backend, &p));
	EXPECT_EQ(-EINVAL, shmpool_create(self->name, self->page / 2, 0600,
					  variant->backend, &p));
	EXPECT_EQ(-EINVAL, shmpool_create_anon(self->page - 1,
					       variant->backend, &p));
	EXPECT_EQ(NULL, p);
	EXPECT_EQ(-ENOENT, shmpool_open(self->name, variant->backend, &p));
}

TEST_F(pool, mode_above_0777)
{
	struct shmpool *p = NULL;

	EXPECT_EQ(-EINVAL, shmpool_create(self->name, self->page, 01777,
					  variant->backend, &p));
	EXPECT_EQ(-EINVAL, shmpool_create(self->name, self->page, 04600,
					  variant->backend, &p));
	EXPECT_EQ(NULL, p);
}

TEST_F(pool, flags_unknown)
{
	struct shmpool *p = NULL;

	EXPECT_EQ(-EINVAL, shmpool_create(self->name, self->page, 0600,
					  variant->backend | (1U << 30), &p));
	EXPECT_EQ(-EINVAL, shmpool_create_anon(self->page,
					       variant->backend | (1U << 5),
					       &p));
	EXPECT_EQ(-EINVAL, shmpool_open(self->name,
					variant->backend | (1U << 31), &p));
	EXPECT_EQ(-EINVAL, shmpool_unlink(self->name,
					  variant->backend | SHMPOOL_EXCL));
	EXPECT_EQ(NULL, p);
}

/* Flags that mean nothing for a call are refused, not ignored. */
TEST_F(pool, flags_misplaced)
{
	struct shmpool *p = NULL;

	EXPECT_EQ(-EINVAL, shmpool_create(self->name, self->page, 0600,
					  variant->backend | SHMPOOL_RDONLY,
					  &p));
	EXPECT_EQ(-EINVAL, shmpool_create_anon(self->page,
					       variant->backend | SHMPOOL_EXCL,
					       &p));
	EXPECT_EQ(-EINVAL, shmpool_create_anon(self->page,
					       variant->backend |
					       SHMPOOL_RDONLY, &p));
	EXPECT_EQ(-EINVAL, shmpool_open(self->name,
					variant->backend | SHMPOOL_EXCL, &p));
	EXPECT_EQ(NULL, p);
}

/*
 * Not executable unless created with SHMPOOL_EXEC: the device refuses
 * PROT_EXEC; memfd can only keep x bits off the file (see shmpool_create()).
 */
TEST_F(pool, exec_only_with_flag)
{
	struct shmpool *p, *x;
	struct stat st;
	void *m;

	ASSERT_EQ(0, shmpool_create(self->name, self->page, 0777,
				    variant->backend | SHMPOOL_EXCL, &p));
	ASSERT_EQ(0, fstat(shmpool_fd(p), &st));
	m = mmap(NULL, self->page, PROT_READ | PROT_EXEC, MAP_SHARED,
		 shmpool_fd(p), 0);
	if (variant->backend == SHMPOOL_BACKEND_DEVICE) {
		EXPECT_EQ(MAP_FAILED, m);
		EXPECT_EQ(EPERM, errno);
	} else {
		EXPECT_EQ(0U, st.st_mode & 0111);
	}
	if (m != MAP_FAILED)
		munmap(m, self->page);
	shmpool_close(p);
	EXPECT_EQ(0, shmpool_unlink(self->name, variant->backend));

	ASSERT_EQ(0, shmpool_create(self->name, self->page, 0777, variant->backend |
				    SHMPOOL_EXCL | SHMPOOL_EXEC, &p));
	ASSERT_EQ(0, fstat(shmpool_fd(p), &st));
	if (variant->backend == SHMPOOL_BACKEND_MEMFD)
		EXPECT_EQ(0111U, st.st_mode & 0111);	/* umask 022 */
	m = mmap(NULL, self->page, PROT_READ | PROT_EXEC, MAP_SHARED,
		 shmpool_fd(p), 0);
	EXPECT_NE(MAP_FAILED, m);
	if (m != MAP_FAILED)
		munmap(m, self->page);
	shmpool_close(p);

	ASSERT_EQ(0, shmpool_create_anon(self->page,
					 variant->backend | SHMPOOL_EXEC, &x));
	m = mmap(NULL, self->page, PROT_READ | PROT_EXEC, MAP_SHARED,
		 shmpool_fd(x), 0);
	EXPECT_NE(MAP_FAILED, m);
	if (m != MAP_FAILED)
		munmap(m, self->page);
	shmpool_close(x);
	EXPECT_EQ(-EINVAL, shmpool_open(self->name,
					variant->backend | SHMPOOL_EXEC, &p));
}

TEST_F(pool, flags_both_backends)
{
	const unsigned int both = SHMPOOL_BACKEND_DEVICE |
				  SHMPOOL_BACKEND_MEMFD;
	struct shmpool *p = NULL;

	EXPECT_EQ(-EINVAL, shmpool_create(self->name, self->page, 0600,
					  both, &p));
	EXPECT_EQ(-EINVAL, shmpool_create_anon(self->page, both, &p));
	EXPECT_EQ(-EINVAL, shmpool_open(self->name, both, &p));
	EXPECT_EQ(-EINVAL, shmpool_unlink(self->name, both));
	EXPECT_EQ(NULL, p);
}

TEST_F(pool, out_null)
{
	EXPECT_EQ(-EINVAL, shmpool_create(self->name, self->page, 0600,
					  variant->backend, NULL));
	EXPECT_EQ(-EINVAL, shmpool_create_anon(self->page, variant->backend,
					       NULL));
	EXPECT_EQ(-EINVAL, shmpool_open(self->name, variant->backend, NULL));
	EXPECT_EQ(-EINVAL, shmpool_adopt_fd(0, 0, NULL));
	EXPECT_EQ(-ENOENT, shmpool_open(self->name, variant->backend,
					&(struct shmpool *){ NULL }));
}

TEST_F(pool, excl_on_existing)
{
	struct shmpool *p, *q = NULL;

	ASSERT_EQ(0, shmpool_create(self->name, self->page, 0600,
				    variant->backend | SHMPOOL_EXCL, &p));
	EXPECT_EQ(-EEXIST, shmpool_create(self->name, self->page, 0600,
					  variant->backend | SHMPOOL_EXCL, &q));
	EXPECT_EQ(NULL, q);
	shmpool_close(p);
}

/* Without EXCL an existing pool of the same size is opened, not remade. */
TEST_F(pool, create_existing_opens_it)
{
	struct shmpool_pool_info a, b;
	struct shmpool *p, *q;

	ASSERT_EQ(0, shmpool_create(self->name, 2 * self->page, 0600,
				    variant->backend, &p));
	ASSERT_EQ(1, shmpool_created(p));
	strcpy((char *)shmpool_base(p) + self->page, "first");
	ASSERT_EQ(0, shmpool_create(self->name, 2 * self->page, 0644,
				    variant->backend, &q));
	EXPECT_EQ(0, shmpool_created(q));
	EXPECT_STREQ("first", (char *)shmpool_base(q) + self->page);
	ASSERT_EQ(0, shmpool_info(p, &a));
	ASSERT_EQ(0, shmpool_info(q, &b));
	EXPECT_EQ(a.id, b.id);
	EXPECT_EQ(0600U, b.mode);	/* the creator's mode stays */
	shmpool_close(q);
	shmpool_close(p);
}

TEST_F(pool, create_existing_other_size)
{
	struct shmpool *p, *q = NULL;

	ASSERT_EQ(0, shmpool_create(self->name, 2 * self->page, 0600,
				    variant->backend, &p));
	EXPECT_EQ(-EEXIST, shmpool_create(self->name, self->page, 0600,
					  variant->backend, &q));
	EXPECT_EQ(-EEXIST, shmpool_create(self->name, 4 * self->page, 0600,
					  variant->backend, &q));
	EXPECT_EQ(NULL, q);
	shmpool_close(p);
}

TEST_F(pool, open_missing)
{
	struct shmpool *p = NULL;

	EXPECT_EQ(-ENOENT, shmpool_open(self->name, variant->backend, &p));
	EXPECT_EQ(-ENOENT, shmpool_open(self->name,
					variant->backend | SHMPOOL_RDONLY,
					&p));
	EXPECT_EQ(NULL, p);
}

TEST_F(pool, unlink_missing)
{
	EXPECT_EQ(-ENOENT, shmpool_unlink(self->name, variant->backend));
}

/* Unlink removes the name at once; the memory lives while mapped. */
TEST_F(pool, unlink_keeps_mappings)
{
	struct shmpool_pool_info info;
	struct shmpool *p, *q = NULL;

	ASSERT_EQ(0, shmpool_create(self->name, self->page, 0600,
				    variant->backend, &p));
	strcpy(shmpool_base(p), "still here");
	ASSERT_EQ(0, shmpool_unlink(self->name, variant->backend));
	EXPECT_EQ(-ENOENT, shmpool_open(self->name, variant->backend, &q));
	EXPECT_EQ(-ENOENT, shmpool_unlink(self->name, variant->backend));
	EXPECT_STREQ("still here", (char *)shmpool_base(p));
	ASSERT_EQ(0, shmpool_info(p, &info));
	EXPECT_EQ(SHMPOOL_POOL_NAMED | SHMPOOL_POOL_UNLINKED, info.flags);

	/* the name is free again: a new, zeroed pool */
	ASSERT_EQ(0, shmpool_create(self->name, self->page, 0600,
				    variant->backend | SHMPOOL_EXCL, &q));
	EXPECT_EQ(0, *(char *)shmpool_base(q));
	shmpool_close(q);
	shmpool_close(p);
}

TEST_F(pool, ptr_bounds)
{
	struct shmpool *p;
	char *b;
	size_t sz;

	ASSERT_EQ(0, shmpool_create_anon(2 * self->page, variant->backend, &p));
	b = shmpool_base(p);
	sz = shmpool_size(p);
	EXPECT_EQ(b, shmpool_ptr(p, 0, sz));
	EXPECT_EQ(b + sz - 1, shmpool_ptr(p, sz - 1, 1));
	EXPECT_EQ(b + 8, shmpool_ptr(p, 8, 0));
	EXPECT_EQ(b + sz, shmpool_ptr(p, sz, 0));	/* empty range at the end */
	EXPECT_EQ(NULL, shmpool_ptr(p, 0, sz + 1));
	EXPECT_EQ(NULL, shmpool_ptr(p, 1, sz));
	EXPECT_EQ(NULL, shmpool_ptr(p, sz, 1));
	EXPECT_EQ(NULL, shmpool_ptr(p, sz + 1, 0));
	/* off + len wraps around: must not look small */
	EXPECT_EQ(NULL, shmpool_ptr(p, UINT64_MAX, 2));
	EXPECT_EQ(NULL, shmpool_ptr(p, 8, SIZE_MAX));
	EXPECT_EQ(NULL, shmpool_ptr(p, UINT64_MAX - sz + 1, sz));
	EXPECT_EQ(NULL, shmpool_ptr(p, (uint64_t)1 << 63, (size_t)1 << 63));
	shmpool_close(p);
}

TEST_F(pool, off_bounds)
{
	struct shmpool *p;
	char *b;
	size_t sz;

	ASSERT_EQ(0, shmpool_create_anon(self->page, variant->backend, &p));
	b = shmpool_base(p);
	sz = shmpool_size(p);
	EXPECT_EQ(0, shmpool_off(p, b));
	EXPECT_EQ((int64_t)sz - 1, shmpool_off(p, b + sz - 1));
	EXPECT_EQ(-EINVAL, shmpool_off(p, b + sz));
	EXPECT_EQ(-EINVAL, shmpool_off(p, b - 1));
	EXPECT_EQ(-EINVAL, shmpool_off(p, NULL));
	EXPECT_EQ(-EINVAL, shmpool_off(p, (void *)UINTPTR_MAX));
	EXPECT_EQ(-EINVAL, shmpool_off(p, &sz));
	/* round trip */
	EXPECT_EQ(b + 100, shmpool_ptr(p, (uint64_t)shmpool_off(p, b + 100), 1));
	shmpool_close(p);
}

/* A forked child opens the pool by name and sees the parent's writes. */
TEST_F(pool, open_in_child_sees_writes)
{
	struct shmpool *p;
	pid_t pid;

	ASSERT_EQ(0, shmpool_create(self->name, self->page, 0600,
				    variant->backend, &p));
	strcpy(shmpool_base(p), "ping");
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct shmpool *q;
		char *b;

		/* the child's own handle: not the inherited mapping */
		if (shmpool_open(self->name, variant->backend, &q))
			_exit(1);
		b = shmpool_base(q);
		if (b == shmpool_base(p) || strcmp(b, "ping"))
			_exit(2);
		strcpy(b + 64, "pong");
		_exit(shmpool_close(q) ? 3 : 0);
	}
	ASSERT_EQ(0, wait_child(pid));
	EXPECT_STREQ("pong", (char *)shmpool_base(p) + 64);
	shmpool_close(p);
}

TEST_F(pool, anon_shared_over_fork)
{
	struct shmpool_pool_info info;
	struct shmpool *p;
	volatile uint64_t *w;
	pid_t pid;

	ASSERT_EQ(0, shmpool_create_anon(self->page, variant->backend, &p));
	EXPECT_EQ(1, shmpool_created(p));
	ASSERT_EQ(0, shmpool_info(p, &info));
	EXPECT_EQ(0U, info.flags & SHMPOOL_POOL_NAMED);
	EXPECT_STREQ("", info.name);
	w = shmpool_ptr(p, 0, sizeof(*w));
	ASSERT_NE(NULL, w);
	*w = 1;
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0)
		_exit(*w == 1 ? (*w = 2, 0) : 1);
	ASSERT_EQ(0, wait_child(pid));
	EXPECT_EQ(2U, *w);
	shmpool_close(p);
}

/* An anonymous pool passed with SCM_RIGHTS outlives its creator. */
TEST_F(pool, adopt_fd_over_socket)
{
	struct shmpool_pool_info info;
	struct shmpool *p;
	int sv[2], fd;
	pid_t pid;

	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct shmpool *c;

		if (shmpool_create_anon(2 * page_size(), variant->backend, &c))
			_exit(1);
		strcpy(shmpool_ptr(c, page_size(), 16), "from child");
		if (send_fd(sv[1], shmpool_fd(c)))
			_exit(2);
		_exit(shmpool_close(c) ? 3 : 0);
	}
	fd = recv_fd(sv[0]);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, wait_child(pid));
	ASSERT_EQ(0, shmpool_adopt_fd(fd, 0, &p));
	EXPECT_EQ(fd, shmpool_fd(p));
	EXPECT_EQ(0, shmpool_created(p));
	EXPECT_EQ((int)variant->backend, shmpool_backend(p));
	EXPECT_EQ(2 * self->page, shmpool_size(p));
	EXPECT_STREQ("from child", (char *)shmpool_base(p) + self->page);
	ASSERT_EQ(0, shmpool_info(p, &info));
	EXPECT_EQ(0U, info.flags & SHMPOOL_POOL_RDONLY);
	strcpy(shmpool_base(p), "writable");
	EXPECT_EQ(0, shmpool_close(p));	/* closes fd */
	EXPECT_EQ(-1, fcntl(fd, F_GETFD));
	close(sv[0]);
	close(sv[1]);
}

/* A named pool's fd keeps its name; a read-only fd maps read-only. */
TEST_F(pool, adopt_rdonly_fd)
{
	struct shmpool_pool_info info;
	struct shmpool *p, *r, *a;
	int fd;

	ASSERT_EQ(0, shmpool_create(self->name, self->page, 0600,
				    variant->backend, &p));
	strcpy(shmpool_base(p), "ro");
	ASSERT_EQ(0, shmpool_open(self->name, variant->backend | SHMPOOL_RDONLY,
				  &r));
	fd = dup(shmpool_fd(r));
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, shmpool_adopt_fd(fd, 0, &a));
	EXPECT_STREQ("ro", (char *)shmpool_base(a));
	ASSERT_EQ(0, shmpool_info(a, &info));
	EXPECT_EQ(SHMPOOL_POOL_NAMED | SHMPOOL_POOL_RDONLY, info.flags);
	EXPECT_STREQ(self->name, info.name);
	EXPECT_EQ(128 + SIGSEGV, child_write(shmpool_base(a)));
	EXPECT_NE(0, mprotect(shmpool_base(a), self->page,
			      PROT_READ | PROT_WRITE));
	shmpool_close(a);
	shmpool_close(r);

	/* and SHMPOOL_RDONLY makes a writable fd's mapping read-only */
	fd = dup(shmpool_fd(p));
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, shmpool_adopt_fd(fd, SHMPOOL_RDONLY, &a));
	EXPECT_STREQ("ro", (char *)shmpool_base(a));
	EXPECT_EQ(128 + SIGSEGV, child_write(shmpool_base(a)));
	shmpool_close(a);
	shmpool_close(p);
}

/* Refused fds stay the caller's. */
TEST_F(pool, adopt_not_a_pool)
{
	char path[] = "/tmp/lpt.XXXXXX";
	struct shmpool *p = NULL;
	int fds[2], fd;

	ASSERT_EQ(0, pipe(fds));
	EXPECT_EQ(-EINVAL, shmpool_adopt_fd(fds[0], 0, &p));
	EXPECT_EQ(0, fcntl(fds[0], F_GETFD) < 0);
	close(fds[0]);
	close(fds[1]);
	EXPECT_EQ(-EBADF, shmpool_adopt_fd(fds[0], 0, &p));
	EXPECT_EQ(-EBADF, shmpool_adopt_fd(-1, 0, &p));

	fd = mkstemp(path);
	ASSERT_LE(0, fd);
	unlink(path);
	EXPECT_EQ(-EINVAL, shmpool_adopt_fd(fd, 0, &p));	/* empty file */
	ASSERT_EQ(0, ftruncate(fd, (off_t)self->page + 1));
	EXPECT_EQ(-EINVAL, shmpool_adopt_fd(fd, 0, &p));	/* odd size */
	EXPECT_EQ(0, fcntl(fd, F_GETFD) < 0);
	close(fd);

	fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, fd);
	EXPECT_EQ(-EINVAL, shmpool_adopt_fd(fd, 0, &p));
	close(fd);
	EXPECT_EQ(-EINVAL, shmpool_adopt_fd(0, SHMPOOL_EXCL, &p));
	EXPECT_EQ(NULL, p);
}

/* A /dev/shmpool fd is a scope, no pool. */
TEST_F(pool, adopt_unbound_device_fd)
{
	struct shmpool *p = NULL;
	int fd;

	if (variant->backend != SHMPOOL_BACKEND_DEVICE)
		SKIP(return, "device only");
	fd = open(DEV_PATH, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, fd);
	EXPECT_EQ(-EINVAL, shmpool_adopt_fd(fd, 0, &p));
	EXPECT_EQ(NULL, p);
	close(fd);
}

/* A named pool lives on after its creator exits, until unlinked. */
TEST_F(pool, named_outlives_creator)
{
	struct shmpool *p;
	pid_t pid;

	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct shmpool *c;

		if (shmpool_create(self->name, self->page, 0600,
				   variant->backend | SHMPOOL_EXCL, &c))
			_exit(1);
		strcpy(shmpool_base(c), "left behind");
		_exit(0);	/* no close: dying must not take the pool */
	}
	ASSERT_EQ(0, wait_child(pid));
	ASSERT_EQ(0, shmpool_open(self->name, variant->backend, &p));
	EXPECT_EQ(0, shmpool_created(p));
	EXPECT_STREQ("left behind", (char *)shmpool_base(p));
	shmpool_close(p);
	ASSERT_EQ(0, shmpool_open(self->name, variant->backend, &p));
	EXPECT_STREQ("left behind", (char *)shmpool_base(p));
	shmpool_close(p);
	ASSERT_EQ(0, shmpool_unlink(self->name, variant->backend));
	EXPECT_EQ(-ENOENT, shmpool_open(self->name, variant->backend, &p));
}

/* SHMPOOL_RDONLY maps read-only: a write faults, mprotect can't upgrade. */
TEST_F(pool, open_rdonly_write_faults)
{
	struct shmpool_pool_info info;
	struct shmpool *p, *r;

	ASSERT_EQ(0, shmpool_create(self->name, self->page, 0600,
				    variant->backend, &p));
	strcpy(shmpool_base(p), "read me");
	ASSERT_EQ(0, shmpool_open(self->name, variant->backend | SHMPOOL_RDONLY,
				  &r));
	EXPECT_STREQ("read me", (char *)shmpool_base(r));
	ASSERT_EQ(0, shmpool_info(r, &info));
	EXPECT_EQ(SHMPOOL_POOL_RDONLY, info.flags & SHMPOOL_POOL_RDONLY);
	EXPECT_EQ(128 + SIGSEGV, child_write(shmpool_base(r)));
	EXPECT_EQ(-1, mprotect(shmpool_base(r), self->page,
			       PROT_READ | PROT_WRITE));
	EXPECT_EQ(EACCES, errno);
	EXPECT_STREQ("read me", (char *)shmpool_base(p));
	/* the writer's mapping is unaffected */
	EXPECT_EQ(0, child_write(shmpool_base(p)));
	shmpool_close(r);
	shmpool_close(p);
}

/* The pool's mode is checked against the opener's credentials. */
TEST_F(pool, mode_denies_access)
{
	struct shmpool *p;
	pid_t pid;

	ASSERT_EQ(0, shmpool_create(self->name, self->page, 0444,
				    variant->backend, &p));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct shmpool *q;

		/* root would pass any check: become nobody, "other" */
		if (geteuid() == 0 &&
		    (setgroups(0, NULL) || setgid(NOBODY) || setuid(NOBODY)))
			_exit(10);
		if (shmpool_open(self->name, variant->backend, &q) != -EACCES)
			_exit(1);
		if (shmpool_create(self->name, page_size(), 0444,
				   variant->backend, &q) != -EACCES)
			_exit(2);
		if (shmpool_open(self->name, variant->backend | SHMPOOL_RDONLY,
				 &q))
			_exit(3);
		_exit(shmpool_close(q) ? 4 : 0);
	}
	EXPECT_EQ(0, wait_child(pid));
	shmpool_close(p);
}

/* Only the owner (or an admin) may remove a name. */
TEST_F(pool, unlink_not_owner)
{
	struct shmpool *p;
	pid_t pid;

	if (geteuid() != 0)
		SKIP(return, "needs root to act as another user");
	ASSERT_EQ(0, shmpool_create(self->name, self->page, 0666,
				    variant->backend, &p));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		if (setgroups(0, NULL) || setgid(NOBODY) || setuid(NOBODY))
			_exit(10);
		_exit(shmpool_unlink(self->name, variant->backend) == -EPERM ?
		      0 : 1);
	}
	EXPECT_EQ(0, wait_child(pid));
	shmpool_close(p);
	EXPECT_EQ(0, shmpool_unlink(self->name, variant->backend));
}

#define RACERS	8
#define ROUNDS	25

struct race {
	atomic_int ready;
	atomic_int go;
	atomic_int created;
};

/* One racer: create without EXCL, leave our bit in the pool. */
static int racer(const char *name, unsigned int backend, struct race *r,
		 int idx, size_t bytes)
{
	struct shmpool_pool_info info;
	struct shmpool *p;
	atomic_uint *bits;
	int ret;

	atomic_fetch_add(&r->ready, 1);
	while (!atomic_load(&r->go))
		;
	ret = shmpool_create(name, bytes, 0600, backend, &p);
	if (ret)
		return 1;
	if (shmpool_size(p) != bytes || shmpool_info(p, &info) ||
	    info.bytes != bytes)
		return 2;
	/* the last byte must be backed: no half-made pool */
	if (*(volatile char *)shmpool_ptr(p, bytes - 1, 1))
		return 3;
	if (shmpool_created(p))
		atomic_fetch_add(&r->created, 1);
	bits = shmpool_ptr(p, 0, sizeof(*bits));
	atomic_fetch_or(bits, 1U << idx);
	return shmpool_close(p) ? 4 : 0;
}

/*
 * Racing non-EXCL creators: one creates, all get the same whole pool.
 * Forks RACERS * ROUNDS processes (a quarter of the rounds in the debug
 * lane, where all of them took 22 s).
 */
TEST_F_TIMEOUT(pool, concurrent_create, 120)
{
	int round, i, rounds = (int)lane_debug_quarter(ROUNDS);
	struct race *r;

	r = mmap(NULL, sizeof(*r), PROT_READ | PROT_WRITE,
		 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, r);
	for (round = 0; round < rounds; round++) {
		size_t bytes = (size_t)(1 + round % 4) * self->page;
		pid_t pids[RACERS];
		struct shmpool *p;

		atomic_store(&r->ready, 0);
		atomic_store(&r->go, 0);
		atomic_store(&r->created, 0);
		for (i = 0; i < RACERS; i++) {
			pids[i] = fork();
			ASSERT_LE(0, pids[i]);
			if (pids[i] == 0)
				_exit(racer(self->name, variant->backend, r,
					    i, bytes));
		}
		while (atomic_load(&r->ready) < RACERS)
			usleep(100);
		atomic_store(&r->go, 1);
		for (i = 0; i < RACERS; i++)
			EXPECT_EQ(0, wait_child(pids[i]))
				TH_LOG("round %d racer %d", round, i);
		EXPECT_EQ(1, atomic_load(&r->created))
			TH_LOG("round %d", round);
		ASSERT_EQ(0, shmpool_open(self->name, variant->backend, &p));
		EXPECT_EQ(bytes, shmpool_size(p));
		EXPECT_EQ((1U << RACERS) - 1, *(unsigned int *)shmpool_base(p))
			TH_LOG("round %d: not everybody met in one pool", round);
		shmpool_close(p);
		ASSERT_EQ(0, shmpool_unlink(self->name, variant->backend));
	}
	munmap(r, sizeof(*r));
}

TEST_F(pool, extents)
{
	struct shmpool_extent ext[65];
	struct shmpool_pool_info info;
	struct shmpool *p;
	uint64_t next = 0;
	int n, i;

	ASSERT_EQ(0, shmpool_create_anon(64 * self->page, variant->backend,
					 &p));
	ASSERT_EQ(0, shmpool_info(p, &info));
	n = shmpool_extents(p, NULL, 0);
	ASSERT_LE(1, n);
	EXPECT_EQ((int)info.nr_extents, n);
	ASSERT_GE(64, n);
	EXPECT_EQ(-EINVAL, shmpool_extents(p, NULL, 1));
	memset(ext, 0xff, sizeof(ext));
	ASSERT_EQ(n, shmpool_extents(p, ext, 64));
	for (i = 0; i < n; i++) {
		EXPECT_EQ(next, ext[i].offset);
		EXPECT_NE(0U, ext[i].bytes);
		EXPECT_EQ(0U, ext[i].bytes % self->page);
		next += ext[i].bytes;
	}
	EXPECT_EQ(64 * self->page, next);
	EXPECT_EQ(0xffffffffffffffffULL, ext[n].offset);	/* untouched */
	/* a short array gets only what fits, the count stays true */
	memset(ext, 0xff, sizeof(ext));
	ASSERT_EQ(n, shmpool_extents(p, ext, 1));
	EXPECT_EQ(0U, ext[0].offset);
	if (n > 1)
		EXPECT_EQ(0xffffffffffffffffULL, ext[1].offset);
	shmpool_close(p);
}

/* CONTIG: one extent from the device; memfd cannot promise it. */
TEST_F(pool, contig)
{
	struct shmpool_extent ext;
	struct shmpool_pool_info info;
	struct shmpool *p = NULL;

	if (variant->backend == SHMPOOL_BACKEND_MEMFD) {
		EXPECT_EQ(-EOPNOTSUPP,
			  shmpool_create_anon(16 * self->page,
					      variant->backend | SHMPOOL_CONTIG,
					      &p));
		EXPECT_EQ(-EOPNOTSUPP,
			  shmpool_create(self->name, 16 * self->page, 0600,
					 variant->backend | SHMPOOL_CONTIG,
					 &p));
		EXPECT_EQ(NULL, p);
		return;
	}
	ASSERT_EQ(0, shmpool_create(self->name, 16 * self->page, 0600,
				    variant->backend | SHMPOOL_CONTIG, &p));
	ASSERT_EQ(0, shmpool_info(p, &info));
	EXPECT_EQ(SHMPOOL_POOL_CONTIG, info.flags & SHMPOOL_POOL_CONTIG);
	EXPECT_EQ(0U, info.lacks & SHMPOOL_CAP_CONTIG);
	ASSERT_EQ(1, shmpool_extents(p, &ext, 1));
	EXPECT_EQ(16 * self->page, ext.bytes);
	shmpool_close(p);
}

/* $SHMPOOL_BACKEND picks the backend unless a flag does. */
TEST_F(pool, env_backend)
{
	const unsigned int other = variant->backend == SHMPOOL_BACKEND_MEMFD ?
				   SHMPOOL_BACKEND_DEVICE :
				   SHMPOOL_BACKEND_MEMFD;
	struct shmpool *p = NULL;

	setenv("SHMPOOL_BACKEND", shmpool_backend_name(variant->backend), 1);
	ASSERT_EQ(0, shmpool_create_anon(self->page, 0, &p));
	EXPECT_EQ((int)variant->backend, shmpool_backend(p));
	shmpool_close(p);

	/* a flag wins over the environment */
	setenv("SHMPOOL_BACKEND", shmpool_backend_name(other), 1);
	ASSERT_EQ(0, shmpool_create_anon(self->page, variant->backend, &p));
	EXPECT_EQ((int)variant->backend, shmpool_backend(p));
	shmpool_close(p);
	p = NULL;

	setenv("SHMPOOL_BACKEND", "bogus", 1);
	EXPECT_EQ(-EINVAL, shmpool_create_anon(self->page, 0, &p));
	EXPECT_EQ(-EINVAL, shmpool_create(self->name, self->page, 0600, 0, &p));
	EXPECT_EQ(-EINVAL, shmpool_open(self->name, 0, &p));
	EXPECT_EQ(-EINVAL, shmpool_unlink(self->name, 0));
	EXPECT_EQ(NULL, p);
	unsetenv("SHMPOOL_BACKEND");
}

/* Without flag or environment: the device if it opens, else memfd. */
TEST(default_backend)
{
	int want = access(DEV_PATH, R_OK | W_OK) ? SHMPOOL_BACKEND_MEMFD :
						    SHMPOOL_BACKEND_DEVICE;
	struct shmpool *p;

	unsetenv("SHMPOOL_BACKEND");
	setenv("SHMPOOL_BACKEND", "", 1);	/* empty counts as unset */
	ASSERT_EQ(0, shmpool_create_anon(page_size(), 0, &p));
	EXPECT_EQ(want, shmpool_backend(p));
	shmpool_close(p);
}

TEST(device_forced_but_absent)
{
	struct shmpool *p = NULL;
	char name[32];

	if (!access(DEV_PATH, F_OK))
		SKIP(return, DEV_PATH " exists");
	snprintf(name, sizeof(name), "lpt.%d", (int)getpid());
	EXPECT_EQ(-ENODEV, shmpool_create_anon(page_size(),
					       SHMPOOL_BACKEND_DEVICE, &p));
	EXPECT_EQ(-ENODEV, shmpool_create(name, page_size(), 0600,
					  SHMPOOL_BACKEND_DEVICE, &p));
	EXPECT_EQ(-ENODEV, shmpool_open(name, SHMPOOL_BACKEND_DEVICE, &p));
	EXPECT_EQ(-ENODEV, shmpool_unlink(name, SHMPOOL_BACKEND_DEVICE));
	setenv("SHMPOOL_BACKEND", "device", 1);
	EXPECT_EQ(-ENODEV, shmpool_create_anon(page_size(), 0, &p));
	EXPECT_EQ(NULL, p);
}

/* memfd: named pools are files in $SHMPOOL_SHM_DIR, made whole. */
TEST(memfd_shm_dir)
{
	char dir[] = "/tmp/lpt-dir.XXXXXX", path[128];
	struct shmpool *p, *q = NULL;
	struct stat st;

	ASSERT_NE(NULL, mkdtemp(dir));
	setenv("SHMPOOL_SHM_DIR", dir, 1);
	umask(022);
	ASSERT_EQ(0, shmpool_create("x", 3 * page_size(), 0640,
				    SHMPOOL_BACKEND_MEMFD, &p));
	snprintf(path, sizeof(path), "%s/shmpool.x", dir);
	ASSERT_EQ(0, stat(path, &st));
	EXPECT_EQ((off_t)(3 * page_size()), st.st_size);
	EXPECT_EQ(0640U, st.st_mode & 07777);
	EXPECT_EQ(-EEXIST, shmpool_create("x", 3 * page_size(), 0640,
					  SHMPOOL_BACKEND_MEMFD | SHMPOOL_EXCL,
					  &q));
	EXPECT_EQ(0, shmpool_unlink("x", SHMPOOL_BACKEND_MEMFD));
	EXPECT_NE(0, stat(path, &st));
	shmpool_close(p);

	/* a missing directory is reported, not papered over */
	setenv("SHMPOOL_SHM_DIR", "/nonexistent/lpt", 1);
	EXPECT_EQ(-ENOENT, shmpool_create("x", page_size(), 0600,
					  SHMPOOL_BACKEND_MEMFD, &q));
	EXPECT_EQ(NULL, q);
	EXPECT_EQ(0, rmdir(dir));
}

/* memfd: a file that is not a whole pool is refused, not mapped. */
TEST(memfd_rejects_foreign_file)
{
	char dir[] = "/tmp/lpt-dir.XXXXXX", path[128];
	struct shmpool *p = NULL;
	int fd;

	ASSERT_NE(NULL, mkdtemp(dir));
	setenv("SHMPOOL_SHM_DIR", dir, 1);
	snprintf(path, sizeof(path), "%s/shmpool.empty", dir);
	fd = open(path, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600);
	ASSERT_LE(0, fd);
	close(fd);
	EXPECT_EQ(-EINVAL, shmpool_open("empty", SHMPOOL_BACKEND_MEMFD, &p));
	EXPECT_EQ(-EINVAL, shmpool_create("empty", page_size(), 0600,
					  SHMPOOL_BACKEND_MEMFD, &p));
	EXPECT_EQ(NULL, p);
	EXPECT_EQ(0, unlink(path));
	EXPECT_EQ(0, rmdir(dir));
}

/*
 * memfd: a create without SHMPOOL_EXCL against peers that make the name
 * vanish before each of its opens and appear before each of its links (the
 * tracer does both at the child's system calls, the worst interleaving)
 * ends with -EAGAIN after 64 rounds, having made nothing. The kernel's
 * open(O_CREAT) decides under the directory's lock; we have none. Before
 * the bound, the create looped for as long as the peers kept at it.
 */
#define FLIP_CALLS_MAX	20000	/* system calls: far more than 64 rounds take */

struct flip {
	const char *path;
	int calls, links;
};

static int flip_name(void *arg, long nr)
{
	struct flip *f = arg;
	int fd;

	if (++f->calls > FLIP_CALLS_MAX)
		return 1;		/* it still loops */
	if (nr == SYS_openat) {
		unlink(f->path);	/* gone before the open */
	} else if (nr == SYS_linkat) {
		f->links++;		/* there before the link */
		fd = open(f->path, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600);
		if (fd < 0)
			return 1;
		close(fd);
	}
	return 0;
}

TEST(memfd_create_against_a_flipping_name_is_bounded)
{
	char dir[] = "/tmp/lpt-dir.XXXXXX", path[128];
	struct flip f = { path, 0, 0 };
	int status, ret;
	pid_t pid;

	ASSERT_NE(NULL, mkdtemp(dir));
	setenv("SHMPOOL_SHM_DIR", dir, 1);
	snprintf(path, sizeof(path), "%s/shmpool.flip", dir);
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct shmpool *p = NULL;

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (ptrace(PTRACE_TRACEME, 0, NULL, NULL))
			_exit(100);
		raise(SIGSTOP);
		ret = shmpool_create("flip", page_size(), 0600, SHMPOOL_BACKEND_MEMFD, &p);
		_exit(ret == -EAGAIN && !p ? 0 : ret < 0 ? -ret : 101);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFSTOPPED(status));
	ret = trace_syscall_entries(pid, flip_name, &f, &status);
	EXPECT_EQ(1, ret) TH_LOG("the create still loops after %d links (%d system calls)",
				 f.links, f.calls);
	EXPECT_TRUE(ret == 1 && WIFEXITED(status) && !WEXITSTATUS(status))
		TH_LOG("status %#x (exit: the create's errno, 101: it made a pool)", status);
	EXPECT_EQ(64, f.links);
	/* our file is the only one: the create's nameless files went with it */
	EXPECT_EQ(0, unlink(path));
	EXPECT_EQ(0, rmdir(dir));
}

/* memfd: an anonymous pool is sealed at its size. */
TEST(memfd_anon_sealed)
{
	struct shmpool *p;

	ASSERT_EQ(0, shmpool_create_anon(2 * page_size(),
					 SHMPOOL_BACKEND_MEMFD, &p));
	EXPECT_EQ(-1, ftruncate(shmpool_fd(p), 0));
	EXPECT_EQ(EPERM, errno);
	EXPECT_EQ(-1, ftruncate(shmpool_fd(p), 4 * page_size()));
	shmpool_close(p);
}

TEST(backend_names)
{
	EXPECT_STREQ("device", shmpool_backend_name(SHMPOOL_BACKEND_DEVICE));
	EXPECT_STREQ("memfd", shmpool_backend_name(SHMPOOL_BACKEND_MEMFD));
	EXPECT_STREQ("unknown", shmpool_backend_name(0));
	EXPECT_STREQ("unknown", shmpool_backend_name(-1));
}

TEST(null_handle)
{
	struct shmpool_pool_info info;

	EXPECT_EQ(0, shmpool_close(NULL));
	EXPECT_EQ(-EINVAL, shmpool_info(NULL, &info));
	EXPECT_EQ(-EINVAL, shmpool_extents(NULL, NULL, 0));
	EXPECT_EQ(-EINVAL, shmpool_backend(NULL));
	EXPECT_EQ(-EINVAL, shmpool_fd(NULL));
	EXPECT_EQ(-EINVAL, shmpool_created(NULL));
}

TEST_HARNESS_MAIN
