/* log.h: levelled logging with one macro that costs nothing when off.
 *
 * Every line names its node and module: "n3 gossip: suspect n7 inc=12".
 * A logger is per node, not global, so one process (the simulator, a test)
 * can hold many nodes each with its own tag, level and sink.
 */
#ifndef RK_LOG_H
#define RK_LOG_H

#include <stdarg.h>

enum rk_log_level {
	RK_LOG_ERROR = 0,
	RK_LOG_WARN = 1,
	RK_LOG_INFO = 2,
	RK_LOG_DEBUG = 3,
	RK_LOG_TRACE = 4,
};

/* Receives one finished line (no trailing newline).  The line is only valid
 * during the call. */
typedef void (*rk_log_sink)(void *ctx, int level, const char *line);

struct rk_logger {
	int level;        /* lines above this level are not even formatted */
	char tag[24];     /* node tag, e.g. "n3" or a short node id */
	rk_log_sink sink; /* NULL: stderr with wall-clock time */
	void *sink_ctx;   /* passed to sink; borrowed */
};

/* Sets tag and level, stderr sink. */
void rk_logger_init(struct rk_logger *lg, const char *tag, int level);

/* Formats and emits; use rk_log() instead so disabled levels cost nothing. */
void rk_log_emit(const struct rk_logger *lg, int level, const char *module,
		 const char *fmt, ...) __attribute__((format(printf, 4, 5)));

#define rk_log(lg, lvl, module, ...)                                   \
	do {                                                           \
		if ((lg) != NULL && (lg)->level >= (lvl))              \
			rk_log_emit((lg), (lvl), (module), __VA_ARGS__); \
	} while (0)

#define rk_error(lg, module, ...) rk_log(lg, RK_LOG_ERROR, module, __VA_ARGS__)
#define rk_warn(lg, module, ...) rk_log(lg, RK_LOG_WARN, module, __VA_ARGS__)
#define rk_info(lg, module, ...) rk_log(lg, RK_LOG_INFO, module, __VA_ARGS__)
#define rk_debug(lg, module, ...) rk_log(lg, RK_LOG_DEBUG, module, __VA_ARGS__)
#define rk_trace(lg, module, ...) rk_log(lg, RK_LOG_TRACE, module, __VA_ARGS__)

/* "error", "warn", "info", "debug", "trace" -> level; -1 when unknown. */
int rk_log_level_parse(const char *name);
const char *rk_log_level_name(int level);

#endif
