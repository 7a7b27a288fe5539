/* The smart client against a real five-node cluster (RF 3): requests go
 * straight to a replica of their key, batches split over the nodes keep
 * their order, a kill -9 is failed over, a restarted or new node gets its
 * traffic back through the ring refresh, and all-replies reads return an
 * answer per replica.
 *
 * The proof of routing does not trust the client: each test builds the
 * ring itself from RingInfo (ring_new, rk_key_hash) and checks the node
 * rkv_last_node names against it, and local reads show the data sits on
 * exactly the replicas that ring names.
 */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "hash.h"
#include "ring.h"

#define N 5
#define RF 3

static struct h_node nodes[N + 1]; /* one spare for the joining node */
static uint64_t ids[N + 1];

static int index_of(uint64_t id)
{
	for (int i = 0; i < N + 1; i++)
		if (ids[i] == id)
			return i;
	return -1;
}

static rkv_client *client_with(const char *seeds, int smart)
{
	rkv_options o;
	rkv_options_init(&o);
	o.request_timeout_ms = 20000;
	o.smart = smart;
	rkv_client *c;
	cr_assert_eq(rkv_client_new(seeds, &o, &c), RKV_OK);
	return c;
}

/* The ring as node i describes it, built here. */
static struct ring *ring_from(int i, size_t *members)
{
	rkv_client *c = h_client(&nodes[i]);
	rkv_ring_info *ri;
	cr_assert_eq(rkv_ring_info_get(c, &ri), RKV_OK);
	struct ring_member *m = calloc(ri->n_members, sizeof(*m));
	for (size_t k = 0; k < ri->n_members; k++)
		m[k] =
		    (struct ring_member){.node_id = ri->members[k].node_id,
					 .weight = ri->members[k].weight,
					 .tokens = ri->members[k].tokens,
					 .n_tokens = ri->members[k].n_tokens};
	struct ring_config cfg = {.epoch = ri->epoch, .rf_max = RF};
	struct ring *r;
	cr_assert_eq(ring_new(m, ri->n_members, &cfg, &r), 0);
	cr_assert_eq(ring_checksum(r), ri->checksum);
	cr_assert_eq(ri->replication_factor, RF);
	*members = ri->n_members;
	free(m);
	rkv_ring_info_free(ri);
	rkv_close(c);
	return r;
}

static void replicas_of(const struct ring *r, const char *key, uint64_t *out)
{
	size_t n;
	ring_lookup(r, rk_key_hash(key, strlen(key)), RF, out, &n);
	cr_assert_eq(n, RF);
}

static int is_replica(const uint64_t *reps, uint64_t id)
{
	for (int k = 0; k < RF; k++)
		if (reps[k] == id)
			return 1;
	return 0;
}

/* Waits until node i's RingInfo lists want members. */
static void wait_ring(int i, size_t want)
{
	rkv_client *c = h_client(&nodes[i]);
	size_t have = 0;
	for (int tries = 0; tries < 300 && have != want; tries++) {
		rkv_ring_info *ri;
		cr_assert_eq(rkv_ring_info_get(c, &ri), RKV_OK);
		have = ri->n_members;
		rkv_ring_info_free(ri);
		if (have != want)
			usleep(100000);
	}
	cr_assert_eq(have, want, "node %d knows %zu ring members", i, have);
	rkv_close(c);
}

/* Waits until node viewer sees id in state want. */
static void wait_state(int viewer, uint64_t id, const char *want,
		       int timeout_ms)
{
	int64_t t0 = h_now_ms();
	char st[16] = "";
	while (h_now_ms() - t0 < timeout_ms) {
		rkv_client *c;
		rkv_options o;
		rkv_options_init(&o);
		o.request_timeout_ms = 2000;
		if (rkv_connect(nodes[viewer].addr, &o, &c) == RKV_OK) {
			rkv_cluster_info *ci;
			if (rkv_cluster_info_get(c, &ci) == RKV_OK) {
				for (size_t i = 0; i < ci->n_nodes; i++)
					if (ci->nodes[i].node_id == id)
						snprintf(st, sizeof(st), "%s",
							 ci->nodes[i].state);
				rkv_cluster_info_free(ci);
			}
			rkv_close(c);
		}
		if (!strcmp(st, want))
			return;
		usleep(100000);
	}
	cr_assert_fail("node %d sees %016" PRIx64 " %s, not %s", viewer, id, st,
		       want);
}

/* Nodes start one at a time (start_cluster waits for each to own its
 * ranges), so none needs to wait for others starting with it. */
static const char *const node_args[] = {"--set", "cluster.join_delay=0",
					NULL};

static void start_node(int i)
{
	h_node_init(&nodes[i], node_args);
	h_node_add_arg(&nodes[i], "--seeds");
	h_node_add_arg(&nodes[i], nodes[0].addr);
	cr_assert_eq(h_node_start(&nodes[i]), 0);
	rkv_client *c = h_client(&nodes[i]);
	cr_assert_eq(rkv_ping(c, &ids[i]), RKV_OK);
	rkv_close(c);
}

static void start_cluster(void)
{
	int64_t t0 = h_now_ms();
	/* One at a time, each an owner before the next comes. */
	for (int i = 0; i < N; i++) {
		start_node(i);
		for (int k = 0; k <= i; k++)
			wait_ring(k, (size_t)i + 1);
	}
	for (int i = 0; i < N; i++)
		for (int k = 0; k < N; k++)
			wait_state(i, ids[k], "alive", 15000);
	fprintf(stderr, "smart: %d nodes up in %lld ms\n", N,
		(long long)(h_now_ms() - t0));
}

static void stop_cluster(void)
{
	for (int i = 0; i < N + 1; i++)
		if (nodes[i].dir[0])
			h_node_destroy(&nodes[i]);
}

TestSuite(smart, .init = start_cluster, .fini = stop_cluster, .timeout = 300);

Test(smart, puts_and_gets_go_straight_to_a_replica)
{
	size_t nm;
	struct ring *r = ring_from(3, &nm);
	cr_assert_eq(nm, N);
	rkv_client *c = client_with(nodes[0].addr, 1);
	char k[32], v[32];
	int per_node[N] = {0};
	for (int i = 0; i < 1000; i++) {
		snprintf(k, sizeof(k), "sk%d", i);
		snprintf(v, sizeof(v), "sv%d", i);
		cr_assert_eq(rkv_put(c, k, strlen(k), v, strlen(v), NULL),
			     RKV_OK, "put %s: %s", k, rkv_last_error(c));
		uint64_t reps[RF];
		replicas_of(r, k, reps);
		/* Every node is alive: the first replica. */
		cr_assert_eq(rkv_last_node(c), reps[0],
			     "put %s went to %016" PRIx64 ", first replica "
			     "%016" PRIx64,
			     k, rkv_last_node(c), reps[0]);
		per_node[index_of(reps[0])]++;
	}
	for (int i = 0; i < N; i++)
		cr_assert_gt(per_node[i], 100, "node %d got %d of 1000 puts", i,
			     per_node[i]);
	for (int i = 0; i < 1000; i++) {
		snprintf(k, sizeof(k), "sk%d", i);
		snprintf(v, sizeof(v), "sv%d", i);
		rkv_value *val;
		cr_assert_eq(rkv_get(c, k, strlen(k), &val), RKV_OK, "get %s",
			     k);
		cr_assert(val->len == strlen(v) &&
			  !memcmp(val->data, v, val->len));
		rkv_value_free(val);
		uint64_t reps[RF];
		replicas_of(r, k, reps);
		cr_assert(is_replica(reps, rkv_last_node(c)));
	}
	/* The data sits on the replicas this ring names, and nowhere else:
	 * the client and the nodes agree on the ring. */
	for (int i = 0; i < 1000; i += 10) {
		snprintf(k, sizeof(k), "sk%d", i);
		uint64_t reps[RF];
		replicas_of(r, k, reps);
		for (int n = 0; n < N; n++) {
			rkv_value *val = NULL;
			int rc = RKV_ERR_NOT_FOUND;
			/* A QUORUM write may still be on its way to the
			 * third replica. */
			for (int t = 0; t < 50; t++) {
				rc = rkv_get_local(c, nodes[n].addr, k,
						   strlen(k), &val);
				rkv_value_free(val);
				if (rc == RKV_OK || !is_replica(reps, ids[n]))
					break;
				usleep(20000);
			}
			cr_assert_eq(rc,
				     is_replica(reps, ids[n])
					 ? RKV_OK
					 : RKV_ERR_NOT_FOUND,
				     "local get of %s at node %d", k, n);
		}
	}
	rkv_close(c);
	ring_free(r);
}

Test(smart, a_batch_over_every_node_keeps_its_order)
{
	rkv_client *c = client_with(nodes[1].addr, 1);
	rkv_batch *b = rkv_batch_new();
	char k[32], v[48];
	/* Keys 0..4999 exist, 5000.. do not. */
	for (int i = 0; i < 5000; i++) {
		snprintf(k, sizeof(k), "bk%d", i);
		snprintf(v, sizeof(v), "bv%d", i);
		cr_assert_geq(rkv_batch_put(b, k, strlen(k), v, strlen(v)), 0);
	}
	cr_assert_eq(rkv_batch_exec(c, b), RKV_OK, "%s", rkv_last_error(c));
	for (size_t i = 0; i < 5000; i++)
		cr_assert_eq(rkv_batch_status(b, i), RKV_OK);
	rkv_batch_reset(b);
	/* 10,000 mixed requests: op i % 5 says what request i is. */
	for (int i = 0; i < 10000; i++) {
		int key = i / 2;
		switch (i % 5) {
		case 0: /* get of an existing key */
		case 1:
			snprintf(k, sizeof(k), "bk%d", key);
			rkv_batch_get(b, k, strlen(k));
			break;
		case 2: /* get of a missing key */
			snprintf(k, sizeof(k), "bk%d", 5000 + i);
			rkv_batch_get(b, k, strlen(k));
			break;
		case 3: /* put of a new key */
			snprintf(k, sizeof(k), "nk%d", i);
			snprintf(v, sizeof(v), "nv%d", i);
			rkv_batch_put(b, k, strlen(k), v, strlen(v));
			break;
		default: /* exists, on a key that is there */
			snprintf(k, sizeof(k), "bk%d", key);
			rkv_batch_exists(b, k, strlen(k));
			break;
		}
	}
	int64_t t0 = h_now_ms();
	cr_assert_eq(rkv_batch_exec(c, b), RKV_OK, "%s", rkv_last_error(c));
	fprintf(stderr,
		"smart: 10,000 mixed requests over %d nodes in %lld "
		"ms\n",
		N, (long long)(h_now_ms() - t0));
	for (int i = 0; i < 10000; i++) {
		int key = i / 2;
		switch (i % 5) {
		case 0:
		case 1: {
			cr_assert_eq(rkv_batch_status(b, (size_t)i), RKV_OK,
				     "request %d", i);
			const rkv_value *val = rkv_batch_value(b, (size_t)i);
			snprintf(v, sizeof(v), "bv%d", key);
			cr_assert(val->len == strlen(v) &&
				      !memcmp(val->data, v, val->len),
				  "request %d read %.*s, want %s", i,
				  (int)val->len, (const char *)val->data, v);
			break;
		}
		case 2:
			cr_assert_eq(rkv_batch_status(b, (size_t)i),
				     RKV_ERR_NOT_FOUND, "request %d", i);
			break;
		case 3:
			cr_assert_eq(rkv_batch_status(b, (size_t)i), RKV_OK);
			cr_assert_neq(rkv_batch_timestamp(b, (size_t)i).hlc, 0);
			break;
		default:
			cr_assert_eq(rkv_batch_status(b, (size_t)i), RKV_OK);
			cr_assert_eq(rkv_batch_exists_result(b, (size_t)i), 1);
			break;
		}
	}
	/* The batch's writes are there, read one by one. */
	for (int i = 3; i < 10000; i += 5 * 37) {
		snprintf(k, sizeof(k), "nk%d", i);
		snprintf(v, sizeof(v), "nv%d", i);
		rkv_value *val;
		cr_assert_eq(rkv_get(c, k, strlen(k), &val), RKV_OK);
		cr_assert(val->len == strlen(v) &&
			  !memcmp(val->data, v, val->len));
		rkv_value_free(val);
	}
	rkv_batch_free(b);
	rkv_close(c);
}

Test(smart, kill9_is_failed_over_and_a_restart_gets_traffic_back)
{
	const int victim = 2;
	size_t nm;
	struct ring *r = ring_from(0, &nm);
	rkv_client *c = client_with(nodes[0].addr, 1);
	char k[32], v[32];
	for (int i = 0; i < 300; i++) {
		snprintf(k, sizeof(k), "fk%d", i);
		cr_assert_eq(rkv_put(c, k, strlen(k), k, strlen(k), NULL),
			     RKV_OK);
	}
	cr_assert_eq(h_node_signal(&nodes[victim], SIGKILL), 128 + SIGKILL);
	/* At once, before gossip knows: every key still reads and writes
	 * at QUORUM, those whose first replica died through another. */
	int64_t t0 = h_now_ms();
	int moved = 0;
	for (int i = 0; i < 300; i++) {
		snprintf(k, sizeof(k), "fk%d", i);
		rkv_value *val;
		cr_assert_eq(rkv_get(c, k, strlen(k), &val), RKV_OK,
			     "get %s with a node down: %s", k,
			     rkv_last_error(c));
		cr_assert(val->len == strlen(k) &&
			  !memcmp(val->data, k, val->len));
		rkv_value_free(val);
		cr_assert_neq(rkv_last_node(c), ids[victim]);
		snprintf(v, sizeof(v), "fv%d", i);
		cr_assert_eq(rkv_put(c, k, strlen(k), v, strlen(v), NULL),
			     RKV_OK, "put %s with a node down: %s", k,
			     rkv_last_error(c));
		uint64_t reps[RF];
		replicas_of(r, k, reps);
		moved += reps[0] == ids[victim];
	}
	fprintf(stderr,
		"smart: 600 requests after kill -9 in %lld ms, %d "
		"keys' first replica was the dead node\n",
		(long long)(h_now_ms() - t0), moved);
	cr_assert_gt(moved, 0);
	/* Batches too. */
	rkv_batch *b = rkv_batch_new();
	for (int i = 0; i < 300; i++) {
		snprintf(k, sizeof(k), "fk%d", i);
		rkv_batch_get(b, k, strlen(k));
	}
	cr_assert_eq(rkv_batch_exec(c, b), RKV_OK, "%s", rkv_last_error(c));
	for (size_t i = 0; i < 300; i++)
		cr_assert_eq(rkv_batch_status(b, i), RKV_OK);
	rkv_batch_free(b);

	/* Restarted: gossip calls it alive, the client's refresh sees that,
	 * and the keys it leads come back to it. */
	cr_assert_eq(h_node_start(&nodes[victim]), 0);
	t0 = h_now_ms();
	int back = 0;
	while (!back && h_now_ms() - t0 < 30000) {
		for (int i = 0; i < 300 && !back; i++) {
			snprintf(k, sizeof(k), "fk%d", i);
			uint64_t reps[RF];
			replicas_of(r, k, reps);
			if (reps[0] != ids[victim])
				continue;
			rkv_value *val;
			cr_assert_eq(rkv_get(c, k, strlen(k), &val), RKV_OK);
			rkv_value_free(val);
			back = rkv_last_node(c) == ids[victim];
		}
		if (!back)
			usleep(200000);
	}
	fprintf(stderr,
		"smart: the restarted node had its traffic back "
		"after %lld ms\n",
		(long long)(h_now_ms() - t0));
	cr_assert(back, "the restarted node never got its keys back");
	rkv_close(c);
	ring_free(r);
}

struct killer {
	int victim;
	int sig;
	int delay_ms;
};

static void *kill_later(void *arg)
{
	struct killer *k = arg;
	usleep((useconds_t)k->delay_ms * 1000);
	h_node_signal(&nodes[k->victim], k->sig);
	return NULL;
}

/* 40,000 reads and 10,000 writes over every node while node 3 gets sig:
 * a read whose connection broke is repeated elsewhere, a write fails only
 * when it was cut off in flight (may or may not have applied), and a
 * request the draining node refused goes to another replica.  Every read
 * succeeds; after a graceful stop (SIGTERM) every write does too: the
 * draining node answers what it is sent and closes only once clients
 * have gone elsewhere. */
static void batch_through_a_stop(int sig)
{
	rkv_client *c = client_with(nodes[0].addr, 1);
	rkv_batch *b = rkv_batch_new();
	char k[32], v[32];
	for (int i = 0; i < 2000; i++) {
		snprintf(k, sizeof(k), "mk%d", i);
		rkv_batch_put(b, k, strlen(k), k, strlen(k));
	}
	cr_assert_eq(rkv_batch_exec(c, b), RKV_OK);
	rkv_batch_reset(b);
	for (int i = 0; i < 50000; i++) {
		if (i % 5 == 4) {
			snprintf(k, sizeof(k), "mw%d", i);
			rkv_batch_put(b, k, strlen(k), k, strlen(k));
		} else {
			snprintf(k, sizeof(k), "mk%d", i % 2000);
			rkv_batch_get(b, k, strlen(k));
		}
	}
	struct killer kl = {.victim = 3, .sig = sig, .delay_ms = 40};
	pthread_t t;
	int64_t t0 = h_now_ms();
	pthread_create(&t, NULL, kill_later, &kl);
	int rc = rkv_batch_exec(c, b);
	int64_t ms = h_now_ms() - t0;
	pthread_join(t, NULL);
	int lost = 0, ok_writes = 0;
	for (int i = 0; i < 50000; i++) {
		int st = rkv_batch_status(b, (size_t)i);
		if (i % 5 == 4) {
			cr_assert(st == RKV_OK || st == RKV_ERR_CLOSED ||
				      st == RKV_ERR_TIMEOUT,
				  "write %d: %s", i, rkv_strerror(st));
			lost += st != RKV_OK;
			ok_writes += st == RKV_OK;
		} else {
			cr_assert_eq(st, RKV_OK, "read %d: %s (%s)", i,
				     rkv_strerror(st), rkv_last_error(c));
			const rkv_value *val = rkv_batch_value(b, (size_t)i);
			snprintf(v, sizeof(v), "mk%d", i % 2000);
			cr_assert(val->len == strlen(v) &&
				  !memcmp(val->data, v, val->len));
		}
	}
	fprintf(stderr,
		"smart: 50,000 requests with a %s after 40 ms: %lld "
		"ms, %d writes cut off (returned %s)\n",
		sig == SIGKILL ? "kill -9" : "SIGTERM", (long long)ms, lost,
		rkv_strerror(rc));
	cr_assert_eq(rc == RKV_OK, lost == 0);
	if (sig == SIGTERM)
		cr_assert_eq(lost, 0, "a graceful stop cut off %d writes", lost);
	/* Every acknowledged write reads back. */
	for (int i = 4; i < 50000; i += 5 * 11) {
		if (rkv_batch_status(b, (size_t)i) != RKV_OK)
			continue;
		snprintf(k, sizeof(k), "mw%d", i);
		rkv_value *val;
		cr_assert_eq(rkv_get(c, k, strlen(k), &val), RKV_OK, "%s", k);
		rkv_value_free(val);
	}
	cr_assert_gt(ok_writes, 0);
	rkv_batch_free(b);
	rkv_close(c);
}

Test(smart, a_node_killed_in_the_middle_of_a_batch)
{
	batch_through_a_stop(SIGKILL);
}

Test(smart, a_node_stopped_in_the_middle_of_a_batch)
{
	batch_through_a_stop(SIGTERM);
}

Test(smart, the_ring_refresh_follows_a_node_that_joins)
{
	rkv_client *c = client_with(nodes[0].addr, 1);
	char k[32];
	cr_assert_eq(rkv_put(c, "warm", 4, "x", 1, NULL), RKV_OK);
	start_node(N);
	for (int i = 0; i <= N; i++)
		wait_ring(i, N + 1);
	size_t nm;
	struct ring *r = ring_from(N, &nm);
	cr_assert_eq(nm, N + 1);
	int64_t t0 = h_now_ms();
	int seen = 0;
	for (int i = 0; !seen && h_now_ms() - t0 < 20000; i++) {
		snprintf(k, sizeof(k), "jk%d", i);
		cr_assert_eq(rkv_put(c, k, strlen(k), k, strlen(k), NULL),
			     RKV_OK, "%s", rkv_last_error(c));
		uint64_t reps[RF];
		replicas_of(r, k, reps);
		seen = rkv_last_node(c) == ids[N];
		if (i % 100 == 99)
			usleep(100000);
	}
	fprintf(stderr,
		"smart: a joined node got requests %lld ms after "
		"every node knew it\n",
		(long long)(h_now_ms() - t0));
	cr_assert(seen, "no request went to the new node");
	rkv_close(c);
	ring_free(r);
}

struct writer {
	const char *seeds;
	atomic_int stop;
	int done, failed, other;
	uint8_t *ok; /* ok[i]: write i was acknowledged */
	size_t cap;
	char why[512];
};

static void *write_until_stopped(void *arg)
{
	struct writer *w = arg;
	rkv_client *c = client_with(w->seeds, 1);
	char k[32];
	for (size_t i = 0; !atomic_load(&w->stop); i++) {
		if (i == w->cap) {
			w->cap = w->cap ? w->cap * 2 : 4096;
			w->ok = realloc(w->ok, w->cap);
			cr_assert_not_null(w->ok);
		}
		snprintf(k, sizeof(k), "dw%zu", i);
		int rc = rkv_put(c, k, strlen(k), k, strlen(k), NULL);
		w->ok[i] = rc == RKV_OK;
		if (rc == RKV_OK) {
			w->done++;
			continue;
		}
		size_t n = strlen(w->why);
		if (n < sizeof(w->why) - 1)
			snprintf(w->why + n, sizeof(w->why) - n,
				 "%s%s: %s (%s)", n ? "; " : "", k,
				 rkv_strerror(rc), rkv_last_error(c));
		/* Cut off in flight ("may or may not have applied") is what
		 * a node that stops can do; anything else is not. */
		if (rc == RKV_ERR_CLOSED || rc == RKV_ERR_TIMEOUT)
			w->failed++;
		else
			w->other++;
	}
	rkv_close(c);
	return NULL;
}

Test(smart, writes_go_on_while_a_node_is_decommissioned)
{
	const int leaver = 4;
	rkv_client *c = client_with(nodes[0].addr, 1);
	char k[32];
	for (int i = 0; i < 500; i++) {
		snprintf(k, sizeof(k), "dk%d", i);
		cr_assert_eq(rkv_put(c, k, strlen(k), k, strlen(k), NULL),
			     RKV_OK);
	}
	struct writer w = {.seeds = nodes[1].addr};
	atomic_init(&w.stop, 0);
	pthread_t t;
	pthread_create(&t, NULL, write_until_stopped, &w);
	rkv_client *admin = client_with(nodes[leaver].addr, 1);
	int64_t t0 = h_now_ms();
	int rc = rkv_decommission(admin, NULL, 120000);
	int64_t ms = h_now_ms() - t0;
	usleep(500000);
	atomic_store(&w.stop, 1);
	pthread_join(t, NULL);
	cr_assert_eq(rc, RKV_OK, "decommission: %s (%s)", rkv_strerror(rc),
		     rkv_last_error(admin));
	rkv_close(admin);
	fprintf(stderr,
		"smart: decommission took %lld ms; %d writes during "
		"it, %d cut off, %d failed otherwise%s%s\n",
		(long long)ms, w.done, w.failed, w.other, w.why[0] ? ": " : "",
		w.why);
	cr_assert_eq(w.other, 0, "writes failed: %s", w.why);
	cr_assert_eq(w.failed, 0, "%d writes cut off: %s", w.failed, w.why);
	/* It stops by itself. */
	int st = -1;
	for (int i = 0; i < 300 && st < 0; i++) {
		if (waitpid(nodes[leaver].pid, &st, WNOHANG) !=
		    nodes[leaver].pid)
			st = -1, usleep(100000);
	}
	cr_assert(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0,
		  "the decommissioned node did not stop cleanly (%d)", st);
	nodes[leaver].pid = 0;
	/* The old client's ring still has it: the failure and the refresh
	 * take it out, and every key reads back. */
	for (int i = 0; i < 500; i++) {
		snprintf(k, sizeof(k), "dk%d", i);
		rkv_value *v;
		cr_assert_eq(rkv_get(c, k, strlen(k), &v), RKV_OK, "%s: %s", k,
			     rkv_last_error(c));
		rkv_value_free(v);
		cr_assert_neq(rkv_last_node(c), ids[leaver]);
	}
	size_t sent = (size_t)(w.done + w.failed + w.other);
	for (size_t i = 0; i < sent; i++) {
		if (!w.ok[i])
			continue;
		snprintf(k, sizeof(k), "dw%zu", i);
		rkv_value *v;
		cr_assert_eq(rkv_get(c, k, strlen(k), &v), RKV_OK, "%s: %s", k,
			     rkv_last_error(c));
		rkv_value_free(v);
	}
	free(w.ok);
	rkv_close(c);
}

Test(smart, get_all_returns_one_answer_per_replica)
{
	size_t nm;
	struct ring *r = ring_from(1, &nm);
	rkv_client *c = client_with(nodes[4].addr, 1);
	rkv_timestamp ts;
	cr_assert_eq(rkv_put(c, "ga", 2, "one", 3, &ts), RKV_OK);
	uint64_t reps[RF];
	size_t n;
	ring_lookup(r, rk_key_hash("ga", 2), RF, reps, &n);
	rkv_replies *rp;
	cr_assert_eq(rkv_get_all(c, "ga", 2, NULL, &rp), RKV_OK);
	cr_assert_eq(rp->n_replies, RF);
	cr_assert_eq(rp->status, RKV_OK);
	cr_assert(rp->newest && rp->newest->len == 3 &&
		  !memcmp(rp->newest->data, "one", 3));
	cr_assert_eq(rp->newest_ts.hlc, ts.hlc);
	for (size_t i = 0; i < rp->n_replies; i++) {
		const rkv_reply *x = &rp->replies[i];
		cr_assert(is_replica(reps, x->node_id));
		for (size_t j = 0; j < i; j++)
			cr_assert_neq(rp->replies[j].node_id, x->node_id);
		cr_assert_eq(x->status, RKV_OK);
		cr_assert(x->len == 3 && !memcmp(x->data, "one", 3));
		cr_assert_eq(x->ts.hlc, ts.hlc);
		cr_assert_eq(x->ts.node_id, ts.node_id);
		cr_assert_eq(x->tombstone, 0);
	}
	rkv_replies_free(rp);

	/* Deleted: NOT_FOUND, every replica holding the tombstone. */
	cr_assert_eq(rkv_delete(c, "ga", 2, &ts), RKV_OK);
	cr_assert_eq(rkv_get_all(c, "ga", 2, NULL, &rp), RKV_ERR_NOT_FOUND);
	cr_assert_not_null(rp);
	cr_assert_eq(rp->n_replies, RF);
	cr_assert_null(rp->newest);
	cr_assert_eq(rp->newest_ts.hlc, ts.hlc);
	for (size_t i = 0; i < rp->n_replies; i++) {
		cr_assert_eq(rp->replies[i].status, RKV_ERR_NOT_FOUND);
		cr_assert_eq(rp->replies[i].tombstone, 1);
		cr_assert_eq(rp->replies[i].ts.hlc, ts.hlc);
	}
	rkv_replies_free(rp);

	/* Never written: NOT_FOUND everywhere, no tombstone. */
	cr_assert_eq(rkv_get_all(c, "never", 5, NULL, &rp), RKV_ERR_NOT_FOUND);
	cr_assert_eq(rp->n_replies, RF);
	for (size_t i = 0; i < rp->n_replies; i++) {
		cr_assert_eq(rp->replies[i].status, RKV_ERR_NOT_FOUND);
		cr_assert_eq(rp->replies[i].tombstone, 0);
	}
	rkv_replies_free(rp);

	/* A replica down: its answer is an error, QUORUM is still met. */
	int down = index_of(reps[2]);
	cr_assert_eq(rkv_put(c, "ga", 2, "two", 3, &ts), RKV_OK);
	cr_assert_eq(h_node_signal(&nodes[down], SIGKILL), 128 + SIGKILL);
	rkv_call_opts q = {.consistency = RKV_QUORUM};
	cr_assert_eq(rkv_get_all(c, "ga", 2, &q, &rp), RKV_OK,
		     "QUORUM all-replies read with a replica down: %s",
		     rkv_last_error(c));
	cr_assert_eq(rp->n_replies, RF);
	int ok = 0, failed = 0;
	for (size_t i = 0; i < rp->n_replies; i++) {
		if (rp->replies[i].node_id == ids[down]) {
			cr_assert_neq(rp->replies[i].status, RKV_OK);
			failed++;
		} else {
			cr_assert_eq(rp->replies[i].status, RKV_OK);
			ok++;
		}
	}
	cr_assert_eq(ok, 2);
	cr_assert_eq(failed, 1);
	cr_assert(rp->newest->len == 3 && !memcmp(rp->newest->data, "two", 3));
	rkv_replies_free(rp);
	rkv_close(c);
	ring_free(r);
}

Test(smart, node_stats_at_every_node)
{
	rkv_client *c = client_with(nodes[0].addr, 1);
	char k[32];
	for (int i = 0; i < 200; i++) {
		snprintf(k, sizeof(k), "st%d", i);
		cr_assert_eq(rkv_put(c, k, strlen(k), "v", 1, NULL), RKV_OK);
	}
	/* Every write reaches all three replicas soon after its quorum. */
	uint64_t total = 0;
	for (int t = 0; t < 50 && total != 200 * RF; t++) {
		total = 0;
		for (int i = 0; i < N; i++) {
			rkv_node_stats st;
			cr_assert_eq(rkv_node_stats_get(c, nodes[i].addr, &st),
				     RKV_OK, "%s", rkv_last_error(c));
			cr_assert_eq(st.node_id, ids[i]);
			cr_assert_str_eq(st.ring_status, "normal");
			cr_assert_gt(st.uptime_ms, 0);
			total += st.keys;
		}
		if (total != 200 * RF)
			usleep(100000);
	}
	cr_assert_eq(total, 200 * RF);
	rkv_node_stats st;
	cr_assert_eq(rkv_node_stats_get(c, "127.0.0.1:1", &st),
		     RKV_ERR_CONNECT);
	cr_assert_eq(rkv_node_stats_get(c, "nonsense", &st), RKV_ERR_INVALID);
	/* A live node is decommissioned, not removed: refused, and never
	 * retried or hung on; an id no node knows is refused too. */
	int rc = rkv_remove_node(c, ids[1], 5000);
	cr_assert_eq(rc, RKV_ERR_INVALID, "removenode of a live node: %s (%s)",
		     rkv_strerror(rc), rkv_last_error(c));
	rc = rkv_remove_node(c, 0x1234567890abcdefull, 5000);
	cr_assert_eq(rc, RKV_ERR_NOT_FOUND, "removenode of a stranger: %s (%s)",
		     rkv_strerror(rc), rkv_last_error(c));
	cr_assert_eq(rkv_put(c, "after", 5, "v", 1, NULL), RKV_OK);
	rkv_close(c);
}

Test(smart, smart_off_talks_to_the_seed_only)
{
	rkv_client *c = client_with(nodes[3].addr, 0);
	char k[32];
	for (int i = 0; i < 200; i++) {
		snprintf(k, sizeof(k), "ok%d", i);
		cr_assert_eq(rkv_put(c, k, strlen(k), k, strlen(k), NULL),
			     RKV_OK);
		cr_assert_eq(rkv_last_node(c), 0);
		cr_assert_str_eq(rkv_connected_address(c), nodes[3].addr);
	}
	for (int i = 0; i < 200; i++) {
		snprintf(k, sizeof(k), "ok%d", i);
		rkv_value *v;
		cr_assert_eq(rkv_get(c, k, strlen(k), &v), RKV_OK);
		rkv_value_free(v);
	}
	rkv_close(c);
}

Test(smart, a_dead_seed_is_skipped)
{
	char seeds[256];
	snprintf(seeds, sizeof(seeds), "127.0.0.1:1,%s", nodes[2].addr);
	rkv_client *c = client_with(seeds, 1);
	cr_assert_eq(rkv_put(c, "ds", 2, "v", 1, NULL), RKV_OK);
	cr_assert_neq(rkv_last_node(c), 0);
	rkv_close(c);
	c = client_with("127.0.0.1:1", 1);
	rkv_value *v;
	cr_assert_eq(rkv_get(c, "ds", 2, &v), RKV_ERR_CONNECT);
	rkv_close(c);
}
