/* The etcd gateway codec of ringkv-bench's --etcd mode: requests as etcd
 * documents them, replies whole, partial and broken, and what a body says.
 * The bytes of the replies are the ones etcd 3.4's gateway sent. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "base64.h"
#include "buf.h"
#include "err.h"
#include "etcd.h"

static char *text(struct rk_buf *b)
{
	static char s[4096];
	size_t n = rk_buf_readable(b);
	cr_assert_lt(n, sizeof(s));
	memcpy(s, rk_buf_rptr(b), n);
	s[n] = 0;
	return s;
}

Test(etcd, base64_matches_rfc4648_vectors)
{
	static const char *const in[] = {"", "f", "fo", "foo", "foob",
					 "fooba", "foobar"};
	static const char *const out[] = {"", "Zg==", "Zm8=", "Zm9v",
					  "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
	for (size_t i = 0; i < 7; i++) {
		char b[16];
		size_t n = rk_base64_encode(b, in[i], strlen(in[i]));
		cr_assert_eq(n, RK_BASE64_LEN(strlen(in[i])));
		cr_assert_eq(n, strlen(out[i]));
		cr_assert_eq(memcmp(b, out[i], n), 0, "%s", in[i]);
	}
}

Test(etcd, requests)
{
	struct rk_buf b;
	rk_buf_init(&b);
	cr_assert_eq(etcd_encode_put(&b, "127.0.0.1:2379", "foo", 3, "bar", 3),
		     0);
	const char *body = "{\"key\":\"Zm9v\",\"value\":\"YmFy\"}";
	char want[512];
	snprintf(want, sizeof(want),
		 "POST /v3/kv/put HTTP/1.1\r\nHost: 127.0.0.1:2379\r\n"
		 "Content-Type: application/json\r\nContent-Length: %zu\r\n"
		 "\r\n%s",
		 strlen(body), body);
	cr_assert_str_eq(text(&b), want);
	rk_buf_clear(&b);
	cr_assert_eq(etcd_encode_range(&b, "h", "foo", 3), 0);
	cr_assert(strstr(text(&b), "POST /v3/kv/range ") == text(&b));
	cr_assert(strstr(text(&b), "Content-Length: 14\r\n\r\n{\"key\":\"Zm9v\"}"));
	rk_buf_clear(&b);
	cr_assert_eq(etcd_encode_cas(&b, "h", "foo", 3, "bar", 3, "baz", 3), 0);
	const char *txn =
	    "{\"compare\":[{\"key\":\"Zm9v\",\"target\":\"VALUE\",\"result\":"
	    "\"EQUAL\",\"value\":\"YmFy\"}],\"success\":[{\"requestPut\":{"
	    "\"key\":\"Zm9v\",\"value\":\"YmF6\"}}]}";
	char *t = text(&b);
	cr_assert(strstr(t, "POST /v3/kv/txn ") == t);
	cr_assert_str_eq(strstr(t, "\r\n\r\n") + 4, txn);
	char len[64];
	snprintf(len, sizeof(len), "Content-Length: %zu\r\n", strlen(txn));
	cr_assert(strstr(t, len), "%s", t);
	rk_buf_destroy(&b);
}

#define HEAD                                                                   \
	"HTTP/1.1 200 OK\r\n"                                                  \
	"Access-Control-Allow-Origin: *\r\n"                                   \
	"Content-Type: application/json\r\n"                                   \
	"Grpc-Metadata-Content-Type: application/grpc\r\n"                     \
	"Date: Sun, 22 Nov 2026 01:54:17 GMT\r\n"

static const char TXN_OK[] =
    HEAD "Content-Length: 187\r\n\r\n"
	 "{\"header\":{\"cluster_id\":\"324952591200643719\",\"member_id\":"
	 "\"3319814642761637952\",\"revision\":\"3\",\"raft_term\":\"2\"},"
	 "\"succeeded\":true,\"responses\":[{\"response_put\":{\"header\":{"
	 "\"revision\":\"3\"}}}]}";
static const char TXN_FAILED[] =
    HEAD "Content-Length: 111\r\n\r\n"
	 "{\"header\":{\"cluster_id\":\"324952591200643719\",\"member_id\":"
	 "\"3319814642761637952\",\"revision\":\"3\",\"raft_term\":\"2\"}}";
static const char RANGE_FOUND[] =
    HEAD "Content-Length: 216\r\n\r\n"
	 "{\"header\":{\"cluster_id\":\"324952591200643719\",\"member_id\":"
	 "\"3319814642761637952\",\"revision\":\"3\",\"raft_term\":\"2\"},"
	 "\"kvs\":[{\"key\":\"Zm9v\",\"create_revision\":\"2\",\"mod_revision\":"
	 "\"3\",\"version\":\"2\",\"value\":\"YmFy\"}],\"count\":\"1\"}";

Test(etcd, replies_and_what_they_say)
{
	struct etcd_reply r;
	cr_assert_eq(etcd_parse_reply(TXN_OK, strlen(TXN_OK), &r),
		     (long)strlen(TXN_OK));
	cr_assert_eq(r.status, 200);
	cr_assert_eq(r.body_len, 187);
	cr_assert(etcd_txn_succeeded(&r));
	cr_assert_eq(etcd_parse_reply(TXN_FAILED, strlen(TXN_FAILED), &r),
		     (long)strlen(TXN_FAILED));
	cr_assert_not(etcd_txn_succeeded(&r), "false is left out");
	cr_assert_not(etcd_range_found(&r), "a missing key has no kvs");
	cr_assert_eq(etcd_parse_reply(RANGE_FOUND, strlen(RANGE_FOUND), &r),
		     (long)strlen(RANGE_FOUND));
	cr_assert(etcd_range_found(&r));
	/* Two pipelined replies: the first, then the second. */
	char two[1024];
	snprintf(two, sizeof(two), "%s%s", TXN_FAILED, TXN_OK);
	long u = etcd_parse_reply(two, strlen(two), &r);
	cr_assert_eq(u, (long)strlen(TXN_FAILED));
	cr_assert_eq(etcd_parse_reply(two + u, strlen(two) - (size_t)u, &r),
		     (long)strlen(TXN_OK));
	const char *err = "HTTP/1.1 503 Service Unavailable\r\n"
			  "Content-Length: 2\r\n\r\n{}";
	cr_assert_eq(etcd_parse_reply(err, strlen(err), &r), (long)strlen(err));
	cr_assert_eq(r.status, 503);
}

Test(etcd, every_prefix_is_incomplete)
{
	struct etcd_reply r;
	for (size_t n = 0; n < strlen(RANGE_FOUND); n++)
		cr_assert_eq(etcd_parse_reply(RANGE_FOUND, n, &r), 0,
			     "prefix of %zu bytes", n);
}

Test(etcd, broken_replies_are_refused)
{
	static const char *const bad[] = {
	    "HTTP/1.1 200 OK\r\n\r\n",			    /* no length */
	    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
	    "HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
	    "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999\r\n\r\n",
	    "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n",
	    "HTTP/1.1 200 OK\r\nno colon here\r\nContent-Length: 0\r\n\r\n",
	    "SPDY/9 200 OK\r\nContent-Length: 0\r\n\r\n",
	    "HTTP/1.1 2x0 OK\r\nContent-Length: 0\r\n\r\n",
	    "HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n", /* bare LF */
	};
	struct etcd_reply r;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(etcd_parse_reply(bad[i], strlen(bad[i]), &r),
			     RK_EPROTOCOL, "%s", bad[i]);
	/* A header block that never ends is refused, not waited for. */
	static char big[ETCD_MAX_HEAD + 64];
	memset(big, 'a', sizeof(big));
	memcpy(big, "HTTP/1.1 200 OK\r\nX: ", 20);
	cr_assert_eq(etcd_parse_reply(big, sizeof(big), &r), RK_EPROTOCOL);
}
