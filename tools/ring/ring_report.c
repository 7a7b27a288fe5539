/* ring_report.c: `ringkv ring` output; see ring_report.h. */
#include "ring_report.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "rng.h"

/* Node ids of a simulation: fixed, so `--simulate` prints the same ring
 * everywhere. */
#define SIMULATE_SEED 0x52494e47u /* "RING" */

static void set_err(char *err, size_t errlen, const char *msg)
{
	if (err && errlen)
		snprintf(err, errlen, "%s", msg);
}

int ring_report_print(const struct ring *r, int rf, int json, FILE *out)
{
	size_t n = ring_member_count(r);
	double *share = malloc((n ? n : 1) * sizeof(*share)), max_mean = 0;
	if (!share)
		return RK_ENOMEM;
	int rc =
	    rf < 1 ? RK_EINVALID : ring_shares(r, (size_t)rf, share, &max_mean);
	if (rc) {
		free(share);
		return rc;
	}
	double wsum = 0, ssum = 0;
	for (size_t i = 0; i < n; i++) {
		wsum += ring_member_weight(r, i);
		ssum += share[i];
	}
	if (json) {
		fprintf(out,
			"{\"epoch\":%" PRIu64 ",\"checksum\":\"%016" PRIx64
			"\",\"rf\":%d,\"nodes\":[",
			ring_epoch(r), ring_checksum(r), rf);
		for (size_t i = 0; i < n; i++)
			fprintf(out,
				"%s{\"id\":\"%016" PRIx64
				"\",\"weight\":%" PRIu32
				",\"vnodes\":%zu,\"share\":%.6f}",
				i ? "," : "", ring_member_id(r, i),
				ring_member_weight(r, i),
				ring_member_vnodes(r, i), share[i]);
		fprintf(out, "],\"max_mean\":%.4f}\n", max_mean);
	} else {
		fprintf(out,
			"ring epoch %" PRIu64 " checksum %016" PRIx64
			": %zu nodes, %zu vnodes, rf %d\n",
			ring_epoch(r), ring_checksum(r), n, ring_vnode_count(r),
			rf);
		fprintf(out, "%-16s  %6s  %6s  %8s  %9s\n", "node", "weight",
			"vnodes", "share", "vs mean");
		for (size_t i = 0; i < n; i++) {
			uint32_t w = ring_member_weight(r, i);
			double rel =
			    ssum > 0 ? (share[i] / w) / (ssum / wsum) : 0;
			fprintf(out,
				"%016" PRIx64 "  %6" PRIu32
				"  %6zu  %8.6f  %9.4f\n",
				ring_member_id(r, i), w,
				ring_member_vnodes(r, i), share[i], rel);
		}
		fprintf(out, "max/mean %.4f\n", max_mean);
	}
	free(share);
	return ferror(out) ? RK_EIO : 0;
}

/* r's members as ring_new takes them, with room for one more member and
 * `spare` more tokens: *m and *tok are the caller's to free, *used is how
 * many tokens are taken. */
static int members_of(const struct ring *r, size_t spare,
		      struct ring_member **m, uint64_t **tok, size_t *used)
{
	size_t n = ring_member_count(r), total = 0, k;
	for (size_t i = 0; i < n; i++) {
		ring_member_tokens(r, i, NULL, 0, &k);
		total += k;
	}
	*m = calloc(n + 1, sizeof(**m));
	*tok = malloc((total + spare + 1) * sizeof(**tok));
	if (!*m || !*tok) {
		free(*m);
		free(*tok);
		return RK_ENOMEM;
	}
	*used = 0;
	for (size_t i = 0; i < n; i++) {
		ring_member_tokens(r, i, *tok + *used, total - *used, &k);
		(*m)[i] = (struct ring_member){ring_member_id(r, i),
					       ring_member_weight(r, i),
					       *tok + *used, k};
		*used += k;
	}
	return 0;
}

int ring_report_join(const struct ring *r, uint64_t node_id, int vnodes, int rf,
		     struct ring **out)
{
	size_t n = ring_member_count(r), used, k;
	struct ring_member *m;
	uint64_t *tok;

	*out = NULL;
	if (vnodes < 1 || rf < 1)
		return RK_EINVALID;
	int rc = members_of(r, (size_t)vnodes, &m, &tok, &used);
	if (rc)
		return rc;
	rc = ring_allocate_tokens(r, node_id, 1, (uint32_t)vnodes, (size_t)rf,
				  tok + used, (size_t)vnodes, &k);
	if (rc == 0) {
		m[n] = (struct ring_member){node_id, 1, tok + used, k};
		struct ring_config cfg = {.epoch = ring_epoch(r) + 1,
					  .rf_max = (uint32_t)rf};
		rc = ring_new(m, n + 1, &cfg, out);
	}
	free(m);
	free(tok);
	return rc;
}

int ring_report_leave(const struct ring *r, uint64_t node_id, int rf,
		      struct ring **out)
{
	size_t n = ring_member_count(r), used, i;
	struct ring_member *m;
	uint64_t *tok;

	*out = NULL;
	if (rf < 1 || ring_member_find(r, node_id, &i) != 0)
		return RK_EINVALID;
	int rc = members_of(r, 0, &m, &tok, &used);
	if (rc)
		return rc;
	m[i] = m[n - 1];
	struct ring_config cfg = {.epoch = ring_epoch(r) + 1,
				  .rf_max = (uint32_t)rf};
	rc = ring_new(m, n - 1, &cfg, out);
	free(m);
	free(tok);
	return rc;
}

int ring_report_simulate(int nodes, int vnodes, int rf, int json, FILE *out,
			 char *err, size_t errlen)
{
	struct ring *r = NULL;
	struct rk_rng rng;
	int rc;

	if (nodes < 1 || nodes > RING_REPORT_MAX_NODES) {
		set_err(err, errlen, "--simulate takes 1 to 1000 nodes");
		return RK_EINVALID;
	}
	if (vnodes < 1 || vnodes > RING_TOKENS_MAX) {
		set_err(err, errlen, "--vnodes takes 1 to 65536");
		return RK_EINVALID;
	}
	if (rf < 1 || rf > RING_RF_MAX) {
		set_err(err, errlen, "--rf takes 1 to 8");
		return RK_EINVALID;
	}
	struct ring_config cfg = {.rf_max = (uint32_t)rf};
	rc = ring_new(NULL, 0, &cfg, &r);
	rk_rng_seed(&rng, SIMULATE_SEED);
	for (int i = 0; rc == 0 && i < nodes; i++) {
		struct ring *next = NULL;
		rc = ring_report_join(r, rk_rng_next(&rng), vnodes, rf, &next);
		ring_free(r);
		r = next;
	}
	if (rc == 0)
		rc = ring_report_print(r, rf, json, out);
	if (rc)
		set_err(err, errlen, rk_strerror(rc));
	ring_free(r);
	return rc;
}
