/* hash.h: the 64-bit hashes ringkv uses.
 *
 * rk_key_hash is part of the wire contract: the ring places a key at
 * token rk_key_hash(key), and smart clients in any language must compute
 * the same value.  It is XXH3-64 with seed 0 (xxHash 0.8 specification).
 * Never change it without a new ring format.
 *
 * rk_hash_seeded is for in-memory tables: the per-process random seed
 * makes it hard for a client to choose colliding keys.
 */
#ifndef RK_HASH_H
#define RK_HASH_H

#include <stddef.h>
#include <stdint.h>

uint64_t rk_key_hash(const void *key, size_t len);
uint64_t rk_hash_seeded(const void *p, size_t len, uint64_t seed);

#endif
