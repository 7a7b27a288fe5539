#include "node.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cluster.h"
#include "err.h"
#include "membership.h"
#include "peer.h"
#include "peer_wire.h"
#include "server.h"
#include "store.h"

struct node {
	struct ev_loop *loop;
	const struct node_config *cfg;
	struct rk_logger *lg;
	struct store *store;
	struct peers *peers;
	struct cluster *cluster;
	struct membership *membership;
	struct server *server;
	char advertise[256];
	int stopping;
};

static uint64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Routes a request from another node to the part that serves it. */
static void on_peer_request(void *ctx, struct conn *c,
			    const struct peer_msg *m)
{
	struct node *n = ctx;
	struct peer_msg reply = {.id = m->id};
	char from[32];
	snprintf(from, sizeof(from), "%016" PRIx64, server_conn_peer_id(c));
	switch (m->op) {
	case PEER_OP_GOSSIP_SYNC:
		membership_on_sync(n->membership, from, m, &reply);
		break;
	case PEER_OP_TOKENS_GET:
		if (cluster_tokens_reply(n->cluster, m->node_id, &reply)) {
			reply.op = PEER_OP_ERROR;
			reply.status = RK_ENOT_FOUND;
			reply.error = "tokens not known here";
		}
		break;
	default:
		reply.op = PEER_OP_ERROR;
		reply.status = RK_EUNKNOWN_COMMAND;
		reply.error = "not a request";
		break;
	}
	reply.id = m->id;
	server_peer_reply(c, &reply);
}

static void on_meta(void *ctx, const uint8_t *meta, size_t len)
{
	struct node *n = ctx;
	if (n->membership)
		membership_set_meta(n->membership, meta, len);
}

static void on_left(void *ctx)
{
	struct node *n = ctx;
	ev_break(n->loop, EVBREAK_ALL);
}

static void on_drained(void *ctx)
{
	struct node *n = ctx;
	rk_info(n->lg, "node", "leaving the cluster");
	membership_leave(n->membership, on_left, n);
}

void node_shutdown(struct node *n)
{
	if (n->stopping)
		return;
	n->stopping = 1;
	server_drain(n->server, on_drained, n);
}

int node_start(struct ev_loop *loop, const struct node_config *cfg,
	       struct rk_logger *lg, struct node **out, char *err,
	       size_t errlen)
{
	*out = NULL;
	struct node *n = calloc(1, sizeof(*n));
	if (!n) {
		snprintf(err, errlen, "out of memory");
		return RK_ENOMEM;
	}
	n->loop = loop;
	n->cfg = cfg;
	n->lg = lg;
	struct store_config sc = {
		.data_dir = cfg->data_dir,
		.fsync = (enum rk_fsync)cfg->fsync,
		.fsync_interval_ms = (uint32_t)cfg->fsync_interval_ms,
		.segment_bytes = cfg->segment_bytes,
		.zstd_level = (int)cfg->zstd_level,
		.compact_min_bytes = cfg->compact_min_bytes,
		.compact_ratio_pct = (uint32_t)cfg->compact_ratio_pct,
		.tombstone_grace_ms = cfg->tombstone_grace_ms,
		.compact_step_records = (uint32_t)cfg->compact_step_records,
		.compact_backlog_bytes = 8u << 20,
	};
	int rc = store_open(&sc, lg, wall_ms(), &n->store, err, errlen);
	if (rc)
		goto fail;
	uint64_t id = store_node_id(n->store);
	snprintf(lg->tag, sizeof(lg->tag), "n%06" PRIx64, id >> 40);
	struct store_stats ss;
	store_get_stats(n->store, &ss);
	uint64_t recs = ss.replay.snapshot_records + ss.replay.log_records;
	rk_info(lg, "node",
		"replayed %" PRIu64 " records (%" PRIu64 " from snapshot, %" PRIu64
		" from %" PRIu64 " segments) in %" PRIu64 " ms (%.0f records/s); "
		"%" PRIu64 " keys",
		recs, ss.replay.snapshot_records, ss.replay.log_records,
		ss.replay.segments, ss.replay_ms,
		ss.replay_ms ? (double)recs * 1000.0 / (double)ss.replay_ms
			     : (double)recs,
		ss.keys);

	/* The listener binds first so that the advertised address is real
	 * (port 0 resolves here). */
	if ((rc = server_new(loop, cfg, n->store, NULL, lg, &n->server, err,
			     errlen)))
		goto fail;
	snprintf(n->advertise, sizeof(n->advertise), "%s",
		 cfg->advertise[0] ? cfg->advertise : server_address(n->server));
	if (!(n->peers = peers_new(loop, cfg, id, lg))) {
		rc = RK_ENOMEM;
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if ((rc = cluster_open(loop, cfg, id, n->advertise, n->peers, lg,
			       &n->cluster, err, errlen)))
		goto fail;
	server_set_cluster(n->server, n->cluster);
	if ((rc = membership_open(loop, cfg, id, server_address(n->server),
				  n->advertise, n->cluster, n->peers, lg,
				  &n->membership, err, errlen)))
		goto fail;
	cluster_set_callbacks(n->cluster, on_meta, NULL, n);
	server_set_peer_handler(n->server, on_peer_request, n);
	server_start(n->server);
	rk_info(lg, "node",
		"ringkvd %s node %016" PRIx64 " listening on %s (advertised "
		"%s), data %s, fsync=%s",
		RINGKV_VERSION, id, server_address(n->server), n->advertise,
		cfg->data_dir,
		cfg->fsync == RK_FSYNC_ALWAYS     ? "always"
		: cfg->fsync == RK_FSYNC_INTERVAL ? "interval"
						  : "never");
	*out = n;
	return 0;
fail:
	node_free(n);
	return rc;
}

void node_free(struct node *n)
{
	if (!n)
		return;
	/* Replies to our requests reference the parts below: fail them
	 * first, while everything still exists. */
	peers_free(n->peers);
	server_free(n->server);
	membership_free(n->membership);
	cluster_free(n->cluster);
	store_close(n->store);
	free(n);
}
