/* ringkv-bench's lean reply reader against the real codec: on every frame
 * the node's encoder makes, and on mutations of them, fastwire either says
 * "not mine" or agrees with rk_wire_decode_response field for field. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "err.h"
#include "fastwire.h"
#include "frame.h"
#include "rng.h"
#include "wire.h"

static enum rk_op op_of(enum fw_result r)
{
	return r == FW_GET	 ? RK_OP_GET
	       : r == FW_WRITE	 ? RK_OP_PUT
	       : r == FW_COUNTER ? RK_OP_COUNTER_GET
				 : RK_OP_NONE;
}

/* Checks one body; returns 1 when fastwire accepted it. */
static int agree(const uint8_t *body, size_t len)
{
	struct fw_reply f;
	int frc = fw_decode_response(body, len, &f);
	if (frc != 0) {
		cr_assert_eq(frc, RK_EPROTOCOL);
		return 0;
	}
	struct rk_response r;
	struct rk_wire_msg *owner;
	char why[160];
	int rc = rk_wire_decode_response(body, len, &r, &owner, why,
					 sizeof(why));
	cr_assert_eq(rc, 0, "fastwire accepted what the codec refuses: %s",
		     why);
	cr_assert_eq(f.id, r.id);
	cr_assert_eq(f.status, r.status);
	cr_assert_eq(op_of(f.result), r.op);
	cr_assert_eq(f.value_len, r.value.n);
	cr_assert(r.status == 0 || r.status == RK_ENOT_FOUND);
	rk_wire_msg_free(owner);
	return 1;
}

/* Encodes resp and checks the body both ways. */
static int check(const struct rk_response *resp)
{
	struct rk_buf b;
	rk_buf_init(&b);
	cr_assert_eq(rk_wire_encode_response(&b, resp), 0);
	int ok = agree(b.data + RK_FRAME_HDR, b.len - RK_FRAME_HDR);
	rk_buf_destroy(&b);
	return ok;
}

static uint8_t big[300000];

Test(fastwire, the_replies_of_a_benchmark)
{
	const uint64_t ids[] = {1, 127, 128, 65537, (1ull << 63) + 5,
				UINT64_MAX};
	const size_t lens[] = {0, 1, 100, 127, 128, 16384, sizeof(big)};
	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		for (size_t k = 0; k < sizeof(lens) / sizeof(lens[0]); k++) {
			struct rk_response r = {
				.id = ids[i],
				.op = RK_OP_GET,
				.value = {big, lens[k]},
				.ts = {.hlc = 1ull << 40, .node = 77},
				.has_ts = (int)(k & 1),
			};
			cr_assert(check(&r), "get id %zu len %zu", i, k);
		}
		struct rk_response nf = {.id = ids[i], .op = RK_OP_GET,
					 .status = RK_ENOT_FOUND};
		cr_assert(check(&nf));
		nf.has_ts = 1;
		nf.ts.hlc = 99;
		cr_assert(check(&nf));
		struct rk_response w = {.id = ids[i], .op = RK_OP_PUT,
					.has_ts = 1, .ts = {5, 6}};
		cr_assert(check(&w));
		w.op = RK_OP_DELETE;
		cr_assert(check(&w));
		struct rk_response bare = {.id = ids[i]};
		cr_assert(check(&bare));
		/* The answers to counter adds. */
		const int64_t vals[] = {0, 1, -1, INT64_MAX, INT64_MIN};
		for (size_t k = 0; k < sizeof(vals) / sizeof(vals[0]); k++) {
			struct rk_response c = {.id = ids[i],
						.op = RK_OP_COUNTER_ADD,
						.counter = vals[k],
						.duplicate = (int)(k & 1),
						.owner = ids[i]};
			cr_assert(check(&c), "counter %zu", k);
		}
	}
}

Test(fastwire, leaves_everything_else_to_the_codec)
{
	struct rk_response err = {.id = 9, .status = RK_EVALUE_TOO_LARGE,
				  .error = "value is 2000000 bytes"};
	cr_assert_not(check(&err));
	struct rk_response unk = {.id = 9, .status = RK_EUNKNOWN_COMMAND};
	cr_assert_not(check(&unk));
	struct rk_response ping = {.id = 9, .op = RK_OP_PING,
				   .value = {big, 3}, .node_id = 4};
	cr_assert_not(check(&ping));
	struct rk_response ex = {.id = 9, .op = RK_OP_EXISTS, .exists = 1};
	cr_assert_not(check(&ex));
	struct rk_replica_reply rr = {.node_id = 1, .counter = 5};
	struct rk_response all = {
	    .id = 9, .op = RK_OP_COUNTER_GET, .replies = &rr, .n_replies = 1};
	cr_assert_not(check(&all), "per-replica counter answers");
	struct rk_node_info n = {1, "a:1", "a:1", "alive"};
	struct rk_response ci = {.id = 9, .op = RK_OP_CLUSTER_INFO,
				 .nodes = &n, .n_nodes = 1,
				 .cluster_name = "ringkv"};
	cr_assert_not(check(&ci));
	/* A request is not a response. */
	struct rk_buf b;
	rk_buf_init(&b);
	struct rk_request q = {.id = 3, .op = RK_OP_GET,
			       .key = {(const uint8_t *)"k", 1}};
	cr_assert_eq(rk_wire_encode_request(&b, &q), 0);
	cr_assert_not(agree(b.data + RK_FRAME_HDR, b.len - RK_FRAME_HDR));
	rk_buf_destroy(&b);
	cr_assert_not(agree(NULL, 0));
}

Test(fastwire, unknown_fields_are_skipped_like_protobuf_does)
{
	struct rk_buf b;
	rk_buf_init(&b);
	struct rk_response r = {.id = 300, .op = RK_OP_GET,
				.value = {big, 10}};
	cr_assert_eq(rk_wire_encode_response(&b, &r), 0);
	/* Field 5 varint, field 6 fixed64, field 7 bytes, field 8 fixed32. */
	const uint8_t extra[] = {0x28, 0x96, 0x01, 0x31, 1, 2, 3, 4, 5, 6, 7,
				 8, 0x3a, 2, 'h', 'i', 0x45, 1, 2, 3, 4};
	cr_assert_eq(rk_buf_append(&b, extra, sizeof(extra)), 0);
	cr_assert(agree(b.data + RK_FRAME_HDR, b.len - RK_FRAME_HDR));
	rk_buf_destroy(&b);
}

Test(fastwire, mutated_frames_never_disagree)
{
	struct rk_rng rng;
	rk_rng_seed(&rng, rk_test_seed("fastwire mutations"));
	int accepted = 0;
	for (int round = 0; round < 20000; round++) {
		struct rk_response r = {
			.id = rk_rng_next(&rng) >> rk_rng_below(&rng, 64),
			.op = rk_rng_below(&rng, 2) ? RK_OP_GET : RK_OP_PUT,
			.value = {big, (size_t)rk_rng_below(&rng, 300)},
			.status = rk_rng_below(&rng, 4) ? 0 : RK_ENOT_FOUND,
			.has_ts = (int)rk_rng_below(&rng, 2),
			.ts = {rk_rng_next(&rng), rk_rng_next(&rng)},
		};
		if (r.op == RK_OP_PUT)
			r.value.n = 0;
		struct rk_buf b;
		rk_buf_init(&b);
		cr_assert_eq(rk_wire_encode_response(&b, &r), 0);
		uint8_t *body = b.data + RK_FRAME_HDR;
		size_t len = b.len - RK_FRAME_HDR;
		int flips = (int)rk_rng_below(&rng, 4);
		for (int i = 0; i < flips; i++)
			body[rk_rng_below(&rng, len)] ^=
				(uint8_t)(1u << rk_rng_below(&rng, 8));
		if (rk_rng_below(&rng, 4) == 0)
			len = (size_t)rk_rng_below(&rng, len + 1);
		accepted += agree(body, len);
		rk_buf_destroy(&b);
	}
	/* Most frames with few flips stay readable: the test exercised the
	 * accepting path, not only the refusals. */
	cr_assert_gt(accepted, 2000);
}
