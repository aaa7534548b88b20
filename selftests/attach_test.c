/* attach_test: shmpool attachments (ATTACH, DETACH, the status page, WAIT_DEATH, poll) — one test per rejected input, then deaths by exit, kill, exec, across PID namespaces. */
// SPDX-License-Identifier: GPL-2.0
#define _GNU_SOURCE
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stddef.h>
#include <sys/mount.h>

#include "shmpool_test_util.h"

#define AT_PAGES	4
#define AWAIT_MS	20000		/* hang detector: TCG and the debug kernel are slow */
#define AWAIT_NS	(AWAIT_MS * 1000000ULL)
#define AT_EXEC_ENV	"SHMPOOL_ATTACH_TEST_EXEC"
#define AT_LINGER_ENV	"SHMPOOL_ATTACH_TEST_LINGER"

static int at_attach(int fd, uint32_t flags, struct shmpool_attach *a);
static int at_detach(int fd, uint32_t id);

/* An exec()ed copy of this test (exec_ends_attachment): just wait to be killed. */
__attribute__((constructor)) static void at_exec_child(void)
{
	if (!getenv(AT_EXEC_ENV))
		return;
	for (;;)
		pause();
}

/*
 * SHMPOOL_ATTACH_TEST_LINGER=1 (the VM's init, before rmmod): ATTACH and
 * DETACH once, close every fd of the module, say "ready" on stdout and
 * wait to be killed. The mm keeps its mmu notifier after its last
 * attachment, so rmmod drops it under a live process, and this process's
 * exit then meets no notifier of a module that is gone.
 */
__attribute__((constructor)) static void at_linger(void)
{
	struct shmpool_attach a;
	int fd;

	if (!getenv(AT_LINGER_ENV))
		return;
	fd = sp_anon_pool(sp_page_size());
	if (fd < 0 || at_attach(fd, 0, &a) || at_detach(fd, a.id)) {
		printf("linger: ATTACH and DETACH failed\n");
		exit(1);
	}
	close(fd);
	printf("ready\n");
	fflush(stdout);
	for (;;)
		pause();
}

static int at_attach(int fd, uint32_t flags, struct shmpool_attach *a)
{
	memset(a, 0, sizeof(*a));
	a->size = sizeof(*a);
	a->flags = flags;
	return sp_ioctl(fd, SHMPOOL_IOC_ATTACH, a);
}

/* ATTACH: the id, or -errno. */
static int at_id(int fd)
{
	struct shmpool_attach a;
	int ret = at_attach(fd, 0, &a);

	return ret ? ret : (int)a.id;
}

static int at_detach(int fd, uint32_t id)
{
	struct shmpool_detach d;

	memset(&d, 0, sizeof(d));
	d.size = sizeof(d);
	d.id = id;
	return sp_ioctl(fd, SHMPOOL_IOC_DETACH, &d);
}

static volatile struct shmpool_status *at_status(int fd)
{
	void *p = mmap(NULL, sp_page_size(), PROT_READ, MAP_SHARED, fd,
		       (off_t)SHMPOOL_STATUS_OFFSET);

	return p == MAP_FAILED ? NULL : p;
}

static uint32_t at_seq(volatile struct shmpool_status *st)
{
	/* Pairs with the module's release store of death_seq. */
	return __atomic_load_n(&st->death_seq, __ATOMIC_ACQUIRE);
}

static bool at_alive(volatile struct shmpool_status *st, uint32_t id)
{
	return st->slot[id & SHMPOOL_ATTACH_SLOT_MASK] == id;
}

/* WAIT with SHMPOOL_WAIT_DEATH and a hang-detector deadline. */
static int at_wait_death(int fd, uint64_t off, uint32_t expected, uint32_t seq)
{
	struct shmpool_wait w;

	memset(&w, 0, sizeof(w));
	w.size = sizeof(w);
	w.flags = SHMPOOL_WAIT_DEATH | SHMPOOL_WAIT_DEADLINE;
	w.offset = off;
	w.expected = expected;
	w.bitset = SHMPOOL_BITSET_ANY;
	w.deadline_ns = sp_now_ns(CLOCK_MONOTONIC) + AWAIT_NS;
	w.death_seq = seq;
	return sp_ioctl(fd, SHMPOOL_IOC_WAIT, &w);
}

/*
 * WAIT with SHMPOOL_WAIT_OWNER (owner bits @mask) and a hang-detector
 * deadline; @flags adds to OWNER | DEADLINE.
 */
static int at_wait_owner(int fd, uint64_t off, uint32_t expected,
			 uint32_t mask, uint32_t flags, uint32_t seq)
{
	struct shmpool_wait w;

	memset(&w, 0, sizeof(w));
	w.size = sizeof(w);
	w.flags = SHMPOOL_WAIT_OWNER | SHMPOOL_WAIT_DEADLINE | flags;
	w.offset = off;
	w.expected = expected;
	w.bitset = SHMPOOL_BITSET_ANY;
	w.deadline_ns = sp_now_ns(CLOCK_MONOTONIC) + AWAIT_NS;
	w.death_seq = seq;
	w.owner_mask = mask;
	return sp_ioctl(fd, SHMPOOL_IOC_WAIT, &w);
}

/*
 * Store @word at offset 0 of @fd's pool and sleep on it with DEATH |
 * OWNER, the owner in the id bits: what a lock's sleeper does.
 */
static int at_wait_owner_word(int fd, uint32_t word)
{
	uint32_t *p = sp_map(fd, sp_page_size(), PROT_READ | PROT_WRITE, 0);
	int ret;

	if (p == MAP_FAILED)
		return -ENOMEM;
	__atomic_store_n(p, word, __ATOMIC_RELAXED);
	ret = at_wait_owner(fd, 0, word, SHMPOOL_ATTACH_ID_MAX,
			    SHMPOOL_WAIT_DEATH, 0);
	munmap(p, sp_page_size());
	return ret;
}

/* Wait (bounded) until @id is gone from the status page. */
static bool at_await_gone(volatile struct shmpool_status *st, uint32_t id)
{
	int i;

	for (i = 0; i < AWAIT_MS / 10; i++) {
		if (!at_alive(st, id))
			return true;
		usleep(10000);
	}
	return false;
}

static int at_read_u32(int rfd, uint32_t *v)
{
	struct pollfd p = { .fd = rfd, .events = POLLIN };

	if (poll(&p, 1, AWAIT_MS) != 1)
		return -ETIMEDOUT;
	return read(rfd, v, sizeof(*v)) == sizeof(*v) ? 0 : -EIO;
}

/*
 * A child that ATTACHes on @fd, writes its id (or -errno) to the pipe and
 * then sleeps until killed (or, with @detach, DETACHes and exits).
 */
static pid_t at_spawn_attached(int fd, uint32_t *id)
{
	int p[2];
	pid_t pid;

	if (pipe2(p, O_CLOEXEC))
		return -1;
	pid = fork();
	if (pid == 0) {
		uint32_t v;

		sp_child_init();
		v = (uint32_t)at_id(fd);
		if (write(p[1], &v, sizeof(v)) != sizeof(v))
			_exit(1);
		for (;;)
			pause();
	}
	close(p[1]);
	if (pid > 0 && at_read_u32(p[0], id)) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		pid = -1;
	}
	close(p[0]);
	return pid;
}

static void at_kill(pid_t pid)
{
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

/* Number of tasks sleeping in WAIT/WAITV, module-wide. */
static long long at_waiters(void)
{
	return sp_counter("waiters");
}

/* Until the module counts @n sleepers (bounded). */
static bool at_await_waiters(long long n)
{
	int i;

	for (i = 0; i < AWAIT_MS / 10; i++) {
		if (at_waiters() >= n)
			return true;
		usleep(10000);
	}
	return false;
}

FIXTURE(att) {
	int dev;
	int fd;			/* an anonymous pool of AT_PAGES pages */
	long page;
	struct shmpool_api api;
	volatile struct shmpool_status *st;
};

FIXTURE_SETUP(att)
{
	if (!sp_setup_dev(_metadata, &self->dev, &self->page, &self->api))
		return;
	/* API 3 without attachments: a kernel without CONFIG_MMU_NOTIFIER. */
	if (!(self->api.features & SHMPOOL_FEAT_ATTACH) && self->api.version >= 3)
		SP_SKIP_SETUP("module without attachments (kernel without mmu notifiers)");
	if (!(self->api.features & SHMPOOL_FEAT_ATTACH)) {
		struct shmpool_attach a;

		self->fd = sp_anon_pool(AT_PAGES * self->page);
		ASSERT_LE(0, self->fd);
		/* Fail, not skip, on a module whose API has the ioctl numbers. */
		ASSERT_EQ(0, at_attach(self->fd, 0, &a));
	}
	self->fd = sp_anon_pool(AT_PAGES * self->page);
	ASSERT_LE(0, self->fd);
	self->st = at_status(self->fd);
	ASSERT_NE(NULL, self->st);
}

FIXTURE_TEARDOWN(att)
{
	if (self->st)
		munmap((void *)self->st, self->page);
	close(self->fd);
	close(self->dev);
}

/* ---- rejected inputs ---- */

TEST_F(att, attach_unknown_flag)
{
	struct shmpool_attach a = { .size = sizeof(a), .flags = 1U << 1 };

	EXPECT_EQ(-EINVAL, sp_ioctl(self->fd, SHMPOOL_IOC_ATTACH, &a));
}

TEST_F(att, attach_reserved)
{
	struct shmpool_attach a = { .size = sizeof(a), .__reserved = 1 };

	EXPECT_EQ(-EINVAL, sp_ioctl(self->fd, SHMPOOL_IOC_ATTACH, &a));
}

TEST_F(att, attach_size_too_small)
{
	struct shmpool_attach a = { .size = offsetof(struct shmpool_attach, __reserved) };

	EXPECT_EQ(-EINVAL, sp_ioctl(self->fd, SHMPOOL_IOC_ATTACH, &a));
}

TEST_F(att, attach_longer_nonzero_tail)
{
	struct { struct shmpool_attach a; uint64_t tail; } b = {
		.a.size = sizeof(b), .tail = 1,
	};

	EXPECT_EQ(-E2BIG, sp_ioctl(self->fd, SHMPOOL_IOC_ATTACH, &b));
}

TEST_F(att, attach_on_scope_fd)
{
	struct shmpool_attach a;

	EXPECT_EQ(-ENOTTY, at_attach(self->dev, 0, &a));
}

TEST_F(att, detach_unknown_flag)
{
	struct shmpool_detach d = { .size = sizeof(d), .flags = 1 };
	int id = at_id(self->fd);

	ASSERT_LT(0, id);
	d.id = id;
	EXPECT_EQ(-EINVAL, sp_ioctl(self->fd, SHMPOOL_IOC_DETACH, &d));
	EXPECT_EQ(0, at_detach(self->fd, id));
}

TEST_F(att, detach_reserved)
{
	struct shmpool_detach d = { .size = sizeof(d), .__reserved = 1 };
	int id = at_id(self->fd);

	ASSERT_LT(0, id);
	d.id = id;
	EXPECT_EQ(-EINVAL, sp_ioctl(self->fd, SHMPOOL_IOC_DETACH, &d));
	EXPECT_EQ(0, at_detach(self->fd, id));
}

TEST_F(att, detach_not_attached)
{
	EXPECT_EQ(-ENOENT, at_detach(self->fd, 1));
}

TEST_F(att, detach_wrong_id)
{
	int id = at_id(self->fd);

	ASSERT_LT(0, id);
	EXPECT_EQ(-ENOENT, at_detach(self->fd, id + 1));
	EXPECT_EQ(-ENOENT, at_detach(self->fd, 0));
	EXPECT_EQ(-ENOENT, at_detach(self->fd, id ^ (1U << SHMPOOL_ATTACH_SLOT_BITS)));
	EXPECT_EQ(0, at_detach(self->fd, id));
}

/* An id of the same process in another pool is not this pool's. */
TEST_F(att, detach_id_of_other_pool)
{
	int other = sp_anon_pool(self->page);
	int id;

	ASSERT_LE(0, other);
	id = at_id(other);
	ASSERT_LT(0, id);
	EXPECT_EQ(-ENOENT, at_detach(self->fd, id));
	EXPECT_EQ(0, at_detach(other, id));
	close(other);
}

TEST_F(att, status_map_write)
{
	errno = 0;
	EXPECT_EQ(MAP_FAILED, mmap(NULL, self->page, PROT_READ | PROT_WRITE,
				   MAP_SHARED, self->fd, (off_t)SHMPOOL_STATUS_OFFSET));
	EXPECT_EQ(EACCES, errno);
}

TEST_F(att, status_map_exec)
{
	errno = 0;
	EXPECT_EQ(MAP_FAILED, mmap(NULL, self->page, PROT_READ | PROT_EXEC,
				   MAP_SHARED, self->fd, (off_t)SHMPOOL_STATUS_OFFSET));
	EXPECT_EQ(EACCES, errno);
}

TEST_F(att, status_map_private)
{
	errno = 0;
	EXPECT_EQ(MAP_FAILED, mmap(NULL, self->page, PROT_READ, MAP_PRIVATE,
				   self->fd, (off_t)SHMPOOL_STATUS_OFFSET));
	EXPECT_EQ(EINVAL, errno);
}

TEST_F(att, status_map_two_pages)
{
	errno = 0;
	EXPECT_EQ(MAP_FAILED, mmap(NULL, 2 * self->page, PROT_READ, MAP_SHARED,
				   self->fd, (off_t)SHMPOOL_STATUS_OFFSET));
	EXPECT_EQ(EINVAL, errno);
}

TEST_F(att, status_map_offset_after)
{
	errno = 0;
	EXPECT_EQ(MAP_FAILED, mmap(NULL, self->page, PROT_READ, MAP_SHARED, self->fd,
				   (off_t)SHMPOOL_STATUS_OFFSET + self->page));
	EXPECT_EQ(EINVAL, errno);
}

TEST_F(att, status_map_offset_before)
{
	errno = 0;
	EXPECT_EQ(MAP_FAILED, mmap(NULL, 2 * self->page, PROT_READ, MAP_SHARED, self->fd,
				   (off_t)SHMPOOL_STATUS_OFFSET - self->page));
	EXPECT_EQ(EINVAL, errno);
}

TEST_F(att, status_mprotect_write)
{
	EXPECT_EQ(-1, mprotect((void *)self->st, self->page, PROT_READ | PROT_WRITE));
	EXPECT_EQ(EACCES, errno);
}

TEST_F(att, status_mprotect_exec)
{
	EXPECT_EQ(-1, mprotect((void *)self->st, self->page, PROT_READ | PROT_EXEC));
	EXPECT_EQ(EACCES, errno);
}

/* Not even a FOLL_FORCE write (/proc/self/mem) changes the kernel's record. */
TEST_F(att, status_forced_write)
{
	int mem = open("/proc/self/mem", O_RDWR | O_CLOEXEC);
	uint32_t v = 0x12345678;

	ASSERT_LE(0, mem);
	EXPECT_EQ(-1, pwrite(mem, &v, sizeof(v), (off_t)(uintptr_t)&self->st->slot[0]));
	EXPECT_EQ(EIO, errno);
	EXPECT_EQ(0U, self->st->slot[0]);
	close(mem);
}

TEST_F(att, wait_death_on_waitv)
{
	struct shmpool_waitv_entry e;

	sp_db_entry(&e, -1, 0, 0, SHMPOOL_BITSET_ANY);
	EXPECT_EQ(-EINVAL, sp_db_waitv(self->fd, &e, 1, SHMPOOL_WAIT_DEATH, 0));
}

TEST_F(att, wait_death_seq_without_flag)
{
	struct shmpool_wait w = {
		.size = sizeof(w), .expected = 1, .bitset = SHMPOOL_BITSET_ANY,
		.death_seq = 1,
	};

	EXPECT_EQ(-EINVAL, sp_ioctl(self->fd, SHMPOOL_IOC_WAIT, &w));
}

TEST_F(att, wait_owner_mask_without_owner)
{
	struct shmpool_wait w = {
		.size = sizeof(w), .flags = SHMPOOL_WAIT_DEATH, .expected = 1,
		.bitset = SHMPOOL_BITSET_ANY, .owner_mask = 1,
	};

	EXPECT_EQ(-EINVAL, sp_ioctl(self->fd, SHMPOOL_IOC_WAIT, &w));
}

/* The rest take a live owner in the word: only the input is wrong. */
TEST_F(att, wait_owner_without_death)
{
	int id = at_id(self->fd);

	ASSERT_LT(0, id);
	EXPECT_EQ(-EINVAL, at_wait_owner(self->fd, 0, (uint32_t)id,
					 SHMPOOL_ATTACH_ID_MAX, 0, 0));
}

TEST_F(att, wait_owner_on_waitv)
{
	struct shmpool_waitv_entry e;

	sp_db_entry(&e, -1, 0, 0, SHMPOOL_BITSET_ANY);
	EXPECT_EQ(-EINVAL, sp_db_waitv(self->fd, &e, 1, SHMPOOL_WAIT_OWNER, 0));
	EXPECT_EQ(-EINVAL, sp_db_waitv(self->fd, &e, 1,
				       SHMPOOL_WAIT_DEATH | SHMPOOL_WAIT_OWNER, 0));
}

TEST_F(att, wait_owner_mask_zero)
{
	int id = at_id(self->fd);

	ASSERT_LT(0, id);
	EXPECT_EQ(-EINVAL, at_wait_owner(self->fd, 0, (uint32_t)id, 0,
					 SHMPOOL_WAIT_DEATH, 0));
}

TEST_F(att, wait_owner_death_seq_nonzero)
{
	int id = at_id(self->fd);

	ASSERT_LT(0, id);
	EXPECT_EQ(-EINVAL, at_wait_owner(self->fd, 0, (uint32_t)id,
					 SHMPOOL_ATTACH_ID_MAX,
					 SHMPOOL_WAIT_DEATH, 1));
}

/* ---- what works ---- */

TEST_F(att, api_reports_attach)
{
	EXPECT_TRUE(!!(self->api.features & SHMPOOL_FEAT_ATTACH));
}

TEST_F(att, api_reports_wait_owner)
{
	EXPECT_TRUE(!!(self->api.features & SHMPOOL_FEAT_WAIT_OWNER));
}

/* An owner that never attached (or 0) is dead at once, before @expected. */
TEST_F(att, wait_owner_never_live)
{
	int id = at_id(self->fd);

	ASSERT_LT(0, id);
	/* Same slot, next generation: another id, never attached. */
	EXPECT_EQ(-EOWNERDEAD, at_wait_owner_word(self->fd, (uint32_t)id +
						  (1U << SHMPOOL_ATTACH_SLOT_BITS)));
	EXPECT_EQ(-EOWNERDEAD, at_wait_owner_word(self->fd,
						  (uint32_t)id ^ 1));
	EXPECT_EQ(-EOWNERDEAD, at_wait_owner_word(self->fd, 0));
	/* Owner bits 0, flag bits above them: still nobody's. */
	EXPECT_EQ(-EOWNERDEAD, at_wait_owner_word(self->fd, 1U << 31));
	/* The word (0) differs: the owner's liveness is checked first. */
	EXPECT_EQ(-EOWNERDEAD, at_wait_owner(self->fd, 0, (uint32_t)id + 1,
					     SHMPOOL_ATTACH_ID_MAX,
					     SHMPOOL_WAIT_DEATH, 0));
	/* A live owner: the word decides. */
	EXPECT_EQ(-EAGAIN, at_wait_owner(self->fd, 0, (uint32_t)id,
					 SHMPOOL_ATTACH_ID_MAX,
					 SHMPOOL_WAIT_DEATH, 0));
	EXPECT_EQ(0, at_detach(self->fd, (uint32_t)id));
}

/* An owner that ended, by DETACH or by death, is dead at once. */
TEST_F(att, wait_owner_ended)
{
	int id = at_id(self->fd);
	uint32_t kid;
	pid_t victim;

	ASSERT_LT(0, id);
	ASSERT_EQ(0, at_detach(self->fd, (uint32_t)id));
	EXPECT_EQ(-EOWNERDEAD, at_wait_owner_word(self->fd, (uint32_t)id));
	victim = at_spawn_attached(self->fd, &kid);
	ASSERT_LT(0, victim);
	at_kill(victim);
	EXPECT_EQ(-EOWNERDEAD, at_wait_owner_word(self->fd, kid));
}

/* A caller built before death_seq (the first struct version) still works. */
TEST_F(att, wait_old_size)
{
	struct shmpool_wait w = {
		.size = offsetof(struct shmpool_wait, death_seq), .expected = 1,
		.bitset = SHMPOOL_BITSET_ANY,
	};

	EXPECT_EQ(-EAGAIN, sp_ioctl(self->fd, SHMPOOL_IOC_WAIT, &w));
}

TEST_F(att, status_page_header)
{
	EXPECT_EQ(SHMPOOL_STATUS_MAGIC, (int)self->st->magic);
	EXPECT_EQ(SHMPOOL_ATTACH_MAX, (int)self->st->nr_slots);
	EXPECT_EQ(0, (int)self->st->live);
	EXPECT_EQ(0U, at_seq(self->st));
}

TEST_F(att, attach_twice_same_id_counted)
{
	struct shmpool_attach a, b;

	ASSERT_EQ(0, at_attach(self->fd, 0, &a));
	EXPECT_NE(0U, a.id);
	EXPECT_GE(SHMPOOL_ATTACH_ID_MAX, a.id);
	EXPECT_EQ(SHMPOOL_STATUS_OFFSET, a.status_offset);
	ASSERT_EQ(0, at_attach(self->fd, 0, &b));
	EXPECT_EQ(a.id, b.id);
	EXPECT_TRUE(at_alive(self->st, a.id));
	EXPECT_EQ(1, (int)self->st->live);
	EXPECT_EQ(1, at_detach(self->fd, a.id));
	EXPECT_TRUE(at_alive(self->st, a.id));
	EXPECT_EQ(a.death_seq, at_seq(self->st));
	EXPECT_EQ(0, at_detach(self->fd, a.id));
	EXPECT_FALSE(at_alive(self->st, a.id));
	EXPECT_EQ(0, (int)self->st->live);
	EXPECT_EQ(a.death_seq + 1, at_seq(self->st));
	EXPECT_EQ(-ENOENT, at_detach(self->fd, a.id));
}

/* Every fd of the pool, a read-only one too, names the same attachment. */
TEST_F(att, attach_read_only_fd)
{
	char name[SHMPOOL_NAME_MAX];
	int rw = sp_open_dev(O_RDWR), ro = sp_open_dev(O_RDWR);
	int id;

	ASSERT_LE(0, rw);
	ASSERT_LE(0, ro);
	sp_make_name(name, "ro");
	ASSERT_EQ(0, sp_create(rw, name, self->page, 0, 0600, NULL));
	ASSERT_EQ(0, sp_open_name(ro, name, SHMPOOL_OPEN_RDONLY, NULL));
	id = at_id(ro);
	EXPECT_LT(0, id);
	EXPECT_EQ(id, at_id(rw));
	EXPECT_EQ(1, at_detach(rw, id));
	EXPECT_EQ(0, at_detach(ro, id));
	sp_unlink_quiet(name);
	close(ro);
	close(rw);
}

/* Attachments to two pools are independent. */
TEST_F(att, two_pools_two_ids)
{
	int other = sp_anon_pool(self->page);
	int a, b;

	ASSERT_LE(0, other);
	a = at_id(self->fd);
	b = at_id(other);
	ASSERT_LT(0, a);
	ASSERT_LT(0, b);
	EXPECT_EQ(0, at_detach(other, b));
	EXPECT_TRUE(at_alive(self->st, a));
	EXPECT_EQ(0U, at_seq(self->st));
	EXPECT_EQ(0, at_detach(self->fd, a));
	close(other);
}

/*
 * A child that sleeps on word 0 of @fd's pool while it is @word, with
 * WAIT_DEATH (ends after @seq); with @owner_mask non-zero with WAIT_OWNER
 * too (the owner in those bits of @word; @seq unused). It writes what WAIT
 * returned to @wfd. -1 if fork() fails.
 */
static pid_t at_spawn_sleeper(int fd, uint32_t word, uint32_t owner_mask,
			      uint32_t seq, int wfd)
{
	pid_t pid = fork();

	if (pid == 0) {
		int32_t r;

		sp_child_init();
		if (owner_mask)
			r = at_wait_owner(fd, 0, word, owner_mask,
					  SHMPOOL_WAIT_DEATH, seq);
		else
			r = at_wait_death(fd, 0, word, seq);
		CHILD_CHECK(write(wfd, &r, sizeof(r)) == sizeof(r));
		_exit(0);
	}
	return pid;
}

/* at_spawn_sleeper() with WAIT_OWNER: the owner in the id bits of @word */
static pid_t at_spawn_owner_sleeper(int fd, uint32_t word, int wfd)
{
	return at_spawn_sleeper(fd, word, SHMPOOL_ATTACH_ID_MAX, 0, wfd);
}

/*
 * A child asleep in WAIT_DEATH on word 0 (0) of @fd's pool, after @seq;
 * what its WAIT returns comes on *@rfd. -1 if it could not be made, or
 * is not asleep in time (the module counts no sleeper: it is the only one).
 */
static pid_t at_death_sleeper(int fd, uint32_t seq, int *rfd)
{
	pid_t pid;
	int p[2];

	if (pipe2(p, O_CLOEXEC))
		return -1;
	pid = at_spawn_sleeper(fd, 0, 0, seq, p[1]);
	close(p[1]);
	if (pid > 0 && !at_await_waiters(1)) {
		at_kill(pid);
		pid = -1;
	}
	if (pid < 0)
		close(p[0]);
	*rfd = p[0];
	return pid;
}

/*
 * SIGKILL: the id leaves the status page and a WAIT_DEATH sleeper in
 * another process returns EOWNERDEAD.
 */
TEST_F(att, killed_child_wakes_death_waiter)
{
	uint32_t id, seq, ret;
	pid_t victim, waiter;
	uint64_t t0;
	int rfd;

	victim = at_spawn_attached(self->fd, &id);
	ASSERT_LT(0, victim);
	ASSERT_LT(0, (int)id);
	EXPECT_TRUE(at_alive(self->st, id));
	seq = at_seq(self->st);
	waiter = at_death_sleeper(self->fd, seq, &rfd);
	ASSERT_LT(0, waiter);
	t0 = sp_now_ns(CLOCK_MONOTONIC);
	kill(victim, SIGKILL);
	ASSERT_EQ(0, at_read_u32(rfd, &ret));
	/* Information only (TCG timing is no test): kill -> waiter's return. */
	TH_LOG("kill -> EOWNERDEAD in another process: %llu us",
	       (unsigned long long)(sp_now_ns(CLOCK_MONOTONIC) - t0) / 1000);
	waitpid(victim, NULL, 0);
	EXPECT_EQ(-EOWNERDEAD, (int)ret);
	EXPECT_FALSE(at_alive(self->st, id));
	EXPECT_EQ(seq + 1, at_seq(self->st));
	EXPECT_EQ(0, sp_wait(waiter));
	close(rfd);
}

/* A death between reading death_seq and WAIT is not missed. */
TEST_F(att, death_before_wait_not_missed)
{
	uint32_t id, seq = at_seq(self->st);
	pid_t victim = at_spawn_attached(self->fd, &id);

	ASSERT_LT(0, victim);
	at_kill(victim);
	ASSERT_TRUE(at_await_gone(self->st, id));
	EXPECT_EQ(-EOWNERDEAD, at_wait_death(self->fd, 0, 0, seq));
	/* Up to date: the word decides again. */
	EXPECT_EQ(-EAGAIN, at_wait_death(self->fd, 0, 1, at_seq(self->st)));
}

/* A DETACH to zero is a death too. */
TEST_F(att, detach_is_a_death)
{
	uint32_t seq = at_seq(self->st);
	int id = at_id(self->fd);

	ASSERT_LT(0, id);
	EXPECT_EQ(0, at_detach(self->fd, id));
	EXPECT_EQ(-EOWNERDEAD, at_wait_death(self->fd, 0, 0, seq));
}

/* An ATTACH argument in a page the kernel may read but not write back to. */
static struct shmpool_attach *at_unwritable_attach(uint32_t flags)
{
	struct shmpool_attach *a;

	a = mmap(NULL, sp_page_size(), PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (a == MAP_FAILED)
		return NULL;
	a->size = sizeof(*a);
	a->flags = flags;
	if (mprotect(a, sp_page_size(), PROT_READ)) {
		munmap(a, sp_page_size());
		return NULL;
	}
	return a;
}

/*
 * An ATTACH whose reply cannot be written (EFAULT) attached nobody, so no
 * attachment ends: death_seq stays and a WAIT_DEATH sleeper is not told of
 * a death ("EOWNERDEAD: an attachment of the pool ended"); WAKE wakes it.
 */
TEST_F(att, attach_reply_unwritable_is_no_death)
{
	struct shmpool_attach *a = at_unwritable_attach(0);
	long long base = at_waiters();
	uint32_t seq = at_seq(self->st), r;
	int p[2];
	pid_t kid;

	ASSERT_NE(NULL, a);
	ASSERT_EQ(0, pipe2(p, O_CLOEXEC));
	kid = fork();
	ASSERT_LE(0, kid);
	if (kid == 0) {
		int32_t ret;

		sp_child_init();
		ret = at_wait_death(self->fd, 0, 0, seq);
		CHILD_CHECK(write(p[1], &ret, sizeof(ret)) == sizeof(ret));
		_exit(0);
	}
	close(p[1]);
	ASSERT_TRUE(at_await_waiters(base + 1));
	EXPECT_EQ(-EFAULT, sp_ioctl(self->fd, SHMPOOL_IOC_ATTACH, a));
	EXPECT_EQ(seq, at_seq(self->st))
		TH_LOG("a failed ATTACH ended an attachment: death_seq %u -> %u",
		       seq, at_seq(self->st));
	EXPECT_EQ(0, (int)self->st->live);
	EXPECT_EQ(1, sp_db_wake(self->fd, 0, SHMPOOL_WAKE_ALL, SHMPOOL_BITSET_ANY));
	ASSERT_EQ(0, at_read_u32(p[0], &r));
	EXPECT_EQ(0, (int)r)
		TH_LOG("a WAIT_DEATH sleeper returned %d after an ATTACH that failed with EFAULT",
		       (int)r);
	EXPECT_EQ(0, sp_wait(kid));
	close(p[0]);
	munmap(a, self->page);
	/* Nothing was left half-made: an ATTACH and its DETACH work. */
	r = (uint32_t)at_id(self->fd);
	ASSERT_LT(0, (int)r);
	EXPECT_EQ(0, at_detach(self->fd, r));
}

/*
 * Nor is the attachment of a failed ATTACH ever alive on the status page,
 * not even for a moment: a peer watching the page never sees it.
 */
TEST_F(att, attach_reply_unwritable_never_alive)
{
	struct shmpool_attach *a = at_unwritable_attach(0);
	struct { int ready, stop; long seen, looks; } *sh;
	int i, failed = 0, tries = (int)lane_debug_quarter(5000);
	pid_t kid;

	ASSERT_NE(NULL, a);
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, sh);
	memset(sh, 0, sizeof(*sh));
	kid = fork();
	ASSERT_LE(0, kid);
	if (kid == 0) {
		sp_child_init();
		/* Pairs with the parent's acquire load below. */
		__atomic_store_n(&sh->ready, 1, __ATOMIC_RELEASE);
		/* Pairs with the parent's release store of stop. */
		while (!__atomic_load_n(&sh->stop, __ATOMIC_ACQUIRE)) {
			sh->looks++;
			if (self->st->live)
				__atomic_add_fetch(&sh->seen, 1, __ATOMIC_RELAXED);
		}
		_exit(0);
	}
	/* Pairs with the child's release store of ready. */
	while (!__atomic_load_n(&sh->ready, __ATOMIC_ACQUIRE))
		usleep(1000);
	/* Bounded by count: the window is short, the peer spins. */
	for (i = 0; i < tries && !__atomic_load_n(&sh->seen, __ATOMIC_RELAXED); i++) {
		int ret = sp_ioctl(self->fd, SHMPOOL_IOC_ATTACH, a);

		if (ret != -EFAULT) {
			failed = ret;
			break;
		}
	}
	/* Pairs with the child's acquire load of stop. */
	__atomic_store_n(&sh->stop, 1, __ATOMIC_RELEASE);
	EXPECT_EQ(0, sp_wait(kid));
	EXPECT_EQ(0, failed);
	EXPECT_EQ(0, sh->seen)
		TH_LOG("a peer saw the attachment of an ATTACH that failed with EFAULT (%ld of %ld looks, after %d ATTACHes)",
		       sh->seen, sh->looks, i);
	munmap(sh, sizeof(*sh));
	munmap(a, self->page);
}

/* An ACK whose reply cannot be written acknowledges nothing: POLLPRI stays. */
TEST_F(att, attach_ack_reply_unwritable_acks_nothing)
{
	struct shmpool_attach *a = at_unwritable_attach(SHMPOOL_ATTACH_ACK);
	struct pollfd pfd = { .fd = self->fd, .events = POLLPRI };
	int id = at_id(self->fd);

	ASSERT_NE(NULL, a);
	ASSERT_LT(0, id);
	ASSERT_EQ(0, at_detach(self->fd, id));
	ASSERT_EQ(1, poll(&pfd, 1, 0));
	EXPECT_EQ(-EFAULT, sp_ioctl(self->fd, SHMPOOL_IOC_ATTACH, a));
	EXPECT_EQ(1, poll(&pfd, 1, 0))
		TH_LOG("an ACK that failed with EFAULT acknowledged the death");
	EXPECT_EQ(POLLPRI, pfd.revents);
	munmap(a, self->page);
}

/* A deadline still ends a WAIT_DEATH with nobody dying. */
TEST_F(att, wait_death_times_out)
{
	struct shmpool_wait w = {
		.size = sizeof(w), .flags = SHMPOOL_WAIT_DEATH | SHMPOOL_WAIT_DEADLINE,
		.bitset = SHMPOOL_BITSET_ANY, .death_seq = at_seq(self->st),
	};

	w.deadline_ns = sp_now_ns(CLOCK_MONOTONIC) + 10000000;
	EXPECT_EQ(-ETIMEDOUT, sp_ioctl(self->fd, SHMPOOL_IOC_WAIT, &w));
}

/* exec() replaces the mm: the attachment ends while the process lives on. */
TEST_F(att, exec_ends_attachment)
{
	uint32_t id;
	int p[2];
	pid_t pid;

	ASSERT_EQ(0, pipe2(p, O_CLOEXEC));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		char *argv[] = { "attach_test", NULL };
		uint32_t v;

		sp_child_init();
		v = (uint32_t)at_id(self->fd);
		CHILD_CHECK(write(p[1], &v, sizeof(v)) == sizeof(v));
		setenv(AT_EXEC_ENV, "1", 1);
		execv("/proc/self/exe", argv);
		_exit(1);
	}
	close(p[1]);
	ASSERT_EQ(0, at_read_u32(p[0], &id));
	ASSERT_LT(0, (int)id);
	EXPECT_TRUE(at_await_gone(self->st, id));
	/* Gone while the process still runs (the exec()ed copy pauses). */
	EXPECT_EQ(0, kill(pid, 0));
	EXPECT_NE('Z', sp_proc_state(pid));
	at_kill(pid);
	close(p[0]);
}

/* A fork() child has no attachment until it attaches for itself. */
TEST_F(att, fork_child_not_attached)
{
	int id = at_id(self->fd);
	pid_t pid;

	ASSERT_LT(0, id);
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		int mine;

		sp_child_init();
		CHILD_CHECK(at_detach(self->fd, id) == -ENOENT);
		mine = at_id(self->fd);
		CHILD_CHECK(mine > 0 && mine != id);
		CHILD_CHECK(at_alive(self->st, mine) && at_alive(self->st, id));
		CHILD_CHECK(self->st->live == 2);
		_exit(0);
	}
	EXPECT_EQ(0, sp_wait(pid));
	/* The child's exit ended its own attachment only. */
	EXPECT_TRUE(at_alive(self->st, id));
	EXPECT_EQ(1, (int)self->st->live);
	EXPECT_EQ(1U, at_seq(self->st));
	EXPECT_EQ(0, at_detach(self->fd, id));
}

/* Threads share the process's attachment. */
static void *at_thread_attach(void *arg)
{
	return (void *)(intptr_t)at_id(*(int *)arg);
}

TEST_F(att, threads_share_attachment)
{
	pthread_t t;
	void *res;
	int id = at_id(self->fd);

	ASSERT_LT(0, id);
	ASSERT_EQ(0, pthread_create(&t, NULL, at_thread_attach, &self->fd));
	ASSERT_EQ(0, pthread_join(t, &res));
	EXPECT_EQ(id, (int)(intptr_t)res);
	EXPECT_EQ(1, at_detach(self->fd, id));
	EXPECT_EQ(0, at_detach(self->fd, id));
}

/*
 * Ids do not depend on PIDs: a process in a new PID namespace (PID 1 there)
 * attaches, is seen alive from outside, and its death is seen too.
 */
TEST_F(att, pid_namespace)
{
	struct shmpool_wait w = {
		.size = sizeof(w), .flags = SHMPOOL_WAIT_DEATH | SHMPOOL_WAIT_DEADLINE,
		.bitset = SHMPOOL_BITSET_ANY,
	};
	uint32_t id, seq, inner;
	int p[2], q[2];
	pid_t outer;

	ASSERT_EQ(0, pipe2(p, O_CLOEXEC));
	ASSERT_EQ(0, pipe2(q, O_CLOEXEC));
	outer = fork();
	ASSERT_LE(0, outer);
	if (outer == 0) {
		uint32_t v;
		pid_t pid;

		sp_child_init();
		if (unshare(CLONE_NEWPID)) {
			v = (uint32_t)-errno;
			CHILD_CHECK(write(p[1], &v, sizeof(v)) == sizeof(v));
			_exit(0);
		}
		pid = fork();
		CHILD_CHECK(pid >= 0);
		if (pid == 0) {
			/* PID 1 of the new namespace. */
			v = getpid() == 1 ? (uint32_t)at_id(self->fd) : 0;
			CHILD_CHECK(write(p[1], &v, sizeof(v)) == sizeof(v));
			for (;;)
				pause();
		}
		/* Its pid as the test sees it (we are still in the test's namespace). */
		v = (uint32_t)pid;
		CHILD_CHECK(write(q[1], &v, sizeof(v)) == sizeof(v));
		_exit(sp_wait(pid) == 128 + SIGKILL ? 0 : 1);
	}
	close(p[1]);
	close(q[1]);
	ASSERT_EQ(0, at_read_u32(p[0], &id));
	if ((int)id == -EPERM) {
		sp_wait(outer);
		SKIP(return, "unshare(CLONE_NEWPID) not permitted");
	}
	ASSERT_EQ(0, at_read_u32(q[0], &inner));
	ASSERT_LT(0, (int)id);
	seq = at_seq(self->st);
	EXPECT_TRUE(at_alive(self->st, id));
	/* Alive: a WAIT_DEATH with the current death_seq sleeps until its deadline. */
	w.death_seq = seq;
	w.deadline_ns = sp_now_ns(CLOCK_MONOTONIC) + 50000000;
	EXPECT_EQ(-ETIMEDOUT, sp_ioctl(self->fd, SHMPOOL_IOC_WAIT, &w));
	EXPECT_TRUE(at_alive(self->st, id));
	EXPECT_EQ(0, kill((pid_t)inner, SIGKILL));
	EXPECT_EQ(0, sp_wait(outer));
	EXPECT_TRUE(at_await_gone(self->st, id));
	EXPECT_EQ(-EOWNERDEAD, at_wait_death(self->fd, 0, 0, seq));
	close(p[0]);
	close(q[0]);
}

/* poll(): EPOLLPRI after a death until this file acknowledges it. */
TEST_F(att, poll_pri_and_ack)
{
	struct pollfd pfd = { .fd = self->fd, .events = POLLPRI };
	struct shmpool_attach ack;
	uint32_t id;
	pid_t victim;

	EXPECT_EQ(0, poll(&pfd, 1, 0));
	victim = at_spawn_attached(self->fd, &id);
	ASSERT_LT(0, victim);
	EXPECT_EQ(0, poll(&pfd, 1, 0));
	at_kill(victim);
	ASSERT_EQ(1, poll(&pfd, 1, AWAIT_MS));
	EXPECT_EQ(POLLPRI, pfd.revents);
	ASSERT_EQ(0, at_attach(self->fd, SHMPOOL_ATTACH_ACK, &ack));
	EXPECT_EQ(0U, ack.id);
	EXPECT_EQ(at_seq(self->st), ack.death_seq);
	EXPECT_EQ(0, poll(&pfd, 1, 0));
	/* ACK attached nobody. */
	EXPECT_EQ(0, (int)self->st->live);
}

/* A sleeper in poll() is woken by the death itself. */
TEST_F(att, poll_sleeper_woken)
{
	struct pollfd pfd = { .fd = self->fd, .events = POLLPRI };
	uint32_t id;
	pid_t victim, poller;

	victim = at_spawn_attached(self->fd, &id);
	ASSERT_LT(0, victim);
	poller = fork();
	ASSERT_LE(0, poller);
	if (poller == 0) {
		sp_child_init();
		CHILD_CHECK(poll(&pfd, 1, AWAIT_MS) == 1);
		CHILD_CHECK(pfd.revents == POLLPRI);
		_exit(0);
	}
	/* Whether the poller is asleep yet or not, it must see the death. */
	usleep(100000);
	at_kill(victim);
	EXPECT_EQ(0, sp_wait(poller));
}

/* A new file starts with the pool's death_seq acknowledged. */
TEST_F(att, poll_new_file_quiet)
{
	char name[SHMPOOL_NAME_MAX];
	struct pollfd pfd = { .events = POLLPRI };
	int fd = sp_open_dev(O_RDWR), fd2 = sp_open_dev(O_RDWR);
	int id;

	ASSERT_LE(0, fd);
	ASSERT_LE(0, fd2);
	sp_make_name(name, "pq");
	ASSERT_EQ(0, sp_create(fd, name, self->page, 0, 0600, NULL));
	id = at_id(fd);
	ASSERT_LT(0, id);
	ASSERT_EQ(0, at_detach(fd, id));
	ASSERT_EQ(0, sp_open_name(fd2, name, 0, NULL));
	pfd.fd = fd;
	EXPECT_EQ(1, poll(&pfd, 1, 0));
	pfd.fd = fd2;
	EXPECT_EQ(0, poll(&pfd, 1, 0));
	sp_unlink_quiet(name);
	close(fd2);
	close(fd);
}

/*
 * The pool's end ends its attachments: a process attached to a pool it no
 * longer holds does not keep the pool alive, and its later death is safe.
 */
TEST_F(att, pool_end_while_attached)
{
	char name[SHMPOOL_NAME_MAX];
	long long pools;
	uint32_t id;
	pid_t pid;
	int fd = sp_open_dev(O_RDWR);

	ASSERT_LE(0, fd);
	sp_make_name(name, "end");
	pools = sp_counter("pools");
	ASSERT_EQ(0, sp_create(fd, name, self->page, 0, 0600, NULL));
	EXPECT_EQ(pools + 1, sp_counter("pools"));
	pid = at_spawn_attached(fd, &id);
	ASSERT_LT(0, pid);
	ASSERT_LT(0, (int)id);
	ASSERT_EQ(0, sp_unlink_name(name));
	close(fd);
	/* The child still holds the fd it inherited: the pool lives on. */
	EXPECT_EQ(pools + 1, sp_counter("pools"));
	at_kill(pid);
	EXPECT_EQ(pools, sp_counter("pools"));

	/* Now a child that drops its fd and stays attached. */
	fd = sp_open_dev(O_RDWR);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, sp_create(fd, name, self->page, 0, 0600, NULL));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		sp_child_init();
		CHILD_CHECK(at_id(fd) > 0);
		close(fd);
		for (;;)
			pause();
	}
	close(fd);
	ASSERT_EQ(0, sp_unlink_name(name));
	/* Bounded: the child may not have closed its fd yet. */
	for (int i = 0; i < AWAIT_MS / 10 && sp_counter("pools") != pools; i++)
		usleep(10000);
	EXPECT_EQ(pools, sp_counter("pools"));
	EXPECT_EQ(0, kill(pid, 0));
	at_kill(pid);
}

/* The fd's fdinfo reads the shmpool-<key> line as a number, or -1. */
static long long at_fdinfo(int fd, const char *key)
{
	char path[64], line[256];
	long long v = -1;
	size_t len = strlen(key);
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, len) && line[len] == ':')
			v = strtoll(line + len + 1, NULL, 10);
	fclose(f);
	return v;
}

/* INFO's mappings count pool memory, not the status page. */
TEST_F(att, status_page_not_in_info_mappings)
{
	struct shmpool_info info;

	ASSERT_EQ(0, sp_info(self->fd, &info, NULL, 0));
	EXPECT_EQ(0U, info.mappings);
}

TEST_F(att, fdinfo_shows_attachments)
{
	int id;

	EXPECT_EQ(0, at_fdinfo(self->fd, "shmpool-attached"));
	EXPECT_EQ(0, at_fdinfo(self->fd, "shmpool-death-seq"));
	id = at_id(self->fd);
	ASSERT_LT(0, id);
	EXPECT_EQ(1, at_fdinfo(self->fd, "shmpool-attached"));
	EXPECT_EQ(0, at_detach(self->fd, id));
	EXPECT_EQ(0, at_fdinfo(self->fd, "shmpool-attached"));
	EXPECT_EQ(1, at_fdinfo(self->fd, "shmpool-death-seq"));
}

/* Attachments do not pin the module (fds and mappings do). */
TEST_F(att, attachment_does_not_pin_module)
{
	long long before = sp_read_number("/sys/module/shmpool/refcnt");
	int id = at_id(self->fd);

	ASSERT_LT(0, id);
	if (before < 0)
		SKIP(return, "no /sys/module/shmpool/refcnt");
	EXPECT_EQ(before, sp_read_number("/sys/module/shmpool/refcnt"));
	EXPECT_EQ(0, at_detach(self->fd, id));
}

/*
 * WAKE's count stays exact with WAIT_DEATH sleepers on the same word: a
 * death takes exactly the death sleepers, WAKE exactly the others.
 */
#define AT_PLAIN	3
#define AT_DEATHS	3
TEST_F(att, wake_count_exact_with_death_sleepers)
{
	pid_t kids[AT_PLAIN + AT_DEATHS], victim;
	int p[2], i, woken = 0, dead = 0;
	long long base = at_waiters();
	uint32_t id, seq;

	victim = at_spawn_attached(self->fd, &id);
	ASSERT_LT(0, victim);
	seq = at_seq(self->st);
	ASSERT_EQ(0, pipe2(p, O_CLOEXEC));
	for (i = 0; i < AT_PLAIN + AT_DEATHS; i++) {
		kids[i] = fork();
		ASSERT_LE(0, kids[i]);
		if (kids[i] == 0) {
			int32_t r;

			sp_child_init();
			if (i < AT_PLAIN)
				r = sp_db_wait(self->fd, 0, 0, SHMPOOL_BITSET_ANY,
					       SHMPOOL_WAIT_DEADLINE,
					       sp_now_ns(CLOCK_MONOTONIC) + AWAIT_NS);
			else
				r = at_wait_death(self->fd, 0, 0, seq);
			CHILD_CHECK(write(p[1], &r, sizeof(r)) == sizeof(r));
			_exit(0);
		}
	}
	close(p[1]);
	ASSERT_TRUE(at_await_waiters(base + AT_PLAIN + AT_DEATHS));
	at_kill(victim);
	for (i = 0; i < AT_DEATHS; i++) {
		uint32_t r;

		ASSERT_EQ(0, at_read_u32(p[0], &r));
		EXPECT_EQ(-EOWNERDEAD, (int)r);
	}
	/* Only the plain sleepers are left, so WAKE finds exactly them. */
	ASSERT_TRUE(at_await_waiters(base + AT_PLAIN) && at_waiters() == base + AT_PLAIN);
	EXPECT_EQ(AT_PLAIN, sp_db_wake(self->fd, 0, SHMPOOL_WAKE_ALL, SHMPOOL_BITSET_ANY));
	for (i = 0; i < AT_PLAIN; i++) {
		uint32_t r;

		ASSERT_EQ(0, at_read_u32(p[0], &r));
		if (r == 0)
			woken++;
		else if ((int)r == -EOWNERDEAD)
			dead++;
	}
	EXPECT_EQ(AT_PLAIN, woken);
	EXPECT_EQ(0, dead);
	for (i = 0; i < AT_PLAIN + AT_DEATHS; i++)
		EXPECT_EQ(0, sp_wait(kids[i]));
	close(p[0]);
}

/*
 * Word 0 of @fd's pool, mapped, and @n children attached to the pool
 * (at_spawn_attached(): @pids, @ids); NULL, with none left, on failure.
 */
static uint32_t *at_word_and_peers(int fd, long page, int n, pid_t *pids,
				   uint32_t *ids)
{
	uint32_t *word = sp_map(fd, page, PROT_READ | PROT_WRITE, 0);
	int i;

	if (word == MAP_FAILED)
		return NULL;
	for (i = 0; i < n; i++) {
		pids[i] = at_spawn_attached(fd, &ids[i]);
		if (pids[i] <= 0)
			break;
	}
	if (i == n)
		return word;
	while (i--)
		at_kill(pids[i]);
	munmap(word, page);
	return NULL;
}

/*
 * The end of an attachment that is not the word's owner wakes the
 * untargeted WAIT_DEATH sleeper, not the targeted one: that one is still
 * queued (waitpid() of the dead child returns after its end was told to
 * every sleeper), so WAKE counts it and it returns 0.
 */
TEST_F(att, unrelated_end_wakes_only_untargeted)
{
	uint32_t ids[2], owner, r, *word;
	pid_t pids[2], targeted, plain;
	long long base = at_waiters();
	int p[2], q[2];

	word = at_word_and_peers(self->fd, self->page, 2, pids, ids);
	ASSERT_NE(NULL, word);
	owner = ids[0];
	*word = owner;
	ASSERT_EQ(0, pipe2(p, O_CLOEXEC));
	ASSERT_EQ(0, pipe2(q, O_CLOEXEC));
	targeted = at_spawn_owner_sleeper(self->fd, owner, p[1]);
	ASSERT_LE(0, targeted);
	plain = at_spawn_sleeper(self->fd, owner, 0, at_seq(self->st), q[1]);
	ASSERT_LE(0, plain);
	close(p[1]);
	close(q[1]);
	ASSERT_TRUE(at_await_waiters(base + 2));
	at_kill(pids[1]);
	ASSERT_EQ(0, at_read_u32(q[0], &r));
	EXPECT_EQ(-EOWNERDEAD, (int)r);
	EXPECT_EQ(base + 1, at_waiters());
	EXPECT_EQ(1, sp_db_wake(self->fd, 0, SHMPOOL_WAKE_ALL, SHMPOOL_BITSET_ANY));
	ASSERT_EQ(0, at_read_u32(p[0], &r));
	EXPECT_EQ(0, (int)r);
	EXPECT_EQ(0, sp_wait(targeted));
	EXPECT_EQ(0, sp_wait(plain));
	at_kill(pids[0]);
	close(p[0]);
	close(q[0]);
	munmap(word, self->page);
}

/* The end of the word's owner wakes its targeted sleeper: EOWNERDEAD. */
TEST_F(att, owner_end_wakes_targeted)
{
	long long base = at_waiters();
	uint32_t owner, r, *word;
	pid_t own, sleeper;
	int p[2];

	word = at_word_and_peers(self->fd, self->page, 1, &own, &owner);
	ASSERT_NE(NULL, word);
	*word = owner | 1U << 30;	/* flag bits beside the id do not matter */
	ASSERT_EQ(0, pipe2(p, O_CLOEXEC));
	sleeper = at_spawn_owner_sleeper(self->fd, *word, p[1]);
	ASSERT_LE(0, sleeper);
	close(p[1]);
	ASSERT_TRUE(at_await_waiters(base + 1));
	at_kill(own);
	ASSERT_EQ(0, at_read_u32(p[0], &r));
	EXPECT_EQ(-EOWNERDEAD, (int)r);
	EXPECT_EQ(0, sp_wait(sleeper));
	close(p[0]);
	munmap(word, self->page);
}

/*
 * The owner is the one the word names when an attachment ends: a lock
 * handed on (the word rewritten, nobody woken) while a sleeper sleeps is
 * watched in its new owner's name, and the old owner's end is unrelated.
 */
TEST_F(att, owner_read_at_the_end)
{
	long long base = at_waiters();
	uint32_t ids[2], r, *word;
	pid_t pids[2], sleeper;
	int p[2];

	word = at_word_and_peers(self->fd, self->page, 2, pids, ids);
	ASSERT_NE(NULL, word);
	*word = ids[0];
	ASSERT_EQ(0, pipe2(p, O_CLOEXEC));
	sleeper = at_spawn_owner_sleeper(self->fd, ids[0], p[1]);
	ASSERT_LE(0, sleeper);
	close(p[1]);
	ASSERT_TRUE(at_await_waiters(base + 1));
	__atomic_store_n(word, ids[1], __ATOMIC_RELAXED);
	at_kill(pids[0]);
	EXPECT_EQ(base + 1, at_waiters());
	at_kill(pids[1]);
	ASSERT_EQ(0, at_read_u32(p[0], &r));
	EXPECT_EQ(-EOWNERDEAD, (int)r);
	EXPECT_EQ(0, sp_wait(sleeper));
	close(p[0]);
	munmap(word, self->page);
}

/*
 * A death and a WAKE racing for the same WAIT_DEATH sleepers: each sleeper
 * is taken by exactly one of them, and WAKE's count is exactly the number
 * that return 0.
 */
#define AT_RACERS	4
#define AT_ROUNDS	8
TEST_F(att, wake_and_death_race_counts)
{
	long long base = at_waiters();
	int round;

	for (round = 0; round < AT_ROUNDS; round++) {
		pid_t kids[AT_RACERS], victim;
		int p[2], i, zero = 0, dead = 0, woken;
		uint32_t id, seq;

		victim = at_spawn_attached(self->fd, &id);
		ASSERT_LT(0, victim);
		seq = at_seq(self->st);
		ASSERT_EQ(0, pipe2(p, O_CLOEXEC));
		for (i = 0; i < AT_RACERS; i++) {
			kids[i] = at_spawn_sleeper(self->fd, 0, 0, seq, p[1]);
			ASSERT_LE(0, kids[i]);
		}
		close(p[1]);
		ASSERT_TRUE(at_await_waiters(base + AT_RACERS));
		/* The victim's end runs in its own exit, racing this WAKE. */
		kill(victim, SIGKILL);
		woken = sp_db_wake(self->fd, 0, SHMPOOL_WAKE_ALL, SHMPOOL_BITSET_ANY);
		ASSERT_LE(0, woken);
		for (i = 0; i < AT_RACERS; i++) {
			uint32_t r;

			ASSERT_EQ(0, at_read_u32(p[0], &r));
			if (r == 0)
				zero++;
			else if ((int)r == -EOWNERDEAD)
				dead++;
		}
		EXPECT_EQ(woken, zero);
		EXPECT_EQ(AT_RACERS - woken, dead);
		waitpid(victim, NULL, 0);
		for (i = 0; i < AT_RACERS; i++)
			EXPECT_EQ(0, sp_wait(kids[i]));
		close(p[0]);
	}
}

/*
 * SHMPOOL_ATTACH_MAX attachments (one process each), then EUSERS; a freed
 * slot is reused with a new generation, so the id differs.
 */
TEST_F_TIMEOUT(att, full_table_then_reuse, 300)
{
	pid_t *kids = calloc(SHMPOOL_ATTACH_MAX, sizeof(*kids));
	uint32_t *ids = calloc(SHMPOOL_ATTACH_MAX, sizeof(*ids));
	int i, n = 0, id, p[2];
	struct { int32_t idx; uint32_t id; } r;
	time_t t0 = time(NULL);

	ASSERT_NE(NULL, kids);
	ASSERT_NE(NULL, ids);
	ASSERT_EQ(0, pipe2(p, O_CLOEXEC));
	for (i = 0; i < SHMPOOL_ATTACH_MAX; i++) {
		kids[i] = fork();
		if (kids[i] < 0)
			break;
		if (kids[i] == 0) {
			sp_child_init();
			r.idx = i;
			r.id = (uint32_t)at_id(self->fd);
			CHILD_CHECK(write(p[1], &r, sizeof(r)) == sizeof(r));
			for (;;)
				pause();
		}
		n++;
	}
	close(p[1]);
	EXPECT_EQ(SHMPOOL_ATTACH_MAX, n);
	for (i = 0; i < n; i++) {
		struct pollfd pf = { .fd = p[0], .events = POLLIN };

		ASSERT_EQ(1, poll(&pf, 1, AWAIT_MS));
		ASSERT_EQ((ssize_t)sizeof(r), read(p[0], &r, sizeof(r)));
		ASSERT_LE(0, r.idx);
		ASSERT_GT(n, r.idx);
		ids[r.idx] = r.id;
		EXPECT_LT(0, (int)r.id);
	}
	TH_LOG("%d attached processes in %ld s", n, (long)(time(NULL) - t0));
	EXPECT_EQ(SHMPOOL_ATTACH_MAX, (int)self->st->live);
	EXPECT_EQ(-EUSERS, at_id(self->fd));
	if (n == SHMPOOL_ATTACH_MAX) {
		at_kill(kids[7]);
		kids[7] = 0;
		ASSERT_TRUE(at_await_gone(self->st, ids[7]));
		id = at_id(self->fd);
		ASSERT_LT(0, id);
		EXPECT_EQ(ids[7] & SHMPOOL_ATTACH_SLOT_MASK, (uint32_t)id & SHMPOOL_ATTACH_SLOT_MASK);
		EXPECT_NE(ids[7], (uint32_t)id);
		EXPECT_EQ(0, at_detach(self->fd, id));
	}
	for (i = 0; i < n; i++)
		if (kids[i] > 0)
			kill(kids[i], SIGKILL);
	for (i = 0; i < n; i++)
		if (kids[i] > 0)
			waitpid(kids[i], NULL, 0);
	EXPECT_EQ(0, (int)self->st->live);
	TH_LOG("... and all gone after %ld s", (long)(time(NULL) - t0));
	close(p[0]);
	free(ids);
	free(kids);
}

/* Round-robin: a slot freed at once is not the next one handed out. */
TEST_F(att, ids_not_reused_at_once)
{
	int a = at_id(self->fd), b;

	ASSERT_LT(0, a);
	ASSERT_EQ(0, at_detach(self->fd, a));
	b = at_id(self->fd);
	ASSERT_LT(0, b);
	EXPECT_NE(a, b);
	EXPECT_NE(a & SHMPOOL_ATTACH_SLOT_MASK, b & SHMPOOL_ATTACH_SLOT_MASK);
	EXPECT_EQ(0, at_detach(self->fd, b));
}

/*
 * A kprobe event on mm_take_all_locks(), in tracefs: ATTACH's cost to
 * everyone else is that function (mmu notifier registration runs it).
 * Counts hits module-wide; the VM runs nothing else that registers.
 */
#define AT_KPROBE	"shmpool_att_mtal"

static const char *at_tracefs(void)
{
	static const char *const dirs[] = {
		"/sys/kernel/tracing", "/sys/kernel/debug/tracing",
	};
	char path[128];
	unsigned int i;

	for (i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "%s/kprobe_events", dirs[i]);
		if (!access(path, W_OK))
			return dirs[i];
	}
	if (mount("tracefs", dirs[0], "tracefs", 0, NULL))
		return NULL;
	return access("/sys/kernel/tracing/kprobe_events", W_OK) ? NULL : dirs[0];
}

static int at_trace_write(const char *dir, const char *file, const char *text,
			  int flags)
{
	char path[192];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	fd = open(path, O_WRONLY | O_CLOEXEC | flags);
	if (fd < 0)
		return -errno;
	n = write(fd, text, strlen(text));
	close(fd);
	return n == (ssize_t)strlen(text) ? 0 : -EIO;
}

/* Disable and remove kprobe event @name, if there is one. */
static void at_kprobe_del(const char *dir, const char *name)
{
	char text[128];

	snprintf(text, sizeof(text), "events/kprobes/%s/enable", name);
	at_trace_write(dir, text, "0\n", 0);
	snprintf(text, sizeof(text), "-:%s\n", name);
	at_trace_write(dir, "kprobe_events", text, O_APPEND);
}

/* Kprobe event @name on the entry of @symbol (disabled), afresh: 0 or -errno. */
static int at_kprobe_add(const char *dir, const char *name, const char *symbol)
{
	char text[128];

	at_kprobe_del(dir, name);
	snprintf(text, sizeof(text), "p:%s %s\n", name, symbol);
	return at_trace_write(dir, "kprobe_events", text, O_APPEND);
}

/* Hits of the AT_KPROBE event so far, or -1. */
static long long at_kprobe_hits(const char *dir)
{
	char path[192], name[64];
	long long hits = -1, h, missed;
	FILE *f;

	snprintf(path, sizeof(path), "%s/kprobe_profile", dir);
	f = fopen(path, "re");
	if (!f)
		return -1;
	while (fscanf(f, "%63s %lld %lld", name, &h, &missed) == 3)
		if (!strcmp(name, AT_KPROBE))
			hits = h;
	fclose(f);
	return hits;
}

/*
 * ATTACH/DETACH cycles register the process's mmu notifier once, not once
 * per cycle. Registration runs mm_take_all_locks(), which write-locks the
 * i_mmap_rwsem of every file the caller maps (libc's among them): a loop
 * of cycles would stall every other process's mmap, munmap, fork and exit
 * of those files. A second process registers its own, once.
 */
#define AT_CYCLES	64
TEST_F(att, attach_detach_cycles_register_once)
{
	const char *dir = at_tracefs();
	long long before, after;
	int i, id, status;
	pid_t pid;

	if (!dir)
		SKIP(return, "no tracefs with kprobe events");
	if (at_kprobe_add(dir, AT_KPROBE, "mm_take_all_locks"))
		SKIP(return, "no kprobe on mm_take_all_locks (kernel without kprobes)");
	ASSERT_EQ(0, at_trace_write(dir, "events/kprobes/" AT_KPROBE "/enable",
				    "1\n", 0));
	before = at_kprobe_hits(dir);
	ASSERT_LE(0, before);
	for (i = 0; i < AT_CYCLES; i++) {
		id = at_id(self->fd);
		ASSERT_LT(0, id);
		ASSERT_EQ(0, at_detach(self->fd, id));
	}
	after = at_kprobe_hits(dir);
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		sp_child_init();
		for (i = 0; i < AT_CYCLES; i++) {
			id = at_id(self->fd);
			CHILD_CHECK(id > 0);
			CHILD_CHECK(at_detach(self->fd, id) == 0);
		}
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_EQ(0, status);
	TH_LOG("%d cycles: %lld registrations; a child's %d: %lld", AT_CYCLES,
	       after - before, AT_CYCLES, at_kprobe_hits(dir) - after);
	EXPECT_EQ(1, after - before);
	EXPECT_EQ(1, at_kprobe_hits(dir) - after);
	at_kprobe_del(dir, AT_KPROBE);
}

/*
 * The spinlocks a DETACH of a fresh attachment of @fd's pool takes, as
 * AT_KPROBE_LOCK events of this process (its enable and disable count
 * too, the same each time), or -1.
 */
#define AT_KPROBE_LOCK	"shmpool_att_lock_n"
static long long at_detach_spinlocks(const char *dir, int fd)
{
	char path[192], line[512];
	long long n = 0;
	int id = at_id(fd), ret;
	FILE *f;

	if (id <= 0 || at_trace_write(dir, "trace", "", O_TRUNC) ||
	    at_trace_write(dir, "events/kprobes/" AT_KPROBE_LOCK "/enable", "1\n", 0))
		return -1;
	ret = at_detach(fd, id);
	at_trace_write(dir, "events/kprobes/" AT_KPROBE_LOCK "/enable", "0\n", 0);
	if (ret)
		return -1;
	snprintf(path, sizeof(path), "%s/trace", dir);
	f = fopen(path, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (line[0] != '#' && strstr(line, AT_KPROBE_LOCK))
			n++;
	fclose(f);
	return n;
}

/*
 * A death costs a walk over its own pool's death sleepers, not over the
 * module's table of doorbell buckets (256 per CPU, each a lock): counted
 * as the spinlocks an ending DETACH takes with one sleeper in the pool,
 * less those it takes with none. Else processes that attach and detach in
 * a loop would take every bucket lock of every other pool's WAIT and WAKE,
 * once per end.
 */
#define AT_DEATH_LOCKS	32	/* the table has at least 256 buckets */
TEST_F(att, death_walks_its_pool_not_the_table)
{
	const char *dir = at_tracefs();
	long long quiet, woken;
	char filter[64];
	uint32_t ret;
	pid_t waiter;
	int rfd;

	if (!dir)
		SKIP(return, "no tracefs with kprobe events");
	/* PREEMPT_RT's spinlock_t is rt_spin_lock(); elsewhere the raw one. */
	if (at_kprobe_add(dir, AT_KPROBE_LOCK, "rt_spin_lock") &&
	    at_kprobe_add(dir, AT_KPROBE_LOCK, "_raw_spin_lock"))
		SKIP(return, "no kprobe on spin_lock (kernel without kprobes)");
	snprintf(filter, sizeof(filter), "common_pid == %d\n", getpid());
	ASSERT_EQ(0, at_trace_write(dir, "events/kprobes/" AT_KPROBE_LOCK "/filter",
				    filter, 0));
	/* Once untraced: the mm's notifier is registered at its first ATTACH. */
	ASSERT_EQ(0, at_detach(self->fd, at_id(self->fd)));
	quiet = at_detach_spinlocks(dir, self->fd);
	ASSERT_LE(0, quiet);

	waiter = at_death_sleeper(self->fd, at_seq(self->st), &rfd);
	ASSERT_LT(0, waiter);
	woken = at_detach_spinlocks(dir, self->fd);
	at_kprobe_del(dir, AT_KPROBE_LOCK);
	ASSERT_LE(0, woken);
	ASSERT_EQ(0, at_read_u32(rfd, &ret));
	EXPECT_EQ(-EOWNERDEAD, (int)ret);
	EXPECT_EQ(0, sp_wait(waiter));
	close(rfd);
	TH_LOG("spinlocks of an ending DETACH: %lld with no death sleeper, %lld with one",
	       quiet, woken);
	EXPECT_GT(AT_DEATH_LOCKS, woken - quiet);
}

TEST_HARNESS_MAIN
