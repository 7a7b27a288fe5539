#include "buf.h"

#include <stdlib.h>
#include <string.h>

#include "err.h"

void rk_buf_destroy(struct rk_buf *b)
{
	free(b->data);
	rk_buf_init(b);
}

int rk_buf_reserve(struct rk_buf *b, size_t n)
{
	if (b->cap - b->len >= n)
		return 0;
	size_t live = b->len - b->head;
	/* Slide unread bytes to the front when that alone makes room and
	 * the move is cheap relative to what was already consumed. */
	if (b->head > 0 && b->cap - live >= n && b->head >= live) {
		memmove(b->data, b->data + b->head, live);
		b->head = 0;
		b->len = live;
		return 0;
	}
	size_t need = live + n;
	if (need < live) /* overflow */
		return RK_ENOMEM;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < need) {
		if (cap > SIZE_MAX / 2)
			return RK_ENOMEM;
		cap *= 2;
	}
	uint8_t *p = malloc(cap);
	if (!p)
		return RK_ENOMEM;
	if (live)
		memcpy(p, b->data + b->head, live);
	free(b->data);
	b->data = p;
	b->head = 0;
	b->len = live;
	b->cap = cap;
	return 0;
}

int rk_buf_append(struct rk_buf *b, const void *p, size_t n)
{
	int rc = rk_buf_reserve(b, n);
	if (rc)
		return rc;
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	return 0;
}

void rk_buf_consume(struct rk_buf *b, size_t n)
{
	b->head += n;
	if (b->head >= b->len)
		b->head = b->len = 0;
}

void rk_buf_shrink_idle(struct rk_buf *b, size_t keep)
{
	if (b->len == b->head && b->cap > keep) {
		free(b->data);
		rk_buf_init(b);
	}
}
