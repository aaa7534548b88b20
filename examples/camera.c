// SPDX-License-Identifier: MIT
/*
 * camera: a capture device writes frames straight into a pool, and another
 * process looks at them there, like a media pipeline.
 *
 * Shows: shmpool_export_dmabuf() (one dma-buf per frame slot of the pool,
 * handed to a V4L2 capture device with V4L2_MEMORY_DMABUF), the device's
 * DMA landing in pool memory that an unrelated process has mapped (no
 * copy anywhere), and doorbells (shmpool_wait()/shmpool_wake()) to say
 * "frame N is in slot S" and "done with it".
 *
 * "camera" creates the pool (device backend: dma-buf export needs the
 * module), finds a V4L2 capture node (the kernel's vivid test driver in the
 * VM lanes), queues one dma-buf per slot and starts "camera --viewer NAME".
 * For each captured frame it publishes the slot and waits until the viewer
 * is done before giving the buffer back to the device. The viewer prints
 * statistics of each frame (YUYV luma mean, min, max, a checksum).
 *
 * Exits 77 (skipped) without the module or without a capture node.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <linux/videodev2.h>

#include <shmpool.h>

#include "example.h"

#define SLOTS		3
#define FRAMES		8
#define EXIT_SKIP	77

/* Page 0 of the pool: offsets and values, no pointers. Slots follow. */
struct camera_hdr {
	_Atomic uint32_t published;	/* frames published (doorbell word) */
	_Atomic uint32_t seen;		/* frames the viewer is done with (doorbell word) */
	uint32_t width, height, bytesperline;
	uint32_t slot;			/* slot of frame @published */
	uint32_t bytes;			/* its size */
	uint32_t __pad;
	uint64_t slot_bytes;		/* slot i starts at page + i * slot_bytes */
	uint64_t first_slot;
};

/* Wait until the u32 at @off reaches @want; 0, or -1 after EXAMPLE_TIMEOUT_S. */
static int wait_word(struct shmpool *p, _Atomic uint32_t *w, uint64_t off,
		     uint32_t want)
{
	struct timespec dl = example_deadline();
	uint32_t cur;

	for (;;) {
		/* acquire: pairs with the writer's release, so its data is seen */
		cur = atomic_load_explicit(w, memory_order_acquire);
		if ((int32_t)(cur - want) >= 0)
			return 0;
		if (shmpool_wait(p, off, cur, &dl, 0) == -ETIMEDOUT)
			return -1;
	}
}

static int viewer(const char *name)
{
	struct camera_hdr *h;
	struct shmpool *p;
	uint32_t i;
	int ret;

	ret = shmpool_open(name, SHMPOOL_BACKEND_DEVICE, &p);
	if (ret) {
		fprintf(stderr, "viewer: open %s: %s\n", name, strerror(-ret));
		return 1;
	}
	h = p->base;
	for (i = 1; i <= FRAMES; i++) {
		const uint8_t *f;
		uint64_t sum = 0, hash = 1469598103934665603ULL;
		unsigned int min = 255, max = 0;
		size_t k, n;

		if (wait_word(p, &h->published, offsetof(struct camera_hdr, published), i)) {
			fprintf(stderr, "viewer: no frame %u\n", i);
			shmpool_close(p);
			return 1;
		}
		f = (const uint8_t *)p->base + h->first_slot + h->slot * h->slot_bytes;
		/* YUYV: every even byte is a luma sample. */
		for (k = 0, n = 0; k < h->bytes; k += 2, n++) {
			sum += f[k];
			min = f[k] < min ? f[k] : min;
			max = f[k] > max ? f[k] : max;
		}
		for (k = 0; k < h->bytes; k++)
			hash = (hash ^ f[k]) * 1099511628211ULL;
		printf("viewer (pid %d): frame %u in slot %u: %ux%u YUYV, %u bytes, luma mean %.1f min %u max %u, fnv %016llx\n",
		       (int)getpid(), i, h->slot, h->width, h->height, h->bytes,
		       n ? (double)sum / n : 0.0, min, max, (unsigned long long)hash);
		if (!h->bytes || max == min) {
			fprintf(stderr, "viewer: frame %u is empty or flat\n", i);
			shmpool_close(p);
			return 1;
		}
		/* release: we are done reading the slot before the camera reuses it */
		atomic_store_explicit(&h->seen, i, memory_order_release);
		shmpool_wake(p, offsetof(struct camera_hdr, seen), SHMPOOL_WAKE_ALL);
	}
	shmpool_close(p);
	return 0;
}

/* The first V4L2 single-planar capture node with streaming I/O, or -1. */
static int open_capture(void)
{
	char path[32];
	int i, fd;

	for (i = 0; i < 16; i++) {
		struct v4l2_capability cap = { 0 };

		snprintf(path, sizeof(path), "/dev/video%d", i);
		fd = open(path, O_RDWR | O_CLOEXEC);
		if (fd < 0)
			continue;
		if (!ioctl(fd, VIDIOC_QUERYCAP, &cap) &&
		    (cap.device_caps & V4L2_CAP_VIDEO_CAPTURE) &&
		    (cap.device_caps & V4L2_CAP_STREAMING)) {
			printf("camera: %s is \"%s\" (driver %s)\n", path,
			       (char *)cap.card, (char *)cap.driver);
			return fd;
		}
		close(fd);
	}
	return -1;
}

static int queue(int video, unsigned int slot, int buf, size_t len)
{
	struct v4l2_buffer b = {
		.index = slot, .type = V4L2_BUF_TYPE_VIDEO_CAPTURE,
		.memory = V4L2_MEMORY_DMABUF, .length = len,
	};

	b.m.fd = buf;
	if (ioctl(video, VIDIOC_QBUF, &b)) {
		perror("camera: VIDIOC_QBUF");
		return -1;
	}
	return 0;
}

static int capture(struct shmpool *p, int video, const char *name)
{
	struct v4l2_format fmt = { .type = V4L2_BUF_TYPE_VIDEO_CAPTURE };
	struct v4l2_requestbuffers rb = {
		.count = SLOTS, .type = V4L2_BUF_TYPE_VIDEO_CAPTURE,
		.memory = V4L2_MEMORY_DMABUF,
	};
	int type = V4L2_BUF_TYPE_VIDEO_CAPTURE, bufs[SLOTS], ret = 1;
	struct camera_hdr *h = p->base;
	unsigned int i, nbufs = 0;
	pid_t pid = -1;

	fmt.fmt.pix.width = 640;
	fmt.fmt.pix.height = 360;
	fmt.fmt.pix.pixelformat = V4L2_PIX_FMT_YUYV;
	fmt.fmt.pix.field = V4L2_FIELD_NONE;
	if (ioctl(video, VIDIOC_S_FMT, &fmt) ||
	    fmt.fmt.pix.pixelformat != V4L2_PIX_FMT_YUYV) {
		fprintf(stderr, "camera: the device does not capture YUYV\n");
		return EXIT_SKIP;
	}
	h->width = fmt.fmt.pix.width;
	h->height = fmt.fmt.pix.height;
	h->bytesperline = fmt.fmt.pix.bytesperline;
	if (h->first_slot + SLOTS * h->slot_bytes > p->size ||
	    fmt.fmt.pix.sizeimage > h->slot_bytes) {
		fprintf(stderr, "camera: frames of %u bytes do not fit\n", fmt.fmt.pix.sizeimage);
		return 1;
	}
	if (ioctl(video, VIDIOC_REQBUFS, &rb) || rb.count < SLOTS) {
		perror("camera: VIDIOC_REQBUFS (V4L2_MEMORY_DMABUF)");
		return 1;
	}
	/* One dma-buf per slot: the device writes into the pool itself. */
	for (i = 0; i < SLOTS; i++) {
		bufs[i] = shmpool_export_dmabuf(p, h->first_slot + i * h->slot_bytes,
						h->slot_bytes, 0);
		if (bufs[i] < 0) {
			fprintf(stderr, "camera: export slot %u: %s\n", i, strerror(-bufs[i]));
			goto out;
		}
		nbufs++;
		if (queue(video, i, bufs[i], h->slot_bytes))
			goto out;
	}
	pid = example_spawn("camera", "--viewer", name, (char *)NULL);
	if (pid < 0 || ioctl(video, VIDIOC_STREAMON, &type)) {
		perror("camera: VIDIOC_STREAMON");
		goto out;
	}
	for (i = 1; i <= FRAMES; i++) {
		struct pollfd pfd = { .fd = video, .events = POLLIN };
		struct v4l2_buffer b = {
			.type = V4L2_BUF_TYPE_VIDEO_CAPTURE, .memory = V4L2_MEMORY_DMABUF,
		};

		if (poll(&pfd, 1, EXAMPLE_TIMEOUT_S * 1000) != 1 ||
		    ioctl(video, VIDIOC_DQBUF, &b)) {
			fprintf(stderr, "camera: no frame %u from the device\n", i);
			goto out;
		}
		h->slot = b.index;
		h->bytes = b.bytesused;
		/* release: the slot and size before the count that announces them */
		atomic_store_explicit(&h->published, i, memory_order_release);
		shmpool_wake(p, offsetof(struct camera_hdr, published), SHMPOOL_WAKE_ALL);
		if (wait_word(p, &h->seen, offsetof(struct camera_hdr, seen), i)) {
			fprintf(stderr, "camera: the viewer did not finish frame %u\n", i);
			goto out;
		}
		if (queue(video, b.index, bufs[b.index], h->slot_bytes))
			goto out;
	}
	printf("camera: %u frames captured into pool %s, seen by pid %d\n",
	       FRAMES, name, (int)pid);
	ret = 0;
out:
	ioctl(video, VIDIOC_STREAMOFF, &type);
	rb.count = 0;
	ioctl(video, VIDIOC_REQBUFS, &rb);	/* the device lets go of the dma-bufs */
	for (i = 0; i < nbufs; i++)
		close(bufs[i]);
	if (pid > 0 && example_wait(pid, "viewer"))
		ret = 1;
	return ret;
}

int main(int argc, char **argv)
{
	char name[SHMPOOL_NAME_MAX];
	struct camera_hdr *h;
	struct shmpool *p;
	int video, ret;
	long page = sysconf(_SC_PAGESIZE);
	size_t slot = (640 * 360 * 2 + page - 1) / page * page;

	if (argc == 3 && !strcmp(argv[1], "--viewer"))
		return viewer(argv[2]);

	example_name(name, sizeof(name), "camera");
	ret = shmpool_create(name, page + SLOTS * slot, 0600,
			     SHMPOOL_EXCL | SHMPOOL_BACKEND_DEVICE, &p);
	if (ret) {
		printf("camera: skipped: no shmpool module (%s); dma-buf export needs it\n",
		       strerror(-ret));
		return EXIT_SKIP;
	}
	video = open_capture();
	if (video < 0) {
		printf("camera: skipped: no V4L2 capture device (modprobe vivid)\n");
		shmpool_unlink(name, SHMPOOL_BACKEND_DEVICE);
		shmpool_close(p);
		return EXIT_SKIP;
	}
	h = p->base;
	h->first_slot = page;
	h->slot_bytes = slot;
	ret = capture(p, video, name);
	close(video);
	shmpool_unlink(name, SHMPOOL_BACKEND_DEVICE);
	shmpool_close(p);
	return ret;
}
