/* shmpool_test_util.h: small helpers shared by the shmpool selftests (raw UAPI, no library). */
/* SPDX-License-Identifier: GPL-2.0 */
#ifndef SHMPOOL_TEST_UTIL_H
#define SHMPOOL_TEST_UTIL_H

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/capability.h>
#include <uapi/linux/shmpool.h>

#include "lane.h"

/* The 6.1 harness has an unused parameter; tests build with -Wextra -Werror. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"
#include "kselftest_harness.h"
#pragma GCC diagnostic pop

#define SP_DEV		"/dev/shmpool"
#define SP_SYSFS	"/sys/class/misc/shmpool/"
#define SP_DEBUGFS	"/sys/kernel/debug/shmpool/pools"
#define SP_NOBODY	65534

/*
 * SKIP() from FIXTURE_SETUP. The 6.1 kselftest_harness.h runs the test body
 * after a setup that only SKIP()ped; clearing 'passed' makes it return
 * before the body, and the test child still exits as skipped.
 */
#define SP_SKIP_SETUP(fmt, ...) do {				\
	SKIP(, fmt, ##__VA_ARGS__);				\
	_metadata->passed = 0;					\
	return;							\
} while (0)

/*
 * Checks inside a forked child: never ASSERT_*() there (it would run the
 * fixture teardown in the child). Print and leave with status 1 instead.
 */
#define CHILD_CHECK(cond) do {						\
	if (!(cond)) {							\
		fprintf(stderr, "# %s:%d: child: check '%s' failed (errno %d: %s)\n", \
			__FILE__, __LINE__, #cond, errno, strerror(errno)); \
		_exit(1);						\
	}								\
} while (0)

static inline long sp_page_size(void)
{
	return sysconf(_SC_PAGESIZE);
}

/* The device fd, O_CLOEXEC added; -1 with errno set if it cannot be opened. */
static inline int sp_open_dev(int flags)
{
	return open(SP_DEV, flags | O_CLOEXEC);
}

/* ioctl() as 0 (or its positive result) or -errno, so tests compare errnos. */
static inline int sp_ioctl(int fd, unsigned long cmd, void *arg)
{
	int ret = ioctl(fd, cmd, arg);

	return ret < 0 ? -errno : ret;
}

/* A pool name unique to this test process: "spt-<pid>-<tag>". */
static inline void sp_make_name(char name[SHMPOOL_NAME_MAX], const char *tag)
{
	memset(name, 0, SHMPOOL_NAME_MAX);
	snprintf(name, SHMPOOL_NAME_MAX, "spt-%d-%s", (int)getpid(), tag);
}

static inline void sp_set_name(char dst[SHMPOOL_NAME_MAX], const char *name)
{
	size_t len = name ? strnlen(name, SHMPOOL_NAME_MAX - 1) : 0;

	memset(dst, 0, SHMPOOL_NAME_MAX);
	/* Not memcpy(dst, NULL, 0): that lets the compiler assume name != NULL. */
	if (len)
		memcpy(dst, name, len);
}

static inline int sp_get_api(int fd, struct shmpool_api *api)
{
	memset(api, 0, sizeof(*api));
	api->size = sizeof(*api);
	return sp_ioctl(fd, SHMPOOL_IOC_API, api);
}

/*
 * The usual FIXTURE_SETUP start: an O_RDWR scope fd of /dev/shmpool in *@fd, the
 * page size and the API answer. Returns false after a SKIP if the device
 * cannot be opened; FIXTURE_SETUP must then return at once.
 */
static inline bool sp_setup_dev(struct __test_metadata *_metadata, int *fd,
				long *page, struct shmpool_api *api)
{
	*fd = sp_open_dev(O_RDWR);
	if (*fd < 0) {
		SKIP(, "cannot open " SP_DEV ": %s", strerror(errno));
		_metadata->passed = 0;	/* as SP_SKIP_SETUP() does */
		return false;
	}
	*page = sp_page_size();
	ASSERT_EQ(0, sp_get_api(*fd, api));
	return true;
}

/*
 * The pool fd @pool (returned by CREATE or OPEN) takes the place of the scope
 * fd @fd, so that tests written for fds that became their pool keep working.
 * Returns 0 or -errno.
 */
static inline int sp_take_pool_fd(int fd, int pool)
{
	int ret = 0;

	if (pool != fd && dup3(pool, fd, O_CLOEXEC) < 0)
		ret = -errno;
	if (pool != fd)
		close(pool);
	return ret;
}

/*
 * CREATE on scope fd @fd; @name NULL or "" makes an anonymous pool. On
 * success the new pool fd replaces @fd (sp_take_pool_fd()). @out may be NULL.
 */
static inline int sp_create(int fd, const char *name, uint64_t bytes,
			    uint32_t flags, uint32_t mode,
			    struct shmpool_create *out)
{
	struct shmpool_create c;
	int ret;

	memset(&c, 0, sizeof(c));
	c.size = sizeof(c);
	c.flags = flags;
	c.bytes = bytes;
	c.mode = mode;
	sp_set_name(c.name, name);
	ret = sp_ioctl(fd, SHMPOOL_IOC_CREATE, &c);
	if (!ret)
		ret = sp_take_pool_fd(fd, c.fd);
	if (out)
		*out = c;
	return ret;
}

/* A new O_RDWR pool fd of a new anonymous pool, or -errno. */
static inline int sp_anon_pool(uint64_t bytes)
{
	int fd = sp_open_dev(O_RDWR);
	int ret;

	if (fd < 0)
		return -errno;
	ret = sp_create(fd, NULL, bytes, 0, 0600, NULL);
	if (ret) {
		close(fd);
		return ret;
	}
	return fd;
}

/* OPEN on scope fd @fd; on success the pool fd replaces @fd, as sp_create(). */
static inline int sp_open_name(int fd, const char *name, uint32_t flags,
			       struct shmpool_open *out)
{
	struct shmpool_open o;
	int ret;

	memset(&o, 0, sizeof(o));
	o.size = sizeof(o);
	o.flags = flags;
	sp_set_name(o.name, name);
	ret = sp_ioctl(fd, SHMPOOL_IOC_OPEN, &o);
	if (!ret)
		ret = sp_take_pool_fd(fd, o.fd);
	if (out)
		*out = o;
	return ret;
}

static inline int sp_unlink(int fd, const char *name)
{
	struct shmpool_unlink u;

	memset(&u, 0, sizeof(u));
	u.size = sizeof(u);
	sp_set_name(u.name, name);
	return sp_ioctl(fd, SHMPOOL_IOC_UNLINK, &u);
}

/* UNLINK on a fresh scope fd of /dev/shmpool (for fds that became pools). */
static inline int sp_unlink_name(const char *name)
{
	int fd = sp_open_dev(O_RDWR), ret;

	if (fd < 0)
		return -errno;
	ret = sp_unlink(fd, name);
	close(fd);
	return ret;
}

/* Teardown: remove @name if it still exists, on a fresh fd. */
static inline void sp_unlink_quiet(const char *name)
{
	int fd;

	if (!name || !name[0])
		return;
	fd = sp_open_dev(O_RDWR);
	if (fd < 0)
		return;
	sp_unlink(fd, name);
	close(fd);
}

/* INFO on @fd with room for @cap extents at @ext (may be NULL with cap 0). */
static inline int sp_info(int fd, struct shmpool_info *info,
			  struct shmpool_extent *ext, uint32_t cap)
{
	memset(info, 0, sizeof(*info));
	info->size = sizeof(*info);
	info->extents_cap = cap;
	info->extents = (uintptr_t)ext;
	return sp_ioctl(fd, SHMPOOL_IOC_INFO, info);
}

/* The number at the start of file @path, or -1 if it cannot be read. */
static inline long long sp_read_number(const char *path)
{
	long long val = -1;
	FILE *f = fopen(path, "re");

	if (!f)
		return -1;
	if (fscanf(f, "%lld", &val) != 1)
		val = -1;
	fclose(f);
	return val;
}

/* Write @val to file @path (sysfs, procfs, cgroupfs): 0 or -errno. */
static inline int sp_write_string(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC), ret = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, val, strlen(val)) < 0)
		ret = -errno;
	close(fd);
	return ret;
}

/* A module-wide counter from sysfs, or -1 if it cannot be read. */
static inline long long sp_counter(const char *which)
{
	char path[128];

	snprintf(path, sizeof(path), SP_SYSFS "%s", which);
	return sp_read_number(path);
}

/* MAP_SHARED mapping of @fd; MAP_FAILED with errno on failure. */
static inline void *sp_map(int fd, size_t len, int prot, off_t off)
{
	return mmap(NULL, len, prot, MAP_SHARED, fd, off);
}

/*
 * The text after @key (e.g. "VmFlags:", "Rss:") in /proc/self/smaps for the
 * mapping that starts at @addr, in @out.
 */
static inline int sp_smaps_field(void *addr, const char *key, char *out,
				 size_t len)
{
	size_t klen = strlen(key);
	char line[512];
	bool in = false;
	FILE *f = fopen("/proc/self/smaps", "re");

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		unsigned long start, end;

		if (sscanf(line, "%lx-%lx ", &start, &end) == 2 &&
		    strchr(line, '-') < strchr(line, ' ')) {
			in = start == (unsigned long)addr;
			continue;
		}
		if (in && !strncmp(line, key, klen)) {
			size_t n = strnlen(line + klen, len - 1);

			memcpy(out, line + klen, n);
			out[n] = 0;
			fclose(f);
			return 0;
		}
	}
	fclose(f);
	return -ENOENT;
}

/* The "VmFlags:" line of the mapping that starts at @addr, in @out. */
static inline int sp_vm_flags_of(void *addr, char *out, size_t len)
{
	return sp_smaps_field(addr, "VmFlags:", out, len);
}

static inline bool sp_has_vm_flag(const char *flags, const char *flag)
{
	char padded[8];

	snprintf(padded, sizeof(padded), " %s", flag);
	return strstr(flags, padded) != NULL;
}

/* Byte pattern of pool offset @off for @seed, so misplaced pages show. */
static inline uint8_t sp_pattern(size_t off, unsigned int seed)
{
	size_t page = off / 4096;

	return (uint8_t)(off * 7 + page * 13 + seed * 101 + 1);
}

static inline void sp_fill(void *p, size_t len, size_t base, unsigned int seed)
{
	uint8_t *b = p;
	size_t i;

	for (i = 0; i < len; i++)
		b[i] = sp_pattern(base + i, seed);
}

/* CREATE @name (@flags) on @fd, then fill it with pattern @seed; 0 or -errno. */
static inline int sp_create_filled(int fd, const char *name, size_t len,
				   uint32_t flags, uint32_t mode, unsigned int seed)
{
	void *p;
	int ret;

	ret = sp_create(fd, name, len, flags, mode, NULL);
	if (ret)
		return ret;
	p = sp_map(fd, len, PROT_READ | PROT_WRITE, 0);
	if (p == MAP_FAILED)
		return -errno;
	sp_fill(p, len, 0, seed);
	munmap(p, len);
	return 0;
}

/* Offset of the first byte not matching the pattern, or -1 if all match. */
static inline long sp_check(const void *p, size_t len, size_t base,
			    unsigned int seed)
{
	const uint8_t *b = p;
	size_t i;

	for (i = 0; i < len; i++)
		if (b[i] != sp_pattern(base + i, seed))
			return (long)i;
	return -1;
}

/* Offset of the first byte that is not @val, or -1. */
static inline long sp_check_byte(const void *p, size_t len, uint8_t val)
{
	const uint8_t *b = p;
	size_t i;

	for (i = 0; i < len; i++)
		if (b[i] != val)
			return (long)i;
	return -1;
}

/*
 * Leave this process no free fd: RLIMIT_NOFILE lowered to SP_FULL_FDS (the
 * old limit in *@old) and every fd below it taken by a dup() of @fd, listed
 * in @dups. Returns how many were taken, or -errno. sp_fds_unfill() undoes it.
 */
#define SP_FULL_FDS	64
static inline int sp_fds_fill(int fd, struct rlimit *old, int dups[SP_FULL_FDS])
{
	struct rlimit low;
	int n;

	if (getrlimit(RLIMIT_NOFILE, old))
		return -errno;
	low = *old;
	low.rlim_cur = SP_FULL_FDS;
	if (setrlimit(RLIMIT_NOFILE, &low))
		return -errno;
	for (n = 0; n < SP_FULL_FDS; n++) {
		dups[n] = dup(fd);
		if (dups[n] < 0)
			break;
	}
	return n < SP_FULL_FDS && errno == EMFILE ? n : -EBADF;
}

static inline int sp_fds_unfill(const struct rlimit *old, int dups[SP_FULL_FDS],
				int n)
{
	while (n-- > 0)
		close(dups[n]);
	return setrlimit(RLIMIT_NOFILE, old) ? -errno : 0;
}

/* In a new child: die with the test process, which may fail at any point. */
static inline void sp_child_init(void)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() == 1)
		_exit(1);
}

/* Exit status of @pid (128 + signal if killed), -1 if waitpid fails. */
static inline int sp_wait(pid_t pid)
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

/* /proc/<pid>/stat's state letter, or 0. */
static inline char sp_proc_state(pid_t pid)
{
	char path[64], buf[512], *p;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	p = strrchr(buf, ')');
	return p && p[1] == ' ' ? p[2] : 0;
}

/*
 * Become uid/gid @id with no supplementary groups. setuid() from root to a
 * non-root uid clears the permitted and effective capability sets (without
 * SECBIT_KEEP_CAPS, which nothing here sets); verify that with capget() so
 * a test of permission checks cannot pass on a leftover capability.
 * Returns 0 or -errno (-EPERM if a capability survived).
 */
static inline int sp_drop_privileges(uid_t uid, gid_t gid)
{
	struct __user_cap_header_struct hdr = {
		.version = _LINUX_CAPABILITY_VERSION_3,
	};
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];
	int i;

	if (setgroups(0, NULL) || setgid(gid) || setuid(uid))
		return -errno;
	if (getuid() != uid || geteuid() != uid || getgid() != gid)
		return -EPERM;
	memset(data, 0, sizeof(data));
	if (syscall(SYS_capget, &hdr, data))
		return -errno;
	for (i = 0; i < _LINUX_CAPABILITY_U32S_3; i++)
		if (data[i].effective || data[i].permitted)
			return -EPERM;
	return 0;
}

/*
 * @cmd on @fd with an argument pointer that is not readable (PROT_NONE, a
 * low address, a kernel address): each must fail with EFAULT.
 */
static inline void sp_expect_unreadable_arg(struct __test_metadata *_metadata,
					    int fd, unsigned long cmd, long page)
{
	void *none = mmap(NULL, page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	ASSERT_NE(MAP_FAILED, none);
	EXPECT_EQ(-EFAULT, sp_ioctl(fd, cmd, none));
	EXPECT_EQ(-EFAULT, sp_ioctl(fd, cmd, (void *)1));
	EXPECT_EQ(-EFAULT, sp_ioctl(fd, cmd, (void *)(uintptr_t)0xffffffff81000000ULL));
	munmap(none, page);
}

/* ---- doorbells ---- */

/* Now on @clock in nanoseconds. */
static inline uint64_t sp_now_ns(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

/* WAIT on @fd; @deadline_ns is used only with SHMPOOL_WAIT_DEADLINE. */
static inline int sp_db_wait(int fd, uint64_t off, uint32_t expected,
			     uint32_t bitset, uint32_t flags, uint64_t deadline_ns)
{
	struct shmpool_wait w;

	memset(&w, 0, sizeof(w));
	w.size = sizeof(w);
	w.flags = flags;
	w.offset = off;
	w.expected = expected;
	w.bitset = bitset;
	w.deadline_ns = deadline_ns;
	return sp_ioctl(fd, SHMPOOL_IOC_WAIT, &w);
}

/* WAKE on @fd: the number woken or -errno. */
static inline int sp_db_wake(int fd, uint64_t off, uint32_t nr, uint32_t bitset)
{
	struct shmpool_wake w;

	memset(&w, 0, sizeof(w));
	w.size = sizeof(w);
	w.offset = off;
	w.nr = nr;
	w.bitset = bitset;
	return sp_ioctl(fd, SHMPOOL_IOC_WAKE, &w);
}

/* WAITV on @fd over @nr entries: the woken index or -errno. */
static inline int sp_db_waitv(int fd, struct shmpool_waitv_entry *ent,
			      uint32_t nr, uint32_t flags, uint64_t deadline_ns)
{
	struct shmpool_waitv w;

	memset(&w, 0, sizeof(w));
	w.size = sizeof(w);
	w.flags = flags;
	w.entries = (uintptr_t)ent;
	w.nr_entries = nr;
	w.deadline_ns = deadline_ns;
	return sp_ioctl(fd, SHMPOOL_IOC_WAITV, &w);
}

static inline void sp_db_entry(struct shmpool_waitv_entry *e, int fd,
			       uint64_t off, uint32_t expected, uint32_t bitset)
{
	memset(e, 0, sizeof(*e));
	e->fd = fd;
	e->offset = off;
	e->expected = expected;
	e->bitset = bitset;
}

/* NOTIFY on @fd (SHMPOOL_NOTIFY_ADD or _DEL in @flags). */
static inline int sp_db_notify(int fd, uint32_t flags, uint64_t off, int efd,
			       uint32_t bitset)
{
	struct shmpool_notify n;

	memset(&n, 0, sizeof(n));
	n.size = sizeof(n);
	n.flags = flags;
	n.offset = off;
	n.eventfd = efd;
	n.bitset = bitset;
	return sp_ioctl(fd, SHMPOOL_IOC_NOTIFY, &n);
}

/*
 * Wait until the module-wide sysfs counter @which is @want (or, with
 * @at_least, at least @want), polling every millisecond for up to
 * @timeout_ms. Returns 0, -ETIMEDOUT, or -ENOENT if the counter does not
 * exist.
 */
static inline int sp_await_counter(const char *which, long long want,
				   bool at_least, int timeout_ms)
{
	uint64_t end = sp_now_ns(CLOCK_MONOTONIC) + timeout_ms * 1000000ULL;
	long long n;

	for (;;) {
		n = sp_counter(which);
		if (n < 0)
			return -ENOENT;
		if (n == want || (at_least && n > want))
			return 0;
		if (sp_now_ns(CLOCK_MONOTONIC) > end)
			return -ETIMEDOUT;
		usleep(1000);
	}
}

/*
 * The count of sleeping doorbell waiters (/sys/class/misc/shmpool/waiters)
 * reaching @want is how a test knows a waiter is really asleep in the
 * kernel, without guessing from time.
 */
static inline int sp_await_waiters(long long want, bool at_least, int timeout_ms)
{
	return sp_await_counter("waiters", want, at_least, timeout_ms);
}

#endif /* SHMPOOL_TEST_UTIL_H */
