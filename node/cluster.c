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

#include "buf.h"
#include "crc32c.h"
#include "err.h"
#include "hash.h"
#include "peer_wire.h"

#define META_VERSION 2
#define MEMBERS_MAGIC "RKM1"
/* How often missing tokens are fetched again, and own tokens tried. */
#define CLUSTER_TICK 0.5
/* A token fetch waits this long for the reply, ms. */
#define FETCH_TIMEOUT_MS 3000
/* Most members this node keeps (a bound on memory and file size). */
#define CLUSTER_MAX_MEMBERS 4096

struct member {
	uint64_t id;
	enum cluster_liveness liveness;
	enum cluster_status status;    /* as its metadata says */
	uint64_t incarnation;
	uint32_t weight;
	uint64_t *tokens;              /* owned; NULL while unknown */
	size_t n_tokens;
	size_t want_n;                 /* from its metadata */
	uint64_t want_digest;
	char client_addr[256];
	char gossip_addr[256];
	int fetching;                  /* a TOKENS_GET is in flight */
};

struct cluster {
	struct ev_loop *loop;
	const struct node_config *cfg;
	const struct rk_logger *lg;
	struct peers *peers;
	uint64_t self_id;
	char self_addr[256];
	struct member *m;              /* m[0] is this node */
	size_t n, cap;
	struct ring *ring;             /* natural owners, never NULL */
	struct ring *pending;          /* owners once the change is done;
					  NULL when none is under way */
	uint64_t epoch;
	uint64_t *removed;             /* taken off the ring for good */
	size_t n_removed, cap_removed;
	int fetching_removed;          /* a REMOVED_GET is out */
	int joined;                    /* gossip join done */
	ev_tstamp joined_at;           /* when (ev_now) */
	ev_tstamp waiting_since;       /* behind a lower id to choose
					  tokens; 0 = not waiting */
	ev_timer tick;
	cluster_meta_fn meta_fn;
	cluster_ring_fn ring_fn;
	cluster_live_fn live_fn;
	void *cb_ctx;
};

/* A fetch in flight; freed by its reply callback. */
struct fetch {
	struct cluster *c;
	uint64_t id;
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

static uint64_t tokens_digest(const uint64_t *t, size_t n)
{
	uint8_t buf[8];
	uint64_t h = 0x72696e676b76ull; /* any fixed start */
	for (size_t i = 0; i < n; i++) {
		rk_put_le64(buf, t[i]);
		h = rk_hash_seeded(buf, 8, h);
	}
	return h;
}

static struct member *find(struct cluster *c, uint64_t id)
{
	for (size_t i = 0; i < c->n; i++)
		if (c->m[i].id == id)
			return &c->m[i];
	return NULL;
}

static struct member *add(struct cluster *c, uint64_t id)
{
	if (c->n == CLUSTER_MAX_MEMBERS)
		return NULL;
	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 16;
		struct member *nm = realloc(c->m, cap * sizeof(*nm));
		if (!nm)
			return NULL;
		c->m = nm;
		c->cap = cap;
	}
	struct member *m = &c->m[c->n++];
	memset(m, 0, sizeof(*m));
	m->id = id;
	m->weight = 1;
	return m;
}

/* ------------------------------------------------------------------ */
/* files                                                               */

/* Writes buf to path durably: temporary file, fsync, rename, fsync dir. */
static int write_durably(const char *dir, const char *path,
			 const uint8_t *buf, size_t len)
{
	char tmp[PATH_MAX];
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	int ok = fd >= 0 && write(fd, buf, len) == (ssize_t)len &&
		 fsync(fd) == 0 && rename(tmp, path) == 0;
	if (fd >= 0)
		close(fd);
	if (ok) {
		int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		ok = dfd >= 0 && fsync(dfd) == 0;
		if (dfd >= 0)
			close(dfd);
	}
	return ok ? 0 : RK_EIO;
}

static int self_tokens_load(struct cluster *c, char *err, size_t errlen)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/tokens", c->cfg->data_dir);
	FILE *f = fopen(path, "rb");
	if (!f) {
		if (errno == ENOENT)
			return RK_ENOT_FOUND;
		return errf(err, errlen, RK_EIO, "cannot read %s: %s", path,
			    strerror(errno));
	}
	size_t cap = ring_tokens_encoded_size(RING_TOKENS_MAX);
	uint8_t *buf = malloc(cap);
	uint64_t *tok = malloc(RING_TOKENS_MAX * sizeof(uint64_t));
	size_t len = buf ? fread(buf, 1, cap, f) : 0, n = 0;
	int bad = !buf || !tok || ferror(f);
	fclose(f);
	int rc = bad ? RK_EIO : ring_tokens_decode(buf, len, tok,
						   RING_TOKENS_MAX, &n);
	free(buf);
	if (rc) {
		free(tok);
		return errf(err, errlen, RK_ECORRUPT,
			    "%s is damaged (%s); it holds this node's place on "
			    "the ring: restore it from a backup rather than "
			    "deleting it",
			    path, rk_strerror(rc));
	}
	c->m[0].tokens = tok;
	c->m[0].n_tokens = n;
	return 0;
}

static int self_tokens_save(struct cluster *c)
{
	const struct member *s = &c->m[0];
	size_t cap = ring_tokens_encoded_size(s->n_tokens), len;
	uint8_t *buf = malloc(cap);
	if (!buf)
		return RK_ENOMEM;
	int rc = ring_tokens_encode(s->tokens, s->n_tokens, buf, cap, &len);
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/tokens", c->cfg->data_dir);
	if (!rc)
		rc = write_durably(c->cfg->data_dir, path, buf, len);
	free(buf);
	return rc;
}

/* DATA_DIR/members: every other member's weight and tokens, so that a
 * restart rebuilds the ring without waiting for every owner to be up.
 * "RKM1", u32 count, then per member u64 id, u32 weight, u32 n, n x u64
 * tokens, and a CRC-32C of all that.  It is a cache: when damaged it is
 * ignored (with a warning) and refilled from gossip. */
static void members_save(struct cluster *c)
{
	struct rk_buf b;
	rk_buf_init(&b);
	uint8_t tmp[8];
	rk_buf_append(&b, MEMBERS_MAGIC, 4);
	uint32_t count = 0;
	for (size_t i = 1; i < c->n; i++)
		count += c->m[i].tokens != NULL;
	rk_put_le32(tmp, count);
	rk_buf_append(&b, tmp, 4);
	for (size_t i = 1; i < c->n; i++) {
		const struct member *m = &c->m[i];
		if (!m->tokens)
			continue;
		rk_put_le64(tmp, m->id);
		rk_buf_append(&b, tmp, 8);
		rk_put_le32(tmp, m->weight);
		rk_buf_append(&b, tmp, 4);
		rk_put_le32(tmp, (uint32_t)m->n_tokens);
		rk_buf_append(&b, tmp, 4);
		for (size_t k = 0; k < m->n_tokens; k++) {
			rk_put_le64(tmp, m->tokens[k]);
			rk_buf_append(&b, tmp, 8);
		}
	}
	rk_put_le32(tmp, rk_crc32c(0, b.data, b.len));
	int rc = rk_buf_append(&b, tmp, 4);
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/members", c->cfg->data_dir);
	if (rc || write_durably(c->cfg->data_dir, path, b.data, b.len))
		rk_warn(c->lg, "cluster", "cannot write %s: %s", path,
			rc ? "out of memory" : strerror(errno));
	rk_buf_destroy(&b);
}

static void members_load(struct cluster *c)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/members", c->cfg->data_dir);
	FILE *f = fopen(path, "rb");
	if (!f)
		return;
	struct rk_buf b;
	rk_buf_init(&b);
	uint8_t chunk[65536];
	size_t got;
	while ((got = fread(chunk, 1, sizeof(chunk), f)) > 0)
		if (rk_buf_append(&b, chunk, got))
			break;
	fclose(f);
	const uint8_t *p = b.data;
	size_t len = b.len, off = 8;
	const char *why = NULL;
	if (len < 12 || memcmp(p, MEMBERS_MAGIC, 4) != 0)
		why = "bad header";
	else if (rk_crc32c(0, p, len - 4) != rk_get_le32(p + len - 4))
		why = "checksum mismatch";
	uint32_t count = why ? 0 : rk_get_le32(p + 4);
	for (uint32_t i = 0; !why && i < count; i++) {
		if (off + 16 > len - 4) {
			why = "truncated";
			break;
		}
		uint64_t id = rk_get_le64(p + off);
		uint32_t weight = rk_get_le32(p + off + 8);
		uint32_t n = rk_get_le32(p + off + 12);
		off += 16;
		if (n == 0 || n > RING_TOKENS_MAX || off + (size_t)n * 8 > len - 4) {
			why = "bad token count";
			break;
		}
		if (id == c->self_id || find(c, id)) {
			off += (size_t)n * 8;
			continue;
		}
		struct member *m = add(c, id);
		uint64_t *t = malloc((size_t)n * 8);
		if (!m || !t) {
			free(t);
			break;
		}
		for (uint32_t k = 0; k < n; k++)
			t[k] = rk_get_le64(p + off + (size_t)k * 8);
		off += (size_t)n * 8;
		m->weight = weight;
		m->tokens = t;
		m->n_tokens = n;
		m->status = CLUSTER_NORMAL;
		m->want_n = n;
		m->want_digest = tokens_digest(t, n);
	}
	if (why)
		rk_warn(c->lg, "cluster",
			"%s: %s; ignoring it, the ring will be relearned from "
			"gossip", path, why);
	rk_buf_destroy(&b);
}

/* DATA_DIR/ring_status: this node's ring status, one word. */
static const char *const status_names[] = {"no-tokens", "normal", "joining",
					   "leaving", "left"};
_Static_assert(CLUSTER_GONE == 4, "status_names follows the enum");

const char *cluster_status_name(enum cluster_status s)
{
	return (unsigned)s < 5 ? status_names[s] : "?";
}

static void status_load(struct cluster *c)
{
	char path[PATH_MAX], word[32] = "";
	snprintf(path, sizeof(path), "%s/ring_status", c->cfg->data_dir);
	FILE *f = fopen(path, "r");
	if (!f)
		return;
	int ok = fscanf(f, "%31s", word) == 1;
	fclose(f);
	for (int i = 0; ok && i < 5; i++)
		if (!strcmp(word, status_names[i]))
			c->m[0].status = (enum cluster_status)i;
}

static int status_save(struct cluster *c)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/ring_status", c->cfg->data_dir);
	char line[32];
	int n = snprintf(line, sizeof(line), "%s\n",
			 cluster_status_name(c->m[0].status));
	return write_durably(c->cfg->data_dir, path, (const uint8_t *)line,
			     (size_t)n);
}

static int u64_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* A checksum of the removed set: members compare theirs through gossip. */
static uint64_t removed_digest(const struct cluster *c)
{
	return c->n_removed ? tokens_digest(c->removed, c->n_removed) : 0;
}

int cluster_is_removed(const struct cluster *c, uint64_t id)
{
	for (size_t i = 0; i < c->n_removed; i++)
		if (c->removed[i] == id)
			return 1;
	return 0;
}

/* DATA_DIR/removed: one id (16 hex digits) per line. */
static int removed_save(struct cluster *c)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/removed", c->cfg->data_dir);
	struct rk_buf b;
	rk_buf_init(&b);
	for (size_t i = 0; i < c->n_removed; i++) {
		char line[24];
		int n = snprintf(line, sizeof(line), "%016" PRIx64 "\n",
				 c->removed[i]);
		rk_buf_append(&b, line, (size_t)n);
	}
	int rc = write_durably(c->cfg->data_dir, path, b.data ? b.data
							      : (const uint8_t *)"",
			       b.len);
	rk_buf_destroy(&b);
	return rc;
}

static int removed_add(struct cluster *c, uint64_t id)
{
	if (cluster_is_removed(c, id))
		return 0;
	if (c->n_removed == c->cap_removed) {
		size_t cap = c->cap_removed ? c->cap_removed * 2 : 8;
		uint64_t *n = realloc(c->removed, cap * sizeof(*n));
		if (!n)
			return RK_ENOMEM;
		c->removed = n;
		c->cap_removed = cap;
	}
	c->removed[c->n_removed++] = id;
	qsort(c->removed, c->n_removed, sizeof(*c->removed), u64_cmp);
	return 1;
}

static void removed_load(struct cluster *c)
{
	char path[PATH_MAX], line[64];
	snprintf(path, sizeof(path), "%s/removed", c->cfg->data_dir);
	FILE *f = fopen(path, "r");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		unsigned long long id;
		if (sscanf(line, "%16llx", &id) == 1 && id)
			removed_add(c, id);
	}
	fclose(f);
}

size_t cluster_removed(const struct cluster *c, const uint64_t **ids)
{
	*ids = c->removed;
	return c->n_removed;
}

/* ------------------------------------------------------------------ */
/* the ring                                                            */

/* Members in a ring: natural (normal, leaving) or pending (normal,
 * joining); `add` counts as normal, `drop` is left out. */
static int build(const struct cluster *c, int pending, uint64_t add,
		 uint64_t drop, struct ring **out)
{
	struct ring_member *rm = calloc(c->n ? c->n : 1, sizeof(*rm));
	if (!rm)
		return RK_ENOMEM;
	size_t k = 0;
	for (size_t i = 0; i < c->n; i++) {
		const struct member *m = &c->m[i];
		if (!m->tokens || m->id == drop || cluster_is_removed(c, m->id))
			continue;
		int in = m->id == add || m->status == CLUSTER_NORMAL ||
			 (pending ? m->status == CLUSTER_JOINING
				  : m->status == CLUSTER_LEAVING);
		if (!in)
			continue;
		rm[k++] = (struct ring_member){.node_id = m->id,
					       .weight = m->weight ? m->weight : 1,
					       .tokens = m->tokens,
					       .n_tokens = m->n_tokens};
	}
	struct ring_config rcfg = {.epoch = c->epoch + 1,
				   .rf_max = (uint32_t)c->cfg->rf};
	int rc = ring_new(rm, k, &rcfg, out);
	free(rm);
	return rc;
}

int cluster_build_ring(const struct cluster *c, uint64_t add, uint64_t drop,
		       struct ring **out)
{
	return build(c, 0, add, drop, out);
}

static void rebuild_ring(struct cluster *c)
{
	struct ring *r, *p;
	int rc = build(c, 0, 0, 0, &r);
	if (!rc && (rc = build(c, 1, 0, 0, &p)) != 0)
		ring_free(r);
	if (rc) {
		rk_error(c->lg, "cluster", "cannot build the ring: %s",
			 rk_strerror(rc));
		return;
	}
	if (ring_checksum(p) == ring_checksum(r) &&
	    ring_member_count(p) == ring_member_count(r)) {
		ring_free(p);
		p = NULL; /* no change under way */
	}
	int same = c->ring && ring_checksum(r) == ring_checksum(c->ring) &&
		   ring_member_count(r) == ring_member_count(c->ring) &&
		   (!p) == (!c->pending) &&
		   (!p || ring_checksum(p) == ring_checksum(c->pending));
	if (same) {
		ring_free(r);
		ring_free(p);
		return;
	}
	c->epoch++;
	ring_free(c->ring);
	ring_free(c->pending);
	c->ring = r;
	c->pending = p;
	rk_info(c->lg, "cluster", "ring epoch %" PRIu64 ": %zu owners, %zu "
		"vnodes, checksum %016" PRIx64 "%s",
		c->epoch, ring_member_count(r), ring_vnode_count(r),
		ring_checksum(r), p ? " (a change is under way)" : "");
	if (c->ring_fn)
		c->ring_fn(c->cb_ctx, r, p);
}

/* ------------------------------------------------------------------ */
/* tokens: our own, and fetching others'                               */

static void announce(struct cluster *c)
{
	uint8_t meta[CLUSTER_META_LEN];
	cluster_self_meta(c, meta);
	if (c->meta_fn)
		c->meta_fn(c->cb_ctx, meta, sizeof(meta));
}

/* Whether it is our turn to choose tokens (see "serialize the choice" in
 * cluster.h): the join delay is over and no alive member with a lower id
 * is still without tokens, or we have waited for it long enough.  The
 * default delay, 1 s, is five gossip rounds (gossip_ms 200): on a LAN a
 * join reaches every member in one or two. */
static int our_turn(struct cluster *c)
{
	ev_tstamp now = ev_now(c->loop);
	if (now < c->joined_at + (double)c->cfg->join_delay_ms / 1000.0)
		return 0;
	const struct member *first = NULL;
	for (size_t i = 1; i < c->n; i++) {
		const struct member *m = &c->m[i];
		if (m->id < c->self_id && m->liveness == CLUSTER_ALIVE &&
		    m->status == CLUSTER_NO_TOKENS &&
		    !cluster_is_removed(c, m->id) &&
		    (!first || m->id < first->id))
			first = m;
	}
	if (!first) {
		c->waiting_since = 0;
		return 1;
	}
	if (c->waiting_since == 0) {
		c->waiting_since = now;
		rk_info(c->lg, "cluster",
			"%016" PRIx64 " is new too and has the lower id: "
			"waiting for it to choose its ring tokens first",
			first->id);
		return 0;
	}
	if (now - c->waiting_since <
	    (double)c->cfg->settle_timeout_ms / 1000.0)
		return 0;
	rk_warn(c->lg, "cluster",
		"%016" PRIx64 " has not chosen its ring tokens within "
		"replication.settle_timeout; choosing ours anyway",
		first->id);
	return 1;
}

/* Tokens a and b (each ascending) have in common. */
static size_t shared_tokens(const uint64_t *a, size_t na, const uint64_t *b,
			    size_t nb)
{
	size_t i = 0, j = 0, k = 0;
	while (i < na && j < nb) {
		if (a[i] < b[j]) {
			i++;
		} else if (b[j] < a[i]) {
			j++;
		} else {
			k++;
			i++;
			j++;
		}
	}
	return k;
}

/* Chooses our tokens against the ring as it will be once the joins under
 * way are done. */
static int choose_tokens(struct cluster *c)
{
	struct member *s = &c->m[0];
	const struct ring *base = c->pending ? c->pending : c->ring;
	uint64_t *t = malloc(RING_TOKENS_MAX * sizeof(uint64_t));
	if (!t)
		return RK_ENOMEM;
	size_t n;
	int rc = ring_allocate_tokens(base, c->self_id, s->weight,
				      (uint32_t)c->cfg->vnodes, c->cfg->rf, t,
				      RING_TOKENS_MAX, &n);
	if (rc) {
		free(t);
		return rc;
	}
	s->tokens = t;
	s->n_tokens = n;
	/* Alone, there is nothing to pull: we own everything at once. */
	s->status = ring_member_count(base) ? CLUSTER_JOINING
					    : CLUSTER_NORMAL;
	if ((rc = self_tokens_save(c)) != 0 || (rc = status_save(c)) != 0) {
		s->tokens = NULL;
		s->n_tokens = 0;
		s->status = CLUSTER_NO_TOKENS;
		free(t);
		return rc;
	}
	rk_info(c->lg, "cluster",
		"chose %zu ring tokens against a ring of %zu members", n,
		ring_member_count(base));
	rebuild_ring(c);
	announce(c);
	return 0;
}

static void on_tokens(void *ctx, int status, const struct peer_msg *reply)
{
	struct fetch *f = ctx;
	struct cluster *c = f->c;
	struct member *m = c ? find(c, f->id) : NULL;
	free(f);
	if (!m)
		return;
	m->fetching = 0;
	if (status || reply->op != PEER_OP_TOKENS || reply->node_id != m->id ||
	    reply->n_tokens == 0)
		return; /* the tick retries */
	if (reply->n_tokens != m->want_n ||
	    tokens_digest(reply->tokens, reply->n_tokens) != m->want_digest)
		return; /* stale copy; the tick retries */
	uint64_t *t = malloc(reply->n_tokens * sizeof(uint64_t));
	if (!t)
		return;
	memcpy(t, reply->tokens, reply->n_tokens * sizeof(uint64_t));
	free(m->tokens);
	m->tokens = t;
	m->n_tokens = reply->n_tokens;
	m->weight = reply->weight ? reply->weight : 1;
	rk_info(c->lg, "cluster", "learned %zu tokens of %016" PRIx64,
		m->n_tokens, m->id);
	size_t same = c->m[0].tokens ? shared_tokens(c->m[0].tokens,
						     c->m[0].n_tokens, t,
						     m->n_tokens)
				     : 0;
	if (same)
		rk_warn(c->lg, "cluster",
			"%zu of our ring tokens are also %016" PRIx64
			"'s: we chose them at the same time (raise "
			"cluster.join_delay); one of us owns less than its "
			"share until it is decommissioned and joins again",
			same, m->id);
	members_save(c);
	rebuild_ring(c);
}

/* Owners, and nodes becoming or ceasing to be owners: coordinators
 * need a joining node's tokens to send it the writes of the ranges it
 * is pulling (the pending ring). */
static int needs_tokens(const struct member *m)
{
	return (m->status == CLUSTER_NORMAL || m->status == CLUSTER_JOINING ||
		m->status == CLUSTER_LEAVING) &&
	       (!m->tokens || m->n_tokens != m->want_n ||
		tokens_digest(m->tokens, m->n_tokens) != m->want_digest);
}

/* Asks for m's tokens: from m itself when it is alive, else from any
 * alive member (they all keep every member's tokens). */
static void fetch_tokens(struct cluster *c, struct member *m)
{
	if (m->fetching)
		return;
	const char *addr = NULL;
	if (m->liveness == CLUSTER_ALIVE && m->client_addr[0]) {
		addr = m->client_addr;
	} else {
		for (size_t i = 1; i < c->n; i++)
			if (c->m[i].liveness == CLUSTER_ALIVE &&
			    c->m[i].client_addr[0] && &c->m[i] != m) {
				addr = c->m[i].client_addr;
				break;
			}
	}
	if (!addr)
		return;
	struct fetch *f = malloc(sizeof(*f));
	if (!f)
		return;
	f->c = c;
	f->id = m->id;
	m->fetching = 1;
	struct peer_msg q = {.op = PEER_OP_TOKENS_GET, .node_id = m->id};
	peers_request(c->peers, addr, &q, FETCH_TIMEOUT_MS, on_tokens, f);
}

void cluster_merge_removed(struct cluster *c, const uint64_t *ids, size_t n)
{
	int added = 0;
	for (size_t i = 0; i < n; i++)
		if (ids[i] && ids[i] != c->self_id &&
		    removed_add(c, ids[i]) == 1)
			added++;
	if (!added)
		return;
	rk_info(c->lg, "cluster", "learned %d removed node(s) from a peer",
		added);
	removed_save(c);
	rebuild_ring(c);
	announce(c);
}

static void on_removed(void *ctx, int status, const struct peer_msg *reply)
{
	struct cluster *c = ctx;
	c->fetching_removed = 0;
	if (status || reply->op != PEER_OP_REMOVED)
		return;
	cluster_merge_removed(c, reply->ids, reply->n_ids);
}

/* Removals are permanent, so the union of every node's set is the set:
 * a member whose digest differs may know one we do not. */
static void fetch_removed(struct cluster *c, const struct member *m)
{
	if (c->fetching_removed || !m->client_addr[0])
		return;
	c->fetching_removed = 1;
	struct peer_msg q = {.op = PEER_OP_REMOVED_GET};
	peers_request(c->peers, m->client_addr, &q, FETCH_TIMEOUT_MS,
		      on_removed, c);
}

static void on_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	struct cluster *c = w->data;
	int missing = 0;
	for (size_t i = 1; i < c->n; i++) {
		if (needs_tokens(&c->m[i])) {
			missing++;
			fetch_tokens(c, &c->m[i]);
		}
	}
	/* Our own tokens, once we know the ring we are joining. */
	if (!c->m[0].tokens && c->joined && missing == 0 && our_turn(c)) {
		int rc = choose_tokens(c);
		if (rc)
			rk_error(c->lg, "cluster", "choosing tokens: %s",
				 rk_strerror(rc));
	}
}

/* ------------------------------------------------------------------ */

int cluster_open(struct ev_loop *loop, const struct node_config *cfg,
		 uint64_t self_id, const char *self_addr, struct peers *peers,
		 const struct rk_logger *lg, struct cluster **out, char *err,
		 size_t errlen)
{
	*out = NULL;
	struct cluster *c = calloc(1, sizeof(*c));
	if (!c)
		return errf(err, errlen, RK_ENOMEM, "out of memory");
	c->loop = loop;
	c->cfg = cfg;
	c->lg = lg;
	c->peers = peers;
	c->self_id = self_id;
	snprintf(c->self_addr, sizeof(c->self_addr), "%s", self_addr);
	struct member *s = add(c, self_id);
	if (!s) {
		free(c);
		return errf(err, errlen, RK_ENOMEM, "out of memory");
	}
	s->weight = (uint32_t)cfg->weight;
	s->liveness = CLUSTER_ALIVE;
	snprintf(s->client_addr, sizeof(s->client_addr), "%s", self_addr);
	snprintf(s->gossip_addr, sizeof(s->gossip_addr), "%s", self_addr);
	int rc = self_tokens_load(c, err, errlen);
	if (rc && rc != RK_ENOT_FOUND) {
		cluster_free(c);
		return rc;
	}
	s->status = rc == 0 ? CLUSTER_NORMAL : CLUSTER_NO_TOKENS;
	if (rc == 0)
		status_load(c); /* joining or leaving when it stopped */
	members_load(c);
	removed_load(c);
	rebuild_ring(c);
	if (!s->tokens && !cfg->seeds[0]) {
		/* A new cluster of one: nothing to learn first. */
		c->joined = 1;
		if ((rc = choose_tokens(c)) != 0) {
			cluster_free(c);
			return errf(err, errlen, rc, "choosing ring tokens: %s",
				    rk_strerror(rc));
		}
	}
	ev_timer_init(&c->tick, on_tick, CLUSTER_TICK, CLUSTER_TICK);
	c->tick.data = c;
	ev_timer_start(loop, &c->tick);
	*out = c;
	return 0;
}

void cluster_free(struct cluster *c)
{
	if (!c)
		return;
	if (c->loop)
		ev_timer_stop(c->loop, &c->tick);
	for (size_t i = 0; i < c->n; i++)
		free(c->m[i].tokens);
	free(c->m);
	ring_free(c->ring);
	ring_free(c->pending);
	free(c->removed);
	free(c);
}

void cluster_set_callbacks(struct cluster *c, cluster_meta_fn meta,
			   cluster_ring_fn ring, cluster_live_fn live,
			   void *ctx)
{
	c->meta_fn = meta;
	c->ring_fn = ring;
	c->live_fn = live;
	c->cb_ctx = ctx;
}

uint64_t cluster_id_at(const struct cluster *c, const char *addr)
{
	for (size_t i = 0; i < c->n; i++)
		if (strcmp(c->m[i].client_addr, addr) == 0)
			return c->m[i].id;
	return 0;
}

const char *cluster_address_of(const struct cluster *c, uint64_t id)
{
	for (size_t i = 0; i < c->n; i++)
		if (c->m[i].id == id)
			return c->m[i].client_addr[0] ? c->m[i].client_addr
						      : NULL;
	return NULL;
}

void cluster_self_meta(const struct cluster *c, uint8_t *out)
{
	const struct member *s = &c->m[0];
	out[0] = META_VERSION;
	out[1] = (uint8_t)s->status;
	rk_put_le32(out + 2, (uint32_t)s->n_tokens);
	rk_put_le64(out + 6, s->tokens ? tokens_digest(s->tokens, s->n_tokens)
				       : 0);
	rk_put_le64(out + 14, removed_digest(c));
}

void cluster_on_member(struct cluster *c, uint64_t id,
		       enum cluster_liveness liveness, uint64_t incarnation,
		       uint32_t weight, const char *client_addr,
		       const char *gossip_addr, const uint8_t *meta,
		       size_t meta_len)
{
	struct member *m = find(c, id);
	if (!m && !(m = add(c, id)))
		return;
	int changed = m->liveness != liveness;
	m->liveness = liveness;
	m->incarnation = incarnation;
	if (client_addr && *client_addr)
		snprintf(m->client_addr, sizeof(m->client_addr), "%s",
			 client_addr);
	if (gossip_addr && *gossip_addr)
		snprintf(m->gossip_addr, sizeof(m->gossip_addr), "%s",
			 gossip_addr);
	if (changed && c->live_fn && id != c->self_id)
		c->live_fn(c->cb_ctx, id, liveness);
	if (id == c->self_id)
		return; /* our own metadata is ours to set */
	if (weight)
		m->weight = weight;
	if (meta && meta_len == CLUSTER_META_LEN && meta[0] == META_VERSION &&
	    meta[1] <= CLUSTER_GONE) {
		m->status = (enum cluster_status)meta[1];
		m->want_n = rk_get_le32(meta + 2);
		m->want_digest = rk_get_le64(meta + 6);
		if (m->want_n > RING_TOKENS_MAX)
			m->status = CLUSTER_NO_TOKENS;
		if (rk_get_le64(meta + 14) != removed_digest(c) &&
		    liveness == CLUSTER_ALIVE)
			fetch_removed(c, m);
		if (m->status == CLUSTER_GONE && !cluster_is_removed(c, m->id))
			cluster_remove(c, m->id);
		rebuild_ring(c); /* a status change moves the rings */
	}
	if (needs_tokens(m))
		fetch_tokens(c, m);
}

void cluster_on_joined(struct cluster *c)
{
	if (!c->joined)
		c->joined_at = ev_now(c->loop);
	c->joined = 1;
}

int cluster_set_self_status(struct cluster *c, enum cluster_status st)
{
	if (c->m[0].status == st)
		return 0;
	rk_info(c->lg, "cluster", "ring status %s -> %s",
		cluster_status_name(c->m[0].status), cluster_status_name(st));
	c->m[0].status = st;
	int rc = status_save(c);
	if (st == CLUSTER_GONE)
		removed_add(c, c->self_id);
	rebuild_ring(c);
	announce(c);
	return rc;
}

int cluster_remove(struct cluster *c, uint64_t id)
{
	int rc = removed_add(c, id);
	if (rc <= 0)
		return rc;
	rk_info(c->lg, "cluster", "n%" PRIx64 " is off the ring for good", id);
	rc = removed_save(c);
	rebuild_ring(c);
	announce(c);
	return rc;
}

const struct ring *cluster_pending_ring(const struct cluster *c)
{
	return c->pending;
}

int cluster_tokens_reply(const struct cluster *c, uint64_t id,
			 struct peer_msg *reply)
{
	for (size_t i = 0; i < c->n; i++) {
		const struct member *m = &c->m[i];
		if (m->id != id || !m->tokens)
			continue;
		reply->op = PEER_OP_TOKENS;
		reply->node_id = id;
		reply->weight = m->weight;
		reply->tokens = m->tokens;
		reply->n_tokens = m->n_tokens;
		reply->ring_status = (uint32_t)m->status;
		return 0;
	}
	return RK_ENOT_FOUND;
}

const struct ring *cluster_ring(const struct cluster *c)
{
	return c->ring;
}

uint32_t cluster_rf(const struct cluster *c)
{
	return (uint32_t)c->cfg->rf;
}

int cluster_has_tokens(const struct cluster *c)
{
	return c->m[0].tokens != NULL;
}

size_t cluster_members(const struct cluster *c, struct cluster_member *out,
		       size_t cap)
{
	for (size_t i = 0; i < c->n && i < cap; i++) {
		const struct member *m = &c->m[i];
		out[i] = (struct cluster_member){
			.id = m->id,
			.liveness = m->liveness,
			.status = m->status,
			.incarnation = m->incarnation,
			.weight = m->weight,
			.n_tokens = m->tokens ? m->n_tokens : 0,
			.tokens = m->tokens,
			.client_addr = m->client_addr,
			.gossip_addr = m->gossip_addr,
			.is_self = i == 0,
			.in_ring = ring_member_find(c->ring, m->id, &(size_t){0}) == 0,
			.removed = cluster_is_removed(c, m->id),
		};
	}
	return c->n;
}

enum cluster_status cluster_self_status(const struct cluster *c)
{
	return c->m[0].status;
}

int cluster_is_member(const struct cluster *c, uint64_t id)
{
	for (size_t i = 0; i < c->n; i++)
		if (c->m[i].id == id)
			return 1;
	return 0;
}

enum cluster_liveness cluster_liveness_of(const struct cluster *c, uint64_t id)
{
	for (size_t i = 0; i < c->n; i++)
		if (c->m[i].id == id)
			return c->m[i].liveness;
	return CLUSTER_UNKNOWN;
}

const char *cluster_liveness_name(enum cluster_liveness l)
{
	switch (l) {
	case CLUSTER_ALIVE: return "alive";
	case CLUSTER_SUSPECT: return "suspect";
	case CLUSTER_DEAD: return "dead";
	case CLUSTER_LEFT: return "left";
	case CLUSTER_UNKNOWN:
	default: return "unknown";
	}
}
