#include "peer_wire.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "counter.h"
#include "err.h"
#include "frame.h"
#include "peer.pb-c.h"
#include "wire_fast.h"

struct peer_wire_msg {
	Ringkv__Peer__PeerEnvelope *env;
	struct repl_record *recs;   /* REPL batches, decoded */
	struct repl_range *ranges;  /* REPL requests, decoded */
};

void peer_wire_msg_free(struct peer_wire_msg *m)
{
	if (!m)
		return;
	ringkv__peer__peer_envelope__free_unpacked(m->env, NULL);
	free(m->recs);
	free(m->ranges);
	free(m);
}

static void rec_to_pb(Ringkv__Peer__Record *p, const struct repl_record *r)
{
	ringkv__peer__record__init(p);
	p->type = r->type;
	p->key.data = (uint8_t *)r->key;
	p->key.len = r->klen;
	p->has_value = r->val != NULL;
	p->value.data = (uint8_t *)r->val;
	p->value.len = r->val ? r->vlen : 0;
	p->hlc = r->ts.hlc;
	p->node = r->ts.node;
}

/* Encodes a replication message into env (arrays allocated into *mem,
 * freed by the caller after packing). */
static int repl_to_pb(Ringkv__Peer__ReplMessage *pm, const struct repl_msg *m,
		      Ringkv__Peer__Record *one, void **mem)
{
	ringkv__peer__repl_message__init(pm);
	pm->type = (uint32_t)m->type;
	pm->rid = m->rid;
	pm->flags = m->flags;
	pm->status = (uint32_t)(-m->status);
	pm->found = m->found != 0;
	if (m->type == REPL_WRITE || m->type == REPL_READ ||
	    (m->type == REPL_READ_REPLY && m->rec.key)) {
		rec_to_pb(one, &m->rec);
		pm->record = one;
	}
	pm->from_lsn = m->from_lsn;
	pm->max_bytes = m->max_bytes;
	pm->next_lsn = m->next_lsn;
	pm->end_lsn = m->end_lsn;
	pm->truncated = m->truncated != 0;
	pm->cursor = m->cursor;
	pm->done = m->done != 0;
	size_t nr = m->n_ranges, nk = m->n_recs;
	size_t bytes = nr * (sizeof(Ringkv__Peer__Range) + sizeof(void *)) +
		       nk * (sizeof(Ringkv__Peer__Record) + sizeof(void *));
	if (!bytes)
		return 0;
	uint8_t *b = malloc(bytes);
	if (!b)
		return RK_ENOMEM;
	*mem = b;
	Ringkv__Peer__Range **rp = (Ringkv__Peer__Range **)b;
	Ringkv__Peer__Record **kp = (Ringkv__Peer__Record **)(rp + nr);
	Ringkv__Peer__Range *rv = (Ringkv__Peer__Range *)(kp + nk);
	Ringkv__Peer__Record *kv = (Ringkv__Peer__Record *)(rv + nr);
	for (size_t i = 0; i < nr; i++) {
		ringkv__peer__range__init(&rv[i]);
		rv[i].start = m->ranges[i].start;
		rv[i].end = m->ranges[i].end;
		rp[i] = &rv[i];
	}
	for (size_t i = 0; i < nk; i++) {
		rec_to_pb(&kv[i], &m->recs[i]);
		kp[i] = &kv[i];
	}
	pm->n_ranges = nr;
	pm->ranges = nr ? rp : NULL;
	pm->n_records = nk;
	pm->records = nk ? kp : NULL;
	return 0;
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

/* Every peer message protobuf-c's way (wire_fast.c writes the hot ones). */
static int pack_peer(struct rk_buf *out, const struct peer_msg *m)
{
	Ringkv__Peer__PeerEnvelope env = RINGKV__PEER__PEER_ENVELOPE__INIT;
	Ringkv__Peer__PeerError pe = RINGKV__PEER__PEER_ERROR__INIT;
	Ringkv__Peer__GossipSync gs = RINGKV__PEER__GOSSIP_SYNC__INIT;
	Ringkv__Peer__TokensGet tg = RINGKV__PEER__TOKENS_GET__INIT;
	Ringkv__Peer__Tokens tk = RINGKV__PEER__TOKENS__INIT;
	Ringkv__Peer__ReplMessage rm;
	Ringkv__Peer__Record one;
	Ringkv__Peer__RemovedGet rg = RINGKV__PEER__REMOVED_GET__INIT;
	Ringkv__Peer__NodeIds ni = RINGKV__PEER__NODE_IDS__INIT;
	Ringkv__Peer__TakeOver to = RINGKV__PEER__TAKE_OVER__INIT;
	Ringkv__Peer__Ack ack = RINGKV__PEER__ACK__INIT;
	Ringkv__Peer__CounterAdd ca = RINGKV__PEER__COUNTER_ADD__INIT;
	Ringkv__Peer__CounterAddReply car =
	    RINGKV__PEER__COUNTER_ADD_REPLY__INIT;
	Ringkv__Peer__PaxosPacket px = RINGKV__PEER__PAXOS_PACKET__INIT;
	Ringkv__Peer__CasForward cf = RINGKV__PEER__CAS_FORWARD__INIT;
	Ringkv__Peer__CasReply cr = RINGKV__PEER__CAS_REPLY__INIT;
	void *mem = NULL;
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
		tk.ring_status = m->ring_status;
		break;
	case PEER_OP_REMOVED_GET:
		env.body_case = RINGKV__PEER__PEER_ENVELOPE__BODY_REMOVED_GET;
		env.removed_get = &rg;
		break;
	case PEER_OP_REMOVED:
		env.body_case = RINGKV__PEER__PEER_ENVELOPE__BODY_REMOVED;
		env.removed = &ni;
		ni.ids = (uint64_t *)m->ids;
		ni.n_ids = m->n_ids;
		break;
	case PEER_OP_TAKE_OVER:
		env.body_case = RINGKV__PEER__PEER_ENVELOPE__BODY_TAKE_OVER;
		env.take_over = &to;
		to.node_id = m->node_id;
		to.from_leaving = m->from_leaving != 0;
		break;
	case PEER_OP_ACK:
		env.body_case = RINGKV__PEER__PEER_ENVELOPE__BODY_ACK;
		env.ack = &ack;
		break;
	case PEER_OP_REPL:
		if (m->repl.type == REPL_COUNTER_ADD) {
			env.body_case =
			    RINGKV__PEER__PEER_ENVELOPE__BODY_COUNTER_ADD;
			env.counter_add = &ca;
			ca.rid = m->repl.rid;
			ca.key.data = (uint8_t *)m->repl.rec.key;
			ca.key.len = m->repl.rec.klen;
			ca.delta = m->repl.delta;
			ca.op_id.data = (uint8_t *)m->repl.op.b;
			ca.op_id.len = CRDT_OPID_LEN;
			ca.consistency = m->repl.cl;
			break;
		}
		if (m->repl.type == REPL_COUNTER_ADD_REPLY) {
			env.body_case =
			    RINGKV__PEER__PEER_ENVELOPE__BODY_COUNTER_ADD_REPLY;
			env.counter_add_reply = &car;
			car.rid = m->repl.rid;
			car.status = (uint32_t)(-m->repl.status);
			if (m->repl.detail)
				car.error = (char *)m->repl.detail;
			car.maybe_applied = m->repl.maybe_applied != 0;
			car.duplicate = m->repl.duplicate != 0;
			car.value = m->repl.value;
			break;
		}
		env.body_case = RINGKV__PEER__PEER_ENVELOPE__BODY_REPL;
		env.repl = &rm;
		if (repl_to_pb(&rm, &m->repl, &one, &mem))
			return RK_ENOMEM;
		break;
	case PEER_OP_PAXOS:
		env.body_case = RINGKV__PEER__PEER_ENVELOPE__BODY_PAXOS;
		env.paxos = &px;
		px.message.data = (uint8_t *)m->payload.p;
		px.message.len = m->payload.n;
		break;
	case PEER_OP_CAS:
		env.body_case = RINGKV__PEER__PEER_ENVELOPE__BODY_CAS;
		env.cas = &cf;
		cf.op = (uint32_t)m->cas.op;
		cf.key.data = (uint8_t *)m->cas.key.p;
		cf.key.len = m->cas.key.n;
		cf.expect_absent = m->cas.expect_absent != 0;
		cf.expected.data = (uint8_t *)m->cas.expected.p;
		cf.expected.len = m->cas.expected.n;
		cf.delete_ = m->cas.del != 0;
		cf.value.data = (uint8_t *)m->cas.value.p;
		cf.value.len = m->cas.value.n;
		cf.timeout_ms = m->cas.timeout_ms;
		break;
	case PEER_OP_CAS_REPLY:
		env.body_case = RINGKV__PEER__PEER_ENVELOPE__BODY_CAS_REPLY;
		env.cas_reply = &cr;
		cr.status = (uint32_t)(-m->status);
		if (m->error)
			cr.error = (char *)m->error;
		cr.applied = m->cas.applied != 0;
		cr.exists = m->cas.exists != 0;
		cr.value.data = (uint8_t *)m->cas.value.p;
		cr.value.len = m->cas.value.n;
		cr.hlc = m->cas.ts.hlc;
		cr.node = m->cas.ts.node;
		break;
	case PEER_OP_NONE:
	default:
		return RK_EINVALID;
	}
	size_t n = ringkv__peer__peer_envelope__get_packed_size(&env);
	int rc = n > UINT32_MAX ? RK_ENOMEM
				: rk_buf_reserve(out, RK_FRAME_HDR + n);
	if (rc == 0) {
		uint8_t *p = out->data + out->len;
		rk_frame_header(p, (uint32_t)n);
		ringkv__peer__peer_envelope__pack(&env, p + RK_FRAME_HDR);
		out->len += RK_FRAME_HDR + n;
	}
	free(mem);
	return rc;
}

int peer_wire_encode(struct rk_buf *out, const struct peer_msg *m)
{
	int rc = wire_fast_write_peer(out, m);
	return rc == 1 ? 0 : rc < 0 ? rc : pack_peer(out, m);
}

/* Validates a record and points r at its bytes. */
static int rec_from_pb(struct repl_record *r, const Ringkv__Peer__Record *p,
		       const struct peer_wire_limits *lim, int need_value,
		       char *err, size_t errlen)
{
	if (p->type != REPL_REC_VALUE && p->type != REPL_REC_TOMBSTONE &&
	    p->type != REPL_REC_COUNTER)
		return fail(err, errlen, RK_EBAD_REQUEST,
			    "record type %u", p->type);
	if (p->type == REPL_REC_COUNTER) {
		/* Always with its bytes (digests too), a state or a delta;
		 * their CRC is checked where they are merged. */
		int form = counter_form(p->value.data, p->value.len);
		if (!p->has_value ||
		    (form != COUNTER_FORM_STATE &&
		     form != COUNTER_FORM_DELTA) ||
		    p->value.len >
			CRDT_STATE_FIXED +
			    (size_t)CRDT_ENTRIES_HARD_MAX * CRDT_ENTRY_SIZE)
			return fail(err, errlen, RK_EBAD_REQUEST,
				    "a counter record without a counter "
				    "state or delta");
		if (p->key.len == 0 || p->key.len > lim->max_key ||
		    p->key.len > 65535)
			return fail(err, errlen, RK_EBAD_REQUEST,
				    "record key of %zu bytes", p->key.len);
		r->type = REPL_REC_COUNTER;
		r->key = p->key.data;
		r->klen = p->key.len;
		r->val = p->value.data;
		r->vlen = p->value.len;
		r->ts.hlc = p->hlc;
		r->ts.node = p->node;
		return 0;
	}
	if (p->key.len == 0 || p->key.len > lim->max_key ||
	    p->key.len > 65535)
		return fail(err, errlen, RK_EBAD_REQUEST,
			    "record key of %zu bytes", p->key.len);
	if (p->value.len > lim->max_value)
		return fail(err, errlen, RK_EBAD_REQUEST,
			    "record value of %zu bytes", p->value.len);
	if (p->type == REPL_REC_TOMBSTONE && p->value.len)
		return fail(err, errlen, RK_EBAD_REQUEST,
			    "a tombstone with a value");
	if (need_value && p->type == REPL_REC_VALUE && !p->has_value)
		return fail(err, errlen, RK_EBAD_REQUEST,
			    "a record without its value");
	r->type = (uint8_t)p->type;
	r->key = p->key.data;
	r->klen = p->key.len;
	r->val = p->has_value || p->type == REPL_REC_VALUE
			 ? (p->value.data ? p->value.data : (const uint8_t *)"")
			 : NULL;
	if (!p->has_value && !need_value)
		r->val = NULL;
	r->vlen = r->val ? p->value.len : 0;
	r->ts.hlc = p->hlc;
	r->ts.node = p->node;
	return 0;
}

/* Validates a replication message into m (arrays into w). */
static int repl_from_pb(struct repl_msg *m, const Ringkv__Peer__ReplMessage *p,
			const struct peer_wire_limits *lim,
			struct peer_wire_msg *w, char *err, size_t errlen)
{
	memset(m, 0, sizeof(*m));
	if (p->type < REPL_WRITE || p->type > REPL_STREAM_BATCH)
		return fail(err, errlen, RK_EUNKNOWN_COMMAND,
			    "replication message type %u", p->type);
	m->type = (enum repl_msg_type)p->type;
	m->rid = p->rid;
	m->flags = p->flags;
	m->status = -(int)p->status;
	if (m->status && !rk_err_known(m->status))
		m->status = RK_EPROTOCOL;
	m->found = p->found;
	m->from_lsn = p->from_lsn;
	m->max_bytes = p->max_bytes;
	m->next_lsn = p->next_lsn;
	m->end_lsn = p->end_lsn;
	m->truncated = p->truncated;
	m->cursor = p->cursor;
	m->done = p->done;
	int rc;
	int digest = (p->flags & REPL_F_DIGEST) != 0;
	switch (m->type) {
	case REPL_WRITE:
	case REPL_READ:
		if (!p->record)
			return fail(err, errlen, RK_EBAD_REQUEST,
				    "replication %s without a record",
				    m->type == REPL_WRITE ? "write" : "read");
		if (m->type == REPL_READ) {
			if (p->record->key.len == 0 ||
			    p->record->key.len > lim->max_key)
				return fail(err, errlen, RK_EBAD_REQUEST,
					    "read key of %zu bytes",
					    p->record->key.len);
			m->rec.key = p->record->key.data;
			m->rec.klen = p->record->key.len;
			return 0;
		}
		return rec_from_pb(&m->rec, p->record, lim, 1, err, errlen);
	case REPL_READ_REPLY:
		if (m->found && !p->record)
			return fail(err, errlen, RK_EBAD_REQUEST,
				    "read reply without its record");
		if (m->found)
			return rec_from_pb(&m->rec, p->record, lim, 1, err,
					   errlen);
		return 0;
	case REPL_WRITE_ACK:
		return 0;
	case REPL_COUNTER_ADD:
	case REPL_COUNTER_ADD_REPLY:
		break; /* their own envelope bodies, never inside ReplMessage */
	case REPL_LOG_READ:
	case REPL_STREAM_READ:
		if (p->n_ranges == 0 || p->n_ranges > REPL_MAX_RANGES)
			return fail(err, errlen, RK_EBAD_REQUEST,
				    "%zu ranges", p->n_ranges);
		w->ranges = malloc(p->n_ranges * sizeof(*w->ranges));
		if (!w->ranges)
			return fail(err, errlen, RK_ENOMEM, "out of memory");
		for (size_t i = 0; i < p->n_ranges; i++) {
			w->ranges[i].start = p->ranges[i]->start;
			w->ranges[i].end = p->ranges[i]->end;
		}
		m->ranges = w->ranges;
		m->n_ranges = p->n_ranges;
		return 0;
	case REPL_LOG_BATCH:
	case REPL_STREAM_BATCH:
		if (p->n_records > REPL_MAX_BATCH_RECORDS)
			return fail(err, errlen, RK_EBAD_REQUEST,
				    "%zu records in a batch", p->n_records);
		if (p->n_records) {
			w->recs = malloc(p->n_records * sizeof(*w->recs));
			if (!w->recs)
				return fail(err, errlen, RK_ENOMEM,
					    "out of memory");
		}
		for (size_t i = 0; i < p->n_records; i++)
			if ((rc = rec_from_pb(&w->recs[i], p->records[i], lim,
					      !digest, err, errlen)))
				return rc;
		m->recs = w->recs;
		m->n_recs = p->n_records;
		return 0;
	}
	return 0;
}

/* Validates a forwarded compare-and-set. */
static int cas_from_pb(struct peer_cas *m, const Ringkv__Peer__CasForward *p,
		       const struct peer_wire_limits *lim, char *err,
		       size_t errlen)
{
	if (p->op < PEER_CAS_CAS || p->op > PEER_CAS_WRITE)
		return fail(err, errlen, RK_EBAD_REQUEST,
			    "forwarded CAS operation %u", p->op);
	if (p->key.len == 0 || p->key.len > lim->max_key)
		return fail(err, errlen, RK_EBAD_REQUEST,
			    "forwarded CAS key of %zu bytes", p->key.len);
	if (p->expected.len > lim->max_value || p->value.len > lim->max_value)
		return fail(err, errlen, RK_EBAD_REQUEST,
			    "forwarded CAS value of %zu bytes",
			    p->expected.len > p->value.len ? p->expected.len
							   : p->value.len);
	if ((p->expect_absent && p->expected.len) ||
	    (p->delete_ && p->value.len))
		return fail(err, errlen, RK_EBAD_REQUEST,
			    "forwarded CAS with contradicting fields");
	if (p->timeout_ms == 0)
		return fail(err, errlen, RK_EBAD_REQUEST,
			    "forwarded CAS without a deadline");
	m->op = (enum peer_cas_op)p->op;
	m->key = (struct rk_bytes){p->key.data, p->key.len};
	m->expect_absent = p->expect_absent;
	m->expected = (struct rk_bytes){p->expected.data, p->expected.len};
	m->del = p->delete_;
	m->value = (struct rk_bytes){p->value.data, p->value.len};
	m->timeout_ms = p->timeout_ms;
	return 0;
}

int peer_wire_decode(const uint8_t *body, size_t len,
		     const struct peer_wire_limits *lim, struct peer_msg *m,
		     struct peer_wire_msg **owner, char *err, size_t errlen)
{
	size_t max_payload = lim->max_payload;
	memset(m, 0, sizeof(*m));
	*owner = NULL;
	if (len == 0)
		return fail(err, errlen, RK_EBAD_REQUEST, "zero-length frame");
	struct wire_fast_peer f;
	if (wire_fast_read_peer(body, len, &f)) {
		/* Borrows from body; without ranges or records, repl_from_pb
		 * allocates nothing into w (wire_fast.c). */
		struct peer_wire_msg none = {0};
		m->id = f.env.request_id;
		m->op = PEER_OP_REPL;
		return repl_from_pb(&m->repl, &f.repl, lim, &none, err, errlen);
	}
	Ringkv__Peer__PeerEnvelope *e =
		ringkv__peer__peer_envelope__unpack(NULL, len, body);
	if (!e)
		return fail(err, errlen, RK_EBAD_REQUEST,
			    "malformed peer envelope");
	m->id = e->request_id;
	int rc = 0;
	struct peer_wire_msg *w = calloc(1, sizeof(*w));
	if (!w) {
		ringkv__peer__peer_envelope__free_unpacked(e, NULL);
		return fail(err, errlen, RK_ENOMEM, "out of memory");
	}
	w->env = e;
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
		m->ring_status = e->tokens->ring_status;
		if (m->n_tokens > PEER_TOKENS_MAX)
			rc = fail(err, errlen, RK_EBAD_REQUEST,
				  "%zu tokens, at most %d", m->n_tokens,
				  PEER_TOKENS_MAX);
		for (size_t i = 1; !rc && i < m->n_tokens; i++)
			if (m->tokens[i] <= m->tokens[i - 1])
				rc = fail(err, errlen, RK_EBAD_REQUEST,
					  "tokens not strictly ascending");
		break;
	case RINGKV__PEER__PEER_ENVELOPE__BODY_REMOVED_GET:
		m->op = PEER_OP_REMOVED_GET;
		break;
	case RINGKV__PEER__PEER_ENVELOPE__BODY_REMOVED:
		m->op = PEER_OP_REMOVED;
		m->ids = e->removed->ids;
		m->n_ids = e->removed->n_ids;
		if (m->n_ids > PEER_IDS_MAX)
			rc = fail(err, errlen, RK_EBAD_REQUEST, "%zu ids",
				  m->n_ids);
		break;
	case RINGKV__PEER__PEER_ENVELOPE__BODY_TAKE_OVER:
		m->op = PEER_OP_TAKE_OVER;
		m->node_id = e->take_over->node_id;
		m->from_leaving = e->take_over->from_leaving;
		break;
	case RINGKV__PEER__PEER_ENVELOPE__BODY_ACK:
		m->op = PEER_OP_ACK;
		break;
	case RINGKV__PEER__PEER_ENVELOPE__BODY_REPL:
		m->op = PEER_OP_REPL;
		rc = repl_from_pb(&m->repl, e->repl, lim, w, err, errlen);
		break;
	case RINGKV__PEER__PEER_ENVELOPE__BODY_COUNTER_ADD: {
		const Ringkv__Peer__CounterAdd *a = e->counter_add;
		m->op = PEER_OP_REPL;
		m->repl.type = REPL_COUNTER_ADD;
		m->repl.rid = a->rid;
		if (a->key.len == 0 || a->key.len > lim->max_key ||
		    a->key.len > 65535)
			rc = fail(err, errlen, RK_EBAD_REQUEST,
				  "counter add key of %zu bytes", a->key.len);
		else if (a->op_id.len != CRDT_OPID_LEN)
			rc = fail(err, errlen, RK_EBAD_REQUEST,
				  "counter add op id of %zu bytes, not %d",
				  a->op_id.len, CRDT_OPID_LEN);
		else if (a->consistency < 1 || a->consistency > 3)
			rc = fail(err, errlen, RK_EBAD_REQUEST,
				  "counter add consistency %u", a->consistency);
		if (rc)
			break;
		m->repl.rec.key = a->key.data;
		m->repl.rec.klen = a->key.len;
		m->repl.delta = a->delta;
		memcpy(m->repl.op.b, a->op_id.data, CRDT_OPID_LEN);
		m->repl.cl = a->consistency;
		break;
	}
	case RINGKV__PEER__PEER_ENVELOPE__BODY_COUNTER_ADD_REPLY: {
		const Ringkv__Peer__CounterAddReply *a = e->counter_add_reply;
		m->op = PEER_OP_REPL;
		m->repl.type = REPL_COUNTER_ADD_REPLY;
		m->repl.rid = a->rid;
		m->repl.status = -(int)a->status;
		if (m->repl.status && !rk_err_known(m->repl.status))
			m->repl.status = RK_EPROTOCOL;
		m->repl.detail = a->error && *a->error ? a->error : NULL;
		m->repl.maybe_applied = a->maybe_applied;
		m->repl.duplicate = a->duplicate;
		m->repl.value = a->value;
		break;
	}
	case RINGKV__PEER__PEER_ENVELOPE__BODY_PAXOS:
		/* The bytes are checked by paxos_wire_decode (CRC and all). */
		m->op = PEER_OP_PAXOS;
		m->payload.p = e->paxos->message.data;
		m->payload.n = e->paxos->message.len;
		if (m->payload.n == 0 || m->payload.n > max_payload)
			rc = fail(err, errlen, RK_EBAD_REQUEST,
				  "paxos packet of %zu bytes", m->payload.n);
		break;
	case RINGKV__PEER__PEER_ENVELOPE__BODY_CAS:
		m->op = PEER_OP_CAS;
		rc = cas_from_pb(&m->cas, e->cas, lim, err, errlen);
		break;
	case RINGKV__PEER__PEER_ENVELOPE__BODY_CAS_REPLY: {
		const Ringkv__Peer__CasReply *r = e->cas_reply;
		m->op = PEER_OP_CAS_REPLY;
		m->status = -(int)r->status;
		if (!rk_err_known(m->status))
			m->status = RK_EPROTOCOL;
		m->error = r->error && *r->error ? r->error : NULL;
		m->cas.applied = r->applied;
		m->cas.exists = r->exists;
		m->cas.value = (struct rk_bytes){r->value.data, r->value.len};
		m->cas.ts = (rk_ts){r->hlc, r->node};
		if (r->value.len > lim->max_value ||
		    (!r->exists && r->value.len))
			rc = fail(err, errlen, RK_EBAD_REQUEST,
				  "CAS reply with a bad value");
		break;
	}
	case RINGKV__PEER__PEER_ENVELOPE__BODY__NOT_SET:
	default:
		rc = fail(err, errlen, RK_EUNKNOWN_COMMAND,
			  "empty or unknown peer message");
		break;
	}
	if (rc) {
		peer_wire_msg_free(w);
		return rc;
	}
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
	case PEER_OP_REPL: return "repl";
	case PEER_OP_REMOVED_GET: return "removed_get";
	case PEER_OP_REMOVED: return "removed";
	case PEER_OP_TAKE_OVER: return "take_over";
	case PEER_OP_ACK: return "ack";
	case PEER_OP_PAXOS: return "paxos";
	case PEER_OP_CAS: return "cas";
	case PEER_OP_CAS_REPLY: return "cas_reply";
	case PEER_OP_NONE:
	default: return "none";
	}
}
