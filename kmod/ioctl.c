// SPDX-License-Identifier: GPL-2.0
/*
 * ioctl dispatch: one table entry per command gives the struct's size and
 * its first version's size, so every command gets the same size, extension
 * and copy rules (see the UAPI header's "General ioctl format" DOC).
 */
#include <linux/capability.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/kernel.h>
#include <linux/mm.h>
#include <linux/pfn.h>
#include <linux/slab.h>
#include <linux/stddef.h>
#include <linux/uaccess.h>

#include "compat.h"
#include "shmpool.h"

union shmpool_ucmd_buffer {
	struct shmpool_api api;
	struct shmpool_create create;
	struct shmpool_open open;
	struct shmpool_unlink unlink;
	struct shmpool_info info;
	struct shmpool_wait wait;
	struct shmpool_wake wake;
	struct shmpool_waitv waitv;
	struct shmpool_notify notify;
	struct shmpool_attach attach;
	struct shmpool_detach detach;
	struct shmpool_export_dmabuf export_dmabuf;
};

struct shmpool_ucmd {
	struct file *filp;
	struct shmpool_file *sf;	/* pool fds */
	struct path scope;		/* scope fds */
	void __user *ubuffer;
	u32 user_size;
	void *cmd;
};

/* Copy the (possibly updated) struct back, no more than the user gave. */
static int shmpool_ucmd_respond(struct shmpool_ucmd *ucmd, size_t len)
{
	if (copy_to_user(ucmd->ubuffer, ucmd->cmd, min_t(size_t, ucmd->user_size, len)))
		return -EFAULT;
	return 0;
}

static int shmpool_cmd_api(struct shmpool_ucmd *ucmd)
{
	struct shmpool_api *cmd = ucmd->cmd;

	if (cmd->flags || cmd->__reserved)
		return -EINVAL;
	cmd->version = SHMPOOL_API_VERSION;
	cmd->max_name_len = SHMPOOL_NAME_MAX - 1;
	cmd->features = SHMPOOL_FEAT_NAMED | SHMPOOL_FEAT_CONTIG |
			SHMPOOL_FEAT_INFO | SHMPOOL_FEAT_ACCOUNT |
			SHMPOOL_FEAT_DOORBELL | SHMPOOL_FEAT_NOTIFY |
			SHMPOOL_FEAT_EXEC |
			(SHMPOOL_HAVE_ATTACH ? SHMPOOL_FEAT_ATTACH |
					       SHMPOOL_FEAT_WAIT_OWNER : 0) |
			(SHMPOOL_HAVE_DMABUF ? SHMPOOL_FEAT_DMABUF : 0) |
			(shmpool_huge_supported() ? SHMPOOL_FEAT_HUGE : 0);
	cmd->max_pool_bytes = shmpool_max_pool_bytes();
	cmd->max_total_bytes = shmpool_max_total_bytes();
	cmd->max_contig_bytes = (u64)PAGE_SIZE << SHMPOOL_MAX_ORDER;
	cmd->page_size = PAGE_SIZE;
	return shmpool_ucmd_respond(ucmd, sizeof(*cmd));
}

/*
 * The fd a command's reply will name, taken before anything is made, as
 * open(2) takes its fd before the path walk (do_sys_openat2()): without a
 * free fd the command fails with EMFILE having made, named and charged
 * nothing, not even for a moment.
 */
static int shmpool_reserve_fd(bool cloexec)
{
	return get_unused_fd_flags(cloexec ? O_CLOEXEC : 0);
}

/*
 * Hand @filp to the caller as the reserved fd @fd, writing the reply (which
 * names the fd, in *@fdp) first: an fd is installed only once the caller
 * can learn it. On failure @fd is given back and @filp dropped.
 */
static int shmpool_install(struct shmpool_ucmd *ucmd, struct file *filp,
			   int fd, s32 *fdp, size_t len)
{
	int ret;

	*fdp = fd;
	ret = shmpool_ucmd_respond(ucmd, len);
	if (ret) {
		put_unused_fd(fd);
		fput(filp);
		return ret;
	}
	fd_install(fd, filp);
	return 0;
}

/*
 * CREATE's reply for the new pool @id, written before anything is made
 * (fs.c): if it cannot be (EFAULT), nothing is allocated, charged or named,
 * and no peer ever finds the name.
 */
static int shmpool_create_announce(const struct shmpool_create_args *a,
				   u64 id)
{
	struct shmpool_ucmd *ucmd = a->ctx;
	struct shmpool_create *cmd = ucmd->cmd;

	cmd->out_flags = SHMPOOL_OUT_CREATED;
	cmd->id = id;
	return shmpool_ucmd_respond(ucmd, sizeof(*cmd));
}

static int shmpool_cmd_create(struct shmpool_ucmd *ucmd)
{
	struct shmpool_create *cmd = ucmd->cmd;
	struct shmpool_create_args args = {
		.bytes = cmd->bytes, .flags = cmd->flags,
		.mode = cmd->mode, .name = cmd->name,
		.announce = shmpool_create_announce, .ctx = ucmd,
	};
	struct shmpool_pool *pool;
	struct file *filp;
	bool created;
	int fd, ret;

	if (cmd->flags & ~(SHMPOOL_CREATE_EXCL | SHMPOOL_CREATE_CONTIG |
			   SHMPOOL_CREATE_NOCLOEXEC | SHMPOOL_CREATE_EXEC |
			   SHMPOOL_CREATE_HUGE) ||
	    cmd->__reserved)
		return -EINVAL;
	ret = shmpool_name_check(cmd->name, true);
	if (ret)
		return ret;
	if ((cmd->flags & SHMPOOL_CREATE_EXCL) && !cmd->name[0])
		return -EINVAL;
	if (!cmd->bytes || !PAGE_ALIGNED(cmd->bytes) || cmd->mode & ~0777)
		return -EINVAL;
	if ((cmd->flags & SHMPOOL_CREATE_CONTIG) &&
	    cmd->bytes > ((u64)PAGE_SIZE << SHMPOOL_MAX_ORDER))
		return -EINVAL;
	if (cmd->bytes > shmpool_max_pool_bytes())
		return -EFBIG;
	if ((cmd->flags & SHMPOOL_CREATE_HUGE) && !shmpool_huge_supported())
		return -EOPNOTSUPP;

	fd = shmpool_reserve_fd(!(cmd->flags & SHMPOOL_CREATE_NOCLOEXEC));
	if (fd < 0)
		return fd;
	cmd->fd = fd;	/* for shmpool_create_announce() */
	filp = shmpool_pool_create(&ucmd->scope, &args, &created);
	if (IS_ERR(filp)) {
		put_unused_fd(fd);
		return PTR_ERR(filp);
	}
	if (created) {
		/* Its reply was written before it was made. */
		fd_install(fd, filp);
		return 0;
	}
	/* An existing pool (or one that won a race for the name). */
	pool = ((struct shmpool_file *)filp->private_data)->pool;
	cmd->out_flags = 0;
	cmd->id = pool->id;
	return shmpool_install(ucmd, filp, fd, &cmd->fd, sizeof(*cmd));
}

static int shmpool_cmd_open(struct shmpool_ucmd *ucmd)
{
	struct shmpool_open *cmd = ucmd->cmd;
	bool rdonly = cmd->flags & SHMPOOL_OPEN_RDONLY;
	struct shmpool_pool *pool;
	struct file *filp;
	int fd, ret;

	if (cmd->flags & ~(SHMPOOL_OPEN_RDONLY | SHMPOOL_OPEN_NOCLOEXEC) ||
	    cmd->__reserved)
		return -EINVAL;
	ret = shmpool_name_check(cmd->name, false);
	if (ret)
		return ret;

	fd = shmpool_reserve_fd(!(cmd->flags & SHMPOOL_OPEN_NOCLOEXEC));
	if (fd < 0)
		return fd;
	filp = shmpool_pool_open(&ucmd->scope, cmd->name, rdonly);
	if (IS_ERR(filp)) {
		put_unused_fd(fd);
		return PTR_ERR(filp);
	}
	pool = ((struct shmpool_file *)filp->private_data)->pool;
	cmd->bytes = (u64)pool->nr_pages << PAGE_SHIFT;
	cmd->id = pool->id;
	return shmpool_install(ucmd, filp, fd, &cmd->fd, sizeof(*cmd));
}

static int shmpool_cmd_unlink(struct shmpool_ucmd *ucmd)
{
	struct shmpool_unlink *cmd = ucmd->cmd;
	int ret;

	if (cmd->flags)
		return -EINVAL;
	ret = shmpool_name_check(cmd->name, false);
	if (ret)
		return ret;
	return shmpool_pool_unlink(&ucmd->scope, cmd->name);
}

static int shmpool_copy_extents(struct shmpool_pool *pool,
				struct shmpool_extent __user *uext, u32 cap)
{
	bool phys = capable(CAP_SYS_ADMIN);
	u32 i, n = min_t(u32, cap, pool->nr_extents);

	for (i = 0; i < n; i++) {
		const struct shmpool_extent_k *k = &pool->extents[i];
		struct shmpool_extent e = {
			.offset = (u64)k->pgoff << PAGE_SHIFT,
			.bytes = (u64)k->nr_pages << PAGE_SHIFT,
			/* Physical addresses are for DMA setup by admins only. */
			.phys = phys ? PFN_PHYS(page_to_pfn(k->page)) : 0,
		};

		if (copy_to_user(&uext[i], &e, sizeof(e)))
			return -EFAULT;
	}
	return 0;
}

static int shmpool_cmd_info(struct shmpool_ucmd *ucmd)
{
	struct shmpool_info *cmd = ucmd->cmd;
	struct shmpool_pool *pool = shmpool_file_pool(ucmd->sf);
	struct inode *inode = file_inode(ucmd->filp);
	int ret;

	if (cmd->flags)
		return -EINVAL;
	if (cmd->extents_cap) {
		ret = shmpool_copy_extents(pool, u64_to_user_ptr(cmd->extents),
					   cmd->extents_cap);
		if (ret)
			return ret;
	}
	cmd->bytes = (u64)pool->nr_pages << PAGE_SHIFT;
	cmd->id = pool->id;
	cmd->pool_flags = shmpool_pool_flags(pool, ucmd->filp);
	cmd->mode = inode->i_mode & 0777;
	cmd->uid = from_kuid_munged(current_user_ns(), inode->i_uid);
	cmd->gid = from_kgid_munged(current_user_ns(), inode->i_gid);
	cmd->attachments = atomic_read(&pool->attachments);
	cmd->mappings = atomic_read(&pool->mappings);
	cmd->nr_extents = pool->nr_extents;
	memcpy(cmd->name, pool->name, sizeof(cmd->name));
	return shmpool_ucmd_respond(ucmd, sizeof(*cmd));
}

static int shmpool_cmd_wait(struct shmpool_ucmd *ucmd)
{
	return shmpool_doorbell_wait(ucmd->sf, ucmd->cmd);
}

static int shmpool_cmd_wake(struct shmpool_ucmd *ucmd)
{
	return shmpool_doorbell_wake(ucmd->sf, ucmd->cmd);
}

static int shmpool_cmd_waitv(struct shmpool_ucmd *ucmd)
{
	return shmpool_doorbell_waitv(ucmd->filp, ucmd->cmd);
}

static int shmpool_cmd_notify(struct shmpool_ucmd *ucmd)
{
	return shmpool_doorbell_notify(ucmd->sf, ucmd->cmd);
}

static int shmpool_cmd_attach(struct shmpool_ucmd *ucmd)
{
	struct shmpool_attach *cmd = ucmd->cmd;
	int ret;

	if (!SHMPOOL_HAVE_ATTACH)
		return -ENOTTY;
	ret = shmpool_attach(ucmd->sf, cmd);
	if (ret)
		return ret;
	/*
	 * The attachment is shown to peers (an ACK takes effect) only once
	 * the reply is written: a failed ATTACH is no attachment, not even
	 * for a moment, and so nobody's death.
	 */
	ret = shmpool_ucmd_respond(ucmd, sizeof(*cmd));
	shmpool_attach_done(ucmd->sf, cmd, !ret);
	return ret;
}

static int shmpool_cmd_detach(struct shmpool_ucmd *ucmd)
{
	struct shmpool_detach *cmd = ucmd->cmd;

	if (!SHMPOOL_HAVE_ATTACH)
		return -ENOTTY;
	if (cmd->flags || cmd->__reserved)
		return -EINVAL;
	return shmpool_detach(ucmd->sf, cmd->id);
}

static int shmpool_cmd_export_dmabuf(struct shmpool_ucmd *ucmd)
{
	struct shmpool_export_dmabuf *cmd = ucmd->cmd;
	struct file *filp;
	int fd;

	fd = shmpool_reserve_fd(!(cmd->flags & SHMPOOL_EXPORT_NOCLOEXEC));
	if (fd < 0)
		return fd;
	filp = shmpool_dmabuf_export(ucmd->sf, cmd);
	if (IS_ERR(filp)) {
		put_unused_fd(fd);
		return PTR_ERR(filp);
	}
	return shmpool_install(ucmd, filp, fd, &cmd->fd, sizeof(*cmd));
}

/* Which kind of fd a command is for. */
#define SHMPOOL_ON_SCOPE	1
#define SHMPOOL_ON_POOL		2

struct shmpool_ioctl_op {
	unsigned int size;	/* the kernel's struct size */
	unsigned int min_size;	/* the first version's size */
	unsigned int ioctl_num;
	unsigned int on;	/* SHMPOOL_ON_* */
	int (*execute)(struct shmpool_ucmd *ucmd);
};

#define SHMPOOL_IOCTL_OP(_ioctl, _fn, _struct, _last, _on)		\
	[_IOC_NR(_ioctl) - SHMPOOL_CMD_BASE] = {			\
		.size = sizeof(_struct) +				\
			BUILD_BUG_ON_ZERO(sizeof(union shmpool_ucmd_buffer) < \
					  sizeof(_struct)),		\
		.min_size = offsetofend(_struct, _last),		\
		.ioctl_num = _ioctl,					\
		.on = _on,						\
		.execute = _fn,						\
	}

#define ANY	(SHMPOOL_ON_SCOPE | SHMPOOL_ON_POOL)
#define SCOPE	SHMPOOL_ON_SCOPE
#define POOL	SHMPOOL_ON_POOL

static const struct shmpool_ioctl_op shmpool_ioctl_ops[] = {
	SHMPOOL_IOCTL_OP(SHMPOOL_IOC_API, shmpool_cmd_api, struct shmpool_api,
			 __reserved, ANY),
	/* Version 2 (a pool fd) is the first: v1 binaries get ENOTTY anyway. */
	SHMPOOL_IOCTL_OP(SHMPOOL_IOC_CREATE, shmpool_cmd_create,
			 struct shmpool_create, __reserved, SCOPE),
	SHMPOOL_IOCTL_OP(SHMPOOL_IOC_OPEN, shmpool_cmd_open,
			 struct shmpool_open, __reserved, SCOPE),
	SHMPOOL_IOCTL_OP(SHMPOOL_IOC_UNLINK, shmpool_cmd_unlink,
			 struct shmpool_unlink, name, SCOPE),
	SHMPOOL_IOCTL_OP(SHMPOOL_IOC_INFO, shmpool_cmd_info,
			 struct shmpool_info, name, POOL),
	/* death_seq came with API version 3: older callers stop before it. */
	SHMPOOL_IOCTL_OP(SHMPOOL_IOC_WAIT, shmpool_cmd_wait,
			 struct shmpool_wait, deadline_ns, POOL),
	SHMPOOL_IOCTL_OP(SHMPOOL_IOC_WAKE, shmpool_cmd_wake,
			 struct shmpool_wake, bitset, POOL),
	SHMPOOL_IOCTL_OP(SHMPOOL_IOC_WAITV, shmpool_cmd_waitv,
			 struct shmpool_waitv, deadline_ns, POOL),
	SHMPOOL_IOCTL_OP(SHMPOOL_IOC_NOTIFY, shmpool_cmd_notify,
			 struct shmpool_notify, bitset, POOL),
	SHMPOOL_IOCTL_OP(SHMPOOL_IOC_ATTACH, shmpool_cmd_attach,
			 struct shmpool_attach, __reserved, POOL),
	SHMPOOL_IOCTL_OP(SHMPOOL_IOC_DETACH, shmpool_cmd_detach,
			 struct shmpool_detach, __reserved, POOL),
	SHMPOOL_IOCTL_OP(SHMPOOL_IOC_EXPORT_DMABUF, shmpool_cmd_export_dmabuf,
			 struct shmpool_export_dmabuf, __reserved, POOL),
};

static long shmpool_dispatch(struct shmpool_ucmd *ucmd, unsigned int on,
			     unsigned int cmd)
{
	const struct shmpool_ioctl_op *op;
	unsigned int nr = _IOC_NR(cmd);
	int ret;

	if (nr < SHMPOOL_CMD_BASE ||
	    nr - SHMPOOL_CMD_BASE >= ARRAY_SIZE(shmpool_ioctl_ops))
		return -ENOTTY;
	op = &shmpool_ioctl_ops[nr - SHMPOOL_CMD_BASE];
	/* A command for the other kind of fd is as unknown as any. */
	if (op->ioctl_num != cmd || !(op->on & on))
		return -ENOTTY;

	if (get_user(ucmd->user_size, (u32 __user *)ucmd->ubuffer))
		return -EFAULT;
	if (ucmd->user_size < op->min_size)
		return -EINVAL;
	/* Bound the zero-tail scan; no struct will ever be a page long. */
	if (ucmd->user_size > PAGE_SIZE)
		return -E2BIG;
	ret = copy_struct_from_user(ucmd->cmd, op->size, ucmd->ubuffer,
				    ucmd->user_size);
	if (ret)
		return ret;
	return op->execute(ucmd);
}

/* Pool fds (shmpool_fops). */
long shmpool_ioctl(struct file *filp, unsigned int cmd, unsigned long arg)
{
	union shmpool_ucmd_buffer buf;
	struct shmpool_ucmd ucmd = {
		.filp = filp,
		.sf = filp->private_data,
		.ubuffer = (void __user *)arg,
		.cmd = &buf,
	};

	return shmpool_dispatch(&ucmd, SHMPOOL_ON_POOL, cmd);
}

/* Scope fds: /dev/shmpool and the root directory of a mounted instance. */
long shmpool_scope_ioctl(struct file *filp, unsigned int cmd, unsigned long arg)
{
	union shmpool_ucmd_buffer buf;
	struct shmpool_ucmd ucmd = {
		.filp = filp,
		.ubuffer = (void __user *)arg,
		.cmd = &buf,
	};
	int ret;

	ret = shmpool_scope_of(filp, &ucmd.scope);
	if (ret)
		return ret;
	return shmpool_dispatch(&ucmd, SHMPOOL_ON_SCOPE, cmd);
}
