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
