/* account_test: memory accounting that switching uids cannot multiply, module-parameter validation, and where pool memory shows in memory.stat. */
// SPDX-License-Identifier: GPL-2.0
#define _GNU_SOURCE
#include <sched.h>
#include <sys/mount.h>
#include <sys/resource.h>

#include "shmpool_test_util.h"

#define SP_PARAMS	"/sys/module/shmpool/parameters/"
#define CG_ROOT		"/sys/fs/cgroup"

/* The first line of @path, or "" */
static void acct_read(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "re");

	buf[0] = 0;
	if (!f)
		return;
	if (!fgets(buf, len, f))
		buf[0] = 0;
	fclose(f);
	buf[strcspn(buf, "\n")] = 0;
}

FIXTURE(acct) {
	long page;
	char max_pool[32], max_total[32];
	pid_t kids[8];
	int nkids;
	char cgroup[128];
};

FIXTURE_SETUP(acct)
{
	int fd = sp_open_dev(O_RDWR);

	if (fd < 0)
		SP_SKIP_SETUP("cannot open " SP_DEV ": %s", strerror(errno));
	close(fd);
	self->page = sp_page_size();
	acct_read(SP_PARAMS "max_pool_mb", self->max_pool, sizeof(self->max_pool));
	acct_read(SP_PARAMS "max_total_mb", self->max_total, sizeof(self->max_total));
	ASSERT_NE(0, self->max_pool[0]);
	ASSERT_NE(0, self->max_total[0]);
}

FIXTURE_TEARDOWN(acct)
{
	int i;

	for (i = 0; i < self->nkids; i++) {
		kill(self->kids[i], SIGKILL);
		waitpid(self->kids[i], NULL, 0);
	}
	if (self->max_pool[0])
		sp_write_string(SP_PARAMS "max_pool_mb", self->max_pool);
	if (self->max_total[0])
		sp_write_string(SP_PARAMS "max_total_mb", self->max_total);
	if (self->cgroup[0])
		rmdir(self->cgroup);
}

/* ---- module parameters ---- */

/* 0 is refused (leave the parameter out for the default), as is overflow. */
TEST_F(acct, size_params_refuse_zero_and_overflow)
{
	const char *names[] = { SP_PARAMS "max_pool_mb", SP_PARAMS "max_total_mb" };
	const char *bad[] = {
		"0", "-1", "x",
		"17592186044416",		/* (ULONG_MAX >> 20) + 1: << 20 wraps */
		"18446744073709551615",		/* ULONG_MAX */
		"18446744073709551616",		/* not even a ulong */
	};
	const char *was[] = { self->max_pool, self->max_total };
	char now[32];
	unsigned int i, j;

	for (i = 0; i < ARRAY_SIZE(names); i++) {
		for (j = 0; j < ARRAY_SIZE(bad); j++) {
			const char *b = bad[j];

			EXPECT_EQ(-EINVAL, sp_write_string(names[i], b))
				TH_LOG("%s accepted \"%s\"", names[i], b);
		}
		acct_read(names[i], now, sizeof(now));
		EXPECT_STREQ(was[i], now);
		/* The largest value that fits is fine, and so is the old one. */
		EXPECT_EQ(0, sp_write_string(names[i], "17592186044415"));
		EXPECT_EQ(0, sp_write_string(names[i], was[i]));
	}
}

/* ---- one budget per container ---- */

#define NS_BASE		100000
#define NS_UIDS		8
#define POOL_PAGES	4
#define LIMIT_PAGES	8	/* room for two pools */

/*
 * In a user namespace with several uids mapped, a grandchild per uid makes
 * a pool and holds it: RLIMIT_MEMLOCK is one budget for them all, however
 * many uids take turns (each has a user_struct of its own).
 */
TEST_F(acct, uids_in_user_namespace_share_memlock_budget)
{
	int go[2], rep[2], i, ret;
	char path[64], map[64];
	pid_t child;
	char c;

	ASSERT_EQ(0, pipe2(go, O_CLOEXEC));
	ASSERT_EQ(0, pipe2(rep, O_CLOEXEC));
	child = fork();
	ASSERT_GE(child, 0);
	if (child == 0) {
		struct rlimit rl = {
			.rlim_cur = LIMIT_PAGES * self->page,
			.rlim_max = LIMIT_PAGES * self->page,
		};
		pid_t g[5];
		int u;

		sp_child_init();
		CHILD_CHECK(setrlimit(RLIMIT_MEMLOCK, &rl) == 0);
		if (unshare(CLONE_NEWUSER))
			_exit(77);
		CHILD_CHECK(read(go[0], &c, 1) == 1);
		CHILD_CHECK(setresgid(0, 0, 0) == 0 && setresuid(0, 0, 0) == 0);
		/* uids 1, 2, 3 in turn; then 1 and 2 let go and uid 4 tries 8 pages. */
		for (u = 1; u <= 4; u++) {
			int r[2], res;

			CHILD_CHECK(pipe2(r, O_CLOEXEC) == 0);
			if (u == 4) {
				kill(g[1], SIGKILL);
				kill(g[2], SIGKILL);
				CHILD_CHECK(sp_wait(g[1]) >= 0 && sp_wait(g[2]) >= 0);
			}
			g[u] = fork();
			CHILD_CHECK(g[u] >= 0);
			if (g[u] == 0) {
				int fd;

				CHILD_CHECK(setresgid(u, u, u) == 0 && setresuid(u, u, u) == 0);
				fd = sp_anon_pool((u == 4 ? 2 : 1) * POOL_PAGES * self->page);
				res = fd < 0 ? fd : 0;
				CHILD_CHECK(write(r[1], &res, sizeof(res)) == sizeof(res));
				pause();
				_exit(0);
			}
			CHILD_CHECK(read(r[0], &res, sizeof(res)) == sizeof(res));
			CHILD_CHECK(write(rep[1], &res, sizeof(res)) == sizeof(res));
			close(r[0]);
			close(r[1]);
		}
		/* setresuid() cleared their PDEATHSIG: end them here. */
		for (u = 3; u <= 4; u++) {
			kill(g[u], SIGKILL);
			CHILD_CHECK(sp_wait(g[u]) >= 0);
		}
		_exit(0);
	}
	self->kids[self->nkids++] = child;
	snprintf(path, sizeof(path), "/proc/%d/uid_map", (int)child);
	snprintf(map, sizeof(map), "0 %d %d", NS_BASE, NS_UIDS);
	/* Until the child has unshared, its map is the initial one: retry. */
	for (i = 0; i < 20000; i++) {
		char now[64];

		acct_read(path, now, sizeof(now));
		if (!strstr(now, "4294967295"))
			break;
		usleep(1000);
	}
	ret = sp_write_string(path, map);
	if (ret) {
		ASSERT_EQ(77, sp_wait(child)) TH_LOG("uid_map: %d", ret);
		self->nkids = 0;
		SKIP(return, "no user namespaces");
	}
	snprintf(path, sizeof(path), "/proc/%d/gid_map", (int)child);
	ASSERT_EQ(0, sp_write_string(path, map));
	ASSERT_EQ(1, write(go[1], "g", 1));
	for (i = 1; i <= 4; i++) {
		ASSERT_EQ((ssize_t)sizeof(ret), read(rep[0], &ret, sizeof(ret)));
		if (i == 3) {
			EXPECT_EQ(-EDQUOT, ret) TH_LOG("uid 3 got a budget of its own");
		} else {
			EXPECT_EQ(0, ret) TH_LOG("uid %d: %d", i, ret);
		}
	}
	EXPECT_EQ(0, sp_wait(child));
	self->nkids = 0;
	close(go[0]);
	close(go[1]);
	close(rep[0]);
	close(rep[1]);
}

/* ---- memory.stat ---- */

/* A "key value" line of @cg's memory.stat, or -1. */
static long long acct_memstat(const char *cg, const char *key)
{
	char path[192], line[128];
	long long v = -1;
	size_t klen = strlen(key);
	FILE *f;

	snprintf(path, sizeof(path), "%s/memory.stat", cg);
	f = fopen(path, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, klen) && line[klen] == ' ')
			v = strtoll(line + klen + 1, NULL, 10);
	fclose(f);
	return v;
}

/*
 * Pool pages are charged with __GFP_ACCOUNT, as kernel memory: they show
 * in memory.current and in memory.stat's "kernel" line, not in "anon",
 * "file", "shmem" or "unevictable" (they are on no LRU list).
 */
TEST_F(acct, pool_memory_shows_as_kernel_in_memory_stat)
{
	const long long bytes = 16LL << 20;
	const char *keys[] = { "kernel", "anon", "file", "shmem", "unevictable" };
	long long before[5], after[5];
	char procs[192], pid[32];
	unsigned int i;
	int fd;

	if (access(CG_ROOT "/cgroup.controllers", F_OK)) {
		mkdir(CG_ROOT, 0755);
		if (mount("cgroup2", CG_ROOT, "cgroup2", 0, NULL))
			SKIP(return, "cannot mount cgroup2: %s", strerror(errno));
	}
	if (sp_write_string(CG_ROOT "/cgroup.subtree_control", "+memory"))
		SKIP(return, "no memory controller");
	snprintf(self->cgroup, sizeof(self->cgroup), CG_ROOT "/spt-%d", (int)getpid());
	ASSERT_EQ(0, mkdir(self->cgroup, 0755));
	snprintf(procs, sizeof(procs), "%s/cgroup.procs", self->cgroup);
	/* Move ourselves in, make and touch nothing else, then move back out. */
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	ASSERT_EQ(0, sp_write_string(procs, pid));
	for (i = 0; i < ARRAY_SIZE(keys); i++)
		before[i] = acct_memstat(self->cgroup, keys[i]);
	fd = sp_anon_pool(bytes);
	for (i = 0; i < ARRAY_SIZE(keys); i++)
		after[i] = acct_memstat(self->cgroup, keys[i]);
	ASSERT_EQ(0, sp_write_string(CG_ROOT "/cgroup.procs", pid));
	ASSERT_GE(fd, 0);
	close(fd);
	for (i = 0; i < ARRAY_SIZE(keys); i++)
		TH_LOG("%s: %lld -> %lld", keys[i], before[i], after[i]);
	ASSERT_GE(before[0], 0);
	EXPECT_GE(after[0] - before[0], bytes);
	for (i = 1; i < ARRAY_SIZE(keys); i++) {
		const char *k = keys[i];

		EXPECT_LT(after[i] - before[i], bytes / 4) TH_LOG("%s", k);
	}
}

TEST_HARNESS_MAIN
