// SPDX-License-Identifier: GPL-2.0
/*
 * shmpool: the /dev/shmpool misc device.
 *
 * An open file starts unbound; SHMPOOL_IOC_CREATE or SHMPOOL_IOC_OPEN binds
 * it to one pool for the rest of its life. Module-wide counters (pools,
 * pages, bytes_charged, waiters) are in /sys/class/misc/shmpool/ and the pool
 * list in debugfs (shmpool/pools).
 */
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

int shmpool_file_bind(struct shmpool_file *sf, struct shmpool_pool *pool,
		      bool rdonly)
{
	int ret = 0;

	mutex_lock(&sf->lock);
	if (sf->pool) {
		ret = -EBUSY;	/* lost a race with another thread on this fd */
	} else {
		sf->rdonly = rdonly;
		atomic_inc(&pool->attachments);
		/* Publishes @rdonly too; pairs with shmpool_file_pool(). */
		smp_store_release(&sf->pool, pool);
	}
	mutex_unlock(&sf->lock);
	return ret;
}

static int shmpool_open(struct inode *inode, struct file *filp)
{
	struct shmpool_file *sf;

	sf = kzalloc(sizeof(*sf), GFP_KERNEL_ACCOUNT);
	if (!sf)
		return -ENOMEM;
	mutex_init(&sf->lock);
	INIT_LIST_HEAD(&sf->notifiers);
	filp->private_data = sf;
	return 0;
}

static int shmpool_release(struct inode *inode, struct file *filp)
{
	struct shmpool_file *sf = filp->private_data;
	struct shmpool_pool *pool = sf->pool;

	shmpool_doorbell_release(sf);
	if (pool) {
		atomic_dec(&pool->attachments);
		shmpool_pool_put(pool);
	}
	mutex_destroy(&sf->lock);
	kfree(sf);
	return 0;
}

const struct file_operations shmpool_fops = {
	.owner = THIS_MODULE,
	.open = shmpool_open,
	.release = shmpool_release,
	.unlocked_ioctl = shmpool_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.mmap = shmpool_mmap,
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
	.fops = &shmpool_fops,
	.groups = shmpool_groups,
	.mode = 0666,
};

/* debugfs shmpool/pools: one line per pool, for administrators (0400). */
static int shmpool_pools_show(struct seq_file *m, void *unused)
{
	struct shmpool_pool *pool;

	seq_puts(m, "id\tname\tbytes\textents\tuid\tgid\tmode\tattach\tmaps\tstate\n");
	mutex_lock(&shmpool_lock);
	list_for_each_entry(pool, &shmpool_all, all_node) {
		seq_printf(m, "%llu\t%s\t%llu\t%u\t%u\t%u\t%04o\t%d\t%d\t%s\n",
			   pool->id, pool->name[0] ? pool->name : "-",
			   (u64)pool->nr_pages << PAGE_SHIFT, pool->nr_extents,
			   from_kuid(&init_user_ns, pool->uid),
			   from_kgid(&init_user_ns, pool->gid), pool->mode,
			   atomic_read(&pool->attachments),
			   atomic_read(&pool->mappings),
			   pool->linked ? "named" :
			   pool->unlinked ? "unlinked" : "anon");
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
	ret = misc_register(&shmpool_misc);
	if (ret) {
		shmpool_doorbell_exit();
		return ret;
	}
	shmpool_debugfs = debugfs_create_dir("shmpool", NULL);
	debugfs_create_file("pools", 0400, shmpool_debugfs, NULL,
			    &shmpool_pools_fops);
	return 0;
}

static void __exit shmpool_exit(void)
{
	debugfs_remove_recursive(shmpool_debugfs);
	misc_deregister(&shmpool_misc);
	shmpool_pools_exit();
	shmpool_doorbell_exit();
	shmpool_users_exit();
}

module_init(shmpool_init);
module_exit(shmpool_exit);
MODULE_DESCRIPTION("Physically contiguous shared page pools with doorbells");
MODULE_AUTHOR("The shmpool developers");
MODULE_LICENSE("GPL");
