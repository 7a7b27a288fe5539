/* One real ringkvd: the operations through libringkv. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

static struct h_node node;

static void up(void)
{
	static const char *const args[] = {"--fsync", "always", NULL};
	h_node_init(&node, args);
	cr_assert_eq(h_node_start(&node), 0);
}

static void down(void)
{
	h_node_destroy(&node);
}

TestSuite(basic, .init = up, .fini = down, .timeout = 120);

Test(basic, put_get_delete_exists)
{
	rkv_client *c = h_client(&node);
	rkv_timestamp t1, t2;
	cr_assert_eq(rkv_put(c, "k", 1, "v1", 2, &t1), RKV_OK);
	rkv_value *v;
	cr_assert_eq(rkv_get(c, "k", 1, &v), RKV_OK);
	cr_assert(v->len == 2 && memcmp(v->data, "v1", 2) == 0);
	cr_assert_eq(v->ts.hlc, t1.hlc);
	rkv_value_free(v);
	cr_assert_eq(rkv_put(c, "k", 1, "v2", 2, &t2), RKV_OK);
	cr_assert_gt(t2.hlc, t1.hlc, "later write, later version");
	int ex;
	cr_assert_eq(rkv_exists(c, "k", 1, &ex), RKV_OK);
	cr_assert_eq(ex, 1);
	cr_assert_eq(rkv_delete(c, "k", 1, NULL), RKV_OK);
	cr_assert_eq(rkv_get(c, "k", 1, &v), RKV_ERR_NOT_FOUND);
	cr_assert_null(v);
	cr_assert_eq(rkv_exists(c, "k", 1, &ex), RKV_OK);
	cr_assert_eq(ex, 0);
	/* Binary keys and values, and an empty value. */
	const char bk[] = {0, 1, 2, (char)0xff};
	cr_assert_eq(rkv_put(c, bk, 4, "", 0, NULL), RKV_OK);
	cr_assert_eq(rkv_get(c, bk, 4, &v), RKV_OK);
	cr_assert_eq(v->len, 0);
	rkv_value_free(v);
	uint64_t id;
	cr_assert_eq(rkv_ping(c, &id), RKV_OK);
	cr_assert_neq(id, 0);
	rkv_cluster_info *ci;
	cr_assert_eq(rkv_cluster_info_get(c, &ci), RKV_OK);
	cr_assert_eq(ci->n_nodes, 1);
	cr_assert_eq(ci->nodes[0].node_id, id);
	cr_assert_str_eq(ci->nodes[0].client_address, node.addr);
	rkv_cluster_info_free(ci);
	rkv_close(c);
}

Test(basic, limits_are_typed_errors_and_store_nothing)
{
	rkv_client *c = h_client(&node);
	char key[1026];
	memset(key, 'k', sizeof(key));
	cr_assert_eq(rkv_put(c, key, 1024, "v", 1, NULL), RKV_OK);
	cr_assert_eq(rkv_put(c, key, 1025, "v", 1, NULL), RKV_ERR_KEY_TOO_LARGE);
	cr_assert(strstr(rkv_last_error(c), "1025"), "%s", rkv_last_error(c));
	size_t mib = 1u << 20;
	char *big = malloc(mib + 1);
	memset(big, 'x', mib + 1);
	cr_assert_eq(rkv_put(c, "big", 3, big, mib, NULL), RKV_OK);
	cr_assert_eq(rkv_put(c, "big2", 4, big, mib + 1, NULL),
		     RKV_ERR_VALUE_TOO_LARGE);
	rkv_value *v;
	cr_assert_eq(rkv_get(c, "big2", 4, &v), RKV_ERR_NOT_FOUND,
		     "a refused write stores nothing");
	cr_assert_eq(rkv_get(c, "big", 3, &v), RKV_OK);
	cr_assert_eq(v->len, mib);
	rkv_value_free(v);
	cr_assert_eq(rkv_put(c, "", 0, "v", 1, NULL), RKV_ERR_EMPTY_KEY);
	/* The connection survives every refusal. */
	cr_assert_eq(rkv_ping(c, NULL), RKV_OK);
	free(big);
	rkv_close(c);
}

Test(basic, ten_thousand_pipelined_requests)
{
	rkv_client *c = h_client(&node);
	rkv_batch *b = rkv_batch_new();
	char k[32], v[64];
	for (int i = 0; i < 10000; i++) {
		int kn = snprintf(k, sizeof(k), "p%d", i);
		int vn = snprintf(v, sizeof(v), "value-%d", i * 7);
		cr_assert_eq(rkv_batch_put(b, k, (size_t)kn, v, (size_t)vn), i);
	}
	cr_assert_eq(rkv_batch_exec(c, b), RKV_OK);
	for (size_t i = 0; i < 10000; i++)
		cr_assert_eq(rkv_batch_status(b, i), RKV_OK);
	rkv_batch_reset(b);
	for (int i = 0; i < 10000; i++) {
		int kn = snprintf(k, sizeof(k), "p%d", i);
		rkv_batch_get(b, k, (size_t)kn);
	}
	rkv_batch_get(b, "missing", 7);
	cr_assert_eq(rkv_batch_exec(c, b), RKV_OK);
	for (int i = 0; i < 10000; i++) {
		cr_assert_eq(rkv_batch_status(b, (size_t)i), RKV_OK);
		const rkv_value *val = rkv_batch_value(b, (size_t)i);
		int vn = snprintf(v, sizeof(v), "value-%d", i * 7);
		cr_assert(val->len == (size_t)vn && !memcmp(val->data, v, val->len),
			  "p%d", i);
	}
	cr_assert_eq(rkv_batch_status(b, 10000), RKV_ERR_NOT_FOUND);
	rkv_batch_free(b);
	rkv_close(c);
}

Test(basic, restart_keeps_data)
{
	rkv_client *c = h_client(&node);
	char k[32], v[32];
	for (int i = 0; i < 500; i++) {
		snprintf(k, sizeof(k), "r%d", i);
		snprintf(v, sizeof(v), "v%d", i);
		cr_assert_eq(rkv_put(c, k, strlen(k), v, strlen(v), NULL), RKV_OK);
	}
	cr_assert_eq(rkv_delete(c, "r7", 2, NULL), RKV_OK);
	uint64_t id1;
	cr_assert_eq(rkv_ping(c, &id1), RKV_OK);
	rkv_ring_info *ring1;
	cr_assert_eq(rkv_ring_info_get(c, &ring1), RKV_OK);
	cr_assert_eq(ring1->n_members, 1);
	cr_assert_eq(ring1->members[0].n_tokens, 256);
	rkv_close(c);
	/* A clean stop, then a crash: both keep every acknowledged write. */
	for (int round = 0; round < 2; round++) {
		int st = h_node_signal(&node, round ? SIGKILL : SIGTERM);
		cr_assert_eq(st, round ? 128 + SIGKILL : 0);
		cr_assert_eq(h_node_start(&node), 0);
		c = h_client(&node);
		uint64_t id2;
		cr_assert_eq(rkv_ping(c, &id2), RKV_OK);
		cr_assert_eq(id1, id2, "the node id survives restarts");
		rkv_ring_info *ring2;
		cr_assert_eq(rkv_ring_info_get(c, &ring2), RKV_OK);
		cr_assert_eq(ring2->checksum, ring1->checksum,
			     "the tokens survive restarts");
		rkv_ring_info_free(ring2);
		for (int i = 0; i < 500; i++) {
			snprintf(k, sizeof(k), "r%d", i);
			snprintf(v, sizeof(v), "v%d", i);
			rkv_value *val;
			int rc = rkv_get(c, k, strlen(k), &val);
			if (i == 7) {
				cr_assert_eq(rc, RKV_ERR_NOT_FOUND);
				continue;
			}
			cr_assert_eq(rc, RKV_OK, "%s after restart", k);
			cr_assert(val->len == strlen(v) && !memcmp(val->data, v, val->len));
			rkv_value_free(val);
		}
		rkv_close(c);
	}
	rkv_ring_info_free(ring1);
}

Test(basic, a_thousand_concurrent_connections)
{
	enum { N = 1000 };
	rkv_client **cs = calloc(N, sizeof(*cs));
	for (int i = 0; i < N; i++)
		cs[i] = h_client(&node);
	char k[32];
	for (int i = 0; i < N; i++) {
		int kn = snprintf(k, sizeof(k), "conn%d", i);
		cr_assert_eq(rkv_put(cs[i], k, (size_t)kn, k, (size_t)kn, NULL),
			     RKV_OK, "connection %d", i);
	}
	for (int i = 0; i < N; i++) {
		int kn = snprintf(k, sizeof(k), "conn%d", (i + 1) % N);
		rkv_value *v;
		cr_assert_eq(rkv_get(cs[i], k, (size_t)kn, &v), RKV_OK);
		cr_assert(v->len == (size_t)kn && !memcmp(v->data, k, v->len));
		rkv_value_free(v);
	}
	for (int i = 0; i < N; i++)
		rkv_close(cs[i]);
	free(cs);
}

Test(basic, the_client_fails_over_to_the_next_seed)
{
	rkv_client *c;
	char seeds[128];
	/* The first seed has nothing listening. */
	snprintf(seeds, sizeof(seeds), "127.0.0.1:1,%s", node.addr);
	cr_assert_eq(rkv_connect(seeds, NULL, &c), RKV_OK);
	cr_assert_str_eq(rkv_connected_address(c), node.addr);
	cr_assert_eq(rkv_ping(c, NULL), RKV_OK);
	rkv_close(c);
	cr_assert_eq(rkv_connect("127.0.0.1:1", NULL, &c), RKV_ERR_CONNECT);
}
