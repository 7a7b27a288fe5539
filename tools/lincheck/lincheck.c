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
 * the configurations already entered makes the search tractable on real
 * histories; Porcupine and Knossos both do this, and so do we.  Porcupine's
 * loop is the shape followed here.
 *
 * Where we differ, and why:
 *   - Unknown outcomes.  An operation whose outcome is unknown returns at
 *     infinity: its return is never reached, so it can always be placed
 *     last, where taking effect or not is unobservable.  "May or may not
 *     happen" so needs no extra branching, and the search succeeds as soon
 *     as every completed operation is linearized.  Unknown reads constrain
 *     nothing and are dropped before the search.
 *   - Subsumption of unknown operations.  Unknown operations stay pending
 *     to the end, so a plain memo sees every subset of them that has fired
 *     as a different configuration: a long history with a few crashed
 *     clients blows up exponentially.  But with the same completed
 *     operations linearized and the same register value, having fired fewer
 *     unknown operations is never worse (the others can still fire, or go
 *     last).  So the memo is keyed by (completed set, value) and a new
 *     configuration is pruned when an entered one with the same key fired a
 *     subset of its unknown operations.  This is sound by induction on the
 *     distance to success: the subsuming configuration is at most as far
 *     from success, and was entered.  The scan tries completed operations
 *     before unknown ones at each configuration, so the small subsets tend
 *     to come first.
 *   - Symmetry of unknown operations.  Two unknown operations with the same
 *     effect (a write of the same value, a cas with the same arguments),
 *     both already called, are interchangeable from then on.  So of each
 *     such class only the earliest-called one not yet fired may fire: the
 *     fired ones of a class are always its first k, configurations that
 *     differ only in which of them fired become one, and subsumption
 *     compares counts.  Without this, a history with many crashed writes of
 *     a few values explores every choice among them.
 *   - Unknown operations fire only when observed.  Say an unknown
 *     operation u changes the register from p to q and o comes right after
 *     it.  If o sets the register whatever it held (a write; a cas that
 *     applied, unless p is its expected value too, when u did nothing), u
 *     can be dropped: it goes last instead.  If o would also have gone from
 *     p and leaves the register as it found it (a read or refused cas that
 *     p satisfies too), u can move after o.  If o is an unknown op that
 *     does nothing there, o can be dropped.  None of these breaks real-time
 *     order, an unknown op's return being at infinity.  Repeating them, if
 *     any linearization exists, one exists where every fired unknown op
 *     changes the register and is followed by an op that p would not allow
 *     (or an unknown cas expecting q); the search builds only those ("o
 *     observes u").  Such chains end in a completed op, so u fires only if
 *     some pending completed op needs q, directly or through pending
 *     unknown cas ops (compute_needs).  A configuration right after a
 *     firing carries the obligation, and is memoized with it.  Without
 *     this the search records, at every later point, whether each crashed
 *     write has happened yet: exponential in the crashes.
 *   - Values nobody tests are one value.  The register's behaviour depends
 *     only on whether it equals the values reads return and cas ops
 *     expect.  A value no op tests (typically a unique value written and
 *     then overwritten unseen) is indistinguishable from any other such,
 *     so all of them, and null if untested, become one value, JUNK.  With
 *     distinct written values this makes crashed writes nobody saw one
 *     class (see symmetry) instead of as many alternatives as there are
 *     crashes.
 *   - Forced moves.  A pending read, or a cas that did not apply, that the
 *     register allows now is taken without trying alternatives; see
 *     forced_move() for why nothing is lost.  Without this the search
 *     interleaves each read with every subset of the concurrent writes.
 *   - The completed set is hashed with Zobrist keys (a random 64-bit word
 *     per operation, XORed in and out), so a step costs O(1) to hash.
 *   - Memoized sets are stored trimmed: leading all-ones (or, for unknown
 *     operations, all-zeros) words and trailing zero words are dropped.
 *     Operations are numbered in call order and linearized roughly in that
 *     order, so a long history costs memory for its concurrency, not its
 *     length.
 *   - Events at the same time count as concurrent (calls sort before
 *     returns): with coarse clocks, equal timestamps do not say which came
 *     first, and assuming an order could report a violation that is not.
 *   - The search is bounded by a count of configurations entered, not by
 *     wall-clock time, so an UNDECIDED verdict replays exactly.
 *
 * Each pruning rule above is checked against a brute-force oracle on
 * random small histories (tests/lincheck), and the reference histories of
 * Porcupine's etcd test need under 100 configurations each.
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
/* The value standing for every value no op tests (never a value id). */
#define JUNK UINT32_MAX
/* Memo entries are addressed by 32-bit word offsets (+1) into the arena:
 * 32 GiB, far beyond any state limit worth setting. */
#define ARENA_MAX_WORDS ((size_t)UINT32_MAX - 1)

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
	uint32_t a, b; /* value ids */
	int finite;    /* returns at a finite time: must be linearized */
	uint32_t bit;  /* index in the finite or the unknown set */
	size_t hidx;   /* index in the history's ops for the key */
	uint64_t zob;  /* Zobrist key; 0 for unknown ops (not hashed) */
	/* Unknown ops: the previous unknown op (in call order) with the same
	 * effect, which must fire first; -1 if none. */
	int32_t prev_same;
};

/* A memo slot, one per (completed set, state): the top half of the hash,
 * and the arena offset + 1 of the newest entry with that key (0 marks an
 * empty slot).  The low half of the hash, which picks the home slot, is in
 * the entry, so growing needs no rehash.  8 bytes: memory is what limits
 * the search. */
struct slot {
	uint32_t tag;
	uint32_t off1;
};

/* The memo: configurations, open-addressed by key, each key chaining the
 * unknown sets entered with it.  An arena entry is
 *   [state | fnw << 32] [flo | unw << 32] [ulo | low half of hash << 32]
 *   [offset + 1 of the next entry with this key, or 0]
 *   [obligation: 0, or 1 << 32 | the register before the unknown op]
 *   [fnw words of the finite set from word flo]
 *   [unw words of the unknown set from word ulo]. */
#define ENTRY_HDR 5
/* Entries of one key looked at per lookup; see cache_enter. */
#define MEMO_CHAIN_WALK 64
struct cache {
	uint64_t *arena;
	size_t alen, acap;
	struct slot *slots;
	size_t n;     /* entries: configurations entered */
	size_t nkeys; /* slots in use */
	size_t cap;   /* slots: a power of two, at most half full */
};

/* The two halves of the linearized set. */
struct opset {
	uint64_t *w;
	size_t nwords;
};

/* What the pending ops at a configuration need the register to become
 * (see worth_firing), computed once per configuration visit. */
#define NEEDS_MAX 64
struct needs {
	int valid;
	int any;	       /* any change will do, or too many to list */
	uint32_t v[NEEDS_MAX]; /* values some op needs */
	size_t n;
};

/* Scan phases at a configuration: completed ops first, then unknown. */
enum phase {
	PH_FINITE,
	PH_UNKNOWN,
};

struct checker {
	struct mop *ops; /* m of them, in call order */
	size_t m;
	/* The event list: node 0 is the head; 1..2m are events. */
	int32_t *prev, *next;
	uint32_t *node_op; /* the op of each event */
	uint8_t *is_call;
	int32_t *match;	       /* call node -> its return node */
	struct opset fin, unk; /* linearized completed / unknown ops */
	uint64_t zob;	       /* Zobrist hash of fin */
	struct cache cache;
	uint64_t states;       /* configurations entered: the work done */
	uint64_t max_states;   /* 0: unbounded */
	int32_t *stack_node;   /* linearized calls, in order */
	uint32_t *stack_state; /* register before each of them */
	uint8_t *stack_forced; /* taken without alternatives */
	uint8_t *stack_oblig;  /* obligation before each of them ... */
	uint32_t *stack_oprev; /* ... and its register */
	size_t depth;	       /* ops linearized */
	uint32_t state;	       /* the register after them */
	size_t finite_left;    /* completed ops not linearized */
	struct needs needs;    /* of the current configuration */
	int oblig;	       /* the last op fired an unknown op ... */
	uint32_t oblig_prev;   /* ... which changed the register from this */
	uint32_t init;	       /* the register at the start: null or JUNK */

	/* The deepest dead end so far. */
	int have_dead_end;
	size_t best_depth;
	uint32_t best_blocked; /* op index */
	uint32_t *best_prefix; /* op indices, best_depth of them */
	uint32_t best_regs[EXPLAIN_MAX_REGS];
	size_t best_nregs;
	uint32_t best_pending[EXPLAIN_MAX_PENDING];
	size_t best_npending, best_pending_more;
};

struct lincheck_result {
	const struct lincheck_history *h; /* borrowed */
	size_t key;
	const struct lincheck_op *hops; /* borrowed from h */
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
	m.finite = known;
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

/* The window of s that differs from fill: words [lo, lo + nw), where the
 * words before lo equal fill and those after are zero. */
static void trim(const struct opset *s, uint64_t fill, size_t *lo, size_t *nw)
{
	size_t l = 0;
	while (l < s->nwords && s->w[l] == fill)
		l++;
	size_t h = s->nwords;
	while (h > l && s->w[h - 1] == 0)
		h--;
	*lo = l;
	*nw = h - l;
}

static int cache_grow(struct cache *c)
{
	size_t cap = c->cap ? c->cap * 2 : 1024;
	if (cap > (size_t)1 << 32)
		return RK_ENOMEM;
	struct slot *s = calloc(cap, sizeof(*s));
	if (!s)
		return RK_ENOMEM;
	for (size_t j = 0; j < c->cap; j++) {
		if (!c->slots[j].off1)
			continue;
		const uint64_t *e = c->arena + c->slots[j].off1 - 1;
		size_t i = (size_t)(e[2] >> 32) & (cap - 1);
		while (s[i].off1)
			i = (i + 1) & (cap - 1);
		s[i] = c->slots[j];
	}
	free(c->slots);
	c->slots = s;
	c->cap = cap;
	return 0;
}

/* True when the unknown set stored at e (window ulo, unw) is a subset of
 * the current one. */
static int stored_subset(const uint64_t *e, size_t ulo, size_t unw,
			 const struct opset *unk)
{
	for (size_t j = 0; j < unw; j++)
		if (e[j] & ~unk->w[ulo + j])
			return 0;
	return 1;
}

/* True when the current unknown set (window lo, nw) is a subset of the
 * one stored at e (window ulo, unw). */
static int stored_superset(const uint64_t *e, size_t ulo, size_t unw,
			   const struct opset *unk, size_t lo, size_t nw)
{
	for (size_t j = lo; j < lo + nw; j++) {
		uint64_t sw = j >= ulo && j < ulo + unw ? e[j - ulo] : 0;
		if (unk->w[j] & ~sw)
			return 0;
	}
	return 1;
}

/* Enters the configuration (fin, unk, state, ob) unless the memo holds one
 * that subsumes it: the same completed set and state, a subset of its
 * unknown ops, and no obligation or the same one (an obligation only
 * narrows what may come next; ob is 0 or 1 << 32 | the register before the
 * unknown op just fired).  Entries it subsumes in turn are unlinked, keeping
 * each key's chain an antichain, and at most MEMO_CHAIN_WALK of a chain are
 * looked at.  Missing a subsuming entry only costs repeated work (the
 * search terminates without any memo: every step grows the linearized
 * set), so the cap trades completeness of pruning for a bound on the cost
 * of a step.  Returns 1 when entered, 0 when subsumed, or RK_ENOMEM. */
static int cache_enter(struct cache *c, const struct opset *fin,
		       const struct opset *unk, uint64_t zob, uint32_t state,
		       uint64_t ob)
{
	if ((c->nkeys + 1) * 2 > c->cap && cache_grow(c))
		return RK_ENOMEM;
	size_t flo, fnw, ulo, unw;
	trim(fin, UINT64_MAX, &flo, &fnw);
	trim(unk, 0, &ulo, &unw);
	uint64_t hash = zob ^ splitmix64(state);
	uint32_t tag = (uint32_t)(hash >> 32);
	uint64_t w0 = (uint64_t)state | ((uint64_t)fnw << 32);
	int head_gone = 0; /* the key's only entry is subsumed by this one */
	size_t mask = c->cap - 1;
	size_t i = (size_t)(uint32_t)hash & mask;
	for (; c->slots[i].off1; i = (i + 1) & mask) {
		if (c->slots[i].tag != tag)
			continue;
		const uint64_t *e = c->arena + c->slots[i].off1 - 1;
		if (e[0] != w0 || (uint32_t)e[1] != flo ||
		    memcmp(e + ENTRY_HDR, fin->w + flo,
			   fnw * sizeof(uint64_t)) != 0)
			continue;
		/* The key's slot: is any of its unknown sets a subset? */
		uint64_t *link = NULL; /* the previous entry's next field */
		uint64_t *ce = c->arena + c->slots[i].off1 - 1;
		for (int walked = 0; walked < MEMO_CHAIN_WALK; walked++) {
			size_t eulo = (uint32_t)ce[2];
			size_t eunw = (size_t)(ce[1] >> 32);
			const uint64_t *eu = ce + ENTRY_HDR + fnw;
			uint64_t eob = ce[4];
			if ((eob == 0 || eob == ob) &&
			    stored_subset(eu, eulo, eunw, unk))
				return 0;
			uint64_t next = ce[3];
			if ((ob == 0 || ob == eob) &&
			    stored_superset(eu, eulo, eunw, unk, ulo, unw)) {
				/* Subsumed by the entry about to go in. */
				if (link)
					*link = next;
				else if (next)
					c->slots[i].off1 = (uint32_t)next;
				else
					head_gone = 1; /* the slot stays used */
			} else {
				link = &ce[3];
			}
			if (!next)
				break;
			ce = c->arena + next - 1;
		}
		break;
	}
	size_t need = ENTRY_HDR + fnw + unw;
	if (c->acap - c->alen < need) {
		size_t cap = c->acap ? c->acap * 2 : 4096;
		while (cap - c->alen < need)
			cap *= 2;
		if (cap > ARENA_MAX_WORDS)
			cap = ARENA_MAX_WORDS;
		if (cap - c->alen < need)
			return RK_ENOMEM;
		uint64_t *a = realloc(c->arena, cap * sizeof(*a));
		if (!a)
			return RK_ENOMEM;
		c->arena = a;
		c->acap = cap;
	}
	uint64_t *e = c->arena + c->alen;
	e[0] = w0;
	e[1] = (uint64_t)flo | ((uint64_t)unw << 32);
	e[2] = (uint64_t)ulo | ((uint64_t)(uint32_t)hash << 32);
	e[3] = head_gone ? 0 : c->slots[i].off1; /* the key's others, or 0 */
	e[4] = ob;
	memcpy(e + ENTRY_HDR, fin->w + flo, fnw * sizeof(uint64_t));
	memcpy(e + ENTRY_HDR + fnw, unk->w + ulo, unw * sizeof(uint64_t));
	if (!c->slots[i].off1)
		c->nkeys++;
	c->slots[i].tag = tag;
	c->slots[i].off1 = (uint32_t)(c->alen + 1);
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

static int u32_cmp(const void *pa, const void *pb)
{
	uint32_t a = *(const uint32_t *)pa, b = *(const uint32_t *)pb;
	return a < b ? -1 : a > b;
}

static int tested(const uint32_t *t, size_t n, uint32_t v)
{
	return bsearch(&v, t, n, sizeof(*t), u32_cmp) != NULL;
}

/* Replaces every value that no read returns and no cas expects by JUNK,
 * in the ops and the initial state (see the top of the file). */
static int merge_untested(struct checker *c)
{
	uint32_t *t = calloc(c->m + 1, sizeof(*t));
	if (!t)
		return RK_ENOMEM;
	size_t n = 0;
	for (size_t i = 0; i < c->m; i++)
		if (c->ops[i].kind != K_WRITE)
			t[n++] = c->ops[i].a;
	qsort(t, n, sizeof(*t), u32_cmp);
	for (size_t i = 0; i < c->m; i++) {
		struct mop *op = &c->ops[i];
		if (op->kind == K_WRITE && !tested(t, n, op->a))
			op->a = JUNK;
		if ((op->kind == K_CAS_OK || op->kind == K_CAS_MAYBE) &&
		    !tested(t, n, op->b))
			op->b = JUNK;
	}
	c->init = tested(t, n, LINCHECK_NULL) ? LINCHECK_NULL : JUNK;
	free(t);
	return 0;
}

/* An unknown op's effect class, for linking each to its predecessor. */
struct effect {
	enum kind kind;
	uint32_t a, b;
	uint32_t op;
};

static int effect_cmp(const void *pa, const void *pb)
{
	const struct effect *x = pa, *y = pb;
	if (x->kind != y->kind)
		return x->kind < y->kind ? -1 : 1;
	if (x->a != y->a)
		return x->a < y->a ? -1 : 1;
	if (x->b != y->b)
		return x->b < y->b ? -1 : 1;
	return x->op < y->op ? -1 : x->op > y->op;
}

/* Sets prev_same for the unknown ops (nunk of them). */
static int link_effects(struct checker *c, size_t nunk)
{
	struct effect *fx = calloc(nunk + 1, sizeof(*fx));
	if (!fx)
		return RK_ENOMEM;
	size_t k = 0;
	for (size_t i = 0; i < c->m; i++) {
		struct mop *op = &c->ops[i];
		op->prev_same = -1;
		if (op->finite)
			continue;
		/* A write's b is unused: do not let it split the class. */
		uint32_t b = op->kind == K_WRITE ? 0 : op->b;
		fx[k++] = (struct effect){op->kind, op->a, b, (uint32_t)i};
	}
	qsort(fx, k, sizeof(*fx), effect_cmp);
	for (size_t j = 1; j < k; j++)
		if (fx[j].kind == fx[j - 1].kind && fx[j].a == fx[j - 1].a &&
		    fx[j].b == fx[j - 1].b)
			c->ops[fx[j].op].prev_same = (int32_t)fx[j - 1].op;
	free(fx);
	return 0;
}

static void checker_destroy(struct checker *c)
{
	free(c->ops);
	free(c->prev);
	free(c->next);
	free(c->node_op);
	free(c->is_call);
	free(c->match);
	free(c->fin.w);
	free(c->unk.w);
	free(c->stack_node);
	free(c->stack_state);
	free(c->stack_forced);
	free(c->stack_oblig);
	free(c->stack_oprev);
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
	c->ops = calloc(n + 1, sizeof(*c->ops));
	if (!c->ops)
		goto out;
	size_t m = 0, nfin = 0, nunk = 0;
	for (size_t i = 0; i < n; i++) {
		const struct lincheck_op *o = &hops[i];
		if (o->f == LINCHECK_READ && o->outcome != LINCHECK_OK)
			continue; /* an unknown read constrains nothing */
		struct mop *op = &c->ops[m];
		*op = mop_of(o);
		op->hidx = i;
		if (op->finite) {
			op->bit = (uint32_t)nfin++;
			op->zob = splitmix64(0x6c696e636865636bull + m);
		} else {
			op->bit = (uint32_t)nunk++;
		}
		m++;
	}
	c->m = m;
	c->finite_left = nfin;
	size_t nodes = 2 * m + 1;
	c->prev = calloc(nodes, sizeof(*c->prev));
	c->next = calloc(nodes, sizeof(*c->next));
	c->node_op = calloc(nodes, sizeof(*c->node_op));
	c->is_call = calloc(nodes, sizeof(*c->is_call));
	c->match = calloc(nodes, sizeof(*c->match));
	c->fin.nwords = (nfin + 63) / 64;
	c->unk.nwords = (nunk + 63) / 64;
	c->fin.w = calloc(c->fin.nwords + 1, sizeof(uint64_t));
	c->unk.w = calloc(c->unk.nwords + 1, sizeof(uint64_t));
	c->stack_node = calloc(m + 1, sizeof(*c->stack_node));
	c->stack_state = calloc(m + 1, sizeof(*c->stack_state));
	c->stack_forced = calloc(m + 1, sizeof(*c->stack_forced));
	c->stack_oblig = calloc(m + 1, sizeof(*c->stack_oblig));
	c->stack_oprev = calloc(m + 1, sizeof(*c->stack_oprev));
	c->best_prefix = calloc(m + 1, sizeof(*c->best_prefix));
	ev = calloc(2 * m + 1, sizeof(*ev));
	if (!c->prev || !c->next || !c->node_op || !c->is_call || !c->match ||
	    !c->fin.w || !c->unk.w || !c->stack_node || !c->stack_state ||
	    !c->stack_forced || !c->stack_oblig || !c->stack_oprev ||
	    !c->best_prefix || !ev)
		goto out;
	for (size_t i = 0; i < m; i++) {
		const struct lincheck_op *o = &hops[c->ops[i].hidx];
		ev[2 * i] = (struct event){o->call, 0, (uint32_t)i};
		ev[2 * i + 1] = (struct event){o->ret, 1, (uint32_t)i};
	}
	if (merge_untested(c))
		goto out;
	if (link_effects(c, nunk))
		goto out;
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

/* Called at the return node of an op that is not linearized. */
static void note_dead_end(struct checker *c, int32_t ret_node)
{
	uint32_t op = c->node_op[ret_node];
	size_t depth = c->depth;
	if (c->have_dead_end && depth == c->best_depth &&
	    op == c->best_blocked) {
		for (size_t i = 0; i < c->best_nregs; i++)
			if (c->best_regs[i] == c->state)
				return;
		if (c->best_nregs < EXPLAIN_MAX_REGS)
			c->best_regs[c->best_nregs++] = c->state;
		return;
	}
	if (c->have_dead_end && depth <= c->best_depth)
		return;
	c->have_dead_end = 1;
	c->best_depth = depth;
	c->best_blocked = op;
	for (size_t i = 0; i < depth; i++)
		c->best_prefix[i] = c->node_op[c->stack_node[i]];
	c->best_regs[0] = c->state;
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

static int fired(const struct checker *c, uint32_t op)
{
	const struct mop *o = &c->ops[op];
	return (c->unk.w[o->bit / 64] >> (o->bit % 64)) & 1;
}

static void bit_flip(struct checker *c, uint32_t op)
{
	const struct mop *o = &c->ops[op];
	struct opset *s = o->finite ? &c->fin : &c->unk;
	s->w[o->bit / 64] ^= 1ull << (o->bit % 64);
	c->zob ^= o->zob;
}

/* True when op may follow an unknown op that changed the register from
 * prev to cur (see "observed" at the top): prev would not allow it, or it
 * is an unknown cas expecting cur. */
static int observes(const struct mop *op, uint32_t prev, uint32_t cur)
{
	uint32_t r;
	switch (op->kind) {
	case K_WRITE:
		return 0;
	case K_CAS_MAYBE:
		return cur == op->a;
	default:
		return !step(op, prev, &r);
	}
}

static int needs_has(const struct needs *nd, uint32_t v)
{
	for (size_t i = 0; i < nd->n; i++)
		if (nd->v[i] == v)
			return 1;
	return 0;
}

static void needs_add(struct needs *nd, uint32_t v)
{
	if (needs_has(nd, v))
		return;
	if (nd->n == NEEDS_MAX)
		nd->any = 1; /* too many to list: assume anything helps */
	else
		nd->v[nd->n++] = v;
}

/* Fills c->needs: the register values after which some pending completed
 * op could go that cannot go now, directly or through a chain of pending
 * unknown cas ops (every fired unknown op must be observed, and a chain of
 * them must end in a completed op: see "observed" at the top). */
static void compute_needs(struct checker *c)
{
	struct needs *nd = &c->needs;
	nd->valid = 1;
	nd->any = 0;
	nd->n = 0;
	for (int32_t n = c->next[0]; n >= 0 && c->is_call[n]; n = c->next[n]) {
		const struct mop *op = &c->ops[c->node_op[n]];
		if ((op->kind == K_READ || op->kind == K_CAS_OK) &&
		    c->state != op->a)
			needs_add(nd, op->a);
		/* Refused now, so any change satisfies it. */
		if (op->kind == K_CAS_REFUSED && c->state == op->a)
			nd->any = 1;
	}
	/* Back through unknown cas ops: a value is needed if one of them
	 * turns it into a needed value.  Each pass adds a value or ends. */
	for (int grew = 1; grew && !nd->any;) {
		grew = 0;
		for (int32_t n = c->next[0]; n >= 0 && c->is_call[n];
		     n = c->next[n]) {
			const struct mop *op = &c->ops[c->node_op[n]];
			if (op->kind != K_CAS_MAYBE || op->a == op->b ||
			    needs_has(nd, op->a) || !needs_has(nd, op->b))
				continue;
			needs_add(nd, op->a);
			grew = 1;
		}
	}
}

/* Whether firing an unknown op now, making the register to, could be
 * observed in the end by a pending completed op (a superset of what the
 * search will accept, so it refuses nothing the search would take). */
static int worth_firing(struct checker *c, uint32_t to)
{
	if (!c->needs.valid)
		compute_needs(c);
	return c->needs.any || needs_has(&c->needs, to);
}

/* Whether op may go next from the current configuration, and the register
 * after it. */
static int allowed(const struct checker *c, const struct mop *op, uint32_t *ns)
{
	if (!step(op, c->state, ns))
		return 0;
	if (c->oblig && !observes(op, c->oblig_prev, c->state))
		return 0;
	/* An unknown op that changes nothing is never observed. */
	return op->finite || *ns != c->state;
}

/* Linearizes the call at node next, if allowed and the configuration it
 * leads to is not subsumed.  Returns 1 when it did, 0 when not, 2 at the
 * state limit, or RK_ENOMEM. */
static int linearize(struct checker *c, int32_t node, int forced)
{
	uint32_t op = c->node_op[node];
	const struct mop *o = &c->ops[op];
	uint32_t ns;
	if (!allowed(c, o, &ns))
		return 0;
	if (!o->finite && !worth_firing(c, ns))
		return 0;
	bit_flip(c, op);
	uint64_t ob = o->finite ? 0 : (1ull << 32) | c->state;
	int rc = cache_enter(&c->cache, &c->fin, &c->unk, c->zob, ns, ob);
	if (rc != 1) {
		bit_flip(c, op);
		return rc;
	}
	if (c->max_states && c->states >= c->max_states) {
		bit_flip(c, op);
		return 2;
	}
	c->states++;
	c->stack_node[c->depth] = node;
	c->stack_state[c->depth] = c->state;
	c->stack_forced[c->depth] = (uint8_t)forced;
	c->stack_oblig[c->depth] = (uint8_t)c->oblig;
	c->stack_oprev[c->depth] = c->oblig_prev;
	c->depth++;
	c->needs.valid = 0;
	c->oblig = !o->finite;
	c->oblig_prev = c->state;
	c->state = ns;
	lift(c, node);
	c->finite_left -= (size_t)o->finite;
	return 1;
}

/* Undoes the last linearization; returns its call node. */
static int32_t undo(struct checker *c, int *forced)
{
	c->depth--;
	c->needs.valid = 0;
	int32_t node = c->stack_node[c->depth];
	uint32_t op = c->node_op[node];
	c->state = c->stack_state[c->depth];
	c->oblig = c->stack_oblig[c->depth];
	c->oblig_prev = c->stack_oprev[c->depth];
	*forced = c->stack_forced[c->depth];
	bit_flip(c, op);
	unlift(c, node);
	c->finite_left += (size_t)c->ops[op].finite;
	return node;
}

/* A pending read, or cas that did not apply, that may go next; -1 if none.
 * These leave the register as it is, so if any linearization continues
 * from here, one continues with this op first: moving it to the front keeps
 * every later op's view of the register, and keeps real-time order because
 * every op that returned before it was called is already linearized (its
 * return would otherwise end the scan before this call).  It is also in
 * every linearization, being completed.  So taking it without trying the
 * alternatives loses nothing.  (Under an obligation it must also be an
 * observer, which allowed() checks; the continuation it heads stays one
 * where every firing is observed, once unobserved firings are dropped.) */
static int32_t forced_move(const struct checker *c)
{
	for (int32_t n = c->next[0]; n >= 0 && c->is_call[n]; n = c->next[n]) {
		const struct mop *op = &c->ops[c->node_op[n]];
		uint32_t ns;
		if ((op->kind == K_READ || op->kind == K_CAS_REFUSED) &&
		    allowed(c, op, &ns))
			return n;
	}
	return -1;
}

/* Returns a verdict, or RK_ENOMEM. */
static int search(struct checker *c)
{
	c->state = c->init;
	/* Enter the empty configuration, so nothing leads back to it. */
	int rc0 = cache_enter(&c->cache, &c->fin, &c->unk, c->zob, c->state, 0);
	if (rc0 < 0)
		return rc0;
	int32_t node = c->next[0];
	enum phase phase = PH_FINITE;
	int fresh = 1; /* at a configuration just entered */
	for (;;) {
		/* What is left returns at infinity: it can all go last. */
		if (c->finite_left == 0)
			return LINCHECK_LINEARIZABLE;
		int rc;
		if (fresh) {
			fresh = 0;
			phase = PH_FINITE;
			node = c->next[0];
			int32_t f = forced_move(c);
			if (f >= 0) {
				rc = linearize(c, f, 1);
				if (rc < 0)
					return rc;
				if (rc == 2)
					return LINCHECK_UNDECIDED;
				if (rc == 1) {
					fresh = 1;
					continue;
				}
				/* It leads to a subsumed configuration, which
				 * failed or is being explored: no alternative
				 * here can do better. */
				goto backtrack;
			}
		}
		if (c->is_call[node]) {
			const struct mop *op = &c->ops[c->node_op[node]];
			/* Of interchangeable unknown ops, the first fires. */
			int eligible =
			    op->finite
				? phase == PH_FINITE
				: phase == PH_UNKNOWN &&
				      (op->prev_same < 0 ||
				       fired(c, (uint32_t)op->prev_same));
			if (eligible) {
				rc = linearize(c, node, 0);
				if (rc < 0)
					return rc;
				if (rc == 2)
					return LINCHECK_UNDECIDED;
				if (rc == 1) {
					fresh = 1;
					continue;
				}
			}
			node = c->next[node];
			continue;
		}
		if (phase == PH_FINITE) {
			/* Now the unknown ops, which were skipped. */
			phase = PH_UNKNOWN;
			node = c->next[0];
			continue;
		}
		/* The return of an op not linearized: this branch is dead.
		 * (Not worth explaining when only the obligation killed it.) */
		if (!c->oblig)
			note_dead_end(c, node);
	backtrack:
		/* Back to the latest choice with alternatives left; a forced
		 * move had none, so its configuration is dead too. */
		for (;;) {
			if (c->depth == 0)
				return LINCHECK_NOT_LINEARIZABLE;
			int forced;
			int32_t call = undo(c, &forced);
			if (!forced) {
				phase = c->ops[c->node_op[call]].finite
					    ? PH_FINITE
					    : PH_UNKNOWN;
				node = c->next[call];
				break;
			}
		}
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
	r->states = c.states;
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
		/* The search's values may be JUNK: replay the prefix for the
		 * real one, and keep only the real values of the others. */
		uint32_t s = LINCHECK_NULL;
		for (size_t i = 0; i < r->prefix_len; i++) {
			struct mop m = mop_of(&r->hops[r->prefix[i]]);
			uint32_t ns;
			step(&m, s, &ns);
			s = ns;
		}
		r->regs[0] = s;
		r->nregs = 1;
		for (size_t i = 1; i < c.best_nregs; i++)
			if (c.best_regs[i] != JUNK && c.best_regs[i] != s)
				r->regs[r->nregs++] = c.best_regs[i];
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

static void print_value(const struct lincheck_result *r, FILE *out, uint32_t id)
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
		fputs("), but no linearization continues from there", out);
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
	fputs("  pending then, from register ", out);
	print_value(r, out, r->regs[0]);
	fputs(":\n", out);
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

static void json_value(const struct lincheck_result *r, FILE *out, uint32_t id)
{
	lincheck_value_print_json(out, lincheck_history_value(r->h, id));
}

static void json_op(const struct lincheck_result *r, FILE *out, size_t i)
{
	const struct lincheck_op *o = &r->hops[i];
	fprintf(out,
		"{\"process\":%" PRId64 ",\"f\":\"%s\",\"value\":", o->process,
		f_name[o->f]);
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
	fprintf(out,
		",\"invoke_time\":%" PRId64 ",\"complete_time\":", o->call);
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
	fprintf(out, ",\"verdict\":\"%s\",\"ops\":%zu,\"states\":%" PRIu64,
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
