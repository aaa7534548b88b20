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
 * A fault maps up to SHMPOOL_FAULT_AROUND pages around the faulting one
 * (vm_insert_pages(), which needs VM_MIXEDMAP: the pages stay refcounted and
 * GUP still finds them), so first touch costs one fault per 64 KiB.
 *
 * HUGE pools (SHMPOOL_CREATE_HUGE, where compat.h has SHMPOOL_HAVE_HUGE) are
 * mapped instead as VM_PFNMAP: ->huge_fault inserts a PMD for each 2 MiB of
 * the VMA that is one aligned run of an extent, ->fault 4 KiB PFN entries
 * elsewhere. PFN entries hold no page references; the VMA's pool reference
 * keeps the pages, and zap removes the entries before ->close drops it.
 *
 * The status page (attach.c) is mapped at SHMPOOL_STATUS_OFFSET, beyond any
 * pool: one page, read-only for good (no VM_MAYWRITE, no VM_MAYEXEC), its
 * VMA holding the pool like any other.
 */
#include <linux/mm.h>
#include <linux/pagemap.h>

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

/* Pages mapped by one fault: the core's fault-around default, 64 KiB. */
#define SHMPOOL_FAULT_AROUND	16UL

/*
 * The aligned window of SHMPOOL_FAULT_AROUND pages holding the fault,
 * clipped to the VMA (which ->mmap keeps inside the pool): [start, *end).
 */
static unsigned long shmpool_around(struct vm_fault *vmf, unsigned long *end)
{
	struct vm_area_struct *vma = vmf->vma;
	unsigned long win = ALIGN_DOWN(vmf->address,
				       SHMPOOL_FAULT_AROUND << PAGE_SHIFT);

	*end = min(win + (SHMPOOL_FAULT_AROUND << PAGE_SHIFT), vma->vm_end);
	return max(win, vma->vm_start);
}

/*
 * Map the @nr pool pages at [@addr, ...) that are not mapped yet. Best
 * effort: the fault itself needs none of them. vm_insert_pages() takes the
 * PTEs' page references and stops at the first PTE already present
 * (-EBUSY, e.g. another thread's fault): skip that one and go on.
 */
static void shmpool_map_run(struct vm_area_struct *vma, unsigned long addr,
			    unsigned long nr)
{
	struct shmpool_pool *pool = vma->vm_private_data;
	struct page *pages[SHMPOOL_FAULT_AROUND];
	pgoff_t pgoff = linear_page_index(vma, addr);
	unsigned long i, left;

	while (nr) {
		for (i = 0; i < nr; i++)
			pages[i] = shmpool_pool_page(pool, pgoff + i);
		left = nr;
		if (vm_insert_pages(vma, addr, pages, &left) != -EBUSY || !left)
			return;
		i = nr - left + 1;	/* the inserted ones and the busy one */
		addr += i << PAGE_SHIFT;
		pgoff += i;
		nr -= i;
	}
}

static vm_fault_t shmpool_vm_fault(struct vm_fault *vmf)
{
	struct vm_area_struct *vma = vmf->vma;
	struct shmpool_pool *pool = vma->vm_private_data;
	unsigned long addr = vmf->address & PAGE_MASK;
	unsigned long start, end;
	struct page *page;

	/* ->mmap bounds the VMA and VM_DONTEXPAND keeps it so; stay safe. */
	if (vmf->pgoff >= pool->nr_pages)
		return VM_FAULT_SIGBUS;
	start = shmpool_around(vmf, &end);
	shmpool_map_run(vma, start, (addr - start) >> PAGE_SHIFT);
	shmpool_map_run(vma, addr + PAGE_SIZE, (end - addr) / PAGE_SIZE - 1);
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

static unsigned long shmpool_pfn(struct vm_area_struct *vma, unsigned long addr)
{
	struct shmpool_pool *pool = vma->vm_private_data;

	return page_to_pfn(shmpool_pool_page(pool, linear_page_index(vma, addr)));
}

/* HUGE pools, 4 KiB entries: the fault's page, then the window around it. */
static vm_fault_t shmpool_pfn_fault(struct vm_fault *vmf)
{
	struct vm_area_struct *vma = vmf->vma;
	struct shmpool_pool *pool = vma->vm_private_data;
	unsigned long addr = vmf->address & PAGE_MASK;
	unsigned long start, end, a;
	vm_fault_t ret;

	if (vmf->pgoff >= pool->nr_pages)
		return VM_FAULT_SIGBUS;
	ret = vmf_insert_pfn(vma, addr, shmpool_pfn(vma, addr));
	if (ret != VM_FAULT_NOPAGE)
		return ret;
	/* An entry already present is left as it is. */
	start = shmpool_around(vmf, &end);
	for (a = start; a < end; a += PAGE_SIZE)
		if (a != addr)
			vmf_insert_pfn(vma, a, shmpool_pfn(vma, a));
	return VM_FAULT_NOPAGE;
}

#if SHMPOOL_HAVE_HUGE
/*
 * One PMD for the 2 MiB around the fault if all of it is in this VMA and in
 * one extent, aligned in the pool and physically (pool.c allocates so);
 * otherwise the core falls back to ->fault.
 */
static vm_fault_t shmpool_huge_fault(struct vm_fault *vmf, unsigned int order)
{
	struct vm_area_struct *vma = vmf->vma;
	struct shmpool_pool *pool = vma->vm_private_data;
	unsigned long haddr = vmf->address & PMD_MASK;
	const struct shmpool_extent_k *ext;
	unsigned long pfn;
	pgoff_t pgoff;

	if (order != SHMPOOL_PMD_ORDER)
		return VM_FAULT_FALLBACK;
	if (haddr < vma->vm_start || haddr + PMD_SIZE > vma->vm_end)
		return VM_FAULT_FALLBACK;
	pgoff = linear_page_index(vma, haddr);
	if (!IS_ALIGNED(pgoff, HPAGE_PMD_NR) ||
	    pgoff + HPAGE_PMD_NR > pool->nr_pages)
		return VM_FAULT_FALLBACK;
	ext = shmpool_pool_extent(pool, pgoff);
	if (pgoff + HPAGE_PMD_NR > ext->pgoff + ext->nr_pages)
		return VM_FAULT_FALLBACK;
	pfn = page_to_pfn(ext->page) + (pgoff - ext->pgoff);
	if (!IS_ALIGNED(pfn, HPAGE_PMD_NR))
		return VM_FAULT_FALLBACK;
	return shmpool_insert_pfn_pmd(vmf, pfn, vmf->flags & FAULT_FLAG_WRITE);
}
#endif

static const struct vm_operations_struct shmpool_pfn_vm_ops = {
	.open = shmpool_vm_open,
	.close = shmpool_vm_close,
	.fault = shmpool_pfn_fault,
#if SHMPOOL_HAVE_HUGE
	.huge_fault = shmpool_huge_fault,
#endif
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
	if (pool->huge) {
		vm_flags_set(vma, VM_PFNMAP);
		vma->vm_ops = &shmpool_pfn_vm_ops;
	} else {
		/* vm_insert_pages() at fault time needs it set by now. */
		vm_flags_set(vma, VM_MIXEDMAP);
		vma->vm_ops = &shmpool_vm_ops;
	}
	vma->vm_private_data = pool;
	shmpool_vm_open(vma);
	return 0;
}
