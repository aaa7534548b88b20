/* doorbell_test: shmpool doorbells (WAIT, WAKE, WAITV, NOTIFY) — one test per rejected input, then wake-up semantics across processes. */
// SPDX-License-Identifier: GPL-2.0
#define _GNU_SOURCE
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stddef.h>
#include <sys/eventfd.h>

#include "shmpool_test_util.h"

#define DB_PAGES	4		/* the fixture pool */
#define DB_KIDS		16
#define AWAIT_MS	20000		/* generous: TCG and the debug kernel are slow */
#define REPORT_MS	20000
#define QUIET_MS	200		/* "nothing more arrives": only ever a check */
#define AT_ONCE_NS	5000000000ULL	/* a call that must not sleep, under TCG */

/* What a child reports through the fixture's pipe. */
struct report {
	int idx;	/* which child, or REPORT_HANDLER from a signal handler */
	int ret;	/* the ioctl's result (0, a count, or -errno) */
	uint32_t val;	/* whatever else the test wants back */
};

#define REPORT_HANDLER	(-1)

/* Skip a fixture setup when the module has no doorbells at all. */
static bool db_supported(struct __test_metadata *_metadata,
			 const struct shmpool_api *api, int bound)
{
	if (!(api->features & SHMPOOL_FEAT_DOORBELL) &&
	    sp_db_wake(bound, 0, 1, SHMPOOL_BITSET_ANY) == -ENOTTY) {
		SKIP(, "module has no doorbells (SHMPOOL_FEAT_DOORBELL)");
		_metadata->passed = 0;	/* as SP_SKIP_SETUP() does */
		return false;
	}
	return true;
}

/* ---- every command's generic input checks, one variant per command ---- */

FIXTURE(dbcmd) {
	int fd;			/* bound to an anonymous pool of DB_PAGES pages */
	int unbound;
	int efd;		/* the eventfd NOTIFY binds */
	long page;
	uint64_t bytes;
	struct shmpool_api api;
	struct shmpool_waitv_entry ent[1];
};

FIXTURE_VARIANT(dbcmd) {
	unsigned long cmd;
	size_t size;
	int ok;			/* what a valid call returns on the zeroed pool */
};

/* The word is 0 and a valid WAIT expects 1: EAGAIN at once, never a sleep. */
FIXTURE_VARIANT_ADD(dbcmd, wait) {
	.cmd = SHMPOOL_IOC_WAIT, .size = sizeof(struct shmpool_wait), .ok = -EAGAIN,
};
FIXTURE_VARIANT_ADD(dbcmd, wake) {
	.cmd = SHMPOOL_IOC_WAKE, .size = sizeof(struct shmpool_wake), .ok = 0,
};
FIXTURE_VARIANT_ADD(dbcmd, waitv) {
	.cmd = SHMPOOL_IOC_WAITV, .size = sizeof(struct shmpool_waitv), .ok = -EAGAIN,
};
FIXTURE_VARIANT_ADD(dbcmd, notify) {
	.cmd = SHMPOOL_IOC_NOTIFY, .size = sizeof(struct shmpool_notify), .ok = 0,
};

FIXTURE_SETUP(dbcmd)
{
	self->fd = -1;
	self->efd = -1;
	if (!sp_setup_dev(_metadata, &self->unbound, &self->page, &self->api))
		return;
	self->bytes = DB_PAGES * self->page;
	self->fd = sp_anon_pool(self->bytes);
	ASSERT_GE(self->fd, 0);
	self->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	ASSERT_GE(self->efd, 0);
	if (!db_supported(_metadata, &self->api, self->fd))
		return;
}

FIXTURE_TEARDOWN(dbcmd)
{
	if (self->efd >= 0)
		close(self->efd);
	if (self->fd >= 0)
		close(self->fd);
	close(self->unbound);
}

union db_buf {
	uint32_t size;
	uint8_t bytes[256];
	struct shmpool_wait wait;
	struct shmpool_wake wake;
	struct shmpool_waitv waitv;
	struct shmpool_notify notify;
};

/*
 * A valid argument for the variant's command at @off with @bitset; @flags
 * are added to the command's usual ones (NOTIFY: ADD). WAIT and WAITV
 * expect 1 where the pool holds 0, so a buggy accept cannot sleep.
 */
static void dbcmd_fill(FIXTURE_DATA(dbcmd) *self,
		       const FIXTURE_VARIANT(dbcmd) *variant, union db_buf *buf,
		       uint64_t off, uint32_t bitset, uint32_t flags)
{
	memset(buf, 0, sizeof(*buf));
	switch (variant->cmd) {
	case SHMPOOL_IOC_WAIT:
		buf->wait.flags = flags;
		buf->wait.offset = off;
		buf->wait.expected = 1;
		buf->wait.bitset = bitset;
		break;
	case SHMPOOL_IOC_WAKE:
		buf->wake.flags = flags;
		buf->wake.offset = off;
		buf->wake.nr = SHMPOOL_WAKE_ALL;
		buf->wake.bitset = bitset;
		break;
	case SHMPOOL_IOC_WAITV:
		sp_db_entry(&self->ent[0], -1, off, 1, bitset);
		buf->waitv.flags = flags;
		buf->waitv.entries = (uintptr_t)self->ent;
		buf->waitv.nr_entries = 1;
		break;
	case SHMPOOL_IOC_NOTIFY:
		buf->notify.flags = SHMPOOL_NOTIFY_ADD | flags;
		buf->notify.offset = off;
		buf->notify.eventfd = self->efd;
		buf->notify.bitset = bitset;
		break;
	}
	buf->size = variant->size;
}

/* Issue a valid call at @off and expect the variant's result (NOTIFY: undo it). */
static void dbcmd_expect_ok(struct __test_metadata *_metadata,
			    FIXTURE_DATA(dbcmd) *self,
			    const FIXTURE_VARIANT(dbcmd) *variant, uint64_t off)
{
	union db_buf buf;

	dbcmd_fill(self, variant, &buf, off, SHMPOOL_BITSET_ANY, 0);
	EXPECT_EQ(variant->ok, sp_ioctl(self->fd, variant->cmd, &buf))
		TH_LOG("valid call at offset %#llx refused", (unsigned long long)off);
	if (variant->cmd == SHMPOOL_IOC_NOTIFY)
		EXPECT_EQ(0, sp_db_notify(self->fd, SHMPOOL_NOTIFY_DEL, off, self->efd,
					  SHMPOOL_BITSET_ANY));
}

/* Each offset in @offs is refused with EINVAL; then a valid call works. */
static void dbcmd_expect_bad_offsets(struct __test_metadata *_metadata,
				     FIXTURE_DATA(dbcmd) *self,
				     const FIXTURE_VARIANT(dbcmd) *variant,
				     const uint64_t *offs, unsigned int n)
{
	union db_buf buf;
	unsigned int i;

	for (i = 0; i < n; i++) {
		dbcmd_fill(self, variant, &buf, offs[i], SHMPOOL_BITSET_ANY, 0);
		EXPECT_EQ(-EINVAL, sp_ioctl(self->fd, variant->cmd, &buf))
			TH_LOG("offset %#llx accepted (pool is %#llx bytes)",
			       (unsigned long long)offs[i],
			       (unsigned long long)self->bytes);
	}
	dbcmd_expect_ok(_metadata, self, variant, 0);
}


TEST_F(dbcmd, first_and_last_word_accepted)
{
	dbcmd_expect_ok(_metadata, self, variant, 0);
	dbcmd_expect_ok(_metadata, self, variant, 4);
	dbcmd_expect_ok(_metadata, self, variant, self->page);
	dbcmd_expect_ok(_metadata, self, variant, self->bytes - 4);
}

TEST_F(dbcmd, misaligned_offset)
{
	const uint64_t offs[] = { 1, 2, 3, 5, 6, 7, self->page + 1,
				  self->page + 2, self->bytes - 7 };

	dbcmd_expect_bad_offsets(_metadata, self, variant, offs, ARRAY_SIZE(offs));
}

TEST_F(dbcmd, offset_at_end_of_pool)
{
	const uint64_t offs[] = { self->bytes, self->bytes + 4,
				  self->bytes + self->page };

	dbcmd_expect_bad_offsets(_metadata, self, variant, offs, ARRAY_SIZE(offs));
}

TEST_F(dbcmd, offset_straddles_end_of_pool)
{
	/* Half the word inside, half outside (and misaligned). */
	const uint64_t offs[] = { self->bytes - 2, self->bytes - 1, self->bytes - 3 };

	dbcmd_expect_bad_offsets(_metadata, self, variant, offs, ARRAY_SIZE(offs));
}

TEST_F(dbcmd, offset_huge)
{
	/* Truncating the offset to 32 bits would land on word 0 of the pool. */
	const uint64_t offs[] = { 1ULL << 32, (1ULL << 32) + 4,
				  self->bytes + (1ULL << 32), 1ULL << 63,
				  (1ULL << 63) + 4, 1ULL << 62 };

	dbcmd_expect_bad_offsets(_metadata, self, variant, offs, ARRAY_SIZE(offs));
}

TEST_F(dbcmd, offset_plus_4_overflows)
{
	/* Aligned, and offset + 4 wraps to 0 (or to a small in-pool value). */
	const uint64_t offs[] = { UINT64_MAX - 3, UINT64_MAX - 7,
				  UINT64_MAX - 3 - self->page, UINT64_MAX,
				  UINT64_MAX - 1 };

	dbcmd_expect_bad_offsets(_metadata, self, variant, offs, ARRAY_SIZE(offs));
}

TEST_F(dbcmd, unknown_flags)
{
	union db_buf buf;
	int bit, first;

	switch (variant->cmd) {
	case SHMPOOL_IOC_WAKE:
		first = 0;	/* WAKE has no flags */
		break;
	case SHMPOOL_IOC_WAIT:
		/* DEADLINE, REALTIME, DEATH, OWNER (WAITV: neither of the last) */
		first = 4;
		break;
	default:
		first = 2;	/* WAIT/WAITV: DEADLINE, REALTIME; NOTIFY: ADD, DEL */
		break;
	}
	for (bit = first; bit < 32; bit++) {
		dbcmd_fill(self, variant, &buf, 0, SHMPOOL_BITSET_ANY, 1U << bit);
		EXPECT_EQ(-EINVAL, sp_ioctl(self->fd, variant->cmd, &buf))
			TH_LOG("flags bit %d accepted", bit);
		if (variant->cmd == SHMPOOL_IOC_WAIT || variant->cmd == SHMPOOL_IOC_WAITV) {
			/* Also next to a known flag (a deadline already past). */
			dbcmd_fill(self, variant, &buf, 0, SHMPOOL_BITSET_ANY,
				   SHMPOOL_WAIT_DEADLINE | (1U << bit));
			EXPECT_EQ(-EINVAL, sp_ioctl(self->fd, variant->cmd, &buf))
				TH_LOG("flags bit %d with DEADLINE accepted", bit);
		}
	}
	dbcmd_expect_ok(_metadata, self, variant, 0);
}

TEST_F(dbcmd, bitset_zero)
{
	union db_buf buf;

	dbcmd_fill(self, variant, &buf, 0, 0, 0);
	EXPECT_EQ(-EINVAL, sp_ioctl(self->fd, variant->cmd, &buf));
	dbcmd_fill(self, variant, &buf, self->bytes - 4, 0, 0);
	EXPECT_EQ(-EINVAL, sp_ioctl(self->fd, variant->cmd, &buf));
	dbcmd_expect_ok(_metadata, self, variant, 0);
}

/* A scope fd (/dev/shmpool) has no pool: doorbell commands are unknown there. */
TEST_F(dbcmd, unbound_fd)
{
	union db_buf buf;

	dbcmd_fill(self, variant, &buf, 0, SHMPOOL_BITSET_ANY, 0);
	EXPECT_EQ(-ENOTTY, sp_ioctl(self->unbound, variant->cmd, &buf));
	dbcmd_expect_ok(_metadata, self, variant, 0);
}

TEST_F(dbcmd, size_too_short)
{
	/* Shorter than the first version of the struct (WAIT grew in API 3). */
	const size_t min = variant->cmd == SHMPOOL_IOC_WAIT ?
			   offsetof(struct shmpool_wait, death_seq) : variant->size;
	const size_t sizes[] = { 0, 1, 4, 8, min - 8, min - 4, min - 1 };
	union db_buf buf;
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(sizes); i++) {
		dbcmd_fill(self, variant, &buf, 0, SHMPOOL_BITSET_ANY, 0);
		buf.size = sizes[i];
		EXPECT_EQ(-EINVAL, sp_ioctl(self->fd, variant->cmd, &buf))
			TH_LOG("size %zu accepted", sizes[i]);
	}
	dbcmd_expect_ok(_metadata, self, variant, 0);
}

TEST_F(dbcmd, size_longer_nonzero_tail)
{
	const size_t where[] = { 0, 1, 7, 8, 63 };
	union db_buf buf;
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(where); i++) {
		dbcmd_fill(self, variant, &buf, 0, SHMPOOL_BITSET_ANY, 0);
		buf.size = variant->size + 64;
		buf.bytes[variant->size + where[i]] = 1;
		EXPECT_EQ(-E2BIG, sp_ioctl(self->fd, variant->cmd, &buf))
			TH_LOG("non-zero tail byte %zu accepted", where[i]);
	}
	dbcmd_expect_ok(_metadata, self, variant, 0);
}

TEST_F(dbcmd, size_longer_zero_tail)
{
	union db_buf buf;

	dbcmd_fill(self, variant, &buf, 0, SHMPOOL_BITSET_ANY, 0);
	buf.size = variant->size + 64;
	EXPECT_EQ(variant->ok, sp_ioctl(self->fd, variant->cmd, &buf));
	if (variant->cmd == SHMPOOL_IOC_NOTIFY)
		EXPECT_EQ(0, sp_db_notify(self->fd, SHMPOOL_NOTIFY_DEL, 0, self->efd,
					  SHMPOOL_BITSET_ANY));
}

TEST_F(dbcmd, null_arg)
{
	EXPECT_EQ(-EFAULT, sp_ioctl(self->fd, variant->cmd, NULL));
	dbcmd_expect_ok(_metadata, self, variant, 0);
}

TEST_F(dbcmd, unmapped_arg)
{
	sp_expect_unreadable_arg(_metadata, self->fd, variant->cmd, self->page);
	dbcmd_expect_ok(_metadata, self, variant, 0);
}

TEST_F(dbcmd, arg_runs_into_unmapped_page)
{
	union db_buf buf;
	uint8_t *two, *arg;

	two = mmap(NULL, 2 * self->page, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, two);
	ASSERT_EQ(0, mprotect(two + self->page, self->page, PROT_NONE));
	/* size and flags readable, the rest of the struct is not. */
	dbcmd_fill(self, variant, &buf, 0, SHMPOOL_BITSET_ANY, 0);
	arg = two + self->page - 8;
	memcpy(arg, &buf, 8);
	EXPECT_EQ(-EFAULT, sp_ioctl(self->fd, variant->cmd, arg));
	munmap(two, 2 * self->page);
	dbcmd_expect_ok(_metadata, self, variant, 0);
}

/* ---- command-specific inputs and behaviour ---- */

FIXTURE(db) {
	int unbound;		/* O_RDWR, unbound */
	int fd;			/* bound to an anonymous pool of DB_PAGES pages */
	long page;
	uint64_t bytes;
	struct shmpool_api api;
	uint32_t *map;		/* the pool, read-write */
	long long waiters0;	/* sleeping waiters before the test; -1: no counter */
	int rep[2];		/* children's struct report, O_NONBLOCK read end */
	pid_t kids[DB_KIDS];
	int nkids;
	char name[SHMPOOL_NAME_MAX];
};

FIXTURE_SETUP(db)
{
	self->fd = -1;
	self->map = MAP_FAILED;
	self->rep[0] = self->rep[1] = -1;
	sp_make_name(self->name, "db");
	if (!sp_setup_dev(_metadata, &self->unbound, &self->page, &self->api))
		return;
	self->bytes = DB_PAGES * self->page;
	self->fd = sp_anon_pool(self->bytes);
	ASSERT_GE(self->fd, 0);
	self->map = sp_map(self->fd, self->bytes, PROT_READ | PROT_WRITE, 0);
	ASSERT_NE(MAP_FAILED, self->map);
	ASSERT_EQ(0, pipe2(self->rep, O_CLOEXEC));
	if (!db_supported(_metadata, &self->api, self->fd))
		return;
	self->waiters0 = sp_counter("waiters");
}

FIXTURE_TEARDOWN(db)
{
	int i;

	for (i = 0; i < self->nkids; i++) {
		kill(self->kids[i], SIGKILL);
		waitpid(self->kids[i], NULL, 0);
	}
	if (self->map != MAP_FAILED)
		munmap(self->map, self->bytes);
	if (self->fd >= 0)
		close(self->fd);
	if (self->rep[0] >= 0) {
		close(self->rep[0]);
		close(self->rep[1]);
	}
	sp_unlink_quiet(self->name);
	close(self->unbound);
}

/* ---- helpers for tests with child processes ---- */

static inline uint32_t db_load(const uint32_t *w)
{
	return __atomic_load_n(w, __ATOMIC_SEQ_CST);
}

static inline void db_store(uint32_t *w, uint32_t v)
{
	__atomic_store_n(w, v, __ATOMIC_SEQ_CST);
}

static void db_report(int wfd, int idx, int ret, uint32_t val)
{
	struct report r = { .idx = idx, .ret = ret, .val = val };

	/* A pipe write of this size is atomic: reports never interleave. */
	if (write(wfd, &r, sizeof(r)) != sizeof(r))
		_exit(3);
}

/* The next report within @timeout_ms: true, or false if none came. */
static bool db_read_report(FIXTURE_DATA(db) *self, int timeout_ms, struct report *r)
{
	struct pollfd p = { .fd = self->rep[0], .events = POLLIN };

	if (poll(&p, 1, timeout_ms) != 1)
		return false;
	return read(self->rep[0], r, sizeof(*r)) == sizeof(*r);
}

/* Fork a child that the teardown reaps; returns 0 in the child. */
static pid_t db_fork(struct __test_metadata *_metadata, FIXTURE_DATA(db) *self)
{
	pid_t pid;

	ASSERT_LT(self->nkids, DB_KIDS);
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		sp_child_init();
		return 0;
	}
	self->kids[self->nkids++] = pid;
	return pid;
}

/* Reap child @pid (started by db_fork) and return its status as sp_wait(). */
static int db_reap(FIXTURE_DATA(db) *self, pid_t pid)
{
	int i, st = sp_wait(pid);

	for (i = 0; i < self->nkids; i++) {
		if (self->kids[i] == pid) {
			self->kids[i] = self->kids[--self->nkids];
			break;
		}
	}
	return st;
}

/* A child that WAITs on @fd at @off while the word is @expected, then reports. */
static pid_t db_spawn_waiter(struct __test_metadata *_metadata,
			     FIXTURE_DATA(db) *self, int fd, uint64_t off,
			     uint32_t expected, uint32_t bitset, int idx)
{
	pid_t pid = db_fork(_metadata, self);

	if (pid == 0) {
		int ret = sp_db_wait(fd, off, expected, bitset, 0, 0);

		db_report(self->rep[1], idx, ret, 0);
		_exit(0);
	}
	return pid;
}

/*
 * Wait until @n more waiters than before the test sleep in the kernel (at
 * least @n with @at_least, for WAITV whose entries may count one each).
 * Without the waiters counter, fall back to every child being in state S
 * and a grace period: weaker, and only there so that the tests still run.
 */
static void db_asleep(struct __test_metadata *_metadata, FIXTURE_DATA(db) *self,
		      int n, bool at_least)
{
	uint64_t end;
	int i;

	if (self->waiters0 >= 0) {
		ASSERT_EQ(0, sp_await_waiters(self->waiters0 + n, at_least, AWAIT_MS))
			TH_LOG("waiters: %lld, expected %s%lld", sp_counter("waiters"),
			       at_least ? ">= " : "", self->waiters0 + n);
		return;
	}
	end = sp_now_ns(CLOCK_MONOTONIC) + AWAIT_MS * 1000000ULL;
	for (i = 0; i < self->nkids; i++) {
		while (sp_proc_state(self->kids[i]) != 'S') {
			ASSERT_LT(sp_now_ns(CLOCK_MONOTONIC), end)
				TH_LOG("child %d never slept", (int)self->kids[i]);
			usleep(1000);
		}
	}
	usleep(300000);
}

/* No report arrives within QUIET_MS (nobody else woke). */
static void db_expect_quiet(struct __test_metadata *_metadata, FIXTURE_DATA(db) *self)
{
	struct report r;

	EXPECT_FALSE(db_read_report(self, QUIET_MS, &r))
		TH_LOG("unexpected report: child %d returned %d", r.idx, r.ret);
}

static void db_need_waiters_counter(struct __test_metadata *_metadata,
				    FIXTURE_DATA(db) *self)
{
	if (self->waiters0 < 0)
		SKIP(return, SP_SYSFS "waiters does not exist");
}

/* ---- API ---- */

TEST_F(db, api_reports_doorbell_features)
{
	EXPECT_EQ(SHMPOOL_FEAT_DOORBELL, self->api.features & SHMPOOL_FEAT_DOORBELL);
	EXPECT_EQ(SHMPOOL_FEAT_NOTIFY, self->api.features & SHMPOOL_FEAT_NOTIFY);
}

TEST_F(db, waiters_counter_exists_and_is_zero)
{
	db_need_waiters_counter(_metadata, self);
	EXPECT_EQ(0, self->waiters0);
}

/* ---- WAIT / WAITV flags ---- */

TEST_F(db, wait_realtime_without_deadline)
{
	EXPECT_EQ(-EINVAL, sp_db_wait(self->fd, 0, 1, SHMPOOL_BITSET_ANY,
				      SHMPOOL_WAIT_REALTIME, 0));
	/* Even with a deadline value present. */
	EXPECT_EQ(-EINVAL, sp_db_wait(self->fd, 0, 0, SHMPOOL_BITSET_ANY,
				      SHMPOOL_WAIT_REALTIME, 1));
	EXPECT_EQ(-ETIMEDOUT, sp_db_wait(self->fd, 0, 0, SHMPOOL_BITSET_ANY,
					 SHMPOOL_WAIT_REALTIME | SHMPOOL_WAIT_DEADLINE, 1));
}

TEST_F(db, waitv_realtime_without_deadline)
{
	struct shmpool_waitv_entry e;

	sp_db_entry(&e, -1, 0, 1, SHMPOOL_BITSET_ANY);
	EXPECT_EQ(-EINVAL, sp_db_waitv(self->fd, &e, 1, SHMPOOL_WAIT_REALTIME, 0));
	e.expected = 0;
	EXPECT_EQ(-EINVAL, sp_db_waitv(self->fd, &e, 1, SHMPOOL_WAIT_REALTIME, 1));
	EXPECT_EQ(-ETIMEDOUT, sp_db_waitv(self->fd, &e, 1,
					  SHMPOOL_WAIT_REALTIME | SHMPOOL_WAIT_DEADLINE, 1));
}

/* ---- WAITV inputs ---- */

TEST_F(db, waitv_entry_reserved_nonzero)
{
	const uint32_t vals[] = { 1, 0x80000000u, 0xffffffffu };
	struct shmpool_waitv_entry e[2];
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(vals); i++) {
		sp_db_entry(&e[0], -1, 0, 1, SHMPOOL_BITSET_ANY);
		sp_db_entry(&e[1], -1, 4, 1, SHMPOOL_BITSET_ANY);
		e[0].__reserved = vals[i];
		EXPECT_EQ(-EINVAL, sp_db_waitv(self->fd, e, 2, 0, 0));
		e[0].__reserved = 0;
		e[1].__reserved = vals[i];	/* the last entry is checked too */
		EXPECT_EQ(-EINVAL, sp_db_waitv(self->fd, e, 2, 0, 0));
	}
	e[1].__reserved = 0;
	EXPECT_EQ(-EAGAIN, sp_db_waitv(self->fd, e, 2, 0, 0));
}

TEST_F(db, waitv_reserved_nonzero)
{
	struct shmpool_waitv_entry e;
	struct shmpool_waitv w;

	sp_db_entry(&e, -1, 0, 1, SHMPOOL_BITSET_ANY);
	memset(&w, 0, sizeof(w));
	w.size = sizeof(w);
	w.entries = (uintptr_t)&e;
	w.nr_entries = 1;
	w.__reserved = 1;
	EXPECT_EQ(-EINVAL, sp_ioctl(self->fd, SHMPOOL_IOC_WAITV, &w));
	w.__reserved = 0x80000000u;
	EXPECT_EQ(-EINVAL, sp_ioctl(self->fd, SHMPOOL_IOC_WAITV, &w));
	w.__reserved = 0;
	EXPECT_EQ(-EAGAIN, sp_ioctl(self->fd, SHMPOOL_IOC_WAITV, &w));
}

TEST_F(db, waitv_entry_bitset_zero_in_second_entry)
{
	struct shmpool_waitv_entry e[2];

	/* The first entry alone would sleep: only a past deadline ends it. */
	sp_db_entry(&e[0], -1, 0, 0, SHMPOOL_BITSET_ANY);
	sp_db_entry(&e[1], -1, 4, 0, 0);
	EXPECT_EQ(-EINVAL, sp_db_waitv(self->fd, e, 2, SHMPOOL_WAIT_DEADLINE, 0));
}

TEST_F(db, waitv_misaligned_second_entry)
{
	struct shmpool_waitv_entry e[2];

	sp_db_entry(&e[0], -1, 0, 0, SHMPOOL_BITSET_ANY);
	sp_db_entry(&e[1], -1, 6, 0, SHMPOOL_BITSET_ANY);
	EXPECT_EQ(-EINVAL, sp_db_waitv(self->fd, e, 2, SHMPOOL_WAIT_DEADLINE, 0));
	e[1].offset = self->bytes;
	EXPECT_EQ(-EINVAL, sp_db_waitv(self->fd, e, 2, SHMPOOL_WAIT_DEADLINE, 0));
	e[1].offset = self->bytes - 4;
	EXPECT_EQ(-ETIMEDOUT, sp_db_waitv(self->fd, e, 2, SHMPOOL_WAIT_DEADLINE, 0));
}

TEST_F(db, waitv_entries_null)
{
	EXPECT_EQ(-EFAULT, sp_db_waitv(self->fd, NULL, 1, 0, 0));
	EXPECT_EQ(-EFAULT, sp_db_waitv(self->fd, NULL, SHMPOOL_WAITV_MAX, 0, 0));
}

TEST_F(db, waitv_entries_unmapped)
{
	void *none = mmap(NULL, self->page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS,
			  -1, 0);

	ASSERT_NE(MAP_FAILED, none);
	EXPECT_EQ(-EFAULT, sp_db_waitv(self->fd, none, 1, 0, 0));
	EXPECT_EQ(-EFAULT, sp_db_waitv(self->fd, (void *)8, 1, 0, 0));
	EXPECT_EQ(-EFAULT, sp_db_waitv(self->fd,
				       (void *)(uintptr_t)0xffffffff81000000ULL, 1, 0, 0));
	munmap(none, self->page);
}

TEST_F(db, waitv_entries_run_into_unmapped_page)
{
	struct shmpool_waitv_entry *e;
	uint8_t *two;

	two = mmap(NULL, 2 * self->page, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, two);
	ASSERT_EQ(0, mprotect(two + self->page, self->page, PROT_NONE));
	/* The last entry that fits, then one on the PROT_NONE page. */
	e = (struct shmpool_waitv_entry *)(two + self->page) - 1;
	sp_db_entry(e, -1, 0, 0, SHMPOOL_BITSET_ANY);
	EXPECT_EQ(-EFAULT, sp_db_waitv(self->fd, e, 2, SHMPOOL_WAIT_DEADLINE, 0));
	e->expected = 1;
	EXPECT_EQ(-EAGAIN, sp_db_waitv(self->fd, e, 1, 0, 0));
	munmap(two, 2 * self->page);
}

TEST_F(db, waitv_nr_entries_zero)
{
	struct shmpool_waitv_entry e;

	sp_db_entry(&e, -1, 0, 0, SHMPOOL_BITSET_ANY);
	EXPECT_EQ(-EINVAL, sp_db_waitv(self->fd, &e, 0, 0, 0));
	EXPECT_EQ(-EINVAL, sp_db_waitv(self->fd, NULL, 0, 0, 0));
	EXPECT_EQ(-EINVAL, sp_db_waitv(self->fd, &e, 0, SHMPOOL_WAIT_DEADLINE, 0));
}

TEST_F(db, waitv_nr_entries_above_max)
{
	struct shmpool_waitv_entry e[SHMPOOL_WAITV_MAX + 1];
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(e); i++)
		sp_db_entry(&e[i], -1, 4 * i, 1, SHMPOOL_BITSET_ANY);
	EXPECT_EQ(-EINVAL, sp_db_waitv(self->fd, e, SHMPOOL_WAITV_MAX + 1, 0, 0));
	EXPECT_EQ(-EINVAL, sp_db_waitv(self->fd, e, 1000, 0, 0));
	EXPECT_EQ(-EINVAL, sp_db_waitv(self->fd, e, 0x80000000u, 0, 0));
	EXPECT_EQ(-EINVAL, sp_db_waitv(self->fd, e, 0xffffffffu, 0, 0));
	EXPECT_EQ(-EAGAIN, sp_db_waitv(self->fd, e, SHMPOOL_WAITV_MAX, 0, 0));
}

TEST_F(db, waitv_max_entries_accepted)
{
	struct shmpool_waitv_entry e[SHMPOOL_WAITV_MAX];
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(e); i++)
		sp_db_entry(&e[i], -1, 4 * i, 0, SHMPOOL_BITSET_ANY);
	EXPECT_EQ(-ETIMEDOUT, sp_db_waitv(self->fd, e, SHMPOOL_WAITV_MAX,
					  SHMPOOL_WAIT_DEADLINE, 0));
	/* Only the last word differs. */
	db_store(&self->map[SHMPOOL_WAITV_MAX - 1], 9);
	EXPECT_EQ(-EAGAIN, sp_db_waitv(self->fd, e, SHMPOOL_WAITV_MAX, 0, 0));
}

TEST_F(db, waitv_entry_fd_not_open)
{
	const int bad[] = { -2, INT_MIN, INT_MAX, 1000000 };
	struct shmpool_waitv_entry e[2];
	unsigned int i;
	int closed = dup(self->fd);

	ASSERT_GE(closed, 0);
	close(closed);
	sp_db_entry(&e[0], -1, 0, 1, SHMPOOL_BITSET_ANY);
	sp_db_entry(&e[1], closed, 0, 1, SHMPOOL_BITSET_ANY);
	EXPECT_EQ(-EBADF, sp_db_waitv(self->fd, e, 2, 0, 0));
	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		e[1].fd = bad[i];
		EXPECT_EQ(-EBADF, sp_db_waitv(self->fd, e, 2, 0, 0))
			TH_LOG("entry fd %d", bad[i]);
	}
}

TEST_F(db, waitv_entry_fd_not_shmpool)
{
	struct shmpool_waitv_entry e[2];
	int p[2], efd, null;

	ASSERT_EQ(0, pipe2(p, O_CLOEXEC));
	efd = eventfd(0, EFD_CLOEXEC);
	ASSERT_GE(efd, 0);
	null = open("/dev/null", O_RDWR | O_CLOEXEC);
	ASSERT_GE(null, 0);
	sp_db_entry(&e[0], -1, 0, 1, SHMPOOL_BITSET_ANY);
	sp_db_entry(&e[1], p[0], 0, 1, SHMPOOL_BITSET_ANY);
	EXPECT_EQ(-EINVAL, sp_db_waitv(self->fd, e, 2, 0, 0));
	e[1].fd = p[1];
	EXPECT_EQ(-EINVAL, sp_db_waitv(self->fd, e, 2, 0, 0));
	e[1].fd = efd;
	EXPECT_EQ(-EINVAL, sp_db_waitv(self->fd, e, 2, 0, 0));
	e[1].fd = null;
	EXPECT_EQ(-EINVAL, sp_db_waitv(self->fd, e, 2, 0, 0));
	close(p[0]);
	close(p[1]);
	close(efd);
	close(null);
}

TEST_F(db, waitv_entry_fd_unbound)
{
	struct shmpool_waitv_entry e[2];

	sp_db_entry(&e[0], -1, 0, 1, SHMPOOL_BITSET_ANY);
	sp_db_entry(&e[1], self->unbound, 0, 1, SHMPOOL_BITSET_ANY);
	/* A scope fd is not a pool fd. */
	EXPECT_EQ(-EINVAL, sp_db_waitv(self->fd, e, 2, 0, 0));
	/* WAITV itself is unknown on a scope fd. */
	e[1].fd = self->fd;
	EXPECT_EQ(-ENOTTY, sp_db_waitv(self->unbound, e, 2, 0, 0));
}

TEST_F(db, waitv_entry_fd_explicit_self)
{
	struct shmpool_waitv_entry e;

	/* An explicit fd of the same pool is as good as -1. */
	sp_db_entry(&e, self->fd, 0, 1, SHMPOOL_BITSET_ANY);
	EXPECT_EQ(-EAGAIN, sp_db_waitv(self->fd, &e, 1, 0, 0));
	e.expected = 0;
	EXPECT_EQ(-ETIMEDOUT, sp_db_waitv(self->fd, &e, 1, SHMPOOL_WAIT_DEADLINE, 0));
}

/* ---- read-only attachments ---- */

/* A named pool and @ro attached to it read-only (device opened with @oflags). */
static int db_ro_attach(struct __test_metadata *_metadata, FIXTURE_DATA(db) *self,
			int *rw, int oflags)
{
	int ro;

	*rw = sp_open_dev(O_RDWR);
	ASSERT_GE(*rw, 0);
	ASSERT_EQ(0, sp_create(*rw, self->name, self->page, 0, 0644, NULL));
	ro = sp_open_dev(oflags);
	ASSERT_GE(ro, 0);
	ASSERT_EQ(0, sp_open_name(ro, self->name, SHMPOOL_OPEN_RDONLY, NULL));
	return ro;
}

TEST_F(db, wake_on_read_only_attachment)
{
	int rw, ro = db_ro_attach(_metadata, self, &rw, O_RDONLY);
	int ro2 = sp_open_dev(O_RDWR);

	ASSERT_GE(ro2, 0);
	ASSERT_EQ(0, sp_open_name(ro2, self->name, SHMPOOL_OPEN_RDONLY, NULL));
	EXPECT_EQ(-EPERM, sp_db_wake(ro, 0, 1, SHMPOOL_BITSET_ANY));
	EXPECT_EQ(-EPERM, sp_db_wake(ro, 0, SHMPOOL_WAKE_ALL, SHMPOOL_BITSET_ANY));
	EXPECT_EQ(-EPERM, sp_db_wake(ro, 0, 0, SHMPOOL_BITSET_ANY));
	/* The device opened O_RDWR but the pool attached read-only: the same. */
	EXPECT_EQ(-EPERM, sp_db_wake(ro2, 0, 1, SHMPOOL_BITSET_ANY));
	EXPECT_EQ(0, sp_db_wake(rw, 0, 1, SHMPOOL_BITSET_ANY));
	close(ro2);
	close(ro);
	close(rw);
}

TEST_F(db, wait_on_read_only_attachment)
{
	struct shmpool_waitv_entry e;
	int rw, ro = db_ro_attach(_metadata, self, &rw, O_RDONLY);
	int efd = eventfd(0, EFD_CLOEXEC);
	struct report r;

	ASSERT_GE(efd, 0);
	EXPECT_EQ(-EAGAIN, sp_db_wait(ro, 0, 1, SHMPOOL_BITSET_ANY, 0, 0));
	EXPECT_EQ(-ETIMEDOUT, sp_db_wait(ro, 0, 0, SHMPOOL_BITSET_ANY,
					 SHMPOOL_WAIT_DEADLINE, 0));
	sp_db_entry(&e, -1, 0, 0, SHMPOOL_BITSET_ANY);
	EXPECT_EQ(-ETIMEDOUT, sp_db_waitv(ro, &e, 1, SHMPOOL_WAIT_DEADLINE, 0));
	EXPECT_EQ(0, sp_db_notify(ro, SHMPOOL_NOTIFY_ADD, 0, efd, SHMPOOL_BITSET_ANY));
	EXPECT_EQ(0, sp_db_notify(ro, SHMPOOL_NOTIFY_DEL, 0, efd, SHMPOOL_BITSET_ANY));

	/* A sleeper on the read-only fd is woken through the read-write one. */
	db_spawn_waiter(_metadata, self, ro, 0, 0, SHMPOOL_BITSET_ANY, 0);
	db_asleep(_metadata, self, 1, false);
	EXPECT_EQ(1, sp_db_wake(rw, 0, 1, SHMPOOL_BITSET_ANY));
	ASSERT_TRUE(db_read_report(self, REPORT_MS, &r));
	EXPECT_EQ(0, r.ret);
	close(efd);
	close(ro);
	close(rw);
}

/* ---- NOTIFY inputs ---- */

TEST_F(db, notify_both_flags)
{
	int efd = eventfd(0, EFD_CLOEXEC);

	ASSERT_GE(efd, 0);
	EXPECT_EQ(-EINVAL, sp_db_notify(self->fd, SHMPOOL_NOTIFY_ADD | SHMPOOL_NOTIFY_DEL,
					0, efd, SHMPOOL_BITSET_ANY));
	/* Nothing was added: DEL finds nothing. */
	EXPECT_EQ(-ENOENT, sp_db_notify(self->fd, SHMPOOL_NOTIFY_DEL, 0, efd,
					SHMPOOL_BITSET_ANY));
	close(efd);
}

TEST_F(db, notify_neither_flag)
{
	int efd = eventfd(0, EFD_CLOEXEC);

	ASSERT_GE(efd, 0);
	EXPECT_EQ(-EINVAL, sp_db_notify(self->fd, 0, 0, efd, SHMPOOL_BITSET_ANY));
	EXPECT_EQ(-ENOENT, sp_db_notify(self->fd, SHMPOOL_NOTIFY_DEL, 0, efd,
					SHMPOOL_BITSET_ANY));
	close(efd);
}

TEST_F(db, notify_not_an_eventfd)
{
	int p[2], null;

	ASSERT_EQ(0, pipe2(p, O_CLOEXEC));
	null = open("/dev/null", O_RDWR | O_CLOEXEC);
	ASSERT_GE(null, 0);
	EXPECT_EQ(-EINVAL, sp_db_notify(self->fd, SHMPOOL_NOTIFY_ADD, 0, p[0],
					SHMPOOL_BITSET_ANY));
	EXPECT_EQ(-EINVAL, sp_db_notify(self->fd, SHMPOOL_NOTIFY_ADD, 0, p[1],
					SHMPOOL_BITSET_ANY));
	EXPECT_EQ(-EINVAL, sp_db_notify(self->fd, SHMPOOL_NOTIFY_ADD, 0, null,
					SHMPOOL_BITSET_ANY));
	/* The pool fd itself is no eventfd either. */
	EXPECT_EQ(-EINVAL, sp_db_notify(self->fd, SHMPOOL_NOTIFY_ADD, 0, self->fd,
					SHMPOOL_BITSET_ANY));
	close(p[0]);
	close(p[1]);
	close(null);
}

TEST_F(db, notify_eventfd_not_open)
{
	int closed = eventfd(0, EFD_CLOEXEC);

	ASSERT_GE(closed, 0);
	close(closed);
	EXPECT_EQ(-EBADF, sp_db_notify(self->fd, SHMPOOL_NOTIFY_ADD, 0, closed,
				       SHMPOOL_BITSET_ANY));
	EXPECT_EQ(-EBADF, sp_db_notify(self->fd, SHMPOOL_NOTIFY_ADD, 0, -1,
				       SHMPOOL_BITSET_ANY));
	EXPECT_EQ(-EBADF, sp_db_notify(self->fd, SHMPOOL_NOTIFY_ADD, 0, INT_MAX,
				       SHMPOOL_BITSET_ANY));
}

TEST_F(db, notify_duplicate_add)
{
	int efd = eventfd(0, EFD_CLOEXEC);

	ASSERT_GE(efd, 0);
	ASSERT_EQ(0, sp_db_notify(self->fd, SHMPOOL_NOTIFY_ADD, 0, efd,
				  SHMPOOL_BITSET_ANY));
	EXPECT_EQ(-EEXIST, sp_db_notify(self->fd, SHMPOOL_NOTIFY_ADD, 0, efd,
					SHMPOOL_BITSET_ANY));
	/* The pair is the key: another bitset is still the same binding. */
	EXPECT_EQ(-EEXIST, sp_db_notify(self->fd, SHMPOOL_NOTIFY_ADD, 0, efd, 1));
	/* Another offset is another pair. */
	EXPECT_EQ(0, sp_db_notify(self->fd, SHMPOOL_NOTIFY_ADD, 4, efd,
				  SHMPOOL_BITSET_ANY));
	close(efd);
}

TEST_F(db, notify_del_unknown)
{
	int efd = eventfd(0, EFD_CLOEXEC);
	int efd2 = eventfd(0, EFD_CLOEXEC);

	ASSERT_GE(efd, 0);
	ASSERT_GE(efd2, 0);
	EXPECT_EQ(-ENOENT, sp_db_notify(self->fd, SHMPOOL_NOTIFY_DEL, 0, efd,
					SHMPOOL_BITSET_ANY));
	ASSERT_EQ(0, sp_db_notify(self->fd, SHMPOOL_NOTIFY_ADD, 0, efd,
				  SHMPOOL_BITSET_ANY));
	/* Same eventfd at another offset, another eventfd at the same offset. */
	EXPECT_EQ(-ENOENT, sp_db_notify(self->fd, SHMPOOL_NOTIFY_DEL, 4, efd,
					SHMPOOL_BITSET_ANY));
	EXPECT_EQ(-ENOENT, sp_db_notify(self->fd, SHMPOOL_NOTIFY_DEL, 0, efd2,
					SHMPOOL_BITSET_ANY));
	EXPECT_EQ(0, sp_db_notify(self->fd, SHMPOOL_NOTIFY_DEL, 0, efd,
				  SHMPOOL_BITSET_ANY));
	EXPECT_EQ(-ENOENT, sp_db_notify(self->fd, SHMPOOL_NOTIFY_DEL, 0, efd,
					SHMPOOL_BITSET_ANY));
	close(efd);
	close(efd2);
}

TEST_F(db, notify_del_on_other_fd_of_same_pool)
{
	int efd = eventfd(0, EFD_CLOEXEC);
	int other = dup(self->fd);
	int fd2 = sp_open_dev(O_RDWR);

	ASSERT_GE(efd, 0);
	ASSERT_GE(other, 0);
	ASSERT_GE(fd2, 0);
	ASSERT_EQ(0, sp_create(fd2, self->name, self->page, 0, 0600, NULL));
	ASSERT_EQ(0, sp_db_notify(fd2, SHMPOOL_NOTIFY_ADD, 0, efd, SHMPOOL_BITSET_ANY));
	/* Bindings belong to the open file that added them. */
	close(other);
	other = sp_open_dev(O_RDWR);
	ASSERT_GE(other, 0);
	ASSERT_EQ(0, sp_open_name(other, self->name, 0, NULL));
	EXPECT_EQ(-ENOENT, sp_db_notify(other, SHMPOOL_NOTIFY_DEL, 0, efd,
					SHMPOOL_BITSET_ANY));
	EXPECT_EQ(0, sp_db_notify(fd2, SHMPOOL_NOTIFY_DEL, 0, efd, SHMPOOL_BITSET_ANY));
	close(other);
	close(fd2);
	close(efd);
}

TEST_F(db, notify_too_many)
{
	int efd[SHMPOOL_NOTIFY_MAX + 1], i, fd2;

	for (i = 0; i <= SHMPOOL_NOTIFY_MAX; i++) {
		efd[i] = eventfd(0, EFD_CLOEXEC);
		ASSERT_GE(efd[i], 0);
	}
	/* Half of them on one eventfd at many offsets, half on many eventfds. */
	for (i = 0; i < SHMPOOL_NOTIFY_MAX; i++) {
		int e = i < SHMPOOL_NOTIFY_MAX / 2 ? efd[0] : efd[i];

		ASSERT_EQ(0, sp_db_notify(self->fd, SHMPOOL_NOTIFY_ADD, 4 * i, e,
					  SHMPOOL_BITSET_ANY))
			TH_LOG("binding %d refused", i);
	}
	EXPECT_EQ(-ENOSPC, sp_db_notify(self->fd, SHMPOOL_NOTIFY_ADD, 0,
					efd[SHMPOOL_NOTIFY_MAX], SHMPOOL_BITSET_ANY));
	EXPECT_EQ(-ENOSPC, sp_db_notify(self->fd, SHMPOOL_NOTIFY_ADD, self->bytes - 4,
					efd[0], SHMPOOL_BITSET_ANY));
	/* The limit is per fd: another fd of the same pool has room. */
	fd2 = dup(self->fd);
	ASSERT_GE(fd2, 0);
	close(fd2);
	fd2 = sp_open_dev(O_RDWR);
	ASSERT_GE(fd2, 0);
	ASSERT_EQ(0, sp_create(fd2, self->name, self->page, 0, 0600, NULL));
	EXPECT_EQ(0, sp_db_notify(fd2, SHMPOOL_NOTIFY_ADD, 0, efd[SHMPOOL_NOTIFY_MAX],
				  SHMPOOL_BITSET_ANY));
	/* DEL makes room again. */
	EXPECT_EQ(0, sp_db_notify(self->fd, SHMPOOL_NOTIFY_DEL, 0, efd[0],
				  SHMPOOL_BITSET_ANY));
	EXPECT_EQ(0, sp_db_notify(self->fd, SHMPOOL_NOTIFY_ADD, 0,
				  efd[SHMPOOL_NOTIFY_MAX], SHMPOOL_BITSET_ANY));
	EXPECT_EQ(-ENOSPC, sp_db_notify(self->fd, SHMPOOL_NOTIFY_ADD, 8,
					efd[SHMPOOL_NOTIFY_MAX], SHMPOOL_BITSET_ANY));
	close(fd2);
	for (i = 0; i <= SHMPOOL_NOTIFY_MAX; i++)
		close(efd[i]);
}

/* ---- WAIT / WAKE basics ---- */

TEST_F(db, wait_value_differs_returns_eagain_at_once)
{
	const uint32_t vals[] = { 1, 0x80000000u, 0xffffffffu };
	uint64_t t0 = sp_now_ns(CLOCK_MONOTONIC);
	struct shmpool_waitv_entry e;
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(vals); i++) {
		/* No deadline: a wrong sleep would hang until the harness kills it. */
		EXPECT_EQ(-EAGAIN, sp_db_wait(self->fd, 0, vals[i], SHMPOOL_BITSET_ANY, 0, 0));
		EXPECT_EQ(-EAGAIN, sp_db_wait(self->fd, self->bytes - 4, vals[i],
					      SHMPOOL_BITSET_ANY, 0, 0));
	}
	/* The kernel reads the word that is in the pool now. */
	db_store(&self->map[5], 0xdeadbeef);
	EXPECT_EQ(-EAGAIN, sp_db_wait(self->fd, 20, 0, SHMPOOL_BITSET_ANY, 0, 0));
	EXPECT_EQ(-EAGAIN, sp_db_wait(self->fd, 20, 0xdeadbeee, SHMPOOL_BITSET_ANY, 0, 0));
	EXPECT_EQ(-ETIMEDOUT, sp_db_wait(self->fd, 20, 0xdeadbeef, SHMPOOL_BITSET_ANY,
					 SHMPOOL_WAIT_DEADLINE, 0));
	/* A mismatch beats a deadline already past. */
	EXPECT_EQ(-EAGAIN, sp_db_wait(self->fd, 20, 7, SHMPOOL_BITSET_ANY,
				      SHMPOOL_WAIT_DEADLINE, 0));
	sp_db_entry(&e, -1, 20, 1, SHMPOOL_BITSET_ANY);
	EXPECT_EQ(-EAGAIN, sp_db_waitv(self->fd, &e, 1, 0, 0));
	EXPECT_LT(sp_now_ns(CLOCK_MONOTONIC) - t0, AT_ONCE_NS);
}

TEST_F(db, wait_reads_page_never_touched)
{
	/* Word in the last page, which no mapping has faulted in. */
	int fd = sp_anon_pool(4 * self->page);

	ASSERT_GE(fd, 0);
	EXPECT_EQ(-EAGAIN, sp_db_wait(fd, 3 * self->page + 8, 1, SHMPOOL_BITSET_ANY, 0, 0));
	EXPECT_EQ(-ETIMEDOUT, sp_db_wait(fd, 3 * self->page + 8, 0, SHMPOOL_BITSET_ANY,
					 SHMPOOL_WAIT_DEADLINE, 0));
	close(fd);
}

TEST_F(db, wake_no_waiters_returns_zero)
{
	EXPECT_EQ(0, sp_db_wake(self->fd, 0, 1, SHMPOOL_BITSET_ANY));
	EXPECT_EQ(0, sp_db_wake(self->fd, 0, SHMPOOL_WAKE_ALL, SHMPOOL_BITSET_ANY));
	EXPECT_EQ(0, sp_db_wake(self->fd, 0, 0, SHMPOOL_BITSET_ANY));
	EXPECT_EQ(0, sp_db_wake(self->fd, self->bytes - 4, 100, 1));
}

TEST_F(db, wake_n_of_8_wakes_exactly_n)
{
	struct report r;
	bool woke[8] = { false };
	int i;

	for (i = 0; i < 8; i++)
		db_spawn_waiter(_metadata, self, self->fd, 16, 0, SHMPOOL_BITSET_ANY, i);
	db_asleep(_metadata, self, 8, false);

	EXPECT_EQ(3, sp_db_wake(self->fd, 16, 3, SHMPOOL_BITSET_ANY));
	for (i = 0; i < 3; i++) {
		ASSERT_TRUE(db_read_report(self, REPORT_MS, &r));
		EXPECT_EQ(0, r.ret);
		ASSERT_TRUE(r.idx >= 0 && r.idx < 8);
		EXPECT_FALSE(woke[r.idx]);
		woke[r.idx] = true;
	}
	/* The other five still sleep. */
	db_expect_quiet(_metadata, self);
	if (self->waiters0 >= 0)
		EXPECT_EQ(self->waiters0 + 5, sp_counter("waiters"));
	EXPECT_EQ(0, sp_db_wake(self->fd, 16, 0, SHMPOOL_BITSET_ANY));
	db_expect_quiet(_metadata, self);

	EXPECT_EQ(5, sp_db_wake(self->fd, 16, SHMPOOL_WAKE_ALL, SHMPOOL_BITSET_ANY));
	for (i = 0; i < 5; i++) {
		ASSERT_TRUE(db_read_report(self, REPORT_MS, &r));
		EXPECT_EQ(0, r.ret);
		ASSERT_TRUE(r.idx >= 0 && r.idx < 8);
		EXPECT_FALSE(woke[r.idx]);
		woke[r.idx] = true;
	}
	EXPECT_EQ(0, sp_db_wake(self->fd, 16, SHMPOOL_WAKE_ALL, SHMPOOL_BITSET_ANY));
	while (self->nkids)
		EXPECT_EQ(0, db_reap(self, self->kids[0]));
	if (self->waiters0 >= 0)
		EXPECT_EQ(0, sp_await_waiters(self->waiters0, false, AWAIT_MS));
}

TEST_F(db, wake_in_order_of_waiting)
{
	struct report r;
	int i;

	/* Each waiter is asleep before the next one starts. */
	for (i = 0; i < 4; i++) {
		db_spawn_waiter(_metadata, self, self->fd, 0, 0, SHMPOOL_BITSET_ANY, i);
		db_asleep(_metadata, self, i + 1, false);
	}
	for (i = 0; i < 4; i++) {
		EXPECT_EQ(1, sp_db_wake(self->fd, 0, 1, SHMPOOL_BITSET_ANY));
		ASSERT_TRUE(db_read_report(self, REPORT_MS, &r));
		EXPECT_EQ(i, r.idx);
		EXPECT_EQ(0, r.ret);
	}
}

TEST_F(db, wake_bitset_selects_waiters)
{
	const uint32_t sets[4] = { 1, 2, 4, 2 | 4 };
	struct report r;
	unsigned int got = 0;
	int i;

	for (i = 0; i < 4; i++)
		db_spawn_waiter(_metadata, self, self->fd, 0, 0, sets[i], i);
	db_asleep(_metadata, self, 4, false);

	EXPECT_EQ(0, sp_db_wake(self->fd, 0, SHMPOOL_WAKE_ALL, 8));
	/* Bit 1 matches waiters 1 and 3. */
	EXPECT_EQ(2, sp_db_wake(self->fd, 0, SHMPOOL_WAKE_ALL, 2));
	for (i = 0; i < 2; i++) {
		ASSERT_TRUE(db_read_report(self, REPORT_MS, &r));
		got |= 1U << r.idx;
	}
	EXPECT_EQ((1U << 1) | (1U << 3), got);
	db_expect_quiet(_metadata, self);
	/* nr counts matching waiters only: 1 | 4 matches waiters 0 and 2. */
	EXPECT_EQ(1, sp_db_wake(self->fd, 0, 1, 1 | 4));
	ASSERT_TRUE(db_read_report(self, REPORT_MS, &r));
	got |= 1U << r.idx;
	EXPECT_EQ(1, sp_db_wake(self->fd, 0, SHMPOOL_WAKE_ALL, SHMPOOL_BITSET_ANY));
	ASSERT_TRUE(db_read_report(self, REPORT_MS, &r));
	got |= 1U << r.idx;
	EXPECT_EQ(0xfU, got);
}

TEST_F(db, wake_other_offset_does_not_wake)
{
	struct report r;

	db_spawn_waiter(_metadata, self, self->fd, 8, 0, SHMPOOL_BITSET_ANY, 0);
	db_asleep(_metadata, self, 1, false);
	EXPECT_EQ(0, sp_db_wake(self->fd, 4, SHMPOOL_WAKE_ALL, SHMPOOL_BITSET_ANY));
	EXPECT_EQ(0, sp_db_wake(self->fd, 12, SHMPOOL_WAKE_ALL, SHMPOOL_BITSET_ANY));
	/* Same offset modulo a page: not the same word. */
	EXPECT_EQ(0, sp_db_wake(self->fd, self->page + 8, SHMPOOL_WAKE_ALL,
				SHMPOOL_BITSET_ANY));
	db_expect_quiet(_metadata, self);
	EXPECT_EQ(1, sp_db_wake(self->fd, 8, SHMPOOL_WAKE_ALL, SHMPOOL_BITSET_ANY));
	ASSERT_TRUE(db_read_report(self, REPORT_MS, &r));
	EXPECT_EQ(0, r.ret);
}

TEST_F(db, pools_with_same_offset_do_not_share_doorbells)
{
	int b = sp_anon_pool(self->bytes);
	struct report r;

	ASSERT_GE(b, 0);
	db_spawn_waiter(_metadata, self, b, 0, 0, SHMPOOL_BITSET_ANY, 0);
	db_asleep(_metadata, self, 1, false);
	EXPECT_EQ(0, sp_db_wake(self->fd, 0, SHMPOOL_WAKE_ALL, SHMPOOL_BITSET_ANY));
	db_expect_quiet(_metadata, self);
	if (self->waiters0 >= 0)
		EXPECT_EQ(self->waiters0 + 1, sp_counter("waiters"));
	EXPECT_EQ(1, sp_db_wake(b, 0, SHMPOOL_WAKE_ALL, SHMPOOL_BITSET_ANY));
	ASSERT_TRUE(db_read_report(self, REPORT_MS, &r));
	EXPECT_EQ(0, r.ret);
	close(b);
}

TEST_F(db, forked_fd_shares_doorbells_with_fd_opened_by_name)
{
	int p = sp_open_dev(O_RDWR), w = sp_open_dev(O_RDWR);
	struct report r;

	ASSERT_GE(p, 0);
	ASSERT_GE(w, 0);
	ASSERT_EQ(0, sp_create(p, self->name, self->page, 0, 0600, NULL));
	/* The child sleeps on the fd it inherited ... */
	db_spawn_waiter(_metadata, self, p, 0, 0, SHMPOOL_BITSET_ANY, 0);
	db_asleep(_metadata, self, 1, false);
	/* ... and a separate open of the same pool by name reaches it. */
	ASSERT_EQ(0, sp_open_name(w, self->name, 0, NULL));
	EXPECT_EQ(1, sp_db_wake(w, 0, SHMPOOL_WAKE_ALL, SHMPOOL_BITSET_ANY));
	ASSERT_TRUE(db_read_report(self, REPORT_MS, &r));
	EXPECT_EQ(0, r.ret);
	close(w);
	close(p);
}

/* ---- lost-wake-up hunt ---- */

/*
 * Watchdog: SIGALRM every PP_WATCH_S seconds checks that rounds advanced.
 * No SA_RESTART, so a WAIT stuck on a lost wake-up returns EINTR and the
 * test can say where it stalled instead of being killed by the harness.
 */
#define PP_WATCH_S	5
static volatile sig_atomic_t pp_stalled;
static volatile unsigned long pp_rounds, pp_seen;

static void pp_alarm(int sig)
{
	(void)sig;
	if (pp_rounds == pp_seen)
		pp_stalled = 1;
	pp_seen = pp_rounds;
	if (!pp_stalled)
		alarm(PP_WATCH_S);
}

/* The partner: turns odd into even, WAKE after each store. */
static void pp_child(int fd, uint32_t *seq, uint32_t *stop)
{
	for (;;) {
		uint32_t v = db_load(seq);
		int ret;

		if (v & 1) {
			if (db_load(stop))
				_exit(0);
			db_store(seq, v + 1);
			ret = sp_db_wake(fd, 0, 1, SHMPOOL_BITSET_ANY);
			CHILD_CHECK(ret == 0 || ret == 1);
			continue;
		}
		ret = sp_db_wait(fd, 0, v, SHMPOOL_BITSET_ANY, 0, 0);
		CHILD_CHECK(ret == 0 || ret == -EAGAIN);
	}
}

/*
 * Two processes hand a word back and forth, each sleeping in WAIT until the
 * other's store and WAKE. A wake-up lost between the kernel's re-check of the
 * word and the sleep stalls both for good. At least 100,000 rounds on a fast
 * host; under the TCG VM lanes (2 vCPUs, each round ~4 syscalls and two
 * cross-CPU wake-ups) the round budget is cut by time to no fewer than
 * PP_MIN_ROUNDS = 20,000 so the test stays near 30 s there. The debug lane
 * (KASAN, lockdep; 22,000 rounds took 20 s there) hunts for a quarter of
 * both, as it does the library's hunts: the other lanes hunt in full.
 */
#define PP_MIN_ROUNDS	20000UL
#define PP_MAX_ROUNDS	100000UL
#define PP_BUDGET_NS	20000000000ULL

TEST_F_TIMEOUT(db, pingpong_no_lost_wakeup, 400)
{
	struct sigaction sa = { .sa_handler = pp_alarm }, old;
	uint32_t *seq = &self->map[0], *stop = &self->map[16];
	uint64_t t0 = sp_now_ns(CLOCK_MONOTONIC), dt;
	unsigned long round, min_rounds = lane_debug_quarter(PP_MIN_ROUNDS);
	uint64_t budget_ns = (uint64_t)lane_debug_quarter((long)PP_BUDGET_NS);
	pid_t pid;
	int ret;

	pid = db_fork(_metadata, self);
	if (pid == 0)
		pp_child(self->fd, seq, stop);

	sigemptyset(&sa.sa_mask);
	ASSERT_EQ(0, sigaction(SIGALRM, &sa, &old));
	pp_stalled = 0;
	pp_rounds = 0;
	pp_seen = ~0UL;
	alarm(PP_WATCH_S);
	for (round = 0; ; round++) {
		uint32_t v = 2 * round;

		if (round >= min_rounds &&
		    (round >= PP_MAX_ROUNDS ||
		     sp_now_ns(CLOCK_MONOTONIC) - t0 > budget_ns))
			break;
		db_store(seq, v + 1);
		ret = sp_db_wake(self->fd, 0, 1, SHMPOOL_BITSET_ANY);
		ASSERT_TRUE(ret == 0 || ret == 1) TH_LOG("WAKE returned %d", ret);
		while (db_load(seq) == v + 1) {
			ret = sp_db_wait(self->fd, 0, v + 1, SHMPOOL_BITSET_ANY, 0, 0);
			ASSERT_FALSE(pp_stalled)
				TH_LOG("stalled at round %lu: word %u, waiters %lld",
				       round, db_load(seq), sp_counter("waiters"));
			ASSERT_TRUE(ret == 0 || ret == -EAGAIN || ret == -EINTR)
				TH_LOG("WAIT returned %d at round %lu", ret, round);
		}
		ASSERT_EQ(v + 2, db_load(seq));
		pp_rounds = round + 1;
	}
	alarm(0);
	sigaction(SIGALRM, &old, NULL);
	db_store(stop, 1);
	db_store(seq, 2 * round + 1);
	sp_db_wake(self->fd, 0, 1, SHMPOOL_BITSET_ANY);
	EXPECT_EQ(0, db_reap(self, pid));
	dt = sp_now_ns(CLOCK_MONOTONIC) - t0;
	TH_LOG("%lu rounds in %.2f s (%.1f us/round)", round, dt / 1e9,
	       dt / 1e3 / round);
}

/* ---- deadlines ---- */

TEST_F(db, deadline_monotonic_not_before)
{
	uint64_t deadline = sp_now_ns(CLOCK_MONOTONIC) + 200000000ULL;
	struct shmpool_waitv_entry e;

	EXPECT_EQ(-ETIMEDOUT, sp_db_wait(self->fd, 0, 0, SHMPOOL_BITSET_ANY,
					 SHMPOOL_WAIT_DEADLINE, deadline));
	EXPECT_GE(sp_now_ns(CLOCK_MONOTONIC), deadline);

	deadline = sp_now_ns(CLOCK_MONOTONIC) + 200000000ULL;
	sp_db_entry(&e, -1, 0, 0, SHMPOOL_BITSET_ANY);
	EXPECT_EQ(-ETIMEDOUT, sp_db_waitv(self->fd, &e, 1, SHMPOOL_WAIT_DEADLINE,
					  deadline));
	EXPECT_GE(sp_now_ns(CLOCK_MONOTONIC), deadline);
}

TEST_F(db, deadline_past_returns_at_once)
{
	uint64_t now = sp_now_ns(CLOCK_MONOTONIC);
	const uint64_t past[] = { 0, 1, now - 1000000000ULL, now };
	struct shmpool_waitv_entry e;
	unsigned int i;
	uint64_t t0;

	sp_db_entry(&e, -1, 0, 0, SHMPOOL_BITSET_ANY);
	for (i = 0; i < ARRAY_SIZE(past); i++) {
		t0 = sp_now_ns(CLOCK_MONOTONIC);
		EXPECT_EQ(-ETIMEDOUT, sp_db_wait(self->fd, 0, 0, SHMPOOL_BITSET_ANY,
						 SHMPOOL_WAIT_DEADLINE, past[i]));
		EXPECT_EQ(-ETIMEDOUT, sp_db_waitv(self->fd, &e, 1, SHMPOOL_WAIT_DEADLINE,
						  past[i]));
		EXPECT_LT(sp_now_ns(CLOCK_MONOTONIC) - t0, AT_ONCE_NS)
			TH_LOG("past deadline %llu slept", (unsigned long long)past[i]);
	}
}

TEST_F(db, deadline_realtime)
{
	const uint32_t rt = SHMPOOL_WAIT_DEADLINE | SHMPOOL_WAIT_REALTIME;
	uint64_t deadline = sp_now_ns(CLOCK_REALTIME) + 200000000ULL;
	struct shmpool_waitv_entry e;
	uint64_t t0;

	EXPECT_EQ(-ETIMEDOUT, sp_db_wait(self->fd, 0, 0, SHMPOOL_BITSET_ANY, rt, deadline));
	EXPECT_GE(sp_now_ns(CLOCK_REALTIME), deadline);
	deadline = sp_now_ns(CLOCK_REALTIME) + 200000000ULL;
	sp_db_entry(&e, -1, 0, 0, SHMPOOL_BITSET_ANY);
	EXPECT_EQ(-ETIMEDOUT, sp_db_waitv(self->fd, &e, 1, rt, deadline));
	EXPECT_GE(sp_now_ns(CLOCK_REALTIME), deadline);

	/*
	 * The flag selects the clock: an hour past the monotonic now is long
	 * ago on CLOCK_REALTIME (decades after the epoch), so no sleep.
	 */
	t0 = sp_now_ns(CLOCK_MONOTONIC);
	EXPECT_EQ(-ETIMEDOUT, sp_db_wait(self->fd, 0, 0, SHMPOOL_BITSET_ANY, rt,
					 t0 + 3600000000000ULL));
	EXPECT_LT(sp_now_ns(CLOCK_MONOTONIC) - t0, AT_ONCE_NS);
}

TEST_F(db, woken_before_deadline_returns_zero)
{
	struct report r;
	pid_t pid = db_fork(_metadata, self);

	if (pid == 0) {
		/* A deadline far enough that only the WAKE can end the sleep. */
		uint64_t d = sp_now_ns(CLOCK_MONOTONIC) + 600000000000ULL;

		db_report(self->rep[1], 0, sp_db_wait(self->fd, 0, 0, SHMPOOL_BITSET_ANY,
						      SHMPOOL_WAIT_DEADLINE, d), 0);
		_exit(0);
	}
	db_asleep(_metadata, self, 1, false);
	EXPECT_EQ(1, sp_db_wake(self->fd, 0, 1, SHMPOOL_BITSET_ANY));
	ASSERT_TRUE(db_read_report(self, REPORT_MS, &r));
	EXPECT_EQ(0, r.ret);
}

/* ---- signals ---- */

static int sig_report_fd = -1;

static void sig_handler(int sig)
{
	struct report r = { .idx = REPORT_HANDLER, .ret = sig };

	if (write(sig_report_fd, &r, sizeof(r)) != sizeof(r))
		_exit(4);
}

/* A child that installs sig_handler for SIGUSR1 with @sa_flags, then WAITs. */
static pid_t db_spawn_signalled_waiter(struct __test_metadata *_metadata,
				       FIXTURE_DATA(db) *self, int sa_flags)
{
	pid_t pid = db_fork(_metadata, self);

	if (pid == 0) {
		struct sigaction sa = { .sa_handler = sig_handler, .sa_flags = sa_flags };

		sig_report_fd = self->rep[1];
		sigemptyset(&sa.sa_mask);
		CHILD_CHECK(sigaction(SIGUSR1, &sa, NULL) == 0);
		db_report(self->rep[1], 0, sp_db_wait(self->fd, 0, 0, SHMPOOL_BITSET_ANY,
						      0, 0), 0);
		_exit(0);
	}
	return pid;
}

TEST_F(db, signal_with_sa_restart_keeps_waiting)
{
	struct report r;
	pid_t pid = db_spawn_signalled_waiter(_metadata, self, SA_RESTART);

	db_asleep(_metadata, self, 1, false);
	ASSERT_EQ(0, kill(pid, SIGUSR1));
	ASSERT_TRUE(db_read_report(self, REPORT_MS, &r));
	EXPECT_EQ(REPORT_HANDLER, r.idx) TH_LOG("WAIT returned %d", r.ret);
	/* The handler ran; the call restarted and sleeps again. */
	db_asleep(_metadata, self, 1, false);
	db_expect_quiet(_metadata, self);
	EXPECT_EQ(1, sp_db_wake(self->fd, 0, 1, SHMPOOL_BITSET_ANY));
	ASSERT_TRUE(db_read_report(self, REPORT_MS, &r));
	EXPECT_EQ(0, r.idx);
	EXPECT_EQ(0, r.ret);
}

TEST_F(db, signal_without_sa_restart_returns_eintr)
{
	struct report r;
	pid_t pid = db_spawn_signalled_waiter(_metadata, self, 0);

	db_asleep(_metadata, self, 1, false);
	ASSERT_EQ(0, kill(pid, SIGUSR1));
	ASSERT_TRUE(db_read_report(self, REPORT_MS, &r));
	EXPECT_EQ(REPORT_HANDLER, r.idx);
	ASSERT_TRUE(db_read_report(self, REPORT_MS, &r));
	EXPECT_EQ(0, r.idx);
	EXPECT_EQ(-EINTR, r.ret);
	EXPECT_EQ(0, db_reap(self, pid));
	if (self->waiters0 >= 0)
		EXPECT_EQ(0, sp_await_waiters(self->waiters0, false, AWAIT_MS));
	EXPECT_EQ(0, sp_db_wake(self->fd, 0, SHMPOOL_WAKE_ALL, SHMPOOL_BITSET_ANY));
}

TEST_F(db, stop_and_continue_keeps_waiting)
{
	struct report r;
	uint64_t end;
	pid_t pid = db_spawn_waiter(_metadata, self, self->fd, 0, 0,
				    SHMPOOL_BITSET_ANY, 0);

	/* A signal with no handler (SIGSTOP, then SIGCONT) restarts the call. */
	db_asleep(_metadata, self, 1, false);
	ASSERT_EQ(0, kill(pid, SIGSTOP));
	end = sp_now_ns(CLOCK_MONOTONIC) + AWAIT_MS * 1000000ULL;
	while (sp_proc_state(pid) != 'T') {
		ASSERT_LT(sp_now_ns(CLOCK_MONOTONIC), end);
		usleep(1000);
	}
	ASSERT_EQ(0, kill(pid, SIGCONT));
	db_asleep(_metadata, self, 1, false);
	db_expect_quiet(_metadata, self);
	EXPECT_EQ(1, sp_db_wake(self->fd, 0, 1, SHMPOOL_BITSET_ANY));
	ASSERT_TRUE(db_read_report(self, REPORT_MS, &r));
	EXPECT_EQ(0, r.ret);
}

/*
 * A WAKE that counts a waiter as woken must be what that waiter returns:
 * when a signal (handler without SA_RESTART) or the deadline races with the
 * WAKE, WAKE returned 1 exactly when WAIT returned 0. Otherwise a waker
 * that believes it handed over (a lock, a ring slot) has lost its wake-up.
 */
#define RACE_ROUNDS	200

static void race_handler(int sig)
{
	(void)sig;
}

/* Round @round's WAKE returned @ret: the waiter returned 0 iff it was counted. */
static void race_check(struct __test_metadata *_metadata, FIXTURE_DATA(db) *self,
		       unsigned int round, int ret, int other, unsigned int *woken)
{
	struct report r;

	ASSERT_TRUE(db_read_report(self, REPORT_MS, &r));
	ASSERT_EQ((int)round, r.idx);
	if (ret == 1) {
		(*woken)++;
		ASSERT_EQ(0, r.ret) TH_LOG("round %u: WAKE counted it, WAIT said %d",
					   round, r.ret);
	} else {
		ASSERT_EQ(0, ret);
		ASSERT_EQ(other, r.ret) TH_LOG("round %u: WAKE 0, WAIT said %d",
					       round, r.ret);
	}
}

TEST_F(db, wake_count_matches_waiter_under_signal_race)
{
	unsigned int round, woken = 0;
	int go[2], ret;
	pid_t pid;
	char c;

	db_need_waiters_counter(_metadata, self);
	ASSERT_EQ(0, pipe2(go, O_CLOEXEC));
	pid = db_fork(_metadata, self);
	if (pid == 0) {
		struct sigaction sa = { .sa_handler = race_handler };

		sigemptyset(&sa.sa_mask);
		CHILD_CHECK(sigaction(SIGUSR1, &sa, NULL) == 0);
		/* One WAIT per go byte, so a WAKE cannot reach the next round's. */
		for (round = 0; read(go[0], &c, 1) == 1 && c == 'g'; round++)
			db_report(self->rep[1], round,
				  sp_db_wait(self->fd, 0, 0, SHMPOOL_BITSET_ANY, 0, 0), 0);
		_exit(0);
	}
	for (round = 0; round < RACE_ROUNDS; round++) {
		ASSERT_EQ(1, write(go[1], "g", 1));
		db_asleep(_metadata, self, 1, false);
		ASSERT_EQ(0, kill(pid, SIGUSR1));
		ret = sp_db_wake(self->fd, 0, 1, SHMPOOL_BITSET_ANY);
		race_check(_metadata, self, round, ret, -EINTR, &woken);
	}
	TH_LOG("%u of %d rounds woken by WAKE, the rest by the signal", woken,
	       RACE_ROUNDS);
	ASSERT_EQ(1, write(go[1], "s", 1));
	EXPECT_EQ(0, db_reap(self, pid));
	close(go[0]);
	close(go[1]);
}

TEST_F(db, wake_count_matches_waiter_under_deadline_race)
{
	unsigned int round, woken = 0;
	int go[2], ret;
	pid_t pid;
	char c;

	ASSERT_EQ(0, pipe2(go, O_CLOEXEC));
	pid = db_fork(_metadata, self);
	if (pid == 0) {
		for (round = 0; read(go[0], &c, 1) == 1 && c == 'g'; round++) {
			/* Deadlines from 0 to ~2 ms ahead, around when WAKE comes. */
			uint64_t d = sp_now_ns(CLOCK_MONOTONIC) + (round % 8) * 250000ULL;

			db_report(self->rep[1], round,
				  sp_db_wait(self->fd, 0, 0, SHMPOOL_BITSET_ANY,
					     SHMPOOL_WAIT_DEADLINE, d), 0);
		}
		_exit(0);
	}
	for (round = 0; round < RACE_ROUNDS; round++) {
		ASSERT_EQ(1, write(go[1], "g", 1));
		usleep((round * 7) % 2000);
		ret = sp_db_wake(self->fd, 0, 1, SHMPOOL_BITSET_ANY);
		race_check(_metadata, self, round, ret, -ETIMEDOUT, &woken);
	}
	TH_LOG("%u of %d rounds woken by WAKE, the rest timed out", woken, RACE_ROUNDS);
	ASSERT_EQ(1, write(go[1], "s", 1));
	EXPECT_EQ(0, db_reap(self, pid));
	close(go[0]);
	close(go[1]);
}

/* ---- WAITV across pools ---- */

TEST_F(db, waitv_two_pools_returns_woken_index)
{
	int b = sp_anon_pool(self->bytes);
	struct report r;
	int round;

	ASSERT_GE(b, 0);
	for (round = 0; round < 2; round++) {
		pid_t pid = db_fork(_metadata, self);

		if (pid == 0) {
			struct shmpool_waitv_entry e[2];

			/* Same offset in two pools: only the woken pool counts. */
			sp_db_entry(&e[0], -1, 8, 0, SHMPOOL_BITSET_ANY);
			sp_db_entry(&e[1], b, 8, 0, SHMPOOL_BITSET_ANY);
			db_report(self->rep[1], round,
				  sp_db_waitv(self->fd, e, 2, 0, 0), 0);
			_exit(0);
		}
		db_asleep(_metadata, self, 1, true);
		/* Round 0 wakes pool B (entry 1), round 1 the fixture pool (entry 0). */
		EXPECT_EQ(1, sp_db_wake(round == 0 ? b : self->fd, 8, SHMPOOL_WAKE_ALL,
					SHMPOOL_BITSET_ANY));
		ASSERT_TRUE(db_read_report(self, REPORT_MS, &r));
		EXPECT_EQ(round, r.idx);
		EXPECT_EQ(round == 0 ? 1 : 0, r.ret);
		EXPECT_EQ(0, db_reap(self, pid));
		/* The other entry's waiter went with it. */
		if (self->waiters0 >= 0)
			EXPECT_EQ(0, sp_await_waiters(self->waiters0, false, AWAIT_MS));
		EXPECT_EQ(0, sp_db_wake(round == 0 ? self->fd : b, 8, SHMPOOL_WAKE_ALL,
					SHMPOOL_BITSET_ANY));
	}
	close(b);
}

TEST_F(db, waitv_any_word_differs_returns_eagain)
{
	int b = sp_anon_pool(self->bytes);
	struct shmpool_waitv_entry e[3];
	uint32_t *bm;

	ASSERT_GE(b, 0);
	bm = sp_map(b, self->page, PROT_READ | PROT_WRITE, 0);
	ASSERT_NE(MAP_FAILED, bm);
	db_store(&bm[3], 5);
	sp_db_entry(&e[0], -1, 12, 0, SHMPOOL_BITSET_ANY);
	sp_db_entry(&e[1], b, 12, 5, SHMPOOL_BITSET_ANY);
	sp_db_entry(&e[2], -1, 16, 0, SHMPOOL_BITSET_ANY);
	EXPECT_EQ(-ETIMEDOUT, sp_db_waitv(self->fd, e, 3, SHMPOOL_WAIT_DEADLINE, 0));
	/* No deadline from here on: each must fail before sleeping. */
	e[0].expected = 1;
	EXPECT_EQ(-EAGAIN, sp_db_waitv(self->fd, e, 3, 0, 0));
	e[0].expected = 0;
	e[1].expected = 0;
	EXPECT_EQ(-EAGAIN, sp_db_waitv(self->fd, e, 3, 0, 0));
	e[1].expected = 5;
	db_store(&self->map[4], 1);
	EXPECT_EQ(-EAGAIN, sp_db_waitv(self->fd, e, 3, 0, 0));
	munmap(bm, self->page);
	close(b);
}

TEST_F(db, waitv_same_word_twice)
{
	struct shmpool_waitv_entry e[2];
	struct report r;
	pid_t pid = db_fork(_metadata, self);

	if (pid == 0) {
		sp_db_entry(&e[0], -1, 0, 0, 1);
		sp_db_entry(&e[1], -1, 0, 0, 2);
		db_report(self->rep[1], 0, sp_db_waitv(self->fd, e, 2, 0, 0), 0);
		_exit(0);
	}
	db_asleep(_metadata, self, 1, true);
	/* Bitset 2 matches only the second entry. */
	EXPECT_EQ(1, sp_db_wake(self->fd, 0, SHMPOOL_WAKE_ALL, 2));
	ASSERT_TRUE(db_read_report(self, REPORT_MS, &r));
	EXPECT_EQ(1, r.ret);
	EXPECT_EQ(0, db_reap(self, pid));
	EXPECT_EQ(0, sp_db_wake(self->fd, 0, SHMPOOL_WAKE_ALL, SHMPOOL_BITSET_ANY));
}

/* ---- lifetime: sleepers hold their pool ---- */

TEST_F(db, sleeper_survives_unlink_close_and_munmap)
{
	long long pages0 = sp_counter("pages");
	int p = sp_open_dev(O_RDWR), w = sp_open_dev(O_RDWR);
	struct report r;
	uint32_t *m;
	pid_t pid;

	ASSERT_GE(pages0, 0);
	ASSERT_GE(p, 0);
	ASSERT_GE(w, 0);
	ASSERT_EQ(0, sp_create(p, self->name, DB_PAGES * self->page, 0, 0600, NULL));
	ASSERT_EQ(0, sp_open_name(w, self->name, 0, NULL));
	m = sp_map(p, DB_PAGES * self->page, PROT_READ | PROT_WRITE, 0);
	ASSERT_NE(MAP_FAILED, m);
	m[0] = 0;
	pid = db_fork(_metadata, self);
	if (pid == 0) {
		int s = sp_open_dev(O_RDWR), ret;
		uint32_t *sm;

		/* Only its own fd: no inherited fd or mapping of the pool. */
		CHILD_CHECK(s >= 0);
		CHILD_CHECK(sp_open_name(s, self->name, 0, NULL) == 0);
		close(p);
		close(w);
		munmap(m, DB_PAGES * self->page);
		munmap(self->map, self->bytes);
		ret = sp_db_wait(s, self->page, 0, SHMPOOL_BITSET_ANY, 0, 0);
		/* After the wake-up, the pool still holds what the waker wrote. */
		sm = sp_map(s, DB_PAGES * self->page, PROT_READ, 0);
		CHILD_CHECK(sm != MAP_FAILED);
		db_report(self->rep[1], 0, ret, sm[self->page / 4]);
		_exit(0);
	}
	db_asleep(_metadata, self, 1, false);
	EXPECT_EQ(pages0 + DB_PAGES, sp_counter("pages"));
	/* Unlink, unmap, close: everything but the waker's fd. */
	ASSERT_EQ(0, sp_unlink(self->unbound, self->name));
	munmap(m, DB_PAGES * self->page);
	close(p);
	db_expect_quiet(_metadata, self);
	if (self->waiters0 >= 0)
		EXPECT_EQ(self->waiters0 + 1, sp_counter("waiters"));
	EXPECT_EQ(pages0 + DB_PAGES, sp_counter("pages"));

	m = sp_map(w, self->page, PROT_READ | PROT_WRITE, self->page);
	ASSERT_NE(MAP_FAILED, m);
	db_store(&m[0], 42);
	munmap(m, self->page);
	EXPECT_EQ(1, sp_db_wake(w, self->page, 1, SHMPOOL_BITSET_ANY));
	close(w);
	ASSERT_TRUE(db_read_report(self, REPORT_MS, &r));
	EXPECT_EQ(0, r.ret);
	EXPECT_EQ(42U, r.val);
	EXPECT_EQ(0, db_reap(self, pid));
	EXPECT_EQ(0, sp_await_counter("pages", pages0, false, AWAIT_MS))
		TH_LOG("pages %lld, expected %lld", sp_counter("pages"), pages0);
}

struct alone_arg {
	int fd;			/* pool Y: the WAITV runs here, entry 1 */
	int xfd;		/* pool X: entry 0, closed while asleep */
	int rep;
};

static void *alone_sleeper(void *p)
{
	struct alone_arg *a = p;
	struct shmpool_waitv_entry e[2];

	sp_db_entry(&e[0], a->xfd, 0, 0, SHMPOOL_BITSET_ANY);
	sp_db_entry(&e[1], -1, 0, 0, SHMPOOL_BITSET_ANY);
	db_report(a->rep, 0, sp_db_waitv(a->fd, e, 2, 0, 0), 0);
	return NULL;
}

/*
 * Pool X's only holder is a WAITV sleeper whose own fd of X was closed (by
 * another thread) while it slept: its pages stay until that sleeper, woken
 * normally through pool Y, returns.
 */
TEST_F(db, waitv_sleeper_alone_holds_pool)
{
	long long pages0 = sp_counter("pages");
	int ctl[2], ack[2], x, y;
	struct report r;
	char c;
	pid_t pid;

	ASSERT_GE(pages0, 0);
	ASSERT_EQ(0, pipe2(ctl, O_CLOEXEC));
	ASSERT_EQ(0, pipe2(ack, O_CLOEXEC));
	x = sp_anon_pool(8 * self->page);
	ASSERT_GE(x, 0);
	y = sp_anon_pool(self->page);
	ASSERT_GE(y, 0);
	pid = db_fork(_metadata, self);
	if (pid == 0) {
		struct alone_arg a = { .fd = y, .xfd = x, .rep = self->rep[1] };
		pthread_t t;

		munmap(self->map, self->bytes);
		CHILD_CHECK(pthread_create(&t, NULL, alone_sleeper, &a) == 0);
		CHILD_CHECK(read(ctl[0], &c, 1) == 1);
		close(x);
		CHILD_CHECK(write(ack[1], "c", 1) == 1);
		pthread_join(t, NULL);
		_exit(0);
	}
	db_asleep(_metadata, self, 1, true);
	close(x);
	ASSERT_EQ(1, write(ctl[1], "x", 1));
	ASSERT_EQ(1, read(ack[0], &c, 1));
	ASSERT_EQ('c', c);
	/* X is held by the sleeping WAITV alone. */
	db_expect_quiet(_metadata, self);
	EXPECT_EQ(pages0 + 9, sp_counter("pages"));
	EXPECT_EQ(1, sp_db_wake(y, 0, 1, SHMPOOL_BITSET_ANY));
	ASSERT_TRUE(db_read_report(self, REPORT_MS, &r));
	EXPECT_EQ(1, r.ret);
	EXPECT_EQ(0, db_reap(self, pid));
	EXPECT_EQ(0, sp_await_counter("pages", pages0 + 1, false, AWAIT_MS))
		TH_LOG("pages %lld, expected %lld", sp_counter("pages"), pages0 + 1);
	close(y);
	EXPECT_EQ(0, sp_await_counter("pages", pages0, false, AWAIT_MS));
	close(ctl[0]);
	close(ctl[1]);
	close(ack[0]);
	close(ack[1]);
}

TEST_F(db, killed_sleeper_leaves_no_waiter)
{
	pid_t pid;

	db_need_waiters_counter(_metadata, self);
	pid = db_spawn_waiter(_metadata, self, self->fd, 0, 0, SHMPOOL_BITSET_ANY, 0);
	db_asleep(_metadata, self, 1, false);
	ASSERT_EQ(0, kill(pid, SIGKILL));
	EXPECT_EQ(128 + SIGKILL, db_reap(self, pid));
	EXPECT_EQ(0, sp_await_waiters(self->waiters0, false, AWAIT_MS))
		TH_LOG("waiters %lld after the sleeper died", sp_counter("waiters"));
	EXPECT_EQ(0, sp_db_wake(self->fd, 0, SHMPOOL_WAKE_ALL, SHMPOOL_BITSET_ANY));
}

TEST_F(db, killed_waitv_sleeper_leaves_no_waiter)
{
	int b = sp_anon_pool(self->page);
	pid_t pid;

	db_need_waiters_counter(_metadata, self);
	ASSERT_GE(b, 0);
	pid = db_fork(_metadata, self);
	if (pid == 0) {
		struct shmpool_waitv_entry e[3];

		sp_db_entry(&e[0], -1, 0, 0, SHMPOOL_BITSET_ANY);
		sp_db_entry(&e[1], b, 0, 0, SHMPOOL_BITSET_ANY);
		sp_db_entry(&e[2], -1, 4, 0, SHMPOOL_BITSET_ANY);
		sp_db_waitv(self->fd, e, 3, 0, 0);
		_exit(0);
	}
	db_asleep(_metadata, self, 1, true);
	ASSERT_EQ(0, kill(pid, SIGKILL));
	EXPECT_EQ(128 + SIGKILL, db_reap(self, pid));
	EXPECT_EQ(0, sp_await_waiters(self->waiters0, false, AWAIT_MS))
		TH_LOG("waiters %lld after the sleeper died", sp_counter("waiters"));
	EXPECT_EQ(0, sp_db_wake(self->fd, 0, SHMPOOL_WAKE_ALL, SHMPOOL_BITSET_ANY));
	EXPECT_EQ(0, sp_db_wake(b, 0, SHMPOOL_WAKE_ALL, SHMPOOL_BITSET_ANY));
	EXPECT_EQ(0, sp_db_wake(self->fd, 4, SHMPOOL_WAKE_ALL, SHMPOOL_BITSET_ANY));
	close(b);
}

/* ---- NOTIFY behaviour ---- */

/* The eventfd's count, 0 if it is not readable within @timeout_ms. */
static uint64_t efd_count(int efd, int timeout_ms)
{
	struct pollfd p = { .fd = efd, .events = POLLIN };
	uint64_t n = 0;

	if (poll(&p, 1, timeout_ms) != 1)
		return 0;
	if (read(efd, &n, sizeof(n)) != sizeof(n))
		return 0;
	return n;
}

TEST_F(db, notify_eventfd_readable_after_wake)
{
	int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);

	ASSERT_GE(efd, 0);
	ASSERT_EQ(0, sp_db_notify(self->fd, SHMPOOL_NOTIFY_ADD, 8, efd,
				  SHMPOOL_BITSET_ANY));
	EXPECT_EQ(0U, efd_count(efd, 0));
	/* Eventfds are not counted among the woken. */
	EXPECT_EQ(0, sp_db_wake(self->fd, 8, 1, SHMPOOL_BITSET_ANY));
	EXPECT_EQ(1U, efd_count(efd, 5000));
	EXPECT_EQ(0U, efd_count(efd, 0));
	close(efd);
}

TEST_F(db, notify_counts_one_per_wake)
{
	int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	struct report r;

	ASSERT_GE(efd, 0);
	ASSERT_EQ(0, sp_db_notify(self->fd, SHMPOOL_NOTIFY_ADD, 0, efd,
				  SHMPOOL_BITSET_ANY));
	EXPECT_EQ(0, sp_db_wake(self->fd, 0, 1, SHMPOOL_BITSET_ANY));
	EXPECT_EQ(0, sp_db_wake(self->fd, 0, SHMPOOL_WAKE_ALL, SHMPOOL_BITSET_ANY));
	/* nr 0 wakes nobody but still rings the eventfd. */
	EXPECT_EQ(0, sp_db_wake(self->fd, 0, 0, SHMPOOL_BITSET_ANY));
	EXPECT_EQ(3U, efd_count(efd, 5000));

	/* With a sleeper: WAKE counts the sleeper, the eventfd still gets one. */
	db_spawn_waiter(_metadata, self, self->fd, 0, 0, SHMPOOL_BITSET_ANY, 0);
	db_asleep(_metadata, self, 1, false);
	EXPECT_EQ(0, sp_db_wake(self->fd, 0, 0, SHMPOOL_BITSET_ANY));
	db_expect_quiet(_metadata, self);
	EXPECT_EQ(1, sp_db_wake(self->fd, 0, 5, SHMPOOL_BITSET_ANY));
	ASSERT_TRUE(db_read_report(self, REPORT_MS, &r));
	EXPECT_EQ(0, r.ret);
	EXPECT_EQ(2U, efd_count(efd, 5000));
	close(efd);
}

TEST_F(db, notify_offset_and_bitset_select)
{
	int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	int b = sp_anon_pool(self->page);

	ASSERT_GE(efd, 0);
	ASSERT_GE(b, 0);
	ASSERT_EQ(0, sp_db_notify(self->fd, SHMPOOL_NOTIFY_ADD, 4, efd, 1 | 2));
	EXPECT_EQ(0, sp_db_wake(self->fd, 0, 1, SHMPOOL_BITSET_ANY));
	EXPECT_EQ(0, sp_db_wake(self->fd, 8, 1, SHMPOOL_BITSET_ANY));
	EXPECT_EQ(0, sp_db_wake(self->fd, 4, 1, 4));
	EXPECT_EQ(0, sp_db_wake(b, 4, 1, SHMPOOL_BITSET_ANY));	/* other pool */
	EXPECT_EQ(0U, efd_count(efd, 0));
	EXPECT_EQ(0, sp_db_wake(self->fd, 4, 1, 2 | 4));
	EXPECT_EQ(1U, efd_count(efd, 5000));
	close(b);
	close(efd);
}

TEST_F(db, notify_wake_through_other_fd)
{
	int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	int p = sp_open_dev(O_RDWR), w = sp_open_dev(O_RDWR);

	ASSERT_GE(efd, 0);
	ASSERT_GE(p, 0);
	ASSERT_GE(w, 0);
	ASSERT_EQ(0, sp_create(p, self->name, self->page, 0, 0600, NULL));
	ASSERT_EQ(0, sp_open_name(w, self->name, 0, NULL));
	ASSERT_EQ(0, sp_db_notify(p, SHMPOOL_NOTIFY_ADD, 0, efd, SHMPOOL_BITSET_ANY));
	EXPECT_EQ(0, sp_db_wake(w, 0, 1, SHMPOOL_BITSET_ANY));
	EXPECT_EQ(1U, efd_count(efd, 5000));
	close(w);
	close(p);
	close(efd);
}

TEST_F(db, notify_del_stops_it)
{
	int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);

	ASSERT_GE(efd, 0);
	ASSERT_EQ(0, sp_db_notify(self->fd, SHMPOOL_NOTIFY_ADD, 0, efd,
				  SHMPOOL_BITSET_ANY));
	EXPECT_EQ(0, sp_db_wake(self->fd, 0, 1, SHMPOOL_BITSET_ANY));
	EXPECT_EQ(1U, efd_count(efd, 5000));
	ASSERT_EQ(0, sp_db_notify(self->fd, SHMPOOL_NOTIFY_DEL, 0, efd,
				  SHMPOOL_BITSET_ANY));
	EXPECT_EQ(0, sp_db_wake(self->fd, 0, 1, SHMPOOL_BITSET_ANY));
	EXPECT_EQ(0U, efd_count(efd, QUIET_MS));
	/* And it can be added again. */
	ASSERT_EQ(0, sp_db_notify(self->fd, SHMPOOL_NOTIFY_ADD, 0, efd,
				  SHMPOOL_BITSET_ANY));
	EXPECT_EQ(0, sp_db_wake(self->fd, 0, 1, SHMPOOL_BITSET_ANY));
	EXPECT_EQ(1U, efd_count(efd, 5000));
	close(efd);
}

/*
 * A binding belongs to the open file that added it, not to the fd number:
 * a dup() of that fd keeps it after the fd itself is closed, and DEL works
 * through the dup (as an epoll registration lives until the last fd of
 * its open file is closed).
 */
TEST_F(db, notify_binding_lives_while_a_dup_of_its_fd_is_open)
{
	int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	int reg = sp_anon_pool(self->page), copy;

	ASSERT_GE(efd, 0);
	ASSERT_GE(reg, 0);
	ASSERT_EQ(0, sp_db_notify(reg, SHMPOOL_NOTIFY_ADD, 0, efd,
				  SHMPOOL_BITSET_ANY));
	copy = dup(reg);
	ASSERT_GE(copy, 0);
	close(reg);
	EXPECT_EQ(0, sp_db_wake(copy, 0, 1, SHMPOOL_BITSET_ANY));
	EXPECT_EQ(1U, efd_count(efd, 5000));
	EXPECT_EQ(0, sp_db_notify(copy, SHMPOOL_NOTIFY_DEL, 0, efd,
				  SHMPOOL_BITSET_ANY));
	EXPECT_EQ(0, sp_db_wake(copy, 0, 1, SHMPOOL_BITSET_ANY));
	EXPECT_EQ(0U, efd_count(efd, QUIET_MS));
	close(copy);
	close(efd);
}

TEST_F(db, notify_close_of_registering_fd_drops_binding)
{
	long long pages0 = sp_counter("pages");
	int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	int reg = sp_open_dev(O_RDWR), w = sp_open_dev(O_RDWR), last, i;

	ASSERT_GE(efd, 0);
	ASSERT_GE(reg, 0);
	ASSERT_GE(w, 0);
	ASSERT_EQ(0, sp_create(reg, self->name, self->page, 0, 0600, NULL));
	ASSERT_EQ(0, sp_open_name(w, self->name, 0, NULL));
	for (i = 0; i < 4; i++)
		ASSERT_EQ(0, sp_db_notify(reg, SHMPOOL_NOTIFY_ADD, 4 * i, efd,
					  SHMPOOL_BITSET_ANY));
	EXPECT_EQ(0, sp_db_wake(w, 0, 1, SHMPOOL_BITSET_ANY));
	EXPECT_EQ(1U, efd_count(efd, 5000));
	/* The pool lives on through w; the bindings went with reg. */
	close(reg);
	for (i = 0; i < 4; i++)
		EXPECT_EQ(0, sp_db_wake(w, 4 * i, 1, SHMPOOL_BITSET_ANY));
	EXPECT_EQ(0U, efd_count(efd, QUIET_MS));
	close(w);
	EXPECT_EQ(0, sp_unlink(self->unbound, self->name));

	/* The last fd of a pool closed with bindings still on it. */
	last = sp_anon_pool(2 * self->page);
	ASSERT_GE(last, 0);
	for (i = 0; i < SHMPOOL_NOTIFY_MAX; i++)
		ASSERT_EQ(0, sp_db_notify(last, SHMPOOL_NOTIFY_ADD, 4 * i, efd,
					  SHMPOOL_BITSET_ANY));
	close(last);
	close(efd);
	if (pages0 >= 0)
		EXPECT_EQ(0, sp_await_counter("pages", pages0, false, AWAIT_MS));
}

TEST_F(db, notify_eventfd_closed_after_add)
{
	int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	int dupfd;

	ASSERT_GE(efd, 0);
	ASSERT_EQ(0, sp_db_notify(self->fd, SHMPOOL_NOTIFY_ADD, 0, efd,
				  SHMPOOL_BITSET_ANY));
	dupfd = dup(efd);
	ASSERT_GE(dupfd, 0);
	close(efd);
	/* The binding holds the eventfd's context, not the fd number. */
	EXPECT_EQ(0, sp_db_wake(self->fd, 0, 1, SHMPOOL_BITSET_ANY));
	EXPECT_EQ(1U, efd_count(dupfd, 5000));
	close(dupfd);
	/* Nobody holds the eventfd file any more: WAKE must not crash. */
	EXPECT_EQ(0, sp_db_wake(self->fd, 0, SHMPOOL_WAKE_ALL, SHMPOOL_BITSET_ANY));
}

/* ---- WAKE is one pass; WAIT compares before it queues (issue 12) ---- */

/* In a child: run @fn(@arg) in @n threads and wait for them all. */
static void db_run_threads(void *(*fn)(void *), void *arg, int n)
{
	pthread_t t[64];
	int i;

	CHILD_CHECK(n <= 64);
	for (i = 0; i < n; i++)
		CHILD_CHECK(pthread_create(&t[i], NULL, fn, arg) == 0);
	for (i = 0; i < n; i++)
		pthread_join(t[i], NULL);
}

#define REWAIT_THREADS	48
#define REWAIT_ROUNDS	20

struct rewait_arg {
	int fd;
	uint32_t *returns;	/* WAITs that returned, all threads */
	uint32_t *stop;
};

/* Sleep on the word again the moment a wake-up returns, until stopped. */
static void *rewait_thread(void *p)
{
	struct rewait_arg *a = p;

	while (!db_load(a->stop)) {
		sp_db_wait(a->fd, 0, 0, SHMPOOL_BITSET_ANY, 0, 0);
		__atomic_add_fetch(a->returns, 1, __ATOMIC_SEQ_CST);
	}
	return NULL;
}

/*
 * WAKE_ALL over N sleepers that re-WAIT at once wakes exactly N: one pass,
 * so a waiter that is back in the queue before WAKE is done is not woken
 * (and counted) twice, and the WAKE ends however fast they come back.
 */
TEST_F_TIMEOUT(db, wake_all_over_rewaiters_counts_each_once, 300)
{
	uint32_t *stop = &self->map[32], *returns = &self->map[34];
	unsigned int round;
	pid_t pid;
	int ret;

	db_need_waiters_counter(_metadata, self);
	pid = db_fork(_metadata, self);
	if (pid == 0) {
		struct rewait_arg a = { .fd = self->fd, .returns = returns, .stop = stop };

		db_run_threads(rewait_thread, &a, REWAIT_THREADS);
		_exit(0);
	}
	for (round = 0; round < REWAIT_ROUNDS; round++) {
		uint64_t end = sp_now_ns(CLOCK_MONOTONIC) + AWAIT_MS * 1000000ULL;

		/*
		 * Every thread back from the last round's WAIT (a woken waiter
		 * counts in "waiters" until it has run), then all of them
		 * asleep again.
		 */
		while (db_load(returns) < round * REWAIT_THREADS) {
			ASSERT_LT(sp_now_ns(CLOCK_MONOTONIC), end);
			usleep(1000);
		}
		ASSERT_EQ(0, sp_await_waiters(self->waiters0 + REWAIT_THREADS, false,
					      AWAIT_MS))
			TH_LOG("round %u: waiters %lld", round, sp_counter("waiters"));
		ret = sp_db_wake(self->fd, 0, SHMPOOL_WAKE_ALL, SHMPOOL_BITSET_ANY);
		ASSERT_EQ(REWAIT_THREADS, ret) TH_LOG("round %u", round);
	}
	db_store(stop, 1);
	while (sp_db_wake(self->fd, 0, SHMPOOL_WAKE_ALL, SHMPOOL_BITSET_ANY) > 0 ||
	       sp_counter("waiters") > self->waiters0)
		usleep(1000);
	EXPECT_EQ(0, db_reap(self, pid));
}

#define HANDOFF_SPINNERS	3
#define HANDOFF_ROUNDS		300

struct handoff_arg {
	int fd;
	uint32_t *stop;
	uint32_t *bad;		/* WAITs that returned anything but EAGAIN */
};

/* A WAIT whose expected value never matches: must be EAGAIN, every time. */
static void *handoff_spinner(void *p)
{
	struct handoff_arg *a = p;

	while (!db_load(a->stop))
		if (sp_db_wait(a->fd, 0, 1, SHMPOOL_BITSET_ANY, 0, 0) != -EAGAIN)
			__atomic_add_fetch(a->bad, 1, __ATOMIC_SEQ_CST);
	return NULL;
}

/*
 * The lost hand-off: WAITs whose word never matches must never be queued,
 * so a WAKE cannot be spent on them. Each round a real sleeper WAITs on the
 * same word; the parent WAKEs (nr 1) until one returns 1: that WAKE must
 * have woken the sleeper, which then reports. The spinners' WAITs all
 * return EAGAIN, and no WAKE returns more than the one real sleeper.
 */
TEST_F_TIMEOUT(db, wake_never_spent_on_mismatching_wait, 300)
{
	uint32_t *stop = &self->map[32], *bad = &self->map[33];
	unsigned int round, spent = 0;
	int go[2], ret;
	struct report r;
	pid_t spin, sleeper;
	char c;

	ASSERT_EQ(0, pipe2(go, O_CLOEXEC));
	spin = db_fork(_metadata, self);
	if (spin == 0) {
		struct handoff_arg a = { .fd = self->fd, .stop = stop, .bad = bad };

		db_run_threads(handoff_spinner, &a, HANDOFF_SPINNERS);
		_exit(0);
	}
	sleeper = db_fork(_metadata, self);
	if (sleeper == 0) {
		for (round = 0; read(go[0], &c, 1) == 1 && c == 'g'; round++)
			db_report(self->rep[1], round,
				  sp_db_wait(self->fd, 0, 0, SHMPOOL_BITSET_ANY, 0, 0), 0);
		_exit(0);
	}
	for (round = 0; round < HANDOFF_ROUNDS; round++) {
		uint64_t end = sp_now_ns(CLOCK_MONOTONIC) + AWAIT_MS * 1000000ULL;

		ASSERT_EQ(1, write(go[1], "g", 1));
		while ((ret = sp_db_wake(self->fd, 0, 1, SHMPOOL_BITSET_ANY)) == 0) {
			ASSERT_LT(sp_now_ns(CLOCK_MONOTONIC), end)
				TH_LOG("round %u: the sleeper never slept", round);
			spent++;
		}
		ASSERT_EQ(1, ret);
		/* WAKE counted a waiter: it must be the sleeper, and it returns 0. */
		ASSERT_TRUE(db_read_report(self, REPORT_MS, &r))
			TH_LOG("round %u: WAKE(1) returned 1 but the sleeper still sleeps",
			       round);
		ASSERT_EQ((int)round, r.idx);
		ASSERT_EQ(0, r.ret);
	}
	ASSERT_EQ(1, write(go[1], "s", 1));
	db_store(stop, 1);
	EXPECT_EQ(0, db_reap(self, sleeper));
	EXPECT_EQ(0, db_reap(self, spin));
	EXPECT_EQ(0U, db_load(bad)) TH_LOG("mismatching WAITs returned other than EAGAIN");
	TH_LOG("%u empty WAKEs while the sleeper got ready", spent);
	close(go[0]);
	close(go[1]);
}

/* No WAKE returns more than 0 while only mismatching WAITs run. */
TEST_F_TIMEOUT(db, wake_finds_no_mismatching_waiter, 300)
{
	uint32_t *stop = &self->map[32], *bad = &self->map[33];
	unsigned int i, positive = 0;
	pid_t spin;
	int ret;

	spin = db_fork(_metadata, self);
	if (spin == 0) {
		struct handoff_arg a = { .fd = self->fd, .stop = stop, .bad = bad };

		db_run_threads(handoff_spinner, &a, HANDOFF_SPINNERS);
		_exit(0);
	}
	for (i = 0; i < 20000; i++) {
		ret = sp_db_wake(self->fd, 0, SHMPOOL_WAKE_ALL, SHMPOOL_BITSET_ANY);
		ASSERT_GE(ret, 0);
		if (ret > 0)
			positive++;
	}
	db_store(stop, 1);
	EXPECT_EQ(0, db_reap(self, spin));
	EXPECT_EQ(0U, positive) TH_LOG("%u WAKEs found a waiter that never slept", positive);
	EXPECT_EQ(0U, db_load(bad)) TH_LOG("%u mismatching WAITs returned other than EAGAIN",
					   db_load(bad));
}

/* ---- time namespaces ---- */

#define TIMENS_OFFSET_S	100000

/*
 * An absolute CLOCK_MONOTONIC deadline from a process in a time namespace
 * is on that namespace's clock: 200 ms ahead there is 200 ms ahead, not
 * 100000 s (the offset) later on the host's. alarm() is only a hang guard.
 */
TEST_F_TIMEOUT(db, deadline_in_time_namespace, 120)
{
	char offs[64];
	int fd, len, st;
	pid_t pid;

	pid = db_fork(_metadata, self);
	if (pid == 0) {
		pid_t inner;

		if (unshare(CLONE_NEWTIME))
			_exit(errno == EINVAL || errno == EPERM ? 77 : 1);
		fd = open("/proc/self/timens_offsets", O_WRONLY | O_CLOEXEC);
		CHILD_CHECK(fd >= 0);
		len = snprintf(offs, sizeof(offs), "monotonic %d 0", TIMENS_OFFSET_S);
		CHILD_CHECK(write(fd, offs, len) == len);
		close(fd);
		/* The namespace applies to children. */
		inner = fork();
		CHILD_CHECK(inner >= 0);
		if (inner == 0) {
			uint64_t now, d;
			struct shmpool_waitv_entry e;

			alarm(30);
			now = sp_now_ns(CLOCK_MONOTONIC);
			d = now + 200000000ULL;
			CHILD_CHECK(sp_db_wait(self->fd, 0, 0, SHMPOOL_BITSET_ANY,
					       SHMPOOL_WAIT_DEADLINE, d) == -ETIMEDOUT);
			CHILD_CHECK(sp_now_ns(CLOCK_MONOTONIC) >= d);
			d = sp_now_ns(CLOCK_MONOTONIC) + 200000000ULL;
			sp_db_entry(&e, -1, 0, 0, SHMPOOL_BITSET_ANY);
			CHILD_CHECK(sp_db_waitv(self->fd, &e, 1, SHMPOOL_WAIT_DEADLINE, d) ==
				    -ETIMEDOUT);
			/* A deadline before the namespace's offset has long passed. */
			CHILD_CHECK(sp_db_wait(self->fd, 0, 0, SHMPOOL_BITSET_ANY,
					       SHMPOOL_WAIT_DEADLINE, 1000000000ULL) == -ETIMEDOUT);
			_exit(0);
		}
		_exit(sp_wait(inner));
	}
	st = db_reap(self, pid);
	if (st == 77)
		SKIP(return, "no time namespaces");
	EXPECT_EQ(0, st) TH_LOG("child status %d (%d: killed by the alarm)", st,
				 128 + SIGALRM);
}

/* ---- NOTIFY DEL after the eventfd was closed ---- */

TEST_F(db, notify_del_after_eventfd_closed)
{
	int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	int efd2 = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	int keep, closed;

	ASSERT_GE(efd, 0);
	ASSERT_GE(efd2, 0);
	keep = dup(efd);
	ASSERT_GE(keep, 0);
	ASSERT_EQ(0, sp_db_notify(self->fd, SHMPOOL_NOTIFY_ADD, 0, efd, SHMPOOL_BITSET_ANY));
	ASSERT_EQ(0, sp_db_notify(self->fd, SHMPOOL_NOTIFY_ADD, 4, efd, SHMPOOL_BITSET_ANY));
	ASSERT_EQ(0, sp_db_notify(self->fd, SHMPOOL_NOTIFY_ADD, 0, efd2, SHMPOOL_BITSET_ANY));
	closed = efd;
	close(efd);
	/* By its old number: that fd is not open any more. */
	EXPECT_EQ(-EBADF, sp_db_notify(self->fd, SHMPOOL_NOTIFY_DEL, 0, closed,
				       SHMPOOL_BITSET_ANY));
	/* eventfd -1: every binding of offset 0 on this fd, open or closed. */
	EXPECT_EQ(0, sp_db_notify(self->fd, SHMPOOL_NOTIFY_DEL, 0, -1, SHMPOOL_BITSET_ANY));
	EXPECT_EQ(-ENOENT, sp_db_notify(self->fd, SHMPOOL_NOTIFY_DEL, 0, -1,
					SHMPOOL_BITSET_ANY));
	EXPECT_EQ(0, sp_db_wake(self->fd, 0, 1, SHMPOOL_BITSET_ANY));
	EXPECT_EQ(0U, efd_count(keep, QUIET_MS));
	EXPECT_EQ(0U, efd_count(efd2, 0));
	/* Offset 4 is still bound, through the closed fd's eventfd. */
	EXPECT_EQ(0, sp_db_wake(self->fd, 4, 1, SHMPOOL_BITSET_ANY));
	EXPECT_EQ(1U, efd_count(keep, 5000));
	EXPECT_EQ(0, sp_db_notify(self->fd, SHMPOOL_NOTIFY_DEL, 4, -1, SHMPOOL_BITSET_ANY));
	/* Both gone: ADD of the same pairs works again. */
	EXPECT_EQ(0, sp_db_notify(self->fd, SHMPOOL_NOTIFY_ADD, 0, efd2, SHMPOOL_BITSET_ANY));
	EXPECT_EQ(0, sp_db_notify(self->fd, SHMPOOL_NOTIFY_ADD, 4, keep, SHMPOOL_BITSET_ANY));
	close(keep);
	close(efd2);
}

/* ---- many bindings on one word: each rings once per WAKE ---- */

#define MANY_EFDS	40	/* more than a WAKE collects without allocating */

TEST_F(db, notify_many_eventfds_on_one_word)
{
	int efd[MANY_EFDS], i, round;

	for (i = 0; i < MANY_EFDS; i++) {
		efd[i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		ASSERT_GE(efd[i], 0);
		ASSERT_EQ(0, sp_db_notify(self->fd, SHMPOOL_NOTIFY_ADD, 8, efd[i],
					  SHMPOOL_BITSET_ANY));
	}
	for (round = 0; round < 3; round++)
		EXPECT_EQ(0, sp_db_wake(self->fd, 8, SHMPOOL_WAKE_ALL, SHMPOOL_BITSET_ANY));
	for (i = 0; i < MANY_EFDS; i++) {
		uint64_t n = efd_count(efd[i], 5000);

		EXPECT_EQ(3U, n) TH_LOG("eventfd %d counted %llu", i, (unsigned long long)n);
	}
	/* Half of them removed by DEL; the rest with -1 once their fds are closed. */
	for (i = 0; i < MANY_EFDS / 2; i++)
		EXPECT_EQ(0, sp_db_notify(self->fd, SHMPOOL_NOTIFY_DEL, 8, efd[i],
					  SHMPOOL_BITSET_ANY));
	EXPECT_EQ(0, sp_db_wake(self->fd, 8, 1, SHMPOOL_BITSET_ANY));
	for (i = 0; i < MANY_EFDS; i++) {
		uint64_t n = efd_count(efd[i], i < MANY_EFDS / 2 ? 0 : 5000);

		EXPECT_EQ(i < MANY_EFDS / 2 ? 0U : 1U, n) TH_LOG("eventfd %d", i);
	}
	for (i = 0; i < MANY_EFDS; i++)
		close(efd[i]);
	EXPECT_EQ(0, sp_db_notify(self->fd, SHMPOOL_NOTIFY_DEL, 8, -1, SHMPOOL_BITSET_ANY));
	EXPECT_EQ(-ENOENT, sp_db_notify(self->fd, SHMPOOL_NOTIFY_DEL, 8, -1,
					SHMPOOL_BITSET_ANY));
}

/* ---- WAITV woken through two words at once ---- */

#define BOTH_BUDGET_NS	3000000000ULL
#define BOTH_MAX_ROUNDS	20000U

/*
 * One WAITV sleeper on words A and B, two wakers hammering WAKE(A, 1) and
 * WAKE(B, 1): often both entries are taken by the two wakers at once, and
 * the sleeper must wait for the slower one to be done with its entry before
 * it returns (its waiters live on its stack: the debug lane's KASAN would
 * see a late touch). Every WAKE that counted an entry had a WAITV behind
 * it: WAITV returns <= WAKEs counted <= 2 x WAITV returns.
 */
TEST_F_TIMEOUT(db, waitv_woken_through_both_words_at_once, 120)
{
	uint32_t *stop = &self->map[32], *rets = &self->map[33], *bad = &self->map[34];
	uint32_t *woke = &self->map[40];	/* [0] by waker A, [1] by waker B */
	uint64_t t0 = sp_now_ns(CLOCK_MONOTONIC);
	pid_t sleeper, waker[2];
	int i, status, ret;
	uint32_t n;

	sleeper = db_fork(_metadata, self);
	if (sleeper == 0) {
		struct shmpool_waitv_entry e[2];

		sp_db_entry(&e[0], -1, 0, 0, SHMPOOL_BITSET_ANY);
		sp_db_entry(&e[1], -1, 4, 0, SHMPOOL_BITSET_ANY);
		while (!db_load(stop)) {
			ret = sp_db_waitv(self->fd, e, 2, 0, 0);
			if (ret != 0 && ret != 1)
				__atomic_add_fetch(bad, 1, __ATOMIC_SEQ_CST);
			__atomic_add_fetch(rets, 1, __ATOMIC_SEQ_CST);
		}
		_exit(0);
	}
	for (i = 0; i < 2; i++) {
		waker[i] = db_fork(_metadata, self);
		if (waker[i] == 0) {
			while (!db_load(stop)) {
				ret = sp_db_wake(self->fd, 4 * i, 1, SHMPOOL_BITSET_ANY);
				CHILD_CHECK(ret == 0 || ret == 1);
				__atomic_add_fetch(&woke[i], ret, __ATOMIC_SEQ_CST);
			}
			_exit(0);
		}
	}
	while (db_load(rets) < BOTH_MAX_ROUNDS &&
	       sp_now_ns(CLOCK_MONOTONIC) - t0 < BOTH_BUDGET_NS)
		usleep(10000);
	db_store(stop, 1);
	for (i = 0; i < 2; i++)
		EXPECT_EQ(0, db_reap(self, waker[i]));
	/* The sleeper may be asleep once more: wake it until it is gone. */
	while (waitpid(sleeper, &status, WNOHANG) == 0) {
		for (i = 0; i < 2; i++) {
			ret = sp_db_wake(self->fd, 4 * i, 1, SHMPOOL_BITSET_ANY);
			ASSERT_GE(ret, 0);
			__atomic_add_fetch(&woke[i], ret, __ATOMIC_SEQ_CST);
		}
		usleep(1000);
	}
	for (i = 0; i < self->nkids; i++)
		if (self->kids[i] == sleeper)
			self->kids[i] = self->kids[--self->nkids];
	ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	n = db_load(&woke[0]) + db_load(&woke[1]);
	TH_LOG("%u WAITV returns, %u entries woken (%u via A, %u via B)",
	       db_load(rets), n, db_load(&woke[0]), db_load(&woke[1]));
	EXPECT_EQ(0U, db_load(bad));
	EXPECT_LE(db_load(rets), n);
	EXPECT_LE(n, 2 * db_load(rets));
	if (self->waiters0 >= 0)
		EXPECT_EQ(0, sp_await_waiters(self->waiters0, false, AWAIT_MS));
}

/* ---- per-user limits (module parameters) ---- */

#define SP_PARAMS	"/sys/module/shmpool/parameters/"

/* A module parameter's value, or -1. */
static long long db_param(const char *name)
{
	char path[128];

	snprintf(path, sizeof(path), SP_PARAMS "%s", name);
	return sp_read_number(path);
}

/* Write @val to a module parameter: 0 or -errno. */
static int db_set_param(const char *name, const char *val)
{
	char path[128];

	snprintf(path, sizeof(path), SP_PARAMS "%s", name);
	return sp_write_string(path, val);
}

FIXTURE(dblimit) {
	int fd;
	long page;
	uint32_t *map;
	long long waiters0, max_waiters, max_notify;
	pid_t kids[4];
	int nkids;
};

FIXTURE_SETUP(dblimit)
{
	self->fd = -1;
	self->map = MAP_FAILED;
	self->max_waiters = db_param("max_waiters_per_user");
	self->max_notify = db_param("max_notify_per_user");
	self->page = sp_page_size();
	self->fd = sp_anon_pool(self->page);
	if (self->fd == -ENOENT)
		SP_SKIP_SETUP("no " SP_DEV);
	ASSERT_GE(self->fd, 0);
	self->map = sp_map(self->fd, self->page, PROT_READ | PROT_WRITE, 0);
	ASSERT_NE(MAP_FAILED, self->map);
	self->waiters0 = sp_counter("waiters");
	/* The module has the limits (the old one does not: that fails). */
	ASSERT_GT(self->max_waiters, 0);
	ASSERT_GT(self->max_notify, 0);
}

FIXTURE_TEARDOWN(dblimit)
{
	char buf[32];
	int i;

	for (i = 0; i < self->nkids; i++) {
		kill(self->kids[i], SIGKILL);
		waitpid(self->kids[i], NULL, 0);
	}
	if (self->max_waiters > 0) {
		snprintf(buf, sizeof(buf), "%lld", self->max_waiters);
		db_set_param("max_waiters_per_user", buf);
	}
	if (self->max_notify > 0) {
		snprintf(buf, sizeof(buf), "%lld", self->max_notify);
		db_set_param("max_notify_per_user", buf);
	}
	if (self->map != MAP_FAILED)
		munmap(self->map, self->page);
	if (self->fd >= 0)
		close(self->fd);
}

TEST_F(dblimit, limits_refuse_zero_and_garbage)
{
	const char *names[] = { "max_waiters_per_user", "max_notify_per_user" };
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(names); i++) {
		EXPECT_EQ(-EINVAL, db_set_param(names[i], "0")) TH_LOG("%s", names[i]);
		EXPECT_EQ(-EINVAL, db_set_param(names[i], "-1")) TH_LOG("%s", names[i]);
		EXPECT_EQ(-EINVAL, db_set_param(names[i], "4294967296")) TH_LOG("%s", names[i]);
		EXPECT_EQ(-EINVAL, db_set_param(names[i], "2147483648")) TH_LOG("%s", names[i]);
		EXPECT_EQ(-EINVAL, db_set_param(names[i], "x")) TH_LOG("%s", names[i]);
	}
	EXPECT_EQ(self->max_waiters, db_param("max_waiters_per_user"));
	EXPECT_EQ(self->max_notify, db_param("max_notify_per_user"));
}

/*
 * Bring the caller's user to max_waiters_per_user: the limit @n, and @n
 * sleepers on word 0.
 */
static void dblimit_full(struct __test_metadata *_metadata,
			 FIXTURE_DATA(dblimit) *self, int n)
{
	char buf[16];
	int i;

	ASSERT_GE(self->waiters0, 0);
	snprintf(buf, sizeof(buf), "%d", n);
	ASSERT_EQ(0, db_set_param("max_waiters_per_user", buf));
	for (i = 0; i < n; i++) {
		pid_t pid = fork();

		ASSERT_GE(pid, 0);
		if (pid == 0) {
			sp_child_init();
			sp_db_wait(self->fd, 0, 0, SHMPOOL_BITSET_ANY, 0, 0);
			_exit(0);
		}
		self->kids[self->nkids++] = pid;
	}
	ASSERT_EQ(0, sp_await_waiters(self->waiters0 + n, false, AWAIT_MS));
}

/* Past max_waiters_per_user sleeping waiters, WAIT and WAITV fail ENOSPC. */
TEST_F(dblimit, waiters_per_user_limit)
{
	struct shmpool_waitv_entry e[2];

	dblimit_full(_metadata, self, 3);
	/* A fourth that would sleep: refused before it sleeps. */
	EXPECT_EQ(-ENOSPC, sp_db_wait(self->fd, 0, 0, SHMPOOL_BITSET_ANY,
				      SHMPOOL_WAIT_DEADLINE, 0));
	sp_db_entry(&e[0], -1, 0, 0, SHMPOOL_BITSET_ANY);
	EXPECT_EQ(-ENOSPC, sp_db_waitv(self->fd, e, 1, SHMPOOL_WAIT_DEADLINE, 0));
	/* One sleeper gone: room for one WAIT, but not for a 2-entry WAITV. */
	EXPECT_EQ(1, sp_db_wake(self->fd, 0, 1, SHMPOOL_BITSET_ANY));
	ASSERT_EQ(0, sp_await_waiters(self->waiters0 + 2, false, AWAIT_MS));
	EXPECT_EQ(-ETIMEDOUT, sp_db_wait(self->fd, 0, 0, SHMPOOL_BITSET_ANY,
					 SHMPOOL_WAIT_DEADLINE, 0));
	sp_db_entry(&e[1], -1, 4, 0, SHMPOOL_BITSET_ANY);
	EXPECT_EQ(-ENOSPC, sp_db_waitv(self->fd, e, 2, SHMPOOL_WAIT_DEADLINE, 0));
	EXPECT_EQ(-ETIMEDOUT, sp_db_waitv(self->fd, e, 1, SHMPOOL_WAIT_DEADLINE, 0));
	EXPECT_EQ(2, sp_db_wake(self->fd, 0, SHMPOOL_WAKE_ALL, SHMPOOL_BITSET_ANY));
	ASSERT_EQ(0, sp_await_waiters(self->waiters0, false, AWAIT_MS));
	EXPECT_EQ(-ETIMEDOUT, sp_db_waitv(self->fd, e, 2, SHMPOOL_WAIT_DEADLINE, 0));
}

/* At the limit, a WAIT that would not sleep (the word differs): EAGAIN. */
TEST_F(dblimit, full_wait_on_differing_word_returns_eagain)
{
	dblimit_full(_metadata, self, 1);
	EXPECT_EQ(-EAGAIN, sp_db_wait(self->fd, 4, 1, SHMPOOL_BITSET_ANY, 0, 0));
	EXPECT_EQ(-ENOSPC, sp_db_wait(self->fd, 4, 0, SHMPOOL_BITSET_ANY, 0, 0));
}

/* At the limit, a WAITV whose second word differs: EAGAIN. */
TEST_F(dblimit, full_waitv_on_differing_word_returns_eagain)
{
	struct shmpool_waitv_entry e[2];

	dblimit_full(_metadata, self, 1);
	sp_db_entry(&e[0], -1, 4, 0, SHMPOOL_BITSET_ANY);
	sp_db_entry(&e[1], -1, 8, 1, SHMPOOL_BITSET_ANY);
	EXPECT_EQ(-EAGAIN, sp_db_waitv(self->fd, e, 2, 0, 0));
	e[1].expected = 0;
	EXPECT_EQ(-ENOSPC, sp_db_waitv(self->fd, e, 2, 0, 0));
}

/* Past max_notify_per_user bindings (over all fds), ADD fails ENOSPC. */
TEST_F(dblimit, notify_per_user_limit)
{
	int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	int other = sp_anon_pool(self->page);
	int i;

	ASSERT_GE(efd, 0);
	ASSERT_GE(other, 0);
	ASSERT_EQ(0, db_set_param("max_notify_per_user", "3"));
	for (i = 0; i < 2; i++)
		ASSERT_EQ(0, sp_db_notify(self->fd, SHMPOOL_NOTIFY_ADD, 4 * i, efd,
					  SHMPOOL_BITSET_ANY));
	ASSERT_EQ(0, sp_db_notify(other, SHMPOOL_NOTIFY_ADD, 0, efd, SHMPOOL_BITSET_ANY));
	EXPECT_EQ(-ENOSPC, sp_db_notify(other, SHMPOOL_NOTIFY_ADD, 4, efd,
					SHMPOOL_BITSET_ANY));
	EXPECT_EQ(-ENOSPC, sp_db_notify(self->fd, SHMPOOL_NOTIFY_ADD, 8, efd,
					SHMPOOL_BITSET_ANY));
	/* The bindings that exist still ring. */
	EXPECT_EQ(0, sp_db_wake(self->fd, 4, 1, SHMPOOL_BITSET_ANY));
	EXPECT_EQ(1U, efd_count(efd, 5000));
	/* A DEL, or closing a file with bindings, gives room back. */
	EXPECT_EQ(0, sp_db_notify(self->fd, SHMPOOL_NOTIFY_DEL, 0, efd, SHMPOOL_BITSET_ANY));
	EXPECT_EQ(0, sp_db_notify(self->fd, SHMPOOL_NOTIFY_ADD, 8, efd, SHMPOOL_BITSET_ANY));
	EXPECT_EQ(-ENOSPC, sp_db_notify(self->fd, SHMPOOL_NOTIFY_ADD, 12, efd,
					SHMPOOL_BITSET_ANY));
	close(other);
	EXPECT_EQ(0, sp_db_notify(self->fd, SHMPOOL_NOTIFY_ADD, 12, efd, SHMPOOL_BITSET_ANY));
	close(efd);
}

TEST_HARNESS_MAIN
