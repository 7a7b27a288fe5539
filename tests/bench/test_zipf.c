/* The Zipf generator: a seeded run follows the rank-frequency law.  The
 * bounds are loose (many standard errors wide) so they cannot flake; a
 * broken generator misses them by far. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>

#include "err.h"
#include "rng.h"
#include "zipf.h"

#define DRAWS 2000000

/* Counts DRAWS ranks of a seeded generator over n ranks. */
static uint64_t *histogram(uint64_t n, double theta, uint64_t seed)
{
	struct zipf z;
	cr_assert_eq(zipf_init(&z, n, theta), 0);
	struct rk_rng r;
	rk_rng_seed(&r, seed);
	uint64_t *count = calloc(n, sizeof(*count));
	cr_assert_not_null(count);
	for (int i = 0; i < DRAWS; i++) {
		uint64_t k = zipf_next(&z, &r);
		cr_assert_lt(k, n);
		count[k]++;
	}
	return count;
}

Test(zipf, rejects_bad_parameters)
{
	struct zipf z;
	cr_assert_eq(zipf_init(&z, 0, 0.99), RK_EINVALID);
	cr_assert_eq(zipf_init(&z, 10, 0.0), RK_EINVALID);
	cr_assert_eq(zipf_init(&z, 10, 1.0), RK_EINVALID);
	cr_assert_eq(zipf_init(&z, 10, -0.5), RK_EINVALID);
	cr_assert_eq(zipf_init(&z, 10, NAN), RK_EINVALID);
}

Test(zipf, zeta_is_the_normaliser)
{
	cr_assert_float_eq(zipf_zeta(1, 0.5), 1.0, 1e-12);
	cr_assert_float_eq(zipf_zeta(2, 0.5), 1.0 + 1.0 / sqrt(2.0), 1e-12);
	cr_assert_float_eq(zipf_zeta(4, 0.99),
			   1 + pow(2, -0.99) + pow(3, -0.99) + pow(4, -0.99),
			   1e-12);
}

Test(zipf, tiny_key_spaces)
{
	struct zipf z;
	struct rk_rng r;
	rk_rng_seed(&r, 7);
	cr_assert_eq(zipf_init(&z, 1, 0.99), 0);
	for (int i = 0; i < 1000; i++)
		cr_assert_eq(zipf_next(&z, &r), 0);
	cr_assert_eq(zipf_init(&z, 2, 0.5), 0);
	int ones = 0;
	for (int i = 0; i < 100000; i++) {
		uint64_t k = zipf_next(&z, &r);
		cr_assert_lt(k, 2);
		ones += (int)k;
	}
	/* P(1) = 2^-0.5 / (1 + 2^-0.5) = 0.414 */
	cr_assert(ones > 39000 && ones < 44000, "ones=%d", ones);
}

Test(zipf, same_seed_same_sequence)
{
	struct zipf z;
	cr_assert_eq(zipf_init(&z, 100000, 0.99), 0);
	struct rk_rng a, b;
	rk_rng_seed(&a, 42);
	rk_rng_seed(&b, 42);
	for (int i = 0; i < 10000; i++)
		cr_assert_eq(zipf_next(&z, &a), zipf_next(&z, &b));
}

Test(zipf, rank_frequency_follows_the_law)
{
	const uint64_t n = 10000;
	const double theta = 0.99;
	uint64_t seed = rk_test_seed("zipf rank-frequency");
	uint64_t *count = histogram(n, theta, seed);
	double zn = zipf_zeta(n, theta);

	/* Ranks 0 and 1 are exact in Gray's method: within 3%. */
	for (uint64_t k = 0; k < 2; k++) {
		double want = DRAWS / pow((double)(k + 1), theta) / zn;
		cr_assert(fabs((double)count[k] - want) < 0.03 * want,
			  "rank %lu: %lu draws, law says %.0f",
			  (unsigned long)k, (unsigned long)count[k], want);
	}
	/* The tail is a power-law approximation: each decade of ranks gets
	 * its share within 15%. */
	for (uint64_t lo = 10; lo < n; lo *= 10) {
		uint64_t hi = lo * 10 < n ? lo * 10 : n;
		double want = 0, got = 0;
		for (uint64_t k = lo; k < hi; k++) {
			want += DRAWS / pow((double)(k + 1), theta) / zn;
			got += (double)count[k];
		}
		cr_assert(fabs(got - want) < 0.15 * want,
			  "ranks %lu..%lu: %.0f draws, law says %.0f",
			  (unsigned long)lo, (unsigned long)hi - 1, got, want);
	}
	/* The slope of log(frequency) against log(rank) is -theta. */
	double sx = 0, sy = 0, sxx = 0, sxy = 0;
	int m = 0;
	for (uint64_t lo = 1; lo < n; lo *= 2) {
		uint64_t hi = lo * 2 < n ? lo * 2 : n;
		double got = 0;
		for (uint64_t k = lo; k < hi; k++)
			got += (double)count[k];
		/* Mean frequency per rank over [lo, hi), at the band's
		 * middle rank. */
		double x = log((double)(lo + hi + 1) / 2.0);
		double y = log(got / (double)(hi - lo));
		sx += x, sy += y, sxx += x * x, sxy += x * y;
		m++;
	}
	double slope = (m * sxy - sx * sy) / (m * sxx - sx * sx);
	cr_assert(fabs(slope + theta) < 0.1, "log-log slope %.3f, want %.3f",
		  slope, -theta);
	free(count);
}

Test(zipf, lower_skew_is_flatter)
{
	uint64_t seed = rk_test_seed("zipf skew");
	uint64_t *hot = histogram(1000, 0.99, seed);
	uint64_t *mild = histogram(1000, 0.5, seed);
	cr_assert_gt(hot[0], 2 * mild[0]);
	uint64_t hot_tail = 0, mild_tail = 0;
	for (int k = 500; k < 1000; k++)
		hot_tail += hot[k], mild_tail += mild[k];
	cr_assert_gt(mild_tail, hot_tail);
	free(hot);
	free(mild);
}
