/*
 * 0007-state-failure.c - the state store's disk fills up in the middle of a run. The job
 * must stop with a clear error, and neither its positions nor its output may run ahead of
 * what the state holds. With room again, a restart finishes with exact totals.
 *
 * The state lives on a small tmpfs mounted for the test (root only; skipped otherwise).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sluice/sluice.h"
#include "tk.h"

static uint64_t published_total(const char *bs, const char *topic)
{
    json_t *rows = tk_latest_rows(bs, topic, "user_id");
    uint64_t total = tk_sum_column(rows, "count");
    json_decref(rows);
    return total;
}

static tk_state_totals_t inspect(const char *state, const char *topic)
{
    tk_state_totals_t t = tk_state_totals(state, topic, NULL, 0);
    cr_assert(t.ok, "sluice inspect %s failed", state);
    return t;
}

Test(state_failure, disk_full_stops_the_job_without_running_ahead, .timeout = 600)
{
    sl_log_configure(SL_LOG_WARN, 0, NULL);
    const char *bs = tk_bootstrap();
    char *dir = tk_tmpdir("sluice-it-full");
    char mnt[600];
    snprintf(mnt, sizeof(mnt), "%s/state", dir);
    cr_assert(mkdir(mnt, 0755) == 0);
    if (mount("tmpfs", mnt, "tmpfs", 0, "size=3m") != 0) {
        tk_rmrf(dir);
        free(dir);
        cr_skip_test("cannot mount a tmpfs (needs root): %s", strerror(errno));
    }
    char in[128], out[128];
    tk_unique(in, sizeof(in), "full-in");
    tk_unique(out, sizeof(out), "full-out");
    tk_create_topic(bs, in, 3);
    tk_create_topic(bs, out, 3);
    /* Many distinct keys, so each batch writes a lot of state. */
    const uint64_t n = 150000;
    sl_gen_spec_t spec = {.seed = 12, .pages = 10, .users = 100000};
    char err[8192];
    cr_assert_eq(sl_gen_produce(bs, NULL, in, 3, &spec, 0, n, err, sizeof(err)), SL_OK);
    tk_write_file(dir, "pageview.avsc", sl_gen_pageview_schema());
    char json[2048];
    snprintf(json, sizeof(json),
             "{\"name\": \"%s\", \"kafka\": {\"bootstrap.servers\": \"%s\"},"
             " \"source\": {\"topics\": \"%s\", \"schema\": \"pageview.avsc\"},"
             " \"query\": {\"group_by\": \"user_id\", \"aggregates\": [{\"fn\": \"count\"}]},"
             " \"trigger\": {\"interval\": \"1s\", \"max_records\": 10000,"
             "   \"available_now\": true},"
             " \"output\": {\"sink\": \"kafka\", \"topic\": \"%s\"},"
             " \"state\": {\"dir\": \"state\"}}",
             out, bs, in, out);
    tk_write_file(dir, "job.json", json);
    char job[700];
    snprintf(job, sizeof(job), "%s/job.json", dir);
    const char *argv[] = {"run", "--quiet", job, NULL};
    int rc = tk_run_cli(argv, err, sizeof(err), 300);
    cr_log_info("with a full disk, sluice said: %s", err);
    cr_assert_eq(rc, 1, "exit status %d: %s", rc, err);
    cr_assert(strstr(err, "No space left on device"), "the error names the cause: %s", err);
    cr_assert(strstr(err, mnt), "the error names the state directory: %s", err);

    tk_state_totals_t t = inspect(mnt, in);
    uint64_t pub = published_total(bs, out);
    cr_log_info("after the failure: positions cover %llu of %llu records, the state counts "
                "%llu, the output's latest rows add up to %llu",
                (unsigned long long)t.positions, (unsigned long long)n,
                (unsigned long long)t.counts, (unsigned long long)pub);
    cr_assert(t.positions < n, "the disk never filled up; the test proves nothing");
    cr_assert_eq(t.counts, t.positions, "positions ran ahead of (or behind) the state");
    cr_assert(pub <= t.counts, "the output ran ahead of the state");

    /* Room again: the job finishes, exactly. */
    cr_assert(mount("tmpfs", mnt, "tmpfs", MS_REMOUNT, "size=256m") == 0, "remount: %s",
              strerror(errno));
    rc = tk_run_cli(argv, err, sizeof(err), 300);
    cr_assert_eq(rc, 0, "restart: exit %d: %s", rc, err);
    t = inspect(mnt, in);
    pub = published_total(bs, out);
    cr_log_info("after the restart: positions %llu, state counts %llu, output %llu",
                (unsigned long long)t.positions, (unsigned long long)t.counts,
                (unsigned long long)pub);
    cr_assert_eq(t.positions, n);
    cr_assert_eq(t.counts, n);
    cr_assert_eq(pub, n, "the output's latest rows add up to every record, once");

    umount(mnt);
    tk_delete_topic(bs, in);
    tk_delete_topic(bs, out);
    tk_rmrf(dir);
    free(dir);
}
