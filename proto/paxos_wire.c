/* paxos_wire.c: proto/paxos.proto <-> paxos/paxos_msg.h.
 *
 * Encoding packs the message without its checksum field (proto3 leaves a
 * zero fixed32 out) and appends field 15 by hand: the tag 0x7d and the
 * CRC-32C of everything before it.  protobuf-c would put field 15 last
 * too, so the result is an ordinary PaxosMessage.  Decoding checks that
 * trailer before unpacking, so truncation and bit flips are refused
 * whatever protobuf would make of them, then validates every field in one
 * pass before filling the plain structs.
 */
#include "paxos_wire.h"

#include <stdlib.h>
#include <string.h>

#include "crc32c.h"
#include "err.h"
#include "paxos.pb-c.h"

/* Field 15, wire type 5 (fixed32). */
#define CRC_TAG 0x7du
#define TRAILER 5u

/* Room for one message's submessages while encoding: at most five
 * timestamps outside proposals, two proposals of three each, three
 * values. */
struct enc {
	Ringkv__Paxos__Ts ts[12];
	size_t nts;
	Ringkv__Paxos__Value val[3];
	size_t nval;
	Ringkv__Paxos__Proposal prop[2];
	size_t nprop;
};

static Ringkv__Paxos__Ts *enc_ts(struct enc *e, rk_ts t)
{
	if (rk_ts_is_zero(t))
		return NULL;
	Ringkv__Paxos__Ts *w = &e->ts[e->nts++];
	ringkv__paxos__ts__init(w);
	w->hlc = t.hlc;
	w->node = t.node;
	return w;
}

static Ringkv__Paxos__Value *enc_val(struct enc *e, const struct paxos_value *v)
{
	if (!v->present)
		return NULL;
	Ringkv__Paxos__Value *w = &e->val[e->nval++];
	ringkv__paxos__value__init(w);
	w->present = 1;
	w->data.len = v->len;
	w->data.data = (uint8_t *)v->data;
	return w;
}

static Ringkv__Paxos__Proposal *enc_prop(struct enc *e,
					 const struct paxos_proposal *p)
{
	if (rk_ts_is_zero(p->ballot))
		return NULL;
	Ringkv__Paxos__Proposal *w = &e->prop[e->nprop++];
	ringkv__paxos__proposal__init(w);
	w->ballot = enc_ts(e, p->ballot);
	w->origin = enc_ts(e, p->origin);
	w->base_commit = enc_ts(e, p->base);
	w->value = enc_val(e, &p->value);
	return w;
}

static ProtobufCBinaryData enc_key(const uint8_t *key, size_t klen)
{
	ProtobufCBinaryData b = {.len = klen, .data = (uint8_t *)key};
	return b;
}

/* Packs msg and appends the checksum trailer to out. */
static int pack_with_crc(const ProtobufCMessage *msg, struct rk_buf *out)
{
	size_t n = protobuf_c_message_get_packed_size(msg);
	int rc = rk_buf_reserve(out, n + TRAILER);
	if (rc)
		return rc;
	uint8_t *p = out->data + out->len;
	protobuf_c_message_pack(msg, p);
	p[n] = CRC_TAG;
	rk_put_le32(p + n + 1, rk_crc32c(0, p, n));
	out->len += n + TRAILER;
	return 0;
}

/* Checks the trailer and unpacks.  Returns the message or NULL. */
static ProtobufCMessage *unpack_with_crc(const ProtobufCMessageDescriptor *d,
					 const uint8_t *bytes, size_t len,
					 uint32_t *crc)
{
	if (!bytes || len < TRAILER || bytes[len - TRAILER] != CRC_TAG)
		return NULL;
	*crc = rk_get_le32(bytes + len - 4);
	if (rk_crc32c(0, bytes, len - TRAILER) != *crc)
		return NULL;
	return protobuf_c_message_unpack(d, NULL, len, bytes);
}

int paxos_wire_encode(const struct paxos_msg *m, struct rk_buf *out)
{
	struct enc e = {0};
	Ringkv__Paxos__PaxosMessage pm = RINGKV__PAXOS__PAXOS_MESSAGE__INIT;
	Ringkv__Paxos__Prepare prep = RINGKV__PAXOS__PREPARE__INIT;
	Ringkv__Paxos__Promise prom = RINGKV__PAXOS__PROMISE__INIT;
	Ringkv__Paxos__Propose prop = RINGKV__PAXOS__PROPOSE__INIT;
	Ringkv__Paxos__Accepted acc = RINGKV__PAXOS__ACCEPTED__INIT;
	Ringkv__Paxos__Commit com = RINGKV__PAXOS__COMMIT__INIT;
	Ringkv__Paxos__Committed comd = RINGKV__PAXOS__COMMITTED__INIT;

	if (!paxos_msg_valid(m))
		return RK_EINVALID;
	pm.version = PAXOS_WIRE_VERSION;
	switch (m->type) {
	case PAXOS_MSG_PREPARE:
		prep.key = enc_key(m->key, m->klen);
		prep.req = m->req;
		prep.ballot = enc_ts(&e, m->ballot);
		pm.body_case = RINGKV__PAXOS__PAXOS_MESSAGE__BODY_PREPARE;
		pm.prepare = &prep;
		break;
	case PAXOS_MSG_PROMISE:
		prom.key = enc_key(m->key, m->klen);
		prom.req = m->req;
		prom.ballot = enc_ts(&e, m->ballot);
		prom.ok = m->ok != 0;
		prom.promised = enc_ts(&e, m->promised);
		prom.accepted = enc_prop(&e, &m->accepted);
		prom.committed = enc_ts(&e, m->committed);
		prom.current = enc_val(&e, &m->current);
		prom.current_ts = enc_ts(&e, m->current_ts);
		pm.body_case = RINGKV__PAXOS__PAXOS_MESSAGE__BODY_PROMISE;
		pm.promise = &prom;
		break;
	case PAXOS_MSG_PROPOSE:
		prop.key = enc_key(m->key, m->klen);
		prop.req = m->req;
		prop.proposal = enc_prop(&e, &m->proposal);
		pm.body_case = RINGKV__PAXOS__PAXOS_MESSAGE__BODY_PROPOSE;
		pm.propose = &prop;
		break;
	case PAXOS_MSG_ACCEPTED:
		acc.key = enc_key(m->key, m->klen);
		acc.req = m->req;
		acc.ballot = enc_ts(&e, m->ballot);
		acc.ok = m->ok != 0;
		acc.promised = enc_ts(&e, m->promised);
		pm.body_case = RINGKV__PAXOS__PAXOS_MESSAGE__BODY_ACCEPTED;
		pm.accepted = &acc;
		break;
	case PAXOS_MSG_COMMIT:
		com.key = enc_key(m->key, m->klen);
		com.req = m->req;
		com.proposal = enc_prop(&e, &m->proposal);
		pm.body_case = RINGKV__PAXOS__PAXOS_MESSAGE__BODY_COMMIT;
		pm.commit = &com;
		break;
	case PAXOS_MSG_COMMITTED:
		comd.key = enc_key(m->key, m->klen);
		comd.req = m->req;
		comd.ballot = enc_ts(&e, m->ballot);
		pm.body_case = RINGKV__PAXOS__PAXOS_MESSAGE__BODY_COMMITTED;
		pm.committed = &comd;
		break;
	}
	return pack_with_crc(&pm.base, out);
}

void paxos_wire_release(void *owner)
{
	if (owner)
		protobuf_c_message_free_unpacked(owner, NULL);
}

static rk_ts dec_ts(const Ringkv__Paxos__Ts *w)
{
	rk_ts t = {0, 0};
	if (w) {
		t.hlc = w->hlc;
		t.node = w->node;
	}
	return t;
}

/* Returns 0 when w is no well-formed value. */
static int dec_val(const Ringkv__Paxos__Value *w, struct paxos_value *v)
{
	memset(v, 0, sizeof(*v));
	if (!w)
		return 1;
	if (!w->present)
		return w->data.len == 0; /* absent carries no bytes */
	v->present = 1;
	v->len = w->data.len;
	v->data = w->data.len ? w->data.data : NULL;
	return 1;
}

static int dec_prop(const Ringkv__Paxos__Proposal *w, struct paxos_proposal *p)
{
	memset(p, 0, sizeof(*p));
	if (!w)
		return 1;
	p->ballot = dec_ts(w->ballot);
	p->origin = dec_ts(w->origin);
	p->base = dec_ts(w->base_commit);
	/* A proposal that is sent is a real one (the "none" proposal is
	 * sent as a missing field). */
	return dec_val(w->value, &p->value) && !rk_ts_is_zero(p->ballot);
}

static void dec_key(const ProtobufCBinaryData *k, struct paxos_msg *m)
{
	m->klen = k->len;
	m->key = k->len ? k->data : NULL;
}

int paxos_wire_decode(const uint8_t *bytes, size_t len, struct paxos_msg *m,
		      void **owner)
{
	uint32_t crc = 0;
	int ok = 1;
	memset(m, 0, sizeof(*m));
	*owner = NULL;
	Ringkv__Paxos__PaxosMessage *pm =
	    (Ringkv__Paxos__PaxosMessage *)unpack_with_crc(
		&ringkv__paxos__paxos_message__descriptor, bytes, len, &crc);
	if (!pm)
		return RK_EPROTOCOL;
	if (pm->version != PAXOS_WIRE_VERSION || pm->crc32c != crc)
		goto fail;
	switch (pm->body_case) {
	case RINGKV__PAXOS__PAXOS_MESSAGE__BODY_PREPARE:
		m->type = PAXOS_MSG_PREPARE;
		dec_key(&pm->prepare->key, m);
		m->req = pm->prepare->req;
		m->ballot = dec_ts(pm->prepare->ballot);
		break;
	case RINGKV__PAXOS__PAXOS_MESSAGE__BODY_PROMISE: {
		const Ringkv__Paxos__Promise *w = pm->promise;
		m->type = PAXOS_MSG_PROMISE;
		dec_key(&w->key, m);
		m->req = w->req;
		m->ballot = dec_ts(w->ballot);
		m->ok = w->ok != 0;
		m->promised = dec_ts(w->promised);
		ok = dec_prop(w->accepted, &m->accepted) &&
		     dec_val(w->current, &m->current);
		m->committed = dec_ts(w->committed);
		m->current_ts = dec_ts(w->current_ts);
		break;
	}
	case RINGKV__PAXOS__PAXOS_MESSAGE__BODY_PROPOSE:
		m->type = PAXOS_MSG_PROPOSE;
		dec_key(&pm->propose->key, m);
		m->req = pm->propose->req;
		ok = dec_prop(pm->propose->proposal, &m->proposal);
		m->ballot = m->proposal.ballot;
		break;
	case RINGKV__PAXOS__PAXOS_MESSAGE__BODY_ACCEPTED:
		m->type = PAXOS_MSG_ACCEPTED;
		dec_key(&pm->accepted->key, m);
		m->req = pm->accepted->req;
		m->ballot = dec_ts(pm->accepted->ballot);
		m->ok = pm->accepted->ok != 0;
		m->promised = dec_ts(pm->accepted->promised);
		break;
	case RINGKV__PAXOS__PAXOS_MESSAGE__BODY_COMMIT:
		m->type = PAXOS_MSG_COMMIT;
		dec_key(&pm->commit->key, m);
		m->req = pm->commit->req;
		ok = dec_prop(pm->commit->proposal, &m->proposal);
		m->ballot = m->proposal.ballot;
		break;
	case RINGKV__PAXOS__PAXOS_MESSAGE__BODY_COMMITTED:
		m->type = PAXOS_MSG_COMMITTED;
		dec_key(&pm->committed->key, m);
		m->req = pm->committed->req;
		m->ballot = dec_ts(pm->committed->ballot);
		break;
	default:
		goto fail;
	}
	if (!ok || !paxos_msg_valid(m))
		goto fail;
	*owner = pm;
	return 0;
fail:
	ringkv__paxos__paxos_message__free_unpacked(pm, NULL);
	memset(m, 0, sizeof(*m));
	return RK_EPROTOCOL;
}

int paxos_wire_encode_state(const uint8_t *key, size_t klen,
			    const struct paxos_acceptor_state *s,
			    struct rk_buf *out)
{
	static const struct paxos_acceptor_state none;
	struct enc e = {0};
	Ringkv__Paxos__AcceptorState w = RINGKV__PAXOS__ACCEPTOR_STATE__INIT;
	if (!s)
		s = &none;
	if (!key || klen < 1 || klen > PAXOS_KEY_MAX || !paxos_state_valid(s))
		return RK_EINVALID;
	w.version = PAXOS_WIRE_VERSION;
	w.key = enc_key(key, klen);
	w.promised = enc_ts(&e, s->promised);
	w.accepted = enc_prop(&e, &s->accepted);
	w.committed = enc_ts(&e, s->committed);
	return pack_with_crc(&w.base, out);
}

int paxos_wire_decode_state(const uint8_t *bytes, size_t len,
			    const uint8_t **key, size_t *klen,
			    struct paxos_acceptor_state *s, void **owner)
{
	uint32_t crc = 0;
	memset(s, 0, sizeof(*s));
	*key = NULL;
	*klen = 0;
	*owner = NULL;
	Ringkv__Paxos__AcceptorState *w =
	    (Ringkv__Paxos__AcceptorState *)unpack_with_crc(
		&ringkv__paxos__acceptor_state__descriptor, bytes, len, &crc);
	if (!w)
		return RK_EPROTOCOL;
	if (w->version != PAXOS_WIRE_VERSION || w->crc32c != crc ||
	    w->key.len < 1 || w->key.len > PAXOS_KEY_MAX)
		goto fail;
	s->promised = dec_ts(w->promised);
	s->committed = dec_ts(w->committed);
	if (!dec_prop(w->accepted, &s->accepted) || !paxos_state_valid(s))
		goto fail;
	*key = w->key.data;
	*klen = w->key.len;
	*owner = w;
	return 0;
fail:
	ringkv__paxos__acceptor_state__free_unpacked(w, NULL);
	memset(s, 0, sizeof(*s));
	return RK_EPROTOCOL;
}
