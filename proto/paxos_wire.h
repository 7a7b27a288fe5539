/* paxos_wire.h: the protobuf codec of the Paxos messages and of the durable
 * acceptor state (proto/paxos.proto <-> paxos/paxos_msg.h).
 *
 * The only code that reads protobuf-c structs of paxos.proto.  The decoders
 * check the trailing CRC-32C, the version, that exactly one message kind is
 * set, and every field against paxos_msg_valid() / paxos_state_valid()
 * (key and value lengths, non-zero ballots, base < origin <= ballot, which
 * fields a kind may carry) before anything reads it; the encoders refuse
 * what the decoders would refuse, so a node never emits what its peers
 * reject.
 *
 * The node encodes what paxos hands to its send() and persist() callbacks,
 * and decodes what arrives from peers and what it reads back at start; the
 * simulator does the same, so every simulated message goes through here.
 */
#ifndef RK_PAXOS_WIRE_H
#define RK_PAXOS_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "paxos_msg.h"

/* Appends the encoding of m (a PaxosMessage) to out.  Returns 0,
 * RK_EINVALID when m breaks paxos_msg_valid(), or RK_ENOMEM. */
int paxos_wire_encode(const struct paxos_msg *m, struct rk_buf *out);

/* Decodes and validates bytes[0, len).  On success fills *m, borrowing
 * from *owner, and returns 0; pass *owner to paxos_wire_release() when
 * done with m.  Returns RK_EPROTOCOL for anything malformed, corrupt or
 * invalid (*owner NULL, *m zeroed), or RK_ENOMEM. */
int paxos_wire_decode(const uint8_t *bytes, size_t len, struct paxos_msg *m,
		      void **owner);

/* Frees what a decoder allocated; NULL is a no-op. */
void paxos_wire_release(void *owner);

/* Appends the encoding of key's acceptor state (an AcceptorState) to out;
 * s NULL encodes "no state" (what persist() passes for a pruned key).
 * Returns 0, RK_EINVALID (bad key or state), RK_ENOMEM. */
int paxos_wire_encode_state(const uint8_t *key, size_t klen,
			    const struct paxos_acceptor_state *s,
			    struct rk_buf *out);

/* Decodes and validates an AcceptorState: *key, *klen and *s borrow from
 * *owner (release it as above).  An empty state (paxos_state_empty) means
 * the key has none.  Returns 0, RK_EPROTOCOL (malformed, corrupt or
 * invalid), RK_ENOMEM. */
int paxos_wire_decode_state(const uint8_t *bytes, size_t len,
			    const uint8_t **key, size_t *klen,
			    struct paxos_acceptor_state *s, void **owner);

#endif
