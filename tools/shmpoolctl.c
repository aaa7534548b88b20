// SPDX-License-Identifier: MIT
/*
 * shmpoolctl: list, create, remove and look inside shmpool pools, on both
 * backends (the module's device and memfd files in /dev/shm).
 *
 * Everything that reads a pool's contents (stat, dump, watch) opens it
 * SHMPOOL_RDONLY and uses the library's read-only introspection calls
 * (shmpool_heap_inspect(), shmpool_obj_next(), shmpool_*_inspect()), which
 * take no lock and write nothing: the observer cannot disturb the pool.
 * Only check opens read-write, because the heap checker takes the heap's
 * lock to see a consistent heap.
 *
 * Listing device names: a mounted shmpool instance is a directory and is
 * read with readdir(); the module's default scope (/dev/shmpool) has no
 * directory, so ls reads the administrators' debugfs list
 * (/sys/kernel/debug/shmpool/pools) and keeps the names that open in the
 * caller's scope as the very pool listed (same id). Without read access to
 * that file the default scope cannot be listed, and ls says so (exit 4).
 *
 * Exit status (also in man/shmpoolctl.8): 0 success, 1 other error,
 * 2 usage, 3 no such pool, 4 permission denied, 5 no module (device
 * backend unavailable), 6 pool exists, 7 check found damage (stat and
 * watch: the heap is unreadable, EUCLEAN), 8 no heap in the pool.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include <shmpool.h>
#include <shmpool_alloc.h>
#include <shmpool_cache.h>
#include <shmpool_ring.h>
#include <shmpool_state.h>

#ifndef SHMPOOL_VERSION
#define SHMPOOL_VERSION "unknown"
#endif

enum {
	EX_OK = 0,
	EX_FAIL = 1,
	EX_USAGE = 2,
	EX_NOENT = 3,
	EX_ACCES = 4,
	EX_NOMOD = 5,
	EX_EXIST = 6,
	EX_DAMAGED = 7,
	EX_NOHEAP = 8,
};

#define DEV_PATH	"/dev/shmpool"
#define SCOPE_DIR	"/dev/shmpool.d"
#define SHM_DIR		"/dev/shm"
#define SHM_PREFIX	"shmpool."
#define DEBUGFS_POOLS	"/sys/kernel/debug/shmpool/pools"
#define BACKENDS	(SHMPOOL_BACKEND_DEVICE | SHMPOOL_BACKEND_MEMFD)

/* command-line state shared by the commands */
static struct {
	unsigned int backend;	/* forced: SHMPOOL_BACKEND_*, or 0 */
	bool json;
	bool contig;
	bool quiescent;
	bool mode_set;
	bool interval_set;
	unsigned int mode;
	double interval;
	long count;
} opt = { .mode = 0600, .interval = 1.0 };

static const char *prog = "shmpoolctl";

/* ---- errors ------------------------------------------------------------------ */

static int exit_code(int err)
{
	switch (err) {
	case ENOENT:
		return EX_NOENT;
	case EACCES:
	case EPERM:
		return EX_ACCES;
	case ENODEV:
		return EX_NOMOD;
	case EEXIST:
		return EX_EXIST;
	case EUCLEAN:
		return EX_DAMAGED;
	case ENODATA:
		return EX_NOHEAP;
	default:
		return EX_FAIL;
	}
}

/* Report -@ret of @what on @name and return the exit status for it. */
static int fail(const char *what, const char *name, int ret)
{
	int err = ret < 0 ? -ret : ret;
	const char *hint = "";

	switch (err) {
	case ENODEV:
		hint = " (no shmpool module: load it with 'modprobe shmpool', "
		       "or use --backend memfd)";
		break;
	case ENODATA:
		hint = " (the pool holds no heap)";
		break;
	case EACCES:
	case EPERM:
		hint = " (the pool's owner, group and mode decide)";
		break;
	}
	fprintf(stderr, "%s: %s%s%s: %s%s\n", prog, what, name ? " " : "",
		name ? name : "", strerror(err), hint);
	return exit_code(err);
}

static int usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, "%s: ", prog);
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\nTry '%s --help'.\n", prog);
	return EX_USAGE;
}

/* ---- backends and scopes ---------------------------------------------------- */

/* The backend forced by --backend or $SHMPOOL_BACKEND, or 0. */
static unsigned int forced_backend(void)
{
	const char *env = getenv("SHMPOOL_BACKEND");

	if (opt.backend)
		return opt.backend;
	if (env && !strcmp(env, "device"))
		return SHMPOOL_BACKEND_DEVICE;
	if (env && !strcmp(env, "memfd"))
		return SHMPOOL_BACKEND_MEMFD;
	return 0;
}

static bool is_shmpool_fs(const char *path)
{
	struct statfs sfs;

	return !statfs(path, &sfs) && sfs.f_type == SHMPOOL_MAGIC;
}

/*
 * The scope the library would use (the same rule as lib/backend_dev.c):
 * $SHMPOOL_SCOPE, else an instance mounted on /dev/shmpool.d, else the
 * device. NULL if it does not exist: no module for us.
 */
static const char *scope_path(void)
{
	const char *env = getenv("SHMPOOL_SCOPE");

	if (env && env[0])
		return access(env, F_OK) ? NULL : env;
	if (is_shmpool_fs(SCOPE_DIR))
		return SCOPE_DIR;
	return access(DEV_PATH, F_OK) ? NULL : DEV_PATH;
}

static const char *shm_dir(void)
{
	const char *env = getenv("SHMPOOL_SHM_DIR");

	return env && env[0] ? env : SHM_DIR;
}

/*
 * Open pool @name read-only (or read-write with @rw) on the forced
 * backend; with none forced, the device first (if present), then memfd.
 */
static int open_pool(const char *name, bool rw, struct shmpool **p)
{
	unsigned int b = forced_backend(), fl = rw ? 0 : SHMPOOL_RDONLY;
	int ret;

	if (b == SHMPOOL_BACKEND_DEVICE && !scope_path())
		return -ENODEV;
	if (b)
		return shmpool_open(name, fl | b, p);
	ret = -ENOENT;
	if (scope_path())
		ret = shmpool_open(name, fl | SHMPOOL_BACKEND_DEVICE, p);
	if (ret == -ENOENT)
		ret = shmpool_open(name, fl | SHMPOOL_BACKEND_MEMFD, p);
	return ret;
}

/* ---- who uses a pool: /proc ------------------------------------------------- */

struct usage {
	dev_t dev;
	ino_t ino;
	unsigned int fds;	/* open fds on the pool's file */
	unsigned int maps;	/* mappings of it */
};

/* Count @pid's fds and mappings of each pool in @u (@n entries). */
static void scan_pid(const char *pid, struct usage *u, size_t n)
{
	char path[64], *line = NULL;
	struct dirent *de;
	struct stat st;
	unsigned int maj, min;
	unsigned long long ino, off;
	size_t i, cap = 0;
	DIR *d;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%s/fd", pid);
	d = opendir(path);
	while (d && (de = readdir(d))) {
		if (de->d_name[0] == '.' || fstatat(dirfd(d), de->d_name, &st, 0))
			continue;
		for (i = 0; i < n; i++)
			if (st.st_dev == u[i].dev && st.st_ino == u[i].ino)
				u[i].fds++;
	}
	if (d)
		closedir(d);
	snprintf(path, sizeof(path), "/proc/%s/maps", pid);
	f = fopen(path, "re");
	/*
	 * Whole lines, however long: a file name is up to PATH_MAX bytes
	 * that any user chooses, and the tail of a line cut in two would
	 * parse as a mapping of whatever pool it names.
	 */
	while (f && getline(&line, &cap, f) > 0) {
		if (sscanf(line, "%*s %*s %llx %x:%x %llu", &off, &maj, &min, &ino) != 4)
			continue;
		/* the module's status page is not a mapping of the pool (INFO) */
		if (off == SHMPOOL_STATUS_OFFSET)
			continue;
		for (i = 0; i < n; i++)
			if (makedev(maj, min) == u[i].dev && ino == u[i].ino)
				u[i].maps++;
	}
	free(line);
	if (f)
		fclose(f);
}

/* Count fds and mappings in every process we may look at (@all), or in ours. */
static void scan_usage(struct usage *u, size_t n, bool all)
{
	struct dirent *de;
	DIR *d;

	if (!all) {
		scan_pid("self", u, n);
		return;
	}
	d = opendir("/proc");
	while (d && (de = readdir(d)))
		if (isdigit((unsigned char)de->d_name[0]) &&
		    strtol(de->d_name, NULL, 10) != getpid())
			scan_pid(de->d_name, u, n);
	if (d)
		closedir(d);
}

/* ---- ls and info -------------------------------------------------------------- */

struct row {
	char name[SHMPOOL_NAME_MAX];
	int backend;
	uint64_t bytes;
	uint64_t id;
	uint32_t extents;
	uint32_t flags;		/* SHMPOOL_POOL_* */
	uint32_t uid, gid, mode;
	long attach, maps;	/* -1: unknown */
	int err;		/* opening it failed with this (the rest from stat) */
	struct usage use;	/* our own (device) or everyone's (memfd) */
};

/* Fill @r from an opened pool. */
static void row_from_pool(struct row *r, struct shmpool *p)
{
	struct shmpool_pool_info in;
	struct stat st;

	if (shmpool_info(p, &in))
		return;
	r->backend = in.backend;
	r->bytes = in.bytes;
	r->id = in.id;
	r->extents = in.nr_extents;
	r->flags = in.flags & ~(uint32_t)SHMPOOL_POOL_RDONLY;	/* ours, not the pool's */
	r->uid = in.uid;
	r->gid = in.gid;
	r->mode = in.mode;
	if (!(in.lacks & SHMPOOL_CAP_USAGE)) {
		r->attach = in.attachments;
		r->maps = in.mappings;
	}
	if (!fstat(shmpool_fd(p), &st)) {
		r->use.dev = st.st_dev;
		r->use.ino = st.st_ino;
	}
}

static void row_from_stat(struct row *r, const struct stat *st)
{
	r->bytes = (uint64_t)st->st_size;
	r->id = st->st_ino;
	r->uid = st->st_uid;
	r->gid = st->st_gid;
	r->mode = st->st_mode & 07777;
	r->flags = SHMPOOL_POOL_NAMED;
	r->use.dev = st->st_dev;
	r->use.ino = st->st_ino;
}

struct rows {
	struct row *v;
	size_t n, cap;
};

static struct row *rows_add(struct rows *rs)
{
	struct row *r;

	if (rs->n == rs->cap) {
		rs->cap = rs->cap ? 2 * rs->cap : 16;
		rs->v = realloc(rs->v, rs->cap * sizeof(*rs->v));
		if (!rs->v) {
			perror(prog);
			exit(EX_FAIL);
		}
	}
	r = &rs->v[rs->n++];
	memset(r, 0, sizeof(*r));
	r->attach = r->maps = -1;
	return r;
}

/* Add named pool @name of backend @b to @rs; @st from the directory if known. */
static void add_named(struct rows *rs, const char *name, unsigned int b,
		      const struct stat *st, uint64_t want_id)
{
	struct shmpool *p;
	struct row *r;
	int ret;

	ret = shmpool_open(name, SHMPOOL_RDONLY | b, &p);
	if (!ret && want_id && p->id != want_id) {
		/* the same name in another scope: not ours to list */
		shmpool_close(p);
		return;
	}
	if (ret && !st)
		return;		/* gone meanwhile, or not in our scope */
	r = rows_add(rs);
	snprintf(r->name, sizeof(r->name), "%s", name);
	r->backend = (int)b;
	if (st)
		row_from_stat(r, st);
	if (ret) {
		r->err = -ret;
		return;
	}
	row_from_pool(r, p);
	/* the kernel's counts include our own fd and mapping: count those */
	if (r->attach >= 0)
		scan_usage(&r->use, 1, false);
	shmpool_close(p);
	if (r->attach >= 0) {
		r->attach -= r->use.fds;
		r->maps -= r->use.maps;
	}
}

/* Device pools of a mounted scope: the directory lists them. */
static int ls_scope_dir(struct rows *rs, const char *dir)
{
	struct dirent *de;
	struct stat st;
	DIR *d = opendir(dir);
	int dfd;

	if (!d)
		return -errno;
	dfd = dirfd(d);
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (fstatat(dfd, de->d_name, &st, 0))
			continue;
		add_named(rs, de->d_name, SHMPOOL_BACKEND_DEVICE, &st, 0);
	}
	closedir(d);
	return 0;
}

/*
 * Device pools of the default scope: the module's debugfs list (root
 * only). Its lines: id scope name bytes extents uid gid mode attach maps
 * state. A name is ours if it opens in our scope as the same pool.
 */
static int ls_default_scope(struct rows *rs)
{
	char line[512], name[SHMPOOL_NAME_MAX], state[16];
	unsigned long long id;
	FILE *f = fopen(DEBUGFS_POOLS, "re");
	int ret = 0;

	if (!f)
		return errno == ENOENT ? -ENOTSUP : -errno;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%llu %*s %63s %*s %*s %*s %*s %*s %*s %*s %15s",
			   &id, name, state) != 3)
			continue;	/* the header */
		if (strcmp(state, "named"))
			continue;	/* anonymous and unlinked pools have no name here */
		add_named(rs, name, SHMPOOL_BACKEND_DEVICE, NULL, id);
	}
	if (ferror(f))
		ret = -EIO;
	fclose(f);
	return ret;
}

/* memfd pools: the files shmpool.<name> of the shm directory. */
static int ls_memfd(struct rows *rs)
{
	struct rows mine = { 0 };
	struct dirent *de;
	struct stat st;
	const char *dir = shm_dir();
	DIR *d = opendir(dir);
	struct usage *u;
	size_t i;

	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(d))) {
		if (strncmp(de->d_name, SHM_PREFIX, strlen(SHM_PREFIX)) ||
		    !de->d_name[strlen(SHM_PREFIX)] ||
		    fstatat(dirfd(d), de->d_name, &st, 0) || !S_ISREG(st.st_mode))
			continue;
		add_named(&mine, de->d_name + strlen(SHM_PREFIX),
			  SHMPOOL_BACKEND_MEMFD, &st, 0);
	}
	closedir(d);
	/* no counts from the kernel: count what /proc shows us */
	u = calloc(mine.n ? mine.n : 1, sizeof(*u));
	if (!u)
		return -ENOMEM;
	for (i = 0; i < mine.n; i++) {
		u[i].dev = mine.v[i].use.dev;
		u[i].ino = mine.v[i].use.ino;
	}
	scan_usage(u, mine.n, true);
	for (i = 0; i < mine.n; i++) {
		struct row *r = rows_add(rs);

		*r = mine.v[i];
		r->attach = u[i].fds;
		r->maps = u[i].maps;
	}
	free(u);
	free(mine.v);
	return 0;
}

/*
 * A name as a JSON string. Names are bytes, not text (any but NUL in an
 * object name, any but '/' in a file name): a byte outside printable ASCII
 * is \u00NN of that byte, never raw. Raw, DEL and the C1 controls (0x9b is
 * CSI) reach terminals, and a byte that is no UTF-8 makes the whole
 * document unparseable: one peer's name must not do either to an
 * administrator's listing of everyone's pools.
 */
static void json_str(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			printf("\\%c", ch);
		else if (ch < 0x20 || ch >= 0x7f)
			printf("\\u%04x", ch);
		else
			putchar(ch);
	}
	putchar('"');
}

/*
 * A name for a terminal: object names are any bytes but NUL (a peer can
 * write any into the directory), and anyone can make a file shmpool.NAME
 * in /dev/shm, so a byte outside printable ASCII (and the backslash) is
 * shown as \xNN, never sent raw (escape sequences). Longer names are cut.
 */
#define NAME_SHOWN_MAX	(SHMPOOL_NAME_MAX * 4)
_Static_assert(SHMPOOL_OBJ_NAME_MAX <= SHMPOOL_NAME_MAX, "object names fit");

static const char *shown_name(const char *s, char out[NAME_SHOWN_MAX])
{
	size_t n = 0;

	for (; *s && n + 5 <= NAME_SHOWN_MAX; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch >= 0x20 && ch < 0x7f && ch != '\\')
			out[n++] = (char)ch;
		else
			n += (size_t)snprintf(out + n, NAME_SHOWN_MAX - n, "\\x%02x", ch);
	}
	out[n] = '\0';
	return out;
}

static const char *pool_state(uint32_t flags)
{
	return !(flags & SHMPOOL_POOL_NAMED) ? "anon" :
	       (flags & SHMPOOL_POOL_UNLINKED) ? "unlinked" : "named";
}

static void fmt_size(uint64_t b, char *buf, size_t len)
{
	const char *u = "KMGT";
	double v = (double)b;
	int i = -1;

	if (b < 1024) {
		snprintf(buf, len, "%" PRIu64, b);
		return;
	}
	while (v >= 1024 && i < 3) {
		v /= 1024;
		i++;
	}
	snprintf(buf, len, v < 10 && v != (uint64_t)v ? "%.1f%c" : "%.0f%c", v, u[i]);
}

static void print_rows(const struct rows *rs)
{
	char sz[16], ext[16], at[16], mp[16], shown[NAME_SHOWN_MAX];
	size_t i;

	if (opt.json) {
		printf("[");
		for (i = 0; i < rs->n; i++) {
			const struct row *r = &rs->v[i];

			printf("%s\n  {\"name\": ", i ? "," : "");
			json_str(r->name);
			printf(", \"backend\": \"%s\", \"bytes\": %" PRIu64 ", \"id\": %" PRIu64
			       ", \"extents\": %u, \"contig\": %s, \"uid\": %u, \"gid\": %u"
			       ", \"mode\": \"%04o\", \"attachments\": %ld, \"mappings\": %ld"
			       ", \"state\": \"%s\", \"error\": ",
			       shmpool_backend_name(r->backend), r->bytes, r->id,
			       r->extents, r->flags & SHMPOOL_POOL_CONTIG ? "true" : "false",
			       r->uid, r->gid, r->mode, r->attach, r->maps,
			       pool_state(r->flags));
			if (r->err)
				json_str(strerror(r->err));
			else
				printf("null");
			printf("}");
		}
		printf("%s]\n", rs->n ? "\n" : "");
		return;
	}
	printf("%-24s %-7s %8s %-9s %6s %6s %5s %6s %5s\n", "NAME", "BACKEND",
	       "SIZE", "EXTENTS", "UID", "GID", "MODE", "ATTACH", "MAPS");
	for (i = 0; i < rs->n; i++) {
		const struct row *r = &rs->v[i];

		fmt_size(r->bytes, sz, sizeof(sz));
		if (r->err || !r->extents)
			snprintf(ext, sizeof(ext), "-");
		else if (r->flags & SHMPOOL_POOL_CONTIG)
			snprintf(ext, sizeof(ext), "1 contig");
		else
			snprintf(ext, sizeof(ext), "%u", r->extents);
		snprintf(at, sizeof(at), r->attach < 0 ? "-" : "%ld", r->attach);
		snprintf(mp, sizeof(mp), r->maps < 0 ? "-" : "%ld", r->maps);
		printf("%-24s %-7s %8s %-9s %6u %6u %05o %6s %5s%s%s\n",
		       shown_name(r->name, shown),
		       shmpool_backend_name(r->backend), sz, ext, r->uid, r->gid,
		       r->mode, at, mp, r->err ? "  # " : "",
		       r->err ? strerror(r->err) : "");
	}
}

static int cmd_ls(int argc, char **argv)
{
	unsigned int b = forced_backend();
	struct rows rs = { 0 };
	const char *scope;
	int ret = 0, st = EX_OK;
	struct stat sst;

	(void)argv;
	if (argc > 0)
		return usage_error("ls: unexpected argument '%s'", argv[0]);
	scope = scope_path();
	if (b == SHMPOOL_BACKEND_DEVICE && !scope)
		return fail("ls", NULL, -ENODEV);
	if (scope && b != SHMPOOL_BACKEND_MEMFD) {
		if (!stat(scope, &sst) && S_ISDIR(sst.st_mode))
			ret = ls_scope_dir(&rs, scope);
		else
			ret = ls_default_scope(&rs);
		if (ret == -EACCES || ret == -EPERM || ret == -ENOTSUP) {
			fprintf(stderr, "%s: ls: the module's default scope (%s) has no "
				"directory; its pools are listed from %s, which %s. Run as "
				"root, or mount a scope on " SCOPE_DIR ".\n", prog, scope,
				DEBUGFS_POOLS, ret == -ENOTSUP ? "is not there (mount debugfs)"
							      : "only root may read");
			st = EX_ACCES;
		} else if (ret) {
			st = fail("ls", scope, ret);
		}
	}
	if (b != SHMPOOL_BACKEND_DEVICE) {
		ret = ls_memfd(&rs);
		if (ret)
			st = fail("ls", shm_dir(), ret);
	}
	print_rows(&rs);
	free(rs.v);
	return st;
}

static int cmd_info(int argc, char **argv)
{
	struct shmpool_pool_info in;
	struct shmpool_extent ext[64];
	struct rows rs = { 0 };
	struct shmpool *p;
	int ret, n, i;

	if (argc != 1)
		return usage_error("info: %s", argc ? "too many arguments" : "NAME missing");
	ret = open_pool(argv[0], false, &p);
	if (ret)
		return fail("info", argv[0], ret);
	ret = shmpool_info(p, &in);
	n = ret ? ret : shmpool_extents(p, ext, 64);
	if (n < 0) {
		shmpool_close(p);
		return fail("info", argv[0], n);
	}
	shmpool_close(p);
	/* the row: usage without our own handle */
	add_named(&rs, argv[0], (unsigned int)in.backend, NULL, in.id);
	if (rs.n && in.backend == SHMPOOL_BACKEND_MEMFD) {
		scan_usage(&rs.v[0].use, 1, true);
		rs.v[0].attach = rs.v[0].use.fds;
		rs.v[0].maps = rs.v[0].use.maps;
	}
	if (opt.json) {
		print_rows(&rs);
		free(rs.v);
		return EX_OK;
	}
	printf("name:        %s\n", argv[0]);
	printf("backend:     %s\n", shmpool_backend_name(in.backend));
	printf("id:          %" PRIu64 "\n", in.id);
	printf("size:        %" PRIu64 " bytes\n", in.bytes);
	printf("state:       %s%s%s\n", pool_state(in.flags),
	       in.flags & SHMPOOL_POOL_CONTIG ? ", contiguous" : "",
	       in.flags & SHMPOOL_POOL_EXEC ? ", executable" : "");
	printf("owner:       uid %u gid %u mode %04o\n", in.uid, in.gid, in.mode);
	if (rs.n && rs.v[0].attach >= 0)
		printf("users:       %ld attachments (open fds), %ld mappings%s\n",
		       rs.v[0].attach, rs.v[0].maps,
		       in.backend == SHMPOOL_BACKEND_MEMFD ?
		       " (of the processes /proc shows us)" : "");
	printf("extents:     %u\n", in.nr_extents);
	for (i = 0; i < n && i < 64; i++) {
		printf("  [%d] offset 0x%" PRIx64 " bytes %" PRIu64, i,
		       (uint64_t)ext[i].offset, (uint64_t)ext[i].bytes);
		if (ext[i].phys)
			printf(" phys 0x%" PRIx64, (uint64_t)ext[i].phys);
		printf("\n");
	}
	if (n > 64)
		printf("  ... %d more\n", n - 64);
	if (in.lacks)
		printf("lacks:       %s%s%s%s%s%s\n",
		       in.lacks & SHMPOOL_CAP_CONTIG ? "contiguity " : "",
		       in.lacks & SHMPOOL_CAP_ACCOUNTING ? "accounting " : "",
		       in.lacks & SHMPOOL_CAP_ACCESS_CONTROL ? "access-control " : "",
		       in.lacks & SHMPOOL_CAP_USAGE ? "usage-counts " : "",
		       in.lacks & SHMPOOL_CAP_NOTIFY ? "notify " : "",
		       in.lacks & SHMPOOL_CAP_DEATH_NOTICE ? "death-notice" : "");
	free(rs.v);
	return EX_OK;
}

/* ---- create and rm --------------------------------------------------------------- */

/*
 * A byte count: decimal or 0x hex, with an optional K, M or G suffix. It
 * starts with a digit: strtoull() would also take blanks and a sign (and
 * wrap "-1" to a huge count), and base 0 would read "010" as octal.
 */
static int parse_size(const char *s, uint64_t *out)
{
	unsigned long long v;
	const char *d = s;
	char *end;
	int shift = 0, base = 10;

	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		d = s + 2;
		base = 16;
	}
	if (!isxdigit((unsigned char)d[0]) || (base == 10 && !isdigit((unsigned char)d[0])))
		return -EINVAL;
	errno = 0;
	v = strtoull(d, &end, base);
	if (errno || end == d)
		return -EINVAL;
	switch (*end) {
	case 'k': case 'K': shift = 10; end++; break;
	case 'm': case 'M': shift = 20; end++; break;
	case 'g': case 'G': shift = 30; end++; break;
	}
	if (*end == 'i' && shift)
		end++;
	if (*end == 'B' && shift)
		end++;
	if (*end || (shift && v > (UINT64_MAX >> shift)))
		return -EINVAL;
	*out = (uint64_t)v << shift;
	return 0;
}

static int cmd_create(int argc, char **argv)
{
	unsigned int fl = SHMPOOL_EXCL | forced_backend();
	struct shmpool *p;
	uint64_t bytes;
	int ret;

	if (argc != 2)
		return usage_error("create: %s", argc > 2 ? "too many arguments" :
				   "NAME and SIZE needed");
	if (parse_size(argv[1], &bytes) || !bytes || bytes > SIZE_MAX)
		return usage_error("create: bad SIZE '%s'", argv[1]);
	if (bytes % (uint64_t)sysconf(_SC_PAGESIZE))
		return usage_error("create: SIZE '%s' is not a multiple of the page size", argv[1]);
	if (opt.contig)
		fl |= SHMPOOL_CONTIG;
	if (fl & SHMPOOL_BACKEND_DEVICE && !scope_path())
		return fail("create", argv[0], -ENODEV);
	ret = shmpool_create(argv[0], (size_t)bytes, opt.mode, fl, &p);
	if (ret)
		return fail("create", argv[0], ret);
	printf("created %s: %" PRIu64 " bytes, %s backend\n", argv[0], bytes,
	       shmpool_backend_name(shmpool_backend(p)));
	shmpool_close(p);
	return EX_OK;
}

static int cmd_rm(int argc, char **argv)
{
	unsigned int b = forced_backend();
	int ret, i, st = EX_OK;

	if (argc < 1)
		return usage_error("rm: %s", "NAME missing");
	if (b == SHMPOOL_BACKEND_DEVICE && !scope_path())
		return fail("rm", argv[0], -ENODEV);
	for (i = 0; i < argc; i++) {
		if (b) {
			ret = shmpool_unlink(argv[i], b);
		} else {
			ret = -ENOENT;
			if (scope_path())
				ret = shmpool_unlink(argv[i], SHMPOOL_BACKEND_DEVICE);
			if (ret == -ENOENT)
				ret = shmpool_unlink(argv[i], SHMPOOL_BACKEND_MEMFD);
		}
		if (ret)
			st = fail("rm", argv[i], ret);
	}
	return st;
}

/* ---- stat, watch -------------------------------------------------------------------- */

static const char *ring_type(uint32_t t)
{
	switch (t) {
	case SHMPOOL_RING_SPSC: return "spsc";
	case SHMPOOL_RING_MPMC: return "mpmc";
	case SHMPOOL_RING_VAR: return "var";
	default: return "?";
	}
}

static int pct(uint64_t a, uint64_t b)
{
	return b ? (int)(a * 100 / b) : 0;
}

/* Print what lives in @p (heap, objects); 0 or -ENODATA (no heap). */
static int print_stat(struct shmpool *p, const char *name)
{
	struct shmpool_heap_stats hs;
	struct shmpool_obj_entry e;
	struct shmpool_pool_info in;
	char a[16], b[16], c[16], shown[NAME_SHOWN_MAX];
	unsigned int pos = 0;
	bool first = true;
	int ret, i;

	ret = shmpool_info(p, &in);
	if (ret)
		return ret;
	ret = shmpool_heap_inspect(p, &hs);
	if (opt.json) {
		printf("{\"name\": ");
		json_str(name);
		printf(", \"backend\": \"%s\", \"bytes\": %" PRIu64,
		       shmpool_backend_name(in.backend), in.bytes);
		if (ret) {
			printf(", \"heap\": null}\n");
			return ret;
		}
		printf(",\n \"heap\": {\"heap_bytes\": %" PRIu64 ", \"used_bytes\": %" PRIu64
		       ", \"free_bytes\": %" PRIu64 ", \"largest_free\": %" PRIu64
		       ", \"alloc_blocks\": %" PRIu64 ", \"free_blocks\": %" PRIu64
		       ", \"slabs\": %u, \"objects\": %u, \"attachments\": %u, \"repairs\": %u,"
		       "\n  \"classes\": [",
		       hs.heap_bytes, hs.used_bytes, hs.free_bytes, hs.largest_free,
		       hs.alloc_blocks, hs.free_blocks, hs.slabs, hs.objects,
		       hs.nr_attach, hs.repairs);
		for (i = 0; i < SHMPOOL_HEAP_NR_CLASSES; i++) {
			const struct shmpool_heap_class *k = &hs.classes[i];

			if (!k->slabs)
				continue;
			printf("%s{\"size\": %u, \"slabs\": %u, \"objects\": %" PRIu64
			       ", \"used\": %" PRIu64 ", \"cached\": %" PRIu64 "}",
			       first ? "" : ", ", k->size, k->slabs, k->objs, k->used,
			       k->cached);
			first = false;
		}
		printf("]},\n \"objects\": [");
		first = true;
		while (!shmpool_obj_next(p, &pos, &e)) {
			struct shmpool_ring_info ri;
			struct shmpool_config_info ci;
			struct shmpool_cache_stats cs;

			printf("%s\n  {\"name\": ", first ? "" : ",");
			json_str(e.name);
			printf(", \"offset\": %" PRIu64 ", \"size\": %" PRIu64, e.off, e.size);
			first = false;
			if (!shmpool_ring_inspect(p, e.off, &ri))
				printf(", \"kind\": \"ring\", \"type\": \"%s\", \"esize\": %u"
				       ", \"count\": %u, \"used\": %u, \"produced\": %u"
				       ", \"consumed\": %u, \"shut\": %u, \"prod_sleeping\": %u"
				       ", \"cons_sleeping\": %u, \"prod_wakes\": %u, \"cons_wakes\": %u}",
				       ring_type(ri.type), ri.esize, ri.count, ri.used,
				       ri.produced, ri.consumed, ri.shut, ri.prod_sleeping,
				       ri.cons_sleeping, ri.prod_wakes, ri.cons_wakes);
			else if (!shmpool_config_inspect(p, e.off, &ci))
				printf(", \"kind\": \"config\", \"version\": %" PRIu64
				       ", \"len\": %" PRIu64 ", \"capacity\": %" PRIu64
				       ", \"writer\": %u, \"sleeping\": %u, \"wakes\": %u}",
				       ci.version, ci.len, ci.capacity, ci.writer,
				       ci.sleeping, ci.wakes);
			else if (!shmpool_cache_inspect(p, e.off, &cs))
				printf(", \"kind\": \"cache\", \"entries\": %" PRIu64
				       ", \"capacity\": %" PRIu64 ", \"hits\": %" PRIu64
				       ", \"misses\": %" PRIu64 ", \"inserts\": %" PRIu64
				       ", \"updates\": %" PRIu64 ", \"deletes\": %" PRIu64
				       ", \"evictions\": %" PRIu64 "}",
				       cs.entries, cs.capacity, cs.hits, cs.misses,
				       cs.inserts, cs.updates, cs.deletes, cs.evictions);
			else
				printf(", \"kind\": \"object\"}");
		}
		printf("%s]}\n", first ? "" : "\n ");
		return 0;
	}

	fmt_size(in.bytes, a, sizeof(a));
	printf("pool %s (%s backend, %s)\n", name, shmpool_backend_name(in.backend), a);
	if (ret == -ENODATA) {
		printf("  no heap: nothing laid out in this pool by shmpool_heap_open()\n");
		return ret;
	}
	if (ret) {
		printf("  heap: unreadable: %s\n", strerror(-ret));
		return ret;
	}
	fmt_size(hs.used_bytes, a, sizeof(a));
	fmt_size(hs.heap_bytes, b, sizeof(b));
	fmt_size(hs.largest_free, c, sizeof(c));
	printf("heap: %s of %s used (%d%%), largest free block %s\n", a, b,
	       pct(hs.used_bytes, hs.heap_bytes), c);
	printf("  %" PRIu64 " allocated blocks, %" PRIu64 " free blocks, %u slabs, "
	       "%u named objects, %u attachments, %u repairs\n",
	       hs.alloc_blocks, hs.free_blocks, hs.slabs, hs.objects, hs.nr_attach,
	       hs.repairs);
	for (i = 0; i < SHMPOOL_HEAP_NR_CLASSES; i++) {
		const struct shmpool_heap_class *k = &hs.classes[i];

		if (!k->slabs)
			continue;
		if (first)
			printf("  %-10s %6s %8s %8s %8s\n", "class", "slabs",
			       "objects", "used", "cached");
		first = false;
		printf("  %8u B %6u %8" PRIu64 " %8" PRIu64 " %8" PRIu64 "\n",
		       k->size, k->slabs, k->objs, k->used, k->cached);
	}
	first = true;
	while (!shmpool_obj_next(p, &pos, &e)) {
		struct shmpool_ring_info ri;
		struct shmpool_config_info ci;
		struct shmpool_cache_stats cs;

		if (first)
			printf("objects:\n");
		first = false;
		fmt_size(e.size, a, sizeof(a));
		printf("  %-20s %6s  ", shown_name(e.name, shown), a);
		if (!shmpool_ring_inspect(p, e.off, &ri)) {
			printf("ring %s, %u of %u %s (%d%%)", ring_type(ri.type),
			       ri.used, ri.count,
			       ri.type == SHMPOOL_RING_VAR ? "bytes" : "slots",
			       pct(ri.used, ri.count));
			printf(", %u in, %u out", ri.produced, ri.consumed);
			if (ri.shut)
				printf(", shut down%s%s",
				       ri.shut & SHMPOOL_RING_PROD ? " (producers)" : "",
				       ri.shut & SHMPOOL_RING_CONS ? " (consumers)" : "");
			printf("\n  %-20s %6s  waiters: producers %s, consumers %s; "
			       "wake-ups: producers %u, consumers %u\n", "", "",
			       ri.prod_sleeping ? "yes" : "no",
			       ri.cons_sleeping ? "yes" : "no", ri.prod_wakes,
			       ri.cons_wakes);
		} else if (!shmpool_config_inspect(p, e.off, &ci)) {
			printf("config, version %" PRIu64 ", %" PRIu64 " of %" PRIu64
			       " bytes, writer %s", ci.version, ci.len, ci.capacity,
			       ci.writer ? "busy" : "none");
			printf(", waiters %s, wake-ups %u\n", ci.sleeping ? "yes" : "no",
			       ci.wakes);
		} else if (!shmpool_cache_inspect(p, e.off, &cs)) {
			printf("cache, %" PRIu64 " of %" PRIu64 " entries, %" PRIu64
			       " hits, %" PRIu64 " misses (%d%% hits), %" PRIu64
			       " evictions\n", cs.entries, cs.capacity, cs.hits,
			       cs.misses, pct(cs.hits, cs.hits + cs.misses), cs.evictions);
		} else {
			printf("object at offset 0x%" PRIx64 "\n", e.off);
		}
	}
	if (first)
		printf("objects: none\n");
	return 0;
}

static int cmd_stat(int argc, char **argv)
{
	struct shmpool *p;
	int ret;

	if (argc != 1)
		return usage_error("stat: %s", argc ? "too many arguments" : "NAME missing");
	ret = open_pool(argv[0], false, &p);
	if (ret)
		return fail("stat", argv[0], ret);
	ret = print_stat(p, argv[0]);
	shmpool_close(p);
	/* a pool without a heap is a fine answer: stat said so */
	return ret && ret != -ENODATA ? fail("stat", argv[0], ret) : EX_OK;
}

static int cmd_watch(int argc, char **argv)
{
	struct timespec ts;
	struct shmpool *p;
	bool tty = isatty(STDOUT_FILENO);
	long n;
	int ret;

	if (argc != 1)
		return usage_error("watch: %s", argc ? "too many arguments" : "NAME missing");
	ret = open_pool(argv[0], false, &p);
	if (ret)
		return fail("watch", argv[0], ret);
	ts.tv_sec = (time_t)opt.interval;
	ts.tv_nsec = (long)((opt.interval - (double)ts.tv_sec) * 1e9);
	for (n = 0; !opt.count || n < opt.count; n++) {
		time_t now = time(NULL);
		char when[32];

		if (n)
			nanosleep(&ts, NULL);
		strftime(when, sizeof(when), "%H:%M:%S", localtime(&now));
		if (tty)
			printf("\033[H\033[2J");	/* home, clear: a fresh screen each time */
		else if (n)
			printf("\n");
		printf("shmpoolctl watch %s, every %gs, %s\n\n", argv[0], opt.interval, when);
		ret = print_stat(p, argv[0]);
		fflush(stdout);
		if (ret && ret != -ENODATA)
			break;
		ret = 0;
	}
	shmpool_close(p);
	return ret ? fail("watch", argv[0], ret) : EX_OK;
}

/* ---- check, dump ------------------------------------------------------------------------ */

/* Ring, config and cache sanity, read-only: the number of problems found. */
static int check_objects(struct shmpool *p)
{
	struct shmpool_obj_entry e;
	struct shmpool_ring_info ri;
	struct shmpool_config_info ci;
	struct shmpool_cache_stats cs;
	char shown[NAME_SHOWN_MAX];
	unsigned int pos = 0;
	int bad = 0, ret;

	while (!shmpool_obj_next(p, &pos, &e)) {
		shown_name(e.name, shown);
		ret = shmpool_ring_inspect(p, e.off, &ri);
		if (ret == -EPROTONOSUPPORT) {
			printf("ring %s: layout version %u, this library reads %u\n",
			       shown, ri.version, __SHMPOOL_RING_VERSION);
			bad++;
		} else if (!ret) {
			uint32_t d = ri.produced - ri.consumed;

			if (!ri.count || (ri.count & (ri.count - 1)) ||
			    (ri.type != SHMPOOL_RING_SPSC && ri.type != SHMPOOL_RING_MPMC &&
			     ri.type != SHMPOOL_RING_VAR) ||
			    e.size < (uint64_t)ri.count * (ri.type == SHMPOOL_RING_VAR ? 1 : ri.esize)) {
				printf("ring %s: bad description (type %u, count %u, esize %u, object %" PRIu64 " bytes)\n",
				       shown, ri.type, ri.count, ri.esize, e.size);
				bad++;
			} else if (ri.type != SHMPOOL_RING_MPMC && d > ri.count &&
				   (int32_t)d >= 0) {
				printf("ring %s: %u elements in a ring of %u\n", shown, d, ri.count);
				bad++;
			} else {
				printf("ring %s: ok\n", shown);
			}
			continue;
		}
		if (!shmpool_config_inspect(p, e.off, &ci)) {
			if (ci.len > ci.capacity) {
				printf("config %s: length %" PRIu64 " above capacity %" PRIu64 "\n",
				       shown, ci.len, ci.capacity);
				bad++;
			} else {
				printf("config %s: ok\n", shown);
			}
		} else if (shmpool_config_inspect(p, e.off, &ci) == -EUCLEAN) {
			printf("config %s: capacity does not fit the pool\n", shown);
			bad++;
		} else if (!shmpool_cache_inspect(p, e.off, &cs)) {
			printf("cache %s: ok\n", shown);
		}
	}
	return bad;
}

static int cmd_check(int argc, char **argv)
{
	struct shmpool_heap_stats hs;
	struct shmpool_heap *h;
	struct shmpool *p;
	char msg[256];
	int ret, bad;

	if (argc != 1)
		return usage_error("check: %s", argc ? "too many arguments" : "NAME missing");
	/* first look without writing: never lay a heap out in a pool that has none */
	ret = open_pool(argv[0], false, &p);
	if (ret)
		return fail("check", argv[0], ret);
	ret = shmpool_heap_inspect(p, &hs);
	shmpool_close(p);
	if (ret == -EUCLEAN) {
		printf("heap: damaged header, or not a heap of this layout version\n");
		return EX_DAMAGED;
	}
	if (ret)
		return fail("check", argv[0], ret);
	/* the checker takes the heap lock: read-write */
	ret = open_pool(argv[0], true, &p);
	if (ret)
		return fail("check (takes the heap lock, needs write access)", argv[0], ret);
	/*
	 * The owner may have reset the heap's state since we looked:
	 * EXISTING, so that check never lays a heap out (wiping the
	 * directory) nor waits for an "initialiser".
	 */
	ret = shmpool_heap_open(p, SHMPOOL_HEAP_NOCACHE | SHMPOOL_HEAP_EXISTING, &h);
	if (ret) {
		shmpool_close(p);
		if (ret == -EUCLEAN) {
			printf("heap: damaged (it could not be opened)\n");
			return EX_DAMAGED;
		}
		return fail("check", argv[0], ret);
	}
	ret = shmpool_heap_check(h, opt.quiescent ? SHMPOOL_CHECK_QUIESCENT : 0,
				 msg, sizeof(msg));
	shmpool_heap_close(h);
	if (ret == -EUCLEAN)
		printf("heap: DAMAGED: %s\n", msg);
	else if (ret)
		printf("heap: check failed: %s\n", strerror(-ret));
	else
		printf("heap: ok\n");
	bad = check_objects(p);
	shmpool_close(p);
	if (ret == -EUCLEAN || bad)
		return EX_DAMAGED;
	return ret ? fail("check", argv[0], ret) : EX_OK;
}

static int cmd_dump(int argc, char **argv)
{
	const unsigned char *q;
	uint64_t off, len, i, j;
	struct shmpool *p;
	int ret;

	if (argc != 3)
		return usage_error("dump: %s", argc > 3 ? "too many arguments" :
				   "NAME, OFF and LEN needed");
	if (parse_size(argv[1], &off))
		return usage_error("dump: bad OFF '%s'", argv[1]);
	if (parse_size(argv[2], &len))
		return usage_error("dump: bad LEN '%s'", argv[2]);
	ret = open_pool(argv[0], false, &p);
	if (ret)
		return fail("dump", argv[0], ret);
	q = shmpool_ptr(p, off, (size_t)len);
	if (!q || len > SIZE_MAX) {
		fprintf(stderr, "%s: dump %s: [%s, +%s) is outside the pool (%zu bytes)\n",
			prog, argv[0], argv[1], argv[2], shmpool_size(p));
		shmpool_close(p);
		return EX_USAGE;
	}
	for (i = 0; i < len; i += 16) {
		printf("%08" PRIx64 " ", off + i);
		for (j = 0; j < 16; j++) {
			if (j == 8)
				putchar(' ');
			if (i + j < len)
				printf(" %02x", q[i + j]);
			else
				printf("   ");
		}
		printf("  |");
		for (j = 0; j < 16 && i + j < len; j++)
			putchar(isprint(q[i + j]) ? q[i + j] : '.');
		printf("|\n");
	}
	shmpool_close(p);
	return EX_OK;
}

/* ---- help and the command table ----------------------------------------------------- */

struct command {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *args;
	const char *options;	/* which of the options below it takes */
	const char *summary;
	const char *help;
};

static const struct command commands[] = {
	{ "ls", cmd_ls, "", "j", "list the pools",
	  "List every pool visible to the caller: name, backend, size, extents\n"
	  "(\"1 contig\" for a physically contiguous pool), owner, mode, and how\n"
	  "many fds (ATTACH) and mappings (MAPS) use it, not counting shmpoolctl.\n"
	  "Device: the scope's directory, or for the default scope the module's\n"
	  "debugfs list (root only). memfd: the shmpool.* files of $SHMPOOL_SHM_DIR\n"
	  "or /dev/shm; their users are counted from /proc.\n" },
	{ "info", cmd_info, "NAME", "j", "describe one pool",
	  "Describe one pool: id, size, state, owner, users, extents (physical\n"
	  "addresses for CAP_SYS_ADMIN only) and what its backend lacks.\n" },
	{ "create", cmd_create, "NAME SIZE", "mc", "create a pool",
	  "Create a pool of SIZE bytes (a page multiple; K, M, G suffixes) that\n"
	  "does not exist yet.\n" },
	{ "rm", cmd_rm, "NAME...", "", "remove pool names",
	  "Remove the names; the memory lives on until its last user is gone.\n" },
	{ "stat", cmd_stat, "NAME", "j", "what lives in a pool (read-only)",
	  "Show what lives in the pool, read through a read-only attachment\n"
	  "without taking any lock: heap usage per size class, named objects,\n"
	  "each ring's fill level, waiters and wake-ups, config versions, cache\n"
	  "hits, misses and evictions. A snapshot: exact only while nobody\n"
	  "changes the pool.\n" },
	{ "check", cmd_check, "NAME", "q", "check the heap, rings and configs",
	  "Run the heap checker and check the rings and configs. Exit 0 if all\n"
	  "is consistent, 7 if not. Takes the heap lock: needs write access.\n" },
	{ "dump", cmd_dump, "NAME OFF LEN", "", "hex dump part of a pool",
	  "Hex dump LEN bytes at offset OFF (decimal or 0x hex, K/M/G suffixes).\n" },
	{ "watch", cmd_watch, "NAME", "ijn", "stat, refreshed like top",
	  "Show stat again every --interval seconds (default 1), on a cleared\n"
	  "screen when the output is a terminal, until interrupted or --count\n"
	  "frames were shown.\n" },
};

#define NR_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static void command_help(const struct command *c)
{
	const char *o;

	printf("Usage: %s [--backend device|memfd] %s [OPTIONS] %s\n\n%s", prog,
	       c->name, c->args, c->help);
	if (c->options[0])
		printf("\nOptions:\n");
	for (o = c->options; *o; o++) {
		switch (*o) {
		case 'j': printf("  --json           machine-readable output\n"); break;
		case 'm': printf("  --mode OCTAL     permission bits (default 0600, umask applies)\n"); break;
		case 'c': printf("  --contig         one physically contiguous extent (device, up to 4 MiB)\n"); break;
		case 'q': printf("  --quiescent      also walk the small-object free lists (only while\n"
				 "                   nobody allocates)\n"); break;
		case 'i': printf("  --interval SECS  time between frames (default 1)\n"); break;
		case 'n': printf("  --count N        stop after N frames (default: never)\n"); break;
		}
	}
}

static void help(void)
{
	size_t i;

	printf("Usage: %s [--backend device|memfd] COMMAND [OPTIONS] [ARGS]\n"
	       "       %s COMMAND --help | --help | --version\n\n"
	       "Look at and manage shmpool pools.\n\nCommands:\n", prog, prog);
	for (i = 0; i < NR_COMMANDS; i++)
		printf("  %-6s %-13s %s\n", commands[i].name, commands[i].args,
		       commands[i].summary);
	printf("\nWithout --backend, $SHMPOOL_BACKEND decides; with neither, names are\n"
	       "looked up on the device first (if the module is loaded), then on memfd,\n"
	       "and ls lists both. $SHMPOOL_SCOPE picks the device scope.\n\n"
	       "Exit status: 0 success, 1 other error, 2 usage, 3 no such pool,\n"
	       "4 permission denied, 5 no shmpool module, 6 pool exists, 7 check found\n"
	       "damage (stat, watch: the heap is unreadable), 8 no heap in the pool.\n"
	       "See shmpoolctl(8).\n");
}

/* The value of option @name at argv[*i] ("--name=v" or "--name v"), or NULL. */
static const char *opt_value(char **argv, int argc, int *i, const char *name)
{
	size_t n = strlen(name);
	const char *a = argv[*i];

	if (strncmp(a, name, n))
		return NULL;
	if (a[n] == '=')
		return a + n + 1;
	if (a[n] || *i + 1 >= argc)
		return NULL;
	return argv[++*i];
}

int main(int argc, char **argv)
{
	const struct command *cmd = NULL;
	char **pos = calloc((size_t)argc + 1, sizeof(*pos));
	const char *v;
	bool want_help = false;
	int npos = 0, i;
	size_t k;

	if (!pos)
		return EX_FAIL;
	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		char *end;

		if (!strcmp(a, "--")) {
			while (++i < argc)
				pos[npos++] = argv[i];
			break;
		}
		if (a[0] != '-' || !a[1]) {
			pos[npos++] = argv[i];
			continue;
		}
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			want_help = true;
		} else if (!strcmp(a, "--version")) {
			printf("shmpoolctl %s\n", SHMPOOL_VERSION);
			return EX_OK;
		} else if (!strcmp(a, "--json")) {
			opt.json = true;
		} else if (!strcmp(a, "--contig")) {
			opt.contig = true;
		} else if (!strcmp(a, "--quiescent")) {
			opt.quiescent = true;
		} else if ((v = opt_value(argv, argc, &i, "--backend"))) {
			if (!strcmp(v, "device"))
				opt.backend = SHMPOOL_BACKEND_DEVICE;
			else if (!strcmp(v, "memfd"))
				opt.backend = SHMPOOL_BACKEND_MEMFD;
			else
				return usage_error("--backend: '%s' is neither device nor memfd", v);
		} else if ((v = opt_value(argv, argc, &i, "--mode"))) {
			unsigned long m;

			errno = 0;
			m = strtoul(v, &end, 8);
			if (errno || end == v || *end || m > 0777)
				return usage_error("--mode: '%s' is not an octal mode up to 0777", v);
			opt.mode = (unsigned int)m;
			opt.mode_set = true;
		} else if ((v = opt_value(argv, argc, &i, "--interval"))) {
			opt.interval = strtod(v, &end);
			if (end == v || *end || !(opt.interval >= 0.01 && opt.interval <= 86400))
				return usage_error("--interval: '%s' is not 0.01 to 86400 seconds", v);
			opt.interval_set = true;
		} else if ((v = opt_value(argv, argc, &i, "--count"))) {
			errno = 0;
			opt.count = strtol(v, &end, 10);
			if (errno || end == v || *end || opt.count < 1)
				return usage_error("--count: '%s' is not a positive number", v);
		} else {
			return usage_error("unknown option '%s'", a);
		}
	}
	if (npos && !strcmp(pos[0], "help")) {
		want_help = true;
		memmove(pos, pos + 1, (size_t)npos * sizeof(*pos));
		npos--;
	}
	if (!npos) {
		if (want_help) {
			help();
			return EX_OK;
		}
		return usage_error("%s", "no command given");
	}
	for (k = 0; k < NR_COMMANDS; k++)
		if (!strcmp(pos[0], commands[k].name))
			cmd = &commands[k];
	if (!cmd)
		return usage_error("unknown command '%s'", pos[0]);
	if (want_help) {
		command_help(cmd);
		return EX_OK;
	}
	/* options a command does not take are usage errors, not silently ignored */
	if ((opt.json && !strchr(cmd->options, 'j')) ||
	    (opt.contig && !strchr(cmd->options, 'c')) ||
	    (opt.quiescent && !strchr(cmd->options, 'q')) ||
	    (opt.mode_set && !strchr(cmd->options, 'm')) ||
	    (opt.interval_set && !strchr(cmd->options, 'i')) ||
	    (opt.count && !strchr(cmd->options, 'n')))
		return usage_error("%s: an option given does not apply (see --help)", cmd->name);
	return cmd->fn(npos - 1, pos + 1);
}
