/* membership.h: SWIM gossip (gossip/swim.h) bound to this node's sockets
 * and clock.
 *
 * Probes and piggy-backed updates travel over UDP on the node's own port
 * number (the TCP port serves clients and peers); the full-state push-pull
 * travels over the peer protocol (GOSSIP_SYNC on the persistent peer
 * links).  One libev timer is kept at swim_next_deadline().  The
 * incarnation is persisted in DATA_DIR/incarnation before any packet
 * carries it, so a restarted node starts above every incarnation it used.
 * Events (joined, suspect, dead, alive, left) are logged and passed to the
 * cluster view.
 *
 * Loop thread only.
 */
#ifndef RK_MEMBERSHIP_H
#define RK_MEMBERSHIP_H

#include <ev.h>
#include <stddef.h>
#include <stdint.h>

#include "cluster.h"
#include "config.h"
#include "log.h"
#include "peer.h"
#include "swim.h"

struct membership;
struct conn;
struct peer_msg;

/* Binds UDP on addr (the node's listen address), reads the persisted
 * incarnation and starts SWIM with seeds from the config.  Borrows
 * everything.  Returns 0, or RK_EIO / RK_EINVALID / RK_ENOMEM with a reason
 * in err. */
int membership_open(struct ev_loop *loop, const struct node_config *cfg,
		    uint64_t self_id, const char *listen_addr,
		    const char *advertise_addr, struct cluster *cl,
		    struct peers *peers, const struct rk_logger *lg,
		    struct membership **out, char *err, size_t errlen);

/* Answers a push-pull from a peer (GOSSIP_SYNC); fills reply, whose
 * payload lives in m until the next call. */
void membership_on_sync(struct membership *m, const char *from,
			const struct peer_msg *req, struct peer_msg *reply);

/* Gossips a change of our metadata (tokens chosen). */
void membership_set_meta(struct membership *m, const uint8_t *meta,
			 size_t len);

/* Leaves gracefully: announces LEFT and keeps gossiping until the news
 * went out or a few periods passed, then calls done(ctx). */
void membership_leave(struct membership *m, void (*done)(void *ctx),
		      void *ctx);

void membership_stats(const struct membership *m, struct swim_stats *out);

void membership_free(struct membership *m);

#endif
