/* peer.h: this node's outgoing connections to other nodes.
 *
 * One persistent TCP connection per peer address, opened on first use:
 * connect, Hello{role: PEER, cluster name, our id}, then pipelined
 * PeerEnvelope requests whose replies are matched by request id.  A request
 * fails (its callback gets an error, never silence) when the connection
 * cannot be made, breaks, or the reply misses its deadline.  After a failed
 * connection attempt the address is in backoff (doubling from
 * PEER_BACKOFF_MIN to PEER_BACKOFF_MAX) and requests to it fail at once
 * with RK_ECONNECT, so a dead peer costs nothing per request.
 *
 * Loop thread only.
 */
#ifndef RK_PEER_H
#define RK_PEER_H

#include <ev.h>
#include <stdint.h>

#include "config.h"
#include "log.h"
#include "peer_wire.h"

struct peers;

/* The reply to one request: status 0 with reply set (reply->op may be
 * PEER_OP_ERROR: the peer refused), or RK_ECONNECT, RK_ECLOSED, RK_ETIMEOUT,
 * RK_ENOMEM, RK_ESHUTTING_DOWN with reply NULL.  reply is valid only during
 * the call. */
typedef void (*peer_reply_fn)(void *ctx, int status,
			      const struct peer_msg *reply);

/* Called when an established connection to addr breaks or a connection
 * attempt fails: one-way messages sent on it may be lost. */
typedef void (*peer_down_fn)(void *ctx, const char *addr);

/* Borrows loop, cfg and lg.  Returns NULL when out of memory. */
struct peers *peers_new(struct ev_loop *loop, const struct node_config *cfg,
			uint64_t self_id, const struct rk_logger *lg);

void peers_set_down_handler(struct peers *p, peer_down_fn fn, void *ctx);

/* Fails every pending request with RK_ESHUTTING_DOWN and frees. */
void peers_free(struct peers *p);

/* Sends m (its id is assigned here) to the node at addr ("host:port") and
 * calls cb exactly once, maybe before returning (then with an error).
 * timeout_ms bounds the wait for the reply. */
void peers_request(struct peers *p, const char *addr, struct peer_msg *m,
		   uint32_t timeout_ms, peer_reply_fn cb, void *ctx);

/* Sends m one-way (no reply expected; m->id is set to 0).  Returns 0 when
 * queued, RK_ECONNECT when addr is in backoff or cannot be connected, or
 * RK_ENOMEM.  A queued message may still be lost with its connection. */
int peers_send(struct peers *p, const char *addr, struct peer_msg *m);

#endif
