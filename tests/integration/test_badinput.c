/* The bad-input table of shared/TESTING.md, rows for client connections.
 * Each row runs against a real ringkvd while a well-behaved client keeps
 * working beside it; the row passes only if that client saw no error. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "err.h"
#include "harness.h"

/* Under AddressSanitizer freed memory sits in a quarantine, so resident
 * size says nothing about leaks there; the plain build checks it. */
#if defined(__SANITIZE_ADDRESS__)
#define RSS_GROWTH_OK(kb, limit) ((void)(kb), 1)
#else
#define RSS_GROWTH_OK(kb, limit) ((kb) < (limit))
#endif
#include "rng.h"

static struct h_node node;
static pthread_t bystander;
static atomic_int stop, bystander_ops, bystander_errors;

/* A well-behaved client: writes and reads its own keys all the time. */
static void *bystander_main(void *arg)
{
	(void)arg;
	rkv_client *c;
	rkv_options o;
	rkv_options_init(&o);
	o.request_timeout_ms = 10000;
	if (rkv_connect(node.addr, &o, &c) != RKV_OK) {
		atomic_fetch_add(&bystander_errors, 1);
		return NULL;
	}
	for (int i = 0; !atomic_load(&stop); i++) {
		char k[32], v[32];
		snprintf(k, sizeof(k), "bystander-%d", i % 100);
		snprintf(v, sizeof(v), "%d", i);
		rkv_value *val = NULL;
		if (rkv_put(c, k, strlen(k), v, strlen(v), NULL) != RKV_OK ||
		    rkv_get(c, k, strlen(k), &val) != RKV_OK ||
		    val->len != strlen(v) || memcmp(val->data, v, val->len)) {
			fprintf(stderr, "bystander: %s\n", rkv_last_error(c));
			atomic_fetch_add(&bystander_errors, 1);
		}
		rkv_value_free(val);
		atomic_fetch_add(&bystander_ops, 1);
		usleep(2000);
	}
	rkv_close(c);
	return NULL;
}

static void up(void)
{
	/* Short deadlines and small caps keep the rows fast; each is the
	 * same code path as the defaults. */
	static const char *const args[] = {
		"--set", "limits.frame_timeout=1s",
		"--set", "limits.idle_timeout=2s",
		"--set", "limits.max_output=256KiB",
		"--set", "limits.max_clients=300",
		"--set", "limits.max_bad_frames=16",
		"--fsync", "always",
		NULL};
	h_node_init(&node, args);
	cr_assert_eq(h_node_start(&node), 0);
	atomic_store(&stop, 0);
	atomic_store(&bystander_errors, 0);
	atomic_store(&bystander_ops, 0);
	pthread_create(&bystander, NULL, bystander_main, NULL);
}

static void down(void)
{
	/* The bystander must have worked during and after the row. */
	int start = atomic_load(&bystander_ops);
	for (int i = 0; i < 1000 && atomic_load(&bystander_ops) < start + 3; i++)
		usleep(10000);
	atomic_store(&stop, 1);
	pthread_join(bystander, NULL);
	cr_expect_eq(atomic_load(&bystander_errors), 0,
		     "the well-behaved client saw errors");
	cr_expect_geq(atomic_load(&bystander_ops), start + 3,
		      "the well-behaved client stalled");
	cr_expect_neq(node.pid, 0, "the node is still running");
	if (node.pid)
		cr_expect_eq(kill(node.pid, 0), 0, "the node is alive");
	h_node_destroy(&node);
}

TestSuite(badinput, .init = up, .fini = down, .timeout = 120);

/* A ping on fd answers: the connection is still usable. */
static void assert_usable(int fd, uint64_t id)
{
	uint8_t body[64], buf[256];
	size_t n = h_ping_body(body, sizeof(body), id);
	cr_assert_eq(h_send_frame(fd, body, n), 0);
	long r = h_recv_frame(fd, buf, sizeof(buf), 5000);
	cr_assert_gt(r, 0, "no answer to a ping after bad input");
	uint64_t got;
	cr_assert_eq(h_response_status(buf, (size_t)r, &got), 0);
	cr_assert_eq(got, id);
}

static int expect_status(int fd, uint64_t *id)
{
	uint8_t buf[1024];
	long r = h_recv_frame(fd, buf, sizeof(buf), 5000);
	cr_assert_gt(r, 0, "no error reply");
	return h_response_status(buf, (size_t)r, id);
}

Test(badinput, length_prefix_over_max_frame_is_refused_then_closed)
{
	int fd = h_raw_connect(&node);
	long rss0 = h_node_rss_kb(&node);
	uint8_t hdr[4] = {0x7f, 0xff, 0xff, 0xff}; /* 2 GiB */
	cr_assert_eq(h_send_all(fd, hdr, 4), 0);
	cr_assert_eq(expect_status(fd, NULL), RK_EFRAME_TOO_LARGE);
	cr_assert_geq(h_wait_closed(fd, 5000), 0, "closed after the error");
	/* Nothing was allocated for the 2 GiB. */
	cr_assert(RSS_GROWTH_OK(h_node_rss_kb(&node) - rss0, 64 * 1024));
	close(fd);
	/* Just over the default 16 MiB limit. */
	fd = h_raw_connect(&node);
	uint8_t hdr2[4] = {0x01, 0x00, 0x00, 0x01};
	cr_assert_eq(h_send_all(fd, hdr2, 4), 0);
	cr_assert_eq(expect_status(fd, NULL), RK_EFRAME_TOO_LARGE);
	close(fd);
}

Test(badinput, truncated_frame_then_stall_is_closed_at_the_deadline)
{
	int fd = h_raw_connect(&node);
	uint8_t body[64];
	size_t n = h_ping_body(body, sizeof(body), 1);
	uint8_t hdr[4] = {0, 0, 0, (uint8_t)n};
	cr_assert_eq(h_send_all(fd, hdr, 4), 0);
	cr_assert_eq(h_send_all(fd, body, n - 1), 0); /* one byte short */
	long ms = h_wait_closed(fd, 10000);
	cr_assert_geq(ms, 500, "closed too early (%ld ms)", ms);
	cr_assert_leq(ms, 5000, "not closed by the frame deadline");
	close(fd);
}

Test(badinput, slowloris_is_closed_by_the_frame_deadline)
{
	int fd = h_raw_connect(&node);
	uint8_t body[64];
	size_t n = h_ping_body(body, sizeof(body), 1);
	uint8_t frame[68] = {0, 0, 0, (uint8_t)n};
	memcpy(frame + 4, body, n);
	int64_t t0 = h_now_ms();
	int closed = 0;
	/* One byte every 300 ms: each byte is activity, but the frame never
	 * completes within the 1 s deadline. */
	for (size_t i = 0; i < n + 4 && !closed; i++) {
		if (send(fd, frame + i, 1, MSG_NOSIGNAL) != 1)
			closed = 1;
		else if (h_wait_closed(fd, 300) >= 0)
			closed = 1;
	}
	cr_assert(closed, "a trickling frame was never cut off");
	cr_assert_leq(h_now_ms() - t0, 4000);
	close(fd);
}

Test(badinput, truncated_frame_then_eof_or_reset)
{
	for (int rst = 0; rst < 2; rst++) {
		int fd = h_raw_connect(&node);
		uint8_t hdr[4] = {0, 0, 1, 0};
		cr_assert_eq(h_send_all(fd, hdr, 4), 0);
		cr_assert_eq(h_send_all(fd, "abc", 3), 0);
		if (rst) {
			struct linger lg = {1, 0};
			setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		}
		close(fd);
	}
	/* Replies to a connection that vanished: SIGPIPE must not kill. */
	for (int i = 0; i < 50; i++) {
		int fd = h_raw_connect(&node);
		uint8_t body[64];
		size_t n = h_ping_body(body, sizeof(body), 1);
		for (int j = 0; j < 100; j++)
			h_send_frame(fd, body, n);
		struct linger lg = {1, 0};
		setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		close(fd);
	}
	int fd = h_raw_connect(&node);
	assert_usable(fd, 9);
	close(fd);
}

Test(badinput, malformed_protobuf_is_bad_request_and_the_connection_lives)
{
	int fd = h_raw_connect(&node);
	static const uint8_t bad[][12] = {
		{0x08, 0xff},                         /* truncated varint */
		{0x0d, 0x01},                         /* wrong wire type */
		{0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		 0xff, 0x01},                          /* varint overflow */
		{0x92, 0x01, 0x7f, 0x00},             /* length past end */
	};
	static const size_t lens[] = {2, 2, 12, 4};
	for (int i = 0; i < 4; i++) {
		cr_assert_eq(h_send_frame(fd, bad[i], lens[i]), 0);
		cr_assert_eq(expect_status(fd, NULL), RK_EBAD_REQUEST, "case %d", i);
	}
	assert_usable(fd, 77);
	close(fd);
}

Test(badinput, unknown_request_and_empty_body_are_unknown_command)
{
	int fd = h_raw_connect(&node);
	static const uint8_t unknown[] = {0x08, 0x09, 0xe2, 0x03, 0x00};
	cr_assert_eq(h_send_frame(fd, unknown, sizeof(unknown)), 0);
	uint64_t id;
	cr_assert_eq(expect_status(fd, &id), RK_EUNKNOWN_COMMAND);
	cr_assert_eq(id, 9, "the error carries the request id");
	static const uint8_t empty_body[] = {0x08, 0x0a};
	cr_assert_eq(h_send_frame(fd, empty_body, sizeof(empty_body)), 0);
	cr_assert_eq(expect_status(fd, &id), RK_EUNKNOWN_COMMAND);
	assert_usable(fd, 11);
	close(fd);
}

Test(badinput, zero_length_frame_is_bad_request)
{
	int fd = h_raw_connect(&node);
	cr_assert_eq(h_send_frame(fd, NULL, 0), 0);
	cr_assert_eq(expect_status(fd, NULL), RK_EBAD_REQUEST);
	assert_usable(fd, 12);
	close(fd);
}

Test(badinput, unknown_fields_are_ignored)
{
	int fd = h_raw_connect(&node);
	/* Ping{payload="hi", field 50 = 7} in Envelope{id=13}. */
	static const uint8_t msg[] = {0x08, 0x0d, 0x82, 0x01, 0x07, 0x0a, 0x02,
				      'h', 'i', 0x90, 0x03, 0x07};
	cr_assert_eq(h_send_frame(fd, msg, sizeof(msg)), 0);
	uint64_t id;
	cr_assert_eq(expect_status(fd, &id), 0);
	cr_assert_eq(id, 13);
	close(fd);
}

Test(badinput, huge_repeated_field_costs_no_quadratic_work)
{
	/* 8 MiB of the ping field repeated: protobuf merges repeats of a
	 * singular message field; the node must answer promptly. */
	size_t n = 8u << 20, off = 0;
	uint8_t *body = malloc(n + 16);
	body[off++] = 0x08;
	body[off++] = 0x05;
	while (off + 3 <= n) {
		body[off++] = 0x82;
		body[off++] = 0x01;
		body[off++] = 0x00;
	}
	int fd = h_raw_connect(&node);
	int64_t t0 = h_now_ms();
	cr_assert_eq(h_send_frame(fd, body, off), 0);
	int st = expect_status(fd, NULL);
	cr_assert(st == 0 || st == RK_EBAD_REQUEST, "status %d", st);
	cr_assert_lt(h_now_ms() - t0, 10000, "took %lld ms",
		     (long long)(h_now_ms() - t0));
	assert_usable(fd, 14);
	free(body);
	close(fd);
}

Test(badinput, repeated_bad_frames_close_the_connection)
{
	int fd = h_raw_connect(&node);
	static const uint8_t bad[] = {0x08, 0xff};
	for (int i = 0; i < 16; i++)
		cr_assert_eq(h_send_frame(fd, bad, sizeof(bad)), 0);
	for (int i = 0; i < 16; i++)
		cr_assert_eq(expect_status(fd, NULL), RK_EBAD_REQUEST);
	cr_assert_geq(h_wait_closed(fd, 5000), 0);
	close(fd);
}

Test(badinput, a_client_that_never_reads_is_closed_at_the_output_cap)
{
	int fd = h_raw_connect(&node);
	int small = 4096;
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	long rss0 = h_node_rss_kb(&node);
	/* Pings with 1 KiB payloads: each reply is as big as its request. */
	uint8_t body[1100];
	size_t n = 0;
	body[n++] = 0x08;
	body[n++] = 0x01;
	body[n++] = 0x82;
	body[n++] = 0x01;
	body[n++] = 0x83; /* Ping length 1027 as varint: 0x83 0x08 */
	body[n++] = 0x08;
	body[n++] = 0x0a;
	body[n++] = 0x80; /* payload length 1024: 0x80 0x08 */
	body[n++] = 0x08;
	memset(body + n, 'p', 1024);
	n += 1024;
	int sent_all = 1;
	for (int i = 0; i < 20000; i++) {
		uint8_t hdr[4] = {0, 0, (uint8_t)(n >> 8), (uint8_t)n};
		struct timeval tv = {2, 0};
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		if (h_send_all(fd, hdr, 4) || h_send_all(fd, body, n)) {
			sent_all = 0;
			break;
		}
	}
	cr_assert_not(sent_all, "20 MiB of requests went in and nobody "
				"stopped a client that never reads");
	/* Memory stayed near the 256 KiB cap, not the 20 MiB sent. */
	cr_assert(RSS_GROWTH_OK(h_node_rss_kb(&node) - rss0, 16 * 1024));
	close(fd);
}

Test(badinput, a_flooding_connection_does_not_starve_others)
{
	int fd = h_raw_connect(&node);
	uint8_t body[64];
	size_t n = h_ping_body(body, sizeof(body), 1);
	uint8_t *flood = malloc((n + 4) * 5000);
	for (int i = 0; i < 5000; i++) {
		flood[i * (n + 4)] = 0;
		flood[i * (n + 4) + 1] = 0;
		flood[i * (n + 4) + 2] = 0;
		flood[i * (n + 4) + 3] = (uint8_t)n;
		memcpy(flood + i * (n + 4) + 4, body, n);
	}
	/* Reader thread drains replies so the flood is not capped. */
	int64_t t_end = h_now_ms() + 3000;
	int other_ok = 0;
	rkv_client *c = h_client(&node);
	while (h_now_ms() < t_end) {
		h_send_all(fd, flood, (n + 4) * 5000);
		uint8_t junk[65536];
		while (recv(fd, junk, sizeof(junk), MSG_DONTWAIT) > 0)
			;
		if (rkv_ping(c, NULL) == RKV_OK)
			other_ok++;
	}
	cr_assert_gt(other_ok, 0);
	rkv_close(c);
	free(flood);
	close(fd);
}

Test(badinput, beyond_max_clients_the_next_gets_max_clients_and_is_closed)
{
	/* 300 allowed; the bystander holds one. */
	enum { N = 299 };
	int *fds = malloc(N * sizeof(int));
	for (int i = 0; i < N; i++)
		fds[i] = h_raw_connect(&node);
	usleep(200000);
	int extra = h_raw_connect(&node);
	uint64_t id = 99;
	cr_assert_eq(expect_status(extra, &id), RK_EMAX_CLIENTS);
	cr_assert_eq(id, 0);
	cr_assert_geq(h_wait_closed(extra, 5000), 0);
	close(extra);
	/* The admitted ones work. */
	assert_usable(fds[0], 1);
	assert_usable(fds[N - 1], 2);
	for (int i = 0; i < N; i++)
		close(fds[i]);
	free(fds);
}

Test(badinput, connect_close_storm_leaks_no_descriptors)
{
	usleep(100000);
	int before = h_node_fds(&node);
	for (int i = 0; i < 3000; i++) {
		int fd = h_raw_connect(&node);
		if (i % 3 == 0) {
			uint8_t hdr[4] = {0, 0, 0, 9};
			h_send_all(fd, hdr, 4); /* a partial frame */
		}
		close(fd);
	}
	int after = -1;
	for (int i = 0; i < 100; i++) {
		usleep(50000);
		after = h_node_fds(&node);
		if (after <= before)
			break;
	}
	cr_assert_leq(after, before, "fds %d -> %d", before, after);
}

Test(badinput, idle_connections_are_closed_after_the_idle_timeout)
{
	int fd = h_raw_connect(&node);
	assert_usable(fd, 1);
	long ms = h_wait_closed(fd, 10000);
	cr_assert_geq(ms, 1000, "closed after %ld ms", ms);
	close(fd);
}

Test(badinput, disconnecting_with_a_write_in_flight)
{
	/* fsync=always: the reply waits for the fsync; the client leaves. */
	for (int i = 0; i < 200; i++) {
		int fd = h_raw_connect(&node);
		static const uint8_t put[] = {0x08, 0x01, 0x92, 0x01, 0x06, 0x0a,
					      0x01, 'x', 0x12, 0x01, 'y'};
		h_send_frame(fd, put, sizeof(put));
		close(fd);
	}
	int fd = h_raw_connect(&node);
	assert_usable(fd, 5);
	close(fd);
	rkv_client *c = h_client(&node);
	rkv_value *v;
	cr_assert_eq(rkv_get(c, "x", 1, &v), RKV_OK);
	rkv_value_free(v);
	rkv_close(c);
}

Test(badinput, random_bytes_do_not_hurt_the_node)
{
	struct rk_rng r;
	rk_rng_seed(&r, rk_test_seed("badinput.random"));
	long rss0 = h_node_rss_kb(&node);
	for (int i = 0; i < 300; i++) {
		int fd = h_raw_connect(&node);
		size_t n = rk_rng_below(&r, 4096) + 1;
		uint8_t buf[4096];
		for (size_t j = 0; j < n; j++)
			buf[j] = (uint8_t)rk_rng_next(&r);
		/* Half of the time a plausible small length prefix. */
		if (i % 2 && n > 8) {
			buf[0] = buf[1] = 0;
			buf[2] = (uint8_t)((n - 4) >> 8);
			buf[3] = (uint8_t)(n - 4);
		}
		h_send_all(fd, buf, n);
		close(fd);
	}
	int fd = h_raw_connect(&node);
	assert_usable(fd, 3);
	close(fd);
	cr_assert(RSS_GROWTH_OK(h_node_rss_kb(&node) - rss0, 32 * 1024));
}

Test(badinput, empty_and_oversized_keys_and_values_store_nothing)
{
	rkv_client *c = h_client(&node);
	cr_assert_eq(rkv_put(c, "", 0, "v", 1, NULL), RKV_ERR_EMPTY_KEY);
	char key[1100];
	memset(key, 'q', sizeof(key));
	cr_assert_eq(rkv_put(c, key, 1025, "v", 1, NULL), RKV_ERR_KEY_TOO_LARGE);
	char *val = calloc(1, (1u << 20) + 1);
	cr_assert_eq(rkv_put(c, "kv", 2, val, (1u << 20) + 1, NULL),
		     RKV_ERR_VALUE_TOO_LARGE);
	rkv_value *v;
	cr_assert_eq(rkv_get(c, "kv", 2, &v), RKV_ERR_NOT_FOUND);
	int ex;
	cr_assert_eq(rkv_exists(c, key, 1024, &ex), RKV_OK);
	cr_assert_eq(ex, 0);
	free(val);
	rkv_close(c);
}
