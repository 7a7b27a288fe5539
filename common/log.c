#include "log.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

static const char *const level_names[] = {"error", "warn", "info", "debug",
					  "trace"};

void rk_logger_init(struct rk_logger *lg, const char *tag, int level)
{
	memset(lg, 0, sizeof(*lg));
	lg->level = level;
	snprintf(lg->tag, sizeof(lg->tag), "%s", tag ? tag : "-");
}

static void stderr_sink(int level, const char *line)
{
	struct timespec ts;
	struct tm tm;
	char when[32];

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
	/* One fprintf per line keeps lines whole between threads. */
	fprintf(stderr, "%s.%03ldZ %-5s %s\n", when, ts.tv_nsec / 1000000L,
		rk_log_level_name(level), line);
}

void rk_log_emit(const struct rk_logger *lg, int level, const char *module,
		 const char *fmt, ...)
{
	char line[1024];
	int n = snprintf(line, sizeof(line), "%s %s: ", lg->tag, module);
	if (n < 0)
		return;
	if ((size_t)n < sizeof(line)) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
		va_end(ap);
	}
	if (lg->sink)
		lg->sink(lg->sink_ctx, level, line);
	else
		stderr_sink(level, line);
}

int rk_log_level_parse(const char *name)
{
	for (int i = 0; i < (int)(sizeof(level_names) / sizeof(level_names[0])); i++)
		if (strcmp(name, level_names[i]) == 0)
			return i;
	return -1;
}

const char *rk_log_level_name(int level)
{
	if (level < 0 || level > RK_LOG_TRACE)
		return "?";
	return level_names[level];
}
