/*
 * job_int.h - what the micro-batch loop (job.c) and the per-record path (job_record.c)
 * share: the job itself.
 */
#ifndef SL_JOB_INT_H
#define SL_JOB_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>

#include "commit/merge.h"
#include "commit/outbox.h"
#include "conf/conf.h"
#include "query/table.h"
#include "sink/sink.h"
#include "sink/sink_local.h"
#include "source/source.h"
#include "source/source_local.h"
#include "store.h"
#include "task.h"

#define MAX_WINDOWS 1000 /* per record; conf_query.c refuses a window/slide ratio above */

/* Folds into the batch table wait in a short queue while the CPU fetches their table
 * slot and entry (a table of many keys misses the cache on both): see fold_into(). 32
 * used 2% less CPU than 16 over 100,000 keys in alternating runs; 64 no better. */
#define FOLD_AHEAD 32
#define FOLD_KEY_MAX 66 /* a task prefix and a group key of up to 64 bytes */
typedef struct sl_fold {
    uint64_t hash;
    int64_t wend;
    uint64_t nulls; /* fast folds: the aggregates whose input is null */
    uint32_t klen;
    uint8_t key[FOLD_KEY_MAX];
} sl_fold_t;

/* How an aggregate folds when every aggregate of the query is a count, or a sum or an
 * average of a number (the usual query): from one number a record, in place. */
typedef enum { FK_COUNT_ALL, FK_COUNT, FK_SUM_LONG, FK_SUM_DOUBLE } sl_fold_kind_t;
typedef union sl_fold_num {
    int64_t i;
    double d;
} sl_fold_num_t;

/* What a run holds open: the source, the sinks and the store. Opened by sl_job_run() in
 * that order (the store's lock checked first) and closed by sl__run_fini() in reverse,
 * the consumer before the store its rebalance callback reads. */
typedef struct sl_run {
    sl_source_t src;  /* Kafka */
    sl_lsrc_t *lsrc;  /* or files or a socket */
    sl_part_t lpart;  /* the event time of the files or socket source */
    sl_sink_t sink;   /* Kafka or the console; dead letters and late records */
    sl_store_t *store;
} sl_run_t;

/* The batch being read, owned by the consuming thread: its table (or selected rows), the
 * row a record becomes, and the fold queue. Handed over to the commit (sl_commit_t) by
 * swapping tables. */
typedef struct sl_reading {
    sl_table_t table;
    sl_arena_t scratch; /* strings made by derived fields, reset per record */
    sl_val_t *row;
    sl_val_t *sel; /* a query without aggregation: the batch's selected rows */
    uint16_t *sel_tasks; /* and the task of each */
    size_t nsel, sel_cap;
    int task; /* the task of the record being folded */
    sl_buf_t key;
    struct {
        int on; /* the aggregates take no strings, so their inputs copy by value */
        unsigned head, n;
        sl_fold_t items[FOLD_AHEAD];
        sl_val_t *vals; /* per item, per aggregate: input value, event time */
        int fast;       /* every aggregate folds by its sl_fold_kind_t */
        uint8_t *kinds; /* fast: per aggregate */
        int *slots;     /* fast: per aggregate, its input's row slot (0 for count(*)) */
        int naggs;
        sl_fold_num_t *nums; /* fast: per item, per aggregate, its input */
        int lost;            /* a queued fold failed (out of memory): the batch must not commit */
    } fq;
    /* counted per record without atomics, added to stats after each consume call */
    uint64_t n_in, n_bad, n_kept, n_late, n_untimed;
    uint64_t batch_records; /* records (good or bad) in the batch under way */
} sl_reading_t;

/* What one task commits in a batch: its batch, its marker, and its records for Kafka
 * (result rows, changelog records, the marker), encoded in its outbox. */
typedef struct sl_commit_task {
    int task;
    int64_t seq;
    sl_buf_t marker; /* the marker's JSON (changelog.h) */
    rd_kafka_topic_partition_list_t *offsets; /* its input positions, for the group */
    sl_outbox_writer_t w;
    sl_buf_t out;       /* the records, encoded (kept until the next batch: no copies) */
    sl_out_row_t *rows; /* the same, decoded */
    size_t rows_cap;
    size_t *spans;      /* record i: spans[2i] bytes at out[spans[2i + 1]] */
    size_t nrows, cap;
    int rows_out;       /* of them, result rows */
    int published;
} sl_commit_task_t;

/* The batch being committed: its table and selected rows (swapped with the reading's at
 * the hand-over), what the commit needs to know of it, and how it ended. The commit
 * thread owns this, the tasks' producers and the local sinks from the hand-over until
 * sl__job_finish_commit() joins it. */
typedef struct sl_commit {
    sl_table_t table;
    sl_val_t *sel;
    uint16_t *sel_tasks;
    size_t nsel, sel_cap;
    sl_merge_t merge;
    sl_store_batch_t *wb;
    sl_commit_task_t *tasks;  /* per task id: what it commits in this batch */
    int ntasks;               /* the size of tasks */
    int *ids;                 /* the ids of the tasks the batch commits, ascending */
    sl_merge_task_t *mtasks;  /* the same, with their watermarks, for the merge */
    int nids;
    sl_outbox_writer_t lw;    /* the local sinks' rows (files, foreach) */
    sl_buf_t lout;
    int64_t seq;     /* the store's batch (SLUICE_STATE, files, the console) */
    int64_t wm_next; /* the watermark after it (the smallest of its tasks'), in the stats */
    uint64_t records;
    int64_t queue_ms, write_ms; /* queuing the rows, and the state write beside it (-1: none) */
    sl_err_t err;
    char errstr[1024];
    pthread_t thread;
    int running;
} sl_commit_t;

/* A job: its configuration, the program's callbacks and its counters, which outlive a
 * run; and while it runs, what the run holds open, the batch being read and the batch
 * being committed. */
struct sl_job {
    sl_conf_t *conf;
    FILE *console;
    atomic_int stop;
    sl_foreach_batch_fn foreach;
    void *foreach_opaque;
    struct {
        atomic_uint_fast64_t batches, records_in, records_bad, records_kept, rows_out;
        atomic_uint_fast64_t records_late, records_untimed, windows_closed, records_lost;
        atomic_uint_fast64_t records_restored, tasks_opened;
        atomic_int_fast64_t first_record_ms, last_commit_ms, watermark_ms, restore_ms;
    } stats;
    sl_local_t local; /* file, memory and foreach sinks; kept after the run for memory */

    /* while running */
    sl_run_t run;
    sl_reading_t rd;
    sl_commit_t cm;
    int64_t seq; /* the store's last batch */
    /* The tasks (task.h). Event time is per task, by Spark's rule (two watermarks): wm is
     * the watermark the last commit computed from the event times read so far, which the
     * next commit evicts state with; wm_late the one the last commit evicted with, which
     * the records of the batch under way are checked against for lateness (a record one
     * batch "late" still counts, as in Spark); maxev the largest event time committed;
     * each partition keeps its own largest (sl_part_t.maxev). */
    sl_task_t *tasks;
    int ntasks;
    sl_opener_t opener;
    char clog_topic[300]; /* the changelog, when the job keeps one ("" none) */
    int64_t last_input_ms; /* when input last arrived */
    sl_first_err_t fatal; /* why the job stops: it finishes its batch first */
};

#define STAT_ADD(job, f, n) atomic_fetch_add_explicit(&(job)->stats.f, (n), memory_order_relaxed)

/** Records why the job stops (the first reason wins); it finishes its batch first. */
void sl__job_fatal(sl_job_t *job, sl_err_t err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/** One Kafka message (a record, a partition's end, or an error). */
void sl__job_process(sl_job_t *job, rd_kafka_message_t *m);
/** One record of any source: 1 when consumed (its position may pass it), 0 when the job
 *  stops before it. */
int sl__job_process_rec(sl_job_t *job, const sl_rec_t *r, sl_part_t *p);
/**
 * Ends the batch under way (job_commit.c): waits for the previous commit, then hands this
 * one to a commit thread (a files or socket source commits it in line). A task whose
 * source has been idle for the query's idle_timeout earns a watermark by wall clock.
 */
sl_err_t sl__job_commit(sl_job_t *job, char *errstr, size_t errstr_size);
/** 1 when a task's watermark moved past the one it last closed windows with: one more
 *  batch (of no records) closes them. */
int sl__job_wm_pending(const sl_job_t *job);
/** Waits for the commit under way, if any; its error, with its message in @p errstr. */
sl_err_t sl__job_finish_commit(sl_job_t *job, char *errstr, size_t errstr_size);
/** After task @p task's producer was fenced: a new one, and its outbox published again,
 *  unless another instance runs the job. */
sl_err_t sl__job_recover_producer(sl_job_t *job, int task, char *errstr, size_t errstr_size);
/** Sets up the batch being read (its table, row, fold queue) for the job's query;
 *  SL_ERR_NOMEM. sl__reading_fini() frees it, also after a failed init. */
sl_err_t sl__reading_init(sl_reading_t *rd, const sl_plan_t *plan);
void sl__reading_fini(sl_reading_t *rd);
/** Sets up the batch being committed for @p ntasks tasks; SL_ERR_NOMEM. sl__commit_fini()
 *  frees it. */
sl_err_t sl__commit_init(sl_commit_t *cm, const sl_plan_t *plan, const char *state_dir,
                         int ntasks);
void sl__commit_fini(sl_commit_t *cm);
/** Applies every queued fold to the batch table; SL_ERR_NOMEM when one failed. */
sl_err_t sl__job_fold_flush(sl_job_t *job);

#endif
