/*
 * 0002-bad-input.c - what a user sees when something is wrong: the CLI prints one clear
 * line and exits non-zero, and nothing is written to the state. A record that cannot be
 * decoded stops the job before it (no data lost) unless the job sends it to a
 * dead-letter topic.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sluice/sluice.h"
#include "sluice/sluice_dev.h"
#include "tk.h"

static char *dir;

static void setup(void)
{
    sl_log_configure(SL_LOG_WARN, 0, NULL);
    dir = tk_job_dir("bad");
}

static void teardown(void)
{
    tk_rmrf(dir);
    free(dir);
}

TestSuite(bad_input, .init = setup, .fini = teardown, .timeout = 300);

static void write_job(const char *bootstrap, const char *in, const char *out, const char *schema,
                      const char *extra_source)
{
    char json[4096];
    snprintf(json, sizeof(json),
             "{\"name\": \"%s\", \"kafka\": {\"bootstrap.servers\": \"%s\"},"
             " \"source\": {\"topics\": [\"%s\"], \"schema\": \"%s\"%s},"
             " \"query\": {\"group_by\": \"page\", \"aggregates\": [{\"fn\": \"count\"}]},"
             " \"trigger\": {\"interval\": \"500ms\", \"available_now\": true},"
             " \"output\": {\"sink\": \"kafka\", \"topic\": \"%s\"},"
             " \"state\": {\"dir\": \"state\"}}",
             out, bootstrap, in, schema, extra_source, out);
    tk_write_file(dir, "job.json", json);
}

static int lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

static int state_exists(void)
{
    char path[600];
    struct stat st;
    snprintf(path, sizeof(path), "%s/state", dir);
    return stat(path, &st) == 0;
}

/* Runs `sluice run job.json` and checks for one line holding @p want, exit 1, no state. */
static void expect_refusal(const char *want)
{
    char job[600], err[8192];
    snprintf(job, sizeof(job), "%s/job.json", dir);
    const char *argv[] = {"run", job, NULL};
    int rc = tk_run_cli(argv, err, sizeof(err), 120);
    cr_log_info("sluice run said: %s", err);
    cr_assert_eq(rc, 1, "exit status %d, stderr: %s", rc, err);
    cr_assert(strstr(err, want), "expected \"%s\" in: %s", want, err);
    cr_assert_eq(lines(err), 1, "expected one line, got: %s", err);
    cr_assert(!state_exists(), "the state directory was created");
}

Test(bad_input, unreadable_job_file)
{
    char err[4096];
    const char *argv[] = {"run", "/nonexistent/job.json", NULL};
    int rc = tk_run_cli(argv, err, sizeof(err), 30);
    cr_assert_eq(rc, 1);
    cr_assert(strstr(err, "/nonexistent/job.json: cannot read the job file: no such file"),
              "got: %s", err);
    cr_assert_eq(lines(err), 1, "got: %s", err);
}

Test(bad_input, missing_schema)
{
    write_job(tk_bootstrap(), "in", "out", "gone.avsc", "");
    expect_refusal("source.schema: schema file '");
}

Test(bad_input, topics_that_do_not_exist)
{
    const char *bs = tk_bootstrap();
    char in[128], out[128], want[512];
    tk_unique(in, sizeof(in), "bad-in");
    tk_unique(out, sizeof(out), "bad-out");
    write_job(bs, in, out, "pageview.avsc", "");
    snprintf(want, sizeof(want), "source.topics: topic '%s' does not exist on %s", in, bs);
    expect_refusal(want);

    tk_create_topic(bs, in, 1);
    snprintf(want, sizeof(want), "output.topic: topic '%s' does not exist on %s", out, bs);
    expect_refusal(want);
    tk_delete_topic(bs, in);
}

Test(bad_input, unreachable_broker)
{
    /* A loopback port that nothing listens on. */
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    cr_assert(bind(s, (struct sockaddr *)&a, sizeof(a)) == 0);
    getsockname(s, (struct sockaddr *)&a, &len);
    close(s);
    char bs[64], want[128];
    snprintf(bs, sizeof(bs), "127.0.0.1:%d", ntohs(a.sin_port));
    write_job(bs, "in", "out", "pageview.avsc", "");
    snprintf(want, sizeof(want), "cannot reach Kafka at %s", bs);
    expect_refusal(want);
}

Test(bad_input, validate_lists_every_problem)
{
    tk_write_file(dir, "job.json",
                  "{\"name\": \"x\", \"kafka\": {\"bootstrap.servers\": \"h:1\"},"
                  " \"source\": {\"topics\": \"t\", \"schema\": \"pageview.avsc\"},"
                  " \"query\": {\"group_by\": [\"pgae\"], \"aggregates\": [{\"fn\": \"sum\","
                  " \"field\": \"page\"}]}, \"output\": {\"sink\": \"console\"}}");
    char job[600], err[8192];
    snprintf(job, sizeof(job), "%s/job.json", dir);
    const char *argv[] = {"validate", job, NULL};
    cr_assert_eq(tk_run_cli(argv, err, sizeof(err), 30), 1);
    cr_assert(strstr(err, "query.group_by[0]: unknown field 'pgae'"), "got: %s", err);
    cr_assert(strstr(err, "query.aggregates[0].field: sum needs a numeric field"), "got: %s", err);
    cr_assert(strstr(err, "state: missing"), "got: %s", err);
    cr_assert_eq(lines(err), 3, "got: %s", err);
}

/* ---- undecodable records ---- */

static void produce_raw(const char *bs, const char *topic, const void *buf, size_t len)
{
    rd_kafka_t *rk = tk_producer(bs);
    cr_assert(!rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(0),
                                 RD_KAFKA_V_VALUE((void *)buf, len),
                                 RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END));
    cr_assert(!rd_kafka_flush(rk, 30000));
    rd_kafka_destroy(rk);
}

/* The state's counts, with what `sluice inspect` printed in @p text. */
static uint64_t inspect(char *text, size_t size)
{
    char state[700];
    snprintf(state, sizeof(state), "%s/state", dir);
    tk_state_totals_t t = tk_state_totals(state, "", text, size);
    cr_assert(t.ok, "inspect failed: %s", text);
    return t.counts;
}

static void on_dead(void *opaque, const rd_kafka_message_t *m)
{
    int *n = opaque;
    rd_kafka_headers_t *h;
    const void *v;
    size_t s;
    cr_assert(!rd_kafka_message_headers(m, &h) &&
                  !rd_kafka_header_get_last(h, "sluice-source-offset", &v, &s) && s == 2 &&
                  !memcmp(v, "10", 2),
              "a dead letter names its source offset");
    cr_assert(m->len == 5 && !memcmp(m->payload, "\xff\xff\xff\xff\xff", 5),
              "a dead letter holds the original bytes");
    (*n)++;
}

Test(bad_input, an_undecodable_record_stops_the_job_before_it)
{
    const char *bs = tk_bootstrap();
    char in[128], out[128], dead[128], want[256];
    tk_unique(in, sizeof(in), "dec-in");
    tk_unique(out, sizeof(out), "dec-out");
    tk_unique(dead, sizeof(dead), "dec-dead");
    tk_create_topic(bs, in, 1);
    tk_create_topic(bs, out, 1);
    tk_create_topic(bs, dead, 1);
    sl_gen_spec_t spec = {.seed = 3, .pages = 5, .users = 5};
    char err[8192];
    cr_assert_eq(sl_gen_produce(bs, NULL, in, 1, &spec, 0, 10, err, sizeof(err)), SL_OK);
    produce_raw(bs, in, "\xff\xff\xff\xff\xff", 5);
    cr_assert_eq(sl_gen_produce(bs, NULL, in, 1, &spec, 10, 10, err, sizeof(err)), SL_OK);

    write_job(bs, in, out, "pageview.avsc", "");
    char job[600];
    snprintf(job, sizeof(job), "%s/job.json", dir);
    const char *argv[] = {"run", "--quiet", job, NULL};
    int rc = tk_run_cli(argv, err, sizeof(err), 120);
    snprintf(want, sizeof(want), "%s[0] offset 10: at byte 0, field 'user_id': malformed varint",
             in);
    cr_assert_eq(rc, 1, "exit %d: %s", rc, err);
    cr_assert(strstr(err, want), "expected \"%s\" in: %s", want, err);
    char text[65536];
    uint64_t counted = inspect(text, sizeof(text));
    snprintf(want, sizeof(want), "%s/0 = 10\n", in);
    cr_assert(strstr(text, want), "the position stops at the bad record:\n%s", text);
    cr_assert_eq(counted, 10, "the 10 records before it are counted:\n%s", text);

    /* Sent to a dead-letter topic, the record no longer stops the job. */
    char extra[256];
    snprintf(extra, sizeof(extra), ", \"on_decode_error\": {\"dead_letter_topic\": \"%s\"}", dead);
    write_job(bs, in, out, "pageview.avsc", extra);
    rc = tk_run_cli(argv, err, sizeof(err), 120);
    cr_assert_eq(rc, 0, "exit %d: %s", rc, err);
    cr_assert_eq(inspect(text, sizeof(text)), 20, "all 20 good records are counted:\n%s", text);
    int dead_letters = 0;
    tk_consume_all(bs, dead, on_dead, &dead_letters);
    cr_assert_eq(dead_letters, 1);
    tk_delete_topic(bs, in);
    tk_delete_topic(bs, out);
    tk_delete_topic(bs, dead);
}

Test(bad_input, a_changed_query_is_refused_on_old_state)
{
    const char *bs = tk_bootstrap();
    char in[128], out[128], err[8192];
    tk_in_out_topics(bs, "fp", 1, 1, in, out, sizeof(in));
    sl_gen_spec_t spec = {.seed = 4, .pages = 5, .users = 5};
    cr_assert_eq(sl_gen_produce(bs, NULL, in, 1, &spec, 0, 100, err, sizeof(err)), SL_OK);
    write_job(bs, in, out, "pageview.avsc", "");
    char job[600];
    snprintf(job, sizeof(job), "%s/job.json", dir);
    const char *argv[] = {"run", "--quiet", job, NULL};
    cr_assert_eq(tk_run_cli(argv, err, sizeof(err), 120), 0, "%s", err);

    /* Same state, another query. */
    char json[4096];
    snprintf(json, sizeof(json),
             "{\"name\": \"%s\", \"kafka\": {\"bootstrap.servers\": \"%s\"},"
             " \"source\": {\"topics\": [\"%s\"], \"schema\": \"pageview.avsc\"},"
             " \"query\": {\"group_by\": \"user_id\", \"aggregates\": [{\"fn\": \"count\"}]},"
             " \"trigger\": {\"available_now\": true},"
             " \"output\": {\"sink\": \"kafka\", \"topic\": \"%s\"},"
             " \"state\": {\"dir\": \"state\"}}",
             out, bs, in, out);
    tk_write_file(dir, "job.json", json);
    int rc = tk_run_cli(argv, err, sizeof(err), 120);
    cr_assert_eq(rc, 1, "exit %d: %s", rc, err);
    cr_assert(strstr(err, "was written by an incompatible job: group_by changed from "
                          "[{\"name\":\"page\",\"type\":\"string\"}] to "
                          "[{\"name\":\"user_id\",\"type\":\"string\"}]"),
              "the message names the change, stored and new: %s", err);
    char text[65536];
    cr_assert_eq(inspect(text, sizeof(text)), 100, "the old state is untouched:\n%s", text);
    tk_delete_topic(bs, in);
    tk_delete_topic(bs, out);
}

Test(bad_input, a_transaction_timeout_above_the_brokers_maximum)
{
    const char *bs = tk_bootstrap();
    char in[128], out[128];
    tk_in_out_topics(bs, "tto", 1, 1, in, out, sizeof(in));
    char json[4096];
    snprintf(json, sizeof(json),
             "{\"name\": \"%s\", \"kafka\": {\"bootstrap.servers\": \"%s\","
             "   \"producer\": {\"transaction.timeout.ms\": 3600000}},"
             " \"source\": {\"topics\": [\"%s\"], \"schema\": \"pageview.avsc\"},"
             " \"query\": {\"group_by\": \"page\", \"aggregates\": [{\"fn\": \"count\"}]},"
             " \"trigger\": {\"available_now\": true},"
             " \"output\": {\"sink\": \"kafka\", \"topic\": \"%s\"},"
             " \"state\": {\"dir\": \"state\"}}",
             out, bs, in, out);
    tk_write_file(dir, "job.json", json);
    expect_refusal("kafka: transaction.timeout.ms is 3600000, more than the broker's "
                   "transaction.max.timeout.ms (900000)");
    tk_delete_topic(bs, in);
    tk_delete_topic(bs, out);
}

Test(bad_input, a_row_larger_than_the_topic_takes_stops_the_job_before_its_batch)
{
    /* A 900 KB input value once made a 1.8 MB result row: the job exited "publishing a
     * batch failed 10 times in a row" without the cause, and since the state and the
     * outbox were committed, every restart failed the same way. Now the row is measured
     * against the topic's max.message.bytes before anything is committed, the job stops
     * naming the group, the size and the limits, and raising the limit lets it go on with
     * its state as it was. */
    const char *bs = tk_bootstrap();
    char in[128], out[128];
    tk_unique(in, sizeof(in), "big-in");
    tk_unique(out, sizeof(out), "big-out");
    tk_create_topic(bs, in, 1);
    const char *small[] = {"max.message.bytes", "20000", NULL};
    tk_create_topic_config(bs, out, 1, small);
    char json[4096];
    snprintf(json, sizeof(json),
             "{\"name\": \"%s\", \"kafka\": {\"bootstrap.servers\": \"%s\"},"
             " \"source\": {\"topics\": \"%s\", \"format\": \"json\","
             "   \"fields\": {\"k\": \"string\", \"s\": \"string\"}},"
             " \"query\": {\"group_by\": \"k\", \"aggregates\": [{\"fn\": \"max\", \"field\": "
             "\"s\"}, {\"fn\": \"min\", \"field\": \"s\"}]},"
             " \"trigger\": {\"available_now\": true, \"max_records\": 1},"
             " \"output\": {\"sink\": \"kafka\", \"topic\": \"%s\"},"
             " \"state\": {\"dir\": \"state\"}}",
             out, bs, in, out);
    tk_write_file(dir, "job.json", json);
    rd_kafka_t *p = tk_producer(bs);
    static char rec[40000];
    const struct {
        const char *k;
        int len;
    } recs[] = {{"a", 4000}, {"b", 15000}, {"c", 10}};
    for (int i = 0; i < 3; i++) {
        int n = snprintf(rec, sizeof(rec), "{\"k\": \"%s\", \"s\": \"", recs[i].k);
        memset(rec + n, 'x', (size_t)recs[i].len);
        snprintf(rec + n + recs[i].len, sizeof(rec) - (size_t)(n + recs[i].len), "\"}");
        tk_produce(p, in, 0, recs[i].k, rec);
    }
    rd_kafka_flush(p, 30000);
    rd_kafka_destroy(p);

    char job[600], err[8192], state[700];
    snprintf(job, sizeof(job), "%s/job.json", dir);
    snprintf(state, sizeof(state), "%s/state", dir);
    const char *argv[] = {"run", job, NULL};
    for (int again = 0; again < 2; again++) {
        int rc = tk_run_cli(argv, err, sizeof(err), 120);
        cr_assert_eq(rc, 1, "run %d: exit %d: %s", again, rc, err);
        cr_assert(strstr(err, "batch 2, group (k=b): a result row of ") &&
                      strstr(err, "is larger than the output topic") &&
                      strstr(err, "its max.message.bytes 20000") &&
                      strstr(err, "stops before this batch is committed"),
                  "run %d: %s", again, err);
        tk_state_totals_t t = tk_state_totals(state, in, NULL, 0);
        cr_assert_eq(t.positions, 1, "only the first batch is committed");
    }
    json_t *rows = tk_latest_rows(bs, out, "k");
    cr_assert_eq(json_object_size(rows), 1, "only a's row is published");
    json_decref(rows);

    const char *large[] = {"max.message.bytes", "200000", NULL};
    tk_alter_topic(bs, out, large);
    const char *quiet[] = {"run", "--quiet", job, NULL};
    int rc = tk_run_cli(quiet, err, sizeof(err), 120);
    cr_assert_eq(rc, 0, "after raising the limit: %s", err);
    rows = tk_latest_rows(bs, out, "k");
    cr_assert_eq(json_object_size(rows), 3);
    json_t *b = json_object_get(rows, "b");
    cr_assert_eq(json_string_length(json_object_get(b, "max_s")), 15000);
    json_decref(rows);
    tk_delete_topic(bs, in);
    tk_delete_topic(bs, out);
}
