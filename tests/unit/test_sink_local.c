/*
 * test_sink_local.c - the sinks that are not Kafka: the file sink (a batch's rows as one
 * JSON lines file, written whole), the memory sink (every row, or complete mode's last
 * table), the foreach sink (the callback and what it can read of a batch), and the replay
 * of what the outbox holds after an interrupted run.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "commit/outbox.h"
#include "conf/conf.h"
#include "sink/output.h"
#include "sink/sink_local.h"
#include "store.h"
#include "layout.h"
#include "tk.h"
#include "tk_state.h"

static char *dir;
static sl_conf_t *conf;
static sl_local_t local;
static sl_store_t *store; /* the replay tests' */

static void setup(void)
{
    sl_log_configure(SL_LOG_ERROR, 0, NULL);
    dir = tk_tmpdir("sluice-lsink");
}

static void teardown(void)
{
    sl__store_close(store);
    store = NULL;
    sl__local_close(&local);
    sl__conf_destroy(conf);
    conf = NULL;
    tk_rmrf(dir);
    free(dir);
}

TestSuite(sink_local, .init = setup, .fini = teardown);

/* A job whose rows are (page, count, avg_x, max_t), with output @p output (JSON text). */
static void parse_job(const char *output)
{
    char job[1024], err[2048] = "";
    snprintf(job, sizeof(job),
             "{\"name\": \"s\", \"source\": {\"type\": \"files\", \"path\": \"in\","
             "   \"format\": \"json\","
             "   \"fields\": {\"page\": \"string\", \"x\": \"double\", \"t\": \"timestamp\"}},"
             " \"query\": {\"group_by\": \"page\", \"aggregates\": [{\"fn\": \"count\"},"
             "   {\"fn\": \"avg\", \"field\": \"x\"}, {\"fn\": \"max\", \"field\": \"t\"}]},"
             " \"output\": %s, \"state\": {\"dir\": \"st\"}}",
             output);
    cr_assert_eq(sl__conf_parse(job, dir, "job.json", &conf, err, sizeof(err)), SL_OK, "%s", err);
    cr_assert_eq(conf->plan.ncols, 4);
}

static void open_sink(const char *output, sl_foreach_batch_fn fn, void *opaque)
{
    char err[1024] = "";
    parse_job(output);
    cr_assert_eq(sl__local_open(&local, &conf->plan, &conf->output, fn, opaque, err, sizeof(err)),
                 SL_OK, "%s", err);
}

/* Three rows: the second has a null average (no x), the third a NaN one. */
static const sl_val_t rows[3 * 4] = {
    {.t = SL_T_STRING, .n = 2, .u.s = "/a"},     {.t = SL_T_LONG, .u.i = 3},
    {.t = SL_T_DOUBLE, .u.d = 1.5},              {.t = SL_T_TIMESTAMP, .u.i = 1795597200123},
    {.t = SL_T_STRING, .n = 4, .u.s = "/b\"c"},  {.t = SL_T_LONG, .u.i = 1},
    {.t = SL_T_NULL},                            {.t = SL_T_TIMESTAMP, .u.i = -1},
    {.t = SL_T_STRING, .n = 0, .u.s = ""},       {.t = SL_T_LONG, .u.i = 2},
    {.t = SL_T_DOUBLE, .u.d = NAN},              {.t = SL_T_NULL},
};
static const char *const rows_json[3] = {
    "{\"page\":\"/a\",\"count\":3,\"avg_x\":1.5,\"max_t\":\"2026-11-25T09:00:00.123Z\"}",
    "{\"page\":\"/b\\\"c\",\"count\":1,\"avg_x\":null,\"max_t\":\"1969-12-31T23:59:59.999Z\"}",
    "{\"page\":\"\",\"count\":2,\"avg_x\":\"NaN\",\"max_t\":null}",
};

/* The JSON encodings of rows[first .. first + n - 1], as a batch hands them to the sink;
 * their bytes are in @p buf. */
static void encode(size_t first, size_t n, sl_buf_t *buf, sl_out_row_t *out)
{
    size_t start[3];
    sl__buf_reset(buf);
    for (size_t i = 0; i < n; i++) {
        start[i] = buf->len;
        cr_assert_eq(sl__out_json(&conf->plan, &rows[(first + i) * 4], buf), SL_OK);
    }
    for (size_t i = 0; i < n; i++) {
        size_t end = i + 1 < n ? start[i + 1] : buf->len;
        out[i] = (sl_out_row_t){.val = buf->p + start[i], .vlen = end - start[i]};
        cr_assert(out[i].vlen == strlen(rows_json[first + i]) &&
                      !memcmp(out[i].val, rows_json[first + i], out[i].vlen),
                  "row %zu: expected %s, got %.*s", first + i, rows_json[first + i],
                  (int)out[i].vlen, (const char *)out[i].val);
    }
}

/* The names in @p path, sorted, joined by spaces. */
static void list_dir(const char *path, char *out, size_t size)
{
    struct dirent **names;
    int n = scandir(path, &names, NULL, alphasort);
    cr_assert_geq(n, 0, "scandir %s", path);
    out[0] = 0;
    for (int i = 0; i < n; i++) {
        if (strcmp(names[i]->d_name, ".") && strcmp(names[i]->d_name, "..")) {
            size_t at = strlen(out);
            snprintf(out + at, size - at, "%s%s", at ? " " : "", names[i]->d_name);
        }
        free(names[i]);
    }
    free(names);
}

static const char *out_file(int64_t seq)
{
    static char path[1024];
    snprintf(path, sizeof(path), "%s/out/batch-%012lld.jsonl", dir, (long long)seq);
    return path;
}

Test(sink_local, file_sink_writes_a_batch_as_one_json_lines_file)
{
    open_sink("{\"sink\": \"file\", \"path\": \"out\"}", NULL, NULL);
    char out[600], names[1024], err[512] = "";
    snprintf(out, sizeof(out), "%s/out", dir);
    struct stat st;
    cr_assert(stat(out, &st) == 0 && S_ISDIR(st.st_mode), "opening made the directory");

    sl_buf_t buf;
    sl__buf_init(&buf);
    sl_out_row_t json[3];
    encode(0, 3, &buf, json);
    cr_assert_eq(sl__local_deliver(&local, 7, rows, 3, json, err, sizeof(err)), SL_OK, "%s", err);
    char want[1024];
    snprintf(want, sizeof(want), "%s\n%s\n%s\n", rows_json[0], rows_json[1], rows_json[2]);
    cr_assert_str_eq(tk_slurp(out_file(7)), want);
    list_dir(out, names, sizeof(names));
    cr_assert_str_eq(names, "batch-000000000007.jsonl", "no temporary file is left");

    cr_assert_eq(sl__local_deliver(&local, 8, rows, 0, json, err, sizeof(err)), SL_OK);
    list_dir(out, names, sizeof(names));
    cr_assert_str_eq(names, "batch-000000000007.jsonl", "a batch of no rows writes no file");

    /* A batch delivered again (a replay) replaces its file whole. */
    encode(1, 1, &buf, json);
    cr_assert_eq(sl__local_deliver(&local, 7, rows + 4, 1, json, err, sizeof(err)), SL_OK);
    snprintf(want, sizeof(want), "%s\n", rows_json[1]);
    cr_assert_str_eq(tk_slurp(out_file(7)), want);
    sl__buf_fini(&buf);
}

Test(sink_local, file_sink_path_that_cannot_be_a_directory_is_refused_at_open)
{
    char err[1024] = "", want[1024];
    parse_job("{\"sink\": \"file\", \"path\": \"no/such/out\"}");
    cr_assert_eq(sl__local_open(&local, &conf->plan, &conf->output, NULL, NULL, err, sizeof(err)),
                 SL_ERR_IO);
    snprintf(want, sizeof(want), "output.path %s/no/such/out: cannot create it: No such file or "
             "directory", dir);
    cr_assert_str_eq(err, want);
    sl__local_close(&local);
    sl__conf_destroy(conf);

    /* A regular file where the directory should be: found at open, not at the first batch
     * (after its state was committed). */
    tk_write_file(dir, "plain", "x");
    parse_job("{\"sink\": \"file\", \"path\": \"plain\"}");
    err[0] = 0;
    cr_assert_eq(sl__local_open(&local, &conf->plan, &conf->output, NULL, NULL, err, sizeof(err)),
                 SL_ERR_IO, "a file is not a directory");
    snprintf(want, sizeof(want), "output.path %s/plain: not a directory", dir);
    cr_assert_str_eq(err, want);
}

Test(sink_local, memory_sink_keeps_every_row_in_order)
{
    open_sink("{\"sink\": \"memory\"}", NULL, NULL);
    char err[512] = "";
    char *text = sl__local_memory_json(&local);
    cr_assert_str_eq(text, "[]");
    free(text);
    cr_assert_eq(sl__local_deliver(&local, 1, rows, 2, NULL, err, sizeof(err)), SL_OK);
    cr_assert_eq(sl__local_deliver(&local, 2, rows + 8, 1, NULL, err, sizeof(err)), SL_OK);
    cr_assert_eq(sl__local_deliver(&local, 3, rows, 0, NULL, err, sizeof(err)), SL_OK);
    text = sl__local_memory_json(&local);
    char want[1024];
    snprintf(want, sizeof(want), "[%s,%s,%s]", rows_json[0], rows_json[1], rows_json[2]);
    cr_assert_str_eq(text, want);
    free(text);
}

Test(sink_local, memory_sink_in_complete_mode_keeps_the_last_table)
{
    open_sink("{\"sink\": \"memory\", \"mode\": \"complete\"}", NULL, NULL);
    cr_assert_eq(conf->plan.mode, SL_MODE_COMPLETE);
    char err[512] = "", want[1024];
    cr_assert_eq(sl__local_deliver(&local, 1, rows, 2, NULL, err, sizeof(err)), SL_OK);
    cr_assert_eq(sl__local_deliver(&local, 2, rows + 8, 1, NULL, err, sizeof(err)), SL_OK);
    char *text = sl__local_memory_json(&local);
    snprintf(want, sizeof(want), "[%s]", rows_json[2]);
    cr_assert_str_eq(text, want);
    free(text);
}

/* What a foreach callback saw, read through the public accessors. */
typedef struct seen {
    int calls;
    int64_t ids[4];
    char text[4][1024];
} seen_t;

/* The average column as text: "null", "nan", or the value. */
static void avg_text(const sl_batch_t *b, size_t r, char *out, size_t size)
{
    double d = sl_batch_double(b, r, 2);
    if (sl_batch_is_null(b, r, 2))
        snprintf(out, size, "null");
    else if (isnan(d))
        snprintf(out, size, "nan");
    else
        snprintf(out, size, "%g", d);
}

/* The timestamp column as text: "null" or its epoch milliseconds. */
static void max_text(const sl_batch_t *b, size_t r, char *out, size_t size)
{
    if (sl_batch_is_null(b, r, 3))
        snprintf(out, size, "null");
    else
        snprintf(out, size, "%lld", (long long)sl_batch_long(b, r, 3));
}

static void on_batch(void *opaque, int64_t id, const sl_batch_t *b)
{
    seen_t *s = opaque;
    cr_assert_lt(s->calls, 4);
    int k = s->calls++;
    s->ids[k] = id;
    cr_assert_eq(sl_batch_columns(b), 4);
    char *t = s->text[k];
    size_t size = sizeof(s->text[k]);
    for (size_t r = 0; r < sl_batch_rows(b); r++) {
        size_t len = 0;
        const char *page = sl_batch_string(b, r, 0, &len);
        char avg[64], max[64];
        avg_text(b, r, avg, sizeof(avg));
        max_text(b, r, max, sizeof(max));
        size_t at = strlen(t);
        snprintf(t + at, size - at, "%s%s:%.*s/%s:%lld/%s:%s/%s:%s", r ? "|" : "",
                 sl_batch_column_name(b, 0), (int)len, page ? page : "?",
                 sl_batch_column_name(b, 1), (long long)sl_batch_long(b, r, 1),
                 sl_batch_column_type(b, 2), avg, sl_batch_column_type(b, 3), max);
        char *json = sl_batch_row_json(b, r);
        cr_assert_str_eq(json, rows_json[r + (k == 1 ? 2 : 0)]);
        free(json);
    }
    /* Outside the batch: nothing, and no crash. */
    cr_assert_null(sl_batch_column_name(b, 4));
    cr_assert_null(sl_batch_column_name(b, -1));
    cr_assert_null(sl_batch_column_type(b, 4));
    cr_assert_null(sl_batch_string(b, sl_batch_rows(b), 0, NULL));
    cr_assert_null(sl_batch_string(b, 0, 1, NULL), "a long is no string");
    cr_assert_eq(sl_batch_long(b, 0, 0), 0, "a string is no long");
    cr_assert(sl_batch_is_null(b, sl_batch_rows(b), 0));
    cr_assert_null(sl_batch_row_json(b, sl_batch_rows(b)));
}

static const char *const seen_first = "page:/a/count:3/double:1.5/timestamp:1795597200123|"
                                     "page:/b\"c/count:1/double:null/timestamp:-1";
static const char *const seen_second = "page:/count:2/double:nan/timestamp:null";

Test(sink_local, foreach_gets_each_batch_with_its_id_and_rows)
{
    seen_t seen = {0};
    open_sink("{\"sink\": \"foreach\"}", on_batch, &seen);
    char err[512] = "";
    cr_assert_eq(sl__local_deliver(&local, 5, rows, 2, NULL, err, sizeof(err)), SL_OK);
    cr_assert_eq(sl__local_deliver(&local, 6, rows + 8, 1, NULL, err, sizeof(err)), SL_OK);
    cr_assert_eq(seen.calls, 2);
    cr_assert(seen.ids[0] == 5 && seen.ids[1] == 6, "ids %lld %lld", (long long)seen.ids[0],
              (long long)seen.ids[1]);
    cr_assert_str_eq(seen.text[0], seen_first);
    cr_assert_str_eq(seen.text[1], seen_second);
    cr_assert_eq(sl_batch_rows(NULL), 0);
    cr_assert_eq(sl_batch_columns(NULL), 0);
}

Test(sink_local, foreach_without_a_callback_does_not_open)
{
    char err[1024] = "";
    parse_job("{\"sink\": \"foreach\"}");
    cr_assert_eq(sl__local_open(&local, &conf->plan, &conf->output, NULL, NULL, err, sizeof(err)),
                 SL_ERR_INVAL);
    cr_assert(strstr(err, "no callback was set (sl_job_set_foreach_batch)"), "got: %s", err);
}

/* ---- replay of the outbox ---- */

static void open_store(void)
{
    char path[600], err[512] = "";
    snprintf(path, sizeof(path), "%s/st", dir);
    cr_assert_eq(sl__store_open(path, 1, 0, &store, err, sizeof(err)), SL_OK, "%s", err);
}

/* Commits batch @p seq's rows to the outbox as a batch of a local sink does (no key, the
 * row's JSON), and not delivered. */
static void to_outbox(int64_t seq, const char *const *json, size_t n)
{
    tk_outbox_put(store, SL_STREAM_LOCAL, seq, SL_DEST_OUTPUT, NULL, json, n);
}

static int count_row(void *opaque, int stream, int64_t seq, uint32_t idx, const uint8_t *row,
                     size_t len)
{
    (void)stream;
    (void)seq;
    (void)idx;
    (void)row;
    (void)len;
    (*(int *)opaque)++;
    return 0;
}

static int outbox_rows(void)
{
    int n = 0;
    char err[512];
    cr_assert_eq(sl__outbox_scan(store, -1, count_row, &n, err, sizeof(err)), SL_OK, "%s", err);
    return n;
}

static sl_err_t replay(char *err, size_t size)
{
    sl_store_batch_t *wb = sl__store_batch_new();
    sl_err_t e = sl__local_replay(&local, store, wb, err, size);
    sl__store_batch_destroy(wb);
    return e;
}

Test(sink_local, replay_writes_the_files_of_outbox_batches_then_empties_it)
{
    open_sink("{\"sink\": \"file\", \"path\": \"out\"}", NULL, NULL);
    open_store();
    to_outbox(3, rows_json, 2);
    to_outbox(4, rows_json + 2, 1);
    cr_assert_eq(outbox_rows(), 3);
    char err[512] = "", want[1024], names[1024], out[600];
    cr_assert_eq(replay(err, sizeof(err)), SL_OK, "%s", err);
    snprintf(want, sizeof(want), "%s\n%s\n", rows_json[0], rows_json[1]);
    cr_assert_str_eq(tk_slurp(out_file(3)), want);
    snprintf(want, sizeof(want), "%s\n", rows_json[2]);
    cr_assert_str_eq(tk_slurp(out_file(4)), want);
    snprintf(out, sizeof(out), "%s/out", dir);
    list_dir(out, names, sizeof(names));
    cr_assert_str_eq(names, "batch-000000000003.jsonl batch-000000000004.jsonl");
    cr_assert_eq(outbox_rows(), 0, "delivered batches leave the outbox");
}

Test(sink_local, replay_hands_outbox_batches_to_foreach_with_their_ids_and_values)
{
    seen_t seen = {0};
    open_sink("{\"sink\": \"foreach\"}", on_batch, &seen);
    open_store();
    to_outbox(5, rows_json, 2);
    to_outbox(6, rows_json + 2, 1);
    char err[512] = "";
    cr_assert_eq(replay(err, sizeof(err)), SL_OK, "%s", err);
    cr_assert_eq(seen.calls, 2);
    cr_assert(seen.ids[0] == 5 && seen.ids[1] == 6, "ids %lld %lld", (long long)seen.ids[0],
              (long long)seen.ids[1]);
    /* The same values as the first delivery: types, nulls, NaN and timestamps read back. */
    cr_assert_str_eq(seen.text[0], seen_first);
    cr_assert_str_eq(seen.text[1], seen_second);
    cr_assert_eq(outbox_rows(), 0);
    cr_assert_eq(replay(err, sizeof(err)), SL_OK, "%s", err);
    cr_assert_eq(seen.calls, 2, "an empty outbox hands nothing over");
}

Test(sink_local, replay_of_a_row_that_cannot_be_read_back_fails_naming_its_batch)
{
    seen_t seen = {0};
    open_sink("{\"sink\": \"foreach\"}", on_batch, &seen);
    open_store();
    static const char *const bad[] = {"[1, 2]"};
    to_outbox(9, bad, 1);
    char err[512] = "";
    cr_assert_eq(replay(err, sizeof(err)), SL_ERR_STATE);
    cr_assert_str_eq(err, "outbox: batch 9 cannot be read back");
    cr_assert_eq(seen.calls, 0);
    cr_assert_eq(outbox_rows(), 1, "what could not be delivered stays");
}
