/* rng.h: a small seeded PRNG (xoshiro256**, seeded by splitmix64).
 * Every randomized test and the simulator draw from one of these so a run
 * replays exactly from its printed seed; the protocols get theirs through
 * their runtime, never from a global. */
#ifndef RK_RNG_H
#define RK_RNG_H

#include <stdint.h>

struct rk_rng {
	uint64_t s[4];
};

void rk_rng_seed(struct rk_rng *r, uint64_t seed);
uint64_t rk_rng_next(struct rk_rng *r);
/* Uniform in [0, n); n > 0. */
uint64_t rk_rng_below(struct rk_rng *r, uint64_t n);
/* Uniform in [0, 1). */
double rk_rng_double(struct rk_rng *r);

/* The seed for a randomized test: RINGKV_SEED when set, else the time.
 * Prints "seed=N (RINGKV_SEED=N replays)" to stderr so a failure replays. */
uint64_t rk_test_seed(const char *what);

#endif
