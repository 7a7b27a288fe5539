/* gossip_wire.h: the protobuf codec of the SWIM membership protocol.
 *
 * The only code that reads protobuf-c structs of proto/gossip.proto.  It
 * turns gossip/swim_msg.h structs into bytes and back, and the decoder
 * validates every field (version, type, ids, address strings, cluster name
 * syntax, state enums, metadata length, update count) before the protocol
 * sees any of it.  The cluster name's value is checked by swim itself, so
 * it can count packets from other clusters apart from malformed ones.
 *
 * The node passes &gossip_wire_codec in its struct swim_runtime; so does the
 * simulator, so every simulated packet goes through this code.
 */
#ifndef RK_GOSSIP_WIRE_H
#define RK_GOSSIP_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "swim_msg.h"

/* encode/decode/release as documented in swim_msg.h. */
extern const struct swim_codec gossip_wire_codec;

/* The same functions, for callers that want them directly. */
int gossip_wire_encode(const struct swim_msg *m, struct rk_buf *out);
int gossip_wire_decode(const uint8_t *bytes, size_t len,
		       const struct swim_decode_limits *lim, struct swim_msg *m,
		       void **owner);
void gossip_wire_release(void *owner);

#endif
