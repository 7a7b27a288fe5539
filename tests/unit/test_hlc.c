#include <criterion/criterion.h>

#include "hlc.h"
#include "rng.h"

Test(hlc, ticks_strictly_increase_even_if_the_wall_clock_stops)
{
	struct rk_hlc c;
	rk_hlc_init(&c, 7);
	rk_ts prev = rk_hlc_tick(&c, 1000);
	for (int i = 0; i < 100000; i++) {
		rk_ts t = rk_hlc_tick(&c, 1000);
		cr_assert_gt(rk_ts_cmp(t, prev), 0);
		cr_assert_eq(t.node, 7);
		prev = t;
	}
	/* 100,000 ticks in one millisecond overflow the 16-bit counter
	 * into the millisecond part: still increasing. */
	cr_assert_gt(rk_hlc_ms(prev.hlc), 1000);
}

Test(hlc, ticks_follow_the_wall_clock_when_it_is_ahead)
{
	struct rk_hlc c;
	rk_hlc_init(&c, 1);
	rk_ts a = rk_hlc_tick(&c, 5000);
	cr_assert_eq(rk_hlc_ms(a.hlc), 5000);
	rk_ts b = rk_hlc_tick(&c, 9000);
	cr_assert_eq(rk_hlc_ms(b.hlc), 9000);
	cr_assert_eq(b.hlc & 0xffff, 0);
}

Test(hlc, wall_clock_going_back_never_makes_time_go_back)
{
	struct rk_hlc c;
	rk_hlc_init(&c, 1);
	rk_ts a = rk_hlc_tick(&c, 9000);
	rk_ts b = rk_hlc_tick(&c, 100);
	cr_assert_gt(rk_ts_cmp(b, a), 0);
}

Test(hlc, receiving_a_timestamp_jumps_past_it)
{
	struct rk_hlc c;
	rk_hlc_init(&c, 1);
	rk_hlc_tick(&c, 1000);
	uint64_t remote = ((uint64_t)50000 << 16) | 77;
	rk_hlc_observe(&c, remote);
	rk_ts t = rk_hlc_tick(&c, 1000);
	cr_assert_gt(t.hlc, remote);
	/* An older timestamp changes nothing. */
	rk_hlc_observe(&c, 5);
	rk_ts u = rk_hlc_tick(&c, 1000);
	cr_assert_gt(rk_ts_cmp(u, t), 0);
}

Test(hlc, order_is_total_and_breaks_ties_by_node)
{
	rk_ts a = {100, 1}, b = {100, 2}, c = {101, 0};
	cr_assert_lt(rk_ts_cmp(a, b), 0);
	cr_assert_gt(rk_ts_cmp(b, a), 0);
	cr_assert_lt(rk_ts_cmp(b, c), 0);
	cr_assert_eq(rk_ts_cmp(a, a), 0);
}

Test(hlc, lamport_rule_across_random_message_exchanges)
{
	/* Happened-before implies a smaller timestamp: nodes exchange
	 * stamped messages at random with skewed wall clocks. */
	uint64_t seed = rk_test_seed("hlc.lamport");
	struct rk_rng r;
	rk_rng_seed(&r, seed);
	enum { N = 5 };
	struct rk_hlc cl[N];
	int64_t skew[N];
	rk_ts last[N];
	for (int i = 0; i < N; i++) {
		rk_hlc_init(&cl[i], (uint64_t)i + 1);
		skew[i] = (int64_t)rk_rng_below(&r, 2000) - 1000;
		last[i] = (rk_ts){0, 0};
	}
	uint64_t now = 1000000;
	for (int step = 0; step < 20000; step++) {
		now += rk_rng_below(&r, 3);
		int from = (int)rk_rng_below(&r, N), to = (int)rk_rng_below(&r, N);
		rk_ts sent = rk_hlc_tick(&cl[from], (uint64_t)((int64_t)now + skew[from]));
		cr_assert_gt(rk_ts_cmp(sent, last[from]), 0);
		last[from] = sent;
		rk_hlc_observe(&cl[to], sent.hlc);
		rk_ts recv = rk_hlc_tick(&cl[to], (uint64_t)((int64_t)now + skew[to]));
		cr_assert_gt(rk_ts_cmp(recv, sent), 0, "seed %llu step %d",
			     (unsigned long long)seed, step);
		last[to] = recv;
	}
}
