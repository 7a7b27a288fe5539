/* swim_msg.c: names, validators and the encoded-size bound of SWIM messages.
 *
 * The bound follows proto/gossip.proto field by field: every field number
 * there is below 16, so each tag is one byte; ids are fixed64 (8 bytes);
 * enums and bools are one-byte varints; strings and bytes are a length
 * varint and the data.  Fields proto3 leaves out (zero, empty) are counted
 * anyway, which only makes the bound larger.  tests/sim/test_gossip_wire.c
 * checks encoded sizes against it, so a schema change that breaks the bound
 * fails there.
 */
#include "swim_msg.h"

#include <string.h>

#include "addr.h"

const char *swim_state_name(int state)
{
	static const char *const names[] = {"alive", "suspect", "dead", "left"};
	if (state < 0 || state >= SWIM_STATE_COUNT)
		return "?";
	return names[state];
}

const char *swim_msg_type_name(int type)
{
	static const char *const names[] = {"?",	  "ping",  "ack",
					    "ping-req",	  "nack",  "sync",
					    "sync-reply", "gossip"};
	if (type < 1 || type > SWIM_MSG_TYPE_MAX)
		return "?";
	return names[type];
}

static size_t varint_len(uint64_t v)
{
	size_t n = 1;
	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

/* One-byte tag + length varint + data. */
static size_t len_field(size_t len)
{
	return 1 + varint_len(len) + len;
}

static size_t str_field(const char *s)
{
	return len_field(s ? strlen(s) : 0);
}

/* One-byte tag + fixed64. */
#define FIXED64_FIELD 9u
/* One-byte tag + a one-byte varint (enum values < 128, bools). */
#define SMALL_FIELD 2u

size_t swim_update_size_bound(const struct swim_update *u)
{
	size_t body = FIXED64_FIELD		       /* id */
		      + 1 + varint_len(u->incarnation) /* incarnation */
		      + SMALL_FIELD		       /* state */
		      + len_field(8 * u->n_suspecters) /* suspecters, packed */
		      + str_field(u->gossip_addr) + str_field(u->peer_addr) +
		      str_field(u->client_addr) + 1 +
		      varint_len(u->weight)	/* weight */
		      + len_field(u->meta_len); /* meta */
	return len_field(body);			/* repeated Update updates */
}

size_t swim_msg_header_size_bound(const struct swim_msg *m)
{
	return 1 + varint_len(SWIM_WIRE_VERSION)		  /* version */
	       + str_field(m->cluster) + SMALL_FIELD		  /* type */
	       + FIXED64_FIELD					  /* from_id */
	       + str_field(m->from_addr) + 1 + varint_len(m->seq) /* seq */
	       + FIXED64_FIELD				  /* target_id */
	       + str_field(m->target_addr) + SMALL_FIELD; /* join */
}

size_t swim_msg_size_bound(const struct swim_msg *m)
{
	size_t n = swim_msg_header_size_bound(m);
	for (size_t i = 0; i < m->n_updates; i++)
		n += swim_update_size_bound(&m->updates[i]);
	return n;
}

int swim_cluster_name_valid(const char *s)
{
	size_t n = s ? strlen(s) : 0;
	if (n == 0 || n > SWIM_CLUSTER_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		      c == '-'))
			return 0;
	}
	return 1;
}

int swim_addr_valid(const char *s)
{
	char host[SWIM_ADDR_MAX + 1];
	uint16_t port;
	size_t n = s ? strlen(s) : 0;
	if (n == 0 || n > SWIM_ADDR_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (s[i] <= ' ' || s[i] > '~')
			return 0;
	return rk_addr_split(s, host, sizeof(host), &port, 0) == 0;
}
