// SPDX-License-Identifier: MIT
/*
 * memfd backend: shmpool without the kernel module.
 *
 * An anonymous pool is a memfd sealed at its size, so no holder of the fd can
 * shrink it under the others' mappings. A named pool is the tmpfs file
 * "shmpool.<name>" in /dev/shm, or in $SHMPOOL_SHM_DIR (for tests). It is
 * made nameless with O_TMPFILE, sized and only then linked in under its name,
 * so an opener never sees a pool of the wrong size, and linkat()'s EEXIST
 * decides races between creators. O_TMPFILE is required (tmpfs has it since
 * Linux 3.11); a directory whose filesystem lacks it gives -EOPNOTSUPP.
 *
 * Errors follow the device's: EEXIST, ENOENT, EACCES (file mode), EPERM
 * (unlinking another user's pool in the sticky /dev/shm). One is our own:
 * EAGAIN from a create without SHMPOOL_EXCL that lost CREATE_ROUNDS races
 * in a row to a name that kept appearing and vanishing.
 *
 * Truncation (README, "Trust between processes"). A file shrunk under a
 * mapping loses its pages past the new end in every process that maps it,
 * and the next access there is SIGBUS. Every mapping is therefore sealed
 * with F_SEAL_SHRINK where the file allows it: an anonymous pool is born
 * sealed, and an adopted memfd that allows sealing gets the seal when it is
 * mapped. A named pool's tmpfs file cannot be sealed (tmpfs files are born
 * with F_SEAL_SEAL; only memfd_create() makes sealable ones), nor can an fd
 * adopted read-only. Those mappings go into a table (rescue[]) and the
 * library installs, once, a SIGBUS handler: a fault past the end of the
 * file (BUS_ADRERR) inside one of them maps private zero pages over the
 * rest of that mapping, from the faulting page on, and the access resumes
 * on them. The process keeps running on a pool that is no longer shared
 * past that point (shmpool_info() says SHMPOOL_POOL_TRUNCATED); what it
 * reads there is zeros, which the structures' checks report as -EUCLEAN.
 * Every other SIGBUS goes to the handler installed before ours, or kills
 * as the default action does.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

#define SHM_DIR		"/dev/shm"
#define FILE_PREFIX	"shmpool."
#define FILE_NAME_MAX	(sizeof(FILE_PREFIX) + SHMPOOL_NAME_MAX)
/* create_named()'s rounds lost to a name that appears and vanishes */
#define CREATE_ROUNDS	64

/*
 * The directory of named pools as an O_PATH fd, and @name's file name in it
 * (@name is already validated, so it always fits).
 */
static int open_dir(char fname[FILE_NAME_MAX], const char *name)
{
	const char *dir = getenv("SHMPOOL_SHM_DIR");
	int fd;

	snprintf(fname, FILE_NAME_MAX, FILE_PREFIX "%s", name);
	if (!dir || !dir[0])
		dir = SHM_DIR;
	fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

/* Take size and id from p->fd, which must be a regular file of pool shape. */
static int stat_fd(struct shmpool *p)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	struct stat st;

	if (fstat(p->fd, &st))
		return -errno;
	if (!S_ISREG(st.st_mode) || st.st_size <= 0 ||
	    ((uint64_t)st.st_size & (page - 1)))
		return -EINVAL;
	p->id = st.st_ino;
	return __shmpool_set_size(p, (uint64_t)st.st_size);
}

static void set_named(struct shmpool *p, const char *name)
{
	p->flags |= __SHMPOOL_F_NAMED;
	memset(p->name, 0, sizeof(p->name));
	memcpy(p->name, name, strlen(name));
}

/* Linux 6.3 UAPI, missing from older headers. */
#ifndef MFD_NOEXEC_SEAL
#define MFD_NOEXEC_SEAL	0x0008U
#endif
#ifndef MFD_EXEC
#define MFD_EXEC	0x0010U
#endif

static int create_anon(struct shmpool *p, uint64_t bytes, unsigned int flags)
{
	const int seals = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL;
	const unsigned int mfd = MFD_CLOEXEC | MFD_ALLOW_SEALING;
	unsigned int x = (flags & SHMPOOL_EXEC) ? MFD_EXEC : MFD_NOEXEC_SEAL;

	/*
	 * Not executable (execve) unless asked; mmap(PROT_EXEC) of a memfd
	 * cannot be refused (see shmpool_create()). Kernels before 6.3 know
	 * neither flag: EINVAL, and a plain memfd is all they offer.
	 */
	p->fd = memfd_create("shmpool", mfd | x);
	if (p->fd < 0 && errno == EINVAL)
		p->fd = memfd_create("shmpool", mfd);
	if (p->fd < 0)
		return -errno;
	if (ftruncate(p->fd, (off_t)bytes) || fcntl(p->fd, F_ADD_SEALS, seals))
		return -errno;
	return stat_fd(p);
}

/* Open the existing file @fname with access @acc into p->fd. */
static int open_file(struct shmpool *p, int dirfd, const char *fname, int acc)
{
	int fd;

	/* O_NONBLOCK: a FIFO planted under a pool's name must not hang us */
	fd = openat(dirfd, fname,
		    acc | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return -errno;
	p->fd = fd;
	return stat_fd(p);
}

/*
 * Make a new file of @bytes and link it in as @fname, atomically: -EEXIST if
 * the name is taken. p->fd is set only on success.
 */
static int link_new(struct shmpool *p, int dirfd, const char *fname,
		    uint64_t bytes, unsigned int mode)
{
	char proc[32];
	int fd, ret;

	/* open() applies the umask (or the directory's default ACL) */
	fd = openat(dirfd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, (mode_t)mode);
	if (fd < 0)
		return errno == EISDIR ? -EOPNOTSUPP : -errno;
	if (ftruncate(fd, (off_t)bytes))
		goto err;
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	if (linkat(AT_FDCWD, proc, dirfd, fname, AT_SYMLINK_FOLLOW)) {
		/* no /proc: AT_EMPTY_PATH works with CAP_DAC_READ_SEARCH */
		if (errno != ENOENT ||
		    linkat(fd, "", dirfd, fname, AT_EMPTY_PATH))
			goto err;
	}
	p->fd = fd;
	p->flags |= __SHMPOOL_F_CREATED;
	return stat_fd(p);
err:
	ret = -errno;
	close(fd);
	return ret;
}

static int create_named(struct shmpool *p, const char *name, uint64_t bytes,
			unsigned int mode, unsigned int flags)
{
	char fname[FILE_NAME_MAX];
	int dirfd, ret, round;

	dirfd = open_dir(fname, name);
	if (dirfd < 0)
		return dirfd;
	/*
	 * Each time round, the name appeared or vanished between our open and
	 * our link: another creator or an unlinker made progress. A peer that
	 * keeps linking and unlinking the name could keep us here for ever
	 * (the kernel's open(O_CREAT) decides under the directory's lock; we
	 * have no such lock), so after CREATE_ROUNDS of them: -EAGAIN.
	 */
	ret = -EAGAIN;
	for (round = 0; round < CREATE_ROUNDS; round++) {
		if (!(flags & SHMPOOL_EXCL)) {
			ret = open_file(p, dirfd, fname, O_RDWR);
			if (ret != -ENOENT) {
				if (!ret && p->size != bytes)
					ret = -EEXIST;
				break;
			}
		}
		ret = link_new(p, dirfd, fname, bytes,
			       flags & SHMPOOL_EXEC ? mode : mode & ~0111U);
		if (ret != -EEXIST || (flags & SHMPOOL_EXCL))
			break;
		ret = -EAGAIN;
	}
	close(dirfd);
	if (!ret)
		set_named(p, name);
	return ret;
}

static int memfd_create_pool(struct shmpool *p, const char *name,
			     uint64_t bytes, unsigned int mode,
			     unsigned int flags)
{
	if (flags & (SHMPOOL_CONTIG | SHMPOOL_HUGE))
		return -EOPNOTSUPP;
	if (bytes > INT64_MAX)
		return -EFBIG;
	if (!name)
		return create_anon(p, bytes, flags);
	return create_named(p, name, bytes, mode, flags);
}

static int memfd_open(struct shmpool *p, const char *name, unsigned int flags)
{
	char fname[FILE_NAME_MAX];
	int dirfd, ret;

	dirfd = open_dir(fname, name);
	if (dirfd < 0)
		return dirfd;
	ret = open_file(p, dirfd, fname,
			(flags & SHMPOOL_RDONLY) ? O_RDONLY : O_RDWR);
	close(dirfd);
	if (!ret)
		set_named(p, name);
	return ret;
}

static int memfd_unlink(int devfd, const char *name)
{
	char fname[FILE_NAME_MAX];
	int dirfd, ret = 0;

	(void)devfd;
	dirfd = open_dir(fname, name);
	if (dirfd < 0)
		return dirfd;
	if (unlinkat(dirfd, fname, 0))
		ret = -errno;
	close(dirfd);
	return ret;
}

/*
 * Recover what an adopted fd is from its /proc link: "/memfd:shmpool" for
 * an anonymous pool, ".../shmpool.<name>" for a named one whose fd was
 * opened by name. The fd of a creator points at its O_TMPFILE inode
 * ("/dev/shm/#123"): named, name unknown.
 */
static void adopt_name(struct shmpool *p)
{
	char proc[32], link[4096];
	const char *base;
	ssize_t len;

	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", p->fd);
	len = readlink(proc, link, sizeof(link) - 1);
	if (len < 0)
		return;
	link[len] = '\0';
	if (!strncmp(link, "/memfd:", strlen("/memfd:")))
		return;
	p->flags |= __SHMPOOL_F_NAMED;
	base = strrchr(link, '/');
	base = base ? base + 1 : link;
	if (!strncmp(base, FILE_PREFIX, strlen(FILE_PREFIX)) &&
	    !__shmpool_check_name(base + strlen(FILE_PREFIX)))
		set_named(p, base + strlen(FILE_PREFIX));
}

static int memfd_adopt(struct shmpool *p)
{
	int ret = stat_fd(p);

	if (!ret)
		adopt_name(p);
	return ret;
}

static int memfd_info(struct shmpool *p, struct shmpool_pool_info *info)
{
	struct stat st;

	if (fstat(p->fd, &st))
		return -errno;
	info->bytes = p->size;
	info->id = p->id;
	if (p->flags & __SHMPOOL_F_NAMED) {
		info->flags |= SHMPOOL_POOL_NAMED;
		if (!st.st_nlink)
			info->flags |= SHMPOOL_POOL_UNLINKED;
	}
	if (p->flags & SHMPOOL_RDONLY)
		info->flags |= SHMPOOL_POOL_RDONLY;
	if ((uint64_t)st.st_size < p->size)
		info->flags |= SHMPOOL_POOL_TRUNCATED;
	info->mode = st.st_mode & 0777;
	info->uid = st.st_uid;
	info->gid = st.st_gid;
	info->nr_extents = 1;
	info->lacks = SHMPOOL_CAP_CONTIG | SHMPOOL_CAP_ACCOUNTING |
		      SHMPOOL_CAP_ACCESS_CONTROL | SHMPOOL_CAP_USAGE;
	memcpy(info->name, p->name, sizeof(info->name));
	return 0;
}

/* tmpfs pages are scattered; one extent says only where the pool is */
static int memfd_extents(struct shmpool *p, struct shmpool_extent *ext,
			 unsigned int cap)
{
	if (cap) {
		ext[0].offset = 0;
		ext[0].bytes = p->size;
		ext[0].phys = 0;
	}
	return 1;
}

/* ---- truncation: seals, else the SIGBUS rescue (see the top) ---- */

#define RESCUE_SLOTS	1024	/* unsealable mappings a process can have rescued */

/*
 * A slot is taken and given back under rescue_lock; the handler reads it
 * lock-free: @size and @prot before @base, which publishes them (release,
 * pairs with the acquire load in rescue_sigbus()).
 */
static struct rescue {
	_Atomic uintptr_t base;
	_Atomic size_t size;
	_Atomic int prot;
} rescue[RESCUE_SLOTS];
static pthread_mutex_t rescue_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t rescue_once = PTHREAD_ONCE_INIT;

/* a leaf lock: nothing is taken while it is held */
void __shmpool_memfd_atfork(enum __shmpool_fork_stage stage)
{
	__shmpool_fork_lock(&rescue_lock, stage);
}
static struct sigaction rescue_prev;	/* the handler before ours */
static size_t rescue_page;

/* Not ours: do what would have happened without us. */
static void rescue_chain(int sig, siginfo_t *si, void *uc)
{
	if (rescue_prev.sa_flags & SA_SIGINFO) {
		rescue_prev.sa_sigaction(sig, si, uc);
		return;
	}
	if (rescue_prev.sa_handler != SIG_DFL &&
	    rescue_prev.sa_handler != SIG_IGN) {
		rescue_prev.sa_handler(sig);
		return;
	}
	/* a fault comes back on return and kills; a sent signal is resent */
	signal(SIGBUS, SIG_DFL);
	if (si->si_code <= 0 && rescue_prev.sa_handler == SIG_DFL)
		raise(SIGBUS);
}

static void rescue_sigbus(int sig, siginfo_t *si, void *uc)
{
	uintptr_t a = (uintptr_t)si->si_addr, base, page;
	size_t size;
	int i;

	if (si->si_code != BUS_ADRERR)
		goto chain;
	for (i = 0; i < RESCUE_SLOTS; i++) {
		/* acquire: pairs with the release in rescue_add() */
		base = atomic_load_explicit(&rescue[i].base, memory_order_acquire);
		size = atomic_load_explicit(&rescue[i].size, memory_order_relaxed);
		if (!base || a - base >= size)
			continue;
		page = a & ~(uintptr_t)(rescue_page - 1);
		if (mmap((void *)page, base + size - page,
			 atomic_load_explicit(&rescue[i].prot, memory_order_relaxed),
			 MAP_PRIVATE | MAP_FIXED | MAP_ANONYMOUS, -1, 0) !=
		    MAP_FAILED)
			return;	/* the access resumes on zeros */
		break;
	}
chain:
	rescue_chain(sig, si, uc);
}

static void rescue_install(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = rescue_sigbus;
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
	sigemptyset(&sa.sa_mask);
	rescue_page = (size_t)sysconf(_SC_PAGESIZE);
	sigaction(SIGBUS, &sa, &rescue_prev);
}

static void rescue_add(struct shmpool *p)
{
	int i;

	pthread_once(&rescue_once, rescue_install);
	pthread_mutex_lock(&rescue_lock);
	for (i = 0; i < RESCUE_SLOTS; i++) {
		if (atomic_load_explicit(&rescue[i].base, memory_order_relaxed))
			continue;
		atomic_store_explicit(&rescue[i].size, p->size, memory_order_relaxed);
		atomic_store_explicit(&rescue[i].prot, (p->flags & SHMPOOL_RDONLY) ?
				      PROT_READ : PROT_READ | PROT_WRITE,
				      memory_order_relaxed);
		atomic_store_explicit(&rescue[i].base, (uintptr_t)p->base,
				      memory_order_release);
		break;
	}
	pthread_mutex_unlock(&rescue_lock);
}

/*
 * pool.c, after mapping @p: seal it against shrinking if the file allows,
 * else have it rescued from SIGBUS.
 */
void __shmpool_memfd_mapped(struct shmpool *p)
{
	int seals;

	if (!(p->flags & SHMPOOL_RDONLY))
		fcntl(p->fd, F_ADD_SEALS, F_SEAL_SHRINK);	/* may fail: see below */
	seals = fcntl(p->fd, F_GET_SEALS);
	if (seals >= 0 && (seals & F_SEAL_SHRINK))
		return;
	rescue_add(p);
}

/* pool.c, before unmapping @p */
void __shmpool_memfd_unmapping(struct shmpool *p)
{
	int i;

	pthread_mutex_lock(&rescue_lock);
	for (i = 0; i < RESCUE_SLOTS; i++) {
		if (atomic_load_explicit(&rescue[i].base, memory_order_relaxed) ==
		    (uintptr_t)p->base) {
			atomic_store_explicit(&rescue[i].base, 0,
					      memory_order_relaxed);
			break;
		}
	}
	pthread_mutex_unlock(&rescue_lock);
}

const struct __shmpool_ops __shmpool_memfd_ops = {
	.backend = SHMPOOL_BACKEND_MEMFD,
	.create = memfd_create_pool,
	.open = memfd_open,
	.unlink = memfd_unlink,
	.adopt = memfd_adopt,
	.info = memfd_info,
	.extents = memfd_extents,
};
