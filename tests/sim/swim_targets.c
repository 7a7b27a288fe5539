/* swim_targets.c: measures SWIM against the targets of issue 4 in the
 * simulator and prints the figures.  Not a test: it takes a minute or more.
 *
 *   swim_targets [quick] [detect|false|slow|dissem|partition]...
 *
 * Seeds derive from rk_test_seed() (RINGKV_SEED replays a whole run).
 * Default timings throughout; the network delays datagrams 1-5 ms.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "rng.h"
#include "sim_swim.h"

/* Events the targets need. */
struct tally {
	int healthy_limit;	/* nodes > this are not "healthy" */
	int unhealthy;		/* one more node deaths are expected for */
	int false_deaths;	/* DEAD about a healthy node */
	int suspect_events;	/* all SUSPECT events */
	int dead_unhealthy;	/* DEAD events about the unhealthy node */
	int watch;		/* node whose JOINED we count */
	int joined_seen;	/* observers that saw watch join */
	uint64_t first_suspect; /* first SUSPECT about unhealthy, or 0 */
	uint64_t first_dead;	/* first DEAD about unhealthy, or 0 */
};

static void tally_event(void *ctx, struct sim *sim, int node,
			const struct swim_event *ev)
{
	struct tally *t = ctx;
	int subj = (int)ev->member->id;
	(void)node;
	if (ev->type == SWIM_EV_SUSPECT) {
		t->suspect_events++;
		if (subj == t->unhealthy && !t->first_suspect)
			t->first_suspect = sim_now(sim);
	}
	if (ev->type == SWIM_EV_DEAD) {
		if (subj == t->unhealthy && !t->first_dead)
			t->first_dead = sim_now(sim);
		if (subj == t->unhealthy)
			t->dead_unhealthy++;
		else
			t->false_deaths++;
	}
	if (ev->type == SWIM_EV_JOINED && subj == t->watch)
		t->joined_seen++;
}

static void opts(struct sim_swim_opts *o, struct tally *t)
{
	memset(t, 0, sizeof(*t));
	sim_swim_opts_defaults(o);
	o->on_event = tally_event;
	o->event_ctx = t;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Median, 90th percentile and max of v[0, n) (sorted in place). */
static void dist(const char *what, uint64_t *v, int n, double unit)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_u64);
	printf("  %-44s n=%-3d median %6.2f  p90 %6.2f  max %6.2f\n", what, n,
	       (double)v[n / 2] / unit, (double)v[(n * 9) / 10] / unit,
	       (double)v[n - 1] / unit);
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

static void detection(uint64_t seed, int n, int trials)
{
	uint64_t *v = calloc((size_t)trials, sizeof(*v));
	uint64_t *fs = calloc((size_t)trials, sizeof(*fs));
	uint64_t *fd = calloc((size_t)trials, sizeof(*fd));
	int got = 0, false_deaths = 0;
	for (int k = 0; k < trials; k++) {
		struct sim_swim_opts o;
		struct tally t;
		struct sim *sim;
		opts(&o, &t);
		if (sim_swim_cluster(&sim, n, seed + (uint64_t)k, &o, NULL,
				     120000) == 0) {
			int victim = 1 + (int)(sim_rand(sim) % (uint64_t)n);
			t.unhealthy = victim;
			uint64_t t0 = sim_now(sim);
			sim_kill(sim, victim);
			struct see s = {victim, SWIM_DEAD};
			if (sim_run_until(sim, pred_all_see, &s, 60000) == 1) {
				fs[got] = t.first_suspect - t0;
				fd[got] = t.first_dead - t0;
				v[got++] = sim_now(sim) - t0;
			}
			false_deaths += t.false_deaths;
		}
		sim_free(sim);
	}
	char what[96];
	if (got) {
		snprintf(what, sizeof(what),
			 "%d nodes: kill -> first suspicion, s", n);
		dist(what, fs, got, 1000.0);
		snprintf(what, sizeof(what), "%d nodes: kill -> first dead, s",
			 n);
		dist(what, fd, got, 1000.0);
		snprintf(what, sizeof(what),
			 "%d nodes: kill -> dead everywhere, s", n);
		dist(what, v, got, 1000.0);
	}
	if (got != trials || false_deaths)
		printf("  !! %d of %d kills detected within 60 s, %d false "
		       "deaths\n",
		       got, trials, false_deaths);
	free(v);
	free(fs);
	free(fd);
}

/* n nodes, 5% loss, 1,000 s; slow: node n delayed 2 s each way. */
static void false_deaths(uint64_t seed, int n, int slow, int lifeguard)
{
	struct sim_swim_opts o;
	struct tally t;
	struct sim *sim;
	struct sim_link l = {
	    .drop = 0.05, .delay_min_ms = 1, .delay_max_ms = 5};
	opts(&o, &t);
	if (!lifeguard) {
		/* No local health (fixed probe rate and timeouts) and no
		 * dogpile (every suspicion lasts the minimum); nacks and the
		 * buddy system stay. */
		o.cfg.max_lhm = 0;
		o.cfg.suspicion_k = 0;
	}
	if (sim_swim_cluster(&sim, n, seed, &o, &l, 120000)) {
		printf("  !! no convergence\n");
		sim_free(sim);
		return;
	}
	t.suspect_events = 0;
	uint64_t susp = 0, refutes = 0;
	if (slow) {
		t.unhealthy = n;
		sim_set_slow(sim, n, 2000);
	}
	sim_run_for(sim, 1000 * 1000);
	for (int i = 1; i <= n; i++) {
		struct swim_stats st;
		swim_stats(sim_swim(sim, i), &st);
		susp += st.suspicions;
		refutes += st.refutes;
	}
	printf("  %3d nodes, 5%% loss, 1000 s%-18s%s: healthy declared dead "
	       "%d; suspicions raised %" PRIu64 " (suspect events %d, "
	       "refutes %" PRIu64 ")",
	       n, slow ? ", one node +2 s" : "", lifeguard ? "" : " NO LHM/K",
	       t.false_deaths, susp, t.suspect_events, refutes);
	if (slow)
		printf("; slow node declared dead %d times", t.dead_unhealthy);
	printf("\n");
	sim_free(sim);
}

static int pred_joined(struct sim *sim, void *ctx)
{
	const struct tally *t = ctx;
	return t->joined_seen >= sim_size(sim) - 1;
}

/* N-1 converged nodes; node N joins through node 1.  Prints periods until
 * everyone has it, and the steady per-member load.  fanout 0: piggy-back
 * only (no GOSSIP pushes). */
static void dissemination(uint64_t seed, int n, int trials, uint32_t fanout)
{
	uint64_t v[16];
	int got = 0;
	double msgs = 0, bytes = 0, setup_s = 0;
	for (int k = 0; k < trials && k < 16; k++) {
		struct sim_swim_opts o;
		struct tally t;
		struct sim *sim;
		struct sim_config c;
		opts(&o, &t);
		o.cfg.gossip_fanout = fanout;
		t.watch = n;
		sim_config_defaults(&c);
		c.n_nodes = n;
		c.seed = seed + (uint64_t)k;
		c.program = &sim_swim_program;
		c.program_ctx = &o;
		c.boot_all = 0;
		if (sim_new(&c, &sim))
			return;
		for (int i = 1; i < n; i++)
			sim_revive(sim, i);
		sim_set_check_interval(sim, n > 10 ? (uint64_t)n : 10);
		if (sim_run_until(sim, sim_swim_pred_converged, NULL, 600000) !=
		    1) {
			printf("  !! %d nodes did not converge\n", n);
			sim_free(sim);
			return;
		}
		setup_s += (double)sim_now(sim) / 1000.0;
		/* Let the bootstrap backlog drain: steady state. */
		sim_run_for(sim, 60000);
		struct sim_node_stats a, b;
		uint64_t sent0 = 0, bytes0 = 0, sent1 = 0, bytes1 = 0;
		for (int i = 1; i < n; i++) {
			sim_node_stats(sim, i, &a);
			sent0 += a.sent;
			bytes0 += a.bytes_sent;
		}
		sim_run_for(sim, 30000);
		for (int i = 1; i < n; i++) {
			sim_node_stats(sim, i, &b);
			sent1 += b.sent;
			bytes1 += b.bytes_sent;
		}
		msgs += (double)(sent1 - sent0) / (n - 1) / 30.0;
		bytes += (double)(bytes1 - bytes0) / (n - 1) / 30.0;

		sim_set_check_interval(sim, 10);
		uint64_t t0 = sim_now(sim);
		sim_revive(sim, n);
		if (sim_run_until(sim, pred_joined, &t, 120000) == 1)
			v[got++] = sim_now(sim) - t0;
		sim_free(sim);
	}
	char what[96];
	snprintf(what, sizeof(what), "join reaches all %d%s, periods", n,
		 fanout ? "" : " (piggy-back only)");
	if (got)
		dist(what, v, got, 1000.0);
	printf("    %-42s %.2f msgs, %.0f bytes per member per period; "
	       "bootstrap converged in %.0f s\n",
	       "steady load:", msgs / trials, bytes / trials, setup_s / trials);
}

static void partition_heal(uint64_t seed, int trials)
{
	uint64_t *v = calloc((size_t)trials, sizeof(*v));
	int got = 0;
	const int side[] = {1, 2};
	for (int k = 0; k < trials; k++) {
		struct sim_swim_opts o;
		struct tally t;
		struct sim *sim;
		opts(&o, &t);
		if (sim_swim_cluster(&sim, 5, seed + (uint64_t)k, &o, NULL,
				     60000) == 0) {
			sim_partition_sets(sim, side, 2);
			sim_run_for(sim, 30000);
			sim_heal_all(sim);
			uint64_t t0 = sim_now(sim);
			if (sim_run_until(sim, sim_swim_pred_converged, NULL,
					  120000) == 1)
				v[got++] = sim_now(sim) - t0;
		}
		sim_free(sim);
	}
	if (got)
		dist("partition {1,2}|{3,4,5} 30 s, heal -> merged, s", v, got,
		     1000.0);
	if (got != trials)
		printf("  !! %d of %d did not re-merge in 120 s\n",
		       trials - got, trials);
	free(v);
}

static int want(int argc, char **argv, const char *part)
{
	int any = 0;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "quick") == 0)
			continue;
		any = 1;
		if (strcmp(argv[i], part) == 0)
			return 1;
	}
	return !any;
}

int main(int argc, char **argv)
{
	int quick = argc > 1 && strcmp(argv[1], "quick") == 0;
	uint64_t seed = rk_test_seed("swim_targets");

	if (want(argc, argv, "detect")) {
		printf("Detection (target: 5 nodes <= 10 s, median <= 7 s; "
		       "100 nodes <= 15 s)\n");
		detection(seed, 5, quick ? 20 : 200);
		detection(seed + 1000, 100, quick ? 5 : 100);
	}
	if (want(argc, argv, "false")) {
		printf("No false deaths at 5%% loss over 1,000 s "
		       "(target: 0)\n");
		false_deaths(seed + 2000, 5, 0, 1);
		false_deaths(seed + 2001, 100, 0, 1);
	}
	if (want(argc, argv, "slow")) {
		printf("The same with one node CPU-starved (+2 s each way), "
		       "with and without Lifeguard\n");
		false_deaths(seed + 2002, 5, 1, 1);
		false_deaths(seed + 2003, 100, 1, 1);
		false_deaths(seed + 2002, 5, 1, 0);
		false_deaths(seed + 2003, 100, 1, 0);
	}
	if (want(argc, argv, "dissem")) {
		printf("Dissemination (target: O(log N) periods; load flat "
		       "in N)\n");
		struct swim_config d;
		swim_config_defaults(&d);
		for (int pb = 0; pb < 2; pb++) {
			uint32_t fo = pb ? 0 : d.gossip_fanout;
			dissemination(seed + 3000, 10, quick ? 3 : 10, fo);
			dissemination(seed + 3100, 100, quick ? 2 : 5, fo);
			dissemination(seed + 3200, 1000, quick || pb ? 1 : 3,
				      fo);
		}
	}
	if (want(argc, argv, "partition")) {
		printf("Partition heal (target: views re-merge within "
		       "10 s)\n");
		partition_heal(seed + 4000, quick ? 20 : 200);
	}
	return 0;
}
