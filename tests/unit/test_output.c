/*
 * test_output.c - result rows: JSON encoding (numbers keep their type, strings are
 * escaped, non-finite doubles are null), the message key, and the console table.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "output.h"
#include "sink.h"
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
    cr_assert_eq(sl__out_encode(conf, cols, &k, &v), SL_OK);
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
    encode("/b", 1, NAN, key, val);
    cr_assert(strstr(val, "\"avg_x\":null"), "NaN is null: %s", val);
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
    s.conf = conf;
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
