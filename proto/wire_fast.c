/* wire_fast.c: the hot messages, by hand: client Get and Put requests
 * and their replies; peer replication writes, reads and their replies.
 *
 * WHY.  protobuf-c unpacks a message into malloc'd structs (the envelope,
 * its body, a copy of every bytes field) that are freed again at once, and
 * packs through generic, descriptor-driven code that sizes every field
 * before writing it.  On a node serving GETs that was about a sixth of its
 * CPU: pack, get_packed_size, unpack and free_unpacked, plus malloc and
 * free under them (bench/README.md, the profile).  Get and Put are nearly
 * all of a loaded node's requests, and a replicated one is a replication
 * write or read to each replica and its reply, so this file reads and
 * writes those directly, without allocating.
 *
 * ONE MEANING.  Nothing here decides what a message means.  The reader
 * fills the very protobuf-c structs that protobuf-c's unpack would have
 * filled (bytes fields borrow from the frame instead of being copied), and
 * wire.c and peer_wire.c validate them with the same code either way.  It takes only
 * the plain form: an envelope of request_id and one Get, Put or
 * ReplMessage (without its repeated ranges and records), each field at
 * most once, enums, bools and 32-bit fields within range, varints well
 * formed.  Anything else (another body, an unknown or repeated field, a field with
 * an unexpected wire type, a value protobuf-c would truncate) it declines,
 * and protobuf-c reads it as before, so what is accepted, and how an error
 * reads, cannot change.  The writer produces exactly protobuf-c's bytes
 * (fields ascending, proto3 defaults left out, a oneof's message always
 * present); tests/unit/test_wire_fast.c checks both against protobuf-c on
 * random and mutated messages.
 */
#include "wire_fast.h"

#include <stddef.h>
#include <string.h>

#include "err.h"
#include "frame.h"

/* A tag: field number << 3 | wire type, sent as a varint. */
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

/* A varint no larger than max (enums, bools, uint32). */
static int rd_small(struct rd *r, uint64_t max, uint64_t *v)
{
	return rd_varint(r, v) || *v > max ? -1 : 0;
}

/* What a field holds, hence its wire type and its range. */
enum kind {
	K_U64,	 /* uint64 */
	K_U32,	 /* uint32 (protobuf-c would truncate a larger varint) */
	K_BOOL,	 /* 0 or 1 (protobuf-c takes any non-zero as true) */
	K_CL,	 /* ringkv.Consistency, DEFAULT .. SERIAL */
	K_BYTES, /* bytes, borrowed */
	K_MSG,	 /* an embedded message: its bytes go to the caller */
};

/* One field of a message: its number, kind and place in the protobuf-c
 * struct. */
struct field {
	uint8_t num; /* below 32 */
	uint8_t kind;
	uint16_t off;
};

/* Reads a message of the plain form into the protobuf-c struct at base:
 * every field one of fs, at most once, with its wire type and in range.
 * The bytes of the K_MSG field (at most one per message) go to *sub.
 * Returns 0, or -1 to decline. */
static int read_msg(ProtobufCBinaryData body, const struct field *fs,
		    size_t nf, void *base, ProtobufCBinaryData *sub)
{
	struct rd r = {body.data, body.data + body.len};
	uint32_t seen = 0;
	while (r.p < r.end) {
		uint64_t tag, v;
		if (rd_varint(&r, &tag))
			return -1;
		const struct field *f = NULL;
		for (size_t i = 0; i < nf && !f; i++)
			if (fs[i].num == tag >> 3)
				f = &fs[i];
		int lenwise = f && (f->kind == K_BYTES || f->kind == K_MSG);
		if (!f || (tag & 7) != (lenwise ? WT_LEN : WT_VARINT) ||
		    (seen >> f->num & 1))
			return -1;
		seen |= 1u << f->num;
		uint8_t *at = (uint8_t *)base + f->off;
		switch ((enum kind)f->kind) {
		case K_U64:
			if (rd_varint(&r, (uint64_t *)(void *)at))
				return -1;
			break;
		case K_U32:
			if (rd_small(&r, UINT32_MAX, &v))
				return -1;
			*(uint32_t *)(void *)at = (uint32_t)v;
			break;
		case K_BOOL:
			if (rd_small(&r, 1, &v))
				return -1;
			*(protobuf_c_boolean *)(void *)at = (protobuf_c_boolean)v;
			break;
		case K_CL:
			if (rd_small(&r, RINGKV__CONSISTENCY__SERIAL, &v))
				return -1;
			*(Ringkv__Consistency *)(void *)at = (Ringkv__Consistency)v;
			break;
		case K_BYTES:
			if (rd_len(&r, (ProtobufCBinaryData *)(void *)at))
				return -1;
			break;
		case K_MSG:
			if (!sub || rd_len(&r, sub))
				return -1;
			break;
		}
	}
	return 0;
}

#define FIELD(num, kind, type, member) \
	{(num), (kind), (uint16_t)offsetof(type, member)}
#define NFIELDS(a) (sizeof(a) / sizeof((a)[0]))

static const struct field get_fields[] = {
    FIELD(1, K_BYTES, Ringkv__Get, key),
    FIELD(2, K_CL, Ringkv__Get, consistency),
    FIELD(3, K_BOOL, Ringkv__Get, all_replies),
    FIELD(4, K_BOOL, Ringkv__Get, local),
};

static const struct field put_fields[] = {
    FIELD(1, K_BYTES, Ringkv__Put, key),
    FIELD(2, K_BYTES, Ringkv__Put, value),
    FIELD(3, K_CL, Ringkv__Put, consistency),
};

/* ReplMessage without its repeated ranges (9) and records (10). */
static const struct field repl_fields[] = {
    FIELD(1, K_U32, Ringkv__Peer__ReplMessage, type),
    FIELD(2, K_U64, Ringkv__Peer__ReplMessage, rid),
    FIELD(3, K_U32, Ringkv__Peer__ReplMessage, flags),
    FIELD(4, K_U32, Ringkv__Peer__ReplMessage, status),
    FIELD(5, K_BOOL, Ringkv__Peer__ReplMessage, found),
    FIELD(6, K_MSG, Ringkv__Peer__ReplMessage, record),
    FIELD(7, K_U64, Ringkv__Peer__ReplMessage, from_lsn),
    FIELD(8, K_U32, Ringkv__Peer__ReplMessage, max_bytes),
    FIELD(11, K_U64, Ringkv__Peer__ReplMessage, next_lsn),
    FIELD(12, K_U64, Ringkv__Peer__ReplMessage, end_lsn),
    FIELD(13, K_BOOL, Ringkv__Peer__ReplMessage, truncated),
    FIELD(14, K_U64, Ringkv__Peer__ReplMessage, cursor),
    FIELD(15, K_BOOL, Ringkv__Peer__ReplMessage, done),
};

static const struct field record_fields[] = {
    FIELD(1, K_U32, Ringkv__Peer__Record, type),
    FIELD(2, K_BYTES, Ringkv__Peer__Record, key),
    FIELD(3, K_BYTES, Ringkv__Peer__Record, value),
    FIELD(4, K_U64, Ringkv__Peer__Record, hlc),
    FIELD(5, K_U64, Ringkv__Peer__Record, node),
    FIELD(6, K_BOOL, Ringkv__Peer__Record, has_value),
};

/* An envelope: request_id = 1 (a varint), then exactly one body, one of
 * the length-delimited fields bodies[] (numbers of any size); its number
 * into *which and its bytes into *body.  Returns 0, or -1 to decline. */
static int read_envelope(const uint8_t *p, size_t len, uint64_t *request_id,
			 const uint32_t *bodies, size_t nb, uint32_t *which,
			 ProtobufCBinaryData *body)
{
	struct rd r = {p, p + len};
	int have_id = 0;
	*which = 0;
	while (r.p < r.end) {
		uint64_t tag;
		if (rd_varint(&r, &tag))
			return -1;
		if (tag == TAG(1, WT_VARINT)) {
			if (have_id || rd_varint(&r, request_id))
				return -1;
			have_id = 1;
			continue;
		}
		size_t i = 0;
		while (i < nb && tag != TAG(bodies[i], WT_LEN))
			i++;
		if (i == nb || *which || rd_len(&r, body))
			return -1;
		*which = bodies[i];
	}
	return *which ? 0 : -1;
}

int wire_fast_read_request(const uint8_t *body, size_t len,
			   struct wire_fast_req *f)
{
	static const uint32_t bodies[] = {RINGKV__ENVELOPE__BODY_GET,
					  RINGKV__ENVELOPE__BODY_PUT};
	ringkv__envelope__init(&f->env);
	ringkv__get__init(&f->get);
	ringkv__put__init(&f->put);
	uint32_t which;
	ProtobufCBinaryData b;
	if (read_envelope(body, len, &f->env.request_id, bodies, 2, &which,
			  &b))
		return 0;
	if (which == RINGKV__ENVELOPE__BODY_GET) {
		if (read_msg(b, get_fields, NFIELDS(get_fields), &f->get, NULL))
			return 0;
		f->env.get = &f->get;
	} else {
		if (read_msg(b, put_fields, NFIELDS(put_fields), &f->put, NULL))
			return 0;
		f->env.put = &f->put;
	}
	f->env.body_case = (Ringkv__Envelope__BodyCase)which;
	return 1;
}

int wire_fast_read_peer(const uint8_t *body, size_t len,
			struct wire_fast_peer *f)
{
	static const uint32_t bodies[] = {
	    RINGKV__PEER__PEER_ENVELOPE__BODY_REPL};
	ringkv__peer__peer_envelope__init(&f->env);
	ringkv__peer__repl_message__init(&f->repl);
	ringkv__peer__record__init(&f->record);
	uint32_t which;
	ProtobufCBinaryData b, rec = {0, NULL};
	if (read_envelope(body, len, &f->env.request_id, bodies, 1, &which,
			  &b) ||
	    read_msg(b, repl_fields, NFIELDS(repl_fields), &f->repl, &rec))
		return 0;
	if (rec.data) {
		if (read_msg(rec, record_fields, NFIELDS(record_fields),
			     &f->record, NULL))
			return 0;
		f->repl.record = &f->record;
	}
	f->env.body_case = RINGKV__PEER__PEER_ENVELOPE__BODY_REPL;
	f->env.repl = &f->repl;
	return 1;
}

/* ---- writing ------------------------------------------------------- */

/* Writes, or with p NULL only counts, bytes: every message is emitted
 * twice, once to learn its size (which its parent writes first) and once
 * for real. */
struct wr {
	uint8_t *p;
	size_t n;
};

static void w_varint(struct wr *w, uint64_t v)
{
	if (!w->p) {
		/* 7 bits a byte: the bits up to the highest set one. */
		w->n += (size_t)(63 - __builtin_clzll(v | 1)) / 7 + 1;
		return;
	}
	while (v >= 0x80) {
		*w->p++ = (uint8_t)(v | 0x80);
		v >>= 7;
		w->n++;
	}
	*w->p++ = (uint8_t)v;
	w->n++;
}

/* A varint field, left out when 0 (proto3). */
static void w_uint(struct wr *w, uint32_t num, uint64_t v)
{
	if (!v)
		return;
	w_varint(w, TAG(num, WT_VARINT));
	w_varint(w, v);
}

static void w_len(struct wr *w, uint32_t num, const void *data, size_t n)
{
	w_varint(w, TAG(num, WT_LEN));
	w_varint(w, n);
	if (w->p && n) {
		memcpy(w->p, data, n);
		w->p += n;
	}
	w->n += n;
}

/* A bytes or string field, left out when empty (proto3). */
static void w_bytes(struct wr *w, uint32_t num, const void *data, size_t n)
{
	if (n)
		w_len(w, num, data, n);
}

/* An embedded message: its size first, then its bytes.  Counting counts
 * it once, writing counts then writes it: each level costs its depth in
 * passes, not two to the depth. */
typedef void (*emit_fn)(struct wr *w, const void *arg);

static void w_msg(struct wr *w, uint32_t num, emit_fn emit, const void *arg)
{
	struct wr count = {NULL, 0};
	emit(&count, arg);
	w_varint(w, TAG(num, WT_LEN));
	w_varint(w, count.n);
	if (w->p)
		emit(w, arg);
	else
		w->n += count.n;
}

/* Appends one frame holding what emit writes.  Returns 1 or RK_ENOMEM. */
static int w_frame(struct rk_buf *out, emit_fn emit, const void *arg)
{
	struct wr count = {NULL, 0};
	emit(&count, arg);
	if (count.n > UINT32_MAX ||
	    rk_buf_reserve(out, RK_FRAME_HDR + count.n))
		return RK_ENOMEM;
	uint8_t *p = out->data + out->len;
	rk_frame_header(p, (uint32_t)count.n);
	struct wr w = {p + RK_FRAME_HDR, 0};
	emit(&w, arg);
	out->len += RK_FRAME_HDR + count.n;
	return 1;
}

/* Timestamp: hlc = 1, node_id = 2. */
static void emit_ts(struct wr *w, const void *arg)
{
	const rk_ts *ts = arg;
	w_uint(w, 1, ts->hlc);
	w_uint(w, 2, ts->node);
}

/* GetResult (value = 1, timestamp = 2) or WriteResult (timestamp = 1). */
static void emit_result(struct wr *w, const void *arg)
{
	const struct rk_response *r = arg;
	if (r->op == RK_OP_GET)
		w_bytes(w, 1, r->value.p, r->value.n);
	if (r->has_ts)
		w_msg(w, r->op == RK_OP_GET ? 2 : 1, emit_ts, &r->ts);
}

/* Response: status = 1, error = 2, get = 17 / write = 18 (a oneof's
 * message is written even when empty). */
static void emit_response(struct wr *w, const void *arg)
{
	const struct rk_response *r = arg;
	w_uint(w, 1, (uint64_t)-r->status);
	if (r->error)
		w_bytes(w, 2, r->error, strlen(r->error));
	w_msg(w,
	      r->op == RK_OP_GET ? RINGKV__RESPONSE__RESULT_GET
				 : RINGKV__RESPONSE__RESULT_WRITE,
	      emit_result, r);
}

/* Envelope: request_id = 1, response = 64. */
static void emit_envelope(struct wr *w, const void *arg)
{
	const struct rk_response *r = arg;
	w_uint(w, 1, r->id);
	w_msg(w, RINGKV__ENVELOPE__BODY_RESPONSE, emit_response, r);
}

int wire_fast_write_response(struct rk_buf *out, const struct rk_response *r)
{
	if (!((r->op == RK_OP_GET && r->n_replies == 0) ||
	      r->op == RK_OP_PUT || r->op == RK_OP_DELETE))
		return 0;
	if (r->status > 0 || r->status < -127)
		return 0; /* not a code the Status enum holds */
	return w_frame(out, emit_envelope, r);
}

/* Record: type = 1, key = 2, value = 3, hlc = 4, node = 5, has_value = 6
 * (as rec_to_pb in peer_wire.c fills it). */
static void emit_record(struct wr *w, const void *arg)
{
	const struct repl_record *rec = arg;
	w_uint(w, 1, rec->type);
	w_bytes(w, 2, rec->key, rec->klen);
	w_bytes(w, 3, rec->val, rec->val ? rec->vlen : 0);
	w_uint(w, 4, rec->ts.hlc);
	w_uint(w, 5, rec->ts.node);
	w_uint(w, 6, rec->val != NULL);
}

/* ReplMessage, fields ascending (as repl_to_pb in peer_wire.c fills it;
 * no ranges or records here). */
static void emit_repl(struct wr *w, const void *arg)
{
	const struct repl_msg *m = arg;
	w_uint(w, 1, (uint32_t)m->type);
	w_uint(w, 2, m->rid);
	w_uint(w, 3, m->flags);
	w_uint(w, 4, (uint32_t)-m->status);
	w_uint(w, 5, m->found != 0);
	if (m->type == REPL_WRITE || m->type == REPL_READ ||
	    (m->type == REPL_READ_REPLY && m->rec.key))
		w_msg(w, 6, emit_record, &m->rec);
	w_uint(w, 7, m->from_lsn);
	w_uint(w, 8, m->max_bytes);
	w_uint(w, 11, m->next_lsn);
	w_uint(w, 12, m->end_lsn);
	w_uint(w, 13, m->truncated != 0);
	w_uint(w, 14, m->cursor);
	w_uint(w, 15, m->done != 0);
}

/* PeerEnvelope: request_id = 1, repl = 20. */
static void emit_peer(struct wr *w, const void *arg)
{
	const struct peer_msg *m = arg;
	w_uint(w, 1, m->id);
	w_msg(w, RINGKV__PEER__PEER_ENVELOPE__BODY_REPL, emit_repl, &m->repl);
}

int wire_fast_write_peer(struct rk_buf *out, const struct peer_msg *m)
{
	if (m->op != PEER_OP_REPL || m->repl.n_ranges || m->repl.n_recs)
		return 0;
	switch (m->repl.type) {
	case REPL_WRITE:
	case REPL_WRITE_ACK:
	case REPL_READ:
	case REPL_READ_REPLY:
		return w_frame(out, emit_peer, m);
	default:
		return 0;
	}
}
