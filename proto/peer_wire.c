#include "peer_wire.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "frame.h"
#include "peer.pb-c.h"

struct peer_wire_msg {
	Ringkv__Peer__PeerEnvelope *env;
};

void peer_wire_msg_free(struct peer_wire_msg *m)
{
	if (!m)
		return;
	ringkv__peer__peer_envelope__free_unpacked(m->env, NULL);
	free(m);
}

static int fail(char *err, size_t errlen, int code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int fail(char *err, size_t errlen, int code, const char *fmt, ...)
{
	if (err && errlen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return code;
}

int peer_wire_encode(struct rk_buf *out, const struct peer_msg *m)
{
	Ringkv__Peer__PeerEnvelope env = RINGKV__PEER__PEER_ENVELOPE__INIT;
	Ringkv__Peer__PeerError pe = RINGKV__PEER__PEER_ERROR__INIT;
	Ringkv__Peer__GossipSync gs = RINGKV__PEER__GOSSIP_SYNC__INIT;
	Ringkv__Peer__TokensGet tg = RINGKV__PEER__TOKENS_GET__INIT;
	Ringkv__Peer__Tokens tk = RINGKV__PEER__TOKENS__INIT;
	env.request_id = m->id;
	switch (m->op) {
	case PEER_OP_ERROR:
		env.body_case = RINGKV__PEER__PEER_ENVELOPE__BODY_ERROR;
		env.error = &pe;
		pe.status = (uint32_t)(-m->status);
		if (m->error)
			pe.message = (char *)m->error;
		break;
	case PEER_OP_GOSSIP_SYNC:
	case PEER_OP_GOSSIP_SYNC_REPLY:
		env.body_case = m->op == PEER_OP_GOSSIP_SYNC
				? RINGKV__PEER__PEER_ENVELOPE__BODY_GOSSIP_SYNC
				: RINGKV__PEER__PEER_ENVELOPE__BODY_GOSSIP_SYNC_REPLY;
		if (m->op == PEER_OP_GOSSIP_SYNC)
			env.gossip_sync = &gs;
		else
			env.gossip_sync_reply = &gs;
		gs.packet.data = (uint8_t *)m->payload.p;
		gs.packet.len = m->payload.n;
		break;
	case PEER_OP_TOKENS_GET:
		env.body_case = RINGKV__PEER__PEER_ENVELOPE__BODY_TOKENS_GET;
		env.tokens_get = &tg;
		tg.node_id = m->node_id;
		break;
	case PEER_OP_TOKENS:
		env.body_case = RINGKV__PEER__PEER_ENVELOPE__BODY_TOKENS;
		env.tokens = &tk;
		tk.node_id = m->node_id;
		tk.weight = m->weight;
		tk.tokens = (uint64_t *)m->tokens;
		tk.n_tokens = m->n_tokens;
		break;
	case PEER_OP_NONE:
	default:
		return RK_EINVALID;
	}
	size_t n = ringkv__peer__peer_envelope__get_packed_size(&env);
	if (n > UINT32_MAX)
		return RK_ENOMEM;
	int rc = rk_buf_reserve(out, RK_FRAME_HDR + n);
	if (rc)
		return rc;
	uint8_t *p = out->data + out->len;
	rk_frame_header(p, (uint32_t)n);
	ringkv__peer__peer_envelope__pack(&env, p + RK_FRAME_HDR);
	out->len += RK_FRAME_HDR + n;
	return 0;
}

int peer_wire_decode(const uint8_t *body, size_t len, size_t max_payload,
		     struct peer_msg *m, struct peer_wire_msg **owner,
		     char *err, size_t errlen)
{
	memset(m, 0, sizeof(*m));
	*owner = NULL;
	if (len == 0)
		return fail(err, errlen, RK_EBAD_REQUEST, "zero-length frame");
	Ringkv__Peer__PeerEnvelope *e =
		ringkv__peer__peer_envelope__unpack(NULL, len, body);
	if (!e)
		return fail(err, errlen, RK_EBAD_REQUEST,
			    "malformed peer envelope");
	m->id = e->request_id;
	int rc = 0;
	switch (e->body_case) {
	case RINGKV__PEER__PEER_ENVELOPE__BODY_ERROR:
		m->op = PEER_OP_ERROR;
		m->status = -(int)e->error->status;
		if (!rk_err_known(m->status) || m->status == 0)
			m->status = RK_EPROTOCOL;
		m->error = e->error->message;
		break;
	case RINGKV__PEER__PEER_ENVELOPE__BODY_GOSSIP_SYNC:
	case RINGKV__PEER__PEER_ENVELOPE__BODY_GOSSIP_SYNC_REPLY: {
		const Ringkv__Peer__GossipSync *g =
			e->body_case == RINGKV__PEER__PEER_ENVELOPE__BODY_GOSSIP_SYNC
				? e->gossip_sync
				: e->gossip_sync_reply;
		m->op = e->body_case == RINGKV__PEER__PEER_ENVELOPE__BODY_GOSSIP_SYNC
				? PEER_OP_GOSSIP_SYNC
				: PEER_OP_GOSSIP_SYNC_REPLY;
		if (g->packet.len > max_payload)
			rc = fail(err, errlen, RK_EBAD_REQUEST,
				  "gossip packet of %zu bytes over %zu",
				  g->packet.len, max_payload);
		m->payload.p = g->packet.data;
		m->payload.n = g->packet.len;
		break;
	}
	case RINGKV__PEER__PEER_ENVELOPE__BODY_TOKENS_GET:
		m->op = PEER_OP_TOKENS_GET;
		m->node_id = e->tokens_get->node_id;
		break;
	case RINGKV__PEER__PEER_ENVELOPE__BODY_TOKENS:
		m->op = PEER_OP_TOKENS;
		m->node_id = e->tokens->node_id;
		m->weight = e->tokens->weight;
		m->tokens = e->tokens->tokens;
		m->n_tokens = e->tokens->n_tokens;
		if (m->n_tokens > PEER_TOKENS_MAX)
			rc = fail(err, errlen, RK_EBAD_REQUEST,
				  "%zu tokens, at most %d", m->n_tokens,
				  PEER_TOKENS_MAX);
		for (size_t i = 1; !rc && i < m->n_tokens; i++)
			if (m->tokens[i] <= m->tokens[i - 1])
				rc = fail(err, errlen, RK_EBAD_REQUEST,
					  "tokens not strictly ascending");
		break;
	case RINGKV__PEER__PEER_ENVELOPE__BODY__NOT_SET:
	default:
		rc = fail(err, errlen, RK_EUNKNOWN_COMMAND,
			  "empty or unknown peer message");
		break;
	}
	if (rc) {
		ringkv__peer__peer_envelope__free_unpacked(e, NULL);
		return rc;
	}
	struct peer_wire_msg *w = malloc(sizeof(*w));
	if (!w) {
		ringkv__peer__peer_envelope__free_unpacked(e, NULL);
		return fail(err, errlen, RK_ENOMEM, "out of memory");
	}
	w->env = e;
	*owner = w;
	return 0;
}

const char *peer_op_name(enum peer_op op)
{
	switch (op) {
	case PEER_OP_ERROR: return "error";
	case PEER_OP_GOSSIP_SYNC: return "gossip_sync";
	case PEER_OP_GOSSIP_SYNC_REPLY: return "gossip_sync_reply";
	case PEER_OP_TOKENS_GET: return "tokens_get";
	case PEER_OP_TOKENS: return "tokens";
	case PEER_OP_NONE:
	default: return "none";
	}
}
