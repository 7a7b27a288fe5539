/* buf.h: a growable byte buffer with a read head, for socket I/O and
 * encoding.  Readable bytes are data[head, len); writable space follows.
 * The buffer owns data; rk_buf_destroy frees it.
 */
#ifndef RK_BUF_H
#define RK_BUF_H

#include <stddef.h>
#include <stdint.h>

struct rk_buf {
	uint8_t *data; /* owned; NULL until first reserve */
	size_t head;   /* first unread byte */
	size_t len;    /* end of written bytes */
	size_t cap;    /* allocated size */
};

static inline void rk_buf_init(struct rk_buf *b)
{
	b->data = NULL;
	b->head = b->len = b->cap = 0;
}

static inline size_t rk_buf_readable(const struct rk_buf *b)
{
	return b->len - b->head;
}

static inline uint8_t *rk_buf_rptr(const struct rk_buf *b)
{
	return b->data + b->head;
}

/* Frees data; the buffer is empty and reusable afterwards. */
void rk_buf_destroy(struct rk_buf *b);

/* Makes room for n more writable bytes after len, compacting or growing.
 * Returns 0 or RK_ENOMEM. */
int rk_buf_reserve(struct rk_buf *b, size_t n);

/* Appends n bytes.  Returns 0 or RK_ENOMEM. */
int rk_buf_append(struct rk_buf *b, const void *p, size_t n);

/* Marks n bytes as read; when everything is read the buffer resets. */
void rk_buf_consume(struct rk_buf *b, size_t n);

/* Drops contents, keeps memory. */
static inline void rk_buf_clear(struct rk_buf *b)
{
	b->head = b->len = 0;
}

/* Frees memory above keep bytes of capacity when the buffer is empty, so an
 * idle connection that once saw a big frame does not pin it. */
void rk_buf_shrink_idle(struct rk_buf *b, size_t keep);

static inline void rk_put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static inline uint32_t rk_get_be32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
	       ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

static inline void rk_put_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static inline uint32_t rk_get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
	       ((uint32_t)p[3] << 24);
}

static inline void rk_put_le64(uint8_t *p, uint64_t v)
{
	rk_put_le32(p, (uint32_t)v);
	rk_put_le32(p + 4, (uint32_t)(v >> 32));
}

static inline uint64_t rk_get_le64(const uint8_t *p)
{
	return (uint64_t)rk_get_le32(p) | ((uint64_t)rk_get_le32(p + 4) << 32);
}

#endif
