// SPDX-License-Identifier: MIT
/*
 * Boost.Interprocess managed_shared_memory for bench/alloc_bench.c, behind a
 * C interface: a segment in /dev/shm, allocate/deallocate through its
 * default allocator (rbtree_best_fit under one interprocess_mutex). The
 * segment object is made before the benchmark forks, so every side uses the
 * same mapping at the same address.
 */
#include <boost/interprocess/managed_shared_memory.hpp>
#include <cstdint>
#include <new>

namespace bip = boost::interprocess;

extern "C" {

/* The segment @name of @bytes, created afresh; NULL if Boost refused. */
void *alloc_boost_create(const char *name, size_t bytes)
{
	try {
		bip::shared_memory_object::remove(name);
		return new bip::managed_shared_memory(bip::create_only, name, bytes);
	} catch (...) {
		return nullptr;
	}
}

void alloc_boost_destroy(void *seg, const char *name)
{
	delete static_cast<bip::managed_shared_memory *>(seg);
	bip::shared_memory_object::remove(name);
}

/* A block of @n bytes, or 0 when the segment is full. */
uint64_t alloc_boost_alloc(void *seg, size_t n)
{
	void *p = static_cast<bip::managed_shared_memory *>(seg)->allocate(n, std::nothrow);

	return (uint64_t)(uintptr_t)p;
}

void alloc_boost_free(void *seg, uint64_t p)
{
	static_cast<bip::managed_shared_memory *>(seg)->deallocate((void *)(uintptr_t)p);
}

/* Bytes of the segment in use: its size less its free memory. */
uint64_t alloc_boost_used(void *seg)
{
	auto *s = static_cast<bip::managed_shared_memory *>(seg);

	return s->get_size() - s->get_free_memory();
}

/* Free bytes of the segment, as Boost counts them. */
uint64_t alloc_boost_free_memory(void *seg)
{
	return static_cast<bip::managed_shared_memory *>(seg)->get_free_memory();
}

}
