/* sim_swim.c: struct swim as a simulator program. */
#include "sim_swim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "gossip_wire.h"

#define SIM_SWIM_PORT 7946

/* One node's program state. */
struct sim_swim_node {
	struct sim *sim;		  /* the simulation */
	int node;			  /* our number and swim id */
	const struct sim_swim_opts *opts; /* borrowed from prog_ctx */
	struct swim *swim;		  /* owned */
	struct rk_buf reply;		  /* push-pull reply scratch */
	char addr[32];			  /* our gossip address */
};

void sim_swim_addr(int node, char *buf, size_t n)
{
	snprintf(buf, n, "10.0.%d.%d:%d", node / 256, node % 256,
		 SIM_SWIM_PORT);
}

int sim_swim_node_of(const char *addr)
{
	int a, b, port;
	char tail;
	/* Any port: a node that comes back on another port is still the
	 * same simulated host. */
	if (sscanf(addr, "10.0.%d.%d:%d%c", &a, &b, &port, &tail) != 3 ||
	    a < 0 || b < 0 || b > 255)
		return 0;
	return a * 256 + b;
}

void sim_swim_opts_defaults(struct sim_swim_opts *o)
{
	memset(o, 0, sizeof(*o));
	swim_config_defaults(&o->cfg);
	o->cfg.cluster = "sim";
	o->seeds[0] = 1;
	o->n_seeds = 1;
	o->persist = 1;
}

/* ---- runtime --------------------------------------------------------- */

static uint64_t rt_now(void *ctx)
{
	struct sim_swim_node *n = ctx;
	return sim_now(n->sim);
}

static uint64_t rt_random(void *ctx)
{
	struct sim_swim_node *n = ctx;
	return sim_node_rand(n->sim, n->node);
}

static void rt_send_udp(void *ctx, const char *addr, const uint8_t *p,
			size_t len)
{
	struct sim_swim_node *n = ctx;
	int to = sim_swim_node_of(addr);
	if (to)
		sim_send(n->sim, n->node, to, SIM_SWIM_UDP, 0, p, len);
}

static void rt_send_sync(void *ctx, const char *addr, const uint8_t *p,
			 size_t len)
{
	struct sim_swim_node *n = ctx;
	int to = sim_swim_node_of(addr);
	if (to)
		sim_send(n->sim, n->node, to, SIM_SWIM_SYNC, 1, p, len);
}

static void rt_event(void *ctx, const struct swim_event *ev)
{
	struct sim_swim_node *n = ctx;
	if (n->opts->on_event)
		n->opts->on_event(n->opts->event_ctx, n->sim, n->node, ev);
}

static void rt_incarnation(void *ctx, uint64_t inc)
{
	struct sim_swim_node *n = ctx;
	struct rk_buf *d = sim_disk(n->sim, n->node);
	if (!n->opts->persist)
		return;
	rk_buf_clear(d);
	if (rk_buf_reserve(d, 8) == 0) {
		rk_put_le64(d->data, inc);
		d->len = 8;
	}
}

/* ---- program --------------------------------------------------------- */

static void rearm(struct sim_swim_node *n)
{
	sim_set_timer(n->sim, n->node, swim_next_deadline(n->swim));
}

static void node_free(void *state)
{
	struct sim_swim_node *n = state;
	if (!n)
		return;
	swim_free(n->swim);
	rk_buf_destroy(&n->reply);
	free(n);
}

static int node_boot(struct sim *sim, int node, void *prog_ctx, void **state)
{
	const struct sim_swim_opts *o = prog_ctx;
	struct sim_swim_node *n = calloc(1, sizeof(*n));
	char seeds[8][32];
	const char *seedp[8];
	int rc;

	*state = NULL;
	if (!n)
		return RK_ENOMEM;
	n->sim = sim;
	n->node = node;
	n->opts = o;
	rk_buf_init(&n->reply);
	sim_swim_addr(node, n->addr, sizeof(n->addr));

	struct swim_config cfg = o->cfg;
	cfg.id = (uint64_t)node;
	cfg.gossip_addr = n->addr;
	struct rk_buf *disk = sim_disk(sim, node);
	cfg.incarnation =
	    rk_buf_readable(disk) == 8 ? rk_get_le64(rk_buf_rptr(disk)) + 1 : 0;
	if (o->configure)
		o->configure(o->event_ctx, node, &cfg);
	struct swim_runtime rt = {
	    .ctx = n,
	    .codec = &gossip_wire_codec,
	    .log = sim_logger(sim, node),
	    .now_ms = rt_now,
	    .random = rt_random,
	    .send_udp = rt_send_udp,
	    .send_sync = rt_send_sync,
	    .on_event = rt_event,
	    .on_incarnation = rt_incarnation,
	};
	/* Published first: events fired inside swim_new/swim_join may look
	 * the node up. */
	*state = n;
	if ((rc = swim_new(&cfg, &rt, &n->swim)))
		goto fail;
	size_t ns = 0;
	for (int i = 0; i < o->n_seeds && i < 8; i++) {
		sim_swim_addr(o->seeds[i], seeds[ns], sizeof(seeds[ns]));
		seedp[ns] = seeds[ns];
		ns++;
	}
	if (o->n_seeds > 0 && (rc = swim_join(n->swim, seedp, ns)))
		goto fail;
	rearm(n);
	return 0;
fail:
	*state = NULL;
	node_free(n);
	return rc;
}

static void node_recv(void *state, int from, int channel, const uint8_t *p,
		      size_t len)
{
	struct sim_swim_node *n = state;
	char addr[32];
	sim_swim_addr(from, addr, sizeof(addr));
	switch (channel) {
	case SIM_SWIM_UDP:
		swim_recv_udp(n->swim, addr, p, len);
		break;
	case SIM_SWIM_SYNC:
		rk_buf_clear(&n->reply);
		if (swim_recv_sync(n->swim, addr, p, len, &n->reply) == 0)
			sim_send(n->sim, n->node, from, SIM_SWIM_SYNC_REPLY, 1,
				 rk_buf_rptr(&n->reply),
				 rk_buf_readable(&n->reply));
		break;
	case SIM_SWIM_SYNC_REPLY:
		swim_recv_sync_reply(n->swim, addr, p, len);
		break;
	}
	rearm(n);
}

static void node_tick(void *state)
{
	struct sim_swim_node *n = state;
	swim_tick(n->swim);
	rearm(n);
}

const struct sim_program sim_swim_program = {
    .name = "swim",
    .boot = node_boot,
    .recv = node_recv,
    .tick = node_tick,
    .kill = node_free,
    .free = node_free,
};

/* ---- views ----------------------------------------------------------- */

struct swim *sim_swim(const struct sim *sim, int node)
{
	struct sim_swim_node *n = sim_node_state(sim, node);
	return n ? n->swim : NULL;
}

void sim_swim_poke(struct sim *sim, int node)
{
	struct sim_swim_node *n = sim_node_state(sim, node);
	if (n)
		rearm(n);
}

int sim_swim_state(const struct sim *sim, int observer, int subject)
{
	struct swim *s = sim_swim(sim, observer);
	struct swim_member m;
	if (!s || swim_member_get(s, (uint64_t)subject, &m))
		return -1;
	return (int)m.state;
}

int sim_swim_all_see(const struct sim *sim, int subject, enum swim_state st)
{
	for (int i = 1; i <= sim_size(sim); i++)
		if (i != subject && sim_is_up(sim, i) &&
		    sim_swim_state(sim, i, subject) != (int)st)
			return 0;
	return 1;
}

int sim_swim_converged(const struct sim *sim)
{
	int n = sim_size(sim);
	for (int i = 1; i <= n; i++) {
		if (!sim_is_up(sim, i))
			continue;
		for (int j = 1; j <= n; j++) {
			if (j == i)
				continue;
			int st = sim_swim_state(sim, i, j);
			if (sim_is_up(sim, j) ? st != SWIM_ALIVE
					      : st == SWIM_ALIVE)
				return 0;
		}
	}
	return 1;
}

int sim_swim_pred_converged(struct sim *sim, void *ctx)
{
	(void)ctx;
	return sim_swim_converged(sim);
}

int sim_swim_cluster(struct sim **out, int n, uint64_t seed,
		     struct sim_swim_opts *o, const struct sim_link *link,
		     uint64_t timeout_ms)
{
	struct sim_config c;
	sim_config_defaults(&c);
	c.n_nodes = n;
	c.seed = seed;
	c.program = &sim_swim_program;
	c.program_ctx = o;
	if (link)
		c.link = *link;
	int rc = sim_new(&c, out);
	if (rc)
		return rc;
	/* The check is O(n^2): keep it from dominating large runs. */
	sim_set_check_interval(*out, n > 10 ? (uint64_t)n : 10);
	if (sim_run_until(*out, sim_swim_pred_converged, NULL, timeout_ms) != 1)
		return RK_ETIMEOUT;
	sim_set_check_interval(*out, 10);
	return 0;
}
