/* pool_mm_test: what the kernel's mm does with pool mappings — PROT_EXEC, madvise, mlock, mremap, io_uring fixed buffers, FOLL_FORCE writes. */
// SPDX-License-Identifier: GPL-2.0
#define _GNU_SOURCE
#include <stddef.h>
#include <sys/personality.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/uio.h>
#include <linux/io_uring.h>

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

/* ---- madvise ---- */

/* A fresh anonymous pool of @pages pages on self->fd, mapped RW and filled. */
static uint8_t *filled_mapping(FIXTURE_DATA(mm) *self, size_t pages,
			       unsigned int seed)
{
	size_t len = pages * self->page;
	uint8_t *p;

	if (sp_create(self->fd, NULL, len, 0, 0600, NULL))
		return MAP_FAILED;
	p = sp_map(self->fd, len, PROT_READ | PROT_WRITE, 0);
	if (p != MAP_FAILED)
		sp_fill(p, len, 0, seed);
	return p;
}

/*
 * MADV_REMOVE punches a hole through the file's fallocate(): the pool has
 * none (EOPNOTSUPP), so it fails and the data stays.
 */
TEST_F(mm, madvise_remove_refused_keeps_data)
{
	size_t len = 8 * self->page;
	uint8_t *p = filled_mapping(self, 8, 11);

	ASSERT_NE(MAP_FAILED, p);
	EXPECT_EQ(-1, madvise(p, len, MADV_REMOVE));
	EXPECT_EQ(EOPNOTSUPP, errno);
	EXPECT_EQ(-1, sp_check(p, len, 0, 11));
	munmap(p, len);
}

/*
 * The kernel asks for a shared mapping that may be written (VM_MAYWRITE),
 * not one that is writable now: a PROT_READ view of a read-write attachment
 * reaches the pool (EOPNOTSUPP), a read-only attachment's mapping is EACCES.
 */
TEST_F(mm, madvise_remove_read_only_views)
{
	size_t len = 2 * self->page;
	uint8_t *p;
	int ro;

	ASSERT_EQ(0, named_pool_with_data(self, 2, 21, 0));
	p = sp_map(self->fd, len, PROT_READ, 0);
	ASSERT_NE(MAP_FAILED, p);
	EXPECT_EQ(-1, madvise(p, len, MADV_REMOVE));
	EXPECT_EQ(EOPNOTSUPP, errno);
	EXPECT_EQ(-1, sp_check(p, len, 0, 21));
	munmap(p, len);
	ro = open_read_only(self);
	ASSERT_GE(ro, 0);
	p = sp_map(ro, len, PROT_READ, 0);
	ASSERT_NE(MAP_FAILED, p);
	EXPECT_EQ(-1, madvise(p, len, MADV_REMOVE));
	EXPECT_EQ(EACCES, errno);
	EXPECT_EQ(-1, sp_check(p, len, 0, 21));
	munmap(p, len);
	close(ro);
}

/* Pool pages are never on an LRU list: there is nothing to reclaim. */
TEST_F(mm, madvise_pageout_keeps_data)
{
	size_t len = 8 * self->page;
	long long pages = sp_counter("pages");
	uint8_t *p = filled_mapping(self, 8, 12);

	ASSERT_NE(MAP_FAILED, p);
	EXPECT_EQ(0, madvise(p, len, MADV_PAGEOUT));
	EXPECT_EQ(-1, sp_check(p, len, 0, 12));
	EXPECT_EQ(pages + 8, sp_counter("pages"));
	munmap(p, len);
}

TEST_F(mm, madvise_cold_keeps_data)
{
	size_t len = 8 * self->page;
	uint8_t *p = filled_mapping(self, 8, 13);

	ASSERT_NE(MAP_FAILED, p);
	EXPECT_EQ(0, madvise(p, len, MADV_COLD));
	EXPECT_EQ(-1, sp_check(p, len, 0, 13));
	munmap(p, len);
}

/* Zapped PTEs fault the same pool pages back, in a read-only view too. */
TEST_F(mm, madvise_dontneed_read_only_attachment_keeps_data)
{
	size_t len = 4 * self->page;
	uint8_t *p;
	int ro;

	ASSERT_EQ(0, named_pool_with_data(self, 4, 14, 0));
	ro = open_read_only(self);
	ASSERT_GE(ro, 0);
	p = sp_map(ro, len, PROT_READ, 0);
	ASSERT_NE(MAP_FAILED, p);
	EXPECT_EQ(-1, sp_check(p, len, 0, 14));
	EXPECT_EQ(0, madvise(p, len, MADV_DONTNEED));
	EXPECT_EQ(-1, sp_check(p, len, 0, 14));
	munmap(p, len);
	close(ro);
}

/* ---- mlock ---- */

/* A "<key> N kB" line of /proc/self/status, in kB, or -1. */
static long status_kb(const char *key)
{
	size_t klen = strlen(key);
	char line[256];
	long kb = -1;
	FILE *f = fopen("/proc/self/status", "re");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, klen) && sscanf(line + klen, "%ld", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

static long smaps_kb(void *addr, const char *key)
{
	char buf[64];
	long kb;

	if (sp_smaps_field(addr, key, buf, sizeof(buf)) || sscanf(buf, "%ld", &kb) != 1)
		return -1;
	return kb;
}

/*
 * The VMA is VM_DONTEXPAND, one of VM_SPECIAL: mlock() succeeds but sets no
 * VM_LOCKED and counts nothing in VmLck. It still faults the pages in (the
 * populate step runs for every VMA that is not VM_IO/VM_PFNMAP). The pages
 * are unevictable anyway: they are not on any LRU list.
 */
TEST_F(mm, mlock_is_a_noop_that_populates)
{
	size_t len = 8 * self->page;
	long lck = status_kb("VmLck:");
	char flags[256];
	uint8_t *p;

	ASSERT_GE(lck, 0);
	ASSERT_EQ(0, sp_create(self->fd, NULL, len, 0, 0600, NULL));
	p = sp_map(self->fd, len, PROT_READ | PROT_WRITE, 0);
	ASSERT_NE(MAP_FAILED, p);
	EXPECT_EQ(0, smaps_kb(p, "Rss:"));
	ASSERT_EQ(0, mlock(p, len));
	ASSERT_EQ(0, sp_vm_flags_of(p, flags, sizeof(flags)));
	EXPECT_FALSE(sp_has_vm_flag(flags, "lo")) TH_LOG("VmFlags:%s", flags);
	/* VM_SPECIAL through VM_DONTEXPAND alone: ordinary pages, no I/O map. */
	EXPECT_TRUE(sp_has_vm_flag(flags, "de")) TH_LOG("VmFlags:%s", flags);
	EXPECT_FALSE(sp_has_vm_flag(flags, "io")) TH_LOG("VmFlags:%s", flags);
	EXPECT_FALSE(sp_has_vm_flag(flags, "pf")) TH_LOG("VmFlags:%s", flags);
	EXPECT_EQ(lck, status_kb("VmLck:"));
	EXPECT_EQ((long)(len / 1024), smaps_kb(p, "Rss:"));
	EXPECT_EQ(0, munlock(p, len));
	EXPECT_EQ(-1, sp_check_byte(p, len, 0));
	munmap(p, len);
}

/* mlockall(MCL_FUTURE) would lock a new mapping; a pool's is left unlocked. */
TEST_F(mm, mlockall_future_leaves_pool_unlocked)
{
	size_t len = 4 * self->page;
	pid_t pid;

	ASSERT_EQ(0, sp_create(self->fd, NULL, len, 0, 0600, NULL));
	fflush(NULL);
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		char flags[256];
		long lck;
		void *p;

		sp_child_init();
		CHILD_CHECK(mlockall(MCL_CURRENT | MCL_FUTURE) == 0);
		lck = status_kb("VmLck:");
		p = sp_map(self->fd, len, PROT_READ | PROT_WRITE, 0);
		CHILD_CHECK(p != MAP_FAILED);
		CHILD_CHECK(sp_vm_flags_of(p, flags, sizeof(flags)) == 0);
		CHILD_CHECK(!sp_has_vm_flag(flags, "lo"));
		CHILD_CHECK(status_kb("VmLck:") == lck);
		CHILD_CHECK(munlockall() == 0);
		_exit(0);
	}
	EXPECT_EQ(0, sp_wait(pid));
}

/* ---- mremap ---- */

TEST_F(mm, mremap_move_pool_follows)
{
	size_t len = 4 * self->page;
	long long pages = sp_counter("pages");
	uint8_t *p, *dst, *q;

	ASSERT_GE(pages, 0);
	p = filled_mapping(self, 4, 15);
	ASSERT_NE(MAP_FAILED, p);
	dst = mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, dst);
	q = mremap(p, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, dst);
	ASSERT_EQ(dst, q);
	/* Only the moved VMA holds the pool now. */
	close(self->fd);
	self->fd = -1;
	EXPECT_EQ(-1, sp_check(q, len, 0, 15));
	q[0] ^= 0xff;
	EXPECT_EQ(pages + 4, sp_counter("pages"));
	ASSERT_EQ(0, munmap(q, len));
	EXPECT_EQ(pages, sp_counter("pages"));
}

/* VM_DONTEXPAND: growth is EFAULT, in place, moving or to a fixed place. */
TEST_F(mm, mremap_grow_efault)
{
	size_t len = 2 * self->page;
	uint8_t *p, *dst;

	ASSERT_EQ(0, sp_create(self->fd, NULL, 4 * self->page, 0, 0600, NULL));
	p = sp_map(self->fd, len, PROT_READ | PROT_WRITE, 0);
	ASSERT_NE(MAP_FAILED, p);
	EXPECT_EQ(MAP_FAILED, mremap(p, len, 2 * len, 0));
	EXPECT_EQ(EFAULT, errno);
	EXPECT_EQ(MAP_FAILED, mremap(p, len, 2 * len, MREMAP_MAYMOVE));
	EXPECT_EQ(EFAULT, errno);
	dst = mmap(NULL, 2 * len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, dst);
	EXPECT_EQ(MAP_FAILED, mremap(p, len, 2 * len, MREMAP_MAYMOVE | MREMAP_FIXED, dst));
	EXPECT_EQ(EFAULT, errno);
	munmap(dst, 2 * len);
	munmap(p, len);
}

#ifndef MREMAP_DONTUNMAP
#define MREMAP_DONTUNMAP	4
#endif

TEST_F(mm, mremap_dontunmap_einval)
{
	size_t len = 2 * self->page;
	uint8_t *p;

	ASSERT_EQ(0, sp_create(self->fd, NULL, len, 0, 0600, NULL));
	p = sp_map(self->fd, len, PROT_READ | PROT_WRITE, 0);
	ASSERT_NE(MAP_FAILED, p);
	EXPECT_EQ(MAP_FAILED, mremap(p, len, len, MREMAP_MAYMOVE | MREMAP_DONTUNMAP));
	EXPECT_EQ(EINVAL, errno);
	munmap(p, len);
}

/* ---- FOLL_FORCE writes: /proc/self/mem and ptrace ---- */

/*
 * Writes through /proc/<pid>/mem use FOLL_FORCE. On a shared mapping
 * without VM_WRITE the kernel refuses them (only private COW mappings may be
 * force-written, into a private copy): EIO, and the pool is untouched.
 */
static int mem_write(void *addr, const void *buf, size_t len)
{
	int fd = open("/proc/self/mem", O_RDWR | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = pwrite(fd, buf, len, (off_t)(uintptr_t)addr);
	close(fd);
	if (n < 0)
		return -errno;
	return n == (ssize_t)len ? 0 : -EIO;
}

TEST_F(mm, proc_mem_write_read_only_attachment_refused)
{
	uint8_t junk[16];
	uint8_t *p;
	int ro;

	memset(junk, 0xa5, sizeof(junk));
	ASSERT_EQ(0, named_pool_with_data(self, 2, 16, 0));
	ro = open_read_only(self);
	ASSERT_GE(ro, 0);
	p = sp_map(ro, 2 * self->page, PROT_READ, 0);
	ASSERT_NE(MAP_FAILED, p);
	EXPECT_EQ(-EIO, mem_write(p + 8, junk, sizeof(junk)));
	EXPECT_EQ(-EIO, mem_write(p + self->page, junk, sizeof(junk)));
	EXPECT_EQ(-1, sp_check(p, 2 * self->page, 0, 16));
	munmap(p, 2 * self->page);
	close(ro);

	/* Attached through an O_RDONLY fd: the mapping is not even VM_SHARED. */
	ro = sp_open_dev(O_RDONLY);
	ASSERT_GE(ro, 0);
	ASSERT_EQ(0, sp_open_name(ro, self->name, SHMPOOL_OPEN_RDONLY, NULL));
	p = sp_map(ro, self->page, PROT_READ, 0);
	ASSERT_NE(MAP_FAILED, p);
	EXPECT_EQ(-EIO, mem_write(p, junk, sizeof(junk)));
	EXPECT_EQ(-1, sp_check(p, self->page, 0, 16));
	munmap(p, self->page);
	close(ro);
}

/* Same for a PROT_READ view of a read-write attachment (VM_MAYWRITE). */
TEST_F(mm, proc_mem_write_prot_read_mapping_refused)
{
	uint8_t junk[16];
	uint8_t *p;

	memset(junk, 0x5a, sizeof(junk));
	ASSERT_EQ(0, named_pool_with_data(self, 1, 17, 0));
	p = sp_map(self->fd, self->page, PROT_READ, 0);
	ASSERT_NE(MAP_FAILED, p);
	EXPECT_EQ(-EIO, mem_write(p, junk, sizeof(junk)));
	EXPECT_EQ(-1, sp_check(p, self->page, 0, 17));
	munmap(p, self->page);
}

/* A writable view may be written that way, like any other way. */
TEST_F(mm, proc_mem_write_writable_mapping_writes_pool)
{
	uint8_t junk[16];
	uint8_t *p, *q;

	memset(junk, 0x3c, sizeof(junk));
	p = filled_mapping(self, 1, 18);
	ASSERT_NE(MAP_FAILED, p);
	q = sp_map(self->fd, self->page, PROT_READ, 0);
	ASSERT_NE(MAP_FAILED, q);
	EXPECT_EQ(0, mem_write(p, junk, sizeof(junk)));
	EXPECT_EQ(-1, sp_check_byte(q, sizeof(junk), 0x3c));
	munmap(q, self->page);
	munmap(p, self->page);
}

/* A child stopped under ptrace; the parent pokes into its mappings. */
static pid_t traced_child(void)
{
	pid_t pid = fork();

	if (pid == 0) {
		sp_child_init();
		if (ptrace(PTRACE_TRACEME, 0, NULL, NULL))
			_exit(1);
		raise(SIGSTOP);
		_exit(0);
	}
	return pid;
}

TEST_F(mm, ptrace_poke_read_only_attachment_refused)
{
	long word = 0x4141414141414141L;
	uint8_t *p, *w;
	int status, ro;
	pid_t pid;

	ASSERT_EQ(0, named_pool_with_data(self, 1, 19, 0));
	ro = open_read_only(self);
	ASSERT_GE(ro, 0);
	p = sp_map(ro, self->page, PROT_READ, 0);
	ASSERT_NE(MAP_FAILED, p);
	w = sp_map(self->fd, self->page, PROT_READ | PROT_WRITE, 0);
	ASSERT_NE(MAP_FAILED, w);
	fflush(NULL);
	pid = traced_child();
	ASSERT_GE(pid, 0);
	ASSERT_EQ(pid, waitpid(pid, &status, WUNTRACED));
	ASSERT_TRUE(WIFSTOPPED(status));

	/* Reading works (FOLL_FORCE read of a pool page). */
	errno = 0;
	EXPECT_EQ(*(long *)p, ptrace(PTRACE_PEEKDATA, pid, p, NULL));
	EXPECT_EQ(0, errno);
	EXPECT_EQ(-1, ptrace(PTRACE_POKEDATA, pid, p, (void *)word));
	EXPECT_EQ(EIO, errno);
	/* The child's writable view of the same page may be poked. */
	EXPECT_EQ(0, ptrace(PTRACE_POKEDATA, pid, w + 8, (void *)word));

	kill(pid, SIGKILL);
	sp_wait(pid);
	EXPECT_EQ(-1, sp_check(p, 8, 0, 19));
	EXPECT_EQ(word, *(long *)(p + 8));
	EXPECT_EQ(-1, sp_check(p + 16, self->page - 16, 16, 19));
	munmap(w, self->page);
	munmap(p, self->page);
	close(ro);
}

/* ---- io_uring fixed buffers (raw syscalls) ---- */

struct uring {
	int fd;
	struct io_uring_params p;
	void *sq, *cq;
	size_t sq_len, cq_len;
	struct io_uring_sqe *sqes;
	size_t sqes_len;
};

static int uring_init(struct uring *r)
{
	memset(r, 0, sizeof(*r));
	r->fd = syscall(__NR_io_uring_setup, 4, &r->p);
	if (r->fd < 0)
		return -errno;
	r->sq_len = r->p.sq_off.array + r->p.sq_entries * sizeof(uint32_t);
	r->cq_len = r->p.cq_off.cqes + r->p.cq_entries * sizeof(struct io_uring_cqe);
	r->sqes_len = r->p.sq_entries * sizeof(struct io_uring_sqe);
	r->sq = mmap(NULL, r->sq_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
		     r->fd, IORING_OFF_SQ_RING);
	r->cq = mmap(NULL, r->cq_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
		     r->fd, IORING_OFF_CQ_RING);
	r->sqes = mmap(NULL, r->sqes_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
		       r->fd, IORING_OFF_SQES);
	if (r->sq == MAP_FAILED || r->cq == MAP_FAILED || r->sqes == MAP_FAILED)
		return -ENOMEM;
	return 0;
}

static void uring_exit(struct uring *r)
{
	munmap(r->sq, r->sq_len);
	munmap(r->cq, r->cq_len);
	munmap(r->sqes, r->sqes_len);
	close(r->fd);
}

/* Submit one read/write of @len at file offset 0 and wait: its res. */
static int uring_rw_fixed(struct uring *r, uint8_t op, int fd, void *buf,
			  uint32_t len)
{
	uint32_t *sq_tail = (uint32_t *)((char *)r->sq + r->p.sq_off.tail);
	uint32_t mask = *(uint32_t *)((char *)r->sq + r->p.sq_off.ring_mask);
	uint32_t *array = (uint32_t *)((char *)r->sq + r->p.sq_off.array);
	uint32_t *cq_head = (uint32_t *)((char *)r->cq + r->p.cq_off.head);
	uint32_t cmask = *(uint32_t *)((char *)r->cq + r->p.cq_off.ring_mask);
	struct io_uring_cqe *cqes = (void *)((char *)r->cq + r->p.cq_off.cqes);
	uint32_t tail = *sq_tail, head;
	struct io_uring_sqe *sqe = &r->sqes[tail & mask];
	int res;

	memset(sqe, 0, sizeof(*sqe));
	sqe->opcode = op;
	sqe->fd = fd;
	sqe->addr = (uintptr_t)buf;
	sqe->len = len;
	sqe->buf_index = 0;
	array[tail & mask] = tail & mask;
	/* The kernel reads the SQE once it sees the new tail. */
	__atomic_store_n(sq_tail, tail + 1, __ATOMIC_RELEASE);
	if (syscall(__NR_io_uring_enter, r->fd, 1, 1, IORING_ENTER_GETEVENTS, NULL, 0) < 0)
		return -errno;
	head = __atomic_load_n(cq_head, __ATOMIC_ACQUIRE);
	res = cqes[head & cmask].res;
	__atomic_store_n(cq_head, head + 1, __ATOMIC_RELEASE);
	return res;
}

/*
 * Pool pages are ordinary refcounted pages, but 6.1's io_uring refuses
 * file-backed memory other than shmem/hugetlbfs for fixed buffers
 * (EOPNOTSUPP); later kernels (6.12) pin them. When it works, I/O lands in
 * the pool, and the pin keeps the pages after the pool itself is gone.
 */
TEST_F(mm, io_uring_fixed_buffer)
{
	size_t len = 4 * self->page;
	long long pages = sp_counter("pages");
	struct uring r;
	struct iovec iov;
	uint8_t *p, *q, *src;
	int ret, mfd;

	ASSERT_GE(pages, 0);
	ret = uring_init(&r);
	if (ret == -ENOSYS || ret == -EPERM)
		SKIP(return, "io_uring not available (%d)", ret);
	ASSERT_EQ(0, ret);
	ASSERT_EQ(0, sp_create(self->fd, NULL, len, 0, 0600, NULL));
	p = sp_map(self->fd, len, PROT_READ | PROT_WRITE, 0);
	ASSERT_NE(MAP_FAILED, p);
	q = sp_map(self->fd, len, PROT_READ, 0);
	ASSERT_NE(MAP_FAILED, q);
	iov.iov_base = p;
	iov.iov_len = len;
	ret = syscall(__NR_io_uring_register, r.fd, IORING_REGISTER_BUFFERS, &iov, 1);
	if (ret < 0) {
		EXPECT_EQ(EOPNOTSUPP, errno);
		TH_LOG("IORING_REGISTER_BUFFERS on a pool: errno %d (this kernel refuses it)", errno);
		goto out;
	}
	TH_LOG("IORING_REGISTER_BUFFERS on a pool: works on this kernel");

	/* A memfd with a pattern, read into the pool through the fixed buffer. */
	mfd = memfd_create("src", MFD_CLOEXEC);
	ASSERT_GE(mfd, 0);
	ASSERT_EQ(0, ftruncate(mfd, len));
	src = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	ASSERT_NE(MAP_FAILED, src);
	sp_fill(src, len, 0, 20);
	EXPECT_EQ((int)len, uring_rw_fixed(&r, IORING_OP_READ_FIXED, mfd, p, len));
	EXPECT_EQ(-1, sp_check(q, len, 0, 20));
	/* And written back out of it. */
	memset(src, 0, len);
	EXPECT_EQ((int)len, uring_rw_fixed(&r, IORING_OP_WRITE_FIXED, mfd, p, len));
	EXPECT_EQ(-1, sp_check(src, len, 0, 20));

	/* The pool goes; the pinned pages stay io_uring's until unregistered. */
	munmap(q, len);
	munmap(p, len);
	close(self->fd);
	self->fd = -1;
	EXPECT_EQ(pages, sp_counter("pages"));
	EXPECT_EQ((int)len, uring_rw_fixed(&r, IORING_OP_READ_FIXED, mfd, p, len));
	EXPECT_EQ(0, (int)syscall(__NR_io_uring_register, r.fd, IORING_UNREGISTER_BUFFERS, NULL, 0));
	munmap(src, len);
	close(mfd);
	uring_exit(&r);
	return;
out:
	munmap(q, len);
	munmap(p, len);
	uring_exit(&r);
}

TEST_HARNESS_MAIN
