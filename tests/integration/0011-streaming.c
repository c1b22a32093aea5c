/*
 * 0011-streaming.c - the Structured Streaming model end to end on a real broker: windows
 * (tumbling, hopping, session) with a watermark, the three output modes, late records,
 * the idle timeout, derived fields on a text topic, Kafka metadata fields, and the file,
 * memory and foreach-batch sinks. Every result is compared with what the test computes
 * from the records it produced.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "codec/row.h"
#include "sluice/sluice.h"
#include "tk.h"

#define BASE 1700000000000LL /* event times start here (2023-11-14T22:13:20Z) */
#define PAGES 6

static char *dir;

static void setup(void)
{
    sl_log_configure(SL_LOG_WARN, 0, NULL);
    dir = tk_tmpdir("sluice-stream");
}

static void teardown(void)
{
    tk_rmrf(dir);
    free(dir);
}

TestSuite(streaming, .init = setup, .fini = teardown, .timeout = 300);

/* A job on the JSON topic @p in (page, ts, n); @p query and @p output are JSON members. */
static char *job_json(const char *name, const char *in, const char *query, const char *trigger,
                      const char *output)
{
    char *j = malloc(8192);
    snprintf(j, 8192,
             "{\"name\": \"%s\", \"kafka\": {\"bootstrap.servers\": \"%s\"},"
             " \"source\": {\"topics\": \"%s\", \"format\": \"json\","
             "              \"fields\": {\"page\": \"string\", \"ts\": \"timestamp\","
             "                          \"n\": \"long\"}},"
             " \"query\": {%s}, \"trigger\": {%s}, \"output\": {%s},"
             " \"state\": {\"dir\": \"%s/%s\"}}",
             name, tk_bootstrap(), in, query, trigger, output, dir, name);
    return j;
}

/* Runs a job to the end of its input; returns the memory sink's rows (json_decref). */
static json_t *run(const char *json, sl_job_stats_t *st)
{
    tk_job_result_t r = tk_run_job(json, dir);
    cr_assert_eq(r.rc, SL_OK, "%s", r.err);
    if (st)
        *st = r.st;
    return r.rows;
}

static void produce_event(rd_kafka_t *p, const char *topic, int page, int64_t ts, int64_t n)
{
    char rec[200], key[16];
    snprintf(key, sizeof(key), "p%d", page);
    snprintf(rec, sizeof(rec), "{\"page\": \"p%d\", \"ts\": %lld, \"n\": %lld}", page,
             (long long)ts, (long long)n);
    tk_produce(p, topic, -1, key, rec);
}

static int64_t ts_of(json_t *row, const char *col)
{
    const char *s = json_string_value(json_object_get(row, col));
    int64_t ms;
    cr_assert(s && sl__ts_parse(s, strlen(s), &ms) == 0, "%s is not a timestamp", col);
    return ms;
}

static int page_of(json_t *row)
{
    const char *s = json_string_value(json_object_get(row, "page"));
    cr_assert(s && s[0] == 'p', "page column");
    return (int)strtol(s + 1, NULL, 10);
}

/* ---- tumbling windows, append mode, late records ---- */

#define WIN 10000  /* 10 s windows */
#define DELAY 5000 /* 5 s watermark delay */
#define NWIN 10    /* the events of both rounds fall in windows 0..NWIN-1 */

typedef struct expect {
    int64_t count[NWIN][PAGES], sum[NWIN][PAGES];
    int emitted[NWIN][PAGES];
} expect_t;

static void add(expect_t *x, int page, int64_t ts, int64_t n)
{
    int w = (int)((ts - BASE) / WIN);
    x->count[w][page]++;
    x->sum[w][page] += n;
}

static int64_t check_rows(expect_t *x, json_t *rows, int64_t wm)
{
    size_t i;
    json_t *r;
    int64_t n = 0;
    json_array_foreach(rows, i, r)
    {
        int64_t start = ts_of(r, "window_start"), end = ts_of(r, "window_end");
        int w = (int)((start - BASE) / WIN), p = page_of(r);
        cr_assert(w >= 0 && w < NWIN && start == BASE + (int64_t)w * WIN && end == start + WIN,
                  "window [%lld, %lld)", (long long)start, (long long)end);
        cr_assert(end <= wm, "a window is emitted only once the watermark passed its end");
        cr_assert(!x->emitted[w][p]++, "window %d of p%d emitted twice", w, p);
        cr_assert_eq(json_integer_value(json_object_get(r, "count")), x->count[w][p],
                     "window %d p%d: count", w, p);
        cr_assert_eq(json_integer_value(json_object_get(r, "sum_n")), x->sum[w][p],
                     "window %d p%d: sum", w, p);
        n++;
    }
    return n;
}

static void count_record(void *opaque, const rd_kafka_message_t *m)
{
    (*(int *)opaque)++;
}

Test(streaming, tumbling_append_with_late_records)
{
    const char *bs = tk_bootstrap();
    char in[128], late[128], name[128];
    tk_unique(in, sizeof(in), "win-in");
    tk_unique(late, sizeof(late), "win-late");
    tk_unique(name, sizeof(name), "win");
    tk_create_topic(bs, in, 3);
    tk_create_topic(bs, late, 1);
    expect_t x;
    memset(&x, 0, sizeof(x));

    /* Round 1: 60 s of events, up to 1.8 s out of order (less than the delay). */
    rd_kafka_t *p = tk_producer(bs);
    int64_t maxev = 0;
    for (int i = 0; i < 3000; i++) {
        int64_t ts = BASE + 2000 + i * 20LL - (i % 7) * 300, n = i % 11;
        int page = (i * 7) % PAGES;
        produce_event(p, in, page, ts, n);
        add(&x, page, ts, n);
        maxev = ts > maxev ? ts : maxev;
    }
    cr_assert(!rd_kafka_flush(p, 30000));
    char query[1024];
    snprintf(query, sizeof(query),
             "\"window\": {\"time\": \"ts\", \"size\": \"10s\"},"
             " \"watermark\": {\"field\": \"ts\", \"delay\": \"5s\", \"late_topic\": \"%s\"},"
             " \"group_by\": \"page\","
             " \"aggregates\": [{\"fn\": \"count\"}, {\"fn\": \"sum\", \"field\": \"n\"}]",
             late);
    char *job = job_json(name, in, query, "\"available_now\": true, \"max_records\": 500",
                         "\"sink\": \"memory\", \"mode\": \"append\"");
    sl_job_stats_t st;
    json_t *rows = run(job, &st);
    int64_t wm1 = maxev - DELAY;
    cr_assert_eq(st.watermark_ms, wm1, "watermark %lld, expected %lld (max event time %lld)",
                 (long long)st.watermark_ms, (long long)wm1, (long long)maxev);
    int64_t n1 = check_rows(&x, rows, wm1);
    cr_assert_eq(n1, 5 * PAGES, "windows 0-4 closed by the watermark %lld", (long long)wm1);
    cr_assert_eq(st.records_late, 0);
    json_decref(rows);

    /* Round 2: 40 records for the closed window 1 (late), then 20 s more. */
    for (int i = 0; i < 40; i++)
        produce_event(p, in, i % PAGES, BASE + WIN + 500 + i, 1000);
    for (int i = 0; i < 1000; i++) {
        int64_t ts = maxev + 1 + i * 20LL, n = i % 13;
        int page = i % PAGES;
        produce_event(p, in, page, ts, n);
        add(&x, page, ts, n);
    }
    int64_t maxev2 = maxev + 1 + 999 * 20LL;
    cr_assert(!rd_kafka_flush(p, 30000));
    rd_kafka_destroy(p);
    rows = run(job, &st);
    int64_t wm2 = maxev2 - DELAY;
    int64_t n2 = check_rows(&x, rows, wm2);
    cr_log_info("append: %lld + %lld windows emitted, %llu late records", (long long)n1,
                (long long)n2, (unsigned long long)st.records_late);
    cr_assert_eq(st.records_late, 40, "late records are counted, not dropped silently");
    int nlate = 0;
    tk_consume_all(bs, late, count_record, &nlate);
    cr_assert_eq(nlate, 40, "and copied to the late topic");
    /* Every window that the final watermark closed was emitted exactly once. */
    for (int w = 0; w < NWIN; w++) {
        for (int pg = 0; pg < PAGES; pg++) {
            int closed = BASE + (int64_t)(w + 1) * WIN <= wm2 && x.count[w][pg];
            cr_assert_eq(x.emitted[w][pg], closed, "window %d p%d: emitted %d, closed %d", w, pg,
                         x.emitted[w][pg], closed);
        }
    }
    cr_assert_gt(st.windows_closed, 0);
    json_decref(rows);
    free(job);
    tk_delete_topic(bs, in);
    tk_delete_topic(bs, late);
}

/* ---- hopping windows, update mode ---- */

Test(streaming, hopping_update_and_state_eviction)
{
    const char *bs = tk_bootstrap();
    char in[128], name[128];
    tk_unique(in, sizeof(in), "hop-in");
    tk_unique(name, sizeof(name), "hop");
    tk_create_topic(bs, in, 2);
    /* Windows of 10 s every 5 s: window k is [BASE + 5k, BASE + 5k + 10) seconds. */
    int64_t count[40][PAGES] = {{0}};
    rd_kafka_t *p = tk_producer(bs);
    for (int i = 0; i < 2000; i++) {
        int64_t ts = BASE + i * 50LL;
        int page = i % PAGES;
        produce_event(p, in, page, ts, 1);
        int k = (int)((ts - BASE) / 5000);
        count[k][page]++;
        if (k > 0)
            count[k - 1][page]++;
    }
    cr_assert(!rd_kafka_flush(p, 30000));
    rd_kafka_destroy(p);
    char *job = job_json(name, in,
                         "\"window\": {\"time\": \"ts\", \"size\": \"10 seconds\", "
                         "\"slide\": \"5 seconds\"}, \"watermark\": {\"field\": \"ts\", "
                         "\"delay\": \"2s\"}, \"group_by\": [\"page\"], \"aggregates\": "
                         "[{\"fn\": \"count\"}]",
                         "\"available_now\": true, \"max_records\": 300", "\"sink\": \"memory\"");
    sl_job_stats_t st;
    json_t *rows = run(job, &st);
    /* Update mode: the last row of each (window, page) is its full count. */
    int64_t last[40][PAGES];
    memset(last, 0xff, sizeof(last));
    size_t i;
    json_t *r;
    json_array_foreach(rows, i, r)
    {
        int64_t start = ts_of(r, "window_start");
        cr_assert(start == BASE - 5000 || (start - BASE) % 5000 == 0);
        int k = (int)((start - BASE) / 5000);
        if (start < BASE)
            k = -1;
        int64_t c = json_integer_value(json_object_get(r, "count"));
        if (k >= 0) {
            cr_assert(c > last[k][page_of(r)], "counts of a window only grow");
            last[k][page_of(r)] = c;
        }
    }
    int windows = 0;
    for (int k = 0; k < 40; k++) {
        for (int pg = 0; pg < PAGES; pg++) {
            if (count[k][pg]) {
                windows++;
                cr_assert_eq(last[k][pg], count[k][pg], "window %d p%d: %lld, expected %lld", k, pg,
                             (long long)last[k][pg], (long long)count[k][pg]);
            }
        }
    }
    /* The watermark (last event - 2 s) closed all but the last few windows, and their
     * state was dropped. */
    int64_t wm = BASE + 1999 * 50LL - 2000;
    uint64_t closed = 0;
    for (int k = -1; k < 40; k++) {
        for (int pg = 0; pg < PAGES; pg++) {
            int64_t end = BASE + k * 5000LL + 10000;
            int any = k < 0 ? count[0][pg] > 0 : (count[k][pg] > 0);
            if (any && end <= wm)
                closed++;
        }
    }
    cr_log_info("hopping: %d windows, %llu closed by the watermark", windows,
                (unsigned long long)st.windows_closed);
    cr_assert_eq(st.windows_closed, closed);
    /* `sluice inspect` decodes the open windows' state. */
    char state[700], text[65536];
    snprintf(state, sizeof(state), "%s/%s", dir, name);
    tk_state_totals_t tot = tk_state_totals(state, "", text, sizeof(text));
    cr_assert(tot.ok, "%s", text);
    cr_assert(strstr(text, "page=p0 window_start=2023-11-14 22:14:") &&
                  strstr(text, "window_end=2023-11-14 22:15:"),
              "inspect shows the windows:\n%s", text);
    json_decref(rows);
    free(job);
    tk_delete_topic(bs, in);
}

/* ---- session windows across batches, complete mode ---- */

#define USERS 5
#define GAP 3000

typedef struct ev {
    int user;
    int64_t ts;
} ev_t;

static int cmp_ts(const void *a, const void *b)
{
    const ev_t *x = a, *y = b;
    return x->ts < y->ts ? -1 : x->ts > y->ts;
}

Test(streaming, sessions_merge_across_batches)
{
    const char *bs = tk_bootstrap();
    char in[128], name[128];
    tk_unique(in, sizeof(in), "ses-in");
    tk_unique(name, sizeof(name), "ses");
    tk_create_topic(bs, in, 1);
    /* Per user: bursts of events 0.2-2.5 s apart, bursts 4-9 s apart; sent in an order
     * where a late-arriving event bridges two sessions already stored. */
    ev_t evs[2000];
    int n = 0;
    unsigned seed = 7;
    for (int u = 0; u < USERS; u++) {
        int64_t t = BASE + u * 1000;
        for (int b = 0; b < 12; b++) {
            int len = 1 + (int)(rand_r(&seed) % 10);
            for (int k = 0; k < len; k++) {
                evs[n++] = (ev_t){u, t};
                t += 200 + rand_r(&seed) % 2300;
            }
            t += 4000 + rand_r(&seed) % 5000;
        }
    }
    /* Send in time order, except every 9th event goes last. */
    qsort(evs, (size_t)n, sizeof(ev_t), cmp_ts);
    rd_kafka_t *p = tk_producer(bs);
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < n; i++) {
            if ((i % 9 == 4) != pass)
                continue;
            produce_event(p, in, evs[i].user, evs[i].ts, 1);
        }
    }
    cr_assert(!rd_kafka_flush(p, 30000));
    rd_kafka_destroy(p);
    /* The sessions, merged as Spark merges them: a session is [first, last + gap), and
     * two sessions merge when the next starts at or before the current one ends. */
    int64_t s_start[USERS][200], s_end[USERS][200], s_count[USERS][200];
    int ns[USERS] = {0};
    for (int i = 0; i < n; i++) {
        int u = evs[i].user, k = ns[u];
        if (k && evs[i].ts <= s_end[u][k - 1]) {
            if (evs[i].ts + GAP > s_end[u][k - 1])
                s_end[u][k - 1] = evs[i].ts + GAP;
            s_count[u][k - 1]++;
        } else {
            s_start[u][k] = evs[i].ts;
            s_end[u][k] = evs[i].ts + GAP;
            s_count[u][k] = 1;
            ns[u]++;
        }
    }
    char *job = job_json(name, in,
                         "\"window\": {\"time\": \"ts\", \"gap\": \"3s\"}, \"group_by\": "
                         "\"page\", \"aggregates\": [{\"fn\": \"count\"}, {\"fn\": \"first\", "
                         "\"field\": \"n\"}, {\"fn\": \"max\", \"field\": \"ts\"}]",
                         "\"available_now\": true, \"max_records\": 7",
                         "\"sink\": \"memory\", \"mode\": \"complete\"");
    json_t *rows = run(job, NULL);
    /* Complete mode: the memory sink holds the last batch's whole table. */
    int total = 0;
    for (int u = 0; u < USERS; u++)
        total += ns[u];
    cr_assert_eq(json_array_size(rows), (size_t)total, "sessions: %zu, expected %d",
                 json_array_size(rows), total);
    size_t i;
    json_t *r;
    json_array_foreach(rows, i, r)
    {
        int u = page_of(r);
        int64_t start = ts_of(r, "window_start"), end = ts_of(r, "window_end");
        int found = 0;
        for (int k = 0; k < ns[u]; k++) {
            if (s_start[u][k] == start) {
                found = 1;
                cr_assert_eq(end, s_end[u][k], "user %d session at %lld: end", u, (long long)start);
                cr_assert_eq(json_integer_value(json_object_get(r, "count")), s_count[u][k],
                             "user %d session at %lld: count", u, (long long)start);
                cr_assert_eq(ts_of(r, "max_ts"), end - GAP, "the last event ends it");
            }
        }
        cr_assert(found, "user %d: no session starts at %lld", u, (long long)start);
    }
    json_decref(rows);
    free(job);
    tk_delete_topic(bs, in);
}

/* ---- complete mode on Kafka metadata, and an incompatible restart ---- */

Test(streaming, complete_mode_metadata_fields_and_upgrade_check)
{
    const char *bs = tk_bootstrap();
    char in[128], name[128];
    tk_unique(in, sizeof(in), "meta-in");
    tk_unique(name, sizeof(name), "meta");
    tk_create_topic(bs, in, 4);
    rd_kafka_t *p = tk_producer(bs);
    int64_t per_part[4] = {0}, distinct[4] = {0};
    int seen[4][PAGES] = {{0}};
    for (int i = 0; i < 1000; i++) {
        char rec[128];
        int part = (i / 3) % 4, page = i % PAGES;
        snprintf(rec, sizeof(rec), "{\"page\": \"p%d\", \"ts\": %lld, \"n\": %d}", page,
                 (long long)(BASE + i), i);
        tk_produce(p, in, part, NULL, rec);
        per_part[part]++;
        distinct[part] += !seen[part][page]++;
    }
    cr_assert(!rd_kafka_flush(p, 30000));
    rd_kafka_destroy(p);
    char *job = job_json(name, in,
                         "\"group_by\": [{\"expr\": \"_partition\", \"as\": \"part\"}], "
                         "\"aggregates\": [{\"fn\": \"count\"}, {\"fn\": \"max\", \"field\": "
                         "\"_offset\", \"as\": \"last_offset\"}, {\"fn\": \"count_distinct\", "
                         "\"field\": \"page\"}]",
                         "\"available_now\": true, \"max_records\": 100",
                         "\"sink\": \"memory\", \"mode\": \"complete\"");
    json_t *rows = run(job, NULL);
    size_t i;
    json_t *r;
    int64_t total = 0;
    json_array_foreach(rows, i, r)
    {
        int part = (int)json_integer_value(json_object_get(r, "part"));
        cr_assert(part >= 0 && part < 4);
        cr_assert_eq(json_integer_value(json_object_get(r, "count")), per_part[part]);
        cr_assert_eq(json_integer_value(json_object_get(r, "last_offset")), per_part[part] - 1);
        cr_assert_eq(json_integer_value(json_object_get(r, "count_distinct_page")), distinct[part]);
        total += per_part[part];
    }
    cr_assert_eq(total, 1000, "complete mode shows every key, not only the last batch's");
    json_decref(rows);

    /* The same state with another grouping is refused, naming the change. */
    char *other =
        job_json(name, in, "\"group_by\": \"page\", \"aggregates\": [{\"fn\": \"count\"}]",
                 "\"available_now\": true", "\"sink\": \"memory\"");
    sl_job_t *j;
    char err[4096];
    cr_assert_eq(sl_job_new_from_json(other, dir, "job.json", &j, err, sizeof(err)), SL_OK);
    cr_assert_eq(sl_job_run(j, err, sizeof(err)), SL_ERR_MISMATCH);
    cr_assert(strstr(err, "incompatible job: "), "%s", err);
    cr_assert(strstr(err, "group_by changed from [{\"name\":\"part\""), "%s", err);
    cr_assert(strstr(err, "output_mode changed from \"complete\" to \"update\""), "%s", err);
    sl_job_destroy(j);
    free(other);
    /* A new trigger and a new filter are compatible. */
    other = job_json(name, in,
                     "\"where\": \"n >= 0\", \"group_by\": [{\"expr\": \"_partition\", \"as\": "
                     "\"part\"}], \"aggregates\": [{\"fn\": \"count\"}, {\"fn\": \"max\", "
                     "\"field\": \"_offset\", \"as\": \"last_offset\"}, {\"fn\": "
                     "\"count_distinct\", \"field\": \"page\"}]",
                     "\"available_now\": true, \"interval\": \"1s\"",
                     "\"sink\": \"memory\", \"mode\": \"complete\"");
    json_decref(run(other, NULL));
    free(other);
    free(job);
    tk_delete_topic(bs, in);
}

/* ---- a text topic: length(value), files, pass-through ---- */

static int cmp_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The rows of every batch file in @p path, in batch order. */
static json_t *read_files(const char *path, int *nfiles)
{
    DIR *d = opendir(path);
    cr_assert(d, "output dir %s", path);
    struct dirent *de;
    char *names[1000];
    int n = 0;
    while ((de = readdir(d))) {
        cr_assert(de->d_name[0] != '.' || !strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."),
                  "a temporary file was left: %s", de->d_name);
        if (!strncmp(de->d_name, "batch-", 6))
            names[n++] = strdup(de->d_name);
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof(char *), cmp_name);
    json_t *rows = json_array();
    for (int i = 0; i < n; i++) {
        char full[2048];
        snprintf(full, sizeof(full), "%s/%s", path, names[i]);
        FILE *f = fopen(full, "r");
        cr_assert(f);
        char line[4096];
        while (fgets(line, sizeof(line), f)) {
            json_t *row = json_loads(line, 0, NULL);
            cr_assert(json_is_object(row), "%s: not a JSON line: %s", names[i], line);
            json_array_append_new(rows, row);
        }
        fclose(f);
        free(names[i]);
    }
    *nfiles = n;
    return rows;
}

Test(streaming, text_lines_to_files)
{
    const char *bs = tk_bootstrap();
    char in[128], name[128], out[600];
    tk_unique(in, sizeof(in), "txt-in");
    tk_unique(name, sizeof(name), "txt");
    tk_create_topic(bs, in, 2);
    rd_kafka_t *p = tk_producer(bs);
    int64_t by_len[64] = {0};
    static const char *words[] = {"a", "to be", "or not", "to be that", "is the question", ""};
    for (int i = 0; i < 600; i++) {
        const char *w = words[i % 6];
        char line[64];
        snprintf(line, sizeof(line), "%s\n", w); /* lines keep their newline */
        tk_produce(p, in, -1, NULL, line);
        by_len[strlen(w)]++;
    }
    cr_assert(!rd_kafka_flush(p, 30000));
    rd_kafka_destroy(p);
    snprintf(out, sizeof(out), "%s/files", dir);
    char job[4096];
    snprintf(job, sizeof(job),
             "{\"name\": \"%s\", \"kafka\": {\"bootstrap.servers\": \"%s\"},"
             " \"source\": {\"topics\": \"%s\", \"format\": \"text\"},"
             " \"query\": {\"group_by\": [{\"expr\": \"length(value)\", \"as\": \"len\"}],"
             "             \"aggregates\": [{\"fn\": \"count\"}]},"
             " \"trigger\": {\"available_now\": true, \"max_records\": 150},"
             " \"output\": {\"sink\": \"file\", \"path\": \"%s\"},"
             " \"state\": {\"dir\": \"%s/%s\"}}",
             name, bs, in, out, dir, name);
    json_decref(run(job, NULL));
    int nfiles;
    json_t *rows = read_files(out, &nfiles);
    cr_assert_geq(nfiles, 4, "one file per batch of at most 150 records");
    int64_t last[64] = {0};
    size_t i;
    json_t *r;
    json_array_foreach(rows, i, r)
    {
        int len = (int)json_integer_value(json_object_get(r, "len"));
        cr_assert(len >= 0 && len < 64);
        last[len] = json_integer_value(json_object_get(r, "count"));
    }
    for (int len = 0; len < 64; len++)
        cr_assert_eq(last[len], by_len[len], "length %d: %lld, expected %lld", len,
                     (long long)last[len], (long long)by_len[len]);
    json_decref(rows);

    /* Records passed through a filter and a projection (append mode). */
    char name2[200];
    snprintf(name2, sizeof(name2), "%s-pass", name);
    snprintf(job, sizeof(job),
             "{\"name\": \"%s\", \"kafka\": {\"bootstrap.servers\": \"%s\"},"
             " \"source\": {\"topics\": \"%s\", \"format\": \"text\"},"
             " \"query\": {\"where\": \"length(value) > 5\","
             "             \"select\": [{\"expr\": \"upper(value)\", \"as\": \"line\"},"
             "                          {\"expr\": \"length(value)\", \"as\": \"len\"}]},"
             " \"trigger\": {\"available_now\": true},"
             " \"output\": {\"sink\": \"memory\", \"mode\": \"append\"},"
             " \"state\": {\"dir\": \"%s/%s\"}}",
             name2, bs, in, dir, name2);
    rows = run(job, NULL);
    cr_assert_eq(json_array_size(rows), 300, "3 of 6 lines are longer than 5");
    json_array_foreach(rows, i, r)
    {
        const char *line = json_string_value(json_object_get(r, "line"));
        cr_assert(line && (!strcmp(line, "OR NOT") || !strcmp(line, "TO BE THAT") ||
                           !strcmp(line, "IS THE QUESTION")),
                  "row %zu: %s", i, line);
        cr_assert_eq(json_integer_value(json_object_get(r, "len")), (json_int_t)strlen(line));
    }
    json_decref(rows);
    tk_delete_topic(bs, in);
}

/* ---- foreach batch ---- */

typedef struct seen_batches {
    int64_t last_id;
    int calls;
    int64_t rows, sum;
} seen_batches_t;

static void on_batch(void *opaque, int64_t id, const sl_batch_t *b)
{
    seen_batches_t *s = opaque;
    cr_assert_gt(id, s->last_id, "batch ids increase");
    s->last_id = id;
    s->calls++;
    cr_assert_eq(sl_batch_columns(b), 2);
    cr_assert_str_eq(sl_batch_column_name(b, 0), "page");
    cr_assert_str_eq(sl_batch_column_type(b, 1), "long");
    for (size_t r = 0; r < sl_batch_rows(b); r++) {
        size_t len;
        const char *page = sl_batch_string(b, r, 0, &len);
        cr_assert(page && len == 2 && page[0] == 'p');
        s->rows++;
        s->sum += sl_batch_long(b, r, 1);
        char *json = sl_batch_row_json(b, r);
        cr_assert(json && strstr(json, "\"page\":"));
        free(json);
    }
}

Test(streaming, foreach_batch_callback)
{
    const char *bs = tk_bootstrap();
    char in[128], name[128];
    tk_unique(in, sizeof(in), "fe-in");
    tk_unique(name, sizeof(name), "fe");
    tk_create_topic(bs, in, 2);
    rd_kafka_t *p = tk_producer(bs);
    for (int i = 0; i < 500; i++)
        produce_event(p, in, i % PAGES, BASE + i, 1);
    cr_assert(!rd_kafka_flush(p, 30000));
    rd_kafka_destroy(p);
    char *json = job_json(name, in, "\"group_by\": \"page\", \"aggregates\": [{\"fn\": \"count\"}]",
                          "\"available_now\": true, \"max_records\": 100",
                          "\"sink\": \"foreach\", \"mode\": \"complete\"");
    sl_job_t *job;
    char err[4096];
    cr_assert_eq(sl_job_new_from_json(json, dir, "job.json", &job, err, sizeof(err)), SL_OK);
    cr_assert_eq(sl_job_run(job, err, sizeof(err)), SL_ERR_INVAL, "no callback set");
    cr_assert(strstr(err, "sl_job_set_foreach_batch"), "%s", err);
    seen_batches_t s = {0};
    sl_job_set_foreach_batch(job, on_batch, &s);
    cr_assert_eq(sl_job_run(job, err, sizeof(err)), SL_OK, "%s", err);
    sl_job_destroy(job);
    cr_assert_geq(s.calls, 5);
    /* Complete mode: the last batch held every page with its full count. */
    cr_assert_eq(s.last_id, s.calls);
    free(json);
    tk_delete_topic(bs, in);
}

/* ---- idle timeout ---- */

Test(streaming, idle_timeout_closes_the_last_window)
{
    const char *bs = tk_bootstrap();
    char in[128], name[128];
    tk_unique(in, sizeof(in), "idle-in");
    tk_unique(name, sizeof(name), "idle");
    tk_create_topic(bs, in, 1);
    rd_kafka_t *p = tk_producer(bs);
    for (int i = 0; i < 100; i++)
        produce_event(p, in, 0, BASE + i * 100LL, 1); /* 10 s: windows of 2 s, 0..4 */
    cr_assert(!rd_kafka_flush(p, 30000));
    rd_kafka_destroy(p);
    char *json = job_json(name, in,
                          "\"window\": {\"time\": \"ts\", \"size\": \"2s\"}, \"watermark\": "
                          "{\"field\": \"ts\", \"delay\": \"0s\", \"idle_timeout\": \"1s\"}, "
                          "\"group_by\": \"page\", \"aggregates\": [{\"fn\": \"count\"}]",
                          "\"interval\": \"200ms\"", "\"sink\": \"memory\", \"mode\": \"append\"");
    tk_runner_t r;
    sl_job_t *job = tk_start_job(json, dir, &r);
    /* Without new records, only the idle timeout can close the last window [8 s, 10 s). */
    size_t got = 0;
    for (int i = 0; i < 300 && got < 5; i++) {
        usleep(100000);
        json_t *doc = tk_memory_rows(job);
        got = json_array_size(doc);
        json_decref(doc);
    }
    sl_job_stop(job);
    tk_runner_join(&r);
    cr_assert_eq(r.rc, SL_OK, "%s", r.err);
    cr_assert_eq(got, 5, "all five windows emitted, the last through the idle timeout");
    json_t *doc = tk_memory_rows(job);
    size_t i;
    json_t *row;
    json_array_foreach(doc, i, row)
        cr_assert_eq(json_integer_value(json_object_get(row, "count")), 20);
    json_decref(doc);
    sl_job_destroy(job);
    free(json);
    tk_delete_topic(bs, in);
}
