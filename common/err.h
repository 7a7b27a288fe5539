/* err.h: the one error enum of ringkv, and its string table.
 *
 * Every function that can fail returns 0 or a negative RK_E* code; results go
 * in trailing out-params.  The same numbers travel on the wire as the
 * response status (proto/ringkv.proto, enum Status uses the positive values),
 * so a client sees exactly the error the node raised.
 */
#ifndef RK_ERR_H
#define RK_ERR_H

/* X-macro: name, wire value, message.  Wire values are fixed forever. */
#define RK_ERRORS(X)                                                         \
	X(OK, 0, "ok")                                                       \
	X(NOT_FOUND, 1, "not found")                                         \
	X(BAD_REQUEST, 2, "bad request")                                     \
	X(UNKNOWN_COMMAND, 3, "unknown command")                             \
	X(KEY_TOO_LARGE, 4, "key too large")                                 \
	X(VALUE_TOO_LARGE, 5, "value too large")                             \
	X(FRAME_TOO_LARGE, 6, "frame too large")                             \
	X(MAX_CLIENTS, 7, "too many clients")                                \
	X(UNAVAILABLE, 8, "not enough replicas available")                   \
	X(TIMEOUT, 9, "timed out")                                           \
	X(INTERNAL, 10, "internal error")                                    \
	X(WRONG_TYPE, 11, "operation against a key holding the wrong type") \
	X(CONTENTION_TIMEOUT, 12, "contention timeout, result unknown")      \
	X(AUTH_REQUIRED, 13, "authentication required")                      \
	X(AUTH_FAILED, 14, "authentication failed")                          \
	X(NOT_IMPLEMENTED, 15, "not implemented in this version")            \
	X(EMPTY_KEY, 16, "empty key")                                        \
	X(IO, 17, "i/o error")                                               \
	X(CORRUPT, 18, "corrupt data")                                       \
	X(NOMEM, 19, "out of memory")                                        \
	X(INVALID, 20, "invalid argument")                                   \
	X(CLOSED, 21, "connection closed")                                   \
	X(CONNECT, 22, "cannot connect")                                     \
	X(PROTOCOL, 23, "protocol error")                                    \
	X(SHUTTING_DOWN, 24, "node is shutting down")                        \
	X(OVERLOADED, 25, "too many operations queued")

enum rk_err {
#define RK_ERR_ENUM(name, val, msg) RK_E##name = -(val),
	RK_ERRORS(RK_ERR_ENUM)
#undef RK_ERR_ENUM
};

/* The message for code (0 or negative); never NULL. */
const char *rk_strerror(int code);

/* The short upper-case name of code ("NOT_FOUND"); never NULL. */
const char *rk_errname(int code);

/* True when code is a known RK_E* value. */
int rk_err_known(int code);

#endif
