/* hints.h: the durable side of hinted handoff.
 *
 * Replication (repl/) keeps hints in memory and hands them off; this keeps
 * them in DATA_DIR/hints, an op-log of its own, so that a coordinator that
 * restarts still delivers what it owed.  Each hint is one RK_REC_HINT
 * record.  Delivery is not logged: a hint replayed after a restart may be
 * sent again, which is harmless (last writer wins).  When every hint has
 * been delivered or expired, the log is emptied by writing an empty
 * snapshot, which deletes its segments.
 *
 * Loop thread only (the log's writer runs on its own thread).
 */
#ifndef RK_HINTS_H
#define RK_HINTS_H

#include <stdint.h>

#include "log.h"
#include "oplog.h"
#include "repl_msg.h"

struct hints;

typedef void (*hints_restore_fn)(void *ctx, uint64_t target,
				 const struct repl_record *rec,
				 uint64_t created_ms);

/* Opens DATA_DIR/hints and feeds every saved hint to restore.  Returns 0
 * or an RK_E* code with a reason in err. */
int hints_open(const char *data_dir, enum rk_fsync fsync,
	       uint32_t fsync_interval_ms, const struct rk_logger *lg,
	       hints_restore_fn restore, void *ctx, struct hints **out,
	       char *err, size_t errlen);

void hints_save(struct hints *h, uint64_t target,
		const struct repl_record *rec, uint64_t created_ms);

/* Every hint is settled: the saved ones may go. */
void hints_clear(struct hints *h);

/* Once per loop turn: hands saved hints to the writer. */
void hints_flush(struct hints *h);

/* Now and then: finishes a clear in progress. */
void hints_maintain(struct hints *h);

void hints_close(struct hints *h);

#endif
