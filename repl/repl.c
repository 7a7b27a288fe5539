/* repl.c: quorum replication, after Dynamo (DeCandia et al., SOSP 2007)
 * and Cassandra.
 *
 * The algorithm.  A key lives on the first RF distinct nodes clockwise
 * from its token (ring/).  Any node coordinates any request.  A write is
 * stamped once with the coordinator's hybrid clock and sent to every
 * replica; each applies it only if it is newer than what it holds (last
 * writer wins, so order and duplicates do not matter), makes it durable as
 * its fsync policy says, and acknowledges.  With W acknowledgements the
 * client hears "ok".  A read asks the replicas and returns the newest
 * record once R have answered.  With W + R > RF (QUORUM/QUORUM) every read
 * overlaps every acknowledged write.
 *
 * Where we follow Cassandra rather than Dynamo:
 *  - Strict quorums.  Dynamo's sloppy quorum lets a write count acks from
 *    stand-in nodes; then a QUORUM write may miss every real replica and a
 *    QUORUM read may not see it.  We count only the key's own replicas, so
 *    QUORUM reads see QUORUM writes; when too few replicas are up the
 *    client gets UNAVAILABLE at once, before anything is written.
 *  - Hints are a repair mechanism, not a quorum member.  A replica that
 *    was down, or did not acknowledge in time, gets a hint: the record,
 *    kept by the coordinator and handed off when gossip says the replica
 *    is back, at a bounded rate, for a bounded window.
 *  - A read asks R replicas, not all RF (itself first when it is one),
 *    and asks the others only when one of those fails, or has not
 *    answered after replication.read_speculate (Cassandra's speculative
 *    retry, at a fixed delay rather than a latency percentile).  Dynamo
 *    asks all N and waits for R: that costs every read N - R messages
 *    each way whose answers are thrown away, about a third of a QUORUM
 *    read's work at RF 3.  What it bought -- repairing the replicas
 *    outside the R on every read -- is left to hints, catch-up and
 *    anti-entropy.  An all-replies read (get --all) still asks everyone.
 *  - Blocking read repair at QUORUM and ALL: replicas among the R that
 *    answered with an older record are repaired before the client hears
 *    back, so a later QUORUM read never goes back in time (monotonic
 *    reads).  Replicas that answer after the reply are repaired in the
 *    background.
 *
 * Where we differ from both: catch-up from peers' op-logs instead of
 * Merkle-tree repair.  Every node logs every applied record with a log
 * sequence number (LSN).  Each node remembers, for every peer it shares
 * ranges with, how far into that peer's log it holds everything: its
 * position.  When a node restarts, or sees a peer come back after a
 * partition, it asks the peer for the records of its log from that
 * position whose keys fall in the asker's ranges: exactly what it missed,
 * not a copy of everything.  A digest form of the same request (keys and
 * versions only) runs now and then as anti-entropy: it finds the rare
 * write that neither a hint nor a repair carried (a coordinator that
 * crashed before writing its hint), and fetches just those records.  Only
 * when a peer's log no longer reaches back to the position (compacted)
 * does the node stream the whole of its ranges from that peer, then
 * continue from the log position the stream started at.  The same stream
 * moves ranges when nodes join, leave or are removed.
 *
 * Why positions are safe to advance: records are versioned, so applying a
 * record twice changes nothing; a position only promises "everything
 * before it is here", and it is advanced only past records actually
 * applied (or, for digests, compared and fetched).
 *
 * Timeouts and unknown outcomes.  A write that times out, or whose
 * replicas became unreachable after it was sent, may have been applied
 * somewhere: the client hears TIMEOUT (or UNAVAILABLE) with maybe_applied
 * set, never "failed".  A read that times out applied nothing.
 *
 * Ownership of memory: every record this module keeps (a write in flight,
 * a read answer, a hint) is its own copy, freed when the operation ends.
 */
#include "repl.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "counter.h"
#include "err.h"
#include "hash.h"

/* A write waits this long for acknowledgements before TIMEOUT: long
 * enough for an fsync on a busy disk, short enough to fail over. */
#define DEFAULT_WRITE_TIMEOUT_MS 2000u
#define DEFAULT_READ_TIMEOUT_MS 2000u
#define DEFAULT_READ_SPECULATE_MS 20u
/* Hints older than Cassandra's default window are dropped: by then the
 * node is better served by catch-up. */
#define DEFAULT_HINT_WINDOW_MS (3ull * 3600 * 1000)
/* Hint replay rate per target: a returning node is not swamped. */
#define DEFAULT_HINT_RATE 2000u
#define DEFAULT_HINT_MAX_BYTES (64ull << 20)
#define DEFAULT_BATCH_BYTES (1u << 20)
#define DEFAULT_ANTI_ENTROPY_MS 60000u
#define DEFAULT_MAX_SYNCS 4u
/* Hints in flight per target at once. */
#define HINT_WINDOW 64u
/* Digest catch-up: records fetched in full at once. */
#define FETCH_WINDOW 64u
/* After our ranges move, an anti-entropy round comes this soon: long
 * enough for gossip to carry the change to every coordinator. */
#define ANTI_ENTROPY_AFTER_RING_MS 3000u
/* Positions are saved at most this often. */
#define POS_SAVE_MS 2000u
/* Catch-up batches ask for another batch right away; a failed one is
 * retried after this. */
#define SYNC_RETRY_MS 1000u

enum op_kind {
	OP_READ = 1,
	OP_WRITE,
	OP_HINT,  /* one hint in flight */
	OP_FETCH, /* one record fetched for a digest catch-up */
	OP_SYNC,  /* one catch-up or stream batch in flight */
	OP_CADD,  /* a counter add sent to its owner, waiting for it */
};

/* Natural owners plus, while the ring changes, pending ones. */
#define OP_SLOTS (2 * RING_RF_MAX)

/* Per-replica progress of an operation. */
enum rstate {
	R_PENDING = 0, /* asked, no answer yet */
	R_OK,	       /* acknowledged, or answered */
	R_FAILED,      /* unreachable or errored */
	R_DOWN,	       /* not asked: down when the operation began */
	R_REPAIRING,   /* read: a repair was sent, waiting for its ack */
	R_REFUSED,     /* write: refused the key's type (WRONG_TYPE) */
	R_SPARE,       /* read: up, not asked (yet): asked when one of the
			  asked fails, or at the speculation time */
};

/* A read answer from one replica (copied). */
struct answer {
	int status;
	struct repl_record rec;
	uint8_t *buf;
};

struct hint;
struct sync;

/* An operation in flight, found by its rid. */
struct op {
	uint64_t rid;
	enum op_kind kind;
	uint64_t client;
	uint64_t deadline;
	struct op *hnext;            /* rid hash chain */
	/* OP_READ, OP_WRITE */
	enum repl_cl cl;
	int all_replies;
	int replied;
	uint32_t n, needed;
	uint32_t n_natural;          /* nodes[0, n_natural) count for W/R;
					the rest are pending owners (a node
					joining or taking over a range) that
					get writes but do not count */
	uint64_t nodes[OP_SLOTS];
	enum rstate st[OP_SLOTS];
	struct answer ans[OP_SLOTS]; /* reads */
	struct repl_record rec;       /* write: the record; read: the key */
	uint8_t *buf;                 /* owns rec's bytes */
	int repairing;                /* read: blocking repair phase */
	uint64_t speculate_at;        /* read: when the spares are asked
					 (a heap entry; 0: none) */
	/* OP_HINT */
	struct hint *hint;
	uint64_t target;
	/* OP_FETCH, OP_SYNC */
	struct sync *sync;
	/* counters */
	int counter;		     /* OP_WRITE: an owner's add (ships a
					delta); OP_READ: a counter read */
	int check_type;		     /* OP_WRITE: a client's write, checked
					against the key's type here */
	uint64_t reply_to;	     /* owner's add for a remote
					coordinator (0: a local client) */
	uint64_t reply_rid;	     /* ... and the rid it waits on */
	int unshipped;		     /* owner: shipping waits for our own
					log record to be durable */
	int duplicate;		     /* owner: the op id was known */
	int64_t value;		     /* owner: our value after the add */
	char why[160];		     /* WRONG_TYPE detail */
	struct crdt_counter *merged; /* counter read: the answers merged */
	struct repl_record mrec;     /* ... as a record (repairs) */
	uint8_t *mbuf;		     /* owns mrec's bytes */
};

/* A write kept for a replica that missed it. */
struct hint {
	struct hint *next;
	uint64_t created_ms;
	struct repl_record rec;
	uint8_t *buf;
	struct op *inflight;          /* its delivery, if one is out */
};

/* Hints for one target, oldest first. */
struct hintq {
	uint64_t target;
	struct hint *head, *tail;
	uint64_t count, bytes;
	double credit;                /* rate limiter */
	uint64_t last_ms;
	uint32_t inflight;
};

enum sync_kind {
	SYNC_LOG = 1,    /* op-log records from a position */
	SYNC_STREAM,     /* every record in ranges */
};

/* A catch-up or stream from one peer. */
struct sync {
	struct sync *next;
	uint64_t peer;
	enum sync_kind kind;
	int digest;                   /* LOG: keys and versions only */
	struct repl_range *ranges;    /* owned */
	size_t n_ranges;
	uint64_t from_lsn;            /* LOG: next position to ask for */
	uint64_t log_cursor;          /* LOG: where the peer found it */
	uint64_t cursor;              /* STREAM: resume point */
	uint64_t stream_lsn;          /* STREAM: peer's log end at start */
	int waiting;                  /* a batch request is out */
	uint64_t retry_at;            /* after a failure */
	uint32_t fetching;            /* digest: fetches in flight */
	int explicit_ranges;          /* pull for a ring change */
	void (*done)(void *ctx, int status);
	void *done_ctx;
	uint64_t records;             /* applied so far */
};

/* A catch-up asked for while every slot was busy. */
struct want_sync {
	uint64_t peer;
	int digest;
};

/* A replica-side acknowledgement waiting for durability. */
struct durable_wait {
	uint64_t lsn;
	uint64_t to;     /* node to ack; self for the coordinator's own */
	uint64_t rid;
};

/* A log read or scan we serve for a peer, until storage answers. */
struct serve {
	struct serve *next;
	uint64_t token;
	uint64_t peer;
	uint64_t rid;
	int digest;
	enum repl_msg_type type;
};

/* Heap entry: an op's deadline (lazy deletion by rid). */
struct dl {
	uint64_t at;
	uint64_t rid;
};

struct pos {
	uint64_t node;
	uint64_t lsn;
	int known;
};

struct repl {
	struct repl_config cfg;
	struct repl_runtime rt;
	const struct ring *ring;         /* natural owners: reads, W and R */
	const struct ring *pending;      /* owners once the change is done;
					    NULL when none is under way */
	uint64_t next_rid;
	/* ops by rid */
	struct op **ops;
	size_t ops_cap, ops_count;
	struct dl *heap;
	size_t heap_len, heap_cap;
	/* liveness */
	uint64_t *up_nodes;
	size_t n_up, up_cap;
	/* durability waits, FIFO by lsn */
	struct durable_wait *dw;
	size_t dw_head, dw_len, dw_cap;
	/* hints */
	struct hintq *hq;
	size_t n_hq;
	uint64_t hints_total;
	/* catch-up */
	struct repl_range *my_ranges;  /* ranges we replicate, merged */
	size_t n_my_ranges;
	uint64_t *peers;               /* nodes sharing ranges with us */
	size_t n_peers;
	struct sync *syncs;
	struct want_sync *wanted;      /* catch-ups waiting for a slot */
	size_t n_wanted, cap_wanted;
	struct pos *pos;
	size_t n_pos, pos_cap;
	int pos_dirty;
	uint64_t pos_saved_ms;
	uint64_t next_anti_entropy;
	struct serve *serving;
	uint64_t next_token;
	struct repl_stats stats;
};

/* ------------------------------------------------------------------ */
/* small helpers                                                       */

static uint64_t now(const struct repl *r)
{
	return r->rt.now_ms(r->rt.ctx);
}

static void send(struct repl *r, uint64_t to, const struct repl_msg *m)
{
	r->rt.send(r->rt.ctx, to, m);
}

/* Copies rec's key and value into one allocation. */
static int rec_copy(struct repl_record *dst, uint8_t **buf,
		    const struct repl_record *src)
{
	size_t vlen = src->val ? src->vlen : 0;
	uint8_t *b = malloc(src->klen + vlen + 1);
	if (!b)
		return RK_ENOMEM;
	memcpy(b, src->key, src->klen);
	if (vlen)
		memcpy(b + src->klen, src->val, vlen);
	*dst = *src;
	dst->key = b;
	dst->val = src->val ? b + src->klen : NULL;
	dst->vlen = vlen;
	*buf = b;
	return 0;
}

static int range_cmp(const void *a, const void *b)
{
	uint64_t x = ((const struct repl_range *)a)->end;
	uint64_t y = ((const struct repl_range *)b)->end;
	return x < y ? -1 : x > y;
}

int repl_ranges_contain(const struct repl_range *rg, size_t n, uint64_t t)
{
	for (size_t i = 0; i < n; i++) {
		uint64_t s = rg[i].start, e = rg[i].end;
		if (s < e ? (t > s && t <= e) : (t > s || t <= e))
			return 1;
	}
	return 0;
}

const char *repl_msg_name(enum repl_msg_type t)
{
	switch (t) {
	case REPL_WRITE: return "write";
	case REPL_WRITE_ACK: return "write_ack";
	case REPL_READ: return "read";
	case REPL_READ_REPLY: return "read_reply";
	case REPL_LOG_READ: return "log_read";
	case REPL_LOG_BATCH: return "log_batch";
	case REPL_STREAM_READ: return "stream_read";
	case REPL_STREAM_BATCH: return "stream_batch";
	case REPL_COUNTER_ADD: return "counter_add";
	case REPL_COUNTER_ADD_REPLY: return "counter_add_reply";
	default: return "?";
	}
}

static const char *cl_name(enum repl_cl cl)
{
	switch (cl) {
	case REPL_CL_ONE: return "ONE";
	case REPL_CL_ALL: return "ALL";
	case REPL_CL_QUORUM:
	case REPL_CL_DEFAULT:
	default: return "QUORUM";
	}
}

static uint32_t needed_for(enum repl_cl cl, uint32_t n)
{
	switch (cl) {
	case REPL_CL_ONE: return n ? 1 : 0;
	case REPL_CL_ALL: return n;
	case REPL_CL_QUORUM:
	case REPL_CL_DEFAULT:
	default: return n / 2 + 1;
	}
}

static int repl_is_up(const struct repl *r, uint64_t node)
{
	if (node == r->cfg.self_id)
		return 1;
	for (size_t i = 0; i < r->n_up; i++)
		if (r->up_nodes[i] == node)
			return 1;
	return 0;
}

/* ------------------------------------------------------------------ */
/* operations by rid, and their deadlines                              */

static struct op **op_slot(struct repl *r, uint64_t rid)
{
	return &r->ops[rk_hash_seeded(&rid, sizeof(rid), 0) & (r->ops_cap - 1)];
}

static struct op *op_find(struct repl *r, uint64_t rid)
{
	for (struct op *o = *op_slot(r, rid); o; o = o->hnext)
		if (o->rid == rid)
			return o;
	return NULL;
}

static int ops_grow(struct repl *r)
{
	size_t cap = r->ops_cap ? r->ops_cap * 2 : 1024;
	struct op **n = calloc(cap, sizeof(*n));
	if (!n)
		return RK_ENOMEM;
	struct op **old = r->ops;
	size_t oldcap = r->ops_cap;
	r->ops = n;
	r->ops_cap = cap;
	for (size_t i = 0; i < oldcap; i++) {
		struct op *o = old[i];
		while (o) {
			struct op *next = o->hnext;
			struct op **s = op_slot(r, o->rid);
			o->hnext = *s;
			*s = o;
			o = next;
		}
	}
	free(old);
	return 0;
}

static void heap_push(struct repl *r, uint64_t at, uint64_t rid)
{
	if (r->heap_len == r->heap_cap) {
		size_t cap = r->heap_cap ? r->heap_cap * 2 : 1024;
		struct dl *n = realloc(r->heap, cap * sizeof(*n));
		if (!n)
			return; /* the op then lives until the ring or stop */
		r->heap = n;
		r->heap_cap = cap;
	}
	size_t i = r->heap_len++;
	while (i > 0) {
		size_t p = (i - 1) / 2;
		if (r->heap[p].at <= at)
			break;
		r->heap[i] = r->heap[p];
		i = p;
	}
	r->heap[i] = (struct dl){at, rid};
}

static struct dl heap_pop(struct repl *r)
{
	struct dl top = r->heap[0], last = r->heap[--r->heap_len];
	size_t i = 0;
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= r->heap_len)
			break;
		if (c + 1 < r->heap_len && r->heap[c + 1].at < r->heap[c].at)
			c++;
		if (r->heap[c].at >= last.at)
			break;
		r->heap[i] = r->heap[c];
		i = c;
	}
	if (r->heap_len)
		r->heap[i] = last;
	return top;
}

/* A new operation with a fresh rid and deadline; NULL when out of memory. */
static struct op *op_new(struct repl *r, enum op_kind kind, uint64_t timeout)
{
	if (r->ops_count + 1 > r->ops_cap / 2 && ops_grow(r))
		return NULL;
	struct op *o = calloc(1, sizeof(*o));
	if (!o)
		return NULL;
	o->rid = ++r->next_rid;
	o->kind = kind;
	o->deadline = now(r) + timeout;
	struct op **s = op_slot(r, o->rid);
	o->hnext = *s;
	*s = o;
	r->ops_count++;
	heap_push(r, o->deadline, o->rid);
	return o;
}

static void op_free(struct repl *r, struct op *o)
{
	struct op **s = op_slot(r, o->rid);
	while (*s != o)
		s = &(*s)->hnext;
	*s = o->hnext;
	r->ops_count--;
	for (uint32_t i = 0; i < o->n; i++)
		free(o->ans[i].buf);
	free(o->buf);
	free(o->mbuf);
	crdt_free(o->merged);
	free(o);
}

static int slot_of(const struct op *o, uint64_t node)
{
	for (uint32_t i = 0; i < o->n; i++)
		if (o->nodes[i] == node)
			return (int)i;
	return -1;
}

/* ------------------------------------------------------------------ */
/* hints                                                               */

static struct hintq *hintq_get(struct repl *r, uint64_t target, int create)
{
	for (size_t i = 0; i < r->n_hq; i++)
		if (r->hq[i].target == target)
			return &r->hq[i];
	if (!create)
		return NULL;
	struct hintq *n = realloc(r->hq, (r->n_hq + 1) * sizeof(*n));
	if (!n)
		return NULL;
	r->hq = n;
	struct hintq *q = &r->hq[r->n_hq++];
	memset(q, 0, sizeof(*q));
	q->target = target;
	q->last_ms = now(r);
	return q;
}

/* Queues a hint; saved unless it comes from the saved ones. */
static void hint_add(struct repl *r, uint64_t target,
		     const struct repl_record *rec, uint64_t created, int save)
{
	if (target == r->cfg.self_id)
		return;
	struct hintq *q = hintq_get(r, target, 1);
	size_t size = rec->klen + rec->vlen + sizeof(struct hint);
	if (!q || q->bytes + size > r->cfg.hint_max_bytes) {
		/* Catch-up from our log covers what no hint carries. */
		r->stats.hints_dropped++;
		return;
	}
	struct hint *h = calloc(1, sizeof(*h));
	if (!h || rec_copy(&h->rec, &h->buf, rec)) {
		free(h);
		r->stats.hints_dropped++;
		return;
	}
	h->created_ms = created;
	if (q->tail)
		q->tail->next = h;
	else
		q->head = h;
	q->tail = h;
	q->count++;
	q->bytes += size;
	r->hints_total++;
	if (save) {
		r->stats.hints_stored++;
		if (r->rt.store->hint_save)
			r->rt.store->hint_save(r->rt.ctx, target, rec, created);
	}
}

static void hint_remove(struct repl *r, struct hintq *q, struct hint *h)
{
	struct hint **link = &q->head, *prev = NULL;
	while (*link && *link != h) {
		prev = *link;
		link = &(*link)->next;
	}
	if (!*link)
		return;
	*link = h->next;
	if (q->tail == h)
		q->tail = prev;
	q->count--;
	q->bytes -= h->rec.klen + h->rec.vlen + sizeof(struct hint);
	r->hints_total--;
	free(h->buf);
	free(h);
	if (r->hints_total == 0 && r->rt.store->hints_clear)
		r->rt.store->hints_clear(r->rt.ctx);
}

/* Sends what the rate allows to targets that are up; drops expired. */
static void hints_deliver(struct repl *r)
{
	uint64_t t = now(r);
	for (size_t i = 0; i < r->n_hq; i++) {
		struct hintq *q = &r->hq[i];
		while (q->head && !q->head->inflight &&
		       q->head->created_ms + r->cfg.hint_window_ms < t) {
			r->stats.hints_expired++;
			hint_remove(r, q, q->head);
		}
		q->credit += (double)(t - q->last_ms) * r->cfg.hint_rate / 1000.0;
		q->last_ms = t;
		if (q->credit > r->cfg.hint_rate)
			q->credit = r->cfg.hint_rate; /* at most 1 s of burst */
		if (!q->head || !repl_is_up(r, q->target))
			continue;
		for (struct hint *h = q->head;
		     h && q->inflight < HINT_WINDOW && q->credit >= 1.0;
		     h = h->next) {
			if (h->inflight)
				continue;
			struct op *o = op_new(r, OP_HINT, r->cfg.write_timeout_ms);
			if (!o)
				return;
			o->hint = h;
			o->target = q->target;
			h->inflight = o;
			q->inflight++;
			q->credit -= 1.0;
			struct repl_msg m = {.type = REPL_WRITE,
					     .rid = o->rid,
					     .flags = REPL_F_HINT,
					     .rec = h->rec};
			send(r, q->target, &m);
		}
	}
}

static void hint_settle(struct repl *r, struct op *o, int delivered)
{
	struct hintq *q = hintq_get(r, o->target, 0);
	if (q) {
		q->inflight--;
		o->hint->inflight = NULL;
		if (delivered) {
			r->stats.hints_delivered++;
			hint_remove(r, q, o->hint);
		}
	}
	op_free(r, o);
}

/* ------------------------------------------------------------------ */
/* client replies                                                      */

static void reply(struct repl *r, struct op *o, struct repl_result *res)
{
	if (o->replied)
		return;
	o->replied = 1;
	res->replicas = o->n_natural;
	res->needed = o->needed;
	if (res->status == RK_EUNAVAILABLE)
		r->stats.unavailable++;
	if (res->status == RK_ETIMEOUT)
		r->stats.timeouts++;
	if (res->status == RK_EWRONG_TYPE)
		r->stats.wrong_type++;
	if (o->kind == OP_WRITE && o->counter) {
		res->value = o->value;
		res->duplicate = o->duplicate;
		res->owner = r->cfg.self_id;
	}
	if (o->reply_to) {
		/* An owner's add for a coordinator elsewhere. */
		struct repl_msg m = {.type = REPL_COUNTER_ADD_REPLY,
				     .rid = o->reply_rid,
				     .status = res->status,
				     .detail = res->detail,
				     .maybe_applied = res->maybe_applied,
				     .duplicate = res->duplicate,
				     .value = res->value};
		send(r, o->reply_to, &m);
		return;
	}
	r->rt.reply(r->rt.ctx, o->client, res);
}

/* Counts natural owners in state s: only they make a quorum. */
static uint32_t count_state(const struct op *o, enum rstate s)
{
	uint32_t c = 0;
	for (uint32_t i = 0; i < o->n_natural; i++)
		c += o->st[i] == s;
	return c;
}

/* Pending owners still waiting (they hold the operation open so that
 * the ones that miss the write get a hint). */
static uint32_t count_pending_extra(const struct op *o)
{
	uint32_t c = 0;
	for (uint32_t i = o->n_natural; i < o->n; i++)
		c += o->st[i] == R_PENDING;
	return c;
}

/* The key's owners: natural ones first, then pending-only ones. */
static void owners_of(const struct repl *r, const uint8_t *key, size_t klen,
		      struct op *o, int with_pending)
{
	size_t n = 0;
	uint64_t token = rk_key_hash(key, klen);
	ring_lookup(r->ring, token, r->cfg.rf, o->nodes, &n);
	o->n_natural = (uint32_t)n;
	if (with_pending && r->pending) {
		uint64_t p[RING_RF_MAX];
		size_t np = 0;
		ring_lookup(r->pending, token, r->cfg.rf, p, &np);
		for (size_t i = 0; i < np; i++) {
			size_t j;
			for (j = 0; j < n; j++)
				if (o->nodes[j] == p[i])
					break;
			if (j == n && n < OP_SLOTS)
				o->nodes[n++] = p[i];
		}
	}
	o->n = (uint32_t)n;
}

/* ------------------------------------------------------------------ */
/* writes                                                              */

static void write_check(struct repl *r, struct op *o)
{
	uint32_t ok = count_state(o, R_OK);
	uint32_t pending = count_state(o, R_PENDING);
	if (!o->replied && o->why[0]) {
		/* A replica holds the key as the other type: the client
		 * used the wrong operation (counter.c, "WRONG_TYPE"). */
		struct repl_result res = {.status = RK_EWRONG_TYPE,
					  .detail = o->why,
					  .maybe_applied = ok > 0,
					  .ts = o->rec.ts,
					  .answered = ok};
		reply(r, o, &res);
	} else if (!o->replied && ok >= o->needed) {
		struct repl_result res = {.status = 0, .ts = o->rec.ts,
					  .answered = ok};
		reply(r, o, &res);
	} else if (!o->replied && ok + pending < o->needed) {
		/* Replicas failed after it was sent: maybe applied. */
		char why[160];
		snprintf(why, sizeof(why),
			 "%u of %u replicas acknowledged, %s needs %u; the "
			 "write may or may not have been applied",
			 ok, o->n_natural, cl_name(o->cl), o->needed);
		struct repl_result res = {.status = RK_EUNAVAILABLE,
					  .detail = why, .maybe_applied = 1,
					  .ts = o->rec.ts, .answered = ok};
		reply(r, o, &res);
	}
	if (pending == 0 && count_pending_extra(o) == 0) {
		/* Every replica answered one way or the other: replicas that
		 * did not take it get a hint.  Not an owner's delta that never
		 * left because its log record is still not durable: nothing
		 * of it may leave before that (catch-up brings it later). */
		for (uint32_t i = 0; i < o->n && !o->unshipped; i++)
			if (o->st[i] == R_FAILED || o->st[i] == R_DOWN)
				hint_add(r, o->nodes[i], &o->rec, now(r), 1);
		op_free(r, o);
	}
}

static void dw_push(struct repl *r, uint64_t lsn, uint64_t to, uint64_t rid)
{
	if (r->dw_len == r->dw_cap) {
		size_t cap = r->dw_cap ? r->dw_cap * 2 : 256;
		struct durable_wait *n = malloc(cap * sizeof(*n));
		if (!n)
			return; /* the write then times out: safe */
		for (size_t i = 0; i < r->dw_len; i++)
			n[i] = r->dw[(r->dw_head + i) % r->dw_cap];
		free(r->dw);
		r->dw = n;
		r->dw_head = 0;
		r->dw_cap = cap;
	}
	r->dw[(r->dw_head + r->dw_len++) % r->dw_cap] =
		(struct durable_wait){lsn, to, rid};
}

/* A client's write against what this node holds for its key: 0, or
 * RK_EWRONG_TYPE (counter.c) with the reason in why. */
static int type_refused(struct repl *r, const struct repl_record *rec,
			char *why, size_t whylen)
{
	struct repl_record held;
	int have = r->rt.store->get(r->rt.ctx, rec->key, rec->klen, &held) == 0;
	return counter_type_check(have, have && held.type == REPL_REC_COUNTER,
				  have && held.type == REPL_REC_VALUE,
				  rec->type == REPL_REC_COUNTER, why, whylen);
}

/* The log position a replica's acknowledgement must wait for: its own
 * record when it applied the write (rc 1); when what it holds already
 * covers the write (rc 0), that may be a record not yet durable (a read
 * repair, another owner's delta), so everything logged so far. */
static uint64_t covering_lsn(struct repl *r, int rc, uint64_t lsn)
{
	if (rc == 1)
		return lsn;
	uint64_t end = r->rt.store->log_end(r->rt.ctx);
	return end ? end - 1 : 0;
}

/* Our own replica's part of a write we coordinate. */
static void write_local(struct repl *r, struct op *o, int slot)
{
	uint64_t lsn = 0;
	int rc = r->rt.store->apply(r->rt.ctx, &o->rec, &lsn);
	r->stats.replica_writes++;
	if (rc < 0) {
		o->st[slot] = R_FAILED;
		return;
	}
	lsn = covering_lsn(r, rc, lsn);
	if (r->rt.store->durable_lsn(r->rt.ctx) < lsn) {
		dw_push(r, lsn, r->cfg.self_id, o->rid);
		return; /* R_PENDING until durable */
	}
	o->st[slot] = R_OK;
}

/* A client's write of a record: a value, a tombstone, or a counter's
 * delete (its new, empty generation).  ts NULL: stamped here. */
static void write_record(struct repl *r, uint64_t client, uint8_t type,
			 const uint8_t *key, size_t klen, const uint8_t *val,
			 size_t vlen, enum repl_cl cl, const rk_ts *ts)
{
	r->stats.writes++;
	struct op *o = op_new(r, OP_WRITE, r->cfg.write_timeout_ms);
	if (!o) {
		struct repl_result res = {.status = RK_ENOMEM,
					  .detail = "out of memory"};
		r->rt.reply(r->rt.ctx, client, &res);
		return;
	}
	o->client = client;
	o->cl = cl;
	owners_of(r, key, klen, o, 1);
	o->needed = needed_for(cl, o->n_natural);
	uint32_t up = 0;
	for (uint32_t i = 0; i < o->n; i++) {
		o->st[i] = repl_is_up(r, o->nodes[i]) ? R_PENDING : R_DOWN;
		up += i < o->n_natural && o->st[i] == R_PENDING;
	}
	if (o->n_natural == 0 || up < o->needed) {
		char why[160];
		snprintf(why, sizeof(why),
			 "%u of %u replicas are up, %s needs %u; nothing was "
			 "written",
			 up, o->n_natural, cl_name(cl), o->needed);
		struct repl_result res = {.status = RK_EUNAVAILABLE,
					  .detail = why, .answered = 0};
		reply(r, o, &res);
		op_free(r, o);
		return;
	}
	struct repl_record rec = {
	    .type = type,
	    .key = key,
	    .klen = klen,
	    .val = type != REPL_REC_TOMBSTONE ? val : NULL,
	    .vlen = type != REPL_REC_TOMBSTONE ? vlen : 0};
	if (ts) {
		rec.ts = *ts;
	} else if (r->rt.store->stamp(r->rt.ctx, &rec.ts)) {
		struct repl_result res = {
			.status = RK_EIO,
			.detail = "the coordinator cannot persist its clock "
				  "(see its log); nothing was written"};
		reply(r, o, &res);
		op_free(r, o);
		return;
	}
	o->check_type = 1;
	if (slot_of(o, r->cfg.self_id) >= 0 &&
	    type_refused(r, &rec, o->why, sizeof(o->why))) {
		/* Our own copy says so: refused before anything is sent. */
		struct repl_result res = {.status = RK_EWRONG_TYPE,
					  .detail = o->why};
		reply(r, o, &res);
		op_free(r, o);
		return;
	}
	if (rec_copy(&o->rec, &o->buf, &rec)) {
		struct repl_result res = {.status = RK_ENOMEM,
					  .detail = "out of memory"};
		reply(r, o, &res);
		op_free(r, o);
		return;
	}
	struct repl_msg m = {.type = REPL_WRITE, .rid = o->rid, .rec = o->rec};
	for (uint32_t i = 0; i < o->n; i++) {
		if (o->st[i] != R_PENDING)
			continue;
		if (o->nodes[i] == r->cfg.self_id)
			write_local(r, o, (int)i);
		else
			send(r, o->nodes[i], &m);
	}
	write_check(r, o);
}

void repl_write(struct repl *r, uint64_t client, uint8_t type,
		const uint8_t *key, size_t klen, const uint8_t *val,
		size_t vlen, enum repl_cl cl)
{
	write_record(r, client, type, key, klen, val, vlen, cl, NULL);
}

/* ------------------------------------------------------------------ */
/* counter adds (counter.c, "An add")                                  */

/* The owner's delta goes to the other replicas, once our own log record
 * of it is durable. */
static void counter_ship(struct repl *r, struct op *o)
{
	o->unshipped = 0;
	struct repl_msg m = {.type = REPL_WRITE,
			     .rid = o->rid,
			     .flags = REPL_F_OWNED,
			     .rec = o->rec};
	for (uint32_t i = 0; i < o->n; i++)
		if (o->st[i] == R_PENDING && o->nodes[i] != r->cfg.self_id)
			send(r, o->nodes[i], &m);
}

/* Fails an add that this node owns before anything was applied. */
static void counter_own_fail(struct repl *r, struct op *o, int status,
			     const char *why)
{
	struct repl_result res = {.status = status, .detail = why};
	reply(r, o, &res);
	op_free(r, o);
}

/* Applies an add as its op id's owner, then replicates our entry at cl.
 * The answer goes to client (here) or, when reply_to is set, back to
 * the coordinator that forwarded it. */
static void counter_own(struct repl *r, uint64_t client, uint64_t reply_to,
			uint64_t reply_rid, const uint8_t *key, size_t klen,
			int64_t delta, const struct crdt_opid *opid,
			enum repl_cl cl)
{
	struct op *o = op_new(r, OP_WRITE, r->cfg.write_timeout_ms);
	if (!o) {
		struct op tmp = {.client = client,
				 .reply_to = reply_to,
				 .reply_rid = reply_rid};
		struct repl_result res = {.status = RK_ENOMEM,
					  .detail = "out of memory"};
		reply(r, &tmp, &res);
		return;
	}
	o->client = client;
	o->reply_to = reply_to;
	o->reply_rid = reply_rid;
	o->cl = cl;
	o->counter = 1;
	owners_of(r, key, klen, o, 1);
	o->needed = needed_for(cl, o->n_natural);
	uint32_t up = 0;
	for (uint32_t i = 0; i < o->n; i++) {
		o->st[i] = repl_is_up(r, o->nodes[i]) ? R_PENDING : R_DOWN;
		up += i < o->n_natural && o->st[i] == R_PENDING;
	}
	char why[200];
	if (o->n_natural == 0 || up < o->needed) {
		snprintf(why, sizeof(why),
			 "%u of %u replicas are up, %s needs %u; the add was "
			 "not applied",
			 up, o->n_natural, cl_name(cl), o->needed);
		counter_own_fail(r, o, RK_EUNAVAILABLE, why);
		return;
	}
	if (!r->rt.store->counter_add) {
		counter_own_fail(r, o, RK_ENOT_IMPLEMENTED,
				 "this node has no counters");
		return;
	}
	struct repl_record out = {0};
	uint64_t lsn = 0;
	why[0] = 0;
	int rc =
	    r->rt.store->counter_add(r->rt.ctx, key, klen, delta, opid, &out,
				     &lsn, &o->value, why, sizeof(why));
	if (rc < 0) {
		/* Refused by the window: a definite "not applied now", which
		 * the client reads as a bad request (its id is unusable). */
		if (rc == RK_EINVALID)
			rc = RK_EBAD_REQUEST;
		if (!why[0])
			snprintf(why, sizeof(why), "%s", rk_strerror(rc));
		counter_own_fail(r, o, rc, why);
		return;
	}
	r->stats.counter_owned += rc == 0;
	r->stats.counter_duplicates += rc == 1;
	o->duplicate = rc == 1;
	struct repl_record k = {.key = key, .klen = klen};
	if (rec_copy(&o->rec, &o->buf, out.val ? &out : &k)) {
		counter_own_fail(r, o, RK_ENOMEM, "out of memory");
		return;
	}
	if (!out.val) {
		/* A duplicate whose counter was deleted since: nothing of
		 * ours to ship, and it was counted before the delete. */
		struct repl_result res = {.status = 0, .answered = up};
		reply(r, o, &res);
		op_free(r, o);
		return;
	}
	int self = slot_of(o, r->cfg.self_id);
	if (r->rt.store->durable_lsn(r->rt.ctx) < lsn) {
		o->unshipped = 1;
		dw_push(r, lsn, r->cfg.self_id, o->rid);
	} else if (self >= 0) {
		o->st[self] = R_OK;
	}
	if (!o->unshipped)
		counter_ship(r, o);
	write_check(r, o);
}

uint64_t repl_counter_owner(const struct repl *r, const uint8_t *key,
			    size_t klen, const struct crdt_opid *op)
{
	uint64_t nodes[RING_RF_MAX];
	size_t n = 0;
	if (r->ring)
		ring_lookup(r->ring, rk_key_hash(key, klen), r->cfg.rf, nodes,
			    &n);
	return n ? nodes[crdt_owner(op, nodes, n)] : 0;
}

void repl_counter_add(struct repl *r, uint64_t client, const uint8_t *key,
		      size_t klen, int64_t delta, const struct crdt_opid *op,
		      enum repl_cl cl)
{
	r->stats.counter_adds++;
	uint64_t nodes[RING_RF_MAX];
	size_t n = 0;
	if (r->ring)
		ring_lookup(r->ring, rk_key_hash(key, klen), r->cfg.rf, nodes,
			    &n);
	uint32_t needed = needed_for(cl, (uint32_t)n), up = 0;
	for (size_t i = 0; i < n; i++)
		up += repl_is_up(r, nodes[i]);
	char why[200];
	if (n == 0 || up < needed) {
		snprintf(why, sizeof(why),
			 "%u of %zu replicas are up, %s needs %u; the add was "
			 "not applied",
			 up, n, cl_name(cl), needed);
		struct repl_result res = {.status = RK_EUNAVAILABLE,
					  .detail = why,
					  .replicas = (uint32_t)n,
					  .needed = needed};
		r->stats.unavailable++;
		r->rt.reply(r->rt.ctx, client, &res);
		return;
	}
	uint64_t owner = nodes[crdt_owner(op, nodes, n)];
	if (owner == r->cfg.self_id) {
		counter_own(r, client, 0, 0, key, klen, delta, op, cl);
		return;
	}
	if (!repl_is_up(r, owner)) {
		/* Nobody else may apply it (crdt.c, rule 3). */
		snprintf(why, sizeof(why),
			 "n%" PRIx64 ", the replica that owns this op id, is "
			 "down; the add was not applied (retry with the same "
			 "op id)",
			 owner);
		struct repl_result res = {.status = RK_EUNAVAILABLE,
					  .detail = why,
					  .replicas = (uint32_t)n,
					  .needed = needed,
					  .owner = owner};
		r->stats.unavailable++;
		r->rt.reply(r->rt.ctx, client, &res);
		return;
	}
	/* The owner's own write waits up to the write timeout; its answer
	 * then needs a moment to come back. */
	struct op *o =
	    op_new(r, OP_CADD,
		   (uint64_t)r->cfg.write_timeout_ms + r->cfg.read_timeout_ms);
	struct repl_record k = {.key = key, .klen = klen};
	if (!o || rec_copy(&o->rec, &o->buf, &k)) {
		if (o)
			op_free(r, o);
		struct repl_result res = {.status = RK_ENOMEM,
					  .detail = "out of memory"};
		r->rt.reply(r->rt.ctx, client, &res);
		return;
	}
	o->client = client;
	o->target = owner;
	o->cl = cl;
	o->n_natural = (uint32_t)n;
	o->needed = needed;
	struct repl_msg m = {.type = REPL_COUNTER_ADD,
			     .rid = o->rid,
			     .rec = o->rec,
			     .delta = delta,
			     .op = *op,
			     .cl = (uint32_t)cl};
	send(r, owner, &m);
}

/* The owner's answer, or its absence, for an add we coordinate. */
static void cadd_done(struct repl *r, struct op *o, const struct repl_msg *m,
		      int status, int maybe, const char *why)
{
	struct repl_result res = {.status = m ? m->status : status,
				  .detail = m ? m->detail : why,
				  .maybe_applied = m ? m->maybe_applied : maybe,
				  .value = m ? m->value : 0,
				  .duplicate = m ? m->duplicate : 0,
				  .owner = o->target};
	reply(r, o, &res);
	op_free(r, o);
}

void repl_counter_delete(struct repl *r, uint64_t client, const uint8_t *key,
			 size_t klen, enum repl_cl cl)
{
	/* The delete is a state: a new generation stamped now, with no
	 * entries; it merges into every replica like any state. */
	rk_ts ts;
	if (r->rt.store->stamp(r->rt.ctx, &ts)) {
		struct repl_result res = {
			.status = RK_EIO,
			.detail = "the coordinator cannot persist its clock "
				  "(see its log); nothing was written"};
		r->rt.reply(r->rt.ctx, client, &res);
		return;
	}
	struct crdt_counter *c;
	if (crdt_new(0, &c)) {
		struct repl_result res = {.status = RK_ENOMEM,
					  .detail = "out of memory"};
		r->rt.reply(r->rt.ctx, client, &res);
		return;
	}
	crdt_delete(c, ts);
	uint8_t buf[CRDT_STATE_FIXED];
	crdt_encode(c, buf);
	crdt_free(c);
	write_record(r, client, REPL_REC_COUNTER, key, klen, buf, sizeof(buf),
		     cl, &ts);
}

/* ------------------------------------------------------------------ */
/* reads                                                               */

/* The newest answer among those received; -1 when none holds a record. */
static int newest(const struct op *o)
{
	int best = -1;
	for (uint32_t i = 0; i < o->n; i++) {
		if (o->st[i] != R_OK && o->st[i] != R_REPAIRING)
			continue;
		if (o->ans[i].status != 0)
			continue;
		if (best < 0 || rk_ts_cmp(o->ans[i].rec.ts,
					  o->ans[best].rec.ts) > 0)
			best = (int)i;
	}
	return best;
}

/* Some answer holds a record of the given type. */
static int answered_type(const struct op *o, uint8_t type)
{
	for (uint32_t i = 0; i < o->n; i++)
		if ((o->st[i] == R_OK || o->st[i] == R_REPAIRING) &&
		    o->ans[i].status == 0 && o->ans[i].rec.type == type)
			return 1;
	return 0;
}

/* A counter read: merges the counter answers into o->merged and encodes
 * the merge into o->mrec (the record repairs carry).  Returns 1 when some
 * answer was a counter, 0 when none was, RK_ENOMEM. */
static int counter_merge_answers(struct op *o)
{
	if (!o->merged && crdt_new(0, &o->merged))
		return RK_ENOMEM;
	crdt_reset(o->merged);
	int any = 0;
	rk_ts ts = {0, 0};
	for (uint32_t i = 0; i < o->n; i++) {
		const struct answer *a = &o->ans[i];
		if ((o->st[i] != R_OK && o->st[i] != R_REPAIRING) ||
		    a->status != 0 || a->rec.type != REPL_REC_COUNTER)
			continue;
		/* A damaged or oversized answer is left out (and repaired). */
		if (counter_merge_bytes(o->merged, a->rec.val, a->rec.vlen,
					NULL) < 0)
			continue;
		any = 1;
		if (rk_ts_cmp(a->rec.ts, ts) > 0)
			ts = a->rec.ts;
	}
	free(o->mbuf);
	o->mbuf = NULL;
	memset(&o->mrec, 0, sizeof(o->mrec));
	if (!any)
		return 0;
	size_t n = crdt_encoded_size(o->merged);
	if (!(o->mbuf = malloc(o->rec.klen + n)))
		return RK_ENOMEM;
	memcpy(o->mbuf, o->rec.key, o->rec.klen);
	crdt_encode(o->merged, o->mbuf + o->rec.klen);
	o->mrec = (struct repl_record){.type = REPL_REC_COUNTER,
				       .ts = ts,
				       .key = o->mbuf,
				       .klen = o->rec.klen,
				       .val = o->mbuf + o->rec.klen,
				       .vlen = n};
	return 1;
}

/* The record a read settles on: the newest answer (registers) or the
 * merge of the counter answers (counters); NULL when there is none. */
static const struct repl_record *read_target(struct op *o)
{
	if (o->counter)
		return counter_merge_answers(o) == 1 ? &o->mrec : NULL;
	int best = newest(o);
	return best < 0 ? NULL : &o->ans[best].rec;
}

/* Does answer i lack something of the target?  For a counter: its state
 * does not cover the merge (or it is not a counter at all). */
static int is_stale(const struct op *o, uint32_t i, const struct repl_record *t)
{
	if (!t)
		return 0;
	const struct answer *a = &o->ans[i];
	if (!o->counter)
		return a->status != 0 || rk_ts_cmp(a->rec.ts, t->ts) < 0;
	if (a->status != 0 || a->rec.type != REPL_REC_COUNTER)
		return 1;
	struct crdt_counter *mine;
	if (crdt_new(0, &mine))
		return 0;
	int stale = counter_load(mine, a->rec.val, a->rec.vlen) < 0 ||
		    crdt_merge(mine, o->merged) != 0;
	crdt_free(mine);
	return stale;
}

static void send_repair(struct repl *r, struct op *o, uint32_t i,
			const struct repl_record *t, uint64_t rid)
{
	struct repl_msg m = {
	    .type = REPL_WRITE, .rid = rid, .flags = REPL_F_REPAIR, .rec = *t};
	r->stats.repairs++;
	if (o->nodes[i] == r->cfg.self_id) {
		uint64_t lsn;
		r->rt.store->apply(r->rt.ctx, t, &lsn);
		return;
	}
	send(r, o->nodes[i], &m);
}

static int part_status(const struct op *o, uint32_t i)
{
	return o->st[i] == R_OK || o->st[i] == R_REPAIRING ? o->ans[i].status
	       : o->st[i] == R_DOWN			   ? RK_EUNAVAILABLE
							   : RK_ETIMEOUT;
}

static void read_reply(struct repl *r, struct op *o)
{
	struct repl_part parts[OP_SLOTS];
	size_t np = 0;
	struct repl_result res = {.answered = count_state(o, R_OK) +
					      count_state(o, R_REPAIRING)};
	if (o->counter) {
		int any = counter_merge_answers(o);
		if (o->all_replies)
			for (uint32_t i = 0; i < o->n && np < RING_RF_MAX;
			     i++) {
				struct repl_part *p = &parts[np++];
				*p = (struct repl_part){.node = o->nodes[i],
							.status =
							    part_status(o, i)};
				int found = 0;
				if (p->status == 0 &&
				    (o->ans[i].rec.type != REPL_REC_COUNTER ||
				     counter_value_of(o->ans[i].rec.val,
						      o->ans[i].rec.vlen,
						      &p->value, &found) ||
				     !found))
					p->status = RK_ENOT_FOUND;
			}
		res.parts = np ? parts : NULL;
		res.n_parts = np;
		if (any < 0) {
			res.status = any;
			res.detail = "out of memory";
		} else if (!any && answered_type(o, REPL_REC_VALUE)) {
			res.status = RK_EWRONG_TYPE;
			res.detail =
			    "the key holds a value, not a counter: use "
			    "get";
		} else if (!any || crdt_is_empty(o->merged)) {
			res.status = RK_ENOT_FOUND;
		} else {
			crdt_value(o->merged, &res.value);
			res.rec = o->mrec;
		}
		reply(r, o, &res);
		return;
	}
	int best = newest(o);
	if (o->all_replies)
		for (uint32_t i = 0; i < o->n && np < RING_RF_MAX; i++)
			parts[np++] =
			    (struct repl_part){.node = o->nodes[i],
					       .status = part_status(o, i),
					       .rec = o->ans[i].rec};
	res.parts = np ? parts : NULL;
	res.n_parts = np;
	if (answered_type(o, REPL_REC_COUNTER)) {
		res.status = RK_EWRONG_TYPE;
		res.detail = "the key holds a counter: use 'counter' to read "
			     "it";
	} else if (best < 0 || o->ans[best].rec.type != REPL_REC_VALUE) {
		res.status = RK_ENOT_FOUND;
		if (best >= 0)
			res.rec = o->ans[best].rec; /* the tombstone */
	} else {
		res.rec = o->ans[best].rec;
	}
	reply(r, o, &res);
}

/* Asks replica i of a read: a message, or our own store at once. */
static void read_ask(struct repl *r, struct op *o, uint32_t i)
{
	o->st[i] = R_PENDING;
	if (o->nodes[i] != r->cfg.self_id) {
		struct repl_msg m = {.type = REPL_READ, .rid = o->rid,
				     .rec = o->rec};
		send(r, o->nodes[i], &m);
		return;
	}
	struct repl_record got;
	r->stats.replica_reads++;
	int rc = r->rt.store->get(r->rt.ctx, o->rec.key, o->rec.klen, &got);
	o->st[i] = R_OK;
	o->ans[i].status = rc == 0 ? 0 : RK_ENOT_FOUND;
	if (rc == 0 && rec_copy(&o->ans[i].rec, &o->ans[i].buf, &got))
		o->st[i] = R_FAILED;
}

/* Asks up to want of a read's spares; returns how many were asked. */
static uint32_t read_ask_spares(struct repl *r, struct op *o, uint32_t want)
{
	uint32_t asked = 0;
	for (uint32_t i = 0; i < o->n && asked < want; i++)
		if (o->st[i] == R_SPARE) {
			read_ask(r, o, i);
			asked++;
		}
	return asked;
}

/* Decides what a read does next after an answer or a failure. */
static void read_check(struct repl *r, struct op *o)
{
	uint32_t ok = count_state(o, R_OK) + count_state(o, R_REPAIRING);
	uint32_t pending = count_state(o, R_PENDING);
	if (!o->replied && !o->repairing && ok + pending < o->needed) {
		/* One of the asked failed: a spare takes its place. */
		read_ask_spares(r, o, o->needed - ok - pending);
		ok = count_state(o, R_OK) + count_state(o, R_REPAIRING);
		pending = count_state(o, R_PENDING);
	}
	if (!o->replied && !o->repairing && ok + pending < o->needed) {
		char why[160];
		snprintf(why, sizeof(why),
			 "%u of %u replicas answered, %s needs %u", ok, o->n,
			 cl_name(o->cl), o->needed);
		struct repl_result res = {.status = RK_EUNAVAILABLE,
					  .detail = why, .answered = ok};
		reply(r, o, &res);
	}
	if (!o->replied && !o->repairing && ok >= o->needed &&
	    (!o->all_replies || pending == 0)) {
		const struct repl_record *t = read_target(o);
		/* Blocking repair of the answering replicas that are behind
		 * (QUORUM and ALL), so no later quorum read goes back.  A
		 * register read that met a counter repairs nothing: it is
		 * the wrong operation for the key. */
		int need_repair = 0;
		if (o->cl != REPL_CL_ONE &&
		    (o->counter || !answered_type(o, REPL_REC_COUNTER)))
			for (uint32_t i = 0; i < o->n; i++)
				if (o->st[i] == R_OK && is_stale(o, i, t)) {
					o->st[i] = R_REPAIRING;
					send_repair(r, o, i, t, o->rid);
					if (o->nodes[i] == r->cfg.self_id)
						o->st[i] = R_OK;
					else
						need_repair = 1;
				}
		if (need_repair)
			o->repairing = 1;
		else
			read_reply(r, o);
	}
	if (o->repairing && count_state(o, R_REPAIRING) == 0) {
		o->repairing = 0;
		read_reply(r, o);
	}
	/* Answers after the reply are repaired as they come (repl_recv);
	 * once nothing is outstanding the operation is over. */
	if (o->replied && pending == 0 && count_state(o, R_REPAIRING) == 0)
		op_free(r, o);
}

/* Starts a read of key: a register (counter 0) or a counter. */
static void read_start(struct repl *r, uint64_t client, const uint8_t *key,
		       size_t klen, enum repl_cl cl, int all_replies,
		       int counter)
{
	struct op *o = op_new(r, OP_READ, r->cfg.read_timeout_ms);
	struct repl_record k = {.key = key, .klen = klen};
	if (!o || rec_copy(&o->rec, &o->buf, &k)) {
		if (o)
			op_free(r, o);
		struct repl_result res = {.status = RK_ENOMEM,
					  .detail = "out of memory"};
		r->rt.reply(r->rt.ctx, client, &res);
		return;
	}
	o->client = client;
	o->cl = cl;
	o->all_replies = all_replies;
	o->counter = counter;
	owners_of(r, key, klen, o, 0);
	o->needed = needed_for(cl, o->n);
	uint32_t up = 0;
	for (uint32_t i = 0; i < o->n; i++) {
		o->st[i] = repl_is_up(r, o->nodes[i]) ? R_PENDING : R_DOWN;
		up += o->st[i] == R_PENDING;
	}
	if (o->n == 0 || up < o->needed) {
		char why[160];
		snprintf(why, sizeof(why), "%u of %u replicas are up, %s "
			 "needs %u", up, o->n, cl_name(cl), o->needed);
		struct repl_result res = {.status = RK_EUNAVAILABLE,
					  .detail = why};
		reply(r, o, &res);
		op_free(r, o);
		return;
	}
	/* R replicas are asked, ourselves first when we are one (a read
	 * that costs no message); the other live ones wait as spares. */
	if (!all_replies && r->cfg.read_speculate_ms) {
		uint32_t ask = 0;
		int self = slot_of(o, r->cfg.self_id);
		if (self >= 0 && o->st[self] == R_PENDING)
			ask = 1;
		for (uint32_t i = 0; i < o->n; i++)
			if ((int)i != self && o->st[i] == R_PENDING) {
				if (ask < o->needed)
					ask++;
				else
					o->st[i] = R_SPARE;
			}
		if (count_state(o, R_SPARE)) {
			o->speculate_at = now(r) + r->cfg.read_speculate_ms;
			heap_push(r, o->speculate_at, o->rid);
		}
	}
	for (uint32_t i = 0; i < o->n; i++)
		if (o->st[i] == R_PENDING)
			read_ask(r, o, i);
	read_check(r, o);
}

void repl_counter_get(struct repl *r, uint64_t client, const uint8_t *key,
		      size_t klen, enum repl_cl cl, int all_replies)
{
	r->stats.counter_reads++;
	read_start(r, client, key, klen, cl, all_replies, 1);
}

void repl_read(struct repl *r, uint64_t client, const uint8_t *key, size_t klen,
	       enum repl_cl cl, int all_replies)
{
	r->stats.reads++;
	read_start(r, client, key, klen, cl, all_replies, 0);
}

/* ------------------------------------------------------------------ */
/* the replica side                                                    */

static void on_write(struct repl *r, uint64_t from, const struct repl_msg *m)
{
	uint64_t lsn = 0;
	r->stats.replica_writes++;
	if (m->flags == 0 && type_refused(r, &m->rec, NULL, 0)) {
		struct repl_msg ack = {.type = REPL_WRITE_ACK,
				       .rid = m->rid,
				       .status = RK_EWRONG_TYPE};
		send(r, from, &ack);
		return;
	}
	int rc = r->rt.store->apply(r->rt.ctx, &m->rec, &lsn);
	if (rc >= 0 && r->rt.store->durable_lsn(r->rt.ctx) <
			   (lsn = covering_lsn(r, rc, lsn))) {
		dw_push(r, lsn, from, m->rid);
		return;
	}
	struct repl_msg ack = {.type = REPL_WRITE_ACK, .rid = m->rid,
			       .status = rc < 0 ? rc : 0};
	send(r, from, &ack);
}

static void on_read(struct repl *r, uint64_t from, const struct repl_msg *m)
{
	struct repl_record got;
	r->stats.replica_reads++;
	int rc = r->rt.store->get(r->rt.ctx, m->rec.key, m->rec.klen, &got);
	struct repl_msg rep = {.type = REPL_READ_REPLY, .rid = m->rid,
			       .status = 0, .found = rc == 0};
	if (rc == 0)
		rep.rec = got;
	else
		rep.rec = (struct repl_record){.key = m->rec.key,
					       .klen = m->rec.klen};
	send(r, from, &rep);
}

void repl_durable(struct repl *r, uint64_t lsn)
{
	while (r->dw_len) {
		struct durable_wait *w = &r->dw[r->dw_head];
		if (w->lsn > lsn)
			break;
		struct durable_wait d = *w;
		r->dw_head = (r->dw_head + 1) % r->dw_cap;
		r->dw_len--;
		if (d.to == r->cfg.self_id) {
			struct op *o = op_find(r, d.rid);
			if (!o || o->kind != OP_WRITE)
				continue;
			int s = slot_of(o, r->cfg.self_id), changed = 0;
			if (s >= 0 && o->st[s] == R_PENDING) {
				o->st[s] = R_OK;
				changed = 1;
			}
			if (o->unshipped) {
				counter_ship(r, o);
				changed = 1;
			}
			if (changed)
				write_check(r, o);
			continue;
		}
		struct repl_msg ack = {.type = REPL_WRITE_ACK, .rid = d.rid};
		send(r, d.to, &ack);
	}
}

/* ------------------------------------------------------------------ */
/* catch-up and streaming                                              */

static struct pos *pos_get(struct repl *r, uint64_t node, int create)
{
	for (size_t i = 0; i < r->n_pos; i++)
		if (r->pos[i].node == node)
			return &r->pos[i];
	if (!create)
		return NULL;
	if (r->n_pos == r->pos_cap) {
		size_t cap = r->pos_cap ? r->pos_cap * 2 : 16;
		struct pos *n = realloc(r->pos, cap * sizeof(*n));
		if (!n)
			return NULL;
		r->pos = n;
		r->pos_cap = cap;
	}
	struct pos *p = &r->pos[r->n_pos++];
	*p = (struct pos){.node = node};
	return p;
}

static void pos_set(struct repl *r, uint64_t node, uint64_t lsn)
{
	struct pos *p = pos_get(r, node, 1);
	if (p && (!p->known || lsn > p->lsn)) {
		p->lsn = lsn;
		p->known = 1;
		r->pos_dirty = 1;
	}
}

static void pos_save(struct repl *r, int force)
{
	uint64_t t = now(r);
	if (!r->rt.store->pos_save)
		r->pos_dirty = 0; /* nowhere to save them */
	if (!r->pos_dirty || (!force && t < r->pos_saved_ms + POS_SAVE_MS))
		return;
	struct repl_pos *out = malloc((r->n_pos ? r->n_pos : 1) * sizeof(*out));
	if (!out)
		return;
	size_t n = 0;
	for (size_t i = 0; i < r->n_pos; i++)
		if (r->pos[i].known)
			out[n++] = (struct repl_pos){r->pos[i].node,
						     r->pos[i].lsn};
	r->rt.store->pos_save(r->rt.ctx, out, n);
	free(out);
	r->pos_dirty = 0;
	r->pos_saved_ms = t;
}

static struct sync *sync_find(struct repl *r, uint64_t peer, int any_kind)
{
	for (struct sync *s = r->syncs; s; s = s->next)
		if (s->peer == peer && (any_kind || !s->explicit_ranges))
			return s;
	return NULL;
}

static size_t syncs_active(const struct repl *r)
{
	size_t n = 0;
	for (struct sync *s = r->syncs; s; s = s->next)
		n++;
	return n;
}

static struct sync *sync_new(struct repl *r, uint64_t peer,
			     const struct repl_range *ranges, size_t n)
{
	struct sync *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->ranges = malloc((n ? n : 1) * sizeof(*s->ranges));
	if (!s->ranges) {
		free(s);
		return NULL;
	}
	if (n)
		memcpy(s->ranges, ranges, n * sizeof(*ranges));
	s->n_ranges = n;
	s->peer = peer;
	s->next = r->syncs;
	r->syncs = s;
	return s;
}

static void sync_end(struct repl *r, struct sync *s, int status)
{
	struct sync **link = &r->syncs;
	while (*link && *link != s)
		link = &(*link)->next;
	if (*link)
		*link = s->next;
	rk_log(r->rt.log, status ? RK_LOG_WARN : RK_LOG_INFO, "repl",
	       "%s from n%" PRIx64 " %s: %" PRIu64 " records applied",
	       s->explicit_ranges ? "pull"
	       : s->digest	  ? "anti-entropy"
				  : "catch-up",
	       s->peer, status ? rk_strerror(status) : "done", s->records);
	if (s->done)
		s->done(s->done_ctx, status);
	pos_save(r, 1);
	free(s->ranges);
	free(s);
}

/* Sends the next batch request of s. */
static void sync_ask(struct repl *r, struct sync *s)
{
	if (s->waiting || s->fetching)
		return;
	if (!repl_is_up(r, s->peer)) {
		s->retry_at = now(r) + SYNC_RETRY_MS;
		return;
	}
	struct op *o = op_new(r, OP_SYNC, r->cfg.read_timeout_ms * 5);
	if (!o) {
		s->retry_at = now(r) + SYNC_RETRY_MS;
		return;
	}
	o->sync = s;
	s->waiting = 1;
	struct repl_msg m = {.rid = o->rid,
			     .max_bytes = r->cfg.batch_bytes,
			     .ranges = s->ranges,
			     .n_ranges = s->n_ranges};
	if (s->kind == SYNC_LOG) {
		m.type = REPL_LOG_READ;
		m.from_lsn = s->from_lsn;
		m.cursor = s->log_cursor;
		m.flags = s->digest ? REPL_F_DIGEST : 0;
	} else {
		m.type = REPL_STREAM_READ;
		m.cursor = s->cursor;
	}
	send(r, s->peer, &m);
}

/* Remembers a catch-up that found no free slot; a full one wins over a
 * digest one for the same peer. */
static void want_later(struct repl *r, uint64_t peer, int digest)
{
	for (size_t i = 0; i < r->n_wanted; i++)
		if (r->wanted[i].peer == peer) {
			r->wanted[i].digest &= digest;
			return;
		}
	if (r->n_wanted == r->cap_wanted) {
		size_t cap = r->cap_wanted ? r->cap_wanted * 2 : 16;
		struct want_sync *n = realloc(r->wanted, cap * sizeof(*n));
		if (!n)
			return; /* the next anti-entropy round gets it */
		r->wanted = n;
		r->cap_wanted = cap;
	}
	r->wanted[r->n_wanted++] = (struct want_sync){peer, digest};
}

/* Starts catching up from peer (if not already), from our position. */
static void catch_up(struct repl *r, uint64_t peer, int digest)
{
	if (peer == r->cfg.self_id || sync_find(r, peer, 0) ||
	    r->n_my_ranges == 0)
		return;
	if (syncs_active(r) >= r->cfg.max_inflight_syncs) {
		want_later(r, peer, digest);
		return;
	}
	struct sync *s = sync_new(r, peer, r->my_ranges, r->n_my_ranges);
	if (!s)
		return;
	struct pos *p = pos_get(r, peer, 0);
	s->kind = SYNC_LOG;
	s->digest = digest;
	s->from_lsn = p && p->known ? p->lsn : 1;
	if (!digest)
		r->stats.catchups++;
	sync_ask(r, s);
}

void repl_catch_up_all(struct repl *r)
{
	for (size_t i = 0; i < r->n_peers; i++)
		catch_up(r, r->peers[i], 0);
}

void repl_pull_ranges(struct repl *r, uint64_t from,
		      const struct repl_range *ranges, size_t n,
		      void (*done)(void *ctx, int status), void *ctx)
{
	struct sync *s = sync_new(r, from, ranges, n);
	if (!s) {
		done(ctx, RK_ENOMEM);
		return;
	}
	s->kind = SYNC_STREAM;
	s->explicit_ranges = 1;
	s->done = done;
	s->done_ctx = ctx;
	r->stats.streams++;
	sync_ask(r, s);
}

static void apply_batch(struct repl *r, struct sync *s,
			const struct repl_record *recs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint64_t lsn;
		if (r->rt.store->apply(r->rt.ctx, &recs[i], &lsn) == 1)
			s->records++;
	}
	if (s->kind == SYNC_STREAM)
		r->stats.stream_records += n;
	else
		r->stats.catchup_records += n;
}

/* Digest batch: fetch in full the records we lack or hold older. */
static void digest_batch(struct repl *r, struct sync *s,
			 const struct repl_record *recs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct repl_record got;
		int rc = r->rt.store->get(r->rt.ctx, recs[i].key, recs[i].klen,
					  &got);
		if (recs[i].type != REPL_REC_COUNTER && rc == 0 &&
		    rk_ts_cmp(got.ts, recs[i].ts) >= 0)
			continue;
		if (recs[i].type == REPL_REC_TOMBSTONE ||
		    recs[i].type == REPL_REC_COUNTER) {
			/* A tombstone's digest is the whole record, and so is
			 * a counter's (its bytes are small, and no timestamp
			 * says which of two states covers the other): merge
			 * it, which changes nothing when it is covered. */
			uint64_t lsn;
			if (r->rt.store->apply(r->rt.ctx, &recs[i], &lsn) == 1)
				s->records++;
			continue;
		}
		struct op *o = op_new(r, OP_FETCH, r->cfg.read_timeout_ms);
		struct repl_record k = {.key = recs[i].key,
					.klen = recs[i].klen};
		if (!o || rec_copy(&o->rec, &o->buf, &k)) {
			if (o)
				op_free(r, o);
			continue;
		}
		o->sync = s;
		s->fetching++;
		struct repl_msg m = {.type = REPL_READ, .rid = o->rid,
				     .rec = o->rec};
		send(r, s->peer, &m);
	}
}

static void on_log_batch(struct repl *r, struct op *o, uint64_t from,
			 const struct repl_msg *m)
{
	struct sync *s = o->sync;
	op_free(r, o);
	s->waiting = 0;
	if (from != s->peer)
		return;
	if (m->status) {
		s->retry_at = now(r) + SYNC_RETRY_MS;
		return;
	}
	if (m->truncated) {
		/* Its log no longer reaches back: stream our ranges whole,
		 * then go on from where the stream began. */
		rk_info(r->rt.log, "repl",
			"n%" PRIx64 "'s log starts after lsn %" PRIu64
			": streaming our ranges from it",
			s->peer, s->from_lsn);
		s->kind = SYNC_STREAM;
		s->cursor = 0;
		s->stream_lsn = 0;
		r->stats.streams++;
		sync_ask(r, s);
		return;
	}
	if (s->digest)
		digest_batch(r, s, m->recs, m->n_recs);
	else
		apply_batch(r, s, m->recs, m->n_recs);
	s->from_lsn = m->next_lsn;
	s->log_cursor = m->cursor;
	if (!s->fetching)
		pos_set(r, s->peer, m->next_lsn);
	if (m->next_lsn >= m->end_lsn && !s->fetching) {
		sync_end(r, s, 0);
		return;
	}
	sync_ask(r, s);
}

static void on_stream_batch(struct repl *r, struct op *o, uint64_t from,
			    const struct repl_msg *m)
{
	struct sync *s = o->sync;
	op_free(r, o);
	s->waiting = 0;
	if (from != s->peer)
		return;
	if (m->status) {
		s->retry_at = now(r) + SYNC_RETRY_MS;
		return;
	}
	if (!s->stream_lsn)
		s->stream_lsn = m->end_lsn ? m->end_lsn : 1;
	apply_batch(r, s, m->recs, m->n_recs);
	s->cursor = m->cursor;
	if (!m->done) {
		sync_ask(r, s);
		return;
	}
	/* Writes that reached the peer while we streamed are in its log
	 * from where the stream began. */
	s->kind = SYNC_LOG;
	s->digest = 0;
	s->from_lsn = s->stream_lsn;
	s->log_cursor = 0;
	sync_ask(r, s);
}

static void on_fetch_reply(struct repl *r, struct op *o,
			   const struct repl_msg *m)
{
	struct sync *s = o->sync;
	op_free(r, o);
	if (m->status == 0 && m->found) {
		uint64_t lsn;
		if (r->rt.store->apply(r->rt.ctx, &m->rec, &lsn) == 1)
			s->records++;
	}
	if (--s->fetching == 0 && !s->waiting) {
		pos_set(r, s->peer, s->from_lsn);
		sync_ask(r, s);
	}
}

/* Serving a peer: our log from a position, or our table in ranges. */
static void serve_start(struct repl *r, uint64_t from,
			const struct repl_msg *m)
{
	struct serve *sv = calloc(1, sizeof(*sv));
	if (!sv)
		return;
	sv->token = ++r->next_token;
	sv->peer = from;
	sv->rid = m->rid;
	sv->type = m->type;
	sv->digest = (m->flags & REPL_F_DIGEST) != 0;
	sv->next = r->serving;
	r->serving = sv;
	uint32_t max = m->max_bytes && m->max_bytes < r->cfg.batch_bytes * 4
			       ? m->max_bytes
			       : r->cfg.batch_bytes;
	if (m->type == REPL_LOG_READ)
		r->rt.store->log_read(r->rt.ctx, sv->token, m->from_lsn,
				      m->cursor, m->ranges, m->n_ranges, max,
				      sv->digest);
	else
		r->rt.store->scan(r->rt.ctx, sv->token, m->cursor, m->ranges,
				  m->n_ranges, max);
}

static struct serve *serve_take(struct repl *r, uint64_t token)
{
	for (struct serve **l = &r->serving; *l; l = &(*l)->next)
		if ((*l)->token == token) {
			struct serve *sv = *l;
			*l = sv->next;
			return sv;
		}
	return NULL;
}

void repl_log_read_done(struct repl *r, uint64_t token, int status,
			const struct repl_record *recs, size_t n,
			uint64_t next_lsn, uint64_t cursor, uint64_t end_lsn,
			int truncated)
{
	struct serve *sv = serve_take(r, token);
	if (!sv)
		return;
	struct repl_msg m = {.type = REPL_LOG_BATCH, .rid = sv->rid,
			     .status = status, .recs = recs, .n_recs = n,
			     .next_lsn = next_lsn, .end_lsn = end_lsn,
			     .truncated = truncated, .cursor = cursor,
			     .flags = sv->digest ? REPL_F_DIGEST : 0};
	send(r, sv->peer, &m);
	free(sv);
}

void repl_scan_done(struct repl *r, uint64_t token, int status,
		    const struct repl_record *recs, size_t n, uint64_t cursor,
		    int done)
{
	struct serve *sv = serve_take(r, token);
	if (!sv)
		return;
	struct repl_msg m = {.type = REPL_STREAM_BATCH, .rid = sv->rid,
			     .status = status, .recs = recs, .n_recs = n,
			     .cursor = cursor, .done = done,
			     /* The puller's log catch-up starts here: at our
			      * durable end, so that what the table does not
			      * show yet (an owner's add waiting for its fsync)
			      * comes with the log. */
			     .end_lsn = r->rt.store->durable_lsn(r->rt.ctx) + 1};
	send(r, sv->peer, &m);
	free(sv);
}

/* ------------------------------------------------------------------ */
/* messages in                                                         */

void repl_recv(struct repl *r, uint64_t from, const struct repl_msg *m)
{
	switch (m->type) {
	case REPL_WRITE:
		on_write(r, from, m);
		return;
	case REPL_READ:
		on_read(r, from, m);
		return;
	case REPL_LOG_READ:
	case REPL_STREAM_READ:
		serve_start(r, from, m);
		return;
	case REPL_COUNTER_ADD:
		counter_own(r, 0, from, m->rid, m->rec.key, m->rec.klen,
			    m->delta, &m->op, (enum repl_cl)m->cl);
		return;
	default:
		break;
	}
	/* A reply: to one of our operations, if it is still waiting. */
	struct op *o = op_find(r, m->rid);
	if (!o)
		return;
	int slot = slot_of(o, from);
	switch (m->type) {
	case REPL_WRITE_ACK:
		if (o->kind == OP_HINT) {
			if (from == o->target)
				hint_settle(r, o, m->status == 0);
			return;
		}
		if (o->kind == OP_READ && slot >= 0 &&
		    o->st[slot] == R_REPAIRING) {
			o->st[slot] = R_OK;
			read_check(r, o);
			return;
		}
		if (o->kind != OP_WRITE || slot < 0 || o->st[slot] != R_PENDING)
			return;
		o->st[slot] = m->status == 0		    ? R_OK
			      : m->status == RK_EWRONG_TYPE ? R_REFUSED
							    : R_FAILED;
		if (o->st[slot] == R_REFUSED && !o->why[0])
			snprintf(o->why, sizeof(o->why),
				 "replica n%" PRIx64 " holds the key as the "
				 "other type (a %s)",
				 from,
				 o->rec.type == REPL_REC_COUNTER ? "value"
								 : "counter");
		write_check(r, o);
		return;
	case REPL_COUNTER_ADD_REPLY:
		if (o->kind == OP_CADD && from == o->target)
			cadd_done(r, o, m, 0, 0, NULL);
		return;
	case REPL_READ_REPLY:
		if (o->kind == OP_FETCH) {
			if (o->sync && from == o->sync->peer)
				on_fetch_reply(r, o, m);
			return;
		}
		if (o->kind != OP_READ || slot < 0 || o->st[slot] != R_PENDING)
			return;
		o->st[slot] = R_OK;
		o->ans[slot].status = m->status ? m->status
				      : m->found ? 0
						 : RK_ENOT_FOUND;
		if (m->found && rec_copy(&o->ans[slot].rec, &o->ans[slot].buf,
					 &m->rec))
			o->st[slot] = R_FAILED;
		if (o->replied && (m->found || o->counter) &&
		    o->cl != REPL_CL_ONE &&
		    (o->counter || !answered_type(o, REPL_REC_COUNTER))) {
			/* A late answer: repair it in the background if
			 * behind what the read settled on. */
			const struct repl_record *t = read_target(o);
			if (t && is_stale(o, (uint32_t)slot, t))
				send_repair(r, o, (uint32_t)slot, t, 0);
		}
		read_check(r, o);
		return;
	case REPL_LOG_BATCH:
		if (o->kind == OP_SYNC)
			on_log_batch(r, o, from, m);
		return;
	case REPL_STREAM_BATCH:
		if (o->kind == OP_SYNC)
			on_stream_batch(r, o, from, m);
		return;
	default:
		return;
	}
}

/* A request that could not leave: fail its replica now. */
void repl_unreachable(struct repl *r, uint64_t to, const struct repl_msg *m)
{
	if (m->type == REPL_WRITE_ACK || m->type == REPL_READ_REPLY ||
	    m->type == REPL_LOG_BATCH || m->type == REPL_STREAM_BATCH ||
	    m->type == REPL_COUNTER_ADD_REPLY)
		return; /* a lost reply: the asker's timer decides */
	struct op *o = op_find(r, m->rid);
	if (!o)
		return;
	int slot = slot_of(o, to);
	switch (o->kind) {
	case OP_WRITE:
		if (slot >= 0 && o->st[slot] == R_PENDING) {
			o->st[slot] = R_FAILED;
			write_check(r, o);
		}
		return;
	case OP_READ:
		if (slot >= 0 && o->st[slot] == R_PENDING) {
			o->st[slot] = R_FAILED;
			read_check(r, o);
		} else if (slot >= 0 && o->st[slot] == R_REPAIRING) {
			o->st[slot] = R_FAILED;
			read_check(r, o);
		}
		return;
	case OP_HINT:
		hint_settle(r, o, 0);
		return;
	case OP_SYNC:
		o->sync->waiting = 0;
		o->sync->retry_at = now(r) + SYNC_RETRY_MS;
		op_free(r, o);
		return;
	case OP_FETCH: {
		struct sync *s = o->sync;
		op_free(r, o);
		if (--s->fetching == 0)
			s->retry_at = now(r); /* position not advanced */
		return;
	}
	case OP_CADD: {
		/* It never left: nothing was applied.  (A broken link after
		 * it left comes through repl_peer_down instead.) */
		char why[160];
		snprintf(why, sizeof(why),
			 "cannot reach n%" PRIx64 ", the replica that owns "
			 "this op id; the add was not applied",
			 o->target);
		cadd_done(r, o, NULL, RK_EUNAVAILABLE, 0, why);
		return;
	}
	}
}

void repl_peer_down(struct repl *r, uint64_t node)
{
	/* Collect first: failing a replica may free its operation. */
	size_t n = 0, cap = 64;
	uint64_t *rids = malloc(cap * sizeof(*rids));
	if (!rids)
		return;
	for (size_t i = 0; i < r->ops_cap; i++)
		for (struct op *o = r->ops[i]; o; o = o->hnext) {
			int slot = slot_of(o, node);
			int waits =
			    (o->kind == OP_WRITE || o->kind == OP_READ)
				? slot >= 0 && (o->st[slot] == R_PENDING ||
						o->st[slot] == R_REPAIRING)
			    : o->kind == OP_HINT || o->kind == OP_CADD
				? o->target == node
				: o->sync && o->sync->peer == node;
			if (!waits)
				continue;
			if (n == cap) {
				uint64_t *nr = realloc(rids, cap * 2 * sizeof(*nr));
				if (!nr)
					break;
				rids = nr;
				cap *= 2;
			}
			rids[n++] = o->rid;
		}
	for (size_t i = 0; i < n; i++) {
		struct op *o = op_find(r, rids[i]);
		if (!o)
			continue;
		if (o->kind == OP_CADD) {
			/* It may have reached the owner before the link
			 * broke. */
			char why[200];
			snprintf(why, sizeof(why),
				 "lost the link to n%" PRIx64 ", the replica "
				 "that owns this op id; the add may or may "
				 "not have been applied (retry with the same "
				 "op id)",
				 node);
			cadd_done(r, o, NULL, RK_EUNAVAILABLE, 1, why);
			continue;
		}
		/* The same path as a message that could not leave. */
		struct repl_msg m = {.type = o->kind == OP_HINT ? REPL_WRITE
					     : o->kind == OP_READ ? REPL_READ
								  : REPL_WRITE,
				     .rid = rids[i]};
		repl_unreachable(r, node, &m);
	}
	free(rids);
}

/* ------------------------------------------------------------------ */
/* time                                                                */

static void op_expired(struct repl *r, struct op *o)
{
	switch (o->kind) {
	case OP_WRITE:
		for (uint32_t i = 0; i < o->n; i++)
			if (o->st[i] == R_PENDING)
				o->st[i] = R_FAILED;
		if (!o->replied) {
			uint32_t ok = count_state(o, R_OK);
			char why[160];
			snprintf(why, sizeof(why),
				 "%u of %u replicas acknowledged within %u ms, "
				 "%s needs %u; the write may or may not have "
				 "been applied",
				 ok, o->n_natural, r->cfg.write_timeout_ms,
				 cl_name(o->cl), o->needed);
			struct repl_result res = {.status = RK_ETIMEOUT,
						  .detail = why,
						  .maybe_applied = 1,
						  .ts = o->rec.ts,
						  .answered = ok};
			reply(r, o, &res);
		}
		write_check(r, o); /* hints, then frees */
		return;
	case OP_READ: {
		for (uint32_t i = 0; i < o->n; i++)
			if (o->st[i] == R_PENDING || o->st[i] == R_REPAIRING)
				o->st[i] = R_FAILED;
		uint32_t ok = count_state(o, R_OK);
		if (!o->replied && o->all_replies && ok >= o->needed) {
			read_reply(r, o); /* whoever answered in time */
		} else if (!o->replied) {
			char why[160];
			snprintf(why, sizeof(why),
				 "%u of %u replicas answered within %u ms, %s "
				 "needs %u",
				 ok, o->n, r->cfg.read_timeout_ms,
				 cl_name(o->cl), o->needed);
			struct repl_result res = {.status = RK_ETIMEOUT,
						  .detail = why, .answered = ok};
			reply(r, o, &res);
		}
		op_free(r, o);
		return;
	}
	case OP_HINT:
		hint_settle(r, o, 0);
		return;
	case OP_SYNC:
		o->sync->waiting = 0;
		o->sync->retry_at = now(r) + SYNC_RETRY_MS;
		op_free(r, o);
		return;
	case OP_FETCH: {
		struct sync *s = o->sync;
		op_free(r, o);
		if (--s->fetching == 0)
			s->retry_at = now(r);
		return;
	}
	case OP_CADD: {
		char why[200];
		snprintf(why, sizeof(why),
			 "n%" PRIx64 ", the replica that owns this op id, did "
			 "not answer within %u ms; the add may or may not "
			 "have been applied (retry with the same op id)",
			 o->target,
			 r->cfg.write_timeout_ms + r->cfg.read_timeout_ms);
		cadd_done(r, o, NULL, RK_ETIMEOUT, 1, why);
		return;
	}
	}
}

void repl_tick(struct repl *r)
{
	uint64_t t = now(r);
	while (r->heap_len && r->heap[0].at <= t) {
		struct dl d = heap_pop(r);
		struct op *o = op_find(r, d.rid);
		if (o && o->deadline == d.at) {
			op_expired(r, o);
		} else if (o && o->speculate_at == d.at) {
			/* A read whose asked replicas are slow: ask the rest
			 * (whichever R answer first decide). */
			o->speculate_at = 0;
			if (!o->replied && read_ask_spares(r, o, o->n))
				read_check(r, o);
		}
	}
	hints_deliver(r);
	for (struct sync *s = r->syncs, *next; s; s = next) {
		next = s->next;
		if (!s->waiting && !s->fetching && s->retry_at <= t)
			sync_ask(r, s);
	}
	while (r->n_wanted && syncs_active(r) < r->cfg.max_inflight_syncs) {
		struct want_sync w = r->wanted[--r->n_wanted];
		catch_up(r, w.peer, w.digest);
	}
	if (t >= r->next_anti_entropy) {
		r->next_anti_entropy = t + r->cfg.anti_entropy_ms;
		for (size_t i = 0; i < r->n_peers; i++) {
			struct pos *p = pos_get(r, r->peers[i], 0);
			/* No position yet: a full catch-up first. */
			catch_up(r, r->peers[i], p && p->known);
		}
	}
	pos_save(r, 0);
}

uint64_t repl_next_deadline(const struct repl *r)
{
	uint64_t at = r->next_anti_entropy;
	if (r->heap_len && r->heap[0].at < at)
		at = r->heap[0].at;
	for (size_t i = 0; i < r->n_hq; i++)
		if (r->hq[i].head && repl_is_up(r, r->hq[i].target)) {
			uint64_t soon = now(r) + 10;
			if (soon < at)
				at = soon;
			break;
		}
	for (struct sync *s = r->syncs; s; s = s->next)
		if (!s->waiting && !s->fetching && s->retry_at < at)
			at = s->retry_at;
	if (r->n_wanted && syncs_active(r) < r->cfg.max_inflight_syncs)
		at = now(r);
	uint64_t save = r->pos_saved_ms + POS_SAVE_MS;
	if (r->pos_dirty && save < at)
		at = save;
	return at;
}

/* ------------------------------------------------------------------ */
/* ring and liveness                                                   */

static int u64_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static void add_peers(struct repl *r, const uint64_t *owners, size_t n)
{
	for (size_t k = 0; k < n; k++) {
		if (owners[k] == r->cfg.self_id)
			continue;
		size_t j;
		for (j = 0; j < r->n_peers; j++)
			if (r->peers[j] == owners[k])
				break;
		if (j == r->n_peers)
			r->peers[r->n_peers++] = owners[k];
	}
}

static int owns(const uint64_t *owners, size_t n, uint64_t self)
{
	for (size_t k = 0; k < n; k++)
		if (owners[k] == self)
			return 1;
	return 0;
}

/* Our ranges in the natural ring and, during a change, the pending one
 * (merged where adjacent, never overlapping) and the peers that share
 * them.  Every vnode token of both rings cuts the circle, so each piece
 * lies inside one vnode range of each ring. */
static void compute_ranges(struct repl *r)
{
	free(r->my_ranges);
	free(r->peers);
	r->my_ranges = NULL;
	r->peers = NULL;
	r->n_my_ranges = r->n_peers = 0;
	size_t v1 = r->ring ? ring_vnode_count(r->ring) : 0;
	size_t v2 = r->pending ? ring_vnode_count(r->pending) : 0;
	if (!v1 && !v2)
		return;
	uint64_t *cuts = malloc((v1 + v2) * sizeof(*cuts));
	size_t members = (r->ring ? ring_member_count(r->ring) : 0) +
			 (r->pending ? ring_member_count(r->pending) : 0);
	r->my_ranges = malloc((v1 + v2) * sizeof(*r->my_ranges));
	r->peers = malloc((members + 1) * sizeof(uint64_t));
	if (!cuts || !r->my_ranges || !r->peers) {
		free(cuts);
		return;
	}
	size_t nc = 0;
	for (size_t i = 0; i < v1; i++)
		cuts[nc++] = ring_vnode_token(r->ring, i);
	for (size_t i = 0; i < v2; i++)
		cuts[nc++] = ring_vnode_token(r->pending, i);
	qsort(cuts, nc, sizeof(*cuts), u64_cmp);
	size_t u = 0;
	for (size_t i = 0; i < nc; i++)
		if (!u || cuts[u - 1] != cuts[i])
			cuts[u++] = cuts[i];
	for (size_t i = 0; i < u; i++) {
		uint64_t end = cuts[i];
		uint64_t start = u == 1 ? end : cuts[i ? i - 1 : u - 1];
		uint64_t a[RING_RF_MAX], b[RING_RF_MAX];
		size_t na = 0, nb = 0;
		if (v1)
			ring_lookup(r->ring, end, r->cfg.rf, a, &na);
		if (v2)
			ring_lookup(r->pending, end, r->cfg.rf, b, &nb);
		if (!owns(a, na, r->cfg.self_id) && !owns(b, nb, r->cfg.self_id))
			continue;
		add_peers(r, a, na);
		add_peers(r, b, nb);
		if (r->n_my_ranges && u > 1 &&
		    r->my_ranges[r->n_my_ranges - 1].end == start)
			r->my_ranges[r->n_my_ranges - 1].end = end;
		else
			r->my_ranges[r->n_my_ranges++] =
				(struct repl_range){start, end};
	}
	free(cuts);
	qsort(r->my_ranges, r->n_my_ranges, sizeof(*r->my_ranges), range_cmp);
}

void repl_set_ring(struct repl *r, const struct ring *ring,
		   const struct ring *pending)
{
	size_t old_n = r->n_my_ranges;
	struct repl_range *old = NULL;
	if (old_n && (old = malloc(old_n * sizeof(*old))) != NULL)
		memcpy(old, r->my_ranges, old_n * sizeof(*old));
	r->ring = ring;
	r->pending = pending;
	compute_ranges(r);
	/* Our ranges moved: a coordinator that had not seen the change yet
	 * may have written around us, so reconcile with the (maybe new)
	 * co-replicas soon rather than at the next periodic round. */
	int moved = !old || old_n != r->n_my_ranges ||
		    memcmp(old, r->my_ranges, old_n * sizeof(*old)) != 0;
	free(old);
	uint64_t soon = now(r) + ANTI_ENTROPY_AFTER_RING_MS;
	if (moved && soon < r->next_anti_entropy)
		r->next_anti_entropy = soon;
}

void repl_set_up(struct repl *r, uint64_t node, int up)
{
	if (node == r->cfg.self_id)
		return;
	int was = repl_is_up(r, node);
	if (up == was)
		return;
	if (up) {
		if (r->n_up == r->up_cap) {
			size_t cap = r->up_cap ? r->up_cap * 2 : 16;
			uint64_t *n = realloc(r->up_nodes, cap * sizeof(*n));
			if (!n)
				return;
			r->up_nodes = n;
			r->up_cap = cap;
		}
		r->up_nodes[r->n_up++] = node;
		/* Back from a crash or a partition: it may hold writes we
		 * missed while we could not reach each other. */
		for (size_t i = 0; i < r->n_peers; i++)
			if (r->peers[i] == node)
				catch_up(r, node, 0);
	} else {
		for (size_t i = 0; i < r->n_up; i++)
			if (r->up_nodes[i] == node) {
				r->up_nodes[i] = r->up_nodes[--r->n_up];
				break;
			}
	}
}

/* ------------------------------------------------------------------ */

void repl_config_defaults(struct repl_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->rf = 3;
	cfg->write_timeout_ms = DEFAULT_WRITE_TIMEOUT_MS;
	cfg->read_timeout_ms = DEFAULT_READ_TIMEOUT_MS;
	cfg->read_speculate_ms = DEFAULT_READ_SPECULATE_MS;
	cfg->hint_window_ms = DEFAULT_HINT_WINDOW_MS;
	cfg->hint_rate = DEFAULT_HINT_RATE;
	cfg->hint_max_bytes = DEFAULT_HINT_MAX_BYTES;
	cfg->batch_bytes = DEFAULT_BATCH_BYTES;
	cfg->anti_entropy_ms = DEFAULT_ANTI_ENTROPY_MS;
	cfg->max_inflight_syncs = DEFAULT_MAX_SYNCS;
}

int repl_new(const struct repl_config *cfg, const struct repl_runtime *rt,
	     struct repl **out)
{
	*out = NULL;
	if (!cfg->self_id || !cfg->rf || cfg->rf > RING_RF_MAX || !rt->store ||
	    !rt->send || !rt->reply || !rt->now_ms)
		return RK_EINVALID;
	struct repl *r = calloc(1, sizeof(*r));
	if (!r)
		return RK_ENOMEM;
	r->cfg = *cfg;
	r->rt = *rt;
	if (ops_grow(r)) {
		free(r);
		return RK_ENOMEM;
	}
	r->next_anti_entropy = now(r) + r->cfg.anti_entropy_ms;
	r->pos_saved_ms = now(r);
	*out = r;
	return 0;
}

void repl_free(struct repl *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->ops_cap; i++) {
		struct op *o = r->ops[i];
		while (o) {
			struct op *next = o->hnext;
			for (uint32_t k = 0; k < o->n; k++)
				free(o->ans[k].buf);
			free(o->buf);
			free(o->mbuf);
			crdt_free(o->merged);
			free(o);
			o = next;
		}
	}
	free(r->ops);
	free(r->heap);
	free(r->up_nodes);
	free(r->dw);
	for (size_t i = 0; i < r->n_hq; i++) {
		struct hint *h = r->hq[i].head;
		while (h) {
			struct hint *next = h->next;
			free(h->buf);
			free(h);
			h = next;
		}
	}
	free(r->hq);
	while (r->syncs) {
		struct sync *s = r->syncs;
		r->syncs = s->next;
		if (s->done)
			s->done(s->done_ctx, RK_ESHUTTING_DOWN);
		free(s->ranges);
		free(s);
	}
	while (r->serving) {
		struct serve *sv = r->serving;
		r->serving = sv->next;
		free(sv);
	}
	free(r->my_ranges);
	free(r->peers);
	free(r->pos);
	free(r->wanted);
	free(r);
}

void repl_hint_restore(struct repl *r, uint64_t target,
		       const struct repl_record *rec, uint64_t created_ms)
{
	hint_add(r, target, rec, created_ms, 0);
}

void repl_pos_restore(struct repl *r, uint64_t node, uint64_t lsn)
{
	pos_set(r, node, lsn);
	r->pos_dirty = 0;
}

struct repl_rangeset {
	size_t n;
	int wrap;              /* index of the range through 0, or -1 */
	struct repl_range r[]; /* sorted by end */
};

struct repl_rangeset *repl_rangeset_new(const struct repl_range *r, size_t n)
{
	struct repl_rangeset *rs = malloc(sizeof(*rs) + n * sizeof(*r));
	if (!rs)
		return NULL;
	rs->n = n;
	if (n)
		memcpy(rs->r, r, n * sizeof(*r));
	qsort(rs->r, n, sizeof(*r), range_cmp);
	rs->wrap = -1;
	for (size_t i = 0; i < n; i++)
		if (rs->r[i].start >= rs->r[i].end)
			rs->wrap = (int)i;
	return rs;
}

int repl_rangeset_contains(const struct repl_rangeset *rs, uint64_t t)
{
	if (rs->wrap >= 0) {
		const struct repl_range *w = &rs->r[rs->wrap];
		if (t > w->start || t <= w->end)
			return 1;
	}
	/* The first range ending at or after t is the only other candidate
	 * (ranges do not overlap). */
	size_t lo = 0, hi = rs->n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (rs->r[mid].end < t)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == rs->n)
		return 0;
	const struct repl_range *c = &rs->r[lo];
	return c->start < c->end && t > c->start;
}

void repl_get_stats(const struct repl *r, struct repl_stats *out)
{
	*out = r->stats;
	out->hints_pending = r->hints_total;
}

size_t repl_unfinished(const struct repl *r)
{
	size_t n = 0;
	for (size_t i = 0; i < r->ops_cap; i++)
		for (const struct op *o = r->ops[i]; o; o = o->hnext)
			n += o->kind == OP_WRITE || o->kind == OP_HINT ||
			     o->kind == OP_CADD;
	for (size_t i = 0; i < r->n_hq; i++)
		if (repl_is_up(r, r->hq[i].target))
			n += r->hq[i].count;
	return n;
}

uint64_t repl_hints_pending(const struct repl *r, uint64_t node)
{
	if (!node)
		return r->hints_total;
	for (size_t i = 0; i < r->n_hq; i++)
		if (r->hq[i].target == node)
			return r->hq[i].count;
	return 0;
}

size_t repl_replicas(const struct repl *r, uint64_t token, uint64_t *out)
{
	size_t n = 0;
	if (r->ring)
		ring_lookup(r->ring, token, r->cfg.rf, out, &n);
	return n;
}
