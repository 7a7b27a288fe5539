/* fuzz_paxos_wire.c: libFuzzer target for the Paxos decoders.
 *
 * Each input is tried as it is, and with a correct checksum trailer
 * appended (else almost every mutation dies at the CRC and the parser
 * behind it is never reached).  Invariants per input: no sanitizer report;
 * whatever decodes (as a message or as an acceptor state) re-encodes, and
 * decodes again to the same thing. */
#include <stdlib.h>
#include <string.h>

#include "crc32c.h"
#include "paxos_wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int ts_eq(rk_ts a, rk_ts b)
{
	return rk_ts_cmp(a, b) == 0;
}

static int same_prop(const struct paxos_proposal *a,
		     const struct paxos_proposal *b)
{
	return ts_eq(a->ballot, b->ballot) && ts_eq(a->origin, b->origin) &&
	       ts_eq(a->base, b->base) && paxos_value_eq(&a->value, &b->value);
}

static int same(const struct paxos_msg *a, const struct paxos_msg *b)
{
	return a->type == b->type && a->klen == b->klen &&
	       !memcmp(a->key, b->key, a->klen) && a->req == b->req &&
	       ts_eq(a->ballot, b->ballot) && !a->ok == !b->ok &&
	       ts_eq(a->promised, b->promised) &&
	       same_prop(&a->accepted, &b->accepted) &&
	       ts_eq(a->committed, b->committed) &&
	       paxos_value_eq(&a->current, &b->current) &&
	       ts_eq(a->current_ts, b->current_ts) &&
	       same_prop(&a->proposal, &b->proposal);
}

static void state(const uint8_t *data, size_t size)
{
	struct paxos_acceptor_state s, s2;
	const uint8_t *k, *k2;
	size_t kl, kl2;
	void *o, *o2;
	if (paxos_wire_decode_state(data, size, &k, &kl, &s, &o))
		return;
	struct rk_buf b;
	rk_buf_init(&b);
	if (paxos_wire_encode_state(k, kl, &s, &b) ||
	    paxos_wire_decode_state(b.data, b.len, &k2, &kl2, &s2, &o2))
		abort();
	if (kl != kl2 || memcmp(k, k2, kl) || !ts_eq(s.promised, s2.promised) ||
	    !ts_eq(s.committed, s2.committed) ||
	    !same_prop(&s.accepted, &s2.accepted))
		abort();
	paxos_wire_release(o2);
	paxos_wire_release(o);
	rk_buf_destroy(&b);
}

static void one(const uint8_t *data, size_t size)
{
	struct paxos_msg m, m2;
	void *o, *o2;
	state(data, size);
	if (paxos_wire_decode(data, size, &m, &o))
		return;
	struct rk_buf b;
	rk_buf_init(&b);
	if (paxos_wire_encode(&m, &b) ||
	    paxos_wire_decode(b.data, b.len, &m2, &o2))
		abort();
	if (!same(&m, &m2))
		abort();
	paxos_wire_release(o2);
	paxos_wire_release(o);
	rk_buf_destroy(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	one(data, size);
	uint8_t *c = malloc(size + 5);
	if (!c)
		return 0;
	if (size)
		memcpy(c, data, size);
	c[size] = 0x7d;
	rk_put_le32(c + size + 1, rk_crc32c(0, c, size));
	one(c, size + 5);
	free(c);
	return 0;
}
