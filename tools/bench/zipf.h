/* zipf.h: draws ranks 0..n-1 with Zipf's law, P(rank i) ~ 1 / (i+1)^theta.
 *
 * The method is Gray et al., "Quickly Generating Billion-Record Synthetic
 * Databases" (SIGMOD 1994), the one YCSB's ZipfianGenerator uses: zeta(n)
 * is summed once at setup (O(n): about 20 ms per million ranks), then each
 * draw costs one uniform number and one pow().  Ranks 0 and 1 get exactly
 * their share; beyond them the inverse CDF is approximated by a power law,
 * which is within a few per cent for theta in (0, 1).
 *
 * Rank 0 is the hottest.  ringkv-bench uses the rank as the key number; the
 * ring and Redis Cluster both hash key names, so hot keys still spread over
 * the nodes.  Plain data (no heap): the caller owns the struct.
 */
#ifndef RK_BENCH_ZIPF_H
#define RK_BENCH_ZIPF_H

#include <stdint.h>

#include "rng.h"

/* YCSB's default skew. */
#define ZIPF_DEFAULT_THETA 0.99

struct zipf {
	uint64_t n;        /* ranks 0..n-1 */
	double theta;      /* skew, 0 < theta < 1 */
	double zetan;      /* sum_{i=1..n} 1/i^theta */
	double alpha;      /* 1 / (1 - theta) */
	double eta;        /* Gray's correction for the power-law tail */
	double half_pow;   /* 1 + 0.5^theta: where rank 1 ends, scaled */
};

/* Prepares a generator over n >= 1 ranks.  Returns 0, or RK_EINVALID when
 * n is 0 or theta is not strictly between 0 and 1. */
int zipf_init(struct zipf *z, uint64_t n, double theta);

/* One rank in [0, n). */
uint64_t zipf_next(const struct zipf *z, struct rk_rng *r);

/* sum_{i=1..n} 1/i^theta: the normaliser of the law (exposed for tests). */
double zipf_zeta(uint64_t n, double theta);

#endif
