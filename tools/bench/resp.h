/* resp.h: just enough of Redis's RESP2 protocol for ringkv-bench to drive
 * redis-server with the same engine, connection counts and key space as
 * ringkv: command encoding, a non-allocating reply parser for the request
 * path, an allocating one for setup replies (CLUSTER SLOTS), and Redis
 * Cluster's key -> hash slot function.
 *
 * Pure: no sockets, no clock.  The parsers trust no length they read: a
 * reply is either whole and well-formed, or "need more bytes", or
 * RK_EPROTOCOL.
 */
#ifndef RK_BENCH_RESP_H
#define RK_BENCH_RESP_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/* Redis Cluster's slot count (fixed by Redis). */
#define RESP_CLUSTER_SLOTS 16384

/* The largest bulk string or array the parsers accept (Redis's own limit
 * for a bulk string is 512 MB). */
#define RESP_MAX_BULK (512u << 20)
#define RESP_MAX_ARRAY (1u << 20)

/* One reply that is not an array; str borrows from the parsed bytes. */
struct resp_reply {
	char type;        /* '+', '-', ':' or '$' */
	int is_null;      /* "$-1": a GET of a missing key */
	int64_t integer;  /* ':' */
	const char *str;  /* '+', '-', '$': not NUL-terminated */
	size_t len;
};

/* Parses one reply from p[0, n).  Returns the bytes it took (> 0), 0 when
 * the reply is not complete yet, or RK_EPROTOCOL when the bytes are not
 * RESP or the reply is an array. */
long resp_parse(const char *p, size_t n, struct resp_reply *r);

/* A parsed reply of any type, arrays included (setup only). */
struct resp_value {
	char type;                 /* '+', '-', ':', '$' or '*' */
	int is_null;
	int64_t integer;
	char *str;                 /* owned, NUL-terminated; NULL for ':' '*' */
	size_t len;
	struct resp_value *elems;  /* '*': owned array of n */
	size_t n;
};

/* Parses one reply of any type.  Returns bytes taken (> 0), 0 when
 * incomplete, RK_EPROTOCOL or RK_ENOMEM.  On > 0 the caller frees *v with
 * resp_value_free. */
long resp_parse_value(const char *p, size_t n, struct resp_value *v);
void resp_value_free(struct resp_value *v);

/* Appends a command of argc arguments (argv[i] of lens[i] bytes) as a RESP
 * array of bulk strings.  Returns 0 or RK_ENOMEM. */
int resp_encode(struct rk_buf *out, int argc, const char *const *argv,
		const size_t *lens);

/* CRC16-CCITT (XModem), Redis Cluster's key hash. */
uint16_t resp_crc16(const void *p, size_t n);

/* The cluster slot of a key: CRC16 of the key, or of the part between the
 * first '{' and the next '}' when that part is not empty (a hash tag). */
unsigned resp_key_slot(const void *key, size_t len);

#endif
