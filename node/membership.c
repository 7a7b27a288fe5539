#include "membership.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"
#include "err.h"
#include "gossip_wire.h"
#include "peer_wire.h"
#include "rng.h"

/* Datagrams read per readiness event: bounded so UDP cannot starve TCP. */
#define UDP_BATCH 64
/* A push-pull waits this long for the reply, ms. */
#define SYNC_TIMEOUT_MS 5000
/* Resolved gossip addresses kept (UDP sends are frequent). */
#define ADDR_CACHE 256
/* A graceful leave waits at most this many protocol periods. */
#define LEAVE_PERIODS 3

struct addr_entry {
	char addr[64];
	struct sockaddr_storage sa;
	socklen_t len;
};

struct membership {
	struct ev_loop *loop;
	const struct node_config *cfg;
	const struct rk_logger *lg;
	struct cluster *cl;
	struct peers *peers;
	struct swim *swim;
	int udp;
	ev_io udp_w;
	ev_timer timer;      /* at swim_next_deadline() */
	ev_timer leave_w;    /* polls swim_leave_done() */
	struct rk_rng rng;
	char advertise[256];
	struct rk_buf sync_reply; /* payload of the last push-pull answer */
	struct addr_entry cache[ADDR_CACHE];
	size_t cache_next;
	void (*leave_done)(void *ctx);
	void *leave_ctx;
	int leave_ticks;
};

/* A push-pull on its way; freed by its callback. */
struct sync_call {
	struct membership *m;
	char addr[256];
};

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

static uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Points the one timer at swim's next deadline.  Call after every input. */
static void rearm(struct membership *m)
{
	uint64_t at = swim_next_deadline(m->swim);
	ev_timer_stop(m->loop, &m->timer);
	if (at == UINT64_MAX)
		return;
	uint64_t now = mono_ms();
	double in = at > now ? (double)(at - now) / 1000.0 : 0.0;
	ev_timer_set(&m->timer, in, 0.0);
	ev_timer_start(m->loop, &m->timer);
}

static void on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	struct membership *m = w->data;
	swim_tick(m->swim);
	rearm(m);
}

/* ------------------------------------------------------------------ */
/* the runtime swim calls                                              */

static uint64_t rt_now(void *ctx)
{
	(void)ctx;
	return mono_ms();
}

static uint64_t rt_random(void *ctx)
{
	struct membership *m = ctx;
	return rk_rng_next(&m->rng);
}

static const struct addr_entry *resolve(struct membership *m,
					const char *addr)
{
	for (size_t i = 0; i < ADDR_CACHE; i++)
		if (m->cache[i].len && strcmp(m->cache[i].addr, addr) == 0)
			return &m->cache[i];
	char host[256];
	uint16_t port;
	if (strlen(addr) >= sizeof(m->cache[0].addr) ||
	    rk_addr_split(addr, host, sizeof(host), &port, 0))
		return NULL;
	char portstr[8];
	snprintf(portstr, sizeof(portstr), "%u", port);
	struct addrinfo hints = {.ai_socktype = SOCK_DGRAM,
				 .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV};
	struct addrinfo *ai;
	if (getaddrinfo(host, portstr, &hints, &ai) != 0)
		return NULL; /* gossip addresses are numeric */
	struct addr_entry *e = &m->cache[m->cache_next++ % ADDR_CACHE];
	snprintf(e->addr, sizeof(e->addr), "%s", addr);
	memcpy(&e->sa, ai->ai_addr, ai->ai_addrlen);
	e->len = ai->ai_addrlen;
	freeaddrinfo(ai);
	return e;
}

static void rt_send_udp(void *ctx, const char *addr, const uint8_t *bytes,
			size_t len)
{
	struct membership *m = ctx;
	const struct addr_entry *e = resolve(m, addr);
	if (!e)
		return;
	/* Fire and forget: a full socket buffer is packet loss. */
	(void)!sendto(m->udp, bytes, len, MSG_DONTWAIT,
		      (const struct sockaddr *)&e->sa, e->len);
}

static void on_sync_reply(void *ctx, int status, const struct peer_msg *r)
{
	struct sync_call *sc = ctx;
	struct membership *m = sc->m;
	if (m && m->swim && status == 0 && r->op == PEER_OP_GOSSIP_SYNC_REPLY) {
		swim_recv_sync_reply(m->swim, sc->addr, r->payload.p,
				     r->payload.n);
		rearm(m);
	}
	free(sc);
}

static void rt_send_sync(void *ctx, const char *addr, const uint8_t *bytes,
			 size_t len)
{
	struct membership *m = ctx;
	struct sync_call *sc = malloc(sizeof(*sc));
	if (!sc)
		return;
	sc->m = m;
	snprintf(sc->addr, sizeof(sc->addr), "%s", addr);
	struct peer_msg q = {.op = PEER_OP_GOSSIP_SYNC,
			     .payload = {bytes, len}};
	/* The peer port is the gossip port: one address per node. */
	peers_request(m->peers, addr, &q, SYNC_TIMEOUT_MS, on_sync_reply, sc);
}

static void tell_cluster(struct membership *m, const struct swim_member *sm)
{
	cluster_on_member(m->cl, sm->id, (enum cluster_liveness)(sm->state + 1),
			  sm->incarnation, sm->weight, sm->client_addr,
			  sm->gossip_addr, sm->meta, sm->meta_len);
}

static void rt_on_event(void *ctx, const struct swim_event *ev)
{
	struct membership *m = ctx;
	const struct swim_member *sm = ev->member;
	if (ev->type == SWIM_EV_JOIN_DONE) {
		cluster_on_joined(m->cl);
		return;
	}
	/* swim logs each change itself; this is for tracing the binding. */
	rk_debug(m->lg, "gossip", "event %s n%" PRIx64 " inc=%" PRIu64 " at %s",
		 swim_event_name(ev->type), sm->id, sm->incarnation,
		 sm->gossip_addr);
	tell_cluster(m, sm);
}

/* DATA_DIR/incarnation holds the last incarnation this node gossiped. */
static void incarnation_path(const struct membership *m, char *out, size_t n)
{
	snprintf(out, n, "%s/incarnation", m->cfg->data_dir);
}

static void rt_on_incarnation(void *ctx, uint64_t inc)
{
	struct membership *m = ctx;
	char path[PATH_MAX], tmp[PATH_MAX + 8], line[32];
	incarnation_path(m, path, sizeof(path));
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	int n = snprintf(line, sizeof(line), "%" PRIu64 "\n", inc);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	/* Rare (start, refutation, metadata change) and needed before the
	 * packet that carries it: written synchronously. */
	if (fd < 0 || write(fd, line, (size_t)n) != n || fsync(fd) < 0 ||
	    rename(tmp, path) < 0)
		rk_warn(m->lg, "gossip",
			"cannot persist incarnation %" PRIu64 " in %s: %s; a "
			"restart will have to refute its way back",
			inc, path, strerror(errno));
	if (fd >= 0)
		close(fd);
}

static uint64_t incarnation_load(const struct membership *m)
{
	char path[PATH_MAX];
	incarnation_path(m, path, sizeof(path));
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	unsigned long long v = 0;
	int ok = fscanf(f, "%llu", &v) == 1;
	fclose(f);
	return ok ? (uint64_t)v + 1 : 0;
}

/* ------------------------------------------------------------------ */

static void on_udp(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop;
	(void)revents;
	struct membership *m = w->data;
	uint8_t buf[65536];
	for (int i = 0; i < UDP_BATCH; i++) {
		struct sockaddr_storage sa;
		socklen_t sl = sizeof(sa);
		ssize_t n = recvfrom(m->udp, buf, sizeof(buf), MSG_DONTWAIT,
				     (struct sockaddr *)&sa, &sl);
		if (n < 0)
			break;
		char from[64] = "?";
		if (sa.ss_family == AF_INET) {
			struct sockaddr_in *in = (struct sockaddr_in *)&sa;
			char ip[INET_ADDRSTRLEN];
			inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
			snprintf(from, sizeof(from), "%s:%u", ip,
				 ntohs(in->sin_port));
		}
		swim_recv_udp(m->swim, from, buf, (size_t)n);
	}
	rearm(m);
}

void membership_on_sync(struct membership *m, const char *from,
			const struct peer_msg *req, struct peer_msg *reply)
{
	rk_buf_clear(&m->sync_reply);
	int rc = swim_recv_sync(m->swim, from, req->payload.p, req->payload.n,
				&m->sync_reply);
	rearm(m);
	if (rc) {
		reply->op = PEER_OP_ERROR;
		reply->status = rc;
		reply->error = "push-pull refused";
		return;
	}
	reply->op = PEER_OP_GOSSIP_SYNC_REPLY;
	reply->payload.p = rk_buf_rptr(&m->sync_reply);
	reply->payload.n = rk_buf_readable(&m->sync_reply);
}

void membership_set_meta(struct membership *m, const uint8_t *meta,
			 size_t len)
{
	swim_set_meta(m->swim, (uint32_t)m->cfg->weight, meta, len);
	rearm(m);
}

static void on_leave_poll(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)revents;
	struct membership *m = w->data;
	if (swim_leave_done(m->swim) || ++m->leave_ticks >= LEAVE_PERIODS * 10) {
		ev_timer_stop(loop, w);
		if (m->leave_done)
			m->leave_done(m->leave_ctx);
	}
}

void membership_leave(struct membership *m, void (*done)(void *ctx),
		      void *ctx)
{
	m->leave_done = done;
	m->leave_ctx = ctx;
	if (swim_leave(m->swim) != 0) {
		done(ctx);
		return;
	}
	rearm(m);
	double step = (double)m->cfg->gossip_period_ms / 10000.0;
	ev_timer_init(&m->leave_w, on_leave_poll, step, step);
	m->leave_w.data = m;
	ev_timer_start(m->loop, &m->leave_w);
}

void membership_stats(const struct membership *m, struct swim_stats *out)
{
	swim_stats(m->swim, out);
}

static int bind_udp(struct membership *m, const char *listen, char *err,
		    size_t errlen)
{
	char host[256];
	uint16_t port;
	if (rk_addr_split(listen, host, sizeof(host), &port, 0))
		return errf(err, errlen, RK_EINVALID,
			    "gossip needs a concrete port in node.listen, got "
			    "'%s'", listen);
	char portstr[8];
	snprintf(portstr, sizeof(portstr), "%u", port);
	struct addrinfo hints = {.ai_socktype = SOCK_DGRAM,
				 .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
	struct addrinfo *ai;
	if (getaddrinfo(host, portstr, &hints, &ai) != 0)
		return errf(err, errlen, RK_EIO, "cannot resolve %s", host);
	m->udp = socket(ai->ai_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
			0);
	int rc = m->udp < 0 ? -1 : bind(m->udp, ai->ai_addr, ai->ai_addrlen);
	freeaddrinfo(ai);
	if (rc < 0)
		return errf(err, errlen, RK_EIO, "cannot bind UDP %s: %s",
			    listen, strerror(errno));
	return 0;
}

int membership_open(struct ev_loop *loop, const struct node_config *cfg,
		    uint64_t self_id, const char *listen_addr,
		    const char *advertise_addr, struct cluster *cl,
		    struct peers *peers, const struct rk_logger *lg,
		    struct membership **out, char *err, size_t errlen)
{
	*out = NULL;
	struct membership *m = calloc(1, sizeof(*m));
	if (!m)
		return errf(err, errlen, RK_ENOMEM, "out of memory");
	m->loop = loop;
	m->cfg = cfg;
	m->lg = lg;
	m->cl = cl;
	m->peers = peers;
	m->udp = -1;
	rk_buf_init(&m->sync_reply);
	snprintf(m->advertise, sizeof(m->advertise), "%s", advertise_addr);
	uint64_t seed;
	if (getrandom(&seed, sizeof(seed), 0) != sizeof(seed))
		seed = mono_ms() ^ self_id;
	rk_rng_seed(&m->rng, seed);
	int rc = bind_udp(m, listen_addr, err, errlen);
	if (rc) {
		membership_free(m);
		return rc;
	}
	uint8_t meta[CLUSTER_META_LEN];
	cluster_self_meta(cl, meta);
	struct swim_config sc;
	swim_config_defaults(&sc);
	sc.id = self_id;
	sc.gossip_addr = m->advertise;
	sc.peer_addr = m->advertise;
	sc.client_addr = m->advertise;
	sc.weight = (uint32_t)cfg->weight;
	sc.meta = meta;
	sc.meta_len = sizeof(meta);
	sc.cluster = cfg->cluster_name;
	sc.incarnation = incarnation_load(m);
	sc.period_ms = (uint32_t)cfg->gossip_period_ms;
	sc.probe_timeout_ms = (uint32_t)cfg->gossip_probe_timeout_ms;
	sc.indirect_k = (uint32_t)cfg->gossip_indirect;
	sc.push_pull_ms = (uint32_t)cfg->gossip_push_pull_ms;
	sc.tombstone_ms = cfg->gossip_tombstone_ms;
	sc.max_packet = (uint32_t)cfg->gossip_max_packet;
	struct swim_runtime rt = {
		.ctx = m,
		.codec = &gossip_wire_codec,
		.log = lg,
		.now_ms = rt_now,
		.random = rt_random,
		.send_udp = rt_send_udp,
		.send_sync = rt_send_sync,
		.on_event = rt_on_event,
		.on_incarnation = rt_on_incarnation,
	};
	if ((rc = swim_new(&sc, &rt, &m->swim)) != 0) {
		membership_free(m);
		return errf(err, errlen, rc, "starting gossip: %s",
			    rk_strerror(rc));
	}
	/* Seeds: a comma-separated list; our own address may be in it. */
	char list[sizeof(cfg->seeds)];
	snprintf(list, sizeof(list), "%s", cfg->seeds);
	const char *seeds[256];
	size_t ns = 0;
	char *save = NULL;
	for (char *s = strtok_r(list, ", ", &save); s && ns < 256;
	     s = strtok_r(NULL, ", ", &save))
		seeds[ns++] = s;
	if ((rc = swim_join(m->swim, seeds, ns)) != 0) {
		membership_free(m);
		return errf(err, errlen, rc, "cluster.seeds: '%s' is not a "
			    "list of HOST:PORT", cfg->seeds);
	}
	ev_io_init(&m->udp_w, on_udp, m->udp, EV_READ);
	m->udp_w.data = m;
	ev_io_start(loop, &m->udp_w);
	ev_init(&m->timer, on_timer);
	m->timer.data = m;
	rearm(m);
	rk_info(lg, "gossip", "gossip on udp %s, incarnation %" PRIu64 ", %zu "
		"seeds", listen_addr, swim_incarnation(m->swim), ns);
	*out = m;
	return 0;
}

void membership_free(struct membership *m)
{
	if (!m)
		return;
	if (m->swim) {
		ev_io_stop(m->loop, &m->udp_w);
		ev_timer_stop(m->loop, &m->timer);
		ev_timer_stop(m->loop, &m->leave_w);
		swim_free(m->swim);
	}
	if (m->udp >= 0)
		close(m->udp);
	rk_buf_destroy(&m->sync_reply);
	free(m);
}
