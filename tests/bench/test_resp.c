/* The RESP codec of ringkv-bench's Redis mode: replies whole, partial and
 * broken, command encoding, and Redis Cluster's key slots. */
#include <criterion/criterion.h>
#include <string.h>

#include "buf.h"
#include "err.h"
#include "resp.h"

static long parse(const char *s, struct resp_reply *r)
{
	return resp_parse(s, strlen(s), r);
}

Test(resp, scalar_replies)
{
	struct resp_reply r;
	cr_assert_eq(parse("+OK\r\n", &r), 5);
	cr_assert_eq(r.type, '+');
	cr_assert_eq(r.len, 2);
	cr_assert_eq(memcmp(r.str, "OK", 2), 0);
	cr_assert_eq(parse(":-42\r\n", &r), 6);
	cr_assert_eq(r.integer, -42);
	cr_assert_eq(parse("$5\r\nhello\r\n", &r), 11);
	cr_assert_eq(r.len, 5);
	cr_assert_eq(memcmp(r.str, "hello", 5), 0);
	cr_assert_eq(parse("$-1\r\n", &r), 5);
	cr_assert(r.is_null);
	cr_assert_eq(parse("$0\r\n\r\n", &r), 6);
	cr_assert_eq(r.len, 0);
	cr_assert(!r.is_null);
	cr_assert_eq(parse("-MOVED 3999 127.0.0.1:6381\r\n", &r), 28);
	cr_assert_eq(r.type, '-');
}

Test(resp, every_prefix_is_incomplete)
{
	const char *s = "$10\r\n0123456789\r\n";
	struct resp_reply r;
	for (size_t n = 0; n < strlen(s); n++)
		cr_assert_eq(resp_parse(s, n, &r), 0, "prefix %zu", n);
	cr_assert_eq(resp_parse(s, strlen(s), &r), (long)strlen(s));
}

Test(resp, malformed_is_an_error)
{
	struct resp_reply r;
	cr_assert_eq(parse("?what\r\n", &r), RK_EPROTOCOL);
	cr_assert_eq(parse(":12x\r\n", &r), RK_EPROTOCOL);
	cr_assert_eq(parse("$3\r\nabcd\r\n", &r), RK_EPROTOCOL);
	cr_assert_eq(parse("$-2\r\n", &r), RK_EPROTOCOL);
	cr_assert_eq(parse("+OK\rX", &r), RK_EPROTOCOL);
	cr_assert_eq(parse("*1\r\n:1\r\n", &r), RK_EPROTOCOL);
	cr_assert_eq(parse(":99999999999999999999999\r\n", &r), RK_EPROTOCOL);
}

Test(resp, nested_values)
{
	const char *s = "*2\r\n*3\r\n:0\r\n:5460\r\n*2\r\n$9\r\n127.0.0.1\r\n"
			":7000\r\n$-1\r\n";
	struct resp_value v;
	cr_assert_eq(resp_parse_value(s, strlen(s), &v), (long)strlen(s));
	cr_assert_eq(v.type, '*');
	cr_assert_eq(v.n, 2);
	cr_assert_eq(v.elems[0].n, 3);
	cr_assert_eq(v.elems[0].elems[1].integer, 5460);
	cr_assert_str_eq(v.elems[0].elems[2].elems[0].str, "127.0.0.1");
	cr_assert(v.elems[1].is_null);
	resp_value_free(&v);
	for (size_t n = 0; n < strlen(s); n++) {
		cr_assert_eq(resp_parse_value(s, n, &v), 0, "prefix %zu", n);
	}
	/* Deep nesting is refused, not recursed into. */
	char deep[64] = "";
	for (int i = 0; i < 12; i++)
		strcat(deep, "*1\r\n");
	strcat(deep, ":1\r\n");
	cr_assert_eq(resp_parse_value(deep, strlen(deep), &v), RK_EPROTOCOL);
}

Test(resp, encode_command)
{
	struct rk_buf b;
	rk_buf_init(&b);
	const char *argv[] = {"SET", "key:000000000001", "v"};
	size_t lens[] = {3, 16, 1};
	cr_assert_eq(resp_encode(&b, 3, argv, lens), 0);
	const char *want = "*3\r\n$3\r\nSET\r\n$16\r\nkey:000000000001\r\n"
			   "$1\r\nv\r\n";
	cr_assert_eq(b.len, strlen(want));
	cr_assert_eq(memcmp(b.data, want, b.len), 0);
	rk_buf_destroy(&b);
}

Test(resp, cluster_key_slots)
{
	/* Values from the Redis Cluster specification. */
	cr_assert_eq(resp_crc16("123456789", 9), 0x31c3);
	cr_assert_eq(resp_key_slot("foo", 3), 12182);
	cr_assert_eq(resp_key_slot("{user1000}.following", 20),
		     resp_key_slot("user1000", 8));
	cr_assert_eq(resp_key_slot("foo{}{bar}", 10),
		     resp_crc16("foo{}{bar}", 10) & 16383);
	cr_assert_eq(resp_key_slot("foo{{bar}}zap", 13),
		     resp_key_slot("{bar", 4));
}
