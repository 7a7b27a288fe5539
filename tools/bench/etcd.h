/* etcd.h: just enough of etcd's v3 HTTP/JSON gateway for ringkv-bench to
 * drive an etcd cluster with the same engine, connection counts and key
 * space as ringkv (bench/compare, row 3).
 *
 * Why the gateway: etcd's own load generator (tools/benchmark, gRPC) is
 * not packaged by Debian, and gRPC means HTTP/2.  Every etcd server
 * serves the same KV API as JSON over HTTP/1.1 on its client port
 * (POST /v3/kv/put, /v3/kv/range, /v3/kv/txn; keys and values base64).
 * The gateway costs etcd CPU that a gRPC client would not: bench/README.md
 * says so next to the figures.
 *
 * Requests are HTTP/1.1 with keep-alive; replies come back in order on a
 * connection (HTTP/1.1 pipelining, which Go's server honours), so the
 * bench matches them against a FIFO as it does RESP replies.
 *
 * Pure: no sockets, no clock.  The reply parser trusts no length it reads:
 * a reply is whole and well-formed, "need more bytes", or RK_EPROTOCOL.
 */
#ifndef RK_BENCH_ETCD_H
#define RK_BENCH_ETCD_H

#include <stddef.h>

#include "buf.h"

/* The largest reply header block and body the parser accepts. */
#define ETCD_MAX_HEAD 8192
#define ETCD_MAX_BODY (16u << 20)

/* A linearizable get: POST /v3/kv/range {"key": k}. */
int etcd_encode_range(struct rk_buf *out, const char *host, const void *key,
		      size_t klen);

/* POST /v3/kv/put {"key": k, "value": v}. */
int etcd_encode_put(struct rk_buf *out, const char *host, const void *key,
		    size_t klen, const void *val, size_t vlen);

/* Compare-and-swap as an etcd user writes it: one txn, compare the value
 * with expected, on success put val. */
int etcd_encode_cas(struct rk_buf *out, const char *host, const void *key,
		    size_t klen, const void *expected, size_t elen,
		    const void *val, size_t vlen);

/* One reply; body borrows from the parsed bytes. */
struct etcd_reply {
	int status;       /* HTTP status code */
	const char *body; /* not NUL-terminated */
	size_t body_len;
};

/* Parses one HTTP/1.1 reply from p[0, n).  Returns the bytes it took
 * (> 0), 0 when the reply is not complete yet, or RK_EPROTOCOL when the
 * bytes are not a reply the bench understands (not HTTP/1.1, no
 * Content-Length -- chunked replies are refused --, oversized). */
long etcd_parse_reply(const char *p, size_t n, struct etcd_reply *r);

/* What a 200 body says.  The gateway leaves false and empty fields out. */
int etcd_range_found(const struct etcd_reply *r);  /* "kvs" present */
int etcd_txn_succeeded(const struct etcd_reply *r); /* "succeeded":true */

#endif
