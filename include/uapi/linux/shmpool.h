/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * shmpool: physically contiguous shared page pools for unrelated processes.
 *
 * Two kinds of fd. A *scope* fd names a set of pool names: /dev/shmpool
 * (the default scope, an instance the module mounts internally) or the
 * root directory of a mounted instance of the "shmpool" filesystem
 * (open(dir, O_RDONLY | O_DIRECTORY)), which is how a container gets names
 * of its own: each mount(2) of "shmpool" is a new, empty scope, allowed in
 * a user namespace; its admin checks use that namespace. Its names and
 * pools go when its last mount and last open pool fd are gone. The access
 * mode of a scope fd does not matter. SHMPOOL_IOC_CREATE and SHMPOOL_IOC_OPEN
 * on a scope fd return a new *pool* fd, one file per pool: mmap() it
 * (MAP_SHARED only), pass it over a Unix socket, inherit it across fork().
 * Opening a named pool's file in a mounted instance (open("/dev/shmpool.d/
 * requests", O_RDWR)) gives the same kind of pool fd, checked by the VFS.
 * A pool fd always reads: open(2) with O_WRONLY, of a pool's file or of
 * /proc/PID/fd/N, fails with EACCES (a write-only fd could read the pool
 * through WAIT or a dma-buf past a mode that grants no read).
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
 * - E2BIG:  size larger than the kernel's struct with non-zero extra bytes,
 *   or larger than the page size (no struct will ever be that long).
 * - ENOTTY: a command for the other kind of fd: CREATE, OPEN or UNLINK on a
 *   pool fd, or INFO, WAIT, WAKE, WAITV, NOTIFY, ATTACH, DETACH or
 *   EXPORT_DMABUF on a scope fd. API works on both.
 *
 * Per-command errors are listed with each struct.
 */

/**
 * DOC: mmap
 *
 * mmap() of a pool fd maps pool pages; the file offset is the pool offset.
 * A scope fd cannot be mapped (ENODEV).
 *
 * - EINVAL: MAP_PRIVATE (only MAP_SHARED is allowed), or offset + length
 *   beyond the pool.
 * - EOVERFLOW: offset + length beyond the largest file offset (the VFS
 *   checks this before the module sees the call).
 * - EACCES: PROT_WRITE on a read-only attachment; the mapping also lacks
 *   VM_MAYWRITE, so a later mprotect(PROT_WRITE) fails with EACCES.
 * - EPERM:  PROT_EXEC on a pool created without SHMPOOL_CREATE_EXEC (as on
 *   a noexec mount; this includes PROT_READ under the READ_IMPLIES_EXEC
 *   personality). Such mappings also lack VM_MAYEXEC, so a later
 *   mprotect(PROT_EXEC) fails with EACCES. With SHMPOOL_CREATE_EXEC any
 *   attachment, read-only ones too, may map the pool executable.
 *
 * Mappings cannot grow (mremap growth fails with EFAULT, as for any
 * VM_DONTEXPAND mapping) and are left out of core dumps. Touching a page
 * beyond the pool is SIGBUS.
 *
 * What the rest of mm does with a pool mapping (measured on 6.1 and 6.12):
 *
 * - MADV_DONTNEED: 0; the pages fault back from the pool, data intact.
 * - MADV_REMOVE: EOPNOTSUPP (the pool file has no fallocate), or EACCES on a
 *   read-only attachment's mapping; data intact.
 * - MADV_PAGEOUT, MADV_COLD: 0; nothing is reclaimed (pool pages are on no
 *   LRU list), data intact. (HUGE pools: EINVAL, see the Huge mappings DOC.)
 * - mlock(), mlockall(): 0, but the mapping is VM_SPECIAL (VM_DONTEXPAND), so
 *   it gets no VM_LOCKED and is not counted in VmLck; mlock() still faults
 *   the pages in. Pool pages are never swapped anyway.
 * - mremap(): moving works and the pool reference moves with the mapping;
 *   MREMAP_DONTUNMAP is EINVAL.
 * - io_uring IORING_REGISTER_BUFFERS: EOPNOTSUPP on 6.1 (file-backed memory
 *   other than shmem), works on 6.12; a pin outlives the pool safely.
 * - FOLL_FORCE writes (/proc/<pid>/mem, PTRACE_POKEDATA) into a mapping
 *   without PROT_WRITE, read-only attachments included, fail with EIO: the
 *   kernel force-writes only private (COW) mappings, which pools refuse. So
 *   a read-only attachment can never change pool data.
 *
 * First touch: a fault maps the faulting page and the pool pages around it,
 * up to 16 pages (64 KiB) in the same aligned window of the mapping, so a
 * pool touched in order takes about one fault per 16 pages (memfd: one per
 * page). The pages are mapped as refcounted pages: all of the above holds.
 */

/**
 * DOC: Huge mappings
 *
 * A pool created with SHMPOOL_CREATE_HUGE (only where the module reports
 * SHMPOOL_FEAT_HUGE: 6.12 and later with transparent huge pages, on x86-64
 * PMD pfnmaps; not 6.1, not PREEMPT_RT kernels, whose CREATE fails with
 * EOPNOTSUPP) is mapped with one PMD entry per 2 MiB wherever the mapping
 * covers a whole 2 MiB-aligned run of the pool that lies in one extent:
 * one fault and one TLB entry per 2 MiB instead of 512. The rest (a pool
 * size or mapping that is not 2 MiB-aligned, extents the allocator could
 * only give smaller) is mapped with 4 KiB entries as usual.
 *
 * - Allocation: extents of 2 MiB or more start 2 MiB-aligned both
 *   physically and in the pool (buddy blocks are aligned to their size and
 *   the pool is built largest blocks first); a HUGE pool retries harder
 *   (compaction) for 2 MiB blocks before it falls back to smaller ones.
 * - Addresses: where SHMPOOL_FEAT_HUGE is reported, mmap() without
 *   MAP_FIXED places a mapping of 2 MiB or more of any pool at an address
 *   congruent to its offset modulo 2 MiB. With MAP_FIXED the caller
 *   chooses: a misaligned address gets 4 KiB entries.
 * - munmap() or mprotect() of part of a 2 MiB entry drops that entry; the
 *   pages that stay mapped fault back in with 4 KiB entries, data intact.
 *   fork() children see the same pages. madvise() with MADV_DONTNEED,
 *   MADV_COLD, MADV_PAGEOUT, MADV_POPULATE_READ or MADV_POPULATE_WRITE is
 *   EINVAL (as on any VM_PFNMAP mapping), data intact, and MAP_POPULATE
 *   does nothing: pages are mapped by the first touch.
 * - What the flag gives up: the mapping is a VM_PFNMAP mapping of pages
 *   the pool keeps, not of refcounted pages, so nothing can take a
 *   reference on them through it: get_user_pages() fails, so O_DIRECT
 *   reads and writes into the mapping, vmsplice(), process_vm_readv(),
 *   /proc/<pid>/mem, ptrace peeks and io_uring fixed buffers fail with
 *   EFAULT (or EIO for ptrace), and the pages are not counted in
 *   /proc/<pid>/smaps (Rss) or reported by /proc/<pid>/pagemap.
 *   read()/write() of the pool memory to and from ordinary files, sockets
 *   and pipes (copies) work. The mapping is safe without references: the
 *   pool lives until its last mapping is gone.
 */

/*
 * DOC: Pool files
 *
 * Each pool is an inode of a "shmpool" filesystem instance: fstat() of a
 * pool fd gives st_size = pool bytes and the pool's owner, group and mode;
 * /proc/<pid>/maps and /proc/<pid>/fd name it "shmpool:<name>" (named, with
 * " (deleted)" once unlinked) or "shmpool:[anon:<id>]"; fdinfo lists id,
 * name, bytes, mode, rdonly, extents, attached (live attachments) and
 * death-seq. A write through a mapping updates
 * the pool inode's mtime/ctime, never /dev/shmpool's. In a mounted instance,
 * ls, chmod, chown and unlink work on named pools as on files (truncate,
 * read, write, creat and mkdir do not: EPERM, EINVAL, EACCES). fsync(),
 * fdatasync() and msync(MS_SYNC) succeed and do nothing, as on a memfd
 * (nothing to write back). statfs() of an instance reports f_type
 * SHMPOOL_MAGIC.
 */
#define SHMPOOL_TYPE		0xD7
#define SHMPOOL_MAGIC		0x73686d70	/* "shmp": statfs f_type */
#define SHMPOOL_NAME_MAX	64	/* bytes of name[], including the NUL */
#define SHMPOOL_API_VERSION	3

/* Feature bits reported by SHMPOOL_IOC_API. */
#define SHMPOOL_FEAT_NAMED	(1ULL << 0)	/* named pools, OPEN, UNLINK */
#define SHMPOOL_FEAT_CONTIG	(1ULL << 1)	/* SHMPOOL_CREATE_CONTIG */
#define SHMPOOL_FEAT_INFO	(1ULL << 2)	/* SHMPOOL_IOC_INFO + extents */
#define SHMPOOL_FEAT_ACCOUNT	(1ULL << 3)	/* RLIMIT_MEMLOCK + memcg charge */
#define SHMPOOL_FEAT_DOORBELL	(1ULL << 4)	/* WAIT, WAKE, WAITV */
#define SHMPOOL_FEAT_NOTIFY	(1ULL << 5)	/* NOTIFY: doorbell -> eventfd */
#define SHMPOOL_FEAT_EXEC	(1ULL << 6)	/* SHMPOOL_CREATE_EXEC; else no PROT_EXEC */
#define SHMPOOL_FEAT_ATTACH	(1ULL << 7)	/* ATTACH, DETACH, status page, WAIT_DEATH */
#define SHMPOOL_FEAT_DMABUF	(1ULL << 8)	/* EXPORT_DMABUF */
#define SHMPOOL_FEAT_HUGE	(1ULL << 9)	/* SHMPOOL_CREATE_HUGE: PMD mappings */
#define SHMPOOL_FEAT_WAIT_OWNER	(1ULL << 10)	/* SHMPOOL_WAIT_OWNER */

enum {
	SHMPOOL_CMD_BASE = 0x80,
	SHMPOOL_CMD_API = SHMPOOL_CMD_BASE,
	SHMPOOL_CMD_CREATE,
	SHMPOOL_CMD_OPEN,
	SHMPOOL_CMD_UNLINK,
	SHMPOOL_CMD_INFO,
	SHMPOOL_CMD_WAIT,
	SHMPOOL_CMD_WAKE,
	SHMPOOL_CMD_WAITV,
	SHMPOOL_CMD_NOTIFY,
	SHMPOOL_CMD_ATTACH,
	SHMPOOL_CMD_DETACH,
	SHMPOOL_CMD_EXPORT_DMABUF,
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
 * Works on scope and pool fds. Errors: only the common ones.
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
#define SHMPOOL_CREATE_NOCLOEXEC (1U << 2)	/* the pool fd without O_CLOEXEC */
#define SHMPOOL_CREATE_EXEC	(1U << 3)	/* mappings may be PROT_EXEC */
#define SHMPOOL_CREATE_HUGE	(1U << 4)	/* 2 MiB (PMD) mappings, no GUP */

/* SHMPOOL_IOC_CREATE / SHMPOOL_IOC_OPEN out_flags */
#define SHMPOOL_OUT_CREATED	(1U << 0)	/* this call created the pool */

/**
 * struct shmpool_create - SHMPOOL_IOC_CREATE: make a pool, get a pool fd
 * @size: sizeof(struct shmpool_create)
 * @flags: SHMPOOL_CREATE_*
 * @bytes: pool size, a non-zero multiple of the page size
 * @mode: permission bits (0777 at most); the caller's umask is applied as
 *	for shm_open(). As with open(O_CREAT), they govern later opens only:
 *	the call that makes the pool gets a read-write fd whatever they say
 *	(0400, or 0, included). Ignored when an existing pool is opened.
 * @out_flags: out, SHMPOOL_OUT_CREATED if a new pool was made
 * @id: out, the pool's id, unique until the module is unloaded
 * @name: the pool name, NUL-terminated, 1-63 characters of [A-Za-z0-9._-],
 *	not "." or "..", every byte after the NUL zero; all zero for an
 *	anonymous pool, which lives while an fd or mapping holds it
 * @fd: out, a new O_RDWR pool fd (O_CLOEXEC unless SHMPOOL_CREATE_NOCLOEXEC)
 * @__reserved: must be 0
 *
 * Issued on a scope fd; the name is made in that scope. The scope fd stays
 * as it was and can make or open more pools. A named pool lives until
 * SHMPOOL_IOC_UNLINK (or unlink(2) in a mounted instance) and its last user
 * are gone.
 * Without SHMPOOL_CREATE_EXCL an existing pool of that name and size is
 * opened read-write instead (checked like SHMPOOL_IOC_OPEN).
 * Memory is zeroed, charged to the caller's RLIMIT_MEMLOCK (unless
 * CAP_IPC_LOCK) and memory cgroup. Without SHMPOOL_CREATE_CONTIG the pool is
 * made of the largest contiguous extents the buddy allocator gives.
 * Without SHMPOOL_CREATE_EXEC no mapping of the pool can ever be executable
 * (see the mmap DOC); the flag, like the mode, is ignored when an existing
 * pool is opened (INFO's SHMPOOL_POOL_EXEC tells what the pool is).
 *
 * Errors:
 * - EINVAL: bytes 0 or not a page multiple, mode above 0777, a bad name
 *   (see above), SHMPOOL_CREATE_EXCL without a name, or
 *   SHMPOOL_CREATE_CONTIG with bytes above max_contig_bytes.
 * - EEXIST: the name exists and SHMPOOL_CREATE_EXCL was given, or it exists
 *   with a different size.
 * - EACCES: the name exists and the caller may not open it read-write; or
 *   the caller lacks search permission on the scope's directory, or (for a
 *   new name) write permission, as for open(O_CREAT) there. The directory
 *   is 01777 until its owner changes its mode.
 * - EFBIG:  bytes above max_pool_bytes.
 * - ENOSPC: all pools together would exceed max_total_bytes.
 * - EDQUOT: the caller's RLIMIT_MEMLOCK would be exceeded.
 * - ENOMEM: the pages (or, with CONTIG, one contiguous extent) could not be
 *   allocated, or the memory cgroup is at its limit.
 * - EMFILE: the caller has no free fd (RLIMIT_NOFILE); nothing is created,
 *   named or charged, not even for a moment (the fd is taken first, as
 *   open(2) does, so this comes before EEXIST, EACCES, EDQUOT, ...).
 * - EFAULT: the struct cannot be written back; as with EMFILE nothing is
 *   created, named or charged, not even for a moment (the reply is
 *   written before the pool is made).
 * - ENFILE: the system's file limit (fs.file-max) is reached; the pool is
 *   never named, not even for a moment (its file is made before its name).
 * - EOVERFLOW: a new name or an anonymous pool, and the caller's fsuid or
 *   fsgid has no mapping in the scope's user namespace (as for creating a
 *   file there; an existing name opens, as open(O_CREAT) of a file does).
 * - EROFS: a named pool, and the scope fd's mount (or the instance) is
 *   read-only, as for open(O_CREAT) there: checked before anything is
 *   allocated or charged, and an existing pool is not opened either (with
 *   SHMPOOL_CREATE_EXCL an existing name is EEXIST, as for O_EXCL).
 *   Anonymous pools name nothing and are made on any scope fd.
 * - EOPNOTSUPP: SHMPOOL_CREATE_HUGE where the kernel cannot map pool memory
 *   with PMD entries (no SHMPOOL_FEAT_HUGE: 6.1, PREEMPT_RT, no THP; see
 *   the DOC: Huge mappings).
 */
struct shmpool_create {
	__u32 size;
	__u32 flags;
	__aligned_u64 bytes;
	__u32 mode;
	__u32 out_flags;
	__aligned_u64 id;
	char name[SHMPOOL_NAME_MAX];
	__s32 fd;
	__u32 __reserved;
};

#define SHMPOOL_IOC_CREATE	_IO(SHMPOOL_TYPE, SHMPOOL_CMD_CREATE)

/* SHMPOOL_IOC_OPEN flags */
#define SHMPOOL_OPEN_RDONLY	(1U << 0)	/* attach read-only */
#define SHMPOOL_OPEN_NOCLOEXEC	(1U << 1)	/* the pool fd without O_CLOEXEC */

/**
 * struct shmpool_open - SHMPOOL_IOC_OPEN: a pool fd for a named pool
 * @size: sizeof(struct shmpool_open)
 * @flags: SHMPOOL_OPEN_*
 * @bytes: out, the pool size
 * @id: out, the pool id
 * @name: as for struct shmpool_create (must not be empty)
 * @fd: out, a new pool fd, O_RDONLY with SHMPOOL_OPEN_RDONLY, else O_RDWR
 *	(O_CLOEXEC unless SHMPOOL_OPEN_NOCLOEXEC)
 * @__reserved: must be 0
 *
 * Issued on a scope fd; looks the name up in that scope only. Access is
 * decided like a file's (inode_permission()): the pool's owner, group or
 * other mode bits against the caller's fsuid/fsgid, or CAP_DAC_OVERRIDE
 * over the pool's owner, and any LSM. A read-only attachment can never map
 * the pool writable.
 *
 * Errors:
 * - EINVAL: bad name.
 * - ENOENT: no pool of that name in this scope.
 * - EACCES: the mode bits deny the requested access, or the caller lacks
 *   search permission on the scope's directory.
 * - EROFS:  read-write, and the scope fd's mount (or the instance) is
 *   read-only, as for open(O_RDWR) there; SHMPOOL_OPEN_RDONLY works.
 * - EMFILE: the caller has no free fd.
 */
struct shmpool_open {
	__u32 size;
	__u32 flags;
	__aligned_u64 bytes;
	__aligned_u64 id;
	char name[SHMPOOL_NAME_MAX];
	__s32 fd;
	__u32 __reserved;
};

#define SHMPOOL_IOC_OPEN	_IO(SHMPOOL_TYPE, SHMPOOL_CMD_OPEN)

/**
 * struct shmpool_unlink - SHMPOOL_IOC_UNLINK: remove a pool's name
 * @size: sizeof(struct shmpool_unlink)
 * @flags: must be 0
 * @name: as for struct shmpool_create (must not be empty)
 *
 * Issued on a scope fd. The name disappears at once; the memory lives on
 * until the last fd, mapping and waiter is gone, like shm_unlink(). As in a
 * sticky directory, the pool's owner and the scope directory's owner may
 * remove it, and so may a caller with CAP_FOWNER or CAP_SYS_ADMIN in the
 * scope's user namespace (the one that mounted the instance; the initial
 * one for /dev/shmpool).
 *
 * Errors:
 * - EINVAL: bad name.
 * - ENOENT: no pool of that name in this scope.
 * - EACCES: the caller lacks write or search permission on the scope's
 *   directory (as unlink(2) checks before the sticky bit).
 * - EPERM:  none of the above.
 * - EROFS:  the scope fd's mount (or the instance) is read-only, as for
 *   unlink(2) there; the name stays.
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
 *
 * @phys is diagnostics (which memory is this, is it really contiguous), not a
 * way to program a device: behind an IOMMU or SWIOTLB a device does not see
 * physical addresses, and nothing would tie the device's use to the pool's
 * life. To give a pool to a device, export it as a dma-buf
 * (SHMPOOL_IOC_EXPORT_DMABUF).
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
#define SHMPOOL_POOL_EXEC	(1U << 4)	/* created with CREATE_EXEC */
#define SHMPOOL_POOL_HUGE	(1U << 5)	/* created with CREATE_HUGE */

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
 * @attachments: out, open pool files of the pool (counting dups as one)
 * @mappings: out, VMAs mapping it, across all processes
 * @nr_extents: out, how many contiguous extents make the pool
 * @extents_cap: in, room in @extents (entries); may be 0
 * @extents: in, user pointer to an array of struct shmpool_extent; the
 *	first min(@extents_cap, @nr_extents) entries are filled
 * @name: out, the pool name, empty if anonymous
 *
 * Errors: EFAULT if @extents is not writable.
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

/**
 * DOC: Doorbells
 *
 * Doorbells are futexes for pool words: WAIT sleeps while the u32 at a pool
 * offset equals an expected value, WAKE wakes sleepers on that offset. The
 * kernel reads the word from the pool page itself, under the same lock that
 * WAKE takes, so a WAKE issued after the word was changed is never lost.
 * (Plain shared futexes do not work on pool pages: they have no page cache
 * mapping.) Waiters are keyed by (pool, offset): every fd and mapping of a
 * pool reaches the same doorbells; distinct pools never share one.
 *
 * The semantics are futex(2)'s: WAIT (and each WAITV entry) compares the
 * word before it queues, so a call that fails with EAGAIN was never a
 * waiter and no WAKE is spent on it; WAKE takes at most @nr matching
 * sleepers in one pass, in futex's order: real-time (and deadline)
 * sleepers first, higher priority first, then all others (nice does not
 * count); within one priority, in the order they started waiting. A
 * sleeper's priority is the one it had when it started waiting. A spurious
 * wake-up keeps a sleeper's place in that order; a signal does not (the
 * interrupted call leaves the queue and a restarted one queues anew), as
 * with futexes. A frozen sleeper (suspend, cgroup v1 freezer) stays queued
 * and WAKE takes it, as a futex sleeper. A waiter that WAKE took is woken
 * even if the waker is preempted before it wakes that waiter's task: it
 * returns 0 by its deadline, or dies when killed. One difference: WAKE
 * with @nr 0 wakes nobody (futex wakes one).
 *
 * Sleeping waiters are limited per user (module parameter
 * max_waiters_per_user, a WAITV counting one per entry) and so are NOTIFY
 * bindings (max_notify_per_user); past either the call fails with ENOSPC.
 * "Per user" is the caller's uid in the initial user namespace, or, inside
 * user namespaces, the uid owning the outermost of them: every uid of a
 * container counts as one.
 *
 * The offset is a byte offset into the pool, 4-byte aligned, with the word
 * inside the pool. Read-only attachments may WAIT and NOTIFY; WAKE needs a
 * read-write attachment (whoever may not change a word has nothing to
 * announce).
 *
 * A sleeper holds its pool: unlink, closing other fds or munmap do not
 * disturb it, and the memory is freed only after it returns. Killing the
 * sleeping process removes its waiter.
 *
 * Deadlines are absolute, on CLOCK_MONOTONIC unless the REALTIME flag is
 * set (a CLOCK_MONOTONIC deadline is read on the caller's time namespace's
 * clock, as futex and clock_nanosleep read it), so an interrupted call
 * restarts with the same argument: a signal
 * whose handler has SA_RESTART (or no handler) restarts the call; a handler
 * without SA_RESTART makes it fail with EINTR.
 */

/* SHMPOOL_IOC_WAIT / SHMPOOL_IOC_WAITV flags */
#define SHMPOOL_WAIT_DEADLINE	(1U << 0)	/* deadline_ns is set */
#define SHMPOOL_WAIT_REALTIME	(1U << 1)	/* deadline on CLOCK_REALTIME */
#define SHMPOOL_WAIT_DEATH	(1U << 2)	/* WAIT only: also end on a peer's death */
#define SHMPOOL_WAIT_OWNER	(1U << 3)	/* with DEATH: only the word's owner's */

/* Wake every waiter. */
#define SHMPOOL_WAKE_ALL	0xffffffffU
/* Match every waiter (bitset). */
#define SHMPOOL_BITSET_ANY	0xffffffffU

/**
 * struct shmpool_wait - SHMPOOL_IOC_WAIT: sleep while a pool word is unchanged
 * @size: sizeof(struct shmpool_wait)
 * @flags: SHMPOOL_WAIT_*
 * @offset: the word's offset in the fd's pool (4-byte aligned)
 * @expected: sleep only while the word equals this
 * @bitset: non-zero; a WAKE wakes this waiter only if their bitsets
 *	intersect (SHMPOOL_BITSET_ANY for plain use)
 * @deadline_ns: with SHMPOOL_WAIT_DEADLINE, when to give up (absolute)
 *
 * Returns 0 when woken (which, as with futexes, does not promise that the
 * word changed).
 *
 * Errors:
 * - EAGAIN:    the word did not equal @expected.
 * - ETIMEDOUT: the deadline passed (at once if it already had).
 * - EINTR:     a signal handler without SA_RESTART ran.
 * - EINVAL:    @offset misaligned or outside the pool, @bitset 0, unknown
 *   flags, REALTIME without DEADLINE.
 * - ENOSPC:    the word matched, but the caller's user already has
 *   max_waiters_per_user sleeping waiters.
 * - ENOMEM:    out of memory.
 * - EOWNERDEAD: only with SHMPOOL_WAIT_DEATH: an attachment of the pool
 *   ended (its process died, exec()ed or DETACHed) after the pool's
 *   status page said @death_seq, either before the call queued (checked
 *   under the same lock as @expected, so no end is missed; this check
 *   comes before @expected's, so it wins over EAGAIN and ENOSPC) or
 *   while it slept (every WAIT_DEATH sleeper of the pool returns it, none
 *   is counted by a WAKE). Read the status page to see whom it concerns.
 *   With SHMPOOL_WAIT_OWNER too, only the word's owner counts (below).
 * - EINVAL (also): @death_seq non-zero without SHMPOOL_WAIT_DEATH, or
 *   @owner_mask non-zero without SHMPOOL_WAIT_OWNER. WAITV takes neither
 *   SHMPOOL_WAIT_DEATH nor SHMPOOL_WAIT_OWNER (EINVAL).
 *
 * SHMPOOL_WAIT_OWNER (SHMPOOL_FEAT_WAIT_OWNER; only with
 * SHMPOOL_WAIT_DEATH): the word names its owner, an attachment id, in the
 * bits @owner_mask selects (compared with the id as they stand, unshifted),
 * as a robust futex names its owner's thread id in FUTEX_TID_MASK. Then
 * the sleep ends with EOWNERDEAD only when the attachment the word names
 * ends, not at every end in the pool: sleepers on a lock are not woken, and
 * do not lose their place in the wake order, when unrelated processes come
 * and go. The owner is the one the word names when it matters:
 * - EOWNERDEAD at once (under the lock of the @expected compare, before
 *   it, as above) if (@expected & @owner_mask) is not a live attachment
 *   of the pool: it never was one, it ended (ids carry a generation, so a
 *   recycled slot is another id), it is 0, or its ATTACH has not returned.
 * - While asleep, EOWNERDEAD when an attachment ends whose id is what the
 *   word's @owner_mask bits hold at that moment (read under the same lock,
 *   so a lock handed on to another owner while this caller sleeps is
 *   watched in its new owner's name, as a robust futex's owner is read
 *   when a thread dies).
 * @death_seq is not used (the owner's liveness is checked instead of a
 * count of ends) and must be 0.
 * - EINVAL: SHMPOOL_WAIT_OWNER without SHMPOOL_WAIT_DEATH, @owner_mask 0,
 *   or @death_seq non-zero with SHMPOOL_WAIT_OWNER. A module without
 *   SHMPOOL_FEAT_WAIT_OWNER fails any use of it with EINVAL (unknown flag):
 *   fall back to SHMPOOL_WAIT_DEATH alone.
 *
 * @death_seq: with SHMPOOL_WAIT_DEATH alone, the status page's death_seq
 *	the caller last read (see SHMPOOL_IOC_ATTACH); otherwise must be 0.
 * @owner_mask: with SHMPOOL_WAIT_OWNER, the bits of the word that hold its
 *	owner's attachment id (non-zero); must be 0 without it (it was
 *	__reserved before SHMPOOL_FEAT_WAIT_OWNER).
 */
struct shmpool_wait {
	__u32 size;
	__u32 flags;
	__aligned_u64 offset;
	__u32 expected;
	__u32 bitset;
	__aligned_u64 deadline_ns;
	/* since API version 3 (the first version of the struct ends above) */
	__u32 death_seq;
	__u32 owner_mask;
};

#define SHMPOOL_IOC_WAIT	_IO(SHMPOOL_TYPE, SHMPOOL_CMD_WAIT)

/**
 * struct shmpool_wake - SHMPOOL_IOC_WAKE: wake sleepers on a pool word
 * @size: sizeof(struct shmpool_wake)
 * @flags: must be 0
 * @offset: the word's offset (4-byte aligned, inside the pool)
 * @nr: wake at most this many waiters (SHMPOOL_WAKE_ALL: all); 0 wakes none
 *	but still signals NOTIFY eventfds
 * @bitset: non-zero; only waiters whose bitset intersects it are woken
 *
 * Returns the number of waiters woken (eventfds signalled are not counted).
 * Waiters are woken in futex's order (see above): real-time ones first, by
 * priority, then the others; in the order they started waiting within one
 * priority. As with
 * futex_waitv(), each WAITV entry is a waiter of its own: a task waiting on
 * this word through two entries, or one already woken through another word
 * but not yet running, takes a slot of @nr.
 *
 * Errors:
 * - EINVAL: @offset misaligned or outside the pool, @bitset 0, flags.
 * - EPERM:  the fd is a read-only attachment.
 * - ENOMEM: no memory for the list of NOTIFY eventfds to signal (nobody
 *   was woken or signalled).
 */
struct shmpool_wake {
	__u32 size;
	__u32 flags;
	__aligned_u64 offset;
	__u32 nr;
	__u32 bitset;
};

#define SHMPOOL_IOC_WAKE	_IO(SHMPOOL_TYPE, SHMPOOL_CMD_WAKE)

/* The most entries one SHMPOOL_IOC_WAITV may wait on. */
#define SHMPOOL_WAITV_MAX	64

/**
 * struct shmpool_waitv_entry - one word of a SHMPOOL_IOC_WAITV
 * @fd: a pool fd of the pool holding the word, or -1 for the fd the ioctl
 *	is issued on
 * @expected: sleep only while the word equals this
 * @offset: the word's offset in that pool (4-byte aligned)
 * @bitset: as for struct shmpool_wait (non-zero)
 * @__reserved: must be 0
 */
struct shmpool_waitv_entry {
	__s32 fd;
	__u32 expected;
	__aligned_u64 offset;
	__u32 bitset;
	__u32 __reserved;
};

/**
 * struct shmpool_waitv - SHMPOOL_IOC_WAITV: sleep on several pool words
 * @size: sizeof(struct shmpool_waitv)
 * @flags: SHMPOOL_WAIT_*
 * @entries: user pointer to @nr_entries struct shmpool_waitv_entry
 * @nr_entries: 1..SHMPOOL_WAITV_MAX
 * @__reserved: must be 0
 * @deadline_ns: as for struct shmpool_wait
 *
 * Like futex_waitv(): sleeps until any entry is woken. Returns the index of
 * a woken entry (the highest, if several were, as futex_waitv() does).
 *
 * Errors: those of SHMPOOL_IOC_WAIT (EAGAIN if any word differs, also at
 * the limit; ENOSPC if every word matched but @nr_entries more sleeping
 * waiters would exceed max_waiters_per_user), and
 * - EINVAL: @nr_entries 0 or above SHMPOOL_WAITV_MAX, a non-zero reserved
 *   field, an entry fd that is not a pool fd (a scope fd included).
 * - EBADF:  an entry fd that is not open.
 * - EFAULT: @entries not readable.
 */
struct shmpool_waitv {
	__u32 size;
	__u32 flags;
	__aligned_u64 entries;
	__u32 nr_entries;
	__u32 __reserved;
	__aligned_u64 deadline_ns;
};

#define SHMPOOL_IOC_WAITV	_IO(SHMPOOL_TYPE, SHMPOOL_CMD_WAITV)

/* SHMPOOL_IOC_NOTIFY flags: exactly one of these */
#define SHMPOOL_NOTIFY_ADD	(1U << 0)
#define SHMPOOL_NOTIFY_DEL	(1U << 1)

/* The most NOTIFY bindings one fd may hold. */
#define SHMPOOL_NOTIFY_MAX	64

/**
 * struct shmpool_notify - SHMPOOL_IOC_NOTIFY: ring an eventfd on WAKE
 * @size: sizeof(struct shmpool_notify)
 * @flags: SHMPOOL_NOTIFY_ADD or SHMPOOL_NOTIFY_DEL
 * @offset: the word's offset (4-byte aligned, inside the fd's pool)
 * @eventfd: an eventfd; each WAKE on @offset whose bitset intersects
 *	@bitset adds 1 to its counter, whatever WAKE's @nr
 * @bitset: non-zero
 *
 * For event loops: poll the eventfd instead of blocking in WAIT. The eventfd
 * counts WAKEs (it is readable while the count is non-zero, i.e. level-
 * triggered on the eventfd, one count per WAKE). As with WAIT, a WAKE only
 * says "look again": read the eventfd, then re-check the word. A binding
 * belongs to the open file that added it, as an epoll registration does:
 * it lives until DEL or until that file is released, i.e. its last fd is
 * closed (dup()s, fork() children's and SCM_RIGHTS copies of the fd keep
 * it, and DEL works through any of them). DEL with an open
 * @eventfd removes the binding of (@offset, that eventfd); DEL with
 * @eventfd -1 removes every binding of @offset on this fd, which is how a
 * binding is removed after its eventfd was closed (the binding holds the
 * eventfd itself, not the fd number). Eventfds are signalled after WAKE has
 * dropped its lock, so a WAKE already running when DEL returns may still
 * signal that eventfd once.
 *
 * Errors:
 * - EINVAL: flags not exactly one of ADD/DEL, @offset, @bitset 0, @eventfd
 *   not an eventfd.
 * - EBADF:  @eventfd not open (for DEL: neither open nor -1).
 * - EEXIST: ADD of an (offset, eventfd) pair already bound on this fd.
 * - ENOENT: DEL of a pair (or, with -1, an offset) not bound on this fd.
 * - ENOSPC: ADD when this fd already holds SHMPOOL_NOTIFY_MAX bindings, or
 *   the caller's user max_notify_per_user over all its fds.
 * - ENOMEM: out of memory.
 */
struct shmpool_notify {
	__u32 size;
	__u32 flags;
	__aligned_u64 offset;
	__s32 eventfd;
	__u32 bitset;
};

#define SHMPOOL_IOC_NOTIFY	_IO(SHMPOOL_TYPE, SHMPOOL_CMD_NOTIFY)

/**
 * DOC: Attachments
 *
 * An attachment is a process's membership of a pool, issued and ended by
 * the module, so that survivors learn of a peer's death from the kernel at
 * once, without heartbeats, PIDs or polling. ATTACH on a pool fd gives the
 * calling process (its mm: all threads share it) an attachment id in that
 * pool; the same process attaching again gets the same id (counted). The
 * attachment ends when the process DETACHes it as often as it attached,
 * exits, is killed, or exec()s; a fork() child has its parent's id in its
 * memory but no attachment: it must ATTACH for its own (libshmpool does that
 * for you). Closing or unmapping the pool does not end it; the pool's own
 * end does (an attachment does not keep the pool, or the module, alive).
 * "Exits" means the last user of its memory is gone: a vfork() child
 * (CLONE_VM) shares its parent's attachment, and something holding the
 * process's mm (a /proc/<pid>/mem reader, say) delays the end until it
 * lets go.
 *
 * Ids are 1..2^30-1 (so they fit a futex-PI style lock word with two flag
 * bits): the low SHMPOOL_ATTACH_SLOT_BITS bits are a slot of the status page,
 * the rest a per-slot generation. A slot is reused round-robin and its
 * generation advances on every reuse, so an id comes back only after about
 * 2^30 attachments to the pool.
 *
 * The status page is a read-only page the module writes: mmap() the pool fd
 * at SHMPOOL_STATUS_OFFSET, one page, PROT_READ, MAP_SHARED (PROT_WRITE or
 * PROT_EXEC: EACCES; MAP_PRIVATE: EINVAL). It is what peers cannot forge:
 *
 * - id @id is alive exactly while slot[@id & SHMPOOL_ATTACH_SLOT_MASK] == @id;
 * - death_seq grows by one (wrapping) at every attachment end, after the
 *   slot was cleared: read it (acquire), then check the ids you care about,
 *   then sleep with SHMPOOL_WAIT_DEATH and that death_seq, and no death in
 *   between is missed. Every end in the pool ends such a sleep; a lock
 *   whose word names its owner sleeps with SHMPOOL_WAIT_OWNER instead
 *   (struct shmpool_wait), which only the owner's end ends, so processes
 *   that come and go do not wake the lock's sleepers nor reorder them.
 *
 * poll()/epoll on a pool fd reports EPOLLPRI while the pool's death_seq
 * differs from the one this open file last acknowledged (SHMPOOL_IOC_ATTACH
 * with SHMPOOL_ATTACH_ACK, which changes nothing else); a new open file
 * starts with the death_seq of its opening acknowledged. Every attachment
 * end wakes the pool's pollers.
 *
 * A status page mapping keeps the pool alive like any mapping but does not
 * count in struct shmpool_info's @mappings (which counts pool memory).
 *
 * A module built for a kernel without CONFIG_MMU_NOTIFIER (which only KVM,
 * SGX and a few drivers select; every distribution kernel has it) has no
 * attachments: no SHMPOOL_FEAT_ATTACH, and ATTACH and DETACH fail with
 * ENOTTY as on a module before API version 3.
 */
#define SHMPOOL_STATUS_OFFSET	(1ULL << 46)	/* mmap offset of the status page */
#define SHMPOOL_STATUS_MAGIC	0x73747573	/* "stus" */
#define SHMPOOL_ATTACH_SLOT_BITS 10
#define SHMPOOL_ATTACH_SLOT_MASK ((1U << SHMPOOL_ATTACH_SLOT_BITS) - 1)
#define SHMPOOL_ATTACH_ID_MAX	((1U << 30) - 1)
#define SHMPOOL_ATTACH_MAX	1008	/* slots 0..1007: live attachments per pool */

/**
 * struct shmpool_status - the status page (read-only, written by the module)
 * @magic: SHMPOOL_STATUS_MAGIC
 * @nr_slots: SHMPOOL_ATTACH_MAX
 * @death_seq: attachment ends so far (wraps); written after the slot
 * @live: attachments alive now
 * @__reserved: 0
 * @slot: slot[s] is the id of the live attachment in slot s, or 0
 */
struct shmpool_status {
	__u32 magic;
	__u32 nr_slots;
	__u32 death_seq;
	__u32 live;
	__u32 __reserved[12];
	__u32 slot[SHMPOOL_ATTACH_MAX];
};

/* SHMPOOL_IOC_ATTACH flags */
#define SHMPOOL_ATTACH_ACK	(1U << 0)	/* only acknowledge death_seq for poll() */

/**
 * struct shmpool_attach - SHMPOOL_IOC_ATTACH: attach the calling process
 * @size: sizeof(struct shmpool_attach)
 * @flags: 0 or SHMPOOL_ATTACH_ACK
 * @id: out, the process's attachment id (0 with ACK)
 * @death_seq: out, the status page's death_seq now; with ACK it becomes
 *	this file's acknowledged value for poll()
 * @status_offset: out, SHMPOOL_STATUS_OFFSET
 * @__reserved: must be 0
 *
 * Works on read-only pool fds too (an observer is a peer). The first
 * ATTACH of a process takes its mm's lock for writing once, to register
 * the notice of its end; later ones only count.
 *
 * Errors:
 * - EFAULT: the struct cannot be written back: the call changed nothing. A
 *   first ATTACH's id never shows in the status page, not even for a
 *   moment, so no death follows; a repeated ATTACH is not counted; an ACK
 *   acknowledges nothing.
 * - EUSERS: SHMPOOL_ATTACH_MAX attachments are alive in this pool.
 * - EOVERFLOW: this process already attached 2^31 - 1 times without DETACH.
 * - ENOMEM: out of memory.
 */
struct shmpool_attach {
	__u32 size;
	__u32 flags;
	__u32 id;
	__u32 death_seq;
	__aligned_u64 status_offset;
	__aligned_u64 __reserved;
};

#define SHMPOOL_IOC_ATTACH	_IO(SHMPOOL_TYPE, SHMPOOL_CMD_ATTACH)

/**
 * struct shmpool_detach - SHMPOOL_IOC_DETACH: undo one ATTACH
 * @size: sizeof(struct shmpool_detach)
 * @flags: must be 0
 * @id: the id ATTACH gave this process
 * @__reserved: must be 0
 *
 * Returns the attach count left; at 0 the attachment has ended, exactly as
 * if the process had died (peers see it in the status page and their
 * WAIT_DEATH sleeps end).
 *
 * Errors:
 * - ENOENT: @id is not the calling process's live attachment of this pool.
 */
struct shmpool_detach {
	__u32 size;
	__u32 flags;
	__u32 id;
	__u32 __reserved;
};

#define SHMPOOL_IOC_DETACH	_IO(SHMPOOL_TYPE, SHMPOOL_CMD_DETACH)

/**
 * DOC: dma-buf export
 *
 * SHMPOOL_IOC_EXPORT_DMABUF on a pool fd returns a dma-buf fd of the whole
 * pool or of a page-aligned range of it: the kernel's way to give memory to
 * a device (V4L2 V4L2_MEMORY_DMABUF, DRM PRIME, RDMA, ...), correct behind an
 * IOMMU or SWIOTLB, where physical addresses (INFO's @phys) are not.
 *
 * - The dma-buf's memory is the pool's: what a device writes is in the pool
 *   at once for every mapping of it (after the importer's own completion
 *   signal, e.g. V4L2 DQBUF), and the other way round.
 * - An importer's device mapping is a scatter list with one entry per run
 *   of physically contiguous pages (adjacent extents merged), so a
 *   SHMPOOL_CREATE_CONTIG pool is one entry.
 * - mmap() of the dma-buf fd maps the range (MAP_SHARED only: EINVAL; and
 *   PROT_EXEC as on a pool fd: EPERM without SHMPOOL_CREATE_EXEC); the
 *   offset is relative to the range. Such mappings are not counted in
 *   INFO's @mappings. DMA_BUF_IOCTL_SYNC brackets CPU access (it syncs every
 *   device mapping of the dma-buf); kernel importers may vmap it.
 * - Lifetime: the dma-buf, every importer's attachment and mapping of it,
 *   and every mmap() of it keep the pool (and the module) alive; closing
 *   the pool fds, unlinking or unmapping the pool does not end them. The
 *   pool's memory is freed when the last of all these is gone.
 * - Read-only attachments cannot export (EACCES): a dma-buf cannot stop an
 *   importing device from writing.
 * - Each dma-buf is a new file; exporting twice gives two dma-bufs of the
 *   same memory.
 *
 * A module built for a kernel without CONFIG_DMA_SHARED_BUFFER does not
 * report SHMPOOL_FEAT_DMABUF, and EXPORT_DMABUF fails with ENOTTY.
 */

/* SHMPOOL_IOC_EXPORT_DMABUF flags */
#define SHMPOOL_EXPORT_NOCLOEXEC (1U << 0)	/* the dma-buf fd without O_CLOEXEC */

/**
 * struct shmpool_export_dmabuf - SHMPOOL_IOC_EXPORT_DMABUF: a dma-buf of a range
 * @size: sizeof(struct shmpool_export_dmabuf)
 * @flags: 0 or SHMPOOL_EXPORT_NOCLOEXEC
 * @offset: start of the range in the pool (bytes, page-aligned)
 * @length: bytes of the range (non-zero, page-aligned, inside the pool);
 *	the pool's size for the whole pool
 * @fd: out, a new O_RDWR dma-buf fd (O_CLOEXEC unless
 *	SHMPOOL_EXPORT_NOCLOEXEC)
 * @nr_segments: out, entries of the scatter list an importer gets
 *	(physically contiguous runs of the range)
 * @__reserved: must be 0
 *
 * Issued on a read-write pool fd.
 *
 * Errors:
 * - EINVAL: an unknown flag, @__reserved non-zero, @length 0, @offset or
 *   @length not a multiple of the page size, or the range not inside the
 *   pool.
 * - EACCES: the fd is a read-only attachment.
 * - ENOTTY: the module was built without dma-buf support (see the DOC), or
 *   the fd is a scope fd.
 * - ENOMEM: out of memory.
 * - EMFILE, ENFILE: no free fd, or no free file; nothing is exported.
 */
struct shmpool_export_dmabuf {
	__u32 size;
	__u32 flags;
	__aligned_u64 offset;
	__aligned_u64 length;
	__s32 fd;
	__u32 nr_segments;
	__aligned_u64 __reserved;
};

#define SHMPOOL_IOC_EXPORT_DMABUF _IO(SHMPOOL_TYPE, SHMPOOL_CMD_EXPORT_DMABUF)

#endif /* _UAPI_LINUX_SHMPOOL_H */
