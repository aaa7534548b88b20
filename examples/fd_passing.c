// SPDX-License-Identifier: MIT
/*
 * fd_passing: hand an anonymous pool to another program over a Unix socket.
 *
 * Shows: shmpool_fd() to get the fd behind a pool, sending it with
 * SCM_RIGHTS, and shmpool_adopt_fd() on the receiving side, which maps the
 * pool and owns the fd from then on. No name is ever created, so nobody
 * else can open the pool: only a process that was given the fd can.
 *
 * "fd_passing" creates an anonymous pool, writes a request into it, and
 * starts "fd_passing --peer FD" with one end of a socket pair as FD. It
 * sends the pool's fd over the socket; the peer adopts it, reads the
 * request, writes the answer in place and says so with one byte back.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <sys/socket.h>

#include <shmpool.h>

#include "example.h"

struct box {
	char request[48];
	char answer[80];
};

/* Send @fd over the socket @sock with one data byte. */
static int send_fd(int sock, int fd)
{
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} u;
	char byte = 'P';
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = u.buf, .msg_controllen = sizeof(u.buf),
	};
	struct cmsghdr *c;

	memset(&u, 0, sizeof(u));
	c = CMSG_FIRSTHDR(&msg);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	return sendmsg(sock, &msg, 0) == 1 ? 0 : -errno;
}

/* Receive one fd sent by send_fd(); the fd or -errno. */
static int recv_fd(int sock)
{
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} u;
	char byte;
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = u.buf, .msg_controllen = sizeof(u.buf),
	};
	struct cmsghdr *c;
	int fd;

	if (recvmsg(sock, &msg, MSG_CMSG_CLOEXEC) != 1)
		return -EPROTO;
	c = CMSG_FIRSTHDR(&msg);
	if (!c || c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS ||
	    c->cmsg_len != CMSG_LEN(sizeof(int)))
		return -EPROTO;
	memcpy(&fd, CMSG_DATA(c), sizeof(int));
	return fd;
}

static int peer(int sock)
{
	struct shmpool *p;
	struct box *b;
	int fd, ret;

	fd = recv_fd(sock);
	if (fd < 0)
		return example_fail("peer", "receive the pool fd", fd);
	ret = shmpool_adopt_fd(fd, 0, &p);
	if (ret) {
		close(fd);	/* on error the fd is still ours */
		return example_fail("peer", "adopt", ret);
	}
	b = shmpool_ptr(p, 0, sizeof(*b));
	printf("peer: adopted a %zu-byte pool, request \"%.47s\"\n",
	       shmpool_size(p), b->request);
	snprintf(b->answer, sizeof(b->answer), "answer to \"%.47s\"", b->request);
	shmpool_close(p);	/* closes the fd too */
	/* Our mapping's writes are in the pool: tell the other side. */
	return write(sock, "A", 1) == 1 ? 0 : 1;
}

int main(int argc, char **argv)
{
	struct shmpool *p;
	struct box *b;
	char arg[16], byte;
	int sv[2], ret, ok = 0;
	pid_t pid;

	if (argc == 3 && !strcmp(argv[1], "--peer"))
		return peer(atoi(argv[2]));

	ret = shmpool_create_anon((size_t)sysconf(_SC_PAGESIZE), 0, &p);
	if (ret)
		return example_fail("fd_passing", "create_anon", ret);
	b = shmpool_ptr(p, 0, sizeof(*b));
	snprintf(b->request, sizeof(b->request), "what is 6 * 7?");

	/* sv[1] goes to the peer (no CLOEXEC, so it survives exec). */
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv))
		return example_fail("fd_passing", "socketpair", errno);
	snprintf(arg, sizeof(arg), "%d", sv[1]);
	pid = example_spawn("fd_passing", "--peer", arg, (char *)NULL);
	close(sv[1]);

	ret = send_fd(sv[0], shmpool_fd(p));	/* the pool keeps its own fd */
	if (ret)
		example_fail("fd_passing", "send the pool fd", ret);
	else if (read(sv[0], &byte, 1) != 1)
		fprintf(stderr, "fd_passing: the peer did not answer\n");
	else
		ok = strcmp(b->answer, "answer to \"what is 6 * 7?\"") == 0;
	printf("fd_passing: the pool now says \"%s\"\n", b->answer);
	if (example_wait(pid, "peer"))
		ok = 0;
	close(sv[0]);
	shmpool_close(p);
	printf("fd_passing: %s\n", ok ? "OK" : "FAILED");
	return ok ? 0 : 1;
}
