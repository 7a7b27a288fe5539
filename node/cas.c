/* cas.c: compare-and-set in the node (see cas.h for what and why).
 *
 * The Paxos module decides; this file only carries its inputs and outputs:
 *
 *   client Cas / SERIAL request -> route: the key's primary replica
 *       primary is us          -> paxos_cas / paxos_serial_read
 *       primary is a peer      -> PEER_OP_CAS to it; its CasReply answers
 *   peer PEER_OP_PAXOS         -> paxos_wire_decode -> paxos_recv
 *   paxos send(to, m)          -> paxos_wire_encode -> PEER_OP_PAXOS, or
 *                                 the loopback queue when to is us
 *   paxos persist(key, state)  -> store_paxos_put (forced fdatasync);
 *                                 paxos_persisted once store_synced_lsn
 *                                 reaches it (cas_durable)
 *   paxos apply_commit         -> store_apply: a normal LWW record
 *   paxos read_current         -> store_get
 *   paxos reply(token, result) -> the client's or the peer's answer
 *   one ev_timer               -> paxos_tick at paxos_next_deadline
 *
 * Where a request runs.  The primary is the first replica, in ring
 * preference order, that gossip calls alive or suspect (the smart client
 * picks the same node, so most requests arrive there directly).  Views of
 * liveness differ between nodes for a few seconds around a failure; a
 * request may then run at two nodes for one key, which Paxos keeps safe
 * (ballots order them) at the price of a duel, settled by the module's
 * randomized backoff.
 *
 * Mixing with plain writes: see paxos/README.md; the node adds nothing.
 */
#include "cas.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "err.h"
#include "hash.h"
#include "paxos.h"
#include "paxos_wire.h"
#include "peer_wire.h"
#include "record.h"
#include "ring.h"
#include "rng.h"

/* ---- tuning ----------------------------------------------------------- */

/* A forwarded request waits this much longer than the time it gives the
 * primary: the primary answers TIMEOUT itself, and that answer travels. */
#define CAS_FORWARD_SLACK_MS 500u
/* Bytes of a key shown in log lines. */
#define LOG_KEY_MAX 32u


/* ---- state ------------------------------------------------------------ */

/* Who is waiting for an operation's answer. */
enum origin {
	FROM_CLIENT = 0, /* a client connection: an rk_response */
	FROM_PEER = 1,	 /* a peer that forwarded it: a CasReply */
};

/* One request this node answers.  Lives from cas_client / cas_peer until
 * its answer; owned by the slot table. */
struct op {
	struct cas *c;
	uint32_t slot; /* index in c->ops */
	uint32_t gen;  /* with slot: the token paxos gets */
	enum origin origin;
	struct conn *conn;    /* held (server_conn_ref) until answered */
	uint64_t id;	      /* the client's or the peer's request id */
	enum rk_op client_op; /* FROM_CLIENT: CAS, GET, EXISTS, PUT, DELETE */
	enum peer_cas_op kind;
	int expect_absent;	  /* CAS: the key must have no value ... */
	struct rk_bytes expected; /* ... else this one; in mem */
	int del;		  /* CAS, WRITE: delete ... */
	struct rk_bytes value;	  /* ... else write this; in mem */
	struct rk_bytes key;	  /* in mem */
	uint64_t deadline;	  /* monotonic ms */
	int forwarded;		  /* a CasForward is out */
	uint64_t forwarded_to;
	uint8_t mem[]; /* key, expected, value */
};

/* A message from us to us, delivered on the next loop turn. */
struct loopback {
	struct loopback *next;
	size_t len;
	uint8_t data[];
};

/* A persist() whose record is not yet on disk. */
struct pending {
	uint64_t token; /* paxos persist token */
	uint64_t lsn;	/* the RK_REC_PAXOS record */
};

struct cas {
	struct cas_deps d;
	struct paxos *px;
	struct rk_rng rng;
	int draining, stopped;

	struct op **ops; /* slot table; NULL entries are free */
	uint32_t *gens;	 /* generation per slot */
	size_t n_ops, cap_ops, live_ops;
	size_t free_hint;

	struct pending *pend; /* FIFO ring of persists waiting for fsync */
	size_t pend_head, pend_len, pend_cap;

	struct loopback *lb_head, *lb_tail;

	struct rk_buf scratch;
	ev_timer timer; /* at paxos_next_deadline() */
	ev_check check; /* each turn: the loopback queue */
	ev_idle idle;	/* keeps the loop turning while it is not empty */
	struct cas_stats st;
};

#define LOG_INFO(c, ...) rk_info((c)->d.lg, "cas", __VA_ARGS__)
#define LOG_WARN(c, ...) rk_warn((c)->d.lg, "cas", __VA_ARGS__)
#define LOG_DEBUG(c, ...) rk_debug((c)->d.lg, "cas", __VA_ARGS__)

static uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* A printable form of a key for logs. */
static const char *key_str(char *buf, size_t cap, struct rk_bytes k)
{
	size_t o = 0;
	for (size_t i = 0; i < k.n && i < LOG_KEY_MAX && o + 5 < cap; i++) {
		uint8_t b = k.p[i];
		if (b >= 0x20 && b < 0x7f && b != '\\')
			buf[o++] = (char)b;
		else
			o += (size_t)snprintf(buf + o, cap - o, "\\x%02x", b);
	}
	buf[o] = 0;
	return buf;
}

#define KEYSTR(k) key_str((char[160]){0}, 160, (k))

/* ---- the timer -------------------------------------------------------- */

static void rearm(struct cas *c)
{
	if (c->stopped)
		return;
	uint64_t at = paxos_next_deadline(c->px);
	ev_timer_stop(c->d.loop, &c->timer);
	if (at == UINT64_MAX)
		return;
	uint64_t t = mono_ms();
	ev_timer_set(&c->timer, at > t ? (double)(at - t) / 1000.0 : 0.0, 0.0);
	ev_timer_start(c->d.loop, &c->timer);
}

static void on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	struct cas *c = w->data;
	paxos_tick(c->px);
	rearm(c);
}

/* ---- operations: the slot table -------------------------------------- */

static uint64_t op_token(const struct op *o)
{
	return ((uint64_t)o->gen << 32) | (o->slot + 1u);
}

static struct op *op_of_token(struct cas *c, uint64_t token)
{
	uint32_t slot = (uint32_t)token;
	if (slot == 0 || slot > c->n_ops)
		return NULL;
	struct op *o = c->ops[slot - 1];
	if (!o || o->gen != (uint32_t)(token >> 32))
		return NULL;
	return o;
}

/* A new operation holding conn, with copies of its byte strings.  NULL:
 * out of memory or over cas.max_ops (*why says which). */
static struct op *op_new(struct cas *c, struct conn *conn, uint64_t id,
			 struct rk_bytes key, struct rk_bytes expected,
			 struct rk_bytes value, int *why)
{
	if (c->live_ops >= c->d.cfg->cas_max_ops) {
		*why = RK_EOVERLOADED;
		return NULL;
	}
	*why = RK_ENOMEM;
	size_t i = c->free_hint;
	while (i < c->n_ops && c->ops[i])
		i++;
	if (i == c->n_ops) {
		if (c->n_ops == c->cap_ops) {
			size_t cap = c->cap_ops ? 2 * c->cap_ops : 64;
			struct op **no = realloc(c->ops, cap * sizeof(*no));
			if (!no)
				return NULL;
			c->ops = no;
			uint32_t *ng = realloc(c->gens, cap * sizeof(*ng));
			if (!ng)
				return NULL;
			c->gens = ng;
			c->cap_ops = cap;
		}
		c->ops[c->n_ops] = NULL;
		c->gens[c->n_ops] = 0;
		c->n_ops++;
	}
	struct op *o = calloc(1, sizeof(*o) + key.n + expected.n + value.n);
	if (!o)
		return NULL;
	uint8_t *m = o->mem;
	o->key = (struct rk_bytes){m, key.n};
	memcpy(m, key.p, key.n);
	m += key.n;
	o->expected = (struct rk_bytes){m, expected.n};
	if (expected.n)
		memcpy(m, expected.p, expected.n);
	m += expected.n;
	o->value = (struct rk_bytes){m, value.n};
	if (value.n)
		memcpy(m, value.p, value.n);
	o->c = c;
	o->slot = (uint32_t)i;
	o->gen = ++c->gens[i];
	o->conn = conn;
	o->id = id;
	server_conn_ref(conn);
	c->ops[i] = o;
	c->free_hint = i + 1;
	c->live_ops++;
	return o;
}

static void op_free(struct op *o)
{
	struct cas *c = o->c;
	c->ops[o->slot] = NULL;
	if (o->slot < c->free_hint)
		c->free_hint = o->slot;
	c->live_ops--;
	server_conn_unref(o->conn);
	free(o);
}

/* ---- answers ---------------------------------------------------------- */

/* What an operation ended with, from paxos or from the primary. */
struct outcome {
	int status;
	const char *error; /* detail; NULL: one from the status */
	int applied;
	int exists;
	struct rk_bytes value;
	rk_ts ts;
};

/* The detail a client sees for a status of ours. */
static const char *detail_of(int status)
{
	switch (status) {
	case RK_ECONTENTION_TIMEOUT:
		return "other proposers kept winning the key (or this one's "
		       "fate could not be learned); the outcome is unknown";
	case RK_ETIMEOUT:
		return "the compare-and-set did not finish within cas.timeout; "
		       "the outcome is unknown";
	case RK_EUNAVAILABLE:
		return "fewer than a majority of the key's replicas are up; "
		       "nothing was written";
	case RK_EOVERLOADED:
		return "too many compare-and-set operations wait on this key "
		       "or this node (cas.max_queue, cas.max_ops); nothing was "
		       "written";
	default:
		return NULL;
	}
}

/* Answers o (to its client or its peer) and frees it. */
static void op_answer(struct op *o, const struct outcome *r)
{
	const char *err =
	    r->status ? (r->error ? r->error : detail_of(r->status)) : NULL;
	if (o->origin == FROM_PEER) {
		struct peer_msg m = {.id = o->id,
				     .op = PEER_OP_CAS_REPLY,
				     .status = r->status,
				     .error = err};
		if (!r->status)
			m.cas = (struct peer_cas){.applied = r->applied,
						  .exists = r->exists,
						  .value = r->value,
						  .ts = r->ts};
		server_peer_reply(o->conn, &m);
		op_free(o);
		return;
	}
	struct rk_response a = {.id = o->id, .status = r->status, .error = err};
	int has_ts = !rk_ts_is_zero(r->ts);
	if (!r->status) {
		a.op = o->client_op;
		a.ts = r->ts;
		a.has_ts = has_ts;
		switch (o->client_op) {
		case RK_OP_CAS:
			a.applied = r->applied;
			a.exists = r->exists;
			a.value = r->exists ? r->value : (struct rk_bytes){0};
			break;
		case RK_OP_GET:
			if (r->exists)
				a.value = r->value;
			else
				a.status = RK_ENOT_FOUND;
			break;
		case RK_OP_EXISTS:
			a.exists = r->exists;
			break;
		default: /* PUT, DELETE: the version written */
			break;
		}
	}
	server_reply(o->conn, &a);
	op_free(o);
}

static void op_fail(struct op *o, int status, const char *why)
{
	struct outcome r = {.status = status, .error = why};
	op_answer(o, &r);
}

/* ---- running an operation here ---------------------------------------- */

/* The key's replicas in preference order.  Returns how many (0: no ring
 * yet). */
static size_t replicas_of(struct cas *c, struct rk_bytes key, uint64_t *out)
{
	size_t n = 0;
	const struct ring *ring = cluster_ring(c->d.cluster);
	uint32_t rf = cluster_rf(c->d.cluster);
	if (rf > PAXOS_MAX_REPLICAS)
		rf = PAXOS_MAX_REPLICAS;
	ring_lookup(ring, rk_key_hash(key.p, key.n), rf, out, &n);
	return n;
}

static int is_up(struct cas *c, uint64_t id)
{
	if (id == c->d.self_id)
		return 1;
	enum cluster_liveness l = cluster_liveness_of(c->d.cluster, id);
	return l == CLUSTER_ALIVE || l == CLUSTER_SUSPECT;
}

/* Hands o to paxos here.  o may be answered (and freed) before this
 * returns. */
static void run_local(struct op *o)
{
	struct cas *c = o->c;
	uint64_t replicas[PAXOS_MAX_REPLICAS];
	size_t n = replicas_of(c, o->key, replicas);
	if (n == 0) {
		op_fail(o, RK_EUNAVAILABLE,
			"the node does not know the ring yet; nothing was "
			"written");
		return;
	}
	/* A counter key (repl/counter.c): compare-and-set and SERIAL reads
	 * and writes are for registers. */
	const struct rk_rec *held = store_get(c->d.store, o->key.p, o->key.n);
	if (held && held->type == RK_REC_COUNTER) {
		op_fail(o, RK_EWRONG_TYPE,
			"the key holds a counter: use incr, decr, counter and "
			"counter-delete on it");
		return;
	}
	struct paxos_value key_expected = {.present = !o->expect_absent,
					   .data = o->expected.n ? o->expected.p
								 : NULL,
					   .len = o->expected.n};
	struct paxos_value newv = {.present = !o->del,
				   .data = o->value.n ? o->value.p : NULL,
				   .len = o->del ? 0 : o->value.n};
	if (!key_expected.present)
		key_expected.len = 0;
	uint64_t token = op_token(o);
	int rc;
	switch (o->kind) {
	case PEER_CAS_READ:
		rc = paxos_serial_read(c->px, token, o->key.p, o->key.n,
				       replicas, n, o->deadline);
		break;
	case PEER_CAS_WRITE: {
		struct paxos_cond any = {.kind = PAXOS_IF_ANY};
		rc = paxos_cas(c->px, token, o->key.p, o->key.n, replicas, n,
			       &any, &newv, o->deadline);
		break;
	}
	case PEER_CAS_CAS:
	default: {
		struct paxos_cond cond = {.kind = PAXOS_IF_EQUALS,
					  .expected = key_expected};
		rc = paxos_cas(c->px, token, o->key.p, o->key.n, replicas, n,
			       &cond, &newv, o->deadline);
		break;
	}
	}
	if (rc) {
		/* No reply will come: answer now. */
		if (rc == RK_EOVERLOADED)
			c->st.overloaded++;
		op_fail(o, rc == RK_EINVALID ? RK_EBAD_REQUEST : rc, NULL);
	}
	rearm(c);
}

/* ---- forwarding to the primary ---------------------------------------- */

static void forward_done(void *ctx, int status, const struct peer_msg *r)
{
	struct op *o = ctx;
	struct cas *c = o->c;
	o->forwarded = 0;
	if (status == 0 && r->op == PEER_OP_CAS_REPLY) {
		struct outcome out = {.status = r->status,
				      .error = r->error,
				      .applied = r->cas.applied,
				      .exists = r->cas.exists,
				      .value = r->cas.value,
				      .ts = r->cas.ts};
		op_answer(o, &out);
		return;
	}
	/* Nothing ran there: the message never left, or the primary refused
	 * it unread (draining, or a node that does not know it). */
	int not_run =
	    status == RK_ECONNECT || (status == 0 && r->op == PEER_OP_ERROR &&
				      (r->status == RK_ESHUTTING_DOWN ||
				       r->status == RK_EUNKNOWN_COMMAND));
	if (status == 0 && r->op == PEER_OP_ERROR && !not_run) {
		op_fail(o, r->status, r->error);
		return;
	}
	if (c->stopped) {
		op_fail(o,
			not_run || o->kind == PEER_CAS_READ ? RK_ESHUTTING_DOWN
							    : RK_ETIMEOUT,
			not_run || o->kind == PEER_CAS_READ
			    ? "node is shutting down"
			    : "the node stopped while the key's primary ran "
			      "the request; the outcome is unknown");
		return;
	}
	if (!not_run && o->kind != PEER_CAS_READ) {
		/* It may have run there: never run it twice. */
		char why[200];
		snprintf(why, sizeof(why),
			 "the key's primary %016" PRIx64 " did not answer "
			 "(%s); the outcome is unknown",
			 o->forwarded_to, rk_strerror(status));
		op_fail(o, RK_ETIMEOUT, why);
		return;
	}
	/* Run it here: safe for a write that never ran, and for any read. */
	c->st.forward_local++;
	LOG_DEBUG(c, "key %s: primary %016" PRIx64 " %s; running it here",
		  KEYSTR(o->key), o->forwarded_to,
		  status ? rk_strerror(status) : rk_strerror(r->status));
	if (mono_ms() >= o->deadline) {
		op_fail(o, RK_ETIMEOUT, NULL);
		return;
	}
	run_local(o);
}

/* Sends o to node `to`, the primary.  o may be answered before this
 * returns. */
static void forward(struct op *o, uint64_t to)
{
	struct cas *c = o->c;
	const char *addr = cluster_address_of(c->d.cluster, to);
	if (!addr) {
		run_local(o);
		return;
	}
	uint64_t now = mono_ms();
	uint32_t left = o->deadline > now ? (uint32_t)(o->deadline - now) : 1;
	struct peer_msg m = {.op = PEER_OP_CAS,
			     .cas = {.op = o->kind,
				     .key = o->key,
				     .expect_absent = o->expect_absent,
				     .expected = o->expected,
				     .del = o->del,
				     .value = o->value,
				     .timeout_ms = left}};
	o->forwarded = 1;
	o->forwarded_to = to;
	c->st.forwarded++;
	peers_request(c->d.peers, addr, &m, left + CAS_FORWARD_SLACK_MS,
		      forward_done, o);
}

/* Runs o at the key's primary: here, or there. */
static void route(struct op *o)
{
	struct cas *c = o->c;
	uint64_t replicas[PAXOS_MAX_REPLICAS];
	size_t n = replicas_of(c, o->key, replicas);
	for (size_t i = 0; i < n; i++) {
		if (!is_up(c, replicas[i]))
			continue;
		if (replicas[i] == c->d.self_id)
			break;
		forward(o, replicas[i]);
		return;
	}
	/* We are the primary, or no replica is up (paxos says UNAVAILABLE),
	 * or there is no ring yet. */
	run_local(o);
}

/* ---- requests ---------------------------------------------------------- */

void cas_client(struct cas *c, struct conn *conn, const struct rk_request *q)
{
	struct rk_bytes none = {0};
	int why;
	int is_cas = q->op == RK_OP_CAS;
	struct op *o =
	    op_new(c, conn, q->id, q->key, is_cas ? q->expected : none,
		   q->op == RK_OP_PUT || is_cas ? q->value : none, &why);
	if (!o) {
		if (why == RK_EOVERLOADED)
			c->st.overloaded++;
		struct rk_response r = {
		    .id = q->id, .status = why, .error = detail_of(why)};
		server_reply(conn, &r);
		return;
	}
	c->st.client_ops++;
	o->origin = FROM_CLIENT;
	o->client_op = q->op;
	o->deadline = mono_ms() + c->d.cfg->cas_timeout_ms;
	switch (q->op) {
	case RK_OP_CAS:
		o->kind = PEER_CAS_CAS;
		o->expect_absent = q->expect_absent;
		o->del = q->cas_delete;
		break;
	case RK_OP_GET:
	case RK_OP_EXISTS:
		o->kind = PEER_CAS_READ;
		break;
	case RK_OP_PUT:
		o->kind = PEER_CAS_WRITE;
		break;
	case RK_OP_DELETE:
	default:
		o->kind = PEER_CAS_WRITE;
		o->del = 1;
		break;
	}
	route(o);
}

/* A CAS another node forwarded to us as the key's primary. */
static void serve_forwarded(struct cas *c, struct conn *conn,
			    const struct peer_msg *m)
{
	if (c->draining) {
		struct peer_msg e = {.id = m->id,
				     .op = PEER_OP_ERROR,
				     .status = RK_ESHUTTING_DOWN,
				     .error = "node is shutting down"};
		server_peer_reply(conn, &e);
		return;
	}
	int why;
	struct op *o = op_new(c, conn, m->id, m->cas.key, m->cas.expected,
			      m->cas.value, &why);
	if (!o) {
		if (why == RK_EOVERLOADED)
			c->st.overloaded++;
		struct peer_msg e = {.id = m->id,
				     .op = PEER_OP_ERROR,
				     .status = why,
				     .error = detail_of(why)};
		server_peer_reply(conn, &e);
		return;
	}
	c->st.served_for_peers++;
	o->origin = FROM_PEER;
	o->kind = m->cas.op;
	o->expect_absent = m->cas.expect_absent;
	o->del = m->cas.del;
	uint64_t t = m->cas.timeout_ms < c->d.cfg->cas_timeout_ms
			 ? m->cas.timeout_ms
			 : c->d.cfg->cas_timeout_ms;
	o->deadline = mono_ms() + t;
	run_local(o); /* never forwarded again */
}

static void recv_paxos(struct cas *c, uint64_t from, const uint8_t *p, size_t n)
{
	struct paxos_msg m;
	void *owner;
	if (paxos_wire_decode(p, n, &m, &owner)) {
		if (c->st.bad_packets++ % 1000 == 0)
			LOG_WARN(c,
				 "dropped a Paxos packet from %016" PRIx64
				 " that does not decode (%" PRIu64 " so far)",
				 from, c->st.bad_packets);
		return;
	}
	if (paxos_recv(c->px, from, &m))
		c->st.bad_packets++;
	paxos_wire_release(owner);
}

void cas_peer(struct cas *c, struct conn *conn, uint64_t from,
	      const struct peer_msg *m)
{
	if (c->stopped)
		return;
	/* Only members take part (as for replication). */
	if (cluster_liveness_of(c->d.cluster, from) == CLUSTER_UNKNOWN) {
		if (m->op == PEER_OP_CAS) {
			struct peer_msg e = {.id = m->id,
					     .op = PEER_OP_ERROR,
					     .status = RK_EBAD_REQUEST,
					     .error = "not a member"};
			server_peer_reply(conn, &e);
		}
		return;
	}
	if (m->op == PEER_OP_PAXOS)
		recv_paxos(c, from, m->payload.p, m->payload.n);
	else if (m->op == PEER_OP_CAS)
		serve_forwarded(c, conn, m);
	rearm(c);
}

/* ---- the loopback queue ------------------------------------------------ */

static void on_check(struct ev_loop *loop, ev_check *w, int revents)
{
	(void)revents;
	struct cas *c = w->data;
	struct loopback *q = c->lb_head;
	c->lb_head = c->lb_tail = NULL;
	ev_idle_stop(loop, &c->idle);
	if (!q)
		return;
	while (q) {
		struct loopback *next = q->next;
		recv_paxos(c, c->d.self_id, q->data, q->len);
		free(q);
		q = next;
	}
	rearm(c);
}

static void on_idle(struct ev_loop *loop, ev_idle *w, int revents)
{
	(void)loop;
	(void)w;
	(void)revents;
	/* Only here so that polling does not block; on_check does the work. */
}

/* ---- durability -------------------------------------------------------- */

void cas_durable(struct cas *c)
{
	if (c->stopped || !c->pend_len)
		return;
	uint64_t synced = store_synced_lsn(c->d.store);
	uint64_t token = 0;
	while (c->pend_len && c->pend[c->pend_head].lsn <= synced) {
		token = c->pend[c->pend_head].token;
		c->pend_head = (c->pend_head + 1) % c->pend_cap;
		c->pend_len--;
	}
	if (token) {
		paxos_persisted(c->px, token);
		rearm(c);
	}
}

/* A failure to record acceptor state cannot be answered around: a reply
 * sent without it could break Paxos, and holding every later reply would
 * stall the node.  Stop, as for a failed log write. */
static void __attribute__((noreturn))
fatal(struct cas *c, const char *what, int rc)
{
	rk_error(c->d.lg, "cas",
		 "%s: %s; stopping (the acceptor state "
		 "cannot be made durable)",
		 what, rk_strerror(rc));
	exit(RK_EXIT_FATAL_IO);
}

static void pend_push(struct cas *c, uint64_t token, uint64_t lsn)
{
	if (c->pend_len == c->pend_cap) {
		size_t cap = c->pend_cap ? 2 * c->pend_cap : 256;
		struct pending *np = malloc(cap * sizeof(*np));
		if (!np)
			fatal(c, "queueing a persist", RK_ENOMEM);
		for (size_t i = 0; i < c->pend_len; i++)
			np[i] = c->pend[(c->pend_head + i) % c->pend_cap];
		free(c->pend);
		c->pend = np;
		c->pend_head = 0;
		c->pend_cap = cap;
	}
	c->pend[(c->pend_head + c->pend_len) % c->pend_cap] =
	    (struct pending){token, lsn};
	c->pend_len++;
}

/* ---- the Paxos runtime -------------------------------------------------- */

static uint64_t rt_now(void *ctx)
{
	(void)ctx;
	return mono_ms();
}

static uint64_t rt_random(void *ctx)
{
	struct cas *c = ctx;
	return rk_rng_next(&c->rng);
}

/* Ballots are the store's versions: store_stamp never issues one twice,
 * a restart included (its clock ceiling), whatever storage.fsync says. */
static rk_ts rt_tick(void *ctx)
{
	struct cas *c = ctx;
	rk_ts t;
	if (store_stamp(c->d.store, wall_ms(), &t))
		fatal(c, "persisting the clock ceiling", RK_EIO);
	return t;
}

static void rt_observe(void *ctx, rk_ts ts)
{
	struct cas *c = ctx;
	store_observe(c->d.store, ts);
}

static int rt_up(void *ctx, uint64_t node)
{
	return is_up(ctx, node);
}

static void rt_send(void *ctx, uint64_t to, const struct paxos_msg *m)
{
	struct cas *c = ctx;
	rk_buf_clear(&c->scratch);
	if (paxos_wire_encode(m, &c->scratch)) {
		LOG_WARN(c, "could not encode a Paxos %s",
			 paxos_msg_type_name(m->type));
		return; /* as if lost: paxos retries */
	}
	size_t n = rk_buf_readable(&c->scratch);
	if (to == c->d.self_id) {
		struct loopback *q = malloc(sizeof(*q) + n);
		if (!q)
			return;
		q->next = NULL;
		q->len = n;
		memcpy(q->data, rk_buf_rptr(&c->scratch), n);
		if (c->lb_tail)
			c->lb_tail->next = q;
		else
			c->lb_head = q;
		c->lb_tail = q;
		ev_idle_start(c->d.loop, &c->idle);
		return;
	}
	const char *addr = cluster_address_of(c->d.cluster, to);
	if (!addr)
		return;
	struct peer_msg pm = {.op = PEER_OP_PAXOS,
			      .payload = {rk_buf_rptr(&c->scratch), n}};
	peers_send(c->d.peers, addr, &pm); /* a loss is a lost message */
}

static void rt_reply(void *ctx, uint64_t token, const struct paxos_result *r)
{
	struct cas *c = ctx;
	struct op *o = op_of_token(c, token);
	if (!o)
		return;
	struct outcome out = {.status = r->status,
			      .applied = r->applied,
			      .exists = r->value.present,
			      .value = {r->value.data, r->value.len},
			      .ts = r->ts};
	if (!r->value.present)
		out.value = (struct rk_bytes){0};
	op_answer(o, &out);
}

static int rt_read(void *ctx, const uint8_t *key, size_t klen,
		   struct paxos_value *v, rk_ts *ts)
{
	struct cas *c = ctx;
	const struct rk_rec *rec = store_get(c->d.store, key, klen);
	memset(v, 0, sizeof(*v));
	*ts = (rk_ts){0, 0};
	if (!rec)
		return 0;
	*ts = rec->ts;
	if (rec->type == RK_REC_VALUE) {
		v->present = 1;
		v->len = rec->vlen;
		v->data = rec->vlen ? rk_rec_value(rec) : NULL;
	}
	return 0;
}

static int rt_apply(void *ctx, const uint8_t *key, size_t klen,
		    const struct paxos_value *v, rk_ts ts)
{
	struct cas *c = ctx;
	uint64_t lsn;
	int rc = store_apply(
	    c->d.store, v->present ? RK_REC_VALUE : RK_REC_TOMBSTONE, key, klen,
	    v->present ? v->data : NULL, v->present ? v->len : 0, ts, &lsn);
	return rc < 0 ? rc : 0;
}

static void rt_persist(void *ctx, const uint8_t *key, size_t klen,
		       const struct paxos_acceptor_state *st, uint64_t token)
{
	struct cas *c = ctx;
	uint64_t lsn;
	int rc;
	if (st) {
		rk_buf_clear(&c->scratch);
		rc = paxos_wire_encode_state(key, klen, st, &c->scratch);
		if (rc)
			fatal(c, "encoding an acceptor state", rc);
		rc = store_paxos_put(c->d.store, key, klen,
				     rk_buf_rptr(&c->scratch),
				     rk_buf_readable(&c->scratch), &lsn);
	} else {
		rc = store_paxos_put(c->d.store, key, klen, NULL, 0, &lsn);
	}
	if (rc)
		fatal(c, "recording an acceptor state", rc);
	pend_push(c, token, lsn);
}

/* ---- life -------------------------------------------------------------- */

struct restore_ctx {
	struct cas *c;
	int rc;
	char *err;
	size_t errlen;
};

static void restore_one(void *ctx, const uint8_t *key, size_t klen,
			const uint8_t *state, size_t len)
{
	struct restore_ctx *r = ctx;
	if (r->rc)
		return;
	const uint8_t *k;
	size_t kl;
	struct paxos_acceptor_state st;
	void *owner;
	int rc = paxos_wire_decode_state(state, len, &k, &kl, &st, &owner);
	if (rc || kl != klen || memcmp(k, key, klen) != 0) {
		if (!rc)
			paxos_wire_release(owner);
		r->rc = RK_ECORRUPT;
		snprintf(r->err, r->errlen,
			 "a Paxos acceptor state in the op-log does not decode "
			 "(%s)",
			 rc ? rk_strerror(rc) : "its key differs");
		return;
	}
	rc = paxos_acceptor_restore(r->c->px, key, klen, &st);
	paxos_wire_release(owner);
	if (rc) {
		r->rc = rc;
		snprintf(r->err, r->errlen,
			 "restoring a Paxos acceptor state: %s",
			 rk_strerror(rc));
		return;
	}
	r->c->st.restored++;
}

int cas_new(const struct cas_deps *d, struct cas **out, char *err,
	    size_t errlen)
{
	*out = NULL;
	struct cas *c = calloc(1, sizeof(*c));
	if (!c) {
		snprintf(err, errlen, "out of memory");
		return RK_ENOMEM;
	}
	c->d = *d;
	rk_buf_init(&c->scratch);
	uint64_t seed;
	if (getrandom(&seed, sizeof(seed), 0) != sizeof(seed))
		seed = mono_ms() ^ d->self_id;
	rk_rng_seed(&c->rng, seed);

	const struct node_config *cfg = d->cfg;
	struct paxos_config pc;
	paxos_config_defaults(&pc);
	pc.id = d->self_id;
	pc.round_timeout_ms = (uint32_t)cfg->cas_round_timeout_ms;
	pc.contention_timeout_ms = (uint32_t)cfg->cas_contention_timeout_ms;
	pc.backoff_min_ms = (uint32_t)cfg->cas_backoff_min_ms;
	pc.backoff_max_ms = (uint32_t)cfg->cas_backoff_max_ms;
	pc.max_queue = (uint32_t)cfg->cas_max_queue;
	pc.max_key = (size_t)cfg->max_key;
	pc.max_value = (size_t)cfg->max_value;
	struct paxos_runtime rt = {
	    .ctx = c,
	    .log = d->lg,
	    .now_ms = rt_now,
	    .random = rt_random,
	    .clock_tick = rt_tick,
	    .clock_observe = rt_observe,
	    .is_up = rt_up,
	    .send = rt_send,
	    .reply = rt_reply,
	    .read_current = rt_read,
	    .apply_commit = rt_apply,
	    .persist = rt_persist,
	};
	int rc = paxos_new(&pc, &rt, &c->px);
	if (rc) {
		snprintf(err, errlen, "starting Paxos: %s", rk_strerror(rc));
		cas_free(c);
		return rc;
	}
	struct restore_ctx r = {c, 0, err, errlen};
	store_paxos_each(d->store, restore_one, &r);
	if (r.rc) {
		cas_free(c);
		return r.rc;
	}
	ev_init(&c->timer, on_timer);
	ev_check_init(&c->check, on_check);
	ev_idle_init(&c->idle, on_idle);
	c->timer.data = c->check.data = c->idle.data = c;
	ev_check_start(d->loop, &c->check);
	LOG_INFO(c, "compare-and-set ready: %" PRIu64
		    " acceptor states restored",
		 c->st.restored);
	*out = c;
	return 0;
}

void cas_set_draining(struct cas *c)
{
	if (c)
		c->draining = 1;
}

void cas_stop(struct cas *c)
{
	if (!c)
		return;
	c->stopped = 1;
	ev_timer_stop(c->d.loop, &c->timer);
	ev_check_stop(c->d.loop, &c->check);
	ev_idle_stop(c->d.loop, &c->idle);
}

void cas_free(struct cas *c)
{
	if (!c)
		return;
	cas_stop(c);
	paxos_free(c->px);
	for (size_t i = 0; i < c->n_ops; i++)
		if (c->ops[i])
			op_free(c->ops[i]);
	free(c->ops);
	free(c->gens);
	free(c->pend);
	while (c->lb_head) {
		struct loopback *q = c->lb_head;
		c->lb_head = q->next;
		free(q);
	}
	rk_buf_destroy(&c->scratch);
	free(c);
}

void cas_get_stats(const struct cas *c, struct cas_stats *out)
{
	*out = c->st;
}
