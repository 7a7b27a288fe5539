/* test_gossip_wire.c: the gossip codec (proto/gossip_wire.c), suite unit.
 *
 * Round trips of random messages, the size bound gossip packs datagrams
 * with, every truncation and bit flip of valid packets, random bytes, and
 * each validation rule.  Randomness comes from rk_test_seed (RINGKV_SEED).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "gossip.pb-c.h"
#include "gossip_wire.h"
#include "rng.h"

static const struct swim_decode_limits lim = {.max_bytes = 1 << 20,
					      .max_updates = 4096};

static struct rk_rng rng;
static uint64_t seed;

static void setup(void)
{
	seed = rk_test_seed(criterion_current_test->name);
	rk_rng_seed(&rng, seed);
}

TestSuite(gossip_wire, .init = setup);

/* Storage behind one random message. */
struct sample {
	struct swim_msg m;
	struct swim_update ups[40];
	uint64_t ids[40][4];
	char addrs[40][3][32];
	uint8_t meta[40][SWIM_META_MAX];
	char from[32], target[32];
};

static void rand_addr(char *buf, size_t n)
{
	if (rk_rng_below(&rng, 4) == 0)
		snprintf(buf, n, "[::%x]:%u",
			 (unsigned)rk_rng_below(&rng, 65536),
			 1 + (unsigned)rk_rng_below(&rng, 65535));
	else
		snprintf(buf, n, "10.%u.%u.%u:%u",
			 (unsigned)rk_rng_below(&rng, 256),
			 (unsigned)rk_rng_below(&rng, 256),
			 (unsigned)rk_rng_below(&rng, 256),
			 1 + (unsigned)rk_rng_below(&rng, 65535));
}

static uint64_t rand_big(void)
{
	/* Small and huge values both: varint lengths vary. */
	return rk_rng_next(&rng) >> rk_rng_below(&rng, 64);
}

static void sample_fill(struct sample *s)
{
	memset(s, 0, sizeof(*s));
	struct swim_msg *m = &s->m;
	m->type =
	    (enum swim_msg_type)(1 + rk_rng_below(&rng, SWIM_MSG_TYPE_MAX));
	m->cluster = rk_rng_below(&rng, 2) ? "prod-eu.1" : "c";
	m->from_id = 1 + rand_big() / 2;
	rand_addr(s->from, sizeof(s->from));
	m->from_addr = s->from;
	m->seq = rand_big();
	m->target_addr = "";
	if (m->type == SWIM_MSG_PING_REQ || rk_rng_below(&rng, 2)) {
		m->target_id = 1 + rand_big() / 2;
		rand_addr(s->target, sizeof(s->target));
		m->target_addr = s->target;
	}
	m->join = m->type == SWIM_MSG_SYNC && rk_rng_below(&rng, 2);
	m->n_updates = (size_t)rk_rng_below(&rng, 40);
	m->updates = s->ups;
	int sync = m->type == SWIM_MSG_SYNC || m->type == SWIM_MSG_SYNC_REPLY;
	for (size_t i = 0; i < m->n_updates; i++) {
		struct swim_update *u = &s->ups[i];
		u->id = 1 + rand_big() / 2;
		u->incarnation = rand_big();
		u->state =
		    (enum swim_state)rk_rng_below(&rng, SWIM_STATE_COUNT);
		if (u->state == SWIM_SUSPECT) {
			u->n_suspecters = 1 + (size_t)rk_rng_below(&rng, 4);
			for (size_t j = 0; j < u->n_suspecters; j++)
				s->ids[i][j] = 1 + rand_big() / 2;
			u->suspecters = s->ids[i];
		}
		int full =
		    sync || u->state == SWIM_ALIVE || rk_rng_below(&rng, 2);
		u->gossip_addr = u->peer_addr = u->client_addr = "";
		if (full) {
			rand_addr(s->addrs[i][0], 32);
			u->gossip_addr = s->addrs[i][0];
			if (rk_rng_below(&rng, 2)) {
				rand_addr(s->addrs[i][1], 32);
				rand_addr(s->addrs[i][2], 32);
				u->peer_addr = s->addrs[i][1];
				u->client_addr = s->addrs[i][2];
			}
			u->weight = (uint32_t)rk_rng_next(&rng);
			u->meta_len =
			    (size_t)rk_rng_below(&rng, SWIM_META_MAX + 1);
			for (size_t j = 0; j < u->meta_len; j++)
				s->meta[i][j] = (uint8_t)rk_rng_next(&rng);
			u->meta = u->meta_len ? s->meta[i] : NULL;
		}
	}
}

static void same_update(const struct swim_update *a,
			const struct swim_update *b)
{
	cr_assert_eq(a->id, b->id);
	cr_assert_eq(a->incarnation, b->incarnation);
	cr_assert_eq(a->state, b->state);
	cr_assert_eq(a->n_suspecters, b->n_suspecters);
	for (size_t j = 0; j < a->n_suspecters; j++)
		cr_assert_eq(a->suspecters[j], b->suspecters[j]);
	cr_assert_str_eq(a->gossip_addr, b->gossip_addr);
	cr_assert_str_eq(a->peer_addr, b->peer_addr);
	cr_assert_str_eq(a->client_addr, b->client_addr);
	cr_assert_eq(a->weight, b->weight);
	cr_assert_eq(a->meta_len, b->meta_len);
	if (a->meta_len)
		cr_assert_eq(memcmp(a->meta, b->meta, a->meta_len), 0);
}

static void same_msg(const struct swim_msg *a, const struct swim_msg *b)
{
	cr_assert_eq(a->type, b->type);
	cr_assert_str_eq(a->cluster, b->cluster);
	cr_assert_eq(a->from_id, b->from_id);
	cr_assert_str_eq(a->from_addr, b->from_addr);
	cr_assert_eq(a->seq, b->seq);
	cr_assert_eq(a->target_id, b->target_id);
	cr_assert_str_eq(a->target_addr, b->target_addr);
	cr_assert_eq(!!a->join, !!b->join);
	cr_assert_eq(a->n_updates, b->n_updates);
	for (size_t i = 0; i < a->n_updates; i++)
		same_update(&a->updates[i], &b->updates[i]);
}

static void encode(const struct swim_msg *m, struct rk_buf *b)
{
	rk_buf_init(b);
	int rc = gossip_wire_encode(m, b);
	cr_assert_eq(rc, 0, "encode: %s (seed %lu)", rk_strerror(rc),
		     (unsigned long)seed);
}

Test(gossip_wire, round_trip_and_size_bound)
{
	static struct sample s;
	for (int k = 0; k < 2000; k++) {
		struct rk_buf b;
		struct swim_msg d;
		void *owner;
		sample_fill(&s);
		encode(&s.m, &b);
		size_t bound = swim_msg_size_bound(&s.m);
		cr_assert_leq(b.len, bound,
			      "encoded %zu > bound %zu (seed %lu)", b.len,
			      bound, (unsigned long)seed);
		/* Conservative, not wasteful: only absent fields count. */
		cr_assert_leq(bound - b.len, 40 + 24 * s.m.n_updates);
		cr_assert_eq(
		    gossip_wire_decode(b.data, b.len, &lim, &d, &owner), 0,
		    "seed %lu", (unsigned long)seed);
		same_msg(&s.m, &d);
		gossip_wire_release(owner);
		rk_buf_destroy(&b);
	}
}

/* Decoding must never crash, and anything accepted must re-encode to
 * something that decodes to the same message. */
static void decode_any(const uint8_t *p, size_t n)
{
	struct swim_msg d, d2;
	void *owner, *owner2;
	int rc = gossip_wire_decode(p, n, &lim, &d, &owner);
	cr_assert(rc == 0 || rc == RK_EPROTOCOL);
	if (rc)
		return;
	struct rk_buf b;
	encode(&d, &b);
	cr_assert_eq(gossip_wire_decode(b.data, b.len, &lim, &d2, &owner2), 0);
	same_msg(&d, &d2);
	gossip_wire_release(owner2);
	gossip_wire_release(owner);
	rk_buf_destroy(&b);
}

Test(gossip_wire, every_truncation_and_bit_flip)
{
	static struct sample s;
	for (int k = 0; k < 40; k++) {
		struct rk_buf b;
		sample_fill(&s);
		encode(&s.m, &b);
		for (size_t n = 0; n < b.len; n++)
			decode_any(b.data, n);
		uint8_t *c = malloc(b.len);
		cr_assert(c);
		for (size_t bit = 0; bit < 8 * b.len && bit < 8 * 400; bit++) {
			memcpy(c, b.data, b.len);
			c[bit / 8] ^= (uint8_t)(1u << (bit % 8));
			decode_any(c, b.len);
		}
		free(c);
		rk_buf_destroy(&b);
	}
}

Test(gossip_wire, random_bytes)
{
	uint8_t buf[600];
	for (int k = 0; k < 20000; k++) {
		size_t n = (size_t)rk_rng_below(&rng, sizeof(buf));
		for (size_t i = 0; i < n; i++)
			buf[i] = (uint8_t)rk_rng_next(&rng);
		decode_any(buf, n);
	}
	decode_any(NULL, 0);
}

/* A valid PING with one alive update, to break one field at a time. */
struct base {
	struct swim_update u;
	struct swim_msg m;
	uint64_t by[1];
};

static void base_init(struct base *b)
{
	memset(b, 0, sizeof(*b));
	b->u = (struct swim_update){.id = 7,
				    .incarnation = 3,
				    .state = SWIM_ALIVE,
				    .gossip_addr = "10.0.0.7:7946",
				    .peer_addr = "",
				    .client_addr = ""};
	b->m = (struct swim_msg){.type = SWIM_MSG_PING,
				 .cluster = "main",
				 .from_id = 2,
				 .from_addr = "10.0.0.2:7946",
				 .seq = 9,
				 .target_addr = "",
				 .updates = &b->u,
				 .n_updates = 1};
	b->by[0] = 4;
}

/* encode refuses it, and a packet built behind its back is refused by
 * decode. */
static void refused(const struct swim_msg *m)
{
	struct rk_buf b;
	rk_buf_init(&b);
	cr_assert_eq(gossip_wire_encode(m, &b), RK_EINVALID);
	rk_buf_destroy(&b);
}

Test(gossip_wire, validation_encode_side)
{
	struct base b;
	base_init(&b);
	struct rk_buf ok;
	encode(&b.m, &ok);
	rk_buf_destroy(&ok);

#define BREAK(stmt)                                                            \
	do {                                                                   \
		base_init(&b);                                                 \
		stmt;                                                          \
		refused(&b.m);                                                 \
	} while (0)
	BREAK(b.m.type = 0);
	BREAK(b.m.type = (enum swim_msg_type)(SWIM_MSG_TYPE_MAX + 1));
	BREAK(b.m.cluster = "");
	BREAK(b.m.cluster = "has space");
	BREAK(b.m.cluster = "0123456789012345678901234567890123456789"
			    "01234567890123456789012345");
	BREAK(b.m.from_id = 0);
	BREAK(b.m.from_addr = "10.0.0.2");
	BREAK(b.m.from_addr = "10.0.0.2:0");
	BREAK(b.m.from_addr = "10.0.0.2:65536");
	BREAK(b.m.from_addr = "bad host:1");
	BREAK(b.m.from_addr = "a:b:1");
	BREAK(b.m.type = SWIM_MSG_PING_REQ);
	BREAK(b.m.type = SWIM_MSG_PING_REQ; b.m.target_id = 3);
	BREAK(b.u.id = 0);
	BREAK(b.u.state = (enum swim_state)4);
	BREAK(b.u.gossip_addr = "");
	BREAK(b.u.peer_addr = "nope");
	BREAK(b.u.meta_len = SWIM_META_MAX + 1; b.u.meta = (uint8_t *)&b);
	BREAK(b.u.state = SWIM_SUSPECT);
	BREAK(b.u.state = SWIM_SUSPECT; b.u.suspecters = b.by;
	      b.u.n_suspecters = SWIM_SUSPECTERS_MAX + 1);
	BREAK(b.u.suspecters = b.by; b.u.n_suspecters = 1);
	BREAK(b.m.type = SWIM_MSG_SYNC; b.u.state = SWIM_DEAD;
	      b.u.gossip_addr = "");
#undef BREAK
}

/* Packs a raw protobuf packet and checks decode's verdict. */
static void raw_verdict(const Ringkv__Gossip__Packet *p, int want)
{
	size_t n = ringkv__gossip__packet__get_packed_size(p);
	uint8_t *buf = malloc(n ? n : 1);
	struct swim_msg d;
	void *owner;
	cr_assert(buf);
	ringkv__gossip__packet__pack(p, buf);
	int rc = gossip_wire_decode(buf, n, &lim, &d, &owner);
	cr_assert_eq(rc, want, "decode gave %d, want %d", rc, want);
	if (!rc)
		gossip_wire_release(owner);
	free(buf);
}

Test(gossip_wire, validation_decode_side)
{
	Ringkv__Gossip__Update u = RINGKV__GOSSIP__UPDATE__INIT;
	Ringkv__Gossip__Update *up = &u;
	Ringkv__Gossip__Packet p = RINGKV__GOSSIP__PACKET__INIT;
	p.version = 1;
	p.cluster = "main";
	p.type = RINGKV__GOSSIP__MSG_TYPE__PING;
	p.from_id = 2;
	p.from_addr = "10.0.0.2:1";
	u.id = 5;
	u.gossip_addr = "10.0.0.5:1";
	p.n_updates = 1;
	p.updates = &up;
	raw_verdict(&p, 0);

	p.version = 2;
	raw_verdict(&p, RK_EPROTOCOL);
	p.version = 1;
	p.type = (Ringkv__Gossip__MsgType)99;
	raw_verdict(&p, RK_EPROTOCOL);
	p.type = RINGKV__GOSSIP__MSG_TYPE__PING;
	u.state = (Ringkv__Gossip__State)17;
	raw_verdict(&p, RK_EPROTOCOL);
	u.state = RINGKV__GOSSIP__STATE__ALIVE;
	p.join = 1;
	raw_verdict(&p, RK_EPROTOCOL);
	p.join = 0;
	p.cluster = "";
	raw_verdict(&p, RK_EPROTOCOL);
	p.cluster = "main";
	raw_verdict(&p, 0);

	/* More updates than the limit, and more bytes. */
	Ringkv__Gossip__Update *many[5] = {up, up, up, up, up};
	p.updates = many;
	p.n_updates = 5;
	struct swim_decode_limits small = {.max_bytes = 1 << 20,
					   .max_updates = 4};
	size_t n = ringkv__gossip__packet__get_packed_size(&p);
	uint8_t *buf = malloc(n);
	struct swim_msg d;
	void *owner;
	cr_assert(buf);
	ringkv__gossip__packet__pack(&p, buf);
	cr_assert_eq(gossip_wire_decode(buf, n, &small, &d, &owner),
		     RK_EPROTOCOL);
	small.max_updates = 5;
	small.max_bytes = n - 1;
	cr_assert_eq(gossip_wire_decode(buf, n, &small, &d, &owner),
		     RK_EPROTOCOL);
	small.max_bytes = n;
	cr_assert_eq(gossip_wire_decode(buf, n, &small, &d, &owner), 0);
	cr_assert_eq(d.n_updates, 5);
	gossip_wire_release(owner);
	free(buf);
}

Test(gossip_wire, names)
{
	cr_assert_str_eq(swim_state_name(SWIM_LEFT), "left");
	cr_assert_str_eq(swim_state_name(9), "?");
	cr_assert_str_eq(swim_msg_type_name(SWIM_MSG_PING_REQ), "ping-req");
	cr_assert_str_eq(swim_msg_type_name(0), "?");
	cr_assert(swim_addr_valid("[::1]:7946"));
	cr_assert(swim_addr_valid("node-3.example.com:1"));
	cr_assert(!swim_addr_valid("[::1]7946"));
	cr_assert(!swim_addr_valid(""));
	cr_assert(!swim_addr_valid(NULL));
}
