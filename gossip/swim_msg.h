/* swim_msg.h: the messages of the SWIM membership protocol as plain C
 * structs, the codec interface that turns them into bytes, and a pure upper
 * bound on their encoded size.
 *
 * gossip/ never calls protobuf (STYLE rule 1): the protocol builds and reads
 * these structs, and the owner hands it a codec (proto/gossip_wire.h is the
 * real one) through its runtime.  The size bound lets the protocol pack
 * piggy-backed updates into a datagram without encoding twice; the codec's
 * tests check that every encoded message is within it.
 *
 * Ownership: every pointer in a message is borrowed.  A message the protocol
 * builds borrows from the protocol's member table for the duration of one
 * encode call; a decoded message borrows from the codec's owner object and
 * lives until the codec's release() is called on that object.
 */
#ifndef RK_SWIM_MSG_H
#define RK_SWIM_MSG_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/* Wire format version; a packet with another version is dropped. */
#define SWIM_WIRE_VERSION 1u
/* Longest "host:port" string: a 253-byte DNS name, brackets, ':', 5 digits. */
#define SWIM_ADDR_MAX 261u
/* Longest cluster name; names are [A-Za-z0-9._-]. */
#define SWIM_CLUSTER_MAX 64u
/* Largest opaque member metadata blob that gossip carries verbatim. */
#define SWIM_META_MAX 512u
/* Most suspecters one suspect record names. */
#define SWIM_SUSPECTERS_MAX 32u

/* A member's state.  Values are the wire enum's. */
enum swim_state {
	SWIM_ALIVE = 0,	  /* answering probes */
	SWIM_SUSPECT = 1, /* missed a probe; may still refute */
	SWIM_DEAD = 2,	  /* suspicion expired unrefuted; a tombstone */
	SWIM_LEFT = 3,	  /* left gracefully; a tombstone, never "dead" */
};
#define SWIM_STATE_COUNT 4

/* Lower-case name ("alive"...); "?" when out of range. */
const char *swim_state_name(int state);

/* Message kinds.  Values are the wire enum's; 0 is invalid. */
enum swim_msg_type {
	SWIM_MSG_PING = 1,	 /* direct probe; answered with ACK */
	SWIM_MSG_ACK = 2,	 /* answer to PING, or forwarded by a helper */
	SWIM_MSG_PING_REQ = 3,	 /* "probe target for me" (indirect probe) */
	SWIM_MSG_NACK = 4,	 /* helper: "target did not answer me" */
	SWIM_MSG_SYNC = 5,	 /* push-pull request over TCP: full state */
	SWIM_MSG_SYNC_REPLY = 6, /* push-pull reply over TCP: full state */
	SWIM_MSG_GOSSIP = 7,	 /* updates only, no reply */
};
#define SWIM_MSG_TYPE_MAX 7

/* Lower-case name ("ping"...); "?" when out of range. */
const char *swim_msg_type_name(int type);

/* One member's record as gossip carries it.  Alive records and every record
 * of a push-pull carry the addresses, weight and metadata; suspect, dead and
 * left records piggy-backed on datagrams carry only id, incarnation, state
 * and (suspect) the suspecters, to save room. */
struct swim_update {
	uint64_t id;		    /* node id; never 0 */
	uint64_t incarnation;	    /* raised only by the node itself */
	enum swim_state state;	    /* what the record says */
	const uint64_t *suspecters; /* SUSPECT: who suspects, first suspecter
				       first; else NULL */
	size_t n_suspecters;	 /* SUSPECT: 1..SWIM_SUSPECTERS_MAX; else 0 */
	const char *gossip_addr; /* "host:port" of its gossip (UDP) socket, or
				    "" when the record carries no addresses */
	const char *peer_addr;	 /* "host:port" for peer TCP, or "" */
	const char *client_addr; /* "host:port" for clients, or "" */
	uint32_t weight;	 /* ring weight (number of tokens) */
	const uint8_t *meta;	 /* opaque metadata; NULL when meta_len == 0 */
	size_t meta_len;	 /* <= SWIM_META_MAX */
};

/* One message.  Which fields mean something depends on type. */
struct swim_msg {
	enum swim_msg_type type; /* what this is */
	const char *cluster;	 /* sender's cluster name; checked by swim */
	uint64_t from_id;	 /* sender's node id; never 0 */
	const char *from_addr;	 /* sender's gossip address: replies go here */
	uint64_t seq;		 /* PING/ACK/PING_REQ/NACK: probe sequence */
	uint64_t target_id;	 /* PING: whom the sender means to probe (0 =
				    anyone); PING_REQ: whom to probe */
	const char
	    *target_addr; /* PING_REQ: target's gossip address; else "" */
	int join;	  /* SYNC: the sender is joining */
	struct swim_update *updates; /* piggy-backed updates, or full state */
	size_t n_updates;	     /* entries in updates */
};

/* What a decoder accepts.  Anything beyond is rejected before it is used. */
struct swim_decode_limits {
	size_t max_bytes;   /* longest accepted input */
	size_t max_updates; /* most updates in one message */
};

/* The codec the protocol uses through its runtime (proto/gossip_wire.h
 * provides gossip_wire_codec).  All three functions must be safe on any
 * input. */
struct swim_codec {
	/* Appends the encoding of m to out.  Returns 0, RK_EINVALID when m
	 * breaks a limit the decoder would reject, or RK_ENOMEM. */
	int (*encode)(const struct swim_msg *m, struct rk_buf *out);
	/* Decodes and validates bytes[0, len): every length, count, enum and
	 * address string is checked before anything reads it.  On success
	 * fills *m (borrowing from *owner) and returns 0; the caller passes
	 * *owner to release() when done with m.  Returns RK_EPROTOCOL for
	 * malformed or invalid input (*owner NULL), RK_ENOMEM. */
	int (*decode)(const uint8_t *bytes, size_t len,
		      const struct swim_decode_limits *lim, struct swim_msg *m,
		      void **owner);
	/* Frees what decode() allocated; NULL is a no-op. */
	void (*release)(void *owner);
};

/* Upper bound on the bytes one update adds to an encoded message (the
 * repeated-field tag and length included).  Pure; exact when every field is
 * non-default, larger otherwise. */
size_t swim_update_size_bound(const struct swim_update *u);

/* Upper bound on the encoded size of m without its updates. */
size_t swim_msg_header_size_bound(const struct swim_msg *m);

/* Upper bound on the encoded size of m with all its updates. */
size_t swim_msg_size_bound(const struct swim_msg *m);

/* True when s is a valid cluster name (1..SWIM_CLUSTER_MAX bytes of
 * [A-Za-z0-9._-]). */
int swim_cluster_name_valid(const char *s);

/* True when s is a valid "host:port" (<= SWIM_ADDR_MAX bytes, printable
 * ASCII, port 1..65535). */
int swim_addr_valid(const char *s);

#endif
