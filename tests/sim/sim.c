/* sim.c: the discrete-event core.  See sim.h for the model. */
#include "sim.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "hash.h"
#include "rng.h"

enum ev_kind {
	EV_MSG = 1,   /* deliver a message */
	EV_TIMER = 2, /* fire a node's timer */
};

/* One pending event. */
struct event {
	uint64_t at;	/* virtual time */
	uint64_t seq;	/* insertion order: the tie-break */
	uint64_t gen;	/* EV_TIMER: the node's timer generation */
	uint8_t *data;	/* EV_MSG: owned copy of the bytes */
	size_t len;	/* EV_MSG: bytes */
	int kind;	/* enum ev_kind */
	int node;	/* destination / timer owner */
	int from;	/* EV_MSG: sender */
	int channel;	/* EV_MSG: program's channel */
	uint32_t epoch; /* EV_TIMER: the owner's boot count */
};

/* One simulated node. */
struct node {
	struct sim *sim;	     /* back pointer, for the log sink */
	int up;			     /* booted and not killed */
	void *state;		     /* program state while up */
	uint32_t epoch;		     /* boots so far */
	uint64_t timer_gen;	     /* bumps on every (re)arm and disarm */
	uint64_t timer_at;	     /* armed time, UINT64_MAX: none */
	uint32_t slow_ms;	     /* extra delay on all its messages */
	int group;		     /* partition group */
	struct rk_rng rng;	     /* the node's own random stream */
	struct rk_logger log;	     /* tag "n<i>", virtual-time sink */
	struct rk_buf disk;	     /* survives kills */
	struct sim_node_stats stats; /* counters */
};

/* Open-addressing map from a directed or undirected pair to a link. */
struct pair_map {
	uint64_t *keys;	       /* 0: empty (pairs are never 0: nodes >= 1) */
	struct sim_link *vals; /* parallel to keys */
	size_t cap;	       /* power of two */
	size_t n;	       /* used slots */
};

struct sim {
	struct sim_config cfg;			/* copy */
	struct node *nodes;			/* owned: [0] unused, 1..n */
	uint64_t now;				/* virtual clock */
	uint64_t next_seq;			/* for events */
	struct event *heap;			/* owned: binary min-heap */
	size_t heap_n;				/* events in heap */
	size_t heap_cap;			/* capacity */
	struct rk_rng net_rng;			/* loss, delay, duplication */
	struct rk_rng test_rng;			/* sim_rand for tests */
	struct pair_map links;			/* directed overrides */
	struct pair_map blocks;			/* undirected blocks */
	uint64_t trace;				/* running hash of deliveries */
	uint64_t events;			/* processed */
	uint64_t check_ms;			/* sim_run_until granularity */
	int (*invariant)(struct sim *, void *); /* after every event */
	void *invariant_ctx;
};

/* ---- pair maps ------------------------------------------------------- */

static uint64_t pair_key(int a, int b)
{
	return ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
}

static size_t pair_slot(const struct pair_map *m, uint64_t key)
{
	uint64_t h = key * 0x9e3779b97f4a7c15ull;
	size_t i = (size_t)(h >> 20) & (m->cap - 1);
	while (m->keys[i] && m->keys[i] != key)
		i = (i + 1) & (m->cap - 1);
	return i;
}

static const struct sim_link *pair_get(const struct pair_map *m, uint64_t key)
{
	if (!m->n)
		return NULL;
	size_t i = pair_slot(m, key);
	return m->keys[i] ? &m->vals[i] : NULL;
}

static int pair_put(struct pair_map *m, uint64_t key, const struct sim_link *v)
{
	if (2 * (m->n + 1) > m->cap) {
		struct pair_map g = {.cap = m->cap ? 2 * m->cap : 64};
		g.keys = calloc(g.cap, sizeof(*g.keys));
		g.vals = calloc(g.cap, sizeof(*g.vals));
		if (!g.keys || !g.vals) {
			free(g.keys);
			free(g.vals);
			return RK_ENOMEM;
		}
		for (size_t i = 0; i < m->cap; i++)
			if (m->keys[i]) {
				size_t j = pair_slot(&g, m->keys[i]);
				g.keys[j] = m->keys[i];
				g.vals[j] = m->vals[i];
				g.n++;
			}
		free(m->keys);
		free(m->vals);
		*m = g;
	}
	size_t i = pair_slot(m, key);
	if (!m->keys[i])
		m->n++;
	m->keys[i] = key;
	m->vals[i] = *v;
	return 0;
}

static void pair_clear(struct pair_map *m)
{
	free(m->keys);
	free(m->vals);
	memset(m, 0, sizeof(*m));
}

/* ---- heap ------------------------------------------------------------ */

static int ev_less(const struct event *a, const struct event *b)
{
	return a->at < b->at || (a->at == b->at && a->seq < b->seq);
}

static int heap_push(struct sim *sim, struct event *ev)
{
	if (sim->heap_n == sim->heap_cap) {
		size_t cap = sim->heap_cap ? 2 * sim->heap_cap : 1024;
		struct event *h = realloc(sim->heap, cap * sizeof(*h));
		if (!h)
			return RK_ENOMEM;
		sim->heap = h;
		sim->heap_cap = cap;
	}
	ev->seq = sim->next_seq++;
	size_t i = sim->heap_n++;
	while (i > 0) {
		size_t p = (i - 1) / 2;
		if (!ev_less(ev, &sim->heap[p]))
			break;
		sim->heap[i] = sim->heap[p];
		i = p;
	}
	sim->heap[i] = *ev;
	return 0;
}

static struct event heap_pop(struct sim *sim)
{
	struct event top = sim->heap[0];
	struct event last = sim->heap[--sim->heap_n];
	size_t i = 0, n = sim->heap_n;
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= n)
			break;
		if (c + 1 < n && ev_less(&sim->heap[c + 1], &sim->heap[c]))
			c++;
		if (!ev_less(&sim->heap[c], &last))
			break;
		sim->heap[i] = sim->heap[c];
		i = c;
	}
	if (n)
		sim->heap[i] = last;
	return top;
}

/* ---- nodes ----------------------------------------------------------- */

static int valid_node(const struct sim *sim, int node)
{
	return node >= 1 && node <= sim->cfg.n_nodes;
}

static void log_sink(void *ctx, int level, const char *line)
{
	const struct node *nd = ctx;
	uint64_t t = nd->sim->now;
	fprintf(stderr, "%6" PRIu64 ".%03u %-5s %s\n", t / 1000,
		(unsigned)(t % 1000), rk_log_level_name(level), line);
}

static void node_reseed(struct sim *sim, int node)
{
	struct node *nd = &sim->nodes[node];
	rk_rng_seed(&nd->rng, sim->cfg.seed ^
				  (0x9e3779b97f4a7c15ull * (uint64_t)node) ^
				  (0xc2b2ae3d27d4eb4full * nd->epoch));
}

static int node_boot(struct sim *sim, int node)
{
	struct node *nd = &sim->nodes[node];
	nd->epoch++;
	node_reseed(sim, node);
	nd->up = 1;
	nd->timer_at = UINT64_MAX;
	nd->timer_gen++;
	int rc =
	    sim->cfg.program->boot(sim, node, sim->cfg.program_ctx, &nd->state);
	if (rc) {
		nd->up = 0;
		nd->state = NULL;
	}
	return rc;
}

void sim_config_defaults(struct sim_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->link.delay_min_ms = 1;
	cfg->link.delay_max_ms = 5;
	cfg->boot_all = 1;
	cfg->log_level = RK_LOG_WARN;
	const char *env = getenv("RINGKV_SIM_LOG");
	if (env && rk_log_level_parse(env) >= 0)
		cfg->log_level = rk_log_level_parse(env);
}

int sim_new(const struct sim_config *cfg, struct sim **out)
{
	*out = NULL;
	if (cfg->n_nodes < 1 || !cfg->program || !cfg->program->boot ||
	    cfg->link.delay_min_ms > cfg->link.delay_max_ms)
		return RK_EINVALID;
	struct sim *sim = calloc(1, sizeof(*sim));
	if (!sim)
		return RK_ENOMEM;
	sim->cfg = *cfg;
	sim->check_ms = 10;
	rk_rng_seed(&sim->net_rng, cfg->seed);
	rk_rng_seed(&sim->test_rng, cfg->seed ^ 0x5851f42d4c957f2dull);
	sim->nodes = calloc((size_t)cfg->n_nodes + 1, sizeof(*sim->nodes));
	if (!sim->nodes) {
		free(sim);
		return RK_ENOMEM;
	}
	for (int i = 1; i <= cfg->n_nodes; i++) {
		struct node *nd = &sim->nodes[i];
		char tag[16];
		snprintf(tag, sizeof(tag), "n%d", i);
		nd->sim = sim;
		nd->timer_at = UINT64_MAX;
		rk_logger_init(&nd->log, tag, cfg->log_level);
		nd->log.sink = log_sink;
		nd->log.sink_ctx = nd;
		rk_buf_init(&nd->disk);
	}
	if (cfg->boot_all)
		for (int i = 1; i <= cfg->n_nodes; i++) {
			int rc = node_boot(sim, i);
			if (rc) {
				sim_free(sim);
				return rc;
			}
		}
	*out = sim;
	return 0;
}

void sim_free(struct sim *sim)
{
	if (!sim)
		return;
	for (int i = 1; i <= sim->cfg.n_nodes; i++) {
		struct node *nd = &sim->nodes[i];
		if (nd->up && sim->cfg.program->free)
			sim->cfg.program->free(nd->state);
		rk_buf_destroy(&nd->disk);
	}
	for (size_t i = 0; i < sim->heap_n; i++)
		free(sim->heap[i].data);
	free(sim->heap);
	pair_clear(&sim->links);
	pair_clear(&sim->blocks);
	free(sim->nodes);
	free(sim);
}

/* ---- program side ---------------------------------------------------- */

uint64_t sim_now(const struct sim *sim)
{
	return sim->now;
}

uint64_t sim_node_rand(struct sim *sim, int node)
{
	return rk_rng_next(&sim->nodes[node].rng);
}

static const struct sim_link *link_for(const struct sim *sim, int a, int b)
{
	const struct sim_link *l = pair_get(&sim->links, pair_key(a, b));
	return l ? l : &sim->cfg.link;
}

static int blocked(const struct sim *sim, int a, int b)
{
	if (sim->nodes[a].group != sim->nodes[b].group)
		return 1;
	return pair_get(&sim->blocks, pair_key(a < b ? a : b, a < b ? b : a)) !=
	       NULL;
}

int sim_send(struct sim *sim, int from, int to, int channel, int reliable,
	     const uint8_t *p, size_t n)
{
	if (!valid_node(sim, from) || !valid_node(sim, to) ||
	    !sim->nodes[from].up)
		return 0;
	struct node *src = &sim->nodes[from];
	const struct sim_link *l = link_for(sim, from, to);
	src->stats.sent++;
	src->stats.bytes_sent += n;
	if (!reliable && l->drop > 0 &&
	    rk_rng_double(&sim->net_rng) < l->drop) {
		src->stats.lost++;
		return 0;
	}
	int copies = 1;
	if (!reliable && l->dup > 0 && rk_rng_double(&sim->net_rng) < l->dup)
		copies = 2;
	for (int c = 0; c < copies; c++) {
		uint64_t d =
		    l->delay_min_ms +
		    rk_rng_below(&sim->net_rng,
				 (uint64_t)(l->delay_max_ms - l->delay_min_ms) +
				     1);
		if (!reliable && l->reorder > 0 &&
		    rk_rng_double(&sim->net_rng) < l->reorder)
			d += rk_rng_below(&sim->net_rng,
					  (uint64_t)l->reorder_ms + 1);
		d += src->slow_ms + sim->nodes[to].slow_ms;
		struct event ev = {.at = sim->now + d,
				   .kind = EV_MSG,
				   .node = to,
				   .from = from,
				   .channel = channel,
				   .len = n};
		ev.data = malloc(n ? n : 1);
		if (!ev.data)
			return RK_ENOMEM;
		if (n)
			memcpy(ev.data, p, n);
		if (heap_push(sim, &ev)) {
			free(ev.data);
			return RK_ENOMEM;
		}
	}
	return 0;
}

void sim_set_timer(struct sim *sim, int node, uint64_t at)
{
	struct node *nd = &sim->nodes[node];
	if (!nd->up || at == nd->timer_at)
		return;
	nd->timer_gen++;
	nd->timer_at = at;
	if (at == UINT64_MAX)
		return;
	struct event ev = {.at = at < sim->now ? sim->now : at,
			   .kind = EV_TIMER,
			   .node = node,
			   .gen = nd->timer_gen,
			   .epoch = nd->epoch};
	if (heap_push(sim, &ev))
		fprintf(stderr, "sim: out of memory arming a timer\n");
}

const struct rk_logger *sim_logger(const struct sim *sim, int node)
{
	return &sim->nodes[node].log;
}

struct rk_buf *sim_disk(struct sim *sim, int node)
{
	return &sim->nodes[node].disk;
}

void *sim_node_state(const struct sim *sim, int node)
{
	if (!valid_node(sim, node) || !sim->nodes[node].up)
		return NULL;
	return sim->nodes[node].state;
}

/* ---- running --------------------------------------------------------- */

static void deliver(struct sim *sim, struct event *ev)
{
	struct node *dst = &sim->nodes[ev->node];
	struct node *src = &sim->nodes[ev->from];
	if (!dst->up || blocked(sim, ev->from, ev->node)) {
		src->stats.lost++;
		return;
	}
	uint64_t mix = ev->at * 0x9e3779b97f4a7c15ull ^
		       ((uint64_t)ev->from << 40) ^ ((uint64_t)ev->node << 16) ^
		       (uint64_t)ev->channel;
	sim->trace = rk_hash_seeded(ev->data, ev->len, sim->trace ^ mix);
	dst->stats.delivered++;
	sim->cfg.program->recv(dst->state, ev->from, ev->channel, ev->data,
			       ev->len);
}

/* Runs one event.  Returns the invariant's verdict (0: fine). */
static int step(struct sim *sim)
{
	struct event ev = heap_pop(sim);
	sim->now = ev.at;
	sim->events++;
	if (ev.kind == EV_MSG) {
		deliver(sim, &ev);
		free(ev.data);
	} else {
		struct node *nd = &sim->nodes[ev.node];
		if (!nd->up || ev.epoch != nd->epoch || ev.gen != nd->timer_gen)
			return 0;
		nd->timer_at = UINT64_MAX;
		sim->cfg.program->tick(nd->state);
	}
	if (sim->invariant)
		return sim->invariant(sim, sim->invariant_ctx);
	return 0;
}

int sim_run_for(struct sim *sim, uint64_t ms)
{
	uint64_t end = sim->now + ms;
	while (sim->heap_n && sim->heap[0].at <= end) {
		int rc = step(sim);
		if (rc)
			return rc;
	}
	sim->now = end;
	return 0;
}

int sim_run_until(struct sim *sim, int (*pred)(struct sim *, void *), void *ctx,
		  uint64_t timeout_ms)
{
	uint64_t end = sim->now + timeout_ms;
	for (;;) {
		if (pred(sim, ctx))
			return 1;
		if (sim->now >= end)
			return 0;
		uint64_t step_ms = end - sim->now;
		if (step_ms > sim->check_ms)
			step_ms = sim->check_ms;
		int rc = sim_run_for(sim, step_ms);
		if (rc)
			return rc < 0 ? rc : -rc;
	}
}

void sim_set_check_interval(struct sim *sim, uint64_t ms)
{
	sim->check_ms = ms ? ms : 1;
}

void sim_set_invariant(struct sim *sim, int (*check)(struct sim *, void *),
		       void *ctx)
{
	sim->invariant = check;
	sim->invariant_ctx = ctx;
}

/* ---- faults ---------------------------------------------------------- */

int sim_kill(struct sim *sim, int node)
{
	if (!valid_node(sim, node) || !sim->nodes[node].up)
		return RK_EINVALID;
	struct node *nd = &sim->nodes[node];
	if (sim->cfg.program->kill)
		sim->cfg.program->kill(nd->state);
	nd->state = NULL;
	nd->up = 0;
	nd->timer_at = UINT64_MAX;
	nd->timer_gen++;
	return 0;
}

int sim_revive(struct sim *sim, int node)
{
	if (!valid_node(sim, node) || sim->nodes[node].up)
		return RK_EINVALID;
	return node_boot(sim, node);
}

void sim_partition(struct sim *sim, int a, int b)
{
	static const struct sim_link none;
	if (!valid_node(sim, a) || !valid_node(sim, b))
		return;
	if (pair_put(&sim->blocks, pair_key(a < b ? a : b, a < b ? b : a),
		     &none))
		fprintf(stderr, "sim: out of memory partitioning\n");
}

void sim_set_group(struct sim *sim, int node, int group)
{
	if (valid_node(sim, node))
		sim->nodes[node].group = group;
}

void sim_partition_sets(struct sim *sim, const int *side_a, size_t na)
{
	for (int i = 1; i <= sim->cfg.n_nodes; i++)
		sim->nodes[i].group = 0;
	for (size_t i = 0; i < na; i++)
		sim_set_group(sim, side_a[i], 1);
}

void sim_heal_all(struct sim *sim)
{
	for (int i = 1; i <= sim->cfg.n_nodes; i++)
		sim->nodes[i].group = 0;
	pair_clear(&sim->blocks);
}

void sim_set_default_link(struct sim *sim, const struct sim_link *l)
{
	sim->cfg.link = *l;
}

int sim_set_link(struct sim *sim, int a, int b, const struct sim_link *l)
{
	if (!valid_node(sim, a) || !valid_node(sim, b) ||
	    l->delay_min_ms > l->delay_max_ms)
		return RK_EINVALID;
	return pair_put(&sim->links, pair_key(a, b), l);
}

void sim_set_slow(struct sim *sim, int node, uint32_t ms)
{
	if (valid_node(sim, node))
		sim->nodes[node].slow_ms = ms;
}

/* ---- observation ----------------------------------------------------- */

int sim_size(const struct sim *sim)
{
	return sim->cfg.n_nodes;
}

uint64_t sim_seed(const struct sim *sim)
{
	return sim->cfg.seed;
}

int sim_is_up(const struct sim *sim, int node)
{
	return valid_node(sim, node) && sim->nodes[node].up;
}

uint32_t sim_boots(const struct sim *sim, int node)
{
	return valid_node(sim, node) ? sim->nodes[node].epoch : 0;
}

uint64_t sim_rand(struct sim *sim)
{
	return rk_rng_next(&sim->test_rng);
}

double sim_rand_double(struct sim *sim)
{
	return rk_rng_double(&sim->test_rng);
}

uint64_t sim_trace_hash(const struct sim *sim)
{
	return sim->trace;
}

void sim_node_stats(const struct sim *sim, int node, struct sim_node_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (valid_node(sim, node))
		*out = sim->nodes[node].stats;
}

uint64_t sim_events(const struct sim *sim)
{
	return sim->events;
}
