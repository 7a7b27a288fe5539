/* config.h: ringkvd's settings, with one table that drives the config
 * file, the --set flag and the printed documentation, so a setting cannot
 * be parsed one way and documented another.
 *
 * Precedence: built-in defaults < config file < command-line flags.
 */
#ifndef RK_CONFIG_H
#define RK_CONFIG_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "oplog.h"

struct node_config {
	/* [node] */
	char listen[256];        /* host:port for clients (and peers) */
	char data_dir[PATH_MAX]; /* node_id, tokens, LOCK, log/ */
	int log_level;
	uint64_t weight;         /* share of the ring relative to others */
	uint64_t vnodes;         /* virtual nodes per unit of weight */

	char advertise[256];     /* address others use to reach us; "" =
				    listen */

	/* [cluster] (every node must agree) */
	char cluster_name[64];
	uint64_t rf;             /* replication factor */
	char seeds[4096];        /* comma-separated host:port list */
	uint64_t join_delay_ms;  /* before a new node chooses its tokens */

	/* [replication] */
	uint64_t write_timeout_ms;
	uint64_t read_timeout_ms;
	uint64_t read_speculate_ms;
	uint64_t hint_window_ms;
	uint64_t hint_rate;
	uint64_t cleanup_delay_ms;
	uint64_t settle_timeout_ms;

	/* [cas] (compare-and-set, SERIAL reads: node/cas.c) */
	uint64_t cas_timeout_ms;
	uint64_t cas_contention_timeout_ms;
	uint64_t cas_round_timeout_ms;
	uint64_t cas_backoff_min_ms;
	uint64_t cas_backoff_max_ms;
	uint64_t cas_max_queue;
	uint64_t cas_max_ops;

	/* [gossip] */
	uint64_t gossip_period_ms;
	uint64_t gossip_probe_timeout_ms;
	uint64_t gossip_indirect;
	uint64_t gossip_push_pull_ms;
	uint64_t gossip_tombstone_ms;
	uint64_t gossip_max_packet;

	/* [storage] */
	int fsync;                 /* enum rk_fsync */
	uint64_t fsync_interval_ms;
	uint64_t segment_bytes;
	uint64_t compact_min_bytes;
	uint64_t compact_ratio_pct;
	uint64_t zstd_level;
	uint64_t tombstone_grace_ms;
	uint64_t compact_step_records;
	uint64_t clock_window_ms;

	/* [counters] */
	uint64_t dedup_max_ids;	      /* op ids an owner remembers */
	uint64_t dedup_max_age_ms;    /* ... for at most this long */
	uint64_t dedup_max_future_ms; /* op ids ahead of our clock: refused */
	uint64_t counter_max_entries; /* entries (owner ids) per counter */

	/* [limits] */
	uint64_t max_frame;        /* bytes of one frame body */
	uint64_t max_key;
	uint64_t max_value;
	uint64_t max_clients;
	uint64_t frame_timeout_ms; /* to finish a started frame */
	uint64_t idle_timeout_ms;  /* 0 = off */
	uint64_t max_output_bytes; /* per connection */
	uint64_t max_bad_frames;   /* in a row, then close */
	uint64_t frames_per_turn;  /* fairness between connections */
};

/* Fills every field with its default. */
void config_defaults(struct node_config *c);

/* Sets one setting by its name ("limits.max_value" or just "max_value")
 * from a string ("1MiB", "10s", "always").  Returns 0 or RK_EINVALID with
 * a reason in err. */
int config_set(struct node_config *c, const char *name, const char *value,
	       char *err, size_t errlen);

/* Reads an INI file ([section] name = value).  Returns 0, or RK_EIO /
 * RK_EINVALID with file, line and reason in err. */
int config_load_file(struct node_config *c, const char *path, char *err,
		     size_t errlen);

/* Checks settings against each other.  Returns 0 or RK_EINVALID. */
int config_validate(const struct node_config *c, char *err, size_t errlen);

/* Writes every setting with its current value as an INI file. */
void config_print(const struct node_config *c, FILE *out);

/* Writes the reference: every setting, default, range and meaning. */
void config_print_reference(FILE *out);

/* Parses "1024", "64KiB", "16MiB", "1GiB" (also K/M/G, KB/MB/GB). */
int config_parse_size(const char *s, uint64_t *out);
/* Parses "500ms", "10s", "5m", "3h", "10d"; a bare number is ms. */
int config_parse_duration_ms(const char *s, uint64_t *out);

#endif
