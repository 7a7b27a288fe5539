#include "fastwire.h"

#include <string.h>

#include "err.h"

/* Protobuf wire types. */
enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_I32 = 5 };

/* Field numbers of proto/ringkv.proto that this reader looks at. */
#define ENVELOPE_REQUEST_ID 1
#define ENVELOPE_FIRST_REQUEST 16 /* 16..63: requests */
#define ENVELOPE_RESPONSE 64
#define RESPONSE_STATUS 1
#define RESPONSE_ERROR 2
#define RESPONSE_RESULT_FIRST 16  /* 16..: the result oneof */
#define RESPONSE_GET 17
#define RESPONSE_WRITE 18
#define RESPONSE_COUNTER 26
#define GET_VALUE 1
#define GET_TIMESTAMP 2
#define WRITE_TIMESTAMP 1
#define STATUS_NOT_FOUND 1

struct cursor {
	const uint8_t *p, *end;
};

static int varint(struct cursor *c, uint64_t *v)
{
	uint64_t x = 0;
	for (int shift = 0; shift < 64; shift += 7) {
		if (c->p == c->end)
			return -1;
		uint8_t b = *c->p++;
		x |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*v = x;
			return 0;
		}
	}
	return -1;
}

/* Reads a tag; 1 with field and wire type, 0 at the end, -1 if bad. */
static int tag(struct cursor *c, uint32_t *field, int *wt)
{
	if (c->p == c->end)
		return 0;
	uint64_t t;
	if (varint(c, &t) || (t >> 3) == 0 || (t >> 3) > 0x1fffffff)
		return -1;
	*field = (uint32_t)(t >> 3);
	*wt = (int)(t & 7);
	return 1;
}

/* Takes the payload of a length-delimited field. */
static int take_len(struct cursor *c, struct cursor *sub)
{
	uint64_t n;
	if (varint(c, &n) || n > (uint64_t)(c->end - c->p))
		return -1;
	sub->p = c->p;
	sub->end = c->p + n;
	c->p += n;
	return 0;
}

/* Skips a field of an unknown number, as protobuf says to. */
static int skip(struct cursor *c, int wt)
{
	uint64_t v;
	struct cursor sub;
	switch (wt) {
	case WT_VARINT:
		return varint(c, &v);
	case WT_I64:
		if (c->end - c->p < 8)
			return -1;
		c->p += 8;
		return 0;
	case WT_LEN:
		return take_len(c, &sub);
	case WT_I32:
		if (c->end - c->p < 4)
			return -1;
		c->p += 4;
		return 0;
	default: /* groups: not in our schema */
		return -1;
	}
}

/* A Timestamp: two varints; checked, not kept. */
static int timestamp(struct cursor c)
{
	uint32_t f;
	int wt, t;
	while ((t = tag(&c, &f, &wt)) == 1) {
		if ((f == 1 || f == 2) && wt != WT_VARINT)
			return -1;
		if (skip(&c, wt))
			return -1;
	}
	return t;
}

static int get_result(struct cursor c, struct fw_reply *r)
{
	uint32_t f;
	int wt, t;
	r->value_len = 0;
	while ((t = tag(&c, &f, &wt)) == 1) {
		struct cursor sub;
		if (f == GET_VALUE || f == GET_TIMESTAMP) {
			if (wt != WT_LEN || take_len(&c, &sub))
				return -1;
			if (f == GET_VALUE)
				r->value_len = (size_t)(sub.end - sub.p);
			else if (timestamp(sub))
				return -1;
		} else if (f == 3) {
			/* Per-replica answers (all_replies): nested messages
			 * this reader does not check; the full codec does. */
			return -1;
		} else if (skip(&c, wt)) {
			return -1;
		}
	}
	return t;
}

static int write_result(struct cursor c)
{
	uint32_t f;
	int wt, t;
	while ((t = tag(&c, &f, &wt)) == 1) {
		struct cursor sub;
		if (f == WRITE_TIMESTAMP) {
			if (wt != WT_LEN || take_len(&c, &sub) ||
			    timestamp(sub))
				return -1;
		} else if (skip(&c, wt)) {
			return -1;
		}
	}
	return t;
}

/* CounterResult: value, duplicate, owner (varints), timestamp; its
 * per-replica answers are left to the full decoder. */
static int counter_result(struct cursor c)
{
	uint32_t f;
	int wt, t;
	while ((t = tag(&c, &f, &wt)) == 1) {
		struct cursor sub;
		if (f <= 3) {
			uint64_t v;
			if (wt != WT_VARINT || varint(&c, &v))
				return -1;
		} else if (f == 4) {
			return -1;
		} else if (f == 5) {
			if (wt != WT_LEN || take_len(&c, &sub) ||
			    timestamp(sub))
				return -1;
		} else if (skip(&c, wt)) {
			return -1;
		}
	}
	return t;
}

static int response(struct cursor c, struct fw_reply *r)
{
	uint32_t f;
	int wt, t;
	uint64_t status = 0;
	while ((t = tag(&c, &f, &wt)) == 1) {
		struct cursor sub;
		if (f == RESPONSE_STATUS) {
			if (wt != WT_VARINT || varint(&c, &status))
				return -1;
		} else if (f == RESPONSE_ERROR) {
			/* An error text: leave it to the full decoder. */
			return -1;
		} else if (f >= RESPONSE_RESULT_FIRST) {
			if (wt != WT_LEN || take_len(&c, &sub))
				return -1;
			if (f == RESPONSE_GET) {
				r->result = FW_GET;
				if (get_result(sub, r))
					return -1;
			} else if (f == RESPONSE_WRITE) {
				r->result = FW_WRITE;
				r->value_len = 0;
				if (write_result(sub))
					return -1;
			} else if (f == RESPONSE_COUNTER) {
				r->result = FW_COUNTER;
				r->value_len = 0;
				if (counter_result(sub))
					return -1;
			} else {
				return -1; /* ping, exists, cluster info... */
			}
		} else if (skip(&c, wt)) {
			return -1;
		}
	}
	if (t < 0)
		return -1;
	if (status == 0)
		r->status = 0;
	else if (status == STATUS_NOT_FOUND)
		r->status = RK_ENOT_FOUND;
	else
		return -1;
	return 0;
}

int fw_decode_response(const uint8_t *p, size_t n, struct fw_reply *r)
{
	memset(r, 0, sizeof(*r));
	struct cursor c = {p, p + n};
	uint32_t f;
	int wt, t;
	int responses = 0;
	while ((t = tag(&c, &f, &wt)) == 1) {
		struct cursor sub;
		if (f == ENVELOPE_REQUEST_ID) {
			if (wt != WT_VARINT || varint(&c, &r->id))
				return RK_EPROTOCOL;
		} else if (f == ENVELOPE_RESPONSE) {
			/* A second copy would be merged into the first
			 * by protobuf: left to the full decoder. */
			if (wt != WT_LEN || take_len(&c, &sub) || responses++ ||
			    response(sub, r))
				return RK_EPROTOCOL;
		} else if (f >= ENVELOPE_FIRST_REQUEST) {
			return RK_EPROTOCOL; /* a request, not a response */
		} else if (skip(&c, wt)) {
			return RK_EPROTOCOL;
		}
	}
	if (t < 0 || responses != 1)
		return RK_EPROTOCOL;
	return 0;
}
