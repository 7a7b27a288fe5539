/* crc32c.h: CRC-32C (Castagnoli), the checksum of op-log records.
 * Uses the SSE4.2 crc32 instruction when the CPU has it, else a
 * slicing-by-8 table; both give the same value. */
#ifndef RK_CRC32C_H
#define RK_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Extends crc (start with 0) over p[0, n). */
uint32_t rk_crc32c(uint32_t crc, const void *p, size_t n);

/* The portable path alone, for tests that compare both. */
uint32_t rk_crc32c_sw(uint32_t crc, const void *p, size_t n);

#endif
