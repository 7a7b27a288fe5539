/* logfmt.h: the byte format of one op-log record (pure, no I/O).
 *
 * Every record is self-delimiting and checksummed:
 *
 *   offset size
 *   0      4    magic "RKL1"
 *   4      4    body length L (little-endian)
 *   8      4    CRC-32C over the 4 length bytes and the L body bytes
 *   12     L    body:
 *                 0  u8   type (enum rk_rec_type)
 *                 1  u8   flags (0)
 *                 2  u16  key length K (>= 1; 0 only in a Paxos
 *                          clock-bound record, type 6, whose V is 0)
 *                 4  u32  value length V
 *                 8  u64  log sequence number (0 in snapshots)
 *                 16 u64  timestamp hlc
 *                 24 u64  timestamp node id
 *                 32      key[K], value[V]
 *
 * The checksum covers the length so a flipped length bit is caught, and the
 * magic lets a reader that met a damaged record look further for whole
 * ones, which is how it tells a torn tail (nothing whole follows) from a
 * damaged middle (something does).  All integers are little-endian.
 */
#ifndef RK_LOGFMT_H
#define RK_LOGFMT_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "hlc.h"

#define RK_LOG_MAGIC 0x314c4b52u /* "RKL1" read as little-endian u32 */
#define RK_LOG_HDR 12u
#define RK_LOG_BODY_FIXED 32u
/* No record body is ever larger; a length above it is damage. */
#define RK_LOG_MAX_BODY (512u << 20)

/* A decoded record; key and value borrow from the bytes decoded. */
struct rk_logrec {
	uint8_t type;
	uint64_t lsn;
	rk_ts ts;
	const uint8_t *key;
	uint16_t klen;
	const uint8_t *val;
	uint32_t vlen;
};

/* Bytes the encoded record takes. */
static inline size_t rk_logrec_size(uint16_t klen, uint32_t vlen)
{
	return RK_LOG_HDR + RK_LOG_BODY_FIXED + (size_t)klen + vlen;
}

/* Appends the encoding of r to out.  Returns 0 or RK_ENOMEM. */
int rk_logrec_encode(struct rk_buf *out, const struct rk_logrec *r);

/* Decodes the record at p[0, avail).  Returns:
 *   > 0  the record's encoded size; *r filled (borrowing from p);
 *   0    avail ends inside the record (incomplete: maybe a torn tail);
 *   RK_ECORRUPT  bad magic, impossible length, checksum mismatch, or a
 *        body that does not parse (unknown type, lengths that disagree). */
long rk_logrec_decode(const uint8_t *p, size_t avail, struct rk_logrec *r);

/* Offset of the first whole, valid record in p[from, avail), or -1.  Used
 * after damage to tell a torn tail from a corrupt middle. */
long rk_logrec_find_next(const uint8_t *p, size_t avail, size_t from);

#endif
