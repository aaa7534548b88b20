// SPDX-License-Identifier: MIT
/*
 * Device backend: pools of the shmpool kernel module, through the ioctls of
 * include/uapi/linux/shmpool.h. The kernel checks everything again; the
 * library has already validated names, sizes and flags so that both backends
 * reject the same input the same way.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>

#include "internal.h"

static bool is_shmpool_fs(int fd)
{
	struct statfs sfs;

	return !fstatfs(fd, &sfs) && sfs.f_type == SHMPOOL_MAGIC;
}

/*
 * A scope is either the device node (the module's default scope) or the
 * root directory of a mounted shmpool instance. A directory that is not one
 * (nothing mounted on /dev/shmpool.d) is not a scope: -ENOENT unless @must.
 * An instance that is mounted there but does not open for us (its mode) is
 * the scope all the same: its error, so that the caller never makes names
 * in the default scope instead, where the host and other containers meet.
 */
static int open_scope(const char *path, bool must)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct statfs sfs;
	struct stat st;

	if (fd < 0) {
		int err = errno;

		if (must || (!statfs(path, &sfs) && sfs.f_type == SHMPOOL_MAGIC))
			return -err;
		return -ENOENT;
	}
	if (!fstat(fd, &st) && (S_ISCHR(st.st_mode) ||
				(S_ISDIR(st.st_mode) && is_shmpool_fs(fd))))
		return fd;
	close(fd);
	return must ? -EINVAL : -ENOENT;
}

int __shmpool_dev_open_scope(void)
{
	const char *env = getenv("SHMPOOL_SCOPE");
	int fd;

	if (env && env[0])
		return open_scope(env, true);
	fd = open_scope(__SHMPOOL_SCOPE_DIR, false);
	if (fd != -ENOENT)
		return fd;
	return open_scope(__SHMPOOL_DEV_PATH, true);
}

bool __shmpool_dev_is_pool_fd(int fd)
{
	struct stat st;

	return !fstat(fd, &st) && S_ISREG(st.st_mode) && is_shmpool_fs(fd);
}

/*
 * What the module supports, asked once per handle, of its pool fd: every
 * constructor calls this before the handle is handed out, and nothing
 * writes p->__api_err or p->__features after, so the readers (shmpool_info(),
 * the owner waits of attach.c) need no ordering beyond what publishes the
 * handle; a fork() child inherits both with the handle. A module that fails
 * the ioctl leaves __features 0: no feature is assumed, and shmpool_info()
 * fails with the error.
 */
static void read_api(struct shmpool *p)
{
	struct shmpool_api api = { .size = sizeof(api) };

	if (ioctl(p->fd, SHMPOOL_IOC_API, &api))
		p->__api_err = -errno;
	else
		p->__features = api.features;
}

/* The pool fd @fd replaces the scope fd in p->fd. */
static void take_pool_fd(struct shmpool *p, int fd)
{
	close(p->fd);
	p->fd = fd;
	read_api(p);
}

/* @name is already validated: shorter than SHMPOOL_NAME_MAX */
static void copy_name(char dst[SHMPOOL_NAME_MAX], const char *name)
{
	memset(dst, 0, SHMPOOL_NAME_MAX);
	if (name)
		memcpy(dst, name, strlen(name));
}

static int dev_create(struct shmpool *p, const char *name, uint64_t bytes,
		      unsigned int mode, unsigned int flags)
{
	struct shmpool_create c = {
		.size = sizeof(c),
		.bytes = bytes,
		.mode = mode,
	};

	if (flags & SHMPOOL_EXCL)
		c.flags |= SHMPOOL_CREATE_EXCL;
	if (flags & SHMPOOL_CONTIG)
		c.flags |= SHMPOOL_CREATE_CONTIG;
	if (flags & SHMPOOL_EXEC)
		c.flags |= SHMPOOL_CREATE_EXEC;
	if (flags & SHMPOOL_HUGE)
		c.flags |= SHMPOOL_CREATE_HUGE;
	copy_name(c.name, name);
	if (ioctl(p->fd, SHMPOOL_IOC_CREATE, &c))
		return -errno;
	take_pool_fd(p, c.fd);
	if (c.out_flags & SHMPOOL_OUT_CREATED)
		p->flags |= __SHMPOOL_F_CREATED;
	p->id = c.id;
	copy_name(p->name, name);
	/* an existing pool is opened only if its size is @bytes */
	return __shmpool_set_size(p, bytes);
}

static int dev_open(struct shmpool *p, const char *name, unsigned int flags)
{
	struct shmpool_open o = {
		.size = sizeof(o),
		.flags = (flags & SHMPOOL_RDONLY) ? SHMPOOL_OPEN_RDONLY : 0,
	};

	copy_name(o.name, name);
	if (ioctl(p->fd, SHMPOOL_IOC_OPEN, &o))
		return -errno;
	take_pool_fd(p, o.fd);
	p->id = o.id;
	copy_name(p->name, name);
	return __shmpool_set_size(p, o.bytes);
}

static int dev_unlink(int devfd, const char *name)
{
	struct shmpool_unlink u = { .size = sizeof(u) };

	copy_name(u.name, name);
	return ioctl(devfd, SHMPOOL_IOC_UNLINK, &u) ? -errno : 0;
}

/* INFO into @i, with room for @cap extents at @ext */
static int dev_query(int fd, struct shmpool_info *i,
		     struct shmpool_extent *ext, unsigned int cap)
{
	memset(i, 0, sizeof(*i));
	i->size = sizeof(*i);
	i->extents_cap = cap;
	i->extents = (uintptr_t)ext;
	if (ioctl(fd, SHMPOOL_IOC_INFO, i))
		return -errno;
	i->name[SHMPOOL_NAME_MAX - 1] = '\0';
	return 0;
}

static int dev_adopt(struct shmpool *p)
{
	struct shmpool_info i;
	int ret;

	/*
	 * Only ever send our ioctl to our files: another driver may give
	 * SHMPOOL_IOC_INFO's number a meaning of its own.
	 */
	if (!__shmpool_dev_is_pool_fd(p->fd))
		return -EINVAL;
	read_api(p);
	ret = dev_query(p->fd, &i, NULL, 0);
	if (ret)
		return ret;
	if (i.pool_flags & SHMPOOL_POOL_RDONLY)
		p->flags |= SHMPOOL_RDONLY;
	p->id = i.id;
	memcpy(p->name, i.name, SHMPOOL_NAME_MAX);
	return __shmpool_set_size(p, i.bytes);
}

static int dev_info(struct shmpool *p, struct shmpool_pool_info *info)
{
	struct shmpool_info i;
	int ret;

	if (p->__api_err)
		return p->__api_err;
	ret = dev_query(p->fd, &i, NULL, 0);
	if (ret)
		return ret;

	info->bytes = i.bytes;
	info->id = i.id;
	info->flags = i.pool_flags;
	info->mode = i.mode;
	info->uid = i.uid;
	info->gid = i.gid;
	info->attachments = i.attachments;
	info->mappings = i.mappings;
	info->nr_extents = i.nr_extents;
	memcpy(info->name, i.name, SHMPOOL_NAME_MAX);
	if (!(p->__features & SHMPOOL_FEAT_CONTIG))
		info->lacks |= SHMPOOL_CAP_CONTIG;
	if (!(p->__features & SHMPOOL_FEAT_ACCOUNT))
		info->lacks |= SHMPOOL_CAP_ACCOUNTING;
	return 0;
}

static int dev_extents(struct shmpool *p, struct shmpool_extent *ext,
		       unsigned int cap)
{
	struct shmpool_info i;
	int ret;

	ret = dev_query(p->fd, &i, ext, cap);
	if (ret)
		return ret;
	return i.nr_extents > INT_MAX ? INT_MAX : (int)i.nr_extents;
}

const struct __shmpool_ops __shmpool_dev_ops = {
	.backend = SHMPOOL_BACKEND_DEVICE,
	.create = dev_create,
	.open = dev_open,
	.unlink = dev_unlink,
	.adopt = dev_adopt,
	.info = dev_info,
	.extents = dev_extents,
};
