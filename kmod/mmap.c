// SPDX-License-Identifier: GPL-2.0
/*
 * Mapping pools: MAP_SHARED only, pages handed out by .fault.
 *
 * Pages are ordinary refcounted pages (not PFNMAP), so GUP users such as
 * O_DIRECT and vmsplice work on a mapped pool, and a pin outlives the pool
 * safely. io_uring fixed buffers depend on the kernel: 6.1 refuses
 * file-backed memory other than shmem/hugetlbfs (EOPNOTSUPP), 6.12 pins
 * pool pages. Each VMA holds a pool reference from ->mmap/->open to
 * ->close, which covers fork, partial munmap (split VMAs) and mremap moves.
 * What the rest of mm does with these VMAs (VM_DONTEXPAND makes them
 * VM_SPECIAL) is in the UAPI header's mmap DOC.
 *
 * The status page (attach.c) is mapped at SHMPOOL_STATUS_OFFSET, beyond any
 * pool: one page, read-only for good (no VM_MAYWRITE, no VM_MAYEXEC), its
 * VMA holding the pool like any other.
 */
#include <linux/mm.h>

#include "compat.h"
#include "shmpool.h"

static void shmpool_vm_open(struct vm_area_struct *vma)
{
	struct shmpool_pool *pool = vma->vm_private_data;

	shmpool_pool_get(pool);
	atomic_inc(&pool->mappings);
}

static void shmpool_vm_close(struct vm_area_struct *vma)
{
	struct shmpool_pool *pool = vma->vm_private_data;

	atomic_dec(&pool->mappings);
	shmpool_pool_put(pool);
}

static vm_fault_t shmpool_vm_fault(struct vm_fault *vmf)
{
	struct shmpool_pool *pool = vmf->vma->vm_private_data;
	struct page *page;

	/* ->mmap bounds the VMA and VM_DONTEXPAND keeps it so; stay safe. */
	if (vmf->pgoff >= pool->nr_pages)
		return VM_FAULT_SIGBUS;
	page = shmpool_pool_page(pool, vmf->pgoff);
	/* The PTE's reference; dropped by zap when the page is unmapped. */
	get_page(page);
	vmf->page = page;
	return 0;
}

static const struct vm_operations_struct shmpool_vm_ops = {
	.open = shmpool_vm_open,
	.close = shmpool_vm_close,
	.fault = shmpool_vm_fault,
};

static vm_fault_t shmpool_status_fault(struct vm_fault *vmf)
{
	struct shmpool_pool *pool = vmf->vma->vm_private_data;
	struct page *page;

	if (vmf->pgoff != SHMPOOL_STATUS_OFFSET >> PAGE_SHIFT)
		return VM_FAULT_SIGBUS;
	/* Made by ->mmap; lives as long as the pool this VMA holds. */
	page = shmpool_status_page(pool);
	if (!page)
		return VM_FAULT_SIGBUS;
	get_page(page);
	vmf->page = page;
	return 0;
}

/* The status page holds the pool but is not one of its @mappings (INFO). */
static void shmpool_status_vm_open(struct vm_area_struct *vma)
{
	shmpool_pool_get(vma->vm_private_data);
}

static void shmpool_status_vm_close(struct vm_area_struct *vma)
{
	shmpool_pool_put(vma->vm_private_data);
}

static const struct vm_operations_struct shmpool_status_vm_ops = {
	.open = shmpool_status_vm_open,
	.close = shmpool_status_vm_close,
	.fault = shmpool_status_fault,
};

static int shmpool_mmap_status(struct shmpool_pool *pool,
			       struct vm_area_struct *vma)
{
	if (vma_pages(vma) != 1)
		return -EINVAL;
	/* Nobody writes or runs the kernel's record, not even later. */
	if (vma->vm_flags & (VM_WRITE | VM_EXEC))
		return -EACCES;
	vm_flags_clear(vma, VM_MAYWRITE | VM_MAYEXEC);
	if (!shmpool_status_page(pool))
		return -ENOMEM;
	vm_flags_set(vma, VM_DONTEXPAND | VM_DONTDUMP);
	vma->vm_ops = &shmpool_status_vm_ops;
	vma->vm_private_data = pool;
	shmpool_status_vm_open(vma);
	return 0;
}

int shmpool_mmap(struct file *filp, struct vm_area_struct *vma)
{
	struct shmpool_file *sf = filp->private_data;
	struct shmpool_pool *pool = shmpool_file_pool(sf);
	unsigned long npages = vma_pages(vma);

	/* A private (COW) copy of pool pages would silently stop sharing. */
	if (!(vma->vm_flags & VM_MAYSHARE))
		return -EINVAL;
	if (vma->vm_pgoff == SHMPOOL_STATUS_OFFSET >> PAGE_SHIFT)
		return shmpool_mmap_status(pool, vma);
	if (vma->vm_pgoff >= pool->nr_pages ||
	    npages > pool->nr_pages - vma->vm_pgoff)
		return -EINVAL;
	if (sf->rdonly) {
		if (vma->vm_flags & VM_WRITE)
			return -EACCES;
		/* So that mprotect(PROT_WRITE) fails too. */
		vm_flags_clear(vma, VM_MAYWRITE);
	}
	/*
	 * No shared executable memory unless the creator asked for it: as on
	 * a noexec mount, PROT_EXEC is EPERM and, without VM_MAYEXEC, a later
	 * mprotect(PROT_EXEC) fails with EACCES.
	 */
	if (!pool->exec) {
		if (vma->vm_flags & VM_EXEC)
			return -EPERM;
		vm_flags_clear(vma, VM_MAYEXEC);
	}
	vm_flags_set(vma, VM_DONTEXPAND | VM_DONTDUMP);
	vma->vm_ops = &shmpool_vm_ops;
	vma->vm_private_data = pool;
	shmpool_vm_open(vma);
	return 0;
}
