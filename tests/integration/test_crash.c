/* fsync=always: kill -9 during a write load loses no acknowledged write. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "rng.h"

#define CYCLES 20
#define MAX_ACKED 2000000

struct load {
	struct h_node *node;
	int cycle;
	atomic_int stop;
	int *acked;        /* indexes acknowledged in this cycle */
	atomic_int nacked;
	int unknown;       /* requests cut off by the kill */
};

static void key_of(char *k, size_t n, int cycle, int i)
{
	snprintf(k, n, "c%02d-%07d", cycle, i);
}

static void value_of(char *v, size_t n, int cycle, int i)
{
	snprintf(v, n, "value-%d-%d-padding-padding-padding", cycle, i);
}

/* Writes batches of 32 puts until a batch fails (the node died). */
static void *writer(void *arg)
{
	struct load *l = arg;
	rkv_client *c;
	rkv_options o;
	rkv_options_init(&o);
	o.request_timeout_ms = 10000;
	if (rkv_connect(l->node->addr, &o, &c) != RKV_OK)
		return NULL;
	rkv_batch *b = rkv_batch_new();
	int next = 0;
	char k[32], v[64];
	while (!atomic_load(&l->stop)) {
		rkv_batch_reset(b);
		for (int j = 0; j < 32; j++) {
			key_of(k, sizeof(k), l->cycle, next + j);
			value_of(v, sizeof(v), l->cycle, next + j);
			rkv_batch_put(b, k, strlen(k), v, strlen(v));
		}
		rkv_batch_exec(c, b);
		int failed = 0;
		for (int j = 0; j < 32; j++) {
			if (rkv_batch_status(b, (size_t)j) == RKV_OK) {
				int n = atomic_load(&l->nacked);
				if (n < MAX_ACKED) {
					l->acked[n] = next + j;
					atomic_store(&l->nacked, n + 1);
				}
			} else {
				failed = 1;
				l->unknown++;
			}
		}
		next += 32;
		if (failed)
			break;
	}
	rkv_batch_free(b);
	rkv_close(c);
	return NULL;
}

Test(crash, kill9_under_write_load_loses_no_acknowledged_write,
     .timeout = 600)
{
	static const char *const args[] = {"--fsync", "always",
					   "--set", "storage.segment_size=256KiB",
					   NULL};
	struct h_node node;
	h_node_init(&node, args);
	struct rk_rng rng;
	rk_rng_seed(&rng, rk_test_seed("crash.kill9"));
	int **acked = calloc(CYCLES, sizeof(*acked));
	int *nacked = calloc(CYCLES, sizeof(*nacked));
	long total = 0;
	for (int cycle = 0; cycle < CYCLES; cycle++) {
		cr_assert_eq(h_node_start(&node), 0, "start, cycle %d", cycle);
		struct load l = {.node = &node, .cycle = cycle};
		l.acked = malloc(MAX_ACKED * sizeof(int));
		pthread_t th[2];
		/* Two writers: concurrent writes share fsyncs. */
		struct load l2 = {.node = &node, .cycle = cycle + 100};
		l2.acked = malloc(MAX_ACKED * sizeof(int));
		pthread_create(&th[0], NULL, writer, &l);
		pthread_create(&th[1], NULL, writer, &l2);
		usleep((useconds_t)(50000 + rk_rng_below(&rng, 400000)));
		cr_assert_eq(h_node_signal(&node, SIGKILL), 128 + SIGKILL);
		atomic_store(&l.stop, 1);
		atomic_store(&l2.stop, 1);
		pthread_join(th[0], NULL);
		pthread_join(th[1], NULL);
		/* Merge both writers' acks under their own cycle numbers. */
		acked[cycle] = l.acked;
		nacked[cycle] = atomic_load(&l.nacked);
		cr_assert_gt(nacked[cycle], 0, "cycle %d acknowledged nothing",
			     cycle);
		total += nacked[cycle] + atomic_load(&l2.nacked);

		/* Restart and read back every acknowledged write so far. */
		cr_assert_eq(h_node_start(&node), 0, "restart, cycle %d", cycle);
		rkv_client *c = h_client(&node);
		rkv_batch *b = rkv_batch_new();
		char k[32], v[64];
		for (int cy = 0; cy <= cycle; cy++) {
			rkv_batch_reset(b);
			for (int i = 0; i < nacked[cy]; i++) {
				key_of(k, sizeof(k), cy, acked[cy][i]);
				rkv_batch_get(b, k, strlen(k));
			}
			cr_assert_eq(rkv_batch_exec(c, b), RKV_OK);
			for (int i = 0; i < nacked[cy]; i++) {
				value_of(v, sizeof(v), cy, acked[cy][i]);
				const rkv_value *val = rkv_batch_value(b, (size_t)i);
				cr_assert_eq(rkv_batch_status(b, (size_t)i), RKV_OK,
					     "cycle %d: acknowledged write %d of "
					     "cycle %d lost",
					     cycle, acked[cy][i], cy);
				cr_assert(val->len == strlen(v) &&
					  !memcmp(val->data, v, val->len));
			}
		}
		rkv_batch_reset(b);
		for (int i = 0; i < atomic_load(&l2.nacked); i++) {
			key_of(k, sizeof(k), cycle + 100, l2.acked[i]);
			rkv_batch_get(b, k, strlen(k));
		}
		cr_assert_eq(rkv_batch_exec(c, b), RKV_OK);
		for (size_t i = 0; i < rkv_batch_count(b); i++)
			cr_assert_eq(rkv_batch_status(b, i), RKV_OK,
				     "second writer, cycle %d", cycle);
		rkv_batch_free(b);
		rkv_close(c);
		free(l2.acked);
		h_node_signal(&node, SIGTERM);
	}
	fprintf(stderr, "crash: %d kill -9 cycles, %ld acknowledged writes, "
			"all present after restart\n",
		CYCLES, total);
	for (int i = 0; i < CYCLES; i++)
		free(acked[i]);
	free(acked);
	free(nacked);
	h_node_destroy(&node);
}

/* A write or fsync error is fatal: the node stops (exit 3) instead of
 * retrying, and everything it acknowledged before is on disk.  A small
 * tmpfs that fills up makes the error real. */
Test(crash, a_full_disk_stops_the_node_and_keeps_acknowledged_writes,
     .timeout = 300)
{
	char mnt[] = "/tmp/rkv-full-XXXXXX";
	cr_assert_not_null(mkdtemp(mnt));
	if (h_sh("mount -t tmpfs -o size=3m tmpfs %s 2>/dev/null", mnt) != 0) {
		rmdir(mnt);
		cr_skip_test("cannot mount a tmpfs here (needs root)");
	}
	char data[64];
	snprintf(data, sizeof(data), "%s/data", mnt);
	static const char *const base[] = {"--fsync", "always", NULL};
	struct h_node node;
	h_node_init(&node, base);
	/* Point the node at the small filesystem. */
	h_sh("rm -rf '%s'", node.dir);
	snprintf(node.dir, sizeof(node.dir), "%s", mnt);
	snprintf(node.log, sizeof(node.log), "/tmp/rkv-full-%d.log", getpid());
	cr_assert_eq(h_node_start(&node), 0);
	rkv_client *c = h_client(&node);
	char val[8192];
	memset(val, 'f', sizeof(val));
	int acked = 0, rc = RKV_OK;
	char k[32];
	for (int i = 0; i < 10000; i++) {
		snprintf(k, sizeof(k), "full-%d", i);
		rc = rkv_put(c, k, strlen(k), val, sizeof(val), NULL);
		if (rc != RKV_OK)
			break;
		acked++;
	}
	cr_assert_neq(rc, RKV_OK, "3 MiB took 80 MiB of writes");
	cr_assert_gt(acked, 10);
	rkv_close(c);
	int st = h_node_signal(&node, SIGKILL); /* reaps it if it exited */
	cr_assert_eq(st, 3, "exit status %d, want 3 (fatal I/O)", st);
	cr_assert_eq(h_sh("grep -q 'FATAL' %s", node.log), 0);
	/* Move the data to roomy disk and check every acknowledged write. */
	char roomy[64];
	snprintf(roomy, sizeof(roomy), "/tmp/rkv-roomy-%d", getpid());
	h_sh("rm -rf %s && mkdir -p %s && cp -a %s/data %s/", roomy, roomy,
	     mnt, roomy);
	h_sh("umount %s && rmdir %s", mnt, mnt);
	snprintf(node.dir, sizeof(node.dir), "%s", roomy);
	cr_assert_eq(h_node_start(&node), 0);
	c = h_client(&node);
	for (int i = 0; i < acked; i++) {
		snprintf(k, sizeof(k), "full-%d", i);
		rkv_value *v;
		cr_assert_eq(rkv_get(c, k, strlen(k), &v), RKV_OK,
			     "acknowledged %s lost", k);
		cr_assert_eq(v->len, sizeof(val));
		rkv_value_free(v);
	}
	rkv_close(c);
	fprintf(stderr, "full disk: %d writes acknowledged before the node "
			"stopped with exit 3; all present after restart\n",
		acked);
	h_node_destroy(&node);
	unlink(node.log);
}
