/* ringkv-storebench: how fast the storage core appends, replays and
 * compacts, on real files.  A measurement tool, not a test.
 *
 *   ringkv-storebench [-n RECORDS] [-k KEYS] [-d VALUE_BYTES]
 *                     [--fsync always|interval|never] [--dir DIR]
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "store.h"

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static struct store *open_or_die(const struct store_config *c,
				 const struct rk_logger *lg)
{
	struct store *s;
	char err[512];
	if (store_open(c, lg, 0, &s, err, sizeof(err)) ||
	    store_start(s, NULL, NULL)) {
		fprintf(stderr, "storebench: %s\n", err);
		exit(2);
	}
	return s;
}

int main(int argc, char **argv)
{
	uint64_t n = 2000000, keys = 1000000, vsize = 100;
	const char *fsync_mode = "never";
	char dir[256] = "";
	static const struct option opts[] = {
		{"fsync", required_argument, NULL, 'f'},
		{"dir", required_argument, NULL, 'D'},
		{NULL, 0, NULL, 0},
	};
	int c;
	while ((c = getopt_long(argc, argv, "n:k:d:", opts, NULL)) != -1) {
		switch (c) {
		case 'n': n = strtoull(optarg, NULL, 10); break;
		case 'k': keys = strtoull(optarg, NULL, 10); break;
		case 'd': vsize = strtoull(optarg, NULL, 10); break;
		case 'f': fsync_mode = optarg; break;
		case 'D': snprintf(dir, sizeof(dir), "%s", optarg); break;
		default:
			fprintf(stderr, "usage: ringkv-storebench [-n RECORDS] "
					"[-k KEYS] [-d VALUE_BYTES] [--fsync "
					"MODE] [--dir DIR]\n");
			return 2;
		}
	}
	if (!dir[0]) {
		snprintf(dir, sizeof(dir), "/tmp/rkv-storebench-XXXXXX");
		if (!mkdtemp(dir))
			return 2;
	}
	struct rk_logger lg;
	rk_logger_init(&lg, "bench", RK_LOG_WARN);
	struct store_config sc = {
		.data_dir = dir,
		.fsync = !strcmp(fsync_mode, "always")     ? RK_FSYNC_ALWAYS
			 : !strcmp(fsync_mode, "interval") ? RK_FSYNC_INTERVAL
							   : RK_FSYNC_NEVER,
		.fsync_interval_ms = 100,
		.segment_bytes = 64u << 20,
		.zstd_level = 1,
		.compact_min_bytes = UINT64_MAX,
		.compact_ratio_pct = 100,
		.compact_step_records = 2000,
		.compact_backlog_bytes = 8u << 20,
		.clock_window_ms = 2000,
	};
	char *val = malloc(vsize);
	memset(val, 'v', vsize);
	struct store *s = open_or_die(&sc, &lg);
	double t0 = now_s();
	char key[32];
	for (uint64_t i = 0; i < n; i++) {
		int kl = snprintf(key, sizeof(key), "key%012" PRIu64, i % keys);
		rk_ts ts;
		uint64_t lsn;
		store_write(s, RK_REC_VALUE, key, (size_t)kl, val, vsize,
			    1700000000000ull + i / 1000, &ts, &lsn);
		if (i % 256 == 255)
			store_flush(s); /* what one busy loop turn hands over */
	}
	store_close(s);
	double t1 = now_s();
	printf("append: %" PRIu64 " records of %" PRIu64 "-byte values over "
	       "%" PRIu64 " keys, fsync=%s: %.2f s, %.0f records/s "
	       "(including the final fsync)\n",
	       n, vsize, keys, fsync_mode, t1 - t0, (double)n / (t1 - t0));

	s = open_or_die(&sc, &lg);
	struct store_stats st;
	store_get_stats(s, &st);
	printf("replay (log only): %" PRIu64 " records, %" PRIu64 " keys in "
	       "%" PRIu64 " ms: %.0f records/s, %.0f MB/s of log\n",
	       st.replay.log_records, st.keys, st.replay_ms,
	       (double)st.replay.log_records * 1000.0 / (double)(st.replay_ms ? st.replay_ms : 1),
	       (double)st.log.segment_bytes / 1e6 * 1000.0 /
		       (double)(st.replay_ms ? st.replay_ms : 1));
	double c0 = now_s();
	store_compact_now(s);
	while (store_compacting(s)) {
		while (store_compact_step(s, 1700000000000ull))
			;
		store_maintain(s, 1700000000000ull);
		usleep(1000);
	}
	double c1 = now_s();
	store_get_stats(s, &st);
	printf("compaction: %.2f s for %" PRIu64 " live keys; snapshot %.1f MB "
	       "(%.1f bytes/key), log left %.1f MB\n",
	       c1 - c0, st.keys, (double)st.log.snapshot_bytes / 1e6,
	       (double)st.log.snapshot_bytes / (double)(st.keys ? st.keys : 1),
	       (double)st.log.segment_bytes / 1e6);
	store_close(s);
	s = open_or_die(&sc, &lg);
	store_get_stats(s, &st);
	printf("replay (snapshot): %" PRIu64 " records in %" PRIu64
	       " ms: %.0f records/s\n",
	       st.replay.snapshot_records, st.replay_ms,
	       (double)st.replay.snapshot_records * 1000.0 /
		       (double)(st.replay_ms ? st.replay_ms : 1));
	store_close(s);
	free(val);
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "storebench: could not remove %s\n", dir);
	return 0;
}
