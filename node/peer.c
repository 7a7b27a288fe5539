#include "peer.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "addr.h"
#include "err.h"
#include "frame.h"
#include "wire.h"

/* Reconnect backoff after a failed attempt, seconds: short enough that a
 * restarted peer is reached again quickly, long enough that a dead one is
 * not hammered. */
#define PEER_BACKOFF_MIN 0.1
#define PEER_BACKOFF_MAX 5.0
/* The handshake must finish within this, seconds. */
#define PEER_HELLO_TIMEOUT 5.0
/* How often deadlines are checked, seconds. */
#define PEER_SWEEP 0.05
#define READ_CHUNK (64u * 1024u)
/* The Hello's request id on a fresh connection. */
#define HELLO_ID 1

enum link_state {
	LINK_IDLE,       /* no socket */
	LINK_CONNECTING, /* connect() in progress */
	LINK_HELLO,      /* Hello sent, waiting for HelloResult */
	LINK_READY,
};

/* A request waiting for its reply. */
struct pending {
	uint64_t id;
	ev_tstamp deadline;
	peer_reply_fn cb;
	void *ctx;
};

/* One peer address and its connection. */
struct link {
	struct peers *p;
	char addr[300];
	enum link_state state;
	int fd;
	ev_io rio, wio;
	struct rk_buf in, out; /* out holds frames queued before READY too */
	struct pending *pend;  /* in send order */
	size_t npend, cap;
	ev_tstamp retry_at;    /* backoff: no attempt before this */
	double backoff;
	ev_tstamp hello_deadline;
	struct link *next;
};

struct peers {
	struct ev_loop *loop;
	const struct node_config *cfg;
	const struct rk_logger *lg;
	uint64_t self_id;
	uint64_t next_id;
	struct link *links;
	ev_timer sweep;
	/* Messages queued during a loop turn go out together just before
	 * the loop waits again: one send() per peer per turn however many
	 * requests the turn coordinated, and one read() for the peer. */
	ev_prepare flush;
	int flush_again; /* queued while on_flush runs */
	int closing;      /* peers_free is running */
	peer_down_fn down_fn;
	void *down_ctx;
};

static void link_fail(struct link *l, int status, const char *why);

/* ------------------------------------------------------------------ */

static int pend_push(struct link *l, const struct pending *x)
{
	if (l->npend == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		struct pending *n = realloc(l->pend, cap * sizeof(*n));
		if (!n)
			return RK_ENOMEM;
		l->pend = n;
		l->cap = cap;
	}
	l->pend[l->npend++] = *x;
	return 0;
}

/* Removes and returns the pending request with id, if any. */
static int pend_take(struct link *l, uint64_t id, struct pending *out)
{
	for (size_t i = 0; i < l->npend; i++) {
		if (l->pend[i].id != id)
			continue;
		*out = l->pend[i];
		memmove(&l->pend[i], &l->pend[i + 1],
			(l->npend - i - 1) * sizeof(*l->pend));
		l->npend--;
		return 1;
	}
	return 0;
}

static void link_close_socket(struct link *l)
{
	if (l->fd >= 0) {
		ev_io_stop(l->p->loop, &l->rio);
		ev_io_stop(l->p->loop, &l->wio);
		close(l->fd);
	}
	l->fd = -1;
	l->state = LINK_IDLE;
	rk_buf_clear(&l->in);
	rk_buf_clear(&l->out);
}

/* Fails every pending request and drops the connection. */
static void link_fail(struct link *l, int status, const char *why)
{
	if (l->state != LINK_READY || status == RK_ECONNECT) {
		l->retry_at = ev_now(l->p->loop) + l->backoff;
		l->backoff = l->backoff * 2 > PEER_BACKOFF_MAX
				     ? PEER_BACKOFF_MAX
				     : l->backoff * 2;
	}
	rk_debug(l->p->lg, "peer", "%s: %s (%zu requests failed)", l->addr,
		 why, l->npend);
	link_close_socket(l);
	/* Callbacks may send new requests (to this link too): detach the
	 * list first. */
	struct pending *pend = l->pend;
	size_t n = l->npend;
	l->pend = NULL;
	l->npend = l->cap = 0;
	for (size_t i = 0; i < n; i++)
		pend[i].cb(pend[i].ctx, status, NULL);
	free(pend);
	if (l->p->down_fn && !l->p->closing)
		l->p->down_fn(l->p->down_ctx, l->addr);
}

static void link_flush(struct link *l)
{
	if (l->state == LINK_CONNECTING || l->fd < 0)
		return;
	while (rk_buf_readable(&l->out)) {
		ssize_t n = send(l->fd, rk_buf_rptr(&l->out),
				 rk_buf_readable(&l->out), MSG_NOSIGNAL);
		if (n > 0) {
			rk_buf_consume(&l->out, (size_t)n);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			ev_io_start(l->p->loop, &l->wio);
			return;
		}
		link_fail(l, RK_ECLOSED, n < 0 ? strerror(errno) : "send 0");
		return;
	}
	ev_io_stop(l->p->loop, &l->wio);
}

/* Handles one frame from the peer. */
static void link_frame(struct link *l, const uint8_t *body, uint32_t len)
{
	if (l->state == LINK_HELLO) {
		struct rk_response r;
		struct rk_wire_msg *owner;
		char why[160];
		if (rk_wire_decode_response(body, len, &r, &owner, why,
					    sizeof(why))) {
			link_fail(l, RK_EPROTOCOL, why);
			return;
		}
		int ok = r.status == 0 && r.op == RK_OP_HELLO;
		char refusal[200];
		snprintf(refusal, sizeof(refusal), "handshake refused: %s",
			 r.error ? r.error : rk_strerror(r.status));
		rk_wire_msg_free(owner);
		if (!ok) {
			link_fail(l, RK_ECONNECT, refusal);
			return;
		}
		l->state = LINK_READY;
		l->backoff = PEER_BACKOFF_MIN;
		return;
	}
	struct peer_msg m;
	struct peer_wire_msg *owner;
	char why[160];
	struct peer_wire_limits lim = {.max_payload = l->p->cfg->max_frame,
				       .max_key = (uint32_t)l->p->cfg->max_key,
				       .max_value = (uint32_t)l->p->cfg->max_value};
	if (peer_wire_decode(body, len, &lim, &m, &owner, why, sizeof(why))) {
		link_fail(l, RK_EPROTOCOL, why);
		return;
	}
	struct pending x;
	if (pend_take(l, m.id, &x))
		x.cb(x.ctx, 0, &m);
	/* else: a reply after its deadline; already failed, dropped */
	peer_wire_msg_free(owner);
}

static void on_read(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop;
	(void)revents;
	struct link *l = w->data;
	if (rk_buf_reserve(&l->in, READ_CHUNK)) {
		link_fail(l, RK_ENOMEM, "out of memory");
		return;
	}
	ssize_t n = read(l->fd, l->in.data + l->in.len, l->in.cap - l->in.len);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		link_fail(l, RK_ECLOSED, n == 0 ? "closed by peer"
						: strerror(errno));
		return;
	}
	l->in.len += (size_t)n;
	/* A callback may fail this link (closing its socket): stop then. */
	int fd = l->fd;
	while (l->fd == fd && fd >= 0) {
		struct rk_frame f;
		int rc = rk_frame_parse(rk_buf_rptr(&l->in),
					rk_buf_readable(&l->in),
					(uint32_t)l->p->cfg->max_frame, &f);
		if (rc == 0)
			break;
		if (rc < 0) {
			link_fail(l, RK_EPROTOCOL, "frame over limits.max_frame");
			return;
		}
		/* Copy out: the callback may queue requests that reuse in. */
		uint8_t *body = malloc(f.body_len ? f.body_len : 1);
		if (!body) {
			link_fail(l, RK_ENOMEM, "out of memory");
			return;
		}
		memcpy(body, f.body, f.body_len);
		rk_buf_consume(&l->in, f.frame_len);
		link_frame(l, body, f.body_len);
		free(body);
	}
	if (l->fd >= 0)
		link_flush(l);
}

static void on_write(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop;
	(void)revents;
	struct link *l = w->data;
	if (l->state == LINK_CONNECTING) {
		int e = 0;
		socklen_t el = sizeof(e);
		getsockopt(l->fd, SOL_SOCKET, SO_ERROR, &e, &el);
		if (e) {
			link_fail(l, RK_ECONNECT, strerror(e));
			return;
		}
		l->state = LINK_HELLO;
		ev_io_start(l->p->loop, &l->rio);
	}
	link_flush(l);
}

/* Opens the socket and queues the Hello in front of anything queued. */
static int link_connect(struct link *l)
{
	struct peers *p = l->p;
	char host[256];
	uint16_t port;
	if (rk_addr_split(l->addr, host, sizeof(host), &port, 0))
		return RK_EINVALID;
	char portstr[8];
	snprintf(portstr, sizeof(portstr), "%u", port);
	struct addrinfo hints = {.ai_family = AF_UNSPEC,
				 .ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_NUMERICSERV | AI_NUMERICHOST};
	struct addrinfo *ai;
	if (getaddrinfo(host, portstr, &hints, &ai) != 0) {
		/* Names are resolved once, at the edge; peers gossip
		 * numeric addresses. */
		hints.ai_flags = AI_NUMERICSERV;
		if (getaddrinfo(host, portstr, &hints, &ai) != 0)
			return RK_ECONNECT;
	}
	int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
			0);
	if (fd < 0) {
		freeaddrinfo(ai);
		return RK_ECONNECT;
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	int rc = connect(fd, ai->ai_addr, ai->ai_addrlen);
	freeaddrinfo(ai);
	if (rc < 0 && errno != EINPROGRESS) {
		close(fd);
		return RK_ECONNECT;
	}
	l->fd = fd;
	l->state = LINK_CONNECTING;
	l->hello_deadline = ev_now(p->loop) + PEER_HELLO_TIMEOUT;
	ev_io_init(&l->rio, on_read, fd, EV_READ);
	ev_io_init(&l->wio, on_write, fd, EV_WRITE);
	l->rio.data = l->wio.data = l;
	/* The Hello goes first: build it in front of what is queued. */
	struct rk_buf hello;
	rk_buf_init(&hello);
	struct rk_request q = {.id = HELLO_ID,
			       .op = RK_OP_HELLO,
			       .role = RK_ROLE_PEER,
			       .cluster_name = p->cfg->cluster_name,
			       .node_id = p->self_id,
			       .protocol_version = RK_PROTOCOL_VERSION};
	if (rk_wire_encode_request(&hello, &q) ||
	    rk_buf_append(&hello, rk_buf_rptr(&l->out), rk_buf_readable(&l->out))) {
		rk_buf_destroy(&hello);
		link_close_socket(l);
		return RK_ENOMEM;
	}
	rk_buf_destroy(&l->out);
	l->out = hello;
	ev_io_start(p->loop, &l->wio);
	return 0;
}

static void on_flush(struct ev_loop *loop, ev_prepare *w, int revents)
{
	(void)revents;
	struct peers *p = w->data;
	/* A failed flush runs callbacks that may queue more: go round
	 * until nothing new was queued, then sleep. */
	do {
		p->flush_again = 0;
		for (struct link *l = p->links; l; l = l->next)
			if (l->state == LINK_READY &&
			    rk_buf_readable(&l->out) && !ev_is_active(&l->wio))
				link_flush(l);
	} while (p->flush_again);
	ev_prepare_stop(loop, w);
}

/* Queued frames go out at the end of this loop turn (on_flush). */
static void flush_soon(struct peers *p)
{
	p->flush_again = 1;
	if (!ev_is_active(&p->flush))
		ev_prepare_start(p->loop, &p->flush);
}

static struct link *link_get(struct peers *p, const char *addr)
{
	for (struct link *l = p->links; l; l = l->next)
		if (strcmp(l->addr, addr) == 0)
			return l;
	struct link *l = calloc(1, sizeof(*l));
	if (!l)
		return NULL;
	l->p = p;
	snprintf(l->addr, sizeof(l->addr), "%s", addr);
	l->fd = -1;
	l->backoff = PEER_BACKOFF_MIN;
	rk_buf_init(&l->in);
	rk_buf_init(&l->out);
	l->next = p->links;
	p->links = l;
	return l;
}

void peers_request(struct peers *p, const char *addr, struct peer_msg *m,
		   uint32_t timeout_ms, peer_reply_fn cb, void *ctx)
{
	struct link *l = p->closing ? NULL : link_get(p, addr);
	if (p->closing) {
		cb(ctx, RK_ESHUTTING_DOWN, NULL);
		return;
	}
	if (!l) {
		cb(ctx, RK_ENOMEM, NULL);
		return;
	}
	ev_tstamp now = ev_now(p->loop);
	if (l->state == LINK_IDLE) {
		if (now < l->retry_at) {
			cb(ctx, RK_ECONNECT, NULL);
			return;
		}
		int rc = link_connect(l);
		if (rc) {
			link_fail(l, RK_ECONNECT, "cannot connect");
			cb(ctx, rc, NULL);
			return;
		}
	}
	m->id = ++p->next_id + HELLO_ID;
	struct pending x = {.id = m->id,
			    .deadline = now + timeout_ms / 1000.0,
			    .cb = cb,
			    .ctx = ctx};
	if (peer_wire_encode(&l->out, m) || pend_push(l, &x)) {
		cb(ctx, RK_ENOMEM, NULL);
		return;
	}
	flush_soon(p);
}

int peers_send(struct peers *p, const char *addr, struct peer_msg *m)
{
	if (p->closing)
		return RK_ESHUTTING_DOWN;
	struct link *l = link_get(p, addr);
	if (!l)
		return RK_ENOMEM;
	if (l->state == LINK_IDLE) {
		if (ev_now(p->loop) < l->retry_at)
			return RK_ECONNECT;
		int rc = link_connect(l);
		if (rc) {
			link_fail(l, RK_ECONNECT, "cannot connect");
			return RK_ECONNECT;
		}
	}
	m->id = 0;
	if (peer_wire_encode(&l->out, m))
		return RK_ENOMEM;
	flush_soon(p);
	return 0;
}

/* Fails requests past their deadline and handshakes that hang. */
static void on_sweep(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)revents;
	struct peers *p = w->data;
	ev_tstamp now = ev_now(loop);
	for (struct link *l = p->links; l; l = l->next) {
		if ((l->state == LINK_CONNECTING || l->state == LINK_HELLO) &&
		    now > l->hello_deadline) {
			link_fail(l, RK_ECONNECT, "handshake timed out");
			continue;
		}
		size_t i = 0;
		while (i < l->npend) {
			if (l->pend[i].deadline > now) {
				i++;
				continue;
			}
			struct pending x = l->pend[i];
			memmove(&l->pend[i], &l->pend[i + 1],
				(l->npend - i - 1) * sizeof(*l->pend));
			l->npend--;
			x.cb(x.ctx, RK_ETIMEOUT, NULL);
			i = 0; /* the callback may have changed the list */
		}
	}
}

void peers_set_down_handler(struct peers *p, peer_down_fn fn, void *ctx)
{
	p->down_fn = fn;
	p->down_ctx = ctx;
}

struct peers *peers_new(struct ev_loop *loop, const struct node_config *cfg,
			uint64_t self_id, const struct rk_logger *lg)
{
	struct peers *p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->loop = loop;
	p->cfg = cfg;
	p->lg = lg;
	p->self_id = self_id;
	ev_timer_init(&p->sweep, on_sweep, PEER_SWEEP, PEER_SWEEP);
	p->sweep.data = p;
	ev_timer_start(loop, &p->sweep);
	ev_prepare_init(&p->flush, on_flush);
	p->flush.data = p;
	return p;
}

void peers_free(struct peers *p)
{
	if (!p)
		return;
	ev_timer_stop(p->loop, &p->sweep);
	/* What the last loop turn queued still goes, as far as the
	 * sockets take it without waiting. */
	if (ev_is_active(&p->flush))
		on_flush(p->loop, &p->flush, 0);
	p->closing = 1;
	while (p->links) {
		struct link *l = p->links;
		p->links = l->next;
		link_fail(l, RK_ESHUTTING_DOWN, "node stopping");
		rk_buf_destroy(&l->in);
		rk_buf_destroy(&l->out);
		free(l->pend);
		free(l);
	}
	free(p);
}
