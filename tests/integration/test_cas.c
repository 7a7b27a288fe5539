/* Compare-and-set between real ringkvd processes on loopback.
 *
 * The promise (TESTING.md): CAS, put_if_absent, delete_if and SERIAL reads
 * are linearizable per key.  The main test is Jepsen's: 20 clients
 * increment numbers on 5 keys with a read / compare-and-set loop on 5
 * nodes (RF 3) while the primary of one key is killed with SIGKILL and
 * restarted; every operation is recorded (invoke, then ok / fail / info)
 * as JSON lines and `ringkv lincheck` must find the history linearizable.
 * The final value of each key must be exactly the number of increments
 * that took effect: every value 1..final made by one increment, acknowledged
 * ones never twice, the others by increments whose outcome was unknown.
 *
 * Also: the operations and their answers, the CLI's exit codes, mixing
 * plain writes with CAS, bad input on the client and peer ports, a client
 * leaving with CAS in flight, and durability when every replica is killed
 * at once.  Histories of failed runs are kept in $TMPDIR.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "err.h"
#include "frame.h"
#include "harness.h"
#include "hash.h"
#include "peer_wire.h"
#include "ring.h"
#include "rng.h"
#include "wire.h"

#define MAXN 5
#define MAX_KEYS 8
#define MAX_THREADS 32

static struct h_node nodes[MAXN];
static uint64_t ids[MAXN];
static int n_nodes;
static char seeds[MAXN * 48];

/* Generous timeouts: the machine is shared, and ASan is slow.  Tests
 * check outcomes, never durations. */
static const char *const common_args[] = {"--set", "cas.timeout=4s", "--set",
					  "gossip.push_pull_interval=2s", NULL};

static void start_node(int i)
{
	h_node_init(&nodes[i], common_args);
	h_node_add_arg(&nodes[i], "--seeds");
	h_node_add_arg(&nodes[i], nodes[0].addr);
	cr_assert_eq(h_node_start(&nodes[i]), 0, "node %d", i);
	rkv_client *c = h_client(&nodes[i]);
	cr_assert_eq(rkv_ping(c, &ids[i]), RKV_OK);
	rkv_close(c);
}

static void start_cluster(int n)
{
	n_nodes = n;
	seeds[0] = 0;
	for (int i = 0; i < n; i++) {
		start_node(i);
		snprintf(seeds + strlen(seeds), sizeof(seeds) - strlen(seeds),
			 "%s%s", i ? "," : "", nodes[i].addr);
	}
	for (int i = 0; i < n; i++)
		h_wait_owners(&nodes[i], (size_t)n, 1, 60000);
}

static void stop_cluster(void)
{
	for (int i = 0; i < MAXN; i++)
		if (nodes[i].dir[0])
			h_node_destroy(&nodes[i]);
	memset(nodes, 0, sizeof(nodes));
}

TestSuite(cas, .fini = stop_cluster, .timeout = 900);

static rkv_client *client(const char *to, int smart)
{
	rkv_options o;
	rkv_options_init(&o);
	o.request_timeout_ms = 15000;
	o.smart = smart;
	rkv_client *c;
	cr_assert_eq(rkv_client_new(to, &o, &c), RKV_OK);
	return c;
}

/* The index of the node that is key's primary (its first replica). */
static int primary_of(const char *key)
{
	rkv_client *c = h_client(&nodes[0]);
	rkv_ring_info *ri;
	cr_assert_eq(rkv_ring_info_get(c, &ri), RKV_OK);
	struct ring_member *m = calloc(ri->n_members, sizeof(*m));
	for (size_t k = 0; k < ri->n_members; k++)
		m[k] = (struct ring_member){
		    ri->members[k].node_id, ri->members[k].weight,
		    ri->members[k].tokens, ri->members[k].n_tokens};
	struct ring_config rc = {.epoch = 1, .rf_max = ri->replication_factor};
	struct ring *r;
	cr_assert_eq(ring_new(m, ri->n_members, &rc, &r), 0);
	uint64_t out[8];
	size_t n = 0;
	ring_lookup(r, rk_key_hash(key, strlen(key)), ri->replication_factor,
		    out, &n);
	cr_assert_gt(n, 0);
	int idx = -1;
	for (int i = 0; i < n_nodes; i++)
		if (ids[i] == out[0])
			idx = i;
	ring_free(r);
	free(m);
	rkv_ring_info_free(ri);
	rkv_close(c);
	cr_assert_geq(idx, 0);
	return idx;
}

static int is_value(const rkv_value *v, const char *s)
{
	return v && v->len == strlen(s) && memcmp(v->data, s, v->len) == 0;
}

static const char *shown(const rkv_value *v)
{
	return v ? (const char *)v->data : "(none)";
}

/* ---- the operations and their answers ---------------------------------- */

Test(cas, operations_answer_applied_and_the_current_value)
{
	start_cluster(3);
	rkv_client *c = client(seeds, 1);
	const char *k = "lock";
	int applied = -1;
	rkv_value *cur = NULL;

	cr_assert_eq(rkv_put_if_absent(c, k, 4, "a", 1, &applied, &cur), RKV_OK,
		     "%s", rkv_last_error(c));
	cr_assert(applied == 1 && is_value(cur, "a"));
	rkv_timestamp ts_a = cur->ts;
	cr_assert(ts_a.hlc != 0, "an applied cas says its version");
	rkv_value_free(cur);
	cr_assert_eq(rkv_put_if_absent(c, k, 4, "b", 1, &applied, &cur),
		     RKV_OK);
	cr_assert(applied == 0 && is_value(cur, "a"), "got %s", shown(cur));
	cr_assert(cur->ts.hlc == ts_a.hlc && cur->ts.node_id == ts_a.node_id);
	rkv_value_free(cur);

	cr_assert_eq(rkv_cas(c, k, 4, "x", 1, "b", 1, &applied, &cur), RKV_OK);
	cr_assert(applied == 0 && is_value(cur, "a"));
	rkv_value_free(cur);
	cr_assert_eq(rkv_cas(c, k, 4, "a", 1, "b", 1, &applied, &cur), RKV_OK);
	cr_assert(applied == 1 && is_value(cur, "b"));
	rkv_timestamp ts_b = cur->ts;
	cr_assert_gt(ts_b.hlc, ts_a.hlc, "decisions are stamped in order");
	rkv_value_free(cur);

	/* A plain read sees the decision, with its version. */
	rkv_value *v;
	cr_assert_eq(rkv_get(c, k, 4, &v), RKV_OK);
	cr_assert(is_value(v, "b") && v->ts.hlc == ts_b.hlc &&
		  v->ts.node_id == ts_b.node_id);
	rkv_value_free(v);
	/* A majority of the replicas hold it already (the answer waited). */
	int holders = 0;
	for (int i = 0; i < 3; i++) {
		char *lv;
		if (h_local_get(&nodes[i], k, &lv) == 0) {
			holders += strcmp(lv, "b") == 0;
			free(lv);
		}
	}
	cr_assert_geq(holders, 2);
	rkv_call_opts serial = {.consistency = RKV_SERIAL};
	cr_assert_eq(rkv_get_ex(c, k, 4, &serial, &v), RKV_OK);
	cr_assert(is_value(v, "b"));
	rkv_value_free(v);

	cr_assert_eq(rkv_cas(c, k, 4, NULL, 0, "c", 1, &applied, &cur), RKV_OK);
	cr_assert(applied == 0 && is_value(cur, "b"), "expected absent: no");
	rkv_value_free(cur);
	cr_assert_eq(rkv_delete_if(c, k, 4, "zz", 2, &applied, &cur), RKV_OK);
	cr_assert(applied == 0 && is_value(cur, "b"));
	rkv_value_free(cur);
	cr_assert_eq(rkv_delete_if(c, k, 4, "b", 1, &applied, &cur), RKV_OK);
	cr_assert(applied == 1 && cur == NULL, "deleted: no current value");
	cr_assert_eq(rkv_get_ex(c, k, 4, &serial, &v), RKV_ERR_NOT_FOUND);
	cr_assert_eq(rkv_get(c, k, 4, &v), RKV_ERR_NOT_FOUND);
	cr_assert_eq(rkv_delete_if(c, k, 4, "b", 1, &applied, &cur), RKV_OK);
	cr_assert(applied == 0 && cur == NULL);
	cr_assert_eq(rkv_delete_if(c, k, 4, NULL, 0, &applied, &cur),
		     RKV_ERR_INVALID);

	/* The empty string is a value, not absence. */
	cr_assert_eq(rkv_cas(c, k, 4, NULL, 0, "", 0, &applied, &cur), RKV_OK);
	cr_assert(applied == 1 && cur && cur->len == 0);
	rkv_value_free(cur);
	cr_assert_eq(rkv_cas(c, k, 4, NULL, 0, "z", 1, &applied, &cur), RKV_OK);
	cr_assert(applied == 0 && cur && cur->len == 0);
	rkv_value_free(cur);
	cr_assert_eq(rkv_cas(c, k, 4, "", 0, NULL, 0, &applied, &cur), RKV_OK,
		     "cas to absent deletes");
	cr_assert(applied == 1 && cur == NULL);

	/* SERIAL writes go through Paxos too. */
	rkv_timestamp wts;
	cr_assert_eq(rkv_put_ex(c, k, 4, "s1", 2, &serial, &wts), RKV_OK);
	cr_assert_eq(rkv_get(c, k, 4, &v), RKV_OK);
	cr_assert(is_value(v, "s1") && v->ts.hlc == wts.hlc);
	rkv_value_free(v);
	cr_assert_eq(rkv_cas(c, k, 4, "s1", 2, "s2", 2, &applied, &cur),
		     RKV_OK);
	cr_assert(applied == 1);
	rkv_value_free(cur);
	cr_assert_eq(rkv_delete_ex(c, k, 4, &serial, NULL), RKV_OK);
	cr_assert_eq(rkv_get_ex(c, k, 4, &serial, &v), RKV_ERR_NOT_FOUND);

	/* A SERIAL read has one answer. */
	rkv_replies *rep;
	cr_assert_eq(rkv_get_all(c, k, 4, &serial, &rep), RKV_ERR_BAD_REQUEST);
	rkv_replies_free(rep);
	rkv_close(c);

	/* Through a node that is not the key's primary: it forwards. */
	int p = primary_of("fwd");
	int other = (p + 1) % 3;
	c = client(nodes[other].addr, 0);
	cr_assert_eq(rkv_put_if_absent(c, "fwd", 3, "1", 1, &applied, &cur),
		     RKV_OK);
	cr_assert(applied == 1 && is_value(cur, "1"));
	rkv_value_free(cur);
	cr_assert_eq(rkv_cas(c, "fwd", 3, "1", 1, "2", 1, &applied, &cur),
		     RKV_OK);
	cr_assert(applied == 1 && is_value(cur, "2"));
	rkv_value_free(cur);
	cr_assert_eq(rkv_cas(c, "fwd", 3, "1", 1, "3", 1, &applied, &cur),
		     RKV_OK);
	cr_assert(applied == 0 && is_value(cur, "2"));
	rkv_value_free(cur);
	cr_assert_eq(rkv_get_ex(c, "fwd", 3, &serial, &v), RKV_OK);
	cr_assert(is_value(v, "2"));
	rkv_value_free(v);
	rkv_close(c);

	/* The CLI: exit 0 applied, 1 not (printing the value), 2 errors. */
	const char *R = getenv("RINGKV");
	cr_assert_not_null(R);
	cr_assert_eq(h_sh("%s -s %s cas --absent cli one >/dev/null", R, seeds),
		     0);
	cr_assert_eq(h_sh("%s -s %s cas cli one two >/dev/null", R, seeds), 0);
	cr_assert_eq(
	    h_sh("test \"$(%s -s %s cas cli one three)\" = two", R, seeds), 0,
	    "not applied: prints the current value");
	cr_assert_eq(h_sh("%s -s %s cas cli one three >/dev/null", R, seeds),
		     1);
	cr_assert_eq(h_sh("test \"$(%s -s %s get --consistency serial cli)\" = "
			  "two",
			  R, seeds),
		     0);
	cr_assert_eq(h_sh("%s -s %s put-if-absent cli x >/dev/null", R, seeds),
		     1);
	cr_assert_eq(h_sh("%s -s %s delete-if cli two >/dev/null", R, seeds),
		     0);
	cr_assert_eq(h_sh("%s -s %s -c serial get cli >/dev/null", R, seeds),
		     1);
	cr_assert_eq(h_sh("%s -s %s cas cli >/dev/null 2>&1", R, seeds), 2);
	cr_assert_eq(h_sh("%s -s 127.0.0.1:1 cas a b c >/dev/null 2>&1", R), 2);
}

/* ---- mixing plain writes and CAS --------------------------------------- */

Test(cas, plain_writes_and_cas_on_one_key)
{
	start_cluster(3);
	rkv_client *c = client(seeds, 1);
	rkv_call_opts serial = {.consistency = RKV_SERIAL};
	int applied;
	rkv_value *cur, *v;
	rkv_timestamp ts_p1, ts_p2;

	/* A CAS sees a plain write that reached a majority... */
	cr_assert_eq(rkv_put(c, "mix", 3, "p1", 2, &ts_p1), RKV_OK);
	cr_assert_eq(rkv_cas(c, "mix", 3, "p1", 2, "c1", 2, &applied, &cur),
		     RKV_OK);
	cr_assert(applied == 1, "cas read the plain write");
	/* ... and its decision is newer, so plain reads see it. */
	cr_assert(cur->ts.hlc > ts_p1.hlc || (cur->ts.hlc == ts_p1.hlc &&
					      cur->ts.node_id > ts_p1.node_id));
	rkv_value_free(cur);
	cr_assert_eq(rkv_get(c, "mix", 3, &v), RKV_OK);
	cr_assert(is_value(v, "c1"));
	rkv_value_free(v);

	/* A later plain write is newer than the decision (the coordinator's
	 * clock saw its ballot): it wins, and the next CAS sees it. */
	cr_assert_eq(rkv_put(c, "mix", 3, "p2", 2, &ts_p2), RKV_OK);
	cr_assert_eq(rkv_get_ex(c, "mix", 3, &serial, &v), RKV_OK);
	cr_assert(is_value(v, "p2"), "serial read after a plain put: %s",
		  shown(v));
	rkv_value_free(v);
	cr_assert_eq(rkv_cas(c, "mix", 3, "c1", 2, "c2", 2, &applied, &cur),
		     RKV_OK);
	cr_assert(applied == 0 && is_value(cur, "p2"));
	rkv_value_free(cur);
	cr_assert_eq(rkv_cas(c, "mix", 3, "p2", 2, "c3", 2, &applied, &cur),
		     RKV_OK);
	cr_assert(applied == 1);
	rkv_value_free(cur);

	/* A plain delete is a tombstone: CAS sees the key as absent. */
	cr_assert_eq(rkv_delete(c, "mix", 3, NULL), RKV_OK);
	cr_assert_eq(rkv_cas(c, "mix", 3, "c3", 2, "c4", 2, &applied, &cur),
		     RKV_OK);
	cr_assert(applied == 0 && cur == NULL);
	cr_assert_eq(rkv_put_if_absent(c, "mix", 3, "c5", 2, &applied, &cur),
		     RKV_OK);
	cr_assert(applied == 1);
	rkv_value_free(cur);
	cr_assert_eq(rkv_get(c, "mix", 3, &v), RKV_OK);
	cr_assert(is_value(v, "c5"));
	rkv_value_free(v);
	rkv_close(c);
}

/* ---- histories ------------------------------------------------------------
 */

#define NULLV INT64_MIN	  /* the absent value */
#define UNKNOWN INT64_MAX /* a worker does not know the key's value */

enum ev_type { EV_INVOKE, EV_OK, EV_FAIL, EV_INFO };
enum ev_f { F_READ, F_CAS };

/* One line of the history. */
struct ev {
	int64_t t; /* ns since the run began */
	int64_t process;
	uint8_t type, f, applied;
	int key;
	int64_t a, b; /* read: the value; cas: expected, new */
};

struct worker {
	pthread_t th;
	int idx;
	int nkeys;
	atomic_int *stop;
	int64_t t0;
	int64_t last_t; /* times of one worker strictly increase */
	struct ev *ev;
	size_t n, cap;
};

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The time of a worker's next event: strictly after its last one, so
 * sorting the merged history never reorders one process's events. */
static int64_t ev_time(struct worker *w)
{
	int64_t t = now_ns() - w->t0;
	if (t <= w->last_t)
		t = w->last_t + 1;
	w->last_t = t;
	return t;
}

static void add_ev(struct worker *w, struct ev e)
{
	if (w->n == w->cap) {
		w->cap = w->cap ? 2 * w->cap : 1024;
		w->ev = realloc(w->ev, w->cap * sizeof(*w->ev));
		cr_assert_not_null(w->ev);
	}
	w->ev[w->n++] = e;
}

/* A stored value as a number; UNKNOWN when it is not one. */
static int64_t parse_num(const rkv_value *v)
{
	if (!v)
		return NULLV;
	char buf[32];
	if (v->len == 0 || v->len >= sizeof(buf))
		return UNKNOWN;
	memcpy(buf, v->data, v->len);
	buf[v->len] = 0;
	char *end;
	errno = 0;
	long long x = strtoll(buf, &end, 10);
	return *end || errno ? UNKNOWN : (int64_t)x;
}

/* An error whose operation certainly did not take effect. */
static int certainly_not_applied(int rc)
{
	return rc == RKV_ERR_UNAVAILABLE || rc == RKV_ERR_OVERLOADED ||
	       rc == RKV_ERR_CONNECT || rc == RKV_ERR_SHUTTING_DOWN;
}

/* The CAS increment loop: read the key at SERIAL when its value is not
 * known, then compare-and-set it to one more. */
static void *worker_main(void *arg)
{
	struct worker *w = arg;
	rkv_client *c = client(seeds, 1);
	rkv_call_opts serial = {.consistency = RKV_SERIAL};
	int64_t cur[MAX_KEYS];
	for (int k = 0; k < MAX_KEYS; k++)
		cur[k] = UNKNOWN;
	struct rk_rng rng;
	rk_rng_seed(&rng, (uint64_t)w->idx * 7919u + (uint64_t)getpid());
	int64_t gen = 0;
	while (!atomic_load(w->stop)) {
		int k = (int)rk_rng_below(&rng, (uint64_t)w->nkeys);
		char key[8];
		snprintf(key, sizeof(key), "k%d", k);
		int64_t process = (int64_t)w->idx * 100000 + gen;
		if (cur[k] == UNKNOWN) {
			struct ev e = {.t = ev_time(w),
				       .process = process,
				       .type = EV_INVOKE,
				       .f = F_READ,
				       .key = k,
				       .a = NULLV};
			add_ev(w, e);
			rkv_value *v = NULL;
			int rc = rkv_get_ex(c, key, strlen(key), &serial, &v);
			e.t = ev_time(w);
			if (rc == RKV_OK || rc == RKV_ERR_NOT_FOUND) {
				e.type = EV_OK;
				e.a = parse_num(v);
				cr_assert_neq(e.a, UNKNOWN, "%s holds garbage",
					      key);
				cur[k] = e.a;
			} else {
				/* A read changes nothing: drop it. */
				e.type = EV_FAIL;
				usleep(20000);
			}
			rkv_value_free(v);
			add_ev(w, e);
			continue;
		}
		int64_t exp = cur[k];
		int64_t nv = exp == NULLV ? 0 : exp + 1;
		char es[24], ns[24];
		snprintf(es, sizeof(es), "%" PRId64, exp);
		snprintf(ns, sizeof(ns), "%" PRId64, nv);
		struct ev e = {.t = ev_time(w),
			       .process = process,
			       .type = EV_INVOKE,
			       .f = F_CAS,
			       .key = k,
			       .a = exp,
			       .b = nv};
		add_ev(w, e);
		int applied = 0;
		rkv_value *v = NULL;
		int rc = rkv_cas(c, key, strlen(key), exp == NULLV ? NULL : es,
				 strlen(es), ns, strlen(ns), &applied, &v);
		e.t = ev_time(w);
		if (rc == RKV_OK) {
			e.type = EV_OK;
			e.applied = (uint8_t)applied;
			cur[k] = applied ? nv : parse_num(v);
			cr_assert_neq(cur[k], UNKNOWN, "%s holds garbage", key);
		} else if (certainly_not_applied(rc)) {
			e.type = EV_FAIL;
			usleep(20000);
		} else {
			/* Unknown outcome: Jepsen's info; the process may
			 * still be running it, so a new one takes over. */
			e.type = EV_INFO;
			cur[k] = UNKNOWN;
			gen++;
		}
		rkv_value_free(v);
		add_ev(w, e);
	}
	rkv_close(c);
	return NULL;
}

static int ev_cmp(const void *x, const void *y)
{
	const struct ev *a = x, *b = y;
	if (a->t != b->t)
		return a->t < b->t ? -1 : 1;
	/* At equal times, invokes first: that only adds concurrency. */
	return (a->type != EV_INVOKE) - (b->type != EV_INVOKE);
}

static void json_val(FILE *f, int64_t v)
{
	if (v == NULLV)
		fprintf(f, "null");
	else
		fprintf(f, "%" PRId64, v);
}

static const char *const type_names[] = {"invoke", "ok", "fail", "info"};

/* Writes the merged history as JSON lines (tests/lincheck/histories). */
static void write_history(const char *path, const struct ev *e, size_t n)
{
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f, "%s", path);
	for (size_t i = 0; i < n; i++) {
		fprintf(f,
			"{\"process\":%" PRId64 ",\"type\":\"%s\",\"f\":\"%s\","
			"\"key\":\"k%d\",\"value\":",
			e[i].process, type_names[e[i].type],
			e[i].f == F_READ ? "read" : "cas", e[i].key);
		if (e[i].f == F_READ) {
			json_val(f, e[i].type == EV_OK ? e[i].a : NULLV);
		} else {
			fputc('[', f);
			json_val(f, e[i].a);
			fputc(',', f);
			json_val(f, e[i].b);
			fputc(']', f);
		}
		if (e[i].f == F_CAS && e[i].type == EV_OK)
			fprintf(f, ",\"applied\":%s",
				e[i].applied ? "true" : "false");
		fprintf(f, ",\"time\":%" PRId64 "}\n", e[i].t);
	}
	cr_assert_eq(fclose(f), 0);
}

struct run {
	struct worker w[MAX_THREADS + 1]; /* the last: the initial writes */
	int nthreads, nkeys;
	atomic_int stop;
	int joined;
	int64_t t0;
};

static void run_start(struct run *r, int nthreads, int nkeys)
{
	memset(r, 0, sizeof(*r));
	r->nthreads = nthreads;
	r->nkeys = nkeys;
	r->t0 = now_ns();
	/* Every key starts at 0, so increments are 0 -> 1 -> 2 ...  The
	 * history starts with these writes (cas from null to 0). */
	struct worker *init = &r->w[MAX_THREADS];
	*init = (struct worker){.idx = 0, .t0 = r->t0};
	rkv_client *c = client(seeds, 1);
	for (int k = 0; k < nkeys; k++) {
		char key[8];
		snprintf(key, sizeof(key), "k%d", k);
		int applied;
		struct ev e = {.t = ev_time(init),
			       .type = EV_INVOKE,
			       .f = F_CAS,
			       .key = k,
			       .a = NULLV,
			       .b = 0};
		add_ev(init, e);
		cr_assert_eq(rkv_put_if_absent(c, key, strlen(key), "0", 1,
					       &applied, NULL),
			     RKV_OK, "%s", rkv_last_error(c));
		cr_assert_eq(applied, 1);
		e.t = ev_time(init);
		e.type = EV_OK;
		e.applied = 1;
		add_ev(init, e);
	}
	rkv_close(c);
	for (int i = 0; i < nthreads; i++) {
		r->w[i] = (struct worker){.idx = i + 1,
					  .nkeys = nkeys,
					  .stop = &r->stop,
					  .t0 = r->t0};
		cr_assert_eq(
		    pthread_create(&r->w[i].th, NULL, worker_main, &r->w[i]),
		    0);
	}
}

/* The value of key now, read at SERIAL (retried while the cluster
 * settles). */
static int64_t final_value(rkv_client *c, const char *key)
{
	rkv_call_opts serial = {.consistency = RKV_SERIAL};
	for (int i = 0;; i++) {
		rkv_value *v;
		int rc = rkv_get_ex(c, key, strlen(key), &serial, &v);
		if (rc == RKV_OK) {
			int64_t x = parse_num(v);
			rkv_value_free(v);
			return x;
		}
		cr_assert_lt(i, 60, "final read of %s: %s (%s)", key,
			     rkv_strerror(rc), rkv_last_error(c));
		sleep(1);
	}
}

/* Stops the workers (once). */
static void run_stop(struct run *r)
{
	if (r->joined)
		return;
	atomic_store(&r->stop, 1);
	for (int i = 0; i < r->nthreads; i++)
		pthread_join(r->w[i].th, NULL);
	r->joined = 1;
}

/* Stops the workers, checks the counts against the final values and the
 * history with the checker.  Returns the number of applied increments. */
static long run_finish(struct run *r, const char *name)
{
	run_stop(r);
	size_t total = 0;
	r->w[r->nthreads] = r->w[MAX_THREADS];
	int nw = r->nthreads + 1;
	for (int i = 0; i < nw; i++)
		total += r->w[i].n;
	struct ev *all = malloc((total ? total : 1) * sizeof(*all));
	size_t n = 0;
	for (int i = 0; i < nw; i++) {
		if (r->w[i].n)
			memcpy(all + n, r->w[i].ev, r->w[i].n * sizeof(*all));
		n += r->w[i].n;
		free(r->w[i].ev);
		r->w[i].ev = NULL;
		r->w[i].n = 0;
	}
	qsort(all, n, sizeof(*all), ev_cmp);

	/* Accounting per key.  Increments from v to v+1 are the only
	 * writes, so value v was made by exactly one of them. */
	rkv_client *c = client(seeds, 1);
	long applied_total = 0, info_total = 0, fail_total = 0, reads = 0;
	for (int k = 0; k < r->nkeys; k++) {
		char key[8];
		snprintf(key, sizeof(key), "k%d", k);
		int64_t fin = final_value(c, key);
		cr_assert(fin >= 0 && fin < 10000000, "%s = %" PRId64, key,
			  fin);
		unsigned char *ok_made = calloc((size_t)fin + 2, 1);
		unsigned char *maybe = calloc((size_t)fin + 2, 1);
		long ok = 0, unknown = 0;
		for (size_t i = 0; i < n; i++) {
			const struct ev *e = &all[i];
			if (e->key != k || e->f != F_CAS || e->b < 1)
				continue;
			if (e->type == EV_OK && e->applied) {
				cr_assert_leq(e->b, fin,
					      "%s: an acknowledged increment "
					      "to %" PRId64 " is lost (final "
					      "%" PRId64 ")",
					      key, e->b, fin);
				cr_assert_eq(ok_made[e->b], 0,
					     "%s: two acknowledged increments "
					     "made %" PRId64,
					     key, e->b);
				ok_made[e->b] = 1;
				ok++;
			} else if (e->type == EV_INFO) {
				if (e->b <= fin)
					maybe[e->b] = 1;
				unknown++;
			} else if (e->type == EV_FAIL) {
				fail_total++;
			}
		}
		long took_effect = 0;
		for (int64_t v = 1; v <= fin; v++) {
			cr_assert(ok_made[v] || maybe[v],
				  "%s: value %" PRId64 " was made by no "
				  "increment (final %" PRId64 ")",
				  key, v, fin);
			took_effect += !ok_made[v];
		}
		cr_assert_eq(fin, ok + took_effect);
		cr_assert_leq(took_effect, unknown);
		/* Plain QUORUM reads see the decisions too. */
		rkv_value *pv;
		cr_assert_eq(rkv_get(c, key, strlen(key), &pv), RKV_OK);
		cr_assert_eq(parse_num(pv), fin, "%s: quorum read", key);
		rkv_value_free(pv);
		fprintf(stderr,
			"%s %s: final %" PRId64 " = %ld acknowledged "
			"increments + %ld of %ld with unknown outcome\n",
			name, key, fin, ok, took_effect, unknown);
		applied_total += ok;
		info_total += unknown;
		free(ok_made);
		free(maybe);
	}
	for (size_t i = 0; i < n; i++)
		reads += all[i].f == F_READ && all[i].type == EV_OK;
	rkv_close(c);
	fprintf(stderr,
		"%s: %zu events, %ld acknowledged increments, %ld unknown, "
		"%ld failed, %ld SERIAL reads\n",
		name, n, applied_total, info_total, fail_total, reads);

	/* The checker decides linearizability. */
	const char *tmp = getenv("TMPDIR");
	char path[256];
	snprintf(path, sizeof(path), "%s/rkv-cas-%s-%d.jsonl",
		 tmp && *tmp ? tmp : "/tmp", name, (int)getpid());
	write_history(path, all, n);
	free(all);
	const char *R = getenv("RINGKV");
	cr_assert_not_null(R);
	int rc = h_sh("%s lincheck --max-states 0 %s >&2", R, path);
	cr_assert_eq(rc, 0, "ringkv lincheck %s: exit %d (history kept)", path,
		     rc);
	unlink(path);
	return applied_total;
}

/* Counts acknowledged increments after time t (ns since the run). */
static long applied_after(const struct run *r, int64_t t)
{
	long n = 0;
	for (int i = 0; i < r->nthreads; i++)
		for (size_t j = 0; j < r->w[i].n; j++) {
			const struct ev *e = &r->w[i].ev[j];
			n += e->t > t && e->f == F_CAS && e->type == EV_OK &&
			     e->applied;
		}
	return n;
}

/* ---- the Jepsen test --------------------------------------------------- */

Test(cas, twenty_clients_increment_five_keys_while_a_primary_is_killed)
{
	start_cluster(5);
	int victim = primary_of("k0");
	fprintf(stderr, "killing node %d (%s), the primary of k0\n", victim,
		nodes[victim].addr);
	struct run *r = calloc(1, sizeof(*r));
	run_start(r, 20, 5);
	sleep(3);
	cr_assert_eq(h_node_signal(&nodes[victim], SIGKILL), 128 + SIGKILL);
	sleep(4);
	cr_assert_eq(h_node_start(&nodes[victim]), 0);
	int64_t restarted = now_ns() - r->t0;
	/* Until every node sees the restarted one again, then a little
	 * longer under load. */
	for (int i = 0; i < n_nodes; i++)
		h_wait_owners(&nodes[i], (size_t)n_nodes, 1, 60000);
	sleep(4);
	run_stop(r);
	long after = applied_after(r, restarted);
	cr_assert_gt(after, 0, "no increment succeeded after the restart");
	long applied = run_finish(r, "kill");
	cr_assert_gt(applied, 0);
	free(r);
}

/* ---- durability: every replica killed at once ------------------------------
 */

Test(cas, acceptor_state_and_decisions_survive_killing_every_replica)
{
	start_cluster(3);
	struct run *r = calloc(1, sizeof(*r));
	run_start(r, 6, 2);
	sleep(3);
	/* Decisions in progress are cut off at every acceptor at once. */
	for (int i = 0; i < 3; i++)
		kill(nodes[i].pid, SIGKILL);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(h_node_signal(&nodes[i], SIGKILL), 128 + SIGKILL);
	sleep(1);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(h_node_start(&nodes[i]), 0);
	int64_t restarted = now_ns() - r->t0;
	for (int i = 0; i < 3; i++)
		h_wait_owners(&nodes[i], 3, 1, 60000);
	sleep(3);
	run_stop(r);
	cr_assert_gt(applied_after(r, restarted), 0);
	/* What each acceptor had on disk when it was killed (0 when no
	 * decision was in flight there). */
	for (int i = 0; i < 3; i++)
		h_sh("grep 'acceptor states restored' %s | tail -n 1 >&2",
		     nodes[i].log);
	run_finish(r, "killall");
	free(r);
}

/* ---- bad input ------------------------------------------------------------
 */

/* One request frame body by hand, answered on fd: its status. */
static int raw_status(int fd, const uint8_t *body, size_t len, uint64_t *id)
{
	cr_assert_eq(h_send_frame(fd, body, len), 0);
	uint8_t buf[4096];
	long n = h_recv_frame(fd, buf, sizeof(buf), 10000);
	cr_assert_gt(n, 0, "no answer");
	return h_response_status(buf, (size_t)n, id);
}

static int raw_request(int fd, const struct rk_request *q)
{
	struct rk_buf b;
	rk_buf_init(&b);
	cr_assert_eq(rk_wire_encode_request(&b, q), 0);
	uint64_t id;
	int st =
	    raw_status(fd, b.data + RK_FRAME_HDR, b.len - RK_FRAME_HDR, &id);
	cr_assert_eq(id, q->id);
	rk_buf_destroy(&b);
	return st;
}

Test(cas, bad_requests_are_refused_and_the_node_keeps_serving)
{
	start_cluster(3);
	int fd = h_raw_connect(&nodes[0]);
	static uint8_t big[2 << 20];
	memset(big, 'v', sizeof(big));
	struct rk_request q = {.id = 1,
			       .op = RK_OP_CAS,
			       .cas_kind = RK_CAS,
			       .value = {(const uint8_t *)"v", 1}};
	cr_assert_eq(raw_request(fd, &q), RK_EEMPTY_KEY);
	q.key = (struct rk_bytes){big, 1025};
	cr_assert_eq(raw_request(fd, &q), RK_EKEY_TOO_LARGE);
	q.key = (struct rk_bytes){(const uint8_t *)"bad", 3};
	q.expected = (struct rk_bytes){big, (1 << 20) + 1};
	cr_assert_eq(raw_request(fd, &q), RK_EVALUE_TOO_LARGE);
	q.expected = (struct rk_bytes){(const uint8_t *)"e", 1};
	q.value = (struct rk_bytes){big, (1 << 20) + 1};
	cr_assert_eq(raw_request(fd, &q), RK_EVALUE_TOO_LARGE);
	q.value = (struct rk_bytes){(const uint8_t *)"v", 1};
	q.expect_absent = 1;
	cr_assert_eq(raw_request(fd, &q), RK_EBAD_REQUEST);
	q.expect_absent = 0;
	q.cas_kind = (enum rk_cas_kind)9;
	cr_assert_eq(raw_request(fd, &q), RK_EBAD_REQUEST);
	/* Cas{key="k", kind=2, expect_absent=true}: delete_if with a flag
	 * it does not take; then a Cas whose key length runs past it; then
	 * a Cas field that is a varint, not a message. */
	static const uint8_t hand[] = {0x08, 0x05, 0xb2, 0x01, 0x07, 0x0a,
				       0x01, 'k',  0x10, 0x02, 0x20, 0x01};
	static const uint8_t past[] = {0x08, 0x06, 0xb2, 0x01,
				       0x03, 0x0a, 0x09, 'k'};
	static const uint8_t wtype[] = {0x08, 0x07, 0xb0, 0x01, 0x05};
	uint64_t id;
	cr_assert_eq(raw_status(fd, hand, sizeof(hand), &id), RK_EBAD_REQUEST);
	cr_assert_eq(raw_status(fd, past, sizeof(past), &id), RK_EBAD_REQUEST);
	cr_assert_eq(raw_status(fd, wtype, sizeof(wtype), &id),
		     RK_EBAD_REQUEST);
	/* A SERIAL read with every replica's answer makes no sense. */
	struct rk_request g = {.id = 8,
			       .op = RK_OP_GET,
			       .key = {(const uint8_t *)"bad", 3},
			       .consistency = RK_CL_SERIAL,
			       .all_replies = 1};
	cr_assert_eq(raw_request(fd, &g), RK_EBAD_REQUEST);
	/* Nothing was stored, and the connection still works. */
	g.all_replies = 0;
	g.id = 9;
	cr_assert_eq(raw_request(fd, &g), RK_ENOT_FOUND);
	q = (struct rk_request){.id = 10,
				.op = RK_OP_CAS,
				.cas_kind = RK_CAS_PUT_IF_ABSENT,
				.key = {(const uint8_t *)"bad", 3},
				.value = {(const uint8_t *)"ok", 2}};
	cr_assert_eq(raw_request(fd, &q), 0);
	close(fd);

	/* A client leaving with compare-and-sets in flight. */
	for (int round = 0; round < 20; round++) {
		fd = h_raw_connect(&nodes[round % 3]);
		struct rk_buf b;
		rk_buf_init(&b);
		for (int i = 0; i < 50; i++) {
			char key[8];
			snprintf(key, sizeof(key), "fly%d", i % 5);
			struct rk_request c = {
			    .id = (uint64_t)i + 1,
			    .op = RK_OP_CAS,
			    .cas_kind = RK_CAS,
			    .key = {(const uint8_t *)key, strlen(key)},
			    .expect_absent = 1,
			    .value = {(const uint8_t *)"x", 1}};
			cr_assert_eq(rk_wire_encode_request(&b, &c), 0);
		}
		cr_assert_eq(h_send_all(fd, b.data, b.len), 0);
		rk_buf_destroy(&b);
		close(fd);
	}
	/* They still run inside (a queue of them, cas.max_queue per key,
	 * the rest refused OVERLOADED to nobody); once they are through,
	 * every node answers. */
	for (int i = 0; i < 3; i++) {
		rkv_client *c = h_client(&nodes[i]);
		int applied, rc;
		rkv_value *cur;
		for (int tries = 0;; tries++) {
			rc = rkv_cas(c, "fly0", 4, "x", 1, "y", 1, &applied,
				     &cur);
			if (rc != RKV_ERR_OVERLOADED || tries == 600)
				break;
			usleep(100000);
		}
		cr_assert_eq(rc, RKV_OK, "node %d: %s", i, rkv_last_error(c));
		rkv_value_free(cur);
		rkv_close(c);
	}
}

/* A connection that says it is a peer (Hello PEER) as node `as`. */
static int peer_connect(const struct h_node *n, uint64_t as)
{
	int fd = h_raw_connect(n);
	struct rk_request h = {.id = 1,
			       .op = RK_OP_HELLO,
			       .role = RK_ROLE_PEER,
			       .cluster_name = "ringkv",
			       .node_id = as,
			       .protocol_version = RK_PROTOCOL_VERSION};
	cr_assert_eq(raw_request(fd, &h), 0);
	return fd;
}

static void peer_send(int fd, const struct peer_msg *m)
{
	struct rk_buf b;
	rk_buf_init(&b);
	cr_assert_eq(peer_wire_encode(&b, m), 0);
	cr_assert_eq(h_send_all(fd, b.data, b.len), 0);
	rk_buf_destroy(&b);
}

/* Reads one peer message; returns its op (status in *status). */
static enum peer_op peer_answer(int fd, int *status)
{
	uint8_t buf[4096];
	long n = h_recv_frame(fd, buf, sizeof(buf), 10000);
	cr_assert_gt(n, 0, "no answer from the peer port");
	struct peer_msg m;
	struct peer_wire_msg *w;
	struct peer_wire_limits lim = {1 << 20, 1024, 1 << 20};
	char err[160];
	cr_assert_eq(
	    peer_wire_decode(buf, (size_t)n, &lim, &m, &w, err, sizeof(err)), 0,
	    "%s", err);
	enum peer_op op = m.op;
	*status = m.status;
	peer_wire_msg_free(w);
	return op;
}

Test(cas, garbage_paxos_traffic_is_dropped)
{
	start_cluster(3);
	struct rk_rng rng;
	rk_rng_seed(&rng, rk_test_seed("cas.garbage"));
	/* From a node that is not a member: dropped, or refused. */
	int fd = peer_connect(&nodes[0], 0x1234);
	uint8_t junk[512];
	for (int i = 0; i < 200; i++) {
		size_t n = 1 + rk_rng_below(&rng, sizeof(junk) - 1);
		for (size_t j = 0; j < n; j++)
			junk[j] = (uint8_t)rk_rng_next(&rng);
		struct peer_msg m = {.op = PEER_OP_PAXOS, .payload = {junk, n}};
		peer_send(fd, &m);
	}
	struct peer_msg f = {.id = 77,
			     .op = PEER_OP_CAS,
			     .cas = {.op = PEER_CAS_CAS,
				     .key = {(const uint8_t *)"g", 1},
				     .expect_absent = 1,
				     .value = {(const uint8_t *)"spoof", 5},
				     .timeout_ms = 1000}};
	peer_send(fd, &f);
	int st;
	cr_assert_eq(peer_answer(fd, &st), PEER_OP_ERROR);
	cr_assert_eq(st, RK_EBAD_REQUEST, "a non-member is refused");
	close(fd);

	/* From a member's id: random bytes and damaged Paxos messages reach
	 * the decoder, which drops them; a forwarded CAS with bad fields is
	 * refused by the peer codec. */
	fd = peer_connect(&nodes[0], ids[1]);
	for (int i = 0; i < 500; i++) {
		size_t n = 1 + rk_rng_below(&rng, sizeof(junk) - 1);
		for (size_t j = 0; j < n; j++)
			junk[j] = (uint8_t)rk_rng_next(&rng);
		if (i % 2) {
			/* A PaxosMessage-looking start: version 1, then a
			 * body tag, then junk (the CRC never matches). */
			junk[0] = 0x08;
			junk[1] = 0x01;
			junk[2] = (uint8_t)(0x12 + 8 * rk_rng_below(&rng, 6));
		}
		struct peer_msg m = {.op = PEER_OP_PAXOS, .payload = {junk, n}};
		peer_send(fd, &m);
	}
	f.cas.timeout_ms = 0;
	peer_send(fd, &f);
	cr_assert_eq(peer_answer(fd, &st), PEER_OP_ERROR);
	cr_assert_eq(st, RK_EBAD_REQUEST);
	close(fd);

	/* The cluster still decides. */
	rkv_client *c = client(seeds, 1);
	int applied;
	rkv_value *cur;
	cr_assert_eq(rkv_put_if_absent(c, "g", 1, "real", 4, &applied, &cur),
		     RKV_OK, "%s", rkv_last_error(c));
	cr_assert(applied == 1 && is_value(cur, "real"));
	rkv_value_free(cur);
	rkv_close(c);
}
