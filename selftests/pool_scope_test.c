/* pool_scope_test: pool names stop at the container's edge: a shmpool instance mounted at /dev/shmpool.d is a scope of its own, found by the library, freed with the container. */
// SPDX-License-Identifier: GPL-2.0
#define _GNU_SOURCE
#include <dirent.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/statfs.h>

#include "shmpool.h"
#include "shmpool_test_util.h"

#define SCOPE_DIR	"/dev/shmpool.d"
#define DEV		SHMPOOL_BACKEND_DEVICE
#define CTR_UID_BASE	100000	/* a user-namespaced container's uid 0 */

/* A child in namespaces of its own, in lock step with the test. */
struct ctr {
	pid_t pid;
	int up[2];	/* child -> test */
	int down[2];	/* test -> child */
};

static void ctr_say(int fd)
{
	char c = 'x';

	if (write(fd, &c, 1) != 1)
		_exit(3);
}

static int ctr_hear(int fd)
{
	char c;

	return read(fd, &c, 1) == 1 ? 0 : -1;
}

/* The child's side of the handshake. */
static void ctr_ready(struct ctr *c)
{
	ctr_say(c->up[1]);
	if (ctr_hear(c->down[0]))
		_exit(3);
}

static int write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, text, strlen(text));
	close(fd);
	return n == (ssize_t)strlen(text) ? 0 : -EIO;
}

/* Give @pid's user namespace uids and gids 0..65535 -> CTR_UID_BASE.. */
static int ctr_map_ids(pid_t pid)
{
	char path[64], map[64];
	int ret;

	snprintf(map, sizeof(map), "0 %d 65536\n", CTR_UID_BASE);
	snprintf(path, sizeof(path), "/proc/%d/uid_map", (int)pid);
	ret = write_file(path, map);
	if (ret)
		return ret;
	snprintf(path, sizeof(path), "/proc/%d/gid_map", (int)pid);
	return write_file(path, map);
}

/*
 * Start a container: a child in a new mount namespace (and, with @userns, a
 * new user namespace whose root is host uid CTR_UID_BASE) that mounts a
 * fresh shmpool instance on SCOPE_DIR, as a container runtime would, then
 * runs @body. Returns 0 once the child is inside and mounted.
 */
static int ctr_start(struct ctr *c, bool userns, int (*body)(struct ctr *))
{
	if (pipe2(c->up, O_CLOEXEC) || pipe2(c->down, O_CLOEXEC))
		return -errno;
	c->pid = fork();
	if (c->pid < 0)
		return -errno;
	if (!c->pid) {
		sp_child_init();
		CHILD_CHECK(!unshare(CLONE_NEWNS | (userns ? CLONE_NEWUSER : 0)));
		if (userns) {
			ctr_ready(c);	/* the test writes our id maps */
			CHILD_CHECK(!setresgid(0, 0, 0) && !setresuid(0, 0, 0));
		}
		/* Nothing we mount may propagate back to the host. */
		CHILD_CHECK(!mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL));
		CHILD_CHECK(!mount("shmpool", SCOPE_DIR, "shmpool", 0, NULL));
		ctr_say(c->up[1]);
		_exit(body(c));
	}
	if (userns) {
		if (ctr_hear(c->up[0]) || ctr_map_ids(c->pid))
			return -EIO;
		ctr_say(c->down[1]);
	}
	return ctr_hear(c->up[0]) ? -EIO : 0;
}

/* Let the container go on to its next step; 0 once it reports back. */
static int ctr_step(struct ctr *c)
{
	ctr_say(c->down[1]);
	return ctr_hear(c->up[0]);
}

/* Wait for the container; its exit status. */
static int ctr_end(struct ctr *c)
{
	close(c->down[1]);	/* a child still waiting gets EOF and exits */
	close(c->up[0]);
	close(c->up[1]);
	close(c->down[0]);
	return sp_wait(c->pid);
}

/* A container that runs @body and exits: its exit status, -1 if it failed to start. */
static int ctr_run(bool userns, int (*body)(struct ctr *))
{
	struct ctr c;

	if (ctr_start(&c, userns, body))
		return -1;
	return ctr_end(&c);
}

static bool is_shmpool_mount(const char *dir)
{
	struct statfs sfs;

	return !statfs(dir, &sfs) && sfs.f_type == SHMPOOL_MAGIC;
}

FIXTURE(scope) {
	long page;
	bool made_dir;
	long long pools, pages;
};

/* The names every test uses; unique per test process. */
static char host_name[SHMPOOL_NAME_MAX], ctr_name[SHMPOOL_NAME_MAX];
static char same_name[SHMPOOL_NAME_MAX];

FIXTURE_SETUP(scope)
{
	int fd = sp_open_dev(O_RDWR);

	if (fd < 0)
		SP_SKIP_SETUP("cannot open " SP_DEV ": %s", strerror(errno));
	close(fd);
	self->page = sp_page_size();
	sp_make_name(host_name, "host");
	sp_make_name(ctr_name, "ctr");
	sp_make_name(same_name, "same");
	self->made_dir = !mkdir(SCOPE_DIR, 0755);
	ASSERT_TRUE(self->made_dir || errno == EEXIST);
	/* The host itself has no instance there: its scope is /dev/shmpool. */
	ASSERT_FALSE(is_shmpool_mount(SCOPE_DIR));
	self->pools = sp_counter("pools");
	self->pages = sp_counter("pages");
}

FIXTURE_TEARDOWN(scope)
{
	sp_unlink_quiet(host_name);
	sp_unlink_quiet(same_name);
	sp_unlink_quiet(ctr_name);
	if (self->made_dir)
		rmdir(SCOPE_DIR);
}

/* ---- what a container sees ---- */

static int body_host_names_hidden(struct ctr *c)
{
	struct shmpool *p = NULL;

	(void)c;
	CHILD_CHECK(shmpool_open(host_name, DEV, &p) == -ENOENT);
	CHILD_CHECK(shmpool_open(host_name, DEV | SHMPOOL_RDONLY, &p) == -ENOENT);
	CHILD_CHECK(shmpool_unlink(host_name, DEV) == -ENOENT);
	return 0;
}

static void host_names_hidden(struct __test_metadata *_metadata,
			      FIXTURE_DATA(scope) *self, bool userns)
{
	struct shmpool *h;

	ASSERT_EQ(0, shmpool_create(host_name, self->page, 0666, DEV, &h));
	EXPECT_EQ(0, ctr_run(userns, body_host_names_hidden));
	/* Untouched by the container's unlink attempt. */
	EXPECT_EQ(0, shmpool_unlink(host_name, DEV));
	shmpool_close(h);
}

TEST_F(scope, container_cannot_see_host_names)
{
	host_names_hidden(_metadata, self, false);
}

TEST_F(scope, userns_container_cannot_see_host_names)
{
	host_names_hidden(_metadata, self, true);
}

/*
 * README: "unshare(CLONE_NEWIPC) alone" shares the host's names, like
 * /dev/shm and unlike SysV shm: a new IPC namespace without a mount of its
 * own opens the host's pool.
 */
TEST_F(scope, new_ipc_namespace_alone_shares_default_scope)
{
	struct shmpool *h;
	pid_t pid;

	ASSERT_EQ(0, shmpool_create(host_name, self->page, 0666, DEV, &h));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		struct shmpool *p;

		sp_child_init();
		CHILD_CHECK(!unshare(CLONE_NEWIPC));
		CHILD_CHECK(shmpool_open(host_name, DEV, &p) == 0);
		CHILD_CHECK(p->size == (size_t)sp_page_size());
		shmpool_close(p);
		_exit(0);
	}
	EXPECT_EQ(0, sp_wait(pid));
	EXPECT_EQ(0, shmpool_unlink(host_name, DEV));
	shmpool_close(h);
}

/* Step 1: make ctr_name and same_name (2 pages); step 2: check they are ours. */
static int body_own_names(struct ctr *c)
{
	struct shmpool *a, *b, *p;
	long page = sp_page_size();

	CHILD_CHECK(shmpool_create(ctr_name, page, 0600, DEV | SHMPOOL_EXCL, &a) == 0);
	CHILD_CHECK(shmpool_create(same_name, 2 * page, 0600, DEV | SHMPOOL_EXCL, &b) == 0);
	ctr_ready(c);
	/* The host's pool of the same name (one page) is not ours. */
	CHILD_CHECK(shmpool_open(same_name, DEV, &p) == 0);
	CHILD_CHECK(p->size == (size_t)2 * page);
	shmpool_close(p);
	shmpool_close(a);
	shmpool_close(b);
	ctr_say(c->up[1]);
	return 0;
}

static int body_sees_nothing(struct ctr *c)
{
	struct shmpool *p;

	(void)c;
	CHILD_CHECK(shmpool_open(ctr_name, DEV, &p) == -ENOENT);
	CHILD_CHECK(shmpool_open(same_name, DEV, &p) == -ENOENT);
	return 0;
}

static void own_names(struct __test_metadata *_metadata,
		      FIXTURE_DATA(scope) *self, bool userns)
{
	struct shmpool *p, *same;
	struct ctr c, other;

	ASSERT_EQ(0, ctr_start(&c, userns, body_own_names));
	ASSERT_EQ(0, ctr_hear(c.up[0]));	/* its pools are made */
	/* Its names are not in the host's default scope... */
	EXPECT_EQ(-ENOENT, shmpool_open(ctr_name, DEV, &p));
	EXPECT_EQ(-ENOENT, shmpool_unlink(ctr_name, DEV));
	/* ...the host can have the same name for a pool of its own... */
	EXPECT_EQ(0, shmpool_create(same_name, self->page, 0600, DEV | SHMPOOL_EXCL, &same));
	/* ...and a second container sees neither. */
	ASSERT_EQ(0, ctr_start(&other, userns, body_sees_nothing));
	EXPECT_EQ(0, ctr_end(&other));
	EXPECT_EQ(0, ctr_step(&c));
	EXPECT_EQ(0, ctr_end(&c));
	EXPECT_EQ((size_t)self->page, same->size);
	shmpool_close(same);
	EXPECT_EQ(0, shmpool_unlink(same_name, DEV));
}

TEST_F(scope, container_names_are_its_own)
{
	own_names(_metadata, self, false);
}

TEST_F(scope, userns_container_names_are_its_own)
{
	own_names(_metadata, self, true);
}

/* ---- nothing leaks when a container goes ---- */

/* Named pools, an anonymous one, a mapping, a sleeping fd: then exit. */
static int body_leave_things(struct ctr *c)
{
	struct shmpool *a, *b, *anon;
	long page = sp_page_size();

	(void)c;
	CHILD_CHECK(shmpool_create(ctr_name, 4 * page, 0600, DEV, &a) == 0);
	CHILD_CHECK(shmpool_create(same_name, page, 0644, DEV, &b) == 0);
	CHILD_CHECK(shmpool_create_anon(2 * page, DEV, &anon) == 0);
	memset(a->base, 1, 4 * page);
	/* Exit without closing or unlinking anything. */
	return 0;
}

static void exit_frees(struct __test_metadata *_metadata,
		       FIXTURE_DATA(scope) *self, bool userns)
{
	if (self->pools < 0 || self->pages < 0)
		SKIP(return, "no sysfs counters");
	EXPECT_EQ(0, ctr_run(userns, body_leave_things));
	/* The container's mount namespace, instance and pools are gone. */
	EXPECT_EQ(0, sp_await_counter("pools", self->pools, false, 5000));
	EXPECT_EQ(0, sp_await_counter("pages", self->pages, false, 5000));
}

TEST_F(scope, container_exit_frees_its_pools)
{
	exit_frees(_metadata, self, false);
}

TEST_F(scope, userns_container_exit_frees_its_pools)
{
	exit_frees(_metadata, self, true);
}

/* ---- the mounted instance is a directory of files ---- */

static bool dir_has(const char *dir, const char *name)
{
	struct dirent *de;
	bool found = false;
	DIR *d = opendir(dir);

	if (!d)
		return false;
	while (!found && (de = readdir(d)))
		found = !strcmp(de->d_name, name);
	closedir(d);
	return found;
}

static int body_files(struct ctr *c)
{
	struct shmpool_pool_info info;
	struct shmpool *p, *q;
	char path[128];
	struct stat st;
	long page = sp_page_size();
	int fd;

	(void)c;
	snprintf(path, sizeof(path), SCOPE_DIR "/%s", ctr_name);
	CHILD_CHECK(shmpool_create(ctr_name, 3 * page, 0600, DEV, &p) == 0);
	/* ls -l */
	CHILD_CHECK(dir_has(SCOPE_DIR, ctr_name));
	CHILD_CHECK(!stat(path, &st));
	CHILD_CHECK(S_ISREG(st.st_mode) && st.st_size == 3 * page);
	CHILD_CHECK((st.st_mode & 07777) == 0600 && st.st_uid == geteuid());
	/* chmod */
	CHILD_CHECK(!chmod(path, 0640));
	CHILD_CHECK(shmpool_info(p, &info) == 0 && info.mode == 0640);
	/* open(2) gives a pool fd of the same pool */
	fd = open(path, O_RDWR | O_CLOEXEC);
	CHILD_CHECK(fd >= 0);
	CHILD_CHECK(shmpool_adopt_fd(fd, 0, &q) == 0);
	memset(q->base, 7, page);
	CHILD_CHECK(((volatile char *)p->base)[page - 1] == 7);
	/* rm: the name goes, the pool stays with its users */
	CHILD_CHECK(!unlink(path));
	CHILD_CHECK(!dir_has(SCOPE_DIR, ctr_name));
	CHILD_CHECK(shmpool_open(ctr_name, DEV, &q) == -ENOENT);
	CHILD_CHECK(shmpool_info(p, &info) == 0);
	CHILD_CHECK(info.flags & SHMPOOL_POOL_UNLINKED);
	CHILD_CHECK(((volatile char *)p->base)[0] == 7);
	shmpool_close(p);
	return 0;
}

TEST_F(scope, mounted_instance_ls_chmod_open_rm)
{
	EXPECT_EQ(0, ctr_run(false, body_files));
}

/* The same through a user namespace: the pool belongs to its root. */
static int body_userns_owner(struct ctr *c)
{
	struct shmpool_pool_info info;
	char path[128];
	struct shmpool *p;
	struct stat st;

	(void)c;
	snprintf(path, sizeof(path), SCOPE_DIR "/%s", ctr_name);
	CHILD_CHECK(shmpool_create(ctr_name, sp_page_size(), 0600, DEV, &p) == 0);
	CHILD_CHECK(shmpool_info(p, &info) == 0 && info.uid == 0 && info.gid == 0);
	CHILD_CHECK(!stat(path, &st) && st.st_uid == 0);
	shmpool_close(p);
	return 0;
}

TEST_F(scope, userns_container_owns_its_pools)
{
	EXPECT_EQ(0, ctr_run(true, body_userns_owner));
}

/* ---- who may unlink: the scope's user namespace decides ---- */

/* Run @fn as container uid/gid @id in a grandchild; its exit status. */
static int as_uid(uid_t id, int (*fn)(void))
{
	pid_t pid = fork();

	if (pid < 0)
		return -1;
	if (!pid) {
		sp_child_init();
		CHILD_CHECK(!sp_drop_privileges(id, id));
		_exit(fn());
	}
	return sp_wait(pid);
}

static int make_pool_1000(void)
{
	struct shmpool *p;

	CHILD_CHECK(shmpool_create(ctr_name, sp_page_size(), 0666, DEV, &p) == 0);
	shmpool_close(p);
	return 0;
}

static int unlink_refused_2000(void)
{
	char path[128];

	snprintf(path, sizeof(path), SCOPE_DIR "/%s", ctr_name);
	CHILD_CHECK(shmpool_unlink(ctr_name, DEV) == -EPERM);
	/* rm through the VFS: the sticky directory says the same */
	CHILD_CHECK(unlink(path) == -1 && errno == EPERM);
	return 0;
}

/*
 * Run @fn as container uid/gid @id keeping only CAP_FOWNER (in the
 * container's user namespace): neither the pool's owner nor the scope
 * directory's, so only the capability can let it unlink.
 */
static int as_uid_fowner(uid_t id, int (*fn)(void))
{
	struct __user_cap_header_struct hdr = {
		.version = _LINUX_CAPABILITY_VERSION_3,
	};
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];
	pid_t pid = fork();

	if (pid < 0)
		return -1;
	if (!pid) {
		sp_child_init();
		CHILD_CHECK(!prctl(PR_SET_KEEPCAPS, 1));
		CHILD_CHECK(!setgroups(0, NULL) && !setresgid(id, id, id));
		CHILD_CHECK(!setresuid(id, id, id));
		memset(data, 0, sizeof(data));
		data[0].effective = data[0].permitted = 1U << CAP_FOWNER;
		CHILD_CHECK(!syscall(SYS_capset, &hdr, data));
		_exit(fn());
	}
	return sp_wait(pid);
}

static int unlink_with_fowner(void)
{
	int fd = sp_open_dev(O_RDWR);

	/* CAP_FOWNER in the container is nothing in the host's scope... */
	CHILD_CHECK(fd >= 0);
	CHILD_CHECK(sp_unlink(fd, host_name) == -EPERM);
	close(fd);
	/* ...and enough in the container's own. */
	CHILD_CHECK(shmpool_unlink(ctr_name, DEV) == 0);
	return 0;
}

static int body_unlink_rights(struct ctr *c)
{
	struct shmpool *p;

	(void)c;
	CHILD_CHECK(as_uid(1000, make_pool_1000) == 0);
	CHILD_CHECK(as_uid(2000, unlink_refused_2000) == 0);
	CHILD_CHECK(shmpool_open(ctr_name, DEV, &p) == 0);
	shmpool_close(p);
	CHILD_CHECK(as_uid_fowner(3000, unlink_with_fowner) == 0);
	CHILD_CHECK(shmpool_open(ctr_name, DEV, &p) == -ENOENT);
	return 0;
}

static int make_host_pool_nobody(void)
{
	int fd = sp_open_dev(O_RDWR);

	CHILD_CHECK(fd >= 0);
	CHILD_CHECK(sp_create(fd, host_name, sp_page_size(), 0, 0666, NULL) == 0);
	close(fd);
	return 0;
}

TEST_F(scope, userns_unlink_needs_capability_in_scope)
{
	/* A host pool of another user than the container's root. */
	ASSERT_EQ(0, as_uid(SP_NOBODY, make_host_pool_nobody));
	EXPECT_EQ(0, ctr_run(true, body_unlink_rights));
	EXPECT_EQ(0, sp_unlink_name(host_name));
}

/* ---- the scope fd of a mounted instance ---- */

static int body_dir_fd(struct ctr *c)
{
	struct shmpool_create cr;
	struct shmpool_info info;
	struct shmpool_api api;
	int dir, fd;

	(void)c;
	dir = open(SCOPE_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	CHILD_CHECK(dir >= 0);
	CHILD_CHECK(sp_get_api(dir, &api) == 0 && api.version == SHMPOOL_API_VERSION);
	memset(&cr, 0, sizeof(cr));
	cr.size = sizeof(cr);
	cr.bytes = sp_page_size();
	cr.mode = 0600;
	sp_set_name(cr.name, ctr_name);
	CHILD_CHECK(sp_ioctl(dir, SHMPOOL_IOC_CREATE, &cr) == 0);
	CHILD_CHECK(sp_info(cr.fd, &info, NULL, 0) == 0 && info.id == cr.id);
	/* The directory is a scope fd: no pool commands. */
	CHILD_CHECK(sp_info(dir, &info, NULL, 0) == -ENOTTY);
	/* Named in this scope, not in the default one. */
	fd = sp_open_dev(O_RDWR);
	CHILD_CHECK(fd >= 0 && sp_open_name(fd, ctr_name, 0, NULL) == -ENOENT);
	close(fd);
	CHILD_CHECK(sp_unlink(dir, ctr_name) == 0);
	close(cr.fd);
	close(dir);
	return 0;
}

TEST_F(scope, directory_fd_is_a_scope_fd)
{
	EXPECT_EQ(0, ctr_run(false, body_dir_fd));
}

/* $SHMPOOL_SCOPE names the scope explicitly. */
static int body_env_scope(struct ctr *c)
{
	struct shmpool *p;

	(void)c;
	CHILD_CHECK(shmpool_create(ctr_name, sp_page_size(), 0600, DEV, &p) == 0);
	shmpool_close(p);
	CHILD_CHECK(!setenv("SHMPOOL_SCOPE", SP_DEV, 1));
	CHILD_CHECK(shmpool_open(ctr_name, DEV, &p) == -ENOENT);
	CHILD_CHECK(!setenv("SHMPOOL_SCOPE", SCOPE_DIR, 1));
	CHILD_CHECK(shmpool_open(ctr_name, DEV, &p) == 0);
	shmpool_close(p);
	/* A directory that is not a shmpool instance is no scope. */
	CHILD_CHECK(!setenv("SHMPOOL_SCOPE", "/dev", 1));
	CHILD_CHECK(shmpool_open(ctr_name, DEV, &p) < 0);
	return 0;
}

TEST_F(scope, scope_from_environment)
{
	EXPECT_EQ(0, ctr_run(false, body_env_scope));
}

/* ---- a read-only mount of a scope: names can be looked at, not changed ---- */

/*
 * Make ctr_name (one page, 0666) on the container's writable instance, then
 * cover it with a read-only bind mount of itself, as a runtime hands a
 * sidecar another container's scope; a scope fd of that mount.
 */
static int ro_scope_fd(void)
{
	struct shmpool *p;
	int dir;

	CHILD_CHECK(shmpool_create(ctr_name, sp_page_size(), 0666, DEV, &p) == 0);
	shmpool_close(p);
	CHILD_CHECK(!mount(SCOPE_DIR, SCOPE_DIR, NULL, MS_BIND, NULL));
	CHILD_CHECK(!mount(NULL, SCOPE_DIR, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL));
	dir = open(SCOPE_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	CHILD_CHECK(dir >= 0);
	return dir;
}

static int body_ro_unlink(struct ctr *c)
{
	char path[128];
	int dir = ro_scope_fd();

	(void)c;
	snprintf(path, sizeof(path), SCOPE_DIR "/%s", ctr_name);
	/* rm says EROFS; the ioctl must say the same, and keep the name */
	CHILD_CHECK(unlink(path) == -1 && errno == EROFS);
	CHILD_CHECK(sp_unlink(dir, ctr_name) == -EROFS);
	CHILD_CHECK(dir_has(SCOPE_DIR, ctr_name));
	close(dir);
	return 0;
}

TEST_F(scope, read_only_scope_unlink_refused)
{
	EXPECT_EQ(0, ctr_run(false, body_ro_unlink));
}

static int body_ro_create(struct ctr *c)
{
	int dir = ro_scope_fd();

	(void)c;
	CHILD_CHECK(sp_create(dir, same_name, sp_page_size(), 0, 0600, NULL) == -EROFS);
	CHILD_CHECK(!dir_has(SCOPE_DIR, same_name));
	/* nor is an existing pool opened read-write by a CREATE */
	CHILD_CHECK(sp_create(dir, ctr_name, sp_page_size(), 0, 0600, NULL) == -EROFS);
	close(dir);
	return 0;
}

TEST_F(scope, read_only_scope_create_refused)
{
	EXPECT_EQ(0, ctr_run(false, body_ro_create));
}

/* An anonymous pool names nothing: a read-only scope still makes one. */
static int body_ro_anon(struct ctr *c)
{
	int fd = ro_scope_fd();

	(void)c;
	CHILD_CHECK(sp_create(fd, NULL, sp_page_size(), 0, 0600, NULL) == 0);
	CHILD_CHECK(mmap(NULL, sp_page_size(), PROT_READ | PROT_WRITE,
			 MAP_SHARED, fd, 0) != MAP_FAILED);
	close(fd);
	return 0;
}

TEST_F(scope, read_only_scope_makes_anonymous_pools)
{
	EXPECT_EQ(0, ctr_run(false, body_ro_anon));
}

/* A caller who could not pay for the pool hears EROFS, not EDQUOT. */
static int create_unpaid_refused(void)
{
	struct rlimit rl = { 0, 0 };
	int fd = open(SCOPE_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	CHILD_CHECK(fd >= 0);
	CHILD_CHECK(setrlimit(RLIMIT_MEMLOCK, &rl) == 0);
	CHILD_CHECK(sp_create(fd, same_name, sp_page_size(), 0, 0600, NULL) == -EROFS);
	close(fd);
	return 0;
}

static int body_ro_create_unpaid(struct ctr *c)
{
	(void)c;
	close(ro_scope_fd());
	CHILD_CHECK(as_uid(1000, create_unpaid_refused) == 0);
	return 0;
}

TEST_F(scope, read_only_scope_create_refused_before_charging)
{
	EXPECT_EQ(0, ctr_run(false, body_ro_create_unpaid));
}

static int body_ro_open(struct ctr *c)
{
	int fd = ro_scope_fd();

	(void)c;
	CHILD_CHECK(sp_open_name(fd, ctr_name, 0, NULL) == -EROFS);
	/* read-only attachments are what such a mount is for */
	CHILD_CHECK(sp_open_name(fd, ctr_name, SHMPOOL_OPEN_RDONLY, NULL) == 0);
	close(fd);
	return 0;
}

TEST_F(scope, read_only_scope_open_read_write_refused)
{
	EXPECT_EQ(0, ctr_run(false, body_ro_open));
}

/* ---- the scope directory's own mode bits, as a directory's ---- */

/* A scope fd of the instance opened before its mode changed. */
static int scope_fd_before_chmod = -1;

/* As container uid 1000: make ctr_name (0666) in the instance. */
static int make_ctr_pool(void)
{
	int fd = open(SCOPE_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	CHILD_CHECK(fd >= 0);
	CHILD_CHECK(sp_create(fd, ctr_name, sp_page_size(), 0, 0666, NULL) == 0);
	close(fd);
	return 0;
}

static mode_t dir_mode;
static int (*dir_step)(void);

/* uid 1000 makes ctr_name; root sets dir_mode; uid 1000 runs dir_step. */
static int body_dir_mode(struct ctr *c)
{
	(void)c;
	CHILD_CHECK(as_uid(1000, make_ctr_pool) == 0);
	scope_fd_before_chmod = open(SCOPE_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	CHILD_CHECK(scope_fd_before_chmod >= 0);
	CHILD_CHECK(!chmod(SCOPE_DIR, dir_mode));
	CHILD_CHECK(as_uid(1000, dir_step) == 0);
	return 0;
}

static int run_dir_mode(mode_t mode, int (*step)(void))
{
	dir_mode = mode;
	dir_step = step;
	return ctr_run(false, body_dir_mode);
}

/* 0755: not writable to others. New names are refused, old ones open. */
static int create_in_0755(void)
{
	int fd = scope_fd_before_chmod;

	CHILD_CHECK(sp_create(fd, same_name, sp_page_size(), 0, 0600, NULL) == -EACCES);
	CHILD_CHECK(!dir_has(SCOPE_DIR, same_name));
	/* as open(O_CREAT) of an existing file, which needs no write access */
	CHILD_CHECK(sp_create(fd, ctr_name, sp_page_size(), SHMPOOL_CREATE_EXCL,
			      0600, NULL) == -EEXIST);
	CHILD_CHECK(sp_create(fd, ctr_name, sp_page_size(), 0, 0600, NULL) == 0);
	return 0;
}

TEST_F(scope, scope_dir_not_writable_refuses_create)
{
	EXPECT_EQ(0, run_dir_mode(0755, create_in_0755));
}

/* ctr_name's path in the instance */
static const char *ctr_path(void)
{
	static char path[128];

	snprintf(path, sizeof(path), SCOPE_DIR "/%s", ctr_name);
	return path;
}

/* Even the pool's owner, as rm says. */
static int unlink_in_0755(void)
{
	CHILD_CHECK(unlink(ctr_path()) == -1 && errno == EACCES);
	CHILD_CHECK(sp_unlink(scope_fd_before_chmod, ctr_name) == -EACCES);
	CHILD_CHECK(dir_has(SCOPE_DIR, ctr_name));
	return 0;
}

TEST_F(scope, scope_dir_not_writable_refuses_unlink)
{
	EXPECT_EQ(0, run_dir_mode(0755, unlink_in_0755));
}

/* 0700: no search, as open(2) of the path says. */
static int open_in_0700(void)
{
	CHILD_CHECK(open(ctr_path(), O_RDONLY | O_CLOEXEC) == -1 && errno == EACCES);
	CHILD_CHECK(sp_open_name(scope_fd_before_chmod, ctr_name,
				 SHMPOOL_OPEN_RDONLY, NULL) == -EACCES);
	return 0;
}

TEST_F(scope, scope_dir_not_searchable_refuses_open)
{
	EXPECT_EQ(0, run_dir_mode(0700, open_in_0700));
}

/*
 * The library must not take the default scope for an instance it may not
 * open: its names would be made where the host and other containers meet.
 */
static int lib_in_0700(void)
{
	struct shmpool *p;

	CHILD_CHECK(shmpool_create(same_name, sp_page_size(), 0600, DEV, &p) == -EACCES);
	CHILD_CHECK(shmpool_open(ctr_name, DEV, &p) == -EACCES);
	return 0;
}

TEST_F(scope, library_keeps_to_unopenable_instance)
{
	struct shmpool *p;

	EXPECT_EQ(0, run_dir_mode(0700, lib_in_0700));
	/* nothing was made in the host's scope meanwhile */
	EXPECT_EQ(-ENOENT, shmpool_open(same_name, DEV, &p));
}

/* ---- a caller the scope cannot represent ---- */

/* Make ctr_name (0666); step: close it. */
static int body_make_0666(struct ctr *c)
{
	struct shmpool *p;

	CHILD_CHECK(shmpool_create(ctr_name, sp_page_size(), 0666,
				   DEV | SHMPOOL_EXCL, &p) == 0);
	ctr_ready(c);
	shmpool_close(p);
	ctr_say(c->up[1]);
	return 0;
}

/* CREATE on a dup of scope fd @dir (sp_create() replaces its fd). */
static int create_in(int dir, const char *name, long bytes)
{
	int fd = dup(dir), ret;

	if (fd < 0)
		return -errno;
	ret = sp_create(fd, name, bytes, 0, 0600, NULL);
	close(fd);
	return ret;
}

/*
 * The host's root has no id in a user-namespaced container's scope, which
 * it reaches through /proc/PID/root. As with open(O_CREAT) there, a new
 * name (or an anonymous pool) is EOVERFLOW, but an existing one opens.
 */
TEST_F(scope, unmapped_caller_create_opens_existing_name)
{
	char dirpath[64], path[128];
	struct ctr c;
	int dir, fd;

	ASSERT_EQ(0, ctr_start(&c, true, body_make_0666));
	ASSERT_EQ(0, ctr_hear(c.up[0]));	/* ctr_name is made */
	snprintf(dirpath, sizeof(dirpath), "/proc/%d/root" SCOPE_DIR, (int)c.pid);
	snprintf(path, sizeof(path), "%s/%s", dirpath, ctr_name);
	dir = open(dirpath, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ASSERT_LE(0, dir);
	/* the VFS: open(O_CREAT) of the existing file opens it... */
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	EXPECT_LE(0, fd);
	if (fd >= 0)
		close(fd);
	/* ...and so does CREATE of the existing name */
	EXPECT_EQ(0, create_in(dir, ctr_name, self->page));
	/* a new name and an anonymous pool: no owner the scope can represent */
	EXPECT_EQ(-EOVERFLOW, create_in(dir, same_name, self->page));
	EXPECT_EQ(-EOVERFLOW, create_in(dir, NULL, self->page));
	close(dir);
	EXPECT_EQ(0, ctr_step(&c));
	EXPECT_EQ(0, ctr_end(&c));
}

/* ---- rejected: a write-only pool fd ---- */

/*
 * A pool fd reads: open(O_WRONLY) is EACCES even where the mode grants
 * write and not read (0622, to others), else WAIT's compare or an exported
 * dma-buf would read the pool past that mode.
 */
static int body_write_only(struct ctr *c)
{
	struct shmpool *p;
	int fd;

	(void)c;
	CHILD_CHECK(shmpool_create(ctr_name, sp_page_size(), 0622, DEV, &p) == 0);
	CHILD_CHECK(open(ctr_path(), O_WRONLY | O_CLOEXEC) == -1 && errno == EACCES);
	fd = open(ctr_path(), O_RDONLY | O_CLOEXEC);
	CHILD_CHECK(fd >= 0);
	close(fd);
	shmpool_close(p);
	return 0;
}

TEST_F(scope, open_write_only_refused)
{
	EXPECT_EQ(0, ctr_run(false, body_write_only));
}

/* The same for a reopen of a pool fd through /proc, anonymous pools too. */
TEST_F(scope, reopen_write_only_refused)
{
	struct shmpool *p;
	char path[64];
	int fd;

	ASSERT_EQ(0, shmpool_create_anon(self->page, DEV, &p));
	snprintf(path, sizeof(path), "/proc/self/fd/%d", p->fd);
	EXPECT_EQ(-1, open(path, O_WRONLY | O_CLOEXEC));
	EXPECT_EQ(EACCES, errno);
	fd = open(path, O_RDWR | O_CLOEXEC);
	EXPECT_LE(0, fd);
	if (fd >= 0)
		close(fd);
	shmpool_close(p);
}

/*
 * CREATE, rm, ls and path walks of one name in a mounted instance, all at
 * once: each CREATE (not EXCL) gets a pool of the right size, whichever
 * pool holds the name; a stat() sees a pool of that size or nothing; an
 * open(2) that finds the name gets a pool fd of that size. The walks leave
 * negative dentries for CREATE to replace, rm takes names away under it.
 * The kernel log is checked after the run (vm-run.sh).
 */
#define RACE_CREATES	3000
/* at most: the debug lane (KASAN) took over 30 s; there a quarter of both */
#define RACE_SECS	20
static uint64_t race_end;	/* CLOCK_MONOTONIC ns; set before the fork */
static int race_creates;	/* RACE_CREATES, or a quarter; ditto */

static int race_walker(const char *path, int mode)
{
	struct stat st;
	int i, fd;

	for (i = 0; i < 4 * race_creates && sp_now_ns(CLOCK_MONOTONIC) < race_end; i++) {
		if (mode == 0) {
			if (!stat(path, &st))
				CHILD_CHECK(st.st_size == sp_page_size());
			else
				CHILD_CHECK(errno == ENOENT);
		} else if (mode == 1) {
			fd = open(path, O_RDWR | O_CLOEXEC);
			if (fd >= 0) {
				CHILD_CHECK(!fstat(fd, &st) && st.st_size == sp_page_size());
				close(fd);
			} else {
				CHILD_CHECK(errno == ENOENT);
			}
		} else if (mode == 2) {
			CHILD_CHECK(!unlink(path) || errno == ENOENT);
		} else {
			dir_has(SCOPE_DIR, ctr_name);
		}
	}
	return 0;
}

static int body_create_races(struct ctr *c)
{
	pid_t kids[4];
	char path[128];
	int dir, i, failed = 0;

	(void)c;
	snprintf(path, sizeof(path), SCOPE_DIR "/%s", ctr_name);
	dir = open(SCOPE_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	CHILD_CHECK(dir >= 0);
	race_creates = (int)lane_debug_quarter(RACE_CREATES);
	race_end = sp_now_ns(CLOCK_MONOTONIC) +
		   (uint64_t)lane_debug_quarter(RACE_SECS * 1000000000L);
	for (i = 0; i < 4; i++) {
		kids[i] = fork();
		CHILD_CHECK(kids[i] >= 0);
		if (!kids[i]) {
			sp_child_init();
			_exit(race_walker(path, i));
		}
	}
	for (i = 0; i < race_creates && sp_now_ns(CLOCK_MONOTONIC) < race_end; i++) {
		struct shmpool_create cr = {
			.size = sizeof(cr), .bytes = sp_page_size(), .mode = 0600,
		};
		int ret;

		sp_set_name(cr.name, ctr_name);
		ret = sp_ioctl(dir, SHMPOOL_IOC_CREATE, &cr);

		if (ret) {
			if (!failed++)
				fprintf(stderr, "# CREATE %d of %d failed: %s\n",
					i, race_creates, strerror(-ret));
			continue;
		}
		close(cr.fd);
	}
	CHILD_CHECK(failed == 0);
	for (i = 0; i < 4; i++)
		CHILD_CHECK(sp_wait(kids[i]) == 0);
	CHILD_CHECK(!unlink(path) || errno == ENOENT);
	close(dir);
	return 0;
}

TEST_F_TIMEOUT(scope, create_races_rm_ls_and_path_walks, 120)
{
	EXPECT_EQ(0, ctr_run(false, body_create_races));
	/* Every pool made went: the name's last one with its rm. */
	if (self->pools >= 0)
		EXPECT_EQ(0, sp_await_counter("pools", self->pools, false, 5000));
}

/* ---- rejected: what only CREATE can do ---- */

static int body_no_creat(struct ctr *c)
{
	(void)c;
	CHILD_CHECK(open(SCOPE_DIR "/made-by-open", O_RDWR | O_CREAT | O_CLOEXEC, 0600) == -1);
	CHILD_CHECK(errno == EACCES);
	return 0;
}

TEST_F(scope, open_o_creat_refused)
{
	EXPECT_EQ(0, ctr_run(false, body_no_creat));
}

static int body_no_mkdir(struct ctr *c)
{
	(void)c;
	CHILD_CHECK(mkdir(SCOPE_DIR "/sub", 0700) == -1 && errno == EPERM);
	return 0;
}

TEST_F(scope, mkdir_refused)
{
	EXPECT_EQ(0, ctr_run(false, body_no_mkdir));
}

static int body_bad_option(struct ctr *c)
{
	(void)c;
	CHILD_CHECK(mount("shmpool", SCOPE_DIR, "shmpool", 0, "size=1") == -1);
	CHILD_CHECK(errno == EINVAL);
	return 0;
}

TEST_F(scope, mount_option_refused)
{
	EXPECT_EQ(0, ctr_run(false, body_bad_option));
}

TEST_HARNESS_MAIN
