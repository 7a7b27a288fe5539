/* sim_paxos.h: the Paxos cluster program for the simulator, with clients
 * that record a history and a checker of Paxos safety after every event.
 *
 * Nodes 1..n_servers are ringkv nodes: each runs one struct paxos with the
 * real codec (every Paxos message goes through proto/paxos_wire as an
 * unreliable datagram: lost, duplicated, reordered as the links say), an
 * in-memory last-writer-wins store, and a disk (sim_disk) holding only
 * what was made durable: acceptor states, committed records and the clock's
 * upper bound.  Writes reach the disk after a simulated fsync delay
 * (group commit), and only then does the node call paxos_persisted(); a
 * kill loses what was not flushed, and a revived node rebuilds its store
 * and acceptor states from the disk.
 *
 * Nodes n_servers+1 .. n_servers+n_clients are clients.  Each runs one
 * operation at a time on one of n_keys keys ("k0".."k<n-1>", replicas
 * rf consecutive servers from key index + 1, the first being the primary):
 * cas with the value it last saw as expected, SERIAL reads, writes (a CAS
 * with IF_ANY), put_if_absent and delete_if, with values unique per client
 * (client * 1000000 + counter).  It sends each to a random server over a
 * reliable channel (the client's TCP connection); that server routes it to
 * the key's first replica that is up (route_primary) or runs it itself
 * when it is a replica, forwarding over a reliable channel.  Invocations
 * and completions go into a history in the JSON-lines format of
 * tests/lincheck/histories/README.md: "ok" for answers, "fail" for
 * UNAVAILABLE and OVERLOADED (nothing was proposed), "info" for timeouts,
 * contention timeouts and requests that never came back.
 *
 * The world (struct sim_paxos_world, the program's prog_ctx) watches every
 * proposal sent, every acceptance made durable and every commit sent, and
 * checks, as they happen:
 *   - one ballot carries one proposal (value, origin, base);
 *   - a proposal follows a decision that exists (its base);
 *   - per key and instance (the chain of decisions from the empty
 *     register: a proposal's instance is one more than the decision it
 *     follows), at most one (origin, value) is chosen - accepted by a
 *     durable majority - or committed;
 *   - (strict) a commit is sent only for a proposal a majority has
 *     durably accepted.
 * sim_paxos_invariant() reports the first violation to the simulator.
 */
#ifndef RK_SIM_PAXOS_H
#define RK_SIM_PAXOS_H

#include <stddef.h>
#include <stdint.h>

#include "paxos.h"
#include "sim.h"

enum {
	SIM_PAXOS_PEER = 10,	  /* a Paxos message (datagram) */
	SIM_PAXOS_REQ = 11,	  /* client -> server request (reliable) */
	SIM_PAXOS_FWD = 12,	  /* server -> proposer (reliable) */
	SIM_PAXOS_FWD_REPLY = 13, /* proposer -> server (reliable) */
	SIM_PAXOS_RESP = 14,	  /* server -> client (reliable) */
};

#define SIM_PAXOS_MAX_SERVERS 16
#define SIM_PAXOS_MAX_CLIENTS 32
#define SIM_PAXOS_MAX_KEYS 8

struct sim_paxos_opts {
	int n_servers;		    /* nodes 1..n_servers */
	int n_clients;		    /* the nodes after them */
	int n_keys;		    /* keys "k0".. */
	int rf;			    /* replicas per key */
	int route_primary;	    /* 1: to the first up replica; 0: any
				       replica proposes */
	uint32_t fsync_min_ms;	    /* simulated fsync delay, uniform in */
	uint32_t fsync_max_ms;	    /* [min, max] */
	uint32_t skew_max_ms;	    /* per-node clock offsets in [0, max] */
	struct paxos_config paxos;  /* id set per node */
	uint32_t op_deadline_ms;    /* proposer deadline per operation */
	uint32_t client_timeout_ms; /* a client gives up (info) */
	uint32_t think_max_ms;	    /* pause between a client's ops */
	uint64_t ops_until_ms;	    /* no new operation after this */
	int w_cas, w_read, w_write, w_pia, w_del; /* operation mix weights */
	int strict_commit_check; /* commit only what is durably chosen */
};

/* 5 servers, 6 clients, 4 keys, RF 3, routing on, fsync 0-3 ms, skew up
 * to 20 ms, ops until 4 s, mix 45/25/10/10/10, strict check on. */
void sim_paxos_opts_defaults(struct sim_paxos_opts *o);

struct sim_paxos_world;

/* A world for one simulation run; o is copied.  Returns 0, RK_EINVALID,
 * RK_ENOMEM. */
int sim_paxos_world_new(const struct sim_paxos_opts *o,
			struct sim_paxos_world **out);
void sim_paxos_world_free(struct sim_paxos_world *w);

/* The program; prog_ctx is the world (borrowed; must outlive the sim). */
extern const struct sim_program sim_paxos_program;

/* For sim_set_invariant (ctx: the world): -1 once a check failed. */
int sim_paxos_invariant(struct sim *sim, void *world);

/* The first violation, or NULL. */
const char *sim_paxos_violation(const struct sim_paxos_world *w);

/* The history so far (JSON lines). */
const char *sim_paxos_history(const struct sim_paxos_world *w, size_t *len);

/* Checks the history with the linearizability checker, key by key.
 * Returns 0 (every key linearizable), 1 (some key not: why says which and
 * the checker's explanation), 3 (undecided), or a negative code. */
int sim_paxos_check_history(const struct sim_paxos_world *w, char *why,
			    size_t cap);

struct sim_paxos_stats {
	uint64_t invoked, ok, fail, info; /* client operations */
	uint64_t applied, not_applied;	  /* CAS answers */
	uint64_t reads;			  /* SERIAL read answers */
	uint64_t by_status[32];		  /* answers by -status */
	uint64_t rtt_applied;		  /* sum of round trips ... */
	uint64_t rtt_applied_n;		  /* ... over applied answers */
	uint64_t rtt_other;		  /* ... over other ok answers */
	uint64_t rtt_other_n;
	uint64_t msgs[PAXOS_MSG_TYPE_MAX + 1]; /* Paxos messages sent */
	uint64_t proposals, chosen, commits;   /* seen by the checker */
	uint64_t instances;		       /* decisions, all keys */
	/* Summed over every node life (see struct paxos_stats). */
	uint64_t repairs, own_finished, own_seen, own_reproposed,
	    own_superseded, own_unknown, preempted, round_timeouts, prunes;
};
void sim_paxos_stats(const struct sim_paxos_world *w,
		     struct sim_paxos_stats *out);

/* The replicas of key index k (rf of them) into out. */
void sim_paxos_replicas(const struct sim_paxos_world *w, int k, uint64_t *out);

/* Node's paxos, or NULL while it is down or a client. */
struct paxos *sim_paxos_node(const struct sim *sim, int node);

#endif
