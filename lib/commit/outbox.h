/*
 * outbox.h - the records a batch committed to the state but that are not yet known to
 * be in Kafka (or in a local sink).
 *
 * A batch writes, per task, what it will publish to the "task_outbox" family in the same
 * WriteBatch as its aggregates and positions: the result rows, the changelog records of
 * the state it changed and the marker that closes them (commit/changelog.h). Once the
 * task's Kafka transaction is committed they are deleted; a restart finds what a crash
 * left and publishes the batches Kafka does not have (see task.c). The local sinks' rows
 * (files, foreach) are a stream of their own, SL_STREAM_LOCAL, keyed by the store's batch.
 *
 * Records are stored in chunks: key stream (2 bytes), batch (8), the idx of the chunk's
 * first record (4) and 'c' (layout.h); value: per record its length (varint) and the
 * record: its destination (sl_dest_t, one byte), key length (varint), key, value.
 */
#ifndef SL_OUTBOX_H
#define SL_OUTBOX_H

#include "sink/sink.h"
#include "store.h"
#include "util.h"

/* Writes one batch's records of one stream into the outbox, in chunks of several. */
typedef struct sl_outbox_writer {
    sl_store_t *st;
    sl_store_batch_t *wb;
    int stream;
    int64_t seq;
    sl_buf_t *out;        /* the chunks, back to back */
    size_t chunk_start;   /* where the open chunk starts in out */
    uint32_t chunk_first; /* the idx of its first record */
    uint32_t n;           /* records added */
} sl_outbox_writer_t;

/** Starts batch @p seq of @p stream (a task, or SL_STREAM_LOCAL), its records to be kept
 *  (encoded) in @p out, which is emptied. */
void sl__outbox_begin(sl_outbox_writer_t *w, sl_store_t *st, sl_store_batch_t *wb, int stream,
                      int64_t seq, sl_buf_t *out);
/** Adds the next record (idx 0, 1, ...); its encoding is at @p *rec_off in out, @p *rec_len
 *  bytes, once every record is added (out may move until then). */
sl_err_t sl__outbox_add(sl_outbox_writer_t *w, sl_dest_t dest, const void *key, size_t klen,
                        const void *val, size_t vlen, size_t *rec_off, size_t *rec_len);
/** Puts the last chunk into the WriteBatch. */
void sl__outbox_end(sl_outbox_writer_t *w);

typedef int (*sl_outbox_fn)(void *opaque, int stream, int64_t seq, uint32_t idx,
                            const uint8_t *rec, size_t len);
/** Calls @p fn with every record of @p stream (-1: of every stream) in (stream, seq, idx)
 *  order, until it returns non-zero; SL_ERR_STATE when an entry is corrupt. */
sl_err_t sl__outbox_scan(sl_store_t *st, int stream, sl_outbox_fn fn, void *opaque, char *errstr,
                         size_t errstr_size);
/** Reads back an encoded record; -1 when malformed. Its seq and idx are left as they are. */
int sl__outbox_row(const uint8_t *p, size_t len, sl_out_row_t *row);
/** Adds to @p wb the deletion of @p stream's batches @p from_seq .. @p to_seq - 1. */
void sl__outbox_delete_put(sl_store_t *st, sl_store_batch_t *wb, int stream, int64_t from_seq,
                           int64_t to_seq);
/** The same, written at once (not synced: a lost delete only makes the next start look
 *  again). */
sl_err_t sl__outbox_delete(sl_store_t *st, sl_store_batch_t *wb, int stream, int64_t from_seq,
                           int64_t to_seq, char *errstr, size_t errstr_size);

/** Calls @p fn with every row of layout 1's outbox (stream 0), as sl__outbox_scan() does;
 *  the rows have no destination byte: read them with sl__outbox_row_legacy(). */
sl_err_t sl__outbox_scan_legacy(sl_store_t *st, sl_outbox_fn fn, void *opaque, char *errstr,
                                size_t errstr_size);
/** Reads back a row of layout 1's outbox (an output row); -1 when malformed. */
int sl__outbox_row_legacy(const uint8_t *p, size_t len, sl_out_row_t *row);

#endif
