#include "wire.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "err.h"
#include "frame.h"
#include "ringkv.pb-c.h"
#include "wire_fast.h"

struct rk_wire_msg {
	Ringkv__Envelope *env;
};

void rk_wire_msg_free(struct rk_wire_msg *m)
{
	if (!m)
		return;
	ringkv__envelope__free_unpacked(m->env, NULL);
	free(m);
}

static struct rk_wire_msg *msg_wrap(Ringkv__Envelope *env)
{
	struct rk_wire_msg *m = malloc(sizeof(*m));
	if (!m) {
		ringkv__envelope__free_unpacked(env, NULL);
		return NULL;
	}
	m->env = env;
	return m;
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

static int check_consistency(int v, char *err, size_t errlen)
{
	if (v < RK_CL_DEFAULT || v > RK_CL_SERIAL)
		return fail(err, errlen, RK_EBAD_REQUEST,
			    "unknown consistency level %d", v);
	return 0;
}

static int check_key(const ProtobufCBinaryData *k,
		     const struct rk_wire_limits *lim, char *err,
		     size_t errlen)
{
	if (k->len == 0)
		return fail(err, errlen, RK_EEMPTY_KEY, "key is empty");
	if (k->len > lim->max_key)
		return fail(err, errlen, RK_EKEY_TOO_LARGE,
			    "key is %zu bytes, limit is %u", k->len,
			    lim->max_key);
	return 0;
}

static struct rk_bytes bytes_of(const ProtobufCBinaryData *d)
{
	return (struct rk_bytes){.p = d->data, .n = d->len};
}

static int check_value(const ProtobufCBinaryData *v, const char *what,
		       const struct rk_wire_limits *lim, char *err,
		       size_t errlen)
{
	if (v->len > lim->max_value)
		return fail(err, errlen, RK_EVALUE_TOO_LARGE,
			    "%s is %zu bytes, limit is %u", what, v->len,
			    lim->max_value);
	return 0;
}

/* A compare-and-set, brought to one form: condition (expect_absent or
 * expected) and write (cas_delete or value).  Fields a kind does not use
 * must be empty, so a client that meant something else hears so. */
static int cas_from(const Ringkv__Cas *c, const struct rk_wire_limits *lim,
		    struct rk_request *req, char *err, size_t errlen)
{
	int rc;
	req->op = RK_OP_CAS;
	if ((rc = check_key(&c->key, lim, err, errlen)) ||
	    (rc = check_value(&c->expected, "expected value", lim, err,
			      errlen)) ||
	    (rc = check_value(&c->value, "value", lim, err, errlen)))
		return rc;
	req->key = bytes_of(&c->key);
	req->expected = bytes_of(&c->expected);
	req->value = bytes_of(&c->value);
	req->expect_absent = c->expect_absent;
	req->cas_delete = c->delete_;
	switch (c->kind) {
	case RINGKV__CAS__KIND__CAS:
		req->cas_kind = RK_CAS;
		if (c->expect_absent && c->expected.len)
			return fail(err, errlen, RK_EBAD_REQUEST,
				    "cas: expect_absent with an expected "
				    "value");
		if (c->delete_ && c->value.len)
			return fail(err, errlen, RK_EBAD_REQUEST,
				    "cas: delete with a value");
		return 0;
	case RINGKV__CAS__KIND__PUT_IF_ABSENT:
		req->cas_kind = RK_CAS_PUT_IF_ABSENT;
		if (c->expected.len || c->delete_)
			return fail(err, errlen, RK_EBAD_REQUEST,
				    "put_if_absent takes a value only");
		req->expect_absent = 1;
		return 0;
	case RINGKV__CAS__KIND__DELETE_IF:
		req->cas_kind = RK_CAS_DELETE_IF;
		if (c->expect_absent || c->value.len)
			return fail(err, errlen, RK_EBAD_REQUEST,
				    "delete_if takes an expected value only");
		req->cas_delete = 1;
		return 0;
	default:
		return fail(err, errlen, RK_EBAD_REQUEST,
			    "unknown compare-and-set kind %d", (int)c->kind);
	}
}

/* Fills req from a decoded envelope, validating what handlers read. */
static int request_from(const Ringkv__Envelope *e,
			const struct rk_wire_limits *lim,
			struct rk_request *req, char *err, size_t errlen)
{
	int rc;
	switch (e->body_case) {
	case RINGKV__ENVELOPE__BODY_PING:
		if (e->ping->payload.len > lim->max_ping)
			return fail(err, errlen, RK_EBAD_REQUEST,
				    "ping payload is %zu bytes, limit is %u",
				    e->ping->payload.len, lim->max_ping);
		req->op = RK_OP_PING;
		req->value = bytes_of(&e->ping->payload);
		return 0;
	case RINGKV__ENVELOPE__BODY_GET:
		req->op = RK_OP_GET;
		if ((rc = check_key(&e->get->key, lim, err, errlen)) ||
		    (rc = check_consistency(e->get->consistency, err, errlen)))
			return rc;
		req->key = bytes_of(&e->get->key);
		req->consistency = (enum rk_consistency)e->get->consistency;
		req->all_replies = e->get->all_replies;
		req->local = e->get->local;
		return 0;
	case RINGKV__ENVELOPE__BODY_PUT:
		req->op = RK_OP_PUT;
		if ((rc = check_key(&e->put->key, lim, err, errlen)) ||
		    (rc = check_consistency(e->put->consistency, err, errlen)))
			return rc;
		if (e->put->value.len > lim->max_value)
			return fail(err, errlen, RK_EVALUE_TOO_LARGE,
				    "value is %zu bytes, limit is %u",
				    e->put->value.len, lim->max_value);
		req->key = bytes_of(&e->put->key);
		req->value = bytes_of(&e->put->value);
		req->consistency = (enum rk_consistency)e->put->consistency;
		return 0;
	case RINGKV__ENVELOPE__BODY_DELETE:
		req->op = RK_OP_DELETE;
		if ((rc = check_key(&e->delete_->key, lim, err, errlen)) ||
		    (rc = check_consistency(e->delete_->consistency, err,
					    errlen)))
			return rc;
		req->key = bytes_of(&e->delete_->key);
		req->consistency = (enum rk_consistency)e->delete_->consistency;
		return 0;
	case RINGKV__ENVELOPE__BODY_EXISTS:
		req->op = RK_OP_EXISTS;
		if ((rc = check_key(&e->exists->key, lim, err, errlen)) ||
		    (rc = check_consistency(e->exists->consistency, err,
					    errlen)))
			return rc;
		req->key = bytes_of(&e->exists->key);
		req->consistency = (enum rk_consistency)e->exists->consistency;
		return 0;
	case RINGKV__ENVELOPE__BODY_COUNTER_ADD: {
		const Ringkv__CounterAdd *a = e->counter_add;
		req->op = RK_OP_COUNTER_ADD;
		if ((rc = check_key(&a->key, lim, err, errlen)) ||
		    (rc = check_consistency(a->consistency, err, errlen)))
			return rc;
		if ((int)a->consistency == RK_CL_SERIAL)
			return fail(err, errlen, RK_EBAD_REQUEST,
				    "counters have no SERIAL consistency");
		if (a->op_id.len != 0 && a->op_id.len != RK_OPID_LEN)
			return fail(err, errlen, RK_EBAD_REQUEST,
				    "op id is %zu bytes, not %d (or none)",
				    a->op_id.len, RK_OPID_LEN);
		if (a->op_id.len) {
			static const uint8_t zero[RK_OPID_LEN];
			if (!memcmp(a->op_id.data, zero, RK_OPID_LEN))
				return fail(err, errlen, RK_EBAD_REQUEST,
					    "op id is all zero");
		}
		req->key = bytes_of(&a->key);
		req->delta = a->delta;
		req->op_id = bytes_of(&a->op_id);
		req->consistency = (enum rk_consistency)a->consistency;
		return 0;
	}
	case RINGKV__ENVELOPE__BODY_COUNTER_GET: {
		const Ringkv__CounterGet *g = e->counter_get;
		req->op = RK_OP_COUNTER_GET;
		if ((rc = check_key(&g->key, lim, err, errlen)) ||
		    (rc = check_consistency(g->consistency, err, errlen)))
			return rc;
		if ((int)g->consistency == RK_CL_SERIAL)
			return fail(err, errlen, RK_EBAD_REQUEST,
				    "counters have no SERIAL consistency");
		req->key = bytes_of(&g->key);
		req->consistency = (enum rk_consistency)g->consistency;
		req->all_replies = g->all_replies;
		req->local = g->local;
		return 0;
	}
	case RINGKV__ENVELOPE__BODY_COUNTER_DELETE: {
		const Ringkv__CounterDelete *d = e->counter_delete;
		req->op = RK_OP_COUNTER_DELETE;
		if ((rc = check_key(&d->key, lim, err, errlen)) ||
		    (rc = check_consistency(d->consistency, err, errlen)))
			return rc;
		if ((int)d->consistency == RK_CL_SERIAL)
			return fail(err, errlen, RK_EBAD_REQUEST,
				    "counters have no SERIAL consistency");
		req->key = bytes_of(&d->key);
		req->consistency = (enum rk_consistency)d->consistency;
		return 0;
	}
	case RINGKV__ENVELOPE__BODY_CAS:
		return cas_from(e->cas, lim, req, err, errlen);
	case RINGKV__ENVELOPE__BODY_CLUSTER_INFO:
		req->op = RK_OP_CLUSTER_INFO;
		return 0;
	case RINGKV__ENVELOPE__BODY_RING_INFO:
		req->op = RK_OP_RING_INFO;
		return 0;
	case RINGKV__ENVELOPE__BODY_NODE_STATS:
		req->op = RK_OP_NODE_STATS;
		return 0;
	case RINGKV__ENVELOPE__BODY_DECOMMISSION:
		req->op = RK_OP_DECOMMISSION;
		return 0;
	case RINGKV__ENVELOPE__BODY_REMOVE_NODE:
		req->op = RK_OP_REMOVE_NODE;
		if (e->remove_node->node_id == 0)
			return fail(err, errlen, RK_EBAD_REQUEST,
				    "remove node: node id 0");
		req->node_id = e->remove_node->node_id;
		return 0;
	case RINGKV__ENVELOPE__BODY_HELLO:
		req->op = RK_OP_HELLO;
		if (e->hello->role != RINGKV__HELLO__ROLE__CLIENT &&
		    e->hello->role != RINGKV__HELLO__ROLE__PEER)
			return fail(err, errlen, RK_EBAD_REQUEST,
				    "unknown hello role %d", e->hello->role);
		if (strlen(e->hello->cluster_name) > 255)
			return fail(err, errlen, RK_EBAD_REQUEST,
				    "cluster name longer than 255 bytes");
		req->role = (enum rk_role)e->hello->role;
		req->cluster_name = e->hello->cluster_name;
		req->node_id = e->hello->node_id;
		req->protocol_version = e->hello->protocol_version;
		return 0;
	case RINGKV__ENVELOPE__BODY_RESPONSE:
		return fail(err, errlen, RK_EBAD_REQUEST,
			    "a response is not a request");
	case RINGKV__ENVELOPE__BODY__NOT_SET:
	default:
		return fail(err, errlen, RK_EUNKNOWN_COMMAND,
			    "empty or unknown request type");
	}
}

int rk_wire_decode_request(const uint8_t *body, size_t len,
			   const struct rk_wire_limits *lim,
			   struct rk_request *req, struct rk_wire_msg **owner,
			   char *err, size_t errlen)
{
	memset(req, 0, sizeof(*req));
	*owner = NULL;
	if (len == 0)
		return fail(err, errlen, RK_EBAD_REQUEST, "zero-length frame");
	struct wire_fast_req f;
	if (wire_fast_read_request(body, len, &f)) {
		/* Borrows from body; nothing to own (wire_fast.c). */
		req->id = f.env.request_id;
		return request_from(&f.env, lim, req, err, errlen);
	}
	Ringkv__Envelope *e = ringkv__envelope__unpack(NULL, len, body);
	if (!e)
		return fail(err, errlen, RK_EBAD_REQUEST,
			    "malformed protobuf envelope");
	req->id = e->request_id;
	int rc = request_from(e, lim, req, err, errlen);
	if (rc) {
		ringkv__envelope__free_unpacked(e, NULL);
		return rc;
	}
	*owner = msg_wrap(e);
	if (!*owner) {
		memset(req, 0, sizeof(*req));
		return fail(err, errlen, RK_ENOMEM, "out of memory");
	}
	return 0;
}

/* Packs env into one frame at the end of out. */
static int pack_frame(struct rk_buf *out, const Ringkv__Envelope *env)
{
	size_t n = ringkv__envelope__get_packed_size(env);
	if (n > UINT32_MAX)
		return RK_ENOMEM;
	int rc = rk_buf_reserve(out, RK_FRAME_HDR + n);
	if (rc)
		return rc;
	uint8_t *p = out->data + out->len;
	rk_frame_header(p, (uint32_t)n);
	ringkv__envelope__pack(env, p + RK_FRAME_HDR);
	out->len += RK_FRAME_HDR + n;
	return 0;
}

static ProtobufCBinaryData bin(struct rk_bytes b)
{
	return (ProtobufCBinaryData){.len = b.n, .data = (uint8_t *)b.p};
}

/* Every response protobuf-c's way (wire_fast.c writes the hot ones). */
static int pack_response(struct rk_buf *out, const struct rk_response *r)
{
	Ringkv__Envelope env = RINGKV__ENVELOPE__INIT;
	Ringkv__Response resp = RINGKV__RESPONSE__INIT;
	Ringkv__Timestamp ts = RINGKV__TIMESTAMP__INIT;
	Ringkv__PingResult ping = RINGKV__PING_RESULT__INIT;
	Ringkv__GetResult get = RINGKV__GET_RESULT__INIT;
	Ringkv__WriteResult write = RINGKV__WRITE_RESULT__INIT;
	Ringkv__ExistsResult exists = RINGKV__EXISTS_RESULT__INIT;
	Ringkv__ClusterInfoResult ci = RINGKV__CLUSTER_INFO_RESULT__INIT;
	Ringkv__RingInfoResult ri = RINGKV__RING_INFO_RESULT__INIT;
	Ringkv__HelloResult hr = RINGKV__HELLO_RESULT__INIT;
	Ringkv__NodeStatsResult ns = RINGKV__NODE_STATS_RESULT__INIT;
	Ringkv__CounterResult cr = RINGKV__COUNTER_RESULT__INIT;
	Ringkv__CounterReplica *crr = NULL;
	Ringkv__CounterReplica **crr_ptrs = NULL;
	Ringkv__CasResult cas = RINGKV__CAS_RESULT__INIT;
	Ringkv__ReplicaReply *rr = NULL;
	Ringkv__ReplicaReply **rr_ptrs = NULL;
	Ringkv__Timestamp *rr_ts = NULL;
	Ringkv__NodeInfo *nodes = NULL;
	Ringkv__NodeInfo **node_ptrs = NULL;
	Ringkv__RingMember *rm = NULL;
	Ringkv__RingMember **rm_ptrs = NULL;

	env.request_id = r->id;
	env.body_case = RINGKV__ENVELOPE__BODY_RESPONSE;
	env.response = &resp;
	resp.status = (Ringkv__Status)(-r->status);
	if (r->error)
		resp.error = (char *)r->error;
	ts.hlc = r->ts.hlc;
	ts.node_id = r->ts.node;
	Ringkv__Timestamp *tsp = r->has_ts ? &ts : NULL;

	switch (r->op) {
	case RK_OP_PING:
		resp.result_case = RINGKV__RESPONSE__RESULT_PING;
		resp.ping = &ping;
		ping.payload = bin(r->value);
		ping.node_id = r->node_id;
		break;
	case RK_OP_GET:
		resp.result_case = RINGKV__RESPONSE__RESULT_GET;
		resp.get = &get;
		get.value = bin(r->value);
		get.timestamp = tsp;
		if (r->n_replies) {
			size_t n = r->n_replies;
			rr = calloc(n, sizeof(*rr));
			rr_ptrs = calloc(n, sizeof(*rr_ptrs));
			rr_ts = calloc(n, sizeof(*rr_ts));
			if (!rr || !rr_ptrs || !rr_ts) {
				free(rr);
				free(rr_ptrs);
				free(rr_ts);
				return RK_ENOMEM;
			}
			for (size_t i = 0; i < n; i++) {
				const struct rk_replica_reply *x = &r->replies[i];
				ringkv__replica_reply__init(&rr[i]);
				ringkv__timestamp__init(&rr_ts[i]);
				rr[i].node_id = x->node_id;
				rr[i].status = (Ringkv__Status)(-x->status);
				rr[i].value = bin(x->value);
				rr[i].tombstone = x->tombstone != 0;
				if (x->has_ts) {
					rr_ts[i].hlc = x->ts.hlc;
					rr_ts[i].node_id = x->ts.node;
					rr[i].timestamp = &rr_ts[i];
				}
				rr_ptrs[i] = &rr[i];
			}
			get.n_replies = n;
			get.replies = rr_ptrs;
		}
		break;
	case RK_OP_PUT:
	case RK_OP_DELETE:
		resp.result_case = RINGKV__RESPONSE__RESULT_WRITE;
		resp.write = &write;
		write.timestamp = tsp;
		break;
	case RK_OP_EXISTS:
		resp.result_case = RINGKV__RESPONSE__RESULT_EXISTS;
		resp.exists = &exists;
		exists.exists = r->exists != 0;
		exists.timestamp = tsp;
		break;
	case RK_OP_COUNTER_ADD:
	case RK_OP_COUNTER_GET:
	case RK_OP_COUNTER_DELETE:
		resp.result_case = RINGKV__RESPONSE__RESULT_COUNTER;
		resp.counter = &cr;
		cr.value = r->counter;
		cr.duplicate = r->duplicate != 0;
		cr.owner = r->owner;
		cr.timestamp = tsp;
		if (r->n_replies) {
			size_t n = r->n_replies;
			crr = calloc(n, sizeof(*crr));
			crr_ptrs = calloc(n, sizeof(*crr_ptrs));
			if (!crr || !crr_ptrs) {
				free(crr);
				free(crr_ptrs);
				return RK_ENOMEM;
			}
			for (size_t i = 0; i < n; i++) {
				ringkv__counter_replica__init(&crr[i]);
				crr[i].node_id = r->replies[i].node_id;
				crr[i].status =
				    (Ringkv__Status)(-r->replies[i].status);
				crr[i].value = r->replies[i].counter;
				crr_ptrs[i] = &crr[i];
			}
			cr.n_replies = n;
			cr.replies = crr_ptrs;
		}
		break;
	case RK_OP_CAS:
		resp.result_case = RINGKV__RESPONSE__RESULT_CAS;
		resp.cas = &cas;
		cas.applied = r->applied != 0;
		cas.exists = r->exists != 0;
		cas.value = bin(r->value);
		cas.timestamp = tsp;
		break;
	case RK_OP_CLUSTER_INFO:
		resp.result_case = RINGKV__RESPONSE__RESULT_CLUSTER_INFO;
		resp.cluster_info = &ci;
		ci.self_id = r->node_id;
		if (r->cluster_name)
			ci.cluster_name = (char *)r->cluster_name;
		if (r->version)
			ci.version = (char *)r->version;
		if (r->n_nodes) {
			nodes = calloc(r->n_nodes, sizeof(*nodes));
			node_ptrs = calloc(r->n_nodes, sizeof(*node_ptrs));
			if (!nodes || !node_ptrs) {
				free(nodes);
				free(node_ptrs);
				return RK_ENOMEM;
			}
			for (size_t i = 0; i < r->n_nodes; i++) {
				ringkv__node_info__init(&nodes[i]);
				nodes[i].node_id = r->nodes[i].node_id;
				nodes[i].client_address =
					(char *)r->nodes[i].client_addr;
				nodes[i].peer_address =
					(char *)r->nodes[i].peer_addr;
				nodes[i].state = (char *)r->nodes[i].state;
				nodes[i].incarnation = r->nodes[i].incarnation;
				nodes[i].weight = r->nodes[i].weight;
				nodes[i].tokens = r->nodes[i].n_tokens;
				node_ptrs[i] = &nodes[i];
			}
			ci.n_nodes = r->n_nodes;
			ci.nodes = node_ptrs;
		}
		break;
	case RK_OP_NODE_STATS:
		resp.result_case = RINGKV__RESPONSE__RESULT_NODE_STATS;
		resp.node_stats = &ns;
		ns.node_id = r->stats.node_id;
		ns.keys = r->stats.keys;
		ns.tombstones = r->stats.tombstones;
		ns.bytes = r->stats.bytes;
		ns.log_bytes = r->stats.log_bytes;
		ns.hints_pending = r->stats.hints_pending;
		ns.uptime_ms = r->stats.uptime_ms;
		if (r->stats.ring_status)
			ns.ring_status = (char *)r->stats.ring_status;
		break;
	case RK_OP_HELLO:
		resp.result_case = RINGKV__RESPONSE__RESULT_HELLO;
		resp.hello = &hr;
		hr.node_id = r->node_id;
		if (r->cluster_name)
			hr.cluster_name = (char *)r->cluster_name;
		hr.protocol_version = r->protocol_version;
		break;
	case RK_OP_RING_INFO:
		resp.result_case = RINGKV__RESPONSE__RESULT_RING_INFO;
		resp.ring_info = &ri;
		ri.epoch = r->ring_epoch;
		ri.checksum = r->ring_checksum;
		ri.replication_factor = r->rf;
		if (r->n_ring) {
			rm = calloc(r->n_ring, sizeof(*rm));
			rm_ptrs = calloc(r->n_ring, sizeof(*rm_ptrs));
			if (!rm || !rm_ptrs) {
				free(rm);
				free(rm_ptrs);
				return RK_ENOMEM;
			}
			for (size_t i = 0; i < r->n_ring; i++) {
				const struct rk_ring_member *m = &r->ring[i];
				ringkv__ring_member__init(&rm[i]);
				rm[i].node_id = m->node_id;
				rm[i].weight = m->weight;
				rm[i].tokens = (uint64_t *)m->tokens;
				rm[i].n_tokens = m->n_tokens;
				rm[i].client_address = (char *)m->client_addr;
				rm[i].state = (char *)m->state;
				rm_ptrs[i] = &rm[i];
			}
			ri.n_members = r->n_ring;
			ri.members = rm_ptrs;
		}
		break;
	case RK_OP_NONE:
	default:
		break;
	}
	int rc = pack_frame(out, &env);
	free(crr);
	free(crr_ptrs);
	free(nodes);
	free(node_ptrs);
	free(rm);
	free(rm_ptrs);
	free(rr);
	free(rr_ptrs);
	free(rr_ts);
	return rc;
}

int rk_wire_encode_response(struct rk_buf *out, const struct rk_response *r)
{
	int rc = wire_fast_write_response(out, r);
	return rc == 1 ? 0 : rc < 0 ? rc : pack_response(out, r);
}

int rk_wire_encode_request(struct rk_buf *out, const struct rk_request *q)
{
	Ringkv__Envelope env = RINGKV__ENVELOPE__INIT;
	Ringkv__Ping ping = RINGKV__PING__INIT;
	Ringkv__Get get = RINGKV__GET__INIT;
	Ringkv__Put put = RINGKV__PUT__INIT;
	Ringkv__Delete del = RINGKV__DELETE__INIT;
	Ringkv__Exists ex = RINGKV__EXISTS__INIT;
	Ringkv__ClusterInfo ci = RINGKV__CLUSTER_INFO__INIT;
	Ringkv__RingInfo ri = RINGKV__RING_INFO__INIT;
	Ringkv__Hello hello = RINGKV__HELLO__INIT;
	Ringkv__NodeStats nst = RINGKV__NODE_STATS__INIT;
	Ringkv__Decommission dec = RINGKV__DECOMMISSION__INIT;
	Ringkv__RemoveNode rmn = RINGKV__REMOVE_NODE__INIT;
	Ringkv__CounterAdd cadd = RINGKV__COUNTER_ADD__INIT;
	Ringkv__CounterGet cget = RINGKV__COUNTER_GET__INIT;
	Ringkv__CounterDelete cdel = RINGKV__COUNTER_DELETE__INIT;
	Ringkv__Cas cas = RINGKV__CAS__INIT;

	env.request_id = q->id;
	switch (q->op) {
	case RK_OP_PING:
		env.body_case = RINGKV__ENVELOPE__BODY_PING;
		env.ping = &ping;
		ping.payload = bin(q->value);
		break;
	case RK_OP_GET:
		env.body_case = RINGKV__ENVELOPE__BODY_GET;
		env.get = &get;
		get.key = bin(q->key);
		get.consistency = (Ringkv__Consistency)q->consistency;
		get.all_replies = q->all_replies != 0;
		get.local = q->local != 0;
		break;
	case RK_OP_PUT:
		env.body_case = RINGKV__ENVELOPE__BODY_PUT;
		env.put = &put;
		put.key = bin(q->key);
		put.value = bin(q->value);
		put.consistency = (Ringkv__Consistency)q->consistency;
		break;
	case RK_OP_DELETE:
		env.body_case = RINGKV__ENVELOPE__BODY_DELETE;
		env.delete_ = &del;
		del.key = bin(q->key);
		del.consistency = (Ringkv__Consistency)q->consistency;
		break;
	case RK_OP_EXISTS:
		env.body_case = RINGKV__ENVELOPE__BODY_EXISTS;
		env.exists = &ex;
		ex.key = bin(q->key);
		ex.consistency = (Ringkv__Consistency)q->consistency;
		break;
	case RK_OP_COUNTER_ADD:
		env.body_case = RINGKV__ENVELOPE__BODY_COUNTER_ADD;
		env.counter_add = &cadd;
		cadd.key = bin(q->key);
		cadd.delta = q->delta;
		cadd.op_id = bin(q->op_id);
		cadd.consistency = (Ringkv__Consistency)q->consistency;
		break;
	case RK_OP_COUNTER_GET:
		env.body_case = RINGKV__ENVELOPE__BODY_COUNTER_GET;
		env.counter_get = &cget;
		cget.key = bin(q->key);
		cget.consistency = (Ringkv__Consistency)q->consistency;
		cget.all_replies = q->all_replies != 0;
		cget.local = q->local != 0;
		break;
	case RK_OP_COUNTER_DELETE:
		env.body_case = RINGKV__ENVELOPE__BODY_COUNTER_DELETE;
		env.counter_delete = &cdel;
		cdel.key = bin(q->key);
		cdel.consistency = (Ringkv__Consistency)q->consistency;
		break;
	case RK_OP_CAS:
		env.body_case = RINGKV__ENVELOPE__BODY_CAS;
		env.cas = &cas;
		cas.key = bin(q->key);
		cas.kind = (Ringkv__Cas__Kind)q->cas_kind;
		/* The decoder's one form, back to each kind's fields. */
		if (q->cas_kind == RK_CAS) {
			cas.expected = bin(q->expected);
			cas.expect_absent = q->expect_absent != 0;
			cas.value = bin(q->value);
			cas.delete_ = q->cas_delete != 0;
		} else if (q->cas_kind == RK_CAS_PUT_IF_ABSENT) {
			cas.value = bin(q->value);
		} else {
			cas.expected = bin(q->expected);
		}
		break;
	case RK_OP_CLUSTER_INFO:
		env.body_case = RINGKV__ENVELOPE__BODY_CLUSTER_INFO;
		env.cluster_info = &ci;
		break;
	case RK_OP_RING_INFO:
		env.body_case = RINGKV__ENVELOPE__BODY_RING_INFO;
		env.ring_info = &ri;
		break;
	case RK_OP_NODE_STATS:
		env.body_case = RINGKV__ENVELOPE__BODY_NODE_STATS;
		env.node_stats = &nst;
		break;
	case RK_OP_DECOMMISSION:
		env.body_case = RINGKV__ENVELOPE__BODY_DECOMMISSION;
		env.decommission = &dec;
		break;
	case RK_OP_REMOVE_NODE:
		env.body_case = RINGKV__ENVELOPE__BODY_REMOVE_NODE;
		env.remove_node = &rmn;
		rmn.node_id = q->node_id;
		break;
	case RK_OP_HELLO:
		env.body_case = RINGKV__ENVELOPE__BODY_HELLO;
		env.hello = &hello;
		hello.role = (Ringkv__Hello__Role)q->role;
		if (q->cluster_name)
			hello.cluster_name = (char *)q->cluster_name;
		hello.node_id = q->node_id;
		hello.protocol_version = q->protocol_version;
		break;
	case RK_OP_NONE:
	default:
		return RK_EINVALID;
	}
	return pack_frame(out, &env);
}

static void ts_from(const Ringkv__Timestamp *t, struct rk_response *r)
{
	if (t) {
		r->ts.hlc = t->hlc;
		r->ts.node = t->node_id;
		r->has_ts = 1;
	}
}

int rk_wire_decode_response(const uint8_t *body, size_t len,
			    struct rk_response *r, struct rk_wire_msg **owner,
			    char *err, size_t errlen)
{
	memset(r, 0, sizeof(*r));
	*owner = NULL;
	Ringkv__Envelope *e = ringkv__envelope__unpack(NULL, len, body);
	if (!e)
		return fail(err, errlen, RK_EPROTOCOL,
			    "malformed protobuf envelope from node");
	if (e->body_case != RINGKV__ENVELOPE__BODY_RESPONSE) {
		ringkv__envelope__free_unpacked(e, NULL);
		return fail(err, errlen, RK_EPROTOCOL,
			    "node sent something other than a response");
	}
	const Ringkv__Response *p = e->response;
	r->id = e->request_id;
	r->status = -(int)p->status;
	if (!rk_err_known(r->status))
		r->status = RK_EPROTOCOL;
	r->error = (p->error && *p->error) ? p->error : NULL;
	/* One node_info array per message, owned by the wrapper below. */
	switch (p->result_case) {
	case RINGKV__RESPONSE__RESULT_PING:
		r->op = RK_OP_PING;
		r->value = bytes_of(&p->ping->payload);
		r->node_id = p->ping->node_id;
		break;
	case RINGKV__RESPONSE__RESULT_GET:
		r->op = RK_OP_GET;
		r->value = bytes_of(&p->get->value);
		ts_from(p->get->timestamp, r);
		break;
	case RINGKV__RESPONSE__RESULT_NODE_STATS:
		r->op = RK_OP_NODE_STATS;
		r->stats.node_id = p->node_stats->node_id;
		r->stats.keys = p->node_stats->keys;
		r->stats.tombstones = p->node_stats->tombstones;
		r->stats.bytes = p->node_stats->bytes;
		r->stats.log_bytes = p->node_stats->log_bytes;
		r->stats.hints_pending = p->node_stats->hints_pending;
		r->stats.uptime_ms = p->node_stats->uptime_ms;
		r->stats.ring_status = p->node_stats->ring_status;
		break;
	case RINGKV__RESPONSE__RESULT_WRITE:
		r->op = RK_OP_PUT;
		ts_from(p->write->timestamp, r);
		break;
	case RINGKV__RESPONSE__RESULT_EXISTS:
		r->op = RK_OP_EXISTS;
		r->exists = p->exists->exists;
		ts_from(p->exists->timestamp, r);
		break;
	case RINGKV__RESPONSE__RESULT_COUNTER:
		/* One result for the three counter requests: the caller
		 * knows which it asked by the request id. */
		r->op = RK_OP_COUNTER_GET;
		r->counter = p->counter->value;
		r->duplicate = p->counter->duplicate;
		r->owner = p->counter->owner;
		ts_from(p->counter->timestamp, r);
		break;
	case RINGKV__RESPONSE__RESULT_CAS:
		r->op = RK_OP_CAS;
		r->applied = p->cas->applied;
		r->exists = p->cas->exists;
		r->value = bytes_of(&p->cas->value);
		ts_from(p->cas->timestamp, r);
		break;
	case RINGKV__RESPONSE__RESULT_CLUSTER_INFO:
		r->op = RK_OP_CLUSTER_INFO;
		r->node_id = p->cluster_info->self_id;
		r->cluster_name = p->cluster_info->cluster_name;
		r->version = p->cluster_info->version;
		break;
	case RINGKV__RESPONSE__RESULT_HELLO:
		r->op = RK_OP_HELLO;
		r->node_id = p->hello->node_id;
		r->cluster_name = p->hello->cluster_name;
		r->protocol_version = p->hello->protocol_version;
		break;
	case RINGKV__RESPONSE__RESULT_RING_INFO:
		r->op = RK_OP_RING_INFO;
		r->ring_epoch = p->ring_info->epoch;
		r->ring_checksum = p->ring_info->checksum;
		r->rf = p->ring_info->replication_factor;
		break;
	default:
		r->op = RK_OP_NONE;
		break;
	}
	size_t extra = 0;
	if (r->op == RK_OP_GET)
		extra = sizeof(struct rk_replica_reply) * p->get->n_replies;
	else if (r->op == RK_OP_COUNTER_GET)
		extra = sizeof(struct rk_replica_reply) * p->counter->n_replies;
	else if (r->op == RK_OP_CLUSTER_INFO)
		extra = sizeof(struct rk_node_info) * p->cluster_info->n_nodes;
	else if (r->op == RK_OP_RING_INFO)
		extra = sizeof(struct rk_ring_member) * p->ring_info->n_members;
	struct rk_wire_msg *m = calloc(1, sizeof(*m) + extra);
	if (!m) {
		ringkv__envelope__free_unpacked(e, NULL);
		memset(r, 0, sizeof(*r));
		return fail(err, errlen, RK_ENOMEM, "out of memory");
	}
	m->env = e;
	if (r->op == RK_OP_CLUSTER_INFO) {
		struct rk_node_info *ni = (struct rk_node_info *)(m + 1);
		for (size_t i = 0; i < p->cluster_info->n_nodes; i++) {
			const Ringkv__NodeInfo *n = p->cluster_info->nodes[i];
			ni[i].node_id = n->node_id;
			ni[i].client_addr = n->client_address;
			ni[i].peer_addr = n->peer_address;
			ni[i].state = n->state;
			ni[i].incarnation = n->incarnation;
			ni[i].weight = n->weight;
			ni[i].n_tokens = n->tokens;
		}
		r->nodes = ni;
		r->n_nodes = p->cluster_info->n_nodes;
	} else if (r->op == RK_OP_GET && p->get->n_replies) {
		struct rk_replica_reply *rr = (struct rk_replica_reply *)(m + 1);
		for (size_t i = 0; i < p->get->n_replies; i++) {
			const Ringkv__ReplicaReply *x = p->get->replies[i];
			rr[i].node_id = x->node_id;
			rr[i].status = -(int)x->status;
			if (!rk_err_known(rr[i].status))
				rr[i].status = RK_EPROTOCOL;
			rr[i].value = bytes_of(&x->value);
			rr[i].tombstone = x->tombstone;
			if (x->timestamp) {
				rr[i].ts.hlc = x->timestamp->hlc;
				rr[i].ts.node = x->timestamp->node_id;
				rr[i].has_ts = 1;
			}
		}
		r->replies = rr;
		r->n_replies = p->get->n_replies;
	} else if (r->op == RK_OP_COUNTER_GET && p->counter->n_replies) {
		struct rk_replica_reply *rr =
		    (struct rk_replica_reply *)(m + 1);
		for (size_t i = 0; i < p->counter->n_replies; i++) {
			const Ringkv__CounterReplica *x =
			    p->counter->replies[i];
			rr[i].node_id = x->node_id;
			rr[i].status = -(int)x->status;
			if (!rk_err_known(rr[i].status))
				rr[i].status = RK_EPROTOCOL;
			rr[i].counter = x->value;
		}
		r->replies = rr;
		r->n_replies = p->counter->n_replies;
	} else if (r->op == RK_OP_RING_INFO) {
		struct rk_ring_member *rm = (struct rk_ring_member *)(m + 1);
		for (size_t i = 0; i < p->ring_info->n_members; i++) {
			const Ringkv__RingMember *x = p->ring_info->members[i];
			rm[i].node_id = x->node_id;
			rm[i].weight = x->weight;
			rm[i].tokens = x->tokens;
			rm[i].n_tokens = x->n_tokens;
			rm[i].client_addr = x->client_address;
			rm[i].state = x->state;
		}
		r->ring = rm;
		r->n_ring = p->ring_info->n_members;
	}
	*owner = m;
	return 0;
}

const char *rk_op_name(enum rk_op op)
{
	switch (op) {
	case RK_OP_PING: return "ping";
	case RK_OP_GET: return "get";
	case RK_OP_PUT: return "put";
	case RK_OP_DELETE: return "delete";
	case RK_OP_EXISTS: return "exists";
	case RK_OP_CLUSTER_INFO: return "cluster_info";
	case RK_OP_RING_INFO: return "ring_info";
	case RK_OP_HELLO: return "hello";
	case RK_OP_NODE_STATS: return "node_stats";
	case RK_OP_DECOMMISSION: return "decommission";
	case RK_OP_REMOVE_NODE: return "remove_node";
	case RK_OP_COUNTER_ADD: return "counter_add";
	case RK_OP_COUNTER_GET: return "counter_get";
	case RK_OP_COUNTER_DELETE: return "counter_delete";
	case RK_OP_CAS: return "cas";
	case RK_OP_NONE:
	default: return "none";
	}
}

static const char *const cl_names[] = {"default", "one", "quorum", "all",
				       "serial"};

const char *rk_consistency_name(enum rk_consistency cl)
{
	if ((int)cl < 0 || cl > RK_CL_SERIAL)
		return "?";
	return cl_names[cl];
}

int rk_consistency_parse(const char *s)
{
	for (int i = 0; i <= RK_CL_SERIAL; i++)
		if (strcasecmp(s, cl_names[i]) == 0)
			return i;
	return -1;
}
