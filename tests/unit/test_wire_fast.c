/* The hand-written codec (client Get/Put, peer replication messages)
 * against protobuf-c: it must read exactly
 * what protobuf-c reads, decline what it does not handle, and write
 * exactly the bytes protobuf-c writes. */
#include <criterion/criterion.h>
#include <string.h>

#include "err.h"
#include "frame.h"
#include "ringkv.pb-c.h"
#include "rng.h"
#include "wire.h"
#include "wire_fast.h"

static struct rk_rng rng;

static uint64_t rnd(uint64_t n)
{
	return rk_rng_below(&rng, n);
}

/* 0, small, or any 64-bit value. */
static uint64_t rnd_u64(void)
{
	switch (rnd(3)) {
	case 0:
		return 0;
	case 1:
		return rnd(300);
	default:
		return rk_rng_next(&rng);
	}
}

static void rnd_bytes(uint8_t *buf, size_t cap, ProtobufCBinaryData *out)
{
	size_t n = rnd(3) == 0 ? 0 : (size_t)rnd(cap);
	for (size_t i = 0; i < n; i++)
		buf[i] = (uint8_t)rnd(256);
	out->data = buf;
	out->len = n;
}

static int bin_eq(ProtobufCBinaryData a, ProtobufCBinaryData b)
{
	return a.len == b.len && (a.len == 0 || !memcmp(a.data, b.data, a.len));
}

/* f (the fast reader's result) equals what protobuf-c unpacked. */
static void assert_same(const struct wire_fast_req *f,
			const Ringkv__Envelope *e)
{
	cr_assert_eq(f->env.request_id, e->request_id);
	cr_assert_eq(f->env.body_case, e->body_case);
	if (e->body_case == RINGKV__ENVELOPE__BODY_GET) {
		cr_assert(bin_eq(f->env.get->key, e->get->key));
		cr_assert_eq(f->env.get->consistency, e->get->consistency);
		cr_assert_eq(!!f->env.get->all_replies, !!e->get->all_replies);
		cr_assert_eq(!!f->env.get->local, !!e->get->local);
	} else {
		cr_assert_eq(e->body_case, RINGKV__ENVELOPE__BODY_PUT);
		cr_assert(bin_eq(f->env.put->key, e->put->key));
		cr_assert(bin_eq(f->env.put->value, e->put->value));
		cr_assert_eq(f->env.put->consistency, e->put->consistency);
	}
}

/* A random Get or Put envelope, packed by protobuf-c into out. */
static size_t random_request(uint8_t *out, size_t cap)
{
	static uint8_t key[40], val[300];
	Ringkv__Envelope env = RINGKV__ENVELOPE__INIT;
	Ringkv__Get get = RINGKV__GET__INIT;
	Ringkv__Put put = RINGKV__PUT__INIT;
	env.request_id = rnd_u64();
	if (rnd(2)) {
		env.body_case = RINGKV__ENVELOPE__BODY_GET;
		env.get = &get;
		rnd_bytes(key, sizeof(key), &get.key);
		get.consistency = (Ringkv__Consistency)rnd(5);
		get.all_replies = rnd(2);
		get.local = rnd(2);
	} else {
		env.body_case = RINGKV__ENVELOPE__BODY_PUT;
		env.put = &put;
		rnd_bytes(key, sizeof(key), &put.key);
		rnd_bytes(val, sizeof(val), &put.value);
		put.consistency = (Ringkv__Consistency)rnd(5);
	}
	size_t n = ringkv__envelope__get_packed_size(&env);
	cr_assert_leq(n, cap);
	ringkv__envelope__pack(&env, out);
	return n;
}

Test(wire_fast, reads_every_get_and_put_protobuf_c_writes)
{
	rk_rng_seed(&rng, 1);
	uint8_t buf[512];
	for (int i = 0; i < 20000; i++) {
		size_t n = random_request(buf, sizeof(buf));
		struct wire_fast_req f;
		cr_assert_eq(wire_fast_read_request(buf, n, &f), 1,
			     "declined a plain request (%zu bytes)", n);
		Ringkv__Envelope *e = ringkv__envelope__unpack(NULL, n, buf);
		cr_assert_not_null(e);
		assert_same(&f, e);
		ringkv__envelope__free_unpacked(e, NULL);
	}
}

/* One to three random edits of the n bytes in buf (capacity cap): a byte
 * flipped, a truncation, a byte inserted, a prefix appended again (which
 * repeats fields). */
static void mutate(uint8_t *buf, size_t *n, size_t cap)
{
	int muts = 1 + (int)rnd(3);
	for (int m = 0; m < muts; m++) {
		size_t at = *n ? (size_t)rnd(*n) : 0;
		switch (rnd(4)) {
		case 0:
			if (*n)
				buf[at] = (uint8_t)rnd(256);
			break;
		case 1:
			*n = at;
			break;
		case 2:
			if (*n < cap) {
				memmove(buf + at + 1, buf + at, *n - at);
				buf[at] = (uint8_t)rnd(256);
				(*n)++;
			}
			break;
		default:
			if (*n + at <= cap) {
				memcpy(buf + *n, buf, at);
				*n += at;
			}
			break;
		}
	}
}

/* The frame in b unpacked by protobuf-c as a d, after checking that
 * protobuf-c packs it back to the very same bytes (its packing is
 * canonical, so the hand-written writer wrote what protobuf-c would).
 * Free it with protobuf_c_message_free_unpacked. */
static ProtobufCMessage *unpack_canonical(const ProtobufCMessageDescriptor *d,
					  const struct rk_buf *b)
{
	struct rk_frame fr;
	cr_assert_eq(rk_frame_parse(b->data, b->len, 1 << 20, &fr), 1);
	cr_assert_eq(fr.body_len + RK_FRAME_HDR, b->len);
	ProtobufCMessage *msg =
	    protobuf_c_message_unpack(d, NULL, fr.body_len, fr.body);
	cr_assert_not_null(msg);
	uint8_t again[1024];
	size_t n = protobuf_c_message_get_packed_size(msg);
	cr_assert_eq(n, fr.body_len);
	protobuf_c_message_pack(msg, again);
	cr_assert_arr_eq(again, fr.body, n);
	return msg;
}

/* Mutated messages: whatever the fast reader accepts, protobuf-c reads
 * the same way. */
Test(wire_fast, accepts_nothing_protobuf_c_reads_differently)
{
	rk_rng_seed(&rng, 2);
	uint8_t buf[600];
	int accepted = 0, declined = 0;
	for (int i = 0; i < 100000; i++) {
		size_t n = random_request(buf, 512);
		mutate(buf, &n, sizeof(buf) - 1);
		struct wire_fast_req f;
		if (!wire_fast_read_request(buf, n, &f)) {
			declined++;
			continue;
		}
		accepted++;
		Ringkv__Envelope *e = ringkv__envelope__unpack(NULL, n, buf);
		cr_assert_not_null(e, "fast reader took what protobuf-c refuses");
		assert_same(&f, e);
		ringkv__envelope__free_unpacked(e, NULL);
	}
	/* Both branches were exercised. */
	cr_assert_gt(accepted, 1000);
	cr_assert_gt(declined, 1000);
}

Test(wire_fast, declines_what_it_leaves_to_protobuf_c)
{
	static const struct {
		const char *why;
		uint8_t b[16];
		size_t n;
	} cases[] = {
	    {"no body", {0x08, 0x01}, 2},
	    {"ping body", {0x82, 0x01, 0x00}, 3},
	    {"two bodies", {0x8a, 0x01, 0x00, 0x92, 0x01, 0x00}, 6},
	    {"request id twice", {0x08, 0x01, 0x08, 0x02, 0x8a, 0x01, 0x00}, 7},
	    {"key twice", {0x8a, 0x01, 0x06, 0x0a, 0x01, 'a', 0x0a, 0x01, 'b'}, 9},
	    {"unknown get field", {0x8a, 0x01, 0x02, 0x28, 0x01}, 5},
	    {"unknown envelope field", {0x10, 0x01, 0x8a, 0x01, 0x00}, 5},
	    {"consistency 5", {0x8a, 0x01, 0x02, 0x10, 0x05}, 5},
	    {"bool 2", {0x8a, 0x01, 0x02, 0x18, 0x02}, 5},
	    {"key as varint", {0x8a, 0x01, 0x02, 0x08, 0x01}, 5},
	    {"length past the end", {0x8a, 0x01, 0x05, 0x0a, 0x01}, 5},
	    {"varint cut", {0x08, 0x80}, 2},
	    {"11-byte varint",
	     {0x08, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
	      0x01},
	     12},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct wire_fast_req f;
		cr_assert_eq(wire_fast_read_request(cases[i].b, cases[i].n, &f),
			     0, "%s was taken", cases[i].why);
	}
	/* A non-minimal varint is still plain protobuf: read alike. */
	static const uint8_t loose[] = {0x08, 0x85, 0x00, 0x8a, 0x01, 0x00};
	struct wire_fast_req f;
	cr_assert_eq(wire_fast_read_request(loose, sizeof(loose), &f), 1);
	cr_assert_eq(f.env.request_id, 5);
}

/* Unpacked by protobuf-c and packed again, the fast writer's bytes come
 * back unchanged (protobuf-c's packing is canonical), and they say what r
 * says. */
static void check_response(const struct rk_response *r)
{
	struct rk_buf b;
	rk_buf_init(&b);
	cr_assert_eq(wire_fast_write_response(&b, r), 1);
	Ringkv__Envelope *e = (Ringkv__Envelope *)unpack_canonical(
	    &ringkv__envelope__descriptor, &b);

	cr_assert_eq(e->request_id, r->id);
	cr_assert_eq(e->body_case, RINGKV__ENVELOPE__BODY_RESPONSE);
	const Ringkv__Response *resp = e->response;
	cr_assert_eq((int)resp->status, -r->status);
	cr_assert_str_eq(resp->error, r->error ? r->error : "");
	const Ringkv__Timestamp *ts;
	if (r->op == RK_OP_GET) {
		cr_assert_eq(resp->result_case, RINGKV__RESPONSE__RESULT_GET);
		cr_assert_eq(resp->get->value.len, r->value.n);
		if (r->value.n)
			cr_assert_arr_eq(resp->get->value.data, r->value.p,
					 r->value.n);
		cr_assert_eq(resp->get->n_replies, 0);
		ts = resp->get->timestamp;
	} else {
		cr_assert_eq(resp->result_case, RINGKV__RESPONSE__RESULT_WRITE);
		ts = resp->write->timestamp;
	}
	cr_assert_eq(ts != NULL, r->has_ts != 0);
	if (ts) {
		cr_assert_eq(ts->hlc, r->ts.hlc);
		cr_assert_eq(ts->node_id, r->ts.node);
	}
	ringkv__envelope__free_unpacked(e, NULL);
	rk_buf_destroy(&b);
}

Test(wire_fast, writes_protobuf_c_s_bytes)
{
	rk_rng_seed(&rng, 3);
	static const int statuses[] = {0,	    RK_ENOT_FOUND, RK_ETIMEOUT,
				       RK_EUNAVAILABLE, RK_EWRONG_TYPE,
				       RK_EOVERLOADED};
	static const enum rk_op ops[] = {RK_OP_GET, RK_OP_PUT, RK_OP_DELETE};
	static const char *const errors[] = {NULL, "", "2 of 3 replicas are up"};
	uint8_t val[600];
	for (int i = 0; i < 20000; i++) {
		struct rk_response r = {0};
		r.id = rnd_u64();
		r.op = ops[rnd(3)];
		r.status = statuses[rnd(6)];
		r.error = errors[rnd(3)];
		r.has_ts = (int)rnd(2);
		r.ts.hlc = rnd_u64();
		r.ts.node = rnd_u64();
		if (r.op == RK_OP_GET) {
			size_t n = rnd(4) == 0 ? 0 : (size_t)rnd(sizeof(val));
			for (size_t k = 0; k < n; k++)
				val[k] = (uint8_t)rnd(256);
			r.value = (struct rk_bytes){val, n};
		}
		check_response(&r);
	}
}

Test(wire_fast, leaves_other_responses_to_protobuf_c)
{
	struct rk_buf b;
	rk_buf_init(&b);
	struct rk_replica_reply rr = {.node_id = 1};
	struct rk_response r = {.op = RK_OP_GET, .replies = &rr,
				.n_replies = 1};
	cr_assert_eq(wire_fast_write_response(&b, &r), 0);
	r = (struct rk_response){.op = RK_OP_CAS};
	cr_assert_eq(wire_fast_write_response(&b, &r), 0);
	r = (struct rk_response){.op = RK_OP_NONE, .status = RK_EBAD_REQUEST};
	cr_assert_eq(wire_fast_write_response(&b, &r), 0);
	cr_assert_eq(b.len, 0, "wrote nothing");
	rk_buf_destroy(&b);
}

/* ---- the peer replication messages ---------------------------------- */

static void assert_same_peer(const struct wire_fast_peer *f,
			     const Ringkv__Peer__PeerEnvelope *e)
{
	cr_assert_eq(f->env.request_id, e->request_id);
	cr_assert_eq(e->body_case, RINGKV__PEER__PEER_ENVELOPE__BODY_REPL);
	const Ringkv__Peer__ReplMessage *a = f->env.repl, *b = e->repl;
	cr_assert(a->type == b->type && a->rid == b->rid &&
		  a->flags == b->flags && a->status == b->status &&
		  !!a->found == !!b->found && a->from_lsn == b->from_lsn &&
		  a->max_bytes == b->max_bytes && a->next_lsn == b->next_lsn &&
		  a->end_lsn == b->end_lsn &&
		  !!a->truncated == !!b->truncated && a->cursor == b->cursor &&
		  !!a->done == !!b->done);
	cr_assert_eq(b->n_ranges, 0);
	cr_assert_eq(b->n_records, 0);
	cr_assert_eq(a->record != NULL, b->record != NULL);
	if (b->record) {
		const Ringkv__Peer__Record *x = a->record, *y = b->record;
		cr_assert(x->type == y->type && bin_eq(x->key, y->key) &&
			  bin_eq(x->value, y->value) && x->hlc == y->hlc &&
			  x->node == y->node &&
			  !!x->has_value == !!y->has_value);
	}
}

/* A random replication message without ranges or records, packed by
 * protobuf-c. */
static size_t random_repl(uint8_t *out, size_t cap)
{
	static uint8_t key[40], val[300];
	Ringkv__Peer__PeerEnvelope env = RINGKV__PEER__PEER_ENVELOPE__INIT;
	Ringkv__Peer__ReplMessage rm = RINGKV__PEER__REPL_MESSAGE__INIT;
	Ringkv__Peer__Record rec = RINGKV__PEER__RECORD__INIT;
	env.request_id = rnd_u64();
	env.body_case = RINGKV__PEER__PEER_ENVELOPE__BODY_REPL;
	env.repl = &rm;
	rm.type = (uint32_t)rnd(9);
	rm.rid = rnd_u64();
	rm.flags = (uint32_t)rnd(8);
	rm.status = (uint32_t)rnd(30);
	rm.found = rnd(2);
	if (rnd(2)) {
		rm.record = &rec;
		rec.type = (uint32_t)rnd(4);
		rnd_bytes(key, sizeof(key), &rec.key);
		rnd_bytes(val, sizeof(val), &rec.value);
		rec.hlc = rnd_u64();
		rec.node = rnd_u64();
		rec.has_value = rnd(2);
	}
	if (rnd(4) == 0) {
		rm.from_lsn = rnd_u64();
		rm.max_bytes = (uint32_t)rnd_u64();
		rm.next_lsn = rnd_u64();
		rm.end_lsn = rnd_u64();
		rm.truncated = rnd(2);
		rm.cursor = rnd_u64();
		rm.done = rnd(2);
	}
	size_t n = ringkv__peer__peer_envelope__get_packed_size(&env);
	cr_assert_leq(n, cap);
	ringkv__peer__peer_envelope__pack(&env, out);
	return n;
}

Test(wire_fast, reads_every_plain_replication_message_alike)
{
	rk_rng_seed(&rng, 4);
	uint8_t buf[600];
	int accepted = 0, declined = 0;
	for (int i = 0; i < 100000; i++) {
		size_t n = random_repl(buf, 512);
		struct wire_fast_peer f;
		if (i % 2) {
			cr_assert_eq(wire_fast_read_peer(buf, n, &f), 1);
		} else {
			/* Mutated: taken only when protobuf-c agrees. */
			mutate(buf, &n, sizeof(buf) - 1);
			if (!wire_fast_read_peer(buf, n, &f)) {
				declined++;
				continue;
			}
			accepted++;
		}
		Ringkv__Peer__PeerEnvelope *e =
		    ringkv__peer__peer_envelope__unpack(NULL, n, buf);
		cr_assert_not_null(e, "fast reader took what protobuf-c refuses");
		assert_same_peer(&f, e);
		ringkv__peer__peer_envelope__free_unpacked(e, NULL);
	}
	cr_assert_gt(accepted, 1000);
	cr_assert_gt(declined, 1000);
	/* Ranges and batches are left to protobuf-c. */
	static const uint8_t with_range[] = {0xa2, 0x01, 0x04, 0x4a, 0x02,
					     0x08, 0x01};
	struct wire_fast_peer f;
	cr_assert_eq(wire_fast_read_peer(with_range, sizeof(with_range), &f),
		     0);
}

Test(wire_fast, writes_protobuf_c_s_replication_bytes)
{
	rk_rng_seed(&rng, 5);
	static const enum repl_msg_type types[] = {REPL_WRITE, REPL_WRITE_ACK,
						   REPL_READ, REPL_READ_REPLY};
	uint8_t key[40], val[300];
	int decoded = 0;
	for (int i = 0; i < 20000; i++) {
		struct peer_msg m = {0};
		m.id = rnd_u64();
		m.op = PEER_OP_REPL;
		struct repl_msg *r = &m.repl;
		r->type = types[rnd(4)];
		r->rid = rnd_u64();
		r->flags = (uint32_t)rnd(4);
		r->status = rnd(2) ? 0 : RK_ETIMEOUT;
		r->found = (int)rnd(2);
		if (rnd(4)) {
			size_t kn = 1 + (size_t)rnd(sizeof(key) - 1);
			for (size_t k = 0; k < kn; k++)
				key[k] = (uint8_t)rnd(256);
			r->rec.key = key;
			r->rec.klen = kn;
			r->rec.type = (uint8_t)(1 + rnd(3));
			r->rec.ts = (rk_ts){rnd_u64(), rnd_u64()};
			if (rnd(3)) {
				r->rec.vlen = (size_t)rnd(sizeof(val));
				r->rec.val = val;
			}
		}
		struct rk_buf b;
		rk_buf_init(&b);
		cr_assert_eq(wire_fast_write_peer(&b, &m), 1);
		ProtobufCMessage *e = unpack_canonical(
		    &ringkv__peer__peer_envelope__descriptor, &b);
		/* And it reads back as what was written (counter records
		 * without a counter state, and tombstones with a value, are
		 * refused by the validation, as they should be). */
		struct peer_msg back;
		struct peer_wire_msg *owner;
		char err[128];
		struct peer_wire_limits lim = {1 << 20, 1024, 1 << 20};
		int rc = peer_wire_decode(b.data + RK_FRAME_HDR,
					  b.len - RK_FRAME_HDR, &lim, &back,
					  &owner, err, sizeof(err));
		if (rc == 0) {
			decoded++;
			cr_assert_eq(back.id, m.id);
			cr_assert_eq(back.repl.type, r->type);
			cr_assert_eq(back.repl.rid, r->rid);
			cr_assert_eq(back.repl.status, r->status);
			if (r->type == REPL_WRITE || r->type == REPL_READ)
				cr_assert_eq(back.repl.rec.klen, r->rec.klen);
		}
		peer_wire_msg_free(owner);
		protobuf_c_message_free_unpacked(e, NULL);
		rk_buf_destroy(&b);
	}
	cr_assert_gt(decoded, 5000, "only %d read back", decoded);
	struct rk_buf b;
	rk_buf_init(&b);
	struct repl_range rg = {1, 2};
	struct peer_msg m = {.op = PEER_OP_REPL,
			     .repl = {.type = REPL_LOG_READ, .ranges = &rg,
				      .n_ranges = 1}};
	cr_assert_eq(wire_fast_write_peer(&b, &m), 0);
	m = (struct peer_msg){.op = PEER_OP_ACK};
	cr_assert_eq(wire_fast_write_peer(&b, &m), 0);
	cr_assert_eq(b.len, 0);
	rk_buf_destroy(&b);
}
