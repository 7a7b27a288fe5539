/* codec.c: a member's token list as bytes, for the data directory and for
 * gossip.  The format is in ring.h.  The decoder trusts nothing: it checks
 * the header and the exact length before it reads a token, and the
 * checksum before it returns one. */
#include "ring.h"

#include <stdlib.h>
#include <string.h>

#include "crc32c.h"
#include "err.h"

#define HDR_LEN 8 /* magic + count */
#define CRC_LEN 4

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

static void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static uint64_t get_le64(const uint8_t *p)
{
	return (uint64_t)get_le32(p) | (uint64_t)get_le32(p + 4) << 32;
}

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
	qsort(sorted, n, sizeof(*sorted), cmp_u64);
	for (size_t i = 1; i < n; i++) {
		if (sorted[i] == sorted[i - 1]) {
			free(sorted);
			return RK_EINVALID;
		}
	}
	uint8_t *p = buf;
	memcpy(p, RING_TOKENS_MAGIC, 4);
	put_le32(p + 4, (uint32_t)n);
	p += HDR_LEN;
	for (size_t i = 0; i < n; i++, p += 8) {
		put_le32(p, (uint32_t)sorted[i]);
		put_le32(p + 4, (uint32_t)(sorted[i] >> 32));
	}
	put_le32(p, rk_crc32c(0, buf, (size_t)(p - buf)));
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
	uint32_t count = get_le32(buf + 4);
	if (count == 0 || count > RING_TOKENS_MAX ||
	    len != ring_tokens_encoded_size(count))
		return RK_ECORRUPT;
	if (get_le32(buf + len - CRC_LEN) != rk_crc32c(0, buf, len - CRC_LEN))
		return RK_ECORRUPT;
	const uint8_t *p = buf + HDR_LEN;
	for (uint32_t i = 1; i < count; i++)
		if (get_le64(p + 8 * i) <= get_le64(p + 8 * (i - 1)))
			return RK_ECORRUPT;
	*n = count;
	if (cap < count)
		return RK_EINVALID;
	for (uint32_t i = 0; i < count; i++)
		out[i] = get_le64(p + 8 * i);
	return 0;
}
