/* pool_file_test: each pool is a file of its own: fstat, /proc/<pid>/maps, fd links and fdinfo describe it, and the device inode never changes. */
// SPDX-License-Identifier: GPL-2.0
#define _GNU_SOURCE
#include <inttypes.h>

#include "shmpool_test_util.h"

FIXTURE(file) {
	int fd;			/* a scope fd; a pool fd after sp_create() */
	long page;
	struct shmpool_api api;
	char name[SHMPOOL_NAME_MAX];
};

FIXTURE_SETUP(file)
{
	if (!sp_setup_dev(_metadata, &self->fd, &self->page, &self->api))
		return;
	sp_make_name(self->name, "file");
}

FIXTURE_TEARDOWN(file)
{
	sp_unlink_quiet(self->name);
	close(self->fd);
}

/* Does /proc/self/maps have a line for @addr ending in @want? */
static bool maps_line_for(void *addr, const char *want)
{
	char line[512], start[32];
	bool found = false;
	FILE *f;

	snprintf(start, sizeof(start), "%" PRIxPTR "-", (uintptr_t)addr);
	f = fopen("/proc/self/maps", "re");
	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f)) {
		size_t n = strlen(line), w = strlen(want);

		if (n && line[n - 1] == '\n')
			line[--n] = '\0';
		if (strncmp(line, start, strlen(start)))
			continue;
		found = n >= w && !strcmp(line + n - w, want);
		if (!found)
			fprintf(stderr, "# maps: %s\n", line);
	}
	fclose(f);
	return found;
}

/* The line of /proc/self/fdinfo/@fd starting with @key, value in @val. */
static int fdinfo_get(int fd, const char *key, char *val, size_t len)
{
	char path[64], line[256];
	size_t k = strlen(key);
	int ret = -ENOENT;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, key, k) || line[k] != ':')
			continue;
		line[strcspn(line, "\n")] = '\0';
		snprintf(val, len, "%s", line + k + 1 + strspn(line + k + 1, " \t"));
		ret = 0;
		break;
	}
	fclose(f);
	return ret;
}

/*
 * CVE-2013-0160 (/dev/ptmx): a write fault on a shared mapping updates the
 * mapped file's mtime/ctime. With every pool on the device inode, anyone
 * could watch other users' pool activity in /dev/shmpool's times.
 */
TEST_F(file, write_fault_leaves_device_times)
{
	struct stat before, after;
	char *p;

	ASSERT_EQ(0, stat(SP_DEV, &before));
	ASSERT_EQ(0, sp_create(self->fd, NULL, 4 * self->page, 0, 0600, NULL));
	p = sp_map(self->fd, 4 * self->page, PROT_READ | PROT_WRITE, 0);
	ASSERT_NE(MAP_FAILED, p);
	/* Let the coarse clock tick past the device's last change first. */
	usleep(20000);
	p[0] = 1;
	p[3 * self->page] = 2;
	munmap(p, 4 * self->page);
	ASSERT_EQ(0, stat(SP_DEV, &after));
	EXPECT_EQ(before.st_mtim.tv_sec, after.st_mtim.tv_sec);
	EXPECT_EQ(before.st_mtim.tv_nsec, after.st_mtim.tv_nsec);
	EXPECT_EQ(before.st_ctim.tv_sec, after.st_ctim.tv_sec);
	EXPECT_EQ(before.st_ctim.tv_nsec, after.st_ctim.tv_nsec);
}

/* The write fault's time goes to the pool's own inode instead. */
TEST_F(file, write_fault_updates_pool_mtime)
{
	struct stat before, after;
	char *p;

	ASSERT_EQ(0, sp_create(self->fd, NULL, self->page, 0, 0600, NULL));
	ASSERT_EQ(0, fstat(self->fd, &before));
	p = sp_map(self->fd, self->page, PROT_READ | PROT_WRITE, 0);
	ASSERT_NE(MAP_FAILED, p);
	usleep(20000);
	p[0] = 1;
	munmap(p, self->page);
	ASSERT_EQ(0, fstat(self->fd, &after));
	EXPECT_TRUE(after.st_mtim.tv_sec > before.st_mtim.tv_sec ||
		    (after.st_mtim.tv_sec == before.st_mtim.tv_sec &&
		     after.st_mtim.tv_nsec > before.st_mtim.tv_nsec));
}

TEST_F(file, fstat_reports_size_owner_mode)
{
	mode_t old = umask(022);
	struct stat st;

	ASSERT_EQ(0, sp_create(self->fd, self->name, 3 * self->page, 0, 0664, NULL));
	umask(old);
	ASSERT_EQ(0, fstat(self->fd, &st));
	EXPECT_TRUE(S_ISREG(st.st_mode));
	EXPECT_EQ(0644U, st.st_mode & 07777);
	EXPECT_EQ(3 * self->page, st.st_size);
	EXPECT_EQ(geteuid(), st.st_uid);
	EXPECT_EQ(getegid(), st.st_gid);
	EXPECT_EQ(1U, st.st_nlink);
}

/* Two pools are two inodes, and the device is neither. */
TEST_F(file, pools_are_distinct_inodes)
{
	int other = sp_anon_pool(self->page);
	struct stat a, b, dev;

	ASSERT_GE(other, 0);
	ASSERT_EQ(0, sp_create(self->fd, NULL, self->page, 0, 0600, NULL));
	ASSERT_EQ(0, fstat(self->fd, &a));
	ASSERT_EQ(0, fstat(other, &b));
	ASSERT_EQ(0, stat(SP_DEV, &dev));
	EXPECT_FALSE(a.st_dev == b.st_dev && a.st_ino == b.st_ino);
	EXPECT_FALSE(a.st_dev == dev.st_dev && a.st_ino == dev.st_ino);
	close(other);
}

TEST_F(file, maps_names_named_pool)
{
	char want[SHMPOOL_NAME_MAX + 32];
	char *p;

	ASSERT_EQ(0, sp_create(self->fd, self->name, self->page, 0, 0600, NULL));
	p = sp_map(self->fd, self->page, PROT_READ, 0);
	ASSERT_NE(MAP_FAILED, p);
	snprintf(want, sizeof(want), "shmpool:%s", self->name);
	EXPECT_TRUE(maps_line_for(p, want));
	/* Unlinked, it says so, as a deleted file or memfd would. */
	ASSERT_EQ(0, sp_unlink_name(self->name));
	snprintf(want, sizeof(want), "shmpool:%s (deleted)", self->name);
	EXPECT_TRUE(maps_line_for(p, want));
	munmap(p, self->page);
}

TEST_F(file, maps_names_anonymous_pool)
{
	struct shmpool_create c;
	char want[64];
	char *p;

	ASSERT_EQ(0, sp_create(self->fd, NULL, self->page, 0, 0600, &c));
	p = sp_map(self->fd, self->page, PROT_READ, 0);
	ASSERT_NE(MAP_FAILED, p);
	snprintf(want, sizeof(want), "shmpool:[anon:%llu]", (unsigned long long)c.id);
	EXPECT_TRUE(maps_line_for(p, want));
	munmap(p, self->page);
}

TEST_F(file, fd_link_names_pool)
{
	char path[64], link[128], want[SHMPOOL_NAME_MAX + 16];
	ssize_t n;

	ASSERT_EQ(0, sp_create(self->fd, self->name, self->page, 0, 0600, NULL));
	snprintf(path, sizeof(path), "/proc/self/fd/%d", self->fd);
	n = readlink(path, link, sizeof(link) - 1);
	ASSERT_GT(n, 0);
	link[n] = '\0';
	snprintf(want, sizeof(want), "shmpool:%s", self->name);
	EXPECT_STREQ(want, link);
}

TEST_F(file, fdinfo_describes_pool)
{
	struct shmpool_create c;
	char val[128], want[64];
	int ro;

	ASSERT_EQ(0, sp_create(self->fd, self->name, 2 * self->page,
			       SHMPOOL_CREATE_CONTIG, 0640, &c));
	snprintf(want, sizeof(want), "%llu", (unsigned long long)c.id);
	ASSERT_EQ(0, fdinfo_get(self->fd, "shmpool-id", val, sizeof(val)));
	EXPECT_STREQ(want, val);
	ASSERT_EQ(0, fdinfo_get(self->fd, "shmpool-name", val, sizeof(val)));
	EXPECT_STREQ(self->name, val);
	snprintf(want, sizeof(want), "%ld", 2 * self->page);
	ASSERT_EQ(0, fdinfo_get(self->fd, "shmpool-bytes", val, sizeof(val)));
	EXPECT_STREQ(want, val);
	ASSERT_EQ(0, fdinfo_get(self->fd, "shmpool-mode", val, sizeof(val)));
	EXPECT_STREQ("0640", val);
	ASSERT_EQ(0, fdinfo_get(self->fd, "shmpool-rdonly", val, sizeof(val)));
	EXPECT_STREQ("0", val);
	ASSERT_EQ(0, fdinfo_get(self->fd, "shmpool-extents", val, sizeof(val)));
	EXPECT_STREQ("1", val);
	snprintf(want, sizeof(want), "0 %ld", 2 * self->page);
	ASSERT_EQ(0, fdinfo_get(self->fd, "shmpool-extent", val, sizeof(val)));
	EXPECT_STREQ(want, val);

	ro = sp_open_dev(O_RDWR);
	ASSERT_GE(ro, 0);
	ASSERT_EQ(0, sp_open_name(ro, self->name, SHMPOOL_OPEN_RDONLY, NULL));
	ASSERT_EQ(0, fdinfo_get(ro, "shmpool-rdonly", val, sizeof(val)));
	EXPECT_STREQ("1", val);
	close(ro);
}

/* chmod on the pool fd is chmod of the pool: INFO and later OPENs see it. */
TEST_F(file, fchmod_changes_pool_mode)
{
	struct shmpool_info info;

	ASSERT_EQ(0, sp_create(self->fd, self->name, self->page, 0, 0600, NULL));
	ASSERT_EQ(0, fchmod(self->fd, 0604));
	ASSERT_EQ(0, sp_info(self->fd, &info, NULL, 0));
	EXPECT_EQ(0604U, info.mode);
}

/* A pool's size is fixed: ftruncate, read and write are refused. */
TEST_F(file, ftruncate_refused)
{
	ASSERT_EQ(0, sp_create(self->fd, NULL, self->page, 0, 0600, NULL));
	EXPECT_EQ(-1, ftruncate(self->fd, 2 * self->page));
	EXPECT_EQ(EPERM, errno);
}

TEST_F(file, write_refused)
{
	char b = 0;

	ASSERT_EQ(0, sp_create(self->fd, NULL, self->page, 0, 0600, NULL));
	EXPECT_EQ(-1, write(self->fd, &b, 1));
	EXPECT_EQ(EINVAL, errno);
}

TEST_F(file, read_refused)
{
	char b;

	ASSERT_EQ(0, sp_create(self->fd, NULL, self->page, 0, 0600, NULL));
	EXPECT_EQ(-1, read(self->fd, &b, 1));
	EXPECT_EQ(EINVAL, errno);
}

/*
 * msync(MS_SYNC) of a shared file mapping writes it back through the file's
 * fsync; a pool has nothing to write back, so it succeeds as on a memfd
 * (EINVAL is msync(2)'s error for bad flags or a misaligned address).
 */
TEST_F(file, msync_sync_succeeds)
{
	char *p;

	ASSERT_EQ(0, sp_create(self->fd, NULL, 2 * self->page, 0, 0600, NULL));
	p = sp_map(self->fd, 2 * self->page, PROT_READ | PROT_WRITE, 0);
	ASSERT_NE(MAP_FAILED, p);
	p[self->page] = 7;
	EXPECT_EQ(0, msync(p, 2 * self->page, MS_SYNC));
	EXPECT_EQ(7, p[self->page]);
	munmap(p, 2 * self->page);
}

/* fsync() and fdatasync() of a pool fd, read-only ones too: 0, as on a memfd. */
TEST_F(file, fsync_succeeds)
{
	int ro;

	ASSERT_EQ(0, sp_create(self->fd, self->name, self->page,
			       SHMPOOL_CREATE_EXCL, 0600, NULL));
	EXPECT_EQ(0, fsync(self->fd));
	EXPECT_EQ(0, fdatasync(self->fd));
	ro = sp_open_dev(O_RDWR);
	ASSERT_GE(ro, 0);
	ASSERT_EQ(0, sp_open_name(ro, self->name, SHMPOOL_OPEN_RDONLY, NULL));
	EXPECT_EQ(0, fsync(ro));
	close(ro);
}

TEST_HARNESS_MAIN
