/* fuzz_gossip_wire.c: libFuzzer target for the gossip decoder.
 *
 * Invariants per input: no sanitizer report; whatever decodes re-encodes,
 * within swim_msg_size_bound, and decodes again to the same message. */
#include <stdlib.h>
#include <string.h>

#include "gossip_wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct swim_decode_limits lim = {.max_bytes = 1 << 16,
					      .max_updates = 4096};

static int same(const struct swim_msg *a, const struct swim_msg *b)
{
	if (a->type != b->type || a->from_id != b->from_id ||
	    a->seq != b->seq || a->target_id != b->target_id ||
	    strcmp(a->cluster, b->cluster) ||
	    strcmp(a->from_addr, b->from_addr) ||
	    strcmp(a->target_addr, b->target_addr) || !a->join != !b->join ||
	    a->n_updates != b->n_updates)
		return 0;
	for (size_t i = 0; i < a->n_updates; i++) {
		const struct swim_update *x = &a->updates[i],
					 *y = &b->updates[i];
		if (x->id != y->id || x->incarnation != y->incarnation ||
		    x->state != y->state || x->weight != y->weight ||
		    x->n_suspecters != y->n_suspecters ||
		    x->meta_len != y->meta_len ||
		    strcmp(x->gossip_addr, y->gossip_addr) ||
		    strcmp(x->peer_addr, y->peer_addr) ||
		    strcmp(x->client_addr, y->client_addr) ||
		    (x->meta_len && memcmp(x->meta, y->meta, x->meta_len)) ||
		    (x->n_suspecters &&
		     memcmp(x->suspecters, y->suspecters,
			    x->n_suspecters * sizeof(uint64_t))))
			return 0;
	}
	return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct swim_msg m, m2;
	void *o, *o2;
	if (gossip_wire_decode(data, size, &lim, &m, &o))
		return 0;
	struct rk_buf b;
	rk_buf_init(&b);
	if (gossip_wire_encode(&m, &b) || b.len > swim_msg_size_bound(&m) ||
	    gossip_wire_decode(b.data, b.len, &lim, &m2, &o2))
		abort();
	if (!same(&m, &m2))
		abort();
	gossip_wire_release(o2);
	gossip_wire_release(o);
	rk_buf_destroy(&b);
	return 0;
}
