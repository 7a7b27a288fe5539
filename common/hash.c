#include "hash.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

uint64_t rk_key_hash(const void *key, size_t len)
{
	return XXH3_64bits(key, len);
}

uint64_t rk_hash_seeded(const void *p, size_t len, uint64_t seed)
{
	return XXH3_64bits_withSeed(p, len, seed);
}
