// SPDX-License-Identifier: MIT
/*
 * pipeline: a producer, two workers and a config publisher share one pool,
 * and shmpoolctl shows what lives in it. The second half of `make demo`.
 *
 * "pipeline" creates the pool "pipeline" with a heap holding an MPMC ring
 * of jobs, a versioned config ("scale=N paused=0|1"), a cache of squares
 * and a tally, then starts fresh copies of itself in four roles, unrelated
 * processes that share nothing but the pool's name:
 *
 *   producer   queues 500 jobs (numbers) on the ring, blocking when full;
 *   worker x2  take jobs, look the square up in the cache (computing and
 *              caching it on a miss; 24 hot keys and some cold ones), multiply by the config's scale and
 *              add to the tally; they re-read the config when its version
 *              changes, and stop taking jobs while it says paused=1;
 *   publisher  publishes new scales while the workers run.
 *
 * Once the 500 jobs are done, the scenario pauses the workers, queues a
 * backlog of 20 jobs and runs `shmpoolctl ls` and `shmpoolctl stat
 * pipeline` while everyone is still attached. Then it resumes the workers,
 * shuts the ring's producer end down (the workers drain it and get -EPIPE),
 * waits for them and removes the pool.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <shmpool.h>
#include <shmpool_alloc.h>
#include <shmpool_cache.h>
#include <shmpool_ring.h>
#include <shmpool_state.h>

#define POOL_NAME	"pipeline"
#define POOL_BYTES	(2U << 20)
#define JOBS		500
#define BACKLOG		20
#define TIMEOUT_S	20

/* The named object "tally": counters every worker adds to. */
struct tally {
	_Atomic uint64_t done;
	_Atomic uint64_t sum;
};

struct ctx {
	struct shmpool *p;
	struct shmpool_heap *h;
	struct shmpool_ring *jobs;
	struct shmpool_config *cfg;
	struct shmpool_cache *squares;
	struct tally *tally;
};

static struct timespec deadline_in(int secs)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += secs;
	return ts;
}

static void msleep(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

static int die(const char *what, int ret)
{
	fprintf(stderr, "pipeline: %s: %s\n", what, strerror(ret < 0 ? -ret : ret));
	exit(1);
}

/* Open (create = 1: create) everything the roles share. */
static void open_all(struct ctx *c, int create)
{
	struct shmpool_obj obj;
	int ret;

	ret = create ? shmpool_create(POOL_NAME, POOL_BYTES, 0600, SHMPOOL_EXCL, &c->p)
		     : shmpool_open(POOL_NAME, 0, &c->p);
	if (ret)
		die("pool", ret);
	ret = shmpool_heap_open(c->p, 0, &c->h);
	if (ret)
		die("heap", ret);
	ret = create ? shmpool_ring_create(c->h, "jobs", SHMPOOL_RING_MPMC, 64, 8, 0, &c->jobs)
		     : shmpool_ring_open(c->h, "jobs", SHMPOOL_RING_MPMC, 8, &c->jobs);
	if (ret < 0)
		die("ring", ret);
	ret = shmpool_config_open(c->h, "settings", 64, create ? SHMPOOL_CONFIG_CREATE : 0, &c->cfg);
	if (ret)
		die("config", ret);
	ret = shmpool_cache_open(c->h, "squares", 32, create ? SHMPOOL_CACHE_CREATE : 0, &c->squares);
	if (ret)
		die("cache", ret);
	ret = create ? shmpool_obj_create(c->h, "tally", sizeof(struct tally), 0, &obj)
		     : shmpool_obj_find(c->h, "tally", &obj);
	if (ret < 0)
		die("tally", ret);
	c->tally = shmpool_heap_ptr(c->h, obj.off, sizeof(struct tally));
}

static void close_all(struct ctx *c)
{
	shmpool_ring_close(c->jobs);
	shmpool_config_close(c->cfg);
	shmpool_cache_close(c->squares);
	shmpool_heap_close(c->h);
	shmpool_close(c->p);
}

static void publish(struct ctx *c, int scale, int paused)
{
	char buf[64];
	uint64_t ver;
	int n = snprintf(buf, sizeof(buf), "scale=%d paused=%d", scale, paused);
	int ret = shmpool_config_publish(c->cfg, buf, (size_t)n, &ver);

	if (ret)
		die("publish", ret);
	printf("publisher: config version %llu: %s\n", (unsigned long long)ver, buf);
	fflush(stdout);
}

static int producer(struct ctx *c)
{
	struct timespec dl = deadline_in(TIMEOUT_S);
	uint64_t i;
	int ret;

	for (i = 1; i <= JOBS; i++) {
		ret = shmpool_ring_enqueue_wait(c->jobs, &i, 1, 0, &dl);
		if (ret != 1)
			die("enqueue", ret);
	}
	printf("producer: queued %d jobs\n", JOBS);
	return 0;
}

static int publisher(struct ctx *c)
{
	int scale;

	for (scale = 2; scale <= 3; scale++) {
		msleep(20);
		publish(c, scale, 0);
	}
	return 0;
}

static int worker(struct ctx *c, int id)
{
	uint64_t seen = 0, ver, job, sq, n = 0;
	int scale = 1, paused = 0, ret;
	char buf[64];

	for (;;) {
		struct timespec dl = deadline_in(TIMEOUT_S);

		/* a new config? one load while it has not changed */
		while (shmpool_config_version(c->cfg) != seen || paused) {
			if (shmpool_config_version(c->cfg) == seen) {
				/* paused: sleep until the next version */
				ret = shmpool_config_wait(c->cfg, seen, &dl, NULL);
				if (ret)
					die("config wait", ret);
			}
			ret = shmpool_config_read(c->cfg, buf, sizeof(buf) - 1, &ver);
			if (ret < 0)
				die("config read", ret);
			buf[ret] = '\0';
			sscanf(buf, "scale=%d paused=%d", &scale, &paused);
			seen = ver;
		}
		ret = shmpool_ring_dequeue_wait(c->jobs, &job, 1, 0, &dl);
		if (ret == -EPIPE)
			break;		/* shut down and drained */
		if (ret != 1)
			die("dequeue", ret);
		/*
		 * The cache: squares, computed by whoever misses. 24 keys are
		 * hot; every 8th job is a cold key, which evicts (CLOCK spares
		 * the hot keys that were got since the hand last passed).
		 */
		job = job % 8 ? job % 24 : 1000 + job;
		if (shmpool_cache_get(c->squares, &job, sizeof(job), &sq, sizeof(sq)) != sizeof(sq)) {
			sq = job * job;
			shmpool_cache_put(c->squares, &job, sizeof(job), &sq, sizeof(sq), 0);
		}
		/* relaxed: counters; the scenario reads them after the jobs are done */
		atomic_fetch_add_explicit(&c->tally->sum, sq * (uint64_t)scale, memory_order_relaxed);
		atomic_fetch_add_explicit(&c->tally->done, 1, memory_order_release);
		n++;
	}
	printf("worker %d: did %llu jobs\n", id, (unsigned long long)n);
	return 0;
}

static pid_t start(const char *role, const char *arg)
{
	pid_t pid;

	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		/* a fresh program, not a fork that shares our mappings */
		execl("/proc/self/exe", "pipeline", "--role", role, arg, (char *)NULL);
		_exit(127);
	}
	return pid;
}

static int wait_ok(pid_t pid)
{
	int st;

	return waitpid(pid, &st, 0) == pid && WIFEXITED(st) && !WEXITSTATUS(st) ? 0 : -1;
}

static void show(const char *cmd, const char *arg)
{
	pid_t pid;
	int st;

	printf("\n$ shmpoolctl %s%s%s\n", cmd, arg ? " " : "", arg ? arg : "");
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		execlp("shmpoolctl", "shmpoolctl", cmd, arg, (char *)NULL);
		printf("(shmpoolctl is not on PATH: make builds build/tools/shmpoolctl)\n");
		_exit(127);
	}
	waitpid(pid, &st, 0);
}

static int scenario(void)
{
	pid_t prod, pub, w[2];
	struct ctx c;
	uint64_t i, t0;
	int ret = 0;

	shmpool_unlink(POOL_NAME, 0);	/* a leftover of an interrupted run */
	open_all(&c, 1);
	publish(&c, 1, 0);
	w[0] = start("worker", "1");
	w[1] = start("worker", "2");
	pub = start("publisher", NULL);
	prod = start("producer", NULL);
	if (wait_ok(prod) || wait_ok(pub))
		die("producer or publisher failed", EIO);
	/* acquire: pairs with the workers' release increments */
	for (t0 = 0; atomic_load_explicit(&c.tally->done, memory_order_acquire) < JOBS; t0++) {
		if (t0 > TIMEOUT_S * 100)
			die("the workers did not finish", ETIMEDOUT);
		msleep(10);
	}
	printf("scenario: %d jobs done, sum %llu\n", JOBS,
	       (unsigned long long)atomic_load(&c.tally->sum));

	/* pause the workers and leave a backlog, so that stat has something to show */
	publish(&c, 3, 1);
	for (i = 0; i < BACKLOG; i++)
		shmpool_ring_enqueue_bulk(c.jobs, &i, 1);
	msleep(200);
	show("ls", NULL);
	show("stat", POOL_NAME);
	printf("\n");

	publish(&c, 3, 0);
	shmpool_ring_shutdown(c.jobs, SHMPOOL_RING_PROD);
	if (wait_ok(w[0]) || wait_ok(w[1]))
		ret = 1;
	printf("scenario: %llu jobs done in all\n",
	       (unsigned long long)atomic_load(&c.tally->done));
	close_all(&c);
	shmpool_unlink(POOL_NAME, 0);
	return ret;
}

int main(int argc, char **argv)
{
	struct ctx c;
	int ret;

	if (argc == 1)
		return scenario();
	if (argc < 3 || strcmp(argv[1], "--role")) {
		fprintf(stderr, "usage: pipeline [--role producer|worker N|publisher]\n");
		return 2;
	}
	open_all(&c, 0);
	if (!strcmp(argv[2], "producer"))
		ret = producer(&c);
	else if (!strcmp(argv[2], "publisher"))
		ret = publisher(&c);
	else if (!strcmp(argv[2], "worker") && argc == 4)
		ret = worker(&c, atoi(argv[3]));
	else
		ret = 2;
	close_all(&c);
	return ret;
}
