/* test_swim.c: the swim module alone, with a fake runtime (suite unit).
 *
 * One node under test (id 1, "10.0.0.1:7946"); its peers exist only as
 * packets the test encodes and feeds in, and as the packets it sends out,
 * which the test decodes.  Time moves only when the test says; the PRNG is
 * seeded from rk_test_seed.  Each test reads like the protocol rule it
 * checks.
 */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "gossip_wire.h"
#include "rng.h"
#include "swim.h"

#define MAX_OUT 4096
#define MAX_EV 256

/* One packet the node sent. */
struct sent {
	int sync;	/* send_sync, not send_udp */
	uint64_t at;	/* fake time */
	char addr[64];	/* destination */
	uint8_t *bytes; /* owned copy */
	size_t len;
};

/* One event the node reported (a copy). */
struct ev {
	int type;
	int prev;
	uint64_t id;
	uint64_t inc;
	int state;
	uint64_t at;
	char addr[64];
};

static struct fake {
	uint64_t now;
	struct rk_rng rng;
	struct sent out[MAX_OUT];
	size_t n_out;
	struct ev ev[MAX_EV];
	size_t n_ev;
	uint64_t persisted;
	int n_persist;
	uint8_t up[64]; /* peers that auto-ack our PINGs */
	struct rk_logger log;
	struct swim *s;
} f;

static uint64_t seed;

static void addr_of(uint64_t id, char *buf, size_t n)
{
	snprintf(buf, n, "10.0.0.%" PRIu64 ":7946", id);
}

static uint64_t id_of(const char *addr)
{
	unsigned a;
	return sscanf(addr, "10.0.0.%u:", &a) == 1 ? a : 0;
}

static uint64_t rt_now(void *ctx)
{
	(void)ctx;
	return f.now;
}

static uint64_t rt_random(void *ctx)
{
	(void)ctx;
	return rk_rng_next(&f.rng);
}

static void record(const char *addr, const uint8_t *p, size_t n, int sync)
{
	cr_assert_lt(f.n_out, MAX_OUT);
	struct sent *o = &f.out[f.n_out++];
	o->sync = sync;
	o->at = f.now;
	snprintf(o->addr, sizeof(o->addr), "%s", addr);
	o->bytes = malloc(n);
	cr_assert(o->bytes);
	memcpy(o->bytes, p, n);
	o->len = n;
}

static void rt_udp(void *ctx, const char *addr, const uint8_t *p, size_t n)
{
	(void)ctx;
	record(addr, p, n, 0);
}

static void rt_sync(void *ctx, const char *addr, const uint8_t *p, size_t n)
{
	(void)ctx;
	record(addr, p, n, 1);
}

static void rt_event(void *ctx, const struct swim_event *e)
{
	(void)ctx;
	cr_assert_lt(f.n_ev, MAX_EV);
	struct ev *v = &f.ev[f.n_ev++];
	v->type = (int)e->type;
	v->prev = (int)e->prev_state;
	v->id = e->member->id;
	v->inc = e->member->incarnation;
	v->state = (int)e->member->state;
	v->at = f.now;
	snprintf(v->addr, sizeof(v->addr), "%s", e->member->gossip_addr);
}

static void rt_inc(void *ctx, uint64_t inc)
{
	(void)ctx;
	f.persisted = inc;
	f.n_persist++;
}

static const struct swim_runtime runtime = {
    .codec = &gossip_wire_codec,
    .log = &f.log,
    .now_ms = rt_now,
    .random = rt_random,
    .send_udp = rt_udp,
    .send_sync = rt_sync,
    .on_event = rt_event,
    .on_incarnation = rt_inc,
};

static void base_config(struct swim_config *c)
{
	swim_config_defaults(c);
	c->id = 1;
	c->gossip_addr = "10.0.0.1:7946";
	c->cluster = "main";
}

static void start_with(const struct swim_config *c)
{
	memset(&f, 0, sizeof(f));
	seed = rk_test_seed(criterion_current_test->name);
	rk_rng_seed(&f.rng, seed);
	f.now = 1000000;
	rk_logger_init(&f.log, "n1",
		       getenv("RINGKV_SIM_LOG")
			   ? rk_log_level_parse(getenv("RINGKV_SIM_LOG"))
			   : RK_LOG_ERROR);
	cr_assert_eq(swim_new(c, &runtime, &f.s), 0);
}

static void start(void)
{
	struct swim_config c;
	base_config(&c);
	start_with(&c);
}

static void finish(void)
{
	swim_free(f.s);
	for (size_t i = 0; i < f.n_out; i++)
		free(f.out[i].bytes);
	f.s = NULL;
}

TestSuite(swim, .fini = finish);

/* ---- feeding and reading packets ------------------------------------- */

/* A peer's record, for building packets. */
static struct swim_update rec(uint64_t id, uint64_t inc, enum swim_state st,
			      const uint64_t *by, size_t n_by)
{
	static char addrs[16][32];
	static int next;
	char *a = addrs[next++ % 16];
	addr_of(id, a, 32);
	struct swim_update u = {.id = id,
				.incarnation = inc,
				.state = st,
				.suspecters = by,
				.n_suspecters = n_by,
				.gossip_addr = a,
				.peer_addr = "",
				.client_addr = ""};
	return u;
}

/* Encodes a message from peer `from` and hands it to the node. */
static int feed(enum swim_msg_type type, uint64_t from, uint64_t seq,
		uint64_t target, const struct swim_update *ups, size_t n,
		const char *cluster)
{
	char fa[32], ta[32] = "";
	addr_of(from, fa, sizeof(fa));
	if (target && type == SWIM_MSG_PING_REQ)
		addr_of(target, ta, sizeof(ta));
	struct swim_msg m = {.type = type,
			     .cluster = cluster ? cluster : "main",
			     .from_id = from,
			     .from_addr = fa,
			     .seq = seq,
			     .target_id = target,
			     .target_addr = ta,
			     .updates = (struct swim_update *)ups,
			     .n_updates = n};
	struct rk_buf b;
	rk_buf_init(&b);
	cr_assert_eq(gossip_wire_encode(&m, &b), 0);
	int rc = swim_recv_udp(f.s, fa, b.data, b.len);
	rk_buf_destroy(&b);
	return rc;
}

/* Feeds one update about someone, from peer 9, on a GOSSIP packet. */
static void tell(struct swim_update u)
{
	feed(SWIM_MSG_GOSSIP, 9, 0, 0, &u, 1, NULL);
}

/* Decodes sent packet i into *m; release with gossip_wire_release. */
static void *open_out(size_t i, struct swim_msg *m)
{
	void *owner;
	const struct swim_decode_limits lim = {.max_bytes = 1 << 24,
					       .max_updates = 1 << 16};
	cr_assert_eq(
	    gossip_wire_decode(f.out[i].bytes, f.out[i].len, &lim, m, &owner),
	    0);
	return owner;
}

/* The index of the first sent packet at or after `from` of type to addr
 * of node `to` (0: any), or -1. */
static long find_out(size_t from, enum swim_msg_type type, uint64_t to)
{
	for (size_t i = from; i < f.n_out; i++) {
		struct swim_msg m;
		void *o = open_out(i, &m);
		int hit = m.type == type && (!to || id_of(f.out[i].addr) == to);
		gossip_wire_release(o);
		if (hit)
			return (long)i;
	}
	return -1;
}

/* Count of events of type about id. */
static int count_ev(int type, uint64_t id)
{
	int n = 0;
	for (size_t i = 0; i < f.n_ev; i++)
		n += f.ev[i].type == type && f.ev[i].id == id;
	return n;
}

static const struct ev *last_ev(int type, uint64_t id)
{
	for (size_t i = f.n_ev; i-- > 0;)
		if (f.ev[i].type == type && f.ev[i].id == id)
			return &f.ev[i];
	return NULL;
}

static int state_of(uint64_t id)
{
	struct swim_member m;
	return swim_member_get(f.s, id, &m) ? -1 : (int)m.state;
}

/* Answers every PING we sent to an up peer, as that peer would. */
static void auto_ack(size_t from)
{
	for (size_t i = from; i < f.n_out; i++) {
		struct swim_msg m;
		if (f.out[i].sync)
			continue;
		void *o = open_out(i, &m);
		uint64_t to = id_of(f.out[i].addr);
		if (m.type == SWIM_MSG_PING && to < 64 && f.up[to])
			feed(SWIM_MSG_ACK, to, m.seq, 0, NULL, 0, NULL);
		gossip_wire_release(o);
	}
}

/* Moves fake time to t, firing every deadline on the way (and auto-acking
 * when asked). */
static void run_to(uint64_t t, int acks)
{
	for (int guard = 0; guard < 1000000; guard++) {
		uint64_t d = swim_next_deadline(f.s);
		if (d > t)
			break;
		if (d > f.now)
			f.now = d;
		size_t before = f.n_out;
		swim_tick(f.s);
		if (acks)
			auto_ack(before);
	}
	f.now = t;
}

/* Learns peers 2..n alive (inc 0) and marks them up. */
static void peers(uint64_t n)
{
	for (uint64_t id = 2; id <= n; id++) {
		tell(rec(id, 0, SWIM_ALIVE, NULL, 0));
		f.up[id] = 1;
	}
}

/* ---- tests ----------------------------------------------------------- */

Test(swim, new_validates_and_reports_the_incarnation)
{
	struct swim_config c;
	struct swim *s;
	base_config(&c);
	memset(&f, 0, sizeof(f));
#define BAD(stmt)                                                              \
	do {                                                                   \
		base_config(&c);                                               \
		stmt;                                                          \
		cr_assert_eq(swim_new(&c, &runtime, &s), RK_EINVALID, #stmt);  \
	} while (0)
	BAD(c.id = 0);
	BAD(c.gossip_addr = "10.0.0.1");
	BAD(c.peer_addr = "x");
	BAD(c.cluster = "two words");
	BAD(c.probe_timeout_ms = c.period_ms);
	BAD(c.meta_len = SWIM_META_MAX + 1; c.meta = (const uint8_t *)"x");
	BAD(c.max_packet = 100);
	BAD(c.suspicion_k = 100);
	BAD(c.join_backoff_max_ms = 1);
#undef BAD
	base_config(&c);
	c.incarnation = 41;
	start_with(&c);
	cr_assert_eq(f.persisted, 41);
	cr_assert_eq(swim_incarnation(f.s), 41);
	cr_assert_eq(swim_self_id(f.s), 1);
	cr_assert_eq(swim_size(f.s), 1);
}

Test(swim, first_member_joins_at_once)
{
	start();
	const char *seeds[] = {"10.0.0.1:7946"};
	cr_assert_eq(swim_join(f.s, seeds, 1), 0);
	cr_assert(swim_joined(f.s));
	cr_assert_eq(count_ev(SWIM_EV_JOIN_DONE, 1), 1);
	cr_assert_eq(f.n_out, 0);
	const char *bad[] = {"nope"};
	cr_assert_eq(swim_join(f.s, bad, 1), RK_EINVALID);
}

Test(swim, join_retries_with_backoff_until_a_seed_answers)
{
	start();
	const char *seeds[] = {"10.0.0.1:7946", "10.0.0.2:7946"};
	cr_assert_eq(swim_join(f.s, seeds, 2), 0);
	cr_assert(!swim_joined(f.s));
	cr_assert_eq(f.n_out, 1);
	cr_assert(f.out[0].sync);
	cr_assert_str_eq(f.out[0].addr, "10.0.0.2:7946");
	struct swim_msg m;
	void *o = open_out(0, &m);
	cr_assert_eq(m.type, SWIM_MSG_SYNC);
	cr_assert(m.join);
	cr_assert_eq(m.n_updates, 1);
	cr_assert_eq(m.updates[0].id, 1);
	gossip_wire_release(o);

	/* Nobody answers: 1 s, 2 s, 4 s, 8 s ... each +-25%. */
	run_to(f.now + 40000, 0);
	uint64_t prev = f.out[0].at, want = 1000;
	int tries = 0;
	for (size_t i = 1; i < f.n_out; i++) {
		if (!f.out[i].sync)
			continue;
		uint64_t gap = f.out[i].at - prev;
		cr_assert(gap >= want * 3 / 4 && gap <= want * 5 / 4,
			  "retry %d after %" PRIu64 " ms, want ~%" PRIu64,
			  tries, gap, want);
		prev = f.out[i].at;
		want = want * 2 > 30000 ? 30000 : want * 2;
		tries++;
	}
	cr_assert_geq(tries, 4);

	/* The seed answers with its state: joined, no more retries. */
	struct swim_update u = rec(2, 0, SWIM_ALIVE, NULL, 0);
	char fa[32];
	addr_of(2, fa, sizeof(fa));
	struct swim_msg r = {.type = SWIM_MSG_SYNC_REPLY,
			     .cluster = "main",
			     .from_id = 2,
			     .from_addr = fa,
			     .target_addr = "",
			     .updates = &u,
			     .n_updates = 1};
	struct rk_buf b;
	rk_buf_init(&b);
	cr_assert_eq(gossip_wire_encode(&r, &b), 0);
	cr_assert_eq(swim_recv_sync_reply(f.s, fa, b.data, b.len), 0);
	rk_buf_destroy(&b);
	cr_assert(swim_joined(f.s));
	cr_assert_eq(count_ev(SWIM_EV_JOINED, 2), 1);
	size_t n = f.n_out;
	f.up[2] = 1;
	run_to(f.now + 60000, 1);
	for (size_t i = n; i < f.n_out; i++)
		if (f.out[i].sync) {
			o = open_out(i, &m);
			cr_assert(!m.join, "join retried after joining");
			gossip_wire_release(o);
		}
}

Test(swim, precedence_of_records)
{
	static const uint64_t by3 = 3;
	start();
	tell(rec(2, 1, SWIM_SUSPECT, &by3, 1));
	cr_assert_eq(state_of(2), -1, "suspicion of a stranger adds it");
	tell(rec(2, 1, SWIM_ALIVE, NULL, 0));
	cr_assert_eq(state_of(2), SWIM_ALIVE);
	cr_assert_eq(last_ev(SWIM_EV_JOINED, 2)->prev, SWIM_LEFT);
	tell(rec(2, 0, SWIM_SUSPECT, &by3, 1));
	cr_assert_eq(state_of(2), SWIM_ALIVE, "older suspicion applied");
	tell(rec(2, 1, SWIM_SUSPECT, &by3, 1));
	cr_assert_eq(state_of(2), SWIM_SUSPECT);
	cr_assert_eq(count_ev(SWIM_EV_SUSPECT, 2), 1);
	tell(rec(2, 1, SWIM_ALIVE, NULL, 0));
	cr_assert_eq(state_of(2), SWIM_SUSPECT, "alive at same inc refuted");
	tell(rec(2, 2, SWIM_ALIVE, NULL, 0));
	cr_assert_eq(state_of(2), SWIM_ALIVE);
	cr_assert_eq(last_ev(SWIM_EV_ALIVE, 2)->prev, SWIM_SUSPECT);
	tell(rec(2, 2, SWIM_DEAD, NULL, 0));
	cr_assert_eq(state_of(2), SWIM_DEAD);
	tell(rec(2, 2, SWIM_ALIVE, NULL, 0));
	cr_assert_eq(state_of(2), SWIM_DEAD, "stale alive revived the dead");
	tell(rec(2, 2, SWIM_SUSPECT, &by3, 1));
	cr_assert_eq(state_of(2), SWIM_DEAD);
	tell(rec(2, 2, SWIM_LEFT, NULL, 0));
	cr_assert_eq(state_of(2), SWIM_LEFT, "left loses to dead");
	tell(rec(2, 2, SWIM_DEAD, NULL, 0));
	cr_assert_eq(state_of(2), SWIM_LEFT, "dead overrode left");
	tell(rec(2, 2, SWIM_ALIVE, NULL, 0));
	cr_assert_eq(state_of(2), SWIM_LEFT, "stale alive revived the left");
	tell(rec(2, 3, SWIM_ALIVE, NULL, 0));
	cr_assert_eq(state_of(2), SWIM_ALIVE);
	cr_assert_eq(last_ev(SWIM_EV_JOINED, 2)->prev, SWIM_LEFT);
	cr_assert_eq(count_ev(SWIM_EV_DEAD, 2), 1);
	cr_assert_eq(count_ev(SWIM_EV_LEFT, 2), 1);
}

Test(swim, suspected_node_refutes_and_the_ack_carries_it)
{
	static const uint64_t by3 = 3;
	start();
	struct swim_update u = rec(1, 0, SWIM_SUSPECT, &by3, 1);
	cr_assert_eq(feed(SWIM_MSG_PING, 3, 55, 1, &u, 1, NULL), 0);
	cr_assert_eq(swim_incarnation(f.s), 1);
	cr_assert_eq(f.persisted, 1);
	struct swim_stats st;
	swim_stats(f.s, &st);
	cr_assert_eq(st.refutes, 1);
	cr_assert_eq(st.lhm, 1, "refuting is a sign of ill health");
	long i = find_out(0, SWIM_MSG_ACK, 3);
	cr_assert_geq(i, 0);
	struct swim_msg m;
	void *o = open_out((size_t)i, &m);
	cr_assert_eq(m.seq, 55);
	cr_assert_geq(m.n_updates, 1);
	cr_assert_eq(m.updates[0].id, 1);
	cr_assert_eq(m.updates[0].state, SWIM_ALIVE);
	cr_assert_eq(m.updates[0].incarnation, 1);
	gossip_wire_release(o);

	/* An older suspicion needs no new incarnation, but the ACK still
	 * carries our current record back to whoever holds it. */
	size_t n = f.n_out;
	cr_assert_eq(feed(SWIM_MSG_PING, 4, 56, 1, &u, 1, NULL), 0);
	cr_assert_eq(swim_incarnation(f.s), 1);
	i = find_out(n, SWIM_MSG_ACK, 4);
	o = open_out((size_t)i, &m);
	cr_assert_eq(m.updates[0].id, 1);
	cr_assert_eq(m.updates[0].incarnation, 1);
	gossip_wire_release(o);
}

Test(swim, ping_is_acked_only_by_its_target)
{
	start();
	cr_assert_eq(feed(SWIM_MSG_PING, 3, 7, 1, NULL, 0, NULL), 0);
	long i = find_out(0, SWIM_MSG_ACK, 3);
	cr_assert_geq(i, 0);
	struct swim_msg m;
	void *o = open_out((size_t)i, &m);
	cr_assert_eq(m.seq, 7);
	cr_assert_eq(m.from_id, 1);
	gossip_wire_release(o);
	size_t n = f.n_out;
	/* A node with another id now lives at our address's old owner's
	 * place: it must not answer for it. */
	cr_assert_eq(feed(SWIM_MSG_PING, 3, 8, 99, NULL, 0, NULL),
		     RK_EPROTOCOL);
	cr_assert_eq(find_out(n, SWIM_MSG_ACK, 0), -1);
	struct swim_stats st;
	swim_stats(f.s, &st);
	cr_assert_eq(st.drop_misdirected, 1);
}

Test(swim, foreign_and_malformed_packets_are_dropped_and_counted)
{
	start();
	struct swim_update u = rec(2, 0, SWIM_ALIVE, NULL, 0);
	cr_assert_eq(feed(SWIM_MSG_PING, 3, 7, 1, &u, 1, "other"),
		     RK_EPROTOCOL);
	cr_assert_eq(f.n_out, 0);
	cr_assert_eq(state_of(2), -1);
	uint8_t junk[64];
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (uint8_t)(i * 37);
	cr_assert_eq(swim_recv_udp(f.s, "x", junk, sizeof(junk)), RK_EPROTOCOL);
	cr_assert_eq(swim_recv_udp(f.s, "x", junk, 0), RK_EPROTOCOL);
	struct rk_buf reply;
	rk_buf_init(&reply);
	cr_assert_eq(swim_recv_sync(f.s, "x", junk, sizeof(junk), &reply),
		     RK_EPROTOCOL);
	cr_assert_eq(reply.len, 0);
	struct swim_stats st;
	swim_stats(f.s, &st);
	cr_assert_eq(st.drop_cluster, 1);
	cr_assert_eq(st.drop_malformed, 3);
	cr_assert_eq(f.n_out, 0);
}

/* Runs until our next PING goes out; returns its index. */
static size_t next_ping(void)
{
	size_t n = f.n_out;
	for (int k = 0; k < 100; k++) {
		run_to(swim_next_deadline(f.s), 0);
		long i = find_out(n, SWIM_MSG_PING, 0);
		if (i >= 0)
			return (size_t)i;
	}
	cr_assert_fail("no probe");
	return 0;
}

Test(swim, failed_probe_asks_helpers_then_suspects)
{
	start();
	peers(4);
	size_t i = next_ping();
	struct swim_msg m;
	void *o = open_out(i, &m);
	uint64_t target = id_of(f.out[i].addr), seq = m.seq;
	uint64_t t0 = f.out[i].at;
	cr_assert_eq(m.target_id, target);
	gossip_wire_release(o);

	/* No ack for the probe timeout: ping-req to both other peers. */
	run_to(t0 + 499, 0);
	cr_assert_eq(find_out(i + 1, SWIM_MSG_PING_REQ, 0), -1);
	run_to(t0 + 500, 0);
	int reqs = 0;
	for (size_t j = i + 1; j < f.n_out; j++) {
		o = open_out(j, &m);
		if (m.type == SWIM_MSG_PING_REQ) {
			reqs++;
			cr_assert_eq(m.target_id, target);
			cr_assert_eq(m.seq, seq);
			cr_assert_neq(id_of(f.out[j].addr), target);
			char ta[32];
			addr_of(target, ta, sizeof(ta));
			cr_assert_str_eq(m.target_addr, ta);
		}
		gossip_wire_release(o);
	}
	cr_assert_eq(reqs, 2);
	/* Both helpers nack: the target is the problem, not us. */
	for (uint64_t h = 2; h <= 4; h++)
		if (h != target)
			feed(SWIM_MSG_NACK, h, seq, 0, NULL, 0, NULL);
	run_to(t0 + 999, 0);
	cr_assert_eq(state_of(target), SWIM_ALIVE);
	run_to(t0 + 1000, 0);
	cr_assert_eq(state_of(target), SWIM_SUSPECT);
	cr_assert_eq(last_ev(SWIM_EV_SUSPECT, target)->at, t0 + 1000);
	struct swim_stats st;
	swim_stats(f.s, &st);
	cr_assert_eq(st.lhm, 0);
	cr_assert_eq(st.nacks_recv, 2);
	cr_assert_eq(st.suspicions, 1);
}

Test(swim, missing_nacks_raise_local_health_and_slow_probing)
{
	start();
	peers(4);
	size_t i = next_ping();
	uint64_t t0 = f.out[i].at;
	run_to(t0 + 1000, 0); /* nobody answers anything */
	struct swim_stats st;
	swim_stats(f.s, &st);
	cr_assert_eq(st.lhm, 2, "two helpers, no nack");
	/* The next probe starts at once and waits 3x longer. */
	long jj = find_out(i + 1, SWIM_MSG_PING, 0);
	cr_assert_geq(jj, 0);
	size_t j = (size_t)jj;
	uint64_t t1 = f.out[j].at;
	struct swim_msg m;
	void *o = open_out(j, &m);
	uint64_t seq = m.seq, target = id_of(f.out[j].addr);
	gossip_wire_release(o);
	run_to(t1 + 1499, 0);
	cr_assert_eq(find_out(j + 1, SWIM_MSG_PING_REQ, 0), -1);
	/* An ack brings health back one step. */
	feed(SWIM_MSG_ACK, target, seq, 0, NULL, 0, NULL);
	swim_stats(f.s, &st);
	cr_assert_eq(st.lhm, 1);
	run_to(t1 + 3000, 0);
	cr_assert_eq(find_out(j + 1, SWIM_MSG_PING_REQ, 0), -1);
}

Test(swim, suspicion_timeout_falls_with_independent_suspicions)
{
	static const uint64_t by3 = 3, by4[] = {4};
	start();
	peers(5); /* N = 5: K = 3, min 3 s, max 18 s */
	f.up[2] = 1;

	tell(rec(2, 0, SWIM_SUSPECT, &by3, 1));
	uint64_t t0 = f.now;
	run_to(t0 + 17999, 1);
	cr_assert_eq(state_of(2), SWIM_SUSPECT, "one suspecter: max timeout");
	run_to(t0 + 18000, 1);
	cr_assert_eq(state_of(2), SWIM_DEAD);

	/* Again, with a second suspecter after 1 s: 18 - 15 log2/log4 s. */
	tell(rec(2, 1, SWIM_ALIVE, NULL, 0));
	tell(rec(2, 1, SWIM_SUSPECT, &by3, 1));
	t0 = f.now;
	run_to(t0 + 1000, 1);
	tell(rec(2, 1, SWIM_SUSPECT, by4, 1));
	run_to(t0 + 10499, 1);
	cr_assert_eq(state_of(2), SWIM_SUSPECT);
	run_to(t0 + 10500, 1);
	cr_assert_eq(state_of(2), SWIM_DEAD);

	/* And with all K at once: the minimum. */
	tell(rec(2, 2, SWIM_ALIVE, NULL, 0));
	uint64_t with[] = {6, 3, 4, 5};
	tell(rec(2, 2, SWIM_SUSPECT, with, 4));
	t0 = f.now;
	run_to(t0 + 2999, 1);
	cr_assert_eq(state_of(2), SWIM_SUSPECT);
	run_to(t0 + 3000, 1);
	cr_assert_eq(state_of(2), SWIM_DEAD);
	struct swim_stats st;
	swim_stats(f.s, &st);
	cr_assert_eq(st.dead_declared, 3);
}

Test(swim, refutation_cancels_the_suspicion)
{
	static const uint64_t by3 = 3;
	start();
	peers(5);
	tell(rec(2, 0, SWIM_SUSPECT, &by3, 1));
	run_to(f.now + 5000, 1);
	tell(rec(2, 1, SWIM_ALIVE, NULL, 0));
	run_to(f.now + 60000, 1);
	cr_assert_eq(state_of(2), SWIM_ALIVE);
	cr_assert_eq(count_ev(SWIM_EV_DEAD, 2), 0);
	cr_assert_eq(count_ev(SWIM_EV_ALIVE, 2), 1);
}

Test(swim, leave_spreads_left_and_ignores_news_about_us)
{
	static const uint64_t by3 = 3;
	start();
	peers(4);
	cr_assert_eq(swim_leave(f.s), 0);
	cr_assert_eq(swim_leave(f.s), RK_EINVALID);
	struct swim_member me;
	cr_assert_eq(swim_member_get(f.s, 1, &me), 0);
	cr_assert_eq(me.state, SWIM_LEFT);
	int pings = 0;
	for (size_t i = 0; i < f.n_out; i++) {
		struct swim_msg m;
		void *o = open_out(i, &m);
		if (m.type == SWIM_MSG_PING) {
			int left = 0;
			pings++;
			for (size_t j = 0; j < m.n_updates; j++)
				left |= m.updates[j].id == 1 &&
					m.updates[j].state == SWIM_LEFT;
			cr_assert(left, "a leave ping without our record");
		}
		gossip_wire_release(o);
	}
	cr_assert_eq(pings, 3);
	cr_assert(!swim_leave_done(f.s) || f.n_out >= 3);
	run_to(f.now + 20000, 1);
	cr_assert(swim_leave_done(f.s));
	tell(rec(1, 0, SWIM_SUSPECT, &by3, 1));
	cr_assert_eq(swim_incarnation(f.s), 0, "a leaver refuted");
}

Test(swim, metadata_change_raises_the_incarnation)
{
	start();
	peers(2);
	const uint8_t meta[] = "tokens-v2";
	cr_assert_eq(swim_set_meta(f.s, 8, meta, sizeof(meta)), 0);
	cr_assert_eq(swim_incarnation(f.s), 1);
	cr_assert_eq(f.persisted, 1);
	size_t n = f.n_out;
	cr_assert_eq(feed(SWIM_MSG_PING, 2, 1, 1, NULL, 0, NULL), 0);
	struct swim_msg m;
	long i = find_out(n, SWIM_MSG_ACK, 2);
	void *o = open_out((size_t)i, &m);
	cr_assert_eq(m.updates[0].id, 1);
	cr_assert_eq(m.updates[0].weight, 8);
	cr_assert_eq(m.updates[0].meta_len, sizeof(meta));
	cr_assert_eq(memcmp(m.updates[0].meta, meta, sizeof(meta)), 0);
	gossip_wire_release(o);
	uint8_t big[SWIM_META_MAX + 1] = {0};
	cr_assert_eq(swim_set_meta(f.s, 1, big, sizeof(big)), RK_EINVALID);
}

Test(swim, identity_survives_an_address_change)
{
	start();
	tell(rec(2, 0, SWIM_ALIVE, NULL, 0));
	struct swim_update u = rec(2, 1, SWIM_ALIVE, NULL, 0);
	u.gossip_addr = "10.9.9.9:1234";
	u.client_addr = "10.9.9.9:7000";
	tell(u);
	struct swim_member m;
	cr_assert_eq(swim_member_get(f.s, 2, &m), 0);
	cr_assert_str_eq(m.gossip_addr, "10.9.9.9:1234");
	cr_assert_str_eq(m.client_addr, "10.9.9.9:7000");
	cr_assert_eq(m.incarnation, 1);
	cr_assert_eq(swim_member_count(f.s), 2);
	cr_assert_eq(count_ev(SWIM_EV_UPDATED, 2), 1);
}

Test(swim, tombstones_expire)
{
	struct swim_config c;
	base_config(&c);
	c.tombstone_ms = 10000;
	start_with(&c);
	peers(3);
	tell(rec(2, 0, SWIM_DEAD, NULL, 0));
	uint64_t t0 = f.now;
	run_to(t0 + 9999, 1);
	cr_assert_eq(state_of(2), SWIM_DEAD);
	run_to(t0 + 10000 + 2500, 1); /* one sweep: tombstone_ms / 4 */
	cr_assert_eq(state_of(2), -1);
	cr_assert_eq(count_ev(SWIM_EV_REMOVED, 2), 1);
	cr_assert_eq(swim_member_count(f.s), 2);
	cr_assert_eq(state_of(3), SWIM_ALIVE);
}

Test(swim, push_pull_merges_and_replies_with_full_state)
{
	start();
	peers(3);
	struct swim_update ups[4] = {
	    rec(5, 0, SWIM_ALIVE, NULL, 0), rec(6, 0, SWIM_DEAD, NULL, 0),
	    rec(1, 0, SWIM_DEAD, NULL, 0), rec(2, 0, SWIM_DEAD, NULL, 0)};
	char fa[32];
	addr_of(5, fa, sizeof(fa));
	struct swim_msg m = {.type = SWIM_MSG_SYNC,
			     .cluster = "main",
			     .from_id = 5,
			     .from_addr = fa,
			     .target_addr = "",
			     .updates = ups,
			     .n_updates = 4};
	struct rk_buf b, reply;
	rk_buf_init(&b);
	rk_buf_init(&reply);
	cr_assert_eq(gossip_wire_encode(&m, &b), 0);
	cr_assert_eq(swim_recv_sync(f.s, fa, b.data, b.len, &reply), 0);
	cr_assert_eq(state_of(5), SWIM_ALIVE);
	cr_assert_eq(state_of(6), -1, "a stranger's tombstone was adopted");
	cr_assert_eq(state_of(2), SWIM_SUSPECT,
		     "push-pull dead must become suspect");
	cr_assert_eq(swim_incarnation(f.s), 1, "no refutation of our death");

	struct swim_msg r;
	void *o;
	const struct swim_decode_limits lim = {.max_bytes = 1 << 20,
					       .max_updates = 100};
	cr_assert_eq(gossip_wire_decode(reply.data, reply.len, &lim, &r, &o),
		     0);
	cr_assert_eq(r.type, SWIM_MSG_SYNC_REPLY);
	cr_assert_eq(r.n_updates, 4); /* us, 2, 3 and 5 */
	int saw_self = 0;
	for (size_t i = 0; i < r.n_updates; i++)
		if (r.updates[i].id == 1) {
			saw_self = 1;
			cr_assert_eq(r.updates[i].incarnation, 1);
			cr_assert_eq(r.updates[i].state, SWIM_ALIVE);
		}
	cr_assert(saw_self);
	gossip_wire_release(o);

	/* A reply where a request belongs is refused. */
	m.type = SWIM_MSG_SYNC_REPLY;
	rk_buf_clear(&b);
	rk_buf_clear(&reply);
	cr_assert_eq(gossip_wire_encode(&m, &b), 0);
	cr_assert_eq(swim_recv_sync(f.s, fa, b.data, b.len, &reply),
		     RK_EPROTOCOL);
	rk_buf_destroy(&b);
	rk_buf_destroy(&reply);
}

Test(swim, helper_relays_acks_and_nacks_silence)
{
	start();
	peers(4);
	size_t n = f.n_out;
	cr_assert_eq(feed(SWIM_MSG_PING_REQ, 3, 77, 4, NULL, 0, NULL), 0);
	long i = find_out(n, SWIM_MSG_PING, 4);
	cr_assert_geq(i, 0);
	struct swim_msg m;
	void *o = open_out((size_t)i, &m);
	uint64_t relay_seq = m.seq;
	cr_assert_eq(m.target_id, 4);
	gossip_wire_release(o);
	feed(SWIM_MSG_ACK, 4, relay_seq, 0, NULL, 0, NULL);
	i = find_out((size_t)i, SWIM_MSG_ACK, 3);
	cr_assert_geq(i, 0);
	o = open_out((size_t)i, &m);
	cr_assert_eq(m.seq, 77);
	gossip_wire_release(o);

	/* Silence from the target: a NACK at 80% of the probe timeout. */
	n = f.n_out;
	uint64_t t0 = f.now;
	cr_assert_eq(feed(SWIM_MSG_PING_REQ, 3, 78, 4, NULL, 0, NULL), 0);
	run_to(t0 + 399, 0);
	cr_assert_eq(find_out(n, SWIM_MSG_NACK, 3), -1);
	run_to(t0 + 400, 0);
	i = find_out(n, SWIM_MSG_NACK, 3);
	cr_assert_geq(i, 0);
	o = open_out((size_t)i, &m);
	cr_assert_eq(m.seq, 78);
	gossip_wire_release(o);
}

Test(swim, a_dead_member_that_answers_gets_a_push_pull)
{
	start();
	peers(3);
	tell(rec(2, 0, SWIM_DEAD, NULL, 0));
	size_t n = f.n_out;
	long i = -1;
	for (int k = 0; k < 100 && i < 0; k++) {
		run_to(swim_next_deadline(f.s), 1);
		i = find_out(n, SWIM_MSG_PING, 2);
	}
	cr_assert_geq(i, 0, "no reconnect ping to the dead member");
	struct swim_msg m;
	void *o = open_out((size_t)i, &m);
	feed(SWIM_MSG_ACK, 2, m.seq, 0, NULL, 0, NULL);
	gossip_wire_release(o);
	cr_assert(f.out[f.n_out - 1].sync);
	cr_assert_str_eq(f.out[f.n_out - 1].addr, "10.0.0.2:7946");
}

Test(swim, fresh_news_is_pushed_to_random_members)
{
	static const uint64_t by3 = 3;
	start();
	peers(6);
	run_to(f.now + 30000, 1); /* drain the news of the peers */
	size_t n = f.n_out;
	tell(rec(2, 0, SWIM_SUSPECT, &by3, 1));
	run_to(f.now + 199, 1); /* one push round, whenever it falls */
	int gossips = 0;
	for (size_t i = n; i < f.n_out; i++) {
		struct swim_msg m;
		void *o = open_out(i, &m);
		if (m.type == SWIM_MSG_GOSSIP) {
			gossips++;
			cr_assert_eq(m.updates[0].id, 2);
			cr_assert_eq(m.updates[0].state, SWIM_SUSPECT);
			cr_assert_eq(m.updates[0].n_suspecters, 1);
		}
		gossip_wire_release(o);
	}
	cr_assert_eq(gossips, 2);
}

Test(swim, a_record_no_datagram_can_carry_is_left_to_push_pull)
{
	static uint8_t meta[SWIM_META_MAX];
	struct swim_config c;
	base_config(&c);
	c.max_packet = 400;
	start_with(&c);
	peers(4);
	run_to(f.now + 30000, 1);
	struct swim_update u = rec(7, 0, SWIM_ALIVE, NULL, 0);
	u.meta = meta;
	u.meta_len = sizeof(meta);
	size_t n = f.n_out;
	f.up[7] = 1;
	tell(u);
	run_to(f.now + 5000, 1);
	cr_assert_eq(state_of(7), SWIM_ALIVE);
	cr_assert_eq(find_out(n, SWIM_MSG_GOSSIP, 0), -1,
		     "gossiped a record that cannot fit, or an empty packet");
	/* Datagrams stay within the limit; a push-pull over TCP carries the
	 * whole state and is not bound by it. */
	for (size_t i = n; i < f.n_out; i++)
		if (!f.out[i].sync)
			cr_assert_leq(f.out[i].len, 400);
}
