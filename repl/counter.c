/* counter.c: CRDT counters on a register store (issue 7).
 *
 * common/crdt.c has the counter itself (a PN-counter with generations for
 * deletes, Shapiro et al. 2011) and the op-id window; its essay says why
 * an add needs one owner and an op id.  This file is about the rest: how
 * a counter key lives among register keys, and how every path that
 * already moves registers between replicas moves counters too.
 *
 * == One record per key, merged instead of compared ==
 *
 * A counter is a record like a value or a tombstone (RK_REC_COUNTER in
 * the store, REPL_REC_COUNTER on the wire) whose bytes are a crdt state.
 * On the wire and in the op-log the bytes may also be a delta: one
 * owner's entry after an add, with the add's op id.  Applying a counter
 * record means merging it (crdt_merge, crdt_apply_delta) instead of
 * comparing timestamps, and merging is commutative, associative and
 * idempotent.  So the existing machinery carries counters unchanged:
 * a replica write, a hint handed off hours later, a read repair, a
 * catch-up that replays a peer's op-log from a position, a digest round,
 * a range streamed on join -- each delivers states or deltas in some
 * order, some of them twice, and every replica ends in the same state.
 * The only places that must know about counters are the ones that choose
 * between records: the store's apply, the read that picks an answer, the
 * digest that decides what to fetch (a counter's digest carries its bytes:
 * they are small, and no timestamp says which of two states is newer).
 *
 * The timestamp of a counter record is the newest stamp of the adds and
 * deletes merged into it (the max, itself a join).  It orders nothing
 * between counters; it is there for logs, stats and the register rule.
 *
 * == Counters against registers: the join rule ==
 *
 * "A key is either a counter or a register", but replicas learn writes in
 * different orders, so two replicas may briefly hold different kinds for
 * one key, and they must agree once they have seen the same writes, in
 * any order.  The rule must therefore be a join (a semilattice) on the
 * union of both kinds.  Last writer wins across kinds is not one: with a
 * counter A {n1: 5} at t5, a value B at t6 and a counter C {n2: 3} at t7
 * (same generation), (A + B) + C = C but A + (B + C) = A + C = {n1: 5,
 * n2: 3}: replicas that saw them in those orders would never agree.  The
 * ordered sum is one: every counter state is above every register, so
 *
 *   register + register = the newer (last writer wins);
 *   counter  + register = the counter;
 *   counter  + counter  = their merge.
 *
 * Its price is that a key that has been a counter stays one: a deleted
 * counter is an empty state in a new generation, and it keeps register
 * writes out (WRONG_TYPE) until compaction purges it after
 * storage.tombstone_grace, as it purges tombstones.  An add to a deleted
 * counter starts it again from zero (crdt.c, "Deletes").
 *
 * == WRONG_TYPE ==
 *
 * Clients are told when they use a key as the wrong kind.  Every replica
 * checks the client writes it receives (not hints, repairs or owners'
 * deltas, which carry decisions already taken): a put or del on a key
 * that holds a counter, and an add or counter delete on a key that holds
 * a live value, are refused with WRONG_TYPE and change nothing there;
 * the coordinator answers WRONG_TYPE as soon as one replica refused.
 * Reads check the answers: get on a counter, or counter on a value,
 * answers WRONG_TYPE.  The check is per replica, so a replica that
 * missed the key's first write accepts the other kind; the join rule
 * then settles the key (a counter wins).  Only clients that use one key as
 * both kinds at the same moment can see that.
 *
 * == An add ==
 *
 * The coordinator sends counter_add(key, delta, op_id) to the owner of
 * the op id among the key's natural replicas (crdt_owner: a rendezvous
 * hash, so every coordinator, and a smart client, picks the same one).
 * The issue suggested the coordinator itself when it is a replica; that
 * would let a retry through a second replica-coordinator apply the same
 * op id at a second owner, whose window has never seen it (crdt.c, rule
 * 1).  The owner checks that enough replicas are up (else UNAVAILABLE,
 * nothing applied), asks its window about the op id, adds the delta to
 * its own entry, logs the delta with the op id, remembers the op id, and
 * once its log record is durable ships its new entry to the other
 * replicas as a write of a delta, counting acknowledgements at the
 * requested consistency exactly as a register write does (replicas that
 * miss it get a hint).  A duplicate op id is answered OK after the owner
 * ships its current entry again at the same consistency, so a retry also
 * finishes the replication an earlier attempt may have left undone.
 *
 * If the owner is down the add fails with UNAVAILABLE and no other
 * replica applies it (crdt.c, rule 3).
 *
 * == A read ==
 *
 * counter_get asks R replicas for their records, merges the counter
 * states it gets, and answers the value of the merge (and, in the
 * all-replies form, each replica's own value).  Replicas whose state does
 * not already cover the merge are repaired with it, before the answer at
 * QUORUM and ALL, so a later quorum read never sees a smaller set of adds
 * (monotonic reads, as for registers).
 *
 * == What "exactly once" means ==
 *
 * For an add with op id X whose owner is O:
 *   - OK: X is counted exactly once, now and after any retry of X;
 *   - a definite failure (UNAVAILABLE with nothing applied, WRONG_TYPE,
 *     BAD_REQUEST) did not count X;
 *   - an unknown outcome (TIMEOUT, UNAVAILABLE "may have been applied", a
 *     lost connection) counted X at most once; a retry of X answered OK
 *     makes it exactly once, provided it reaches O while X is in O's
 *     window (the last counters.dedup_max_ids op ids O saw, for at most
 *     counters.dedup_max_age).  A later retry is refused (BAD_REQUEST,
 *     "outside the dedup window"), never applied twice.
 * Across restarts the window is rebuilt from the op-log (each add's
 * record carries its op id; snapshots carry the window), and nothing of
 * an add leaves its owner before its log record is on disk -- fdatasync'd
 * whatever storage.fsync says: not the shipped delta, not the
 * acknowledgement, and not a copy of it either -- the owner's table shows
 * the add only after its fdatasync (so reads and read repairs do not
 * spread it) and catch-up serves only the settled part of a log (see
 * node/store.c, "Adds wait for their fsync").  (The simulator found both
 * leaks: a copy that outlived an owner's crash made the owner's later
 * adds look covered, and a retry of the lost add was then answered
 * "duplicate" without being counted.)  So the whole promise survives
 * kill -9 and power loss under every fsync policy; what storage.fsync
 * still decides for counters is only how soon replicas' copies of
 * shipped deltas reach their disks, and a replica that loses one gets
 * it back from the owner (read repair, anti-entropy).
 */
#include "counter.h"

#include <string.h>

#include "buf.h"
#include "crc32c.h"
#include "err.h"

int counter_form(const uint8_t *v, size_t n)
{
	if (!v || n < 4 || v[0] != CRDT_FORMAT_VERSION)
		return RK_ECORRUPT;
	switch (v[1]) {
	case COUNTER_FORM_STATE:
	case COUNTER_FORM_DELTA:
	case COUNTER_FORM_WINDOW:
		return v[1];
	default:
		return RK_ECORRUPT;
	}
}

enum counter_join counter_join_rule(int have_held, int held_counter,
				    rk_ts held_ts, int in_counter, rk_ts in_ts)
{
	if (!have_held)
		return COUNTER_REPLACE;
	if (held_counter && in_counter)
		return COUNTER_MERGE;
	if (held_counter)
		return COUNTER_KEEP;
	if (in_counter)
		return COUNTER_REPLACE;
	return rk_ts_cmp(in_ts, held_ts) > 0 ? COUNTER_REPLACE : COUNTER_KEEP;
}

int counter_merge_bytes(struct crdt_counter *c, const uint8_t *v, size_t n,
			struct crdt_opid *op)
{
	if (op)
		memset(op, 0, sizeof(*op));
	int form = counter_form(v, n);
	if (form == COUNTER_FORM_DELTA) {
		struct crdt_delta d;
		if (crdt_delta_decode(v, n, &d))
			return RK_ECORRUPT;
		if (op)
			*op = d.op;
		return crdt_apply_delta(c, &d);
	}
	if (form != COUNTER_FORM_STATE)
		return RK_ECORRUPT;
	struct crdt_counter *s;
	int rc = crdt_new(0, &s);
	if (rc)
		return rc;
	rc = crdt_decode(s, v, n);
	if (rc == 0)
		rc = crdt_merge(c, s);
	crdt_free(s);
	return rc;
}

int counter_load(struct crdt_counter *c, const uint8_t *v, size_t n)
{
	int form = counter_form(v, n);
	if (form == COUNTER_FORM_STATE)
		return crdt_decode(c, v, n);
	if (form != COUNTER_FORM_DELTA)
		return RK_ECORRUPT;
	crdt_reset(c);
	int rc = counter_merge_bytes(c, v, n, NULL);
	return rc < 0 ? rc : 0;
}

int counter_type_check(int have_held, int held_counter, int held_is_value,
		       int in_counter, char *why, size_t whylen)
{
	if (!have_held)
		return 0;
	const char *msg = NULL;
	if (!in_counter && held_counter)
		msg = "the key holds a counter: use incr, decr, counter and "
		      "counter delete on it";
	else if (in_counter && !held_counter && held_is_value)
		msg = "the key holds a value, not a counter: use get, put "
		      "and del on it";
	if (!msg)
		return 0;
	if (why && whylen) {
		size_t l = strlen(msg);
		if (l >= whylen)
			l = whylen - 1;
		memcpy(why, msg, l);
		why[l] = 0;
	}
	return RK_EWRONG_TYPE;
}

size_t counter_window_size(uint32_t n)
{
	return COUNTER_WINDOW_FIXED + (size_t)n * CRDT_OPID_LEN;
}

void counter_window_encode(uint64_t watermark, const struct crdt_opid *ids,
			   uint32_t n, uint8_t *out)
{
	out[0] = CRDT_FORMAT_VERSION;
	out[1] = COUNTER_FORM_WINDOW;
	out[2] = out[3] = 0;
	rk_put_le32(out + 4, n);
	rk_put_le64(out + 8, watermark);
	for (uint32_t i = 0; i < n; i++)
		memcpy(out + 16 + (size_t)i * CRDT_OPID_LEN, ids[i].b,
		       CRDT_OPID_LEN);
	size_t body = 16 + (size_t)n * CRDT_OPID_LEN;
	rk_put_le32(out + body, rk_crc32c(0, out, body));
}

int counter_window_decode(const uint8_t *p, size_t len, uint64_t *watermark,
			  const uint8_t **ids, uint32_t *n)
{
	if (len < COUNTER_WINDOW_FIXED ||
	    counter_form(p, len) != COUNTER_FORM_WINDOW || p[2] || p[3])
		return RK_ECORRUPT;
	uint32_t k = rk_get_le32(p + 4);
	if (k > COUNTER_WINDOW_BATCH || len != counter_window_size(k))
		return RK_ECORRUPT;
	if (rk_crc32c(0, p, len - 4) != rk_get_le32(p + len - 4))
		return RK_ECORRUPT;
	*watermark = rk_get_le64(p + 8);
	*ids = p + 16;
	*n = k;
	return 0;
}

int counter_value_of(const uint8_t *v, size_t n, int64_t *value, int *found)
{
	*value = 0;
	*found = 0;
	struct crdt_counter *c;
	int rc = crdt_new(0, &c);
	if (rc)
		return rc;
	rc = counter_load(c, v, n);
	if (rc == 0) {
		crdt_value(c, value); /* saturated the same everywhere */
		*found = !crdt_is_empty(c);
	}
	crdt_free(c);
	return rc;
}
