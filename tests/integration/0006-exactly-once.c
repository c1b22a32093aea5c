/*
 * 0006-exactly-once.c - the exactly-once claim, tested by killing the job.
 *
 * 200,000 page views, each page's records in one partition (so a page's input has one
 * order). The job counts and sums bytes by page into a Kafka topic with exactly-once
 * delivery. It is killed at every named crash point, then at random times with SIGKILL
 * (SLUICE_KILL_CYCLES, 20 by default; the soak runs 1,000), and restarted until it has
 * read everything. The verifier then reads the output topic read_committed and checks,
 * as Kafka Streams' EOS test does, that:
 *   - every row equals the running aggregate of its page over a prefix of that page's
 *     input (no lost or doubly counted record inside the state);
 *   - per page, counts strictly increase (a repeated row is a duplicate) and end at the
 *     exact total (no lost output);
 *   - no (seq, idx) appears twice;
 *   - no transaction is left open (the read_committed end equals the log end).
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sluice/sluice.h"
#include "tk.h"

#define PAGES 300
#define RECORDS 200000

static const sl_gen_spec_t SPEC = {.seed = 77, .pages = PAGES, .users = 1000, .by_page = 1};

typedef struct page_input {
    int64_t *prefix_sum; /* prefix_sum[k]: bytes of the page's first k records */
    int64_t n;
} page_input_t;

static page_input_t *expected(uint64_t n)
{
    page_input_t *pages = calloc(PAGES, sizeof(*pages));
    int64_t *counts = calloc(PAGES, sizeof(int64_t));
    sl_pageview_t pv;
    for (uint64_t i = 0; i < n; i++) {
        sl_gen_pageview(&SPEC, i, &pv);
        counts[atoi(pv.page + 3)]++;
    }
    for (int p = 0; p < PAGES; p++)
        pages[p].prefix_sum = calloc((size_t)counts[p] + 1, sizeof(int64_t));
    for (uint64_t i = 0; i < n; i++) {
        sl_gen_pageview(&SPEC, i, &pv);
        page_input_t *x = &pages[atoi(pv.page + 3)];
        x->prefix_sum[x->n + 1] = x->prefix_sum[x->n] + pv.bytes;
        x->n++;
    }
    free(counts);
    return pages;
}

typedef struct verdict {
    page_input_t *pages;
    int64_t *last_count; /* per page, the count of its last row so far */
    uint64_t rows, not_a_prefix, not_increasing, dup_ids;
    uint64_t *ids;
    size_t nids;
} verdict_t;

static void check_row(void *opaque, const rd_kafka_message_t *m)
{
    verdict_t *v = opaque;
    json_t *row = json_loadb(m->payload, m->len, 0, NULL);
    const char *page = json_string_value(json_object_get(row, "page"));
    cr_assert(page, "a row without a page");
    int p = atoi(page + 3);
    int64_t count = json_integer_value(json_object_get(row, "count"));
    int64_t sum = json_integer_value(json_object_get(row, "sum_bytes"));
    page_input_t *in = &v->pages[p];
    if (count < 1 || count > in->n || in->prefix_sum[count] != sum) {
        if (v->not_a_prefix++ < 5)
            cr_log_error("page %s: row count=%lld sum=%lld is no prefix of its input", page,
                         (long long)count, (long long)sum);
    }
    if (count <= v->last_count[p]) {
        if (v->not_increasing++ < 5)
            cr_log_error("page %s: count %lld after %lld (a duplicate or a step back)", page,
                         (long long)count, (long long)v->last_count[p]);
    } else {
        v->last_count[p] = count;
    }
    rd_kafka_headers_t *h;
    const void *sv, *iv;
    size_t ss, is;
    cr_assert(!rd_kafka_message_headers(m, &h) &&
                  !rd_kafka_header_get_last(h, "sluice-seq", &sv, &ss) &&
                  !rd_kafka_header_get_last(h, "sluice-idx", &iv, &is),
              "a row without sluice headers");
    char buf[48];
    snprintf(buf, sizeof(buf), "%.*s", (int)ss, (const char *)sv);
    uint64_t id = strtoull(buf, NULL, 10) << 32;
    snprintf(buf, sizeof(buf), "%.*s", (int)is, (const char *)iv);
    id |= strtoull(buf, NULL, 10);
    v->ids = realloc(v->ids, (v->nids + 1) * sizeof(uint64_t));
    v->ids[v->nids++] = id;
    v->rows++;
    json_decref(row);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* 1 when a partition's read_committed end (LSO) is below its log end: an open
 * transaction. */
static int open_transactions(const char *bs, const char *topic)
{
    char err[256];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    rd_kafka_conf_set(c, "bootstrap.servers", bs, NULL, 0);
    rd_kafka_conf_set(c, "group.id", "tk-lso", NULL, 0);
    rd_kafka_conf_set(c, "isolation.level", "read_committed", NULL, 0);
    rd_kafka_conf_set(c, "enable.partition.eof", "true", NULL, 0);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, err, sizeof(err));
    cr_assert(rk, "%s", err);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, topic, 0)->offset = RD_KAFKA_OFFSET_END;
    rd_kafka_assign(rk, l);
    int64_t lso = -1;
    for (int i = 0; i < 100 && lso < 0; i++) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
        if (m && m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
            lso = m->offset;
        if (m)
            rd_kafka_message_destroy(m);
    }
    int64_t lo, hi;
    cr_assert(!rd_kafka_query_watermark_offsets(rk, topic, 0, &lo, &hi, 10000));
    rd_kafka_topic_partition_list_destroy(l);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    cr_log_info("%s: read_committed end %lld, log end %lld", topic, (long long)lso, (long long)hi);
    return lso < hi;
}

static void verify(const char *bs, const char *out, uint64_t n, const char *what)
{
    verdict_t v = {.pages = expected(n), .last_count = calloc(PAGES, sizeof(int64_t))};
    tk_consume_all(bs, out, check_row, &v);
    qsort(v.ids, v.nids, sizeof(uint64_t), cmp_u64);
    for (size_t i = 1; i < v.nids; i++)
        v.dup_ids += v.ids[i] == v.ids[i - 1];
    uint64_t missing = 0, pages = 0;
    for (int p = 0; p < PAGES; p++) {
        if (!v.pages[p].n)
            continue;
        pages++;
        if (v.last_count[p] != v.pages[p].n) {
            if (missing++ < 5)
                cr_log_error("page /p/%d: last count %lld, input %lld", p,
                             (long long)v.last_count[p], (long long)v.pages[p].n);
        }
    }
    int open = open_transactions(bs, out);
    cr_log_info("%s: %llu records in, %llu rows out for %llu pages; %llu rows no prefix, %llu "
                "duplicates or steps back, %llu repeated (seq, idx), %llu pages short of "
                "their total, open transactions: %s",
                what, (unsigned long long)n, (unsigned long long)v.rows,
                (unsigned long long)pages, (unsigned long long)v.not_a_prefix,
                (unsigned long long)v.not_increasing, (unsigned long long)v.dup_ids,
                (unsigned long long)missing, open ? "yes" : "no");
    cr_assert_eq(v.not_a_prefix, 0, "%s: rows that are not a prefix aggregate", what);
    cr_assert_eq(v.not_increasing, 0, "%s: duplicated rows", what);
    cr_assert_eq(v.dup_ids, 0, "%s: a (seq, idx) published twice", what);
    cr_assert_eq(missing, 0, "%s: pages whose last row is not their total", what);
    cr_assert(!open, "%s: a transaction was left open", what);
    for (int p = 0; p < PAGES; p++)
        free(v.pages[p].prefix_sum);
    free(v.pages);
    free(v.last_count);
    free(v.ids);
}

typedef struct env {
    const char *bs;
    char in[128], out[128];
    char *dir;
    char job[600], log[600];
} env_t;

static void make_env(env_t *e, const char *in, const char *tag)
{
    e->bs = tk_bootstrap();
    snprintf(e->in, sizeof(e->in), "%s", in);
    tk_unique(e->out, sizeof(e->out), tag);
    tk_create_topic(e->bs, e->out, 1);
    e->dir = tk_tmpdir("sluice-it-eos");
    tk_write_file(e->dir, "pageview.avsc", sl_gen_pageview_schema());
    char json[2048];
    snprintf(json, sizeof(json),
             "{\"name\": \"%s\", \"kafka\": {\"bootstrap.servers\": \"%s\"},"
             " \"source\": {\"topics\": \"%s\", \"schema\": \"pageview.avsc\"},"
             " \"query\": {\"group_by\": \"page\", \"aggregates\": [{\"fn\": \"count\"},"
             "   {\"fn\": \"sum\", \"field\": \"bytes\"}]},"
             " \"trigger\": {\"interval\": \"300ms\", \"max_records\": 7000,"
             "   \"available_now\": true},"
             " \"output\": {\"sink\": \"kafka\", \"topic\": \"%s\"},"
             " \"state\": {\"dir\": \"state\"}}",
             e->out, e->bs, e->in, e->out);
    tk_write_file(e->dir, "job.json", json);
    snprintf(e->job, sizeof(e->job), "%s/job.json", e->dir);
    snprintf(e->log, sizeof(e->log), "%s/sluice.log", e->dir);
}

static void drop_env(env_t *e)
{
    tk_delete_topic(e->bs, e->out);
    tk_rmrf(e->dir);
    free(e->dir);
}

/* Runs the job until it exits 0; the first runs die at the given crash points. */
static int run_to_end(env_t *e, const char *const *crashes)
{
    const char *argv[] = {"run", "--quiet", e->job, NULL};
    int kills = 0;
    for (int run = 0; run < 50; run++) {
        const char *crash = crashes && crashes[run] ? crashes[run] : NULL;
        int rc = tk_wait(tk_spawn_cli(argv, crash, e->log), 300);
        if (rc == 0)
            return kills;
        cr_assert_eq(rc, 128 + SIGKILL, "run %d (SLUICE_CRASH_AT=%s) ended with status %d; "
                                         "log: %s",
                     run, crash ? crash : "", rc, e->log);
        kills++;
    }
    cr_assert_fail("the job did not finish in 50 runs");
    return kills;
}

static char g_in[128];

static void produce_input(void)
{
    const char *bs = tk_bootstrap();
    tk_unique(g_in, sizeof(g_in), "eos-in");
    tk_create_topic(bs, g_in, 3);
    char err[512];
    cr_assert_eq(sl_gen_produce(bs, NULL, g_in, 3, &SPEC, 0, RECORDS, err, sizeof(err)), SL_OK,
                 "%s", err);
}

static void crash_at(const char *const *points, const char *tag)
{
    sl_log_configure(SL_LOG_WARN, 0, NULL);
    produce_input();
    env_t e;
    make_env(&e, g_in, tag);
    int kills = run_to_end(&e, points);
    char what[256];
    snprintf(what, sizeof(what), "crash at %s%s%s (%d kill(s))", points[0],
             points[1] ? " then " : "", points[1] ? points[1] : "", kills);
    cr_assert_eq(kills, points[1] ? 2 : 1, "%s: expected every crash point to be reached",
                 what);
    verify(e.bs, e.out, RECORDS, what);
    drop_env(&e);
    tk_delete_topic(e.bs, g_in);
}

TestSuite(exactly_once, .timeout = 1800);

Test(exactly_once, crash_before_commit)
{
    const char *p[] = {"before-commit:3", NULL};
    crash_at(p, "before-commit");
}

Test(exactly_once, crash_after_commit)
{
    const char *p[] = {"after-commit:3", NULL};
    crash_at(p, "after-commit");
}

Test(exactly_once, crash_mid_publish)
{
    const char *p[] = {"mid-publish:3", NULL};
    crash_at(p, "mid-publish");
}

Test(exactly_once, crash_after_publish_before_outbox_delete)
{
    const char *p[] = {"after-publish-before-outbox-delete:3", NULL};
    crash_at(p, "after-publish");
}

Test(exactly_once, crash_mid_reconcile)
{
    /* A crash after a commit leaves an outbox; the restart dies while reconciling it. */
    const char *p[] = {"after-commit:2", "mid-reconcile:1", NULL};
    crash_at(p, "mid-reconcile");
}

Test(exactly_once, random_kill_9)
{
    sl_log_configure(SL_LOG_WARN, 0, NULL);
    const char *bs = tk_bootstrap();
    const char *cycles_env = getenv("SLUICE_KILL_CYCLES");
    int cycles = cycles_env ? atoi(cycles_env) : 20;
    uint64_t per_cycle = RECORDS / (uint64_t)cycles ? RECORDS / (uint64_t)cycles : 1;
    tk_unique(g_in, sizeof(g_in), "eos-in");
    tk_create_topic(bs, g_in, 3);
    env_t e;
    make_env(&e, g_in, "random");
    const char *argv[] = {"run", "--quiet", e.job, NULL};
    unsigned seed = (unsigned)time(NULL);
    cr_log_info("random kills: seed %u, %d cycles", seed, cycles);
    srand(seed);
    char err[512];
    uint64_t produced = 0;
    int killed = 0, finished = 0;
    for (int c = 0; c < cycles; c++) {
        /* Each cycle brings new input, so each run has work to be killed in. */
        cr_assert_eq(sl_gen_produce(bs, NULL, g_in, 3, &SPEC, produced, per_cycle, err,
                                    sizeof(err)),
                     SL_OK, "%s", err);
        produced += per_cycle;
        int pid = tk_spawn_cli(argv, NULL, e.log);
        usleep((useconds_t)(50000 + rand() % 1500000));
        if (kill(pid, SIGKILL) == 0)
            killed++;
        int rc = tk_wait(pid, 60);
        finished += rc == 0;
        cr_assert(rc == 0 || rc == 128 + SIGKILL, "cycle %d: status %d, log %s", c, rc, e.log);
    }
    int kills = run_to_end(&e, NULL);
    char what[128];
    snprintf(what, sizeof(what), "%d random kill -9 (%d runs finished first)", killed - finished,
             finished);
    verify(bs, e.out, produced, what);
    (void)kills;
    drop_env(&e);
    tk_delete_topic(bs, g_in);
}
