// SPDX-License-Identifier: GPL-2.0
/*
 * dma-buf export: the way to give (part of) a pool to a device.
 *
 * SHMPOOL_IOC_EXPORT_DMABUF makes a dma-buf of a page-aligned range of the
 * fd's pool. The dma-buf holds a pool reference from export to its release,
 * and the dma-buf core holds the module (exp_info.owner) as long: every
 * importer's attachment and mapping, and every CPU mapping of the dma-buf,
 * holds the dma-buf's file, so the pool and the module outlive them all.
 * Pool pages never move (they are pinned for the pool's life), so the
 * exporter is a static one: no pin/unpin, no move_notify.
 *
 * A mapping for a device is a fresh sg_table of the range with one entry
 * per run of physically contiguous pages, runs of adjacent extents merged,
 * mapped with dma_map_sgtable() for the importer's device. The exporter
 * keeps the list of live device mappings so that CPU access bracketing
 * (DMA_BUF_IOCTL_SYNC, dma_buf_begin/end_cpu_access()) syncs each of them.
 *
 * Lock order: the dma-buf core calls map/unmap with the reservation lock
 * held (6.2 on) and begin/end_cpu_access without it; ours (db->lock) is
 * taken inside either and nothing is taken inside it.
 */
#include <linux/dma-buf.h>
#include <linux/dma-mapping.h>
#include <linux/highmem.h>
#include <linux/iosys-map.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/scatterlist.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>

#include "compat.h"
#include "shmpool.h"

SHMPOOL_IMPORT_NS_DMA_BUF();

/* sg entry lengths are unsigned int: a page-aligned cap below 4 GiB. */
#define SHMPOOL_SEG_MAX		(UINT_MAX & PAGE_MASK)

struct shmpool_dmabuf {
	struct shmpool_pool *pool;	/* a reference, dropped at release */
	pgoff_t pgoff;			/* first pool page of the range */
	unsigned long nr_pages;
	struct mutex lock;		/* protects the fields below */
	struct list_head maps;		/* struct shmpool_dmabuf_map.node */
	void *vaddr;			/* the vmap, NULL when none */
};

/* One live device mapping (map_dma_buf to unmap_dma_buf). */
struct shmpool_dmabuf_map {
	struct list_head node;
	struct device *dev;
	struct sg_table *sgt;
	enum dma_data_direction dir;
};

/*
 * Walk the range's physically contiguous runs: with @sgt NULL count the
 * entries a table needs, else fill @sgt's (allocated with that count).
 * Extents are sorted by pgoff and tile the pool.
 */
static unsigned int shmpool_dmabuf_runs(struct shmpool_dmabuf *db,
					struct sg_table *sgt)
{
	struct shmpool_pool *pool = db->pool;
	pgoff_t pos = db->pgoff, end = db->pgoff + db->nr_pages;
	struct scatterlist *sg = sgt ? sgt->sgl : NULL;
	unsigned long run_pfn = 0, run_len = 0;	/* the entry being built */
	struct page *run_page = NULL;
	unsigned int i, n = 0;

	for (i = 0; i < pool->nr_extents && pos < end; i++) {
		const struct shmpool_extent_k *e = &pool->extents[i];
		unsigned long skip, take;
		struct page *page;

		if (e->pgoff + e->nr_pages <= pos)
			continue;
		skip = pos - e->pgoff;
		take = min(e->nr_pages - skip, end - pos);
		page = e->page + skip;
		pos += take;
		while (take) {
			unsigned long room = SHMPOOL_SEG_MAX - run_len;
			unsigned long bytes = min(take << PAGE_SHIFT, room);

			if (run_page && page_to_pfn(page) ==
			    run_pfn + (run_len >> PAGE_SHIFT) && bytes) {
				run_len += bytes;
			} else {
				if (run_page && sg) {
					sg_set_page(sg, run_page, run_len, 0);
					sg = sg_next(sg);
				}
				bytes = min(take << PAGE_SHIFT,
					    (unsigned long)SHMPOOL_SEG_MAX);
				run_page = page;
				run_pfn = page_to_pfn(page);
				run_len = bytes;
				n++;
			}
			page += bytes >> PAGE_SHIFT;
			take -= bytes >> PAGE_SHIFT;
		}
	}
	if (run_page && sg)
		sg_set_page(sg, run_page, run_len, 0);
	return n;
}

static struct sg_table *shmpool_dmabuf_sgt(struct shmpool_dmabuf *db)
{
	struct sg_table *sgt;
	int ret;

	sgt = kzalloc(sizeof(*sgt), GFP_KERNEL);
	if (!sgt)
		return ERR_PTR(-ENOMEM);
	ret = sg_alloc_table(sgt, shmpool_dmabuf_runs(db, NULL), GFP_KERNEL);
	if (ret) {
		kfree(sgt);
		return ERR_PTR(ret);
	}
	shmpool_dmabuf_runs(db, sgt);
	return sgt;
}

static void shmpool_dmabuf_sgt_free(struct sg_table *sgt)
{
	sg_free_table(sgt);
	kfree(sgt);
}

static struct sg_table *shmpool_dmabuf_map(struct dma_buf_attachment *at,
					   enum dma_data_direction dir)
{
	struct shmpool_dmabuf *db = at->dmabuf->priv;
	struct shmpool_dmabuf_map *m;
	struct sg_table *sgt;
	int ret;

	m = kzalloc(sizeof(*m), GFP_KERNEL);
	if (!m)
		return ERR_PTR(-ENOMEM);
	sgt = shmpool_dmabuf_sgt(db);
	if (IS_ERR(sgt)) {
		ret = PTR_ERR(sgt);
		goto err_free;
	}
	ret = dma_map_sgtable(at->dev, sgt, dir, 0);
	if (ret)
		goto err_sgt;
	m->dev = at->dev;
	m->sgt = sgt;
	m->dir = dir;
	mutex_lock(&db->lock);
	list_add(&m->node, &db->maps);
	mutex_unlock(&db->lock);
	return sgt;

err_sgt:
	shmpool_dmabuf_sgt_free(sgt);
err_free:
	kfree(m);
	return ERR_PTR(ret);
}

static void shmpool_dmabuf_unmap(struct dma_buf_attachment *at,
				 struct sg_table *sgt,
				 enum dma_data_direction dir)
{
	struct shmpool_dmabuf *db = at->dmabuf->priv;
	struct shmpool_dmabuf_map *m, *found = NULL;

	mutex_lock(&db->lock);
	list_for_each_entry(m, &db->maps, node) {
		if (m->sgt == sgt) {
			list_del(&m->node);
			found = m;
			break;
		}
	}
	mutex_unlock(&db->lock);
	/* The core hands back only tables we made. */
	if (WARN_ON(!found))
		return;
	dma_unmap_sgtable(at->dev, sgt, dir, 0);
	shmpool_dmabuf_sgt_free(sgt);
	kfree(found);
}

/*
 * CPU access bracketing: hand every device mapping to the CPU (and back),
 * and keep the kernel's vmap coherent where the caches need it.
 */
static int shmpool_dmabuf_begin_cpu(struct dma_buf *dmabuf,
				    enum dma_data_direction dir)
{
	struct shmpool_dmabuf *db = dmabuf->priv;
	struct shmpool_dmabuf_map *m;

	mutex_lock(&db->lock);
	list_for_each_entry(m, &db->maps, node)
		dma_sync_sgtable_for_cpu(m->dev, m->sgt, m->dir);
	if (db->vaddr)
		invalidate_kernel_vmap_range(db->vaddr, dmabuf->size);
	mutex_unlock(&db->lock);
	return 0;
}

static int shmpool_dmabuf_end_cpu(struct dma_buf *dmabuf,
				  enum dma_data_direction dir)
{
	struct shmpool_dmabuf *db = dmabuf->priv;
	struct shmpool_dmabuf_map *m;

	mutex_lock(&db->lock);
	if (db->vaddr)
		flush_kernel_vmap_range(db->vaddr, dmabuf->size);
	list_for_each_entry(m, &db->maps, node)
		dma_sync_sgtable_for_device(m->dev, m->sgt, m->dir);
	mutex_unlock(&db->lock);
	return 0;
}

static vm_fault_t shmpool_dmabuf_fault(struct vm_fault *vmf)
{
	struct shmpool_dmabuf *db = vmf->vma->vm_private_data;
	struct page *page;

	/* The core bounds the VMA by the dma-buf's size; stay safe. */
	if (vmf->pgoff >= db->nr_pages)
		return VM_FAULT_SIGBUS;
	page = shmpool_pool_page(db->pool, db->pgoff + vmf->pgoff);
	/* The PTE's reference; dropped by zap when the page is unmapped. */
	get_page(page);
	vmf->page = page;
	return 0;
}

/* The VMA holds the dma-buf's file, which holds db and the pool. */
static const struct vm_operations_struct shmpool_dmabuf_vm_ops = {
	.fault = shmpool_dmabuf_fault,
};

static int shmpool_dmabuf_mmap(struct dma_buf *dmabuf,
			       struct vm_area_struct *vma)
{
	struct shmpool_dmabuf *db = dmabuf->priv;

	/* As for pool fds: a private copy would silently stop sharing. */
	if (!(vma->vm_flags & VM_MAYSHARE))
		return -EINVAL;
	if (!db->pool->exec) {
		if (vma->vm_flags & VM_EXEC)
			return -EPERM;
		vm_flags_clear(vma, VM_MAYEXEC);
	}
	vm_flags_set(vma, VM_DONTEXPAND | VM_DONTDUMP);
	vma->vm_ops = &shmpool_dmabuf_vm_ops;
	vma->vm_private_data = db;
	return 0;
}

/* The core counts vmaps: we are called for the first and the last only. */
static int shmpool_dmabuf_vmap(struct dma_buf *dmabuf, struct iosys_map *map)
{
	struct shmpool_dmabuf *db = dmabuf->priv;
	struct page **pages;
	unsigned long i;
	void *vaddr;

	pages = kvmalloc_array(db->nr_pages, sizeof(*pages), GFP_KERNEL);
	if (!pages)
		return -ENOMEM;
	for (i = 0; i < db->nr_pages; i++)
		pages[i] = shmpool_pool_page(db->pool, db->pgoff + i);
	vaddr = vmap(pages, db->nr_pages, VM_MAP, PAGE_KERNEL);
	kvfree(pages);
	if (!vaddr)
		return -ENOMEM;
	mutex_lock(&db->lock);
	db->vaddr = vaddr;
	mutex_unlock(&db->lock);
	iosys_map_set_vaddr(map, vaddr);
	return 0;
}

static void shmpool_dmabuf_vunmap(struct dma_buf *dmabuf, struct iosys_map *map)
{
	struct shmpool_dmabuf *db = dmabuf->priv;

	mutex_lock(&db->lock);
	db->vaddr = NULL;
	mutex_unlock(&db->lock);
	vunmap(map->vaddr);
}

/* The dma-buf's file is gone: no attachment, mapping or vmap is left. */
static void shmpool_dmabuf_release(struct dma_buf *dmabuf)
{
	struct shmpool_dmabuf *db = dmabuf->priv;

	WARN_ON(!list_empty(&db->maps) || db->vaddr);
	/* Pairs with the shmpool_pool_get() in shmpool_dmabuf_export(). */
	shmpool_pool_put(db->pool);
	mutex_destroy(&db->lock);
	kfree(db);
}

static const struct dma_buf_ops shmpool_dmabuf_ops = {
	.map_dma_buf = shmpool_dmabuf_map,
	.unmap_dma_buf = shmpool_dmabuf_unmap,
	.begin_cpu_access = shmpool_dmabuf_begin_cpu,
	.end_cpu_access = shmpool_dmabuf_end_cpu,
	.mmap = shmpool_dmabuf_mmap,
	.vmap = shmpool_dmabuf_vmap,
	.vunmap = shmpool_dmabuf_vunmap,
	.release = shmpool_dmabuf_release,
};

/*
 * SHMPOOL_IOC_EXPORT_DMABUF: a new dma-buf of @cmd's range; returns the
 * dma-buf's file (its only reference, for the caller to install or fput)
 * and sets @cmd->nr_segments.
 */
struct file *shmpool_dmabuf_export(struct shmpool_file *sf,
				   struct shmpool_export_dmabuf *cmd)
{
	struct shmpool_pool *pool = shmpool_file_pool(sf);
	u64 bytes = (u64)pool->nr_pages << PAGE_SHIFT;
	DEFINE_DMA_BUF_EXPORT_INFO(exp);
	struct shmpool_dmabuf *db;
	struct dma_buf *dmabuf;

	if (cmd->flags & ~SHMPOOL_EXPORT_NOCLOEXEC || cmd->__reserved)
		return ERR_PTR(-EINVAL);
	if (!cmd->length || !PAGE_ALIGNED(cmd->offset) ||
	    !PAGE_ALIGNED(cmd->length))
		return ERR_PTR(-EINVAL);
	if (cmd->offset >= bytes || cmd->length > bytes - cmd->offset)
		return ERR_PTR(-EINVAL);
	/* An importing device's writes cannot be refused: no device for them. */
	if (sf->rdonly)
		return ERR_PTR(-EACCES);

	db = kzalloc(sizeof(*db), GFP_KERNEL_ACCOUNT);
	if (!db)
		return ERR_PTR(-ENOMEM);
	/* Dropped by shmpool_dmabuf_release(), or below on failure. */
	shmpool_pool_get(pool);
	db->pool = pool;
	db->pgoff = cmd->offset >> PAGE_SHIFT;
	db->nr_pages = cmd->length >> PAGE_SHIFT;
	mutex_init(&db->lock);
	INIT_LIST_HEAD(&db->maps);
	cmd->nr_segments = shmpool_dmabuf_runs(db, NULL);

	exp.ops = &shmpool_dmabuf_ops;
	exp.size = cmd->length;
	exp.flags = O_RDWR;
	exp.priv = db;
	dmabuf = dma_buf_export(&exp);
	if (IS_ERR(dmabuf)) {
		shmpool_pool_put(pool);
		mutex_destroy(&db->lock);
		kfree(db);
		return ERR_CAST(dmabuf);
	}
	/* From here on release() owns db and the pool reference. */
	return dmabuf->file;
}
