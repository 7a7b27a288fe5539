/* codec.c: a member's token list as bytes, for the data directory and for
 * gossip.  The format is in ring.h.  The decoder trusts nothing: it checks
 * the header and the exact length before it reads a token, and the
 * checksum before it returns one. */
#include "ring.h"

#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "crc32c.h"
#include "err.h"
#include "ring_int.h"

#define HDR_LEN 8 /* magic + count */
#define CRC_LEN 4

size_t ring_tokens_encoded_size(size_t n)
{
	return HDR_LEN + n * 8 + CRC_LEN;
}

int ring_tokens_encode(const uint64_t *tokens, size_t n, uint8_t *buf,
		       size_t cap, size_t *len)
{
	if (n == 0 || n > RING_TOKENS_MAX || cap < ring_tokens_encoded_size(n))
		return RK_EINVALID;
	uint64_t *sorted = malloc(n * sizeof(*sorted));
	if (!sorted)
		return RK_ENOMEM;
	memcpy(sorted, tokens, n * sizeof(*sorted));
	qsort(sorted, n, sizeof(*sorted), ring_cmp_u64);
	for (size_t i = 1; i < n; i++) {
		if (sorted[i] == sorted[i - 1]) {
			free(sorted);
			return RK_EINVALID;
		}
	}
	uint8_t *p = buf;
	memcpy(p, RING_TOKENS_MAGIC, 4);
	rk_put_le32(p + 4, (uint32_t)n);
	p += HDR_LEN;
	for (size_t i = 0; i < n; i++, p += 8)
		rk_put_le64(p, sorted[i]);
	rk_put_le32(p, rk_crc32c(0, buf, (size_t)(p - buf)));
	free(sorted);
	*len = ring_tokens_encoded_size(n);
	return 0;
}

int ring_tokens_decode(const uint8_t *buf, size_t len, uint64_t *out,
		       size_t cap, size_t *n)
{
	*n = 0;
	if (!buf || len < HDR_LEN + CRC_LEN ||
	    memcmp(buf, RING_TOKENS_MAGIC, 4) != 0)
		return RK_ECORRUPT;
	uint32_t count = rk_get_le32(buf + 4);
	if (count == 0 || count > RING_TOKENS_MAX ||
	    len != ring_tokens_encoded_size(count))
		return RK_ECORRUPT;
	if (rk_get_le32(buf + len - CRC_LEN) !=
	    rk_crc32c(0, buf, len - CRC_LEN))
		return RK_ECORRUPT;
	const uint8_t *p = buf + HDR_LEN;
	for (uint32_t i = 1; i < count; i++)
		if (rk_get_le64(p + 8 * i) <= rk_get_le64(p + 8 * (i - 1)))
			return RK_ECORRUPT;
	*n = count;
	if (cap < count)
		return RK_EINVALID;
	for (uint32_t i = 0; i < count; i++)
		out[i] = rk_get_le64(p + 8 * i);
	return 0;
}
