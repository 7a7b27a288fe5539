/* oplog.h: the durable, checksummed, segmented op-log of one node.
 *
 * Every applied write is appended as a record (logfmt.h) with a log
 * sequence number (LSN).  Files in the log directory:
 *
 *   <first-lsn, 16 hex digits>.log   segments, in LSN order
 *   snapshot-<cutoff>.snap           a compacted copy of the whole table:
 *                                    "RKS1" then one zstd frame (with its
 *                                    content checksum) of records
 *
 * Threads.  The event loop appends into a private open chunk (no lock) and
 * calls oplog_flush once per loop turn, which queues the chunk for the
 * writer thread.  The writer writes every queued chunk, then, per the fsync
 * policy, calls fdatasync once for all of them: concurrent writes share one
 * fsync (group commit).  When durability advances it calls the notify
 * callback (the node binds it to ev_async) so the loop can acknowledge
 * writes whose LSN is now durable.  A write or fsync error is fatal: the
 * process logs it and exits, never retries (after a failed fsync the page
 * cache may have dropped the data, so a retry could report durability
 * that is not there).
 *
 * Compaction writes a snapshot instead of rewriting segments: because
 * records are versioned (last writer wins by timestamp), replaying a
 * record twice or out of order yields the same table, so the table can be
 * walked incrementally while writes go on, and every record not in the
 * snapshot is in a segment from the cutoff on.  Begin marks a segment
 * rotation at the cutoff LSN; the loop feeds records in small steps; a
 * compaction thread compresses and writes them; at the end the file is
 * fsynced and renamed into place and the segments before the cutoff are
 * deleted.
 *
 * Replay loads the newest snapshot, then every segment from the cutoff on.
 * A torn or damaged tail of the last segment (nothing whole after it) is
 * truncated and logged; damage anywhere else stops the start with an error
 * naming the file and offset.
 */
#ifndef RK_OPLOG_H
#define RK_OPLOG_H

#include <stddef.h>
#include <stdint.h>

#include "log.h"
#include "logfmt.h"

enum rk_fsync {
	RK_FSYNC_ALWAYS = 0,   /* acknowledge only after fdatasync */
	RK_FSYNC_INTERVAL = 1, /* fdatasync at most every interval */
	RK_FSYNC_NEVER = 2,    /* leave it to the OS (fsync on clean stop) */
};

struct oplog_config {
	const char *dir;            /* log directory; created if missing */
	enum rk_fsync fsync;
	uint32_t fsync_interval_ms; /* for RK_FSYNC_INTERVAL */
	uint64_t segment_bytes;     /* rotate once a segment reaches this */
	int zstd_level;             /* snapshot compression level, 1..19 */
};

/* What replay found. */
struct oplog_replay_stats {
	uint64_t snapshot_records;
	uint64_t log_records;
	uint64_t segments;
	uint64_t truncated_bytes; /* torn tail dropped, 0 normally */
};

struct oplog_stats {
	uint64_t next_lsn;      /* LSN the next append gets */
	uint64_t durable_lsn;   /* every LSN <= this is on disk */
	uint64_t segment_bytes; /* bytes in all segments */
	uint64_t segments;
	uint64_t snapshot_bytes;
	uint64_t fsyncs;
	uint64_t queued_bytes;  /* appended but not yet written */
};

struct oplog;

typedef void (*oplog_notify_fn)(void *ctx);
typedef int (*oplog_apply_fn)(void *ctx, const struct rk_logrec *r);

/* Opens (creating) the log directory.  Returns 0 or RK_EIO with a reason
 * in err.  *out is owned by the caller; free with oplog_close. */
int oplog_open(const struct oplog_config *cfg, const struct rk_logger *lg,
	       struct oplog **out, char *err, size_t errlen);

/* Feeds every stored record to apply, oldest first, truncating a torn
 * tail.  Call once, before oplog_start.  Returns 0, RK_ECORRUPT or RK_EIO
 * with a reason naming file and offset in err, or what apply returned. */
int oplog_replay(struct oplog *log, oplog_apply_fn apply, void *ctx,
		 struct oplog_replay_stats *st, char *err, size_t errlen);

/* Starts the writer thread.  notify is called from other threads when
 * durability or compaction state changes; it must be thread-safe (e.g.
 * ev_async_send).  Returns 0 or RK_EIO. */
int oplog_start(struct oplog *log, oplog_notify_fn notify, void *ctx);

/* Appends r (loop thread only), assigning r->lsn.  Returns the LSN, or 0
 * when out of memory. */
uint64_t oplog_append(struct oplog *log, struct rk_logrec *r);

/* Appends r like oplog_append, and makes the writer fdatasync it (with
 * everything before it) whatever the fsync policy: for records whose
 * durability is promised to other nodes (Paxos acceptor state).  Wait for
 * oplog_synced_lsn() to reach the result. */
uint64_t oplog_append_sync(struct oplog *log, struct rk_logrec *r);

/* Hands what was appended since the last flush to the writer.  Call once
 * per event-loop turn. */
void oplog_flush(struct oplog *log);

/* Every LSN <= the result is durable per the fsync policy: synced under
 * always; appended under interval and never (loop thread). */
uint64_t oplog_durable_lsn(struct oplog *log);

int oplog_fsync_always(const struct oplog *log);

/* Every LSN <= the result has been fdatasync'd (or was replayed at start),
 * under any policy (loop thread; the notify callback fires when it
 * advances). */
uint64_t oplog_synced_lsn(struct oplog *log);

void oplog_get_stats(struct oplog *log, struct oplog_stats *st);

/* Flushes, fsyncs, stops the threads and frees the log. */
void oplog_close(struct oplog *log);

/* --- compaction (loop thread) --- */

/* Starts a snapshot; *cutoff receives its LSN.  Returns 0, RK_EINVALID if
 * one is running, or RK_EIO. */
int oplog_snapshot_begin(struct oplog *log, uint64_t *cutoff);
/* Adds one record (its lsn is ignored).  Returns 0 or RK_ENOMEM. */
int oplog_snapshot_add(struct oplog *log, const struct rk_logrec *r);
/* Bytes handed to the compaction thread and not yet written: the caller
 * paces itself on this. */
uint64_t oplog_snapshot_backlog(struct oplog *log);
/* No more records: the compaction thread finishes the file. */
void oplog_snapshot_end(struct oplog *log);
/* Gives the snapshot up: its file is removed, the segments stay. */
void oplog_snapshot_abort(struct oplog *log);
/* 0 while no snapshot runs or it is still running; 1 when one finished
 * since the last call (then *ok says whether it was installed). */
int oplog_snapshot_poll(struct oplog *log, int *ok);
int oplog_snapshot_running(const struct oplog *log);

/* --- reading the log back (catch-up) ---
 *
 * A peer asks for our records from an LSN; reading segment files may
 * block, so it happens on a reader thread.  The request's want() runs on
 * that thread and decides which records go in (it must only read its
 * ctx).  The result is collected with oplog_read_poll on the loop thread
 * after the notify callback fired. */

/* Decides whether a record goes into a read result (reader thread). */
typedef int (*oplog_want_fn)(void *ctx, const struct rk_logrec *r);

struct oplog_read_result {
	uint64_t token;     /* as given */
	int status;         /* 0 or RK_E* */
	struct rk_buf recs; /* encoded records (logfmt), in log order */
	uint64_t next_lsn;  /* continue from here */
	uint64_t next_off;  /* ... found at this offset of its segment (a
			       hint for the next read; 0 = unknown) */
	uint64_t end_lsn;   /* as given: the log's end when asked */
	int truncated;      /* from_lsn is older than the oldest record kept */
	void *want_ctx;     /* as given, for the caller to free */
};

/* Queues a read of records [from_lsn, end_lsn) passing want(), up to about
 * max_bytes.  hint_off is the next_off of the previous batch (0: none).  Returns 0 or RK_ENOMEM. */
int oplog_read(struct oplog *log, uint64_t token, uint64_t from_lsn,
	       uint64_t hint_off, uint64_t end_lsn, uint32_t max_bytes,
	       oplog_want_fn want, void *want_ctx);

/* Takes one finished read (1), or returns 0 when none is ready.  The
 * caller frees out->recs with rk_buf_destroy. */
int oplog_read_poll(struct oplog *log, struct oplog_read_result *out);

/* The first LSN still in a segment (older ones only in the snapshot). */
uint64_t oplog_first_lsn(struct oplog *log);

/* Exit code of the process after a fatal log error. */
#define RK_EXIT_FATAL_IO 3

#endif
