#include "base64.h"

#include <stdint.h>

size_t rk_base64_encode(char *out, const void *in, size_t n)
{
	static const char tb[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const uint8_t *p = in;
	char *o = out;
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16;
		if (i + 1 < n)
			v |= (uint32_t)p[i + 1] << 8;
		if (i + 2 < n)
			v |= p[i + 2];
		*o++ = tb[(v >> 18) & 63];
		*o++ = tb[(v >> 12) & 63];
		*o++ = i + 1 < n ? tb[(v >> 6) & 63] : '=';
		*o++ = i + 2 < n ? tb[v & 63] : '=';
	}
	return (size_t)(o - out);
}
