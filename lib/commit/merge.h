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

typedef struct sl_merge {
    const sl_plan_t *c;    /* the query (borrowed) */
    const char *state_dir; /* for messages (borrowed) */
    /* The result rows of the last merge: nrows rows of c->ncols values; strings live in
     * the batch table's arena until it is cleared. */
    sl_val_t *rows;
    size_t nrows, cap;
    uint64_t closed; /* windows the last merge closed */
    /* while merging */
    sl_store_t *store;
    sl_store_batch_t *wb;
    sl_table_t *batch;
    int64_t wm;         /* the watermark this batch closes windows with */
    sl_table_t handled; /* state keys this merge wrote or deleted */
    sl_err_t err;       /* an error inside a scan callback */
    char why[768];      /* what overflowed (SL_ERR_OVERFLOW) */
} sl_merge_t;

/** @p plan and @p state_dir are borrowed for the merge's life. */
sl_err_t sl__merge_init(sl_merge_t *m, const sl_plan_t *plan, const char *state_dir);
void sl__merge_fini(sl_merge_t *m);

/**
 * Merges @p batch into the state through @p wb (not written here) and collects the
 * result rows in @p m. @p wm is the watermark after this batch (window.h), which closes
 * windows; SL_WM_NONE without one.
 */
sl_err_t sl__merge_batch(sl_merge_t *m, sl_store_t *st, sl_store_batch_t *wb, sl_table_t *batch,
                         int64_t wm, char *errstr, size_t errstr_size);

#endif
