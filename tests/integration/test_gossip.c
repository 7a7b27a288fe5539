/* SWIM membership between real ringkvd processes on loopback. */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

#define N 5

static struct h_node nodes[N];
static uint64_t ids[N];

/* The state and incarnation node `viewer` reports for id; "" if absent. */
static void view_of(int viewer, uint64_t id, char *state, size_t n,
		    uint64_t *inc)
{
	state[0] = 0;
	*inc = 0;
	rkv_client *c;
	rkv_options o;
	rkv_options_init(&o);
	o.request_timeout_ms = 2000;
	if (rkv_connect(nodes[viewer].addr, &o, &c) != RKV_OK)
		return;
	rkv_cluster_info *ci;
	if (rkv_cluster_info_get(c, &ci) == RKV_OK) {
		for (size_t i = 0; i < ci->n_nodes; i++)
			if (ci->nodes[i].node_id == id) {
				snprintf(state, n, "%s", ci->nodes[i].state);
				*inc = ci->nodes[i].incarnation;
			}
		rkv_cluster_info_free(ci);
	}
	rkv_close(c);
}

/* Waits until every live node other than `subject` sees it in `want`
 * (with an incarnation above min_inc); returns the milliseconds, or -1. */
static long wait_all_see(int subject, const char *want, uint64_t min_inc,
			 int timeout_ms)
{
	int64_t t0 = h_now_ms();
	while (h_now_ms() - t0 < timeout_ms) {
		int all = 1;
		for (int i = 0; i < N && all; i++) {
			if (i == subject || !nodes[i].pid)
				continue;
			char st[16];
			uint64_t inc;
			view_of(i, ids[subject], st, sizeof(st), &inc);
			if (strcmp(st, want) != 0 || inc < min_inc)
				all = 0;
		}
		if (all)
			return (long)(h_now_ms() - t0);
		usleep(100000);
	}
	return -1;
}

static void start_cluster(void)
{
	/* One seed: every node joins through node 0. */
	for (int i = 0; i < N; i++) {
		h_node_init(&nodes[i], NULL);
		h_node_add_arg(&nodes[i], "--seeds");
		h_node_add_arg(&nodes[i], nodes[0].addr);
		cr_assert_eq(h_node_start(&nodes[i]), 0);
		rkv_client *c = h_client(&nodes[i]);
		cr_assert_eq(rkv_ping(c, &ids[i]), RKV_OK);
		rkv_close(c);
	}
	for (int i = 0; i < N; i++)
		cr_assert_geq(wait_all_see(i, "alive", 0, 15000), 0,
			      "node %d not seen alive by all", i);
	/* And every node has every member's tokens. */
	for (int i = 0; i < N; i++) {
		rkv_client *c = h_client(&nodes[i]);
		size_t owners = 0;
		for (int tries = 0; tries < 150 && owners < N; tries++) {
			rkv_ring_info *ri;
			cr_assert_eq(rkv_ring_info_get(c, &ri), RKV_OK);
			owners = ri->n_members;
			rkv_ring_info_free(ri);
			if (owners < N)
				usleep(100000);
		}
		cr_assert_eq(owners, N, "node %d knows %zu owners", i, owners);
		rkv_close(c);
	}
}

static void stop_cluster(void)
{
	for (int i = 0; i < N; i++)
		h_node_destroy(&nodes[i]);
}

TestSuite(gossip, .init = start_cluster, .fini = stop_cluster,
	  .timeout = 240);

Test(gossip, five_nodes_join_through_one_seed_and_agree_on_the_ring)
{
	/* Every node lists all five, alive, each with its tokens, and
	 * builds the same ring. */
	uint64_t checksum = 0;
	for (int i = 0; i < N; i++) {
		rkv_client *c = h_client(&nodes[i]);
		rkv_ring_info *ri = NULL;
		for (int tries = 0; tries < 100; tries++) {
			rkv_ring_info_free(ri);
			cr_assert_eq(rkv_ring_info_get(c, &ri), RKV_OK);
			if (ri->n_members == N)
				break;
			usleep(100000);
		}
		cr_assert_eq(ri->n_members, N, "node %d sees %zu owners", i,
			     ri->n_members);
		if (i == 0)
			checksum = ri->checksum;
		cr_assert_eq(ri->checksum, checksum,
			     "node %d has another ring", i);
		rkv_ring_info_free(ri);
		rkv_close(c);
	}
}

Test(gossip, a_killed_node_is_declared_dead_then_alive_again)
{
	const int victim = 3;
	char st[16];
	uint64_t inc_before;
	view_of(0, ids[victim], st, sizeof(st), &inc_before);
	cr_assert_eq(h_node_signal(&nodes[victim], SIGKILL), 128 + SIGKILL);
	long dead_ms = wait_all_see(victim, "dead", 0, 30000);
	fprintf(stderr, "gossip: kill -9 -> dead at every survivor in %ld ms\n",
		dead_ms);
	cr_assert_geq(dead_ms, 0, "not declared dead everywhere in 30 s");
	cr_assert_leq(dead_ms, 10000, "declared dead in %ld ms, target 10 s",
		      dead_ms);
	/* Restarted with its data: back alive with a higher incarnation. */
	cr_assert_eq(h_node_start(&nodes[victim]), 0);
	long alive_ms = wait_all_see(victim, "alive", inc_before + 1, 15000);
	fprintf(stderr, "gossip: restart -> alive again (incarnation above "
			"%" PRIu64 ") everywhere in %ld ms\n",
		inc_before, alive_ms);
	cr_assert_geq(alive_ms, 0);
	cr_assert_leq(alive_ms, 5000, "alive again after %ld ms, target 5 s",
		      alive_ms);
}

Test(gossip, a_graceful_stop_is_left_not_dead)
{
	const int leaver = 2;
	cr_assert_eq(h_node_signal(&nodes[leaver], SIGTERM), 0);
	long ms = wait_all_see(leaver, "left", 0, 10000);
	cr_assert_geq(ms, 0, "a graceful stop was not seen as left");
	/* Never mistaken for a death later on. */
	sleep(3);
	for (int i = 0; i < N; i++) {
		if (i == leaver)
			continue;
		char st[16];
		uint64_t inc;
		view_of(i, ids[leaver], st, sizeof(st), &inc);
		cr_assert_str_eq(st, "left", "node %d", i);
	}
	/* It still owns its ranges: the ring keeps all five. */
	rkv_client *c = h_client(&nodes[0]);
	rkv_ring_info *ri;
	cr_assert_eq(rkv_ring_info_get(c, &ri), RKV_OK);
	cr_assert_eq(ri->n_members, N);
	rkv_ring_info_free(ri);
	rkv_close(c);
}

Test(gossip, a_node_of_another_cluster_is_kept_out)
{
	struct h_node stranger;
	h_node_init(&stranger, NULL);
	h_node_add_arg(&stranger, "--cluster-name");
	h_node_add_arg(&stranger, "other");
	h_node_add_arg(&stranger, "--seeds");
	h_node_add_arg(&stranger, nodes[0].addr);
	cr_assert_eq(h_node_start(&stranger), 0);
	rkv_client *c = h_client(&stranger);
	uint64_t sid;
	cr_assert_eq(rkv_ping(c, &sid), RKV_OK);
	rkv_close(c);
	sleep(3);
	char st[16];
	uint64_t inc;
	view_of(0, sid, st, sizeof(st), &inc);
	cr_assert_str_eq(st, "", "a foreign node became a member");
	h_node_destroy(&stranger);
}

Test(gossip, identity_survives_an_address_change)
{
	const int mover = 4;
	cr_assert_eq(h_node_signal(&nodes[mover], SIGTERM), 0);
	h_node_move(&nodes[mover]);
	cr_assert_eq(h_node_start(&nodes[mover]), 0);
	cr_assert_geq(wait_all_see(mover, "alive", 0, 15000), 0);
	/* Same id, new address, still one member (not two). */
	rkv_client *c = h_client(&nodes[0]);
	rkv_cluster_info *ci;
	cr_assert_eq(rkv_cluster_info_get(c, &ci), RKV_OK);
	int found = 0;
	for (size_t i = 0; i < ci->n_nodes; i++) {
		if (ci->nodes[i].node_id != ids[mover])
			continue;
		found++;
		cr_assert_str_eq(ci->nodes[i].client_address, nodes[mover].addr);
	}
	cr_assert_eq(found, 1);
	cr_assert_eq(ci->n_nodes, N);
	rkv_cluster_info_free(ci);
	rkv_close(c);
}
