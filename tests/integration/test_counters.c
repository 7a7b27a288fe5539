/* CRDT counters between real ringkvd processes on loopback (issue 7):
 *
 *   - 5 nodes, 20 clients, 10 counters, a node SIGKILLed and restarted
 *     under the load, every add whose outcome is unknown retried with the
 *     same op id until acknowledged: afterwards every node's own copy of
 *     every counter (a local read, with the replication factor at 5 so
 *     each node is a replica of each counter) is the exact sum;
 *   - a retried op id is refused a second count across kill -9 and
 *     compaction (the dedup window lives in the op-log and snapshots);
 *   - WRONG_TYPE both ways, deletes, the per-replica read;
 *   - bad input: malformed op ids, SERIAL, empty and oversized keys, op
 *     ids outside the window.
 *
 * Nodes run with the default storage.fsync (interval): an owner's add is
 * fdatasync'd before anything of it leaves whatever the policy
 * (node/store.c, "Adds wait for their fsync"), so exactly once holds
 * across kill -9 without fsync=always (repl/counter.c, "What exactly once
 * means"). */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "err.h"
#include "hash.h"
#include "harness.h"
#include "ring.h"
#include "wire.h"

#define MAXN 5
#define COUNTERS 10
#define CLIENTS 20

static struct h_node nodes[MAXN];
static int n_nodes;

static void stop_cluster(void)
{
	for (int i = 0; i < MAXN; i++)
		if (nodes[i].dir[0])
			h_node_destroy(&nodes[i]);
	memset(nodes, 0, sizeof(nodes));
}

TestSuite(counters, .fini = stop_cluster, .timeout = 600);

static void start_cluster(int n, const char *rf, const char *const *extra)
{
	n_nodes = n;
	for (int i = 0; i < n; i++) {
		h_node_init(&nodes[i], extra);
		h_node_add_arg(&nodes[i], "--set");
		h_node_add_arg(&nodes[i], rf);
		h_node_add_arg(&nodes[i], "--seeds");
		h_node_add_arg(&nodes[i], nodes[0].addr);
		cr_assert_eq(h_node_start(&nodes[i]), 0, "node %d", i);
	}
	for (int i = 0; i < n; i++)
		h_wait_owners(&nodes[i], (size_t)n, 0, 30000);
}

static char *seeds(void)
{
	static char s[MAXN * 48];
	s[0] = 0;
	for (int i = 0; i < n_nodes; i++) {
		if (i)
			strcat(s, ",");
		strcat(s, nodes[i].addr);
	}
	return s;
}

/* --- the load --------------------------------------------------------- */

struct load {
	atomic_int stop;	   /* no new adds (retries go on) */
	atomic_int give_up;	   /* stop retrying too */
	atomic_long sum[COUNTERS]; /* every add begun */
	atomic_long acked, begun, retries, duplicates, unknown;
	atomic_int pending; /* adds begun and not yet acknowledged */
	atomic_int failed;  /* a definite failure (the test fails) */
	char why[256];
	const char *seeds;
};

struct client_arg {
	struct load *l;
	int id;
};

static int unknown_outcome(int rc)
{
	return rc == RKV_ERR_TIMEOUT || rc == RKV_ERR_CLOSED ||
	       rc == RKV_ERR_UNAVAILABLE || rc == RKV_ERR_SHUTTING_DOWN ||
	       rc == RKV_ERR_CONNECT;
}

static void *client_main(void *arg)
{
	struct client_arg *a = arg;
	struct load *l = a->l;
	rkv_options o;
	rkv_options_init(&o);
	o.request_timeout_ms = 3000;
	o.write_consistency = RKV_QUORUM;
	rkv_client *c = NULL;
	if (rkv_client_new(l->seeds, &o, &c) != RKV_OK) {
		if (!atomic_exchange(&l->failed, 1))
			snprintf(l->why, sizeof(l->why), "no client");
		return NULL;
	}
	unsigned seed = (unsigned)getpid() * 31u + (unsigned)a->id;
	while (!atomic_load(&l->stop)) {
		int k = (int)(rand_r(&seed) % COUNTERS);
		int64_t delta = 1 + (int64_t)(rand_r(&seed) % 5);
		char key[16];
		snprintf(key, sizeof(key), "ctr-%d", k);
		rkv_op_id id;
		memset(&id, 0, sizeof(id));
		atomic_fetch_add(&l->sum[k], delta);
		atomic_fetch_add(&l->begun, 1);
		atomic_fetch_add(&l->pending, 1);
		/* The same op id until the add is acknowledged. */
		for (int attempt = 0;; attempt++) {
			rkv_counter_add_result res;
			int rc = rkv_counter_add_ex(c, key, strlen(key), delta,
						    NULL, &id, &res);
			if (rc == RKV_OK) {
				atomic_fetch_add(&l->acked, 1);
				atomic_fetch_add(&l->duplicates, res.duplicate);
				break;
			}
			if (!unknown_outcome(rc)) {
				/* Criterion asserts only in the main thread. */
				if (!atomic_exchange(&l->failed, 1))
					snprintf(l->why, sizeof(l->why),
						 "add to %s: %s (%s)", key,
						 rkv_strerror(rc),
						 rkv_last_error(c));
				break;
			}
			if (atomic_load(&l->give_up)) {
				atomic_fetch_add(&l->unknown, 1);
				break;
			}
			atomic_fetch_add(&l->retries, 1);
			usleep(attempt < 5 ? 20000 : 200000);
		}
		atomic_fetch_sub(&l->pending, 1);
	}
	rkv_close(c);
	return NULL;
}

/* Every node's own copy of every counter is the exact sum.  Polls until
 * true or timeout; returns the milliseconds it took, or -1. */
static long wait_exact(struct load *l, int timeout_ms, char *why, size_t whylen)
{
	int64_t t0 = h_now_ms();
	for (;;) {
		int ok = 1;
		for (int i = 0; i < n_nodes && ok; i++) {
			rkv_client *c = h_client(&nodes[i]);
			for (int k = 0; k < COUNTERS && ok; k++) {
				char key[16];
				snprintf(key, sizeof(key), "ctr-%d", k);
				int64_t v = 0;
				int rc = rkv_counter_get_local(c, NULL, key,
							       strlen(key), &v);
				long want = atomic_load(&l->sum[k]);
				if ((rc != RKV_OK &&
				     !(rc == RKV_ERR_NOT_FOUND && want == 0)) ||
				    v != want) {
					snprintf(why, whylen,
						 "node %d holds %" PRId64
						 " (%s) for %s, the adds sum "
						 "to %ld",
						 i, v, rkv_strerror(rc), key,
						 want);
					ok = 0;
				}
			}
			rkv_close(c);
		}
		if (ok)
			return (long)(h_now_ms() - t0);
		if (h_now_ms() - t0 > timeout_ms)
			return -1;
		usleep(250000);
	}
}

Test(counters, exact_sum_with_a_node_killed_under_load)
{
	start_cluster(5, "cluster.replication_factor=5", NULL);
	static struct load l;
	memset(&l, 0, sizeof(l));
	l.seeds = seeds();
	pthread_t th[CLIENTS];
	struct client_arg args[CLIENTS];
	for (int i = 0; i < CLIENTS; i++) {
		args[i] = (struct client_arg){&l, i};
		pthread_create(&th[i], NULL, client_main, &args[i]);
	}
	sleep(3);
	long before = atomic_load(&l.acked);
	int victim = 2;
	cr_assert_eq(h_node_signal(&nodes[victim], SIGKILL), 128 + SIGKILL);
	sleep(4);
	cr_assert_eq(h_node_start(&nodes[victim]), 0);
	sleep(4);
	atomic_store(&l.stop, 1);
	/* Adds still unacknowledged keep being retried (same op id). */
	for (int i = 0; i < 600 && atomic_load(&l.pending); i++)
		usleep(100000);
	atomic_store(&l.give_up, 1);
	for (int i = 0; i < CLIENTS; i++)
		pthread_join(th[i], NULL);
	cr_assert_not(atomic_load(&l.failed), "%s", l.why);
	cr_assert_eq(atomic_load(&l.unknown), 0, "%ld adds never acknowledged",
		     atomic_load(&l.unknown));
	char why[256] = "";
	long ms = wait_exact(&l, 120000, why, sizeof(why));
	cr_assert_geq(ms, 0, "%s", why);
	fprintf(stderr,
		"counters: %ld adds by %d clients to %d counters (%ld "
		"acknowledged before the kill -9), %ld retries with the same "
		"op id, %ld answered as duplicates; every node holds the exact "
		"sums %ld ms after the load\n",
		atomic_load(&l.acked), CLIENTS, COUNTERS, before,
		atomic_load(&l.retries), atomic_load(&l.duplicates), ms);
	/* And a coordinated read through each node agrees. */
	for (int i = 0; i < n_nodes; i++) {
		rkv_client *c = h_client(&nodes[i]);
		rkv_call_opts co = {.consistency = RKV_ALL};
		for (int k = 0; k < COUNTERS; k++) {
			char key[16];
			snprintf(key, sizeof(key), "ctr-%d", k);
			int64_t v;
			cr_assert_eq(
			    rkv_counter_get_ex(c, key, strlen(key), &co, &v),
			    RKV_OK);
			cr_assert_eq(v, atomic_load(&l.sum[k]));
		}
		rkv_close(c);
	}
	stop_cluster();
}

/* --- ring changes ----------------------------------------------------------
 */

/* The ring as node i sees it. */
static struct ring *ring_of(int i, size_t *rf)
{
	rkv_client *c = h_client(&nodes[i]);
	rkv_ring_info *ri;
	cr_assert_eq(rkv_ring_info_get(c, &ri), RKV_OK);
	struct ring_member *m = calloc(ri->n_members, sizeof(*m));
	for (size_t k = 0; k < ri->n_members; k++)
		m[k] = (struct ring_member){
		    ri->members[k].node_id, ri->members[k].weight,
		    ri->members[k].tokens, ri->members[k].n_tokens};
	struct ring_config rc = {.epoch = 1, .rf_max = ri->replication_factor};
	struct ring *r;
	cr_assert_eq(ring_new(m, ri->n_members, &rc, &r), 0);
	*rf = ri->replication_factor;
	free(m);
	rkv_ring_info_free(ri);
	rkv_close(c);
	return r;
}

/* Every owner of each key (by node i's ring) holds want[k] in its own
 * copy.  Polls until true or timeout; returns 0 or -1 with why. */
static int owners_hold(int i, const char *prefix, int keys, const long *want,
		       int timeout_ms, char *why, size_t whylen)
{
	uint64_t ids[MAXN];
	for (int k = 0; k < n_nodes; k++) {
		ids[k] = 0;
		if (!nodes[k].pid)
			continue;
		rkv_client *c = h_client(&nodes[k]);
		cr_assert_eq(rkv_ping(c, &ids[k]), RKV_OK);
		rkv_close(c);
	}
	int64_t t0 = h_now_ms();
	for (;;) {
		size_t rf;
		struct ring *r = ring_of(i, &rf);
		int ok = 1;
		for (int k = 0; k < keys && ok; k++) {
			char key[32];
			snprintf(key, sizeof(key), "%s%d", prefix, k);
			uint64_t own[RING_RF_MAX];
			size_t no = 0;
			ring_lookup(r, rk_key_hash(key, strlen(key)), rf, own,
				    &no);
			for (size_t o = 0; o < no && ok; o++) {
				int at = -1;
				for (int x = 0; x < n_nodes; x++)
					if (nodes[x].pid && ids[x] == own[o])
						at = x;
				if (at < 0) {
					snprintf(why, whylen,
						 "owner %016" PRIx64
						 " of %s is not running",
						 own[o], key);
					ok = 0;
					break;
				}
				rkv_client *c = h_client(&nodes[at]);
				int64_t v = 0;
				int rc = rkv_counter_get_local(c, NULL, key,
							       strlen(key), &v);
				rkv_close(c);
				if (rc != RKV_OK || v != want[k]) {
					snprintf(
					    why, whylen,
					    "node %d, an owner of %s, holds "
					    "%" PRId64 " (%s), want %ld",
					    at, key, v, rkv_strerror(rc),
					    want[k]);
					ok = 0;
				}
			}
		}
		ring_free(r);
		if (ok)
			return 0;
		if (h_now_ms() - t0 > timeout_ms)
			return -1;
		usleep(500000);
	}
}

Test(counters, counters_move_with_a_join_and_a_decommission)
{
	start_cluster(4, "cluster.replication_factor=3", NULL);
	rkv_client *c;
	cr_assert_eq(rkv_client_new(seeds(), NULL, &c), RKV_OK);
	enum { PRE = 200 };
	long pre[PRE];
	for (int k = 0; k < PRE; k++) {
		char key[32];
		snprintf(key, sizeof(key), "pre-%d", k);
		pre[k] = k + 1;
		cr_assert_eq(rkv_counter_add(c, key, strlen(key), k + 1, NULL),
			     RKV_OK);
	}
	rkv_close(c);
	/* Adds go on through both changes. */
	static struct load l;
	memset(&l, 0, sizeof(l));
	l.seeds = seeds();
	pthread_t th[4];
	struct client_arg args[4];
	for (int i = 0; i < 4; i++) {
		args[i] = (struct client_arg){&l, i};
		pthread_create(&th[i], NULL, client_main, &args[i]);
	}
	usleep(500000);
	/* A fifth node joins. */
	h_node_init(&nodes[4], NULL);
	h_node_add_arg(&nodes[4], "--set");
	h_node_add_arg(&nodes[4], "cluster.replication_factor=3");
	h_node_add_arg(&nodes[4], "--seeds");
	h_node_add_arg(&nodes[4], nodes[0].addr);
	cr_assert_eq(h_node_start(&nodes[4]), 0);
	n_nodes = 5;
	int64_t t0 = h_now_ms();
	char st[32] = "";
	while (h_ring_status(&nodes[4], st, sizeof(st)) == 0 &&
	       strcmp(st, "normal") != 0) {
		cr_assert_lt(h_now_ms() - t0, 120000, "still %s", st);
		usleep(100000);
	}
	for (int i = 0; i < 5; i++)
		h_wait_owners(&nodes[i], 5, 0, 30000);
	/* Node 1 hands its ranges over and leaves. */
	struct rk_request q = {.id = 1, .op = RK_OP_DECOMMISSION};
	cr_assert_eq(h_request(&nodes[1], &q, 300000, NULL, NULL), 0);
	for (int i = 0; i < 100 && kill(nodes[1].pid, 0) == 0; i++)
		usleep(100000);
	h_node_signal(&nodes[1], SIGTERM); /* reaps it */
	for (int i = 0; i < 5; i++)
		if (nodes[i].pid)
			h_wait_owners(&nodes[i], 4, 0, 30000);
	atomic_store(&l.stop, 1);
	for (int i = 0; i < 600 && atomic_load(&l.pending); i++)
		usleep(100000);
	atomic_store(&l.give_up, 1);
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	cr_assert_not(atomic_load(&l.failed), "%s", l.why);
	cr_assert_eq(atomic_load(&l.unknown), 0);
	char why[256] = "";
	cr_assert_eq(
	    owners_hold(0, "pre-", PRE, pre, 120000, why, sizeof(why)), 0,
	    "%s", why);
	long sums[COUNTERS];
	for (int k = 0; k < COUNTERS; k++)
		sums[k] = atomic_load(&l.sum[k]);
	cr_assert_eq(
	    owners_hold(0, "ctr-", COUNTERS, sums, 120000, why, sizeof(why)),
	    0, "%s", why);
	fprintf(stderr,
		"counters: %d preloaded counters and %ld adds during a join "
		"and a decommission: every owner holds the exact sums\n",
		PRE, atomic_load(&l.acked));
	stop_cluster();
}

/* --- the dedup window across kill -9 and compaction ---------------------- */

static void wait_log(const struct h_node *n, const char *what, int timeout_ms)
{
	int64_t t0 = h_now_ms();
	while (h_sh("grep -q '%s' %s", what, n->log) != 0) {
		cr_assert_lt(h_now_ms() - t0, timeout_ms, "no '%s' in %s", what,
			     n->log);
		usleep(100000);
	}
}

Test(counters, retried_op_id_counts_once_across_kill9_and_compaction)
{
	/* Compaction as soon as there is anything to compact. */
	static const char *const extra[] = {
	    "--set", "storage.compact_min_size=0", "--set",
	    "storage.compact_ratio=10", NULL};
	start_cluster(3, "cluster.replication_factor=3", extra);
	rkv_client *c;
	cr_assert_eq(rkv_client_new(seeds(), NULL, &c), RKV_OK);
	rkv_op_id ids[20];
	rkv_counter_add_result res;
	for (int i = 0; i < 20; i++) {
		memset(&ids[i], 0, sizeof(ids[i]));
		cr_assert_eq(
		    rkv_counter_add_ex(c, "once", 4, 10, NULL, &ids[i], &res),
		    RKV_OK);
		cr_assert_not(res.duplicate);
	}
	int64_t v;
	cr_assert_eq(rkv_counter_get(c, "once", 4, &v), RKV_OK);
	cr_assert_eq(v, 200);
	/* Every node compacts (the window goes into its snapshot), then
	 * all three die at once and come back. */
	for (int i = 0; i < 3; i++)
		wait_log(&nodes[i], "compaction done", 30000);
	rkv_close(c);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(h_node_signal(&nodes[i], SIGKILL), 128 + SIGKILL);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(h_node_start(&nodes[i]), 0);
	cr_assert_eq(rkv_client_new(seeds(), NULL, &c), RKV_OK);
	for (int i = 0; i < 20; i++) {
		int rc = RKV_ERR_UNAVAILABLE;
		for (int t = 0; t < 100 && rc != RKV_OK; t++) {
			rc = rkv_counter_add_ex(c, "once", 4, 10, NULL, &ids[i],
						&res);
			if (rc != RKV_OK)
				usleep(100000); /* gossip finds the others */
		}
		cr_assert_eq(rc, RKV_OK, "%s", rkv_last_error(c));
		cr_assert(res.duplicate, "op %d counted again after restart",
			  i);
	}
	/* ALL needs every node seen up again. */
	rkv_call_opts all = {.consistency = RKV_ALL};
	int rc = RKV_ERR_UNAVAILABLE;
	for (int t = 0; t < 300 && rc != RKV_OK; t++)
		if ((rc = rkv_counter_get_ex(c, "once", 4, &all, &v)) != RKV_OK)
			usleep(100000);
	cr_assert_eq(rc, RKV_OK, "%s", rkv_last_error(c));
	cr_assert_eq(v, 200, "still exactly 20 adds of 10");
	rkv_close(c);
	stop_cluster();
}

/* --- types, deletes, replicas ------------------------------------------- */

Test(counters, wrong_type_delete_and_replicas)
{
	start_cluster(3, "cluster.replication_factor=3", NULL);
	rkv_client *c;
	cr_assert_eq(rkv_client_new(seeds(), NULL, &c), RKV_OK);
	cr_assert_eq(rkv_put(c, "reg", 3, "x", 1, NULL), RKV_OK);
	int64_t v;
	cr_assert_eq(rkv_counter_add(c, "reg", 3, 1, &v), RKV_ERR_WRONG_TYPE);
	cr_assert(strstr(rkv_last_error(c), "value") != NULL, "%s",
		  rkv_last_error(c));
	cr_assert_eq(rkv_counter_get(c, "reg", 3, &v), RKV_ERR_WRONG_TYPE);
	cr_assert_eq(rkv_counter_delete(c, "reg", 3), RKV_ERR_WRONG_TYPE);
	rkv_value *val;
	cr_assert_eq(rkv_get(c, "reg", 3, &val), RKV_OK, "the value survived");
	rkv_value_free(val);

	cr_assert_eq(rkv_counter_add(c, "ctr", 3, 5, &v), RKV_OK);
	cr_assert_eq(v, 5);
	cr_assert_eq(rkv_counter_add(c, "ctr", 3, -7, &v), RKV_OK);
	cr_assert_eq(rkv_get(c, "ctr", 3, &val), RKV_ERR_WRONG_TYPE);
	cr_assert(strstr(rkv_last_error(c), "counter") != NULL);
	cr_assert_eq(rkv_put(c, "ctr", 3, "y", 1, NULL), RKV_ERR_WRONG_TYPE);
	/* Compare-and-set is for registers too. */
	int applied = 0;
	rkv_value *cur = NULL;
	cr_assert_eq(rkv_put_if_absent(c, "ctr", 3, "y", 1, &applied, &cur),
		     RKV_ERR_WRONG_TYPE, "%s", rkv_last_error(c));
	rkv_value_free(cur);
	cr_assert_eq(rkv_delete(c, "ctr", 3, NULL), RKV_ERR_WRONG_TYPE);
	rkv_call_opts all = {.consistency = RKV_ALL};
	cr_assert_eq(rkv_counter_get_ex(c, "ctr", 3, &all, &v), RKV_OK);
	cr_assert_eq(v, -2, "put and del changed nothing");

	rkv_counter_replies *r;
	cr_assert_eq(rkv_counter_get_all(c, "ctr", 3, &all, &r), RKV_OK);
	cr_assert_eq(r->n_replies, 3);
	cr_assert_eq(r->value, -2);
	for (size_t i = 0; i < r->n_replies; i++)
		cr_assert(r->replies[i].status == RKV_OK &&
			  r->replies[i].value == -2);
	rkv_counter_replies_free(r);

	cr_assert_eq(rkv_counter_delete_ex(c, "ctr", 3, &all), RKV_OK);
	cr_assert_eq(rkv_counter_get_ex(c, "ctr", 3, &all, &v),
		     RKV_ERR_NOT_FOUND);
	cr_assert_eq(rkv_counter_add(c, "ctr", 3, 3, &v), RKV_OK);
	cr_assert_eq(rkv_counter_get_ex(c, "ctr", 3, &all, &v), RKV_OK);
	cr_assert_eq(v, 3, "a deleted counter starts again from zero");
	cr_assert_eq(rkv_counter_get(c, "never", 5, &v), RKV_ERR_NOT_FOUND);
	rkv_close(c);
	stop_cluster();
}

/* --- bad input ------------------------------------------------------------ */

static int counter_add_raw(const struct h_node *n, const char *key, size_t klen,
			   const uint8_t *op, size_t oplen,
			   enum rk_consistency cl)
{
	struct rk_request q = {.id = 5,
			       .op = RK_OP_COUNTER_ADD,
			       .key = {(const uint8_t *)key, klen},
			       .delta = 1,
			       .op_id = {op, oplen},
			       .consistency = cl};
	return h_request(n, &q, 5000, NULL, NULL);
}

static void opid_at(uint8_t *b, uint64_t ms, uint64_t rnd)
{
	for (int i = 0; i < 8; i++) {
		b[i] = (uint8_t)(ms >> (8 * i));
		b[8 + i] = (uint8_t)(rnd >> (8 * i));
	}
}

Test(counters, bad_input_is_refused_and_changes_nothing)
{
	start_cluster(1, "cluster.replication_factor=1", NULL);
	const struct h_node *n = &nodes[0];
	uint8_t op[RK_OPID_LEN];
	opid_at(op, (uint64_t)time(NULL) * 1000, 7);
	cr_assert_eq(counter_add_raw(n, "k", 1, op, 5, RK_CL_ONE),
		     RK_EBAD_REQUEST, "a short op id");
	uint8_t zero[RK_OPID_LEN] = {0};
	cr_assert_eq(counter_add_raw(n, "k", 1, zero, RK_OPID_LEN, RK_CL_ONE),
		     RK_EBAD_REQUEST, "an all-zero op id");
	cr_assert_eq(counter_add_raw(n, "k", 1, op, RK_OPID_LEN, RK_CL_SERIAL),
		     RK_EBAD_REQUEST, "SERIAL");
	cr_assert_eq(counter_add_raw(n, "", 0, op, RK_OPID_LEN, RK_CL_ONE),
		     RK_EEMPTY_KEY);
	char big[2048];
	memset(big, 'k', sizeof(big));
	cr_assert_eq(
	    counter_add_raw(n, big, sizeof(big), op, RK_OPID_LEN, RK_CL_ONE),
	    RK_EKEY_TOO_LARGE);
	uint8_t old[RK_OPID_LEN], ahead[RK_OPID_LEN];
	opid_at(old, (uint64_t)(time(NULL) - 7200) * 1000, 8);
	opid_at(ahead, (uint64_t)(time(NULL) + 7200) * 1000, 9);
	cr_assert_eq(counter_add_raw(n, "k", 1, old, RK_OPID_LEN, RK_CL_ONE),
		     RK_EBAD_REQUEST, "an op id older than the window");
	cr_assert_eq(counter_add_raw(n, "k", 1, ahead, RK_OPID_LEN, RK_CL_ONE),
		     RK_EBAD_REQUEST, "an op id from the future");
	/* None of it counted; a good add does, once. */
	rkv_client *c = h_client(n);
	int64_t v;
	cr_assert_eq(rkv_counter_get(c, "k", 1, &v), RKV_ERR_NOT_FOUND);
	cr_assert_eq(counter_add_raw(n, "k", 1, op, RK_OPID_LEN, RK_CL_ONE), 0);
	cr_assert_eq(counter_add_raw(n, "k", 1, op, RK_OPID_LEN, RK_CL_ONE), 0);
	cr_assert_eq(rkv_counter_get(c, "k", 1, &v), RKV_OK);
	cr_assert_eq(v, 1);
	/* Without an op id the node makes one: each is a new add. */
	cr_assert_eq(counter_add_raw(n, "k", 1, NULL, 0, RK_CL_ONE), 0);
	cr_assert_eq(rkv_counter_get(c, "k", 1, &v), RKV_OK);
	cr_assert_eq(v, 2);
	cr_assert_eq(rkv_ping(c, NULL), RKV_OK, "still serving");
	rkv_close(c);
	stop_cluster();
}
