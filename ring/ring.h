/* ring.h: the consistent-hashing ring: which nodes own a key.
 *
 * A ring is an immutable snapshot built from the member list: every member
 * (node id, weight, tokens) puts one virtual node (vnode) on the 64-bit
 * token circle per token.  A key lives at token rk_key_hash(key) (XXH3-64,
 * seed 0: the wire contract smart clients share, see common/hash.h).  The
 * vnode that owns a token is the first one clockwise at or after it; its
 * preference list is the first N distinct physical nodes met walking on
 * clockwise from there.  Two nodes that agree on the member list (ids,
 * weights and tokens) build identical rings: same lookups, same checksum.
 *
 * Ranges are half-open: a vnode with token T whose predecessor is P owns
 * (P, T], wrapping through 0 when P >= T.  A ring with one vnode owns the
 * whole circle with it.
 *
 * A member's tokens are chosen once, when it first joins
 * (ring_allocate_tokens), persisted and gossiped with the token codec
 * below, and never re-derived: the ring itself never invents tokens.
 *
 * Pure: no I/O, no clock, no globals.  A ring is read-only after ring_new,
 * so any number of threads may use one at once; a membership change builds
 * a new ring and swaps it in.  The essay is at the top of ring.c.
 */
#ifndef RK_RING_H
#define RK_RING_H

#include <stddef.h>
#include <stdint.h>

/* The most replicas a preference list can hold.  Diff entries carry their
 * owner lists inline with this bound; Dynamo-style stores run 3 to 5. */
#define RING_RF_MAX 8

/* Default vnodes per unit of weight: 256 keeps the largest node within a
 * few percent of the mean once tokens are allocated (see ring.c), while a
 * 100-node ring stays at 25,600 vnodes, a 200 KiB search array. */
#define RING_VNODES_PER_WEIGHT 256

/* The most tokens one member may hold (weight x vnodes per weight).  Bounds
 * the decoder and the memory a hostile member list can make us spend. */
#define RING_TOKENS_MAX 65536

/* The most members a ring may hold: bounds what a hostile member list can
 * make a node build. */
#define RING_MEMBERS_MAX 65536

struct ring;

/* One member as the caller knows it.  tokens is borrowed for the duration
 * of ring_new only; the ring keeps its own copy. */
struct ring_member {
	uint64_t node_id;	/* unique within the ring */
	uint32_t weight;	/* >= 1; relative capacity, for shares */
	const uint64_t *tokens; /* the member's tokens, any order, distinct */
	size_t n_tokens;	/* 1 .. RING_TOKENS_MAX */
};

struct ring_config {
	uint64_t epoch;	 /* caller's version number, stored as is */
	uint32_t rf_max; /* preference lists precomputed up to this many
			    nodes (1 .. RING_RF_MAX; 0 = 3); longer lookups
			    still work, by walking the ring */
};

/* Builds a ring from members[0, n) in any order (n may be 0: the empty ring
 * answers every lookup with no nodes).  Members are sorted by node id and
 * each member's tokens ascending, so input order never matters.
 *
 * Duplicates: two members with one node id, weight 0, no tokens, more than
 * RING_TOKENS_MAX tokens, or one member naming a token twice are rejected
 * with RK_EINVALID (the token codec already refuses such lists).  The same
 * token held by two members is not an error, since every node must still
 * build the ring: the member with the smaller node id keeps that vnode and
 * the other loses it (ring_member_vnodes then counts fewer vnodes than it
 * has tokens).  Allocated tokens collide only when two nodes join at once
 * against the same ring, which the join protocol should serialize anyway.
 *
 * Returns 0 and *out (owned by the caller, release with ring_free), or
 * RK_EINVALID / RK_ENOMEM. */
int ring_new(const struct ring_member *members, size_t n,
	     const struct ring_config *cfg, struct ring **out);

/* Frees r; NULL is fine. */
void ring_free(struct ring *r);

/* The epoch given in ring_config. */
uint64_t ring_epoch(const struct ring *r);

/* A 64-bit digest of the canonical member list: XXH3-64 (seed 0) over
 * "RKR1", u32 member count, then per member in node id order u64 node id,
 * u32 weight, u32 token count and the tokens ascending, all little-endian.
 * The epoch is not included: equal checksums mean the same ring content
 * whatever each side numbered it. */
uint64_t ring_checksum(const struct ring *r);

/* Members, in node id order, i < ring_member_count. */
size_t ring_member_count(const struct ring *r);
uint64_t ring_member_id(const struct ring *r, size_t i);
uint32_t ring_member_weight(const struct ring *r, size_t i);
/* Vnodes member i holds in this ring (its tokens minus any lost to a
 * collision, see ring_new). */
size_t ring_member_vnodes(const struct ring *r, size_t i);

/* The index of node_id among the members, or RK_ENOT_FOUND. */
int ring_member_find(const struct ring *r, uint64_t node_id, size_t *i);

/* Copies the tokens of member i (ascending, as given to ring_new) into
 * out[0, cap).  Returns 0 with *n set, or RK_EINVALID when cap is too
 * small (*n still says how many there are). */
int ring_member_tokens(const struct ring *r, size_t i, uint64_t *out,
		       size_t cap, size_t *n);

/* Vnodes in token order, i < ring_vnode_count. */
size_t ring_vnode_count(const struct ring *r);
uint64_t ring_vnode_token(const struct ring *r, size_t i);
uint64_t ring_vnode_node(const struct ring *r, size_t i);

/* ---- lookup ---- */

/* The preference list of token: the first n distinct nodes clockwise from
 * the first vnode at or after token (wrapping past the top of the space),
 * in preference order, into out_nodes[0, n).  *n_out = min(n, members
 * holding vnodes).
 * A binary search and a copy when n <= rf_max; a walk otherwise.  Never
 * allocates.  Returns 0. */
int ring_lookup(const struct ring *r, uint64_t token, size_t n,
		uint64_t *out_nodes, size_t *n_out);

/* Decides whether a node can take writes now (gossip's view); ctx is the
 * caller's. */
typedef int (*ring_healthy_fn)(void *ctx, uint64_t node_id);

/* Sloppy quorum (Dynamo 4.6): the n owners of token as ring_lookup gives
 * them, healthy or not, in out_nodes[0, *n_owners), then up to `extra` more
 * distinct nodes further clockwise for which healthy() returned nonzero, in
 * out_nodes[*n_owners, *n_owners + *n_extra); healthy NULL counts every
 * node as healthy.  out_nodes must hold n + extra ids.  healthy is called
 * only on nodes past the owners, and again for an unhealthy node each time
 * the walk meets another of its vnodes (remembering it would need memory
 * per member), so it should be a cheap look-up.  Never allocates.
 * Returns 0. */
int ring_lookup_extended(const struct ring *r, uint64_t token, size_t n,
			 size_t extra, ring_healthy_fn healthy, void *ctx,
			 uint64_t *out_nodes, size_t *n_owners,
			 size_t *n_extra);

/* ---- partitions ---- */

/* A partition is one vnode's range (start, end].  Its id is end, the
 * vnode's token: stable across rings for as long as that vnode exists,
 * whatever joins or leaves elsewhere (a new token inside the range creates
 * a new partition and shrinks this one; it never renames it).  Every token
 * in the range has the same preference list, so Paxos, catch-up and
 * streaming can work per partition. */
struct ring_partition {
	uint64_t id;	/* == end */
	uint64_t start; /* exclusive; == end when one vnode owns it all */
	uint64_t end;	/* inclusive */
};

/* The partition holding token.  Returns 0, or RK_ENOT_FOUND for an empty
 * ring. */
int ring_partition(const struct ring *r, uint64_t token,
		   struct ring_partition *out);

/* The partition with this id.  Returns 0, or RK_ENOT_FOUND when no vnode
 * has token id in r. */
int ring_partition_by_id(const struct ring *r, uint64_t id,
			 struct ring_partition *out);

/* ---- comparing rings ---- */

/* One range (start, end] whose replica set differs between two rings.
 * start == end means the whole circle. */
struct ring_range_change {
	uint64_t start;			 /* exclusive */
	uint64_t end;			 /* inclusive */
	uint32_t n_old;			 /* owners in the old ring */
	uint32_t n_new;			 /* owners in the new ring */
	uint64_t old_nodes[RING_RF_MAX]; /* preference order */
	uint64_t new_nodes[RING_RF_MAX]; /* preference order */
};

/* The ranges whose set of rf owners (1 .. RING_RF_MAX) differs between old
 * and new: every token in a listed range has exactly the listed owners, and
 * every token outside them has the same owner set in both (the order may
 * differ: a new primary for the same replicas moves no data).  Adjacent
 * ranges with identical owner lists are merged.  The list runs clockwise
 * from token 0: ends ascending, except that a range wrapping through 0
 * (start >= end) comes last.  Either ring may be empty.
 *
 * Returns 0 with *out (owned by the caller: free()) and *n (0 and NULL when
 * nothing changes), or RK_EINVALID / RK_ENOMEM. */
int ring_diff(const struct ring *old_ring, const struct ring *new_ring,
	      size_t rf, struct ring_range_change **out, size_t *n);

/* Each member's share of the key space counting all rf replicas: the
 * fraction of tokens for which it is among the first rf distinct nodes,
 * into shares[i] for member i (shares must hold ring_member_count
 * entries); they sum to min(rf, members holding vnodes).  *max_mean (may
 * be NULL) is the largest share per unit of weight over the mean share per
 * unit of weight: 1.0 is perfect balance.  Returns 0, or RK_EINVALID when
 * rf is 0 or above RING_RF_MAX, or RK_ENOMEM. */
int ring_shares(const struct ring *r, size_t rf, double *shares,
		double *max_mean);

/* ---- choosing tokens ---- */

/* Chooses the tokens for node_id when it joins `current` (may be empty)
 * with weight * vnodes_per_weight vnodes, so that load counting all rf
 * replicas stays even; see the essay in ring.c.  Deterministic: the same
 * ring and arguments give the same tokens.  When node_id is already a
 * member (a weight change) its present tokens are kept, and new ones added
 * or the least useful ones dropped to reach the new count.
 *
 * Writes the tokens ascending into out[0, cap) and their number into
 * *n_out.  Returns 0, or RK_EINVALID (weight or vnodes_per_weight 0, more
 * than RING_TOKENS_MAX tokens, cap too small, rf outside 1..RING_RF_MAX) or
 * RK_ENOMEM. */
int ring_allocate_tokens(const struct ring *current, uint64_t node_id,
			 uint32_t weight, uint32_t vnodes_per_weight, size_t rf,
			 uint64_t *out, size_t cap, size_t *n_out);

/* ---- token codec: how a member's tokens are stored and gossiped ---- */

/* Format, version 1, little-endian:
 *   "RKT1" | u32 count | count x u64 token, strictly ascending |
 *   u32 CRC-32C of everything before it
 * count is 1 .. RING_TOKENS_MAX; the ascending rule makes the encoding of a
 * token set unique and duplicates impossible. */
#define RING_TOKENS_MAGIC "RKT1"

/* Bytes needed to encode n tokens. */
size_t ring_tokens_encoded_size(size_t n);

/* Encodes tokens[0, n) (any order) into buf[0, cap).  Returns 0 with *len,
 * or RK_EINVALID (n out of bounds, a duplicate token, cap too small) or
 * RK_ENOMEM. */
int ring_tokens_encode(const uint64_t *tokens, size_t n, uint8_t *buf,
		       size_t cap, size_t *len);

/* Decodes buf[0, len) into out[0, cap), ascending.  Every field is checked
 * before use: magic, count bounds, exact length, checksum, strictly
 * ascending tokens.  Returns 0 with *n, RK_ECORRUPT for any malformed
 * input, or RK_EINVALID when the tokens do not fit in cap (*n then says how
 * many there are). */
int ring_tokens_decode(const uint8_t *buf, size_t len, uint64_t *out,
		       size_t cap, size_t *n);

#endif
