// SPDX-License-Identifier: MIT
/*
 * offsets: a linked data structure in shared memory holds offsets, never
 * pointers.
 *
 * A pool is mapped at a different address in each process (and at a
 * different address by each handle of one process), so a pointer stored in
 * the pool is meaningless to everyone else. Store pool offsets instead and
 * turn them into pointers at the point of use.
 *
 * Shows: shmpool_alloc() returning an offset, shmpool_heap_ptr() /
 * shmpool_ptr() turning an offset into a bounds-checked pointer (NULL for
 * an offset outside the pool, which is what a corrupt or hostile link would
 * give), shmpool_off() going back, and named objects as the roots from
 * which other processes find the data (shmpool_obj_create()/_find()).
 *
 * The program builds a list of NODES nodes in a named pool, opens the pool
 * a second time (a second mapping, at another address) and walks the list
 * through it, then starts "offsets --walk NAME", which walks it in a
 * process of its own. Both must find every node, in order.
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdint.h>

#include <shmpool.h>
#include <shmpool_alloc.h>

#include "example.h"

#define POOL_BYTES	(256U << 10)
#define NODES		100

struct node {
	uint64_t next;		/* pool offset of the next node; 0 ends the list */
	uint32_t value;
	char label[20];
};

struct root {
	uint64_t head;		/* pool offset of the first node */
	uint32_t count;
};

/* Walk the list starting at the named object "root"; 0 if it is intact. */
static int walk(struct shmpool_heap *h, const char *who)
{
	struct shmpool_obj obj;
	struct root *root;
	struct node *n;
	uint64_t off;
	uint32_t i = 0;
	int ret;

	ret = shmpool_obj_find(h, "root", &obj);
	if (ret)
		return ret;
	root = shmpool_heap_ptr(h, obj.off, sizeof(*root));
	for (off = root->head; off; off = n->next, i++) {
		/* Never trust an offset read from shared memory: bounds-check
		 * it, and bound the walk. */
		n = shmpool_heap_ptr(h, off, sizeof(*n));
		if (!n || i >= root->count || n->value != i)
			return -EUCLEAN;
	}
	printf("%s: pool mapped at %p, walked %" PRIu32 " nodes\n", who,
	       shmpool_base(h->pool), i);
	return i == NODES ? 0 : -EUCLEAN;
}

static int walker(const char *name)
{
	struct shmpool_heap *h = NULL;
	struct shmpool *p;
	int ret;

	ret = shmpool_open(name, 0, &p);
	if (ret)
		return example_fail("walker", "open", ret);
	ret = shmpool_heap_open(p, 0, &h);
	if (!ret)
		ret = walk(h, "walker");
	shmpool_heap_close(h);
	shmpool_close(p);
	return ret ? example_fail("walker", "walk", ret) : 0;
}

static int build(struct shmpool_heap *h)
{
	struct shmpool_obj obj;
	struct root *root;
	struct node *n, *prev = NULL;
	uint64_t off;
	int i, ret;

	ret = shmpool_obj_create(h, "root", sizeof(*root), 0, &obj);
	if (ret != 1)
		return ret < 0 ? ret : -EEXIST;
	root = shmpool_heap_ptr(h, obj.off, sizeof(*root));
	for (i = 0; i < NODES; i++) {
		ret = shmpool_alloc(h, sizeof(*n), &off);
		if (ret)
			return ret;
		n = shmpool_heap_ptr(h, off, sizeof(*n));
		n->next = 0;
		n->value = (uint32_t)i;
		snprintf(n->label, sizeof(n->label), "node %d", i);
		/* Link by offset; shmpool_off(p, n) would give the same number. */
		if (prev)
			prev->next = off;
		else
			root->head = off;
		prev = n;
	}
	root->count = NODES;
	return 0;
}

int main(int argc, char **argv)
{
	struct shmpool_heap *h = NULL, *h2 = NULL;
	struct shmpool *p, *p2 = NULL;
	char name[SHMPOOL_NAME_MAX];
	int ret, ok = 0;

	if (argc == 3 && !strcmp(argv[1], "--walk"))
		return walker(argv[2]);

	example_name(name, sizeof(name), "offsets");
	ret = shmpool_create(name, POOL_BYTES, 0600, SHMPOOL_EXCL, &p);
	if (ret)
		return example_fail("offsets", "create pool", ret);
	ret = shmpool_heap_open(p, 0, &h);
	if (!ret)
		ret = build(h);
	/* A second handle: the same pool, mapped somewhere else. */
	if (!ret)
		ret = shmpool_open(name, 0, &p2);
	if (!ret)
		ret = shmpool_heap_open(p2, 0, &h2);
	if (ret) {
		example_fail("offsets", "build the list", ret);
		goto out;
	}
	printf("offsets: first mapping at %p, second at %p\n",
	       shmpool_base(p), shmpool_base(p2));
	if (shmpool_off(p, shmpool_base(p2)) != -EINVAL ||
	    shmpool_ptr(p, shmpool_size(p), 1) != NULL) {
		fprintf(stderr, "offsets: bounds checks let an outside address through\n");
		goto out;
	}
	ok = walk(h, "offsets (first mapping)") == 0 &&
	     walk(h2, "offsets (second mapping)") == 0;
	if (example_wait(example_spawn("offsets", "--walk", name, (char *)NULL),
			 "walker"))
		ok = 0;
out:
	shmpool_heap_close(h2);
	shmpool_close(p2);
	shmpool_heap_close(h);
	shmpool_unlink(name, (unsigned int)shmpool_backend(p));
	shmpool_close(p);
	printf("offsets: %s\n", ok ? "OK" : "FAILED");
	return ok ? 0 : 1;
}
