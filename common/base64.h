/* base64.h: RFC 4648 base64 (standard alphabet, padded), encode only:
 * JSON carries bytes this way (the CLI's --json output, the etcd HTTP
 * gateway ringkv-bench drives). */
#ifndef RK_BASE64_H
#define RK_BASE64_H

#include <stddef.h>

/* Bytes rk_base64_encode writes for n input bytes. */
#define RK_BASE64_LEN(n) (((n) + 2) / 3 * 4)

/* Writes the encoding of in[0, n) to out (RK_BASE64_LEN(n) bytes, not
 * NUL-terminated) and returns its length. */
size_t rk_base64_encode(char *out, const void *in, size_t n);

#endif
