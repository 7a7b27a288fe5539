#include "rng.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

void rk_rng_seed(struct rk_rng *r, uint64_t seed)
{
	for (int i = 0; i < 4; i++)
		r->s[i] = splitmix64(&seed);
}

static inline uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

uint64_t rk_rng_next(struct rk_rng *r)
{
	uint64_t *s = r->s;
	uint64_t result = rotl(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;
	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return result;
}

uint64_t rk_rng_below(struct rk_rng *r, uint64_t n)
{
	/* Lemire's multiply-shift with rejection: unbiased. */
	uint64_t x = rk_rng_next(r);
	__uint128_t m = (__uint128_t)x * n;
	uint64_t lo = (uint64_t)m;
	if (lo < n) {
		uint64_t t = -n % n;
		while (lo < t) {
			x = rk_rng_next(r);
			m = (__uint128_t)x * n;
			lo = (uint64_t)m;
		}
	}
	return (uint64_t)(m >> 64);
}

double rk_rng_double(struct rk_rng *r)
{
	return (double)(rk_rng_next(r) >> 11) * 0x1.0p-53;
}

uint64_t rk_test_seed(const char *what)
{
	uint64_t seed;
	const char *env = getenv("RINGKV_SEED");
	if (env && *env) {
		seed = strtoull(env, NULL, 0);
	} else {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		seed = (uint64_t)ts.tv_sec * 1000000007ull ^
		       (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 32);
	}
	fprintf(stderr, "%s: seed=%" PRIu64 " (RINGKV_SEED=%" PRIu64
			" replays)\n",
		what ? what : "test", seed, seed);
	return seed;
}
