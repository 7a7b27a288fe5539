/* store.h: one node's data: the record table, its Lamport clock and its
 * op-log, bound together with the last-writer-wins rule.
 *
 * A write only replaces an older version: the record with the greater
 * timestamp (rk_ts_cmp) wins, whatever order writes arrive in, so applying
 * the same write twice, or replaying the log, changes nothing.  Local
 * writes are stamped by the node's clock, which has observed every stored
 * timestamp, so they always win against what the node already holds.
 *
 * Loop thread only.  The caller passes the wall clock in (now_ms).
 */
#ifndef RK_STORE_H
#define RK_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "crdt.h"
#include "log.h"
#include "oplog.h"
#include "record.h"
#include "table.h"

struct store_config {
	const char *data_dir;        /* holds node_id, LOCK and log/ */
	enum rk_fsync fsync;
	uint32_t fsync_interval_ms;
	uint64_t segment_bytes;
	int zstd_level;
	uint64_t compact_min_bytes;  /* never compact a smaller log */
	uint32_t compact_ratio_pct;  /* compact when segments exceed this
					percentage of the live data */
	uint64_t tombstone_grace_ms; /* tombstones older than this are
					purged by compaction */
	uint32_t compact_step_records; /* records per loop turn */
	uint64_t compact_backlog_bytes; /* pause feeding above this */
	uint64_t clock_window_ms;    /* clock ceiling step (rk_hlc_ceiling) */
	/* counters (0: the crdt.h defaults) */
	uint32_t dedup_max_ids;	      /* op ids remembered */
	uint64_t dedup_max_age_ms;    /* ... for at most this long */
	uint64_t dedup_max_future_ms; /* op ids stamped further ahead of
					 our clock are refused */
	uint32_t counter_max_entries; /* entries (owners) per counter */
};

struct store_stats {
	uint64_t keys;	       /* live values and counters */
	uint64_t tombstones;   /* register tombstones and deleted counters */
	uint64_t counters;     /* live counters (among keys) */
	uint64_t counter_adds; /* applied here as owner */
	uint64_t counter_duplicates; /* op ids answered from the window */
	uint64_t counter_refused;    /* op ids the window refused */
	struct crdt_dedup_stats dedup;
	uint64_t bytes;       /* memory of records */
	uint64_t compactions;
	uint64_t purged_tombstones;
	struct oplog_replay_stats replay;
	uint64_t replay_ms;
	struct oplog_stats log;
};

struct store;

/* Opens data_dir (creating it and a node id on first start), locks it
 * against a second process, and replays the log.  Returns 0, or RK_EIO /
 * RK_ECORRUPT / RK_ENOMEM with a reason in err. */
int store_open(const struct store_config *cfg, const struct rk_logger *lg,
	       uint64_t now_ms, struct store **out, char *err, size_t errlen);

/* Starts the op-log writer; notify as oplog_start. */
int store_start(struct store *s, oplog_notify_fn notify, void *ctx);

/* Flushes and fsyncs the log and frees everything. */
void store_close(struct store *s);

uint64_t store_node_id(const struct store *s);

/* The record for key, a value or a tombstone, or NULL; borrowed until the
 * next write. */
const struct rk_rec *store_get(struct store *s, const void *key,
			       size_t klen);

/* A new version from the node's clock: greater than every version the
 * node issued (before any restart too) or holds.  Returns 0, or RK_EIO
 * when the clock ceiling (data_dir/clock, see rk_hlc_ceiling) could not be
 * made durable: then no version may be issued. */
int store_stamp(struct store *s, uint64_t now_ms, rk_ts *out);

/* The LSN the next logged record will get. */
uint64_t store_log_end(struct store *s);

/* Reads the op-log back for a peer's catch-up, up to its durable end (see
 * oplog_read); results come through store_log_poll after the notify. */
int store_log_read(struct store *s, uint64_t token, uint64_t from_lsn,
		   uint64_t hint_off, uint32_t max_bytes, oplog_want_fn want,
		   void *want_ctx);
int store_log_poll(struct store *s, struct oplog_read_result *out);

/* One step of a walk over every record (rk_table_scan). */
uint64_t store_scan(struct store *s, uint64_t cursor, rk_table_scan_fn fn,
		    void *ctx);

/* A local write of a value (type RK_REC_VALUE) or a delete (type
 * RK_REC_TOMBSTONE): store_stamp then store_apply.  *ts gets the stamp
 * and *lsn the log position to wait for under fsync=always.  Returns 0 or
 * RK_ENOMEM. */
int store_write(struct store *s, uint8_t type, const void *key, size_t klen,
		const void *val, size_t vlen, uint64_t now_ms, rk_ts *ts,
		uint64_t *lsn);

/* A versioned write made elsewhere (a replica, a repair, a hint): applied
 * and logged only when newer than what is held.  Returns 1 when applied
 * (*lsn set), 0 when what is held is as new or newer, or RK_ENOMEM. */
int store_apply(struct store *s, uint8_t type, const void *key, size_t klen,
		const void *val, size_t vlen, rk_ts ts, uint64_t *lsn);

/* ---- counters (repl/counter.h) ----
 *
 * store_apply with type RK_REC_COUNTER merges counter bytes (a crdt state
 * or delta) by the join rule (counter_join_rule): a counter is merged
 * with the counter held and replaces a register; a register never
 * replaces a counter.  A delta's op id joins the dedup window. */

/* The owner's add (repl.h, storage->counter_add): RK_EWRONG_TYPE when key
 * holds a value; the dedup window decides about op (1: a duplicate,
 * RK_EINVALID: refused, with the reason in why); else adds delta to this
 * node's entry, logs the delta with op (RK_REC_COUNTER_OP) and remembers
 * op.  Returns 0 or 1 with *delta_out the bytes to ship (this node's
 * entry after the add, CRDT_DELTA_SIZE bytes; NULL when there is none),
 * *ts its stamp, *lsn the log position to wait for, *value the counter's
 * value here; or RK_EINVALID / RK_EWRONG_TYPE / RK_EVALUE_TOO_LARGE /
 * RK_ENOMEM.  delta_out is borrowed until the next store call. */
int store_counter_add(struct store *s, const void *key, size_t klen,
		      int64_t delta, const struct crdt_opid *op,
		      uint64_t now_ms, const uint8_t **delta_out, rk_ts *ts,
		      uint64_t *lsn, int64_t *value, char *why, size_t whylen);

/* Shows our adds whose log records became durable (store.c, "Adds wait
 * for their fsync"): call when durability advances, before replication
 * hears of it. */
void store_settle(struct store *s);

/* Forgets op ids older than the window's age (call now and then). */
void store_counter_expire(struct store *s, uint64_t now_ms);

/* Forgets key (this node no longer owns it), logging a DROP record so
 * replay forgets it too.  Returns 1 when it was held, 0 when not, or
 * RK_ENOMEM. */
int store_drop(struct store *s, const void *key, size_t klen);

/* A timestamp seen elsewhere (a Paxos ballot): later stamps exceed it. */
void store_observe(struct store *s, rk_ts ts);

/* --- Paxos acceptor state (node/cas.c) ---
 * Opaque bytes per key (paxos.proto AcceptorState), the newest kept in
 * memory, appended as RK_REC_PAXOS records with a forced fdatasync
 * whatever storage.fsync says (an acceptor must not forget a promise),
 * replayed at open and carried into every snapshot. */

/* Records key's state (len 0: it has none any more).  *lsn gets the
 * record's LSN: it is on disk once store_synced_lsn() reaches it.
 * Returns 0, RK_EINVALID or RK_ENOMEM. */
int store_paxos_put(struct store *s, const void *key, size_t klen,
		    const void *state, size_t len, uint64_t *lsn);

/* Calls fn for every key that has a state (at start: restore them). */
typedef void (*store_paxos_fn)(void *ctx, const uint8_t *key, size_t klen,
			       const uint8_t *state, size_t len);
void store_paxos_each(struct store *s, store_paxos_fn fn, void *ctx);
size_t store_paxos_count(const struct store *s);

/* Every LSN <= the result is fdatasync'd, whatever the fsync policy. */
uint64_t store_synced_lsn(struct store *s);

/* Hands this turn's log records to the writer; once per loop turn. */
void store_flush(struct store *s);
uint64_t store_durable_lsn(struct store *s);
int store_waits_for_fsync(const struct store *s);

/* Compaction.  store_maintain decides whether to start one (call it now
 * and then); store_compact_step does one bounded step and returns 1 while
 * the loop should keep calling it. */
void store_maintain(struct store *s, uint64_t now_ms);
int store_compact_step(struct store *s, uint64_t now_ms);
/* Starts a compaction now (tests, admin).  Returns 0 or RK_EINVALID when
 * one is running. */
int store_compact_now(struct store *s);
int store_compacting(const struct store *s);

void store_get_stats(struct store *s, struct store_stats *st);

#endif
