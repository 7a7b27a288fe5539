#include "oplog.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

#include "err.h"

/* A loop-side chunk is handed over once it reaches this size even within
 * one loop turn, so a huge batch does not wait for the turn to end. */
#define CHUNK_HANDOFF_BYTES (4u << 20)
/* Snapshot chunks are handed to the compaction thread at this size. */
#define SNAP_CHUNK_BYTES (1u << 20)
#define SNAP_MAGIC "RKS1"

/* A batch of encoded records on its way to a file. */
struct chunk {
	struct chunk *next;
	struct rk_buf buf;
	uint64_t first_lsn; /* LSN of the first record, 0 if none */
	uint64_t last_lsn;  /* LSN of the last record, 0 if none */
	int rotate_after;   /* start a new segment after writing this */
	int end;            /* snapshot queue: no more chunks */
	int must_sync;      /* holds a record fsync'd whatever the policy */
};

/* A queue of chunks shared by the loop and one thread. */
struct queue {
	struct chunk *head, *tail;
	uint64_t bytes; /* sum of chunk sizes queued or being written */
};

/* A catch-up read waiting for, or done by, the reader thread. */
struct read_req {
	struct read_req *next;
	struct oplog_read_result res;
	uint64_t from_lsn;
	uint64_t hint_off;  /* where from_lsn probably is in its segment */
	uint32_t max_bytes;
	oplog_want_fn want;
};

struct oplog {
	struct oplog_config cfg;
	char *dir;
	const struct rk_logger *lg;
	int dir_fd;

	/* Loop thread only. */
	struct chunk *open;     /* records appended since the last flush */
	uint64_t next_lsn;
	struct chunk *snap_open;
	struct chunk *snap_end; /* the end marker, allocated at begin */
	int snap_running;       /* begun and not yet polled as finished */

	/* Writer thread only (after start). */
	int seg_fd;             /* current segment, -1 until the first write */
	uint64_t seg_size;
	uint64_t last_sync_ms;
	int dirty;              /* written but not fsynced */
	uint64_t written_lsn;   /* last LSN written to a segment */

	/* Shared under mu. */
	pthread_mutex_t mu;
	pthread_cond_t cv;      /* writer waits for chunks */
	pthread_cond_t snap_cv; /* compaction thread waits for chunks */
	struct queue wq;        /* to the writer */
	struct queue sq;        /* to the compaction thread */
	int stop;
	uint64_t seg_first_lsn; /* first LSN of the writer's segment */
	int snap_done, snap_ok; /* compaction thread finished, result */
	int snap_abort;         /* discard the snapshot being written */
	uint64_t snap_cutoff;

	_Atomic uint64_t durable_lsn;
	_Atomic uint64_t synced_lsn; /* every LSN <= this is fsync'd */
	_Atomic uint64_t seg_bytes_total;
	_Atomic uint64_t segments;
	_Atomic uint64_t snapshot_bytes;
	_Atomic uint64_t fsyncs;

	oplog_notify_fn notify;
	void *notify_ctx;
	pthread_t writer;
	int writer_started;
	/* catch-up reads, under mu */
	struct read_req *rq_head, *rq_tail;   /* to do */
	struct read_req *rd_head, *rd_tail;   /* done */
	pthread_cond_t read_cv;
	pthread_t reader;
	int reader_started;
	_Atomic uint64_t first_lsn;           /* oldest record in a segment */
	pthread_t snapper;
	int snapper_started;
};

/* ------------------------------------------------------------------ */
/* helpers                                                             */

static int errf(char *err, size_t errlen, int code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int errf(char *err, size_t errlen, int code, const char *fmt, ...)
{
	if (err && errlen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return code;
}

static uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* A failed write or fsync of the log: the only safe move is to stop. */
static void __attribute__((noreturn)) fatal_io(struct oplog *log,
					       const char *what, int e)
{
	rk_error(log->lg, "oplog", "FATAL: %s failed: %s; stopping the node "
		 "(an unsynced write cannot be trusted after this)",
		 what, strerror(e));
	_exit(RK_EXIT_FATAL_IO);
}

static void seg_name(char *out, size_t n, uint64_t first_lsn)
{
	snprintf(out, n, "%016" PRIx64 ".log", first_lsn);
}

static void snap_name(char *out, size_t n, uint64_t cutoff, int tmp)
{
	snprintf(out, n, "snapshot-%016" PRIx64 ".%s", cutoff,
		 tmp ? "tmp" : "snap");
}

/* Parses "<16 hex>.log" or "snapshot-<16 hex>.snap". */
static int parse_hex16(const char *s, uint64_t *v)
{
	uint64_t x = 0;
	for (int i = 0; i < 16; i++) {
		char c = s[i];
		int d;
		if (c >= '0' && c <= '9')
			d = c - '0';
		else if (c >= 'a' && c <= 'f')
			d = c - 'a' + 10;
		else
			return -1;
		x = (x << 4) | (uint64_t)d;
	}
	*v = x;
	return 0;
}

static int is_segment(const char *name, uint64_t *lsn)
{
	return strlen(name) == 20 && strcmp(name + 16, ".log") == 0 &&
	       parse_hex16(name, lsn) == 0;
}

static int is_snapshot(const char *name, uint64_t *cutoff, int *tmp)
{
	if (strncmp(name, "snapshot-", 9) != 0 || strlen(name) < 25 ||
	    parse_hex16(name + 9, cutoff) != 0)
		return 0;
	if (strcmp(name + 25, ".snap") == 0)
		*tmp = 0;
	else if (strcmp(name + 25, ".tmp") == 0)
		*tmp = 1;
	else
		return 0;
	return 1;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static struct chunk *chunk_new(void)
{
	return calloc(1, sizeof(struct chunk));
}

static void chunk_free(struct chunk *c)
{
	if (!c)
		return;
	rk_buf_destroy(&c->buf);
	free(c);
}

static void queue_push(struct queue *q, struct chunk *c)
{
	c->next = NULL;
	if (q->tail)
		q->tail->next = c;
	else
		q->head = c;
	q->tail = c;
	q->bytes += rk_buf_readable(&c->buf);
}

static struct chunk *queue_take_all(struct queue *q)
{
	struct chunk *c = q->head;
	q->head = q->tail = NULL;
	return c;
}

/* ------------------------------------------------------------------ */
/* open                                                                */

static int mkdir_p(const char *path)
{
	char tmp[PATH_MAX];
	if (snprintf(tmp, sizeof(tmp), "%s", path) >= (int)sizeof(tmp))
		return -1;
	for (char *p = tmp + 1; *p; p++) {
		if (*p == '/') {
			*p = 0;
			if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
				return -1;
			*p = '/';
		}
	}
	if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
		return -1;
	return 0;
}

int oplog_open(const struct oplog_config *cfg, const struct rk_logger *lg,
	       struct oplog **out, char *err, size_t errlen)
{
	*out = NULL;
	if (mkdir_p(cfg->dir) < 0)
		return errf(err, errlen, RK_EIO, "cannot create %s: %s",
			    cfg->dir, strerror(errno));
	struct oplog *log = calloc(1, sizeof(*log));
	if (!log)
		return errf(err, errlen, RK_ENOMEM, "out of memory");
	log->cfg = *cfg;
	log->dir = strdup(cfg->dir);
	log->cfg.dir = log->dir;
	log->lg = lg;
	log->seg_fd = -1;
	log->next_lsn = 1;
	log->dir_fd = open(cfg->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (!log->dir || log->dir_fd < 0) {
		int e = errno;
		free(log->dir);
		free(log);
		return errf(err, errlen, RK_EIO, "cannot open %s: %s",
			    cfg->dir, strerror(e));
	}
	pthread_mutex_init(&log->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&log->cv, &ca);
	pthread_cond_init(&log->snap_cv, &ca);
	pthread_cond_init(&log->read_cv, &ca);
	pthread_condattr_destroy(&ca);
	*out = log;
	return 0;
}

/* ------------------------------------------------------------------ */
/* replay                                                              */

struct seg_entry {
	uint64_t first_lsn;
};

static int cmp_seg(const void *a, const void *b)
{
	uint64_t x = ((const struct seg_entry *)a)->first_lsn;
	uint64_t y = ((const struct seg_entry *)b)->first_lsn;
	return x < y ? -1 : x > y;
}

/* Loads a snapshot file, feeding its records to apply. */
static int load_snapshot(struct oplog *log, const char *name,
			 oplog_apply_fn apply, void *ctx, uint64_t *records,
			 char *err, size_t errlen)
{
	int rc = 0;
	FILE *f = NULL;
	ZSTD_DCtx *dz = NULL;
	struct rk_buf raw, plain;
	rk_buf_init(&raw);
	rk_buf_init(&plain);
	int fd = openat(log->dir_fd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || !(f = fdopen(fd, "rb"))) {
		if (fd >= 0)
			close(fd);
		return errf(err, errlen, RK_EIO, "cannot open %s/%s: %s",
			    log->dir, name, strerror(errno));
	}
	char magic[4];
	if (fread(magic, 1, 4, f) != 4 || memcmp(magic, SNAP_MAGIC, 4) != 0) {
		rc = errf(err, errlen, RK_ECORRUPT,
			  "%s/%s: not a ringkv snapshot (bad magic)", log->dir,
			  name);
		goto out;
	}
	dz = ZSTD_createDCtx();
	size_t in_cap = ZSTD_DStreamInSize();
	if (!dz || rk_buf_reserve(&raw, in_cap)) {
		rc = errf(err, errlen, RK_ENOMEM, "out of memory");
		goto out;
	}
	size_t frame_left = 1; /* nonzero until the frame is complete */
	uint64_t consumed = 4; /* file offset, for messages */
	for (;;) {
		size_t got = fread(raw.data, 1, in_cap, f);
		if (got == 0) {
			if (ferror(f)) {
				rc = errf(err, errlen, RK_EIO,
					  "%s/%s: read error", log->dir, name);
				goto out;
			}
			break;
		}
		ZSTD_inBuffer in = {raw.data, got, 0};
		while (in.pos < in.size) {
			if (frame_left == 0) {
				rc = errf(err, errlen, RK_ECORRUPT,
					  "%s/%s: bytes after the end of the "
					  "snapshot at offset %" PRIu64,
					  log->dir, name, consumed + in.pos);
				goto out;
			}
			if (rk_buf_reserve(&plain, SNAP_CHUNK_BYTES)) {
				rc = errf(err, errlen, RK_ENOMEM,
					  "out of memory");
				goto out;
			}
			ZSTD_outBuffer o = {plain.data + plain.len,
					    plain.cap - plain.len, 0};
			frame_left = ZSTD_decompressStream(dz, &o, &in);
			if (ZSTD_isError(frame_left)) {
				rc = errf(err, errlen, RK_ECORRUPT,
					  "%s/%s: damaged near offset %" PRIu64
					  ": %s",
					  log->dir, name, consumed + in.pos,
					  ZSTD_getErrorName(frame_left));
				goto out;
			}
			plain.len += o.pos;
			for (;;) {
				struct rk_logrec r;
				long n = rk_logrec_decode(rk_buf_rptr(&plain),
							  rk_buf_readable(&plain),
							  &r);
				if (n == 0)
					break;
				if (n < 0) {
					rc = errf(err, errlen, RK_ECORRUPT,
						  "%s/%s: damaged record "
						  "inside the snapshot",
						  log->dir, name);
					goto out;
				}
				if ((rc = apply(ctx, &r)) != 0) {
					errf(err, errlen, rc,
					     "%s/%s: applying a record: %s",
					     log->dir, name, rk_strerror(rc));
					goto out;
				}
				(*records)++;
				rk_buf_consume(&plain, (size_t)n);
			}
		}
		consumed += got;
	}
	if (frame_left != 0 || rk_buf_readable(&plain) != 0)
		rc = errf(err, errlen, RK_ECORRUPT,
			  "%s/%s: snapshot ends early (truncated)", log->dir,
			  name);
out:
	ZSTD_freeDCtx(dz);
	rk_buf_destroy(&raw);
	rk_buf_destroy(&plain);
	fclose(f);
	return rc;
}

/* Replays one segment.  last says whether it is the newest segment, the
 * only one allowed a torn tail. */
static int replay_segment(struct oplog *log, uint64_t first, int last,
			  oplog_apply_fn apply, void *ctx,
			  struct oplog_replay_stats *st, uint64_t *max_lsn,
			  char *err, size_t errlen)
{
	char name[64];
	seg_name(name, sizeof(name), first);
	int fd = openat(log->dir_fd, name, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return errf(err, errlen, RK_EIO, "cannot open %s/%s: %s",
			    log->dir, name, strerror(errno));
	struct stat sb;
	if (fstat(fd, &sb) < 0) {
		int e = errno;
		close(fd);
		return errf(err, errlen, RK_EIO, "cannot stat %s/%s: %s",
			    log->dir, name, strerror(e));
	}
	size_t size = (size_t)sb.st_size;
	const uint8_t *p = NULL;
	if (size > 0) {
		p = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
		if (p == MAP_FAILED) {
			int e = errno;
			close(fd);
			return errf(err, errlen, RK_EIO,
				    "cannot map %s/%s: %s", log->dir, name,
				    strerror(e));
		}
		madvise((void *)p, size, MADV_SEQUENTIAL);
	}
	int rc = 0;
	size_t off = 0;
	while (off < size) {
		struct rk_logrec r;
		long n = rk_logrec_decode(p + off, size - off, &r);
		if (n > 0 && r.lsn <= *max_lsn) {
			rc = errf(err, errlen, RK_ECORRUPT,
				  "%s/%s: record at offset %zu has lsn %" PRIu64
				  " not above %" PRIu64,
				  log->dir, name, off, r.lsn, *max_lsn);
			break;
		}
		if (n > 0) {
			if ((rc = apply(ctx, &r)) != 0) {
				errf(err, errlen, rc,
				     "%s/%s: applying record at offset %zu: %s",
				     log->dir, name, off, rk_strerror(rc));
				break;
			}
			*max_lsn = r.lsn;
			st->log_records++;
			off += (size_t)n;
			continue;
		}
		/* Damage at off: a torn tail only if it is the newest segment
		 * and nothing whole follows. */
		long next = last ? rk_logrec_find_next(p, size, off + 1) : -1;
		if (!last || next >= 0) {
			rc = errf(err, errlen, RK_ECORRUPT,
				  "%s/%s: %s record at offset %zu with valid "
				  "records after it; refusing to start "
				  "(restore the file or remove the node's data "
				  "and let it catch up)",
				  log->dir, name,
				  n == 0 ? "incomplete" : "corrupt", off);
			break;
		}
		rk_warn(log->lg, "oplog",
			"%s/%s: torn tail at offset %zu (%s), truncating %zu "
			"bytes",
			log->dir, name, off, n == 0 ? "incomplete" : "corrupt",
			size - off);
		st->truncated_bytes += size - off;
		if (ftruncate(fd, (off_t)off) < 0 || fdatasync(fd) < 0) {
			rc = errf(err, errlen, RK_EIO,
				  "cannot truncate %s/%s: %s", log->dir, name,
				  strerror(errno));
		}
		size = off;
		break;
	}
	if (p)
		munmap((void *)p, (size_t)sb.st_size);
	if (rc == 0) {
		st->segments++;
		atomic_fetch_add(&log->seg_bytes_total, size);
		atomic_fetch_add(&log->segments, 1);
		if (last) {
			/* The writer appends to the newest segment.  What we
			 * replayed from it may be only in the page cache (a
			 * kill -9 leaves it there): put it on disk before
			 * anything this node does rests on it, so that
			 * synced_lsn starts true. */
			if (fdatasync(fd) < 0) {
				rc = errf(err, errlen, RK_EIO,
					  "cannot sync %s/%s: %s", log->dir,
					  name, strerror(errno));
			} else if (lseek(fd, 0, SEEK_END) < 0) {
				rc = errf(err, errlen, RK_EIO,
					  "cannot seek %s/%s: %s", log->dir,
					  name, strerror(errno));
			} else {
				log->seg_fd = fd;
				log->seg_size = size;
				log->seg_first_lsn = first;
				return 0;
			}
		}
	}
	close(fd);
	return rc;
}

int oplog_replay(struct oplog *log, oplog_apply_fn apply, void *ctx,
		 struct oplog_replay_stats *st, char *err, size_t errlen)
{
	memset(st, 0, sizeof(*st));
	DIR *d = fdopendir(dup(log->dir_fd));
	if (!d)
		return errf(err, errlen, RK_EIO, "cannot list %s: %s",
			    log->dir, strerror(errno));
	struct seg_entry *segs = NULL;
	size_t nsegs = 0, cap = 0;
	uint64_t snap = 0;
	int have_snap = 0, rc = 0;
	struct dirent *de;
	rewinddir(d);
	while ((de = readdir(d)) != NULL) {
		uint64_t v;
		int tmp;
		if (is_segment(de->d_name, &v)) {
			if (nsegs == cap) {
				cap = cap ? cap * 2 : 16;
				struct seg_entry *n =
					realloc(segs, cap * sizeof(*segs));
				if (!n) {
					rc = errf(err, errlen, RK_ENOMEM,
						  "out of memory");
					goto out;
				}
				segs = n;
			}
			segs[nsegs++].first_lsn = v;
		} else if (is_snapshot(de->d_name, &v, &tmp)) {
			if (tmp) {
				/* An unfinished compaction: never trusted. */
				unlinkat(log->dir_fd, de->d_name, 0);
			} else if (!have_snap || v > snap) {
				snap = v;
				have_snap = 1;
			}
		}
	}
	if (nsegs)
		qsort(segs, nsegs, sizeof(*segs), cmp_seg);

	char name[64];
	if (have_snap) {
		snap_name(name, sizeof(name), snap, 0);
		rc = load_snapshot(log, name, apply, ctx, &st->snapshot_records,
				   err, errlen);
		if (rc)
			goto out;
		struct stat sb;
		if (fstatat(log->dir_fd, name, &sb, 0) == 0)
			atomic_store(&log->snapshot_bytes, (uint64_t)sb.st_size);
		/* Finish what an interrupted compaction left: older
		 * snapshots and segments wholly before the cutoff. */
		rewinddir(d);
		while ((de = readdir(d)) != NULL) {
			uint64_t v;
			int tmp;
			if (is_snapshot(de->d_name, &v, &tmp) && v < snap)
				unlinkat(log->dir_fd, de->d_name, 0);
		}
		size_t keep = 0;
		for (size_t i = 0; i < nsegs; i++) {
			int whole_before = i + 1 < nsegs &&
					   segs[i + 1].first_lsn <= snap;
			if (whole_before) {
				seg_name(name, sizeof(name), segs[i].first_lsn);
				unlinkat(log->dir_fd, name, 0);
			} else {
				segs[keep++] = segs[i];
			}
		}
		nsegs = keep;
		log->next_lsn = snap > 1 ? snap : 1;
	}
	atomic_store(&log->first_lsn, nsegs ? segs[0].first_lsn : log->next_lsn);
	uint64_t max_lsn = 0;
	for (size_t i = 0; i < nsegs; i++) {
		rc = replay_segment(log, segs[i].first_lsn, i + 1 == nsegs,
				    apply, ctx, st, &max_lsn, err, errlen);
		if (rc)
			goto out;
	}
	if (max_lsn + 1 > log->next_lsn)
		log->next_lsn = max_lsn + 1;
	if (!nsegs)
		atomic_store(&log->first_lsn, log->next_lsn);
	atomic_store(&log->durable_lsn, log->next_lsn - 1);
	atomic_store(&log->synced_lsn, log->next_lsn - 1);
out:
	free(segs);
	closedir(d);
	return rc;
}

/* ------------------------------------------------------------------ */
/* writer thread                                                       */

static void dir_sync(struct oplog *log)
{
	if (fsync(log->dir_fd) < 0)
		fatal_io(log, "fsync of the log directory", errno);
}

static void seg_sync(struct oplog *log)
{
	if (log->seg_fd >= 0 && log->dirty) {
		if (fdatasync(log->seg_fd) < 0)
			fatal_io(log, "fdatasync of a log segment", errno);
		atomic_fetch_add(&log->fsyncs, 1);
	}
	log->dirty = 0;
	log->last_sync_ms = mono_ms();
	/* Sealed segments were synced when sealed: all written is on disk. */
	if (log->written_lsn)
		atomic_store(&log->synced_lsn, log->written_lsn);
}

/* Seals the current segment and opens a new one named first_lsn. */
static void seg_rotate(struct oplog *log, uint64_t first_lsn)
{
	if (log->seg_fd >= 0) {
		log->dirty = 1; /* a sealed segment is always synced */
		seg_sync(log);
		close(log->seg_fd);
		log->seg_fd = -1;
	}
	char name[64];
	seg_name(name, sizeof(name), first_lsn);
	int fd = openat(log->dir_fd, name,
			O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd < 0)
		fatal_io(log, "creating a log segment", errno);
	dir_sync(log);
	pthread_mutex_lock(&log->mu);
	log->seg_fd = fd;
	log->seg_first_lsn = first_lsn;
	/* A finishing snapshot may be waiting for this rotation. */
	pthread_cond_broadcast(&log->snap_cv);
	pthread_mutex_unlock(&log->mu);
	log->seg_size = 0;
	atomic_fetch_add(&log->segments, 1);
}

static void write_chunk(struct oplog *log, struct chunk *c)
{
	size_t n = rk_buf_readable(&c->buf);
	if (n) {
		if (log->seg_fd < 0 ||
		    log->seg_size >= log->cfg.segment_bytes)
			seg_rotate(log, c->first_lsn);
		if (write_all(log->seg_fd, rk_buf_rptr(&c->buf), n) < 0)
			fatal_io(log, "write to a log segment", errno);
		log->seg_size += n;
		log->dirty = 1;
		atomic_fetch_add(&log->seg_bytes_total, n);
	}
	/* A snapshot's cutoff: later records go to a segment of their own,
	 * so the segments before it can be deleted whole. */
	if (c->rotate_after)
		seg_rotate(log, c->last_lsn + 1);
}

static void *writer_main(void *arg)
{
	struct oplog *log = arg;
	pthread_mutex_lock(&log->mu);
	for (;;) {
		while (!log->wq.head && !log->stop) {
			if (log->dirty &&
			    log->cfg.fsync == RK_FSYNC_INTERVAL) {
				uint64_t due = log->last_sync_ms +
					       log->cfg.fsync_interval_ms;
				uint64_t now = mono_ms();
				if (now >= due)
					break;
				struct timespec ts;
				clock_gettime(CLOCK_MONOTONIC, &ts);
				uint64_t ns = (uint64_t)ts.tv_nsec +
					      (due - now) * 1000000u;
				ts.tv_sec += (time_t)(ns / 1000000000u);
				ts.tv_nsec = (long)(ns % 1000000000u);
				pthread_cond_timedwait(&log->cv, &log->mu, &ts);
			} else {
				pthread_cond_wait(&log->cv, &log->mu);
			}
		}
		struct chunk *c = queue_take_all(&log->wq);
		int stopping = log->stop;
		pthread_mutex_unlock(&log->mu);

		uint64_t last = 0, bytes = 0;
		int must_sync = 0;
		while (c) {
			struct chunk *next = c->next;
			write_chunk(log, c);
			if (c->last_lsn)
				last = log->written_lsn = c->last_lsn;
			bytes += rk_buf_readable(&c->buf);
			must_sync |= c->must_sync;
			chunk_free(c);
			c = next;
		}
		int synced = 0;
		if (log->cfg.fsync == RK_FSYNC_ALWAYS || stopping || must_sync ||
		    (log->cfg.fsync == RK_FSYNC_INTERVAL && log->dirty &&
		     mono_ms() >= log->last_sync_ms +
					  log->cfg.fsync_interval_ms)) {
			seg_sync(log);
			synced = 1;
		}
		pthread_mutex_lock(&log->mu);
		log->wq.bytes -= bytes;
		pthread_mutex_unlock(&log->mu);
		/* Under fsync=interval and never, "durable" means handed to
		 * the OS: acknowledgements do not wait for it. */
		if (last && (synced || log->cfg.fsync != RK_FSYNC_ALWAYS)) {
			atomic_store(&log->durable_lsn, last);
			if (log->notify)
				log->notify(log->notify_ctx);
		} else if (synced && log->notify) {
			/* fsync=interval synced earlier writes: synced_lsn. */
			log->notify(log->notify_ctx);
		}
		pthread_mutex_lock(&log->mu);
		if (stopping && !log->wq.head)
			break;
	}
	pthread_mutex_unlock(&log->mu);
	return NULL;
}

int oplog_start(struct oplog *log, oplog_notify_fn notify, void *ctx)
{
	log->notify = notify;
	log->notify_ctx = ctx;
	log->last_sync_ms = mono_ms();
	if (pthread_create(&log->writer, NULL, writer_main, log) != 0)
		return RK_EIO;
	log->writer_started = 1;
	return 0;
}

/* ------------------------------------------------------------------ */
/* appending (loop thread)                                             */

static void handoff(struct oplog *log)
{
	struct chunk *c = log->open;
	if (!c || (rk_buf_readable(&c->buf) == 0 && !c->rotate_after))
		return;
	log->open = NULL;
	pthread_mutex_lock(&log->mu);
	queue_push(&log->wq, c);
	pthread_cond_signal(&log->cv);
	pthread_mutex_unlock(&log->mu);
}

uint64_t oplog_append(struct oplog *log, struct rk_logrec *r)
{
	if (!log->open && !(log->open = chunk_new()))
		return 0;
	struct chunk *c = log->open;
	r->lsn = log->next_lsn;
	if (rk_logrec_encode(&c->buf, r) != 0)
		return 0;
	log->next_lsn++;
	if (!c->first_lsn)
		c->first_lsn = r->lsn;
	c->last_lsn = r->lsn;
	if (rk_buf_readable(&c->buf) >= CHUNK_HANDOFF_BYTES)
		handoff(log);
	return r->lsn;
}

uint64_t oplog_append_sync(struct oplog *log, struct rk_logrec *r)
{
	/* Marked first: oplog_append may hand the chunk over at once. */
	if (!log->open && !(log->open = chunk_new()))
		return 0;
	log->open->must_sync = 1;
	return oplog_append(log, r);
}

void oplog_flush(struct oplog *log)
{
	handoff(log);
}

uint64_t oplog_synced_lsn(struct oplog *log)
{
	return atomic_load(&log->synced_lsn);
}

uint64_t oplog_durable_lsn(struct oplog *log)
{
	/* Under interval and never, a record is as durable as the policy
	 * promises once it is appended. */
	if (log->cfg.fsync != RK_FSYNC_ALWAYS)
		return log->next_lsn - 1;
	return atomic_load(&log->durable_lsn);
}

int oplog_fsync_always(const struct oplog *log)
{
	return log->cfg.fsync == RK_FSYNC_ALWAYS;
}

void oplog_get_stats(struct oplog *log, struct oplog_stats *st)
{
	st->next_lsn = log->next_lsn;
	st->durable_lsn = atomic_load(&log->durable_lsn);
	st->segment_bytes = atomic_load(&log->seg_bytes_total);
	st->segments = atomic_load(&log->segments);
	st->snapshot_bytes = atomic_load(&log->snapshot_bytes);
	st->fsyncs = atomic_load(&log->fsyncs);
	pthread_mutex_lock(&log->mu);
	st->queued_bytes = log->wq.bytes +
			   (log->open ? rk_buf_readable(&log->open->buf) : 0);
	pthread_mutex_unlock(&log->mu);
}

/* ------------------------------------------------------------------ */
/* catch-up reads                                                      */

/* The segment holding lsn: the one with the greatest first LSN <= lsn.
 * Returns 0 with *first set, or RK_ENOT_FOUND. */
static int segment_for(struct oplog *log, uint64_t lsn, uint64_t *first)
{
	DIR *d = fdopendir(dup(log->dir_fd));
	if (!d)
		return RK_EIO;
	rewinddir(d);
	int found = 0;
	uint64_t best = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		uint64_t v;
		if (is_segment(de->d_name, &v) && v <= lsn &&
		    (!found || v > best)) {
			best = v;
			found = 1;
		}
	}
	closedir(d);
	*first = best;
	return found ? 0 : RK_ENOT_FOUND;
}

/* Reads one request's records (reader thread).  The segment is read in
 * chunks from the byte offset the previous batch ended at (the caller
 * echoes it back as a hint; it is checked against the LSN before use). */
static void do_read(struct oplog *log, struct read_req *q)
{
	struct oplog_read_result *res = &q->res;
	uint64_t lsn = q->from_lsn;
	res->next_lsn = lsn;
	if (lsn >= res->end_lsn)
		return;
	if (lsn < atomic_load(&log->first_lsn)) {
		res->truncated = 1;
		return;
	}
	size_t cap = (size_t)q->max_bytes * 2 + RK_LOG_HDR;
	if (cap < (1u << 20))
		cap = 1u << 20;
	uint8_t *buf = malloc(cap);
	if (!buf) {
		res->status = RK_ENOMEM;
		return;
	}
	uint64_t hint = q->hint_off;
	while (lsn < res->end_lsn &&
	       rk_buf_readable(&res->recs) < q->max_bytes && !res->status) {
		uint64_t first;
		char name[64];
		if (segment_for(log, lsn, &first)) {
			res->truncated = 1;
			break;
		}
		seg_name(name, sizeof(name), first);
		int fd = openat(log->dir_fd, name, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			/* Deleted by compaction since: what we want is older
			 * than what is kept. */
			res->truncated = errno == ENOENT;
			res->status = errno == ENOENT ? 0 : RK_EIO;
			break;
		}
		uint64_t off = 0; /* file offset of buf[0] */
		size_t have = 0, pos = 0;
		int eof = 0, progressed = 0, checked_hint = hint == 0;
		int need_more = 0;
		if (hint) {
			off = hint;
			hint = 0;
		}
		for (;;) {
			if (need_more && pos == 0 && have == cap) {
				/* One record larger than the buffer. */
				uint8_t *nb = realloc(buf, cap * 2);
				if (!nb) {
					res->status = RK_ENOMEM;
					break;
				}
				buf = nb;
				cap *= 2;
			}
			if (!eof && (need_more ||
				     have - pos < RK_LOG_HDR + (size_t)q->max_bytes)) {
				need_more = 0;
				/* Slide and refill. */
				memmove(buf, buf + pos, have - pos);
				off += pos;
				have -= pos;
				pos = 0;
				ssize_t r = pread(fd, buf + have, cap - have,
						  (off_t)(off + have));
				if (r < 0 && errno == EINTR)
					continue;
				if (r <= 0)
					eof = 1;
				else
					have += (size_t)r;
			}
			struct rk_logrec r;
			long n = rk_logrec_decode(buf + pos, have - pos, &r);
			if (n == 0 && !eof) {
				need_more = 1; /* the record goes on */
				continue;
			}
			if (n <= 0) {
				if (!checked_hint) {
					/* A stale hint: start the segment over. */
					checked_hint = 1;
					off = 0;
					have = pos = 0;
					eof = 0;
					continue;
				}
				break; /* the end being written, or the tail */
			}
			if (!checked_hint) {
				checked_hint = 1;
				if (r.lsn != lsn) {
					off = 0;
					have = pos = 0;
					eof = 0;
					continue;
				}
			}
			pos += (size_t)n;
			if (r.lsn < lsn)
				continue;
			progressed = 1;
			lsn = r.lsn + 1;
			res->next_off = off + pos;
			if (q->want(res->want_ctx, &r) &&
			    rk_logrec_encode(&res->recs, &r)) {
				res->status = RK_ENOMEM;
				break;
			}
			if (lsn >= res->end_lsn ||
			    rk_buf_readable(&res->recs) >= q->max_bytes)
				break;
		}
		close(fd);
		res->next_lsn = lsn;
		/* The segment held nothing new: no later one exists yet. */
		if (!progressed)
			break;
		/* Otherwise the loop goes on with the segment holding lsn:
		 * the next one when this one was read to its end. */
		if (!(eof && pos >= have))
			break;
		res->next_off = 0;
	}
	free(buf);
}

static void *reader_main(void *arg)
{
	struct oplog *log = arg;
	pthread_mutex_lock(&log->mu);
	for (;;) {
		while (!log->rq_head && !log->stop)
			pthread_cond_wait(&log->read_cv, &log->mu);
		if (log->stop)
			break;
		struct read_req *q = log->rq_head;
		log->rq_head = q->next;
		if (!log->rq_head)
			log->rq_tail = NULL;
		pthread_mutex_unlock(&log->mu);
		do_read(log, q);
		pthread_mutex_lock(&log->mu);
		q->next = NULL;
		if (log->rd_tail)
			log->rd_tail->next = q;
		else
			log->rd_head = q;
		log->rd_tail = q;
		pthread_mutex_unlock(&log->mu);
		if (log->notify)
			log->notify(log->notify_ctx);
		pthread_mutex_lock(&log->mu);
	}
	pthread_mutex_unlock(&log->mu);
	return NULL;
}

int oplog_read(struct oplog *log, uint64_t token, uint64_t from_lsn,
	       uint64_t hint_off, uint64_t end_lsn, uint32_t max_bytes,
	       oplog_want_fn want, void *want_ctx)
{
	struct read_req *q = calloc(1, sizeof(*q));
	if (!q)
		return RK_ENOMEM;
	q->res.token = token;
	q->res.end_lsn = end_lsn;
	q->res.want_ctx = want_ctx;
	rk_buf_init(&q->res.recs);
	q->from_lsn = from_lsn;
	q->hint_off = hint_off;
	q->max_bytes = max_bytes;
	q->want = want;
	pthread_mutex_lock(&log->mu);
	if (!log->reader_started) {
		if (pthread_create(&log->reader, NULL, reader_main, log) != 0) {
			pthread_mutex_unlock(&log->mu);
			free(q);
			return RK_ENOMEM;
		}
		log->reader_started = 1;
	}
	if (log->rq_tail)
		log->rq_tail->next = q;
	else
		log->rq_head = q;
	log->rq_tail = q;
	pthread_cond_signal(&log->read_cv);
	pthread_mutex_unlock(&log->mu);
	return 0;
}

int oplog_read_poll(struct oplog *log, struct oplog_read_result *out)
{
	pthread_mutex_lock(&log->mu);
	struct read_req *q = log->rd_head;
	if (q) {
		log->rd_head = q->next;
		if (!log->rd_head)
			log->rd_tail = NULL;
	}
	pthread_mutex_unlock(&log->mu);
	if (!q)
		return 0;
	*out = q->res;
	free(q);
	return 1;
}

uint64_t oplog_first_lsn(struct oplog *log)
{
	return atomic_load(&log->first_lsn);
}

/* ------------------------------------------------------------------ */
/* compaction                                                          */

/* Deletes segments wholly before cutoff (never the one being written) and
 * snapshots older than cutoff. */
static void delete_before(struct oplog *log, uint64_t cutoff)
{
	pthread_mutex_lock(&log->mu);
	uint64_t current = log->seg_first_lsn;
	pthread_mutex_unlock(&log->mu);
	/* Readers see the new start before the files go. */
	uint64_t first = cutoff < current ? cutoff : current;
	if (first > atomic_load(&log->first_lsn))
		atomic_store(&log->first_lsn, first);
	DIR *d = fdopendir(dup(log->dir_fd));
	if (!d)
		return;
	rewinddir(d);
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		uint64_t v;
		int tmp;
		struct stat sb;
		if (is_segment(de->d_name, &v) && v < cutoff && v != current) {
			if (fstatat(log->dir_fd, de->d_name, &sb, 0) == 0 &&
			    unlinkat(log->dir_fd, de->d_name, 0) == 0) {
				atomic_fetch_sub(&log->seg_bytes_total,
						 (uint64_t)sb.st_size);
				atomic_fetch_sub(&log->segments, 1);
			}
		} else if (is_snapshot(de->d_name, &v, &tmp) && !tmp &&
			   v < cutoff) {
			unlinkat(log->dir_fd, de->d_name, 0);
		}
	}
	closedir(d);
}

static void *snapper_main(void *arg)
{
	struct oplog *log = arg;
	char tmp[64], fin[64];
	snap_name(tmp, sizeof(tmp), log->snap_cutoff, 1);
	snap_name(fin, sizeof(fin), log->snap_cutoff, 0);
	int ok = 0, done = 0;
	uint64_t written = 4;
	ZSTD_CCtx *cz = ZSTD_createCCtx();
	struct rk_buf out;
	rk_buf_init(&out);
	int fd = openat(log->dir_fd, tmp,
			O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	int failed = fd < 0 || !cz ||
		     rk_buf_reserve(&out, ZSTD_CStreamOutSize()) != 0 ||
		     write_all(fd, (const uint8_t *)SNAP_MAGIC, 4) < 0;
	if (!failed) {
		ZSTD_CCtx_setParameter(cz, ZSTD_c_compressionLevel,
				       log->cfg.zstd_level);
		ZSTD_CCtx_setParameter(cz, ZSTD_c_checksumFlag, 1);
	}
	while (!done) {
		pthread_mutex_lock(&log->mu);
		while (!log->sq.head)
			pthread_cond_wait(&log->snap_cv, &log->mu);
		struct chunk *c = queue_take_all(&log->sq);
		pthread_mutex_unlock(&log->mu);
		uint64_t bytes = 0;
		while (c) {
			struct chunk *next = c->next;
			size_t n = rk_buf_readable(&c->buf);
			bytes += n;
			ZSTD_inBuffer in = {rk_buf_rptr(&c->buf), n, 0};
			ZSTD_EndDirective mode =
				c->end ? ZSTD_e_end : ZSTD_e_continue;
			size_t left;
			do {
				ZSTD_outBuffer o = {out.data, out.cap, 0};
				left = failed ? 0 :
					ZSTD_compressStream2(cz, &o, &in, mode);
				if (!failed && ZSTD_isError(left))
					failed = 1;
				if (!failed && o.pos &&
				    write_all(fd, out.data, o.pos) < 0)
					failed = 1;
				written += o.pos;
			} while (!failed &&
				 (mode == ZSTD_e_end ? left != 0
						     : in.pos < in.size));
			if (c->end)
				done = 1;
			chunk_free(c);
			c = next;
		}
		pthread_mutex_lock(&log->mu);
		log->sq.bytes -= bytes;
		pthread_mutex_unlock(&log->mu);
		if (log->notify)
			log->notify(log->notify_ctx); /* backlog shrank */
	}
	pthread_mutex_lock(&log->mu);
	int aborted = log->snap_abort;
	pthread_mutex_unlock(&log->mu);
	if (aborted) {
		unlinkat(log->dir_fd, tmp, 0);
	} else if (!failed && fsync(fd) == 0 &&
	    renameat(log->dir_fd, tmp, log->dir_fd, fin) == 0 &&
	    fsync(log->dir_fd) == 0) {
		ok = 1;
		atomic_store(&log->snapshot_bytes, written);
		/* The segment before the cutoff may still be the writer's;
		 * wait for the rotation that seals it, then delete it too. */
		pthread_mutex_lock(&log->mu);
		while (log->seg_first_lsn < log->snap_cutoff && !log->stop)
			pthread_cond_wait(&log->snap_cv, &log->mu);
		pthread_mutex_unlock(&log->mu);
		delete_before(log, log->snap_cutoff);
	} else {
		rk_error(log->lg, "oplog",
			 "compaction failed writing %s/%s: %s; old segments "
			 "kept, will retry",
			 log->dir, tmp, strerror(errno));
		unlinkat(log->dir_fd, tmp, 0);
	}
	if (fd >= 0)
		close(fd);
	ZSTD_freeCCtx(cz);
	rk_buf_destroy(&out);
	pthread_mutex_lock(&log->mu);
	log->snap_done = 1;
	log->snap_ok = ok;
	pthread_mutex_unlock(&log->mu);
	if (log->notify)
		log->notify(log->notify_ctx);
	return NULL;
}

int oplog_snapshot_begin(struct oplog *log, uint64_t *cutoff)
{
	if (log->snap_running)
		return RK_EINVALID;
	if (!log->open && !(log->open = chunk_new()))
		return RK_ENOMEM;
	if (!(log->snap_open = chunk_new()) || !(log->snap_end = chunk_new())) {
		chunk_free(log->snap_open);
		log->snap_open = NULL;
		return RK_ENOMEM;
	}
	*cutoff = log->next_lsn;
	/* Rotate after everything appended so far: the new segment starts
	 * exactly at the cutoff. */
	log->open->rotate_after = 1;
	if (!log->open->last_lsn)
		log->open->last_lsn = log->next_lsn - 1;
	handoff(log);
	log->snap_cutoff = *cutoff;
	log->snap_done = 0;
	log->snap_ok = 0;
	log->snap_abort = 0;
	if (pthread_create(&log->snapper, NULL, snapper_main, log) != 0) {
		chunk_free(log->snap_open);
		chunk_free(log->snap_end);
		log->snap_open = log->snap_end = NULL;
		return RK_EIO;
	}
	log->snapper_started = 1;
	log->snap_running = 1;
	return 0;
}

static void snap_push(struct oplog *log, struct chunk *c)
{
	pthread_mutex_lock(&log->mu);
	queue_push(&log->sq, c);
	pthread_cond_signal(&log->snap_cv);
	pthread_mutex_unlock(&log->mu);
}

int oplog_snapshot_add(struct oplog *log, const struct rk_logrec *r)
{
	if (!log->snap_open && !(log->snap_open = chunk_new()))
		return RK_ENOMEM;
	struct rk_logrec copy = *r;
	copy.lsn = 0;
	int rc = rk_logrec_encode(&log->snap_open->buf, &copy);
	if (rc)
		return rc;
	if (rk_buf_readable(&log->snap_open->buf) >= SNAP_CHUNK_BYTES) {
		snap_push(log, log->snap_open);
		log->snap_open = NULL;
	}
	return 0;
}

uint64_t oplog_snapshot_backlog(struct oplog *log)
{
	pthread_mutex_lock(&log->mu);
	uint64_t b = log->sq.bytes;
	pthread_mutex_unlock(&log->mu);
	return b;
}

void oplog_snapshot_end(struct oplog *log)
{
	if (!log->snap_end)
		return; /* already ended */
	if (log->snap_open)
		snap_push(log, log->snap_open);
	log->snap_open = NULL;
	log->snap_end->end = 1;
	snap_push(log, log->snap_end);
	log->snap_end = NULL;
}

void oplog_snapshot_abort(struct oplog *log)
{
	pthread_mutex_lock(&log->mu);
	log->snap_abort = 1;
	pthread_mutex_unlock(&log->mu);
	oplog_snapshot_end(log);
}

int oplog_snapshot_poll(struct oplog *log, int *ok)
{
	if (!log->snap_running)
		return 0;
	pthread_mutex_lock(&log->mu);
	int done = log->snap_done;
	*ok = log->snap_ok;
	pthread_mutex_unlock(&log->mu);
	if (!done)
		return 0;
	pthread_join(log->snapper, NULL);
	log->snapper_started = 0;
	log->snap_running = 0;
	return 1;
}

int oplog_snapshot_running(const struct oplog *log)
{
	return log->snap_running;
}

/* ------------------------------------------------------------------ */

void oplog_close(struct oplog *log)
{
	if (!log)
		return;
	if (log->snap_running) {
		/* An unfinished snapshot is incomplete, so it must never be
		 * installed; a finished one may complete. */
		if (log->snap_end)
			oplog_snapshot_abort(log);
		int ok;
		while (!oplog_snapshot_poll(log, &ok))
			usleep(1000);
	}
	if (log->writer_started) {
		handoff(log);
		pthread_mutex_lock(&log->mu);
		log->stop = 1;
		pthread_cond_signal(&log->cv);
		pthread_mutex_unlock(&log->mu);
		pthread_join(log->writer, NULL);
	}
	if (log->reader_started) {
		pthread_mutex_lock(&log->mu);
		log->stop = 1;
		pthread_cond_signal(&log->read_cv);
		pthread_mutex_unlock(&log->mu);
		pthread_join(log->reader, NULL);
	}
	/* Reads never taken: their buffers and contexts go too. */
	for (struct read_req *lists[2] = {log->rq_head, log->rd_head}, **l = lists;
	     l < lists + 2; l++)
		while (*l) {
			struct read_req *q = *l;
			*l = q->next;
			rk_buf_destroy(&q->res.recs);
			free(q->res.want_ctx);
			free(q);
		}
	chunk_free(log->open);
	chunk_free(log->snap_open);
	chunk_free(log->snap_end);
	if (log->seg_fd >= 0)
		close(log->seg_fd);
	close(log->dir_fd);
	pthread_mutex_destroy(&log->mu);
	pthread_cond_destroy(&log->cv);
	pthread_cond_destroy(&log->snap_cv);
	pthread_cond_destroy(&log->read_cv);
	free(log->dir);
	free(log);
}
