/* fastwire.h: a lean, allocation-free reader for the replies that make up
 * almost all of a benchmark's traffic: OK or NOT_FOUND answers to Get, Put
 * and Delete, and CounterResults of counter adds.
 *
 * Why it exists: protobuf-c's unpack allocates the envelope, the response,
 * the result, the timestamp and a copy of the value, and frees them again;
 * profiled at pipeline depth 16 that was half of ringkv-bench's CPU, enough
 * for the client, not the node, to set the pace on a 2-core machine where
 * the RESP client pays a fraction of it.  A benchmark must not measure its
 * own decoder.
 *
 * It is not a second source of truth.  It accepts only replies it fully
 * understands and answers RK_EPROTOCOL to everything else (errors, other
 * results, a body it cannot walk), and ringkv-bench then decodes that reply
 * with rk_wire_decode_response, which has the final word.  The bench also
 * decodes every 64th reply both ways and aborts if they disagree, and
 * tests/bench/test_fastwire.c checks the two against each other on frames
 * from rk_wire_encode_response.
 *
 * Pure: no allocation, no I/O.  Every length is checked against the bytes
 * that remain before it is used.
 */
#ifndef RK_BENCH_FASTWIRE_H
#define RK_BENCH_FASTWIRE_H

#include <stddef.h>
#include <stdint.h>

/* Which result a reply carried. */
enum fw_result {
	FW_NONE,    /* a bare status */
	FW_GET,	    /* GetResult */
	FW_WRITE,   /* WriteResult (Put, Delete) */
	FW_COUNTER, /* CounterResult (CounterAdd, without per-replica
		       answers) */
};

/* What the benchmark needs of a reply. */
struct fw_reply {
	uint64_t id;
	int status;          /* 0 or RK_ENOT_FOUND */
	enum fw_result result;
	size_t value_len;    /* FW_GET: bytes of the value */
};

/* Reads one Envelope body.  Returns 0 with *r filled for a response with
 * status OK or NOT_FOUND and a Get, Write or no result; RK_EPROTOCOL for
 * anything else, which the caller hands to rk_wire_decode_response. */
int fw_decode_response(const uint8_t *p, size_t n, struct fw_reply *r);

#endif
