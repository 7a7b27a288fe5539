#include "addr.h"

#include <stdlib.h>
#include <string.h>

#include "err.h"

int rk_addr_split(const char *s, char *host, size_t hostlen, uint16_t *port,
		  int allow_zero)
{
	const char *colon;
	const char *h = s;
	size_t hl;
	if (s[0] == '[') {
		const char *close = strchr(s, ']');
		if (!close || close[1] != ':')
			return RK_EINVALID;
		h = s + 1;
		hl = (size_t)(close - h);
		colon = close + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon || strchr(s, ':') != colon)
			return RK_EINVALID;
		hl = (size_t)(colon - s);
	}
	if (hl == 0 || hl >= hostlen)
		return RK_EINVALID;
	const char *p = colon + 1;
	if (!*p || strlen(p) > 5)
		return RK_EINVALID;
	for (const char *q = p; *q; q++)
		if (*q < '0' || *q > '9')
			return RK_EINVALID;
	long v = strtol(p, NULL, 10);
	if (v > 65535 || (v == 0 && !allow_zero))
		return RK_EINVALID;
	memcpy(host, h, hl);
	host[hl] = 0;
	*port = (uint16_t)v;
	return 0;
}
