/* sim_swim.h: the SWIM node program for the simulator.
 *
 * Each node runs one struct swim with the real protobuf codec
 * (gossip_wire_codec), so every simulated datagram and push-pull is encoded
 * and decoded.  Node i has id i and gossip address
 * "10.0.<i/256>.<i%256>:7946"; any port at that host reaches node i.
 * Datagrams travel as unreliable messages on channel SIM_SWIM_UDP; a
 * push-pull is a reliable request (SIM_SWIM_SYNC) answered by a reliable
 * reply (SIM_SWIM_SYNC_REPLY), as the node's TCP exchange is.  The node's
 * disk holds its last incarnation (8 bytes), as node/ persists it; a
 * revived node starts one above it.
 */
#ifndef RK_SIM_SWIM_H
#define RK_SIM_SWIM_H

#include <stddef.h>
#include <stdint.h>

#include "sim.h"
#include "swim.h"

enum {
	SIM_SWIM_UDP = 0,	 /* a datagram */
	SIM_SWIM_SYNC = 1,	 /* push-pull request (reliable) */
	SIM_SWIM_SYNC_REPLY = 2, /* push-pull reply (reliable) */
};

/* What every node gets.  Set it up with sim_swim_opts_defaults. */
struct sim_swim_opts {
	struct swim_config cfg; /* timings and cluster; id, addresses and
				   incarnation are set per node */
	int seeds[8];		/* nodes whose addresses each node joins */
	int n_seeds;		/* 0: do not join on boot */
	int persist;		/* keep the incarnation on the disk */
	/* Every swim event, with the node that saw it; may be NULL. */
	void (*on_event)(void *ctx, struct sim *sim, int node,
			 const struct swim_event *ev);
	void *event_ctx; /* passed to on_event */
	/* Last word on a node's config before swim_new; may be NULL. */
	void (*configure)(void *ctx, int node, struct swim_config *cfg);
};

/* Default swim timings, cluster "sim", seed node 1, persistence on. */
void sim_swim_opts_defaults(struct sim_swim_opts *o);

/* The program; its prog_ctx is a struct sim_swim_opts (borrowed, must
 * outlive the sim). */
extern const struct sim_program sim_swim_program;

/* Node's swim, or NULL while it is down. */
struct swim *sim_swim(const struct sim *sim, int node);

/* Re-arms node's timer after a test called one of its swim input
 * functions (swim_leave, swim_join...) directly. */
void sim_swim_poke(struct sim *sim, int node);

/* Node i's gossip address into buf. */
void sim_swim_addr(int node, char *buf, size_t n);

/* The node at a gossip address, or 0. */
int sim_swim_node_of(const char *addr);

/* Node observer's view of node subject: its state, or -1 when unknown. */
int sim_swim_state(const struct sim *sim, int observer, int subject);

/* True when every up node other than subject sees subject in state st. */
int sim_swim_all_see(const struct sim *sim, int subject, enum swim_state st);

/* True when every up node sees every other up node alive and every down
 * node not alive (dead, left or unknown). */
int sim_swim_converged(const struct sim *sim);

/* sim_swim_converged as a sim_run_until predicate. */
int sim_swim_pred_converged(struct sim *sim, void *ctx);

/* Creates an n-node simulation running swim with o (borrowed; must outlive
 * the sim) over link (NULL: the default), boots every node and runs until
 * the views converge, checking every max(10, n) ms, for at most timeout_ms.
 * Returns 0; RK_ETIMEOUT when they did not converge (*out is still set, for
 * the caller to free); or sim_new's error (*out NULL). */
int sim_swim_cluster(struct sim **out, int n, uint64_t seed,
		     struct sim_swim_opts *o, const struct sim_link *link,
		     uint64_t timeout_ms);

#endif
