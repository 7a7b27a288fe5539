/* sim_repl.c: quorum replication (repl/) on the simulated network, and the
 * tests that hold it to its promises (shared/TESTING.md):
 *
 *   - no acknowledged QUORUM write is lost;
 *   - every read returns a value some client wrote (or nothing);
 *   - a QUORUM read returns every QUORUM write acknowledged before it
 *     began, or something newer (reads ask only R replicas: quorums must
 *     still intersect);
 *   - after heal, every replica holds the same (value, timestamp) for
 *     every key.
 *
 * Each node runs the real repl module over the real peer codec
 * (proto/peer_wire.c) on lossy, duplicating, reordering datagrams.  Its
 * storage is a last-writer-wins table whose op-log lives on the node's sim
 * disk: records reach the disk at once but count as durable only at the
 * next simulated fsync, and a kill cuts the disk back to what was synced,
 * so a write acknowledged before its fsync would be lost and caught.
 * Hints live on the same disk.  Liveness comes from an oracle the test
 * drives (what gossip would report, with a delay, and sometimes wrong):
 * this test is about replication, gossip has its own.
 *
 * Usage: sim_repl_test [chaos|power]; RINGKV_SEED picks the first seed
 * and RINGKV_SIM_SEEDS how many run (default 200; printed, so a failure
 * replays).
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "frame.h"
#include "hash.h"
#include "logfmt.h"
#include "peer_wire.h"
#include "record.h"
#include "repl.h"
#include "rng.h"
#include "sim.h"
#include "table.h"

#define CH_REPL 10
#define MAX_NODES 9
#define FSYNC_MS 40      /* simulated fsync period: a slow disk */
#define HINT_PREFIX 17
#define CLOCK_WINDOW_MS 200

/* ------------------------------------------------------------------ */
/* what the test records                                               */

enum hop { H_WRITE, H_READ };

struct hist {
	enum hop op;
	int key;
	char value[32];      /* written, or read ("" = not found) */
	int status;          /* 0, RK_E* */
	int maybe;           /* a failed write that may have applied */
	rk_ts ts;            /* write stamp, or read record's */
	int done;
	uint64_t t0, t1;     /* simulated ms: issued, answered */
};

struct test {
	struct rk_rng rng;
	struct hist *h;
	size_t nh, caph;
	struct ring *ring;
	uint64_t **tokens;
	int n, rf;
	int failures;
	char why[512];
	uint64_t ceiling[MAX_NODES + 1]; /* each node's clock ceiling file */
	/* repl config knobs for the scenario */
	uint64_t anti_entropy_ms;
};

static struct test T;

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	if (!T.failures)
		vsnprintf(T.why, sizeof(T.why), fmt, ap);
	va_end(ap);
	T.failures++;
}

/* ------------------------------------------------------------------ */
/* one node                                                            */

struct pending_io {
	struct pending_io *next;
	int is_scan;
	uint64_t token, from, cursor;
	uint32_t max_bytes;
	int digest;
	struct repl_rangeset *rs;
};

struct rnode {
	struct sim *sim;
	int node;
	struct repl *repl;
	struct rk_table *table;
	struct rk_hlc clock;
	uint64_t next_lsn;
	uint64_t durable_lsn;   /* synced */
	size_t durable_bytes;   /* of the disk */
	uint64_t fsync_at;      /* UINT64_MAX when nothing to sync */
	struct pending_io *io, *io_tail;
	int in_repl;            /* inside a repl call: defer inputs */
};

static uint64_t rt_now(void *ctx)
{
	struct rnode *n = ctx;
	return sim_now(n->sim);
}

static uint64_t rt_random(void *ctx)
{
	struct rnode *n = ctx;
	return sim_node_rand(n->sim, n->node);
}

static void rearm(struct rnode *n)
{
	uint64_t at = repl_next_deadline(n->repl);
	if (n->fsync_at < at)
		at = n->fsync_at;
	if (n->io)
		at = sim_now(n->sim);
	sim_set_timer(n->sim, n->node, at);
}

static void rt_send(void *ctx, uint64_t to, const struct repl_msg *m)
{
	struct rnode *n = ctx;
	struct rk_buf b;
	rk_buf_init(&b);
	struct peer_msg pm = {.op = PEER_OP_REPL, .repl = *m};
	if (peer_wire_encode(&b, &pm) == 0)
		sim_send(n->sim, n->node, (int)to, CH_REPL, 0,
			 b.data + RK_FRAME_HDR, b.len - RK_FRAME_HDR);
	rk_buf_destroy(&b);
}

static void rt_reply(void *ctx, uint64_t client, const struct repl_result *r)
{
	struct rnode *rn = ctx;
	struct hist *h = &T.h[client - 1];
	h->done = 1;
	h->t1 = sim_now(rn->sim);
	h->status = r->status;
	h->maybe = r->maybe_applied;
	if (h->op == H_WRITE) {
		h->ts = r->ts;
		return;
	}
	if (r->status == 0) {
		size_t n = r->rec.vlen < sizeof(h->value) - 1
				   ? r->rec.vlen
				   : sizeof(h->value) - 1;
		memcpy(h->value, r->rec.val, n);
		h->value[n] = 0;
		h->ts = r->rec.ts;
	}
}

/* The disk: logfmt records; data (value/tombstone) and hints. */
static void disk_append(struct rnode *n, const struct rk_logrec *r)
{
	struct rk_buf *d = sim_disk(n->sim, n->node);
	rk_logrec_encode(d, r);
	if (n->fsync_at == UINT64_MAX)
		n->fsync_at = sim_now(n->sim) + FSYNC_MS;
}

static int install(struct rnode *n, const struct repl_record *r)
{
	struct rk_table_pos pos;
	struct rk_rec *cur = rk_table_find(n->table, r->key, r->klen, &pos);
	if (cur && rk_ts_cmp(cur->ts, r->ts) >= 0)
		return 0;
	struct rk_rec *rec = rk_rec_new(r->type, r->ts, r->key,
					(uint16_t)r->klen, r->val,
					r->type == REPL_REC_VALUE ? (uint32_t)r->vlen
								  : 0);
	struct rk_rec *old;
	rk_table_set(n->table, &pos, rec, &old);
	free(old);
	return 1;
}

static int st_get(void *ctx, const uint8_t *key, size_t klen,
		  struct repl_record *out)
{
	struct rnode *n = ctx;
	struct rk_rec *r = rk_table_get(n->table, key, klen);
	if (!r)
		return RK_ENOT_FOUND;
	*out = (struct repl_record){r->type, r->ts, rk_rec_key(r), r->klen,
				    rk_rec_value(r), r->vlen};
	return 0;
}

static int st_apply(void *ctx, const struct repl_record *r, uint64_t *lsn)
{
	struct rnode *n = ctx;
	rk_hlc_observe(&n->clock, r->ts.hlc);
	if (!install(n, r))
		return 0;
	*lsn = n->next_lsn++;
	struct rk_logrec lr = {.type = r->type, .lsn = *lsn, .ts = r->ts,
			       .key = r->key, .klen = (uint16_t)r->klen,
			       .val = r->val,
			       .vlen = r->type == REPL_REC_VALUE ? (uint32_t)r->vlen
								 : 0};
	disk_append(n, &lr);
	return 1;
}

static int st_stamp(void *ctx, rk_ts *out)
{
	struct rnode *n = ctx;
	/* Virtual milliseconds, skewed per node, as wall clocks are. */
	*out = rk_hlc_tick(&n->clock, sim_now(n->sim) + 1000 * (uint64_t)n->node);
	/* The clock ceiling, synced at once (its own small file). */
	if (out->hlc >= T.ceiling[n->node])
		T.ceiling[n->node] = rk_hlc_ceiling(out->hlc, CLOCK_WINDOW_MS);
	return 0;
}

static uint64_t st_durable(void *ctx)
{
	struct rnode *n = ctx;
	return n->durable_lsn;
}

static uint64_t st_log_end(void *ctx)
{
	struct rnode *n = ctx;
	return n->next_lsn;
}

static void st_hint_save(void *ctx, uint64_t target,
			 const struct repl_record *r, uint64_t created)
{
	struct rnode *n = ctx;
	uint8_t v[HINT_PREFIX + 64];
	size_t vlen = r->type == REPL_REC_VALUE ? r->vlen : 0;
	if (vlen > 64)
		return;
	v[0] = r->type;
	rk_put_le64(v + 1, target);
	rk_put_le64(v + 9, created);
	if (vlen)
		memcpy(v + HINT_PREFIX, r->val, vlen);
	struct rk_logrec lr = {.type = RK_REC_HINT, .ts = r->ts, .key = r->key,
			       .klen = (uint16_t)r->klen, .val = v,
			       .vlen = (uint32_t)(HINT_PREFIX + vlen)};
	disk_append(n, &lr);
}

static void io_push(struct rnode *n, struct pending_io *q)
{
	if (n->io_tail)
		n->io_tail->next = q;
	else
		n->io = q;
	n->io_tail = q;
}

static void st_log_read(void *ctx, uint64_t token, uint64_t from,
			uint64_t cursor, const struct repl_range *ranges,
			size_t nr, uint32_t max_bytes, int digest)
{
	(void)cursor;
	struct rnode *n = ctx;
	struct pending_io *q = calloc(1, sizeof(*q));
	q->token = token;
	q->from = from;
	q->max_bytes = max_bytes;
	q->digest = digest;
	q->rs = repl_rangeset_new(ranges, nr);
	io_push(n, q);
}

static void st_scan(void *ctx, uint64_t token, uint64_t cursor,
		    const struct repl_range *ranges, size_t nr,
		    uint32_t max_bytes)
{
	struct rnode *n = ctx;
	struct pending_io *q = calloc(1, sizeof(*q));
	q->is_scan = 1;
	q->token = token;
	q->cursor = cursor;
	q->max_bytes = max_bytes;
	q->rs = repl_rangeset_new(ranges, nr);
	io_push(n, q);
}

static const struct repl_storage sim_storage = {
	.get = st_get, .apply = st_apply, .stamp = st_stamp,
	.durable_lsn = st_durable, .log_end = st_log_end,
	.hint_save = st_hint_save, .log_read = st_log_read, .scan = st_scan,
};

/* A stream batch being filled from the table. */
struct fill {
	struct repl_record *recs;
	size_t k, cap;
	const struct repl_rangeset *rs;
};

static void scan_fn(void *c, const struct rk_rec *rec)
{
	struct fill *f = c;
	if (!repl_rangeset_contains(f->rs, rk_key_hash(rk_rec_key(rec),
							rec->klen)))
		return;
	if (f->k == f->cap) {
		f->cap = f->cap ? f->cap * 2 : 64;
		f->recs = realloc(f->recs, f->cap * sizeof(*f->recs));
	}
	f->recs[f->k++] = (struct repl_record){rec->type, rec->ts,
					       rk_rec_key(rec), rec->klen,
					       rk_rec_value(rec), rec->vlen};
}

/* Serves queued log reads and scans (outside any repl call). */
static void serve_io(struct rnode *n)
{
	while (n->io) {
		struct pending_io *q = n->io;
		n->io = q->next;
		if (!n->io)
			n->io_tail = NULL;
		struct repl_record *recs = NULL;
		size_t k = 0, cap = 0, bytes = 0;
		struct rk_buf *d = sim_disk(n->sim, n->node);
		if (!q->is_scan) {
			/* The op-log, from the disk (this node has no
			 * compaction: it always reaches back). */
			uint64_t next = q->from;
			for (size_t off = 0; off < d->len && bytes < q->max_bytes;) {
				struct rk_logrec r;
				long len = rk_logrec_decode(d->data + off,
							    d->len - off, &r);
				if (len <= 0)
					break;
				off += (size_t)len;
				if (r.type == RK_REC_HINT || r.lsn < q->from)
					continue;
				next = r.lsn + 1;
				if (!repl_rangeset_contains(
					    q->rs, rk_key_hash(r.key, r.klen)))
					continue;
				if (k == cap) {
					cap = cap ? cap * 2 : 64;
					recs = realloc(recs, cap * sizeof(*recs));
				}
				recs[k++] = (struct repl_record){
					r.type, r.ts, r.key, r.klen,
					q->digest ? NULL : r.val,
					q->digest ? 0 : r.vlen};
				bytes += r.klen + r.vlen + 32;
			}
			repl_log_read_done(n->repl, q->token, 0, recs, k, next,
					   0, n->next_lsn, 0);
		} else {
			struct fill f = {NULL, 0, 0, q->rs};
			uint64_t cur = q->cursor;
			do
				cur = rk_table_scan(n->table, cur, scan_fn, &f);
			while (cur && f.k < 256);
			repl_scan_done(n->repl, q->token, 0, f.recs, f.k, cur,
				       cur == 0);
			recs = f.recs;
		}
		free(recs);
		free(q->rs);
		free(q);
	}
}

static int replay(struct rnode *n)
{
	struct rk_buf *d = sim_disk(n->sim, n->node);
	for (size_t off = 0; off < d->len;) {
		struct rk_logrec r;
		long len = rk_logrec_decode(d->data + off, d->len - off, &r);
		if (len <= 0)
			return RK_ECORRUPT;
		off += (size_t)len;
		if (r.type == RK_REC_HINT) {
			const uint8_t *v = r.val;
			struct repl_record rec = {
				v[0], r.ts, r.key, r.klen,
				v[0] == REPL_REC_VALUE ? v + HINT_PREFIX : NULL,
				r.vlen - HINT_PREFIX};
			repl_hint_restore(n->repl, rk_get_le64(v + 1), &rec,
					  rk_get_le64(v + 9));
			continue;
		}
		struct repl_record rec = {r.type, r.ts, r.key, r.klen, r.val,
					  r.vlen};
		rk_hlc_observe(&n->clock, r.ts.hlc);
		install(n, &rec);
		if (r.lsn >= n->next_lsn)
			n->next_lsn = r.lsn + 1;
	}
	n->durable_lsn = n->next_lsn - 1;
	n->durable_bytes = d->len;
	return 0;
}

static int rn_boot(struct sim *sim, int node, void *prog_ctx, void **state)
{
	(void)prog_ctx;
	struct rnode *n = calloc(1, sizeof(*n));
	n->sim = sim;
	n->node = node;
	n->table = rk_table_new(7);
	n->next_lsn = 1;
	n->fsync_at = UINT64_MAX;
	rk_hlc_init(&n->clock, (uint64_t)node);
	rk_hlc_observe(&n->clock, T.ceiling[node]);
	struct repl_config rc;
	repl_config_defaults(&rc);
	rc.self_id = (uint64_t)node;
	rc.rf = (uint32_t)T.rf;
	rc.write_timeout_ms = 500;
	rc.read_timeout_ms = 500;
	rc.anti_entropy_ms = T.anti_entropy_ms;
	rc.batch_bytes = 4096;
	struct repl_runtime rt = {.ctx = n, .log = sim_logger(sim, node),
				  .store = &sim_storage, .now_ms = rt_now,
				  .random = rt_random, .send = rt_send,
				  .reply = rt_reply};
	if (repl_new(&rc, &rt, &n->repl)) {
		free(n);
		return RK_ENOMEM;
	}
	repl_set_ring(n->repl, T.ring, NULL);
	int rc2 = replay(n);
	if (rc2) {
		repl_free(n->repl);
		rk_table_free(n->table);
		free(n);
		return rc2;
	}
	*state = n;
	rearm(n);
	return 0;
}

static void rn_recv(void *state, int from, int channel, const uint8_t *p,
		    size_t len)
{
	struct rnode *n = state;
	if (channel != CH_REPL)
		return;
	struct peer_msg m;
	struct peer_wire_msg *w;
	char err[128];
	struct peer_wire_limits lim = {1 << 20, 1024, 1 << 20};
	if (peer_wire_decode(p, len, &lim, &m, &w, err, sizeof(err)) ||
	    m.op != PEER_OP_REPL) {
		fail("n%d: undecodable message from n%d: %s", n->node, from,
		     err);
		peer_wire_msg_free(w);
		return;
	}
	repl_recv(n->repl, (uint64_t)from, &m.repl);
	peer_wire_msg_free(w);
	serve_io(n);
	rearm(n);
}

static void rn_tick(void *state)
{
	struct rnode *n = state;
	uint64_t now = sim_now(n->sim);
	if (n->fsync_at <= now) {
		n->fsync_at = UINT64_MAX;
		n->durable_bytes = sim_disk(n->sim, n->node)->len;
		n->durable_lsn = n->next_lsn - 1;
		repl_durable(n->repl, n->durable_lsn);
	}
	repl_tick(n->repl);
	serve_io(n);
	rearm(n);
}

static void rn_free(void *state)
{
	struct rnode *n = state;
	repl_free(n->repl);
	rk_table_free(n->table);
	while (n->io) {
		struct pending_io *q = n->io;
		n->io = q->next;
		free(q->rs);
		free(q);
	}
	free(n);
}

static void rn_kill(void *state)
{
	struct rnode *n = state;
	/* What was never fsynced is gone. */
	sim_disk(n->sim, n->node)->len = n->durable_bytes;
	rn_free(state);
}

static const struct sim_program repl_program = {
	.name = "repl", .boot = rn_boot, .recv = rn_recv, .tick = rn_tick,
	.kill = rn_kill, .free = rn_free,
};

/* ------------------------------------------------------------------ */
/* the test driver                                                     */

static struct rnode *node_of(struct sim *sim, int i)
{
	return sim_node_state(sim, i);
}

static void set_up(struct sim *sim, int observer, int subject, int up)
{
	struct rnode *n = node_of(sim, observer);
	if (!n)
		return;
	repl_set_up(n->repl, (uint64_t)subject, up);
	serve_io(n);
	rearm(n);
}

static void key_name(int k, char *buf, size_t n)
{
	snprintf(buf, n, "key-%d", k);
}

static void client_op(struct sim *sim, int node, enum hop op, int key,
		      int client, int seq)
{
	struct rnode *n = node_of(sim, node);
	if (!n)
		return;
	if (T.nh == T.caph) {
		T.caph = T.caph ? T.caph * 2 : 1024;
		T.h = realloc(T.h, T.caph * sizeof(*T.h));
	}
	struct hist *h = &T.h[T.nh++];
	memset(h, 0, sizeof(*h));
	h->op = op;
	h->key = key;
	h->t0 = sim_now(sim);
	char k[32];
	key_name(key, k, sizeof(k));
	if (op == H_WRITE) {
		snprintf(h->value, sizeof(h->value), "c%d-%d", client, seq);
		repl_write(n->repl, T.nh, REPL_REC_VALUE, (const uint8_t *)k,
			   strlen(k), (const uint8_t *)h->value,
			   strlen(h->value), REPL_CL_QUORUM);
	} else {
		repl_read(n->repl, T.nh, (const uint8_t *)k, strlen(k),
			  REPL_CL_QUORUM, 0);
	}
	serve_io(n);
	rearm(n);
}

static void build_ring(int n, int rf)
{
	struct ring *r;
	struct ring_config rc = {.epoch = 1, .rf_max = (uint32_t)rf};
	ring_new(NULL, 0, &rc, &r);
	T.tokens = calloc((size_t)n + 1, sizeof(*T.tokens));
	struct ring_member *m = calloc((size_t)n, sizeof(*m));
	for (int i = 1; i <= n; i++) {
		T.tokens[i] = malloc(16 * sizeof(uint64_t));
		size_t nt;
		ring_allocate_tokens(r, (uint64_t)i, 1, 16, (size_t)rf,
				     T.tokens[i], 16, &nt);
		m[i - 1] = (struct ring_member){(uint64_t)i, 1, T.tokens[i], nt};
		ring_free(r);
		ring_new(m, (size_t)i, &rc, &r);
	}
	T.ring = r;
	free(m);
}

static void free_ring(void)
{
	ring_free(T.ring);
	for (int i = 1; i <= T.n; i++)
		free(T.tokens[i]);
	free(T.tokens);
}

/* "value @ts" for a failure message; two static buffers (slot 0, 1). */
static const char *rec_str(const struct rk_rec *r, int slot)
{
	static char buf[2][96];
	if (!r)
		return "nothing";
	snprintf(buf[slot], sizeof(buf[slot]), "%s'%.*s' @%" PRIu64 ".%" PRIu64,
		 r->type == REPL_REC_VALUE ? "" : "tombstone ",
		 (int)(r->vlen < 32 ? r->vlen : 32),
		 (const char *)rk_rec_value(r), r->ts.hlc, r->ts.node);
	return buf[slot];
}

/* Every replica of every key holds the same record. */
static int converged(struct sim *sim, int keys, int report)
{
	for (int k = 0; k < keys; k++) {
		char key[32];
		key_name(k, key, sizeof(key));
		uint64_t owners[RING_RF_MAX];
		size_t no;
		ring_lookup(T.ring, rk_key_hash(key, strlen(key)),
			    (size_t)T.rf, owners, &no);
		struct rk_rec *first = NULL;
		int seen = 0;
		for (size_t i = 0; i < no; i++) {
			struct rnode *n = node_of(sim, (int)owners[i]);
			if (!n)
				return 0;
			struct rk_rec *r = rk_table_get(n->table, key, strlen(key));
			if (!seen) {
				first = r;
				seen = 1;
				continue;
			}
			int same = (!r && !first) ||
				   (r && first && rk_ts_cmp(r->ts, first->ts) == 0 &&
				    r->vlen == first->vlen &&
				    !memcmp(rk_rec_value(r), rk_rec_value(first),
					    r->vlen));
			if (!same) {
				if (report)
					fail("%s differs between replicas n%" PRIu64
					     " (%s) and n%" PRIu64 " (%s)",
					     key, owners[0], rec_str(first, 0),
					     owners[i], rec_str(r, 1));
				return 0;
			}
		}
	}
	return 1;
}

struct conv_ctx {
	int keys;
};

static int pred_converged(struct sim *sim, void *ctx)
{
	struct conv_ctx *c = ctx;
	return converged(sim, c->keys, 0);
}

static int by_ts(const void *a, const void *b)
{
	const struct hist *x = *(struct hist *const *)a;
	const struct hist *y = *(struct hist *const *)b;
	return rk_ts_cmp(x->ts, y->ts);
}

/* The promises, checked against the history and the final state. */
static void check(struct sim *sim, int keys)
{
	/* No two writes share a version, across restarts too. */
	struct hist **w = malloc((T.nh + 1) * sizeof(*w));
	size_t nw = 0;
	for (size_t i = 0; i < T.nh; i++)
		if (T.h[i].op == H_WRITE && !rk_ts_is_zero(T.h[i].ts))
			w[nw++] = &T.h[i];
	qsort(w, nw, sizeof(*w), by_ts);
	for (size_t i = 1; i < nw; i++)
		if (rk_ts_cmp(w[i - 1]->ts, w[i]->ts) == 0)
			fail("writes '%s' and '%s' were both stamped "
			     "%" PRIu64 ".%" PRIu64,
			     w[i - 1]->value, w[i]->value, w[i]->ts.hlc,
			     w[i]->ts.node);
	free(w);
	for (size_t i = 0; i < T.nh; i++) {
		struct hist *h = &T.h[i];
		if (h->op != H_READ || !h->done || h->status != 0)
			continue;
		/* A read returns a value some client wrote to that key. */
		int ok = 0;
		for (size_t j = 0; j < T.nh && !ok; j++)
			ok = T.h[j].op == H_WRITE && T.h[j].key == h->key &&
			     !strcmp(T.h[j].value, h->value);
		if (!ok)
			fail("a read of key-%d returned '%s', never written",
			     h->key, h->value);
	}
	/* Quorums intersect: a read sees every write acknowledged before it
	 * began (or a newer one). */
	for (size_t i = 0; i < T.nh && !T.failures; i++) {
		struct hist *rd = &T.h[i];
		if (rd->op != H_READ || !rd->done ||
		    (rd->status != 0 && rd->status != RK_ENOT_FOUND))
			continue;
		for (size_t j = 0; j < T.nh; j++) {
			struct hist *wr = &T.h[j];
			if (wr->op != H_WRITE || wr->key != rd->key ||
			    !wr->done || wr->status != 0 || wr->t1 >= rd->t0)
				continue;
			if (rk_ts_cmp(rd->ts, wr->ts) < 0) {
				fail("a QUORUM read of key-%d at %" PRIu64
				     " ms returned %s, older than '%s' "
				     "acknowledged at %" PRIu64 " ms",
				     rd->key, rd->t0,
				     rd->status ? "nothing" : rd->value,
				     wr->value, wr->t1);
				break;
			}
		}
	}
	for (int k = 0; k < keys; k++) {
		char key[32];
		key_name(k, key, sizeof(key));
		uint64_t owners[RING_RF_MAX];
		size_t no;
		ring_lookup(T.ring, rk_key_hash(key, strlen(key)),
			    (size_t)T.rf, owners, &no);
		struct rnode *n = node_of(sim, (int)owners[0]);
		struct rk_rec *r = n ? rk_table_get(n->table, key, strlen(key))
				     : NULL;
		for (size_t i = 0; i < T.nh; i++) {
			struct hist *h = &T.h[i];
			if (h->op != H_WRITE || h->key != k || !h->done ||
			    h->status != 0)
				continue;
			/* An acknowledged write is there, or something
			 * newer is. */
			if (!r || rk_ts_cmp(r->ts, h->ts) < 0)
				fail("acknowledged write '%s' to %s lost (held: "
				     "%s)",
				     h->value, key, r ? "older" : "nothing");
		}
	}
}

/* One run: clients write and read through random nodes while nodes die
 * and come back, the network partitions, drops, duplicates and reorders;
 * then everything heals and the promises are checked. */
static int run_chaos(uint64_t seed, int verbose, int power)
{
	memset(&T, 0, sizeof(T));
	rk_rng_seed(&T.rng, seed);
	T.n = 5;
	T.rf = 3;
	T.anti_entropy_ms = 3000;
	const int keys = 12, clients = 8;
	build_ring(T.n, T.rf);
	struct sim_config sc;
	sim_config_defaults(&sc);
	sc.n_nodes = T.n;
	sc.seed = seed;
	sc.program = &repl_program;
	sc.link.drop = 0.05;
	sc.link.dup = 0.02;
	sc.link.reorder = 0.05;
	sc.link.reorder_ms = 20;
	struct sim *sim;
	if (sim_new(&sc, &sim)) {
		fprintf(stderr, "sim_new failed\n");
		return 1;
	}
	for (int a = 1; a <= T.n; a++)
		for (int b = 1; b <= T.n; b++)
			if (a != b)
				set_up(sim, a, b, 1);
	int seq[16] = {0};
	int partitioned = 0;
	/* 40 s of chaos, in 20 ms steps. */
	for (int step = 0; step < 2000 && !T.failures; step++) {
		for (int c = 0; c < clients; c++) {
			if (rk_rng_below(&T.rng, 4))
				continue;
			int node = 1 + (int)rk_rng_below(&T.rng, (uint64_t)T.n);
			int key = (int)rk_rng_below(&T.rng, (uint64_t)keys);
			enum hop op = rk_rng_below(&T.rng, 2) ? H_WRITE : H_READ;
			client_op(sim, node, op, key, c, ++seq[c]);
		}
		uint64_t dice = rk_rng_below(&T.rng, 1000);
		int victim = 1 + (int)rk_rng_below(&T.rng, (uint64_t)T.n);
		if (dice < 4 && sim_is_up(sim, victim)) {
			/* Sometimes two at once (a rack loses power): then
			 * a write acknowledged before its fsync on both
			 * would be lost. */
			int second = dice < 2 || power ? 1 + victim % T.n : 0;
			sim_kill(sim, victim);
			if (second && sim_is_up(sim, second))
				sim_kill(sim, second);
			else
				second = 0;
			for (int o = 1; o <= T.n; o++) {
				set_up(sim, o, victim, 0);
				if (second)
					set_up(sim, o, second, 0);
			}
		} else if (dice < 10 && !sim_is_up(sim, victim)) {
			sim_revive(sim, victim);
			for (int o = 1; o <= T.n; o++) {
				set_up(sim, o, victim, 1);
				set_up(sim, victim, o, sim_is_up(sim, o));
			}
		} else if (dice < 12 && !partitioned) {
			int side[2] = {victim, 1 + victim % T.n};
			sim_partition_sets(sim, side, 2);
			partitioned = 1;
			/* Each side sees the other down, mostly. */
			for (int a = 1; a <= T.n; a++)
				for (int b = 1; b <= T.n; b++) {
					int same = (a == side[0] || a == side[1]) ==
						   (b == side[0] || b == side[1]);
					if (a != b && !same &&
					    rk_rng_below(&T.rng, 4))
						set_up(sim, a, b, 0);
				}
		} else if (dice < 20 && partitioned) {
			sim_heal_all(sim);
			partitioned = 0;
			for (int a = 1; a <= T.n; a++)
				for (int b = 1; b <= T.n; b++)
					if (a != b)
						set_up(sim, a, b,
						       sim_is_up(sim, b));
		} else if (dice < 22) {
			/* A false suspicion. */
			int o = 1 + (int)rk_rng_below(&T.rng, (uint64_t)T.n);
			if (o != victim)
				set_up(sim, o, victim, 0);
		}
		int rc = sim_run_for(sim, 20);
		if (rc)
			fail("invariant %d", rc);
	}
	/* The end: a node down and one cut off while clients write on, so
	 * that only hints, catch-up and anti-entropy can bring the replicas
	 * together after the heal (no client touches the keys again). */
	for (int i = 1; i <= T.n; i++)
		if (!sim_is_up(sim, i)) {
			sim_revive(sim, i);
			for (int o = 1; o <= T.n; o++)
				set_up(sim, o, i, 1);
		}
	sim_heal_all(sim);
	int down = 1 + (int)rk_rng_below(&T.rng, (uint64_t)T.n);
	int cut = 1 + down % T.n;
	sim_kill(sim, down);
	int side[1] = {cut};
	sim_partition_sets(sim, side, 1);
	for (int o = 1; o <= T.n; o++) {
		set_up(sim, o, down, 0);
		if (o != cut)
			set_up(sim, o, cut, 0);
		set_up(sim, cut, o, 0);
	}
	for (int step = 0; step < 100; step++) {
		for (int c = 0; c < clients; c++) {
			int node = 1 + (int)rk_rng_below(&T.rng, (uint64_t)T.n);
			int key = (int)rk_rng_below(&T.rng, (uint64_t)keys);
			client_op(sim, node, H_WRITE, key, c, ++seq[c]);
		}
		sim_run_for(sim, 20);
	}
	/* Heal: everyone back, every link whole, every view right. */
	sim_heal_all(sim);
	struct sim_link calm = sc.link;
	calm.drop = calm.dup = calm.reorder = 0;
	sim_set_default_link(sim, &calm);
	for (int i = 1; i <= T.n; i++)
		if (!sim_is_up(sim, i))
			sim_revive(sim, i);
	for (int a = 1; a <= T.n; a++)
		for (int b = 1; b <= T.n; b++)
			if (a != b)
				set_up(sim, a, b, 1);
	struct conv_ctx cc = {keys};
	sim_set_check_interval(sim, 100);
	int ok = sim_run_until(sim, pred_converged, &cc, 30000);
	if (ok != 1)
		converged(sim, keys, 1); /* names the key */
	check(sim, keys);
	size_t writes = 0, acked = 0, reads = 0;
	for (size_t i = 0; i < T.nh; i++) {
		writes += T.h[i].op == H_WRITE;
		acked += T.h[i].op == H_WRITE && T.h[i].status == 0;
		reads += T.h[i].op == H_READ && T.h[i].done;
	}
	if (verbose || T.failures)
		fprintf(stderr,
			"seed %" PRIu64 ": %zu writes (%zu acknowledged), %zu "
			"reads, converged after heal: %s%s%s\n",
			seed, writes, acked, reads, ok == 1 ? "yes" : "NO",
			T.failures ? "; FAILED: " : "",
			T.failures ? T.why : "");
	sim_free(sim);
	free_ring();
	free(T.h);
	return T.failures ? 1 : 0;
}

int main(int argc, char **argv)
{
	/* chaos: the mix above; power: every crash takes two nodes at once,
	 * so an acknowledgement before the fsync shows as a lost write. */
	const char *scenario = argc > 1 ? argv[1] : "chaos";
	int power = strcmp(scenario, "power") == 0;
	if (!power && strcmp(scenario, "chaos") != 0) {
		fprintf(stderr, "unknown scenario %s\n", scenario);
		return 2;
	}
	uint64_t seed = rk_test_seed("sim_repl");
	const char *ns = getenv("RINGKV_SIM_SEEDS");
	int seeds = ns ? atoi(ns) : 200;
	int failed = 0;
	for (int i = 0; i < seeds; i++) {
		uint64_t s = seed + (uint64_t)i;
		if (run_chaos(s, i == 0, power)) {
			fprintf(stderr, "replay with RINGKV_SEED=%" PRIu64
					" RINGKV_SIM_SEEDS=1\n",
				s);
			failed++;
		}
	}
	fprintf(stderr, "sim_repl %s: %d of %d seeds failed\n", scenario,
		failed, seeds);
	return failed ? 1 : 0;
}
