/*
 * sink_local.h - the sinks that are not Kafka topics: files, memory, and a C callback.
 *
 * File: each batch's rows as JSON lines in <path>/batch-<seq>.jsonl, written under a
 * temporary name, synced and renamed, so a reader never sees part of a batch. Foreach:
 * the job's callback gets each batch's rows and id. Both take their rows from the outbox
 * (outbox.h) like the Kafka sink, so a batch that a crash interrupted after its commit is
 * written or handed over again at restart, with the same id and rows: the file is
 * replaced whole, the callback can be idempotent by batch id.
 *
 * Memory: the rows stay in the process (Spark's memory sink, for tests); complete mode
 * keeps the last batch's table, the other modes every row in order.
 */
#ifndef SL_SINK_LOCAL_H
#define SL_SINK_LOCAL_H

#include <pthread.h>

#include "conf/conf.h"
#include "sink.h"
#include "sluice/sluice.h"
#include "store.h"
#include "util.h"

struct sl_batch {
    const sl_plan_t *plan; /* its columns */
    const sl_val_t *rows;  /* n rows of plan->ncols values */
    size_t n;
};

typedef struct sl_local {
    const sl_plan_t *plan;       /* the rows' columns and the output mode (borrowed) */
    const sl_conf_output_t *out; /* which sink, and a file sink's directory (borrowed) */
    sl_foreach_batch_fn fn;
    void *opaque;
    pthread_mutex_t mu; /* guards mem, read by sl_job_memory_rows() from any thread */
    sl_buf_t mem;       /* memory sink: JSON rows joined by commas */
} sl_local_t;

/** Prepares the sink: the file sink's directory is created and checked. @p plan and
 *  @p out are borrowed while the sink lives. */
sl_err_t sl__local_open(sl_local_t *l, const sl_plan_t *plan, const sl_conf_output_t *out,
                        sl_foreach_batch_fn fn, void *opaque, char *errstr, size_t errstr_size);
void sl__local_close(sl_local_t *l);

/**
 * Delivers batch @p seq: @p rows (plan->ncols values each) and, for the file sink, their
 * JSON encodings (the values of @p json, as the outbox holds them).
 */
sl_err_t sl__local_deliver(sl_local_t *l, int64_t seq, const sl_val_t *rows, size_t n,
                           const sl_out_row_t *json, char *errstr, size_t errstr_size);

/** Delivers what the outbox holds (batches a crash interrupted), then empties it. */
sl_err_t sl__local_replay(sl_local_t *l, sl_store_t *st, sl_store_batch_t *wb, char *errstr,
                          size_t errstr_size);

/** The memory sink's rows as a JSON array; free(). */
char *sl__local_memory_json(sl_local_t *l);

#endif
