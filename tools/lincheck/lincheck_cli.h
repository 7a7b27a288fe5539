/* lincheck_cli.h: the "lincheck" command, for the ringkv CLI and the
 * standalone ringkv-lincheck executable.
 *
 *   lincheck [--json] [--max-states N] FILE...
 *
 * Checks every key of every FILE ("-" is standard input) and prints one
 * verdict per key (see lincheck_result_print), or with --json one JSON
 * object per key per line (lincheck_result_print_json).  Input errors go to
 * stderr as "FILE:LINE: reason" (and, with --json, to stdout as
 * {"file":F,"error":MSG}); the other files are still checked.
 *
 * Exit status, the first that applies:
 *   1  some key is not linearizable (a proven violation outranks the rest)
 *   2  some file could not be read or is malformed, or bad usage
 *   3  some key is undecided: the search hit --max-states (default
 *      LINCHECK_DEFAULT_MAX_STATES; 0 means unbounded)
 *   0  every key of every file is linearizable
 */
#ifndef LINCHECK_CLI_H
#define LINCHECK_CLI_H

#include <stdio.h>

enum lincheck_exit {
	LINCHECK_EXIT_OK = 0,
	LINCHECK_EXIT_VIOLATION = 1,
	LINCHECK_EXIT_INPUT = 2,
	LINCHECK_EXIT_UNDECIDED = 3,
};

/* argv[0] names the command in the usage message.  Returns an exit status
 * above.  Reentrant: no global state, so it may run more than once. */
int lincheck_main(int argc, char **argv);

/* The same, writing verdicts to out and diagnostics to err (borrowed). */
int lincheck_run(int argc, char **argv, FILE *out, FILE *err);

#endif
