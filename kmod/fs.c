// SPDX-License-Identifier: GPL-2.0
/*
 * Scopes and pool files: the "shmpool" filesystem.
 *
 * Every pool is an inode of one instance of this filesystem, and every
 * instance is a scope of pool names: a named pool is a dentry in the
 * instance's root directory (the dcache is the registry, as in ramfs and
 * mqueue). The module mounts one instance internally at load, the default
 * scope behind /dev/shmpool; each mount(2) of "shmpool" makes a new, empty
 * one (FS_USERNS_MOUNT, so a rootless container can mount its own), whose
 * root directory accepts the scope ioctls. An instance dies with its last
 * mount and last open file (each pool file pins its mount); kill_sb then
 * drops its names, and each pool is freed when its last reference goes.
 *
 * Named dentries are pinned by an extra reference, listed in the scope so
 * that kill_sb can drop them, and unpinned by unlink (ioctl or unlink(2)).
 * Everything about names runs under the root directory's i_rwsem.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/cred.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/fs_context.h>
#include <linux/module.h>
#include <linux/mount.h>
#include <linux/namei.h>
#include <linux/pagemap.h>
#include <linux/slab.h>
#include <linux/statfs.h>
#include <linux/user_namespace.h>

#include "compat.h"
#include "shmpool.h"

struct vfsmount *shmpool_default_mnt;

/* sb->s_fs_info */
struct shmpool_scope {
	struct list_head names;	/* shmpool_name.node; under the root's i_rwsem */
};

/* The pin of a named pool's dentry. */
struct shmpool_name {
	struct list_head node;
	struct dentry *dentry;
};

static const struct inode_operations shmpool_pool_iops;

/*
 * "shmpool:<name>" in /proc/<pid>/maps, /proc/<pid>/fd and d_path().
 * ->d_dname() writes the name at the end of @buf (dynamic_dname() is not
 * exported to modules).
 */
static char *shmpool_dname(struct dentry *dentry, char *buf, int len)
{
	struct inode *inode = d_inode(dentry);
	struct shmpool_pool *pool = inode ? inode->i_private : NULL;
	char tmp[SHMPOOL_NAME_MAX + 32];
	int n;

	if (!pool)
		n = scnprintf(tmp, sizeof(tmp), "shmpool:/");
	else if (!pool->name[0])
		n = scnprintf(tmp, sizeof(tmp), "shmpool:[anon:%llu]", pool->id);
	else
		n = scnprintf(tmp, sizeof(tmp), "shmpool:%s%s", pool->name,
			      d_unhashed(dentry) ? " (deleted)" : "");
	if (n + 1 > len)
		return ERR_PTR(-ENAMETOOLONG);
	return memcpy(buf + len - (n + 1), tmp, n + 1);
}

static const struct dentry_operations shmpool_dops = {
	/* Negative dentries go at once; named ones are pinned. */
	.d_delete = always_delete_dentry,
	.d_dname = shmpool_dname,
};

static void shmpool_evict_inode(struct inode *inode)
{
	struct shmpool_pool *pool = inode->i_private;

	truncate_inode_pages_final(&inode->i_data);
	clear_inode(inode);
	if (pool) {
		mutex_lock(&shmpool_lock);
		pool->inode = NULL;
		mutex_unlock(&shmpool_lock);
		shmpool_pool_put(pool);	/* the inode's reference */
	}
}

static const struct super_operations shmpool_sops = {
	.statfs = simple_statfs,
	.evict_inode = shmpool_evict_inode,
};

static struct inode *shmpool_new_inode(struct super_block *sb, umode_t mode)
{
	struct inode *inode = new_inode(sb);

	if (!inode)
		return NULL;
	inode->i_ino = get_next_ino();
	inode->i_mode = mode;
	inode->i_uid = current_fsuid();
	inode->i_gid = current_fsgid();
	shmpool_inode_touch(inode, true);
	return inode;
}

/* A new inode for @pool, taking over the caller's reference to it. */
static struct inode *shmpool_pool_inode(struct super_block *sb,
					struct shmpool_pool *pool, umode_t mode)
{
	u64 bytes = (u64)pool->nr_pages << PAGE_SHIFT;
	struct inode *inode;

	inode = shmpool_new_inode(sb, S_IFREG | mode);
	if (!inode) {
		shmpool_pool_put(pool);
		return NULL;
	}
	inode->i_op = &shmpool_pool_iops;
	inode->i_fop = &shmpool_fops;
	inode->i_private = pool;
	inode->i_size = bytes;
	inode->i_blocks = bytes >> 9;
	pool->scope = sb->s_dev;
	mutex_lock(&shmpool_lock);
	pool->inode = inode;
	list_add_tail(&pool->all_node, &shmpool_all);
	mutex_unlock(&shmpool_lock);
	return inode;
}

/* chmod and chown as for any file; the size is fixed at creation. */
static int shmpool_setattr(struct shmpool_idmap *idmap, struct dentry *dentry,
			   struct iattr *attr)
{
	if (attr->ia_valid & ATTR_SIZE)
		return -EPERM;
	return simple_setattr(idmap, dentry, attr);
}

static const struct inode_operations shmpool_pool_iops = {
	.setattr = shmpool_setattr,
};

/* The dentry of @name in @root, referenced, or NULL if there is none. */
static struct dentry *shmpool_name_lookup(struct dentry *root, const char *name)
{
	struct qstr q = QSTR_INIT(name, strlen(name));
	struct dentry *dentry;

	dentry = d_hash_and_lookup(root, &q);
	if (IS_ERR_OR_NULL(dentry))
		return dentry;
	if (d_really_is_negative(dentry)) {
		dput(dentry);
		return NULL;
	}
	return dentry;
}

/*
 * Name the pool of @dentry (positive, not hashed yet, a child of @root):
 * hash it and pin it with @n. Root i_rwsem held; from here on OPEN finds it.
 */
static void shmpool_name_add(struct dentry *root, struct dentry *dentry,
			     struct shmpool_name *n)
{
	struct shmpool_scope *scope = root->d_sb->s_fs_info;

	d_rehash(dentry);
	n->dentry = dget(dentry);	/* the pin */
	list_add_tail(&n->node, &scope->names);
	shmpool_inode_touch(d_inode(root), false);
}

/* Unpin a named pool's dentry (root i_rwsem held); VFS ->unlink too. */
static int shmpool_dir_unlink(struct inode *dir, struct dentry *dentry)
{
	struct shmpool_scope *scope = dentry->d_sb->s_fs_info;
	struct inode *inode = d_inode(dentry);
	struct shmpool_name *n;

	list_for_each_entry(n, &scope->names, node) {
		if (n->dentry != dentry)
			continue;
		list_del(&n->node);
		kfree(n);
		shmpool_inode_touch(dir, false);
		shmpool_inode_touch(inode, false);
		drop_nlink(inode);
		dput(dentry);	/* the pin; the caller holds another */
		return 0;
	}
	return -ENOENT;
}

static const struct inode_operations shmpool_dir_iops = {
	.lookup = simple_lookup,
	.unlink = shmpool_dir_unlink,
};

static const struct file_operations shmpool_dir_fops = {
	.open = dcache_dir_open,
	.release = dcache_dir_close,
	.llseek = dcache_dir_lseek,
	.read = generic_read_dir,
	.iterate_shared = dcache_readdir,
	.fsync = noop_fsync,
	.unlocked_ioctl = shmpool_scope_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
};

/*
 * The scope a scope fd stands for: the default scope for /dev/shmpool, the
 * instance for its root directory. Fills @root without taking references
 * (the fd's own hold them for the ioctl's duration).
 */
int shmpool_scope_of(struct file *filp, struct path *root)
{
	if (filp->f_op == &shmpool_dir_fops) {
		*root = filp->f_path;
	} else {
		root->mnt = shmpool_default_mnt;
		root->dentry = shmpool_default_mnt->mnt_root;
	}
	return 0;
}

/* A pool fd's struct file for the named pool at @dentry in @root. */
static struct file *shmpool_path_open(const struct path *root,
				      struct dentry *dentry, bool rdonly)
{
	struct path path = { .mnt = root->mnt, .dentry = dentry };

	return dentry_open(&path, rdonly ? O_RDONLY : O_RDWR, current_cred());
}

/* The same for an existing pool, checking access like open(2). */
static struct file *shmpool_dentry_open(const struct path *root,
					struct dentry *dentry, bool rdonly)
{
	int ret;

	ret = inode_permission(SHMPOOL_NOP_IDMAP, d_inode(dentry),
			       rdonly ? MAY_READ : MAY_READ | MAY_WRITE);
	if (ret)
		return ERR_PTR(ret);
	return shmpool_path_open(root, dentry, rdonly);
}

/* An anonymous pool's file: an unlinked inode of the scope. */
static struct file *shmpool_anon_open(struct vfsmount *mnt, struct inode *inode)
{
	struct shmpool_pool *pool = inode->i_private;
	struct file *filp;
	char name[32];
	int ret;

	snprintf(name, sizeof(name), "[anon:%llu]", pool->id);
	/* alloc_file_pseudo() takes no module reference; fput() drops one. */
	__module_get(THIS_MODULE);
	filp = alloc_file_pseudo(inode, mnt, name, O_RDWR, &shmpool_fops);
	if (IS_ERR(filp)) {
		module_put(THIS_MODULE);
		iput(inode);
		return filp;
	}
	ret = shmpool_file_init(filp, pool);
	if (ret) {
		fput(filp);
		return ERR_PTR(ret);
	}
	return filp;
}

/*
 * An existing named pool for a CREATE without EXCL: a file, NULL if there
 * is no such name, or an ERR_PTR. @dentry is referenced; dropped here.
 */
static struct file *shmpool_create_existing(const struct path *root,
					    const struct shmpool_create_args *a,
					    struct dentry *dentry)
{
	struct file *filp;

	if (!dentry)
		return NULL;
	if (a->flags & SHMPOOL_CREATE_EXCL ||
	    i_size_read(d_inode(dentry)) != a->bytes)
		filp = ERR_PTR(-EEXIST);
	else
		filp = shmpool_dentry_open(root, dentry, false);
	dput(dentry);
	return filp;
}

/*
 * Name @filp's pool (its dentry a child of @root, not hashed yet) in @root
 * unless somebody named a pool of @a's name meanwhile. Returns @filp, or
 * drops it (its pool goes, never seen) and returns theirs opened as by a
 * CREATE of an existing name (*@created false), or an ERR_PTR.
 */
static struct file *shmpool_pool_name(const struct path *root,
				      const struct shmpool_create_args *a,
				      struct file *filp, bool *created)
{
	struct qstr q = QSTR_INIT(a->name, strlen(a->name));
	struct inode *dir = d_inode(root->dentry);
	struct shmpool_name *n;
	struct dentry *dentry;

	n = kmalloc(sizeof(*n), GFP_KERNEL_ACCOUNT);
	if (!n) {
		fput(filp);
		return ERR_PTR(-ENOMEM);
	}
	inode_lock_nested(dir, I_MUTEX_PARENT);
	dentry = d_hash_and_lookup(root->dentry, &q);
	if (!IS_ERR_OR_NULL(dentry) && d_really_is_negative(dentry)) {
		/* A negative dentry of a lookup in flight: ours replaces it. */
		d_drop(dentry);
		dput(dentry);
		dentry = NULL;
	}
	if (!dentry) {
		shmpool_name_add(root->dentry, filp->f_path.dentry, n);
		inode_unlock(dir);
		*created = true;
		return filp;
	}
	/* Somebody made it meanwhile: theirs is used (or refused). */
	inode_unlock(dir);
	kfree(n);
	fput(filp);
	if (IS_ERR(dentry))
		return ERR_CAST(dentry);
	return shmpool_create_existing(root, a, dentry);
}

/*
 * Make the pool of @a (sizes and flags checked) and, if it has a name,
 * name it in @root: a new pool, or whichever pool won a race for the name.
 * Its id is announced first, so that a caller who cannot be told of the
 * pool (a reply that cannot be written) makes nothing: no pool is
 * allocated, charged or named. A named pool's file is made before its
 * name, so that no failure leaves a name behind, not even for a moment
 * (ENFILE, an LSM or fanotify refusing the open), as open(O_CREAT)
 * creates no file it could not open.
 */
static struct file *shmpool_pool_make(const struct path *root,
				      const struct shmpool_create_args *a,
				      bool *created)
{
	struct super_block *sb = root->dentry->d_sb;
	struct shmpool_pool *pool;
	struct dentry *dentry;
	struct inode *inode;
	struct file *filp;
	u64 id;
	int ret;

	id = shmpool_pool_new_id();
	ret = a->announce ? a->announce(a, id) : 0;
	if (ret)
		return ERR_PTR(ret);
	/* Allocate without the directory lock: this can take a while. */
	pool = shmpool_pool_alloc(a, id);
	if (IS_ERR(pool))
		return ERR_CAST(pool);
	inode = shmpool_pool_inode(sb, pool, a->mode & ~current_umask() & 0777);
	if (!inode)
		return ERR_PTR(-ENOMEM);
	if (!a->name[0]) {
		filp = shmpool_anon_open(root->mnt, inode);
		*created = !IS_ERR(filp);
		return filp;
	}

	/* Not hashed: no lookup finds it before shmpool_pool_name(). */
	dentry = d_alloc_name(root->dentry, a->name);
	if (!dentry) {
		iput(inode);
		return ERR_PTR(-ENOMEM);
	}
	d_instantiate(dentry, inode);
	/*
	 * No mode check for the pool this call made: as may_open() checks
	 * nothing for a file its own open(2) created (FMODE_CREATED), the
	 * mode is for later opens, so a pool made 0400 (or 0) still gives
	 * its creator a read-write fd.
	 */
	filp = shmpool_path_open(root, dentry, false);
	dput(dentry);	/* the file holds its own; else the pool goes */
	if (IS_ERR(filp))
		return filp;
	return shmpool_pool_name(root, a, filp, created);
}

/*
 * Search (@mask MAY_EXEC) or change (MAY_WRITE | MAY_EXEC) the scope's
 * names, as path walk and may_create()/may_delete() ask of a directory:
 * the root's mode is 01777 until its owner changes it.
 */
static int shmpool_dir_permission(const struct path *root, int mask)
{
	return inode_permission(SHMPOOL_NOP_IDMAP, d_inode(root->dentry), mask);
}

/*
 * As may_o_create(): the VFS makes no file whose owner the scope's user
 * namespace cannot represent. An existing name opens all the same.
 */
static int shmpool_ids_mapped(const struct path *root)
{
	struct user_namespace *ns = root->dentry->d_sb->s_user_ns;

	if (!kuid_has_mapping(ns, current_fsuid()) ||
	    !kgid_has_mapping(ns, current_fsgid()))
		return -EOVERFLOW;
	return 0;
}

/*
 * As open(O_CREAT) in the scope's directory: an existing name needs search
 * permission only; a new one a writable mount (EROFS), ids the scope can
 * represent (EOVERFLOW) and a writable directory (EACCES), checked in that
 * order before any pool is allocated, charged or named. An
 * anonymous pool names nothing and is reachable by no path, as a memfd:
 * any scope fd makes one.
 */
struct file *shmpool_pool_create(const struct path *root,
				 const struct shmpool_create_args *a,
				 bool *created)
{
	struct inode *dir = d_inode(root->dentry);
	struct dentry *dentry;
	struct file *filp;
	int ret;

	*created = false;
	if (!a->name[0]) {
		ret = shmpool_ids_mapped(root);
		return ret ? ERR_PTR(ret) : shmpool_pool_make(root, a, created);
	}

	ret = shmpool_dir_permission(root, MAY_EXEC);
	if (ret)
		return ERR_PTR(ret);
	/* Common case of a non-EXCL create: the pool already exists. */
	inode_lock_shared(dir);
	dentry = shmpool_name_lookup(root->dentry, a->name);
	inode_unlock_shared(dir);
	if (IS_ERR(dentry))
		return ERR_CAST(dentry);
	filp = shmpool_create_existing(root, a, dentry);
	if (filp)
		return filp;

	ret = mnt_want_write(root->mnt);
	if (ret)
		return ERR_PTR(ret);
	ret = shmpool_ids_mapped(root) ?:
	      shmpool_dir_permission(root, MAY_WRITE | MAY_EXEC);
	filp = ret ? ERR_PTR(ret) : shmpool_pool_make(root, a, created);
	mnt_drop_write(root->mnt);
	return filp;
}

struct file *shmpool_pool_open(const struct path *root, const char *name,
			       bool rdonly)
{
	struct inode *dir = d_inode(root->dentry);
	struct dentry *dentry;
	struct file *filp;
	int ret;

	ret = shmpool_dir_permission(root, MAY_EXEC);
	if (ret)
		return ERR_PTR(ret);
	inode_lock_shared(dir);
	dentry = shmpool_name_lookup(root->dentry, name);
	inode_unlock_shared(dir);
	if (IS_ERR(dentry))
		return ERR_CAST(dentry);
	if (!dentry)
		return ERR_PTR(-ENOENT);
	filp = shmpool_dentry_open(root, dentry, rdonly);
	dput(dentry);
	return filp;
}

/*
 * As may_delete(): write and search permission on the scope's directory
 * (else -EACCES), then, as in a sticky directory, the pool's owner, the
 * directory's owner, or CAP_FOWNER or CAP_SYS_ADMIN in the scope's user
 * namespace (else -EPERM).
 */
static int shmpool_may_unlink(const struct path *root, struct inode *inode)
{
	struct user_namespace *ns = inode->i_sb->s_user_ns;
	struct inode *dir = d_inode(root->dentry);
	kuid_t fsuid = current_fsuid();
	int ret;

	ret = shmpool_dir_permission(root, MAY_WRITE | MAY_EXEC);
	if (ret)
		return ret;
	if (uid_eq(fsuid, inode->i_uid) || uid_eq(fsuid, dir->i_uid) ||
	    ns_capable(ns, CAP_FOWNER) || ns_capable(ns, CAP_SYS_ADMIN))
		return 0;
	return -EPERM;
}

int shmpool_pool_unlink(const struct path *root, const char *name)
{
	struct inode *dir = d_inode(root->dentry);
	struct dentry *dentry;
	int ret;

	/* As for create: a read-only mount keeps its names (EROFS). */
	ret = mnt_want_write(root->mnt);
	if (ret)
		return ret;
	inode_lock_nested(dir, I_MUTEX_PARENT);
	dentry = shmpool_name_lookup(root->dentry, name);
	if (IS_ERR(dentry))
		ret = PTR_ERR(dentry);
	else if (!dentry)
		ret = -ENOENT;
	else
		ret = shmpool_may_unlink(root, d_inode(dentry));
	if (!ret)
		ret = shmpool_dir_unlink(dir, dentry);
	if (!ret)
		d_delete(dentry);
	inode_unlock(dir);
	if (!IS_ERR_OR_NULL(dentry))
		dput(dentry);	/* may be the last: the pool's inode goes */
	mnt_drop_write(root->mnt);
	return ret;
}

static int shmpool_fill_super(struct super_block *sb, struct fs_context *fc)
{
	struct shmpool_scope *scope;
	struct inode *root;

	scope = kzalloc(sizeof(*scope), GFP_KERNEL_ACCOUNT);
	if (!scope)
		return -ENOMEM;
	INIT_LIST_HEAD(&scope->names);
	sb->s_fs_info = scope;
	sb->s_blocksize = PAGE_SIZE;
	sb->s_blocksize_bits = PAGE_SHIFT;
	sb->s_maxbytes = MAX_LFS_FILESIZE;
	sb->s_magic = SHMPOOL_MAGIC;
	sb->s_op = &shmpool_sops;
	sb->s_d_op = &shmpool_dops;
	sb->s_time_gran = 1;

	/* Sticky and world-writable: only owners (or CAP_FOWNER) unlink. */
	root = shmpool_new_inode(sb, S_IFDIR | 01777);
	if (!root)
		return -ENOMEM;
	root->i_op = &shmpool_dir_iops;
	root->i_fop = &shmpool_dir_fops;
	set_nlink(root, 2);
	sb->s_root = d_make_root(root);
	return sb->s_root ? 0 : -ENOMEM;
}

static int shmpool_get_tree(struct fs_context *fc)
{
	return get_tree_nodev(fc, shmpool_fill_super);
}

static const struct fs_context_operations shmpool_fc_ops = {
	.get_tree = shmpool_get_tree,
};

static int shmpool_init_fs_context(struct fs_context *fc)
{
	fc->ops = &shmpool_fc_ops;
	return 0;
}

/* The last mount and file are gone: drop the names, then the instance. */
static void shmpool_kill_sb(struct super_block *sb)
{
	struct shmpool_scope *scope = sb->s_fs_info;
	struct shmpool_name *n, *tmp;

	if (scope) {
		list_for_each_entry_safe(n, tmp, &scope->names, node) {
			list_del(&n->node);
			dput(n->dentry);
			kfree(n);
		}
	}
	kill_anon_super(sb);
	kfree(scope);
}

static struct file_system_type shmpool_fs_type = {
	.owner = THIS_MODULE,
	.name = "shmpool",
	.init_fs_context = shmpool_init_fs_context,
	.kill_sb = shmpool_kill_sb,
	.fs_flags = FS_USERNS_MOUNT,
};
MODULE_ALIAS_FS("shmpool");

int shmpool_fs_init(void)
{
	int ret;

	ret = register_filesystem(&shmpool_fs_type);
	if (ret)
		return ret;
	shmpool_default_mnt = kern_mount(&shmpool_fs_type);
	if (IS_ERR(shmpool_default_mnt)) {
		unregister_filesystem(&shmpool_fs_type);
		return PTR_ERR(shmpool_default_mnt);
	}
	/*
	 * A superblock pins its filesystem's module. Our own internal mount
	 * must not, or the module could never be unloaded: every file of it
	 * pins the module through shmpool_fops anyway. Taken back at exit.
	 */
	module_put(THIS_MODULE);
	return 0;
}

void shmpool_fs_exit(void)
{
	struct shmpool_scope *scope = shmpool_default_mnt->mnt_sb->s_fs_info;
	size_t n = list_count_nodes(&scope->names);

	/* No file is open (each pins the module): only names are left. */
	if (n)
		pr_info("dropping %zu named pools of the default scope\n", n);
	__module_get(THIS_MODULE);	/* what kern_unmount() will put */
	kern_unmount(shmpool_default_mnt);
	unregister_filesystem(&shmpool_fs_type);
}
