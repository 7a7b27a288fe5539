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
#include "crc32c.h"
#include "err.h"
#include "hlc.h"
#include "table.h"

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
	uint64_t tombstones;
	/* Paxos acceptor states (RK_REC_PAXOS records: the newest of each
	 * key) and the Paxos clock bound: replayed, appended with a forced
	 * fsync, and copied into every snapshot. */
	struct rk_table *paxos;
	uint64_t paxos_bound;

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
	if (pwrite(s->clock_fd, b, sizeof(b), 0) != (ssize_t)sizeof(b) ||
	    (s->cfg.fsync != RK_FSYNC_NEVER && fdatasync(s->clock_fd) < 0)) {
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

/* Installs a record if it is newer than what is held.  Returns 1 when
 * installed, 0 when stale, RK_ENOMEM. */
static int install(struct store *s, uint8_t type, const void *key,
		   size_t klen, const void *val, size_t vlen, rk_ts ts)
{
	struct rk_table_pos pos;
	struct rk_rec *cur = rk_table_find(s->table, key, klen, &pos);
	if (cur && rk_ts_cmp(cur->ts, ts) >= 0)
		return 0;
	struct rk_rec *rec = rk_rec_new(type, ts, key, (uint16_t)klen, val,
					(uint32_t)vlen);
	if (!rec)
		return RK_ENOMEM;
	struct rk_rec *old;
	if (rk_table_set(s->table, &pos, rec, &old) != 0) {
		free(rec);
		return RK_ENOMEM;
	}
	if (old) {
		if (old->type == RK_REC_TOMBSTONE)
			s->tombstones--;
		free(old);
	}
	if (type == RK_REC_TOMBSTONE)
		s->tombstones++;
	return 1;
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
	if (r->type == RK_REC_PAXOS) {
		if (r->klen == 0) {
			if (r->ts.hlc > s->paxos_bound)
				s->paxos_bound = r->ts.hlc;
			return 0;
		}
		return paxos_keep(s, r->key, r->klen, r->val, r->vlen);
	}
	if (r->type == RK_REC_DROP) {
		struct rk_rec *gone = rk_table_remove(s->table, r->key, r->klen);
		if (gone && gone->type == RK_REC_TOMBSTONE)
			s->tombstones--;
		free(gone);
		return 0;
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
	(void)now_ms;
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
	s->paxos = rk_table_new(seed ^ 0x9e3779b97f4a7c15ull);
	int rc;
	if (!s->data_dir || !s->table || !s->paxos) {
		rc = errf(err, errlen, RK_ENOMEM, "out of memory");
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

static int log_write(struct store *s, uint8_t type, const void *key,
		     size_t klen, const void *val, size_t vlen, rk_ts ts,
		     uint64_t *lsn)
{
	struct rk_logrec r = {
		.type = type,
		.ts = ts,
		.key = key,
		.klen = (uint16_t)klen,
		.val = val,
		.vlen = (uint32_t)vlen,
	};
	uint64_t l = oplog_append(s->log, &r);
	if (!l)
		return RK_ENOMEM;
	*lsn = l;
	return 0;
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

int store_paxos_set_bound(struct store *s, uint64_t hlc, uint64_t *lsn)
{
	if (hlc > s->paxos_bound)
		s->paxos_bound = hlc;
	struct rk_logrec r = {.type = RK_REC_PAXOS,
			      .ts = {s->paxos_bound, s->node_id}};
	*lsn = oplog_append_sync(s->log, &r);
	return *lsn ? 0 : RK_ENOMEM;
}

uint64_t store_paxos_bound(const struct store *s)
{
	return s->paxos_bound;
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
	if (gone->type == RK_REC_TOMBSTONE)
		s->tombstones--;
	free(gone);
	struct rk_logrec r = {.type = RK_REC_DROP, .key = key,
			      .klen = (uint16_t)klen};
	return oplog_append(s->log, &r) ? 1 : RK_ENOMEM;
}

int store_log_read(struct store *s, uint64_t token, uint64_t from_lsn,
		   uint64_t hint_off, uint32_t max_bytes, oplog_want_fn want,
		   void *want_ctx)
{
	return oplog_read(s->log, token, from_lsn, hint_off, store_log_end(s),
			  max_bytes, want, want_ctx);
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

int store_apply(struct store *s, uint8_t type, const void *key, size_t klen,
		const void *val, size_t vlen, rk_ts ts, uint64_t *lsn)
{
	if (klen == 0 || klen > RK_KEY_HARD_MAX || vlen > UINT32_MAX)
		return RK_EINVALID;
	rk_hlc_observe(&s->clock, ts.hlc);
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
	return oplog_durable_lsn(s->log);
}

int store_waits_for_fsync(const struct store *s)
{
	return oplog_fsync_always(s->log);
}

/* ------------------------------------------------------------------ */
/* compaction                                                          */

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
	if (rec->type == RK_REC_TOMBSTONE && s->cfg.tombstone_grace_ms &&
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
			free(gone);
			s->tombstones--;
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
		 * and the clock bound as they are now.  Replay applies the
		 * segments after it, whose records for a key, if any, end
		 * with the state it has now, so the newest still wins. */
		store_paxos_each(s, snap_paxos_one, s);
		if (!s->step_rc && s->paxos_bound) {
			struct rk_logrec r = {.type = RK_REC_PAXOS,
					      .ts = {s->paxos_bound,
						     s->node_id}};
			s->step_rc = oplog_snapshot_add(s->log, &r);
		}
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
	st->keys = rk_table_count(s->table) - s->tombstones;
	st->bytes = rk_table_bytes(s->table);
	oplog_get_stats(s->log, &st->log);
}
