/* history.c: the JSON-lines history reader.
 *
 * The JSON parser is hand-written rather than borrowed because it has to be
 * strict in ways general parsers are not (line-oriented errors with the
 * column, integer-only values with exact 64-bit range checks, byte-string
 * decoding) and because the checker must not grow a dependency.  It parses
 * one line at a time into a flat record of the fields the format names;
 * everything else is validated and skipped.  Decoded strings go into a
 * scratch buffer reused for every line, so a line costs no allocation unless
 * it brings a new value, key or process.
 */
#include "history.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "hash.h"

/* Initial sizes of the growable tables; all double when full. */
#define VALUES_MIN 64
#define PROCS_MIN 64
#define OPS_MIN 64

/* Long enough for the name, a line number and any reason we produce. */
#define ERR_LEN 512

/* An op whose call_line is 0 was failed and is dropped by finish. */
#define OP_DROPPED_LINE 0

/* ------------------------------------------------------------------ */
/* The history object                                                   */

/* The operations of one key. */
struct key_ops {
	uint32_t key;		 /* value id */
	struct lincheck_op *ops; /* owned; invoke order */
	size_t n, cap;
};

/* A process and its open operation, if any. */
struct proc {
	int64_t id;
	int used;	  /* slot holds a process */
	int open;	  /* an invoke awaits its completion */
	uint32_t key_idx; /* of the open op */
	size_t op_idx;	  /* of the open op, in keys[key_idx] */
};

struct lincheck_history {
	char *name;	    /* owned */
	char err[ERR_LEN];  /* why the input was refused; "" */
	int status;	    /* 0, or the sticky error code */
	int finished;	    /* lincheck_history_finish ran */
	unsigned long line; /* lines fed so far */
	int64_t last_time;  /* time of the previous line */
	int have_time;	    /* a line has been seen */

	struct lincheck_value *values; /* owned; [0] is null */
	uint32_t *key_of;	       /* per value: key index + 1, or 0 */
	size_t nvalues, values_cap;
	uint32_t *vtab;	 /* open-addressed value ids; 0 empty */
	size_t vtab_cap; /* power of two */

	struct key_ops *keys; /* owned; order of first appearance */
	size_t nkeys, keys_cap;

	struct proc *procs;	  /* open-addressed by id */
	size_t nprocs, procs_cap; /* power of two */

	char *scratch; /* decoded strings of the current line */
	size_t scratch_len, scratch_cap;
};

static void set_error(struct lincheck_history *h, int code, const char *fmt,
		      ...) __attribute__((format(printf, 3, 4)));

/* Records the first error as "name:line: reason"; later ones are dropped so
 * the message names the line that went wrong first. */
static void set_error(struct lincheck_history *h, int code, const char *fmt,
		      ...)
{
	if (h->status)
		return;
	h->status = code;
	int n = snprintf(h->err, sizeof(h->err), "%s:%lu: ", h->name, h->line);
	if (n < 0 || (size_t)n >= sizeof(h->err))
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(h->err + n, sizeof(h->err) - (size_t)n, fmt, ap);
	va_end(ap);
}

struct lincheck_history *lincheck_history_new(const char *name)
{
	struct lincheck_history *h = calloc(1, sizeof(*h));
	if (!h)
		return NULL;
	h->name = strdup(name ? name : "-");
	h->values = calloc(VALUES_MIN, sizeof(*h->values));
	h->key_of = calloc(VALUES_MIN, sizeof(*h->key_of));
	h->vtab = calloc(VALUES_MIN * 2, sizeof(*h->vtab));
	h->procs = calloc(PROCS_MIN, sizeof(*h->procs));
	if (!h->name || !h->values || !h->key_of || !h->vtab || !h->procs) {
		lincheck_history_free(h);
		return NULL;
	}
	h->values_cap = VALUES_MIN;
	h->vtab_cap = VALUES_MIN * 2;
	h->procs_cap = PROCS_MIN;
	h->values[0].type = LINCHECK_VNULL;
	h->nvalues = 1;
	return h;
}

void lincheck_history_free(struct lincheck_history *h)
{
	if (!h)
		return;
	for (size_t i = 0; i < h->nvalues; i++)
		free((void *)h->values[i].s);
	for (size_t k = 0; k < h->nkeys; k++)
		free(h->keys[k].ops);
	free(h->values);
	free(h->key_of);
	free(h->vtab);
	free(h->keys);
	free(h->procs);
	free(h->scratch);
	free(h->name);
	free(h);
}

/* ------------------------------------------------------------------ */
/* Values                                                               */

static uint64_t value_hash(const struct lincheck_value *v)
{
	if (v->type == LINCHECK_VINT)
		return rk_hash_seeded(&v->i, sizeof(v->i), 1);
	return rk_hash_seeded(v->s, v->len, 2);
}

static int value_eq(const struct lincheck_value *a,
		    const struct lincheck_value *b)
{
	if (a->type != b->type)
		return 0;
	if (a->type == LINCHECK_VINT)
		return a->i == b->i;
	if (a->type == LINCHECK_VSTR)
		return a->len == b->len && memcmp(a->s, b->s, a->len) == 0;
	return 1;
}

static int vtab_grow(struct lincheck_history *h)
{
	size_t cap = h->vtab_cap * 2;
	uint32_t *t = calloc(cap, sizeof(*t));
	if (!t)
		return RK_ENOMEM;
	for (size_t id = 1; id < h->nvalues; id++) {
		size_t i = value_hash(&h->values[id]) & (cap - 1);
		while (t[i])
			i = (i + 1) & (cap - 1);
		t[i] = (uint32_t)id;
	}
	free(h->vtab);
	h->vtab = t;
	h->vtab_cap = cap;
	return 0;
}

/* Returns the id of v, adding a copy when new; 0 for null.  *id is set;
 * returns 0 or RK_ENOMEM. */
static int intern(struct lincheck_history *h, const struct lincheck_value *v,
		  uint32_t *id)
{
	if (v->type == LINCHECK_VNULL) {
		*id = LINCHECK_NULL;
		return 0;
	}
	size_t mask = h->vtab_cap - 1;
	size_t i = value_hash(v) & mask;
	while (h->vtab[i]) {
		if (value_eq(&h->values[h->vtab[i]], v)) {
			*id = h->vtab[i];
			return 0;
		}
		i = (i + 1) & mask;
	}
	if (h->nvalues >= UINT32_MAX - 1)
		return RK_ENOMEM;
	if (h->nvalues == h->values_cap) {
		size_t cap = h->values_cap * 2;
		struct lincheck_value *nv =
		    realloc(h->values, cap * sizeof(*nv));
		if (!nv)
			return RK_ENOMEM;
		h->values = nv;
		uint32_t *nk = realloc(h->key_of, cap * sizeof(*nk));
		if (!nk)
			return RK_ENOMEM;
		h->key_of = nk;
		h->values_cap = cap;
	}
	struct lincheck_value copy = *v;
	if (v->type == LINCHECK_VSTR) {
		/* +1 so an empty string still gets a non-NULL pointer. */
		uint8_t *s = malloc(v->len + 1);
		if (!s)
			return RK_ENOMEM;
		memcpy(s, v->s, v->len);
		copy.s = s;
	}
	uint32_t nid = (uint32_t)h->nvalues;
	h->values[nid] = copy;
	h->key_of[nid] = 0;
	h->nvalues++;
	h->vtab[i] = nid;
	/* Keep the table at most half full so probes stay short. */
	if (h->nvalues * 2 > h->vtab_cap) {
		int rc = vtab_grow(h);
		if (rc)
			return rc;
	}
	*id = nid;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Processes and keys                                                   */

static uint64_t proc_hash(int64_t id)
{
	return rk_hash_seeded(&id, sizeof(id), 3);
}

static int procs_grow(struct lincheck_history *h)
{
	size_t cap = h->procs_cap * 2;
	struct proc *t = calloc(cap, sizeof(*t));
	if (!t)
		return RK_ENOMEM;
	for (size_t j = 0; j < h->procs_cap; j++) {
		if (!h->procs[j].used)
			continue;
		size_t i = proc_hash(h->procs[j].id) & (cap - 1);
		while (t[i].used)
			i = (i + 1) & (cap - 1);
		t[i] = h->procs[j];
	}
	free(h->procs);
	h->procs = t;
	h->procs_cap = cap;
	return 0;
}

/* The slot of process id, added (closed) when absent.  NULL: no memory. */
static struct proc *proc_get(struct lincheck_history *h, int64_t id)
{
	if ((h->nprocs + 1) * 2 > h->procs_cap && procs_grow(h))
		return NULL;
	size_t mask = h->procs_cap - 1;
	size_t i = proc_hash(id) & mask;
	while (h->procs[i].used) {
		if (h->procs[i].id == id)
			return &h->procs[i];
		i = (i + 1) & mask;
	}
	h->procs[i].used = 1;
	h->procs[i].id = id;
	h->procs[i].open = 0;
	h->nprocs++;
	return &h->procs[i];
}

/* Index of the key with value id key, added when new; -1: no memory. */
static long key_get(struct lincheck_history *h, uint32_t key)
{
	if (h->key_of[key])
		return (long)h->key_of[key] - 1;
	if (h->nkeys == h->keys_cap) {
		size_t cap = h->keys_cap ? h->keys_cap * 2 : 8;
		struct key_ops *k = realloc(h->keys, cap * sizeof(*k));
		if (!k)
			return -1;
		h->keys = k;
		h->keys_cap = cap;
	}
	struct key_ops *k = &h->keys[h->nkeys];
	memset(k, 0, sizeof(*k));
	k->key = key;
	h->key_of[key] = (uint32_t)++h->nkeys;
	return (long)h->nkeys - 1;
}

/* Appends a zeroed op to a key; NULL when out of memory. */
static struct lincheck_op *op_append(struct key_ops *k)
{
	if (k->n == k->cap) {
		size_t cap = k->cap ? k->cap * 2 : OPS_MIN;
		struct lincheck_op *ops = realloc(k->ops, cap * sizeof(*ops));
		if (!ops)
			return NULL;
		k->ops = ops;
		k->cap = cap;
	}
	struct lincheck_op *op = &k->ops[k->n++];
	memset(op, 0, sizeof(*op));
	return op;
}

/* ------------------------------------------------------------------ */
/* JSON                                                                 */

enum jtype {
	J_NONE, /* field absent */
	J_NULL,
	J_BOOL,
	J_INT,
	J_NUM, /* a number with a fraction or exponent */
	J_STR,
	J_ARR,
	J_OBJ,
};

/* A scalar as parsed; a string is a slice of the scratch buffer. */
struct jscalar {
	enum jtype t;
	int64_t i;    /* J_INT */
	int b;	      /* J_BOOL */
	size_t s_off; /* J_STR */
	size_t s_len; /* J_STR */
};

/* A field value: a scalar, or an array with its first two elements kept
 * (cas needs exactly two scalars). */
struct jfield {
	struct jscalar v;
	size_t n;	      /* J_ARR: element count */
	struct jscalar el[2]; /* J_ARR: elements 0 and 1 when scalars */
};

/* The fields of one line that the format names. */
enum field {
	F_PROCESS,
	F_TYPE,
	F_F,
	F_KEY,
	F_VALUE,
	F_TIME,
	F_APPLIED,
	F_COUNT,
};

static const char *const field_names[F_COUNT] = {
    "process", "type", "f", "key", "value", "time", "applied",
};

struct jparser {
	struct lincheck_history *h; /* errors and the scratch buffer */
	const char *start;	    /* the line */
	const char *p;		    /* next byte */
	const char *end;	    /* one past the line */
};

static void jerror(struct jparser *jp, const char *what)
{
	set_error(jp->h, RK_ECORRUPT, "%s (column %zu)", what,
		  (size_t)(jp->p - jp->start) + 1);
}

static void skip_ws(struct jparser *jp)
{
	while (jp->p < jp->end && (*jp->p == ' ' || *jp->p == '\t' ||
				   *jp->p == '\r' || *jp->p == '\n'))
		jp->p++;
}

static int scratch_put(struct lincheck_history *h, const void *p, size_t n)
{
	if (h->scratch_cap - h->scratch_len < n) {
		size_t cap = h->scratch_cap ? h->scratch_cap : 256;
		while (cap - h->scratch_len < n)
			cap *= 2;
		char *s = realloc(h->scratch, cap);
		if (!s)
			return RK_ENOMEM;
		h->scratch = s;
		h->scratch_cap = cap;
	}
	memcpy(h->scratch + h->scratch_len, p, n);
	h->scratch_len += n;
	return 0;
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Reads the 4 hex digits of a \u escape at jp->p; -1 if malformed. */
static long read_hex4(struct jparser *jp)
{
	if (jp->end - jp->p < 4)
		return -1;
	long v = 0;
	for (int k = 0; k < 4; k++) {
		int d = hexval((unsigned char)jp->p[k]);
		if (d < 0)
			return -1;
		v = v * 16 + d;
	}
	jp->p += 4;
	return v;
}

/* Length of the valid UTF-8 sequence at p (lead byte >= 0x80), or 0.
 * RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF. */
static size_t utf8_len(const unsigned char *p, const unsigned char *end)
{
	unsigned char c = p[0];
	size_t n;
	unsigned char lo = 0x80, hi = 0xbf; /* range of the second byte */
	if (c >= 0xc2 && c <= 0xdf) {
		n = 2;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		if (c == 0xe0)
			lo = 0xa0;
		else if (c == 0xed)
			hi = 0x9f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f;
	} else {
		return 0;
	}
	if ((size_t)(end - p) < n)
		return 0;
	if (p[1] < lo || p[1] > hi)
		return 0;
	for (size_t k = 2; k < n; k++)
		if (p[k] < 0x80 || p[k] > 0xbf)
			return 0;
	return n;
}

static int put_utf8(struct lincheck_history *h, unsigned long cp)
{
	unsigned char b[4];
	size_t n;
	if (cp < 0x80) {
		b[0] = (unsigned char)cp;
		n = 1;
	} else if (cp < 0x800) {
		b[0] = (unsigned char)(0xc0 | (cp >> 6));
		b[1] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		b[0] = (unsigned char)(0xe0 | (cp >> 12));
		b[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		b[2] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		b[0] = (unsigned char)(0xf0 | (cp >> 18));
		b[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
		b[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		b[3] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	return scratch_put(h, b, n);
}

/* Parses a string at jp->p (on the opening quote), decoding it onto the
 * scratch buffer.  Returns 0 or an error code (already recorded). */
static int parse_string(struct jparser *jp, size_t *off, size_t *len)
{
	struct lincheck_history *h = jp->h;
	jp->p++; /* the opening quote */
	*off = h->scratch_len;
	for (;;) {
		if (jp->p >= jp->end) {
			jerror(jp, "unterminated string");
			return RK_ECORRUPT;
		}
		unsigned char c = (unsigned char)*jp->p;
		if (c == '"') {
			jp->p++;
			break;
		}
		if (c < 0x20) {
			jerror(jp, "control character in string");
			return RK_ECORRUPT;
		}
		if (c >= 0x80) {
			size_t n = utf8_len((const unsigned char *)jp->p,
					    (const unsigned char *)jp->end);
			if (!n) {
				jerror(jp, "invalid UTF-8 in string");
				return RK_ECORRUPT;
			}
			if (scratch_put(h, jp->p, n))
				goto nomem;
			jp->p += n;
			continue;
		}
		if (c != '\\') {
			/* Copy the run of plain bytes at once. */
			const char *run = jp->p;
			while (jp->p < jp->end && *jp->p != '"' &&
			       *jp->p != '\\' &&
			       (unsigned char)*jp->p >= 0x20 &&
			       (unsigned char)*jp->p < 0x80)
				jp->p++;
			if (scratch_put(h, run, (size_t)(jp->p - run)))
				goto nomem;
			continue;
		}
		jp->p++;
		if (jp->p >= jp->end) {
			jerror(jp, "unterminated string");
			return RK_ECORRUPT;
		}
		char e = *jp->p++;
		char out;
		switch (e) {
		case '"':
			out = '"';
			break;
		case '\\':
			out = '\\';
			break;
		case '/':
			out = '/';
			break;
		case 'b':
			out = '\b';
			break;
		case 'f':
			out = '\f';
			break;
		case 'n':
			out = '\n';
			break;
		case 'r':
			out = '\r';
			break;
		case 't':
			out = '\t';
			break;
		case 'u': {
			long cp = read_hex4(jp);
			if (cp < 0) {
				jerror(jp, "bad \\u escape");
				return RK_ECORRUPT;
			}
			if (cp >= 0xdc00 && cp <= 0xdfff) {
				jerror(jp, "lone low surrogate in \\u escape");
				return RK_ECORRUPT;
			}
			if (cp >= 0xd800 && cp <= 0xdbff) {
				/* A high surrogate must pair with a low one. */
				long lo = -1;
				if (jp->end - jp->p >= 2 && jp->p[0] == '\\' &&
				    jp->p[1] == 'u') {
					jp->p += 2;
					lo = read_hex4(jp);
				}
				if (lo < 0xdc00 || lo > 0xdfff) {
					jerror(jp, "unpaired high surrogate in "
						   "\\u escape");
					return RK_ECORRUPT;
				}
				cp = 0x10000 + ((cp - 0xd800) << 10) +
				     (lo - 0xdc00);
			}
			if (put_utf8(h, (unsigned long)cp))
				goto nomem;
			continue;
		}
		default:
			jp->p--;
			jerror(jp, "bad escape in string");
			return RK_ECORRUPT;
		}
		if (scratch_put(h, &out, 1))
			goto nomem;
	}
	*len = h->scratch_len - *off;
	return 0;
nomem:
	set_error(h, RK_ENOMEM, "out of memory");
	return RK_ENOMEM;
}

/* Parses a number (RFC 8259 grammar).  Integers must fit in int64. */
static int parse_number(struct jparser *jp, struct jscalar *out)
{
	const char *s = jp->p;
	int neg = 0;
	if (jp->p < jp->end && *jp->p == '-') {
		neg = 1;
		jp->p++;
	}
	if (jp->p >= jp->end || *jp->p < '0' || *jp->p > '9') {
		jerror(jp, "bad number");
		return RK_ECORRUPT;
	}
	uint64_t mag = 0;
	int overflow = 0;
	if (*jp->p == '0') {
		jp->p++;
		if (jp->p < jp->end && *jp->p >= '0' && *jp->p <= '9') {
			jerror(jp, "leading zero in number");
			return RK_ECORRUPT;
		}
	} else {
		while (jp->p < jp->end && *jp->p >= '0' && *jp->p <= '9') {
			unsigned d = (unsigned)(*jp->p - '0');
			if (mag > (UINT64_MAX - d) / 10)
				overflow = 1;
			else
				mag = mag * 10 + d;
			jp->p++;
		}
	}
	int integral = 1;
	if (jp->p < jp->end && *jp->p == '.') {
		integral = 0;
		jp->p++;
		if (jp->p >= jp->end || *jp->p < '0' || *jp->p > '9') {
			jerror(jp, "bad number: no digit after '.'");
			return RK_ECORRUPT;
		}
		while (jp->p < jp->end && *jp->p >= '0' && *jp->p <= '9')
			jp->p++;
	}
	if (jp->p < jp->end && (*jp->p == 'e' || *jp->p == 'E')) {
		integral = 0;
		jp->p++;
		if (jp->p < jp->end && (*jp->p == '+' || *jp->p == '-'))
			jp->p++;
		if (jp->p >= jp->end || *jp->p < '0' || *jp->p > '9') {
			jerror(jp, "bad number: no digit in exponent");
			return RK_ECORRUPT;
		}
		while (jp->p < jp->end && *jp->p >= '0' && *jp->p <= '9')
			jp->p++;
	}
	if (!integral) {
		out->t = J_NUM;
		return 0;
	}
	uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
	if (overflow || mag > limit) {
		const char *here = jp->p;
		jp->p = s;
		jerror(jp, "integer out of 64-bit range");
		jp->p = here;
		return RK_ECORRUPT;
	}
	out->t = J_INT;
	/* -(2^63) has no positive int64 twin, so negate in unsigned. */
	out->i = neg ? (int64_t)(0 - mag) : (int64_t)mag;
	return 0;
}

static int parse_literal(struct jparser *jp, const char *word)
{
	size_t n = strlen(word);
	if ((size_t)(jp->end - jp->p) < n || memcmp(jp->p, word, n) != 0) {
		jerror(jp, "unexpected character");
		return RK_ECORRUPT;
	}
	jp->p += n;
	return 0;
}

static int parse_value(struct jparser *jp, int depth, struct jfield *out);

/* Parses an array at jp->p ('[').  When out is given, its first two
 * elements are kept if they are scalars. */
static int parse_array(struct jparser *jp, int depth, struct jfield *out)
{
	jp->p++;
	size_t n = 0;
	skip_ws(jp);
	if (jp->p < jp->end && *jp->p == ']') {
		jp->p++;
		goto done;
	}
	for (;;) {
		struct jfield el;
		int rc = parse_value(jp, depth + 1, &el);
		if (rc)
			return rc;
		if (out && n < 2)
			out->el[n] = el.v;
		n++;
		skip_ws(jp);
		if (jp->p < jp->end && *jp->p == ',') {
			jp->p++;
			continue;
		}
		if (jp->p < jp->end && *jp->p == ']') {
			jp->p++;
			break;
		}
		jerror(jp, "expected ',' or ']' in array");
		return RK_ECORRUPT;
	}
done:
	if (out) {
		out->v.t = J_ARR;
		out->n = n;
	}
	return 0;
}

/* Parses an object at jp->p ('{') nested inside an ignored field. */
static int parse_object(struct jparser *jp, int depth)
{
	jp->p++;
	skip_ws(jp);
	if (jp->p < jp->end && *jp->p == '}') {
		jp->p++;
		return 0;
	}
	for (;;) {
		skip_ws(jp);
		if (jp->p >= jp->end || *jp->p != '"') {
			jerror(jp, "expected a field name");
			return RK_ECORRUPT;
		}
		size_t off, len;
		int rc = parse_string(jp, &off, &len);
		if (rc)
			return rc;
		skip_ws(jp);
		if (jp->p >= jp->end || *jp->p != ':') {
			jerror(jp, "expected ':' after field name");
			return RK_ECORRUPT;
		}
		jp->p++;
		struct jfield v;
		rc = parse_value(jp, depth + 1, &v);
		if (rc)
			return rc;
		skip_ws(jp);
		if (jp->p < jp->end && *jp->p == ',') {
			jp->p++;
			continue;
		}
		if (jp->p < jp->end && *jp->p == '}') {
			jp->p++;
			return 0;
		}
		jerror(jp, "expected ',' or '}' in object");
		return RK_ECORRUPT;
	}
}

/* Parses any JSON value into out (a scalar, or an array's first two
 * elements).  depth counts enclosing arrays and objects. */
static int parse_value(struct jparser *jp, int depth, struct jfield *out)
{
	memset(out, 0, sizeof(*out));
	if (depth > LINCHECK_JSON_MAX_DEPTH) {
		jerror(jp, "nested too deeply");
		return RK_ECORRUPT;
	}
	skip_ws(jp);
	if (jp->p >= jp->end) {
		jerror(jp, "expected a value");
		return RK_ECORRUPT;
	}
	switch (*jp->p) {
	case '"':
		out->v.t = J_STR;
		return parse_string(jp, &out->v.s_off, &out->v.s_len);
	case '[':
		return parse_array(jp, depth, out);
	case '{':
		out->v.t = J_OBJ;
		return parse_object(jp, depth);
	case 't':
		out->v.t = J_BOOL;
		out->v.b = 1;
		return parse_literal(jp, "true");
	case 'f':
		out->v.t = J_BOOL;
		return parse_literal(jp, "false");
	case 'n':
		out->v.t = J_NULL;
		return parse_literal(jp, "null");
	default:
		if (*jp->p == '-' || (*jp->p >= '0' && *jp->p <= '9'))
			return parse_number(jp, &out->v);
		jerror(jp, "unexpected character");
		return RK_ECORRUPT;
	}
}

/* Parses one line: an object whose named fields land in f[]. */
static int parse_line(struct jparser *jp, struct jfield f[F_COUNT])
{
	for (int i = 0; i < F_COUNT; i++)
		memset(&f[i], 0, sizeof(f[i]));
	skip_ws(jp);
	if (jp->p >= jp->end) {
		jerror(jp, "empty line");
		return RK_ECORRUPT;
	}
	if (*jp->p != '{') {
		jerror(jp, "expected a JSON object");
		return RK_ECORRUPT;
	}
	jp->p++;
	skip_ws(jp);
	if (jp->p < jp->end && *jp->p == '}') {
		jp->p++;
		goto tail;
	}
	for (;;) {
		skip_ws(jp);
		if (jp->p >= jp->end || *jp->p != '"') {
			jerror(jp, "expected a field name");
			return RK_ECORRUPT;
		}
		const char *name_at = jp->p;
		size_t off, len;
		int rc = parse_string(jp, &off, &len);
		if (rc)
			return rc;
		int which = -1;
		for (int i = 0; i < F_COUNT; i++) {
			if (strlen(field_names[i]) == len &&
			    memcmp(jp->h->scratch + off, field_names[i], len) ==
				0) {
				which = i;
				break;
			}
		}
		skip_ws(jp);
		if (jp->p >= jp->end || *jp->p != ':') {
			jerror(jp, "expected ':' after field name");
			return RK_ECORRUPT;
		}
		jp->p++;
		if (which >= 0 && f[which].v.t != J_NONE) {
			jp->p = name_at;
			set_error(jp->h, RK_ECORRUPT,
				  "duplicate field \"%s\" (column %zu)",
				  field_names[which],
				  (size_t)(name_at - jp->start) + 1);
			return RK_ECORRUPT;
		}
		struct jfield v;
		rc = parse_value(jp, 1, &v);
		if (rc)
			return rc;
		if (which >= 0)
			f[which] = v;
		skip_ws(jp);
		if (jp->p < jp->end && *jp->p == ',') {
			jp->p++;
			continue;
		}
		if (jp->p < jp->end && *jp->p == '}') {
			jp->p++;
			break;
		}
		jerror(jp, "expected ',' or '}' after a field");
		return RK_ECORRUPT;
	}
tail:
	skip_ws(jp);
	if (jp->p != jp->end) {
		jerror(jp, "trailing characters after the object");
		return RK_ECORRUPT;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* Events                                                               */

static const char *const f_names[] = {"read", "write", "cas"};

enum etype { E_INVOKE, E_OK, E_FAIL, E_INFO };
static const char *const type_names[] = {"invoke", "ok", "fail", "info"};

/* Index of the scalar string s in names[], or -1. */
static int str_index(const struct lincheck_history *h, const struct jscalar *s,
		     const char *const *names, int n)
{
	if (s->t != J_STR)
		return -1;
	for (int i = 0; i < n; i++)
		if (strlen(names[i]) == s->s_len &&
		    memcmp(h->scratch + s->s_off, names[i], s->s_len) == 0)
			return i;
	return -1;
}

/* Interns a scalar that must be an integer, a string or (when allow_null)
 * null.  Returns 0, RK_ECORRUPT (recorded, naming what) or RK_ENOMEM. */
static int scalar_id(struct lincheck_history *h, const struct jscalar *s,
		     int allow_null, const char *what, uint32_t *id)
{
	struct lincheck_value v = {0};
	switch (s->t) {
	case J_NULL:
		if (!allow_null)
			break;
		v.type = LINCHECK_VNULL;
		goto ok;
	case J_INT:
		v.type = LINCHECK_VINT;
		v.i = s->i;
		goto ok;
	case J_STR:
		v.type = LINCHECK_VSTR;
		v.s = (const uint8_t *)h->scratch + s->s_off;
		v.len = s->s_len;
		goto ok;
	default:
		break;
	}
	set_error(h, RK_ECORRUPT, "%s must be an integer, a string%s", what,
		  allow_null ? " or null" : "");
	return RK_ECORRUPT;
ok:
	if (intern(h, &v, id)) {
		set_error(h, RK_ENOMEM, "out of memory");
		return RK_ENOMEM;
	}
	return 0;
}

/* The value ids an invoke of f carries in field value. */
static int op_args(struct lincheck_history *h, enum lincheck_f f,
		   const struct jfield *value, uint32_t *a, uint32_t *b)
{
	*a = *b = LINCHECK_NULL;
	if (f == LINCHECK_READ)
		return 0;
	if (value->v.t == J_NONE) {
		set_error(h, RK_ECORRUPT, "%s without a value", f_names[f]);
		return RK_ECORRUPT;
	}
	if (f == LINCHECK_WRITE)
		return scalar_id(h, &value->v, 1, "a write's value", a);
	if (value->v.t != J_ARR || value->n != 2) {
		set_error(h, RK_ECORRUPT,
			  "a cas value must be [expected, new]");
		return RK_ECORRUPT;
	}
	int rc = scalar_id(h, &value->el[0], 1, "a cas's expected value", a);
	if (rc)
		return rc;
	return scalar_id(h, &value->el[1], 1, "a cas's new value", b);
}

static int on_invoke(struct lincheck_history *h, struct proc *pr,
		     int64_t process, enum lincheck_f f, uint32_t key,
		     const struct jfield *value, int64_t time)
{
	if (pr->open) {
		const struct lincheck_op *o =
		    &h->keys[pr->key_idx].ops[pr->op_idx];
		set_error(h, RK_ECORRUPT,
			  "process %" PRId64 " invokes while its operation "
			  "from line %lu is open",
			  process, o->call_line);
		return RK_ECORRUPT;
	}
	uint32_t a, b;
	int rc = op_args(h, f, value, &a, &b);
	if (rc)
		return rc;
	long k = key_get(h, key);
	struct lincheck_op *op = k < 0 ? NULL : op_append(&h->keys[k]);
	if (!op) {
		set_error(h, RK_ENOMEM, "out of memory");
		return RK_ENOMEM;
	}
	op->process = process;
	op->f = f;
	op->outcome = LINCHECK_UNKNOWN;
	op->value = a;
	op->cas_new = b;
	op->call = time;
	op->ret = LINCHECK_TIME_INF;
	op->call_line = h->line;
	pr->open = 1;
	pr->key_idx = (uint32_t)k;
	pr->op_idx = h->keys[k].n - 1;
	return 0;
}

static int on_complete(struct lincheck_history *h, struct proc *pr,
		       int64_t process, enum etype type, enum lincheck_f f,
		       uint32_t key, const struct jfield *fields, int64_t time)
{
	if (!pr->open) {
		set_error(h, RK_ECORRUPT,
			  "%s for process %" PRId64
			  ", which has no open operation",
			  type_names[type], process);
		return RK_ECORRUPT;
	}
	struct key_ops *k = &h->keys[pr->key_idx];
	struct lincheck_op *op = &k->ops[pr->op_idx];
	if (op->f != f) {
		set_error(h, RK_ECORRUPT,
			  "%s %s completes process %" PRId64
			  "'s %s invoked on line %lu",
			  type_names[type], f_names[f], process, f_names[op->f],
			  op->call_line);
		return RK_ECORRUPT;
	}
	if (k->key != key) {
		set_error(h, RK_ECORRUPT,
			  "key differs from the invoke on line %lu",
			  op->call_line);
		return RK_ECORRUPT;
	}
	const struct jfield *value = &fields[F_VALUE];
	if (f != LINCHECK_READ && value->v.t != J_NONE) {
		uint32_t a, b;
		int rc = op_args(h, f, value, &a, &b);
		if (rc)
			return rc;
		if (a != op->value || b != op->cas_new) {
			set_error(h, RK_ECORRUPT,
				  "value differs from the invoke on line %lu",
				  op->call_line);
			return RK_ECORRUPT;
		}
	}
	pr->open = 0;
	if (type == E_FAIL) {
		op->call_line = OP_DROPPED_LINE;
		return 0;
	}
	op->ret_line = h->line;
	if (type == E_INFO)
		return 0; /* stays unknown, returning at infinity */
	if (f == LINCHECK_READ) {
		if (value->v.t == J_NONE) {
			set_error(h, RK_ECORRUPT, "read ok without a value");
			return RK_ECORRUPT;
		}
		int rc =
		    scalar_id(h, &value->v, 1, "a read's value", &op->value);
		if (rc)
			return rc;
	}
	if (f == LINCHECK_CAS) {
		const struct jfield *ap = &fields[F_APPLIED];
		if (ap->v.t != J_BOOL) {
			set_error(h, RK_ECORRUPT,
				  "cas ok needs \"applied\": true or false");
			return RK_ECORRUPT;
		}
		op->applied = ap->v.b;
	}
	op->outcome = LINCHECK_OK;
	op->ret = time;
	return 0;
}

int lincheck_history_feed(struct lincheck_history *h, const char *line,
			  size_t len)
{
	if (h->status)
		return h->status;
	h->line++;
	if (h->finished) {
		set_error(h, RK_EINVALID, "history already finished");
		return h->status;
	}
	h->scratch_len = 0;
	struct jparser jp = {h, line, line, line + len};
	struct jfield f[F_COUNT];
	int rc = parse_line(&jp, f);
	if (rc)
		return rc;

	for (int i = 0; i < F_COUNT; i++) {
		if (i == F_VALUE || i == F_APPLIED || f[i].v.t != J_NONE)
			continue;
		set_error(h, RK_ECORRUPT, "missing field \"%s\"",
			  field_names[i]);
		return RK_ECORRUPT;
	}
	if (f[F_PROCESS].v.t != J_INT) {
		set_error(h, RK_ECORRUPT, "process must be an integer");
		return RK_ECORRUPT;
	}
	if (f[F_TIME].v.t != J_INT) {
		set_error(h, RK_ECORRUPT, "time must be an integer");
		return RK_ECORRUPT;
	}
	int type = str_index(h, &f[F_TYPE].v, type_names, 4);
	if (type < 0) {
		set_error(h, RK_ECORRUPT,
			  "type must be \"invoke\", \"ok\", \"fail\" or "
			  "\"info\"");
		return RK_ECORRUPT;
	}
	int fn = str_index(h, &f[F_F].v, f_names, 3);
	if (fn < 0) {
		set_error(h, RK_ECORRUPT,
			  "f must be \"read\", \"write\" or \"cas\"");
		return RK_ECORRUPT;
	}
	int64_t time = f[F_TIME].v.i;
	if (h->have_time && time < h->last_time) {
		set_error(h, RK_ECORRUPT,
			  "time %" PRId64
			  " is before the previous line's %" PRId64,
			  time, h->last_time);
		return RK_ECORRUPT;
	}
	if (time == LINCHECK_TIME_INF) {
		/* Reserved: it marks an unknown outcome's return. */
		set_error(h, RK_ECORRUPT, "time %" PRId64 " is reserved", time);
		return RK_ECORRUPT;
	}
	uint32_t key;
	rc = scalar_id(h, &f[F_KEY].v, 0, "key", &key);
	if (rc)
		return rc;
	int64_t process = f[F_PROCESS].v.i;
	struct proc *pr = proc_get(h, process);
	if (!pr) {
		set_error(h, RK_ENOMEM, "out of memory");
		return RK_ENOMEM;
	}
	if (type == E_INVOKE)
		rc = on_invoke(h, pr, process, (enum lincheck_f)fn, key,
			       &f[F_VALUE], time);
	else
		rc = on_complete(h, pr, process, (enum etype)type,
				 (enum lincheck_f)fn, key, f, time);
	if (rc)
		return rc;
	h->last_time = time;
	h->have_time = 1;
	return 0;
}

int lincheck_history_finish(struct lincheck_history *h)
{
	if (h->status)
		return h->status;
	if (h->finished)
		return 0;
	h->finished = 1;
	/* Open invokes already look unknown (ret = infinity); dropping the
	 * failed ops is all that is left. */
	for (size_t k = 0; k < h->nkeys; k++) {
		struct key_ops *ko = &h->keys[k];
		size_t w = 0;
		for (size_t r = 0; r < ko->n; r++)
			if (ko->ops[r].call_line != OP_DROPPED_LINE)
				ko->ops[w++] = ko->ops[r];
		ko->n = w;
	}
	return 0;
}

int lincheck_history_read(struct lincheck_history *h, FILE *in)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int rc = 0;
	errno = 0;
	while ((n = getline(&line, &cap, in)) >= 0) {
		size_t len = (size_t)n;
		if (len && line[len - 1] == '\n')
			len--;
		rc = lincheck_history_feed(h, line, len);
		if (rc)
			goto out;
	}
	if (ferror(in)) {
		int e = errno;
		h->line++;
		set_error(h, RK_EIO, "read error: %s", strerror(e ? e : EIO));
		rc = RK_EIO;
		goto out;
	}
	rc = lincheck_history_finish(h);
out:
	free(line);
	return rc;
}

int lincheck_history_load(const char *path, struct lincheck_history **out,
			  char *err, size_t errlen)
{
	*out = NULL;
	if (errlen)
		err[0] = '\0';
	FILE *in = fopen(path, "r");
	if (!in) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return RK_EIO;
	}
	struct lincheck_history *h = lincheck_history_new(path);
	if (!h) {
		fclose(in);
		snprintf(err, errlen, "%s: out of memory", path);
		return RK_ENOMEM;
	}
	int rc = lincheck_history_read(h, in);
	fclose(in);
	if (rc) {
		snprintf(err, errlen, "%s", lincheck_history_error(h));
		lincheck_history_free(h);
		return rc;
	}
	*out = h;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Accessors and printing                                               */

const char *lincheck_history_error(const struct lincheck_history *h)
{
	return h->err;
}

const char *lincheck_history_name(const struct lincheck_history *h)
{
	return h->name;
}

size_t lincheck_history_nkeys(const struct lincheck_history *h)
{
	return h->nkeys;
}

uint32_t lincheck_history_key(const struct lincheck_history *h, size_t k)
{
	return h->keys[k].key;
}

const struct lincheck_op *lincheck_history_ops(const struct lincheck_history *h,
					       size_t k, size_t *n)
{
	*n = h->keys[k].n;
	return h->keys[k].ops;
}

const struct lincheck_value *
lincheck_history_value(const struct lincheck_history *h, uint32_t id)
{
	return &h->values[id];
}

void lincheck_value_print_json(FILE *out, const struct lincheck_value *v)
{
	if (v->type == LINCHECK_VNULL) {
		fputs("null", out);
		return;
	}
	if (v->type == LINCHECK_VINT) {
		fprintf(out, "%" PRId64, v->i);
		return;
	}
	/* The bytes came from valid UTF-8 text, so only the characters JSON
	 * forbids raw need escaping. */
	fputc('"', out);
	for (size_t i = 0; i < v->len; i++) {
		unsigned char c = v->s[i];
		if (c == '"' || c == '\\')
			fprintf(out, "\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			fprintf(out, "\\u%04x", c);
		else
			fputc(c, out);
	}
	fputc('"', out);
}

void lincheck_value_print(FILE *out, const struct lincheck_value *v)
{
	if (v->type != LINCHECK_VSTR) {
		lincheck_value_print_json(out, v);
		return;
	}
	fputc('"', out);
	for (size_t i = 0; i < v->len; i++) {
		unsigned char c = v->s[i];
		if (c == '"' || c == '\\')
			fprintf(out, "\\%c", c);
		else if (c == '\n')
			fputs("\\n", out);
		else if (c == '\t')
			fputs("\\t", out);
		else if (c < 0x20 || c >= 0x7f)
			fprintf(out, "\\x%02x", c);
		else
			fputc(c, out);
	}
	fputc('"', out);
}
