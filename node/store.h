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
};

struct store_stats {
	uint64_t keys;        /* live values */
	uint64_t tombstones;
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

/* Reads the op-log back for a peer's catch-up, up to its current end (see
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

/* Records that no Paxos ballot was or will be issued at or above hlc until
 * a higher bound is recorded (raised ahead of the clock, so ballots never
 * repeat across restarts).  *lsn as above.  Returns 0 or RK_ENOMEM. */
int store_paxos_set_bound(struct store *s, uint64_t hlc, uint64_t *lsn);

/* The highest bound recorded (0: none). */
uint64_t store_paxos_bound(const struct store *s);

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
