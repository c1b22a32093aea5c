/*
 * store.c - the RocksDB store behind store.h, through RocksDB's C API.
 *
 * Options: 32 MiB memtables, 64 MiB for all families together, level compaction, no
 * compression, and RocksDB's own info log (the LOG file in the state directory) limited
 * to fatal errors: Debian's RocksDB 7.8 C API offers no logging callback to route it
 * into sl_log, and see the note at the log level.
 *
 * Recovery: paranoid checks on, and the write-ahead log replayed with
 * kTolerateCorruptedTailRecords: a record cut short at the log's end (a power cut in the
 * middle of an unsynced write: the outbox deletes are not synced) is dropped, any other
 * damage (a flipped byte anywhere in the log) fails the open. A log cut short in the
 * middle of synced batches opens behind what SLUICE_STATE records, and the job refuses it
 * (store_dir.c).
 */
#include "store.h"

#include <errno.h>
#include <rocksdb/c.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <dirent.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store_dir.h"
#include "util.h"

/* In the order of sl_cf_t; the last three are layout 1's, opened only where they exist
 * (layout.h). */
static const char *const cf_names[] = {"task_agg", "meta", "task_outbox", "task_expiry",
                                       "agg",      "outbox", "expiry"};
#define NCF 7
#define NCF_NEW 4 /* the families this sluice creates */

struct sl_store {
    rocksdb_t *db;
    rocksdb_options_t *opts;
    rocksdb_options_t *agg_opts; /* opts, with a memtable bloom filter */
    rocksdb_cache_t *cache;
    rocksdb_column_family_handle_t *cf[NCF + 1]; /* [NCF] is "default" */
    rocksdb_readoptions_t *ropts;
    rocksdb_writeoptions_t *wsync;
    rocksdb_writeoptions_t *wnosync;
    char *dir;
    int read_only;
    int broken;    /* a write failed: the database is abandoned, not closed */
    atomic_int agg_empty; /* the aggregates' family holds no key (seen at open, until a put;
                           * a task's restore puts beside the commit thread's reads) */
    int claimed;   /* noted as open in this process (store_dir.c) */
    int64_t marked; /* the batch SLUICE_STATE names; -1 none */
    int marker_fd;  /* SLUICE_STATE, open for rewriting; -1 until the first mark */
    atomic_uint ssts; /* table files made for ingestion, for their names */
};

struct sl_store_sst {
    sl_store_t *s;
    sl_cf_t cf;
    rocksdb_envoptions_t *env;
    rocksdb_sstfilewriter_t *w;
    uint64_t keys;
    char path[];
};

struct sl_store_batch {
    rocksdb_writebatch_t *wb;
};

/* RocksDB counts into a thread-local perf context on every key comparison by default;
 * from a shared library each such access is a __tls_get_addr call (8% of a job's
 * instructions with 100,000 keys under callgrind). The level is per thread, and
 * setting it is one store: each read and write sets it on its own thread. */
static void no_perf_counts(void)
{
    rocksdb_set_perf_level(1 /* kDisable */);
}

static void set_err(char *errstr, size_t errstr_size, const char *what, const char *dir, char *rerr)
{
    snprintf(errstr, errstr_size, "state %s: %s: %s", dir, what, rerr ? rerr : "unknown error");
    rocksdb_free(rerr);
}

/* The folder of the files being built for ingestion, emptied of what a crash left. */
#define INGEST_DIR "ingest"

static void clear_ingest(const char *dir)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/" INGEST_DIR, dir);
    DIR *d = opendir(path);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        char f[4096 + 256];
        if (e->d_name[0] == '.')
            continue;
        snprintf(f, sizeof(f), "%s/%s", path, e->d_name);
        unlink(f);
    }
    if (d)
        closedir(d);
}

sl_err_t sl__store_open(const char *dir, int create, int read_only, sl_store_t **out, char *errstr,
                        size_t errstr_size)
{
    *out = NULL;
    struct stat st;
    if (stat(dir, &st) != 0) {
        if (!create || errno != ENOENT) {
            snprintf(errstr, errstr_size, "state %s: %s", dir,
                     errno == ENOENT ? "no such directory" : strerror(errno));
            return errno == ENOENT ? SL_ERR_NOTFOUND : SL_ERR_IO;
        }
    } else if (!S_ISDIR(st.st_mode)) {
        snprintf(errstr, errstr_size, "state %s: not a directory", dir);
        return SL_ERR_IO;
    }
    sl_store_t *s = calloc(1, sizeof(*s));
    if (!s || !(s->dir = strdup(dir))) {
        free(s);
        snprintf(errstr, errstr_size, "out of memory");
        return SL_ERR_NOMEM;
    }
    s->marker_fd = -1;
    sl_err_t e;
    if (!read_only && ((e = sl__store_check_free(dir, errstr, errstr_size)) ||
                       (e = sl__store_dir_claim(dir, errstr, errstr_size)))) {
        sl__store_close(s);
        return e;
    }
    s->claimed = !read_only;
    if ((e = sl__store_dir_check(dir, read_only, &s->marked, errstr, errstr_size))) {
        sl__store_close(s);
        return e;
    }
    if (!read_only)
        clear_ingest(dir);
    s->opts = rocksdb_options_create();
    rocksdb_options_set_create_if_missing(s->opts, create);
    rocksdb_options_set_create_missing_column_families(s->opts, create);
    rocksdb_options_set_paranoid_checks(s->opts, 1);
    rocksdb_options_set_wal_recovery_mode(s->opts, 0 /* kTolerateCorruptedTailRecords */);
    /* Memtables of 32 MiB, and all families' together at most 64 MiB (past it the largest
     * is flushed), which keeps a job with millions of keys within its memory. Larger ones
     * (64 and 128 MiB) were no faster: the write-ahead log's bound below flushes them
     * before they fill when a batch writes many keys. */
    rocksdb_options_set_write_buffer_size(s->opts, 32u << 20);
    rocksdb_options_set_db_write_buffer_size(s->opts, 64u << 20);
    /* The families share one write-ahead log, and a log file is kept until every family
     * with data in it has flushed; "meta" takes a few positions a batch and would hardly
     * ever flush, so the log (every aggregate and outbox row written) would grow without
     * end and a restart after a crash would replay all of it (measured: 27 s with 10 M
     * keys). Past this size RocksDB flushes the families holding the oldest log. */
    rocksdb_options_set_max_total_wal_size(s->opts, 64u << 20);
    /* FATAL only: after a write fails on a full disk, RocksDB 7.8 (built with assertions,
     * as Debian's is) aborts in its LOG writer the next time it logs, and it logs while
     * handling that very error. Our own messages say what failed. */
    rocksdb_options_set_info_log_level(s->opts, 4 /* FATAL */);
    rocksdb_options_set_keep_log_file_num(s->opts, 3);
    rocksdb_options_increase_parallelism(s->opts, 2);
    /* Bloom filters: each batch asks for every key it touched, and with many new keys most
     * are in no file; 10 bits a key answer that without reading the file's blocks. The
     * block cache holds what the batches read back: 32 MiB, since with millions of keys
     * in the state it fills whatever its size (64 MiB held 27 MB more) and a larger one
     * hardly sped reads up (256 MiB: 10%); the files stay in the page cache. */
    rocksdb_block_based_table_options_t *bbo = rocksdb_block_based_options_create();
    rocksdb_block_based_options_set_filter_policy(bbo, rocksdb_filterpolicy_create_bloom_full(10));
    s->cache = rocksdb_cache_create_lru(32u << 20);
    rocksdb_block_based_options_set_block_cache(bbo, s->cache);
    rocksdb_options_set_block_based_table_factory(s->opts, bbo);
    rocksdb_block_based_options_destroy(bbo);
    /* No compression: with millions of keys most reads of stored aggregates miss the
     * block cache, and each decompressed a block (Snappy, RocksDB's default), as flushes
     * and compactions compressed them, on the same two cores as the job: 10,000,000 pages
     * ran 7% faster without, for about a third more disk. */
    rocksdb_options_set_compression(s->opts, rocksdb_no_compression);
    /* The aggregates' memtable gets a bloom filter too (about 10 bits a key of a full
     * memtable), so the MultiGet skips its skip list for keys it does not hold; the other
     * families are not read by key while running and do without its memory. */
    s->agg_opts = rocksdb_options_create_copy(s->opts);
    rocksdb_options_set_memtable_prefix_bloom_size_ratio(s->agg_opts, 0.02);
    rocksdb_options_set_memtable_whole_key_filtering(s->agg_opts, 1);

    /* The families the store has: this sluice's (created when missing, unless read-only)
     * and layout 1's where they exist. A new directory has none yet. */
    int want[NCF + 1] = {0};
    char *rerr = NULL;
    size_t nexist = 0;
    char **exist = rocksdb_list_column_families(s->opts, dir, &nexist, &rerr);
    rocksdb_free(rerr);
    rerr = NULL;
    for (int i = 0; i < NCF; i++) {
        want[i] = i < NCF_NEW && !read_only;
        for (size_t j = 0; exist && j < nexist; j++)
            want[i] |= !strcmp(exist[j], cf_names[i]);
    }
    if (exist)
        rocksdb_list_column_families_destroy(exist, nexist);
    const char *names[NCF + 1];
    const rocksdb_options_t *cfopts[NCF + 1];
    rocksdb_column_family_handle_t *handles[NCF + 1];
    int idx[NCF + 1], nopen = 0;
    for (int i = 0; i < NCF; i++) {
        if (!want[i])
            continue;
        idx[nopen] = i;
        names[nopen] = cf_names[i];
        cfopts[nopen++] = i == SL_CF_AGG || i == SL_CF_LEGACY_AGG ? s->agg_opts : s->opts;
    }
    idx[nopen] = NCF;
    names[nopen] = "default";
    cfopts[nopen++] = s->opts;
    s->read_only = read_only;
    if (read_only) {
        s->db = rocksdb_open_for_read_only_column_families(s->opts, dir, nopen, names, cfopts,
                                                           handles, 0, &rerr);
    } else {
        s->db = rocksdb_open_column_families(s->opts, dir, nopen, names, cfopts, handles, &rerr);
    }
    for (int i = 0; s->db && i < nopen; i++)
        s->cf[idx[i]] = handles[i];
    if (!s->db) {
        if (rerr && (strstr(rerr, "Corruption") || strstr(rerr, "corrupt"))) {
            snprintf(errstr, errstr_size,
                     "state %s is damaged: RocksDB cannot open it: %s. Restore the directory "
                     "from a backup; or, to start over, move it aside: the job then reads its "
                     "input again from the start and publishes every row again",
                     dir, rerr);
            rocksdb_free(rerr);
        } else {
            set_err(errstr, errstr_size, "cannot open the state store", dir, rerr);
        }
        sl__store_close(s);
        return SL_ERR_STATE;
    }
    s->ropts = rocksdb_readoptions_create();
    s->agg_empty = 1;
    if (s->cf[SL_CF_AGG]) {
        rocksdb_iterator_t *it = rocksdb_create_iterator_cf(s->db, s->ropts, s->cf[SL_CF_AGG]);
        rocksdb_iter_seek_to_first(it);
        s->agg_empty = !rocksdb_iter_valid(it);
        rocksdb_iter_destroy(it);
    }
    s->wsync = rocksdb_writeoptions_create();
    rocksdb_writeoptions_set_sync(s->wsync, 1);
    s->wnosync = rocksdb_writeoptions_create();
    *out = s;
    return SL_OK;
}

void sl__store_close(sl_store_t *s)
{
    if (!s)
        return;
    /* A clean stop leaves nothing to replay: the next start opens at once. */
    if (s->db && !s->broken && !s->read_only) {
        rocksdb_flushoptions_t *fo = rocksdb_flushoptions_create();
        for (int i = 0; i < NCF; i++) {
            char *rerr = NULL;
            if (s->cf[i])
                rocksdb_flush_cf(s->db, fo, s->cf[i], &rerr);
            rocksdb_free(rerr);
        }
        rocksdb_flushoptions_destroy(fo);
    }
    for (int i = 0; i <= NCF; i++) {
        if (s->cf[i])
            rocksdb_column_family_handle_destroy(s->cf[i]);
    }
    /* After a failed write (a full disk), Debian's RocksDB 7.8, built with assertions,
     * aborts the process in the WAL writer when the database is closed. The process is
     * about to report the error; what was committed before is on disk, so the handle is
     * left open rather than closed. */
    if (s->db && !s->broken)
        rocksdb_close(s->db);
    if (s->opts)
        rocksdb_options_destroy(s->opts);
    if (s->agg_opts)
        rocksdb_options_destroy(s->agg_opts);
    if (s->cache)
        rocksdb_cache_destroy(s->cache);
    if (s->ropts)
        rocksdb_readoptions_destroy(s->ropts);
    if (s->wsync)
        rocksdb_writeoptions_destroy(s->wsync);
    if (s->wnosync)
        rocksdb_writeoptions_destroy(s->wnosync);
    if (s->marker_fd >= 0)
        close(s->marker_fd);
    if (s->claimed)
        sl__store_dir_release(s->dir);
    free(s->dir);
    free(s);
}

int sl__store_has_legacy(const sl_store_t *s)
{
    return s->cf[SL_CF_LEGACY_AGG] || s->cf[SL_CF_LEGACY_OUTBOX] || s->cf[SL_CF_LEGACY_EXPIRY];
}

sl_err_t sl__store_drop_legacy(sl_store_t *s, char *errstr, size_t errstr_size)
{
    for (int i = SL_CF_LEGACY_AGG; i <= SL_CF_LEGACY_EXPIRY; i++) {
        if (!s->cf[i])
            continue;
        char *rerr = NULL;
        rocksdb_drop_column_family(s->db, s->cf[i], &rerr);
        if (rerr) {
            set_err(errstr, errstr_size, "cannot drop an upgraded column family", s->dir, rerr);
            return SL_ERR_STATE;
        }
        rocksdb_column_family_handle_destroy(s->cf[i]);
        s->cf[i] = NULL;
    }
    return SL_OK;
}

int64_t sl__store_marked(const sl_store_t *s)
{
    return s->marked;
}

sl_err_t sl__store_mark(sl_store_t *s, int64_t seq, char *errstr, size_t errstr_size)
{
    sl_err_t e = sl__store_dir_mark(&s->marker_fd, s->dir, seq, errstr, errstr_size);
    if (!e)
        s->marked = seq;
    return e;
}

sl_err_t sl__store_get(sl_store_t *s, sl_cf_t cf, const void *key, size_t klen, char **val,
                       size_t *vlen, char *errstr, size_t errstr_size)
{
    char *rerr = NULL;
    size_t n = 0;
    if (!s->cf[cf])
        return SL_ERR_NOTFOUND; /* a family this store does not have: read-only, layout 1 */
    char *v = rocksdb_get_cf(s->db, s->ropts, s->cf[cf], key, klen, &n, &rerr);
    if (rerr) {
        set_err(errstr, errstr_size, "read failed", s->dir, rerr);
        return SL_ERR_STATE;
    }
    if (!v)
        return SL_ERR_NOTFOUND;
    *val = malloc(n + 1);
    if (!*val) {
        rocksdb_free(v);
        return SL_ERR_NOMEM;
    }
    memcpy(*val, v, n);
    (*val)[n] = 0;
    *vlen = n;
    rocksdb_free(v);
    return SL_OK;
}

/* The values of a MultiGet, copied out of RocksDB chunk by chunk: holding every found
 * value pinned until the batch's merge was done kept a data block in the block cache for
 * each (4 KiB for a value of 40 bytes) beyond the cache's capacity, with millions of keys
 * the largest part of a batch's memory. */
struct sl_store_vals {
    char *buf;
};

/* Keys a MultiGet call asks for: RocksDB looks keys up 32 at a time whatever the call's
 * size, but the C API and DBImpl::MultiGet build arrays of the whole call first (a slice,
 * a value, a status and a lookup context a key, the last in a vector grown by doubling),
 * which for a batch of 200,000 keys were some 40 MB allocated, faulted in and copied
 * each time. */
#define MULTIGET_CHUNK 1024

sl_err_t sl__store_multiget(sl_store_t *s, size_t n, const char *const *keys, const size_t *klens,
                            int sorted, sl_store_vals_t **pins, const char **vals, size_t *vlens,
                            char *errstr, size_t errstr_size)
{
    *pins = NULL;
    if (n == 0)
        return SL_OK;
    memset(vals, 0, n * sizeof(*vals));
    memset(vlens, 0, n * sizeof(*vlens));
    if (atomic_load_explicit(&s->agg_empty, memory_order_relaxed)) /* nothing to read */
        return SL_OK;
    size_t chunk = n < MULTIGET_CHUNK ? n : MULTIGET_CHUNK;
    sl_store_vals_t *p = calloc(1, sizeof(*p));
    rocksdb_pinnableslice_t **ps = calloc(chunk, sizeof(*ps));
    char **errs = calloc(chunk, sizeof(*errs));
    sl_buf_t buf;
    sl__buf_init(&buf);
    *pins = p;
    /* Room from the start: an empty value still gets a place (vals NULL means missing). */
    sl_err_t err = p && ps && errs && !sl__buf_reserve(&buf, 4096) ? SL_OK : SL_ERR_NOMEM;
    no_perf_counts();
    /* The copies' offsets go in vals until the buffer stops moving. */
    for (size_t at = 0; at < n && err != SL_ERR_NOMEM; at += chunk) {
        size_t m = n - at < chunk ? n - at : chunk;
        rocksdb_batched_multi_get_cf(s->db, s->ropts, s->cf[SL_CF_AGG], m, keys + at, klens + at,
                                     ps, errs, sorted != 0);
        for (size_t j = 0; j < m; j++) {
            if (errs[j]) {
                if (err == SL_OK)
                    set_err(errstr, errstr_size, "read failed", s->dir, errs[j]);
                else
                    rocksdb_free(errs[j]);
                errs[j] = NULL;
                err = SL_ERR_STATE;
            } else if (ps[j]) {
                size_t vl;
                const char *v = rocksdb_pinnableslice_value(ps[j], &vl);
                vals[at + j] = (const char *)(uintptr_t)(buf.len + 1); /* offset + 1 */
                vlens[at + j] = vl;
                if (sl__buf_append(&buf, v, vl) != SL_OK && err == SL_OK)
                    err = SL_ERR_NOMEM;
                rocksdb_pinnableslice_destroy(ps[j]);
                ps[j] = NULL;
            }
        }
    }
    if (err == SL_ERR_NOMEM)
        snprintf(errstr, errstr_size, "out of memory");
    for (size_t i = 0; i < n; i++)
        vals[i] = err || !vals[i] ? NULL : (const char *)buf.p + ((uintptr_t)vals[i] - 1);
    free(ps);
    free(errs);
    if (p)
        p->buf = (char *)buf.p;
    else
        sl__buf_fini(&buf);
    return err;
}

void sl__store_vals_release(sl_store_vals_t *p)
{
    if (!p)
        return;
    free(p->buf);
    free(p);
}

sl_err_t sl__store_scan(sl_store_t *s, sl_cf_t cf, const void *prefix, size_t plen,
                        int (*fn)(void *opaque, const char *k, size_t klen, const char *v,
                                  size_t vlen),
                        void *opaque, char *errstr, size_t errstr_size)
{
    if (!s->cf[cf])
        return SL_OK; /* a family this store does not have: read-only, layout 1 */
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(s->db, s->ropts, s->cf[cf]);
    if (plen)
        rocksdb_iter_seek(it, prefix, plen);
    else
        rocksdb_iter_seek_to_first(it);
    for (; rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t kl, vl;
        const char *k = rocksdb_iter_key(it, &kl);
        if (plen && (kl < plen || memcmp(k, prefix, plen) != 0))
            break;
        const char *v = rocksdb_iter_value(it, &vl);
        if (fn(opaque, k, kl, v, vl))
            break;
    }
    char *rerr = NULL;
    rocksdb_iter_get_error(it, &rerr);
    rocksdb_iter_destroy(it);
    if (rerr) {
        set_err(errstr, errstr_size, "scan failed", s->dir, rerr);
        return SL_ERR_STATE;
    }
    return SL_OK;
}

sl_store_batch_t *sl__store_batch_new(void)
{
    sl_store_batch_t *b = calloc(1, sizeof(*b));
    if (b)
        b->wb = rocksdb_writebatch_create();
    return b;
}

void sl__store_batch_destroy(sl_store_batch_t *b)
{
    if (!b)
        return;
    rocksdb_writebatch_destroy(b->wb);
    free(b);
}

void sl__store_batch_put(sl_store_batch_t *b, sl_store_t *s, sl_cf_t cf, const void *k, size_t klen,
                         const void *v, size_t vlen)
{
    if (cf == SL_CF_AGG) /* from now on reads ask RocksDB, written or not */
        atomic_store_explicit(&s->agg_empty, 0, memory_order_relaxed);
    rocksdb_writebatch_put_cf(b->wb, s->cf[cf], k, klen, v, vlen);
}

void sl__store_batch_delete_range(sl_store_batch_t *b, sl_store_t *s, sl_cf_t cf, const void *from,
                                  size_t flen, const void *to, size_t tlen)
{
    rocksdb_writebatch_delete_range_cf(b->wb, s->cf[cf], from, flen, to, tlen);
}

void sl__store_batch_delete(sl_store_batch_t *b, sl_store_t *s, sl_cf_t cf, const void *k,
                            size_t klen)
{
    rocksdb_writebatch_delete_cf(b->wb, s->cf[cf], k, klen);
}

size_t sl__store_batch_count(const sl_store_batch_t *b)
{
    return (size_t)rocksdb_writebatch_count(b->wb);
}

sl_err_t sl__store_write(sl_store_t *s, sl_store_batch_t *b, int sync, char *errstr,
                         size_t errstr_size)
{
    char *rerr = NULL;
    if (s->broken) {
        snprintf(errstr, errstr_size, "state %s: an earlier write failed", s->dir);
        return SL_ERR_STATE;
    }
    no_perf_counts();
    rocksdb_write(s->db, sync ? s->wsync : s->wnosync, b->wb, &rerr);
    if (rerr) {
        s->broken = 1;
        set_err(errstr, errstr_size, "write failed", s->dir, rerr);
        return SL_ERR_STATE;
    }
    rocksdb_writebatch_clear(b->wb);
    return SL_OK;
}

sl_err_t sl__store_sst_new(sl_store_t *s, sl_cf_t cf, sl_store_sst_t **out, char *errstr,
                           size_t errstr_size)
{
    *out = NULL;
    size_t plen = strlen(s->dir) + sizeof(INGEST_DIR) + 48;
    sl_store_sst_t *f = calloc(1, sizeof(*f) + plen);
    if (!f) {
        snprintf(errstr, errstr_size, "out of memory");
        return SL_ERR_NOMEM;
    }
    f->s = s;
    f->cf = cf;
    snprintf(f->path, plen, "%s/" INGEST_DIR, s->dir);
    if (mkdir(f->path, 0755) != 0 && errno != EEXIST) {
        snprintf(errstr, errstr_size, "state %s: cannot make %s: %s", s->dir, f->path,
                 strerror(errno));
        free(f);
        return SL_ERR_IO;
    }
    snprintf(f->path, plen, "%s/" INGEST_DIR "/%d-%u.sst", s->dir, (int)cf,
             atomic_fetch_add(&s->ssts, 1));
    f->env = rocksdb_envoptions_create();
    f->w = rocksdb_sstfilewriter_create(f->env, cf == SL_CF_AGG ? s->agg_opts : s->opts);
    char *rerr = NULL;
    rocksdb_sstfilewriter_open(f->w, f->path, &rerr);
    if (rerr) {
        set_err(errstr, errstr_size, "cannot make a table file to ingest", s->dir, rerr);
        sl__store_sst_discard(f);
        return SL_ERR_IO;
    }
    *out = f;
    return SL_OK;
}

sl_err_t sl__store_sst_put(sl_store_sst_t *f, const void *k, size_t klen, const void *v,
                           size_t vlen, char *errstr, size_t errstr_size)
{
    char *rerr = NULL;
    if (v)
        rocksdb_sstfilewriter_put(f->w, k, klen, v, vlen, &rerr);
    else
        rocksdb_sstfilewriter_delete(f->w, k, klen, &rerr);
    if (rerr) {
        set_err(errstr, errstr_size, "cannot write a table file to ingest", f->s->dir, rerr);
        return SL_ERR_IO;
    }
    f->keys++;
    return SL_OK;
}

sl_err_t sl__store_sst_ingest(sl_store_sst_t *f, char *errstr, size_t errstr_size)
{
    sl_store_t *s = f->s;
    char *rerr = NULL;
    if (f->keys == 0) {
        sl__store_sst_discard(f);
        return SL_OK;
    }
    rocksdb_sstfilewriter_finish(f->w, &rerr);
    if (rerr) {
        set_err(errstr, errstr_size, "cannot finish a table file to ingest", s->dir, rerr);
        sl__store_sst_discard(f);
        return SL_ERR_IO;
    }
    if (s->broken) {
        snprintf(errstr, errstr_size, "state %s: an earlier write failed", s->dir);
        sl__store_sst_discard(f);
        return SL_ERR_STATE;
    }
    /* Moved (linked) into the store, not copied: the file is RocksDB's from here on. */
    rocksdb_ingestexternalfileoptions_t *io = rocksdb_ingestexternalfileoptions_create();
    rocksdb_ingestexternalfileoptions_set_move_files(io, 1);
    const char *files[1] = {f->path};
    no_perf_counts();
    rocksdb_ingest_external_file_cf(s->db, s->cf[f->cf], files, 1, io, &rerr);
    rocksdb_ingestexternalfileoptions_destroy(io);
    sl_err_t e = SL_OK;
    if (rerr) {
        set_err(errstr, errstr_size, "cannot ingest a table file", s->dir, rerr);
        e = SL_ERR_STATE;
    } else if (f->cf == SL_CF_AGG) {
        atomic_store_explicit(&s->agg_empty, 0, memory_order_relaxed);
    }
    sl__store_sst_discard(f);
    return e;
}

void sl__store_sst_discard(sl_store_sst_t *f)
{
    if (!f)
        return;
    if (f->w)
        rocksdb_sstfilewriter_destroy(f->w);
    if (f->env)
        rocksdb_envoptions_destroy(f->env);
    unlink(f->path); /* ingested: RocksDB removed its link already */
    free(f);
}
