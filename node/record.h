/* record.h: one stored record in memory.
 *
 * A record is the newest version the node holds of a key: a value or a
 * tombstone, stamped with the Lamport/HLC timestamp of the write that made
 * it.  Key and value live in the same allocation right after the header, so
 * a record costs one malloc.  The table owns records; see table.h.
 */
#ifndef RK_RECORD_H
#define RK_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include "hlc.h"

/* Record types; the same numbers are stored in op-log records.  A
 * table record is a value, a tombstone or a counter (RK_REC_COUNTER). */
enum rk_rec_type {
	RK_REC_VALUE = 1,
	RK_REC_TOMBSTONE = 2,
	/* Only in the op-log: the key left this node (it no longer owns it
	 * after a ring change).  Replay removes the key, whatever its
	 * version: the record's place in the log is what orders it. */
	RK_REC_DROP = 3,
	/* A counter's full state (repl/counter.h): its value bytes are a
	 * crdt state (crdt_encode).  In the table, in snapshots, and in the
	 * op-log when a whole state was merged (repair, catch-up, stream). */
	RK_REC_COUNTER = 4,
	/* Only in the op-log: a counter change that carries an op id.  Its
	 * value is either a crdt delta (kind 2: an owner's add, or a delta
	 * merged from its owner, with the add's op id), replayed as a merge
	 * plus a dedup-window insert; or, in snapshots only, a batch of
	 * remembered op ids (kind 3, repl/counter.h counter_window_*),
	 * which rebuilds the window that compaction would otherwise lose. */
	RK_REC_COUNTER_OP = 5,
	/* Only in the op-log: a key's Paxos acceptor state (node/cas.c), the
	 * value being paxos.proto's AcceptorState bytes, or empty when the
	 * state was pruned; the last one of a key wins.  Ballots need no
	 * record of their own: they are the store's versions, which never
	 * repeat (store_stamp's clock ceiling).  Never in the table, never
	 * replicated; kept across compaction (store.c). */
	RK_REC_PAXOS = 6,
	/* Only in the hints log: a record kept for another node.  Its value
	 * is [u8 record type][u64 target node][u64 created ms][the record's
	 * value], little-endian (node/hints.c). */
	RK_REC_HINT = 16,
};

/* Hard cap from the 16-bit key length; the configured limit is lower. */
#define RK_KEY_HARD_MAX 65535u

struct rk_rec {
	struct rk_rec *next; /* hash chain; owned by the table */
	rk_ts ts;            /* version of this record */
	uint32_t hash;       /* low bits of the table hash of the key */
	uint32_t vlen;       /* value bytes (0 for a tombstone) */
	uint16_t klen;       /* key bytes, >= 1 */
	uint8_t type;        /* enum rk_rec_type */
	uint8_t flags;       /* reserved, 0 */
	uint8_t data[];      /* key[klen] then value[vlen] */
};

static inline const uint8_t *rk_rec_key(const struct rk_rec *r)
{
	return r->data;
}

static inline const uint8_t *rk_rec_value(const struct rk_rec *r)
{
	return r->data + r->klen;
}

/* Bytes of memory the record takes, excluding allocator overhead. */
static inline size_t rk_rec_size(const struct rk_rec *r)
{
	return offsetof(struct rk_rec, data) + r->klen + r->vlen;
}

/* Allocates a record with copies of key and value.  Returns NULL when out
 * of memory.  The caller owns it until handing it to a table. */
struct rk_rec *rk_rec_new(uint8_t type, rk_ts ts, const void *key,
			  uint16_t klen, const void *val, uint32_t vlen);

#endif
