/* table.h: the in-memory hash table of records, keyed by byte strings.
 *
 * Chained hashing with power-of-two bucket arrays and incremental rehashing
 * (after redis's dict.c): growing never stops the world; each operation
 * moves a few buckets, and rk_table_rehash_step lets the owner move more
 * when idle.  The bucket hash is seeded per table so clients cannot choose
 * colliding keys.
 *
 * rk_table_scan walks the table with redis's reverse-binary cursor: every
 * record present for the whole walk is visited at least once, even while
 * the table grows, shrinks or is modified between calls.  Compaction relies
 * on this.
 *
 * Pure: no I/O.  The table owns every record it holds and frees them in
 * rk_table_free.
 */
#ifndef RK_TABLE_H
#define RK_TABLE_H

#include <stddef.h>
#include <stdint.h>

#include "record.h"

struct rk_table;

/* Returns a new empty table or NULL when out of memory. */
struct rk_table *rk_table_new(uint64_t seed);
/* Frees the table and every record in it. */
void rk_table_free(struct rk_table *t);

/* The record for key, or NULL.  Borrowed: valid until the next call that
 * modifies the table. */
struct rk_rec *rk_table_get(struct rk_table *t, const void *key,
			    size_t klen);

/* Inserts rec, taking ownership.  A record with the same key is unlinked
 * and returned through *old (caller frees it), else *old = NULL.  Returns 0
 * or RK_ENOMEM (then rec stays the caller's). */
int rk_table_put(struct rk_table *t, struct rk_rec *rec, struct rk_rec **old);

/* Where a key is or would go: one lookup serves a read-then-write
 * (last-writer-wins needs the old record before deciding).  Valid until
 * the next call that modifies the table. */
struct rk_table_pos {
	struct rk_rec **link; /* the key's record is *link; NULL if absent */
	uint32_t hash;
	int which;            /* bucket array holding it */
};

/* Looks key up once; returns the record or NULL and fills *pos. */
struct rk_rec *rk_table_find(struct rk_table *t, const void *key, size_t klen,
			     struct rk_table_pos *pos);

/* Installs rec (same key as the find) at pos, taking ownership; the
 * record it replaces, if any, is returned through *old for the caller to
 * free.  Returns 0 or RK_ENOMEM. */
int rk_table_set(struct rk_table *t, const struct rk_table_pos *pos,
		 struct rk_rec *rec, struct rk_rec **old);

/* Unlinks and returns the record for key (caller frees it), or NULL. */
struct rk_rec *rk_table_remove(struct rk_table *t, const void *key,
			       size_t klen);

size_t rk_table_count(const struct rk_table *t);
/* Sum of rk_rec_size over all records. */
uint64_t rk_table_bytes(const struct rk_table *t);

/* Moves up to n buckets of a rehash in progress.  Returns 1 while rehashing
 * remains, 0 when none is in progress. */
int rk_table_rehash_step(struct rk_table *t, int n);

/* Calls fn for every record in the next bucket(s) after cursor and returns
 * the next cursor; 0 means the walk is complete.  Start with cursor 0.  fn
 * must not modify the table. */
typedef void (*rk_table_scan_fn)(void *ctx, const struct rk_rec *rec);
uint64_t rk_table_scan(struct rk_table *t, uint64_t cursor,
		       rk_table_scan_fn fn, void *ctx);

#endif
