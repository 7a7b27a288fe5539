#include "resp.h"

#include <stdlib.h>
#include <string.h>

#include "err.h"

/* Nesting deeper than this in a setup reply is refused rather than
 * recursed into. */
#define MAX_DEPTH 8

/* Finds the CRLF ending the line that starts at p; returns its offset or
 * -1 when not there yet. */
static long line_end(const char *p, size_t n)
{
	const char *cr = memchr(p, '\r', n);
	if (!cr || (size_t)(cr - p) + 1 >= n)
		return -1;
	return (long)(cr - p);
}

/* Parses a signed decimal of exactly len bytes. */
static int parse_int(const char *p, size_t len, int64_t *out)
{
	if (len == 0 || len > 20)
		return RK_EPROTOCOL;
	int neg = 0;
	size_t i = 0;
	if (p[0] == '-') {
		neg = 1;
		i = 1;
		if (len == 1)
			return RK_EPROTOCOL;
	}
	uint64_t v = 0;
	for (; i < len; i++) {
		if (p[i] < '0' || p[i] > '9')
			return RK_EPROTOCOL;
		uint64_t d = (uint64_t)(p[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return RK_EPROTOCOL;
		v = v * 10 + d;
	}
	if (v > (uint64_t)INT64_MAX)
		return RK_EPROTOCOL;
	*out = neg ? -(int64_t)v : (int64_t)v;
	return 0;
}

long resp_parse(const char *p, size_t n, struct resp_reply *r)
{
	if (n < 1)
		return 0;
	long le = line_end(p + 1, n - 1);
	if (le < 0)
		return n > 64 * 1024 ? RK_EPROTOCOL : 0;
	const char *line = p + 1;
	size_t ll = (size_t)le;
	if (line[ll + 1] != '\n')
		return RK_EPROTOCOL;
	size_t head = 1 + ll + 2;
	memset(r, 0, sizeof(*r));
	r->type = p[0];
	switch (p[0]) {
	case '+':
	case '-':
		r->str = line;
		r->len = ll;
		return (long)head;
	case ':':
		if (parse_int(line, ll, &r->integer))
			return RK_EPROTOCOL;
		return (long)head;
	case '$': {
		int64_t bl;
		if (parse_int(line, ll, &bl))
			return RK_EPROTOCOL;
		if (bl == -1) {
			r->is_null = 1;
			return (long)head;
		}
		if (bl < 0 || bl > (int64_t)RESP_MAX_BULK)
			return RK_EPROTOCOL;
		if (n - head < (size_t)bl + 2)
			return 0;
		if (p[head + (size_t)bl] != '\r' ||
		    p[head + (size_t)bl + 1] != '\n')
			return RK_EPROTOCOL;
		r->str = p + head;
		r->len = (size_t)bl;
		return (long)(head + (size_t)bl + 2);
	}
	default:
		return RK_EPROTOCOL;
	}
}

void resp_value_free(struct resp_value *v)
{
	if (!v)
		return;
	free(v->str);
	for (size_t i = 0; i < v->n; i++)
		resp_value_free(&v->elems[i]);
	free(v->elems);
	memset(v, 0, sizeof(*v));
}

static long parse_value(const char *p, size_t n, struct resp_value *v,
			int depth)
{
	memset(v, 0, sizeof(*v));
	if (n < 1)
		return 0;
	if (p[0] != '*') {
		struct resp_reply r;
		long used = resp_parse(p, n, &r);
		if (used <= 0)
			return used;
		v->type = r.type;
		v->is_null = r.is_null;
		v->integer = r.integer;
		if (r.type != ':' && !r.is_null) {
			v->str = malloc(r.len + 1);
			if (!v->str)
				return RK_ENOMEM;
			memcpy(v->str, r.str, r.len);
			v->str[r.len] = 0;
			v->len = r.len;
		}
		return used;
	}
	if (depth >= MAX_DEPTH)
		return RK_EPROTOCOL;
	long le = line_end(p + 1, n - 1);
	if (le < 0)
		return n > 64 * 1024 ? RK_EPROTOCOL : 0;
	if (p[1 + le + 1] != '\n')
		return RK_EPROTOCOL;
	int64_t count;
	if (parse_int(p + 1, (size_t)le, &count))
		return RK_EPROTOCOL;
	v->type = '*';
	size_t off = 1 + (size_t)le + 2;
	if (count == -1) {
		v->is_null = 1;
		return (long)off;
	}
	if (count < 0 || count > (int64_t)RESP_MAX_ARRAY)
		return RK_EPROTOCOL;
	if (count == 0)
		return (long)off;
	v->elems = calloc((size_t)count, sizeof(*v->elems));
	if (!v->elems)
		return RK_ENOMEM;
	for (int64_t i = 0; i < count; i++) {
		long used = parse_value(p + off, n - off, &v->elems[i],
					depth + 1);
		v->n = (size_t)i + 1;
		if (used <= 0) {
			resp_value_free(v);
			return used;
		}
		off += (size_t)used;
	}
	return (long)off;
}

long resp_parse_value(const char *p, size_t n, struct resp_value *v)
{
	return parse_value(p, n, v, 0);
}

/* Writes v in decimal at p; returns the digits written (at most 20). */
static size_t put_u64(char *p, uint64_t v)
{
	char tmp[20];
	size_t n = 0;
	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	for (size_t i = 0; i < n; i++)
		p[i] = tmp[n - 1 - i];
	return n;
}

int resp_encode(struct rk_buf *out, int argc, const char *const *argv,
		const size_t *lens)
{
	size_t need = 1 + 20 + 2;
	for (int i = 0; i < argc; i++)
		need += 1 + 20 + 2 + lens[i] + 2;
	int rc = rk_buf_reserve(out, need);
	if (rc)
		return rc;
	char *p = (char *)out->data + out->len;
	char *start = p;
	*p++ = '*';
	p += put_u64(p, (uint64_t)argc);
	*p++ = '\r';
	*p++ = '\n';
	for (int i = 0; i < argc; i++) {
		*p++ = '$';
		p += put_u64(p, lens[i]);
		*p++ = '\r';
		*p++ = '\n';
		memcpy(p, argv[i], lens[i]);
		p += lens[i];
		*p++ = '\r';
		*p++ = '\n';
	}
	out->len += (size_t)(p - start);
	return 0;
}

/* CRC16-CCITT, polynomial 0x1021, one entry per byte value. */
static const uint16_t crc16_table[256] = {
	0x0000, 0x1021, 0x2042, 0x3063, 0x4084, 0x50a5, 0x60c6, 0x70e7,
	0x8108, 0x9129, 0xa14a, 0xb16b, 0xc18c, 0xd1ad, 0xe1ce, 0xf1ef,
	0x1231, 0x0210, 0x3273, 0x2252, 0x52b5, 0x4294, 0x72f7, 0x62d6,
	0x9339, 0x8318, 0xb37b, 0xa35a, 0xd3bd, 0xc39c, 0xf3ff, 0xe3de,
	0x2462, 0x3443, 0x0420, 0x1401, 0x64e6, 0x74c7, 0x44a4, 0x5485,
	0xa56a, 0xb54b, 0x8528, 0x9509, 0xe5ee, 0xf5cf, 0xc5ac, 0xd58d,
	0x3653, 0x2672, 0x1611, 0x0630, 0x76d7, 0x66f6, 0x5695, 0x46b4,
	0xb75b, 0xa77a, 0x9719, 0x8738, 0xf7df, 0xe7fe, 0xd79d, 0xc7bc,
	0x48c4, 0x58e5, 0x6886, 0x78a7, 0x0840, 0x1861, 0x2802, 0x3823,
	0xc9cc, 0xd9ed, 0xe98e, 0xf9af, 0x8948, 0x9969, 0xa90a, 0xb92b,
	0x5af5, 0x4ad4, 0x7ab7, 0x6a96, 0x1a71, 0x0a50, 0x3a33, 0x2a12,
	0xdbfd, 0xcbdc, 0xfbbf, 0xeb9e, 0x9b79, 0x8b58, 0xbb3b, 0xab1a,
	0x6ca6, 0x7c87, 0x4ce4, 0x5cc5, 0x2c22, 0x3c03, 0x0c60, 0x1c41,
	0xedae, 0xfd8f, 0xcdec, 0xddcd, 0xad2a, 0xbd0b, 0x8d68, 0x9d49,
	0x7e97, 0x6eb6, 0x5ed5, 0x4ef4, 0x3e13, 0x2e32, 0x1e51, 0x0e70,
	0xff9f, 0xefbe, 0xdfdd, 0xcffc, 0xbf1b, 0xaf3a, 0x9f59, 0x8f78,
	0x9188, 0x81a9, 0xb1ca, 0xa1eb, 0xd10c, 0xc12d, 0xf14e, 0xe16f,
	0x1080, 0x00a1, 0x30c2, 0x20e3, 0x5004, 0x4025, 0x7046, 0x6067,
	0x83b9, 0x9398, 0xa3fb, 0xb3da, 0xc33d, 0xd31c, 0xe37f, 0xf35e,
	0x02b1, 0x1290, 0x22f3, 0x32d2, 0x4235, 0x5214, 0x6277, 0x7256,
	0xb5ea, 0xa5cb, 0x95a8, 0x8589, 0xf56e, 0xe54f, 0xd52c, 0xc50d,
	0x34e2, 0x24c3, 0x14a0, 0x0481, 0x7466, 0x6447, 0x5424, 0x4405,
	0xa7db, 0xb7fa, 0x8799, 0x97b8, 0xe75f, 0xf77e, 0xc71d, 0xd73c,
	0x26d3, 0x36f2, 0x0691, 0x16b0, 0x6657, 0x7676, 0x4615, 0x5634,
	0xd94c, 0xc96d, 0xf90e, 0xe92f, 0x99c8, 0x89e9, 0xb98a, 0xa9ab,
	0x5844, 0x4865, 0x7806, 0x6827, 0x18c0, 0x08e1, 0x3882, 0x28a3,
	0xcb7d, 0xdb5c, 0xeb3f, 0xfb1e, 0x8bf9, 0x9bd8, 0xabbb, 0xbb9a,
	0x4a75, 0x5a54, 0x6a37, 0x7a16, 0x0af1, 0x1ad0, 0x2ab3, 0x3a92,
	0xfd2e, 0xed0f, 0xdd6c, 0xcd4d, 0xbdaa, 0xad8b, 0x9de8, 0x8dc9,
	0x7c26, 0x6c07, 0x5c64, 0x4c45, 0x3ca2, 0x2c83, 0x1ce0, 0x0cc1,
	0xef1f, 0xff3e, 0xcf5d, 0xdf7c, 0xaf9b, 0xbfba, 0x8fd9, 0x9ff8,
	0x6e17, 0x7e36, 0x4e55, 0x5e74, 0x2e93, 0x3eb2, 0x0ed1, 0x1ef0,
};

uint16_t resp_crc16(const void *data, size_t n)
{
	const uint8_t *p = data;
	uint16_t crc = 0;
	for (size_t i = 0; i < n; i++)
		crc = (uint16_t)((crc << 8) ^
				 crc16_table[((crc >> 8) ^ p[i]) & 0xff]);
	return crc;
}

unsigned resp_key_slot(const void *key, size_t len)
{
	const char *k = key;
	const char *open = memchr(k, '{', len);
	if (open) {
		size_t rest = len - (size_t)(open - k) - 1;
		const char *close = memchr(open + 1, '}', rest);
		if (close && close > open + 1) {
			size_t tag = (size_t)(close - open - 1);
			return resp_crc16(open + 1, tag) &
			       (RESP_CLUSTER_SLOTS - 1);
		}
	}
	return resp_crc16(k, len) & (RESP_CLUSTER_SLOTS - 1);
}
