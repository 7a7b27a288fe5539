#include "lincheck_cli.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "history.h"
#include "lincheck.h"

/* Room for "FILE:LINE: reason" with a long path. */
#define ERRMSG_LEN 1024

struct opts {
	int json;
	uint64_t max_states;
};

static void usage(FILE *err, const char *argv0)
{
	fprintf(err,
		"usage: %s [--json] [--max-states N] FILE...\n"
		"Checks each key of each history FILE (JSON lines; - for "
		"stdin) for\nlinearizability as a register with "
		"read/write/cas.\n"
		"  --json          one JSON object per key per line\n"
		"  --max-states N  give up on a key after N search states "
		"(default %llu,\n"
		"                  0: no limit); such a key is undecided\n"
		"Exit: 0 all linearizable, 1 a key is not, 2 bad input or "
		"usage,\n"
		"      3 a key undecided (search limit)\n",
		argv0, (unsigned long long)LINCHECK_DEFAULT_MAX_STATES);
}

/* Parses a decimal count; digits only, so "-1" and "1e6" are refused. */
static int parse_count(const char *s, uint64_t *out)
{
	if (!*s)
		return RK_EINVALID;
	for (const char *p = s; *p; p++)
		if (*p < '0' || *p > '9')
			return RK_EINVALID;
	errno = 0;
	unsigned long long v = strtoull(s, NULL, 10);
	if (errno == ERANGE)
		return RK_EINVALID;
	*out = (uint64_t)v;
	return 0;
}

/* Folds one outcome into the exit status by the precedence documented in
 * lincheck_cli.h. */
static int worse(int a, int b)
{
	static const int rank[] = {
	    [LINCHECK_EXIT_OK] = 0,
	    [LINCHECK_EXIT_UNDECIDED] = 1,
	    [LINCHECK_EXIT_INPUT] = 2,
	    [LINCHECK_EXIT_VIOLATION] = 3,
	};
	return rank[b] > rank[a] ? b : a;
}

static void report_error(const struct opts *o, FILE *out, FILE *err,
			 const char *file, const char *msg)
{
	fprintf(err, "%s\n", msg);
	if (o->json) {
		fputs("{\"file\":", out);
		lincheck_json_string(out, file);
		fputs(",\"error\":", out);
		lincheck_json_string(out, msg);
		fputs("}\n", out);
	}
}

static int load(const char *file, struct lincheck_history **h, char *msg,
		size_t len)
{
	if (strcmp(file, "-") != 0)
		return lincheck_history_load(file, h, msg, len);
	*h = lincheck_history_new("-");
	if (!*h) {
		snprintf(msg, len, "-: out of memory");
		return RK_ENOMEM;
	}
	int rc = lincheck_history_read(*h, stdin);
	if (rc) {
		snprintf(msg, len, "%s", lincheck_history_error(*h));
		lincheck_history_free(*h);
		*h = NULL;
	}
	return rc;
}

/* Checks one file; returns its exit status. */
static int check_file(const struct opts *o, const char *file, FILE *out,
		      FILE *err)
{
	char msg[ERRMSG_LEN];
	struct lincheck_history *h;
	if (load(file, &h, msg, sizeof(msg))) {
		report_error(o, out, err, file, msg);
		return LINCHECK_EXIT_INPUT;
	}
	size_t nkeys = lincheck_history_nkeys(h);
	if (nkeys == 0) {
		if (o->json) {
			fputs("{\"file\":", out);
			lincheck_json_string(out, file);
			fputs(",\"keys\":0}\n", out);
		} else {
			fprintf(out, "%s: no operations\n", file);
		}
	}
	struct lincheck_config cfg = {o->max_states};
	int status = LINCHECK_EXIT_OK;
	for (size_t k = 0; k < nkeys; k++) {
		struct lincheck_result *r;
		if (lincheck_check_key(h, k, &cfg, &r)) {
			snprintf(msg, sizeof(msg), "%s: out of memory", file);
			report_error(o, out, err, file, msg);
			status = worse(status, LINCHECK_EXIT_INPUT);
			continue;
		}
		if (o->json)
			lincheck_result_print_json(r, out, file);
		else
			lincheck_result_print(r, out, file);
		switch (lincheck_result_verdict(r)) {
		case LINCHECK_LINEARIZABLE:
			break;
		case LINCHECK_NOT_LINEARIZABLE:
			status = worse(status, LINCHECK_EXIT_VIOLATION);
			break;
		case LINCHECK_UNDECIDED:
			status = worse(status, LINCHECK_EXIT_UNDECIDED);
			break;
		}
		lincheck_result_free(r);
	}
	lincheck_history_free(h);
	return status;
}

int lincheck_run(int argc, char **argv, FILE *out, FILE *err)
{
	const char *argv0 = argc > 0 && argv[0] ? argv[0] : "lincheck";
	struct opts o = {0, LINCHECK_DEFAULT_MAX_STATES};
	int i = 1;
	for (; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--") == 0) {
			i++;
			break;
		}
		if (a[0] != '-' || strcmp(a, "-") == 0)
			break;
		if (strcmp(a, "--json") == 0) {
			o.json = 1;
		} else if (strcmp(a, "--max-states") == 0 ||
			   strncmp(a, "--max-states=", 13) == 0) {
			const char *v = a[12] == '=' ? a + 13 : argv[++i];
			if (!v || parse_count(v, &o.max_states)) {
				fprintf(err, "%s: --max-states needs a count\n",
					argv0);
				return LINCHECK_EXIT_INPUT;
			}
		} else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			usage(out, argv0);
			return LINCHECK_EXIT_OK;
		} else {
			fprintf(err, "%s: unknown option %s\n", argv0, a);
			usage(err, argv0);
			return LINCHECK_EXIT_INPUT;
		}
	}
	if (i >= argc) {
		usage(err, argv0);
		return LINCHECK_EXIT_INPUT;
	}
	int status = LINCHECK_EXIT_OK;
	for (; i < argc; i++)
		status = worse(status, check_file(&o, argv[i], out, err));
	fflush(out);
	return status;
}

int lincheck_main(int argc, char **argv)
{
	return lincheck_run(argc, argv, stdout, stderr);
}
