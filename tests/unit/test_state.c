/*
 * test_state.c - the RocksDB store: atomic batches across families, reads, scans,
 * range deletes, and that what was written survives a reopen.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"
#include "tk.h"

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
    char *vals[3];
    cr_assert_eq(sl__store_multiget(s, 3, keys, klens, vals, vlens, err, sizeof(err)), SL_OK);
    cr_assert(vals[0] && vlens[0] == 2 && !memcmp(vals[0], "v2", 2));
    cr_assert_null(vals[1]);
    cr_assert(vals[2] && !memcmp(vals[2], "v1", 2));
    for (int i = 0; i < 3; i++)
        sl__store_free(vals[i]);

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
