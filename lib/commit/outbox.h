/*
 * outbox.h - result rows that a batch committed to the state but that are not yet known
 * to be in the output topic.
 *
 * A batch writes its rows to the "outbox" family in the same WriteBatch as its aggregates
 * and positions, then publishes them and deletes them. A restart finds what a crash left
 * there and reconciles: it reads the output topic (read_committed) from the offsets where
 * this job's confirmed records end, collects the (seq, idx) headers of its own records,
 * and publishes only the rows it does not find. Rows are stored in chunks: key seq (8
 * bytes, big-endian), the idx of the chunk's first row (4 bytes) and 'c'; value: per row
 * its length (varint) and the row: key length (varint), key, value. A 12-byte key without
 * the 'c' holds one row, unprefixed (what sluice wrote before chunks).
 */
#ifndef SL_OUTBOX_H
#define SL_OUTBOX_H

#include "sink/sink.h"
#include "store.h"
#include "util.h"

/* Writes one batch's rows into the outbox, in chunks of several rows per value. */
typedef struct sl_outbox_writer {
    sl_store_t *st;
    sl_store_batch_t *wb;
    int64_t seq;
    sl_buf_t *out;        /* the chunks, back to back */
    size_t chunk_start;   /* where the open chunk starts in out */
    uint32_t chunk_first; /* the idx of its first row */
    uint32_t n;           /* rows added */
} sl_outbox_writer_t;

/** Starts batch @p seq's rows, to be kept (encoded) in @p out, which is emptied. */
void sl__outbox_begin(sl_outbox_writer_t *w, sl_store_t *st, sl_store_batch_t *wb, int64_t seq,
                      sl_buf_t *out);
/** Adds the next row (idx 0, 1, ...); its encoding is at @p *row_off in out, @p *row_len
 *  bytes, once every row is added (out may move until then). */
sl_err_t sl__outbox_add(sl_outbox_writer_t *w, const sl_buf_t *key, const sl_buf_t *val,
                        size_t *row_off, size_t *row_len);
/** Puts the last chunk into the WriteBatch. */
void sl__outbox_end(sl_outbox_writer_t *w);
/** Calls @p fn with every row in the outbox, in (seq, idx) order, until it returns
 *  non-zero; SL_ERR_STATE when an entry is corrupt. */
sl_err_t sl__outbox_scan(sl_store_t *st,
                         int (*fn)(void *opaque, int64_t seq, uint32_t idx, const uint8_t *row,
                                   size_t len),
                         void *opaque, char *errstr, size_t errstr_size);
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
