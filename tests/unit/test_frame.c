#include <criterion/criterion.h>
#include <string.h>

#include "buf.h"
#include "err.h"
#include "frame.h"

/* Builds n frames with bodies "0", "11", "222", ... into b. */
static void build(struct rk_buf *b, int n)
{
	rk_buf_init(b);
	for (int i = 0; i < n; i++) {
		uint8_t hdr[4], body[16];
		memset(body, '0' + i, sizeof(body));
		rk_frame_header(hdr, (uint32_t)(i + 1));
		rk_buf_append(b, hdr, 4);
		rk_buf_append(b, body, (size_t)i + 1);
	}
}

Test(frame, many_frames_in_one_read)
{
	struct rk_buf b;
	build(&b, 10);
	size_t off = 0;
	for (int i = 0; i < 10; i++) {
		struct rk_frame f;
		cr_assert_eq(rk_frame_parse(b.data + off, b.len - off, 1024, &f), 1);
		cr_assert_eq(f.body_len, (uint32_t)i + 1);
		cr_assert_eq(f.body[0], '0' + i);
		off += f.frame_len;
	}
	cr_assert_eq(off, b.len);
	struct rk_frame f;
	cr_assert_eq(rk_frame_parse(b.data + off, 0, 1024, &f), 0);
	rk_buf_destroy(&b);
}

Test(frame, partial_frames_need_more)
{
	struct rk_buf b;
	build(&b, 3);
	/* The first frame is 5 bytes; every shorter prefix is incomplete. */
	for (size_t n = 0; n < 5; n++) {
		struct rk_frame f;
		cr_assert_eq(rk_frame_parse(b.data, n, 1024, &f), 0,
			     "prefix %zu", n);
	}
	struct rk_frame f;
	cr_assert_eq(rk_frame_parse(b.data, 5, 1024, &f), 1);
	rk_buf_destroy(&b);
}

Test(frame, oversized_prefix_refused_from_header_alone)
{
	uint8_t hdr[4];
	rk_frame_header(hdr, 16u << 20 | 1);
	struct rk_frame f;
	/* Only the 4 header bytes are there: refused before any body. */
	cr_assert_eq(rk_frame_parse(hdr, 4, 16u << 20, &f), RK_EFRAME_TOO_LARGE);
	rk_frame_header(hdr, 0xffffffffu);
	cr_assert_eq(rk_frame_parse(hdr, 4, 16u << 20, &f), RK_EFRAME_TOO_LARGE);
	rk_frame_header(hdr, 16u << 20);
	cr_assert_eq(rk_frame_parse(hdr, 4, 16u << 20, &f), 0);
}

Test(frame, zero_length_frame)
{
	uint8_t hdr[4];
	rk_frame_header(hdr, 0);
	struct rk_frame f;
	cr_assert_eq(rk_frame_parse(hdr, 4, 1024, &f), 1);
	cr_assert_eq(f.body_len, 0);
	cr_assert_eq(f.frame_len, 4);
}

Test(frame, header_is_big_endian)
{
	uint8_t hdr[4];
	rk_frame_header(hdr, 0x01020304);
	cr_assert(hdr[0] == 1 && hdr[1] == 2 && hdr[2] == 3 && hdr[3] == 4);
}

Test(buf, consume_and_compact)
{
	struct rk_buf b;
	rk_buf_init(&b);
	for (int round = 0; round < 1000; round++) {
		char x[100];
		memset(x, round & 0xff, sizeof(x));
		cr_assert_eq(rk_buf_append(&b, x, sizeof(x)), 0);
		cr_assert_eq(rk_buf_rptr(&b)[0], (uint8_t)(round & 0xff));
		rk_buf_consume(&b, 60);
		cr_assert_eq(rk_buf_readable(&b), 40);
		rk_buf_consume(&b, 40);
	}
	cr_assert(b.cap <= 256, "cap grew to %zu", b.cap);
	rk_buf_destroy(&b);
}
