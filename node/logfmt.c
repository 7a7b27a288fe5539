#include "logfmt.h"

#include <string.h>

#include "crc32c.h"
#include "err.h"
#include "record.h"

int rk_logrec_encode(struct rk_buf *out, const struct rk_logrec *r)
{
	size_t body = RK_LOG_BODY_FIXED + (size_t)r->klen + r->vlen;
	int rc = rk_buf_reserve(out, RK_LOG_HDR + body);
	if (rc)
		return rc;
	uint8_t *p = out->data + out->len;
	rk_put_le32(p, RK_LOG_MAGIC);
	rk_put_le32(p + 4, (uint32_t)body);
	uint8_t *b = p + RK_LOG_HDR;
	b[0] = r->type;
	b[1] = 0;
	b[2] = (uint8_t)r->klen;
	b[3] = (uint8_t)(r->klen >> 8);
	rk_put_le32(b + 4, r->vlen);
	rk_put_le64(b + 8, r->lsn);
	rk_put_le64(b + 16, r->ts.hlc);
	rk_put_le64(b + 24, r->ts.node);
	memcpy(b + RK_LOG_BODY_FIXED, r->key, r->klen);
	if (r->vlen)
		memcpy(b + RK_LOG_BODY_FIXED + r->klen, r->val, r->vlen);
	uint32_t crc = rk_crc32c(0, p + 4, 4);
	crc = rk_crc32c(crc, b, body);
	rk_put_le32(p + 8, crc);
	out->len += RK_LOG_HDR + body;
	return 0;
}

long rk_logrec_decode(const uint8_t *p, size_t avail, struct rk_logrec *r)
{
	if (avail >= 4 && rk_get_le32(p) != RK_LOG_MAGIC)
		return RK_ECORRUPT;
	if (avail < RK_LOG_HDR)
		return 0;
	uint32_t body = rk_get_le32(p + 4);
	if (body < RK_LOG_BODY_FIXED || body > RK_LOG_MAX_BODY)
		return RK_ECORRUPT;
	if (avail - RK_LOG_HDR < body)
		return 0;
	const uint8_t *b = p + RK_LOG_HDR;
	uint32_t crc = rk_crc32c(0, p + 4, 4);
	crc = rk_crc32c(crc, b, body);
	if (crc != rk_get_le32(p + 8))
		return RK_ECORRUPT;
	uint8_t type = b[0];
	uint16_t klen = (uint16_t)(b[2] | (b[3] << 8));
	uint32_t vlen = rk_get_le32(b + 4);
	if ((type != RK_REC_VALUE && type != RK_REC_TOMBSTONE &&
	     type != RK_REC_DROP && type != RK_REC_HINT &&
	     type != RK_REC_COUNTER && type != RK_REC_COUNTER_OP &&
	     type != RK_REC_PAXOS) ||
	    b[1] != 0 || klen == 0 ||
	    (uint64_t)RK_LOG_BODY_FIXED + klen + vlen != body ||
	    ((type == RK_REC_TOMBSTONE || type == RK_REC_DROP) && vlen != 0))
		return RK_ECORRUPT;
	/* A counter's bytes carry their own version, kind and CRC
	 * (common/crdt.h), checked when they are merged; here only that
	 * there are some. */
	if ((type == RK_REC_COUNTER || type == RK_REC_COUNTER_OP) && vlen < 4)
		return RK_ECORRUPT;
	if (type == RK_REC_HINT) {
		/* [u8 type][u64 target][u64 created] then the value. */
		const uint8_t *v = b + RK_LOG_BODY_FIXED + klen;
		if (vlen < 17 ||
		    (v[0] != RK_REC_VALUE && v[0] != RK_REC_TOMBSTONE &&
		     v[0] != RK_REC_COUNTER) ||
		    (v[0] == RK_REC_TOMBSTONE && vlen != 17) ||
		    (v[0] == RK_REC_COUNTER && vlen < 17 + 4))
			return RK_ECORRUPT;
	}
	r->type = type;
	r->klen = klen;
	r->vlen = vlen;
	r->lsn = rk_get_le64(b + 8);
	r->ts.hlc = rk_get_le64(b + 16);
	r->ts.node = rk_get_le64(b + 24);
	r->key = b + RK_LOG_BODY_FIXED;
	r->val = r->key + klen;
	return (long)(RK_LOG_HDR + body);
}

long rk_logrec_find_next(const uint8_t *p, size_t avail, size_t from)
{
	static const uint8_t magic[4] = {'R', 'K', 'L', '1'};
	while (from + RK_LOG_HDR <= avail) {
		const uint8_t *hit = memmem(p + from, avail - from, magic, 4);
		if (!hit)
			return -1;
		size_t off = (size_t)(hit - p);
		struct rk_logrec r;
		if (rk_logrec_decode(p + off, avail - off, &r) > 0)
			return (long)off;
		from = off + 1;
	}
	return -1;
}
