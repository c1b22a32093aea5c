/*
 * test_upgrade.c - a store of layout 1 (sluice before tasks), made here with RocksDB's own
 * API as that sluice wrote it, brought to layout 2: its aggregates, expiry index, outbox
 * rows and meta become task 0's; the old families go; a job of several tasks refuses it;
 * a store of a later layout is refused; a new store is marked.
 */
#include <criterion/criterion.h>
#include <rocksdb/c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commit/outbox.h"
#include "commit/upgrade.h"
#include "layout.h"
#include "store.h"
#include "tk.h"

static char *dir;
static char path[600];

static void setup(void)
{
    dir = tk_tmpdir("sluice-upgrade");
    snprintf(path, sizeof(path), "%s/st", dir);
}

static void teardown(void)
{
    tk_rmrf(dir);
    free(dir);
}

TestSuite(upgrade, .init = setup, .fini = teardown);

/* One entry of a layout 1 store: family, key, value. */
typedef struct entry {
    int cf; /* 0 agg, 1 meta, 2 outbox, 3 expiry */
    const char *k;
    size_t kl;
    const char *v;
    size_t vl;
} entry_t;

/* Writes a store as layout 1 did: families agg, meta, outbox, expiry. */
static void make_layout1(const entry_t *e, size_t n)
{
    rocksdb_options_t *o = rocksdb_options_create();
    rocksdb_options_set_create_if_missing(o, 1);
    rocksdb_options_set_create_missing_column_families(o, 1);
    const char *names[] = {"default", "agg", "meta", "outbox", "expiry"};
    const rocksdb_options_t *opts[] = {o, o, o, o, o};
    rocksdb_column_family_handle_t *cf[5];
    char *err = NULL;
    rocksdb_t *db = rocksdb_open_column_families(o, path, 5, names, opts, cf, &err);
    cr_assert(db, "%s", err ? err : "?");
    rocksdb_writeoptions_t *wo = rocksdb_writeoptions_create();
    for (size_t i = 0; i < n; i++) {
        rocksdb_put_cf(db, wo, cf[e[i].cf + 1], e[i].k, e[i].kl, e[i].v, e[i].vl, &err);
        cr_assert(!err, "%s", err);
    }
    rocksdb_writeoptions_destroy(wo);
    for (int i = 0; i < 5; i++)
        rocksdb_column_family_handle_destroy(cf[i]);
    rocksdb_close(db);
    rocksdb_options_destroy(o);
}

static sl_store_t *open_store(void)
{
    sl_store_t *s = NULL;
    char err[512] = "";
    cr_assert_eq(sl__store_open(path, 1, 0, &s, err, sizeof(err)), SL_OK, "%s", err);
    return s;
}

static int count_cb(void *opaque, const char *k, size_t kl, const char *v, size_t vl)
{
    (*(int *)opaque)++;
    return 0;
}

static int entries(sl_store_t *s, sl_cf_t cf, const char *prefix, size_t plen)
{
    int n = 0;
    char err[256];
    cr_assert_eq(sl__store_scan(s, cf, prefix, plen, count_cb, &n, err, sizeof(err)), SL_OK);
    return n;
}

static int64_t meta_i64(sl_store_t *s, const char *key)
{
    char *v = NULL, err[256];
    size_t vl;
    if (sl__store_get(s, SL_CF_META, key, strlen(key), &v, &vl, err, sizeof(err)) != SL_OK)
        return -1;
    cr_assert_eq(vl, 8, "%s", key);
    int64_t x = (int64_t)sl__be64_get((const uint8_t *)v);
    free(v);
    return x;
}

typedef struct rows {
    int n;
    int64_t seq[4];
    uint32_t idx[4];
    sl_dest_t dest[4];
    char val[4][16];
} rows_t;

static int row_cb(void *opaque, int stream, int64_t seq, uint32_t idx, const uint8_t *rec,
                  size_t len)
{
    rows_t *r = opaque;
    sl_out_row_t o;
    cr_assert_eq(stream, 0);
    cr_assert_eq(sl__outbox_row(rec, len, &o), 0);
    cr_assert_lt(r->n, 4);
    r->seq[r->n] = seq;
    r->idx[r->n] = idx;
    r->dest[r->n] = o.dest;
    snprintf(r->val[r->n], sizeof(r->val[0]), "%.*s", (int)o.vlen, (const char *)o.val);
    r->n++;
    return 0;
}

/* Layout 1's batch 7, committed and not published: a chunk of two rows of key "k". */
static const char chunk_key[13] = {0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 0, 'c'};
/* per row: length (zigzag varint), key length (zigzag), key, value */
static const char chunk[] = {14, 2, 'k', 'r', 'o', 'w', '-', '0', 14, 2, 'k', 'r', 'o', 'w', '-', '1'};

static void layout1_fixture(void)
{
    uint8_t pos[8], seq[8], wm[8], exp[8 + 3];
    sl__be64_put(pos, 42);
    sl__be64_put(seq, 7);
    sl__be64_put(wm, 5000);
    sl__be64_put(exp, (uint64_t)10000 ^ (1ULL << 63));
    memcpy(exp + 8, "\x04\x02g", 3);
    const entry_t e[] = {
        {0, "\x04\x02g", 3, "aggregate-g", 11},
        {0, "\x04\x02h", 3, "aggregate-h", 11},
        {1, "pos/in/0", 8, (const char *)pos, 8},
        {1, "seq", 3, (const char *)seq, 8},
        {1, "wm", 2, (const char *)wm, 8},
        {1, "file/a.txt", 10, "123456789", 9},
        {1, "job", 3, "fingerpr", 8},
        {2, chunk_key, 13, chunk, sizeof(chunk)},
        {3, (const char *)exp, 11, "", 0},
    };
    make_layout1(e, sizeof(e) / sizeof(e[0]));
}

Test(upgrade, layout_1_becomes_task_0)
{
    layout1_fixture();
    sl_store_t *s = open_store();
    cr_assert(sl__store_has_legacy(s));
    char err[1024] = "";
    cr_assert_eq(sl__upgrade_store(s, path, 1, err, sizeof(err)), SL_OK, "%s", err);
    cr_assert(!sl__store_has_legacy(s), "the old families are dropped");
    /* Aggregates and the expiry index under task 0's prefix. */
    cr_assert_eq(entries(s, SL_CF_AGG, "\0\0", 2), 2);
    char *v = NULL;
    size_t vl;
    cr_assert_eq(sl__store_get(s, SL_CF_AGG, "\0\0\x04\x02g", 5, &v, &vl, err, sizeof(err)), SL_OK);
    cr_assert(vl == 11 && !memcmp(v, "aggregate-g", 11));
    free(v);
    uint8_t xk[2 + 8 + 5] = {0, 0};
    sl__be64_put(xk + 2, (uint64_t)10000 ^ (1ULL << 63));
    memcpy(xk + 10, "\0\0\x04\x02g", 5);
    cr_assert_eq(sl__store_get(s, SL_CF_EXPIRY, xk, sizeof(xk), &v, &vl, err, sizeof(err)), SL_OK,
                 "the expiry entry, in layout 2's form");
    free(v);
    /* The meta: task 0's, and the store's batch and fingerprint kept. */
    cr_assert_eq(meta_i64(s, "t/0/pos/in/0"), 42);
    cr_assert_eq(meta_i64(s, "t/0/seq"), 7);
    cr_assert_eq(meta_i64(s, "seq"), 7, "the store's batch, as SLUICE_STATE names it");
    cr_assert_eq(meta_i64(s, "t/0/wm"), 5000);
    cr_assert_eq(meta_i64(s, "pos/in/0"), -1, "the old key is gone");
    cr_assert_eq(meta_i64(s, "wm"), -1);
    cr_assert_eq(sl__store_get(s, SL_CF_META, "t/0/file/a.txt", 14, &v, &vl, err, sizeof(err)),
                 SL_OK);
    cr_assert(vl == 9 && !memcmp(v, "123456789", 9));
    free(v);
    cr_assert_eq(sl__store_get(s, SL_CF_META, "job", 3, &v, &vl, err, sizeof(err)), SL_OK);
    free(v);
    cr_assert_eq(sl__store_get(s, SL_CF_META, "layout", 6, &v, &vl, err, sizeof(err)), SL_OK);
    cr_assert(vl == 1 && v[0] == '2');
    free(v);
    /* The outbox's rows: task 0's result rows, of the same batch and index. */
    rows_t r = {0};
    cr_assert_eq(sl__outbox_scan(s, -1, row_cb, &r, err, sizeof(err)), SL_OK, "%s", err);
    cr_assert_eq(r.n, 2);
    for (int i = 0; i < 2; i++) {
        char want[16];
        snprintf(want, sizeof(want), "row-%d", i);
        cr_assert_eq(r.seq[i], 7);
        cr_assert_eq(r.idx[i], (uint32_t)i);
        cr_assert_eq(r.dest[i], SL_DEST_OUTPUT);
        cr_assert_str_eq(r.val[i], want);
    }
    sl__store_close(s);
    /* Upgraded once: opened again, it is layout 2 and stays as it is. */
    s = open_store();
    cr_assert(!sl__store_has_legacy(s));
    cr_assert_eq(sl__upgrade_store(s, path, 1, err, sizeof(err)), SL_OK, "%s", err);
    cr_assert_eq(entries(s, SL_CF_AGG, NULL, 0), 2);
    cr_assert_eq(meta_i64(s, "t/0/seq"), 7);
    sl__store_close(s);
}

Test(upgrade, a_job_of_several_tasks_refuses_layout_1_state)
{
    layout1_fixture();
    sl_store_t *s = open_store();
    char err[1024] = "";
    cr_assert_eq(sl__upgrade_store(s, path, 12, err, sizeof(err)), SL_ERR_MISMATCH);
    cr_assert(strstr(err, "cannot split them among the 12 tasks of a co-partitioned job"), "%s",
              err);
    cr_assert(strstr(err, "Run the job without source.co_partitioned"), "%s", err);
    cr_assert(sl__store_has_legacy(s), "nothing is changed");
    cr_assert_eq(entries(s, SL_CF_AGG, NULL, 0), 0);
    sl__store_close(s);
}

Test(upgrade, new_and_later_stores)
{
    sl_store_t *s = open_store();
    char err[1024] = "", *v = NULL;
    size_t vl;
    cr_assert_eq(sl__upgrade_store(s, path, 4, err, sizeof(err)), SL_OK, "%s", err);
    cr_assert_eq(sl__store_get(s, SL_CF_META, "layout", 6, &v, &vl, err, sizeof(err)), SL_OK,
                 "a new store is marked as this layout");
    free(v);
    sl_store_batch_t *wb = sl__store_batch_new();
    sl__store_batch_put(wb, s, SL_CF_META, "layout", 6, "9", 1);
    cr_assert_eq(sl__store_write(s, wb, 1, err, sizeof(err)), SL_OK);
    sl__store_batch_destroy(wb);
    cr_assert_eq(sl__upgrade_store(s, path, 1, err, sizeof(err)), SL_ERR_STATE);
    cr_assert(strstr(err, "has layout 9, written by a later sluice"), "%s", err);
    sl__store_close(s);
}
