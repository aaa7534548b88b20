/* SPDX-License-Identifier: MIT */
/*
 * Helpers of the library tests (lib_*_test.c): the time budget scale, a
 * monotonic clock, the device check, whether a task sleeps, a ptrace
 * syscall counter, and workers
 * that are
 * processes (fork) by default, or threads of the test process when built
 * with -DSHMPOOL_TEST_THREADS or under ThreadSanitizer, so that TSan sees
 * both sides of every exchange. A forked worker dies with the test
 * (PR_SET_PDEATHSIG).
 */
#ifndef SHMPOOL_LIB_TEST_H
#define SHMPOOL_LIB_TEST_H

#include <fcntl.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lane.h"

/* ThreadSanitizer: GCC says __SANITIZE_THREAD__, clang __has_feature() */
#if defined(__SANITIZE_THREAD__)
#define UNDER_TSAN	1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define UNDER_TSAN	1
#endif
#endif

#if defined(UNDER_TSAN) && !defined(SHMPOOL_TEST_THREADS)
#define SHMPOOL_TEST_THREADS 1
#endif

#define DEV_PATH	"/dev/shmpool"

/* SHMPOOL_TEST_SCALE (a positive number, default 1) multiplies budgets */
static inline double scale(void)
{
	const char *s = getenv("SHMPOOL_TEST_SCALE");
	double v = s ? atof(s) : 1.0;

	return v > 0 ? v : 1.0;
}

static inline uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static inline int device_ok(void)
{
	return !access(DEV_PATH, R_OK | W_OK);
}

struct task {
	int (*fn)(void *arg);
	void *arg;
	pid_t pid;
	pthread_t th;
	int rc;
};

#ifdef SHMPOOL_TEST_THREADS
static inline void *task_thread(void *t)
{
	struct task *tk = t;

	tk->rc = tk->fn(tk->arg);
	return NULL;
}
#endif

static inline int task_start(struct task *t, int (*fn)(void *), void *arg)
{
	t->fn = fn;
	t->arg = arg;
	t->rc = -1;
#ifdef SHMPOOL_TEST_THREADS
	return pthread_create(&t->th, NULL, task_thread, t) ? -1 : 0;
#else
	t->pid = fork();
	if (t->pid < 0)
		return -1;
	if (t->pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		_exit(fn(arg));
	}
	return 0;
#endif
}

static inline int task_join(struct task *t)
{
#ifdef SHMPOOL_TEST_THREADS
	pthread_join(t->th, NULL);
	return t->rc;
#else
	int status;

	if (waitpid(t->pid, &status, 0) != t->pid)
		return -1;
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : -1;
#endif
}

/* CLOCK_MONOTONIC @ms from now: a deadline */
static inline struct timespec after_ms(long ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return ts;
}

/*
 * Fork a child that runs @work(@arg, @progress) until it is killed; @work
 * bumps the counter (shared memory) as it goes. Once it has done so @steps
 * times (so that it is killed in the middle of its work, not while it is
 * still starting up, which is slow under KASAN and TCG), let it run @us
 * more microseconds and SIGKILL it. 0 if it died of that kill; else its
 * exit status + 1, or -1 if it could not be started or never got going.
 */
static inline int kill_midway(void (*work)(void *arg, _Atomic uint64_t *progress),
			      void *arg, uint64_t steps, unsigned int us)
{
	_Atomic uint64_t *progress;
	uint64_t end = now_ms() + 20000;
	int status, ret = 0;
	pid_t pid;

	progress = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
			MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (progress == MAP_FAILED)
		return -1;
	pid = fork();
	if (pid < 0) {
		munmap((void *)progress, 4096);
		return -1;
	}
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		work(arg, progress);
		_exit(0);
	}
	while (atomic_load(progress) < steps && now_ms() < end)
		usleep(200);
	if (atomic_load(progress) < steps)
		ret = -1;
	else
		usleep(us);
	kill(pid, SIGKILL);
	if (waitpid(pid, &status, 0) != pid)
		ret = -1;
	else if (!ret && !(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL))
		ret = WIFEXITED(status) ? WEXITSTATUS(status) + 1 : -1;
	munmap((void *)progress, 4096);
	return ret;
}

/* Read the start of the small file @path into @buf, NUL-terminated: 0, or -1. */
static inline int read_small(const char *path, char *buf, size_t len)
{
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -1;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	return 0;
}

/* State letter of thread/process @tid from /proc ('S' asleep), or '?' */
static inline char task_state(pid_t tid)
{
	char path[64], buf[512], *p;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)tid);
	if (read_small(path, buf, sizeof(buf)))
		return '?';
	p = strrchr(buf, ')');
	return p && p[1] == ' ' ? p[2] : '?';
}

/*
 * Wait until @tid has slept (state S) for 50 ms in a row: it got past its
 * "ready" mark and into the wait. 0, or -1 after 20 s.
 */
static inline int wait_asleep(pid_t tid)
{
	const struct timespec ms = { 0, 1000000L };
	int i, in_a_row = 0;

	for (i = 0; i < 20000; i++) {
		in_a_row = task_state(tid) == 'S' ? in_a_row + 1 : 0;
		if (in_a_row == 50)
			return 0;
		nanosleep(&ms, NULL);
	}
	return -1;
}

/*
 * The traced child @pid, stopped (its raise(SIGSTOP) after
 * PTRACE_TRACEME), runs from system call to system call; at each entry
 * @entry(@arg, its number) may act, the peer writing while the child is
 * held there. Other signals are delivered. Ends when the child does (*@st
 * its status): 1; when @entry returns non-zero (the child is killed): 0;
 * -1 if the tracing failed (the child is killed).
 */
static inline int trace_syscall_entries(pid_t pid, int (*entry)(void *arg, long nr),
					void *arg, int *st)
{
	struct __ptrace_syscall_info info;
	int sig = 0;

	if (ptrace(PTRACE_SETOPTIONS, pid, NULL,
		   (void *)(long)(PTRACE_O_TRACESYSGOOD | PTRACE_O_EXITKILL)))
		goto kill;
	for (;;) {
		if (ptrace(PTRACE_SYSCALL, pid, NULL, (void *)(long)sig) ||
		    waitpid(pid, st, 0) != pid)
			goto kill;
		sig = 0;
		if (WIFEXITED(*st) || WIFSIGNALED(*st))
			return 1;
		if (WSTOPSIG(*st) != (SIGTRAP | 0x80)) {
			sig = WSTOPSIG(*st);	/* a real signal: deliver it */
			continue;
		}
		if (ptrace(PTRACE_GET_SYSCALL_INFO, pid, (void *)sizeof(info), &info) <= 0)
			goto kill;
		if (info.op == PTRACE_SYSCALL_INFO_ENTRY && entry(arg, (long)info.entry.nr)) {
			kill(pid, SIGKILL);
			waitpid(pid, st, 0);
			return 0;
		}
	}
kill:
	kill(pid, SIGKILL);
	waitpid(pid, st, 0);
	return -1;
}

struct syscall_count {
	int phase;		/* getppid() markers seen */
	int count;		/* entries between the first and the second */
	long *first;
};

static inline int syscall_count_entry(void *arg, long nr)
{
	struct syscall_count *c = arg;

	if (nr == SYS_getppid) {
		c->phase++;
		return 0;
	}
#ifdef UNDER_TSAN
	/* TSan's runtime maps metadata for addresses it sees first */
	if (nr == SYS_mmap || nr == SYS_munmap || nr == SYS_madvise)
		return 0;
#endif
	if (c->phase == 1 && !c->count++)
		*c->first = nr;
	return 0;
}

/*
 * Run @fn(@arg) twice in a traced child: once to warm up (the thread id cache,
 * lazy binding), then between two getppid() markers. Returns how many
 * system calls the second run entered, or -1; *@first is the first one's
 * number. Nothing the child does is trusted: the tracer sees every entry.
 */
static inline int count_syscalls(void (*fn)(void *), void *arg, long *first)
{
	struct syscall_count c = { .first = first };
	int status;
	pid_t pid;

	*first = -1;
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (ptrace(PTRACE_TRACEME, 0, NULL, NULL))
			_exit(100);
		raise(SIGSTOP);
		fn(arg);
		syscall(SYS_getppid);
		fn(arg);
		syscall(SYS_getppid);
		_exit(0);
	}
	if (waitpid(pid, &status, 0) != pid || !WIFSTOPPED(status)) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		return -1;
	}
	if (trace_syscall_entries(pid, syscall_count_entry, &c, &status) != 1 ||
	    !WIFEXITED(status) || WEXITSTATUS(status) || c.phase != 2)
		return -1;
	return c.count;
}

/*
 * Owner death across PID namespaces (lib_sync_test, lib_state_test,
 * lib_cache_test).
 *
 * attachments_exact(): 1 if @p's owners are kernel-issued attachments (the
 * device's status page; its death_seq is readable), which is what makes a
 * live owner in another PID namespace, or a reused PID, safe. The memfd
 * backend and a module without attachments use process ids and have the
 * limits shmpool_sync.h documents. Built against headers before
 * attachments (the old code, for evidence), every device pool counts.
 */
static inline int attachments_exact(struct shmpool *p)
{
#ifdef SHMPOOL_CAP_DEATH_NOTICE
	uint32_t seq;

	return shmpool_backend(p) == SHMPOOL_BACKEND_DEVICE &&
	       !shmpool_death_seq(p, &seq);
#else
	return shmpool_backend(p) == SHMPOOL_BACKEND_DEVICE;
#endif
}

/* A process id that no process of our namespace has now, near pid_max. */
static inline pid_t unused_pid(void)
{
	char buf[32];
	pid_t pid;

	if (read_small("/proc/sys/kernel/pid_max", buf, sizeof(buf)))
		return -1;
	for (pid = (pid_t)atoi(buf) - 2; pid > 300; pid--)
		if (kill(pid, 0) && errno == ESRCH)
			return pid;
	return -1;
}

/* Make the next fork() of the caller's PID namespace get @pid; 0 or -1. */
static inline int set_next_pid(pid_t pid)
{
	char buf[32];
	int fd, n, ok;

	fd = open("/proc/sys/kernel/ns_last_pid", O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = snprintf(buf, sizeof(buf), "%d", (int)pid - 1);
	ok = write(fd, buf, (size_t)n) == n;
	close(fd);
	return ok ? 0 : -1;
}

/*
 * Start @fn(@arg) in a new PID namespace, as a process whose id there is
 * one that no process of ours has (so that, to the old thread-id code, its
 * thread id named nobody: a dead owner). Returns the pid of our child A,
 * or -1 (errno EPERM where namespaces are not permitted: skip). A unshares
 * and forks B, the namespace's init, which forks C to run @fn; killing A
 * (SIGKILL) ends B by PR_SET_PDEATHSIG and so C with its namespace.
 * task-style exit status: A exits with C's status (or 128 + signal).
 */
static inline pid_t pidns_start(int (*fn)(void *), void *arg)
{
	pid_t want = unused_pid(), a, c;
	int pfd[2], err = 0, status;

	if (pipe(pfd))
		return -1;
	a = fork();
	if (a < 0)
		return -1;
	if (a == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		close(pfd[0]);
		if (unshare(CLONE_NEWPID)) {
			err = errno;
			if (write(pfd[1], &err, sizeof(err)) < 0)
				_exit(1);
			_exit(1);
		}
		if (write(pfd[1], &err, sizeof(err)) < 0)
			_exit(1);
		close(pfd[1]);
		if (fork() == 0) {		/* B: init of the namespace */
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			if (want > 0)
				set_next_pid(want);
			c = fork();
			if (c == 0) {		/* C */
				prctl(PR_SET_PDEATHSIG, SIGKILL);
				_exit(fn(arg));
			}
			if (c < 0 || waitpid(c, &status, 0) != c)
				_exit(1);
			_exit(WIFEXITED(status) ? WEXITSTATUS(status) :
			      128 + WTERMSIG(status));
		}
		if (wait(&status) < 0)
			_exit(1);
		_exit(WIFEXITED(status) ? WEXITSTATUS(status) :
		      128 + WTERMSIG(status));
	}
	close(pfd[1]);
	if (read(pfd[0], &err, sizeof(err)) != sizeof(err))
		err = EIO;
	close(pfd[0]);
	if (err) {
		waitpid(a, &status, 0);
		errno = err;
		return -1;
	}
	return a;
}

/* Wait for a pidns_start() child; its (C's) exit status, 128 + signal. */
static inline int pidns_join(pid_t a)
{
	int status;

	if (waitpid(a, &status, 0) != a)
		return -1;
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : -1;
}

/*
 * Inside a QEMU lane of scripts/vm-run.sh (its "spnonce=" on the kernel
 * command line): tests there run under TCG and scale their work down.
 */
static inline int in_vm_lane(void)
{
	return lane_cmdline_has("spnonce=");
}

/*
 * The lanes whose command line says "spbackends=device" test the library
 * on the device backend only, and its memfd variants skip there:
 * - debug (KASAN, lockdep, kmemleak: scripts/vm-run.sh) is there for the
 *   module;
 * - 6.12 leaves the memfd backend to rt (the same series);
 * - rt runs memfd only in the programs its "spmemfd=a,b" names: those of
 *   the blocking calls, on PREEMPT_RT's futex; the rest of the library on
 *   memfd is the host's and 6.1's.
 * SKIP_MEMFD_IN_DEVICE_LANE() leaves through the harness's abort path, as
 * the fixtures' other SKIP()s do (6.1's harness would still run the test
 * after a plain one).
 */
static inline int lane_is_device_only(void)
{
	char line[4096], comm[64], *list, *name, *save;

	if (read_small("/proc/cmdline", line, sizeof(line)) ||
	    !strstr(line, "spbackends=device"))
		return 0;
	list = strstr(line, "spmemfd=");
	if (!list || read_small("/proc/self/comm", comm, sizeof(comm)))
		return 1;
	comm[strcspn(comm, "\n")] = '\0';
	list += strlen("spmemfd=");
	list[strcspn(list, " \n")] = '\0';
	for (name = strtok_r(list, ",", &save); name; name = strtok_r(NULL, ",", &save))
		if (!strcmp(name, comm))
			return 0;
	return 1;
}

/*
 * The debug lane itself (its command line names the lane: "splane=debug"):
 * the tests whose cost is the library's own steps (kill points, death
 * games) leave it to the other lanes, as each step costs milliseconds
 * under KASAN.
 */
static inline int lane_is_debug(void)
{
	return lane_cmdline_has("splane=debug");
}

#define SKIP_MEMFD_IN_DEVICE_LANE(backend)					\
	do {									\
		if ((backend) == SHMPOOL_BACKEND_MEMFD && lane_is_device_only())	\
			SKIP(longjmp(_metadata->env, 1),				\
			     "memfd: this lane tests the device backend only");	\
	} while (0)

#ifdef SHMPOOL_ALLOC_H
/*
 * A plain named object (shmpool_obj_create()) of @size bytes as its owner
 * might leave it: the first word 0, data after it. Returns its bytes (NULL
 * on failure) and copies them to @copy (@size bytes).
 */
static inline uint8_t *plain_object_make(struct shmpool_heap *h, const char *name,
					 size_t size, uint8_t *copy)
{
	struct shmpool_obj obj;
	uint8_t *b;
	size_t i;

	if (shmpool_obj_create(h, name, size, 64, &obj) != 1)
		return NULL;
	b = shmpool_heap_ptr(h, obj.off, size);
	if (!b)
		return NULL;
	for (i = 8; i < size; i++)
		b[i] = (uint8_t)(i * 13 + 1);
	memcpy(copy, b, size);
	return b;
}
#endif

/*
 * Killed at every instruction (lib_ring_test, lib_alloc_test,
 * lib_sync_test, ...): a victim stops itself (PTRACE_TRACEME, then
 * SIGSTOP) just before the call under test; the test single-steps it k
 * times and SIGKILLs it, for k = 0, 1, 2, ... until the call ends before
 * step k, and after each kill checks what the survivors see.
 *
 * Kill points apart: every one on the plain host build; every 61st in the
 * QEMU lanes (TCG single-steps slowly, and each kill point steps from the
 * start). The sanitizer builds skip these tests: their instrumentation
 * makes a call thousands of steps, what the plain build already covers.
 */
#if defined(__SANITIZE_ADDRESS__) || defined(UNDER_TSAN)
#define STEP_SANITIZED	1
#else
#define STEP_SANITIZED	0
#endif

#ifndef SYS_futex_waitv
#define SYS_futex_waitv	449	/* the same on every architecture */
#endif

/*
 * Is @pid asleep in one of the calls the library waits in (futex,
 * futex_waitv: memfd; ioctl: the device's doorbells)? Its state in
 * /proc/<pid>/stat is then S, and /proc/<pid>/syscall names the call.
 * A step that merely takes long (the tracer or the victim preempted on a
 * busy machine, which happens every few hundred steps here) is not.
 */
static inline int victim_asleep(pid_t pid)
{
	char path[64], state = 0;
	long nr = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return 0;
	if (fscanf(f, "%*d (%*[^)]) %c", &state) != 1)
		state = 0;
	fclose(f);
	if (state != 'S')
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/syscall", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return 0;
	if (fscanf(f, "%ld", &nr) != 1)
		nr = -1;
	fclose(f);
	return nr == SYS_futex || nr == SYS_futex_waitv || nr == SYS_ioctl;
}

/* Fork the victim @fn(@arg) and wait for its SIGSTOP: its pid, or -1. */
static inline pid_t victim_start(int (*fn)(void *), void *arg)
{
	pid_t pid = fork();
	int st;

	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		_exit(fn(arg));
	}
	if (pid < 0)
		return -1;
	if (waitpid(pid, &st, 0) != pid || !WIFSTOPPED(st)) {
		fprintf(stderr, "victim: status %#x before its stop\n", st);
		kill(pid, SIGKILL);
		waitpid(pid, &st, 0);
		return -1;
	}
	return pid;
}

/* SIGKILL the victim, stopped or running (not reaped): 1 once it is dead of it, else -1 */
static inline int victim_kill(pid_t pid)
{
	int st;

	kill(pid, SIGKILL);
	return waitpid(pid, &st, 0) == pid && WIFSIGNALED(st) ? 1 : -1;
}

#define VICTIM_STOP_MS	30000	/* a victim that neither stops nor sleeps this long hangs */

/*
 * Wait for the victim's next stop or end (*@st): 1 when it came, 0 if it
 * did not within VICTIM_STOP_MS (logged), -1. With *@wake not NULL, a
 * victim found asleep in a wait (victim_asleep(), after 2 ms) gets
 * (*@wake)(@warg) once, and *@wake becomes NULL; without, the wait blocks.
 */
static inline int victim_wait(pid_t pid, int *st, void (**wake)(void *), void *warg)
{
	uint64_t t0 = now_ms();
	pid_t got;

	if (!*wake)
		return waitpid(pid, st, 0) == pid ? 1 : -1;
	while ((got = waitpid(pid, st, WNOHANG)) == 0) {
		if (*wake && now_ms() - t0 >= 2 && victim_asleep(pid)) {
			(*wake)(warg);
			*wake = NULL;
		}
		if (now_ms() - t0 > VICTIM_STOP_MS) {
			fprintf(stderr, "victim %d: no stop in %d ms, and not asleep in a wait\n",
				(int)pid, VICTIM_STOP_MS);
			return 0;
		}
		usleep(100);
	}
	return got == pid ? 1 : -1;
}

/*
 * Fork @fn and single-step it @steps times from its SIGSTOP, then SIGKILL
 * it: 1 if it was killed, 0 if it finished first (exit status 0), -1.
 * A step that has not ended after 2 ms and finds the victim asleep in a
 * wait (victim_asleep(): a lock held by the tracer, say) calls
 * @wake(@warg), if not NULL, once to let it go on; the steps go on after
 * it, and *@woken (if not NULL) is set. Time alone is no sign of a sleep:
 * a step preempted for 5 ms once released the lock early and ended the
 * contended lock's walk after 534 to 799 of its steps.
 */
static inline int step_and_kill_on_cpu(int (*fn)(void *), void *arg, long steps,
					void (*wake)(void *), void *warg, int *woken)
{
	pid_t pid = victim_start(fn, arg);
	void (*was)(void *);
	int st, ret;
	long k;

	if (pid < 0)
		return -1;
	for (k = 0; k < steps; k++) {
		if (ptrace(PTRACE_SINGLESTEP, pid, NULL, NULL))
			break;
		was = wake;
		ret = victim_wait(pid, &st, &wake, warg);
		if (was && !wake && woken)
			*woken = 1;
		if (ret <= 0)
			break;
		if (WIFEXITED(st))
			return WEXITSTATUS(st) ? -1 : 0;
		if (!WIFSTOPPED(st))
			return -1;
	}
	ret = victim_kill(pid);
	return k == steps ? ret : -1;	/* else a step failed or hung */
}

/*
 * Fork @fn, let it run from its SIGSTOP to the wait it sleeps in (stopping
 * only at its system calls), call @wake(@warg) once it sleeps there
 * (victim_asleep()), and single-step it @after times from the end of
 * that call, then SIGKILL it: 1 if it was killed, 0 if it finished first
 * (exit status 0), -1 (also: it finished without sleeping). The steps
 * after a wake-up whatever the way there took: that way's length varies
 * from run to run (the memfd backend's look at its peers reads the
 * attachment table, which the walk's dead victims fill).
 */
static inline int step_and_kill_after_wake_on_cpu(int (*fn)(void *), void *arg, long after,
						  void (*wake)(void *), void *warg)
{
	pid_t pid = victim_start(fn, arg);
	int st, ret;
	long k;

	if (pid < 0)
		return -1;
	if (ptrace(PTRACE_SETOPTIONS, pid, NULL, (void *)(long)PTRACE_O_TRACESYSGOOD))
		goto fail;
	/* from system call stop to system call stop until one has slept */
	while (wake) {
		if (ptrace(PTRACE_SYSCALL, pid, NULL, NULL))
			goto fail;
		ret = victim_wait(pid, &st, &wake, warg);
		if (ret <= 0)
			goto fail;
		if (!WIFSTOPPED(st))
			return -1;	/* it ended (reaped) without sleeping */
		if (WSTOPSIG(st) != (SIGTRAP | 0x80))
			goto fail;
	}
	/* at the exit of the call it slept in */
	for (k = 0; k < after; k++) {
		if (ptrace(PTRACE_SINGLESTEP, pid, NULL, NULL) ||
		    waitpid(pid, &st, 0) != pid)
			goto fail;
		if (WIFEXITED(st))
			return WEXITSTATUS(st) ? -1 : 0;
		if (!WIFSTOPPED(st))
			return -1;
	}
	return victim_kill(pid);
fail:
	victim_kill(pid);
	return -1;
}

/*
 * Tracer and victim on one CPU: a step is then a switch between the two,
 * not a wake-up of the other CPU (the kill points take half the time).
 * Returns whether it pinned us (then unpin_cpu(@was) after).
 */
static inline int pin_cpu(cpu_set_t *was)
{
	int cpu = sched_getcpu();
	cpu_set_t one;

	if (cpu < 0 || sched_getaffinity(0, sizeof(*was), was))
		return 0;
	CPU_ZERO(&one);
	CPU_SET(cpu, &one);
	return !sched_setaffinity(0, sizeof(one), &one);
}

static inline void unpin_cpu(const cpu_set_t *was)
{
	sched_setaffinity(0, sizeof(*was), was);
}

static inline int step_and_kill_waking(int (*fn)(void *), void *arg, long steps,
				       void (*wake)(void *), void *warg, int *woken)
{
	cpu_set_t was;
	int pinned = pin_cpu(&was), ret;

	ret = step_and_kill_on_cpu(fn, arg, steps, wake, warg, woken);
	if (pinned)
		unpin_cpu(&was);
	return ret;
}

static inline int step_and_kill_after_wake(int (*fn)(void *), void *arg, long after,
					   void (*wake)(void *), void *warg)
{
	cpu_set_t was;
	int pinned = pin_cpu(&was), ret;

	ret = step_and_kill_after_wake_on_cpu(fn, arg, after, wake, warg);
	if (pinned)
		unpin_cpu(&was);
	return ret;
}

static inline int step_and_kill(int (*fn)(void *), void *arg, long steps)
{
	return step_and_kill_waking(fn, arg, steps, NULL, NULL, NULL);
}

/*
 * The kill-point loop, in a test or a void helper of one: for k (a long)
 * = 0, 1, 2, ... (61 apart in a QEMU lane) evaluate @at_k, which steps a
 * victim k times, kills it and checks: 1 if it was killed and all was
 * well, 0 if the call ended before step k (the loop ends), -1 on a failed
 * check (logged: the test fails). @pool's backend: the QEMU lanes test the
 * device backend only, since the host's plain run takes every kill point
 * on memfd and the lanes' time is dear; the debug lane (there for the
 * module) takes none: under KASAN the heap's and cache's kill points
 * alone cost it 2.5 min.
 */
#define KILL_AT_EVERY_STEP(pool, k, at_k) KILL_AT_STEPS_APART(pool, k, at_k, 61)

/*
 * The same with @vm_apart kill points apart in the QEMU lanes (a prime
 * other than 61): for calls of over 800 steps, whose kill points cost
 * the lanes most (each steps from the start: the time grows as the
 * square of the call's length over @vm_apart).
 */
#define KILL_AT_STEPS_APART(pool, k, at_k, vm_apart)				\
	KILL_WALK(pool, k, at_k, 1, vm_apart)

/* The same, @apart kill points apart on the host too (a long call). */
#define KILL_AT_STEPS_EVERYWHERE_APART(pool, k, at_k, apart)			\
	KILL_WALK(pool, k, at_k, apart, apart)

#define KILL_WALK(pool, k, at_k, host_apart, vm_apart)				\
	do {									\
		uint64_t t0_ = now_ms();					\
		int ret_;							\
										\
		if (STEP_SANITIZED)						\
			SKIP(return, "sanitizer build: the plain build takes every kill point"); \
		if (in_vm_lane() && shmpool_backend(pool) == SHMPOOL_BACKEND_MEMFD) \
			SKIP(return, "memfd: every kill point is taken on the host"); \
		if (lane_is_debug())						\
			SKIP(return, "debug lane: the kill points test the library; " \
			     "the 6.1, 6.12 and rt lanes take them on the device"); \
		for ((k) = 0; (k) < 100000; (k) += in_vm_lane() ? (vm_apart) : (host_apart)) { \
			ret_ = (at_k);						\
			ASSERT_LE(0, ret_);					\
			if (!ret_)						\
				break;	/* the call ended before step k */	\
		}								\
		TH_LOG("walked %ld steps, a kill point every %d (%llu ms)", (k),	\
		       (int)(in_vm_lane() ? (vm_apart) : (host_apart)),		\
		       (unsigned long long)(now_ms() - t0_));			\
	} while (0)

/* in a kill point's check (the long k in scope): log, and fail the kill point */
#define STEP_CHECK(cond, fmt, ...) do {						\
	if (!(cond)) {								\
		TH_LOG("step %ld: " fmt, k, ##__VA_ARGS__);			\
		return -1;							\
	}									\
} while (0)

#endif /* SHMPOOL_LIB_TEST_H */
