/* test_ring.c: the ring's promises.  Lookups are checked against a naive
 * walk over the vnode list, diffs against lookups of many random keys, and
 * the balance and movement targets of issue 3 are computed exactly (shares
 * are integer sums, not samples), so asserting them is not a timing test.
 * Randomized tests print their seed; RINGKV_SEED=N replays one. */
#include <criterion/criterion.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crc32c.h"
#include "err.h"
#include "hash.h"
#include "ring.h"
#include "rng.h"

#define VPW RING_VNODES_PER_WEIGHT

/* ---- helpers ---- */

/* A member list the test owns: ids, weights and token arrays. */
struct mset {
	size_t n;
	struct ring_member m[128];
	uint64_t *tok[128];
};

static void mset_free(struct mset *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->tok[i]);
	s->n = 0;
}

static void mset_add(struct mset *s, uint64_t id, uint32_t weight,
		     const uint64_t *tokens, size_t n)
{
	cr_assert_lt(s->n, 128);
	s->tok[s->n] = malloc(n * sizeof(uint64_t));
	memcpy(s->tok[s->n], tokens, n * sizeof(uint64_t));
	s->m[s->n] = (struct ring_member){id, weight, s->tok[s->n], n};
	s->n++;
}

/* Adds a member with n random tokens. */
static void mset_add_random(struct mset *s, struct rk_rng *rng, uint64_t id,
			    uint32_t weight, size_t n)
{
	uint64_t *t = malloc(n * sizeof(uint64_t));
	for (size_t i = 0; i < n; i++)
		t[i] = rk_rng_next(rng);
	mset_add(s, id, weight, t, n);
	free(t);
}

/* Adds node id with tokens allocated against r. */
static void mset_join(struct mset *s, const struct ring *r, uint64_t id,
		      uint32_t weight, size_t rf)
{
	size_t cap = (size_t)weight * VPW, n = 0;
	uint64_t *t = malloc(cap * sizeof(uint64_t));
	cr_assert_eq(ring_allocate_tokens(r, id, weight, VPW, rf, t, cap, &n),
		     0);
	cr_assert_eq(n, cap);
	mset_add(s, id, weight, t, n);
	free(t);
}

static void mset_remove(struct mset *s, size_t i)
{
	free(s->tok[i]);
	s->tok[i] = s->tok[s->n - 1];
	s->m[i] = s->m[s->n - 1];
	s->n--;
}

static struct ring *build(const struct mset *s, uint32_t rf_max)
{
	struct ring_config cfg = {.epoch = 1, .rf_max = rf_max};
	struct ring *r = NULL;
	int rc = ring_new(s->m, s->n, &cfg, &r);
	cr_assert_eq(rc, 0, "ring_new: %s", rk_strerror(rc));
	return r;
}

/* The first n distinct nodes clockwise from token, by walking the public
 * vnode list: the definition, independent of the precomputed lists. */
static size_t naive_owners(const struct ring *r, uint64_t token, size_t n,
			   uint64_t *out)
{
	size_t nv = ring_vnode_count(r), v = 0, got = 0;
	while (v < nv && ring_vnode_token(r, v) < token)
		v++;
	for (size_t step = 0; step < nv && got < n; step++) {
		uint64_t id = ring_vnode_node(r, (v + step) % nv);
		size_t k = 0;
		while (k < got && out[k] != id)
			k++;
		if (k == got)
			out[got++] = id;
	}
	return got;
}

static int same_set(const uint64_t *a, size_t na, const uint64_t *b, size_t nb)
{
	if (na != nb)
		return 0;
	for (size_t i = 0; i < na; i++) {
		size_t j = 0;
		while (j < nb && b[j] != a[i])
			j++;
		if (j == nb)
			return 0;
	}
	return 1;
}

static int in_range(uint64_t t, uint64_t start, uint64_t end)
{
	if (start == end)
		return 1; /* the whole circle */
	if (start < end)
		return t > start && t <= end;
	return t > start || t <= end;
}

static void shuffle(struct rk_rng *rng, struct ring_member *m, size_t n)
{
	for (size_t i = n; i > 1; i--) {
		size_t j = (size_t)rk_rng_below(rng, i);
		struct ring_member t = m[i - 1];
		m[i - 1] = m[j];
		m[j] = t;
	}
}

/* ---- the key hash ---- */

/* rk_key_hash is the wire contract with smart clients: XXH3-64, seed 0.
 * The vectors come from libxxhash 0.8.1 and the xxHash test suite (the
 * empty string); a client in any language must reproduce them. */
Test(ring, hash_vectors)
{
	static const struct {
		const char *key;
		uint64_t hash;
	} v[] = {
	    {"", 0x2D06800538D394C2ull},
	    {"a", 0xE6C632B61E964E1Full},
	    {"abc", 0x78AF5F94892F3950ull},
	    {"ringkv", 0x115C485CF2D256C6ull},
	    {"user:1000", 0xFB6841B2068C0C9Full},
	    {"0123456789abcdef", 0x64439946D8FA212Dull},
	    {"The quick brown fox jumps over the lazy dog",
	     0xCE7D19A5418FB365ull},
	};
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		cr_expect_eq(rk_key_hash(v[i].key, strlen(v[i].key)), v[i].hash,
			     "key \"%s\"", v[i].key);

	/* Longer keys take XXH3's other code paths (129-240, > 240 bytes). */
	static const struct {
		size_t len;
		uint64_t hash;
	} p[] = {
	    {100, 0x8C97158042FBF926ull},  {200, 0x12FDB864685F344Dull},
	    {240, 0xCCC7375172C41F03ull},  {241, 0x0B3B630948CE4A00ull},
	    {1024, 0x23BC880EBF0D29C6ull},
	};
	unsigned char b[1024];
	for (int i = 0; i < 1024; i++)
		b[i] = (unsigned char)(i * 31 + 7);
	for (size_t i = 0; i < sizeof(p) / sizeof(p[0]); i++)
		cr_expect_eq(rk_key_hash(b, p[i].len), p[i].hash, "len %zu",
			     p[i].len);
}

/* ---- building ---- */

Test(ring, determinism)
{
	struct rk_rng rng;
	rk_rng_seed(&rng, rk_test_seed("ring.determinism"));
	struct mset s = {0};
	for (int i = 0; i < 7; i++)
		mset_add_random(&s, &rng, rk_rng_next(&rng), 1 + i % 3, 20 + i);
	struct ring *a = build(&s, 3);

	for (int round = 0; round < 5; round++) {
		/* Members in another order, each member's tokens too. */
		shuffle(&rng, s.m, s.n);
		for (size_t i = 0; i < s.n; i++) {
			uint64_t *t = (uint64_t *)s.m[i].tokens;
			for (size_t j = s.m[i].n_tokens; j > 1; j--) {
				size_t k = (size_t)rk_rng_below(&rng, j);
				uint64_t x = t[j - 1];
				t[j - 1] = t[k];
				t[k] = x;
			}
		}
		struct ring *b = build(&s, 3);
		cr_assert_eq(ring_checksum(a), ring_checksum(b));
		cr_assert_eq(ring_vnode_count(a), ring_vnode_count(b));
		for (size_t v = 0; v < ring_vnode_count(a); v++) {
			cr_assert_eq(ring_vnode_token(a, v),
				     ring_vnode_token(b, v));
			cr_assert_eq(ring_vnode_node(a, v),
				     ring_vnode_node(b, v));
		}
		for (int k = 0; k < 2000; k++) {
			uint64_t t = rk_rng_next(&rng), x[3], y[3];
			size_t nx, ny;
			ring_lookup(a, t, 3, x, &nx);
			ring_lookup(b, t, 3, y, &ny);
			cr_assert_eq(nx, ny);
			cr_assert_arr_eq(x, y, nx * sizeof(uint64_t));
		}
		ring_free(b);
	}

	/* The epoch is metadata, not content. */
	struct ring_config cfg = {.epoch = 99, .rf_max = 3};
	struct ring *c = NULL;
	cr_assert_eq(ring_new(s.m, s.n, &cfg, &c), 0);
	cr_assert_eq(ring_epoch(c), 99);
	cr_assert_eq(ring_epoch(a), 1);
	cr_assert_eq(ring_checksum(c), ring_checksum(a));
	ring_free(c);

	/* Any change of content changes the checksum. */
	uint64_t *t0 = (uint64_t *)s.m[0].tokens;
	t0[0] ^= 1;
	c = build(&s, 3);
	cr_assert_neq(ring_checksum(c), ring_checksum(a));
	ring_free(c);
	t0[0] ^= 1;
	s.m[1].weight++;
	c = build(&s, 3);
	cr_assert_neq(ring_checksum(c), ring_checksum(a));
	ring_free(c);

	ring_free(a);
	mset_free(&s);
}

Test(ring, rejects_bad_members)
{
	uint64_t t1[] = {10, 20, 30}, t2[] = {5, 20, 40}, dup[] = {7, 7};
	struct ring_member m[2] = {{1, 1, t1, 3}, {1, 1, t2, 3}};
	struct ring *r = NULL;
	cr_expect_eq(ring_new(m, 2, NULL, &r), RK_EINVALID); /* same id */
	m[1].node_id = 2;
	m[1].weight = 0;
	cr_expect_eq(ring_new(m, 2, NULL, &r), RK_EINVALID);
	m[1].weight = 1;
	m[1].n_tokens = 0;
	cr_expect_eq(ring_new(m, 2, NULL, &r), RK_EINVALID);
	m[1].tokens = dup;
	m[1].n_tokens = 2;
	cr_expect_eq(ring_new(m, 2, NULL, &r), RK_EINVALID);
	m[1].n_tokens = RING_TOKENS_MAX + 1;
	cr_expect_eq(ring_new(m, 2, NULL, &r), RK_EINVALID);
	struct ring_config cfg = {.rf_max = RING_RF_MAX + 1};
	cr_expect_eq(ring_new(m, 1, &cfg, &r), RK_EINVALID);
	cr_expect_null(r);
}

/* Token 20 is held by nodes 1 and 2: node 1 (the smaller id) keeps the
 * vnode, whatever the input order, and node 2 still counts its token in
 * the checksum. */
Test(ring, collision_smaller_id_wins)
{
	uint64_t t1[] = {10, 20, 30}, t2[] = {5, 20, 40};
	struct ring_member m[2] = {{2, 1, t2, 3}, {1, 1, t1, 3}};
	struct ring *r = NULL;
	cr_assert_eq(ring_new(m, 2, NULL, &r), 0);
	cr_assert_eq(ring_vnode_count(r), 5);
	uint64_t owner[1];
	size_t n;
	ring_lookup(r, 20, 1, owner, &n);
	cr_expect_eq(owner[0], 1);
	size_t i;
	cr_assert_eq(ring_member_find(r, 2, &i), 0);
	cr_expect_eq(ring_member_vnodes(r, i), 2);
	uint64_t tok[3];
	cr_assert_eq(ring_member_tokens(r, i, tok, 3, &n), 0);
	cr_expect_eq(n, 3);
	cr_expect_eq(ring_member_tokens(r, i, tok, 2, &n), RK_EINVALID);
	ring_free(r);
}

Test(ring, empty_ring)
{
	struct ring *r = NULL;
	cr_assert_eq(ring_new(NULL, 0, NULL, &r), 0);
	uint64_t out[3];
	size_t n = 9, no, ne;
	cr_expect_eq(ring_lookup(r, 42, 3, out, &n), 0);
	cr_expect_eq(n, 0);
	cr_expect_eq(
	    ring_lookup_extended(r, 42, 3, 2, NULL, NULL, out, &no, &ne), 0);
	cr_expect_eq(no + ne, 0);
	struct ring_partition p;
	cr_expect_eq(ring_partition(r, 42, &p), RK_ENOT_FOUND);
	double mm = 1;
	cr_expect_eq(ring_shares(r, 3, NULL, &mm), 0);
	ring_free(r);
}

/* ---- lookup ---- */

/* Preference lists hold min(n, members) distinct nodes, in walk order; the
 * stored lists (n <= rf_max) and the walk (n > rf_max) agree with the
 * definition. */
Test(ring, preference_lists)
{
	struct rk_rng rng;
	rk_rng_seed(&rng, rk_test_seed("ring.preference_lists"));
	for (size_t members = 1; members <= 7; members++) {
		struct mset s = {0};
		for (size_t i = 0; i < members; i++)
			mset_add_random(&s, &rng, 100 + i, 1,
					1 + rk_rng_below(&rng, 40));
		struct ring *r = build(&s, 3);
		for (int k = 0; k < 3000; k++) {
			uint64_t t = rk_rng_next(&rng);
			if (k < 40) /* exactly on a vnode token */
				t = ring_vnode_token(
				    r, rk_rng_below(&rng, ring_vnode_count(r)));
			for (size_t want = 1; want <= 6; want++) {
				uint64_t got[8], exp[8];
				size_t ng, ne;
				ring_lookup(r, t, want, got, &ng);
				ne = naive_owners(r, t, want, exp);
				size_t expect_n =
				    want < members ? want : members;
				cr_assert_eq(ng, expect_n);
				cr_assert_eq(ne, expect_n);
				cr_assert_arr_eq(got, exp, ng * 8,
						 "members %zu want %zu",
						 members, want);
				for (size_t a = 0; a < ng; a++)
					for (size_t b = a + 1; b < ng; b++)
						cr_assert_neq(got[a], got[b]);
			}
		}
		ring_free(r);
		mset_free(&s);
	}
}

Test(ring, wrap_around)
{
	uint64_t ta[] = {1000, UINT64_MAX - 1000}, tb[] = {5000},
		 tc[] = {UINT64_MAX};
	struct ring_member m[] = {{1, 1, ta, 2}, {2, 1, tb, 1}, {3, 1, tc, 1}};
	struct ring *r = NULL;
	cr_assert_eq(ring_new(m, 3, NULL, &r), 0);
	uint64_t out[3];
	size_t n;
	struct {
		uint64_t token, first, second;
	} c[] = {
	    {0, 1, 2},		       /* at the bottom: vnode 1000 */
	    {1000, 1, 2},	       /* exactly on a token */
	    {1001, 2, 1},	       /* next vnode: 5000 */
	    {UINT64_MAX - 1000, 1, 3}, /* on the highest of node 1 */
	    {UINT64_MAX - 999, 3, 1},  /* the top vnode */
	    {UINT64_MAX, 3, 1},	       /* the top itself */
	};
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		ring_lookup(r, c[i].token, 3, out, &n);
		cr_assert_eq(n, 3);
		cr_expect_eq(out[0], c[i].first, "token %" PRIu64, c[i].token);
		cr_expect_eq(out[1], c[i].second, "token %" PRIu64, c[i].token);
	}
	/* Drop the top vnode: keys above the highest token wrap to 1000. */
	struct ring *r2 = NULL;
	cr_assert_eq(ring_new(m, 2, NULL, &r2), 0);
	ring_lookup(r2, UINT64_MAX, 2, out, &n);
	cr_expect_eq(out[0], 1);
	cr_expect_eq(out[1], 2);
	struct ring_partition p;
	cr_assert_eq(ring_partition(r2, UINT64_MAX, &p), 0);
	cr_expect_eq(p.id, 1000);
	cr_expect_eq(p.start, UINT64_MAX - 1000);
	cr_expect_eq(p.end, 1000);
	ring_free(r2);
	ring_free(r);

	/* One vnode owns the whole circle. */
	uint64_t one[] = {77};
	struct ring_member solo = {9, 1, one, 1};
	cr_assert_eq(ring_new(&solo, 1, NULL, &r), 0);
	cr_assert_eq(ring_partition(r, 78, &p), 0);
	cr_expect(p.start == 77 && p.end == 77 && p.id == 77);
	double share, mm;
	cr_assert_eq(ring_shares(r, 3, &share, &mm), 0);
	cr_expect_eq(share, 1.0);
	cr_expect_eq(mm, 1.0);
	ring_free(r);
}

struct health {
	uint64_t down[4];
	size_t ndown;
	size_t calls;
};

static int is_healthy(void *ctx, uint64_t id)
{
	struct health *h = ctx;
	h->calls++;
	for (size_t i = 0; i < h->ndown; i++)
		if (h->down[i] == id)
			return 0;
	return 1;
}

Test(ring, sloppy_quorum)
{
	struct rk_rng rng;
	rk_rng_seed(&rng, rk_test_seed("ring.sloppy_quorum"));
	struct mset s = {0};
	for (int i = 0; i < 8; i++)
		mset_add_random(&s, &rng, 1 + i, 1, 16);
	struct ring *r = build(&s, 3);
	struct health h = {.down = {2, 5}, .ndown = 2};
	for (int k = 0; k < 500; k++) {
		uint64_t t = rk_rng_next(&rng), out[5], walk[8];
		size_t no, ne;
		ring_lookup_extended(r, t, 3, 2, is_healthy, &h, out, &no, &ne);
		cr_assert_eq(no, 3);
		cr_assert_eq(ne, 2);
		size_t nw = naive_owners(r, t, 8, walk);
		cr_assert_eq(nw, 8);
		/* Owners whatever their health, then the next healthy ones
		 * in walk order. */
		cr_assert_arr_eq(out, walk, 3 * 8);
		size_t j = 3;
		for (size_t e = 0; e < 2; e++, j++) {
			while (walk[j] == 2 || walk[j] == 5)
				j++;
			cr_assert_eq(out[3 + e], walk[j]);
		}
	}
	/* Fewer healthy nodes than asked for: as many as there are, each
	 * once. */
	struct health most_down = {.down = {4, 6, 7, 8}, .ndown = 4};
	uint64_t out[8];
	size_t no, ne, healthy_others = 0;
	ring_lookup_extended(r, 0, 3, 5, is_healthy, &most_down, out, &no, &ne);
	cr_assert_eq(no, 3);
	for (uint64_t id = 1; id <= 8; id++) {
		int owner = id == out[0] || id == out[1] || id == out[2];
		healthy_others += !owner && is_healthy(&most_down, id);
	}
	cr_expect_eq(ne, healthy_others);
	for (size_t e = 0; e < ne; e++) {
		cr_expect(is_healthy(&most_down, out[3 + e]));
		for (size_t f = 0; f < 3 + e; f++)
			cr_expect_neq(out[f], out[3 + e]);
	}
	ring_free(r);
	mset_free(&s);
}

/* ---- partitions ---- */

Test(ring, partitions)
{
	struct rk_rng rng;
	rk_rng_seed(&rng, rk_test_seed("ring.partitions"));
	struct mset s = {0};
	for (int i = 0; i < 5; i++)
		mset_add_random(&s, &rng, 1 + i, 1, 32);
	struct ring *r = build(&s, 3);
	for (int k = 0; k < 2000; k++) {
		uint64_t t = rk_rng_next(&rng);
		struct ring_partition p, q;
		cr_assert_eq(ring_partition(r, t, &p), 0);
		cr_assert(in_range(t, p.start, p.end));
		cr_assert_eq(p.id, p.end);
		cr_assert_eq(ring_partition_by_id(r, p.id, &q), 0);
		cr_assert(p.start == q.start && p.end == q.end);
		/* Every token of a partition has the partition's owners. */
		uint64_t a[3], b[3];
		size_t na, nb;
		ring_lookup(r, t, 3, a, &na);
		ring_lookup(r, p.id, 3, b, &nb);
		cr_assert_arr_eq(a, b, 3 * 8);
		ring_lookup(r, p.start + 1, 3, b, &nb);
		cr_assert_arr_eq(a, b, 3 * 8);
	}
	struct ring_partition p;
	cr_expect_eq(ring_partition_by_id(r, ring_vnode_token(r, 0) + 1, &p),
		     RK_ENOT_FOUND);

	/* A join leaves the ids of surviving vnodes alone. */
	mset_join(&s, r, 77, 1, 3);
	struct ring *r2 = build(&s, 3);
	for (size_t v = 0; v < ring_vnode_count(r); v++) {
		struct ring_partition q;
		cr_assert_eq(
		    ring_partition_by_id(r2, ring_vnode_token(r, v), &q), 0);
	}
	ring_free(r2);
	ring_free(r);
	mset_free(&s);
}

/* ---- diff ---- */

/* For many random keys (and every range boundary), the owner sets of old
 * and new differ exactly when the key lies in a listed range, and the
 * listed owners are those the rings give.  Checks the ranges are disjoint
 * and in order too. */
static void check_diff(const struct ring *a, const struct ring *b, size_t rf,
		       struct rk_rng *rng)
{
	struct ring_range_change *ch = NULL;
	size_t n = 0;
	cr_assert_eq(ring_diff(a, b, rf, &ch, &n), 0);
	for (size_t i = 0; i + 1 < n; i++) {
		cr_assert_lt(ch[i].start, ch[i].end, "only the last may wrap");
		cr_assert_leq(ch[i].end, ch[i + 1].start);
	}
	if (n > 1 && ch[n - 1].start >= ch[n - 1].end)
		cr_assert_leq(ch[n - 1].end, ch[0].start);
	for (int k = 0; k < 20000 + 3 * (int)n; k++) {
		uint64_t t;
		if (k < 3 * (int)n) { /* at and around each boundary */
			const struct ring_range_change *c = &ch[k / 3];
			t = k % 3 == 0	 ? c->end
			    : k % 3 == 1 ? c->start + 1
					 : c->end + 1;
		} else {
			t = rk_rng_next(rng);
		}
		uint64_t x[RING_RF_MAX], y[RING_RF_MAX];
		size_t nx = naive_owners(a, t, rf, x);
		size_t ny = naive_owners(b, t, rf, y);
		const struct ring_range_change *hit = NULL;
		for (size_t i = 0; i < n; i++) {
			if (in_range(t, ch[i].start, ch[i].end)) {
				cr_assert_null(hit, "ranges overlap");
				hit = &ch[i];
			}
		}
		if (same_set(x, nx, y, ny)) {
			cr_assert_null(
			    hit, "token %" PRIu64 " listed but unchanged", t);
			continue;
		}
		cr_assert_not_null(hit, "token %" PRIu64 " changed, not listed",
				   t);
		cr_assert_eq(hit->n_old, nx);
		cr_assert_eq(hit->n_new, ny);
		cr_assert_arr_eq(hit->old_nodes, x, nx * 8);
		cr_assert_arr_eq(hit->new_nodes, y, ny * 8);
	}
	free(ch);
}

Test(ring, diff_join_leave_weight)
{
	struct rk_rng rng;
	rk_rng_seed(&rng, rk_test_seed("ring.diff"));
	struct ring *empty = NULL;
	cr_assert_eq(ring_new(NULL, 0, NULL, &empty), 0);
	for (int round = 0; round < 4; round++) {
		struct mset s = {0};
		size_t rf = 1 + (size_t)round % 3;
		size_t nodes = 2 + rk_rng_below(&rng, 6);
		for (size_t i = 0; i < nodes; i++)
			mset_add_random(&s, &rng, rk_rng_next(&rng),
					1 + (uint32_t)rk_rng_below(&rng, 3),
					8 + rk_rng_below(&rng, 24));
		struct ring *a = build(&s, 3);
		check_diff(empty, a, rf, &rng); /* everything is new */
		check_diff(a, a, rf, &rng);	/* nothing changes */
		struct ring_range_change *ch;
		size_t n;
		cr_assert_eq(ring_diff(a, a, rf, &ch, &n), 0);
		cr_expect_eq(n, 0);

		/* Join. */
		mset_join(&s, a, rk_rng_next(&rng), 1, rf);
		struct ring *b = build(&s, 3);
		check_diff(a, b, rf, &rng);
		check_diff(b, a, rf, &rng);

		/* Weight change, up then down, tokens by the allocator. */
		size_t i = rk_rng_below(&rng, s.n);
		uint64_t id = s.m[i].node_id;
		uint32_t w = s.m[i].weight;
		size_t cap = (size_t)(w + 1) * VPW, nt;
		uint64_t *t = malloc(cap * 8);
		cr_assert_eq(
		    ring_allocate_tokens(b, id, w + 1, VPW, rf, t, cap, &nt),
		    0);
		mset_remove(&s, i);
		mset_add(&s, id, w + 1, t, nt);
		struct ring *c = build(&s, 3);
		check_diff(b, c, rf, &rng);
		cr_assert_eq(ring_allocate_tokens(c, id, 1, 8, rf, t, cap, &nt),
			     0);
		cr_assert_eq(nt, 8);
		mset_remove(&s, s.n - 1);
		mset_add(&s, id, 1, t, nt);
		struct ring *d = build(&s, 3);
		check_diff(c, d, rf, &rng);
		free(t);

		/* Leave. */
		mset_remove(&s, rk_rng_below(&rng, s.n));
		struct ring *e = build(&s, 3);
		check_diff(d, e, rf, &rng);
		check_diff(e, empty, rf, &rng);

		ring_free(a);
		ring_free(b);
		ring_free(c);
		ring_free(d);
		ring_free(e);
		mset_free(&s);
	}
	ring_free(empty);
}

/* Random rings of unrelated tokens: the diff's merging and wrap-around are
 * exercised by many small ranges. */
Test(ring, diff_random_rings)
{
	struct rk_rng rng;
	rk_rng_seed(&rng, rk_test_seed("ring.diff_random"));
	for (int round = 0; round < 20; round++) {
		struct mset s = {0}, u = {0};
		for (int i = 0; i < 4; i++) {
			uint64_t id = 1 + rk_rng_below(&rng, 6);
			int dup = 0;
			for (size_t j = 0; j < s.n; j++)
				dup |= s.m[j].node_id == id;
			if (!dup)
				mset_add_random(&s, &rng, id, 1,
						1 + rk_rng_below(&rng, 6));
			id = 1 + rk_rng_below(&rng, 6);
			dup = 0;
			for (size_t j = 0; j < u.n; j++)
				dup |= u.m[j].node_id == id;
			if (!dup)
				mset_add_random(&u, &rng, id, 1,
						1 + rk_rng_below(&rng, 6));
		}
		struct ring *a = build(&s, 2), *b = build(&u, 2);
		for (size_t rf = 1; rf <= 4; rf++)
			check_diff(a, b, rf, &rng);
		ring_free(a);
		ring_free(b);
		mset_free(&s);
		mset_free(&u);
	}
}

/* ---- weights and allocation ---- */

Test(ring, weights)
{
	struct ring *r = NULL;
	struct mset s = {0};
	cr_assert_eq(ring_new(NULL, 0, NULL, &r), 0);
	uint32_t weights[] = {1, 2, 3, 1, 2, 1};
	for (size_t i = 0; i < 6; i++) {
		mset_join(&s, r, 1000 + i, weights[i], 3);
		ring_free(r);
		r = build(&s, 3);
	}
	double share[6], mm;
	cr_assert_eq(ring_shares(r, 3, share, &mm), 0);
	double sum = 0;
	for (size_t i = 0; i < 6; i++) {
		size_t k;
		cr_assert_eq(ring_member_find(r, 1000 + i, &k), 0);
		cr_expect_eq(ring_member_vnodes(r, k), weights[i] * VPW);
		cr_expect_eq(ring_member_weight(r, k), weights[i]);
		sum += share[k];
		/* share per unit of weight: 3 replicas over 10 weights */
		double per = share[k] / weights[i];
		cr_expect(per > 0.3 * 0.9 && per < 0.3 * 1.1,
			  "node %zu share %f", i, share[k]);
	}
	cr_expect(sum > 3 - 1e-9 && sum < 3 + 1e-9);
	cr_expect_leq(mm, 1.10);
	fprintf(stderr, "ring.weights: max/mean per weight %.4f\n", mm);
	ring_free(r);
	mset_free(&s);
}

Test(ring, allocation_is_deterministic)
{
	struct ring *r = NULL;
	struct mset s = {0};
	cr_assert_eq(ring_new(NULL, 0, NULL, &r), 0);
	for (int i = 0; i < 6; i++) {
		mset_join(&s, r, 0xabc0 + (uint64_t)i, 1, 3);
		ring_free(r);
		r = build(&s, 3);
	}
	uint64_t a[VPW], b[VPW];
	size_t na, nb;
	cr_assert_eq(ring_allocate_tokens(r, 42, 1, VPW, 3, a, VPW, &na), 0);
	cr_assert_eq(ring_allocate_tokens(r, 42, 1, VPW, 3, b, VPW, &nb), 0);
	cr_assert_eq(na, VPW);
	cr_assert_arr_eq(a, b, sizeof(a));
	for (size_t i = 0; i < na; i++) {
		struct ring_partition p;
		cr_assert_eq(ring_partition_by_id(r, a[i], &p), RK_ENOT_FOUND,
			     "a new token collides with an old one");
		if (i)
			cr_assert_lt(a[i - 1], a[i]);
	}
	/* The first node's tokens come from its id alone. */
	struct ring *e = NULL;
	cr_assert_eq(ring_new(NULL, 0, NULL, &e), 0);
	cr_assert_eq(ring_allocate_tokens(e, 7, 1, 16, 3, a, VPW, &na), 0);
	cr_assert_eq(ring_allocate_tokens(e, 7, 1, 16, 3, b, VPW, &nb), 0);
	cr_assert_arr_eq(a, b, 16 * 8);
	cr_assert_eq(ring_allocate_tokens(e, 8, 1, 16, 3, b, VPW, &nb), 0);
	cr_assert(memcmp(a, b, 16 * 8) != 0);
	/* Bad arguments. */
	cr_expect_eq(ring_allocate_tokens(r, 42, 0, VPW, 3, a, VPW, &na),
		     RK_EINVALID);
	cr_expect_eq(ring_allocate_tokens(r, 42, 2, VPW, 3, a, VPW, &na),
		     RK_EINVALID);
	cr_expect_eq(ring_allocate_tokens(r, 42, 1, VPW, 0, a, VPW, &na),
		     RK_EINVALID);
	cr_expect_eq(
	    ring_allocate_tokens(r, 42, 1, VPW, RING_RF_MAX + 1, a, VPW, &na),
	    RK_EINVALID);
	ring_free(e);
	ring_free(r);
	mset_free(&s);
}

/* A weight change keeps the node's tokens: more adds some, less drops
 * some, so only the ranges around those move. */
Test(ring, weight_change_keeps_tokens)
{
	struct ring *r = NULL;
	struct mset s = {0};
	cr_assert_eq(ring_new(NULL, 0, NULL, &r), 0);
	for (int i = 0; i < 8; i++) {
		mset_join(&s, r, 500 + (uint64_t)i, 1, 3);
		ring_free(r);
		r = build(&s, 3);
	}
	size_t k, n;
	cr_assert_eq(ring_member_find(r, 503, &k), 0);
	uint64_t old[VPW], more[2 * VPW], less[VPW];
	cr_assert_eq(ring_member_tokens(r, k, old, VPW, &n), 0);
	cr_assert_eq(ring_allocate_tokens(r, 503, 2, VPW, 3, more, 2 * VPW, &n),
		     0);
	cr_assert_eq(n, 2 * VPW);
	for (size_t i = 0, j = 0; i < VPW; i++) {
		while (j < n && more[j] < old[i])
			j++;
		cr_assert(j < n && more[j] == old[i], "old token dropped");
	}
	cr_assert_eq(ring_allocate_tokens(r, 503, 1, VPW / 2, 3, less, VPW, &n),
		     0);
	cr_assert_eq(n, VPW / 2);
	for (size_t i = 0, j = 0; i < n; i++) {
		while (j < VPW && old[j] < less[i])
			j++;
		cr_assert(j < VPW && old[j] == less[i], "token invented");
	}
	ring_free(r);
	mset_free(&s);

	/* The only member of a ring keeps its tokens too. */
	cr_assert_eq(ring_new(NULL, 0, NULL, &r), 0);
	mset_join(&s, r, 9, 1, 3);
	ring_free(r);
	r = build(&s, 3);
	cr_assert_eq(ring_allocate_tokens(r, 9, 2, VPW, 3, more, 2 * VPW, &n),
		     0);
	cr_assert_eq(n, 2 * VPW);
	for (size_t i = 0, j = 0; i < VPW; i++) {
		while (j < n && more[j] < s.m[0].tokens[i])
			j++;
		cr_assert(j < n && more[j] == s.m[0].tokens[i]);
	}
	ring_free(r);
	mset_free(&s);
}

/* ---- balance and movement (issue 3 targets) ---- */

/* Moved fraction of the data for a diff: each listed range carries its
 * width times the number of new owners, over rf copies of the circle.
 * Also checks that data only moves to `to` / from `from` (0: any). */
static double moved(const struct ring *a, const struct ring *b, size_t rf,
		    uint64_t to, uint64_t from)
{
	struct ring_range_change *ch;
	size_t n;
	long double sum = 0;
	cr_assert_eq(ring_diff(a, b, rf, &ch, &n), 0);
	for (size_t i = 0; i < n; i++) {
		const struct ring_range_change *c = &ch[i];
		size_t fresh = 0;
		for (size_t j = 0; j < c->n_new; j++) {
			int was = 0;
			for (size_t q = 0; q < c->n_old; q++)
				was |= c->old_nodes[q] == c->new_nodes[j];
			if (!was) {
				fresh++;
				if (to)
					cr_assert_eq(
					    c->new_nodes[j], to,
					    "data moved to an old node");
			}
		}
		for (size_t q = 0; q < c->n_old && from; q++) {
			int stays = 0;
			for (size_t j = 0; j < c->n_new; j++)
				stays |= c->old_nodes[q] == c->new_nodes[j];
			if (!stays)
				cr_assert_eq(c->old_nodes[q], from,
					     "data moved off a staying node");
		}
		long double width =
		    c->start == c->end
			? 0x1p64L
			: (long double)(uint64_t)(c->end - c->start);
		sum += width * fresh;
	}
	free(ch);
	return (double)(sum / (0x1p64L * rf));
}

/* 100 nodes join one by one, tokens by ring_allocate_tokens, 256 vnodes,
 * rf 3: the most loaded node stays within 1.10x the mean at 3, 5, 10, 50
 * and 100 nodes; each join moves within 10% of 1/(N+1) of the data, all of
 * it to the new node; a leave moves only the leaver's data. */
Test(ring, balance_and_movement, .timeout = 110)
{
	const size_t rf = 3, total = 100;
	struct rk_rng rng;
	rk_rng_seed(&rng, rk_test_seed("ring.balance"));
	struct ring *r = NULL;
	struct mset s = {0};
	cr_assert_eq(ring_new(NULL, 0, NULL, &r), 0);
	for (size_t n = 1; n <= total; n++) {
		uint64_t id = rk_rng_next(&rng);
		mset_join(&s, r, id, 1, rf);
		struct ring *next = build(&s, 3);
		double share[128], mm;
		cr_assert_eq(ring_shares(next, rf, share, &mm), 0);
		if (n == 3 || n == 5 || n == 10 || n == 50 || n == 100) {
			fprintf(stderr,
				"ring.balance: %3zu nodes max/mean %.4f\n", n,
				mm);
			cr_expect_leq(mm, 1.10, "%zu nodes: max/mean %f", n,
				      mm);
		}
		if (n == 4 || n == 6 || n == 11 || n == 51 || n == 100) {
			double f = moved(r, next, rf, id, 0);
			double ideal = 1.0 / (double)n;
			fprintf(stderr,
				"ring.movement: join to %3zu moved %.4f, ideal "
				"%.4f\n",
				n, f, ideal);
			cr_expect(f >= 0.9 * ideal && f <= 1.1 * ideal,
				  "join to %zu: moved %f ideal %f", n, f,
				  ideal);
		}
		ring_free(r);
		r = next;
	}

	/* Leaves: from 100 and from 10 nodes. */
	for (size_t keep = 0; keep < 2; keep++) {
		struct mset t = {0};
		size_t nodes = keep ? 10 : total;
		for (size_t i = 0; i < nodes; i++)
			mset_add(&t, s.m[i].node_id, 1, s.m[i].tokens,
				 s.m[i].n_tokens);
		struct ring *a = build(&t, 3);
		size_t i = rk_rng_below(&rng, t.n), k;
		uint64_t gone = t.m[i].node_id;
		double share[128];
		cr_assert_eq(ring_shares(a, rf, share, NULL), 0);
		cr_assert_eq(ring_member_find(a, gone, &k), 0);
		mset_remove(&t, i);
		struct ring *b = build(&t, 3);
		double f = moved(a, b, rf, 0, gone);
		fprintf(stderr,
			"ring.movement: leave from %3zu moved %.4f, its share "
			"%.4f\n",
			nodes, f, share[k] / rf);
		cr_expect(f > share[k] / rf - 1e-9 && f < share[k] / rf + 1e-9);
		ring_free(a);
		ring_free(b);
		mset_free(&t);
	}
	ring_free(r);
	mset_free(&s);
}

/* ---- token codec ---- */

Test(ring, codec_round_trip)
{
	uint64_t t[] = {UINT64_MAX, 0, 42, 1ull << 63, 7};
	uint8_t buf[128];
	size_t len, n;
	cr_assert_eq(ring_tokens_encode(t, 5, buf, sizeof(buf), &len), 0);
	cr_assert_eq(len, ring_tokens_encoded_size(5));
	cr_assert_eq(len, 4 + 4 + 5 * 8 + 4);
	cr_assert(memcmp(buf, "RKT1", 4) == 0);
	uint64_t out[5];
	cr_assert_eq(ring_tokens_decode(buf, len, out, 5, &n), 0);
	uint64_t sorted[] = {0, 7, 42, 1ull << 63, UINT64_MAX};
	cr_assert_eq(n, 5);
	cr_assert_arr_eq(out, sorted, sizeof(sorted));
	/* The encoding of a set is unique. */
	uint8_t buf2[128];
	size_t len2;
	cr_assert_eq(ring_tokens_encode(sorted, 5, buf2, sizeof(buf2), &len2),
		     0);
	cr_assert_arr_eq(buf, buf2, len);
	/* Too small an output. */
	cr_expect_eq(ring_tokens_decode(buf, len, out, 4, &n), RK_EINVALID);
	cr_expect_eq(n, 5);
	cr_expect_eq(ring_tokens_encode(t, 5, buf, len - 1, &len2),
		     RK_EINVALID);
	uint64_t d[] = {3, 9, 3};
	cr_expect_eq(ring_tokens_encode(d, 3, buf2, sizeof(buf2), &len2),
		     RK_EINVALID);
	cr_expect_eq(ring_tokens_encode(d, 0, buf2, sizeof(buf2), &len2),
		     RK_EINVALID);
}

Test(ring, codec_rejects_corruption)
{
	uint64_t t[64], out[64];
	for (int i = 0; i < 64; i++)
		t[i] = (uint64_t)i * 0x0123456789abcdefull;
	uint8_t buf[1024];
	size_t len, n;
	cr_assert_eq(ring_tokens_encode(t, 64, buf, sizeof(buf), &len), 0);
	for (size_t bit = 0; bit < len * 8; bit++) {
		buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		cr_assert_eq(ring_tokens_decode(buf, len, out, 64, &n),
			     RK_ECORRUPT, "bit %zu", bit);
		buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	}
	for (size_t cut = 0; cut < len; cut++)
		cr_assert_eq(ring_tokens_decode(buf, cut, out, 64, &n),
			     RK_ECORRUPT, "cut at %zu", cut);
	cr_assert_eq(ring_tokens_decode(NULL, 0, out, 64, &n), RK_ECORRUPT);
}

/* Well-formed frames with bad content: a valid CRC does not make a bad
 * count, an unsorted list or a duplicate acceptable. */
static size_t forge(uint8_t *buf, uint32_t count, const uint64_t *t, size_t nt)
{
	memcpy(buf, "RKT1", 4);
	for (int i = 0; i < 4; i++)
		buf[4 + i] = (uint8_t)(count >> (8 * i));
	size_t p = 8;
	for (size_t k = 0; k < nt; k++)
		for (int i = 0; i < 8; i++)
			buf[p++] = (uint8_t)(t[k] >> (8 * i));
	uint32_t c = rk_crc32c(0, buf, p);
	for (int i = 0; i < 4; i++)
		buf[p++] = (uint8_t)(c >> (8 * i));
	return p;
}

Test(ring, codec_rejects_bad_content)
{
	uint8_t buf[256];
	uint64_t out[8], t[] = {5, 9, 9, 1};
	size_t n;
	cr_expect_eq(ring_tokens_decode(buf, forge(buf, 2, t, 2), out, 8, &n),
		     0);
	cr_expect_eq(ring_tokens_decode(buf, forge(buf, 0, t, 0), out, 8, &n),
		     RK_ECORRUPT); /* empty */
	cr_expect_eq(
	    ring_tokens_decode(buf, forge(buf, 2, t + 1, 2), out, 8, &n),
	    RK_ECORRUPT); /* duplicate */
	cr_expect_eq(
	    ring_tokens_decode(buf, forge(buf, 2, t + 2, 2), out, 8, &n),
	    RK_ECORRUPT); /* descending */
	cr_expect_eq(ring_tokens_decode(buf, forge(buf, 3, t, 2), out, 8, &n),
		     RK_ECORRUPT); /* count beyond the bytes */
	cr_expect_eq(ring_tokens_decode(buf,
					forge(buf, RING_TOKENS_MAX + 1, t, 2),
					out, 8, &n),
		     RK_ECORRUPT);
}
