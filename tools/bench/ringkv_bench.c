/* ringkv-bench: a load generator for ringkv (and, with --resp, for Redis;
 * with --etcd, for etcd), in the spirit of redis-benchmark and
 * memtier_benchmark.
 *
 * Shape of a run.  Each thread owns one libev loop and a share of the
 * connections.  A connection keeps up to `pipeline` requests in flight
 * (a window, not redis-benchmark's send-P-then-wait-for-P batches): every
 * time replies arrive, the freed slots are refilled and everything queued
 * goes out in one send().  The load is closed-loop, like redis-benchmark:
 * a slow server slows the request rate down, so the latencies are those of
 * a client that waits, not of an open arrival process (no coordinated-
 * omission correction is attempted; compare percentiles between servers
 * measured the same way, not against an SLO).
 *
 * Latency of a request is from the moment its batch was handed to send()
 * to the moment the read() that brought its reply returned, both from
 * CLOCK_MONOTONIC, recorded in nanoseconds in a log-linear histogram (3
 * significant digits, 1 ns .. 60 s).
 *
 * ringkv replies may come back out of order (a write waiting for fsync does
 * not hold back a read), so each request id carries its slot number in the
 * low bits and a per-connection generation above them; a reply whose id is
 * not outstanding is a protocol error and aborts the run.  RESP and etcd's
 * HTTP replies come in order, so those modes match them against a FIFO of
 * slots.  etcd is driven through its v3 HTTP/JSON gateway (etcd.h says
 * why): get is a linearizable range, put a put, cas a txn comparing the
 * value.
 *
 * Warm-up writes every key of the key space once, split between threads
 * and connections, before the clock starts, so that reads find values.
 *
 * Redis Cluster (--resp --cluster): the slot map comes from CLUSTER SLOTS;
 * connections are spread over the masters and each draws keys from the
 * distribution until one hashes to its master (rejection sampling keeps the
 * distribution's shape within each master's share of the keys).
 *
 * Smart routing (--smart on, ringkv): the same scheme over the ring.  The
 * ring comes from RingInfo of the first seed that answers and is built
 * with ring/, as libringkv does; a key belongs to the first of its
 * replicas that gossip called alive then (any live node when none of them
 * is), and connections are spread over the live nodes.  The ring is read
 * once: a node that fails during the run fails the run, as any lost
 * connection does.
 *
 * incr (counter adds, +1 each with a fresh op id) uses keys of its own:
 * the key with its first byte replaced by '#', so counters never meet the
 * registers get and put use (that would be WRONG_TYPE).  With --smart on
 * the op id is drawn until the replica that owns it (crdt_owner, as the
 * nodes decide) is the node the connection goes to, so an add goes
 * straight to its owner, as libringkv sends it.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <ev.h>

#include "addr.h"
#include "buf.h"
#include "crdt.h"
#include "err.h"
#include "fastwire.h"
#include "frame.h"
#include "hash.h"
#include "hdr.h"
#include "etcd.h"
#include "resp.h"
#include "ring.h"
#include "rng.h"
#include "wire.h"
#include "zipf.h"

/* Request ids: slot in the low bits, generation above (never 0: id 0 is
 * the node's "not tied to a request"). */
#define SLOT_BITS 16
#define SLOT_MASK ((1u << SLOT_BITS) - 1)
#define MAX_PIPELINE (1u << SLOT_BITS)
#define MAX_CONNS 100000u
#define MAX_THREADS 64u
#define MAX_KEY_SIZE 1024u
/* A reply frame above this is a broken server, not a big value. */
#define MAX_REPLY_FRAME (1u << 30)
#define READ_CHUNK (64u * 1024u)
/* Histogram range and precision: 1 ns .. 60 s at 3 digits. */
#define HIST_LOWEST_NS 1u
#define HIST_HIGHEST_NS 60000000000ull
#define HIST_SIGFIGS 3
/* How often a loop looks at the abort flag and the reply deadline. */
#define WATCHDOG_S 0.1
/* Draws of a key before giving up on finding one for a cluster node. */
#define MAX_KEY_DRAWS 100000
#define MAX_ERR_NAMES 16
#define CONNECT_TIMEOUT_MS 5000
/* One reply in this many is decoded by both the fast reader and
 * rk_wire_decode_response, which must agree (fastwire.h). */
#define VERIFY_EVERY 64

enum bop { BOP_GET, BOP_PUT, BOP_CAS, BOP_INCR, BOP_COUNT };
static const char *const bop_names[BOP_COUNT] = {"get", "put", "cas", "incr"};

enum dist { DIST_UNIFORM, DIST_ZIPF };
enum proto { PROTO_RINGKV, PROTO_RESP, PROTO_ETCD };
enum phase { PH_WARMUP, PH_RUN };

/* A server address, resolved once. */
struct endpoint {
	char text[300];
	struct sockaddr_storage sa;
	socklen_t salen;
};

/* Everything the command line says; read-only once threads start. */
struct config {
	struct endpoint *seeds;
	size_t nseeds;
	unsigned conns, pipeline, threads;
	uint64_t requests;   /* total, or 0 in --duration mode */
	double duration;     /* seconds, or 0 */
	uint32_t value_size, key_size;
	uint64_t keys;
	char key_prefix[64];
	size_t prefix_len;
	enum dist dist;
	double theta;
	unsigned mix[BOP_COUNT], mix_total;
	int consistency;     /* enum rk_consistency */
	int smart;
	int warmup;          /* -1: decide from the mix */
	int warmup_only;
	uint64_t seed;
	int json, quiet;
	enum proto proto;
	int cluster;
	int wait_replicas;   /* RESP: WAIT after each SET; -1 = no WAIT */
	unsigned wait_timeout_ms;
	double timeout_s;    /* no reply for this long aborts the run */
};

/* Where keys go when they are routed: Redis Cluster's masters and who
 * owns each slot, or (smart ringkv) the live ring members, the ring and
 * each ring member's group. */
struct cluster {
	struct endpoint *masters;
	size_t nmasters;
	uint16_t owner[RESP_CLUSTER_SLOTS];
	struct ring *ring;     /* smart ringkv; NULL for Redis Cluster */
	uint32_t rf;
	uint64_t *ids;         /* ring: node id of each master */
	int *group;            /* ring: per ring member index, its master or
				  -1 when it was not alive */
};

struct err_count {
	char name[24];
	uint64_t n;
};

/* Outcomes of one kind of operation in the measured phase. */
struct op_stats {
	struct hdr *lat;
	uint64_t ok, not_found, errors;
	struct err_count errs[MAX_ERR_NAMES];
	size_t nerrs;
};

struct stats {
	struct op_stats op[BOP_COUNT];
	struct hdr *all;
	uint64_t wrong_size; /* GET values not value_size long */
};

/* One request in flight. */
struct slot {
	uint64_t id;     /* ringkv request id; 0 when free */
	uint64_t t0;     /* ns, when its batch was sent */
	uint8_t op;      /* enum bop */
	uint8_t replies; /* RESP replies still expected (SET + WAIT: 2) */
	char err[22];    /* RESP: error of the SET of a SET + WAIT */
};

struct worker;

struct conn {
	struct worker *w;
	const struct endpoint *ep;
	unsigned group;      /* cluster master index; 0 otherwise */
	unsigned server;     /* index of ep among the servers reported */
	int fd;
	ev_io rio, wio;
	struct rk_buf in, out;
	struct slot *slots;  /* pipeline of them */
	uint32_t *free_slots; /* stack of free slot numbers */
	uint32_t nfree;
	uint32_t *fifo;      /* RESP, etcd: slot numbers in send order */
	uint32_t fifo_head, fifo_len;
	uint64_t gen;
};

struct bench;

struct worker {
	struct bench *b;
	unsigned index;
	pthread_t thread;
	struct ev_loop *loop;
	struct conn *conns;
	unsigned nconns;
	uint64_t *per_server; /* measured requests answered, per server */
	struct rk_rng rng;
	enum phase phase;
	int stopping;        /* run phase: issue nothing more */
	uint64_t quota;      /* run phase: requests this thread sends */
	uint64_t issued, done, inflight;
	uint64_t replies;    /* ringkv replies decoded, for VERIFY_EVERY */
	uint64_t *cursor;    /* warm-up: next key per group */
	uint64_t warm_done;
	struct stats st;
	ev_timer watchdog, stop_timer;
	uint64_t last_reply_ns;
	uint64_t err_replies;  /* error replies so far, any phase */
	char last_err[24];     /* the latest one's name */
	uint64_t t_start, t_end, warm_start, warm_end;
	char key[MAX_KEY_SIZE + 1];
	int failed;
	char fatal[512];
};

struct bench {
	struct config cfg;
	struct cluster *cl;  /* NULL unless --cluster */
	size_t ngroups;
	struct zipf zipf;
	uint8_t *value;      /* value_size bytes, shared read-only */
	struct worker *workers;
	pthread_barrier_t barrier;
	atomic_int abort;
};

static const char *prog = "ringkv-bench";

static void die(const char *fmt, ...)
	__attribute__((format(printf, 1, 2), noreturn));

static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "%s: ", prog);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(2);
}

static void note(const struct config *cfg, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void note(const struct config *cfg, const char *fmt, ...)
{
	if (cfg->quiet)
		return;
	va_list ap;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

static inline uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ------------------------------------------------------------------ */
/* keys                                                                */

/* Writes key number i: the prefix, then i in decimal, zero-padded so the
 * key is exactly key_size bytes (checked against keys - 1 at startup). */
static void format_key(const struct config *cfg, char *buf, uint64_t i)
{
	char *p = buf + cfg->key_size;
	char *stop = buf + cfg->prefix_len;
	while (p > stop) {
		*--p = (char)('0' + i % 10);
		i /= 10;
	}
}

/* The node a key goes to on the ring: its first live replica, else a
 * live node chosen by its token (any node coordinates). */
static unsigned ring_group(const struct cluster *cl, const char *key,
			   size_t len)
{
	uint64_t token = rk_key_hash(key, len);
	uint64_t ids[RING_RF_MAX];
	size_t n = 0, mi;
	ring_lookup(cl->ring, token, cl->rf, ids, &n);
	for (size_t i = 0; i < n; i++)
		if (ring_member_find(cl->ring, ids[i], &mi) == 0 &&
		    cl->group[mi] >= 0)
			return (unsigned)cl->group[mi];
	return (unsigned)(token % cl->nmasters);
}

static unsigned key_group(const struct bench *b, const char *key)
{
	if (!b->cl)
		return 0;
	if (b->cl->ring)
		return ring_group(b->cl, key, b->cfg.key_size);
	return b->cl->owner[resp_key_slot(key, b->cfg.key_size)];
}

/* Counter keys: the first byte becomes '#' (see the top of this file). */
#define COUNTER_KEY_MARK '#'

/* Picks the next key of the measured phase for a connection of group g
 * into w->key (a counter key when counter).  Returns 0, or -1 when no key
 * for g turned up. */
static int pick_key(struct worker *w, unsigned g, int counter)
{
	const struct config *cfg = &w->b->cfg;
	for (int tries = 0; tries < MAX_KEY_DRAWS; tries++) {
		uint64_t k = cfg->dist == DIST_ZIPF
				     ? zipf_next(&w->b->zipf, &w->rng)
				     : rk_rng_below(&w->rng, cfg->keys);
		format_key(cfg, w->key, k);
		if (counter)
			w->key[0] = COUNTER_KEY_MARK;
		else if (cfg->prefix_len)
			w->key[0] = cfg->key_prefix[0];
		if (key_group(w->b, w->key) == g)
			return 0;
	}
	return -1;
}

/* Picks the next warm-up key for group g into w->key: this thread's keys
 * are those numbered index, index + threads, ...  Returns 0, or -1 when
 * the group has none left. */
static int next_warm_key(struct worker *w, unsigned g)
{
	const struct config *cfg = &w->b->cfg;
	while (w->cursor[g] < cfg->keys) {
		uint64_t k = w->cursor[g];
		w->cursor[g] += cfg->threads;
		format_key(cfg, w->key, k);
		if (key_group(w->b, w->key) == g)
			return 0;
	}
	return -1;
}

static enum bop pick_op(struct worker *w)
{
	const struct config *cfg = &w->b->cfg;
	uint64_t x = rk_rng_below(&w->rng, cfg->mix_total);
	for (int i = 0; i < BOP_COUNT; i++) {
		if (x < cfg->mix[i])
			return (enum bop)i;
		x -= cfg->mix[i];
	}
	return BOP_GET;
}

/* ------------------------------------------------------------------ */
/* failure                                                             */

static void worker_fail(struct worker *w, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Stops this thread's loop with a message; the other threads see the
 * abort flag at their next watchdog tick. */
static void worker_fail(struct worker *w, const char *fmt, ...)
{
	if (!w->failed) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(w->fatal, sizeof(w->fatal), fmt, ap);
		va_end(ap);
		w->failed = 1;
	}
	atomic_store(&w->b->abort, 1);
	ev_break(w->loop, EVBREAK_ALL);
}

/* ------------------------------------------------------------------ */
/* statistics                                                          */

static int stats_init(struct stats *s)
{
	memset(s, 0, sizeof(*s));
	for (int i = 0; i < BOP_COUNT; i++)
		if (hdr_new(HIST_LOWEST_NS, HIST_HIGHEST_NS, HIST_SIGFIGS,
			    &s->op[i].lat))
			return RK_ENOMEM;
	return hdr_new(HIST_LOWEST_NS, HIST_HIGHEST_NS, HIST_SIGFIGS, &s->all);
}

static void stats_destroy(struct stats *s)
{
	for (int i = 0; i < BOP_COUNT; i++)
		hdr_free(s->op[i].lat);
	hdr_free(s->all);
}

static void count_error(struct op_stats *o, const char *name, size_t len,
			uint64_t n)
{
	o->errors += n;
	if (len >= sizeof(o->errs[0].name))
		len = sizeof(o->errs[0].name) - 1;
	for (size_t i = 0; i < o->nerrs; i++) {
		if (strlen(o->errs[i].name) == len &&
		    memcmp(o->errs[i].name, name, len) == 0) {
			o->errs[i].n += n;
			return;
		}
	}
	struct err_count *e;
	if (o->nerrs < MAX_ERR_NAMES - 1) {
		e = &o->errs[o->nerrs++];
		memcpy(e->name, name, len);
		e->name[len] = 0;
	} else {
		/* The last row collects every further name. */
		e = &o->errs[MAX_ERR_NAMES - 1];
		if (o->nerrs < MAX_ERR_NAMES) {
			o->nerrs = MAX_ERR_NAMES;
			snprintf(e->name, sizeof(e->name), "OTHER");
		}
	}
	e->n += n;
}

static void stats_merge(struct stats *dst, const struct stats *src)
{
	for (int i = 0; i < BOP_COUNT; i++) {
		struct op_stats *d = &dst->op[i];
		const struct op_stats *s = &src->op[i];
		hdr_add(d->lat, s->lat);
		d->ok += s->ok;
		d->not_found += s->not_found;
		for (size_t k = 0; k < s->nerrs; k++)
			count_error(d, s->errs[k].name, strlen(s->errs[k].name),
				    s->errs[k].n);
	}
	hdr_add(dst->all, src->all);
	dst->wrong_size += src->wrong_size;
}

/* ------------------------------------------------------------------ */
/* requests                                                            */

static uint32_t slot_take(struct conn *c)
{
	return c->free_slots[--c->nfree];
}

/* incr has no wire format yet (the counter issue reserves Envelope fields
 * for it).  Until it lands, the bench sends an Envelope with only a request
 * id, which every version of the node answers with UNKNOWN_COMMAND; the
 * reply path turns that into "not supported by this server/version yet".
 * When RK_OP_INCR exists, encode it with rk_wire_encode_request like the
 * others. */
static int encode_not_yet(struct rk_buf *out, uint64_t id)
{
	uint8_t body[11];
	size_t n = 0;
	body[n++] = 0x08; /* field 1 (request_id), varint */
	uint64_t v = id;
	do {
		uint8_t b = v & 0x7f;
		v >>= 7;
		body[n++] = v ? (uint8_t)(b | 0x80) : b;
	} while (v);
	uint8_t hdr[RK_FRAME_HDR];
	rk_frame_header(hdr, (uint32_t)n);
	int rc = rk_buf_append(out, hdr, sizeof(hdr));
	return rc ? rc : rk_buf_append(out, body, n);
}

/* A fresh op id for an add to c->w->key: now, and 64 random bits; with
 * smart routing, drawn until the connection's node owns it. */
static void counter_op_id(struct conn *c, struct crdt_opid *op)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	uint64_t ms =
	    (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
	const struct cluster *cl = c->w->b->cl;
	uint64_t ids[RING_RF_MAX];
	size_t n = 0;
	if (cl && cl->ring)
		ring_lookup(cl->ring,
			    rk_key_hash(c->w->key, c->w->b->cfg.key_size),
			    cl->rf, ids, &n);
	for (int tries = 0;; tries++) {
		crdt_opid_make(op, ms, rk_rng_next(&c->w->rng) | 1);
		if (!n || tries == 64 ||
		    ids[crdt_owner(op, ids, n)] == cl->ids[c->group])
			return;
	}
}

static int encode_ringkv(struct conn *c, enum bop op, uint64_t id)
{
	const struct config *cfg = &c->w->b->cfg;
	struct rk_request q = {
		.id = id,
		.key = {(const uint8_t *)c->w->key, cfg->key_size},
		.consistency = (enum rk_consistency)cfg->consistency,
	};
	switch (op) {
	case BOP_GET:
		q.op = RK_OP_GET;
		break;
	case BOP_PUT:
		q.op = RK_OP_PUT;
		q.value.p = c->w->b->value;
		q.value.n = cfg->value_size;
		break;
	case BOP_INCR: {
		q.op = RK_OP_COUNTER_ADD;
		q.delta = 1;
		struct crdt_opid oid;
		counter_op_id(c, &oid);
		q.op_id.p = oid.b;
		q.op_id.n = CRDT_OPID_LEN;
		return rk_wire_encode_request(&c->out, &q);
	}
	case BOP_CAS:
		/* value -> value: applied whenever the key holds the bench's
		 * value (warm-up writes it), so every cas is a full Paxos
		 * decision: prepare, propose, commit. */
		q.op = RK_OP_CAS;
		q.cas_kind = RK_CAS;
		q.expected.p = c->w->b->value;
		q.expected.n = cfg->value_size;
		q.value = q.expected;
		q.consistency = RK_CL_DEFAULT;
		break;
	default:
		return encode_not_yet(&c->out, id);
	}
	return rk_wire_encode_request(&c->out, &q);
}

static int encode_resp(struct conn *c, enum bop op)
{
	const struct config *cfg = &c->w->b->cfg;
	const char *argv[3];
	size_t lens[3];
	int rc;
	if (op == BOP_GET) {
		argv[0] = "GET";
		lens[0] = 3;
		argv[1] = c->w->key;
		lens[1] = cfg->key_size;
		return resp_encode(&c->out, 2, argv, lens);
	}
	argv[0] = "SET";
	lens[0] = 3;
	argv[1] = c->w->key;
	lens[1] = cfg->key_size;
	argv[2] = (const char *)c->w->b->value;
	lens[2] = cfg->value_size;
	rc = resp_encode(&c->out, 3, argv, lens);
	if (rc || cfg->wait_replicas < 0)
		return rc;
	char nrep[16], tmo[16];
	argv[0] = "WAIT";
	lens[0] = 4;
	argv[1] = nrep;
	lens[1] = (size_t)snprintf(nrep, sizeof(nrep), "%d",
				   cfg->wait_replicas);
	argv[2] = tmo;
	lens[2] = (size_t)snprintf(tmo, sizeof(tmo), "%u",
				   cfg->wait_timeout_ms);
	return resp_encode(&c->out, 3, argv, lens);
}

static int encode_etcd(struct conn *c, enum bop op)
{
	const struct config *cfg = &c->w->b->cfg;
	const char *host = c->ep->text, *key = c->w->key;
	const uint8_t *v = c->w->b->value;
	switch (op) {
	case BOP_GET:
		return etcd_encode_range(&c->out, host, key, cfg->key_size);
	case BOP_PUT:
		return etcd_encode_put(&c->out, host, key, cfg->key_size, v,
				       cfg->value_size);
	case BOP_CAS: /* value -> value, as for ringkv */
		return etcd_encode_cas(&c->out, host, key, cfg->key_size, v,
				       cfg->value_size, v, cfg->value_size);
	default:
		return RK_EINVALID;
	}
}

/* Queues one request if the phase wants one.  Returns 1 when queued, 0
 * when there is nothing to send, -1 after a fatal error. */
static int issue(struct conn *c, uint64_t t0)
{
	struct worker *w = c->w;
	const struct config *cfg = &w->b->cfg;
	enum bop op;
	if (w->phase == PH_WARMUP) {
		if (next_warm_key(w, c->group) < 0)
			return 0;
		op = BOP_PUT;
	} else {
		if (w->stopping || (cfg->requests && w->issued >= w->quota))
			return 0;
		op = pick_op(w);
		if (pick_key(w, c->group, op == BOP_INCR) < 0) {
			worker_fail(w,
				    "none of the %" PRIu64 " keys belongs to "
				    "cluster node %s; use more keys",
				    cfg->keys, c->ep->text);
			return -1;
		}
		w->issued++;
	}
	uint32_t s = slot_take(c);
	struct slot *sl = &c->slots[s];
	sl->op = (uint8_t)op;
	sl->t0 = t0;
	sl->err[0] = 0;
	int rc;
	if (cfg->proto == PROTO_RINGKV) {
		sl->id = (++c->gen << SLOT_BITS) | s;
		rc = encode_ringkv(c, op, sl->id);
	} else {
		sl->id = 1;
		sl->replies =
			(op == BOP_PUT && cfg->wait_replicas >= 0) ? 2 : 1;
		c->fifo[(c->fifo_head + c->fifo_len) % cfg->pipeline] = s;
		c->fifo_len++;
		rc = cfg->proto == PROTO_RESP ? encode_resp(c, op)
					      : encode_etcd(c, op);
	}
	if (rc) {
		worker_fail(w, "out of memory encoding a request");
		return -1;
	}
	w->inflight++;
	return 1;
}

/* ------------------------------------------------------------------ */
/* replies                                                             */

enum outcome { OUT_OK, OUT_NOT_FOUND, OUT_ERROR };

static void worker_check_done(struct worker *w);

/* Accounts for the reply to slot s and frees it. */
static void complete(struct conn *c, uint32_t s, enum outcome out,
		     const char *err, size_t errlen, uint64_t now)
{
	struct worker *w = c->w;
	struct slot *sl = &c->slots[s];
	enum bop op = (enum bop)sl->op;
	sl->id = 0;
	c->free_slots[c->nfree++] = s;
	w->inflight--;
	w->last_reply_ns = now;
	if (out == OUT_ERROR) {
		size_t n = errlen;
		if (n >= sizeof(w->last_err))
			n = sizeof(w->last_err) - 1;
		memcpy(w->last_err, err, n);
		w->last_err[n] = 0;
		w->err_replies++;
	}
	if (w->phase == PH_WARMUP) {
		if (out == OUT_ERROR) {
			worker_fail(w, "warm-up put to %s failed: %.*s",
				    c->ep->text, (int)errlen, err);
			return;
		}
		w->warm_done++;
		return;
	}
	w->done++;
	w->per_server[c->server]++;
	uint64_t lat = now > sl->t0 ? now - sl->t0 : 0;
	struct op_stats *o = &w->st.op[op];
	hdr_record(o->lat, lat);
	hdr_record(w->st.all, lat);
	if (out == OUT_OK)
		o->ok++;
	else if (out == OUT_NOT_FOUND)
		o->not_found++;
	else
		count_error(o, err, errlen, 1);
}

static void unknown_command(struct conn *c, enum bop op, const char *detail)
{
	if (op == BOP_CAS || op == BOP_INCR)
		worker_fail(c->w,
			    "%s is not supported by this server/version yet: "
			    "%s answered UNKNOWN_COMMAND (%s)",
			    bop_names[op], c->ep->text,
			    detail ? detail : "no detail");
	else
		worker_fail(c->w,
			    "%s answered UNKNOWN_COMMAND to %s (%s): is it a "
			    "ringkv node of this protocol version?",
			    c->ep->text, bop_names[op],
			    detail ? detail : "no detail");
}

/* What a reply said, from either decoder. */
struct reply_view {
	uint64_t id;
	int status;         /* 0 or an RK_E* code */
	enum rk_op op;      /* result present: GET, PUT (a write), NONE... */
	size_t value_len;   /* GET */
	const char *error;  /* detail, or NULL; borrowed from the decoder */
	int applied;        /* CAS */
};

static enum rk_op op_of(enum fw_result res)
{
	return res == FW_GET	   ? RK_OP_GET
	       : res == FW_WRITE   ? RK_OP_PUT
	       : res == FW_COUNTER ? RK_OP_COUNTER_GET /* as the full codec */
				   : RK_OP_NONE;
}

/* Decodes a reply: fastwire when it can, rk_wire_decode_response for
 * everything else and for every VERIFY_EVERY-th reply, which both decode
 * and must agree on.  *owner is set when the full decoder ran. */
static int decode_reply(struct conn *c, const uint8_t *body, uint32_t len,
			struct reply_view *v, struct rk_wire_msg **owner)
{
	struct fw_reply fr;
	*owner = NULL;
	int fast = fw_decode_response(body, len, &fr) == 0;
	if (fast && c->w->replies++ % VERIFY_EVERY != 0) {
		*v = (struct reply_view){fr.id, fr.status, op_of(fr.result),
					 fr.value_len, NULL, 0};
		return 0;
	}
	struct rk_response r;
	char why[160];
	if (rk_wire_decode_response(body, len, &r, owner, why, sizeof(why))) {
		worker_fail(c->w, "protocol error from %s: %s", c->ep->text,
			    why);
		return -1;
	}
	*v = (struct reply_view){r.id, r.status, r.op, r.value.n, r.error,
				 r.applied};
	if (fast && (fr.id != r.id || fr.status != r.status ||
		     op_of(fr.result) != r.op || fr.value_len != r.value.n)) {
		worker_fail(c->w,
			    "ringkv-bench's fast reply decoder disagrees with "
			    "rk_wire_decode_response on a reply from %s (id "
			    "%" PRIu64 "/%" PRIu64 ", status %d/%d): a bug in "
			    "tools/bench/fastwire.c",
			    c->ep->text, fr.id, r.id, fr.status, r.status);
		return -1;
	}
	return 0;
}

/* Handles one ringkv response frame.  Returns 0, or -1 after a fatal
 * error. */
static int on_ringkv_reply(struct conn *c, const uint8_t *body, uint32_t len,
			   uint64_t now)
{
	struct reply_view r;
	struct rk_wire_msg *owner;
	if (decode_reply(c, body, len, &r, &owner))
		return -1;
	int rc = 0;
	uint32_t s = (uint32_t)(r.id & SLOT_MASK);
	if (r.id == 0) {
		worker_fail(c->w, "%s: %s (%s)", c->ep->text,
			    rk_errname(r.status),
			    r.error ? r.error : rk_strerror(r.status));
		rc = -1;
		goto out;
	}
	if (s >= c->w->b->cfg.pipeline || c->slots[s].id != r.id) {
		worker_fail(c->w,
			    "protocol error from %s: reply to request id "
			    "%" PRIu64 ", which is not in flight",
			    c->ep->text, r.id);
		rc = -1;
		goto out;
	}
	enum bop op = (enum bop)c->slots[s].op;
	if (r.status == RK_EUNKNOWN_COMMAND) {
		unknown_command(c, op, r.error);
		rc = -1;
		goto out;
	}
	if (r.status == 0) {
		enum rk_op want = op == BOP_GET	   ? RK_OP_GET
				  : op == BOP_CAS  ? RK_OP_CAS
				  : op == BOP_INCR ? RK_OP_COUNTER_GET
						   : RK_OP_PUT;
		if ((op == BOP_GET || op == BOP_PUT || op == BOP_CAS ||
		     op == BOP_INCR) &&
		    r.op != want) {
			worker_fail(c->w,
				    "protocol error from %s: a %s answered "
				    "with a %s result",
				    c->ep->text, bop_names[op],
				    rk_op_name(r.op));
			rc = -1;
			goto out;
		}
		if (op == BOP_GET && r.value_len != c->w->b->cfg.value_size)
			c->w->st.wrong_size++;
		/* A cas whose condition failed: counted as not_found. */
		complete(c, s, op == BOP_CAS && !r.applied ? OUT_NOT_FOUND
							   : OUT_OK,
			 NULL, 0, now);
	} else if (r.status == RK_ENOT_FOUND) {
		complete(c, s, OUT_NOT_FOUND, NULL, 0, now);
	} else {
		const char *name = rk_errname(r.status);
		complete(c, s, OUT_ERROR, name, strlen(name), now);
	}
out:
	rk_wire_msg_free(owner);
	return c->w->failed ? -1 : rc;
}

/* The slot the next in-order reply (RESP, etcd) answers, in *s.  Returns
 * 0, or -1 after failing the run when nothing was asked. */
static int fifo_next(struct conn *c, uint32_t *s)
{
	if (c->fifo_len == 0) {
		worker_fail(c->w, "protocol error from %s: a reply nobody "
				  "asked for", c->ep->text);
		return -1;
	}
	*s = c->fifo[c->fifo_head];
	return 0;
}

/* That slot has all its replies. */
static void fifo_pop(struct conn *c)
{
	c->fifo_head = (c->fifo_head + 1) % c->w->b->cfg.pipeline;
	c->fifo_len--;
}

/* The first word of a Redis error ("ERR", "MOVED", "WRONGTYPE"). */
static size_t resp_err_word(const char *s, size_t n)
{
	size_t i = 0;
	while (i < n && s[i] != ' ')
		i++;
	return i ? i : n;
}

/* Handles one RESP reply.  Returns 0, or -1 after a fatal error. */
static int on_resp_reply(struct conn *c, const struct resp_reply *r,
			 uint64_t now)
{
	const struct config *cfg = &c->w->b->cfg;
	uint32_t s;
	if (fifo_next(c, &s))
		return -1;
	struct slot *sl = &c->slots[s];
	enum bop op = (enum bop)sl->op;
	int last = --sl->replies == 0;
	if (last)
		fifo_pop(c);
	if (r->type == '-') {
		size_t n = resp_err_word(r->str, r->len);
		if (!last) { /* the SET of SET + WAIT: keep it for the WAIT */
			if (n >= sizeof(sl->err))
				n = sizeof(sl->err) - 1;
			memcpy(sl->err, r->str, n);
			sl->err[n] = 0;
			return 0;
		}
		complete(c, s, OUT_ERROR, r->str, n, now);
		return c->w->failed ? -1 : 0;
	}
	if (op == BOP_GET) {
		if (r->type != '$')
			goto bad;
		if (r->is_null) {
			complete(c, s, OUT_NOT_FOUND, NULL, 0, now);
		} else {
			if (r->len != cfg->value_size)
				c->w->st.wrong_size++;
			complete(c, s, OUT_OK, NULL, 0, now);
		}
		return c->w->failed ? -1 : 0;
	}
	if (!last) { /* the SET of SET + WAIT */
		if (r->type != '+')
			goto bad;
		return 0;
	}
	if (cfg->wait_replicas >= 0) {
		if (r->type != ':')
			goto bad;
		if (sl->err[0])
			complete(c, s, OUT_ERROR, sl->err, strlen(sl->err),
				 now);
		else if (r->integer < cfg->wait_replicas)
			complete(c, s, OUT_ERROR, "WAIT_TIMEOUT", 12, now);
		else
			complete(c, s, OUT_OK, NULL, 0, now);
		return c->w->failed ? -1 : 0;
	}
	if (r->type != '+')
		goto bad;
	complete(c, s, OUT_OK, NULL, 0, now);
	return c->w->failed ? -1 : 0;
bad:
	worker_fail(c->w,
		    "protocol error from %s: unexpected '%c' reply to %s",
		    c->ep->text, r->type, bop_names[op]);
	return -1;
}

/* Handles one etcd HTTP reply.  Returns 0, or -1 after a fatal error. */
static int on_etcd_reply(struct conn *c, const struct etcd_reply *r,
			 uint64_t now)
{
	uint32_t s;
	if (fifo_next(c, &s))
		return -1;
	enum bop op = (enum bop)c->slots[s].op;
	fifo_pop(c);
	if (r->status != 200) {
		char err[16];
		int n = snprintf(err, sizeof(err), "HTTP_%d", r->status);
		complete(c, s, OUT_ERROR, err, (size_t)n, now);
	} else if (op == BOP_GET) {
		complete(c, s, etcd_range_found(r) ? OUT_OK : OUT_NOT_FOUND,
			 NULL, 0, now);
	} else if (op == BOP_CAS) {
		/* A txn whose compare failed: counted as not_found. */
		complete(c, s, etcd_txn_succeeded(r) ? OUT_OK : OUT_NOT_FOUND,
			 NULL, 0, now);
	} else {
		complete(c, s, OUT_OK, NULL, 0, now);
	}
	return c->w->failed ? -1 : 0;
}

/* Handles every whole reply in c->in.  Returns 0 or -1 (fatal). */
static int conn_parse(struct conn *c, uint64_t now)
{
	const struct config *cfg = &c->w->b->cfg;
	while (rk_buf_readable(&c->in)) {
		const uint8_t *p = rk_buf_rptr(&c->in);
		size_t n = rk_buf_readable(&c->in);
		if (cfg->proto == PROTO_RINGKV) {
			struct rk_frame f;
			int rc = rk_frame_parse(p, n, MAX_REPLY_FRAME, &f);
			if (rc == 0)
				break;
			if (rc < 0) {
				worker_fail(c->w,
					    "protocol error from %s: a reply "
					    "frame over %u bytes",
					    c->ep->text, MAX_REPLY_FRAME);
				return -1;
			}
			if (on_ringkv_reply(c, f.body, f.body_len, now))
				return -1;
			rk_buf_consume(&c->in, f.frame_len);
		} else {
			/* In-order replies: RESP or etcd's HTTP. */
			int etcd = cfg->proto == PROTO_ETCD;
			struct etcd_reply er;
			struct resp_reply rr;
			long used = etcd ? etcd_parse_reply((const char *)p, n, &er)
					 : resp_parse((const char *)p, n, &rr);
			if (used == 0)
				break;
			if (used < 0) {
				worker_fail(c->w, "protocol error from %s: not %s",
					    c->ep->text,
					    etcd ? "an HTTP/1.1 reply with a "
						   "Content-Length"
						 : "RESP");
				return -1;
			}
			if (etcd ? on_etcd_reply(c, &er, now)
				 : on_resp_reply(c, &rr, now))
				return -1;
			rk_buf_consume(&c->in, (size_t)used);
		}
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* connections                                                         */

/* A connection went away: fatal, with what the server said last, since a
 * node closes a connection after limits.max_bad_frames errors in a row. */
static void conn_lost(struct conn *c, const char *why)
{
	struct worker *w = c->w;
	char tail[160] = "";
	if (w->err_replies)
		snprintf(tail, sizeof(tail),
			 "; %" PRIu64 " error replies before it, the last %s",
			 w->err_replies, w->last_err);
	worker_fail(w, "connection to %s lost (%s) with %u requests in "
		       "flight%s",
		    c->ep->text, why, w->b->cfg.pipeline - c->nfree, tail);
}

static void conn_flush(struct conn *c)
{
	while (rk_buf_readable(&c->out)) {
		ssize_t n = send(c->fd, rk_buf_rptr(&c->out),
				 rk_buf_readable(&c->out), MSG_NOSIGNAL);
		if (n > 0) {
			rk_buf_consume(&c->out, (size_t)n);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			ev_io_start(c->w->loop, &c->wio);
			return;
		}
		conn_lost(c, n < 0 ? strerror(errno) : "send returned 0");
		return;
	}
	ev_io_stop(c->w->loop, &c->wio);
}

/* Fills the pipeline window and sends. */
static void conn_pump(struct conn *c)
{
	uint64_t t0 = now_ns();
	while (c->nfree > 0) {
		int rc = issue(c, t0);
		if (rc < 0)
			return;
		if (rc == 0)
			break;
	}
	conn_flush(c);
}

static void on_read(struct ev_loop *loop, ev_io *io, int revents)
{
	(void)loop;
	(void)revents;
	struct conn *c = io->data;
	struct worker *w = c->w;
	if (rk_buf_reserve(&c->in, READ_CHUNK)) {
		worker_fail(w, "out of memory for replies");
		return;
	}
	ssize_t n = read(c->fd, c->in.data + c->in.len, c->in.cap - c->in.len);
	if (n <= 0) {
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK ||
			      errno == EINTR))
			return;
		conn_lost(c, n == 0 ? "closed by the server" : strerror(errno));
		return;
	}
	c->in.len += (size_t)n;
	if (conn_parse(c, now_ns()))
		return;
	conn_pump(c);
	worker_check_done(w);
}

static void on_write(struct ev_loop *loop, ev_io *io, int revents)
{
	(void)loop;
	(void)revents;
	conn_flush(io->data);
}

/* Connects to ep with a timeout; returns a non-blocking socket or -1 with
 * errno's message in err. */
static int dial(const struct endpoint *ep, char *err, size_t errlen)
{
	int fd = socket(ep->sa.ss_family,
			SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	int rc = connect(fd, (const struct sockaddr *)&ep->sa, ep->salen);
	if (rc < 0 && errno == EINPROGRESS) {
		struct pollfd pfd = {.fd = fd, .events = POLLOUT};
		rc = poll(&pfd, 1, CONNECT_TIMEOUT_MS);
		if (rc == 0) {
			errno = ETIMEDOUT;
			rc = -1;
		} else if (rc > 0) {
			int soerr = 0;
			socklen_t sl = sizeof(soerr);
			getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
			errno = soerr;
			rc = soerr ? -1 : 0;
		}
	}
	if (rc < 0) {
		snprintf(err, errlen, "cannot connect to %s: %s", ep->text,
			 strerror(errno));
		close(fd);
		return -1;
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

static int conn_init(struct conn *c, struct worker *w,
		     const struct endpoint *ep, unsigned group, char *err,
		     size_t errlen)
{
	const struct config *cfg = &w->b->cfg;
	memset(c, 0, sizeof(*c));
	c->w = w;
	c->ep = ep;
	c->group = group;
	c->fd = -1;
	rk_buf_init(&c->in);
	rk_buf_init(&c->out);
	c->slots = calloc(cfg->pipeline, sizeof(*c->slots));
	c->free_slots = calloc(cfg->pipeline, sizeof(*c->free_slots));
	c->fifo = calloc(cfg->pipeline, sizeof(*c->fifo));
	if (!c->slots || !c->free_slots || !c->fifo) {
		snprintf(err, errlen, "out of memory");
		return RK_ENOMEM;
	}
	/* Taken from the top: slot 0 first. */
	for (uint32_t i = 0; i < cfg->pipeline; i++)
		c->free_slots[i] = cfg->pipeline - 1 - i;
	c->nfree = cfg->pipeline;
	c->fd = dial(ep, err, errlen);
	if (c->fd < 0)
		return RK_ECONNECT;
	return 0;
}

static void conn_destroy(struct conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	rk_buf_destroy(&c->in);
	rk_buf_destroy(&c->out);
	free(c->slots);
	free(c->free_slots);
	free(c->fifo);
}

/* ------------------------------------------------------------------ */
/* the loop of one thread                                              */

static int warm_left(const struct worker *w)
{
	for (size_t g = 0; g < w->b->ngroups; g++)
		if (w->cursor[g] < w->b->cfg.keys)
			return 1;
	return 0;
}

/* Ends the phase once nothing more will be sent and nothing is in
 * flight. */
static void worker_check_done(struct worker *w)
{
	const struct config *cfg = &w->b->cfg;
	if (w->failed || w->inflight)
		return;
	if (w->phase == PH_WARMUP) {
		if (!warm_left(w)) {
			w->warm_end = now_ns();
			ev_break(w->loop, EVBREAK_ALL);
		}
		return;
	}
	if (w->stopping || (cfg->requests && w->issued >= w->quota)) {
		w->t_end = now_ns();
		ev_break(w->loop, EVBREAK_ALL);
	}
}

static void on_watchdog(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)revents;
	struct worker *w = t->data;
	if (atomic_load(&w->b->abort)) {
		ev_break(loop, EVBREAK_ALL);
		return;
	}
	uint64_t now = now_ns();
	if (w->inflight &&
	    (double)(now - w->last_reply_ns) / 1e9 > w->b->cfg.timeout_s)
		worker_fail(w,
			    "no reply for %.0f s with %" PRIu64 " requests in "
			    "flight (--timeout)",
			    w->b->cfg.timeout_s, w->inflight);
}

static void on_stop(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)loop;
	(void)revents;
	struct worker *w = t->data;
	w->stopping = 1;
	worker_check_done(w);
}

/* Runs one phase to its end (or a failure). */
static void worker_phase(struct worker *w)
{
	/* The loop's clock may be a whole warm-up old: timers started now
	 * must count from now. */
	ev_now_update(w->loop);
	w->last_reply_ns = now_ns();
	ev_timer_start(w->loop, &w->watchdog);
	for (unsigned i = 0; i < w->nconns && !w->failed; i++)
		conn_pump(&w->conns[i]);
	worker_check_done(w);
	if (!w->failed && !atomic_load(&w->b->abort) &&
	    (w->inflight || (w->phase == PH_RUN && !w->t_end) ||
	     (w->phase == PH_WARMUP && !w->warm_end)))
		ev_run(w->loop, 0);
	ev_timer_stop(w->loop, &w->watchdog);
	ev_timer_stop(w->loop, &w->stop_timer);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct bench *b = w->b;
	const struct config *cfg = &b->cfg;
	if (cfg->warmup) {
		w->phase = PH_WARMUP;
		w->warm_start = now_ns();
		worker_phase(w);
	}
	/* Everyone (main included) waits here, failed or not, so the
	 * measured phase starts together. */
	pthread_barrier_wait(&b->barrier);
	if (cfg->warmup_only || atomic_load(&b->abort))
		return NULL;
	w->phase = PH_RUN;
	ev_now_update(w->loop);
	w->t_start = now_ns();
	if (cfg->duration > 0)
		ev_timer_start(w->loop, &w->stop_timer);
	worker_phase(w);
	return NULL;
}

/* ------------------------------------------------------------------ */
/* setup                                                               */

static int resolve(const char *text, struct endpoint *ep, char *err,
		   size_t errlen)
{
	char host[256];
	uint16_t port;
	if (rk_addr_split(text, host, sizeof(host), &port, 0)) {
		snprintf(err, errlen, "'%s' is not HOST:PORT", text);
		return RK_EINVALID;
	}
	char portstr[8];
	snprintf(portstr, sizeof(portstr), "%u", port);
	struct addrinfo hints = {.ai_family = AF_UNSPEC,
				 .ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_NUMERICSERV};
	struct addrinfo *ai;
	int g = getaddrinfo(host, portstr, &hints, &ai);
	if (g) {
		snprintf(err, errlen, "cannot resolve %s: %s", host,
			 gai_strerror(g));
		return RK_EINVALID;
	}
	memcpy(&ep->sa, ai->ai_addr, ai->ai_addrlen);
	ep->salen = ai->ai_addrlen;
	snprintf(ep->text, sizeof(ep->text), "%s", text);
	freeaddrinfo(ai);
	return 0;
}

/* Sends req on a blocking socket and reads one whole reply into in. */
static int exchange(int fd, const struct rk_buf *req, struct rk_buf *in,
		    int (*whole)(const struct rk_buf *in), char *err,
		    size_t errlen)
{
	int fl = fcntl(fd, F_GETFL);
	fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
	struct timeval tv = {.tv_sec = 10};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	size_t off = 0;
	while (off < req->len) {
		ssize_t n = send(fd, req->data + off, req->len - off,
				 MSG_NOSIGNAL);
		if (n <= 0) {
			snprintf(err, errlen, "send: %s", strerror(errno));
			return RK_EIO;
		}
		off += (size_t)n;
	}
	while (!whole(in)) {
		if (rk_buf_reserve(in, READ_CHUNK))
			return RK_ENOMEM;
		ssize_t n = read(fd, in->data + in->len, in->cap - in->len);
		if (n <= 0) {
			snprintf(err, errlen, "read: %s",
				 n == 0 ? "connection closed"
					: strerror(errno));
			return RK_EIO;
		}
		in->len += (size_t)n;
	}
	return 0;
}

static int frame_whole(const struct rk_buf *in)
{
	struct rk_frame f;
	return rk_frame_parse(rk_buf_rptr(in), rk_buf_readable(in),
			      MAX_REPLY_FRAME, &f) != 0;
}

static int resp_whole(const struct rk_buf *in)
{
	struct resp_value v;
	long used = resp_parse_value((const char *)rk_buf_rptr(in),
				     rk_buf_readable(in), &v);
	if (used > 0)
		resp_value_free(&v);
	return used != 0;
}

/* Asks the first seed whether it knows op (cas, incr) before anything
 * else, so an unsupported op fails at once with a clear message. */
static void probe_op(const struct config *cfg, enum bop op)
{
	char err[300];
	int fd = dial(&cfg->seeds[0], err, sizeof(err));
	if (fd < 0)
		die("%s", err);
	struct rk_buf req, in;
	rk_buf_init(&req);
	rk_buf_init(&in);
	/* incr: a counter read of a key nobody uses answers NOT_FOUND on a
	 * node with counters; cas: a body-less envelope until it exists. */
	char pkey[] = "#ringkv-bench-probe";
	struct rk_request q = {.id = 1,
			       .op = RK_OP_COUNTER_GET,
			       .key = {(const uint8_t *)pkey, sizeof(pkey) - 1},
			       .consistency = RK_CL_ONE};
	if ((op == BOP_INCR ? rk_wire_encode_request(&req, &q)
			    : encode_not_yet(&req, 1)) ||
	    exchange(fd, &req, &in, frame_whole, err, sizeof(err)))
		die("asking %s about %s: %s", cfg->seeds[0].text,
		    bop_names[op], err);
	close(fd);
	struct rk_frame f;
	if (rk_frame_parse(rk_buf_rptr(&in), rk_buf_readable(&in),
			   MAX_REPLY_FRAME, &f) <= 0)
		die("protocol error from %s", cfg->seeds[0].text);
	struct rk_response r;
	struct rk_wire_msg *owner;
	if (rk_wire_decode_response(f.body, f.body_len, &r, &owner, err,
				    sizeof(err)))
		die("protocol error from %s: %s", cfg->seeds[0].text, err);
	int status = r.status;
	rk_wire_msg_free(owner);
	rk_buf_destroy(&req);
	rk_buf_destroy(&in);
	if (status == RK_EUNKNOWN_COMMAND)
		die("%s is not supported by this server/version yet: %s "
		    "answered UNKNOWN_COMMAND (the compare-and-set and counter "
		    "issues add it)",
		    bop_names[op], cfg->seeds[0].text);
	if (op == BOP_INCR && status != RK_EBAD_REQUEST)
		return; /* it knows counters (NOT_FOUND, OK, UNAVAILABLE...) */
	die("%s: this ringkv-bench does not know the wire format of %s "
	    "yet, and %s answered %s to its probe",
	    bop_names[op], bop_names[op], cfg->seeds[0].text,
	    rk_errname(status));
}

/* Reads the slot map of a Redis Cluster from the first seed. */
static struct cluster *discover_cluster(const struct config *cfg)
{
	char err[300];
	int fd = dial(&cfg->seeds[0], err, sizeof(err));
	if (fd < 0)
		die("%s", err);
	struct rk_buf req, in;
	rk_buf_init(&req);
	rk_buf_init(&in);
	const char *argv[2] = {"CLUSTER", "SLOTS"};
	size_t lens[2] = {7, 5};
	if (resp_encode(&req, 2, argv, lens) ||
	    exchange(fd, &req, &in, resp_whole, err, sizeof(err)))
		die("CLUSTER SLOTS from %s: %s", cfg->seeds[0].text, err);
	close(fd);
	struct resp_value v;
	if (resp_parse_value((const char *)rk_buf_rptr(&in),
			     rk_buf_readable(&in), &v) <= 0)
		die("CLUSTER SLOTS from %s: not RESP", cfg->seeds[0].text);
	if (v.type == '-')
		die("CLUSTER SLOTS from %s: %s (is it a cluster node?)",
		    cfg->seeds[0].text, v.str);
	if (v.type != '*' || v.n == 0)
		die("CLUSTER SLOTS from %s: no slots assigned",
		    cfg->seeds[0].text);
	struct cluster *cl = calloc(1, sizeof(*cl));
	uint8_t *seen = calloc(RESP_CLUSTER_SLOTS, 1);
	cl->masters = calloc(v.n, sizeof(*cl->masters));
	if (!cl || !seen || !cl->masters)
		die("out of memory");
	for (size_t i = 0; i < v.n; i++) {
		const struct resp_value *e = &v.elems[i];
		if (e->type != '*' || e->n < 3 || e->elems[0].type != ':' ||
		    e->elems[1].type != ':' || e->elems[2].type != '*' ||
		    e->elems[2].n < 2 || e->elems[2].elems[0].type != '$' ||
		    e->elems[2].elems[1].type != ':')
			die("CLUSTER SLOTS from %s: unexpected layout",
			    cfg->seeds[0].text);
		int64_t lo = e->elems[0].integer, hi = e->elems[1].integer;
		if (lo < 0 || hi >= RESP_CLUSTER_SLOTS || lo > hi)
			die("CLUSTER SLOTS: bad range %" PRId64 "-%" PRId64,
			    lo, hi);
		char text[300];
		const char *ip = e->elems[2].elems[0].str;
		snprintf(text, sizeof(text), strchr(ip, ':') ? "[%s]:%" PRId64
							     : "%s:%" PRId64,
			 ip, e->elems[2].elems[1].integer);
		size_t m;
		for (m = 0; m < cl->nmasters; m++)
			if (strcmp(cl->masters[m].text, text) == 0)
				break;
		if (m == cl->nmasters) {
			if (resolve(text, &cl->masters[m], err, sizeof(err)))
				die("cluster node: %s", err);
			cl->nmasters++;
		}
		for (int64_t s = lo; s <= hi; s++) {
			cl->owner[s] = (uint16_t)m;
			seen[s] = 1;
		}
	}
	for (int s = 0; s < RESP_CLUSTER_SLOTS; s++)
		if (!seen[s])
			die("cluster from %s: slot %d has no master (is the "
			    "cluster fully set up?)",
			    cfg->seeds[0].text, s);
	free(seen);
	resp_value_free(&v);
	rk_buf_destroy(&req);
	rk_buf_destroy(&in);
	return cl;
}

/* Reads the ring from the first seed that answers RingInfo and makes the
 * live members the targets (--smart on). */
static struct cluster *discover_ring(const struct config *cfg)
{
	char err[300] = "no seeds";
	struct rk_buf req, in;
	rk_buf_init(&req);
	rk_buf_init(&in);
	struct rk_request q = {.id = 1, .op = RK_OP_RING_INFO};
	if (rk_wire_encode_request(&req, &q))
		die("out of memory");
	struct rk_response r;
	struct rk_wire_msg *owner = NULL;
	const struct endpoint *from = NULL;
	for (size_t i = 0; i < cfg->nseeds && !owner; i++) {
		int fd = dial(&cfg->seeds[i], err, sizeof(err));
		if (fd < 0)
			continue;
		rk_buf_clear(&in);
		int rc = exchange(fd, &req, &in, frame_whole, err,
				  sizeof(err));
		close(fd);
		struct rk_frame f;
		if (rc || rk_frame_parse(rk_buf_rptr(&in), rk_buf_readable(&in),
					 MAX_REPLY_FRAME, &f) <= 0)
			continue;
		if (rk_wire_decode_response(f.body, f.body_len, &r, &owner,
					    err, sizeof(err)))
			die("RingInfo from %s: %s", cfg->seeds[i].text, err);
		from = &cfg->seeds[i];
	}
	if (!owner)
		die("--smart on: no seed answered RingInfo (last: %s)", err);
	if (r.status == RK_EUNKNOWN_COMMAND || r.status == RK_ENOT_IMPLEMENTED)
		die("--smart on: %s cannot describe its ring (%s); use "
		    "--smart off",
		    from->text, rk_errname(r.status));
	if (r.status || r.op != RK_OP_RING_INFO)
		die("RingInfo from %s: %s", from->text,
		    r.error ? r.error : rk_strerror(r.status));
	struct cluster *cl = calloc(1, sizeof(*cl));
	struct ring_member *rm = calloc(r.n_ring ? r.n_ring : 1, sizeof(*rm));
	if (!cl || !rm)
		die("out of memory");
	size_t k = 0;
	for (size_t i = 0; i < r.n_ring; i++)
		if (r.ring[i].n_tokens)
			rm[k++] = (struct ring_member){
				.node_id = r.ring[i].node_id,
				.weight = r.ring[i].weight ? r.ring[i].weight : 1,
				.tokens = r.ring[i].tokens,
				.n_tokens = r.ring[i].n_tokens};
	if (k == 0)
		die("--smart on: %s knows no ring members with tokens yet",
		    from->text);
	cl->rf = r.rf ? r.rf : 3;
	if (cl->rf > RING_RF_MAX)
		cl->rf = RING_RF_MAX;
	struct ring_config rcfg = {.epoch = r.ring_epoch, .rf_max = cl->rf};
	int rc = ring_new(rm, k, &rcfg, &cl->ring);
	free(rm);
	if (rc)
		die("--smart on: the ring %s describes cannot be built: %s",
		    from->text, rk_strerror(rc));
	size_t nm = ring_member_count(cl->ring);
	cl->group = malloc(nm * sizeof(*cl->group));
	cl->masters = calloc(nm, sizeof(*cl->masters));
	cl->ids = calloc(nm, sizeof(*cl->ids));
	if (!cl->group || !cl->masters || !cl->ids)
		die("out of memory");
	for (size_t mi = 0; mi < nm; mi++) {
		cl->group[mi] = -1;
		uint64_t id = ring_member_id(cl->ring, mi);
		for (size_t i = 0; i < r.n_ring; i++) {
			if (r.ring[i].node_id != id ||
			    strcmp(r.ring[i].state, "alive") != 0 ||
			    !r.ring[i].client_addr[0])
				continue;
			if (resolve(r.ring[i].client_addr,
				    &cl->masters[cl->nmasters], err,
				    sizeof(err)))
				die("ring member %016" PRIx64 ": %s", id, err);
			cl->ids[cl->nmasters] = id;
			cl->group[mi] = (int)cl->nmasters++;
			break;
		}
	}
	if (cl->nmasters == 0)
		die("--smart on: no ring member is alive as %s sees it",
		    from->text);
	note(cfg, "smart routing: %zu live nodes of %zu on the ring of %s "
		  "(rf %u); each key goes to its first live replica",
	     cl->nmasters, nm, from->text, cl->rf);
	rk_wire_msg_free(owner);
	rk_buf_destroy(&req);
	rk_buf_destroy(&in);
	return cl;
}

static void raise_fd_limit(unsigned want)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= want)
		return;
	rl.rlim_cur = want < rl.rlim_max ? want : rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
}

/* ------------------------------------------------------------------ */
/* options                                                             */

static void usage(FILE *out)
{
	fprintf(out,
"Usage: ringkv-bench [OPTIONS]\n"
"\n"
"Load generator for ringkv (and, with --resp, for Redis; with --etcd, for\n"
"etcd).  Many connections\n"
"from one process, each keeping a window of pipelined requests; reports\n"
"throughput and latency percentiles from a log-linear histogram.\n"
"\n"
"Target\n"
"  -s, --seeds H:P[,H:P...]  servers; connections are spread over them\n"
"                            (default $RINGKV_SEEDS, then 127.0.0.1:7400;\n"
"                            127.0.0.1:6379 with --resp, 127.0.0.1:2379\n"
"                            with --etcd)\n"
"      --resp                speak RESP (Redis) instead of the ringkv protocol\n"
"      --etcd                drive etcd through its v3 HTTP/JSON gateway: get\n"
"                            is a linearizable range, put a put, cas a txn\n"
"                            comparing the value\n"
"      --cluster             --resp against a Redis Cluster: read CLUSTER SLOTS\n"
"                            from the first seed and route keys to masters\n"
"      --wait N[:MS]         --resp: follow every SET with WAIT N MS (default\n"
"                            MS 0, wait for ever); latency covers both\n"
"      --smart on|off        route each key to its first live replica, from\n"
"                            the ring of the first seed (default off)\n"
"      --consistency LEVEL   default|one|quorum|all|serial, sent in requests\n"
"\n"
"Load\n"
"  -c, --connections N       connections (default 50)\n"
"  -n, --requests N          total requests to measure (default 100000)\n"
"      --duration T          measure for T instead (10s, 500ms, 2m)\n"
"  -P, --pipeline N          requests in flight per connection (default 1)\n"
"  -T, --threads N           event-loop threads (default 1)\n"
"      --mix OP=W[,OP=W...]  get, put, cas, incr with weights (default get=9,put=1);\n"
"                            cas sets a key from the bench value to itself\n"
"                            through Paxos (counted not_found when the key\n"
"                            held another value); incr adds 1 to counter\n"
"                            keys ('#' for the key's first byte), each add\n"
"                            with its own op id\n"
"      --timeout T           abort when no reply comes for T (default 30s)\n"
"\n"
"Data\n"
"  -d, --value-size N        value bytes (default 100)\n"
"  -k, --keys N              key space: keys 0..N-1 (default 100000)\n"
"      --key-size N          bytes per key, prefix + zero-padded number (default 16)\n"
"      --key-prefix S        (default \"key:\", as redis-benchmark's keys)\n"
"      --dist D              uniform | zipfian[:THETA] (THETA in (0,1), default %.2f)\n"
"      --warmup / --no-warmup  put every key once before measuring (default:\n"
"                            on when the mix reads, i.e. has get or cas)\n"
"      --warmup-only         fill the key space and exit\n"
"      --seed N              PRNG seed (default: from the time; printed)\n"
"\n"
"Output\n"
"      --json                one JSON object on stdout instead of the table\n"
"  -q, --quiet               no progress notes on stderr\n"
"  -h, --help, -V, --version\n"
"\n"
"Exit status: 0 all requests answered OK or NOT_FOUND; 1 some answered with\n"
"an error status (counted by code in the report); 2 bad usage, connection or\n"
"protocol failure (message on stderr).\n",
		ZIPF_DEFAULT_THETA);
}

static uint64_t parse_count(const char *opt, const char *s, uint64_t min,
			    uint64_t max)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (end == s || errno)
		die("%s: '%s' is not a number", opt, s);
	if (*end == 'k' || *end == 'K')
		v *= 1e3, end++;
	else if (*end == 'm' || *end == 'M')
		v *= 1e6, end++;
	else if (*end == 'g' || *end == 'G')
		v *= 1e9, end++;
	if (*end || v < (double)min || v > (double)max || v != floor(v))
		die("%s: '%s' is not a whole number in %" PRIu64 "..%" PRIu64,
		    opt, s, min, max);
	return (uint64_t)v;
}

static double parse_seconds(const char *opt, const char *s)
{
	char *end;
	double v = strtod(s, &end);
	if (end == s || v <= 0)
		die("%s: '%s' is not a positive duration", opt, s);
	if (strcmp(end, "ms") == 0)
		v /= 1000;
	else if (strcmp(end, "m") == 0)
		v *= 60;
	else if (strcmp(end, "h") == 0)
		v *= 3600;
	else if (*end && strcmp(end, "s") != 0)
		die("%s: '%s': use s, ms, m or h", opt, s);
	return v;
}

static void parse_mix(struct config *cfg, const char *s)
{
	memset(cfg->mix, 0, sizeof(cfg->mix));
	char *copy = strdup(s);
	if (!copy)
		die("out of memory");
	char *save = NULL;
	for (char *tok = strtok_r(copy, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(tok, '=');
		unsigned weight = 1;
		if (eq) {
			*eq = 0;
			weight = (unsigned)parse_count("--mix", eq + 1, 0,
						       1000000);
		}
		int op = -1;
		for (int i = 0; i < BOP_COUNT; i++)
			if (strcasecmp(tok, bop_names[i]) == 0)
				op = i;
		if (strcasecmp(tok, "set") == 0)
			op = BOP_PUT;
		if (op < 0)
			die("--mix: unknown operation '%s' (get, put, cas, "
			    "incr)",
			    tok);
		cfg->mix[op] += weight;
	}
	free(copy);
	cfg->mix_total = 0;
	for (int i = 0; i < BOP_COUNT; i++)
		cfg->mix_total += cfg->mix[i];
	if (cfg->mix_total == 0)
		die("--mix: every weight is 0");
}

static void parse_seeds(struct config *cfg, const char *s)
{
	char *copy = strdup(s);
	if (!copy)
		die("out of memory");
	size_t n = 1;
	for (const char *p = s; *p; p++)
		n += *p == ',';
	cfg->seeds = calloc(n, sizeof(*cfg->seeds));
	if (!cfg->seeds)
		die("out of memory");
	cfg->nseeds = 0;
	char *save = NULL;
	char err[300];
	for (char *tok = strtok_r(copy, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		if (resolve(tok, &cfg->seeds[cfg->nseeds], err, sizeof(err)))
			die("-s: %s", err);
		cfg->nseeds++;
	}
	free(copy);
	if (cfg->nseeds == 0)
		die("-s: no address given");
}

static void parse_args(struct config *cfg, int argc, char **argv)
{
	enum {
		O_DURATION = 256, O_KEYSIZE, O_PREFIX, O_DIST, O_MIX, O_CL,
		O_SMART, O_WARMUP, O_NOWARMUP, O_WARMONLY, O_SEED, O_JSON,
		O_RESP, O_ETCD, O_CLUSTER, O_WAIT, O_TIMEOUT,
	};
	static const struct option opts[] = {
		{"seeds", required_argument, NULL, 's'},
		{"connections", required_argument, NULL, 'c'},
		{"clients", required_argument, NULL, 'c'},
		{"requests", required_argument, NULL, 'n'},
		{"duration", required_argument, NULL, O_DURATION},
		{"pipeline", required_argument, NULL, 'P'},
		{"threads", required_argument, NULL, 'T'},
		{"value-size", required_argument, NULL, 'd'},
		{"keys", required_argument, NULL, 'k'},
		{"key-size", required_argument, NULL, O_KEYSIZE},
		{"key-prefix", required_argument, NULL, O_PREFIX},
		{"dist", required_argument, NULL, O_DIST},
		{"mix", required_argument, NULL, O_MIX},
		{"consistency", required_argument, NULL, O_CL},
		{"smart", required_argument, NULL, O_SMART},
		{"warmup", no_argument, NULL, O_WARMUP},
		{"no-warmup", no_argument, NULL, O_NOWARMUP},
		{"warmup-only", no_argument, NULL, O_WARMONLY},
		{"seed", required_argument, NULL, O_SEED},
		{"json", no_argument, NULL, O_JSON},
		{"quiet", no_argument, NULL, 'q'},
		{"resp", no_argument, NULL, O_RESP},
		{"etcd", no_argument, NULL, O_ETCD},
		{"cluster", no_argument, NULL, O_CLUSTER},
		{"wait", required_argument, NULL, O_WAIT},
		{"timeout", required_argument, NULL, O_TIMEOUT},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	const char *seeds = NULL;
	int seed_given = 0;
	memset(cfg, 0, sizeof(*cfg));
	cfg->conns = 50;
	cfg->requests = 100000;
	cfg->pipeline = 1;
	cfg->threads = 1;
	cfg->value_size = 100;
	cfg->key_size = 16;
	cfg->keys = 100000;
	snprintf(cfg->key_prefix, sizeof(cfg->key_prefix), "key:");
	cfg->dist = DIST_UNIFORM;
	cfg->warmup = -1;
	cfg->wait_replicas = -1;
	cfg->timeout_s = 30;
	parse_mix(cfg, "get=9,put=1");
	int c;
	while ((c = getopt_long(argc, argv, "s:c:n:P:T:d:k:qhV", opts,
				NULL)) != -1) {
		switch (c) {
		case 's': seeds = optarg; break;
		case 'c':
			cfg->conns = (unsigned)parse_count("-c", optarg, 1,
							   MAX_CONNS);
			break;
		case 'n':
			cfg->requests = parse_count("-n", optarg, 1,
						    UINT64_MAX / 2);
			cfg->duration = 0;
			break;
		case O_DURATION:
			cfg->duration = parse_seconds("--duration", optarg);
			cfg->requests = 0;
			break;
		case 'P':
			cfg->pipeline = (unsigned)parse_count("-P", optarg, 1,
							      MAX_PIPELINE);
			break;
		case 'T':
			cfg->threads = (unsigned)parse_count("--threads",
							     optarg, 1,
							     MAX_THREADS);
			break;
		case 'd':
			cfg->value_size = (uint32_t)parse_count("-d", optarg, 0,
								1u << 30);
			break;
		case 'k':
			cfg->keys = parse_count("--keys", optarg, 1,
						UINT64_MAX / 16);
			break;
		case O_KEYSIZE:
			cfg->key_size = (uint32_t)parse_count(
				"--key-size", optarg, 1, MAX_KEY_SIZE);
			break;
		case O_PREFIX:
			if (strlen(optarg) >= sizeof(cfg->key_prefix))
				die("--key-prefix: at most %zu bytes",
				    sizeof(cfg->key_prefix) - 1);
			snprintf(cfg->key_prefix, sizeof(cfg->key_prefix), "%s",
				 optarg);
			break;
		case O_DIST:
			if (strcmp(optarg, "uniform") == 0) {
				cfg->dist = DIST_UNIFORM;
			} else if (strncmp(optarg, "zipf", 4) == 0) {
				const char *colon = strchr(optarg, ':');
				size_t nl = colon ? (size_t)(colon - optarg)
						  : strlen(optarg);
				int ok = (nl == 4 &&
					  !strncmp(optarg, "zipf", 4)) ||
					 (nl == 7 &&
					  !strncmp(optarg, "zipfian", 7));
				if (!ok)
					die("--dist: uniform or "
					    "zipfian[:THETA]");
				cfg->dist = DIST_ZIPF;
				cfg->theta = ZIPF_DEFAULT_THETA;
				if (colon) {
					char *end;
					cfg->theta = strtod(colon + 1, &end);
					if (*end || !(cfg->theta > 0 &&
						      cfg->theta < 1))
						die("--dist: THETA must be "
						    "between 0 and 1 "
						    "(exclusive)");
				}
			} else {
				die("--dist: uniform or zipfian[:THETA]");
			}
			break;
		case O_MIX: parse_mix(cfg, optarg); break;
		case O_CL:
			cfg->consistency = rk_consistency_parse(optarg);
			if (cfg->consistency < 0)
				die("--consistency: one of default, one, "
				    "quorum, all, serial");
			break;
		case O_SMART:
			if (strcmp(optarg, "on") == 0)
				cfg->smart = 1;
			else if (strcmp(optarg, "off") == 0)
				cfg->smart = 0;
			else
				die("--smart: on or off");
			break;
		case O_WARMUP: cfg->warmup = 1; break;
		case O_NOWARMUP: cfg->warmup = 0; break;
		case O_WARMONLY: cfg->warmup_only = 1; break;
		case O_SEED:
			cfg->seed = strtoull(optarg, NULL, 0);
			seed_given = 1;
			break;
		case O_JSON: cfg->json = 1; break;
		case 'q': cfg->quiet = 1; break;
		case O_RESP: cfg->proto = PROTO_RESP; break;
		case O_ETCD: cfg->proto = PROTO_ETCD; break;
		case O_CLUSTER: cfg->cluster = 1; break;
		case O_WAIT: {
			char *colon = strchr(optarg, ':');
			if (colon)
				*colon = 0;
			cfg->wait_replicas = (int)parse_count("--wait", optarg,
							      0, 1000);
			cfg->wait_timeout_ms =
				colon ? (unsigned)parse_count("--wait",
							      colon + 1, 0,
							      UINT32_MAX)
				      : 0;
			break;
		}
		case O_TIMEOUT:
			cfg->timeout_s = parse_seconds("--timeout", optarg);
			break;
		case 'h': usage(stdout); exit(0);
		case 'V': printf("ringkv-bench %s\n", RINGKV_VERSION); exit(0);
		default:
			fprintf(stderr, "Try '%s --help'.\n", prog);
			exit(2);
		}
	}
	if (optind < argc)
		die("unexpected argument '%s'", argv[optind]);

	if (!seeds && cfg->proto == PROTO_RINGKV)
		seeds = getenv("RINGKV_SEEDS");
	if (!seeds || !*seeds)
		seeds = cfg->proto == PROTO_RESP   ? "127.0.0.1:6379"
			: cfg->proto == PROTO_ETCD ? "127.0.0.1:2379"
						   : "127.0.0.1:7400";
	parse_seeds(cfg, seeds);

	cfg->prefix_len = strlen(cfg->key_prefix);
	if (cfg->prefix_len >= cfg->key_size)
		die("--key-size %u leaves no room after the %zu-byte prefix",
		    cfg->key_size, cfg->prefix_len);
	unsigned digits = 1;
	for (uint64_t k = cfg->keys - 1; k >= 10; k /= 10)
		digits++;
	if (cfg->key_size - cfg->prefix_len < digits)
		die("--key-size %u: %zu-byte prefix + %u digits for %" PRIu64
		    " keys do not fit",
		    cfg->key_size, cfg->prefix_len, digits, cfg->keys);
	if (cfg->dist == DIST_ZIPF && cfg->keys < 1)
		die("--dist zipfian needs keys");
	if (cfg->threads > cfg->conns)
		die("--threads %u is more than the %u connections",
		    cfg->threads, cfg->conns);
	if (cfg->proto == PROTO_RESP) {
		if (cfg->mix[BOP_CAS] || cfg->mix[BOP_INCR])
			die("--resp drives only get and put (SET, with --wait "
			    "SET + WAIT)");
		if (cfg->consistency)
			die("--consistency is a ringkv option; with --resp "
			    "use --wait");
	} else if (cfg->proto == PROTO_ETCD) {
		if (cfg->mix[BOP_INCR])
			die("--etcd drives get, put and cas (etcd has no "
			    "counters)");
		if (cfg->consistency || cfg->smart || cfg->cluster ||
		    cfg->wait_replicas >= 0)
			die("--consistency, --smart, --cluster and --wait are "
			    "not --etcd options: etcd's gets are linearizable, "
			    "and every member takes every key");
	} else {
		if (cfg->cluster)
			die("--cluster is for Redis Cluster (--resp); ringkv "
			    "nodes take requests for any key");
		if (cfg->wait_replicas >= 0)
			die("--wait is a --resp option; ringkv uses "
			    "--consistency");
	}
	if (cfg->warmup < 0)
		cfg->warmup = cfg->mix[BOP_GET] > 0 || cfg->mix[BOP_CAS] > 0;
	if (cfg->warmup_only)
		cfg->warmup = 1;
	if (!seed_given) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		cfg->seed = (uint64_t)ts.tv_sec * 1000003u ^
			    (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 20);
	}
}

/* ------------------------------------------------------------------ */
/* report                                                              */

struct summary {
	struct stats st;
	uint64_t *per_node;  /* measured requests per server (cluster master,
				ring node or seed) */
	uint64_t requests, errors, warm_keys;
	double seconds, warm_seconds;
	double client_cpu_s;
};

static double rate(uint64_t n, double seconds)
{
	return seconds > 0 ? (double)n / seconds : 0;
}

static double us(uint64_t ns)
{
	return (double)ns / 1000.0;
}

static const double pcts[] = {50, 90, 99, 99.9};
static const char *const pct_names[] = {"p50", "p90", "p99", "p99_9"};
#define NPCTS (sizeof(pcts) / sizeof(pcts[0]))

static void describe(const struct bench *b, FILE *out)
{
	const struct config *cfg = &b->cfg;
	const char *proto = "ringkv protocol";
	if (cfg->proto == PROTO_RESP)
		proto = cfg->cluster ? "RESP (Redis Cluster)" : "RESP (Redis)";
	else if (cfg->proto == PROTO_ETCD)
		proto = "etcd v3 HTTP/JSON gateway";
	fprintf(out, "ringkv-bench %s: %s, %zu %s", RINGKV_VERSION, proto,
		b->cl ? b->cl->nmasters : cfg->nseeds,
		b->cl ? (b->cl->ring ? "nodes" : "masters")
		      : (cfg->nseeds == 1 ? "server" : "servers"));
	for (size_t i = 0; i < (b->cl ? b->cl->nmasters : cfg->nseeds); i++)
		fprintf(out, "%s%s", i ? "," : " ",
			b->cl ? b->cl->masters[i].text : cfg->seeds[i].text);
	fprintf(out, "\n  %u connections, %u thread%s, pipeline %u", cfg->conns,
		cfg->threads, cfg->threads == 1 ? "" : "s", cfg->pipeline);
	if (cfg->requests)
		fprintf(out, ", %" PRIu64 " requests", cfg->requests);
	else
		fprintf(out, ", %.1f s", cfg->duration);
	fprintf(out, "\n  %" PRIu64 " keys of %u bytes (%s...), values of %u "
		     "bytes, %s",
		cfg->keys, cfg->key_size, cfg->key_prefix, cfg->value_size,
		cfg->dist == DIST_ZIPF ? "zipfian" : "uniform");
	if (cfg->dist == DIST_ZIPF)
		fprintf(out, " theta %.2f", cfg->theta);
	fprintf(out, ", mix");
	for (int i = 0; i < BOP_COUNT; i++)
		if (cfg->mix[i])
			fprintf(out, " %s=%u", bop_names[i], cfg->mix[i]);
	if (cfg->proto == PROTO_RINGKV)
		fprintf(out, ", consistency %s, smart routing %s",
			rk_consistency_name(
				(enum rk_consistency)cfg->consistency),
			cfg->smart ? "on" : "off");
	if (cfg->wait_replicas >= 0)
		fprintf(out, ", SET + WAIT %d %u", cfg->wait_replicas,
			cfg->wait_timeout_ms);
	fprintf(out, ", seed %" PRIu64 "\n", cfg->seed);
}

static void print_table(const struct bench *b, const struct summary *s)
{
	const struct config *cfg = &b->cfg;
	describe(b, stdout);
	if (s->warm_keys)
		printf("  warm-up: %" PRIu64 " puts in %.2f s (%.0f ops/s)\n",
		       s->warm_keys, s->warm_seconds,
		       rate(s->warm_keys, s->warm_seconds));
	if (cfg->warmup_only)
		return;
	printf("\n%-5s %10s %10s %10s %8s %11s %9s %9s %9s %9s %9s %9s\n",
	       "op", "count", "ok", "not_found", "errors", "ops/s", "mean",
	       "p50", "p90", "p99", "p99.9", "max");
	for (int i = 0; i <= BOP_COUNT; i++) {
		const struct hdr *h;
		uint64_t ok, nf, er;
		const char *name;
		if (i < BOP_COUNT) {
			const struct op_stats *o = &s->st.op[i];
			if (!cfg->mix[i])
				continue;
			h = o->lat;
			ok = o->ok;
			nf = o->not_found;
			er = o->errors;
			name = bop_names[i];
		} else {
			h = s->st.all;
			ok = nf = er = 0;
			for (int k = 0; k < BOP_COUNT; k++) {
				ok += s->st.op[k].ok;
				nf += s->st.op[k].not_found;
				er += s->st.op[k].errors;
			}
			name = "all";
		}
		printf("%-5s %10" PRIu64 " %10" PRIu64 " %10" PRIu64
		       " %8" PRIu64 " %11.0f %9.1f",
		       name, hdr_count(h), ok, nf, er,
		       s->seconds > 0 ? (double)hdr_count(h) / s->seconds : 0,
		       hdr_mean(h) / 1000.0);
		for (size_t p = 0; p < NPCTS; p++)
			printf(" %9.1f", us(hdr_percentile(h, pcts[p])));
		printf(" %9.1f\n", us(hdr_max(h)));
	}
	printf("latencies in microseconds, send to reply\n");
	for (int i = 0; i < BOP_COUNT; i++)
		for (size_t k = 0; k < s->st.op[i].nerrs; k++)
			printf("errors: %s %s: %" PRIu64 "\n", bop_names[i],
			       s->st.op[i].errs[k].name, s->st.op[i].errs[k].n);
	if (s->st.wrong_size)
		printf("warning: %" PRIu64 " GET values were not %u bytes long "
		       "(another writer, or no warm-up)\n",
		       s->st.wrong_size, cfg->value_size);
	printf("\nthroughput: %.0f ops/s (%" PRIu64 " requests in %.3f s); "
	       "client CPU %.2f us/op\n",
	       s->seconds > 0 ? (double)s->requests / s->seconds : 0,
	       s->requests, s->seconds,
	       s->requests ? s->client_cpu_s * 1e6 / (double)s->requests : 0);
}

static void json_hist(const struct hdr *h, double seconds)
{
	printf("\"count\":%" PRIu64 ",\"ops_per_sec\":%.1f,\"latency_us\":{"
	       "\"mean\":%.2f,\"min\":%.2f",
	       hdr_count(h), seconds > 0 ? (double)hdr_count(h) / seconds : 0,
	       hdr_mean(h) / 1000.0, us(hdr_min(h)));
	for (size_t p = 0; p < NPCTS; p++)
		printf(",\"%s\":%.2f", pct_names[p],
		       us(hdr_percentile(h, pcts[p])));
	printf(",\"max\":%.2f}", us(hdr_max(h)));
}

/* Names here are ours or Redis's first error word: letters, digits, '_'
 * and the like; anything else is escaped away. */
static void json_name(const char *s)
{
	putchar('"');
	for (; *s; s++)
		putchar((*s == '"' || *s == '\\' || (unsigned char)*s < 0x20)
				? '_'
				: *s);
	putchar('"');
}

static void print_json(const struct bench *b, const struct summary *s)
{
	const struct config *cfg = &b->cfg;
	printf("{\"tool\":\"ringkv-bench\",\"version\":\"%s\",\"protocol\":"
	       "\"%s\",\"cluster\":%s,\"servers\":[",
	       RINGKV_VERSION,
	       cfg->proto == PROTO_RESP	  ? "resp"
	       : cfg->proto == PROTO_ETCD ? "etcd"
					  : "ringkv",
	       b->cl ? "true" : "false");
	size_t ns = b->cl ? b->cl->nmasters : cfg->nseeds;
	for (size_t i = 0; i < ns; i++) {
		if (i)
			putchar(',');
		json_name(b->cl ? b->cl->masters[i].text : cfg->seeds[i].text);
	}
	printf("],\"nodes\":[");
	for (size_t i = 0; i < ns; i++) {
		printf("%s{\"address\":", i ? "," : "");
		json_name(b->cl ? b->cl->masters[i].text : cfg->seeds[i].text);
		if (b->cl && b->cl->ring)
			printf(",\"id\":\"%016" PRIx64 "\"", b->cl->ids[i]);
		printf(",\"requests\":%" PRIu64 "}", s->per_node[i]);
	}
	printf("],\"connections\":%u,\"threads\":%u,\"pipeline\":%u,"
	       "\"key_size\":%u,\"key_prefix\":",
	       cfg->conns, cfg->threads, cfg->pipeline, cfg->key_size);
	json_name(cfg->key_prefix);
	printf(",\"value_size\":%u,\"keys\":%" PRIu64 ",\"dist\":\"%s\","
	       "\"theta\":%.3f,\"mix\":{",
	       cfg->value_size, cfg->keys,
	       cfg->dist == DIST_ZIPF ? "zipfian" : "uniform",
	       cfg->dist == DIST_ZIPF ? cfg->theta : 0.0);
	int first = 1;
	for (int i = 0; i < BOP_COUNT; i++) {
		if (!cfg->mix[i])
			continue;
		printf("%s\"%s\":%u", first ? "" : ",", bop_names[i],
		       cfg->mix[i]);
		first = 0;
	}
	printf("},\"consistency\":\"%s\",\"smart\":%s,\"wait_replicas\":%d,"
	       "\"seed\":%" PRIu64 ",",
	       rk_consistency_name((enum rk_consistency)cfg->consistency),
	       cfg->smart ? "true" : "false", cfg->wait_replicas, cfg->seed);
	printf("\"warmup\":{\"keys\":%" PRIu64 ",\"seconds\":%.3f,"
	       "\"ops_per_sec\":%.1f}",
	       s->warm_keys, s->warm_seconds,
	       rate(s->warm_keys, s->warm_seconds));
	if (cfg->warmup_only) {
		printf("}\n");
		return;
	}
	printf(",\"requests\":%" PRIu64 ",\"seconds\":%.3f,\"ops_per_sec\":"
	       "%.1f,\"errors\":%" PRIu64 ",\"wrong_value_size\":%" PRIu64
	       ",\"client_cpu_us_per_op\":%.3f,\"ops\":{",
	       s->requests, s->seconds,
	       s->seconds > 0 ? (double)s->requests / s->seconds : 0, s->errors,
	       s->st.wrong_size,
	       s->requests ? s->client_cpu_s * 1e6 / (double)s->requests : 0);
	first = 1;
	for (int i = 0; i < BOP_COUNT; i++) {
		const struct op_stats *o = &s->st.op[i];
		if (!cfg->mix[i])
			continue;
		printf("%s\"%s\":{", first ? "" : ",", bop_names[i]);
		first = 0;
		json_hist(o->lat, s->seconds);
		printf(",\"ok\":%" PRIu64 ",\"not_found\":%" PRIu64
		       ",\"errors\":%" PRIu64 ",\"errors_by_code\":{",
		       o->ok, o->not_found, o->errors);
		for (size_t k = 0; k < o->nerrs; k++) {
			if (k)
				putchar(',');
			json_name(o->errs[k].name);
			printf(":%" PRIu64, o->errs[k].n);
		}
		printf("}}");
	}
	printf("},\"all\":{");
	json_hist(s->st.all, s->seconds);
	printf("}}\n");
}

/* ------------------------------------------------------------------ */
/* main                                                                */

static double cpu_seconds(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static void setup_workers(struct bench *b)
{
	const struct config *cfg = &b->cfg;
	b->workers = calloc(cfg->threads, sizeof(*b->workers));
	if (!b->workers)
		die("out of memory");
	unsigned ngroups = (unsigned)b->ngroups;
	for (unsigned t = 0; t < cfg->threads; t++) {
		struct worker *w = &b->workers[t];
		w->b = b;
		w->index = t;
		rk_rng_seed(&w->rng, cfg->seed + t * 0x9e3779b97f4a7c15ull);
		w->loop = ev_loop_new(EVFLAG_AUTO);
		w->conns = calloc(cfg->conns / cfg->threads + 1,
				  sizeof(*w->conns));
		w->cursor = calloc(ngroups, sizeof(*w->cursor));
		w->per_server = calloc(ngroups + cfg->nseeds,
				       sizeof(*w->per_server));
		if (!w->loop || !w->conns || !w->cursor || !w->per_server ||
		    stats_init(&w->st))
			die("out of memory");
		for (unsigned g = 0; g < ngroups; g++)
			w->cursor[g] = t;
		memcpy(w->key, cfg->key_prefix, cfg->prefix_len);
		w->quota = cfg->requests / cfg->threads +
			   (t < cfg->requests % cfg->threads ? 1 : 0);
		ev_timer_init(&w->watchdog, on_watchdog, WATCHDOG_S,
			      WATCHDOG_S);
		ev_timer_init(&w->stop_timer, on_stop, cfg->duration, 0);
		w->watchdog.data = w->stop_timer.data = w;
	}
	/* Connection g goes to thread (g / groups) % threads, so that every
	 * thread has a connection to every cluster master once there are
	 * groups * threads connections (checked by the caller). */
	char err[300];
	for (unsigned g = 0; g < cfg->conns; g++) {
		unsigned group = b->cl ? g % ngroups : 0;
		unsigned t = b->cl ? (g / ngroups) % cfg->threads
				   : g % cfg->threads;
		const struct endpoint *ep =
			b->cl ? &b->cl->masters[group]
			      : &cfg->seeds[g % cfg->nseeds];
		struct worker *w = &b->workers[t];
		struct conn *c = &w->conns[w->nconns++];
		if (conn_init(c, w, ep, group, err, sizeof(err)))
			die("%s", err);
		c->server = b->cl ? group : g % (unsigned)cfg->nseeds;
		ev_io_init(&c->rio, on_read, c->fd, EV_READ);
		ev_io_init(&c->wio, on_write, c->fd, EV_WRITE);
		c->rio.data = c->wio.data = c;
		ev_io_start(w->loop, &c->rio);
	}
}

int main(int argc, char **argv)
{
	struct bench b;
	memset(&b, 0, sizeof(b));
	atomic_init(&b.abort, 0);
	struct config *cfg = &b.cfg;
	signal(SIGPIPE, SIG_IGN);
	parse_args(cfg, argc, argv);

	if (cfg->proto == PROTO_RINGKV) {
		if (cfg->mix[BOP_INCR])
			probe_op(cfg, BOP_INCR);
	}
	if (cfg->cluster) {
		b.cl = discover_cluster(cfg);
		b.ngroups = b.cl->nmasters;
		if (cfg->conns < b.cl->nmasters * cfg->threads)
			die("--cluster: %u connections cannot give each of %u "
			    "threads one per master (%zu masters)",
			    cfg->conns, cfg->threads, b.cl->nmasters);
	} else if (cfg->smart && cfg->proto == PROTO_RINGKV) {
		b.cl = discover_ring(cfg);
		b.ngroups = b.cl->nmasters;
		if (cfg->conns < b.cl->nmasters * cfg->threads)
			die("--smart on: %u connections cannot give each of %u "
			    "threads one per node (%zu live nodes); use -c %zu "
			    "or more",
			    cfg->conns, cfg->threads, b.cl->nmasters,
			    b.cl->nmasters * cfg->threads);
	} else {
		b.ngroups = 1;
	}
	if (cfg->dist == DIST_ZIPF && zipf_init(&b.zipf, cfg->keys, cfg->theta))
		die("--dist: bad zipfian parameters");
	b.value = malloc(cfg->value_size ? cfg->value_size : 1);
	if (!b.value)
		die("out of memory");
	/* Printable and varied, like a real payload; not compressible to
	 * nothing, so no server gets an easy ride. */
	struct rk_rng vr;
	rk_rng_seed(&vr, cfg->seed ^ 0x5eed);
	for (uint32_t i = 0; i < cfg->value_size; i++)
		b.value[i] = (uint8_t)('a' + rk_rng_below(&vr, 26));

	raise_fd_limit(cfg->conns + 64);
	setup_workers(&b);
	if (pthread_barrier_init(&b.barrier, NULL, cfg->threads + 1))
		die("pthread_barrier_init failed");
	if (cfg->warmup)
		note(cfg, "warm-up: putting %" PRIu64 " keys ...", cfg->keys);
	for (unsigned t = 0; t < cfg->threads; t++)
		if (pthread_create(&b.workers[t].thread, NULL, worker_main,
				   &b.workers[t]))
			die("pthread_create failed");
	pthread_barrier_wait(&b.barrier);
	double cpu0 = cpu_seconds();
	if (!atomic_load(&b.abort) && !cfg->warmup_only)
		note(cfg, "measuring ...");
	for (unsigned t = 0; t < cfg->threads; t++)
		pthread_join(b.workers[t].thread, NULL);
	double cpu1 = cpu_seconds();

	int exit_code = 0;
	for (unsigned t = 0; t < cfg->threads; t++) {
		if (b.workers[t].failed) {
			fprintf(stderr, "%s: %s\n", prog, b.workers[t].fatal);
			exit_code = 2;
		}
	}
	if (!exit_code && atomic_load(&b.abort)) {
		fprintf(stderr, "%s: aborted\n", prog);
		exit_code = 2;
	}

	if (!exit_code) {
		struct summary s;
		memset(&s, 0, sizeof(s));
		if (stats_init(&s.st))
			die("out of memory");
		uint64_t t0 = UINT64_MAX, t1 = 0, w0 = UINT64_MAX, w1 = 0;
		size_t nservers = b.cl ? b.cl->nmasters : cfg->nseeds;
		s.per_node = calloc(nservers, sizeof(*s.per_node));
		if (!s.per_node)
			die("out of memory");
		for (unsigned t = 0; t < cfg->threads; t++) {
			struct worker *w = &b.workers[t];
			for (size_t i = 0; i < nservers; i++)
				s.per_node[i] += w->per_server[i];
			stats_merge(&s.st, &w->st);
			s.requests += w->done;
			s.warm_keys += w->warm_done;
			if (w->t_start && w->t_start < t0)
				t0 = w->t_start;
			if (w->t_end > t1)
				t1 = w->t_end;
			if (w->warm_start && w->warm_start < w0)
				w0 = w->warm_start;
			if (w->warm_end > w1)
				w1 = w->warm_end;
		}
		s.seconds = t1 > t0 ? (double)(t1 - t0) / 1e9 : 0;
		s.warm_seconds = w1 > w0 ? (double)(w1 - w0) / 1e9 : 0;
		s.client_cpu_s = cpu1 - cpu0;
		for (int i = 0; i < BOP_COUNT; i++)
			s.errors += s.st.op[i].errors;
		if (cfg->json)
			print_json(&b, &s);
		else
			print_table(&b, &s);
		if (s.errors)
			exit_code = 1;
		stats_destroy(&s.st);
		free(s.per_node);
	}

	for (unsigned t = 0; t < cfg->threads; t++) {
		struct worker *w = &b.workers[t];
		for (unsigned i = 0; i < w->nconns; i++)
			conn_destroy(&w->conns[i]);
		free(w->conns);
		free(w->cursor);
		free(w->per_server);
		stats_destroy(&w->st);
		ev_loop_destroy(w->loop);
	}
	free(b.workers);
	pthread_barrier_destroy(&b.barrier);
	free(b.value);
	free(cfg->seeds);
	if (b.cl) {
		ring_free(b.cl->ring);
		free(b.cl->group);
		free(b.cl->ids);
		free(b.cl->masters);
		free(b.cl);
	}
	return exit_code;
}
