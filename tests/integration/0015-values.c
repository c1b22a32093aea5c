/*
 * 0015-values.c - values at the edges of their types, through whole jobs: integer sums
 * beyond a long (the job stops before the batch commits, as Spark's ANSI mode fails the
 * query), expressions that overflow and event times out of range (the decode-error
 * policy), doubles as Spark orders and groups them (NaN, -0.0) over several batches, and
 * JSON strings holding NUL. Files source, memory sink, no broker.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "sluice/sluice.h"
#include "tk.h"

static char *dir;

static void setup(void)
{
    sl_log_configure(SL_LOG_ERROR, 0, NULL);
    dir = tk_tmpdir("sluice-values");
}

static void teardown(void)
{
    tk_rmrf(dir);
    free(dir);
}

TestSuite(values, .init = setup, .fini = teardown, .timeout = 120);

/* Writes @p text as file @p name of the input folder @p sub (made on first use). */
static void input(const char *sub, const char *name, const char *text)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", dir, sub);
    mkdir(path, 0755);
    tk_write_file(path, name, text);
}

/* %s: name, input folder, fields, query, on_decode_error, max_records, mode, state. */
static const char *JOB = "{\"name\": \"values-%s\","
                         " \"source\": {\"type\": \"files\", \"path\": \"%s\", \"format\": \"json\","
                         "   \"fields\": {%s}, \"on_decode_error\": \"%s\"},"
                         " \"query\": {%s},"
                         " \"trigger\": {\"available_now\": true, \"max_records\": %d},"
                         " \"output\": {\"sink\": \"memory\", \"mode\": \"%s\"},"
                         " \"state\": {\"dir\": \"state-%s\"}}";

static tk_job_result_t run(const char *sub, const char *fields, const char *query,
                           const char *on_bad, int max_records, const char *mode)
{
    char job[4096];
    snprintf(job, sizeof(job), JOB, sub, sub, fields, on_bad, query, max_records, mode, sub);
    return tk_run_job(job, dir);
}

/* The row whose column @p col is the string @p key. */
static json_t *row_of(json_t *rows, const char *col, const char *key)
{
    size_t i;
    json_t *r, *found = NULL;
    json_array_foreach(rows, i, r)
    {
        const char *v = json_string_value(json_object_get(r, col));
        if (v && !strcmp(v, key))
            found = r;
    }
    cr_assert_not_null(found, "no row with %s = %s", col, key);
    return found;
}

Test(values, a_sum_beyond_a_long_stops_the_job_before_its_batch_commits)
{
    /* MAX + 1 was published as MIN. Now the batch is not committed (the state keeps MAX,
     * the position stays before the record), and every restart stops the same way, as
     * Spark's ANSI mode fails the query; the fast fold (sums only) and the general one
     * (with a max) both. */
    const char *aggs[] = {"{\"fn\": \"sum\", \"field\": \"x\"}",
                          "{\"fn\": \"sum\", \"field\": \"x\"}, {\"fn\": \"max\", \"field\": "
                          "\"x\"}"};
    for (int g = 0; g < 2; g++) {
        char sub[16], query[512];
        snprintf(sub, sizeof(sub), "sum%d", g);
        snprintf(query, sizeof(query), "\"group_by\": \"k\", \"aggregates\": [%s]", aggs[g]);
        input(sub, "1.json",
              "{\"k\": \"a\", \"x\": 9223372036854775807}\n{\"k\": \"b\", \"x\": -5}\n");
        tk_job_result_t r = run(sub, "\"k\": \"string\", \"x\": \"long\"", query, "fail", 1000,
                                "update");
        cr_assert_eq(r.rc, SL_OK, "%s", r.err);
        cr_assert_eq(json_integer_value(json_object_get(row_of(r.rows, "k", "a"), "sum_x")),
                     INT64_MAX);
        json_decref(r.rows);
        input(sub, "2.json", "{\"k\": \"b\", \"x\": 5}\n{\"k\": \"a\", \"x\": 1}\n");
        for (int again = 0; again < 2; again++) {
            r = run(sub, "\"k\": \"string\", \"x\": \"long\"", query, "fail", 1000, "update");
            cr_assert_eq(r.rc, SL_ERR_OVERFLOW, "run %d: %s", again, r.err);
            cr_assert(strstr(r.err, "sum_x of the group (k=a) is 9223372036854775808, beyond a "
                                    "long's range"),
                      "%s", r.err);
            cr_assert_eq(r.st.batches, 0, "nothing committed");
            cr_assert_eq(json_array_size(r.rows), 0, "nothing published: %s",
                         json_dumps(r.rows, 0));
            json_decref(r.rows);
        }
        /* Within one batch too, from nothing stored. */
        snprintf(sub, sizeof(sub), "one%d", g);
        input(sub, "1.json",
              "{\"k\": \"a\", \"x\": -9223372036854775808}\n{\"k\": \"a\", \"x\": -1}\n");
        r = run(sub, "\"k\": \"string\", \"x\": \"long\"", query, "fail", 1000, "update");
        cr_assert_eq(r.rc, SL_ERR_OVERFLOW, "%s", r.err);
        cr_assert(strstr(r.err, "is -9223372036854775809"), "%s", r.err);
        json_decref(r.rows);
    }
    /* A sum that leaves the range inside a batch and comes back is exact; so is avg. */
    input("back", "1.json",
          "{\"k\": \"a\", \"x\": 9223372036854775807}\n{\"k\": \"a\", \"x\": 9223372036854775807}\n"
          "{\"k\": \"a\", \"x\": -9223372036854775807}\n");
    tk_job_result_t r =
        run("back", "\"k\": \"string\", \"x\": \"long\"",
            "\"group_by\": \"k\", \"aggregates\": [{\"fn\": \"sum\", \"field\": \"x\"}, "
            "{\"fn\": \"avg\", \"field\": \"x\"}]",
            "fail", 1000, "update");
    cr_assert_eq(r.rc, SL_OK, "%s", r.err);
    json_t *a = row_of(r.rows, "k", "a");
    cr_assert_eq(json_integer_value(json_object_get(a, "sum_x")), INT64_MAX);
    cr_assert_eq(json_real_value(json_object_get(a, "avg_x")), 9223372036854775807.0 / 3);
    json_decref(r.rows);
}

Test(values, overflowing_expressions_and_times_go_by_the_decode_policy)
{
    const char *fields = "\"k\": \"string\", \"x\": \"long\", \"ts\": \"long\"";
    const char *query = "\"fields\": [{\"as\": \"y\", \"expr\": \"x * 2\"}],"
                        " \"window\": {\"time\": \"ts\", \"size\": \"1m\"},"
                        " \"group_by\": \"k\", \"aggregates\": [{\"fn\": \"sum\", \"field\": \"y\"}]";
    input("expr", "1.json",
          "{\"k\": \"a\", \"x\": 1, \"ts\": 1000}\n"
          "{\"k\": \"a\", \"x\": 4611686018427387904, \"ts\": 1000}\n"
          "{\"k\": \"a\", \"x\": 2, \"ts\": 9000000000000000000}\n"
          "{\"k\": \"a\", \"x\": 3, \"ts\": 2000}\n");
    tk_job_result_t r = run("expr", fields, query, "skip", 1000, "update");
    cr_assert_eq(r.rc, SL_OK, "%s", r.err);
    cr_assert_eq(r.st.records_bad, 2, "the overflow and the time out of range");
    cr_assert_eq(r.st.records_kept, 2);
    cr_assert_eq(json_integer_value(json_object_get(row_of(r.rows, "k", "a"), "sum_y")), 8);
    json_decref(r.rows);

    char st[1024];
    snprintf(st, sizeof(st), "%s/state-expr", dir);
    tk_rmrf(st);
    r = run("expr", fields, query, "fail", 1000, "update");
    cr_assert_eq(r.rc, SL_ERR_DECODE);
    cr_assert(strstr(r.err, "1.json") && strstr(r.err, "'x * 2' (field 'y') overflows a long") &&
                  strstr(r.err, "the job stops before this record"),
              "%s", r.err);
    json_decref(r.rows);
    tk_rmrf(st);
    input("time", "1.json", "{\"k\": \"a\", \"x\": 2, \"ts\": -9000000000000000000}\n");
    r = run("time", fields, query, "fail", 1000, "update");
    cr_assert_eq(r.rc, SL_ERR_DECODE);
    cr_assert(strstr(r.err, "the event time -9000000000000000000 ('ts') is outside years 1 to "
                            "9999"),
              "%s", r.err);
    json_decref(r.rows);
}

Test(values, doubles_group_and_order_as_spark_over_batches)
{
    /* One record a batch, so every min and max goes through the stored state. */
    input("dbl", "1.json",
          "{\"g\": 0.0, \"k\": \"m\", \"d\": 1.0}\n{\"g\": -0.0, \"k\": \"m\", \"d\": \"NaN\"}\n"
          "{\"g\": \"NaN\", \"k\": \"m\", \"d\": -5.0}\n{\"g\": \"NaN\", \"k\": \"z\", \"d\": -0.0}\n"
          "{\"g\": 0, \"k\": \"z\", \"d\": 0.0}\n{\"g\": \"Infinity\", \"k\": \"z\", \"d\": "
          "\"-Infinity\"}\n");
    tk_job_result_t r =
        run("dbl", "\"g\": \"double\", \"k\": \"string\", \"d\": \"double\"",
            "\"group_by\": \"k\", \"aggregates\": [{\"fn\": \"min\", \"field\": \"d\"}, "
            "{\"fn\": \"max\", \"field\": \"d\"}, {\"fn\": \"count_distinct\", \"field\": \"g\"}]",
            "fail", 1, "complete");
    cr_assert_eq(r.rc, SL_OK, "%s", r.err);
    cr_assert_eq(r.st.batches, 6);
    json_t *m = row_of(r.rows, "k", "m"), *z = row_of(r.rows, "k", "z");
    cr_assert_eq(json_real_value(json_object_get(m, "min_d")), -5.0);
    cr_assert_str_eq(json_string_value(json_object_get(m, "max_d")), "NaN",
                     "NaN is above every number: %s", json_dumps(m, 0));
    cr_assert_eq(json_integer_value(json_object_get(m, "count_distinct_g")), 2, "0.0, -0.0, NaN");
    cr_assert_str_eq(json_string_value(json_object_get(z, "min_d")), "-Infinity");
    double zmax = json_real_value(json_object_get(z, "max_d"));
    cr_assert(zmax == 0.0 && !signbit(zmax), "max of -0.0 and 0.0 is 0.0: %s", json_dumps(z, 0));
    cr_assert_eq(json_integer_value(json_object_get(z, "count_distinct_g")), 3);
    json_decref(r.rows);

    /* As group keys: -0.0 is 0.0, every NaN one group. */
    char cp[2100];
    snprintf(cp, sizeof(cp), "cp -r %s/dbl %s/dbl2", dir, dir);
    cr_assert_eq(system(cp), 0);
    r = run("dbl2", "\"g\": \"double\", \"k\": \"string\", \"d\": \"double\"",
            "\"group_by\": \"g\", \"aggregates\": [{\"fn\": \"count\"}]", "fail", 2, "complete");
    cr_assert_eq(r.rc, SL_OK, "%s", r.err);
    cr_assert_eq(json_array_size(r.rows), 3, "0.0, NaN, Infinity: %s", json_dumps(r.rows, 0));
    size_t i;
    json_t *row;
    json_array_foreach(r.rows, i, row)
    {
        json_t *g = json_object_get(row, "g");
        int64_t n = json_integer_value(json_object_get(row, "count"));
        if (json_is_string(g) && !strcmp(json_string_value(g), "NaN"))
            cr_assert_eq(n, 2);
        else if (json_is_string(g))
            cr_assert_str_eq(json_string_value(g), "Infinity");
        else
            cr_assert(json_real_value(g) == 0.0 && !signbit(json_real_value(g)) && n == 3,
                      "%s", json_dumps(row, 0));
    }
    json_decref(r.rows);
}

Test(values, json_strings_may_hold_nul)
{
    input("nul", "1.json",
          "{\"k\": \"a\\u0000b\"}\n{\"k\": \"a\\u0000c\"}\n{\"k\": \"a\\u0000b\"}\n");
    tk_job_result_t r = run("nul", "\"k\": \"string\"",
                            "\"group_by\": \"k\", \"aggregates\": [{\"fn\": \"count\"}]", "fail",
                            1000, "complete");
    cr_assert_eq(r.rc, SL_OK, "%s", r.err);
    cr_assert_eq(r.st.records_bad, 0);
    cr_assert_eq(json_array_size(r.rows), 2);
    size_t i;
    json_t *row;
    json_array_foreach(r.rows, i, row)
    {
        json_t *k = json_object_get(row, "k");
        cr_assert_eq(json_string_length(k), 3);
        cr_assert(!memcmp(json_string_value(k), "a\0", 2));
        cr_assert_eq(json_integer_value(json_object_get(row, "count")),
                     json_string_value(k)[2] == 'b' ? 2 : 1);
    }
    json_decref(r.rows);
}
