/*
 * test_output.c - result rows: JSON encoding (numbers keep their type, strings are
 * escaped, non-finite doubles are Spark's strings), the message key, and the console
 * table.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/codec_int.h"
#include "sink/output.h"
#include "sink/sink.h"
#include "tk.h"

static char *dir;
static sl_conf_t *conf;

static void setup(void)
{
    dir = tk_tmpdir("sluice-out");
    const char *job = "{\"name\": \"o\", \"kafka\": {\"bootstrap.servers\": \"h:1\"},"
                      " \"source\": {\"topics\": \"t\", \"format\": \"json\","
                      "   \"fields\": {\"page\": \"string\", \"x\": \"double\"}},"
                      " \"query\": {\"group_by\": \"page\", \"aggregates\": [{\"fn\": \"count\"},"
                      "   {\"fn\": \"avg\", \"field\": \"x\"}]},"
                      " \"output\": {\"sink\": \"console\"}, \"state\": {\"dir\": \"s\"}}";
    char err[2048];
    cr_assert_eq(sl__conf_parse(job, dir, "job.json", &conf, err, sizeof(err)), SL_OK, "%s", err);
}

static void teardown(void)
{
    sl__conf_destroy(conf);
    tk_rmrf(dir);
    free(dir);
}

TestSuite(output, .init = setup, .fini = teardown);

static void encode(const char *page, int64_t count, double avg, char *key, char *val)
{
    sl_val_t cols[3] = {{.t = SL_T_STRING, .n = (uint32_t)strlen(page), .u.s = page},
                        {.t = SL_T_LONG, .u.i = count},
                        {.t = SL_T_DOUBLE, .u.d = avg}};
    sl_buf_t k, v;
    sl__buf_init(&k);
    sl__buf_init(&v);
    cr_assert_eq(sl__out_encode(&conf->plan, conf->output.format, cols, &k, &v), SL_OK);
    snprintf(key, 256, "%.*s", (int)k.len, (const char *)k.p);
    snprintf(val, 256, "%.*s", (int)v.len, (const char *)v.p);
    sl__buf_fini(&k);
    sl__buf_fini(&v);
}

Test(output, json_rows_keep_types_and_escape_strings)
{
    char key[256], val[256];
    encode("/a", 3, 2.0, key, val);
    cr_assert_str_eq(key, "{\"page\":\"/a\"}");
    cr_assert_str_eq(val, "{\"page\":\"/a\",\"count\":3,\"avg_x\":2.0}",
                     "a whole double is written as 2.0, not 2: %s", val);
    encode("q\"\\\n", 1, 0.1, key, val);
    cr_assert_str_eq(val, "{\"page\":\"q\\\"\\\\\\u000a\",\"count\":1,\"avg_x\":0.1}",
                     "escaped, and the shortest text that reads back: %s", val);
    /* JSON has no NaN or infinities: Spark's to_json writes these strings (null would say
     * the value is missing), and both Spark's JSON reader and sluice's read them back. */
    const struct {
        double d;
        const char *text;
    } special[] = {{NAN, "\"NaN\""}, {INFINITY, "\"Infinity\""}, {-INFINITY, "\"-Infinity\""},
                   {-0.0, "-0.0"}};
    for (size_t i = 0; i < 4; i++) {
        encode("/b", 1, special[i].d, key, val);
        char want[64];
        snprintf(want, sizeof(want), "\"avg_x\":%s}", special[i].text);
        cr_assert(strstr(val, want), "expected %s in %s", want, val);
        json_t *doc = json_loads(val, 0, NULL);
        sl_val_t back;
        cr_assert_eq(sl__codec_json_value(json_object_get(doc, "avg_x"), SL_T_DOUBLE, &back), 0);
        cr_assert(back.t == SL_T_DOUBLE && (isnan(special[i].d) ? isnan(back.u.d)
                                                                : back.u.d == special[i].d &&
                                                                      signbit(back.u.d) ==
                                                                          signbit(special[i].d)),
                  "%s reads back", special[i].text);
        json_decref(doc);
    }
    encode("/c", INT64_MIN, 0.5, key, val);
    cr_assert(strstr(val, "\"count\":-9223372036854775808,"), "%s", val);
    encode("/c", INT64_MAX, 0.5, key, val);
    cr_assert(strstr(val, "\"count\":9223372036854775807,"), "%s", val);
    encode("/c", 0, 0.5, key, val);
    cr_assert(strstr(val, "\"count\":0,"), "%s", val);
    encode("/c", -120, 0.5, key, val);
    cr_assert(strstr(val, "\"count\":-120,"), "%s", val);
}

Test(output, console_table_like_spark)
{
    sl_sink_t s;
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    memset(&s, 0, sizeof(s));
    s.plan = &conf->plan;
    s.console = mem;
    sl_val_t rows[2 * 3] = {{.t = SL_T_STRING, .n = 2, .u.s = "/a"},
                            {.t = SL_T_LONG, .u.i = 12},
                            {.t = SL_T_DOUBLE, .u.d = 1.5},
                            {.t = SL_T_STRING, .n = 29, .u.s = "/a-page-name-longer-than-20ch"},
                            {.t = SL_T_LONG, .u.i = 7},
                            {.t = SL_T_NULL}};
    sl__sink_console(&s, 4, rows, 2);
    fclose(mem);
    const char *want = "-------------------------------------------\n"
                       "Batch: 4\n"
                       "-------------------------------------------\n"
                       "+--------------------+-----+-----+\n"
                       "|                page|count|avg_x|\n"
                       "+--------------------+-----+-----+\n"
                       "|                  /a|   12|  1.5|\n"
                       "|/a-page-name-long...|    7| null|\n"
                       "+--------------------+-----+-----+\n"
                       "\n";
    cr_assert_str_eq(text, want, "got:\n%s", text);
    free(text);
}

Test(output, the_console_and_inspect_show_doubles_as_java_and_spark_do)
{
    static const struct {
        double d;
        const char *want;
    } cases[] = {{2.0, "2.0"},
                 {-1.0, "-1.0"},
                 {0.0, "0.0"},
                 {-0.0, "-0.0"},
                 {0.001, "0.001"},
                 {0.0009999, "9.999E-4"},
                 {0.00001, "1.0E-5"},
                 {1234567.0, "1234567.0"},
                 {1e7, "1.0E7"},
                 {12345678.9, "1.23456789E7"},
                 {0.1 + 0.2, "0.30000000000000004"},
                 {-1.5e300, "-1.5E300"},
                 {NAN, "NaN"},
                 {-INFINITY, "-Infinity"}};
    char buf[64];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        sl_val_t v = {.t = SL_T_DOUBLE, .u.d = cases[i].d};
        sl__val_format(&v, buf, sizeof(buf));
        cr_assert_str_eq(buf, cases[i].want, "%.17g", cases[i].d);
    }
}

Test(output, doubles_are_the_shortest_text_that_reads_back)
{
    static const struct {
        double d;
        const char *want;
    } cases[] = {{2.0, "2.0"},
                 {0.1, "0.1"},
                 {-0.0, "-0.0"},
                 {1.0 / 3.0, "0.3333333333333333"},
                 {123456.789, "123456.789"},
                 {0.0001, "0.0001"},
                 {0.00001, "1e-5"},
                 {1e16, "10000000000000000.0"},
                 {1e17, "1e+17"},
                 {-1.5e300, "-1.5e+300"},
                 {5e-324, "5e-324"},
                 {1.7976931348623157e308, "1.7976931348623157e+308"}};
    char buf[SL_DTOA_MAX];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t n = sl__dtoa(cases[i].d, buf);
        cr_assert_str_eq(buf, cases[i].want, "%.17g", cases[i].d);
        cr_assert_eq(n, strlen(buf));
    }
    /* Random bit patterns: each reads back exactly, in no more digits than the shortest
     * %.Ng that does. */
    uint64_t x = 88172645463325252ULL;
    for (int i = 0; i < 200000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        double d;
        memcpy(&d, &x, 8);
        if (!isfinite(d))
            continue;
        size_t n = sl__dtoa(d, buf);
        cr_assert(n > 0 && n < SL_DTOA_MAX && buf[n] == 0);
        cr_assert_eq(strtod(buf, NULL), d, "%s does not read back as %.17g", buf, d);
        cr_assert(strpbrk(buf, ".e"), "%s has neither a point nor an exponent", buf);
        char g[40];
        int prec = 1;
        for (; prec < 17; prec++) {
            snprintf(g, sizeof(g), "%.*g", prec, d);
            if (strtod(g, NULL) == d)
                break;
        }
        /* Significant digits: without the sign, point, exponent, leading and trailing
         * zeros ("2.0" and "0.05" need one). */
        char m[SL_DTOA_MAX];
        size_t k = 0;
        for (const char *p = buf; *p && *p != 'e'; p++) {
            if (*p >= '0' && *p <= '9' && (k || *p != '0'))
                m[k++] = *p;
        }
        while (k > 1 && m[k - 1] == '0')
            k--;
        int digits = (int)k;
        cr_assert_leq(digits, prec + 2, "%s: %d digits, %%.%dg reads back", buf, digits, prec);
    }
}
