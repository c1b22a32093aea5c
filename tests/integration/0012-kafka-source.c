/*
 * 0012-kafka-source.c - the Kafka source's options on a real broker: starting offsets
 * (latest, per partition, by timestamp) used only when the state has no position, topic
 * patterns (a new matching topic is picked up from its start), headers as fields,
 * data lost to retention before the job starts or while it runs behind it (the job stops
 * naming what was lost, or skips and counts it),
 * and the minimum batch size with its maximum delay.
 */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sluice/sluice.h"
#include "tk.h"

static char *dir;

static void setup(void)
{
    sl_log_configure(SL_LOG_WARN, 0, NULL);
    dir = tk_tmpdir("sluice-src");
}

static void teardown(void)
{
    tk_rmrf(dir);
    free(dir);
}

TestSuite(source, .init = setup, .fini = teardown, .timeout = 300);

/* Settings added to the next jobs' kafka section (e.g. a consumer section), or "". */
static const char *kafka_extra = "";

/* A job counting by topic and partition, with JSON records {"n": long}; @p source holds
 * the source members after "format". */
static char *job_json(const char *name, const char *source, const char *trigger)
{
    char *j = malloc(8192);
    snprintf(
        j, 8192,
        "{\"name\": \"%s\", \"kafka\": {\"bootstrap.servers\": \"%s\","
        "  \"topic.metadata.refresh.interval.ms\": 1000%s},"
        " \"source\": {\"format\": \"json\", \"fields\": {\"n\": \"long\"}, %s},"
        " \"query\": {\"group_by\": [\"_topic\", {\"expr\": \"_partition\", \"as\": \"p\"}],"
        "             \"aggregates\": [{\"fn\": \"count\"}, {\"fn\": \"min\", \"field\": \"n\"},"
        "                             {\"fn\": \"max\", \"field\": \"n\"}]},"
        " \"trigger\": {%s}, \"output\": {\"sink\": \"memory\", \"mode\": \"complete\"},"
        " \"state\": {\"dir\": \"%s/%s\"}}",
        name, tk_bootstrap(), kafka_extra, source, trigger, dir, name);
    return j;
}

static tk_job_result_t run(const char *json)
{
    return tk_run_job(json, dir);
}

/* The row of (topic, partition) in a complete-mode table, or NULL. */
static json_t *row_of(json_t *rows, const char *topic, int p)
{
    size_t i;
    json_t *r;
    json_array_foreach(rows, i, r)
    {
        if (!strcmp(json_string_value(json_object_get(r, "_topic")), topic) &&
            json_integer_value(json_object_get(r, "p")) == p)
            return r;
    }
    return NULL;
}

static int64_t col(json_t *row, const char *name)
{
    cr_assert(row, "no such row");
    return json_integer_value(json_object_get(row, name));
}

/* Records n = from .. to - 1 to @p partition, with timestamps BASE + n seconds. */
#define TS0 1700000000000LL
static void produce_range(rd_kafka_t *p, const char *topic, int partition, int from, int to)
{
    for (int n = from; n < to; n++) {
        char rec[64];
        snprintf(rec, sizeof(rec), "{\"n\": %d}", n);
        tk_produce_at(p, topic, partition, NULL, rec, TS0 + n * 1000LL);
    }
    cr_assert(!rd_kafka_flush(p, 30000));
}

/* A new one-partition topic holding records 0 to @p n - 1 and a job name, both unique
 * for @p what (t and name of 128 bytes), the job's source reading it (src of 256), and the
 * producer that wrote them: the caller destroys it. */
static rd_kafka_t *one_topic(const char *bs, const char *what, int n, char *t, char *name,
                             char *src)
{
    char job_what[64];
    snprintf(job_what, sizeof(job_what), "%s-job", what);
    tk_unique(t, 128, what);
    tk_unique(name, 128, job_what);
    tk_create_topic(bs, t, 1);
    rd_kafka_t *p = tk_producer(bs);
    produce_range(p, t, 0, 0, n);
    snprintf(src, 256, "\"topics\": \"%s\"", t);
    return p;
}

Test(source, starting_offsets_apply_only_without_a_position)
{
    const char *bs = tk_bootstrap();
    char t[128], name[128];
    tk_unique(t, sizeof(t), "start");
    tk_create_topic(bs, t, 3);
    rd_kafka_t *p = tk_producer(bs);
    for (int part = 0; part < 3; part++)
        produce_range(p, t, part, 0, 100);

    /* Per partition: 0 from offset 40, 1 from the latest, 2 (not named) the default. */
    char src[512];
    tk_unique(name, sizeof(name), "start-per");
    snprintf(src, sizeof(src),
             "\"topics\": \"%s\", \"starting_offsets\": {\"%s\": {\"0\": 40, \"1\": -1}}", t, t);
    char *job = job_json(name, src, "\"available_now\": true");
    tk_job_result_t r = run(job);
    cr_assert_eq(r.rc, SL_OK, "%s", r.err);
    cr_assert_eq(col(row_of(r.rows, t, 0), "min_n"), 40);
    cr_assert_null(row_of(r.rows, t, 1), "partition 1 starts at its end");
    cr_assert_eq(col(row_of(r.rows, t, 2), "count"), 100);
    json_decref(r.rows);
    /* A second run continues from the stored positions, not the starting offsets. */
    produce_range(p, t, 1, 100, 110);
    r = run(job);
    cr_assert_eq(r.rc, SL_OK, "%s", r.err);
    cr_assert_eq(col(row_of(r.rows, t, 1), "min_n"), 100, "stored positions win");
    cr_assert_eq(col(row_of(r.rows, t, 1), "count"), 10);
    cr_assert_eq(col(row_of(r.rows, t, 0), "count"), 60);
    json_decref(r.rows);
    free(job);

    /* By timestamp: the first record at or after it, on every partition. */
    tk_unique(name, sizeof(name), "start-ts");
    snprintf(src, sizeof(src), "\"topics\": \"%s\", \"starting_timestamp\": %lld", t,
             (long long)(TS0 + 75 * 1000LL));
    job = job_json(name, src, "\"available_now\": true");
    r = run(job);
    cr_assert_eq(r.rc, SL_OK, "%s", r.err);
    for (int part = 0; part < 3; part++) {
        cr_assert_eq(col(row_of(r.rows, t, part), "min_n"), 75, "partition %d", part);
        cr_assert_eq(col(row_of(r.rows, t, part), "count"), part == 1 ? 35 : 25);
    }
    json_decref(r.rows);
    free(job);

    /* Latest: only what comes after the start; nothing here. */
    tk_unique(name, sizeof(name), "start-latest");
    snprintf(src, sizeof(src), "\"topics\": \"%s\", \"starting_offsets\": \"latest\"", t);
    job = job_json(name, src, "\"available_now\": true");
    r = run(job);
    cr_assert_eq(r.rc, SL_OK, "%s", r.err);
    cr_assert_eq(json_array_size(r.rows), 0);
    json_decref(r.rows);
    free(job);
    rd_kafka_destroy(p);
    tk_delete_topic(bs, t);
}

/* A batch ends once it holds trigger.max_keys groups, which bounds its memory: 5,000
 * records over 2,500 keys, read available-now, commit in several batches, and the totals
 * are those of one. */
Test(source, a_batch_ends_at_max_keys)
{
    const char *bs = tk_bootstrap();
    char t[128], name[128];
    tk_unique(t, sizeof(t), "maxkeys");
    tk_create_topic(bs, t, 1);
    rd_kafka_t *p = tk_producer(bs);
    produce_range(p, t, 0, 0, 2500);
    produce_range(p, t, 0, 0, 2500);
    tk_unique(name, sizeof(name), "maxkeys-job");
    char *job = malloc(4096);
    snprintf(
        job, 4096,
        "{\"name\": \"%s\", \"kafka\": {\"bootstrap.servers\": \"%s\"},"
        " \"source\": {\"topics\": \"%s\", \"format\": \"json\", \"fields\": {\"n\": \"long\"}},"
        " \"query\": {\"group_by\": \"n\", \"aggregates\": [{\"fn\": \"count\"}]},"
        " \"trigger\": {\"interval\": \"1m\", \"available_now\": true, \"max_keys\": 1000},"
        " \"output\": {\"sink\": \"memory\"}, \"state\": {\"dir\": \"%s/%s\"}}",
        name, bs, t, dir, name);
    tk_job_result_t r = run(job);
    cr_assert_eq(r.rc, SL_OK, "%s", r.err);
    cr_assert_geq(r.st.batches, 3, "5,000 records of 2,500 keys in %" PRIu64 " batch(es)",
                  r.st.batches);
    int64_t latest[2500] = {0};
    size_t i;
    json_t *row;
    json_array_foreach(r.rows, i, row)
    {
        int64_t n = json_integer_value(json_object_get(row, "n"));
        cr_assert(n >= 0 && n < 2500);
        latest[n] = json_integer_value(json_object_get(row, "count"));
    }
    for (int n = 0; n < 2500; n++)
        cr_assert_eq(latest[n], 2, "key %d counted %" PRId64 " times", n, latest[n]);
    json_decref(r.rows);
    free(job);
    rd_kafka_destroy(p);
    tk_delete_topic(bs, t);
}

/* Polls the memory rows of a running job until (topic, p) counts @p want; the rows. */
static json_t *wait_count(sl_job_t *j, const char *topic, int p, int64_t want)
{
    json_t *rows = NULL;
    for (int i = 0; i < 300; i++) {
        json_decref(rows);
        rows = tk_memory_rows(j);
        json_t *r = row_of(rows, topic, p);
        if (r && json_integer_value(json_object_get(r, "count")) >= want)
            break;
        usleep(100000);
    }
    return rows;
}

/* A new topic makes the group rebalance while a batch is under way: every partition is
 * revoked and assigned again. A partition read before goes on from where it was; the
 * stored position would read the batch's records a second time. */
Test(source, a_rebalance_in_the_middle_of_a_batch_reads_nothing_twice)
{
    const char *bs = tk_bootstrap();
    char base[100], a[160], c[160], name[128];
    tk_unique(base, sizeof(base), "rebal");
    snprintf(a, sizeof(a), "%s-a", base);
    snprintf(c, sizeof(c), "%s-c", base);
    tk_create_topic(bs, a, 1);
    rd_kafka_t *p = tk_producer(bs);
    produce_range(p, a, 0, 0, 10);
    tk_unique(name, sizeof(name), "rebal-job");
    char src[512];
    snprintf(src, sizeof(src), "\"pattern\": \"%s-[ac]\"", base);
    char *job = job_json(name, src, "\"interval\": \"4s\"");
    tk_runner_t r;
    sl_job_t *j = tk_start_job(job, dir, &r);
    json_decref(wait_count(j, a, 0, 10)); /* the first batch is committed */
    /* Ten more records are read at once; the new topic is seen within a metadata refresh
     * (1 s), long before the 4 s batch ends. */
    produce_range(p, a, 0, 10, 20);
    tk_create_topic(bs, c, 1);
    produce_range(p, c, 0, 0, 5);
    json_t *rows = wait_count(j, c, 0, 5);
    json_decref(rows);
    rows = wait_count(j, a, 0, 20);
    sleep(5); /* one more batch, which would carry a second reading */
    json_decref(rows);
    rows = tk_memory_rows(j);
    sl_job_stop(j);
    tk_runner_join(&r);
    cr_assert_eq(r.rc, SL_OK, "%s", r.err);
    cr_assert_eq(col(row_of(rows, a, 0), "count"), 20, "each record of %s counted once", a);
    cr_assert_eq(col(row_of(rows, a, 0), "max_n"), 19);
    cr_assert_eq(col(row_of(rows, c, 0), "count"), 5);
    json_decref(rows);
    sl_job_destroy(j);
    free(job);
    rd_kafka_destroy(p);
    tk_delete_topic(bs, a);
    tk_delete_topic(bs, c);
}

Test(source, a_pattern_picks_up_new_topics)
{
    const char *bs = tk_bootstrap();
    char base[100], a[160], b[160], other[160], c[160], name[128];
    tk_unique(base, sizeof(base), "pat");
    snprintf(a, sizeof(a), "%s-a", base);
    snprintf(b, sizeof(b), "%s-b", base);
    snprintf(other, sizeof(other), "%s-x", base);
    snprintf(c, sizeof(c), "%s-c", base);
    tk_create_topic(bs, a, 1);
    tk_create_topic(bs, b, 2);
    tk_create_topic(bs, other, 1);
    rd_kafka_t *p = tk_producer(bs);
    produce_range(p, a, 0, 0, 10);
    produce_range(p, b, 1, 0, 20);
    produce_range(p, other, 0, 0, 30);
    tk_unique(name, sizeof(name), "pat-job");
    char src[512];
    snprintf(src, sizeof(src), "\"pattern\": \"%s-[abc]\"", base);
    char *job = job_json(name, src, "\"interval\": \"200ms\"");
    tk_runner_t r;
    sl_job_t *j = tk_start_job(job, dir, &r);
    /* A matching topic made while the job runs is read from its start. */
    sleep(2);
    tk_create_topic(bs, c, 1);
    produce_range(p, c, 0, 0, 5);
    json_t *rows = NULL;
    for (int i = 0; i < 300; i++) {
        usleep(100000);
        json_decref(rows);
        rows = tk_memory_rows(j);
        if (row_of(rows, c, 0) && col(row_of(rows, c, 0), "count") == 5)
            break;
    }
    sl_job_stop(j);
    tk_runner_join(&r);
    cr_assert_eq(r.rc, SL_OK, "%s", r.err);
    cr_assert_eq(col(row_of(rows, a, 0), "count"), 10);
    cr_assert_eq(col(row_of(rows, b, 1), "count"), 20);
    cr_assert_null(row_of(rows, other, 0), "a topic that does not match is not read");
    cr_assert(row_of(rows, c, 0), "the new topic was not picked up");
    cr_assert_eq(col(row_of(rows, c, 0), "count"), 5);
    cr_assert_eq(col(row_of(rows, c, 0), "min_n"), 0, "from its first record");
    json_decref(rows);
    sl_job_destroy(j);
    free(job);
    rd_kafka_destroy(p);
    tk_delete_topic(bs, a);
    tk_delete_topic(bs, b);
    tk_delete_topic(bs, c);
    tk_delete_topic(bs, other);
}

Test(source, headers_are_fields)
{
    const char *bs = tk_bootstrap();
    char t[128], name[128];
    tk_unique(t, sizeof(t), "hdr");
    tk_unique(name, sizeof(name), "hdr-job");
    tk_create_topic(bs, t, 1);
    rd_kafka_t *p = tk_producer(bs);
    for (int i = 0; i < 30; i++) {
        rd_kafka_headers_t *h = rd_kafka_headers_new(1);
        if (i % 3)
            rd_kafka_header_add(h, "trace-id", -1, i % 3 == 1 ? "one" : "two", -1);
        cr_assert(!rd_kafka_producev(p, RD_KAFKA_V_TOPIC(t), RD_KAFKA_V_VALUE("{\"n\": 1}", 8),
                                     RD_KAFKA_V_HEADERS(h),
                                     RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END));
    }
    cr_assert(!rd_kafka_flush(p, 30000));
    rd_kafka_destroy(p);
    char job[4096];
    snprintf(
        job, sizeof(job),
        "{\"name\": \"%s\", \"kafka\": {\"bootstrap.servers\": \"%s\"},"
        " \"source\": {\"topics\": \"%s\", \"format\": \"json\", \"fields\": {\"n\": \"long\"},"
        "              \"headers\": [\"trace-id\"]},"
        " \"query\": {\"group_by\": \"_header_trace_id\", \"aggregates\": [{\"fn\": \"count\"}]},"
        " \"trigger\": {\"available_now\": true},"
        " \"output\": {\"sink\": \"memory\", \"mode\": \"complete\"},"
        " \"state\": {\"dir\": \"%s/%s\"}}",
        name, bs, t, dir, name);
    tk_job_result_t r = run(job);
    cr_assert_eq(r.rc, SL_OK, "%s", r.err);
    cr_assert_eq(json_array_size(r.rows), 3, "one, two, and null for no header");
    size_t i;
    json_t *row;
    json_array_foreach(r.rows, i, row)
        cr_assert_eq(json_integer_value(json_object_get(row, "count")), 10);
    json_decref(r.rows);
    tk_delete_topic(bs, t);
}

/* Deletes the records of @p topic[0] below @p before (what retention does). */
static void delete_records(const char *bs, const char *topic, int64_t before)
{
    rd_kafka_t *p = tk_producer(bs);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, topic, 0)->offset = before;
    rd_kafka_DeleteRecords_t *d = rd_kafka_DeleteRecords_new(l);
    rd_kafka_queue_t *q = rd_kafka_queue_new(p);
    rd_kafka_DeleteRecords(p, &d, 1, NULL, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 30000);
    cr_assert(ev && !rd_kafka_event_error(ev), "DeleteRecords: %s",
              ev ? rd_kafka_event_error_string(ev) : "timed out");
    rd_kafka_event_destroy(ev);
    rd_kafka_queue_destroy(q);
    rd_kafka_DeleteRecords_destroy(d);
    rd_kafka_topic_partition_list_destroy(l);
    rd_kafka_destroy(p);
}

Test(source, data_lost_to_retention_is_never_silent)
{
    const char *bs = tk_bootstrap();
    char t[128], name[128], src[256];
    rd_kafka_t *p = one_topic(bs, "loss", 100, t, name, src);
    char *job = job_json(name, src, "\"available_now\": true");
    tk_job_result_t r = run(job);
    cr_assert_eq(r.rc, SL_OK, "%s", r.err);
    json_decref(r.rows);
    /* 100 more; 50 of them are deleted before the job reads them. */
    produce_range(p, t, 0, 100, 200);
    rd_kafka_destroy(p);
    delete_records(bs, t, 150);
    r = run(job);
    cr_assert_eq(r.rc, SL_ERR_KAFKA);
    char want[300];
    snprintf(want, sizeof(want),
             "source %s[0]: offsets 100 to 149 were deleted (retention) before they were read: "
             "50 record(s) lost",
             t);
    cr_assert(strstr(r.err, want), "got: %s", r.err);
    cr_assert(strstr(r.err, "set source.on_data_loss to \"skip\" to go on from offset 150"), "%s",
              r.err);
    json_decref(r.rows);
    free(job);
    /* Allowed to skip: the job goes on from the log start and counts what it skipped. */
    snprintf(src, sizeof(src), "\"topics\": \"%s\", \"on_data_loss\": \"skip\"", t);
    job = job_json(name, src, "\"available_now\": true");
    r = run(job);
    cr_assert_eq(r.rc, SL_OK, "%s", r.err);
    cr_assert_eq(r.st.records_lost, 50);
    cr_assert_eq(col(row_of(r.rows, t, 0), "count"), 150, "100 before, 50 after the gap");
    cr_assert_eq(col(row_of(r.rows, t, 0), "max_n"), 199);
    json_decref(r.rows);
    free(job);
    tk_delete_topic(bs, t);
}

/* The job's state directory, as tk_state_totals() reads it, once its counts reach
 * @p want (or 60 s pass). */
static tk_state_totals_t wait_state_count(const char *state, const char *topic, uint64_t want)
{
    tk_state_totals_t st = {0};
    for (int i = 0; i < 600; i++) {
        st = tk_state_totals(state, topic, NULL, 0);
        if (st.ok && st.counts >= want)
            break;
        usleep(100000);
    }
    return st;
}

/* Records deleted while the job is stopped (SIGSTOP) behind them: librdkafka stops
 * fetching the partition when its position falls out of the log; the job stops naming
 * what was lost, or with "skip" goes on from the log start and reads the rest. */
static void deleted_while_running(int skip)
{
    const char *bs = tk_bootstrap();
    char t[128], name[128], src[256], json[2048], state[700], job[700], log[700];
    rd_kafka_t *p = one_topic(bs, skip ? "runskip" : "runloss", 100, t, name, src);
    snprintf(state, sizeof(state), "%s/%s", dir, name);
    snprintf(json, sizeof(json),
             "{\"name\": \"%s\", \"kafka\": {\"bootstrap.servers\": \"%s\"},"
             " \"source\": {\"format\": \"json\", \"fields\": {\"n\": \"long\"}, %s%s},"
             " \"query\": {\"group_by\": \"_topic\", \"aggregates\": [{\"fn\": \"count\"}]},"
             " \"trigger\": {\"interval\": \"200ms\"}, \"output\": {\"sink\": \"console\"},"
             " \"state\": {\"dir\": \"%s\"}}",
             name, bs, src, skip ? ", \"on_data_loss\": \"skip\"" : "", state);
    tk_write_file(dir, "job.json", json);
    snprintf(job, sizeof(job), "%s/job.json", dir);
    snprintf(log, sizeof(log), "%s/sluice.log", dir);
    const char *argv[] = {"run", job, NULL};
    int pid = tk_spawn_cli(argv, NULL, log);
    tk_state_totals_t st = wait_state_count(state, t, 100);
    cr_assert_eq(st.counts, 100, "the first 100 records counted:\n%s", tk_slurp(log));
    kill(pid, SIGSTOP);
    /* A fetch the broker holds until records come would take the new ones before they
     * are deleted: it answers empty once fetch.wait.max.ms (500 ms) pass. */
    sleep(2);
    produce_range(p, t, 0, 100, 200);
    rd_kafka_destroy(p);
    delete_records(bs, t, 150);
    kill(pid, SIGCONT);
    if (!skip) {
        int rc = tk_wait(pid, 60);
        cr_assert_neq(rc, 0, "the job went on past records it never read");
        char want[300];
        snprintf(want, sizeof(want),
                 "source %s[0]: offsets 100 to 149 were deleted (retention) before they were "
                 "read: 50 record(s) lost",
                 t);
        cr_assert(strstr(tk_slurp(log), want), "%s", tk_slurp(log));
        st = tk_state_totals(state, t, NULL, 0);
        cr_assert_eq(st.counts, 100, "nothing after the gap was counted");
    } else {
        st = wait_state_count(state, t, 150);
        kill(pid, SIGTERM);
        int rc = tk_wait(pid, 60);
        cr_assert_eq(rc, 0, "%s", tk_slurp(log));
        st = tk_state_totals(state, t, NULL, 0);
        cr_assert_eq(st.counts, 150, "100 before the gap, 50 after it, not %llu:\n%s",
                     (unsigned long long)st.counts, tk_slurp(log));
        cr_assert_eq(st.positions, 200);
        cr_assert(strstr(tk_slurp(log), "offsets 100 to 149"), "the skip is logged:\n%s",
                  tk_slurp(log));
    }
    tk_delete_topic(bs, t);
}

Test(source, records_deleted_behind_a_running_job_stop_it)
{
    deleted_while_running(0);
}

Test(source, records_deleted_behind_a_running_job_are_skipped_when_allowed)
{
    deleted_while_running(1);
}

Test(source, min_records_wait_up_to_the_max_trigger_delay)
{
    const char *bs = tk_bootstrap();
    char t[128], name[128], src[256];
    rd_kafka_t *p = one_topic(bs, "minrec", 50, t, name, src);
    /* A 100 ms trigger that waits for 1,000 records, but at most 2 s more. */
    char *job = job_json(name, src,
                         "\"interval\": \"100ms\", \"min_records\": 1000, "
                         "\"max_trigger_delay\": \"2s\"");
    tk_runner_t r;
    sl_job_t *j = tk_start_job(job, dir, &r);
    sl_job_stats_t st = {0};
    for (int i = 0; i < 20; i++) { /* 1 s: the records are read, no batch may commit */
        usleep(50000);
        sl_job_stats(j, &st, sizeof(st));
    }
    uint64_t before = st.batches;
    for (int i = 0; i < 100 && st.batches == 0; i++) {
        usleep(100000);
        sl_job_stats(j, &st, sizeof(st));
    }
    sl_job_stop(j);
    tk_runner_join(&r);
    cr_assert_eq(r.rc, SL_OK, "%s", r.err);
    cr_assert_eq(before, 0, "a batch committed before min_records or the delay");
    cr_assert_geq(st.batches, 1, "the delay did not end the batch");
    cr_assert_eq(st.records_in, 50);
    sl_job_destroy(j);
    free(job);
    rd_kafka_destroy(p);
    tk_delete_topic(bs, t);
}

/* librdkafka 2.0 stops fetching while the prefetch queue holds queued.min.messages and
 * looks again only when its broker thread wakes, at the latest after a second; the
 * source wakes it once the queue has drained. A queue of 2,000 records filled by fetches
 * of about 3,000 is over its bound after most responses: without the wake-up 100,000
 * records took 9 s (waits of up to a second), with it 37 ms. */
Test(source, a_small_prefetch_queue_is_refilled_without_waiting)
{
    const char *bs = tk_bootstrap();
    char t[128], name[128], src[256];
    rd_kafka_t *p = one_topic(bs, "refill", 200000, t, name, src);
    kafka_extra = ", \"consumer\": {\"queued.min.messages\": \"2000\","
                  "  \"max.partition.fetch.bytes\": \"65536\"}";
    char *job = job_json(name, src, "\"available_now\": true");
    kafka_extra = "";
    tk_job_result_t r = run(job);
    cr_assert_eq(r.rc, SL_OK, "%s", r.err);
    cr_assert_eq(r.st.records_in, 200000);
    int64_t ms = r.st.last_commit_ms - r.st.first_record_ms;
    cr_log_info("200,000 records through a 2,000-record queue in %" PRId64 " ms", ms);
    /* Without the refill, each of the 100 queues waits out librdkafka's 1 s timer: about
     * 100 s. With it, about 1.5 s here, and up to 5.5 s on a loaded machine (the fresh
     * container check beside an hour of fuzzing); 30 s tells the two apart with room. */
    cr_assert_lt(ms, 30000,
                 "200,000 records through a 2,000-record prefetch queue took %" PRId64
                 " ms: the fetcher waited for its timer",
                 ms);
    json_decref(r.rows);
    free(job);
    rd_kafka_destroy(p);
    tk_delete_topic(bs, t);
}
