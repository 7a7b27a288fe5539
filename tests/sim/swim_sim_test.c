/* swim_sim_test.c: SWIM in the simulated cluster, one scenario per test.
 *
 *   swim_sim_test NAME
 *
 * runs scenario NAME for RINGKV_SIM_SEEDS seeds (default: the scenario's
 * own count, chosen to keep the suite within seconds), starting at
 * rk_test_seed() (RINGKV_SEED, else the time; printed).  A failure prints
 * the seed that replays it:  RINGKV_SEED=<seed> RINGKV_SIM_SEEDS=1
 * RINGKV_SIM_LOG=debug build/tests/sim/swim_sim_test NAME
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "gossip_wire.h"
#include "rng.h"
#include "sim_swim.h"

#define MAXN 128

#define CHECK(cond, ...)                                                       \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr,                                        \
				"  check failed at %s:%d: %s: ", __FILE__,     \
				__LINE__, #cond);                              \
			fprintf(stderr, __VA_ARGS__);                          \
			fprintf(stderr, "\n");                                 \
			rc = 1;                                                \
			goto out;                                              \
		}                                                              \
	} while (0)

/* What the nodes told us, through their events. */
struct watch {
	int unhealthy[MAXN + 1];     /* killed, slowed, left: deaths expected */
	int suspected[MAXN + 1];     /* SUSPECT events about each node */
	int dead_about[MAXN + 1];    /* DEAD events about each node */
	int alive_about[MAXN + 1];   /* ALIVE events about each node */
	int removed_about[MAXN + 1]; /* REMOVED events about each node */
	uint64_t first_suspect[MAXN + 1]; /* time of the first SUSPECT */
	int false_deaths;		  /* DEAD about a healthy node */
	int suspect_events;		  /* all SUSPECT events */
	int alt_port;		 /* address_change: node 2's next port */
	char alt_addr[32];	 /* its address string */
	const char *alt_cluster; /* cluster: node 5's cluster name */
};

static void watch_event(void *ctx, struct sim *sim, int node,
			const struct swim_event *ev)
{
	struct watch *w = ctx;
	int subj = (int)ev->member->id;
	if (subj < 1 || subj > MAXN)
		return;
	switch (ev->type) {
	case SWIM_EV_SUSPECT:
		if (!w->suspected[subj])
			w->first_suspect[subj] = sim_now(sim);
		w->suspected[subj]++;
		w->suspect_events++;
		break;
	case SWIM_EV_DEAD:
		w->dead_about[subj]++;
		if (!w->unhealthy[subj]) {
			w->false_deaths++;
			fprintf(stderr,
				"  t=%" PRIu64
				" n%d declared healthy n%d dead\n",
				sim_now(sim), node, subj);
		}
		break;
	case SWIM_EV_ALIVE:
		w->alive_about[subj]++;
		break;
	case SWIM_EV_REMOVED:
		w->removed_about[subj]++;
		break;
	default:
		break;
	}
}

static void watch_configure(void *ctx, int node, struct swim_config *cfg)
{
	struct watch *w = ctx;
	if (node == 2 && w->alt_port) {
		snprintf(w->alt_addr, sizeof(w->alt_addr), "10.0.0.2:%d",
			 w->alt_port);
		cfg->gossip_addr = w->alt_addr;
	}
	if (node == 5 && w->alt_cluster)
		cfg->cluster = w->alt_cluster;
}

static void opts_init(struct sim_swim_opts *o, struct watch *w)
{
	memset(w, 0, sizeof(*w));
	sim_swim_opts_defaults(o);
	o->on_event = watch_event;
	o->configure = watch_configure;
	o->event_ctx = w;
	o->seeds[0] = 1;
	o->seeds[1] = 2;
	o->seeds[2] = 3;
	o->n_seeds = 3;
}

struct see {
	int subject;
	enum swim_state st;
};

static int pred_all_see(struct sim *sim, void *ctx)
{
	const struct see *s = ctx;
	return sim_swim_all_see(sim, s->subject, s->st);
}

/* A cluster of n nodes, booted at t = 0, run until every view is full. */
static int cluster(struct sim **out, int n, uint64_t seed,
		   struct sim_swim_opts *o, const struct sim_link *link)
{
	int rc = sim_swim_cluster(out, n, seed, o, link, 60000);
	if (rc)
		fprintf(stderr, "  cluster of %d: %s\n", n, rk_strerror(rc));
	return rc;
}

static void swim_totals(struct sim *sim, struct swim_stats *t)
{
	memset(t, 0, sizeof(*t));
	for (int i = 1; i <= sim_size(sim); i++) {
		struct swim *s = sim_swim(sim, i);
		struct swim_stats st;
		if (!s)
			continue;
		swim_stats(s, &st);
		t->suspicions += st.suspicions;
		t->refutes += st.refutes;
		t->dead_declared += st.dead_declared;
		t->drop_cluster += st.drop_cluster;
		t->drop_malformed += st.drop_malformed;
		t->probes += st.probes;
		t->probe_failures += st.probe_failures;
	}
}

/* ---- scenarios ------------------------------------------------------- */

/* Once somebody suspects a dead member, everybody has it dead within
 * this: the minimum suspicion (K confirmers come within a period or two)
 * plus dissemination.  6 s at N = 100. */
#define AFTER_FIRST_SUSPICION_MS 7000u

/* n nodes; kill one; every survivor has it dead within limit_ms.
 *
 * One term is not ours to bound: the time until any survivor first probes
 * the victim.  Round-robin bounds it per prober, but across N-1 probers it
 * is about exponential with a mean of one period, so once in a few
 * thousand kills nobody probes the victim for 8-9 s.  Such a run passes if
 * everything from the first suspicion on took at most
 * AFTER_FIRST_SUSPICION_MS, and says so. */
static int detect(uint64_t seed, int n, uint64_t limit_ms)
{
	struct sim_swim_opts o;
	struct watch w;
	struct sim *sim = NULL;
	int rc = 0;
	opts_init(&o, &w);
	CHECK(cluster(&sim, n, seed, &o, NULL) == 0, "setup");
	int victim = 1 + (int)(sim_rand(sim) % (uint64_t)n);
	w.unhealthy[victim] = 1;
	uint64_t t0 = sim_now(sim);
	sim_kill(sim, victim);
	struct see see = {victim, SWIM_DEAD};
	int ok = sim_run_until(sim, pred_all_see, &see, limit_ms + 5000);
	uint64_t took = sim_now(sim) - t0;
	uint64_t first = w.suspected[victim] ? w.first_suspect[victim] - t0 : 0;
	printf("  seed=%" PRIu64 " n=%d: n%d first suspected after %" PRIu64
	       " ms, dead everywhere after %" PRIu64 " ms\n",
	       seed, n, victim, first, took);
	CHECK(ok == 1, "n%d not dead everywhere", victim);
	if (took > limit_ms && took - first <= AFTER_FIRST_SUSPICION_MS &&
	    first > limit_ms - AFTER_FIRST_SUSPICION_MS)
		printf("  (over %" PRIu64 " ms only because nobody probed n%d "
		       "for %" PRIu64 " ms)\n",
		       limit_ms, victim, first);
	else
		CHECK(took <= limit_ms,
		      "n%d not dead everywhere in %" PRIu64 " ms", victim,
		      limit_ms);
	CHECK(w.false_deaths == 0, "%d false deaths", w.false_deaths);
out:
	sim_free(sim);
	return rc;
}

static int t_detect5(uint64_t seed)
{
	return detect(seed, 5, 10000);
}

static int t_detect100(uint64_t seed)
{
	return detect(seed, 100, 15000);
}

/* n nodes at 5% loss for 1,000 s: nobody healthy is declared dead.  With
 * slow, node 1 has every message delayed by 2 s (CPU-starved). */
static int no_false_deaths(uint64_t seed, int n, int slow)
{
	struct sim_swim_opts o;
	struct watch w;
	struct sim *sim = NULL;
	struct sim_link l = {
	    .drop = 0.05, .delay_min_ms = 1, .delay_max_ms = 5};
	int rc = 0;
	opts_init(&o, &w);
	CHECK(cluster(&sim, n, seed, &o, &l) == 0, "setup");
	uint64_t t0 = sim_now(sim);
	if (slow) {
		w.unhealthy[1] = 1;
		sim_set_slow(sim, 1, 2000);
	}
	CHECK(sim_run_for(sim, 1000 * 1000) == 0, "run");
	struct swim_stats t;
	swim_totals(sim, &t);
	printf("  seed=%" PRIu64 " n=%d loss=5%%%s: %" PRIu64
	       " s, false deaths %d, suspect events %d, own suspicions %" PRIu64
	       ", refutes %" PRIu64 ", slow node declared dead %d times\n",
	       seed, n, slow ? " slow n1 +2s" : "", (sim_now(sim) - t0) / 1000,
	       w.false_deaths, w.suspect_events, t.suspicions, t.refutes,
	       slow ? w.dead_about[1] : 0);
	CHECK(w.false_deaths == 0, "%d healthy members declared dead",
	      w.false_deaths);
out:
	sim_free(sim);
	return rc;
}

static int t_false5(uint64_t seed)
{
	return no_false_deaths(seed, 5, 0);
}

static int t_false100(uint64_t seed)
{
	return no_false_deaths(seed, 100, 0);
}

static int t_slow5(uint64_t seed)
{
	return no_false_deaths(seed, 5, 1);
}

static int pred_suspected2(struct sim *sim, void *ctx)
{
	(void)sim;
	return ((struct watch *)ctx)->suspected[2] > 0;
}

/* Node 2 is cut off until someone suspects it; after the heal it refutes
 * with a higher incarnation and is never declared dead. */
static int t_refute(uint64_t seed)
{
	struct sim_swim_opts o;
	struct watch w;
	struct sim *sim = NULL;
	int rc = 0;
	opts_init(&o, &w);
	CHECK(cluster(&sim, 5, seed, &o, NULL) == 0, "setup");
	uint64_t inc0 = swim_incarnation(sim_swim(sim, 2));
	sim_set_group(sim, 2, 1);
	CHECK(sim_run_until(sim, pred_suspected2, &w, 30000) == 1,
	      "nobody suspected isolated n2");
	sim_heal_all(sim);
	struct see see = {2, SWIM_ALIVE};
	CHECK(sim_run_until(sim, pred_all_see, &see, 10000) == 1,
	      "n2 not alive everywhere after the heal");
	CHECK(sim_run_for(sim, 30000) == 0, "run");
	uint64_t inc1 = swim_incarnation(sim_swim(sim, 2));
	CHECK(inc1 > inc0, "n2 did not refute (inc %" PRIu64 " -> %" PRIu64 ")",
	      inc0, inc1);
	CHECK(sim_swim_converged(sim), "views differ");
	CHECK(w.dead_about[2] == 0, "n2 declared dead %d times",
	      w.dead_about[2]);
	CHECK(w.false_deaths == 0, "%d false deaths", w.false_deaths);
out:
	sim_free(sim);
	return rc;
}

static int pred_leave_done(struct sim *sim, void *ctx)
{
	struct swim *s = sim_swim(sim, *(int *)ctx);
	return s && swim_leave_done(s);
}

/* Sends node to a PING from node from carrying one alive record. */
static int inject_alive(struct sim *sim, int from, int to, uint64_t id,
			uint64_t inc)
{
	char fa[32], ua[32];
	sim_swim_addr(from, fa, sizeof(fa));
	sim_swim_addr((int)id, ua, sizeof(ua));
	struct swim_update u = {.id = id,
				.incarnation = inc,
				.state = SWIM_ALIVE,
				.gossip_addr = ua,
				.peer_addr = "",
				.client_addr = ""};
	struct swim_msg m = {.type = SWIM_MSG_PING,
			     .cluster = "sim",
			     .from_id = (uint64_t)from,
			     .from_addr = fa,
			     .seq = 1,
			     .target_addr = "",
			     .updates = &u,
			     .n_updates = 1};
	struct rk_buf b;
	rk_buf_init(&b);
	int rc = gossip_wire_encode(&m, &b);
	if (!rc)
		rc = sim_send(sim, from, to, SIM_SWIM_UDP, 1, rk_buf_rptr(&b),
			      rk_buf_readable(&b));
	rk_buf_destroy(&b);
	return rc;
}

/* Node 3 leaves: everyone reports it LEFT, never DEAD, and a stale alive
 * record does not bring it back. */
static int t_leave(uint64_t seed)
{
	struct sim_swim_opts o;
	struct watch w;
	struct sim *sim = NULL;
	int rc = 0, leaver = 3;
	opts_init(&o, &w);
	CHECK(cluster(&sim, 5, seed, &o, NULL) == 0, "setup");
	uint64_t inc = swim_incarnation(sim_swim(sim, leaver));
	CHECK(swim_leave(sim_swim(sim, leaver)) == 0, "leave");
	sim_swim_poke(sim, leaver);
	CHECK(sim_run_until(sim, pred_leave_done, &leaver, 10000) == 1,
	      "leave not done in 10 s");
	sim_kill(sim, leaver);
	struct see see = {leaver, SWIM_LEFT};
	CHECK(sim_run_until(sim, pred_all_see, &see, 5000) == 1,
	      "n3 not left everywhere");
	CHECK(sim_run_for(sim, 60000) == 0, "run");
	CHECK(sim_swim_all_see(sim, leaver, SWIM_LEFT), "n3 not left");
	for (int i = 1; i <= 5; i++)
		if (i != leaver)
			CHECK(inject_alive(sim, i == 1 ? 2 : 1, i,
					   (uint64_t)leaver, inc) == 0,
			      "inject");
	CHECK(sim_run_for(sim, 10000) == 0, "run");
	CHECK(sim_swim_all_see(sim, leaver, SWIM_LEFT),
	      "stale alive revived n3");
	CHECK(w.dead_about[leaver] == 0, "n3 reported dead %d times",
	      w.dead_about[leaver]);
	CHECK(w.false_deaths == 0, "%d false deaths", w.false_deaths);
out:
	sim_free(sim);
	return rc;
}

/* Every up node has forgotten node 4 (no tombstone left). */
static int pred_forgotten4(struct sim *sim, void *ctx)
{
	(void)ctx;
	for (int i = 1; i <= sim_size(sim); i++)
		if (i != 4 && sim_is_up(sim, i) &&
		    sim_swim_state(sim, i, 4) != -1)
			return 0;
	return 1;
}

/* Tombstones expire: with 20 s retention, a dead member is forgotten by
 * everyone within 20 s + one sweep (5 s). */
static int t_tombstone(uint64_t seed)
{
	struct sim_swim_opts o;
	struct watch w;
	struct sim *sim = NULL;
	int rc = 0;
	opts_init(&o, &w);
	o.cfg.tombstone_ms = 20000;
	CHECK(cluster(&sim, 5, seed, &o, NULL) == 0, "setup");
	w.unhealthy[4] = 1;
	sim_kill(sim, 4);
	struct see see = {4, SWIM_DEAD};
	CHECK(sim_run_until(sim, pred_all_see, &see, 20000) == 1,
	      "n4 not dead");
	CHECK(sim_run_for(sim, 15000) == 0, "run");
	CHECK(sim_swim_all_see(sim, 4, SWIM_DEAD), "tombstone gone early");
	CHECK(sim_run_until(sim, pred_forgotten4, NULL, 15000) == 1,
	      "tombstone of n4 not expired");
	CHECK(w.removed_about[4] == 4, "%d REMOVED events", w.removed_about[4]);
	CHECK(sim_run_for(sim, 30000) == 0, "run");
	CHECK(pred_forgotten4(sim, NULL), "n4 came back");
out:
	sim_free(sim);
	return rc;
}

/* A killed node, declared dead, restarts: alive everywhere again with a
 * higher incarnation (persisted or, without persistence, refuted). */
static int restart(uint64_t seed, int persist)
{
	struct sim_swim_opts o;
	struct watch w;
	struct sim *sim = NULL;
	int rc = 0, v = 2;
	opts_init(&o, &w);
	o.persist = persist;
	CHECK(cluster(&sim, 5, seed, &o, NULL) == 0, "setup");
	w.unhealthy[v] = 1;
	sim_kill(sim, v);
	struct see dead = {v, SWIM_DEAD};
	CHECK(sim_run_until(sim, pred_all_see, &dead, 20000) == 1,
	      "n2 not dead");
	struct swim_member m;
	CHECK(swim_member_get(sim_swim(sim, 1), (uint64_t)v, &m) == 0, "get");
	uint64_t old_inc = m.incarnation;
	uint64_t t0 = sim_now(sim);
	CHECK(sim_revive(sim, v) == 0, "revive");
	if (persist)
		CHECK(swim_incarnation(sim_swim(sim, v)) > old_inc,
		      "restarted at inc %" PRIu64 " <= %" PRIu64,
		      swim_incarnation(sim_swim(sim, v)), old_inc);
	struct see alive = {v, SWIM_ALIVE};
	CHECK(sim_run_until(sim, pred_all_see, &alive, 10000) == 1,
	      "n2 not back");
	printf("  seed=%" PRIu64 " persist=%d: n2 alive everywhere %" PRIu64
	       " ms after restart, inc %" PRIu64 " -> %" PRIu64 "\n",
	       seed, persist, sim_now(sim) - t0, old_inc,
	       swim_incarnation(sim_swim(sim, v)));
	CHECK(swim_member_get(sim_swim(sim, 1), (uint64_t)v, &m) == 0, "get");
	CHECK(m.incarnation > old_inc, "inc did not rise");
	CHECK(w.alive_about[v] >= 4, "%d ALIVE events", w.alive_about[v]);
	CHECK(sim_run_until(sim, sim_swim_pred_converged, NULL, 10000) == 1,
	      "views differ");
out:
	sim_free(sim);
	return rc;
}

static int t_restart(uint64_t seed)
{
	return restart(seed, 1);
}

static int t_restart_nopersist(uint64_t seed)
{
	return restart(seed, 0);
}

struct addr_see {
	int node;
	const char *addr;
};

static int pred_addr(struct sim *sim, void *ctx)
{
	const struct addr_see *a = ctx;
	for (int i = 1; i <= sim_size(sim); i++) {
		struct swim_member m;
		if (i == a->node || !sim_swim(sim, i))
			continue;
		if (swim_member_get(sim_swim(sim, i), (uint64_t)a->node, &m) ||
		    m.state != SWIM_ALIVE || strcmp(m.gossip_addr, a->addr))
			return 0;
	}
	return 1;
}

/* Node 2 restarts on another port: same id, new address everywhere. */
static int t_address_change(uint64_t seed)
{
	struct sim_swim_opts o;
	struct watch w;
	struct sim *sim = NULL;
	int rc = 0;
	opts_init(&o, &w);
	CHECK(cluster(&sim, 5, seed, &o, NULL) == 0, "setup");
	sim_kill(sim, 2);
	CHECK(sim_run_for(sim, 500) == 0, "run");
	w.alt_port = 7999;
	CHECK(sim_revive(sim, 2) == 0, "revive");
	struct addr_see a = {2, "10.0.0.2:7999"};
	CHECK(sim_run_until(sim, pred_addr, &a, 10000) == 1,
	      "new address of n2 not everywhere");
	CHECK(sim_swim_converged(sim), "views differ");
	for (int i = 1; i <= 5; i++)
		CHECK(swim_member_count(sim_swim(sim, i)) == 5,
		      "n%d has %zu members", i,
		      swim_member_count(sim_swim(sim, i)));
out:
	sim_free(sim);
	return rc;
}

static int pred_dead_both_sides(struct sim *sim, void *ctx)
{
	(void)ctx;
	return sim_swim_state(sim, 1, 3) == SWIM_DEAD &&
	       sim_swim_state(sim, 3, 1) == SWIM_DEAD;
}

/* {1,2} | {3,4,5} for 30 s, then heal: views re-merge within 10 s. */
static int t_partition(uint64_t seed)
{
	struct sim_swim_opts o;
	struct watch w;
	struct sim *sim = NULL;
	int rc = 0;
	const int side[] = {1, 2};
	opts_init(&o, &w);
	CHECK(cluster(&sim, 5, seed, &o, NULL) == 0, "setup");
	for (int i = 1; i <= 5; i++)
		w.unhealthy[i] = 1; /* deaths across the cut are right */
	sim_partition_sets(sim, side, 2);
	CHECK(sim_run_for(sim, 30000) == 0, "run");
	int buried = pred_dead_both_sides(sim, NULL);
	sim_heal_all(sim);
	uint64_t t0 = sim_now(sim);
	int ok = sim_run_until(sim, sim_swim_pred_converged, NULL, 30000);
	printf("  seed=%" PRIu64 ": sides buried each other: %s; views "
	       "re-merged %" PRIu64 " ms after heal\n",
	       seed, buried ? "yes" : "no", sim_now(sim) - t0);
	CHECK(ok == 1 && sim_now(sim) - t0 <= 10000,
	      "views not re-merged within 10 s");
out:
	sim_free(sim);
	return rc;
}

static int pred_all_joined(struct sim *sim, void *ctx)
{
	(void)ctx;
	for (int i = 1; i <= sim_size(sim); i++)
		if (!sim_swim(sim, i) || !swim_joined(sim_swim(sim, i)))
			return 0;
	return sim_swim_converged(sim);
}

/* Nodes 2..5 start while the seed (node 1) is down; they retry with
 * backoff and join once it is up. */
static int t_join_backoff(uint64_t seed)
{
	struct sim_swim_opts o;
	struct watch w;
	struct sim *sim = NULL;
	struct sim_config c;
	int rc = 0;
	opts_init(&o, &w);
	o.seeds[0] = 1;
	o.n_seeds = 1;
	sim_config_defaults(&c);
	c.n_nodes = 5;
	c.seed = seed;
	c.program = &sim_swim_program;
	c.program_ctx = &o;
	c.boot_all = 0;
	CHECK(sim_new(&c, &sim) == 0, "sim_new");
	for (int i = 2; i <= 5; i++)
		CHECK(sim_revive(sim, i) == 0, "boot");
	CHECK(sim_run_for(sim, 12000) == 0, "run");
	for (int i = 2; i <= 5; i++)
		CHECK(!swim_joined(sim_swim(sim, i)), "n%d joined nobody", i);
	CHECK(sim_revive(sim, 1) == 0, "boot seed");
	uint64_t t0 = sim_now(sim);
	CHECK(sim_run_until(sim, pred_all_joined, NULL, 40000) == 1,
	      "not joined 40 s after the seed came up");
	printf("  seed=%" PRIu64 ": all joined %" PRIu64
	       " ms after the seed came up\n",
	       seed, sim_now(sim) - t0);
out:
	sim_free(sim);
	return rc;
}

/* Every node lists every node (itself included) as a seed; all start at
 * once and converge. */
static int t_seeds_self(uint64_t seed)
{
	struct sim_swim_opts o;
	struct watch w;
	struct sim *sim = NULL;
	int rc = 0;
	opts_init(&o, &w);
	for (int i = 0; i < 5; i++)
		o.seeds[i] = i + 1;
	o.n_seeds = 5;
	CHECK(cluster(&sim, 5, seed, &o, NULL) == 0, "setup");
	CHECK(sim_now(sim) <= 10000, "converged only at %" PRIu64 " ms",
	      sim_now(sim));
	for (int i = 1; i <= 5; i++)
		CHECK(swim_joined(sim_swim(sim, i)), "n%d not joined", i);
out:
	sim_free(sim);
	return rc;
}

static int pred_four(struct sim *sim, void *ctx)
{
	(void)ctx;
	for (int i = 1; i <= 4; i++)
		for (int j = 1; j <= 4; j++)
			if (i != j && sim_swim_state(sim, i, j) != SWIM_ALIVE)
				return 0;
	return 1;
}

/* Node 5 belongs to cluster "other": its packets are dropped and counted,
 * it never appears in the others' views. */
static int t_cluster(uint64_t seed)
{
	struct sim_swim_opts o;
	struct watch w;
	struct sim *sim = NULL;
	struct sim_config c;
	int rc = 0;
	opts_init(&o, &w);
	w.alt_cluster = "other";
	sim_config_defaults(&c);
	c.n_nodes = 5;
	c.seed = seed;
	c.program = &sim_swim_program;
	c.program_ctx = &o;
	CHECK(sim_new(&c, &sim) == 0, "sim_new");
	CHECK(sim_run_until(sim, pred_four, NULL, 30000) == 1,
	      "nodes 1-4 did not converge");
	CHECK(sim_run_for(sim, 30000) == 0, "run");
	uint64_t dropped = 0;
	for (int i = 1; i <= 4; i++) {
		struct swim_stats st;
		swim_stats(sim_swim(sim, i), &st);
		dropped += st.drop_cluster;
		CHECK(sim_swim_state(sim, i, 5) == -1, "n%d knows n5", i);
		CHECK(swim_member_count(sim_swim(sim, i)) == 4,
		      "n%d has %zu members", i,
		      swim_member_count(sim_swim(sim, i)));
	}
	CHECK(swim_member_count(sim_swim(sim, 5)) == 1, "n5 learned members");
	CHECK(dropped > 0, "nothing counted as foreign");
	printf("  seed=%" PRIu64 ": %" PRIu64
	       " foreign packets dropped by nodes 1-4\n",
	       seed, dropped);
out:
	sim_free(sim);
	return rc;
}

/* Random bytes and truncated packets thrown at every node, on the UDP and
 * push-pull channels: rejected and counted, the cluster unharmed. */
static int t_garbage(uint64_t seed)
{
	struct sim_swim_opts o;
	struct watch w;
	struct sim *sim = NULL;
	struct rk_buf b;
	uint8_t junk[2048];
	int rc = 0;
	rk_buf_init(&b);
	opts_init(&o, &w);
	CHECK(cluster(&sim, 5, seed, &o, NULL) == 0, "setup");
	char fa[32], ua[32];
	sim_swim_addr(4, fa, sizeof(fa));
	sim_swim_addr(3, ua, sizeof(ua));
	static const uint64_t by4 = 4;
	struct swim_update u[2] = {{.id = 3,
				    .incarnation = 0,
				    .state = SWIM_ALIVE,
				    .gossip_addr = ua,
				    .peer_addr = "",
				    .client_addr = ""},
				   {.id = 2,
				    .incarnation = 0,
				    .state = SWIM_SUSPECT,
				    .suspecters = &by4,
				    .n_suspecters = 1,
				    .gossip_addr = "",
				    .peer_addr = "",
				    .client_addr = ""}};
	struct swim_msg m = {.type = SWIM_MSG_PING,
			     .cluster = "sim",
			     .from_id = 4,
			     .from_addr = fa,
			     .seq = 77,
			     .target_addr = "",
			     .updates = u,
			     .n_updates = 2};
	CHECK(gossip_wire_encode(&m, &b) == 0, "encode");
	for (int k = 0; k < 3000; k++) {
		size_t n;
		if (k % 2) {
			n = (size_t)(sim_rand(sim) % sizeof(junk));
			for (size_t i = 0; i < n; i++)
				junk[i] = (uint8_t)sim_rand(sim);
		} else {
			n = (size_t)(sim_rand(sim) % b.len);
			memcpy(junk, b.data, n);
		}
		int to = 1 + (int)(sim_rand(sim) % 5);
		int from = to == 1 ? 2 : 1;
		int chan = (int)(sim_rand(sim) % 3);
		CHECK(sim_send(sim, from, to, chan, 1, junk, n) == 0, "send");
		if (k % 100 == 0)
			CHECK(sim_run_for(sim, 100) == 0, "run");
	}
	CHECK(sim_run_for(sim, 10000) == 0, "run");
	CHECK(sim_swim_converged(sim), "cluster harmed");
	struct swim_stats t;
	swim_totals(sim, &t);
	CHECK(t.drop_malformed > 1000, "only %" PRIu64 " counted malformed",
	      t.drop_malformed);
	CHECK(w.false_deaths == 0, "%d false deaths", w.false_deaths);
out:
	rk_buf_destroy(&b);
	sim_free(sim);
	return rc;
}

/* Safety, checked after every event of a run: no view holds an
 * incarnation of a member above the member's own (its last persisted one
 * while it is down): only a node raises its own incarnation.  And within
 * one life of an observer, a member's incarnation never goes down. */
struct incs {
	uint32_t life[MAXN + 1];	   /* observer's boot count */
	uint64_t seen[MAXN + 1][MAXN + 1]; /* highest inc seen, per life */
};

static int check_incarnations(struct sim *sim, void *ctx)
{
	struct incs *v = ctx;
	int n = sim_size(sim);
	for (int i = 1; i <= n; i++) {
		struct swim *s = sim_swim(sim, i);
		if (!s)
			continue;
		if (v->life[i] != sim_boots(sim, i)) {
			v->life[i] = sim_boots(sim, i);
			memset(v->seen[i], 0, sizeof(v->seen[i]));
		}
		for (int j = 1; j <= n; j++) {
			struct swim_member m;
			if (swim_member_get(s, (uint64_t)j, &m))
				continue;
			struct swim *o = sim_swim(sim, j);
			struct rk_buf *d = sim_disk(sim, j);
			uint64_t own = o ? swim_incarnation(o)
					 : rk_get_le64(rk_buf_rptr(d));
			if (m.incarnation > own) {
				fprintf(stderr,
					"  t=%" PRIu64
					" n%d holds n%d inc=%" PRIu64
					" above its own %" PRIu64 "\n",
					sim_now(sim), i, j, m.incarnation, own);
				return -1;
			}
			if (m.incarnation < v->seen[i][j]) {
				fprintf(stderr,
					"  t=%" PRIu64
					" n%d: inc of n%d fell %" PRIu64
					" -> %" PRIu64 "\n",
					sim_now(sim), i, j, v->seen[i][j],
					m.incarnation);
				return -2;
			}
			v->seen[i][j] = m.incarnation;
		}
	}
	return 0;
}

/* Runs a busy scenario (loss, duplication, reordering, kill, partition,
 * revive) under check_incarnations and returns its trace hash, or 0 when
 * the check failed. */
static uint64_t busy_run(uint64_t seed, struct swim_stats *t)
{
	static struct incs incs;
	struct sim_swim_opts o;
	struct watch w;
	struct sim *sim = NULL;
	struct sim_link l = {.drop = 0.1,
			     .dup = 0.05,
			     .reorder = 0.1,
			     .reorder_ms = 50,
			     .delay_min_ms = 1,
			     .delay_max_ms = 20};
	const int side[] = {4, 5};
	uint64_t h = 0;
	opts_init(&o, &w);
	for (int i = 1; i <= 6; i++)
		w.unhealthy[i] = 1; /* kills and partitions: deaths are due */
	memset(&incs, 0, sizeof(incs));
	if (cluster(&sim, 6, seed, &o, &l) == 0) {
		int bad = 0;
		sim_set_invariant(sim, check_incarnations, &incs);
		sim_kill(sim, 2);
		bad |= sim_run_for(sim, 10000);
		sim_partition_sets(sim, side, 2);
		bad |= sim_run_for(sim, 20000);
		sim_heal_all(sim);
		sim_revive(sim, 2);
		bad |= sim_run_for(sim, 30000);
		h = bad ? 0 : sim_trace_hash(sim);
		swim_totals(sim, t);
	}
	sim_free(sim);
	return h;
}

/* One seed, two runs: the same trace, byte for byte (and incarnations
 * safe throughout, see check_incarnations). */
static int t_replay(uint64_t seed)
{
	struct swim_stats a, b, c;
	int rc = 0;
	uint64_t h1 = busy_run(seed, &a), h2 = busy_run(seed, &b);
	uint64_t h3 = busy_run(seed + 1000003, &c);
	printf("  seed=%" PRIu64 ": trace %016" PRIx64 " %016" PRIx64
	       ", other seed %016" PRIx64 "\n",
	       seed, h1, h2, h3);
	CHECK(h1 != 0 && h3 != 0, "incarnation check failed");
	CHECK(h1 == h2, "same seed, different traces");
	CHECK(memcmp(&a, &b, sizeof(a)) == 0, "same seed, different stats");
	CHECK(h3 != h1, "another seed, same trace");
out:
	return rc;
}

/* ---- driver ---------------------------------------------------------- */

static const struct {
	const char *name;
	int (*fn)(uint64_t seed);
	long seeds; /* default seed count */
} tests[] = {
    {"detect5", t_detect5, 50},
    {"detect100", t_detect100, 5},
    {"false5", t_false5, 10},
    {"false100", t_false100, 2},
    {"slow5", t_slow5, 5},
    {"refute", t_refute, 20},
    {"leave", t_leave, 20},
    {"tombstone", t_tombstone, 20},
    {"restart", t_restart, 20},
    {"restart_nopersist", t_restart_nopersist, 20},
    {"address_change", t_address_change, 20},
    {"partition", t_partition, 20},
    {"join_backoff", t_join_backoff, 20},
    {"seeds_self", t_seeds_self, 20},
    {"cluster", t_cluster, 20},
    {"garbage", t_garbage, 10},
    {"replay", t_replay, 10},
};

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s NAME\n", argv[0]);
		return 2;
	}
	for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
		if (strcmp(argv[1], tests[i].name) != 0)
			continue;
		const char *env = getenv("RINGKV_SIM_SEEDS");
		const char *fixed = getenv("RINGKV_SEED");
		long n = env ? strtol(env, NULL, 10)
			     : (fixed && *fixed ? 1 : tests[i].seeds);
		if (n < 1)
			n = 1;
		uint64_t base = rk_test_seed(argv[1]);
		for (long k = 0; k < n; k++) {
			uint64_t seed = base + (uint64_t)k;
			if (tests[i].fn(seed)) {
				fprintf(stderr,
					"FAIL %s seed=%" PRIu64
					" (replay: RINGKV_SEED=%" PRIu64
					" RINGKV_SIM_SEEDS=1 "
					"RINGKV_SIM_LOG=debug)\n",
					argv[1], seed, seed);
				return 1;
			}
		}
		printf("ok %s: %ld seed(s) from %" PRIu64 "\n", argv[1], n,
		       base);
		return 0;
	}
	fprintf(stderr, "unknown test %s\n", argv[1]);
	return 2;
}
