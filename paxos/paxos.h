/* paxos.h: compare-and-set by single-decree Paxos among a key's replicas,
 * as a pure state machine.
 *
 * Lamport, "Paxos Made Simple" (2001), one decree per compare-and-set, the
 * decrees of a key chained the way Cassandra's lightweight transactions
 * chain them, with the read folded into the prepare round as in Cassandra's
 * Paxos v2 (CEP-14) and ScyllaDB's LWT.  paxos.c opens with the essay: the
 * algorithm, why it is linearizable, where we differ and why.
 *
 * One struct paxos per node holds both roles: the ACCEPTOR for every key
 * this node replicates, and the PROPOSER for the operations the node is
 * asked to run (the node routes a key's CAS to the key's primary replica;
 * the module runs one operation per key at a time and queues the rest).
 *
 * The module touches no socket, clock, file or global PRNG (DESIGN.md).
 * Its owner (node/ in the daemon, tests/sim in the simulator) supplies a
 * runtime vtable and feeds it inputs:
 *
 *   a client asks for CAS etc.   -> paxos_cas(), paxos_serial_read() ...;
 *                                   the answer comes once through
 *                                   rt.reply() with the same token
 *   a peer's Paxos message       -> decode it (proto/paxos_wire.h), then
 *                                   paxos_recv(), then release it
 *   the timer fires              -> paxos_tick(), then re-arm ONE timer at
 *                                   paxos_next_deadline()
 *   persist() writes are durable -> paxos_persisted(token): releases the
 *                                   replies that waited for them
 *   restart                      -> paxos_new(), then
 *                                   paxos_acceptor_restore() for every
 *                                   state persisted, before any message
 *
 * After any input call the deadline may have moved: read
 * paxos_next_deadline() again.  Outputs leave through the runtime:
 * messages (send), client answers (reply), store access (read_current,
 * apply_commit) and acceptor durability (persist).
 *
 * DURABILITY CONTRACT.  persist(key, state, token) asks the owner to make
 * the key's acceptor state durable (state NULL: delete it).  The owner
 * later calls paxos_persisted(t) meaning "every persist with token <= t,
 * and every apply_commit issued before it, is durable": tokens grow by
 * one per call, and a log that appends both in call order and fsyncs
 * satisfies it (group commit: one fsync, one paxos_persisted for the last
 * token).  Every reply that grants anything (a promise, an acceptance, a
 * commit ack) waits for the persist it depends on.  A failed fsync must
 * stop the node, never be reported as success (TESTING.md).
 *
 * Threading: none.  One struct paxos is used by one thread.  Callbacks
 * must not call paxos input functions (recv, tick, persisted, cas...);
 * they may call the queries.
 */
#ifndef RK_PAXOS_H
#define RK_PAXOS_H

#include <stddef.h>
#include <stdint.h>

#include "hlc.h"
#include "log.h"
#include "paxos_msg.h"

struct paxos;

/* Deliberately broken behaviours, for tests that show the simulator and
 * the checker can catch a broken acceptor.  Never set in a node. */
enum paxos_unsafe {
	PAXOS_SAFE = 0,
	PAXOS_UNSAFE_REPLY_EARLY = 1,	 /* answer before persisting */
	PAXOS_UNSAFE_IGNORE_PROMISE = 2, /* accept below the promise */
};

/* Static configuration; paxos_config_defaults() fills every default (see
 * the tuning constants in paxos.c), the caller sets id.  Copied. */
struct paxos_config {
	uint64_t id;			/* node id, non-zero */
	uint32_t round_timeout_ms;	/* a phase without a majority of replies
					   for this long is retried */
	uint32_t contention_timeout_ms; /* retries after losing to other
					   ballots stop after this long:
					   RK_ECONTENTION_TIMEOUT */
	uint32_t backoff_min_ms;	/* first retry delay cap after a loss */
	uint32_t backoff_max_ms;  /* retry delay cap (full jitter below) */
	uint32_t max_queue;	  /* operations waiting per key behind the
				     running one; more: RK_EOVERLOADED */
	size_t max_key;		  /* longest key accepted, bytes */
	size_t max_value;	  /* longest value accepted, bytes */
	enum paxos_unsafe unsafe; /* tests only: PAXOS_SAFE */
};

void paxos_config_defaults(struct paxos_config *cfg);

/* What a CAS requires of the current value. */
enum paxos_cond_kind {
	PAXOS_IF_EQUALS = 0, /* the value equals expected (which may be
				absent: "the key does not exist") */
	PAXOS_IF_ANY = 1,    /* always: an unconditional write through
				Paxos, linearizable with the CAS ops */
};

struct paxos_cond {
	enum paxos_cond_kind kind;
	struct paxos_value expected; /* IF_EQUALS; borrowed during the call */
};

/* The answer to one operation, given once through rt.reply(). */
struct paxos_result {
	/* 0: done; applied and value say how.
	 * RK_EUNAVAILABLE: fewer than a majority of the replicas were up
	 *   before anything of ours was proposed: certainly not applied.
	 * RK_EOVERLOADED: never answered this way (paxos_cas returns it).
	 * RK_ETIMEOUT: the deadline passed; the outcome is unknown.
	 * RK_ECONTENTION_TIMEOUT: other proposers kept winning for
	 *   contention_timeout_ms, or our proposal lost in a way that leaves
	 *   its fate open; the outcome is unknown.
	 * RK_ENOMEM: out of memory before proposing; not applied. */
	int status;
	/* CAS (status 0): 1 when our value was written, 0 when the condition
	 * did not hold (nothing written).  Reads: 0. */
	int applied;
	/* status 0: the key's value after the operation, as linearized: the
	 * new value when applied, the value that failed the condition, or the
	 * value read.  Borrowed during the reply call. */
	struct paxos_value value;
	rk_ts ts;	      /* its record timestamp (zero: never written) */
	uint32_t round_trips; /* request/reply phases the op took */
	uint32_t attempts;    /* prepare rounds it started */
};

/* The owner's side.  Every callback gets ctx.  Keys and values passed to
 * callbacks are borrowed for the call. */
struct paxos_runtime {
	void *ctx;		     /* passed back; borrowed */
	const struct rk_logger *log; /* the node's logger; NULL: silent */
	/* Monotonic milliseconds: timeouts and deadlines. */
	uint64_t (*now_ms)(void *ctx);
	/* 64 random bits (backoff jitter; seeded in the simulator). */
	uint64_t (*random)(void *ctx);
	/* A fresh timestamp from the node's hybrid logical clock, the one
	 * plain writes are stamped with: ballots.  Must never repeat, across
	 * restarts too (the node restores its clock above everything it
	 * issued, e.g. from a persisted upper bound): a reused ballot could
	 * carry two values.  node must be our id.  NULL: the module keeps its
	 * own HLC on now_ms (tests only; not restart-safe). */
	rk_ts (*clock_tick)(void *ctx);
	/* A timestamp seen in a message: the node's clock moves past it, so
	 * its later writes and ballots are newer.  May be NULL. */
	void (*clock_observe)(void *ctx, rk_ts ts);
	/* Liveness (gossip): 0 when node is known down.  Used only to fail
	 * fast with RK_EUNAVAILABLE.  NULL: every node counts as up. */
	int (*is_up)(void *ctx, uint64_t node);
	/* Sends m to node to (which may be us: loop it back later, never
	 * from inside this call).  Fire and forget: loss is handled by
	 * timeouts.  m is valid only during the call. */
	void (*send)(void *ctx, uint64_t to, const struct paxos_msg *m);
	/* The answer to the operation started with token. */
	void (*reply)(void *ctx, uint64_t token, const struct paxos_result *r);
	/* The key's newest record in the store: its value (absent for a
	 * tombstone or a key never written) and timestamp (zero when never
	 * written).  *value may borrow the store's memory until the next
	 * callback.  Returns 0, or a negative code (the acceptor then sends
	 * nothing). */
	int (*read_current)(void *ctx, const uint8_t *key, size_t klen,
			    struct paxos_value *value, rk_ts *ts);
	/* A decided value: store it as a normal record with timestamp ts,
	 * last-writer-wins (a newer record already there stays).  Must be
	 * durable no later than the next persist()'s completion (see the
	 * durability contract).  Returns 0, or a negative code (no ack). */
	int (*apply_commit)(void *ctx, const uint8_t *key, size_t klen,
			    const struct paxos_value *value, rk_ts ts);
	/* Makes the key's acceptor state durable (state NULL: delete it),
	 * then the owner calls paxos_persisted(token).  Encode it with
	 * paxos_wire_encode_state(). */
	void (*persist)(void *ctx, const uint8_t *key, size_t klen,
			const struct paxos_acceptor_state *state,
			uint64_t token);
};

/* Counters since paxos_new. */
struct paxos_stats {
	uint64_t msgs_sent;	  /* messages handed to send */
	uint64_t msgs_recv;	  /* messages given to paxos_recv */
	uint64_t msgs_ignored;	  /* stale or unmatched replies */
	uint64_t persists;	  /* persist() calls */
	uint64_t prunes;	  /* acceptor states dropped after commit */
	uint64_t ops_started;	  /* operations accepted by cas/read */
	uint64_t ops_applied;	  /* CAS answered applied */
	uint64_t ops_not_applied; /* CAS answered condition false */
	uint64_t reads;		  /* SERIAL reads answered */
	uint64_t ops_failed;	  /* answered with a non-zero status */
	uint64_t repairs;	  /* in-progress proposals we finished */
	uint64_t own_finished;	  /* our own proposal, found in progress
				     after losing track of it, finished */
	uint64_t own_seen;	  /* ... found already decided */
	uint64_t own_reproposed;  /* ... proposed again, same origin */
	uint64_t own_superseded;  /* ... lost its instance: started over */
	uint64_t own_unknown;	  /* ... fate unknowable: answered
				     RK_ECONTENTION_TIMEOUT */
	uint64_t preempted;	  /* rounds lost to a higher ballot */
	uint64_t round_timeouts;  /* rounds retried for lack of replies */
	uint64_t overloaded;	  /* cas/read refused: queue full */
	uint32_t acceptor_keys;	  /* keys with acceptor state now */
	uint32_t pending_replies; /* replies waiting for persistence */
	uint32_t active_keys;	  /* keys with an operation running */
};

/* Creates a node's Paxos state.  cfg and rt are copied.  Returns 0,
 * RK_EINVALID (id 0, a zero timing, a missing callback), RK_ENOMEM.  The
 * caller owns *out and frees it with paxos_free. */
int paxos_new(const struct paxos_config *cfg, const struct paxos_runtime *rt,
	      struct paxos **out);

/* Frees p and everything it owns.  NULL is a no-op.  Sends and replies
 * nothing: operations still running get no answer (the node fails its
 * clients' requests itself when it stops). */
void paxos_free(struct paxos *p);

/* At start, before any message: gives back a state persist() made durable
 * in an earlier life.  Returns 0, RK_EINVALID (bad key or state),
 * RK_ENOMEM. */
int paxos_acceptor_restore(struct paxos *p, const uint8_t *key, size_t klen,
			   const struct paxos_acceptor_state *state);

/* A decoded message from node from.  Requests are answered through send
 * (after persistence when they change state); replies drive our running
 * operations.  Returns 0, or RK_EINVALID when m breaks paxos_msg_valid or
 * the configured limits (dropped). */
int paxos_recv(struct paxos *p, uint64_t from, const struct paxos_msg *m);

/* Every persist() with a token <= token is durable (see the contract
 * above).  Sends the replies that waited for it. */
void paxos_persisted(struct paxos *p, uint64_t token);

/* Runs what is due at now_ms(): round timeouts, backoff ends, deadlines. */
void paxos_tick(struct paxos *p);

/* The now_ms() time of the earliest pending timer (UINT64_MAX: none). */
uint64_t paxos_next_deadline(const struct paxos *p);

/* Compare-and-set on key among replicas[0, n) (n <= PAXOS_MAX_REPLICAS,
 * distinct non-zero ids; the caller computes them from the ring; a
 * majority is n/2 + 1).  When cond holds on the key's current value,
 * writes new_value (absent: delete).  The answer comes once through
 * rt.reply(token, ...), possibly from inside this call; deadline is in
 * now_ms() time.  Operations on one key run one at a time, in order.
 * Everything is copied.  Returns 0 (a reply will come), RK_EINVALID (bad
 * key, value, replicas), RK_EOVERLOADED (max_queue operations already
 * wait on the key), RK_ENOMEM; then no reply comes. */
int paxos_cas(struct paxos *p, uint64_t token, const uint8_t *key, size_t klen,
	      const uint64_t *replicas, size_t n, const struct paxos_cond *cond,
	      const struct paxos_value *new_value, uint64_t deadline);

/* A linearizable read (consistency SERIAL): a prepare round that finishes
 * any in-progress proposal, then the newest value among a majority.
 * Answers like paxos_cas (applied is 0). */
int paxos_serial_read(struct paxos *p, uint64_t token, const uint8_t *key,
		      size_t klen, const uint64_t *replicas, size_t n,
		      uint64_t deadline);

/* Writes value when the key is absent (paxos_cas with expected absent). */
int paxos_put_if_absent(struct paxos *p, uint64_t token, const uint8_t *key,
			size_t klen, const uint64_t *replicas, size_t n,
			const struct paxos_value *value, uint64_t deadline);

/* Deletes the key when its value equals expected (paxos_cas writing
 * absent). */
int paxos_delete_if(struct paxos *p, uint64_t token, const uint8_t *key,
		    size_t klen, const uint64_t *replicas, size_t n,
		    const struct paxos_value *expected, uint64_t deadline);

/* ---- queries (tests, metrics, debugging) ----------------------------- */

/* The acceptor state this node holds for key.  Returns 0 and *out
 * (borrowing p until the next input call), or RK_ENOT_FOUND (no state:
 * never touched, or pruned). */
int paxos_acceptor_get(const struct paxos *p, const uint8_t *key, size_t klen,
		       struct paxos_acceptor_state *out);

/* Operations running or queued on key at this node. */
size_t paxos_key_ops(const struct paxos *p, const uint8_t *key, size_t klen);

void paxos_stats(const struct paxos *p, struct paxos_stats *out);

uint64_t paxos_self_id(const struct paxos *p);

#endif
