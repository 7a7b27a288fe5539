#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "counter.h"
#include "crc32c.h"
#include "crdt.h"
#include "err.h"
#include "hlc.h"
#include "table.h"

/* One add of ours waiting for its log record to be durable. */
struct pend {
	uint64_t lsn;
	struct rk_rec *rec; /* owned: key, the delta bytes, the stamp */
};

enum compact_phase {
	COMPACT_IDLE,
	COMPACT_SCANNING, /* the loop feeds records to the snapshot */
	COMPACT_WRITING,  /* all fed; the compaction thread finishes */
};

struct store {
	struct store_config cfg;
	char *data_dir;
	const struct rk_logger *lg;
	struct rk_table *table;
	struct rk_hlc clock;
	struct oplog *log;
	uint64_t node_id;
	int lock_fd;
	int clock_fd;     /* data_dir/clock: the clock ceiling */
	uint64_t ceiling; /* no version at or above it has been issued */
	uint64_t tombstones; /* register tombstones, deleted counters */
	uint64_t counters;   /* live counters */

	/* counters */
	struct crdt_dedup *dedup;     /* op ids applied or merged here */
	struct crdt_counter *scratch; /* a counter being changed */
	uint8_t *cbuf;		      /* its encoding */
	size_t cbuf_cap;
	uint8_t dbuf[CRDT_DELTA_SIZE]; /* the delta an add ships */
	/* Our own adds whose log records are not yet durable (see "adds
	 * wait for their fsync"): in LSN order, and the newest per key. */
	struct pend *pq; /* ring of pq_cap, pq_len from head */
	size_t pq_head, pq_len, pq_cap;
	struct rk_table *pend_latest; /* key -> newest pending delta, its
					 value followed by its u64 lsn */
	/* Paxos acceptor states (RK_REC_PAXOS records: the newest of each
	 * key): replayed, appended with a forced fsync, and copied into
	 * every snapshot. */
	struct rk_table *paxos;

	enum compact_phase phase;
	uint64_t scan_cursor;
	uint64_t now_ms;         /* for the scan callback */
	struct rk_rec **purge;   /* expired tombstones seen in one step */
	size_t npurge, purge_cap;
	int step_rc;
	size_t step_records;

	struct store_stats stats;
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

static uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ------------------------------------------------------------------ */
/* the data directory                                                  */

/* Reads data_dir/node_id, or makes and durably writes a new random id. */
static int load_node_id(const char *dir, uint64_t *id, char *err,
			size_t errlen)
{
	char path[PATH_MAX], tmp[PATH_MAX];
	snprintf(path, sizeof(path), "%s/node_id", dir);
	FILE *f = fopen(path, "r");
	if (f) {
		char line[64] = {0};
		int ok = fgets(line, sizeof(line), f) != NULL;
		fclose(f);
		char *end = NULL;
		errno = 0;
		unsigned long long v = ok ? strtoull(line, &end, 16) : 0;
		if (!ok || errno || end == line || (*end && *end != '\n') ||
		    v == 0)
			return errf(err, errlen, RK_ECORRUPT,
				    "%s: not a node id (16 hex digits)", path);
		*id = v;
		return 0;
	}
	if (errno != ENOENT)
		return errf(err, errlen, RK_EIO, "cannot read %s: %s", path,
			    strerror(errno));
	uint64_t v = 0;
	while (v == 0)
		if (getrandom(&v, sizeof(v), 0) != sizeof(v))
			return errf(err, errlen, RK_EIO, "getrandom: %s",
				    strerror(errno));
	snprintf(tmp, sizeof(tmp), "%s/node_id.tmp", dir);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	char line[32];
	int n = snprintf(line, sizeof(line), "%016" PRIx64 "\n", v);
	if (fd < 0 || write(fd, line, (size_t)n) != n || fsync(fd) < 0 ||
	    rename(tmp, path) < 0) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		return errf(err, errlen, RK_EIO, "cannot write %s: %s", path,
			    strerror(e));
	}
	close(fd);
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || fsync(dfd) < 0) {
		int e = errno;
		if (dfd >= 0)
			close(dfd);
		return errf(err, errlen, RK_EIO, "cannot sync %s: %s", dir,
			    strerror(e));
	}
	close(dfd);
	*id = v;
	return 0;
}

/* Two processes on one data directory would corrupt it: hold a lock. */
static int lock_dir(const char *dir, int *fd_out, char *err, size_t errlen)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/LOCK", dir);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return errf(err, errlen, RK_EIO, "cannot open %s: %s", path,
			    strerror(errno));
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int e = errno;
		close(fd);
		if (e == EWOULDBLOCK)
			return errf(err, errlen, RK_EIO,
				    "%s is in use by another ringkvd", dir);
		return errf(err, errlen, RK_EIO, "cannot lock %s: %s", path,
			    strerror(e));
	}
	*fd_out = fd;
	return 0;
}

/* The clock ceiling (rk_hlc_ceiling) lives in data_dir/clock: 8 bytes
 * little-endian, then their CRC-32C, overwritten in place (12 bytes in one
 * sector: a write is whole or absent).  Missing on a first start. */
#define CLOCK_FILE_LEN 12

static int open_clock(struct store *s, char *err, size_t errlen)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/clock", s->data_dir);
	s->clock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (s->clock_fd < 0)
		return errf(err, errlen, RK_EIO, "cannot open %s: %s", path,
			    strerror(errno));
	uint8_t b[CLOCK_FILE_LEN + 1];
	ssize_t n = pread(s->clock_fd, b, sizeof(b), 0);
	if (n < 0)
		return errf(err, errlen, RK_EIO, "cannot read %s: %s", path,
			    strerror(errno));
	if (n == 0)
		return 0;
	if (n != CLOCK_FILE_LEN ||
	    rk_get_le32(b + 8) != rk_crc32c(0, b, 8))
		return errf(err, errlen, RK_ECORRUPT,
			    "%s is damaged (want %d bytes with a checksum); "
			    "if the node was stopped for longer than "
			    "storage.clock_window, deleting it is safe",
			    path, CLOCK_FILE_LEN);
	s->ceiling = rk_get_le64(b);
	return 0;
}

static int raise_ceiling(struct store *s, uint64_t ceiling)
{
	uint8_t b[CLOCK_FILE_LEN];
	rk_put_le64(b, ceiling);
	rk_put_le32(b + 8, rk_crc32c(0, b, 8));
	/* Synced whatever storage.fsync says: Paxos ballots are versions
	 * too, and a repeated ballot breaks its safety, not just one
	 * write's durability.  One sync per clock_window of writes. */
	if (pwrite(s->clock_fd, b, sizeof(b), 0) != (ssize_t)sizeof(b) ||
	    fdatasync(s->clock_fd) < 0) {
		rk_error(s->lg, "store",
			 "cannot persist the clock ceiling in %s/clock: %s; "
		       "writes are refused until it can be",
		       s->data_dir, strerror(errno));
		return RK_EIO;
	}
	s->ceiling = ceiling;
	return 0;
}

/* ------------------------------------------------------------------ */
/* applying records                                                    */

static int install_counter(struct store *s, const void *key, size_t klen,
			   const void *val, size_t vlen, rk_ts ts,
			   struct crdt_opid *op);

/* A record that stands for no live data: a tombstone, or a counter
 * deleted and not added to since (an encoded state with no entries). */
static int is_tomb(uint8_t type, size_t vlen)
{
	return type == RK_REC_TOMBSTONE ||
	       (type == RK_REC_COUNTER && vlen == CRDT_STATE_FIXED);
}

/* Puts rec at pos in the table, keeping the counts; frees what it
 * replaces.  Returns 0 or RK_ENOMEM (rec freed). */
static int put_rec(struct store *s, struct rk_table_pos *pos,
		   struct rk_rec *rec)
{
	struct rk_rec *old;
	if (rk_table_set(s->table, pos, rec, &old) != 0) {
		free(rec);
		return RK_ENOMEM;
	}
	if (old) {
		s->tombstones -= is_tomb(old->type, old->vlen);
		s->counters -= old->type == RK_REC_COUNTER &&
			       !is_tomb(old->type, old->vlen);
		free(old);
	}
	s->tombstones += is_tomb(rec->type, rec->vlen);
	s->counters +=
	    rec->type == RK_REC_COUNTER && !is_tomb(rec->type, rec->vlen);
	return 0;
}

/* Counts a record leaving the table. */
static void forget_rec(struct store *s, const struct rk_rec *gone)
{
	s->tombstones -= is_tomb(gone->type, gone->vlen);
	s->counters -=
	    gone->type == RK_REC_COUNTER && !is_tomb(gone->type, gone->vlen);
}

/* Room for the encoding of s->scratch in s->cbuf. */
static int cbuf_fit(struct store *s, size_t n)
{
	if (n <= s->cbuf_cap)
		return 0;
	uint8_t *b = realloc(s->cbuf, n);
	if (!b)
		return RK_ENOMEM;
	s->cbuf = b;
	s->cbuf_cap = n;
	return 0;
}

/* Installs s->scratch as key's counter record stamped ts. */
static int install_scratch(struct store *s, struct rk_table_pos *pos,
			   const void *key, size_t klen, rk_ts ts)
{
	size_t n = crdt_encoded_size(s->scratch);
	if (cbuf_fit(s, n))
		return RK_ENOMEM;
	crdt_encode(s->scratch, s->cbuf);
	struct rk_rec *rec = rk_rec_new(RK_REC_COUNTER, ts, key, (uint16_t)klen,
					s->cbuf, (uint32_t)n);
	if (!rec)
		return RK_ENOMEM;
	return put_rec(s, pos, rec);
}

/* Applies counter bytes (a state or a delta) by the join rule.  Returns
 * 1 when the table changed, 0 when not (a register never replaces a
 * counter; a covered state changes nothing), RK_ECORRUPT, RK_ENOMEM or
 * RK_EVALUE_TOO_LARGE.  *op gets a delta's op id (zero otherwise). */
static int install_counter(struct store *s, const void *key, size_t klen,
			   const void *val, size_t vlen, rk_ts ts,
			   struct crdt_opid *op)
{
	memset(op, 0, sizeof(*op));
	struct rk_table_pos pos;
	struct rk_rec *cur = rk_table_find(s->table, key, klen, &pos);
	enum counter_join j =
	    counter_join_rule(cur != NULL, cur && cur->type == RK_REC_COUNTER,
			      cur ? cur->ts : (rk_ts){0, 0}, 1, ts);
	int rc;
	if (j == COUNTER_MERGE) {
		if ((rc = counter_load(s->scratch, rk_rec_value(cur),
				       cur->vlen)))
			return rc;
		rc = counter_merge_bytes(s->scratch, val, vlen, op);
		if (rc <= 0)
			return rc;
		if (rk_ts_cmp(cur->ts, ts) > 0)
			ts = cur->ts;
	} else {
		/* Nothing, or a register: the counter takes the key. */
		crdt_reset(s->scratch);
		rc = counter_merge_bytes(s->scratch, val, vlen, op);
		if (rc < 0)
			return rc;
	}
	rc = install_scratch(s, &pos, key, klen, ts);
	return rc < 0 ? rc : 1;
}

/* Installs a record if it is newer than what is held.  Returns 1 when
 * installed, 0 when stale, RK_ENOMEM. */
static int install(struct store *s, uint8_t type, const void *key,
		   size_t klen, const void *val, size_t vlen, rk_ts ts)
{
	struct rk_table_pos pos;
	struct rk_rec *cur = rk_table_find(s->table, key, klen, &pos);
	if (counter_join_rule(cur != NULL, cur && cur->type == RK_REC_COUNTER,
			      cur ? cur->ts : (rk_ts){0, 0}, 0,
			      ts) != COUNTER_REPLACE)
		return 0;
	struct rk_rec *rec = rk_rec_new(type, ts, key, (uint16_t)klen, val,
					(uint32_t)vlen);
	if (!rec)
		return RK_ENOMEM;
	int rc = put_rec(s, &pos, rec);
	return rc < 0 ? rc : 1;
}

/* A batch of remembered op ids from a snapshot. */
static int replay_window(struct store *s, const struct rk_logrec *r)
{
	uint64_t wm;
	const uint8_t *ids;
	uint32_t n;
	if (counter_window_decode(r->val, r->vlen, &wm, &ids, &n))
		return RK_ECORRUPT;
	crdt_dedup_raise_watermark(s->dedup, wm);
	for (uint32_t i = 0; i < n; i++) {
		struct crdt_opid id;
		memcpy(id.b, ids + (size_t)i * CRDT_OPID_LEN, CRDT_OPID_LEN);
		if (crdt_dedup_insert(s->dedup, &id) < 0)
			return RK_ENOMEM;
	}
	return 0;
}

/* Keeps the newest Paxos state of a key (len 0: it has none).  Returns 0
 * or RK_ENOMEM. */
static int paxos_keep(struct store *s, const void *key, size_t klen,
		      const void *state, size_t len)
{
	if (len == 0) {
		free(rk_table_remove(s->paxos, key, klen));
		return 0;
	}
	struct rk_rec *rec = rk_rec_new(RK_REC_PAXOS, (rk_ts){0, 0}, key,
					(uint16_t)klen, state, (uint32_t)len);
	struct rk_rec *old;
	if (!rec || rk_table_put(s->paxos, rec, &old)) {
		free(rec);
		return RK_ENOMEM;
	}
	free(old);
	return 0;
}

static int replay_one(void *ctx, const struct rk_logrec *r)
{
	struct store *s = ctx;
	if (r->type == RK_REC_PAXOS)
		return paxos_keep(s, r->key, r->klen, r->val, r->vlen);
	if (r->type == RK_REC_DROP) {
		struct rk_rec *gone = rk_table_remove(s->table, r->key, r->klen);
		if (gone)
			forget_rec(s, gone);
		free(gone);
		return 0;
	}
	if (r->type == RK_REC_COUNTER_OP &&
	    counter_form(r->val, r->vlen) == COUNTER_FORM_WINDOW)
		return replay_window(s, r);
	if (r->type == RK_REC_COUNTER || r->type == RK_REC_COUNTER_OP) {
		rk_hlc_observe(&s->clock, r->ts.hlc);
		struct crdt_opid op;
		int rc = install_counter(s, r->key, r->klen, r->val, r->vlen,
					 r->ts, &op);
		if (rc == RK_ECORRUPT)
			return rc;
		/* Rebuild the window in log order (crdt.c, "What the binding
		 * must keep"). */
		if (!crdt_opid_is_zero(&op) &&
		    crdt_dedup_insert(s->dedup, &op) < 0)
			return RK_ENOMEM;
		return rc < 0 && rc != RK_EVALUE_TOO_LARGE ? rc : 0;
	}
	if (r->type != RK_REC_VALUE && r->type != RK_REC_TOMBSTONE)
		return RK_ECORRUPT; /* a hint in the data log */
	rk_hlc_observe(&s->clock, r->ts.hlc);
	int rc = install(s, r->type, r->key, r->klen, r->val, r->vlen, r->ts);
	return rc < 0 ? rc : 0;
}

/* ------------------------------------------------------------------ */

int store_open(const struct store_config *cfg, const struct rk_logger *lg,
	       uint64_t now_ms, struct store **out, char *err, size_t errlen)
{
	*out = NULL;
	char logdir[PATH_MAX];
	if (snprintf(logdir, sizeof(logdir), "%s/log", cfg->data_dir) >=
	    (int)sizeof(logdir))
		return errf(err, errlen, RK_EINVALID, "data dir path too long");
	struct store *s = calloc(1, sizeof(*s));
	if (!s)
		return errf(err, errlen, RK_ENOMEM, "out of memory");
	s->cfg = *cfg;
	s->lg = lg;
	s->lock_fd = -1;
	s->clock_fd = -1;
	s->data_dir = strdup(cfg->data_dir);
	s->cfg.data_dir = s->data_dir;
	uint64_t seed;
	if (getrandom(&seed, sizeof(seed), 0) != sizeof(seed))
		seed = (uint64_t)time(NULL) ^ (uint64_t)getpid();
	s->table = rk_table_new(seed);
	s->pend_latest = rk_table_new(seed + 1);
	s->paxos = rk_table_new(seed ^ 0x9e3779b97f4a7c15ull);
	struct crdt_dedup_config dc;
	crdt_dedup_config_default(&dc);
	if (cfg->dedup_max_ids)
		dc.max_ids = cfg->dedup_max_ids;
	if (cfg->dedup_max_age_ms)
		dc.max_age_ms = cfg->dedup_max_age_ms;
	if (cfg->dedup_max_future_ms)
		dc.max_future_ms = cfg->dedup_max_future_ms;
	dc.hash_seed = seed ^ 0x9e3779b97f4a7c15ull;
	int rc;
	if (!s->data_dir || !s->table || !s->pend_latest || !s->paxos ||
	    crdt_dedup_new(&dc, &s->dedup) || crdt_new(0, &s->scratch)) {
		rc = errf(err, errlen, RK_ENOMEM,
			  "out of memory (or a bad counters setting)");
		goto fail;
	}
	struct oplog_config oc = {
		.dir = logdir,
		.fsync = cfg->fsync,
		.fsync_interval_ms = cfg->fsync_interval_ms,
		.segment_bytes = cfg->segment_bytes,
		.zstd_level = cfg->zstd_level,
	};
	/* oplog_open creates data_dir/log and with it data_dir. */
	if ((rc = oplog_open(&oc, lg, &s->log, err, errlen)) ||
	    (rc = lock_dir(cfg->data_dir, &s->lock_fd, err, errlen)) ||
	    (rc = load_node_id(cfg->data_dir, &s->node_id, err, errlen)) ||
	    (rc = open_clock(s, err, errlen)))
		goto fail;
	rk_hlc_init(&s->clock, s->node_id);
	rk_hlc_observe(&s->clock, s->ceiling);
	uint64_t t0 = mono_ms();
	rc = oplog_replay(s->log, replay_one, s, &s->stats.replay, err,
			  errlen);
	if (rc)
		goto fail;
	s->stats.replay_ms = mono_ms() - t0;
	crdt_dedup_expire(s->dedup, now_ms);
	*out = s;
	return 0;
fail:
	store_close(s);
	return rc;
}

int store_start(struct store *s, oplog_notify_fn notify, void *ctx)
{
	return oplog_start(s->log, notify, ctx);
}

void store_close(struct store *s)
{
	if (!s)
		return;
	oplog_close(s->log);
	rk_table_free(s->table);
	rk_table_free(s->pend_latest);
	for (size_t i = 0; i < s->pq_len; i++)
		free(s->pq[(s->pq_head + i) % s->pq_cap].rec);
	free(s->pq);
	crdt_dedup_free(s->dedup);
	crdt_free(s->scratch);
	free(s->cbuf);
	rk_table_free(s->paxos);
	if (s->lock_fd >= 0)
		close(s->lock_fd);
	if (s->clock_fd >= 0)
		close(s->clock_fd);
	free(s->purge);
	free(s->data_dir);
	free(s);
}

uint64_t store_node_id(const struct store *s)
{
	return s->node_id;
}

const struct rk_rec *store_get(struct store *s, const void *key, size_t klen)
{
	return rk_table_get(s->table, key, klen);
}

/* Appends a record; sync forces an fdatasync of it whatever the policy. */
static int log_append(struct store *s, uint8_t type, const void *key,
		      size_t klen, const void *val, size_t vlen, rk_ts ts,
		      int sync, uint64_t *lsn)
{
	struct rk_logrec r = {
		.type = type,
		.ts = ts,
		.key = key,
		.klen = (uint16_t)klen,
		.val = val,
		.vlen = (uint32_t)vlen,
	};
	uint64_t l = sync ? oplog_append_sync(s->log, &r)
			  : oplog_append(s->log, &r);
	if (!l)
		return RK_ENOMEM;
	*lsn = l;
	return 0;
}

static int log_write(struct store *s, uint8_t type, const void *key,
		     size_t klen, const void *val, size_t vlen, rk_ts ts,
		     uint64_t *lsn)
{
	return log_append(s, type, key, klen, val, vlen, ts, 0, lsn);
}

int store_stamp(struct store *s, uint64_t now_ms, rk_ts *out)
{
	rk_ts ts = rk_hlc_tick(&s->clock, now_ms);
	if (ts.hlc >= s->ceiling) {
		int rc = raise_ceiling(
			s, rk_hlc_ceiling(ts.hlc, s->cfg.clock_window_ms));
		if (rc)
			return rc;
	}
	*out = ts;
	return 0;
}

void store_observe(struct store *s, rk_ts ts)
{
	rk_hlc_observe(&s->clock, ts.hlc);
}

int store_paxos_put(struct store *s, const void *key, size_t klen,
		    const void *state, size_t len, uint64_t *lsn)
{
	if (klen == 0 || klen > RK_KEY_HARD_MAX || len > UINT32_MAX)
		return RK_EINVALID;
	int rc = paxos_keep(s, key, klen, state, len);
	if (rc)
		return rc;
	struct rk_logrec r = {.type = RK_REC_PAXOS,
			      .key = key,
			      .klen = (uint16_t)klen,
			      .val = state,
			      .vlen = (uint32_t)len};
	*lsn = oplog_append_sync(s->log, &r);
	return *lsn ? 0 : RK_ENOMEM;
}

struct paxos_walk {
	store_paxos_fn fn;
	void *ctx;
};

static void paxos_walk_one(void *ctx, const struct rk_rec *rec)
{
	struct paxos_walk *w = ctx;
	w->fn(w->ctx, rk_rec_key(rec), rec->klen, rk_rec_value(rec),
	      rec->vlen);
}

void store_paxos_each(struct store *s, store_paxos_fn fn, void *ctx)
{
	struct paxos_walk w = {fn, ctx};
	uint64_t cursor = 0;
	do
		cursor = rk_table_scan(s->paxos, cursor, paxos_walk_one, &w);
	while (cursor != 0);
}

size_t store_paxos_count(const struct store *s)
{
	return rk_table_count(s->paxos);
}

uint64_t store_synced_lsn(struct store *s)
{
	return oplog_synced_lsn(s->log);
}

int store_drop(struct store *s, const void *key, size_t klen)
{
	struct rk_rec *gone = rk_table_remove(s->table, key, klen);
	if (!gone)
		return 0;
	forget_rec(s, gone);
	free(gone);
	struct rk_logrec r = {.type = RK_REC_DROP, .key = key,
			      .klen = (uint16_t)klen};
	return oplog_append(s->log, &r) ? 1 : RK_ENOMEM;
}

int store_log_read(struct store *s, uint64_t token, uint64_t from_lsn,
		   uint64_t hint_off, uint32_t max_bytes, oplog_want_fn want,
		   void *want_ctx)
{
	/* Only what is durable leaves: an owner's add must not reach another
	 * node before its log record is on disk (store.c, "Adds wait for
	 * their fsync"), and this node's log may lose what is not. */
	return oplog_read(s->log, token, from_lsn, hint_off,
			  store_durable_lsn(s) + 1, max_bytes, want, want_ctx);
}

int store_log_poll(struct store *s, struct oplog_read_result *out)
{
	return oplog_read_poll(s->log, out);
}

uint64_t store_scan(struct store *s, uint64_t cursor, rk_table_scan_fn fn,
		    void *ctx)
{
	return rk_table_scan(s->table, cursor, fn, ctx);
}

uint64_t store_log_end(struct store *s)
{
	struct oplog_stats st;
	oplog_get_stats(s->log, &st);
	return st.next_lsn;
}

int store_write(struct store *s, uint8_t type, const void *key, size_t klen,
		const void *val, size_t vlen, uint64_t now_ms, rk_ts *ts,
		uint64_t *lsn)
{
	int rc = store_stamp(s, now_ms, ts);
	if (rc)
		return rc;
	/* The clock has observed every stored version, so a local write is
	 * always the newest and always applied. */
	rc = store_apply(s, type, key, klen, val, vlen, *ts, lsn);
	return rc < 0 ? rc : 0;
}

/* Counter bytes from elsewhere: merged by the join rule, logged when they
 * changed something or brought an op id new to the window. */
static int apply_counter(struct store *s, const void *key, size_t klen,
			 const void *val, size_t vlen, rk_ts ts, uint64_t *lsn)
{
	int form = counter_form(val, vlen);
	if (form != COUNTER_FORM_STATE && form != COUNTER_FORM_DELTA)
		return RK_ECORRUPT;
	struct crdt_opid op;
	int changed = install_counter(s, key, klen, val, vlen, ts, &op);
	if (changed < 0)
		return changed;
	int fresh =
	    !crdt_opid_is_zero(&op) && crdt_dedup_insert(s->dedup, &op) == 0;
	if (!changed && !fresh)
		return 0;
	if (form == COUNTER_FORM_DELTA) {
		/* The delta as it came, with its op id: replay merges it and
		 * remembers the op id again. */
		int rc = log_write(s, RK_REC_COUNTER_OP, key, klen, val, vlen,
				   ts, lsn);
		return rc < 0 ? rc : 1;
	}
	/* A state: log what we hold now (one record covers it all). */
	const struct rk_rec *cur = rk_table_get(s->table, key, klen);
	int rc = log_write(s, RK_REC_COUNTER, key, klen, rk_rec_value(cur),
			   cur->vlen, cur->ts, lsn);
	return rc < 0 ? rc : 1;
}

/* == Adds wait for their fsync ==
 *
 * An owner's add is logged at once, with a forced fdatasync whatever
 * storage.fsync says (as Paxos acceptor states are), and nothing of it
 * leaves this node until that fdatasync is done: it is shown in the table
 * -- and so to reads, read repairs, streams and digests -- only then
 * (store_settle), the shipped delta and the acknowledgement wait for it
 * (store_durable_lsn stays below it), and so does catch-up, which serves
 * our log only up to store_durable_lsn.  Until then the add waits here;
 * the owner's next adds to the same key build on it.
 *
 * Why on disk and not merely logged: every later decision about the add
 * rests on the owner's copy.  If a copy left first (a shipped delta, a
 * read repair) and the owner then lost the add in a crash, the owner
 * would forget the op id and apply a retry of it a second time, and its
 * entry, restarted below totals the other replicas hold, would have its
 * next adds swallowed by the max-merge.  With the fdatasync first, an
 * owner never restarts below anything it shipped, and its node id can
 * stay its entry id in every counter for the life of its data directory.
 * The price is one fdatasync per group of adds (group commit: adds
 * arriving while one runs share the next); registers under
 * fsync=interval are not slowed, except a register write logged behind an
 * add waits for that add's fdatasync before its acknowledgement. */

static int pending_push(struct store *s, const void *key, size_t klen, rk_ts ts,
			uint64_t lsn)
{
	if (s->pq_len == s->pq_cap) {
		size_t cap = s->pq_cap ? s->pq_cap * 2 : 256;
		struct pend *n = malloc(cap * sizeof(*n));
		if (!n)
			return RK_ENOMEM;
		for (size_t i = 0; i < s->pq_len; i++)
			n[i] = s->pq[(s->pq_head + i) % s->pq_cap];
		free(s->pq);
		s->pq = n;
		s->pq_head = 0;
		s->pq_cap = cap;
	}
	uint8_t v[CRDT_DELTA_SIZE + 8];
	memcpy(v, s->dbuf, CRDT_DELTA_SIZE);
	rk_put_le64(v + CRDT_DELTA_SIZE, lsn);
	struct rk_rec *rec =
	    rk_rec_new(RK_REC_COUNTER_OP, ts, key, (uint16_t)klen, s->dbuf,
		       CRDT_DELTA_SIZE);
	struct rk_rec *latest = rk_rec_new(RK_REC_COUNTER_OP, ts, key,
					   (uint16_t)klen, v, sizeof(v));
	struct rk_rec *old;
	if (!rec || !latest || rk_table_put(s->pend_latest, latest, &old)) {
		free(rec);
		free(latest);
		return RK_ENOMEM;
	}
	free(old);
	s->pq[(s->pq_head + s->pq_len++) % s->pq_cap] = (struct pend){lsn, rec};
	return 0;
}

void store_settle(struct store *s)
{
	uint64_t synced = oplog_synced_lsn(s->log);
	while (s->pq_len && s->pq[s->pq_head].lsn <= synced) {
		struct pend p = s->pq[s->pq_head];
		s->pq_head = (s->pq_head + 1) % s->pq_cap;
		s->pq_len--;
		struct crdt_opid op;
		const struct rk_rec *r = p.rec;
		if (install_counter(s, rk_rec_key(r), r->klen, rk_rec_value(r),
				    r->vlen, r->ts, &op) < 0)
			rk_error(s->lg, "store",
				 "an add of ours could not be shown (out of "
				 "memory); replay or a peer's repair shows it");
		struct rk_rec *latest =
		    rk_table_get(s->pend_latest, rk_rec_key(r), r->klen);
		if (latest && rk_get_le64(rk_rec_value(latest) +
					  CRDT_DELTA_SIZE) == p.lsn)
			free(rk_table_remove(s->pend_latest, rk_rec_key(r),
					     r->klen));
		free(p.rec);
	}
}

int store_counter_add(struct store *s, const void *key, size_t klen,
		      int64_t delta, const struct crdt_opid *op,
		      uint64_t now_ms, const uint8_t **delta_out, rk_ts *ts,
		      uint64_t *lsn, int64_t *value, char *why, size_t whylen)
{
	*delta_out = NULL;
	*value = 0;
	*lsn = 0;
	if (klen == 0 || klen > RK_KEY_HARD_MAX)
		return RK_EINVALID;
	struct rk_table_pos pos;
	struct rk_rec *cur = rk_table_find(s->table, key, klen, &pos);
	if (cur && cur->type == RK_REC_VALUE) {
		snprintf(why, whylen,
			 "the key holds a value, not a counter: "
			 "use get, put and del on it");
		return RK_EWRONG_TYPE;
	}
	int counter = cur && cur->type == RK_REC_COUNTER;
	int rc;
	if (counter) {
		if ((rc = counter_load(s->scratch, rk_rec_value(cur),
				       cur->vlen)))
			return rc;
	} else {
		crdt_reset(s->scratch);
	}
	const struct rk_rec *pend = rk_table_get(s->pend_latest, key, klen);
	if (pend) {
		/* Build on our adds still waiting for their fsync. */
		struct crdt_delta pd;
		if (crdt_delta_decode(rk_rec_value(pend), CRDT_DELTA_SIZE,
				      &pd) ||
		    crdt_apply_delta(s->scratch, &pd) < 0)
			return RK_EINTERNAL;
		counter = 1;
	}
	rk_ts held_ts = cur ? cur->ts : (rk_ts){0, 0};
	if (pend && rk_ts_cmp(pend->ts, held_ts) > 0)
		held_ts = pend->ts;
	int known = crdt_dedup_check(s->dedup, op, now_ms);
	if (known == 1) {
		/* Applied before: ship our entry again (it covers the op
		 * unless a delete came since), once everything logged so
		 * far is durable. */
		s->stats.counter_duplicates++;
		struct crdt_delta d = {.gen = crdt_generation(s->scratch),
				       .op = *op};
		d.e.node = s->node_id;
		if (counter && crdt_entry_get(s->scratch, s->node_id,
					      &d.e.incr, &d.e.decr) == 0) {
			crdt_delta_encode(&d, s->dbuf);
			*delta_out = s->dbuf;
			*ts = held_ts;
		}
		crdt_value(s->scratch, value);
		*lsn = store_log_end(s) - 1;
		return 1;
	}
	if (known < 0) {
		s->stats.counter_refused++;
		uint64_t ms = crdt_opid_ms(op);
		if (ms <= now_ms)
			snprintf(why, whylen,
				 "op id from %" PRIu64 " ms ago is outside the "
				 "dedup window (counters.dedup_max_age, "
				 "dedup_max_ids): it may have been applied and "
				 "forgotten, so it is refused",
				 now_ms > ms ? now_ms - ms : 0);
		else
			snprintf(why, whylen,
				 "op id is stamped %" PRIu64
				 " ms ahead of this "
				 "node's clock (counters.dedup_max_future): "
				 "refused",
				 ms - now_ms);
		return RK_EINVALID;
	}
	uint64_t incr, decr;
	uint32_t limit = s->cfg.counter_max_entries ? s->cfg.counter_max_entries
						    : CRDT_ENTRIES_HARD_MAX;
	if (crdt_entry_get(s->scratch, s->node_id, &incr, &decr) &&
	    crdt_entry_count(s->scratch) >= limit) {
		snprintf(why, whylen,
			 "the counter already has %u entries "
			 "(counters.max_entries)",
			 limit);
		return RK_EVALUE_TOO_LARGE;
	}
	if ((rc = store_stamp(s, now_ms, ts))) {
		snprintf(why, whylen, "cannot persist the clock (see the "
				      "node's log); the add was not applied");
		return rc;
	}
	struct crdt_delta d;
	rc = crdt_add(s->scratch, s->node_id, delta, op, &d);
	if (rc == RK_EINVALID) {
		snprintf(why, whylen, "this node's total would pass 2^64");
		return RK_EVALUE_TOO_LARGE;
	}
	if (rc)
		return rc;
	crdt_delta_encode(&d, s->dbuf);
	if ((rc = log_append(s, RK_REC_COUNTER_OP, key, klen, s->dbuf,
			     CRDT_DELTA_SIZE, *ts, 1, lsn)) ||
	    (rc = crdt_dedup_insert(s->dedup, op)) < 0 ||
	    (rc = pending_push(s, key, klen, *ts, *lsn)))
		return rc;
	s->stats.counter_adds++;
	crdt_value(s->scratch, value);
	*delta_out = s->dbuf;
	return 0;
}

void store_counter_expire(struct store *s, uint64_t now_ms)
{
	crdt_dedup_expire(s->dedup, now_ms);
}

int store_apply(struct store *s, uint8_t type, const void *key, size_t klen,
		const void *val, size_t vlen, rk_ts ts, uint64_t *lsn)
{
	if (klen == 0 || klen > RK_KEY_HARD_MAX || vlen > UINT32_MAX)
		return RK_EINVALID;
	rk_hlc_observe(&s->clock, ts.hlc);
	if (type == RK_REC_COUNTER)
		return apply_counter(s, key, klen, val, vlen, ts, lsn);
	int rc = install(s, type, key, klen, val, vlen, ts);
	if (rc <= 0)
		return rc;
	rc = log_write(s, type, key, klen, val, vlen, ts, lsn);
	return rc < 0 ? rc : 1;
}

void store_flush(struct store *s)
{
	oplog_flush(s->log);
}

uint64_t store_durable_lsn(struct store *s)
{
	uint64_t durable = oplog_durable_lsn(s->log);
	/* Our adds are durable only once on disk ("Adds wait for their
	 * fsync"), and nothing after the first waiting one may leave. */
	if (s->pq_len && s->pq[s->pq_head].lsn <= durable)
		durable = s->pq[s->pq_head].lsn - 1;
	return durable;
}

int store_waits_for_fsync(const struct store *s)
{
	return oplog_fsync_always(s->log);
}

/* ------------------------------------------------------------------ */
/* compaction                                                          */

/* The dedup window, in batches, at the head of a snapshot: the log records
 * that carried these op ids are about to go. */
struct window_feed {
	struct store *s;
	struct crdt_opid *ids;
	uint32_t n;
	uint8_t *buf;
	int rc;
};

static void window_flush(struct window_feed *w)
{
	if (w->rc || !w->n)
		return;
	counter_window_encode(crdt_dedup_watermark(w->s->dedup), w->ids, w->n,
			      w->buf);
	struct rk_logrec r = {.type = RK_REC_COUNTER_OP,
			      .key = (const uint8_t *)COUNTER_WINDOW_KEY,
			      .klen = COUNTER_WINDOW_KEY_LEN,
			      .val = w->buf,
			      .vlen = (uint32_t)counter_window_size(w->n)};
	w->rc = oplog_snapshot_add(w->s->log, &r);
	w->n = 0;
}

static void window_one(void *ctx, const struct crdt_opid *id)
{
	struct window_feed *w = ctx;
	w->ids[w->n++] = *id;
	if (w->n == COUNTER_WINDOW_BATCH)
		window_flush(w);
}

static int snapshot_window(struct store *s)
{
	struct crdt_dedup_stats st;
	crdt_dedup_get_stats(s->dedup, &st);
	if (!st.ids && !st.watermark_ms)
		return 0;
	struct window_feed w = {
	    .s = s,
	    .ids = malloc(COUNTER_WINDOW_BATCH * sizeof(*w.ids)),
	    .buf = malloc(counter_window_size(COUNTER_WINDOW_BATCH))};
	if (!w.ids || !w.buf) {
		free(w.ids);
		free(w.buf);
		return RK_ENOMEM;
	}
	crdt_dedup_foreach(s->dedup, window_one, &w);
	if (!st.ids) {
		/* Only a watermark to keep. */
		counter_window_encode(st.watermark_ms, NULL, 0, w.buf);
		struct rk_logrec r = {.type = RK_REC_COUNTER_OP,
				      .key =
					  (const uint8_t *)COUNTER_WINDOW_KEY,
				      .klen = COUNTER_WINDOW_KEY_LEN,
				      .val = w.buf,
				      .vlen = (uint32_t)counter_window_size(0)};
		w.rc = oplog_snapshot_add(s->log, &r);
	}
	window_flush(&w);
	free(w.ids);
	free(w.buf);
	return w.rc;
}

int store_compact_now(struct store *s)
{
	if (s->phase != COMPACT_IDLE)
		return RK_EINVALID;
	struct oplog_stats ls;
	oplog_get_stats(s->log, &ls);
	uint64_t cutoff;
	int rc = oplog_snapshot_begin(s->log, &cutoff);
	if (rc)
		return rc;
	/* Our adds still waiting for their fsync are in the log before the
	 * cutoff, not yet in the table: the snapshot keeps them too. */
	for (size_t i = 0; !rc && i < s->pq_len; i++) {
		const struct rk_rec *p =
		    s->pq[(s->pq_head + i) % s->pq_cap].rec;
		struct rk_logrec r = {.type = RK_REC_COUNTER_OP,
				      .ts = p->ts,
				      .key = rk_rec_key(p),
				      .klen = p->klen,
				      .val = rk_rec_value(p),
				      .vlen = p->vlen};
		rc = oplog_snapshot_add(s->log, &r);
	}
	if (rc || (rc = snapshot_window(s))) {
		rk_error(s->lg, "store", "compaction aborted: %s",
			 rk_strerror(rc));
		oplog_snapshot_abort(s->log);
		s->phase = COMPACT_WRITING;
		return 0;
	}
	s->phase = COMPACT_SCANNING;
	s->scan_cursor = 0;
	rk_info(s->lg, "store",
		"compaction started: %zu records, %" PRIu64
		" log bytes, cutoff lsn %" PRIu64,
		rk_table_count(s->table), ls.segment_bytes, cutoff);
	return 0;
}

void store_maintain(struct store *s, uint64_t now_ms)
{
	(void)now_ms;
	if (s->phase == COMPACT_WRITING) {
		int ok;
		if (oplog_snapshot_poll(s->log, &ok)) {
			s->phase = COMPACT_IDLE;
			struct oplog_stats ls;
			oplog_get_stats(s->log, &ls);
			if (ok)
				s->stats.compactions++;
			rk_info(s->lg, "store",
				"compaction %s: snapshot %" PRIu64
				" bytes, %" PRIu64 " log bytes left",
				ok ? "done" : "failed", ls.snapshot_bytes,
				ls.segment_bytes);
		}
		return;
	}
	if (s->phase != COMPACT_IDLE)
		return;
	struct oplog_stats ls;
	oplog_get_stats(s->log, &ls);
	uint64_t live = rk_table_bytes(s->table);
	uint64_t limit = live / 100 * s->cfg.compact_ratio_pct;
	if (limit < s->cfg.compact_min_bytes)
		limit = s->cfg.compact_min_bytes;
	if (ls.segment_bytes > limit)
		store_compact_now(s);
}

static void scan_one(void *ctx, const struct rk_rec *rec)
{
	struct store *s = ctx;
	if (s->step_rc)
		return;
	s->step_records++;
	if (is_tomb(rec->type, rec->vlen) && s->cfg.tombstone_grace_ms &&
	    rk_hlc_ms(rec->ts.hlc) + s->cfg.tombstone_grace_ms < s->now_ms) {
		if (s->npurge == s->purge_cap) {
			size_t cap = s->purge_cap ? s->purge_cap * 2 : 64;
			struct rk_rec **p = realloc(s->purge, cap * sizeof(*p));
			if (!p)
				goto keep; /* purge it next time */
			s->purge = p;
			s->purge_cap = cap;
		}
		s->purge[s->npurge++] = (struct rk_rec *)rec;
		return;
	}
keep:;
	struct rk_logrec r = {
		.type = rec->type,
		.ts = rec->ts,
		.key = rk_rec_key(rec),
		.klen = rec->klen,
		.val = rk_rec_value(rec),
		.vlen = rec->vlen,
	};
	s->step_rc = oplog_snapshot_add(s->log, &r);
}

static void snap_paxos_one(void *ctx, const uint8_t *key, size_t klen,
			   const uint8_t *state, size_t len)
{
	struct store *s = ctx;
	if (s->step_rc)
		return;
	struct rk_logrec r = {.type = RK_REC_PAXOS,
			      .key = key,
			      .klen = (uint16_t)klen,
			      .val = state,
			      .vlen = (uint32_t)len};
	s->step_rc = oplog_snapshot_add(s->log, &r);
}

int store_compact_step(struct store *s, uint64_t now_ms)
{
	if (s->phase != COMPACT_SCANNING)
		return 0;
	if (oplog_snapshot_backlog(s->log) > s->cfg.compact_backlog_bytes)
		return 1; /* the compaction thread is behind: wait */
	s->now_ms = now_ms;
	s->npurge = 0;
	s->step_rc = 0;
	s->step_records = 0;
	/* Bound the work by records seen and by buckets, empty ones too. */
	size_t buckets = 0;
	do {
		s->scan_cursor = rk_table_scan(s->table, s->scan_cursor,
					       scan_one, s);
		buckets++;
	} while (s->scan_cursor != 0 && !s->step_rc &&
		 s->step_records < s->cfg.compact_step_records &&
		 buckets < 4 * (size_t)s->cfg.compact_step_records);
	/* Removing between scan calls keeps the scan's guarantee. */
	for (size_t i = 0; i < s->npurge; i++) {
		struct rk_rec *r = s->purge[i];
		struct rk_rec *gone =
			rk_table_remove(s->table, rk_rec_key(r), r->klen);
		if (gone) {
			forget_rec(s, gone);
			free(gone);
			s->stats.purged_tombstones++;
		}
	}
	if (s->step_rc) {
		/* Out of memory: the snapshot is incomplete and must never be
		 * installed; the next compaction starts over. */
		rk_error(s->lg, "store", "compaction aborted: %s",
			 rk_strerror(s->step_rc));
		oplog_snapshot_abort(s->log);
		s->phase = COMPACT_WRITING;
		return 0;
	}
	if (s->scan_cursor == 0) {
		/* The snapshot replaces the segments before its cutoff, the
		 * Paxos records among them included: it carries the states
		 * as they are now.  Replay applies the segments after it,
		 * whose records for a key, if any, end with the state it has
		 * now, so the newest still wins. */
		store_paxos_each(s, snap_paxos_one, s);
		if (s->step_rc) {
			rk_error(s->lg, "store", "compaction aborted: %s",
				 rk_strerror(s->step_rc));
			oplog_snapshot_abort(s->log);
			s->phase = COMPACT_WRITING;
			return 0;
		}
		oplog_snapshot_end(s->log);
		s->phase = COMPACT_WRITING;
		return 0;
	}
	return 1;
}

int store_compacting(const struct store *s)
{
	return s->phase != COMPACT_IDLE;
}

void store_get_stats(struct store *s, struct store_stats *st)
{
	*st = s->stats;
	st->tombstones = s->tombstones;
	st->counters = s->counters;
	st->keys = rk_table_count(s->table) - s->tombstones;
	crdt_dedup_get_stats(s->dedup, &st->dedup);
	st->bytes = rk_table_bytes(s->table);
	oplog_get_stats(s->log, &st->log);
}
