/* lincheck.h: checks that the operations on one key of a history are
 * linearizable with respect to a register with read, write and cas.
 *
 * The algorithm is Wing & Gong's backtracking search (1993) with Lowe's
 * memoization of visited configurations (2017), in the form Porcupine uses,
 * plus pruning that keeps crashed clients and reads from multiplying the
 * configurations; lincheck.c opens with an account of it.  Keys are
 * independent registers, and linearizability is compositional (Herlihy &
 * Wing 1990, theorem 1), so a history is linearizable iff each key's
 * subhistory is: callers check key by key.
 *
 * Deciding linearizability is NP-complete, and a violation near the end of
 * a long key's history makes the search refute every alternative before
 * it.  Histories are cheap to check when, like Jepsen's, they spread over
 * many keys of a few hundred operations each and write distinct values
 * (so a read says which write it saw); then a key takes milliseconds.
 *
 * The model, with the register starting absent (null):
 *   read  seeing v          requires state == v
 *   write v                 sets state = v
 *   cas [e, n] applied      requires state == e, sets state = n
 *   cas [e, n] not applied  requires state != e
 *   unknown outcome (info or never completed): a write or cas may take
 *   effect at any point after its invoke, or never; an unknown read
 *   constrains nothing and is ignored.
 */
#ifndef LINCHECK_LINCHECK_H
#define LINCHECK_LINCHECK_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "history.h"

/* Default bound on the configurations (set of linearized ops, register
 * value) the search may enter per key, each a step of work.  Each is
 * memoized in about 60 bytes plus a bit per op in flight, and costs 1-5
 * microseconds, so the default stops a key after at most ~500 MB and
 * ~20 s on a slow machine.  The reference histories need under 100; the
 * search blows up on long single-key histories whose values repeat and
 * whose clients crash often, and most when the violation comes late (see
 * lincheck.c). */
#define LINCHECK_DEFAULT_MAX_STATES 4000000ull

/* Most operations one key may hold; more is refused as RK_ENOMEM (the
 * search could not hold them anyway). */
#define LINCHECK_MAX_OPS ((size_t)1 << 28)

enum lincheck_verdict {
	LINCHECK_LINEARIZABLE = 0,
	LINCHECK_NOT_LINEARIZABLE = 1,
	/* The search hit max_states before deciding: the key may be either.
	 * Distinct from both verdicts so a CI run never mistakes it. */
	LINCHECK_UNDECIDED = 3,
};

struct lincheck_config {
	/* Configurations entered before giving up as UNDECIDED; 0 means no
	 * limit.  A count, not a clock, so a verdict replays exactly. */
	uint64_t max_states;
};

/* Opaque: the verdict on one key and, when not linearizable, why. */
struct lincheck_result;

/* Checks key k of h (k < lincheck_history_nkeys(h)).  cfg may be NULL for
 * the defaults.  Returns 0 and *out (free with lincheck_result_free; it
 * borrows h, which must outlive it), or RK_ENOMEM (also for more than
 * LINCHECK_MAX_OPS ops). */
int lincheck_check_key(const struct lincheck_history *h, size_t k,
		       const struct lincheck_config *cfg,
		       struct lincheck_result **out);

void lincheck_result_free(struct lincheck_result *r);

enum lincheck_verdict lincheck_result_verdict(const struct lincheck_result *r);

/* Operations on the key (failed ones excluded, unknown reads included). */
size_t lincheck_result_nops(const struct lincheck_result *r);

/* Configurations the search entered: its cost. */
uint64_t lincheck_result_states(const struct lincheck_result *r);

/* The explanation of a NOT_LINEARIZABLE verdict.  The search's deepest
 * dead end: a linearization of *prefix_len ops (the longest it found) after
 * which the op returned (an index into lincheck_history_ops for the key)
 * could not be placed before its completion, whatever else was placed
 * first.  Returns -1 when the verdict is something else. */
long lincheck_result_blocked(const struct lincheck_result *r,
			     size_t *prefix_len);

/* Human verdict for the key, one line, then for a failure an indented
 * explanation:
 *   "NAME: key r: linearizable (N ops)"
 *   "NAME: key r: NOT linearizable: ..."
 *   "NAME: key r: undecided (search limit of N states reached)"
 * name may be NULL to drop the "NAME: " prefix. */
void lincheck_result_print(const struct lincheck_result *r, FILE *out,
			   const char *name);

/* The same as one JSON object on one line:
 *   {"file":NAME,"key":K,"verdict":"linearizable"|"not_linearizable"|
 *    "undecided","ops":N,"states":S[,"explanation":{...}]}
 * where the explanation holds the whole prefix, the blocked op, the model
 * states reached and the ops pending at the dead end. */
void lincheck_result_print_json(const struct lincheck_result *r, FILE *out,
				const char *name);

/* Writes s as a JSON string. */
void lincheck_json_string(FILE *out, const char *s);

#endif
