/* hlc.h: Lamport timestamps in hybrid-logical-clock form.
 *
 * Lamport (1978): a node's clock ticks on every local event and, on
 * receiving a timestamp, jumps past it; ties break by node id, giving a
 * total order.  Kulkarni et al. (2014, "Logical Physical Clocks") keep
 * those rules but start each tick from the wall clock when it is ahead, so
 * that with roughly synchronised clocks the order also agrees with real
 * time and last-writer-wins surprises nobody.
 *
 * Layout: hlc = (wall milliseconds since 1970 << 16) | counter.  A counter
 * overflow carries into the millisecond part, which keeps ticks strictly
 * increasing at the cost of running a little ahead of the wall clock.
 *
 * Pure: the caller passes the wall clock in, so tests and the simulator
 * drive it with fake time.
 */
#ifndef RK_HLC_H
#define RK_HLC_H

#include <stdint.h>

#define RK_HLC_COUNTER_BITS 16

/* A record's version: total order by (hlc, node). */
typedef struct rk_ts {
	uint64_t hlc;  /* hybrid logical time */
	uint64_t node; /* id of the node that stamped it: the tiebreak */
} rk_ts;

static inline int rk_ts_cmp(rk_ts a, rk_ts b)
{
	if (a.hlc != b.hlc)
		return a.hlc < b.hlc ? -1 : 1;
	if (a.node != b.node)
		return a.node < b.node ? -1 : 1;
	return 0;
}

static inline int rk_ts_is_zero(rk_ts a)
{
	return a.hlc == 0 && a.node == 0;
}

static inline uint64_t rk_hlc_ms(uint64_t hlc)
{
	return hlc >> RK_HLC_COUNTER_BITS;
}

/* One node's clock. */
struct rk_hlc {
	uint64_t last; /* the greatest time issued or observed */
	uint64_t node; /* this node's id, stamped into every tick */
};

static inline void rk_hlc_init(struct rk_hlc *c, uint64_t node)
{
	c->last = 0;
	c->node = node;
}

/* A local event (a write): returns a timestamp greater than every one this
 * clock issued or observed before. */
rk_ts rk_hlc_tick(struct rk_hlc *c, uint64_t now_ms);

/* A received timestamp: later ticks will be greater than it. */
void rk_hlc_observe(struct rk_hlc *c, uint64_t hlc);

/* The clock ceiling.  A node must never issue the same version twice, but
 * a version it stamped can be durable on other replicas (or never logged
 * here at all, when it coordinated for others) while its own log lost it
 * in a crash; replaying the log would then start the clock below it.  So
 * the node keeps, durably, a ceiling above every time it has issued: a
 * tick that reaches the ceiling first persists a new one, window_ms of
 * wall time higher (one sync per window while writes flow), and a boot
 * observes the ceiling before the first tick.  This returns that new
 * ceiling for a tick at hlc. */
static inline uint64_t rk_hlc_ceiling(uint64_t hlc, uint64_t window_ms)
{
	return (rk_hlc_ms(hlc) + window_ms) << RK_HLC_COUNTER_BITS;
}

#endif
