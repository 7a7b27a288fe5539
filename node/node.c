#include "node.h"

#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "cas.h"
#include "cluster.h"
#include "counter.h"
#include "crdt.h"
#include "err.h"
#include "hash.h"
#include "hints.h"
#include "membership.h"
#include "peer.h"
#include "peer_wire.h"
#include "rebalance.h"
#include "repl.h"
#include "rng.h"
#include "server.h"
#include "store.h"

/* A client request answered by replication later. */
struct client_req {
	struct conn *c;   /* held with server_conn_ref */
	uint64_t id;      /* the client's request id */
	enum rk_op op;
	int in_use;
};

/* What a log read for a peer keeps, on the reader thread. */
struct want {
	struct repl_rangeset *rs;
	int digest;
};

/* A stream batch for a peer, scanned on the loop in the next turns. */
struct scan_req {
	struct scan_req *next;
	uint64_t token;
	uint64_t cursor;
	uint32_t max_bytes;
	struct repl_rangeset *rs;
};

/* A failed send, handed to repl on the next loop turn (a runtime
 * callback must not call repl input functions). */
struct unreachable {
	uint64_t to;
	enum repl_msg_type type;
	uint64_t rid;
};

struct node {
	struct ev_loop *loop;
	const struct node_config *cfg;
	struct rk_logger *lg;
	uint64_t id;
	struct store *store;
	struct peers *peers;
	struct cluster *cluster;
	struct membership *membership;
	struct repl *repl;
	struct rebalance *rebalance;
	struct hints *hints;
	struct cas *cas;
	struct server *server;
	struct scan_req *scans, *scans_tail;
	char advertise[256];
	int stopping;
	uint64_t started_ms;
	uint64_t stop_deadline;
	ev_timer flush_poll;    /* a graceful stop waits for writes, hints */
	struct rk_rng rng;

	/* the store's loop hooks */
	ev_async wake;          /* op-log threads: durability advanced */
	ev_prepare prepare;     /* each turn: hand log records to the writer */
	ev_check check;         /* each turn: a compaction step */
	ev_idle idle;           /* keeps the loop turning while compacting */
	ev_timer maintain;      /* compaction decisions */
	ev_timer repl_timer;    /* at repl_next_deadline() */

	struct client_req *reqs; /* handle = index + 1 */
	size_t n_reqs, cap_reqs;
	size_t free_hint;
	struct unreachable *unreach;
	size_t n_unreach, cap_unreach;
};

static uint64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Points the replication timer at its next deadline. */
static void repl_rearm(struct node *n)
{
	uint64_t at = repl_next_deadline(n->repl), t = mono_ms();
	ev_timer_stop(n->loop, &n->repl_timer);
	ev_timer_set(&n->repl_timer, at > t ? (double)(at - t) / 1000.0 : 0.0,
		     0.0);
	ev_timer_start(n->loop, &n->repl_timer);
}

/* ------------------------------------------------------------------ */
/* replication's runtime                                               */

/* Record types: the store's (node/record.h) and replication's differ for
 * counters only. */
static uint8_t repl_type_of(uint8_t store_type)
{
	return store_type == RK_REC_COUNTER || store_type == RK_REC_COUNTER_OP
		   ? REPL_REC_COUNTER
		   : store_type;
}

static uint8_t store_type_of(uint8_t repl_type)
{
	return repl_type == REPL_REC_COUNTER ? RK_REC_COUNTER : repl_type;
}

static int st_get(void *ctx, const uint8_t *key, size_t klen,
		  struct repl_record *out)
{
	struct node *n = ctx;
	const struct rk_rec *rec = store_get(n->store, key, klen);
	if (!rec)
		return RK_ENOT_FOUND;
	*out = (struct repl_record){.type = repl_type_of(rec->type),
				    .ts = rec->ts,
				    .key = rk_rec_key(rec),
				    .klen = rec->klen,
				    .val = rk_rec_value(rec),
				    .vlen = rec->vlen};
	return 0;
}

static int st_apply(void *ctx, const struct repl_record *r, uint64_t *lsn)
{
	struct node *n = ctx;
	return store_apply(n->store, store_type_of(r->type), r->key, r->klen,
			   r->val, r->type != REPL_REC_TOMBSTONE ? r->vlen : 0,
			   r->ts, lsn);
}

static int st_counter_add(void *ctx, const uint8_t *key, size_t klen,
			  int64_t delta, const struct crdt_opid *op,
			  struct repl_record *out, uint64_t *lsn,
			  int64_t *value, char *why, size_t whylen)
{
	struct node *n = ctx;
	const uint8_t *d;
	rk_ts ts = {0, 0};
	int rc = store_counter_add(n->store, key, klen, delta, op, wall_ms(),
				   &d, &ts, lsn, value, why, whylen);
	if (rc < 0)
		return rc;
	*out = (struct repl_record){.type = REPL_REC_COUNTER,
				    .ts = ts,
				    .key = key,
				    .klen = klen,
				    .val = d,
				    .vlen = d ? CRDT_DELTA_SIZE : 0};
	return rc;
}

static int st_stamp(void *ctx, rk_ts *out)
{
	struct node *n = ctx;
	return store_stamp(n->store, wall_ms(), out);
}

static uint64_t st_durable(void *ctx)
{
	struct node *n = ctx;
	return store_durable_lsn(n->store);
}

static uint64_t st_log_end(void *ctx)
{
	struct node *n = ctx;
	return store_log_end(n->store);
}

/* Reader thread: does the record belong to the asker's ranges? */
static int want_record(void *ctx, const struct rk_logrec *r)
{
	const struct want *w = ctx;
	if (r->type == RK_REC_COUNTER_OP &&
	    counter_form(r->val, r->vlen) != COUNTER_FORM_DELTA)
		return 0; /* only snapshots hold window batches */
	if (r->type != RK_REC_VALUE && r->type != RK_REC_TOMBSTONE &&
	    r->type != RK_REC_COUNTER && r->type != RK_REC_COUNTER_OP)
		return 0; /* drops are this node's own business */
	return repl_rangeset_contains(w->rs, rk_key_hash(r->key, r->klen));
}

static void st_log_read(void *ctx, uint64_t token, uint64_t from_lsn,
			uint64_t cursor, const struct repl_range *ranges,
			size_t n_ranges, uint32_t max_bytes, int digest)
{
	struct node *n = ctx;
	struct want *w = malloc(sizeof(*w));
	if (w && (w->rs = repl_rangeset_new(ranges, n_ranges)) != NULL) {
		w->digest = digest;
		if (store_log_read(n->store, token, from_lsn, cursor, max_bytes,
				   want_record, w) == 0)
			return;
		free(w->rs);
	}
	free(w);
	/* No answer: the asker's deadline retries. */
}

static void st_scan(void *ctx, uint64_t token, uint64_t cursor,
		    const struct repl_range *ranges, size_t n_ranges,
		    uint32_t max_bytes)
{
	struct node *n = ctx;
	struct scan_req *q = calloc(1, sizeof(*q));
	if (!q || !(q->rs = repl_rangeset_new(ranges, n_ranges))) {
		free(q);
		return;
	}
	q->token = token;
	q->cursor = cursor;
	q->max_bytes = max_bytes;
	if (n->scans_tail)
		n->scans_tail->next = q;
	else
		n->scans = q;
	n->scans_tail = q;
	ev_idle_start(n->loop, &n->idle);
}

static void st_hint_save(void *ctx, uint64_t target,
			 const struct repl_record *r, uint64_t created_ms)
{
	struct node *n = ctx;
	hints_save(n->hints, target, r, created_ms);
}

static void st_hints_clear(void *ctx)
{
	struct node *n = ctx;
	hints_clear(n->hints);
}

/* DATA_DIR/positions: how far into each peer's op-log this node holds
 * everything.  Written without fsync: a stale or missing file only makes
 * the next catch-up longer. */
static void st_pos_save(void *ctx, const struct repl_pos *pos, size_t np)
{
	struct node *n = ctx;
	char path[PATH_MAX], tmp[PATH_MAX + 8];
	snprintf(path, sizeof(path), "%s/positions", n->cfg->data_dir);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	FILE *f = fopen(tmp, "w");
	if (!f)
		return;
	for (size_t i = 0; i < np; i++)
		fprintf(f, "%016" PRIx64 " %" PRIu64 "\n", pos[i].node,
			pos[i].lsn);
	if (fclose(f) == 0)
		rename(tmp, path);
}

static void pos_load(struct node *n)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/positions", n->cfg->data_dir);
	FILE *f = fopen(path, "r");
	if (!f)
		return;
	char line[128];
	while (fgets(line, sizeof(line), f)) {
		unsigned long long id, lsn;
		if (sscanf(line, "%16llx %llu", &id, &lsn) == 2)
			repl_pos_restore(n->repl, id, lsn);
	}
	fclose(f);
}

static void defer_unreachable(struct node *n, uint64_t to,
			      enum repl_msg_type type, uint64_t rid);

static uint64_t rt_now(void *ctx)
{
	(void)ctx;
	return mono_ms();
}

static uint64_t rt_random(void *ctx)
{
	struct node *n = ctx;
	return rk_rng_next(&n->rng);
}

static void rt_send(void *ctx, uint64_t to, const struct repl_msg *m)
{
	struct node *n = ctx;
	const char *addr = cluster_address_of(n->cluster, to);
	struct peer_msg pm = {.op = PEER_OP_REPL, .repl = *m};
	if (addr && peers_send(n->peers, addr, &pm) == 0)
		return;
	/* Not sent: tell repl on the next turn, so it fails that replica
	 * now instead of at its deadline. */
	defer_unreachable(n, to, m->type, m->rid);
}

/* Queues work for repl on the next loop turn: a message that could not
 * leave (type set) or a broken link (type 0). */
static void defer_unreachable(struct node *n, uint64_t to,
			      enum repl_msg_type type, uint64_t rid)
{
	if (n->n_unreach == n->cap_unreach) {
		size_t cap = n->cap_unreach ? n->cap_unreach * 2 : 64;
		struct unreachable *u = realloc(n->unreach, cap * sizeof(*u));
		if (!u)
			return; /* the deadline will do */
		n->unreach = u;
		n->cap_unreach = cap;
	}
	n->unreach[n->n_unreach++] = (struct unreachable){to, type, rid};
	ev_idle_start(n->loop, &n->idle);
}

/* A link to a peer broke: requests waiting on that node fail (next turn:
 * this may run inside a repl callback). */
static void on_link_down(void *ctx, const char *addr)
{
	struct node *n = ctx;
	uint64_t id = cluster_id_at(n->cluster, addr);
	if (id)
		defer_unreachable(n, id, 0, 0);
}

static void rt_reply(void *ctx, uint64_t client, const struct repl_result *res)
{
	struct node *n = ctx;
	if (client == 0 || client > n->n_reqs)
		return;
	struct client_req *q = &n->reqs[client - 1];
	if (!q->in_use)
		return;
	struct rk_response r = {.id = q->id, .op = q->op,
				.status = res->status, .error = res->detail};
	struct rk_replica_reply parts[RING_RF_MAX];
	int counter_op = q->op == RK_OP_COUNTER_ADD ||
			 q->op == RK_OP_COUNTER_GET ||
			 q->op == RK_OP_COUNTER_DELETE;
	for (size_t i = 0; i < res->n_parts && i < RING_RF_MAX; i++) {
		const struct repl_part *p = &res->parts[i];
		int tomb = p->status == 0 && p->rec.type == REPL_REC_TOMBSTONE;
		parts[i] = (struct rk_replica_reply){
			.node_id = p->node,
			.status = tomb ? RK_ENOT_FOUND : p->status,
			.value = {p->rec.val, p->status == 0 ? p->rec.vlen : 0},
			.ts = p->rec.ts,
			.has_ts = p->status == 0,
			.tombstone = tomb,
		};
		if (counter_op)
			parts[i] = (struct rk_replica_reply){
			    .node_id = p->node,
			    .status = p->status,
			    .counter = p->value,
			};
		r.n_replies = i + 1;
	}
	r.replies = r.n_replies ? parts : NULL;
	if (counter_op) {
		r.counter = res->value;
		r.duplicate = res->duplicate;
		r.owner = res->owner;
		if (q->op == RK_OP_COUNTER_DELETE &&
		    (res->status == 0 || res->maybe_applied)) {
			r.ts = res->ts;
			r.has_ts = 1;
		}
	} else if (q->op == RK_OP_GET || q->op == RK_OP_EXISTS) {
		int found = res->status == 0;
		if (res->rec.key) {
			r.ts = res->rec.ts;
			r.has_ts = 1;
		}
		if (q->op == RK_OP_EXISTS) {
			r.exists = found;
			if (res->status == RK_ENOT_FOUND)
				r.status = 0;
		} else if (found) {
			r.value.p = res->rec.val;
			r.value.n = res->rec.vlen;
		}
	} else if (res->status == 0 || res->maybe_applied) {
		r.ts = res->ts;
		r.has_ts = 1;
	}
	server_reply(q->c, &r);
	server_conn_unref(q->c);
	q->in_use = 0;
	if (client - 1 < n->free_hint)
		n->free_hint = client - 1;
}

static const struct repl_storage node_storage = {
    .get = st_get,
    .apply = st_apply,
    .stamp = st_stamp,
    .durable_lsn = st_durable,
    .log_end = st_log_end,
    .hint_save = st_hint_save,
    .hints_clear = st_hints_clear,
    .log_read = st_log_read,
    .scan = st_scan,
    .pos_save = st_pos_save,
    .counter_add = st_counter_add,
};

/* Hands finished log reads to repl, decoded. */
static void log_reads_done(struct node *n)
{
	struct oplog_read_result res;
	while (store_log_poll(n->store, &res)) {
		struct want *w = res.want_ctx;
		size_t cap = 0, k = 0;
		const uint8_t *p = rk_buf_rptr(&res.recs);
		size_t left = rk_buf_readable(&res.recs);
		for (size_t off = 0; off < left;) {
			struct rk_logrec r;
			long len = rk_logrec_decode(p + off, left - off, &r);
			if (len <= 0)
				break;
			off += (size_t)len;
			cap++;
		}
		struct repl_record *recs = malloc((cap ? cap : 1) * sizeof(*recs));
		for (size_t off = 0; recs && off < left;) {
			struct rk_logrec r;
			long len = rk_logrec_decode(p + off, left - off, &r);
			if (len <= 0)
				break;
			off += (size_t)len;
			/* A counter's digest is its bytes (repl/counter.c). */
			int keep = !w->digest || r.type == RK_REC_COUNTER ||
				   r.type == RK_REC_COUNTER_OP;
			recs[k++] =
			    (struct repl_record){.type = repl_type_of(r.type),
						 .ts = r.ts,
						 .key = r.key,
						 .klen = r.klen,
						 .val = keep ? r.val : NULL,
						 .vlen = keep ? r.vlen : 0};
		}
		repl_log_read_done(n->repl, res.token, recs ? res.status : RK_ENOMEM,
				   recs, k, res.next_lsn, res.next_off,
				   res.end_lsn, res.truncated);
		free(recs);
		free(w->rs);
		free(w);
		rk_buf_destroy(&res.recs);
	}
}

/* One stream batch per loop turn: the table is walked on the loop. */
struct scan_fill {
	const struct repl_rangeset *rs;
	struct repl_record *recs;
	size_t n, cap;
	size_t bytes;
	int oom;
};

static void scan_one(void *ctx, const struct rk_rec *rec)
{
	struct scan_fill *f = ctx;
	if (f->oom ||
	    !repl_rangeset_contains(f->rs, rk_key_hash(rk_rec_key(rec),
							 rec->klen)))
		return;
	if (f->n == f->cap) {
		size_t cap = f->cap ? f->cap * 2 : 256;
		struct repl_record *nr = realloc(f->recs, cap * sizeof(*nr));
		if (!nr) {
			f->oom = 1;
			return;
		}
		f->recs = nr;
		f->cap = cap;
	}
	/* Records stay valid until the table changes: this turn only. */
	f->recs[f->n++] = (struct repl_record){.type = repl_type_of(rec->type),
					       .ts = rec->ts,
					       .key = rk_rec_key(rec),
					       .klen = rec->klen,
					       .val = rk_rec_value(rec),
					       .vlen = rec->vlen};
	f->bytes += rec->klen + rec->vlen + 32;
}

/* Buckets visited per stream batch at most, so a sparse range cannot
 * hold the loop. */
#define SCAN_BUCKETS 65536

static void scan_step(struct node *n)
{
	struct scan_req *q = n->scans;
	if (!q)
		return;
	n->scans = q->next;
	if (!n->scans)
		n->scans_tail = NULL;
	struct scan_fill f = {.rs = q->rs};
	uint64_t cursor = q->cursor;
	size_t buckets = 0;
	do {
		cursor = store_scan(n->store, cursor, scan_one, &f);
	} while (cursor != 0 && f.bytes < q->max_bytes && !f.oom &&
		 ++buckets < SCAN_BUCKETS);
	repl_scan_done(n->repl, q->token, f.oom ? RK_ENOMEM : 0, f.recs, f.n,
		       cursor, cursor == 0);
	free(f.recs);
	free(q->rs);
	free(q);
}

/* ------------------------------------------------------------------ */
/* requests                                                            */

/* A client handle for a request answered later; 0 when out of memory. */
static uint64_t req_new(struct node *n, struct conn *c, const struct rk_request *q)
{
	size_t i = n->free_hint;
	while (i < n->n_reqs && n->reqs[i].in_use)
		i++;
	if (i == n->n_reqs) {
		if (n->n_reqs == n->cap_reqs) {
			size_t cap = n->cap_reqs ? n->cap_reqs * 2 : 1024;
			struct client_req *r = realloc(n->reqs, cap * sizeof(*r));
			if (!r)
				return 0;
			n->reqs = r;
			n->cap_reqs = cap;
		}
		n->n_reqs++;
	}
	n->free_hint = i + 1;
	n->reqs[i] = (struct client_req){c, q->id, q->op, 1};
	server_conn_ref(c);
	return i + 1;
}

static enum repl_cl cl_of(enum rk_consistency cl)
{
	switch (cl) {
	case RK_CL_ONE: return REPL_CL_ONE;
	case RK_CL_ALL: return REPL_CL_ALL;
	case RK_CL_QUORUM:
	case RK_CL_DEFAULT:
	case RK_CL_SERIAL:
	default: return REPL_CL_QUORUM;
	}
}

/* A decommission or removal in progress: its client waits. */
struct admin {
	struct node *n;
	struct conn *c;
	uint64_t id;
	enum rk_op op;
};

static void admin_done(void *ctx, int status, const char *detail)
{
	struct admin *a = ctx;
	struct node *n = a->n;
	struct rk_response r = {.id = a->id, .status = status, .error = detail};
	rk_log(n->lg, status ? RK_LOG_WARN : RK_LOG_INFO, "node", "%s %s%s%s",
	       rk_op_name(a->op), status ? "failed: " : "done",
	       status && detail ? detail : "", "");
	server_reply(a->c, &r);
	server_conn_unref(a->c);
	int leave = a->op == RK_OP_DECOMMISSION && status == 0;
	free(a);
	/* Decommissioned: off the ring for good, so the node stops. */
	if (leave)
		node_shutdown(n);
}

static void admin_request(struct node *n, struct conn *c,
			  const struct rk_request *q)
{
	struct admin *a = malloc(sizeof(*a));
	if (!a) {
		struct rk_response r = {.id = q->id, .status = RK_ENOMEM};
		server_reply(c, &r);
		return;
	}
	*a = (struct admin){n, c, q->id, q->op};
	server_conn_ref(c);
	if (q->op == RK_OP_DECOMMISSION)
		rebalance_decommission(n->rebalance, admin_done, a);
	else
		rebalance_remove(n->rebalance, q->node_id, admin_done, a);
}

/* A TAKE_OVER from a peer: answered when our pulls are done. */
struct take_over {
	struct conn *c;
	uint64_t id;
};

static void take_over_done(void *ctx, int status, const char *detail)
{
	struct take_over *t = ctx;
	struct peer_msg r = {.id = t->id,
			     .op = status ? PEER_OP_ERROR : PEER_OP_ACK,
			     .status = status, .error = detail};
	server_peer_reply(t->c, &r);
	server_conn_unref(t->c);
	free(t);
}

/* This node's own copy of a counter, without coordination. */
static void local_counter_get(struct node *n, struct conn *c,
			      const struct rk_request *q)
{
	struct rk_response r = {.id = q->id, .op = q->op};
	const struct rk_rec *rec = store_get(n->store, q->key.p, q->key.n);
	int found = 0;
	if (rec && rec->type == RK_REC_COUNTER) {
		if (counter_value_of(rk_rec_value(rec), rec->vlen, &r.counter,
				     &found))
			r.status = RK_ECORRUPT;
	} else if (rec && rec->type == RK_REC_VALUE) {
		r.status = RK_EWRONG_TYPE;
		r.error = "the key holds a value, not a counter: use get";
	}
	if (!r.status && !found)
		r.status = RK_ENOT_FOUND;
	if (r.status == RK_ECORRUPT) {
		r.status = RK_EINTERNAL;
		r.error = "this node's copy of the counter is damaged";
	}
	server_reply(c, &r);
}

/* This node's own copy of a key, without coordination. */
static void local_get(struct node *n, struct conn *c, const struct rk_request *q)
{
	struct rk_response r = {.id = q->id, .op = q->op};
	const struct rk_rec *rec = store_get(n->store, q->key.p, q->key.n);
	if (rec) {
		r.ts = rec->ts;
		r.has_ts = 1;
	}
	if (rec && rec->type == RK_REC_COUNTER) {
		r.status = RK_EWRONG_TYPE;
		r.error = "the key holds a counter: use 'counter' to read it";
	} else if (!rec || rec->type != RK_REC_VALUE) {
		r.status = RK_ENOT_FOUND;
	} else {
		r.value.p = rk_rec_value(rec);
		r.value.n = rec->vlen;
	}
	server_reply(c, &r);
}

static void node_stats(struct node *n, struct conn *c,
		       const struct rk_request *q)
{
	struct store_stats ss;
	store_get_stats(n->store, &ss);
	struct rk_response r = {.id = q->id, .op = RK_OP_NODE_STATS};
	r.stats = (struct rk_node_stats){
		.node_id = n->id,
		.keys = ss.keys,
		.tombstones = ss.tombstones,
		.bytes = ss.bytes,
		.log_bytes = ss.log.segment_bytes + ss.log.snapshot_bytes,
		.hints_pending = repl_hints_pending(n->repl, 0),
		.uptime_ms = mono_ms() - n->started_ms,
		.ring_status = cluster_status_name(cluster_self_status(n->cluster)),
	};
	server_reply(c, &r);
}

/* Data requests from clients: every one goes through replication, even
 * on a cluster of one (then the node is every key's only replica). */
static void on_data(void *ctx, struct conn *c, const struct rk_request *q)
{
	struct node *n = ctx;
	if (q->op == RK_OP_NODE_STATS) {
		node_stats(n, c, q);
		return;
	}
	if (q->op == RK_OP_DECOMMISSION || q->op == RK_OP_REMOVE_NODE) {
		admin_request(n, c, q);
		return;
	}
	if (q->op == RK_OP_GET && q->local) {
		local_get(n, c, q);
		return;
	}
	if (q->op == RK_OP_COUNTER_GET && q->local) {
		local_counter_get(n, c, q);
		return;
	}
	if (q->op == RK_OP_GET && q->all_replies &&
	    q->consistency == RK_CL_SERIAL) {
		struct rk_response r = {.id = q->id, .status = RK_EBAD_REQUEST,
					.error = "a SERIAL read has one answer, "
						 "not one per replica"};
		server_reply(c, &r);
		return;
	}
	/* Compare-and-set, and SERIAL reads and writes: Paxos. */
	if (q->op == RK_OP_CAS || q->consistency == RK_CL_SERIAL) {
		cas_client(n->cas, c, q);
		return;
	}
	uint64_t h = req_new(n, c, q);
	if (!h) {
		struct rk_response r = {.id = q->id, .status = RK_ENOMEM,
					.error = "out of memory"};
		server_reply(c, &r);
		return;
	}
	switch (q->op) {
	case RK_OP_GET:
	case RK_OP_EXISTS:
		repl_read(n->repl, h, q->key.p, q->key.n, cl_of(q->consistency),
			  q->op == RK_OP_GET && q->all_replies);
		break;
	case RK_OP_PUT:
		repl_write(n->repl, h, REPL_REC_VALUE, q->key.p, q->key.n,
			   q->value.p, q->value.n, cl_of(q->consistency));
		break;
	case RK_OP_COUNTER_ADD: {
		struct crdt_opid op;
		if (q->op_id.n == RK_OPID_LEN)
			memcpy(op.b, q->op_id.p, RK_OPID_LEN);
		else /* none given: a fresh one (no retry can reuse it) */
			crdt_opid_make(&op, wall_ms(),
				       rk_rng_next(&n->rng) | 1);
		repl_counter_add(n->repl, h, q->key.p, q->key.n, q->delta, &op,
				 cl_of(q->consistency));
		break;
	}
	case RK_OP_COUNTER_GET:
		repl_counter_get(n->repl, h, q->key.p, q->key.n,
				 cl_of(q->consistency), q->all_replies);
		break;
	case RK_OP_COUNTER_DELETE:
		repl_counter_delete(n->repl, h, q->key.p, q->key.n,
				    cl_of(q->consistency));
		break;
	case RK_OP_DELETE:
	default:
		repl_write(n->repl, h, REPL_REC_TOMBSTONE, q->key.p, q->key.n,
			   NULL, 0, cl_of(q->consistency));
		break;
	}
	repl_rearm(n);
}

/* Routes a message from another node to the part that serves it. */
static void on_peer_request(void *ctx, struct conn *c,
			    const struct peer_msg *m)
{
	struct node *n = ctx;
	uint64_t from = server_conn_peer_id(c);
	if (m->op == PEER_OP_PAXOS || m->op == PEER_OP_CAS) {
		cas_peer(n->cas, c, server_conn_peer_id(c), m);
		return;
	}
	if (m->op == PEER_OP_REPL) {
		/* Only members replicate with us. */
		if (cluster_liveness_of(n->cluster, from) == CLUSTER_UNKNOWN)
			return;
		repl_recv(n->repl, from, &m->repl);
		repl_rearm(n);
		return;
	}
	struct peer_msg reply = {.id = m->id};
	char fromstr[32];
	snprintf(fromstr, sizeof(fromstr), "n%" PRIx64, from);
	switch (m->op) {
	case PEER_OP_GOSSIP_SYNC:
		membership_on_sync(n->membership, fromstr, m, &reply);
		break;
	case PEER_OP_REMOVED_GET:
		reply.op = PEER_OP_REMOVED;
		reply.n_ids = cluster_removed(n->cluster, &reply.ids);
		break;
	case PEER_OP_REMOVED:
		cluster_merge_removed(n->cluster, m->ids, m->n_ids);
		reply.op = PEER_OP_ACK;
		break;
	case PEER_OP_TAKE_OVER: {
		struct take_over *t = malloc(sizeof(*t));
		if (!t) {
			reply.op = PEER_OP_ERROR;
			reply.status = RK_ENOMEM;
			break;
		}
		t->c = c;
		t->id = m->id;
		server_conn_ref(c);
		rebalance_take_over(n->rebalance, m->node_id, m->from_leaving,
				    take_over_done, t);
		return;
	}
	case PEER_OP_TOKENS_GET:
		if (cluster_tokens_reply(n->cluster, m->node_id, &reply)) {
			reply.op = PEER_OP_ERROR;
			reply.status = RK_ENOT_FOUND;
			reply.error = "tokens not known here";
		}
		break;
	default:
		reply.op = PEER_OP_ERROR;
		reply.status = RK_EUNKNOWN_COMMAND;
		reply.error = "not a request";
		break;
	}
	reply.id = m->id;
	if (m->id)
		server_peer_reply(c, &reply);
}

/* ------------------------------------------------------------------ */
/* cluster events                                                      */

static void on_meta(void *ctx, const uint8_t *meta, size_t len)
{
	struct node *n = ctx;
	if (n->membership)
		membership_set_meta(n->membership, meta, len);
}

static void on_ring(void *ctx, const struct ring *ring,
		    const struct ring *pending)
{
	struct node *n = ctx;
	if (n->repl) {
		repl_set_ring(n->repl, ring, pending);
		repl_rearm(n);
	}
	if (n->rebalance)
		rebalance_on_ring(n->rebalance);
}

static void on_liveness(void *ctx, uint64_t id, enum cluster_liveness l)
{
	struct node *n = ctx;
	if (n->repl) {
		repl_set_up(n->repl, id,
			    l == CLUSTER_ALIVE || l == CLUSTER_SUSPECT);
		repl_rearm(n);
	}
}

/* ------------------------------------------------------------------ */
/* loop hooks                                                          */

static void oplog_notify(void *ctx)
{
	struct node *n = ctx;
	ev_async_send(n->loop, &n->wake);
}

static void on_wake(struct ev_loop *loop, ev_async *w, int revents)
{
	(void)loop;
	(void)revents;
	struct node *n = w->data;
	store_settle(n->store);
	repl_durable(n->repl, store_durable_lsn(n->store));
	cas_durable(n->cas);
	log_reads_done(n);
	store_maintain(n->store, wall_ms());
	repl_rearm(n);
}

static void on_prepare(struct ev_loop *loop, ev_prepare *w, int revents)
{
	(void)loop;
	(void)revents;
	struct node *n = w->data;
	store_flush(n->store);
	hints_flush(n->hints);
}

static void on_check(struct ev_loop *loop, ev_check *w, int revents)
{
	(void)revents;
	struct node *n = w->data;
	if (n->n_unreach) {
		/* Take the queue: handling may queue more for next turn. */
		struct unreachable *u = n->unreach;
		size_t k = n->n_unreach;
		n->unreach = NULL;
		n->n_unreach = n->cap_unreach = 0;
		for (size_t i = 0; i < k; i++) {
			struct repl_msg m = {.type = u[i].type, .rid = u[i].rid};
			if (m.type == 0)
				repl_peer_down(n->repl, u[i].to);
			else
				repl_unreachable(n->repl, u[i].to, &m);
		}
		free(u);
		repl_rearm(n);
	}
	if (n->scans) {
		scan_step(n);
		repl_rearm(n);
	}
	int more = store_compact_step(n->store, wall_ms());
	if (!more && !n->n_unreach && !n->scans)
		ev_idle_stop(loop, &n->idle);
}

static void on_idle(struct ev_loop *loop, ev_idle *w, int revents)
{
	(void)loop;
	(void)w;
	(void)revents;
	/* Only here so that polling does not block; on_check does the work. */
}

static void on_maintain(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)revents;
	struct node *n = w->data;
	store_maintain(n->store, wall_ms());
	store_counter_expire(n->store, wall_ms());
	hints_maintain(n->hints);
	if (store_compacting(n->store))
		ev_idle_start(loop, &n->idle);
}

static void on_repl_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	struct node *n = w->data;
	repl_tick(n->repl);
	repl_rearm(n);
}

/* ------------------------------------------------------------------ */
/* start and stop                                                      */

static void on_left(void *ctx)
{
	struct node *n = ctx;
	ev_break(n->loop, EVBREAK_ALL);
}

/* Writes this node coordinated still wait for replicas, or hints for
 * live nodes wait to be handed off: let them finish before leaving (a
 * stopped coordinator's hints would be lost), for at most
 * STOP_FLUSH_MS. */
#define STOP_FLUSH_MS 10000u

static void on_flush_poll(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)revents;
	struct node *n = w->data;
	size_t left = repl_unfinished(n->repl);
	if (left && mono_ms() < n->stop_deadline)
		return;
	ev_timer_stop(loop, w);
	if (left)
		rk_warn(n->lg, "node", "%zu writes or hints unfinished; leaving "
			"anyway (anti-entropy will reconcile)", left);
	rk_info(n->lg, "node", "leaving the cluster");
	membership_leave(n->membership, on_left, n);
}

static void on_drained(void *ctx)
{
	struct node *n = ctx;
	n->stop_deadline = mono_ms() + STOP_FLUSH_MS;
	ev_timer_init(&n->flush_poll, on_flush_poll, 0.0, 0.05);
	n->flush_poll.data = n;
	ev_timer_start(n->loop, &n->flush_poll);
}

void node_shutdown(struct node *n)
{
	if (n->stopping)
		return;
	n->stopping = 1;
	cas_set_draining(n->cas);
	server_drain(n->server, on_drained, n);
}

static void restore_hint(void *ctx, uint64_t target,
			 const struct repl_record *rec, uint64_t created_ms)
{
	struct node *n = ctx;
	repl_hint_restore(n->repl, target, rec, created_ms);
}

static int start_repl(struct node *n, char *err, size_t errlen)
{
	struct repl_config rc;
	repl_config_defaults(&rc);
	rc.self_id = n->id;
	rc.rf = (uint32_t)n->cfg->rf;
	rc.write_timeout_ms = (uint32_t)n->cfg->write_timeout_ms;
	rc.read_timeout_ms = (uint32_t)n->cfg->read_timeout_ms;
	rc.read_speculate_ms = (uint32_t)n->cfg->read_speculate_ms;
	rc.hint_window_ms = n->cfg->hint_window_ms;
	rc.hint_rate = (uint32_t)n->cfg->hint_rate;
	struct repl_runtime rt = {
		.ctx = n,
		.log = n->lg,
		.store = &node_storage,
		.now_ms = rt_now,
		.random = rt_random,
		.send = rt_send,
		.reply = rt_reply,
	};
	int rc2 = repl_new(&rc, &rt, &n->repl);
	if (rc2) {
		snprintf(err, errlen, "starting replication: %s",
			 rk_strerror(rc2));
		return rc2;
	}
	repl_set_ring(n->repl, cluster_ring(n->cluster),
		      cluster_pending_ring(n->cluster));
	pos_load(n);
	n->rebalance = rebalance_new(n->loop, n->cfg, n->cluster, n->repl,
				     n->store, n->peers, n->lg);
	if (!n->rebalance) {
		snprintf(err, errlen, "out of memory");
		return RK_ENOMEM;
	}
	/* Hints saved by the last run: handed off when their nodes are up. */
	return hints_open(n->cfg->data_dir, (enum rk_fsync)n->cfg->fsync,
			  (uint32_t)n->cfg->fsync_interval_ms, n->lg,
			  restore_hint, n, &n->hints, err, errlen);
}

int node_start(struct ev_loop *loop, const struct node_config *cfg,
	       struct rk_logger *lg, struct node **out, char *err,
	       size_t errlen)
{
	*out = NULL;
	struct node *n = calloc(1, sizeof(*n));
	if (!n) {
		snprintf(err, errlen, "out of memory");
		return RK_ENOMEM;
	}
	n->loop = loop;
	n->cfg = cfg;
	n->lg = lg;
	n->started_ms = mono_ms();
	uint64_t seed;
	if (getrandom(&seed, sizeof(seed), 0) != sizeof(seed))
		seed = mono_ms();
	rk_rng_seed(&n->rng, seed);
	struct store_config sc = {
		.data_dir = cfg->data_dir,
		.fsync = (enum rk_fsync)cfg->fsync,
		.fsync_interval_ms = (uint32_t)cfg->fsync_interval_ms,
		.segment_bytes = cfg->segment_bytes,
		.zstd_level = (int)cfg->zstd_level,
		.compact_min_bytes = cfg->compact_min_bytes,
		.compact_ratio_pct = (uint32_t)cfg->compact_ratio_pct,
		.tombstone_grace_ms = cfg->tombstone_grace_ms,
		.compact_step_records = (uint32_t)cfg->compact_step_records,
		.compact_backlog_bytes = 8u << 20,
		.clock_window_ms = cfg->clock_window_ms,
		.dedup_max_ids = (uint32_t)cfg->dedup_max_ids,
		.dedup_max_age_ms = cfg->dedup_max_age_ms,
		.dedup_max_future_ms = cfg->dedup_max_future_ms,
		.counter_max_entries = (uint32_t)cfg->counter_max_entries,
	};
	int rc = store_open(&sc, lg, wall_ms(), &n->store, err, errlen);
	if (rc)
		goto fail;
	n->id = store_node_id(n->store);
	snprintf(lg->tag, sizeof(lg->tag), "n%06" PRIx64, n->id >> 40);
	struct store_stats ss;
	store_get_stats(n->store, &ss);
	uint64_t recs = ss.replay.snapshot_records + ss.replay.log_records;
	rk_info(lg, "node",
		"replayed %" PRIu64 " records (%" PRIu64 " from snapshot, %" PRIu64
		" from %" PRIu64 " segments) in %" PRIu64 " ms (%.0f records/s); "
		"%" PRIu64 " keys",
		recs, ss.replay.snapshot_records, ss.replay.log_records,
		ss.replay.segments, ss.replay_ms,
		ss.replay_ms ? (double)recs * 1000.0 / (double)ss.replay_ms
			     : (double)recs,
		ss.keys);

	/* The listener binds first so that the advertised address is real. */
	if ((rc = server_new(loop, cfg, n->id, lg, &n->server, err, errlen)))
		goto fail;
	snprintf(n->advertise, sizeof(n->advertise), "%s",
		 cfg->advertise[0] ? cfg->advertise : server_address(n->server));
	if (!(n->peers = peers_new(loop, cfg, n->id, lg))) {
		rc = RK_ENOMEM;
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if ((rc = cluster_open(loop, cfg, n->id, n->advertise, n->peers, lg,
			       &n->cluster, err, errlen)))
		goto fail;
	if ((rc = start_repl(n, err, errlen)))
		goto fail;
	struct cas_deps cd = {.loop = loop, .cfg = cfg, .lg = lg,
			      .self_id = n->id, .store = n->store,
			      .cluster = n->cluster, .peers = n->peers};
	if ((rc = cas_new(&cd, &n->cas, err, errlen)))
		goto fail;
	cluster_set_callbacks(n->cluster, on_meta, on_ring, on_liveness, n);
	server_set_cluster(n->server, n->cluster);
	if ((rc = membership_open(loop, cfg, n->id, server_address(n->server),
				  n->advertise, n->cluster, n->peers, lg,
				  &n->membership, err, errlen)))
		goto fail;
	server_set_peer_handler(n->server, on_peer_request, n);
	server_set_data_handler(n->server, on_data, n);
	peers_set_down_handler(n->peers, on_link_down, n);

	ev_async_init(&n->wake, on_wake);
	ev_prepare_init(&n->prepare, on_prepare);
	ev_check_init(&n->check, on_check);
	ev_idle_init(&n->idle, on_idle);
	ev_timer_init(&n->maintain, on_maintain, 1.0, 1.0);
	ev_init(&n->repl_timer, on_repl_timer);
	n->wake.data = n->prepare.data = n->check.data = n;
	n->idle.data = n->maintain.data = n->repl_timer.data = n;
	ev_async_start(loop, &n->wake);
	ev_prepare_start(loop, &n->prepare);
	ev_check_start(loop, &n->check);
	ev_timer_start(loop, &n->maintain);
	repl_rearm(n);
	/* The op-log threads wake the loop through the async watcher. */
	if ((rc = store_start(n->store, oplog_notify, n))) {
		snprintf(err, errlen, "cannot start the op-log writer");
		goto fail;
	}
	server_start(n->server);
	rk_info(lg, "node",
		"ringkvd %s node %016" PRIx64 " listening on %s (advertised "
		"%s), data %s, fsync=%s, rf %" PRIu64,
		RINGKV_VERSION, n->id, server_address(n->server), n->advertise,
		cfg->data_dir,
		cfg->fsync == RK_FSYNC_ALWAYS     ? "always"
		: cfg->fsync == RK_FSYNC_INTERVAL ? "interval"
						  : "never",
		cfg->rf);
	*out = n;
	return 0;
fail:
	node_free(n);
	return rc;
}

void node_free(struct node *n)
{
	if (!n)
		return;
	if (n->loop) {
		ev_async_stop(n->loop, &n->wake);
		ev_prepare_stop(n->loop, &n->prepare);
		ev_check_stop(n->loop, &n->check);
		ev_idle_stop(n->loop, &n->idle);
		ev_timer_stop(n->loop, &n->maintain);
		ev_timer_stop(n->loop, &n->repl_timer);
		ev_timer_stop(n->loop, &n->flush_poll);
	}
	/* Replies to our requests reference the parts below: fail them
	 * first, while everything still exists (compare-and-set answers
	 * its forwarded requests without running anything more). */
	cas_stop(n->cas);
	peers_free(n->peers);
	/* repl's unfinished pulls report to rebalance: it goes after. */
	repl_free(n->repl);
	rebalance_free(n->rebalance);
	hints_close(n->hints);
	while (n->scans) {
		struct scan_req *q = n->scans;
		n->scans = q->next;
		free(q->rs);
		free(q);
	}
	/* Requests still open: their connections are let go. */
	for (size_t i = 0; i < n->n_reqs; i++)
		if (n->reqs[i].in_use)
			server_conn_unref(n->reqs[i].c);
	cas_free(n->cas);
	server_free(n->server);
	membership_free(n->membership);
	cluster_free(n->cluster);
	store_close(n->store);
	free(n->reqs);
	free(n->unreach);
	free(n);
}
