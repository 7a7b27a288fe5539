/* hdr.h: a latency histogram with log-linear buckets, after Gil Tene's
 * HdrHistogram.
 *
 * Values from 0 to `highest` are counted with `sigfigs` significant decimal
 * digits: the value range is cut into buckets that each double the one
 * before, and every bucket into the same number of linear sub-buckets
 * (2048 for 3 digits), so a recorded value is off by at most 1 part in
 * 10^sigfigs whatever its magnitude.  Recording is one clz and one
 * increment; memory is fixed at creation (about 220 KiB for 1 ns .. 60 s at
 * 3 digits).  Percentiles are answered as the highest value equivalent to
 * the bucket that holds the percentile, as HdrHistogram does, clamped to
 * the exact maximum recorded.
 *
 * Values above `highest` are counted at `highest` and in hdr_overflow, so
 * nothing is silently dropped.  Not thread-safe: one histogram per thread,
 * merged with hdr_add at the end.
 */
#ifndef RK_BENCH_HDR_H
#define RK_BENCH_HDR_H

#include <stdint.h>

struct hdr;

/* Creates a histogram for values lowest..highest (lowest >= 1, the
 * smallest value told apart from 0; highest >= 2 * lowest) with sigfigs in
 * 1..5.  Returns 0 and *out (the caller frees it with hdr_free), or
 * RK_EINVALID / RK_ENOMEM. */
int hdr_new(uint64_t lowest, uint64_t highest, int sigfigs, struct hdr **out);
void hdr_free(struct hdr *h);

/* Counts value v n times; v above highest is counted at highest. */
void hdr_record_n(struct hdr *h, uint64_t v, uint64_t n);
static inline void hdr_record(struct hdr *h, uint64_t v)
{
	hdr_record_n(h, v, 1);
}

/* Adds every count of src to dst.  Returns 0, or RK_EINVALID when the two
 * were created with different parameters. */
int hdr_add(struct hdr *dst, const struct hdr *src);

/* Forgets everything recorded. */
void hdr_reset(struct hdr *h);

uint64_t hdr_count(const struct hdr *h);
/* Exact smallest and largest values recorded (0 when empty). */
uint64_t hdr_min(const struct hdr *h);
uint64_t hdr_max(const struct hdr *h);
/* Exact mean of the values recorded (after clamping); 0 when empty. */
double hdr_mean(const struct hdr *h);
/* How many values were above highest. */
uint64_t hdr_overflow(const struct hdr *h);

/* The value at percentile p (0..100): the smallest bucket boundary such
 * that at least p% of the values are at or below it, reported as the
 * highest value equivalent to that bucket and never above hdr_max.
 * p <= 0 gives hdr_min; 0 when empty. */
uint64_t hdr_percentile(const struct hdr *h, double p);

/* The bounds of the bucket v falls in: every value in
 * [lowest_equivalent, highest_equivalent] is counted as the same. */
uint64_t hdr_lowest_equivalent(const struct hdr *h, uint64_t v);
uint64_t hdr_highest_equivalent(const struct hdr *h, uint64_t v);

#endif
