/* fuzz_counter.c: libFuzzer target for the counter decoders: crdt states
 * and deltas (common/crdt.c), window batches (repl/counter.c), and merging
 * counter bytes as the store and replicas do.
 *
 * Each input is tried as it is, and with its CRC-32C trailer fixed (else
 * almost every mutation dies at the checksum and the parser behind it is
 * never reached).  Invariants per input: no sanitizer report; whatever
 * decodes re-encodes to the same bytes; merging what decodes into a state
 * is idempotent (a second merge changes nothing). */
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "counter.h"
#include "crc32c.h"
#include "crdt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void one(const uint8_t *p, size_t n)
{
	struct crdt_counter *c, *m;
	if (crdt_new(0, &c) || crdt_new(0, &m))
		abort();
	if (crdt_decode(c, p, n) == 0) {
		uint8_t *b = malloc(crdt_encoded_size(c));
		crdt_encode(c, b);
		if (crdt_encoded_size(c) != n || memcmp(b, p, n))
			abort(); /* a canonical encoding */
		free(b);
	}
	struct crdt_delta d;
	if (crdt_delta_decode(p, n, &d) == 0) {
		uint8_t b[CRDT_DELTA_SIZE];
		crdt_delta_encode(&d, b);
		if (memcmp(b, p, n))
			abort();
	}
	uint64_t wm;
	const uint8_t *ids;
	uint32_t k;
	if (counter_window_decode(p, n, &wm, &ids, &k) == 0 &&
	    counter_window_size(k) != n)
		abort();
	if (counter_merge_bytes(m, p, n, NULL) >= 0 &&
	    counter_merge_bytes(m, p, n, NULL) != 0)
		abort(); /* idempotent */
	int64_t v;
	int found;
	counter_value_of(p, n, &v, &found);
	crdt_free(c);
	crdt_free(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 1 << 17)
		return 0;
	one(data, size);
	if (size >= 8) {
		uint8_t *b = malloc(size);
		memcpy(b, data, size);
		rk_put_le32(b + size - 4, rk_crc32c(0, b, size - 4));
		one(b, size);
		free(b);
	}
	return 0;
}
