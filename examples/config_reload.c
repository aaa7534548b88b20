// SPDX-License-Identifier: MIT
/*
 * config_reload: a publisher changes a configuration; a reader in another
 * program sleeps until it changes and picks up each new version.
 *
 * Shows: a versioned config object (shmpool_config_open() with
 * SHMPOOL_CONFIG_CREATE), shmpool_config_publish() by one writer,
 * shmpool_config_wait() sleeping until the version moves past the one the
 * reader has, and shmpool_config_read() copying a consistent blob without
 * a lock: a reader never sees half of an update. A reader may skip
 * versions when several are published while it is busy; it always ends up
 * with the newest.
 *
 * "config_reload" creates the pool, heap and config "settings" with
 * version 1, starts "config_reload --reader NAME", waits until the reader
 * has read a version, then publishes VERSIONS more, the last one saying
 * "stop". The reader checks each blob against the version it came with.
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdint.h>

#include <shmpool.h>
#include <shmpool_alloc.h>
#include <shmpool_state.h>
#include <shmpool_sync.h>

#include "example.h"

#define POOL_BYTES	(256U << 10)
#define CAPACITY	256
#define VERSIONS	20

/* A named object beside the config: the reader says it is listening. */
struct hello {
	struct shmpool_sem reader_ready;
};

static void make_blob(char *buf, size_t len, uint64_t version, int last)
{
	snprintf(buf, len, "version=%" PRIu64 " threads=%" PRIu64 "%s",
		 version, version % 8 + 1, last ? " stop" : "");
}

static int reader(const char *name)
{
	struct timespec dl = example_deadline();
	struct shmpool_config *c = NULL;
	struct shmpool_heap *h = NULL;
	struct shmpool_obj obj;
	struct shmpool *p;
	struct hello *hi;
	char buf[CAPACITY], want[CAPACITY];
	uint64_t ver = 0, seen = 0;
	int ret, n, posted = 0;

	ret = shmpool_open(name, 0, &p);
	if (ret)
		return example_fail("reader", "open pool", ret);
	ret = shmpool_heap_open(p, 0, &h);
	if (!ret)
		ret = shmpool_config_open(h, "settings", 0, 0, &c);
	if (!ret)
		ret = shmpool_obj_find(h, "hello", &obj);
	while (!ret) {
		n = shmpool_config_read(c, buf, sizeof(buf) - 1, &ver);
		if (n < 0) {
			ret = n;
			break;
		}
		buf[n] = '\0';
		make_blob(want, sizeof(want), ver, strstr(buf, "stop") != NULL);
		if (strcmp(buf, want)) {
			fprintf(stderr, "reader: version %" PRIu64 " says \"%s\"\n", ver, buf);
			ret = -EBADMSG;
			break;
		}
		seen++;
		if (strstr(buf, "stop"))
			break;
		if (!posted) {
			hi = shmpool_heap_ptr(h, obj.off, sizeof(*hi));
			shmpool_sem_post(p, &hi->reader_ready);
			posted = 1;
		}
		/* Sleep until the version is no longer @ver. */
		ret = shmpool_config_wait(c, ver, &dl, NULL);
	}
	printf("reader: read %" PRIu64 " versions, the last %" PRIu64 ": \"%s\"\n",
	       seen, ver, ret ? strerror(-ret) : buf);
	shmpool_config_close(c);
	shmpool_heap_close(h);
	shmpool_close(p);
	return ret == 0 && ver == VERSIONS + 1 ? 0 : 1;
}

int main(int argc, char **argv)
{
	struct timespec dl = example_deadline(), gap = { 0, 20000000L };
	struct shmpool_config *c = NULL;
	struct shmpool_heap *h = NULL;
	char name[SHMPOOL_NAME_MAX], buf[CAPACITY];
	struct shmpool_obj obj;
	struct shmpool *p;
	struct hello *hi;
	uint64_t ver = 0;
	int i, ret, ok = 0;
	pid_t pid = -1;

	if (argc == 3 && !strcmp(argv[1], "--reader"))
		return reader(argv[2]);

	example_name(name, sizeof(name), "config");
	ret = shmpool_create(name, POOL_BYTES, 0600, SHMPOOL_EXCL, &p);
	if (ret)
		return example_fail("config_reload", "create pool", ret);
	ret = shmpool_heap_open(p, 0, &h);
	if (!ret)
		ret = shmpool_obj_create(h, "hello", sizeof(*hi), 0, &obj) == 1 ? 0 : -EEXIST;
	if (!ret)
		ret = shmpool_config_open(h, "settings", CAPACITY, SHMPOOL_CONFIG_CREATE, &c);
	if (!ret) {
		make_blob(buf, sizeof(buf), 1, 0);
		ret = shmpool_config_publish(c, buf, strlen(buf), &ver);
	}
	if (ret) {
		example_fail("config_reload", "set up", ret);
		goto out;
	}
	pid = example_spawn("config_reload", "--reader", name, (char *)NULL);
	hi = shmpool_heap_ptr(h, obj.off, sizeof(*hi));
	ret = shmpool_sem_timedwait(p, &hi->reader_ready, &dl);
	if (ret) {
		example_fail("config_reload", "waiting for the reader", ret);
		goto out;
	}
	for (i = 0; i < VERSIONS; i++) {
		/* Versions count publishes: this one will be ver + 1. */
		make_blob(buf, sizeof(buf), ver + 1, i == VERSIONS - 1);
		ret = shmpool_config_publish(c, buf, strlen(buf), &ver);
		if (ret) {
			example_fail("config_reload", "publish", ret);
			goto out;
		}
		nanosleep(&gap, NULL);	/* a reload now and then, not a flood */
	}
	printf("publisher: published versions 1 to %" PRIu64 "\n", ver);
	ok = 1;
out:
	if (pid > 0 && example_wait(pid, "reader"))
		ok = 0;
	shmpool_config_close(c);
	shmpool_heap_close(h);
	shmpool_unlink(name, (unsigned int)shmpool_backend(p));
	shmpool_close(p);
	printf("config_reload: %s\n", ok ? "OK" : "FAILED");
	return ok ? 0 : 1;
}
