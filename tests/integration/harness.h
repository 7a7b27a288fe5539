/* harness.h: real ringkvd processes for integration tests.
 *
 * Each node gets its own loopback address (127.x.y.z, chosen at random so
 * parallel tests do not collide), its own data directory under /tmp, and a
 * log file there.  Nothing is mocked: tests talk to the daemon over real
 * sockets and kill it with real signals.
 */
#ifndef RK_HARNESS_H
#define RK_HARNESS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "ringkv.h"

#define H_MAX_ARGS 32

struct h_node {
	pid_t pid;           /* 0 when not running */
	char host[32];       /* 127.x.y.z */
	int port;
	char addr[48];       /* host:port */
	char dir[64];        /* data directory */
	char log[96];        /* the daemon's stderr */
	const char *args[H_MAX_ARGS]; /* extra flags, NULL-terminated */
	char argbuf[H_MAX_ARGS][128]; /* storage for h_node_add_arg */
};

/* Picks an address and a fresh data directory; args (may be NULL) are
 * extra flags for every start, NULL-terminated. */
void h_node_init(struct h_node *n, const char *const *args);

/* Gives a stopped node a new loopback address (same data directory). */
void h_node_move(struct h_node *n);

/* Appends one flag to those given at init (copied). */
void h_node_add_arg(struct h_node *n, const char *arg);

/* Starts ringkvd and waits until it accepts connections.  Returns 0, or -1
 * when it exited or did not listen within 20 s (its log is printed). */
int h_node_start(struct h_node *n);

/* Sends sig and waits for the exit; returns the exit status (or 128+sig). */
int h_node_signal(struct h_node *n, int sig);

/* Stops (SIGTERM) if running and removes the data directory. */
void h_node_destroy(struct h_node *n);

/* A libringkv client for the node (aborts the test on failure). */
rkv_client *h_client(const struct h_node *n);

/* Resident memory of the node in KiB, and its open descriptors. */
long h_node_rss_kb(const struct h_node *n);
int h_node_fds(const struct h_node *n);

/* --- raw sockets, for bad input --- */
int h_raw_connect(const struct h_node *n);
/* Writes all of p; 0 or -1. */
int h_send_all(int fd, const void *p, size_t len);
/* Sends a frame (4-byte big-endian length + body). */
int h_send_frame(int fd, const void *body, size_t len);
/* Reads one frame within timeout_ms into buf (cap bytes): returns the body
 * length, -1 on close/error, -2 on timeout. */
long h_recv_frame(int fd, uint8_t *buf, size_t cap, int timeout_ms);
/* Decodes a response frame body: status (0 or RK_E*), request id. */
int h_response_status(const uint8_t *body, size_t len, uint64_t *id);
/* Waits until the peer closes fd (reads and discards); returns the
 * milliseconds it took, or -1 after timeout_ms. */
long h_wait_closed(int fd, int timeout_ms);
/* A valid encoded Ping request frame body with request id. */
size_t h_ping_body(uint8_t *out, size_t cap, uint64_t id);

/* One request on a fresh raw connection; fn sees the decoded response.
 * Returns the response status, or RK_ETIMEOUT / RK_ECLOSED. */
struct rk_request;
struct rk_response;
int h_request(const struct h_node *n, const struct rk_request *q,
	      int timeout_ms,
	      void (*fn)(void *ctx, const struct rk_response *r), void *ctx);

/* The node's own copy of key (no coordination): 0 with *val (malloc'd,
 * NUL-terminated) or RK_ENOT_FOUND. */
int h_local_get(const struct h_node *n, const char *key, char **val);

/* Local reads of many keys on one pipelined connection: found[i] is 1
 * when the node holds keys[i] with value equal to the key, else 0.
 * Returns 0 or RK_ETIMEOUT / RK_ECLOSED. */
int h_local_has_many(const struct h_node *n, const char *const *keys,
		     size_t count, unsigned char *found);

/* Waits until the node's ring (RingInfo) lists exactly `owners` members,
 * all alive when all_alive; fails the test after timeout_ms. */
void h_wait_owners(const struct h_node *n, size_t owners, int all_alive,
		   int timeout_ms);

/* The node's ring status ("normal", "joining", ...) into buf. */
int h_ring_status(const struct h_node *n, char *buf, size_t len);

int64_t h_now_ms(void);
/* Runs a shell command; returns its exit status. */
int h_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
