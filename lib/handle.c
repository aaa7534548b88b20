// SPDX-License-Identifier: MIT
/*
 * Multi-pool handles (include/shmpool_state.h): the process's table of
 * attached pools, read under liburcu (urcu-memb) read-side sections.
 *
 * The table is a static array of slots. A slot's @state word holds its
 * generation (bits 1-6) and LIVE (bit 0); @base and @size are written only
 * while the slot is not live and no reader can still be using it, so a
 * reader that sees LIVE also sees the matching @base and @size. Every field
 * is an atomic so that the accesses the grace period separates (and which
 * ThreadSanitizer cannot see it separate: liburcu is not instrumented) are
 * not data races either.
 *
 * attach: fill @base/@size, then store-release @state = gen | LIVE
 *	(pairs with the load-acquire of @state in shmpool_handle_ptr()).
 * detach: store @state = gen (not live), synchronize_rcu(), then close the
 *	pool: every section that could have loaded LIVE has ended, and later
 *	ones see the slot empty.
 * Slot reuse bumps the generation, so a stale handle to a re-attached slot
 * resolves to NULL. Slots are taken round robin, so a generation comes back
 * after 64 attaches per free slot: 64 x 1023 with an empty table, only 64
 * with one free slot (the offset bound check still applies; documented in
 * shmpool_state.h).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <urcu/urcu-memb.h>

#include "internal.h"
#include "shmpool_state.h"

#define SLOT_LIVE	1U
#define GEN_MASK	0x3fU

struct slot {
	_Atomic uint32_t state;		/* gen << 1 | LIVE */
	_Atomic uintptr_t base;
	_Atomic size_t size;
	struct shmpool *pool;		/* under table_lock */
};

static struct slot slots[SHMPOOL_HANDLE_SLOTS];
/* serialises attach and detach (the writers); readers never take it */
static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;
static int next_slot;		/* the slot attached last; under table_lock */

/* a leaf lock: nothing else is taken under it */
void __shmpool_handle_atfork(enum __shmpool_fork_stage stage)
{
	__shmpool_fork_lock(&table_lock, stage);
}

/* per thread: registered with liburcu, and read-side nesting depth */
static _Thread_local int rcu_registered;
static _Thread_local int rcu_depth;
static pthread_key_t unreg_key;
static pthread_once_t unreg_once = PTHREAD_ONCE_INIT;

static void unreg_at_exit(void *arg)
{
	(void)arg;
	if (rcu_registered) {
		urcu_memb_unregister_thread();
		rcu_registered = 0;
	}
}

static void unreg_key_make(void)
{
	pthread_key_create(&unreg_key, unreg_at_exit);
}

SHMPOOL_EXPORT
void shmpool_handle_read_lock(void)
{
	if (!rcu_registered) {
		pthread_once(&unreg_once, unreg_key_make);
		urcu_memb_register_thread();
		/* any non-NULL value makes the destructor run at exit */
		pthread_setspecific(unreg_key, &rcu_registered);
		rcu_registered = 1;
	}
	rcu_depth++;
	urcu_memb_read_lock();
}

SHMPOOL_EXPORT
void shmpool_handle_read_unlock(void)
{
	urcu_memb_read_unlock();
	rcu_depth--;
}

SHMPOOL_EXPORT
void shmpool_handle_thread_unregister(void)
{
	if (rcu_depth)
		return;
	unreg_at_exit(NULL);
}

SHMPOOL_EXPORT
shmpool_handle_t shmpool_handle_make(int slot, uint64_t off)
{
	uint32_t st;

	if (slot <= 0 || slot >= SHMPOOL_HANDLE_SLOTS ||
	    off > SHMPOOL_HANDLE_OFF_MASK)
		return SHMPOOL_HANDLE_NULL;
	st = atomic_load_explicit(&slots[slot].state, memory_order_relaxed);
	if (!(st & SLOT_LIVE))
		return SHMPOOL_HANDLE_NULL;
	return (uint64_t)slot << 54 | (uint64_t)(st >> 1 & GEN_MASK) << 48 | off;
}

SHMPOOL_EXPORT
void *shmpool_handle_ptr(shmpool_handle_t h, size_t len)
{
	unsigned int i = (unsigned int)(h >> 54);
	uint64_t off = h & SHMPOOL_HANDLE_OFF_MASK;
	struct slot *s;
	uintptr_t base;
	size_t size;
	uint32_t st;

	if (!rcu_depth || !i)
		return NULL;
	s = &slots[i];
	/* acquire: pairs with the release store in shmpool_handle_attach() */
	st = atomic_load_explicit(&s->state, memory_order_acquire);
	if (st != ((uint32_t)(h >> 48 & GEN_MASK) << 1 | SLOT_LIVE))
		return NULL;
	base = atomic_load_explicit(&s->base, memory_order_relaxed);
	size = atomic_load_explicit(&s->size, memory_order_relaxed);
	if (off > size || len > size - off)
		return NULL;
	return (void *)(base + off);
}

SHMPOOL_EXPORT
int shmpool_handle_attach(struct shmpool *p)
{
	uint32_t st;
	int i, n, ret = -ENOSPC;

	if (!p)
		return -EINVAL;
	pthread_mutex_lock(&table_lock);
	for (n = 1; n < SHMPOOL_HANDLE_SLOTS; n++) {
		/* round robin, so that a slot and its generation are reused late */
		i = 1 + (next_slot + n - 1) % (SHMPOOL_HANDLE_SLOTS - 1);
		if (slots[i].pool)
			continue;
		next_slot = i;
		st = atomic_load_explicit(&slots[i].state, memory_order_relaxed);
		/* not live, and its last detach waited out the grace period */
		atomic_store_explicit(&slots[i].base, (uintptr_t)p->base,
				      memory_order_relaxed);
		atomic_store_explicit(&slots[i].size, p->size,
				      memory_order_relaxed);
		slots[i].pool = p;
		st = ((st >> 1) + 1) & GEN_MASK;
		atomic_store_explicit(&slots[i].state, st << 1 | SLOT_LIVE,
				      memory_order_release);
		ret = i;
		break;
	}
	pthread_mutex_unlock(&table_lock);
	return ret;
}

SHMPOOL_EXPORT
int shmpool_handle_detach(int slot)
{
	struct shmpool *p;
	uint32_t st;

	if (slot <= 0 || slot >= SHMPOOL_HANDLE_SLOTS)
		return -EINVAL;
	if (rcu_depth)
		return -EDEADLK;
	pthread_mutex_lock(&table_lock);
	p = slots[slot].pool;
	st = atomic_load_explicit(&slots[slot].state, memory_order_relaxed);
	if (!p || !(st & SLOT_LIVE)) {
		/* empty, or another detach of it is waiting out its grace period */
		pthread_mutex_unlock(&table_lock);
		return -ENOENT;
	}
	atomic_store_explicit(&slots[slot].state, st & ~SLOT_LIVE,
			      memory_order_relaxed);
	pthread_mutex_unlock(&table_lock);
	/*
	 * Wait for every read-side section that may have seen the slot live
	 * (urcu's grace period has the full barriers this needs). The slot
	 * stays reserved (@pool set) so attach cannot refill it meanwhile,
	 * and the table lock is not held, so attach may run, from any thread.
	 */
	urcu_memb_synchronize_rcu();
	pthread_mutex_lock(&table_lock);
	slots[slot].pool = NULL;
	pthread_mutex_unlock(&table_lock);
	return shmpool_close(p);
}
