/* swim.h: SWIM membership with Lifeguard, as a pure state machine.
 *
 * Das, Gupta, Motivala, "SWIM: Scalable Weakly-consistent Infection-style
 * Process Group Membership Protocol" (DSN 2002), with the three refinements
 * of Dadgar, Phillips, Currey, "Lifeguard: Local Health Awareness for More
 * Accurate Failure Detection" (2018).  swim.c opens with the essay: what the
 * papers say, where we differ and why.
 *
 * The module touches no socket, clock, file or global PRNG (DESIGN.md).  Its
 * owner (node/ in the daemon, tests/sim in the simulator) supplies a runtime
 * vtable and feeds it inputs:
 *
 *   a UDP datagram arrives        -> swim_recv_udp()
 *   the timer fires               -> swim_tick(), then re-arm ONE timer at
 *                                    swim_next_deadline()
 *   a push-pull request arrives   -> swim_recv_sync(), send the reply back
 *   on TCP                           on the same connection (bodies are
 *                                    framed like every TCP message; accept
 *                                    up to cfg.max_sync_bytes)
 *   the reply to our send_sync()  -> swim_recv_sync_reply()
 *   operator: join / leave        -> swim_join(), swim_leave()
 *
 * After any input call the deadline may have moved: read
 * swim_next_deadline() again.  Outputs leave through the runtime: datagrams
 * (send_udp), push-pull requests (send_sync), events (on_event) and the
 * incarnation to persist (on_incarnation).
 *
 * Threading: none.  One struct swim is used by one thread.
 */
#ifndef RK_SWIM_H
#define RK_SWIM_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "log.h"
#include "swim_msg.h"

struct swim;

/* Static configuration.  swim_config_defaults() fills every timing with its
 * default; the caller then sets identity and addresses.  swim_new copies
 * everything it keeps. */
struct swim_config {
	uint64_t id; /* node id, non-zero; survives address change */
	const char *gossip_addr; /* "host:port" of our UDP socket (required) */
	const char *peer_addr;	 /* "host:port" for peer TCP, or "" */
	const char *client_addr; /* "host:port" for clients, or "" */
	uint32_t weight;	 /* ring weight, gossiped verbatim */
	const uint8_t *meta;	 /* opaque metadata, gossiped verbatim */
	size_t meta_len;	 /* <= SWIM_META_MAX */
	const char *cluster;	 /* cluster name; other clusters are dropped */
	uint64_t incarnation;	 /* starting incarnation: one above the last
				    one on_incarnation reported (0 on a
				    fresh data dir) */

	uint32_t period_ms;	     /* protocol period T: one probe each */
	uint32_t probe_timeout_ms;   /* direct ack wait before ping-req */
	uint32_t indirect_k;	     /* helpers asked to ping-req */
	double suspicion_mult;	     /* min suspicion = mult*max(1,log10 N)*T */
	uint32_t suspicion_max_mult; /* max suspicion = max_mult * min */
	uint32_t suspicion_k;	     /* independent suspicions that bring the
					timeout down to min (Lifeguard K) */
	uint32_t retransmit_mult;    /* lambda: an update is sent
					ceil(lambda*ln(N+1)) times */
	uint32_t gossip_ms;	     /* while updates are queued, push them
					this often ... */
	uint32_t gossip_fanout;	     /* ... to this many random members */
	uint32_t gossip_to_dead_ms;  /* members dead for less than this still
					get those pushes, to learn and refute */
	uint32_t push_pull_ms;	     /* anti-entropy push-pull period */
	uint32_t reconnect_ms;	     /* period of the ping to a dead member
					that lets partitions heal */
	uint32_t join_backoff_ms;    /* first join retry delay (doubles) */
	uint32_t join_backoff_max_ms; /* join retry delay cap */
	uint64_t tombstone_ms;	      /* dead/left members kept this long */
	uint32_t max_packet;	      /* UDP payload limit, bytes */
	uint32_t max_lhm;	      /* Lifeguard local health ceiling */
	uint32_t max_sync_bytes;      /* largest push-pull body accepted */
	uint32_t max_members;	      /* most members a push-pull may carry */
};

/* Fills cfg with zeros and every tuning default (see swim.c). */
void swim_config_defaults(struct swim_config *cfg);

/* A member as queries and events show it.  Strings and meta are borrowed
 * from the module: valid until the next input call (tick, recv_*, join,
 * leave, set_meta, free). */
struct swim_member {
	uint64_t id;		 /* node id */
	uint64_t incarnation;	 /* its incarnation as we know it */
	enum swim_state state;	 /* alive, suspect, dead or left */
	uint64_t state_since_ms; /* runtime time of the last state change */
	const char *gossip_addr; /* "host:port" */
	const char *peer_addr;	 /* "host:port" or "" */
	const char *client_addr; /* "host:port" or "" */
	uint32_t weight;	 /* ring weight */
	const uint8_t *meta;	 /* opaque metadata or NULL */
	size_t meta_len;	 /* bytes of meta */
	int is_self;		 /* 1 for this node's own record */
};

enum swim_event_type {
	SWIM_EV_JOINED = 1,  /* a member appeared, or came back after leaving */
	SWIM_EV_SUSPECT = 2, /* a member became suspect */
	SWIM_EV_DEAD = 3,    /* a member was declared dead (liveness only) */
	SWIM_EV_ALIVE = 4,   /* a suspect or dead member is alive again */
	SWIM_EV_LEFT = 5,    /* a member left gracefully */
	SWIM_EV_UPDATED = 6, /* addresses, weight or metadata changed */
	SWIM_EV_REMOVED = 7, /* a tombstone expired; the member is forgotten */
	SWIM_EV_JOIN_DONE = 8, /* we reached the cluster (member = self) */
};

/* Upper-case name ("DEAD"); "?" when unknown. */
const char *swim_event_name(int type);

struct swim_event {
	enum swim_event_type type;	  /* what happened */
	enum swim_state prev_state;	  /* the member's state before (LEFT for
					     a member we never knew) */
	const struct swim_member *member; /* borrowed, valid during the call */
};

/* The owner's side.  Every callback gets ctx.  Callbacks must not call
 * swim input functions; they may call queries (swim_members...). */
struct swim_runtime {
	void *ctx;			/* passed back; borrowed */
	const struct swim_codec *codec; /* &gossip_wire_codec; borrowed */
	const struct rk_logger *log;	/* the node's logger; NULL: silent */
	/* Monotonic milliseconds. */
	uint64_t (*now_ms)(void *ctx);
	/* 64 random bits (seeded in the simulator). */
	uint64_t (*random)(void *ctx);
	/* Send one datagram to "host:port".  Fire and forget: failure is
	 * loss.  bytes are valid only during the call. */
	void (*send_udp)(void *ctx, const char *addr, const uint8_t *bytes,
			 size_t len);
	/* Start a push-pull: connect to "host:port" over TCP, send bytes as
	 * one frame, and pass the reply frame to swim_recv_sync_reply().  On
	 * any failure do nothing: swim retries on its own timers. */
	void (*send_sync)(void *ctx, const char *addr, const uint8_t *bytes,
			  size_t len);
	/* A membership event; may be NULL. */
	void (*on_event)(void *ctx, const struct swim_event *ev);
	/* Our incarnation is now inc: persist it, and at the next start pass
	 * inc + 1 as swim_config.incarnation.  Called by swim_new for the
	 * starting value and before any packet carries a new one.  May be
	 * NULL (then a restart relies on refutation to climb back). */
	void (*on_incarnation)(void *ctx, uint64_t inc);
};

/* Counters since swim_new. */
struct swim_stats {
	uint64_t udp_sent;	   /* datagrams handed to send_udp */
	uint64_t udp_recv;	   /* datagrams passed to swim_recv_udp */
	uint64_t syncs_sent;	   /* push-pull requests sent */
	uint64_t syncs_recv;	   /* push-pull requests and replies merged */
	uint64_t drop_malformed;   /* rejected by the decoder */
	uint64_t drop_cluster;	   /* well-formed but another cluster */
	uint64_t drop_misdirected; /* PING for another node id; wrong type */
	uint64_t probes;	   /* direct probes started */
	uint64_t probe_failures;   /* probes with no ack, direct or indirect */
	uint64_t ping_reqs_sent;   /* indirect probe requests sent */
	uint64_t nacks_sent;	   /* as a helper, target did not answer */
	uint64_t nacks_recv;	   /* nacks for our probes */
	uint64_t suspicions;	   /* members we suspected after our probe */
	uint64_t suspect_events;   /* members that turned suspect in our view */
	uint64_t dead_declared;	   /* suspicion timers that expired here */
	uint64_t refutes;	   /* times we raised our incarnation */
	uint64_t updates_sent;	   /* piggy-backed updates sent */
	uint64_t updates_recv;	   /* piggy-backed updates received */
	uint32_t lhm; /* current Lifeguard local health multiplier */
};

/* Creates a node's membership state with itself alive.  cfg and rt are
 * copied.  Returns 0, RK_EINVALID (bad id, address, cluster name, meta or
 * timing), RK_ENOMEM.  The caller owns *out and frees it with swim_free. */
int swim_new(const struct swim_config *cfg, const struct swim_runtime *rt,
	     struct swim **out);

/* Frees s and everything it owns.  NULL is a no-op.  Sends nothing. */
void swim_free(struct swim *s);

/* Joins through seeds ("host:port" strings, copied; our own gossip address
 * is skipped): sends a push-pull to each, and retries with exponential
 * backoff until one answers or any other member reaches us.  With no seed
 * but ourselves we are the first node and the join is done at once.
 * Returns 0, RK_EINVALID (a malformed seed), RK_ENOMEM. */
int swim_join(struct swim *s, const char *const *seeds, size_t n);

/* True once the join is done (SWIM_EV_JOIN_DONE). */
int swim_joined(const struct swim *s);

/* Leaves gracefully: our record turns LEFT and is gossiped (also pushed at
 * once to a few members).  Keep feeding inputs until swim_leave_done() or a
 * few periods pass, then stop.  Returns 0 or RK_EINVALID if already left. */
int swim_leave(struct swim *s);

/* True once our LEFT record has been sent its full retransmit count. */
int swim_leave_done(const struct swim *s);

/* Changes our weight and metadata; raises the incarnation so it spreads.
 * Returns 0, RK_EINVALID (meta too long), RK_ENOMEM. */
int swim_set_meta(struct swim *s, uint32_t weight, const uint8_t *meta,
		  size_t meta_len);

/* Runs every timer due at now_ms(): probe, ping-req, suspicion, helper
 * nacks, join retry, push-pull, reconnect, tombstone expiry.  Harmless when
 * nothing is due.  Returns 0 (errors such as ENOMEM while sending are
 * counted and logged, never fatal). */
int swim_tick(struct swim *s);

/* The runtime time of the earliest pending timer (UINT64_MAX: none). */
uint64_t swim_next_deadline(const struct swim *s);

/* A datagram from the UDP socket.  from is the source "host:port", for logs
 * only (replies go to the sender's announced address).  Invalid and
 * foreign-cluster packets are dropped and counted.  Returns 0, or
 * RK_EPROTOCOL when the packet was dropped. */
int swim_recv_udp(struct swim *s, const char *from, const uint8_t *bytes,
		  size_t len);

/* A push-pull request read from TCP: merges it and appends our full state
 * to reply (one Packet body; the node frames it).  Returns 0, RK_EPROTOCOL
 * (malformed, wrong cluster: close the connection, send nothing),
 * RK_ENOMEM. */
int swim_recv_sync(struct swim *s, const char *from, const uint8_t *bytes,
		   size_t len, struct rk_buf *reply);

/* The reply to one of our send_sync() requests.  Returns 0, RK_EPROTOCOL,
 * RK_ENOMEM. */
int swim_recv_sync_reply(struct swim *s, const char *from, const uint8_t *bytes,
			 size_t len);

/* Our current incarnation (the value to persist). */
uint64_t swim_incarnation(const struct swim *s);

/* Our node id. */
uint64_t swim_self_id(const struct swim *s);

/* Number of members in the table (self and tombstones included). */
size_t swim_member_count(const struct swim *s);

/* Fills out[0, min(cap, count)) with a snapshot of the table (self first)
 * and returns the count.  Pointers borrowed as struct swim_member says. */
size_t swim_members(const struct swim *s, struct swim_member *out, size_t cap);

/* One member by id.  Returns 0 or RK_ENOT_FOUND. */
int swim_member_get(const struct swim *s, uint64_t id, struct swim_member *out);

/* Members we consider alive or suspect, self included: the N of the
 * log(N) formulas. */
size_t swim_size(const struct swim *s);

/* Counters. */
void swim_stats(const struct swim *s, struct swim_stats *out);

#endif
