/* crdt.c: PN-counters and the op-id dedup window.
 *
 * == The counter ==
 *
 * Shapiro, Preguica, Baquero, Zawirski, "A comprehensive study of
 * Convergent and Commutative Replicated Data Types" (INRIA RR-7506, 2011),
 * section 3.1.2 / specification 7: a PN-counter is two G-counters, one of
 * increments and one of decrements, each a vector of per-replica totals
 * merged by per-replica max; the value is sum(P) - sum(N).  We store the
 * two vectors as one sorted array of (node, incr, decr): most counters are
 * touched by the 3 to 5 replicas of one key, so a binary-searched array
 * beats any map, and the sorted order makes the encoding canonical.
 *
 * Merge takes maxima, so it is commutative, associative and idempotent,
 * which is what lets replicas, read repair, hints, catch-up and log replay
 * apply states and deltas in any order, any number of times.  The cost is
 * the rule every CRDT counter lives by: a node's totals may only be grown
 * by that node (its "owner" role), or two owners' increments would merge
 * into one.  Cassandra since 2.1 (CASSANDRA-6504) works the same way: the
 * leader replica reads its own shard, adds, and ships the new total.
 *
 * == Deletes: generations ==
 *
 * A PN-counter cannot be reset by merging: any replica still holding the
 * old totals would win the max and resurrect them.  So a state is a pair
 * (generation, entries), where the generation is the rk_ts of the newest
 * delete.  Merge compares generations first: the newer one wins whole (the
 * older one's entries are dropped); equal generations merge entry-wise.
 * That is the lexicographic product of a total order and a semilattice,
 * itself a semilattice, so merge keeps all three properties (the unit
 * tests check them on random states).  A delete is the state (its
 * timestamp, no entries); an owner's add lands in the generation the owner
 * holds, and the delta it ships names that generation, so a replica that
 * has not yet seen the delete learns it from the delta (the delta's
 * generation is newer than its own, so it starts that generation too).
 *
 * Why not a register tombstone with last-writer-wins, as for plain keys:
 * the entries of a counter have no single timestamp to compare with the
 * tombstone's, and after a delete the counter must restart from zero while
 * stale replicas still hold the old totals; the generation says which
 * totals are stale without a timestamp per entry.
 *
 * Caveat, concurrent add and delete: delete wins.  An add applied by an
 * owner that had not yet applied the delete lands in the old generation
 * and is dropped everywhere once the delete reaches it.  An add applied
 * after its owner holds the delete is kept.  So a counter_delete at
 * consistency ALL (acked by the N replicas themselves, not by hinted
 * stand-ins) makes every add that starts after it returns count, because
 * every replica that could own an add holds the delete.  That is
 * better than Cassandra, whose documentation says a deleted counter cannot
 * be reliably reused (its tombstone shadows later increments).
 *
 * A deleted, not re-added counter (is_empty, generation set) is a counter
 * tombstone: compaction may purge it after the tombstone grace period like
 * any tombstone, with the usual caveat that a replica that missed the
 * delete for longer than the grace period can resurrect the old totals.
 *
 * Overflow: a total is a u64 and an add that would wrap it fails with
 * RK_EINVALID (2^64 of increments by one node is not a real workload).
 * The value is summed in 128 bits (4096 entries of < 2^64 cannot overflow)
 * and saturated into int64 with RK_EINVALID, the same on every replica.
 *
 * == Formats ==  (all integers little-endian)
 *
 * Full state, a counter record's value bytes (op-log, store, streaming):
 *   0  u8   version (1)
 *   1  u8   kind (1 = state)
 *   2  u16  flags (0)
 *   4  u32  entry count n (<= CRDT_ENTRIES_HARD_MAX and the reader's limit)
 *   8  u64  generation hlc
 *   16 u64  generation node
 *   24      n x { u64 node, u64 incr, u64 decr }, node ids strictly rising
 *   24+24n u32 CRC-32C of bytes [0, 24 + 24n)
 * The length must be exactly 28 + 24n.  Sorting makes the bytes canonical:
 * equal states encode identically.
 *
 * Delta, what an owner ships (68 bytes): the same 24-byte header with
 * kind 2 and n = 1, one entry, the 16-byte op id (zero: none), then the
 * CRC-32C of the 64 bytes before it.  The op-log and the peer protocol
 * carry these bytes as they are, so the CRC also guards the path between
 * them.  A decoder validates version, kind, flags, count, length and CRC
 * before anything reads a field, and rejects unsorted or repeated nodes.
 *
 * == Op ids: at most once ==
 *
 * Cassandra and ScyllaDB over-count because an increment is not
 * idempotent: a client that times out cannot know whether it was applied,
 * and a retry is a new increment.  Here each add carries a client-chosen
 * 16-byte op id, and the rule is:
 *
 *   1. One owner per op id.  The coordinator sends the add to
 *      crdt_owner(op id, preference list), a rendezvous hash, never to
 *      itself by preference: a retry through any other coordinator reaches
 *      the same owner.  (The "itself when it is one" would let a
 *      retry through a second replica-coordinator be applied there too.)
 *   2. The owner applies an op id at most once: crdt_dedup_check before
 *      applying, crdt_dedup_insert after, and the op id goes into the
 *      op-log with the delta, so the window is rebuilt at replay.
 *   3. If the owner is down, the add fails with UNAVAILABLE; no other
 *      replica applies it.  Another replica cannot know whether the owner
 *      applied the op before it went down (its delta may not have left the
 *      node), so applying elsewhere could double it.  UNAVAILABLE is a
 *      definite "not applied", so a client that has no unknown outcome
 *      for this add may retry with a fresh op id, which most likely maps to
 *      a live owner; a client that timed out must keep retrying the same
 *      id until it gets a definite answer.  The price is availability for
 *      1/N of the op ids while one node is down; the alternative is the
 *      over-count the issue forbids.
 *   4. Replicas that merge a delta also insert its op id into their own
 *      window (hence the op id in the delta format).  Then when the owner
 *      moves (a ring change puts another node first for this op id), the
 *      new owner already knows the op if its delta reached it, and answers
 *      "duplicate".  This costs window space (each node remembers the ops
 *      of all the keys it replicates, about N times its own), so size the
 *      count window for that; it is what makes ring changes safe.
 *
 * == The window, and what "at most once" means precisely ==
 *
 * The window remembers op ids by count (max_ids, FIFO) and by age
 * (max_age_ms, measured on the op id's embedded issue time).  A plain
 * window would apply a retry that arrives after its id was forgotten a
 * second time.  Instead every forgetting raises a watermark to the
 * forgotten id's time, and crdt_dedup_check refuses (RK_EINVALID) any id
 * it does not hold whose time is at or below the watermark.  The
 * invariant "every id ever inserted is held, or its time <= watermark"
 * holds after any sequence of inserts and expiries, so:
 *
 *   an op id reaching its owner is applied at most once, always: within
 *   the window a retry is answered "duplicate"; after it a retry is
 *   refused, never applied.
 *
 * Counting on the client's clock is safe for at-most-once (a wrong time
 * can only get an op refused, not doubled); to keep one fast client clock
 * from raising the watermark past honest clients' times, ids more than
 * max_future_ms ahead of the owner's clock are refused.  Ids are also
 * refused when older than now - max_age: their retry horizon is over.
 * Age expiry pops from the FIFO head, so an old id inserted after a young
 * one waits for it: expiry by age is approximate, the count bound exact.
 *
 * What the binding must keep for this to hold across restarts:
 *   - log each applied add (and each merged delta with an op id) with its
 *     op id, replay them through crdt_dedup_insert in log order, then call
 *     crdt_dedup_expire(now);
 *   - when compaction drops logged op ids, persist the watermark raised to
 *     their times (or the window via crdt_dedup_foreach) in the snapshot;
 *   - an owner must not ship an entry (nor ack) before its own log record
 *     of it is durable: an owner that restarts with totals lower than it
 *     already shipped would have its next adds swallowed by the max.
 *
 * == Dedup table ==
 *
 * A FIFO ring of op ids in insertion order (eviction order) and an
 * open-addressing hash table of ring slots with linear probing and
 * backward-shift deletion, so lookup, insert and evict are O(1) expected.
 * Both grow by doubling up to max_ids, so an idle node does not pay for a
 * million-id window.  The hash is seeded per node: clients choose op ids.
 */
#include "crdt.h"

#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "crc32c.h"
#include "err.h"
#include "hash.h"

enum { KIND_STATE = 1, KIND_DELTA = 2 };
#define HDR 24u

struct crdt_counter {
	rk_ts gen;	      /* newest delete merged, or zero */
	struct crdt_entry *e; /* owned; sorted by node, unique */
	uint32_t n;	      /* entries in use */
	uint32_t cap;	      /* entries allocated */
	uint32_t max;	      /* the configured entry limit */
};

int crdt_new(uint32_t max_entries, struct crdt_counter **out)
{
	if (max_entries == 0)
		max_entries = CRDT_ENTRIES_HARD_MAX;
	if (max_entries > CRDT_ENTRIES_HARD_MAX)
		return RK_EINVALID;
	struct crdt_counter *c = calloc(1, sizeof(*c));
	if (!c)
		return RK_ENOMEM;
	c->max = max_entries;
	*out = c;
	return 0;
}

void crdt_free(struct crdt_counter *c)
{
	if (!c)
		return;
	free(c->e);
	free(c);
}

void crdt_reset(struct crdt_counter *c)
{
	c->gen = (rk_ts){0, 0};
	c->n = 0;
}

rk_ts crdt_generation(const struct crdt_counter *c)
{
	return c->gen;
}

size_t crdt_entry_count(const struct crdt_counter *c)
{
	return c->n;
}

struct crdt_entry crdt_entry_at(const struct crdt_counter *c, size_t i)
{
	return c->e[i];
}

int crdt_is_empty(const struct crdt_counter *c)
{
	return c->n == 0;
}

/* Room for need entries (need <= c->max). */
static int reserve(struct crdt_counter *c, uint32_t need)
{
	if (need <= c->cap)
		return 0;
	uint32_t cap = c->cap ? c->cap : 4;
	while (cap < need)
		cap *= 2;
	if (cap > c->max)
		cap = c->max;
	struct crdt_entry *e = realloc(c->e, (size_t)cap * sizeof(*e));
	if (!e)
		return RK_ENOMEM;
	c->e = e;
	c->cap = cap;
	return 0;
}

/* The first index whose node is >= node. */
static uint32_t lower_bound(const struct crdt_counter *c, uint64_t node)
{
	uint32_t lo = 0, hi = c->n;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (c->e[mid].node < node)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int crdt_entry_get(const struct crdt_counter *c, uint64_t node, uint64_t *incr,
		   uint64_t *decr)
{
	uint32_t i = lower_bound(c, node);
	if (i == c->n || c->e[i].node != node) {
		*incr = *decr = 0;
		return RK_ENOT_FOUND;
	}
	*incr = c->e[i].incr;
	*decr = c->e[i].decr;
	return 0;
}

int crdt_value(const struct crdt_counter *c, int64_t *out)
{
	__int128 sum = 0;
	for (uint32_t i = 0; i < c->n; i++)
		sum += (__int128)c->e[i].incr - (__int128)c->e[i].decr;
	if (sum > INT64_MAX) {
		*out = INT64_MAX;
		return RK_EINVALID;
	}
	if (sum < INT64_MIN) {
		*out = INT64_MIN;
		return RK_EINVALID;
	}
	*out = (int64_t)sum;
	return 0;
}

int crdt_add(struct crdt_counter *c, uint64_t node, int64_t delta,
	     const struct crdt_opid *op, struct crdt_delta *d)
{
	/* |INT64_MIN| does not fit int64; compute it in u64. */
	uint64_t mag =
	    delta >= 0 ? (uint64_t)delta : (uint64_t)(-(delta + 1)) + 1;
	uint32_t i = lower_bound(c, node);
	if (i == c->n || c->e[i].node != node) {
		if (c->n >= c->max)
			return RK_EVALUE_TOO_LARGE;
		int rc = reserve(c, c->n + 1);
		if (rc)
			return rc;
		memmove(&c->e[i + 1], &c->e[i],
			(size_t)(c->n - i) * sizeof(*c->e));
		c->e[i] = (struct crdt_entry){node, 0, 0};
		c->n++;
	}
	uint64_t *total = delta >= 0 ? &c->e[i].incr : &c->e[i].decr;
	if (*total > CRDT_TOTAL_MAX - mag) {
		/* Only an existing entry can be this full: nothing to undo. */
		return RK_EINVALID;
	}
	*total += mag;
	if (d) {
		d->gen = c->gen;
		d->e = c->e[i];
		if (op)
			d->op = *op;
		else
			memset(&d->op, 0, sizeof(d->op));
	}
	return 0;
}

int crdt_delete(struct crdt_counter *c, rk_ts gen)
{
	if (rk_ts_cmp(gen, c->gen) <= 0)
		return 0;
	c->gen = gen;
	c->n = 0;
	return 1;
}

static uint64_t max_u64(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}

int crdt_merge(struct crdt_counter *dst, const struct crdt_counter *src)
{
	if (dst == src)
		return 0;
	int g = rk_ts_cmp(src->gen, dst->gen);
	if (g < 0)
		return 0;
	if (g > 0) {
		if (src->n > dst->max)
			return RK_EVALUE_TOO_LARGE;
		int rc = reserve(dst, src->n);
		if (rc)
			return rc;
		if (src->n)
			memcpy(dst->e, src->e,
			       (size_t)src->n * sizeof(*src->e));
		dst->n = src->n;
		dst->gen = src->gen;
		return 1;
	}
	/* Same generation: size the union, and see whether src adds
	 * anything at all (the common case for repeated deltas). */
	uint32_t i = 0, j = 0, u = 0;
	int changed = 0;
	while (i < dst->n || j < src->n) {
		if (j == src->n ||
		    (i < dst->n && dst->e[i].node < src->e[j].node)) {
			i++;
		} else if (i == dst->n || src->e[j].node < dst->e[i].node) {
			j++;
			changed = 1;
		} else {
			if (src->e[j].incr > dst->e[i].incr ||
			    src->e[j].decr > dst->e[i].decr)
				changed = 1;
			i++;
			j++;
		}
		u++;
	}
	if (!changed)
		return 0;
	if (u > dst->max)
		return RK_EVALUE_TOO_LARGE;
	int rc = reserve(dst, u);
	if (rc)
		return rc;
	/* Merge from the back, in place: slot k is never ahead of a dst
	 * entry still to be read. */
	int64_t a = (int64_t)dst->n - 1, b = (int64_t)src->n - 1;
	for (int64_t k = (int64_t)u - 1; k >= 0; k--) {
		if (b < 0 || (a >= 0 && dst->e[a].node > src->e[b].node)) {
			dst->e[k] = dst->e[a--];
		} else if (a < 0 || src->e[b].node > dst->e[a].node) {
			dst->e[k] = src->e[b--];
		} else {
			struct crdt_entry m = dst->e[a--];
			m.incr = max_u64(m.incr, src->e[b].incr);
			m.decr = max_u64(m.decr, src->e[b].decr);
			b--;
			dst->e[k] = m;
		}
	}
	dst->n = u;
	return 1;
}

int crdt_apply_delta(struct crdt_counter *c, const struct crdt_delta *d)
{
	struct crdt_entry e = d->e;
	struct crdt_counter one = {
	    .gen = d->gen, .e = &e, .n = 1, .cap = 1, .max = 1};
	return crdt_merge(c, &one);
}

int crdt_equal(const struct crdt_counter *a, const struct crdt_counter *b)
{
	if (rk_ts_cmp(a->gen, b->gen) != 0 || a->n != b->n)
		return 0;
	for (uint32_t i = 0; i < a->n; i++)
		if (a->e[i].node != b->e[i].node ||
		    a->e[i].incr != b->e[i].incr ||
		    a->e[i].decr != b->e[i].decr)
			return 0;
	return 1;
}

/* ---- formats ---- */

static void put_header(uint8_t *p, uint8_t kind, uint32_t n, rk_ts gen)
{
	p[0] = CRDT_FORMAT_VERSION;
	p[1] = kind;
	p[2] = p[3] = 0;
	rk_put_le32(p + 4, n);
	rk_put_le64(p + 8, gen.hlc);
	rk_put_le64(p + 16, gen.node);
}

/* Checks version, kind, flags, count and CRC; len >= HDR + 4. */
static int check_frame(const uint8_t *p, size_t len, uint8_t kind, uint32_t n)
{
	if (p[0] != CRDT_FORMAT_VERSION || p[1] != kind || p[2] || p[3] ||
	    rk_get_le32(p + 4) != n)
		return RK_ECORRUPT;
	if (rk_crc32c(0, p, len - 4) != rk_get_le32(p + len - 4))
		return RK_ECORRUPT;
	return 0;
}

static void put_entry(uint8_t *p, const struct crdt_entry *e)
{
	rk_put_le64(p, e->node);
	rk_put_le64(p + 8, e->incr);
	rk_put_le64(p + 16, e->decr);
}

static struct crdt_entry get_entry(const uint8_t *p)
{
	return (struct crdt_entry){rk_get_le64(p), rk_get_le64(p + 8),
				   rk_get_le64(p + 16)};
}

size_t crdt_encoded_size(const struct crdt_counter *c)
{
	return CRDT_STATE_FIXED + (size_t)c->n * CRDT_ENTRY_SIZE;
}

void crdt_encode(const struct crdt_counter *c, uint8_t *out)
{
	put_header(out, KIND_STATE, c->n, c->gen);
	uint8_t *p = out + HDR;
	for (uint32_t i = 0; i < c->n; i++, p += CRDT_ENTRY_SIZE)
		put_entry(p, &c->e[i]);
	rk_put_le32(p, rk_crc32c(0, out, (size_t)(p - out)));
}

int crdt_decode(struct crdt_counter *c, const uint8_t *p, size_t len)
{
	if (len < CRDT_STATE_FIXED ||
	    len > CRDT_STATE_FIXED +
		      (size_t)CRDT_ENTRIES_HARD_MAX * CRDT_ENTRY_SIZE ||
	    (len - CRDT_STATE_FIXED) % CRDT_ENTRY_SIZE)
		return RK_ECORRUPT;
	uint32_t n = (uint32_t)((len - CRDT_STATE_FIXED) / CRDT_ENTRY_SIZE);
	int rc = check_frame(p, len, KIND_STATE, n);
	if (rc)
		return rc;
	for (uint32_t i = 1; i < n; i++)
		if (rk_get_le64(p + HDR + (size_t)i * CRDT_ENTRY_SIZE) <=
		    rk_get_le64(p + HDR + (size_t)(i - 1) * CRDT_ENTRY_SIZE))
			return RK_ECORRUPT;
	if (n > c->max)
		return RK_EVALUE_TOO_LARGE;
	if ((rc = reserve(c, n)))
		return rc;
	c->gen = (rk_ts){rk_get_le64(p + 8), rk_get_le64(p + 16)};
	for (uint32_t i = 0; i < n; i++)
		c->e[i] = get_entry(p + HDR + (size_t)i * CRDT_ENTRY_SIZE);
	c->n = n;
	return 0;
}

void crdt_delta_encode(const struct crdt_delta *d, uint8_t *out)
{
	put_header(out, KIND_DELTA, 1, d->gen);
	put_entry(out + HDR, &d->e);
	memcpy(out + HDR + CRDT_ENTRY_SIZE, d->op.b, CRDT_OPID_LEN);
	rk_put_le32(out + CRDT_DELTA_SIZE - 4,
		    rk_crc32c(0, out, CRDT_DELTA_SIZE - 4));
}

int crdt_delta_decode(const uint8_t *p, size_t len, struct crdt_delta *d)
{
	if (len != CRDT_DELTA_SIZE || check_frame(p, len, KIND_DELTA, 1))
		return RK_ECORRUPT;
	d->gen = (rk_ts){rk_get_le64(p + 8), rk_get_le64(p + 16)};
	d->e = get_entry(p + HDR);
	memcpy(d->op.b, p + HDR + CRDT_ENTRY_SIZE, CRDT_OPID_LEN);
	return 0;
}

/* ---- op ids ---- */

void crdt_opid_make(struct crdt_opid *id, uint64_t ms, uint64_t rnd)
{
	rk_put_le64(id->b, ms);
	rk_put_le64(id->b + 8, rnd);
}

int crdt_opid_is_zero(const struct crdt_opid *id)
{
	static const struct crdt_opid zero;
	return memcmp(id->b, zero.b, CRDT_OPID_LEN) == 0;
}

size_t crdt_owner(const struct crdt_opid *id, const uint64_t *nodes, size_t n)
{
	uint8_t buf[CRDT_OPID_LEN + 8];
	memcpy(buf, id->b, CRDT_OPID_LEN);
	size_t best = 0;
	uint64_t best_h = 0;
	for (size_t i = 0; i < n; i++) {
		rk_put_le64(buf + CRDT_OPID_LEN, nodes[i]);
		uint64_t h = rk_key_hash(buf, sizeof(buf));
		/* Ties (never in practice) go to the smaller node id, so
		 * the list's order still does not matter. */
		if (i == 0 || h > best_h ||
		    (h == best_h && nodes[i] < nodes[best])) {
			best = i;
			best_h = h;
		}
	}
	return best;
}

/* ---- the dedup window ---- */

struct crdt_dedup {
	struct crdt_dedup_config cfg;
	struct crdt_opid *ring; /* owned; FIFO of ids, insertion order */
	uint32_t cap;		/* ring slots allocated, <= max_ids */
	uint32_t head;		/* slot of the oldest id */
	uint32_t n;		/* ids held */
	uint32_t *tab;		/* owned; ring slot + 1, or 0 when free */
	uint32_t mask;		/* table size - 1; size >= 2 * cap */
	uint64_t watermark;	/* every forgotten id's time is <= it */
	uint64_t evicted_count;
	uint64_t evicted_age;
};

void crdt_dedup_config_default(struct crdt_dedup_config *cfg)
{
	cfg->max_ids = CRDT_DEDUP_DEFAULT_MAX_IDS;
	cfg->max_age_ms = CRDT_DEDUP_DEFAULT_MAX_AGE_MS;
	cfg->max_future_ms = CRDT_DEDUP_DEFAULT_MAX_FUTURE_MS;
	cfg->hash_seed = 0;
}

int crdt_dedup_new(const struct crdt_dedup_config *cfg, struct crdt_dedup **out)
{
	if (cfg->max_ids == 0 || cfg->max_ids > CRDT_DEDUP_HARD_MAX_IDS ||
	    cfg->max_age_ms == 0)
		return RK_EINVALID;
	struct crdt_dedup *d = calloc(1, sizeof(*d));
	if (!d)
		return RK_ENOMEM;
	d->cfg = *cfg;
	*out = d;
	return 0;
}

void crdt_dedup_free(struct crdt_dedup *d)
{
	if (!d)
		return;
	free(d->ring);
	free(d->tab);
	free(d);
}

static uint32_t home(const struct crdt_dedup *d, const struct crdt_opid *id)
{
	return (uint32_t)rk_hash_seeded(id->b, CRDT_OPID_LEN,
					d->cfg.hash_seed) &
	       d->mask;
}

/* The table slot holding id, or the free slot where it would go. */
static uint32_t probe(const struct crdt_dedup *d, const struct crdt_opid *id)
{
	uint32_t i = home(d, id);
	while (d->tab[i] &&
	       memcmp(d->ring[d->tab[i] - 1].b, id->b, CRDT_OPID_LEN) != 0)
		i = (i + 1) & d->mask;
	return i;
}

static int holds(const struct crdt_dedup *d, const struct crdt_opid *id)
{
	return d->n && d->tab[probe(d, id)] != 0;
}

/* Doubles the ring (up to max_ids), laying it out from slot 0, and
 * rebuilds the table at twice its size or more. */
static int grow(struct crdt_dedup *d)
{
	uint32_t cap = d->cap ? d->cap * 2 : 64;
	if (cap > d->cfg.max_ids || cap < d->cap)
		cap = d->cfg.max_ids;
	size_t tsize = 1;
	while (tsize < (size_t)cap * 2)
		tsize *= 2;
	struct crdt_opid *ring = malloc((size_t)cap * sizeof(*ring));
	uint32_t *tab = calloc(tsize, sizeof(*tab));
	if (!ring || !tab) {
		free(ring);
		free(tab);
		return RK_ENOMEM;
	}
	for (uint32_t k = 0; k < d->n; k++)
		ring[k] = d->ring[(d->head + k) % d->cap];
	free(d->ring);
	free(d->tab);
	d->ring = ring;
	d->tab = tab;
	d->cap = cap;
	d->head = 0;
	d->mask = (uint32_t)(tsize - 1);
	for (uint32_t k = 0; k < d->n; k++)
		d->tab[probe(d, &ring[k])] = k + 1;
	return 0;
}

/* Forgets the oldest id: backward-shift deletion keeps every remaining id
 * reachable from its home slot without tombstones. */
static void evict_head(struct crdt_dedup *d)
{
	const struct crdt_opid *id = &d->ring[d->head];
	uint64_t ms = crdt_opid_ms(id);
	if (ms > d->watermark)
		d->watermark = ms;
	uint32_t i = probe(d, id);
	uint32_t j = i;
	for (;;) {
		j = (j + 1) & d->mask;
		if (!d->tab[j])
			break;
		uint32_t k = home(d, &d->ring[d->tab[j] - 1]);
		/* Leave j alone when its home lies cyclically in (i, j]. */
		if (i <= j ? (i < k && k <= j) : (i < k || k <= j))
			continue;
		d->tab[i] = d->tab[j];
		i = j;
	}
	d->tab[i] = 0;
	d->head = (d->head + 1) % d->cap;
	d->n--;
}

int crdt_dedup_check(const struct crdt_dedup *d, const struct crdt_opid *id,
		     uint64_t now_ms)
{
	if (holds(d, id))
		return 1;
	uint64_t ms = crdt_opid_ms(id);
	if (ms <= d->watermark)
		return RK_EINVALID;
	if (now_ms >= d->cfg.max_age_ms && ms <= now_ms - d->cfg.max_age_ms)
		return RK_EINVALID;
	if (ms > now_ms && ms - now_ms > d->cfg.max_future_ms)
		return RK_EINVALID;
	return 0;
}

int crdt_dedup_insert(struct crdt_dedup *d, const struct crdt_opid *id)
{
	if (holds(d, id))
		return 1;
	if (d->n == d->cap) {
		if (d->cap < d->cfg.max_ids) {
			int rc = grow(d);
			if (rc)
				return rc;
		} else {
			evict_head(d);
			d->evicted_count++;
		}
	}
	uint32_t slot = (d->head + d->n) % d->cap;
	d->ring[slot] = *id;
	d->tab[probe(d, id)] = slot + 1;
	d->n++;
	return 0;
}

size_t crdt_dedup_expire(struct crdt_dedup *d, uint64_t now_ms)
{
	if (now_ms < d->cfg.max_age_ms)
		return 0;
	uint64_t limit = now_ms - d->cfg.max_age_ms;
	size_t k = 0;
	while (d->n && crdt_opid_ms(&d->ring[d->head]) <= limit) {
		evict_head(d);
		k++;
	}
	d->evicted_age += k;
	return k;
}

uint64_t crdt_dedup_watermark(const struct crdt_dedup *d)
{
	return d->watermark;
}

void crdt_dedup_raise_watermark(struct crdt_dedup *d, uint64_t ms)
{
	if (ms > d->watermark)
		d->watermark = ms;
}

void crdt_dedup_foreach(const struct crdt_dedup *d,
			void (*fn)(void *ctx, const struct crdt_opid *id),
			void *ctx)
{
	for (uint32_t k = 0; k < d->n; k++)
		fn(ctx, &d->ring[(d->head + k) % d->cap]);
}

void crdt_dedup_get_stats(const struct crdt_dedup *d,
			  struct crdt_dedup_stats *st)
{
	st->ids = d->n;
	st->watermark_ms = d->watermark;
	st->evicted_count = d->evicted_count;
	st->evicted_age = d->evicted_age;
}
