/* crdt.h: PN-counter CRDTs and the op-id deduplication window (issue 7).
 *
 * Pure: libc and common/ only; no clock (callers pass now_ms), no I/O.
 * The essay (semantics, formats, guarantees, what the binding must do) is
 * at the top of crdt.c; this header states the contract of each call.
 *
 * A counter is a generation plus a sorted array of per-node entries
 * (node, incr, decr): per node, the monotone totals of the increments and
 * of the decrements it applied as owner.  Merge keeps the state with the
 * newer generation, and on equal generations takes the per-node maximum of
 * each total; the value is the sum of incr - decr.  A delete starts a new
 * generation (its timestamp) with no entries.
 *
 * Thread safety: none; one owner thread per object.
 */
#ifndef RK_CRDT_H
#define RK_CRDT_H

#include <stddef.h>
#include <stdint.h>

#include "hlc.h"

/* ---- counters -------------------------------------------------------- */

/* The most entries (distinct nodes per generation) a counter may hold,
 * whatever is configured: bounds the decoder and a value's size (the
 * full encoding of 4096 entries is 98,332 bytes). */
#define CRDT_ENTRIES_HARD_MAX 4096u

/* A total (incr or decr) is a u64 and never wraps: an add that would take
 * it past this fails with RK_EINVALID. */
#define CRDT_TOTAL_MAX UINT64_MAX

/* One node's entry. */
struct crdt_entry {
	uint64_t node; /* the owner replica's node id */
	uint64_t incr; /* sum of the increments it applied, monotone */
	uint64_t decr; /* sum of the magnitudes of its decrements, monotone */
};

/* A client-chosen operation id, 16 bytes on the wire.  Layout (the wire
 * contract for every client): bytes 0..7 the client's issue time in
 * milliseconds since 1970 (little-endian), bytes 8..15 random.  The time
 * lets the dedup window refuse a retry it can no longer judge instead of
 * applying it twice (see crdt_dedup_check).  All zero means "no op id". */
#define CRDT_OPID_LEN 16
struct crdt_opid {
	uint8_t b[CRDT_OPID_LEN];
};

/* What an owner ships after an add, and what a replica merges: the owner's
 * whole new entry in the generation it applied the add in.  Applying it
 * twice or out of order changes nothing (max-merge). */
struct crdt_delta {
	rk_ts gen;	     /* generation the entry belongs to */
	struct crdt_entry e; /* the owner's entry after the add */
	struct crdt_opid op; /* the add that made it; zero when none */
};

struct crdt_counter;

/* A new empty counter (generation zero, no entries) holding at most
 * max_entries entries (1 .. CRDT_ENTRIES_HARD_MAX; 0 means the hard max).
 * Returns 0 and *out (owned by the caller, release with crdt_free), or
 * RK_EINVALID / RK_ENOMEM. */
int crdt_new(uint32_t max_entries, struct crdt_counter **out);
void crdt_free(struct crdt_counter *c);

/* Back to generation zero with no entries (keeps memory and the limit). */
void crdt_reset(struct crdt_counter *c);

/* The generation: the timestamp of the newest delete merged in, or zero. */
rk_ts crdt_generation(const struct crdt_counter *c);

/* Entries in node id order; i < crdt_entry_count(c). */
size_t crdt_entry_count(const struct crdt_counter *c);
struct crdt_entry crdt_entry_at(const struct crdt_counter *c, size_t i);

/* True when no entry exists in the current generation: never added to, or
 * deleted and not added to since.  The binding reads this as NOT_FOUND. */
int crdt_is_empty(const struct crdt_counter *c);

/* node's totals.  Returns 0, or RK_ENOT_FOUND (totals set to 0). */
int crdt_entry_get(const struct crdt_counter *c, uint64_t node, uint64_t *incr,
		   uint64_t *decr);

/* The value, the exact sum of incr - decr over the entries.  Returns 0,
 * or RK_EINVALID when the sum is outside int64 and *out holds it saturated
 * at INT64_MIN or INT64_MAX (deterministic, so replicas still agree). */
int crdt_value(const struct crdt_counter *c, int64_t *out);

/* The owner's add: node's incr grows by delta when delta > 0, its decr by
 * -delta when delta < 0 (delta 0 only creates the entry).  When d is not
 * NULL it gets what to ship: the new entry in the current generation, with
 * op copied from op (or zero when op is NULL).  Returns 0, RK_EINVALID when
 * a total would exceed CRDT_TOTAL_MAX, RK_EVALUE_TOO_LARGE when a new entry
 * would exceed the counter's limit, or RK_ENOMEM; c is unchanged on error. */
int crdt_add(struct crdt_counter *c, uint64_t node, int64_t delta,
	     const struct crdt_opid *op, struct crdt_delta *d);

/* A delete stamped gen: when gen is newer than the generation, starts
 * generation gen with no entries.  Returns 1 when applied, 0 when gen is
 * not newer (a stale or repeated delete). */
int crdt_delete(struct crdt_counter *c, rk_ts gen);

/* Merges src into dst (src unchanged; dst == src is allowed): the newer
 * generation wins whole; on equal generations each total is the max.
 * Commutative, associative and idempotent.  Returns 1 when dst changed, 0
 * when it already covered src, or RK_EVALUE_TOO_LARGE (the union exceeds
 * dst's limit) / RK_ENOMEM with dst unchanged. */
int crdt_merge(struct crdt_counter *dst, const struct crdt_counter *src);

/* Merges one shipped entry, exactly as crdt_merge of a state holding only
 * that entry in that generation.  Returns as crdt_merge. */
int crdt_apply_delta(struct crdt_counter *c, const struct crdt_delta *d);

/* True when a and b hold the same generation and entries. */
int crdt_equal(const struct crdt_counter *a, const struct crdt_counter *b);

/* ---- formats (all integers little-endian; see crdt.c) ----------------- */

#define CRDT_FORMAT_VERSION 1
#define CRDT_STATE_FIXED 28u /* header 24 + CRC 4 */
#define CRDT_ENTRY_SIZE 24u
#define CRDT_DELTA_SIZE 68u

/* Bytes crdt_encode writes: CRDT_STATE_FIXED + 24 * entries. */
size_t crdt_encoded_size(const struct crdt_counter *c);

/* Writes the full state (a counter record's value bytes) to
 * out[0, crdt_encoded_size(c)). */
void crdt_encode(const struct crdt_counter *c, uint8_t *out);

/* Replaces c's state with the state encoded in p[0, len).  Returns 0, or
 * RK_ECORRUPT (bad length, version, kind, flags, CRC, or node ids not
 * strictly increasing) or RK_EVALUE_TOO_LARGE (more entries than c's limit),
 * or RK_ENOMEM; c is unchanged on error. */
int crdt_decode(struct crdt_counter *c, const uint8_t *p, size_t len);

/* Writes d to out[0, CRDT_DELTA_SIZE). */
void crdt_delta_encode(const struct crdt_delta *d, uint8_t *out);

/* Decodes a delta from p[0, len).  Returns 0 or RK_ECORRUPT. */
int crdt_delta_decode(const uint8_t *p, size_t len, struct crdt_delta *d);

/* ---- op ids and their owner ------------------------------------------- */

static inline uint64_t crdt_opid_ms(const struct crdt_opid *id)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = (v << 8) | id->b[i];
	return v;
}

/* Builds the op id (issue time ms, 64 random bits). */
void crdt_opid_make(struct crdt_opid *id, uint64_t ms, uint64_t rnd);

int crdt_opid_is_zero(const struct crdt_opid *id);

/* The replica that owns op id among the preference list nodes[0, n), n >= 1:
 * rendezvous hashing (the node with the highest rk_key_hash(id || node)),
 * so every coordinator picks the same owner whatever the list's order, and
 * a list that loses or gains a node moves only the ops that node owned.
 * Returns the index into nodes.  Part of the cluster's contract: every
 * node of one cluster must run the same rule. */
size_t crdt_owner(const struct crdt_opid *id, const uint64_t *nodes, size_t n);

/* ---- the dedup window -------------------------------------------------- */

#define CRDT_DEDUP_DEFAULT_MAX_IDS 1000000u
#define CRDT_DEDUP_DEFAULT_MAX_AGE_MS 3600000u /* one hour */
#define CRDT_DEDUP_DEFAULT_MAX_FUTURE_MS 60000u
/* The table indexes with u32; 2^28 ids would be 4 GiB of ring anyway. */
#define CRDT_DEDUP_HARD_MAX_IDS (1u << 28)

struct crdt_dedup_config {
	uint32_t max_ids;	/* count window: 1 .. CRDT_DEDUP_HARD_MAX_IDS */
	uint64_t max_age_ms;	/* age window, by op id time: >= 1 */
	uint64_t max_future_ms; /* op ids stamped further ahead of now are
				   refused (a fast client clock must not
				   push the watermark past honest ones) */
	uint64_t hash_seed;	/* the table's seed; random in the daemon */
};

struct crdt_dedup_stats {
	uint64_t ids;		/* remembered now */
	uint64_t watermark_ms;	/* see crdt_dedup_check */
	uint64_t evicted_count; /* forgotten because the window was full */
	uint64_t evicted_age;	/* forgotten by crdt_dedup_expire */
};

struct crdt_dedup;

/* Fills cfg with the defaults above and hash_seed 0. */
void crdt_dedup_config_default(struct crdt_dedup_config *cfg);

/* An empty window; memory grows with use up to max_ids.  Returns 0 and
 * *out (owned by the caller, release with crdt_dedup_free), or
 * RK_EINVALID / RK_ENOMEM. */
int crdt_dedup_new(const struct crdt_dedup_config *cfg,
		   struct crdt_dedup **out);
void crdt_dedup_free(struct crdt_dedup *d);

/* May the owner apply op id now?  Returns:
 *   0            yes: never seen, and its time is in
 *                (max(watermark, now - max_age), now + max_future];
 *   1            no, a duplicate: it was applied (answer the client OK);
 *   RK_EINVALID  no, refused: its time is at or below the watermark (it
 *                may have been applied and forgotten), older than max_age,
 *                or too far in the future.  Definite: not applied now; the
 *                client must not retry this id.
 * Read-only: crdt_dedup_insert records the op once it is applied. */
int crdt_dedup_check(const struct crdt_dedup *d, const struct crdt_opid *id,
		     uint64_t now_ms);

/* Remembers an applied op id (at apply time, and at replay in log order;
 * no time checks).  Forgets the oldest id when max_ids are held, raising
 * the watermark to its time.  Returns 0, 1 when already remembered (no
 * change), or RK_ENOMEM. */
int crdt_dedup_insert(struct crdt_dedup *d, const struct crdt_opid *id);

/* Forgets ids, oldest inserted first, while the oldest has a time at or
 * before now - max_age, raising the watermark.  Returns how many. */
size_t crdt_dedup_expire(struct crdt_dedup *d, uint64_t now_ms);

/* Every op id forgotten has a time at or below the watermark.  A snapshot
 * that drops logged op ids must persist it (raise it again at replay). */
uint64_t crdt_dedup_watermark(const struct crdt_dedup *d);
void crdt_dedup_raise_watermark(struct crdt_dedup *d, uint64_t ms);

/* Calls fn for each remembered id, oldest inserted first (to snapshot the
 * window).  fn must not change d. */
void crdt_dedup_foreach(const struct crdt_dedup *d,
			void (*fn)(void *ctx, const struct crdt_opid *id),
			void *ctx);

void crdt_dedup_get_stats(const struct crdt_dedup *d,
			  struct crdt_dedup_stats *st);

#endif
