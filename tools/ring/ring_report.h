/* ring_report.h: what `ringkv ring` prints: each node's share of the key
 * space, as a live node's ring has it or for a simulated cluster.
 *
 * Text for people, or one JSON object per call for scripts:
 *   {"epoch":7,"checksum":"...","rf":3,
 *    "nodes":[{"id":"00000000000000a1","weight":1,"vnodes":256,
 *              "share":0.600123}, ...],
 *    "max_mean":1.0040}
 * id is the node id as 16 hex digits; share is the fraction of the key
 * space the node holds counting all rf replicas (the shares sum to rf);
 * max_mean is the largest share per unit of weight over the mean (1.0 is
 * perfect balance).
 */
#ifndef RK_RING_REPORT_H
#define RK_RING_REPORT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "ring.h"

/* Prints r's shares for replication factor rf to out.  r is borrowed.
 * Returns 0, RK_EINVALID (rf outside 1..RING_RF_MAX), RK_ENOMEM or RK_EIO
 * (out failed). */
int ring_report_print(const struct ring *r, int rf, int json, FILE *out);

/* Builds a ring offline: `nodes` fresh nodes join one after another, each
 * with `vnodes` tokens chosen by ring_allocate_tokens for rf, node ids drawn
 * from a fixed seed so the output is the same on every run; then prints it
 * as ring_report_print does.  Returns 0, or RK_EINVALID / RK_ENOMEM /
 * RK_EIO with a reason in err[0, errlen). */
int ring_report_simulate(int nodes, int vnodes, int rf, int json, FILE *out,
			 char *err, size_t errlen);

/* The ring r plus node_id with weight 1 and `vnodes` tokens chosen by
 * ring_allocate_tokens for rf: one step of a simulation, also used by
 * ring-bench.  *out is the caller's (ring_free); r is only read.  Returns
 * 0 or an error of ring_allocate_tokens / ring_new. */
int ring_report_join(const struct ring *r, uint64_t node_id, int vnodes, int rf,
		     struct ring **out);

/* The ring r without node_id, for rf: ring-bench's leave.  Returns 0,
 * RK_EINVALID (no such member, rf < 1) or an error of ring_new. */
int ring_report_leave(const struct ring *r, uint64_t node_id, int rf,
		      struct ring **out);

/* Limits of ring_report_simulate: beyond 1,000 nodes the joins take
 * minutes. */
#define RING_REPORT_MAX_NODES 1000

#endif
