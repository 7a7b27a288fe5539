/* fuzz_swim_recv.c: libFuzzer target for the whole receive path of swim.
 *
 * A node that knows a few members gets the input as a datagram, as a
 * push-pull request and as a push-pull reply, with timers run in between.
 * Invariants: no sanitizer report, no leak, the node still answers a PING
 * afterwards. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gossip_wire.h"
#include "swim.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t now, rnd, acks;

static uint64_t rt_now(void *ctx)
{
	(void)ctx;
	return now;
}

static uint64_t rt_random(void *ctx)
{
	(void)ctx;
	rnd = rnd * 6364136223846793005ull + 1442695040888963407ull;
	return rnd;
}

static void rt_udp(void *ctx, const char *addr, const uint8_t *p, size_t n)
{
	struct swim_msg m;
	void *o;
	const struct swim_decode_limits lim = {.max_bytes = 1 << 16,
					       .max_updates = 4096};
	(void)ctx;
	(void)addr;
	if (gossip_wire_decode(p, n, &lim, &m, &o))
		abort(); /* we must only ever send what we accept */
	acks += m.type == SWIM_MSG_ACK && m.seq == 424242;
	gossip_wire_release(o);
}

static void rt_sync(void *ctx, const char *addr, const uint8_t *p, size_t n)
{
	(void)ctx;
	(void)addr;
	(void)p;
	(void)n;
}

static void feed_ping(struct swim *s, uint64_t from, uint64_t seq,
		      const struct swim_update *u, size_t n)
{
	char fa[32];
	snprintf(fa, sizeof(fa), "10.0.0.%u:7946", (unsigned)from);
	struct swim_msg m = {.type = SWIM_MSG_PING,
			     .cluster = "fz",
			     .from_id = from,
			     .from_addr = fa,
			     .seq = seq,
			     .target_addr = "",
			     .updates = (struct swim_update *)u,
			     .n_updates = n};
	struct rk_buf b;
	rk_buf_init(&b);
	if (gossip_wire_encode(&m, &b) == 0)
		swim_recv_udp(s, fa, b.data, b.len);
	rk_buf_destroy(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct swim_config c;
	struct swim *s;
	struct swim_runtime rt = {.codec = &gossip_wire_codec,
				  .now_ms = rt_now,
				  .random = rt_random,
				  .send_udp = rt_udp,
				  .send_sync = rt_sync};
	now = 1000;
	rnd = size;
	acks = 0;
	swim_config_defaults(&c);
	c.id = 1;
	c.gossip_addr = "10.0.0.1:7946";
	c.cluster = "fz";
	if (swim_new(&c, &rt, &s))
		abort();
	struct swim_update u[3];
	char a[3][32];
	for (int i = 0; i < 3; i++) {
		snprintf(a[i], sizeof(a[i]), "10.0.0.%d:7946", i + 2);
		u[i] = (struct swim_update){.id = (uint64_t)i + 2,
					    .state = SWIM_ALIVE,
					    .gossip_addr = a[i],
					    .peer_addr = "",
					    .client_addr = ""};
	}
	feed_ping(s, 2, 1, u, 3);

	struct rk_buf reply;
	rk_buf_init(&reply);
	swim_recv_udp(s, "fuzz", data, size);
	now += 700;
	swim_tick(s);
	swim_recv_sync(s, "fuzz", data, size, &reply);
	swim_recv_sync_reply(s, "fuzz", data, size);
	for (int i = 0; i < 50; i++) {
		uint64_t d = swim_next_deadline(s);
		now = d > now && d - now < 3600000 ? d : now + 1000;
		swim_tick(s);
	}
	feed_ping(s, 3, 424242, NULL, 0);
	if (acks != 1)
		abort(); /* the node stopped answering */
	rk_buf_destroy(&reply);
	swim_free(s);
	return 0;
}
