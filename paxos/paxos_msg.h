/* paxos_msg.h: the messages of single-decree Paxos for compare-and-set, and
 * the durable acceptor state, as plain C structs.
 *
 * paxos/ never calls protobuf (STYLE rule 1).  The module builds and reads
 * these structs; the owner turns them into bytes with the codec in
 * proto/paxos_wire.h (PaxosMessage and AcceptorState of proto/paxos.proto)
 * and carries the bytes inside its peer protocol and its storage.
 *
 * Ownership: every pointer in a message or state is borrowed.  A message
 * the module hands to the runtime's send() lives for the duration of that
 * call; a decoded message borrows from the codec's owner object until its
 * release.  paxos_recv() copies what it keeps.
 */
#ifndef RK_PAXOS_MSG_H
#define RK_PAXOS_MSG_H

#include <stddef.h>
#include <stdint.h>

#include "hlc.h"

/* Wire format version; a message or state with another one is refused. */
#define PAXOS_WIRE_VERSION 1u
/* Hard limits the codec enforces whatever the node is configured to: a key
 * is at most what a stored record can hold (16-bit length, as
 * RK_KEY_HARD_MAX), a value at most the largest frame. */
#define PAXOS_KEY_MAX 65535u
#define PAXOS_VALUE_MAX (16u << 20)
/* The most replicas one key may have (the proposer keeps a bit each). */
#define PAXOS_MAX_REPLICAS 16u

/* A register value: a byte string, or absent (never written, or deleted:
 * a tombstone in the store).  An empty string is present, not absent. */
struct paxos_value {
	int present;	     /* 0: absent (data NULL, len 0) */
	const uint8_t *data; /* present: len bytes (NULL when len == 0) */
	size_t len;	     /* present: <= PAXOS_VALUE_MAX */
};

/* 1 when a and b are the same value (both absent, or equal bytes). */
int paxos_value_eq(const struct paxos_value *a, const struct paxos_value *b);

/* A proposal, as accepted by an acceptor and as committed.
 *
 * origin is the ballot at which this value was first proposed.  A proposer
 * that finishes somebody's in-progress proposal re-proposes it under its
 * own ballot but keeps origin, so every acceptance of one decision carries
 * one origin, and the commit stores the value with timestamp origin: the
 * record's timestamp identifies the decision (see paxos.c).
 *
 * base is the commit this proposal's instance follows: the newest commit
 * timestamp the proposer saw when it first made the proposal.  The
 * protocol only carries it; it names the instance for logs and for the
 * simulator's "one value per instance" check. */
struct paxos_proposal {
	rk_ts ballot; /* the ballot it is proposed/accepted at */
	rk_ts origin; /* first ballot of this value; the commit ts */
	rk_ts base;   /* the commit it follows; < origin <= ballot */
	struct paxos_value value; /* what is proposed; absent = delete */
};

/* What an acceptor keeps per key, durable before it answers anything that
 * depends on it.  Zero ballots mean "none".  An all-zero state is the same
 * as no state (the owner may delete the key's record). */
struct paxos_acceptor_state {
	rk_ts promised; /* highest ballot promised or accepted */
	struct paxos_proposal accepted; /* last accepted; ballot 0: none */
	rk_ts committed;		/* highest ballot committed here */
};

/* Message kinds.  Values are the wire enum's; 0 is invalid. */
enum paxos_msg_type {
	PAXOS_MSG_PREPARE = 1,	 /* proposer -> acceptor: promise me ballot */
	PAXOS_MSG_PROMISE = 2,	 /* acceptor -> proposer: ok, or rejected */
	PAXOS_MSG_PROPOSE = 3,	 /* proposer -> acceptor: accept proposal */
	PAXOS_MSG_ACCEPTED = 4,	 /* acceptor -> proposer: ok, or rejected */
	PAXOS_MSG_COMMIT = 5,	 /* proposer -> acceptor: apply the decision */
	PAXOS_MSG_COMMITTED = 6, /* acceptor -> proposer: applied */
};
#define PAXOS_MSG_TYPE_MAX 6

/* Upper-case name ("PREPARE"); "?" when out of range. */
const char *paxos_msg_type_name(int type);

/* One message.  Which fields mean something depends on type:
 *
 *   PREPARE    key, req, ballot
 *   PROMISE    key, req, ballot (echoed), ok;
 *              ok:  accepted (ballot 0: nothing in progress), committed,
 *                   current + current_ts (the key's record in the store);
 *              !ok: promised (what beat the ballot)
 *   PROPOSE    key, req, proposal (ballot = proposal.ballot)
 *   ACCEPTED   key, req, ballot (echoed), ok; !ok: promised
 *   COMMIT     key, req, proposal (ballot = proposal.ballot)
 *   COMMITTED  key, req, ballot (echoed)
 *
 * Unused fields are zero.  The codec refuses a message whose used fields
 * break the rules above or whose unused fields are set. */
struct paxos_msg {
	enum paxos_msg_type type;
	const uint8_t *key; /* 1..PAXOS_KEY_MAX bytes */
	size_t klen;
	uint64_t req;	/* proposer's request id, echoed in the reply */
	rk_ts ballot;	/* never zero */
	int ok;		/* PROMISE, ACCEPTED: 1 granted, 0 rejected */
	rk_ts promised; /* rejections: the acceptor's promise/floor */
	struct paxos_proposal accepted; /* PROMISE ok: in-progress proposal */
	rk_ts committed;		/* PROMISE ok: newest commit known */
	struct paxos_value current;	/* PROMISE ok: the stored value */
	rk_ts current_ts; /* PROMISE ok: its timestamp (0: none) */
	struct paxos_proposal proposal; /* PROPOSE, COMMIT */
};

/* Checks what a message must satisfy (the table above): the codec runs it
 * on both encode and decode, paxos_recv() on what it is given.  Returns 1
 * when valid. */
int paxos_msg_valid(const struct paxos_msg *m);

/* Checks a proposal: ballot and origin non-zero, base < origin <= ballot,
 * a well-formed value.  Returns 1 when valid. */
int paxos_proposal_valid(const struct paxos_proposal *p);

/* Checks a state: an accepted proposal (if any) is valid, and promised is
 * at least the accepted ballot.  Returns 1 when valid. */
int paxos_state_valid(const struct paxos_acceptor_state *s);

/* 1 when s holds nothing (all zero). */
int paxos_state_empty(const struct paxos_acceptor_state *s);

#endif
