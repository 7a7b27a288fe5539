/* ringkv.h: libringkv, the C client of ringkv.
 *
 * A client holds one TCP connection to one node of the cluster, chosen
 * from a list of seed addresses, and reconnects (trying the other seeds)
 * after a failure.  Calls block until the node answers or the request
 * timeout passes.  A client is not thread-safe: use one per thread.
 *
 * Errors: every call returns RKV_OK (0) or a negative RKV_ERR_* code;
 * rkv_strerror() names a code and rkv_last_error() gives the detail of the
 * client's last failure.  A write that fails with RKV_ERR_TIMEOUT or
 * RKV_ERR_CLOSED may or may not have been applied.
 *
 * Ownership: values returned through rkv_value ** are the caller's; free
 * them with rkv_value_free.  Values inside a batch belong to the batch.
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
};

/* How many replicas must answer.  DEFAULT lets the node decide (QUORUM).
 * SERIAL reads go through Paxos (a later release). */
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

/* Closes the connection and frees the client. */
void rkv_close(rkv_client *c);

/* The name of an error code ("not found", ...); never NULL. */
const char *rkv_strerror(int code);

/* Detail of the client's last failure ("" after a success). */
const char *rkv_last_error(const rkv_client *c);

/* The address ("host:port") of the node currently connected, or NULL. */
const char *rkv_connected_address(const rkv_client *c);

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

/* Round trip to the node; node_id (may be NULL) gets its id. */
int rkv_ping(rkv_client *c, uint64_t *node_id);

void rkv_value_free(rkv_value *v);

/* The cluster as the connected node sees it. */
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

/* The ring as the connected node sees it: with it a client can compute a
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
 * request has its own status. */
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
 * the batch short (unanswered requests then have that status). */
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
