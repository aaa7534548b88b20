/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * shmpool: physically contiguous shared page pools for unrelated processes.
 *
 * Userspace opens /dev/shmpool; the open file is unbound until
 * SHMPOOL_IOC_CREATE or SHMPOOL_IOC_OPEN binds it to a pool. From then on
 * the fd *is* the pool: mmap() it (MAP_SHARED only), pass it over a Unix
 * socket, inherit it across fork().
 */
#ifndef _UAPI_LINUX_SHMPOOL_H
#define _UAPI_LINUX_SHMPOOL_H

#include <linux/types.h>
#include <linux/ioctl.h>

/**
 * DOC: General ioctl format and errors
 *
 * Every ioctl takes a pointer to a struct whose first member is
 * ``__u32 size`` (set by the caller to sizeof the struct it was compiled
 * with) and whose second is ``__u32 flags``. The kernel accepts any size at
 * least as large as the first version of the struct: a shorter struct
 * (or a size below that) fails with EINVAL; a longer struct whose bytes
 * beyond what this kernel knows are all zero behaves exactly like the known
 * size; a non-zero byte there fails with E2BIG. Output members are written
 * back only up to min(size, the kernel's size).
 *
 * Errors common to every command:
 *
 * - ENOTTY: unknown command.
 * - EFAULT: the argument or a pointer inside it is not readable/writable.
 * - EINVAL: size too small, an unknown flag bit, a non-zero reserved field,
 *   or a field out of its documented range.
 * - E2BIG:  size larger than the kernel's struct with non-zero extra bytes.
 * - ENXIO:  a command that needs a bound pool was issued on an unbound fd.
 * - EBUSY:  CREATE or OPEN on an fd that is already bound to a pool.
 * - EBADF:  a command that needs write access on an fd not opened O_RDWR.
 *
 * Per-command errors are listed with each struct.
 */

/**
 * DOC: mmap
 *
 * mmap() of a bound fd maps pool pages; the file offset is the pool offset.
 *
 * - EINVAL: MAP_PRIVATE (only MAP_SHARED is allowed), or offset + length
 *   beyond the pool.
 * - EACCES: PROT_WRITE on a read-only attachment; the mapping also lacks
 *   VM_MAYWRITE, so a later mprotect(PROT_WRITE) fails with EACCES.
 * - ENXIO:  the fd is not bound to a pool.
 *
 * Mappings cannot grow (mremap growth fails with EFAULT or ENOMEM, as for
 * any VM_DONTEXPAND mapping) and are left out of core dumps. Touching a page
 * beyond the pool is SIGBUS.
 */

#define SHMPOOL_TYPE		0xCE
#define SHMPOOL_NAME_MAX	64	/* bytes of name[], including the NUL */
#define SHMPOOL_API_VERSION	1

/* Feature bits reported by SHMPOOL_IOC_API. */
#define SHMPOOL_FEAT_NAMED	(1ULL << 0)	/* named pools, OPEN, UNLINK */
#define SHMPOOL_FEAT_CONTIG	(1ULL << 1)	/* SHMPOOL_CREATE_CONTIG */
#define SHMPOOL_FEAT_INFO	(1ULL << 2)	/* SHMPOOL_IOC_INFO + extents */
#define SHMPOOL_FEAT_ACCOUNT	(1ULL << 3)	/* RLIMIT_MEMLOCK + memcg charge */

enum {
	SHMPOOL_CMD_BASE = 0x80,
	SHMPOOL_CMD_API = SHMPOOL_CMD_BASE,
	SHMPOOL_CMD_CREATE,
	SHMPOOL_CMD_OPEN,
	SHMPOOL_CMD_UNLINK,
	SHMPOOL_CMD_INFO,
};

/**
 * struct shmpool_api - SHMPOOL_IOC_API: what this module supports
 * @size: sizeof(struct shmpool_api)
 * @flags: must be 0
 * @version: out, SHMPOOL_API_VERSION of the running module
 * @max_name_len: out, longest pool name in characters (63)
 * @features: out, SHMPOOL_FEAT_* bits
 * @max_pool_bytes: out, the largest pool one CREATE may ask for
 *	(module parameter max_pool_mb)
 * @max_total_bytes: out, cap on all pools together (module parameter
 *	max_total_mb)
 * @max_contig_bytes: out, the largest pool SHMPOOL_CREATE_CONTIG can give
 *	(the buddy allocator's largest order)
 * @page_size: out, PAGE_SIZE; pool sizes and mmap offsets are multiples of it
 * @__reserved: must be 0
 *
 * Works on an unbound fd. Errors: only the common ones.
 */
struct shmpool_api {
	__u32 size;
	__u32 flags;
	__u32 version;
	__u32 max_name_len;
	__aligned_u64 features;
	__aligned_u64 max_pool_bytes;
	__aligned_u64 max_total_bytes;
	__aligned_u64 max_contig_bytes;
	__u32 page_size;
	__u32 __reserved;
};

#define SHMPOOL_IOC_API		_IO(SHMPOOL_TYPE, SHMPOOL_CMD_API)

/* SHMPOOL_IOC_CREATE flags */
#define SHMPOOL_CREATE_EXCL	(1U << 0)	/* fail if the name exists */
#define SHMPOOL_CREATE_CONTIG	(1U << 1)	/* one physically contiguous extent */

/* SHMPOOL_IOC_CREATE / SHMPOOL_IOC_OPEN out_flags */
#define SHMPOOL_OUT_CREATED	(1U << 0)	/* this call created the pool */

/**
 * struct shmpool_create - SHMPOOL_IOC_CREATE: make a pool, bind the fd to it
 * @size: sizeof(struct shmpool_create)
 * @flags: SHMPOOL_CREATE_*
 * @bytes: pool size, a non-zero multiple of the page size
 * @mode: permission bits (0777 at most); the caller's umask is applied as
 *	for shm_open(). Ignored when an existing pool is opened.
 * @out_flags: out, SHMPOOL_OUT_CREATED if a new pool was made
 * @id: out, the pool's id, unique until the module is unloaded
 * @name: the pool name, NUL-terminated, 1-63 characters of [A-Za-z0-9._-],
 *	every byte after the NUL zero; all zero for an anonymous pool, which
 *	lives while an fd or mapping holds it
 *
 * A named pool lives until SHMPOOL_IOC_UNLINK and its last user are gone.
 * Without SHMPOOL_CREATE_EXCL an existing pool of that name and size is
 * opened read-write instead (checked like SHMPOOL_IOC_OPEN).
 * Memory is zeroed, charged to the caller's RLIMIT_MEMLOCK (unless
 * CAP_IPC_LOCK) and memory cgroup. Without SHMPOOL_CREATE_CONTIG the pool is
 * made of the largest contiguous extents the buddy allocator gives.
 *
 * Errors:
 * - EINVAL: bytes 0 or not a page multiple, mode above 0777, a bad name
 *   (see above), SHMPOOL_CREATE_EXCL without a name, or
 *   SHMPOOL_CREATE_CONTIG with bytes above max_contig_bytes.
 * - EEXIST: the name exists and SHMPOOL_CREATE_EXCL was given, or it exists
 *   with a different size.
 * - EACCES: the name exists and the caller may not open it read-write.
 * - EFBIG:  bytes above max_pool_bytes.
 * - ENOSPC: all pools together would exceed max_total_bytes.
 * - EDQUOT: the caller's RLIMIT_MEMLOCK would be exceeded.
 * - ENOMEM: the pages (or, with CONTIG, one contiguous extent) could not be
 *   allocated, or the memory cgroup is at its limit.
 * - EBADF:  the fd was not opened O_RDWR.
 */
struct shmpool_create {
	__u32 size;
	__u32 flags;
	__aligned_u64 bytes;
	__u32 mode;
	__u32 out_flags;
	__aligned_u64 id;
	char name[SHMPOOL_NAME_MAX];
};

#define SHMPOOL_IOC_CREATE	_IO(SHMPOOL_TYPE, SHMPOOL_CMD_CREATE)

/* SHMPOOL_IOC_OPEN flags */
#define SHMPOOL_OPEN_RDONLY	(1U << 0)	/* attach read-only */

/**
 * struct shmpool_open - SHMPOOL_IOC_OPEN: bind the fd to a named pool
 * @size: sizeof(struct shmpool_open)
 * @flags: SHMPOOL_OPEN_*
 * @bytes: out, the pool size
 * @id: out, the pool id
 * @name: as for struct shmpool_create (must not be empty)
 *
 * Access is decided like a file's: the pool's owner, group or other mode
 * bits against the caller's fsuid/fsgid, or CAP_DAC_OVERRIDE. A read-only
 * attachment can never map the pool writable.
 *
 * Errors:
 * - EINVAL: bad name.
 * - ENOENT: no pool of that name.
 * - EACCES: the mode bits deny the requested access.
 * - EBADF:  read-write requested on an fd not opened O_RDWR.
 */
struct shmpool_open {
	__u32 size;
	__u32 flags;
	__aligned_u64 bytes;
	__aligned_u64 id;
	char name[SHMPOOL_NAME_MAX];
};

#define SHMPOOL_IOC_OPEN	_IO(SHMPOOL_TYPE, SHMPOOL_CMD_OPEN)

/**
 * struct shmpool_unlink - SHMPOOL_IOC_UNLINK: remove a pool's name
 * @size: sizeof(struct shmpool_unlink)
 * @flags: must be 0
 * @name: as for struct shmpool_create (must not be empty)
 *
 * The name disappears at once; the memory lives on until the last fd,
 * mapping and waiter is gone, like shm_unlink(). Works on any fd, bound or
 * not.
 *
 * Errors:
 * - EINVAL: bad name.
 * - ENOENT: no pool of that name.
 * - EPERM:  the caller is neither the pool's owner nor CAP_SYS_ADMIN.
 */
struct shmpool_unlink {
	__u32 size;
	__u32 flags;
	char name[SHMPOOL_NAME_MAX];
};

#define SHMPOOL_IOC_UNLINK	_IO(SHMPOOL_TYPE, SHMPOOL_CMD_UNLINK)

/**
 * struct shmpool_extent - one physically contiguous piece of a pool
 * @offset: where it starts in the pool (bytes)
 * @bytes: its length
 * @phys: its physical address for CAP_SYS_ADMIN callers, 0 for others
 */
struct shmpool_extent {
	__aligned_u64 offset;
	__aligned_u64 bytes;
	__aligned_u64 phys;
};

/* struct shmpool_info pool_flags */
#define SHMPOOL_POOL_NAMED	(1U << 0)	/* has (or had) a name */
#define SHMPOOL_POOL_UNLINKED	(1U << 1)	/* its name was removed */
#define SHMPOOL_POOL_CONTIG	(1U << 2)	/* created with CREATE_CONTIG */
#define SHMPOOL_POOL_RDONLY	(1U << 3)	/* this fd is attached read-only */

/**
 * struct shmpool_info - SHMPOOL_IOC_INFO: describe the fd's pool
 * @size: sizeof(struct shmpool_info)
 * @flags: must be 0
 * @bytes: out, pool size
 * @id: out, pool id
 * @pool_flags: out, SHMPOOL_POOL_*
 * @mode: out, permission bits
 * @uid: out, owner (in the caller's user namespace)
 * @gid: out, group
 * @attachments: out, fds bound to the pool (counting dups as one)
 * @mappings: out, VMAs mapping it, across all processes
 * @nr_extents: out, how many contiguous extents make the pool
 * @extents_cap: in, room in @extents (entries); may be 0
 * @extents: in, user pointer to an array of struct shmpool_extent; the
 *	first min(@extents_cap, @nr_extents) entries are filled
 * @name: out, the pool name, empty if anonymous
 *
 * Errors: ENXIO on an unbound fd; EFAULT if @extents is not writable.
 */
struct shmpool_info {
	__u32 size;
	__u32 flags;
	__aligned_u64 bytes;
	__aligned_u64 id;
	__u32 pool_flags;
	__u32 mode;
	__u32 uid;
	__u32 gid;
	__u32 attachments;
	__u32 mappings;
	__u32 nr_extents;
	__u32 extents_cap;
	__aligned_u64 extents;
	char name[SHMPOOL_NAME_MAX];
};

#define SHMPOOL_IOC_INFO	_IO(SHMPOOL_TYPE, SHMPOOL_CMD_INFO)

#endif /* _UAPI_LINUX_SHMPOOL_H */
