// SPDX-License-Identifier: MIT
/*
 * dma-buf export: give a pool (or a page-aligned range of it) to a device
 * (include/shmpool.h, "dma-buf export"; the kernel side is in the UAPI
 * header, DOC: dma-buf export). Device backend only: a memfd pool has no
 * exporter here (the kernel's udmabuf would be one, but it needs sealed
 * memfds and privileges a pool does not promise).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sys/ioctl.h>

#include "internal.h"

SHMPOOL_EXPORT
int shmpool_export_dmabuf(struct shmpool *p, uint64_t offset, uint64_t length,
			  unsigned int flags)
{
	struct shmpool_export_dmabuf e = {
		.size = sizeof(e),
		.flags = flags,
		.offset = offset,
		.length = length,
	};

	if (!p || (flags & ~SHMPOOL_EXPORT_NOCLOEXEC))
		return -EINVAL;
	if (p->backend != SHMPOOL_BACKEND_DEVICE)
		return -EOPNOTSUPP;
	if (ioctl(p->fd, SHMPOOL_IOC_EXPORT_DMABUF, &e))
		/* ENOTTY: a module without dma-buf export (or before it). */
		return errno == ENOTTY ? -EOPNOTSUPP : -errno;
	return e.fd;
}
