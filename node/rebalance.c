#include "rebalance.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "err.h"
#include "hash.h"
#include "peer_wire.h"

/* How often joins are retried and cleanups considered, seconds. */
#define REBALANCE_TICK 1.0
/* Telling members of a removal waits this long for each. */
#define ANNOUNCE_TIMEOUT_MS 5000u
/* A TAKE_OVER may stream a large share of the data. */
#define TAKE_OVER_TIMEOUT_MS (3600u * 1000u)
/* Keys examined per cleanup step (one step per tick, plus the loop's
 * idle turns through the check hook below). */
#define CLEANUP_STEP 4096

/* One operation that pulls ranges from several sources, then finishes. */
struct pull_set {
	struct rebalance *rb;
	int outstanding;      /* pulls not finished */
	int failed;           /* a pull failed */
	uint64_t records;
	void (*finish)(struct rebalance *rb, struct pull_set *ps);
	rebalance_done_fn done; /* TAKE_OVER's reply */
	void *done_ctx;
};

/* One pull of a pull set: ranges from one source. */
struct pull {
	struct pull_set *ps;
	uint64_t source;
};

/* One round of asking every live member what it knows of us. */
struct settle_round {
	struct rebalance *rb;
	int outstanding;
	int lagging;          /* members that do not know yet */
	uint64_t lagger;      /* one of them, for the log */
};

/* One member's answer within a round. */
struct settle_ask {
	struct settle_round *round;
	uint64_t id;
};

/* A decommission or removal waiting for the gainers' answers. */
struct handover {
	struct rebalance *rb;
	uint64_t leaving;
	int outstanding;
	int failed;
	char why[200];
	rebalance_done_fn done;
	void *done_ctx;
};

struct rebalance {
	struct ev_loop *loop;
	const struct node_config *cfg;
	struct cluster *cl;
	struct repl *repl;
	struct store *st;
	struct peers *peers;
	const struct rk_logger *lg;
	uint64_t self;
	ev_timer tick;
	int joining;              /* a join's pulls are out */
	/* settling: waiting for every member to know our new status */
	enum cluster_status settle_want;  /* JOINING or LEAVING; 0 = none */
	int settled;                      /* the join's settle is done */
	uint64_t settle_deadline;
	uint64_t settle_log_ms;           /* last "still waiting" line */
	ev_timer settle_timer;            /* the next round */
	void (*settle_then)(struct rebalance *rb);
	rebalance_done_fn decom_done;     /* the decommission's reply */
	void *decom_ctx;
	int busy;                 /* pulls or a handover under way */
	uint64_t ring_changed_ms; /* when the rings last moved */
	int cleanup_due;          /* a change since the last cleanup */
	uint64_t cleanup_cursor;  /* a cleanup walk in progress (or 0) */
	int cleaning;
	uint64_t dropped;
};

static uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int is_up(const struct rebalance *rb, uint64_t id)
{
	enum cluster_liveness l = cluster_liveness_of(rb->cl, id);
	return id == rb->self || l == CLUSTER_ALIVE || l == CLUSTER_SUSPECT;
}

static int contains(const uint64_t *ids, uint32_t n, uint64_t id)
{
	for (uint32_t i = 0; i < n; i++)
		if (ids[i] == id)
			return 1;
	return 0;
}

/* ------------------------------------------------------------------ */
/* pulling ranges                                                      */

static void pull_done(void *ctx, int status)
{
	struct pull *p = ctx;
	struct pull_set *ps = p->ps;
	if (status) {
		ps->failed = 1;
		rk_warn(ps->rb->lg, "rebalance", "pull from n%" PRIx64
			" failed: %s", p->source, rk_strerror(status));
	}
	free(p);
	if (--ps->outstanding == 0)
		ps->finish(ps->rb, ps);
}

/* The ranges this node gains going from ring `from` to ring `to`, pulled
 * each from a source chosen by pick().  Returns the number of pulls
 * started (the set finishes through ps->finish), 0 when there is nothing
 * to pull, or a negative error (e.g. no source up for a range). */
static int pull_gains(struct rebalance *rb, const struct ring *from,
		      const struct ring *to, uint64_t leaving,
		      int from_leaving, struct pull_set *ps)
{
	struct ring_range_change *ch;
	size_t n;
	int rc = ring_diff(from, to, rb->cfg->rf, &ch, &n);
	if (rc)
		return rc;
	/* Group the ranges by source. */
	struct repl_range *ranges = malloc((n ? n : 1) * sizeof(*ranges));
	uint64_t *sources = malloc((n ? n : 1) * sizeof(*sources));
	if (!ranges || !sources) {
		free(ranges);
		free(sources);
		free(ch);
		return RK_ENOMEM;
	}
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		const struct ring_range_change *c = &ch[i];
		if (!contains(c->new_nodes, c->n_new, rb->self) ||
		    contains(c->old_nodes, c->n_old, rb->self))
			continue;
		/* The node that loses the range first: it holds every
		 * write a quorum of the staying owners may lack. */
		uint64_t src = 0;
		for (uint32_t j = 0; j < c->n_old && !src; j++) {
			uint64_t o = c->old_nodes[j];
			int loses = !contains(c->new_nodes, c->n_new, o);
			if (loses && is_up(rb, o) &&
			    (o != leaving || from_leaving))
				src = o;
		}
		for (uint32_t j = 0; j < c->n_old && !src; j++) {
			uint64_t o = c->old_nodes[j];
			if (o != rb->self && is_up(rb, o) &&
			    (o != leaving || from_leaving))
				src = o;
		}
		if (!src) {
			rk_warn(rb->lg, "rebalance",
				"no live source for range (%016" PRIx64
				", %016" PRIx64 "]",
				c->start, c->end);
			free(ranges);
			free(sources);
			free(ch);
			return RK_EUNAVAILABLE;
		}
		ranges[k] = (struct repl_range){c->start, c->end};
		sources[k++] = src;
	}
	free(ch);
	int started = 0;
	/* One pull per distinct source. */
	for (size_t i = 0; i < k; i++) {
		if (!sources[i])
			continue;
		uint64_t src = sources[i];
		struct repl_range *mine = malloc(k * sizeof(*mine));
		struct pull *p = malloc(sizeof(*p));
		if (!mine || !p) {
			free(mine);
			free(p);
			ps->failed = 1;
			continue;
		}
		size_t m = 0;
		for (size_t j = i; j < k; j++)
			if (sources[j] == src) {
				mine[m++] = ranges[j];
				sources[j] = 0;
			}
		p->ps = ps;
		p->source = src;
		ps->outstanding++;
		started++;
		rk_info(rb->lg, "rebalance", "pulling %zu range(s) from n%" PRIx64,
			m, src);
		repl_pull_ranges(rb->repl, src, mine, m, pull_done, p);
		free(mine);
	}
	free(ranges);
	free(sources);
	return started;
}

/* ------------------------------------------------------------------ */
/* settling: every member knows before a range moves                   */
/*
 * A coordinator sends a write to the owners its own view of the ring
 * names.  One that has not heard yet that this node is joining sends
 * the writes of a range this node is pulling only to the old owners; if
 * the pull from the node losing the range has passed them, we lack
 * those writes, and should that node leave soon after, only a later
 * anti-entropy round from the remaining owners brings them over.  The
 * same holds for a node leaving and the nodes taking its ranges.
 * Cassandra sleeps ring_delay (30 s) for this and hopes; we ask: every
 * live member is asked for our tokens and its view of our status, and
 * ranges move once all say "joining" (or "leaving").  A member that
 * stays behind past replication.settle_timeout is logged and the ranges
 * move anyway: anti-entropy still covers what it sends meanwhile.
 */

#define SETTLE_ASK_TIMEOUT_MS 2000u
#define SETTLE_RETRY_S 0.2
#define SETTLE_LOG_MS 5000u

static void settle_round_start(struct rebalance *rb);

static void settle_finish(struct rebalance *rb)
{
	void (*then)(struct rebalance *) = rb->settle_then;
	rb->settle_want = 0;
	rb->settle_then = NULL;
	then(rb);
}

static void settle_round_end(struct settle_round *sr)
{
	struct rebalance *rb = sr->rb;
	uint64_t now = mono_ms();
	if (sr->lagging == 0) {
		rk_info(rb->lg, "rebalance", "every live member knows this "
			"node is %s", cluster_status_name(rb->settle_want));
		settle_finish(rb);
	} else if (now >= rb->settle_deadline) {
		rk_warn(rb->lg, "rebalance", "%d member(s) (n%" PRIx64 " among "
			"them) still do not know this node is %s after "
			"replication.settle_timeout; moving ranges anyway",
			sr->lagging, sr->lagger,
			cluster_status_name(rb->settle_want));
		settle_finish(rb);
	} else {
		if (now >= rb->settle_log_ms + SETTLE_LOG_MS) {
			rb->settle_log_ms = now;
			rk_info(rb->lg, "rebalance", "waiting for %d member(s) "
				"(n%" PRIx64 " among them) to learn this node "
				"is %s", sr->lagging, sr->lagger,
				cluster_status_name(rb->settle_want));
		}
		ev_timer_set(&rb->settle_timer, SETTLE_RETRY_S, 0.0);
		ev_timer_start(rb->loop, &rb->settle_timer);
	}
	free(sr);
}

static void settle_reply(void *ctx, int status, const struct peer_msg *r)
{
	struct settle_ask *a = ctx;
	struct settle_round *sr = a->round;
	struct rebalance *rb = sr->rb;
	struct cluster_member self;
	cluster_members(rb->cl, &self, 1);
	int knows = status == 0 && r->op == PEER_OP_TOKENS &&
		    r->node_id == rb->self && r->n_tokens == self.n_tokens &&
		    r->ring_status == (uint32_t)rb->settle_want;
	if (!knows) {
		sr->lagging++;
		sr->lagger = a->id;
	}
	free(a);
	if (--sr->outstanding == 0)
		settle_round_end(sr);
}

static void settle_round_start(struct rebalance *rb)
{
	struct settle_round *sr = calloc(1, sizeof(*sr));
	size_t n = cluster_members(rb->cl, NULL, 0);
	struct cluster_member *m = calloc(n ? n : 1, sizeof(*m));
	if (!sr || !m) {
		free(sr);
		free(m);
		ev_timer_set(&rb->settle_timer, SETTLE_RETRY_S, 0.0);
		ev_timer_start(rb->loop, &rb->settle_timer);
		return;
	}
	sr->rb = rb;
	sr->outstanding = 1; /* released below */
	cluster_members(rb->cl, m, n);
	for (size_t i = 0; i < n; i++) {
		/* Any live node coordinates writes, owner or not. */
		if (m[i].is_self || m[i].removed || !m[i].client_addr[0] ||
		    (m[i].liveness != CLUSTER_ALIVE &&
		     m[i].liveness != CLUSTER_SUSPECT))
			continue;
		struct settle_ask *a = malloc(sizeof(*a));
		if (!a) {
			sr->lagging++;
			sr->lagger = m[i].id;
			continue;
		}
		a->round = sr;
		a->id = m[i].id;
		sr->outstanding++;
		struct peer_msg q = {.op = PEER_OP_TOKENS_GET,
				     .node_id = rb->self};
		peers_request(rb->peers, m[i].client_addr, &q,
			      SETTLE_ASK_TIMEOUT_MS, settle_reply, a);
	}
	free(m);
	if (--sr->outstanding == 0)
		settle_round_end(sr);
}

static void on_settle_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	struct rebalance *rb = w->data;
	if (rb->settle_want)
		settle_round_start(rb);
}

/* Waits until every live member sees this node as `want`, then calls
 * then(rb). */
static void settle(struct rebalance *rb, enum cluster_status want,
		   void (*then)(struct rebalance *rb))
{
	uint64_t now = mono_ms();
	rb->settle_want = want;
	rb->settle_then = then;
	rb->settle_deadline = now + rb->cfg->settle_timeout_ms;
	rb->settle_log_ms = now;
	settle_round_start(rb);
}

/* ------------------------------------------------------------------ */
/* join                                                                */

static void join_finished(struct rebalance *rb, struct pull_set *ps)
{
	rb->joining = 0;
	rb->busy = 0;
	if (ps->failed) {
		rk_warn(rb->lg, "rebalance", "join: a pull failed; retrying");
	} else {
		rk_info(rb->lg, "rebalance", "join: every range is in; now a "
			"normal owner");
		cluster_set_self_status(rb->cl, CLUSTER_NORMAL);
	}
	free(ps);
}

static void join_try(struct rebalance *rb);

static void join_settled(struct rebalance *rb)
{
	rb->settled = 1;
	rb->busy = 0;
	join_try(rb);
}

static void join_try(struct rebalance *rb)
{
	if (rb->joining || rb->settle_want ||
	    cluster_self_status(rb->cl) != CLUSTER_JOINING)
		return;
	if (!rb->settled) {
		rb->busy = 1;
		settle(rb, CLUSTER_JOINING, join_settled);
		return;
	}
	struct ring *with_self;
	if (cluster_build_ring(rb->cl, rb->self, 0, &with_self))
		return;
	struct pull_set *ps = calloc(1, sizeof(*ps));
	if (!ps) {
		ring_free(with_self);
		return;
	}
	ps->rb = rb;
	ps->finish = join_finished;
	rb->joining = 1;
	rb->busy = 1;
	int rc = pull_gains(rb, cluster_ring(rb->cl), with_self, 0, 0, ps);
	ring_free(with_self);
	if (rc == 0) {
		/* Nothing to pull (an empty ring): done at once. */
		join_finished(rb, ps);
	} else if (rc < 0 && ps->outstanding == 0) {
		rb->joining = 0;
		rb->busy = 0;
		free(ps);
		/* The tick tries again. */
	}
}

/* ------------------------------------------------------------------ */
/* taking over a leaving node's ranges                                 */

static void take_over_finished(struct rebalance *rb, struct pull_set *ps)
{
	rb->busy = 0;
	ps->done(ps->done_ctx, ps->failed ? RK_EUNAVAILABLE : 0,
		 ps->failed ? "a pull failed" : NULL);
	free(ps);
}

void rebalance_take_over(struct rebalance *rb, uint64_t leaving,
			 int from_leaving, rebalance_done_fn done, void *ctx)
{
	struct ring *without;
	int rc = cluster_build_ring(rb->cl, 0, leaving, &without);
	if (rc) {
		done(ctx, rc, "cannot build the ring");
		return;
	}
	struct pull_set *ps = calloc(1, sizeof(*ps));
	if (!ps) {
		ring_free(without);
		done(ctx, RK_ENOMEM, "out of memory");
		return;
	}
	ps->rb = rb;
	ps->finish = take_over_finished;
	ps->done = done;
	ps->done_ctx = ctx;
	rb->busy = 1;
	rc = pull_gains(rb, cluster_ring(rb->cl), without, leaving,
			from_leaving, ps);
	ring_free(without);
	if (rc <= 0 && ps->outstanding == 0) {
		rb->busy = 0;
		done(ctx, rc < 0 ? rc : 0,
		     rc < 0 ? "no live source for a range" : NULL);
		free(ps);
	}
}

/* ------------------------------------------------------------------ */
/* decommission and removal: ask the gainers                           */

static void announce_removed(struct rebalance *rb, struct handover *h);

static void handover_reply(void *ctx, int status, const struct peer_msg *r)
{
	struct handover *h = ctx;
	if (status || r->op != PEER_OP_ACK) {
		h->failed = 1;
		snprintf(h->why, sizeof(h->why), "a gaining node could not take "
			 "its ranges over: %s",
			 status ? rk_strerror(status)
			 : r->op == PEER_OP_ERROR && r->error ? r->error
							      : "bad reply");
	}
	if (--h->outstanding > 0)
		return;
	struct rebalance *rb = h->rb;
	if (h->failed) {
		rb->busy = 0;
		h->done(h->done_ctx, RK_EUNAVAILABLE, h->why);
		free(h);
		return;
	}
	if (h->leaving == rb->self)
		cluster_set_self_status(rb->cl, CLUSTER_GONE);
	else
		cluster_remove(rb->cl, h->leaving);
	announce_removed(rb, h);
}

/* Every live member learns of the removal now (gossip's digest would
 * tell them too, but a decommissioned node stops right away). */
static void announced(void *ctx, int status, const struct peer_msg *r)
{
	(void)status;
	(void)r;
	struct handover *h = ctx;
	if (--h->outstanding > 0)
		return;
	h->rb->busy = 0;
	h->done(h->done_ctx, 0, NULL);
	free(h);
}

static void announce_removed(struct rebalance *rb, struct handover *h)
{
	size_t n = cluster_members(rb->cl, NULL, 0);
	struct cluster_member *m = calloc(n ? n : 1, sizeof(*m));
	h->outstanding = 1;
	if (m) {
		cluster_members(rb->cl, m, n);
		struct peer_msg q = {.op = PEER_OP_REMOVED};
		q.n_ids = cluster_removed(rb->cl, &q.ids);
		for (size_t i = 0; i < n; i++) {
			if (m[i].is_self || m[i].liveness != CLUSTER_ALIVE ||
			    !m[i].client_addr[0])
				continue;
			h->outstanding++;
			peers_request(rb->peers, m[i].client_addr, &q,
				      ANNOUNCE_TIMEOUT_MS, announced, h);
		}
		free(m);
	}
	announced(h, 0, NULL);
}

/* Sends TAKE_OVER to every node that gains a range when `leaving` goes. */
static void handover(struct rebalance *rb, uint64_t leaving, int from_leaving,
		     rebalance_done_fn done, void *ctx)
{
	struct ring *without;
	struct ring_range_change *ch = NULL;
	size_t n = 0;
	int rc = cluster_build_ring(rb->cl, 0, leaving, &without);
	if (!rc) {
		rc = ring_diff(cluster_ring(rb->cl), without, rb->cfg->rf, &ch,
			       &n);
		ring_free(without);
	}
	if (rc) {
		done(ctx, rc, "cannot compute the ranges to move");
		return;
	}
	uint64_t gainers[64];
	size_t ng = 0;
	for (size_t i = 0; i < n; i++)
		for (uint32_t j = 0; j < ch[i].n_new; j++) {
			uint64_t g = ch[i].new_nodes[j];
			if (contains(ch[i].old_nodes, ch[i].n_old, g) ||
			    contains(gainers, (uint32_t)ng, g))
				continue;
			if (ng < 64)
				gainers[ng++] = g;
		}
	free(ch);
	for (size_t i = 0; i < ng; i++)
		if (!is_up(rb, gainers[i])) {
			char why[160];
			snprintf(why, sizeof(why),
				 "n%016" PRIx64 " would take over ranges but is "
				 "down; bring it back (or remove it) first",
				 gainers[i]);
			done(ctx, RK_EUNAVAILABLE, why);
			return;
		}
	struct handover *h = calloc(1, sizeof(*h));
	if (!h) {
		done(ctx, RK_ENOMEM, "out of memory");
		return;
	}
	h->rb = rb;
	h->leaving = leaving;
	h->done = done;
	h->done_ctx = ctx;
	h->outstanding = (int)ng + 1; /* +1: released below */
	rb->busy = 1;
	rk_info(rb->lg, "rebalance", "n%" PRIx64 " leaves the ring: %zu node(s)"
		" take over its ranges", leaving, ng);
	for (size_t i = 0; i < ng; i++) {
		const char *addr = cluster_address_of(rb->cl, gainers[i]);
		struct peer_msg q = {.op = PEER_OP_TAKE_OVER,
				     .node_id = leaving,
				     .from_leaving = from_leaving};
		if (!addr) {
			h->failed = 1;
			h->outstanding--;
			continue;
		}
		peers_request(rb->peers, addr, &q, TAKE_OVER_TIMEOUT_MS,
			      handover_reply, h);
	}
	/* Release the extra count: finishes now if every request failed
	 * at once or there was nobody to ask. */
	struct peer_msg ok = {.op = PEER_OP_ACK};
	handover_reply(h, 0, &ok);
}

static void decommission_settled(struct rebalance *rb)
{
	rb->busy = 0;
	handover(rb, rb->self, 1, rb->decom_done, rb->decom_ctx);
}

void rebalance_decommission(struct rebalance *rb, rebalance_done_fn done,
			    void *ctx)
{
	enum cluster_status st = cluster_self_status(rb->cl);
	if (st != CLUSTER_NORMAL && st != CLUSTER_LEAVING) {
		done(ctx, RK_EINVALID, "only a normal owner can be "
				       "decommissioned");
		return;
	}
	if (rb->busy) {
		done(ctx, RK_EINVALID, "a ring change is already under way");
		return;
	}
	rb->busy = 1;
	rb->decom_done = done;
	rb->decom_ctx = ctx;
	cluster_set_self_status(rb->cl, CLUSTER_LEAVING);
	settle(rb, CLUSTER_LEAVING, decommission_settled);
}

void rebalance_remove(struct rebalance *rb, uint64_t id,
		      rebalance_done_fn done, void *ctx)
{
	enum cluster_liveness l = cluster_liveness_of(rb->cl, id);
	if (id == rb->self) {
		done(ctx, RK_EINVALID, "a node cannot remove itself: use "
				       "decommission");
		return;
	}
	if (!cluster_is_member(rb->cl, id)) {
		done(ctx, RK_ENOT_FOUND, "no such node in this cluster");
		return;
	}
	if (l == CLUSTER_ALIVE || l == CLUSTER_SUSPECT) {
		done(ctx, RK_EINVALID, "that node is alive: decommission it "
				       "instead");
		return;
	}
	if (cluster_is_removed(rb->cl, id)) {
		done(ctx, 0, NULL);
		return;
	}
	if (rb->busy) {
		done(ctx, RK_EINVALID, "a ring change is already under way");
		return;
	}
	handover(rb, id, 0, done, ctx);
}

/* ------------------------------------------------------------------ */
/* cleanup                                                             */

struct sweep {
	const struct ring *ring, *pending;
	uint64_t self;
	size_t rf;
	uint8_t **keys;
	uint16_t *klens;
	size_t n, cap;
};

static int owned(const struct ring *r, size_t rf, uint64_t token,
		 uint64_t self)
{
	uint64_t o[RING_RF_MAX];
	size_t n = 0;
	if (!r || ring_lookup(r, token, rf, o, &n))
		return 0;
	return contains(o, (uint32_t)n, self);
}

static void sweep_one(void *ctx, const struct rk_rec *rec)
{
	struct sweep *s = ctx;
	uint64_t t = rk_key_hash(rk_rec_key(rec), rec->klen);
	if (owned(s->ring, s->rf, t, s->self) ||
	    owned(s->pending, s->rf, t, s->self))
		return;
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 256;
		uint8_t **k = realloc(s->keys, cap * sizeof(*k));
		uint16_t *l = k ? realloc(s->klens, cap * sizeof(*l)) : NULL;
		if (k)
			s->keys = k;
		if (!k || !l)
			return; /* the next cleanup gets it */
		s->klens = l;
		s->cap = cap;
	}
	uint8_t *copy = malloc(rec->klen);
	if (!copy)
		return;
	memcpy(copy, rk_rec_key(rec), rec->klen);
	s->keys[s->n] = copy;
	s->klens[s->n++] = rec->klen;
}

/* One bounded step of the walk that drops keys we no longer own. */
static void cleanup_step(struct rebalance *rb)
{
	struct sweep s = {.ring = cluster_ring(rb->cl),
			  .pending = cluster_pending_ring(rb->cl),
			  .self = rb->self,
			  .rf = rb->cfg->rf};
	size_t buckets = 0;
	do {
		rb->cleanup_cursor = store_scan(rb->st, rb->cleanup_cursor,
						sweep_one, &s);
	} while (rb->cleanup_cursor && ++buckets < CLEANUP_STEP);
	for (size_t i = 0; i < s.n; i++) {
		if (store_drop(rb->st, s.keys[i], s.klens[i]) == 1)
			rb->dropped++;
		free(s.keys[i]);
	}
	free(s.keys);
	free(s.klens);
	if (rb->cleanup_cursor == 0) {
		rb->cleaning = 0;
		rk_info(rb->lg, "rebalance", "cleanup done: %" PRIu64 " keys "
			"this node no longer owns dropped", rb->dropped);
	}
}

static void on_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	struct rebalance *rb = w->data;
	join_try(rb);
	uint64_t now = mono_ms();
	/* Clean up once the rings have been still for the delay, with no
	 * change under way. */
	if (rb->cleanup_due && !rb->busy && !cluster_pending_ring(rb->cl) &&
	    cluster_self_status(rb->cl) == CLUSTER_NORMAL &&
	    now >= rb->ring_changed_ms + rb->cfg->cleanup_delay_ms) {
		rb->cleanup_due = 0;
		rb->cleaning = 1;
		rb->cleanup_cursor = 0;
		rb->dropped = 0;
	}
	if (rb->cleaning) {
		/* Several steps a second: the table is walked on the loop. */
		for (int i = 0; i < 16 && rb->cleaning; i++)
			cleanup_step(rb);
	}
}

void rebalance_on_ring(struct rebalance *rb)
{
	rb->ring_changed_ms = mono_ms();
	rb->cleanup_due = 1;
	if (rb->cleaning) {
		/* Start over against the new rings. */
		rb->cleaning = 0;
	}
	join_try(rb);
}

int rebalance_busy(const struct rebalance *rb)
{
	return rb->busy;
}

struct rebalance *rebalance_new(struct ev_loop *loop,
				const struct node_config *cfg,
				struct cluster *cl, struct repl *repl,
				struct store *st, struct peers *peers,
				const struct rk_logger *lg)
{
	struct rebalance *rb = calloc(1, sizeof(*rb));
	if (!rb)
		return NULL;
	rb->loop = loop;
	rb->cfg = cfg;
	rb->cl = cl;
	rb->repl = repl;
	rb->st = st;
	rb->peers = peers;
	rb->lg = lg;
	struct cluster_member self;
	cluster_members(cl, &self, 1);
	rb->self = self.id;
	rb->ring_changed_ms = mono_ms();
	ev_timer_init(&rb->tick, on_tick, REBALANCE_TICK, REBALANCE_TICK);
	rb->tick.data = rb;
	ev_timer_start(loop, &rb->tick);
	ev_timer_init(&rb->settle_timer, on_settle_timer, SETTLE_RETRY_S, 0.0);
	rb->settle_timer.data = rb;
	return rb;
}

void rebalance_free(struct rebalance *rb)
{
	if (!rb)
		return;
	ev_timer_stop(rb->loop, &rb->tick);
	ev_timer_stop(rb->loop, &rb->settle_timer);
	free(rb);
}
