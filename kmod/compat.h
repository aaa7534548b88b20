/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Every kernel-version difference shmpool meets lives here, chosen by
 * feature (a probe in Kbuild or a macro the headers define), never by
 * version number or distribution.
 */
#ifndef _SHMPOOL_COMPAT_H
#define _SHMPOOL_COMPAT_H

#include <linux/mm.h>
#include <linux/mmzone.h>
#include <linux/log2.h>

/*
 * vm_flags became read-only behind vm_flags_set()/vm_flags_clear() in 6.3;
 * before that the field was written directly (mmap_lock held for write in
 * both cases, as in ->mmap).
 */
#ifndef SHMPOOL_HAVE_VM_FLAGS_SET
static inline void vm_flags_set(struct vm_area_struct *vma, vm_flags_t flags)
{
	vma->vm_flags |= flags;
}

static inline void vm_flags_clear(struct vm_area_struct *vma, vm_flags_t flags)
{
	vma->vm_flags &= ~flags;
}
#endif

/*
 * The largest order the buddy allocator hands out. MAX_ORDER changed meaning
 * (exclusive, then inclusive) and became MAX_PAGE_ORDER across 6.1..6.8, but
 * MAX_ORDER_NR_PAGES has always been the page count of that largest block.
 */
#define SHMPOOL_MAX_ORDER	ilog2(MAX_ORDER_NR_PAGES)

/*
 * eventfd_signal() lost its count argument in 6.8 (it always added 1
 * anyway). Kbuild probes the old prototype.
 */
#include <linux/eventfd.h>
static inline void shmpool_eventfd_signal(struct eventfd_ctx *ctx)
{
#ifdef SHMPOOL_HAVE_EVENTFD_SIGNAL_N
	eventfd_signal(ctx, 1);
#else
	eventfd_signal(ctx);
#endif
}

#endif /* _SHMPOOL_COMPAT_H */
