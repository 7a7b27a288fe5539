/* gossip_wire.c: proto/gossip.proto <-> gossip/swim_msg.h.
 *
 * Decoding validates in one pass over the unpacked protobuf, before the
 * plain structs are filled, so swim only ever sees messages that satisfy
 * swim_msg.h's contract: known type and states, non-zero ids, well-formed
 * "host:port" strings, metadata within SWIM_META_MAX, at most
 * lim->max_updates updates.  Encoding checks the same limits so a node
 * cannot emit what its peers would reject.
 */
#include "gossip_wire.h"

#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "gossip.pb-c.h"

/* What decode hands out as the owner: the unpacked packet and the plain
 * update array that borrows from it. */
struct gossip_wire_owner {
	Ringkv__Gossip__Packet *pkt; /* from packet__unpack; freed here */
	struct swim_update *updates; /* malloc'd; strings borrow from pkt */
};

const struct swim_codec gossip_wire_codec = {
    .encode = gossip_wire_encode,
    .decode = gossip_wire_decode,
    .release = gossip_wire_release,
};

static const char *nz(const char *s)
{
	return s ? s : "";
}

/* Empty, or a valid "host:port". */
static int opt_addr_ok(const char *s)
{
	return !s || !*s || swim_addr_valid(s);
}

static int sync_type(int type)
{
	return type == SWIM_MSG_SYNC || type == SWIM_MSG_SYNC_REPLY;
}

/* The checks both directions share: one update of a message of type. */
static int update_ok(const struct swim_update *u, int type)
{
	if (u->id == 0 || (int)u->state < 0 ||
	    (int)u->state >= SWIM_STATE_COUNT)
		return 0;
	if (u->meta_len > SWIM_META_MAX || (u->meta_len && !u->meta))
		return 0;
	/* A suspicion names who holds it (Lifeguard counts them); nothing
	 * else names anybody. */
	if (u->state == SWIM_SUSPECT
		? (u->n_suspecters < 1 ||
		   u->n_suspecters > SWIM_SUSPECTERS_MAX || !u->suspecters)
		: u->n_suspecters != 0)
		return 0;
	if (!opt_addr_ok(u->gossip_addr) || !opt_addr_ok(u->peer_addr) ||
	    !opt_addr_ok(u->client_addr))
		return 0;
	/* Whoever learns a member from an alive record or a push-pull needs
	 * an address to reach it. */
	if ((u->state == SWIM_ALIVE || sync_type(type)) &&
	    !(u->gossip_addr && *u->gossip_addr))
		return 0;
	return 1;
}

static int header_ok(const struct swim_msg *m)
{
	if (m->type < SWIM_MSG_PING || m->type > SWIM_MSG_TYPE_MAX)
		return 0;
	if (!swim_cluster_name_valid(m->cluster) || m->from_id == 0 ||
	    !swim_addr_valid(m->from_addr))
		return 0;
	if (!opt_addr_ok(m->target_addr))
		return 0;
	if (m->type == SWIM_MSG_PING_REQ &&
	    (m->target_id == 0 || !swim_addr_valid(m->target_addr)))
		return 0;
	if (m->join && m->type != SWIM_MSG_SYNC)
		return 0;
	return 1;
}

int gossip_wire_encode(const struct swim_msg *m, struct rk_buf *out)
{
	Ringkv__Gossip__Packet pkt = RINGKV__GOSSIP__PACKET__INIT;
	Ringkv__Gossip__Update *ups = NULL;
	Ringkv__Gossip__Update **ptrs = NULL;
	int rc = 0;

	if (!header_ok(m))
		return RK_EINVALID;
	for (size_t i = 0; i < m->n_updates; i++)
		if (!update_ok(&m->updates[i], m->type))
			return RK_EINVALID;

	pkt.version = SWIM_WIRE_VERSION;
	pkt.cluster = (char *)m->cluster;
	pkt.type = (Ringkv__Gossip__MsgType)m->type;
	pkt.from_id = m->from_id;
	pkt.from_addr = (char *)m->from_addr;
	pkt.seq = m->seq;
	pkt.target_id = m->target_id;
	pkt.target_addr = (char *)nz(m->target_addr);
	pkt.join = m->join != 0;
	if (m->n_updates) {
		ups = calloc(m->n_updates, sizeof(*ups));
		ptrs = calloc(m->n_updates, sizeof(*ptrs));
		if (!ups || !ptrs) {
			rc = RK_ENOMEM;
			goto out;
		}
		for (size_t i = 0; i < m->n_updates; i++) {
			const struct swim_update *u = &m->updates[i];
			Ringkv__Gossip__Update *w = &ups[i];
			ringkv__gossip__update__init(w);
			w->id = u->id;
			w->incarnation = u->incarnation;
			w->state = (Ringkv__Gossip__State)u->state;
			w->n_suspecters = u->n_suspecters;
			w->suspecters = (uint64_t *)u->suspecters;
			w->gossip_addr = (char *)nz(u->gossip_addr);
			w->peer_addr = (char *)nz(u->peer_addr);
			w->client_addr = (char *)nz(u->client_addr);
			w->weight = u->weight;
			w->meta.len = u->meta_len;
			w->meta.data = (uint8_t *)u->meta;
			ptrs[i] = w;
		}
		pkt.n_updates = m->n_updates;
		pkt.updates = ptrs;
	}
	size_t n = ringkv__gossip__packet__get_packed_size(&pkt);
	if ((rc = rk_buf_reserve(out, n)))
		goto out;
	ringkv__gossip__packet__pack(&pkt, out->data + out->len);
	out->len += n;
out:
	free(ptrs);
	free(ups);
	return rc;
}

void gossip_wire_release(void *owner)
{
	struct gossip_wire_owner *o = owner;
	if (!o)
		return;
	ringkv__gossip__packet__free_unpacked(o->pkt, NULL);
	free(o->updates);
	free(o);
}

int gossip_wire_decode(const uint8_t *bytes, size_t len,
		       const struct swim_decode_limits *lim, struct swim_msg *m,
		       void **owner)
{
	struct gossip_wire_owner *o = NULL;
	Ringkv__Gossip__Packet *pkt = NULL;
	int rc = RK_EPROTOCOL;

	memset(m, 0, sizeof(*m));
	*owner = NULL;
	if (len == 0 || len > lim->max_bytes)
		return RK_EPROTOCOL;
	pkt = ringkv__gossip__packet__unpack(NULL, len, bytes);
	if (!pkt)
		return RK_EPROTOCOL;
	if (pkt->version != SWIM_WIRE_VERSION ||
	    pkt->n_updates > lim->max_updates)
		goto fail;

	m->type = (enum swim_msg_type)pkt->type;
	m->cluster = pkt->cluster;
	m->from_id = pkt->from_id;
	m->from_addr = pkt->from_addr;
	m->seq = pkt->seq;
	m->target_id = pkt->target_id;
	m->target_addr = nz(pkt->target_addr);
	m->join = pkt->join != 0;
	if (!header_ok(m))
		goto fail;

	o = calloc(1, sizeof(*o));
	if (!o) {
		rc = RK_ENOMEM;
		goto fail;
	}
	o->pkt = pkt;
	if (pkt->n_updates) {
		o->updates = calloc(pkt->n_updates, sizeof(*o->updates));
		if (!o->updates) {
			rc = RK_ENOMEM;
			goto fail;
		}
	}
	for (size_t i = 0; i < pkt->n_updates; i++) {
		const Ringkv__Gossip__Update *w = pkt->updates[i];
		struct swim_update *u = &o->updates[i];
		if (!w)
			goto fail;
		u->id = w->id;
		u->incarnation = w->incarnation;
		u->state = (enum swim_state)w->state;
		u->n_suspecters = w->n_suspecters;
		u->suspecters = w->n_suspecters ? w->suspecters : NULL;
		u->gossip_addr = nz(w->gossip_addr);
		u->peer_addr = nz(w->peer_addr);
		u->client_addr = nz(w->client_addr);
		u->weight = w->weight;
		u->meta_len = w->meta.len;
		u->meta = w->meta.len ? w->meta.data : NULL;
		if (!update_ok(u, m->type))
			goto fail;
	}
	m->updates = o->updates;
	m->n_updates = pkt->n_updates;
	*owner = o;
	return 0;
fail:
	if (o) {
		free(o->updates);
		free(o);
	}
	ringkv__gossip__packet__free_unpacked(pkt, NULL);
	memset(m, 0, sizeof(*m));
	return rc;
}
