#include <criterion/criterion.h>
#include <string.h>

#include "err.h"
#include "logfmt.h"
#include "record.h"

static void enc(struct rk_buf *b, uint8_t type, const char *k, const char *v,
		uint64_t lsn)
{
	struct rk_logrec r = {.type = type,
			      .lsn = lsn,
			      .ts = {lsn * 10, 99},
			      .key = (const uint8_t *)k,
			      .klen = (uint16_t)strlen(k),
			      .val = (const uint8_t *)v,
			      .vlen = (uint32_t)strlen(v)};
	cr_assert_eq(rk_logrec_encode(b, &r), 0);
}

Test(logfmt, round_trip)
{
	struct rk_buf b;
	rk_buf_init(&b);
	enc(&b, RK_REC_VALUE, "key", "value", 5);
	enc(&b, RK_REC_TOMBSTONE, "key", "", 6);
	struct rk_logrec r;
	long n = rk_logrec_decode(b.data, b.len, &r);
	cr_assert_eq((size_t)n, rk_logrec_size(3, 5));
	cr_assert_eq(r.type, RK_REC_VALUE);
	cr_assert_eq(r.lsn, 5);
	cr_assert_eq(r.ts.hlc, 50);
	cr_assert_eq(r.ts.node, 99);
	cr_assert(r.klen == 3 && memcmp(r.key, "key", 3) == 0);
	cr_assert(r.vlen == 5 && memcmp(r.val, "value", 5) == 0);
	long m = rk_logrec_decode(b.data + n, b.len - (size_t)n, &r);
	cr_assert_gt(m, 0);
	cr_assert_eq(r.type, RK_REC_TOMBSTONE);
	cr_assert_eq((size_t)(n + m), b.len);
	rk_buf_destroy(&b);
}

Test(logfmt, every_prefix_is_incomplete_not_corrupt)
{
	struct rk_buf b;
	rk_buf_init(&b);
	enc(&b, RK_REC_VALUE, "k", "some value", 1);
	for (size_t n = 0; n < b.len; n++) {
		struct rk_logrec r;
		cr_assert_eq(rk_logrec_decode(b.data, n, &r), 0, "prefix %zu", n);
	}
	rk_buf_destroy(&b);
}

Test(logfmt, every_single_bit_flip_is_detected)
{
	struct rk_buf b;
	rk_buf_init(&b);
	enc(&b, RK_REC_VALUE, "a key", "a value of some length", 77);
	for (size_t bit = 0; bit < b.len * 8; bit++) {
		b.data[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		struct rk_logrec r;
		long n = rk_logrec_decode(b.data, b.len, &r);
		/* A flipped length may make it look incomplete; it must
		 * never decode as a record. */
		cr_assert_leq(n, 0, "bit %zu decoded as a record", bit);
		b.data[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	}
	rk_buf_destroy(&b);
}

Test(logfmt, rejects_bodies_that_do_not_parse)
{
	struct rk_buf b;
	rk_buf_init(&b);
	/* A tombstone carrying a value is impossible. */
	enc(&b, RK_REC_TOMBSTONE, "k", "v", 1);
	struct rk_logrec r;
	cr_assert_eq(rk_logrec_decode(b.data, b.len, &r), RK_ECORRUPT);
	rk_buf_destroy(&b);
}

Test(logfmt, find_next_skips_damage)
{
	struct rk_buf b;
	rk_buf_init(&b);
	enc(&b, RK_REC_VALUE, "k1", "v1", 1);
	size_t second = b.len;
	enc(&b, RK_REC_VALUE, "k2", "v2", 2);
	b.data[20] ^= 0x40; /* damage the first record's body */
	struct rk_logrec r;
	cr_assert_lt(rk_logrec_decode(b.data, b.len, &r), 0);
	cr_assert_eq(rk_logrec_find_next(b.data, b.len, 1), (long)second);
	cr_assert_eq(rk_logrec_find_next(b.data, b.len, second + 1), -1);
	rk_buf_destroy(&b);
}

Test(logfmt, paxos_records_decode)
{
	struct rk_buf b;
	rk_buf_init(&b);
	struct rk_logrec in = {.type = RK_REC_PAXOS,
			       .key = (const uint8_t *)"k",
			       .klen = 1,
			       .val = (const uint8_t *)"state",
			       .vlen = 5};
	cr_assert_eq(rk_logrec_encode(&b, &in), 0);
	struct rk_logrec r;
	long n = rk_logrec_decode(b.data, b.len, &r);
	cr_assert_eq((size_t)n, b.len);
	cr_assert(r.type == RK_REC_PAXOS && r.klen == 1 && r.vlen == 5 &&
		  !memcmp(r.val, "state", 5));
	rk_buf_destroy(&b);

	/* No record has an empty key (encoded from a one-byte buffer with
	 * klen 0, so no NULL reaches memcpy). */
	struct rk_logrec bad[] = {
		{.type = RK_REC_VALUE, .key = (const uint8_t *)"",
		 .val = (const uint8_t *)"v", .vlen = 1},
		{.type = RK_REC_TOMBSTONE, .key = (const uint8_t *)""},
		{.type = RK_REC_PAXOS, .key = (const uint8_t *)"",
		 .val = (const uint8_t *)"v", .vlen = 1},
		{.type = RK_REC_PAXOS, .key = (const uint8_t *)"", .ts = {77, 1}},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		rk_buf_init(&b);
		cr_assert_eq(rk_logrec_encode(&b, &bad[i]), 0);
		cr_assert_eq(rk_logrec_decode(b.data, b.len, &r), RK_ECORRUPT,
			     "case %zu", i);
		rk_buf_destroy(&b);
	}
}
