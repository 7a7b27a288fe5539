#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "addr.h"
#include "err.h"
#include "frame.h"
#include "peer_wire.h"
#include "wire.h"

/* Bytes asked of the kernel per read. */
#define READ_CHUNK (64u * 1024u)
/* Capacity an idle connection keeps in each buffer. */
#define IDLE_BUF_KEEP (16u * 1024u)
/* Connections accepted per readiness event, so accepting cannot starve
 * serving. */
#define ACCEPT_BATCH 64
/* After EMFILE/ENFILE, pause accepting this long (seconds). */
#define ACCEPT_BACKOFF 0.1
/* A draining node waits at most this long for fsyncs (seconds). */
#define DRAIN_GRACE 5.0

struct server;

/* One client connection. */
struct conn {
	struct server *srv;
	int fd;              /* -1 once closed */
	ev_io rio, wio;
	struct rk_buf in;    /* bytes read, not yet handled */
	struct rk_buf out;   /* replies not yet written */
	ev_tstamp frame_start; /* when the partial frame in `in` began; 0 none */
	ev_tstamp last_active;
	uint32_t bad_frames; /* in a row */
	uint32_t refs;       /* replies still to come (server_conn_ref) */
	int closing;         /* no more reads; close once out is written */
	int pending;         /* on srv->pending: frames left from last turn */
	int is_peer;         /* said Hello{PEER}: frames are PeerEnvelopes */
	int in_turn;         /* inside conn_process: it flushes at the end */
	uint64_t peer_id;    /* the node id it announced */
	struct conn *prev, *next;         /* srv->conns, or srv->dead */
	struct conn *pend_prev, *pend_next; /* srv->pending */
};

struct server {
	struct ev_loop *loop;
	const struct node_config *cfg;
	uint64_t self_id;
	struct cluster *cl;
	const struct rk_logger *lg;
	struct rk_wire_limits limits;
	char address[300];
	int lfd;
	ev_io accept_w;
	ev_timer accept_pause;
	ev_timer sweep;      /* deadlines of every connection */
	ev_timer drain_timer;
	ev_check check;      /* after polling: leftover frames */
	ev_idle idle;        /* keeps polling from blocking while work is left */
	struct conn *conns;
	struct conn *dead;    /* closed, freed by conn_reap */
	struct conn *pending;
	uint64_t nconns;
	uint64_t held;       /* server_conn_ref()s outstanding: replies due */
	int draining;
	void (*drained)(void *ctx); /* called once when draining finishes */
	void *drained_ctx;
	uint64_t counted_rejects;
	server_peer_fn peer_fn;
	void *peer_ctx;
	server_data_fn data_fn;
	void *data_ctx;
	uint64_t foreign_hellos; /* peers of another cluster, refused */
};

static void conn_close(struct conn *c, const char *why);
static void conn_flush(struct conn *c);
static void conn_process(struct conn *c);
static void drain_finished(struct server *srv);

static ev_tstamp now_of(struct server *srv)
{
	return ev_now(srv->loop);
}

/* ------------------------------------------------------------------ */
/* replies                                                             */

/* Queues one reply; closes a connection whose unread replies exceed the
 * cap (a client that pipelines and never reads). */
static void send_resp(struct conn *c, const struct rk_response *r)
{
	if (c->fd < 0)
		return;
	if (rk_wire_encode_response(&c->out, r) != 0) {
		conn_close(c, "out of memory for a reply");
		return;
	}
	if (rk_buf_readable(&c->out) > c->srv->cfg->max_output_bytes)
		conn_close(c, "output buffer over limits.max_output");
}

static void send_error(struct conn *c, uint64_t id, int code, const char *msg)
{
	struct rk_response r = {.id = id, .status = code, .error = msg};
	send_resp(c, &r);
}

/* A closed connection is freed by conn_reap once no reply is due. */
static void conn_unref(struct conn *c)
{
	c->refs--;
	c->srv->held--;
	if (c->srv->draining && c->srv->held == 0)
		drain_finished(c->srv);
}

/* ------------------------------------------------------------------ */
/* requests                                                            */

/* ClusterInfo (every member and its liveness) and RingInfo (every owner
 * and its tokens), from the cluster view. */
static void send_membership(struct conn *c, const struct rk_request *q,
			    struct rk_response *r)
{
	struct server *srv = c->srv;
	size_t n = cluster_members(srv->cl, NULL, 0);
	struct cluster_member *cm = calloc(n ? n : 1, sizeof(*cm));
	struct rk_node_info *ni = calloc(n ? n : 1, sizeof(*ni));
	struct rk_ring_member *rm = calloc(n ? n : 1, sizeof(*rm));
	if (!cm || !ni || !rm) {
		send_error(c, q->id, RK_ENOMEM, "out of memory");
		goto out;
	}
	cluster_members(srv->cl, cm, n);
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		const char *state = cm[i].removed
					    ? "removed"
					    : cluster_liveness_name(cm[i].liveness);
		ni[i] = (struct rk_node_info){
			.node_id = cm[i].id,
			.client_addr = cm[i].client_addr,
			.peer_addr = cm[i].client_addr,
			.state = state,
			.incarnation = cm[i].incarnation,
			.weight = cm[i].weight,
			.n_tokens = (uint32_t)cm[i].n_tokens,
		};
		if (cm[i].in_ring)
			rm[k++] = (struct rk_ring_member){
				.node_id = cm[i].id,
				.weight = cm[i].weight,
				.tokens = cm[i].tokens,
				.n_tokens = cm[i].n_tokens,
				.client_addr = cm[i].client_addr,
				.state = state,
			};
	}
	if (q->op == RK_OP_CLUSTER_INFO) {
		r->node_id = srv->self_id;
		r->cluster_name = srv->cfg->cluster_name;
		r->version = RINGKV_VERSION;
		r->nodes = ni;
		r->n_nodes = n;
	} else {
		const struct ring *ring = cluster_ring(srv->cl);
		r->ring = rm;
		r->n_ring = k;
		r->ring_epoch = ring_epoch(ring);
		r->ring_checksum = ring_checksum(ring);
		r->rf = cluster_rf(srv->cl);
	}
	send_resp(c, r);
out:
	free(cm);
	free(ni);
	free(rm);
}

static void handle_request(struct conn *c, const struct rk_request *q)
{
	struct server *srv = c->srv;
	struct rk_response r = {.id = q->id, .op = q->op};
	switch (q->op) {
	case RK_OP_PING:
		r.value = q->value;
		r.node_id = srv->self_id;
		break;
	case RK_OP_GET:
	case RK_OP_EXISTS:
	case RK_OP_PUT:
	case RK_OP_DELETE:
	case RK_OP_NODE_STATS:
	case RK_OP_DECOMMISSION:
	case RK_OP_REMOVE_NODE:
	case RK_OP_COUNTER_ADD:
	case RK_OP_COUNTER_GET:
	case RK_OP_COUNTER_DELETE:
	case RK_OP_CAS:
		if (srv->draining) {
			send_error(c, q->id, RK_ESHUTTING_DOWN,
				   "node is shutting down");
			return;
		}
		/* The data path answers with server_reply, now or later. */
		srv->data_fn(srv->data_ctx, c, q);
		return;
	case RK_OP_CLUSTER_INFO:
	case RK_OP_RING_INFO:
		send_membership(c, q, &r);
		return;
	case RK_OP_HELLO:
		if (q->role == RK_ROLE_PEER &&
		    strcmp(q->cluster_name, srv->cfg->cluster_name) != 0) {
			if (srv->foreign_hellos++ % 100 == 0)
				rk_warn(srv->lg, "server",
					"refused a peer of cluster '%s' (we are "
					"'%s'); %" PRIu64 " so far",
					q->cluster_name, srv->cfg->cluster_name,
					srv->foreign_hellos);
			send_error(c, q->id, RK_EBAD_REQUEST,
				   "cluster name mismatch");
			c->closing = 1;
			return;
		}
		r.node_id = srv->self_id;
		r.cluster_name = srv->cfg->cluster_name;
		r.protocol_version = RK_PROTOCOL_VERSION;
		if (q->role == RK_ROLE_PEER) {
			c->is_peer = 1;
			c->peer_id = q->node_id;
		}
		break;
	case RK_OP_NONE:
	default:
		r.status = RK_EUNKNOWN_COMMAND;
		r.op = RK_OP_NONE;
		break;
	}
	send_resp(c, &r);
}

/* Gossip packets are small; other peer payloads are bounded by the frame. */
static void handle_peer_frame(struct conn *c, const uint8_t *body,
			      uint32_t len)
{
	struct server *srv = c->srv;
	struct peer_msg m;
	struct peer_wire_msg *owner;
	char why[160];
	struct peer_wire_limits lim = {.max_payload = srv->cfg->max_frame,
				       .max_key = (uint32_t)srv->cfg->max_key,
				       .max_value = (uint32_t)srv->cfg->max_value};
	int rc = peer_wire_decode(body, len, &lim, &m, &owner, why,
				  sizeof(why));
	if ((rc || !srv->peer_fn) && m.id == 0) {
		/* A one-way message has nobody to tell. */
		peer_wire_msg_free(owner);
		if (rc && ++c->bad_frames >= srv->cfg->max_bad_frames)
			c->closing = 1;
		return;
	}
	if (rc || !srv->peer_fn) {
		struct peer_msg e = {.id = m.id, .op = PEER_OP_ERROR,
				     .status = rc ? rc : RK_EUNKNOWN_COMMAND,
				     .error = rc ? why : "no peer service"};
		server_peer_reply(c, &e);
		peer_wire_msg_free(owner);
		if (rc && ++c->bad_frames >= srv->cfg->max_bad_frames)
			c->closing = 1;
		return;
	}
	c->bad_frames = 0;
	srv->peer_fn(srv->peer_ctx, c, &m);
	peer_wire_msg_free(owner);
}

static void handle_frame(struct conn *c, const uint8_t *body, uint32_t len)
{
	if (c->is_peer) {
		handle_peer_frame(c, body, len);
		return;
	}
	struct rk_request q;
	struct rk_wire_msg *owner;
	char why[160];
	int rc = rk_wire_decode_request(body, len, &c->srv->limits, &q, &owner,
					why, sizeof(why));
	if (rc) {
		send_error(c, q.id, rc, why);
		if (++c->bad_frames >= c->srv->cfg->max_bad_frames) {
			rk_debug(c->srv->lg, "server",
				 "fd %d: %u bad frames in a row, closing",
				 c->fd, c->bad_frames);
			c->closing = 1;
		}
		return;
	}
	c->bad_frames = 0;
	handle_request(c, &q);
	rk_wire_msg_free(owner);
}

void server_peer_reply(struct conn *c, const struct peer_msg *m)
{
	if (c->fd < 0)
		return;
	if (peer_wire_encode(&c->out, m) != 0) {
		conn_close(c, "out of memory for a peer reply");
		return;
	}
	if (rk_buf_readable(&c->out) > c->srv->cfg->max_output_bytes)
		conn_close(c, "output buffer over limits.max_output");
	else if (!c->in_turn)
		conn_flush(c); /* a late reply: nothing else will flush it */
}

void server_conn_ref(struct conn *c)
{
	c->refs++;
	c->srv->held++;
}

void server_reply(struct conn *c, const struct rk_response *r)
{
	send_resp(c, r);
	if (c->fd >= 0 && !c->in_turn)
		conn_flush(c);
}

void server_set_data_handler(struct server *srv, server_data_fn fn,
			     void *ctx)
{
	srv->data_fn = fn;
	srv->data_ctx = ctx;
}

void server_conn_unref(struct conn *c)
{
	conn_unref(c);
}

uint64_t server_conn_peer_id(const struct conn *c)
{
	return c->peer_id;
}

void server_set_cluster(struct server *srv, struct cluster *cl)
{
	srv->cl = cl;
}

void server_set_peer_handler(struct server *srv, server_peer_fn fn,
			     void *ctx)
{
	srv->peer_fn = fn;
	srv->peer_ctx = ctx;
}

/* ------------------------------------------------------------------ */
/* connections                                                         */

static void pending_add(struct conn *c)
{
	struct server *srv = c->srv;
	if (c->pending)
		return;
	c->pending = 1;
	c->pend_prev = NULL;
	c->pend_next = srv->pending;
	if (srv->pending)
		srv->pending->pend_prev = c;
	srv->pending = c;
	ev_idle_start(srv->loop, &srv->idle);
}

static void pending_del(struct conn *c)
{
	if (!c->pending)
		return;
	if (c->pend_prev)
		c->pend_prev->pend_next = c->pend_next;
	else
		c->srv->pending = c->pend_next;
	if (c->pend_next)
		c->pend_next->pend_prev = c->pend_prev;
	c->pending = 0;
}

static void conn_close(struct conn *c, const char *why)
{
	struct server *srv = c->srv;
	if (c->fd < 0)
		return;
	rk_debug(srv->lg, "server", "fd %d closed: %s", c->fd, why);
	ev_io_stop(srv->loop, &c->rio);
	ev_io_stop(srv->loop, &c->wio);
	pending_del(c);
	close(c->fd);
	c->fd = -1;
	if (c->prev)
		c->prev->next = c->next;
	else
		srv->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	srv->nconns--;
	/* Callers up the stack may still look at c (its fd is -1 now), so it
	 * is freed later, in conn_reap. */
	c->prev = NULL;
	c->next = srv->dead;
	srv->dead = c;
}

/* Frees closed connections that no waiting ack refers to. */
static void conn_reap(struct server *srv, int all)
{
	struct conn **link = &srv->dead;
	while (*link) {
		struct conn *c = *link;
		if (c->refs && !all) {
			link = &c->next;
			continue;
		}
		*link = c->next;
		rk_buf_destroy(&c->in);
		rk_buf_destroy(&c->out);
		free(c);
	}
}

/* Writes what it can; arms the write watcher for the rest. */
static void conn_flush(struct conn *c)
{
	while (c->fd >= 0 && rk_buf_readable(&c->out)) {
		ssize_t n = send(c->fd, rk_buf_rptr(&c->out),
				 rk_buf_readable(&c->out), MSG_NOSIGNAL);
		if (n > 0) {
			rk_buf_consume(&c->out, (size_t)n);
			c->last_active = now_of(c->srv);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			ev_io_start(c->srv->loop, &c->wio);
			return;
		}
		conn_close(c, n < 0 ? strerror(errno) : "send returned 0");
		return;
	}
	if (c->fd < 0)
		return;
	ev_io_stop(c->srv->loop, &c->wio);
	rk_buf_shrink_idle(&c->out, IDLE_BUF_KEEP);
	if (c->closing)
		conn_close(c, "closing after reply");
}

/* Handles up to frames_per_turn whole frames from c->in. */
static void conn_process(struct conn *c)
{
	struct server *srv = c->srv;
	uint64_t budget = srv->cfg->frames_per_turn;
	int consumed = 0;
	c->in_turn = 1;
	while (c->fd >= 0 && !c->closing) {
		if (budget-- == 0) {
			c->in_turn = 0;
			pending_add(c);
			ev_io_stop(srv->loop, &c->rio);
			conn_flush(c);
			return;
		}
		struct rk_frame f;
		int rc = rk_frame_parse(rk_buf_rptr(&c->in),
					rk_buf_readable(&c->in),
					(uint32_t)srv->cfg->max_frame, &f);
		if (rc == 0)
			break;
		if (rc < 0) {
			char msg[96];
			snprintf(msg, sizeof(msg),
				 "frame of %" PRIu32 " bytes exceeds "
				 "limits.max_frame (%" PRIu64 ")",
				 rk_get_be32(rk_buf_rptr(&c->in)),
				 srv->cfg->max_frame);
			send_error(c, 0, RK_EFRAME_TOO_LARGE, msg);
			c->closing = 1;
			rk_buf_clear(&c->in);
			break;
		}
		handle_frame(c, f.body, f.body_len);
		rk_buf_consume(&c->in, f.frame_len);
		consumed = 1;
	}
	c->in_turn = 0;
	if (c->fd < 0)
		return;
	pending_del(c);
	if (rk_buf_readable(&c->in) == 0)
		c->frame_start = 0;
	else if (consumed || c->frame_start == 0)
		c->frame_start = now_of(srv);
	rk_buf_shrink_idle(&c->in, IDLE_BUF_KEEP);
	if (c->closing)
		ev_io_stop(srv->loop, &c->rio);
	else
		ev_io_start(srv->loop, &c->rio);
	conn_flush(c);
}

static void on_read(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop;
	(void)revents;
	struct conn *c = w->data;
	if (rk_buf_reserve(&c->in, READ_CHUNK) != 0) {
		conn_close(c, "out of memory for input");
		return;
	}
	ssize_t n = read(c->fd, c->in.data + c->in.len, c->in.cap - c->in.len);
	if (n > 0) {
		c->in.len += (size_t)n;
		c->last_active = now_of(c->srv);
		conn_process(c);
		return;
	}
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return;
	conn_close(c, n == 0 ? "peer closed" : strerror(errno));
}

static void on_write(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop;
	(void)revents;
	conn_flush(w->data);
}

/* Best effort: one small frame written straight to a fresh socket. */
static void reject(int fd, int code, const char *msg)
{
	struct rk_buf b;
	rk_buf_init(&b);
	struct rk_response r = {.status = code, .error = msg};
	if (rk_wire_encode_response(&b, &r) == 0)
		(void)!send(fd, b.data, b.len, MSG_NOSIGNAL | MSG_DONTWAIT);
	rk_buf_destroy(&b);
	close(fd);
}

static void on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)revents;
	struct server *srv = w->data;
	for (int i = 0; i < ACCEPT_BATCH; i++) {
		int fd = accept4(srv->lfd, NULL, NULL,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE ||
			    errno == ENOBUFS || errno == ENOMEM) {
				rk_warn(srv->lg, "server",
					"accept: %s; pausing accepts",
					strerror(errno));
				ev_io_stop(loop, &srv->accept_w);
				ev_timer_start(loop, &srv->accept_pause);
			}
			return; /* EAGAIN, ECONNABORTED, EINTR: next event */
		}
		if (srv->nconns >= srv->cfg->max_clients) {
			if (srv->counted_rejects++ % 1000 == 0)
				rk_warn(srv->lg, "server",
					"limits.max_clients (%" PRIu64
					") reached; refusing connections",
					srv->cfg->max_clients);
			reject(fd, RK_EMAX_CLIENTS,
			       "too many clients (limits.max_clients)");
			continue;
		}
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		struct conn *c = calloc(1, sizeof(*c));
		if (!c) {
			close(fd);
			continue;
		}
		c->srv = srv;
		c->fd = fd;
		c->last_active = now_of(srv);
		rk_buf_init(&c->in);
		rk_buf_init(&c->out);
		ev_io_init(&c->rio, on_read, fd, EV_READ);
		ev_io_init(&c->wio, on_write, fd, EV_WRITE);
		c->rio.data = c->wio.data = c;
		c->next = srv->conns;
		if (srv->conns)
			srv->conns->prev = c;
		srv->conns = c;
		srv->nconns++;
		ev_io_start(loop, &c->rio);
	}
}

static void on_accept_pause(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)revents;
	struct server *srv = w->data;
	ev_io_start(loop, &srv->accept_w);
}

/* Closes connections past their frame deadline or idle timeout. */
static void on_sweep(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	struct server *srv = w->data;
	ev_tstamp now = now_of(srv);
	double frame_to = (double)srv->cfg->frame_timeout_ms / 1000.0;
	double idle_to = (double)srv->cfg->idle_timeout_ms / 1000.0;
	struct conn *c = srv->conns;
	while (c) {
		struct conn *next = c->next;
		if (c->frame_start && now - c->frame_start >= frame_to) {
			rk_debug(srv->lg, "server",
				 "fd %d: frame not finished in %.1fs", c->fd,
				 frame_to);
			rk_buf_clear(&c->in);
			conn_close(c, "limits.frame_timeout");
		} else if (idle_to > 0 && c->refs == 0 &&
			   now - c->last_active >= idle_to) {
			conn_close(c, "limits.idle_timeout");
		}
		c = next;
	}
}

/* ------------------------------------------------------------------ */
/* loop hooks                                                          */

static void drain_finished(struct server *srv)
{
	ev_timer_stop(srv->loop, &srv->drain_timer);
	void (*done)(void *) = srv->drained;
	srv->drained = NULL;
	if (done)
		done(srv->drained_ctx);
}

static void on_check(struct ev_loop *loop, ev_check *w, int revents)
{
	(void)revents;
	struct server *srv = w->data;
	/* Leftover frames of busy connections, one budget each. */
	struct conn *c = srv->pending;
	while (c) {
		struct conn *next = c->pend_next;
		conn_process(c);
		c = next;
	}
	if (!srv->pending)
		ev_idle_stop(loop, &srv->idle);
}

static void on_idle(struct ev_loop *loop, ev_idle *w, int revents)
{
	(void)loop;
	(void)w;
	(void)revents;
	/* Only here so that polling does not block; on_check does the work. */
}

static void on_drain_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)revents;
	struct server *srv = w->data;
	(void)loop;
	rk_warn(srv->lg, "server",
		"%" PRIu64 " requests still unanswered after %.0fs; stopping "
		"anyway", srv->held, DRAIN_GRACE);
	drain_finished(srv);
}

/* ------------------------------------------------------------------ */
/* setup                                                               */

static int errf(char *err, size_t errlen, int code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int errf(char *err, size_t errlen, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return code;
}

static int listen_on(struct server *srv, char *err, size_t errlen)
{
	char host[256];
	uint16_t port;
	if (rk_addr_split(srv->cfg->listen, host, sizeof(host), &port, 1))
		return errf(err, errlen, RK_EINVALID,
			    "listen address '%s' is not HOST:PORT",
			    srv->cfg->listen);
	struct addrinfo hints = {.ai_family = AF_UNSPEC,
				 .ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
	struct addrinfo *ai;
	char portstr[8];
	snprintf(portstr, sizeof(portstr), "%u", port);
	int g = getaddrinfo(host, portstr, &hints, &ai);
	if (g)
		return errf(err, errlen, RK_EIO, "cannot resolve %s: %s", host,
			    gai_strerror(g));
	int fd = socket(ai->ai_family,
			SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;
	if (fd < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 ||
	    listen(fd, 4096) < 0) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		freeaddrinfo(ai);
		return errf(err, errlen, RK_EIO, "cannot listen on %s: %s",
			    srv->cfg->listen, strerror(e));
	}
	freeaddrinfo(ai);
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char ip[INET6_ADDRSTRLEN] = "?";
	uint16_t bound = port;
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
		if (ss.ss_family == AF_INET) {
			struct sockaddr_in *in = (struct sockaddr_in *)&ss;
			inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
			bound = ntohs(in->sin_port);
			snprintf(srv->address, sizeof(srv->address), "%s:%u",
				 ip, bound);
		} else {
			struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
			inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
			bound = ntohs(in6->sin6_port);
			snprintf(srv->address, sizeof(srv->address), "[%s]:%u",
				 ip, bound);
		}
	}
	srv->lfd = fd;
	return 0;
}

/* 10,000 clients need more descriptors than the usual soft limit. */
static void raise_fd_limit(struct server *srv)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return;
	rlim_t want = (rlim_t)srv->cfg->max_clients + 256;
	if (rl.rlim_cur >= want)
		return;
	rl.rlim_cur = want < rl.rlim_max ? want : rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
	if (rl.rlim_cur < want)
		rk_warn(srv->lg, "server",
			"open-file limit %llu is below limits.max_clients + "
			"256; raise it (ulimit -n) to serve every client",
			(unsigned long long)rl.rlim_cur);
}

int server_new(struct ev_loop *loop, const struct node_config *cfg,
	       uint64_t self_id, const struct rk_logger *lg,
	       struct server **out, char *err, size_t errlen)
{
	*out = NULL;
	struct server *srv = calloc(1, sizeof(*srv));
	if (!srv)
		return errf(err, errlen, RK_ENOMEM, "out of memory");
	srv->loop = loop;
	srv->cfg = cfg;
	srv->self_id = self_id;
	srv->lg = lg;
	srv->lfd = -1;
	srv->limits.max_key = (uint32_t)cfg->max_key;
	srv->limits.max_value = (uint32_t)cfg->max_value;
	srv->limits.max_ping = 1024;
	raise_fd_limit(srv);
	int rc = listen_on(srv, err, errlen);
	if (rc) {
		free(srv);
		return rc;
	}
	ev_io_init(&srv->accept_w, on_accept, srv->lfd, EV_READ);
	ev_timer_init(&srv->accept_pause, on_accept_pause, ACCEPT_BACKOFF, 0);
	double gran = (double)(cfg->frame_timeout_ms < cfg->idle_timeout_ms ||
					       cfg->idle_timeout_ms == 0
				       ? cfg->frame_timeout_ms
				       : cfg->idle_timeout_ms) /
		      4000.0;
	if (gran < 0.05)
		gran = 0.05;
	if (gran > 1.0)
		gran = 1.0;
	ev_timer_init(&srv->sweep, on_sweep, gran, gran);
	ev_timer_init(&srv->drain_timer, on_drain_timeout, DRAIN_GRACE, 0);
	ev_check_init(&srv->check, on_check);
	ev_idle_init(&srv->idle, on_idle);
	srv->accept_w.data = srv->accept_pause.data = srv->sweep.data = srv;
	srv->drain_timer.data = srv->check.data = srv->idle.data = srv;
	*out = srv;
	return 0;
}

void server_start(struct server *srv)
{
	struct ev_loop *loop = srv->loop;
	ev_check_start(loop, &srv->check);
	ev_timer_start(loop, &srv->sweep);
	ev_io_start(loop, &srv->accept_w);
}

const char *server_address(const struct server *srv)
{
	return srv->address;
}

void server_drain(struct server *srv, void (*done)(void *ctx), void *ctx)
{
	if (srv->draining)
		return;
	/* Connections are still read: peers' acknowledgements of the
	 * writes we coordinate arrive on them, peers still ask us as a
	 * replica until gossip says we left, and a client's request is
	 * better answered SHUTTING_DOWN (it goes elsewhere) than cut off
	 * unread (it may or may not have been applied). */
	srv->draining = 1;
	srv->drained = done;
	srv->drained_ctx = ctx;
	if (srv->held == 0) {
		drain_finished(srv);
		return;
	}
	ev_timer_start(srv->loop, &srv->drain_timer);
}

void server_free(struct server *srv)
{
	if (!srv)
		return;
	struct ev_loop *loop = srv->loop;
	while (srv->conns) {
		conn_flush(srv->conns);
		if (srv->conns)
			conn_close(srv->conns, "node stopping");
	}
	conn_reap(srv, 1);
	ev_io_stop(loop, &srv->accept_w);
	ev_timer_stop(loop, &srv->accept_pause);
	ev_timer_stop(loop, &srv->sweep);
	ev_timer_stop(loop, &srv->drain_timer);
	ev_check_stop(loop, &srv->check);
	ev_idle_stop(loop, &srv->idle);
	if (srv->lfd >= 0)
		close(srv->lfd);
	free(srv);
}
