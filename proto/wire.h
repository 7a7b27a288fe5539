/* wire.h: the client protocol's decoder and encoder.
 *
 * The only code that reads protobuf-c structs of the client protocol.  The
 * decoder validates every field a handler will read (body type, key and
 * value lengths, enum values) before anyone trusts it, and hands out plain C
 * structs; the encoder turns plain structs back into frames.  Both the node
 * and libringkv use it, so the two sides cannot drift.
 *
 * Ownership: a decoded request or response borrows from an rk_wire_msg,
 * which owns the unpacked protobuf and is freed with rk_wire_msg_free by the
 * function that decoded it.  Handlers copy what they keep.
 */
#ifndef RK_WIRE_H
#define RK_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "hlc.h"

/* Operations.  Values are internal (not wire numbers). */
enum rk_op {
	RK_OP_NONE = 0,
	RK_OP_PING,
	RK_OP_GET,
	RK_OP_PUT,
	RK_OP_DELETE,
	RK_OP_EXISTS,
	RK_OP_CLUSTER_INFO,
	RK_OP_RING_INFO,
	RK_OP_HELLO,
	RK_OP_NODE_STATS,
	RK_OP_DECOMMISSION,
	RK_OP_REMOVE_NODE,
	RK_OP_COUNTER_ADD,
	RK_OP_COUNTER_GET,
	RK_OP_COUNTER_DELETE,
	RK_OP_CAS,
};

/* Compare-and-set kinds; values equal the wire enum (Cas.Kind). */
enum rk_cas_kind {
	RK_CAS = 0,
	RK_CAS_PUT_IF_ABSENT = 1,
	RK_CAS_DELETE_IF = 2,
};

/* Hello roles; values equal the wire enum. */
enum rk_role {
	RK_ROLE_CLIENT = 0,
	RK_ROLE_PEER = 1,
};

/* The peer protocol version this build speaks. */
#define RK_PROTOCOL_VERSION 1

/* Consistency levels; values equal the wire enum. */
enum rk_consistency {
	RK_CL_DEFAULT = 0,
	RK_CL_ONE = 1,
	RK_CL_QUORUM = 2,
	RK_CL_ALL = 3,
	RK_CL_SERIAL = 4,
};

/* A borrowed byte string. */
struct rk_bytes {
	const uint8_t *p;
	size_t n;
};

/* Limits the decoder enforces (node configuration). */
struct rk_wire_limits {
	uint32_t max_key;   /* bytes; keys are 1..max_key */
	uint32_t max_value; /* bytes */
	uint32_t max_ping;  /* bytes of ping payload */
};

/* Bytes of a counter add's op id (common/crdt.h). */
#define RK_OPID_LEN 16

/* A decoded client request; fields borrow from the rk_wire_msg. */
struct rk_request {
	uint64_t id;
	enum rk_op op;
	struct rk_bytes key;   /* GET, PUT, DELETE, EXISTS, CAS, COUNTER_* */
	struct rk_bytes value; /* PUT; PING payload; CAS: the new value */
	enum rk_consistency consistency;
	int all_replies;       /* GET, COUNTER_GET */
	int local;	       /* GET, COUNTER_GET: this node's copy only */
	int64_t delta;	       /* COUNTER_ADD */
	struct rk_bytes op_id; /* COUNTER_ADD: RK_OPID_LEN bytes, or empty */
	/* CAS, as decoded: the condition is "the value equals expected", or
	 * "there is none" when expect_absent; the write is value, or a
	 * delete when cas_delete.  PUT_IF_ABSENT decodes with expect_absent
	 * set, DELETE_IF with cas_delete set. */
	enum rk_cas_kind cas_kind;
	struct rk_bytes expected;
	int expect_absent;
	int cas_delete;
	/* HELLO; REMOVE_NODE uses node_id */
	enum rk_role role;
	const char *cluster_name; /* borrowed; NUL-terminated */
	uint64_t node_id;
	uint32_t protocol_version;
};

/* One node, as ClusterInfo lists it. */
struct rk_node_info {
	uint64_t node_id;
	const char *client_addr;
	const char *peer_addr;
	const char *state;
	uint64_t incarnation;
	uint32_t weight;
	uint32_t n_tokens;
};

/* One member of the ring, as RingInfo lists it. */
struct rk_ring_member {
	uint64_t node_id;
	uint32_t weight;
	const uint64_t *tokens;
	size_t n_tokens;
	const char *client_addr;
	const char *state;
};

/* One replica's answer in an all-replies read. */
struct rk_replica_reply {
	uint64_t node_id;
	int status;          /* 0 or RK_E* */
	struct rk_bytes value;
	rk_ts ts;
	int has_ts;
	int tombstone;
	int64_t counter; /* COUNTER_GET: the replica's value */
};

/* Per-node figures (NODE_STATS). */
struct rk_node_stats {
	uint64_t node_id, keys, tombstones, bytes, log_bytes, hints_pending,
		uptime_ms;
	const char *ring_status;
};

/* A response.  For encoding the caller owns every pointer; for decoding
 * they borrow from the rk_wire_msg. */
struct rk_response {
	uint64_t id;
	int status;         /* 0 or an RK_E* code */
	const char *error;  /* detail when status != 0; may be NULL */
	enum rk_op op;      /* which result is present; NONE for bare status */
	struct rk_bytes value; /* GET value, PING payload, CAS value */
	rk_ts ts;              /* GET, PUT, DELETE, EXISTS, CAS */
	int has_ts;
	int exists;            /* EXISTS; CAS: the key holds value */
	int applied;           /* CAS: the condition held, the write made */
	uint64_t node_id;      /* PING, CLUSTER_INFO self, HELLO */
	const char *cluster_name; /* CLUSTER_INFO, HELLO */
	uint32_t protocol_version; /* HELLO */
	const char *version;      /* CLUSTER_INFO */
	const struct rk_node_info *nodes; /* CLUSTER_INFO */
	size_t n_nodes;
	uint64_t ring_epoch;              /* RING_INFO */
	uint64_t ring_checksum;
	uint32_t rf;
	const struct rk_ring_member *ring; /* RING_INFO members */
	size_t n_ring;
	const struct rk_replica_reply *replies; /* GET, COUNTER_GET
						   all_replies */
	size_t n_replies;
	struct rk_node_stats stats;       /* NODE_STATS */
	int64_t counter;		  /* COUNTER_*: the value */
	int duplicate;			  /* COUNTER_ADD */
	uint64_t owner;			  /* COUNTER_ADD */
};

/* Owns one unpacked envelope (opaque). */
struct rk_wire_msg;
void rk_wire_msg_free(struct rk_wire_msg *m);

/* Decodes one request frame body.  On success returns 0, fills *req and
 * sets *owner (free it with rk_wire_msg_free after handling; NULL when
 * nothing needed allocating).  req may borrow from body as well as from
 * *owner: keep both until it is handled.  On failure
 * returns RK_EBAD_REQUEST, RK_EUNKNOWN_COMMAND, RK_EEMPTY_KEY,
 * RK_EKEY_TOO_LARGE, RK_EVALUE_TOO_LARGE or RK_ENOMEM, sets req->id when the
 * envelope itself was readable (else 0), writes a reason into err, and
 * leaves *owner NULL. */
int rk_wire_decode_request(const uint8_t *body, size_t len,
			   const struct rk_wire_limits *lim,
			   struct rk_request *req, struct rk_wire_msg **owner,
			   char *err, size_t errlen);

/* Appends one frame carrying resp to out.  Returns 0 or RK_ENOMEM. */
int rk_wire_encode_response(struct rk_buf *out, const struct rk_response *resp);

/* Appends one frame carrying req to out.  Returns 0 or RK_ENOMEM. */
int rk_wire_encode_request(struct rk_buf *out, const struct rk_request *req);

/* Decodes one response frame body (client side).  Returns 0 with *resp and
 * *owner filled, or RK_EPROTOCOL when the bytes are not a valid response
 * (reason in err). */
int rk_wire_decode_response(const uint8_t *body, size_t len,
			    struct rk_response *resp,
			    struct rk_wire_msg **owner, char *err,
			    size_t errlen);

const char *rk_op_name(enum rk_op op);
const char *rk_consistency_name(enum rk_consistency cl);
/* "one", "quorum", "all", "serial" (any case) -> level; -1 when unknown. */
int rk_consistency_parse(const char *s);

#endif
