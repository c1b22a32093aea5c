/*
 * test_state.c - the RocksDB store: atomic batches across families, reads, scans,
 * range deletes, and that what was written survives a reopen.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "commit/outbox.h"
#include "store.h"
#include "layout.h"
#include "tk.h"
#include "tk_state.h"

static char *dir;

static void setup(void)
{
    dir = tk_tmpdir("sluice-state");
}

static void teardown(void)
{
    tk_rmrf(dir);
    free(dir);
}

TestSuite(state, .init = setup, .fini = teardown);

static sl_store_t *open_store(const char *sub, int create, int ro)
{
    char path[512], err[512] = "";
    snprintf(path, sizeof(path), "%s/%s", dir, sub);
    sl_store_t *s = NULL;
    cr_assert_eq(sl__store_open(path, create, ro, &s, err, sizeof(err)), SL_OK, "%s", err);
    return s;
}

static int count_cb(void *opaque, const char *k, size_t kl, const char *v, size_t vl)
{
    (*(int *)opaque)++;
    return 0;
}

Test(state, batch_is_atomic_and_durable)
{
    sl_store_t *s = open_store("db", 1, 0);
    sl_store_batch_t *b = sl__store_batch_new();
    char err[512];
    sl__store_batch_put(b, s, SL_CF_AGG, "k1", 2, "v1", 2);
    sl__store_batch_put(b, s, SL_CF_AGG, "k2", 2, "v2", 2);
    sl__store_batch_put(b, s, SL_CF_META, "pos/t/0", 7, "12345678", 8);
    for (int i = 0; i < 5; i++) {
        uint8_t k[12] = {0};
        k[7] = 1;
        k[11] = (uint8_t)i;
        sl__store_batch_put(b, s, SL_CF_OUTBOX, k, 12, "row", 3);
    }
    cr_assert_eq(sl__store_batch_count(b), 8);
    cr_assert_eq(sl__store_write(s, b, 1, err, sizeof(err)), SL_OK, "%s", err);
    cr_assert_eq(sl__store_batch_count(b), 0, "a written batch is emptied");
    sl__store_close(s);

    s = open_store("db", 0, 0);
    char *v;
    size_t vl;
    cr_assert_eq(sl__store_get(s, SL_CF_META, "pos/t/0", 7, &v, &vl, err, sizeof(err)), SL_OK);
    cr_assert(vl == 8 && !memcmp(v, "12345678", 8));
    free(v);
    cr_assert_eq(sl__store_get(s, SL_CF_AGG, "pos/t/0", 7, &v, &vl, err, sizeof(err)),
                 SL_ERR_NOTFOUND, "families are separate");
    const char *keys[] = {"k2", "nope", "k1"};
    size_t klens[] = {2, 4, 2}, vlens[3];
    const char *vals[3];
    sl_store_vals_t *pins;
    cr_assert_eq(sl__store_multiget(s, 3, keys, klens, 0, &pins, vals, vlens, err, sizeof(err)),
                 SL_OK);
    cr_assert(vals[0] && vlens[0] == 2 && !memcmp(vals[0], "v2", 2));
    cr_assert_null(vals[1]);
    cr_assert(vals[2] && vlens[2] == 2 && !memcmp(vals[2], "v1", 2));
    sl__store_vals_release(pins);
    /* The same keys in the store's order, said to be sorted. */
    const char *sorted[] = {"k1", "k2", "nope"};
    size_t slens[] = {2, 2, 4};
    cr_assert_eq(sl__store_multiget(s, 3, sorted, slens, 1, &pins, vals, vlens, err, sizeof(err)),
                 SL_OK);
    cr_assert(vals[0] && vlens[0] == 2 && !memcmp(vals[0], "v1", 2));
    cr_assert(vals[1] && vlens[1] == 2 && !memcmp(vals[1], "v2", 2));
    cr_assert_null(vals[2]);
    sl__store_vals_release(pins);

    int n = 0;
    cr_assert_eq(sl__store_scan(s, SL_CF_OUTBOX, NULL, 0, count_cb, &n, err, sizeof(err)), SL_OK);
    cr_assert_eq(n, 5);
    uint8_t from[12] = {0}, to[12] = {0};
    from[7] = 1;
    to[7] = 2;
    sl__store_batch_delete_range(b, s, SL_CF_OUTBOX, from, 12, to, 12);
    cr_assert_eq(sl__store_write(s, b, 0, err, sizeof(err)), SL_OK);
    n = 0;
    sl__store_scan(s, SL_CF_OUTBOX, NULL, 0, count_cb, &n, err, sizeof(err));
    cr_assert_eq(n, 0, "the range delete removed the batch's outbox");
    n = 0;
    sl__store_scan(s, SL_CF_AGG, "k", 1, count_cb, &n, err, sizeof(err));
    cr_assert_eq(n, 2, "prefix scan");
    sl__store_batch_destroy(b);

    /* A read-only open works beside the writer (inspect on a running job). */
    char path[512];
    snprintf(path, sizeof(path), "%s/db", dir);
    sl_store_t *ro = NULL;
    cr_assert_eq(sl__store_open(path, 0, 1, &ro, err, sizeof(err)), SL_OK, "%s", err);
    sl__store_close(ro);
    sl__store_close(s);
}

Test(state, multiget_over_several_chunks)
{
    /* 3,000 keys asked at once (RocksDB is asked in chunks): every third one missing, the
     * values of different lengths, half of them in files (written, then the store closed
     * and opened again) and half in the memtable. */
    enum { N = 3000 };
    sl_store_t *s = open_store("mg", 1, 0);
    sl_store_batch_t *b = sl__store_batch_new();
    char err[512], key[N][16], val[64];
    for (int round = 0; round < 2; round++) {
        for (int i = round; i < N; i += 2) {
            snprintf(key[i], sizeof(key[i]), "key%06d", i);
            int vl = snprintf(val, sizeof(val), "%0*d", 1 + i % 50, i);
            if (i % 3)
                sl__store_batch_put(b, s, SL_CF_AGG, key[i], strlen(key[i]), val, (size_t)vl);
        }
        cr_assert_eq(sl__store_write(s, b, 1, err, sizeof(err)), SL_OK, "%s", err);
        if (round == 0) {
            sl__store_close(s);
            s = open_store("mg", 0, 0);
        }
    }
    const char *keys[N], *vals[N];
    size_t klens[N], vlens[N];
    for (int i = 0; i < N; i++) {
        keys[i] = key[i];
        klens[i] = strlen(key[i]);
    }
    sl_store_vals_t *pins;
    cr_assert_eq(sl__store_multiget(s, N, keys, klens, 1, &pins, vals, vlens, err, sizeof(err)),
                 SL_OK, "%s", err);
    for (int i = 0; i < N; i++) {
        if (i % 3 == 0) {
            cr_assert_null(vals[i], "key %d was never written", i);
            continue;
        }
        int vl = snprintf(val, sizeof(val), "%0*d", 1 + i % 50, i);
        cr_assert(vals[i] && vlens[i] == (size_t)vl && !memcmp(vals[i], val, (size_t)vl),
                  "key %d: %.*s", i, vals[i] ? (int)vlens[i] : 0, vals[i] ? vals[i] : "");
    }
    sl__store_vals_release(pins);
    sl__store_batch_destroy(b);
    sl__store_close(s);
}

Test(state, missing_and_unwritable_directories)
{
    char path[512], err[512] = "";
    sl_store_t *s = NULL;
    snprintf(path, sizeof(path), "%s/absent", dir);
    cr_assert_eq(sl__store_open(path, 0, 1, &s, err, sizeof(err)), SL_ERR_NOTFOUND);
    cr_assert(strstr(err, "no such directory"), "got: %s", err);
    snprintf(path, sizeof(path), "%s/file", dir);
    tk_write_file(dir, "file", "x");
    cr_assert_eq(sl__store_open(path, 1, 0, &s, err, sizeof(err)), SL_ERR_IO);
    cr_assert(strstr(err, "not a directory"), "got: %s", err);
}

/* Bytes in the write-ahead log files of a store. */
static long wal_bytes(const char *sub)
{
    char path[600];
    snprintf(path, sizeof(path), "%s/%s", dir, sub);
    DIR *d = opendir(path);
    cr_assert(d);
    struct dirent *de;
    long total = 0;
    while ((de = readdir(d))) {
        size_t n = strlen(de->d_name);
        if (n > 4 && !strcmp(de->d_name + n - 4, ".log")) {
            char f[1200];
            struct stat st;
            snprintf(f, sizeof(f), "%s/%s", path, de->d_name);
            if (stat(f, &st) == 0)
                total += (long)st.st_size;
        }
    }
    closedir(d);
    return total;
}

Test(state, the_write_ahead_log_stays_bounded)
{
    /* Batches as a job writes them: much to the aggregates, a little to meta. Every log
     * file would be kept while meta's memtable holds data in it, so a restart after a
     * crash replayed everything written since the store was made. */
    sl_store_t *s = open_store("wal", 1, 0);
    sl_store_batch_t *b = sl__store_batch_new();
    char err[512], key[32];
    static char val[1000];
    memset(val, 'v', sizeof(val));
    for (int batch = 0; batch < 200; batch++) {
        for (int i = 0; i < 1000; i++) {
            snprintf(key, sizeof(key), "k%d-%d", batch, i);
            sl__store_batch_put(b, s, SL_CF_AGG, key, strlen(key), val, sizeof(val));
        }
        sl__store_batch_put(b, s, SL_CF_META, "seq", 3, &batch, sizeof(batch));
        cr_assert_eq(sl__store_write(s, b, 0, err, sizeof(err)), SL_OK, "%s", err);
    }
    long open_bytes = wal_bytes("wal");
    cr_assert_lt(open_bytes, 130L << 20, "200 MB written, %ld bytes of log to replay", open_bytes);
    sl__store_batch_destroy(b);
    sl__store_close(s);
    cr_assert_eq(wal_bytes("wal"), 0, "a clean close leaves no log to replay");
    s = open_store("wal", 0, 0);
    char *v = NULL;
    size_t vl;
    cr_assert_eq(sl__store_get(s, SL_CF_AGG, "k199-999", 8, &v, &vl, err, sizeof(err)), SL_OK);
    cr_assert_eq(vl, sizeof(val));
    free(v);
    sl__store_close(s);
}

typedef struct rows_seen {
    int stream[8000];
    int64_t seq[8000];
    uint32_t idx[8000];
    sl_dest_t dest[8000];
    char key[8000][8];
    char val[8000][32];
    int n;
} rows_seen_t;

static int row_cb(void *opaque, int stream, int64_t seq, uint32_t idx, const uint8_t *row,
                  size_t len)
{
    rows_seen_t *r = opaque;
    sl_out_row_t o;
    cr_assert_eq(sl__outbox_row(row, len, &o), 0);
    cr_assert_lt(r->n, 8000);
    r->stream[r->n] = stream;
    r->seq[r->n] = seq;
    r->idx[r->n] = idx;
    r->dest[r->n] = o.dest;
    snprintf(r->key[r->n], 8, "%.*s", (int)o.klen, (const char *)o.key);
    snprintf(r->val[r->n], 32, "%.*s", (int)o.vlen, (const char *)o.val);
    r->n++;
    return 0;
}

/* A task's batch goes into the outbox in chunks of many records, each with where it goes;
 * streams (tasks, the local sinks) are read and deleted each on its own. */
Test(state, the_outbox_keeps_records_in_chunks_per_stream)
{
    sl_store_t *s = open_store("ob", 1, 0);
    sl_store_batch_t *wb = sl__store_batch_new();
    char err[512];
    sl_outbox_writer_t w;
    sl_buf_t out;
    sl__buf_init(&out);
    sl__outbox_begin(&w, s, wb, 3, 2, &out);
    size_t offs[6000], lens[6000];
    static const sl_dest_t dests[] = {SL_DEST_OUTPUT, SL_DEST_CHANGELOG, SL_DEST_TOMBSTONE};
    for (int i = 0; i < 6000; i++) {
        char text[128];
        int n = snprintf(text, sizeof(text), "row-%d-%080d", i, i);
        sl_dest_t d = i == 5999 ? SL_DEST_MARKER : dests[i % 3];
        cr_assert_eq(sl__outbox_add(&w, d, "k", 1, text, d == SL_DEST_TOMBSTONE ? 0 : (size_t)n,
                                    &offs[i], &lens[i]),
                     SL_OK);
    }
    sl__outbox_end(&w);
    sl_out_row_t r;
    cr_assert_eq(sl__outbox_row(out.p + offs[4320], lens[4320], &r), 0);
    cr_assert_eq(r.klen, 1);
    cr_assert_eq(r.dest, SL_DEST_OUTPUT);
    cr_assert(!memcmp(r.val, "row-4320-", 9), "the writer says where each record is");
    /* A batch of another stream, after and before this one in key order. */
    const char *one[] = {"local-row"};
    cr_assert_eq(sl__store_write(s, wb, 1, err, sizeof(err)), SL_OK, "%s", err);
    tk_outbox_put(s, SL_STREAM_LOCAL, 1, SL_DEST_OUTPUT, NULL, one, 1);
    tk_outbox_put(s, 0, 7, SL_DEST_OUTPUT, "x", one, 1);
    int entries = 0;
    cr_assert_eq(sl__store_scan(s, SL_CF_OUTBOX, NULL, 0, count_cb, &entries, err, sizeof(err)),
                 SL_OK);
    cr_assert(entries >= 4 && entries <= 8, "6,000 records of ~70 bytes in a few chunks, not %d",
              entries);
    rows_seen_t *seen = calloc(1, sizeof(*seen));
    cr_assert_eq(sl__outbox_scan(s, 3, row_cb, seen, err, sizeof(err)), SL_OK, "%s", err);
    cr_assert_eq(seen->n, 6000, "stream 3 only");
    for (int i = 0; i < 6000; i++) {
        char want[32];
        snprintf(want, sizeof(want), "row-%d-", i);
        sl_dest_t d = i == 5999 ? SL_DEST_MARKER : dests[i % 3];
        cr_assert_eq(seen->stream[i], 3);
        cr_assert_eq(seen->seq[i], 2);
        cr_assert_eq(seen->idx[i], (uint32_t)i);
        cr_assert_eq(seen->dest[i], d);
        cr_assert_str_eq(seen->key[i], "k");
        if (d == SL_DEST_TOMBSTONE)
            cr_assert_str_eq(seen->val[i], "", "a deletion has no value");
        else
            cr_assert(!strncmp(seen->val[i], want, strlen(want)), "record %d read back as %s", i,
                      seen->val[i]);
    }
    seen->n = 0;
    cr_assert_eq(sl__outbox_scan(s, -1, row_cb, seen, err, sizeof(err)), SL_OK, "%s", err);
    cr_assert_eq(seen->n, 6002, "every stream");
    cr_assert(seen->stream[0] == 0 && seen->stream[6001] == SL_STREAM_LOCAL, "in stream order");
    /* Deleting a stream's batches leaves the others. */
    cr_assert_eq(sl__outbox_delete(s, wb, 3, 0, INT64_MAX, err, sizeof(err)), SL_OK);
    seen->n = 0;
    cr_assert_eq(sl__outbox_scan(s, -1, row_cb, seen, err, sizeof(err)), SL_OK);
    cr_assert_eq(seen->n, 2);
    cr_assert_eq(sl__outbox_delete(s, wb, 0, 0, 7, err, sizeof(err)), SL_OK);
    seen->n = 0;
    cr_assert_eq(sl__outbox_scan(s, 0, row_cb, seen, err, sizeof(err)), SL_OK);
    cr_assert_eq(seen->n, 1, "batch 7 is not below 7");
    cr_assert_eq(sl__outbox_delete(s, wb, 0, 7, 8, err, sizeof(err)), SL_OK);
    seen->n = 0;
    cr_assert_eq(sl__outbox_scan(s, 0, row_cb, seen, err, sizeof(err)), SL_OK);
    cr_assert_eq(seen->n, 0);
    /* A value that is not a chunk, or a record of no known destination, is reported, not
     * read past its end. */
    uint8_t bad[SL_OUTBOX_KEY] = {0, 1, 0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 0, 'c'};
    sl__store_batch_put(wb, s, SL_CF_OUTBOX, bad, sizeof(bad), "\x7f", 1);
    cr_assert_eq(sl__store_write(s, wb, 1, err, sizeof(err)), SL_OK);
    cr_assert_eq(sl__outbox_scan(s, 1, row_cb, seen, err, sizeof(err)), SL_ERR_STATE);
    cr_assert_eq(sl__outbox_row((const uint8_t *)"x\x00", 2, &r), -1, "destination 'x'");
    free(seen);
    sl__buf_fini(&out);
    sl__store_batch_destroy(wb);
    sl__store_close(s);
}
