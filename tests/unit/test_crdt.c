/* PN-counter merge laws, deletes by generation, codecs against damage, the
 * op-id owner rule and the dedup window, and exactly-once under a retry
 * storm.  Randomized tests print their seed; RINGKV_SEED=N replays. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "crc32c.h"
#include "crdt.h"
#include "err.h"
#include "rng.h"

static struct crdt_counter *cnew(uint32_t max)
{
	struct crdt_counter *c = NULL;
	cr_assert_eq(crdt_new(max, &c), 0);
	return c;
}

static struct crdt_counter *ccopy(const struct crdt_counter *src)
{
	struct crdt_counter *c = cnew(0);
	cr_assert_geq(crdt_merge(c, src), 0);
	cr_assert(crdt_equal(c, src));
	return c;
}

static int64_t value(const struct crdt_counter *c)
{
	int64_t v;
	cr_assert_eq(crdt_value(c, &v), 0);
	return v;
}

/* Few nodes and few generations, so random states overlap and tie. */
static const uint64_t nodes[] = {3, 17, 0x8000000000000000ull, 99, 5, 1234};
#define NNODES (sizeof(nodes) / sizeof(*nodes))

static void random_state(struct rk_rng *r, struct crdt_counter *c)
{
	crdt_reset(c);
	uint64_t g = rk_rng_below(r, 3);
	if (g)
		crdt_delete(c, (rk_ts){g * 100, rk_rng_below(r, 2)});
	size_t n = rk_rng_below(r, NNODES + 1);
	for (size_t i = 0; i < n; i++) {
		uint64_t node = nodes[rk_rng_below(r, NNODES)];
		int64_t d = (int64_t)rk_rng_below(r, 2000) - 1000;
		cr_assert_eq(crdt_add(c, node, d, NULL, NULL), 0);
	}
}

Test(crdt, add_get_value_and_the_shipped_delta)
{
	struct crdt_counter *c = cnew(0);
	cr_assert(crdt_is_empty(c));
	cr_assert_eq(value(c), 0);
	struct crdt_opid op;
	crdt_opid_make(&op, 1000, 42);
	struct crdt_delta d;
	cr_assert_eq(crdt_add(c, 7, 10, &op, &d), 0);
	cr_assert_eq(crdt_add(c, 7, -3, NULL, NULL), 0);
	cr_assert_eq(crdt_add(c, 2, 5, NULL, NULL), 0);
	cr_assert_eq(crdt_add(c, 9, -20, &op, &d), 0);
	cr_assert_eq(value(c), 10 - 3 + 5 - 20);
	cr_assert_eq(crdt_entry_count(c), 3);
	cr_assert_eq(crdt_entry_at(c, 0).node, 2); /* sorted */
	cr_assert_eq(crdt_entry_at(c, 2).node, 9);
	uint64_t inc, dec;
	cr_assert_eq(crdt_entry_get(c, 7, &inc, &dec), 0);
	cr_assert(inc == 10 && dec == 3);
	cr_assert_eq(crdt_entry_get(c, 8, &inc, &dec), RK_ENOT_FOUND);
	cr_assert(d.e.node == 9 && d.e.incr == 0 && d.e.decr == 20);
	cr_assert(rk_ts_is_zero(d.gen));
	cr_assert_eq(memcmp(&d.op, &op, sizeof(op)), 0);
	cr_assert_eq(crdt_opid_ms(&d.op), 1000);
	/* delta 0 only creates the entry: the counter now exists. */
	struct crdt_counter *z = cnew(0);
	cr_assert_eq(crdt_add(z, 4, 0, NULL, NULL), 0);
	cr_assert_not(crdt_is_empty(z));
	cr_assert_eq(value(z), 0);
	crdt_free(z);
	crdt_free(c);
}

Test(crdt, totals_never_wrap_and_the_value_saturates)
{
	struct crdt_counter *c = cnew(0);
	cr_assert_eq(crdt_add(c, 1, INT64_MIN, NULL, NULL), 0);
	uint64_t inc, dec;
	crdt_entry_get(c, 1, &inc, &dec);
	cr_assert_eq(dec, (uint64_t)1 << 63);
	cr_assert_eq(value(c), INT64_MIN);
	cr_assert_eq(crdt_add(c, 1, INT64_MAX, NULL, NULL), 0);
	cr_assert_eq(value(c), -1);
	/* decr = 2^63 + 2^63 would wrap: refused, nothing changed. */
	cr_assert_eq(crdt_add(c, 1, INT64_MIN, NULL, NULL), RK_EINVALID);
	cr_assert_eq(crdt_add(c, 1, INT64_MAX, NULL, NULL), 0);
	cr_assert_eq(crdt_add(c, 1, 1, NULL, NULL), 0); /* incr = 2^64 - 1 */
	cr_assert_eq(crdt_add(c, 1, 1, NULL, NULL), RK_EINVALID);
	crdt_entry_get(c, 1, &inc, &dec);
	cr_assert(inc == UINT64_MAX && dec == (uint64_t)1 << 63);
	int64_t v;
	cr_assert_eq(crdt_value(c, &v), 0);
	cr_assert_eq(v, INT64_MAX);
	/* A second node pushes the exact sum past int64: saturated. */
	cr_assert_eq(crdt_add(c, 2, 5, NULL, NULL), 0);
	cr_assert_eq(crdt_value(c, &v), RK_EINVALID);
	cr_assert_eq(v, INT64_MAX);
	struct crdt_counter *n = cnew(0);
	for (uint64_t k = 1; k <= 3; k++)
		cr_assert_eq(crdt_add(n, k, INT64_MIN, NULL, NULL), 0);
	cr_assert_eq(crdt_value(n, &v), RK_EINVALID);
	cr_assert_eq(v, INT64_MIN);
	crdt_free(n);
	crdt_free(c);
}

Test(crdt, the_entry_limit_holds_for_adds_merges_and_decodes)
{
	struct crdt_counter *c = NULL;
	cr_assert_eq(crdt_new(CRDT_ENTRIES_HARD_MAX + 1, &c), RK_EINVALID);
	c = cnew(3);
	for (uint64_t k = 1; k <= 3; k++)
		cr_assert_eq(crdt_add(c, k, 1, NULL, NULL), 0);
	cr_assert_eq(crdt_add(c, 4, 1, NULL, NULL), RK_EVALUE_TOO_LARGE);
	cr_assert_eq(crdt_add(c, 2, 1, NULL, NULL), 0); /* existing: fine */
	struct crdt_counter *big = cnew(0);
	for (uint64_t k = 3; k <= 4; k++)
		cr_assert_eq(crdt_add(big, k, 1, NULL, NULL), 0);
	struct crdt_counter *before = ccopy(c);
	cr_assert_eq(crdt_merge(c, big), RK_EVALUE_TOO_LARGE);
	cr_assert(crdt_equal(c, before));
	uint8_t buf[CRDT_STATE_FIXED + 4 * CRDT_ENTRY_SIZE];
	cr_assert_eq(crdt_add(big, 5, 1, NULL, NULL), 0);
	cr_assert_eq(crdt_add(big, 6, 1, NULL, NULL), 0);
	crdt_encode(big, buf);
	cr_assert_eq(crdt_decode(c, buf, crdt_encoded_size(big)),
		     RK_EVALUE_TOO_LARGE);
	cr_assert(crdt_equal(c, before));
	crdt_free(before);
	crdt_free(big);
	crdt_free(c);
}

Test(crdt, merge_is_commutative_associative_and_idempotent)
{
	uint64_t seed = rk_test_seed("crdt.merge_laws");
	struct rk_rng r;
	rk_rng_seed(&r, seed);
	struct crdt_counter *a = cnew(0), *b = cnew(0), *c = cnew(0);
	for (int it = 0; it < 5000; it++) {
		random_state(&r, a);
		random_state(&r, b);
		random_state(&r, c);
		/* commutative */
		struct crdt_counter *ab = ccopy(a), *ba = ccopy(b);
		cr_assert_geq(crdt_merge(ab, b), 0);
		cr_assert_geq(crdt_merge(ba, a), 0);
		cr_assert(crdt_equal(ab, ba), "iteration %d", it);
		/* associative */
		struct crdt_counter *ab_c = ccopy(ab), *bc = ccopy(b);
		cr_assert_geq(crdt_merge(ab_c, c), 0);
		cr_assert_geq(crdt_merge(bc, c), 0);
		struct crdt_counter *a_bc = ccopy(a);
		cr_assert_geq(crdt_merge(a_bc, bc), 0);
		cr_assert(crdt_equal(ab_c, a_bc), "iteration %d", it);
		/* idempotent, and the join covers both sides */
		struct crdt_counter *aa = ccopy(a);
		cr_assert_eq(crdt_merge(aa, a), 0);
		cr_assert_eq(crdt_merge(aa, aa), 0);
		cr_assert(crdt_equal(aa, a));
		cr_assert_eq(crdt_merge(ab, a), 0);
		cr_assert_eq(crdt_merge(ab, b), 0);
		/* the return value says whether dst changed */
		struct crdt_counter *x = ccopy(a);
		int rc = crdt_merge(x, b);
		cr_assert_eq(rc, !crdt_equal(a, ab));
		crdt_free(x);
		crdt_free(aa);
		crdt_free(a_bc);
		crdt_free(bc);
		crdt_free(ab_c);
		crdt_free(ba);
		crdt_free(ab);
	}
	crdt_free(a);
	crdt_free(b);
	crdt_free(c);
}

Test(crdt, a_delete_starts_a_generation_stale_entries_cannot_resurrect)
{
	struct crdt_counter *x = cnew(0), *y = cnew(0);
	struct crdt_delta d;
	cr_assert_eq(crdt_add(x, 1, 50, NULL, &d), 0);
	cr_assert_eq(crdt_apply_delta(y, &d), 1);
	cr_assert_eq(crdt_apply_delta(y, &d), 0); /* twice: no change */
	struct crdt_counter *stale = ccopy(y);	  /* missed the delete */
	rk_ts del = {1000, 2};
	cr_assert_eq(crdt_delete(x, del), 1);
	cr_assert_eq(crdt_delete(x, del), 0);
	cr_assert(crdt_is_empty(x));
	cr_assert_eq(value(x), 0);
	cr_assert_eq(rk_ts_cmp(crdt_generation(x), del), 0);
	/* The stale replica's totals lose to the generation... */
	cr_assert_eq(crdt_merge(x, stale), 0);
	cr_assert_eq(value(x), 0);
	/* ...and its repair takes the delete. */
	cr_assert_eq(crdt_merge(stale, x), 1);
	cr_assert(crdt_equal(stale, x));
	/* An add after the owner holds the delete counts from zero. */
	cr_assert_eq(crdt_add(x, 1, 7, NULL, &d), 0);
	cr_assert_eq(value(x), 7);
	cr_assert_eq(rk_ts_cmp(d.gen, del), 0);
	/* y never saw the delete: the delta's generation starts it there. */
	cr_assert_eq(crdt_apply_delta(y, &d), 1);
	cr_assert_eq(value(y), 7);
	cr_assert(crdt_equal(x, y));
	/* An older delete changes nothing. */
	cr_assert_eq(crdt_delete(y, (rk_ts){999, 9}), 0);
	cr_assert_eq(value(y), 7);
	crdt_free(stale);
	crdt_free(x);
	crdt_free(y);
}

Test(crdt, concurrent_add_and_delete_the_delete_wins)
{
	/* The owner applies an add before the delete reaches it: the add
	 * is in the old generation and dropped everywhere.  Documented. */
	struct crdt_counter *owner = cnew(0), *other = cnew(0);
	cr_assert_eq(crdt_add(owner, 1, 5, NULL, NULL), 0);
	cr_assert_eq(crdt_merge(other, owner), 1);
	cr_assert_eq(crdt_delete(other, (rk_ts){500, 2}), 1);
	struct crdt_delta d;
	cr_assert_eq(crdt_add(owner, 1, 100, NULL, &d), 0);
	cr_assert_eq(crdt_apply_delta(other, &d), 0);
	cr_assert_eq(crdt_merge(owner, other), 1);
	cr_assert_eq(value(owner), 0);
	cr_assert(crdt_equal(owner, other));
	crdt_free(owner);
	crdt_free(other);
}

/* A message between replicas: a delta, or a whole state (read repair,
 * hints, catch-up, a delete's replication). */
struct msg {
	int is_state;
	struct crdt_delta d;
	struct crdt_counter *s;
};

Test(crdt, any_delivery_of_deltas_and_states_converges_to_the_exact_sum)
{
	uint64_t seed = rk_test_seed("crdt.converge");
	struct rk_rng r;
	rk_rng_seed(&r, seed);
	enum { N = 5, ROUNDS = 40, STEPS = 300 };
	for (int round = 0; round < ROUNDS; round++) {
		struct crdt_counter *rep[N];
		for (int i = 0; i < N; i++)
			rep[i] = cnew(0);
		struct msg *m = calloc(STEPS, sizeof(*m));
		size_t nm = 0;
		/* (generation, delta) of every add, to compute the answer */
		rk_ts *add_gen = calloc(STEPS, sizeof(*add_gen));
		int64_t *add_d = calloc(STEPS, sizeof(*add_d));
		size_t na = 0;
		uint64_t clock = 0;
		int deletes = round % 2; /* half the rounds delete too */
		for (int s = 0; s < STEPS; s++) {
			uint64_t what = rk_rng_below(&r, 100);
			int i = (int)rk_rng_below(&r, N);
			if (what < 50) {
				int64_t dv =
				    (int64_t)rk_rng_below(&r, 2001) - 1000;
				struct crdt_delta d;
				cr_assert_eq(crdt_add(rep[i], (uint64_t)i + 1,
						      dv, NULL, &d),
					     0);
				add_gen[na] = d.gen;
				add_d[na++] = dv;
				m[nm++] = (struct msg){.d = d};
			} else if (what < 55 && deletes) {
				rk_ts g = {++clock, (uint64_t)i + 1};
				cr_assert_eq(crdt_delete(rep[i], g), 1);
				m[nm++] = (struct msg){.is_state = 1,
						       .s = ccopy(rep[i])};
			} else if (what < 60) {
				m[nm++] = (struct msg){.is_state = 1,
						       .s = ccopy(rep[i])};
			} else if (nm) {
				/* deliver a random earlier message: any order,
				 * any number of times */
				struct msg *x = &m[rk_rng_below(&r, nm)];
				int rc = x->is_state
					     ? crdt_merge(rep[i], x->s)
					     : crdt_apply_delta(rep[i], &x->d);
				cr_assert_geq(rc, 0);
			}
		}
		/* Heal: every replica gets every message, in its own random
		 * order. */
		size_t *order = calloc(nm ? nm : 1, sizeof(*order));
		for (int i = 0; i < N; i++) {
			for (size_t k = 0; k < nm; k++)
				order[k] = k;
			for (size_t k = nm; k > 1; k--) {
				size_t j = rk_rng_below(&r, k);
				size_t t = order[k - 1];
				order[k - 1] = order[j];
				order[j] = t;
			}
			for (size_t k = 0; k < nm; k++) {
				struct msg *x = &m[order[k]];
				cr_assert_geq(
				    x->is_state
					? crdt_merge(rep[i], x->s)
					: crdt_apply_delta(rep[i], &x->d),
				    0);
			}
		}
		/* The answer: the adds applied in the newest generation (the
		 * last delete's, stamped hlc == clock; zero without one). */
		int64_t want = 0;
		for (size_t k = 0; k < na; k++)
			if (add_gen[k].hlc == clock)
				want += add_d[k];
		for (int i = 0; i < N; i++) {
			cr_assert(crdt_equal(rep[i], rep[0]), "round %d",
				  round);
			cr_assert_eq(value(rep[i]), want, "round %d", round);
		}
		for (size_t k = 0; k < nm; k++)
			crdt_free(m[k].s);
		for (int i = 0; i < N; i++)
			crdt_free(rep[i]);
		free(order);
		free(add_d);
		free(add_gen);
		free(m);
	}
}

/* ---- codecs ---- */

static int well_formed(const struct crdt_counter *c)
{
	for (size_t i = 1; i < crdt_entry_count(c); i++)
		if (crdt_entry_at(c, i).node <= crdt_entry_at(c, i - 1).node)
			return 0;
	return crdt_entry_count(c) <= CRDT_ENTRIES_HARD_MAX;
}

Test(crdt, state_codec_round_trips_and_is_canonical)
{
	uint64_t seed = rk_test_seed("crdt.codec");
	struct rk_rng r;
	rk_rng_seed(&r, seed);
	struct crdt_counter *a = cnew(0), *b = cnew(0), *out = cnew(0);
	uint8_t x[4096], y[4096];
	for (int it = 0; it < 2000; it++) {
		random_state(&r, a);
		random_state(&r, b);
		size_t n = crdt_encoded_size(a);
		cr_assert_eq(n, CRDT_STATE_FIXED +
				    crdt_entry_count(a) * CRDT_ENTRY_SIZE);
		crdt_encode(a, x);
		cr_assert_eq(crdt_decode(out, x, n), 0);
		cr_assert(crdt_equal(out, a));
		/* equal states, built in different orders, equal bytes */
		struct crdt_counter *ab = ccopy(a), *ba = ccopy(b);
		crdt_merge(ab, b);
		crdt_merge(ba, a);
		crdt_encode(ab, x);
		crdt_encode(ba, y);
		cr_assert_eq(crdt_encoded_size(ab), crdt_encoded_size(ba));
		cr_assert_eq(memcmp(x, y, crdt_encoded_size(ab)), 0);
		crdt_free(ab);
		crdt_free(ba);
	}
	/* the largest state round-trips too */
	struct crdt_counter *big = cnew(0);
	for (uint64_t k = 0; k < CRDT_ENTRIES_HARD_MAX; k++)
		cr_assert_eq(
		    crdt_add(big, k * 7919, (int64_t)k - 2000, NULL, NULL), 0);
	cr_assert_eq(crdt_add(big, 1, 1, NULL, NULL), RK_EVALUE_TOO_LARGE);
	size_t bn = crdt_encoded_size(big);
	cr_assert_eq(bn, 98332);
	uint8_t *bb = malloc(bn);
	crdt_encode(big, bb);
	cr_assert_eq(crdt_decode(out, bb, bn), 0);
	cr_assert(crdt_equal(out, big));
	free(bb);
	crdt_free(big);
	crdt_free(a);
	crdt_free(b);
	crdt_free(out);
}

Test(crdt, state_decoder_rejects_every_truncation_and_bit_flip)
{
	struct crdt_counter *a = cnew(0), *out = cnew(0);
	crdt_delete(a, (rk_ts){77, 3});
	for (uint64_t k = 0; k < 4; k++)
		crdt_add(a, nodes[k], (int64_t)(k * 1000) - 1500, NULL, NULL);
	uint8_t x[512];
	size_t n = crdt_encoded_size(a);
	crdt_encode(a, x);
	struct crdt_counter *keep = cnew(0);
	crdt_add(keep, 1, 1, NULL, NULL);
	struct crdt_counter *before = ccopy(keep);
	for (size_t len = 0; len < n; len++)
		cr_assert_lt(crdt_decode(keep, x, len), 0, "len %zu", len);
	for (size_t bit = 0; bit < n * 8; bit++) {
		x[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		/* CRC-32C catches every single-bit error */
		cr_assert_eq(crdt_decode(keep, x, n), RK_ECORRUPT, "bit %zu",
			     bit);
		x[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	}
	cr_assert(crdt_equal(keep, before)); /* failures change nothing */
	cr_assert_eq(crdt_decode(out, x, n), 0);
	cr_assert(crdt_equal(out, a));
	crdt_free(before);
	crdt_free(keep);
	crdt_free(a);
	crdt_free(out);
}

/* Recomputes the trailing CRC so the structural checks behind it run. */
static void fix_crc(uint8_t *p, size_t len)
{
	if (len >= 4)
		rk_put_le32(p + len - 4, rk_crc32c(0, p, len - 4));
}

Test(crdt, decoders_survive_random_and_mutated_input)
{
	uint64_t seed = rk_test_seed("crdt.fuzz");
	struct rk_rng r;
	rk_rng_seed(&r, seed);
	struct crdt_counter *a = cnew(0), *out = cnew(0);
	uint8_t x[1024], y[1024];
	int accepted = 0;
	for (int it = 0; it < 50000; it++) {
		size_t n;
		if (it % 2) {
			/* random bytes, a random length, sometimes with a
			 * plausible header and a valid CRC */
			n = rk_rng_below(&r, 300);
			for (size_t i = 0; i < n; i++)
				x[i] = (uint8_t)rk_rng_next(&r);
			if (n >= CRDT_STATE_FIXED && rk_rng_below(&r, 2)) {
				x[0] = 1;
				x[1] = (uint8_t)rk_rng_below(&r, 3);
				x[2] = x[3] = 0;
				rk_put_le32(x + 4, (uint32_t)((n - 28) / 24));
				fix_crc(x, n);
			}
		} else {
			/* a valid state, mutated in a few bytes, CRC fixed */
			random_state(&r, a);
			n = crdt_encoded_size(a);
			crdt_encode(a, x);
			int k = 1 + (int)rk_rng_below(&r, 3);
			for (int j = 0; j < k; j++)
				x[rk_rng_below(&r, n)] ^=
				    (uint8_t)(1 + rk_rng_below(&r, 255));
			if (rk_rng_below(&r, 4))
				fix_crc(x, n);
		}
		if (crdt_decode(out, x, n) == 0) {
			/* accepted: a valid state, and exactly these bytes */
			accepted++;
			cr_assert(well_formed(out));
			cr_assert_eq(crdt_encoded_size(out), n);
			crdt_encode(out, y);
			cr_assert_eq(memcmp(x, y, n), 0);
		}
		struct crdt_delta d;
		if (crdt_delta_decode(x, n, &d) == 0) {
			crdt_delta_encode(&d, y);
			cr_assert_eq(memcmp(x, y, CRDT_DELTA_SIZE), 0);
		}
	}
	cr_assert_gt(accepted, 0, "no mutated input got past the CRC");
	crdt_free(a);
	crdt_free(out);
}

Test(crdt, delta_codec_round_trips_and_rejects_damage)
{
	struct crdt_delta d = {{123456789, 4}, {0xfeedull, 10, 20}, {{0}}}, e;
	crdt_opid_make(&d.op, 1700000000000ull, 0xabcdefull);
	uint8_t x[CRDT_DELTA_SIZE + 1];
	crdt_delta_encode(&d, x);
	cr_assert_eq(crdt_delta_decode(x, CRDT_DELTA_SIZE, &e), 0);
	cr_assert_eq(memcmp(&d, &e, sizeof(d)), 0);
	for (size_t len = 0; len <= CRDT_DELTA_SIZE + 1; len++)
		if (len != CRDT_DELTA_SIZE)
			cr_assert_eq(crdt_delta_decode(x, len, &e),
				     RK_ECORRUPT);
	for (size_t bit = 0; bit < CRDT_DELTA_SIZE * 8; bit++) {
		x[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		cr_assert_eq(crdt_delta_decode(x, CRDT_DELTA_SIZE, &e),
			     RK_ECORRUPT);
		x[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	}
	/* a delta is not a state, nor a state a delta */
	struct crdt_counter *c = cnew(0);
	cr_assert_eq(crdt_decode(c, x, CRDT_DELTA_SIZE), RK_ECORRUPT);
	crdt_add(c, 1, 1, NULL, NULL);
	crdt_add(c, 2, 1, NULL, NULL);
	uint8_t s[CRDT_STATE_FIXED + 2 * CRDT_ENTRY_SIZE];
	crdt_encode(c, s);
	cr_assert_eq(sizeof(s), CRDT_DELTA_SIZE + 8);
	cr_assert_eq(crdt_delta_decode(s, CRDT_DELTA_SIZE, &e), RK_ECORRUPT);
	crdt_free(c);
}

/* ---- owners ---- */

Test(crdt, the_owner_of_an_op_id_is_the_same_from_every_coordinator)
{
	uint64_t seed = rk_test_seed("crdt.owner");
	struct rk_rng r;
	rk_rng_seed(&r, seed);
	uint64_t pref[3] = {rk_rng_next(&r), rk_rng_next(&r), rk_rng_next(&r)};
	uint64_t rot[3] = {pref[2], pref[0], pref[1]};
	uint64_t two[2] = {pref[0], pref[2]}; /* pref[1] left the list */
	int count[3] = {0};
	enum { OPS = 30000 };
	for (int i = 0; i < OPS; i++) {
		struct crdt_opid id;
		crdt_opid_make(&id, 1000 + (uint64_t)i, rk_rng_next(&r));
		size_t o = crdt_owner(&id, pref, 3);
		cr_assert_eq(pref[o], rot[crdt_owner(&id, rot, 3)]);
		count[o]++;
		/* Only the ops of the node that left move. */
		uint64_t now = two[crdt_owner(&id, two, 2)];
		if (o != 1)
			cr_assert_eq(now, pref[o]);
		cr_assert_eq(crdt_owner(&id, pref, 1), 0);
	}
	for (int k = 0; k < 3; k++)
		cr_assert(count[k] > OPS * 0.30 && count[k] < OPS * 0.37,
			  "owner %d got %d of %d", k, count[k], OPS);
}

/* ---- the dedup window ---- */

static struct crdt_dedup *dnew(uint32_t max_ids, uint64_t max_age_ms)
{
	struct crdt_dedup_config cfg;
	crdt_dedup_config_default(&cfg);
	cfg.max_ids = max_ids;
	cfg.max_age_ms = max_age_ms;
	cfg.hash_seed = 12345;
	struct crdt_dedup *d = NULL;
	cr_assert_eq(crdt_dedup_new(&cfg, &d), 0);
	return d;
}

static struct crdt_opid opid(uint64_t ms, uint64_t rnd)
{
	struct crdt_opid id;
	crdt_opid_make(&id, ms, rnd);
	return id;
}

Test(crdt, dedup_config_is_validated)
{
	struct crdt_dedup_config cfg;
	struct crdt_dedup *d = NULL;
	crdt_dedup_config_default(&cfg);
	cr_assert_eq(cfg.max_ids, 1000000);
	cr_assert_eq(cfg.max_age_ms, 3600000);
	cfg.max_ids = 0;
	cr_assert_eq(crdt_dedup_new(&cfg, &d), RK_EINVALID);
	cfg.max_ids = CRDT_DEDUP_HARD_MAX_IDS + 1;
	cr_assert_eq(crdt_dedup_new(&cfg, &d), RK_EINVALID);
	cfg.max_ids = 10;
	cfg.max_age_ms = 0;
	cr_assert_eq(crdt_dedup_new(&cfg, &d), RK_EINVALID);
}

Test(crdt, dedup_remembers_what_it_inserted)
{
	struct crdt_dedup *d = dnew(1000, 60000);
	uint64_t now = 1000000;
	struct crdt_opid a = opid(now, 1), b = opid(now, 2);
	cr_assert_eq(crdt_dedup_check(d, &a, now), 0);
	cr_assert_eq(crdt_dedup_insert(d, &a), 0);
	cr_assert_eq(crdt_dedup_check(d, &a, now), 1);
	cr_assert_eq(crdt_dedup_check(d, &b, now), 0);
	cr_assert_eq(crdt_dedup_insert(d, &a), 1);
	struct crdt_dedup_stats st;
	crdt_dedup_get_stats(d, &st);
	cr_assert_eq(st.ids, 1);
	/* times outside (now - max_age, now + max_future] are refused */
	struct crdt_opid old = opid(now - 60000, 3),
			 young = opid(now - 59999, 3);
	cr_assert_eq(crdt_dedup_check(d, &old, now), RK_EINVALID);
	cr_assert_eq(crdt_dedup_check(d, &young, now), 0);
	struct crdt_opid fut = opid(now + CRDT_DEDUP_DEFAULT_MAX_FUTURE_MS, 4);
	struct crdt_opid far =
	    opid(now + CRDT_DEDUP_DEFAULT_MAX_FUTURE_MS + 1, 4);
	cr_assert_eq(crdt_dedup_check(d, &fut, now), 0);
	cr_assert_eq(crdt_dedup_check(d, &far, now), RK_EINVALID);
	/* an all-zero id has time 0: refused */
	struct crdt_opid zero = opid(0, 0);
	cr_assert(crdt_opid_is_zero(&zero));
	cr_assert_eq(crdt_dedup_check(d, &zero, now), RK_EINVALID);
	crdt_dedup_free(d);
}

Test(crdt, dedup_forgets_by_count_and_refuses_what_it_forgot)
{
	struct crdt_dedup *d = dnew(100, 3600000);
	uint64_t now = 5000000;
	for (uint64_t i = 0; i < 250; i++) {
		struct crdt_opid id = opid(now - 1000 + i, i);
		cr_assert_eq(crdt_dedup_insert(d, &id), 0);
	}
	struct crdt_dedup_stats st;
	crdt_dedup_get_stats(d, &st);
	cr_assert_eq(st.ids, 100);
	cr_assert_eq(st.evicted_count, 150);
	cr_assert_eq(st.watermark_ms, now - 1000 + 149);
	for (uint64_t i = 0; i < 250; i++) {
		struct crdt_opid id = opid(now - 1000 + i, i);
		cr_assert_eq(crdt_dedup_check(d, &id, now),
			     i < 150 ? RK_EINVALID : 1, "id %lu",
			     (unsigned long)i);
	}
	/* a new id at or below the watermark might be a forgotten one */
	struct crdt_opid late = opid(now - 1000 + 149, 999);
	cr_assert_eq(crdt_dedup_check(d, &late, now), RK_EINVALID);
	struct crdt_opid fresh = opid(now - 1000 + 150, 999);
	cr_assert_eq(crdt_dedup_check(d, &fresh, now), 0);
	crdt_dedup_free(d);

	struct crdt_dedup *one = dnew(1, 3600000);
	struct crdt_opid x = opid(now, 1), y = opid(now + 1, 2);
	cr_assert_eq(crdt_dedup_insert(one, &x), 0);
	cr_assert_eq(crdt_dedup_insert(one, &y), 0);
	cr_assert_eq(crdt_dedup_check(one, &x, now + 1), RK_EINVALID);
	cr_assert_eq(crdt_dedup_check(one, &y, now + 1), 1);
	crdt_dedup_free(one);
}

Test(crdt, dedup_forgets_by_age)
{
	struct crdt_dedup *d = dnew(1000, 10000);
	for (uint64_t t = 0; t < 100; t++) {
		struct crdt_opid id = opid(100000 + t * 100, t);
		crdt_dedup_insert(d, &id);
	}
	cr_assert_eq(crdt_dedup_expire(d, 100000 + 9999), 0);
	/* ids stamped at or before now - 10000 go */
	cr_assert_eq(crdt_dedup_expire(d, 100000 + 10000 + 4999), 50);
	struct crdt_dedup_stats st;
	crdt_dedup_get_stats(d, &st);
	cr_assert_eq(st.ids, 50);
	cr_assert_eq(st.evicted_age, 50);
	cr_assert_eq(crdt_dedup_watermark(d), 100000 + 4900);
	uint64_t now = 100000 + 10000 + 4999;
	struct crdt_opid gone = opid(100000 + 4900, 49),
			 kept = opid(105000, 50);
	cr_assert_eq(crdt_dedup_check(d, &gone, now), RK_EINVALID);
	cr_assert_eq(crdt_dedup_check(d, &kept, now), 1);
	/* the watermark can be raised (a snapshot's) but never lowered */
	crdt_dedup_raise_watermark(d, 5);
	cr_assert_eq(crdt_dedup_watermark(d), 100000 + 4900);
	crdt_dedup_raise_watermark(d, 106000);
	struct crdt_opid new_low = opid(105999, 777);
	cr_assert_eq(crdt_dedup_check(d, &new_low, now), RK_EINVALID);
	cr_assert_eq(crdt_dedup_check(d, &kept, now), 1); /* held wins */
	cr_assert_eq(crdt_dedup_expire(d, 1000000), 50);
	crdt_dedup_get_stats(d, &st);
	cr_assert_eq(st.ids, 0);
	/* empty, then used again */
	struct crdt_opid again = opid(2000000, 1);
	cr_assert_eq(crdt_dedup_insert(d, &again), 0);
	cr_assert_eq(crdt_dedup_check(d, &again, 2000000), 1);
	crdt_dedup_free(d);
}

struct idlist {
	struct crdt_opid *v;
	size_t n;
};

static void collect(void *ctx, const struct crdt_opid *id)
{
	struct idlist *l = ctx;
	l->v[l->n++] = *id;
}

Test(crdt, dedup_matches_a_fifo_model_and_rebuilds_from_log_order)
{
	uint64_t seed = rk_test_seed("crdt.dedup_model");
	struct rk_rng r;
	rk_rng_seed(&r, seed);
	enum { OPS = 60000, MAX = 5000, AGE = 20000 };
	struct crdt_dedup *d = dnew(MAX, AGE);
	struct crdt_opid *log = malloc(OPS * sizeof(*log)); /* all inserts */
	size_t nlog = 0, head = 0; /* the model: log[head, nlog) is held */
	uint64_t now = 1000000;
	for (int op = 0; op < OPS; op++) {
		now += rk_rng_below(&r, 3);
		uint64_t what = rk_rng_below(&r, 100);
		if (what < 80 || nlog == head) {
			struct crdt_opid id = opid(now, rk_rng_next(&r));
			cr_assert_eq(crdt_dedup_check(d, &id, now), 0);
			cr_assert_eq(crdt_dedup_insert(d, &id), 0);
			log[nlog++] = id;
			if (nlog - head > MAX)
				head++;
		} else if (what < 95) {
			/* a retry of something held */
			size_t k = head + rk_rng_below(&r, nlog - head);
			cr_assert_eq(crdt_dedup_check(d, &log[k], now), 1);
			cr_assert_eq(crdt_dedup_insert(d, &log[k]), 1);
		} else {
			size_t k = crdt_dedup_expire(d, now), want = 0;
			while (head < nlog &&
			       crdt_opid_ms(&log[head]) + AGE <= now) {
				head++;
				want++;
			}
			cr_assert_eq(k, want);
		}
		/* the invariant: inserted => held, or at/below watermark */
		if (nlog) {
			size_t k = rk_rng_below(&r, nlog);
			int rc = crdt_dedup_check(d, &log[k], now);
			if (k >= head)
				cr_assert_eq(rc, 1);
			else
				cr_assert_eq(rc, RK_EINVALID);
		}
	}
	crdt_dedup_expire(d, now);
	while (head < nlog && crdt_opid_ms(&log[head]) + AGE <= now)
		head++;
	struct idlist a = {malloc(MAX * sizeof(struct crdt_opid)), 0};
	crdt_dedup_foreach(d, collect, &a);
	cr_assert_eq(a.n, nlog - head);
	cr_assert_eq(memcmp(a.v, &log[head], a.n * sizeof(*a.v)), 0);

	/* Restart: replay the log in order, then expire: the same window
	 * and the same watermark. */
	struct crdt_dedup *re = dnew(MAX, AGE);
	for (size_t k = 0; k < nlog; k++)
		cr_assert_eq(crdt_dedup_insert(re, &log[k]), 0);
	crdt_dedup_expire(re, now);
	struct idlist b = {malloc(MAX * sizeof(struct crdt_opid)), 0};
	crdt_dedup_foreach(re, collect, &b);
	cr_assert_eq(b.n, a.n);
	cr_assert_eq(memcmp(a.v, b.v, a.n * sizeof(*a.v)), 0);
	cr_assert_eq(crdt_dedup_watermark(re), crdt_dedup_watermark(d));
	free(a.v);
	free(b.v);
	free(log);
	crdt_dedup_free(re);
	crdt_dedup_free(d);
}

/* ---- exactly once, end to end over the pure parts ---- */

struct replica {
	uint64_t node;
	struct crdt_counter *c;
	struct crdt_dedup *d;
	struct crdt_delta *log; /* the op-log: every delta applied, in order */
	size_t nlog;
};

static void replica_apply(struct replica *p, const struct crdt_delta *dl)
{
	cr_assert_geq(crdt_apply_delta(p->c, dl), 0);
	cr_assert_geq(crdt_dedup_insert(p->d, &dl->op), 0);
	p->log[p->nlog++] = *dl;
}

/* A crash and a boot: state and window rebuilt from the log alone. */
static void replica_restart(struct replica *p, uint64_t now)
{
	struct crdt_counter *c = cnew(0);
	struct crdt_dedup *d = dnew(1000000, 3600000);
	for (size_t k = 0; k < p->nlog; k++) {
		cr_assert_geq(crdt_apply_delta(c, &p->log[k]), 0);
		cr_assert_geq(crdt_dedup_insert(d, &p->log[k].op), 0);
	}
	crdt_dedup_expire(d, now);
	cr_assert(crdt_equal(c, p->c));
	crdt_free(p->c);
	crdt_dedup_free(p->d);
	p->c = c;
	p->d = d;
}

struct pending {
	int to;
	struct crdt_delta dl;
};

Test(crdt, a_retry_storm_through_random_coordinators_counts_each_op_once)
{
	uint64_t seed = rk_test_seed("crdt.retry_storm");
	struct rk_rng r;
	rk_rng_seed(&r, seed);
	enum { RF = 3, OPS = 3000, MAX_TRIES = 5 };
	struct replica rep[RF];
	uint64_t pref[RF];
	for (int i = 0; i < RF; i++) {
		pref[i] = rk_rng_next(&r);
		rep[i] = (struct replica){
		    pref[i], cnew(0), dnew(1000000, 3600000),
		    malloc(OPS * RF * sizeof(struct crdt_delta)), 0};
	}
	struct crdt_opid *ids = malloc(OPS * sizeof(*ids));
	int64_t *dv = malloc(OPS * sizeof(*dv));
	int64_t want = 0;
	uint64_t t0 = 1700000000000ull, now = t0;
	int *tries = malloc(OPS * MAX_TRIES * sizeof(*tries));
	size_t ntries = 0;
	for (int i = 0; i < OPS; i++) {
		crdt_opid_make(&ids[i], t0 + (uint64_t)i / 10, rk_rng_next(&r));
		dv[i] = (int64_t)rk_rng_below(&r, 201) - 100;
		want += dv[i];
		int k = 1 + (int)rk_rng_below(&r, MAX_TRIES);
		for (int j = 0; j < k; j++)
			tries[ntries++] = i;
	}
	for (size_t k = ntries; k > 1; k--) {
		size_t j = rk_rng_below(&r, k);
		int t = tries[k - 1];
		tries[k - 1] = tries[j];
		tries[j] = t;
	}
	struct pending *q = malloc(OPS * RF * sizeof(*q));
	size_t nq = 0, applied = 0, dups = 0;
	for (size_t t = 0; t < ntries; t++) {
		now = t0 + t / 5;
		int op = tries[t];
		/* Any coordinator, seeing the preference list in its own
		 * order, picks the same owner. */
		uint64_t view[RF];
		memcpy(view, pref, sizeof(view));
		for (int k = RF; k > 1; k--) {
			int j = (int)rk_rng_below(&r, (uint64_t)k);
			uint64_t x = view[k - 1];
			view[k - 1] = view[j];
			view[j] = x;
		}
		uint64_t owner = view[crdt_owner(&ids[op], view, RF)];
		int o = 0;
		while (rep[o].node != owner)
			o++;
		int rc = crdt_dedup_check(rep[o].d, &ids[op], now);
		cr_assert_geq(rc, 0, "op %d refused", op);
		if (rc == 1) {
			dups++;
		} else {
			struct crdt_delta dl;
			cr_assert_eq(
			    crdt_add(rep[o].c, owner, dv[op], &ids[op], &dl),
			    0);
			cr_assert_eq(crdt_dedup_insert(rep[o].d, &ids[op]), 0);
			rep[o].log[rep[o].nlog++] = dl;
			applied++;
			for (int k = 0; k < RF; k++)
				if (k != o)
					q[nq++] = (struct pending){k, dl};
		}
		/* The network: deliver some, out of order, some twice. */
		while (nq && rk_rng_below(&r, 3) == 0) {
			size_t k = rk_rng_below(&r, nq);
			replica_apply(&rep[q[k].to], &q[k].dl);
			if (rk_rng_below(&r, 4))
				q[k] = q[--nq];
		}
		if (rk_rng_below(&r, 500) == 0)
			replica_restart(&rep[rk_rng_below(&r, RF)], now);
	}
	cr_assert_eq(applied, OPS);
	cr_assert_eq(applied + dups, ntries);
	for (size_t k = 0; k < nq; k++)
		replica_apply(&rep[q[k].to], &q[k].dl);
	for (int i = 0; i < RF; i++) {
		cr_assert(crdt_equal(rep[i].c, rep[0].c));
		cr_assert_eq(value(rep[i].c), want);
	}

	/* The ring changes: pref[1] leaves, its ops get new owners, who
	 * learned the op ids from the replicated deltas. */
	uint64_t two[2] = {pref[0], pref[2]};
	for (int op = 0; op < OPS; op++) {
		int o = two[crdt_owner(&ids[op], two, 2)] == pref[0] ? 0 : 2;
		cr_assert_eq(crdt_dedup_check(rep[o].d, &ids[op], now), 1);
	}
	for (int i = 0; i < RF; i++) {
		crdt_free(rep[i].c);
		crdt_dedup_free(rep[i].d);
		free(rep[i].log);
	}
	free(q);
	free(tries);
	free(dv);
	free(ids);
}
