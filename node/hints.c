#include "hints.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "err.h"
#include "record.h"

#define HINT_PREFIX 17 /* [type][target u64][created u64] */

struct hints {
	struct oplog *log;
	const struct rk_logger *lg;
	struct rk_buf val;      /* scratch for one hint's value */
	int clear_wanted;       /* a clear came while one was running */
	hints_restore_fn restore;
	void *ctx;
};

static int replay_one(void *ctx, const struct rk_logrec *r)
{
	struct hints *h = ctx;
	if (r->type != RK_REC_HINT)
		return RK_ECORRUPT;
	const uint8_t *v = r->val;
	/* The record's type as the store numbers it: a counter is
	 * RK_REC_COUNTER here, REPL_REC_COUNTER to replication. */
	struct repl_record rec = {
	    .type = v[0] == RK_REC_COUNTER ? REPL_REC_COUNTER : v[0],
	    .ts = r->ts,
	    .key = r->key,
	    .klen = r->klen,
	    .val = v[0] != RK_REC_TOMBSTONE ? v + HINT_PREFIX : NULL,
	    .vlen = r->vlen - HINT_PREFIX,
	};
	h->restore(h->ctx, rk_get_le64(v + 1), &rec, rk_get_le64(v + 9));
	return 0;
}

int hints_open(const char *data_dir, enum rk_fsync fsync,
	       uint32_t fsync_interval_ms, const struct rk_logger *lg,
	       hints_restore_fn restore, void *ctx, struct hints **out,
	       char *err, size_t errlen)
{
	*out = NULL;
	struct hints *h = calloc(1, sizeof(*h));
	if (!h) {
		snprintf(err, errlen, "out of memory");
		return RK_ENOMEM;
	}
	h->lg = lg;
	h->restore = restore;
	h->ctx = ctx;
	rk_buf_init(&h->val);
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s/hints", data_dir);
	struct oplog_config oc = {
		.dir = dir,
		.fsync = fsync,
		.fsync_interval_ms = fsync_interval_ms,
		.segment_bytes = 16u << 20,
		.zstd_level = 1,
	};
	struct oplog_replay_stats st;
	int rc = oplog_open(&oc, lg, &h->log, err, errlen);
	if (!rc)
		rc = oplog_replay(h->log, replay_one, h, &st, err, errlen);
	if (!rc && (rc = oplog_start(h->log, NULL, NULL)) != 0)
		snprintf(err, errlen, "cannot start the hints log writer");
	if (rc) {
		hints_close(h);
		return rc;
	}
	if (st.log_records)
		rk_info(lg, "hints", "%llu saved hints to hand off",
			(unsigned long long)st.log_records);
	*out = h;
	return 0;
}

void hints_save(struct hints *h, uint64_t target,
		const struct repl_record *rec, uint64_t created_ms)
{
	size_t vlen =
	    rec->type != REPL_REC_TOMBSTONE && rec->val ? rec->vlen : 0;
	rk_buf_clear(&h->val);
	if (rk_buf_reserve(&h->val, HINT_PREFIX + vlen))
		return; /* catch-up covers a hint that could not be kept */
	uint8_t *p = h->val.data;
	p[0] = rec->type == REPL_REC_COUNTER ? RK_REC_COUNTER : rec->type;
	rk_put_le64(p + 1, target);
	rk_put_le64(p + 9, created_ms);
	if (vlen)
		memcpy(p + HINT_PREFIX, rec->val, vlen);
	struct rk_logrec r = {.type = RK_REC_HINT,
			      .ts = rec->ts,
			      .key = rec->key,
			      .klen = (uint16_t)rec->klen,
			      .val = p,
			      .vlen = (uint32_t)(HINT_PREFIX + vlen)};
	oplog_append(h->log, &r);
}

void hints_clear(struct hints *h)
{
	if (oplog_snapshot_running(h->log)) {
		h->clear_wanted = 1;
		return;
	}
	struct oplog_stats st;
	oplog_get_stats(h->log, &st);
	if (st.segment_bytes == 0 && st.queued_bytes == 0)
		return;
	uint64_t cutoff;
	/* An empty snapshot at the log's end: every segment before it goes,
	 * hints saved from now on stay. */
	if (oplog_snapshot_begin(h->log, &cutoff) == 0)
		oplog_snapshot_end(h->log);
}

void hints_flush(struct hints *h)
{
	oplog_flush(h->log);
}

void hints_maintain(struct hints *h)
{
	int ok;
	if (oplog_snapshot_poll(h->log, &ok) && h->clear_wanted) {
		h->clear_wanted = 0;
		hints_clear(h);
	}
}

void hints_close(struct hints *h)
{
	if (!h)
		return;
	oplog_close(h->log);
	rk_buf_destroy(&h->val);
	free(h);
}
