/*
 * test_changelog.c - the changelog's records: markers written and read back (and what a
 * damaged or foreign one says), state keys, and changelog records restored into a store
 * (the last of a key wins, deletions, the expiry index following windows' ends, chunks),
 * in batches and in bulk (table files ingested), and a task's state wiped without
 * touching another's.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "commit/changelog.h"
#include "commit/restore.h"
#include "layout.h"
#include "store.h"
#include "tk.h"

static char *dir;
static sl_store_t *store;

static void setup(void)
{
    dir = tk_tmpdir("sluice-changelog");
    char path[600], err[512] = "";
    snprintf(path, sizeof(path), "%s/st", dir);
    cr_assert_eq(sl__store_open(path, 1, 0, &store, err, sizeof(err)), SL_OK, "%s", err);
}

static void teardown(void)
{
    sl__store_close(store);
    tk_rmrf(dir);
    free(dir);
}

TestSuite(changelog, .init = setup, .fini = teardown);

Test(changelog, markers_are_read_back_as_written)
{
    sl_marker_t m = {.task = 3, .seq = 41, .nonce = 0x0123456789abcdefULL,
                     .fingerprint = 0xfedcba9876543210ULL, .committed_ms = 1764000000000LL};
    uint8_t pos[8];
    sl__be64_put(pos, 123456);
    cr_assert_eq(sl__marker_add(&m, "pos/page.views/3", pos, 8), SL_OK);
    cr_assert_eq(sl__marker_add(&m, "file/a b.txt", "\x00\xff\x10", 3), SL_OK);
    cr_assert_eq(sl__marker_add(&m, "empty", "", 0), SL_OK);
    sl_buf_t out;
    sl__buf_init(&out);
    cr_assert_eq(sl__marker_encode(&m, "job-1", &out), SL_OK);
    cr_assert(strstr((const char *)out.p, "\"nonce\":\"0123456789abcdef\""), "%.*s", (int)out.len,
              (const char *)out.p);
    cr_assert(strstr((const char *)out.p, "\"job\":\"job-1\""));
    sl_marker_t r;
    char err[256];
    cr_assert_eq(sl__marker_decode(out.p, out.len, &r, err, sizeof(err)), SL_OK, "%s", err);
    cr_assert_eq(r.task, 3);
    cr_assert_eq(r.seq, 41);
    cr_assert_eq(r.nonce, m.nonce);
    cr_assert_eq(r.fingerprint, m.fingerprint);
    cr_assert_eq(r.committed_ms, m.committed_ms);
    cr_assert_eq(r.nmeta, 3);
    int seen = 0;
    for (size_t i = 0; i < r.nmeta; i++) {
        if (!strcmp(r.meta[i].name, "pos/page.views/3")) {
            cr_assert_eq(r.meta[i].vlen, 8);
            cr_assert_eq(sl__be64_get(r.meta[i].val), 123456);
            seen |= 1;
        } else if (!strcmp(r.meta[i].name, "file/a b.txt")) {
            cr_assert(r.meta[i].vlen == 3 && !memcmp(r.meta[i].val, "\x00\xff\x10", 3));
            seen |= 2;
        } else if (!strcmp(r.meta[i].name, "empty")) {
            cr_assert_eq(r.meta[i].vlen, 0);
            seen |= 4;
        }
    }
    cr_assert_eq(seen, 7, "every entry, with its bytes");
    sl__marker_fini(&r);
    sl__marker_fini(&m);
    sl__buf_fini(&out);
}

Test(changelog, a_foreign_or_damaged_marker_says_so)
{
    static const struct {
        const char *json, *want;
    } cases[] = {
        {"not json", "not sluice's"},
        {"{\"task\": 1, \"seq\": 2, \"meta\": {}}", "not sluice's"},
        {"{\"sluice\": 7, \"task\": 1, \"seq\": 2, \"meta\": {}}",
         "of format 7, which this sluice does not read"},
        {"{\"sluice\": 1, \"task\": 1, \"seq\": 2, \"nonce\": \"xyz\", \"fingerprint\": "
         "\"0000000000000000\", \"meta\": {}}",
         "a corrupt changelog marker"},
        {"{\"sluice\": 1, \"task\": 1, \"seq\": 2, \"nonce\": \"0000000000000001\", "
         "\"fingerprint\": \"0000000000000000\", \"meta\": {\"pos/t/0\": \"abc\"}}",
         "a corrupt changelog marker (meta 'pos/t/0')"},
        {"{\"sluice\": 1, \"task\": 1, \"seq\": 0, \"nonce\": \"0000000000000001\", "
         "\"fingerprint\": \"0000000000000000\", \"meta\": {}}",
         "a corrupt changelog marker"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        sl_marker_t m;
        char err[256] = "";
        cr_assert_eq(sl__marker_decode(cases[i].json, strlen(cases[i].json), &m, err, sizeof(err)),
                     SL_ERR_STATE, "%s", cases[i].json);
        cr_assert(strstr(err, cases[i].want), "%s: got %s", cases[i].json, err);
        sl__marker_fini(&m);
    }
}

Test(changelog, state_keys_lose_their_task_prefix)
{
    sl_buf_t out;
    sl__buf_init(&out);
    cr_assert_eq(sl__clog_key((const uint8_t *)"\x00\x07\x04\x02g", 5, &out), SL_OK);
    cr_assert(out.len == 4 && !memcmp(out.p, "a\x04\x02g", 4));
    cr_assert_eq(sl__clog_key((const uint8_t *)"\x00\x07", 2, &out), SL_OK, "a global aggregate");
    cr_assert(out.len == 1 && out.p[0] == SL_CLOG_STATE);
    cr_assert_eq(sl__clog_key((const uint8_t *)"\x00", 1, &out), SL_ERR_STATE);
    char topic[64];
    sl__clog_topic(topic, sizeof(topic), "page-counts");
    cr_assert_str_eq(topic, "page-counts-changelog");
    sl__buf_fini(&out);
}

static int count_cb(void *opaque, const char *k, size_t kl, const char *v, size_t vl)
{
    (*(int *)opaque)++;
    return 0;
}

static int entries(sl_cf_t cf, int task)
{
    int n = 0;
    char err[256];
    uint8_t prefix[2];
    sl__task_put(prefix, task);
    cr_assert_eq(sl__store_scan(store, cf, task >= 0 ? prefix : NULL, task >= 0 ? 2 : 0, count_cb,
                                &n, err, sizeof(err)),
                 SL_OK);
    return n;
}

/* A windowed value: its end (8 bytes), then the accumulators (here a tag). */
static const uint8_t *wvalue(int64_t end, char tag, uint8_t *buf)
{
    sl__be64_put(buf, (uint64_t)end);
    buf[8] = (uint8_t)tag;
    return buf;
}

static int has_expiry(int task, int64_t end, const char *key)
{
    uint8_t k[64] = {0};
    uint8_t sk[32];
    size_t kl = strlen(key);
    sl__task_put(sk, task);
    memcpy(sk + 2, key, kl);
    sl_buf_t b;
    sl__buf_init(&b);
    cr_assert_eq(sl__expiry_key(&b, end, sk, kl + 2), SL_OK);
    memcpy(k, b.p, b.len);
    char *v = NULL, err[256];
    size_t vl;
    sl_err_t e = sl__store_get(store, SL_CF_EXPIRY, k, b.len, &v, &vl, err, sizeof(err));
    free(v);
    sl__buf_fini(&b);
    return e == SL_OK;
}

static char *agg(int task, const char *key, size_t *vl)
{
    uint8_t sk[32];
    size_t kl = strlen(key);
    sl__task_put(sk, task);
    memcpy(sk + 2, key, kl);
    char *v = NULL, err[256];
    if (sl__store_get(store, SL_CF_AGG, sk, kl + 2, &v, vl, err, sizeof(err)) != SL_OK)
        return NULL;
    return v;
}

/* The files a bulk restore made for ingestion, still in the store's "ingest" folder. */
static int ingest_files(void)
{
    char path[600];
    snprintf(path, sizeof(path), "%s/st/ingest", dir);
    DIR *d = opendir(path);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        n += e->d_name[0] != '.';
    if (d)
        closedir(d);
    return n;
}

/* In two chunks, written in one batch each or (@p bulk) ingested as table files. */
static void restore_windows(int bulk)
{
    sl_restore_t r;
    char err[512] = "";
    uint8_t b[9];
    cr_assert_eq(sl__restore_init(&r, store, 5, 1, 1), SL_OK);
    r.bulk = bulk;
    cr_assert_eq(sl__restore_record(&r, (const uint8_t *)"g1", 2, wvalue(10, 'a', b), 9, err,
                                    sizeof(err)),
                 SL_OK, "%s", err);
    cr_assert_eq(sl__restore_record(&r, (const uint8_t *)"g1", 2, wvalue(20, 'b', b), 9, err,
                                    sizeof(err)),
                 SL_OK);
    cr_assert_eq(sl__restore_record(&r, (const uint8_t *)"g2", 2, wvalue(30, 'c', b), 9, err,
                                    sizeof(err)),
                 SL_OK);
    cr_assert_eq(sl__restore_flush(&r, err, sizeof(err)), SL_OK, "%s", err);
    size_t vl;
    char *v = agg(5, "g1", &vl);
    cr_assert(v && vl == 9 && v[8] == 'b', "the last record of a key wins");
    free(v);
    cr_assert(has_expiry(5, 20, "g1") && !has_expiry(5, 10, "g1"), "one entry, at its end");
    cr_assert(has_expiry(5, 30, "g2"));
    /* A later chunk: g1's window grows (a session), g2 is deleted (its window closed). */
    cr_assert_eq(sl__restore_record(&r, (const uint8_t *)"g1", 2, wvalue(25, 'd', b), 9, err,
                                    sizeof(err)),
                 SL_OK);
    cr_assert_eq(sl__restore_record(&r, (const uint8_t *)"g2", 2, NULL, 0, err, sizeof(err)), SL_OK);
    cr_assert_eq(sl__restore_record(&r, (const uint8_t *)"g9", 2, NULL, 0, err, sizeof(err)), SL_OK,
                 "a deletion of a key it does not have");
    cr_assert_eq(sl__restore_flush(&r, err, sizeof(err)), SL_OK, "%s", err);
    cr_assert(has_expiry(5, 25, "g1") && !has_expiry(5, 20, "g1"), "the index follows the end");
    cr_assert(!agg(5, "g2", &vl) && !has_expiry(5, 30, "g2"), "deleted with its index entry");
    cr_assert_eq(entries(SL_CF_AGG, 5), 1);
    cr_assert_eq(entries(SL_CF_EXPIRY, 5), 1);
    cr_assert_eq(r.records, 6);
    /* A windowed aggregate too short to hold its end is damage, not state. */
    cr_assert_eq(sl__restore_record(&r, (const uint8_t *)"g3", 2, (const uint8_t *)"x", 1, err,
                                    sizeof(err)),
                 SL_OK);
    cr_assert_eq(sl__restore_flush(&r, err, sizeof(err)), SL_ERR_STATE);
    cr_assert(strstr(err, "too short"), "%s", err);
    sl__restore_fini(&r);
    cr_assert_eq(ingest_files(), 0, "every file made was ingested or removed");
}

Test(changelog, records_are_restored_with_the_windows_index)
{
    restore_windows(0);
}

Test(changelog, records_are_restored_in_bulk_with_the_windows_index)
{
    restore_windows(1);
}

/* 150,000 records of 100,000 keys, in chunks of @p chunk records (0: the default). */
static void restore_many(int bulk, size_t chunk)
{
    sl_restore_t r;
    char err[512] = "";
    cr_assert_eq(sl__restore_init(&r, store, 0, 0, 0), SL_OK);
    r.bulk = bulk;
    r.chunk_records = chunk;
    for (int i = 0; i < 150000; i++) {
        char k[16], v[16];
        int kl = snprintf(k, sizeof(k), "k%06d", i % 100000);
        int vl = snprintf(v, sizeof(v), "v%d", i);
        cr_assert_eq(sl__restore_record(&r, (const uint8_t *)k, (size_t)kl, (const uint8_t *)v,
                                        (size_t)vl, err, sizeof(err)),
                     SL_OK, "%s", err);
    }
    cr_assert_eq(sl__restore_flush(&r, err, sizeof(err)), SL_OK, "%s", err);
    cr_assert_eq(entries(SL_CF_AGG, 0), 100000);
    size_t vl;
    char *v = agg(0, "k012345", &vl);
    cr_assert(v && vl == 7 && !memcmp(v, "v112345", 7), "a key written in two chunks: the later");
    free(v);
    v = agg(0, "k049999", &vl);
    cr_assert(v && !memcmp(v, "v149999", 7));
    free(v);
    cr_assert_eq(entries(SL_CF_EXPIRY, 0), 0, "no index without closing windows");
    sl__restore_fini(&r);
    cr_assert_eq(ingest_files(), 0);
}

Test(changelog, many_records_go_in_chunks_and_every_one_lands)
{
    restore_many(0, 0);
}

Test(changelog, many_records_go_in_bulk_files_and_every_one_lands)
{
    restore_many(1, 0);
    restore_many(1, 7000); /* over what is there: 22 files, each key in two of them */
}

Test(changelog, a_bulk_restore_after_a_wipe_replaces_the_task_state)
{
    sl_store_batch_t *wb = sl__store_batch_new();
    char err[512] = "";
    for (int i = 0; i < 50; i++) {
        uint8_t k[8];
        sl__task_put(k, 3);
        memcpy(k + 2, "old", 3);
        k[5] = (uint8_t)i;
        sl__store_batch_put(wb, store, SL_CF_AGG, k, 6, "stale", 5);
    }
    cr_assert_eq(sl__store_write(store, wb, 1, err, sizeof(err)), SL_OK, "%s", err);
    sl__restore_wipe_put(store, wb, 3);
    cr_assert_eq(sl__store_write(store, wb, 1, err, sizeof(err)), SL_OK, "%s", err);
    sl_restore_t r;
    cr_assert_eq(sl__restore_init(&r, store, 3, 0, 0), SL_OK);
    r.bulk = 1;
    r.chunk_records = 2;
    const char *keys[] = {"b", "a", "c", "a", "d"};
    for (int i = 0; i < 5; i++)
        cr_assert_eq(sl__restore_record(&r, (const uint8_t *)keys[i], 1,
                                        i == 4 ? NULL : (const uint8_t *)keys[i], 1, err,
                                        sizeof(err)),
                     SL_OK, "%s", err);
    cr_assert_eq(sl__restore_flush(&r, err, sizeof(err)), SL_OK, "%s", err);
    cr_assert_eq(entries(SL_CF_AGG, 3), 3, "a, b and c; none of the wiped keys, d deleted");
    cr_assert_eq(r.puts, 4);
    cr_assert_eq(r.deletes, 1);
    sl__restore_fini(&r);
    sl__store_batch_destroy(wb);
}

Test(changelog, a_store_opens_without_what_a_cut_restore_left)
{
    char path[700], err[512] = "";
    snprintf(path, sizeof(path), "%s/st/ingest", dir);
    mkdir(path, 0755);
    snprintf(path, sizeof(path), "%s/st/ingest/1-0.sst", dir);
    FILE *f = fopen(path, "w");
    cr_assert(f);
    fputs("half a table file", f);
    fclose(f);
    cr_assert_eq(ingest_files(), 1);
    sl__store_close(store);
    snprintf(path, sizeof(path), "%s/st", dir);
    cr_assert_eq(sl__store_open(path, 1, 0, &store, err, sizeof(err)), SL_OK, "%s", err);
    cr_assert_eq(ingest_files(), 0);
}

Test(changelog, wiping_a_task_leaves_the_others)
{
    sl_store_batch_t *wb = sl__store_batch_new();
    char err[512];
    for (int t = 1; t <= 3; t++) {
        uint8_t k[4];
        sl__task_put(k, t);
        k[2] = 'g';
        k[3] = 'h';
        sl__store_batch_put(wb, store, SL_CF_AGG, k, 4, "v", 1);
        sl__store_batch_put(wb, store, SL_CF_EXPIRY, k, 4, "", 0);
        sl__store_batch_put(wb, store, SL_CF_OUTBOX, k, 4, "o", 1);
        char mk[32];
        int ml = sl__meta_key(mk, sizeof(mk), t, "seq");
        sl__store_batch_put(wb, store, SL_CF_META, mk, (size_t)ml, "12345678", 8);
    }
    sl__store_batch_put(wb, store, SL_CF_META, "t/20/seq", 8, "12345678", 8);
    cr_assert_eq(sl__store_write(store, wb, 1, err, sizeof(err)), SL_OK);
    sl__restore_wipe_put(store, wb, 2);
    cr_assert_eq(sl__store_write(store, wb, 1, err, sizeof(err)), SL_OK);
    for (int t = 1; t <= 3; t++) {
        int want = t == 2 ? 0 : 1;
        cr_assert_eq(entries(SL_CF_AGG, t), want, "task %d", t);
        cr_assert_eq(entries(SL_CF_EXPIRY, t), want, "task %d", t);
        cr_assert_eq(entries(SL_CF_OUTBOX, t), want, "task %d", t);
    }
    char *v = NULL;
    size_t vl;
    cr_assert_eq(sl__store_get(store, SL_CF_META, "t/2/seq", 7, &v, &vl, err, sizeof(err)),
                 SL_ERR_NOTFOUND);
    cr_assert_eq(sl__store_get(store, SL_CF_META, "t/20/seq", 8, &v, &vl, err, sizeof(err)), SL_OK,
                 "task 20's meta is not task 2's");
    free(v);
    cr_assert_eq(sl__store_get(store, SL_CF_META, "t/1/seq", 7, &v, &vl, err, sizeof(err)), SL_OK);
    free(v);
    sl__store_batch_destroy(wb);
}
