/* swim.c: SWIM failure detection and membership, with Lifeguard.
 *
 * THE PAPER'S ALGORITHM (Das, Gupta, Motivala, DSN 2002).  Every protocol
 * period T each member probes one other member with a PING.  No ACK within
 * the probe timeout, and it asks k other members to probe the target for it
 * (PING-REQ); they ping the target and forward its ACK.  No ACK by the end
 * of the period, direct or indirect, and the target is not declared dead but
 * *suspect*: suspicion spreads, and a suspect that is alive hears about it
 * and *refutes* by gossiping an ALIVE record with a higher incarnation
 * number.  Only a member raises its own incarnation, so the record with the
 * higher incarnation is always the newer news about that member.  A suspect
 * not refuted within the suspicion timeout is declared DEAD.  Targets are
 * chosen round-robin over a list shuffled once per round, which bounds the
 * time until a failed member is first probed by any given member.  Updates
 * (alive, suspect, dead, with incarnation) are not sent on their own: they
 * ride piggy-backed on pings, acks and ping-reqs, infection style, each
 * retransmitted about lambda*log(N) times, so the per-member load stays
 * constant as N grows and dissemination takes O(log N) periods.
 *
 * LIFEGUARD (Dadgar, Phillips, Currey, 2018) observed that most false
 * positives come from the *prober* being slow (CPU starvation, GC pauses,
 * overload), not the probed, and added three refinements, all here:
 *  - Local Health Aware Probe.  Each member keeps a Local Health Multiplier
 *    (LHM, 0..max_lhm).  A failed probe raises it (by the number of NACKs we
 *    expected from ping-req helpers but did not get, or by one when there
 *    were no helpers), refuting a suspicion about ourselves raises it, and a
 *    successful probe lowers it.  The probe period and probe timeout are
 *    multiplied by (LHM+1): a struggling member probes less often and waits
 *    longer before it accuses anybody.
 *  - NACKs make that signal local: a ping-req helper that gets no ACK from
 *    the target within 80% of its probe timeout sends a NACK back.  A prober
 *    that receives its NACKs knows its network works and the target is the
 *    problem; missing NACKs point at itself.
 *  - Local Health Aware Suspicion.  The suspicion timeout starts at a
 *    maximum and falls, on a log scale, toward a minimum as independent
 *    suspicions of the same member arrive (the dogpile rule): with K or more
 *    distinct suspecters it is the minimum
 *        min = suspicion_mult * max(1, log10 N) * T,
 *        max = suspicion_max_mult * min,
 *        timeout(c) = max(min, max - (max - min) * log(c+1) / log(K+1)).
 *    One slow member alone can then only start a long suspicion, which the
 *    suspect has ample time to refute.  We also multiply our own suspicion
 *    timeouts by (LHM+1), which Lifeguard does not: a member that knows it
 *    is unwell waits longer before it declares anybody dead, and a healthy
 *    one (LHM 0) is unaffected.  In the simulator a CPU-starved member
 *    (2 s each way) otherwise buried healthy members in its own view: being
 *    dead in everyone else's view much of the time, it hears their
 *    refutations late.
 *  - Buddy system.  A PING to a member we suspect carries that suspicion
 *    first in its piggy-back, so the suspect learns of it from the one
 *    member most likely to reach it, and refutes at once.  We do the same
 *    on every packet addressed to a member we suspect (ACKs of its pings,
 *    GOSSIP pushes), not only on our PINGs: a suspecter cut off when it
 *    suspected spends the suspicion's transmissions into the void, and
 *    with a high local health its own probes come several periods apart,
 *    so after the heal the suspect's next PING to it is the earliest
 *    chance to tell it.
 *
 * WHERE WE DIFFER, AND WHY.
 *  - Graceful leave: a LEFT state, not a dead record sent by the leaver.
 *    Leave must not be confused with death downstream (DESIGN.md: a dead node
 *    still owns its ring ranges, a left one does not).  LEFT beats DEAD at
 *    equal incarnation.
 *  - Tombstones: DEAD and LEFT members stay in the table for tombstone_ms
 *    (default one hour) so a stale ALIVE record with the old incarnation,
 *    still circulating, cannot revive them.  Only a higher incarnation can,
 *    which only the member itself can produce: a restarted node.
 *  - Incarnations survive restarts: the owner persists what on_incarnation
 *    reports and starts one above it.  Should that be lost, the restarted
 *    node still climbs back: the first push-pull shows it its own old record
 *    and it refutes above it.
 *  - Full-state push-pull over TCP (as HashiCorp memberlist does, not in
 *    the paper): on join, through seed addresses retried with exponential
 *    backoff, and every push_pull_ms to a random member so views re-merge
 *    after anything gossip missed.  As in memberlist, a DEAD record learned
 *    by push-pull is taken as SUSPECT, so a member that a partitioned side
 *    buried gets a chance to refute instead of being killed by old news.
 *  - Reconnect: every reconnect_ms we ping one random DEAD member; if it
 *    answers, we push-pull with it.  Without this, two sides of a healed
 *    partition that buried each other would never talk again (dead members
 *    are not probed).  Serf does the same on a slower timer; we want views
 *    to re-merge within seconds.
 *  - Identity is the 64-bit node id, not the address: a member that comes
 *    back on another address with the same id and a higher incarnation
 *    updates its addresses.  A PING names the id it is meant for, and a
 *    node with another id at that address does not answer it.
 *  - A suspect record names every suspecter we know of, not just one as in
 *    memberlist, so a member that hears it learns the whole dogpile at
 *    once instead of one confirmation per message; the K confirmations
 *    then reach everybody about as fast as the suspicion itself.
 *  - A member that hears of a new suspicion probes the suspect next, out of
 *    turn, with probability (K+1)/(N-2): about K+1 independent verdicts
 *    arrive within a period or two at any N, where waiting for round-robin
 *    turns could take up to 2N-1 periods.  The expected extra load is K+1
 *    probes per suspicion, whatever N is.
 *  - Dissemination rides on pings, acks, ping-reqs and nacks as in the
 *    paper, and also, as memberlist does with its gossip timer, while
 *    anything is queued every gossip_ms the queue is pushed in a GOSSIP
 *    packet to gossip_fanout random members (alive, suspect, or dead for
 *    under gossip_to_dead_ms, so the recently buried learn it and refute).
 *    A member whose last push is older than gossip_ms pushes news at once,
 *    so it spreads in network round trips rather than periods.  Every
 *    update is still sent at most ceil(lambda*ln(N+1)) times, whichever
 *    packet carries it, so the bytes per update are what piggy-backing
 *    alone would send, and nothing extra is sent when nothing is queued.
 *    Piggy-backing alone took 4-5 periods to reach 100 members, which with
 *    the suspicion minimum put dead-everywhere at N = 100 near 15 s.
 *  - A suspect, dead or left record carries no addresses (the receiver
 *    knows them, or ignores the record), which keeps packets small.  The
 *    queue is ordered by transmissions so far, then newest first, like
 *    memberlist's.
 *  - The minimum suspicion is 3 (memberlist: 4) periods times
 *    max(1, log10 N), for the detection targets (see
 *    DEFAULT_SUSPICION_MULT).
 *  - Metadata (ring weight and an opaque blob up to 512 bytes) rides on
 *    alive records; changing it raises the incarnation.
 *  - Cluster name in every packet; foreign packets are dropped and counted.
 *  - Sequential probing: one probe in flight, the next starts when the
 *    (scaled) period ends, as in the paper and memberlist.
 *
 * NOTHING HERE TOUCHES I/O: time, randomness, sending, events and
 * persistence go through struct swim_runtime; bytes go through its codec.
 */
#include "swim.h"

#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"

/* ---- tuning ---------------------------------------------------------- */

/* The paper's and memberlist's protocol period: one probe per second keeps
 * per-member load negligible and detection within seconds. */
#define DEFAULT_PERIOD_MS 1000u
/* Half the period: a LAN round trip is far below it, and what is left of
 * the period is enough for a ping-req round through helpers. */
#define DEFAULT_PROBE_TIMEOUT_MS 500u
/* memberlist's IndirectChecks: three independent paths make a false
 * failure at 5% loss (1 - 0.95^4 per path) about 0.7% of failed directs. */
#define DEFAULT_INDIRECT_K 3u
/* Minimum suspicion 3 s at N <= 10, 6 s at N = 100, 9 s at N = 1000: far
 * above a refutation round trip (buddy ping + refute + gossip, about a
 * period), and reached only with K independent suspecters.  memberlist
 * uses 4; with 4 the time from a kill to dead-everywhere at N = 100 reached
 * 14-16 s in the simulator (first probe of the victim alone has an
 * exponential tail: e^-6 that nobody probes it for 6 s), against a 15 s
 * target; with 3 it stays under 13 s. */
#define DEFAULT_SUSPICION_MULT 3.0
/* memberlist's SuspicionMaxTimeoutMult: a lone suspecter waits 6x longer. */
#define DEFAULT_SUSPICION_MAX_MULT 6u
/* Lifeguard's K: as many independent suspecters as helpers we ask. */
#define DEFAULT_SUSPICION_K 3u
/* memberlist's RetransmitMult (lambda), but over ln rather than log10:
 * ceil(4 ln(N+1)) sends an update 8 times at N = 5, 19 at N = 100, 28 at
 * N = 1000.  memberlist's 4 at N = 5 lost dead records to members that
 * happened to talk to nobody who still carried them. */
#define DEFAULT_RETRANSMIT_MULT 4u
/* memberlist's GossipInterval; 2 of its GossipNodes' 3 sufficed in the
 * simulator (see the essay). */
#define DEFAULT_GOSSIP_MS 200u
#define DEFAULT_GOSSIP_FANOUT 2u
/* memberlist's GossipToTheDeadTime. */
#define DEFAULT_GOSSIP_TO_DEAD_MS 30000u
/* memberlist's PushPullInterval. */
#define DEFAULT_PUSH_PULL_MS 30000u
/* Partitions must re-merge within seconds of healing; one ping to a dead
 * member every 5 s is cheap. */
#define DEFAULT_RECONNECT_MS 5000u
/* Join retries: 1 s, 2 s, 4 s ... up to 30 s, never a fixed sleep. */
#define DEFAULT_JOIN_BACKOFF_MS 1000u
#define DEFAULT_JOIN_BACKOFF_MAX_MS 30000u
/* Stale gossip is gone within seconds, push-pull within minutes; an hour
 * of tombstone outlives both with room to spare. */
#define DEFAULT_TOMBSTONE_MS (3600ull * 1000ull)
/* Below a 1500-byte Ethernet MTU with IP/UDP headers and tunnels. */
#define DEFAULT_MAX_PACKET 1400u
/* memberlist's AwarenessMaxMultiplier: at most 9x slower probing. */
#define DEFAULT_MAX_LHM 8u
/* TESTING.md's frame limit. */
#define DEFAULT_MAX_SYNC_BYTES (16u << 20)
/* A push-pull may describe this many members at most. */
#define DEFAULT_MAX_MEMBERS 65536u

/* Lifeguard: a helper sends its NACK at 80% of its probe timeout, so the
 * NACK reaches the prober before the prober's period ends. */
#define NACK_PERCENT 80u
/* Concurrent ping-reqs we help with; more are dropped (and the requester
 * sees a missing NACK). */
#define MAX_RELAYS 64u
/* Most updates piggy-backed in one datagram (a 1400-byte packet holds
 * about 20 alive records). */
#define MAX_PIGGYBACK 128u
/* Cap on the transmit limit, whatever lambda and N are. */
#define TX_MAX 64u
/* Cap on Lifeguard's K. */
#define MAX_SUSPICION_K 16u
/* Largest UDP payload; what we accept from peers with larger packets. */
#define UDP_MAX_PAYLOAD 65507u
/* Most updates in one datagram we accept. */
#define UDP_MAX_UPDATES 4096u
/* memberlist's pushPullScaleThreshold: above 32 members push-pull slows
 * down by log2(N/32)+1 so total push-pull traffic stays bounded. */
#define PUSH_PULL_SCALE_THRESHOLD 32u
/* Pings sent at once by swim_leave to start the LEFT record spreading. */
#define LEAVE_FANOUT 3u
/* Smallest piggy-back record: stop filling a packet below this room. */
#define MIN_UPDATE_BYTES 24u
/* Queue entries one packet looks at, at most: filling stays O(1) even when
 * a long backlog holds records too big for the room left. */
#define SCAN_MAX 512u

#define NEVER UINT64_MAX
#define MODULE "gossip"

/* ---- state ----------------------------------------------------------- */

/* A suspicion we hold about one member (Lifeguard's dogpile timer). */
struct suspicion {
	uint64_t start;	   /* when we began suspecting */
	uint64_t min_ms;   /* timeout once k confirmations are in */
	uint64_t max_ms;   /* timeout with no confirmation */
	uint32_t k;	   /* confirmations that bring it down to min_ms */
	uint32_t n;	   /* independent confirmations so far */
	uint64_t deadline; /* start + timeout(n) */
	size_t pos;	   /* index in swim.suspects */
	uint64_t who[];	   /* who[0] first suspecter, then n confirmers */
};

/* One member, self included. */
struct member {
	uint64_t id;		 /* node id: the table key */
	uint64_t inc;		 /* incarnation as we know it */
	enum swim_state state;	 /* alive, suspect, dead, left */
	uint64_t since;		 /* now_ms() of the last state change */
	char *blob;		 /* owned: gossip\0peer\0client\0 then meta */
	const char *gossip_addr; /* into blob */
	const char *peer_addr;	 /* into blob; "" when unknown */
	const char *client_addr; /* into blob; "" when unknown */
	const uint8_t *meta;	 /* into blob; NULL when meta_len == 0 */
	size_t meta_len;	 /* bytes of meta */
	uint32_t weight;	 /* ring weight */
	size_t idx;		 /* position in swim.members */
	int bc_tx;		 /* transmissions of the queued record, or -1 */
	struct member *bc_prev;	 /* neighbours in swim.bc[bc_tx] */
	struct member *bc_next;
	struct suspicion *susp; /* owned; non-NULL exactly while SUSPECT */
};

/* Our probe in flight (one at a time). */
struct probe {
	bool active;	      /* waiting for an ack */
	bool indirect_sent;   /* ping-reqs are out */
	uint64_t target_id;   /* whom we probe (looked up again: it may go) */
	uint64_t seq;	      /* sequence number the ack must echo */
	uint64_t indirect_at; /* when to send ping-reqs */
	uint64_t deadline;    /* end of the probe: suspect if no ack */
	uint32_t nacks_expected; /* helpers asked */
	uint32_t nacks;		 /* NACKs received */
};

/* A ping-req we are helping with. */
struct relay {
	uint64_t seq;	     /* our PING's sequence number to the target */
	uint64_t origin_seq; /* the requester's, echoed in ACK/NACK */
	uint64_t nack_at;    /* when to NACK if the target is silent */
	uint64_t expire;     /* when to forget */
	bool nack_sent;	     /* NACK already sent */
	char origin_addr[SWIM_ADDR_MAX + 1]; /* the requester's gossip addr */
};

struct swim {
	struct swim_config cfg; /* copy; strings point into our copies */
	struct swim_runtime rt; /* copy of the owner's vtable */
	char *cluster;		/* owned copy of cfg.cluster */
	struct member *self;	/* our record, also in the table */

	struct member **members; /* owned: every member, probe order */
	size_t n_members;	 /* entries in members */
	size_t cap_members;	 /* capacity of members */
	size_t probe_idx;	 /* next position to probe in members */
	struct member **tab;	 /* owned: open-addressing index by id */
	size_t tab_cap;		 /* power of two, > 2 * n_members */
	size_t n_live;		 /* alive + suspect, self included */
	size_t n_dead;		 /* DEAD tombstones */

	struct member *bc[TX_MAX]; /* broadcast queue: bucket per tx count */
	struct member **suspects;  /* owned: members with a suspicion */
	size_t n_suspects;	   /* entries in suspects */
	size_t cap_suspects;	   /* capacity of suspects */

	struct probe probe;		 /* our probe in flight */
	struct relay relays[MAX_RELAYS]; /* ping-reqs we help with */
	size_t n_relays;		 /* used entries of relays */
	uint64_t seq;			 /* last sequence number used */
	uint32_t lhm;			 /* Lifeguard local health */

	uint64_t next_probe_at; /* start of our next probe */
	uint64_t hurry_id;	/* a new suspect to probe next, or 0 */
	uint64_t gossip_at;	/* next push of queued updates */
	uint64_t push_pull_at;	/* next anti-entropy push-pull */
	uint64_t reconnect_at;	/* next ping to a dead member */
	uint64_t recon_seq;	/* that ping's sequence number, 0: none */
	uint64_t recon_id;	/* and its target */
	uint64_t gc_at;		/* next tombstone sweep */

	char **seeds;	       /* owned: join seeds, self excluded */
	size_t n_seeds;	       /* entries in seeds */
	bool join_active;      /* still retrying seeds */
	bool joined;	       /* JOIN_DONE was reported */
	uint64_t join_at;      /* next join attempt */
	uint32_t join_backoff; /* delay before the attempt after that */
	bool leaving;	       /* swim_leave was called */

	struct rk_buf out; /* owned: datagram encode scratch */
	struct swim_update ups[MAX_PIGGYBACK + 1]; /* piggy-back scratch */
	struct member *picked[MAX_PIGGYBACK];	   /* queue entries in ups */
	struct swim_stats stats;		   /* counters */
};

/* ---- small helpers --------------------------------------------------- */

static uint64_t now_ms(const struct swim *s)
{
	return s->rt.now_ms(s->rt.ctx);
}

/* Uniform-enough in [0, n); n > 0. */
static uint64_t rand_below(struct swim *s, uint64_t n)
{
	return (uint64_t)(((__uint128_t)s->rt.random(s->rt.ctx) * n) >> 64);
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

static const char *nz(const char *p)
{
	return p ? p : "";
}

static char *dup_str(const char *p)
{
	size_t n = strlen(p) + 1;
	char *d = malloc(n);
	if (d)
		memcpy(d, p, n);
	return d;
}

const char *swim_event_name(int type)
{
	static const char *const names[] = {"?",       "JOINED",  "SUSPECT",
					    "DEAD",    "ALIVE",	  "LEFT",
					    "UPDATED", "REMOVED", "JOIN_DONE"};
	if (type < 1 || type > SWIM_EV_JOIN_DONE)
		return "?";
	return names[type];
}

void swim_config_defaults(struct swim_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->peer_addr = "";
	cfg->client_addr = "";
	cfg->weight = 1;
	cfg->period_ms = DEFAULT_PERIOD_MS;
	cfg->probe_timeout_ms = DEFAULT_PROBE_TIMEOUT_MS;
	cfg->indirect_k = DEFAULT_INDIRECT_K;
	cfg->suspicion_mult = DEFAULT_SUSPICION_MULT;
	cfg->suspicion_max_mult = DEFAULT_SUSPICION_MAX_MULT;
	cfg->suspicion_k = DEFAULT_SUSPICION_K;
	cfg->retransmit_mult = DEFAULT_RETRANSMIT_MULT;
	cfg->gossip_ms = DEFAULT_GOSSIP_MS;
	cfg->gossip_fanout = DEFAULT_GOSSIP_FANOUT;
	cfg->gossip_to_dead_ms = DEFAULT_GOSSIP_TO_DEAD_MS;
	cfg->push_pull_ms = DEFAULT_PUSH_PULL_MS;
	cfg->reconnect_ms = DEFAULT_RECONNECT_MS;
	cfg->join_backoff_ms = DEFAULT_JOIN_BACKOFF_MS;
	cfg->join_backoff_max_ms = DEFAULT_JOIN_BACKOFF_MAX_MS;
	cfg->tombstone_ms = DEFAULT_TOMBSTONE_MS;
	cfg->max_packet = DEFAULT_MAX_PACKET;
	cfg->max_lhm = DEFAULT_MAX_LHM;
	cfg->max_sync_bytes = DEFAULT_MAX_SYNC_BYTES;
	cfg->max_members = DEFAULT_MAX_MEMBERS;
}

/* ---- member table ---------------------------------------------------- */

static size_t tab_home(const struct swim *s, uint64_t id)
{
	uint64_t z = id + 0x9e3779b97f4a7c15ull;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return (size_t)(z ^ (z >> 31)) & (s->tab_cap - 1);
}

static struct member *lookup(const struct swim *s, uint64_t id)
{
	for (size_t i = tab_home(s, id);; i = (i + 1) & (s->tab_cap - 1)) {
		struct member *m = s->tab[i];
		if (!m || m->id == id)
			return m;
	}
}

static void tab_put(struct swim *s, struct member *m)
{
	size_t i = tab_home(s, m->id);
	while (s->tab[i])
		i = (i + 1) & (s->tab_cap - 1);
	s->tab[i] = m;
}

/* Backward-shift deletion keeps probe chains intact without markers. */
static void tab_del(struct swim *s, const struct member *m)
{
	size_t mask = s->tab_cap - 1;
	size_t i = tab_home(s, m->id);
	while (s->tab[i] != m)
		i = (i + 1) & mask;
	s->tab[i] = NULL;
	for (size_t j = (i + 1) & mask; s->tab[j]; j = (j + 1) & mask) {
		size_t k = tab_home(s, s->tab[j]->id);
		/* Move tab[j] into the hole unless its home lies in (i, j]. */
		bool stays = (i <= j) ? (i < k && k <= j) : (i < k || k <= j);
		if (!stays) {
			s->tab[i] = s->tab[j];
			s->tab[j] = NULL;
			i = j;
		}
	}
}

/* Makes room for one more member.  Returns 0 or RK_ENOMEM. */
static int table_reserve(struct swim *s)
{
	if (s->n_members == s->cap_members) {
		size_t cap = s->cap_members ? 2 * s->cap_members : 16;
		struct member **p = realloc(s->members, cap * sizeof(*p));
		if (!p)
			return RK_ENOMEM;
		s->members = p;
		s->cap_members = cap;
	}
	if (2 * (s->n_members + 1) > s->tab_cap) {
		size_t cap = s->tab_cap ? 2 * s->tab_cap : 32;
		struct member **t = calloc(cap, sizeof(*t));
		if (!t)
			return RK_ENOMEM;
		free(s->tab);
		s->tab = t;
		s->tab_cap = cap;
		for (size_t i = 0; i < s->n_members; i++)
			tab_put(s, s->members[i]);
	}
	return 0;
}

/* Builds m's blob from an update's addresses and meta.  Returns 0 or
 * RK_ENOMEM (m unchanged). */
static int member_set_blob(struct member *m, const char *gossip,
			   const char *peer, const char *client,
			   const uint8_t *meta, size_t meta_len)
{
	size_t lg = strlen(gossip) + 1, lp = strlen(peer) + 1,
	       lc = strlen(client) + 1;
	char *b = malloc(lg + lp + lc + meta_len);
	if (!b)
		return RK_ENOMEM;
	memcpy(b, gossip, lg);
	memcpy(b + lg, peer, lp);
	memcpy(b + lg + lp, client, lc);
	if (meta_len)
		memcpy(b + lg + lp + lc, meta, meta_len);
	free(m->blob);
	m->blob = b;
	m->gossip_addr = b;
	m->peer_addr = b + lg;
	m->client_addr = b + lg + lp;
	m->meta = meta_len ? (const uint8_t *)(b + lg + lp + lc) : NULL;
	m->meta_len = meta_len;
	return 0;
}

/* True when the record u carries addresses and they, the weight or the
 * metadata differ from what m holds. */
static bool info_differs(const struct member *m, const struct swim_update *u)
{
	if (!u->gossip_addr || !*u->gossip_addr)
		return false;
	return strcmp(u->gossip_addr, m->gossip_addr) != 0 ||
	       strcmp(nz(u->peer_addr), m->peer_addr) != 0 ||
	       strcmp(nz(u->client_addr), m->client_addr) != 0 ||
	       u->weight != m->weight || u->meta_len != m->meta_len ||
	       (u->meta_len && memcmp(u->meta, m->meta, u->meta_len) != 0);
}

/* Adds a member from an alive record, at a random position of the probe
 * order (memberlist does the same: a newcomer is probed soon, wherever the
 * round is).  Returns the member or NULL on ENOMEM. */
static struct member *member_add(struct swim *s, const struct swim_update *u,
				 uint64_t now)
{
	struct member *m = calloc(1, sizeof(*m));
	if (!m)
		return NULL;
	if (member_set_blob(m, u->gossip_addr, nz(u->peer_addr),
			    nz(u->client_addr), u->meta, u->meta_len) ||
	    table_reserve(s)) {
		free(m->blob);
		free(m);
		return NULL;
	}
	m->id = u->id;
	m->inc = u->incarnation;
	m->state = SWIM_ALIVE;
	m->since = now;
	m->weight = u->weight;
	m->bc_tx = -1;
	size_t at = (size_t)rand_below(s, s->n_members + 1);
	s->members[s->n_members] = m;
	m->idx = s->n_members++;
	if (at != m->idx) {
		struct member *o = s->members[at];
		s->members[at] = m;
		s->members[m->idx] = o;
		o->idx = m->idx;
		m->idx = at;
	}
	tab_put(s, m);
	s->n_live++;
	return m;
}

/* ---- broadcast queue ------------------------------------------------- */

static void bc_unlink(struct swim *s, struct member *m)
{
	if (m->bc_tx < 0)
		return;
	if (m->bc_prev)
		m->bc_prev->bc_next = m->bc_next;
	else
		s->bc[m->bc_tx] = m->bc_next;
	if (m->bc_next)
		m->bc_next->bc_prev = m->bc_prev;
	m->bc_prev = m->bc_next = NULL;
	m->bc_tx = -1;
}

static void bc_push(struct swim *s, struct member *m, int tx)
{
	m->bc_tx = tx;
	m->bc_prev = NULL;
	m->bc_next = s->bc[tx];
	if (s->bc[tx])
		s->bc[tx]->bc_prev = m;
	s->bc[tx] = m;
}

/* Queues m's current record, newest first, with no transmission yet. */
static void enqueue(struct swim *s, struct member *m)
{
	bc_unlink(s, m);
	bc_push(s, m, 0);
}

/* How many times an update is sent: lambda * ceil(log10(N + 1)). */
static uint32_t tx_limit(const struct swim *s)
{
	uint32_t lim = (uint32_t)ceil((double)s->cfg.retransmit_mult *
				      log((double)s->n_live + 1.0));
	if (lim < 1)
		lim = 1;
	return lim > TX_MAX ? TX_MAX : lim;
}

/* ---- events and logging ---------------------------------------------- */

static void member_view(const struct swim *s, const struct member *m,
			struct swim_member *v)
{
	v->id = m->id;
	v->incarnation = m->inc;
	v->state = m->state;
	v->state_since_ms = m->since;
	v->gossip_addr = m->gossip_addr;
	v->peer_addr = m->peer_addr;
	v->client_addr = m->client_addr;
	v->weight = m->weight;
	v->meta = m->meta;
	v->meta_len = m->meta_len;
	v->is_self = m == s->self;
}

static void emit(struct swim *s, enum swim_event_type type,
		 enum swim_state prev, const struct member *m)
{
	if (!s->rt.on_event)
		return;
	struct swim_member v;
	member_view(s, m, &v);
	struct swim_event ev = {.type = type, .prev_state = prev, .member = &v};
	s->rt.on_event(s->rt.ctx, &ev);
}

/* ---- state changes --------------------------------------------------- */

static void suspicion_drop(struct swim *s, struct member *m)
{
	struct suspicion *su = m->susp;
	if (!su)
		return;
	struct member *last = s->suspects[--s->n_suspects];
	s->suspects[su->pos] = last;
	last->susp->pos = su->pos;
	free(su);
	m->susp = NULL;
}

/* Moves m to st, keeping the counts, the time and the suspicion right. */
static void set_state(struct swim *s, struct member *m, enum swim_state st,
		      uint64_t now)
{
	bool was_live = m->state == SWIM_ALIVE || m->state == SWIM_SUSPECT;
	bool is_live = st == SWIM_ALIVE || st == SWIM_SUSPECT;
	if (was_live && !is_live)
		s->n_live--;
	if (!was_live && is_live)
		s->n_live++;
	if (m->state == SWIM_DEAD)
		s->n_dead--;
	if (st == SWIM_DEAD)
		s->n_dead++;
	if (st != SWIM_SUSPECT)
		suspicion_drop(s, m);
	if (m->state != st)
		m->since = now;
	m->state = st;
}

static void lhm_add(struct swim *s, int delta)
{
	int v = (int)s->lhm + delta;
	if (v < 0)
		v = 0;
	if (v > (int)s->cfg.max_lhm)
		v = (int)s->cfg.max_lhm;
	if ((uint32_t)v != s->lhm)
		rk_debug(s->rt.log, MODULE, "local health %u -> %d", s->lhm, v);
	s->lhm = (uint32_t)v;
}

/* Lifeguard's timeout after c confirmations. */
static uint64_t suspicion_timeout(const struct suspicion *su, uint32_t c)
{
	if (su->k == 0 || c >= su->k)
		return su->min_ms;
	double frac = log((double)c + 1.0) / log((double)su->k + 1.0);
	double t =
	    (double)su->max_ms - frac * (double)(su->max_ms - su->min_ms);
	uint64_t ms = (uint64_t)floor(t);
	return ms < su->min_ms ? su->min_ms : ms;
}

/* Starts suspecting m on from's word, replacing any older suspicion.
 * Returns 0 or RK_ENOMEM (m unchanged). */
static int suspicion_start(struct swim *s, struct member *m, uint64_t from,
			   uint64_t now)
{
	size_t n = s->n_live;
	uint32_t k = s->cfg.suspicion_k;
	/* Confirmations can come only from members other than the suspect
	 * and the first suspecter. */
	if (n < (size_t)k + 2)
		k = n > 2 ? (uint32_t)(n - 2) : 0;
	if (s->n_suspects == s->cap_suspects) {
		size_t cap = s->cap_suspects ? 2 * s->cap_suspects : 8;
		struct member **p = realloc(s->suspects, cap * sizeof(*p));
		if (!p)
			return RK_ENOMEM;
		s->suspects = p;
		s->cap_suspects = cap;
	}
	struct suspicion *su =
	    calloc(1, sizeof(*su) + (1 + (size_t)k) * sizeof(uint64_t));
	if (!su)
		return RK_ENOMEM;
	double scale = log10((double)(n ? n : 1));
	if (scale < 1.0)
		scale = 1.0;
	/* Ours, beyond Lifeguard: an unwell member waits longer. */
	scale *= s->lhm + 1;
	su->start = now;
	su->min_ms = (uint64_t)(s->cfg.suspicion_mult * scale *
				(double)s->cfg.period_ms);
	su->max_ms = s->cfg.suspicion_max_mult * su->min_ms;
	su->k = k;
	su->who[0] = from;
	su->deadline = now + suspicion_timeout(su, 0);
	suspicion_drop(s, m);
	su->pos = s->n_suspects;
	s->suspects[s->n_suspects++] = m;
	m->susp = su;
	return 0;
}

/* Records from as an independent suspecter.  Returns true when it is new
 * and still counts (then the suspicion is worth re-gossiping). */
static bool suspicion_confirm(struct member *m, uint64_t from)
{
	struct suspicion *su = m->susp;
	if (!su || su->n >= su->k)
		return false;
	for (uint32_t i = 0; i <= su->n; i++)
		if (su->who[i] == from)
			return false;
	su->who[++su->n] = from;
	su->deadline = su->start + suspicion_timeout(su, su->n);
	return true;
}

/* Records every suspecter of ids[0, n) not already known.  Returns true
 * when any was new. */
static bool suspicion_confirm_all(struct member *m, const uint64_t *ids,
				  size_t n)
{
	bool any = false;
	for (size_t i = 0; i < n; i++)
		any |= suspicion_confirm(m, ids[i]);
	return any;
}

/* m (alive) becomes suspect on the word of ids[0, n) (n >= 1). */
static void make_suspect(struct swim *s, struct member *m, uint64_t inc,
			 const uint64_t *ids, size_t n, uint64_t now)
{
	if (suspicion_start(s, m, ids[0], now)) {
		rk_error(s->rt.log, MODULE,
			 "out of memory suspecting n%" PRIx64, m->id);
		return;
	}
	suspicion_confirm_all(m, ids + 1, n - 1);
	enum swim_state prev = m->state;
	m->inc = inc;
	set_state(s, m, SWIM_SUSPECT, now);
	enqueue(s, m);
	s->stats.suspect_events++;
	rk_info(s->rt.log, MODULE,
		"suspect n%" PRIx64 " inc=%" PRIu64 " by n%" PRIx64
		" (+%u) timeout=%" PRIu64 "ms",
		m->id, m->inc, ids[0], m->susp->n,
		m->susp->deadline > now ? m->susp->deadline - now : 0);
	emit(s, SWIM_EV_SUSPECT, prev, m);
}

static void make_dead(struct swim *s, struct member *m, uint64_t inc,
		      uint64_t now, const char *why)
{
	enum swim_state prev = m->state;
	m->inc = inc;
	set_state(s, m, SWIM_DEAD, now);
	enqueue(s, m);
	rk_info(s->rt.log, MODULE, "dead n%" PRIx64 " inc=%" PRIu64 " (%s)",
		m->id, m->inc, why);
	emit(s, SWIM_EV_DEAD, prev, m);
}

/* Raises our incarnation above inc, persists it and gossips our record. */
static void bump_incarnation(struct swim *s, uint64_t inc)
{
	struct member *me = s->self;
	me->inc = (inc > me->inc ? inc : me->inc) + 1;
	if (s->rt.on_incarnation)
		s->rt.on_incarnation(s->rt.ctx, me->inc);
	enqueue(s, me);
}

/* Someone says we are suspect, dead, left or older than we are: refute. */
static void refute(struct swim *s, uint64_t inc, enum swim_state said)
{
	bump_incarnation(s, inc);
	s->stats.refutes++;
	/* Lifeguard: being suspected means we were slow to answer. */
	if (said == SWIM_SUSPECT || said == SWIM_DEAD)
		lhm_add(s, 1);
	rk_info(s->rt.log, MODULE, "refute %s inc=%" PRIu64 " -> inc=%" PRIu64,
		swim_state_name((int)said), inc, s->self->inc);
}

/* A record about ourselves. */
static void apply_self(struct swim *s, const struct swim_update *u)
{
	struct member *me = s->self;
	if (s->leaving)
		return;
	if (u->state == SWIM_ALIVE && u->incarnation >= me->inc &&
	    info_differs(me, u))
		rk_warn(
		    s->rt.log, MODULE,
		    "a record of our id n%" PRIx64 " inc=%" PRIu64
		    " at %s: an earlier life of ours, or a node with our id",
		    u->id, u->incarnation, u->gossip_addr);
	if (u->incarnation > me->inc ||
	    (u->incarnation == me->inc &&
	     (u->state != SWIM_ALIVE || info_differs(me, u))))
		refute(s, u->incarnation, u->state);
	else if (u->incarnation < me->inc && u->state != SWIM_ALIVE)
		/* Someone still suspects an older us (typically the buddy
		 * PING we are about to ACK): our record goes first again,
		 * so the ACK carries it back. */
		enqueue(s, me);
}

/* A suspicion reached us: with probability (K+1)/(N-2) we probe the
 * suspect next, out of turn, so that about K+1 members confirm or clear
 * it within a period or two whatever N is, instead of waiting for their
 * round-robin turn (up to 2N-1 periods). */
static void maybe_hurry(struct swim *s, const struct member *m)
{
	uint64_t want = (uint64_t)s->cfg.suspicion_k + 1;
	uint64_t others = s->n_live > 2 ? s->n_live - 2 : 1;
	if (want >= others || rand_below(s, others) < want)
		s->hurry_id = m->id;
}

/* The heart of dissemination: one record, from a datagram or a push-pull
 * (from_sync, sent by sender).  The precedence rules are the paper's:
 * ALIVE(j) overrides ALIVE/SUSPECT(i) when j > i; SUSPECT(j) overrides
 * ALIVE(i) when j >= i; DEAD(j) overrides ALIVE/SUSPECT(i) when j >= i;
 * plus ours: LEFT(j) overrides anything (i) when j >= i, and a tombstone
 * (DEAD, LEFT) yields only to ALIVE with a higher incarnation. */
static void apply_update(struct swim *s, const struct swim_update *u,
			 bool from_sync, uint64_t sender, uint64_t now)
{
	if (u->id == s->self->id) {
		apply_self(s, u);
		return;
	}
	enum swim_state st = u->state;
	const uint64_t *ids = u->suspecters;
	size_t n_ids = u->n_suspecters;
	if (from_sync && st == SWIM_DEAD) {
		/* memberlist: let a member another view buried refute. */
		st = SWIM_SUSPECT;
		ids = &sender;
		n_ids = 1;
	}
	struct member *m = lookup(s, u->id);
	if (!m) {
		/* Suspect, dead and left records about strangers tell us
		 * nothing we could act on. */
		if (st != SWIM_ALIVE)
			return;
		m = member_add(s, u, now);
		if (!m) {
			rk_error(s->rt.log, MODULE,
				 "out of memory adding n%" PRIx64, u->id);
			return;
		}
		enqueue(s, m);
		rk_info(s->rt.log, MODULE,
			"joined n%" PRIx64 " inc=%" PRIu64 " at %s", m->id,
			m->inc, m->gossip_addr);
		emit(s, SWIM_EV_JOINED, SWIM_LEFT, m);
		return;
	}
	enum swim_state prev = m->state;
	switch (st) {
	case SWIM_ALIVE: {
		if (u->incarnation <= m->inc)
			return;
		bool changed = info_differs(m, u);
		if (changed &&
		    member_set_blob(m, u->gossip_addr, nz(u->peer_addr),
				    nz(u->client_addr), u->meta, u->meta_len)) {
			rk_error(s->rt.log, MODULE,
				 "out of memory updating n%" PRIx64, m->id);
			return;
		}
		m->weight = u->weight;
		m->inc = u->incarnation;
		set_state(s, m, SWIM_ALIVE, now);
		enqueue(s, m);
		if (prev == SWIM_ALIVE) {
			if (changed) {
				rk_info(s->rt.log, MODULE,
					"updated n%" PRIx64 " inc=%" PRIu64
					" at %s",
					m->id, m->inc, m->gossip_addr);
				emit(s, SWIM_EV_UPDATED, prev, m);
			}
			return;
		}
		rk_info(s->rt.log, MODULE,
			"%s n%" PRIx64 " inc=%" PRIu64 " at %s (was %s)",
			prev == SWIM_LEFT ? "joined" : "alive", m->id, m->inc,
			m->gossip_addr, swim_state_name((int)prev));
		emit(s, prev == SWIM_LEFT ? SWIM_EV_JOINED : SWIM_EV_ALIVE,
		     prev, m);
		return;
	}
	case SWIM_SUSPECT:
		if (n_ids == 0)
			return;
		if (prev == SWIM_ALIVE && u->incarnation >= m->inc) {
			make_suspect(s, m, u->incarnation, ids, n_ids, now);
			maybe_hurry(s, m);
		} else if (prev == SWIM_SUSPECT && u->incarnation > m->inc) {
			m->inc = u->incarnation;
			if (suspicion_start(s, m, ids[0], now) == 0) {
				suspicion_confirm_all(m, ids + 1, n_ids - 1);
				enqueue(s, m);
			}
		} else if (prev == SWIM_SUSPECT && u->incarnation == m->inc &&
			   suspicion_confirm_all(m, ids, n_ids)) {
			rk_debug(s->rt.log, MODULE,
				 "suspect n%" PRIx64 " confirmed (%u of %u), "
				 "timeout=%" PRIu64 "ms",
				 m->id, m->susp->n, m->susp->k,
				 m->susp->deadline > now
				     ? m->susp->deadline - now
				     : 0);
			enqueue(s, m);
		}
		return;
	case SWIM_DEAD:
		if ((prev == SWIM_ALIVE || prev == SWIM_SUSPECT) &&
		    u->incarnation >= m->inc)
			make_dead(s, m, u->incarnation, now, "gossip");
		else if (prev == SWIM_DEAD && u->incarnation > m->inc)
			m->inc = u->incarnation;
		return;
	case SWIM_LEFT:
		if (prev != SWIM_LEFT && u->incarnation >= m->inc) {
			m->inc = u->incarnation;
			set_state(s, m, SWIM_LEFT, now);
			enqueue(s, m);
			rk_info(s->rt.log, MODULE,
				"left n%" PRIx64 " inc=%" PRIu64, m->id,
				m->inc);
			emit(s, SWIM_EV_LEFT, prev, m);
		}
		return;
	}
}

/* Our own probe of m failed. */
static void suspect_by_self(struct swim *s, struct member *m, uint64_t now)
{
	s->stats.suspicions++;
	if (m->state == SWIM_ALIVE)
		make_suspect(s, m, m->inc, &s->self->id, 1, now);
	else if (m->state == SWIM_SUSPECT && suspicion_confirm(m, s->self->id))
		enqueue(s, m);
}

/* After any input: a member other than us means we are in a cluster. */
static void join_check(struct swim *s)
{
	if (s->joined || s->n_live < 2 || s->leaving)
		return;
	s->joined = true;
	s->join_active = false;
	rk_info(s->rt.log, MODULE, "joined the cluster: %zu members",
		s->n_live);
	emit(s, SWIM_EV_JOIN_DONE, SWIM_ALIVE, s->self);
}

/* ---- sending --------------------------------------------------------- */

/* Fills u from m; full adds addresses and metadata to non-alive records. */
static void fill_update(const struct member *m, struct swim_update *u,
			bool full)
{
	memset(u, 0, sizeof(*u));
	u->id = m->id;
	u->incarnation = m->inc;
	u->state = m->state;
	if (m->state == SWIM_SUSPECT && m->susp) {
		/* All we know of: a receiver learns the whole dogpile at
		 * once. */
		u->suspecters = m->susp->who;
		u->n_suspecters = 1 + (size_t)m->susp->n;
	}
	if (full || m->state == SWIM_ALIVE) {
		u->gossip_addr = m->gossip_addr;
		u->peer_addr = m->peer_addr;
		u->client_addr = m->client_addr;
		u->weight = m->weight;
		u->meta = m->meta;
		u->meta_len = m->meta_len;
	} else {
		u->gossip_addr = u->peer_addr = u->client_addr = "";
	}
}

/* Sends one datagram of header msg to addr, filled with piggy-backed
 * updates up to max_packet: buddy's suspicion first (Lifeguard's buddy
 * system), then the queue, fewest transmissions first, newest first. */
static void send_packet(struct swim *s, const char *addr, struct swim_msg *msg,
			const struct member *buddy)
{
	size_t n = 0, npicked = 0;
	msg->cluster = s->cluster;
	msg->from_id = s->self->id;
	msg->from_addr = s->self->gossip_addr;
	msg->target_addr = nz(msg->target_addr);
	msg->updates = s->ups;
	msg->n_updates = 0;

	size_t hdr = swim_msg_header_size_bound(msg);
	size_t room = hdr < s->cfg.max_packet ? s->cfg.max_packet - hdr : 0;
	size_t empty_room = room, scanned = 0;
	if (buddy && buddy->state == SWIM_SUSPECT) {
		fill_update(buddy, &s->ups[0], false);
		size_t b = swim_update_size_bound(&s->ups[0]);
		if (b <= room) {
			room -= b;
			n++;
		}
	}
	uint32_t limit = tx_limit(s);
	for (uint32_t t = 0; t < limit && room >= MIN_UPDATE_BYTES; t++) {
		struct member *next;
		for (struct member *m = s->bc[t];
		     m && n < MAX_PIGGYBACK && room >= MIN_UPDATE_BYTES &&
		     scanned < SCAN_MAX;
		     m = next) {
			next = m->bc_next;
			scanned++;
			if (m == buddy && n > 0 && s->ups[0].id == m->id)
				continue;
			fill_update(m, &s->ups[n], false);
			size_t b = swim_update_size_bound(&s->ups[n]);
			if (b > empty_room) {
				/* Long addresses and metadata: no datagram
				 * can carry it; push-pull will. */
				rk_warn(s->rt.log, MODULE,
					"record of n%" PRIx64 " (%zu bytes) "
					"exceeds max_packet; left to push-pull",
					m->id, b);
				bc_unlink(s, m);
				continue;
			}
			if (b > room)
				continue;
			room -= b;
			s->picked[npicked++] = m;
			n++;
		}
	}
	msg->n_updates = n;
	if (msg->type == SWIM_MSG_GOSSIP && n == 0)
		return;

	rk_buf_clear(&s->out);
	int rc = s->rt.codec->encode(msg, &s->out);
	if (rc) {
		rk_error(s->rt.log, MODULE, "cannot encode %s: %s",
			 swim_msg_type_name((int)msg->type), rk_strerror(rc));
		return;
	}
	s->rt.send_udp(s->rt.ctx, addr, rk_buf_rptr(&s->out),
		       rk_buf_readable(&s->out));
	s->stats.udp_sent++;
	s->stats.updates_sent += n;
	for (size_t i = 0; i < npicked; i++) {
		struct member *m = s->picked[i];
		int tx = m->bc_tx + 1;
		bc_unlink(s, m);
		if ((uint32_t)tx < limit)
			bc_push(s, m, tx);
	}
	rk_trace(s->rt.log, MODULE,
		 "send %s to %s seq=%" PRIu64 " updates=%zu bytes=%zu",
		 swim_msg_type_name((int)msg->type), addr, msg->seq, n,
		 rk_buf_readable(&s->out));
}

static void send_simple(struct swim *s, const char *addr,
			enum swim_msg_type type, uint64_t seq,
			uint64_t target_id, const char *target_addr,
			const struct member *buddy)
{
	struct swim_msg msg = {.type = type,
			       .seq = seq,
			       .target_id = target_id,
			       .target_addr = target_addr};
	send_packet(s, addr, &msg, buddy);
}

/* Encodes our full state as a push-pull message into out.  Returns 0,
 * RK_ENOMEM. */
static int encode_state(struct swim *s, enum swim_msg_type type, bool join,
			struct rk_buf *out)
{
	struct swim_update *ups = malloc(s->n_members * sizeof(*ups));
	if (!ups)
		return RK_ENOMEM;
	for (size_t i = 0; i < s->n_members; i++)
		fill_update(s->members[i], &ups[i], true);
	struct swim_msg msg = {.type = type,
			       .cluster = s->cluster,
			       .from_id = s->self->id,
			       .from_addr = s->self->gossip_addr,
			       .target_addr = "",
			       .join = join,
			       .updates = ups,
			       .n_updates = s->n_members};
	int rc = s->rt.codec->encode(&msg, out);
	free(ups);
	return rc;
}

/* Starts a push-pull with addr. */
static void send_sync(struct swim *s, const char *addr, bool join)
{
	struct rk_buf b;
	rk_buf_init(&b);
	int rc = encode_state(s, SWIM_MSG_SYNC, join, &b);
	if (rc) {
		rk_error(s->rt.log, MODULE, "cannot encode push-pull: %s",
			 rk_strerror(rc));
	} else {
		s->rt.send_sync(s->rt.ctx, addr, rk_buf_rptr(&b),
				rk_buf_readable(&b));
		s->stats.syncs_sent++;
		rk_debug(s->rt.log, MODULE, "push-pull%s to %s: %zu members",
			 join ? " (join)" : "", addr, s->n_members);
	}
	rk_buf_destroy(&b);
}

/* ---- picking members ------------------------------------------------- */

/* Which members pick_random may return. */
enum pick {
	PICK_ALIVE,  /* alive: helpers, push-pull partners */
	PICK_DEAD,   /* dead: reconnect candidates */
	PICK_GOSSIP, /* alive, suspect, or dead for under gossip_to_dead_ms
			(memberlist: the recently buried learn it, and
			refute) */
};

static bool pickable(const struct swim *s, const struct member *m,
		     enum pick pool, uint64_t skip, uint64_t now)
{
	if (m == s->self || m->id == skip)
		return false;
	switch (pool) {
	case PICK_ALIVE:
		return m->state == SWIM_ALIVE;
	case PICK_DEAD:
		return m->state == SWIM_DEAD;
	case PICK_GOSSIP:
		return m->state == SWIM_ALIVE || m->state == SWIM_SUSPECT ||
		       (m->state == SWIM_DEAD &&
			now - m->since < s->cfg.gossip_to_dead_ms);
	}
	return false;
}

/* Up to k distinct random members from pool, other than us and skip.
 * A few random draws usually suffice; otherwise reservoir sampling over
 * the table (O(N), and only when most members are not in the pool). */
static size_t pick_random(struct swim *s, enum pick pool, uint64_t skip,
			  struct member **out, size_t k)
{
	uint64_t now = now_ms(s);
	size_t got = 0;
	for (size_t tries = 0; tries < 4 * k && got < k && s->n_members;
	     tries++) {
		struct member *m = s->members[rand_below(s, s->n_members)];
		bool dup = false;
		for (size_t j = 0; j < got; j++)
			dup |= out[j] == m;
		if (!dup && pickable(s, m, pool, skip, now))
			out[got++] = m;
	}
	if (got == k)
		return k;
	size_t seen = 0;
	for (size_t i = 0; i < s->n_members; i++) {
		struct member *m = s->members[i];
		if (!pickable(s, m, pool, skip, now))
			continue;
		if (seen < k) {
			out[seen++] = m;
			continue;
		}
		uint64_t j = rand_below(s, ++seen);
		if (j < k)
			out[j] = m;
	}
	return seen < k ? seen : k;
}

static void shuffle(struct swim *s)
{
	for (size_t i = s->n_members; i > 1; i--) {
		size_t j = (size_t)rand_below(s, i);
		struct member *t = s->members[i - 1];
		s->members[i - 1] = s->members[j];
		s->members[j] = t;
	}
	for (size_t i = 0; i < s->n_members; i++)
		s->members[i]->idx = i;
}

/* Round-robin over a list shuffled at the start of every round. */
static struct member *next_probe_target(struct swim *s)
{
	for (size_t tries = 0; tries < 2 * s->n_members; tries++) {
		if (s->probe_idx >= s->n_members) {
			shuffle(s);
			s->probe_idx = 0;
		}
		struct member *m = s->members[s->probe_idx++];
		if (m != s->self &&
		    (m->state == SWIM_ALIVE || m->state == SWIM_SUSPECT))
			return m;
	}
	return NULL;
}

/* ---- timers ---------------------------------------------------------- */

static void probe_start(struct swim *s, uint64_t now)
{
	uint64_t scale = s->lhm + 1;
	s->next_probe_at = now + s->cfg.period_ms * scale;
	struct member *t = s->hurry_id ? lookup(s, s->hurry_id) : NULL;
	s->hurry_id = 0;
	if (!t || t->state != SWIM_SUSPECT)
		t = next_probe_target(s);
	if (!t)
		return;
	s->probe = (struct probe){
	    .active = true,
	    .target_id = t->id,
	    .seq = ++s->seq,
	    .indirect_at = now + s->cfg.probe_timeout_ms * scale,
	    .deadline = now + s->cfg.period_ms * scale,
	};
	s->stats.probes++;
	send_simple(s, t->gossip_addr, SWIM_MSG_PING, s->probe.seq, t->id, NULL,
		    t);
}

static void probe_indirect(struct swim *s)
{
	struct member *helpers[MAX_SUSPICION_K];
	struct member *t = lookup(s, s->probe.target_id);
	s->probe.indirect_sent = true;
	if (!t || !(t->state == SWIM_ALIVE || t->state == SWIM_SUSPECT)) {
		/* Gossip settled it meanwhile: nothing to learn, no blame. */
		s->probe.active = false;
		return;
	}
	size_t k = s->cfg.indirect_k;
	if (k > MAX_SUSPICION_K)
		k = MAX_SUSPICION_K;
	k = pick_random(s, PICK_ALIVE, t->id, helpers, k);
	s->probe.nacks_expected = (uint32_t)k;
	for (size_t i = 0; i < k; i++) {
		send_simple(s, helpers[i]->gossip_addr, SWIM_MSG_PING_REQ,
			    s->probe.seq, t->id, t->gossip_addr, NULL);
		s->stats.ping_reqs_sent++;
	}
	rk_debug(s->rt.log, MODULE,
		 "no ack from n%" PRIx64 " seq=%" PRIu64 ", ping-req via %zu",
		 t->id, s->probe.seq, k);
}

static void probe_fail(struct swim *s, uint64_t now)
{
	struct probe *p = &s->probe;
	p->active = false;
	s->stats.probe_failures++;
	/* Lifeguard: missing NACKs are evidence against ourselves. */
	if (p->nacks_expected > 0)
		lhm_add(s, (int)(p->nacks_expected - p->nacks));
	else
		lhm_add(s, 1);
	struct member *t = lookup(s, p->target_id);
	if (!t || !(t->state == SWIM_ALIVE || t->state == SWIM_SUSPECT))
		return;
	rk_debug(s->rt.log, MODULE,
		 "probe of n%" PRIx64 " failed (nacks %u/%u)", t->id, p->nacks,
		 p->nacks_expected);
	suspect_by_self(s, t, now);
}

static void relays_tick(struct swim *s, uint64_t now)
{
	for (size_t i = 0; i < s->n_relays;) {
		struct relay *r = &s->relays[i];
		if (!r->nack_sent && now >= r->nack_at) {
			r->nack_sent = true;
			send_simple(s, r->origin_addr, SWIM_MSG_NACK,
				    r->origin_seq, 0, NULL, NULL);
			s->stats.nacks_sent++;
		}
		if (now >= r->expire) {
			s->relays[i] = s->relays[--s->n_relays];
			continue;
		}
		i++;
	}
}

static void suspects_tick(struct swim *s, uint64_t now)
{
	for (size_t i = s->n_suspects; i-- > 0;) {
		if (i >= s->n_suspects)
			continue;
		struct member *m = s->suspects[i];
		if (now < m->susp->deadline)
			continue;
		s->stats.dead_declared++;
		make_dead(s, m, m->inc, now, "suspicion expired");
	}
}

static void join_attempt(struct swim *s, uint64_t now)
{
	for (size_t i = 0; i < s->n_seeds; i++)
		send_sync(s, s->seeds[i], true);
	uint64_t d = s->join_backoff;
	/* +-25% jitter so restarted nodes do not retry in lockstep. */
	d = d * 3 / 4 + rand_below(s, d / 2 + 1);
	s->join_at = now + d;
	s->join_backoff = s->join_backoff * 2 > s->cfg.join_backoff_max_ms
			      ? s->cfg.join_backoff_max_ms
			      : s->join_backoff * 2;
}

/* True when some update still has transmissions to go. */
static bool bc_pending(const struct swim *s)
{
	uint32_t limit = tx_limit(s);
	for (uint32_t t = 0; t < limit; t++)
		if (s->bc[t])
			return true;
	return false;
}

static void gossip_tick(struct swim *s, uint64_t now)
{
	struct member *to[MAX_SUSPICION_K];
	if (s->cfg.gossip_fanout == 0) {
		s->gossip_at = NEVER;
		return;
	}
	s->gossip_at = now + s->cfg.gossip_ms;
	if (!bc_pending(s))
		return;
	size_t k = s->cfg.gossip_fanout;
	if (k > MAX_SUSPICION_K)
		k = MAX_SUSPICION_K;
	k = pick_random(s, PICK_GOSSIP, 0, to, k);
	for (size_t i = 0; i < k && bc_pending(s); i++)
		send_simple(s, to[i]->gossip_addr, SWIM_MSG_GOSSIP, 0, 0, NULL,
			    to[i]);
}

/* memberlist's push-pull scale: slower above 32 members. */
static uint64_t push_pull_interval(const struct swim *s)
{
	uint64_t base = s->cfg.push_pull_ms;
	if (s->n_live <= PUSH_PULL_SCALE_THRESHOLD)
		return base;
	double mult = ceil(log2((double)s->n_live) -
			   log2((double)PUSH_PULL_SCALE_THRESHOLD)) +
		      1.0;
	return (uint64_t)(mult * (double)base);
}

static void push_pull_tick(struct swim *s, uint64_t now)
{
	struct member *m;
	s->push_pull_at = now + push_pull_interval(s);
	if (s->leaving || pick_random(s, PICK_ALIVE, 0, &m, 1) == 0)
		return;
	send_sync(s, m->gossip_addr, false);
}

static void reconnect_tick(struct swim *s, uint64_t now)
{
	struct member *m;
	s->reconnect_at = now + s->cfg.reconnect_ms;
	if (s->leaving || s->n_dead == 0 ||
	    pick_random(s, PICK_DEAD, 0, &m, 1) == 0)
		return;
	s->recon_seq = ++s->seq;
	s->recon_id = m->id;
	rk_debug(s->rt.log, MODULE, "reconnect: ping dead n%" PRIx64, m->id);
	send_simple(s, m->gossip_addr, SWIM_MSG_PING, s->recon_seq, m->id, NULL,
		    NULL);
}

static void member_remove(struct swim *s, struct member *m)
{
	bc_unlink(s, m);
	suspicion_drop(s, m);
	set_state(s, m, SWIM_LEFT, 0);
	tab_del(s, m);
	size_t i = m->idx;
	struct member *last = s->members[--s->n_members];
	s->members[i] = last;
	last->idx = i;
	free(m->blob);
	free(m);
}

static uint64_t gc_interval(const struct swim *s)
{
	uint64_t g = s->cfg.tombstone_ms / 4;
	if (g > 60000)
		g = 60000;
	return g < s->cfg.period_ms ? s->cfg.period_ms : g;
}

static void gc_tick(struct swim *s, uint64_t now)
{
	s->gc_at = now + gc_interval(s);
	for (size_t i = 0; i < s->n_members;) {
		struct member *m = s->members[i];
		if (m != s->self &&
		    (m->state == SWIM_DEAD || m->state == SWIM_LEFT) &&
		    now - m->since >= s->cfg.tombstone_ms) {
			rk_info(s->rt.log, MODULE,
				"forget n%" PRIx64 " (%s since %" PRIu64 ")",
				m->id, swim_state_name((int)m->state),
				m->since);
			emit(s, SWIM_EV_REMOVED, m->state, m);
			member_remove(s, m);
			continue;
		}
		i++;
	}
}

int swim_tick(struct swim *s)
{
	uint64_t now = now_ms(s);
	relays_tick(s, now);
	if (s->probe.active && !s->probe.indirect_sent &&
	    now >= s->probe.indirect_at)
		probe_indirect(s);
	if (s->probe.active && now >= s->probe.deadline)
		probe_fail(s, now);
	suspects_tick(s, now);
	if (now >= s->next_probe_at)
		probe_start(s, now);
	if (s->join_active && now >= s->join_at)
		join_attempt(s, now);
	if (now >= s->gossip_at)
		gossip_tick(s, now);
	if (now >= s->push_pull_at)
		push_pull_tick(s, now);
	if (now >= s->reconnect_at)
		reconnect_tick(s, now);
	if (now >= s->gc_at)
		gc_tick(s, now);
	return 0;
}

uint64_t swim_next_deadline(const struct swim *s)
{
	uint64_t d = min_u64(s->next_probe_at, s->push_pull_at);
	if (bc_pending(s))
		d = min_u64(d, s->gossip_at);
	d = min_u64(d, s->reconnect_at);
	d = min_u64(d, s->gc_at);
	if (s->join_active)
		d = min_u64(d, s->join_at);
	if (s->probe.active) {
		d = min_u64(d, s->probe.deadline);
		if (!s->probe.indirect_sent)
			d = min_u64(d, s->probe.indirect_at);
	}
	for (size_t i = 0; i < s->n_relays; i++)
		d = min_u64(d, s->relays[i].nack_sent ? s->relays[i].expire
						      : s->relays[i].nack_at);
	for (size_t i = 0; i < s->n_suspects; i++)
		d = min_u64(d, s->suspects[i]->susp->deadline);
	return d;
}

/* ---- receiving ------------------------------------------------------- */

static void on_ping_req(struct swim *s, const struct swim_msg *msg,
			uint64_t now)
{
	if (msg->target_id == s->self->id) {
		send_simple(s, msg->from_addr, SWIM_MSG_ACK, msg->seq, 0, NULL,
			    lookup(s, msg->from_id));
		return;
	}
	if (s->n_relays == MAX_RELAYS) {
		rk_debug(s->rt.log, MODULE,
			 "ping-req from n%" PRIx64
			 " dropped: too many in flight",
			 msg->from_id);
		return;
	}
	struct relay *r = &s->relays[s->n_relays++];
	uint64_t pt = s->cfg.probe_timeout_ms;
	r->seq = ++s->seq;
	r->origin_seq = msg->seq;
	r->nack_at = now + pt * NACK_PERCENT / 100;
	r->expire = now + pt;
	r->nack_sent = false;
	snprintf(r->origin_addr, sizeof(r->origin_addr), "%s", msg->from_addr);
	send_simple(s, msg->target_addr, SWIM_MSG_PING, r->seq, msg->target_id,
		    NULL, lookup(s, msg->target_id));
}

static void on_ack(struct swim *s, const struct swim_msg *msg)
{
	struct probe *p = &s->probe;
	if (p->active && msg->seq == p->seq) {
		p->active = false;
		lhm_add(s, -1);
		return;
	}
	if (s->recon_seq && msg->seq == s->recon_seq) {
		struct member *m = lookup(s, s->recon_id);
		s->recon_seq = 0;
		if (m && m->state == SWIM_DEAD) {
			rk_info(s->rt.log, MODULE,
				"dead n%" PRIx64 " answers: push-pull", m->id);
			send_sync(s, m->gossip_addr, false);
		}
		return;
	}
	for (size_t i = 0; i < s->n_relays; i++) {
		struct relay *r = &s->relays[i];
		if (r->seq != msg->seq)
			continue;
		send_simple(s, r->origin_addr, SWIM_MSG_ACK, r->origin_seq, 0,
			    NULL, NULL);
		s->relays[i] = s->relays[--s->n_relays];
		return;
	}
}

/* Decodes and checks the cluster.  Returns 0 with *owner to release, or
 * RK_EPROTOCOL (counted). */
static int decode(struct swim *s, const char *from, const uint8_t *bytes,
		  size_t len, const struct swim_decode_limits *lim,
		  struct swim_msg *msg, void **owner)
{
	int rc = s->rt.codec->decode(bytes, len, lim, msg, owner);
	if (rc == RK_ENOMEM)
		return rc;
	if (rc) {
		s->stats.drop_malformed++;
		rk_debug(s->rt.log, MODULE, "drop %zu bytes from %s: malformed",
			 len, nz(from));
		return RK_EPROTOCOL;
	}
	if (strcmp(msg->cluster, s->cluster) != 0) {
		s->stats.drop_cluster++;
		rk_debug(s->rt.log, MODULE,
			 "drop %s from %s: cluster '%s' is not ours",
			 swim_msg_type_name((int)msg->type), nz(from),
			 msg->cluster);
		s->rt.codec->release(*owner);
		*owner = NULL;
		return RK_EPROTOCOL;
	}
	return 0;
}

static void apply_all(struct swim *s, const struct swim_msg *msg,
		      bool from_sync, uint64_t now)
{
	for (size_t i = 0; i < msg->n_updates; i++)
		apply_update(s, &msg->updates[i], from_sync, msg->from_id, now);
}

int swim_recv_udp(struct swim *s, const char *from, const uint8_t *bytes,
		  size_t len)
{
	struct swim_msg msg;
	void *owner;
	const struct swim_decode_limits lim = {.max_bytes = UDP_MAX_PAYLOAD,
					       .max_updates = UDP_MAX_UPDATES};
	s->stats.udp_recv++;
	int rc = decode(s, from, bytes, len, &lim, &msg, &owner);
	if (rc)
		return rc;
	uint64_t now = now_ms(s);
	rk_trace(s->rt.log, MODULE,
		 "recv %s from n%" PRIx64 " seq=%" PRIu64 " updates=%zu",
		 swim_msg_type_name((int)msg.type), msg.from_id, msg.seq,
		 msg.n_updates);
	if (msg.from_id == s->self->id) {
		/* Our own packet looped back, or another node claims our id:
		 * either way nothing in it is news to us. */
		s->stats.drop_misdirected++;
		s->rt.codec->release(owner);
		return RK_EPROTOCOL;
	}
	s->stats.updates_recv += msg.n_updates;
	apply_all(s, &msg, false, now);
	switch (msg.type) {
	case SWIM_MSG_PING:
		if (msg.target_id && msg.target_id != s->self->id) {
			s->stats.drop_misdirected++;
			rc = RK_EPROTOCOL;
			break;
		}
		send_simple(s, msg.from_addr, SWIM_MSG_ACK, msg.seq, 0, NULL,
			    lookup(s, msg.from_id));
		break;
	case SWIM_MSG_ACK:
		on_ack(s, &msg);
		break;
	case SWIM_MSG_PING_REQ:
		on_ping_req(s, &msg, now);
		break;
	case SWIM_MSG_NACK:
		if (s->probe.active && msg.seq == s->probe.seq &&
		    s->probe.nacks < s->probe.nacks_expected) {
			s->probe.nacks++;
			s->stats.nacks_recv++;
		}
		break;
	case SWIM_MSG_GOSSIP:
		break;
	case SWIM_MSG_SYNC:
	case SWIM_MSG_SYNC_REPLY:
		s->stats.drop_misdirected++;
		rc = RK_EPROTOCOL;
		break;
	}
	s->rt.codec->release(owner);
	join_check(s);
	return rc;
}

/* Decodes a push-pull message of the wanted type and merges it. */
static int recv_state(struct swim *s, const char *from, const uint8_t *bytes,
		      size_t len, enum swim_msg_type want)
{
	struct swim_msg msg;
	void *owner;
	const struct swim_decode_limits lim = {
	    .max_bytes = s->cfg.max_sync_bytes,
	    .max_updates = s->cfg.max_members};
	int rc = decode(s, from, bytes, len, &lim, &msg, &owner);
	if (rc)
		return rc;
	if (msg.type != want || msg.from_id == s->self->id) {
		s->stats.drop_misdirected++;
		s->rt.codec->release(owner);
		return RK_EPROTOCOL;
	}
	s->stats.syncs_recv++;
	rk_debug(s->rt.log, MODULE, "%s from n%" PRIx64 "%s: %zu members",
		 swim_msg_type_name((int)msg.type), msg.from_id,
		 msg.join ? " (join)" : "", msg.n_updates);
	apply_all(s, &msg, true, now_ms(s));
	s->rt.codec->release(owner);
	join_check(s);
	return 0;
}

int swim_recv_sync(struct swim *s, const char *from, const uint8_t *bytes,
		   size_t len, struct rk_buf *reply)
{
	int rc = recv_state(s, from, bytes, len, SWIM_MSG_SYNC);
	if (rc)
		return rc;
	return encode_state(s, SWIM_MSG_SYNC_REPLY, false, reply);
}

int swim_recv_sync_reply(struct swim *s, const char *from, const uint8_t *bytes,
			 size_t len)
{
	return recv_state(s, from, bytes, len, SWIM_MSG_SYNC_REPLY);
}

/* ---- lifecycle and operator inputs ----------------------------------- */

static int config_valid(const struct swim_config *c,
			const struct swim_runtime *rt)
{
	if (c->id == 0 || !swim_addr_valid(c->gossip_addr) ||
	    !swim_cluster_name_valid(c->cluster))
		return 0;
	if ((c->peer_addr && *c->peer_addr && !swim_addr_valid(c->peer_addr)) ||
	    (c->client_addr && *c->client_addr &&
	     !swim_addr_valid(c->client_addr)))
		return 0;
	if (c->meta_len > SWIM_META_MAX || (c->meta_len && !c->meta))
		return 0;
	if (c->period_ms == 0 || c->probe_timeout_ms == 0 ||
	    c->probe_timeout_ms >= c->period_ms || !(c->suspicion_mult > 0) ||
	    c->suspicion_mult > 1000 || c->suspicion_max_mult == 0 ||
	    c->suspicion_k > MAX_SUSPICION_K ||
	    c->indirect_k > MAX_SUSPICION_K || c->retransmit_mult == 0 ||
	    (c->gossip_fanout && c->gossip_ms == 0) ||
	    c->gossip_fanout > MAX_SUSPICION_K || c->push_pull_ms == 0 ||
	    c->reconnect_ms == 0 || c->join_backoff_ms == 0 ||
	    c->join_backoff_max_ms < c->join_backoff_ms ||
	    c->tombstone_ms == 0 || c->max_packet < 256 ||
	    c->max_packet > UDP_MAX_PAYLOAD || c->max_lhm > 1000 ||
	    c->max_sync_bytes == 0 || c->max_members == 0)
		return 0;
	return rt->codec && rt->now_ms && rt->random && rt->send_udp &&
	       rt->send_sync;
}

int swim_new(const struct swim_config *cfg, const struct swim_runtime *rt,
	     struct swim **out)
{
	*out = NULL;
	if (!config_valid(cfg, rt))
		return RK_EINVALID;
	struct swim *s = calloc(1, sizeof(*s));
	if (!s)
		return RK_ENOMEM;
	s->cfg = *cfg;
	s->rt = *rt;
	rk_buf_init(&s->out);
	for (int i = 0; i < (int)TX_MAX; i++)
		s->bc[i] = NULL;
	s->cluster = dup_str(cfg->cluster);
	if (!s->cluster)
		goto nomem;
	s->cfg.cluster = s->cluster;
	uint64_t now = now_ms(s);
	struct swim_update me = {.id = cfg->id,
				 .incarnation = cfg->incarnation,
				 .state = SWIM_ALIVE,
				 .gossip_addr = cfg->gossip_addr,
				 .peer_addr = nz(cfg->peer_addr),
				 .client_addr = nz(cfg->client_addr),
				 .weight = cfg->weight,
				 .meta = cfg->meta,
				 .meta_len = cfg->meta_len};
	s->self = member_add(s, &me, now);
	if (!s->self)
		goto nomem;
	s->cfg.gossip_addr = s->self->gossip_addr;
	s->cfg.peer_addr = s->self->peer_addr;
	s->cfg.client_addr = s->self->client_addr;
	s->cfg.meta = NULL;
	enqueue(s, s->self);
	s->seq = s->rt.random(s->rt.ctx) >> 1;
	/* Spread the first timers so nodes started together do not probe
	 * and push-pull in lockstep. */
	s->next_probe_at = now + rand_below(s, cfg->period_ms);
	s->gossip_at = cfg->gossip_fanout ? now + cfg->gossip_ms : NEVER;
	s->push_pull_at =
	    now + cfg->push_pull_ms / 2 + rand_below(s, cfg->push_pull_ms);
	s->reconnect_at =
	    now + cfg->reconnect_ms / 2 + rand_below(s, cfg->reconnect_ms);
	s->gc_at = now + gc_interval(s);
	if (s->rt.on_incarnation)
		s->rt.on_incarnation(s->rt.ctx, s->self->inc);
	rk_info(s->rt.log, MODULE,
		"start n%" PRIx64 " inc=%" PRIu64 " at %s cluster %s", cfg->id,
		cfg->incarnation, s->self->gossip_addr, s->cluster);
	*out = s;
	return 0;
nomem:
	swim_free(s);
	return RK_ENOMEM;
}

void swim_free(struct swim *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n_members; i++) {
		free(s->members[i]->susp);
		free(s->members[i]->blob);
		free(s->members[i]);
	}
	for (size_t i = 0; i < s->n_seeds; i++)
		free(s->seeds[i]);
	free(s->seeds);
	free(s->members);
	free(s->tab);
	free(s->suspects);
	free(s->cluster);
	rk_buf_destroy(&s->out);
	free(s);
}

int swim_join(struct swim *s, const char *const *seeds, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!swim_addr_valid(seeds[i]))
			return RK_EINVALID;
	if (s->leaving)
		return RK_EINVALID;
	char **list = calloc(n ? n : 1, sizeof(*list));
	if (!list)
		return RK_ENOMEM;
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		if (strcmp(seeds[i], s->self->gossip_addr) == 0)
			continue;
		if (!(list[k] = dup_str(seeds[i]))) {
			for (size_t j = 0; j < k; j++)
				free(list[j]);
			free(list);
			return RK_ENOMEM;
		}
		k++;
	}
	for (size_t i = 0; i < s->n_seeds; i++)
		free(s->seeds[i]);
	free(s->seeds);
	s->seeds = list;
	s->n_seeds = k;
	rk_info(s->rt.log, MODULE, "join through %zu seed(s)", k);
	if (k == 0) {
		/* Nobody to ask: we are the first member. */
		if (!s->joined) {
			s->joined = true;
			rk_info(s->rt.log, MODULE, "first member of %s",
				s->cluster);
			emit(s, SWIM_EV_JOIN_DONE, SWIM_ALIVE, s->self);
		}
		return 0;
	}
	s->join_active = !s->joined;
	s->join_backoff = s->cfg.join_backoff_ms;
	join_attempt(s, now_ms(s));
	return 0;
}

int swim_joined(const struct swim *s)
{
	return s->joined;
}

int swim_leave(struct swim *s)
{
	struct member *to[LEAVE_FANOUT];
	if (s->leaving)
		return RK_EINVALID;
	uint64_t now = now_ms(s);
	s->leaving = true;
	s->join_active = false;
	set_state(s, s->self, SWIM_LEFT, now);
	enqueue(s, s->self);
	rk_info(s->rt.log, MODULE, "leaving inc=%" PRIu64, s->self->inc);
	size_t k = pick_random(s, PICK_ALIVE, 0, to, LEAVE_FANOUT);
	for (size_t i = 0; i < k; i++)
		send_simple(s, to[i]->gossip_addr, SWIM_MSG_PING, ++s->seq,
			    to[i]->id, NULL, NULL);
	return 0;
}

int swim_leave_done(const struct swim *s)
{
	return s->leaving &&
	       (s->self->bc_tx < 0 || (uint32_t)s->self->bc_tx >= tx_limit(s));
}

int swim_set_meta(struct swim *s, uint32_t weight, const uint8_t *meta,
		  size_t meta_len)
{
	struct member *me = s->self;
	if (meta_len > SWIM_META_MAX || (meta_len && !meta))
		return RK_EINVALID;
	int rc = member_set_blob(me, me->gossip_addr, me->peer_addr,
				 me->client_addr, meta, meta_len);
	if (rc)
		return rc;
	me->weight = weight;
	bump_incarnation(s, me->inc);
	rk_info(s->rt.log, MODULE,
		"metadata changed: weight=%u meta=%zu bytes"
		" inc=%" PRIu64,
		weight, meta_len, me->inc);
	return 0;
}

/* ---- queries --------------------------------------------------------- */

uint64_t swim_incarnation(const struct swim *s)
{
	return s->self->inc;
}

uint64_t swim_self_id(const struct swim *s)
{
	return s->self->id;
}

size_t swim_member_count(const struct swim *s)
{
	return s->n_members;
}

size_t swim_size(const struct swim *s)
{
	return s->n_live;
}

size_t swim_members(const struct swim *s, struct swim_member *out, size_t cap)
{
	size_t k = 0;
	if (cap > 0)
		member_view(s, s->self, &out[k++]);
	for (size_t i = 0; i < s->n_members && k < cap; i++)
		if (s->members[i] != s->self)
			member_view(s, s->members[i], &out[k++]);
	return s->n_members;
}

int swim_member_get(const struct swim *s, uint64_t id, struct swim_member *out)
{
	const struct member *m = lookup(s, id);
	if (!m)
		return RK_ENOT_FOUND;
	member_view(s, m, out);
	return 0;
}

void swim_stats(const struct swim *s, struct swim_stats *out)
{
	*out = s->stats;
	out->lhm = s->lhm;
}
