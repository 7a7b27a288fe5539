/* fuzz_tokens.c: libFuzzer target for the token decoder (TESTING.md).
 * Any input: no sanitizer report; an accepted input decodes to strictly
 * ascending tokens and re-encodes to exactly the same bytes, since the
 * encoding of a token set is unique. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ring.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint64_t tok[RING_TOKENS_MAX];
	size_t n;
	if (ring_tokens_decode(data, size, tok, RING_TOKENS_MAX, &n) != 0)
		return 0;
	for (size_t i = 1; i < n; i++)
		if (tok[i - 1] >= tok[i])
			abort();
	size_t len = ring_tokens_encoded_size(n);
	uint8_t *buf = malloc(len);
	if (!buf || ring_tokens_encode(tok, n, buf, len, &len) != 0 ||
	    len != size || memcmp(buf, data, size) != 0)
		abort();
	free(buf);
	return 0;
}
