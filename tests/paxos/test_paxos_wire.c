/* test_paxos_wire.c: the Paxos codec (suite unit).
 *
 * Round trips of every message kind and of acceptor states with random
 * contents; every truncation and every single bit flip of valid encodings
 * refused (the CRC-32C trailer); random bytes never crash; and messages
 * that are valid protobuf with a valid checksum but break a rule of
 * paxos_msg.h refused by the decoder (and by the encoder first).
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "crc32c.h"
#include "err.h"
#include "paxos.pb-c.h"
#include "paxos_wire.h"
#include "rng.h"

static struct rk_rng rng;

static void setup(void)
{
	rk_rng_seed(&rng, rk_test_seed(criterion_current_test->name));
}

TestSuite(paxos_wire, .init = setup);

/* ---- samples ---------------------------------------------------------- */

struct sample {
	struct paxos_msg m;
	uint8_t key[40];
	uint8_t v1[300], v2[300];
};

static rk_ts rnd_ts(void)
{
	rk_ts t = {rk_rng_next(&rng) >> (rk_rng_below(&rng, 60)),
		   1 + rk_rng_below(&rng, 1000)};
	return t;
}

static void rnd_value(struct paxos_value *v, uint8_t *buf, size_t cap)
{
	memset(v, 0, sizeof(*v));
	if (rk_rng_below(&rng, 4) == 0)
		return; /* absent */
	v->present = 1;
	v->len = (size_t)rk_rng_below(&rng, cap);
	for (size_t i = 0; i < v->len; i++)
		buf[i] = (uint8_t)rk_rng_next(&rng);
	v->data = v->len ? buf : NULL;
}

/* A valid proposal: base < origin <= ballot. */
static void rnd_prop(struct paxos_proposal *p, uint8_t *buf, size_t cap)
{
	p->origin = rnd_ts();
	if (p->origin.hlc == 0)
		p->origin.hlc = 1;
	p->ballot = p->origin;
	if (rk_rng_below(&rng, 2))
		p->ballot.hlc += 1 + rk_rng_below(&rng, 1000);
	p->base = (rk_ts){0, 0};
	if (rk_rng_below(&rng, 3))
		p->base = (rk_ts){rk_rng_below(&rng, p->origin.hlc), 7};
	rnd_value(&p->value, buf, cap);
}

static void sample_fill(struct sample *s, int type)
{
	memset(&s->m, 0, sizeof(s->m));
	s->m.type = (enum paxos_msg_type)type;
	s->m.klen = 1 + (size_t)rk_rng_below(&rng, sizeof(s->key) - 1);
	for (size_t i = 0; i < s->m.klen; i++)
		s->key[i] = (uint8_t)rk_rng_next(&rng);
	s->m.key = s->key;
	s->m.req = rk_rng_next(&rng) >> rk_rng_below(&rng, 64);
	s->m.ballot = rnd_ts();
	switch (type) {
	case PAXOS_MSG_PROMISE:
	case PAXOS_MSG_ACCEPTED:
		s->m.ok = (int)rk_rng_below(&rng, 2);
		if (!s->m.ok) {
			s->m.promised = rnd_ts();
			break;
		}
		if (type == PAXOS_MSG_ACCEPTED)
			break;
		if (rk_rng_below(&rng, 2))
			rnd_prop(&s->m.accepted, s->v1, sizeof(s->v1));
		if (rk_rng_below(&rng, 2))
			s->m.committed = rnd_ts();
		rnd_value(&s->m.current, s->v2, sizeof(s->v2));
		if (s->m.current.present || rk_rng_below(&rng, 2))
			s->m.current_ts = rnd_ts();
		break;
	case PAXOS_MSG_PROPOSE:
	case PAXOS_MSG_COMMIT:
		rnd_prop(&s->m.proposal, s->v1, sizeof(s->v1));
		s->m.ballot = s->m.proposal.ballot;
		break;
	default:
		break;
	}
	cr_assert(paxos_msg_valid(&s->m), "sample of type %d invalid", type);
}

static int ts_eq(rk_ts a, rk_ts b)
{
	return rk_ts_cmp(a, b) == 0;
}

static void same_prop(const struct paxos_proposal *a,
		      const struct paxos_proposal *b)
{
	cr_assert(ts_eq(a->ballot, b->ballot));
	cr_assert(ts_eq(a->origin, b->origin));
	cr_assert(ts_eq(a->base, b->base));
	cr_assert(paxos_value_eq(&a->value, &b->value));
}

static void same_msg(const struct paxos_msg *a, const struct paxos_msg *b)
{
	cr_assert_eq(a->type, b->type);
	cr_assert_eq(a->klen, b->klen);
	cr_assert(!memcmp(a->key, b->key, a->klen));
	cr_assert_eq(a->req, b->req);
	cr_assert(ts_eq(a->ballot, b->ballot));
	cr_assert_eq(!a->ok, !b->ok);
	cr_assert(ts_eq(a->promised, b->promised));
	same_prop(&a->accepted, &b->accepted);
	cr_assert(ts_eq(a->committed, b->committed));
	cr_assert(paxos_value_eq(&a->current, &b->current));
	cr_assert(ts_eq(a->current_ts, b->current_ts));
	same_prop(&a->proposal, &b->proposal);
}

static void encode(const struct paxos_msg *m, struct rk_buf *b)
{
	rk_buf_init(b);
	cr_assert_eq(paxos_wire_encode(m, b), 0);
}

/* ---- round trips ------------------------------------------------------ */

Test(paxos_wire, every_kind_round_trips)
{
	static struct sample s;
	for (int k = 0; k < 3000; k++) {
		int type = 1 + (int)rk_rng_below(&rng, PAXOS_MSG_TYPE_MAX);
		struct rk_buf b;
		struct paxos_msg d;
		void *o;
		sample_fill(&s, type);
		encode(&s.m, &b);
		cr_assert_eq(paxos_wire_decode(b.data, b.len, &d, &o), 0,
			     "type %d", type);
		same_msg(&s.m, &d);
		/* Re-encoding gives the same bytes. */
		struct rk_buf b2;
		encode(&d, &b2);
		cr_assert_eq(b2.len, b.len);
		cr_assert(!memcmp(b.data, b2.data, b.len));
		paxos_wire_release(o);
		rk_buf_destroy(&b);
		rk_buf_destroy(&b2);
	}
}

Test(paxos_wire, state_round_trips)
{
	static uint8_t key[64], val[300];
	for (int k = 0; k < 2000; k++) {
		struct paxos_acceptor_state s = {0}, d;
		size_t klen = 1 + (size_t)rk_rng_below(&rng, sizeof(key) - 1);
		for (size_t i = 0; i < klen; i++)
			key[i] = (uint8_t)rk_rng_next(&rng);
		if (rk_rng_below(&rng, 2)) {
			rnd_prop(&s.accepted, val, sizeof(val));
			s.promised = s.accepted.ballot;
			if (rk_rng_below(&rng, 2))
				s.promised.hlc += 1 + rk_rng_below(&rng, 99);
		} else if (rk_rng_below(&rng, 2)) {
			s.promised = rnd_ts();
		}
		if (rk_rng_below(&rng, 2))
			s.committed = s.promised;
		struct rk_buf b;
		rk_buf_init(&b);
		cr_assert_eq(paxos_wire_encode_state(key, klen, &s, &b), 0);
		const uint8_t *dk;
		size_t dklen;
		void *o;
		cr_assert_eq(
		    paxos_wire_decode_state(b.data, b.len, &dk, &dklen, &d, &o),
		    0);
		cr_assert_eq(dklen, klen);
		cr_assert(!memcmp(dk, key, klen));
		cr_assert(ts_eq(d.promised, s.promised));
		cr_assert(ts_eq(d.committed, s.committed));
		same_prop(&d.accepted, &s.accepted);
		paxos_wire_release(o);
		rk_buf_destroy(&b);
	}
}

Test(paxos_wire, no_state_encodes_as_empty)
{
	struct rk_buf b;
	struct paxos_acceptor_state d;
	const uint8_t *k;
	size_t kl;
	void *o;
	rk_buf_init(&b);
	cr_assert_eq(
	    paxos_wire_encode_state((const uint8_t *)"key", 3, NULL, &b), 0);
	cr_assert_eq(paxos_wire_decode_state(b.data, b.len, &k, &kl, &d, &o),
		     0);
	cr_assert(paxos_state_empty(&d));
	cr_assert_eq(kl, 3);
	paxos_wire_release(o);
	rk_buf_destroy(&b);
}

/* ---- damage ----------------------------------------------------------- */

/* Whatever decodes re-encodes to something that decodes the same. */
static void decode_any(const uint8_t *p, size_t n)
{
	struct paxos_msg d, d2;
	void *o, *o2;
	int rc = paxos_wire_decode(p, n, &d, &o);
	cr_assert(rc == 0 || rc == RK_EPROTOCOL);
	if (rc) {
		cr_assert_null(o);
		return;
	}
	struct rk_buf b;
	encode(&d, &b);
	cr_assert_eq(paxos_wire_decode(b.data, b.len, &d2, &o2), 0);
	same_msg(&d, &d2);
	paxos_wire_release(o2);
	paxos_wire_release(o);
	rk_buf_destroy(&b);
}

Test(paxos_wire, every_truncation_and_bit_flip_is_refused)
{
	static struct sample s;
	for (int k = 0; k < 60; k++) {
		struct rk_buf b;
		struct paxos_msg d;
		void *o;
		sample_fill(&s, 1 + k % PAXOS_MSG_TYPE_MAX);
		encode(&s.m, &b);
		for (size_t n = 0; n < b.len; n++) {
			cr_assert_eq(paxos_wire_decode(b.data, n, &d, &o),
				     RK_EPROTOCOL, "prefix %zu of %zu", n,
				     b.len);
			cr_assert_null(o);
		}
		uint8_t *c = malloc(b.len);
		cr_assert(c);
		for (size_t bit = 0; bit < 8 * b.len; bit++) {
			memcpy(c, b.data, b.len);
			c[bit / 8] ^= (uint8_t)(1u << (bit % 8));
			cr_assert_eq(paxos_wire_decode(c, b.len, &d, &o),
				     RK_EPROTOCOL, "bit %zu", bit);
		}
		free(c);
		rk_buf_destroy(&b);
	}
}

Test(paxos_wire, every_truncation_and_bit_flip_of_a_state_is_refused)
{
	uint8_t val[40];
	for (int k = 0; k < 30; k++) {
		struct paxos_acceptor_state s = {0}, d;
		rnd_prop(&s.accepted, val, sizeof(val));
		s.promised = s.accepted.ballot;
		s.committed = s.accepted.base;
		struct rk_buf b;
		rk_buf_init(&b);
		cr_assert_eq(
		    paxos_wire_encode_state((const uint8_t *)"k1", 2, &s, &b),
		    0);
		const uint8_t *dk;
		size_t dkl;
		void *o;
		for (size_t n = 0; n < b.len; n++)
			cr_assert_eq(paxos_wire_decode_state(b.data, n, &dk,
							     &dkl, &d, &o),
				     RK_EPROTOCOL);
		uint8_t *c = malloc(b.len);
		cr_assert(c);
		for (size_t bit = 0; bit < 8 * b.len; bit++) {
			memcpy(c, b.data, b.len);
			c[bit / 8] ^= (uint8_t)(1u << (bit % 8));
			cr_assert_eq(paxos_wire_decode_state(c, b.len, &dk,
							     &dkl, &d, &o),
				     RK_EPROTOCOL, "bit %zu", bit);
		}
		free(c);
		rk_buf_destroy(&b);
	}
}

Test(paxos_wire, random_bytes_never_crash)
{
	uint8_t buf[700];
	for (int k = 0; k < 20000; k++) {
		size_t n = (size_t)rk_rng_below(&rng, sizeof(buf));
		for (size_t i = 0; i < n; i++)
			buf[i] = (uint8_t)rk_rng_next(&rng);
		/* Half get a correct trailer, so the parser behind it runs. */
		if (n > 5 && rk_rng_below(&rng, 2)) {
			buf[n - 5] = 0x7d;
			rk_put_le32(buf + n - 4, rk_crc32c(0, buf, n - 5));
		}
		decode_any(buf, n);
	}
	decode_any(NULL, 0);
}

/* ---- rules ------------------------------------------------------------ */

/* Packs a hand-made PaxosMessage with a correct trailer. */
static void pack_raw(const Ringkv__Paxos__PaxosMessage *pm, struct rk_buf *b)
{
	size_t n = ringkv__paxos__paxos_message__get_packed_size(pm);
	rk_buf_init(b);
	cr_assert_eq(rk_buf_reserve(b, n + 5), 0);
	ringkv__paxos__paxos_message__pack(pm, b->data);
	b->data[n] = 0x7d;
	rk_put_le32(b->data + n + 1, rk_crc32c(0, b->data, n));
	b->len = n + 5;
}

static int decodes(const Ringkv__Paxos__PaxosMessage *pm)
{
	struct rk_buf b;
	struct paxos_msg d;
	void *o;
	pack_raw(pm, &b);
	int rc = paxos_wire_decode(b.data, b.len, &d, &o);
	paxos_wire_release(o);
	rk_buf_destroy(&b);
	return rc == 0;
}

Test(paxos_wire, decoder_refuses_what_breaks_the_rules)
{
	Ringkv__Paxos__Ts b10 = RINGKV__PAXOS__TS__INIT,
			  b20 = RINGKV__PAXOS__TS__INIT,
			  zero = RINGKV__PAXOS__TS__INIT;
	b10.hlc = 10;
	b10.node = 1;
	b20.hlc = 20;
	b20.node = 2;
	Ringkv__Paxos__Prepare prep = RINGKV__PAXOS__PREPARE__INIT;
	prep.key.data = (uint8_t *)"k";
	prep.key.len = 1;
	prep.ballot = &b10;
	Ringkv__Paxos__PaxosMessage pm = RINGKV__PAXOS__PAXOS_MESSAGE__INIT;
	pm.version = 1;
	pm.body_case = RINGKV__PAXOS__PAXOS_MESSAGE__BODY_PREPARE;
	pm.prepare = &prep;
	cr_assert(decodes(&pm), "the valid base case");

	pm.version = 2;
	cr_assert(!decodes(&pm), "other version");
	pm.version = 1;
	prep.key.len = 0;
	cr_assert(!decodes(&pm), "empty key");
	prep.key.len = 1;
	prep.ballot = &zero;
	cr_assert(!decodes(&pm), "zero ballot");
	prep.ballot = NULL;
	cr_assert(!decodes(&pm), "no ballot");
	prep.ballot = &b10;
	pm.body_case = RINGKV__PAXOS__PAXOS_MESSAGE__BODY__NOT_SET;
	cr_assert(!decodes(&pm), "no body");

	/* A proposal whose origin is above its ballot. */
	Ringkv__Paxos__Value val = RINGKV__PAXOS__VALUE__INIT;
	Ringkv__Paxos__Proposal pr = RINGKV__PAXOS__PROPOSAL__INIT;
	pr.ballot = &b10;
	pr.origin = &b20;
	pr.value = &val;
	Ringkv__Paxos__Propose prop = RINGKV__PAXOS__PROPOSE__INIT;
	prop.key = prep.key;
	prop.proposal = &pr;
	pm.body_case = RINGKV__PAXOS__PAXOS_MESSAGE__BODY_PROPOSE;
	pm.propose = &prop;
	cr_assert(!decodes(&pm), "origin above ballot");
	pr.ballot = &b20;
	cr_assert(decodes(&pm));
	pr.base_commit = &b20;
	cr_assert(!decodes(&pm), "base not below origin");
	pr.base_commit = &b10;
	cr_assert(decodes(&pm));
	/* Absent with bytes. */
	val.data.data = (uint8_t *)"x";
	val.data.len = 1;
	cr_assert(!decodes(&pm), "absent value with bytes");
	val.present = 1;
	cr_assert(decodes(&pm));
	prop.proposal = NULL;
	cr_assert(!decodes(&pm), "propose without a proposal");

	/* A rejection must name what beat it; a grant must not. */
	Ringkv__Paxos__Accepted acc = RINGKV__PAXOS__ACCEPTED__INIT;
	acc.key = prep.key;
	acc.ballot = &b10;
	pm.body_case = RINGKV__PAXOS__PAXOS_MESSAGE__BODY_ACCEPTED;
	pm.accepted = &acc;
	cr_assert(!decodes(&pm), "rejection without promised");
	acc.promised = &b20;
	cr_assert(decodes(&pm));
	acc.ok = 1;
	cr_assert(!decodes(&pm), "grant with promised");

	/* A rejected promise carries nothing else. */
	Ringkv__Paxos__Promise prom = RINGKV__PAXOS__PROMISE__INIT;
	prom.key = prep.key;
	prom.ballot = &b10;
	prom.promised = &b20;
	pm.body_case = RINGKV__PAXOS__PAXOS_MESSAGE__BODY_PROMISE;
	pm.promise = &prom;
	cr_assert(decodes(&pm));
	prom.committed = &b10;
	cr_assert(!decodes(&pm), "rejected promise with a commit");
	prom.committed = NULL;
	prom.promised = NULL;
	prom.ok = 1;
	prom.current = &val;
	cr_assert(!decodes(&pm), "a present value without a timestamp");
	prom.current_ts = &b10;
	cr_assert(decodes(&pm));

	/* A wrong checksum. */
	struct rk_buf b;
	struct paxos_msg d;
	void *o;
	pack_raw(&pm, &b);
	b.data[b.len - 1] ^= 1;
	cr_assert_eq(paxos_wire_decode(b.data, b.len, &d, &o), RK_EPROTOCOL);
	rk_buf_destroy(&b);
}

Test(paxos_wire, encoder_refuses_what_the_decoder_would)
{
	struct rk_buf b;
	rk_buf_init(&b);
	struct paxos_msg m = {.type = PAXOS_MSG_PREPARE,
			      .key = (const uint8_t *)"k",
			      .klen = 1,
			      .ballot = {1, 1}};
	cr_assert_eq(paxos_wire_encode(&m, &b), 0);
	m.ok = 1;
	cr_assert_eq(paxos_wire_encode(&m, &b), RK_EINVALID);
	m.ok = 0;
	m.type = 0;
	cr_assert_eq(paxos_wire_encode(&m, &b), RK_EINVALID);
	m.type = PAXOS_MSG_COMMIT;
	m.proposal.ballot = m.ballot;
	m.proposal.origin = m.ballot;
	m.proposal.base = m.ballot;
	cr_assert_eq(paxos_wire_encode(&m, &b), RK_EINVALID);
	m.proposal.base = (rk_ts){0, 0};
	cr_assert_eq(paxos_wire_encode(&m, &b), 0);
	m.proposal.value.present = 1;
	m.proposal.value.len = PAXOS_VALUE_MAX + 1;
	m.proposal.value.data = (const uint8_t *)"";
	cr_assert_eq(paxos_wire_encode(&m, &b), RK_EINVALID);
	struct paxos_acceptor_state s = {.promised = {1, 1}};
	s.accepted.ballot = (rk_ts){2, 1};
	s.accepted.origin = (rk_ts){2, 1};
	cr_assert_eq(paxos_wire_encode_state((const uint8_t *)"k", 1, &s, &b),
		     RK_EINVALID, "accepted above promised");
	cr_assert_eq(paxos_wire_encode_state((const uint8_t *)"k", 0, NULL, &b),
		     RK_EINVALID);
	rk_buf_destroy(&b);
}
