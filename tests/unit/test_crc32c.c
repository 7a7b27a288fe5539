#include <criterion/criterion.h>
#include <string.h>

#include "crc32c.h"
#include "rng.h"

Test(crc32c, known_vectors)
{
	/* RFC 3720 appendix B.4 and the usual check value. */
	cr_assert_eq(rk_crc32c(0, "123456789", 9), 0xe3069283u);
	uint8_t zeros[32] = {0};
	cr_assert_eq(rk_crc32c(0, zeros, 32), 0x8a9136aau);
	uint8_t ones[32];
	memset(ones, 0xff, 32);
	cr_assert_eq(rk_crc32c(0, ones, 32), 0x62a8ab43u);
}

Test(crc32c, hardware_and_table_paths_agree_and_chain)
{
	struct rk_rng r;
	rk_rng_seed(&r, rk_test_seed("crc32c"));
	uint8_t buf[4096];
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)rk_rng_next(&r);
	for (size_t n = 0; n < 300; n++) {
		size_t off = rk_rng_below(&r, 64);
		size_t len = rk_rng_below(&r, sizeof(buf) - 64);
		uint32_t a = rk_crc32c(0, buf + off, len);
		cr_assert_eq(a, rk_crc32c_sw(0, buf + off, len));
		size_t cut = len ? rk_rng_below(&r, len) : 0;
		uint32_t b = rk_crc32c(rk_crc32c(0, buf + off, cut),
				       buf + off + cut, len - cut);
		cr_assert_eq(a, b);
	}
}
