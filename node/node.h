/* node.h: one ringkv node, put together: storage, the cluster view,
 * gossip, peer links and the client/peer server on one event loop.
 *
 * This is the composition root: it owns every part, wires their callbacks
 * to each other, and routes peer requests to the part that serves them.
 * Start order follows dependencies (storage first, the listener last);
 * stop order is the reverse, after a graceful drain and gossip leave.
 */
#ifndef RK_NODE_H
#define RK_NODE_H

#include <ev.h>

#include "config.h"
#include "log.h"

struct node;

/* Opens the data directory, replays the log and starts serving on loop.
 * Borrows cfg and lg (whose tag it sets to the node id).  Returns 0, or an
 * RK_E* code with a reason in err. */
int node_start(struct ev_loop *loop, const struct node_config *cfg,
	       struct rk_logger *lg, struct node **out, char *err,
	       size_t errlen);

/* Graceful stop: stop taking requests, answer the writes waiting for
 * fsync, tell the cluster we leave, then break the loop. */
void node_shutdown(struct node *n);

/* Frees everything (after the loop returned). */
void node_free(struct node *n);

#endif
