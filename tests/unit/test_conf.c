/*
 * test_conf.c - job files: what a valid one yields, and that every problem of a bad one
 * is reported with the path of the field.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf/conf.h"
#include "sluice/sluice_dev.h"
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
    cr_assert_str_eq(c->kafka.bootstrap, "127.0.0.1:9092");
    cr_assert_eq(c->source.ntopics, 1);
    cr_assert_eq(c->trigger.interval_ms, 2000, "default trigger interval is 2 s");
    cr_assert_eq(c->trigger.max_keys, 200000, "a batch holds at most 200,000 groups by default");
    cr_assert_eq(c->plan.ngroup, 1);
    cr_assert_eq(c->plan.naggs, 3);
    cr_assert_str_eq(c->plan.aggs[0].as, "count");
    cr_assert_str_eq(c->plan.aggs[1].as, "sum_bytes");
    cr_assert_str_eq(c->plan.aggs[2].as, "lat");
    cr_assert_eq(c->kafka.consumer.n, 1);
    char want[1024];
    snprintf(want, sizeof(want), "%s/st", dir);
    cr_assert_str_eq(c->state.dir, want, "state dir is relative to the job file");
    cr_assert_eq(c->output.sink, SL_SINK_KAFKA);
    cr_assert_eq(c->output.format, SL_OUT_AVRO);
    uint64_t fp = c->fingerprint;
    sl__conf_destroy(c);

    /* The fingerprint follows what the state depends on: not the trigger, the sink or the
     * filter (compatible changes, as in Spark), but the aggregates. */
    char other[4096];
    snprintf(other, sizeof(other), GOOD_FMT,
             "\"trigger\": {\"interval\": 50, \"max_keys\": 5000},");
    cr_assert_eq(sl__conf_parse(other, dir, "job.json", &c, err, sizeof(err)), SL_OK, "%s", err);
    cr_assert_eq(c->trigger.interval_ms, 50);
    cr_assert_eq(c->trigger.max_keys, 5000);
    cr_assert_eq(c->fingerprint, fp);
    sl__conf_destroy(c);
    snprintf(other, sizeof(other), GOOD_FMT, "");
    char *where = strstr(other, "bytes > 0");
    cr_assert_not_null(where);
    where[8] = '1';
    cr_assert_eq(sl__conf_parse(other, dir, "job.json", &c, err, sizeof(err)), SL_OK, "%s", err);
    cr_assert_eq(c->fingerprint, fp, "a new filter is a compatible change");
    sl__conf_destroy(c);
    snprintf(other, sizeof(other), GOOD_FMT, "");
    char *lat = strstr(other, "\"lat\"");
    cr_assert_not_null(lat);
    lat[1] = 'L';
    cr_assert_eq(sl__conf_parse(other, dir, "job.json", &c, err, sizeof(err)), SL_OK, "%s", err);
    cr_assert_neq(c->fingerprint, fp, "a renamed aggregate is not");
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
    const char *bad = "{\"name\": \"pages\", \"colour\": 1,"
                      " \"kafka\": {\"enable.auto.commit\": true},"
                      " \"source\": {\"topics\": [\"pv\", 3], \"schema\": \"pageview.avsc\"},"
                      " \"query\": {\"group_by\": [\"page\", \"pgae\"],"
                      "            \"aggregates\": [{\"fn\": \"median\", \"field\": \"bytes\"},"
                      "                             {\"fn\": \"sum\", \"field\": \"page\"},"
                      "                             {\"fn\": \"max\"}]},"
                      " \"trigger\": {\"interval\": \"soon\", \"max_keys\": 10},"
                      " \"output\": {\"mode\": \"sideways\", \"sink\": \"kafka\"},"
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
        "job.json: trigger.max_keys: must be an integer of at least 1000",
        "job.json: output.mode: unknown mode 'sideways' (update, complete or append)",
        "job.json: output.topic: missing",
        "job.json: state.dir: missing",
        NULL};
    expect_problems(bad, want, 13);
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
    const char *const want2[] = {"job.json: source.schema: schema file '",
                                 "nope.avsc' does not "
                                 "exist",
                                 NULL};
    expect_problems(missing, want2, 1);
}

Test(conf, where_errors_name_the_column)
{
    const char *job = "{\"name\": \"x\", \"kafka\": {\"bootstrap.servers\": \"h:1\"},"
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
    const char *job = "{\"name\": \"x\", \"kafka\": {\"bootstrap.servers\": \"h:1\"},"
                      " \"source\": {\"topics\": \"pv\", \"format\": \"json\","
                      "              \"fields\": {\"page\": \"string\", \"n\": \"long\"}},"
                      " \"query\": {\"group_by\": \"page\","
                      "             \"aggregates\": [{\"fn\": \"count\", \"as\": \"page\"}]},"
                      " \"output\": {\"sink\": \"kafka\", \"topic\": \"o\", \"format\": \"avro\"},"
                      " \"state\": {\"dir\": \"s\"}}";
    const char *const want[] = {"query.aggregates[0].as: output column 'page' appears twice", NULL};
    expect_problems(job, want, 1);
}

/* A job on a JSON source with an event time; %s: the query's extra keys, %s: output. */
static const char *WIN_FMT =
    "{\"name\": \"w\", \"kafka\": {\"bootstrap.servers\": \"h:1\"},"
    " \"source\": {\"topics\": \"pv\", \"format\": \"json\","
    "              \"fields\": {\"page\": \"string\", \"ts\": \"timestamp\", \"n\": \"long\","
    "                          \"line\": \"string\"}},"
    " \"query\": {%s},"
    " \"output\": {%s}, \"state\": {\"dir\": \"s\"}}";

static sl_conf_t *parse_ok(const char *query, const char *output)
{
    char job[4096], err[4096] = "";
    snprintf(job, sizeof(job), WIN_FMT, query, output);
    sl_conf_t *c = NULL;
    cr_assert_eq(sl__conf_parse(job, dir, "job.json", &c, err, sizeof(err)), SL_OK, "%s\n%s", query,
                 err);
    return c;
}

static void parse_bad(const char *query, const char *output, const char *want)
{
    char job[4096];
    snprintf(job, sizeof(job), WIN_FMT, query, output);
    const char *const w[] = {want, NULL};
    expect_problems(job, w, 1);
}

Test(conf, windows_and_watermarks)
{
    sl_conf_t *c = parse_ok("\"window\": {\"time\": \"ts\", \"size\": \"10 minutes\", "
                            "\"slide\": \"5 minutes\"}, \"watermark\": {\"field\": \"ts\", "
                            "\"delay\": \"1m\", \"idle_timeout\": \"30s\"}, \"group_by\": "
                            "\"page\", \"aggregates\": [{\"fn\": \"count\"}]",
                            "\"sink\": \"console\", \"mode\": \"append\"");
    cr_assert_eq(c->plan.window, SL_WIN_SLIDING);
    cr_assert_eq(c->plan.win_size_ms, 600000);
    cr_assert_eq(c->plan.win_slide_ms, 300000);
    cr_assert_eq(c->plan.wm_delay_ms, 60000);
    cr_assert_eq(c->plan.idle_timeout_ms, 30000);
    cr_assert_eq(c->plan.mode, SL_MODE_APPEND);
    cr_assert_eq(c->plan.ncols, 4);
    cr_assert_str_eq(c->plan.cols[0].name, "window_start");
    cr_assert_str_eq(c->plan.cols[1].name, "window_end");
    cr_assert_str_eq(c->plan.cols[2].name, "page");
    cr_assert_eq(c->plan.nkeycols, 3, "the window is part of the message key");
    sl__conf_destroy(c);

    c = parse_ok("\"window\": {\"time\": \"ts\", \"gap\": \"30s\"}, \"group_by\": [],"
                 " \"aggregates\": [{\"fn\": \"count\"}, {\"fn\": \"last\", \"field\": \"page\"}]",
                 "\"sink\": \"console\", \"mode\": \"complete\"");
    cr_assert_eq(c->plan.window, SL_WIN_SESSION);
    cr_assert_eq(c->plan.aggs[1].time_slot, c->plan.time_slot, "last is ordered by the window's time");
    sl__conf_destroy(c);

    parse_bad("\"window\": {\"time\": \"page\", \"size\": \"1m\"}, \"aggregates\": "
              "[{\"fn\": \"count\"}]",
              "\"sink\": \"console\"",
              "query.window.time: the event time must be a timestamp or a long of epoch "
              "milliseconds; 'page' is a string");
    parse_bad("\"window\": {\"time\": \"ts\", \"size\": \"1m\", \"slide\": \"2m\"}, "
              "\"aggregates\": [{\"fn\": \"count\"}]",
              "\"sink\": \"console\"", "query.window.slide: the slide must not exceed the size");
    parse_bad("\"window\": {\"time\": \"ts\", \"size\": \"1m\", \"gap\": \"2m\"}, "
              "\"aggregates\": [{\"fn\": \"count\"}]",
              "\"sink\": \"console\"", "query.window: a session window has a gap only");
    parse_bad("\"window\": {\"time\": \"ts\", \"size\": \"soon\"}, \"aggregates\": "
              "[{\"fn\": \"count\"}]",
              "\"sink\": \"console\"", "query.window.size: must be a duration");
    parse_bad("\"watermark\": {\"field\": \"ts\"}, \"window\": {\"time\": \"ts\", \"size\": "
              "\"1m\"}, \"group_by\": \"page\", \"aggregates\": [{\"fn\": \"count\"}]",
              "\"sink\": \"console\"", "query.watermark.delay: missing");
    parse_bad("\"group_by\": \"page\", \"aggregates\": [{\"fn\": \"first\", \"field\": "
              "\"n\"}]",
              "\"sink\": \"console\"",
              "query.aggregates[0]: first needs an event time: set \"by\", a window or a "
              "watermark");
}

Test(conf, output_mode_rules)
{
    /* Spark's rules, each with the reason. */
    parse_bad("\"group_by\": \"page\", \"aggregates\": [{\"fn\": \"count\"}]",
              "\"sink\": \"console\", \"mode\": \"append\"",
              "output.mode: append mode emits a row once, when it can no longer change, so "
              "an aggregation needs a window and a watermark");
    parse_bad("\"window\": {\"time\": \"ts\", \"size\": \"1m\"}, \"group_by\": \"page\", "
              "\"aggregates\": [{\"fn\": \"count\"}]",
              "\"sink\": \"console\", \"mode\": \"append\"", "append mode emits a row once");
    /* A misspelt watermark field is the one problem: the watermark is there. */
    parse_bad("\"window\": {\"time\": \"ts\", \"size\": \"1m\"}, \"watermark\": {\"field\": "
              "\"tss\", \"delay\": \"1m\"}, \"group_by\": \"page\", \"aggregates\": [{\"fn\": "
              "\"count\"}]",
              "\"sink\": \"console\", \"mode\": \"append\"",
              "query.watermark.field: unknown field 'tss'");
    parse_bad("\"select\": [\"page\"]", "\"sink\": \"console\", \"mode\": \"complete\"",
              "output.mode: complete mode outputs the whole result table, so it needs an "
              "aggregation");
    parse_bad("\"select\": [\"page\"], \"group_by\": \"page\", \"aggregates\": [{\"fn\": "
              "\"count\"}]",
              "\"sink\": \"console\"", "query.select: a query with group_by");
    parse_bad("\"where\": \"n > 1\"", "\"sink\": \"console\"", "query: nothing to output");
    parse_bad("\"watermark\": {\"field\": \"ts\", \"delay\": \"1m\"}, \"group_by\": \"page\","
              " \"aggregates\": [{\"fn\": \"count\"}]",
              "\"sink\": \"console\"", "query.watermark: a watermark closes windows");
    parse_bad("\"group_by\": \"page\", \"aggregates\": [{\"fn\": \"count\"}]", "\"sink\": \"file\"",
              "output.path: missing");
    parse_bad("\"group_by\": \"page\", \"aggregates\": [{\"fn\": \"count\"}]",
              "\"sink\": \"file\", \"path\": \"out\", \"format\": \"avro\"",
              "output.format: only the kafka sink writes Avro");

    /* Records passed through: append (or update, the same) with a projection. */
    sl_conf_t *c = parse_ok("\"where\": \"n > 1\", \"select\": [\"page\", {\"expr\": \"n * 2\", "
                            "\"as\": \"n2\"}, \"length(line)\"]",
                            "\"sink\": \"console\", \"mode\": \"append\"");
    cr_assert_eq(c->plan.aggregating, 0);
    cr_assert_eq(c->plan.ncols, 3);
    cr_assert_str_eq(c->plan.cols[1].name, "n2");
    cr_assert_str_eq(c->plan.cols[2].name, "length(line)", "an unnamed expression is named by its text");
    cr_assert_eq(c->plan.cols[2].type, SL_T_LONG);
    cr_assert_eq(c->plan.nkeycols, 0);
    sl__conf_destroy(c);
}

Test(conf, derived_fields_and_group_by_expressions)
{
    sl_conf_t *c = parse_ok("\"fields\": [{\"as\": \"len\", \"expr\": \"length(line)\"},"
                            "             {\"as\": \"big\", \"expr\": \"len > 10\"}],"
                            " \"where\": \"big\", \"group_by\": [\"len\", {\"expr\": "
                            "\"lower(page)\", \"as\": \"p\"}],"
                            " \"aggregates\": [{\"fn\": \"count_distinct\", \"field\": "
                            "\"page\"}, {\"fn\": \"approx_count_distinct\", \"field\": \"n\", "
                            "\"rsd\": 0.01}]",
                            "\"sink\": \"console\"");
    cr_assert_eq(c->plan.nderived, 3);
    cr_assert_str_eq(c->plan.cols[0].name, "len");
    cr_assert_str_eq(c->plan.cols[1].name, "p");
    cr_assert_eq(c->plan.aggs[1].hll_p, 14);
    sl__conf_destroy(c);
    parse_bad("\"fields\": [{\"as\": \"page\", \"expr\": \"n + 1\"}], \"group_by\": \"page\", "
              "\"aggregates\": [{\"fn\": \"count\"}]",
              "\"sink\": \"console\"", "query.fields[0]: 'page' is already a field");
    parse_bad("\"group_by\": \"length(n)\", \"aggregates\": [{\"fn\": \"count\"}]",
              "\"sink\": \"console\"",
              "query.group_by[0]: at column 8: argument 1 of length must be a string, not a long");
    parse_bad("\"group_by\": \"length(line)\", \"aggregates\": [{\"fn\": \"count\"}]",
              "\"sink\": \"kafka\", \"topic\": \"o\", \"format\": \"avro\"",
              "'length(line)' is not a valid Avro field name");
}

Test(conf, schema_paths_that_are_not_files_are_refused)
{
    /* /dev/zero made validate read forever; a FIFO would block it; a huge file would be
     * read whole. Each is refused, naming the file and why. */
    const char *fmt = "{\"name\": \"x\", \"kafka\": {\"bootstrap.servers\": \"h:1\"},"
                      " \"source\": {\"topics\": \"pv\", \"schema\": \"%s\"},"
                      " \"query\": {\"group_by\": \"page\", \"aggregates\": [{\"fn\": \"count\"}]},"
                      " \"output\": {\"sink\": \"console\"}, \"state\": {\"dir\": \"s\"}}";
    char job[1024], fifo[512], big[512];
    snprintf(job, sizeof(job), fmt, "/dev/zero");
    const char *const w1[] = {"source.schema: cannot read schema file '/dev/zero': not a regular "
                              "file",
                              NULL};
    expect_problems(job, w1, 1);

    snprintf(fifo, sizeof(fifo), "%s/fifo.avsc", dir);
    cr_assert_eq(mkfifo(fifo, 0600), 0);
    snprintf(job, sizeof(job), fmt, "fifo.avsc");
    const char *const w2[] = {"fifo.avsc': not a regular file", NULL};
    expect_problems(job, w2, 1);

    snprintf(big, sizeof(big), "%s/big.avsc", dir);
    FILE *f = fopen(big, "w");
    cr_assert_not_null(f);
    cr_assert_eq(ftruncate(fileno(f), (off_t)SL_FILE_MAX + 1), 0);
    fclose(f);
    snprintf(job, sizeof(job), fmt, "big.avsc");
    const char *const w3[] = {"big.avsc': 16777217 bytes, more than the 16777216 allowed", NULL};
    expect_problems(job, w3, 1);

    sl_job_t *jp;
    char err[512];
    cr_assert_eq(sl_job_new_from_file("/dev/zero", &jp, err, sizeof(err)), SL_ERR_INVAL);
    cr_assert(strstr(err, "/dev/zero: cannot read the job file: not a regular file"), "%s", err);
}

Test(conf, an_unknown_window_time_with_a_watermark_is_one_problem)
{
    /* The window's time names no field; the watermark is on another one. The mode checks
     * compared the two and read the name of slot -1 (fields[-1]). */
    parse_bad("\"window\": {\"time\": \"tss\", \"size\": \"1m\"}, \"watermark\": {\"field\": "
              "\"ts\", \"delay\": \"1m\"}, \"group_by\": \"page\", \"aggregates\": "
              "[{\"fn\": \"count\"}]",
              "\"sink\": \"console\", \"mode\": \"append\"",
              "query.window.time: unknown field 'tss'");
    parse_bad("\"window\": {\"time\": \"tss\", \"size\": \"1m\"}, \"watermark\": {\"field\": "
              "\"ts\", \"delay\": \"1m\"}, \"group_by\": \"page\", \"aggregates\": "
              "[{\"fn\": \"first\", \"field\": \"n\"}]",
              "\"sink\": \"console\", \"mode\": \"update\"",
              "query.window.time: unknown field 'tss'");
}

Test(conf, durations_are_bounded)
{
    /* A window or delay of more than 100 years would overflow window arithmetic. */
    parse_bad("\"window\": {\"time\": \"ts\", \"size\": 9223372036854775807}, \"group_by\": "
              "\"page\", \"aggregates\": [{\"fn\": \"count\"}]",
              "\"sink\": \"console\"", "query.window.size: must be a duration");
    parse_bad("\"window\": {\"time\": \"ts\", \"size\": \"1e300 hours\"}, \"group_by\": "
              "\"page\", \"aggregates\": [{\"fn\": \"count\"}]",
              "\"sink\": \"console\"", "query.window.size: must be a duration");
    sl_conf_t *c = parse_ok("\"window\": {\"time\": \"ts\", \"size\": \"876000h\"}, \"group_by\": "
                            "\"page\", \"aggregates\": [{\"fn\": \"count\"}]",
                            "\"sink\": \"console\"");
    cr_assert_eq(c->plan.win_size_ms, 876000LL * 3600000);
    sl__conf_destroy(c);
}

Test(conf, confluent_framing_names_its_schema_ids)
{
    const char *fmt = "{\"name\": \"x\", \"kafka\": {\"bootstrap.servers\": \"h:1\"},"
                      " \"source\": {\"topics\": \"pv\", %s},"
                      " \"query\": {\"group_by\": \"page\", \"aggregates\": [{\"fn\": \"count\"}]},"
                      " \"output\": {\"sink\": \"console\"}, \"state\": {\"dir\": \"s\"}}";
    struct {
        const char *src, *want;
    } bad[] = {
        {"\"schema\": \"pageview.avsc\", \"confluent_wire\": true",
         "source.schema_ids: missing: the Confluent schema ids"},
        {"\"schema\": \"pageview.avsc\", \"schema_ids\": [3]",
         "source.schema_ids: only records in the Confluent wire format carry a schema id"},
        {"\"schema\": \"pageview.avsc\", \"confluent_wire\": true, \"schema_ids\": []",
         "source.schema_ids: must be a list of 1 to 64 schema ids"},
        {"\"schema\": \"pageview.avsc\", \"confluent_wire\": true, \"schema_ids\": [1, -2]",
         "source.schema_ids[1]: must be a schema id"},
        {"\"format\": \"json\", \"fields\": {\"page\": \"string\"}, \"confluent_wire\": true",
         "source.format: the Confluent wire format (confluent_wire, schema_ids) frames Avro "
         "records, not json"},
    };
    for (size_t i = 0; i < SL_ARRAY_LEN(bad); i++) {
        char job[2048];
        snprintf(job, sizeof(job), fmt, bad[i].src);
        const char *const w[] = {bad[i].want, NULL};
        expect_problems(job, w, 1);
    }
    char job[2048], err[2048];
    snprintf(job, sizeof(job), fmt,
             "\"schema\": \"pageview.avsc\", \"confluent_wire\": true, \"schema_ids\": [3, 9]");
    sl_conf_t *c;
    cr_assert_eq(sl__conf_parse(job, dir, "job.json", &c, err, sizeof(err)), SL_OK, "%s", err);
    sl__conf_destroy(c);
}
