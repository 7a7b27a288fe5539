#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rng.h"
#include "table.h"

static struct rk_rec *mk(const char *key, const char *val, uint64_t hlc)
{
	return rk_rec_new(RK_REC_VALUE, (rk_ts){hlc, 1}, key,
			  (uint16_t)strlen(key), val, (uint32_t)strlen(val));
}

static void put(struct rk_table *t, const char *key, const char *val)
{
	struct rk_rec *old;
	cr_assert_eq(rk_table_put(t, mk(key, val, 1), &old), 0);
	free(old);
}

Test(table, put_get_replace_remove)
{
	struct rk_table *t = rk_table_new(42);
	put(t, "a", "1");
	put(t, "b", "2");
	struct rk_rec *r = rk_table_get(t, "a", 1);
	cr_assert(r && r->vlen == 1 && rk_rec_value(r)[0] == '1');
	struct rk_rec *old;
	cr_assert_eq(rk_table_put(t, mk("a", "xyz", 2), &old), 0);
	cr_assert(old && old->vlen == 1);
	free(old);
	cr_assert_eq(rk_table_count(t), 2);
	r = rk_table_remove(t, "a", 1);
	cr_assert(r && r->vlen == 3);
	free(r);
	cr_assert_null(rk_table_get(t, "a", 1));
	cr_assert_null(rk_table_remove(t, "a", 1));
	cr_assert_eq(rk_table_count(t), 1);
	/* A key is its bytes, not a C string: "b" and "b\0" differ. */
	cr_assert_null(rk_table_get(t, "b\0", 2));
	rk_table_free(t);
}

Test(table, grows_and_shrinks_with_byte_accounting)
{
	struct rk_table *t = rk_table_new(1);
	char k[32];
	uint64_t bytes = 0;
	for (int i = 0; i < 100000; i++) {
		int n = snprintf(k, sizeof(k), "key%d", i);
		struct rk_rec *rec = rk_rec_new(RK_REC_VALUE, (rk_ts){1, 1}, k,
						(uint16_t)n, "v", 1);
		bytes += rk_rec_size(rec);
		struct rk_rec *old;
		cr_assert_eq(rk_table_put(t, rec, &old), 0);
		cr_assert_null(old);
	}
	cr_assert_eq(rk_table_bytes(t), bytes);
	for (int i = 0; i < 100000; i++) {
		int n = snprintf(k, sizeof(k), "key%d", i);
		cr_assert_not_null(rk_table_get(t, k, (size_t)n), "key%d", i);
	}
	for (int i = 0; i < 99990; i++) {
		int n = snprintf(k, sizeof(k), "key%d", i);
		free(rk_table_remove(t, k, (size_t)n));
	}
	cr_assert_eq(rk_table_count(t), 10);
	while (rk_table_rehash_step(t, 100))
		;
	for (int i = 99990; i < 100000; i++) {
		int n = snprintf(k, sizeof(k), "key%d", i);
		cr_assert_not_null(rk_table_get(t, k, (size_t)n));
	}
	rk_table_free(t);
}

/* Keys seen by a scan, by index. */
struct seen {
	unsigned char *hit;
	size_t n;
};

static void mark(void *ctx, const struct rk_rec *r)
{
	struct seen *s = ctx;
	char k[32];
	memcpy(k, rk_rec_key(r), r->klen);
	k[r->klen] = 0;
	if (k[0] != 's')
		return; /* only stable keys are promised */
	size_t i = strtoul(k + 1, NULL, 10);
	cr_assert_lt(i, s->n);
	s->hit[i] = 1;
}

/* The guarantee compaction relies on: a record present for the whole
 * scan is visited, however the table changes between scan calls. */
Test(table, scan_visits_every_stable_record_while_the_table_changes)
{
	uint64_t seed = rk_test_seed("table.scan");
	struct rk_rng rng;
	rk_rng_seed(&rng, seed);
	for (int round = 0; round < 20; round++) {
		struct rk_table *t = rk_table_new(rk_rng_next(&rng));
		enum { STABLE = 3000, CHURN = 20000 };
		char k[32];
		size_t n_stable = rk_rng_below(&rng, STABLE) + 1;
		for (size_t i = 0; i < n_stable; i++) {
			snprintf(k, sizeof(k), "s%zu", i);
			put(t, k, "v");
		}
		struct seen s = {calloc(STABLE, 1), STABLE};
		uint64_t cur = 0;
		size_t next_churn = 0;
		do {
			cur = rk_table_scan(t, cur, mark, &s);
			/* Between calls: inserts (growing), deletes of churn
			 * keys (shrinking), and rewrites of stable keys. */
			int ops = (int)rk_rng_below(&rng, 60);
			for (int o = 0; o < ops; o++) {
				int what = (int)rk_rng_below(&rng, 3);
				if (what == 0 && next_churn < CHURN) {
					snprintf(k, sizeof(k), "c%zu",
						 next_churn++);
					put(t, k, "x");
				} else if (what == 1 && next_churn) {
					snprintf(k, sizeof(k), "c%zu",
						 (size_t)rk_rng_below(&rng, next_churn));
					free(rk_table_remove(t, k, strlen(k)));
				} else {
					snprintf(k, sizeof(k), "s%zu",
						 (size_t)rk_rng_below(&rng, n_stable));
					put(t, k, "rewritten");
				}
			}
		} while (cur != 0);
		for (size_t i = 0; i < n_stable; i++)
			cr_assert(s.hit[i], "seed %llu round %d: stable key "
				  "s%zu not visited",
				  (unsigned long long)seed, round, i);
		free(s.hit);
		rk_table_free(t);
	}
}
