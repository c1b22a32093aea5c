/*
 * restore.h - changelog records written into a task's part of the store, in bulk.
 *
 * Records come in changelog order and are gathered into chunks: within a chunk the last
 * record of a key wins, the chunk's keys are written in the store's order, and the expiry
 * index follows the windows' ends (the stored values the chunk replaces are read with one
 * MultiGet, so an index entry of an end that moved or of a deleted window goes). A chunk
 * that brings a task's state up to date is one unsynced WriteBatch; one that rebuilds it
 * whole (bulk: the task's part of the store was wiped, synced, before) is a table file
 * per family, ingested (store.h): the memtable's skip list cost more than reading the
 * changelog. The caller writes the task's meta, synced, once every
 * record is in: a crash before leaves the task as it was before the restore began, or
 * partly restored but without the meta that would say so, and the next start restores
 * it again.
 */
#ifndef SL_RESTORE_H
#define SL_RESTORE_H

#include "store.h"
#include "util.h"

typedef struct sl_restore_rec {
    uint64_t hash;
    size_t koff, klen; /* the state key (task prefix first) in keys */
    size_t voff, vlen; /* the value in vals */
    int tomb;
} sl_restore_rec_t;

typedef struct sl_restore {
    sl_store_t *st;
    int task;
    int windowed; /* values start with their window's end */
    int closing;  /* the expiry index is kept */
    int bulk;     /* chunks are ingested as table files (set before the first record) */
    size_t chunk_records; /* records a chunk gathers; 0: the default of its kind */
    sl_store_batch_t *wb;
    sl_restore_rec_t *recs; /* the chunk's records, one a key */
    size_t n, cap;
    size_t *slots; /* open addressing over recs: index + 1, 0 empty */
    size_t nslots;
    sl_buf_t keys, vals, tmp;
    sl_buf_t ix;                 /* bulk: the chunk's expiry index keys, */
    struct sl_restore_ix *ixs;   /* where each is in ix, and whether it goes or comes */
    size_t nix, ixcap;
    uint64_t records, puts, deletes; /* applied so far */
} sl_restore_t;

/** Prepares the restore of @p task into @p st. */
sl_err_t sl__restore_init(sl_restore_t *r, sl_store_t *st, int task, int windowed, int closing);
/** Adds one changelog state record: @p key is the state key without its task prefix,
 *  @p val NULL a deletion. May apply the chunk (errors as sl__restore_flush()). */
sl_err_t sl__restore_record(sl_restore_t *r, const uint8_t *key, size_t klen, const uint8_t *val,
                            size_t vlen, char *errstr, size_t errstr_size);
/** Writes the records gathered so far (unsynced). */
sl_err_t sl__restore_flush(sl_restore_t *r, char *errstr, size_t errstr_size);
void sl__restore_fini(sl_restore_t *r);

/** Adds to @p wb the deletion of everything @p task keeps in @p st: aggregates, expiry
 *  index, outbox and meta. */
void sl__restore_wipe_put(sl_store_t *st, sl_store_batch_t *wb, int task);

#endif
