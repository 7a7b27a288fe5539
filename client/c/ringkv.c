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
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"
#include "buf.h"
#include "err.h"
#include "frame.h"
#include "wire.h"

/* A response frame larger than this is a broken node, not a big value. */
#define CLIENT_MAX_FRAME (1u << 30)
#define READ_CHUNK (64u * 1024u)

struct rkv_client {
	char **seeds;        /* owned strings */
	size_t nseeds;
	size_t next_seed;    /* where the next connection attempt starts */
	int fd;              /* -1 when not connected */
	char addr[300];      /* connected seed */
	rkv_options opts;
	uint64_t next_id;
	struct rk_buf in, out;
	char err[256];
};

/* One request of an exchange, and where its answer goes. */
struct call {
	struct rk_request req;
	int status;
	int answered;
	rkv_value *value;  /* GET result, owned here until handed out */
	int exists;
	rkv_timestamp ts;
	struct rkv_cluster_info *ci; /* CLUSTER_INFO result */
	struct rkv_ring_info *ri;    /* RING_INFO result */
	uint64_t node_id;
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
	return c->fd >= 0 ? c->addr : NULL;
}

/* ------------------------------------------------------------------ */
/* connection                                                          */

static void disconnect(rkv_client *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	rk_buf_clear(&c->in);
	rk_buf_clear(&c->out);
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

/* Makes sure a connection is up, trying every seed once. */
static int ensure_connected(rkv_client *c)
{
	if (c->fd >= 0)
		return RKV_OK;
	char why[256] = "no seed addresses";
	for (size_t i = 0; i < c->nseeds; i++) {
		size_t k = (c->next_seed + i) % c->nseeds;
		int fd = dial(c->seeds[k], c->opts.connect_timeout_ms, why,
			      sizeof(why));
		if (fd >= 0) {
			c->fd = fd;
			snprintf(c->addr, sizeof(c->addr), "%s", c->seeds[k]);
			/* After a failure, start from the next seed. */
			c->next_seed = (k + 1) % c->nseeds;
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
	rc = ensure_connected(*out);
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
	c->fd = -1;
	c->next_id = 1;
	rk_buf_init(&c->in);
	rk_buf_init(&c->out);
	if (opts)
		c->opts = *opts;
	else
		rkv_options_init(&c->opts);
	if (c->opts.connect_timeout_ms <= 0)
		c->opts.connect_timeout_ms = 2000;
	if (c->opts.request_timeout_ms <= 0)
		c->opts.request_timeout_ms = 5000;
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
		if (rk_addr_split(s, host, sizeof(host), &port, 0)) {
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
	disconnect(c);
	for (size_t i = 0; i < c->nseeds; i++)
		free(c->seeds[i]);
	free(c->seeds);
	rk_buf_destroy(&c->in);
	rk_buf_destroy(&c->out);
	free(c);
}

/* ------------------------------------------------------------------ */
/* the exchange: send n requests pipelined, collect n answers          */

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
	k->node_id = r->node_id;
	if (r->status != RKV_OK)
		return 0;
	if (k->req.op == RK_OP_GET) {
		rkv_value *v = malloc(sizeof(*v));
		uint8_t *d = malloc(r->value.n + 1);
		if (!v || !d) {
			free(v);
			free(d);
			k->status = RKV_ERR_NOMEM;
			return RKV_ERR_NOMEM;
		}
		if (r->value.n)
			memcpy(d, r->value.p, r->value.n);
		d[r->value.n] = 0;
		v->data = d;
		v->len = r->value.n;
		v->ts = k->ts;
		k->value = v;
	} else if (k->req.op == RK_OP_RING_INFO) {
		if (take_ring(k, r)) {
			rkv_ring_info_free(k->ri);
			k->ri = NULL;
			k->status = RKV_ERR_NOMEM;
			return RKV_ERR_NOMEM;
		}
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
	cluster_info_free(k->ci);
	k->ci = NULL;
	k->status = RKV_ERR_NOMEM;
	return RKV_ERR_NOMEM;
}

/* Sends calls[0..n) and waits for every answer.  Returns RKV_OK, or the
 * error that broke the connection (unanswered calls get it too). */
static int exchange(rkv_client *c, struct call *calls, size_t n,
		    int timeout_ms)
{
	int rc = ensure_connected(c);
	if (rc)
		goto fail;
	uint64_t base = c->next_id;
	c->next_id += n;
	size_t sent = 0, answered = 0;
	rk_buf_clear(&c->in);
	rk_buf_clear(&c->out);
	int64_t deadline = mono_ms() + timeout_ms;
	while (answered < n) {
		/* Encode more while the output is small: bounded memory for
		 * huge batches, and reading never waits on writing. */
		while (sent < n && rk_buf_readable(&c->out) < (1u << 20)) {
			calls[sent].req.id = base + sent;
			if (rk_wire_encode_request(&c->out, &calls[sent].req)) {
				rc = set_err(c, RKV_ERR_NOMEM,
					     "out of memory encoding");
				goto fail;
			}
			sent++;
		}
		struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
		if (rk_buf_readable(&c->out))
			pfd.events |= POLLOUT;
		int64_t left = deadline - mono_ms();
		if (left <= 0) {
			rc = set_err(c, RKV_ERR_TIMEOUT,
				     "%s did not answer within %d ms", c->addr,
				     timeout_ms);
			goto fail;
		}
		int pr = poll(&pfd, 1, (int)left);
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr < 0) {
			rc = set_err(c, RKV_ERR_IO, "poll: %s",
				     strerror(errno));
			goto fail;
		}
		if (pr == 0)
			continue; /* the deadline check above decides */
		if (pfd.revents & POLLOUT) {
			ssize_t w = send(c->fd, rk_buf_rptr(&c->out),
					 rk_buf_readable(&c->out),
					 MSG_NOSIGNAL);
			if (w > 0) {
				rk_buf_consume(&c->out, (size_t)w);
				deadline = mono_ms() + timeout_ms;
			} else if (w < 0 && errno != EAGAIN && errno != EINTR) {
				/* The node may have closed with an error
				 * frame: read it before giving up. */
				pfd.revents |= POLLIN;
			}
		}
		if (!(pfd.revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		if (rk_buf_reserve(&c->in, READ_CHUNK)) {
			rc = set_err(c, RKV_ERR_NOMEM, "out of memory reading");
			goto fail;
		}
		ssize_t r = read(c->fd, c->in.data + c->in.len,
				 c->in.cap - c->in.len);
		if (r < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (r <= 0) {
			rc = set_err(c, RKV_ERR_CLOSED,
				     "%s closed the connection%s%s", c->addr,
				     r < 0 ? ": " : "",
				     r < 0 ? strerror(errno) : "");
			goto fail;
		}
		c->in.len += (size_t)r;
		deadline = mono_ms() + timeout_ms;
		for (;;) {
			struct rk_frame f;
			int fr = rk_frame_parse(rk_buf_rptr(&c->in),
						rk_buf_readable(&c->in),
						CLIENT_MAX_FRAME, &f);
			if (fr == 0)
				break;
			if (fr < 0) {
				rc = set_err(c, RKV_ERR_PROTOCOL,
					     "%s sent an impossible frame "
					     "length",
					     c->addr);
				goto fail;
			}
			struct rk_response resp;
			struct rk_wire_msg *owner;
			char why[160];
			if (rk_wire_decode_response(f.body, f.body_len, &resp,
						    &owner, why, sizeof(why))) {
				rc = set_err(c, RKV_ERR_PROTOCOL, "%s: %s",
					     c->addr, why);
				goto fail;
			}
			if (resp.id == 0 && resp.status != RKV_OK) {
				/* A connection-level error, then a close. */
				rc = set_err(c, resp.status, "%s: %s", c->addr,
					     resp.error ? resp.error
							: rk_strerror(resp.status));
				rk_wire_msg_free(owner);
				goto fail;
			}
			uint64_t idx = resp.id - base;
			if (resp.id < base || idx >= sent ||
			    calls[idx].answered) {
				rk_wire_msg_free(owner);
				rc = set_err(c, RKV_ERR_PROTOCOL,
					     "%s answered an unknown request "
					     "id %llu",
					     c->addr,
					     (unsigned long long)resp.id);
				goto fail;
			}
			if (resp.status != RKV_OK && resp.error)
				set_err(c, resp.status, "%s", resp.error);
			take_answer(&calls[idx], &resp);
			rk_wire_msg_free(owner);
			rk_buf_consume(&c->in, f.frame_len);
			answered++;
		}
	}
	return RKV_OK;
fail:
	disconnect(c);
	for (size_t i = 0; i < n; i++)
		if (!calls[i].answered)
			calls[i].status = rc;
	return rc;
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

/* One request.  Reads are retried once on a fresh connection when the
 * old one turns out dead; writes are not (they may have been applied). */
static int call_one(rkv_client *c, struct call *k, int idempotent,
		    int timeout_ms)
{
	c->err[0] = 0;
	int was_connected = c->fd >= 0;
	int rc = exchange(c, k, 1, timeout_ms);
	if (rc == RKV_ERR_CLOSED && idempotent && was_connected) {
		memset(&k->status, 0, sizeof(*k) - offsetof(struct call, status));
		rc = exchange(c, k, 1, timeout_ms);
	}
	if (rc)
		return rc;
	if (k->status && !c->err[0])
		set_err(c, k->status, "%s", rk_strerror(k->status));
	return k->status;
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
	for (size_t i = 0; i < b->n; i++) {
		rkv_value_free(b->calls[i].value);
		cluster_info_free(b->calls[i].ci);
		rkv_ring_info_free(b->calls[i].ri);
		b->calls[i].value = NULL;
		b->calls[i].ci = NULL;
		b->calls[i].ri = NULL;
	}
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
	}
	if (b->n == 0)
		return RKV_OK;
	return exchange(c, b->calls, b->n, c->opts.request_timeout_ms);
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
