/* pool_share_test: shmpool pools across processes — sharing, lifetime, accounting, permissions, O_DIRECT and physical contiguity. */
// SPDX-License-Identifier: GPL-2.0
#define _GNU_SOURCE
#include <linux/fs.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "shmpool_test_util.h"

FIXTURE(share) {
	int fd;			/* O_RDWR, unbound */
	long page;
	struct shmpool_api api;
	char name[SHMPOOL_NAME_MAX];
	char name2[SHMPOOL_NAME_MAX];
};

FIXTURE_SETUP(share)
{
	if (!sp_setup_dev(_metadata, &self->fd, &self->page, &self->api))
		return;
	sp_make_name(self->name, "share");
	sp_make_name(self->name2, "share2");
}

FIXTURE_TEARDOWN(share)
{
	sp_unlink_quiet(self->name);
	sp_unlink_quiet(self->name2);
	close(self->fd);
}

/* Read one byte from @fd (a pipe or socket): 0 on success. */
static int sync_wait(int fd)
{
	char c;

	return read(fd, &c, 1) == 1 ? 0 : -1;
}

static int sync_post(int fd)
{
	return write(fd, "x", 1) == 1 ? 0 : -1;
}

/* ---- sharing between processes ---- */

static int fork_child_writes(int fd, uint8_t *inherited, size_t len)
{
	uint8_t *own;

	sp_child_init();
	/* The inherited mapping and a new one from the inherited fd. */
	CHILD_CHECK(sp_check(inherited, len, 0, 1) == -1);
	own = sp_map(fd, len, PROT_READ | PROT_WRITE, 0);
	CHILD_CHECK(own != MAP_FAILED);
	CHILD_CHECK(sp_check(own, len, 0, 1) == -1);
	sp_fill(inherited, len / 2, 0, 2);
	sp_fill(own + len / 2, len / 2, len / 2, 3);
	return 0;
}

TEST_F(share, fork_child_sees_and_writes)
{
	size_t len = 8 * self->page;
	uint8_t *p;
	pid_t pid;

	ASSERT_EQ(0, sp_create(self->fd, NULL, len, 0, 0600, NULL));
	p = sp_map(self->fd, len, PROT_READ | PROT_WRITE, 0);
	ASSERT_NE(MAP_FAILED, p);
	sp_fill(p, len, 0, 1);
	fflush(NULL);
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0)
		_exit(fork_child_writes(self->fd, p, len));
	ASSERT_EQ(0, sp_wait(pid));
	EXPECT_EQ(-1, sp_check(p, len / 2, 0, 2));
	EXPECT_EQ(-1, sp_check(p + len / 2, len / 2, len / 2, 3));
	munmap(p, len);
}

/* Child forked before the pool exists: it finds the pool by name only. */
static int by_name_child(int go, int done, const char *name, size_t len)
{
	struct shmpool_open o;
	uint8_t *p;
	int fd;

	sp_child_init();
	CHILD_CHECK(sync_wait(go) == 0);
	fd = sp_open_dev(O_RDWR);
	CHILD_CHECK(fd >= 0);
	CHILD_CHECK(sp_open_name(fd, name, 0, &o) == 0);
	CHILD_CHECK(o.bytes == len);
	p = sp_map(fd, len, PROT_READ | PROT_WRITE, 0);
	CHILD_CHECK(p != MAP_FAILED);
	CHILD_CHECK(sp_check(p, len / 2, 0, 4) == -1);
	sp_fill(p + len / 2, len / 2, len / 2, 5);
	CHILD_CHECK(sync_post(done) == 0);
	return 0;
}

TEST_F(share, unrelated_process_opens_by_name)
{
	size_t len = 8 * self->page;
	int go[2], done[2];
	uint8_t *p;
	pid_t pid;

	ASSERT_EQ(0, pipe(go));
	ASSERT_EQ(0, pipe(done));
	fflush(NULL);
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		close(go[1]);
		close(done[0]);
		close(self->fd);
		_exit(by_name_child(go[0], done[1], self->name, len));
	}
	close(go[0]);
	close(done[1]);
	ASSERT_EQ(0, sp_create(self->fd, self->name, len, SHMPOOL_CREATE_EXCL,
			       0600, NULL));
	p = sp_map(self->fd, len, PROT_READ | PROT_WRITE, 0);
	ASSERT_NE(MAP_FAILED, p);
	sp_fill(p, len / 2, 0, 4);
	ASSERT_EQ(0, sync_post(go[1]));
	ASSERT_EQ(0, sync_wait(done[0]));
	/* Seen while the child still has it mapped. */
	EXPECT_EQ(-1, sp_check(p + len / 2, len / 2, len / 2, 5));
	ASSERT_EQ(0, sp_wait(pid));
	EXPECT_EQ(-1, sp_check(p + len / 2, len / 2, len / 2, 5));
	munmap(p, len);
	close(go[1]);
	close(done[0]);
}

static int send_fd(int sock, int fd)
{
	char cbuf[CMSG_SPACE(sizeof(int))] = { 0 };
	struct iovec iov = { .iov_base = "f", .iov_len = 1 };
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = cbuf, .msg_controllen = sizeof(cbuf),
	};
	struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);

	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	return sendmsg(sock, &msg, 0) == 1 ? 0 : -1;
}

static int recv_fd(int sock)
{
	char cbuf[CMSG_SPACE(sizeof(int))] = { 0 };
	char c;
	struct iovec iov = { .iov_base = &c, .iov_len = 1 };
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = cbuf, .msg_controllen = sizeof(cbuf),
	};
	struct cmsghdr *cm;
	int fd;

	if (recvmsg(sock, &msg, MSG_CMSG_CLOEXEC) != 1)
		return -1;
	cm = CMSG_FIRSTHDR(&msg);
	if (!cm || cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
		return -1;
	memcpy(&fd, CMSG_DATA(cm), sizeof(int));
	return fd;
}

static int scm_child(int sock, size_t len, uint64_t id)
{
	struct shmpool_info info;
	uint8_t *p;
	int fd;

	sp_child_init();
	fd = recv_fd(sock);
	CHILD_CHECK(fd >= 0);
	CHILD_CHECK(sp_info(fd, &info, NULL, 0) == 0);
	CHILD_CHECK(info.id == id);
	CHILD_CHECK(info.bytes == len);
	CHILD_CHECK(info.attachments == 1);	/* one file, passed along */
	p = sp_map(fd, len, PROT_READ | PROT_WRITE, 0);
	CHILD_CHECK(p != MAP_FAILED);
	CHILD_CHECK(sp_check(p, len, 0, 6) == -1);
	sp_fill(p, len / 2, 0, 7);
	CHILD_CHECK(sync_post(sock) == 0);
	return 0;
}

TEST_F(share, fd_passing_scm_rights)
{
	size_t len = 4 * self->page;
	struct shmpool_create c;
	int sv[2];
	uint8_t *p;
	pid_t pid;

	ASSERT_EQ(0, sp_create(self->fd, NULL, len, 0, 0600, &c));
	p = sp_map(self->fd, len, PROT_READ | PROT_WRITE, 0);
	ASSERT_NE(MAP_FAILED, p);
	sp_fill(p, len, 0, 6);
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv));
	/* The pool is in flight in the socket, our fd already closed. */
	ASSERT_EQ(0, send_fd(sv[0], self->fd));
	close(self->fd);
	self->fd = -1;
	fflush(NULL);
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		close(sv[0]);
		_exit(scm_child(sv[1], len, c.id));
	}
	close(sv[1]);
	ASSERT_EQ(0, sync_wait(sv[0]));
	EXPECT_EQ(-1, sp_check(p, len / 2, 0, 7));
	EXPECT_EQ(-1, sp_check(p + len / 2, len / 2, len / 2, 6));
	ASSERT_EQ(0, sp_wait(pid));
	munmap(p, len);
	close(sv[0]);
}

/* ---- lifetime ---- */

static int creator_child(const char *name, size_t len)
{
	uint8_t *p;
	int fd;

	sp_child_init();
	fd = sp_open_dev(O_RDWR);
	CHILD_CHECK(fd >= 0);
	CHILD_CHECK(sp_create(fd, name, len, SHMPOOL_CREATE_EXCL, 0600, NULL) == 0);
	p = sp_map(fd, len, PROT_READ | PROT_WRITE, 0);
	CHILD_CHECK(p != MAP_FAILED);
	sp_fill(p, len, 0, 8);
	return 0;	/* exit closes and unmaps everything */
}

TEST_F(share, named_pool_survives_creator)
{
	size_t len = 8 * self->page;
	long long before = sp_counter("pages");
	struct shmpool_info info;
	uint8_t *p;
	pid_t pid;

	ASSERT_GE(before, 0);
	fflush(NULL);
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0)
		_exit(creator_child(self->name, len));
	ASSERT_EQ(0, sp_wait(pid));
	EXPECT_EQ(before + 8, sp_counter("pages"));
	ASSERT_EQ(0, sp_open_name(self->fd, self->name, 0, NULL));
	ASSERT_EQ(0, sp_info(self->fd, &info, NULL, 0));
	EXPECT_EQ(1U, info.attachments);
	EXPECT_EQ(0U, info.mappings);
	p = sp_map(self->fd, len, PROT_READ, 0);
	ASSERT_NE(MAP_FAILED, p);
	EXPECT_EQ(-1, sp_check(p, len, 0, 8));
	munmap(p, len);
	EXPECT_EQ(0, sp_unlink_name(self->name));
	close(self->fd);
	self->fd = -1;
	EXPECT_EQ(before, sp_counter("pages"));
}

TEST_F(share, open_after_unlink_fails_existing_fds_work)
{
	size_t len = 4 * self->page;
	struct shmpool_create c1, c2;
	struct shmpool_info info;
	int fd2 = sp_open_dev(O_RDWR);
	int fd3 = sp_open_dev(O_RDWR);
	uint8_t *p, *q, *r;

	ASSERT_GE(fd2, 0);
	ASSERT_GE(fd3, 0);
	ASSERT_EQ(0, sp_create(self->fd, self->name, len, 0, 0600, &c1));
	p = sp_map(self->fd, len, PROT_READ | PROT_WRITE, 0);
	ASSERT_NE(MAP_FAILED, p);
	sp_fill(p, len, 0, 9);
	ASSERT_EQ(0, sp_open_name(fd2, self->name, 0, NULL));

	ASSERT_EQ(0, sp_unlink(fd3, self->name));
	EXPECT_EQ(-ENOENT, sp_open_name(fd3, self->name, 0, NULL));
	EXPECT_EQ(-ENOENT, sp_open_name(fd3, self->name, SHMPOOL_OPEN_RDONLY, NULL));
	EXPECT_EQ(-ENOENT, sp_unlink(fd3, self->name));
	ASSERT_EQ(0, sp_info(self->fd, &info, NULL, 0));
	EXPECT_EQ(SHMPOOL_POOL_NAMED | SHMPOOL_POOL_UNLINKED, info.pool_flags);

	/* Existing attachments still map and share the same memory. */
	q = sp_map(fd2, len, PROT_READ | PROT_WRITE, 0);
	ASSERT_NE(MAP_FAILED, q);
	EXPECT_EQ(-1, sp_check(q, len, 0, 9));
	q[0] = 0x33;
	EXPECT_EQ(0x33, p[0]);

	/* The name is free again: a new, zeroed pool. */
	ASSERT_EQ(0, sp_create(fd3, self->name, len, SHMPOOL_CREATE_EXCL, 0600, &c2));
	EXPECT_EQ(SHMPOOL_OUT_CREATED, c2.out_flags);
	EXPECT_NE(c1.id, c2.id);
	r = sp_map(fd3, len, PROT_READ, 0);
	ASSERT_NE(MAP_FAILED, r);
	EXPECT_EQ(-1, sp_check_byte(r, len, 0));
	EXPECT_EQ(0x33, q[0]);
	munmap(p, len);
	munmap(q, len);
	munmap(r, len);
	close(fd2);
	close(fd3);
}

TEST_F(share, memory_returned_after_unlink_and_last_close)
{
	long long pages = sp_counter("pages"), pools = sp_counter("pools");
	long long charged = sp_counter("bytes_charged");
	size_t n = 64, len = n * self->page;
	int fd2 = sp_open_dev(O_RDWR);
	uint8_t *p, *q;

	ASSERT_GE(pages, 0);
	ASSERT_GE(pools, 0);
	ASSERT_GE(charged, 0);
	ASSERT_GE(fd2, 0);
	ASSERT_EQ(0, sp_create(self->fd, self->name, len, 0, 0600, NULL));
	ASSERT_EQ(0, sp_create(fd2, self->name2, len, 0, 0600, NULL));
	EXPECT_EQ(pages + 2 * (long long)n, sp_counter("pages"));
	EXPECT_EQ(pools + 2, sp_counter("pools"));
	p = sp_map(self->fd, len, PROT_READ | PROT_WRITE, 0);
	ASSERT_NE(MAP_FAILED, p);
	q = sp_map(fd2, len, PROT_READ | PROT_WRITE, 0);
	ASSERT_NE(MAP_FAILED, q);
	memset(p, 1, len);
	memset(q, 2, len);

	/* First pool: close, unlink, then the mapping goes last. */
	close(self->fd);
	self->fd = sp_open_dev(O_RDWR);
	ASSERT_GE(self->fd, 0);
	EXPECT_EQ(pages + 2 * (long long)n, sp_counter("pages"));
	ASSERT_EQ(0, sp_unlink_name(self->name));
	EXPECT_EQ(pages + 2 * (long long)n, sp_counter("pages"));
	EXPECT_EQ(-1, sp_check_byte(p, len, 1));
	munmap(p, len);
	EXPECT_EQ(pages + (long long)n, sp_counter("pages"));
	EXPECT_EQ(pools + 1, sp_counter("pools"));

	/* Second pool: unlink, unmap, then the fd goes last. */
	ASSERT_EQ(0, sp_unlink(self->fd, self->name2));
	munmap(q, len);
	EXPECT_EQ(pages + (long long)n, sp_counter("pages"));
	close(fd2);
	EXPECT_EQ(pages, sp_counter("pages"));
	EXPECT_EQ(pools, sp_counter("pools"));
	EXPECT_EQ(charged, sp_counter("bytes_charged"));
}

TEST_F(share, mapping_keeps_pool_alive_after_close)
{
	long long pages = sp_counter("pages"), pools = sp_counter("pools");
	size_t len = 8 * self->page;
	uint8_t *p;

	ASSERT_GE(pages, 0);
	ASSERT_EQ(0, sp_create(self->fd, NULL, len, 0, 0600, NULL));
	p = sp_map(self->fd, len, PROT_READ | PROT_WRITE, 0);
	ASSERT_NE(MAP_FAILED, p);
	sp_fill(p, len, 0, 10);
	close(self->fd);
	self->fd = -1;
	/* Only the VMA holds the anonymous pool now. */
	EXPECT_EQ(pages + 8, sp_counter("pages"));
	EXPECT_EQ(pools + 1, sp_counter("pools"));
	EXPECT_EQ(-1, sp_check(p, len, 0, 10));
	sp_fill(p, len, 0, 11);
	EXPECT_EQ(-1, sp_check(p, len, 0, 11));
	munmap(p, len);
	EXPECT_EQ(pages, sp_counter("pages"));
	EXPECT_EQ(pools, sp_counter("pools"));
}

static int counts_child(int fd, uint32_t mappings, uint32_t attachments)
{
	struct shmpool_info info;

	sp_child_init();
	CHILD_CHECK(sp_info(fd, &info, NULL, 0) == 0);
	/* fork copied both VMAs (vm_ops->open) and shares both files. */
	CHILD_CHECK(info.mappings == mappings);
	CHILD_CHECK(info.attachments == attachments);
	return 0;
}

TEST_F(share, info_counts_attachments_and_mappings)
{
	size_t len = 4 * self->page;
	struct shmpool_info info;
	int fd2 = sp_open_dev(O_RDWR), dupfd;
	uint8_t *p, *q;
	pid_t pid;

	ASSERT_GE(fd2, 0);
	ASSERT_EQ(0, sp_create(self->fd, self->name, len, 0, 0600, NULL));
	p = sp_map(self->fd, len, PROT_READ | PROT_WRITE, 0);
	ASSERT_NE(MAP_FAILED, p);
	q = sp_map(self->fd, len, PROT_READ, 0);
	ASSERT_NE(MAP_FAILED, q);
	ASSERT_EQ(0, sp_info(self->fd, &info, NULL, 0));
	EXPECT_EQ(2U, info.mappings);
	EXPECT_EQ(1U, info.attachments);

	dupfd = dup(self->fd);
	ASSERT_GE(dupfd, 0);
	ASSERT_EQ(0, sp_info(dupfd, &info, NULL, 0));
	EXPECT_EQ(1U, info.attachments);	/* a dup is the same attachment */

	ASSERT_EQ(0, sp_open_name(fd2, self->name, 0, NULL));
	ASSERT_EQ(0, sp_info(fd2, &info, NULL, 0));
	EXPECT_EQ(2U, info.attachments);

	fflush(NULL);
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0)
		_exit(counts_child(fd2, 4, 2));
	ASSERT_EQ(0, sp_wait(pid));
	ASSERT_EQ(0, sp_info(self->fd, &info, NULL, 0));
	EXPECT_EQ(2U, info.mappings);

	/* Punching a hole splits a VMA into two. */
	ASSERT_EQ(0, munmap(p + self->page, self->page));
	ASSERT_EQ(0, sp_info(self->fd, &info, NULL, 0));
	EXPECT_EQ(3U, info.mappings);

	close(fd2);
	close(dupfd);
	ASSERT_EQ(0, sp_info(self->fd, &info, NULL, 0));
	EXPECT_EQ(1U, info.attachments);
	munmap(p, self->page);
	munmap(p + 2 * self->page, 2 * self->page);
	munmap(q, len);
	ASSERT_EQ(0, sp_info(self->fd, &info, NULL, 0));
	EXPECT_EQ(0U, info.mappings);
}

/* Does a tab-separated field of some line of @path equal @word? */
static int debugfs_has(const char *path, const char *word)
{
	char line[512];
	int found = 0;
	FILE *f = fopen(path, "re");

	if (!f)
		return -errno;
	while (!found && fgets(line, sizeof(line), f)) {
		char *save = NULL, *tok;

		for (tok = strtok_r(line, "\t\n ", &save); tok;
		     tok = strtok_r(NULL, "\t\n ", &save))
			if (!strcmp(tok, word))
				found = 1;
	}
	fclose(f);
	return found;
}

TEST_F(share, debugfs_lists_named_pools)
{
	if (access(SP_DEBUGFS, R_OK))
		SKIP(return, SP_DEBUGFS " not readable (debugfs not mounted?)");
	EXPECT_EQ(0, debugfs_has(SP_DEBUGFS, self->name));
	ASSERT_EQ(0, sp_create(self->fd, self->name, self->page, 0, 0600, NULL));
	EXPECT_EQ(1, debugfs_has(SP_DEBUGFS, self->name));
	ASSERT_EQ(0, sp_unlink_name(self->name));
	close(self->fd);
	self->fd = -1;
	EXPECT_EQ(0, debugfs_has(SP_DEBUGFS, self->name));
}

/* ---- physical contiguity, seen through /proc/self/pagemap ---- */

/* PFN behind each page of [p, p + pages), which must be faulted in. */
static int pagemap_pfns(const void *p, size_t pages, long page, uint64_t *pfn)
{
	int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	size_t i;

	if (fd < 0)
		return -errno;
	for (i = 0; i < pages; i++) {
		uint64_t e;
		off_t off = ((uintptr_t)p / page + i) * sizeof(e);

		if (pread(fd, &e, sizeof(e), off) != sizeof(e)) {
			close(fd);
			return -EIO;
		}
		if (!(e & (1ULL << 63))) {	/* not present */
			close(fd);
			return -ENODATA;
		}
		pfn[i] = e & ((1ULL << 55) - 1);
	}
	close(fd);
	return 0;
}

/* Every extent is one run of consecutive PFNs starting at its phys. */
static void expect_extents_contiguous(struct __test_metadata *_metadata,
				      int fd, size_t len, long page,
				      uint32_t max_extents)
{
	size_t pages = len / page, i;
	struct shmpool_extent *ext;
	struct shmpool_info info;
	volatile uint8_t *p;
	uint64_t *pfn, sum = 0;
	uint32_t e;

	ext = calloc(max_extents, sizeof(*ext));
	pfn = calloc(pages, sizeof(*pfn));
	ASSERT_NE(NULL, ext);
	ASSERT_NE(NULL, pfn);
	ASSERT_EQ(0, sp_info(fd, &info, ext, max_extents));
	ASSERT_GE(max_extents, info.nr_extents);
	p = sp_map(fd, len, PROT_READ, 0);
	ASSERT_NE(MAP_FAILED, p);
	for (i = 0; i < pages; i++)
		(void)p[i * page];
	ASSERT_EQ(0, pagemap_pfns((const void *)p, pages, page, pfn));
	if (!pfn[0])
		SKIP(goto out, "pagemap shows no PFNs (needs CAP_SYS_ADMIN)");
	for (e = 0; e < info.nr_extents; e++) {
		size_t first = ext[e].offset / page, n = ext[e].bytes / page;

		EXPECT_EQ(sum, ext[e].offset);
		ASSERT_LE(first + n, pages);
		EXPECT_EQ(ext[e].phys, pfn[first] * page) TH_LOG("extent %u", e);
		for (i = 1; i < n; i++)
			if (pfn[first + i] != pfn[first] + i)
				break;
		EXPECT_EQ(n, i) TH_LOG("extent %u breaks at page %zu of %zu", e, i, n);
		sum += ext[e].bytes;
	}
	EXPECT_EQ(len, sum);
out:
	munmap((void *)p, len);
	free(ext);
	free(pfn);
}

TEST_F(share, extents_contiguous_in_pagemap)
{
	/* Two of the largest blocks and an odd tail: several extent sizes. */
	size_t len = 2 * self->api.max_contig_bytes + 3 * self->page;

	if (getuid() != 0)
		SKIP(return, "reading PFNs from pagemap needs root");
	if (len > self->api.max_pool_bytes)
		len = self->api.max_pool_bytes;
	ASSERT_EQ(0, sp_create(self->fd, NULL, len, 0, 0600, NULL));
	expect_extents_contiguous(_metadata, self->fd, len, self->page,
				  len / self->page);
}

TEST_F(share, contig_pool_is_one_extent_in_pagemap)
{
	size_t sizes[] = { 5 * self->page, 1 << 20, self->api.max_contig_bytes };
	struct shmpool_info info;
	unsigned int i;

	if (getuid() != 0)
		SKIP(return, "reading PFNs from pagemap needs root");
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		int fd = sp_open_dev(O_RDWR);
		int ret;

		ASSERT_GE(fd, 0);
		if (sizes[i] > self->api.max_contig_bytes)
			sizes[i] = self->api.max_contig_bytes;
		ret = sp_create(fd, NULL, sizes[i], SHMPOOL_CREATE_CONTIG, 0600, NULL);
		if (ret == -ENOMEM && sizes[i] == self->api.max_contig_bytes) {
			/* The largest block may be taken by fragmentation. */
			TH_LOG("no free block of %zu bytes", sizes[i]);
			close(fd);
			continue;
		}
		ASSERT_EQ(0, ret) TH_LOG("CONTIG %zu bytes", sizes[i]);
		ASSERT_EQ(0, sp_info(fd, &info, NULL, 0));
		EXPECT_EQ(1U, info.nr_extents);
		EXPECT_EQ(SHMPOOL_POOL_CONTIG, info.pool_flags & SHMPOOL_POOL_CONTIG);
		expect_extents_contiguous(_metadata, fd, sizes[i], self->page, 1);
		close(fd);
	}
}

/* ---- O_DIRECT through pool pages ---- */

TEST_F(share, o_direct_to_and_from_pool)
{
	size_t len = 1 << 20;
	uint64_t devsize = 0;
	int bd, fd2 = sp_open_dev(O_RDWR);
	long long pages = sp_counter("pages");
	uint8_t *a, *b, *buf;

	ASSERT_GE(fd2, 0);
	bd = open("/dev/ram0", O_RDWR | O_DIRECT | O_CLOEXEC);
	if (bd < 0)
		SKIP(return, "/dev/ram0: %s (load brd rd_nr=1)", strerror(errno));
	ASSERT_EQ(0, ioctl(bd, BLKGETSIZE64, &devsize));
	if (devsize < len)
		SKIP(return, "/dev/ram0 smaller than 1 MiB");

	/* Write from pool A's pages, read back into pool B's. */
	ASSERT_EQ(0, sp_create(self->fd, NULL, len, 0, 0600, NULL));
	ASSERT_EQ(0, sp_create(fd2, self->name, len, 0, 0600, NULL));
	a = sp_map(self->fd, len, PROT_READ | PROT_WRITE, 0);
	ASSERT_NE(MAP_FAILED, a);
	b = sp_map(fd2, len, PROT_READ | PROT_WRITE, 0);
	ASSERT_NE(MAP_FAILED, b);
	sp_fill(a, len, 0, 12);
	ASSERT_EQ((ssize_t)len, pwrite(bd, a, len, 0)) TH_LOG("%s", strerror(errno));
	ASSERT_EQ((ssize_t)len, pread(bd, b, len, 0)) TH_LOG("%s", strerror(errno));
	EXPECT_EQ(-1, sp_check(b, len, 0, 12));
	/* A page-sized piece at an odd page offset, both ways. */
	memset(a + 3 * self->page, 0x5c, self->page);
	ASSERT_EQ(self->page, pwrite(bd, a + 3 * self->page, self->page, 5 * self->page));
	ASSERT_EQ(self->page, pread(bd, b + 7 * self->page, self->page, 5 * self->page));
	EXPECT_EQ(-1, sp_check_byte(b + 7 * self->page, self->page, 0x5c));

	/* Pools gone: what went to the device stays intact. */
	munmap(a, len);
	munmap(b, len);
	ASSERT_EQ(0, sp_unlink_name(self->name));
	close(fd2);
	close(self->fd);
	self->fd = -1;
	EXPECT_EQ(pages, sp_counter("pages"));
	ASSERT_EQ(0, posix_memalign((void **)&buf, self->page, len));
	ASSERT_EQ((ssize_t)len, pread(bd, buf, len, 0));
	EXPECT_EQ(-1, sp_check(buf, 3 * self->page, 0, 12));
	EXPECT_EQ(-1, sp_check(buf + 6 * self->page, len - 6 * self->page,
			       6 * self->page, 12));
	EXPECT_EQ(-1, sp_check_byte(buf + 5 * self->page, self->page, 0x5c));
	free(buf);
	close(bd);
}

TEST_F(share, o_direct_read_into_read_only_mapping_fails)
{
	size_t len = 4 * self->page;
	int bd, ro = sp_open_dev(O_RDWR);
	uint8_t *p;

	ASSERT_GE(ro, 0);
	bd = open("/dev/ram0", O_RDONLY | O_DIRECT | O_CLOEXEC);
	if (bd < 0)
		SKIP(return, "/dev/ram0: %s (load brd rd_nr=1)", strerror(errno));
	ASSERT_EQ(0, sp_create(self->fd, self->name, len, 0, 0644, NULL));
	ASSERT_EQ(0, sp_open_name(ro, self->name, SHMPOOL_OPEN_RDONLY, NULL));
	p = sp_map(ro, len, PROT_READ, 0);
	ASSERT_NE(MAP_FAILED, p);
	/* The device must not write into memory the mapping cannot write. */
	EXPECT_EQ(-1, pread(bd, p, len, 0));
	EXPECT_EQ(EFAULT, errno);
	EXPECT_EQ(-1, sp_check_byte(p, len, 0));
	munmap(p, len);
	close(ro);
	close(bd);
}

/* ---- permissions: a child that is uid/gid 65534 without capabilities ---- */

struct nobody_ctx {
	const char *name;	/* the pool's name */
	long page;
	uint64_t bytes;		/* its size */
	uint32_t mode;		/* for pools the child creates */
	uid_t owner;		/* who owns it */
	unsigned int seed;	/* the pattern in it */
	int pool_fd;		/* an fd the child inherits, or -1 */
};

/* What the children know of root_pool()'s pool. */
#define ROOT_POOL_CTX(self) {						.name = (self)->name, .page = (self)->page,			.bytes = 2 * (self)->page, .owner = 0, .seed = 13,		.pool_fd = -1,						}

/* Run @fn as uid/gid @uid/@gid in a child; its exit status (0 = passed). */
static int as_user(uid_t uid, gid_t gid, int (*fn)(int fd, const struct nobody_ctx *),
		   const struct nobody_ctx *ctx)
{
	pid_t pid;
	int fd;

	fflush(NULL);
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		sp_child_init();
		CHILD_CHECK(sp_drop_privileges(uid, gid) == 0);
		/* /dev/shmpool is for everyone; this fd carries no root creds. */
		fd = sp_open_dev(O_RDWR);
		CHILD_CHECK(fd >= 0);
		_exit(fn(fd, ctx));
	}
	return sp_wait(pid);
}

static int as_nobody(int (*fn)(int fd, const struct nobody_ctx *),
		     const struct nobody_ctx *ctx)
{
	return as_user(SP_NOBODY, SP_NOBODY, fn, ctx);
}

/* Root's named pool with a pattern (seed 13), mode exactly @mode. */
static void root_pool(struct __test_metadata *_metadata,
		      FIXTURE_DATA(share) *self, uint32_t mode)
{
	size_t len = 2 * self->page;
	mode_t old = umask(0);
	uint8_t *p;

	ASSERT_EQ(0, sp_create(self->fd, self->name, len, SHMPOOL_CREATE_EXCL,
			       mode, NULL));
	umask(old);
	p = sp_map(self->fd, len, PROT_READ | PROT_WRITE, 0);
	ASSERT_NE(MAP_FAILED, p);
	sp_fill(p, len, 0, 13);
	munmap(p, len);
}

static int open_rw_denied(int fd, const struct nobody_ctx *ctx)
{
	CHILD_CHECK(sp_open_name(fd, ctx->name, 0, NULL) == -EACCES);
	return 0;
}

static int open_ro_denied(int fd, const struct nobody_ctx *ctx)
{
	CHILD_CHECK(sp_open_name(fd, ctx->name, SHMPOOL_OPEN_RDONLY, NULL) == -EACCES);
	return 0;
}

static int open_ro_allowed(int fd, const struct nobody_ctx *ctx)
{
	struct shmpool_info info;
	size_t len = ctx->bytes;
	uint8_t *p;

	CHILD_CHECK(sp_open_name(fd, ctx->name, SHMPOOL_OPEN_RDONLY, NULL) == 0);
	CHILD_CHECK(sp_info(fd, &info, NULL, 0) == 0);
	CHILD_CHECK(info.pool_flags & SHMPOOL_POOL_RDONLY);
	CHILD_CHECK(info.uid == ctx->owner);
	p = sp_map(fd, len, PROT_READ, 0);
	CHILD_CHECK(p != MAP_FAILED);
	CHILD_CHECK(sp_check(p, len, 0, ctx->seed) == -1);
	CHILD_CHECK(sp_map(fd, len, PROT_READ | PROT_WRITE, 0) == MAP_FAILED);
	CHILD_CHECK(errno == EACCES);
	CHILD_CHECK(mprotect(p, len, PROT_READ | PROT_WRITE) == -1);
	CHILD_CHECK(errno == EACCES);
	return 0;
}

static int open_rw_allowed(int fd, const struct nobody_ctx *ctx)
{
	uint8_t *p;

	CHILD_CHECK(sp_open_name(fd, ctx->name, 0, NULL) == 0);
	p = sp_map(fd, ctx->bytes, PROT_READ | PROT_WRITE, 0);
	CHILD_CHECK(p != MAP_FAILED);
	CHILD_CHECK(sp_check(p, ctx->bytes, 0, ctx->seed) == -1);
	return 0;
}

static int create_over_denied(int fd, const struct nobody_ctx *ctx)
{
	/* Non-EXCL CREATE of an existing name is an OPEN read-write. */
	CHILD_CHECK(sp_create(fd, ctx->name, ctx->bytes, 0, 0666, NULL) == -EACCES);
	return 0;
}

static int unlink_denied(int fd, const struct nobody_ctx *ctx)
{
	CHILD_CHECK(sp_unlink(fd, ctx->name) == -EPERM);
	return 0;
}

TEST_F(share, nobody_cannot_open_0600_read_write)
{
	struct nobody_ctx ctx = ROOT_POOL_CTX(self);

	root_pool(_metadata, self, 0600);
	EXPECT_EQ(0, as_nobody(open_rw_denied, &ctx));
}

TEST_F(share, nobody_cannot_open_0600_read_only)
{
	struct nobody_ctx ctx = ROOT_POOL_CTX(self);

	root_pool(_metadata, self, 0600);
	EXPECT_EQ(0, as_nobody(open_ro_denied, &ctx));
}

TEST_F(share, nobody_opens_0644_read_only)
{
	struct nobody_ctx ctx = ROOT_POOL_CTX(self);

	root_pool(_metadata, self, 0644);
	EXPECT_EQ(0, as_nobody(open_ro_allowed, &ctx));
}

TEST_F(share, nobody_cannot_open_0644_read_write)
{
	struct nobody_ctx ctx = ROOT_POOL_CTX(self);

	root_pool(_metadata, self, 0644);
	EXPECT_EQ(0, as_nobody(open_rw_denied, &ctx));
}

TEST_F(share, nobody_cannot_create_over_0644_pool)
{
	struct nobody_ctx ctx = ROOT_POOL_CTX(self);

	root_pool(_metadata, self, 0644);
	EXPECT_EQ(0, as_nobody(create_over_denied, &ctx));
}

/*
 * As open(O_CREAT) and shm_open(): the mode is for later opens, not for the
 * call that makes the pool, whose fd is read-write whatever the mode
 * (open(2): "the open() call that creates a read-only file may well return
 * a read/write file descriptor"; may_open() checks nothing for a file its
 * own call created).
 */
static int create_with_mode(int fd, const struct nobody_ctx *ctx)
{
	struct shmpool_info info;
	uint8_t *p;
	int fd2;

	umask(0);
	CHILD_CHECK(sp_create(fd, ctx->name, ctx->bytes, SHMPOOL_CREATE_EXCL,
			      ctx->mode, NULL) == 0);
	CHILD_CHECK(sp_info(fd, &info, NULL, 0) == 0);
	CHILD_CHECK(info.mode == ctx->mode);
	CHILD_CHECK(!(info.pool_flags & SHMPOOL_POOL_RDONLY));
	p = sp_map(fd, ctx->bytes, PROT_READ | PROT_WRITE, 0);
	CHILD_CHECK(p != MAP_FAILED);
	p[0] = 1;
	/* Later opens are held to the mode, the creator's own too. */
	fd2 = sp_open_dev(O_RDWR);
	CHILD_CHECK(fd2 >= 0);
	CHILD_CHECK(sp_open_name(fd2, ctx->name, 0, NULL) == -EACCES);
	return 0;
}

TEST_F(share, nobody_creates_0400_pool_read_write)
{
	struct nobody_ctx ctx = { .name = self->name, .page = self->page,
				  .bytes = self->page, .mode = 0400,
				  .pool_fd = -1 };

	EXPECT_EQ(0, as_nobody(create_with_mode, &ctx));
}

TEST_F(share, nobody_creates_0000_pool_read_write)
{
	struct nobody_ctx ctx = { .name = self->name, .page = self->page,
				  .bytes = self->page, .mode = 0,
				  .pool_fd = -1 };

	EXPECT_EQ(0, as_nobody(create_with_mode, &ctx));
}

TEST_F(share, nobody_cannot_unlink_root_pool)
{
	struct nobody_ctx ctx = ROOT_POOL_CTX(self);
	int fd2 = sp_open_dev(O_RDWR);

	ASSERT_GE(fd2, 0);
	/* Even a pool anyone may write belongs to its owner. */
	root_pool(_metadata, self, 0666);
	EXPECT_EQ(0, as_nobody(unlink_denied, &ctx));
	EXPECT_EQ(0, sp_open_name(fd2, self->name, 0, NULL));
	close(fd2);
}

static int phys_hidden(int unbound, const struct nobody_ctx *ctx)
{
	struct shmpool_extent ext[64];
	struct shmpool_info info;
	uint32_t i;

	(void)unbound;
	memset(ext, 0xff, sizeof(ext));
	CHILD_CHECK(sp_info(ctx->pool_fd, &info, ext, 64) == 0);
	CHILD_CHECK(info.nr_extents >= 1 && info.nr_extents <= 64);
	for (i = 0; i < info.nr_extents; i++) {
		CHILD_CHECK(ext[i].phys == 0);
		CHILD_CHECK(ext[i].bytes != 0);
	}
	return 0;
}

TEST_F(share, nobody_info_hides_phys)
{
	struct nobody_ctx ctx = ROOT_POOL_CTX(self);
	struct shmpool_extent ext[64];
	struct shmpool_info info;
	uint32_t i;

	ASSERT_EQ(0, sp_create(self->fd, NULL, 8 * self->page, 0, 0644, NULL));
	ASSERT_EQ(0, sp_info(self->fd, &info, ext, 64));
	ASSERT_GE(64U, info.nr_extents);
	for (i = 0; i < info.nr_extents; i++)
		EXPECT_NE(0U, ext[i].phys) TH_LOG("extent %u", i);
	/* The child asks on the fd it inherited: credentials decide, not the fd. */
	ctx.pool_fd = self->fd;
	EXPECT_EQ(0, as_nobody(phys_hidden, &ctx));
}

static int memlock_limit(int fd, const struct nobody_ctx *ctx)
{
	struct rlimit rl = { .rlim_cur = 64 << 10, .rlim_max = 64 << 10 };
	long long charged;
	int fd2;

	(void)ctx;
	CHILD_CHECK(setrlimit(RLIMIT_MEMLOCK, &rl) == 0);
	charged = sp_counter("bytes_charged");
	CHILD_CHECK(charged >= 0);
	CHILD_CHECK(sp_create(fd, NULL, 1 << 20, 0, 0600, NULL) == -EDQUOT);
	CHILD_CHECK(sp_counter("bytes_charged") == charged);
	CHILD_CHECK(sp_create(fd, NULL, 32 << 10, 0, 0600, NULL) == 0);
	CHILD_CHECK(sp_counter("bytes_charged") == charged + (32 << 10));
	close(fd);
	CHILD_CHECK(sp_counter("bytes_charged") == charged);
	/* The limit is per user and cumulative, and charges come back. */
	fd = sp_open_dev(O_RDWR);
	fd2 = sp_open_dev(O_RDWR);
	CHILD_CHECK(fd >= 0 && fd2 >= 0);
	CHILD_CHECK(sp_create(fd, NULL, 32 << 10, 0, 0600, NULL) == 0);
	CHILD_CHECK(sp_create(fd2, NULL, 32 << 10, 0, 0600, NULL) == 0);
	close(fd2);
	fd2 = sp_open_dev(O_RDWR);
	CHILD_CHECK(fd2 >= 0);
	CHILD_CHECK(sp_create(fd2, NULL, 36 << 10, 0, 0600, NULL) == -EDQUOT);
	CHILD_CHECK(sp_create(fd2, NULL, 32 << 10, 0, 0600, NULL) == 0);
	close(fd);
	close(fd2);
	CHILD_CHECK(sp_counter("bytes_charged") == charged);
	return 0;
}

TEST_F(share, nobody_memlock_limit)
{
	struct nobody_ctx ctx = { .page = self->page, .pool_fd = -1 };

	EXPECT_EQ(0, as_nobody(memlock_limit, &ctx));
}

static int nobody_creates(int fd, const struct nobody_ctx *ctx)
{
	struct shmpool_info info;
	mode_t old = umask(0);
	uint8_t *p;

	CHILD_CHECK(sp_create(fd, ctx->name, ctx->bytes, SHMPOOL_CREATE_EXCL,
			      ctx->mode, NULL) == 0);
	umask(old);
	CHILD_CHECK(sp_info(fd, &info, NULL, 0) == 0);
	CHILD_CHECK(info.uid == SP_NOBODY && info.gid == SP_NOBODY);
	CHILD_CHECK(info.mode == ctx->mode);
	p = sp_map(fd, ctx->bytes, PROT_READ | PROT_WRITE, 0);
	CHILD_CHECK(p != MAP_FAILED);
	sp_fill(p, ctx->bytes, 0, ctx->seed);
	return 0;
}

TEST_F(share, root_overrides_nobody_pool_permissions)
{
	struct nobody_ctx ctx = { .name = self->name, .page = self->page,
				  .bytes = 2 * self->page, .mode = 0600,
				  .owner = SP_NOBODY, .seed = 14, .pool_fd = -1 };
	struct shmpool_info info;
	uint8_t *p;

	ASSERT_EQ(0, as_nobody(nobody_creates, &ctx));
	ASSERT_EQ(0, sp_open_name(self->fd, self->name, 0, NULL));
	ASSERT_EQ(0, sp_info(self->fd, &info, NULL, 0));
	EXPECT_EQ((uint32_t)SP_NOBODY, info.uid);
	EXPECT_EQ((uint32_t)SP_NOBODY, info.gid);
	EXPECT_EQ(0600U, info.mode);
	p = sp_map(self->fd, ctx.bytes, PROT_READ | PROT_WRITE, 0);
	ASSERT_NE(MAP_FAILED, p);
	EXPECT_EQ(-1, sp_check(p, ctx.bytes, 0, 14));
	munmap(p, ctx.bytes);
	EXPECT_EQ(0, sp_unlink_name(self->name));
}

TEST_F(share, group_bits_decide_for_group_members)
{
	struct nobody_ctx ctx = { .name = self->name, .page = self->page,
				  .bytes = 2 * self->page, .mode = 0640,
				  .owner = SP_NOBODY, .seed = 14, .pool_fd = -1 };

	ASSERT_EQ(0, as_nobody(nobody_creates, &ctx));
	/* Another user in the pool's group: group bits r-. */
	EXPECT_EQ(0, as_user(SP_NOBODY - 1, SP_NOBODY, open_rw_denied, &ctx));
	EXPECT_EQ(0, as_user(SP_NOBODY - 1, SP_NOBODY, open_ro_allowed, &ctx));
	/* Neither owner nor group: other bits ---. */
	EXPECT_EQ(0, as_user(SP_NOBODY - 1, SP_NOBODY - 1, open_ro_denied, &ctx));
	/* The owner may do what the owner bits say. */
	EXPECT_EQ(0, as_nobody(open_rw_allowed, &ctx));
}

TEST_HARNESS_MAIN
