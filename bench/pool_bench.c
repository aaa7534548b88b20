// SPDX-License-Identifier: MIT
/*
 * pool_bench: what a pool costs to create, touch and walk, against what a
 * user would pick instead, at 64 MiB, 256 MiB and 512 MiB (the largest that
 * every peer gets at once in a 2 GiB bench VM: the hugetlbfs reservation
 * and the pool's max_total, half of RAM, both have to fit).
 *
 * Rows: a pool (4 KiB mappings, 16 pages mapped per fault), a HUGE pool
 * (PMD mappings, where SHMPOOL_FEAT_HUGE), memfd + fallocate (the peer of
 * every ratio but the random reads'), hugetlbfs (memfd MFD_HUGETLB +
 * fallocate, 2 MiB pages reserved through vm.nr_hugepages here), the
 * dma-heap system heap and udmabuf (6.12; udmabuf's size_limit_mb, 64 by
 * default, is raised on the bench VM's command line). Rows whose kind the
 * machine lacks are left out and said so.
 *
 * Per round, every row runs once, interleaved (size by size, row by row);
 * the table gives each column's median over rounds and the median of the
 * per-round ratios to the same-size peer:
 *   create+zero: create the buffer with zeroed memory, ms per GiB;
 *   first touch: mmap + write one byte per 4 KiB page, ns per page, and
 *                the page faults that took (getrusage ru_minflt) per MiB;
 *   random read: 2^20 random aligned 8-byte loads over the whole buffer
 *                after it was touched, ns per load (TLB reach), ratio to
 *                hugetlbfs.
 * Under QEMU TCG (the VM lanes) the guest's TLB is emulated: random-read
 * ratios there say little about hardware.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stddef.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include <linux/dma-heap.h>
#include <uapi/linux/shmpool.h>
#include <linux/udmabuf.h>

#include "bench.h"

#define MIB		(1UL << 20)
#define HUGE_2M		(2 * MIB)
#define NREADS		(1U << 20)
#define MAX_ROUNDS	16
#define NSIZES		3

enum kind { POOL, POOL_HUGE, MEMFD, HUGETLB, DMAHEAP, UDMABUF, NKINDS };

static const char *const kind_name[NKINDS] = {
	"pool (4 KiB, fault-around)", "pool HUGE (2 MiB PMD)",
	"memfd + fallocate", "hugetlbfs (MFD_HUGETLB)",
	"dma-heap system", "udmabuf (memfd)",
};

static const size_t sizes[NSIZES] = { 64 * MIB, 256 * MIB, 512 * MIB };

struct buf {
	int fd;			/* what gets mapped */
	int memfd;		/* udmabuf's backing memfd, or -1 */
	uint8_t *p;
	size_t len;
};

struct sample {
	double create_ms_gib, touch_ns_page, faults_mib, read_ns;
};

static struct sample res[NSIZES][NKINDS][MAX_ROUNDS];
static bool avail[NSIZES][NKINDS];
static int nrounds = 3;

static long minflt(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_minflt;
}

static int memfd_sized(const char *name, unsigned int flags, size_t len)
{
	int fd = memfd_create(name, MFD_CLOEXEC | flags);

	if (fd < 0)
		return -1;
	if (fallocate(fd, 0, 0, (off_t)len)) {
		close(fd);
		return -1;
	}
	return fd;
}

static int pool_create(size_t len, bool huge)
{
	struct shmpool_create c;
	int dev = open("/dev/shmpool", O_RDWR | O_CLOEXEC), ret;

	if (dev < 0)
		return -1;
	memset(&c, 0, sizeof(c));
	c.size = sizeof(c);
	c.flags = huge ? SHMPOOL_CREATE_HUGE : 0;
	c.bytes = len;
	c.mode = 0600;
	ret = ioctl(dev, SHMPOOL_IOC_CREATE, &c);
	close(dev);
	return ret ? -1 : c.fd;
}

static int dmaheap_create(size_t len)
{
	struct dma_heap_allocation_data d = {
		.len = len, .fd_flags = O_RDWR | O_CLOEXEC,
	};
	int heap = open("/dev/dma_heap/system", O_RDONLY | O_CLOEXEC), ret;

	if (heap < 0)
		return -1;
	ret = ioctl(heap, DMA_HEAP_IOCTL_ALLOC, &d);
	close(heap);
	return ret ? -1 : (int)d.fd;
}

static int udmabuf_create(size_t len, int *memfd)
{
	struct udmabuf_create u = { .flags = UDMABUF_FLAGS_CLOEXEC, .size = len };
	int dev = open("/dev/udmabuf", O_RDWR | O_CLOEXEC), fd = -1;

	*memfd = -1;
	if (dev < 0)
		return -1;
	*memfd = memfd_create("bench-udmabuf", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (*memfd >= 0 && !fallocate(*memfd, 0, 0, (off_t)len) &&
	    !fcntl(*memfd, F_ADD_SEALS, F_SEAL_SHRINK)) {
		u.memfd = (uint32_t)*memfd;
		fd = ioctl(dev, UDMABUF_CREATE, &u);
	}
	close(dev);
	if (fd < 0 && *memfd >= 0) {
		close(*memfd);
		*memfd = -1;
	}
	return fd;
}

/* Create @k of @len bytes, zeroed; 0 or -1. */
static int buf_create(enum kind k, size_t len, struct buf *b)
{
	b->memfd = -1;
	b->p = NULL;
	b->len = len;
	switch (k) {
	case POOL:
	case POOL_HUGE:
		b->fd = pool_create(len, k == POOL_HUGE);
		break;
	case MEMFD:
		b->fd = memfd_sized("bench-memfd", 0, len);
		break;
	case HUGETLB:
		b->fd = memfd_sized("bench-hugetlb", MFD_HUGETLB, len);
		break;
	case DMAHEAP:
		b->fd = dmaheap_create(len);
		break;
	default:
		b->fd = udmabuf_create(len, &b->memfd);
		break;
	}
	return b->fd < 0 ? -1 : 0;
}

static int buf_map(struct buf *b)
{
	void *p = mmap(NULL, b->len, PROT_READ | PROT_WRITE, MAP_SHARED, b->fd, 0);

	if (p == MAP_FAILED)
		return -1;
	b->p = p;
	return 0;
}

static void buf_free(struct buf *b)
{
	if (b->p)
		munmap(b->p, b->len);
	close(b->fd);
	if (b->memfd >= 0)
		close(b->memfd);
}

static uint64_t xorshift(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void measure(enum kind k, size_t len, struct sample *s)
{
	uint64_t t0, t1, seed = 0x9e3779b97f4a7c15ULL, sum = 0;
	size_t i, words = len / 8;
	volatile uint64_t *w;
	struct buf b;
	long f0;

	t0 = bench_now_ns();
	if (buf_create(k, len, &b))
		bench_die(kind_name[k], errno);
	t1 = bench_now_ns();
	s->create_ms_gib = (double)(t1 - t0) / 1e6 * (double)(1UL << 30) / (double)len;

	f0 = minflt();
	t0 = bench_now_ns();
	if (buf_map(&b))
		bench_die("mmap", errno);
	for (i = 0; i < len; i += 4096)
		b.p[i] = 1;
	t1 = bench_now_ns();
	s->touch_ns_page = (double)(t1 - t0) / (double)(len / 4096);
	s->faults_mib = (double)(minflt() - f0) / (double)(len / MIB);

	w = (volatile uint64_t *)b.p;
	t0 = bench_now_ns();
	for (i = 0; i < NREADS; i++)
		sum += w[xorshift(&seed) % words];
	t1 = bench_now_ns();
	s->read_ns = (double)(t1 - t0) / NREADS;
	if (sum == 42)	/* keep the loads */
		fputc(' ', stderr);
	buf_free(&b);
}

/* Is @k usable at @len here? One untimed try. */
static bool probe(enum kind k, size_t len)
{
	struct buf b;

	if (buf_create(k, len, &b))
		return false;
	if (buf_map(&b)) {
		buf_free(&b);
		return false;
	}
	b.p[0] = 1;
	buf_free(&b);
	return true;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Median over rounds of field @off of (s, k), or of its ratio to (s, pk). */
static double stat(int s, int k, int pk, size_t off)
{
	double v[MAX_ROUNDS];
	int r;

	for (r = 0; r < nrounds; r++) {
		double a = *(double *)((char *)&res[s][k][r] + off);
		double b = pk < 0 ? 1 : *(double *)((char *)&res[s][pk][r] + off);

		v[r] = b > 0 ? a / b : 0;
	}
	return median(v, nrounds);
}

#define F(field)	offsetof(struct sample, field)

/* vm.nr_hugepages after setting it to @n (< 0: leave it), 0 if unknown. */
static long set_hugepages(long n)
{
	FILE *f = fopen("/proc/sys/vm/nr_hugepages", n < 0 ? "r" : "r+");
	long got = 0;

	if (!f)
		return 0;
	if (n >= 0) {
		fprintf(f, "%ld\n", n);
		fflush(f);
		rewind(f);
	}
	if (fscanf(f, "%ld", &got) != 1)
		got = 0;
	fclose(f);
	return got;
}

int main(int argc, char **argv)
{
	long hp0 = set_hugepages(-1), hp = hp0;
	int opt, r, s, k;

	setvbuf(stdout, NULL, _IOLBF, 0);	/* the VM's serial line shows progress */
	while ((opt = getopt(argc, argv, "r:h")) != -1) {
		if (opt == 'r' && atoi(optarg) >= 1 && atoi(optarg) <= MAX_ROUNDS) {
			nrounds = atoi(optarg);
			continue;
		}
		fprintf(stderr, "usage: %s [-r ROUNDS (1..%d, default 3)]\n",
			argv[0], MAX_ROUNDS);
		return opt == 'h' ? 0 : 2;
	}
	/* Only in the bench VM (the module is there), never on a host. */
	if (!access("/dev/shmpool", F_OK))
		hp = set_hugepages((long)(sizes[NSIZES - 1] / HUGE_2M));
	printf("\n== pool_bench: create, first touch, random reads (%d rounds, interleaved) ==\n",
	       nrounds);
	printf("hugetlbfs: %ld of %lu 2 MiB pages reserved\n", hp,
	       sizes[NSIZES - 1] / HUGE_2M);
	for (s = 0; s < NSIZES; s++)
		for (k = 0; k < NKINDS; k++) {
			avail[s][k] = probe(k, sizes[s]);
			if (!avail[s][k])
				printf("%4zu MiB %-28s not available here (%s)\n",
				       sizes[s] / MIB, kind_name[k], strerror(errno));
		}
	for (r = 0; r < nrounds; r++)
		for (s = 0; s < NSIZES; s++)
			for (k = 0; k < NKINDS; k++)
				if (avail[s][k])
					measure(k, sizes[s], &res[s][k][r]);

	printf("%-8s %-28s %12s %6s %12s %6s %10s %8s %9s %8s\n", "size", "case",
	       "create ms/GiB", "/memfd", "touch ns/pg", "/memfd", "faults/MiB",
	       "/memfd", "read ns", "/hugetlb");
	for (s = 0; s < NSIZES; s++)
		for (k = 0; k < NKINDS; k++) {
			int m = avail[s][MEMFD] ? MEMFD : -1;
			int h = avail[s][HUGETLB] ? HUGETLB : -1;

			if (!avail[s][k])
				continue;
			printf("%4zu MiB %-28s %12.1f %6.2f %12.1f %6.2f %10.1f %8.3f %9.1f %8.2f\n",
			       sizes[s] / MIB, kind_name[k],
			       stat(s, k, -1, F(create_ms_gib)),
			       m < 0 ? 0 : stat(s, k, m, F(create_ms_gib)),
			       stat(s, k, -1, F(touch_ns_page)),
			       m < 0 ? 0 : stat(s, k, m, F(touch_ns_page)),
			       stat(s, k, -1, F(faults_mib)),
			       m < 0 ? 0 : stat(s, k, m, F(faults_mib)),
			       stat(s, k, -1, F(read_ns)),
			       h < 0 ? 0 : stat(s, k, h, F(read_ns)));
		}
	printf("goals (issue 16): first touch pool <= 1.0x memfd; faults HUGE <= 1/20 of pool 4 KiB; random read HUGE <= 1.1x hugetlbfs\n");
	for (s = 0; s < NSIZES; s++) {
		printf("%4zu MiB:", sizes[s] / MIB);
		if (avail[s][POOL] && avail[s][MEMFD])
			printf(" touch pool/memfd %.2f;", stat(s, POOL, MEMFD, F(touch_ns_page)));
		if (avail[s][POOL_HUGE] && avail[s][POOL])
			printf(" faults HUGE/4K %.4f;", stat(s, POOL_HUGE, POOL, F(faults_mib)));
		if (avail[s][POOL_HUGE] && avail[s][HUGETLB])
			printf(" read HUGE/hugetlbfs %.2f;", stat(s, POOL_HUGE, HUGETLB, F(read_ns)));
		printf("\n");
	}
	printf("note: ratios are medians of per-round ratios; under QEMU TCG the TLB is emulated\n");
	if (hp != hp0)
		set_hugepages(hp0);
	return 0;
}
