// SPDX-License-Identifier: MIT
/*
 * pingpong: two unrelated processes talk through a named shmpool pool.
 *
 * "pingpong" creates the pool "demo", writes a ping into it and starts a
 * fresh copy of itself, "pingpong --peer", which shares nothing with it but
 * the pool's name. The peer opens the pool, reads the ping and answers; the
 * first process reads the pong, removes the name and exits 0.
 *
 * Each side sleeps on an event count in the pool (a doorbell underneath)
 * until the other side has written; a signal makes a wake syscall only if
 * somebody announced a sleep.
 */
#define _GNU_SOURCE
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <shmpool.h>
#include <shmpool_sync.h>

#define POOL_NAME	"demo"
#define TIMEOUT_MS	5000

enum { EMPTY, PING, PONG };

/* What lives at offset 0 of the pool: offsets and values, no pointers. */
struct mailbox {
	_Atomic uint32_t state;	/* EMPTY -> PING -> PONG */
	struct shmpool_event changed;	/* signalled after each state change */
	char text[248];
};

/* Wait until the mailbox says @state; 0 on success, -1 after TIMEOUT_MS. */
static int wait_for(struct shmpool *p, struct mailbox *mb, uint32_t state)
{
	struct timespec deadline;
	uint32_t key;

	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += TIMEOUT_MS / 1000;
	for (;;) {
		/* acquire: pairs with the sender's release, so text is complete */
		if (atomic_load_explicit(&mb->state, memory_order_acquire) == state)
			return 0;
		/* Announce the sleep, then look again before sleeping. */
		key = shmpool_event_prepare_wait(&mb->changed);
		if (atomic_load_explicit(&mb->state, memory_order_acquire) == state)
			return 0;
		if (shmpool_event_timedwait(p, &mb->changed, key, &deadline) == -ETIMEDOUT)
			return -1;
	}
}

/* Fill the mailbox, publish it (release orders text before state), ring. */
static void send_msg(struct shmpool *p, struct mailbox *mb, uint32_t state,
		     const char *text)
{
	snprintf(mb->text, sizeof(mb->text), "%s", text);
	atomic_store_explicit(&mb->state, state, memory_order_release);
	shmpool_event_signal(p, &mb->changed);
}

static struct mailbox *mailbox(struct shmpool *p)
{
	return shmpool_ptr(p, 0, sizeof(struct mailbox));
}

static int peer(void)
{
	struct shmpool *p;
	struct mailbox *mb;
	char reply[128];
	int ret;

	ret = shmpool_open(POOL_NAME, 0, &p);
	if (ret) {
		fprintf(stderr, "peer: open %s: %s\n", POOL_NAME, strerror(-ret));
		return 1;
	}
	mb = mailbox(p);
	if (wait_for(p, mb, PING)) {
		fprintf(stderr, "peer: no ping within %d ms\n", TIMEOUT_MS);
		shmpool_close(p);
		return 1;
	}
	printf("peer   (pid %d): got \"%s\"\n", (int)getpid(), mb->text);
	snprintf(reply, sizeof(reply), "pong from pid %d", (int)getpid());
	send_msg(p, mb, PONG, reply);
	shmpool_close(p);
	return 0;
}

/* Start "<this program> --peer" as a new process image. */
static pid_t spawn_peer(void)
{
	pid_t pid;

	fflush(stdout);	/* keep the output in order when piped */
	pid = fork();
	if (pid == 0) {
		execl("/proc/self/exe", "pingpong", "--peer", (char *)NULL);
		perror("pingpong: exec /proc/self/exe");
		_exit(127);
	}
	return pid;
}

static int creator(void)
{
	struct shmpool *p;
	struct mailbox *mb;
	char ping[128];
	int ret, status, ok = 0;
	pid_t pid;

	ret = shmpool_create(POOL_NAME, (size_t)sysconf(_SC_PAGESIZE), 0600,
			     SHMPOOL_EXCL, &p);
	if (ret) {
		fprintf(stderr, "pingpong: create %s: %s%s\n", POOL_NAME,
			strerror(-ret), ret == -EEXIST ?
			" (another pingpong running, or one that crashed)" : "");
		return 1;
	}
	printf("pingpong: pool \"%s\", %zu bytes, %s backend\n", POOL_NAME,
	       shmpool_size(p), shmpool_backend_name(shmpool_backend(p)));

	mb = mailbox(p);
	snprintf(ping, sizeof(ping), "ping from pid %d", (int)getpid());
	send_msg(p, mb, PING, ping);

	pid = spawn_peer();
	if (pid < 0) {
		perror("pingpong: fork");
	} else if (wait_for(p, mb, PONG)) {
		fprintf(stderr, "pingpong: no pong within %d ms\n", TIMEOUT_MS);
	} else {
		printf("creator (pid %d): got \"%s\"\n", (int)getpid(), mb->text);
		ok = 1;
	}
	if (pid > 0 && (waitpid(pid, &status, 0) != pid ||
			!WIFEXITED(status) || WEXITSTATUS(status))) {
		fprintf(stderr, "pingpong: peer failed\n");
		ok = 0;
	}

	ret = shmpool_unlink(POOL_NAME, shmpool_backend(p));
	if (ret) {
		fprintf(stderr, "pingpong: unlink: %s\n", strerror(-ret));
		ok = 0;
	}
	shmpool_close(p);
	if (ok)
		printf("pingpong: OK\n");
	return ok ? 0 : 1;
}

int main(int argc, char **argv)
{
	if (argc == 2 && !strcmp(argv[1], "--peer"))
		return peer();
	if (argc != 1) {
		fprintf(stderr, "usage: %s\n", argv[0]);
		return 2;
	}
	return creator();
}
