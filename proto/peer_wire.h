/* peer_wire.h: the peer protocol's decoder and encoder (peer.proto).
 *
 * Like wire.h for clients: the only code that reads protobuf-c structs of
 * the peer protocol; it validates every field before anything trusts it
 * and hands out plain C structs.  Ownership as in wire.h: a decoded message
 * borrows from its peer_wire_msg, freed by the function that decoded it.
 */
#ifndef RK_PEER_WIRE_H
#define RK_PEER_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "repl_msg.h"
#include "wire.h"

enum peer_op {
	PEER_OP_NONE = 0,
	PEER_OP_ERROR,             /* a failed request's reply */
	PEER_OP_GOSSIP_SYNC,       /* SWIM push-pull request */
	PEER_OP_GOSSIP_SYNC_REPLY, /* SWIM push-pull reply */
	PEER_OP_TOKENS_GET,        /* a member's ring tokens */
	PEER_OP_TOKENS,            /* the reply */
	PEER_OP_REPL,              /* a replication message (one-way) */
	PEER_OP_REMOVED_GET,       /* the removed set, please */
	PEER_OP_REMOVED,           /* the reply: ids */
	PEER_OP_TAKE_OVER,         /* pull what node_id owned */
	PEER_OP_ACK,               /* a request done */
	PEER_OP_PAXOS,             /* a Paxos message (one-way; payload) */
	PEER_OP_CAS,               /* a CAS forwarded to the primary (cas) */
	PEER_OP_CAS_REPLY,         /* its answer (status, error, cas) */
};

/* What a forwarded CAS asks (PEER_OP_CAS.cas.op). */
enum peer_cas_op {
	PEER_CAS_CAS = 1,   /* compare-and-set */
	PEER_CAS_READ = 2,  /* SERIAL read */
	PEER_CAS_WRITE = 3, /* unconditional write through Paxos */
};

/* A forwarded compare-and-set and its answer.  Byte strings borrow from
 * the message. */
struct peer_cas {
	/* PEER_OP_CAS */
	enum peer_cas_op op;
	struct rk_bytes key;
	int expect_absent;        /* CAS: the key must have no value ... */
	struct rk_bytes expected; /* ... else this one */
	int del;                  /* CAS, WRITE: delete ... */
	struct rk_bytes value;    /* ... else write this */
	uint32_t timeout_ms;      /* left of the client's deadline */
	/* PEER_OP_CAS_REPLY (status and error in peer_msg) */
	int applied;
	int exists;               /* value is the key's value */
	rk_ts ts;                 /* its version; zero: never written */
};

/* Most ids a REMOVED message may carry. */
#define PEER_IDS_MAX 65536

/* Most tokens a TOKENS message may carry (ring/ring.h RING_TOKENS_MAX). */
#define PEER_TOKENS_MAX 65536

struct peer_msg {
	uint64_t id;
	enum peer_op op;
	int status;              /* ERROR, CAS_REPLY: 0 or an RK_E* code */
	const char *error;       /* ERROR, CAS_REPLY: detail, may be NULL */
	struct rk_bytes payload; /* GOSSIP_SYNC(_REPLY): the SWIM packet;
				    PAXOS: the PaxosMessage bytes */
	uint64_t node_id;        /* TOKENS_GET, TOKENS */
	uint32_t weight;         /* TOKENS */
	const uint64_t *tokens;  /* TOKENS: ascending */
	size_t n_tokens;
	uint32_t ring_status;    /* TOKENS: the answerer's view of the
				    member's status (enum cluster_status) */
	struct repl_msg repl;    /* REPL */
	const uint64_t *ids;     /* REMOVED */
	size_t n_ids;
	int from_leaving;        /* TAKE_OVER (node_id: the leaving node) */
	struct peer_cas cas;     /* CAS, CAS_REPLY */
};

struct peer_wire_msg;
void peer_wire_msg_free(struct peer_wire_msg *m);

/* Appends one frame carrying m to out.  Returns 0, RK_EINVALID, RK_ENOMEM. */
int peer_wire_encode(struct rk_buf *out, const struct peer_msg *m);

/* Limits the decoder enforces on replication and CAS messages. */
struct peer_wire_limits {
	size_t max_payload;  /* gossip and Paxos packet bytes */
	uint32_t max_key;    /* key bytes (hard cap 64 KiB) */
	uint32_t max_value;  /* value bytes */
};

/* Decodes one frame body.  Returns 0 with *m and *owner filled (*owner
 * NULL when nothing needed allocating; m may borrow from body as well as
 * from *owner, so keep both until m is handled), or RK_EBAD_REQUEST /
 * RK_EUNKNOWN_COMMAND / RK_ENOMEM with a reason in err and m->id set when
 * the envelope itself was readable. */
int peer_wire_decode(const uint8_t *body, size_t len,
		     const struct peer_wire_limits *lim, struct peer_msg *m,
		     struct peer_wire_msg **owner, char *err, size_t errlen);

const char *peer_op_name(enum peer_op op);

#endif
