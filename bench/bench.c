// SPDX-License-Identifier: MIT
/*
 * The benchmark harness (see bench.h): pinned process pairs, the cache-line
 * probe, interleaved rounds, ratios to a named peer, other processes' CPU
 * use, and syscalls per operation counted exactly under ptrace.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

#define PROBE_ITERS	10000	/* round trips per probe sample */
#define PROBE_SAMPLES	3	/* a probe is the median of these */
#define PROBE_AGREE	0.25	/* before/after may differ by this much */
#define BUSY_LIMIT	10.0	/* others' CPU %, above which a table is suspect */
#define CHILD_ALARM	300	/* seconds: a stuck side dies instead of hanging */
#define RUN_TARGET_NS	200000000.0	/* a case's run lasts about this long */
#define RUN_MIN_ITERS	50

static int rounds = BENCH_DEF_ROUNDS;
static int verbose;
static double scale = 1.0;
static int cpus[2] = { -1, -1 };
static int ncpus;

/* Start barrier and side 0's result, shared with the forked sides. */
struct ctl {
	_Atomic int ready;
	uint64_t elapsed_ns;	/* the result: side 0's time, or what it set */
	uint64_t wall_ns;	/* side 0's time */
};
static struct ctl *ctl;

void bench_die(const char *what, int err)
{
	fprintf(stderr, "error: %s: %s\n", what, strerror(err));
	exit(1);
}

uint64_t bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

void *bench_shared_page(void)
{
	void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		bench_die("mmap shared page", errno);
	return p;
}

void bench_init(int argc, char **argv, const char *usage)
{
	cpu_set_t set;
	int opt, i;

	while ((opt = getopt(argc, argv, "r:s:vh")) != -1) {
		switch (opt) {
		case 'r':
			rounds = atoi(optarg);
			break;
		case 's':
			scale = atof(optarg);
			break;
		case 'v':
			verbose = 1;
			break;
		default:
			fprintf(stderr, "usage: %s [-r ROUNDS (5..%d)] [-s SCALE] [-v: each round]\n%s",
				argv[0], BENCH_MAX_ROUNDS, usage);
			exit(opt == 'h' ? 0 : 2);
		}
	}
	if (rounds < 5 || rounds > BENCH_MAX_ROUNDS || !(scale > 0)) {
		fprintf(stderr, "%s: need 5 <= ROUNDS <= %d and SCALE > 0\n",
			argv[0], BENCH_MAX_ROUNDS);
		exit(2);
	}
	if (sched_getaffinity(0, sizeof(set), &set))
		bench_die("sched_getaffinity", errno);
	for (i = 0; i < CPU_SETSIZE && ncpus < 2; i++)
		if (CPU_ISSET(i, &set))
			cpus[ncpus++] = i;
	ctl = bench_shared_page();
	setvbuf(stdout, NULL, _IOLBF, 0);
}

/* ---- running one case ---------------------------------------------------- */

static void pin(int side)
{
	cpu_set_t set;

	if (ncpus < 2)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpus[side], &set);
	if (sched_setaffinity(0, sizeof(set), &set))
		bench_die("sched_setaffinity", errno);
}

static void side_main(struct bench_case *c, int side, uint64_t iters, int traced)
{
	uint64_t t0;

	alarm(CHILD_ALARM);
	pin(side);
	if (traced) {
		if (ptrace(PTRACE_TRACEME, 0, NULL, NULL))
			bench_die("PTRACE_TRACEME", errno);
		raise(SIGSTOP);
	}
	/* Both sides start together: neither times the other's fork. */
	atomic_fetch_add(&ctl->ready, 1);
	while (atomic_load(&ctl->ready) < c->nprocs)
		;
	t0 = bench_now_ns();
	c->fn(c->arg, side, iters);
	if (side == 0) {
		ctl->wall_ns = bench_now_ns() - t0;
		if (!ctl->elapsed_ns)
			ctl->elapsed_ns = ctl->wall_ns;
	}
	_exit(0);
}

int bench_open_proc_stat(_Atomic int *pid)
{
	char path[64];
	int fd;

	while (!atomic_load(pid))
		;
	snprintf(path, sizeof(path), "/proc/%d/stat", atomic_load(pid));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		bench_die(path, errno);
	return fd;
}

int bench_proc_asleep(int fd)
{
	char buf[512], *p;
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);

	if (n <= 0)
		bench_die("read /proc/PID/stat", n ? errno : EIO);
	buf[n] = 0;
	/* the state follows the command name, which may hold ')' itself */
	p = strrchr(buf, ')');
	return p && (p[2] == 'S' || p[2] == 'D');
}

void bench_set_result_ns(uint64_t ns)
{
	ctl->elapsed_ns = ns ? ns : 1;
}

/* Short names for the syscalls the cases may make. */
static const char *sysname(long nr)
{
	switch (nr) {
	case SYS_read: return "read";
	case SYS_write: return "write";
	case SYS_ioctl: return "ioctl";
	case SYS_futex: return "futex";
	case SYS_gettid: return "gettid";
	case SYS_getpid: return "getpid";
	case SYS_sched_yield: return "sched_yield";
	case SYS_nanosleep: return "nanosleep";
	case SYS_clock_nanosleep: return "clock_nanosleep";
#ifdef SYS_futex_waitv
	case SYS_futex_waitv: return "futex_waitv";
#endif
	default: return NULL;
	}
}

#define MAX_NRS 8
struct sc_count {
	long total;
	long nr[MAX_NRS];
	long n[MAX_NRS];
};

static void sc_add(struct sc_count *sc, long nr)
{
	int i;

	sc->total++;
	for (i = 0; i < MAX_NRS; i++) {
		if (sc->n[i] && sc->nr[i] == nr) {
			sc->n[i]++;
			return;
		}
		if (!sc->n[i]) {
			sc->nr[i] = nr;
			sc->n[i] = 1;
			return;
		}
	}
}

/*
 * Fork @c's sides, wait for them; side 0's elapsed time in ns. With @sc the
 * sides are traced and every syscall entry is counted. Voluntary context
 * switches of the sides are added to *@csw.
 */
static uint64_t run_case(struct bench_case *c, uint64_t iters,
			 struct sc_count *sc, long *csw)
{
	struct rusage ru0, ru1;
	pid_t pids[2] = { 0, 0 };
	int side, left, failed = 0;

	if (c->reset)
		c->reset(c->arg);
	atomic_store(&ctl->ready, 0);
	ctl->elapsed_ns = 0;
	ctl->wall_ns = 0;
	getrusage(RUSAGE_CHILDREN, &ru0);
	for (side = 0; side < c->nprocs; side++) {
		pids[side] = fork();
		if (pids[side] < 0)
			bench_die("fork", errno);
		if (pids[side] == 0)
			side_main(c, side, iters, sc != NULL);
	}
	for (left = c->nprocs; left > 0;) {
		int st, sig = 0;
		pid_t pid = waitpid(-1, &st, __WALL);

		if (pid < 0)
			bench_die("waitpid", errno);
		if (WIFEXITED(st) || WIFSIGNALED(st)) {
			left--;
			if (!WIFEXITED(st) || WEXITSTATUS(st)) {
				failed = 1;
				/* the other side would wait for this one forever */
				for (side = 0; side < c->nprocs; side++)
					if (pids[side] != pid)
						kill(pids[side], SIGKILL);
			}
			continue;
		}
		if (!WIFSTOPPED(st))
			continue;
		if (WSTOPSIG(st) == (SIGTRAP | 0x80)) {
			struct __ptrace_syscall_info si;

			if (ptrace(PTRACE_GET_SYSCALL_INFO, pid, sizeof(si), &si) > 0 &&
			    si.op == PTRACE_SYSCALL_INFO_ENTRY)
				sc_add(sc, (long)si.entry.nr);
		} else if (WSTOPSIG(st) == SIGSTOP && sc) {
			/* the side's own raise(SIGSTOP): start tracing syscalls */
			ptrace(PTRACE_SETOPTIONS, pid, NULL,
			       (void *)(long)(PTRACE_O_TRACESYSGOOD | PTRACE_O_EXITKILL));
		} else {
			sig = WSTOPSIG(st);
		}
		ptrace(PTRACE_SYSCALL, pid, NULL, (void *)(long)sig);
	}
	if (failed) {
		fprintf(stderr, "error: a side of '%s' failed\n", c->name);
		exit(1);
	}
	getrusage(RUSAGE_CHILDREN, &ru1);
	if (csw)
		*csw += ru1.ru_nvcsw - ru0.ru_nvcsw;
	return ctl->elapsed_ns;
}

/*
 * Syscalls per op: (count over n ops - count over 0 ops) / n, exact; the
 * detail says how many of which over the n ops, e.g. "400 in 200 ops: futex 400".
 */
static void count_syscalls(struct bench_case *c, uint64_t n)
{
	struct sc_count base = { 0 }, sc = { 0 };
	char *s = c->syscall_detail;
	size_t room = sizeof(c->syscall_detail);
	int i, j, w, first = 1;

	run_case(c, 0, &base, NULL);
	run_case(c, n, &sc, NULL);
	c->syscalls = (double)(sc.total - base.total) / (double)n;
	w = snprintf(s, room, "%ld in %llu ops", sc.total - base.total,
		     (unsigned long long)n);
	for (i = 0; i < MAX_NRS && sc.n[i] && w > 0 && (size_t)w < room; i++) {
		long extra = sc.n[i];
		const char *name = sysname(sc.nr[i]);

		for (j = 0; j < MAX_NRS; j++)
			if (base.n[j] && base.nr[j] == sc.nr[i])
				extra -= base.n[j];
		if (extra <= 0)
			continue;
		s += w;
		room -= (size_t)w;
		w = name ? snprintf(s, room, "%s %s %ld", first ? ":" : ",", name, extra)
			 : snprintf(s, room, "%s #%ld %ld", first ? ":" : ",", sc.nr[i], extra);
		first = 0;
	}
}

/* ---- the probe --------------------------------------------------------- */

/* Cache-line ping-pong: side 0 writes odd values, side 1 answers even ones. */
static void probe_fn(void *arg, int side, uint64_t iters)
{
	_Atomic uint32_t *line = arg;
	uint32_t i;

	for (i = 0; i < iters; i++) {
		if (side == 0) {
			atomic_store_explicit(line, 2 * i + 1, memory_order_release);
			while (atomic_load_explicit(line, memory_order_acquire) != 2 * i + 2)
				;
		} else {
			while (atomic_load_explicit(line, memory_order_acquire) != 2 * i + 1)
				;
			atomic_store_explicit(line, 2 * i + 2, memory_order_release);
		}
	}
}

static void probe_reset(void *arg)
{
	atomic_store((_Atomic uint32_t *)arg, 0);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median(const double *v, int n)
{
	double s[BENCH_MAX_ROUNDS];

	memcpy(s, v, sizeof(*v) * (size_t)n);
	qsort(s, (size_t)n, sizeof(*s), cmp_double);
	return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

/* One-way cache-line latency in ns between the two pinned CPUs, or -1. */
static double probe(void)
{
	static void *line;
	struct bench_case c = {
		.name = "probe", .nprocs = 2, .fn = probe_fn, .reset = probe_reset,
	};
	double v[PROBE_SAMPLES];
	int i;

	if (ncpus < 2)
		return -1;	/* spinning on one CPU measures the scheduler */
	if (!line)
		line = bench_shared_page();
	c.arg = line;
	for (i = 0; i < PROBE_SAMPLES; i++)
		v[i] = (double)run_case(&c, PROBE_ITERS, NULL, NULL) / PROBE_ITERS / 2;
	return median(v, PROBE_SAMPLES);
}

/* ---- other processes' CPU use -------------------------------------------- */

struct cpu_snap {
	unsigned long long busy, total, steal, ours;	/* clock ticks */
};

static void cpu_snap(struct cpu_snap *s)
{
	unsigned long long v[8] = { 0 }, ut, st, cut, cst;
	char buf[1024], *p;
	FILE *f;
	size_t n;

	memset(s, 0, sizeof(*s));
	f = fopen("/proc/stat", "r");
	if (!f || fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu",
			 &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]) < 7)
		bench_die("read /proc/stat", f ? EIO : errno);
	fclose(f);
	/* user nice system idle iowait irq softirq steal (guest is in user) */
	s->busy = v[0] + v[1] + v[2] + v[5] + v[6];
	s->total = s->busy + v[3] + v[4] + v[7];
	s->steal = v[7];

	/* Our own time and our waited-for children's: utime stime cutime cstime. */
	f = fopen("/proc/self/stat", "r");
	if (!f)
		bench_die("open /proc/self/stat", errno);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	p = strrchr(buf, ')');	/* comm may contain spaces */
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %llu %llu",
			 &ut, &st, &cut, &cst) != 4)
		bench_die("parse /proc/self/stat", EINVAL);
	s->ours = ut + st + cut + cst;
}

/* Percent of all CPUs' time used by others between @a and @b; *steal too. */
static double others_pct(const struct cpu_snap *a, const struct cpu_snap *b,
			 double *steal)
{
	double total = (double)(b->total - a->total);
	double others = (double)(b->busy - a->busy) - (double)(b->ours - a->ours);

	if (total <= 0)
		return *steal = 0, 0;
	*steal = 100.0 * (double)(b->steal - a->steal) / total;
	return others > 0 ? 100.0 * others / total : 0;
}

static uint64_t scaled(uint64_t iters)
{
	uint64_t n = (uint64_t)((double)iters * scale);

	return n ? n : 1;
}

/*
 * Warm @c up and choose its ops per run: about RUN_TARGET_NS (times SCALE)
 * of work, at most its iters (times SCALE). A blocking round trip costs
 * 60 us on the host and milliseconds under a busy QEMU: fixed counts would
 * make the VM tables take many minutes.
 */
static uint64_t calibrate(struct bench_case *c)
{
	uint64_t max = scaled(c->iters), n = 8;
	double target = RUN_TARGET_NS * scale, ns;

	for (;;) {
		run_case(c, n, NULL, NULL);
		ns = (double)(ctl->wall_ns ? ctl->wall_ns : 1);
		if (ns >= target / 10 || n >= max)
			break;
		n *= 4;
	}
	n = (uint64_t)((double)n * target / ns);
	return n < RUN_MIN_ITERS ? RUN_MIN_ITERS : n > max ? max : n;
}

/* ---- the table ----------------------------------------------------------- */

static struct bench_case *find_peer(struct bench_table *t, const char *name)
{
	int i;

	for (i = 0; name && i < t->ncases; i++)
		if (!strcmp(t->cases[i].name, name))
			return &t->cases[i];
	return NULL;
}

void bench_table(struct bench_table *t)
{
	double div = strcmp(t->unit, "us") ? 1.0 : 1000.0;
	double p0, p1, worst = 0, steal, rsteal, busy;
	struct cpu_snap s0, s1, r0, r1;
	long csw[16] = { 0 };
	char unit[16];
	int r, i;

	if (t->ncases > 16)
		bench_die("too many cases in one table", EINVAL);
	printf("\n== %s ==\n", t->title);
	for (i = 0; i < t->ncases; i++) {
		struct bench_case *c = &t->cases[i];
		uint64_t n;

		c->run_iters = calibrate(c);
		n = c->run_iters / 10;
		c->syscalls = -1;
		c->syscall_detail[0] = 0;
		if (c->count_syscalls)
			count_syscalls(c, n < 50 ? 50 : n > 10000 ? 10000 : n);
	}

	p0 = probe();
	cpu_snap(&s0);
	for (r = 0; r < rounds; r++) {
		double rb;

		cpu_snap(&r0);
		for (i = 0; i < t->ncases; i++) {
			struct bench_case *c = &t->cases[i];
			uint64_t n = c->run_iters;

			c->ns[r] = (double)run_case(c, n, NULL, &csw[i]) / (double)n;
			if (verbose)
				printf("round %d: %-42s %12.1f ns/op\n", r, c->name, c->ns[r]);
		}
		cpu_snap(&r1);
		rb = others_pct(&r0, &r1, &rsteal);
		if (rb > worst)
			worst = rb;
	}
	cpu_snap(&s1);
	p1 = probe();
	busy = others_pct(&s0, &s1, &steal);

	if (ncpus >= 2)
		printf("side 0 pinned to CPU %d, side 1 to CPU %d; ", cpus[0], cpus[1]);
	else
		printf("one CPU only: both sides share it; ");
	printf("%d rounds, cases interleaved in each; one op = %s\n", rounds, t->op);
	if (p0 < 0) {
		printf("probe: not run (one CPU)\n");
	} else {
		double d = (p1 > p0 ? p1 - p0 : p0 - p1) / (p1 < p0 ? p1 : p0);

		printf("probe (cache-line ping-pong, one-way): before %.0f ns, after %.0f ns -> %s",
		       p0, p1, d > PROBE_AGREE ? "DISAGREE" : "agree");
		if (d > PROBE_AGREE)
			printf(" (%.0f%% apart: the machine changed mode, rerun)", 100 * d);
		printf("\n");
	}
	printf("other processes' CPU during the rounds: %.1f%% of all CPUs (worst round %.1f%%), steal %.1f%% -> %s\n",
	       busy, worst, steal, busy > BUSY_LIMIT ? "BUSY, rerun" :
	       worst > BUSY_LIMIT ? "ok overall, some rounds BUSY" : "ok");

	snprintf(unit, sizeof(unit), "median %s", t->unit);
	printf("%-42s %9s %17s  %-30s %6s %13s %8s %8s %s\n", "case",
	       unit, "min-max", "peer", "ratio", "ratio min-max", "ops/run", "vcsw/op", "syscalls/op");
	for (i = 0; i < t->ncases; i++) {
		struct bench_case *c = &t->cases[i], *pc = find_peer(t, c->peer);
		double ratio[BENCH_MAX_ROUNDS], lo = 1e300, hi = 0, rlo = 1e300, rhi = 0;
		char mm[40], rmed[16] = "-", rmm[40] = "-", scs[128] = "-";

		for (r = 0; r < rounds; r++) {
			lo = c->ns[r] < lo ? c->ns[r] : lo;
			hi = c->ns[r] > hi ? c->ns[r] : hi;
			if (pc) {
				ratio[r] = c->ns[r] / pc->ns[r];
				rlo = ratio[r] < rlo ? ratio[r] : rlo;
				rhi = ratio[r] > rhi ? ratio[r] : rhi;
			}
		}
		snprintf(mm, sizeof(mm), "%.1f-%.1f", lo / div, hi / div);
		if (pc) {
			snprintf(rmed, sizeof(rmed), "%.2f", median(ratio, rounds));
			snprintf(rmm, sizeof(rmm), "%.2f-%.2f", rlo, rhi);
		}
		if (c->syscalls >= 0)
			snprintf(scs, sizeof(scs), "%.2f [%s]", c->syscalls,
				 c->syscall_detail);
		printf("%-42s %9.1f %17s  %-30s %6s %13s %8llu %8.2f %s\n", c->name,
		       median(c->ns, rounds) / div, mm,
		       pc ? pc->name : "(baseline)", rmed, rmm,
		       (unsigned long long)c->run_iters,
		       (double)csw[i] / (double)(c->run_iters * (uint64_t)rounds), scs);
	}
	for (i = 0; i < 8 && t->notes[i]; i++)
		printf("note: %s\n", t->notes[i]);
}
