/* cluster.h: the node's view of the cluster: who it is on the ring (its
 * tokens, kept in DATA_DIR/tokens) and the current ring snapshot.
 *
 * A node's tokens are chosen once, at its first start, and never again
 * (ring/ring.h): re-deriving them would move data.  The ring is an
 * immutable snapshot (STYLE rule 11); a membership change builds a new one
 * and swaps it in.  Today the ring holds this node alone; gossip (the
 * membership issue) adds the others.
 */
#ifndef RK_CLUSTER_H
#define RK_CLUSTER_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "log.h"
#include "ring.h"
#include "wire.h"

struct cluster;

/* Loads this node's tokens from DATA_DIR/tokens, or chooses them (first
 * start) and writes them durably; builds the ring.  Borrows cfg and lg.
 * Returns 0, or RK_EIO / RK_ECORRUPT / RK_ENOMEM with a reason in err. */
int cluster_open(const struct node_config *cfg, uint64_t self_id,
		 const struct rk_logger *lg, struct cluster **out, char *err,
		 size_t errlen);

void cluster_free(struct cluster *c);

/* The current ring; borrowed until the next membership change. */
const struct ring *cluster_ring(const struct cluster *c);

/* Replication factor of the cluster. */
uint32_t cluster_rf(const struct cluster *c);

/* Fills the RingInfo answer: members with their tokens and addresses.
 * The entries borrow from c and addr.  Returns the count written. */
size_t cluster_ring_members(const struct cluster *c, const char *self_addr,
			    struct rk_ring_member *out, size_t cap);

#endif
