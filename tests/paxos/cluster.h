/* cluster.h: a few paxos nodes in one test process, over a fake network
 * that delivers in waves (suite unit).
 *
 * Node i (1..CL_NODES) runs one struct paxos with a fake runtime: an
 * in-memory last-writer-wins store, persisted acceptor states kept as
 * AcceptorState bytes (so the codec runs), a fake clock the test moves.
 * Every message is encoded with proto/paxos_wire and decoded at delivery.
 *
 * Delivery is by waves: cl_wave() delivers every message queued so far,
 * in order; what they cause waits for the next wave.  A request wave and
 * its reply wave are one round trip, so an uncontended operation's waves
 * count its round trips.  Messages to node ids without a node (a phantom
 * peer the test plays) are only logged.  Persistence completes after each
 * delivery unless a node is in manual mode.
 */
#ifndef RK_TEST_PAXOS_CLUSTER_H
#define RK_TEST_PAXOS_CLUSTER_H

#include <stddef.h>
#include <stdint.h>

#include "paxos.h"

#define CL_NODES 5
#define CL_MAX_MSGS 20000
#define CL_MAX_REPLIES 256
#define CL_MAX_KEYS 16

/* A message as sent (decoded again for inspection). */
struct cl_msg {
	uint64_t from, to;
	uint8_t *bytes; /* owned encoding */
	size_t len;
	int type; /* enum paxos_msg_type */
	int wave; /* wave it was sent in */
	int delivered;
	int dropped;
};

/* A reply the node gave a client (value copied). */
struct cl_reply {
	uint64_t node;
	uint64_t token;
	struct paxos_result r;
	uint8_t val[64]; /* r.value.data points here */
	uint64_t at;	 /* fake time */
};

struct cl_rec {
	char key[32];
	int present;
	uint8_t val[64];
	size_t len;
	rk_ts ts;
};

struct cl_node {
	uint64_t id;
	int exists; /* has a paxos (else: a phantom id) */
	int up;	    /* is_up() answer */
	int manual; /* persistence completes only on cl_fsync() */
	struct paxos *px;
	struct rk_hlc hlc;
	struct cl_rec store[CL_MAX_KEYS];
	size_t n_store;
	/* persisted acceptor states, one AcceptorState encoding per key */
	uint8_t *persisted[CL_MAX_KEYS];
	size_t persisted_len[CL_MAX_KEYS];
	char persisted_key[CL_MAX_KEYS][32];
	size_t n_persisted;
	uint64_t last_token; /* last persist() token */
	uint64_t persist_calls;
	uint64_t prune_calls; /* persist() with NULL */
	struct rk_logger log;
};

/* Returns nonzero to drop m (decoded); may be NULL. */
typedef int (*cl_filter)(const struct cl_msg *cm, const struct paxos_msg *m);
/* Called before m is delivered to its node; may be NULL. */
typedef void (*cl_hook)(const struct cl_msg *cm, const struct paxos_msg *m);

struct cl {
	uint64_t now;
	struct cl_node nodes[CL_NODES + 1];
	struct cl_msg msgs[CL_MAX_MSGS];
	size_t n_msgs;
	size_t next_deliver;
	int wave;
	struct cl_reply replies[CL_MAX_REPLIES];
	size_t n_replies;
	cl_filter filter;
	cl_hook hook;
	uint64_t rng;
	int sent_by_type[PAXOS_MSG_TYPE_MAX + 1];
};

extern struct cl cl;
extern const uint64_t cl_rf3[3]; /* {1, 2, 3} */

/* Starts n nodes (ids 1..n) with cfg (NULL: defaults; id is set per node).
 * Clock at 1,000,000 ms. */
void cl_start(int n, const struct paxos_config *cfg);
void cl_stop(void);

/* Restarts node id from its persisted states (its store survives: it is
 * the node's durable data). */
void cl_restart(uint64_t id, const struct paxos_config *cfg);

/* Delivers one wave; returns the number of messages delivered. */
int cl_wave(void);
/* Waves until none is queued; returns the number of waves. */
int cl_settle(void);
/* Moves the clock to the earliest node deadline (at most to limit), ticks
 * every node, settles.  Returns 0 when nothing was pending before limit. */
int cl_advance(uint64_t limit);
/* Settles and advances until token has a reply or ms pass.  Returns the
 * reply or NULL. */
const struct cl_reply *cl_run(uint64_t token, uint64_t ms);

/* Completes node id's persistence. */
void cl_fsync(uint64_t id);

const struct cl_reply *cl_reply_of(uint64_t token);

/* Plain write into node id's store (last-writer-wins). */
void cl_store_put(uint64_t id, const char *key, const char *val, rk_ts ts);
/* Node id's record of key, or NULL. */
const struct cl_rec *cl_store_get(uint64_t id, const char *key);

/* Hands a message from `from` straight to node id (encoded and decoded). */
void cl_inject(uint64_t from, uint64_t id, const struct paxos_msg *m);

/* Decodes sent message i into *m; release the return value. */
void *cl_open(size_t i, struct paxos_msg *m);
/* Index of the first sent message at or after i of type (to: 0 = any),
 * or -1. */
long cl_find(size_t i, int type, uint64_t to);

struct paxos_value cl_str(const char *s);
int cl_value_is(const struct paxos_value *v, const char *s);
rk_ts cl_ts(uint64_t hlc, uint64_t node);

#endif
