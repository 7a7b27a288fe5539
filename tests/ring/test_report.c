/* test_report.c: `ringkv ring` output (tools/ring/ring_report.c): the JSON
 * shape scripts rely on, and a reproducible simulation. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "ring.h"
#include "ring_report.h"

/* Runs f into a memory stream and returns what it printed (caller frees). */
static char *capture_simulate(int nodes, int vnodes, int rf, int json, int *rc)
{
	char *buf = NULL, err[128] = "";
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	cr_assert_not_null(f);
	*rc =
	    ring_report_simulate(nodes, vnodes, rf, json, f, err, sizeof(err));
	fclose(f);
	if (*rc)
		cr_assert_neq(err[0], 0, "an error comes with a reason");
	return buf;
}

Test(ring_report, simulate_json)
{
	int rc;
	char *a = capture_simulate(5, 16, 3, 1, &rc);
	cr_assert_eq(rc, 0);
	char *b = capture_simulate(5, 16, 3, 1, &rc);
	cr_assert_str_eq(a, b, "a simulation is reproducible");
	cr_assert(strncmp(a, "{\"epoch\":5,\"checksum\":\"", 23) == 0, "%s", a);
	cr_assert_not_null(strstr(a, "\"rf\":3,\"nodes\":[{\"id\":\""));
	cr_assert_not_null(strstr(a, "\"max_mean\":"));
	cr_assert_eq(a[strlen(a) - 2], '}');
	/* Five nodes, 16 vnodes each, shares summing to rf. */
	double sum = 0;
	int nodes = 0;
	for (const char *p = a; (p = strstr(p, "\"share\":")); p++, nodes++)
		sum += strtod(p + 8, NULL);
	cr_assert_eq(nodes, 5);
	cr_assert(sum > 3 - 1e-5 && sum < 3 + 1e-5, "sum %f", sum);
	int vn = 0;
	for (const char *p = a; (p = strstr(p, "\"vnodes\":16,")); p++)
		vn++;
	cr_assert_eq(vn, 5);
	free(a);
	free(b);
}

Test(ring_report, simulate_text_and_errors)
{
	int rc;
	char *a = capture_simulate(4, 8, 2, 0, &rc);
	cr_assert_eq(rc, 0);
	cr_assert_not_null(strstr(a, ": 4 nodes, 32 vnodes, rf 2\n"), "%s", a);
	cr_assert_not_null(strstr(a, "\nmax/mean "));
	free(a);
	free(capture_simulate(0, 8, 2, 0, &rc));
	cr_assert_eq(rc, RK_EINVALID);
	free(capture_simulate(4, 0, 2, 0, &rc));
	cr_assert_eq(rc, RK_EINVALID);
	free(capture_simulate(4, 8, RING_RF_MAX + 1, 0, &rc));
	cr_assert_eq(rc, RK_EINVALID);
}

Test(ring_report, print_live_ring)
{
	uint64_t t1[] = {1, 1ull << 63}, t2[] = {1ull << 62};
	struct ring_member m[] = {{0xa1, 1, t1, 2}, {0xb2, 2, t2, 1}};
	struct ring_config cfg = {.epoch = 7, .rf_max = 3};
	struct ring *r = NULL;
	cr_assert_eq(ring_new(m, 2, &cfg, &r), 0);
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	cr_assert_eq(ring_report_print(r, 1, 1, f), 0);
	fclose(f);
	/* Node a1 owns (2^62, 2^63] and (2^63, 1]: 3/4; b2 the rest. */
	char want[256];
	snprintf(want, sizeof(want),
		 "{\"epoch\":7,\"checksum\":\"%016llx\",\"rf\":1,\"nodes\":["
		 "{\"id\":\"00000000000000a1\",\"weight\":1,\"vnodes\":2,"
		 "\"share\":0.750000},"
		 "{\"id\":\"00000000000000b2\",\"weight\":2,\"vnodes\":1,"
		 "\"share\":0.250000}],\"max_mean\":2.2500}\n",
		 (unsigned long long)ring_checksum(r));
	cr_assert_str_eq(buf, want);
	free(buf);
	ring_free(r);
}
