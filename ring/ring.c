/* ring.c: the ring snapshot: building, lookup, partitions, diff, shares.
 *
 * Consistent hashing.  Karger et al. (STOC 1997) hash both keys and nodes
 * onto a circle and give each key to the first node clockwise from it.
 * When a node joins or leaves, only the keys between it and its
 * predecessor move: about 1/N of them, where rehashing "key mod N" would
 * move nearly all.  With one point per node the arcs are very uneven (the
 * largest is about ln N / N), so each physical node is put on the circle
 * many times as virtual nodes (vnodes); a node's load is then the sum of
 * many arcs and evens out, and a bigger node simply gets more vnodes.  Our
 * circle is the full unsigned 64-bit token space; a key sits at
 * rk_key_hash(key) (XXH3-64, seed 0; part of the wire contract, see
 * common/hash.h); a vnode at token T whose predecessor is at P owns
 * (P, T].
 *
 * Replication (Dynamo, SOSP 2007, section 4.3): a key's preference list is
 * the first N distinct physical nodes met walking clockwise from it,
 * skipping vnodes of nodes already chosen.  We precompute that list for
 * every vnode up to rf_max, so a lookup is one binary search over the
 * sorted tokens and a copy, and allocates nothing.  Every token of one
 * vnode range has the same list, which makes the range the unit of work:
 * a partition, named by the vnode's token (stable as long as the vnode
 * lives, whatever happens elsewhere on the ring).
 *
 * Choosing tokens.  Dynamo section 6.2 compares three strategies:
 * (1) T random tokens per node, ranges defined by the tokens; (2) random
 * tokens but Q fixed equal partitions; (3) Q/S tokens per node over Q
 * equal partitions, a joining node stealing whole partitions from the
 * others.  Strategy 3 balances best, but a join rewrites other nodes'
 * tokens, and we want each member's tokens fixed for its lifetime: chosen
 * once when it first joins, kept in its data directory, carried in its
 * gossip, so that the ring is a pure function of the member list and two
 * nodes that agree on the members agree on every lookup.  Random tokens
 * (strategy 1) have that property but not the balance: with 256 vnodes and
 * rf 3, ten random layouts of 50 or 100 nodes give a most loaded node at
 * 1.09x the mean on average and up to 1.14x.
 *
 * So, like Cassandra 3.0's allocator for a replication factor
 * (ReplicationAwareTokenAllocator), a joining node picks its tokens against
 * the current ring (alloc.c).  Every vnode w has a replicated span: the
 * keys for which w is how its node is first reached and the node is among
 * the first rf distinct; a node's load is the sum of its spans and all
 * loads add up to rf.  The allocator greedily places one token at a time,
 * each at the middle of some existing range, choosing the placement that
 * most lowers
 *     sum over nodes  (load / vnodes - opt)^2
 *   + sum over vnodes ((span - opt) / node's vnodes)^2
 * where opt = rf / (vnodes after the join) is the ideal span.  The first
 * term takes load from the most loaded nodes; the second keeps spans even,
 * so later joins still find ranges worth splitting.  A placement changes
 * the spans of at most rf vnodes just after it, so it is scored locally,
 * and scores are kept in a heap and re-scored lazily: a fresh top that
 * beats every stored score is taken.  The joiner's missing tokens count as
 * placeholders of exactly opt, and its own term is weighted by the share
 * of its tokens already placed, so that it takes neither too much early
 * nor too little late.  With 256 vnodes per node the most loaded of 3 to
 * 100 nodes joining one by one stays within 1% of the mean, and a join
 * moves 1/N of the data, all of it to the new node (ring-bench prints the
 * figures); placing the 100th node's 256 tokens takes some 30 ms, once in
 * the node's life.
 *
 * Where we differ from Cassandra: no racks or data centres, nodes are the
 * only unit; a node's weight is its number of vnodes (weight x vnodes per
 * weight) and its fair load is proportional to it; a weight change keeps
 * the node's tokens and adds or drops some; the first node takes tokens
 * from a stream seeded by its node id, reproducible where Cassandra's are
 * random; and while the ring has no more nodes than rf (everyone holds
 * everything) we balance primary ranges, which spreads the first nodes
 * evenly for the joins that follow.  Two nodes that join at the same time
 * against the same ring may pick the same tokens; the ring resolves such a
 * collision deterministically (ring.h), but joins should be serialized
 * (the node does: node/cluster.h).
 *
 * The allocator is deterministic (same ring and node id, same tokens; no
 * floating-point contraction under -std=c11), but nothing depends on two
 * nodes running it alike: only its output is shared.
 */
#include "ring.h"

#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "err.h"
#include "hash.h"
#include "ring_int.h"

/* Default preference-list length stored per vnode: the replication factor
 * almost every deployment runs. */
#define RING_RF_DEFAULT 3

/* Total vnodes a ring may hold: 16 M keeps the arrays under a GiB even at
 * RING_RF_MAX, far past any real cluster. */
#define RING_VNODES_MAX (1u << 24)

/* Version tag of the checksummed canonical form (see ring_checksum). */
#define RING_CANON_MAGIC "RKR1"

typedef unsigned __int128 ring_u128;

struct vnode_sort {
	uint64_t token;
	uint32_t member;
};

static int cmp_member(const void *a, const void *b)
{
	const struct ring_member *x = *(const struct ring_member *const *)a;
	const struct ring_member *y = *(const struct ring_member *const *)b;
	return (x->node_id > y->node_id) - (x->node_id < y->node_id);
}

/* Token first, then member index, so that of two members holding one
 * token the smaller node id comes first and keeps the vnode. */
static int cmp_vnode(const void *a, const void *b)
{
	const struct vnode_sort *x = a, *y = b;
	if (x->token != y->token)
		return (x->token > y->token) - (x->token < y->token);
	return (x->member > y->member) - (x->member < y->member);
}

/* Walks clockwise from vnode v collecting distinct members; stops at n or
 * after one full turn.  The linear membership test is fine: n is a
 * replication factor, or at worst the member count on a cold path. */
static size_t pref_walk(const struct ring *r, size_t v, size_t n, uint32_t *out)
{
	size_t got = 0;
	for (size_t step = 0; step < r->n_vnodes && got < n; step++) {
		uint32_t m = r->owner[v];
		size_t k = 0;
		while (k < got && out[k] != m)
			k++;
		if (k == got)
			out[got++] = m;
		if (++v == r->n_vnodes)
			v = 0;
	}
	return got;
}

size_t ring_pref_idx(const struct ring *r, size_t v, size_t n, uint32_t *out)
{
	if (r->n_vnodes == 0 || n == 0)
		return 0;
	if (n <= r->rf_stored || r->rf_stored == r->n_present) {
		size_t k = n < r->rf_stored ? n : r->rf_stored;
		memcpy(out, r->pref + v * r->rf_stored, k * sizeof(*out));
		return k;
	}
	return pref_walk(r, v, n, out);
}

/* pref(v) is owner(v) followed by pref(v + 1) without owner(v), cut to
 * rf_stored: the first rf distinct of a walk are its first node and then
 * the first distinct others of the rest.  So one direct walk for the last
 * vnode and a backward sweep give every list in O(V * rf), however the
 * vnodes of one member cluster together. */
static void build_pref(struct ring *r)
{
	size_t rf = r->rf_stored, nv = r->n_vnodes;
	if (nv == 0)
		return;
	pref_walk(r, nv - 1, rf, r->pref + (nv - 1) * rf);
	for (size_t v = nv - 1; v-- > 0;) {
		uint32_t *dst = r->pref + v * rf;
		const uint32_t *src = r->pref + (v + 1) * rf;
		uint32_t m = r->owner[v];
		size_t k = 0;
		dst[k++] = m;
		for (size_t j = 0; j < rf && k < rf; j++)
			if (src[j] != m)
				dst[k++] = src[j];
	}
}

static int build_checksum(struct ring *r)
{
	size_t len = 8, ntok = 0;
	for (size_t i = 0; i < r->n_members; i++)
		ntok += r->members[i].n_tokens;
	len += r->n_members * 16 + ntok * 8;
	uint8_t *buf = malloc(len), *p = buf;
	if (!buf)
		return RK_ENOMEM;
	memcpy(p, RING_CANON_MAGIC, 4);
	rk_put_le32(p + 4, (uint32_t)r->n_members);
	p += 8;
	for (size_t i = 0; i < r->n_members; i++) {
		const struct ring_node *m = &r->members[i];
		rk_put_le64(p, m->id);
		rk_put_le32(p + 8, m->weight);
		rk_put_le32(p + 12, m->n_tokens);
		p += 16;
		for (size_t t = 0; t < m->n_tokens; t++, p += 8)
			rk_put_le64(p, r->member_tokens[m->tok_off + t]);
	}
	r->checksum = rk_key_hash(buf, len);
	free(buf);
	return 0;
}

int ring_new(const struct ring_member *members, size_t n,
	     const struct ring_config *cfg, struct ring **out)
{
	const struct ring_member **sorted = NULL;
	struct vnode_sort *vs = NULL;
	struct ring *r = NULL;
	size_t ntok = 0;
	int rc = RK_EINVALID;

	*out = NULL;
	uint32_t rf_max = cfg && cfg->rf_max ? cfg->rf_max : RING_RF_DEFAULT;
	if (rf_max > RING_RF_MAX || n > RING_MEMBERS_MAX || (n > 0 && !members))
		return RK_EINVALID;
	for (size_t i = 0; i < n; i++) {
		const struct ring_member *m = &members[i];
		if (m->weight == 0 || m->n_tokens == 0 ||
		    m->n_tokens > RING_TOKENS_MAX || !m->tokens)
			return RK_EINVALID;
		ntok += m->n_tokens;
	}
	if (ntok > RING_VNODES_MAX)
		return RK_EINVALID;

	rc = RK_ENOMEM;
	r = calloc(1, sizeof(*r));
	if (!r)
		goto fail;
	r->epoch = cfg ? cfg->epoch : 0;
	r->rf_max = rf_max;
	r->n_members = n;
	sorted = malloc((n ? n : 1) * sizeof(*sorted));
	r->members = calloc(n ? n : 1, sizeof(*r->members));
	r->member_tokens = malloc((ntok ? ntok : 1) * sizeof(uint64_t));
	vs = malloc((ntok ? ntok : 1) * sizeof(*vs));
	if (!sorted || !r->members || !r->member_tokens || !vs)
		goto fail;

	for (size_t i = 0; i < n; i++)
		sorted[i] = &members[i];
	qsort(sorted, n, sizeof(*sorted), cmp_member);
	rc = RK_EINVALID;
	size_t off = 0;
	for (size_t i = 0; i < n; i++) {
		const struct ring_member *m = sorted[i];
		struct ring_node *node = &r->members[i];
		if (i > 0 && m->node_id == sorted[i - 1]->node_id)
			goto fail;
		node->id = m->node_id;
		node->weight = m->weight;
		node->n_tokens = (uint32_t)m->n_tokens;
		node->tok_off = off;
		uint64_t *t = r->member_tokens + off;
		memcpy(t, m->tokens, m->n_tokens * sizeof(*t));
		qsort(t, m->n_tokens, sizeof(*t), ring_cmp_u64);
		for (size_t k = 0; k < m->n_tokens; k++) {
			if (k > 0 && t[k] == t[k - 1])
				goto fail;
			vs[off + k].token = t[k];
			vs[off + k].member = (uint32_t)i;
		}
		off += m->n_tokens;
	}

	rc = RK_ENOMEM;
	qsort(vs, ntok, sizeof(*vs), cmp_vnode);
	r->tokens = malloc((ntok ? ntok : 1) * sizeof(*r->tokens));
	r->owner = malloc((ntok ? ntok : 1) * sizeof(*r->owner));
	if (!r->tokens || !r->owner)
		goto fail;
	for (size_t i = 0; i < ntok; i++) {
		if (r->n_vnodes > 0 &&
		    vs[i].token == r->tokens[r->n_vnodes - 1])
			continue; /* collision: the smaller node id kept it */
		r->tokens[r->n_vnodes] = vs[i].token;
		r->owner[r->n_vnodes] = vs[i].member;
		r->members[vs[i].member].n_vnodes++;
		r->n_vnodes++;
	}
	for (size_t i = 0; i < n; i++)
		r->n_present += r->members[i].n_vnodes > 0;

	r->rf_stored = rf_max < r->n_present ? rf_max : r->n_present;
	size_t npref = r->n_vnodes * r->rf_stored;
	r->pref = malloc((npref ? npref : 1) * sizeof(*r->pref));
	if (!r->pref)
		goto fail;
	build_pref(r);
	rc = build_checksum(r);
	if (rc)
		goto fail;

	free(sorted);
	free(vs);
	*out = r;
	return 0;
fail:
	free(sorted);
	free(vs);
	ring_free(r);
	return rc;
}

void ring_free(struct ring *r)
{
	if (!r)
		return;
	free(r->members);
	free(r->member_tokens);
	free(r->tokens);
	free(r->owner);
	free(r->pref);
	free(r);
}

uint64_t ring_epoch(const struct ring *r)
{
	return r->epoch;
}

uint64_t ring_checksum(const struct ring *r)
{
	return r->checksum;
}

size_t ring_member_count(const struct ring *r)
{
	return r->n_members;
}

uint64_t ring_member_id(const struct ring *r, size_t i)
{
	return r->members[i].id;
}

uint32_t ring_member_weight(const struct ring *r, size_t i)
{
	return r->members[i].weight;
}

size_t ring_member_vnodes(const struct ring *r, size_t i)
{
	return r->members[i].n_vnodes;
}

int ring_member_find(const struct ring *r, uint64_t node_id, size_t *i)
{
	size_t lo = 0, hi = r->n_members;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (r->members[mid].id < node_id)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == r->n_members || r->members[lo].id != node_id)
		return RK_ENOT_FOUND;
	*i = lo;
	return 0;
}

int ring_member_tokens(const struct ring *r, size_t i, uint64_t *out,
		       size_t cap, size_t *n)
{
	const struct ring_node *m = &r->members[i];
	*n = m->n_tokens;
	if (cap < m->n_tokens)
		return RK_EINVALID;
	memcpy(out, r->member_tokens + m->tok_off, m->n_tokens * sizeof(*out));
	return 0;
}

size_t ring_vnode_count(const struct ring *r)
{
	return r->n_vnodes;
}

uint64_t ring_vnode_token(const struct ring *r, size_t i)
{
	return r->tokens[i];
}

uint64_t ring_vnode_node(const struct ring *r, size_t i)
{
	return r->members[r->owner[i]].id;
}

/* ---- lookup ---- */

int ring_lookup(const struct ring *r, uint64_t token, size_t n,
		uint64_t *out_nodes, size_t *n_out)
{
	if (r->n_vnodes == 0 || n == 0) {
		*n_out = 0;
		return 0;
	}
	size_t v = ring_vnode_of(r, token);
	if (n <= r->rf_stored || r->rf_stored == r->n_present) {
		size_t k = n < r->rf_stored ? n : r->rf_stored;
		const uint32_t *p = r->pref + v * r->rf_stored;
		for (size_t j = 0; j < k; j++)
			out_nodes[j] = r->members[p[j]].id;
		*n_out = k;
		return 0;
	}
	/* Longer than the stored lists: walk, keeping ids in the output. */
	size_t got = 0;
	for (size_t step = 0; step < r->n_vnodes && got < n; step++) {
		uint64_t id = r->members[r->owner[v]].id;
		size_t k = 0;
		while (k < got && out_nodes[k] != id)
			k++;
		if (k == got)
			out_nodes[got++] = id;
		if (++v == r->n_vnodes)
			v = 0;
	}
	*n_out = got;
	return 0;
}

int ring_lookup_extended(const struct ring *r, uint64_t token, size_t n,
			 size_t extra, ring_healthy_fn healthy, void *ctx,
			 uint64_t *out_nodes, size_t *n_owners, size_t *n_extra)
{
	*n_owners = 0;
	*n_extra = 0;
	if (r->n_vnodes == 0)
		return 0;
	size_t v = ring_vnode_of(r, token);
	size_t got = 0, want = n + extra;
	/* One walk: the first n distinct nodes are the owners whatever their
	 * health; later ones count only when healthy.  A node found unhealthy
	 * is not remembered (that would need memory per member), so it may be
	 * asked again when its next vnode comes by. */
	for (size_t step = 0; step < r->n_vnodes && got < want; step++) {
		uint64_t id = r->members[r->owner[v]].id;
		size_t k = 0;
		while (k < got && out_nodes[k] != id)
			k++;
		if (k == got && (got < n || !healthy || healthy(ctx, id))) {
			out_nodes[got++] = id;
			if (got <= n)
				*n_owners = got;
			else
				(*n_extra)++;
		}
		if (++v == r->n_vnodes)
			v = 0;
	}
	return 0;
}

/* ---- partitions ---- */

static void fill_partition(const struct ring *r, size_t v,
			   struct ring_partition *out)
{
	out->id = out->end = r->tokens[v];
	out->start = r->tokens[v ? v - 1 : r->n_vnodes - 1];
}

int ring_partition(const struct ring *r, uint64_t token,
		   struct ring_partition *out)
{
	if (r->n_vnodes == 0)
		return RK_ENOT_FOUND;
	fill_partition(r, ring_vnode_of(r, token), out);
	return 0;
}

int ring_partition_by_id(const struct ring *r, uint64_t id,
			 struct ring_partition *out)
{
	if (r->n_vnodes == 0)
		return RK_ENOT_FOUND;
	size_t v = ring_lower_bound(r, id);
	if (v == r->n_vnodes || r->tokens[v] != id)
		return RK_ENOT_FOUND;
	fill_partition(r, v, out);
	return 0;
}

/* ---- diff ---- */

/* The owner ids of the range ending at boundary b, in preference order. */
static uint32_t owners_at(const struct ring *r, uint64_t b, size_t rf,
			  uint64_t *ids)
{
	uint32_t idx[RING_RF_MAX];
	if (r->n_vnodes == 0)
		return 0;
	size_t k = ring_pref_idx(r, ring_vnode_of(r, b), rf, idx);
	for (size_t j = 0; j < k; j++)
		ids[j] = r->members[idx[j]].id;
	return (uint32_t)k;
}

static int same_set(const uint64_t *a, uint32_t na, const uint64_t *b,
		    uint32_t nb)
{
	if (na != nb)
		return 0;
	for (uint32_t i = 0; i < na; i++) {
		uint32_t j = 0;
		while (j < nb && b[j] != a[i])
			j++;
		if (j == nb)
			return 0;
	}
	return 1;
}

static int same_lists(const struct ring_range_change *x,
		      const struct ring_range_change *y)
{
	return x->n_old == y->n_old && x->n_new == y->n_new &&
	       !memcmp(x->old_nodes, y->old_nodes, x->n_old * 8) &&
	       !memcmp(x->new_nodes, y->new_nodes, x->n_new * 8);
}

struct change_list {
	struct ring_range_change *v;
	size_t n, cap;
};

/* Records (start, end] with owners c, merging it into the previous entry
 * when that one ends at start with the same lists. */
static int change_add(struct change_list *l, uint64_t start, uint64_t end,
		      const struct ring_range_change *c)
{
	if (l->n > 0) {
		struct ring_range_change *last = &l->v[l->n - 1];
		if (last->end == start && same_lists(last, c)) {
			last->end = end;
			return 0;
		}
	}
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		void *p = realloc(l->v, cap * sizeof(*l->v));
		if (!p)
			return RK_ENOMEM;
		l->v = p;
		l->cap = cap;
	}
	struct ring_range_change *e = &l->v[l->n++];
	*e = *c;
	e->start = start;
	e->end = end;
	return 0;
}

/* The sorted union of both rings' tokens cuts the circle into elementary
 * ranges inside which neither ring changes owner, so comparing the two
 * preference lists at each cut is exact: O((V_old + V_new) * rf). */
int ring_diff(const struct ring *old_ring, const struct ring *new_ring,
	      size_t rf, struct ring_range_change **out, size_t *n)
{
	struct change_list l = {0};
	const struct ring *a = old_ring, *b = new_ring;
	uint64_t *cuts = NULL;
	size_t nc = 0, i = 0, j = 0;
	int rc = RK_ENOMEM;

	*out = NULL;
	*n = 0;
	if (rf == 0 || rf > RING_RF_MAX)
		return RK_EINVALID;
	if (a->n_vnodes + b->n_vnodes == 0)
		return 0;
	cuts = malloc((a->n_vnodes + b->n_vnodes) * sizeof(*cuts));
	if (!cuts)
		return RK_ENOMEM;
	while (i < a->n_vnodes || j < b->n_vnodes) {
		uint64_t t;
		if (j == b->n_vnodes ||
		    (i < a->n_vnodes && a->tokens[i] < b->tokens[j]))
			t = a->tokens[i++];
		else if (i == a->n_vnodes || b->tokens[j] < a->tokens[i])
			t = b->tokens[j++];
		else
			t = a->tokens[i++], j++;
		cuts[nc++] = t;
	}

	/* Range k is (cuts[k - 1], cuts[k]]; range 0 wraps through 0 and is
	 * visited last so the list reads clockwise from token 0. */
	for (size_t s = 1; s <= nc; s++) {
		size_t k = s % nc;
		uint64_t start = cuts[(k + nc - 1) % nc], end = cuts[k];
		struct ring_range_change c;
		c.n_old = owners_at(a, end, rf, c.old_nodes);
		c.n_new = owners_at(b, end, rf, c.new_nodes);
		if (same_set(c.old_nodes, c.n_old, c.new_nodes, c.n_new))
			continue;
		rc = change_add(&l, start, end, &c);
		if (rc)
			goto fail;
	}
	/* The first entry may continue the wrapping last one. */
	if (l.n > 1 && l.v[l.n - 1].end == l.v[0].start &&
	    same_lists(&l.v[l.n - 1], &l.v[0])) {
		l.v[l.n - 1].end = l.v[0].end;
		memmove(&l.v[0], &l.v[1], (l.n - 1) * sizeof(l.v[0]));
		l.n--;
	}
	free(cuts);
	*out = l.v;
	*n = l.n;
	return 0;
fail:
	free(cuts);
	free(l.v);
	return rc;
}

/* ---- shares ---- */

int ring_shares(const struct ring *r, size_t rf, double *shares,
		double *max_mean)
{
	ring_u128 *acc = NULL;
	uint32_t idx[RING_RF_MAX];

	if (rf == 0 || rf > RING_RF_MAX)
		return RK_EINVALID;
	if (max_mean)
		*max_mean = 0;
	if (r->n_members == 0)
		return 0;
	acc = calloc(r->n_members, sizeof(*acc));
	if (!acc)
		return RK_ENOMEM;
	for (size_t v = 0; v < r->n_vnodes; v++) {
		uint64_t prev = r->tokens[v ? v - 1 : r->n_vnodes - 1];
		/* One vnode owns the whole circle: 2^64, not 0. */
		ring_u128 size = r->n_vnodes == 1
				     ? (ring_u128)1 << 64
				     : (uint64_t)(r->tokens[v] - prev);
		size_t k = ring_pref_idx(r, v, rf, idx);
		for (size_t j = 0; j < k; j++)
			acc[idx[j]] += size;
	}
	double sum = 0, wsum = 0, max_load = 0;
	for (size_t i = 0; i < r->n_members; i++) {
		shares[i] = (double)acc[i] * 0x1p-64;
		sum += shares[i];
		wsum += r->members[i].weight;
		double load = shares[i] / r->members[i].weight;
		if (load > max_load)
			max_load = load;
	}
	if (max_mean && sum > 0)
		*max_mean = max_load / (sum / wsum);
	free(acc);
	return 0;
}
