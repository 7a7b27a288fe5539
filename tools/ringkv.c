/* ringkv: the command-line client.
 *
 *   ringkv [-s HOST:PORT[,HOST:PORT...]] [--json] COMMAND [ARGS]
 *
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
	static const char tb[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	fputc('"', out);
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16;
		if (i + 1 < n)
			v |= (uint32_t)p[i + 1] << 8;
		if (i + 2 < n)
			v |= p[i + 2];
		fputc(tb[(v >> 18) & 63], out);
		fputc(tb[(v >> 12) & 63], out);
		fputc(i + 1 < n ? tb[(v >> 6) & 63] : '=', out);
		fputc(i + 2 < n ? tb[v & 63] : '=', out);
	}
	fputc('"', out);
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

static int cmd_get(struct cli *cli, int argc, char **argv)
{
	(void)argc;
	if (connect_once(cli))
		return EXIT_ERR;
	rkv_value *v;
	int rc = rkv_get(cli->client, argv[1], strlen(argv[1]), &v);
	if (rc == RKV_ERR_NOT_FOUND) {
		if (cli->json) {
			printf("{\"ok\":true,\"found\":false,");
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

/* Commands of later releases say so plainly instead of pretending. */
static int cmd_later(struct cli *cli, int argc, char **argv)
{
	(void)cli;
	(void)argc;
	return fail("'%s' is not built in this version of ringkv yet (see "
		    "README: Status)",
		    argv[0]);
}

static int cmd_help(struct cli *cli, int argc, char **argv);

static const struct command commands[] = {
	{"get", "KEY", "print the value of KEY (exit 1 if absent)", cmd_get,
	 1, 1},
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
	{"ring", "[--simulate N] [--vnodes V] [--rf R]",
	 "each node's share of the key space (live, or N simulated nodes)",
	 cmd_ring, 0, 0},
	{"lincheck", "[--max-states N] FILE...",
	 "check recorded histories for linearizability (exit 0 yes, 1 no, "
	 "2 unreadable, 3 undecided)",
	 cmd_lincheck, 1, 100000},
	{"help", "", "this list", cmd_help, 0, 0},
	/* Not built yet; each names the release that brings it. */
	{"status", NULL, NULL, cmd_later, 0, 99},
	{"cas", NULL, NULL, cmd_later, 0, 99},
	{"incr", NULL, NULL, cmd_later, 0, 99},
	{"decr", NULL, NULL, cmd_later, 0, 99},
	{"counter", NULL, NULL, cmd_later, 0, 99},
	{"decommission", NULL, NULL, cmd_later, 0, 99},
	{"removenode", NULL, NULL, cmd_later, 0, 99},
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
		"  -t, --timeout MS              request timeout (default 5000)\n"
		"  -h, --help                    this help\n"
		"  -V, --version                 print the version\n"
		"\n"
		"Commands:\n",
		DEFAULT_SEEDS);
	for (size_t i = 0; i < N_COMMANDS; i++)
		if (commands[i].help)
			fprintf(out, "  %-8s %-15s %s\n", commands[i].name,
				commands[i].args, commands[i].help);
	fprintf(out, "\nExit status: 0 success, 1 not found / does not "
		     "exist, 2 error.\n");
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
			break;
		}
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
