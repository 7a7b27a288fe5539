/* alloc.c: choosing a joining node's tokens against the current ring.
 * Why is in the essay at the top of ring.c; this file is the mechanics.
 *
 * The working state is the ring as a circular linked list of vnodes, each
 * with its replicated span (the keys it serves as any of the rf replicas),
 * and each node with its total.  Placing a token changes the spans of at
 * most rf vnodes, all just after it, and the totals of their nodes: every
 * step below is local. */
#include "ring.h"

#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "ring_int.h"
#include "rng.h"

/* Mixed into a node id to seed its first tokens, so that they are not the
 * same stream as anything else seeded by the node id. */
#define DERIVE_SALT 0x52494e47544f4b31ull /* "RINGTOK1" */

/* How far around a placed token cached candidate scores go stale, in
 * distinct nodes each way.  A candidate reads the vnodes within rf distinct
 * nodes after its range and rf - 1 before it, so 2 * rf + 2 is a margin
 * that covers every candidate whose reads a placement can touch. */
#define STALE_NODES(rf) (2 * (rf) + 2)

#define NONE UINT32_MAX

/* One vnode of the working circle: the ring plus the tokens placed so far,
 * kept as a linked list because placing a token must not move 25,600
 * others. */
struct wtok {
	uint64_t token;
	uint32_t unit;	     /* NONE once dropped (a lower weight) */
	uint32_t prev, next; /* indices into alloc.tok */
	double span;	     /* replicated ownership, fraction of circle */
};

/* One physical node ("unit", Cassandra's word). */
struct unit {
	double own; /* sum of its tokens' spans (+ the joiner's placeholders) */
	double k;   /* token count the node ends with */
};

/* What one placement or removal would do: the change of the vnode terms of
 * the potential, of the joiner's total (g), and of the totals of up to rf
 * other nodes.  It depends only on the vnodes around the spot, so it stays
 * valid until a placement lands nearby, while the node totals it is
 * weighed against change with every placement. */
struct effect {
	double tok_term;
	double g;
	uint32_t n;
	uint32_t unit[RING_RF_MAX];
	double d[RING_RF_MAX];
};

/* A place a token may go: the middle of the range (prev(host), host]. */
struct cand {
	uint64_t token;
	uint32_t host;
	int stale; /* effect must be measured again */
	struct effect eff;
};

struct alloc {
	size_t rf;
	double opt;  /* ideal span of one token: rf / final vnode count */
	double mult; /* weight of the joiner's balance term */
	uint32_t newu;
	struct unit *unit;
	size_t ntok;
	struct wtok *tok;

	/* Scratch for one measurement: the vnodes whose span changes. */
	uint32_t aff[RING_RF_MAX];
	double aff_span[RING_RF_MAX];
	size_t naff;

	struct cand *cand;
	size_t ncand;
	uint32_t *cand_of; /* candidate hosted by each vnode, or NONE */
	uint64_t *heap;	   /* see heap_key */
	size_t nheap;
};

static double sq(double x)
{
	return x * x;
}

static int seen_has(const uint32_t *seen, size_t ns, uint32_t u)
{
	for (size_t j = 0; j < ns; j++)
		if (seen[j] == u)
			return 1;
	return 0;
}

/* ---- spans ---- */

/* The replicated span of vnode w: the keys for which w is how its node is
 * first reached and the node is among the first rf distinct.  Walking back
 * from w, each earlier range belongs to it until a vnode of w's own node
 * comes (that one serves the keys before it) or a walk from there would
 * meet rf distinct nodes before reaching w. */
static double span_of(const struct alloc *a, uint32_t w)
{
	uint32_t seen[RING_RF_MAX];
	size_t ns = 0;
	uint32_t uw = a->tok[w].unit, u = w;
	uint64_t start = a->tok[a->tok[w].prev].token;

	for (size_t step = 0; step < a->ntok; step++) {
		u = a->tok[u].prev;
		if (u == w)
			return 1.0; /* fewer than rf nodes: the whole circle */
		uint32_t n = a->tok[u].unit;
		if (n == uw)
			break;
		if (!seen_has(seen, ns, n)) {
			if (ns + 1 >= a->rf)
				break;
			seen[ns++] = n;
		}
		start = a->tok[a->tok[u].prev].token;
	}
	return (double)(a->tok[w].token - start) * 0x1p-64;
}

static void link_after(struct alloc *a, uint32_t x, uint32_t p)
{
	uint32_t h = a->tok[p].next;
	a->tok[x].prev = p;
	a->tok[x].next = h;
	a->tok[p].next = x;
	a->tok[h].prev = x;
}

static void unlink_tok(struct alloc *a, uint32_t x)
{
	a->tok[a->tok[x].prev].next = a->tok[x].next;
	a->tok[a->tok[x].next].prev = a->tok[x].prev;
}

/* Collects in aff every vnode from b on whose span may differ after a
 * change just before b: those whose backward walk still reaches b's range,
 * i.e. while the nodes of b .. w-1 number fewer than rf and do not include
 * w's node.  That is at most rf vnodes, one per node. */
static void collect_after(struct alloc *a, uint32_t b)
{
	uint32_t seen[RING_RF_MAX];
	size_t ns = 0;
	uint32_t w = b;

	a->naff = 0;
	for (size_t step = 0; step < a->ntok; step++) {
		uint32_t n = a->tok[w].unit;
		if (!seen_has(seen, ns, n)) {
			a->aff[a->naff] = w;
			a->aff_span[a->naff++] = span_of(a, w);
			if (ns + 1 >= a->rf)
				break;
			seen[ns++] = n;
		}
		w = a->tok[w].next;
		if (w == b)
			break;
	}
}

/* ---- the potential ---- */

/* The allocation greedily lowers
 *   sum over nodes  (own / k - opt)^2            (the joiner's x mult)
 * + sum over vnodes ((span - opt) / k_node)^2
 * : nodes near their fair load, and vnodes near equal spans so that later
 * joins find evenly sized ranges to split.  measure() turns the spans
 * collected in aff, plus the span xs of a vnode of the joiner being added
 * (sign 1) or dropped (sign -1), into an effect; the joiner's missing
 * tokens count as placeholders of exactly opt. */
static void measure(const struct alloc *a, double xs, int sign,
		    struct effect *e)
{
	double kn = a->unit[a->newu].k;
	e->tok_term = 0;
	e->g = 0;
	e->n = 0;
	for (size_t i = 0; i < a->naff; i++) {
		const struct wtok *t = &a->tok[a->aff[i]];
		double d = a->aff_span[i] - t->span;
		e->tok_term +=
		    (sq(a->aff_span[i] - a->opt) - sq(t->span - a->opt)) /
		    sq(a->unit[t->unit].k);
		if (t->unit == a->newu) {
			e->g += d;
		} else {
			e->unit[e->n] = t->unit;
			e->d[e->n++] = d;
		}
	}
	if (sign > 0) {
		e->tok_term += sq(xs - a->opt) / sq(kn);
		e->g += xs - a->opt;
	} else {
		e->tok_term -= sq(xs - a->opt) / sq(kn);
		e->g -= xs;
	}
}

static double unit_change(const struct alloc *a, uint32_t u, double d)
{
	const struct unit *un = &a->unit[u];
	return sq((un->own + d) / un->k - a->opt) -
	       sq(un->own / un->k - a->opt);
}

/* How much better the potential gets with e, against the current totals
 * (higher is better). */
static double gain(const struct alloc *a, const struct effect *e)
{
	double change = e->tok_term + a->mult * unit_change(a, a->newu, e->g);
	for (uint32_t i = 0; i < e->n; i++)
		change += unit_change(a, e->unit[i], e->d[i]);
	return -change;
}

static void apply(struct alloc *a, const struct effect *e)
{
	for (size_t i = 0; i < a->naff; i++)
		a->tok[a->aff[i]].span = a->aff_span[i];
	a->unit[a->newu].own += e->g;
	for (uint32_t i = 0; i < e->n; i++)
		a->unit[e->unit[i]].own += e->d[i];
}

/* Marks stale the candidates within STALE_NODES distinct nodes of x, each
 * way: those whose effect may read what placing x changed. */
static void mark_stale(struct alloc *a, uint32_t x)
{
	uint32_t seen[STALE_NODES(RING_RF_MAX)];
	size_t limit = STALE_NODES(a->rf);

	for (int dir = 0; dir < 2; dir++) {
		size_t ns = 0;
		uint32_t w = x;
		for (size_t step = 0; step < a->ntok; step++) {
			w = dir ? a->tok[w].next : a->tok[w].prev;
			if (w == x)
				break;
			if (a->cand_of[w] != NONE)
				a->cand[a->cand_of[w]].stale = 1;
			uint32_t n = a->tok[w].unit;
			if (!seen_has(seen, ns, n)) {
				if (ns == limit)
					break;
				seen[ns++] = n;
			}
		}
	}
}

/* Measures candidate c again, or with commit places its token. */
static void place(struct alloc *a, uint32_t c, int commit)
{
	struct cand *cd = &a->cand[c];
	uint32_t x = (uint32_t)a->ntok++;
	a->tok[x].token = cd->token;
	a->tok[x].unit = a->newu;
	link_after(a, x, a->tok[cd->host].prev);
	collect_after(a, cd->host);
	double xs = span_of(a, x);
	measure(a, xs, 1, &cd->eff);
	cd->stale = 0;
	if (commit) {
		a->tok[x].span = xs;
		a->cand_of[x] = NONE;
		apply(a, &cd->eff);
		mark_stale(a, x);
	} else {
		unlink_tok(a, x);
		a->ntok--;
	}
}

static double score_place(struct alloc *a, uint32_t c)
{
	if (a->cand[c].stale)
		place(a, c, 0);
	return gain(a, &a->cand[c].eff);
}

/* Measures dropping the joiner's vnode x; with commit, drops it (x stays
 * in the array, out of the circle). */
static double drop(struct alloc *a, uint32_t x, int commit)
{
	struct effect e;
	uint32_t b = a->tok[x].next;
	unlink_tok(a, x);
	collect_after(a, b);
	measure(a, a->tok[x].span, -1, &e);
	double score = gain(a, &e);
	if (commit) {
		apply(a, &e);
		a->tok[x].unit = NONE;
	} else {
		link_after(a, x, a->tok[b].prev);
	}
	return score;
}

static double score_drop(struct alloc *a, uint32_t x)
{
	return drop(a, x, 0);
}

/* ---- a max-heap of candidates, lazily re-scored ---- */

/* A heap entry packs a score and an index into one integer whose order is
 * the order we want: score first (as a float, mapped so that integer order
 * is float order), then the smaller index.  8-byte keys in a 4-ary heap
 * keep the 25,600 candidates of a 100-node ring in 200 KiB. */
#define HEAP_ARITY 4

static uint64_t heap_key(double score, uint32_t id)
{
	float f = (float)score;
	uint32_t u;
	memcpy(&u, &f, sizeof(u));
	u = (u & 0x80000000u) ? ~u : u | 0x80000000u;
	return (uint64_t)u << 32 | (uint32_t)~id;
}

static uint32_t heap_id(uint64_t key)
{
	return ~(uint32_t)key;
}

static void heap_sift_down(struct alloc *a, size_t i)
{
	uint64_t e = a->heap[i];
	for (;;) {
		size_t c = HEAP_ARITY * i + 1, best = c;
		if (c >= a->nheap)
			break;
		for (size_t j = c + 1; j < c + HEAP_ARITY && j < a->nheap; j++)
			if (a->heap[j] > a->heap[best])
				best = j;
		if (a->heap[best] <= e)
			break;
		a->heap[i] = a->heap[best];
		i = best;
	}
	a->heap[i] = e;
}

static void heap_build(struct alloc *a)
{
	for (size_t i = a->nheap / HEAP_ARITY + 1; i-- > 0;)
		if (i < a->nheap)
			heap_sift_down(a, i);
}

/* Takes the best entry.  Stored scores go stale as totals move, so the top
 * is re-scored in place and sifted down as far as it fell, until a fresh
 * top beats every stored score (Cassandra's shortcut: exact when scores
 * only fall, and it cuts the search by about the vnode count). */
static uint32_t take_best(struct alloc *a,
			  double (*score)(struct alloc *, uint32_t))
{
	for (;;) {
		uint32_t id = heap_id(a->heap[0]);
		a->heap[0] = heap_key(score(a, id), id);
		int best = 1;
		for (size_t c = 1; c <= HEAP_ARITY && c < a->nheap; c++)
			if (a->heap[c] > a->heap[0])
				best = 0;
		if (best)
			break;
		heap_sift_down(a, 0);
	}
	uint32_t id = heap_id(a->heap[0]);
	a->heap[0] = a->heap[--a->nheap];
	heap_sift_down(a, 0);
	return id;
}

/* ---- the allocation ---- */

/* One round: a candidate at the middle of every range of the circle (long
 * enough to split), then up to `want` of them placed, best first.  Returns
 * how many were. */
static size_t place_round(struct alloc *a, size_t want, size_t *placed,
			  size_t total)
{
	uint32_t h = 0; /* an old vnode: never dropped, always linked */
	a->ncand = 0;
	a->nheap = 0;
	for (size_t i = 0; i < a->ntok; i++)
		a->cand_of[i] = NONE;
	a->mult = (double)(*placed + 1) / (double)total;
	do {
		uint32_t p = a->tok[h].prev;
		uint64_t len = a->tok[h].token - a->tok[p].token;
		if (p == h || len >= 2) {
			uint32_t c = (uint32_t)a->ncand++;
			a->cand[c].host = h;
			a->cand[c].token = p == h
					       ? a->tok[h].token + (1ull << 63)
					       : a->tok[p].token + len / 2;
			a->cand[c].stale = 1;
			a->cand_of[h] = c;
			a->heap[a->nheap++] = heap_key(score_place(a, c), c);
		}
		h = a->tok[h].next;
	} while (h != 0);
	heap_build(a);

	size_t done = 0;
	for (; done < want && a->nheap > 0; done++) {
		/* The joiner's own balance counts for more as more of its
		 * tokens are real rather than placeholders. */
		a->mult = (double)(*placed + 1) / (double)total;
		place(a, take_best(a, score_place), 1);
		(*placed)++;
	}
	return done;
}

/* Tokens for a node joining an empty ring: a stream seeded by the node id,
 * so the first node of a cluster is reproducible; sorted, and a repeat
 * (odds 2^-50 at 65,536 tokens) re-drawn. */
static void derive_tokens(uint64_t node_id, size_t m, uint64_t *out)
{
	struct rk_rng rng;
	rk_rng_seed(&rng, node_id ^ DERIVE_SALT);
	for (size_t i = 0; i < m; i++)
		out[i] = rk_rng_next(&rng);
	for (;;) {
		qsort(out, m, sizeof(*out), ring_cmp_u64);
		size_t dup = 0;
		for (size_t i = 1; i < m; i++)
			if (out[i] == out[i - 1])
				out[i] = rk_rng_next(&rng), dup++;
		if (!dup)
			return;
	}
}

int ring_allocate_tokens(const struct ring *cur, uint64_t node_id,
			 uint32_t weight, uint32_t vnodes_per_weight, size_t rf,
			 uint64_t *out, size_t cap, size_t *n_out)
{
	struct alloc a = {0};
	uint64_t m64 = (uint64_t)weight * vnodes_per_weight;
	size_t self = 0, have = 0;
	int rc;

	*n_out = 0;
	if (m64 == 0 || m64 > RING_TOKENS_MAX || m64 > cap || rf == 0 ||
	    rf > RING_RF_MAX)
		return RK_EINVALID;
	size_t m = (size_t)m64;
	int member = ring_member_find(cur, node_id, &self) == 0;
	if (member)
		have = cur->members[self].n_vnodes;
	size_t others = cur->n_vnodes - have;
	if (cur->n_vnodes == 0) {
		derive_tokens(node_id, m, out);
		*n_out = m;
		return 0;
	}

	rc = RK_ENOMEM;
	size_t nunit = cur->n_members + (member ? 0 : 1);
	size_t tok_cap = cur->n_vnodes + (m > have ? m - have : 0) + 1;
	a.newu = member ? (uint32_t)self : (uint32_t)cur->n_members;
	a.unit = calloc(nunit, sizeof(*a.unit));
	a.tok = calloc(tok_cap, sizeof(*a.tok));
	a.cand = malloc(tok_cap * sizeof(*a.cand));
	a.cand_of = malloc(tok_cap * sizeof(*a.cand_of));
	a.heap = malloc(tok_cap * sizeof(*a.heap));
	if (!a.unit || !a.tok || !a.cand || !a.cand_of || !a.heap)
		goto out;

	/* With no more nodes than rf every node holds every key whatever the
	 * tokens, so balance the primary ranges instead (rf 1): that lays the
	 * first nodes out evenly for the replication-aware joins after. */
	size_t units_after = cur->n_present + (have ? 0 : 1);
	a.rf = units_after <= rf ? 1 : rf;
	a.opt = (double)a.rf / (double)(others + m);

	a.ntok = cur->n_vnodes;
	for (size_t i = 0; i < cur->n_vnodes; i++) {
		a.tok[i].token = cur->tokens[i];
		a.tok[i].unit = cur->owner[i];
		a.tok[i].prev = (uint32_t)(i ? i - 1 : cur->n_vnodes - 1);
		a.tok[i].next = (uint32_t)(i + 1 == cur->n_vnodes ? 0 : i + 1);
	}
	for (size_t i = 0; i < cur->n_members; i++)
		a.unit[i].k = cur->members[i].n_vnodes;
	a.unit[a.newu].k = (double)m;
	for (size_t i = 0; i < a.ntok; i++) {
		a.tok[i].span = span_of(&a, (uint32_t)i);
		a.unit[a.tok[i].unit].own += a.tok[i].span;
	}

	if (m > have) {
		/* The joiner starts at its fair total: each token not yet
		 * placed is a placeholder of exactly opt, replaced by its real
		 * span when placed.  Otherwise its huge deficit would drown
		 * every other term and it would grab the largest ranges
		 * whoever they belong to. */
		size_t placed = 0, total = m - have;
		a.unit[a.newu].own += (double)total * a.opt;
		while (placed < total)
			if (place_round(&a, total - placed, &placed, total) ==
			    0)
				break;
		rc = RK_EINVALID; /* no range left to split */
		if (placed < total)
			goto out;
	} else if (m < have) {
		/* A lower weight: drop the vnodes whose absence helps most. */
		a.mult = 1;
		for (uint32_t i = 0; i < a.ntok; i++)
			if (a.tok[i].unit == a.newu)
				a.heap[a.nheap++] =
				    heap_key(score_drop(&a, i), i);
		heap_build(&a);
		for (size_t n = have - m; n > 0; n--)
			drop(&a, take_best(&a, score_drop), 1);
	}

	size_t k = 0;
	for (size_t i = 0; i < a.ntok; i++)
		if (a.tok[i].unit == a.newu)
			out[k++] = a.tok[i].token;
	qsort(out, k, sizeof(*out), ring_cmp_u64);
	*n_out = k;
	rc = 0;
out:
	free(a.unit);
	free(a.tok);
	free(a.cand);
	free(a.cand_of);
	free(a.heap);
	return rc;
}
