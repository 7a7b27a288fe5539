/* rebalance.h: moving data when the ring changes, so that no ring change
 * loses an acknowledged write.
 *
 * Join.  A new node chooses its tokens, announces itself JOINING (it then
 * gets every write for its future ranges: the pending ring), and pulls
 * each range it gains from the node that loses it, as Cassandra's
 * consistent range movement does: any QUORUM write acknowledged before
 * the change is either on the losing node (so the stream or the log
 * catch-up after it brings it) or on a majority of the owners that stay,
 * which every QUORUM of the new owners meets.  Then it turns NORMAL.
 *
 * Decommission.  The leaving node turns LEAVING and asks every node that
 * gains one of its ranges to pull it from the leaving node (TAKE_OVER);
 * when all have, it turns GONE (off the ring for good) and stops.
 *
 * Removal of a dead node.  The node asked sends TAKE_OVER to every gainer,
 * which pulls from the surviving replicas; then it adds the dead node to
 * the removed set, which spreads through gossip.  Every gainer must be up:
 * a range handed to a node that is down would have no copy there.
 *
 * Cleanup.  Once the rings have been still for a while, each node drops
 * the keys it no longer owns (logged, so replay forgets them too).
 *
 * Loop thread only.
 */
#ifndef RK_REBALANCE_H
#define RK_REBALANCE_H

#include <ev.h>
#include <stdint.h>

#include "cluster.h"
#include "config.h"
#include "log.h"
#include "peer.h"
#include "repl.h"
#include "store.h"

struct rebalance;

/* Called once with 0 or an RK_E* code and a message. */
typedef void (*rebalance_done_fn)(void *ctx, int status, const char *detail);

/* Borrows everything.  Returns NULL when out of memory. */
struct rebalance *rebalance_new(struct ev_loop *loop,
				const struct node_config *cfg,
				struct cluster *cl, struct repl *repl,
				struct store *st, struct peers *peers,
				const struct rk_logger *lg);
void rebalance_free(struct rebalance *rb);

/* The rings changed: starts a join, schedules a cleanup. */
void rebalance_on_ring(struct rebalance *rb);

/* Decommissions this node (client request). */
void rebalance_decommission(struct rebalance *rb, rebalance_done_fn done,
			    void *ctx);

/* Removes dead node id (client request). */
void rebalance_remove(struct rebalance *rb, uint64_t id,
		      rebalance_done_fn done, void *ctx);

/* A peer asks us to pull the ranges we gain when `leaving` goes: from it
 * (from_leaving) or from the surviving replicas. */
void rebalance_take_over(struct rebalance *rb, uint64_t leaving,
			 int from_leaving, rebalance_done_fn done, void *ctx);

/* True while this node pulls ranges or runs a ring change. */
int rebalance_busy(const struct rebalance *rb);

#endif
