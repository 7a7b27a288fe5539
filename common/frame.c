#include "frame.h"

#include "buf.h"
#include "err.h"

int rk_frame_parse(const uint8_t *buf, size_t len, uint32_t max_body,
		   struct rk_frame *f)
{
	if (len < RK_FRAME_HDR)
		return 0;
	uint32_t body_len = rk_get_be32(buf);
	if (body_len > max_body)
		return RK_EFRAME_TOO_LARGE;
	if (len - RK_FRAME_HDR < body_len)
		return 0;
	f->body = buf + RK_FRAME_HDR;
	f->body_len = body_len;
	f->frame_len = RK_FRAME_HDR + (size_t)body_len;
	return 1;
}

void rk_frame_header(uint8_t hdr[RK_FRAME_HDR], uint32_t body_len)
{
	rk_put_be32(hdr, body_len);
}
