// SPDX-License-Identifier: MIT
/*
 * Device backend: pools of the shmpool kernel module, through the ioctls of
 * include/uapi/linux/shmpool.h. The kernel checks everything again; the
 * library has already validated names, sizes and flags so that both backends
 * reject the same input the same way.
 */
#define _GNU_SOURCE
#include <limits.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "internal.h"

#define MISC_MAJOR	10	/* /dev/shmpool is a misc device */

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
	copy_name(c.name, name);
	if (ioctl(p->fd, SHMPOOL_IOC_CREATE, &c))
		return -errno;
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

/*
 * Only ever send our ioctl to our device: another driver may give
 * SHMPOOL_IOC_INFO's number a meaning of its own. Without a /dev/shmpool
 * node to compare with (e.g. a container that received the fd), settle for
 * a misc device.
 */
static int dev_is_shmpool(int fd)
{
	struct stat st, dev;

	if (fstat(fd, &st))
		return -errno;
	if (!S_ISCHR(st.st_mode))
		return -EINVAL;
	if (!stat(__SHMPOOL_DEV_PATH, &dev) && S_ISCHR(dev.st_mode))
		return st.st_rdev == dev.st_rdev ? 0 : -EINVAL;
	return major(st.st_rdev) == MISC_MAJOR ? 0 : -EINVAL;
}

static int dev_adopt(struct shmpool *p)
{
	struct shmpool_info i;
	int ret;

	ret = dev_is_shmpool(p->fd);
	if (ret)
		return ret;
	/* ENXIO: an unbound /dev/shmpool fd */
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
	struct shmpool_api api = { .size = sizeof(api) };
	struct shmpool_info i;
	int ret;

	if (ioctl(p->fd, SHMPOOL_IOC_API, &api))
		return -errno;
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
	if (!(api.features & SHMPOOL_FEAT_CONTIG))
		info->lacks |= SHMPOOL_CAP_CONTIG;
	if (!(api.features & SHMPOOL_FEAT_ACCOUNT))
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
