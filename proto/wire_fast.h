/* wire_fast.h: the hot messages, read and written by hand.
 *
 * Internal to proto/wire.c and proto/peer_wire.c; the essay is at the top
 * of wire_fast.c.
 */
#ifndef RK_WIRE_FAST_H
#define RK_WIRE_FAST_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "peer.pb-c.h"
#include "peer_wire.h"
#include "ringkv.pb-c.h"
#include "wire.h"

/* The structs a Get or Put request envelope unpacks into, on the caller's
 * stack. */
struct wire_fast_req {
	Ringkv__Envelope env;
	Ringkv__Get get;
	Ringkv__Put put;
};

/* Reads body as an Envelope holding a Get or a Put, into f->env (bytes
 * fields borrow from body), exactly as protobuf-c would have unpacked it.
 * Returns 1 when it did; 0 when body is anything else or anything
 * unusual (another body, an unknown or repeated field, an out-of-range
 * value, malformed bytes): then the caller unpacks it with protobuf-c. */
int wire_fast_read_request(const uint8_t *body, size_t len,
			   struct wire_fast_req *f);

/* Appends the frame of a GET reply (without per-replica replies) or a
 * PUT/DELETE reply, byte for byte what protobuf-c would pack.  Returns 1
 * when it did, 0 when r is another kind (the caller packs it with
 * protobuf-c), or RK_ENOMEM. */
int wire_fast_write_response(struct rk_buf *out, const struct rk_response *r);

/* The structs a peer envelope holding one replication message (no ranges,
 * no batch of records) unpacks into. */
struct wire_fast_peer {
	Ringkv__Peer__PeerEnvelope env;
	Ringkv__Peer__ReplMessage repl;
	Ringkv__Peer__Record record;
};

/* As wire_fast_read_request, for a PeerEnvelope holding a ReplMessage
 * without ranges or records (writes, reads, and their replies). */
int wire_fast_read_peer(const uint8_t *body, size_t len,
			struct wire_fast_peer *f);

/* As wire_fast_write_response, for a PEER_OP_REPL message of type WRITE,
 * WRITE_ACK, READ or READ_REPLY. */
int wire_fast_write_peer(struct rk_buf *out, const struct peer_msg *m);

#endif
