/* paxos_msg.c: value equality and the validity rules of paxos_msg.h, shared
 * by the codec (both directions) and the module. */
#include "paxos_msg.h"

#include <string.h>

static const char *const type_names[] = {
    "?", "PREPARE", "PROMISE", "PROPOSE", "ACCEPTED", "COMMIT", "COMMITTED",
};

const char *paxos_msg_type_name(int type)
{
	if (type < 1 || type > PAXOS_MSG_TYPE_MAX)
		return "?";
	return type_names[type];
}

int paxos_value_eq(const struct paxos_value *a, const struct paxos_value *b)
{
	if (!a->present || !b->present)
		return !a->present == !b->present;
	return a->len == b->len &&
	       (a->len == 0 || !memcmp(a->data, b->data, a->len));
}

static int value_valid(const struct paxos_value *v)
{
	if (!v->present)
		return v->len == 0 && v->data == NULL;
	return v->len <= PAXOS_VALUE_MAX && (v->len == 0 || v->data != NULL);
}

static int value_unset(const struct paxos_value *v)
{
	return !v->present && v->len == 0 && v->data == NULL;
}

static int ts_cmp(rk_ts a, rk_ts b)
{
	return rk_ts_cmp(a, b);
}

int paxos_proposal_valid(const struct paxos_proposal *p)
{
	if (rk_ts_is_zero(p->ballot) || rk_ts_is_zero(p->origin))
		return 0;
	if (ts_cmp(p->base, p->origin) >= 0 || ts_cmp(p->origin, p->ballot) > 0)
		return 0;
	return value_valid(&p->value);
}

static int proposal_unset(const struct paxos_proposal *p)
{
	return rk_ts_is_zero(p->ballot) && rk_ts_is_zero(p->origin) &&
	       rk_ts_is_zero(p->base) && value_unset(&p->value);
}

int paxos_state_empty(const struct paxos_acceptor_state *s)
{
	return rk_ts_is_zero(s->promised) && rk_ts_is_zero(s->committed) &&
	       proposal_unset(&s->accepted);
}

int paxos_state_valid(const struct paxos_acceptor_state *s)
{
	if (!proposal_unset(&s->accepted)) {
		if (!paxos_proposal_valid(&s->accepted))
			return 0;
		if (ts_cmp(s->promised, s->accepted.ballot) < 0)
			return 0;
	}
	return ts_cmp(s->committed, s->promised) <= 0;
}

int paxos_msg_valid(const struct paxos_msg *m)
{
	if (m->type < PAXOS_MSG_PREPARE || m->type > PAXOS_MSG_TYPE_MAX)
		return 0;
	if (m->klen < 1 || m->klen > PAXOS_KEY_MAX || !m->key)
		return 0;
	if (rk_ts_is_zero(m->ballot))
		return 0;
	int ok_used =
	    m->type == PAXOS_MSG_PROMISE || m->type == PAXOS_MSG_ACCEPTED;
	int prop_used =
	    m->type == PAXOS_MSG_PROPOSE || m->type == PAXOS_MSG_COMMIT;
	int granted_promise = m->type == PAXOS_MSG_PROMISE && m->ok;
	if (!ok_used && m->ok)
		return 0;
	/* A rejection says what beat the ballot; nothing else does. */
	if (ok_used && !m->ok) {
		if (rk_ts_is_zero(m->promised))
			return 0;
	} else if (!rk_ts_is_zero(m->promised)) {
		return 0;
	}
	if (prop_used) {
		if (!paxos_proposal_valid(&m->proposal) ||
		    ts_cmp(m->proposal.ballot, m->ballot) != 0)
			return 0;
	} else if (!proposal_unset(&m->proposal)) {
		return 0;
	}
	if (granted_promise) {
		if (!proposal_unset(&m->accepted) &&
		    !paxos_proposal_valid(&m->accepted))
			return 0;
		if (!value_valid(&m->current))
			return 0;
		/* A stored value has a timestamp; "never written" has none. */
		if (m->current.present && rk_ts_is_zero(m->current_ts))
			return 0;
	} else if (!proposal_unset(&m->accepted) ||
		   !rk_ts_is_zero(m->committed) || !value_unset(&m->current) ||
		   !rk_ts_is_zero(m->current_ts)) {
		return 0;
	}
	return 1;
}
