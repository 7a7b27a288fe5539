#include <criterion/criterion.h>
#include <string.h>

#include "err.h"
#include "frame.h"
#include "peer_wire.h"
#include "rng.h"

static int roundtrip(const struct peer_msg *in, size_t max_payload,
		     struct peer_msg *out, struct peer_wire_msg **owner)
{
	struct rk_buf b;
	rk_buf_init(&b);
	cr_assert_eq(peer_wire_encode(&b, in), 0);
	struct rk_frame f;
	cr_assert_eq(rk_frame_parse(b.data, b.len, 1 << 20, &f), 1);
	char err[128];
	struct peer_wire_limits lim = {max_payload, 1024, 1 << 20};
	int rc = peer_wire_decode(f.body, f.body_len, &lim, out, owner, err,
				  sizeof(err));
	rk_buf_destroy(&b);
	return rc;
}

Test(peer_wire, gossip_sync_and_error_round_trip)
{
	uint8_t pkt[100];
	memset(pkt, 7, sizeof(pkt));
	struct peer_msg in = {.id = 42, .op = PEER_OP_GOSSIP_SYNC,
			      .payload = {pkt, sizeof(pkt)}};
	struct peer_msg out;
	struct peer_wire_msg *w;
	cr_assert_eq(roundtrip(&in, 1000, &out, &w), 0);
	cr_assert_eq(out.id, 42);
	cr_assert_eq(out.op, PEER_OP_GOSSIP_SYNC);
	cr_assert(out.payload.n == 100 && !memcmp(out.payload.p, pkt, 100));
	peer_wire_msg_free(w);
	in.op = PEER_OP_GOSSIP_SYNC_REPLY;
	cr_assert_eq(roundtrip(&in, 99, &out, &w), RK_EBAD_REQUEST,
		     "a payload over the limit is refused");
	struct peer_msg e = {.id = 5, .op = PEER_OP_ERROR,
			     .status = RK_EUNAVAILABLE, .error = "why"};
	cr_assert_eq(roundtrip(&e, 10, &out, &w), 0);
	cr_assert_eq(out.status, RK_EUNAVAILABLE);
	cr_assert_str_eq(out.error, "why");
	peer_wire_msg_free(w);
}

Test(peer_wire, random_bytes_never_crash_the_decoder)
{
	struct rk_rng r;
	rk_rng_seed(&r, rk_test_seed("peer_wire.random"));
	uint8_t buf[256];
	for (int i = 0; i < 20000; i++) {
		size_t n = rk_rng_below(&r, sizeof(buf));
		for (size_t j = 0; j < n; j++)
			buf[j] = (uint8_t)rk_rng_next(&r);
		struct peer_msg m;
		struct peer_wire_msg *w;
		char err[128];
		struct peer_wire_limits lim = {64, 1024, 1 << 20};
		int rc = peer_wire_decode(buf, n, &lim, &m, &w, err, sizeof(err));
		if (rc == 0)
			peer_wire_msg_free(w);
		else
			cr_assert_null(w);
	}
}

Test(peer_wire, paxos_and_cas_round_trip)
{
	uint8_t pkt[40];
	memset(pkt, 3, sizeof(pkt));
	struct peer_msg in = {.op = PEER_OP_PAXOS, .payload = {pkt, 40}};
	struct peer_msg out;
	struct peer_wire_msg *w;
	cr_assert_eq(roundtrip(&in, 1000, &out, &w), 0);
	cr_assert_eq(out.op, PEER_OP_PAXOS);
	cr_assert(out.payload.n == 40 && !memcmp(out.payload.p, pkt, 40));
	peer_wire_msg_free(w);
	in.payload.n = 0;
	cr_assert_eq(roundtrip(&in, 1000, &out, &w), RK_EBAD_REQUEST,
		     "an empty Paxos packet is refused");

	struct peer_msg f = {.id = 8, .op = PEER_OP_CAS,
			     .cas = {.op = PEER_CAS_CAS,
				     .key = {(const uint8_t *)"key", 3},
				     .expected = {(const uint8_t *)"a", 1},
				     .value = {(const uint8_t *)"bc", 2},
				     .timeout_ms = 2000}};
	cr_assert_eq(roundtrip(&f, 10, &out, &w), 0);
	cr_assert_eq(out.op, PEER_OP_CAS);
	cr_assert_eq(out.cas.op, PEER_CAS_CAS);
	cr_assert(out.cas.key.n == 3 && out.cas.expected.n == 1 &&
		  out.cas.value.n == 2 && out.cas.timeout_ms == 2000);
	cr_assert(!out.cas.expect_absent && !out.cas.del);
	peer_wire_msg_free(w);
	f.cas.expect_absent = 1;
	cr_assert_eq(roundtrip(&f, 10, &out, &w), RK_EBAD_REQUEST);
	f.cas.expect_absent = 0;
	f.cas.timeout_ms = 0;
	cr_assert_eq(roundtrip(&f, 10, &out, &w), RK_EBAD_REQUEST);
	f.cas.timeout_ms = 5;
	f.cas.op = (enum peer_cas_op)9;
	cr_assert_eq(roundtrip(&f, 10, &out, &w), RK_EBAD_REQUEST);
	f.cas.op = PEER_CAS_READ;
	f.cas.key.n = 0;
	cr_assert_eq(roundtrip(&f, 10, &out, &w), RK_EBAD_REQUEST);

	struct peer_msg r = {.id = 8, .op = PEER_OP_CAS_REPLY,
			     .status = 0,
			     .cas = {.applied = 1, .exists = 1,
				     .value = {(const uint8_t *)"bc", 2},
				     .ts = {7, 9}}};
	cr_assert_eq(roundtrip(&r, 10, &out, &w), 0);
	cr_assert_eq(out.op, PEER_OP_CAS_REPLY);
	cr_assert_eq(out.status, 0);
	cr_assert(out.cas.applied && out.cas.exists && out.cas.value.n == 2);
	cr_assert(out.cas.ts.hlc == 7 && out.cas.ts.node == 9);
	peer_wire_msg_free(w);
	r.status = RK_ECONTENTION_TIMEOUT;
	r.error = "busy";
	r.cas = (struct peer_cas){0};
	cr_assert_eq(roundtrip(&r, 10, &out, &w), 0);
	cr_assert_eq(out.status, RK_ECONTENTION_TIMEOUT);
	cr_assert_str_eq(out.error, "busy");
	peer_wire_msg_free(w);
}
