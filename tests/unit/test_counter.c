/* Counters outside the simulator: the pure rules of repl/counter.c, the
 * store's counter path over real files (adds, the dedup window across
 * restarts and compaction, WRONG_TYPE, the wait for fsync, deletes), and
 * the client and peer codecs of the counter messages. */
#define _XOPEN_SOURCE 700
#include <criterion/criterion.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "counter.h"
#include "crdt.h"
#include "err.h"
#include "frame.h"
#include "peer_wire.h"
#include "store.h"
#include "wire.h"

#define NOW 1700000000000ull

/* ------------------------------------------------------------------ */
/* the pure rules                                                      */

Test(counter, join_rule)
{
	rk_ts t1 = {1, 1}, t2 = {2, 1};
	cr_assert_eq(counter_join_rule(0, 0, t1, 0, t1), COUNTER_REPLACE);
	cr_assert_eq(counter_join_rule(0, 0, t1, 1, t1), COUNTER_REPLACE);
	/* registers: last writer wins */
	cr_assert_eq(counter_join_rule(1, 0, t1, 0, t2), COUNTER_REPLACE);
	cr_assert_eq(counter_join_rule(1, 0, t2, 0, t1), COUNTER_KEEP);
	cr_assert_eq(counter_join_rule(1, 0, t2, 0, t2), COUNTER_KEEP);
	/* a counter is above every register, whatever the stamps */
	cr_assert_eq(counter_join_rule(1, 1, t1, 0, t2), COUNTER_KEEP);
	cr_assert_eq(counter_join_rule(1, 0, t2, 1, t1), COUNTER_REPLACE);
	cr_assert_eq(counter_join_rule(1, 1, t2, 1, t1), COUNTER_MERGE);
}

Test(counter, type_check)
{
	char why[128];
	cr_assert_eq(counter_type_check(0, 0, 0, 1, why, sizeof(why)), 0);
	cr_assert_eq(counter_type_check(1, 1, 0, 0, why, sizeof(why)),
		     RK_EWRONG_TYPE);
	cr_assert(strstr(why, "counter") != NULL);
	cr_assert_eq(counter_type_check(1, 0, 1, 1, why, sizeof(why)),
		     RK_EWRONG_TYPE);
	/* a register tombstone does not keep a counter out */
	cr_assert_eq(counter_type_check(1, 0, 0, 1, NULL, 0), 0);
	cr_assert_eq(counter_type_check(1, 1, 0, 1, NULL, 0), 0);
	cr_assert_eq(counter_type_check(1, 0, 1, 0, NULL, 0), 0);
}

Test(counter, merge_bytes_takes_states_and_deltas_only)
{
	struct crdt_counter *a, *b;
	cr_assert_eq(crdt_new(0, &a), 0);
	cr_assert_eq(crdt_new(0, &b), 0);
	struct crdt_opid op;
	crdt_opid_make(&op, NOW, 77);
	struct crdt_delta d;
	cr_assert_eq(crdt_add(a, 5, 7, &op, &d), 0);
	uint8_t db[CRDT_DELTA_SIZE];
	crdt_delta_encode(&d, db);
	struct crdt_opid got;
	cr_assert_eq(counter_merge_bytes(b, db, sizeof(db), &got), 1);
	cr_assert(!memcmp(got.b, op.b, CRDT_OPID_LEN), "the delta's op id");
	cr_assert_eq(counter_merge_bytes(b, db, sizeof(db), NULL), 0,
		     "a delta twice changes nothing");
	cr_assert_eq(crdt_add(a, 9, -3, NULL, NULL), 0);
	uint8_t sb[CRDT_STATE_FIXED + 2 * CRDT_ENTRY_SIZE];
	cr_assert_eq(crdt_encoded_size(a), sizeof(sb));
	crdt_encode(a, sb);
	cr_assert_eq(counter_merge_bytes(b, sb, sizeof(sb), &got), 1);
	cr_assert(crdt_opid_is_zero(&got));
	cr_assert(crdt_equal(a, b));
	int64_t v;
	int found;
	cr_assert_eq(counter_value_of(sb, sizeof(sb), &v, &found), 0);
	cr_assert(v == 4 && found);
	sb[30] ^= 1;
	cr_assert_eq(counter_merge_bytes(b, sb, sizeof(sb), NULL), RK_ECORRUPT);
	uint8_t wb[COUNTER_WINDOW_FIXED];
	counter_window_encode(5, NULL, 0, wb);
	cr_assert_eq(counter_merge_bytes(b, wb, sizeof(wb), NULL), RK_ECORRUPT,
		     "a window batch is not counter bytes");
	cr_assert_eq(counter_form((const uint8_t *)"xy", 2), RK_ECORRUPT);
	crdt_free(a);
	crdt_free(b);
}

Test(counter, window_batches_round_trip_and_detect_damage)
{
	struct crdt_opid ids[3];
	for (int i = 0; i < 3; i++)
		crdt_opid_make(&ids[i], NOW + (uint64_t)i, (uint64_t)i + 1);
	size_t n = counter_window_size(3);
	uint8_t *b = malloc(n);
	counter_window_encode(NOW - 5, ids, 3, b);
	uint64_t wm;
	const uint8_t *p;
	uint32_t k;
	cr_assert_eq(counter_window_decode(b, n, &wm, &p, &k), 0);
	cr_assert(wm == NOW - 5 && k == 3);
	cr_assert(!memcmp(p + 32, ids[2].b, CRDT_OPID_LEN));
	for (size_t i = 0; i < n; i++) {
		b[i] ^= 0x10;
		cr_assert_eq(counter_window_decode(b, n, &wm, &p, &k),
			     RK_ECORRUPT, "flipped byte %zu", i);
		b[i] ^= 0x10;
	}
	cr_assert_eq(counter_window_decode(b, n - 1, &wm, &p, &k), RK_ECORRUPT);
	free(b);
}

/* ------------------------------------------------------------------ */
/* the store                                                           */

static int rm_one(const char *p, const struct stat *sb, int flag,
		  struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(p);
}

static char *tmpdir(void)
{
	const char *t = getenv("TMPDIR");
	char *d = malloc(512);
	snprintf(d, 512, "%s/rkv-counter-XXXXXX", t && *t ? t : "/tmp");
	cr_assert_not_null(mkdtemp(d));
	return d;
}

static struct rk_logger quiet;

static struct store *open_store_every(const char *dir, enum rk_fsync f,
				      uint64_t interval_ms, uint64_t now)
{
	rk_logger_init(&quiet, "test", RK_LOG_ERROR);
	struct store_config c = {
	    .data_dir = dir,
	    .fsync = f,
	    .fsync_interval_ms = interval_ms,
	    .segment_bytes = 1 << 20,
	    .zstd_level = 1,
	    .compact_min_bytes = UINT64_MAX,
	    .compact_ratio_pct = 100,
	    .tombstone_grace_ms = 1000,
	    .compact_step_records = 100,
	    .compact_backlog_bytes = 1 << 20,
	    .clock_window_ms = 2000,
	    .dedup_max_ids = 1000,
	    .dedup_max_age_ms = 3600000,
	};
	struct store *s;
	char err[512];
	cr_assert_eq(store_open(&c, &quiet, now, &s, err, sizeof(err)), 0,
		     "store_open: %s", err);
	cr_assert_eq(store_start(s, NULL, NULL), 0);
	return s;
}

static struct store *open_store(const char *dir, enum rk_fsync f, uint64_t now)
{
	return open_store_every(dir, f, 10, now);
}

/* Waits until everything logged is durable, then shows our adds. */
static void sync_all(struct store *s)
{
	uint64_t want = store_log_end(s) - 1;
	for (int i = 0; store_durable_lsn(s) < want; i++) {
		store_flush(s);
		usleep(1000);
		store_settle(s);
		cr_assert_lt(i, 10000, "never durable");
	}
}

static int add(struct store *s, const char *key, int64_t delta,
	       const struct crdt_opid *op, uint64_t now, int64_t *value)
{
	const uint8_t *d;
	rk_ts ts;
	uint64_t lsn;
	int64_t v;
	char why[256];
	int rc = store_counter_add(s, key, strlen(key), delta, op, now, &d, &ts,
				   &lsn, value ? value : &v, why, sizeof(why));
	if (rc >= 0 && rc != 1)
		cr_assert_not_null(d);
	return rc;
}

static int64_t value_of(struct store *s, const char *key, int *found)
{
	const struct rk_rec *r = store_get(s, key, strlen(key));
	int64_t v = 0;
	*found = 0;
	if (r) {
		cr_assert_eq(r->type, RK_REC_COUNTER);
		cr_assert_eq(
		    counter_value_of(rk_rec_value(r), r->vlen, &v, found), 0);
	}
	return v;
}

Test(counter_store, adds_dedup_across_restart_and_compaction)
{
	char *dir = tmpdir();
	struct store *s = open_store(dir, RK_FSYNC_ALWAYS, NOW);
	struct crdt_opid ops[50];
	int64_t sum = 0, v;
	for (int i = 0; i < 50; i++) {
		crdt_opid_make(&ops[i], NOW - 1000 + (uint64_t)i,
			       0x1000 + (uint64_t)i);
		cr_assert_eq(add(s, "c", i % 7 - 2, &ops[i], NOW, &v), 0);
		sum += i % 7 - 2;
		cr_assert_eq(v, sum, "the owner's value after the add");
	}
	int found;
	/* Not durable yet: not shown (store.c, "Adds wait for their
	 * fsync"), unless the writer was quick. */
	sync_all(s);
	cr_assert_eq(value_of(s, "c", &found), sum);
	cr_assert_eq(add(s, "c", 100, &ops[3], NOW, &v), 1, "a retry");
	cr_assert_eq(v, sum, "... is not counted again");
	store_close(s);

	/* Restart: the window comes back from the log. */
	s = open_store(dir, RK_FSYNC_ALWAYS, NOW + 10);
	cr_assert_eq(value_of(s, "c", &found), sum);
	for (int i = 0; i < 50; i++)
		cr_assert_eq(add(s, "c", 5, &ops[i], NOW + 10, NULL), 1,
			     "op %d remembered after a restart", i);
	/* Compaction drops the records that carried the op ids: the
	 * snapshot keeps the window. */
	cr_assert_eq(store_compact_now(s), 0);
	for (int i = 0; store_compacting(s); i++) {
		while (store_compact_step(s, NOW + 10))
			;
		store_maintain(s, NOW + 10);
		usleep(1000);
		cr_assert_lt(i, 20000);
	}
	struct store_stats st;
	store_get_stats(s, &st);
	cr_assert_eq(st.compactions, 1);
	store_close(s);
	s = open_store(dir, RK_FSYNC_ALWAYS, NOW + 20);
	store_get_stats(s, &st);
	cr_assert_gt(st.replay.snapshot_records, 0);
	cr_assert_eq(st.dedup.ids, 50,
		     "the window came back from the snapshot");
	cr_assert_eq(value_of(s, "c", &found), sum);
	for (int i = 0; i < 50; i++)
		cr_assert_eq(add(s, "c", 5, &ops[i], NOW + 20, NULL), 1,
			     "op %d remembered after compaction", i);
	cr_assert_eq(st.counters, 1);
	store_close(s);
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(dir);
}

Test(counter_store, window_refuses_what_it_cannot_judge)
{
	char *dir = tmpdir();
	struct store *s = open_store(dir, RK_FSYNC_NEVER, NOW);
	struct crdt_opid op;
	crdt_opid_make(&op, NOW - 2 * 3600000ull, 1);
	cr_assert_eq(add(s, "c", 1, &op, NOW, NULL), RK_EINVALID,
		     "older than the age window");
	crdt_opid_make(&op, NOW + 3600000ull, 2);
	cr_assert_eq(add(s, "c", 1, &op, NOW, NULL), RK_EINVALID,
		     "too far ahead of our clock");
	/* More ids than the window holds: the oldest are forgotten, and
	 * their retries refused rather than counted twice. */
	for (int i = 0; i < 1100; i++) {
		crdt_opid_make(&op, NOW - 5000 + (uint64_t)i,
			       100 + (uint64_t)i);
		cr_assert_eq(add(s, "c", 1, &op, NOW, NULL), 0);
	}
	crdt_opid_make(&op, NOW - 5000, 100);
	cr_assert_eq(add(s, "c", 1, &op, NOW, NULL), RK_EINVALID);
	crdt_opid_make(&op, NOW - 5000 + 1099, 100 + 1099);
	cr_assert_eq(add(s, "c", 1, &op, NOW, NULL), 1);
	int found;
	sync_all(s);
	cr_assert_eq(value_of(s, "c", &found), 1100);
	store_close(s);
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(dir);
}

Test(counter_store, wrong_type_join_and_delete)
{
	char *dir = tmpdir();
	struct store *s = open_store(dir, RK_FSYNC_NEVER, NOW);
	rk_ts ts;
	uint64_t lsn;
	cr_assert_eq(
	    store_write(s, RK_REC_VALUE, "v", 1, "x", 1, NOW, &ts, &lsn), 0);
	struct crdt_opid op;
	crdt_opid_make(&op, NOW, 9);
	cr_assert_eq(add(s, "v", 1, &op, NOW, NULL), RK_EWRONG_TYPE);
	/* A counter arriving from a replica takes the key over a register
	 * (the join rule), and a later register write does not replace it. */
	struct crdt_counter *c;
	crdt_new(0, &c);
	crdt_add(c, 42, 3, NULL, NULL);
	uint8_t sb[CRDT_STATE_FIXED + CRDT_ENTRY_SIZE];
	crdt_encode(c, sb);
	cr_assert_eq(store_apply(s, RK_REC_COUNTER, "v", 1, sb, sizeof(sb),
				 (rk_ts){1, 1}, &lsn),
		     1);
	cr_assert_eq(store_apply(s, RK_REC_VALUE, "v", 1, "y", 1,
				 (rk_ts){ts.hlc + 100, 1}, &lsn),
		     0);
	int found;
	cr_assert_eq(value_of(s, "v", &found), 3);
	cr_assert_eq(store_apply(s, RK_REC_COUNTER, "v", 1, sb, sizeof(sb),
				 (rk_ts){1, 1}, &lsn),
		     0, "a state already covered changes nothing");
	/* A delete: a newer generation with no entries. */
	struct crdt_counter *del;
	crdt_new(0, &del);
	rk_ts gen;
	cr_assert_eq(store_stamp(s, NOW, &gen), 0);
	crdt_delete(del, gen);
	uint8_t db[CRDT_STATE_FIXED];
	crdt_encode(del, db);
	cr_assert_eq(
	    store_apply(s, RK_REC_COUNTER, "v", 1, db, sizeof(db), gen, &lsn),
	    1);
	value_of(s, "v", &found);
	cr_assert_not(found, "deleted");
	struct store_stats st;
	store_get_stats(s, &st);
	cr_assert_eq(st.tombstones, 1, "a deleted counter counts as one");
	cr_assert_eq(st.counters, 0);
	cr_assert_eq(add(s, "v", 4, &op, NOW, NULL), 0,
		     "an add after the delete starts from zero");
	sync_all(s);
	cr_assert_eq(value_of(s, "v", &found), 4);
	store_close(s);
	/* Replay agrees. */
	s = open_store(dir, RK_FSYNC_NEVER, NOW);
	cr_assert_eq(value_of(s, "v", &found), 4);
	store_close(s);
	crdt_free(c);
	crdt_free(del);
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(dir);
}

/* store.c, "Adds wait for their fsync": under fsync=interval (and never)
 * an owner's add is fdatasync'd before anything of it leaves, and a
 * register logged behind it waits for that too. */
Test(counter_store, an_add_is_on_disk_before_it_leaves_whatever_the_policy)
{
	static const enum rk_fsync policies[] = {RK_FSYNC_INTERVAL,
						 RK_FSYNC_NEVER};
	for (size_t p = 0; p < 2; p++) {
		char *dir = tmpdir();
		/* An hour between the policy's own fsyncs. */
		struct store *s =
		    open_store_every(dir, policies[p], 3600000, NOW);
		uint64_t before = store_durable_lsn(s);
		struct crdt_opid op;
		crdt_opid_make(&op, NOW, 0x5151);
		const uint8_t *d;
		rk_ts ts;
		uint64_t add_lsn, reg_lsn;
		int64_t v;
		char why[256];
		cr_assert_eq(store_counter_add(s, "c", 1, 5, &op, NOW, &d, &ts,
					       &add_lsn, &v, why, sizeof(why)),
			     0);
		cr_assert_eq(store_write(s, RK_REC_VALUE, "r", 1, "x", 1, NOW,
					 &ts, &reg_lsn),
			     0);
		cr_assert_gt(reg_lsn, add_lsn);
		cr_assert_lt(store_durable_lsn(s), add_lsn,
			     "policy %zu: the add may not leave before its "
			     "fdatasync", p);
		cr_assert_geq(store_durable_lsn(s), before);
		int found;
		store_settle(s);
		value_of(s, "c", &found);
		cr_assert_not(found, "not shown before its fdatasync");
		store_flush(s);
		for (int i = 0; store_synced_lsn(s) < add_lsn; i++) {
			usleep(1000);
			cr_assert_lt(i, 10000,
				     "policy %zu: the add was not fdatasync'd "
				     "though the policy's next fsync is an "
				     "hour away", p);
		}
		store_settle(s);
		cr_assert_geq(store_durable_lsn(s), reg_lsn,
			      "the register behind it is released too");
		cr_assert_eq(value_of(s, "c", &found), 5);
		cr_assert(found, "shown once on disk");
		store_close(s);
		nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
		free(dir);
	}
}

/* ------------------------------------------------------------------ */
/* codecs                                                              */

static const struct rk_wire_limits LIM = {1024, 1 << 20, 1024};

static int decode_req(const struct rk_request *q, struct rk_request *out,
		      struct rk_wire_msg **w)
{
	struct rk_buf b;
	rk_buf_init(&b);
	cr_assert_eq(rk_wire_encode_request(&b, q), 0);
	char err[128];
	int rc =
	    rk_wire_decode_request(b.data + RK_FRAME_HDR, b.len - RK_FRAME_HDR,
				   &LIM, out, w, err, sizeof(err));
	rk_buf_destroy(&b);
	return rc;
}

Test(counter_wire, requests_round_trip_and_bad_op_ids_are_refused)
{
	uint8_t id[RK_OPID_LEN];
	memset(id, 0xab, sizeof(id));
	struct rk_request q = {.id = 7,
			       .op = RK_OP_COUNTER_ADD,
			       .key = {(const uint8_t *)"k", 1},
			       .delta = -12345678901ll,
			       .op_id = {id, sizeof(id)},
			       .consistency = RK_CL_ALL};
	struct rk_request out;
	struct rk_wire_msg *w;
	cr_assert_eq(decode_req(&q, &out, &w), 0);
	cr_assert(out.op == RK_OP_COUNTER_ADD && out.delta == q.delta &&
		  out.op_id.n == RK_OPID_LEN &&
		  !memcmp(out.op_id.p, id, RK_OPID_LEN) &&
		  out.consistency == RK_CL_ALL);
	rk_wire_msg_free(w);
	q.op_id.n = 5;
	cr_assert_eq(decode_req(&q, &out, &w), RK_EBAD_REQUEST);
	memset(id, 0, sizeof(id));
	q.op_id.n = RK_OPID_LEN;
	cr_assert_eq(decode_req(&q, &out, &w), RK_EBAD_REQUEST, "zero op id");
	q.op_id.n = 0;
	cr_assert_eq(decode_req(&q, &out, &w), 0, "none: the node makes one");
	rk_wire_msg_free(w);
	q.consistency = RK_CL_SERIAL;
	cr_assert_eq(decode_req(&q, &out, &w), RK_EBAD_REQUEST);
	q.consistency = RK_CL_ONE;
	q.key.n = 0;
	cr_assert_eq(decode_req(&q, &out, &w), RK_EEMPTY_KEY);
	struct rk_request g = {.id = 8,
			       .op = RK_OP_COUNTER_GET,
			       .key = {(const uint8_t *)"k", 1},
			       .all_replies = 1,
			       .local = 1};
	cr_assert_eq(decode_req(&g, &out, &w), 0);
	cr_assert(out.op == RK_OP_COUNTER_GET && out.all_replies && out.local);
	rk_wire_msg_free(w);
	struct rk_request d = {.id = 9,
			       .op = RK_OP_COUNTER_DELETE,
			       .key = {(const uint8_t *)"k", 1}};
	cr_assert_eq(decode_req(&d, &out, &w), 0);
	cr_assert_eq(out.op, RK_OP_COUNTER_DELETE);
	rk_wire_msg_free(w);
}

Test(counter_wire, result_round_trips_with_replicas)
{
	struct rk_replica_reply reps[2] = {
	    {.node_id = 1, .status = 0, .counter = -5},
	    {.node_id = 2, .status = RK_ETIMEOUT}};
	struct rk_response r = {.id = 3,
				.op = RK_OP_COUNTER_GET,
				.counter = INT64_MIN,
				.duplicate = 1,
				.owner = 99,
				.replies = reps,
				.n_replies = 2};
	struct rk_buf b;
	rk_buf_init(&b);
	cr_assert_eq(rk_wire_encode_response(&b, &r), 0);
	struct rk_response out;
	struct rk_wire_msg *w;
	char err[128];
	cr_assert_eq(rk_wire_decode_response(b.data + RK_FRAME_HDR,
					     b.len - RK_FRAME_HDR, &out, &w,
					     err, sizeof(err)),
		     0);
	cr_assert(out.counter == INT64_MIN && out.duplicate && out.owner == 99);
	cr_assert_eq(out.n_replies, 2);
	cr_assert(out.replies[0].counter == -5 &&
		  out.replies[1].status == RK_ETIMEOUT);
	rk_wire_msg_free(w);
	rk_buf_destroy(&b);
}

static int peer_roundtrip(const struct peer_msg *in, struct peer_msg *out,
			  struct peer_wire_msg **w)
{
	struct rk_buf b;
	rk_buf_init(&b);
	cr_assert_eq(peer_wire_encode(&b, in), 0);
	char err[128];
	struct peer_wire_limits lim = {1 << 20, 1024, 1 << 20};
	int rc = peer_wire_decode(b.data + RK_FRAME_HDR, b.len - RK_FRAME_HDR,
				  &lim, out, w, err, sizeof(err));
	rk_buf_destroy(&b);
	return rc;
}

Test(counter_wire, peer_counter_messages_round_trip)
{
	struct peer_msg in = {.op = PEER_OP_REPL};
	in.repl.type = REPL_COUNTER_ADD;
	in.repl.rid = 11;
	in.repl.rec.key = (const uint8_t *)"key";
	in.repl.rec.klen = 3;
	in.repl.delta = -7;
	crdt_opid_make(&in.repl.op, NOW, 5);
	in.repl.cl = 2;
	struct peer_msg out;
	struct peer_wire_msg *w;
	cr_assert_eq(peer_roundtrip(&in, &out, &w), 0);
	cr_assert(out.op == PEER_OP_REPL && out.repl.type == REPL_COUNTER_ADD &&
		  out.repl.rid == 11 && out.repl.delta == -7 &&
		  out.repl.cl == 2 && out.repl.rec.klen == 3 &&
		  !memcmp(out.repl.op.b, in.repl.op.b, CRDT_OPID_LEN));
	peer_wire_msg_free(w);
	in.repl.cl = 9;
	cr_assert_eq(peer_roundtrip(&in, &out, &w), RK_EBAD_REQUEST);

	struct peer_msg rep = {.op = PEER_OP_REPL};
	rep.repl.type = REPL_COUNTER_ADD_REPLY;
	rep.repl.rid = 12;
	rep.repl.status = RK_ETIMEOUT;
	rep.repl.detail = "slow";
	rep.repl.maybe_applied = 1;
	rep.repl.value = 77;
	cr_assert_eq(peer_roundtrip(&rep, &out, &w), 0);
	cr_assert(out.repl.type == REPL_COUNTER_ADD_REPLY &&
		  out.repl.status == RK_ETIMEOUT && out.repl.maybe_applied &&
		  out.repl.value == 77 && !strcmp(out.repl.detail, "slow"));
	peer_wire_msg_free(w);

	/* A counter record in a write: needs counter bytes. */
	uint8_t db[CRDT_DELTA_SIZE];
	struct crdt_delta d = {.e = {1, 2, 0}};
	crdt_delta_encode(&d, db);
	struct peer_msg wr = {.op = PEER_OP_REPL};
	wr.repl.type = REPL_WRITE;
	wr.repl.rec = (struct repl_record){.type = REPL_REC_COUNTER,
					   .key = (const uint8_t *)"k",
					   .klen = 1,
					   .val = db,
					   .vlen = sizeof(db)};
	cr_assert_eq(peer_roundtrip(&wr, &out, &w), 0);
	cr_assert(out.repl.rec.type == REPL_REC_COUNTER &&
		  out.repl.rec.vlen == sizeof(db));
	peer_wire_msg_free(w);
	wr.repl.rec.val = (const uint8_t *)"not a counter";
	wr.repl.rec.vlen = 13;
	cr_assert_eq(peer_roundtrip(&wr, &out, &w), RK_EBAD_REQUEST);
}
