/*
 * test_conf.c - job files: what a valid one yields, and that every problem of a bad one
 * is reported with the path of the field.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "conf.h"
#include "tk.h"

static char *dir;

static void setup(void)
{
    dir = tk_tmpdir("sluice-conf");
    tk_write_file(dir, "pageview.avsc", sl_gen_pageview_schema());
}

static void teardown(void)
{
    tk_rmrf(dir);
    free(dir);
}

TestSuite(conf, .init = setup, .fini = teardown);

/* %s: more top-level keys */
static const char *GOOD_FMT =
    "{\"name\": \"pages\","
    " \"kafka\": {\"bootstrap.servers\": \"127.0.0.1:9092\", \"socket.timeout.ms\": 5000,"
    "           \"consumer\": {\"fetch.wait.max.ms\": 10}},"
    " \"source\": {\"topics\": [\"pv\"], \"format\": \"avro\", \"schema\": \"pageview.avsc\"},"
    " \"query\": {\"where\": \"bytes > 0\", \"group_by\": [\"page\"],"
    "            \"aggregates\": [{\"fn\": \"count\"}, {\"fn\": \"sum\", \"field\": \"bytes\"},"
    "                             {\"fn\": \"avg\", \"field\": \"latency_ms\", \"as\": \"lat\"}]},"
    " \"output\": {\"sink\": \"kafka\", \"topic\": \"out\", \"format\": \"avro\"},"
    " %s \"state\": {\"dir\": \"st\"}}";

Test(conf, a_valid_job_and_its_defaults)
{
    char err[4096] = "", GOOD[4096];
    snprintf(GOOD, sizeof(GOOD), GOOD_FMT, "");
    sl_conf_t *c;
    cr_assert_eq(sl__conf_parse(GOOD, dir, "job.json", &c, err, sizeof(err)), SL_OK, "%s", err);
    cr_assert_str_eq(c->name, "pages");
    cr_assert_str_eq(c->bootstrap, "127.0.0.1:9092");
    cr_assert_eq(c->ntopics, 1);
    cr_assert_eq(c->interval_ms, 2000, "default trigger interval is 2 s");
    cr_assert_eq(c->ngroup, 1);
    cr_assert_eq(c->naggs, 3);
    cr_assert_str_eq(c->aggs[0].as, "count");
    cr_assert_str_eq(c->aggs[1].as, "sum_bytes");
    cr_assert_str_eq(c->aggs[2].as, "lat");
    cr_assert_eq(c->consumer.n, 1);
    char want[1024];
    snprintf(want, sizeof(want), "%s/st", dir);
    cr_assert_str_eq(c->state_dir, want, "state dir is relative to the job file");
    cr_assert_eq(c->sink, SL_SINK_KAFKA);
    cr_assert_eq(c->out_fmt, SL_OUT_AVRO);
    uint64_t fp = c->fingerprint;
    sl__conf_destroy(c);

    /* The fingerprint follows the query, not the trigger. */
    char other[4096];
    snprintf(other, sizeof(other), GOOD_FMT, "\"trigger\": {\"interval\": 50},");
    cr_assert_eq(sl__conf_parse(other, dir, "job.json", &c, err, sizeof(err)), SL_OK, "%s", err);
    cr_assert_eq(c->interval_ms, 50);
    cr_assert_eq(c->fingerprint, fp);
    sl__conf_destroy(c);
    snprintf(other, sizeof(other), GOOD_FMT, "");
    char *where = strstr(other, "bytes > 0");
    cr_assert_not_null(where);
    where[8] = '1';
    cr_assert_eq(sl__conf_parse(other, dir, "job.json", &c, err, sizeof(err)), SL_OK, "%s", err);
    cr_assert_neq(c->fingerprint, fp);
    sl__conf_destroy(c);
}

/* Every string of @p want must appear, and there must be @p nlines problem lines. */
static void expect_problems(const char *json, const char *const *want, int nlines)
{
    char err[8192] = "";
    sl_conf_t *c = NULL;
    cr_assert_eq(sl__conf_parse(json, dir, "job.json", &c, err, sizeof(err)), SL_ERR_INVAL,
                 "a bad job was accepted");
    cr_assert_null(c);
    int lines = 1;
    for (const char *p = err; *p; p++)
        lines += *p == '\n';
    for (const char *const *w = want; *w; w++)
        cr_assert(strstr(err, *w), "expected \"%s\" in:\n%s", *w, err);
    cr_assert_eq(lines, nlines, "expected %d problem lines, got %d:\n%s", nlines, lines, err);
}

Test(conf, every_problem_is_reported_with_its_path)
{
    const char *bad =
        "{\"name\": \"pages\", \"colour\": 1,"
        " \"kafka\": {\"enable.auto.commit\": true},"
        " \"source\": {\"topics\": [\"pv\", 3], \"schema\": \"pageview.avsc\"},"
        " \"query\": {\"group_by\": [\"page\", \"pgae\"],"
        "            \"aggregates\": [{\"fn\": \"median\", \"field\": \"bytes\"},"
        "                             {\"fn\": \"sum\", \"field\": \"page\"},"
        "                             {\"fn\": \"max\"}]},"
        " \"trigger\": {\"interval\": \"soon\"},"
        " \"output\": {\"mode\": \"complete\", \"sink\": \"kafka\"},"
        " \"state\": {}}";
    const char *const want[] = {
        "job.json: (top level): unknown key 'colour'",
        "job.json: kafka[\"bootstrap.servers\"]: missing",
        "job.json: kafka: 'enable.auto.commit' is managed by sluice",
        "job.json: source.topics[1]: must be a topic name",
        "job.json: query.group_by[1]: unknown field 'pgae' (the input has: user_id, page, ts_ms, "
        "bytes, latency_ms)",
        "job.json: query.aggregates[0].fn: unknown aggregate 'median'",
        "job.json: query.aggregates[1].field: sum needs a numeric field; 'page' is a string",
        "job.json: query.aggregates[2].field: missing",
        "job.json: trigger.interval: must be a duration",
        "job.json: output.mode: 'complete' mode is not available yet",
        "job.json: output.topic: missing",
        "job.json: state.dir: missing",
        NULL};
    expect_problems(bad, want, 12);
}

Test(conf, bad_json_and_missing_schema)
{
    const char *const want1[] = {"job.json: (file): not valid JSON", "line 1", NULL};
    char err[1024];
    sl_conf_t *c;
    cr_assert_eq(sl__conf_parse("{\"name\": ", dir, "job.json", &c, err, sizeof(err)),
                 SL_ERR_INVAL);
    for (const char *const *w = want1; *w; w++)
        cr_assert(strstr(err, *w), "expected \"%s\" in %s", *w, err);

    const char *missing =
        "{\"name\": \"x\", \"kafka\": {\"bootstrap.servers\": \"h:1\"},"
        " \"source\": {\"topics\": \"pv\", \"schema\": \"nope.avsc\"},"
        " \"query\": {\"group_by\": \"page\", \"aggregates\": [{\"fn\": \"count\"}]},"
        " \"output\": {\"sink\": \"console\"}, \"state\": {\"dir\": \"s\"}}";
    const char *const want2[] = {"job.json: source.schema: schema file '", "nope.avsc' does not "
                                                                           "exist",
                                 NULL};
    expect_problems(missing, want2, 1);
}

Test(conf, where_errors_name_the_column)
{
    const char *job =
        "{\"name\": \"x\", \"kafka\": {\"bootstrap.servers\": \"h:1\"},"
        " \"source\": {\"topics\": \"pv\", \"schema\": \"pageview.avsc\"},"
        " \"query\": {\"where\": \"bytes > 'a'\", \"group_by\": \"page\","
        "             \"aggregates\": [{\"fn\": \"count\"}]},"
        " \"output\": {\"sink\": \"console\"}, \"state\": {\"dir\": \"s\"}}";
    const char *const want[] = {"job.json: query.where: at column 1: cannot compare long with "
                                "string",
                                NULL};
    expect_problems(job, want, 1);
}

Test(conf, json_source_and_duplicate_columns)
{
    const char *job =
        "{\"name\": \"x\", \"kafka\": {\"bootstrap.servers\": \"h:1\"},"
        " \"source\": {\"topics\": \"pv\", \"format\": \"json\","
        "              \"fields\": {\"page\": \"string\", \"n\": \"long\"}},"
        " \"query\": {\"group_by\": \"page\","
        "             \"aggregates\": [{\"fn\": \"count\", \"as\": \"page\"}]},"
        " \"output\": {\"sink\": \"kafka\", \"topic\": \"o\", \"format\": \"avro\"},"
        " \"state\": {\"dir\": \"s\"}}";
    const char *const want[] = {"query.aggregates[0].as: output column 'page' appears twice",
                                NULL};
    expect_problems(job, want, 1);
}
