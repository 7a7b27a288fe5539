/* frame.h: the length-prefixed framing every TCP connection uses.
 *
 * A frame is a 4-byte big-endian body length followed by the body (one
 * protobuf Envelope).  The parser is pure: it looks at bytes a caller has
 * buffered and says whether a whole frame is there, without copying.
 */
#ifndef RK_FRAME_H
#define RK_FRAME_H

#include <stddef.h>
#include <stdint.h>

#define RK_FRAME_HDR 4u

/* The result of looking at buffered bytes. */
struct rk_frame {
	const uint8_t *body; /* borrowed from the caller's buffer */
	uint32_t body_len;   /* may be 0: a zero-length frame */
	size_t frame_len;    /* header + body: bytes to consume */
};

/* Looks at buf[0, len).  Returns 1 and fills *f when a whole frame is there;
 * 0 when more bytes are needed; RK_EFRAME_TOO_LARGE when the length prefix
 * exceeds max_body (decided from the 4 header bytes alone, before the caller
 * allocates anything for the body). */
int rk_frame_parse(const uint8_t *buf, size_t len, uint32_t max_body,
		   struct rk_frame *f);

/* Writes the 4-byte header for a body of body_len bytes. */
void rk_frame_header(uint8_t hdr[RK_FRAME_HDR], uint32_t body_len);

#endif
