// SPDX-License-Identifier: GPL-2.0
/*
 * shmpool: the /dev/shmpool misc device.
 *
 * /dev/shmpool is the scope fd of the default scope (fs.c):
 * SHMPOOL_IOC_CREATE and SHMPOOL_IOC_OPEN on it return pool files, whose
 * file_operations (shmpool_fops) are here. Module-wide counters (pools,
 * pages, bytes_charged, waiters) are in /sys/class/misc/shmpool/ and the pool
 * list in debugfs (shmpool/pools); Documentation/ABI/testing/ describes both.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/debugfs.h>
#include <linux/device.h>
#include <linux/fs.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/seq_file.h>
#include <linux/slab.h>

#include "compat.h"
#include "shmpool.h"

/*
 * A size limit in MiB: 1 up to what still fits in bytes (<< 20). 0 is
 * refused, at load and later: leaving the parameter out gives the default.
 */
static int shmpool_mb_set(const char *val, const struct kernel_param *kp)
{
	unsigned long mb;

	if (kstrtoul(val, 0, &mb) || !mb || mb > (ULONG_MAX >> 20))
		return -EINVAL;
	WRITE_ONCE(*(unsigned long *)kp->arg, mb);
	return 0;
}

static const struct kernel_param_ops shmpool_mb_ops = {
	.set = shmpool_mb_set,
	.get = param_get_ulong,
};

module_param_cb(max_pool_mb, &shmpool_mb_ops, &shmpool_max_pool_mb, 0644);
MODULE_PARM_DESC(max_pool_mb, "Largest pool in MiB, 1.. (default: half of RAM)");
module_param_cb(max_total_mb, &shmpool_mb_ops, &shmpool_max_total_mb, 0644);
MODULE_PARM_DESC(max_total_mb, "All pools together in MiB, 1.. (default: half of RAM)");

/* Make @filp a pool file of @pool (->open, or a new anonymous pool). */
int shmpool_file_init(struct file *filp, struct shmpool_pool *pool)
{
	struct shmpool_file *sf;

	sf = kzalloc(sizeof(*sf), GFP_KERNEL_ACCOUNT);
	if (!sf)
		return -ENOMEM;
	mutex_init(&sf->lock);
	INIT_LIST_HEAD(&sf->notifiers);
	sf->rdonly = !(filp->f_mode & FMODE_WRITE);
	/* poll() reports deaths after this file was opened. */
	sf->death_ack = READ_ONCE(pool->death_seq);
	shmpool_pool_get(pool);
	sf->pool = pool;
	atomic_inc(&pool->attachments);
	filp->private_data = sf;
	return 0;
}

/*
 * open(2) of a named pool in a mounted instance (or of /proc/PID/fd/N), and
 * dentry_open(). A pool fd is readable: a pool is used by mapping it, which
 * needs that, and a write-only fd would read the pool anyway, through WAIT's
 * compare or an exported dma-buf, past a mode that grants no read (0622).
 */
static int shmpool_open(struct inode *inode, struct file *filp)
{
	if (!(filp->f_mode & FMODE_READ))
		return -EACCES;
	return shmpool_file_init(filp, inode->i_private);
}

static int shmpool_release(struct inode *inode, struct file *filp)
{
	struct shmpool_file *sf = filp->private_data;
	struct shmpool_pool *pool;

	if (!sf)
		return 0;	/* shmpool_file_init() failed */
	pool = sf->pool;
	shmpool_doorbell_release(sf);
	atomic_dec(&pool->attachments);
	shmpool_pool_put(pool);
	mutex_destroy(&sf->lock);
	kfree(sf);
	return 0;
}

static void shmpool_show_fdinfo(struct seq_file *m, struct file *filp)
{
	struct shmpool_file *sf = filp->private_data;
	struct shmpool_pool *pool = sf->pool;
	unsigned int i;

	seq_printf(m, "shmpool-id:\t%llu\n", pool->id);
	seq_printf(m, "shmpool-name:\t%s\n", pool->name[0] ? pool->name : "-");
	seq_printf(m, "shmpool-bytes:\t%llu\n", (u64)pool->nr_pages << PAGE_SHIFT);
	seq_printf(m, "shmpool-mode:\t%04o\n", file_inode(filp)->i_mode & 07777);
	seq_printf(m, "shmpool-rdonly:\t%d\n", sf->rdonly);
	seq_printf(m, "shmpool-extents:\t%u\n", pool->nr_extents);
	for (i = 0; i < pool->nr_extents; i++)
		seq_printf(m, "shmpool-extent:\t%llu %llu\n",
			   (u64)pool->extents[i].pgoff << PAGE_SHIFT,
			   (u64)pool->extents[i].nr_pages << PAGE_SHIFT);
	shmpool_attach_show(m, pool);
}

/* A pool file: one per open pool, its inode the pool's. */
const struct file_operations shmpool_fops = {
	.owner = THIS_MODULE,
	.open = shmpool_open,
	.release = shmpool_release,
	.unlocked_ioctl = shmpool_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.mmap = shmpool_mmap,
#if SHMPOOL_HAVE_HUGE
	/* 2 MiB-congruent addresses, for HUGE pools' PMD mappings */
	.get_unmapped_area = thp_get_unmapped_area,
#endif
	.poll = shmpool_attach_poll,
	.llseek = noop_llseek,
	/*
	 * Nothing to write back: fsync(), fdatasync() and msync(MS_SYNC) of
	 * a mapping succeed, as on shmem; without it they fail with EINVAL.
	 */
	.fsync = noop_fsync,
	.show_fdinfo = shmpool_show_fdinfo,
};

/* /dev/shmpool: a scope fd of the default scope; no pool of its own. */
static const struct file_operations shmpool_dev_fops = {
	.owner = THIS_MODULE,
	.unlocked_ioctl = shmpool_scope_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.llseek = noop_llseek,
};

static ssize_t pools_show(struct device *dev, struct device_attribute *attr,
			  char *buf)
{
	return sysfs_emit(buf, "%lu\n", shmpool_pool_count());
}
static DEVICE_ATTR_RO(pools);

static ssize_t pages_show(struct device *dev, struct device_attribute *attr,
			  char *buf)
{
	return sysfs_emit(buf, "%lu\n", shmpool_pages_held());
}
static DEVICE_ATTR_RO(pages);

static ssize_t bytes_charged_show(struct device *dev,
				  struct device_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%lu\n", shmpool_bytes_charged());
}
static DEVICE_ATTR_RO(bytes_charged);

static ssize_t waiters_show(struct device *dev, struct device_attribute *attr,
			    char *buf)
{
	return sysfs_emit(buf, "%u\n", shmpool_waiters());
}
static DEVICE_ATTR_RO(waiters);

static struct attribute *shmpool_attrs[] = {
	&dev_attr_pools.attr,
	&dev_attr_pages.attr,
	&dev_attr_bytes_charged.attr,
	&dev_attr_waiters.attr,
	NULL,
};
ATTRIBUTE_GROUPS(shmpool);

static struct miscdevice shmpool_misc = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "shmpool",
	.fops = &shmpool_dev_fops,
	.groups = shmpool_groups,
	.mode = 0666,
};

/* debugfs shmpool/pools: one line per pool, for administrators (0400). */
static int shmpool_pools_show(struct seq_file *m, void *unused)
{
	struct shmpool_pool *pool;

	seq_puts(m, "id\tscope\tname\tbytes\textents\tuid\tgid\tmode\tattach\tmaps\tstate\n");
	mutex_lock(&shmpool_lock);
	list_for_each_entry(pool, &shmpool_all, all_node) {
		struct inode *inode = pool->inode;

		if (!inode)
			continue;	/* being evicted */
		seq_printf(m, "%llu\t%u:%u\t%s\t%llu\t%u\t%u\t%u\t%04o\t%d\t%d\t%s\n",
			   pool->id, MAJOR(pool->scope), MINOR(pool->scope),
			   pool->name[0] ? pool->name : "-",
			   (u64)pool->nr_pages << PAGE_SHIFT, pool->nr_extents,
			   from_kuid(&init_user_ns, inode->i_uid),
			   from_kgid(&init_user_ns, inode->i_gid),
			   inode->i_mode & 07777,
			   atomic_read(&pool->attachments),
			   atomic_read(&pool->mappings),
			   !pool->name[0] ? "anon" :
			   inode->i_nlink ? "named" : "unlinked");
	}
	mutex_unlock(&shmpool_lock);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(shmpool_pools);

static struct dentry *shmpool_debugfs;

static int __init shmpool_init(void)
{
	int ret;

	shmpool_pools_init();
	ret = shmpool_doorbell_init();
	if (ret)
		return ret;
	ret = shmpool_fs_init();
	if (ret)
		goto err_doorbell;
	ret = misc_register(&shmpool_misc);
	if (ret)
		goto err_fs;
	shmpool_debugfs = debugfs_create_dir("shmpool", NULL);
	debugfs_create_file("pools", 0400, shmpool_debugfs, NULL,
			    &shmpool_pools_fops);
	return 0;

err_fs:
	shmpool_fs_exit();
err_doorbell:
	shmpool_doorbell_exit();
	return ret;
}

static void __exit shmpool_exit(void)
{
	debugfs_remove_recursive(shmpool_debugfs);
	misc_deregister(&shmpool_misc);
	/* Drops the default scope's names: their pools are freed. */
	shmpool_fs_exit();
	/* Pools are gone; wait for attachment ends still running. */
	shmpool_attach_exit();
	shmpool_pools_exit();
	shmpool_doorbell_exit();
	shmpool_users_exit();
}

module_init(shmpool_init);
module_exit(shmpool_exit);
MODULE_DESCRIPTION("Physically contiguous shared page pools with doorbells");
MODULE_AUTHOR("shmpool developers <shmpool@users.noreply.github.com>");
MODULE_LICENSE("GPL");
