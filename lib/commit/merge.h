/*
 * merge.h - a batch's aggregation table merged into the state, and the result rows the
 * output mode asks for.
 *
 * Each changed aggregate is read once (one MultiGet; session windows read their key's
 * sessions with a prefix scan and merge the overlapping ones), combined with the batch's
 * partial aggregate and written back into the batch's WriteBatch. With a watermark, the
 * windows it closes are dropped from the state (found through the expiry index, see
 * store.h). The rows are: update mode, every aggregate the batch changed; append mode,
 * every window the watermark closed, once; complete mode, the whole table.
 */
#ifndef SL_MERGE_H
#define SL_MERGE_H

#include "conf/conf.h"
#include "query/table.h"
#include "store.h"

/* A change the merge makes to a task's state: @p val NULL when the key is deleted. The
 * changelog records it (commit/changelog.h). Keys are state keys, task prefix first. */
typedef sl_err_t (*sl_merge_change_fn)(void *opaque, const uint8_t *key, size_t klen,
                                       const uint8_t *val, size_t vlen);

/* A task whose batch is merged: its id and the watermark its windows close with. */
typedef struct sl_merge_task {
    int task;
    int64_t wm; /* window.h; SL_WM_NONE without one */
} sl_merge_task_t;

typedef struct sl_merge {
    const sl_plan_t *c;    /* the query (borrowed) */
    const char *state_dir; /* for messages (borrowed) */
    /* The result rows of the last merge: nrows rows of c->ncols values, the task of each
     * in row_tasks; strings live in the batch table's arena until it is cleared. */
    sl_val_t *rows;
    uint16_t *row_tasks;
    size_t nrows, cap;
    uint64_t closed; /* windows the last merge closed */
    sl_merge_change_fn on_change; /* called for every state key written or deleted */
    void *change_opaque;
    /* while merging */
    sl_store_t *store;
    sl_store_batch_t *wb;
    sl_table_t *batch;
    const sl_merge_task_t *tasks; /* the tasks of the batch, by ascending id */
    int ntasks;
    int task_hint;      /* the index in tasks of the last one looked up */
    sl_table_t handled; /* state keys this merge wrote or deleted */
    sl_err_t err;       /* an error inside a scan callback */
    char why[768];      /* what overflowed (SL_ERR_OVERFLOW) */
} sl_merge_t;

/** 1 when windows close (a watermark, not complete mode) and the expiry index is kept. */
int sl__merge_closing(const sl_plan_t *plan);

/** @p plan and @p state_dir are borrowed for the merge's life. */
sl_err_t sl__merge_init(sl_merge_t *m, const sl_plan_t *plan, const char *state_dir);
void sl__merge_fini(sl_merge_t *m);

/**
 * Merges @p batch into the state through @p wb (not written here) and collects the
 * result rows in @p m. The batch's keys start with their task (layout.h); @p tasks
 * (@p ntasks, by ascending id) are the tasks it commits, each with the watermark after
 * this batch (window.h), which closes its windows. Every key of the batch belongs to one
 * of them.
 */
sl_err_t sl__merge_batch(sl_merge_t *m, sl_store_t *st, sl_store_batch_t *wb, sl_table_t *batch,
                         const sl_merge_task_t *tasks, int ntasks, char *errstr,
                         size_t errstr_size);

#endif
