#include "cluster.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"

struct cluster {
	const struct node_config *cfg;
	const struct rk_logger *lg;
	uint64_t self_id;
	uint64_t *tokens;   /* ours, ascending; owned */
	size_t n_tokens;
	struct ring *ring;  /* current snapshot; owned */
};

static int errf(char *err, size_t errlen, int code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int errf(char *err, size_t errlen, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return code;
}

/* Reads DATA_DIR/tokens.  Returns 0, RK_ENOT_FOUND (first start), or an
 * error with a reason. */
static int tokens_load(struct cluster *c, const char *path, char *err,
		       size_t errlen)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		if (errno == ENOENT)
			return RK_ENOT_FOUND;
		return errf(err, errlen, RK_EIO, "cannot read %s: %s", path,
			    strerror(errno));
	}
	size_t cap = ring_tokens_encoded_size(RING_TOKENS_MAX);
	uint8_t *buf = malloc(cap);
	if (!buf) {
		free(buf);
		fclose(f);
		return errf(err, errlen, RK_ENOMEM, "out of memory");
	}
	size_t len = fread(buf, 1, cap, f);
	int rd_err = ferror(f);
	fclose(f);
	int rc = rd_err ? RK_EIO
			: ring_tokens_decode(buf, len, c->tokens,
					     RING_TOKENS_MAX, &c->n_tokens);
	free(buf);
	if (rc)
		return errf(err, errlen, rc == RK_EIO ? RK_EIO : RK_ECORRUPT,
			    "%s is damaged (%s); it holds this node's place on "
			    "the ring: restore it from a backup rather than "
			    "deleting it",
			    path, rk_strerror(rc));
	return 0;
}

/* Writes tokens durably: temporary file, fsync, rename, fsync dir. */
static int tokens_save(const struct cluster *c, const char *dir,
		       const char *path, char *err, size_t errlen)
{
	size_t cap = ring_tokens_encoded_size(c->n_tokens), len;
	uint8_t *buf = malloc(cap);
	if (!buf)
		return errf(err, errlen, RK_ENOMEM, "out of memory");
	int rc = ring_tokens_encode(c->tokens, c->n_tokens, buf, cap, &len);
	char tmp[PATH_MAX];
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	int fd = rc ? -1 : open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	int ok = fd >= 0 && write(fd, buf, len) == (ssize_t)len &&
		 fsync(fd) == 0 && rename(tmp, path) == 0;
	int e = errno;
	if (fd >= 0)
		close(fd);
	free(buf);
	if (ok) {
		int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		ok = dfd >= 0 && fsync(dfd) == 0;
		e = errno;
		if (dfd >= 0)
			close(dfd);
	}
	if (!ok)
		return errf(err, errlen, RK_EIO, "cannot write %s: %s", path,
			    strerror(e));
	return 0;
}

static int build_ring(struct cluster *c)
{
	struct ring_member self = {
		.node_id = c->self_id,
		.weight = (uint32_t)c->cfg->weight,
		.tokens = c->tokens,
		.n_tokens = c->n_tokens,
	};
	struct ring_config rc = {.epoch = 1, .rf_max = (uint32_t)c->cfg->rf};
	struct ring *r;
	int rv = ring_new(&self, 1, &rc, &r);
	if (rv)
		return rv;
	ring_free(c->ring);
	c->ring = r;
	return 0;
}

int cluster_open(const struct node_config *cfg, uint64_t self_id,
		 const struct rk_logger *lg, struct cluster **out, char *err,
		 size_t errlen)
{
	*out = NULL;
	struct cluster *c = calloc(1, sizeof(*c));
	if (!c)
		return errf(err, errlen, RK_ENOMEM, "out of memory");
	c->cfg = cfg;
	c->lg = lg;
	c->self_id = self_id;
	c->tokens = malloc(RING_TOKENS_MAX * sizeof(uint64_t));
	if (!c->tokens) {
		free(c);
		return errf(err, errlen, RK_ENOMEM, "out of memory");
	}
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/tokens", cfg->data_dir);
	int rc = tokens_load(c, path, err, errlen);
	if (rc == RK_ENOT_FOUND) {
		/* First start: choose tokens against the ring we know, which
		 * is empty until membership brings the others. */
		struct ring *empty;
		struct ring_config rcfg = {.epoch = 0,
					   .rf_max = (uint32_t)cfg->rf};
		rc = ring_new(NULL, 0, &rcfg, &empty);
		if (!rc)
			rc = ring_allocate_tokens(empty, self_id,
						  (uint32_t)cfg->weight,
						  (uint32_t)cfg->vnodes,
						  cfg->rf, c->tokens,
						  RING_TOKENS_MAX, &c->n_tokens);
		ring_free(empty);
		if (rc)
			errf(err, errlen, rc, "choosing ring tokens: %s",
			     rk_strerror(rc));
		else
			rc = tokens_save(c, cfg->data_dir, path, err, errlen);
		if (!rc)
			rk_info(lg, "cluster", "chose %zu ring tokens (weight %"
				PRIu64 " x %" PRIu64 " vnodes)",
				c->n_tokens, cfg->weight, cfg->vnodes);
	}
	if (!rc && (rc = build_ring(c)) != 0)
		errf(err, errlen, rc, "building the ring: %s", rk_strerror(rc));
	if (rc) {
		cluster_free(c);
		return rc;
	}
	*out = c;
	return 0;
}

void cluster_free(struct cluster *c)
{
	if (!c)
		return;
	ring_free(c->ring);
	free(c->tokens);
	free(c);
}

const struct ring *cluster_ring(const struct cluster *c)
{
	return c->ring;
}

uint32_t cluster_rf(const struct cluster *c)
{
	return (uint32_t)c->cfg->rf;
}

size_t cluster_ring_members(const struct cluster *c, const char *self_addr,
			    struct rk_ring_member *out, size_t cap)
{
	if (cap < 1)
		return 0;
	out[0] = (struct rk_ring_member){
		.node_id = c->self_id,
		.weight = (uint32_t)c->cfg->weight,
		.tokens = c->tokens,
		.n_tokens = c->n_tokens,
		.client_addr = self_addr,
		.state = "alive",
	};
	return 1;
}
