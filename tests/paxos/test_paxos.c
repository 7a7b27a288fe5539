/* test_paxos.c: the paxos module with a fake runtime (suite unit).
 *
 * Acceptor rules are checked by feeding one node messages from a phantom
 * proposer (node 9) and reading what it sends back.  Proposer behaviour
 * runs on three real nodes over the wave network of cluster.h, where a
 * request wave and its reply wave make one round trip.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "cluster.h"
#include "err.h"
#include "paxos_wire.h"

#define PHANTOM 9u
#define KEY(s) (const uint8_t *)(s), strlen(s)
#define SECOND 1000u

static void stop(void)
{
	cl_stop();
}

TestSuite(paxos, .fini = stop);

/* ---- helpers --------------------------------------------------------- */

static void cas_on(uint64_t node, uint64_t token, const char *key,
		   const char *expect, const char *newv)
{
	struct paxos_cond c = {.kind = PAXOS_IF_EQUALS,
			       .expected = cl_str(expect)};
	struct paxos_value v = cl_str(newv);
	cr_assert_eq(paxos_cas(cl.nodes[node].px, token, KEY(key), cl_rf3, 3,
			       &c, &v, cl.now + 5 * SECOND),
		     0);
}

static void read_on(uint64_t node, uint64_t token, const char *key)
{
	cr_assert_eq(paxos_serial_read(cl.nodes[node].px, token, KEY(key),
				       cl_rf3, 3, cl.now + 5 * SECOND),
		     0);
}

static struct paxos_msg msg(int type, const char *key, rk_ts ballot)
{
	struct paxos_msg m = {.type = (enum paxos_msg_type)type,
			      .key = (const uint8_t *)key,
			      .klen = strlen(key),
			      .req = 77,
			      .ballot = ballot};
	return m;
}

static struct paxos_msg propose_msg(int type, const char *key, rk_ts ballot,
				    rk_ts origin, const char *val)
{
	struct paxos_msg m = msg(type, key, ballot);
	m.proposal.ballot = ballot;
	m.proposal.origin = origin;
	m.proposal.value = cl_str(val);
	return m;
}

/* The last message node 1 sent to the phantom, decoded into *m (release
 * the return value); asserts there is one after index from. */
static void *last_to_phantom(size_t from, struct paxos_msg *m)
{
	long found = -1;
	for (size_t i = from; i < cl.n_msgs; i++)
		if (cl.msgs[i].to == PHANTOM)
			found = (long)i;
	cr_assert_geq(found, 0, "no reply to the phantom");
	return cl_open((size_t)found, m);
}

static size_t count_to_phantom(size_t from)
{
	size_t n = 0;
	for (size_t i = from; i < cl.n_msgs; i++)
		n += cl.msgs[i].to == PHANTOM;
	return n;
}

/* ---- acceptor -------------------------------------------------------- */

Test(paxos, acceptor_rejects_prepare_and_propose_below_its_promise)
{
	struct paxos_msg m, r;
	void *o;
	cl_start(1, NULL);

	m = msg(PAXOS_MSG_PREPARE, "k", cl_ts(100, PHANTOM));
	cl_inject(PHANTOM, 1, &m);
	o = last_to_phantom(0, &r);
	cr_assert_eq(r.type, PAXOS_MSG_PROMISE);
	cr_assert(r.ok);
	cr_assert_eq(r.req, 77);
	cr_assert(!r.current.present);
	paxos_wire_release(o);

	/* Lower prepare: refused, naming the promise. */
	size_t mark = cl.n_msgs;
	m = msg(PAXOS_MSG_PREPARE, "k", cl_ts(50, 4));
	cl_inject(4, 1, &m);
	cr_assert_eq(cl.msgs[mark].to, 4);
	o = cl_open(mark, &r);
	cr_assert(!r.ok);
	cr_assert_eq(rk_ts_cmp(r.promised, cl_ts(100, PHANTOM)), 0);
	paxos_wire_release(o);

	/* Lower propose: refused. */
	mark = cl.n_msgs;
	m = propose_msg(PAXOS_MSG_PROPOSE, "k", cl_ts(99, 4), cl_ts(99, 4),
			"x");
	cl_inject(4, 1, &m);
	o = cl_open(mark, &r);
	cr_assert_eq(r.type, PAXOS_MSG_ACCEPTED);
	cr_assert(!r.ok);
	paxos_wire_release(o);

	/* At the promise: accepted. */
	mark = cl.n_msgs;
	m = propose_msg(PAXOS_MSG_PROPOSE, "k", cl_ts(100, PHANTOM),
			cl_ts(100, PHANTOM), "v");
	cl_inject(PHANTOM, 1, &m);
	o = last_to_phantom(mark, &r);
	cr_assert(r.ok);
	paxos_wire_release(o);

	struct paxos_acceptor_state s;
	cr_assert_eq(paxos_acceptor_get(cl.nodes[1].px, KEY("k"), &s), 0);
	cr_assert(cl_value_is(&s.accepted.value, "v"));
	cr_assert_eq(rk_ts_cmp(s.promised, cl_ts(100, PHANTOM)), 0);
}

Test(paxos, acceptor_answers_only_after_persistence)
{
	cl_start(1, NULL);
	cl.nodes[1].manual = 1;
	struct paxos_msg m = msg(PAXOS_MSG_PREPARE, "k", cl_ts(100, PHANTOM));
	cl_inject(PHANTOM, 1, &m);
	cr_assert_eq(cl.nodes[1].persist_calls, 1);
	cr_assert_eq(count_to_phantom(0), 0, "promise before fsync");
	/* A duplicate of the same prepare must wait too: the promise it
	 * repeats is not durable yet. */
	cl_inject(PHANTOM, 1, &m);
	cr_assert_eq(count_to_phantom(0), 0, "duplicate promise before fsync");
	/* A refusal promises nothing and goes at once. */
	struct paxos_msg low = msg(PAXOS_MSG_PREPARE, "k", cl_ts(5, 4));
	cl_inject(4, 1, &low);
	cr_assert_eq(cl.n_msgs, 1);
	cr_assert_eq(cl.msgs[0].to, 4);
	cl_fsync(1);
	cr_assert_eq(count_to_phantom(0), 2);
	struct paxos_stats st;
	paxos_stats(cl.nodes[1].px, &st);
	cr_assert_eq(st.pending_replies, 0);
}

Test(paxos, promise_reports_the_in_progress_proposal_until_committed)
{
	struct paxos_msg m, r;
	void *o;
	cl_start(1, NULL);
	m = msg(PAXOS_MSG_PREPARE, "k", cl_ts(100, PHANTOM));
	cl_inject(PHANTOM, 1, &m);
	m = propose_msg(PAXOS_MSG_PROPOSE, "k", cl_ts(100, PHANTOM),
			cl_ts(100, PHANTOM), "v");
	cl_inject(PHANTOM, 1, &m);

	size_t mark = cl.n_msgs;
	m = msg(PAXOS_MSG_PREPARE, "k", cl_ts(200, PHANTOM));
	cl_inject(PHANTOM, 1, &m);
	o = last_to_phantom(mark, &r);
	cr_assert(r.ok);
	cr_assert_eq(rk_ts_cmp(r.accepted.ballot, cl_ts(100, PHANTOM)), 0);
	cr_assert(cl_value_is(&r.accepted.value, "v"));
	cr_assert(rk_ts_is_zero(r.committed));
	paxos_wire_release(o);

	/* Committed: the value is in the store at its origin, and the
	 * proposal is no longer in progress. */
	m = propose_msg(PAXOS_MSG_COMMIT, "k", cl_ts(100, PHANTOM),
			cl_ts(100, PHANTOM), "v");
	cl_inject(PHANTOM, 1, &m);
	const struct cl_rec *rec = cl_store_get(1, "k");
	cr_assert(rec && rec->present && rec->len == 1 && rec->val[0] == 'v');
	cr_assert_eq(rk_ts_cmp(rec->ts, cl_ts(100, PHANTOM)), 0);

	mark = cl.n_msgs;
	m = msg(PAXOS_MSG_PREPARE, "k", cl_ts(300, PHANTOM));
	cl_inject(PHANTOM, 1, &m);
	o = last_to_phantom(mark, &r);
	cr_assert(r.ok);
	cr_assert(rk_ts_is_zero(r.accepted.ballot));
	cr_assert_eq(rk_ts_cmp(r.committed, cl_ts(100, PHANTOM)), 0);
	cr_assert(cl_value_is(&r.current, "v"));
	cr_assert_eq(rk_ts_cmp(r.current_ts, cl_ts(100, PHANTOM)), 0);
	paxos_wire_release(o);
}

Test(paxos, acceptor_refuses_a_ballot_at_or_below_the_stored_record)
{
	struct paxos_msg m, r;
	void *o;
	cl_start(1, NULL);
	cl_store_put(1, "k", "plain", cl_ts(500, 3));
	m = msg(PAXOS_MSG_PREPARE, "k", cl_ts(400, PHANTOM));
	cl_inject(PHANTOM, 1, &m);
	o = last_to_phantom(0, &r);
	cr_assert(!r.ok);
	cr_assert_eq(rk_ts_cmp(r.promised, cl_ts(500, 3)), 0);
	paxos_wire_release(o);
	cr_assert_eq(cl.nodes[1].persist_calls, 0);
}

Test(paxos, acceptor_state_survives_restart)
{
	struct paxos_msg m, r;
	void *o;
	cl_start(1, NULL);
	m = msg(PAXOS_MSG_PREPARE, "k", cl_ts(100, PHANTOM));
	cl_inject(PHANTOM, 1, &m);
	m = propose_msg(PAXOS_MSG_PROPOSE, "k", cl_ts(100, PHANTOM),
			cl_ts(100, PHANTOM), "v");
	cl_inject(PHANTOM, 1, &m);
	cl_restart(1, NULL);

	size_t mark = cl.n_msgs;
	m = propose_msg(PAXOS_MSG_PROPOSE, "k", cl_ts(90, 4), cl_ts(90, 4),
			"w");
	cl_inject(4, 1, &m);
	o = cl_open(mark, &r);
	cr_assert(!r.ok, "a restarted acceptor forgot its promise");
	paxos_wire_release(o);

	mark = cl.n_msgs;
	m = msg(PAXOS_MSG_PREPARE, "k", cl_ts(200, PHANTOM));
	cl_inject(PHANTOM, 1, &m);
	o = last_to_phantom(mark, &r);
	cr_assert(r.ok);
	cr_assert(cl_value_is(&r.accepted.value, "v"),
		  "a restarted acceptor forgot what it accepted");
	paxos_wire_release(o);
}

Test(paxos, acceptor_refuses_a_second_value_under_one_ballot)
{
	struct paxos_msg m, r;
	void *o;
	cl_start(1, NULL);
	m = propose_msg(PAXOS_MSG_PROPOSE, "k", cl_ts(100, PHANTOM),
			cl_ts(100, PHANTOM), "v");
	cl_inject(PHANTOM, 1, &m);
	size_t mark = cl.n_msgs;
	m = propose_msg(PAXOS_MSG_PROPOSE, "k", cl_ts(100, PHANTOM),
			cl_ts(100, PHANTOM), "w");
	cl_inject(PHANTOM, 1, &m);
	o = last_to_phantom(mark, &r);
	cr_assert(!r.ok);
	paxos_wire_release(o);
}

/* ---- round trips ----------------------------------------------------- */

Test(paxos, uncontended_cas_takes_three_round_trips)
{
	cl_start(3, NULL);
	cas_on(1, 1, "k", NULL, "a");
	int waves = cl_settle();
	const struct cl_reply *r = cl_reply_of(1);
	cr_assert(r);
	cr_assert_eq(r->r.status, 0);
	cr_assert(r->r.applied);
	cr_assert(cl_value_is(&r->r.value, "a"));
	cr_assert_eq(r->r.round_trips, 3);
	cr_assert_eq(r->r.attempts, 1);
	/* The reply comes after a majority of commit acks: wave 6 (the third
	 * ack may still be on its way). */
	cr_assert_eq(waves, 6);
	for (int t = PAXOS_MSG_PREPARE; t <= PAXOS_MSG_COMMITTED; t++)
		cr_assert_eq(cl.sent_by_type[t], 3, "%s: %d",
			     paxos_msg_type_name(t), cl.sent_by_type[t]);
	/* The record's timestamp is the ballot, on every replica. */
	for (uint64_t i = 1; i <= 3; i++) {
		const struct cl_rec *rec = cl_store_get(i, "k");
		cr_assert(rec && rec->present);
		cr_assert_eq(rk_ts_cmp(rec->ts, r->r.ts), 0);
		cr_assert_eq(rec->ts.node, 1);
	}
}

Test(paxos, failed_condition_takes_one_round_trip)
{
	cl_start(3, NULL);
	cas_on(1, 1, "k", NULL, "a");
	cl_settle();
	memset(cl.sent_by_type, 0, sizeof(cl.sent_by_type));
	cas_on(1, 2, "k", "zzz", "b");
	int waves = cl_settle();
	const struct cl_reply *r = cl_reply_of(2);
	cr_assert(r && r->r.status == 0);
	cr_assert(!r->r.applied);
	cr_assert(cl_value_is(&r->r.value, "a"), "not applied returns current");
	cr_assert_eq(r->r.round_trips, 1);
	cr_assert_eq(waves, 2);
	cr_assert_eq(cl.sent_by_type[PAXOS_MSG_PREPARE], 3);
	cr_assert_eq(cl.sent_by_type[PAXOS_MSG_PROMISE], 3);
	cr_assert_eq(cl.sent_by_type[PAXOS_MSG_PROPOSE], 0);
}

Test(paxos, serial_read_takes_one_round_trip)
{
	cl_start(3, NULL);
	read_on(2, 1, "k");
	cl_settle();
	const struct cl_reply *r = cl_reply_of(1);
	cr_assert(r && r->r.status == 0 && !r->r.value.present);
	cr_assert(rk_ts_is_zero(r->r.ts));
	cas_on(1, 2, "k", NULL, "a");
	cl_settle();
	read_on(3, 3, "k");
	cl_settle();
	r = cl_reply_of(3);
	cr_assert(r && r->r.status == 0);
	cr_assert(cl_value_is(&r->r.value, "a"));
	cr_assert_eq(r->r.round_trips, 1);
}

Test(paxos, put_if_absent_and_delete_if)
{
	cl_start(3, NULL);
	struct paxos *p = cl.nodes[1].px;
	struct paxos_value a = cl_str("a"), b = cl_str("b");
	cr_assert_eq(
	    paxos_put_if_absent(p, 1, KEY("k"), cl_rf3, 3, &a, cl.now + SECOND),
	    0);
	cl_settle();
	cr_assert(cl_reply_of(1)->r.applied);
	cr_assert_eq(
	    paxos_put_if_absent(p, 2, KEY("k"), cl_rf3, 3, &b, cl.now + SECOND),
	    0);
	cl_settle();
	cr_assert(!cl_reply_of(2)->r.applied);
	cr_assert_eq(
	    paxos_delete_if(p, 3, KEY("k"), cl_rf3, 3, &b, cl.now + SECOND), 0);
	cl_settle();
	cr_assert(!cl_reply_of(3)->r.applied);
	cr_assert_eq(
	    paxos_delete_if(p, 4, KEY("k"), cl_rf3, 3, &a, cl.now + SECOND), 0);
	cl_settle();
	cr_assert(cl_reply_of(4)->r.applied);
	const struct cl_rec *rec = cl_store_get(2, "k");
	cr_assert(rec && !rec->present, "a tombstone");
	/* Absent again: put_if_absent applies. */
	cr_assert_eq(
	    paxos_put_if_absent(p, 5, KEY("k"), cl_rf3, 3, &b, cl.now + SECOND),
	    0);
	cl_settle();
	cr_assert(cl_reply_of(5)->r.applied);
}

/* ---- in-progress proposals ------------------------------------------- */

static uint64_t drop_propose_from;

static int drop_proposes(const struct cl_msg *cm, const struct paxos_msg *m)
{
	(void)m;
	return cm->from == drop_propose_from && cm->type == PAXOS_MSG_PROPOSE &&
	       cm->to != cm->from;
}

Test(paxos, proposer_finishes_an_in_progress_proposal_before_its_own)
{
	cl_start(3, NULL);
	/* Node 2's proposal reaches only node 2's own acceptor, and node 2
	 * gives up: "v1" is in progress on one acceptor. */
	drop_propose_from = 2;
	cl.filter = drop_proposes;
	struct paxos_cond c = {.kind = PAXOS_IF_EQUALS};
	struct paxos_value v1 = cl_str("v1");
	cr_assert_eq(paxos_cas(cl.nodes[2].px, 1, KEY("k"), cl_rf3, 3, &c, &v1,
			       cl.now + 100),
		     0);
	const struct cl_reply *r = cl_run(1, SECOND);
	cr_assert(r);
	cr_assert(r->r.status == RK_ETIMEOUT ||
		      r->r.status == RK_ECONTENTION_TIMEOUT,
		  "%s", rk_errname(r->r.status));
	cl.filter = NULL;

	/* Node 1 prepares; node 2's promise shows "v1" in progress: node 1
	 * finishes it first, then finds its own condition false. */
	size_t mark = cl.n_msgs;
	cas_on(1, 2, "k", NULL, "v2");
	r = cl_run(2, SECOND);
	cr_assert(r && r->r.status == 0, "%s", rk_errname(r->r.status));
	cr_assert(!r->r.applied);
	cr_assert(cl_value_is(&r->r.value, "v1"));
	cr_assert_eq(r->r.attempts, 2);
	long i = cl_find(mark, PAXOS_MSG_PROPOSE, 0);
	cr_assert_geq(i, 0);
	struct paxos_msg m;
	void *o = cl_open((size_t)i, &m);
	cr_assert(cl_value_is(&m.proposal.value, "v1"));
	cr_assert_eq(m.proposal.origin.node, 2, "the origin is kept");
	cr_assert_eq(m.proposal.ballot.node, 1);
	paxos_wire_release(o);
	struct paxos_stats st;
	paxos_stats(cl.nodes[1].px, &st);
	cr_assert_eq(st.repairs, 1);
	/* Everybody has v1, at its origin. */
	for (uint64_t n = 1; n <= 3; n++) {
		const struct cl_rec *rec = cl_store_get(n, "k");
		cr_assert(rec && rec->len == 2 && !memcmp(rec->val, "v1", 2));
		cr_assert_eq(rec->ts.node, 2);
	}
}

Test(paxos, serial_read_finishes_an_in_progress_proposal)
{
	cl_start(3, NULL);
	drop_propose_from = 2;
	cl.filter = drop_proposes;
	struct paxos_cond c = {.kind = PAXOS_IF_ANY};
	struct paxos_value v1 = cl_str("v1");
	cr_assert_eq(paxos_cas(cl.nodes[2].px, 1, KEY("k"), cl_rf3, 3, &c, &v1,
			       cl.now + 100),
		     0);
	cl_run(1, SECOND);
	cl.filter = NULL;
	read_on(1, 2, "k");
	const struct cl_reply *r = cl_run(2, SECOND);
	cr_assert(r && r->r.status == 0);
	cr_assert(cl_value_is(&r->r.value, "v1"));
	cr_assert_eq(r->r.attempts, 2);
}

static int drop_all_accepted(const struct cl_msg *cm, const struct paxos_msg *m)
{
	(void)m;
	return cm->type == PAXOS_MSG_ACCEPTED;
}

Test(paxos, proposer_recognises_its_own_proposal_after_losing_the_replies)
{
	cl_start(3, NULL);
	cl.filter = drop_all_accepted;
	cas_on(1, 1, "k", NULL, "a");
	cl_settle();
	cr_assert_null(cl_reply_of(1));
	cl.filter = NULL;
	/* The round times out; the retry's promises show our own proposal in
	 * progress: finishing it answers "applied", not "not applied". */
	const struct cl_reply *r = cl_run(1, 2 * SECOND);
	cr_assert(r && r->r.status == 0);
	cr_assert(r->r.applied);
	cr_assert_eq(r->r.attempts, 2);
	cr_assert(cl_value_is(&r->r.value, "a"));
	cr_assert_eq(r->r.ts.node, 1);
}

Test(paxos, proposer_recognises_its_own_decision_finished_by_another)
{
	cl_start(3, NULL);
	/* Node 1's proposal is accepted everywhere but the acceptances are
	 * lost; node 2's SERIAL read finds it in progress and commits it. */
	cl.filter = drop_all_accepted;
	cas_on(1, 1, "k", NULL, "a");
	cl_settle();
	cl.filter = NULL;
	read_on(2, 2, "k");
	const struct cl_reply *r = cl_run(2, SECOND);
	cr_assert(r && r->r.status == 0 && cl_value_is(&r->r.value, "a"));
	cr_assert_null(cl_reply_of(1));
	/* Node 1's retry sees its origin as the newest record: applied, not
	 * "condition false". */
	r = cl_run(1, 2 * SECOND);
	cr_assert(r && r->r.status == 0);
	cr_assert(r->r.applied);
	cr_assert_eq(r->r.attempts, 2);
	cr_assert_eq(r->r.round_trips, 3, "prepare, propose, prepare");
}

static int drop_committed(const struct cl_msg *cm, const struct paxos_msg *m)
{
	(void)m;
	return cm->type == PAXOS_MSG_COMMITTED && cl.now < 1000000 + 600;
}

Test(paxos, lost_commit_acks_are_retried_under_the_same_ballot)
{
	cl_start(3, NULL);
	cl.filter = drop_committed;
	cas_on(1, 1, "k", NULL, "a");
	const struct cl_reply *r = cl_run(1, 2 * SECOND);
	cr_assert(r && r->r.status == 0 && r->r.applied);
	cr_assert_eq(r->r.attempts, 1);
	cr_assert_geq(cl.sent_by_type[PAXOS_MSG_COMMIT], 6);
}

/* ---- contention, liveness, deadlines ---------------------------------- */

/* Before each PREPARE or PROPOSE from node 1 reaches an acceptor, a
 * phantom proposer gets a higher ballot promised there: node 1 loses every
 * round. */
static void preempt(const struct cl_msg *cm, const struct paxos_msg *m)
{
	if (cm->from != 1 ||
	    (m->type != PAXOS_MSG_PREPARE && m->type != PAXOS_MSG_PROPOSE))
		return;
	struct paxos_msg p = {.type = PAXOS_MSG_PREPARE,
			      .key = m->key,
			      .klen = m->klen,
			      .req = 1,
			      .ballot = cl_ts(m->ballot.hlc + 1, PHANTOM)};
	cr_assert_eq(paxos_recv(cl.nodes[cm->to].px, PHANTOM, &p), 0);
	cl_fsync(cm->to);
}

Test(paxos, losing_every_round_ends_in_contention_timeout)
{
	struct paxos_config cfg;
	paxos_config_defaults(&cfg);
	cfg.contention_timeout_ms = 300;
	cl_start(3, &cfg);
	cl.hook = preempt;
	uint64_t t0 = cl.now;
	cas_on(1, 1, "k", NULL, "a");
	const struct cl_reply *r = cl_run(1, 5 * SECOND);
	cr_assert(r);
	cr_assert_eq(r->r.status, RK_ECONTENTION_TIMEOUT, "%s",
		     rk_errname(r->r.status));
	cr_assert_gt(r->r.attempts, 3);
	cr_assert_geq(r->at - t0, 300);
	cr_assert_lt(r->at - t0, 300 + 200);
	struct paxos_stats st;
	paxos_stats(cl.nodes[1].px, &st);
	cr_assert_geq(st.preempted, 3);
}

Test(paxos, fewer_than_a_majority_up_is_unavailable)
{
	cl_start(3, NULL);
	cl.nodes[2].up = 0;
	cl.nodes[3].up = 0;
	cas_on(1, 1, "k", NULL, "a");
	const struct cl_reply *r = cl_reply_of(1);
	cr_assert(r, "answered at once");
	cr_assert_eq(r->r.status, RK_EUNAVAILABLE);
	cr_assert_eq(cl.n_msgs, 0);
	cl.nodes[3].up = 1;
	cas_on(1, 2, "k", NULL, "a");
	r = cl_run(2, SECOND);
	cr_assert(r && r->r.status == 0 && r->r.applied, "two of three do");
}

static int drop_everything(const struct cl_msg *cm, const struct paxos_msg *m)
{
	(void)cm;
	(void)m;
	return 1;
}

Test(paxos, no_replies_times_out_at_the_deadline)
{
	cl_start(3, NULL);
	cl.filter = drop_everything;
	uint64_t t0 = cl.now;
	struct paxos_cond c = {.kind = PAXOS_IF_EQUALS};
	struct paxos_value v = cl_str("a");
	cr_assert_eq(paxos_cas(cl.nodes[1].px, 1, KEY("k"), cl_rf3, 3, &c, &v,
			       t0 + 1234),
		     0);
	const struct cl_reply *r = cl_run(1, 5 * SECOND);
	cr_assert(r);
	cr_assert_eq(r->r.status, RK_ETIMEOUT);
	cr_assert_eq(r->at, t0 + 1234);
	cr_assert_gt(r->r.attempts, 1, "rounds are retried");
}

/* ---- one operation per key -------------------------------------------- */

Test(paxos, operations_on_one_key_run_one_at_a_time_in_order)
{
	struct paxos_config cfg;
	paxos_config_defaults(&cfg);
	cfg.max_queue = 2;
	cl_start(3, &cfg);
	cas_on(1, 1, "q", NULL, "a");
	cas_on(1, 2, "q", "a", "b");
	cas_on(1, 3, "q", "b", "c");
	cas_on(1, 4, "r", NULL, "x");
	cr_assert_eq(paxos_key_ops(cl.nodes[1].px, KEY("q")), 3);
	/* Full: the fourth on q is refused. */
	struct paxos_cond c = {.kind = PAXOS_IF_ANY};
	struct paxos_value v = cl_str("z");
	cr_assert_eq(paxos_cas(cl.nodes[1].px, 5, KEY("q"), cl_rf3, 3, &c, &v,
			       cl.now + SECOND),
		     RK_EOVERLOADED);
	/* One prepare round for q, one for r. */
	cr_assert_eq(cl.sent_by_type[PAXOS_MSG_PREPARE], 6);
	cl_settle();
	for (uint64_t t = 1; t <= 4; t++) {
		const struct cl_reply *r = cl_reply_of(t);
		cr_assert(r && r->r.status == 0 && r->r.applied, "op %d",
			  (int)t);
	}
	/* In order: replies for q came 1, 2, 3. */
	size_t seen = 0;
	for (size_t i = 0; i < cl.n_replies; i++)
		if (cl.replies[i].token <= 3)
			cr_assert_eq(cl.replies[i].token, ++seen);
	cr_assert_null(cl_reply_of(5));
	cr_assert_eq(paxos_key_ops(cl.nodes[1].px, KEY("q")), 0);
	struct paxos_stats st;
	paxos_stats(cl.nodes[1].px, &st);
	cr_assert_eq(st.active_keys, 0);
	cr_assert_eq(st.overloaded, 1);
}

Test(paxos, queued_operation_past_its_deadline_times_out)
{
	cl_start(3, NULL);
	cl.filter = drop_everything;
	struct paxos_cond c = {.kind = PAXOS_IF_ANY};
	struct paxos_value v = cl_str("a");
	cr_assert_eq(paxos_cas(cl.nodes[1].px, 1, KEY("q"), cl_rf3, 3, &c, &v,
			       cl.now + 1000),
		     0);
	cr_assert_eq(paxos_cas(cl.nodes[1].px, 2, KEY("q"), cl_rf3, 3, &c, &v,
			       cl.now + 100),
		     0);
	const struct cl_reply *r = cl_run(2, 5 * SECOND);
	cr_assert(r && r->r.status == RK_ETIMEOUT);
	cr_assert_null(cl_reply_of(1), "the running one still runs");
	r = cl_run(1, 5 * SECOND);
	cr_assert(r && r->r.status == RK_ETIMEOUT);
}

/* ---- pruning ---------------------------------------------------------- */

Test(paxos, state_is_pruned_once_the_commit_says_it_all)
{
	cl_start(3, NULL);
	cas_on(1, 1, "k", NULL, "a");
	cl_settle();
	cas_on(1, 2, "k", "a", "b");
	cl_settle();
	cr_assert(cl_reply_of(2)->r.applied);
	for (uint64_t n = 1; n <= 3; n++) {
		struct paxos_acceptor_state s;
		cr_assert_eq(paxos_acceptor_get(cl.nodes[n].px, KEY("k"), &s),
			     RK_ENOT_FOUND, "n%d keeps state", (int)n);
		cr_assert_eq(cl.nodes[n].prune_calls, 2);
		/* The persisted record says "no state". */
		const uint8_t *key;
		size_t klen;
		void *o;
		cr_assert_eq(
		    paxos_wire_decode_state(cl.nodes[n].persisted[0],
					    cl.nodes[n].persisted_len[0], &key,
					    &klen, &s, &o),
		    0);
		cr_assert(paxos_state_empty(&s));
		paxos_wire_release(o);
	}
	/* A pruned acceptor still refuses what it promised not to accept:
	 * its floor is the record's timestamp. */
	struct paxos_msg m =
	    propose_msg(PAXOS_MSG_PROPOSE, "k", cl_ts(1, PHANTOM),
			cl_ts(1, PHANTOM), "old");
	size_t mark = cl.n_msgs;
	cl_inject(PHANTOM, 2, &m);
	struct paxos_msg r;
	void *o = last_to_phantom(mark, &r);
	cr_assert(!r.ok);
	paxos_wire_release(o);
}

Test(paxos, state_above_the_record_is_kept)
{
	cl_start(3, NULL);
	cas_on(1, 1, "k", NULL, "a");
	cl_settle();
	/* A newer promise: the state now says more than the record. */
	struct paxos_msg m =
	    msg(PAXOS_MSG_PREPARE, "k", cl_ts(cl.now << 20, PHANTOM));
	cl_inject(PHANTOM, 2, &m);
	struct paxos_acceptor_state s;
	cr_assert_eq(paxos_acceptor_get(cl.nodes[2].px, KEY("k"), &s), 0);
	/* A commit finished by someone else (ballot above its origin) keeps
	 * the promise too. */
	struct paxos_msg c = propose_msg(
	    PAXOS_MSG_COMMIT, "j", cl_ts(900, PHANTOM), cl_ts(800, 4), "x");
	cl_inject(PHANTOM, 3, &c);
	cr_assert_eq(paxos_acceptor_get(cl.nodes[3].px, KEY("j"), &s), 0);
	cr_assert_eq(rk_ts_cmp(s.promised, cl_ts(900, PHANTOM)), 0);
}

/* ---- mixing with plain writes ----------------------------------------- */

Test(paxos, plain_write_newer_than_the_last_cas_is_what_cas_sees)
{
	cl_start(3, NULL);
	cas_on(1, 1, "k", NULL, "a");
	cl_settle();
	rk_ts cas_ts = cl_reply_of(1)->r.ts;
	/* A plain QUORUM put from a coordinator whose clock runs 10 s ahead
	 * reaches two replicas. */
	rk_ts put_ts = cl_ts(cas_ts.hlc + (10000ull << 16), 5);
	cl_store_put(2, "k", "plain", put_ts);
	cl_store_put(3, "k", "plain", put_ts);
	cas_on(1, 2, "k", "a", "b");
	const struct cl_reply *r = cl_run(2, SECOND);
	cr_assert(r && r->r.status == 0);
	cr_assert(!r->r.applied, "the put overwrote a");
	cr_assert(cl_value_is(&r->r.value, "plain"));
	cas_on(1, 3, "k", "plain", "c");
	r = cl_run(3, SECOND);
	cr_assert(r && r->r.status == 0 && r->r.applied);
	/* Its ballot, and so its record, is newer than the future put:
	 * plain reads see c. */
	cr_assert_gt(rk_ts_cmp(r->r.ts, put_ts), 0);
	for (uint64_t n = 1; n <= 3; n++) {
		const struct cl_rec *rec = cl_store_get(n, "k");
		cr_assert(rec->len == 1 && rec->val[0] == 'c');
	}
}

Test(paxos, plain_write_older_than_the_last_cas_is_lost)
{
	cl_start(3, NULL);
	cas_on(1, 1, "k", NULL, "a");
	cl_settle();
	rk_ts cas_ts = cl_reply_of(1)->r.ts;
	/* A put stamped by a clock behind the ballot: last-writer-wins drops
	 * it everywhere, and SERIAL reads keep seeing the CAS result. */
	for (uint64_t n = 1; n <= 3; n++)
		cl_store_put(n, "k", "late", cl_ts(cas_ts.hlc - 1, 5));
	read_on(1, 2, "k");
	const struct cl_reply *r = cl_run(2, SECOND);
	cr_assert(r && cl_value_is(&r->r.value, "a"));
}

static uint64_t cut_node;

static int cut(const struct cl_msg *cm, const struct paxos_msg *m)
{
	(void)m;
	return cm->to == cut_node || cm->from == cut_node;
}

Test(paxos, plain_write_at_a_minority_makes_serial_reads_disagree)
{
	cl_start(3, NULL);
	cas_on(1, 1, "k", NULL, "a");
	cl_settle();
	rk_ts cas_ts = cl_reply_of(1)->r.ts;
	/* A plain write that reached one replica (W=1, or a failed QUORUM
	 * write): newer, but on a minority. */
	cl_store_put(3, "k", "p", cl_ts(cas_ts.hlc + 1000, 5));
	const char *want[3] = {"a", "p", "a"};
	uint64_t cuts[3] = {3, 2, 3};
	for (int i = 0; i < 3; i++) {
		cut_node = cuts[i];
		cl.filter = cut;
		read_on(1, (uint64_t)(10 + i), "k");
		const struct cl_reply *r = cl_run((uint64_t)(10 + i), SECOND);
		cr_assert(r && r->r.status == 0);
		cr_assert(cl_value_is(&r->r.value, want[i]), "read %d", i);
	}
	/* a, p, a: not linearizable - which is why CAS promises
	 * linearizability only when every write to the key goes through
	 * Paxos.  The next CAS that sees p makes it a decision. */
	cl.filter = NULL;
	cut_node = 2;
	cl.filter = cut;
	cas_on(1, 20, "k", "p", "c");
	const struct cl_reply *r = cl_run(20, SECOND);
	cr_assert(r && r->r.status == 0 && r->r.applied);
}

/* ---- duplicates -------------------------------------------------------- */

static void duplicate(const struct cl_msg *cm, const struct paxos_msg *m)
{
	/* Deliver every message twice: once now, once again at once. */
	if (cl.nodes[cm->to].exists)
		cr_assert_eq(paxos_recv(cl.nodes[cm->to].px, cm->from, m), 0);
}

Test(paxos, duplicated_messages_change_nothing)
{
	cl_start(3, NULL);
	cl.hook = duplicate;
	cas_on(1, 1, "k", NULL, "a");
	cas_on(1, 2, "k", "a", "b");
	cas_on(1, 3, "k", "a", "c");
	cl_settle();
	cr_assert(cl_reply_of(1)->r.applied);
	cr_assert(cl_reply_of(2)->r.applied);
	cr_assert(!cl_reply_of(3)->r.applied);
	cr_assert(cl_value_is(&cl_reply_of(3)->r.value, "b"));
	cr_assert_eq(cl_reply_of(2)->r.round_trips, 3);
}

/* ---- input checks ------------------------------------------------------ */

Test(paxos, bad_arguments_are_refused)
{
	cl_start(3, NULL);
	struct paxos *p = cl.nodes[1].px;
	struct paxos_cond c = {.kind = PAXOS_IF_ANY};
	struct paxos_value v = cl_str("a");
	uint64_t dup[3] = {1, 2, 2}, zero[2] = {1, 0};
	cr_assert_eq(paxos_cas(p, 1, KEY(""), cl_rf3, 3, &c, &v, cl.now + 9),
		     RK_EINVALID);
	cr_assert_eq(paxos_cas(p, 1, KEY("k"), dup, 3, &c, &v, cl.now + 9),
		     RK_EINVALID);
	cr_assert_eq(paxos_cas(p, 1, KEY("k"), zero, 2, &c, &v, cl.now + 9),
		     RK_EINVALID);
	cr_assert_eq(paxos_cas(p, 1, KEY("k"), cl_rf3, 0, &c, &v, cl.now + 9),
		     RK_EINVALID);
	char big[1100];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	cr_assert_eq(paxos_cas(p, 1, KEY(big), cl_rf3, 3, &c, &v, cl.now + 9),
		     RK_EINVALID);
	struct paxos_msg m = msg(PAXOS_MSG_PREPARE, "k", cl_ts(0, 0));
	cr_assert_eq(paxos_recv(p, PHANTOM, &m), RK_EINVALID);
	cr_assert_eq(cl.n_replies, 0);
}
