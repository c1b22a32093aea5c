/*
 * 0018-upgrade.c - a state directory written by sluice before tasks and changelogs
 * (layout 1), taken up by this one.
 *
 * The test makes such a directory the way that sluice left it: a job runs without a
 * changelog, and its store is then rewritten with RocksDB's own API into layout 1's
 * families and keys (aggregates without a task prefix, the meta without "t/0/"). The job
 * then runs with its changelog: the store is upgraded in place, its whole state is
 * published to the changelog once, and the job goes on with exact totals. The state
 * directory is then lost: restored from the changelog, the job reads nothing again and
 * its totals stay exact.
 */
#include <criterion/criterion.h>
#include <rocksdb/c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/sluice.h"
#include "sluice/sluice_dev.h"
#include "tk.h"
#include "tk_eos.h"

static const sl_gen_spec_t SPEC = {.seed = 1818, .pages = TK_EOS_PAGES, .users = 500, .by_page = 1};

static void run_job(const char *dir, const char *bs, const char *in, const char *out,
                    int changelog, sl_job_stats_t *st)
{
    char json[2048], err[4096] = "";
    snprintf(json, sizeof(json),
             "{\"name\": \"%s\", \"kafka\": {\"bootstrap.servers\": \"%s\"},"
             " \"source\": {\"topics\": \"%s\", \"schema\": \"pageview.avsc\"},"
             " \"query\": {\"group_by\": \"page\", \"aggregates\": [{\"fn\": \"count\"},"
             "   {\"fn\": \"sum\", \"field\": \"bytes\"}]},"
             " \"trigger\": {\"interval\": \"300ms\", \"max_records\": 20000,"
             "   \"available_now\": true},"
             " \"output\": {\"sink\": \"kafka\", \"topic\": \"%s\"},"
             " \"state\": {\"dir\": \"state\", \"changelog\": %s}}",
             out, bs, in, out, changelog ? "true" : "false");
    sl_job_t *job;
    cr_assert_eq(sl_job_new_from_json(json, dir, "upgrade", &job, err, sizeof(err)), SL_OK, "%s",
                 err);
    cr_assert_eq(sl_job_run(job, err, sizeof(err)), SL_OK, "run: %s", err);
    sl_job_stats(job, st, sizeof(*st));
    sl_job_destroy(job);
}

/* Copies family @p from into @p to, each key cut by @p cut bytes at its start (and, for
 * the meta, only "t/0/" keys, renamed as layout 1 named them). */
static void copy_family(rocksdb_t *db, rocksdb_column_family_handle_t *from,
                        rocksdb_column_family_handle_t *to, int meta)
{
    rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
    rocksdb_writeoptions_t *wo = rocksdb_writeoptions_create();
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(db, ro, from);
    char *err = NULL;
    for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t kl, vl;
        const char *k = rocksdb_iter_key(it, &kl), *v = rocksdb_iter_value(it, &vl);
        if (meta) {
            /* t/0/pos/..., t/0/wm ...: layout 1 kept them unprefixed; its own batch
             * ("seq") and fingerprint are the store's already. */
            if (kl < 5 || memcmp(k, "t/0/", 4))
                continue;
            const char *name = k + 4;
            size_t nl = kl - 4;
            if ((nl == 3 && !memcmp(name, "seq", 3)) || (nl == 5 && !memcmp(name, "nonce", 5)) ||
                (nl == 4 && !memcmp(name, "clog", 4)))
                continue;
            rocksdb_put_cf(db, wo, to, name, nl, v, vl, &err);
        } else if (kl >= 2) {
            rocksdb_put_cf(db, wo, to, k + 2, kl - 2, v, vl, &err);
        }
        cr_assert(!err, "%s", err);
    }
    rocksdb_iter_destroy(it);
    rocksdb_readoptions_destroy(ro);
    rocksdb_writeoptions_destroy(wo);
}

/* Rewrites a store of one task, with nothing in its outbox, as layout 1. */
static void to_layout1(const char *state)
{
    rocksdb_options_t *o = rocksdb_options_create();
    rocksdb_options_set_create_missing_column_families(o, 1);
    const char *names[] = {"default", "task_agg", "meta", "task_outbox", "task_expiry",
                           "agg",     "outbox",   "expiry"};
    const rocksdb_options_t *opts[8] = {o, o, o, o, o, o, o, o};
    rocksdb_column_family_handle_t *cf[8];
    char *err = NULL;
    rocksdb_t *db = rocksdb_open_column_families(o, state, 8, names, opts, cf, &err);
    cr_assert(db, "%s", err ? err : "?");
    copy_family(db, cf[1], cf[5], 0);
    copy_family(db, cf[2], cf[2], 1);
    /* Layout 1 wrote its meta with the same family: the layout-2 keys go. */
    rocksdb_writeoptions_t *wo = rocksdb_writeoptions_create();
    rocksdb_delete_range_cf(db, wo, cf[2], "t/", 2, "t0", 2, &err);
    rocksdb_delete_cf(db, wo, cf[2], "layout", 6, &err);
    cr_assert(!err, "%s", err);
    rocksdb_writeoptions_destroy(wo);
    for (int i = 1; i <= 4; i++) {
        if (i == 2)
            continue;
        rocksdb_drop_column_family(db, cf[i], &err);
        cr_assert(!err, "%s", err);
    }
    for (int i = 0; i < 8; i++)
        rocksdb_column_family_handle_destroy(cf[i]);
    rocksdb_close(db);
    rocksdb_options_destroy(o);
}

Test(upgrade, a_store_from_before_tasks_is_upgraded_and_published_to_the_changelog,
     .timeout = 600)
{
    sl_log_configure(SL_LOG_WARN, 0, NULL);
    const char *bs = tk_bootstrap();
    char in[128], out[128], err[512], state[600], clog[300];
    tk_in_out_topics(bs, "upg", 3, 1, in, out, sizeof(in));
    snprintf(clog, sizeof(clog), "%s-changelog", out);
    char *dir = tk_job_dir("upgrade");
    snprintf(state, sizeof(state), "%s/state", dir);
    const uint64_t n = 120000;
    cr_assert_eq(sl_gen_produce(bs, NULL, in, 3, &SPEC, 0, n / 3, err, sizeof(err)), SL_OK, "%s",
                 err);
    sl_job_stats_t st;
    run_job(dir, bs, in, out, 0, &st);
    cr_assert_eq(st.records_in, n / 3);
    to_layout1(state);
    char text[65536];
    tk_state_totals_t before = tk_state_totals(state, in, text, sizeof(text));
    cr_assert(before.ok && strstr(text, "layout: 1"), "inspect reads layout 1:\n%s", text);
    cr_assert_eq(before.positions, n / 3, "%s", text);
    cr_assert_eq(before.counts, n / 3, "%s", text);

    /* Upgraded, published to the changelog, and on. */
    cr_assert_eq(sl_gen_produce(bs, NULL, in, 3, &SPEC, n / 3, n / 3, err, sizeof(err)), SL_OK,
                 "%s", err);
    run_job(dir, bs, in, out, 1, &st);
    cr_assert_eq(st.records_in, n / 3, "only the new records are read");
    tk_state_totals_t after = tk_state_totals(state, in, text, sizeof(text));
    cr_assert(after.ok && !strstr(text, "layout:"), "upgraded:\n%s", text);
    cr_assert_eq(after.counts, 2 * n / 3, "%s", text);

    /* Lost: the changelog has all of it, the upgraded state included. */
    tk_rmrf(state);
    cr_assert_eq(sl_gen_produce(bs, NULL, in, 3, &SPEC, 2 * n / 3, n / 3, err, sizeof(err)), SL_OK,
                 "%s", err);
    run_job(dir, bs, in, out, 1, &st);
    cr_assert_eq(st.records_in, n / 3, "restored: only the new records are read");
    tk_state_totals_t restored = tk_state_totals(state, in, text, sizeof(text));
    cr_assert_eq(restored.counts, n, "%s", text);
    cr_assert_eq(restored.positions, n, "%s", text);
    tk_eos_verify(bs, out, &SPEC, n, "upgraded from layout 1, then restored");
    tk_delete_topic(bs, in);
    tk_delete_topic(bs, out);
    tk_delete_topic(bs, clog);
    tk_rmrf(dir);
    free(dir);
}
