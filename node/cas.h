/* cas.h: compare-and-set in ringkvd: the pure Paxos module (paxos/) bound
 * to the event loop, the peers, the op-log and the clients.
 *
 * What it serves:
 *   - client Cas requests (compare-and-set, put_if_absent, delete_if),
 *     and Get / Exists / Put / Delete at consistency SERIAL (a
 *     linearizable read, an unconditional write through Paxos);
 *   - peer PAXOS packets (this node as an acceptor, or replies to its
 *     proposals) and forwarded CAS requests (this node as the primary).
 *
 * Routing (CASSANDRA-15746).  A request runs at its key's primary replica:
 * the first of the key's replicas (ring preference order) that gossip
 * calls alive or suspect.  Any other node forwards it there (one hop; the
 * primary never forwards again), and the Paxos module runs one operation
 * per key at a time and queues the rest, so the clients of a key do not
 * duel.  When the forward cannot be sent, or the primary is draining or
 * does not know the message, the node runs it itself: two proposers on a
 * key are safe, only slower.  A forward lost after it left makes a write
 * TIMEOUT (outcome unknown); a read is run again here.
 *
 * Durability.  Each acceptor state paxos hands to persist() is appended to
 * the op-log as an RK_REC_PAXOS record with a forced fdatasync, whatever
 * storage.fsync says, and paxos_persisted() is called once the writer has
 * synced it (store_synced_lsn): an acceptor never answers before the
 * state its answer depends on is on disk.  Commits are ordinary records
 * (store_apply) appended before the state that records them, so the same
 * fsync covers both.  At start every state replayed from the log is given
 * back to paxos (paxos_acceptor_restore) before any message.
 *
 * Ballots come from the node's hybrid logical clock (the one plain writes
 * are stamped with), above a bound kept in the op-log and raised ahead of
 * the clock (CAS_BOUND_AHEAD_MS), so a ballot never repeats across a
 * restart even if the wall clock went back.
 *
 * Loop thread only.
 */
#ifndef RK_CAS_H
#define RK_CAS_H

#include <ev.h>
#include <stddef.h>
#include <stdint.h>

#include "cluster.h"
#include "config.h"
#include "log.h"
#include "peer.h"
#include "server.h"
#include "store.h"
#include "wire.h"

struct cas;

/* What the binding uses; every pointer is borrowed for its lifetime. */
struct cas_deps {
	struct ev_loop *loop;
	const struct node_config *cfg;
	const struct rk_logger *lg;
	uint64_t self_id;
	struct store *store; /* replayed, not yet started or started */
	struct cluster *cluster;
	struct peers *peers;
};

/* Counters since start. */
struct cas_stats {
	uint64_t client_ops;	   /* requests taken from clients */
	uint64_t forwarded;	   /* ... of which sent to the primary */
	uint64_t forward_local;	   /* forwards that could not go: run here */
	uint64_t served_for_peers; /* forwarded requests run here */
	uint64_t overloaded;	   /* refused: cas.max_ops or max_queue */
	uint64_t bad_packets;	   /* Paxos packets that did not decode */
	uint64_t restored;	   /* acceptor states given back at start */
};

/* Creates the binding and restores the acceptor states the store replayed.
 * Returns 0, or RK_ENOMEM / RK_ECORRUPT (a state record that does not
 * decode) / RK_EINVALID with a reason in err.  Free with cas_free. */
int cas_new(const struct cas_deps *d, struct cas **out, char *err,
	    size_t errlen);

/* A client request: RK_OP_CAS, or GET, EXISTS, PUT, DELETE at
 * RK_CL_SERIAL.  Answered exactly once with server_reply (the connection
 * is held meanwhile). */
void cas_client(struct cas *c, struct conn *conn, const struct rk_request *q);

/* A peer message: PEER_OP_PAXOS (one-way) or PEER_OP_CAS (answered with
 * PEER_OP_CAS_REPLY, or PEER_OP_ERROR).  from is the peer's node id. */
void cas_peer(struct cas *c, struct conn *conn, uint64_t from,
	      const struct peer_msg *m);

/* The op-log wrote or synced more (the store's notify): releases the
 * acceptor answers that waited for it. */
void cas_durable(struct cas *c);

/* The node drains: forwarded requests are refused (SHUTTING_DOWN) so the
 * forwarder runs them itself; its own keep running to their end. */
void cas_set_draining(struct cas *c);

/* The node is going away: call before peers_free, whose failed forwards
 * are then answered without running anything more. */
void cas_stop(struct cas *c);

/* Lets go of every connection held and frees everything (requests still
 * running get no answer: their connections are closing). */
void cas_free(struct cas *c);

void cas_get_stats(const struct cas *c, struct cas_stats *out);

#endif
