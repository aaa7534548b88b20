/* fuzz_test: seeded random operations on /dev/shmpool from several processes; every result must be one the UAPI header documents. */
// SPDX-License-Identifier: GPL-2.0
/*
 * Each worker process keeps a small table of fds (device fds, bound or not)
 * and of the mappings it made, and picks operations at random: CREATE, OPEN,
 * UNLINK, INFO, API, mmap/munmap/mremap/mprotect/madvise with random
 * arguments, reads and writes inside and outside its mappings (SIGSEGV and
 * SIGBUS are caught with sigsetjmp), WAIT/WAKE/WAITV/NOTIFY on random words
 * with short deadlines, fork (children that do doorbell work, then exit or
 * are killed), close and dup. Pool names come from a small set shared by
 * all workers, so they race on them.
 *
 * Every ioctl result must be success or an errno the UAPI header lists for
 * that command (its own list plus the common one); mm calls are held to the
 * header's mmap DOC plus the generic errors their man pages give for the
 * arguments generated here (EINVAL, ENOMEM for ranges). Accesses to a tracked
 * mapping must succeed exactly when its protection allows them; a byte
 * written through one mapping of a pool only this process writes must read
 * back through every other mapping of it.
 *
 * Environment: SHMPOOL_FUZZ_SECS (time budget, default 20), SHMPOOL_FUZZ_SEED
 * (default: from the clock), SHMPOOL_FUZZ_PROCS (workers, default 3). The
 * seed, the operation count and, on failure, the failing operation are
 * printed. Raw ioctls all go through the sp_*() helpers of
 * shmpool_test_util.h and fz_ioctl() below.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/eventfd.h>
#include <ucontext.h>

#include "shmpool_test_util.h"

#define FZ_FDS		8
#define FZ_MAPS		12
#define FZ_NAMES	4
#define FZ_CHILDREN	4
#define FZ_MAX_PAGES	24

/* Errno lists, 0-terminated. */
#define ERRS(...)	((const int[]){ __VA_ARGS__, 0 })
#define COMMON		ENOTTY, EFAULT, EINVAL, E2BIG, ENXIO, EBUSY, EBADF

struct fz_fd {
	int fd;			/* -1: free slot */
	bool bound;
	bool rdonly;		/* read-only attachment */
	bool exec;		/* pool created with SHMPOOL_CREATE_EXEC */
	bool mine;		/* anonymous pool only this process writes */
	uint64_t bytes;
};

struct fz_map {
	uint8_t *addr;		/* NULL: free slot */
	size_t len;
	int prot;
	int slot;		/* fd slot it was mapped from (may be closed since) */
	uint64_t pool_id;	/* ties mappings of one pool together */
	uint64_t off;		/* pool offset of addr */
	bool mine;
	bool rdonly;		/* from a read-only attachment */
	bool noexec;		/* of a pool known to be created without EXEC */
};

struct fz {
	uint64_t rng;
	long page;
	unsigned long ops;
	unsigned long *shared_ops;	/* this worker's counter in the parent's view */
	bool child;			/* a forked child: doorbells and reads only */
	int efd;			/* an eventfd for NOTIFY */
	struct fz_fd fds[FZ_FDS];
	uint64_t ids[FZ_FDS];		/* pool id per fd slot (0: unknown) */
	struct fz_map maps[FZ_MAPS];
	pid_t children[FZ_CHILDREN];
	char names[FZ_NAMES][SHMPOOL_NAME_MAX];
	char what[256];			/* the current operation, for failures */
};

static sigjmp_buf fz_jmp;
static volatile sig_atomic_t fz_armed;
static const char *fz_doing;	/* the worker's current operation */

static void fz_fault(int sig, siginfo_t *si, void *uc)
{
	char msg[400];
	int n;

	if (fz_armed)
		siglongjmp(fz_jmp, sig);
	/* Not one of ours: say where, then fail (snprintf is fine: we exit). */
	n = snprintf(msg, sizeof(msg), "# fuzz: FAIL: unexpected signal %d at %p (pc %#llx) during: %s\n",
		     sig, si->si_addr,
#ifdef __x86_64__
		     (unsigned long long)((ucontext_t *)uc)->uc_mcontext.gregs[REG_RIP],
#else
		     0ULL,
#endif
		     fz_doing ? fz_doing : "?");
	if (write(2, msg, n) < 0)
		n = 0;
	_exit(1);
}

static uint64_t rnd(struct fz *z)
{
	/* xorshift64* */
	z->rng ^= z->rng >> 12;
	z->rng ^= z->rng << 25;
	z->rng ^= z->rng >> 27;
	return z->rng * 0x2545f4914f6cdd1dULL;
}

static uint64_t below(struct fz *z, uint64_t n)
{
	return n ? rnd(z) % n : 0;
}

static bool chance(struct fz *z, unsigned int percent)
{
	return below(z, 100) < percent;
}

static void fz_fail(struct fz *z, const char *fmt, ...)
	__attribute__((format(printf, 2, 3), noreturn));

static void fz_fail(struct fz *z, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "# fuzz: FAIL in pid %d after %lu ops, during: %s\n# fuzz:   ",
		(int)getpid(), z->ops, z->what);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	_exit(1);
}

/* @ret is 0/positive or -errno; an errno outside @allowed fails the run. */
static int check(struct fz *z, int ret, const int *allowed)
{
	const int *e;

	if (ret >= 0)
		return ret;
	for (e = allowed; *e; e++)
		if (-ret == *e)
			return ret;
	fz_fail(z, "undocumented result %d (%s)", ret, strerror(-ret));
}

/* An mm call's result as 0 or -errno. */
static int sysret(long ret)
{
	return ret < 0 ? -errno : 0;
}

/* The one raw-ioctl entry point besides the sp_*() helpers. */
static int fz_ioctl(int fd, unsigned long cmd, void *arg)
{
	return sp_ioctl(fd, cmd, arg);
}

#define WHAT(z, ...)	snprintf((z)->what, sizeof((z)->what), __VA_ARGS__)

/* ---- tables ---- */

static int pick_fd(struct fz *z)
{
	int i, n = (int)below(z, FZ_FDS);

	for (i = 0; i < FZ_FDS; i++) {
		int s = (n + i) % FZ_FDS;

		if (z->fds[s].fd >= 0)
			return s;
	}
	return -1;
}

static int free_fd_slot(struct fz *z)
{
	int i;

	for (i = 0; i < FZ_FDS; i++)
		if (z->fds[i].fd < 0)
			return i;
	return -1;
}

static int pick_map(struct fz *z)
{
	int i, n = (int)below(z, FZ_MAPS);

	for (i = 0; i < FZ_MAPS; i++) {
		int s = (n + i) % FZ_MAPS;

		if (z->maps[s].addr)
			return s;
	}
	return -1;
}

static void drop_fd(struct fz *z, int s)
{
	close(z->fds[s].fd);
	z->fds[s].fd = -1;
	z->ids[s] = 0;
}

/* A new device fd in a free slot (evicting one if full). */
static int new_dev_fd(struct fz *z)
{
	int s = free_fd_slot(z);
	int fd;

	if (s < 0) {
		s = (int)below(z, FZ_FDS);
		drop_fd(z, s);
	}
	fd = sp_open_dev(chance(z, 85) ? O_RDWR : O_RDONLY);
	if (fd < 0)
		fz_fail(z, "open " SP_DEV ": %s", strerror(errno));
	memset(&z->fds[s], 0, sizeof(z->fds[s]));
	z->fds[s].fd = fd;
	return s;
}

static const char *pick_name(struct fz *z)
{
	/* "" is anonymous for CREATE, invalid elsewhere; the rest is invalid. */
	static const char *bad[] = { "", "a/b", "x y", "\x01", "\xc3\xa9" };

	if (chance(z, 5))
		return bad[below(z, sizeof(bad) / sizeof(bad[0]))];
	return z->names[below(z, FZ_NAMES)];
}

/* A size: mostly 1..FZ_MAX_PAGES pages, sometimes nonsense. */
static uint64_t pick_bytes(struct fz *z)
{
	switch (below(z, 20)) {
	case 0:
		return 0;
	case 1:
		return z->page + 1 + below(z, z->page - 1);
	case 2:
		return 1ULL << (40 + below(z, 24));
	default:
		return (1 + below(z, FZ_MAX_PAGES)) * z->page;
	}
}

/* A pool word offset: mostly aligned inside small pools, sometimes not. */
static uint64_t pick_off(struct fz *z)
{
	switch (below(z, 16)) {
	case 0:
		return below(z, 4096) | 1;
	case 1:
		return (uint64_t)FZ_MAX_PAGES * z->page + 4 * below(z, 1024);
	case 2:
		return ~0ULL - 3;
	case 3:
	case 4:
	case 5:
		return 4 * below(z, 2 * z->page / 4);
	default:
		/* A few hot words, so that WAKEs meet WAITs. */
		return 4 * below(z, 8);
	}
}

static uint32_t pick_bitset(struct fz *z)
{
	if (chance(z, 5))
		return 0;
	return chance(z, 70) ? SHMPOOL_BITSET_ANY : (uint32_t)rnd(z) | 1;
}

/* An unknown flag bit now and then. */
static uint32_t junk_flag(struct fz *z)
{
	return chance(z, 4) ? 1U << (16 + below(z, 16)) : 0;
}

static void refresh_id(struct fz *z, int s)
{
	struct shmpool_info info;

	z->ids[s] = 0;
	if (!sp_info(z->fds[s].fd, &info, NULL, 0))
		z->ids[s] = info.id;
}

/* ---- pool ioctls ---- */

static void op_create(struct fz *z)
{
	int s = chance(z, 80) ? new_dev_fd(z) : pick_fd(z);
	const char *name = chance(z, 40) ? NULL : pick_name(z);
	bool anon = !name || !name[0];
	uint32_t flags = (uint32_t)below(z, 8) & (SHMPOOL_CREATE_EXCL |
		SHMPOOL_CREATE_CONTIG | SHMPOOL_CREATE_EXEC);
	uint32_t mode = chance(z, 3) ? 01000 : (uint32_t)below(z, 01000) | 0600;
	struct shmpool_create out;
	uint64_t bytes = pick_bytes(z);
	int ret;

	if (s < 0)
		return;
	flags |= junk_flag(z);
	WHAT(z, "CREATE fd=%d name=\"%s\" bytes=%llu flags=%#x mode=%#o",
	     z->fds[s].fd, name ? name : "", (unsigned long long)bytes, flags, mode);
	ret = check(z, sp_create(z->fds[s].fd, name, bytes, flags, mode, &out),
		    ERRS(COMMON, EEXIST, EACCES, EFBIG, ENOSPC, EDQUOT, ENOMEM));
	if (ret)
		return;
	z->fds[s].bound = true;
	z->fds[s].rdonly = false;
	z->fds[s].bytes = bytes;
	z->fds[s].exec = false;
	z->fds[s].mine = anon;
	z->ids[s] = out.id;
	/* An existing pool keeps its own flags: ask it. */
	{
		struct shmpool_info info;

		if (!sp_info(z->fds[s].fd, &info, NULL, 0))
			z->fds[s].exec = info.pool_flags & SHMPOOL_POOL_EXEC;
	}
}

static void op_open(struct fz *z)
{
	int s = chance(z, 80) ? new_dev_fd(z) : pick_fd(z);
	uint32_t flags = (chance(z, 40) ? SHMPOOL_OPEN_RDONLY : 0) | junk_flag(z);
	const char *name = pick_name(z);
	struct shmpool_open out;
	struct shmpool_info info;

	if (s < 0)
		return;
	WHAT(z, "OPEN fd=%d name=\"%s\" flags=%#x", z->fds[s].fd, name, flags);
	if (check(z, sp_open_name(z->fds[s].fd, name, flags, &out),
		  ERRS(COMMON, ENOENT, EACCES)))
		return;
	z->fds[s].bound = true;
	z->fds[s].rdonly = flags & SHMPOOL_OPEN_RDONLY;
	z->fds[s].bytes = out.bytes;
	z->fds[s].mine = false;
	z->ids[s] = out.id;
	z->fds[s].exec = !sp_info(z->fds[s].fd, &info, NULL, 0) &&
			 (info.pool_flags & SHMPOOL_POOL_EXEC);
}

static void op_unlink(struct fz *z)
{
	int s = pick_fd(z);
	const char *name = pick_name(z);

	if (s < 0)
		return;
	WHAT(z, "UNLINK fd=%d name=\"%s\"", z->fds[s].fd, name);
	check(z, sp_unlink(z->fds[s].fd, name), ERRS(COMMON, ENOENT, EPERM));
}

static void op_info(struct fz *z)
{
	struct shmpool_extent ext[4];
	struct shmpool_info info;
	int s = pick_fd(z);
	uint32_t cap = (uint32_t)below(z, 5);

	if (s < 0)
		return;
	WHAT(z, "INFO fd=%d cap=%u", z->fds[s].fd, cap);
	if (chance(z, 5)) {
		/* An extents pointer that is not writable. */
		memset(&info, 0, sizeof(info));
		info.size = sizeof(info);
		info.extents_cap = 1;
		info.extents = 8;
		check(z, fz_ioctl(z->fds[s].fd, SHMPOOL_IOC_INFO, &info), ERRS(COMMON));
		return;
	}
	if (check(z, sp_info(z->fds[s].fd, &info, cap ? ext : NULL, cap > 4 ? 4 : cap),
		  ERRS(COMMON)))
		return;
	if (z->fds[s].bound && info.bytes != z->fds[s].bytes)
		fz_fail(z, "INFO bytes %llu, the pool was %llu",
			(unsigned long long)info.bytes,
			(unsigned long long)z->fds[s].bytes);
}

static void op_api(struct fz *z)
{
	struct {
		struct shmpool_api api;
		uint64_t tail;
	} a;
	int s = pick_fd(z);

	if (s < 0)
		return;
	memset(&a, 0, sizeof(a));
	/* Sizes around the struct's, and a non-zero tail now and then. */
	a.api.size = sizeof(a.api) + (uint32_t)below(z, 3) * 8 - 8;
	a.tail = chance(z, 20) ? 1 : 0;
	a.api.flags = junk_flag(z);
	WHAT(z, "API fd=%d size=%u tail=%llu", z->fds[s].fd, a.api.size,
	     (unsigned long long)a.tail);
	check(z, fz_ioctl(z->fds[s].fd, SHMPOOL_IOC_API, &a), ERRS(COMMON));
}

static void op_close_dup(struct fz *z)
{
	int s = pick_fd(z), d;

	if (s < 0)
		return;
	if (chance(z, 50)) {
		WHAT(z, "close fd=%d", z->fds[s].fd);
		drop_fd(z, s);
		return;
	}
	d = free_fd_slot(z);
	if (d < 0)
		return;
	WHAT(z, "dup fd=%d", z->fds[s].fd);
	z->fds[d] = z->fds[s];
	z->ids[d] = z->ids[s];
	z->fds[d].fd = fcntl(z->fds[s].fd, F_DUPFD_CLOEXEC, 0);
	if (z->fds[d].fd < 0)
		fz_fail(z, "dup: %s", strerror(errno));
}

/* ---- mm ---- */

static int pick_prot(struct fz *z)
{
	static const int prots[] = {
		PROT_READ, PROT_READ | PROT_WRITE, PROT_WRITE, PROT_NONE,
		PROT_READ | PROT_EXEC, PROT_READ | PROT_WRITE | PROT_EXEC,
	};

	return prots[below(z, sizeof(prots) / sizeof(prots[0]))];
}

static int free_map_slot(struct fz *z)
{
	int i;

	for (i = 0; i < FZ_MAPS; i++)
		if (!z->maps[i].addr)
			return i;
	return -1;
}

/* What the header promises whatever the arguments: no write through a
 * read-only attachment, no exec without SHMPOOL_CREATE_EXEC. */
static void check_prot(struct fz *z, const struct fz_map *mp, const char *call)
{
	if (mp->rdonly && (mp->prot & PROT_WRITE))
		fz_fail(z, "%s gave a read-only attachment a writable mapping", call);
	if (mp->noexec && (mp->prot & PROT_EXEC))
		fz_fail(z, "%s made a pool without SHMPOOL_CREATE_EXEC executable", call);
}

static void op_mmap(struct fz *z)
{
	int s = pick_fd(z), m = free_map_slot(z), prot = pick_prot(z);
	int flags = chance(z, 5) ? MAP_PRIVATE : MAP_SHARED;
	uint64_t off = below(z, FZ_MAX_PAGES) * z->page;
	size_t len = (1 + below(z, FZ_MAX_PAGES)) * z->page;
	void *p;
	int ret;

	if (s < 0 || m < 0)
		return;
	if (z->fds[s].bound && chance(z, 70)) {
		/* Mostly a valid range of the pool. */
		uint64_t pages = z->fds[s].bytes / z->page;

		off = below(z, pages) * z->page;
		len = (1 + below(z, pages - off / z->page)) * z->page;
	}
	WHAT(z, "mmap fd=%d len=%zu prot=%#x flags=%#x off=%llu", z->fds[s].fd,
	     len, prot, flags, (unsigned long long)off);
	p = mmap(NULL, len, prot, flags, z->fds[s].fd, (off_t)off);
	ret = check(z, p == MAP_FAILED ? -errno : 0,
		    ERRS(EINVAL, EACCES, EPERM, ENXIO, ENODEV, EOVERFLOW, ENOMEM));
	if (ret)
		return;
	if (!z->ids[s])
		refresh_id(z, s);
	z->maps[m] = (struct fz_map){
		.addr = p, .len = len, .prot = prot, .slot = s,
		.pool_id = z->ids[s], .off = off, .mine = z->fds[s].mine,
		.rdonly = z->fds[s].bound && z->fds[s].rdonly,
		.noexec = z->fds[s].bound && !z->fds[s].exec,
	};
	check_prot(z, &z->maps[m], "mmap");
}

/* Touch @addr; returns 0 or the signal it raised. */
static int touch(uint8_t *addr, bool write, uint8_t val, uint8_t *out)
{
	volatile uint8_t *v = addr;
	int sig;

	sig = sigsetjmp(fz_jmp, 1);
	if (sig) {
		fz_armed = 0;
		return sig;
	}
	fz_armed = 1;
	if (write)
		*v = val;
	else
		*out = *v;
	fz_armed = 0;
	return 0;
}

/* After munmap: nothing is mapped there, so any access is SIGSEGV. */
static void probe_unmapped(struct fz *z, uint8_t *addr)
{
	uint8_t b;
	int sig = touch(addr, false, 0, &b);

	if (sig != SIGSEGV)
		fz_fail(z, "read of an unmapped pool range at %p: signal %d", addr, sig);
}

static void op_munmap(struct fz *z)
{
	int m = pick_map(z);
	struct fz_map *mp;
	size_t keep;

	if (m < 0)
		return;
	mp = &z->maps[m];
	keep = chance(z, 50) ? below(z, mp->len / z->page) * z->page : 0;
	WHAT(z, "munmap %p+%zu (of %zu)", mp->addr + keep, mp->len - keep, mp->len);
	check(z, sysret(munmap(mp->addr + keep, mp->len - keep)), ERRS(EINVAL));
	probe_unmapped(z, mp->addr + mp->len - 1);
	if (keep)
		mp->len = keep;
	else
		mp->addr = NULL;
}

static void op_mremap(struct fz *z)
{
	int m = pick_map(z);
	struct fz_map *mp;
	uint8_t *q, *dst;
	size_t nlen;

	if (m < 0)
		return;
	mp = &z->maps[m];
	switch (below(z, 4)) {
	case 0:		/* grow: EFAULT (VM_DONTEXPAND) */
		nlen = mp->len + (1 + below(z, 4)) * z->page;
		WHAT(z, "mremap grow %p %zu -> %zu", mp->addr, mp->len, nlen);
		q = mremap(mp->addr, mp->len, nlen, chance(z, 50) ? MREMAP_MAYMOVE : 0);
		if (q != MAP_FAILED)
			fz_fail(z, "a pool mapping grew");
		check(z, -errno, ERRS(EFAULT));
		break;
	case 1:		/* shrink */
		if (mp->len <= (size_t)z->page)
			return;
		nlen = (1 + below(z, mp->len / z->page - 1)) * z->page;
		WHAT(z, "mremap shrink %p %zu -> %zu", mp->addr, mp->len, nlen);
		q = mremap(mp->addr, mp->len, nlen, 0);
		/* EFAULT: madvise split the range into VMAs of different flags. */
		if (check(z, q == MAP_FAILED ? -errno : 0, ERRS(EINVAL, ENOMEM, EFAULT)))
			return;
		probe_unmapped(z, mp->addr + mp->len - 1);
		mp->len = nlen;
		break;
	case 2:		/* move to a fixed place */
		dst = mmap(NULL, mp->len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (dst == MAP_FAILED)
			return;
		WHAT(z, "mremap move %p -> %p len %zu", mp->addr, dst, mp->len);
		q = mremap(mp->addr, mp->len, mp->len, MREMAP_MAYMOVE | MREMAP_FIXED, dst);
		if (check(z, q == MAP_FAILED ? -errno : 0, ERRS(EINVAL, ENOMEM, EFAULT))) {
			munmap(dst, mp->len);
			return;
		}
		probe_unmapped(z, mp->addr);
		mp->addr = q;
		break;
	default:	/* MREMAP_DONTUNMAP: EINVAL */
		WHAT(z, "mremap dontunmap %p len %zu", mp->addr, mp->len);
		q = mremap(mp->addr, mp->len, mp->len, MREMAP_MAYMOVE | 4 /* DONTUNMAP */);
		if (q != MAP_FAILED)
			fz_fail(z, "MREMAP_DONTUNMAP of a pool mapping worked");
		check(z, -errno, ERRS(EINVAL));
		break;
	}
}

static void op_mprotect(struct fz *z)
{
	int m = pick_map(z), prot = pick_prot(z);
	struct fz_map *mp;

	if (m < 0)
		return;
	mp = &z->maps[m];
	WHAT(z, "mprotect %p+%zu prot=%#x (was %#x)", mp->addr, mp->len, prot, mp->prot);
	if (!check(z, sysret(mprotect(mp->addr, mp->len, prot)), ERRS(EACCES, EINVAL, ENOMEM))) {
		mp->prot = prot;
		check_prot(z, mp, "mprotect");
	}
}

static void op_madvise(struct fz *z)
{
	/* No MADV_HWPOISON/SOFT_OFFLINE (they would break pages for real), no
	 * DONTFORK/WIPEONFORK/GUARD_* (they would change what a child sees). */
	static const int advice[] = {
		MADV_NORMAL, MADV_RANDOM, MADV_SEQUENTIAL, MADV_WILLNEED,
		MADV_DONTNEED, 8 /* FREE */, MADV_REMOVE, MADV_DONTDUMP,
		MADV_DODUMP, 20 /* COLD */, 21 /* PAGEOUT */,
		22 /* POPULATE_READ */, 23 /* POPULATE_WRITE */, 77, -1,
	};
	int m = pick_map(z), adv = advice[below(z, sizeof(advice) / sizeof(advice[0]))];
	struct fz_map *mp;
	size_t start, len;

	if (m < 0)
		return;
	mp = &z->maps[m];
	start = below(z, mp->len / z->page) * z->page;
	len = (1 + below(z, (mp->len - start) / z->page)) * z->page;
	WHAT(z, "madvise %p+%zu advice=%d prot=%#x", mp->addr + start, len, adv, mp->prot);
	/* The header's mmap DOC, plus what madvise(2) gives for bad advice
	 * (EINVAL), and POPULATE_* on a mapping that forbids it (EFAULT). */
	check(z, sysret(madvise(mp->addr + start, len, adv)),
	      ERRS(EINVAL, EOPNOTSUPP, EACCES, EFAULT, ENOMEM));
}

/* A read or write inside a tracked mapping: succeeds exactly when allowed. */
static void op_touch(struct fz *z)
{
	int m = pick_map(z), i;
	bool write = !z->child && chance(z, 50);
	struct fz_map *mp;
	uint8_t val = (uint8_t)rnd(z), got = 0;
	size_t at;
	int sig;
	bool ok;

	if (m < 0)
		return;
	mp = &z->maps[m];
	at = below(z, mp->len);
	ok = write ? (mp->prot & PROT_WRITE) : (mp->prot & (PROT_READ | PROT_WRITE));
	WHAT(z, "%s %p (+%zu of %zu) prot=%#x", write ? "write" : "read",
	     mp->addr + at, at, mp->len, mp->prot);
	sig = touch(mp->addr + at, write, val, &got);
	if (ok && sig)
		fz_fail(z, "signal %d on an access the mapping allows", sig);
	if (!ok && sig != SIGSEGV)
		fz_fail(z, "signal %d (want SIGSEGV) on an access the mapping forbids", sig);
	if (!write || sig || !mp->mine)
		return;
	/* Every other readable view of that pool byte must see it. */
	for (i = 0; i < FZ_MAPS; i++) {
		struct fz_map *o = &z->maps[i];
		uint64_t poff = mp->off + at;

		if (!o->addr || o == mp || o->pool_id != mp->pool_id || !mp->pool_id ||
		    !(o->prot & PROT_READ) || poff < o->off || poff >= o->off + o->len)
			continue;
		WHAT(z, "read back pool offset %llu through %p",
		     (unsigned long long)poff, o->addr + (poff - o->off));
		sig = touch(o->addr + (poff - o->off), false, 0, &got);
		if (sig || got != val)
			fz_fail(z, "read back: signal %d, byte %#x, wrote %#x", sig, got, val);
	}
}

/* ---- doorbells ---- */

static uint64_t pick_deadline(struct fz *z, uint32_t *flags)
{
	clockid_t clock = CLOCK_MONOTONIC;

	*flags = SHMPOOL_WAIT_DEADLINE;
	if (chance(z, 20)) {
		*flags |= SHMPOOL_WAIT_REALTIME;
		clock = CLOCK_REALTIME;
	}
	if (chance(z, 3))
		*flags = SHMPOOL_WAIT_REALTIME;	/* without DEADLINE: EINVAL */
	*flags |= junk_flag(z);
	if (chance(z, 10))
		return sp_now_ns(clock) - below(z, 1000000);	/* passed */
	return sp_now_ns(clock) + below(z, 2000000);		/* < 2 ms */
}

#define WAIT_ERRS	COMMON, EAGAIN, ETIMEDOUT, EINTR

static void op_wait(struct fz *z)
{
	int s = pick_fd(z);
	uint64_t off = pick_off(z), dl;
	uint32_t flags, expected = chance(z, 70) ? 0 : (uint32_t)rnd(z);

	if (s < 0)
		return;
	dl = pick_deadline(z, &flags);
	WHAT(z, "WAIT fd=%d off=%llu expected=%u flags=%#x", z->fds[s].fd,
	     (unsigned long long)off, expected, flags);
	check(z, sp_db_wait(z->fds[s].fd, off, expected, pick_bitset(z), flags, dl),
	      ERRS(WAIT_ERRS));
}

static void op_wake(struct fz *z)
{
	static const uint32_t nrs[] = { 0, 1, 2, SHMPOOL_WAKE_ALL };
	int s = pick_fd(z);
	uint64_t off = pick_off(z);
	uint32_t nr = nrs[below(z, 4)];

	if (s < 0)
		return;
	WHAT(z, "WAKE fd=%d off=%llu nr=%u", z->fds[s].fd, (unsigned long long)off, nr);
	check(z, sp_db_wake(z->fds[s].fd, off, nr, pick_bitset(z)), ERRS(COMMON, EPERM));
}

static void op_waitv(struct fz *z)
{
	struct shmpool_waitv_entry ent[SHMPOOL_WAITV_MAX + 1];
	uint32_t n = 1 + (uint32_t)below(z, 4), i, flags;
	int s = pick_fd(z);
	uint64_t dl;

	if (s < 0)
		return;
	if (chance(z, 3))
		n = chance(z, 50) ? 0 : SHMPOOL_WAITV_MAX + 1;
	for (i = 0; i < n; i++) {
		int e = pick_fd(z), fd = e < 0 || chance(z, 30) ? -1 : z->fds[e].fd;

		if (chance(z, 3))
			fd = chance(z, 50) ? z->efd : 1000;	/* not ours / not open */
		sp_db_entry(&ent[i], fd, pick_off(z), chance(z, 70) ? 0 : (uint32_t)rnd(z),
			    pick_bitset(z));
		if (chance(z, 2))
			ent[i].__reserved = 1;
	}
	dl = pick_deadline(z, &flags);
	WHAT(z, "WAITV fd=%d n=%u flags=%#x", z->fds[s].fd, n, flags);
	check(z, sp_db_waitv(z->fds[s].fd, ent, n, flags, dl), ERRS(WAIT_ERRS));
}

static void op_notify(struct fz *z)
{
	int s = pick_fd(z), efd = z->efd;
	uint32_t flags = chance(z, 50) ? SHMPOOL_NOTIFY_ADD : SHMPOOL_NOTIFY_DEL;

	if (s < 0)
		return;
	if (chance(z, 3))
		flags = chance(z, 50) ? 0 : SHMPOOL_NOTIFY_ADD | SHMPOOL_NOTIFY_DEL;
	if (chance(z, 5))
		efd = chance(z, 50) ? z->fds[s].fd : 1000;	/* not an eventfd / not open */
	WHAT(z, "NOTIFY fd=%d flags=%#x efd=%d", z->fds[s].fd, flags, efd);
	check(z, sp_db_notify(z->fds[s].fd, flags, pick_off(z), efd, pick_bitset(z)),
	      ERRS(COMMON, EEXIST, ENOENT, ENOSPC));
	if (chance(z, 2)) {
		/* The eventfd goes away under its bindings. */
		close(z->efd);
		z->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	}
}

/* ---- processes ---- */

static void run_ops(struct fz *z, uint64_t end_ns, unsigned long max_ops);

static void reap(struct fz *z, bool all)
{
	int i, st;

	for (i = 0; i < FZ_CHILDREN; i++) {
		pid_t r;

		if (!z->children[i])
			continue;
		r = waitpid(z->children[i], &st, all ? 0 : WNOHANG);
		if (r == 0)
			continue;
		if (r == z->children[i] && WIFEXITED(st) && WEXITSTATUS(st))
			fz_fail(z, "child %d failed (status %d)", (int)r, WEXITSTATUS(st));
		if (r == z->children[i] && WIFSIGNALED(st) && WTERMSIG(st) != SIGKILL)
			fz_fail(z, "child %d died of signal %d", (int)r, WTERMSIG(st));
		z->children[i] = 0;
	}
}

static void op_fork(struct fz *z)
{
	int i, slot = -1;
	pid_t pid;

	if (z->child)
		return;
	reap(z, false);
	for (i = 0; i < FZ_CHILDREN; i++)
		if (!z->children[i])
			slot = i;
	if (slot < 0) {
		/* Full: kill one, maybe in the middle of a WAIT. */
		i = (int)below(z, FZ_CHILDREN);
		WHAT(z, "kill child %d", (int)z->children[i]);
		kill(z->children[i], SIGKILL);
		return;
	}
	WHAT(z, "fork");
	fflush(NULL);
	pid = fork();
	if (pid < 0)
		fz_fail(z, "fork: %s", strerror(errno));
	if (pid == 0) {
		z->child = true;
		memset(z->children, 0, sizeof(z->children));
		z->rng ^= (uint64_t)getpid() << 32;
		z->ops = 0;
		run_ops(z, sp_now_ns(CLOCK_MONOTONIC) + 1000000000ULL, 1 + below(z, 64));
		_exit(0);
	}
	z->children[slot] = pid;
}

typedef void (*fz_op)(struct fz *z);

struct fz_op_weight {
	fz_op fn;
	unsigned int weight;
	bool child_ok;	/* also done by forked children */
};

static const struct fz_op_weight fz_ops[] = {
	{ op_create, 6, false }, { op_open, 5, false }, { op_unlink, 3, false },
	{ op_info, 4, true }, { op_api, 1, true }, { op_close_dup, 3, false },
	{ op_mmap, 8, false }, { op_munmap, 4, false }, { op_mremap, 3, false },
	{ op_mprotect, 4, false }, { op_madvise, 5, false }, { op_touch, 14, true },
	{ op_wait, 6, true }, { op_wake, 6, true }, { op_waitv, 4, true },
	{ op_notify, 4, true }, { op_fork, 1, false },
};

static void run_ops(struct fz *z, uint64_t end_ns, unsigned long max_ops)
{
	unsigned int total = 0, i, r;

	for (i = 0; i < sizeof(fz_ops) / sizeof(fz_ops[0]); i++)
		total += fz_ops[i].weight;
	while (z->ops < max_ops) {
		if ((z->ops & 63) == 0 && sp_now_ns(CLOCK_MONOTONIC) >= end_ns)
			break;
		r = (unsigned int)below(z, total);
		for (i = 0; r >= fz_ops[i].weight; i++)
			r -= fz_ops[i].weight;
		if (!z->child || fz_ops[i].child_ok)
			fz_ops[i].fn(z);
		z->ops++;
		if (z->shared_ops && (z->ops & 255) == 0)
			__atomic_store_n(z->shared_ops, z->ops, __ATOMIC_RELAXED);
	}
}

/* One worker process: its own seed, all of the shared names. */
static void worker(uint64_t seed, unsigned long *shared_ops, uint64_t end_ns,
		   pid_t leader)
{
	struct sigaction sa;
	struct fz z;
	int i;

	memset(&z, 0, sizeof(z));
	z.rng = seed ? seed : 1;
	z.page = sp_page_size();
	z.shared_ops = shared_ops;
	for (i = 0; i < FZ_FDS; i++)
		z.fds[i].fd = -1;
	for (i = 0; i < FZ_NAMES; i++)
		snprintf(z.names[i], SHMPOOL_NAME_MAX, "fz-%d-%d", (int)leader, i);
	z.efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	fz_doing = z.what;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = fz_fault;
	sa.sa_flags = SA_NODEFER | SA_SIGINFO;
	sigaction(SIGSEGV, &sa, NULL);
	sigaction(SIGBUS, &sa, NULL);
	new_dev_fd(&z);
	run_ops(&z, end_ns, ~0UL);
	for (i = 0; i < FZ_CHILDREN; i++)
		if (z.children[i])
			kill(z.children[i], SIGKILL);
	reap(&z, true);
	__atomic_store_n(shared_ops, z.ops, __ATOMIC_RELAXED);
	_exit(0);
}

static uint64_t env_u64(const char *name, uint64_t def)
{
	const char *v = getenv(name);

	return v && *v ? strtoull(v, NULL, 0) : def;
}

FIXTURE(fuzz) {
	int unused;
};

FIXTURE_SETUP(fuzz)
{
	if (access(SP_DEV, R_OK | W_OK))
		SP_SKIP_SETUP("cannot open " SP_DEV ": %s", strerror(errno));
}

FIXTURE_TEARDOWN(fuzz)
{
}

/*
 * The harness's timeout is a constant, the budget is not: the run watches
 * itself and fails if a worker is still there a minute past the budget.
 */
TEST_F_TIMEOUT(fuzz, random_ops, 86400)
{
	uint64_t secs = env_u64("SHMPOOL_FUZZ_SECS", 20);
	uint64_t seed = env_u64("SHMPOOL_FUZZ_SEED", 0);
	unsigned int procs = (unsigned int)env_u64("SHMPOOL_FUZZ_PROCS", 3);
	unsigned long *ops, total = 0;
	pid_t leader = getpid(), pids[16];
	uint64_t end, give_up;
	unsigned int i, live, failed = 0;
	char name[SHMPOOL_NAME_MAX];

	if (!seed)
		seed = sp_now_ns(CLOCK_REALTIME) ^ ((uint64_t)leader << 32);
	if (procs < 1 || procs > 16)
		procs = 3;
	fprintf(stderr, "# fuzz: seed=%llu secs=%llu procs=%u (SHMPOOL_FUZZ_SEED, _SECS, _PROCS)\n",
		(unsigned long long)seed, (unsigned long long)secs, procs);
	ops = mmap(NULL, 16 * sizeof(*ops), PROT_READ | PROT_WRITE,
		   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, ops);
	end = sp_now_ns(CLOCK_MONOTONIC) + secs * 1000000000ULL;
	give_up = end + 60000000000ULL;
	fflush(NULL);
	for (i = 0; i < procs; i++) {
		pids[i] = fork();
		ASSERT_GE(pids[i], 0);
		if (pids[i] == 0) {
			sp_child_init();
			worker(seed + i * 0x9e3779b97f4a7c15ULL, &ops[i], end, leader);
		}
	}
	for (live = procs; live;) {
		int st;
		pid_t r = waitpid(-1, &st, WNOHANG);

		if (r > 0) {
			live--;
			if (!WIFEXITED(st) || WEXITSTATUS(st)) {
				failed++;
				fprintf(stderr, "# fuzz: worker %d ended with status %#x\n",
					(int)r, st);
			}
			continue;
		}
		if (sp_now_ns(CLOCK_MONOTONIC) > give_up) {
			fprintf(stderr, "# fuzz: %u workers still running 60 s past the budget: hung\n",
				live);
			for (i = 0; i < procs; i++)
				kill(pids[i], SIGKILL);
			failed += live;
			while (waitpid(-1, &st, 0) > 0)
				;
			break;
		}
		usleep(10000);
	}
	for (i = 0; i < procs; i++)
		total += ops[i];
	for (i = 0; i < 4; i++) {
		snprintf(name, sizeof(name), "fz-%d-%u", (int)leader, i);
		sp_unlink_quiet(name);
	}
	fprintf(stderr, "# fuzz: seed=%llu ops=%lu workers=%u failed=%u\n",
		(unsigned long long)seed, total, procs, failed);
	munmap(ops, 16 * sizeof(*ops));
	EXPECT_EQ(0U, failed);
}

TEST_HARNESS_MAIN
