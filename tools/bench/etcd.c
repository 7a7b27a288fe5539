#include "etcd.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "base64.h"
#include "err.h"

/* A JSON body is a list of pieces: literal text, or "name":"<base64>". */
struct piece {
	const char *text; /* literal, or the field name when p is set */
	const void *p;    /* bytes of a base64 field, or NULL */
	size_t n;
};

static size_t piece_len(const struct piece *pc)
{
	size_t t = strlen(pc->text);
	return pc->p || pc->n ? t + 5 + RK_BASE64_LEN(pc->n) : t;
}

static char *piece_put(char *o, const struct piece *pc)
{
	size_t t = strlen(pc->text);
	if (!pc->p && !pc->n) {
		memcpy(o, pc->text, t);
		return o + t;
	}
	*o++ = '"';
	memcpy(o, pc->text, t);
	o += t;
	memcpy(o, "\":\"", 3);
	o += 3;
	o += rk_base64_encode(o, pc->p, pc->n);
	*o++ = '"';
	return o;
}

/* Appends a POST of the body made of np pieces to path. */
static int post(struct rk_buf *out, const char *host, const char *path,
		const struct piece *pcs, size_t np)
{
	size_t blen = 0;
	for (size_t i = 0; i < np; i++)
		blen += piece_len(&pcs[i]);
	char head[512];
	int n = snprintf(head, sizeof(head),
			 "POST %s HTTP/1.1\r\nHost: %s\r\n"
			 "Content-Type: application/json\r\n"
			 "Content-Length: %zu\r\n\r\n",
			 path, host, blen);
	if (n < 0 || (size_t)n >= sizeof(head))
		return RK_EINVALID;
	if (rk_buf_reserve(out, (size_t)n + blen))
		return RK_ENOMEM;
	char *o = (char *)out->data + out->len;
	memcpy(o, head, (size_t)n);
	o += n;
	for (size_t i = 0; i < np; i++)
		o = piece_put(o, &pcs[i]);
	out->len += (size_t)n + blen;
	return 0;
}

#define LIT(s) {(s), NULL, 0}
#define B64(name, p, n) {(name), (p), (n)}
#define POST(out, host, path, ...)                                             \
	do {                                                                   \
		const struct piece pcs_[] = {__VA_ARGS__};                     \
		return post(out, host, path, pcs_,                             \
			    sizeof(pcs_) / sizeof(pcs_[0]));                   \
	} while (0)

int etcd_encode_range(struct rk_buf *out, const char *host, const void *key,
		      size_t klen)
{
	POST(out, host, "/v3/kv/range", LIT("{"), B64("key", key, klen),
	     LIT("}"));
}

int etcd_encode_put(struct rk_buf *out, const char *host, const void *key,
		    size_t klen, const void *val, size_t vlen)
{
	POST(out, host, "/v3/kv/put", LIT("{"), B64("key", key, klen), LIT(","),
	     B64("value", val, vlen), LIT("}"));
}

int etcd_encode_cas(struct rk_buf *out, const char *host, const void *key,
		    size_t klen, const void *expected, size_t elen,
		    const void *val, size_t vlen)
{
	POST(out, host, "/v3/kv/txn", LIT("{\"compare\":[{"),
	     B64("key", key, klen),
	     LIT(",\"target\":\"VALUE\",\"result\":\"EQUAL\","),
	     B64("value", expected, elen),
	     LIT("}],\"success\":[{\"requestPut\":{"), B64("key", key, klen),
	     LIT(","), B64("value", val, vlen), LIT("}}]}"));
}

/* Finds "\r\n\r\n" in p[0, n); returns the offset after it, or 0. */
static size_t head_end(const char *p, size_t n)
{
	for (size_t i = 3; i < n; i++)
		if (p[i] == '\n' && p[i - 1] == '\r' && p[i - 2] == '\n' &&
		    p[i - 3] == '\r')
			return i + 1;
	return 0;
}

/* Parses an unsigned decimal from p[0, n), skipping blanks around it. */
static int parse_len(const char *p, size_t n, uint64_t *out)
{
	size_t i = 0;
	while (i < n && (p[i] == ' ' || p[i] == '\t'))
		i++;
	uint64_t v = 0;
	size_t digits = 0;
	for (; i < n && p[i] >= '0' && p[i] <= '9'; i++, digits++) {
		if (v > ETCD_MAX_BODY)
			return RK_EPROTOCOL;
		v = v * 10 + (uint64_t)(p[i] - '0');
	}
	while (i < n && (p[i] == ' ' || p[i] == '\t'))
		i++;
	if (!digits || i != n)
		return RK_EPROTOCOL;
	*out = v;
	return 0;
}

long etcd_parse_reply(const char *p, size_t n, struct etcd_reply *r)
{
	size_t scan = n < ETCD_MAX_HEAD ? n : ETCD_MAX_HEAD;
	size_t hl = head_end(p, scan);
	if (!hl)
		return n >= ETCD_MAX_HEAD ? RK_EPROTOCOL : 0;
	/* Status line: HTTP/1.1 NNN reason */
	if (hl < 14 || memcmp(p, "HTTP/1.", 7) != 0 || p[8] != ' ' ||
	    p[9] < '1' || p[9] > '5' || p[10] < '0' || p[10] > '9' ||
	    p[11] < '0' || p[11] > '9' || (p[12] != ' ' && p[12] != '\r'))
		return RK_EPROTOCOL;
	int status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
	uint64_t clen = 0;
	int have_len = 0;
	const char *line = (const char *)memchr(p, '\n', hl) + 1;
	if (line[-2] != '\r')
		return RK_EPROTOCOL;
	const char *end = p + hl - 2; /* the blank line */
	while (line < end) {
		const char *nl = memchr(line, '\n', (size_t)(end - line) + 1);
		if (!nl || nl == line || nl[-1] != '\r')
			return RK_EPROTOCOL;
		size_t len = (size_t)(nl - 1 - line);
		const char *colon = memchr(line, ':', len);
		if (!colon)
			return RK_EPROTOCOL;
		size_t name = (size_t)(colon - line);
		const char *v = colon + 1;
		size_t vlen = len - name - 1;
		if (name == 14 && strncasecmp(line, "Content-Length", 14) == 0) {
			if (have_len || parse_len(v, vlen, &clen))
				return RK_EPROTOCOL;
			have_len = 1;
		} else if (name == 17 &&
			   strncasecmp(line, "Transfer-Encoding", 17) == 0) {
			return RK_EPROTOCOL; /* chunked: not needed, refused */
		}
		line = nl + 1;
	}
	if (!have_len || clen > ETCD_MAX_BODY)
		return RK_EPROTOCOL;
	if (n - hl < clen)
		return 0;
	r->status = status;
	r->body = p + hl;
	r->body_len = (size_t)clen;
	return (long)(hl + clen);
}

static int body_has(const struct etcd_reply *r, const char *needle)
{
	return memmem(r->body, r->body_len, needle, strlen(needle)) != NULL;
}

int etcd_range_found(const struct etcd_reply *r)
{
	return body_has(r, "\"kvs\":[");
}

int etcd_txn_succeeded(const struct etcd_reply *r)
{
	return body_has(r, "\"succeeded\":true");
}
