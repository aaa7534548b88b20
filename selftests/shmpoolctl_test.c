// SPDX-License-Identifier: GPL-2.0
/*
 * shmpoolctl_test: every shmpoolctl command, its output and its exit status.
 *
 * Runs the binary ($SHMPOOLCTL, else ../tools/shmpoolctl beside this
 * program's directory, else /bin/shmpoolctl as in the VM image) on the
 * backend the library picks: memfd on the host (SHMPOOL_BACKEND=memfd),
 * the device in the VM lanes. Pools are made with the library, named after
 * the test's pid, and removed at the end of each test.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/sysmacros.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* the 6.1 harness leaves parameters unused and defines unprototyped functions */
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#include "kselftest_harness.h"
#include "inspect_hostile.h"

#include <shmpool.h>
#include <shmpool_alloc.h>
#include <shmpool_cache.h>
#include <shmpool_ring.h>
#include <shmpool_state.h>

#define OUT_MAX 65536

static char ctl[PATH_MAX];

/* The binary under test; exits the test program if there is none. */
static const char *ctl_path(void)
{
	char self[PATH_MAX];
	ssize_t n;

	if (ctl[0])
		return ctl;
	if (getenv("SHMPOOLCTL")) {
		snprintf(ctl, sizeof(ctl), "%s", getenv("SHMPOOLCTL"));
		return ctl;
	}
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		self[n] = '\0';
		snprintf(ctl, sizeof(ctl), "%s/../tools/shmpoolctl", dirname(self));
		if (!access(ctl, X_OK))
			return ctl;
	}
	snprintf(ctl, sizeof(ctl), "/bin/shmpoolctl");
	return ctl;
}

struct run {
	int status;		/* exit status, or 128 + signal */
	char out[OUT_MAX];	/* stdout */
	char err[OUT_MAX];	/* stderr */
};

static void slurp(int fd, char *buf)
{
	size_t n = 0;
	ssize_t r;

	while (n < OUT_MAX - 1 && (r = read(fd, buf + n, OUT_MAX - 1 - n)) > 0)
		n += (size_t)r;
	buf[n] = '\0';
}

/*
 * Run shmpoolctl with the NULL-terminated arguments, as user @uid if it is
 * not -1; output in @r. The output files are temporary files, read after
 * the child exits, so no pipe can fill up.
 */
static void runv(struct run *r, int uid, const char *arg, ...)
{
	const char *argv[32];
	char ofile[] = "/tmp/ctl-out-XXXXXX", efile[] = "/tmp/ctl-err-XXXXXX";
	int ofd = mkstemp(ofile), efd = mkstemp(efile), n = 0, st;
	va_list ap;
	pid_t pid;

	argv[n++] = ctl_path();
	va_start(ap, arg);
	for (; arg && n < 31; arg = va_arg(ap, const char *))
		argv[n++] = arg;
	va_end(ap);
	argv[n] = NULL;
	unlink(ofile);
	unlink(efile);
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		dup2(ofd, 1);
		dup2(efd, 2);
		/* uid -2 - N: no change of user, a watchdog of N seconds */
		if (uid <= -2)
			alarm((unsigned int)(-2 - uid));
		else if (uid != -1 && (setgid((gid_t)uid) || setuid((uid_t)uid)))
			_exit(99);
		execv(argv[0], (char **)argv);
		_exit(98);
	}
	waitpid(pid, &st, 0);
	r->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	lseek(ofd, 0, SEEK_SET);
	lseek(efd, 0, SEEK_SET);
	slurp(ofd, r->out);
	slurp(efd, r->err);
	close(ofd);
	close(efd);
}

#define run(r, ...) runv(r, -1, __VA_ARGS__, NULL)
#define run_as(r, uid, ...) runv(r, uid, __VA_ARGS__, NULL)

/* exit statuses documented in shmpoolctl(8) */
enum { OK = 0, FAIL = 1, USAGE = 2, NOENT = 3, ACCES = 4, NOMOD = 5,
       EXIST = 6, DAMAGED = 7, NOHEAP = 8 };

FIXTURE(ctl) {
	char name[64];
	struct run r;
	struct shmpool *p;
	struct shmpool_heap *h;
};

FIXTURE_SETUP(ctl)
{
	ASSERT_EQ(0, access(ctl_path(), X_OK)) {
		TH_LOG("no shmpoolctl at %s (build it: make tools)", ctl_path());
	}
	umask(022);	/* the modes asked for are the modes seen */
	snprintf(self->name, sizeof(self->name), "ctltest-%d", getpid());
	shmpool_unlink(self->name, 0);
	self->p = NULL;
	self->h = NULL;
}

FIXTURE_TEARDOWN(ctl)
{
	shmpool_heap_close(self->h);
	shmpool_close(self->p);
	shmpool_unlink(self->name, 0);
}

/* A pool with a heap, a ring holding 3 elements, a config at version 2, a cache with a hit and a miss. */
static void populate(struct __test_metadata *_metadata, FIXTURE_DATA(ctl) *self)
{
	struct shmpool_config *c;
	struct shmpool_cache *k;
	struct shmpool_ring *r;
	uint64_t v = 7, i;
	char buf[8];

	ASSERT_EQ(0, shmpool_create(self->name, 1 << 20, 0600, SHMPOOL_EXCL, &self->p));
	ASSERT_EQ(0, shmpool_heap_open(self->p, 0, &self->h));
	ASSERT_EQ(1, shmpool_ring_create(self->h, "jobs", SHMPOOL_RING_MPMC, 16, 8, 0, &r));
	for (i = 0; i < 3; i++)
		ASSERT_EQ(1U, shmpool_ring_enqueue_bulk(r, &v, 1));
	shmpool_ring_close(r);
	ASSERT_EQ(0, shmpool_config_open(self->h, "settings", 64, SHMPOOL_CONFIG_CREATE, &c));
	ASSERT_EQ(0, shmpool_config_publish(c, "a=1", 3, NULL));
	ASSERT_EQ(0, shmpool_config_publish(c, "a=22", 4, NULL));
	shmpool_config_close(c);
	ASSERT_EQ(0, shmpool_cache_open(self->h, "squares", 32, SHMPOOL_CACHE_CREATE, &k));
	ASSERT_EQ(0, shmpool_cache_put(k, "k", 1, "v", 1, 0));
	ASSERT_EQ(1, shmpool_cache_get(k, "k", 1, buf, sizeof(buf)));
	ASSERT_EQ(-ENOENT, shmpool_cache_get(k, "x", 1, buf, sizeof(buf)));
	shmpool_cache_close(k);
}

TEST_F(ctl, version_and_help)
{
	static const char *const cmds[] = {
		"ls", "info", "create", "rm", "stat", "check", "dump", "watch"
	};
	unsigned int i;

	run(&self->r, "--version");
	ASSERT_EQ(OK, self->r.status);
	ASSERT_EQ(0, strncmp(self->r.out, "shmpoolctl ", 11));
	run(&self->r, "--help");
	ASSERT_EQ(OK, self->r.status);
	ASSERT_NE(NULL, strstr(self->r.out, "Exit status"));
	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		run(&self->r, cmds[i], "--help");
		ASSERT_EQ(OK, self->r.status);
		ASSERT_NE(NULL, strstr(self->r.out, cmds[i])) TH_LOG("%s", cmds[i]);
		ASSERT_EQ(0, strncmp(self->r.out, "Usage:", 6));
	}
}

TEST_F(ctl, usage_errors)
{
	run(&self->r, "frobnicate");
	ASSERT_EQ(USAGE, self->r.status);
	ASSERT_NE(NULL, strstr(self->r.err, "unknown command"));
	run(&self->r, "ls", "--bogus");
	ASSERT_EQ(USAGE, self->r.status);
	run(&self->r, "--backend", "floppy", "ls");
	ASSERT_EQ(USAGE, self->r.status);
	run(&self->r, "info");
	ASSERT_EQ(USAGE, self->r.status);
	run(&self->r, "rm", "--json", "x");
	ASSERT_EQ(USAGE, self->r.status);
	run(&self->r, "ls", "--mode", "0644");
	ASSERT_EQ(USAGE, self->r.status);
	run(&self->r, "stat", "--interval", "2", "x");
	ASSERT_EQ(USAGE, self->r.status);
	runv(&self->r, -1, NULL);
	ASSERT_EQ(USAGE, self->r.status);
}

TEST_F(ctl, create_ls_info_rm)
{
	char want[128];
	const char *b;

	run(&self->r, "create", self->name, "64K", "--mode", "0640");
	ASSERT_EQ(OK, self->r.status) TH_LOG("%s", self->r.err);
	run(&self->r, "info", self->name);
	ASSERT_EQ(OK, self->r.status);
	ASSERT_NE(NULL, strstr(self->r.out, "size:        65536 bytes"));
	ASSERT_NE(NULL, strstr(self->r.out, "mode 0640"));
	/* on the backend the library picks: the device in the VMs, memfd on the host */
	ASSERT_EQ(0, shmpool_open(self->name, SHMPOOL_RDONLY, &self->p));
	b = shmpool_backend_name(shmpool_backend(self->p));
	ASSERT_NE(NULL, strstr(self->r.out, b));
	shmpool_close(self->p);
	self->p = NULL;
	if (!strcmp(b, "device") && geteuid() != 0 && !getenv("SHMPOOL_SCOPE"))
		goto rm;	/* only root lists the default scope (ls_default_scope_needs_root) */
	run(&self->r, "ls");
	ASSERT_EQ(OK, self->r.status) TH_LOG("%s", self->r.err);
	ASSERT_NE(NULL, strstr(self->r.out, self->name)) TH_LOG("%s", self->r.out);
	ASSERT_NE(NULL, strstr(self->r.out, "00640"));
	snprintf(want, sizeof(want), "{\"name\": \"%s\", \"backend\": \"%s\"", self->name, b);
	run(&self->r, "ls", "--json");
	ASSERT_EQ(OK, self->r.status);
	ASSERT_NE(NULL, strstr(self->r.out, want)) TH_LOG("%s", self->r.out);
	ASSERT_NE(NULL, strstr(strstr(self->r.out, want), "\"bytes\": 65536, "));
	/* nobody but shmpoolctl itself has it open: it does not count itself */
	ASSERT_NE(NULL, strstr(strstr(self->r.out, want), "\"attachments\": 0, \"mappings\": 0"));
	/* a user of ours shows in the counts */
	ASSERT_EQ(0, shmpool_open(self->name, 0, &self->p));
	run(&self->r, "ls", "--json");
	ASSERT_NE(NULL, strstr(strstr(self->r.out, want), "\"attachments\": 1, \"mappings\": 1"))
		TH_LOG("%s", self->r.out);
rm:
	run(&self->r, "rm", self->name);
	ASSERT_EQ(OK, self->r.status);
	run(&self->r, "info", self->name);
	ASSERT_EQ(NOENT, self->r.status);
}

TEST_F(ctl, create_errors)
{
	run(&self->r, "create", self->name, "64K");
	ASSERT_EQ(OK, self->r.status);
	run(&self->r, "create", self->name, "64K");
	ASSERT_EQ(EXIST, self->r.status);
	run(&self->r, "create", "other", "12345");
	ASSERT_EQ(USAGE, self->r.status);
	run(&self->r, "create", "other", "lots");
	ASSERT_EQ(USAGE, self->r.status);
	run(&self->r, "create", "bad/name", "64K");
	ASSERT_EQ(FAIL, self->r.status);
	run(&self->r, "create", "other", "64K", "--mode", "999");
	ASSERT_EQ(USAGE, self->r.status);
}

/* SIZE is decimal or 0x hex (shmpoolctl(8)): a leading zero is no octal. */
TEST_F(ctl, create_size_with_leading_zero_is_decimal)
{
	char want[128];

	run(&self->r, "create", self->name, "0100K");
	ASSERT_EQ(OK, self->r.status) TH_LOG("%s", self->r.err);
	snprintf(want, sizeof(want), "created %s: 102400 bytes", self->name);
	EXPECT_NE(NULL, strstr(self->r.out, want)) TH_LOG("%s", self->r.out);
}

/* A negative SIZE (strtoull() would wrap it past a blank) is a usage error; no pool. */
TEST_F(ctl, create_negative_size_is_usage)
{
	run(&self->r, "create", self->name, " -4096");
	EXPECT_EQ(USAGE, self->r.status) TH_LOG("%s", self->r.err);
	EXPECT_NE(NULL, strstr(self->r.err, "bad SIZE")) TH_LOG("%s", self->r.err);
	EXPECT_EQ(-ENOENT, shmpool_open(self->name, 0, &self->p));
}

TEST_F(ctl, missing_pool)
{
	static const char *const cmds[] = { "info", "stat", "check", "watch", "rm" };
	unsigned int i;

	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		run(&self->r, cmds[i], self->name);
		ASSERT_EQ(NOENT, self->r.status) TH_LOG("%s", cmds[i]);
		ASSERT_NE(NULL, strstr(self->r.err, "No such file")) TH_LOG("%s", cmds[i]);
	}
	run(&self->r, "dump", self->name, "0", "16");
	ASSERT_EQ(NOENT, self->r.status);
}

TEST_F(ctl, no_module)
{
	setenv("SHMPOOL_SCOPE", "/nonexistent/shmpool", 1);
	run(&self->r, "--backend", "device", "ls");
	ASSERT_EQ(NOMOD, self->r.status);
	ASSERT_NE(NULL, strstr(self->r.err, "modprobe shmpool"));
	run(&self->r, "--backend", "device", "info", self->name);
	ASSERT_EQ(NOMOD, self->r.status);
	run(&self->r, "--backend", "device", "create", self->name, "64K");
	ASSERT_EQ(NOMOD, self->r.status);
	unsetenv("SHMPOOL_SCOPE");
}

/* The default scope has no directory: only root reads the module's list. */
TEST_F(ctl, ls_default_scope_needs_root)
{
	if (access("/dev/shmpool", F_OK) || getenv("SHMPOOL_SCOPE"))
		SKIP(return, "no module, or a scope other than the default");
	if (geteuid() != 0)
		SKIP(return, "needs root to run shmpoolctl as another user");
	run_as(&self->r, 65534, "--backend", "device", "ls");
	ASSERT_EQ(ACCES, self->r.status) TH_LOG("%s", self->r.err);
	ASSERT_NE(NULL, strstr(self->r.err, "/sys/kernel/debug/shmpool/pools"));
}

/* A mounted scope is a directory: anyone lists it. */
TEST_F(ctl, ls_mounted_scope)
{
	char dir[] = "/tmp/ctl-scope-XXXXXX", want[128];

	if (access("/dev/shmpool", F_OK) || geteuid() != 0)
		SKIP(return, "needs the module and root to mount a scope");
	ASSERT_NE(NULL, mkdtemp(dir));
	ASSERT_EQ(0, mount("shmpool", dir, "shmpool", 0, NULL));
	setenv("SHMPOOL_SCOPE", dir, 1);
	run(&self->r, "create", self->name, "64K");
	EXPECT_EQ(OK, self->r.status);
	run_as(&self->r, 65534, "ls", "--json");
	EXPECT_EQ(OK, self->r.status) TH_LOG("%s", self->r.err);
	snprintf(want, sizeof(want), "{\"name\": \"%s\", \"backend\": \"device\"", self->name);
	EXPECT_NE(NULL, strstr(self->r.out, want)) TH_LOG("%s", self->r.out);
	/* nobody cannot open it (0600), but the directory still tells its size */
	EXPECT_NE(NULL, strstr(self->r.out, "\"bytes\": 65536,"));
	run(&self->r, "rm", self->name);
	EXPECT_EQ(OK, self->r.status);
	unsetenv("SHMPOOL_SCOPE");
	ASSERT_EQ(0, umount(dir));
	rmdir(dir);
}

TEST_F(ctl, permission_denied)
{
	if (geteuid() != 0)
		SKIP(return, "needs root to run shmpoolctl as another user");
	run(&self->r, "create", self->name, "64K", "--mode", "0600");
	ASSERT_EQ(OK, self->r.status);
	run_as(&self->r, 65534, "stat", self->name);
	ASSERT_EQ(ACCES, self->r.status) TH_LOG("%s", self->r.err);
	run_as(&self->r, 65534, "rm", self->name);
	ASSERT_EQ(ACCES, self->r.status) TH_LOG("%s", self->r.err);
	run(&self->r, "info", self->name);
	ASSERT_EQ(OK, self->r.status);
}

TEST_F(ctl, stat_shows_contents)
{
	const char *o;

	populate(_metadata, self);
	run(&self->r, "stat", self->name);
	ASSERT_EQ(OK, self->r.status) TH_LOG("%s", self->r.err);
	o = self->r.out;
	ASSERT_NE(NULL, strstr(o, "heap: ")) TH_LOG("%s", o);
	ASSERT_NE(NULL, strstr(o, "ring mpmc, 3 of 16 slots")) TH_LOG("%s", o);
	ASSERT_NE(NULL, strstr(o, "config, version 2, 4 of 64 bytes")) TH_LOG("%s", o);
	ASSERT_NE(NULL, strstr(o, "cache, 1 of 32 entries, 1 hits, 1 misses")) TH_LOG("%s", o);
	run(&self->r, "stat", "--json", self->name);
	ASSERT_EQ(OK, self->r.status);
	o = self->r.out;
	ASSERT_NE(NULL, strstr(o, "\"kind\": \"ring\", \"type\": \"mpmc\", \"esize\": 8, \"count\": 16, \"used\": 3"))
		TH_LOG("%s", o);
	ASSERT_NE(NULL, strstr(o, "\"objects\": 3,")) TH_LOG("%s", o);
	ASSERT_NE(NULL, strstr(o, "\"kind\": \"config\", \"version\": 2, \"len\": 4"));
	ASSERT_NE(NULL, strstr(o, "\"evictions\": 0}"));
}

/*
 * Object names are any bytes but NUL, and a peer can write any name into
 * the directory: stat and check show a control byte escaped (\xNN), never
 * raw, so a name cannot send escape sequences to the terminal of whoever
 * looks at the pool.
 */
TEST_F(ctl, object_names_with_control_bytes_are_escaped)
{
	struct shmpool_obj obj;
	static const char *const cmds[] = { "stat", "check" };
	unsigned int i;

	ASSERT_EQ(0, shmpool_create(self->name, 1 << 20, 0600, SHMPOOL_EXCL, &self->p));
	ASSERT_EQ(0, shmpool_heap_open(self->p, 0, &self->h));
	ASSERT_EQ(1, shmpool_obj_create(self->h, "a\033]0;owned\007\033[2Jb", 64, 0, &obj));
	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		run(&self->r, cmds[i], self->name);
		EXPECT_EQ(OK, self->r.status) TH_LOG("%s: %s", cmds[i], self->r.err);
		EXPECT_EQ(NULL, strchr(self->r.out, '\033')) TH_LOG("%s printed a raw ESC", cmds[i]);
		EXPECT_EQ(NULL, strchr(self->r.out, '\007')) TH_LOG("%s printed a raw BEL", cmds[i]);
	}
	run(&self->r, "stat", self->name);
	EXPECT_NE(NULL, strstr(self->r.out, "a\\x1b]0;owned\\x07\\x1b[2Jb"))
		TH_LOG("the name is not shown escaped");
}

/* Anyone can make a file shmpool.NAME in /dev/shm: ls shows its control bytes escaped. */
TEST_F(ctl, ls_names_with_control_bytes_are_escaped)
{
	const char *dir = getenv("SHMPOOL_SHM_DIR") ? getenv("SHMPOOL_SHM_DIR") : "/dev/shm";
	char path[PATH_MAX];
	int fd;

	snprintf(path, sizeof(path), "%s/shmpool.%s\033[7m", dir, self->name);
	fd = open(path, O_CREAT | O_EXCL | O_WRONLY, 0600);
	ASSERT_LE(0, fd);
	close(fd);
	run(&self->r, "--backend", "memfd", "ls");
	unlink(path);
	EXPECT_EQ(OK, self->r.status) TH_LOG("%s", self->r.err);
	EXPECT_EQ(NULL, strchr(self->r.out, '\033')) TH_LOG("ls printed a raw ESC");
	EXPECT_NE(NULL, strstr(self->r.out, "\\x1b[7m")) TH_LOG("the name is not shown escaped");
}

TEST_F(ctl, stat_without_heap)
{
	ASSERT_EQ(0, shmpool_create(self->name, 1 << 16, 0600, SHMPOOL_EXCL, &self->p));
	run(&self->r, "stat", self->name);
	ASSERT_EQ(OK, self->r.status);
	ASSERT_NE(NULL, strstr(self->r.out, "no heap"));
	/* stat wrote nothing: still no heap */
	ASSERT_EQ(0U, *(uint32_t *)shmpool_base(self->p));
	run(&self->r, "check", self->name);
	ASSERT_EQ(NOHEAP, self->r.status);
	ASSERT_EQ(0U, *(uint32_t *)shmpool_base(self->p));
}

TEST_F(ctl, check_clean_and_damaged)
{
	struct shmpool_obj obj;

	populate(_metadata, self);
	run(&self->r, "check", self->name);
	ASSERT_EQ(OK, self->r.status) TH_LOG("%s%s", self->r.out, self->r.err);
	ASSERT_NE(NULL, strstr(self->r.out, "heap: ok"));
	ASSERT_NE(NULL, strstr(self->r.out, "ring jobs: ok"));
	run(&self->r, "check", "--quiescent", self->name);
	ASSERT_EQ(OK, self->r.status);
	/* break the block header in front of a named object */
	ASSERT_EQ(0, shmpool_obj_find(self->h, "settings", &obj));
	memset((char *)shmpool_base(self->p) + obj.off - 16, 0x5a, 16);
	run(&self->r, "check", self->name);
	ASSERT_EQ(DAMAGED, self->r.status) TH_LOG("%s%s", self->r.out, self->r.err);
	ASSERT_NE(NULL, strstr(self->r.out, "DAMAGED"));
}

/*
 * A heap header that is not this version's (here: its size field) is
 * damaged or another version's: check says both, and changes nothing.
 */
TEST_F(ctl, check_damaged_heap_header)
{
	uint32_t *hdr_bytes;

	populate(_metadata, self);
	hdr_bytes = (uint32_t *)shmpool_base(self->p) + 3;	/* after state, magic, version */
	*hdr_bytes ^= 0x5a5a;
	run(&self->r, "check", self->name);
	ASSERT_EQ(DAMAGED, self->r.status) TH_LOG("%s%s", self->r.out, self->r.err);
	ASSERT_NE(NULL, strstr(self->r.out, "heap: damaged header, or not a heap of this layout version"))
		TH_LOG("%s", self->r.out);
	*hdr_bytes ^= 0x5a5a;
	run(&self->r, "check", self->name);
	ASSERT_EQ(OK, self->r.status) TH_LOG("%s%s", self->r.out, self->r.err);
}

TEST_F(ctl, dump_bytes)
{
	ASSERT_EQ(0, shmpool_create(self->name, 1 << 16, 0600, SHMPOOL_EXCL, &self->p));
	memcpy((char *)shmpool_base(self->p) + 0x100, "hello, pool!", 12);
	run(&self->r, "dump", self->name, "0x100", "12");
	ASSERT_EQ(OK, self->r.status);
	ASSERT_NE(NULL, strstr(self->r.out, "00000100  68 65 6c 6c 6f 2c 20 70  6f 6f 6c 21"))
		TH_LOG("%s", self->r.out);
	ASSERT_NE(NULL, strstr(self->r.out, "|hello, pool!|"));
	run(&self->r, "dump", self->name, "65530", "7");
	ASSERT_EQ(USAGE, self->r.status);
	ASSERT_NE(NULL, strstr(self->r.err, "outside the pool"));
	run(&self->r, "dump", self->name, "0", "x");
	ASSERT_EQ(USAGE, self->r.status);
}

/* OFF is decimal or 0x hex too: "0256" is byte 256, not octal 0256 (174). */
TEST_F(ctl, dump_offset_with_leading_zero_is_decimal)
{
	ASSERT_EQ(0, shmpool_create(self->name, 1 << 16, 0600, SHMPOOL_EXCL, &self->p));
	memcpy((char *)shmpool_base(self->p) + 256, "abcd", 4);
	run(&self->r, "dump", self->name, "0256", "4");
	ASSERT_EQ(OK, self->r.status) TH_LOG("%s", self->r.err);
	EXPECT_NE(NULL, strstr(self->r.out, "00000100  61 62 63 64")) TH_LOG("%s", self->r.out);
}

TEST_F(ctl, watch_frames)
{
	const char *o;
	int n = 0;

	populate(_metadata, self);
	run(&self->r, "watch", "--count", "3", "--interval", "0.05", self->name);
	ASSERT_EQ(OK, self->r.status) TH_LOG("%s", self->r.err);
	for (o = self->r.out; (o = strstr(o, "shmpoolctl watch ")); o++)
		n++;
	ASSERT_EQ(3, n);
	ASSERT_NE(NULL, strstr(self->r.out, "ring mpmc, 3 of 16 slots"));
	run(&self->r, "watch", "--count", "0", self->name);
	ASSERT_EQ(USAGE, self->r.status);
	run(&self->r, "watch", "--interval", "0", self->name);
	ASSERT_EQ(USAGE, self->r.status);
}

/* Non-zero if @out holds a byte that is neither printable ASCII nor a newline. */
static int raw_byte(const char *out)
{
	const unsigned char *o;

	for (o = (const unsigned char *)out; *o; o++)
		if ((*o < 0x20 && *o != '\n') || *o >= 0x7f)
			return *o;
	return 0;
}

/*
 * --json output is read by programs and shown on terminals: a name's bytes
 * outside printable ASCII (DEL, C1 controls such as CSI 0x9b, bytes that
 * are no UTF-8) are \u escapes too, never raw, so that one peer's object
 * or file name cannot make the whole output unparseable.
 */
TEST_F(ctl, json_names_are_ascii)
{
	const char *dir = getenv("SHMPOOL_SHM_DIR") ? getenv("SHMPOOL_SHM_DIR") : "/dev/shm";
	char path[PATH_MAX];
	struct shmpool_obj obj;
	int fd;

	ASSERT_EQ(0, shmpool_create(self->name, 1 << 20, 0600, SHMPOOL_EXCL, &self->p));
	ASSERT_EQ(0, shmpool_heap_open(self->p, 0, &self->h));
	ASSERT_EQ(1, shmpool_obj_create(self->h, "a\x7f\x9b" "2J\xff\xc3z", 64, 0, &obj));
	run(&self->r, "stat", "--json", self->name);
	EXPECT_EQ(OK, self->r.status) TH_LOG("%s", self->r.err);
	EXPECT_EQ(0, raw_byte(self->r.out)) TH_LOG("stat --json printed a raw byte 0x%02x",
						    raw_byte(self->r.out));
	EXPECT_NE(NULL, strstr(self->r.out, "\"a\\u007f\\u009b2J\\u00ff\\u00c3z\""))
		TH_LOG("%s", self->r.out);
	snprintf(path, sizeof(path), "%s/shmpool.%s\x9b" "7m", dir, self->name);
	fd = open(path, O_CREAT | O_EXCL | O_WRONLY, 0600);
	ASSERT_LE(0, fd);
	close(fd);
	run(&self->r, "--backend", "memfd", "ls", "--json");
	unlink(path);
	EXPECT_EQ(OK, self->r.status) TH_LOG("%s", self->r.err);
	EXPECT_EQ(0, raw_byte(self->r.out)) TH_LOG("ls --json printed a raw byte 0x%02x",
						    raw_byte(self->r.out));
}

/*
 * Where the file name of a mapping of @path starts in its /proc/self/maps
 * line (the kernel pads the fields before it to one width), or -1.
 */
static int maps_path_column(const char *path)
{
	char line[PATH_MAX + 256], *at;
	FILE *f = fopen("/proc/self/maps", "re");
	int col = -1;

	while (f && col < 0 && fgets(line, sizeof(line), f))
		if ((at = strstr(line, path)))
			col = (int)(at - line);
	if (f)
		fclose(f);
	return col;
}

/* mkdir -p for the directories of @path (the last component is a file) */
static int mkdirs(char *path)
{
	char *slash;

	for (slash = strchr(path + 1, '/'); slash; slash = strchr(slash + 1, '/')) {
		*slash = '\0';
		if (mkdir(path, 0700) && errno != EEXIST)
			return -1;
		*slash = '/';
	}
	return 0;
}

/*
 * Any user can map a file whose name holds text that looks like the fields
 * of a maps line. shmpoolctl counts a memfd pool's mappings from every
 * process's /proc/<pid>/maps: a line longer than its line buffer, cut in
 * two, made the name's tail parse as a mapping of whatever pool that user
 * chose, in root's "ls". The file name here puts "x x 0 <dev> <ino>" of
 * our pool's file right where a 512-byte buffer cuts its line.
 */
TEST_F(ctl, ls_mapping_counts_not_forged_by_long_file_names)
{
	const char *dir = getenv("SHMPOOL_SHM_DIR") ? getenv("SHMPOOL_SHM_DIR") : "/dev/shm";
	char path[PATH_MAX], probe[64], want[160], *at, *json;
	size_t len, cut = 511;	/* the old buffer held 511 bytes of a line */
	int fd, col;
	struct stat st;
	void *map, *pmap;

	run(&self->r, "--backend", "memfd", "create", self->name, "64K");
	ASSERT_EQ(OK, self->r.status) TH_LOG("%s", self->r.err);
	snprintf(path, sizeof(path), "%s/shmpool.%s", dir, self->name);
	ASSERT_EQ(0, stat(path, &st));

	/* the column where file names start, from a mapping of a short one */
	snprintf(probe, sizeof(probe), "/tmp/ctlmaps.%d", getpid());
	fd = open(probe, O_CREAT | O_RDWR | O_CLOEXEC, 0600);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ftruncate(fd, 4096));
	pmap = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
	ASSERT_NE(MAP_FAILED, pmap);
	close(fd);
	col = maps_path_column(probe);
	ASSERT_LT(0, col);
	ASSERT_GT((int)cut - 64, col);

	/* directories of 200 bytes, then a file name whose tail is the fake */
	len = (size_t)snprintf(path, sizeof(path), "%s.d", probe);
	while (col + len + 1 < cut) {
		size_t n = cut - (col + len + 1);

		path[len++] = '/';
		if (n > 220)
			n = 200;	/* a directory; what is left follows */
		memset(path + len, 'd', n);
		len += n;
	}
	ASSERT_EQ(cut, col + len);
	snprintf(path + len, sizeof(path) - len, "x x 0 %02x:%02x %llu",
		 major(st.st_dev), minor(st.st_dev), (unsigned long long)st.st_ino);
	ASSERT_EQ(0, mkdirs(path));
	fd = open(path, O_CREAT | O_RDWR | O_CLOEXEC, 0600);
	ASSERT_LE(0, fd) TH_LOG("open: %s", strerror(errno));
	ASSERT_EQ(0, ftruncate(fd, 4096));
	map = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
	ASSERT_NE(MAP_FAILED, map);
	close(fd);
	EXPECT_EQ(col, maps_path_column(path));

	run(&self->r, "--backend", "memfd", "ls", "--json");
	munmap(map, 4096);
	munmap(pmap, 4096);
	unlink(path);
	unlink(probe);
	while ((at = strrchr(path, '/')) && at > path + strlen(probe)) {
		*at = '\0';
		rmdir(path);
	}
	EXPECT_EQ(OK, self->r.status) TH_LOG("%s", self->r.err);
	snprintf(want, sizeof(want), "{\"name\": \"%s\", \"backend\": \"memfd\"", self->name);
	json = strstr(self->r.out, want);
	ASSERT_NE(NULL, json) TH_LOG("%s", self->r.out);
	EXPECT_NE(NULL, strstr(json, "\"attachments\": 0, \"mappings\": 0"))
		TH_LOG("%.300s", json);
}

/* the commands of the trials, and the exit statuses shmpoolctl(8) allows them */
static const struct {
	const char *argv[6];
	int ok[3];
} hostile_cmds[] = {
	{ { "stat" }, { OK, DAMAGED, OK } },
	{ { "stat", "--json" }, { OK, DAMAGED, OK } },
	{ { "watch", "--count", "2", "--interval", "0.01" }, { OK, DAMAGED, OK } },
	{ { "check" }, { OK, DAMAGED, OK } },
	{ { "check", "--quiescent" }, { OK, DAMAGED, OK } },
	{ { "info" }, { OK, OK, OK } },
	{ { "dump", "@", "0", "4096" }, { OK, OK, OK } },
};

/*
 * Run every command of hostile_cmds[] on the pool, each under a watchdog
 * of @secs seconds (alarm() survives the exec): no signal, a documented
 * status, no raw control byte in its output. 0, or the index + 1 of the
 * command that failed (its run in @self->r).
 */
static int run_hostile_cmds(FIXTURE_DATA(ctl) *self, unsigned int secs, char *why, size_t len)
{
	char secs_s[16];
	size_t i, a;

	snprintf(secs_s, sizeof(secs_s), "%u", secs);
	for (i = 0; i < sizeof(hostile_cmds) / sizeof(hostile_cmds[0]); i++) {
		const char *argv[8] = { NULL };
		int k, ok = 0;

		for (a = 0; a < 6 && hostile_cmds[i].argv[a]; a++)
			argv[a] = strcmp(hostile_cmds[i].argv[a], "@") ? hostile_cmds[i].argv[a]
								      : self->name;
		if (strcmp(argv[0], "dump"))
			argv[a++] = self->name;
		runv(&self->r, -2 - (int)secs, argv[0], argv[1], argv[2], argv[3], argv[4],
		     argv[5], argv[6], NULL);
		for (k = 0; k < 3; k++)
			ok |= self->r.status == hostile_cmds[i].ok[k];
		if (!ok || raw_byte(self->r.out) || raw_byte(self->r.err)) {
			snprintf(why, len, "%s %s: status %d%s, raw byte 0x%02x/0x%02x; %.200s",
				 argv[0], argv[1], self->r.status,
				 self->r.status == 128 + SIGALRM ? " (hung)" : "",
				 raw_byte(self->r.out), raw_byte(self->r.err), self->r.err);
			return (int)i + 1;
		}
	}
	return 0;
}

static int ctl_run(void *arg, unsigned int t, char *why, size_t len)
{
	(void)t;
	return run_hostile_cmds(arg, (unsigned int)(20 * scale()), why, len);
}

/* The trials of the two tests below on a populated pool. */
static void ctl_trials(struct __test_metadata *_metadata, FIXTURE_DATA(ctl) *self,
		       unsigned int n, uint64_t seed, bool flip)
{
	struct insp_pool ip;
	char why[1024];
	int ret;

	populate(_metadata, self);
	ip.p = self->p;
	populate_kinds(_metadata, self->h, &ip);
	ret = insp_trials_run(&ip, n, seed, flip, ctl_run, self, why, sizeof(why));
	free(ip.orig);
	ASSERT_EQ(0, ret) TH_LOG("%s", why);
}

/*
 * The administrator's view of a pool whose owner wrote garbage or crafted
 * values (counts at the maximum, offsets one past, links to themselves,
 * names without NUL) into each structure: every command ends by itself,
 * with a status the man page gives it, and prints no raw control byte.
 */
TEST_F_TIMEOUT(ctl, hostile_contents, 600)
{
	ctl_trials(_metadata, self, insp_trials(60), hostile_seed(), false);
}

/* The same while a flipper keeps rewriting the structure under the commands. */
TEST_F_TIMEOUT(ctl, hostile_contents_changing, 600)
{
	ctl_trials(_metadata, self, insp_trials(30), hostile_seed() ^ 0xf11b, true);
}

/*
 * check looks read-only first and then opens the heap read-write: it must
 * never lay out a heap in the pool (wiping its directory), however the
 * heap's state word changes between the two looks. A peer flips it
 * between "ready" and "nothing laid out" while check runs again and again.
 */
TEST_F_TIMEOUT(ctl, check_never_lays_out_a_heap, 300)
{
	struct shmpool_obj_entry e;
	_Atomic uint32_t *state;
	unsigned int pos, i, n = in_vm_lane() ? 10 : 40;
	pid_t flipper;
	int found;

	populate(_metadata, self);
	state = (_Atomic uint32_t *)shmpool_base(self->p);
	ASSERT_EQ(1U, *state);	/* lib/heap.h: HEAP_STATE_READY */
	fflush(NULL);
	flipper = fork();
	ASSERT_LE(0, flipper);
	if (!flipper) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		for (i = 0;; i++) {
			atomic_store(state, (i & 1) ? 1U : 0U);
			for (volatile int k = 0; k < 2000; k++)
				;
		}
	}
	for (i = 0; i < n; i++) {
		runv(&self->r, -2 - 20, "check", self->name, NULL);
		if (self->r.status != OK && self->r.status != DAMAGED &&
		    self->r.status != NOHEAP)
			break;
		pos = 0;
		found = 0;
		while (!shmpool_obj_next(self->p, &pos, &e))
			found |= !strcmp(e.name, "jobs");
		if (!found)
			break;
	}
	hostile_flipper_stop(flipper);
	ASSERT_EQ(n, i) TH_LOG("run %u: status %d, \"jobs\" %s; %s%s", i, self->r.status,
			       found ? "still there" : "gone: check laid out a heap",
			       self->r.out, self->r.err);
}

TEST_HARNESS_MAIN
