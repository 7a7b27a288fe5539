/* cluster.c: see cluster.h. */
#include "cluster.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "paxos_wire.h"

struct cl cl;
const uint64_t cl_rf3[3] = {1, 2, 3};

static struct paxos_config base_cfg;

struct paxos_value cl_str(const char *s)
{
	struct paxos_value v = {0};
	if (s) {
		v.present = 1;
		v.data = (const uint8_t *)s;
		v.len = strlen(s);
	}
	return v;
}

int cl_value_is(const struct paxos_value *v, const char *s)
{
	struct paxos_value w = cl_str(s);
	return paxos_value_eq(v, &w);
}

rk_ts cl_ts(uint64_t hlc, uint64_t node)
{
	rk_ts t = {hlc, node};
	return t;
}

static struct cl_node *node_of(uint64_t id)
{
	return id >= 1 && id <= CL_NODES && cl.nodes[id].exists ? &cl.nodes[id]
								: NULL;
}

/* ---- runtime --------------------------------------------------------- */

static uint64_t rt_now(void *ctx)
{
	(void)ctx;
	return cl.now;
}

static uint64_t rt_random(void *ctx)
{
	(void)ctx;
	/* splitmix64: deterministic per test. */
	uint64_t z = (cl.rng += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static rk_ts rt_tick(void *ctx)
{
	struct cl_node *n = ctx;
	return rk_hlc_tick(&n->hlc, cl.now);
}

static void rt_observe(void *ctx, rk_ts t)
{
	struct cl_node *n = ctx;
	rk_hlc_observe(&n->hlc, t.hlc);
}

static int rt_up(void *ctx, uint64_t id)
{
	(void)ctx;
	return id >= 1 && id <= CL_NODES ? cl.nodes[id].up : 1;
}

static void rt_send(void *ctx, uint64_t to, const struct paxos_msg *m)
{
	struct cl_node *n = ctx;
	struct rk_buf b;
	rk_buf_init(&b);
	cr_assert_eq(paxos_wire_encode(m, &b), 0, "encode %s",
		     paxos_msg_type_name(m->type));
	cr_assert_lt(cl.n_msgs, CL_MAX_MSGS);
	struct cl_msg *cm = &cl.msgs[cl.n_msgs++];
	memset(cm, 0, sizeof(*cm));
	cm->from = n->id;
	cm->to = to;
	cm->bytes = b.data;
	cm->len = b.len;
	cm->type = (int)m->type;
	cm->wave = cl.wave;
	cl.sent_by_type[m->type]++;
}

static void rt_reply(void *ctx, uint64_t token, const struct paxos_result *r)
{
	struct cl_node *n = ctx;
	cr_assert_lt(cl.n_replies, CL_MAX_REPLIES);
	struct cl_reply *c = &cl.replies[cl.n_replies++];
	c->node = n->id;
	c->token = token;
	c->r = *r;
	c->at = cl.now;
	cr_assert_leq(r->value.len, sizeof(c->val));
	if (r->value.len)
		memcpy(c->val, r->value.data, r->value.len);
	c->r.value.data = r->value.len ? c->val : NULL;
}

static struct cl_rec *rec_find(struct cl_node *n, const uint8_t *key,
			       size_t klen)
{
	for (size_t i = 0; i < n->n_store; i++)
		if (strlen(n->store[i].key) == klen &&
		    !memcmp(n->store[i].key, key, klen))
			return &n->store[i];
	return NULL;
}

static int rt_read(void *ctx, const uint8_t *key, size_t klen,
		   struct paxos_value *v, rk_ts *ts)
{
	struct cl_node *n = ctx;
	const struct cl_rec *r = rec_find(n, key, klen);
	memset(v, 0, sizeof(*v));
	*ts = cl_ts(0, 0);
	if (!r)
		return 0;
	v->present = r->present;
	v->data = r->len ? r->val : NULL;
	v->len = r->len;
	*ts = r->ts;
	return 0;
}

static void rec_apply(struct cl_node *n, const uint8_t *key, size_t klen,
		      const struct paxos_value *v, rk_ts ts)
{
	struct cl_rec *r = rec_find(n, key, klen);
	if (!r) {
		cr_assert_lt(n->n_store, CL_MAX_KEYS);
		cr_assert_lt(klen, sizeof(r->key));
		r = &n->store[n->n_store++];
		memset(r, 0, sizeof(*r));
		memcpy(r->key, key, klen);
	} else if (rk_ts_cmp(ts, r->ts) <= 0) {
		return; /* last writer wins */
	}
	cr_assert_leq(v->len, sizeof(r->val));
	r->present = v->present;
	r->len = v->present ? v->len : 0;
	if (r->len)
		memcpy(r->val, v->data, r->len);
	r->ts = ts;
}

static int rt_apply(void *ctx, const uint8_t *key, size_t klen,
		    const struct paxos_value *v, rk_ts ts)
{
	rec_apply(ctx, key, klen, v, ts);
	return 0;
}

static void rt_persist(void *ctx, const uint8_t *key, size_t klen,
		       const struct paxos_acceptor_state *s, uint64_t token)
{
	struct cl_node *n = ctx;
	struct rk_buf b;
	size_t i;
	rk_buf_init(&b);
	cr_assert_eq(paxos_wire_encode_state(key, klen, s, &b), 0);
	cr_assert_eq(token, n->last_token + 1, "tokens grow by one");
	n->last_token = token;
	n->persist_calls++;
	if (!s)
		n->prune_calls++;
	for (i = 0; i < n->n_persisted; i++)
		if (strlen(n->persisted_key[i]) == klen &&
		    !memcmp(n->persisted_key[i], key, klen))
			break;
	if (i == n->n_persisted) {
		cr_assert_lt(i, CL_MAX_KEYS);
		cr_assert_lt(klen, sizeof(n->persisted_key[i]));
		memset(n->persisted_key[i], 0, sizeof(n->persisted_key[i]));
		memcpy(n->persisted_key[i], key, klen);
		n->n_persisted++;
	}
	free(n->persisted[i]);
	n->persisted[i] = b.data;
	n->persisted_len[i] = b.len;
}

static const struct paxos_runtime runtime_tmpl = {
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

/* ---- life ------------------------------------------------------------ */

static void boot(struct cl_node *n, const struct paxos_config *cfg)
{
	struct paxos_config c = cfg ? *cfg : base_cfg;
	struct paxos_runtime rt = runtime_tmpl;
	c.id = n->id;
	rt.ctx = n;
	rt.log = &n->log;
	/* A restarted node's clock starts above what it issued. */
	rk_hlc_observe(&n->hlc, cl.now << RK_HLC_COUNTER_BITS);
	n->last_token = 0;
	cr_assert_eq(paxos_new(&c, &rt, &n->px), 0);
	for (size_t i = 0; i < n->n_persisted; i++) {
		const uint8_t *key;
		size_t klen;
		struct paxos_acceptor_state s;
		void *owner;
		cr_assert_eq(paxos_wire_decode_state(n->persisted[i],
						     n->persisted_len[i], &key,
						     &klen, &s, &owner),
			     0);
		cr_assert_eq(paxos_acceptor_restore(n->px, key, klen, &s), 0);
		paxos_wire_release(owner);
	}
}

void cl_start(int n, const struct paxos_config *cfg)
{
	memset(&cl, 0, sizeof(cl));
	cl.now = 1000000;
	cl.rng = 42;
	paxos_config_defaults(&base_cfg);
	if (cfg)
		base_cfg = *cfg;
	const char *lv = getenv("RINGKV_SIM_LOG");
	for (int i = 1; i <= n && i <= CL_NODES; i++) {
		struct cl_node *nd = &cl.nodes[i];
		char tag[8];
		nd->id = (uint64_t)i;
		nd->exists = 1;
		nd->up = 1;
		snprintf(tag, sizeof(tag), "n%d", i);
		rk_logger_init(&nd->log, tag,
			       lv ? rk_log_level_parse(lv) : RK_LOG_ERROR);
		rk_hlc_init(&nd->hlc, nd->id);
		boot(nd, NULL);
	}
}

void cl_stop(void)
{
	for (int i = 1; i <= CL_NODES; i++) {
		struct cl_node *n = &cl.nodes[i];
		paxos_free(n->px);
		n->px = NULL;
		for (size_t k = 0; k < n->n_persisted; k++)
			free(n->persisted[k]);
	}
	for (size_t i = 0; i < cl.n_msgs; i++)
		free(cl.msgs[i].bytes);
	memset(&cl, 0, sizeof(cl));
}

void cl_restart(uint64_t id, const struct paxos_config *cfg)
{
	struct cl_node *n = node_of(id);
	cr_assert(n);
	paxos_free(n->px);
	n->px = NULL;
	boot(n, cfg);
}

/* ---- delivery -------------------------------------------------------- */

void *cl_open(size_t i, struct paxos_msg *m)
{
	void *owner;
	cr_assert_lt(i, cl.n_msgs);
	cr_assert_eq(
	    paxos_wire_decode(cl.msgs[i].bytes, cl.msgs[i].len, m, &owner), 0);
	return owner;
}

long cl_find(size_t i, int type, uint64_t to)
{
	for (; i < cl.n_msgs; i++)
		if (cl.msgs[i].type == type && (!to || cl.msgs[i].to == to))
			return (long)i;
	return -1;
}

void cl_fsync(uint64_t id)
{
	struct cl_node *n = node_of(id);
	if (n && n->px)
		paxos_persisted(n->px, n->last_token);
}

static void auto_fsync(void)
{
	for (int i = 1; i <= CL_NODES; i++)
		if (cl.nodes[i].exists && !cl.nodes[i].manual)
			cl_fsync((uint64_t)i);
}

static void deliver(size_t i)
{
	struct cl_msg *cm = &cl.msgs[i];
	struct paxos_msg m;
	void *owner = cl_open(i, &m);
	struct cl_node *n = node_of(cm->to);
	if (!n || !n->up || (cl.filter && cl.filter(cm, &m))) {
		cm->dropped = 1;
	} else {
		if (cl.hook)
			cl.hook(cm, &m);
		cm->delivered = 1;
		cr_assert_eq(paxos_recv(n->px, cm->from, &m), 0);
	}
	paxos_wire_release(owner);
	auto_fsync();
}

int cl_wave(void)
{
	size_t end = cl.n_msgs;
	int n = 0;
	cl.wave++;
	for (; cl.next_deliver < end; cl.next_deliver++, n++)
		deliver(cl.next_deliver);
	return n;
}

int cl_settle(void)
{
	int waves = 0;
	auto_fsync();
	while (cl.next_deliver < cl.n_msgs) {
		cl_wave();
		waves++;
	}
	return waves;
}

int cl_advance(uint64_t limit)
{
	uint64_t d = UINT64_MAX;
	for (int i = 1; i <= CL_NODES; i++)
		if (cl.nodes[i].exists) {
			uint64_t x = paxos_next_deadline(cl.nodes[i].px);
			if (x < d)
				d = x;
		}
	if (d == UINT64_MAX || d > limit)
		return 0;
	if (d > cl.now)
		cl.now = d;
	for (int i = 1; i <= CL_NODES; i++)
		if (cl.nodes[i].exists)
			paxos_tick(cl.nodes[i].px);
	cl_settle();
	return 1;
}

const struct cl_reply *cl_reply_of(uint64_t token)
{
	for (size_t i = 0; i < cl.n_replies; i++)
		if (cl.replies[i].token == token)
			return &cl.replies[i];
	return NULL;
}

const struct cl_reply *cl_run(uint64_t token, uint64_t ms)
{
	uint64_t limit = cl.now + ms;
	cl_settle();
	while (!cl_reply_of(token) && cl_advance(limit))
		;
	return cl_reply_of(token);
}

void cl_inject(uint64_t from, uint64_t id, const struct paxos_msg *m)
{
	struct rk_buf b;
	struct paxos_msg d;
	void *owner;
	struct cl_node *n = node_of(id);
	cr_assert(n);
	rk_buf_init(&b);
	cr_assert_eq(paxos_wire_encode(m, &b), 0);
	cr_assert_eq(paxos_wire_decode(b.data, b.len, &d, &owner), 0);
	cr_assert_eq(paxos_recv(n->px, from, &d), 0);
	paxos_wire_release(owner);
	rk_buf_destroy(&b);
	auto_fsync();
}

void cl_store_put(uint64_t id, const char *key, const char *val, rk_ts ts)
{
	struct cl_node *n = node_of(id);
	struct paxos_value v = cl_str(val);
	cr_assert(n);
	rec_apply(n, (const uint8_t *)key, strlen(key), &v, ts);
}

const struct cl_rec *cl_store_get(uint64_t id, const char *key)
{
	struct cl_node *n = node_of(id);
	return n ? rec_find(n, (const uint8_t *)key, strlen(key)) : NULL;
}
