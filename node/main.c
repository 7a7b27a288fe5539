/* ringkvd: the ringkv node daemon. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <ev.h>

#include "config.h"
#include "err.h"
#include "log.h"
#include "node.h"

#define DEFAULT_CONFIG "/etc/ringkv/ringkv.conf"

enum exit_code {
	EXIT_OK = 0,
	EXIT_USAGE = 1,   /* bad flag, config file or setting */
	EXIT_STARTUP = 2, /* data directory or listen address unusable */
	/* 3 = RK_EXIT_FATAL_IO: a log write or fsync failed */
};

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: ringkvd [OPTIONS]\n"
		"\n"
		"Runs one ringkv node.  With no options it keeps its data in\n"
		"./ringkv-data and serves clients on 127.0.0.1:7400.\n"
		"\n"
		"Options (they override the config file):\n"
		"  -c, --config FILE        INI config file (default %s if present)\n"
		"  -l, --listen HOST:PORT   client address (node.listen)\n"
		"  -d, --data-dir DIR       data directory (node.data_dir)\n"
		"      --fsync MODE         always | interval | never (storage.fsync)\n"
		"      --seeds HOST:PORT,...  join the cluster through these nodes\n"
		"                           (cluster.seeds; may list this node)\n"
		"      --cluster-name NAME  (cluster.name)\n"
		"      --log-level LEVEL    error | warn | info | debug | trace\n"
		"  -o, --set NAME=VALUE     any setting, e.g. --set limits.max_value=4MiB\n"
		"      --print-config       print the effective settings and exit\n"
		"      --help-config        list every setting with its default and exit\n"
		"  -h, --help               this help\n"
		"  -V, --version            print the version\n"
		"\n"
		"Stops cleanly on SIGTERM or SIGINT (the op-log is flushed and synced).\n",
		DEFAULT_CONFIG);
}

static struct node *g_node;

static void on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
	(void)loop;
	(void)revents;
	struct rk_logger *lg = w->data;
	rk_info(lg, "node", "signal %d: stopping", w->signum);
	node_shutdown(g_node);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},
		{"listen", required_argument, NULL, 'l'},
		{"data-dir", required_argument, NULL, 'd'},
		{"fsync", required_argument, NULL, 'f'},
		{"cluster-name", required_argument, NULL, 'C'},
		{"seeds", required_argument, NULL, 'S'},
		{"log-level", required_argument, NULL, 'L'},
		{"set", required_argument, NULL, 'o'},
		{"print-config", no_argument, NULL, 'P'},
		{"help-config", no_argument, NULL, 'R'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	struct node_config cfg;
	char err[512];
	const char *config_path = NULL;
	int print_config = 0;

	config_defaults(&cfg);

	/* First pass: only --config, --help and --version, so that the file
	 * is loaded before the flags that override it. */
	int c;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "c:l:d:o:hV", opts, NULL)) != -1) {
		if (c == 'c')
			config_path = optarg;
		else if (c == 'h') {
			usage(stdout);
			return EXIT_OK;
		} else if (c == 'V') {
			printf("ringkvd %s\n", RINGKV_VERSION);
			return EXIT_OK;
		} else if (c == 'R') {
			config_print_reference(stdout);
			return EXIT_OK;
		}
	}
	if (config_path) {
		if (config_load_file(&cfg, config_path, err, sizeof(err))) {
			fprintf(stderr, "ringkvd: %s\n", err);
			return EXIT_USAGE;
		}
	} else if (access(DEFAULT_CONFIG, F_OK) == 0) {
		if (config_load_file(&cfg, DEFAULT_CONFIG, err, sizeof(err))) {
			fprintf(stderr, "ringkvd: %s\n", err);
			return EXIT_USAGE;
		}
	}

	optind = 1;
	opterr = 1;
	while ((c = getopt_long(argc, argv, "c:l:d:o:hV", opts, NULL)) != -1) {
		const char *name = NULL;
		const char *value = optarg;
		char buf[512];
		switch (c) {
		case 'c':
			continue;
		case 'l': name = "node.listen"; break;
		case 'd': name = "node.data_dir"; break;
		case 'f': name = "storage.fsync"; break;
		case 'C': name = "cluster.name"; break;
		case 'S': name = "cluster.seeds"; break;
		case 'L': name = "node.log_level"; break;
		case 'o': {
			const char *eq = strchr(optarg, '=');
			if (!eq || eq == optarg ||
			    (size_t)(eq - optarg) >= sizeof(buf)) {
				fprintf(stderr,
					"ringkvd: --set wants NAME=VALUE, got "
					"'%s'\n",
					optarg);
				return EXIT_USAGE;
			}
			memcpy(buf, optarg, (size_t)(eq - optarg));
			buf[eq - optarg] = 0;
			name = buf;
			value = eq + 1;
			break;
		}
		case 'P':
			print_config = 1;
			continue;
		default:
			fprintf(stderr, "Try 'ringkvd --help'.\n");
			return EXIT_USAGE;
		}
		if (config_set(&cfg, name, value, err, sizeof(err))) {
			fprintf(stderr, "ringkvd: %s\n", err);
			return EXIT_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "ringkvd: unexpected argument '%s'\n",
			argv[optind]);
		return EXIT_USAGE;
	}
	if (config_validate(&cfg, err, sizeof(err))) {
		fprintf(stderr, "ringkvd: %s\n", err);
		return EXIT_USAGE;
	}
	if (print_config) {
		config_print(&cfg, stdout);
		return EXIT_OK;
	}

	signal(SIGPIPE, SIG_IGN);
	struct rk_logger lg;
	rk_logger_init(&lg, "ringkvd", cfg.log_level);
	struct ev_loop *loop = ev_default_loop(EVFLAG_AUTO | EVFLAG_NOSIGMASK);
	if (node_start(loop, &cfg, &lg, &g_node, err, sizeof(err))) {
		rk_error(&lg, "node", "cannot start: %s", err);
		return EXIT_STARTUP;
	}
	ev_signal sigterm, sigint;
	ev_signal_init(&sigterm, on_signal, SIGTERM);
	ev_signal_init(&sigint, on_signal, SIGINT);
	sigterm.data = sigint.data = &lg;
	ev_signal_start(loop, &sigterm);
	ev_signal_start(loop, &sigint);
	ev_run(loop, 0);
	node_free(g_node);
	rk_info(&lg, "node", "stopped");
	ev_loop_destroy(loop);
	return EXIT_OK;
}
