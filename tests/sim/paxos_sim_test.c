/* paxos_sim_test.c: compare-and-set on a simulated cluster (suite sim).
 *
 *   paxos_sim_test linearizable    the fault mix, many seeds: every key's
 *                                  history linearizable, Paxos safety
 *                                  checked after every event
 *   paxos_sim_test duel            the same with no routing to the primary:
 *                                  every replica proposes, proposers duel
 *   paxos_sim_test varied          a configuration drawn per seed: RF 3
 *                                  or 5, keys, clients, routing, fsync,
 *                                  skew, timeouts, faults
 *   paxos_sim_test uncontended     one client, no faults: the figures
 *                                  (messages and round trips per op)
 *   paxos_sim_test broken_early    acceptors answer before persisting:
 *                                  some seed must fail
 *   paxos_sim_test broken_promise  acceptors accept below their promise:
 *                                  some seed must fail
 *   paxos_sim_test replay          one seed twice: the same run
 *
 * RINGKV_SIM_SEEDS sets how many seeds (each scenario has a default);
 * RINGKV_SEED the first (printed).  A failing seed is printed with the
 * command that replays it, and its history is written to
 * paxos-sim-<seed>.jsonl for ringkv-lincheck.  RINGKV_SIM_LOG=debug shows
 * the nodes' logs.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "err.h"
#include "rng.h"
#include "sim.h"
#include "sim_paxos.h"

/* How one run ended. */
enum outcome {
	RUN_OK = 0,
	RUN_INVARIANT = 1, /* a Paxos safety check failed */
	RUN_NONLINEAR = 2, /* the checker refuted the history */
	RUN_UNDECIDED = 3, /* the checker gave up */
	RUN_ERROR = 4,	   /* the harness itself failed */
};

struct faults {
	int on;		  /* inject faults at all */
	double drop, dup; /* maxima of the per-run link settings */
	double reorder;
	int max_down;			   /* servers down at once */
	uint32_t step_min_ms, step_max_ms; /* between fault actions */
};

struct run {
	uint64_t seed;
	enum outcome outcome;
	char why[2048];
	struct sim_paxos_stats st;
	uint64_t trace;
	uint64_t events;
	uint64_t hist_hash;
	size_t hist_len;
};

static const char *outcome_name(enum outcome o)
{
	static const char *const n[] = {"ok", "INVARIANT VIOLATED",
					"NOT LINEARIZABLE", "UNDECIDED",
					"HARNESS ERROR"};
	return n[o];
}

static void save_history(const struct sim_paxos_world *w, uint64_t seed)
{
	char path[64];
	size_t len;
	const char *h = sim_paxos_history(w, &len);
	snprintf(path, sizeof(path), "paxos-sim-%" PRIu64 ".jsonl", seed);
	FILE *f = fopen(path, "w");
	if (!f)
		return;
	fwrite(h, 1, len, f);
	fclose(f);
	fprintf(stderr, "  history written to %s\n", path);
}

static int count_down(struct sim *sim, int n)
{
	int d = 0;
	for (int i = 1; i <= n; i++)
		d += !sim_is_up(sim, i);
	return d;
}

/* One random fault action among the servers. */
static void fault_step(struct sim *sim, const struct sim_paxos_opts *o,
		       const struct faults *f)
{
	int n = o->n_servers;
	int a = 1 + (int)(sim_rand(sim) % (uint64_t)n);
	switch (sim_rand(sim) % 10) {
	case 0:
	case 1:
		if (sim_is_up(sim, a) && count_down(sim, n) < f->max_down)
			sim_kill(sim, a);
		break;
	case 2:
	case 3:
		for (int i = 0; i < n; i++) {
			int b = (a + i - 1) % n + 1;
			if (!sim_is_up(sim, b)) {
				sim_revive(sim, b);
				break;
			}
		}
		break;
	case 4: /* isolate one server from the others (not from clients) */
		for (int b = 1; b <= n; b++)
			if (b != a)
				sim_partition(sim, a, b);
		break;
	case 5: { /* split the servers in two */
		int b = a % n + 1;
		for (int x = 1; x <= n; x++)
			for (int y = 1; y <= n; y++)
				if ((x == a || x == b) && y != a && y != b)
					sim_partition(sim, x, y);
		break;
	}
	case 6:
	case 7:
		sim_heal_all(sim);
		break;
	case 8:
		sim_set_slow(sim, a, (uint32_t)(sim_rand(sim) % 40));
		break;
	default:
		break;
	}
}

static int run_one(uint64_t seed, const struct sim_paxos_opts *o,
		   const struct faults *f, struct run *r, int save)
{
	struct sim_paxos_world *w = NULL;
	struct sim *sim = NULL;
	struct sim_config c;
	int rc;

	memset(r, 0, sizeof(*r));
	r->seed = seed;
	if ((rc = sim_paxos_world_new(o, &w))) {
		r->outcome = RUN_ERROR;
		snprintf(r->why, sizeof(r->why), "world: %s", rk_strerror(rc));
		return r->outcome;
	}
	sim_config_defaults(&c);
	c.n_nodes = o->n_servers + o->n_clients;
	c.seed = seed;
	c.program = &sim_paxos_program;
	c.program_ctx = w;
	if ((rc = sim_new(&c, &sim))) {
		r->outcome = RUN_ERROR;
		snprintf(r->why, sizeof(r->why), "sim: %s", rk_strerror(rc));
		sim_paxos_world_free(w);
		return r->outcome;
	}
	sim_set_invariant(sim, sim_paxos_invariant, w);
	if (f->on) {
		struct sim_link l = c.link;
		l.drop = f->drop * sim_rand_double(sim);
		l.dup = f->dup * sim_rand_double(sim);
		l.reorder = f->reorder * sim_rand_double(sim);
		l.reorder_ms = 30;
		sim_set_default_link(sim, &l);
	}
	rc = 0;
	while (!rc && sim_now(sim) < o->ops_until_ms) {
		uint64_t step = f->on ? f->step_min_ms +
					    sim_rand(sim) % (f->step_max_ms -
							     f->step_min_ms + 1)
				      : o->ops_until_ms;
		rc = sim_run_for(sim, step);
		if (!rc && f->on)
			fault_step(sim, o, f);
	}
	/* Heal everything and let every client finish. */
	if (!rc) {
		sim_heal_all(sim);
		for (int i = 1; i <= o->n_servers; i++) {
			sim_set_slow(sim, i, 0);
			if (!sim_is_up(sim, i))
				sim_revive(sim, i);
		}
		rc = sim_run_for(sim, o->client_timeout_ms + 2000u);
	}
	r->trace = sim_trace_hash(sim);
	r->events = sim_events(sim);
	uint64_t end_ms = sim_now(sim);
	/* Freeing the nodes adds their counters to the world's. */
	sim_free(sim);
	sim_paxos_stats(w, &r->st);
	{
		size_t len;
		const char *h = sim_paxos_history(w, &len);
		uint64_t x = 1469598103934665603ull;
		for (size_t i = 0; i < len; i++)
			x = (x ^ (uint8_t)h[i]) * 1099511628211ull;
		r->hist_hash = x;
		r->hist_len = len;
	}
	if (rc) {
		r->outcome = RUN_INVARIANT;
		snprintf(r->why, sizeof(r->why), "at %" PRIu64 " ms: %s",
			 end_ms, sim_paxos_violation(w));
	} else {
		int v = sim_paxos_check_history(w, r->why, sizeof(r->why));
		r->outcome = v == 0   ? RUN_OK
			     : v == 1 ? RUN_NONLINEAR
			     : v == 3 ? RUN_UNDECIDED
				      : RUN_ERROR;
	}
	if (r->outcome != RUN_OK && save)
		save_history(w, seed);
	sim_paxos_world_free(w);
	return r->outcome;
}

static int env_int(const char *name, int dflt)
{
	const char *v = getenv(name);
	return v && *v ? atoi(v) : dflt;
}

static void base_faults(struct faults *f)
{
	memset(f, 0, sizeof(*f));
	f->on = 1;
	f->drop = 0.10;
	f->dup = 0.05;
	f->reorder = 0.30;
	f->max_down = 2;
	f->step_min_ms = 50;
	f->step_max_ms = 500;
}

static void print_stats(const char *name, const struct sim_paxos_stats *s,
			uint64_t runs, double secs)
{
	fprintf(stderr,
		"%s: %" PRIu64 " runs in %.1f s: %" PRIu64 " ops (%" PRIu64
		" ok, %" PRIu64 " fail, %" PRIu64 " info); cas %" PRIu64
		" applied, %" PRIu64 " not; %" PRIu64 " SERIAL reads; %" PRIu64
		" decisions\n",
		name, runs, secs, s->invoked, s->ok, s->fail, s->info,
		s->applied, s->not_applied, s->reads, s->instances);
	fprintf(stderr, "%s: answers:", name);
	for (int i = 0; i < 32; i++)
		if (s->by_status[i])
			fprintf(stderr, " %s %" PRIu64, rk_errname(-i),
				s->by_status[i]);
	fprintf(stderr, "; messages:");
	for (int t = 1; t <= PAXOS_MSG_TYPE_MAX; t++)
		fprintf(stderr, " %s %" PRIu64, paxos_msg_type_name(t),
			s->msgs[t]);
	fprintf(stderr,
		"\n%s: proposers: %" PRIu64 " rounds lost, %" PRIu64
		" round timeouts, %" PRIu64 " in-progress proposals finished; "
		"own proposal lost track of: %" PRIu64 " finished, %" PRIu64
		" seen decided, %" PRIu64 " re-proposed, %" PRIu64
		" superseded, %" PRIu64 " unknown; %" PRIu64
		" acceptor states pruned\n",
		name, s->preempted, s->round_timeouts, s->repairs,
		s->own_finished, s->own_seen, s->own_reproposed,
		s->own_superseded, s->own_unknown, s->prunes);
}

static void add_stats(struct sim_paxos_stats *a,
		      const struct sim_paxos_stats *b)
{
	const uint64_t *q = (const uint64_t *)b;
	uint64_t *p = (uint64_t *)a;
	for (size_t i = 0; i < sizeof(*a) / sizeof(uint64_t); i++)
		p[i] += q[i];
}

/* Draws a configuration for one seed of the "varied" scenario. */
typedef void (*vary_fn)(uint64_t seed, struct sim_paxos_opts *o,
			struct faults *f);

/* Runs seeds; every one must pass.  Returns the exit status. */
static int many_varied(const char *name, const struct sim_paxos_opts *o0,
		       const struct faults *f0, int dflt_seeds, vary_fn vary)
{
	int n = env_int("RINGKV_SIM_SEEDS", dflt_seeds);
	uint64_t first = rk_test_seed(name);
	struct sim_paxos_stats tot;
	struct run r;
	int bad = 0;
	time_t t0 = time(NULL);
	memset(&tot, 0, sizeof(tot));
	for (int i = 0; i < n; i++) {
		uint64_t seed = first + (uint64_t)i;
		struct sim_paxos_opts ov = *o0;
		struct faults fv = *f0;
		if (vary)
			vary(seed, &ov, &fv);
		if (run_one(seed, &ov, &fv, &r, 1) != RUN_OK) {
			fprintf(stderr,
				"%s: seed %" PRIu64 ": %s\n%s\n  replay: "
				"RINGKV_SEED=%" PRIu64
				" RINGKV_SIM_SEEDS=1 paxos_sim_test %s\n",
				name, seed, outcome_name(r.outcome), r.why,
				seed, name);
			bad++;
		}
		add_stats(&tot, &r.st);
	}
	print_stats(name, &tot, (uint64_t)n, difftime(time(NULL), t0));
	if (tot.applied == 0 || tot.not_applied == 0 || tot.reads == 0) {
		fprintf(stderr,
			"%s: the workload did not exercise everything\n", name);
		return 1;
	}
	if (bad)
		fprintf(stderr, "%s: %d of %d seeds failed\n", name, bad, n);
	return bad ? 1 : 0;
}

static int many(const char *name, const struct sim_paxos_opts *o,
		const struct faults *f, int dflt_seeds)
{
	return many_varied(name, o, f, dflt_seeds, NULL);
}

static void vary(uint64_t seed, struct sim_paxos_opts *o, struct faults *f)
{
	struct rk_rng g;
	rk_rng_seed(&g, seed ^ 0x7661726965640000ull);
	o->rf = rk_rng_below(&g, 3) ? 3 : 5;
	o->n_servers = o->rf == 5 ? 5 + (int)rk_rng_below(&g, 3)
				  : 3 + (int)rk_rng_below(&g, 5);
	o->n_keys = 1 + (int)rk_rng_below(&g, 5);
	o->n_clients = 2 + (int)rk_rng_below(&g, 24);
	o->route_primary = rk_rng_below(&g, 4) != 0;
	o->fsync_min_ms = (uint32_t)rk_rng_below(&g, 5);
	o->fsync_max_ms = o->fsync_min_ms + (uint32_t)rk_rng_below(&g, 20);
	o->skew_max_ms =
	    rk_rng_below(&g, 2) ? 0 : (uint32_t)rk_rng_below(&g, 2000);
	o->paxos.round_timeout_ms = 20 + (uint32_t)rk_rng_below(&g, 300);
	o->paxos.contention_timeout_ms = 50 + (uint32_t)rk_rng_below(&g, 1000);
	o->paxos.backoff_max_ms = 1 + (uint32_t)rk_rng_below(&g, 200);
	o->paxos.backoff_min_ms =
	    (uint32_t)rk_rng_below(&g, o->paxos.backoff_max_ms + 1u);
	o->paxos.max_queue = 1 + (uint32_t)rk_rng_below(&g, 16);
	o->op_deadline_ms = 100 + (uint32_t)rk_rng_below(&g, 2000);
	o->client_timeout_ms =
	    o->op_deadline_ms + (uint32_t)rk_rng_below(&g, 1000);
	o->think_max_ms = (uint32_t)rk_rng_below(&g, 50);
	o->ops_until_ms = 2000 + rk_rng_below(&g, 10000);
	o->w_cas = (int)rk_rng_below(&g, 10);
	o->w_read = (int)rk_rng_below(&g, 10);
	o->w_write = (int)rk_rng_below(&g, 10);
	o->w_pia = (int)rk_rng_below(&g, 10);
	o->w_del = 1 + (int)rk_rng_below(&g, 10);
	f->on = rk_rng_below(&g, 8) != 0;
	f->drop = rk_rng_double(&g) * 0.3;
	f->dup = rk_rng_double(&g) * 0.2;
	f->reorder = rk_rng_double(&g) * 0.5;
	f->max_down = (int)rk_rng_below(&g, (uint64_t)o->n_servers / 2 + 2);
	f->step_min_ms = 5 + (uint32_t)rk_rng_below(&g, 200);
	f->step_max_ms = f->step_min_ms + (uint32_t)rk_rng_below(&g, 1000);
}

/* A different configuration per seed: RF 3 or 5 over 3..7 servers, 1..5
 * keys, 2..25 clients, routing on or off, fsync, clock skew, timeouts,
 * backoff, queue bounds, operation mix and fault rates all drawn from the
 * seed. */
static int varied(void)
{
	struct sim_paxos_opts o;
	struct faults f;
	sim_paxos_opts_defaults(&o);
	base_faults(&f);
	return many_varied("varied", &o, &f, 100, vary);
}

static int linearizable(void)
{
	struct sim_paxos_opts o;
	struct faults f;
	sim_paxos_opts_defaults(&o);
	base_faults(&f);
	return many("linearizable", &o, &f, 200);
}

static int duel(void)
{
	struct sim_paxos_opts o;
	struct faults f;
	sim_paxos_opts_defaults(&o);
	o.route_primary = 0;
	base_faults(&f);
	return many("duel", &o, &f, 50);
}

static int uncontended(void)
{
	struct sim_paxos_opts o;
	struct faults f;
	struct run r;
	sim_paxos_opts_defaults(&o);
	memset(&f, 0, sizeof(f));
	o.n_clients = 1;
	o.skew_max_ms = 0;
	o.ops_until_ms = 20000;
	o.w_cas = 60;
	o.w_read = 20;
	o.w_write = 20;
	o.w_pia = 0;
	o.w_del = 0;
	uint64_t seed = rk_test_seed("uncontended");
	if (run_one(seed, &o, &f, &r, 1) != RUN_OK) {
		fprintf(stderr, "uncontended: %s\n%s\n",
			outcome_name(r.outcome), r.why);
		return 1;
	}
	const struct sim_paxos_stats *s = &r.st;
	uint64_t msgs = 0;
	for (int t = 1; t <= PAXOS_MSG_TYPE_MAX; t++)
		msgs += s->msgs[t];
	uint64_t writes = s->applied; /* every applied op: 6 kinds x RF */
	uint64_t others = s->not_applied + s->reads;
	double rtt_a = s->rtt_applied_n
			   ? (double)s->rtt_applied / (double)s->rtt_applied_n
			   : 0;
	double rtt_o =
	    s->rtt_other_n ? (double)s->rtt_other / (double)s->rtt_other_n : 0;
	fprintf(
	    stderr,
	    "uncontended: %" PRIu64 " ops, RF %d: applied CAS %.2f round "
	    "trips; failed condition / SERIAL read %.2f round trips; %" PRIu64
	    " Paxos messages = %.2f per applied op (6 x RF = %d) "
	    "when the others take 2 x RF (%" PRIu64 " applied, %" PRIu64
	    " others); %" PRIu64 " events\n",
	    s->invoked, o.rf, rtt_a, rtt_o, msgs,
	    writes
		? (double)(msgs - 2 * (uint64_t)o.rf * others) / (double)writes
		: 0,
	    6 * o.rf, writes, others, r.events);
	if (s->info || s->fail || rtt_a != 3.0 || rtt_o != 1.0 ||
	    msgs != 6 * (uint64_t)o.rf * writes + 2 * (uint64_t)o.rf * others) {
		fprintf(stderr, "uncontended: not the expected figures\n");
		return 1;
	}
	return 0;
}

/* Runs seeds of a broken configuration until one fails; one must. */
static int broken(const char *name, const struct sim_paxos_opts *o,
		  const struct faults *f, int dflt_seeds)
{
	int n = env_int("RINGKV_SIM_SEEDS", dflt_seeds);
	uint64_t first = rk_test_seed(name);
	struct run r;
	for (int i = 0; i < n; i++) {
		uint64_t seed = first + (uint64_t)i;
		enum outcome out = run_one(seed, o, f, &r, 0);
		if (out == RUN_INVARIANT || out == RUN_NONLINEAR) {
			fprintf(stderr,
				"%s: caught after %d seeds: seed %" PRIu64
				": %s\n%s\n",
				name, i + 1, seed, outcome_name(out), r.why);
			return 0;
		}
		if (out == RUN_ERROR) {
			fprintf(stderr, "%s: %s\n", name, r.why);
			return 1;
		}
	}
	fprintf(stderr, "%s: %d seeds and the broken acceptor went unseen\n",
		name, n);
	return 1;
}

static int broken_early(void)
{
	struct sim_paxos_opts o;
	struct faults f;
	sim_paxos_opts_defaults(&o);
	o.paxos.unsafe = PAXOS_UNSAFE_REPLY_EARLY;
	/* Not the strict check (it catches this at once): show the damage
	 * itself, a second decision or a non-linearizable history. */
	o.strict_commit_check = 0;
	o.fsync_min_ms = 20;
	o.fsync_max_ms = 80;
	base_faults(&f);
	f.step_min_ms = 10;
	f.step_max_ms = 60;
	return broken("broken_early", &o, &f, 200);
}

static int broken_promise(void)
{
	struct sim_paxos_opts o;
	struct faults f;
	sim_paxos_opts_defaults(&o);
	o.paxos.unsafe = PAXOS_UNSAFE_IGNORE_PROMISE;
	o.route_primary = 0;
	base_faults(&f);
	return broken("broken_promise", &o, &f, 200);
}

static int replay(void)
{
	struct sim_paxos_opts o;
	struct faults f;
	struct run a, b;
	sim_paxos_opts_defaults(&o);
	base_faults(&f);
	int n = env_int("RINGKV_SIM_SEEDS", 5);
	uint64_t first = rk_test_seed("replay");
	for (int i = 0; i < n; i++) {
		uint64_t seed = first + (uint64_t)i;
		run_one(seed, &o, &f, &a, 1);
		run_one(seed, &o, &f, &b, 0);
		if (a.trace != b.trace || a.events != b.events ||
		    a.hist_hash != b.hist_hash || a.outcome != b.outcome) {
			fprintf(stderr,
				"replay: seed %" PRIu64 " ran differently: "
				"trace %016" PRIx64 "/%016" PRIx64
				" events %" PRIu64 "/%" PRIu64 "\n",
				seed, a.trace, b.trace, a.events, b.events);
			return 1;
		}
		if (a.outcome != RUN_OK) {
			fprintf(stderr, "replay: seed %" PRIu64 ": %s\n%s\n",
				seed, outcome_name(a.outcome), a.why);
			return 1;
		}
	}
	fprintf(stderr, "replay: %d seeds ran identically twice\n", n);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*fn)(void);
	} scenarios[] = {
	    {"linearizable", linearizable},
	    {"duel", duel},
	    {"varied", varied},
	    {"uncontended", uncontended},
	    {"broken_early", broken_early},
	    {"broken_promise", broken_promise},
	    {"replay", replay},
	};
	if (argc != 2) {
		fprintf(stderr, "usage: %s scenario\n", argv[0]);
		return 2;
	}
	for (size_t i = 0; i < sizeof(scenarios) / sizeof(*scenarios); i++)
		if (!strcmp(argv[1], scenarios[i].name))
			return scenarios[i].fn();
	fprintf(stderr, "%s: unknown scenario %s\n", argv[0], argv[1]);
	return 2;
}
