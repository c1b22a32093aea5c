/*
 * outbox.h - result rows that a batch committed to the state but that are not yet known
 * to be in the output topic.
 *
 * A batch writes its rows to the "outbox" family in the same WriteBatch as its aggregates
 * and positions, then publishes them and deletes them. A restart finds what a crash left
 * there and reconciles: it reads the output topic (read_committed) from the offsets where
 * this job's confirmed records end, collects the (seq, idx) headers of its own records,
 * and publishes only the rows it does not find. Keys: seq (8 bytes, big-endian) then idx
 * (4 bytes); values: key length (varint), key, value.
 */
#ifndef SL_OUTBOX_H
#define SL_OUTBOX_H

#include "sink.h"
#include "store.h"
#include "util/util.h"

/** Adds row @p idx of batch @p seq to @p wb, keeping its encoding in @p out. */
sl_err_t sl__outbox_put(sl_store_t *st, sl_store_batch_t *wb, int64_t seq, uint32_t idx,
                        const sl_buf_t *key, const sl_buf_t *val, sl_buf_t *out);
/** Reads back an encoded row written by sl__outbox_put(); -1 when malformed. */
int sl__outbox_row(const uint8_t *p, size_t len, sl_out_row_t *row);
/** Deletes the outbox entries of batches @p from_seq .. @p to_seq - 1 (not synced: a
 *  lost delete only makes the next reconciliation look again). */
sl_err_t sl__outbox_delete(sl_store_t *st, sl_store_batch_t *wb, int64_t from_seq, int64_t to_seq,
                           char *errstr, size_t errstr_size);
/** Adds the sink's confirmed output offsets to @p wb ("pub/<topic>/<partition>"). */
void sl__outbox_put_published(sl_store_t *st, sl_store_batch_t *wb, const sl_sink_t *sink);
/**
 * Publishes what the outbox holds and the output topic lacks, then empties the outbox.
 * Also sets the sink's confirmed offsets from what it read.
 */
sl_err_t sl__outbox_reconcile(sl_store_t *st, sl_store_batch_t *wb, sl_sink_t *sink, char *errstr,
                              size_t errstr_size);

#endif
