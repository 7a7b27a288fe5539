/* ringkv.c: libringkv.
 *
 * Smart routing.  Every node can coordinate any request, so a client that
 * talks to one node works; it just pays an extra hop for each key that
 * node does not hold, and loses everything when that node goes.  Like the
 * token-aware policies of Cassandra's drivers, a smart client asks a seed
 * for the ring (RingInfo: members, tokens, replication factor, each
 * member's address and gossip state), builds the same ring with ring/ and
 * sends each request to the first of its key's replicas that gossip calls
 * alive, which then coordinates with a local copy.  Where we differ from
 * those drivers: no per-node request queues or load balancing across the
 * replicas, since one blocking client keeps a request or one batch in
 * flight; and no push of ring changes (the protocol has none), so the
 * client polls: at most every REFRESH_MS while requests flow, and at once
 * (rate-limited) after a connection failure or an UNAVAILABLE answer.  The
 * ring is rebuilt only when its checksum changes; states and addresses
 * are taken from every answer.
 *
 * Failure.  A node that refuses, drops or times out a connection is marked
 * down here for DOWN_MS, so the next requests skip it without waiting;
 * requests caught by the failure go to the next replica (then to any node
 * that is up, since any node coordinates) when that is safe: always when
 * none of their bytes left this process or a draining node refused them
 * (SHUTTING_DOWN), and for reads also when the connection broke before
 * the answer came.  Writes that may have reached a node are never
 * repeated (DESIGN: the caller learns "may or may not have applied"), and
 * neither is a node's own TIMEOUT answer, which says the cluster is slow:
 * repeating it would double the load where it hurts.
 *
 * Connections.  One per node address, opened lazily and kept; an exchange
 * pipelines calls over any number of them at once, polling them together,
 * so a batch split over three nodes costs the time of the slowest, not the
 * sum.  Request ids are unique per client, so an answer maps straight back
 * to its call (and must come from the connection the call went out on).
 *
 * Counters.  An add carries an op id (common/crdt.h: issue time, 64
 * random bits) that makes it idempotent, so unlike other writes it may be
 * sent again whenever its outcome is unknown: rkv_counter_add does so
 * itself, with the same op id, a few times.  A smart client sends an add
 * straight to the replica that owns its op id (crdt_owner, the rule every
 * node applies), which saves the coordinator's forwarding hop.
 */
#include "ringkv.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"
#include "buf.h"
#include "crdt.h"
#include "err.h"
#include "frame.h"
#include "hash.h"
#include "ring.h"
#include "wire.h"

/* A response frame larger than this is a broken node, not a big value. */
#define CLIENT_MAX_FRAME (1u << 30)
#define READ_CHUNK (64u * 1024u)
/* Encoded requests waiting in one connection's output at most: bounded
 * memory for huge batches, and reading never waits on writing. */
#define OUT_HIGH_WATER (1u << 20)
/* How stale the ring may get while requests flow: a ring change (a node
 * joins or leaves) reaches the client within this.  Requests sent with an
 * old ring still work, the receiving node coordinates them. */
#define REFRESH_MS 5000
/* After a failure the ring is fetched again at once, but not more often
 * than this: with a node down every request at ALL answers UNAVAILABLE,
 * and each must not cost a RingInfo round trip. */
#define FORCED_REFRESH_MIN_MS 500
/* When no node answered a refresh, try again after this. */
#define FAILED_REFRESH_MS 1000
/* A node whose connection failed is skipped this long, doubling with each
 * failure in a row up to DOWN_MAX_MS (gossip takes about five seconds to
 * call it dead; this covers the gap without paying a connect timeout per
 * request on a host that vanished).  Gossip saying it is alive again, or
 * an answer from it, clears the mark. */
#define DOWN_MS 2000
#define DOWN_MAX_MS 16000
/* Sends of one request at most: the first choice, the next replica, then
 * any node. */
#define MAX_ROUNDS 4

/* One TCP connection to one node address, kept for the client's life. */
struct link {
	char addr[300];
	int fd;              /* -1 when closed */
	struct rk_buf in, out;
	int64_t down_until;  /* mono ms: not a routing target before then */
	unsigned fails;      /* connection failures in a row */
	/* State of the exchange in progress. */
	int active;
	size_t *q;           /* indices of the calls it carries */
	size_t nq, capq;
	size_t qnext;        /* q[0, qnext) are encoded */
	size_t nanswered;
	uint64_t enc, sent;  /* bytes encoded, bytes handed to send() */
	int64_t deadline;
};

/* A ring member as the last RingInfo described it. */
struct member {
	uint64_t id;
	char addr[300];      /* client address; "" when it has none */
	char state[16];      /* gossip: alive, suspect, dead, left */
	struct link *link;   /* its connection, found or made when first used */
};

struct rkv_client {
	char **seeds;        /* owned strings */
	size_t nseeds;
	size_t next_seed;    /* where the next connection attempt starts */
	struct link **links; /* owned; every address ever talked to */
	size_t nlinks;
	struct link *home;   /* the seed connection: unkeyed calls, smart off */
	struct link *last;   /* where the last request went */
	rkv_options opts;
	uint64_t next_id;
	char err[256];
	/* Smart routing (smart is cleared for good when the nodes cannot
	 * describe their ring). */
	int smart;
	struct ring *ring;   /* NULL: route everything through home */
	uint64_t ring_sum;
	uint32_t rf;
	struct member *members; /* ascending id */
	size_t nmembers;
	int64_t next_refresh, last_refresh;
	int refresh_now;
	uint64_t last_node;
	/* Scratch for exchanges. */
	struct link **act;
	struct pollfd *pfd;
	size_t cap_act;
};

/* One request of an exchange, and where its answer goes. */
struct call {
	struct rk_request req;
	struct link *to;   /* where it goes this round; NULL: nowhere */
	uint64_t node;     /* the ring member it was routed to, or 0 */
	uint64_t enc_off;  /* where its frame starts in to's output */
	int delivered;     /* some of its bytes may have reached to */
	int status;
	int answered;
	rkv_value *value;  /* GET result, owned here until handed out */
	int exists;
	int applied;       /* CAS result */
	rkv_timestamp ts;
	struct rkv_cluster_info *ci; /* CLUSTER_INFO result */
	struct rkv_ring_info *ri;    /* RING_INFO result */
	struct rkv_replies *rep;     /* GET all_replies result */
	struct rkv_node_stats *ns;   /* NODE_STATS result */
	uint64_t node_id;
	int64_t counter;		  /* COUNTER_*: the value */
	int duplicate;			  /* COUNTER_ADD */
	uint64_t owner;			  /* COUNTER_ADD */
	struct rkv_counter_replies *crep; /* COUNTER_GET all_replies */
};

struct rkv_batch {
	struct call *calls;
	size_t n, cap;
	struct rk_buf data; /* keys and values, referenced by offset */
	size_t *koff, *voff; /* offsets into data, per call */
	rkv_consistency cl;
};

static int set_err(rkv_client *c, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int set_err(rkv_client *c, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->err, sizeof(c->err), fmt, ap);
	va_end(ap);
	return code;
}

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void rkv_options_init(rkv_options *o)
{
	o->connect_timeout_ms = 2000;
	o->request_timeout_ms = 5000;
	o->read_consistency = RKV_DEFAULT;
	o->write_consistency = RKV_DEFAULT;
	o->smart = 1;
}

const char *rkv_strerror(int code)
{
	return rk_strerror(code);
}

const char *rkv_last_error(const rkv_client *c)
{
	return c->err;
}

const char *rkv_connected_address(const rkv_client *c)
{
	if (c->last && c->last->fd >= 0)
		return c->last->addr;
	return c->home && c->home->fd >= 0 ? c->home->addr : NULL;
}

uint64_t rkv_last_node(const rkv_client *c)
{
	return c->last_node;
}

/* ------------------------------------------------------------------ */
/* connections                                                         */

static void link_close(struct link *l)
{
	if (l->fd >= 0)
		close(l->fd);
	l->fd = -1;
	rk_buf_clear(&l->in);
	rk_buf_clear(&l->out);
}

static void link_free(struct link *l)
{
	link_close(l);
	rk_buf_destroy(&l->in);
	rk_buf_destroy(&l->out);
	free(l->q);
	free(l);
}

/* The connection for addr, made (closed) when new.  NULL when out of
 * memory or addr does not fit. */
static struct link *link_get(rkv_client *c, const char *addr)
{
	for (size_t i = 0; i < c->nlinks; i++)
		if (strcmp(c->links[i]->addr, addr) == 0)
			return c->links[i];
	if (strlen(addr) >= sizeof(c->links[0]->addr))
		return NULL;
	struct link **nl = realloc(c->links, (c->nlinks + 1) * sizeof(*nl));
	if (!nl)
		return NULL;
	c->links = nl;
	struct link *l = calloc(1, sizeof(*l));
	if (!l)
		return NULL;
	snprintf(l->addr, sizeof(l->addr), "%s", addr);
	l->fd = -1;
	rk_buf_init(&l->in);
	rk_buf_init(&l->out);
	c->links[c->nlinks++] = l;
	return l;
}

/* Connects to one address within timeout.  Returns the fd or -1. */
static int dial(const char *seed, int timeout_ms, char *why, size_t whylen)
{
	char host[256];
	uint16_t port;
	if (rk_addr_split(seed, host, sizeof(host), &port, 0)) {
		snprintf(why, whylen, "'%s' is not HOST:PORT", seed);
		return -1;
	}
	char portstr[8];
	snprintf(portstr, sizeof(portstr), "%u", port);
	struct addrinfo hints = {.ai_family = AF_UNSPEC,
				 .ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_NUMERICSERV};
	struct addrinfo *ai, *p;
	int g = getaddrinfo(host, portstr, &hints, &ai);
	if (g) {
		snprintf(why, whylen, "%s: %s", host, gai_strerror(g));
		return -1;
	}
	int fd = -1;
	for (p = ai; p; p = p->ai_next) {
		fd = socket(p->ai_family,
			    SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0)
			continue;
		int rc = connect(fd, p->ai_addr, p->ai_addrlen);
		if (rc < 0 && errno == EINPROGRESS) {
			struct pollfd pfd = {.fd = fd, .events = POLLOUT};
			int pr = poll(&pfd, 1, timeout_ms);
			if (pr == 1) {
				int e = 0;
				socklen_t el = sizeof(e);
				getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el);
				rc = e ? -1 : 0;
				errno = e;
			} else {
				rc = -1;
				if (pr == 0)
					errno = ETIMEDOUT;
			}
		}
		if (rc == 0) {
			int one = 1;
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one,
				   sizeof(one));
			break;
		}
		snprintf(why, whylen, "%s: %s", seed, strerror(errno));
		close(fd);
		fd = -1;
	}
	freeaddrinfo(ai);
	return fd;
}

/* An idle kept connection has nothing to read: if it has, the node closed
 * it (idle timeout, restart) or said why before closing.  Checked before a
 * smart client reuses one, so a write is not lost to a stale socket. */
static int link_idle_ok(const struct link *l)
{
	struct pollfd pfd = {.fd = l->fd, .events = POLLIN};
	return poll(&pfd, 1, 0) == 0;
}

/* Makes sure the seed connection is up, trying every seed once (then, for
 * a smart client, every member that is up). */
static int ensure_home(rkv_client *c)
{
	if (c->home && c->home->fd >= 0)
		return RKV_OK;
	char why[256] = "no seed addresses";
	for (size_t i = 0; i < c->nseeds; i++) {
		size_t k = (c->next_seed + i) % c->nseeds;
		struct link *l = link_get(c, c->seeds[k]);
		if (!l)
			return set_err(c, RKV_ERR_NOMEM, "out of memory");
		int fd = l->fd >= 0 ? l->fd
				    : dial(c->seeds[k], c->opts.connect_timeout_ms,
					   why, sizeof(why));
		if (fd >= 0) {
			l->fd = fd;
			c->home = l;
			/* After a failure, start from the next seed. */
			c->next_seed = (k + 1) % c->nseeds;
			return RKV_OK;
		}
	}
	for (size_t i = 0; c->smart && i < c->nmembers; i++) {
		struct member *m = &c->members[i];
		if (!m->addr[0] || strcmp(m->state, "alive") != 0)
			continue;
		struct link *l = link_get(c, m->addr);
		if (!l)
			return set_err(c, RKV_ERR_NOMEM, "out of memory");
		if (l->fd < 0)
			l->fd = dial(m->addr, c->opts.connect_timeout_ms, why,
				     sizeof(why));
		if (l->fd >= 0) {
			c->home = l;
			return RKV_OK;
		}
	}
	return set_err(c, RKV_ERR_CONNECT, "cannot reach any seed (last: %s)",
		       why);
}

int rkv_connect(const char *seeds, const rkv_options *opts, rkv_client **out)
{
	int rc = rkv_client_new(seeds, opts, out);
	if (rc)
		return rc;
	rc = ensure_home(*out);
	if (rc) {
		rkv_close(*out);
		*out = NULL;
	}
	return rc;
}

int rkv_client_new(const char *seeds, const rkv_options *opts,
		   rkv_client **out)
{
	*out = NULL;
	if (!seeds || !*seeds)
		return RKV_ERR_INVALID;
	rkv_client *c = calloc(1, sizeof(*c));
	if (!c)
		return RKV_ERR_NOMEM;
	c->next_id = 1;
	if (opts)
		c->opts = *opts;
	else
		rkv_options_init(&c->opts);
	if (c->opts.connect_timeout_ms <= 0)
		c->opts.connect_timeout_ms = 2000;
	if (c->opts.request_timeout_ms <= 0)
		c->opts.request_timeout_ms = 5000;
	c->smart = c->opts.smart != 0;
	char *list = strdup(seeds);
	if (!list) {
		rkv_close(c);
		return RKV_ERR_NOMEM;
	}
	int rc = RKV_OK;
	char *save = NULL;
	for (char *s = strtok_r(list, ", ", &save); s;
	     s = strtok_r(NULL, ", ", &save)) {
		char host[256];
		uint16_t port;
		if (rk_addr_split(s, host, sizeof(host), &port, 0) ||
		    strlen(s) >= sizeof(((struct link *)0)->addr)) {
			rc = RKV_ERR_INVALID;
			break;
		}
		char **n = realloc(c->seeds, (c->nseeds + 1) * sizeof(*n));
		if (!n || !(n[c->nseeds] = strdup(s))) {
			if (n)
				c->seeds = n;
			rc = RKV_ERR_NOMEM;
			break;
		}
		c->seeds = n;
		c->nseeds++;
	}
	free(list);
	if (rc == RKV_OK && c->nseeds == 0)
		rc = RKV_ERR_INVALID;
	if (rc != RKV_OK) {
		rkv_close(c);
		return rc;
	}
	*out = c;
	return RKV_OK;
}

void rkv_close(rkv_client *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->nlinks; i++)
		link_free(c->links[i]);
	free(c->links);
	for (size_t i = 0; i < c->nseeds; i++)
		free(c->seeds[i]);
	free(c->seeds);
	ring_free(c->ring);
	free(c->members);
	free(c->act);
	free(c->pfd);
	free(c);
}

/* ------------------------------------------------------------------ */
/* answers                                                             */

static char *dup_str(const char *s)
{
	return strdup(s ? s : "");
}

static void cluster_info_free(struct rkv_cluster_info *ci)
{
	if (!ci)
		return;
	for (size_t i = 0; i < ci->n_nodes; i++) {
		free(ci->nodes[i].client_address);
		free(ci->nodes[i].peer_address);
		free(ci->nodes[i].state);
	}
	free(ci->nodes);
	free(ci->cluster_name);
	free(ci->version);
	free(ci);
}

void rkv_cluster_info_free(rkv_cluster_info *ci)
{
	cluster_info_free(ci);
}

void rkv_ring_info_free(rkv_ring_info *ri)
{
	if (!ri)
		return;
	for (size_t i = 0; i < ri->n_members; i++) {
		free(ri->members[i].tokens);
		free(ri->members[i].client_address);
		free(ri->members[i].state);
	}
	free(ri->members);
	free(ri);
}

void rkv_replies_free(rkv_replies *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n_replies; i++)
		free(r->replies[i].data);
	free(r->replies);
	rkv_value_free(r->newest);
	free(r);
}

/* Frees whatever results k holds. */
static void call_free_results(struct call *k)
{
	rkv_value_free(k->value);
	cluster_info_free(k->ci);
	rkv_ring_info_free(k->ri);
	rkv_replies_free(k->rep);
	rkv_counter_replies_free(k->crep);
	free(k->ns);
	k->crep = NULL;
	k->value = NULL;
	k->ci = NULL;
	k->ri = NULL;
	k->rep = NULL;
	k->ns = NULL;
}

/* Makes k as new, keeping its request. */
static void call_reset(struct call *k)
{
	call_free_results(k);
	struct rk_request req = k->req;
	memset(k, 0, sizeof(*k));
	k->req = req;
}

/* A copy of n bytes plus a NUL; NULL when out of memory. */
static uint8_t *dup_bytes(const uint8_t *p, size_t n)
{
	uint8_t *d = malloc(n + 1);
	if (!d)
		return NULL;
	if (n)
		memcpy(d, p, n);
	d[n] = 0;
	return d;
}

/* Copies a RingInfo answer; returns 0 or RKV_ERR_NOMEM. */
static int take_ring(struct call *k, const struct rk_response *r)
{
	rkv_ring_info *ri = calloc(1, sizeof(*ri));
	if (!ri)
		return RKV_ERR_NOMEM;
	k->ri = ri;
	ri->epoch = r->ring_epoch;
	ri->checksum = r->ring_checksum;
	ri->replication_factor = r->rf;
	ri->members = calloc(r->n_ring ? r->n_ring : 1, sizeof(*ri->members));
	if (!ri->members)
		return RKV_ERR_NOMEM;
	for (size_t i = 0; i < r->n_ring; i++) {
		rkv_ring_member *m = &ri->members[i];
		ri->n_members++;
		m->node_id = r->ring[i].node_id;
		m->weight = r->ring[i].weight;
		m->n_tokens = r->ring[i].n_tokens;
		m->tokens = malloc((m->n_tokens ? m->n_tokens : 1) *
				   sizeof(uint64_t));
		m->client_address = dup_str(r->ring[i].client_addr);
		m->state = dup_str(r->ring[i].state);
		if (!m->tokens || !m->client_address || !m->state)
			return RKV_ERR_NOMEM;
		if (m->n_tokens)
			memcpy(m->tokens, r->ring[i].tokens,
			       m->n_tokens * sizeof(uint64_t));
	}
	return 0;
}

/* Copies the per-replica answers of an all-replies read (any status: an
 * UNAVAILABLE read still says who answered what).  0 or RKV_ERR_NOMEM. */
static int take_replies(struct call *k, const struct rk_response *r)
{
	rkv_replies *rep = calloc(1, sizeof(*rep));
	if (!rep)
		return RKV_ERR_NOMEM;
	k->rep = rep;
	rep->status = r->status;
	if (r->has_ts)
		rep->newest_ts = (rkv_timestamp){r->ts.hlc, r->ts.node};
	if (r->status == RKV_OK) {
		rkv_value *v = malloc(sizeof(*v));
		if (!v)
			return RKV_ERR_NOMEM;
		rep->newest = v;
		v->ts = rep->newest_ts;
		v->len = r->value.n;
		if (!(v->data = dup_bytes(r->value.p, r->value.n)))
			return RKV_ERR_NOMEM;
	}
	rep->replies = calloc(r->n_replies ? r->n_replies : 1,
			      sizeof(*rep->replies));
	if (!rep->replies)
		return RKV_ERR_NOMEM;
	for (size_t i = 0; i < r->n_replies; i++) {
		const struct rk_replica_reply *x = &r->replies[i];
		rkv_reply *y = &rep->replies[i];
		rep->n_replies++;
		y->node_id = x->node_id;
		y->status = x->status;
		y->tombstone = x->tombstone;
		if (x->has_ts)
			y->ts = (rkv_timestamp){x->ts.hlc, x->ts.node};
		if (x->status == RKV_OK) {
			y->len = x->value.n;
			if (!(y->data = dup_bytes(x->value.p, x->value.n)))
				return RKV_ERR_NOMEM;
		}
	}
	return 0;
}

/* Copies what the caller keeps out of a decoded response. */
static int take_answer(struct call *k, const struct rk_response *r)
{
	k->answered = 1;
	k->status = r->status;
	if (r->has_ts) {
		k->ts.hlc = r->ts.hlc;
		k->ts.node_id = r->ts.node;
	}
	k->exists = r->exists;
	k->applied = r->applied;
	k->node_id = r->node_id;
	k->counter = r->counter;
	k->duplicate = r->duplicate;
	k->owner = r->owner;
	if (k->req.op == RK_OP_GET && k->req.all_replies && take_replies(k, r))
		goto nomem;
	if (k->req.op == RK_OP_COUNTER_GET && k->req.all_replies) {
		rkv_counter_replies *cr = calloc(1, sizeof(*cr));
		if (!cr)
			goto nomem;
		k->crep = cr;
		cr->status = r->status;
		cr->value = r->counter;
		cr->replies = calloc(r->n_replies ? r->n_replies : 1,
				     sizeof(*cr->replies));
		if (!cr->replies)
			goto nomem;
		for (size_t i = 0; i < r->n_replies; i++) {
			cr->replies[i].node_id = r->replies[i].node_id;
			cr->replies[i].status = r->replies[i].status;
			cr->replies[i].value = r->replies[i].counter;
		}
		cr->n_replies = r->n_replies;
	}
	if (r->status != RKV_OK)
		return 0;
	if (k->req.op == RK_OP_GET ||
	    (k->req.op == RK_OP_CAS && r->op == RK_OP_CAS && r->exists)) {
		rkv_value *v = malloc(sizeof(*v));
		uint8_t *d = dup_bytes(r->value.p, r->value.n);
		if (!v || !d) {
			free(v);
			free(d);
			goto nomem;
		}
		v->data = d;
		v->len = r->value.n;
		v->ts = k->ts;
		k->value = v;
	} else if (k->req.op == RK_OP_RING_INFO) {
		if (take_ring(k, r))
			goto nomem;
	} else if (k->req.op == RK_OP_NODE_STATS) {
		rkv_node_stats *ns = calloc(1, sizeof(*ns));
		if (!ns)
			goto nomem;
		k->ns = ns;
		ns->node_id = r->stats.node_id;
		ns->keys = r->stats.keys;
		ns->tombstones = r->stats.tombstones;
		ns->bytes = r->stats.bytes;
		ns->log_bytes = r->stats.log_bytes;
		ns->hints_pending = r->stats.hints_pending;
		ns->uptime_ms = r->stats.uptime_ms;
		snprintf(ns->ring_status, sizeof(ns->ring_status), "%s",
			 r->stats.ring_status ? r->stats.ring_status : "");
	} else if (k->req.op == RK_OP_CLUSTER_INFO) {
		struct rkv_cluster_info *ci = calloc(1, sizeof(*ci));
		if (!ci)
			goto nomem;
		k->ci = ci;
		ci->self_id = r->node_id;
		ci->cluster_name = dup_str(r->cluster_name);
		ci->version = dup_str(r->version);
		ci->nodes = calloc(r->n_nodes ? r->n_nodes : 1,
				   sizeof(*ci->nodes));
		if (!ci->cluster_name || !ci->version || !ci->nodes)
			goto nomem;
		for (size_t i = 0; i < r->n_nodes; i++) {
			rkv_node *n = &ci->nodes[i];
			ci->n_nodes++;
			n->node_id = r->nodes[i].node_id;
			n->incarnation = r->nodes[i].incarnation;
			n->weight = r->nodes[i].weight;
			n->n_tokens = r->nodes[i].n_tokens;
			n->client_address = dup_str(r->nodes[i].client_addr);
			n->peer_address = dup_str(r->nodes[i].peer_addr);
			n->state = dup_str(r->nodes[i].state);
			if (!n->client_address || !n->peer_address ||
			    !n->state)
				goto nomem;
		}
	}
	return 0;
nomem:
	call_free_results(k);
	k->status = RKV_ERR_NOMEM;
	return RKV_ERR_NOMEM;
}

/* ------------------------------------------------------------------ */
/* the exchange: send calls pipelined to their nodes, collect answers  */

/* Skips l's node for a while (longer after each failure in a row) and
 * asks for a ring refresh. */
static void mark_down(rkv_client *c, struct link *l)
{
	unsigned shift = l->fails < 3 ? l->fails : 3;
	int64_t ms = (int64_t)DOWN_MS << shift;
	l->down_until = mono_ms() + (ms < DOWN_MAX_MS ? ms : DOWN_MAX_MS);
	l->fails++;
	c->refresh_now = 1;
}

/* l broke (or could not be reached) with rc: its unanswered calls get rc,
 * and note whether any of their bytes left.  A smart client also skips
 * the node for a while and refreshes the ring soon. */
static int link_fail(rkv_client *c, struct link *l, struct call *calls,
		     int rc)
{
	for (size_t j = 0; j < l->nq; j++) {
		struct call *k = &calls[l->q[j]];
		if (k->answered)
			continue;
		k->status = rc;
		k->delivered = j < l->qnext && l->sent > k->enc_off;
	}
	link_close(l);
	l->active = 0;
	if (c->smart && rc != RKV_ERR_NOMEM)
		mark_down(c, l);
	return rc;
}

/* Reads what l has and matches answers to calls.  Returns 0, or the error
 * that breaks l (the caller fails it). */
static int link_read(rkv_client *c, struct link *l, struct call *calls,
		     size_t n, uint64_t base, int timeout_ms)
{
	if (rk_buf_reserve(&l->in, READ_CHUNK))
		return set_err(c, RKV_ERR_NOMEM, "out of memory reading");
	ssize_t r = read(l->fd, l->in.data + l->in.len, l->in.cap - l->in.len);
	if (r < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (r <= 0)
		return set_err(c, RKV_ERR_CLOSED, "%s closed the connection%s%s",
			       l->addr, r < 0 ? ": " : "",
			       r < 0 ? strerror(errno) : "");
	l->in.len += (size_t)r;
	l->deadline = mono_ms() + timeout_ms;
	for (;;) {
		struct rk_frame f;
		int fr = rk_frame_parse(rk_buf_rptr(&l->in),
					rk_buf_readable(&l->in),
					CLIENT_MAX_FRAME, &f);
		if (fr == 0)
			return 0;
		if (fr < 0)
			return set_err(c, RKV_ERR_PROTOCOL,
				       "%s sent an impossible frame length",
				       l->addr);
		struct rk_response resp;
		struct rk_wire_msg *owner;
		char why[160];
		if (rk_wire_decode_response(f.body, f.body_len, &resp, &owner,
					    why, sizeof(why)))
			return set_err(c, RKV_ERR_PROTOCOL, "%s: %s", l->addr,
				       why);
		if (resp.id == 0 && resp.status != RKV_OK) {
			/* A connection-level error, then a close. */
			int rc = set_err(c, resp.status, "%s: %s", l->addr,
					 resp.error ? resp.error
						    : rk_strerror(resp.status));
			rk_wire_msg_free(owner);
			return rc;
		}
		/* Ids are unique per client: the id names the call, which
		 * must have gone out on this connection in this exchange. */
		size_t i = resp.id >= base && resp.id - base < n
				   ? (size_t)(resp.id - base)
				   : n;
		if (i == n || calls[i].to != l || calls[i].req.id != resp.id ||
		    calls[i].answered) {
			rk_wire_msg_free(owner);
			return set_err(c, RKV_ERR_PROTOCOL,
				       "%s answered an unknown request id %llu",
				       l->addr, (unsigned long long)resp.id);
		}
		if (resp.status != RKV_OK && resp.error)
			set_err(c, resp.status, "%s", resp.error);
		if (resp.status == RKV_ERR_UNAVAILABLE)
			c->refresh_now = 1;
		take_answer(&calls[i], &resp);
		rk_wire_msg_free(owner);
		l->fails = 0;
		l->down_until = 0;
		rk_buf_consume(&l->in, f.frame_len);
		if (++l->nanswered == l->nq)
			l->active = 0;
	}
}

/* Encodes l's next calls while its output is small. */
static int link_encode(rkv_client *c, struct link *l, struct call *calls,
		       uint64_t base)
{
	while (l->qnext < l->nq && rk_buf_readable(&l->out) < OUT_HIGH_WATER) {
		size_t i = l->q[l->qnext];
		struct call *k = &calls[i];
		size_t before = rk_buf_readable(&l->out);
		k->req.id = base + i;
		k->enc_off = l->enc;
		if (rk_wire_encode_request(&l->out, &k->req))
			return set_err(c, RKV_ERR_NOMEM,
				       "out of memory encoding");
		l->enc += rk_buf_readable(&l->out) - before;
		l->qnext++;
	}
	return 0;
}

/* Sends every call that has a destination (calls[i].to) and is not
 * answered, pipelined over all their connections at once, and waits for
 * every answer; each connection fails on its own (timeout_ms without
 * progress, a close, garbage).  Returns RKV_OK when every call sent was
 * answered, else the first connection error (the unanswered calls of a
 * broken connection get its error, and `delivered` says whether any of
 * their bytes left). */
static int exchange(rkv_client *c, struct call *calls, size_t n,
		    int timeout_ms)
{
	uint64_t base = c->next_id;
	c->next_id += n;
	int first = RKV_OK;
	size_t nact = 0;
	for (size_t i = 0; i < n; i++) {
		struct call *k = &calls[i];
		if (!k->to || k->answered)
			continue;
		k->delivered = 0;
		struct link *l = k->to;
		if (!l->active) {
			if (nact == c->cap_act) {
				size_t cap = c->cap_act ? c->cap_act * 2 : 8;
				struct link **na =
					realloc(c->act, cap * sizeof(*na));
				if (na)
					c->act = na;
				struct pollfd *np =
					realloc(c->pfd, cap * sizeof(*np));
				if (np)
					c->pfd = np;
				if (!na || !np)
					goto nomem;
				c->cap_act = cap;
			}
			c->act[nact++] = l;
			l->active = 1;
			l->nq = l->qnext = l->nanswered = 0;
			l->enc = l->sent = 0;
		}
		if (l->nq == l->capq) {
			size_t cap = l->capq ? l->capq * 2 : 16;
			size_t *nq = realloc(l->q, cap * sizeof(*nq));
			if (!nq)
				goto nomem;
			l->q = nq;
			l->capq = cap;
		}
		l->q[l->nq++] = i;
	}
	int64_t now = mono_ms();
	for (size_t a = 0; a < nact; a++) {
		struct link *l = c->act[a];
		rk_buf_clear(&l->in);
		rk_buf_clear(&l->out);
		if (l->fd >= 0 && c->smart && !link_idle_ok(l))
			link_close(l);
		if (l->fd < 0) {
			char why[256];
			l->fd = dial(l->addr, c->opts.connect_timeout_ms, why,
				     sizeof(why));
			if (l->fd < 0) {
				int rc = link_fail(
					c, l, calls,
					set_err(c, RKV_ERR_CONNECT,
						"cannot connect to %s", why));
				if (!first)
					first = rc;
				continue;
			}
			now = mono_ms();
		}
		l->deadline = now + timeout_ms;
	}
	for (;;) {
		/* Drop finished links, top up the others' output. */
		size_t m = 0;
		for (size_t a = 0; a < nact; a++) {
			struct link *l = c->act[a];
			if (!l->active)
				continue;
			int rc = link_encode(c, l, calls, base);
			if (rc) {
				link_fail(c, l, calls, rc);
				if (!first)
					first = rc;
				continue;
			}
			c->act[m] = l;
			c->pfd[m] = (struct pollfd){.fd = l->fd, .events = POLLIN};
			if (rk_buf_readable(&l->out))
				c->pfd[m].events |= POLLOUT;
			m++;
		}
		nact = m;
		if (nact == 0)
			break;
		now = mono_ms();
		int64_t wait = INT32_MAX;
		for (size_t a = 0; a < nact; a++) {
			struct link *l = c->act[a];
			if (l->deadline - now < wait)
				wait = l->deadline - now;
		}
		if (wait <= 0) {
			for (size_t a = 0; a < nact; a++) {
				struct link *l = c->act[a];
				if (l->deadline > now)
					continue;
				int rc = link_fail(
					c, l, calls,
					set_err(c, RKV_ERR_TIMEOUT,
						"%s did not answer within %d ms",
						l->addr, timeout_ms));
				if (!first)
					first = rc;
			}
			continue;
		}
		int pr = poll(c->pfd, nact, (int)wait);
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr < 0) {
			int rc = set_err(c, RKV_ERR_IO, "poll: %s",
					 strerror(errno));
			for (size_t a = 0; a < nact; a++)
				link_fail(c, c->act[a], calls, rc);
			if (!first)
				first = rc;
			break;
		}
		if (pr == 0)
			continue; /* the deadline check above decides */
		for (size_t a = 0; a < nact; a++) {
			struct link *l = c->act[a];
			short ev = c->pfd[a].revents;
			if (ev & POLLOUT) {
				ssize_t w = send(l->fd, rk_buf_rptr(&l->out),
						 rk_buf_readable(&l->out),
						 MSG_NOSIGNAL);
				if (w > 0) {
					rk_buf_consume(&l->out, (size_t)w);
					l->sent += (uint64_t)w;
					l->deadline = mono_ms() + timeout_ms;
				} else if (w < 0 && errno != EAGAIN &&
					   errno != EINTR) {
					/* The node may have closed with an
					 * error frame: read it first. */
					ev |= POLLIN;
				}
			}
			if (!(ev & (POLLIN | POLLHUP | POLLERR)))
				continue;
			int rc = link_read(c, l, calls, n, base, timeout_ms);
			if (rc) {
				link_fail(c, l, calls, rc);
				if (!first)
					first = rc;
			}
		}
	}
	return first;
nomem:
	for (size_t a = 0; a < nact; a++)
		c->act[a]->active = 0;
	for (size_t i = 0; i < n; i++)
		if (calls[i].to && !calls[i].answered)
			calls[i].status = RKV_ERR_NOMEM;
	return set_err(c, RKV_ERR_NOMEM, "out of memory");
}

/* ------------------------------------------------------------------ */
/* the ring                                                            */

static int member_cmp(const void *a, const void *b)
{
	const struct member *x = a, *y = b;
	return x->id < y->id ? -1 : x->id > y->id;
}

static struct member *member_find(rkv_client *c, uint64_t id)
{
	size_t lo = 0, hi = c->nmembers;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (c->members[mid].id < id)
			lo = mid + 1;
		else if (c->members[mid].id > id)
			hi = mid;
		else
			return &c->members[mid];
	}
	return NULL;
}

/* Installs what a RingInfo answer says.  The ring is rebuilt only when its
 * checksum changed; members (addresses, states) are always replaced.
 * Returns 0, RKV_ERR_NOMEM, or RKV_ERR_PROTOCOL for a ring ring_new
 * refuses. */
static int ring_install(rkv_client *c, const rkv_ring_info *ri)
{
	struct member *ms = calloc(ri->n_members ? ri->n_members : 1,
				   sizeof(*ms));
	if (!ms)
		return set_err(c, RKV_ERR_NOMEM, "out of memory");
	size_t on_ring = 0;
	for (size_t i = 0; i < ri->n_members; i++) {
		const rkv_ring_member *x = &ri->members[i];
		struct member *m = &ms[i];
		m->id = x->node_id;
		if (strlen(x->client_address) < sizeof(m->addr))
			snprintf(m->addr, sizeof(m->addr), "%s",
				 x->client_address);
		snprintf(m->state, sizeof(m->state), "%s", x->state);
		on_ring += x->n_tokens > 0;
	}
	qsort(ms, ri->n_members, sizeof(*ms), member_cmp);
	/* Back in gossip's eyes (a restart): worth trying again at once. */
	for (size_t i = 0; i < ri->n_members; i++) {
		struct member *old = member_find(c, ms[i].id);
		if (!old || strcmp(old->state, "alive") == 0 ||
		    strcmp(ms[i].state, "alive") != 0 || !ms[i].addr[0])
			continue;
		struct link *l = link_get(c, ms[i].addr);
		if (l) {
			l->down_until = 0;
			l->fails = 0;
		}
	}
	uint32_t rf = ri->replication_factor ? ri->replication_factor : 3;
	if (rf > RING_RF_MAX)
		rf = RING_RF_MAX;
	if (on_ring == 0) {
		ring_free(c->ring);
		c->ring = NULL;
	} else if (!c->ring || c->ring_sum != ri->checksum || c->rf != rf) {
		struct ring_member *rm = calloc(on_ring, sizeof(*rm));
		if (!rm) {
			free(ms);
			return set_err(c, RKV_ERR_NOMEM, "out of memory");
		}
		size_t k = 0;
		for (size_t i = 0; i < ri->n_members; i++) {
			const rkv_ring_member *x = &ri->members[i];
			if (x->n_tokens == 0)
				continue;
			rm[k++] = (struct ring_member){
				.node_id = x->node_id,
				.weight = x->weight ? x->weight : 1,
				.tokens = x->tokens,
				.n_tokens = x->n_tokens};
		}
		struct ring_config cfg = {.epoch = ri->epoch, .rf_max = rf};
		struct ring *r = NULL;
		int rc = ring_new(rm, k, &cfg, &r);
		free(rm);
		if (rc) {
			free(ms);
			return set_err(c, rc == RK_ENOMEM ? RKV_ERR_NOMEM
							  : RKV_ERR_PROTOCOL,
				       "the ring the node described cannot be "
				       "built: %s",
				       rk_strerror(rc));
		}
		ring_free(c->ring);
		c->ring = r;
		c->ring_sum = ri->checksum;
	}
	c->rf = rf;
	free(c->members);
	c->members = ms;
	c->nmembers = ri->n_members;
	return 0;
}

/* Adds l to list[0, *n) unless it is there or NULL. */
static void add_unique(struct link **list, size_t *n, struct link *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < *n; i++)
		if (list[i] == l)
			return;
	list[(*n)++] = l;
}

/* Fetches the ring from the first node that answers: connections already
 * open to nodes that are up, then members gossip calls alive, then the
 * seeds in order.  Returns 0 (the ring is installed, or smart routing is
 * switched off because the nodes cannot describe their ring), or
 * RKV_ERR_CONNECT when no node could be reached; any other failure leaves
 * the old ring (or none) in place and returns 0. */
static int refresh(rkv_client *c)
{
	int64_t now = mono_ms();
	c->refresh_now = 0;
	c->last_refresh = now;
	c->next_refresh = now + REFRESH_MS;
	size_t cap = c->nlinks + c->nmembers + c->nseeds + 2, n = 0;
	struct link **cand = calloc(cap, sizeof(*cand));
	if (!cand)
		return set_err(c, RKV_ERR_NOMEM, "out of memory");
	if (c->last && c->last->fd >= 0 && c->last->down_until <= now)
		add_unique(cand, &n, c->last);
	if (c->home && c->home->fd >= 0 && c->home->down_until <= now)
		add_unique(cand, &n, c->home);
	for (size_t i = 0; i < c->nlinks; i++)
		if (c->links[i]->fd >= 0 && c->links[i]->down_until <= now)
			add_unique(cand, &n, c->links[i]);
	for (size_t i = 0; i < c->nmembers; i++)
		if (c->members[i].addr[0] &&
		    strcmp(c->members[i].state, "alive") == 0) {
			struct link *l = link_get(c, c->members[i].addr);
			if (l && l->down_until <= now)
				add_unique(cand, &n, l);
		}
	for (size_t i = 0; i < c->nseeds; i++)
		add_unique(cand, &n, link_get(c, c->seeds[i]));
	int reached = 0, rc = RKV_ERR_CONNECT;
	char err[sizeof(c->err)] = "";
	/* A refresh between retries must not wipe the failure's detail. */
	char saved[sizeof(c->err)];
	memcpy(saved, c->err, sizeof(saved));
	for (size_t i = 0; i < n; i++) {
		struct call k = {.req = {.op = RK_OP_RING_INFO}, .to = cand[i]};
		int xr = exchange(c, &k, 1, c->opts.request_timeout_ms);
		if (xr == RKV_OK)
			reached = 1;
		if (xr == RKV_OK && k.status == RKV_OK) {
			rc = ring_install(c, k.ri);
			call_free_results(&k);
			if (rc == RKV_OK)
				break;
			continue;
		}
		call_free_results(&k);
		if (xr == RKV_OK && (k.status == RKV_ERR_UNKNOWN_COMMAND ||
				     k.status == RKV_ERR_NOT_IMPLEMENTED)) {
			/* An older node: one connection, as before. */
			c->smart = 0;
			rc = RKV_OK;
			break;
		}
		snprintf(err, sizeof(err), "%s", c->err);
	}
	free(cand);
	if (rc == RKV_OK || reached) {
		memcpy(c->err, saved, sizeof(saved));
		if (rc)	/* reached, but no usable ring: route as we did */
			c->next_refresh = now + FAILED_REFRESH_MS;
		return RKV_OK;
	}
	c->next_refresh = now + FAILED_REFRESH_MS;
	return set_err(c, RKV_ERR_CONNECT, "cannot reach any node (last: %s)",
		       err);
}

/* Refreshes the ring when due.  Returns 1 to route by the ring, 0 to send
 * through the seed connection, or RKV_ERR_CONNECT when no node could be
 * reached and there is no ring to fall back on. */
static int smart_prepare(rkv_client *c)
{
	if (!c->smart)
		return 0;
	int64_t now = mono_ms();
	if (now >= c->next_refresh ||
	    (c->refresh_now && now - c->last_refresh >= FORCED_REFRESH_MIN_MS)) {
		int rc = refresh(c);
		if (rc && !c->ring)
			return rc;
	}
	return c->smart && c->ring ? 1 : 0;
}

/* How good a target m is: 0 alive, 1 suspect, 2 dead or left (gossip may
 * be wrong; still worth a try), 3 failed here lately, 9 unusable. */
static int rank_of(rkv_client *c, struct member *m, int64_t now)
{
	if (!m->addr[0])
		return 9;
	if (!m->link && !(m->link = link_get(c, m->addr)))
		return 9;
	if (m->link->down_until > now)
		return 3;
	if (strcmp(m->state, "alive") == 0)
		return 0;
	return strcmp(m->state, "suspect") == 0 ? 1 : 2;
}

/* Where a counter add goes: the replica that owns its op id when it is
 * up (alive or suspect), else where route() sends any request (that node
 * forwards it, or says the owner is down).  NULL from route() likewise. */
static struct link *route(rkv_client *c, const uint8_t *key, size_t klen,
			  int64_t now, uint64_t *node);

static struct link *route_call(rkv_client *c, const struct call *k, int64_t now,
			       uint64_t *node)
{
	if (k->req.op == RK_OP_COUNTER_ADD && k->req.op_id.n == CRDT_OPID_LEN) {
		uint64_t ids[RING_RF_MAX];
		size_t n = 0;
		ring_lookup(c->ring, rk_key_hash(k->req.key.p, k->req.key.n),
			    c->rf, ids, &n);
		struct crdt_opid op;
		memcpy(op.b, k->req.op_id.p, CRDT_OPID_LEN);
		struct member *m =
		    n ? member_find(c, ids[crdt_owner(&op, ids, n)]) : NULL;
		if (m && rank_of(c, m, now) < 2) {
			*node = m->id;
			return m->link;
		}
	}
	return route(c, k->req.key.p, k->req.key.n, now, node);
}

/* Where a request for key goes: the first replica that is up, in
 * preference order; when none is, any node that is (it coordinates);
 * failing that the best of the rest.  NULL when no member can be
 * reached at all.  *node gets the member's id. */
static struct link *route(rkv_client *c, const uint8_t *key, size_t klen,
			  int64_t now, uint64_t *node)
{
	uint64_t ids[RING_RF_MAX];
	size_t n = 0;
	ring_lookup(c->ring, rk_key_hash(key, klen), c->rf, ids, &n);
	struct member *best = NULL;
	int best_rank = 9;
	for (size_t i = 0; i < n && best_rank > 0; i++) {
		struct member *m = member_find(c, ids[i]);
		int r = m ? rank_of(c, m, now) : 9;
		if (r < best_rank) {
			best = m;
			best_rank = r;
		}
	}
	for (size_t i = 0; i < c->nmembers && best_rank >= 2; i++) {
		struct member *m = &c->members[i];
		int r = rank_of(c, m, now);
		if (r < best_rank) {
			best = m;
			best_rank = r;
		}
	}
	if (!best) {
		*node = 0;
		return NULL;
	}
	*node = best->id;
	return best->link;
}

/* ------------------------------------------------------------------ */
/* running calls                                                       */

static int is_write(const struct call *k)
{
	return k->req.op == RK_OP_PUT || k->req.op == RK_OP_DELETE ||
	       k->req.op == RK_OP_CAS ||
	       k->req.op == RK_OP_DECOMMISSION ||
	       k->req.op == RK_OP_REMOVE_NODE ||
	       k->req.op == RK_OP_COUNTER_DELETE;
}

/* The first unanswered call's status (RKV_OK when all were answered). */
static int first_failure(const struct call *calls, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!calls[i].answered)
			return calls[i].status ? calls[i].status
					       : RKV_ERR_INTERNAL;
	return RKV_OK;
}

/* Everything through the seed connection, as a client without a ring. */
static int run_home(rkv_client *c, struct call *calls, size_t n,
		    int timeout_ms)
{
	int rc = ensure_home(c);
	for (size_t i = 0; i < n; i++) {
		calls[i].to = rc ? NULL : c->home;
		calls[i].node = 0;
		if (rc)
			calls[i].status = rc;
	}
	if (rc)
		return rc;
	c->last = c->home;
	c->last_node = 0;
	return exchange(c, calls, n, timeout_ms);
}

/* Keyed calls, each to a replica of its key (smart_prepare said the ring
 * is known), with failover: a call whose connection failed goes to the
 * next choice when that is safe (nothing of it left, or a read whose
 * connection closed before the answer), up to MAX_ROUNDS sends.  Returns
 * RKV_OK when every call was answered, else the first failure. */
static int run_routed(rkv_client *c, struct call *calls, size_t n,
		      int timeout_ms)
{
	int64_t now = mono_ms();
	for (size_t i = 0; i < n; i++) {
		struct call *k = &calls[i];
		k->to = route_call(c, k, now, &k->node);
		if (!k->to)
			k->status = set_err(c, RKV_ERR_CONNECT,
					    "no node of the ring has an "
					    "address");
	}
	for (int round = 1;; round++) {
		int rc = exchange(c, calls, n, timeout_ms);
		/* A draining node refuses requests without applying them:
		 * those may go elsewhere, writes included. */
		int refused = 0;
		for (size_t i = 0; i < n; i++) {
			struct call *k = &calls[i];
			if (!k->answered || k->status != RKV_ERR_SHUTTING_DOWN ||
			    !k->to || round == MAX_ROUNDS)
				continue;
			if (k->to->down_until <= mono_ms())
				mark_down(c, k->to);
			call_free_results(k);
			k->answered = 0;
			k->delivered = 0;
			refused = 1;
		}
		if (rc == RKV_OK && !refused)
			break;
		if (round == MAX_ROUNDS)
			break;
		if (c->refresh_now && c->smart &&
		    mono_ms() - c->last_refresh >= FORCED_REFRESH_MIN_MS)
			refresh(c);
		if (!c->smart || !c->ring)
			break;
		int again = 0;
		now = mono_ms();
		for (size_t i = 0; i < n; i++) {
			struct call *k = &calls[i];
			if (k->answered || !k->to)
				continue;
			struct link *prev = k->to;
			k->to = NULL;
			int retry = !k->delivered ||
				    (!is_write(k) && k->status == RKV_ERR_CLOSED);
			if (!retry)
				continue;
			uint64_t node;
			struct link *l = route(c, k->req.key.p, k->req.key.n,
					       now, &node);
			if (!l || l == prev)
				continue;
			k->to = l;
			k->node = node;
			k->status = 0;
			again = 1;
		}
		if (!again)
			break;
	}
	c->last = calls[n - 1].to ? calls[n - 1].to : c->last;
	c->last_node = calls[n - 1].node;
	return first_failure(calls, n);
}

/* One call to the node at addr (NULL: the seed connection).  Idempotent
 * calls are sent once more when a kept connection turned out dead. */
static int run_at(rkv_client *c, const char *addr, struct call *k,
		  int idempotent, int timeout_ms)
{
	struct link *l = NULL;
	if (addr) {
		char host[256];
		uint16_t port;
		if (rk_addr_split(addr, host, sizeof(host), &port, 0))
			return set_err(c, RKV_ERR_INVALID,
				       "'%s' is not HOST:PORT", addr);
		if (!(l = link_get(c, addr)))
			return set_err(c, RKV_ERR_NOMEM, "out of memory");
	}
	for (int attempt = 0;; attempt++) {
		int was_connected;
		int rc;
		if (l) {
			was_connected = l->fd >= 0;
			k->to = l;
			k->node = 0;
			c->last = l;
			rc = exchange(c, k, 1, timeout_ms);
		} else {
			was_connected = c->home && c->home->fd >= 0;
			rc = run_home(c, k, 1, timeout_ms);
		}
		if (rc == RKV_ERR_CLOSED && idempotent && was_connected &&
		    attempt == 0) {
			call_reset(k);
			continue;
		}
		return rc;
	}
}

/* Finishes a single call: its status, with a detail when none was set. */
static int call_result(rkv_client *c, struct call *k, int rc)
{
	if (rc)
		return rc;
	if (k->status && !c->err[0])
		set_err(c, k->status, "%s", rk_strerror(k->status));
	return k->status;
}

static enum rk_consistency cl_for(const rkv_client *c,
				  const rkv_call_opts *o, int write)
{
	int cl = o && o->consistency != RKV_DEFAULT ? (int)o->consistency
		 : write ? (int)c->opts.write_consistency
			 : (int)c->opts.read_consistency;
	return (enum rk_consistency)cl;
}

static int timeout_for(const rkv_client *c, const rkv_call_opts *o)
{
	return o && o->timeout_ms > 0 ? o->timeout_ms
				      : c->opts.request_timeout_ms;
}

/* One request.  A keyed one goes to a replica of its key when the ring
 * is known (run_routed, with its failover).  Everything else goes through
 * the seed connection, where reads are retried once on a fresh connection
 * when the old one turns out dead and writes are not (they may have been
 * applied). */
static int call_one(rkv_client *c, struct call *k, int idempotent,
		    int timeout_ms)
{
	c->err[0] = 0;
	int s = k->req.key.n ? smart_prepare(c) : 0;
	int rc;
	if (s < 0)
		rc = s;
	else if (s == 1)
		rc = run_routed(c, k, 1, timeout_ms);
	else
		rc = run_at(c, NULL, k, idempotent, timeout_ms);
	return call_result(c, k, rc);
}

static int check_key(rkv_client *c, const void *key, size_t klen)
{
	if (!key || klen == 0)
		return set_err(c, RKV_ERR_EMPTY_KEY, "empty key");
	return RKV_OK;
}

int rkv_get_ex(rkv_client *c, const void *key, size_t klen,
	       const rkv_call_opts *opts, rkv_value **out)
{
	*out = NULL;
	int rc = check_key(c, key, klen);
	if (rc)
		return rc;
	struct call k = {.req = {.op = RK_OP_GET,
				 .key = {key, klen},
				 .consistency = cl_for(c, opts, 0)}};
	rc = call_one(c, &k, 1, timeout_for(c, opts));
	if (rc == RKV_OK)
		*out = k.value;
	else
		rkv_value_free(k.value);
	return rc;
}

int rkv_get(rkv_client *c, const void *key, size_t klen, rkv_value **out)
{
	return rkv_get_ex(c, key, klen, NULL, out);
}

static int write_op(rkv_client *c, enum rk_op op, const void *key,
		    size_t klen, const void *val, size_t vlen,
		    const rkv_call_opts *opts, rkv_timestamp *ts)
{
	int rc = check_key(c, key, klen);
	if (rc)
		return rc;
	struct call k = {.req = {.op = op,
				 .key = {key, klen},
				 .value = {val, vlen},
				 .consistency = cl_for(c, opts, 1)}};
	rc = call_one(c, &k, 0, timeout_for(c, opts));
	if (rc == RKV_OK && ts)
		*ts = k.ts;
	return rc;
}

int rkv_put_ex(rkv_client *c, const void *key, size_t klen, const void *val,
	       size_t vlen, const rkv_call_opts *opts, rkv_timestamp *ts)
{
	return write_op(c, RK_OP_PUT, key, klen, val, vlen, opts, ts);
}

int rkv_put(rkv_client *c, const void *key, size_t klen, const void *val,
	    size_t vlen, rkv_timestamp *ts)
{
	return rkv_put_ex(c, key, klen, val, vlen, NULL, ts);
}

int rkv_delete_ex(rkv_client *c, const void *key, size_t klen,
		  const rkv_call_opts *opts, rkv_timestamp *ts)
{
	return write_op(c, RK_OP_DELETE, key, klen, NULL, 0, opts, ts);
}

int rkv_delete(rkv_client *c, const void *key, size_t klen, rkv_timestamp *ts)
{
	return rkv_delete_ex(c, key, klen, NULL, ts);
}

int rkv_exists(rkv_client *c, const void *key, size_t klen, int *exists)
{
	*exists = 0;
	int rc = check_key(c, key, klen);
	if (rc)
		return rc;
	struct call k = {.req = {.op = RK_OP_EXISTS,
				 .key = {key, klen},
				 .consistency = cl_for(c, NULL, 0)}};
	rc = call_one(c, &k, 1, c->opts.request_timeout_ms);
	if (rc == RKV_OK)
		*exists = k.exists;
	return rc;
}

static int cas_op(rkv_client *c, enum rk_cas_kind kind, const void *key,
		  size_t klen, const void *expected, size_t elen,
		  const void *val, size_t vlen, const rkv_call_opts *opts,
		  int *applied, rkv_value **current)
{
	if (applied)
		*applied = 0;
	if (current)
		*current = NULL;
	int rc = check_key(c, key, klen);
	if (rc)
		return rc;
	struct call k = {.req = {.op = RK_OP_CAS,
				 .key = {key, klen},
				 .cas_kind = kind,
				 .expected = {expected, expected ? elen : 0},
				 .expect_absent = expected == NULL,
				 .value = {val, val ? vlen : 0},
				 .cas_delete = val == NULL}};
	rc = call_one(c, &k, 0, timeout_for(c, opts));
	if (rc == RKV_OK && applied)
		*applied = k.applied;
	if (rc == RKV_OK && current) {
		*current = k.value;
		k.value = NULL;
	}
	call_free_results(&k);
	return rc;
}

int rkv_cas_ex(rkv_client *c, const void *key, size_t klen,
	       const void *expected, size_t elen, const void *val, size_t vlen,
	       const rkv_call_opts *opts, int *applied, rkv_value **current)
{
	return cas_op(c, RK_CAS, key, klen, expected, elen, val, vlen, opts,
		      applied, current);
}

int rkv_cas(rkv_client *c, const void *key, size_t klen, const void *expected,
	    size_t elen, const void *val, size_t vlen, int *applied,
	    rkv_value **current)
{
	return cas_op(c, RK_CAS, key, klen, expected, elen, val, vlen, NULL,
		      applied, current);
}

int rkv_put_if_absent(rkv_client *c, const void *key, size_t klen,
		      const void *val, size_t vlen, int *applied,
		      rkv_value **current)
{
	if (!val)
		val = "";
	return cas_op(c, RK_CAS_PUT_IF_ABSENT, key, klen, NULL, 0, val, vlen,
		      NULL, applied, current);
}

int rkv_delete_if(rkv_client *c, const void *key, size_t klen,
		  const void *expected, size_t elen, int *applied,
		  rkv_value **current)
{
	if (!expected) {
		if (applied)
			*applied = 0;
		if (current)
			*current = NULL;
		return set_err(c, RKV_ERR_INVALID,
			       "delete_if needs an expected value");
	}
	return cas_op(c, RK_CAS_DELETE_IF, key, klen, expected, elen, NULL, 0,
		      NULL, applied, current);
}

int rkv_ping(rkv_client *c, uint64_t *node_id)
{
	struct call k = {.req = {.op = RK_OP_PING}};
	int rc = call_one(c, &k, 1, c->opts.request_timeout_ms);
	if (rc == RKV_OK && node_id)
		*node_id = k.node_id;
	return rc;
}

int rkv_ring_info_get(rkv_client *c, rkv_ring_info **out)
{
	*out = NULL;
	struct call k = {.req = {.op = RK_OP_RING_INFO}};
	int rc = call_one(c, &k, 1, c->opts.request_timeout_ms);
	if (rc == RKV_OK)
		*out = k.ri;
	else
		rkv_ring_info_free(k.ri);
	return rc;
}

int rkv_cluster_info_get(rkv_client *c, rkv_cluster_info **out)
{
	*out = NULL;
	struct call k = {.req = {.op = RK_OP_CLUSTER_INFO}};
	int rc = call_one(c, &k, 1, c->opts.request_timeout_ms);
	if (rc == RKV_OK)
		*out = k.ci;
	else
		cluster_info_free(k.ci);
	return rc;
}

int rkv_get_all(rkv_client *c, const void *key, size_t klen,
		const rkv_call_opts *opts, rkv_replies **out)
{
	*out = NULL;
	int rc = check_key(c, key, klen);
	if (rc)
		return rc;
	struct call k = {.req = {.op = RK_OP_GET,
				 .key = {key, klen},
				 .consistency = cl_for(c, opts, 0),
				 .all_replies = 1}};
	rc = call_one(c, &k, 1, timeout_for(c, opts));
	if (k.rep)
		k.rep->status = rc;
	*out = k.rep;
	k.rep = NULL;
	call_free_results(&k);
	return rc;
}

int rkv_get_local(rkv_client *c, const char *addr, const void *key,
		  size_t klen, rkv_value **out)
{
	*out = NULL;
	c->err[0] = 0;
	int rc = check_key(c, key, klen);
	if (rc)
		return rc;
	struct call k = {.req = {.op = RK_OP_GET,
				 .key = {key, klen},
				 .local = 1}};
	rc = call_result(c, &k,
			 run_at(c, addr, &k, 1, c->opts.request_timeout_ms));
	if (rc == RKV_OK) {
		*out = k.value;
		k.value = NULL;
	}
	call_free_results(&k);
	return rc;
}

int rkv_node_stats_get(rkv_client *c, const char *addr, rkv_node_stats *out)
{
	memset(out, 0, sizeof(*out));
	c->err[0] = 0;
	struct call k = {.req = {.op = RK_OP_NODE_STATS}};
	int rc = call_result(c, &k,
			     run_at(c, addr, &k, 1, c->opts.request_timeout_ms));
	if (rc == RKV_OK && k.ns)
		*out = *k.ns;
	else if (rc == RKV_OK)
		rc = set_err(c, RKV_ERR_PROTOCOL,
			     "the node answered NodeStats without figures");
	call_free_results(&k);
	return rc;
}

/* A ring change: one long call, never repeated. */
static int admin_call(rkv_client *c, const char *addr, struct call *k,
		      int timeout_ms)
{
	c->err[0] = 0;
	if (timeout_ms <= 0)
		timeout_ms = RKV_ADMIN_TIMEOUT_MS;
	int rc = call_result(c, k, run_at(c, addr, k, 0, timeout_ms));
	/* Members change: look at the ring again before the next request. */
	c->refresh_now = 1;
	c->last_refresh = 0;
	return rc;
}

int rkv_decommission(rkv_client *c, const char *addr, int timeout_ms)
{
	struct call k = {.req = {.op = RK_OP_DECOMMISSION}};
	int rc = admin_call(c, addr, &k, timeout_ms);
	if (rc == RKV_OK && k.to) {
		/* It stops once it has left: no use keeping the connection. */
		link_close(k.to);
		k.to->down_until = mono_ms() + DOWN_MS;
	}
	return rc;
}

int rkv_remove_node(rkv_client *c, uint64_t node_id, int timeout_ms)
{
	struct call k = {.req = {.op = RK_OP_REMOVE_NODE, .node_id = node_id}};
	return admin_call(c, NULL, &k, timeout_ms);
}

/* ------------------------------------------------------------------ */
/* counters                                                            */

void rkv_op_id_new(rkv_op_id *id)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	uint64_t ms =
	    (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
	uint64_t rnd = 0;
	if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd))
		rnd = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ull ^
		      (uint64_t)getpid();
	struct crdt_opid op;
	crdt_opid_make(&op, ms, rnd | 1); /* never all zero */
	memcpy(id->b, op.b, sizeof(id->b));
}

static int is_zero_id(const rkv_op_id *id)
{
	for (size_t i = 0; i < sizeof(id->b); i++)
		if (id->b[i])
			return 0;
	return 1;
}

int rkv_counter_add_ex(rkv_client *c, const void *key, size_t klen,
		       int64_t delta, const rkv_call_opts *opts,
		       rkv_op_id *op_id, rkv_counter_add_result *res)
{
	if (res)
		memset(res, 0, sizeof(*res));
	int rc = check_key(c, key, klen);
	if (rc)
		return rc;
	if (is_zero_id(op_id))
		rkv_op_id_new(op_id);
	struct call k = {.req = {.op = RK_OP_COUNTER_ADD,
				 .key = {key, klen},
				 .delta = delta,
				 .op_id = {op_id->b, sizeof(op_id->b)},
				 .consistency = cl_for(c, opts, 1)}};
	rc = call_one(c, &k, 1, timeout_for(c, opts));
	if (res && (rc == RKV_OK || k.answered)) {
		res->value = k.counter;
		res->duplicate = k.duplicate;
		res->owner = k.owner;
	}
	call_free_results(&k);
	return rc;
}

/* Outcomes an add may be sent again after, with the same op id. */
static int add_unknown(int rc)
{
	return rc == RKV_ERR_TIMEOUT || rc == RKV_ERR_CLOSED ||
	       rc == RKV_ERR_UNAVAILABLE || rc == RKV_ERR_SHUTTING_DOWN ||
	       rc == RKV_ERR_CONNECT;
}

int rkv_counter_add(rkv_client *c, const void *key, size_t klen, int64_t delta,
		    int64_t *value)
{
	rkv_op_id id;
	rkv_op_id_new(&id);
	rkv_counter_add_result res;
	int rc = RKV_OK;
	for (int attempt = 0; attempt < RKV_COUNTER_ATTEMPTS; attempt++) {
		if (attempt) {
			/* A moment for a failover or a restart. */
			struct timespec d = {0, 50000000L << (attempt - 1)};
			nanosleep(&d, NULL);
		}
		rc = rkv_counter_add_ex(c, key, klen, delta, NULL, &id, &res);
		if (!add_unknown(rc))
			break;
	}
	if (value)
		*value = rc == RKV_OK ? res.value : 0;
	return rc;
}

int rkv_counter_get_ex(rkv_client *c, const void *key, size_t klen,
		       const rkv_call_opts *opts, int64_t *value)
{
	*value = 0;
	int rc = check_key(c, key, klen);
	if (rc)
		return rc;
	struct call k = {.req = {.op = RK_OP_COUNTER_GET,
				 .key = {key, klen},
				 .consistency = cl_for(c, opts, 0)}};
	rc = call_one(c, &k, 1, timeout_for(c, opts));
	if (rc == RKV_OK)
		*value = k.counter;
	call_free_results(&k);
	return rc;
}

int rkv_counter_get(rkv_client *c, const void *key, size_t klen, int64_t *value)
{
	return rkv_counter_get_ex(c, key, klen, NULL, value);
}

int rkv_counter_get_all(rkv_client *c, const void *key, size_t klen,
			const rkv_call_opts *opts, rkv_counter_replies **out)
{
	*out = NULL;
	int rc = check_key(c, key, klen);
	if (rc)
		return rc;
	struct call k = {.req = {.op = RK_OP_COUNTER_GET,
				 .key = {key, klen},
				 .consistency = cl_for(c, opts, 0),
				 .all_replies = 1}};
	rc = call_one(c, &k, 1, timeout_for(c, opts));
	if (k.crep)
		k.crep->status = rc;
	*out = k.crep;
	k.crep = NULL;
	call_free_results(&k);
	return rc;
}

void rkv_counter_replies_free(rkv_counter_replies *r)
{
	if (!r)
		return;
	free(r->replies);
	free(r);
}

int rkv_counter_get_local(rkv_client *c, const char *addr, const void *key,
			  size_t klen, int64_t *value)
{
	*value = 0;
	c->err[0] = 0;
	int rc = check_key(c, key, klen);
	if (rc)
		return rc;
	struct call k = {
	    .req = {.op = RK_OP_COUNTER_GET, .key = {key, klen}, .local = 1}};
	rc = call_result(c, &k,
			 run_at(c, addr, &k, 1, c->opts.request_timeout_ms));
	if (rc == RKV_OK)
		*value = k.counter;
	call_free_results(&k);
	return rc;
}

int rkv_counter_delete_ex(rkv_client *c, const void *key, size_t klen,
			  const rkv_call_opts *opts)
{
	int rc = check_key(c, key, klen);
	if (rc)
		return rc;
	struct call k = {.req = {.op = RK_OP_COUNTER_DELETE,
				 .key = {key, klen},
				 .consistency = cl_for(c, opts, 1)}};
	rc = call_one(c, &k, 0, timeout_for(c, opts));
	call_free_results(&k);
	return rc;
}

int rkv_counter_delete(rkv_client *c, const void *key, size_t klen)
{
	return rkv_counter_delete_ex(c, key, klen, NULL);
}

void rkv_value_free(rkv_value *v)
{
	if (!v)
		return;
	free(v->data);
	free(v);
}

/* ------------------------------------------------------------------ */
/* batches                                                             */

rkv_batch *rkv_batch_new(void)
{
	rkv_batch *b = calloc(1, sizeof(*b));
	if (b)
		rk_buf_init(&b->data);
	return b;
}

static void batch_clear_results(rkv_batch *b)
{
	for (size_t i = 0; i < b->n; i++)
		call_free_results(&b->calls[i]);
}

void rkv_batch_reset(rkv_batch *b)
{
	batch_clear_results(b);
	b->n = 0;
	rk_buf_clear(&b->data);
}

void rkv_batch_free(rkv_batch *b)
{
	if (!b)
		return;
	batch_clear_results(b);
	free(b->calls);
	free(b->koff);
	free(b->voff);
	rk_buf_destroy(&b->data);
	free(b);
}

static int batch_add(rkv_batch *b, enum rk_op op, const void *key,
		     size_t klen, const void *val, size_t vlen)
{
	if (b->n == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 64;
		struct call *nc = realloc(b->calls, cap * sizeof(*nc));
		if (!nc)
			return RKV_ERR_NOMEM;
		b->calls = nc;
		size_t *nk = realloc(b->koff, cap * sizeof(*nk));
		if (!nk)
			return RKV_ERR_NOMEM;
		b->koff = nk;
		size_t *nv = realloc(b->voff, cap * sizeof(*nv));
		if (!nv)
			return RKV_ERR_NOMEM;
		b->voff = nv;
		b->cap = cap;
	}
	size_t ko = b->data.len;
	if (rk_buf_append(&b->data, key, klen) ||
	    (vlen && rk_buf_append(&b->data, val, vlen)))
		return RKV_ERR_NOMEM;
	struct call *k = &b->calls[b->n];
	memset(k, 0, sizeof(*k));
	k->req.op = op;
	k->req.key.n = klen;
	k->req.value.n = vlen;
	b->koff[b->n] = ko;
	b->voff[b->n] = ko + klen;
	return (int)b->n++;
}

int rkv_batch_get(rkv_batch *b, const void *key, size_t klen)
{
	return batch_add(b, RK_OP_GET, key, klen, NULL, 0);
}

int rkv_batch_put(rkv_batch *b, const void *key, size_t klen,
		  const void *val, size_t vlen)
{
	return batch_add(b, RK_OP_PUT, key, klen, val, vlen);
}

int rkv_batch_delete(rkv_batch *b, const void *key, size_t klen)
{
	return batch_add(b, RK_OP_DELETE, key, klen, NULL, 0);
}

int rkv_batch_exists(rkv_batch *b, const void *key, size_t klen)
{
	return batch_add(b, RK_OP_EXISTS, key, klen, NULL, 0);
}

void rkv_batch_set_consistency(rkv_batch *b, rkv_consistency cl)
{
	b->cl = cl;
}

size_t rkv_batch_count(const rkv_batch *b)
{
	return b->n;
}

int rkv_batch_exec(rkv_client *c, rkv_batch *b)
{
	batch_clear_results(b);
	c->err[0] = 0;
	for (size_t i = 0; i < b->n; i++) {
		struct call *k = &b->calls[i];
		int write = k->req.op == RK_OP_PUT || k->req.op == RK_OP_DELETE;
		/* The data buffer may have moved since the call was added. */
		k->req.key.p = b->data.data + b->koff[i];
		k->req.value.p = b->data.data + b->voff[i];
		int cl = b->cl != RKV_DEFAULT ? (int)b->cl
			 : write		 ? (int)c->opts.write_consistency
						 : (int)c->opts.read_consistency;
		k->req.consistency = (enum rk_consistency)cl;
		k->answered = 0;
		k->status = 0;
		k->to = NULL;
		k->node = 0;
		k->delivered = 0;
	}
	if (b->n == 0)
		return RKV_OK;
	int s = smart_prepare(c);
	if (s < 0) {
		for (size_t i = 0; i < b->n; i++)
			b->calls[i].status = s;
		return s;
	}
	int timeout = c->opts.request_timeout_ms;
	return s ? run_routed(c, b->calls, b->n, timeout)
		 : run_home(c, b->calls, b->n, timeout);
}

int rkv_batch_status(const rkv_batch *b, size_t i)
{
	return i < b->n ? b->calls[i].status : RKV_ERR_INVALID;
}

const rkv_value *rkv_batch_value(const rkv_batch *b, size_t i)
{
	return i < b->n ? b->calls[i].value : NULL;
}

int rkv_batch_exists_result(const rkv_batch *b, size_t i)
{
	return i < b->n ? b->calls[i].exists : 0;
}

rkv_timestamp rkv_batch_timestamp(const rkv_batch *b, size_t i)
{
	rkv_timestamp z = {0, 0};
	return i < b->n ? b->calls[i].ts : z;
}
