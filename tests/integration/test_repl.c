/* Quorum replication between real ringkvd processes on loopback: kill -9
 * under load, fail-fast consistency levels, a node joining and one being
 * decommissioned under load, and the removal of a dead node.  Every check
 * reads each replica's own copy (a local read), not just a quorum. */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "err.h"
#include "hash.h"
#include "harness.h"
#include "ring.h"
#include "wire.h"

#define MAXN 8
#define MAX_ACKED 400000

static struct h_node nodes[MAXN];
static uint64_t ids[MAXN];
static int n_nodes;

static const char *const common_args[] = {
	"--set", "replication.cleanup_delay=2s",
	"--set", "gossip.push_pull_interval=2s",
	NULL};

static void start_node(int i)
{
	h_node_init(&nodes[i], common_args);
	h_node_add_arg(&nodes[i], "--seeds");
	h_node_add_arg(&nodes[i], nodes[0].addr);
	cr_assert_eq(h_node_start(&nodes[i]), 0, "node %d", i);
	rkv_client *c = h_client(&nodes[i]);
	cr_assert_eq(rkv_ping(c, &ids[i]), RKV_OK);
	rkv_close(c);
}

static void start_cluster(int n)
{
	n_nodes = n;
	for (int i = 0; i < n; i++)
		start_node(i);
	for (int i = 0; i < n; i++)
		h_wait_owners(&nodes[i], (size_t)n, 0, 30000);
}

static void stop_cluster(void)
{
	for (int i = 0; i < MAXN; i++)
		if (nodes[i].dir[0])
			h_node_destroy(&nodes[i]);
	memset(nodes, 0, sizeof(nodes));
}

TestSuite(repl, .fini = stop_cluster, .timeout = 600);

/* The ring as node i sees it, to find a key's owners. */
static struct ring *ring_of(int i, size_t *rf)
{
	rkv_client *c = h_client(&nodes[i]);
	rkv_ring_info *ri;
	cr_assert_eq(rkv_ring_info_get(c, &ri), RKV_OK);
	struct ring_member *m = calloc(ri->n_members, sizeof(*m));
	for (size_t k = 0; k < ri->n_members; k++)
		m[k] = (struct ring_member){ri->members[k].node_id,
					    ri->members[k].weight,
					    ri->members[k].tokens,
					    ri->members[k].n_tokens};
	struct ring_config rc = {.epoch = 1, .rf_max = ri->replication_factor};
	struct ring *r;
	cr_assert_eq(ring_new(m, ri->n_members, &rc, &r), 0);
	*rf = ri->replication_factor;
	free(m);
	rkv_ring_info_free(ri);
	rkv_close(c);
	return r;
}

/* --- a write load through random nodes ---------------------------- */

struct load {
	atomic_int stop;
	atomic_long acked;
	char (*keys)[24];     /* acknowledged keys, value = key */
	signed char *via;     /* the node each went through */
	int writer;
	rkv_consistency cl;
};

static void *load_main(void *arg)
{
	struct load *l = arg;
	rkv_options o;
	rkv_options_init(&o);
	o.request_timeout_ms = 5000;
	o.write_consistency = l->cl;
	unsigned seed = (unsigned)getpid() ^ (unsigned)l->writer;
	rkv_client *c = NULL;
	int k = 0;
	for (long i = 0; !atomic_load(&l->stop); i++) {
		if (!c) {
			k = (int)(rand_r(&seed) % (unsigned)n_nodes);
			if (!nodes[k].pid ||
			    rkv_connect(nodes[k].addr, &o, &c) != RKV_OK) {
				c = NULL;
				usleep(20000);
				continue;
			}
		}
		char key[24];
		snprintf(key, sizeof(key), "w%d-%ld", l->writer, i);
		int rc = rkv_put(c, key, strlen(key), key, strlen(key), NULL);
		if (rc == RKV_OK) {
			long n = atomic_load(&l->acked);
			if (n < MAX_ACKED) {
				memcpy(l->keys[n], key, sizeof(key));
				l->via[n] = (signed char)k;
				atomic_store(&l->acked, n + 1);
			}
		} else if (rc == RKV_ERR_CLOSED || rc == RKV_ERR_CONNECT ||
			   rc == RKV_ERR_TIMEOUT) {
			rkv_close(c);
			c = NULL;
		}
	}
	rkv_close(c);
	return NULL;
}

static void load_start(struct load *l, pthread_t *th, int writer)
{
	memset(l, 0, sizeof(*l));
	l->keys = calloc(MAX_ACKED, sizeof(*l->keys));
	l->via = calloc(MAX_ACKED, sizeof(*l->via));
	l->writer = writer;
	l->cl = RKV_QUORUM;
	pthread_create(th, NULL, load_main, l);
}

static long load_stop(struct load *l, pthread_t th)
{
	atomic_store(&l->stop, 1);
	pthread_join(th, NULL);
	return atomic_load(&l->acked);
}

/* Which node key k was written through and which nodes hold it now:
 * what a failure message needs to be worth reading. */
static const char *whereabouts(const struct load *l, long k)
{
	static char s[128];
	int len = snprintf(s, sizeof(s), "written through n%d; held by",
			   l->via ? l->via[k] : -1);
	const char *key = l->keys[k];
	for (int i = 0; i < MAXN; i++) {
		unsigned char has = 0;
		if (nodes[i].pid && h_local_has_many(&nodes[i], &key, 1, &has) == 0 &&
		    has && len < (int)sizeof(s) - 8)
			len += snprintf(s + len, sizeof(s) - (size_t)len, " n%d", i);
	}
	return s;
}

/* Every acknowledged key is on each of its owners (a local read), and,
 * when exact, on no other live node.  Polls until true or timeout (hints
 * and catch-up take a moment); returns the milliseconds it took. */
static long check_placement(struct load *l, long acked, int exact,
			    int timeout_ms)
{
	int64_t t0 = h_now_ms();
	char why[256] = "";
	const char **keys = malloc((size_t)(acked ? acked : 1) * sizeof(*keys));
	unsigned char *found = malloc((size_t)(acked ? acked : 1));
	for (long k = 0; k < acked; k++)
		keys[k] = l->keys[k];
	for (;;) {
		size_t rf;
		struct ring *r = ring_of(0, &rf);
		int bad = 0;
		for (int i = 0; i < MAXN && !bad; i++) {
			if (!nodes[i].pid)
				continue;
			cr_assert_eq(h_local_has_many(&nodes[i], keys,
						      (size_t)acked, found), 0);
			for (long k = 0; k < acked && !bad; k++) {
				uint64_t own[RING_RF_MAX];
				size_t no;
				ring_lookup(r, rk_key_hash(keys[k],
							   strlen(keys[k])),
					    rf, own, &no);
				int owner = 0;
				for (size_t j = 0; j < no; j++)
					owner |= own[j] == ids[i];
				if (owner && !found[k]) {
					snprintf(why, sizeof(why),
						 "owner n%d lacks %s (%s)", i,
						 keys[k], whereabouts(l, k));
					bad = 1;
				} else if (exact && !owner && found[k]) {
					snprintf(why, sizeof(why),
						 "non-owner n%d still holds %s",
						 i, keys[k]);
					bad = 1;
				}
			}
		}
		ring_free(r);
		if (!bad)
			break;
		cr_assert_lt(h_now_ms() - t0, timeout_ms, "%s", why);
		usleep(500000);
	}
	free(keys);
	free(found);
	return (long)(h_now_ms() - t0);
}

/* --- tests ----------------------------------------------------------- */

Test(repl, kill9_under_quorum_load_loses_no_acknowledged_write)
{
	start_cluster(5);
	struct load l;
	pthread_t th;
	load_start(&l, &th, 1);
	for (int cycle = 0; cycle < 3; cycle++) {
		int v = 1 + cycle;
		usleep(1500000);
		cr_assert_eq(h_node_signal(&nodes[v], SIGKILL), 128 + SIGKILL);
		usleep(3000000); /* writes go on without it: hints pile up */
		int64_t t0 = h_now_ms();
		cr_assert_eq(h_node_start(&nodes[v]), 0);
		/* Catch-up from the peers' logs: the restarted node's log
		 * says when each is done. */
		for (int tries = 0; tries < 300; tries++) {
			if (h_sh("grep -q 'catch-up from .* done' %s", nodes[v].log) == 0)
				break;
			usleep(100000);
		}
		fprintf(stderr, "repl: node %d back after a 3 s outage, first "
				"catch-up done within %lld ms\n",
			v, (long long)(h_now_ms() - t0));
	}
	long acked = load_stop(&l, th);
	cr_assert_gt(acked, 100);
	long ms = check_placement(&l, acked, 0, 60000);
	fprintf(stderr, "repl: %ld acknowledged QUORUM writes across 3 kill -9 "
			"cycles; every replica held each within %ld ms\n",
		acked, ms);
	/* And at ALL through any node. */
	rkv_client *c = h_client(&nodes[4]);
	rkv_call_opts all = {.consistency = RKV_ALL};
	for (long k = 0; k < acked; k += 97) {
		rkv_value *v;
		cr_assert_eq(rkv_get_ex(c, l.keys[k], strlen(l.keys[k]), &all, &v),
			     RKV_OK, "%s at ALL", l.keys[k]);
		rkv_value_free(v);
	}
	rkv_close(c);
	free(l.keys);
	free(l.via);
}

Test(repl, all_fails_fast_while_a_replica_is_down_and_one_still_works)
{
	start_cluster(3);
	size_t rf;
	struct ring *r = ring_of(0, &rf);
	/* The premise: only our three nodes are in the ring (no process
	 * from an earlier test joined it), so every key has each. */
	cr_assert_eq(ring_member_count(r), 3, "the ring has %zu members",
		     ring_member_count(r));
	cr_assert_eq(rf, 3);
	cr_assert_eq(h_node_signal(&nodes[2], SIGKILL), 128 + SIGKILL);
	rkv_client *c = h_client(&nodes[0]);
	rkv_call_opts all = {.consistency = RKV_ALL};
	rkv_call_opts one = {.consistency = RKV_ONE};
	int64_t t0 = h_now_ms();
	/* With 3 nodes and RF 3, every key has the dead node as a replica. */
	int rc = rkv_put_ex(c, "k", 1, "v", 1, &all, NULL);
	long ms = (long)(h_now_ms() - t0);
	if (rc != RKV_ERR_UNAVAILABLE) {
		struct ring *now = ring_of(0, &rf);
		cr_assert_fail("ALL with a replica down: %s (node 1's ring "
			       "now has %zu members)",
			       rkv_strerror(rc), ring_member_count(now));
	}
	cr_assert(strstr(rkv_last_error(c), "ALL needs 3"), "%s",
		  rkv_last_error(c));
	cr_assert_lt(ms, 1500, "ALL took %ld ms to fail", ms);
	cr_assert_eq(rkv_put_ex(c, "k", 1, "v1", 2, &one, NULL), RKV_OK);
	cr_assert_eq(rkv_put(c, "k", 1, "v2", 2, NULL), RKV_OK, "QUORUM");
	rkv_value *v;
	cr_assert_eq(rkv_get_ex(c, "k", 1, &one, &v), RKV_OK);
	rkv_value_free(v);
	rc = rkv_get_ex(c, "k", 1, &all, &v);
	cr_assert_eq(rc, RKV_ERR_UNAVAILABLE);
	rkv_close(c);
	ring_free(r);
}

Test(repl, a_node_joins_and_one_is_decommissioned_under_load)
{
	start_cluster(5);
	/* Data to move first, then a load that runs through both changes. */
	rkv_client *c = h_client(&nodes[0]);
	rkv_batch *b = rkv_batch_new();
	char key[32];
	const int preload = 20000;
	for (int i = 0; i < preload; i++) {
		snprintf(key, sizeof(key), "pre-%d", i);
		rkv_batch_put(b, key, strlen(key), key, strlen(key));
	}
	cr_assert_eq(rkv_batch_exec(c, b), RKV_OK);
	for (int i = 0; i < preload; i++)
		cr_assert_eq(rkv_batch_status(b, (size_t)i), RKV_OK);
	rkv_batch_free(b);
	rkv_close(c);
	struct load l;
	pthread_t th;
	load_start(&l, &th, 2);
	usleep(1000000);

	/* Join. */
	int64_t t0 = h_now_ms();
	start_node(5);
	n_nodes = 6;
	char st[32] = "";
	while (h_ring_status(&nodes[5], st, sizeof(st)) == 0 &&
	       strcmp(st, "normal") != 0) {
		cr_assert_lt(h_now_ms() - t0, 120000, "still %s", st);
		usleep(100000);
	}
	long join_ms = (long)(h_now_ms() - t0);
	for (int i = 0; i < 6; i++)
		h_wait_owners(&nodes[i], 6, 0, 30000);

	/* Decommission node 2 while the load goes on. */
	t0 = h_now_ms();
	struct rk_request q = {.id = 1, .op = RK_OP_DECOMMISSION};
	int rc = h_request(&nodes[2], &q, 300000, NULL, NULL);
	cr_assert_eq(rc, 0, "decommission: %s", rk_strerror(rc));
	long decom_ms = (long)(h_now_ms() - t0);
	/* It stops by itself after leaving. */
	int status = 0;
	for (int i = 0; i < 100 && waitpid(nodes[2].pid, &status, WNOHANG) == 0; i++)
		usleep(100000);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		  "the decommissioned node did not stop cleanly");
	nodes[2].pid = 0;
	for (int i = 0; i < 6; i++)
		if (nodes[i].pid)
			h_wait_owners(&nodes[i], 5, 0, 30000);
	long acked = load_stop(&l, th);
	fprintf(stderr, "repl: join of a 6th node (%d preloaded keys) took %ld "
			"ms; decommission took %ld ms; %ld writes acknowledged "
			"meanwhile\n",
		preload, join_ms, decom_ms, acked);

	/* Afterwards every key is on exactly its owners: the load's and the
	 * preloaded ones. */
	long ms = check_placement(&l, acked, 1, 60000);
	struct load pre;
	memset(&pre, 0, sizeof(pre));
	pre.keys = calloc((size_t)preload, sizeof(*pre.keys));
	for (int i = 0; i < preload; i++)
		snprintf(pre.keys[i], sizeof(pre.keys[i]), "pre-%d", i);
	check_placement(&pre, preload, 1, 60000);
	fprintf(stderr, "repl: every key on exactly its owners %ld ms after "
			"the load stopped\n", ms);
	free(pre.keys);
	free(l.keys);
	free(l.via);
}

Test(repl, removing_a_dead_node_copies_its_ranges_again)
{
	start_cluster(5);
	rkv_client *c = h_client(&nodes[0]);
	rkv_batch *b = rkv_batch_new();
	struct load l;
	memset(&l, 0, sizeof(l));
	const int n = 5000;
	l.keys = calloc((size_t)n, sizeof(*l.keys));
	for (int i = 0; i < n; i++) {
		snprintf(l.keys[i], sizeof(l.keys[i]), "r-%d", i);
		rkv_batch_put(b, l.keys[i], strlen(l.keys[i]), l.keys[i],
			      strlen(l.keys[i]));
	}
	cr_assert_eq(rkv_batch_exec(c, b), RKV_OK);
	rkv_batch_free(b);
	rkv_close(c);
	cr_assert_eq(h_node_signal(&nodes[3], SIGKILL), 128 + SIGKILL);
	uint64_t dead = ids[3];
	/* Refused while gossip still thinks it alive, then accepted. */
	struct rk_request q = {.id = 1, .op = RK_OP_REMOVE_NODE,
			       .node_id = dead};
	int rc;
	int64_t t0 = h_now_ms();
	while ((rc = h_request(&nodes[0], &q, 300000, NULL, NULL)) ==
	       RK_EINVALID) {
		cr_assert_lt(h_now_ms() - t0, 30000);
		usleep(200000);
	}
	cr_assert_eq(rc, 0, "removenode: %s", rk_strerror(rc));
	for (int i = 0; i < 5; i++)
		if (nodes[i].pid)
			h_wait_owners(&nodes[i], 4, 0, 30000);
	long ms = check_placement(&l, n, 1, 60000);
	fprintf(stderr, "repl: removenode re-replicated %d keys; exact "
			"placement %ld ms later\n", n, ms);
	free(l.keys);
}

/* Nodes started at the same moment must not choose the same tokens (the
 * allocator splits the same ranges for both): they take turns, each
 * against the ring with the others' tokens, and the ring comes out as
 * even as joining one at a time makes it.  RF 1 so shares are primary
 * ranges: 256 random tokens per node would leave the largest of 4 some
 * 5% above the mean, a shared token set leaves one node with nothing. */
Test(repl, nodes_started_together_take_turns_choosing_tokens)
{
	static const char *const rf1[] = {
	    "--set", "cluster.replication_factor=1", "--set",
	    "cluster.join_delay=500ms", NULL};
	n_nodes = 4;
	for (int i = 0; i < n_nodes; i++) {
		h_node_init(&nodes[i], rf1);
		h_node_add_arg(&nodes[i], "--seeds");
		h_node_add_arg(&nodes[i], nodes[0].addr);
	}
	for (int i = 0; i < n_nodes; i++)
		cr_assert_eq(h_node_start(&nodes[i]), 0, "node %d", i);
	for (int i = 0; i < n_nodes; i++)
		h_wait_owners(&nodes[i], (size_t)n_nodes, 1, 30000);
	size_t rf;
	struct ring *r = ring_of(0, &rf);
	cr_assert_eq(rf, 1);
	cr_assert_eq(ring_member_count(r), (size_t)n_nodes);
	cr_assert_eq(ring_vnode_count(r), 256u * (size_t)n_nodes,
		     "tokens were shared: %zu vnodes", ring_vnode_count(r));
	double shares[4], max_mean;
	cr_assert_eq(ring_shares(r, 1, shares, &max_mean), 0);
	for (int i = 0; i < n_nodes; i++)
		fprintf(stderr, "repl: started together, share %d = %.4f\n", i,
			shares[i]);
	cr_assert_lt(max_mean, 1.02, "max/mean %.4f", max_mean);
	ring_free(r);
}
