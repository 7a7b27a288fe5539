/* ring_bench.c: the figures of issue 3, measured.
 *
 *   ring-bench [--nodes N] [--vnodes V] [--rf R] [--seed S] [--lookups L]
 *
 * 1. Balance and movement: N nodes (default 100) join one by one, tokens
 *    by ring_allocate_tokens; at 3, 5, 10, 50 and 100 nodes it prints the
 *    most and least loaded node against the mean (all rf replicas
 *    counted), next to random tokens for comparison; the data the join
 *    moved against the ideal 1/N and whether all of it went to the new
 *    node; and what one node leaving moves.  All exact sums, no sampling.
 * 2. Lookup speed on the final ring, one thread: random tokens already
 *    hashed, then keys hashed with rk_key_hash in the loop.  Time is the
 *    thread's CPU time, best of three passes, so other load on the
 *    machine does not count.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "err.h"
#include "hash.h"
#include "ring.h"
#include "ring_report.h"
#include "rng.h"

struct opts {
	int nodes, vnodes, rf;
	uint64_t seed;
	long lookups;
};

static double cpu_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int milestone(int n)
{
	return n == 3 || n == 5 || n == 10 || n == 50 || n == 100;
}

/* Data moved by going from a to b, as a fraction of all rf copies, and
 * whether it only went to `to` (when nonzero) and only left `from` (when
 * nonzero). */
static double moved(const struct ring *a, const struct ring *b, int rf,
		    uint64_t to, uint64_t from, int *clean)
{
	struct ring_range_change *ch;
	size_t n;
	long double sum = 0;
	*clean = 1;
	if (ring_diff(a, b, (size_t)rf, &ch, &n) != 0) {
		*clean = 0;
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		const struct ring_range_change *c = &ch[i];
		size_t fresh = 0;
		for (uint32_t j = 0; j < c->n_new; j++) {
			int was = 0;
			for (uint32_t q = 0; q < c->n_old; q++)
				was |= c->old_nodes[q] == c->new_nodes[j];
			if (!was) {
				fresh++;
				if (to && c->new_nodes[j] != to)
					*clean = 0;
			}
		}
		for (uint32_t q = 0; q < c->n_old && from; q++) {
			int stays = 0;
			for (uint32_t j = 0; j < c->n_new; j++)
				stays |= c->old_nodes[q] == c->new_nodes[j];
			if (!stays && c->old_nodes[q] != from)
				*clean = 0;
		}
		long double w =
		    c->start == c->end
			? 0x1p64L
			: (long double)(uint64_t)(c->end - c->start);
		sum += w * fresh;
	}
	free(ch);
	return (double)(sum / (0x1p64L * rf));
}

/* max/mean of n nodes with v random tokens each. */
static double random_balance(int n, int v, int rf, uint64_t seed)
{
	struct rk_rng rng;
	struct ring_member *m = calloc((size_t)n, sizeof(*m));
	uint64_t *t = malloc((size_t)n * (size_t)v * sizeof(*t));
	double *share = malloc((size_t)n * sizeof(*share)), mm = -1;
	struct ring *r = NULL;
	struct ring_config cfg = {.rf_max = (uint32_t)rf};
	if (!m || !t || !share)
		goto out;
	rk_rng_seed(&rng, seed);
	for (int i = 0; i < n; i++) {
		for (int j = 0; j < v; j++)
			t[(size_t)i * (size_t)v + (size_t)j] =
			    rk_rng_next(&rng);
		m[i] = (struct ring_member){
		    rk_rng_next(&rng), 1, t + (size_t)i * (size_t)v, (size_t)v};
	}
	if (ring_new(m, (size_t)n, &cfg, &r) == 0)
		ring_shares(r, (size_t)rf, share, &mm);
out:
	ring_free(r);
	free(m);
	free(t);
	free(share);
	return mm;
}

static int balance_and_movement(const struct opts *o, struct ring **final)
{
	enum { KEPT = 6 };
	struct rk_rng rng;
	struct ring *r = NULL, *kept[KEPT] = {0};
	struct ring_config cfg = {.rf_max = (uint32_t)o->rf};
	double *share = malloc((size_t)o->nodes * sizeof(*share));
	size_t nkept = 0;
	int rc = ring_new(NULL, 0, &cfg, &r);
	if (rc || !share) {
		free(share);
		return rc ? rc : RK_ENOMEM;
	}
	rk_rng_seed(&rng, o->seed);

	printf("== balance and movement: %d nodes join one by one, %d vnodes, "
	       "rf %d, seed %" PRIu64 "\n",
	       o->nodes, o->vnodes, o->rf, o->seed);
	printf("%5s  %8s  %8s  %10s  %11s  %9s  %11s  %8s\n", "nodes",
	       "max/mean", "min/mean", "random m/m", "join: moved", "ideal",
	       "only to new", "alloc ms");
	for (int n = 1; n <= o->nodes; n++) {
		uint64_t id = rk_rng_next(&rng);
		struct ring *next = NULL;
		double t0 = cpu_now();
		rc = ring_report_join(r, id, o->vnodes, o->rf, &next);
		double ms = (cpu_now() - t0) * 1e3;
		if (rc)
			break;
		if (milestone(n) || n == o->nodes) {
			double mm, mn = 1e300, sum = 0;
			ring_shares(next, (size_t)o->rf, share, &mm);
			for (int i = 0; i < n; i++) {
				sum += share[i];
				if (share[i] < mn)
					mn = share[i];
			}
			int clean;
			double f = moved(r, next, o->rf, id, 0, &clean);
			printf("%5d  %8.4f  %8.4f  %10.4f  %11.4f  %9.4f  "
			       "%11s  %8.1f\n",
			       n, mm, mn / (sum / n),
			       random_balance(n, o->vnodes, o->rf,
					      o->seed + (uint64_t)n),
			       f, 1.0 / n, clean ? "yes" : "NO", ms);
		}
		/* Rings are immutable: keep the milestones for the leaves. */
		if (nkept == 0 || kept[nkept - 1] != r)
			ring_free(r);
		r = next;
		if (n >= 3 && (milestone(n) || n == o->nodes) && nkept < KEPT)
			kept[nkept++] = r;
	}

	if (rc == 0)
		printf("\n%5s  %12s  %12s  %13s\n", "nodes", "leave: moved",
		       "leaver share", "only leaver's");
	for (size_t j = 0; rc == 0 && j < nkept; j++) {
		const struct ring *a = kept[j];
		size_t n = ring_member_count(a);
		size_t gone = (size_t)rk_rng_below(&rng, n);
		uint64_t id = ring_member_id(a, gone);
		struct ring *b = NULL;
		rc = ring_report_leave(a, id, o->rf, &b);
		if (rc)
			break;
		int clean;
		double f = moved(a, b, o->rf, 0, id, &clean);
		ring_shares(a, (size_t)o->rf, share, NULL);
		printf("%5zu  %12.4f  %12.4f  %13s\n", n, f,
		       share[gone] / o->rf, clean ? "yes" : "NO");
		ring_free(b);
	}
	for (size_t j = 0; j < nkept; j++)
		if (kept[j] != r)
			ring_free(kept[j]);
	if (rc) {
		ring_free(r);
		r = NULL;
	}
	free(share);
	*final = r;
	return rc;
}

static void lookups(const struct opts *o, const struct ring *r)
{
	enum { BATCH = 1 << 20 };
	struct rk_rng rng;
	uint64_t *tok = malloc(BATCH * sizeof(*tok)), sink = 0;
	char *keys = malloc((size_t)BATCH * 16);
	if (!tok || !keys)
		goto out;
	rk_rng_seed(&rng, o->seed ^ 0x6c6f6f6bu);
	for (size_t i = 0; i < BATCH; i++) {
		tok[i] = rk_rng_next(&rng);
		snprintf(keys + i * 16, 16, "user:%010" PRIu64,
			 rk_rng_below(&rng, 10000000000ull));
	}
	printf("\n== lookups: %zu members, %zu vnodes, preference list of %d, "
	       "one thread\n",
	       ring_member_count(r), ring_vnode_count(r), o->rf);
	long passes = o->lookups / BATCH + 1;
	for (int hashed = 0; hashed < 2; hashed++) {
		double best = 1e300;
		for (int run = 0; run < 3; run++) {
			double t0 = cpu_now();
			for (long p = 0; p < passes; p++) {
				for (size_t i = 0; i < BATCH; i++) {
					uint64_t out[RING_RF_MAX];
					size_t n;
					uint64_t t =
					    hashed
						? rk_key_hash(keys + i * 16, 15)
						: tok[i];
					ring_lookup(r, t, (size_t)o->rf, out,
						    &n);
					sink += out[0] + n;
				}
			}
			double dt = cpu_now() - t0;
			if (dt < best)
				best = dt;
		}
		double ops = (double)passes * BATCH / best;
		printf("%-28s %12.0f lookups/s  (%.1f ns each)\n",
		       hashed ? "keys, rk_key_hash included:"
			      : "tokens, pre-hashed:",
		       ops, 1e9 / ops);
	}
	printf("(checksum %" PRIx64 ")\n", sink);
out:
	free(tok);
	free(keys);
}

static void usage(void)
{
	fprintf(stderr, "usage: ring-bench [--nodes N] [--vnodes V] [--rf R] "
			"[--seed S] [--lookups L]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	struct opts o = {100, RING_VNODES_PER_WEIGHT, 3, 1, 5000000};
	for (int i = 1; i < argc; i++) {
		if (i + 1 >= argc)
			usage();
		const char *v = argv[++i];
		if (!strcmp(argv[i - 1], "--nodes"))
			o.nodes = atoi(v);
		else if (!strcmp(argv[i - 1], "--vnodes"))
			o.vnodes = atoi(v);
		else if (!strcmp(argv[i - 1], "--rf"))
			o.rf = atoi(v);
		else if (!strcmp(argv[i - 1], "--seed"))
			o.seed = strtoull(v, NULL, 0);
		else if (!strcmp(argv[i - 1], "--lookups"))
			o.lookups = atol(v);
		else
			usage();
	}
	if (o.nodes < 1 || o.nodes > RING_REPORT_MAX_NODES || o.vnodes < 1 ||
	    o.vnodes > RING_TOKENS_MAX || o.rf < 1 || o.rf > RING_RF_MAX ||
	    o.lookups < 1)
		usage();

	struct ring *r = NULL;
	int rc = balance_and_movement(&o, &r);
	if (rc) {
		fprintf(stderr, "ring-bench: %s\n", rk_strerror(rc));
		ring_free(r);
		return 1;
	}
	lookups(&o, r);
	ring_free(r);
	return 0;
}
