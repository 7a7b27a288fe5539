/* history.h: a strict, streaming reader of operation histories in the JSON
 * lines format of tests/lincheck/histories/README.md, split by key.
 *
 * One line is one event:
 *
 *   {"process":2,"type":"invoke","f":"cas","key":"r","value":[3,0],"time":19}
 *   {"process":2,"type":"ok","f":"cas","key":"r","value":[3,0],
 *    "applied":true,"time":20}
 *
 * The reader pairs each completion with its process's open invoke and keeps
 * one operation per pair, grouped by key in invoke order.  What it rejects,
 * each with "file:line: reason":
 *   - anything that is not one JSON object per line (the JSON parser is
 *     hand-written and strict: RFC 8259 grammar, valid UTF-8, no duplicate
 *     fields, nesting at most LINCHECK_JSON_MAX_DEPTH deep);
 *   - a missing or mistyped field that the format needs (process, type, f,
 *     key, time; value where the operation needs it; applied on a cas ok);
 *   - a second invoke on a process with an operation open, a completion
 *     without an open invoke, or one whose f, key or value differs from it;
 *   - a time smaller than the previous line's.
 * Fields the format does not name are parsed (so must be well-formed JSON)
 * and ignored.
 *
 * Values (keys, values written and read, cas arguments) are integers,
 * strings or null.  Strings are byte strings: the bytes of the decoded
 * UTF-8 text (a \uXXXX escape contributes the UTF-8 encoding of its code
 * point, so \u0000 is a NUL byte).  The integer 3 and the string "3" are
 * different values.  null is the absent value, the register's initial state.
 *
 * Outcomes: "ok" is a completed operation.  "fail" means it did not happen,
 * so the pair is dropped.  "info", or an invoke still open at the end of the
 * input, is an unknown outcome: the operation may take effect at any time
 * after its invoke, or never; its return time is LINCHECK_TIME_INF.
 */
#ifndef LINCHECK_HISTORY_H
#define LINCHECK_HISTORY_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* The return time of an operation whose outcome is unknown. */
#define LINCHECK_TIME_INF INT64_MAX

/* Deeper nesting in an ignored field is rejected, which bounds the parser's
 * recursion on hostile input. */
#define LINCHECK_JSON_MAX_DEPTH 32

/* Value id of null (the absent value).  Other ids index the history's value
 * table; equal values have equal ids. */
#define LINCHECK_NULL 0u

enum lincheck_vtype {
	LINCHECK_VNULL,
	LINCHECK_VINT,
	LINCHECK_VSTR,
};

/* One interned value. */
struct lincheck_value {
	enum lincheck_vtype type;
	int64_t i;	  /* LINCHECK_VINT */
	const uint8_t *s; /* LINCHECK_VSTR: owned by the history, len bytes */
	size_t len;	  /* LINCHECK_VSTR */
};

enum lincheck_f {
	LINCHECK_READ,
	LINCHECK_WRITE,
	LINCHECK_CAS,
};

enum lincheck_outcome {
	LINCHECK_OK,	  /* completed */
	LINCHECK_UNKNOWN, /* info, or never completed */
};

/* One operation: an invoke and its completion. */
struct lincheck_op {
	int64_t process;
	enum lincheck_f f;
	enum lincheck_outcome outcome;
	/* read: the value seen (LINCHECK_NULL on an unknown read);
	 * write: the value written; cas: the expected value. */
	uint32_t value;
	uint32_t cas_new; /* cas: the value to set; else unused */
	int applied;	  /* cas ok: 1 applied, 0 observed another value */
	int64_t call;	  /* invoke time */
	int64_t ret;	  /* completion time; LINCHECK_TIME_INF if unknown */
	unsigned long call_line; /* input line of the invoke (1-based) */
	unsigned long ret_line;	 /* line of the completion; 0 if none */
};

/* Opaque: the operations of one input, by key. */
struct lincheck_history;

/* A new, empty history; name (copied) prefixes error messages.  Returns
 * NULL when out of memory.  Free with lincheck_history_free. */
struct lincheck_history *lincheck_history_new(const char *name);

void lincheck_history_free(struct lincheck_history *h);

/* Feeds one line (without its newline; a trailing '\r' is allowed).  Lines
 * are numbered by the number of calls.  Returns 0, RK_ECORRUPT when the line
 * is malformed or breaks a rule above, or RK_ENOMEM; after an error the
 * history accepts nothing more and lincheck_history_error says why. */
int lincheck_history_feed(struct lincheck_history *h, const char *line,
			  size_t len);

/* Ends the input: invokes still open become unknown-outcome operations and
 * failed ones are dropped.  Returns 0, or the error of an earlier feed.
 * After it, the accessors below may be used and feeding is refused. */
int lincheck_history_finish(struct lincheck_history *h);

/* Reads a whole stream, line by line, then finishes.  Returns 0,
 * RK_ECORRUPT (malformed), RK_EIO (read error) or RK_ENOMEM. */
int lincheck_history_read(struct lincheck_history *h, FILE *in);

/* Opens path, reads and finishes it into a new history named path.
 * Returns 0 and *out (caller frees), or a negative code with the reason in
 * err (RK_EIO: cannot open or read; RK_ECORRUPT; RK_ENOMEM). */
int lincheck_history_load(const char *path, struct lincheck_history **out,
			  char *err, size_t errlen);

/* "name:line: reason" for the error that stopped the history, or "" when
 * there was none.  Borrowed; lives as long as h. */
const char *lincheck_history_error(const struct lincheck_history *h);

const char *lincheck_history_name(const struct lincheck_history *h);

/* Number of keys, in order of first appearance. */
size_t lincheck_history_nkeys(const struct lincheck_history *h);

/* Value id of key k (k < nkeys). */
uint32_t lincheck_history_key(const struct lincheck_history *h, size_t k);

/* The operations on key k in invoke order, *n of them; borrowed, valid
 * while h lives. */
const struct lincheck_op *lincheck_history_ops(const struct lincheck_history *h,
					       size_t k, size_t *n);

/* The value with id (from an op or key of h); borrowed. */
const struct lincheck_value *
lincheck_history_value(const struct lincheck_history *h, uint32_t id);

/* Writes v as JSON (strings escaped) to out. */
void lincheck_value_print_json(FILE *out, const struct lincheck_value *v);

/* Writes v for people: integers bare, null as "null", strings quoted with
 * C-style escapes for bytes that are not printable ASCII. */
void lincheck_value_print(FILE *out, const struct lincheck_value *v);

#endif
