/* counter.h: the pure rules that carry CRDT counters (common/crdt.h)
 * through storage and replication (issue 7).  counter.c opens with the
 * essay: how a counter key rides on the register machinery of repl/, the
 * join rule between a counter and a register, and what "exactly once"
 * means here.
 *
 * Pure: libc and common/ only.  The storage core (node/store.c), the
 * replication module (repl.c) and the simulator (tests/sim) share these
 * rules, so a counter is merged the same way wherever it lands.
 */
#ifndef RK_COUNTER_H
#define RK_COUNTER_H

#include <stddef.h>
#include <stdint.h>

#include "crdt.h"
#include "hlc.h"

/* What a counter record's bytes hold: the first two bytes of every crdt
 * format are (version, kind). */
enum counter_form {
	COUNTER_FORM_STATE = 1,	 /* crdt_encode: a whole state */
	COUNTER_FORM_DELTA = 2,	 /* crdt_delta_encode: one owner's entry */
	COUNTER_FORM_WINDOW = 3, /* counter_window_encode (snapshots only) */
};

/* The form of v[0, n), or RK_ECORRUPT when it is none of them (the full
 * checks, CRC included, happen when it is decoded). */
int counter_form(const uint8_t *v, size_t n);

/* How a record that arrives meets the record held for the same key. */
enum counter_join {
	COUNTER_KEEP = 0,    /* the held record stays as it is */
	COUNTER_REPLACE = 1, /* the arriving one replaces it */
	COUNTER_MERGE = 2,   /* both are counters: merge (crdt_merge) */
};

/* The join rule.  held_counter / in_counter say whether each record is a
 * counter; have_held is 0 when nothing is held.  Registers among
 * themselves: last writer wins by timestamp.  A counter against a
 * register: the counter, whatever the timestamps (see the essay). */
enum counter_join counter_join_rule(int have_held, int held_counter,
				    rk_ts held_ts, int in_counter, rk_ts in_ts);

/* Merges counter bytes v[0, n) (a state or a delta) into c.  *op (may be
 * NULL) gets the delta's op id, or zero for a state.  Returns 1 when c
 * changed, 0 when it already covered them, RK_ECORRUPT (bad bytes,
 * including a window batch), RK_EVALUE_TOO_LARGE or RK_ENOMEM (c
 * unchanged). */
int counter_merge_bytes(struct crdt_counter *c, const uint8_t *v, size_t n,
			struct crdt_opid *op);

/* Decodes counter bytes (state or delta) into c, replacing its state.
 * Returns 0 or as counter_merge_bytes. */
int counter_load(struct crdt_counter *c, const uint8_t *v, size_t n);

/* A client's write (flags 0: not a hint, repair or owner's delta) of a
 * record of type in_counter ? counter : register meets what a replica
 * holds: a register write on a counter key, or a counter write on a key
 * holding a live value, is refused.  held_is_value says the held record
 * is a register value (not a tombstone).  Returns 0 (go ahead) or
 * RK_EWRONG_TYPE, and a reason in why (may be NULL). */
int counter_type_check(int have_held, int held_counter, int held_is_value,
		       int in_counter, char *why, size_t whylen);

/* ---- the dedup window in snapshots ----------------------------------
 * Compaction replaces the log records that carried op ids by a snapshot
 * of states, so it writes the window itself into the snapshot, in
 * batches:
 *   0  u8   version (1)      1  u8  kind (3)     2 u16 flags (0)
 *   4  u32  id count n
 *   8  u64  the window's watermark (ms)
 *   16      n x 16-byte op ids, oldest first
 *   16+16n  u32 CRC-32C of everything before it
 */
#define COUNTER_WINDOW_FIXED 20u
/* Ids per batch record: 64 KiB of ids. */
#define COUNTER_WINDOW_BATCH 4096u

size_t counter_window_size(uint32_t n);
void counter_window_encode(uint64_t watermark, const struct crdt_opid *ids,
			   uint32_t n, uint8_t *out);
/* Validates p[0, len) and points *ids at the n ids inside it.  Returns 0
 * or RK_ECORRUPT. */
int counter_window_decode(const uint8_t *p, size_t len, uint64_t *watermark,
			  const uint8_t **ids, uint32_t *n);

/* The key window batches are logged under (any key works: replay tells
 * them by their form; this one is never a client key's record there). */
#define COUNTER_WINDOW_KEY "\0window"
#define COUNTER_WINDOW_KEY_LEN 7u

/* ---- reads ---------------------------------------------------------- */

/* The value of counter state bytes; *found is 0 for an empty (deleted or
 * never added) counter.  Returns 0 or RK_ECORRUPT. */
int counter_value_of(const uint8_t *v, size_t n, int64_t *value, int *found);

#endif
