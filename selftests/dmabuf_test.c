/* dmabuf_test: SHMPOOL_IOC_EXPORT_DMABUF — rejected inputs, mmap + sync data, segments, lifetime, and real importers (vivid captures, vgem imports). */
// SPDX-License-Identifier: GPL-2.0
#define _GNU_SOURCE
#include <poll.h>
#include <stddef.h>
#include <linux/dma-buf.h>
#include <linux/videodev2.h>

#include "shmpool_test_util.h"
#include <shmpool.h>

/* TEST() of the 6.1 harness leaves its variant parameter unused. */
#pragma GCC diagnostic ignored "-Wunused-parameter"

/*
 * The few DRM ioctls used here, from the kernel's UAPI (include/uapi/drm/
 * drm.h), which Debian ships in libdrm-dev, not in linux-libc-dev.
 */
struct sp_drm_version {
	int version_major, version_minor, version_patchlevel;
	size_t name_len;
	char *name;
	size_t date_len;
	char *date;
	size_t desc_len;
	char *desc;
};

struct sp_drm_prime_handle {
	uint32_t handle;
	uint32_t flags;
	int32_t fd;
};

struct sp_drm_gem_close {
	uint32_t handle;
	uint32_t pad;
};

#define SP_DRM_IOCTL_VERSION	_IOWR('d', 0x00, struct sp_drm_version)
#define SP_DRM_IOCTL_GEM_CLOSE	_IOW('d', 0x09, struct sp_drm_gem_close)
#define SP_DRM_IOCTL_PRIME_FD_TO_HANDLE _IOWR('d', 0x2e, struct sp_drm_prime_handle)

/*
 * A module without SHMPOOL_FEAT_DMABUF is a failure on a kernel with
 * dma-buf (its debugfs directory shows it), and a skip on one without
 * CONFIG_DMA_SHARED_BUFFER, where the module cannot export.
 */
#define SP_NEED_DMABUF(features) do {					\
	if (!((features) & SHMPOOL_FEAT_DMABUF)) {			\
		if (access("/sys/kernel/debug/dma_buf", F_OK))		\
			SP_SKIP_SETUP("kernel without CONFIG_DMA_SHARED_BUFFER"); \
		ASSERT_NE(0ULL, (features) & SHMPOOL_FEAT_DMABUF)	\
			TH_LOG("the module has no dma-buf export on a kernel with dma-buf"); \
	}								\
} while (0)

FIXTURE(dmabuf) {
	int dev;		/* scope fd */
	long page;
	struct shmpool_api api;
	char name[SHMPOOL_NAME_MAX];
};

FIXTURE_SETUP(dmabuf)
{
	if (!sp_setup_dev(_metadata, &self->dev, &self->page, &self->api))
		return;
	SP_NEED_DMABUF(self->api.features);
	sp_make_name(self->name, "dmabuf");
}

FIXTURE_TEARDOWN(dmabuf)
{
	sp_unlink_quiet(self->name);
	close(self->dev);
}

/* EXPORT_DMABUF on @fd: the dma-buf fd (and *@segs), or -errno. */
static int export_range(int fd, uint64_t off, uint64_t len, uint32_t flags,
			uint32_t *segs)
{
	struct shmpool_export_dmabuf e;
	int ret;

	memset(&e, 0, sizeof(e));
	e.size = sizeof(e);
	e.flags = flags;
	e.offset = off;
	e.length = len;
	e.fd = -1;
	ret = sp_ioctl(fd, SHMPOOL_IOC_EXPORT_DMABUF, &e);
	if (ret)
		return ret;
	if (segs)
		*segs = e.nr_segments;
	return e.fd;
}

/* EXPORT_DMABUF with @e as given (size and all), -errno or the fd. */
static int export_raw(int fd, struct shmpool_export_dmabuf *e)
{
	int ret = sp_ioctl(fd, SHMPOOL_IOC_EXPORT_DMABUF, e);

	return ret ? ret : e->fd;
}

static int dmabuf_sync(int fd, uint64_t flags)
{
	struct dma_buf_sync s = { .flags = flags };

	return sp_ioctl(fd, DMA_BUF_IOCTL_SYNC, &s);
}

/* A new anonymous pool of @pages pages on a fresh scope fd, filled with @seed. */
static int filled_pool(FIXTURE_DATA(dmabuf) *self, size_t pages,
		       uint32_t flags, unsigned int seed)
{
	int fd = sp_open_dev(O_RDWR);

	if (fd < 0)
		return -errno;
	if (sp_create_filled(fd, NULL, pages * self->page, flags, 0600, seed)) {
		close(fd);
		return -1;
	}
	return fd;
}

static long long module_refs(void)
{
	return sp_read_number("/sys/module/shmpool/refcnt");
}

/* ---- rejected inputs: one test each ---- */

TEST_F(dmabuf, rejects_unknown_flag)
{
	int pool = filled_pool(self, 4, 0, 1);
	struct shmpool_export_dmabuf e = {
		.size = sizeof(e), .flags = 1U << 31, .length = 4 * self->page,
	};

	ASSERT_LE(0, pool);
	EXPECT_EQ(-EINVAL, export_raw(pool, &e));
	close(pool);
}

TEST_F(dmabuf, rejects_nonzero_reserved)
{
	int pool = filled_pool(self, 4, 0, 1);
	struct shmpool_export_dmabuf e = {
		.size = sizeof(e), .length = 4 * self->page, .__reserved = 1,
	};

	ASSERT_LE(0, pool);
	EXPECT_EQ(-EINVAL, export_raw(pool, &e));
	close(pool);
}

TEST_F(dmabuf, rejects_short_size)
{
	int pool = filled_pool(self, 4, 0, 1);
	struct shmpool_export_dmabuf e = {
		.size = offsetof(struct shmpool_export_dmabuf, __reserved),
		.length = 4 * self->page,
	};

	ASSERT_LE(0, pool);
	EXPECT_EQ(-EINVAL, export_raw(pool, &e));
	close(pool);
}

TEST_F(dmabuf, rejects_unaligned_offset)
{
	int pool = filled_pool(self, 4, 0, 1);

	ASSERT_LE(0, pool);
	EXPECT_EQ(-EINVAL, export_range(pool, 100, self->page, 0, NULL));
	close(pool);
}

TEST_F(dmabuf, rejects_unaligned_length)
{
	int pool = filled_pool(self, 4, 0, 1);

	ASSERT_LE(0, pool);
	EXPECT_EQ(-EINVAL, export_range(pool, 0, self->page + 1, 0, NULL));
	close(pool);
}

TEST_F(dmabuf, rejects_zero_length)
{
	int pool = filled_pool(self, 4, 0, 1);

	ASSERT_LE(0, pool);
	EXPECT_EQ(-EINVAL, export_range(pool, 0, 0, 0, NULL));
	close(pool);
}

TEST_F(dmabuf, rejects_range_past_the_end)
{
	int pool = filled_pool(self, 4, 0, 1);

	ASSERT_LE(0, pool);
	EXPECT_EQ(-EINVAL, export_range(pool, self->page, 4 * self->page, 0, NULL));
	EXPECT_EQ(-EINVAL, export_range(pool, 4 * self->page, self->page, 0, NULL));
	/* offset + length wrapping around 2^64 is past the end too */
	EXPECT_EQ(-EINVAL, export_range(pool, self->page, -(uint64_t)self->page, 0, NULL));
	close(pool);
}

TEST_F(dmabuf, rejects_read_only_fd)
{
	int ro = sp_open_dev(O_RDWR);

	ASSERT_EQ(0, sp_create_filled(self->dev, self->name, 4 * self->page,
				      SHMPOOL_CREATE_EXCL, 0600, 1));
	ASSERT_LE(0, ro);
	ASSERT_EQ(0, sp_open_name(ro, self->name, SHMPOOL_OPEN_RDONLY, NULL));
	/* A device's writes could not be refused: no export at all. */
	EXPECT_EQ(-EACCES, export_range(ro, 0, 4 * self->page, 0, NULL));
	close(ro);
}

/* No free fd: EMFILE, nothing exported; with one, the export works. */
TEST_F(dmabuf, rejects_no_free_fd)
{
	int pool = sp_open_dev(O_RDWR), dups[SP_FULL_FDS], n, buf;
	struct rlimit old;

	ASSERT_LE(0, pool);
	ASSERT_EQ(0, sp_create(pool, NULL, self->page, 0, 0600, NULL));
	n = sp_fds_fill(pool, &old, dups);
	ASSERT_LE(0, n);
	EXPECT_EQ(-EMFILE, export_range(pool, 0, self->page, 0, NULL));
	ASSERT_EQ(0, sp_fds_unfill(&old, dups, n));
	buf = export_range(pool, 0, self->page, 0, NULL);
	EXPECT_LE(0, buf);
	close(buf);
	close(pool);
}

TEST_F(dmabuf, rejects_scope_fd)
{
	EXPECT_EQ(-ENOTTY, export_range(self->dev, 0, self->page, 0, NULL));
}

TEST_F(dmabuf, rejects_dmabuf_fd)
{
	int pool = filled_pool(self, 4, 0, 1), buf;

	ASSERT_LE(0, pool);
	buf = export_range(pool, 0, 4 * self->page, 0, NULL);
	ASSERT_LE(0, buf);
	/* A dma-buf is not a pool: our commands are unknown there. */
	EXPECT_EQ(-ENOTTY, export_range(buf, 0, self->page, 0, NULL));
	close(buf);
	close(pool);
}

/* ---- what works ---- */

TEST_F(dmabuf, whole_pool_mmap_and_sync)
{
	size_t len = 64 * self->page;
	int pool = filled_pool(self, 64, 0, 5), buf;
	uint8_t *p, *q;

	ASSERT_LE(0, pool);
	buf = export_range(pool, 0, len, 0, NULL);
	ASSERT_LE(0, buf);
	EXPECT_EQ((off_t)len, lseek(buf, 0, SEEK_END));
	EXPECT_EQ(FD_CLOEXEC, fcntl(buf, F_GETFD) & FD_CLOEXEC);
	q = sp_map(buf, len, PROT_READ | PROT_WRITE, 0);
	ASSERT_NE(MAP_FAILED, q);
	/* What the pool holds, the dma-buf shows ... */
	ASSERT_EQ(0, dmabuf_sync(buf, DMA_BUF_SYNC_START | DMA_BUF_SYNC_RW));
	EXPECT_EQ(-1, sp_check(q, len, 0, 5));
	/* ... and what is written into the dma-buf is in the pool. */
	sp_fill(q, len, 0, 6);
	ASSERT_EQ(0, dmabuf_sync(buf, DMA_BUF_SYNC_END | DMA_BUF_SYNC_RW));
	p = sp_map(pool, len, PROT_READ, 0);
	ASSERT_NE(MAP_FAILED, p);
	EXPECT_EQ(-1, sp_check(p, len, 0, 6));
	munmap(p, len);
	munmap(q, len);
	close(buf);
	close(pool);
}

TEST_F(dmabuf, nocloexec_flag)
{
	int pool = filled_pool(self, 2, 0, 1), buf;

	ASSERT_LE(0, pool);
	buf = export_range(pool, 0, 2 * self->page, SHMPOOL_EXPORT_NOCLOEXEC, NULL);
	ASSERT_LE(0, buf);
	EXPECT_EQ(0, fcntl(buf, F_GETFD) & FD_CLOEXEC);
	close(buf);
	close(pool);
}

TEST_F(dmabuf, range_maps_its_own_pages)
{
	size_t pages = 16, first = 3, n = 5;
	int pool = filled_pool(self, pages, 0, 7), buf;
	uint8_t *q;

	ASSERT_LE(0, pool);
	buf = export_range(pool, first * self->page, n * self->page, 0, NULL);
	ASSERT_LE(0, buf);
	EXPECT_EQ((off_t)(n * self->page), lseek(buf, 0, SEEK_END));
	q = sp_map(buf, n * self->page, PROT_READ, 0);
	ASSERT_NE(MAP_FAILED, q);
	EXPECT_EQ(-1, sp_check(q, n * self->page, first * self->page, 7));
	munmap(q, n * self->page);
	/* An offset into the dma-buf is relative to the range. */
	q = sp_map(buf, self->page, PROT_READ, 2 * self->page);
	ASSERT_NE(MAP_FAILED, q);
	EXPECT_EQ(-1, sp_check(q, self->page, (first + 2) * self->page, 7));
	munmap(q, self->page);
	/* Nothing beyond the range. */
	EXPECT_EQ(MAP_FAILED, sp_map(buf, (n + 1) * self->page, PROT_READ, 0));
	close(buf);
	close(pool);
}

TEST_F(dmabuf, mmap_private_or_exec_refused)
{
	int pool = filled_pool(self, 2, 0, 1), buf;

	ASSERT_LE(0, pool);
	buf = export_range(pool, 0, 2 * self->page, 0, NULL);
	ASSERT_LE(0, buf);
	EXPECT_EQ(MAP_FAILED, mmap(NULL, self->page, PROT_READ, MAP_PRIVATE, buf, 0));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(MAP_FAILED, sp_map(buf, self->page, PROT_READ | PROT_EXEC, 0));
	EXPECT_EQ(EPERM, errno);
	close(buf);
	close(pool);
}

TEST_F(dmabuf, contiguous_pool_is_one_segment)
{
	int pool = filled_pool(self, 64, SHMPOOL_CREATE_CONTIG, 1), buf;
	uint32_t segs = 0;

	ASSERT_LE(0, pool);
	buf = export_range(pool, 0, 64 * self->page, 0, &segs);
	ASSERT_LE(0, buf);
	EXPECT_EQ(1U, segs);
	close(buf);
	close(pool);
}

TEST_F(dmabuf, segments_at_most_extents)
{
	struct shmpool_extent ext[64];
	struct shmpool_info info;
	size_t pages = 1024;	/* 4 MiB: one or more buddy blocks */
	int pool = filled_pool(self, pages, 0, 1), buf;
	uint32_t segs = 0;

	ASSERT_LE(0, pool);
	ASSERT_EQ(0, sp_info(pool, &info, ext, 64));
	buf = export_range(pool, 0, pages * self->page, 0, &segs);
	ASSERT_LE(0, buf);
	EXPECT_LE(1U, segs);
	EXPECT_GE(info.nr_extents, segs);
	close(buf);
	/* One page of the pool is one segment. */
	buf = export_range(pool, 5 * self->page, self->page, 0, &segs);
	ASSERT_LE(0, buf);
	EXPECT_EQ(1U, segs);
	close(buf);
	close(pool);
}

/* ---- the library: shmpool_export_dmabuf() ---- */

TEST_F(dmabuf, lib_export_device_pool)
{
	struct shmpool *p;
	uint8_t *q;
	int buf;

	ASSERT_EQ(0, shmpool_create_anon(8 * self->page, SHMPOOL_BACKEND_DEVICE, &p));
	sp_fill(p->base, p->size, 0, 31);
	buf = shmpool_export_dmabuf(p, self->page, 2 * self->page, 0);
	ASSERT_LE(0, buf);
	q = sp_map(buf, 2 * self->page, PROT_READ, 0);
	ASSERT_NE(MAP_FAILED, q);
	EXPECT_EQ(-1, sp_check(q, 2 * self->page, self->page, 31));
	munmap(q, 2 * self->page);
	close(buf);
	EXPECT_EQ(-EINVAL, shmpool_export_dmabuf(p, 0, p->size, 1U << 5));
	EXPECT_EQ(-EINVAL, shmpool_export_dmabuf(p, 0, p->size + self->page, 0));
	EXPECT_EQ(0, shmpool_close(p));
}

/* Runs anywhere (the host too): memfd pools have no exporter. */
TEST(lib_memfd_pool_cannot_export)
{
	struct shmpool *p;

	ASSERT_EQ(0, shmpool_create_anon(4 * sp_page_size(), SHMPOOL_BACKEND_MEMFD, &p));
	EXPECT_EQ(-EOPNOTSUPP, shmpool_export_dmabuf(p, 0, p->size, 0));
	EXPECT_EQ(-EINVAL, shmpool_export_dmabuf(p, 0, p->size, 1U << 5));
	EXPECT_EQ(-EINVAL, shmpool_export_dmabuf(NULL, 0, 4096, 0));
	EXPECT_EQ(0, shmpool_close(p));
}

/* ---- lifetime: every order of closing leaves nothing behind ---- */

TEST_F(dmabuf, pool_closed_first_dmabuf_keeps_it)
{
	long long pools = sp_counter("pools"), refs = module_refs();
	size_t len = 8 * self->page;
	int pool = filled_pool(self, 8, 0, 9), buf;
	uint8_t *q;

	ASSERT_LE(0, pool);
	buf = export_range(pool, 0, len, 0, NULL);
	ASSERT_LE(0, buf);
	close(pool);
	/* The pool lives on in the dma-buf, and so does the module. */
	EXPECT_EQ(pools + 1, sp_counter("pools"));
	EXPECT_LT(refs, module_refs());
	q = sp_map(buf, len, PROT_READ, 0);
	ASSERT_NE(MAP_FAILED, q);
	EXPECT_EQ(-1, sp_check(q, len, 0, 9));
	munmap(q, len);
	close(buf);
	EXPECT_EQ(0, sp_await_counter("pools", pools, false, 5000));
	EXPECT_EQ(refs, module_refs());
}

TEST_F(dmabuf, dmabuf_closed_first_pool_unharmed)
{
	long long pools = sp_counter("pools");
	size_t len = 8 * self->page;
	int pool = filled_pool(self, 8, 0, 9), buf;
	uint8_t *p;

	ASSERT_LE(0, pool);
	buf = export_range(pool, 0, len, 0, NULL);
	ASSERT_LE(0, buf);
	close(buf);
	p = sp_map(pool, len, PROT_READ, 0);
	ASSERT_NE(MAP_FAILED, p);
	EXPECT_EQ(-1, sp_check(p, len, 0, 9));
	munmap(p, len);
	EXPECT_EQ(pools + 1, sp_counter("pools"));
	close(pool);
	EXPECT_EQ(0, sp_await_counter("pools", pools, false, 5000));
}

TEST_F(dmabuf, dmabuf_mapping_alone_keeps_pool)
{
	long long pools = sp_counter("pools");
	size_t len = 8 * self->page;
	int pool = filled_pool(self, 8, 0, 11), buf;
	uint8_t *q;

	ASSERT_LE(0, pool);
	buf = export_range(pool, 0, len, 0, NULL);
	ASSERT_LE(0, buf);
	q = sp_map(buf, len, PROT_READ | PROT_WRITE, 0);
	ASSERT_NE(MAP_FAILED, q);
	close(buf);
	close(pool);
	EXPECT_EQ(pools + 1, sp_counter("pools"));
	EXPECT_EQ(-1, sp_check(q, len, 0, 11));
	sp_fill(q, len, 0, 12);
	EXPECT_EQ(-1, sp_check(q, len, 0, 12));
	munmap(q, len);
	EXPECT_EQ(0, sp_await_counter("pools", pools, false, 5000));
}

/* ---- vgem: DRM PRIME import (attach + map) ---- */

/* An open vgem card, or -1. */
static int open_vgem(void)
{
	char path[32], name[16];
	int i, fd;

	for (i = 0; i < 8; i++) {
		struct sp_drm_version v = { .name = name, .name_len = sizeof(name) - 1 };

		snprintf(path, sizeof(path), "/dev/dri/card%d", i);
		fd = open(path, O_RDWR | O_CLOEXEC);
		if (fd < 0)
			continue;
		memset(name, 0, sizeof(name));
		if (!ioctl(fd, SP_DRM_IOCTL_VERSION, &v) && !strcmp(name, "vgem"))
			return fd;
		close(fd);
	}
	return -1;
}

static int prime_import(int card, int buf, uint32_t *handle)
{
	struct sp_drm_prime_handle h = { .fd = buf };
	int ret = sp_ioctl(card, SP_DRM_IOCTL_PRIME_FD_TO_HANDLE, &h);

	*handle = h.handle;
	return ret;
}

static int gem_close(int card, uint32_t handle)
{
	struct sp_drm_gem_close c = { .handle = handle };

	return sp_ioctl(card, SP_DRM_IOCTL_GEM_CLOSE, &c);
}

FIXTURE(vgem) {
	int card;
	long page;
	long long pools;
};

FIXTURE_SETUP(vgem)
{
	struct shmpool_api api;
	int dev;

	if (!sp_setup_dev(_metadata, &dev, &self->page, &api))
		return;
	close(dev);
	SP_NEED_DMABUF(api.features);
	self->card = open_vgem();
	if (self->card < 0)
		SP_SKIP_SETUP("no vgem card (vgem not loaded; the debug lane's kernel has no DRM)");
	self->pools = sp_counter("pools");
}

FIXTURE_TEARDOWN(vgem)
{
	if (self->card >= 0)
		close(self->card);
}

FIXTURE_VARIANT(vgem) {
	int order;	/* which goes first: 0 importer, 1 dma-buf, 2 pool */
};

FIXTURE_VARIANT_ADD(vgem, importer_first) { .order = 0 };
FIXTURE_VARIANT_ADD(vgem, dmabuf_first) { .order = 1 };
FIXTURE_VARIANT_ADD(vgem, pool_first) { .order = 2 };

TEST_F(vgem, prime_import_then_close_in_order)
{
	int pool = sp_anon_pool(256 * self->page), buf;
	uint32_t handle = 0, again = 0;

	ASSERT_LE(0, pool);
	buf = export_range(pool, 0, 256 * self->page, 0, NULL);
	ASSERT_LE(0, buf);
	/* The import attaches vgem's device and maps the sg_table. */
	ASSERT_EQ(0, prime_import(self->card, buf, &handle));
	EXPECT_NE(0U, handle);
	ASSERT_EQ(0, prime_import(self->card, buf, &again));
	EXPECT_EQ(handle, again);	/* one GEM object per dma-buf */
	switch (variant->order) {
	case 0:
		EXPECT_EQ(0, gem_close(self->card, handle));
		close(buf);
		EXPECT_EQ(self->pools + 1, sp_counter("pools"));
		close(pool);
		break;
	case 1:
		close(buf);
		close(pool);
		/* The GEM object holds the dma-buf, which holds the pool. */
		EXPECT_EQ(self->pools + 1, sp_counter("pools"));
		EXPECT_EQ(0, gem_close(self->card, handle));
		break;
	case 2:
		close(pool);
		EXPECT_EQ(self->pools + 1, sp_counter("pools"));
		EXPECT_EQ(0, gem_close(self->card, handle));
		EXPECT_EQ(self->pools + 1, sp_counter("pools"));
		close(buf);
		break;
	}
	EXPECT_EQ(0, sp_await_counter("pools", self->pools, false, 5000));
}

/* ---- vivid: a V4L2 capture device writes frames into the dma-buf ---- */

#define SP_BUFS 2

FIXTURE(vivid) {
	int video;
	long page;
	long long pools;
	struct v4l2_format fmt;
	size_t slot;		/* bytes per buffer in the pool, page-rounded */
};

/* An open vivid capture node, or -1. */
static int open_vivid(void)
{
	char path[32];
	int i, fd;

	for (i = 0; i < 8; i++) {
		struct v4l2_capability cap;

		snprintf(path, sizeof(path), "/dev/video%d", i);
		fd = open(path, O_RDWR | O_CLOEXEC);
		if (fd < 0)
			continue;
		memset(&cap, 0, sizeof(cap));
		if (!ioctl(fd, VIDIOC_QUERYCAP, &cap) &&
		    !strcmp((char *)cap.driver, "vivid") &&
		    (cap.device_caps & V4L2_CAP_VIDEO_CAPTURE))
			return fd;
		close(fd);
	}
	return -1;
}

FIXTURE_SETUP(vivid)
{
	struct shmpool_api api;
	int dev;

	self->video = -1;
	if (!sp_setup_dev(_metadata, &dev, &self->page, &api))
		return;
	close(dev);
	SP_NEED_DMABUF(api.features);
	self->video = open_vivid();
	if (self->video < 0)
		SP_SKIP_SETUP("no vivid capture node (vivid not loaded; the debug lane's kernel has no media drivers)");
	self->pools = sp_counter("pools");
	self->fmt.type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
	ASSERT_EQ(0, sp_ioctl(self->video, VIDIOC_G_FMT, &self->fmt));
	ASSERT_LT(0U, self->fmt.fmt.pix.sizeimage);
	self->slot = (self->fmt.fmt.pix.sizeimage + self->page - 1) / self->page * self->page;
}

FIXTURE_TEARDOWN(vivid)
{
	if (self->video >= 0)
		close(self->video);
}

static int reqbufs(int video, unsigned int count)
{
	struct v4l2_requestbuffers r = {
		.count = count, .type = V4L2_BUF_TYPE_VIDEO_CAPTURE,
		.memory = V4L2_MEMORY_DMABUF,
	};

	return sp_ioctl(video, VIDIOC_REQBUFS, &r);
}

static int qbuf(int video, unsigned int index, int buf, size_t len)
{
	struct v4l2_buffer b = {
		.index = index, .type = V4L2_BUF_TYPE_VIDEO_CAPTURE,
		.memory = V4L2_MEMORY_DMABUF, .length = len,
	};

	b.m.fd = buf;
	return sp_ioctl(video, VIDIOC_QBUF, &b);
}

/* DQBUF, with poll() as a hang detector; the buffer in *@b. */
static int dqbuf(int video, struct v4l2_buffer *b)
{
	struct pollfd pfd = { .fd = video, .events = POLLIN };

	if (poll(&pfd, 1, 10000) != 1)
		return -ETIMEDOUT;
	memset(b, 0, sizeof(*b));
	b->type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
	b->memory = V4L2_MEMORY_DMABUF;
	return sp_ioctl(video, VIDIOC_DQBUF, b);
}

static int stream(int video, bool on)
{
	int type = V4L2_BUF_TYPE_VIDEO_CAPTURE;

	return sp_ioctl(video, on ? VIDIOC_STREAMON : VIDIOC_STREAMOFF, &type);
}

/* Bytes of @p[0..@len) still equal to pattern @seed: what the device did not write. */
static size_t unwritten(const uint8_t *p, size_t len, size_t base, unsigned int seed)
{
	size_t i, n = 0;

	for (i = 0; i < len; i++)
		n += p[i] == sp_pattern(base + i, seed);
	return n;
}

static uint64_t checksum(const uint8_t *p, size_t len)
{
	uint64_t h = 1469598103934665603ULL;
	size_t i;

	for (i = 0; i < len; i++)
		h = (h ^ p[i]) * 1099511628211ULL;
	return h;
}

FIXTURE_VARIANT(vivid) {
	bool close_early;	/* close the pool and the dma-bufs before streaming */
};

FIXTURE_VARIANT_ADD(vivid, fds_open) { .close_early = false };
FIXTURE_VARIANT_ADD(vivid, fds_closed_before_capture) { .close_early = true };

TEST_F(vivid, capture_lands_in_pool_read_by_another_process)
{
	size_t len = SP_BUFS * self->slot, frame = self->fmt.fmt.pix.sizeimage;
	int pool = sp_anon_pool(len), bufs[SP_BUFS], i, status;
	struct v4l2_buffer b;
	uint64_t sum;
	uint8_t *p;
	pid_t pid;

	ASSERT_LE(0, pool);
	p = sp_map(pool, len, PROT_READ | PROT_WRITE, 0);
	ASSERT_NE(MAP_FAILED, p);
	sp_fill(p, len, 0, 21);
	ASSERT_EQ(0, reqbufs(self->video, SP_BUFS));
	for (i = 0; i < SP_BUFS; i++) {
		bufs[i] = export_range(pool, i * self->slot, self->slot, 0, NULL);
		ASSERT_LE(0, bufs[i]);
		ASSERT_EQ(0, qbuf(self->video, i, bufs[i], self->slot));
	}
	if (variant->close_early) {
		/* vivid's buffers hold the dma-bufs, which hold the pool. */
		for (i = 0; i < SP_BUFS; i++)
			close(bufs[i]);
		close(pool);
		pool = -1;
		EXPECT_EQ(self->pools + 1, sp_counter("pools"));
	}
	ASSERT_EQ(0, stream(self->video, true));
	ASSERT_EQ(0, dqbuf(self->video, &b));
	ASSERT_GT((unsigned int)SP_BUFS, b.index);
	EXPECT_EQ(frame, b.bytesused);
	EXPECT_EQ(0U, b.flags & V4L2_BUF_FLAG_ERROR);
	ASSERT_EQ(0, stream(self->video, false));

	/* The device wrote (nearly) every byte of its frame into the pool ... */
	EXPECT_GT(frame / 100, unwritten(p + b.index * self->slot, frame,
					 b.index * self->slot, 21));
	/* ... and nothing beyond its own slot's frame. */
	EXPECT_EQ(self->slot - frame,
		  unwritten(p + b.index * self->slot + frame, self->slot - frame,
			    b.index * self->slot + frame, 21));
	sum = checksum(p + b.index * self->slot, frame);

	/*
	 * Another process reads the same frame from the pool: through a
	 * mapping of its own while a pool fd is open, else through the
	 * mapping it inherited.
	 */
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		uint8_t *c = p;

		sp_child_init();
		if (pool >= 0)
			c = sp_map(pool, len, PROT_READ, 0);
		CHILD_CHECK(c != MAP_FAILED);
		CHILD_CHECK(checksum(c + b.index * self->slot, frame) == sum);
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_EQ(0, status);
	if (pool >= 0)
		close(pool);
	munmap(p, len);
	/* Freeing vivid's buffers drops the last references. */
	ASSERT_EQ(0, reqbufs(self->video, 0));
	if (!variant->close_early)
		for (i = 0; i < SP_BUFS; i++)
			close(bufs[i]);
	EXPECT_EQ(0, sp_await_counter("pools", self->pools, false, 5000));
}

TEST_HARNESS_MAIN
