/*
 * 0001-aggregate.c - the foundation, end to end on a real Kafka broker.
 *
 * 1,000,000 Avro page views with a known distribution over 6 partitions; the job counts,
 * sums, and takes min/max/avg by page (with a where filter) into a Kafka topic. The latest
 * output row per page must equal the aggregate recomputed here from the generator.
 * Then 100,000 more records: totals continue from the stored state (not reset, not
 * doubled). Then the state directory is deleted: the job reprocesses from the earliest
 * offsets and reaches the same totals.
 */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/sluice.h"
#include "sluice/sluice_dev.h"
#include "tk.h"

#define PAGES 1000
#define FIRST_RUN 1000000
#define SECOND_RUN 100000

static const sl_gen_spec_t SPEC = {
    .seed = 42, .pages = PAGES, .users = 5000, .start_ms = 1764000000000LL};

typedef struct expected {
    int64_t count, sum_bytes, min_lat, max_lat, sum_lat;
} expected_t;

/* The query of the job, recomputed directly from the generated records. */
static json_t *expected_rows(uint64_t n)
{
    expected_t *e = calloc(PAGES, sizeof(*e));
    for (uint64_t i = 0; i < n; i++) {
        sl_pageview_t pv;
        sl_gen_pageview(&SPEC, i, &pv);
        if (!(pv.latency_ms >= 0))
            continue;
        int page = (int)strtol(pv.page + 3, NULL, 10);
        expected_t *x = &e[page];
        if (!x->count || pv.latency_ms < x->min_lat)
            x->min_lat = pv.latency_ms;
        if (!x->count || pv.latency_ms > x->max_lat)
            x->max_lat = pv.latency_ms;
        x->count++;
        x->sum_bytes += pv.bytes;
        x->sum_lat += pv.latency_ms;
    }
    json_t *rows = json_object();
    for (int p = 0; p < PAGES; p++) {
        if (!e[p].count)
            continue;
        char page[32];
        snprintf(page, sizeof(page), "/p/%d", p);
        json_object_set_new(
            rows, page,
            json_pack("{s:s,s:I,s:I,s:I,s:I,s:f}", "page", page, "views", (json_int_t)e[p].count,
                      "sum_bytes", (json_int_t)e[p].sum_bytes, "min_latency_ms",
                      (json_int_t)e[p].min_lat, "max_latency_ms", (json_int_t)e[p].max_lat,
                      "avg_latency_ms", (double)e[p].sum_lat / (double)e[p].count));
    }
    free(e);
    return rows;
}

typedef struct reader {
    json_t *latest; /* page -> last row seen */
    uint64_t bad_key, no_headers;
} reader_t;

static void on_row(void *opaque, const rd_kafka_message_t *m)
{
    reader_t *r = opaque;
    json_t *v = json_loadb(m->payload, m->len, 0, NULL);
    json_t *k = json_loadb(m->key, m->key_len, 0, NULL);
    cr_assert(v, "an output value is not JSON: %.*s", (int)m->len, (const char *)m->payload);
    const char *page = json_string_value(json_object_get(v, "page"));
    cr_assert(page, "an output row has no page");
    if (!k || json_object_size(k) != 1 ||
        !json_equal(json_object_get(k, "page"), json_object_get(v, "page")))
        r->bad_key++;
    char job[128];
    int task;
    int64_t seq, idx;
    if (tk_row_id(m, job, sizeof(job), &task, &seq, &idx) || !job[0] || task != 0 || seq < 1 ||
        idx < 0)
        r->no_headers++;
    json_object_set_new(r->latest, page, v);
    json_decref(k);
}

/* Checks every page's latest row against the input; the rows read. */
static uint64_t compare(const char *bootstrap, const char *topic, uint64_t n, const char *when)
{
    reader_t r = {.latest = json_object()};
    uint64_t rows = tk_consume_all(bootstrap, topic, on_row, &r);
    json_t *want = expected_rows(n);
    size_t wrong = 0, missing = 0;
    const char *page;
    json_t *w;
    json_object_foreach(want, page, w)
    {
        json_t *got = json_object_get(r.latest, page);
        if (!got) {
            missing++;
        } else if (!json_equal(got, w)) {
            if (wrong++ < 3) {
                char *a = json_dumps(w, JSON_SORT_KEYS), *b = json_dumps(got, JSON_SORT_KEYS);
                cr_log_error("%s: page %s\n  expected %s\n  got      %s", when, page, a, b);
                free(a);
                free(b);
            }
        }
    }
    cr_log_info("%s: %" PRIu64 " input records, %" PRIu64 " output rows read, %zu keys "
                "expected, %zu keys seen, %zu wrong, %zu missing",
                when, n, rows, json_object_size(want), json_object_size(r.latest), wrong, missing);
    cr_assert_eq(wrong, 0, "%s: %zu keys have a wrong latest row", when, wrong);
    cr_assert_eq(missing, 0, "%s: %zu keys have no row", when, missing);
    cr_assert_eq(json_object_size(r.latest), json_object_size(want), "%s: unexpected keys", when);
    cr_assert_eq(r.bad_key, 0, "%s: rows whose message key is not {\"page\": ...}", when);
    cr_assert_eq(r.no_headers, 0, "%s: rows without sluice headers", when);
    json_decref(want);
    json_decref(r.latest);
    return rows;
}

/* Runs the job to the end of its input; @p changelog: its state has a changelog. */
static void run_job(const char *dir, const char *bootstrap, const char *in, const char *out,
                    int changelog, sl_job_stats_t *st)
{
    char json[4096], err[4096] = "";
    snprintf(json, sizeof(json),
             "{\"name\": \"%s\","
             " \"kafka\": {\"bootstrap.servers\": \"%s\"},"
             " \"source\": {\"topics\": [\"%s\"], \"format\": \"avro\","
             "              \"schema\": \"pageview.avsc\"},"
             " \"query\": {\"where\": \"latency_ms >= 0\", \"group_by\": [\"page\"],"
             "   \"aggregates\": [{\"fn\": \"count\", \"as\": \"views\"},"
             "     {\"fn\": \"sum\", \"field\": \"bytes\"},"
             "     {\"fn\": \"min\", \"field\": \"latency_ms\"},"
             "     {\"fn\": \"max\", \"field\": \"latency_ms\"},"
             "     {\"fn\": \"avg\", \"field\": \"latency_ms\"}]},"
             " \"trigger\": {\"interval\": \"1s\", \"available_now\": true},"
             " \"output\": {\"mode\": \"update\", \"sink\": \"kafka\", \"topic\": \"%s\"},"
             " \"state\": {\"dir\": \"state\", \"changelog\": %s}}",
             out, bootstrap, in, out, changelog ? "true" : "false");
    sl_job_t *job;
    cr_assert_eq(sl_job_new_from_json(json, dir, "it-aggregate", &job, err, sizeof(err)), SL_OK,
                 "%s", err);
    cr_assert_eq(sl_job_run(job, err, sizeof(err)), SL_OK, "run: %s", err);
    sl_job_stats(job, st, sizeof(*st));
    cr_log_info("job: %" PRIu64 " batches, %" PRIu64 " records in, %" PRIu64 " kept, %" PRIu64
                " rows out",
                st->batches, st->records_in, st->records_kept, st->rows_out);
    sl_job_destroy(job);
}

Test(integration, totals_continue_and_replay, .timeout = 1200)
{
    sl_log_configure(SL_LOG_WARN, 0, NULL);
    const char *bs = tk_bootstrap();
    char in[128], out[128], err[512];
    tk_in_out_topics(bs, "agg", 6, 3, in, out, sizeof(in));
    char *dir = tk_job_dir("agg");
    sl_job_stats_t st;

    cr_assert_eq(sl_gen_produce(bs, NULL, in, 6, &SPEC, 0, FIRST_RUN, err, sizeof(err)), SL_OK,
                 "%s", err);
    run_job(dir, bs, in, out, 1, &st);
    cr_assert_eq(st.records_in, FIRST_RUN, "every record read exactly once");
    uint64_t rows1 = compare(bs, out, FIRST_RUN, "first run");

    cr_assert_eq(sl_gen_produce(bs, NULL, in, 6, &SPEC, FIRST_RUN, SECOND_RUN, err, sizeof(err)),
                 SL_OK, "%s", err);
    run_job(dir, bs, in, out, 1, &st);
    cr_assert_eq(st.records_in, SECOND_RUN, "the second run reads only the new records");
    uint64_t rows2 = compare(bs, out, FIRST_RUN + SECOND_RUN, "second run (continues from the state)");
    cr_assert_gt(rows2, rows1);

    /* The state directory lost: the changelog has the state and the positions, so nothing
     * is read again and no row is published again. */
    char state[600];
    snprintf(state, sizeof(state), "%s/state", dir);
    tk_rmrf(state);
    run_job(dir, bs, in, out, 1, &st);
    cr_assert_eq(st.records_in, 0, "restored from the changelog, nothing is reread");
    cr_assert_eq(st.rows_out, 0);
    cr_assert_eq(compare(bs, out, FIRST_RUN + SECOND_RUN, "third run (state restored)"), rows2,
                 "no row published again");
    tk_state_totals_t tt = tk_state_totals(state, in, NULL, 0);
    cr_assert(tt.ok);
    cr_assert_eq(tt.positions, FIRST_RUN + SECOND_RUN, "the positions came back");

    /* Without a changelog the state is the directory's only: lost, the input is read
     * again from the start. */
    tk_rmrf(state);
    run_job(dir, bs, in, out, 0, &st);
    cr_assert_eq(st.records_in, FIRST_RUN + SECOND_RUN, "without state, everything is reread");
    compare(bs, out, FIRST_RUN + SECOND_RUN, "fourth run (no changelog, replayed)");
    char clog[300];
    snprintf(clog, sizeof(clog), "%s-changelog", out);
    tk_delete_topic(bs, clog);

    tk_delete_topic(bs, in);
    tk_delete_topic(bs, out);
    tk_rmrf(dir);
    free(dir);
}
