/* addr.h: "host:port" strings (pure; resolution happens in node/ and
 * client/).  IPv6 hosts are written in brackets: "[::1]:7400". */
#ifndef RK_ADDR_H
#define RK_ADDR_H

#include <stddef.h>
#include <stdint.h>

/* Splits s into host and port.  Returns 0, or RK_EINVALID when s is not
 * HOST:PORT with a port in 1..65535 (0 allowed when allow_zero). */
int rk_addr_split(const char *s, char *host, size_t hostlen, uint16_t *port,
		  int allow_zero);

#endif
