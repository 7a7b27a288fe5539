/* repl.h: quorum replication as a pure state machine: the coordinator of
 * client reads and writes, the replica side, read repair, hinted handoff,
 * and catch-up from peers' op-logs.  repl.c opens with the essay (Dynamo
 * and Cassandra, where we differ, why).
 *
 * The module touches no socket, file or clock (DESIGN.md).  Its owner
 * (node/ in the daemon, tests/sim in the simulator) supplies a runtime and
 * feeds it inputs:
 *
 *   a client request           -> repl_read(), repl_write(),
 *                                 repl_counter_add/_get/_delete()
 *   a message from a peer      -> repl_recv()
 *   a message could not go out -> repl_unreachable()
 *   the timer fires            -> repl_tick(); re-arm at repl_next_deadline()
 *   the ring changed           -> repl_set_ring()
 *   a node went up or down     -> repl_set_up()
 *   local durability advanced  -> repl_durable()
 *   an async storage read done -> repl_log_read_done(), repl_scan_done()
 *   at start, saved state      -> repl_hint_restore(), repl_pos_restore()
 *
 * Outputs leave through the runtime: messages (send), client answers
 * (reply), and storage calls.  Callbacks must not call repl input
 * functions.  One struct repl per node, one thread.
 */
#ifndef RK_REPL_H
#define RK_REPL_H

#include <stddef.h>
#include <stdint.h>

#include "log.h"
#include "repl_msg.h"
#include "ring.h"

struct repl;

/* Consistency levels (values equal the wire enum). */
enum repl_cl {
	REPL_CL_DEFAULT = 0, /* QUORUM */
	REPL_CL_ONE = 1,
	REPL_CL_QUORUM = 2,
	REPL_CL_ALL = 3,
};

struct repl_config {
	uint64_t self_id;
	uint32_t rf;                  /* replication factor */
	uint32_t write_timeout_ms;    /* a write waits this long for acks */
	uint32_t read_timeout_ms;     /* a read waits this long for replies */
	uint32_t read_speculate_ms;   /* a read asks R replicas, the others
					 after this long; 0: all at once */
	uint64_t hint_window_ms;      /* hints older than this are dropped */
	uint32_t hint_rate;           /* hints replayed per second per node */
	uint64_t hint_max_bytes;      /* per target; beyond it, catch-up */
	uint32_t batch_bytes;         /* catch-up and stream batch size */
	uint64_t anti_entropy_ms;     /* digest catch-up from every peer */
	uint32_t max_inflight_syncs;  /* catch-ups and streams at once */
};

/* Fills cfg with the defaults (see repl.c). */
void repl_config_defaults(struct repl_config *cfg);

/* One replica's answer, in the all-replies form of a read. */
struct repl_part {
	uint64_t node;
	int status;              /* 0, RK_ENOT_FOUND, RK_ETIMEOUT, ... */
	struct repl_record rec;  /* when status is 0 (value or tombstone) */
	int64_t value;		 /* counter reads: this replica's value */
};

/* A client request's outcome.  Pointers are valid during reply() only. */
struct repl_result {
	int status;        /* 0, RK_ENOT_FOUND, RK_EUNAVAILABLE, RK_ETIMEOUT,
			      RK_EINTERNAL */
	const char *detail; /* human-readable, for errors */
	int maybe_applied; /* a failed write may still have been applied */
	struct repl_record rec; /* read: the newest record (if found) */
	rk_ts ts;          /* write: the version it was stamped with */
	uint32_t answered; /* replicas that answered or acknowledged */
	uint32_t needed;   /* the consistency level's count */
	uint32_t replicas; /* the key's replicas */
	const struct repl_part *parts; /* all-replies reads */
	size_t n_parts;
	/* counters */
	int64_t value;	/* get: the merged value; add: the owner's value
			   right after the add (not a read) */
	int duplicate;	/* add: the op id had been applied before */
	uint64_t owner; /* add: the replica that owns the op id */
};

/* A peer's position in our view of its op-log. */
struct repl_pos {
	uint64_t node;
	uint64_t lsn; /* we hold every record of its log before this */
};

/* Storage and persistence, as the owner provides them. */
struct repl_storage {
	/* The newest record held for key.  Returns 0 (out filled, borrowed
	 * until the next storage call) or RK_ENOT_FOUND. */
	int (*get)(void *ctx, const uint8_t *key, size_t klen,
		   struct repl_record *out);
	/* Applies r if newer than what is held (last writer wins).
	 * Returns 1 (applied; *lsn is its log position), 0 (held one is as
	 * new or newer), or an RK_E* error. */
	int (*apply)(void *ctx, const struct repl_record *r, uint64_t *lsn);
	/* A new version from this node's clock, never one it issued before
	 * (a restart included).  Returns 0, or an RK_E* error (the clock
	 * could not be made durable): then nothing is written. */
	int (*stamp)(void *ctx, rk_ts *out);
	/* Every local LSN <= this is durable as the fsync policy says. */
	uint64_t (*durable_lsn)(void *ctx);
	/* The LSN the next local record will get (our log's end). */
	uint64_t (*log_end)(void *ctx);
	/* Keeps a hint for target durably enough to survive a restart. */
	void (*hint_save)(void *ctx, uint64_t target,
			  const struct repl_record *r, uint64_t created_ms);
	/* Every hint was delivered or expired: the saved ones may go. */
	void (*hints_clear)(void *ctx);
	/* Reads our op-log from from_lsn: records whose key token falls in
	 * ranges, up to max_bytes, values left out when digest.  cursor is
	 * the hint the previous batch returned (0: none).  Answer later with
	 * repl_log_read_done(token, ...); ranges are borrowed only during
	 * the call. */
	void (*log_read)(void *ctx, uint64_t token, uint64_t from_lsn,
			 uint64_t cursor, const struct repl_range *ranges,
			 size_t n_ranges, uint32_t max_bytes, int digest);
	/* Walks our table from cursor: records in ranges, up to max_bytes.
	 * Answer later with repl_scan_done(token, ...). */
	void (*scan)(void *ctx, uint64_t token, uint64_t cursor,
		     const struct repl_range *ranges, size_t n_ranges,
		     uint32_t max_bytes);
	/* Saves peers' log positions (called now and then). */
	void (*pos_save)(void *ctx, const struct repl_pos *pos, size_t n);
	/* The owner's add (counter.c, "An add"): RK_EWRONG_TYPE when key
	 * holds a register value; asks the dedup window about op; adds
	 * delta to this node's entry, logs it with op, remembers op.
	 * Returns 0 (applied) or 1 (op was applied before), with *out the
	 * counter record to ship (this node's entry as a delta; bytes
	 * borrowed until the next storage call; out->val NULL when there is
	 * nothing to ship), *lsn the log position that must be durable
	 * before it ships, *value this node's value of the counter; or
	 * RK_EINVALID (the window refuses op; reason in why),
	 * RK_EWRONG_TYPE, RK_EVALUE_TOO_LARGE (too many entries), RK_ENOMEM.
	 * NULL: the node has no counters (RK_ENOT_IMPLEMENTED). */
	int (*counter_add)(void *ctx, const uint8_t *key, size_t klen,
			   int64_t delta, const struct crdt_opid *op,
			   struct repl_record *out, uint64_t *lsn,
			   int64_t *value, char *why, size_t whylen);
};

struct repl_runtime {
	void *ctx;                         /* passed back; borrowed */
	const struct rk_logger *log;       /* NULL: silent */
	const struct repl_storage *store;  /* borrowed */
	uint64_t (*now_ms)(void *ctx);     /* monotonic */
	uint64_t (*random)(void *ctx);
	/* One-way message to a node; loss is allowed. */
	void (*send)(void *ctx, uint64_t to, const struct repl_msg *m);
	/* The answer to a client request. */
	void (*reply)(void *ctx, uint64_t client, const struct repl_result *r);
};

/* Counters since repl_new. */
struct repl_stats {
	uint64_t reads, writes;          /* coordinated */
	uint64_t unavailable, timeouts;  /* client errors */
	uint64_t repairs;                /* read-repair writes sent */
	uint64_t hints_stored, hints_delivered, hints_expired,
		hints_dropped;
	uint64_t hints_pending;          /* now */
	uint64_t catchups, catchup_records, streams, stream_records;
	uint64_t replica_writes, replica_reads;
	uint64_t counter_adds;	     /* coordinated */
	uint64_t counter_owned;	     /* applied here as owner */
	uint64_t counter_duplicates; /* retries answered from the window */
	uint64_t counter_reads;
	uint64_t wrong_type; /* client ops refused */
};

/* Returns 0, RK_EINVALID or RK_ENOMEM; *out is the caller's (repl_free). */
int repl_new(const struct repl_config *cfg, const struct repl_runtime *rt,
	     struct repl **out);
void repl_free(struct repl *r);

/* The rings to route by (borrowed; valid until the next call): ring holds
 * the natural owners (reads, and the acknowledgements a write counts);
 * while nodes join or leave, pending is the ring as it will be, and its
 * owners get every write too (NULL when no change is under way). */
void repl_set_ring(struct repl *r, const struct ring *ring,
		   const struct ring *pending);

/* Liveness of a node as gossip sees it (alive/suspect = up). */
void repl_set_up(struct repl *r, uint64_t node, int up);

/* Client operations.  client is the owner's handle for the reply; exactly
 * one reply() follows, maybe before the call returns.  all_replies asks
 * for every replica's answer (waiting for each up to the read timeout). */
void repl_read(struct repl *r, uint64_t client, const uint8_t *key,
	       size_t klen, enum repl_cl cl, int all_replies);
void repl_write(struct repl *r, uint64_t client, uint8_t type,
		const uint8_t *key, size_t klen, const uint8_t *val,
		size_t vlen, enum repl_cl cl);

/* Counters (counter.c).  counter_add sends the add to the owner of op
 * (crdt_owner among the key's natural replicas), which applies it once
 * and replicates its entry at cl; the reply carries value, duplicate and
 * owner.  counter_get merges the answers of the replicas (all_replies:
 * each one's value in parts) and repairs the ones behind.  counter_delete
 * starts a new generation of the counter (crdt_delete) at cl.  Exactly
 * one reply() follows each, as for reads and writes. */
void repl_counter_add(struct repl *r, uint64_t client, const uint8_t *key,
		      size_t klen, int64_t delta, const struct crdt_opid *op,
		      enum repl_cl cl);
void repl_counter_get(struct repl *r, uint64_t client, const uint8_t *key,
		      size_t klen, enum repl_cl cl, int all_replies);
void repl_counter_delete(struct repl *r, uint64_t client, const uint8_t *key,
			 size_t klen, enum repl_cl cl);

/* The replica that owns op for key (routing: a smart client computes the
 * same from the ring).  0 when the ring is empty. */
uint64_t repl_counter_owner(const struct repl *r, const uint8_t *key,
			    size_t klen, const struct crdt_opid *op);

/* A message from node from. */
void repl_recv(struct repl *r, uint64_t from, const struct repl_msg *m);

/* The message could not be sent to `to` (no connection): its request
 * fails at once rather than at its deadline. */
void repl_unreachable(struct repl *r, uint64_t to, const struct repl_msg *m);

/* The connection to node broke: messages to it may be lost.  Requests
 * waiting on it fail now (writes may still have been applied there). */
void repl_peer_down(struct repl *r, uint64_t node);

void repl_tick(struct repl *r);
uint64_t repl_next_deadline(const struct repl *r);

/* Local durability reached lsn: writes waiting for it are acknowledged. */
void repl_durable(struct repl *r, uint64_t lsn);

/* Completions of storage->log_read and storage->scan.  status is 0 or an
 * error; truncated says from_lsn is older than the log's oldest record. */
void repl_log_read_done(struct repl *r, uint64_t token, int status,
			const struct repl_record *recs, size_t n,
			uint64_t next_lsn, uint64_t cursor, uint64_t end_lsn,
			int truncated);
void repl_scan_done(struct repl *r, uint64_t token, int status,
		    const struct repl_record *recs, size_t n, uint64_t cursor,
		    int done);

/* State saved by an earlier run. */
void repl_hint_restore(struct repl *r, uint64_t target,
		       const struct repl_record *rec, uint64_t created_ms);
void repl_pos_restore(struct repl *r, uint64_t node, uint64_t lsn);

/* Asks to catch up from every replica peer now (after our restart). */
void repl_catch_up_all(struct repl *r);

/* Pulls ranges from node (join, decommission, removal): records of our
 * new ranges streamed from an old owner, then its log from where the
 * stream began.  done(ctx, status) is called once. */
void repl_pull_ranges(struct repl *r, uint64_t from,
		      const struct repl_range *ranges, size_t n,
		      void (*done)(void *ctx, int status), void *ctx);

void repl_get_stats(const struct repl *r, struct repl_stats *out);

/* Work a graceful stop should let finish: writes still waiting for their
 * replicas (whose misses become hints) and hints for nodes that are up. */
size_t repl_unfinished(const struct repl *r);

/* A set of token ranges for fast membership tests (O(log n)): what a node
 * serving a catch-up or a stream filters records by.  Owned by the caller
 * (free with free()).  Returns NULL when out of memory. */
struct repl_rangeset;
struct repl_rangeset *repl_rangeset_new(const struct repl_range *r, size_t n);
int repl_rangeset_contains(const struct repl_rangeset *rs, uint64_t token);

/* Hints waiting for node (0 = all nodes). */
uint64_t repl_hints_pending(const struct repl *r, uint64_t node);

/* The replicas of key's token (at most RING_RF_MAX), for routing. */
size_t repl_replicas(const struct repl *r, uint64_t token, uint64_t *out);

#endif
