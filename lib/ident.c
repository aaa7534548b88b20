// SPDX-License-Identifier: MIT
/*
 * Identity words of typed named objects (config, cache): a u64 at the start
 * of the object, CAS'd from 0 (how shmpool_obj_create() leaves a new
 * object) to magic << 32 | a parameter the layout follows from. Any process
 * that knows the parameter may set it, so a creator that dies between
 * creating the object and this store leaves nothing half made; but only on
 * an object whose directory entry says it was made as that type (the
 * caller's @stamp): a plain object of the same size is somebody else's.
 */
#include <stdatomic.h>

#include "internal.h"

int __shmpool_ident_claim(_Atomic uint64_t *ident, uint32_t magic,
			  uint32_t value, bool stamp)
{
	uint64_t want = (uint64_t)magic << 32 | value, cur = 0;

	if (!stamp) {
		/* acquire: pairs with the CAS below in the stamping process */
		cur = atomic_load_explicit(ident, memory_order_acquire);
		if (!cur)
			return -EUCLEAN;	/* not ours to stamp */
		if (cur == want)
			return 0;
		return (uint32_t)(cur >> 32) == magic ? -EEXIST : -EUCLEAN;
	}
	/*
	 * acq_rel, and acquire on failure: pairs with the same CAS in other
	 * processes, so whoever sees the word set also sees the zeroed object
	 * it was set on.
	 */
	if (atomic_compare_exchange_strong_explicit(ident, &cur, want,
						    memory_order_acq_rel,
						    memory_order_acquire) ||
	    cur == want)
		return 0;
	return (uint32_t)(cur >> 32) == magic ? -EEXIST : -EUCLEAN;
}
