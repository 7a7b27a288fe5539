/* The latency histogram: percentiles of known distributions agree with the
 * exact answer to within one bucket, and nothing recorded is lost. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>

#include "err.h"
#include "hdr.h"
#include "rng.h"

#define NS_60S 60000000000ull

static struct hdr *mk(void)
{
	struct hdr *h;
	cr_assert_eq(hdr_new(1, NS_60S, 3, &h), 0);
	return h;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* The exact value at percentile p of sorted[0..n), with the histogram's
 * rank rule (nearest rank, at least 1). */
static uint64_t exact(const uint64_t *sorted, size_t n, double p)
{
	size_t rank = (size_t)(p / 100.0 * (double)n + 0.5);
	if (rank < 1)
		rank = 1;
	if (rank > n)
		rank = n;
	return sorted[rank - 1];
}

Test(hdr, rejects_bad_parameters)
{
	struct hdr *h;
	cr_assert_eq(hdr_new(0, 1000, 3, &h), RK_EINVALID);
	cr_assert_eq(hdr_new(1, 1000, 0, &h), RK_EINVALID);
	cr_assert_eq(hdr_new(1, 1000, 6, &h), RK_EINVALID);
	cr_assert_eq(hdr_new(100, 150, 3, &h), RK_EINVALID);
	cr_assert_null(h);
}

Test(hdr, empty)
{
	struct hdr *h = mk();
	cr_assert_eq(hdr_count(h), 0);
	cr_assert_eq(hdr_percentile(h, 50), 0);
	cr_assert_eq(hdr_max(h), 0);
	cr_assert_float_eq(hdr_mean(h), 0.0, 1e-9);
	hdr_free(h);
}

Test(hdr, small_values_are_exact)
{
	/* Below 2048 (3 digits: 2048 linear sub-buckets) every value has a
	 * bucket of its own. */
	struct hdr *h = mk();
	for (uint64_t v = 1; v <= 1000; v++)
		hdr_record(h, v);
	cr_assert_eq(hdr_count(h), 1000);
	cr_assert_eq(hdr_percentile(h, 50), 500);
	cr_assert_eq(hdr_percentile(h, 90), 900);
	cr_assert_eq(hdr_percentile(h, 99), 990);
	cr_assert_eq(hdr_percentile(h, 99.9), 999);
	cr_assert_eq(hdr_percentile(h, 100), 1000);
	cr_assert_eq(hdr_percentile(h, 0), 1);
	cr_assert_eq(hdr_min(h), 1);
	cr_assert_eq(hdr_max(h), 1000);
	cr_assert_float_eq(hdr_mean(h), 500.5, 1e-9);
	hdr_free(h);
}

Test(hdr, buckets_hold_three_significant_digits)
{
	struct hdr *h = mk();
	for (uint64_t v = 1; v < NS_60S; v = v * 3 / 2 + 1) {
		uint64_t lo = hdr_lowest_equivalent(h, v);
		uint64_t hi = hdr_highest_equivalent(h, v);
		cr_assert(lo <= v && v <= hi, "v=%lu in [%lu, %lu]",
			  (unsigned long)v, (unsigned long)lo,
			  (unsigned long)hi);
		/* Width at most v / 1024: better than 1 part in 1000. */
		cr_assert_leq((double)(hi - lo + 1), (double)v / 1024.0 + 1.0,
			      "bucket of %lu is %lu wide", (unsigned long)v,
			      (unsigned long)(hi - lo + 1));
	}
	hdr_free(h);
}

Test(hdr, uniform_microseconds_to_a_second)
{
	/* 1 us .. 1 s in 1 us steps: the percentiles are known in closed
	 * form. */
	struct hdr *h = mk();
	for (uint64_t us = 1; us <= 1000000; us++)
		hdr_record(h, us * 1000);
	const double ps[] = {50, 90, 99, 99.9};
	for (size_t i = 0; i < 4; i++) {
		double want = ps[i] / 100.0 * 1e9;
		double got = (double)hdr_percentile(h, ps[i]);
		cr_assert(fabs(got - want) <= want / 1000.0,
			  "p%g: got %.0f, want %.0f", ps[i], got, want);
	}
	cr_assert_eq(hdr_max(h), 1000000000ull);
	cr_assert_float_eq(hdr_mean(h), 500000500.0, 1e-3);
	hdr_free(h);
}

Test(hdr, bimodal_tail_is_seen)
{
	/* 99% fast (100 us), 1% slow (10 ms): p99 is still fast, p99.9
	 * slow, as a histogram with a proper tail must say. */
	struct hdr *h = mk();
	hdr_record_n(h, 100000, 99000);
	hdr_record_n(h, 10000000, 1000);
	cr_assert_eq(hdr_lowest_equivalent(h, hdr_percentile(h, 50)),
		     hdr_lowest_equivalent(h, 100000));
	cr_assert_eq(hdr_lowest_equivalent(h, hdr_percentile(h, 99)),
		     hdr_lowest_equivalent(h, 100000));
	cr_assert_eq(hdr_percentile(h, 99.9), 10000000);
	cr_assert_eq(hdr_max(h), 10000000);
	hdr_free(h);
}

Test(hdr, exponential_matches_exact_within_a_bucket)
{
	struct rk_rng r;
	rk_rng_seed(&r, rk_test_seed("hdr exponential"));
	enum { N = 200000 };
	uint64_t *v = malloc(N * sizeof(*v));
	cr_assert_not_null(v);
	struct hdr *h = mk();
	for (size_t i = 0; i < N; i++) {
		/* Mean 200 us, a long tail. */
		double u = rk_rng_double(&r);
		v[i] = (uint64_t)(-log(1.0 - u) * 200000.0) + 1;
		hdr_record(h, v[i]);
	}
	qsort(v, N, sizeof(*v), cmp_u64);
	const double ps[] = {1, 10, 50, 90, 99, 99.9, 99.99, 100};
	for (size_t i = 0; i < sizeof(ps) / sizeof(ps[0]); i++) {
		uint64_t want = exact(v, N, ps[i]);
		uint64_t got = hdr_percentile(h, ps[i]);
		cr_assert_eq(hdr_lowest_equivalent(h, got),
			     hdr_lowest_equivalent(h, want),
			     "p%g: got %lu, exact %lu", ps[i],
			     (unsigned long)got, (unsigned long)want);
		cr_assert_geq(got, want);
	}
	cr_assert_eq(hdr_min(h), v[0]);
	cr_assert_eq(hdr_max(h), v[N - 1]);
	free(v);
	hdr_free(h);
}

Test(hdr, merge_equals_recording_into_one)
{
	struct hdr *a = mk(), *b = mk(), *all = mk();
	for (uint64_t i = 1; i <= 50000; i++) {
		uint64_t x = i * 7919 % 1000003 * 1000;
		hdr_record(i % 3 ? a : b, x);
		hdr_record(all, x);
	}
	cr_assert_eq(hdr_add(a, b), 0);
	cr_assert_eq(hdr_count(a), hdr_count(all));
	cr_assert_eq(hdr_min(a), hdr_min(all));
	cr_assert_eq(hdr_max(a), hdr_max(all));
	for (double p = 0; p <= 100; p += 0.5)
		cr_assert_eq(hdr_percentile(a, p), hdr_percentile(all, p),
			     "p%g", p);
	struct hdr *other;
	cr_assert_eq(hdr_new(1, 1000000, 3, &other), 0);
	cr_assert_eq(hdr_add(a, other), RK_EINVALID);
	hdr_free(other);
	hdr_reset(a);
	cr_assert_eq(hdr_count(a), 0);
	cr_assert_eq(hdr_percentile(a, 99), 0);
	hdr_free(a);
	hdr_free(b);
	hdr_free(all);
}

Test(hdr, overflow_is_counted_not_lost)
{
	struct hdr *h;
	cr_assert_eq(hdr_new(1, 1000000, 3, &h), 0);
	hdr_record(h, 10);
	hdr_record(h, 5000000);
	cr_assert_eq(hdr_count(h), 2);
	cr_assert_eq(hdr_overflow(h), 1);
	cr_assert_eq(hdr_max(h), 1000000);
	cr_assert_eq(hdr_percentile(h, 100), 1000000);
	hdr_free(h);
}
