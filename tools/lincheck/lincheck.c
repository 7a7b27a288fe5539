/* lincheck.c: the linearizability search for one key.
 *
 * Wing & Gong (1993) decide linearizability by search: walk the history's
 * events in real-time order; at each point, try to linearize (apply to the
 * sequential model) any operation that has been called but not yet
 * linearized and that the model accepts; if the next event is the return of
 * an operation not yet linearized, that branch is dead, so undo the last
 * choice and try the next candidate.  The history is linearizable iff some
 * branch linearizes every operation.
 *
 * The events live in a doubly linked list sorted by time.  Linearizing an
 * operation "lifts" its call and return out of the list, so the scan always
 * restarts at the head and sees exactly the pending calls up to the first
 * unlinearized return; undoing puts both back (dancing links).
 *
 * Lowe (2017, "Testing for linearizability") observed that the search
 * revisits the same configuration, (set of linearized operations, model
 * state), through different orders of commuting operations, and that a
 * configuration's future does not depend on how it was reached.  Memoizing
 * the configurations already explored makes the search tractable on real
 * histories; Porcupine and Knossos both do this, and so do we.  Porcupine's
 * loop is the shape followed here.
 *
 * Where we differ, and why:
 *   - The linearized set is hashed with Zobrist keys (a random 64-bit word
 *     per operation, XORed in and out), so a step costs O(1) to hash, not
 *     O(ops).
 *   - Memoized sets are stored trimmed: the leading all-ones words and the
 *     trailing zero words are dropped.  Operations are numbered in call
 *     order and the search linearizes roughly in that order, so only a
 *     narrow window of words differs; a long history costs memory for its
 *     concurrency, not its length.
 *   - An operation with an unknown outcome returns at infinity.  Since its
 *     return is never reached, it can always be placed last, where taking
 *     effect or not is unobservable: so "may or may not happen" needs no
 *     extra branching, and the search succeeds as soon as every completed
 *     operation is linearized.  Unknown reads constrain nothing and are
 *     dropped before the search.
 *   - Events at the same time count as concurrent (calls sort before
 *     returns): with coarse clocks, equal timestamps do not say which came
 *     first, and assuming an order could report a violation that is not.
 *   - The search is bounded by a count of memoized configurations, not by
 *     wall-clock time, so an UNDECIDED verdict replays exactly.
 *
 * The explanation of a failure is the search's deepest dead end: the
 * longest prefix it could linearize, the operation whose return it then
 * reached unlinearized, the register values it reached there, and the
 * pending operations it tried instead.  Depth is a good proxy for "where it
 * went wrong": every configuration at greater depth is unreachable.
 */
#include "lincheck.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"

/* Register values kept from dead ends of the deepest level. */
#define EXPLAIN_MAX_REGS 8
/* Pending operations listed in an explanation; concurrency is bounded by
 * the number of processes, so this only trims pathological cases. */
#define EXPLAIN_MAX_PENDING 32
/* Prefix operations a human explanation shows (JSON shows them all). */
#define EXPLAIN_TAIL 8

/* How an operation acts on the register, decided once before the search. */
enum kind {
	K_READ,	       /* requires state == a */
	K_WRITE,       /* sets a */
	K_CAS_OK,      /* requires state == a, sets b */
	K_CAS_REFUSED, /* requires state != a */
	K_CAS_MAYBE,   /* unknown: sets b if state == a */
};

struct mop {
	enum kind kind;
	uint32_t a, b;	/* value ids */
	int finite;	/* returns at a finite time: must be linearized */
	size_t hidx;	/* index in the history's ops for the key */
	uint64_t zob;	/* Zobrist key */
};

/* One memoized configuration's slot: the hash, and where the trimmed set
 * starts in the arena (+1, so 0 marks an empty slot). */
struct slot {
	uint64_t hash;
	size_t off1;
};

/* The memo: an open-addressed set of configurations.  An arena entry is
 * [state | nw << 32][lo][nw words of the set from word lo]. */
struct cache {
	uint64_t *arena;
	size_t alen, acap;
	struct slot *slots;
	size_t n, cap; /* cap a power of two, at most half full */
};

struct checker {
	struct mop *ops;	/* m of them, in call order */
	size_t m;
	/* The event list: node 0 is the head; 1..2m are events. */
	int32_t *prev, *next;
	uint32_t *node_op;	/* the op of each event */
	uint8_t *is_call;
	int32_t *match;		/* call node -> its return node */
	uint64_t *bits;		/* the linearized set */
	size_t nwords;
	uint64_t zob;		/* Zobrist hash of bits */
	struct cache cache;
	uint64_t max_states;	/* 0: unbounded */
	int32_t *stack_node;	/* linearized calls, in order */
	uint32_t *stack_state;	/* register before each of them */

	/* The deepest dead end so far. */
	int have_dead_end;
	size_t best_depth;
	uint32_t best_blocked;	/* op index */
	uint32_t *best_prefix;	/* op indices, best_depth of them */
	uint32_t best_regs[EXPLAIN_MAX_REGS];
	size_t best_nregs;
	uint32_t best_pending[EXPLAIN_MAX_PENDING];
	size_t best_npending, best_pending_more;
};

struct lincheck_result {
	const struct lincheck_history *h; /* borrowed */
	size_t key;
	const struct lincheck_op *hops;	  /* borrowed from h */
	size_t nops;
	enum lincheck_verdict verdict;
	uint64_t states;
	uint64_t max_states;
	/* NOT_LINEARIZABLE only; history op indices. */
	size_t *prefix; /* owned; in linearization order */
	size_t prefix_len;
	size_t blocked;
	uint32_t regs[EXPLAIN_MAX_REGS];
	size_t nregs;
	size_t pending[EXPLAIN_MAX_PENDING];
	size_t npending, pending_more;
};

/* ------------------------------------------------------------------ */
/* Model                                                                */

/* Applies op to state.  Returns 1 and *out when the register allows it. */
static int step(const struct mop *op, uint32_t state, uint32_t *out)
{
	switch (op->kind) {
	case K_READ:
		*out = state;
		return state == op->a;
	case K_WRITE:
		*out = op->a;
		return 1;
	case K_CAS_OK:
		*out = op->b;
		return state == op->a;
	case K_CAS_REFUSED:
		*out = state;
		return state != op->a;
	case K_CAS_MAYBE:
		*out = state == op->a ? op->b : state;
		return 1;
	}
	return 0;
}

static struct mop mop_of(const struct lincheck_op *o)
{
	struct mop m = {0};
	m.a = o->value;
	m.b = o->cas_new;
	int known = o->outcome == LINCHECK_OK;
	if (o->f == LINCHECK_READ)
		m.kind = K_READ;
	else if (o->f == LINCHECK_WRITE)
		m.kind = K_WRITE;
	else if (!known)
		m.kind = K_CAS_MAYBE;
	else
		m.kind = o->applied ? K_CAS_OK : K_CAS_REFUSED;
	return m;
}

static uint64_t splitmix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/* ------------------------------------------------------------------ */
/* Memo                                                                 */

static void cache_destroy(struct cache *c)
{
	free(c->arena);
	free(c->slots);
}

static uint64_t config_hash(uint64_t zob, uint32_t state)
{
	return zob ^ splitmix64(state);
}

/* The trimmed window of bits: words [lo, lo + nw). */
static void trim(const uint64_t *bits, size_t nwords, size_t *lo, size_t *nw)
{
	size_t l = 0;
	while (l < nwords && bits[l] == UINT64_MAX)
		l++;
	size_t h = nwords;
	while (h > l && bits[h - 1] == 0)
		h--;
	*lo = l;
	*nw = h - l;
}

static int cache_grow(struct cache *c)
{
	size_t cap = c->cap ? c->cap * 2 : 1024;
	struct slot *s = calloc(cap, sizeof(*s));
	if (!s)
		return RK_ENOMEM;
	for (size_t j = 0; j < c->cap; j++) {
		if (!c->slots[j].off1)
			continue;
		size_t i = c->slots[j].hash & (cap - 1);
		while (s[i].off1)
			i = (i + 1) & (cap - 1);
		s[i] = c->slots[j];
	}
	free(c->slots);
	c->slots = s;
	c->cap = cap;
	return 0;
}

/* Adds (bits, state).  Returns 1 when it was new, 0 when already there,
 * 2 when new but the memo holds max configurations (not added), or
 * RK_ENOMEM. */
static int cache_add(struct cache *c, const uint64_t *bits, size_t nwords,
		     uint64_t zob, uint32_t state, uint64_t max)
{
	if ((c->n + 1) * 2 > c->cap && cache_grow(c))
		return RK_ENOMEM;
	size_t lo, nw;
	trim(bits, nwords, &lo, &nw);
	uint64_t hash = config_hash(zob, state);
	uint64_t head = (uint64_t)state | ((uint64_t)nw << 32);
	size_t mask = c->cap - 1;
	size_t i = hash & mask;
	for (; c->slots[i].off1; i = (i + 1) & mask) {
		if (c->slots[i].hash != hash)
			continue;
		const uint64_t *e = c->arena + c->slots[i].off1 - 1;
		if (e[0] == head && e[1] == lo &&
		    memcmp(e + 2, bits + lo, nw * sizeof(*bits)) == 0)
			return 0;
	}
	if (max && c->n >= max)
		return 2;
	size_t need = 2 + nw;
	if (c->acap - c->alen < need) {
		size_t cap = c->acap ? c->acap * 2 : 4096;
		while (cap - c->alen < need)
			cap *= 2;
		uint64_t *a = realloc(c->arena, cap * sizeof(*a));
		if (!a)
			return RK_ENOMEM;
		c->arena = a;
		c->acap = cap;
	}
	uint64_t *e = c->arena + c->alen;
	e[0] = head;
	e[1] = lo;
	memcpy(e + 2, bits + lo, nw * sizeof(*bits));
	c->slots[i].hash = hash;
	c->slots[i].off1 = c->alen + 1;
	c->alen += need;
	c->n++;
	return 1;
}

/* ------------------------------------------------------------------ */
/* Event list                                                           */

struct event {
	int64_t time;
	int is_ret;
	uint32_t op;
};

static int event_cmp(const void *pa, const void *pb)
{
	const struct event *a = pa, *b = pb;
	if (a->time != b->time)
		return a->time < b->time ? -1 : 1;
	/* Calls first: equal times are concurrent. */
	if (a->is_ret != b->is_ret)
		return a->is_ret - b->is_ret;
	return a->op < b->op ? -1 : a->op > b->op;
}

static void lift(struct checker *c, int32_t call)
{
	int32_t ret = c->match[call];
	c->next[c->prev[call]] = c->next[call];
	c->prev[c->next[call]] = c->prev[call];
	c->next[c->prev[ret]] = c->next[ret];
	if (c->next[ret] >= 0)
		c->prev[c->next[ret]] = c->prev[ret];
}

/* Undoes lift(call); must mirror it exactly, in reverse. */
static void unlift(struct checker *c, int32_t call)
{
	int32_t ret = c->match[call];
	c->next[c->prev[ret]] = ret;
	if (c->next[ret] >= 0)
		c->prev[c->next[ret]] = ret;
	c->next[c->prev[call]] = call;
	c->prev[c->next[call]] = call;
}

static void checker_destroy(struct checker *c)
{
	free(c->ops);
	free(c->prev);
	free(c->next);
	free(c->node_op);
	free(c->is_call);
	free(c->match);
	free(c->bits);
	free(c->stack_node);
	free(c->stack_state);
	free(c->best_prefix);
	cache_destroy(&c->cache);
}

/* Builds the model ops and the event list for hops[0, n). */
static int checker_init(struct checker *c, const struct lincheck_op *hops,
			size_t n)
{
	struct event *ev = NULL;
	int rc = RK_ENOMEM;
	/* Events are numbered in int32 (two per op, plus the head). */
	if (n > LINCHECK_MAX_OPS)
		goto out;
	c->ops = calloc(n ? n : 1, sizeof(*c->ops));
	if (!c->ops)
		goto out;
	size_t m = 0;
	for (size_t i = 0; i < n; i++) {
		const struct lincheck_op *o = &hops[i];
		if (o->f == LINCHECK_READ && o->outcome != LINCHECK_OK)
			continue; /* an unknown read constrains nothing */
		struct mop *op = &c->ops[m];
		*op = mop_of(o);
		op->finite = o->outcome == LINCHECK_OK;
		op->hidx = i;
		op->zob = splitmix64(0x6c696e636865636bull + m);
		m++;
	}
	c->m = m;
	size_t nodes = 2 * m + 1;
	c->prev = calloc(nodes, sizeof(*c->prev));
	c->next = calloc(nodes, sizeof(*c->next));
	c->node_op = calloc(nodes, sizeof(*c->node_op));
	c->is_call = calloc(nodes, sizeof(*c->is_call));
	c->match = calloc(nodes, sizeof(*c->match));
	c->nwords = (m + 63) / 64;
	c->bits = calloc(c->nwords ? c->nwords : 1, sizeof(*c->bits));
	c->stack_node = calloc(m + 1, sizeof(*c->stack_node));
	c->stack_state = calloc(m + 1, sizeof(*c->stack_state));
	c->best_prefix = calloc(m + 1, sizeof(*c->best_prefix));
	ev = calloc(2 * m + 1, sizeof(*ev));
	if (!c->prev || !c->next || !c->node_op || !c->is_call ||
	    !c->match || !c->bits || !c->stack_node || !c->stack_state ||
	    !c->best_prefix || !ev)
		goto out;
	for (size_t i = 0; i < m; i++) {
		const struct lincheck_op *o = &hops[c->ops[i].hidx];
		ev[2 * i] = (struct event){o->call, 0, (uint32_t)i};
		ev[2 * i + 1] = (struct event){o->ret, 1, (uint32_t)i};
	}
	qsort(ev, 2 * m, sizeof(*ev), event_cmp);
	/* Node k + 1 holds event k; remember each op's call node. */
	int32_t *call_of = c->stack_node; /* scratch until the search */
	for (size_t k = 0; k < 2 * m; k++) {
		int32_t node = (int32_t)k + 1;
		c->prev[node] = node - 1;
		c->next[node] = (k + 1 < 2 * m) ? node + 1 : -1;
		c->node_op[node] = ev[k].op;
		c->is_call[node] = !ev[k].is_ret;
		if (!ev[k].is_ret)
			call_of[ev[k].op] = node;
		else
			c->match[call_of[ev[k].op]] = node;
	}
	c->prev[0] = -1;
	c->next[0] = m ? 1 : -1;
	rc = 0;
out:
	free(ev);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Search                                                               */

/* Called at the return node of op, which is not linearized, at depth. */
static void note_dead_end(struct checker *c, size_t depth, uint32_t op,
			  uint32_t state, int32_t ret_node)
{
	if (c->have_dead_end && depth == c->best_depth &&
	    op == c->best_blocked) {
		for (size_t i = 0; i < c->best_nregs; i++)
			if (c->best_regs[i] == state)
				return;
		if (c->best_nregs < EXPLAIN_MAX_REGS)
			c->best_regs[c->best_nregs++] = state;
		return;
	}
	if (c->have_dead_end && depth <= c->best_depth)
		return;
	c->have_dead_end = 1;
	c->best_depth = depth;
	c->best_blocked = op;
	for (size_t i = 0; i < depth; i++)
		c->best_prefix[i] = c->node_op[c->stack_node[i]];
	c->best_regs[0] = state;
	c->best_nregs = 1;
	c->best_npending = c->best_pending_more = 0;
	for (int32_t n = c->next[0]; n != ret_node; n = c->next[n]) {
		if (!c->is_call[n])
			continue;
		if (c->best_npending < EXPLAIN_MAX_PENDING)
			c->best_pending[c->best_npending++] = c->node_op[n];
		else
			c->best_pending_more++;
	}
}

static void bit_flip(struct checker *c, uint32_t op)
{
	c->bits[op / 64] ^= 1ull << (op % 64);
	c->zob ^= c->ops[op].zob;
}

/* Returns a verdict, or RK_ENOMEM. */
static int search(struct checker *c)
{
	size_t finite_left = 0;
	for (size_t i = 0; i < c->m; i++)
		finite_left += (size_t)c->ops[i].finite;
	uint32_t state = LINCHECK_NULL;
	size_t depth = 0;
	int32_t node = c->next[0];
	for (;;) {
		/* What is left returns at infinity: it can all go last. */
		if (finite_left == 0)
			return LINCHECK_LINEARIZABLE;
		uint32_t op = c->node_op[node];
		if (c->is_call[node]) {
			uint32_t ns;
			if (step(&c->ops[op], state, &ns)) {
				bit_flip(c, op);
				int rc = cache_add(&c->cache, c->bits,
						   c->nwords, c->zob, ns,
						   c->max_states);
				if (rc < 0)
					return rc;
				if (rc == 2)
					return LINCHECK_UNDECIDED;
				if (rc == 1) {
					c->stack_node[depth] = node;
					c->stack_state[depth] = state;
					depth++;
					state = ns;
					lift(c, node);
					finite_left -= (size_t)c->ops[op].finite;
					node = c->next[0];
					continue;
				}
				bit_flip(c, op);
			}
			node = c->next[node];
			continue;
		}
		/* The return of an op not linearized: this branch is dead. */
		note_dead_end(c, depth, op, state, node);
		if (depth == 0)
			return LINCHECK_NOT_LINEARIZABLE;
		depth--;
		node = c->stack_node[depth];
		state = c->stack_state[depth];
		op = c->node_op[node];
		bit_flip(c, op);
		unlift(c, node);
		finite_left += (size_t)c->ops[op].finite;
		node = c->next[node];
	}
}

int lincheck_check_key(const struct lincheck_history *h, size_t k,
		       const struct lincheck_config *cfg,
		       struct lincheck_result **out)
{
	*out = NULL;
	struct lincheck_result *r = calloc(1, sizeof(*r));
	if (!r)
		return RK_ENOMEM;
	r->h = h;
	r->key = k;
	r->hops = lincheck_history_ops(h, k, &r->nops);
	r->max_states = cfg ? cfg->max_states : LINCHECK_DEFAULT_MAX_STATES;

	struct checker c;
	memset(&c, 0, sizeof(c));
	c.max_states = r->max_states;
	int rc = checker_init(&c, r->hops, r->nops);
	if (rc)
		goto fail;
	rc = search(&c);
	if (rc < 0)
		goto fail;
	r->verdict = (enum lincheck_verdict)rc;
	r->states = c.cache.n;
	if (r->verdict == LINCHECK_NOT_LINEARIZABLE) {
		r->prefix = malloc((c.best_depth ? c.best_depth : 1) *
				   sizeof(*r->prefix));
		if (!r->prefix) {
			rc = RK_ENOMEM;
			goto fail;
		}
		r->prefix_len = c.best_depth;
		for (size_t i = 0; i < c.best_depth; i++)
			r->prefix[i] = c.ops[c.best_prefix[i]].hidx;
		r->blocked = c.ops[c.best_blocked].hidx;
		memcpy(r->regs, c.best_regs, sizeof(r->regs));
		r->nregs = c.best_nregs;
		r->npending = c.best_npending;
		r->pending_more = c.best_pending_more;
		for (size_t i = 0; i < c.best_npending; i++)
			r->pending[i] = c.ops[c.best_pending[i]].hidx;
	}
	checker_destroy(&c);
	*out = r;
	return 0;
fail:
	checker_destroy(&c);
	lincheck_result_free(r);
	return rc;
}

void lincheck_result_free(struct lincheck_result *r)
{
	if (!r)
		return;
	free(r->prefix);
	free(r);
}

enum lincheck_verdict lincheck_result_verdict(const struct lincheck_result *r)
{
	return r->verdict;
}

size_t lincheck_result_nops(const struct lincheck_result *r)
{
	return r->nops;
}

uint64_t lincheck_result_states(const struct lincheck_result *r)
{
	return r->states;
}

long lincheck_result_blocked(const struct lincheck_result *r,
			     size_t *prefix_len)
{
	if (r->verdict != LINCHECK_NOT_LINEARIZABLE)
		return -1;
	if (prefix_len)
		*prefix_len = r->prefix_len;
	return (long)r->blocked;
}

/* ------------------------------------------------------------------ */
/* Printing                                                             */

static const char *const f_name[] = {"read", "write", "cas"};

static void print_value(const struct lincheck_result *r, FILE *out,
			uint32_t id)
{
	lincheck_value_print(out, lincheck_history_value(r->h, id));
}

/* A key bare when that is unambiguous, else quoted. */
static void print_key(const struct lincheck_result *r, FILE *out)
{
	const struct lincheck_value *v =
		lincheck_history_value(r->h, lincheck_history_key(r->h, r->key));
	int bare = v->type == LINCHECK_VSTR && v->len > 0;
	for (size_t i = 0; bare && i < v->len; i++) {
		unsigned char ch = v->s[i];
		if (ch <= ' ' || ch >= 0x7f || ch == '"' || ch == '\\' ||
		    ch == ':')
			bare = 0;
	}
	/* A string of digits would read as the integer key. */
	if (bare && (v->s[0] == '-' || (v->s[0] >= '0' && v->s[0] <= '9')))
		bare = 0;
	if (bare)
		fwrite(v->s, 1, v->len, out);
	else
		lincheck_value_print(out, v);
}

/* "p3 cas 1->2 applied (t=5..9, lines 4-8)"; unknown outcomes say how. */
static void print_op(const struct lincheck_result *r, FILE *out, size_t i)
{
	const struct lincheck_op *o = &r->hops[i];
	fprintf(out, "p%" PRId64 " %s ", o->process, f_name[o->f]);
	if (o->f == LINCHECK_CAS) {
		print_value(r, out, o->value);
		fputs("->", out);
		print_value(r, out, o->cas_new);
	} else if (o->f == LINCHECK_WRITE || o->outcome == LINCHECK_OK) {
		print_value(r, out, o->value);
	}
	if (o->outcome == LINCHECK_UNKNOWN)
		fputs(" unknown", out);
	else if (o->f == LINCHECK_CAS)
		fputs(o->applied ? " applied" : " not applied", out);
	fprintf(out, " (t=%" PRId64 "..", o->call);
	if (o->ret != LINCHECK_TIME_INF)
		fprintf(out, "%" PRId64 ", lines %lu-%lu", o->ret, o->call_line,
			o->ret_line);
	else if (o->ret_line)
		fprintf(out, ", line %lu, info on line %lu", o->call_line,
			o->ret_line);
	else
		fprintf(out, ", line %lu, never completed", o->call_line);
	fputc(')', out);
}

/* Why pending op i cannot go next from state (or that it can, but every
 * continuation from there was explored and failed). */
static void print_step(const struct lincheck_result *r, FILE *out, size_t i,
		       uint32_t state)
{
	struct mop m = mop_of(&r->hops[i]);
	uint32_t ns;
	if (step(&m, state, &ns)) {
		fputs("could take effect (register -> ", out);
		print_value(r, out, ns);
		fputs("), but nothing linearizes after that", out);
		return;
	}
	fputs("impossible: register is ", out);
	print_value(r, out, state);
	if (m.kind == K_CAS_REFUSED)
		fputs(", so it would have applied", out);
}

/* The register after the first n prefix ops. */
static uint32_t replay(const struct lincheck_result *r, size_t n)
{
	uint32_t s = LINCHECK_NULL;
	for (size_t i = 0; i < n; i++) {
		struct mop m = mop_of(&r->hops[r->prefix[i]]);
		uint32_t ns;
		step(&m, s, &ns);
		s = ns;
	}
	return s;
}

void lincheck_result_print(const struct lincheck_result *r, FILE *out,
			   const char *name)
{
	if (name)
		fprintf(out, "%s: ", name);
	fputs("key ", out);
	print_key(r, out);
	switch (r->verdict) {
	case LINCHECK_LINEARIZABLE:
		fprintf(out, ": linearizable (%zu ops)\n", r->nops);
		return;
	case LINCHECK_UNDECIDED:
		fprintf(out,
			": undecided (search limit of %" PRIu64
			" states reached; %zu ops)\n",
			r->max_states, r->nops);
		return;
	case LINCHECK_NOT_LINEARIZABLE:
		break;
	}
	fprintf(out, ": NOT linearizable (%zu ops): ", r->nops);
	print_op(r, out, r->blocked);
	fprintf(out,
		" cannot take effect before it returned, after the longest "
		"linearizable prefix (%zu ops)\n",
		r->prefix_len);
	fputs("  register after the prefix: ", out);
	print_value(r, out, r->regs[0]);
	if (r->nregs > 1) {
		fputs(" (other prefixes of that length leave it at", out);
		for (size_t i = 1; i < r->nregs; i++) {
			fputs(i > 1 ? ", " : " ", out);
			print_value(r, out, r->regs[i]);
		}
		fputc(')', out);
	}
	fputc('\n', out);
	if (r->prefix_len) {
		size_t from = r->prefix_len > EXPLAIN_TAIL
				      ? r->prefix_len - EXPLAIN_TAIL
				      : 0;
		fprintf(out, "  prefix, in linearization order");
		if (from)
			fprintf(out, " (last %d of %zu)", EXPLAIN_TAIL,
				r->prefix_len);
		fputs(":\n", out);
		uint32_t s = replay(r, from);
		for (size_t i = from; i < r->prefix_len; i++) {
			struct mop m = mop_of(&r->hops[r->prefix[i]]);
			uint32_t ns;
			step(&m, s, &ns);
			s = ns;
			fprintf(out, "    %zu. ", i + 1);
			print_op(r, out, r->prefix[i]);
			fputs("  => ", out);
			print_value(r, out, s);
			fputc('\n', out);
		}
	}
	fputs("  pending then (all tried next, from register ", out);
	print_value(r, out, r->regs[0]);
	fputs("):\n", out);
	for (size_t i = 0; i < r->npending; i++) {
		fputs("    ", out);
		print_op(r, out, r->pending[i]);
		fputs(": ", out);
		print_step(r, out, r->pending[i], r->regs[0]);
		fputc('\n', out);
	}
	if (r->pending_more)
		fprintf(out, "    ... and %zu more\n", r->pending_more);
}

void lincheck_json_string(FILE *out, const char *s)
{
	struct lincheck_value v = {LINCHECK_VSTR, 0, (const uint8_t *)s,
				   strlen(s)};
	lincheck_value_print_json(out, &v);
}

static void json_value(const struct lincheck_result *r, FILE *out,
		       uint32_t id)
{
	lincheck_value_print_json(out, lincheck_history_value(r->h, id));
}

static void json_op(const struct lincheck_result *r, FILE *out, size_t i)
{
	const struct lincheck_op *o = &r->hops[i];
	fprintf(out, "{\"process\":%" PRId64 ",\"f\":\"%s\",\"value\":",
		o->process, f_name[o->f]);
	if (o->f == LINCHECK_CAS) {
		fputc('[', out);
		json_value(r, out, o->value);
		fputc(',', out);
		json_value(r, out, o->cas_new);
		fputc(']', out);
	} else {
		json_value(r, out, o->value);
	}
	fprintf(out, ",\"outcome\":\"%s\"",
		o->outcome == LINCHECK_OK ? "ok" : "unknown");
	if (o->f == LINCHECK_CAS && o->outcome == LINCHECK_OK)
		fprintf(out, ",\"applied\":%s", o->applied ? "true" : "false");
	fprintf(out, ",\"invoke_time\":%" PRId64 ",\"complete_time\":",
		o->call);
	if (o->ret == LINCHECK_TIME_INF)
		fputs("null", out);
	else
		fprintf(out, "%" PRId64, o->ret);
	fprintf(out, ",\"invoke_line\":%lu,\"complete_line\":", o->call_line);
	if (o->ret_line)
		fprintf(out, "%lu}", o->ret_line);
	else
		fputs("null}", out);
}

void lincheck_result_print_json(const struct lincheck_result *r, FILE *out,
				const char *name)
{
	static const char *const verdicts[] = {
		[LINCHECK_LINEARIZABLE] = "linearizable",
		[LINCHECK_NOT_LINEARIZABLE] = "not_linearizable",
		[LINCHECK_UNDECIDED] = "undecided",
	};
	fputc('{', out);
	if (name) {
		fputs("\"file\":", out);
		lincheck_json_string(out, name);
		fputc(',', out);
	}
	fputs("\"key\":", out);
	json_value(r, out, lincheck_history_key(r->h, r->key));
	fprintf(out,
		",\"verdict\":\"%s\",\"ops\":%zu,\"states\":%" PRIu64,
		verdicts[r->verdict], r->nops, r->states);
	if (r->verdict == LINCHECK_UNDECIDED)
		fprintf(out, ",\"max_states\":%" PRIu64, r->max_states);
	if (r->verdict != LINCHECK_NOT_LINEARIZABLE) {
		fputs("}\n", out);
		return;
	}
	fputs(",\"explanation\":{\"blocked\":", out);
	json_op(r, out, r->blocked);
	fprintf(out, ",\"prefix_len\":%zu,\"prefix\":[", r->prefix_len);
	for (size_t i = 0; i < r->prefix_len; i++) {
		if (i)
			fputc(',', out);
		json_op(r, out, r->prefix[i]);
	}
	fputs("],\"registers\":[", out);
	for (size_t i = 0; i < r->nregs; i++) {
		if (i)
			fputc(',', out);
		json_value(r, out, r->regs[i]);
	}
	fputs("],\"pending\":[", out);
	for (size_t i = 0; i < r->npending; i++) {
		const struct lincheck_op *o = &r->hops[r->pending[i]];
		struct mop m = mop_of(o);
		uint32_t ns;
		if (i)
			fputc(',', out);
		fputs("{\"op\":", out);
		json_op(r, out, r->pending[i]);
		fprintf(out, ",\"possible\":%s}",
			step(&m, r->regs[0], &ns) ? "true" : "false");
	}
	fprintf(out, "],\"pending_more\":%zu}}\n", r->pending_more);
}
