/*
 * store.h - the RocksDB state store of one job.
 *
 * Four column families, keyed per task as layout.h says: "task_agg" holds the
 * aggregates by group key, "meta" what a batch commits beside them (source positions,
 * batch sequences, watermarks, the job fingerprint), "task_outbox" the records of a
 * committed batch that are not yet known to be published (result rows, changelog
 * records), "task_expiry" an index of open windows by their end, so the windows a
 * watermark closes are found without reading every aggregate. Everything a batch
 * changes goes into one WriteBatch, written with sync, so a crash leaves either all of a
 * batch or none of it.
 *
 * Beside RocksDB's files the directory holds SLUICE_STATE, which records the last batch
 * committed there, outside RocksDB: a write-ahead log or MANIFEST that was damaged or
 * replaced can make RocksDB open fine but empty or behind, and the job must refuse that
 * rather than start over and publish everything again (see sl__store_marked()).
 */
#ifndef SL_STORE_H
#define SL_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

typedef struct sl_store sl_store_t;
typedef struct sl_store_batch sl_store_batch_t;

/* The families, keyed as layout.h says. The LEGACY ones are layout 1's, which a store
 * written by an earlier sluice has until it is upgraded. */
typedef enum {
    SL_CF_AGG = 0,
    SL_CF_META = 1,
    SL_CF_OUTBOX = 2,
    SL_CF_EXPIRY = 3,
    SL_CF_LEGACY_AGG = 4,
    SL_CF_LEGACY_OUTBOX = 5,
    SL_CF_LEGACY_EXPIRY = 6
} sl_cf_t;

/**
 * Opens (with @p create, creating) the store in @p dir. @p read_only opens without a
 * lock, for inspection beside a running job. A directory that holds part of a store (no
 * CURRENT file beside RocksDB's other files or SLUICE_STATE), or whose files RocksDB finds
 * corrupt, is refused with SL_ERR_STATE and a message naming it and what to do; so is one
 * another process has open (SL_ERR_STATE, naming the process).
 */
sl_err_t sl__store_open(const char *dir, int create, int read_only, sl_store_t **out, char *errstr,
                        size_t errstr_size);
void sl__store_close(sl_store_t *s);

/**
 * Checks, without opening it, that no other process has the store in @p dir open (a
 * directory that does not exist yet is free). SL_ERR_STATE naming the process when one
 * has, so that a second start is refused before it touches Kafka.
 */
sl_err_t sl__store_check_free(const char *dir, char *errstr, size_t errstr_size);

/** 1 when the store has layout 1's families (written by an earlier sluice). */
int sl__store_has_legacy(const sl_store_t *s);
/** Drops layout 1's families, once their content is upgraded. */
sl_err_t sl__store_drop_legacy(sl_store_t *s, char *errstr, size_t errstr_size);

/** The last batch sequence SLUICE_STATE records as committed; -1 when the directory has
 *  none (a new store, or one written before it existed). */
int64_t sl__store_marked(const sl_store_t *s);
/** Records @p seq as committed in SLUICE_STATE (after the batch's synced write; not synced
 *  itself: a marker lost by a power cut can only lag, never run ahead). */
sl_err_t sl__store_mark(sl_store_t *s, int64_t seq, char *errstr, size_t errstr_size);

/**
 * Reads one value. On SL_OK *val is a heap copy the caller frees with free(); a missing
 * key is SL_ERR_NOTFOUND.
 */
sl_err_t sl__store_get(sl_store_t *s, sl_cf_t cf, const void *key, size_t klen, char **val,
                       size_t *vlen, char *errstr, size_t errstr_size);

/* The values of one sl__store_multiget(), copied out of RocksDB (a pinned value would hold
 * its whole data block in the block cache), until released. */
typedef struct sl_store_vals sl_store_vals_t;

/**
 * Reads @p n aggregates at once with RocksDB's batched MultiGet, which probes filters and
 * indexes for the whole batch. @p sorted: the keys are in ascending byte order (the store's
 * order), which spares it a sort. vals[i] is NULL for a missing key, else points at the
 * value. *pins (set even on error) keeps the values valid until sl__store_vals_release().
 * A store whose aggregates are empty (no key at open, nothing put since) answers
 * without asking RocksDB: a new job's first batch reads nothing.
 */
sl_err_t sl__store_multiget(sl_store_t *s, size_t n, const char *const *keys, const size_t *klens,
                            int sorted, sl_store_vals_t **pins, const char **vals, size_t *vlens,
                            char *errstr, size_t errstr_size);
/** Releases the values of one sl__store_multiget(); NULL is a no-op. */
void sl__store_vals_release(sl_store_vals_t *pins);

/** Calls @p fn for every key of @p cf that starts with @p prefix, in key order, until fn
 *  returns non-zero. */
sl_err_t sl__store_scan(sl_store_t *s, sl_cf_t cf, const void *prefix, size_t plen,
                        int (*fn)(void *opaque, const char *k, size_t klen, const char *v,
                                  size_t vlen),
                        void *opaque, char *errstr, size_t errstr_size);

sl_store_batch_t *sl__store_batch_new(void);
void sl__store_batch_destroy(sl_store_batch_t *b);
void sl__store_batch_put(sl_store_batch_t *b, sl_store_t *s, sl_cf_t cf, const void *k, size_t klen,
                         const void *v, size_t vlen);
void sl__store_batch_delete_range(sl_store_batch_t *b, sl_store_t *s, sl_cf_t cf, const void *from,
                                  size_t flen, const void *to, size_t tlen);
void sl__store_batch_delete(sl_store_batch_t *b, sl_store_t *s, sl_cf_t cf, const void *k,
                            size_t klen);
size_t sl__store_batch_count(const sl_store_batch_t *b);
/** Writes the batch atomically; @p sync waits until it is on disk. */
sl_err_t sl__store_write(sl_store_t *s, sl_store_batch_t *b, int sync, char *errstr,
                         size_t errstr_size);

/* A sorted run of one family's keys, written to a table file of its own and then
 * ingested whole: a bulk load that bypasses the memtable and the write-ahead log, for a
 * restore (inserting millions of keys into the memtable's skip list took most of a
 * restore's time). The file is built in the directory's "ingest" folder, which each open
 * empties of what a crash left there. */
typedef struct sl_store_sst sl_store_sst_t;

/** Starts a file of @p cf's keys. */
sl_err_t sl__store_sst_new(sl_store_t *s, sl_cf_t cf, sl_store_sst_t **out, char *errstr,
                           size_t errstr_size);
/** Adds a key (or with @p v NULL its deletion); keys in strictly ascending order. */
sl_err_t sl__store_sst_put(sl_store_sst_t *f, const void *k, size_t klen, const void *v,
                           size_t vlen, char *errstr, size_t errstr_size);
/** Finishes the file and ingests it (a file of no key is dropped): its keys supersede
 *  what the family held of them, as one write would. Ingestion is durable, unlike an
 *  unsynced write before it: sync what must precede it. Frees @p f, error or not. */
sl_err_t sl__store_sst_ingest(sl_store_sst_t *f, char *errstr, size_t errstr_size);
/** Drops an unfinished file; NULL is a no-op. */
void sl__store_sst_discard(sl_store_sst_t *f);

#endif
