/* ringkv: the command-line client.
 *
 *   ringkv [-s HOST:PORT[,HOST:PORT...]] [--json] COMMAND [ARGS]
 *
 * Data commands go through a smart libringkv (straight to a replica of the
 * key) unless --smart off; get --local, status's per-node figures and the
 * ring changes talk to one named node.
 * Options may come before or after the command.  With no command it reads
 * commands from a prompt.  Exit status: 0 success, 1 "no" (key not found,
 * does not exist), 2 any error (message on stderr).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "base64.h"
#include "err.h"
#include "lincheck_cli.h"
#include "ring.h"
#include "ring_report.h"
#include "ringkv.h"

#define EXIT_YES 0
#define EXIT_NO 1
#define EXIT_ERR 2
#define DEFAULT_SEEDS "127.0.0.1:7400"
/* Longest value read from stdin; the node's own limit is lower. */
#define STDIN_MAX (1u << 30)

struct cli {
	const char *seeds;
	int json;
	int raw;
	int interactive; /* at the prompt */
	int simulate;    /* ring --simulate N */
	int vnodes;      /* ring --vnodes V */
	int rf;          /* ring --rf R; 0: the cluster's */
	const char *max_states; /* lincheck --max-states N */
	int all;         /* get --all: every replica's answer */
	int local;       /* get --local: the contacted node's own copy */
	int absent;      /* cas --absent: expect no value */
	int timeout_set; /* --timeout given */
	const char *op_id; /* incr/decr --op-id HEX: retry an earlier add */
	rkv_options opts;
	rkv_client *client; /* connected on first use */
};

typedef int (*cmd_fn)(struct cli *cli, int argc, char **argv);

struct command {
	const char *name;
	const char *args;
	const char *help;
	cmd_fn fn;
	int min_args, max_args;
};

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("ringkv: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	return EXIT_ERR;
}

/* ------------------------------------------------------------------ */
/* JSON output                                                         */

static int valid_utf8(const uint8_t *p, size_t n)
{
	size_t i = 0;
	while (i < n) {
		uint8_t c = p[i];
		size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3
				      : (c >> 3) == 30 ? 4 : 0;
		if (!len || i + len > n)
			return 0;
		for (size_t k = 1; k < len; k++)
			if ((p[i + k] & 0xc0) != 0x80)
				return 0;
		i += len;
	}
	return 1;
}

static void json_str(FILE *out, const uint8_t *p, size_t n)
{
	fputc('"', out);
	for (size_t i = 0; i < n; i++) {
		uint8_t c = p[i];
		if (c == '"' || c == '\\')
			fprintf(out, "\\%c", c);
		else if (c == '\n')
			fputs("\\n", out);
		else if (c == '\t')
			fputs("\\t", out);
		else if (c == '\r')
			fputs("\\r", out);
		else if (c < 0x20 || c == 0x7f)
			fprintf(out, "\\u%04x", c);
		else
			fputc(c, out);
	}
	fputc('"', out);
}

static void base64(FILE *out, const uint8_t *p, size_t n)
{
	char *b = malloc(RK_BASE64_LEN(n) + 1);
	if (!b) {
		fputs("null", out);
		return;
	}
	size_t len = rk_base64_encode(b, p, n);
	fprintf(out, "\"%.*s\"", (int)len, b);
	free(b);
}

/* "name":"text" or, for bytes that are not UTF-8, "name_base64":"..." */
static void json_bytes_field(FILE *out, const char *name, const uint8_t *p,
			     size_t n)
{
	if (valid_utf8(p, n)) {
		fprintf(out, "\"%s\":", name);
		json_str(out, p, n);
	} else {
		fprintf(out, "\"%s_base64\":", name);
		base64(out, p, n);
	}
}

static void json_ts(FILE *out, rkv_timestamp ts)
{
	fprintf(out, "\"timestamp\":{\"hlc\":%" PRIu64 ",\"node\":\"%016" PRIx64
		     "\"}",
		ts.hlc, ts.node_id);
}

static int json_error(struct cli *cli, int rc)
{
	const char *detail = cli->client ? rkv_last_error(cli->client) : "";
	printf("{\"ok\":false,\"error\":");
	json_str(stdout, (const uint8_t *)rkv_strerror(rc),
		 strlen(rkv_strerror(rc)));
	printf(",\"code\":%d,\"detail\":", rc);
	json_str(stdout, (const uint8_t *)detail, strlen(detail));
	printf("}\n");
	return EXIT_ERR;
}

/* Reports a failed call: JSON on stdout with --json, else stderr. */
static int report(struct cli *cli, int rc)
{
	if (cli->json)
		return json_error(cli, rc);
	const char *detail = cli->client ? rkv_last_error(cli->client) : "";
	if (detail && *detail && strcmp(detail, rkv_strerror(rc)) != 0)
		return fail("%s: %s", rkv_strerror(rc), detail);
	return fail("%s", rkv_strerror(rc));
}

/* ------------------------------------------------------------------ */

static int connect_once(struct cli *cli)
{
	if (cli->client)
		return RKV_OK;
	/* Connection errors surface, with detail, from the first call. */
	int rc = rkv_client_new(cli->seeds, &cli->opts, &cli->client);
	if (rc == RKV_ERR_INVALID)
		fail("bad seed list '%s' (want HOST:PORT[,HOST:PORT...])",
		     cli->seeds);
	else if (rc)
		report(cli, rc);
	return rc;
}

static void json_reply_fields(FILE *out, int status, int tombstone,
			      const uint8_t *data, size_t len, rkv_timestamp ts)
{
	fprintf(out, "\"status\":\"%s\"",
		tombstone ? "DELETED" : rk_errname(status));
	if (status == RKV_OK) {
		putc(',', out);
		json_bytes_field(out, "value", data, len);
	}
	if (ts.hlc || ts.node_id) {
		putc(',', out);
		json_ts(out, ts);
	}
}

/* A value in a table cell: printable ASCII as is, the rest escaped, cut
 * after CELL_MAX bytes. */
#define CELL_MAX 48
static void print_cell(const uint8_t *p, size_t n)
{
	size_t shown = n < CELL_MAX ? n : CELL_MAX;
	for (size_t i = 0; i < shown; i++) {
		if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '\\')
			putchar(p[i]);
		else
			printf("\\x%02x", p[i]);
	}
	if (shown < n)
		printf("... (%zu bytes)", n);
}

static void print_ts(rkv_timestamp ts)
{
	if (ts.hlc || ts.node_id)
		printf("%" PRIu64 "/%016" PRIx64, ts.hlc, ts.node_id);
	else
		printf("-");
}

/* get --all: what every replica holds, and the newest. */
static int get_all(struct cli *cli, const char *key)
{
	rkv_replies *r;
	int rc = rkv_get_all(cli->client, key, strlen(key), NULL, &r);
	if (rc && rc != RKV_ERR_NOT_FOUND) {
		rkv_replies_free(r);
		return report(cli, rc);
	}
	int found = rc == RKV_OK;
	if (cli->json) {
		printf("{\"ok\":true,\"found\":%s,", found ? "true" : "false");
		json_bytes_field(stdout, "key", (const uint8_t *)key,
				 strlen(key));
		if (found) {
			putchar(',');
			json_bytes_field(stdout, "value", r->newest->data,
					 r->newest->len);
		}
		if (r->newest_ts.hlc || r->newest_ts.node_id) {
			putchar(',');
			json_ts(stdout, r->newest_ts);
		}
		printf(",\"replies\":[");
		for (size_t i = 0; i < r->n_replies; i++) {
			const rkv_reply *x = &r->replies[i];
			printf("%s{\"node\":\"%016" PRIx64 "\",", i ? "," : "",
			       x->node_id);
			json_reply_fields(stdout, x->status, x->tombstone,
					  x->data, x->len, x->ts);
			printf("}");
		}
		printf("]}\n");
	} else {
		printf("%-16s  %-11s  %-36s  %s\n", "replica", "status",
		       "timestamp", "value");
		for (size_t i = 0; i < r->n_replies; i++) {
			const rkv_reply *x = &r->replies[i];
			printf("%016" PRIx64 "  %-11s  ", x->node_id,
			       x->tombstone ? "DELETED" : rk_errname(x->status));
			char tsb[40];
			snprintf(tsb, sizeof(tsb), "%" PRIu64 "/%016" PRIx64,
				 x->ts.hlc, x->ts.node_id);
			printf("%-36s  ", x->ts.hlc || x->ts.node_id ? tsb : "-");
			if (x->status == RKV_OK)
				print_cell(x->data, x->len);
			else if (x->tombstone)
				printf("(deleted)");
			else if (x->status == RKV_ERR_NOT_FOUND)
				printf("(missing)");
			else
				printf("(no answer: %s)",
				       rkv_strerror(x->status));
			putchar('\n');
		}
		printf("newest: ");
		if (found) {
			print_cell(r->newest->data, r->newest->len);
			printf("  (");
			print_ts(r->newest_ts);
			printf(")\n");
		} else if (r->newest_ts.hlc || r->newest_ts.node_id) {
			printf("(deleted at ");
			print_ts(r->newest_ts);
			printf(")\n");
		} else {
			printf("(not found)\n");
		}
	}
	rkv_replies_free(r);
	return found ? EXIT_YES : EXIT_NO;
}

static int cmd_get(struct cli *cli, int argc, char **argv)
{
	int all = cli->all, local = cli->local;
	/* At the prompt the flags come as words. */
	for (; argc > 2; argc--, argv++) {
		if (!strcmp(argv[1], "--all"))
			all = 1;
		else if (!strcmp(argv[1], "--local"))
			local = 1;
		else
			return fail("usage: ringkv get [--all|--local] KEY");
	}
	if (all && local)
		return fail("get: --all and --local exclude each other");
	if (connect_once(cli))
		return EXIT_ERR;
	if (all)
		return get_all(cli, argv[1]);
	rkv_value *v;
	int rc = local ? rkv_get_local(cli->client, NULL, argv[1],
				       strlen(argv[1]), &v)
		       : rkv_get(cli->client, argv[1], strlen(argv[1]), &v);
	const char *where = local ? rkv_connected_address(cli->client) : NULL;
	if (rc == RKV_ERR_NOT_FOUND) {
		if (cli->json) {
			printf("{\"ok\":true,\"found\":false,");
			if (where)
				printf("\"local\":true,\"address\":\"%s\",",
				       where);
			json_bytes_field(stdout, "key", (uint8_t *)argv[1],
					 strlen(argv[1]));
			printf("}\n");
		} else if (cli->interactive) {
			printf("(not found)\n");
		}
		return EXIT_NO;
	}
	if (rc)
		return report(cli, rc);
	if (cli->json) {
		printf("{\"ok\":true,\"found\":true,");
		if (where)
			printf("\"local\":true,\"address\":\"%s\",", where);
		json_bytes_field(stdout, "key", (uint8_t *)argv[1],
				 strlen(argv[1]));
		putchar(',');
		json_bytes_field(stdout, "value", v->data, v->len);
		putchar(',');
		json_ts(stdout, v->ts);
		printf("}\n");
	} else {
		fwrite(v->data, 1, v->len, stdout);
		if (!cli->raw)
			putchar('\n');
	}
	rkv_value_free(v);
	return EXIT_YES;
}

/* Reads all of stdin: a value given as "-" or left out. */
static int read_stdin(uint8_t **out, size_t *len)
{
	size_t cap = 4096, n = 0;
	uint8_t *buf = malloc(cap);
	if (!buf)
		return -1;
	for (;;) {
		if (n == cap) {
			if (cap >= STDIN_MAX) {
				free(buf);
				errno = EFBIG;
				return -1;
			}
			cap *= 2;
			uint8_t *nb = realloc(buf, cap);
			if (!nb) {
				free(buf);
				return -1;
			}
			buf = nb;
		}
		size_t r = fread(buf + n, 1, cap - n, stdin);
		n += r;
		if (r == 0) {
			if (ferror(stdin)) {
				free(buf);
				return -1;
			}
			break;
		}
	}
	*out = buf;
	*len = n;
	return 0;
}

static int print_write_ok(struct cli *cli, const char *op, const char *key,
			  rkv_timestamp ts)
{
	if (cli->json) {
		printf("{\"ok\":true,\"op\":\"%s\",", op);
		json_bytes_field(stdout, "key", (const uint8_t *)key,
				 strlen(key));
		putchar(',');
		json_ts(stdout, ts);
		printf("}\n");
	} else {
		printf("OK\n");
	}
	return EXIT_YES;
}

static int cmd_put(struct cli *cli, int argc, char **argv)
{
	uint8_t *val = NULL;
	size_t vlen;
	int from_stdin = argc < 3 || strcmp(argv[2], "-") == 0;
	if (from_stdin) {
		if (read_stdin(&val, &vlen))
			return fail("reading the value from stdin: %s",
				    strerror(errno));
	} else {
		val = (uint8_t *)argv[2];
		vlen = strlen(argv[2]);
	}
	int ret;
	if (connect_once(cli)) {
		ret = EXIT_ERR;
	} else {
		rkv_timestamp ts;
		int rc = rkv_put(cli->client, argv[1], strlen(argv[1]), val,
				 vlen, &ts);
		ret = rc ? report(cli, rc) : print_write_ok(cli, "put", argv[1], ts);
	}
	if (from_stdin)
		free(val);
	return ret;
}

static int cmd_del(struct cli *cli, int argc, char **argv)
{
	(void)argc;
	if (connect_once(cli))
		return EXIT_ERR;
	rkv_timestamp ts;
	int rc = rkv_delete(cli->client, argv[1], strlen(argv[1]), &ts);
	return rc ? report(cli, rc) : print_write_ok(cli, "delete", argv[1], ts);
}

static int cmd_exists(struct cli *cli, int argc, char **argv)
{
	(void)argc;
	if (connect_once(cli))
		return EXIT_ERR;
	int ex;
	int rc = rkv_exists(cli->client, argv[1], strlen(argv[1]), &ex);
	if (rc)
		return report(cli, rc);
	if (cli->json) {
		printf("{\"ok\":true,");
		json_bytes_field(stdout, "key", (uint8_t *)argv[1],
				 strlen(argv[1]));
		printf(",\"exists\":%s}\n", ex ? "true" : "false");
	} else {
		printf("%s\n", ex ? "yes" : "no");
	}
	return ex ? EXIT_YES : EXIT_NO;
}

static int cmd_ping(struct cli *cli, int argc, char **argv)
{
	(void)argc;
	(void)argv;
	if (connect_once(cli))
		return EXIT_ERR;
	uint64_t id;
	int rc = rkv_ping(cli->client, &id);
	if (rc)
		return report(cli, rc);
	if (cli->json)
		printf("{\"ok\":true,\"node\":\"%016" PRIx64
		       "\",\"address\":\"%s\"}\n",
		       id, rkv_connected_address(cli->client));
	else
		printf("PONG from %016" PRIx64 " at %s\n", id,
		       rkv_connected_address(cli->client));
	return EXIT_YES;
}

static int cmd_info(struct cli *cli, int argc, char **argv)
{
	(void)argc;
	(void)argv;
	if (connect_once(cli))
		return EXIT_ERR;
	rkv_cluster_info *ci;
	int rc = rkv_cluster_info_get(cli->client, &ci);
	if (rc)
		return report(cli, rc);
	if (cli->json) {
		printf("{\"ok\":true,\"cluster\":");
		json_str(stdout, (uint8_t *)ci->cluster_name,
			 strlen(ci->cluster_name));
		printf(",\"version\":");
		json_str(stdout, (uint8_t *)ci->version, strlen(ci->version));
		printf(",\"self\":\"%016" PRIx64 "\",\"nodes\":[", ci->self_id);
		for (size_t i = 0; i < ci->n_nodes; i++) {
			rkv_node *n = &ci->nodes[i];
			printf("%s{\"id\":\"%016" PRIx64 "\",\"address\":",
			       i ? "," : "", n->node_id);
			json_str(stdout, (uint8_t *)n->client_address,
				 strlen(n->client_address));
			printf(",\"state\":");
			json_str(stdout, (uint8_t *)n->state, strlen(n->state));
			printf("}");
		}
		printf("]}\n");
	} else {
		printf("cluster %s, ringkvd %s, answered by %016" PRIx64 "\n",
		       ci->cluster_name, ci->version, ci->self_id);
		for (size_t i = 0; i < ci->n_nodes; i++)
			printf("  %016" PRIx64 "  %-22s %s\n",
			       ci->nodes[i].node_id,
			       ci->nodes[i].client_address,
			       ci->nodes[i].state);
	}
	rkv_cluster_info_free(ci);
	return EXIT_YES;
}

/* Every member and its liveness, as the node asked sees them. */
static int cmd_members(struct cli *cli, int argc, char **argv)
{
	(void)argc;
	(void)argv;
	if (connect_once(cli))
		return EXIT_ERR;
	rkv_cluster_info *ci;
	int rc = rkv_cluster_info_get(cli->client, &ci);
	if (rc)
		return report(cli, rc);
	if (cli->json) {
		printf("{\"ok\":true,\"self\":\"%016" PRIx64 "\",\"members\":[",
		       ci->self_id);
		for (size_t i = 0; i < ci->n_nodes; i++) {
			rkv_node *n = &ci->nodes[i];
			printf("%s{\"id\":\"%016" PRIx64 "\",\"state\":",
			       i ? "," : "", n->node_id);
			json_str(stdout, (uint8_t *)n->state, strlen(n->state));
			printf(",\"incarnation\":%" PRIu64 ",\"address\":",
			       n->incarnation);
			json_str(stdout, (uint8_t *)n->client_address,
				 strlen(n->client_address));
			printf(",\"weight\":%u,\"tokens\":%u}", n->weight,
			       n->n_tokens);
		}
		printf("]}\n");
	} else {
		printf("%-16s  %-7s  %11s  %-22s %6s\n", "node", "state",
		       "incarnation", "address", "tokens");
		for (size_t i = 0; i < ci->n_nodes; i++) {
			rkv_node *n = &ci->nodes[i];
			printf("%016" PRIx64 "  %-7s  %11" PRIu64 "  %-22s %6u%s\n",
			       n->node_id, n->state, n->incarnation,
			       n->client_address, n->n_tokens,
			       n->node_id == ci->self_id ? "  (this node)" : "");
		}
	}
	rkv_cluster_info_free(ci);
	return EXIT_YES;
}

/* Each node's share of the key space: the live ring, or a simulated one. */
static int cmd_ring(struct cli *cli, int argc, char **argv)
{
	(void)argc;
	(void)argv;
	char err[256] = "";
	if (cli->simulate) {
		int rc = ring_report_simulate(cli->simulate,
					      cli->vnodes ? cli->vnodes : 256,
					      cli->rf ? cli->rf : 3, cli->json,
					      stdout, err, sizeof(err));
		return rc ? fail("ring --simulate: %s", err) : EXIT_YES;
	}
	if (connect_once(cli))
		return EXIT_ERR;
	rkv_ring_info *ri;
	int rc = rkv_ring_info_get(cli->client, &ri);
	if (rc)
		return report(cli, rc);
	struct ring_member *m = calloc(ri->n_members ? ri->n_members : 1,
				       sizeof(*m));
	struct ring *r = NULL;
	int rf = cli->rf ? cli->rf : (int)ri->replication_factor;
	if (!m) {
		rc = RKV_ERR_NOMEM;
	} else {
		for (size_t i = 0; i < ri->n_members; i++)
			m[i] = (struct ring_member){
				.node_id = ri->members[i].node_id,
				.weight = ri->members[i].weight,
				.tokens = ri->members[i].tokens,
				.n_tokens = ri->members[i].n_tokens};
		struct ring_config rcfg = {.epoch = ri->epoch,
					   .rf_max = (uint32_t)rf};
		rc = ring_new(m, ri->n_members, &rcfg, &r);
	}
	if (!rc && ring_checksum(r) != ri->checksum)
		fprintf(stderr, "ringkv: warning: the ring built here has "
				"checksum %016llx, the node reports %016llx\n",
			(unsigned long long)ring_checksum(r),
			(unsigned long long)ri->checksum);
	if (!rc)
		rc = ring_report_print(r, rf, cli->json, stdout);
	ring_free(r);
	free(m);
	rkv_ring_info_free(ri);
	return rc ? fail("ring: %s", rk_strerror(rc)) : EXIT_YES;
}

/* "12.3 KiB" */
static void human_bytes(char *buf, size_t n, uint64_t v)
{
	static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	double x = (double)v;
	int u = 0;
	while (x >= 1024 && u < 4) {
		x /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, n, "%" PRIu64 " B", v);
	else
		snprintf(buf, n, "%.1f %s", x, units[u]);
}

/* The ring a RingInfo describes, and each member's share of the key space
 * counting all rf replicas (as `ringkv ring` prints it): *share[i] for
 * ring member i, found with ring_member_find.  Returns 0 or an error; *r
 * and *share are the caller's. */
static int ring_of(const rkv_ring_info *ri, struct ring **r, double **share)
{
	*r = NULL;
	*share = NULL;
	struct ring_member *m = calloc(ri->n_members ? ri->n_members : 1,
				       sizeof(*m));
	if (!m)
		return RK_ENOMEM;
	size_t k = 0;
	for (size_t i = 0; i < ri->n_members; i++)
		if (ri->members[i].n_tokens)
			m[k++] = (struct ring_member){
				.node_id = ri->members[i].node_id,
				.weight = ri->members[i].weight
						  ? ri->members[i].weight
						  : 1,
				.tokens = ri->members[i].tokens,
				.n_tokens = ri->members[i].n_tokens};
	uint32_t rf = ri->replication_factor ? ri->replication_factor : 3;
	if (rf > RING_RF_MAX)
		rf = RING_RF_MAX;
	struct ring_config cfg = {.epoch = ri->epoch, .rf_max = rf};
	int rc = ring_new(m, k, &cfg, r);
	free(m);
	if (rc)
		return rc;
	*share = calloc(k ? k : 1, sizeof(**share));
	if (!*share)
		return RK_ENOMEM;
	return k ? ring_shares(*r, rf, *share, NULL) : 0;
}

/* One row of `status`. */
struct status_row {
	uint64_t id;
	const char *address;
	const char *state;     /* gossip, as the contacted node sees it */
	uint64_t incarnation;
	uint32_t tokens;
	double owns;           /* < 0: unknown */
	int reachable;
	rkv_node_stats st;
};

static char state_letter(const char *state)
{
	if (!strcmp(state, "alive"))
		return 'U';
	if (!strcmp(state, "suspect"))
		return 'S';
	return 'D';
}

static char ring_letter(const struct status_row *w)
{
	if (!w->reachable)
		return '?';
	const char *s = w->st.ring_status;
	if (!strcmp(s, "normal"))
		return 'N';
	if (!strcmp(s, "joining"))
		return 'J';
	if (!strcmp(s, "leaving"))
		return 'L';
	if (!strcmp(s, "left"))
		return 'X';
	return '-';
}

/* Every member (ClusterInfo), its gossip state, what it holds and owes
 * (its own NodeStats, asked at its address) and its share of the ring:
 * Cassandra's `nodetool status`. */
static int cmd_status(struct cli *cli, int argc, char **argv)
{
	(void)argc;
	(void)argv;
	if (connect_once(cli))
		return EXIT_ERR;
	rkv_cluster_info *ci;
	int rc = rkv_cluster_info_get(cli->client, &ci);
	if (rc)
		return report(cli, rc);
	rkv_ring_info *ri = NULL;
	struct ring *r = NULL;
	double *share = NULL;
	uint32_t rf = 0;
	if (rkv_ring_info_get(cli->client, &ri) == RKV_OK) {
		rf = ri->replication_factor;
		if (ring_of(ri, &r, &share)) {
			ring_free(r);
			r = NULL;
		}
	}
	size_t n = ci->n_nodes;
	/* Ring members gossip does not list (yet) get a row too. */
	for (size_t i = 0; ri && i < ri->n_members; i++) {
		size_t k = 0;
		while (k < ci->n_nodes &&
		       ci->nodes[k].node_id != ri->members[i].node_id)
			k++;
		n += k == ci->n_nodes;
	}
	struct status_row *rows = calloc(n ? n : 1, sizeof(*rows));
	if (!rows) {
		rkv_cluster_info_free(ci);
		rkv_ring_info_free(ri);
		ring_free(r);
		free(share);
		return fail("out of memory");
	}
	size_t nr = 0;
	for (size_t i = 0; i < ci->n_nodes; i++)
		rows[nr++] = (struct status_row){
			.id = ci->nodes[i].node_id,
			.address = ci->nodes[i].client_address,
			.state = ci->nodes[i].state,
			.incarnation = ci->nodes[i].incarnation,
			.tokens = ci->nodes[i].n_tokens};
	for (size_t i = 0; ri && i < ri->n_members; i++) {
		size_t k = 0;
		while (k < ci->n_nodes &&
		       ci->nodes[k].node_id != ri->members[i].node_id)
			k++;
		if (k == ci->n_nodes)
			rows[nr++] = (struct status_row){
				.id = ri->members[i].node_id,
				.address = ri->members[i].client_address,
				.state = ri->members[i].state,
				.tokens = (uint32_t)ri->members[i].n_tokens};
	}
	for (size_t i = 0; i < nr; i++) {
		struct status_row *w = &rows[i];
		size_t mi;
		w->owns = -1;
		if (r && ring_member_find(r, w->id, &mi) == 0)
			w->owns = share[mi];
		else if (r)
			w->owns = 0;
		w->reachable = w->address[0] &&
			       rkv_node_stats_get(cli->client, w->address,
						  &w->st) == RKV_OK;
	}
	if (cli->json) {
		printf("{\"ok\":true,\"cluster\":");
		json_str(stdout, (uint8_t *)ci->cluster_name,
			 strlen(ci->cluster_name));
		printf(",\"self\":\"%016" PRIx64 "\",\"rf\":%u", ci->self_id,
		       rf);
		if (ri)
			printf(",\"ring_epoch\":%" PRIu64
			       ",\"ring_checksum\":\"%016" PRIx64 "\"",
			       ri->epoch, ri->checksum);
		printf(",\"nodes\":[");
		for (size_t i = 0; i < nr; i++) {
			const struct status_row *w = &rows[i];
			printf("%s{\"id\":\"%016" PRIx64 "\",\"address\":",
			       i ? "," : "", w->id);
			json_str(stdout, (const uint8_t *)w->address,
				 strlen(w->address));
			printf(",\"state\":");
			json_str(stdout, (const uint8_t *)w->state,
				 strlen(w->state));
			printf(",\"incarnation\":%" PRIu64 ",\"tokens\":%u,",
			       w->incarnation, w->tokens);
			if (w->owns >= 0)
				printf("\"owns\":%.6f,", w->owns);
			else
				printf("\"owns\":null,");
			printf("\"reachable\":%s", w->reachable ? "true" : "false");
			if (w->reachable) {
				printf(",\"ring_status\":");
				json_str(stdout,
					 (const uint8_t *)w->st.ring_status,
					 strlen(w->st.ring_status));
				printf(",\"keys\":%" PRIu64
				       ",\"tombstones\":%" PRIu64
				       ",\"bytes\":%" PRIu64
				       ",\"log_bytes\":%" PRIu64
				       ",\"hints_pending\":%" PRIu64
				       ",\"uptime_ms\":%" PRIu64,
				       w->st.keys, w->st.tombstones,
				       w->st.bytes, w->st.log_bytes,
				       w->st.hints_pending, w->st.uptime_ms);
			} else {
				printf(",\"ring_status\":null,\"keys\":null,"
				       "\"tombstones\":null,\"bytes\":null,"
				       "\"log_bytes\":null,"
				       "\"hints_pending\":null,"
				       "\"uptime_ms\":null");
			}
			printf("}");
		}
		printf("]}\n");
	} else {
		printf("cluster %s: %zu nodes, rf %u", ci->cluster_name, nr,
		       rf);
		if (ri)
			printf(", ring epoch %" PRIu64 " checksum %016" PRIx64,
			       ri->epoch, ri->checksum);
		printf(" (gossip as %016" PRIx64 " sees it)\n", ci->self_id);
		printf("Status=U(p)/S(uspect)/D(own)  State=N(ormal)/"
		       "J(oining)/L(eaving)/X(left)/-(no tokens)/?(unreachable)\n");
		printf("--  %-16s  %-21s  %-7s  %-9s  %10s  %10s  %7s  %7s\n",
		       "node", "address", "state", "ring", "keys", "bytes",
		       "owns", "hints");
		for (size_t i = 0; i < nr; i++) {
			const struct status_row *w = &rows[i];
			char keys[24] = "?", bytes[24] = "?", hints[24] = "?",
			     owns[16] = "?";
			if (w->reachable) {
				snprintf(keys, sizeof(keys), "%" PRIu64,
					 w->st.keys);
				human_bytes(bytes, sizeof(bytes), w->st.bytes);
				snprintf(hints, sizeof(hints), "%" PRIu64,
					 w->st.hints_pending);
			}
			if (w->owns >= 0)
				snprintf(owns, sizeof(owns), "%.1f%%",
					 w->owns * 100);
			printf("%c%c  %016" PRIx64 "  %-21s  %-7s  %-9s  %10s  "
			       "%10s  %7s  %7s\n",
			       state_letter(w->state), ring_letter(w), w->id,
			       w->address[0] ? w->address : "-", w->state,
			       w->reachable ? w->st.ring_status : "?", keys,
			       bytes, owns, hints);
		}
	}
	free(rows);
	rkv_cluster_info_free(ci);
	rkv_ring_info_free(ri);
	ring_free(r);
	free(share);
	return EXIT_YES;
}

/* The timeout of a ring change: --timeout when given, else the library's
 * long default. */
static int admin_timeout(const struct cli *cli)
{
	return cli->timeout_set ? cli->opts.request_timeout_ms : 0;
}

static int cmd_decommission(struct cli *cli, int argc, char **argv)
{
	(void)argc;
	(void)argv;
	if (strchr(cli->seeds, ','))
		return fail("decommission: name the one node to decommission "
			    "with -s HOST:PORT (given: %s)",
			    cli->seeds);
	if (connect_once(cli))
		return EXIT_ERR;
	uint64_t id;
	int rc = rkv_ping(cli->client, &id);
	if (rc)
		return report(cli, rc);
	if (!cli->json)
		fprintf(stderr,
			"ringkv: decommissioning node %016" PRIx64 " at %s: "
			"its ranges stream to their new owners, then it "
			"leaves; this can take minutes...\n",
			id, cli->seeds);
	rc = rkv_decommission(cli->client, NULL, admin_timeout(cli));
	if (rc)
		return report(cli, rc);
	if (cli->json)
		printf("{\"ok\":true,\"op\":\"decommission\",\"node\":\"%016" PRIx64
		       "\",\"address\":\"%s\"}\n",
		       id, cli->seeds);
	else
		printf("node %016" PRIx64 " (%s) has left the ring\n", id,
		       cli->seeds);
	return EXIT_YES;
}

static int cmd_removenode(struct cli *cli, int argc, char **argv)
{
	(void)argc;
	const char *s = argv[1];
	if (!strncasecmp(s, "0x", 2))
		s += 2;
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 16);
	if (!*s || *end || errno || v == 0 || strlen(s) > 16 || *s == '-' ||
	    *s == '+')
		return fail("removenode: '%s' is not a node id (up to 16 hex "
			    "digits, as `ringkv status` shows them)",
			    argv[1]);
	uint64_t id = (uint64_t)v;
	if (connect_once(cli))
		return EXIT_ERR;
	if (!cli->json)
		fprintf(stderr,
			"ringkv: removing node %016" PRIx64 " from the ring: "
			"its ranges are copied again from the surviving "
			"replicas; this can take minutes...\n",
			id);
	int rc = rkv_remove_node(cli->client, id, admin_timeout(cli));
	if (rc)
		return report(cli, rc);
	if (cli->json)
		printf("{\"ok\":true,\"op\":\"removenode\",\"node\":\"%016" PRIx64
		       "\"}\n",
		       id);
	else
		printf("node %016" PRIx64 " removed from the ring\n", id);
	return EXIT_YES;
}

/* Checks recorded histories for linearizability (tools/lincheck). */
static int cmd_lincheck(struct cli *cli, int argc, char **argv)
{
	char **av = calloc((size_t)argc + 4, sizeof(*av));
	if (!av)
		return fail("out of memory");
	int n = 0;
	av[n++] = "ringkv lincheck";
	if (cli->json)
		av[n++] = "--json";
	if (cli->max_states) {
		av[n++] = "--max-states";
		av[n++] = (char *)cli->max_states;
	}
	for (int i = 1; i < argc; i++)
		av[n++] = argv[i];
	int rc = lincheck_main(n, av);
	free(av);
	return rc;
}

/* ------------------------------------------------------------------ */
/* counters                                                            */

static int parse_i64(const char *s, int64_t *out)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno || end == s || *end)
		return -1;
	*out = v;
	return 0;
}

static int parse_op_id(const char *s, rkv_op_id *id)
{
	if (strlen(s) != 2 * sizeof(id->b))
		return -1;
	for (size_t i = 0; i < sizeof(id->b); i++) {
		unsigned v;
		if (sscanf(s + 2 * i, "%2x", &v) != 1 ||
		    !strchr("0123456789abcdefABCDEF", s[2 * i]) ||
		    !strchr("0123456789abcdefABCDEF", s[2 * i + 1]))
			return -1;
		id->b[i] = (uint8_t)v;
	}
	return 0;
}

static void print_op_id(FILE *out, const rkv_op_id *id)
{
	for (size_t i = 0; i < sizeof(id->b); i++)
		fprintf(out, "%02x", id->b[i]);
}

/* incr KEY [DELTA] and decr KEY [DELTA]: one add, retried with the same
 * op id while its outcome is unknown (as rkv_counter_add does); --op-id
 * repeats an earlier add, which is then counted at most once. */
static int counter_add_cmd(struct cli *cli, int argc, char **argv, int sign)
{
	int64_t delta = 1;
	if (argc > 2 &&
	    (parse_i64(argv[2], &delta) || (sign < 0 && delta == INT64_MIN)))
		return fail("%s: '%s' is not a whole number (64-bit)", argv[0],
			    argv[2]);
	delta *= sign;
	rkv_op_id id;
	memset(&id, 0, sizeof(id));
	if (cli->op_id && parse_op_id(cli->op_id, &id))
		return fail("--op-id: '%s' is not 32 hex digits", cli->op_id);
	if (!cli->op_id)
		rkv_op_id_new(&id);
	if (connect_once(cli))
		return EXIT_ERR;
	rkv_counter_add_result res;
	int rc = RKV_OK;
	for (int attempt = 0; attempt < RKV_COUNTER_ATTEMPTS; attempt++) {
		if (attempt)
			usleep(50000u << (attempt - 1));
		rc = rkv_counter_add_ex(cli->client, argv[1], strlen(argv[1]),
					delta, NULL, &id, &res);
		if (rc != RKV_ERR_TIMEOUT && rc != RKV_ERR_CLOSED &&
		    rc != RKV_ERR_UNAVAILABLE && rc != RKV_ERR_SHUTTING_DOWN &&
		    rc != RKV_ERR_CONNECT)
			break;
	}
	if (rc) {
		if (rc != RKV_ERR_WRONG_TYPE && rc != RKV_ERR_BAD_REQUEST &&
		    rc != RKV_ERR_EMPTY_KEY && rc != RKV_ERR_KEY_TOO_LARGE) {
			fprintf(stderr,
				"ringkv: the add may or may not have "
				"been applied; repeat it with --op-id ");
			print_op_id(stderr, &id);
			fputc('\n', stderr);
		}
		return report(cli, rc);
	}
	if (cli->json) {
		printf("{\"ok\":true,\"op\":\"%s\",", argv[0]);
		json_bytes_field(stdout, "key", (const uint8_t *)argv[1],
				 strlen(argv[1]));
		printf(",\"delta\":%" PRId64 ",\"value\":%" PRId64
		       ",\"duplicate\":%s,\"owner\":\"%016" PRIx64
		       "\",\"op_id\":\"",
		       delta, res.value, res.duplicate ? "true" : "false",
		       res.owner);
		print_op_id(stdout, &id);
		printf("\"}\n");
	} else {
		printf("%" PRId64 "\n", res.value);
	}
	return EXIT_YES;
}

static int cmd_incr(struct cli *cli, int argc, char **argv)
{
	return counter_add_cmd(cli, argc, argv, 1);
}

static int cmd_decr(struct cli *cli, int argc, char **argv)
{
	return counter_add_cmd(cli, argc, argv, -1);
}

/* counter --all KEY: every replica's value, and the merge. */
static int counter_all(struct cli *cli, const char *key)
{
	rkv_counter_replies *r;
	int rc = rkv_counter_get_all(cli->client, key, strlen(key), NULL, &r);
	if (rc && rc != RKV_ERR_NOT_FOUND) {
		rkv_counter_replies_free(r);
		return report(cli, rc);
	}
	if (cli->json) {
		printf("{\"ok\":true,\"found\":%s,",
		       rc == RKV_OK ? "true" : "false");
		json_bytes_field(stdout, "key", (const uint8_t *)key,
				 strlen(key));
		printf(",\"value\":%" PRId64 ",\"replies\":[", r->value);
		for (size_t i = 0; i < r->n_replies; i++) {
			const rkv_counter_reply *x = &r->replies[i];
			printf("%s{\"node\":\"%016" PRIx64
			       "\",\"status\":\"%s\"",
			       i ? "," : "", x->node_id, rk_errname(x->status));
			if (x->status == RKV_OK)
				printf(",\"value\":%" PRId64, x->value);
			printf("}");
		}
		printf("]}\n");
	} else {
		printf("%-16s  %-11s  %s\n", "replica", "status", "value");
		for (size_t i = 0; i < r->n_replies; i++) {
			const rkv_counter_reply *x = &r->replies[i];
			printf("%016" PRIx64 "  %-11s  ", x->node_id,
			       rk_errname(x->status));
			if (x->status == RKV_OK)
				printf("%" PRId64 "\n", x->value);
			else if (x->status == RKV_ERR_NOT_FOUND)
				printf("(none)\n");
			else
				printf("(no answer: %s)\n",
				       rkv_strerror(x->status));
		}
		if (rc == RKV_OK)
			printf("merged: %" PRId64 "\n", r->value);
		else
			printf("merged: (not found)\n");
	}
	rkv_counter_replies_free(r);
	return rc == RKV_OK ? EXIT_YES : EXIT_NO;
}

static int cmd_counter(struct cli *cli, int argc, char **argv)
{
	int all = cli->all, local = cli->local;
	for (; argc > 2; argc--, argv++) {
		if (!strcmp(argv[1], "--all"))
			all = 1;
		else if (!strcmp(argv[1], "--local"))
			local = 1;
		else
			return fail(
			    "usage: ringkv counter [--all|--local] KEY");
	}
	if (all && local)
		return fail("counter: --all and --local exclude each other");
	if (connect_once(cli))
		return EXIT_ERR;
	if (all)
		return counter_all(cli, argv[1]);
	int64_t v;
	int rc =
	    local ? rkv_counter_get_local(cli->client, NULL, argv[1],
					  strlen(argv[1]), &v)
		  : rkv_counter_get(cli->client, argv[1], strlen(argv[1]), &v);
	if (rc && rc != RKV_ERR_NOT_FOUND)
		return report(cli, rc);
	if (cli->json) {
		printf("{\"ok\":true,\"found\":%s,",
		       rc == RKV_OK ? "true" : "false");
		if (local)
			printf("\"local\":true,\"address\":\"%s\",",
			       rkv_connected_address(cli->client));
		json_bytes_field(stdout, "key", (const uint8_t *)argv[1],
				 strlen(argv[1]));
		printf(",\"value\":%" PRId64 "}\n", v);
	} else if (rc == RKV_OK) {
		printf("%" PRId64 "\n", v);
	} else if (cli->interactive) {
		printf("(not found)\n");
	}
	return rc == RKV_OK ? EXIT_YES : EXIT_NO;
}

static int cmd_counter_delete(struct cli *cli, int argc, char **argv)
{
	(void)argc;
	if (connect_once(cli))
		return EXIT_ERR;
	int rc = rkv_counter_delete(cli->client, argv[1], strlen(argv[1]));
	if (rc)
		return report(cli, rc);
	if (cli->json) {
		printf("{\"ok\":true,\"op\":\"counter-delete\",");
		json_bytes_field(stdout, "key", (const uint8_t *)argv[1],
				 strlen(argv[1]));
		printf("}\n");
	} else {
		printf("OK\n");
	}
	return EXIT_YES;
}

/* Prints a compare-and-set's outcome; exit 0 when applied, 1 when not
 * (the current value is printed). */
static int print_cas(struct cli *cli, const char *op, const char *key,
		     int applied, const rkv_value *cur)
{
	if (cli->json) {
		printf("{\"ok\":true,\"op\":\"%s\",", op);
		json_bytes_field(stdout, "key", (const uint8_t *)key,
				 strlen(key));
		printf(",\"applied\":%s,\"exists\":%s",
		       applied ? "true" : "false", cur ? "true" : "false");
		if (cur) {
			putchar(',');
			json_bytes_field(stdout, "value", cur->data, cur->len);
			putchar(',');
			json_ts(stdout, cur->ts);
		}
		printf("}\n");
	} else if (applied) {
		printf("OK\n");
	} else if (cur) {
		fwrite(cur->data, 1, cur->len, stdout);
		if (!cli->raw)
			putchar('\n');
	} else {
		/* Nothing on stdout: an empty line would be the empty value. */
		fprintf(cli->interactive ? stdout : stderr, "(no value)\n");
	}
	return applied ? EXIT_YES : EXIT_NO;
}

/* cas [--absent] KEY EXPECTED NEW, or cas --absent KEY NEW. */
static int cmd_cas(struct cli *cli, int argc, char **argv)
{
	int absent = cli->absent;
	/* At the prompt the flag comes as a word. */
	char *args[3];
	int n = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--absent"))
			absent = 1;
		else if (n < 3)
			args[n++] = argv[i];
		else
			n = 4;
	}
	if (n != (absent ? 2 : 3))
		return fail("usage: ringkv cas KEY EXPECTED NEW | ringkv cas "
			    "--absent KEY NEW");
	const char *key = args[0];
	const char *exp = absent ? NULL : args[1];
	const char *nv = args[absent ? 1 : 2];
	if (connect_once(cli))
		return EXIT_ERR;
	int applied;
	rkv_value *cur;
	int rc = rkv_cas(cli->client, key, strlen(key), exp,
			 exp ? strlen(exp) : 0, nv, strlen(nv), &applied, &cur);
	if (rc)
		return report(cli, rc);
	int ret = print_cas(cli, "cas", key, applied, cur);
	rkv_value_free(cur);
	return ret;
}

static int cmd_put_if_absent(struct cli *cli, int argc, char **argv)
{
	(void)argc;
	if (connect_once(cli))
		return EXIT_ERR;
	int applied;
	rkv_value *cur;
	int rc = rkv_put_if_absent(cli->client, argv[1], strlen(argv[1]),
				   argv[2], strlen(argv[2]), &applied, &cur);
	if (rc)
		return report(cli, rc);
	int ret = print_cas(cli, "put-if-absent", argv[1], applied, cur);
	rkv_value_free(cur);
	return ret;
}

static int cmd_delete_if(struct cli *cli, int argc, char **argv)
{
	(void)argc;
	if (connect_once(cli))
		return EXIT_ERR;
	int applied;
	rkv_value *cur;
	int rc = rkv_delete_if(cli->client, argv[1], strlen(argv[1]), argv[2],
			       strlen(argv[2]), &applied, &cur);
	if (rc)
		return report(cli, rc);
	int ret = print_cas(cli, "delete-if", argv[1], applied, cur);
	rkv_value_free(cur);
	return ret;
}

static int cmd_help(struct cli *cli, int argc, char **argv);

static const struct command commands[] = {
	{"get", "[--all|--local] KEY",
	 "print the value of KEY (exit 1 if absent); --all: every replica's "
	 "answer and the newest; --local: only the contacted node's copy",
	 cmd_get, 1, 3},
	{"put", "KEY [VALUE|-]", "set KEY; the value comes from stdin when "
				 "omitted or '-'",
	 cmd_put, 1, 2},
	{"del", "KEY", "delete KEY", cmd_del, 1, 1},
	{"delete", "KEY", "same as del", cmd_del, 1, 1},
	{"exists", "KEY", "exit 0 if KEY holds a value, else 1", cmd_exists,
	 1, 1},
	{"ping", "", "round trip to the node", cmd_ping, 0, 0},
	{"info", "", "the cluster as the node sees it", cmd_info, 0, 0},
	{"members", "", "every member, its state, incarnation and address",
	 cmd_members, 0, 0},
	{"status", "", "every node: state, load, ownership, pending hints",
	 cmd_status, 0, 0},
	{"decommission", "", "the node named by -s streams its data away and "
			     "leaves (waits)",
	 cmd_decommission, 0, 0},
	{"removenode", "ID", "take a dead node off the ring, re-copying its "
			     "data (waits)",
	 cmd_removenode, 1, 1},
	{"ring", "[--simulate N] [--vnodes V] [--rf R]",
	 "each node's share of the key space (live, or N simulated nodes)",
	 cmd_ring, 0, 0},
	{"lincheck", "[--max-states N] FILE...",
	 "check recorded histories for linearizability (exit 0 yes, 1 no, "
	 "2 unreadable, 3 undecided)",
	 cmd_lincheck, 1, 100000},
	{"cas", "[--absent] KEY [EXPECTED] NEW",
	 "set KEY to NEW if its value is EXPECTED (--absent: if it has "
	 "none), through Paxos; exit 0 applied, 1 not (prints the current "
	 "value)",
	 cmd_cas, 2, 4},
	{"put-if-absent", "KEY VALUE",
	 "set KEY if it has no value; exit 0 applied, 1 not (prints it)",
	 cmd_put_if_absent, 2, 2},
	{"delete-if", "KEY EXPECTED",
	 "delete KEY if its value is EXPECTED; exit 0 deleted, 1 not",
	 cmd_delete_if, 2, 2},
	{"incr", "KEY [DELTA]",
	 "add DELTA (default 1) to the counter KEY, exactly once; prints "
	 "the value at its owner; --op-id repeats an earlier add",
	 cmd_incr, 1, 2},
	{"decr", "KEY [DELTA]", "subtract DELTA (default 1), as incr",
	 cmd_decr, 1, 2},
	{"counter", "[--all|--local] KEY",
	 "print the counter's value (exit 1 if absent); --all: every "
	 "replica's value and the merge; --local: the contacted node's",
	 cmd_counter, 1, 3},
	{"counter-delete", "KEY", "delete the counter KEY (it restarts at 0)",
	 cmd_counter_delete, 1, 1},
	{"help", "", "this list", cmd_help, 0, 0},
};

#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: ringkv [OPTIONS] COMMAND [ARGS]\n"
		"       ringkv [OPTIONS]            (interactive prompt)\n"
		"\n"
		"Options (before or after the command; '--' ends them):\n"
		"  -s, --seeds HOST:PORT[,...]   nodes to contact (default "
		"$RINGKV_SEEDS or %s)\n"
		"  -j, --json                    machine-readable output\n"
		"      --raw                     get: print the value without "
		"a newline\n"
		"  -c, --consistency LEVEL       one | quorum | all | serial\n"
		"  -t, --timeout MS              request timeout (default 5000;\n"
		"                                decommission, removenode: 6 h)\n"
		"      --smart on|off            route each key to its replicas\n"
		"                                (default on)\n"
		"      --all, --local            get, counter: every replica /\n"
		"                                one node\n"
		"      --absent                  cas: the key must have no value\n"
		"      --op-id HEX               incr, decr: the op id of an\n"
		"                                earlier add to repeat (32 hex\n"
		"                                digits, as printed by --json)\n"
		"  -h, --help                    this help\n"
		"  -V, --version                 print the version\n"
		"\n"
		"Commands:\n",
		DEFAULT_SEEDS);
	for (size_t i = 0; i < N_COMMANDS; i++)
		if (commands[i].help)
			fprintf(out, "  %-12s %-20s %s\n", commands[i].name,
				commands[i].args, commands[i].help);
	fprintf(out, "\nExit status: 0 success, 1 not found / does not "
		     "exist / condition false, 2 error (for cas: CONTENTION_TIMEOUT\n"
		     "and TIMEOUT mean the outcome is unknown).\n");
}

static int cmd_help(struct cli *cli, int argc, char **argv)
{
	(void)cli;
	(void)argc;
	(void)argv;
	usage(stdout);
	return EXIT_YES;
}

static int run_command(struct cli *cli, int argc, char **argv)
{
	for (size_t i = 0; i < N_COMMANDS; i++) {
		const struct command *c = &commands[i];
		if (strcmp(c->name, argv[0]) != 0)
			continue;
		int n = argc - 1;
		if (n < c->min_args || n > c->max_args)
			return fail("usage: ringkv %s %s", c->name,
				    c->args ? c->args : "");
		return c->fn(cli, argc, argv);
	}
	return fail("unknown command '%s' (try 'ringkv help')", argv[0]);
}

/* Splits a prompt line like a shell would for quotes and backslashes.
 * Returns argc, or -1 on an unterminated quote.  Words point into buf. */
static int split_line(char *line, char **argv, int max)
{
	int argc = 0;
	char *r = line, *w = line;
	for (;;) {
		while (*r == ' ' || *r == '\t' || *r == '\n' || *r == '\r')
			r++;
		if (!*r)
			break;
		if (argc == max)
			return -1;
		argv[argc++] = w;
		char quote = 0;
		while (*r) {
			if (quote) {
				if (*r == quote) {
					quote = 0;
					r++;
				} else if (*r == '\\' && quote == '"' && r[1]) {
					*w++ = r[1];
					r += 2;
				} else {
					*w++ = *r++;
				}
			} else if (*r == '\'' || *r == '"') {
				quote = *r++;
			} else if (*r == '\\' && r[1]) {
				*w++ = r[1];
				r += 2;
			} else if (*r == ' ' || *r == '\t' || *r == '\n' ||
				   *r == '\r') {
				break;
			} else {
				*w++ = *r++;
			}
		}
		if (quote)
			return -1;
		/* The write head never passes the read head, so ending the
		 * word in place is safe. */
		int end = *r != 0;
		*w++ = 0;
		if (end)
			r++;
	}
	return argc;
}

static int interactive(struct cli *cli)
{
	int tty = isatty(STDIN_FILENO);
	char *line = NULL;
	size_t cap = 0;
	cli->interactive = 1;
	if (tty)
		printf("ringkv %s connected to %s; 'help' lists commands, "
		       "'quit' leaves\n",
		       RINGKV_VERSION, cli->seeds);
	for (;;) {
		if (tty) {
			printf("ringkv> ");
			fflush(stdout);
		}
		ssize_t n = getline(&line, &cap, stdin);
		if (n < 0)
			break;
		char *argv[64];
		int argc = split_line(line, argv, 64);
		if (argc < 0) {
			fail("unterminated quote or too many words");
			continue;
		}
		if (argc == 0)
			continue;
		if (!strcmp(argv[0], "quit") || !strcmp(argv[0], "exit"))
			break;
		if (!strcmp(argv[0], "put") && argc < 3) {
			fail("usage at the prompt: put KEY VALUE");
			continue;
		}
		/* Each command reports its own outcome; the prompt itself
		 * ends with success, as a shell session does. */
		run_command(cli, argc, argv);
		fflush(stdout);
	}
	free(line);
	if (tty)
		putchar('\n');
	return EXIT_YES;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"seeds", required_argument, NULL, 's'},
		{"json", no_argument, NULL, 'j'},
		{"raw", no_argument, NULL, 'r'},
		{"consistency", required_argument, NULL, 'c'},
		{"timeout", required_argument, NULL, 't'},
		{"simulate", required_argument, NULL, 'S'},
		{"vnodes", required_argument, NULL, 'v'},
		{"rf", required_argument, NULL, 'R'},
		{"max-states", required_argument, NULL, 'M'},
		{"smart", required_argument, NULL, 'm'},
		{"all", no_argument, NULL, 'A'},
		{"local", no_argument, NULL, 'L'},
		{"absent", no_argument, NULL, 'B'},
		{"op-id", required_argument, NULL, 'O'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	struct cli cli = {0};
	rkv_options_init(&cli.opts);
	cli.seeds = getenv("RINGKV_SEEDS");
	if (!cli.seeds || !*cli.seeds)
		cli.seeds = DEFAULT_SEEDS;
	int c;
	while ((c = getopt_long(argc, argv, "s:jc:t:hV", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			cli.seeds = optarg;
			break;
		case 'j':
			cli.json = 1;
			break;
		case 'r':
			cli.raw = 1;
			break;
		case 'c': {
			static const char *const names[] = {"one", "quorum",
							    "all", "serial"};
			int lv = -1;
			for (int i = 0; i < 4; i++)
				if (!strcasecmp(optarg, names[i]))
					lv = i + 1;
			if (lv < 0)
				return fail("--consistency: '%s' is not one, "
					    "quorum, all or serial",
					    optarg);
			cli.opts.read_consistency = (rkv_consistency)lv;
			cli.opts.write_consistency = (rkv_consistency)lv;
			break;
		}
		case 't': {
			char *end;
			long v = strtol(optarg, &end, 10);
			if (*end || v <= 0 || v > 3600000)
				return fail("--timeout: '%s' is not a number "
					    "of milliseconds",
					    optarg);
			cli.opts.request_timeout_ms = (int)v;
			cli.timeout_set = 1;
			break;
		}
		case 'm':
			if (!strcasecmp(optarg, "on"))
				cli.opts.smart = 1;
			else if (!strcasecmp(optarg, "off"))
				cli.opts.smart = 0;
			else
				return fail("--smart: '%s' is not on or off",
					    optarg);
			break;
		case 'A':
			cli.all = 1;
			break;
		case 'L':
			cli.local = 1;
			break;
		case 'O':
			cli.op_id = optarg;
			break;
		case 'B':
			cli.absent = 1;
			break;
		case 'M':
			cli.max_states = optarg;
			break;
		case 'S':
		case 'v':
		case 'R': {
			char *end;
			long v = strtol(optarg, &end, 10);
			if (*end || v <= 0 || v > 100000)
				return fail("--%s: '%s' is not a positive number",
					    c == 'S' ? "simulate" : c == 'v' ? "vnodes" : "rf",
					    optarg);
			*(c == 'S' ? &cli.simulate : c == 'v' ? &cli.vnodes : &cli.rf) = (int)v;
			break;
		}
		case 'h':
			usage(stdout);
			return EXIT_YES;
		case 'V':
			printf("ringkv %s\n", RINGKV_VERSION);
			return EXIT_YES;
		default:
			fprintf(stderr, "Try 'ringkv --help'.\n");
			return EXIT_ERR;
		}
	}
	int ret = optind < argc ? run_command(&cli, argc - optind, argv + optind)
				: interactive(&cli);
	rkv_close(cli.client);
	return ret;
}
