#include "table.h"

#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "hash.h"

/* The smallest bucket array; also the size a shrinking table stops at. */
#define TABLE_MIN_SIZE 16
/* Grow when records exceed buckets (load factor 1, as redis). */
#define TABLE_GROW_LOAD 1
/* Shrink when records fall under 1/8 of buckets. */
#define TABLE_SHRINK_DIV 8
/* Buckets moved by each lookup or update while rehashing. */
#define TABLE_STEP_PER_OP 1

struct rk_table {
	struct rk_rec **b[2]; /* b[0] main; b[1] target while rehashing */
	size_t size[2];       /* bucket counts, powers of two or 0 */
	size_t used[2];       /* records in each array */
	size_t rehash_idx;    /* next bucket of b[0] to move */
	int rehashing;        /* b[1] is live */
	uint64_t seed;        /* bucket hash seed */
	uint64_t bytes;       /* sum of rk_rec_size */
};

struct rk_rec *rk_rec_new(uint8_t type, rk_ts ts, const void *key,
			  uint16_t klen, const void *val, uint32_t vlen)
{
	struct rk_rec *r =
		malloc(offsetof(struct rk_rec, data) + (size_t)klen + vlen);
	if (!r)
		return NULL;
	r->next = NULL;
	r->ts = ts;
	r->hash = 0;
	r->vlen = vlen;
	r->klen = klen;
	r->type = type;
	r->flags = 0;
	memcpy(r->data, key, klen);
	if (vlen)
		memcpy(r->data + klen, val, vlen);
	return r;
}

struct rk_table *rk_table_new(uint64_t seed)
{
	struct rk_table *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->seed = seed;
	t->b[0] = calloc(TABLE_MIN_SIZE, sizeof(*t->b[0]));
	if (!t->b[0]) {
		free(t);
		return NULL;
	}
	t->size[0] = TABLE_MIN_SIZE;
	return t;
}

void rk_table_free(struct rk_table *t)
{
	if (!t)
		return;
	for (int i = 0; i < 2; i++) {
		for (size_t j = 0; j < t->size[i]; j++) {
			struct rk_rec *r = t->b[i][j];
			while (r) {
				struct rk_rec *next = r->next;
				free(r);
				r = next;
			}
		}
		free(t->b[i]);
	}
	free(t);
}

static uint32_t key_hash(const struct rk_table *t, const void *key, size_t n)
{
	return (uint32_t)rk_hash_seeded(key, n, t->seed);
}

static int rec_is(const struct rk_rec *r, uint32_t h, const void *key,
		  size_t klen)
{
	return r->hash == h && r->klen == klen &&
	       memcmp(r->data, key, klen) == 0;
}

static void finish_rehash(struct rk_table *t)
{
	free(t->b[0]);
	t->b[0] = t->b[1];
	t->size[0] = t->size[1];
	t->used[0] = t->used[1];
	t->b[1] = NULL;
	t->size[1] = t->used[1] = 0;
	t->rehashing = 0;
	t->rehash_idx = 0;
}

int rk_table_rehash_step(struct rk_table *t, int n)
{
	if (!t->rehashing)
		return 0;
	int empty_visits = n * 10; /* bound the work on sparse arrays */
	size_t mask1 = t->size[1] - 1;
	while (n-- > 0 && t->used[0] > 0) {
		while (t->b[0][t->rehash_idx] == NULL) {
			t->rehash_idx++;
			if (--empty_visits == 0)
				return 1;
		}
		struct rk_rec *r = t->b[0][t->rehash_idx];
		while (r) {
			struct rk_rec *next = r->next;
			size_t i = r->hash & mask1;
			r->next = t->b[1][i];
			t->b[1][i] = r;
			t->used[0]--;
			t->used[1]++;
			r = next;
		}
		t->b[0][t->rehash_idx++] = NULL;
	}
	if (t->used[0] == 0) {
		finish_rehash(t);
		return 0;
	}
	return 1;
}

/* Starts a rehash into size buckets when memory allows; a failed
 * allocation just leaves the table as it is (slower, still correct). */
static void start_rehash(struct rk_table *t, size_t size)
{
	if (t->rehashing || size == t->size[0])
		return;
	struct rk_rec **nb = calloc(size, sizeof(*nb));
	if (!nb)
		return;
	t->b[1] = nb;
	t->size[1] = size;
	t->used[1] = 0;
	t->rehash_idx = 0;
	t->rehashing = 1;
}

static void maybe_resize(struct rk_table *t)
{
	if (t->rehashing)
		return;
	size_t n = t->used[0];
	if (n >= t->size[0] * TABLE_GROW_LOAD && t->size[0] <= SIZE_MAX / 4)
		start_rehash(t, t->size[0] * 2);
	else if (t->size[0] > TABLE_MIN_SIZE && n < t->size[0] / TABLE_SHRINK_DIV) {
		size_t s = TABLE_MIN_SIZE;
		while (s < n * 2)
			s *= 2;
		start_rehash(t, s);
	}
}

/* Finds the link pointing at key's record (or at the NULL ending its
 * chain in the array new records go to). */
static struct rk_rec **find_link(struct rk_table *t, uint32_t h,
				 const void *key, size_t klen, int *which)
{
	for (int i = 0; i <= t->rehashing; i++) {
		struct rk_rec **link = &t->b[i][h & (t->size[i] - 1)];
		while (*link) {
			if (rec_is(*link, h, key, klen)) {
				*which = i;
				return link;
			}
			link = &(*link)->next;
		}
	}
	return NULL;
}

struct rk_rec *rk_table_get(struct rk_table *t, const void *key, size_t klen)
{
	rk_table_rehash_step(t, TABLE_STEP_PER_OP);
	int which;
	struct rk_rec **link = find_link(t, key_hash(t, key, klen), key, klen,
					 &which);
	return link ? *link : NULL;
}

struct rk_rec *rk_table_find(struct rk_table *t, const void *key, size_t klen,
			     struct rk_table_pos *pos)
{
	rk_table_rehash_step(t, TABLE_STEP_PER_OP);
	pos->hash = key_hash(t, key, klen);
	pos->link = find_link(t, pos->hash, key, klen, &pos->which);
	return pos->link ? *pos->link : NULL;
}

int rk_table_put(struct rk_table *t, struct rk_rec *rec, struct rk_rec **old)
{
	struct rk_table_pos pos;
	rk_table_find(t, rec->data, rec->klen, &pos);
	return rk_table_set(t, &pos, rec, old);
}

int rk_table_set(struct rk_table *t, const struct rk_table_pos *pos,
		 struct rk_rec *rec, struct rk_rec **old)
{
	uint32_t h = pos->hash;
	rec->hash = h;
	struct rk_rec **link = pos->link;
	if (link) {
		struct rk_rec *o = *link;
		rec->next = o->next;
		*link = rec;
		o->next = NULL;
		t->bytes += rk_rec_size(rec);
		t->bytes -= rk_rec_size(o);
		*old = o;
		return 0;
	}
	*old = NULL;
	int i = t->rehashing; /* new records go to the target array */
	size_t b = h & (t->size[i] - 1);
	rec->next = t->b[i][b];
	t->b[i][b] = rec;
	t->used[i]++;
	t->bytes += rk_rec_size(rec);
	maybe_resize(t);
	return 0;
}

struct rk_rec *rk_table_remove(struct rk_table *t, const void *key,
			       size_t klen)
{
	rk_table_rehash_step(t, TABLE_STEP_PER_OP);
	int which;
	struct rk_rec **link = find_link(t, key_hash(t, key, klen), key, klen,
					 &which);
	if (!link)
		return NULL;
	struct rk_rec *r = *link;
	*link = r->next;
	r->next = NULL;
	t->used[which]--;
	t->bytes -= rk_rec_size(r);
	maybe_resize(t);
	return r;
}

size_t rk_table_count(const struct rk_table *t)
{
	return t->used[0] + t->used[1];
}

uint64_t rk_table_bytes(const struct rk_table *t)
{
	return t->bytes;
}

static uint64_t rev(uint64_t v)
{
	v = ((v >> 1) & 0x5555555555555555ull) | ((v & 0x5555555555555555ull) << 1);
	v = ((v >> 2) & 0x3333333333333333ull) | ((v & 0x3333333333333333ull) << 2);
	v = ((v >> 4) & 0x0f0f0f0f0f0f0f0full) | ((v & 0x0f0f0f0f0f0f0f0full) << 4);
	return __builtin_bswap64(v);
}

static void scan_bucket(struct rk_rec *r, rk_table_scan_fn fn, void *ctx)
{
	for (; r; r = r->next)
		fn(ctx, r);
}

/* The reverse-binary cursor of redis's dictScan: incrementing the
 * reversed cursor visits buckets high-bit first, so a bucket of a smaller
 * array and all its expansions in a larger one are visited together. */
uint64_t rk_table_scan(struct rk_table *t, uint64_t v, rk_table_scan_fn fn,
		       void *ctx)
{
	if (!t->rehashing) {
		uint64_t m0 = t->size[0] - 1;
		scan_bucket(t->b[0][v & m0], fn, ctx);
		v |= ~m0;
		v = rev(v);
		v++;
		return rev(v);
	}
	int small = t->size[0] <= t->size[1] ? 0 : 1;
	int large = 1 - small;
	uint64_t m0 = t->size[small] - 1, m1 = t->size[large] - 1;
	scan_bucket(t->b[small][v & m0], fn, ctx);
	do {
		scan_bucket(t->b[large][v & m1], fn, ctx);
		v |= ~m1;
		v = rev(v);
		v++;
		v = rev(v);
	} while (v & (m0 ^ m1));
	return v;
}
