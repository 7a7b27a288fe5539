#include "harness.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "err.h"
#include "frame.h"
#include "rng.h"
#include "wire.h"

int64_t h_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A free loopback address: random 127.x.y.z with a port nobody holds. */
static void pick_address(struct h_node *n)
{
	static struct rk_rng rng;
	static int seeded;
	if (!seeded) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		rk_rng_seed(&rng, (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 20));
		seeded = 1;
	}
	for (;;) {
		snprintf(n->host, sizeof(n->host), "127.%u.%u.%u",
			 (unsigned)rk_rng_below(&rng, 250) + 2,
			 (unsigned)rk_rng_below(&rng, 254) + 1,
			 (unsigned)rk_rng_below(&rng, 250) + 2);
		n->port = 7400;
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		struct sockaddr_in sa = {.sin_family = AF_INET,
					 .sin_port = htons((uint16_t)n->port)};
		inet_pton(AF_INET, n->host, &sa.sin_addr);
		int ok = bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
		close(fd);
		if (ok)
			break;
	}
	snprintf(n->addr, sizeof(n->addr), "%s:%d", n->host, n->port);
}

void h_node_init(struct h_node *n, const char *const *args)
{
	memset(n, 0, sizeof(*n));
	pick_address(n);
	const char *tmp = getenv("TMPDIR");
	snprintf(n->dir, sizeof(n->dir), "%s/rkv-it-XXXXXX",
		 tmp && *tmp ? tmp : "/tmp");
	cr_assert_not_null(mkdtemp(n->dir));
	snprintf(n->log, sizeof(n->log), "%s/ringkvd.log", n->dir);
	for (int i = 0; args && args[i] && i < H_MAX_ARGS - 1; i++)
		n->args[i] = args[i];
}

void h_node_move(struct h_node *n)
{
	cr_assert_eq(n->pid, 0, "move a stopped node only");
	pick_address(n);
}

void h_node_add_arg(struct h_node *n, const char *arg)
{
	int i = 0;
	while (n->args[i])
		i++;
	cr_assert_lt(i, H_MAX_ARGS - 1, "too many flags");
	snprintf(n->argbuf[i], sizeof(n->argbuf[i]), "%s", arg);
	n->args[i] = n->argbuf[i];
	n->args[i + 1] = NULL;
}

static int can_connect(const struct h_node *n)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET,
				 .sin_port = htons((uint16_t)n->port)};
	inet_pton(AF_INET, n->host, &sa.sin_addr);
	int ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	return ok;
}

static void print_log(const struct h_node *n)
{
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "tail -n 30 %s >&2", n->log);
	if (system(cmd) != 0)
		fprintf(stderr, "(no log)\n");
}

int h_node_start(struct h_node *n)
{
	const char *bin = getenv("RINGKVD");
	cr_assert_not_null(bin, "RINGKVD must point at the ringkvd binary");
	char data[96];
	snprintf(data, sizeof(data), "%s/data", n->dir);
	const char *argv[H_MAX_ARGS + 8];
	int a = 0;
	argv[a++] = bin;
	argv[a++] = "--listen";
	argv[a++] = n->addr;
	argv[a++] = "--data-dir";
	argv[a++] = data;
	for (int i = 0; n->args[i]; i++)
		argv[a++] = n->args[i];
	argv[a] = NULL;
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		int fd = open(n->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
		if (fd >= 0) {
			dup2(fd, 2);
			dup2(fd, 1);
			close(fd);
		}
		execv(bin, (char *const *)argv);
		_exit(127);
	}
	n->pid = pid;
	for (int i = 0; i < 2000; i++) {
		if (can_connect(n))
			return 0;
		int st;
		if (waitpid(pid, &st, WNOHANG) == pid) {
			n->pid = 0;
			fprintf(stderr, "ringkvd exited during start:\n");
			print_log(n);
			return -1;
		}
		usleep(10000);
	}
	fprintf(stderr, "ringkvd did not listen within 20 s:\n");
	print_log(n);
	return -1;
}

int h_node_signal(struct h_node *n, int sig)
{
	if (!n->pid)
		return -1;
	kill(n->pid, sig);
	int st = 0;
	while (waitpid(n->pid, &st, 0) < 0 && errno == EINTR)
		;
	n->pid = 0;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

void h_node_destroy(struct h_node *n)
{
	/* A clean stop exits 0; under ASan a leak or error would not. */
	if (n->pid) {
		int st = h_node_signal(n, SIGTERM);
		if (st != 0)
			print_log(n);
		cr_expect_eq(st, 0, "ringkvd at %s exited %d on SIGTERM",
			     n->addr, st);
	}
	if (n->dir[0] && !getenv("RINGKV_KEEP"))
		h_sh("rm -rf '%s'", n->dir);
}

rkv_client *h_client(const struct h_node *n)
{
	rkv_client *c;
	rkv_options o;
	rkv_options_init(&o);
	o.request_timeout_ms = 20000;
	int rc = rkv_connect(n->addr, &o, &c);
	cr_assert_eq(rc, RKV_OK, "connect %s: %s", n->addr, rkv_strerror(rc));
	return c;
}

long h_node_rss_kb(const struct h_node *n)
{
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)n->pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	long kb = -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

int h_node_fds(const struct h_node *n)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/fd", (int)n->pid);
	DIR *d = opendir(path);
	if (!d)
		return -1;
	int c = 0;
	struct dirent *de;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			c++;
	closedir(d);
	return c;
}

int h_raw_connect(const struct h_node *n)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET,
				 .sin_port = htons((uint16_t)n->port)};
	inet_pton(AF_INET, n->host, &sa.sin_addr);
	cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0,
		     "connect %s: %s", n->addr, strerror(errno));
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

int h_send_all(int fd, const void *p, size_t len)
{
	const uint8_t *b = p;
	while (len) {
		ssize_t w = send(fd, b, len, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		b += w;
		len -= (size_t)w;
	}
	return 0;
}

int h_send_frame(int fd, const void *body, size_t len)
{
	uint8_t hdr[4];
	rk_frame_header(hdr, (uint32_t)len);
	if (h_send_all(fd, hdr, 4))
		return -1;
	return len ? h_send_all(fd, body, len) : 0;
}

static int read_exact(int fd, uint8_t *p, size_t n, int64_t deadline)
{
	while (n) {
		int left = (int)(deadline - h_now_ms());
		if (left <= 0)
			return -2;
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		int pr = poll(&pfd, 1, left);
		if (pr == 0)
			return -2;
		if (pr < 0 && errno == EINTR)
			continue;
		ssize_t r = read(fd, p, n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

long h_recv_frame(int fd, uint8_t *buf, size_t cap, int timeout_ms)
{
	int64_t deadline = h_now_ms() + timeout_ms;
	uint8_t hdr[4];
	int rc = read_exact(fd, hdr, 4, deadline);
	if (rc)
		return rc;
	uint32_t len = rk_get_be32(hdr);
	if (len > cap)
		return -1;
	rc = read_exact(fd, buf, len, deadline);
	return rc ? rc : (long)len;
}

int h_response_status(const uint8_t *body, size_t len, uint64_t *id)
{
	struct rk_response r;
	struct rk_wire_msg *m;
	char err[128];
	int rc = rk_wire_decode_response(body, len, &r, &m, err, sizeof(err));
	cr_assert_eq(rc, 0, "undecodable response: %s", err);
	if (id)
		*id = r.id;
	int st = r.status;
	rk_wire_msg_free(m);
	return st;
}

long h_wait_closed(int fd, int timeout_ms)
{
	int64_t start = h_now_ms(), deadline = start + timeout_ms;
	uint8_t junk[4096];
	for (;;) {
		int left = (int)(deadline - h_now_ms());
		if (left <= 0)
			return -1;
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		int pr = poll(&pfd, 1, left);
		if (pr <= 0)
			continue;
		ssize_t r = read(fd, junk, sizeof(junk));
		if (r <= 0)
			return (long)(h_now_ms() - start);
	}
}

size_t h_ping_body(uint8_t *out, size_t cap, uint64_t id)
{
	struct rk_buf b;
	rk_buf_init(&b);
	struct rk_request q = {.id = id, .op = RK_OP_PING};
	cr_assert_eq(rk_wire_encode_request(&b, &q), 0);
	size_t n = b.len - 4;
	cr_assert_leq(n, cap);
	memcpy(out, b.data + 4, n);
	rk_buf_destroy(&b);
	return n;
}

int h_sh(const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	int st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int h_request(const struct h_node *n, const struct rk_request *q,
	      int timeout_ms,
	      void (*fn)(void *ctx, const struct rk_response *r), void *ctx)
{
	int fd = h_raw_connect(n);
	struct rk_buf b;
	rk_buf_init(&b);
	cr_assert_eq(rk_wire_encode_request(&b, q), 0);
	int rc = h_send_all(fd, b.data, b.len) ? RK_ECLOSED : 0;
	rk_buf_destroy(&b);
	size_t cap = 16u << 20;
	uint8_t *buf = malloc(cap);
	long len = rc ? -1 : h_recv_frame(fd, buf, cap, timeout_ms);
	close(fd);
	if (len < 0) {
		free(buf);
		return len == -2 ? RK_ETIMEOUT : RK_ECLOSED;
	}
	struct rk_response r;
	struct rk_wire_msg *m;
	char err[160];
	cr_assert_eq(rk_wire_decode_response(buf, (size_t)len, &r, &m, err,
					     sizeof(err)),
		     0, "%s", err);
	if (fn)
		fn(ctx, &r);
	int st = r.status;
	rk_wire_msg_free(m);
	free(buf);
	return st;
}

static void take_value(void *ctx, const struct rk_response *r)
{
	char **val = ctx;
	*val = NULL;
	if (r->status == 0) {
		*val = malloc(r->value.n + 1);
		memcpy(*val, r->value.p, r->value.n);
		(*val)[r->value.n] = 0;
	}
}

int h_local_get(const struct h_node *n, const char *key, char **val)
{
	struct rk_request q = {.id = 1, .op = RK_OP_GET,
			       .key = {(const uint8_t *)key, strlen(key)},
			       .local = 1};
	return h_request(n, &q, 10000, take_value, val);
}

struct status_buf {
	char *buf;
	size_t len;
};

static void take_status(void *ctx, const struct rk_response *r)
{
	struct status_buf *s = ctx;
	snprintf(s->buf, s->len, "%s",
		 r->stats.ring_status ? r->stats.ring_status : "");
}

void h_wait_owners(const struct h_node *n, size_t owners, int all_alive,
		   int timeout_ms)
{
	int64_t t0 = h_now_ms();
	for (;;) {
		rkv_client *c = h_client(n);
		rkv_ring_info *ri;
		cr_assert_eq(rkv_ring_info_get(c, &ri), RKV_OK);
		size_t got = ri->n_members, alive = 0;
		for (size_t k = 0; k < got; k++)
			alive += strcmp(ri->members[k].state, "alive") == 0;
		rkv_ring_info_free(ri);
		rkv_close(c);
		if (got == owners && (!all_alive || alive == owners))
			return;
		cr_assert_lt(h_now_ms() - t0, timeout_ms,
			     "%s sees %zu owners (%zu alive), not %zu", n->addr,
			     got, alive, owners);
		usleep(100000);
	}
}

int h_ring_status(const struct h_node *n, char *buf, size_t len)
{
	struct rk_request q = {.id = 1, .op = RK_OP_NODE_STATS};
	struct status_buf s = {buf, len};
	buf[0] = 0;
	return h_request(n, &q, 10000, take_status, &s);
}

int h_local_has_many(const struct h_node *n, const char *const *keys,
		     size_t count, unsigned char *found)
{
	int fd = h_raw_connect(n);
	int rc = 0;
	uint8_t *buf = malloc(1u << 20);
	for (size_t base = 0; base < count && !rc; base += 1000) {
		size_t m = count - base < 1000 ? count - base : 1000;
		struct rk_buf b;
		rk_buf_init(&b);
		for (size_t i = 0; i < m; i++) {
			const char *k = keys[base + i];
			struct rk_request q = {.id = i + 1, .op = RK_OP_GET,
					       .key = {(const uint8_t *)k,
						       strlen(k)},
					       .local = 1};
			cr_assert_eq(rk_wire_encode_request(&b, &q), 0);
		}
		if (h_send_all(fd, b.data, b.len))
			rc = RK_ECLOSED;
		rk_buf_destroy(&b);
		for (size_t i = 0; i < m && !rc; i++) {
			long len = h_recv_frame(fd, buf, 1u << 20, 20000);
			if (len < 0) {
				rc = len == -2 ? RK_ETIMEOUT : RK_ECLOSED;
				break;
			}
			struct rk_response r;
			struct rk_wire_msg *w;
			char err[160];
			cr_assert_eq(rk_wire_decode_response(buf, (size_t)len, &r,
							     &w, err, sizeof(err)),
				     0, "%s", err);
			cr_assert(r.id >= 1 && r.id <= m);
			const char *k = keys[base + r.id - 1];
			found[base + r.id - 1] =
				r.status == 0 && r.value.n == strlen(k) &&
				memcmp(r.value.p, k, r.value.n) == 0;
			rk_wire_msg_free(w);
		}
	}
	free(buf);
	close(fd);
	return rc;
}
