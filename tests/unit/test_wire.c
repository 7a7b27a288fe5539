#include <criterion/criterion.h>
#include <string.h>

#include "err.h"
#include "frame.h"
#include "ringkv.pb-c.h"
#include "wire.h"

static const struct rk_wire_limits LIM = {.max_key = 16, .max_value = 64,
					  .max_ping = 8};

/* Encodes q and decodes it back as the node would.  The request may
 * borrow from the frame, which stays until the next call. */
static int roundtrip(const struct rk_request *q, struct rk_request *out,
		     struct rk_wire_msg **owner, char *err)
{
	static struct rk_buf b;
	rk_buf_clear(&b);
	cr_assert_eq(rk_wire_encode_request(&b, q), 0);
	struct rk_frame f;
	cr_assert_eq(rk_frame_parse(b.data, b.len, 1 << 20, &f), 1);
	return rk_wire_decode_request(f.body, f.body_len, &LIM, out, owner,
				      err, 128);
}

Test(wire, requests_round_trip)
{
	struct rk_request q = {.id = 77, .op = RK_OP_PUT,
			       .key = {(const uint8_t *)"key", 3},
			       .value = {(const uint8_t *)"val\0ue", 6},
			       .consistency = RK_CL_ALL};
	struct rk_request r;
	struct rk_wire_msg *m;
	char err[128];
	cr_assert_eq(roundtrip(&q, &r, &m, err), 0, "%s", err);
	cr_assert_eq(r.id, 77);
	cr_assert_eq(r.op, RK_OP_PUT);
	cr_assert(r.key.n == 3 && !memcmp(r.key.p, "key", 3));
	cr_assert(r.value.n == 6 && !memcmp(r.value.p, "val\0ue", 6));
	cr_assert_eq(r.consistency, RK_CL_ALL);
	rk_wire_msg_free(m);
}

Test(wire, limits_and_empty_keys_are_typed_errors)
{
	struct rk_request r;
	struct rk_wire_msg *m;
	char err[128];
	struct rk_request q = {.id = 5, .op = RK_OP_GET, .key = {NULL, 0}};
	cr_assert_eq(roundtrip(&q, &r, &m, err), RK_EEMPTY_KEY);
	cr_assert_eq(r.id, 5, "the id is known so the error can be matched");
	cr_assert_null(m);
	q.key = (struct rk_bytes){(const uint8_t *)"0123456789abcdefX", 17};
	cr_assert_eq(roundtrip(&q, &r, &m, err), RK_EKEY_TOO_LARGE);
	cr_assert(strstr(err, "17"), "%s", err);
	uint8_t big[65] = {0};
	q = (struct rk_request){.id = 6, .op = RK_OP_PUT,
				.key = {(const uint8_t *)"k", 1},
				.value = {big, 65}};
	cr_assert_eq(roundtrip(&q, &r, &m, err), RK_EVALUE_TOO_LARGE);
	q.value.n = 64;
	cr_assert_eq(roundtrip(&q, &r, &m, err), 0);
	rk_wire_msg_free(m);
	q = (struct rk_request){.id = 7, .op = RK_OP_PING,
				.value = {big, 9}};
	cr_assert_eq(roundtrip(&q, &r, &m, err), RK_EBAD_REQUEST);
}

Test(wire, malformed_bytes_are_bad_requests)
{
	struct rk_request r;
	struct rk_wire_msg *m;
	char err[128];
	/* Truncated varint, wrong wire type, overlong varint, garbage. */
	static const uint8_t cases[][12] = {
		{0x08, 0xff},
		{0x0d, 0x01},
		{0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
		{0x92, 0x01, 0x7f, 0x00},
	};
	static const size_t lens[] = {2, 2, 12, 4};
	for (size_t i = 0; i < 4; i++) {
		int rc = rk_wire_decode_request(cases[i], lens[i], &LIM, &r, &m,
						err, sizeof(err));
		cr_assert_eq(rc, RK_EBAD_REQUEST, "case %zu rc %d", i, rc);
		cr_assert_null(m);
	}
	cr_assert_eq(rk_wire_decode_request((const uint8_t *)"", 0, &LIM, &r,
					    &m, err, sizeof(err)),
		     RK_EBAD_REQUEST);
}

Test(wire, unknown_or_empty_body_is_unknown_command)
{
	struct rk_request r;
	struct rk_wire_msg *m;
	char err[128];
	/* request_id=9, then field 60 (unknown) as a length-delimited
	 * empty message. */
	static const uint8_t unknown[] = {0x08, 0x09, 0xe2, 0x03, 0x00};
	cr_assert_eq(rk_wire_decode_request(unknown, sizeof(unknown), &LIM, &r,
					    &m, err, sizeof(err)),
		     RK_EUNKNOWN_COMMAND);
	cr_assert_eq(r.id, 9);
	static const uint8_t empty[] = {0x08, 0x0a};
	cr_assert_eq(rk_wire_decode_request(empty, sizeof(empty), &LIM, &r, &m,
					    err, sizeof(err)),
		     RK_EUNKNOWN_COMMAND);
	cr_assert_eq(r.id, 10);
}

Test(wire, unknown_fields_are_ignored)
{
	/* Get{key="k"} plus an unknown field 99 inside it. */
	static const uint8_t msg[] = {0x08, 0x01, 0x8a, 0x01, 0x06, 0x0a, 0x01,
				      'k', 0x98, 0x06, 0x05};
	struct rk_request r;
	struct rk_wire_msg *m;
	char err[128];
	int rc = rk_wire_decode_request(msg, sizeof(msg), &LIM, &r, &m, err,
					sizeof(err));
	cr_assert_eq(rc, 0, "%s", err);
	cr_assert_eq(r.op, RK_OP_GET);
	rk_wire_msg_free(m);
}

Test(wire, unknown_consistency_is_rejected)
{
	struct rk_request q = {.id = 1, .op = RK_OP_GET,
			       .key = {(const uint8_t *)"k", 1},
			       .consistency = (enum rk_consistency)9};
	struct rk_request r;
	struct rk_wire_msg *m;
	char err[128];
	cr_assert_eq(roundtrip(&q, &r, &m, err), RK_EBAD_REQUEST);
}

Test(wire, a_response_is_not_a_request)
{
	struct rk_buf b;
	rk_buf_init(&b);
	struct rk_response resp = {.id = 3, .status = RK_ENOT_FOUND};
	cr_assert_eq(rk_wire_encode_response(&b, &resp), 0);
	struct rk_request r;
	struct rk_wire_msg *m;
	char err[128];
	cr_assert_eq(rk_wire_decode_request(b.data + 4, b.len - 4, &LIM, &r,
					    &m, err, sizeof(err)),
		     RK_EBAD_REQUEST);
	rk_buf_destroy(&b);
}

Test(wire, responses_round_trip)
{
	struct rk_node_info nodes[2] = {{1, "a:1", "a:1", "alive"},
					{2, "b:2", "b:2", "alive"}};
	struct rk_response in[] = {
		{.id = 1, .op = RK_OP_GET, .value = {(const uint8_t *)"v", 1},
		 .ts = {10, 20}, .has_ts = 1},
		{.id = 2, .status = RK_ENOT_FOUND, .error = "no such key"},
		{.id = 3, .op = RK_OP_EXISTS, .exists = 1},
		{.id = 4, .op = RK_OP_CLUSTER_INFO, .node_id = 1,
		 .cluster_name = "c", .version = "v", .nodes = nodes,
		 .n_nodes = 2},
	};
	for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
		struct rk_buf b;
		rk_buf_init(&b);
		cr_assert_eq(rk_wire_encode_response(&b, &in[i]), 0);
		struct rk_response out;
		struct rk_wire_msg *m;
		char err[128];
		cr_assert_eq(rk_wire_decode_response(b.data + 4, b.len - 4, &out,
						     &m, err, sizeof(err)), 0);
		cr_assert_eq(out.id, in[i].id);
		cr_assert_eq(out.status, in[i].status);
		cr_assert_eq(out.has_ts, in[i].has_ts);
		cr_assert_eq(out.ts.hlc, in[i].ts.hlc);
		cr_assert_eq(out.exists, in[i].exists);
		cr_assert_eq(out.value.n, in[i].value.n);
		cr_assert_eq(out.n_nodes, in[i].n_nodes);
		if (in[i].error)
			cr_assert_str_eq(out.error, in[i].error);
		if (in[i].n_nodes)
			cr_assert_str_eq(out.nodes[1].client_addr, "b:2");
		rk_wire_msg_free(m);
		rk_buf_destroy(&b);
	}
}

Test(wire, status_numbers_match_the_proto_enum)
{
	cr_assert_eq(-RK_ENOT_FOUND, RINGKV__STATUS__NOT_FOUND);
	cr_assert_eq(-RK_EBAD_REQUEST, RINGKV__STATUS__BAD_REQUEST);
	cr_assert_eq(-RK_EUNKNOWN_COMMAND, RINGKV__STATUS__UNKNOWN_COMMAND);
	cr_assert_eq(-RK_EMAX_CLIENTS, RINGKV__STATUS__MAX_CLIENTS);
	cr_assert_eq(-RK_EWRONG_TYPE, RINGKV__STATUS__WRONG_TYPE);
	cr_assert_eq(-RK_EEMPTY_KEY, RINGKV__STATUS__EMPTY_KEY);
	cr_assert_eq(-RK_ECONTENTION_TIMEOUT, RINGKV__STATUS__CONTENTION_TIMEOUT);
}

Test(wire, hello_round_trip_and_role_check)
{
	struct rk_request q = {.id = 1, .op = RK_OP_HELLO,
			       .role = RK_ROLE_PEER, .cluster_name = "prod",
			       .node_id = 0xabc, .protocol_version = 1};
	struct rk_request r;
	struct rk_wire_msg *m;
	char err[128];
	cr_assert_eq(roundtrip(&q, &r, &m, err), 0, "%s", err);
	cr_assert_eq(r.role, RK_ROLE_PEER);
	cr_assert_str_eq(r.cluster_name, "prod");
	cr_assert_eq(r.node_id, 0xabc);
	rk_wire_msg_free(m);
	q.role = (enum rk_role)7;
	cr_assert_eq(roundtrip(&q, &r, &m, err), RK_EBAD_REQUEST);
}

Test(wire, cas_requests_round_trip_in_one_form)
{
	struct rk_request q = {.id = 11, .op = RK_OP_CAS,
			       .key = {(const uint8_t *)"lock", 4},
			       .cas_kind = RK_CAS,
			       .expected = {(const uint8_t *)"false", 5},
			       .value = {(const uint8_t *)"true", 4}};
	struct rk_request r;
	struct rk_wire_msg *m;
	char err[128];
	cr_assert_eq(roundtrip(&q, &r, &m, err), 0, "%s", err);
	cr_assert_eq(r.op, RK_OP_CAS);
	cr_assert_eq(r.cas_kind, RK_CAS);
	cr_assert(r.expected.n == 5 && !memcmp(r.expected.p, "false", 5));
	cr_assert(r.value.n == 4 && !memcmp(r.value.p, "true", 4));
	cr_assert(!r.expect_absent && !r.cas_delete);
	rk_wire_msg_free(m);

	/* put_if_absent decodes as "expect absent"; delete_if as a delete. */
	q = (struct rk_request){.id = 12, .op = RK_OP_CAS,
				.key = {(const uint8_t *)"k", 1},
				.cas_kind = RK_CAS_PUT_IF_ABSENT,
				.value = {(const uint8_t *)"v", 1}};
	cr_assert_eq(roundtrip(&q, &r, &m, err), 0, "%s", err);
	cr_assert(r.expect_absent && !r.cas_delete && r.value.n == 1);
	rk_wire_msg_free(m);
	q = (struct rk_request){.id = 13, .op = RK_OP_CAS,
				.key = {(const uint8_t *)"k", 1},
				.cas_kind = RK_CAS_DELETE_IF,
				.expected = {(const uint8_t *)"", 0}};
	cr_assert_eq(roundtrip(&q, &r, &m, err), 0, "%s", err);
	cr_assert(!r.expect_absent && r.cas_delete && r.expected.n == 0,
		  "delete_if an empty value is a valid request");
	rk_wire_msg_free(m);
	q = (struct rk_request){.id = 14, .op = RK_OP_CAS,
				.key = {(const uint8_t *)"k", 1},
				.cas_kind = RK_CAS, .expect_absent = 1,
				.cas_delete = 1};
	cr_assert_eq(roundtrip(&q, &r, &m, err), 0, "%s", err);
	cr_assert(r.expect_absent && r.cas_delete);
	rk_wire_msg_free(m);
}

Test(wire, bad_cas_requests_are_typed_errors)
{
	struct rk_request r;
	struct rk_wire_msg *m;
	char err[128];
	uint8_t big[65] = {0};
	struct rk_request q = {.id = 1, .op = RK_OP_CAS, .cas_kind = RK_CAS};
	cr_assert_eq(roundtrip(&q, &r, &m, err), RK_EEMPTY_KEY);
	q.key = (struct rk_bytes){(const uint8_t *)"k", 1};
	q.expected = (struct rk_bytes){big, 65};
	cr_assert_eq(roundtrip(&q, &r, &m, err), RK_EVALUE_TOO_LARGE);
	q.expected.n = 1;
	q.value = (struct rk_bytes){big, 65};
	cr_assert_eq(roundtrip(&q, &r, &m, err), RK_EVALUE_TOO_LARGE);
	q.value.n = 1;
	q.expect_absent = 1;
	cr_assert_eq(roundtrip(&q, &r, &m, err), RK_EBAD_REQUEST,
		     "expect absent and an expected value contradict");
	q.expect_absent = 0;
	q.cas_delete = 1;
	cr_assert_eq(roundtrip(&q, &r, &m, err), RK_EBAD_REQUEST,
		     "delete and a value contradict");
	q.cas_delete = 0;
	q.cas_kind = (enum rk_cas_kind)7;
	cr_assert_eq(roundtrip(&q, &r, &m, err), RK_EBAD_REQUEST);
	cr_assert_eq(r.id, 1);
	/* Cas{key="k", kind=2 (delete_if), expect_absent=true} by hand: the
	 * encoder would not send the flag for that kind. */
	static const uint8_t by_hand[] = {0x08, 0x05, 0xb2, 0x01, 0x07,
					  0x0a, 0x01, 'k',  0x10, 0x02,
					  0x20, 0x01};
	cr_assert_eq(rk_wire_decode_request(by_hand, sizeof(by_hand), &LIM, &r,
					    &m, err, sizeof(err)),
		     RK_EBAD_REQUEST);
	cr_assert_eq(r.id, 5);
	/* The same Cas cut short inside the key. */
	cr_assert_eq(rk_wire_decode_request(by_hand, 7, &LIM, &r, &m, err,
					    sizeof(err)),
		     RK_EBAD_REQUEST);
}

Test(wire, cas_responses_round_trip)
{
	struct rk_response in = {.id = 9, .op = RK_OP_CAS, .applied = 0,
				 .exists = 1,
				 .value = {(const uint8_t *)"cur", 3},
				 .ts = {5, 6}, .has_ts = 1};
	for (int applied = 0; applied < 2; applied++) {
		in.applied = applied;
		struct rk_buf b;
		rk_buf_init(&b);
		cr_assert_eq(rk_wire_encode_response(&b, &in), 0);
		struct rk_response out;
		struct rk_wire_msg *m;
		char err[128];
		cr_assert_eq(rk_wire_decode_response(b.data + 4, b.len - 4, &out,
						     &m, err, sizeof(err)), 0);
		cr_assert_eq(out.op, RK_OP_CAS);
		cr_assert_eq(out.applied, applied);
		cr_assert_eq(out.exists, 1);
		cr_assert(out.value.n == 3 && !memcmp(out.value.p, "cur", 3));
		cr_assert(out.has_ts && out.ts.hlc == 5 && out.ts.node == 6);
		rk_wire_msg_free(m);
		rk_buf_destroy(&b);
	}
	cr_assert_str_eq(rk_op_name(RK_OP_CAS), "cas");
	cr_assert_eq(rk_consistency_parse("SERIAL"), RK_CL_SERIAL);
}
