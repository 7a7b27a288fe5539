#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <ini.h>

#include "err.h"
#include "log.h"

enum kind {
	K_STR,      /* char array */
	K_SIZE,     /* uint64 bytes, with suffixes */
	K_DURATION, /* uint64 ms, with suffixes */
	K_COUNT,    /* uint64 plain number */
	K_FSYNC,    /* enum rk_fsync */
	K_LOGLEVEL, /* enum rk_log_level */
};

struct setting {
	const char *section;
	const char *name;
	enum kind kind;
	size_t off;
	size_t size;       /* for K_STR: capacity */
	const char *dflt;  /* default, as text */
	uint64_t min, max; /* for numbers */
	const char *doc;
};

#define F(field) offsetof(struct node_config, field)
#define S(field) sizeof(((struct node_config *)0)->field)

static const struct setting settings[] = {
	{"node", "listen", K_STR, F(listen), S(listen), "127.0.0.1:7400", 0, 0,
	 "TCP address for clients (and, later, peers); gossip will use UDP "
	 "on the same port"},
	{"node", "data_dir", K_STR, F(data_dir), S(data_dir), "./ringkv-data",
	 0, 0, "directory for the node id, its ring tokens and the op-log"},
	{"node", "log_level", K_LOGLEVEL, F(log_level), 0, "info", 0, 0,
	 "error, warn, info, debug or trace"},
	{"node", "weight", K_COUNT, F(weight), 0, "1", 1, 64,
	 "this node's share of the ring relative to the others (tokens are "
	 "chosen at first start)"},
	{"node", "vnodes", K_COUNT, F(vnodes), 0, "256", 1, 4096,
	 "virtual nodes (ring tokens) per unit of weight"},

	{"node", "advertise", K_STR, F(advertise), S(advertise), "", 0, 0,
	 "host:port other nodes and clients use to reach this one (default: "
	 "node.listen; set it when listening on 0.0.0.0)"},

	{"cluster", "name", K_STR, F(cluster_name), S(cluster_name), "ringkv",
	 0, 0, "nodes only talk to nodes with the same name"},
	{"cluster", "replication_factor", K_COUNT, F(rf), 0, "3", 1, 8,
	 "copies of each key (every node must agree)"},
	{"cluster", "seeds", K_STR, F(seeds), S(seeds), "", 0, 0,
	 "host:port,... of nodes to join through (this node's own address "
	 "may be in the list); empty: start a new cluster"},
	{"cluster", "join_delay", K_DURATION, F(join_delay_ms), 0, "1s", 0,
	 600000,
	 "a new node waits this long after joining gossip before it chooses "
	 "its ring tokens, so that nodes started together hear of each "
	 "other; then the waiting node with the lowest id goes first (at "
	 "most replication.settle_timeout behind another)"},

	{"replication", "write_timeout", K_DURATION, F(write_timeout_ms), 0,
	 "2s", 10, 600000,
	 "a write waits this long for its replicas' acknowledgements"},
	{"replication", "read_timeout", K_DURATION, F(read_timeout_ms), 0, "2s",
	 10, 600000, "a read waits this long for its replicas' answers"},
	{"replication", "read_speculate", K_DURATION, F(read_speculate_ms), 0,
	 "20ms", 0, 600000,
	 "a read asks R replicas (ONE: 1, QUORUM: a majority) and asks the "
	 "others when one fails or after this long without R answers; 0 "
	 "asks every replica at once"},
	{"replication", "hint_window", K_DURATION, F(hint_window_ms), 0, "3h",
	 1000, UINT64_MAX,
	 "hints for a replica that was down are kept this long"},
	{"replication", "hint_rate", K_COUNT, F(hint_rate), 0, "2000", 1,
	 1000000, "hints replayed per second to a returning replica"},
	{"replication", "cleanup_delay", K_DURATION, F(cleanup_delay_ms), 0,
	 "30s", 0, UINT64_MAX,
	 "after a ring change settles, a node waits this long, then drops "
	 "the keys it no longer owns"},
	{"replication", "settle_timeout", K_DURATION, F(settle_timeout_ms), 0,
	 "30s", 0, 3600000,
	 "a joining or leaving node waits at most this long for every live "
	 "member to know it before ranges move (then moves them anyway)"},

	{"cas", "timeout", K_DURATION, F(cas_timeout_ms), 0, "2s", 10, 600000,
	 "a compare-and-set or SERIAL request may take this long at the key's "
	 "primary, waiting behind others on the key included; then TIMEOUT "
	 "(the outcome is unknown)"},
	{"cas", "contention_timeout", K_DURATION, F(cas_contention_timeout_ms),
	 0, "1s", 1, 600000,
	 "a proposal that keeps losing to other proposers gives up after "
	 "this: CONTENTION_TIMEOUT (the outcome is unknown)"},
	{"cas", "round_timeout", K_DURATION, F(cas_round_timeout_ms), 0,
	 "250ms", 1, 600000,
	 "a Paxos round without a majority of answers for this long is "
	 "tried again"},
	{"cas", "backoff_min", K_DURATION, F(cas_backoff_min_ms), 0, "4ms", 0,
	 60000, "first cap of the random wait after losing a round (doubles "
		"with each loss)"},
	{"cas", "backoff_max", K_DURATION, F(cas_backoff_max_ms), 0, "100ms",
	 1, 60000, "largest cap of the random wait after losing a round"},
	{"cas", "max_queue", K_COUNT, F(cas_max_queue), 0, "128", 1, 1000000,
	 "operations waiting behind the running one on one key at its "
	 "primary; more are refused with OVERLOADED"},
	{"cas", "max_ops", K_COUNT, F(cas_max_ops), 0, "10000", 1, 10000000,
	 "compare-and-set and SERIAL requests a node holds at once (its own, "
	 "forwarded and queued); more are refused with OVERLOADED"},

	{"gossip", "period", K_DURATION, F(gossip_period_ms), 0, "1s", 10,
	 600000, "SWIM protocol period: one member probed per period"},
	{"gossip", "probe_timeout", K_DURATION, F(gossip_probe_timeout_ms), 0,
	 "500ms", 1, 600000,
	 "wait for a direct ack before asking others to probe"},
	{"gossip", "indirect_probes", K_COUNT, F(gossip_indirect), 0, "3", 0, 16,
	 "members asked to probe indirectly (SWIM's k)"},
	{"gossip", "push_pull_interval", K_DURATION, F(gossip_push_pull_ms), 0,
	 "30s", 100, 86400000,
	 "full-state exchange with a random member over TCP, so views "
	 "re-merge after a partition"},
	{"gossip", "tombstone", K_DURATION, F(gossip_tombstone_ms), 0, "1h",
	 1000, UINT64_MAX,
	 "dead and departed members are remembered this long"},
	{"gossip", "max_packet", K_SIZE, F(gossip_max_packet), 0, "1400", 512,
	 65507, "largest UDP datagram sent"},

	{"storage", "fsync", K_FSYNC, F(fsync), 0, "interval", 0, 0,
	 "always: acknowledge a write only once it is on disk (concurrent "
	 "writes share one fsync); interval: fsync every fsync_interval; "
	 "never: leave it to the OS"},
	{"storage", "fsync_interval", K_DURATION, F(fsync_interval_ms), 0,
	 "100ms", 1, 60000, "how often fsync=interval syncs the log"},
	{"storage", "segment_size", K_SIZE, F(segment_bytes), 0, "64MiB",
	 4096, 1ull << 34, "a log segment is sealed at this size"},
	{"storage", "compact_min_size", K_SIZE, F(compact_min_bytes), 0,
	 "64MiB", 0, UINT64_MAX,
	 "never compact while the log segments are smaller than this"},
	{"storage", "compact_ratio", K_COUNT, F(compact_ratio_pct), 0, "100",
	 10, 100000,
	 "compact when the segments exceed this percentage of the live data"},
	{"storage", "compression_level", K_COUNT, F(zstd_level), 0, "1", 1, 19,
	 "zstd level of compacted snapshots"},
	{"storage", "tombstone_grace", K_DURATION, F(tombstone_grace_ms), 0,
	 "10d", 0, UINT64_MAX,
	 "deletes are remembered this long, then purged by compaction"},
	{"storage", "compact_step", K_COUNT, F(compact_step_records), 0, "2000",
	 1, 1000000, "records compaction copies per event-loop turn"},
	{"storage", "clock_window", K_DURATION, F(clock_window_ms), 0, "2s",
	 10, 3600000,
	 "the node's clock ceiling (data_dir/clock) is raised this far ahead "
	 "of the clock, with one sync, whenever a write reaches it; a "
	 "restarted node's first versions start up to this far ahead of its "
	 "wall clock"},

	{"counters", "dedup_max_ids", K_COUNT, F(dedup_max_ids), 0, "1000000",
	 1, 1u << 28,
	 "op ids of counter adds each node remembers (its own adds and the "
	 "deltas it merged, about replication_factor times its share); a "
	 "retry of a forgotten op id is refused, never applied twice "
	 "(16 bytes and a table slot each: 1000000 is about 24 MiB)"},
	{"counters", "dedup_max_age", K_DURATION, F(dedup_max_age_ms), 0, "1h",
	 1000, UINT64_MAX,
	 "op ids older than this (by the client's clock in the id) are "
	 "forgotten, and retries of them refused: how long a client may "
	 "keep retrying one add"},
	{"counters", "dedup_max_future", K_DURATION, F(dedup_max_future_ms), 0,
	 "60s", 1, UINT64_MAX,
	 "op ids stamped further ahead of the owner's clock are refused (a "
	 "client clock that runs fast)"},
	{"counters", "max_entries", K_COUNT, F(counter_max_entries), 0, "4096",
	 1, 4096,
	 "owner entries one counter may hold (one per node that owned adds "
	 "to it); an add that would create more is refused"},

	{"limits", "max_frame", K_SIZE, F(max_frame), 0, "16MiB", 64,
	 1ull << 30, "largest frame body accepted; a larger length prefix "
		     "is refused before any allocation"},
	{"limits", "max_key", K_SIZE, F(max_key), 0, "1KiB", 1, 65535,
	 "longest key"},
	{"limits", "max_value", K_SIZE, F(max_value), 0, "1MiB", 0,
	 256ull << 20, "longest value"},
	{"limits", "max_clients", K_COUNT, F(max_clients), 0, "10000", 1,
	 1000000, "connections beyond this get MAX_CLIENTS and are closed"},
	{"limits", "frame_timeout", K_DURATION, F(frame_timeout_ms), 0, "10s",
	 1, UINT32_MAX, "a started frame must be complete within this"},
	{"limits", "idle_timeout", K_DURATION, F(idle_timeout_ms), 0, "300s",
	 0, UINT64_MAX, "close connections idle this long (0 = never)"},
	{"limits", "max_output", K_SIZE, F(max_output_bytes), 0, "64MiB", 4096,
	 UINT64_MAX, "close a connection whose unread replies exceed this"},
	{"limits", "max_bad_frames", K_COUNT, F(max_bad_frames), 0, "16", 1,
	 1000000, "close a connection after this many bad frames in a row"},
	{"limits", "frames_per_turn", K_COUNT, F(frames_per_turn), 0, "64", 1,
	 1000000, "requests served per connection per event-loop turn"},
};

#define N_SETTINGS (sizeof(settings) / sizeof(settings[0]))

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

struct unit {
	const char *suffix;
	uint64_t mult;
};

static int parse_scaled(const char *s, uint64_t *out,
			const struct unit *units, size_t nunits)
{
	while (isspace((unsigned char)*s))
		s++;
	if (!isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno)
		return -1;
	while (isspace((unsigned char)*end))
		end++;
	size_t n = strlen(end);
	while (n && isspace((unsigned char)end[n - 1]))
		n--;
	uint64_t mult = 1;
	if (n) {
		size_t i;
		for (i = 0; i < nunits; i++)
			if (strlen(units[i].suffix) == n &&
			    strncasecmp(end, units[i].suffix, n) == 0)
				break;
		if (i == nunits)
			return -1;
		mult = units[i].mult;
	}
	if (mult && v > UINT64_MAX / mult)
		return -1;
	*out = v * mult;
	return 0;
}

static const struct unit size_units[] = {
	{"b", 1},          {"k", 1024},       {"kb", 1024},
	{"kib", 1024},     {"m", 1u << 20},   {"mb", 1u << 20},
	{"mib", 1u << 20}, {"g", 1u << 30},   {"gb", 1u << 30},
	{"gib", 1u << 30}, {"t", 1ull << 40}, {"tib", 1ull << 40},
};

static const struct unit time_units[] = {
	{"ms", 1},
	{"s", 1000},
	{"m", 60000},
	{"h", 3600000},
	{"d", 86400000},
};

int config_parse_size(const char *s, uint64_t *out)
{
	return parse_scaled(s, out, size_units,
			    sizeof(size_units) / sizeof(size_units[0]));
}

int config_parse_duration_ms(const char *s, uint64_t *out)
{
	return parse_scaled(s, out, time_units,
			    sizeof(time_units) / sizeof(time_units[0]));
}

static const char *const fsync_names[] = {"always", "interval", "never"};

static const struct setting *find(const char *name)
{
	const char *dot = strchr(name, '.');
	for (size_t i = 0; i < N_SETTINGS; i++) {
		const struct setting *st = &settings[i];
		if (dot) {
			size_t sl = (size_t)(dot - name);
			if (strlen(st->section) == sl &&
			    strncmp(st->section, name, sl) == 0 &&
			    strcmp(st->name, dot + 1) == 0)
				return st;
		} else if (strcmp(st->name, name) == 0) {
			return st;
		}
	}
	return NULL;
}

static int set_one(struct node_config *c, const struct setting *st,
		   const char *value, char *err, size_t errlen)
{
	char *base = (char *)c;
	uint64_t v = 0;
	int bad = 0;
	switch (st->kind) {
	case K_STR:
		if (strlen(value) >= st->size)
			return errf(err, errlen, RK_EINVALID,
				    "%s.%s: longer than %zu bytes",
				    st->section, st->name, st->size - 1);
		memcpy(base + st->off, value, strlen(value) + 1);
		return 0;
	case K_FSYNC:
		for (int i = 0; i < 3; i++)
			if (strcasecmp(value, fsync_names[i]) == 0) {
				*(int *)(base + st->off) = i;
				return 0;
			}
		return errf(err, errlen, RK_EINVALID,
			    "%s.%s: '%s' is not always, interval or never",
			    st->section, st->name, value);
	case K_LOGLEVEL: {
		int l = rk_log_level_parse(value);
		if (l < 0)
			return errf(err, errlen, RK_EINVALID,
				    "%s.%s: '%s' is not error, warn, info, "
				    "debug or trace",
				    st->section, st->name, value);
		*(int *)(base + st->off) = l;
		return 0;
	}
	case K_SIZE:
		bad = config_parse_size(value, &v);
		break;
	case K_DURATION:
		bad = config_parse_duration_ms(value, &v);
		break;
	case K_COUNT:
		bad = parse_scaled(value, &v, NULL, 0);
		break;
	}
	if (bad)
		return errf(err, errlen, RK_EINVALID, "%s.%s: cannot parse '%s'%s",
			    st->section, st->name, value,
			    st->kind == K_SIZE       ? " (e.g. 512, 64KiB, 16MiB)"
			    : st->kind == K_DURATION ? " (e.g. 500ms, 10s, 5m, 3h)"
						     : "");
	if (v < st->min || v > st->max)
		return errf(err, errlen, RK_EINVALID,
			    "%s.%s: %" PRIu64 " is outside %" PRIu64
			    "..%" PRIu64,
			    st->section, st->name, v, st->min, st->max);
	*(uint64_t *)(base + st->off) = v;
	return 0;
}

void config_defaults(struct node_config *c)
{
	memset(c, 0, sizeof(*c));
	char err[256];
	for (size_t i = 0; i < N_SETTINGS; i++)
		if (set_one(c, &settings[i], settings[i].dflt, err,
			    sizeof(err)) != 0)
			abort(); /* a bad default is a programming error */
}

int config_set(struct node_config *c, const char *name, const char *value,
	       char *err, size_t errlen)
{
	const struct setting *st = find(name);
	if (!st)
		return errf(err, errlen, RK_EINVALID,
			    "unknown setting '%s' (ringkvd --help-config "
			    "lists them)",
			    name);
	return set_one(c, st, value, err, errlen);
}

struct ini_ctx {
	struct node_config *c;
	char *err;
	size_t errlen;
	int rc;
	const char *path;
};

static int ini_cb(void *user, const char *section, const char *name,
		  const char *value)
{
	struct ini_ctx *x = user;
	if (x->rc)
		return 0;
	char full[256];
	snprintf(full, sizeof(full), "%s.%s", section, name);
	const struct setting *st = section[0] ? find(full) : NULL;
	if (!st) {
		x->rc = errf(x->err, x->errlen, RK_EINVALID,
			     "unknown setting '%s' in section [%s]", name,
			     section);
		return 0;
	}
	x->rc = set_one(x->c, st, value, x->err, x->errlen);
	return x->rc == 0;
}

int config_load_file(struct node_config *c, const char *path, char *err,
		     size_t errlen)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return errf(err, errlen, RK_EIO, "cannot read %s: %s", path,
			    strerror(errno));
	char inner[256] = "";
	struct ini_ctx x = {c, inner, sizeof(inner), 0, path};
	int line = ini_parse_file(f, ini_cb, &x);
	fclose(f);
	if (line != 0)
		return errf(err, errlen, RK_EINVALID, "%s:%d: %s", path, line,
			    inner[0] ? inner : "syntax error");
	return 0;
}

int config_validate(const struct node_config *c, char *err, size_t errlen)
{
	if (!strchr(c->listen, ':'))
		return errf(err, errlen, RK_EINVALID,
			    "node.listen: '%s' is not HOST:PORT", c->listen);
	if (c->gossip_probe_timeout_ms >= c->gossip_period_ms)
		return errf(err, errlen, RK_EINVALID,
			    "gossip.probe_timeout must be shorter than "
			    "gossip.period");
	if (!c->data_dir[0])
		return errf(err, errlen, RK_EINVALID, "node.data_dir is empty");
	if (!c->cluster_name[0])
		return errf(err, errlen, RK_EINVALID, "cluster.name is empty");
	if (c->weight * c->vnodes > 65536)
		return errf(err, errlen, RK_EINVALID,
			    "node.weight x node.vnodes is above 65536 tokens");
	if (c->cas_backoff_min_ms > c->cas_backoff_max_ms)
		return errf(err, errlen, RK_EINVALID,
			    "cas.backoff_min must not exceed cas.backoff_max");
	if (c->cas_round_timeout_ms >= c->cas_timeout_ms)
		return errf(err, errlen, RK_EINVALID,
			    "cas.round_timeout must be shorter than "
			    "cas.timeout");
	/* A request carries key and value plus a little framing. */
	if (c->max_frame < c->max_key + c->max_value + 64)
		return errf(err, errlen, RK_EINVALID,
			    "limits.max_frame (%" PRIu64
			    ") must exceed max_key + max_value + 64",
			    c->max_frame);
	return 0;
}

static void format_value(const struct node_config *c, const struct setting *st,
			 char *out, size_t n)
{
	const char *base = (const char *)c;
	switch (st->kind) {
	case K_STR:
		snprintf(out, n, "%s", base + st->off);
		break;
	case K_FSYNC:
		snprintf(out, n, "%s", fsync_names[*(const int *)(base + st->off)]);
		break;
	case K_LOGLEVEL:
		snprintf(out, n, "%s",
			 rk_log_level_name(*(const int *)(base + st->off)));
		break;
	case K_DURATION:
		snprintf(out, n, "%" PRIu64 "ms",
			 *(const uint64_t *)(base + st->off));
		break;
	case K_SIZE:
	case K_COUNT:
		snprintf(out, n, "%" PRIu64,
			 *(const uint64_t *)(base + st->off));
		break;
	}
}

void config_print(const struct node_config *c, FILE *out)
{
	const char *section = "";
	for (size_t i = 0; i < N_SETTINGS; i++) {
		const struct setting *st = &settings[i];
		if (strcmp(section, st->section) != 0) {
			fprintf(out, "%s[%s]\n", i ? "\n" : "", st->section);
			section = st->section;
		}
		char v[PATH_MAX + 32];
		format_value(c, st, v, sizeof(v));
		fprintf(out, "%s = %s\n", st->name, v);
	}
}

void config_print_reference(FILE *out)
{
	const char *section = "";
	for (size_t i = 0; i < N_SETTINGS; i++) {
		const struct setting *st = &settings[i];
		if (strcmp(section, st->section) != 0) {
			fprintf(out, "%s[%s]\n", i ? "\n" : "", st->section);
			section = st->section;
		}
		fprintf(out, "%-18s default %-15s %s\n", st->name, st->dflt,
			st->doc);
	}
}
