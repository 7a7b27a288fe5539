/* sim.h: a deterministic discrete-event simulator of a ringkv cluster.
 *
 * Many nodes run in one process over a simulated network, on a virtual
 * clock, all randomness drawn from one seed: a run replays event for event
 * from its seed, the way FoundationDB and TigerBeetle test themselves.  The
 * simulator knows nothing about gossip, replication or Paxos: each node runs
 * a *program* (struct sim_program: boot/recv/tick/kill/free) that wraps the
 * pure protocol modules and turns their outputs into sim_send() and
 * sim_set_timer() calls.  tests/sim/sim_swim.c is the first program.
 *
 * Nodes are numbered 1..n (so node 3 logs as "n3").  Time is in virtual
 * milliseconds from 0.  Events are kept in a binary heap ordered by (time,
 * sequence number): ties break in insertion order, so nothing depends on
 * heap layout or on memory addresses.
 *
 * The network: every message is either a datagram (subject to loss,
 * duplication and reordering) or reliable (a TCP-like exchange: only
 * partitions and dead endpoints stop it).  Both get the link's delay,
 * uniform in [delay_min_ms, delay_max_ms], plus the slow-node delay of
 * either end.  Partitions are pairwise blocks and/or groups: a message
 * passes only between nodes in the same group.
 *
 * Crash and restart: sim_kill() frees a node's program state at once (in
 * flight messages to it are lost on arrival); sim_revive() boots it again
 * with only its disk (sim_disk), which survives kills.
 *
 * Every delivered message folds into a running trace hash, so a test can
 * assert that one seed replays identically.
 */
#ifndef RK_SIM_H
#define RK_SIM_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "log.h"

struct sim;

/* How one direction of a link treats messages. */
struct sim_link {
	double drop;	       /* datagram loss probability */
	double dup;	       /* datagram duplication probability */
	double reorder;	       /* probability of an extra random delay */
	uint32_t reorder_ms;   /* that extra delay, uniform in [0, ms] */
	uint32_t delay_min_ms; /* one-way delay, uniform in [min, max] */
	uint32_t delay_max_ms;
};

/* A node's protocol stack.  The simulator calls it; it calls back with
 * sim_send, sim_set_timer, sim_now, sim_node_rand, sim_logger, sim_disk. */
struct sim_program {
	const char *name; /* for logs */
	/* Boots node (fresh, or again after a kill: its disk tells).  Sets
	 * *state to the node's program state.  Returns 0 or a negative
	 * RK_E* code (the node stays down). */
	int (*boot)(struct sim *sim, int node, void *prog_ctx, void **state);
	/* A message from node from on channel arrived; p is valid only
	 * during the call. */
	void (*recv)(void *state, int from, int channel, const uint8_t *p,
		     size_t n);
	/* The node's timer (sim_set_timer) fired. */
	void (*tick)(void *state);
	/* Crash: drop all volatile state without sending anything. */
	void (*kill)(void *state);
	/* Orderly teardown at sim_free. */
	void (*free)(void *state);
};

struct sim_config {
	int n_nodes;			   /* nodes 1..n_nodes */
	uint64_t seed;			   /* all randomness comes from it */
	const struct sim_program *program; /* what every node runs */
	void *program_ctx;		   /* passed to boot; borrowed */
	struct sim_link link;		   /* default for every link */
	int boot_all;			   /* boot every node at t = 0 */
	int log_level;			   /* node loggers' level */
};

/* Defaults: 1-5 ms delay, no loss, every node booted at t = 0, log level
 * from RINGKV_SIM_LOG (error..trace; default warn). */
void sim_config_defaults(struct sim_config *cfg);

/* Creates the simulation (and boots the nodes when boot_all).  Returns 0,
 * RK_EINVALID, RK_ENOMEM, or a boot error.  Caller frees with sim_free. */
int sim_new(const struct sim_config *cfg, struct sim **out);

/* Frees every node (program free) and pending message.  NULL: no-op. */
void sim_free(struct sim *sim);

/* ---- for programs ---------------------------------------------------- */

/* Virtual milliseconds since the start. */
uint64_t sim_now(const struct sim *sim);

/* 64 random bits from node's own stream (seeded from the sim seed, the
 * node and its boot count). */
uint64_t sim_node_rand(struct sim *sim, int node);

/* Sends n bytes (copied) from node from to node to on channel.  reliable:
 * TCP-like (no loss, duplication or reordering).  Dropped silently when
 * from is down or to is out of range.  Returns 0 or RK_ENOMEM. */
int sim_send(struct sim *sim, int from, int to, int channel, int reliable,
	     const uint8_t *p, size_t n);

/* Arms node's one timer at virtual time at (replacing the previous one);
 * UINT64_MAX disarms it; a time in the past fires at once. */
void sim_set_timer(struct sim *sim, int node, uint64_t at);

/* The node's logger: tag "n<node>", sink prefixed with virtual time. */
const struct rk_logger *sim_logger(const struct sim *sim, int node);

/* The node's disk: survives sim_kill.  Owned by the sim. */
struct rk_buf *sim_disk(struct sim *sim, int node);

/* The node's program state, NULL while down. */
void *sim_node_state(const struct sim *sim, int node);

/* ---- for tests ------------------------------------------------------- */

int sim_size(const struct sim *sim);
uint64_t sim_seed(const struct sim *sim);
int sim_is_up(const struct sim *sim, int node);
/* How many times node has booted (a new life begins at each). */
uint32_t sim_boots(const struct sim *sim, int node);

/* Test-side randomness (a stream of its own). */
uint64_t sim_rand(struct sim *sim);
double sim_rand_double(struct sim *sim);

/* Runs events up to now + ms (the clock ends exactly there).  Returns 0, or
 * the invariant checker's nonzero result when it failed. */
int sim_run_for(struct sim *sim, uint64_t ms);

/* Runs until pred(sim, ctx) is true, checked every check_ms of virtual
 * time (sim_set_check_interval, default 10 ms), or timeout_ms passed.
 * Returns 1 when pred held, 0 on timeout, or the invariant checker's
 * negative result. */
int sim_run_until(struct sim *sim, int (*pred)(struct sim *, void *), void *ctx,
		  uint64_t timeout_ms);
void sim_set_check_interval(struct sim *sim, uint64_t ms);

/* Called after every event; a nonzero return stops the run and is what
 * sim_run_* return (use a negative value).  NULL removes it. */
void sim_set_invariant(struct sim *sim, int (*check)(struct sim *, void *),
		       void *ctx);

/* Crashes node.  Returns 0, or RK_EINVALID when out of range or down. */
int sim_kill(struct sim *sim, int node);

/* Boots a down node with its disk.  Returns 0, RK_EINVALID when up, or the
 * program's boot error. */
int sim_revive(struct sim *sim, int node);

/* Blocks both directions between a and b. */
void sim_partition(struct sim *sim, int a, int b);
/* Puts node in group g (all start in group 0); messages pass only within a
 * group.  sim_partition_sets is the usual two-sided split. */
void sim_set_group(struct sim *sim, int node, int group);
void sim_partition_sets(struct sim *sim, const int *side_a, size_t na);
/* Removes every block and group. */
void sim_heal_all(struct sim *sim);

/* The default link, and one directed link a -> b overriding it. */
void sim_set_default_link(struct sim *sim, const struct sim_link *l);
int sim_set_link(struct sim *sim, int a, int b, const struct sim_link *l);

/* Delays every message to and from node by ms (a CPU-starved node). */
void sim_set_slow(struct sim *sim, int node, uint32_t ms);

/* Running hash of every delivered message (time, ends, channel, bytes). */
uint64_t sim_trace_hash(const struct sim *sim);

/* Per-node message counters. */
struct sim_node_stats {
	uint64_t sent;	     /* messages the node sent */
	uint64_t bytes_sent; /* their bytes */
	uint64_t delivered;  /* messages delivered to it */
	uint64_t lost;	     /* its messages lost: drop, partition, down */
};
void sim_node_stats(const struct sim *sim, int node,
		    struct sim_node_stats *out);

/* Total events processed (a cost measure). */
uint64_t sim_events(const struct sim *sim);

#endif
