/*
 * test_merge.c - a batch's windows merged into a real state store: which rows each output
 * mode emits, windows closed by the watermark (emitted once in append mode, their state
 * and expiry entries dropped), and session windows merging with stored sessions.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "commit/merge.h"
#include "conf/conf.h"
#include "layout.h"
#include "query/table.h"
#include "query/window.h"
#include "store.h"
#include "tk.h"

static char *dir;
static sl_conf_t *conf;
static sl_store_t *store;
static sl_store_batch_t *wb;
static sl_table_t batch;
static sl_merge_t merge;

static void setup(void)
{
    dir = tk_tmpdir("sluice-merge");
}

static void teardown(void)
{
    sl__merge_fini(&merge);
    sl__table_fini(&batch);
    sl__store_batch_destroy(wb);
    sl__store_close(store);
    sl__conf_destroy(conf);
    store = NULL;
    wb = NULL;
    conf = NULL;
    tk_rmrf(dir);
    free(dir);
}

TestSuite(merge, .init = setup, .fini = teardown);

/* A job counting records per page; @p window and @p mode are JSON members. */
static void open_job(const char *window, const char *mode)
{
    char json[2048], err[4096];
    snprintf(json, sizeof(json),
             "{\"name\": \"m\", \"source\": {\"type\": \"files\", \"path\": \"in\","
             " \"format\": \"json\", \"fields\": {\"page\": \"string\", \"ts\": \"timestamp\"}},"
             " \"query\": {\"window\": %s, \"watermark\": {\"field\": \"ts\", \"delay\": \"0s\"},"
             "             \"group_by\": \"page\", \"aggregates\": [{\"fn\": \"count\"}]},"
             " \"output\": {\"sink\": \"memory\", \"mode\": \"%s\"}, \"state\": {\"dir\": \"st\"}}",
             window, mode);
    cr_assert_eq(sl__conf_parse(json, dir, "job.json", &conf, err, sizeof(err)), SL_OK, "%s", err);
    cr_assert_eq(sl__store_open(conf->state.dir, 1, 0, &store, err, sizeof(err)), SL_OK, "%s", err);
    wb = sl__store_batch_new();
    cr_assert_eq(sl__table_init(&batch, conf->plan.naggs), SL_OK);
    cr_assert_eq(sl__merge_init(&merge, &conf->plan, conf->state.dir), SL_OK);
}

/* Adds @p n records of @p page to task @p task's window starting at @p start (ending at
 * @p end). */
static void add_to(int task, const char *page, int64_t start, int64_t end, int n)
{
    sl_val_t vals[2] = {{.t = SL_T_STRING, .n = (uint32_t)strlen(page), .u.s = page},
                        {.t = SL_T_TIMESTAMP, .u.i = start}};
    int slots[2] = {0, 1};
    sl_buf_t key;
    sl__buf_init(&key);
    uint8_t prefix[SL_TASK_PREFIX];
    sl__task_put(prefix, task);
    cr_assert_eq(sl__buf_append(&key, prefix, sizeof(prefix)), SL_OK);
    cr_assert_eq(sl__key_encode(vals, slots, 2, &key), SL_OK);
    sl_entry_t *e = sl__table_upsert(&batch, key.p, (uint32_t)key.len);
    cr_assert_not_null(e);
    e->wend = end;
    for (int i = 0; i < n; i++)
        cr_assert_eq(sl__acc_update(&conf->plan.aggs[0], &e->acc[0], NULL, NULL, &batch.arena), SL_OK);
    sl__buf_fini(&key);
}

static void add(const char *page, int64_t start, int64_t end, int n)
{
    add_to(0, page, start, end, n);
}

/* Merges the batch of @p n tasks (by ascending id, with their watermarks), commits it,
 * and returns the rows emitted. */
static size_t commit_tasks(const sl_merge_task_t *tasks, int n)
{
    char err[1024];
    cr_assert_eq(sl__merge_batch(&merge, store, wb, &batch, tasks, n, err, sizeof(err)), SL_OK,
                 "%s", err);
    cr_assert_eq(sl__store_write(store, wb, 1, err, sizeof(err)), SL_OK, "%s", err);
    return merge.nrows;
}

static size_t commit(int64_t wm)
{
    sl_merge_task_t t = {.task = 0, .wm = wm};
    return commit_tasks(&t, 1);
}

static void clear(void)
{
    sl__table_clear(&batch);
}

/* Row @p i: window start (s), page and count. */
static void expect_row(size_t i, int64_t start, int64_t end, const char *page, int64_t count)
{
    const sl_val_t *r = &merge.rows[i * (size_t)conf->plan.ncols];
    cr_assert_eq(r[0].u.i, start, "row %zu: start %lld", i, (long long)r[0].u.i);
    cr_assert_eq(r[1].u.i, end, "row %zu: end %lld", i, (long long)r[1].u.i);
    cr_assert(r[2].n == strlen(page) && !memcmp(r[2].u.s, page, r[2].n));
    cr_assert_eq(r[3].u.i, count, "row %zu: count %lld", i, (long long)r[3].u.i);
}

static int count_entries(void *opaque, const char *k, size_t kl, const char *v, size_t vl)
{
    (*(int *)opaque)++;
    return 0;
}

static int entries(sl_cf_t cf)
{
    int n = 0;
    char err[256];
    cr_assert_eq(sl__store_scan(store, cf, NULL, 0, count_entries, &n, err, sizeof(err)), SL_OK);
    return n;
}

Test(merge, append_emits_each_window_once_when_the_watermark_passes_it)
{
    open_job("{\"time\": \"ts\", \"size\": \"10s\"}", "append");
    add("p1", 0, 10000, 3);
    add("p1", 10000, 20000, 2);
    cr_assert_eq(commit(5000), 0, "no window closed yet");
    cr_assert_eq(entries(SL_CF_AGG), 2);
    cr_assert_eq(entries(SL_CF_EXPIRY), 2, "an expiry entry per open window");
    clear();
    add("p1", 10000, 20000, 1);
    cr_assert_eq(commit(15000), 1, "[0, 10 s) closed, found through the expiry index");
    expect_row(0, 0, 10000, "p1", 3);
    cr_assert_eq(merge.closed, 1);
    cr_assert_eq(entries(SL_CF_AGG), 1, "its state is dropped");
    cr_assert_eq(entries(SL_CF_EXPIRY), 1);
    clear();
    cr_assert_eq(commit(15000), 0, "emitted once");
    clear();
    /* A window that opens and closes in the same batch is emitted from memory. */
    add("p2", 20000, 30000, 4);
    cr_assert_eq(commit(40000), 2);
    expect_row(0, 20000, 30000, "p2", 4);
    expect_row(1, 10000, 20000, "p1", 3);
    cr_assert_eq(entries(SL_CF_AGG), 0, "no state left");
    cr_assert_eq(entries(SL_CF_EXPIRY), 0);
}

Test(merge, update_emits_changes_and_drops_closed_windows)
{
    open_job("{\"time\": \"ts\", \"size\": \"10s\"}", "update");
    add("p1", 0, 10000, 3);
    add("p2", 0, 10000, 1);
    cr_assert_eq(commit(SL_WM_NONE), 2);
    clear();
    add("p1", 0, 10000, 2);
    cr_assert_eq(commit(SL_WM_NONE), 1, "only the row the batch changed");
    expect_row(0, 0, 10000, "p1", 5);
    clear();
    cr_assert_eq(commit(10000), 0, "closing a window emits nothing in update mode");
    cr_assert_eq(merge.closed, 2);
    cr_assert_eq(entries(SL_CF_AGG), 0);
}

Test(merge, complete_keeps_and_emits_everything)
{
    open_job("{\"time\": \"ts\", \"size\": \"10s\"}", "complete");
    add("p1", 0, 10000, 3);
    commit(SL_WM_NONE);
    clear();
    add("p2", 10000, 20000, 1);
    cr_assert_eq(commit(50000), 2, "the whole table, the watermark closes nothing");
    cr_assert_eq(entries(SL_CF_EXPIRY), 0, "no expiry index in complete mode");
}

Test(merge, sessions_merge_with_stored_ones)
{
    open_job("{\"time\": \"ts\", \"gap\": \"3s\"}", "update");
    add("p1", 0, 3000, 1);
    add("p1", 5000, 8000, 1);
    add("p2", 1000, 4000, 1);
    cr_assert_eq(commit(SL_WM_NONE), 3, "two sessions of p1, one of p2");
    cr_assert_eq(entries(SL_CF_AGG), 3);
    clear();
    /* A record at 2.5 s bridges [0, 3) and [5, 8): one session [0, 8). */
    add("p1", 2500, 5500, 1);
    cr_assert_eq(commit(SL_WM_NONE), 1);
    expect_row(0, 0, 8000, "p1", 3);
    cr_assert_eq(entries(SL_CF_AGG), 2, "p1's [5, 8) was merged away");
    clear();
    /* A session that starts earlier takes the stored one's place under a new key. */
    add("p2", 0, 3000, 2);
    cr_assert_eq(commit(SL_WM_NONE), 1);
    expect_row(0, 0, 4000, "p2", 3);
    cr_assert_eq(entries(SL_CF_AGG), 2);
    clear();
    cr_assert_eq(commit(8000), 0);
    cr_assert_eq(merge.closed, 2, "both sessions end by 8 s");
    cr_assert_eq(entries(SL_CF_AGG), 0);
    cr_assert_eq(entries(SL_CF_EXPIRY), 0);
}

/* The changes a merge reports (for the changelog): key, and whether it was deleted. */
typedef struct changes {
    int puts, deletes, task1;
} changes_t;

static sl_err_t on_change(void *opaque, const uint8_t *key, size_t klen, const uint8_t *val,
                          size_t vlen)
{
    changes_t *c = opaque;
    cr_assert(klen > SL_TASK_PREFIX);
    if (val)
        c->puts++;
    else
        c->deletes++;
    c->task1 += sl__task_get(key) == 1;
    return SL_OK;
}

Test(merge, each_task_closes_its_windows_by_its_own_watermark)
{
    open_job("{\"time\": \"ts\", \"size\": \"10s\"}", "append");
    changes_t ch = {0};
    merge.on_change = on_change;
    merge.change_opaque = &ch;
    /* One page in two tasks (keys of one task never meet another's), the same window. */
    add_to(0, "p1", 0, 10000, 3);
    add_to(1, "p1", 0, 10000, 2);
    sl_merge_task_t both[] = {{.task = 0, .wm = 0}, {.task = 1, .wm = 0}};
    cr_assert_eq(commit_tasks(both, 2), 0);
    cr_assert_eq(entries(SL_CF_AGG), 2, "a state key per task");
    cr_assert_eq(entries(SL_CF_EXPIRY), 2);
    cr_assert_eq(ch.puts, 2, "both written, both reported");
    cr_assert_eq(ch.task1, 1);
    clear();
    /* Task 1's watermark passes the window, task 0's does not. */
    sl_merge_task_t wms[] = {{.task = 0, .wm = 9000}, {.task = 1, .wm = 10000}};
    cr_assert_eq(commit_tasks(wms, 2), 1, "task 1's window only");
    expect_row(0, 0, 10000, "p1", 2);
    cr_assert_eq(merge.row_tasks[0], 1, "the row is task 1's");
    cr_assert_eq(entries(SL_CF_AGG), 1, "task 0's window stays open");
    cr_assert_eq(ch.deletes, 1, "the closed window's deletion is reported");
    clear();
    /* A task not in the batch closes nothing, whatever its state. */
    sl_merge_task_t only1[] = {{.task = 1, .wm = 50000}};
    cr_assert_eq(commit_tasks(only1, 1), 0);
    cr_assert_eq(entries(SL_CF_AGG), 1);
    sl_merge_task_t only0[] = {{.task = 0, .wm = 50000}};
    cr_assert_eq(commit_tasks(only0, 1), 1);
    expect_row(0, 0, 10000, "p1", 3);
    cr_assert_eq(merge.row_tasks[0], 0);
    cr_assert_eq(entries(SL_CF_AGG), 0);
    cr_assert_eq(entries(SL_CF_EXPIRY), 0);
}
