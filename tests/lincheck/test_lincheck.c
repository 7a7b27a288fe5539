/* test_lincheck.c: the linearizability checker against histories with
 * known verdicts (the reference set, hand-written cases, and randomized
 * histories of a simulated register), and the reader against bad input. */
#include <criterion/criterion.h>

#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "history.h"
#include "lincheck.h"
#include "lincheck_cli.h"
#include "rng.h"

#ifndef LINCHECK_HISTORIES
#error "LINCHECK_HISTORIES must name the reference histories directory"
#endif

/* The reference set has 50 files; fewer means the directory was not found
 * or not copied, and the test must not pass by checking nothing. */
#define MIN_REFERENCE_FILES 50

/* ------------------------------------------------------------------ */
/* Helpers                                                              */

/* Feeds text (lines separated by '\n') into a new history named "t".
 * Returns the first error code; *out is the history either way. */
static int feed_text(const char *text, struct lincheck_history **out)
{
	struct lincheck_history *h = lincheck_history_new("t");
	cr_assert_not_null(h);
	*out = h;
	const char *p = text;
	while (*p) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		int rc = lincheck_history_feed(h, p, len);
		if (rc)
			return rc;
		p += len + (nl ? 1 : 0);
	}
	return lincheck_history_finish(h);
}

static struct lincheck_history *parse_ok(const char *text)
{
	struct lincheck_history *h;
	int rc = feed_text(text, &h);
	cr_assert_eq(rc, 0, "parse failed: %s", lincheck_history_error(h));
	return h;
}

/* Index of the key printed as name (a string key), or -1. */
static long key_index(const struct lincheck_history *h, const char *name)
{
	for (size_t k = 0; k < lincheck_history_nkeys(h); k++) {
		const struct lincheck_value *v =
		    lincheck_history_value(h, lincheck_history_key(h, k));
		if (v->type == LINCHECK_VSTR && v->len == strlen(name) &&
		    memcmp(v->s, name, v->len) == 0)
			return (long)k;
	}
	return -1;
}

static enum lincheck_verdict check_key(const struct lincheck_history *h,
				       size_t k)
{
	struct lincheck_result *r;
	cr_assert_eq(lincheck_check_key(h, k, NULL, &r), 0);
	enum lincheck_verdict v = lincheck_result_verdict(r);
	lincheck_result_free(r);
	return v;
}

/* The verdict on the only key of text. */
static enum lincheck_verdict verdict(const char *text)
{
	struct lincheck_history *h = parse_ok(text);
	cr_assert_eq(lincheck_history_nkeys(h), 1);
	enum lincheck_verdict v = check_key(h, 0);
	lincheck_history_free(h);
	return v;
}

/* Compact JSON lines: I(p, f, value, t) invokes; OK, INFO, FAIL complete. */
#define EV(p, type, f, extra, t)                                               \
	"{\"process\":" #p ",\"type\":\"" type "\",\"f\":\"" f                 \
	"\",\"key\":\"r\"" extra ",\"time\":" #t "}\n"
#define INV_R(p, t) EV(p, "invoke", "read", ",\"value\":null", t)
#define OK_R(p, v, t) EV(p, "ok", "read", ",\"value\":" #v, t)
#define INV_W(p, v, t) EV(p, "invoke", "write", ",\"value\":" #v, t)
#define OK_W(p, v, t) EV(p, "ok", "write", ",\"value\":" #v, t)
#define INFO_W(p, v, t) EV(p, "info", "write", ",\"value\":" #v, t)
#define FAIL_W(p, v, t) EV(p, "fail", "write", ",\"value\":" #v, t)
#define INV_C(p, e, n, t)                                                      \
	EV(p, "invoke", "cas", ",\"value\":[" #e "," #n "]", t)
#define OK_C(p, e, n, a, t)                                                    \
	EV(p, "ok", "cas", ",\"value\":[" #e "," #n "],\"applied\":" #a, t)
#define INFO_C(p, e, n, t) EV(p, "info", "cas", ",\"value\":[" #e "," #n "]", t)

/* ------------------------------------------------------------------ */
/* The reference histories                                              */

static int ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n >= m && strcmp(s + n - m, suffix) == 0;
}

Test(lincheck, reference_histories_match_their_names)
{
	DIR *d = opendir(LINCHECK_HISTORIES);
	cr_assert_not_null(d, "cannot open %s", LINCHECK_HISTORIES);
	int files = 0, nonlin = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (!ends_with(de->d_name, ".jsonl"))
			continue;
		int expect_bad =
		    ends_with(de->d_name, "-nonlinearizable.jsonl");
		cr_assert(expect_bad ||
			      ends_with(de->d_name, "-linearizable.jsonl"),
			  "%s: name gives no verdict", de->d_name);
		char path[4096], err[1024];
		snprintf(path, sizeof(path), "%s/%s", LINCHECK_HISTORIES,
			 de->d_name);
		struct lincheck_history *h;
		cr_assert_eq(lincheck_history_load(path, &h, err, sizeof(err)),
			     0, "%s", err);
		cr_assert_eq(lincheck_history_nkeys(h), 1, "%s", path);
		enum lincheck_verdict v = check_key(h, 0);
		cr_expect_eq(v,
			     expect_bad ? LINCHECK_NOT_LINEARIZABLE
					: LINCHECK_LINEARIZABLE,
			     "%s: verdict %d", de->d_name, (int)v);
		lincheck_history_free(h);
		files++;
		nonlin += expect_bad;
	}
	closedir(d);
	cr_assert_geq(files, MIN_REFERENCE_FILES, "only %d histories in %s",
		      files, LINCHECK_HISTORIES);
	cr_assert(nonlin > 0 && nonlin < files);
}

/* Text of a reference file, one malloc'd string per line. */
static char **read_lines(const char *path, size_t *n)
{
	FILE *f = fopen(path, "r");
	cr_assert_not_null(f, "%s", path);
	char **lines = NULL;
	size_t cap = 0;
	*n = 0;
	char *line = NULL;
	size_t lcap = 0;
	ssize_t len;
	while ((len = getline(&line, &lcap, f)) >= 0) {
		if (*n == cap) {
			cap = cap ? cap * 2 : 256;
			lines = realloc(lines, cap * sizeof(*lines));
			cr_assert_not_null(lines);
		}
		lines[(*n)++] = strdup(line);
	}
	free(line);
	fclose(f);
	return lines;
}

/* True when some op of ops[0, n) other than skip may leave the register
 * at value id v: a write of v or a cas to v, whatever its outcome. */
static int may_set(const struct lincheck_op *ops, size_t n, uint32_t v,
		   int64_t before, int *late)
{
	int any = 0;
	for (size_t i = 0; i < n; i++) {
		const struct lincheck_op *o = &ops[i];
		int sets = (o->f == LINCHECK_WRITE && o->value == v) ||
			   (o->f == LINCHECK_CAS && o->cas_new == v);
		if (!sets)
			continue;
		any = 1;
		if (o->ret >= before)
			*late = 1;
	}
	return any;
}

/* Plants a stale read in each linearizable reference history where one
 * can be planted soundly: a read R that starts after a write W of x
 * completed is changed to return y, a value the register held before W
 * started (an earlier read saw it), when no op that could set y is still
 * running once W starts.  R must then follow W, after which nothing makes
 * the register y again, so the history is not linearizable. */
Test(lincheck, planted_stale_read_is_found)
{
	DIR *d = opendir(LINCHECK_HISTORIES);
	cr_assert_not_null(d);
	int planted = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (!ends_with(de->d_name, "-linearizable.jsonl") ||
		    ends_with(de->d_name, "-nonlinearizable.jsonl"))
			continue;
		char path[4096], err[1024];
		snprintf(path, sizeof(path), "%s/%s", LINCHECK_HISTORIES,
			 de->d_name);
		struct lincheck_history *h;
		cr_assert_eq(lincheck_history_load(path, &h, err, sizeof(err)),
			     0, "%s", err);
		size_t n;
		const struct lincheck_op *ops = lincheck_history_ops(h, 0, &n);
		long wi = -1, ri = -1;
		uint32_t stale = 0;
		for (size_t w = 0; w < n && ri < 0; w++) {
			const struct lincheck_op *W = &ops[w];
			if (W->f != LINCHECK_WRITE || W->outcome != LINCHECK_OK)
				continue;
			for (size_t r0 = 0; r0 < n && ri < 0; r0++) {
				const struct lincheck_op *R0 = &ops[r0];
				if (R0->f != LINCHECK_READ ||
				    R0->outcome != LINCHECK_OK ||
				    R0->ret >= W->call || R0->value == W->value)
					continue;
				int late = 0;
				may_set(ops, n, R0->value, W->call, &late);
				if (late)
					continue;
				for (size_t r = w + 1; r < n; r++) {
					const struct lincheck_op *R = &ops[r];
					if (R->f == LINCHECK_READ &&
					    R->outcome == LINCHECK_OK &&
					    R->call > W->ret &&
					    R->value != R0->value) {
						wi = (long)w;
						ri = (long)r;
						stale = R0->value;
						break;
					}
				}
			}
		}
		if (ri < 0) {
			lincheck_history_free(h);
			continue;
		}
		cr_assert_eq(check_key(h, 0), LINCHECK_LINEARIZABLE);

		/* Rewrite R's completion line with the stale value. */
		const struct lincheck_op *R = &ops[ri];
		size_t nlines;
		char **lines = read_lines(path, &nlines);
		char *text = NULL;
		size_t tlen = 0;
		FILE *mem = open_memstream(&text, &tlen);
		cr_assert_not_null(mem);
		for (size_t i = 0; i < nlines; i++) {
			if (i + 1 != R->ret_line) {
				fputs(lines[i], mem);
				continue;
			}
			fprintf(mem,
				"{\"process\":%lld,\"type\":\"ok\",\"f\":"
				"\"read\",\"key\":\"r\",\"time\":%lld,"
				"\"value\":",
				(long long)R->process, (long long)R->ret);
			lincheck_value_print_json(
			    mem, lincheck_history_value(h, stale));
			fputs("}\n", mem);
		}
		fclose(mem);
		for (size_t i = 0; i < nlines; i++)
			free(lines[i]);
		free(lines);

		struct lincheck_history *bad = parse_ok(text);
		cr_expect_eq(check_key(bad, 0), LINCHECK_NOT_LINEARIZABLE,
			     "%s: stale read on line %lu (after write on "
			     "line %lu) not found",
			     de->d_name, R->ret_line, ops[wi].ret_line);
		lincheck_history_free(bad);
		free(text);
		lincheck_history_free(h);
		planted++;
	}
	closedir(d);
	cr_log_info("stale reads planted in %d histories", planted);
	cr_assert_geq(planted, 3, "stale reads planted in only %d files",
		      planted);
}

/* ------------------------------------------------------------------ */
/* Hand-written cases                                                   */

Test(lincheck, synthetic_stale_read_is_explained)
{
	const char *text = INV_W(0, 1, 1) OK_W(0, 1, 2) /* op 0 */
	    INV_W(1, 2, 3) OK_W(1, 2, 4)		/* op 1 */
	    INV_R(2, 5) OK_R(2, 2, 6)			/* op 2 */
	    INV_R(0, 7) OK_R(0, 1, 8);			/* op 3: stale */
	struct lincheck_history *h = parse_ok(text);
	struct lincheck_result *r;
	cr_assert_eq(lincheck_check_key(h, 0, NULL, &r), 0);
	cr_assert_eq(lincheck_result_verdict(r), LINCHECK_NOT_LINEARIZABLE);
	size_t prefix;
	cr_assert_eq(lincheck_result_blocked(r, &prefix), 3);
	cr_assert_eq(prefix, 3);

	char *out = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&out, &len);
	lincheck_result_print(r, mem, "t");
	fclose(mem);
	cr_assert(strstr(out, "t: key r: NOT linearizable (4 ops): p0 read 1 "
			      "(t=7..8, lines 7-8)") != NULL,
		  "%s", out);
	cr_assert(strstr(out, "register after the prefix: 2\n") != NULL, "%s",
		  out);
	cr_assert(strstr(out, "impossible: register is 2") != NULL, "%s", out);
	free(out);

	out = NULL;
	mem = open_memstream(&out, &len);
	lincheck_result_print_json(r, mem, "t");
	fclose(mem);
	cr_assert(strstr(out, "\"verdict\":\"not_linearizable\"") != NULL, "%s",
		  out);
	cr_assert(strstr(out, "\"prefix_len\":3") != NULL, "%s", out);
	free(out);
	lincheck_result_free(r);
	lincheck_history_free(h);
}

Test(lincheck, empty_and_sequential)
{
	struct lincheck_history *h = parse_ok("");
	cr_assert_eq(lincheck_history_nkeys(h), 0);
	lincheck_history_free(h);
	/* The register starts absent. */
	cr_assert_eq(verdict(INV_R(0, 1) OK_R(0, null, 2)),
		     LINCHECK_LINEARIZABLE);
	cr_assert_eq(verdict(INV_R(0, 1) OK_R(0, 0, 2)),
		     LINCHECK_NOT_LINEARIZABLE);
	cr_assert_eq(
	    verdict(INV_W(0, 5, 1) OK_W(0, 5, 2) INV_R(0, 3) OK_R(0, 5, 4)),
	    LINCHECK_LINEARIZABLE);
}

Test(lincheck, concurrent_writes_reads_see_either_order)
{
	/* Writes of 1 and 2 overlap; reads after both see the later one,
	 * whichever it was, consistently. */
	const char *writes =
	    INV_W(0, 1, 1) INV_W(1, 2, 2) OK_W(1, 2, 3) OK_W(0, 1, 4);
	char buf[2048];
	snprintf(buf, sizeof(buf), "%s%s%s", writes, INV_R(2, 5) OK_R(2, 1, 6),
		 INV_R(3, 7) OK_R(3, 1, 8));
	cr_assert_eq(verdict(buf), LINCHECK_LINEARIZABLE);
	snprintf(buf, sizeof(buf), "%s%s%s", writes, INV_R(2, 5) OK_R(2, 2, 6),
		 INV_R(3, 7) OK_R(3, 2, 8));
	cr_assert_eq(verdict(buf), LINCHECK_LINEARIZABLE);
	/* ... but not one order and then the other. */
	snprintf(buf, sizeof(buf), "%s%s%s", writes, INV_R(2, 5) OK_R(2, 2, 6),
		 INV_R(3, 7) OK_R(3, 1, 8));
	cr_assert_eq(verdict(buf), LINCHECK_NOT_LINEARIZABLE);
	/* A read overlapping both writes may see old, either, or ... */
	const char *r_over = INV_R(2, 0) INV_W(0, 1, 1) INV_W(1, 2, 2)
	    OK_W(1, 2, 3) OK_W(0, 1, 4);
	snprintf(buf, sizeof(buf), "%s%s", r_over, OK_R(2, null, 5));
	cr_assert_eq(verdict(buf), LINCHECK_LINEARIZABLE);
	snprintf(buf, sizeof(buf), "%s%s", r_over, OK_R(2, 2, 5));
	cr_assert_eq(verdict(buf), LINCHECK_LINEARIZABLE);
	/* ... but not a value nobody wrote. */
	snprintf(buf, sizeof(buf), "%s%s", r_over, OK_R(2, 3, 5));
	cr_assert_eq(verdict(buf), LINCHECK_NOT_LINEARIZABLE);
}

Test(lincheck, read_of_value_never_written)
{
	cr_assert_eq(
	    verdict(INV_W(0, 1, 1) OK_W(0, 1, 2) INV_R(1, 3) OK_R(1, 7, 4)),
	    LINCHECK_NOT_LINEARIZABLE);
	/* The integer 1 is not the string "1". */
	cr_assert_eq(
	    verdict(INV_W(0, 1, 1) OK_W(0, 1, 2) INV_R(1, 3) OK_R(1, "1", 4)),
	    LINCHECK_NOT_LINEARIZABLE);
}

Test(lincheck, unknown_outcomes_may_or_may_not_apply)
{
	/* An info write may have taken effect ... */
	cr_assert_eq(
	    verdict(INV_W(0, 1, 1) INFO_W(0, 1, 2) INV_R(1, 3) OK_R(1, 1, 4)),
	    LINCHECK_LINEARIZABLE);
	/* ... or not ... */
	cr_assert_eq(verdict(INV_W(0, 1, 1) INFO_W(0, 1, 2) INV_R(1, 3)
				 OK_R(1, null, 4)),
		     LINCHECK_LINEARIZABLE);
	/* ... or later than anything else: info returns at infinity. */
	cr_assert_eq(verdict(INV_W(0, 1, 1) INFO_W(0, 1, 2) INV_R(1, 3)
				 OK_R(1, null, 4) INV_R(1, 5) OK_R(1, 1, 6)),
		     LINCHECK_LINEARIZABLE);
	/* But once seen it cannot be undone. */
	cr_assert_eq(verdict(INV_W(0, 1, 1) INFO_W(0, 1, 2) INV_R(1, 3)
				 OK_R(1, 1, 4) INV_R(1, 5) OK_R(1, null, 6)),
		     LINCHECK_NOT_LINEARIZABLE);
	/* Nor take effect before its invoke. */
	cr_assert_eq(
	    verdict(INV_R(1, 1) OK_R(1, 1, 2) INV_W(0, 1, 3) INFO_W(0, 1, 4)),
	    LINCHECK_NOT_LINEARIZABLE);
	/* An invoke never completed is unknown too. */
	cr_assert_eq(verdict(INV_W(0, 1, 1) INV_R(1, 3) OK_R(1, 1, 4)),
		     LINCHECK_LINEARIZABLE);
	cr_assert_eq(verdict(INV_W(0, 1, 1) INV_R(1, 3) OK_R(1, null, 4)),
		     LINCHECK_LINEARIZABLE);
	/* A failed write did not happen. */
	cr_assert_eq(
	    verdict(INV_W(0, 1, 1) FAIL_W(0, 1, 2) INV_R(1, 3) OK_R(1, 1, 4)),
	    LINCHECK_NOT_LINEARIZABLE);
	/* An unknown cas applies iff the register held its expected value
	 * when it took effect: here it may have turned 1 into 2. */
	cr_assert_eq(verdict(INV_W(0, 1, 1) OK_W(0, 1, 2) INV_C(1, 1, 2, 3)
				 INFO_C(1, 1, 2, 4) INV_R(2, 5) OK_R(2, 2, 6)),
		     LINCHECK_LINEARIZABLE);
	cr_assert_eq(verdict(INV_W(0, 1, 1) OK_W(0, 1, 2) INV_C(1, 1, 2, 3)
				 INFO_C(1, 1, 2, 4) INV_R(2, 5) OK_R(2, 1, 6)),
		     LINCHECK_LINEARIZABLE);
	/* ... but not when the register never held 3. */
	cr_assert_eq(verdict(INV_W(0, 1, 1) OK_W(0, 1, 2) INV_C(1, 3, 2, 3)
				 INFO_C(1, 3, 2, 4) INV_R(2, 5) OK_R(2, 2, 6)),
		     LINCHECK_NOT_LINEARIZABLE);
	/* Unknown reads constrain nothing. */
	cr_assert_eq(verdict(INV_W(0, 1, 1) OK_W(0, 1, 2) INV_R(1, 3)
				 EV(1, "info", "read", "", 4)),
		     LINCHECK_LINEARIZABLE);
}

Test(lincheck, cas_applied_and_not)
{
	const char *w1 = INV_W(0, 1, 1) OK_W(0, 1, 2);
	char buf[2048];
	snprintf(buf, sizeof(buf), "%s%s", w1,
		 INV_C(1, 1, 2, 3) OK_C(1, 1, 2, true, 4) INV_R(2, 5)
		     OK_R(2, 2, 6));
	cr_assert_eq(verdict(buf), LINCHECK_LINEARIZABLE);
	/* Applied, so the register must have been 1: not after a write 3. */
	snprintf(buf, sizeof(buf), "%s%s", w1,
		 INV_W(0, 3, 3) OK_W(0, 3, 4) INV_C(1, 1, 2, 5)
		     OK_C(1, 1, 2, true, 6));
	cr_assert_eq(verdict(buf), LINCHECK_NOT_LINEARIZABLE);
	/* Not applied although the register held 1: a violation ... */
	snprintf(buf, sizeof(buf), "%s%s", w1,
		 INV_C(1, 1, 2, 3) OK_C(1, 1, 2, false, 4));
	cr_assert_eq(verdict(buf), LINCHECK_NOT_LINEARIZABLE);
	/* ... fine when it held something else ... */
	snprintf(buf, sizeof(buf), "%s%s", w1,
		 INV_C(1, 0, 2, 3) OK_C(1, 0, 2, false, 4) INV_R(2, 5)
		     OK_R(2, 1, 6));
	cr_assert_eq(verdict(buf), LINCHECK_LINEARIZABLE);
	/* ... or when a concurrent write may have changed it first. */
	snprintf(buf, sizeof(buf), "%s%s", w1,
		 INV_W(0, 3, 3) INV_C(1, 1, 2, 4) OK_C(1, 1, 2, false, 5)
		     OK_W(0, 3, 6));
	cr_assert_eq(verdict(buf), LINCHECK_LINEARIZABLE);
	/* A cas on the absent register expects null. */
	cr_assert_eq(verdict(INV_C(0, null, 1, 1) OK_C(0, null, 1, true, 2)
				 INV_R(0, 3) OK_R(0, 1, 4)),
		     LINCHECK_LINEARIZABLE);
}

Test(lincheck, per_key_verdicts)
{
	const char *text =
	    "{\"process\":0,\"type\":\"invoke\",\"f\":\"write\",\"key\":\"a\","
	    "\"value\":1,\"time\":1}\n"
	    "{\"process\":0,\"type\":\"ok\",\"f\":\"write\",\"key\":\"a\","
	    "\"value\":1,\"time\":2}\n"
	    "{\"process\":1,\"type\":\"invoke\",\"f\":\"write\",\"key\":\"b\","
	    "\"value\":\"x\",\"time\":3}\n"
	    "{\"process\":1,\"type\":\"ok\",\"f\":\"write\",\"key\":\"b\","
	    "\"value\":\"x\",\"time\":4}\n"
	    /* b's value on a: a is fine as long as a reads its own. */
	    "{\"process\":2,\"type\":\"invoke\",\"f\":\"read\",\"key\":\"a\","
	    "\"time\":5}\n"
	    "{\"process\":2,\"type\":\"ok\",\"f\":\"read\",\"key\":\"a\","
	    "\"value\":1,\"time\":6}\n"
	    "{\"process\":2,\"type\":\"invoke\",\"f\":\"read\",\"key\":\"b\","
	    "\"time\":7}\n"
	    "{\"process\":2,\"type\":\"ok\",\"f\":\"read\",\"key\":\"b\","
	    "\"value\":1,\"time\":8}\n"
	    "{\"process\":3,\"type\":\"invoke\",\"f\":\"read\",\"key\":7,"
	    "\"time\":9}\n"
	    "{\"process\":3,\"type\":\"ok\",\"f\":\"read\",\"key\":7,\"value\":"
	    "null,\"time\":10}\n";
	struct lincheck_history *h = parse_ok(text);
	cr_assert_eq(lincheck_history_nkeys(h), 3);
	long a = key_index(h, "a"), b = key_index(h, "b");
	cr_assert(a >= 0 && b >= 0);
	cr_assert_eq(check_key(h, (size_t)a), LINCHECK_LINEARIZABLE);
	cr_assert_eq(check_key(h, (size_t)b), LINCHECK_NOT_LINEARIZABLE);
	cr_assert_eq(check_key(h, 2), LINCHECK_LINEARIZABLE);
	lincheck_history_free(h);
}

Test(lincheck, string_values_and_escapes)
{
	/* \u00e9 is the same bytes as a raw é; a surrogate pair is one
	 * 4-byte character; \u0000 is a NUL byte inside the value. */
	const char *text =
	    "{\"process\":0,\"type\":\"invoke\",\"f\":\"write\",\"key\":"
	    "\"k\\n1\",\"value\":\"a\\u00e9\\ud83d\\ude00\\u0000z\",\"time\":1}"
	    "\n"
	    "{\"process\":0,\"type\":\"ok\",\"f\":\"write\",\"key\":\"k\\n1\","
	    "\"value\":\"a\xc3\xa9\xf0\x9f\x98\x80\\u0000z\",\"time\":2}\n"
	    "{\"process\":1,\"type\":\"invoke\",\"f\":\"read\",\"key\":"
	    "\"k\\n1\",\"time\":3, \"note\": {\"x\": [1.5e3, true, {}]}}\n"
	    "{\"process\":1,\"type\":\"ok\",\"f\":\"read\",\"key\":\"k\\n1\","
	    "\"value\":\"a\xc3\xa9\xf0\x9f\x98\x80\\u0000z\",\"time\":4}\r\n";
	struct lincheck_history *h = parse_ok(text);
	cr_assert_eq(lincheck_history_nkeys(h), 1);
	size_t n;
	const struct lincheck_op *ops = lincheck_history_ops(h, 0, &n);
	cr_assert_eq(n, 2);
	const struct lincheck_value *v =
	    lincheck_history_value(h, ops[0].value);
	cr_assert_eq(v->type, LINCHECK_VSTR);
	cr_assert_eq(v->len, 9);
	cr_assert_eq(memcmp(v->s, "a\xc3\xa9\xf0\x9f\x98\x80\0z", 9), 0);
	cr_assert_eq(check_key(h, 0), LINCHECK_LINEARIZABLE);
	lincheck_history_free(h);
}

/* One malformed line after a good one, and what the error must say. */
struct bad_case {
	const char *line;
	const char *reason; /* a substring of the message */
};

Test(lincheck, malformed_lines_are_rejected_with_line_numbers)
{
	static const struct bad_case cases[] = {
	    {"", "empty line"},
	    {"[1]", "expected a JSON object"},
	    {"{\"process\":1", "expected ',' or '}'"},
	    {"{\"process\":1,}", "expected a field name"},
	    {"{\"process\" 1}", "expected ':'"},
	    {"{\"process\":01}", "leading zero"},
	    {"{\"process\":1.5,\"type\":\"invoke\",\"f\":\"read\","
	     "\"key\":\"r\",\"time\":9}",
	     "process must be an integer"},
	    {"{\"process\":99999999999999999999}", "out of 64-bit range"},
	    {"{\"process\":-}", "bad number"},
	    {"{\"a\":tru}", "unexpected character"},
	    {"{\"a\":\"x\\q\"}", "bad escape"},
	    {"{\"a\":\"x\\u12g4\"}", "bad \\u escape"},
	    {"{\"a\":\"\\ud800x\"}", "unpaired high surrogate"},
	    {"{\"a\":\"\\udc00\"}", "lone low surrogate"},
	    {"{\"a\":\"\xff\"}", "invalid UTF-8"},
	    {"{\"a\":\"\xc0\xaf\"}", "invalid UTF-8"},
	    {"{\"a\":\"\xed\xa0\x80\"}", "invalid UTF-8"},
	    {"{\"a\":\"x\ty\"}", "control character"},
	    {"{\"a\":\"abc", "unterminated string"},
	    {"{\"a\":1} x", "trailing characters"},
	    {"{\"a\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]"
	     "]]]]]]]]]]]}",
	     "nested too deeply"},
	    {"{\"type\":\"invoke\",\"f\":\"read\",\"key\":\"r\",\"time\":9}",
	     "missing field \"process\""},
	    {"{\"process\":1,\"process\":2}", "duplicate field \"process\""},
	    {"{\"process\":1,\"type\":\"begin\",\"f\":\"read\",\"key\":\"r\","
	     "\"time\":9}",
	     "type must be"},
	    {"{\"process\":1,\"type\":\"invoke\",\"f\":\"incr\",\"key\":\"r\","
	     "\"time\":9}",
	     "f must be"},
	    {"{\"process\":1,\"type\":\"invoke\",\"f\":\"read\",\"key\":null,"
	     "\"time\":9}",
	     "key must be an integer, a string"},
	    {"{\"process\":1,\"type\":\"invoke\",\"f\":\"read\",\"key\":\"r\","
	     "\"time\":0}",
	     "time 0 is before the previous line's 1"},
	    {"{\"process\":1,\"type\":\"invoke\",\"f\":\"write\",\"key\":\"r\","
	     "\"time\":9}",
	     "write without a value"},
	    {"{\"process\":1,\"type\":\"invoke\",\"f\":\"cas\",\"key\":\"r\","
	     "\"value\":[1],\"time\":9}",
	     "[expected, new]"},
	    {"{\"process\":1,\"type\":\"invoke\",\"f\":\"write\",\"key\":\"r\","
	     "\"value\":[1],\"time\":9}",
	     "a write's value must be"},
	    /* Process 0 has the read of line 1 open. */
	    {"{\"process\":0,\"type\":\"invoke\",\"f\":\"read\",\"key\":\"r\","
	     "\"time\":9}",
	     "invokes while its operation from line 1 is open"},
	    {"{\"process\":5,\"type\":\"ok\",\"f\":\"read\",\"key\":\"r\","
	     "\"value\":1,\"time\":9}",
	     "no open operation"},
	    {"{\"process\":0,\"type\":\"ok\",\"f\":\"write\",\"key\":\"r\","
	     "\"value\":1,\"time\":9}",
	     "completes process 0's read invoked on line 1"},
	    {"{\"process\":0,\"type\":\"ok\",\"f\":\"read\",\"key\":\"s\","
	     "\"value\":1,\"time\":9}",
	     "key differs"},
	    {"{\"process\":0,\"type\":\"ok\",\"f\":\"read\",\"key\":\"r\","
	     "\"time\":9}",
	     "read ok without a value"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct lincheck_history *h = lincheck_history_new("bad.jsonl");
		const char *good = "{\"process\":0,\"type\":\"invoke\","
				   "\"f\":\"read\",\"key\":\"r\",\"time\":1}";
		cr_assert_eq(lincheck_history_feed(h, good, strlen(good)), 0);
		int rc = lincheck_history_feed(h, cases[i].line,
					       strlen(cases[i].line));
		const char *msg = lincheck_history_error(h);
		cr_expect_eq(rc, RK_ECORRUPT, "case %zu: %s", i, cases[i].line);
		cr_expect(strncmp(msg, "bad.jsonl:2: ", 13) == 0,
			  "case %zu: message \"%s\"", i, msg);
		cr_expect(strstr(msg, cases[i].reason) != NULL,
			  "case %zu: \"%s\" lacks \"%s\"", i, msg,
			  cases[i].reason);
		/* The error sticks. */
		cr_expect_eq(lincheck_history_finish(h), rc);
		lincheck_history_free(h);
	}

	/* A cas completion must say whether it applied, and match. */
	struct lincheck_history *h;
	cr_assert_eq(feed_text(INV_C(0, 1, 2, 1)
				   EV(0, "ok", "cas", ",\"value\":[1,2]", 2),
			       &h),
		     RK_ECORRUPT);
	cr_assert(strstr(lincheck_history_error(h), "t:2: cas ok needs") !=
		  NULL);
	lincheck_history_free(h);
	cr_assert_eq(feed_text(INV_C(0, 1, 2, 1) OK_C(0, 1, 3, true, 2), &h),
		     RK_ECORRUPT);
	cr_assert(strstr(lincheck_history_error(h), "t:2: value differs") !=
		  NULL);
	lincheck_history_free(h);
}

Test(lincheck, load_errors)
{
	struct lincheck_history *h = (void *)1;
	char err[256];
	cr_assert_eq(
	    lincheck_history_load("/nonexistent/x.jsonl", &h, err, sizeof(err)),
	    RK_EIO);
	cr_assert_null(h);
	cr_assert(strstr(err, "/nonexistent/x.jsonl: ") == err, "%s", err);
	cr_assert_eq(
	    lincheck_history_load(LINCHECK_HISTORIES, &h, err, sizeof(err)),
	    RK_EIO, "%s", err);
}

/* ------------------------------------------------------------------ */
/* The command                                                          */

static int run(const char *const *args, char **out)
{
	int argc = 0;
	char *argv[16];
	argv[argc++] = "lincheck";
	for (; args[argc - 1]; argc++)
		argv[argc] = (char *)args[argc - 1];
	size_t len;
	*out = NULL;
	FILE *o = open_memstream(out, &len);
	FILE *e = fopen("/dev/null", "w");
	int rc = lincheck_run(argc, argv, o, e);
	fclose(o);
	fclose(e);
	return rc;
}

#define HIST(name) LINCHECK_HISTORIES "/" name

Test(lincheck, cli_exit_codes)
{
	char *out;
	const char *good = HIST("etcd_002-linearizable.jsonl");
	const char *bad = HIST("etcd_000-nonlinearizable.jsonl");
	const char *none = HIST("missing.jsonl");

	cr_assert_eq(run((const char *[]){good, NULL}, &out), LINCHECK_EXIT_OK);
	cr_assert(strstr(out, "key r: linearizable (") != NULL, "%s", out);
	free(out);
	cr_assert_eq(run((const char *[]){good, bad, NULL}, &out),
		     LINCHECK_EXIT_VIOLATION);
	cr_assert(strstr(out, "key r: NOT linearizable") != NULL, "%s", out);
	free(out);
	cr_assert_eq(run((const char *[]){good, none, NULL}, &out),
		     LINCHECK_EXIT_INPUT);
	free(out);
	cr_assert_eq(run((const char *[]){none, bad, NULL}, &out),
		     LINCHECK_EXIT_VIOLATION);
	free(out);
	/* etcd_002 needs far more than 10 states: undecided, distinctly. */
	cr_assert_eq(
	    run((const char *[]){"--max-states", "10", good, NULL}, &out),
	    LINCHECK_EXIT_UNDECIDED);
	cr_assert(strstr(out, "undecided (search limit of 10 states") != NULL,
		  "%s", out);
	free(out);
	cr_assert_eq(run((const char *[]){"--max-states=0", good, NULL}, &out),
		     LINCHECK_EXIT_OK);
	free(out);
	cr_assert_eq(
	    run((const char *[]){"--json", good, bad, none, NULL}, &out),
	    LINCHECK_EXIT_VIOLATION);
	cr_assert(strstr(out, "\"verdict\":\"linearizable\"") != NULL);
	cr_assert(strstr(out, "\"verdict\":\"not_linearizable\"") != NULL);
	cr_assert(strstr(out, "\"error\":") != NULL);
	free(out);
	cr_assert_eq(run((const char *[]){NULL}, &out), LINCHECK_EXIT_INPUT);
	free(out);
	cr_assert_eq(
	    run((const char *[]){"--max-states", "-1", good, NULL}, &out),
	    LINCHECK_EXIT_INPUT);
	free(out);
	cr_assert_eq(run((const char *[]){"--bogus", good, NULL}, &out),
		     LINCHECK_EXIT_INPUT);
	free(out);
}

/* ------------------------------------------------------------------ */
/* Randomized: a simulated linearizable register                        */

/* Histories per run, processes, ops per history, and the value range:
 * small values make reads ambiguous and cas contended, which is where a
 * checker goes wrong; a few hundred histories run in well under a second. */
#define RAND_HISTORIES 300
#define RAND_PROCS 5
#define RAND_OPS 60
#define RAND_VALUES 4

/* The shape of a generated history. */
struct sim_params {
	int procs;
	int ops;
	int values; /* writes and cas use 0..values-1 */
};

static const struct sim_params small_sim = {RAND_PROCS, RAND_OPS, RAND_VALUES};

struct sim_op {
	int f;	     /* enum lincheck_f */
	int open;    /* invoked, not completed */
	int applied; /* has taken effect */
	int a, b;    /* write value / cas expected, new (-1 is null) */
	int seen;    /* read result or cas applied */
};

static void put_val(FILE *out, int v)
{
	if (v < 0)
		fputs("null", out);
	else if (v % 2)
		fprintf(out, "%d", v);
	else
		fprintf(out, "\"v%d\"", v); /* mix strings in */
}

/* Emits one event line; a read's ok carries its (possibly planted) value. */
static void emit(FILE *out, int p, const char *type, const struct sim_op *o,
		 long t, int read_value)
{
	static const char *const fs[] = {"read", "write", "cas"};
	fprintf(out,
		"{\"process\":%d,\"type\":\"%s\",\"f\":\"%s\","
		"\"key\":\"r\",\"time\":%ld",
		p, type, fs[o->f], t);
	if (o->f == LINCHECK_WRITE) {
		fputs(",\"value\":", out);
		put_val(out, o->a);
	} else if (o->f == LINCHECK_CAS) {
		fputs(",\"value\":[", out);
		put_val(out, o->a);
		fputc(',', out);
		put_val(out, o->b);
		fputc(']', out);
		if (strcmp(type, "ok") == 0)
			fprintf(out, ",\"applied\":%s",
				o->seen ? "true" : "false");
	} else if (strcmp(type, "ok") == 0) {
		fputs(",\"value\":", out);
		put_val(out, read_value);
	}
	fputs("}\n", out);
}

/* Generates one history by running RAND_PROCS clients against an atomic
 * register: each op takes effect at a random moment between its invoke
 * and completion.  Some ops crash (info; they may or may not have taken
 * effect) or fail (did not take effect).  The ok read numbered plant (if
 * any) reports the impossible value 1001 instead.  Returns the text
 * (caller frees) and the number of ok reads in *reads. */
static char *generate(struct rk_rng *rng, const struct sim_params *sp,
		      int plant, int *reads)
{
	char *text = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&text, &len);
	struct sim_op *ops = calloc((size_t)sp->procs, sizeof(*ops));
	/* A crashed client comes back as a new process. */
	int *pid = calloc((size_t)sp->procs, sizeof(*pid));
	cr_assert(ops && pid);
	int reg = -1;
	for (int p = 0; p < sp->procs; p++)
		pid[p] = p;
	int next_pid = sp->procs;
	int invoked = 0;
	*reads = 0;
	for (long t = 1;; t++) {
		int any_open = 0;
		for (int p = 0; p < sp->procs; p++)
			any_open |= ops[p].open;
		if (invoked >= sp->ops && !any_open)
			break;
		int p = (int)rk_rng_below(rng, (uint64_t)sp->procs);
		struct sim_op *o = &ops[p];
		if (!o->open) {
			if (invoked >= sp->ops)
				continue;
			memset(o, 0, sizeof(*o));
			o->open = 1;
			o->f = (int)rk_rng_below(rng, 3);
			o->a =
			    (int)rk_rng_below(rng, (uint64_t)sp->values + 1) -
			    1;
			if (o->f == LINCHECK_WRITE && o->a < 0)
				o->a = 0;
			/* A cas mostly expects what the register holds, as a
			 * client that just read it would. */
			if (o->f == LINCHECK_CAS && rk_rng_below(rng, 2))
				o->a = reg;
			o->b = (int)rk_rng_below(rng, (uint64_t)sp->values);
			emit(out, pid[p], "invoke", o, t, 0);
			invoked++;
			continue;
		}
		if (!o->applied && rk_rng_below(rng, 2)) {
			/* The linearization point: apply atomically. */
			o->applied = 1;
			if (o->f == LINCHECK_READ) {
				o->seen = reg;
			} else if (o->f == LINCHECK_WRITE) {
				reg = o->a;
			} else {
				o->seen = reg == o->a;
				if (o->seen)
					reg = o->b;
			}
			continue;
		}
		uint64_t fate = rk_rng_below(rng, 20);
		if (fate == 0) {
			/* Crash: outcome unknown, applied or not. */
			emit(out, pid[p], "info", o, t, 0);
			pid[p] = next_pid++;
			o->open = 0;
		} else if (fate == 1 && !o->applied && o->f != LINCHECK_READ) {
			emit(out, pid[p], "fail", o, t, 0);
			o->open = 0;
		} else if (o->applied) {
			int v = o->seen;
			if (o->f == LINCHECK_READ && (*reads)++ == plant)
				v = 2 * sp->values + 1; /* never written */
			emit(out, pid[p], "ok", o, t, v);
			o->open = 0;
		}
	}
	fclose(out);
	free(ops);
	free(pid);
	return text;
}

Test(lincheck, randomized_register_histories)
{
	uint64_t seed = rk_test_seed("lincheck randomized");
	struct rk_rng rng;
	int mutated = 0;
	for (int i = 0; i < RAND_HISTORIES; i++) {
		struct rk_rng saved;
		rk_rng_seed(&rng, seed + (uint64_t)i);
		saved = rng;
		int reads;
		char *text = generate(&rng, &small_sim, -1, &reads);
		cr_assert_eq(verdict(text), LINCHECK_LINEARIZABLE,
			     "seed %llu history %d:\n%s",
			     (unsigned long long)seed, i, text);
		free(text);
		if (reads == 0)
			continue;
		/* Same run, one read made impossible. */
		rng = saved;
		int plant = (int)((seed + (uint64_t)i) % (uint64_t)reads);
		text = generate(&rng, &small_sim, plant, &reads);
		cr_assert_eq(verdict(text), LINCHECK_NOT_LINEARIZABLE,
			     "seed %llu history %d, read %d planted:\n%s",
			     (unsigned long long)seed, i, plant, text);
		free(text);
		mutated++;
	}
	cr_assert_gt(mutated, RAND_HISTORIES / 2);
}

/* ------------------------------------------------------------------ */
/* Randomized against a brute-force oracle                              */

/* Small enough that trying every order is instant, big enough for
 * concurrency, crashes and every kind of op to meet. */
#define ORACLE_HISTORIES 3000
#define ORACLE_PROCS 4
#define ORACLE_MAX_OPS 10
#define ORACLE_VALUES 3

/* Op i may go next after the ops in mask: every completed op that returned
 * before i was called is placed.  Returns whether the rest fits. */
static int oracle_place(const struct lincheck_op *ops, size_t n, unsigned mask,
			uint32_t state)
{
	int done = 1;
	for (size_t i = 0; i < n; i++)
		if (!(mask & (1u << i)) && ops[i].outcome == LINCHECK_OK)
			done = 0;
	if (done)
		return 1; /* unknown ops left over never happened */
	for (size_t i = 0; i < n; i++) {
		if (mask & (1u << i))
			continue;
		const struct lincheck_op *o = &ops[i];
		int ready = 1;
		for (size_t j = 0; j < n && ready; j++)
			if (!(mask & (1u << j)) && j != i &&
			    ops[j].ret < o->call)
				ready = 0;
		if (!ready)
			continue;
		uint32_t next = state;
		int known = o->outcome == LINCHECK_OK;
		switch (o->f) {
		case LINCHECK_READ:
			if (known && state != o->value)
				continue;
			break;
		case LINCHECK_WRITE:
			next = o->value;
			break;
		case LINCHECK_CAS:
			if (!known) {
				/* Unknown: applies iff it can. */
				if (state == o->value)
					next = o->cas_new;
			} else if (o->applied) {
				if (state != o->value)
					continue;
				next = o->cas_new;
			} else if (state == o->value) {
				continue;
			}
			break;
		}
		if (oracle_place(ops, n, mask | (1u << i), next))
			return 1;
	}
	return 0;
}

static void put_small(FILE *out, uint64_t v)
{
	if (v == ORACLE_VALUES)
		fputs("null", out);
	else
		fprintf(out, "%d", (int)v);
}

/* A random history of up to ORACLE_MAX_OPS ops with random results, so
 * most are not linearizable and the rest are by luck or by design. */
static char *random_small(struct rk_rng *rng)
{
	char *text = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&text, &len);
	static const char *const fs[] = {"read", "write", "cas"};
	int open_f[ORACLE_PROCS] = {0};
	uint64_t a[ORACLE_PROCS], b[ORACLE_PROCS];
	int is_open[ORACLE_PROCS] = {0};
	int pid[ORACLE_PROCS];
	for (int p = 0; p < ORACLE_PROCS; p++)
		pid[p] = p;
	int next_pid = ORACLE_PROCS, invoked = 0;
	int target = 1 + (int)rk_rng_below(rng, ORACLE_MAX_OPS);
	/* Coarse times: ties between events happen and must count as
	 * concurrency. */
	for (long t = 0; t < 4L * ORACLE_MAX_OPS; t++) {
		if (rk_rng_below(rng, 3) == 0)
			continue; /* time passes without events */
		int p = (int)rk_rng_below(rng, ORACLE_PROCS);
		long tt = t / 2;
		if (!is_open[p]) {
			if (invoked == target)
				continue;
			invoked++;
			is_open[p] = 1;
			open_f[p] = (int)rk_rng_below(rng, 3);
			a[p] = rk_rng_below(rng, ORACLE_VALUES + 1);
			b[p] = rk_rng_below(rng, ORACLE_VALUES + 1);
			fprintf(out,
				"{\"process\":%d,\"type\":\"invoke\","
				"\"f\":\"%s\",\"key\":\"r\",\"time\":%ld",
				pid[p], fs[open_f[p]], tt);
		} else {
			uint64_t fate = rk_rng_below(rng, 6);
			const char *type = fate == 0   ? "info"
					   : fate == 1 ? "fail"
						       : "ok";
			is_open[p] = 0;
			fprintf(out,
				"{\"process\":%d,\"type\":\"%s\",\"f\":\"%s\","
				"\"key\":\"r\",\"time\":%ld",
				pid[p], type, fs[open_f[p]], tt);
			if (fate == 0)
				pid[p] = next_pid++;
			if (open_f[p] == LINCHECK_READ && fate > 1) {
				fputs(",\"value\":", out);
				put_small(out,
					  rk_rng_below(rng, ORACLE_VALUES + 1));
			}
			if (open_f[p] == LINCHECK_CAS && fate > 1)
				fprintf(out, ",\"applied\":%s",
					rk_rng_below(rng, 2) ? "true"
							     : "false");
		}
		if (open_f[p] == LINCHECK_WRITE) {
			fputs(",\"value\":", out);
			put_small(out, a[p]);
		} else if (open_f[p] == LINCHECK_CAS) {
			fputs(",\"value\":[", out);
			put_small(out, a[p]);
			fputc(',', out);
			put_small(out, b[p]);
			fputc(']', out);
		}
		fputs("}\n", out);
	}
	fclose(out);
	return text;
}

Test(lincheck, randomized_small_histories_match_brute_force)
{
	uint64_t seed = rk_test_seed("lincheck oracle");
	struct rk_rng rng;
	rk_rng_seed(&rng, seed);
	int verdicts[2] = {0, 0};
	for (int i = 0; i < ORACLE_HISTORIES; i++) {
		char *text = random_small(&rng);
		struct lincheck_history *h = parse_ok(text);
		for (size_t k = 0; k < lincheck_history_nkeys(h); k++) {
			size_t n;
			const struct lincheck_op *ops =
			    lincheck_history_ops(h, k, &n);
			int expect = oracle_place(ops, n, 0, LINCHECK_NULL);
			enum lincheck_verdict v = check_key(h, k);
			cr_assert_eq(
			    v,
			    expect ? LINCHECK_LINEARIZABLE
				   : LINCHECK_NOT_LINEARIZABLE,
			    "seed %llu history %d: oracle says %s:\n%s",
			    (unsigned long long)seed, i,
			    expect ? "linearizable" : "not", text);
			verdicts[expect]++;
		}
		lincheck_history_free(h);
		free(text);
	}
	cr_log_info("oracle: %d linearizable, %d not", verdicts[1],
		    verdicts[0]);
	/* Both verdicts must be common, or the comparison proves little. */
	cr_assert_gt(verdicts[0], ORACLE_HISTORIES / 10);
	cr_assert_gt(verdicts[1], ORACLE_HISTORIES / 10);
}

/* A history the size a ringkv CAS test might record on one key: it must
 * be decided, both ways, well within the default search limit.  Written
 * values are distinct, as such tests should make them. */
Test(lincheck, long_history_is_decided)
{
	static const struct sim_params big = {8, 2000, 1 << 20};
	uint64_t seed = rk_test_seed("lincheck long history");
	struct rk_rng rng, saved;
	rk_rng_seed(&rng, seed);
	saved = rng;
	int reads;
	char *text = generate(&rng, &big, -1, &reads);
	struct lincheck_history *h = parse_ok(text);
	struct lincheck_result *r;
	cr_assert_eq(lincheck_check_key(h, 0, NULL, &r), 0);
	cr_assert_eq(lincheck_result_verdict(r), LINCHECK_LINEARIZABLE,
		     "seed %llu", (unsigned long long)seed);
	cr_log_info("long linearizable: %" PRIu64 " states",
		    lincheck_result_states(r));
	lincheck_result_free(r);
	lincheck_history_free(h);
	free(text);

	/* The last read made impossible: the search refutes everything. */
	rng = saved;
	text = generate(&rng, &big, reads - 1, &reads);
	h = parse_ok(text);
	cr_assert_eq(lincheck_check_key(h, 0, NULL, &r), 0);
	cr_assert_eq(lincheck_result_verdict(r), LINCHECK_NOT_LINEARIZABLE,
		     "seed %llu", (unsigned long long)seed);
	cr_log_info("long, stale at the end: %" PRIu64 " states",
		    lincheck_result_states(r));
	lincheck_result_free(r);
	lincheck_history_free(h);
	free(text);
}
