/* server.h: ringkvd's client listener on libev.
 *
 * One event loop serves every connection with non-blocking sockets.  Each
 * connection buffers bytes, cuts them into frames (common/frame.h), decodes
 * them (proto/wire.h) and answers each request, matched by request_id.  A
 * write under fsync=always is answered once the op-log says its LSN is
 * durable, so replies may come back out of order.
 *
 * Defences (each limit in struct node_config): a length prefix above
 * max_frame is refused before anything is allocated for it; a frame must
 * complete within frame_timeout; idle connections close after
 * idle_timeout; a connection whose unread replies exceed max_output is
 * closed; max_bad_frames bad frames in a row close it; at most
 * frames_per_turn requests per connection per loop turn, so one flooding
 * client cannot starve the rest; beyond max_clients a new connection gets
 * MAX_CLIENTS and is closed.
 */
#ifndef RK_SERVER_H
#define RK_SERVER_H

#include <ev.h>

#include "cluster.h"
#include "config.h"
#include "log.h"
#include "store.h"

struct server;
struct conn;
struct peer_msg;

/* Handles one request that arrived on a peer connection (one that said
 * Hello{role: PEER} with our cluster name).  Reply with server_peer_reply,
 * now or later; to reply later, hold the connection with server_conn_ref
 * and let go with server_conn_unref (a closed connection swallows the
 * reply). */
typedef void (*server_peer_fn)(void *ctx, struct conn *c,
			       const struct peer_msg *m);

/* Binds cfg->listen and prepares watchers on loop; does not start them.
 * Borrows cfg, st, cl and lg for its lifetime.  Returns 0 or RK_EIO with a
 * reason in err. */
int server_new(struct ev_loop *loop, const struct node_config *cfg,
	       struct store *st, struct cluster *cl,
	       const struct rk_logger *lg, struct server **out, char *err,
	       size_t errlen);

/* The cluster view ClusterInfo and RingInfo answer from (borrowed). */
void server_set_cluster(struct server *srv, struct cluster *cl);

/* Routes peer requests to fn(ctx, ...).  Without a handler a peer request
 * gets UNKNOWN_COMMAND. */
void server_set_peer_handler(struct server *srv, server_peer_fn fn,
			     void *ctx);

void server_peer_reply(struct conn *c, const struct peer_msg *m);
void server_conn_ref(struct conn *c);
void server_conn_unref(struct conn *c);

/* The node id a peer connection announced in its Hello. */
uint64_t server_conn_peer_id(const struct conn *c);

/* Starts accepting and serving. */
void server_start(struct server *srv);

/* The address actually bound (port resolved when 0 was asked). */
const char *server_address(const struct server *srv);

/* Stops accepting and reading, answers what becomes durable, and calls
 * done(ctx) once no write waits for fsync (or after a grace period). */
void server_drain(struct server *srv, void (*done)(void *ctx), void *ctx);

/* Closes every connection and frees the server. */
void server_free(struct server *srv);

#endif
