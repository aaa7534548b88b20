// SPDX-License-Identifier: MIT
/*
 * Pool handles: argument checks, backend choice, mapping and teardown.
 * The backends (backend_dev.c, backend_memfd.c) only bind an fd to a pool.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

#define SHMPOOL_BACKENDS	(SHMPOOL_BACKEND_DEVICE | SHMPOOL_BACKEND_MEMFD)

int __shmpool_check_name(const char *name)
{
	size_t i;

	if (!name || !name[0])
		return -EINVAL;
	for (i = 0; name[i]; i++) {
		char c = name[i];

		/* explicit ranges: isalnum() would follow the locale */
		if (i == SHMPOOL_NAME_MAX - 1)
			return -EINVAL;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		      c == '-'))
			return -EINVAL;
	}
	/* names are directory entries of the module's scope */
	if (!strcmp(name, ".") || !strcmp(name, ".."))
		return -EINVAL;
	return 0;
}

static int check_size(size_t bytes)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);

	if (!bytes || (bytes & (page - 1)))
		return -EINVAL;
	return 0;
}

/*
 * Choose the backend for one call (flags, then $SHMPOOL_BACKEND, then
 * whether the module's scope opens). For the device, *devfd is returned as
 * an open scope fd (see __shmpool_dev_open_scope()): CREATE and OPEN on it
 * give the pool's own fd.
 */
static int select_backend(unsigned int flags,
			  const struct __shmpool_ops **ops, int *devfd)
{
	unsigned int force = flags & SHMPOOL_BACKENDS;
	const char *env;
	int fd;

	*devfd = -1;
	if (force == SHMPOOL_BACKENDS)
		return -EINVAL;
	if (!force) {
		env = getenv("SHMPOOL_BACKEND");
		if (env && env[0]) {
			if (!strcmp(env, "device"))
				force = SHMPOOL_BACKEND_DEVICE;
			else if (!strcmp(env, "memfd"))
				force = SHMPOOL_BACKEND_MEMFD;
			else
				return -EINVAL;
		}
	}

	if (force != SHMPOOL_BACKEND_MEMFD) {
		fd = __shmpool_dev_open_scope();
		if (fd >= 0) {
			*ops = &__shmpool_dev_ops;
			*devfd = fd;
			return 0;
		}
		if (force) {
			/* no node, or a node without the module behind it */
			if (fd == -ENOENT || fd == -ENXIO || fd == -ENODEV)
				return -ENODEV;
			return fd;
		}
	}
	*ops = &__shmpool_memfd_ops;
	return 0;
}

static struct shmpool *pool_alloc(const struct __shmpool_ops *ops, int fd)
{
	struct shmpool *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->fd = fd;
	p->backend = ops->backend;
	return p;
}

static const struct __shmpool_ops *pool_ops(const struct shmpool *p)
{
	return p->backend == SHMPOOL_BACKEND_DEVICE ? &__shmpool_dev_ops :
						       &__shmpool_memfd_ops;
}

/* A handle on the backend chosen for @flags, p->fd a device scope fd. */
static int pool_new(unsigned int flags, struct shmpool **pp)
{
	const struct __shmpool_ops *ops;
	int ret, devfd;

	ret = select_backend(flags, &ops, &devfd);
	if (ret)
		return ret;
	*pp = pool_alloc(ops, devfd);
	if (!*pp) {
		if (devfd >= 0)
			close(devfd);
		return -ENOMEM;
	}
	return 0;
}

static int pool_free(struct shmpool *p)
{
	int ret = 0;

	if (p->fd >= 0)
		__shmpool_detach(p);
	if (p->base && p->backend == SHMPOOL_BACKEND_MEMFD)
		__shmpool_memfd_unmapping(p);
	if (p->base)
		munmap(p->base, p->size);
	if (p->fd >= 0 && close(p->fd))
		ret = -errno;
	free(p);
	return ret;
}

static int pool_map(struct shmpool *p)
{
	int prot = PROT_READ;
	void *base;

	if (!(p->flags & SHMPOOL_RDONLY))
		prot |= PROT_WRITE;
	base = mmap(NULL, p->size, prot, MAP_SHARED, p->fd, 0);
	if (base == MAP_FAILED)
		return -errno;
	p->base = base;
	if (p->backend == SHMPOOL_BACKEND_MEMFD)
		__shmpool_memfd_mapped(p);	/* a peer's truncation: no SIGBUS */
	return 0;
}

/*
 * Second half of every constructor: map the pool the backend bound to
 * p->fd and hand the handle out, or undo everything. @ret is the backend's.
 */
static int pool_finish(struct shmpool *p, int ret, struct shmpool **out)
{
	if (!ret)
		ret = pool_map(p);
	if (!ret)
		ret = __shmpool_attach(p);
	if (ret) {
		pool_free(p);
		return ret;
	}
	*out = p;
	return 0;
}

/* @name NULL: anonymous */
static int pool_create(const char *name, size_t bytes, unsigned int mode,
		       unsigned int flags, struct shmpool **out)
{
	struct shmpool *p;
	int ret;

	ret = check_size(bytes);
	if (ret)
		return ret;
	ret = pool_new(flags, &p);
	if (ret)
		return ret;
	ret = pool_ops(p)->create(p, name, bytes, mode,
				  flags & (SHMPOOL_EXCL | SHMPOOL_CONTIG |
					   SHMPOOL_EXEC | SHMPOOL_HUGE));
	if (!name)
		p->flags |= __SHMPOOL_F_CREATED;
	return pool_finish(p, ret, out);
}

SHMPOOL_EXPORT
int shmpool_create(const char *name, size_t bytes, unsigned int mode,
		   unsigned int flags, struct shmpool **out)
{
	const unsigned int valid = SHMPOOL_EXCL | SHMPOOL_CONTIG |
				   SHMPOOL_EXEC | SHMPOOL_HUGE | SHMPOOL_BACKENDS;
	int ret;

	if (!out || (flags & ~valid) || (mode & ~0777U))
		return -EINVAL;
	ret = __shmpool_check_name(name);
	if (ret)
		return ret;
	return pool_create(name, bytes, mode, flags, out);
}

SHMPOOL_EXPORT
int shmpool_create_anon(size_t bytes, unsigned int flags,
			struct shmpool **out)
{
	if (!out ||
	    (flags & ~(SHMPOOL_CONTIG | SHMPOOL_EXEC | SHMPOOL_HUGE |
		       SHMPOOL_BACKENDS)))
		return -EINVAL;
	return pool_create(NULL, bytes, 0600, flags, out);
}

SHMPOOL_EXPORT
int shmpool_open(const char *name, unsigned int flags, struct shmpool **out)
{
	struct shmpool *p;
	int ret;

	if (!out || (flags & ~(SHMPOOL_RDONLY | SHMPOOL_BACKENDS)))
		return -EINVAL;
	ret = __shmpool_check_name(name);
	if (ret)
		return ret;
	ret = pool_new(flags, &p);
	if (ret)
		return ret;
	p->flags = flags & SHMPOOL_RDONLY;
	return pool_finish(p, pool_ops(p)->open(p, name, p->flags), out);
}

SHMPOOL_EXPORT
int shmpool_adopt_fd(int fd, unsigned int flags, struct shmpool **out)
{
	const struct __shmpool_ops *ops;
	struct shmpool *p;
	struct stat st;
	int ret, fl;

	if (!out || (flags & ~SHMPOOL_RDONLY))
		return -EINVAL;
	if (fstat(fd, &st))
		return -errno;
	/*
	 * A pool fd of the module is a regular file of a shmpool filesystem;
	 * any other regular file (memfd, /dev/shm) is the memfd backend's.
	 */
	if (__shmpool_dev_is_pool_fd(fd))
		ops = &__shmpool_dev_ops;
	else if (S_ISREG(st.st_mode))
		ops = &__shmpool_memfd_ops;
	else
		return -EINVAL;
	fl = fcntl(fd, F_GETFL);
	if (fl < 0)
		return -errno;

	p = pool_alloc(ops, fd);
	if (!p)
		return -ENOMEM;
	p->flags = flags;
	if ((fl & O_ACCMODE) == O_RDONLY)
		p->flags |= SHMPOOL_RDONLY;
	ret = ops->adopt(p);
	if (!ret)
		ret = pool_map(p);
	if (!ret)
		ret = __shmpool_attach(p);
	if (ret) {
		/* on error the caller keeps @fd */
		__shmpool_detach(p);
		p->fd = -1;
		pool_free(p);
		return ret;
	}
	*out = p;
	return 0;
}

SHMPOOL_EXPORT
int shmpool_close(struct shmpool *p)
{
	if (!p)
		return 0;
	__shmpool_tcache_pool_closing(p);
	return pool_free(p);
}

SHMPOOL_EXPORT
int shmpool_unlink(const char *name, unsigned int flags)
{
	const struct __shmpool_ops *ops;
	int ret, devfd;

	if (flags & ~SHMPOOL_BACKENDS)
		return -EINVAL;
	ret = __shmpool_check_name(name);
	if (ret)
		return ret;
	ret = select_backend(flags, &ops, &devfd);
	if (ret)
		return ret;
	ret = ops->unlink(devfd, name);
	if (devfd >= 0)
		close(devfd);
	return ret;
}

SHMPOOL_EXPORT
int shmpool_info(struct shmpool *p, struct shmpool_pool_info *info)
{
	int ret;

	if (!p || !info)
		return -EINVAL;
	memset(info, 0, sizeof(*info));
	info->backend = p->backend;
	ret = pool_ops(p)->info(p, info);
	if (!ret)
		info->lacks |= __shmpool_doorbell_lacks(p);
	/* no kernel-issued attachments: pid ids, 100 ms looks (shmpool.h) */
	if (!ret && (p->backend != SHMPOOL_BACKEND_DEVICE ||
		     (p->flags & __SHMPOOL_F_NOATTACH)))
		info->lacks |= SHMPOOL_CAP_DEATH_NOTICE;
	return ret;
}

SHMPOOL_EXPORT
int shmpool_extents(struct shmpool *p, struct shmpool_extent *ext,
		    unsigned int cap)
{
	if (!p || (cap && !ext))
		return -EINVAL;
	return pool_ops(p)->extents(p, ext, cap);
}

SHMPOOL_EXPORT
int shmpool_backend(const struct shmpool *p)
{
	return p ? p->backend : -EINVAL;
}

SHMPOOL_EXPORT
const char *shmpool_backend_name(int backend)
{
	switch (backend) {
	case SHMPOOL_BACKEND_DEVICE:
		return "device";
	case SHMPOOL_BACKEND_MEMFD:
		return "memfd";
	default:
		return "unknown";
	}
}

SHMPOOL_EXPORT
int shmpool_fd(const struct shmpool *p)
{
	return p ? p->fd : -EINVAL;
}

SHMPOOL_EXPORT
int shmpool_created(const struct shmpool *p)
{
	if (!p)
		return -EINVAL;
	return !!(p->flags & __SHMPOOL_F_CREATED);
}
