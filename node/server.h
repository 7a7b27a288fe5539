/* server.h: ringkvd's listener on libev: client and peer connections.
 *
 * One event loop serves every connection with non-blocking sockets.  Each
 * connection buffers bytes, cuts them into frames (common/frame.h), decodes
 * them (proto/wire.h, proto/peer_wire.h) and hands each request to its
 * handler: data requests (get, put, delete, exists) to the data handler,
 * peer messages to the peer handler; the server itself answers ping,
 * hello and the membership queries.  Handlers may answer later (a write
 * waits for its replicas), so replies may come back out of order; clients
 * match them by request_id.  The server is transport only: it owns no
 * data.
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
#include "wire.h"

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

/* Handles one data request (get, put, delete, exists, node stats).  It must answer
 * exactly once with server_reply; to answer after returning it holds the
 * connection with server_conn_ref and lets go with server_conn_unref after
 * the reply.  q borrows from the frame: copy what is kept. */
typedef void (*server_data_fn)(void *ctx, struct conn *c,
			       const struct rk_request *q);

/* Binds cfg->listen and prepares watchers on loop; does not start them.
 * Borrows cfg and lg for its lifetime.  Returns 0 or RK_EIO with a reason
 * in err. */
int server_new(struct ev_loop *loop, const struct node_config *cfg,
	       uint64_t self_id, const struct rk_logger *lg,
	       struct server **out, char *err, size_t errlen);

void server_set_data_handler(struct server *srv, server_data_fn fn,
			     void *ctx);

/* Answers a data request (a closed connection swallows it). */
void server_reply(struct conn *c, const struct rk_response *r);

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

/* Stops taking client requests (they are answered SHUTTING_DOWN; peer
 * messages are still served) and calls done(ctx) once every request
 * taken has been answered (or after a grace period).  Connections close
 * in server_free. */
void server_drain(struct server *srv, void (*done)(void *ctx), void *ctx);

/* Closes every connection and frees the server. */
void server_free(struct server *srv);

#endif
