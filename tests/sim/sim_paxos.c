/* sim_paxos.c: struct paxos as a simulator program, its clients, and the
 * safety checker.  See sim_paxos.h. */
#include "sim_paxos.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "lincheck.h"
#include "paxos_wire.h"

/* Disk record kinds: [u8 kind][u32 len][payload]. */
enum {
	DISK_STATE = 1, /* an AcceptorState (paxos_wire_encode_state) */
	DISK_REC = 2,	/* a store record, see rec_encode */
	DISK_HWM = 3,	/* u64: the clock never issues at or above this
			   without first raising it */
};

/* The clock's persisted upper bound runs this far ahead of what it
 * issued, so it is written about once a second of clock. */
#define HWM_STEP_MS 1000u

/* Client operations, as in the request. */
enum {
	OP_CAS = 1,
	OP_READ = 2,
	OP_WRITE = 3,
	OP_PIA = 4, /* put_if_absent */
	OP_DEL = 5, /* delete_if */
};

#define REQ_LEN 24
#define RESP_LEN 19

/* ---- the world: history, checker, stats ------------------------------- */

/* A timestamp -> index map (open addressing; zero timestamps never go
 * in). */
struct tsmap {
	rk_ts *keys;
	uint32_t *vals;
	size_t cap, n;
};

/* One proposal, by ballot. */
struct prop_rec {
	rk_ts ballot, origin, base;
	int present;
	int64_t val;
	uint32_t mask; /* acceptors that made it durable */
	int chosen;
	uint32_t inst; /* its instance */
};

/* One instance's decision as far as seen. */
struct inst_rec {
	int has;
	rk_ts origin;
	int present;
	int64_t val;
};

struct key_track {
	struct prop_rec *props;
	size_t n_props, cap_props;
	struct tsmap by_ballot; /* ballot -> props index */
	struct tsmap decisions; /* commit ballot or origin -> instance */
	struct inst_rec *insts; /* by instance number */
	size_t cap_insts;
	uint32_t max_inst;
};

struct sim_paxos_world {
	struct sim_paxos_opts o;
	struct key_track keys[SIM_PAXOS_MAX_KEYS];
	char violation[512];
	int violated;
	char *hist; /* JSON lines */
	size_t hist_len, hist_cap;
	uint64_t hist_time;
	struct sim_paxos_stats st;
};

static void tsmap_free(struct tsmap *m)
{
	free(m->keys);
	free(m->vals);
	memset(m, 0, sizeof(*m));
}

static size_t ts_slot(const struct tsmap *m, rk_ts t)
{
	uint64_t h =
	    (t.hlc * 0x9e3779b97f4a7c15ull) ^ (t.node * 0xc2b2ae3d27d4eb4full);
	size_t i = (size_t)(h >> 17) & (m->cap - 1);
	while (!rk_ts_is_zero(m->keys[i]) && rk_ts_cmp(m->keys[i], t))
		i = (i + 1) & (m->cap - 1);
	return i;
}

static int tsmap_get(const struct tsmap *m, rk_ts t, uint32_t *v)
{
	if (!m->n)
		return 0;
	size_t i = ts_slot(m, t);
	if (rk_ts_is_zero(m->keys[i]))
		return 0;
	*v = m->vals[i];
	return 1;
}

static int tsmap_put(struct tsmap *m, rk_ts t, uint32_t v)
{
	if (2 * (m->n + 1) > m->cap) {
		struct tsmap g = {.cap = m->cap ? 2 * m->cap : 256};
		g.keys = calloc(g.cap, sizeof(*g.keys));
		g.vals = calloc(g.cap, sizeof(*g.vals));
		if (!g.keys || !g.vals) {
			free(g.keys);
			free(g.vals);
			return RK_ENOMEM;
		}
		for (size_t i = 0; i < m->cap; i++)
			if (!rk_ts_is_zero(m->keys[i])) {
				size_t j = ts_slot(&g, m->keys[i]);
				g.keys[j] = m->keys[i];
				g.vals[j] = m->vals[i];
				g.n++;
			}
		tsmap_free(m);
		*m = g;
	}
	size_t i = ts_slot(m, t);
	if (rk_ts_is_zero(m->keys[i]))
		m->n++;
	m->keys[i] = t;
	m->vals[i] = v;
	return 0;
}

void sim_paxos_opts_defaults(struct sim_paxos_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->n_servers = 5;
	o->n_clients = 16;
	o->n_keys = 4;
	o->rf = 3;
	o->route_primary = 1;
	o->fsync_min_ms = 0;
	o->fsync_max_ms = 3;
	o->skew_max_ms = 20;
	paxos_config_defaults(&o->paxos);
	o->paxos.round_timeout_ms = 100;
	o->paxos.contention_timeout_ms = 500;
	o->op_deadline_ms = 1000;
	o->client_timeout_ms = 1500;
	o->think_max_ms = 10;
	o->ops_until_ms = 15000;
	o->w_cas = 45;
	o->w_read = 25;
	o->w_write = 10;
	o->w_pia = 10;
	o->w_del = 10;
	o->strict_commit_check = 1;
}

int sim_paxos_world_new(const struct sim_paxos_opts *o,
			struct sim_paxos_world **out)
{
	*out = NULL;
	if (o->n_servers < 1 || o->n_servers > SIM_PAXOS_MAX_SERVERS ||
	    o->n_clients < 0 || o->n_clients > SIM_PAXOS_MAX_CLIENTS ||
	    o->n_keys < 1 || o->n_keys > SIM_PAXOS_MAX_KEYS || o->rf < 1 ||
	    o->rf > o->n_servers || o->fsync_min_ms > o->fsync_max_ms)
		return RK_EINVALID;
	struct sim_paxos_world *w = calloc(1, sizeof(*w));
	if (!w)
		return RK_ENOMEM;
	w->o = *o;
	*out = w;
	return 0;
}

void sim_paxos_world_free(struct sim_paxos_world *w)
{
	if (!w)
		return;
	for (int k = 0; k < SIM_PAXOS_MAX_KEYS; k++) {
		struct key_track *t = &w->keys[k];
		free(t->props);
		free(t->insts);
		tsmap_free(&t->by_ballot);
		tsmap_free(&t->decisions);
	}
	free(w->hist);
	free(w);
}

const char *sim_paxos_violation(const struct sim_paxos_world *w)
{
	return w->violated ? w->violation : NULL;
}

int sim_paxos_invariant(struct sim *sim, void *world)
{
	(void)sim;
	const struct sim_paxos_world *w = world;
	return w->violated ? -1 : 0;
}

void sim_paxos_stats(const struct sim_paxos_world *w,
		     struct sim_paxos_stats *out)
{
	*out = w->st;
}

void sim_paxos_replicas(const struct sim_paxos_world *w, int k, uint64_t *out)
{
	for (int i = 0; i < w->o.rf; i++)
		out[i] = (uint64_t)((k + i) % w->o.n_servers + 1);
}

static void violate(struct sim_paxos_world *w, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void violate(struct sim_paxos_world *w, const char *fmt, ...)
{
	if (w->violated)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(w->violation, sizeof(w->violation), fmt, ap);
	va_end(ap);
	w->violated = 1;
}

/* Key index of "k<i>", or -1. */
static int key_index(const struct sim_paxos_world *w, const uint8_t *key,
		     size_t klen)
{
	if (klen != 2 || key[0] != 'k' || key[1] < '0' ||
	    key[1] >= '0' + w->o.n_keys)
		return -1;
	return key[1] - '0';
}

static int64_t val_int(const struct paxos_value *v)
{
	return v->present && v->len == 8 ? (int64_t)rk_get_le64(v->data) : 0;
}

static int inst_of_base(struct sim_paxos_world *w, struct key_track *t, int k,
			rk_ts base, uint32_t *inst)
{
	uint32_t i;
	if (rk_ts_is_zero(base)) {
		*inst = 1;
		return 0;
	}
	if (!tsmap_get(&t->decisions, base, &i)) {
		violate(w,
			"k%d: a proposal follows %" PRIu64 ".%" PRIu64
			", which is no decision",
			k, base.hlc, base.node);
		return -1;
	}
	*inst = i + 1;
	return 0;
}

/* Records that instance inst decided (origin, value); checks it is the
 * only decision of the instance. */
static void inst_decide(struct sim_paxos_world *w, struct key_track *t, int k,
			uint32_t inst, rk_ts origin, int present, int64_t val,
			const char *how)
{
	if (inst >= t->cap_insts) {
		size_t cap = t->cap_insts ? 2 * t->cap_insts : 64;
		while (cap <= inst)
			cap *= 2;
		struct inst_rec *r = realloc(t->insts, cap * sizeof(*r));
		if (!r) {
			violate(w, "out of memory");
			return;
		}
		memset(r + t->cap_insts, 0, (cap - t->cap_insts) * sizeof(*r));
		t->insts = r;
		t->cap_insts = cap;
	}
	struct inst_rec *r = &t->insts[inst];
	if (!r->has) {
		r->has = 1;
		r->origin = origin;
		r->present = present;
		r->val = val;
		if (inst > t->max_inst)
			t->max_inst = inst;
		w->st.instances++;
		return;
	}
	if (rk_ts_cmp(r->origin, origin) || r->present != present ||
	    r->val != val)
		violate(w,
			"k%d instance %u: two decisions: %s%" PRId64
			" (origin %" PRIu64 ".%" PRIu64 ") and %s%" PRId64
			" (origin %" PRIu64 ".%" PRIu64 ", %s)",
			k, inst, r->present ? "" : "absent/", r->val,
			r->origin.hlc, r->origin.node, present ? "" : "absent/",
			val, origin.hlc, origin.node, how);
}

static struct prop_rec *prop_find(struct key_track *t, rk_ts ballot)
{
	uint32_t i;
	return tsmap_get(&t->by_ballot, ballot, &i) ? &t->props[i] : NULL;
}

static int prop_same(const struct prop_rec *r, const struct paxos_proposal *p)
{
	return !rk_ts_cmp(r->origin, p->origin) &&
	       !rk_ts_cmp(r->base, p->base) && r->present == p->value.present &&
	       r->val == val_int(&p->value);
}

/* A PROPOSE left a proposer. */
static void obs_propose(struct sim_paxos_world *w, int k,
			const struct paxos_proposal *p)
{
	struct key_track *t = &w->keys[k];
	struct prop_rec *r = prop_find(t, p->ballot);
	if (r) {
		if (!prop_same(r, p))
			violate(w,
				"k%d: ballot %" PRIu64 ".%" PRIu64
				" carries two proposals",
				k, p->ballot.hlc, p->ballot.node);
		return;
	}
	if (t->n_props == t->cap_props) {
		size_t cap = t->cap_props ? 2 * t->cap_props : 256;
		struct prop_rec *n = realloc(t->props, cap * sizeof(*n));
		if (!n) {
			violate(w, "out of memory");
			return;
		}
		t->props = n;
		t->cap_props = cap;
	}
	r = &t->props[t->n_props];
	memset(r, 0, sizeof(*r));
	r->ballot = p->ballot;
	r->origin = p->origin;
	r->base = p->base;
	r->present = p->value.present;
	r->val = val_int(&p->value);
	if (inst_of_base(w, t, k, p->base, &r->inst))
		return;
	if (tsmap_put(&t->by_ballot, p->ballot, (uint32_t)t->n_props)) {
		violate(w, "out of memory");
		return;
	}
	t->n_props++;
	w->st.proposals++;
}

/* Server node made a state durable that holds an accepted proposal. */
static void obs_durable(struct sim_paxos_world *w, int node, int k,
			const struct paxos_acceptor_state *s)
{
	struct key_track *t = &w->keys[k];
	const struct paxos_proposal *p = &s->accepted;
	if (rk_ts_is_zero(p->ballot))
		return;
	struct prop_rec *r = prop_find(t, p->ballot);
	if (!r) {
		violate(w, "k%d: n%d accepted a proposal nobody sent", k, node);
		return;
	}
	if (!prop_same(r, p)) {
		violate(w,
			"k%d: n%d accepted another proposal under ballot "
			"%" PRIu64 ".%" PRIu64,
			k, node, p->ballot.hlc, p->ballot.node);
		return;
	}
	r->mask |= 1u << node;
	if (!r->chosen && __builtin_popcount(r->mask) >= w->o.rf / 2 + 1) {
		r->chosen = 1;
		w->st.chosen++;
		inst_decide(w, t, k, r->inst, r->origin, r->present, r->val,
			    "chosen");
	}
}

/* A COMMIT left a proposer. */
static void obs_commit(struct sim_paxos_world *w, int k,
		       const struct paxos_proposal *p)
{
	struct key_track *t = &w->keys[k];
	struct prop_rec *r = prop_find(t, p->ballot);
	uint32_t old;
	if (!r || !prop_same(r, p)) {
		violate(w, "k%d: commit of a proposal nobody proposed", k);
		return;
	}
	w->st.commits++;
	if (w->o.strict_commit_check && !r->chosen)
		violate(w,
			"k%d: commit of ballot %" PRIu64 ".%" PRIu64
			" before a majority made it durable",
			k, p->ballot.hlc, p->ballot.node);
	inst_decide(w, t, k, r->inst, r->origin, r->present, r->val,
		    "committed");
	rk_ts names[2] = {p->ballot, p->origin};
	for (int i = 0; i < 2; i++) {
		if (tsmap_get(&t->decisions, names[i], &old)) {
			if (old != r->inst)
				violate(w,
					"k%d: %" PRIu64 ".%" PRIu64
					" names two decisions",
					k, names[i].hlc, names[i].node);
			continue;
		}
		if (tsmap_put(&t->decisions, names[i], r->inst))
			violate(w, "out of memory");
	}
}

/* ---- history ---------------------------------------------------------- */

static void hist_add(struct sim_paxos_world *w, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void hist_add(struct sim_paxos_world *w, const char *fmt, ...)
{
	char line[256];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(line))
		return;
	if (w->hist_len + (size_t)n + 1 > w->hist_cap) {
		size_t cap = w->hist_cap ? 2 * w->hist_cap : 1 << 16;
		char *h = realloc(w->hist, cap);
		if (!h)
			return;
		w->hist = h;
		w->hist_cap = cap;
	}
	memcpy(w->hist + w->hist_len, line, (size_t)n);
	w->hist_len += (size_t)n;
	w->hist[w->hist_len] = '\0';
}

const char *sim_paxos_history(const struct sim_paxos_world *w, size_t *len)
{
	*len = w->hist_len;
	return w->hist ? w->hist : "";
}

int sim_paxos_check_history(const struct sim_paxos_world *w, char *why,
			    size_t cap)
{
	struct lincheck_history *h = lincheck_history_new("sim");
	int verdict = 0, rc = 0;
	if (why && cap)
		why[0] = '\0';
	if (!h)
		return RK_ENOMEM;
	const char *p = w->hist ? w->hist : "", *end = p + w->hist_len;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
		if ((rc = lincheck_history_feed(h, p, n)))
			break;
		p += n + 1;
	}
	if (!rc)
		rc = lincheck_history_finish(h);
	if (rc) {
		if (why)
			snprintf(why, cap, "%s", lincheck_history_error(h));
		lincheck_history_free(h);
		return rc;
	}
	for (size_t k = 0; k < lincheck_history_nkeys(h); k++) {
		struct lincheck_result *r;
		if ((rc = lincheck_check_key(h, k, NULL, &r)))
			break;
		enum lincheck_verdict v = lincheck_result_verdict(r);
		if (v != LINCHECK_LINEARIZABLE && verdict != 1) {
			verdict = (int)v;
			if (why && cap) {
				FILE *f = fmemopen(why, cap, "w");
				if (f) {
					lincheck_result_print(r, f, NULL);
					fclose(f);
				}
			}
		}
		lincheck_result_free(r);
	}
	lincheck_history_free(h);
	return rc ? rc : verdict;
}

/* ---- server nodes ------------------------------------------------------ */

struct rec {
	int present;
	uint8_t val[8];
	size_t len;
	rk_ts ts;
};

struct srv {
	struct sim *sim;
	int node;
	struct sim_paxos_world *w;
	struct paxos *px;
	struct rk_hlc hlc;
	uint64_t skew_ms;
	uint64_t hwm; /* persisted clock bound (hlc units) */
	struct rec store[SIM_PAXOS_MAX_KEYS];
	struct rk_buf pend;  /* written, not yet durable */
	uint64_t pend_token; /* last persist token in pend */
	uint64_t flush_at;   /* UINT64_MAX: nothing pending */
	struct rk_buf scratch;
};

struct cli {
	struct sim *sim;
	int node;
	struct sim_paxos_world *w;
	int busy;
	uint32_t req;
	int op, key;
	int exp_present, new_present;
	int64_t exp, newv;
	uint64_t deadline;
	uint64_t next_at;
	uint64_t process;
	uint32_t gen;
	uint32_t counter;
	int seen_present[SIM_PAXOS_MAX_KEYS];
	int64_t seen[SIM_PAXOS_MAX_KEYS];
};

/* What a node's program state is. */
struct node_state {
	int is_client;
	union {
		struct srv s;
		struct cli c;
	};
};

static int is_server(const struct sim_paxos_world *w, int node)
{
	return node >= 1 && node <= w->o.n_servers;
}

static void disk_append(struct rk_buf *b, int kind, const uint8_t *p, size_t n)
{
	uint8_t h[5];
	h[0] = (uint8_t)kind;
	rk_put_le32(h + 1, (uint32_t)n);
	if (rk_buf_append(b, h, 5) || rk_buf_append(b, p, n))
		fprintf(stderr, "sim_paxos: out of memory writing the disk\n");
}

static void rec_apply(struct rec *r, const struct paxos_value *v, rk_ts ts)
{
	if (rk_ts_cmp(ts, r->ts) <= 0)
		return; /* last writer wins */
	r->present = v->present;
	r->len = v->present ? v->len : 0;
	if (r->len > sizeof(r->val))
		r->len = sizeof(r->val);
	if (r->len)
		memcpy(r->val, v->data, r->len);
	r->ts = ts;
}

/* [u8 key index][u8 present][u8 len][val][u64 hlc][u64 node] */
static size_t rec_encode(uint8_t *out, int k, const struct rec *r)
{
	size_t o = 0;
	out[o++] = (uint8_t)k;
	out[o++] = (uint8_t)r->present;
	out[o++] = (uint8_t)r->len;
	memcpy(out + o, r->val, r->len);
	o += r->len;
	rk_put_le64(out + o, r->ts.hlc);
	rk_put_le64(out + o + 8, r->ts.node);
	return o + 16;
}

/* ---- server runtime ---------------------------------------------------- */

static uint64_t rt_now(void *ctx)
{
	struct srv *s = ctx;
	return sim_now(s->sim);
}

static uint64_t rt_random(void *ctx)
{
	struct srv *s = ctx;
	return sim_node_rand(s->sim, s->node);
}

static rk_ts rt_tick(void *ctx)
{
	struct srv *s = ctx;
	rk_ts t = rk_hlc_tick(&s->hlc, sim_now(s->sim) + s->skew_ms);
	if (t.hlc >= s->hwm) {
		/* Raise the bound on disk before the timestamp is used, so a
		 * restarted node never issues it again. */
		uint8_t b[8];
		s->hwm = t.hlc + ((uint64_t)HWM_STEP_MS << RK_HLC_COUNTER_BITS);
		rk_put_le64(b, s->hwm);
		disk_append(sim_disk(s->sim, s->node), DISK_HWM, b, 8);
	}
	return t;
}

static void rt_observe(void *ctx, rk_ts t)
{
	struct srv *s = ctx;
	rk_hlc_observe(&s->hlc, t.hlc);
}

static int rt_up(void *ctx, uint64_t node)
{
	struct srv *s = ctx;
	return sim_is_up(s->sim, (int)node);
}

static void rt_send(void *ctx, uint64_t to, const struct paxos_msg *m)
{
	struct srv *s = ctx;
	struct sim_paxos_world *w = s->w;
	int k = key_index(w, m->key, m->klen);
	w->st.msgs[m->type]++;
	if (k >= 0 && m->type == PAXOS_MSG_PROPOSE)
		obs_propose(w, k, &m->proposal); /* idempotent per ballot */
	if (k >= 0 && m->type == PAXOS_MSG_COMMIT)
		obs_commit(w, k, &m->proposal);
	rk_buf_clear(&s->scratch);
	if (paxos_wire_encode(m, &s->scratch)) {
		violate(w, "n%d: could not encode a %s", s->node,
			paxos_msg_type_name(m->type));
		return;
	}
	sim_send(s->sim, s->node, (int)to, SIM_PAXOS_PEER, 0,
		 rk_buf_rptr(&s->scratch), rk_buf_readable(&s->scratch));
}

/* Token: client node << 40 | coordinator node << 32 | client request. */
static void send_resp(struct sim *sim, int from, int to, int channel,
		      int client, uint32_t req, int status, int applied,
		      const struct paxos_value *v)
{
	uint8_t b[RESP_LEN];
	b[0] = (uint8_t)client;
	rk_put_le32(b + 1, req);
	rk_put_le32(b + 5, (uint32_t)status);
	b[9] = (uint8_t)applied;
	b[10] = (uint8_t)(v && v->present);
	rk_put_le64(b + 11, (uint64_t)(v ? val_int(v) : 0));
	sim_send(sim, from, to, channel, 1, b, sizeof(b));
}

static void answer(struct srv *s, uint64_t token, int status, int applied,
		   const struct paxos_value *v)
{
	int client = (int)(token >> 40);
	int coord = (int)((token >> 32) & 0xff);
	uint32_t req = (uint32_t)token;
	if (coord == s->node)
		send_resp(s->sim, s->node, client, SIM_PAXOS_RESP, client, req,
			  status, applied, v);
	else
		send_resp(s->sim, s->node, coord, SIM_PAXOS_FWD_REPLY, client,
			  req, status, applied, v);
}

static void rt_reply(void *ctx, uint64_t token, const struct paxos_result *r)
{
	struct srv *s = ctx;
	struct sim_paxos_world *w = s->w;
	if (r->status == 0 && r->applied) {
		w->st.rtt_applied += r->round_trips;
		w->st.rtt_applied_n++;
	} else if (r->status == 0) {
		w->st.rtt_other += r->round_trips;
		w->st.rtt_other_n++;
	}
	answer(s, token, r->status, r->applied, &r->value);
}

static int rt_read(void *ctx, const uint8_t *key, size_t klen,
		   struct paxos_value *v, rk_ts *ts)
{
	struct srv *s = ctx;
	int k = key_index(s->w, key, klen);
	memset(v, 0, sizeof(*v));
	*ts = (rk_ts){0, 0};
	if (k < 0)
		return 0;
	const struct rec *r = &s->store[k];
	v->present = r->present;
	v->len = r->len;
	v->data = r->len ? r->val : NULL;
	*ts = r->ts;
	return 0;
}

/* Schedules the group commit of what is pending. */
static void want_flush(struct srv *s)
{
	if (s->flush_at != UINT64_MAX)
		return;
	uint32_t span = s->w->o.fsync_max_ms - s->w->o.fsync_min_ms;
	s->flush_at = sim_now(s->sim) + s->w->o.fsync_min_ms +
		      sim_node_rand(s->sim, s->node) % (span + 1u);
}

static int rt_apply(void *ctx, const uint8_t *key, size_t klen,
		    const struct paxos_value *v, rk_ts ts)
{
	struct srv *s = ctx;
	int k = key_index(s->w, key, klen);
	uint8_t b[64];
	if (k < 0 || (v->present && v->len > 8))
		return RK_EINVALID;
	rec_apply(&s->store[k], v, ts);
	struct rec r = {
	    .present = v->present, .len = v->present ? v->len : 0, .ts = ts};
	if (r.len)
		memcpy(r.val, v->data, r.len);
	disk_append(&s->pend, DISK_REC, b, rec_encode(b, k, &r));
	want_flush(s);
	return 0;
}

static void rt_persist(void *ctx, const uint8_t *key, size_t klen,
		       const struct paxos_acceptor_state *st, uint64_t token)
{
	struct srv *s = ctx;
	rk_buf_clear(&s->scratch);
	if (paxos_wire_encode_state(key, klen, st, &s->scratch)) {
		violate(s->w, "n%d: could not encode a state", s->node);
		return;
	}
	disk_append(&s->pend, DISK_STATE, rk_buf_rptr(&s->scratch),
		    rk_buf_readable(&s->scratch));
	s->pend_token = token;
	want_flush(s);
}

/* The fsync completes: pending writes reach the disk, in order. */
static void flush(struct srv *s)
{
	struct rk_buf *disk = sim_disk(s->sim, s->node);
	const uint8_t *p = rk_buf_rptr(&s->pend);
	size_t n = rk_buf_readable(&s->pend);
	s->flush_at = UINT64_MAX;
	if (rk_buf_append(disk, p, n))
		fprintf(stderr, "sim_paxos: out of memory flushing\n");
	/* The checker learns what is now durable. */
	for (size_t o = 0; o + 5 <= n;) {
		size_t len = rk_get_le32(p + o + 1);
		if (p[o] == DISK_STATE) {
			const uint8_t *key;
			size_t klen;
			struct paxos_acceptor_state st;
			void *owner;
			if (!paxos_wire_decode_state(p + o + 5, len, &key,
						     &klen, &st, &owner)) {
				int k = key_index(s->w, key, klen);
				if (k >= 0)
					obs_durable(s->w, s->node, k, &st);
				paxos_wire_release(owner);
			}
		}
		o += 5 + len;
	}
	rk_buf_clear(&s->pend);
	uint64_t token = s->pend_token;
	if (token)
		paxos_persisted(s->px, token);
}

/* Rebuilds the store, the acceptor states and the clock from the disk. */
static int replay(struct srv *s)
{
	struct rk_buf *disk = sim_disk(s->sim, s->node);
	const uint8_t *p = rk_buf_rptr(disk);
	size_t n = rk_buf_readable(disk);
	/* Latest state record per key. */
	size_t last_state[SIM_PAXOS_MAX_KEYS];
	int have[SIM_PAXOS_MAX_KEYS] = {0};
	for (size_t o = 0; o + 5 <= n;) {
		size_t len = rk_get_le32(p + o + 1);
		const uint8_t *q = p + o + 5;
		if (o + 5 + len > n)
			return RK_ECORRUPT;
		if (p[o] == DISK_HWM && len == 8) {
			uint64_t h = rk_get_le64(q);
			if (h > s->hwm)
				s->hwm = h;
		} else if (p[o] == DISK_REC && len >= 19) {
			int k = q[0];
			struct rec r = {.present = q[1], .len = q[2]};
			if (k >= s->w->o.n_keys || r.len > 8 ||
			    len != 19u + r.len)
				return RK_ECORRUPT;
			memcpy(r.val, q + 3, r.len);
			r.ts.hlc = rk_get_le64(q + 3 + r.len);
			r.ts.node = rk_get_le64(q + 11 + r.len);
			struct paxos_value v = {
			    .present = r.present, .data = r.val, .len = r.len};
			rec_apply(&s->store[k], &v, r.ts);
			rk_hlc_observe(&s->hlc, r.ts.hlc);
		} else if (p[o] == DISK_STATE) {
			const uint8_t *key;
			size_t klen;
			struct paxos_acceptor_state st;
			void *owner;
			if (paxos_wire_decode_state(q, len, &key, &klen, &st,
						    &owner))
				return RK_ECORRUPT;
			int k = key_index(s->w, key, klen);
			paxos_wire_release(owner);
			if (k < 0)
				return RK_ECORRUPT;
			last_state[k] = o;
			have[k] = 1;
		}
		o += 5 + len;
	}
	rk_hlc_observe(&s->hlc, s->hwm);
	for (int k = 0; k < s->w->o.n_keys; k++) {
		if (!have[k])
			continue;
		size_t o = last_state[k];
		const uint8_t *key;
		size_t klen;
		struct paxos_acceptor_state st;
		void *owner;
		int rc =
		    paxos_wire_decode_state(p + o + 5, rk_get_le32(p + o + 1),
					    &key, &klen, &st, &owner);
		if (!rc)
			rc = paxos_acceptor_restore(s->px, key, klen, &st);
		paxos_wire_release(owner);
		if (rc)
			return rc;
	}
	return 0;
}

static void srv_rearm(struct srv *s)
{
	uint64_t d = paxos_next_deadline(s->px);
	if (s->flush_at < d)
		d = s->flush_at;
	sim_set_timer(s->sim, s->node, d);
}

/* Runs a client operation here, as its proposer. */
static void srv_run(struct srv *s, int client, int coord, const uint8_t *q)
{
	struct sim_paxos_world *w = s->w;
	uint32_t req = rk_get_le32(q);
	int op = q[4], k = q[5];
	uint8_t eb[8], nb[8];
	rk_put_le64(eb, rk_get_le64(q + 7));
	rk_put_le64(nb, rk_get_le64(q + 16));
	struct paxos_value exp = {.present = q[6], .data = eb, .len = 8};
	struct paxos_value nv = {.present = q[15], .data = nb, .len = 8};
	if (!exp.present) {
		exp.data = NULL;
		exp.len = 0;
	}
	if (!nv.present) {
		nv.data = NULL;
		nv.len = 0;
	}
	uint64_t token =
	    ((uint64_t)client << 40) | ((uint64_t)coord << 32) | req;
	uint64_t reps[SIM_PAXOS_MAX_SERVERS];
	uint8_t key[2] = {'k', (uint8_t)('0' + k)};
	uint64_t deadline = sim_now(s->sim) + w->o.op_deadline_ms;
	struct paxos_cond c = {.kind = PAXOS_IF_EQUALS, .expected = exp};
	int rc;
	sim_paxos_replicas(w, k, reps);
	switch (op) {
	case OP_READ:
		rc = paxos_serial_read(s->px, token, key, 2, reps,
				       (size_t)w->o.rf, deadline);
		break;
	case OP_WRITE:
		c.kind = PAXOS_IF_ANY;
		rc = paxos_cas(s->px, token, key, 2, reps, (size_t)w->o.rf, &c,
			       &nv, deadline);
		break;
	case OP_PIA:
		rc = paxos_put_if_absent(s->px, token, key, 2, reps,
					 (size_t)w->o.rf, &nv, deadline);
		break;
	case OP_DEL:
		rc = paxos_delete_if(s->px, token, key, 2, reps,
				     (size_t)w->o.rf, &exp, deadline);
		break;
	default:
		rc = paxos_cas(s->px, token, key, 2, reps, (size_t)w->o.rf, &c,
			       &nv, deadline);
		break;
	}
	if (rc)
		answer(s, token, rc, 0, NULL);
}

/* A client request: route it to its proposer. */
static void srv_request(struct srv *s, int client, const uint8_t *q)
{
	struct sim_paxos_world *w = s->w;
	int k = q[5];
	uint64_t reps[SIM_PAXOS_MAX_SERVERS];
	int target = 0, mine = 0;
	sim_paxos_replicas(w, k, reps);
	for (int i = 0; i < w->o.rf; i++)
		mine |= reps[i] == (uint64_t)s->node;
	if (w->o.route_primary) {
		/* The first replica gossip says is up (the simulator's
		 * truth stands in for gossip). */
		for (int i = 0; i < w->o.rf && !target; i++)
			if (sim_is_up(s->sim, (int)reps[i]))
				target = (int)reps[i];
	} else if (mine) {
		target = s->node;
	} else {
		target = (int)
		    reps[sim_node_rand(s->sim, s->node) % (uint64_t)w->o.rf];
	}
	if (!target || target == s->node) {
		srv_run(s, client, s->node, q);
		return;
	}
	uint8_t b[1 + REQ_LEN];
	b[0] = (uint8_t)client;
	memcpy(b + 1, q, REQ_LEN);
	sim_send(s->sim, s->node, target, SIM_PAXOS_FWD, 1, b, sizeof(b));
}

static void srv_recv(struct srv *s, int from, int channel, const uint8_t *p,
		     size_t n)
{
	switch (channel) {
	case SIM_PAXOS_PEER: {
		struct paxos_msg m;
		void *owner;
		if (paxos_wire_decode(p, n, &m, &owner)) {
			violate(s->w, "n%d: undecodable message from n%d",
				s->node, from);
			return;
		}
		paxos_recv(s->px, (uint64_t)from, &m);
		paxos_wire_release(owner);
		break;
	}
	case SIM_PAXOS_REQ:
		if (n == REQ_LEN)
			srv_request(s, from, p);
		break;
	case SIM_PAXOS_FWD:
		if (n == 1 + REQ_LEN)
			srv_run(s, p[0], from, p + 1);
		break;
	case SIM_PAXOS_FWD_REPLY:
		if (n == RESP_LEN)
			sim_send(s->sim, s->node, p[0], SIM_PAXOS_RESP, 1, p,
				 n);
		break;
	default:
		break;
	}
}

/* ---- clients ----------------------------------------------------------- */

static void cli_rearm(struct cli *c)
{
	sim_set_timer(c->sim, c->node, c->busy ? c->deadline : c->next_at);
}

static void cli_schedule(struct cli *c)
{
	c->busy = 0;
	c->next_at =
	    sim_now(c->sim) + 1 +
	    sim_node_rand(c->sim, c->node) % (c->w->o.think_max_ms + 1u);
	if (c->next_at > c->w->o.ops_until_ms)
		c->next_at = UINT64_MAX;
}

static const char *const f_name[] = {"", "cas", "read", "write", "cas", "cas"};

/* The "value" field of the operation, for the history. */
static void cli_value(const struct cli *c, char *b, size_t cap)
{
	char e[24], v[24];
	snprintf(e, sizeof(e), c->exp_present ? "%" PRId64 : "null", c->exp);
	snprintf(v, sizeof(v), c->new_present ? "%" PRId64 : "null", c->newv);
	switch (c->op) {
	case OP_READ:
		snprintf(b, cap, "null");
		break;
	case OP_WRITE:
		snprintf(b, cap, "%s", v);
		break;
	default:
		snprintf(b, cap, "[%s,%s]", e, v);
		break;
	}
}

static void cli_start_op(struct cli *c)
{
	struct sim_paxos_world *w = c->w;
	const struct sim_paxos_opts *o = &w->o;
	int total = o->w_cas + o->w_read + o->w_write + o->w_pia + o->w_del;
	int r = (int)(sim_node_rand(c->sim, c->node) % (uint64_t)total);
	c->key = (int)(sim_node_rand(c->sim, c->node) % (uint64_t)o->n_keys);
	c->op = r < o->w_cas			? OP_CAS
		: (r -= o->w_cas) < o->w_read	? OP_READ
		: (r -= o->w_read) < o->w_write ? OP_WRITE
		: (r -= o->w_write) < o->w_pia	? OP_PIA
						: OP_DEL;
	c->newv = (int64_t)(c->node - o->n_servers) * 1000000 + ++c->counter;
	c->new_present = 1;
	c->exp = c->seen[c->key];
	c->exp_present = c->seen_present[c->key];
	switch (c->op) {
	case OP_READ:
		c->new_present = 0;
		c->exp_present = 0;
		break;
	case OP_WRITE:
		c->exp_present = 0;
		break;
	case OP_PIA:
		c->exp_present = 0;
		break;
	case OP_DEL:
		c->new_present = 0;
		/* Deleting absent is a no-op cas; aim at the seen value. */
		break;
	}
	if (!c->exp_present)
		c->exp = 0;
	if (!c->new_present)
		c->newv = 0;
	c->req++;
	c->busy = 1;
	c->deadline = sim_now(c->sim) + o->client_timeout_ms;

	uint8_t q[REQ_LEN];
	rk_put_le32(q, c->req);
	q[4] = (uint8_t)c->op;
	q[5] = (uint8_t)c->key;
	q[6] = (uint8_t)c->exp_present;
	rk_put_le64(q + 7, (uint64_t)c->exp);
	q[15] = (uint8_t)c->new_present;
	rk_put_le64(q + 16, (uint64_t)c->newv);
	/* A random server among those up, as a client that follows
	 * membership would pick (one that dies meanwhile loses it). */
	int up[SIM_PAXOS_MAX_SERVERS], n_up = 0, to;
	for (int i = 1; i <= o->n_servers; i++)
		if (sim_is_up(c->sim, i))
			up[n_up++] = i;
	to = n_up ? up[sim_node_rand(c->sim, c->node) % (uint64_t)n_up] : 1;
	char v[64];
	cli_value(c, v, sizeof(v));
	w->st.invoked++;
	hist_add(w,
		 "{\"process\":%" PRIu64
		 ",\"type\":\"invoke\",\"f\":\"%s\",\"key\":\"k%d\","
		 "\"value\":%s,\"time\":%" PRIu64 "}\n",
		 c->process, f_name[c->op], c->key, v, ++w->hist_time);
	sim_send(c->sim, c->node, to, SIM_PAXOS_REQ, 1, q, sizeof(q));
}

static void cli_complete(struct cli *c, const char *type, int applied,
			 int present, int64_t val)
{
	struct sim_paxos_world *w = c->w;
	char v[64], extra[32] = "";
	if (c->op == OP_READ && !strcmp(type, "ok"))
		snprintf(v, sizeof(v), present ? "%" PRId64 : "null", val);
	else
		cli_value(c, v, sizeof(v));
	if (!strcmp(type, "ok") && c->op != OP_READ && c->op != OP_WRITE)
		snprintf(extra, sizeof(extra), ",\"applied\":%s",
			 applied ? "true" : "false");
	hist_add(w,
		 "{\"process\":%" PRIu64
		 ",\"type\":\"%s\",\"f\":\"%s\",\"key\":\"k%d\","
		 "\"value\":%s%s,\"time\":%" PRIu64 "}\n",
		 c->process, type, f_name[c->op], c->key, v, extra,
		 ++w->hist_time);
	if (!strcmp(type, "info")) {
		/* An operation with an unknown outcome stays open forever:
		 * the client continues as a new process (Jepsen's rule). */
		c->process = (uint64_t)c->node * 1000 + ++c->gen;
	}
	cli_schedule(c);
}

static void cli_recv(struct cli *c, const uint8_t *p, size_t n)
{
	struct sim_paxos_world *w = c->w;
	if (n != RESP_LEN || !c->busy || rk_get_le32(p + 1) != c->req)
		return; /* late: that operation is already info */
	int status = (int)rk_get_le32(p + 5);
	int applied = p[9], present = p[10];
	int64_t val = (int64_t)rk_get_le64(p + 11);
	if (-status >= 0 && -status < 32)
		w->st.by_status[-status]++;
	if (status == 0) {
		w->st.ok++;
		if (c->op == OP_READ)
			w->st.reads++;
		else if (applied)
			w->st.applied++;
		else
			w->st.not_applied++;
		/* What the key now holds, as this op linearized it. */
		c->seen_present[c->key] = present;
		c->seen[c->key] = present ? val : 0;
		cli_complete(c, "ok", applied, present, val);
	} else if (status == RK_EUNAVAILABLE || status == RK_EOVERLOADED) {
		w->st.fail++;
		cli_complete(c, "fail", 0, 0, 0);
	} else {
		w->st.info++;
		cli_complete(c, "info", 0, 0, 0);
	}
}

static void cli_tick(struct cli *c)
{
	uint64_t t = sim_now(c->sim);
	if (c->busy && t >= c->deadline) {
		c->w->st.info++;
		cli_complete(c, "info", 0, 0, 0);
	}
	if (!c->busy && t >= c->next_at)
		cli_start_op(c);
}

/* ---- the program -------------------------------------------------------- */

static void node_free(void *state)
{
	struct node_state *ns = state;
	if (!ns)
		return;
	if (!ns->is_client) {
		struct sim_paxos_stats *t = &ns->s.w->st;
		struct paxos_stats ps;
		if (ns->s.px) {
			paxos_stats(ns->s.px, &ps);
			t->repairs += ps.repairs;
			t->own_finished += ps.own_finished;
			t->own_seen += ps.own_seen;
			t->own_reproposed += ps.own_reproposed;
			t->own_superseded += ps.own_superseded;
			t->own_unknown += ps.own_unknown;
			t->preempted += ps.preempted;
			t->round_timeouts += ps.round_timeouts;
			t->prunes += ps.prunes;
		}
		paxos_free(ns->s.px);
		rk_buf_destroy(&ns->s.pend);
		rk_buf_destroy(&ns->s.scratch);
	}
	free(ns);
}

static int node_boot(struct sim *sim, int node, void *prog_ctx, void **state)
{
	struct sim_paxos_world *w = prog_ctx;
	struct node_state *ns = calloc(1, sizeof(*ns));
	*state = NULL;
	if (!ns)
		return RK_ENOMEM;
	if (!is_server(w, node)) {
		struct cli *c = &ns->c;
		ns->is_client = 1;
		c->sim = sim;
		c->node = node;
		c->w = w;
		c->process = (uint64_t)node * 1000;
		cli_schedule(c);
		*state = ns;
		cli_rearm(c);
		return 0;
	}
	struct srv *s = &ns->s;
	s->sim = sim;
	s->node = node;
	s->w = w;
	s->flush_at = UINT64_MAX;
	/* A fixed offset per node, the same in every life. */
	s->skew_ms =
	    w->o.skew_max_ms
		? (sim_seed(sim) * 0x9e3779b97f4a7c15ull * (uint64_t)node >>
		   40) %
		      (w->o.skew_max_ms + 1u)
		: 0;
	rk_buf_init(&s->pend);
	rk_buf_init(&s->scratch);
	rk_hlc_init(&s->hlc, (uint64_t)node);
	struct paxos_config cfg = w->o.paxos;
	cfg.id = (uint64_t)node;
	struct paxos_runtime rt = {
	    .ctx = s,
	    .log = sim_logger(sim, node),
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
	int rc = paxos_new(&cfg, &rt, &s->px);
	if (!rc)
		rc = replay(s);
	if (rc) {
		node_free(ns);
		return rc;
	}
	*state = ns;
	srv_rearm(s);
	return 0;
}

static void node_recv(void *state, int from, int channel, const uint8_t *p,
		      size_t n)
{
	struct node_state *ns = state;
	if (ns->is_client) {
		if (channel == SIM_PAXOS_RESP)
			cli_recv(&ns->c, p, n);
		cli_rearm(&ns->c);
		return;
	}
	srv_recv(&ns->s, from, channel, p, n);
	srv_rearm(&ns->s);
}

static void node_tick(void *state)
{
	struct node_state *ns = state;
	if (ns->is_client) {
		cli_tick(&ns->c);
		cli_rearm(&ns->c);
		return;
	}
	struct srv *s = &ns->s;
	if (sim_now(s->sim) >= s->flush_at)
		flush(s);
	paxos_tick(s->px);
	srv_rearm(s);
}

const struct sim_program sim_paxos_program = {
    .name = "paxos",
    .boot = node_boot,
    .recv = node_recv,
    .tick = node_tick,
    .kill = node_free,
    .free = node_free,
};

struct paxos *sim_paxos_node(const struct sim *sim, int node)
{
	struct node_state *ns = sim_node_state(sim, node);
	return ns && !ns->is_client ? ns->s.px : NULL;
}
