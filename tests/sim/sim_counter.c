/* sim_counter.c: CRDT counters (repl/counter.c over repl/) on the simulated
 * network, held to the promise of shared/TESTING.md:
 *
 *   each acknowledged add is counted exactly once; retries with the same
 *   op id are idempotent; during the run every read lies between the sum
 *   of the acknowledged adds and that plus the unacknowledged ones; after
 *   heal every replica of every counter holds the identical state whose
 *   value is the exact sum of every add attempted.
 *
 * Many clients add to many counters through random coordinators while
 * the network drops, duplicates (requests included: the owner sees the
 * same add twice) and reorders datagrams, nodes crash and restart (a
 * crash loses what was not fsynced), the cluster partitions and gossip's
 * view is sometimes wrong.  A client retries an add whose outcome it does
 * not know (no answer in time, a failure) with the same op id, through
 * any node, until it is acknowledged.  After the chaos everything heals,
 * the clients finish their retries, and within 10 simulated seconds every
 * replica must hold the same state with the exact sum.  An invariant runs
 * after every step: no node ever holds more increments (or decrements)
 * than clients attempted.
 *
 * Each node runs the real repl module over the real peer codec; its
 * storage mirrors node/store.c's counter path (the join rule and window
 * of repl/counter.h and common/crdt.h) on an op-log kept on the sim disk,
 * durable only at the next simulated fsync.
 *
 * Usage: sim_counter_test [chaos|power]; RINGKV_SEED picks the first seed
 * and RINGKV_SIM_SEEDS how many run (default 100; printed, so a failure
 * replays).
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "counter.h"
#include "crdt.h"
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
#define FSYNC_MS 40 /* simulated fsync period */
#define HINT_PREFIX 17
#define CLIENT_TIMEOUT_MS 1500 /* a client gives up waiting and retries */
#define RETRY_DELAY_MS 100
/* Wall clocks: the op ids carry real-looking times; nodes are skewed. */
#define EPOCH_MS 1700000000000ull
#define SETTLE_MS 10000 /* the bound after heal */

/* ------------------------------------------------------------------ */
/* what the test records                                               */

/* One add, from first attempt to acknowledgement. */
struct add {
	int client, key;
	int64_t delta;
	struct crdt_opid op;
	uint64_t invoked; /* first attempt */
	uint64_t acked;	  /* time of the first OK, 0 while unknown */
	uint64_t sent_at; /* latest attempt */
	uint64_t attempt; /* handle of the latest attempt */
	int waiting;	  /* an attempt is out */
	uint32_t attempts;
	int duplicate_seen;
};

/* A read, checked when it completes. */
struct read {
	int key;
	enum repl_cl cl;
	uint64_t invoked, done_at;
	int done, status;
	int64_t value;
};

/* A reply handle: an add attempt or a read. */
struct handle {
	int is_read;
	size_t idx;
};

struct test {
	struct rk_rng rng;
	struct add *adds;
	size_t nadds, capadds;
	struct read *reads;
	size_t nreads, capreads;
	struct handle *h;
	size_t nh, caph;
	struct ring *ring;
	uint64_t **tokens;
	int n, rf, keys, clients;
	size_t *current; /* per client: its add in progress, or SIZE_MAX */
	int failures;
	char why[512];
	uint64_t dups, retries;
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

static void key_name(int k, char *buf, size_t n)
{
	snprintf(buf, n, "counter-%d", k);
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

/* An add of ours waiting for its fsync (node/store.c, "Adds wait for
 * their fsync"). */
struct pend {
	uint64_t lsn;
	int key_len;
	char key[32];
	rk_ts ts;
	uint8_t delta[CRDT_DELTA_SIZE];
};

struct cnode {
	struct sim *sim;
	int node;
	struct repl *repl;
	struct rk_table *table;
	struct rk_hlc clock;
	uint64_t next_lsn;
	uint64_t durable_lsn;
	size_t durable_bytes;
	uint64_t fsync_at;
	struct pending_io *io, *io_tail;
	struct crdt_dedup *dedup;
	struct crdt_counter *scratch;
	uint8_t *cbuf;
	size_t cbuf_cap;
	uint8_t dbuf[CRDT_DELTA_SIZE];
	struct pend *pend;
	size_t npend, cappend;
};

static uint64_t wall(const struct cnode *n)
{
	return EPOCH_MS + sim_now(n->sim) + 1000 * (uint64_t)n->node;
}

static uint64_t rt_now(void *ctx)
{
	struct cnode *n = ctx;
	return sim_now(n->sim);
}

static uint64_t rt_random(void *ctx)
{
	struct cnode *n = ctx;
	return sim_node_rand(n->sim, n->node);
}

static void rearm(struct cnode *n)
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
	struct cnode *n = ctx;
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
	struct cnode *n = ctx;
	struct handle *h = &T.h[client - 1];
	uint64_t now = sim_now(n->sim);
	if (h->is_read) {
		struct read *rd = &T.reads[h->idx];
		rd->done = 1;
		rd->done_at = now;
		rd->status = r->status;
		rd->value = r->value;
		return;
	}
	struct add *a = &T.adds[h->idx];
	if (r->status == 0) {
		if (!a->acked)
			a->acked = now;
		a->duplicate_seen |= r->duplicate;
		T.dups += r->duplicate;
	} else if (r->status != RK_EUNAVAILABLE && r->status != RK_ETIMEOUT &&
		   r->status != RK_ESHUTTING_DOWN) {
		fail("add %s%+" PRId64 " by client %d failed with %s: %s",
		     "counter", a->delta, a->client, rk_errname(r->status),
		     r->detail ? r->detail : "");
	}
	if (a->attempt == client)
		a->waiting = 0; /* the latest attempt is answered */
}

/* The disk: logfmt records (counter states, deltas, hints). */
static void disk_append(struct cnode *n, const struct rk_logrec *r)
{
	struct rk_buf *d = sim_disk(n->sim, n->node);
	rk_logrec_encode(d, r);
	if (n->fsync_at == UINT64_MAX)
		n->fsync_at = sim_now(n->sim) + FSYNC_MS;
}

static uint64_t log_rec(struct cnode *n, uint8_t type, const uint8_t *key,
			size_t klen, const uint8_t *val, size_t vlen, rk_ts ts)
{
	uint64_t lsn = n->next_lsn++;
	struct rk_logrec lr = {.type = type,
			       .lsn = lsn,
			       .ts = ts,
			       .key = key,
			       .klen = (uint16_t)klen,
			       .val = val,
			       .vlen = (uint32_t)vlen};
	disk_append(n, &lr);
	return lsn;
}

/* Installs n->scratch as key's counter (as node/store.c does). */
static void install_scratch(struct cnode *n, struct rk_table_pos *pos,
			    const uint8_t *key, size_t klen, rk_ts ts)
{
	size_t sz = crdt_encoded_size(n->scratch);
	if (sz > n->cbuf_cap) {
		n->cbuf = realloc(n->cbuf, sz);
		n->cbuf_cap = sz;
	}
	crdt_encode(n->scratch, n->cbuf);
	struct rk_rec *rec = rk_rec_new(RK_REC_COUNTER, ts, key, (uint16_t)klen,
					n->cbuf, (uint32_t)sz);
	struct rk_rec *old;
	rk_table_set(n->table, pos, rec, &old);
	free(old);
}

/* Merges counter bytes by the join rule; 1 when the table changed. */
static int install_counter(struct cnode *n, const uint8_t *key, size_t klen,
			   const uint8_t *val, size_t vlen, rk_ts ts,
			   struct crdt_opid *op)
{
	struct rk_table_pos pos;
	struct rk_rec *cur = rk_table_find(n->table, key, klen, &pos);
	enum counter_join j =
	    counter_join_rule(cur != NULL, cur && cur->type == RK_REC_COUNTER,
			      cur ? cur->ts : (rk_ts){0, 0}, 1, ts);
	int rc;
	if (j == COUNTER_MERGE) {
		if (counter_load(n->scratch, rk_rec_value(cur), cur->vlen))
			return RK_ECORRUPT;
		rc = counter_merge_bytes(n->scratch, val, vlen, op);
		if (rc <= 0)
			return rc;
		if (rk_ts_cmp(cur->ts, ts) > 0)
			ts = cur->ts;
	} else {
		crdt_reset(n->scratch);
		rc = counter_merge_bytes(n->scratch, val, vlen, op);
		if (rc < 0)
			return rc;
	}
	install_scratch(n, &pos, key, klen, ts);
	return 1;
}

static int st_get(void *ctx, const uint8_t *key, size_t klen,
		  struct repl_record *out)
{
	struct cnode *n = ctx;
	struct rk_rec *r = rk_table_get(n->table, key, klen);
	if (!r)
		return RK_ENOT_FOUND;
	*out = (struct repl_record){r->type == RK_REC_COUNTER ? REPL_REC_COUNTER
							      : r->type,
				    r->ts,
				    rk_rec_key(r),
				    r->klen,
				    rk_rec_value(r),
				    r->vlen};
	return 0;
}

static int st_apply(void *ctx, const struct repl_record *r, uint64_t *lsn)
{
	struct cnode *n = ctx;
	rk_hlc_observe(&n->clock, r->ts.hlc);
	if (r->type != REPL_REC_COUNTER) {
		fail("n%d: a register record in a counters-only test", n->node);
		return RK_EINVALID;
	}
	struct crdt_opid op;
	int changed =
	    install_counter(n, r->key, r->klen, r->val, r->vlen, r->ts, &op);
	if (changed < 0) {
		fail("n%d: counter bytes refused: %s", n->node,
		     rk_strerror(changed));
		return changed;
	}
	int fresh =
	    !crdt_opid_is_zero(&op) && crdt_dedup_insert(n->dedup, &op) == 0;
	if (!changed && !fresh)
		return 0;
	if (counter_form(r->val, r->vlen) == COUNTER_FORM_DELTA) {
		*lsn = log_rec(n, RK_REC_COUNTER_OP, r->key, r->klen, r->val,
			       r->vlen, r->ts);
	} else {
		struct rk_rec *cur = rk_table_get(n->table, r->key, r->klen);
		*lsn = log_rec(n, RK_REC_COUNTER, r->key, r->klen,
			       rk_rec_value(cur), cur->vlen, cur->ts);
	}
	return 1;
}

static int st_stamp(void *ctx, rk_ts *out)
{
	struct cnode *n = ctx;
	*out = rk_hlc_tick(&n->clock, wall(n));
	return 0;
}

/* Shows the adds whose fsync came. */
static void settle(struct cnode *n)
{
	size_t k = 0;
	while (k < n->npend && n->pend[k].lsn <= n->durable_lsn) {
		struct pend *p = &n->pend[k++];
		struct crdt_opid op;
		install_counter(n, (const uint8_t *)p->key, (size_t)p->key_len,
				p->delta, CRDT_DELTA_SIZE, p->ts, &op);
	}
	if (!k)
		return; /* pend may be NULL: memmove must not see it */
	memmove(n->pend, n->pend + k, (n->npend - k) * sizeof(*n->pend));
	n->npend -= k;
}

static int st_counter_add(void *ctx, const uint8_t *key, size_t klen,
			  int64_t delta, const struct crdt_opid *op,
			  struct repl_record *out, uint64_t *lsn,
			  int64_t *value, char *why, size_t whylen)
{
	struct cnode *n = ctx;
	struct rk_table_pos pos;
	struct rk_rec *cur = rk_table_find(n->table, key, klen, &pos);
	if (cur)
		counter_load(n->scratch, rk_rec_value(cur), cur->vlen);
	else
		crdt_reset(n->scratch);
	rk_ts held = cur ? cur->ts : (rk_ts){0, 0};
	int have = cur != NULL;
	for (size_t i = n->npend; i-- > 0;)
		if ((size_t)n->pend[i].key_len == klen &&
		    !memcmp(n->pend[i].key, key, klen)) {
			struct crdt_delta pd;
			crdt_delta_decode(n->pend[i].delta, CRDT_DELTA_SIZE,
					  &pd);
			crdt_apply_delta(n->scratch, &pd);
			have = 1;
			held = n->pend[i].ts;
			break;
		}
	*out = (struct repl_record){
	    .type = REPL_REC_COUNTER, .key = key, .klen = klen};
	int known = crdt_dedup_check(n->dedup, op, wall(n));
	if (known == 1) {
		struct crdt_delta d = {.gen = crdt_generation(n->scratch),
				       .op = *op};
		d.e.node = (uint64_t)n->node;
		if (have && crdt_entry_get(n->scratch, d.e.node, &d.e.incr,
					   &d.e.decr) == 0) {
			crdt_delta_encode(&d, n->dbuf);
			out->val = n->dbuf;
			out->vlen = CRDT_DELTA_SIZE;
			out->ts = held;
		}
		crdt_value(n->scratch, value);
		*lsn = n->next_lsn - 1;
		return 1;
	}
	if (known < 0) {
		snprintf(why, whylen, "refused by the window");
		return RK_EINVALID;
	}
	struct crdt_delta d;
	int rc = crdt_add(n->scratch, (uint64_t)n->node, delta, op, &d);
	if (rc)
		return rc;
	rk_ts ts;
	st_stamp(n, &ts);
	crdt_delta_encode(&d, n->dbuf);
	*lsn = log_rec(n, RK_REC_COUNTER_OP, key, klen, n->dbuf,
		       CRDT_DELTA_SIZE, ts);
	crdt_dedup_insert(n->dedup, op);
	if (n->npend == n->cappend) {
		n->cappend = n->cappend ? n->cappend * 2 : 64;
		n->pend = realloc(n->pend, n->cappend * sizeof(*n->pend));
	}
	struct pend *p = &n->pend[n->npend++];
	p->lsn = *lsn;
	p->key_len = (int)klen;
	memcpy(p->key, key, klen);
	p->ts = ts;
	memcpy(p->delta, n->dbuf, CRDT_DELTA_SIZE);
	crdt_value(n->scratch, value);
	out->val = n->dbuf;
	out->vlen = CRDT_DELTA_SIZE;
	out->ts = ts;
	return 0;
}

static uint64_t st_durable(void *ctx)
{
	struct cnode *n = ctx;
	return n->durable_lsn;
}

static uint64_t st_log_end(void *ctx)
{
	struct cnode *n = ctx;
	return n->next_lsn;
}

static void st_hint_save(void *ctx, uint64_t target,
			 const struct repl_record *r, uint64_t created)
{
	struct cnode *n = ctx;
	uint8_t v[HINT_PREFIX + CRDT_DELTA_SIZE + 4096];
	size_t vlen = r->val ? r->vlen : 0;
	if (vlen > sizeof(v) - HINT_PREFIX)
		return;
	v[0] = RK_REC_COUNTER;
	rk_put_le64(v + 1, target);
	rk_put_le64(v + 9, created);
	if (vlen)
		memcpy(v + HINT_PREFIX, r->val, vlen);
	struct rk_logrec lr = {.type = RK_REC_HINT,
			       .ts = r->ts,
			       .key = r->key,
			       .klen = (uint16_t)r->klen,
			       .val = v,
			       .vlen = (uint32_t)(HINT_PREFIX + vlen)};
	disk_append(n, &lr);
}

static void io_push(struct cnode *n, struct pending_io *q)
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
	struct cnode *n = ctx;
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
	struct cnode *n = ctx;
	struct pending_io *q = calloc(1, sizeof(*q));
	q->is_scan = 1;
	q->token = token;
	q->cursor = cursor;
	q->max_bytes = max_bytes;
	q->rs = repl_rangeset_new(ranges, nr);
	io_push(n, q);
}

static const struct repl_storage sim_storage = {
    .get = st_get,
    .apply = st_apply,
    .stamp = st_stamp,
    .durable_lsn = st_durable,
    .log_end = st_log_end,
    .hint_save = st_hint_save,
    .log_read = st_log_read,
    .scan = st_scan,
    .counter_add = st_counter_add,
};

struct fill {
	struct repl_record *recs;
	size_t k, cap;
	const struct repl_rangeset *rs;
};

static void scan_fn(void *c, const struct rk_rec *rec)
{
	struct fill *f = c;
	if (!repl_rangeset_contains(f->rs,
				    rk_key_hash(rk_rec_key(rec), rec->klen)))
		return;
	if (f->k == f->cap) {
		f->cap = f->cap ? f->cap * 2 : 64;
		f->recs = realloc(f->recs, f->cap * sizeof(*f->recs));
	}
	f->recs[f->k++] = (struct repl_record){REPL_REC_COUNTER,  rec->ts,
					       rk_rec_key(rec),	  rec->klen,
					       rk_rec_value(rec), rec->vlen};
}

/* Serves queued log reads and scans (outside any repl call). */
static void serve_io(struct cnode *n)
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
			uint64_t next = q->from;
			for (size_t off = 0;
			     off < d->len && bytes < q->max_bytes;) {
				struct rk_logrec r;
				long len = rk_logrec_decode(d->data + off,
							    d->len - off, &r);
				if (len <= 0)
					break;
				off += (size_t)len;
				if (r.type == RK_REC_HINT || r.lsn < q->from)
					continue;
				/* Only what is durable leaves (see node/store.c,
				 * store_log_read). */
				if (r.lsn > n->durable_lsn)
					break;
				next = r.lsn + 1;
				if (!repl_rangeset_contains(
					q->rs, rk_key_hash(r.key, r.klen)))
					continue;
				if (k == cap) {
					cap = cap ? cap * 2 : 64;
					recs =
					    realloc(recs, cap * sizeof(*recs));
				}
				/* A counter's digest is its bytes. */
				recs[k++] = (struct repl_record){
				    REPL_REC_COUNTER, r.ts,  r.key,
				    r.klen,	      r.val, r.vlen};
				bytes += r.klen + r.vlen + 32;
			}
			repl_log_read_done(n->repl, q->token, 0, recs, k, next,
					   0, n->durable_lsn + 1, 0);
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

/* Boot: the table and the window from the disk, in log order. */
static int replay(struct cnode *n)
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
			struct repl_record rec = {REPL_REC_COUNTER,
						  r.ts,
						  r.key,
						  r.klen,
						  v + HINT_PREFIX,
						  r.vlen - HINT_PREFIX};
			repl_hint_restore(n->repl, rk_get_le64(v + 1), &rec,
					  rk_get_le64(v + 9));
			continue;
		}
		rk_hlc_observe(&n->clock, r.ts.hlc);
		struct crdt_opid op;
		if (install_counter(n, r.key, r.klen, r.val, r.vlen, r.ts,
				    &op) < 0)
			return RK_ECORRUPT;
		if (!crdt_opid_is_zero(&op))
			crdt_dedup_insert(n->dedup, &op);
		if (r.lsn >= n->next_lsn)
			n->next_lsn = r.lsn + 1;
	}
	n->durable_lsn = n->next_lsn - 1;
	n->durable_bytes = d->len;
	return 0;
}

static void cn_free(void *state)
{
	struct cnode *n = state;
	repl_free(n->repl);
	rk_table_free(n->table);
	crdt_dedup_free(n->dedup);
	crdt_free(n->scratch);
	free(n->cbuf);
	free(n->pend);
	while (n->io) {
		struct pending_io *q = n->io;
		n->io = q->next;
		free(q->rs);
		free(q);
	}
	free(n);
}

static int cn_boot(struct sim *sim, int node, void *prog_ctx, void **state)
{
	(void)prog_ctx;
	struct cnode *n = calloc(1, sizeof(*n));
	n->sim = sim;
	n->node = node;
	n->table = rk_table_new(7);
	n->next_lsn = 1;
	n->fsync_at = UINT64_MAX;
	rk_hlc_init(&n->clock, (uint64_t)node);
	struct crdt_dedup_config dc;
	crdt_dedup_config_default(&dc);
	dc.max_ids = 100000;
	dc.hash_seed = sim_node_rand(sim, node);
	crdt_dedup_new(&dc, &n->dedup);
	crdt_new(0, &n->scratch);
	struct repl_config rc;
	repl_config_defaults(&rc);
	rc.self_id = (uint64_t)node;
	rc.rf = (uint32_t)T.rf;
	rc.write_timeout_ms = 500;
	rc.read_timeout_ms = 500;
	rc.anti_entropy_ms = 3000;
	rc.batch_bytes = 4096;
	struct repl_runtime rt = {.ctx = n,
				  .log = sim_logger(sim, node),
				  .store = &sim_storage,
				  .now_ms = rt_now,
				  .random = rt_random,
				  .send = rt_send,
				  .reply = rt_reply};
	if (repl_new(&rc, &rt, &n->repl)) {
		cn_free(n);
		return RK_ENOMEM;
	}
	repl_set_ring(n->repl, T.ring, NULL);
	int rc2 = replay(n);
	if (rc2) {
		cn_free(n);
		return rc2;
	}
	crdt_dedup_expire(n->dedup, wall(n));
	*state = n;
	rearm(n);
	return 0;
}

static void cn_recv(void *state, int from, int channel, const uint8_t *p,
		    size_t len)
{
	struct cnode *n = state;
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

static void cn_tick(void *state)
{
	struct cnode *n = state;
	uint64_t now = sim_now(n->sim);
	if (n->fsync_at <= now) {
		n->fsync_at = UINT64_MAX;
		n->durable_bytes = sim_disk(n->sim, n->node)->len;
		n->durable_lsn = n->next_lsn - 1;
		settle(n);
		repl_durable(n->repl, n->durable_lsn);
	}
	repl_tick(n->repl);
	serve_io(n);
	rearm(n);
}

static void cn_kill(void *state)
{
	struct cnode *n = state;
	sim_disk(n->sim, n->node)->len = n->durable_bytes;
	cn_free(state);
}

static const struct sim_program counter_program = {
    .name = "counter",
    .boot = cn_boot,
    .recv = cn_recv,
    .tick = cn_tick,
    .kill = cn_kill,
    .free = cn_free,
};

/* ------------------------------------------------------------------ */
/* the clients                                                         */

static struct cnode *node_of(struct sim *sim, int i)
{
	return sim_node_state(sim, i);
}

static void set_up(struct sim *sim, int observer, int subject, int up)
{
	struct cnode *n = node_of(sim, observer);
	if (!n)
		return;
	repl_set_up(n->repl, (uint64_t)subject, up);
	serve_io(n);
	rearm(n);
}

static uint64_t handle_new(int is_read, size_t idx)
{
	if (T.nh == T.caph) {
		T.caph = T.caph ? T.caph * 2 : 4096;
		T.h = realloc(T.h, T.caph * sizeof(*T.h));
	}
	T.h[T.nh++] = (struct handle){is_read, idx};
	return T.nh;
}

/* Sends (again) add i through a random node that is up. */
static void add_send(struct sim *sim, size_t i)
{
	struct add *a = &T.adds[i];
	int node = 1 + (int)rk_rng_below(&T.rng, (uint64_t)T.n);
	struct cnode *n = node_of(sim, node);
	a->sent_at = sim_now(sim);
	a->attempts++;
	a->attempt = handle_new(0, i);
	a->waiting = 1;
	if (!n)
		return; /* a connection refused: the timeout retries */
	char k[32];
	key_name(a->key, k, sizeof(k));
	repl_counter_add(n->repl, a->attempt, (const uint8_t *)k, strlen(k),
			 a->delta, &a->op, REPL_CL_QUORUM);
	serve_io(n);
	rearm(n);
}

static void add_start(struct sim *sim, int client)
{
	if (T.nadds == T.capadds) {
		T.capadds = T.capadds ? T.capadds * 2 : 1024;
		T.adds = realloc(T.adds, T.capadds * sizeof(*T.adds));
	}
	size_t i = T.nadds++;
	struct add *a = &T.adds[i];
	memset(a, 0, sizeof(*a));
	a->client = client;
	a->key = (int)rk_rng_below(&T.rng, (uint64_t)T.keys);
	/* Mostly increments, some decrements. */
	a->delta = rk_rng_below(&T.rng, 5)
		       ? 1 + (int64_t)rk_rng_below(&T.rng, 9)
		       : -1 - (int64_t)rk_rng_below(&T.rng, 3);
	a->invoked = sim_now(sim);
	crdt_opid_make(&a->op, EPOCH_MS + sim_now(sim),
		       rk_rng_next(&T.rng) | 1);
	T.current[client] = i;
	add_send(sim, i);
}

/* Every client: start an add when idle, retry one whose outcome is
 * unknown (no answer in time, or a failure) with the same op id. */
static void clients_step(struct sim *sim, int new_adds)
{
	uint64_t now = sim_now(sim);
	for (int c = 0; c < T.clients; c++) {
		size_t i = T.current[c];
		if (i != SIZE_MAX) {
			struct add *a = &T.adds[i];
			if (a->acked) {
				T.current[c] = SIZE_MAX;
			} else if ((!a->waiting &&
				    now >= a->sent_at + RETRY_DELAY_MS) ||
				   now >= a->sent_at + CLIENT_TIMEOUT_MS) {
				T.retries++;
				add_send(sim, i);
				continue;
			} else {
				continue;
			}
		}
		if (new_adds && rk_rng_below(&T.rng, 3) == 0)
			add_start(sim, c);
	}
}

static void read_start(struct sim *sim)
{
	if (T.nreads == T.capreads) {
		T.capreads = T.capreads ? T.capreads * 2 : 1024;
		T.reads = realloc(T.reads, T.capreads * sizeof(*T.reads));
	}
	size_t i = T.nreads++;
	struct read *r = &T.reads[i];
	memset(r, 0, sizeof(*r));
	r->key = (int)rk_rng_below(&T.rng, (uint64_t)T.keys);
	uint64_t d = rk_rng_below(&T.rng, 6);
	r->cl = d < 4 ? REPL_CL_QUORUM : d == 4 ? REPL_CL_ALL : REPL_CL_ONE;
	r->invoked = sim_now(sim);
	int node = 1 + (int)rk_rng_below(&T.rng, (uint64_t)T.n);
	struct cnode *n = node_of(sim, node);
	if (!n) {
		r->done = 1;
		r->status = RK_ECONNECT;
		return;
	}
	char k[32];
	key_name(r->key, k, sizeof(k));
	repl_counter_get(n->repl, handle_new(1, i), (const uint8_t *)k,
			 strlen(k), r->cl, 0);
	serve_io(n);
	rearm(n);
}

/* ------------------------------------------------------------------ */
/* the checks                                                          */

/* Every read: between what must be there and what may be.  A quorum
 * read must see each add acknowledged (at QUORUM) before it began; any
 * read may see only adds begun before it ended. */
static void check_reads(void)
{
	for (size_t r = 0; r < T.nreads; r++) {
		struct read *rd = &T.reads[r];
		if (!rd->done ||
		    (rd->status != 0 && rd->status != RK_ENOT_FOUND))
			continue;
		int64_t must_pos = 0, must_neg = 0, may_pos = 0, may_neg = 0;
		for (size_t i = 0; i < T.nadds; i++) {
			const struct add *a = &T.adds[i];
			if (a->key != rd->key || a->invoked > rd->done_at)
				continue;
			int acked = a->acked && a->acked < rd->invoked;
			if (a->delta > 0) {
				may_pos += a->delta;
				must_pos += acked ? a->delta : 0;
			} else {
				may_neg += a->delta;
				must_neg += acked ? a->delta : 0;
			}
		}
		int64_t lo = (rd->cl == REPL_CL_ONE ? 0 : must_pos) + may_neg;
		int64_t hi = may_pos + (rd->cl == REPL_CL_ONE ? 0 : must_neg);
		int64_t v = rd->status == 0 ? rd->value : 0;
		if (v < lo || v > hi)
			fail("a %s read of counter-%d at %" PRIu64 "..%" PRIu64
			     " ms returned %" PRId64 ", outside [%" PRId64
			     ", %" PRId64 "]",
			     rd->cl == REPL_CL_ONE   ? "ONE"
			     : rd->cl == REPL_CL_ALL ? "ALL"
						     : "QUORUM",
			     rd->key, rd->invoked, rd->done_at, v, lo, hi);
	}
}

/* No node ever holds more increments or decrements than were begun. */
static void check_no_overcount(struct sim *sim)
{
	int64_t *pos = calloc((size_t)T.keys, sizeof(*pos));
	int64_t *neg = calloc((size_t)T.keys, sizeof(*neg));
	for (size_t i = 0; i < T.nadds; i++) {
		if (T.adds[i].delta > 0)
			pos[T.adds[i].key] += T.adds[i].delta;
		else
			neg[T.adds[i].key] -= T.adds[i].delta;
	}
	struct crdt_counter *c;
	crdt_new(0, &c);
	for (int i = 1; i <= T.n && !T.failures; i++) {
		struct cnode *n = node_of(sim, i);
		if (!n)
			continue;
		for (int k = 0; k < T.keys; k++) {
			char key[32];
			key_name(k, key, sizeof(key));
			struct rk_rec *r =
			    rk_table_get(n->table, key, strlen(key));
			if (!r)
				continue;
			counter_load(c, rk_rec_value(r), r->vlen);
			uint64_t in = 0, de = 0;
			for (size_t e = 0; e < crdt_entry_count(c); e++) {
				in += crdt_entry_at(c, e).incr;
				de += crdt_entry_at(c, e).decr;
			}
			if (in > (uint64_t)pos[k] || de > (uint64_t)neg[k])
				fail("n%d holds %" PRIu64
				     " increments and %" PRIu64
				     " decrements of %s, but only %" PRId64
				     " and %" PRId64 " were begun",
				     i, in, de, key, pos[k], neg[k]);
		}
	}
	crdt_free(c);
	free(pos);
	free(neg);
}

/* What each replica holds of key, entry by entry (a failure's detail). */
static void dump_key(struct sim *sim, const char *key, const uint64_t *owners,
		     size_t no)
{
	struct crdt_counter *c;
	crdt_new(0, &c);
	for (size_t o = 0; o < no; o++) {
		struct cnode *n = node_of(sim, (int)owners[o]);
		struct rk_rec *r =
			n ? rk_table_get(n->table, key, strlen(key)) : NULL;
		fprintf(stderr, "  %s at n%" PRIu64 ":", key, owners[o]);
		if (r && counter_load(c, rk_rec_value(r), r->vlen) == 0)
			for (size_t e = 0; e < crdt_entry_count(c); e++)
				fprintf(stderr,
					" n%" PRIu64 "=+%" PRIu64 "-%" PRIu64,
					crdt_entry_at(c, e).node,
					crdt_entry_at(c, e).incr,
					crdt_entry_at(c, e).decr);
		fprintf(stderr, "\n");
	}
	crdt_free(c);
}

/* Every replica of every counter holds the same state, whose value is the
 * exact sum of every add. */
static int converged(struct sim *sim, int report)
{
	for (size_t i = 0; i < T.nadds; i++)
		if (!T.adds[i].acked) {
			if (report)
				fail("an add to counter-%d was never "
				     "acknowledged (%u attempts)",
				     T.adds[i].key, T.adds[i].attempts);
			return 0;
		}
	int ok = 1;
	struct crdt_counter *first, *c;
	crdt_new(0, &first);
	crdt_new(0, &c);
	for (int k = 0; k < T.keys && ok; k++) {
		int64_t want = 0;
		for (size_t i = 0; i < T.nadds; i++)
			if (T.adds[i].key == k)
				want += T.adds[i].delta;
		char key[32];
		key_name(k, key, sizeof(key));
		uint64_t owners[RING_RF_MAX];
		size_t no;
		ring_lookup(T.ring, rk_key_hash(key, strlen(key)), (size_t)T.rf,
			    owners, &no);
		for (size_t o = 0; o < no && ok; o++) {
			struct cnode *n = node_of(sim, (int)owners[o]);
			struct rk_rec *r =
			    n ? rk_table_get(n->table, key, strlen(key)) : NULL;
			int64_t v = 0;
			if (r) {
				counter_load(c, rk_rec_value(r), r->vlen);
				crdt_value(c, &v);
			} else {
				crdt_reset(c);
			}
			if (v != want) {
				if (report) {
					fail("%s holds %" PRId64 " at replica "
					     "n%" PRIu64
					     ", the adds sum to %" PRId64,
					     key, v, owners[o], want);
					dump_key(sim, key, owners, no);
				}
				ok = 0;
			} else if (o == 0) {
				crdt_reset(first);
				crdt_merge(first, c);
			} else if (!crdt_equal(first, c)) {
				if (report)
					fail("%s: replicas n%" PRIu64
					     " and n%" PRIu64
					     " hold different states (same "
					     "value)",
					     key, owners[0], owners[o]);
				ok = 0;
			}
		}
	}
	crdt_free(first);
	crdt_free(c);
	return ok;
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
		m[i - 1] =
		    (struct ring_member){(uint64_t)i, 1, T.tokens[i], nt};
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

/* Called every check interval after heal: the clients keep retrying. */
static int pred_settled(struct sim *sim, void *ctx)
{
	(void)ctx;
	clients_step(sim, 0);
	return converged(sim, 0);
}

/* ------------------------------------------------------------------ */
/* one run                                                             */

static int run(uint64_t seed, int verbose, int power)
{
	memset(&T, 0, sizeof(T));
	rk_rng_seed(&T.rng, seed);
	T.n = 5;
	T.rf = 3;
	T.keys = 8;
	T.clients = 16;
	T.current = malloc((size_t)T.clients * sizeof(*T.current));
	for (int c = 0; c < T.clients; c++)
		T.current[c] = SIZE_MAX;
	build_ring(T.n, T.rf);
	struct sim_config sc;
	sim_config_defaults(&sc);
	sc.n_nodes = T.n;
	sc.seed = seed;
	sc.program = &counter_program;
	sc.link.drop = 0.05;
	sc.link.dup = 0.05;
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
	int partitioned = 0;
	/* 30 s of chaos in 20 ms steps. */
	for (int step = 0; step < 1500 && !T.failures; step++) {
		clients_step(sim, 1);
		if (rk_rng_below(&T.rng, 2) == 0)
			read_start(sim);
		uint64_t dice = rk_rng_below(&T.rng, 1000);
		int victim = 1 + (int)rk_rng_below(&T.rng, (uint64_t)T.n);
		if (dice < 4 && sim_is_up(sim, victim)) {
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
			for (int a = 1; a <= T.n; a++)
				for (int b = 1; b <= T.n; b++) {
					int same =
					    (a == side[0] || a == side[1]) ==
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
			int o = 1 + (int)rk_rng_below(&T.rng, (uint64_t)T.n);
			if (o != victim)
				set_up(sim, o, victim, 0);
		}
		int rc = sim_run_for(sim, 20);
		if (rc)
			fail("invariant %d", rc);
		check_no_overcount(sim);
	}
	/* Heal: everyone back, every link whole, every view right; the
	 * clients only finish what they began. */
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
	uint64_t healed = sim_now(sim);
	sim_set_check_interval(sim, 50);
	int ok =
	    T.failures ? 0 : sim_run_until(sim, pred_settled, NULL, SETTLE_MS);
	uint64_t took = sim_now(sim) - healed;
	if (ok != 1 && !T.failures)
		converged(sim, 1); /* names what is wrong */
	check_no_overcount(sim);
	check_reads();
	size_t acked_first = 0, reads_ok = 0;
	for (size_t i = 0; i < T.nadds; i++)
		acked_first += T.adds[i].attempts == 1 && T.adds[i].acked;
	for (size_t i = 0; i < T.nreads; i++)
		reads_ok += T.reads[i].done && T.reads[i].status == 0;
	if (verbose || T.failures)
		fprintf(stderr,
			"seed %" PRIu64 ": %zu adds (%zu acknowledged at the "
			"first attempt, %" PRIu64 " retries, %" PRIu64
			" answered as duplicates), %zu reads (%zu ok); exact "
			"and identical everywhere %" PRIu64 " ms after heal: "
			"%s%s%s\n",
			seed, T.nadds, acked_first, T.retries, T.dups, T.nreads,
			reads_ok, took, ok == 1 ? "yes" : "NO",
			T.failures ? "; FAILED: " : "",
			T.failures ? T.why : "");
	sim_free(sim);
	free_ring();
	free(T.adds);
	free(T.reads);
	free(T.h);
	free(T.current);
	return T.failures ? 1 : 0;
}

int main(int argc, char **argv)
{
	/* chaos: the mix above; power: every crash takes two nodes at once
	 * (an add acknowledged or shipped before its fsync would show). */
	const char *scenario = argc > 1 ? argv[1] : "chaos";
	int power = strcmp(scenario, "power") == 0;
	if (!power && strcmp(scenario, "chaos") != 0) {
		fprintf(stderr, "unknown scenario %s\n", scenario);
		return 2;
	}
	uint64_t seed = rk_test_seed("sim_counter");
	const char *ns = getenv("RINGKV_SIM_SEEDS");
	int seeds = ns ? atoi(ns) : 100;
	int failed = 0;
	for (int i = 0; i < seeds; i++) {
		uint64_t s = seed + (uint64_t)i;
		if (run(s, i == 0, power)) {
			fprintf(stderr,
				"replay with RINGKV_SEED=%" PRIu64
				" RINGKV_SIM_SEEDS=1 %s %s\n",
				s, argv[0], scenario);
			failed++;
		}
	}
	fprintf(stderr, "sim_counter %s: %d of %d seeds failed\n", scenario,
		failed, seeds);
	return failed ? 1 : 0;
}
