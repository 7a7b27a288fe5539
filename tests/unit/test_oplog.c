/* The op-log and the store over real files in a temporary directory. */
#define _XOPEN_SOURCE 700
#include <criterion/criterion.h>
#include <dirent.h>
#include <inttypes.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"
#include "logfmt.h"
#include "rng.h"
#include "store.h"

#define NOW 1700000000000ull

static int rm_one(const char *p, const struct stat *sb, int flag,
		  struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(p);
}

static void rm_rf(const char *dir)
{
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static char *tmpdir(void)
{
	char *d = strdup("/tmp/rkv-oplog-XXXXXX");
	cr_assert_not_null(mkdtemp(d));
	return d;
}

static struct store_config conf(const char *dir, enum rk_fsync f,
				uint64_t seg)
{
	return (struct store_config){
		.data_dir = dir,
		.fsync = f,
		.fsync_interval_ms = 10,
		.segment_bytes = seg,
		.zstd_level = 1,
		.compact_min_bytes = UINT64_MAX, /* only when asked */
		.compact_ratio_pct = 100,
		.tombstone_grace_ms = 0,
		.compact_step_records = 100,
		.compact_backlog_bytes = 1 << 20,
		.clock_window_ms = 2000,
	};
}

static struct logger_holder {
	struct rk_logger lg;
} quiet;

static const struct rk_logger *lg(void)
{
	rk_logger_init(&quiet.lg, "test", RK_LOG_ERROR);
	return &quiet.lg;
}

static struct store *open_ok(const struct store_config *c)
{
	struct store *s;
	char err[512];
	int rc = store_open(c, lg(), NOW, &s, err, sizeof(err));
	cr_assert_eq(rc, 0, "store_open: %s", err);
	cr_assert_eq(store_start(s, NULL, NULL), 0);
	return s;
}

static uint64_t put(struct store *s, const char *k, const char *v)
{
	rk_ts ts;
	uint64_t lsn;
	cr_assert_eq(store_write(s, RK_REC_VALUE, k, strlen(k), v, strlen(v),
				 NOW, &ts, &lsn),
		     0);
	return lsn;
}

static void assert_value(struct store *s, const char *k, const char *v)
{
	const struct rk_rec *r = store_get(s, k, strlen(k));
	cr_assert_not_null(r, "key %s missing", k);
	cr_assert_eq(r->type, RK_REC_VALUE, "key %s is a tombstone", k);
	cr_assert(r->vlen == strlen(v) && memcmp(rk_rec_value(r), v, r->vlen) == 0,
		  "key %s has the wrong value", k);
}

static uint8_t *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	cr_assert_not_null(f, "%s", path);
	fseek(f, 0, SEEK_END);
	*len = (size_t)ftell(f);
	fseek(f, 0, SEEK_SET);
	uint8_t *b = malloc(*len + 1);
	cr_assert_eq(fread(b, 1, *len, f), *len);
	fclose(f);
	return b;
}

static void write_file(const char *path, const uint8_t *p, size_t n)
{
	FILE *f = fopen(path, "wb");
	cr_assert_not_null(f, "%s", path);
	cr_assert_eq(fwrite(p, 1, n, f), n);
	fclose(f);
}

static const char *const VALS[] = {"v0", "value-1", "a longer value two",
				   "3", "four four", "5555555555",
				   "six", "the seventh value, longest of all"};
#define NVALS 8

/* Writes NVALS records k0..k7 into a fresh store and returns the bytes of
 * its only segment and the record boundaries. */
static uint8_t *make_log(size_t *len, size_t bounds[NVALS + 1])
{
	char *d = tmpdir();
	struct store_config c = conf(d, RK_FSYNC_ALWAYS, 1 << 20);
	struct store *s = open_ok(&c);
	for (int i = 0; i < NVALS; i++) {
		char k[8];
		snprintf(k, sizeof(k), "k%d", i);
		put(s, k, VALS[i]);
	}
	store_close(s);
	char path[512];
	snprintf(path, sizeof(path), "%s/log/0000000000000001.log", d);
	uint8_t *b = read_file(path, len);
	size_t off = 0;
	bounds[0] = 0;
	for (int i = 0; i < NVALS; i++) {
		struct rk_logrec r;
		long n = rk_logrec_decode(b + off, *len - off, &r);
		cr_assert_gt(n, 0);
		off += (size_t)n;
		bounds[i + 1] = off;
	}
	cr_assert_eq(off, *len);
	rm_rf(d);
	free(d);
	return b;
}

Test(oplog, append_and_replay)
{
	char *d = tmpdir();
	struct store_config c = conf(d, RK_FSYNC_ALWAYS, 1 << 20);
	struct store *s = open_ok(&c);
	uint64_t id = store_node_id(s);
	uint64_t last = 0;
	char k[32], v[64];
	for (int i = 0; i < 1000; i++) {
		snprintf(k, sizeof(k), "key%d", i % 300);
		snprintf(v, sizeof(v), "value %d", i);
		last = put(s, k, v);
	}
	rk_ts ts;
	uint64_t lsn;
	cr_assert_eq(store_write(s, RK_REC_TOMBSTONE, "key7", 4, NULL, 0, NOW,
				 &ts, &lsn), 0);
	cr_assert_gt(lsn, last);
	store_flush(s);
	while (store_durable_lsn(s) < lsn)
		usleep(1000);
	store_close(s);

	s = open_ok(&c);
	cr_assert_eq(store_node_id(s), id, "node id survives restart");
	struct store_stats st;
	store_get_stats(s, &st);
	cr_assert_eq(st.replay.log_records, 1001);
	cr_assert_eq(st.keys, 299);
	cr_assert_eq(st.tombstones, 1);
	for (int i = 700; i < 1000; i++) {
		snprintf(k, sizeof(k), "key%d", i % 300);
		snprintf(v, sizeof(v), "value %d", i);
		if (i % 300 != 7)
			assert_value(s, k, v);
	}
	const struct rk_rec *r = store_get(s, "key7", 4);
	cr_assert(r && r->type == RK_REC_TOMBSTONE);
	/* The clock observed the replayed versions: a new write wins. */
	cr_assert_eq(store_write(s, RK_REC_VALUE, "key7", 4, "x", 1, 1, &ts,
				 &lsn), 0);
	assert_value(s, "key7", "x");
	store_close(s);
	rm_rf(d);
	free(d);
}

Test(oplog, last_writer_wins_by_timestamp_in_any_order)
{
	char *d = tmpdir();
	struct store_config c = conf(d, RK_FSYNC_NEVER, 1 << 20);
	struct store *s = open_ok(&c);
	uint64_t lsn;
	rk_ts newer = {5000, 1}, older = {4000, 9}, tie_lo = {6000, 1},
	      tie_hi = {6000, 2};
	cr_assert_eq(store_apply(s, RK_REC_VALUE, "k", 1, "new", 3, newer, &lsn), 1);
	cr_assert_eq(store_apply(s, RK_REC_VALUE, "k", 1, "old", 3, older, &lsn), 0);
	assert_value(s, "k", "new");
	/* Same write twice: nothing changes. */
	cr_assert_eq(store_apply(s, RK_REC_VALUE, "k", 1, "new", 3, newer, &lsn), 0);
	/* Equal time: the higher node id wins, whichever comes first. */
	cr_assert_eq(store_apply(s, RK_REC_VALUE, "k", 1, "hi", 2, tie_hi, &lsn), 1);
	cr_assert_eq(store_apply(s, RK_REC_VALUE, "k", 1, "lo", 2, tie_lo, &lsn), 0);
	assert_value(s, "k", "hi");
	/* A delete is a version too: an older put cannot undo it. */
	rk_ts del = {7000, 1}, late_put = {6500, 3};
	cr_assert_eq(store_apply(s, RK_REC_TOMBSTONE, "k", 1, NULL, 0, del, &lsn), 1);
	cr_assert_eq(store_apply(s, RK_REC_VALUE, "k", 1, "zombie", 6, late_put, &lsn), 0);
	cr_assert_eq(store_get(s, "k", 1)->type, RK_REC_TOMBSTONE);
	store_close(s);
	/* Replay reaches the same state. */
	s = open_ok(&c);
	cr_assert_eq(store_get(s, "k", 1)->type, RK_REC_TOMBSTONE);
	cr_assert_eq(rk_ts_cmp(store_get(s, "k", 1)->ts, del), 0);
	store_close(s);
	rm_rf(d);
	free(d);
}

/* Opens a data dir whose only segment is bytes[0, n) (+ zero fill). */
static int open_with_segment(const uint8_t *bytes, size_t n, size_t zeros,
			     struct store **out, char *err, size_t errlen,
			     char **dir)
{
	*dir = tmpdir();
	char path[512];
	snprintf(path, sizeof(path), "%s/log", *dir);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/log/0000000000000001.log", *dir);
	uint8_t *buf = calloc(1, n + zeros + 1);
	memcpy(buf, bytes, n);
	write_file(path, buf, n + zeros);
	free(buf);
	struct store_config c = conf(*dir, RK_FSYNC_ALWAYS, 1 << 20);
	return store_open(&c, lg(), NOW, out, err, errlen);
}

Test(oplog, torn_tail_truncated_at_every_byte_offset_of_the_last_records)
{
	size_t len, bounds[NVALS + 1];
	uint8_t *log = make_log(&len, bounds);
	for (int zero_fill = 0; zero_fill < 2; zero_fill++) {
		for (size_t cut = bounds[NVALS - 3]; cut <= len; cut++) {
			struct store *s;
			char err[512], *d;
			int rc = open_with_segment(log, cut,
						   zero_fill ? len - cut : 0,
						   &s, err, sizeof(err), &d);
			cr_assert_eq(rc, 0, "cut %zu: %s", cut, err);
			int whole = 0;
			while (whole < NVALS && bounds[whole + 1] <= cut)
				whole++;
			struct store_stats st;
			store_get_stats(s, &st);
			cr_assert_eq(st.keys, (uint64_t)whole, "cut %zu", cut);
			cr_assert_eq(st.replay.truncated_bytes,
				     cut - bounds[whole] +
					     (zero_fill ? len - cut : 0));
			for (int i = 0; i < whole; i++) {
				char k[8];
				snprintf(k, sizeof(k), "k%d", i);
				assert_value(s, k, VALS[i]);
			}
			/* The log takes appends again after the cut. */
			cr_assert_eq(store_start(s, NULL, NULL), 0);
			put(s, "after", "cut");
			store_close(s);
			struct store_config c = conf(d, RK_FSYNC_ALWAYS, 1 << 20);
			s = open_ok(&c);
			store_get_stats(s, &st);
			cr_assert_eq(st.keys, (uint64_t)whole + 1);
			cr_assert_eq(st.replay.truncated_bytes, 0);
			assert_value(s, "after", "cut");
			store_close(s);
			rm_rf(d);
			free(d);
		}
	}
	free(log);
}

Test(oplog, flipped_bit_in_a_middle_record_stops_the_start)
{
	size_t len, bounds[NVALS + 1];
	uint8_t *log = make_log(&len, bounds);
	const int victim = 3;
	for (size_t bit = bounds[victim] * 8; bit < bounds[victim + 1] * 8; bit++) {
		log[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		struct store *s = NULL;
		char err[512] = "", *d;
		int rc = open_with_segment(log, len, 0, &s, err, sizeof(err), &d);
		cr_assert_eq(rc, RK_ECORRUPT, "bit %zu: rc %d", bit, rc);
		char where[64];
		snprintf(where, sizeof(where), "offset %zu", bounds[victim]);
		cr_assert(strstr(err, "0000000000000001.log") && strstr(err, where),
			  "bit %zu: message names file and offset: %s", bit, err);
		/* Nothing was truncated: the evidence stays for the operator. */
		char path[512];
		snprintf(path, sizeof(path), "%s/log/0000000000000001.log", d);
		struct stat sb;
		cr_assert_eq(stat(path, &sb), 0);
		cr_assert_eq((size_t)sb.st_size, len);
		rm_rf(d);
		free(d);
		log[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	}
	free(log);
}

Test(oplog, flipped_bit_in_the_last_record_is_a_torn_tail)
{
	size_t len, bounds[NVALS + 1];
	uint8_t *log = make_log(&len, bounds);
	log[bounds[NVALS - 1] + 20] ^= 0x08;
	struct store *s;
	char err[512], *d;
	cr_assert_eq(open_with_segment(log, len, 0, &s, err, sizeof(err), &d), 0,
		     "%s", err);
	struct store_stats st;
	store_get_stats(s, &st);
	cr_assert_eq(st.keys, NVALS - 1);
	cr_assert_eq(st.replay.truncated_bytes, len - bounds[NVALS - 1]);
	store_close(s);
	rm_rf(d);
	free(d);
	free(log);
}

static int count_files(const char *dir, const char *suffix)
{
	DIR *dd = opendir(dir);
	cr_assert_not_null(dd);
	int n = 0;
	struct dirent *de;
	while ((de = readdir(dd))) {
		size_t l = strlen(de->d_name), sl = strlen(suffix);
		if (l > sl && strcmp(de->d_name + l - sl, suffix) == 0)
			n++;
	}
	closedir(dd);
	return n;
}

Test(oplog, damage_in_a_sealed_segment_stops_the_start)
{
	char *d = tmpdir();
	struct store_config c = conf(d, RK_FSYNC_NEVER, 200);
	struct store *s = open_ok(&c);
	for (int i = 0; i < 40; i++) {
		put(s, "key", "a value to fill segments quickly");
		store_flush(s); /* one chunk each: segments rotate */
	}
	store_close(s);
	char logdir[512], path[600];
	snprintf(logdir, sizeof(logdir), "%s/log", d);
	cr_assert_gt(count_files(logdir, ".log"), 3);
	snprintf(path, sizeof(path), "%s/0000000000000001.log", logdir);
	size_t len;
	uint8_t *b = read_file(path, &len);
	b[len - 3] ^= 0x01; /* last record of the first, sealed segment */
	write_file(path, b, len);
	free(b);
	char err[512];
	cr_assert_eq(store_open(&c, lg(), NOW, &s, err, sizeof(err)), RK_ECORRUPT);
	cr_assert(strstr(err, "0000000000000001.log"), "%s", err);
	rm_rf(d);
	free(d);
}

/* What the store should hold for one key. */
struct model_entry {
	int present;   /* written at least once */
	int tombstone;
	char val[48];
};

static void wait_compaction(struct store *s)
{
	for (int i = 0; store_compacting(s); i++) {
		while (store_compact_step(s, NOW))
			;
		store_maintain(s, NOW);
		usleep(1000);
		cr_assert_lt(i, 20000, "compaction never finished");
	}
}

static void check_model(struct store *s, const struct model_entry *m, int n)
{
	uint64_t keys = 0, tombs = 0;
	for (int i = 0; i < n; i++) {
		char k[16];
		snprintf(k, sizeof(k), "k%d", i);
		const struct rk_rec *r = store_get(s, k, strlen(k));
		if (!m[i].present) {
			cr_assert_null(r, "%s should not exist", k);
			continue;
		}
		cr_assert_not_null(r, "%s lost", k);
		if (m[i].tombstone) {
			cr_assert_eq(r->type, RK_REC_TOMBSTONE, "%s", k);
			tombs++;
		} else {
			assert_value(s, k, m[i].val);
			keys++;
		}
	}
	struct store_stats st;
	store_get_stats(s, &st);
	cr_assert_eq(st.keys, keys, "no extra keys");
	cr_assert_eq(st.tombstones, tombs);
}

Test(oplog, compaction_keeps_exactly_the_live_set)
{
	uint64_t seed = rk_test_seed("oplog.compaction");
	struct rk_rng r;
	rk_rng_seed(&r, seed);
	char *d = tmpdir();
	struct store_config c = conf(d, RK_FSYNC_NEVER, 4096);
	enum { KEYS = 2000 };
	struct model_entry *m = calloc(KEYS, sizeof(*m));
	struct store *s = open_ok(&c);
	for (int round = 0; round < 3; round++) {
		/* Writes before, during and after the compaction walk. */
		for (int phase = 0; phase < 3; phase++) {
			if (phase == 1)
				cr_assert_eq(store_compact_now(s), 0);
			for (int i = 0; i < 3000; i++) {
				int k = (int)rk_rng_below(&r, KEYS);
				char key[16];
				snprintf(key, sizeof(key), "k%d", k);
				rk_ts ts;
				uint64_t lsn;
				m[k].present = 1;
				if (rk_rng_below(&r, 5) == 0) {
					m[k].tombstone = 1;
					cr_assert_eq(store_write(s, RK_REC_TOMBSTONE, key,
								 strlen(key), NULL, 0, NOW,
								 &ts, &lsn), 0);
				} else {
					m[k].tombstone = 0;
					snprintf(m[k].val, sizeof(m[k].val), "v%d.%d.%d",
						 round, phase, i);
					put(s, key, m[k].val);
				}
				if (phase == 1 && i % 50 == 0)
					store_compact_step(s, NOW);
			}
		}
		wait_compaction(s);
		check_model(s, m, KEYS);
	}
	store_close(s);
	char logdir[512];
	snprintf(logdir, sizeof(logdir), "%s/log", d);
	cr_assert_eq(count_files(logdir, ".snap"), 1, "one snapshot");
	cr_assert_eq(count_files(logdir, ".tmp"), 0);
	s = open_ok(&c);
	struct store_stats st;
	store_get_stats(s, &st);
	cr_assert_gt(st.replay.snapshot_records, 0);
	check_model(s, m, KEYS);
	store_close(s);
	rm_rf(d);
	free(d);
	free(m);
}

Test(oplog, compaction_deletes_superseded_segments)
{
	char *d = tmpdir();
	struct store_config c = conf(d, RK_FSYNC_NEVER, 4096);
	struct store *s = open_ok(&c);
	for (int i = 0; i < 5000; i++)
		put(s, "same-key", "overwritten again and again");
	store_flush(s);
	struct store_stats before, after;
	usleep(50000);
	store_get_stats(s, &before);
	cr_assert_eq(store_compact_now(s), 0);
	wait_compaction(s);
	store_get_stats(s, &after);
	cr_assert_eq(after.compactions, 1);
	cr_assert_lt(after.log.segment_bytes, before.log.segment_bytes / 10,
		     "before %llu after %llu",
		     (unsigned long long)before.log.segment_bytes,
		     (unsigned long long)after.log.segment_bytes);
	store_close(s);
	s = open_ok(&c);
	assert_value(s, "same-key", "overwritten again and again");
	store_close(s);
	rm_rf(d);
	free(d);
}

Test(oplog, compaction_purges_tombstones_after_the_grace_period)
{
	char *d = tmpdir();
	struct store_config c = conf(d, RK_FSYNC_NEVER, 1 << 20);
	c.tombstone_grace_ms = 60000;
	struct store *s = open_ok(&c);
	rk_ts ts;
	uint64_t lsn;
	put(s, "keep", "v");
	cr_assert_eq(store_write(s, RK_REC_TOMBSTONE, "gone", 4, NULL, 0, NOW,
				 &ts, &lsn), 0);
	/* Within the grace period the tombstone stays. */
	cr_assert_eq(store_compact_now(s), 0);
	wait_compaction(s);
	cr_assert_not_null(store_get(s, "gone", 4));
	/* An hour later it is purged. */
	cr_assert_eq(store_compact_now(s), 0);
	while (store_compact_step(s, NOW + 3600000))
		;
	wait_compaction(s);
	cr_assert_null(store_get(s, "gone", 4));
	store_close(s);
	s = open_ok(&c);
	cr_assert_null(store_get(s, "gone", 4));
	assert_value(s, "keep", "v");
	struct store_stats st;
	store_get_stats(s, &st);
	cr_assert_eq(st.tombstones, 0);
	store_close(s);
	rm_rf(d);
	free(d);
}

Test(oplog, a_second_process_cannot_open_the_same_data_dir)
{
	char *d = tmpdir();
	struct store_config c = conf(d, RK_FSYNC_NEVER, 1 << 20);
	struct store *s = open_ok(&c);
	/* flock locks are per open file description: a second open in the
	 * same process is refused just like another process. */
	struct store *s2;
	char err[512];
	cr_assert_eq(store_open(&c, lg(), NOW, &s2, err, sizeof(err)), RK_EIO);
	cr_assert(strstr(err, "in use"), "%s", err);
	store_close(s);
	rm_rf(d);
	free(d);
}

Test(oplog, a_damaged_snapshot_stops_the_start)
{
	char *d = tmpdir();
	struct store_config c = conf(d, RK_FSYNC_NEVER, 4096);
	struct store *s = open_ok(&c);
	for (int i = 0; i < 2000; i++) {
		char k[16];
		snprintf(k, sizeof(k), "k%d", i);
		put(s, k, "some value that compresses");
	}
	cr_assert_eq(store_compact_now(s), 0);
	wait_compaction(s);
	store_close(s);
	char logdir[512];
	snprintf(logdir, sizeof(logdir), "%s/log", d);
	DIR *dd = opendir(logdir);
	struct dirent *de;
	char snap[700] = "";
	while ((de = readdir(dd)))
		if (strstr(de->d_name, ".snap"))
			snprintf(snap, sizeof(snap), "%s/%s", logdir, de->d_name);
	closedir(dd);
	cr_assert(snap[0]);
	size_t len;
	uint8_t *b = read_file(snap, &len);
	b[len / 2] ^= 0x10;
	write_file(snap, b, len);
	free(b);
	char err[512];
	cr_assert_eq(store_open(&c, lg(), NOW, &s, err, sizeof(err)), RK_ECORRUPT);
	cr_assert(strstr(err, ".snap"), "%s", err);
	rm_rf(d);
	free(d);
}

/* --- Paxos acceptor state records ---------------------------------- */

struct paxos_seen {
	char keys[8][16];
	char states[8][32];
	int n;
};

static void paxos_collect(void *ctx, const uint8_t *key, size_t klen,
			  const uint8_t *state, size_t len)
{
	struct paxos_seen *p = ctx;
	cr_assert_lt(p->n, 8);
	cr_assert(klen < 16 && len < 32);
	memcpy(p->keys[p->n], key, klen);
	p->keys[p->n][klen] = 0;
	memcpy(p->states[p->n], state, len);
	p->states[p->n][len] = 0;
	p->n++;
}

static const char *paxos_state_of(struct store *s, const char *key)
{
	static struct paxos_seen seen;
	memset(&seen, 0, sizeof(seen));
	store_paxos_each(s, paxos_collect, &seen);
	for (int i = 0; i < seen.n; i++)
		if (!strcmp(seen.keys[i], key))
			return seen.states[i];
	return NULL;
}

static void paxos_put(struct store *s, const char *k, const char *state,
		      uint64_t *lsn)
{
	cr_assert_eq(store_paxos_put(s, k, strlen(k), state, strlen(state),
				     lsn),
		     0);
}

/* Waits until the writer fsync'd lsn. */
static void wait_synced(struct store *s, uint64_t lsn)
{
	store_flush(s);
	for (int i = 0; store_synced_lsn(s) < lsn; i++) {
		cr_assert_lt(i, 5000, "lsn %llu never synced (at %llu)",
			     (unsigned long long)lsn,
			     (unsigned long long)store_synced_lsn(s));
		usleep(1000);
	}
}

Test(oplog, paxos_states_are_synced_whatever_the_fsync_policy)
{
	char *d = tmpdir();
	struct store_config c = conf(d, RK_FSYNC_NEVER, 1 << 20);
	struct store *s = open_ok(&c);
	uint64_t plain = put(s, "plain", "v");
	store_flush(s);
	usleep(20000);
	struct store_stats st;
	store_get_stats(s, &st);
	cr_assert_eq(st.log.fsyncs, 0, "fsync=never syncs nothing by itself");
	cr_assert_lt(store_synced_lsn(s), plain);
	uint64_t lsn;
	paxos_put(s, "k", "promised", &lsn);
	cr_assert_gt(lsn, plain);
	wait_synced(s, lsn);
	store_get_stats(s, &st);
	cr_assert_geq(st.log.fsyncs, 1);
	cr_assert_geq(store_synced_lsn(s), plain,
		      "the records before it are synced with it");
	store_close(s);
	rm_rf(d);
	free(d);
}

Test(oplog, paxos_states_replay_newest_and_survive_compaction)
{
	char *d = tmpdir();
	struct store_config c = conf(d, RK_FSYNC_INTERVAL, 4096);
	struct store *s = open_ok(&c);
	uint64_t lsn;
	paxos_put(s, "k1", "s1", &lsn);
	paxos_put(s, "k2", "x", &lsn);
	paxos_put(s, "k3", "y", &lsn);
	put(s, "data", "d1");
	paxos_put(s, "k1", "s2", &lsn);
	cr_assert_eq(store_paxos_put(s, "k3", 2, NULL, 0, &lsn), 0,
		     "pruned: no state");
	wait_synced(s, lsn);
	store_close(s);

	s = open_ok(&c);
	cr_assert_eq(store_paxos_count(s), 2);
	cr_assert_str_eq(paxos_state_of(s, "k1"), "s2");
	cr_assert_str_eq(paxos_state_of(s, "k2"), "x");
	cr_assert_null(paxos_state_of(s, "k3"));
	/* Enough data to span segments, then a compaction with state
	 * changes during its walk. */
	for (int i = 0; i < 200; i++) {
		char k[16];
		snprintf(k, sizeof(k), "fill%d", i);
		put(s, k, "some value to fill the segments up");
	}
	cr_assert_eq(store_compact_now(s), 0);
	paxos_put(s, "k2", "x2", &lsn);
	cr_assert_eq(store_paxos_put(s, "k1", 2, NULL, 0, &lsn), 0);
	paxos_put(s, "k4", "z", &lsn);
	wait_compaction(s);
	paxos_put(s, "k4", "z2", &lsn);
	wait_synced(s, lsn);
	struct store_stats st;
	store_get_stats(s, &st);
	cr_assert_eq(st.compactions, 1);
	store_close(s);

	s = open_ok(&c);
	cr_assert_null(paxos_state_of(s, "k1"));
	cr_assert_str_eq(paxos_state_of(s, "k2"), "x2");
	cr_assert_str_eq(paxos_state_of(s, "k4"), "z2");
	cr_assert_eq(store_paxos_count(s), 2);
	assert_value(s, "data", "d1");
	cr_assert_null(store_get(s, "k2", 2), "Paxos state is not data");
	/* A second compaction, from a snapshot that holds the states. */
	cr_assert_eq(store_compact_now(s), 0);
	wait_compaction(s);
	store_close(s);
	s = open_ok(&c);
	cr_assert_str_eq(paxos_state_of(s, "k2"), "x2");
	cr_assert_str_eq(paxos_state_of(s, "k4"), "z2");
	store_close(s);
	rm_rf(d);
	free(d);
}

/* A coordinator stamps versions it never logs (it is not a replica of the
 * key) and a replica's log can lose its last records in a crash: either
 * way, after a restart the clock must not issue those versions again.  The
 * wall clock here stands still, as one that is behind the cluster's. */
Test(oplog, the_clock_never_reissues_a_version_after_a_restart)
{
	char *d = tmpdir();
	struct store_config c = conf(d, RK_FSYNC_ALWAYS, 1 << 20);
	rk_ts last = {0, 0};
	for (int boot = 0; boot < 3; boot++) {
		struct store *s = open_ok(&c);
		for (int i = 0; i < 1000; i++) {
			rk_ts ts;
			cr_assert_eq(store_stamp(s, NOW, &ts), 0);
			cr_assert_gt(rk_ts_cmp(ts, last), 0,
				     "boot %d: version %" PRIu64 " after %" PRIu64,
				     boot, ts.hlc, last.hlc);
			last = ts;
		}
		store_close(s);
	}
	rm_rf(d);
	free(d);
}

Test(oplog, a_damaged_clock_file_stops_the_start_with_a_reason)
{
	char *d = tmpdir();
	struct store_config c = conf(d, RK_FSYNC_ALWAYS, 1 << 20);
	struct store *s = open_ok(&c);
	rk_ts ts;
	cr_assert_eq(store_stamp(s, NOW, &ts), 0);
	store_close(s);
	char path[512];
	snprintf(path, sizeof(path), "%s/clock", d);
	FILE *f = fopen(path, "r+");
	cr_assert_not_null(f);
	fputc(0x5a, f); /* the checksum no longer matches */
	fclose(f);
	char err[512];
	cr_assert_eq(store_open(&c, lg(), NOW, &s, err, sizeof(err)),
		     RK_ECORRUPT);
	cr_assert_not_null(strstr(err, "clock"), "%s", err);
	rm_rf(d);
	free(d);
}
