/* wire_fast.c: Get and Put requests and their replies, by hand.
 *
 * WHY.  protobuf-c unpacks a message into malloc'd structs (the envelope,
 * its body, a copy of every bytes field) that are freed again at once, and
 * packs through generic, descriptor-driven code that sizes every field
 * before writing it.  On a node serving GETs that was about a sixth of its
 * CPU: pack, get_packed_size, unpack and free_unpacked, plus malloc and
 * free under them (bench/README.md, the profile).  Get and Put are nearly
 * all of a loaded node's requests, so this file reads those two and writes
 * their replies directly, without allocating.
 *
 * ONE MEANING.  Nothing here decides what a message means.  The reader
 * fills the very protobuf-c structs that ringkv__envelope__unpack would
 * have filled (bytes fields borrow from the frame instead of being copied),
 * and wire.c validates them with the same code either way.  It takes only
 * the plain form: an envelope of request_id and one Get or Put, each field
 * at most once, enums and bools within range, varints well formed.
 * Anything else (another body, an unknown or repeated field, a field with
 * an unexpected wire type, a value protobuf-c would truncate) it declines,
 * and protobuf-c reads it as before, so what is accepted, and how an error
 * reads, cannot change.  The writer produces exactly protobuf-c's bytes
 * (fields ascending, proto3 defaults left out, a oneof's message always
 * present); tests/unit/test_wire_fast.c checks both against protobuf-c on
 * random and mutated messages.
 */
#include "wire_fast.h"

#include <string.h>

#include "err.h"
#include "frame.h"

/* Tags (field number << 3 | wire type) as the bytes they encode to. */
#define WT_VARINT 0
#define WT_LEN 2
#define TAG(field, wt) (((uint32_t)(field) << 3) | (wt))

/* ---- reading ------------------------------------------------------- */

struct rd {
	const uint8_t *p, *end;
};

/* A varint of at most 10 bytes whose value fits 64 bits; -1 otherwise. */
static int rd_varint(struct rd *r, uint64_t *v)
{
	uint64_t x = 0;
	for (int i = 0; i < 10 && r->p < r->end; i++) {
		uint8_t b = *r->p++;
		if (i == 9 && b > 1)
			return -1;
		x |= (uint64_t)(b & 0x7f) << (7 * i);
		if (!(b & 0x80)) {
			*v = x;
			return 0;
		}
	}
	return -1;
}

/* A length-delimited field's bytes, within the message. */
static int rd_len(struct rd *r, ProtobufCBinaryData *out)
{
	uint64_t n;
	if (rd_varint(r, &n) || n > (uint64_t)(r->end - r->p))
		return -1;
	out->data = (uint8_t *)r->p;
	out->len = (size_t)n;
	r->p += n;
	return 0;
}

/* A varint no larger than max (enums, bools). */
static int rd_small(struct rd *r, uint64_t max, uint64_t *v)
{
	return rd_varint(r, v) || *v > max ? -1 : 0;
}

/* Get: key = 1, consistency = 2, all_replies = 3, local = 4. */
static int read_get(ProtobufCBinaryData body, Ringkv__Get *g)
{
	struct rd r = {body.data, body.data + body.len};
	unsigned seen = 0;
	while (r.p < r.end) {
		uint64_t tag, v;
		if (rd_varint(&r, &tag) || tag > TAG(4, WT_LEN))
			return -1;
		unsigned bit = 1u << (tag >> 3);
		if (seen & bit)
			return -1;
		seen |= bit;
		switch ((uint32_t)tag) {
		case TAG(1, WT_LEN):
			if (rd_len(&r, &g->key))
				return -1;
			break;
		case TAG(2, WT_VARINT):
			if (rd_small(&r, RINGKV__CONSISTENCY__SERIAL, &v))
				return -1;
			g->consistency = (Ringkv__Consistency)v;
			break;
		case TAG(3, WT_VARINT):
			if (rd_small(&r, 1, &v))
				return -1;
			g->all_replies = (protobuf_c_boolean)v;
			break;
		case TAG(4, WT_VARINT):
			if (rd_small(&r, 1, &v))
				return -1;
			g->local = (protobuf_c_boolean)v;
			break;
		default:
			return -1;
		}
	}
	return 0;
}

/* Put: key = 1, value = 2, consistency = 3. */
static int read_put(ProtobufCBinaryData body, Ringkv__Put *p)
{
	struct rd r = {body.data, body.data + body.len};
	unsigned seen = 0;
	while (r.p < r.end) {
		uint64_t tag, v;
		if (rd_varint(&r, &tag) || tag > TAG(3, WT_VARINT))
			return -1;
		unsigned bit = 1u << (tag >> 3);
		if (seen & bit)
			return -1;
		seen |= bit;
		switch ((uint32_t)tag) {
		case TAG(1, WT_LEN):
			if (rd_len(&r, &p->key))
				return -1;
			break;
		case TAG(2, WT_LEN):
			if (rd_len(&r, &p->value))
				return -1;
			break;
		case TAG(3, WT_VARINT):
			if (rd_small(&r, RINGKV__CONSISTENCY__SERIAL, &v))
				return -1;
			p->consistency = (Ringkv__Consistency)v;
			break;
		default:
			return -1;
		}
	}
	return 0;
}

int wire_fast_read_request(const uint8_t *body, size_t len,
			   struct wire_fast_req *f)
{
	ringkv__envelope__init(&f->env);
	ringkv__get__init(&f->get);
	ringkv__put__init(&f->put);
	struct rd r = {body, body + len};
	int have_id = 0;
	ProtobufCBinaryData b;
	while (r.p < r.end) {
		uint64_t tag;
		if (rd_varint(&r, &tag))
			return 0;
		switch (tag) {
		case TAG(1, WT_VARINT):
			if (have_id || rd_varint(&r, &f->env.request_id))
				return 0;
			have_id = 1;
			break;
		case TAG(RINGKV__ENVELOPE__BODY_GET, WT_LEN):
			if (f->env.body_case || rd_len(&r, &b) ||
			    read_get(b, &f->get))
				return 0;
			f->env.body_case = RINGKV__ENVELOPE__BODY_GET;
			f->env.get = &f->get;
			break;
		case TAG(RINGKV__ENVELOPE__BODY_PUT, WT_LEN):
			if (f->env.body_case || rd_len(&r, &b) ||
			    read_put(b, &f->put))
				return 0;
			f->env.body_case = RINGKV__ENVELOPE__BODY_PUT;
			f->env.put = &f->put;
			break;
		default:
			return 0;
		}
	}
	return f->env.body_case != RINGKV__ENVELOPE__BODY__NOT_SET;
}

/* ---- writing ------------------------------------------------------- */

static size_t varint_size(uint64_t v)
{
	size_t n = 1;
	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

static uint8_t *put_varint(uint8_t *p, uint64_t v)
{
	while (v >= 0x80) {
		*p++ = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	*p++ = (uint8_t)v;
	return p;
}

/* Bytes of a varint field (tag below 128) when v is not the default. */
static size_t varint_field_size(uint64_t v)
{
	return v ? 1 + varint_size(v) : 0;
}

static uint8_t *put_varint_field(uint8_t *p, uint32_t tag, uint64_t v)
{
	if (!v)
		return p;
	*p++ = (uint8_t)tag;
	return put_varint(p, v);
}

/* Bytes of a length-delimited field with a one-byte tag. */
static size_t len_field_size(size_t n)
{
	return 1 + varint_size(n) + n;
}

static uint8_t *put_len_field(uint8_t *p, uint32_t tag, const void *data,
			      size_t n)
{
	*p++ = (uint8_t)tag;
	p = put_varint(p, n);
	if (n)
		memcpy(p, data, n);
	return p + n;
}

int wire_fast_write_response(struct rk_buf *out, const struct rk_response *r)
{
	uint32_t body_tag;
	if (r->op == RK_OP_GET && r->n_replies == 0)
		body_tag = TAG(RINGKV__RESPONSE__RESULT_GET, WT_LEN);
	else if (r->op == RK_OP_PUT || r->op == RK_OP_DELETE)
		body_tag = TAG(RINGKV__RESPONSE__RESULT_WRITE, WT_LEN);
	else
		return 0;
	if (r->status > 0 || r->status < -127)
		return 0; /* not a code the Status enum holds */
	uint64_t status = (uint64_t)-r->status;
	size_t err_n = r->error ? strlen(r->error) : 0;

	/* Sizes, innermost first.  Timestamp: hlc = 1, node_id = 2. */
	size_t ts = varint_field_size(r->ts.hlc) + varint_field_size(r->ts.node);
	size_t result = r->has_ts ? len_field_size(ts) : 0;
	if (r->op == RK_OP_GET && r->value.n)
		result += len_field_size(r->value.n); /* GetResult.value = 1 */
	size_t resp = varint_field_size(status) +
		      (err_n ? len_field_size(err_n) : 0) + 2 +
		      varint_size(result) + result;
	/* Envelope: request_id = 1, response = 64 (a two-byte tag). */
	size_t env = varint_field_size(r->id) + 2 + varint_size(resp) + resp;
	if (env > UINT32_MAX)
		return RK_ENOMEM;
	if (rk_buf_reserve(out, RK_FRAME_HDR + env))
		return RK_ENOMEM;

	uint8_t *p = out->data + out->len;
	rk_frame_header(p, (uint32_t)env);
	p += RK_FRAME_HDR;
	p = put_varint_field(p, TAG(1, WT_VARINT), r->id);
	p = put_varint(p, TAG(RINGKV__ENVELOPE__BODY_RESPONSE, WT_LEN));
	p = put_varint(p, resp);
	p = put_varint_field(p, TAG(1, WT_VARINT), status);
	if (err_n)
		p = put_len_field(p, TAG(2, WT_LEN), r->error, err_n);
	p = put_varint(p, body_tag);
	p = put_varint(p, result);
	if (r->op == RK_OP_GET && r->value.n)
		p = put_len_field(p, TAG(1, WT_LEN), r->value.p, r->value.n);
	if (r->has_ts) {
		/* GetResult.timestamp = 2, WriteResult.timestamp = 1. */
		*p++ = (uint8_t)(r->op == RK_OP_GET ? TAG(2, WT_LEN)
						    : TAG(1, WT_LEN));
		p = put_varint(p, ts);
		p = put_varint_field(p, TAG(1, WT_VARINT), r->ts.hlc);
		p = put_varint_field(p, TAG(2, WT_VARINT), r->ts.node);
	}
	out->len += RK_FRAME_HDR + env;
	return 1;
}
