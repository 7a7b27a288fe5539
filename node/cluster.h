/* cluster.h: the node's view of the cluster: who owns what on the ring,
 * and who is alive.
 *
 * Two sources, kept apart on purpose (DESIGN.md, "membership versus
 * ownership"):
 *   - liveness comes from gossip (SWIM): alive, suspect, dead, left;
 *   - ownership is the ring: every member that has tokens and has not been
 *     decommissioned or removed, whatever its liveness.  A dead node still
 *     owns its ranges; hints and catch-up cover its absence.
 *
 * Tokens are chosen once per node (ring/ring.h) and are too big for gossip
 * metadata, so gossip carries a small digest (tokens count and checksum)
 * and a node fetches a member's tokens over TCP (TOKENS_GET) when the
 * digest is new to it, from that member or any node that knows them.
 * Every member's tokens are kept in DATA_DIR/members, so a restarted node
 * rebuilds the whole ring even while some owners are down; its own are
 * also in DATA_DIR/tokens.
 *
 * A node starting for the first time without seeds chooses its tokens at
 * once.  With seeds it first joins, learns the current ring, then chooses
 * tokens against it (ring_allocate_tokens) so the ring stays balanced.
 * The allocator splits the most loaded ranges at their midpoints, which
 * do not depend on the joiner, so two nodes choosing against the same ring
 * choose the same tokens and one of them owns nothing.  Cassandra asks
 * operators to start nodes one at a time (and refuses overlapping
 * bootstraps); we serialize the choice itself, so nodes may be started
 * together: a new node waits cluster.join_delay after its gossip join, so
 * that nodes started with it hear of it, then lets every alive member with
 * a lower id that has no tokens yet choose first, and allocates against
 * the pending ring, which holds the tokens of every member still joining.
 * A member that stays without tokens (a failing disk, say) is waited for
 * at most replication.settle_timeout.  Two nodes that still chose alike
 * (they did not hear of each other within the delay) are logged.
 *
 * Loop thread only.
 */
#ifndef RK_CLUSTER_H
#define RK_CLUSTER_H

#include <ev.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "log.h"
#include "peer.h"
#include "ring.h"
#include "wire.h"

/* Gossip metadata bytes a node announces (see cluster_self_meta). */
#define CLUSTER_META_LEN 22

/* A member's ring status, carried in its metadata.  The natural ring
 * (reads, and the owners a write's quorum counts) holds NORMAL and
 * LEAVING members; the pending ring (the ring once the change is done,
 * whose owners get every write too) holds NORMAL and JOINING ones. */
enum cluster_status {
	CLUSTER_NO_TOKENS = 0, /* joined gossip, no tokens yet */
	CLUSTER_NORMAL = 1,    /* owns its ranges */
	CLUSTER_JOINING = 2,   /* has tokens, is pulling its ranges */
	CLUSTER_LEAVING = 3,   /* decommissioning: handing its ranges over */
	CLUSTER_GONE = 4,      /* decommissioned: owns nothing ("left") */
};

/* Liveness as gossip reports it (enum swim_state + 1; 0 = not known). */
enum cluster_liveness {
	CLUSTER_UNKNOWN = 0,
	CLUSTER_ALIVE = 1,
	CLUSTER_SUSPECT = 2,
	CLUSTER_DEAD = 3,
	CLUSTER_LEFT = 4,
};

/* One member, as queries show it.  Strings borrowed from the cluster until
 * the next change. */
struct cluster_member {
	uint64_t id;
	enum cluster_liveness liveness;
	enum cluster_status status;
	uint64_t incarnation;
	uint32_t weight;
	size_t n_tokens;       /* 0 while unknown */
	const uint64_t *tokens;
	const char *client_addr;
	const char *gossip_addr;
	int is_self;
	int in_ring;           /* an owner in the natural ring */
	int removed;           /* decommissioned or removed for good */
};

struct cluster;

/* Called when this node's metadata changed and must be gossiped. */
typedef void (*cluster_meta_fn)(void *ctx, const uint8_t *meta, size_t len);
/* Called after the rings were rebuilt (pending is NULL when no change is
 * under way). */
typedef void (*cluster_ring_fn)(void *ctx, const struct ring *ring,
				const struct ring *pending);
/* Called when a member's liveness changed. */
typedef void (*cluster_live_fn)(void *ctx, uint64_t id,
				enum cluster_liveness l);

/* Loads DATA_DIR/tokens and DATA_DIR/members; chooses tokens now when this
 * is a first start without seeds.  Borrows cfg, lg and peers.  Returns 0,
 * or RK_EIO / RK_ECORRUPT / RK_ENOMEM with a reason in err. */
int cluster_open(struct ev_loop *loop, const struct node_config *cfg,
		 uint64_t self_id, const char *self_addr, struct peers *peers,
		 const struct rk_logger *lg, struct cluster **out, char *err,
		 size_t errlen);

void cluster_free(struct cluster *c);

void cluster_set_callbacks(struct cluster *c, cluster_meta_fn meta,
			   cluster_ring_fn ring, cluster_live_fn live,
			   void *ctx);

/* The member at address addr, or 0. */
uint64_t cluster_id_at(const struct cluster *c, const char *addr);

/* The address ("host:port") of member id, or NULL. */
const char *cluster_address_of(const struct cluster *c, uint64_t id);

/* The metadata this node gossips (CLUSTER_META_LEN bytes into out). */
void cluster_self_meta(const struct cluster *c, uint8_t *out);

/* Gossip says member id is as given (self included).  meta may be NULL. */
void cluster_on_member(struct cluster *c, uint64_t id,
		       enum cluster_liveness liveness, uint64_t incarnation,
		       uint32_t weight, const char *client_addr,
		       const char *gossip_addr, const uint8_t *meta,
		       size_t meta_len);

/* Gossip finished joining: tokens can be chosen against the ring now. */
void cluster_on_joined(struct cluster *c);

/* This node's ring status changes (JOINING -> NORMAL after its ranges
 * arrived; NORMAL -> LEAVING -> GONE when decommissioned).  Persisted in
 * DATA_DIR/ring_status and gossiped.  Returns 0 or RK_EIO. */
int cluster_set_self_status(struct cluster *c, enum cluster_status s);

/* Takes node id off the ring for good (decommissioned or removed); the
 * removed set spreads to every node through gossip.  Returns 0 or RK_EIO. */
int cluster_remove(struct cluster *c, uint64_t id);
int cluster_is_removed(const struct cluster *c, uint64_t id);

/* A ring built from the members as they are, with `add` counted as a
 * normal owner and `drop` left out (0 for neither).  The caller frees it.
 * Returns 0 or an error of ring_new. */
int cluster_build_ring(const struct cluster *c, uint64_t add, uint64_t drop,
		       struct ring **out);

/* The pending ring, or NULL when no change is under way. */
const struct ring *cluster_pending_ring(const struct cluster *c);

/* A peer told us of removed nodes (the set only grows). */
void cluster_merge_removed(struct cluster *c, const uint64_t *ids, size_t n);

/* Answers REMOVED_GET: the ids in the removed set (borrowed). */
size_t cluster_removed(const struct cluster *c, const uint64_t **ids);

/* Answers a TOKENS_GET from a peer: fills reply (borrowing from c).
 * Returns 0 or RK_ENOT_FOUND. */
struct peer_msg;
int cluster_tokens_reply(const struct cluster *c, uint64_t id,
			 struct peer_msg *reply);

/* The current ring; borrowed until the next change.  Never NULL. */
const struct ring *cluster_ring(const struct cluster *c);

uint32_t cluster_rf(const struct cluster *c);

/* True once this node has tokens (it owns part of the ring). */
int cluster_has_tokens(const struct cluster *c);

/* Members, self first.  Returns the count; fills out[0, min(count, cap)). */
size_t cluster_members(const struct cluster *c, struct cluster_member *out,
		       size_t cap);

/* This node's ring status, and its name ("normal", "joining", ...). */
enum cluster_status cluster_self_status(const struct cluster *c);
const char *cluster_status_name(enum cluster_status s);

/* Whether id is a member this node knows of (in gossip or the ring). */
int cluster_is_member(const struct cluster *c, uint64_t id);

/* Liveness of a member (CLUSTER_UNKNOWN when not a member). */
enum cluster_liveness cluster_liveness_of(const struct cluster *c,
					  uint64_t id);

const char *cluster_liveness_name(enum cluster_liveness l);

#endif
