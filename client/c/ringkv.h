/* ringkv.h: libringkv, the C client of ringkv.
 *
 * A smart client (the default, rkv_options.smart = 1) fetches the ring
 * and the membership from the first seed that answers, hashes each key as
 * the nodes do, and sends each request straight to one of the key's
 * replicas over a small pool of connections, one per node, opened when
 * first needed.  It refreshes the ring every few seconds while requests
 * flow and at once after a failure, and fails over to the next replica,
 * then to any node, when one cannot be reached.  With smart = 0, or
 * against a node that cannot describe its ring, a client holds one
 * connection to one node chosen from the seeds, which coordinates every
 * request, and reconnects (trying the other seeds) after a failure.
 *
 * Calls block until the node answers or the request timeout passes.  A
 * client is not thread-safe: use one per thread.
 *
 * Errors: every call returns RKV_OK (0) or a negative RKV_ERR_* code;
 * rkv_strerror() names a code and rkv_last_error() gives the detail of the
 * client's last failure.  A write that fails with RKV_ERR_TIMEOUT or
 * RKV_ERR_CLOSED may or may not have been applied.
 *
 * Retries: a read that could not reach a node, or whose connection broke
 * before the answer, is sent again to the next replica (then to any
 * node), and so is any request a stopping node refused (SHUTTING_DOWN:
 * not applied).  A write is sent again only when none of it left this
 * process or the node refused it;
 * once it may have reached a node it is never repeated, and a failure
 * then (RKV_ERR_TIMEOUT, RKV_ERR_CLOSED) means it may or may not have been
 * applied.
 *
 * Ownership: values returned through rkv_value ** are the caller's; free
 * them with rkv_value_free.  Values inside a batch belong to the batch.
 * Every other result a call returns through a pointer to pointer is the
 * caller's too, freed with the matching *_free; NULL is fine for each.
 */
#ifndef RINGKV_H
#define RINGKV_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Error codes.  The node's status codes have the same numbers. */
enum {
	RKV_OK = 0,
	RKV_ERR_NOT_FOUND = -1,
	RKV_ERR_BAD_REQUEST = -2,
	RKV_ERR_UNKNOWN_COMMAND = -3,
	RKV_ERR_KEY_TOO_LARGE = -4,
	RKV_ERR_VALUE_TOO_LARGE = -5,
	RKV_ERR_FRAME_TOO_LARGE = -6,
	RKV_ERR_MAX_CLIENTS = -7,
	RKV_ERR_UNAVAILABLE = -8,
	RKV_ERR_TIMEOUT = -9,
	RKV_ERR_INTERNAL = -10,
	RKV_ERR_WRONG_TYPE = -11,
	RKV_ERR_CONTENTION_TIMEOUT = -12,
	RKV_ERR_AUTH_REQUIRED = -13,
	RKV_ERR_AUTH_FAILED = -14,
	RKV_ERR_NOT_IMPLEMENTED = -15,
	RKV_ERR_EMPTY_KEY = -16,
	RKV_ERR_IO = -17,
	RKV_ERR_NOMEM = -19,
	RKV_ERR_INVALID = -20,
	RKV_ERR_CLOSED = -21,
	RKV_ERR_CONNECT = -22,
	RKV_ERR_PROTOCOL = -23,
	RKV_ERR_SHUTTING_DOWN = -24,
	RKV_ERR_OVERLOADED = -25,
};

/* How many replicas must answer.  DEFAULT lets the node decide (QUORUM).
 * SERIAL goes through Paxos at the key's primary replica: a get or exists
 * is a linearizable read (it sees every compare-and-set that finished
 * before it began), a put or delete an unconditional write ordered with
 * the key's compare-and-sets. */
typedef enum rkv_consistency {
	RKV_DEFAULT = 0,
	RKV_ONE = 1,
	RKV_QUORUM = 2,
	RKV_ALL = 3,
	RKV_SERIAL = 4,
} rkv_consistency;

typedef struct rkv_options {
	int connect_timeout_ms;        /* per address; default 2000 */
	int request_timeout_ms;        /* without progress; default 5000 */
	rkv_consistency read_consistency;  /* default RKV_DEFAULT */
	rkv_consistency write_consistency; /* default RKV_DEFAULT */
	int smart; /* 1 (rkv_options_init, and NULL options): send each
		      request to a replica of its key; 0 (a zeroed struct):
		      one connection through the seeds for everything */
} rkv_options;

/* A record's version: hybrid logical time, then the id of the node that
 * stamped it. */
typedef struct rkv_timestamp {
	uint64_t hlc;
	uint64_t node_id;
} rkv_timestamp;

typedef struct rkv_value {
	uint8_t *data;    /* len bytes, plus a NUL after them for convenience */
	size_t len;
	rkv_timestamp ts;
} rkv_value;

/* Per-call options; NULL means the client's defaults. */
typedef struct rkv_call_opts {
	rkv_consistency consistency; /* RKV_DEFAULT: the client's default */
	int timeout_ms;              /* 0: the client's default */
} rkv_call_opts;

typedef struct rkv_client rkv_client;

/* Fills o with the defaults. */
void rkv_options_init(rkv_options *o);

/* Makes a client for seeds without connecting yet: the first call
 * connects, and its error detail is then in rkv_last_error.  Returns
 * RKV_OK, RKV_ERR_INVALID (bad seed list) or RKV_ERR_NOMEM. */
int rkv_client_new(const char *seeds, const rkv_options *opts,
		   rkv_client **out);

/* Connects to the first reachable of seeds ("host:port,host:port"; IPv6
 * as "[::1]:7400").  opts may be NULL.  Returns RKV_OK with *out set, or
 * RKV_ERR_INVALID (bad seed list), RKV_ERR_CONNECT (none reachable; *out is
 * still NULL), RKV_ERR_NOMEM. */
int rkv_connect(const char *seeds, const rkv_options *opts, rkv_client **out);

/* Closes every connection and frees the client. */
void rkv_close(rkv_client *c);

/* The name of an error code ("not found", ...); never NULL. */
const char *rkv_strerror(int code);

/* Detail of the client's last failure ("" after a success). */
const char *rkv_last_error(const rkv_client *c);

/* The address ("host:port") of the node the last request went to while
 * its connection is open, else of the seed connection, or NULL.  Borrowed
 * until the next call on c. */
const char *rkv_connected_address(const rkv_client *c);

/* The id of the node the last single-key request (or the last request of
 * the last batch) was routed to, or 0 when it was not routed by the ring
 * (smart off, no ring known).  For tests and diagnostics. */
uint64_t rkv_last_node(const rkv_client *c);

/* Reads key.  RKV_OK with *out (caller frees), or RKV_ERR_NOT_FOUND. */
int rkv_get(rkv_client *c, const void *key, size_t klen, rkv_value **out);
int rkv_get_ex(rkv_client *c, const void *key, size_t klen,
	       const rkv_call_opts *opts, rkv_value **out);

/* Writes key = value.  ts (may be NULL) receives the write's version. */
int rkv_put(rkv_client *c, const void *key, size_t klen, const void *val,
	    size_t vlen, rkv_timestamp *ts);
int rkv_put_ex(rkv_client *c, const void *key, size_t klen, const void *val,
	       size_t vlen, const rkv_call_opts *opts, rkv_timestamp *ts);

/* Deletes key (a tombstone; deleting a missing key succeeds). */
int rkv_delete(rkv_client *c, const void *key, size_t klen, rkv_timestamp *ts);
int rkv_delete_ex(rkv_client *c, const void *key, size_t klen,
		  const rkv_call_opts *opts, rkv_timestamp *ts);

/* *exists = 1 when key holds a value. */
int rkv_exists(rkv_client *c, const void *key, size_t klen, int *exists);

/* Round trip to the node of the seed connection (the calls without a key,
 * ping, cluster and ring info, use it; it is the first seed that answers,
 * then for a smart client any member that is up); node_id (may be NULL)
 * gets its id. */
int rkv_ping(rkv_client *c, uint64_t *node_id);

void rkv_value_free(rkv_value *v);

/* --- compare-and-set ---
 * Decided by Paxos among the key's replicas, at its primary replica (the
 * first of them that is up; a smart client sends it there), and
 * linearizable per key with the other calls of this section and SERIAL
 * reads.  Plain puts and deletes of the same key are last-writer-wins
 * against it (README: "Mixing plain writes and compare-and-set").
 *
 * Byte strings: a NULL pointer means "absent" (no value: never written,
 * or deleted); a non-NULL pointer with length 0 is the empty string.
 *
 * Returns RKV_OK with *applied = 1 when the condition held and the write
 * was made, 0 when it did not hold (nothing was written); *current (may be
 * NULL) gets the key's value after the operation (the new value when
 * applied, else the value that failed the condition), or NULL when the
 * key has none; the caller frees it.  Errors:
 *   RKV_ERR_CONTENTION_TIMEOUT, RKV_ERR_TIMEOUT, RKV_ERR_CLOSED: the
 *     outcome is unknown (it may have been applied; read at SERIAL);
 *   RKV_ERR_UNAVAILABLE (fewer than a majority of the key's replicas
 *     up), RKV_ERR_OVERLOADED (too many waiting on the key or the node):
 *     not applied.
 * Like a write, it is never sent twice once it may have reached a node. */

/* Writes val (NULL: deletes the key) when the key's value equals expected
 * (NULL: when the key has no value). */
int rkv_cas(rkv_client *c, const void *key, size_t klen, const void *expected,
	    size_t elen, const void *val, size_t vlen, int *applied,
	    rkv_value **current);
int rkv_cas_ex(rkv_client *c, const void *key, size_t klen,
	       const void *expected, size_t elen, const void *val, size_t vlen,
	       const rkv_call_opts *opts, int *applied, rkv_value **current);

/* Writes val when the key has no value. */
int rkv_put_if_absent(rkv_client *c, const void *key, size_t klen,
		      const void *val, size_t vlen, int *applied,
		      rkv_value **current);

/* Deletes the key when its value equals expected (not NULL). */
int rkv_delete_if(rkv_client *c, const void *key, size_t klen,
		  const void *expected, size_t elen, int *applied,
		  rkv_value **current);

/* --- every replica's answer ---
 * rkv_get_all reads key at the call's consistency level and returns what
 * each replica answered as well as the newest version, like Cassandra's
 * per-replica read trace or the Java client's
 * quorumGet(key).awaitQuorum(..).mostUptoDateResponse().  The coordinator
 * waits for every replica up to its read timeout, so a slow or dead
 * replica shows up as an answer with an error status. */
typedef struct rkv_reply {
	uint64_t node_id;
	int status;        /* RKV_OK; RKV_ERR_NOT_FOUND when the replica has no
			      value (missing, or a tombstone); RKV_ERR_TIMEOUT,
			      RKV_ERR_UNAVAILABLE, ... when it did not answer */
	int tombstone;     /* NOT_FOUND because of a delete stamped ts */
	uint8_t *data;     /* RKV_OK: len bytes plus a NUL; else NULL */
	size_t len;
	rkv_timestamp ts;  /* the version held; {0, 0} when none */
} rkv_reply;

typedef struct rkv_replies {
	int status;              /* the read's outcome, as rkv_get_all returns */
	rkv_value *newest;       /* the newest value; NULL when the newest
				    version is missing or a tombstone */
	rkv_timestamp newest_ts; /* version of the newest record (value or
				    tombstone); {0, 0} when none */
	rkv_reply *replies;      /* one per replica that was asked */
	size_t n_replies;
} rkv_replies;

/* Returns RKV_OK (the newest version is a value), RKV_ERR_NOT_FOUND (it is
 * missing or deleted), or another error.  *out is set whenever a node
 * answered, errors included (then it holds the answers it carried, maybe
 * none), and is NULL only when none did (a connection error); the caller
 * frees it with rkv_replies_free. */
int rkv_get_all(rkv_client *c, const void *key, size_t klen,
		const rkv_call_opts *opts, rkv_replies **out);
void rkv_replies_free(rkv_replies *r);

/* The copy of key held by the node at addr ("host:port"; NULL: the seed
 * connection), without coordination: a diagnostic read.  RKV_OK with *out
 * (caller frees), or RKV_ERR_NOT_FOUND (missing or a tombstone there). */
int rkv_get_local(rkv_client *c, const char *addr, const void *key,
		  size_t klen, rkv_value **out);

/* --- counters ---
 * A counter is a key holding a PN-counter CRDT: adds on any replica merge
 * without coordination and every replica converges to the exact sum.  A
 * key is either a counter or a register: the wrong call on it returns
 * RKV_ERR_WRONG_TYPE.
 *
 * Every add carries an op id that makes it idempotent: sent any number of
 * times, through any node, it is counted at most once, as long as its
 * owner still remembers it (the node's counters.dedup_max_ids and
 * dedup_max_age, one hour by default); a retry after that is refused
 * (RKV_ERR_BAD_REQUEST), never counted twice.  RKV_OK means counted
 * exactly once.  RKV_ERR_TIMEOUT, RKV_ERR_CLOSED, RKV_ERR_UNAVAILABLE and
 * RKV_ERR_SHUTTING_DOWN leave it unknown: send it again with the same op
 * id until one answer is definite. */

/* 16 bytes: the issue time in ms since 1970 (u64 little-endian), then 8
 * random bytes (common/crdt.h).  All zero means "none". */
typedef struct rkv_op_id {
	uint8_t b[16];
} rkv_op_id;

/* A fresh op id: now, and 64 random bits. */
void rkv_op_id_new(rkv_op_id *id);

typedef struct rkv_counter_add_result {
	int64_t value;	/* the owner's value right after the add (a hint,
			   not a read at any consistency) */
	int duplicate;	/* the op id had been applied before: this was a
			   retry of an add that was counted */
	uint64_t owner; /* the replica that owns the op id */
} rkv_counter_add_result;

/* Adds delta to the counter at key (creating it) with a fresh op id, and
 * sends it again with the same op id, up to RKV_COUNTER_ATTEMPTS times in
 * all, while the outcome is unknown.  value (may be NULL) gets the owner's
 * value after the add.  The last error when no attempt was definite. */
#define RKV_COUNTER_ATTEMPTS 4
int rkv_counter_add(rkv_client *c, const void *key, size_t klen, int64_t delta,
		    int64_t *value);

/* One attempt of an add with the caller's op id: *op_id all zero makes a
 * fresh one and writes it back, so the caller can retry with it.  res may
 * be NULL. */
int rkv_counter_add_ex(rkv_client *c, const void *key, size_t klen,
		       int64_t delta, const rkv_call_opts *opts,
		       rkv_op_id *op_id, rkv_counter_add_result *res);

/* The counter's value: the merge of what the replicas asked (the read
 * consistency) hold, repairing the ones behind.  RKV_ERR_NOT_FOUND when it
 * was never added to, or deleted since (*value is 0). */
int rkv_counter_get(rkv_client *c, const void *key, size_t klen,
		    int64_t *value);
int rkv_counter_get_ex(rkv_client *c, const void *key, size_t klen,
		       const rkv_call_opts *opts, int64_t *value);

/* Every replica's value as well as the merge (getQuorumCounter). */
typedef struct rkv_counter_reply {
	uint64_t node_id;
	int status;    /* RKV_OK, RKV_ERR_NOT_FOUND (none there), or why it
			  did not answer */
	int64_t value; /* RKV_OK: what that replica holds */
} rkv_counter_reply;

typedef struct rkv_counter_replies {
	int status;    /* as rkv_counter_get_all returns */
	int64_t value; /* the merged value */
	rkv_counter_reply *replies;
	size_t n_replies;
} rkv_counter_replies;

/* Returns as rkv_counter_get; *out as rkv_get_all's (caller frees with
 * rkv_counter_replies_free). */
int rkv_counter_get_all(rkv_client *c, const void *key, size_t klen,
			const rkv_call_opts *opts, rkv_counter_replies **out);
void rkv_counter_replies_free(rkv_counter_replies *r);

/* The value of key's counter at the node at addr (NULL: the seed
 * connection), without coordination: a diagnostic read. */
int rkv_counter_get_local(rkv_client *c, const char *addr, const void *key,
			  size_t klen, int64_t *value);

/* Deletes the counter (it starts again from zero).  Adds that begin after
 * a delete acknowledged at RKV_ALL are all kept; adds concurrent with it
 * may be dropped (the delete wins). */
int rkv_counter_delete(rkv_client *c, const void *key, size_t klen);
int rkv_counter_delete_ex(rkv_client *c, const void *key, size_t klen,
			  const rkv_call_opts *opts);

/* --- one node's figures --- */
typedef struct rkv_node_stats {
	uint64_t node_id;
	uint64_t keys;          /* live values */
	uint64_t tombstones;
	uint64_t bytes;         /* memory of records */
	uint64_t log_bytes;     /* op-log on disk */
	uint64_t hints_pending; /* writes it keeps for other nodes */
	uint64_t uptime_ms;
	char ring_status[32];   /* normal, joining, leaving, ... */
} rkv_node_stats;

/* Asks the node at addr (NULL: the seed connection) for its figures.
 * Returns RKV_OK with *out filled, or an error. */
int rkv_node_stats_get(rkv_client *c, const char *addr, rkv_node_stats *out);

/* --- ring changes ---
 * Both answer only once the data has moved, which may take minutes:
 * timeout_ms bounds the wait (<= 0: RKV_ADMIN_TIMEOUT_MS).  Neither is
 * ever retried; a timeout means the operation may still complete. */
#define RKV_ADMIN_TIMEOUT_MS (6 * 3600 * 1000)

/* Asks the node at addr (NULL: the seed connection) to stream its ranges
 * to their new owners and leave the cluster.  RKV_OK once it has. */
int rkv_decommission(rkv_client *c, const char *addr, int timeout_ms);

/* Asks the cluster (through the seed connection) to take the dead node
 * node_id off the ring, copying its ranges again from the surviving
 * replicas.  RKV_OK once that is done. */
int rkv_remove_node(rkv_client *c, uint64_t node_id, int timeout_ms);

/* The cluster as the node of the seed connection sees it. */
typedef struct rkv_node {
	uint64_t node_id;
	char *client_address;
	char *peer_address;
	char *state;          /* alive, suspect, dead, left */
	uint64_t incarnation; /* gossip incarnation */
	uint32_t weight;
	uint32_t n_tokens;    /* 0: not on the ring yet */
} rkv_node;

typedef struct rkv_cluster_info {
	char *cluster_name;
	char *version;
	uint64_t self_id;
	rkv_node *nodes;
	size_t n_nodes;
} rkv_cluster_info;

int rkv_cluster_info_get(rkv_client *c, rkv_cluster_info **out);
void rkv_cluster_info_free(rkv_cluster_info *ci);

/* The ring as the node of the seed connection sees it (a smart client
 * fetches the same itself): with it a client can compute a
 * key's replicas itself (key token = XXH3-64, seed 0, of the key bytes). */
typedef struct rkv_ring_member {
	uint64_t node_id;
	uint32_t weight;
	uint64_t *tokens;   /* ascending */
	size_t n_tokens;
	char *client_address;
	char *state;
} rkv_ring_member;

typedef struct rkv_ring_info {
	uint64_t epoch;
	uint64_t checksum;
	uint32_t replication_factor;
	rkv_ring_member *members;
	size_t n_members;
} rkv_ring_info;

int rkv_ring_info_get(rkv_client *c, rkv_ring_info **out);
void rkv_ring_info_free(rkv_ring_info *ri);

/* --- pipelining ---
 * A batch queues many requests and sends them without waiting for
 * answers; rkv_batch_exec returns when every request is answered.  Each
 * request has its own status.  A smart client splits a batch by the node
 * each key goes to and pipelines to all of them at once; results stay in
 * the order the requests were added. */
typedef struct rkv_batch rkv_batch;

rkv_batch *rkv_batch_new(void);
void rkv_batch_free(rkv_batch *b);
/* Forgets all requests and results; keeps memory. */
void rkv_batch_reset(rkv_batch *b);

/* Each returns the request's index in the batch, or RKV_ERR_NOMEM. */
int rkv_batch_get(rkv_batch *b, const void *key, size_t klen);
int rkv_batch_put(rkv_batch *b, const void *key, size_t klen,
		  const void *val, size_t vlen);
int rkv_batch_delete(rkv_batch *b, const void *key, size_t klen);
int rkv_batch_exists(rkv_batch *b, const void *key, size_t klen);
/* Consistency for every request of the batch (default: the client's). */
void rkv_batch_set_consistency(rkv_batch *b, rkv_consistency cl);

size_t rkv_batch_count(const rkv_batch *b);

/* Sends every request and collects every answer.  Returns RKV_OK when all
 * were answered (look at each status), or the connection error that cut
 * the batch short (unanswered requests then have that status; with smart
 * routing the retry rules above apply to each request first). */
int rkv_batch_exec(rkv_client *c, rkv_batch *b);

/* Status of request i after exec: RKV_OK, RKV_ERR_NOT_FOUND, ... */
int rkv_batch_status(const rkv_batch *b, size_t i);
/* Value of a get (NULL unless status is RKV_OK); borrowed from b. */
const rkv_value *rkv_batch_value(const rkv_batch *b, size_t i);
/* exists result (0 or 1) of an exists request. */
int rkv_batch_exists_result(const rkv_batch *b, size_t i);
/* Version of a put or delete, or of the value read. */
rkv_timestamp rkv_batch_timestamp(const rkv_batch *b, size_t i);

#ifdef __cplusplus
}
#endif

#endif
