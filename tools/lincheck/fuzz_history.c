/* fuzz_history.c: libFuzzer target for the history reader and, on what it
 * accepts, the checker and its printers.  Built only by clang (see
 * meson.build); run as ./fuzz_history -max_total_time=60 CORPUS_DIR. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "history.h"
#include "lincheck.h"

/* Small, so a hostile history cannot make one input take seconds. */
#define FUZZ_MAX_STATES 20000

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static FILE *sink;
	if (!sink)
		sink = fopen("/dev/null", "w");
	struct lincheck_history *h = lincheck_history_new("fuzz");
	if (!h)
		return 0;
	const char *p = (const char *)data, *end = p + size;
	int rc = 0;
	while (p < end && !rc) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
		rc = lincheck_history_feed(h, p, len);
		p += len + (nl ? 1 : 0);
	}
	if (!rc && !lincheck_history_finish(h)) {
		struct lincheck_config cfg = {FUZZ_MAX_STATES};
		for (size_t k = 0; k < lincheck_history_nkeys(h); k++) {
			struct lincheck_result *r;
			if (lincheck_check_key(h, k, &cfg, &r))
				continue;
			lincheck_result_print(r, sink, "fuzz");
			lincheck_result_print_json(r, sink, "fuzz");
			lincheck_result_free(r);
		}
	}
	lincheck_history_free(h);
	return 0;
}
