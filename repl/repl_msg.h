/* repl_msg.h: the messages replication exchanges between nodes, as plain
 * structs (pure).  proto/peer_wire.c turns them into PeerEnvelope bytes and
 * back, validating every field; the simulator does the same, so the
 * decoder is exercised wherever the protocol runs.
 *
 * All messages are one-way: a reply is a message back to the sender that
 * echoes the request's rid.  Losing any message is allowed; the sender's
 * timers decide what a missing reply means.
 */
#ifndef RK_REPL_MSG_H
#define RK_REPL_MSG_H

#include <stddef.h>
#include <stdint.h>

#include "crdt.h"
#include "hlc.h"

/* Record types: a value or a tombstone (the same numbers as node/record.h),
 * or a counter, whose bytes are a crdt state or delta (repl/counter.h) and
 * which is merged, never compared by timestamp. */
#define REPL_REC_VALUE 1
#define REPL_REC_TOMBSTONE 2
#define REPL_REC_COUNTER 3

/* One versioned record.  Pointers are borrowed from whoever built the
 * message, for the duration of the call that hands it over. */
struct repl_record {
	uint8_t type;	     /* REPL_REC_VALUE, _TOMBSTONE or _COUNTER */
	rk_ts ts;            /* its version */
	const uint8_t *key;  /* 1..64 KiB */
	size_t klen;
	const uint8_t *val; /* VALUE and COUNTER; NULL in digest-only
			       batches (counters keep theirs) */
	size_t vlen;
};

/* A token range (start, end], wrapping through 0 when start >= end. */
struct repl_range {
	uint64_t start;
	uint64_t end;
};

enum repl_msg_type {
	REPL_WRITE = 1,	   /* apply rec (LWW); reply WRITE_ACK */
	REPL_WRITE_ACK,	   /* status */
	REPL_READ,	   /* rec.key; reply READ_REPLY */
	REPL_READ_REPLY,   /* found, rec */
	REPL_LOG_READ,	   /* records of your op-log from from_lsn whose
			      keys fall in ranges */
	REPL_LOG_BATCH,	   /* recs, next_lsn, end_lsn, truncated */
	REPL_STREAM_READ,  /* every record you hold in ranges, from cursor */
	REPL_STREAM_BATCH, /* recs, cursor, done, end_lsn */
	REPL_COUNTER_ADD,  /* coordinator to the op id's owner: rec.key,
			      delta, op, cl; reply COUNTER_ADD_REPLY */
	REPL_COUNTER_ADD_REPLY, /* status, detail, maybe_applied, value,
				   duplicate */
};

/* WRITE flags: why the write is sent (for counters and logs only; every
 * write is applied the same way, last writer wins). */
#define REPL_F_HINT 1u   /* a hinted write being handed off */
#define REPL_F_REPAIR 2u /* read repair or anti-entropy */
/* LOG_READ flag: send keys and versions only, no values. */
#define REPL_F_DIGEST 4u
/* A counter delta shipped by its owner: already decided, so replicas do
 * not check the key's type against it. */
#define REPL_F_OWNED 8u

/* Bounds every decoder enforces (and every sender respects). */
#define REPL_MAX_RANGES 65536
#define REPL_MAX_BATCH_RECORDS 65536

struct repl_msg {
	enum repl_msg_type type;
	uint64_t rid;          /* request id, echoed by the reply */
	uint32_t flags;        /* REPL_F_* */
	int status;            /* WRITE_ACK, READ_REPLY, batches: 0 or RK_E* */
	int found;             /* READ_REPLY: rec holds a record */
	struct repl_record rec; /* WRITE, READ (key only), READ_REPLY */
	uint64_t from_lsn;     /* LOG_READ */
	uint32_t max_bytes;    /* LOG_READ, STREAM_READ: batch size wanted */
	const struct repl_range *ranges; /* LOG_READ, STREAM_READ */
	size_t n_ranges;
	const struct repl_record *recs;  /* LOG_BATCH, STREAM_BATCH */
	size_t n_recs;
	uint64_t next_lsn;     /* LOG_BATCH: continue from here */
	uint64_t end_lsn;      /* LOG_BATCH, STREAM_BATCH: sender's log end
				  when the batch was read */
	int truncated;         /* LOG_BATCH: from_lsn is before the oldest
				  record the sender still has */
	uint64_t cursor;       /* STREAM_READ, STREAM_BATCH: resume point */
	int done;              /* STREAM_BATCH: nothing after this batch */
	/* COUNTER_ADD */
	int64_t delta;
	struct crdt_opid op;
	uint32_t cl; /* enum repl_cl */
	/* COUNTER_ADD_REPLY */
	const char *detail; /* failure detail, may be NULL */
	int maybe_applied;
	int duplicate; /* the op id had been applied before */
	int64_t value; /* the owner's value after the add */
};

const char *repl_msg_name(enum repl_msg_type t);

/* True when token falls in one of ranges[0, n) (sorted or not). */
int repl_ranges_contain(const struct repl_range *r, size_t n, uint64_t token);

#endif
