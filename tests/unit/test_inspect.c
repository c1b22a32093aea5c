/*
 * test_inspect.c - sl_state_inspect(), what `sluice inspect` prints of a state directory
 * without Kafka or the job file: the job fingerprint, the batch sequence, the watermark,
 * the stored positions, the outbox, and the aggregates decoded with the stored query
 * layout (all, or one group key's, windows included); and the errors for a directory that
 * holds no state, a key that does not fit, or a layout that cannot be read.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "commit/outbox.h"
#include "conf/conf.h"
#include "store.h"
#include "tk.h"
#include "tk_state.h"
#include "util.h"

static char *dir;
static char state[600];

static void setup(void)
{
    sl_log_configure(SL_LOG_ERROR, 0, NULL);
    dir = tk_tmpdir("sluice-inspect");
    snprintf(state, sizeof(state), "%s/st", dir);
    char in[600];
    snprintf(in, sizeof(in), "%s/in", dir);
    cr_assert_eq(mkdir(in, 0755), 0);
}

static void teardown(void)
{
    tk_rmrf(dir);
    free(dir);
}

TestSuite(inspect, .init = setup, .fini = teardown);

/* Page counts and averages of x by page and n, read from files. */
static const char *const JOB =
    "{\"name\": \"insp\", \"source\": {\"type\": \"files\", \"path\": \"in\", \"format\": \"json\","
    "   \"fields\": {\"page\": \"string\", \"n\": \"long\", \"x\": \"double\"}},"
    " \"query\": {\"group_by\": [\"page\", \"n\"], \"aggregates\": [{\"fn\": \"count\"},"
    "   {\"fn\": \"avg\", \"field\": \"x\"}]},"
    " \"trigger\": {\"available_now\": true},"
    " \"output\": {\"sink\": \"memory\"}, \"state\": {\"dir\": \"st\"}}";

/* Counts by page in windows of 10 seconds, with a watermark 5 seconds behind. */
static const char *const WINDOWED_JOB =
    "{\"name\": \"win\", \"source\": {\"type\": \"files\", \"path\": \"in\", \"format\": \"json\","
    "   \"fields\": {\"page\": \"string\", \"ts\": \"timestamp\"}},"
    " \"query\": {\"group_by\": \"page\", \"window\": {\"time\": \"ts\", \"size\": \"10 seconds\"},"
    "   \"watermark\": {\"field\": \"ts\", \"delay\": \"5 seconds\"},"
    "   \"aggregates\": [{\"fn\": \"count\"}]},"
    " \"trigger\": {\"available_now\": true},"
    " \"output\": {\"sink\": \"memory\"}, \"state\": {\"dir\": \"st\"}}";

/* Runs @p job on @p lines (one file) to the end, leaving its state in st/. */
static void run_job(const char *job, const char *lines)
{
    char in[600];
    snprintf(in, sizeof(in), "%s/in", dir);
    tk_write_file(in, "1.json", lines);
    tk_job_result_t r = tk_run_job(job, dir);
    cr_assert_eq(r.rc, SL_OK, "%s", r.err);
    json_decref(r.rows);
}

/* What sl_state_inspect() prints (free()); its result in *rc and its error in @p err. */
static char *inspect(const char *key, sl_err_t *rc, char *err, size_t err_size)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    cr_assert_not_null(out);
    err[0] = 0;
    *rc = sl_state_inspect(state, key, out, err, err_size);
    fclose(out);
    return text;
}

/* The fingerprint and stored layout of @p job, as the job computes them. */
static void job_identity(const char *job, char *fp, size_t fp_size, char **query)
{
    sl_conf_t *c;
    char err[2048];
    cr_assert_eq(sl__conf_parse(job, dir, "job.json", &c, err, sizeof(err)), SL_OK, "%s", err);
    snprintf(fp, fp_size, "%016" PRIx64, c->fingerprint);
    *query = strdup(c->query_desc);
    sl__conf_destroy(c);
}

static sl_store_t *open_store(void)
{
    sl_store_t *s = NULL;
    char err[512] = "";
    cr_assert_eq(sl__store_open(state, 1, 0, &s, err, sizeof(err)), SL_OK, "%s", err);
    return s;
}

static void put(sl_store_t *s, sl_cf_t cf, const void *k, size_t kl, const void *v, size_t vl)
{
    char err[512] = "";
    sl_store_batch_t *wb = sl__store_batch_new();
    sl__store_batch_put(wb, s, cf, k, kl, v, vl);
    cr_assert_eq(sl__store_write(s, wb, 1, err, sizeof(err)), SL_OK, "%s", err);
    sl__store_batch_destroy(wb);
}

static void put_pos(sl_store_t *s, const char *key, int64_t pos)
{
    uint8_t v[8];
    sl__be64_put(v, (uint64_t)pos);
    put(s, SL_CF_META, key, strlen(key), v, 8);
}

/* Leaves @p n rows of batch @p seq in the outbox, as a crash after the commit does. */
static void put_outbox(sl_store_t *s, int64_t seq, int n)
{
    const char *vals[] = {"{}", "{}", "{}", "{}"};
    cr_assert(n <= 4);
    tk_outbox_put(s, 0, seq, SL_DEST_OUTPUT, NULL, vals, (size_t)n);
}

static const char *const LINES = "{\"page\": \"/a\", \"n\": 1, \"x\": 1.5}\n"
                                 "{\"page\": \"/b\", \"n\": 2, \"x\": -1}\n"
                                 "{\"page\": \"/a\", \"n\": 1, \"x\": 2.75}\n"
                                 "{\"page\": \"/a\", \"n\": 2, \"x\": 0}\n";

Test(inspect, prints_what_the_state_holds_and_every_aggregate)
{
    run_job(JOB, LINES);
    /* Positions of a Kafka source and an outbox a crash left, written as a job would;
     * the store stays open, as a running job holds it. */
    sl_store_t *s = open_store();
    put_pos(s, "t/0/pos/pv/0", 42);
    put_pos(s, "t/0/pos/pv/1", 7);
    put_outbox(s, 9, 3);

    char err[1024], fp[32], *query, want[4096];
    sl_err_t rc;
    char *text = inspect(NULL, &rc, err, sizeof(err));
    sl__store_close(s);
    cr_assert_eq(rc, SL_OK, "%s", err);
    job_identity(JOB, fp, sizeof(fp), &query);
    snprintf(want, sizeof(want),
             "state: %s\n"
             "job fingerprint: %s\n"
             "batch sequence: 1\n"
             "task 0: batch 1\n"
             "positions (next offset to read):\n"
             "  file 1.json = byte 130 (read to its end)\n"
             "  pv/0 = 42\n"
             "  pv/1 = 7\n"
             "outbox: 3 record(s) not yet known to be published\n"
             "query: %s\n"
             "aggregates:\n"
             "  page=/a n=1 -> count=2 avg_x=2.125\n"
             "  page=/a n=2 -> count=1 avg_x=0.0\n"
             "  page=/b n=2 -> count=1 avg_x=-1.0\n"
             "3 key(s)\n",
             state, fp, query);
    cr_assert_str_eq(text, want);
    free(text);
    free(query);
}

Test(inspect, prints_one_aggregate_by_its_group_key)
{
    run_job(JOB, LINES);
    char err[1024];
    sl_err_t rc;
    char *text = inspect("/a,2", &rc, err, sizeof(err));
    cr_assert_eq(rc, SL_OK, "%s", err);
    const char *tail = strstr(text, "\naggregate:\n");
    cr_assert_not_null(tail, "%s", text);
    cr_assert_str_eq(tail, "\naggregate:\n  page=/a n=2 -> count=1 avg_x=0.0\n");
    free(text);

    text = inspect("/zz,1", &rc, err, sizeof(err));
    cr_assert_eq(rc, SL_ERR_NOTFOUND);
    char want[1024];
    snprintf(want, sizeof(want), "state %s: no aggregate for key '/zz,1'", state);
    cr_assert_str_eq(err, want);
    free(text);

    static const char *const misfits[] = {"/a", "/a,x", "/a,1x"};
    for (size_t i = 0; i < sizeof(misfits) / sizeof(misfits[0]); i++) {
        text = inspect(misfits[i], &rc, err, sizeof(err));
        cr_assert_eq(rc, SL_ERR_INVAL, "%s", misfits[i]);
        snprintf(want, sizeof(want),
                 "key '%s' does not fit the group key (2 value(s), separated by commas)",
                 misfits[i]);
        cr_assert_str_eq(err, want);
        free(text);
    }
}

Test(inspect, control_bytes_and_separators_in_keys_are_escaped_and_taken_back)
{
    /* A NUL, a tab, a backslash and a comma in a page; the comma is --key's separator. */
    run_job(JOB, "{\"page\": \"a\\u0000b\\tc\\\\d,e\", \"n\": 7, \"x\": 1}\n");
    char err[1024];
    sl_err_t rc;
    char *text = inspect(NULL, &rc, err, sizeof(err));
    cr_assert_eq(rc, SL_OK, "%s", err);
    cr_assert(strstr(text, "  page=a\\x00b\\x09c\\\\d\\,e n=7 -> count=1 avg_x=1.0\n"), "%s", text);
    free(text);
    text = inspect("a\\x00b\\x09c\\\\d\\,e,7", &rc, err, sizeof(err));
    cr_assert_eq(rc, SL_OK, "%s", err);
    cr_assert(strstr(text, "count=1"), "%s", text);
    free(text);
    text = inspect("a\\x0,7", &rc, err, sizeof(err));
    cr_assert_eq(rc, SL_ERR_INVAL, "a cut escape");
    free(text);
}

Test(inspect, windows_show_their_bounds_and_the_watermark)
{
    run_job(WINDOWED_JOB, "{\"page\": \"/a\", \"ts\": \"2026-11-25T09:00:01Z\"}\n"
                          "{\"page\": \"/a\", \"ts\": \"2026-11-25T09:00:12Z\"}\n"
                          "{\"page\": \"/b\", \"ts\": \"2026-11-25T09:00:03.5Z\"}\n"
                          "{\"page\": \"/a\", \"ts\": \"2026-11-25T09:00:09Z\"}\n");
    char err[1024];
    sl_err_t rc;
    char *text = inspect(NULL, &rc, err, sizeof(err));
    cr_assert_eq(rc, SL_OK, "%s", err);
    cr_assert(strstr(text, "\ntask 0: batch 2, watermark 2026-11-25T09:00:07.000Z\n"),
              "the largest event time less the delay:\n%s", text);
    const char *aggs = strstr(text, "\naggregates:\n");
    cr_assert_not_null(aggs, "%s", text);
    cr_assert_str_eq(aggs, "\naggregates:\n"
                           "  page=/a window_start=2026-11-25 09:00:00 "
                           "window_end=2026-11-25 09:00:10 -> count=2\n"
                           "  page=/a window_start=2026-11-25 09:00:10 "
                           "window_end=2026-11-25 09:00:20 -> count=1\n"
                           "  page=/b window_start=2026-11-25 09:00:00 "
                           "window_end=2026-11-25 09:00:10 -> count=1\n"
                           "3 key(s)\n");
    free(text);

    /* A window is part of the key: its start, as ISO 8601 or epoch milliseconds. */
    static const char *const keys[] = {"/a,2026-11-25T09:00:10Z", "/a,1795597210000"};
    for (size_t i = 0; i < 2; i++) {
        text = inspect(keys[i], &rc, err, sizeof(err));
        cr_assert_eq(rc, SL_OK, "%s: %s", keys[i], err);
        const char *tail = strstr(text, "\naggregate:\n");
        cr_assert_not_null(tail, "%s", text);
        cr_assert_str_eq(tail, "\naggregate:\n  page=/a window_start=2026-11-25 09:00:10 "
                               "window_end=2026-11-25 09:00:20 -> count=1\n");
        free(text);
    }
}

Test(inspect, a_state_without_a_committed_batch_says_so)
{
    sl__store_close(open_store()); /* made, nothing committed */
    char err[1024], want[1024];
    sl_err_t rc;
    char *text = inspect(NULL, &rc, err, sizeof(err));
    cr_assert_eq(rc, SL_OK, "%s", err);
    snprintf(want, sizeof(want),
             "state: %s\n"
             "job fingerprint: (none: no batch committed yet)\n"
             "batch sequence: 0\n"
             "positions (next offset to read):\n"
             "outbox: 0 record(s) not yet known to be published\n"
             "aggregates: none\n",
             state);
    cr_assert_str_eq(text, want);
    free(text);
    text = inspect("/a", &rc, err, sizeof(err));
    cr_assert_eq(rc, SL_ERR_NOTFOUND);
    snprintf(want, sizeof(want), "state %s: no aggregates yet", state);
    cr_assert_str_eq(err, want);
    free(text);
}

/* The names in @p path but . and .., joined by spaces. */
static void list_dir(const char *path, char *out, size_t size)
{
    DIR *d = opendir(path);
    cr_assert_not_null(d, "%s", path);
    struct dirent *e;
    out[0] = 0;
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            size_t at = strlen(out);
            snprintf(out + at, size - at, "%s%s", at ? " " : "", e->d_name);
        }
    }
    closedir(d);
}

Test(inspect, a_missing_or_empty_directory_is_an_error_naming_it)
{
    char err[1024], want[1024], names[1024];
    sl_err_t rc;
    char *text = inspect(NULL, &rc, err, sizeof(err));
    cr_assert_eq(rc, SL_ERR_NOTFOUND);
    snprintf(want, sizeof(want), "state %s: no such directory", state);
    cr_assert_str_eq(err, want);
    cr_assert_str_eq(text, "", "nothing printed");
    free(text);

    /* An empty directory, or one holding other files: no state there. */
    cr_assert_eq(mkdir(state, 0755), 0);
    tk_write_file(state, "notes.txt", "not a store\n");
    text = inspect(NULL, &rc, err, sizeof(err));
    cr_assert_eq(rc, SL_ERR_NOTFOUND);
    snprintf(want, sizeof(want), "state %s: no state here (no batch was committed with it)",
             state);
    cr_assert_str_eq(err, want);
    cr_assert_str_eq(text, "", "nothing printed");
    free(text);
    list_dir(state, names, sizeof(names));
    cr_assert_str_eq(names, "notes.txt", "inspect writes nothing");
}

Test(inspect, damaged_layouts_and_entries_are_reported)
{
    run_job(JOB, LINES);
    sl_store_t *s = open_store();
    put(s, SL_CF_AGG, "\x00\x00\xff\x01", 4, "?", 1); /* no key sluice writes */
    char err[1024];
    sl_err_t rc;
    char *text = inspect(NULL, &rc, err, sizeof(err));
    cr_assert_eq(rc, SL_OK, "%s", err);
    cr_assert(strstr(text, "  page=/b n=2 -> count=1 avg_x=-1.0\n"
                           "  (an entry that cannot be decoded: 2 key bytes)\n"
                           "4 key(s)\n"),
              "the others are printed:\n%s", text);
    free(text);

    put(s, SL_CF_META, "query", 5, "{\"group_by\": 1}", 15);
    text = inspect(NULL, &rc, err, sizeof(err));
    cr_assert_eq(rc, SL_ERR_STATE);
    char want[1024];
    snprintf(want, sizeof(want), "state %s: the stored query layout is corrupt", state);
    cr_assert_str_eq(err, want);
    free(text);
    sl__store_close(s);
}
