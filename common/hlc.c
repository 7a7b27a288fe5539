#include "hlc.h"

rk_ts rk_hlc_tick(struct rk_hlc *c, uint64_t now_ms)
{
	uint64_t wall = now_ms << RK_HLC_COUNTER_BITS;
	c->last = wall > c->last ? wall : c->last + 1;
	return (rk_ts){.hlc = c->last, .node = c->node};
}

void rk_hlc_observe(struct rk_hlc *c, uint64_t hlc)
{
	if (hlc > c->last)
		c->last = hlc;
}
