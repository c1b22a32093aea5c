/*
 * reconcile.h - what a job without a changelog does with the rows its outbox holds at a
 * start: it reads its output topic (read_committed) from the offsets where its confirmed
 * records end, collects the ids of its own rows (the sluice-id header, or sluice-seq and
 * sluice-idx as sluice wrote them before tasks) and publishes only the rows it does not
 * find. With a changelog the markers tell which batches Kafka has instead (task.c).
 */
#ifndef SL_RECONCILE_H
#define SL_RECONCILE_H

#include "sink/sink.h"
#include "store.h"

/** Adds @p t's confirmed output offsets to @p wb (task meta "pub/<topic>/<partition>"). */
void sl__reconcile_put_published(sl_store_t *st, sl_store_batch_t *wb, const sl_txn_t *t);
/**
 * Publishes, of the @p n output rows @p rows (the outbox's, with their batch and index),
 * those the output topic lacks, through @p t, whose confirmed offsets it sets from what it
 * read. SL_ERR_FENCED when @p t cannot go on.
 */
sl_err_t sl__reconcile_output(sl_store_t *st, sl_txn_t *t, sl_out_row_t *rows, size_t n,
                              char *errstr, size_t errstr_size);

#endif
