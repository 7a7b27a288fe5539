/* paxos.c: compare-and-set by single-decree Paxos per key.
 *
 * THE ALGORITHM (Lamport, "The Part-Time Parliament" 1998, "Paxos Made
 * Simple" 2001).  Proposers want a value chosen; acceptors vote.  Every
 * attempt carries a ballot, unique and totally ordered.  Phase 1: the
 * proposer sends PREPARE(b); an acceptor that has promised nothing higher
 * PROMISEs never to accept below b and reports the highest-ballot proposal
 * it has accepted.  Phase 2: with promises from a majority, the proposer
 * PROPOSEs (b, v), where v is the value of the highest-ballot proposal
 * among the promises, or its own value when there is none; an acceptor
 * that has promised nothing above b ACCEPTs.  A value accepted by a
 * majority at one ballot is *chosen*.  Safety: once (b, v) is chosen, every
 * proposal with a higher ballot carries v, because its proposer's majority
 * intersects the one that accepted (b, v), and the highest accepted
 * proposal it hears of can only be (b, v) or a later one carrying v.
 * Proposers then tell everybody the decision (COMMIT), which is how the
 * learners - here, the replicas' stores - learn it.
 *
 * A KEY'S HISTORY IS A SEQUENCE OF DECISIONS.  Single-decree Paxos decides
 * once; a register needs a decision per compare-and-set.  Like Cassandra's
 * lightweight transactions we keep, per key and acceptor, one slot rather
 * than a log: (promised ballot, last accepted proposal, latest committed
 * ballot), and ballots only grow across decisions.  The boundary between
 * instances is the commit (Cassandra's "most recent commit"): a promise
 * reports the acceptor's latest commit, and an accepted proposal at or
 * below the newest commit among a majority's promises belongs to a
 * finished instance and is ignored; one above it is *in progress*: it may
 * have been chosen, so the proposer must finish it - re-propose it under
 * its own ballot and commit it - and only then start over for its own
 * operation.  Why one slot suffices, by induction on ballots: let (b1, v1)
 * be chosen in instance k.  A later proposer's majority contains an
 * acceptor that accepted b1 before promising the new ballot, so it sees an
 * accepted ballot >= b1 or a commit >= b1.  If the highest accepted is
 * above every commit it re-proposes it, and by induction that proposal is
 * of instance k carrying v1, or of a later instance.  Otherwise the newest
 * commit is >= b1, so it decided instance k or a later one, and the new
 * proposal belongs to the instance after it.  Either way no instance gets
 * two values.  The simulator checks exactly this after every event.
 *
 * READ IN THE PREPARE ROUND (Cassandra's Paxos v2, CEP-14; ScyllaDB's LWT).
 * Cassandra's first design read the current value with a separate quorum
 * read after the promises: four round trips for a CAS.  Here each promise
 * carries the key's current record (value and timestamp) from the
 * acceptor's store.  With nothing in progress the newest of them is the
 * latest decision's value, so the proposer evaluates the condition at once:
 *   - condition false, or a SERIAL read: answer now, one round trip;
 *   - condition true: propose, then commit: three round trips.
 * The commit goes to every replica and we answer after a majority applied
 * it, so a QUORUM read of the plain store sees the result too.
 *
 * WHY IT IS LINEARIZABLE.  An applied CAS takes effect when its value is
 * chosen, inside its call; the value it replaced is the previous
 * instance's, which is what its condition was evaluated on, since its
 * proposal belongs to the instance following the newest commit it saw.  A
 * read or a failed condition takes effect when its majority promised: it
 * returns the latest decision among that majority.  Could a decision
 * already be made that it missed?  The missed decision's majority meets
 * ours in an acceptor that promised us before accepting it, so that
 * decision was chosen after our call began: it is concurrent, and the read
 * linearizes before it.  And any decision we did see is not overtaken by
 * one we missed, because a later decision's proposer saw ours.  A proposal
 * left in progress by a proposer that died or timed out is finished by
 * whoever next prepares the key; its own client got "unknown", which may
 * take effect at any time after its call (Jepsen's "info"), so finishing it
 * late is allowed.  So a read needs no extra round that fences such
 * proposals off before it answers (Cassandra added one for reads that must
 * not see a timed-out write appear later, CASSANDRA-12126): our read only
 * returns decisions, and a late-finished proposal linearizes after it.
 * The simulator checks this with Jepsen's definitions: a timed-out
 * operation is "info".
 *
 * COMMIT TIMESTAMPS FOLLOW BALLOT ORDER.  A decision is stored as a normal
 * last-writer-wins record, so plain reads see CAS results.  Its timestamp
 * is the proposal's *origin*: the ballot at which the value was first
 * proposed (a proposer finishing someone's proposal keeps its origin).
 * Origins of successive decisions increase: an acceptor promises a ballot
 * only above its store's timestamp for the key, so a new proposal's ballot
 * exceeds every record among its majority, the previous decision's
 * included.  Ballots are the proposer node's hybrid logical clock (rk_ts:
 * (hlc, node id), unique, totally ordered), and proposers observe every
 * timestamp they read, so they rarely need a second try.  Since a
 * decision's record timestamp is its origin, a proposer that lost track of
 * its own proposal (a lost reply, a preempted round) can recognise it
 * later: the key's newest record, or the in-progress proposal, carries our
 * origin.
 *
 * DURABILITY.  An acceptor's promise and acceptance are worth something
 * only if it still honours them after a crash: its state is persisted
 * (persist(), fsync'd by the owner) before any reply that depends on it
 * leaves (paxos_persisted() releases them).  A commit is applied to the
 * store before the state recording it is persisted, and the owner makes
 * both durable in order.
 *
 * PRUNING.  Cassandra keeps Paxos state in a table with a TTL and later
 * needed "Paxos repair" to drop it safely.  We drop a key's state as soon
 * as it says nothing the store's record does not: promised, accepted and
 * committed ballots all at or below the record's timestamp.  That is safe
 * because an acceptor takes its floor from the store anyway - it promises
 * only above the record's timestamp, accepts only at or above it, and
 * reports it as a commit - so with or without the state it answers every
 * message the same way.  It needs the record to be durable first (the
 * durability contract) and to stay: a tombstone a commit wrote must
 * outlive any Paxos message still in flight (the node's tombstone grace
 * period, hours, against proposer deadlines of seconds).  In the common
 * uncontended case the state goes away with the commit, so acceptor state
 * exists only for keys with a decision in progress; a decision finished by
 * someone else (committed under a ballot above its origin) keeps its
 * state until the next decision on the key.
 *
 * CONTENTION (CASSANDRA-15746).  Two proposers preparing one key in turn
 * can starve each other forever.  The node routes a key's CAS to the key's
 * primary replica, and here one operation per key runs at a time at this
 * node, the rest wait in a bounded FIFO, so one node's clients never duel.
 * Proposers on different nodes (a primary thought down, a client talking
 * to another replica) can still meet; the loser backs off for a random
 * time (full jitter, growing) and retries until contention_timeout_ms,
 * then answers RK_ECONTENTION_TIMEOUT: result unknown.
 *
 * WHERE WE DIFFER FROM CASSANDRA, AND WHY.
 *  - The read is in the prepare (v2), and a condition that fails answers
 *    after one round trip without proposing anything (argued above).
 *  - Commit timestamps are proposal origins, not the committing ballot, so
 *    every record of one decision has one timestamp and a proposer can
 *    recognise its own decision.
 *  - The acceptor's floor includes the store's timestamp: a plain write
 *    newer than a ballot makes the ballot lose, and the retry reads the
 *    write (see README.md on mixing plain writes with CAS).
 *  - Once any of our proposals has gone out we never answer "not applied"
 *    unless ours can no longer be decided: a retry that finds our origin
 *    in progress finishes it (applied); one that finds it as the newest
 *    record reports applied; one that finds the key unchanged re-proposes
 *    the same origin (so at most one of the two can be decided); one that
 *    finishes another proposal of our instance knows ours lost it, and
 *    starts over as a fresh operation; anything else is reported as
 *    unknown (RK_ECONTENTION_TIMEOUT).  A naive retry would evaluate the
 *    condition again on a value its own lost round had written, and
 *    answer a false "not applied" (Cassandra answers such cases with an
 *    "unknown result" error).
 *  - Lagging replicas are not sent the most recent commit before a round
 *    (Cassandra v1 does): the newest value among the promises wins anyway,
 *    and the next commit reaches them.
 *  - State is pruned locally and at once (above), not by TTL.
 *
 * NOTHING HERE TOUCHES I/O: time, randomness, clocks, sending, the store
 * and persistence go through struct paxos_runtime.
 */
#include "paxos.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "hash.h"

/* ---- tuning ---------------------------------------------------------- */

/* A phase without a majority of replies for this long is retried.  Far
 * above a LAN round trip plus an acceptor's fsync (a few ms), so it fires
 * on loss, not on a slow disk; short against the client's deadline, so a
 * lost message costs one retry, not the operation. */
#define DEFAULT_ROUND_TIMEOUT_MS 250u
/* Cassandra's cas_contention_timeout: a second of losing to other
 * proposers means contention no backoff will fix soon. */
#define DEFAULT_CONTENTION_TIMEOUT_MS 1000u
/* Retry delays after losing a round: uniform in [0, cap], the cap starting
 * here and doubling per loss.  Two proposers on a LAN collide within a
 * round trip, so a few ms separates them most of the time... */
#define DEFAULT_BACKOFF_MIN_MS 4u
/* ... and 100 ms caps it (Cassandra sleeps up to 100 ms), so a loser still
 * gets several tries within the contention timeout. */
#define DEFAULT_BACKOFF_MAX_MS 100u
/* Operations waiting on one key at one node.  A lock loop of a few hundred
 * clients fits; beyond that they would only time out in the queue. */
#define DEFAULT_MAX_QUEUE 128u
/* TESTING.md's default key and value limits. */
#define DEFAULT_MAX_KEY 1024u
#define DEFAULT_MAX_VALUE (1u << 20)
/* Initial buckets of the per-key tables (they double at load 1). */
#define TABLE_MIN_CAP 16u
/* Bytes of a key shown in log lines. */
#define LOG_KEY_MAX 24u

/* ---- owned values ---------------------------------------------------- */

/* A value the module owns. */
struct val {
	int present;   /* 0: absent */
	uint8_t *data; /* owned; NULL when absent or empty */
	size_t len;
};

static struct paxos_value val_view(const struct val *v)
{
	struct paxos_value r = {.present = v->present,
				.data = v->len ? v->data : NULL,
				.len = v->len};
	return r;
}

static void val_free(struct val *v)
{
	free(v->data);
	memset(v, 0, sizeof(*v));
}

/* Replaces *v with a copy of src.  Returns 0 or RK_ENOMEM (v unchanged). */
static int val_set(struct val *v, const struct paxos_value *src)
{
	uint8_t *d = NULL;
	if (src->present && src->len) {
		d = malloc(src->len);
		if (!d)
			return RK_ENOMEM;
		memcpy(d, src->data, src->len);
	}
	free(v->data);
	v->present = src->present != 0;
	v->data = d;
	v->len = src->present ? src->len : 0;
	return 0;
}

/* A proposal the module owns. */
struct prop {
	rk_ts ballot;
	rk_ts origin;
	rk_ts base;
	struct val value;
};

static struct paxos_proposal prop_view(const struct prop *p)
{
	struct paxos_proposal r = {.ballot = p->ballot,
				   .origin = p->origin,
				   .base = p->base,
				   .value = val_view(&p->value)};
	return r;
}

static int prop_set(struct prop *p, const struct paxos_proposal *src)
{
	int rc = val_set(&p->value, &src->value);
	if (rc)
		return rc;
	p->ballot = src->ballot;
	p->origin = src->origin;
	p->base = src->base;
	return 0;
}

static void prop_clear(struct prop *p)
{
	val_free(&p->value);
	memset(p, 0, sizeof(*p));
}

static int ts_lt(rk_ts a, rk_ts b)
{
	return rk_ts_cmp(a, b) < 0;
}

static int ts_eq(rk_ts a, rk_ts b)
{
	return rk_ts_cmp(a, b) == 0;
}

static rk_ts ts_max(rk_ts a, rk_ts b)
{
	return ts_lt(a, b) ? b : a;
}

/* ---- a table of keys ------------------------------------------------- */

/* Intrusive: embedded first in the acceptor's and the proposer's per-key
 * records.  The key bytes are owned by the node. */
struct tnode {
	struct tnode *next; /* hash chain */
	uint64_t hash;
	uint8_t *key; /* owned */
	size_t klen;
};

struct table {
	struct tnode **b; /* owned bucket array */
	size_t cap;	  /* power of two, or 0 before the first insert */
	size_t n;	  /* nodes */
	uint64_t seed;	  /* rk_hash_seeded seed */
};

static uint64_t table_hash(const struct table *t, const uint8_t *key,
			   size_t klen)
{
	return rk_hash_seeded(key, klen, t->seed);
}

static struct tnode *table_find(const struct table *t, const uint8_t *key,
				size_t klen)
{
	if (!t->cap)
		return NULL;
	uint64_t h = table_hash(t, key, klen);
	for (struct tnode *n = t->b[h & (t->cap - 1)]; n; n = n->next)
		if (n->hash == h && n->klen == klen &&
		    !memcmp(n->key, key, klen))
			return n;
	return NULL;
}

/* Sets up node's key (a copy) and links it in.  Returns 0 or RK_ENOMEM. */
static int table_insert(struct table *t, struct tnode *node, const uint8_t *key,
			size_t klen)
{
	if (t->n + 1 > t->cap) {
		size_t cap = t->cap ? 2 * t->cap : TABLE_MIN_CAP;
		struct tnode **b = calloc(cap, sizeof(*b));
		if (!b)
			return RK_ENOMEM;
		for (size_t i = 0; i < t->cap; i++) {
			struct tnode *n = t->b[i], *next;
			for (; n; n = next) {
				next = n->next;
				n->next = b[n->hash & (cap - 1)];
				b[n->hash & (cap - 1)] = n;
			}
		}
		free(t->b);
		t->b = b;
		t->cap = cap;
	}
	node->key = malloc(klen);
	if (!node->key)
		return RK_ENOMEM;
	memcpy(node->key, key, klen);
	node->klen = klen;
	node->hash = table_hash(t, key, klen);
	struct tnode **head = &t->b[node->hash & (t->cap - 1)];
	node->next = *head;
	*head = node;
	t->n++;
	return 0;
}

/* Unlinks node and frees its key (not node itself). */
static void table_remove(struct table *t, struct tnode *node)
{
	struct tnode **pp = &t->b[node->hash & (t->cap - 1)];
	while (*pp != node)
		pp = &(*pp)->next;
	*pp = node->next;
	t->n--;
	free(node->key);
	node->key = NULL;
}

/* ---- state ----------------------------------------------------------- */

/* One key's acceptor state. */
struct acc {
	struct tnode t;	 /* first: the table links it */
	rk_ts promised;	 /* highest ballot promised or accepted */
	struct prop acc; /* last accepted; ballot 0: none */
	rk_ts committed; /* highest ballot committed here */
};

enum op_kind {
	OP_CAS = 1,
	OP_READ = 2,
};

enum phase {
	PH_QUEUED = 0,	/* waiting behind the key's running op */
	PH_PREPARE = 1, /* PREPARE sent, gathering promises */
	PH_PROPOSE = 2, /* PROPOSE sent, gathering acceptances */
	PH_COMMIT = 3,	/* COMMIT sent, gathering acks */
	PH_BACKOFF = 4, /* lost a round; waiting to retry */
};

struct slot;

/* One client operation at the proposer. */
struct op {
	struct op *next;   /* the slot's queue */
	struct slot *slot; /* the key's slot */
	uint64_t token;	   /* the owner's id for the reply */
	enum op_kind kind;
	int cond_any;		      /* PAXOS_IF_ANY */
	struct val expect;	      /* PAXOS_IF_EQUALS: expected value */
	struct val newv;	      /* CAS: value to write (absent: delete) */
	uint64_t deadline;	      /* caller's, now_ms() time */
	uint64_t contention_deadline; /* from activation */
	uint64_t replicas[PAXOS_MAX_REPLICAS];
	uint32_t n;	   /* replicas */
	uint32_t majority; /* n/2 + 1 */

	enum phase phase;
	uint64_t req;	      /* request id of the current phase */
	rk_ts ballot;	      /* ballot of the current round */
	uint64_t phase_until; /* round timeout, or end of backoff */
	uint32_t replied;     /* replica bits that answered this phase */
	uint32_t n_granted;   /* ... granting */
	uint32_t n_rejected;  /* ... refusing */

	/* Gathered from the promises of the current round. */
	struct prop inprog;  /* highest accepted (ballot 0: none) */
	rk_ts max_committed; /* newest commit reported */
	int have_current;    /* a current value was reported */
	struct val current;  /* newest record reported ... */
	rk_ts current_ts;    /* ... and its timestamp */

	struct prop prop; /* what we propose/commit in this round */
	int repairing;	  /* prop is somebody else's in-progress value */

	/* Our own value, once proposed: recognising it later. */
	int proposed;  /* a PROPOSE with our value went out */
	rk_ts origin;  /* its origin */
	rk_ts base;    /* the commit it followed */
	rk_ts base_ts; /* the record timestamp its condition saw */

	uint32_t attempts;    /* prepare rounds */
	uint32_t round_trips; /* phases */
	uint32_t losses;      /* rounds lost: the backoff exponent */
};

/* One key's operations at the proposer: the running one and the queue. */
struct slot {
	struct tnode t;	   /* first: the table links it */
	struct op *active; /* running, or NULL */
	struct op *qhead;  /* waiting, FIFO */
	struct op *qtail;
	size_t queued;
	int advancing; /* op_finish is starting queued ops */
};

/* A reply waiting for persistence. */
struct pending {
	struct pending *next;
	uint64_t wait; /* send once paxos_persisted(>= wait) */
	uint64_t to;
	struct paxos_msg m; /* pointers into data */
	uint8_t data[];	    /* key, then value bytes */
};

struct paxos {
	struct paxos_config cfg;
	struct paxos_runtime rt;
	struct rk_hlc hlc;	 /* when rt.clock_tick is NULL */
	struct table accs;	 /* key -> struct acc */
	struct table slots;	 /* key -> struct slot */
	uint64_t next_req;	 /* request ids */
	uint64_t persist_seq;	 /* last token handed to persist() */
	uint64_t durable;	 /* greatest token paxos_persisted() */
	struct pending *pq_head; /* replies waiting, FIFO, waits ascending */
	struct pending *pq_tail;
	uint32_t n_pending;
	struct paxos_stats st;
};

/* ---- helpers --------------------------------------------------------- */

#define LOG_DEBUG(p, ...) rk_debug((p)->rt.log, "paxos", __VA_ARGS__)
#define LOG_TRACE(p, ...) rk_trace((p)->rt.log, "paxos", __VA_ARGS__)
#define LOG_WARN(p, ...) rk_warn((p)->rt.log, "paxos", __VA_ARGS__)

/* A printable form of a key for logs: printable bytes as is, others as
 * \xNN, cut at LOG_KEY_MAX. */
static const char *key_str(char *buf, size_t cap, const uint8_t *k, size_t n)
{
	size_t o = 0;
	for (size_t i = 0; i < n && i < LOG_KEY_MAX && o + 5 < cap; i++) {
		if (k[i] >= 0x20 && k[i] < 0x7f && k[i] != '\\')
			buf[o++] = (char)k[i];
		else
			o +=
			    (size_t)snprintf(buf + o, cap - o, "\\x%02x", k[i]);
	}
	if (n > LOG_KEY_MAX && o + 4 < cap) {
		memcpy(buf + o, "...", 3);
		o += 3;
	}
	buf[o] = '\0';
	return buf;
}

#define KEYSTR(k, n) key_str((char[128]){0}, 128, (k), (n))

static uint64_t now(const struct paxos *p)
{
	return p->rt.now_ms(p->rt.ctx);
}

static rk_ts clock_tick(struct paxos *p)
{
	if (p->rt.clock_tick)
		return p->rt.clock_tick(p->rt.ctx);
	rk_ts t = rk_hlc_tick(&p->hlc, now(p));
	return t;
}

static void clock_observe(struct paxos *p, rk_ts t)
{
	if (rk_ts_is_zero(t))
		return;
	if (p->rt.clock_observe)
		p->rt.clock_observe(p->rt.ctx, t);
	else
		rk_hlc_observe(&p->hlc, t.hlc);
}

static void send_msg(struct paxos *p, uint64_t to, const struct paxos_msg *m)
{
	p->st.msgs_sent++;
	LOG_TRACE(p,
		  "-> n%" PRIu64 " %s key=%s req=%" PRIu64 " ballot=%" PRIu64
		  ".%" PRIu64 " ok=%d",
		  to, paxos_msg_type_name(m->type), KEYSTR(m->key, m->klen),
		  m->req, m->ballot.hlc, m->ballot.node, m->ok);
	p->rt.send(p->rt.ctx, to, m);
}

static int value_fits(const struct paxos *p, const struct paxos_value *v)
{
	return !v->present || v->len <= p->cfg.max_value;
}

/* ---- configuration and life ------------------------------------------ */

void paxos_config_defaults(struct paxos_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->round_timeout_ms = DEFAULT_ROUND_TIMEOUT_MS;
	cfg->contention_timeout_ms = DEFAULT_CONTENTION_TIMEOUT_MS;
	cfg->backoff_min_ms = DEFAULT_BACKOFF_MIN_MS;
	cfg->backoff_max_ms = DEFAULT_BACKOFF_MAX_MS;
	cfg->max_queue = DEFAULT_MAX_QUEUE;
	cfg->max_key = DEFAULT_MAX_KEY;
	cfg->max_value = DEFAULT_MAX_VALUE;
}

int paxos_new(const struct paxos_config *cfg, const struct paxos_runtime *rt,
	      struct paxos **out)
{
	*out = NULL;
	if (!cfg->id || !cfg->round_timeout_ms || !cfg->contention_timeout_ms ||
	    !cfg->backoff_max_ms || cfg->backoff_min_ms > cfg->backoff_max_ms ||
	    !cfg->max_key || cfg->max_key > PAXOS_KEY_MAX ||
	    cfg->max_value > PAXOS_VALUE_MAX)
		return RK_EINVALID;
	if (!rt->now_ms || !rt->random || !rt->send || !rt->reply ||
	    !rt->read_current || !rt->apply_commit || !rt->persist)
		return RK_EINVALID;
	struct paxos *p = calloc(1, sizeof(*p));
	if (!p)
		return RK_ENOMEM;
	p->cfg = *cfg;
	p->rt = *rt;
	rk_hlc_init(&p->hlc, cfg->id);
	p->accs.seed = rt->random(rt->ctx);
	p->slots.seed = rt->random(rt->ctx);
	/* Request ids start at random so replies to a previous life of this
	 * node rarely even match one (ballots decide anyway). */
	p->next_req = rt->random(rt->ctx) >> 16;
	*out = p;
	return 0;
}

static void op_free(struct op *op)
{
	if (!op)
		return;
	val_free(&op->expect);
	val_free(&op->newv);
	prop_clear(&op->inprog);
	val_free(&op->current);
	prop_clear(&op->prop);
	free(op);
}

static void acc_free(struct acc *a)
{
	prop_clear(&a->acc);
	free(a->t.key);
	free(a);
}

void paxos_free(struct paxos *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->accs.cap; i++) {
		struct tnode *n = p->accs.b[i], *next;
		for (; n; n = next) {
			next = n->next;
			acc_free((struct acc *)n);
		}
	}
	for (size_t i = 0; i < p->slots.cap; i++) {
		struct tnode *n = p->slots.b[i], *next;
		for (; n; n = next) {
			struct slot *s = (struct slot *)n;
			next = n->next;
			op_free(s->active);
			for (struct op *o = s->qhead, *on; o; o = on) {
				on = o->next;
				op_free(o);
			}
			free(s->t.key);
			free(s);
		}
	}
	free(p->accs.b);
	free(p->slots.b);
	for (struct pending *q = p->pq_head, *qn; q; q = qn) {
		qn = q->next;
		free(q);
	}
	free(p);
}

uint64_t paxos_self_id(const struct paxos *p)
{
	return p->cfg.id;
}

void paxos_stats(const struct paxos *p, struct paxos_stats *out)
{
	*out = p->st;
	out->acceptor_keys = (uint32_t)p->accs.n;
	out->active_keys = (uint32_t)p->slots.n;
	out->pending_replies = p->n_pending;
}

/* ---- acceptor -------------------------------------------------------- */

static struct acc *acc_find(const struct paxos *p, const uint8_t *key,
			    size_t klen)
{
	return (struct acc *)table_find(&p->accs, key, klen);
}

/* The key's state, created empty when missing.  NULL: out of memory. */
static struct acc *acc_get(struct paxos *p, const uint8_t *key, size_t klen)
{
	struct acc *a = acc_find(p, key, klen);
	if (a)
		return a;
	a = calloc(1, sizeof(*a));
	if (!a)
		return NULL;
	if (table_insert(&p->accs, &a->t, key, klen)) {
		free(a);
		return NULL;
	}
	return a;
}

static void acc_view(const struct acc *a, struct paxos_acceptor_state *s)
{
	s->promised = a->promised;
	s->accepted = prop_view(&a->acc);
	s->committed = a->committed;
}

/* Nothing in a's state that the store's record (timestamp cur) does not
 * already say; see PRUNING in the essay. */
static int acc_prunable(const struct acc *a, rk_ts cur)
{
	return !ts_lt(cur, a->promised) && !ts_lt(cur, a->committed) &&
	       !ts_lt(cur, a->acc.ballot);
}

/* Hands a's state (or its deletion, when prune) to persist(). */
static void acc_persist(struct paxos *p, struct acc *a, int prune)
{
	struct paxos_acceptor_state s;
	uint64_t token = ++p->persist_seq;
	p->st.persists++;
	if (prune) {
		p->st.prunes++;
		p->rt.persist(p->rt.ctx, a->t.key, a->t.klen, NULL, token);
		table_remove(&p->accs, &a->t);
		prop_clear(&a->acc);
		free(a);
		return;
	}
	acc_view(a, &s);
	p->rt.persist(p->rt.ctx, a->t.key, a->t.klen, &s, token);
}

/* Bytes a deep copy of m needs after the struct. */
static size_t msg_extra(const struct paxos_msg *m)
{
	return m->klen +
	       (m->accepted.value.present ? m->accepted.value.len : 0) +
	       (m->current.present ? m->current.len : 0) +
	       (m->proposal.value.present ? m->proposal.value.len : 0);
}

static const uint8_t *copy_into(uint8_t **dst, const uint8_t *src, size_t n)
{
	if (!n)
		return NULL;
	memcpy(*dst, src, n);
	const uint8_t *r = *dst;
	*dst += n;
	return r;
}

/* Sends a reply from the acceptor: at once when it grants nothing or
 * everything persisted so far is durable, else after paxos_persisted(). */
static void acc_reply(struct paxos *p, uint64_t to, const struct paxos_msg *m,
		      int grants)
{
	if (!grants || p->durable >= p->persist_seq ||
	    p->cfg.unsafe == PAXOS_UNSAFE_REPLY_EARLY) {
		send_msg(p, to, m);
		return;
	}
	struct pending *q = malloc(sizeof(*q) + msg_extra(m));
	if (!q) {
		/* Dropping a reply is a lost message: the proposer retries. */
		LOG_WARN(p, "out of memory queueing a %s reply; dropped",
			 paxos_msg_type_name(m->type));
		return;
	}
	uint8_t *d = q->data;
	q->next = NULL;
	q->wait = p->persist_seq;
	q->to = to;
	q->m = *m;
	q->m.key = copy_into(&d, m->key, m->klen);
	q->m.accepted.value.data =
	    copy_into(&d, m->accepted.value.data,
		      m->accepted.value.present ? m->accepted.value.len : 0);
	q->m.current.data = copy_into(&d, m->current.data,
				      m->current.present ? m->current.len : 0);
	q->m.proposal.value.data =
	    copy_into(&d, m->proposal.value.data,
		      m->proposal.value.present ? m->proposal.value.len : 0);
	if (p->pq_tail)
		p->pq_tail->next = q;
	else
		p->pq_head = q;
	p->pq_tail = q;
	p->n_pending++;
}

void paxos_persisted(struct paxos *p, uint64_t token)
{
	if (token > p->persist_seq)
		token = p->persist_seq;
	if (token > p->durable)
		p->durable = token;
	while (p->pq_head && p->pq_head->wait <= p->durable) {
		struct pending *q = p->pq_head;
		p->pq_head = q->next;
		if (!p->pq_head)
			p->pq_tail = NULL;
		p->n_pending--;
		send_msg(p, q->to, &q->m);
		free(q);
	}
}

int paxos_acceptor_restore(struct paxos *p, const uint8_t *key, size_t klen,
			   const struct paxos_acceptor_state *state)
{
	if (!key || klen < 1 || klen > PAXOS_KEY_MAX ||
	    !paxos_state_valid(state))
		return RK_EINVALID;
	if (paxos_state_empty(state))
		return 0;
	struct acc *a = acc_get(p, key, klen);
	if (!a)
		return RK_ENOMEM;
	if (prop_set(&a->acc, &state->accepted))
		return RK_ENOMEM;
	a->promised = state->promised;
	a->committed = state->committed;
	clock_observe(p, state->promised);
	return 0;
}

int paxos_acceptor_get(const struct paxos *p, const uint8_t *key, size_t klen,
		       struct paxos_acceptor_state *out)
{
	const struct acc *a = acc_find(p, key, klen);
	memset(out, 0, sizeof(*out));
	if (!a)
		return RK_ENOT_FOUND;
	acc_view(a, out);
	return 0;
}

/* Reads the key's record for the acceptor.  Returns 0 or the store's
 * error (the caller then answers nothing). */
static int read_current(struct paxos *p, const uint8_t *key, size_t klen,
			struct paxos_value *v, rk_ts *ts)
{
	memset(v, 0, sizeof(*v));
	*ts = (rk_ts){0, 0};
	int rc = p->rt.read_current(p->rt.ctx, key, klen, v, ts);
	if (rc) {
		LOG_WARN(p, "read of key %s failed: %s", KEYSTR(key, klen),
			 rk_strerror(rc));
		return rc;
	}
	if (!v->present) {
		v->data = NULL;
		v->len = 0;
	}
	if (v->present && rk_ts_is_zero(*ts)) {
		LOG_WARN(p, "store record of key %s has no timestamp",
			 KEYSTR(key, klen));
		return RK_EINTERNAL;
	}
	return 0;
}

static void on_prepare(struct paxos *p, uint64_t from,
		       const struct paxos_msg *m)
{
	struct paxos_value cur;
	rk_ts cur_ts;
	if (read_current(p, m->key, m->klen, &cur, &cur_ts))
		return;
	struct acc *a = acc_find(p, m->key, m->klen);
	rk_ts promised = a ? a->promised : (rk_ts){0, 0};
	struct paxos_msg r = {.type = PAXOS_MSG_PROMISE,
			      .key = m->key,
			      .klen = m->klen,
			      .req = m->req,
			      .ballot = m->ballot};
	/* Promise only above the store's record: a decision's timestamp
	 * must exceed every record its proposer's majority holds. */
	if (ts_lt(m->ballot, promised) || !ts_lt(cur_ts, m->ballot)) {
		r.promised = ts_max(promised, cur_ts);
		acc_reply(p, from, &r, 0);
		return;
	}
	if (!a && !(a = acc_get(p, m->key, m->klen)))
		return;
	if (ts_lt(a->promised, m->ballot)) {
		a->promised = m->ballot;
		acc_persist(p, a, 0);
	}
	r.ok = 1;
	r.committed = ts_max(a->committed, cur_ts);
	if (ts_lt(r.committed, a->acc.ballot))
		r.accepted = prop_view(&a->acc);
	r.current = cur;
	r.current_ts = cur_ts;
	/* The store's memory may be gone after persist(): read again. */
	if (read_current(p, m->key, m->klen, &r.current, &r.current_ts))
		return;
	acc_reply(p, from, &r, 1);
}

static void on_propose(struct paxos *p, uint64_t from,
		       const struct paxos_msg *m)
{
	const struct paxos_proposal *pr = &m->proposal;
	struct paxos_value cur;
	rk_ts cur_ts;
	if (read_current(p, m->key, m->klen, &cur, &cur_ts))
		return;
	struct acc *a = acc_find(p, m->key, m->klen);
	rk_ts promised = a ? a->promised : (rk_ts){0, 0};
	struct paxos_msg r = {.type = PAXOS_MSG_ACCEPTED,
			      .key = m->key,
			      .klen = m->klen,
			      .req = m->req,
			      .ballot = m->ballot};
	int refuse = ts_lt(pr->ballot, promised) || ts_lt(pr->ballot, cur_ts) ||
		     ts_lt(pr->origin, cur_ts);
	/* One ballot, one value: a second value under a ballot we accepted
	 * means a proposer reused a ballot (its clock went back). */
	if (a && ts_eq(a->acc.ballot, pr->ballot) &&
	    !paxos_value_eq(&pr->value, &(struct paxos_value){
					    .present = a->acc.value.present,
					    .data = a->acc.value.data,
					    .len = a->acc.value.len})) {
		LOG_WARN(p,
			 "n%" PRIu64 " reused ballot %" PRIu64 ".%" PRIu64
			 " with another value on key %s",
			 from, pr->ballot.hlc, pr->ballot.node,
			 KEYSTR(m->key, m->klen));
		refuse = 1;
	}
	if (p->cfg.unsafe == PAXOS_UNSAFE_IGNORE_PROMISE)
		refuse = 0;
	if (refuse) {
		r.promised = ts_max(ts_max(promised, cur_ts), pr->ballot);
		acc_reply(p, from, &r, 0);
		return;
	}
	if (!a && !(a = acc_get(p, m->key, m->klen)))
		return;
	if (prop_set(&a->acc, pr))
		return;
	if (ts_lt(a->promised, pr->ballot))
		a->promised = pr->ballot;
	acc_persist(p, a, 0);
	r.ok = 1;
	acc_reply(p, from, &r, 1);
}

static void on_commit(struct paxos *p, uint64_t from, const struct paxos_msg *m)
{
	const struct paxos_proposal *pr = &m->proposal;
	struct paxos_value cur;
	rk_ts cur_ts;
	int rc = p->rt.apply_commit(p->rt.ctx, m->key, m->klen, &pr->value,
				    pr->origin);
	if (rc) {
		LOG_WARN(p, "commit of key %s failed: %s",
			 KEYSTR(m->key, m->klen), rk_strerror(rc));
		return;
	}
	if (read_current(p, m->key, m->klen, &cur, &cur_ts))
		return;
	struct acc *a = acc_get(p, m->key, m->klen);
	if (!a)
		return;
	if (ts_lt(a->committed, pr->ballot))
		a->committed = pr->ballot;
	if (ts_lt(a->promised, pr->ballot))
		a->promised = pr->ballot;
	acc_persist(p, a, acc_prunable(a, cur_ts));
	struct paxos_msg r = {.type = PAXOS_MSG_COMMITTED,
			      .key = m->key,
			      .klen = m->klen,
			      .req = m->req,
			      .ballot = m->ballot};
	acc_reply(p, from, &r, 1);
}

/* ---- proposer -------------------------------------------------------- */

static struct slot *slot_find(const struct paxos *p, const uint8_t *key,
			      size_t klen)
{
	return (struct slot *)table_find(&p->slots, key, klen);
}

static int op_replica_index(const struct op *op, uint64_t node)
{
	for (uint32_t i = 0; i < op->n; i++)
		if (op->replicas[i] == node)
			return (int)i;
	return -1;
}

static void send_all(struct paxos *p, struct op *op, struct paxos_msg *m,
		     uint32_t skip)
{
	for (uint32_t i = 0; i < op->n; i++)
		if (!(skip & (1u << i)))
			send_msg(p, op->replicas[i], m);
}

static void new_phase(struct paxos *p, struct op *op, enum phase ph)
{
	op->phase = ph;
	op->req = ++p->next_req;
	op->replied = 0;
	op->n_granted = 0;
	op->n_rejected = 0;
	op->round_trips++;
	op->phase_until = now(p) + p->cfg.round_timeout_ms;
}

static void op_activate(struct paxos *p, struct op *op);

/* Answers op, frees it and starts the key's next operation. */
static void op_finish(struct paxos *p, struct op *op, int status, int applied,
		      const struct val *value, rk_ts ts)
{
	struct slot *s = op->slot;
	struct paxos_result r = {.status = status,
				 .applied = applied,
				 .ts = ts,
				 .round_trips = op->round_trips,
				 .attempts = op->attempts};
	if (value && !status)
		r.value = val_view(value);
	if (status)
		r.ts = (rk_ts){0, 0};
	if (status)
		p->st.ops_failed++;
	else if (op->kind == OP_READ)
		p->st.reads++;
	else if (applied)
		p->st.ops_applied++;
	else
		p->st.ops_not_applied++;
	LOG_DEBUG(p, "%s key=%s done: %s applied=%d rtt=%u attempts=%u",
		  op->kind == OP_READ ? "read" : "cas",
		  KEYSTR(s->t.key, s->t.klen), rk_errname(status), applied,
		  op->round_trips, op->attempts);
	p->rt.reply(p->rt.ctx, op->token, &r);
	if (s->active == op)
		s->active = NULL;
	op_free(op);
	/* Starting the next op may finish it at once (deadline passed,
	 * replicas down), which calls us again: the outermost call runs the
	 * queue and frees the slot. */
	if (s->advancing)
		return;
	s->advancing = 1;
	while (!s->active && s->qhead) {
		struct op *next = s->qhead;
		s->qhead = next->next;
		if (!s->qhead)
			s->qtail = NULL;
		s->queued--;
		next->next = NULL;
		s->active = next;
		op_activate(p, next);
	}
	s->advancing = 0;
	if (!s->active && !s->qhead) {
		table_remove(&p->slots, &s->t);
		free(s);
	}
}

static void op_fail(struct paxos *p, struct op *op, int status)
{
	op_finish(p, op, status, 0, NULL, (rk_ts){0, 0});
}

static int up_count(struct paxos *p, const struct op *op)
{
	uint32_t up = 0;
	for (uint32_t i = 0; i < op->n; i++)
		if (!p->rt.is_up || op->replicas[i] == p->cfg.id ||
		    p->rt.is_up(p->rt.ctx, op->replicas[i]))
			up++;
	return (int)up;
}

static void start_round(struct paxos *p, struct op *op);

/* Waits a random time, then start_round (from paxos_tick). */
static void backoff(struct paxos *p, struct op *op, uint64_t max_ms)
{
	uint64_t t = now(p);
	uint64_t delay = max_ms ? p->rt.random(p->rt.ctx) % (max_ms + 1) : 0;
	op->phase = PH_BACKOFF;
	op->phase_until = t + delay;
	if (op->phase_until > op->deadline)
		op->phase_until = op->deadline;
}

/* We lost a round to a higher ballot. */
static void lost(struct paxos *p, struct op *op)
{
	p->st.preempted++;
	if (now(p) >= op->contention_deadline) {
		op_fail(p, op, RK_ECONTENTION_TIMEOUT);
		return;
	}
	uint32_t shift = op->losses < 16 ? op->losses : 16;
	uint64_t cap = (uint64_t)p->cfg.backoff_min_ms << shift;
	if (cap > p->cfg.backoff_max_ms)
		cap = p->cfg.backoff_max_ms;
	op->losses++;
	backoff(p, op, cap);
}

static void start_round(struct paxos *p, struct op *op)
{
	struct slot *s = op->slot;
	uint64_t t = now(p);
	if (t >= op->deadline) {
		op_fail(p, op, RK_ETIMEOUT);
		return;
	}
	if (up_count(p, op) < (int)op->majority) {
		/* Nothing of ours was proposed: certainly not applied. */
		if (!op->proposed) {
			op_fail(p, op, RK_EUNAVAILABLE);
			return;
		}
		backoff(p, op, p->cfg.round_timeout_ms);
		return;
	}
	op->attempts++;
	op->ballot = clock_tick(p);
	prop_clear(&op->inprog);
	val_free(&op->current);
	op->have_current = 0;
	op->current_ts = (rk_ts){0, 0};
	op->max_committed = (rk_ts){0, 0};
	new_phase(p, op, PH_PREPARE);
	struct paxos_msg m = {.type = PAXOS_MSG_PREPARE,
			      .key = s->t.key,
			      .klen = s->t.klen,
			      .req = op->req,
			      .ballot = op->ballot};
	LOG_DEBUG(p, "prepare key=%s ballot=%" PRIu64 ".%" PRIu64 " attempt=%u",
		  KEYSTR(s->t.key, s->t.klen), op->ballot.hlc, op->ballot.node,
		  op->attempts);
	send_all(p, op, &m, 0);
}

static void op_activate(struct paxos *p, struct op *op)
{
	op->contention_deadline = now(p) + p->cfg.contention_timeout_ms;
	start_round(p, op);
}

/* Sends the proposal in op->prop (ballot set by the caller). */
static void send_propose(struct paxos *p, struct op *op)
{
	struct slot *s = op->slot;
	new_phase(p, op, PH_PROPOSE);
	struct paxos_msg m = {.type = PAXOS_MSG_PROPOSE,
			      .key = s->t.key,
			      .klen = s->t.klen,
			      .req = op->req,
			      .ballot = op->prop.ballot,
			      .proposal = prop_view(&op->prop)};
	if (!op->repairing)
		op->proposed = 1;
	send_all(p, op, &m, 0);
}

static void send_commit(struct paxos *p, struct op *op, uint32_t skip)
{
	struct slot *s = op->slot;
	struct paxos_msg m = {.type = PAXOS_MSG_COMMIT,
			      .key = s->t.key,
			      .klen = s->t.klen,
			      .req = op->req,
			      .ballot = op->prop.ballot,
			      .proposal = prop_view(&op->prop)};
	send_all(p, op, &m, skip);
}

static int cond_holds(const struct op *op, const struct val *cur)
{
	if (op->cond_any)
		return 1;
	struct paxos_value a = val_view(&op->expect), b = val_view(cur);
	return paxos_value_eq(&a, &b);
}

/* Sets op->prop to (our ballot, value, origin, base). */
static int set_prop(struct op *op, const struct val *value, rk_ts origin,
		    rk_ts base, int repairing)
{
	struct paxos_proposal src = {.ballot = op->ballot,
				     .origin = origin,
				     .base = base,
				     .value = val_view(value)};
	if (prop_set(&op->prop, &src))
		return RK_ENOMEM;
	op->repairing = repairing;
	return 0;
}

/* A majority promised: finish what is in progress, or answer, or propose
 * our value. */
static void decide(struct paxos *p, struct op *op)
{
	const struct val *cur = &op->current;
	struct slot *s = op->slot;

	if (!rk_ts_is_zero(op->inprog.ballot) &&
	    ts_lt(op->max_committed, op->inprog.ballot)) {
		int own = op->proposed && ts_eq(op->inprog.origin, op->origin);
		if (own)
			p->st.own_finished++;
		else
			p->st.repairs++;
		LOG_DEBUG(p,
			  "key=%s finishing %s proposal origin=%" PRIu64
			  ".%" PRIu64,
			  KEYSTR(s->t.key, s->t.klen), own ? "our" : "a",
			  op->inprog.origin.hlc, op->inprog.origin.node);
		if (set_prop(op, &op->inprog.value, op->inprog.origin,
			     op->inprog.base, !own)) {
			op_fail(p, op, op->proposed ? RK_ETIMEOUT : RK_ENOMEM);
			return;
		}
		send_propose(p, op);
		return;
	}
	if (op->proposed) {
		/* Our value went out before and is not in progress now. */
		if (ts_eq(op->current_ts, op->origin)) {
			p->st.own_seen++;
			op_finish(p, op, 0, 1, cur, op->current_ts);
			return;
		}
		if (ts_eq(op->max_committed, op->base) &&
		    ts_eq(op->current_ts, op->base_ts) && cond_holds(op, cur) &&
		    ts_lt(op->base, op->origin)) {
			/* Nothing was decided since: propose it again, under
			 * the same origin, so at most one of the two can
			 * ever be decided. */
			if (set_prop(op, &op->newv, op->origin, op->base, 0)) {
				op_fail(p, op, RK_ETIMEOUT);
				return;
			}
			p->st.own_reproposed++;
			send_propose(p, op);
			return;
		}
		/* Something else was decided; ours may have been decided and
		 * overwritten, or may never be.  Unknown. */
		p->st.own_unknown++;
		op_fail(p, op, RK_ECONTENTION_TIMEOUT);
		return;
	}
	if (op->kind == OP_READ) {
		op_finish(p, op, 0, 0, cur, op->current_ts);
		return;
	}
	if (!cond_holds(op, cur)) {
		op_finish(p, op, 0, 0, cur, op->current_ts);
		return;
	}
	if (!ts_lt(op->max_committed, op->ballot)) {
		/* Cannot happen with correct acceptors (they promise only
		 * above their commits); treat as a lost round. */
		lost(p, op);
		return;
	}
	op->origin = op->ballot;
	op->base = op->max_committed;
	op->base_ts = op->current_ts;
	if (set_prop(op, &op->newv, op->origin, op->base, 0)) {
		op_fail(p, op, RK_ENOMEM);
		return;
	}
	send_propose(p, op);
}

static void on_promise(struct paxos *p, struct op *op,
		       const struct paxos_msg *m)
{
	if (!m->ok) {
		clock_observe(p, m->promised);
		if (++op->n_rejected > op->n - op->majority)
			lost(p, op);
		return;
	}
	clock_observe(p, m->committed);
	clock_observe(p, m->current_ts);
	clock_observe(p, m->accepted.ballot);
	if (!rk_ts_is_zero(m->accepted.ballot) &&
	    ts_lt(op->inprog.ballot, m->accepted.ballot) &&
	    prop_set(&op->inprog, &m->accepted))
		return; /* out of memory: as if lost; the round times out */
	op->max_committed = ts_max(op->max_committed, m->committed);
	if (!op->have_current || ts_lt(op->current_ts, m->current_ts)) {
		if (val_set(&op->current, &m->current))
			return;
		op->current_ts = m->current_ts;
		op->have_current = 1;
	}
	if (++op->n_granted >= op->majority)
		decide(p, op);
}

static void on_accepted(struct paxos *p, struct op *op,
			const struct paxos_msg *m)
{
	if (!m->ok) {
		clock_observe(p, m->promised);
		if (++op->n_rejected > op->n - op->majority)
			lost(p, op);
		return;
	}
	if (++op->n_granted < op->majority)
		return;
	/* Chosen. */
	new_phase(p, op, PH_COMMIT);
	send_commit(p, op, 0);
}

static void on_committed(struct paxos *p, struct op *op)
{
	if (++op->n_granted < op->majority)
		return;
	if (op->repairing) {
		/* Somebody's decision is in place; now ours, afresh.  If it
		 * decided the instance our own proposal belonged to, ours can
		 * never be decided (one value per instance): we are a fresh
		 * operation again, free to evaluate the condition. */
		if (op->proposed && ts_eq(op->prop.base, op->base) &&
		    !ts_eq(op->prop.origin, op->origin)) {
			p->st.own_superseded++;
			op->proposed = 0;
		}
		if (now(p) >= op->contention_deadline) {
			op_fail(p, op, RK_ECONTENTION_TIMEOUT);
			return;
		}
		start_round(p, op);
		return;
	}
	op_finish(p, op, 0, 1, &op->prop.value, op->prop.origin);
}

/* A reply for the proposer. */
static void on_reply(struct paxos *p, uint64_t from, const struct paxos_msg *m)
{
	struct slot *s = slot_find(p, m->key, m->klen);
	struct op *op = s ? s->active : NULL;
	enum phase want = m->type == PAXOS_MSG_PROMISE	  ? PH_PREPARE
			  : m->type == PAXOS_MSG_ACCEPTED ? PH_PROPOSE
							  : PH_COMMIT;
	int i = op ? op_replica_index(op, from) : -1;
	if (!op || op->phase != want || m->req != op->req ||
	    !ts_eq(m->ballot,
		   op->phase == PH_PREPARE ? op->ballot : op->prop.ballot) ||
	    i < 0 || (op->replied & (1u << i))) {
		p->st.msgs_ignored++;
		return;
	}
	op->replied |= 1u << i;
	switch (m->type) {
	case PAXOS_MSG_PROMISE:
		on_promise(p, op, m);
		break;
	case PAXOS_MSG_ACCEPTED:
		on_accepted(p, op, m);
		break;
	default:
		on_committed(p, op);
		break;
	}
}

int paxos_recv(struct paxos *p, uint64_t from, const struct paxos_msg *m)
{
	p->st.msgs_recv++;
	if (!paxos_msg_valid(m) || m->klen > p->cfg.max_key ||
	    !value_fits(p, &m->current) || !value_fits(p, &m->accepted.value) ||
	    !value_fits(p, &m->proposal.value) || from == 0) {
		p->st.msgs_ignored++;
		return RK_EINVALID;
	}
	LOG_TRACE(p,
		  "<- n%" PRIu64 " %s key=%s req=%" PRIu64 " ballot=%" PRIu64
		  ".%" PRIu64 " ok=%d",
		  from, paxos_msg_type_name(m->type), KEYSTR(m->key, m->klen),
		  m->req, m->ballot.hlc, m->ballot.node, m->ok);
	switch (m->type) {
	case PAXOS_MSG_PREPARE:
		clock_observe(p, m->ballot);
		on_prepare(p, from, m);
		break;
	case PAXOS_MSG_PROPOSE:
		clock_observe(p, m->ballot);
		on_propose(p, from, m);
		break;
	case PAXOS_MSG_COMMIT:
		clock_observe(p, m->ballot);
		on_commit(p, from, m);
		break;
	default:
		on_reply(p, from, m);
		break;
	}
	return 0;
}

/* ---- operations ------------------------------------------------------ */

static int replicas_ok(const uint64_t *r, size_t n)
{
	if (!r || n < 1 || n > PAXOS_MAX_REPLICAS)
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (!r[i])
			return 0;
		for (size_t j = 0; j < i; j++)
			if (r[i] == r[j])
				return 0;
	}
	return 1;
}

static int value_ok(const struct paxos *p, const struct paxos_value *v)
{
	if (!v->present)
		return 1;
	return v->len <= p->cfg.max_value && (v->len == 0 || v->data);
}

static int submit(struct paxos *p, uint64_t token, const uint8_t *key,
		  size_t klen, const uint64_t *replicas, size_t n,
		  enum op_kind kind, const struct paxos_cond *cond,
		  const struct paxos_value *newv, uint64_t deadline)
{
	if (!key || klen < 1 || klen > p->cfg.max_key ||
	    !replicas_ok(replicas, n))
		return RK_EINVALID;
	if (kind == OP_CAS &&
	    (!cond || !newv || !value_ok(p, newv) ||
	     (cond->kind != PAXOS_IF_ANY && cond->kind != PAXOS_IF_EQUALS) ||
	     (cond->kind == PAXOS_IF_EQUALS && !value_ok(p, &cond->expected))))
		return RK_EINVALID;
	struct slot *s = slot_find(p, key, klen);
	if (s && s->queued >= p->cfg.max_queue) {
		p->st.overloaded++;
		return RK_EOVERLOADED;
	}
	struct op *op = calloc(1, sizeof(*op));
	if (!op)
		return RK_ENOMEM;
	op->token = token;
	op->kind = kind;
	op->deadline = deadline;
	op->n = (uint32_t)n;
	op->majority = (uint32_t)(n / 2 + 1);
	memcpy(op->replicas, replicas, n * sizeof(*replicas));
	if (kind == OP_CAS) {
		op->cond_any = cond->kind == PAXOS_IF_ANY;
		if ((!op->cond_any && val_set(&op->expect, &cond->expected)) ||
		    val_set(&op->newv, newv)) {
			op_free(op);
			return RK_ENOMEM;
		}
	}
	if (!s) {
		s = calloc(1, sizeof(*s));
		if (!s || table_insert(&p->slots, &s->t, key, klen)) {
			free(s);
			op_free(op);
			return RK_ENOMEM;
		}
	}
	op->slot = s;
	p->st.ops_started++;
	if (s->active) {
		op->phase = PH_QUEUED;
		if (s->qtail)
			s->qtail->next = op;
		else
			s->qhead = op;
		s->qtail = op;
		s->queued++;
		return 0;
	}
	s->active = op;
	op_activate(p, op);
	return 0;
}

int paxos_cas(struct paxos *p, uint64_t token, const uint8_t *key, size_t klen,
	      const uint64_t *replicas, size_t n, const struct paxos_cond *cond,
	      const struct paxos_value *new_value, uint64_t deadline)
{
	return submit(p, token, key, klen, replicas, n, OP_CAS, cond, new_value,
		      deadline);
}

int paxos_serial_read(struct paxos *p, uint64_t token, const uint8_t *key,
		      size_t klen, const uint64_t *replicas, size_t n,
		      uint64_t deadline)
{
	return submit(p, token, key, klen, replicas, n, OP_READ, NULL, NULL,
		      deadline);
}

int paxos_put_if_absent(struct paxos *p, uint64_t token, const uint8_t *key,
			size_t klen, const uint64_t *replicas, size_t n,
			const struct paxos_value *value, uint64_t deadline)
{
	struct paxos_cond c = {.kind = PAXOS_IF_EQUALS};
	return paxos_cas(p, token, key, klen, replicas, n, &c, value, deadline);
}

int paxos_delete_if(struct paxos *p, uint64_t token, const uint8_t *key,
		    size_t klen, const uint64_t *replicas, size_t n,
		    const struct paxos_value *expected, uint64_t deadline)
{
	struct paxos_cond c = {.kind = PAXOS_IF_EQUALS};
	struct paxos_value absent = {0};
	if (!expected)
		return RK_EINVALID;
	c.expected = *expected;
	return paxos_cas(p, token, key, klen, replicas, n, &c, &absent,
			 deadline);
}

size_t paxos_key_ops(const struct paxos *p, const uint8_t *key, size_t klen)
{
	const struct slot *s = slot_find(p, key, klen);
	return s ? (s->active != NULL) + s->queued : 0;
}

/* ---- time ------------------------------------------------------------ */

/* Runs what is due for one slot.  May free the slot. */
static void slot_tick(struct paxos *p, struct slot *s, uint64_t t)
{
	/* Queued operations whose deadline passed: answer now. */
	for (struct op **pp = &s->qhead; *pp;) {
		struct op *o = *pp;
		if (t < o->deadline) {
			pp = &o->next;
			continue;
		}
		*pp = o->next;
		if (s->qtail == o) {
			s->qtail = NULL;
			for (struct op *x = s->qhead; x; x = x->next)
				s->qtail = x;
		}
		s->queued--;
		o->next = NULL;
		p->st.ops_failed++;
		struct paxos_result r = {.status = RK_ETIMEOUT};
		p->rt.reply(p->rt.ctx, o->token, &r);
		op_free(o);
	}
	struct op *op = s->active;
	if (!op)
		return; /* cannot happen: a slot without one is freed */
	if (t >= op->deadline) {
		op_fail(p, op, RK_ETIMEOUT);
		return;
	}
	if (t < op->phase_until)
		return;
	switch (op->phase) {
	case PH_BACKOFF:
		start_round(p, op);
		break;
	case PH_PREPARE:
	case PH_PROPOSE:
		p->st.round_timeouts++;
		start_round(p, op);
		break;
	case PH_COMMIT:
		/* Chosen already: keep telling the replicas that have not
		 * acknowledged, under the same ballot. */
		p->st.round_timeouts++;
		op->phase_until = t + p->cfg.round_timeout_ms;
		send_commit(p, op, op->replied);
		break;
	default:
		break;
	}
}

void paxos_tick(struct paxos *p)
{
	uint64_t t = now(p);
	for (size_t i = 0; i < p->slots.cap; i++) {
		struct tnode *n = p->slots.b[i], *next;
		for (; n; n = next) {
			next = n->next;
			slot_tick(p, (struct slot *)n, t);
		}
	}
}

uint64_t paxos_next_deadline(const struct paxos *p)
{
	uint64_t d = UINT64_MAX;
	for (size_t i = 0; i < p->slots.cap; i++)
		for (const struct tnode *n = p->slots.b[i]; n; n = n->next) {
			const struct slot *s = (const struct slot *)n;
			const struct op *op = s->active;
			if (op) {
				if (op->deadline < d)
					d = op->deadline;
				if (op->phase_until < d)
					d = op->phase_until;
			}
			for (const struct op *o = s->qhead; o; o = o->next)
				if (o->deadline < d)
					d = o->deadline;
		}
	return d;
}
