/* hdr.c: log-linear histogram.  The index arithmetic follows
 * HdrHistogram_c (public domain): a value's bucket is found from its
 * highest set bit, its sub-bucket from the bits below that, and the counts
 * array stores, for every bucket after the first, only the upper half of
 * its sub-buckets (the lower half is covered, at finer resolution, by the
 * bucket before). */
#include "hdr.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"

struct hdr {
	uint64_t lowest, highest;
	int sigfigs;
	int unit_magnitude;          /* log2 of the smallest unit counted */
	int sub_half_magnitude;      /* log2(sub_bucket_count / 2) */
	uint64_t sub_count;          /* linear sub-buckets per bucket */
	uint64_t sub_half;
	uint64_t sub_mask;           /* (sub_count - 1) << unit_magnitude */
	uint32_t bucket_count;
	uint32_t counts_len;
	uint64_t total;
	uint64_t min, max;
	uint64_t overflow;
	long double sum;
	uint64_t *counts;
};

static int bucket_index(const struct hdr *h, uint64_t v)
{
	/* Position of the highest set bit, counting from 1, of v or of the
	 * smallest value that needs a second bucket. */
	int pow2ceil = 64 - __builtin_clzll(v | h->sub_mask);
	return pow2ceil - h->unit_magnitude - (h->sub_half_magnitude + 1);
}

static uint64_t sub_index(const struct hdr *h, uint64_t v, int bucket)
{
	return v >> (bucket + h->unit_magnitude);
}

static uint32_t counts_index(const struct hdr *h, int bucket, uint64_t sub)
{
	uint64_t base = (uint64_t)(bucket + 1) << h->sub_half_magnitude;
	return (uint32_t)(base + sub - h->sub_half);
}

static uint64_t value_from(const struct hdr *h, int bucket, uint64_t sub)
{
	return sub << (bucket + h->unit_magnitude);
}

static uint64_t value_at_index(const struct hdr *h, uint32_t i)
{
	int bucket = (int)(i >> h->sub_half_magnitude) - 1;
	uint64_t sub = (i & (h->sub_half - 1)) + h->sub_half;
	if (bucket < 0) {
		sub -= h->sub_half;
		bucket = 0;
	}
	return value_from(h, bucket, sub);
}

uint64_t hdr_lowest_equivalent(const struct hdr *h, uint64_t v)
{
	int b = bucket_index(h, v);
	return value_from(h, b, sub_index(h, v, b));
}

static uint64_t range_size(const struct hdr *h, uint64_t v)
{
	int b = bucket_index(h, v);
	uint64_t s = sub_index(h, v, b);
	int adjusted = s >= h->sub_count ? b + 1 : b;
	return (uint64_t)1 << (h->unit_magnitude + adjusted);
}

uint64_t hdr_highest_equivalent(const struct hdr *h, uint64_t v)
{
	return hdr_lowest_equivalent(h, v) + range_size(h, v) - 1;
}

int hdr_new(uint64_t lowest, uint64_t highest, int sigfigs, struct hdr **out)
{
	*out = NULL;
	if (lowest < 1 || sigfigs < 1 || sigfigs > 5 || highest < 2 * lowest ||
	    highest > (UINT64_MAX >> 2))
		return RK_EINVALID;
	struct hdr *h = calloc(1, sizeof(*h));
	if (!h)
		return RK_ENOMEM;
	h->lowest = lowest;
	h->highest = highest;
	h->sigfigs = sigfigs;
	uint64_t single_unit = 2;
	for (int i = 0; i < sigfigs; i++)
		single_unit *= 10;
	int sub_magnitude = (int)ceil(log2((double)single_unit));
	h->sub_half_magnitude = sub_magnitude > 1 ? sub_magnitude - 1 : 0;
	h->unit_magnitude = 63 - __builtin_clzll(lowest);
	h->sub_count = (uint64_t)1 << (h->sub_half_magnitude + 1);
	h->sub_half = h->sub_count / 2;
	h->sub_mask = (h->sub_count - 1) << h->unit_magnitude;
	/* Buckets needed so that highest is below the first value no bucket
	 * covers. */
	uint64_t untrackable = h->sub_count << h->unit_magnitude;
	uint32_t buckets = 1;
	while (untrackable <= highest) {
		untrackable <<= 1;
		buckets++;
	}
	h->bucket_count = buckets;
	h->counts_len = (buckets + 1) * (uint32_t)h->sub_half;
	h->counts = calloc(h->counts_len, sizeof(*h->counts));
	if (!h->counts) {
		free(h);
		return RK_ENOMEM;
	}
	*out = h;
	return 0;
}

void hdr_free(struct hdr *h)
{
	if (!h)
		return;
	free(h->counts);
	free(h);
}

void hdr_record_n(struct hdr *h, uint64_t v, uint64_t n)
{
	if (n == 0)
		return;
	if (v > h->highest) {
		v = h->highest;
		h->overflow += n;
	}
	int b = bucket_index(h, v);
	h->counts[counts_index(h, b, sub_index(h, v, b))] += n;
	if (h->total == 0 || v < h->min)
		h->min = v;
	if (v > h->max)
		h->max = v;
	h->total += n;
	h->sum += (long double)v * (long double)n;
}

int hdr_add(struct hdr *dst, const struct hdr *src)
{
	if (dst->lowest != src->lowest || dst->highest != src->highest ||
	    dst->sigfigs != src->sigfigs)
		return RK_EINVALID;
	if (src->total == 0)
		return 0;
	for (uint32_t i = 0; i < dst->counts_len; i++)
		dst->counts[i] += src->counts[i];
	if (dst->total == 0 || src->min < dst->min)
		dst->min = src->min;
	if (src->max > dst->max)
		dst->max = src->max;
	dst->total += src->total;
	dst->overflow += src->overflow;
	dst->sum += src->sum;
	return 0;
}

void hdr_reset(struct hdr *h)
{
	memset(h->counts, 0, h->counts_len * sizeof(*h->counts));
	h->total = h->min = h->max = h->overflow = 0;
	h->sum = 0;
}

uint64_t hdr_count(const struct hdr *h)
{
	return h->total;
}

uint64_t hdr_min(const struct hdr *h)
{
	return h->min;
}

uint64_t hdr_max(const struct hdr *h)
{
	return h->max;
}

double hdr_mean(const struct hdr *h)
{
	return h->total ? (double)(h->sum / (long double)h->total) : 0.0;
}

uint64_t hdr_overflow(const struct hdr *h)
{
	return h->overflow;
}

uint64_t hdr_percentile(const struct hdr *h, double p)
{
	if (h->total == 0)
		return 0;
	if (p <= 0)
		return h->min;
	if (p > 100)
		p = 100;
	/* The rank of the value at p, rounded to the nearest, at least 1. */
	uint64_t want = (uint64_t)(p / 100.0 * (double)h->total + 0.5);
	if (want < 1)
		want = 1;
	if (want > h->total)
		want = h->total;
	uint64_t seen = 0;
	for (uint32_t i = 0; i < h->counts_len; i++) {
		seen += h->counts[i];
		if (seen >= want) {
			uint64_t v =
				hdr_highest_equivalent(h, value_at_index(h, i));
			if (v > h->max)
				v = h->max;
			if (v < h->min)
				v = h->min;
			return v;
		}
	}
	return h->max;
}
