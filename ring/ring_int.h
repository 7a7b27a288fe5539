/* ring_int.h: the inside of a ring snapshot, shared by ring.c and alloc.c
 * only.  Nothing outside ring/ includes this. */
#ifndef RK_RING_INT_H
#define RK_RING_INT_H

#include <stddef.h>
#include <stdint.h>

#include "ring.h"

struct ring_node {
	uint64_t id;
	uint32_t weight;
	uint32_t n_tokens; /* as given */
	uint32_t n_vnodes; /* tokens that won their vnode */
	size_t tok_off;	   /* first of its tokens in ring.member_tokens */
};

struct ring {
	uint64_t epoch;
	uint64_t checksum;
	uint32_t rf_max;    /* from the config */
	uint32_t n_present; /* members holding at least one vnode */

	size_t n_members;
	struct ring_node *members; /* ascending node id */
	uint64_t *member_tokens;   /* each member's tokens, ascending */

	size_t n_vnodes;
	uint64_t *tokens; /* ascending, distinct */
	uint32_t *owner;  /* member index of each vnode */

	/* For each vnode, its first rf_stored distinct members walking
	 * clockwise, as member indices: pref[i * rf_stored + k]. */
	uint32_t rf_stored; /* min(rf_max, n_present) */
	uint32_t *pref;
};

/* qsort order of uint64_t. */
static inline int ring_cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

/* Index of the first vnode whose token is >= token, n_vnodes when none
 * (the caller wraps to 0).  n_vnodes > 0. */
static inline size_t ring_lower_bound(const struct ring *r, uint64_t token)
{
	const uint64_t *base = r->tokens;
	size_t len = r->n_vnodes;
	/* Branch-free halving: the compiler turns the choice into a cmov, so
	 * a random key costs no mispredicted branches. */
	while (len > 1) {
		size_t half = len / 2;
		base = base[half - 1] < token ? base + half : base;
		len -= half;
	}
	return (size_t)(base - r->tokens) + (*base < token);
}

/* The vnode owning token: the first at or after it, wrapping. */
static inline size_t ring_vnode_of(const struct ring *r, uint64_t token)
{
	size_t i = ring_lower_bound(r, token);
	return i == r->n_vnodes ? 0 : i;
}

/* The first n distinct members clockwise from vnode v, as member indices
 * into out[0, n); returns how many (fewer when the ring has fewer). */
size_t ring_pref_idx(const struct ring *r, size_t v, size_t n, uint32_t *out);

#endif
