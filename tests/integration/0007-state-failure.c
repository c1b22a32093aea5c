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
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sluice/sluice.h"
#include "sluice/sluice_dev.h"
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
    tk_in_out_topics(bs, "full", 3, 3, in, out, sizeof(in));
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

/* Runs `sluice run` on @p dir/job.json; its exit status, stderr in @p err. */
static int run_job(const char *dir, const char *crash_at, char *err, size_t size)
{
    char job[700], log[700];
    snprintf(job, sizeof(job), "%s/job.json", dir);
    if (!crash_at) {
        const char *argv[] = {"run", "--quiet", job, NULL};
        return tk_run_cli(argv, err, size, 120);
    }
    snprintf(log, sizeof(log), "%s/crash.log", dir);
    const char *argv[] = {"run", "--quiet", job, NULL};
    int rc = tk_wait(tk_spawn_cli(argv, crash_at, log), 120);
    snprintf(err, size, "(log in %s)", log);
    return rc;
}

static int count_files(const char *path)
{
    char cmd[800];
    snprintf(cmd, sizeof(cmd), "ls %s | wc -l", path);
    FILE *p = popen(cmd, "r");
    int n = -1;
    if (p && fscanf(p, "%d", &n) != 1)
        n = -1;
    if (p)
        pclose(p);
    return n;
}

static void sh(const char *fmt, const char *a, const char *b)
{
    char cmd[2048];
    snprintf(cmd, sizeof(cmd), fmt, a, b, a, b);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
}

Test(state_failure, a_damaged_log_or_manifest_is_refused_not_started_over, .timeout = 300)
{
    /* With a flipped or truncated write-ahead log, or a truncated MANIFEST, the job logged
     * "no stored position", started from offset 0 as batch 1 and published everything
     * again; without CURRENT it said "wal_dir contains existing log file". Each damage is
     * now refused naming the directory, and nothing is published. */
    sl_log_configure(SL_LOG_WARN, 0, NULL);
    char *dir = tk_tmpdir("sluice-it-damage");
    char in[700], out[700], state[700], pristine[700], err[8192];
    snprintf(in, sizeof(in), "%s/in", dir);
    snprintf(out, sizeof(out), "%s/out", dir);
    snprintf(state, sizeof(state), "%s/state", dir);
    snprintf(pristine, sizeof(pristine), "%s/pristine", dir);
    cr_assert_eq(mkdir(in, 0755), 0);
    for (int f = 0; f < 5; f++) {
        char name[32], text[4096];
        size_t len = 0;
        snprintf(name, sizeof(name), "%d.txt", f);
        for (int i = 0; i < 100; i++)
            len += (size_t)snprintf(text + len, sizeof(text) - len, "w%d\n", (f * 100 + i) % 37);
        tk_write_file(in, name, text);
    }
    tk_write_file(dir, "job.json",
                  "{\"name\": \"damage\", \"source\": {\"type\": \"files\", \"path\": \"in\","
                  " \"max_files\": 1},"
                  " \"query\": {\"group_by\": \"value\", \"aggregates\": [{\"fn\": \"count\"}]},"
                  " \"trigger\": {\"available_now\": true},"
                  " \"output\": {\"sink\": \"file\", \"path\": \"out\", \"mode\": \"update\"},"
                  " \"state\": {\"dir\": \"state\"}}");
    /* Three batches committed and the process killed: they are in the log only. */
    int rc = run_job(dir, "after-commit:3", err, sizeof(err));
    cr_assert_eq(rc, 128 + SIGKILL, "exit %d %s", rc, err);
    sh("cp -a %s %s", state, pristine);
    int published = count_files(out);

    static const struct {
        const char *name, *cmd, *want;
    } damage[] = {
        {"a byte flipped in the middle of the log",
         "f=$(ls -S %s/*.log | head -1) && n=$(stat -c %%s $f) && "
         "printf '\\377' | dd of=$f bs=1 seek=$((n / 2)) conv=notrunc status=none",
         "is damaged"},
        {"the log cut to half",
         "f=$(ls -S %s/*.log | head -1) && truncate -s $(($(stat -c %%s $f) / 2)) $f",
         "was committed there (SLUICE_STATE)"},
        {"the log cut to nothing", "for f in %s/*.log; do truncate -s 0 $f; done",
         "was committed there (SLUICE_STATE)"},
        {"the MANIFEST cut to half",
         "f=$(ls %s/MANIFEST-*) && truncate -s $(($(stat -c %%s $f) / 2)) $f", "is damaged"},
        {"CURRENT deleted", "rm %s/CURRENT", "its CURRENT file is missing"},
        {"every RocksDB file deleted",
         "cd %s && rm -f CURRENT MANIFEST-* OPTIONS-* *.log *.sst IDENTITY", "is damaged"},
    };
    for (size_t i = 0; i < sizeof(damage) / sizeof(damage[0]); i++) {
        char cmd[1024];
        sh("rm -rf %s && cp -a %s %s", state, pristine);
        snprintf(cmd, sizeof(cmd), damage[i].cmd, state);
        cr_assert_eq(system(cmd), 0, "%s: %s", damage[i].name, cmd);
        rc = run_job(dir, NULL, err, sizeof(err));
        cr_log_info("%s: %s", damage[i].name, err);
        cr_assert_eq(rc, 1, "%s: exit %d: %s", damage[i].name, rc, err);
        cr_assert(strstr(err, damage[i].want) && strstr(err, state),
                  "%s: expected \"%s\" and the directory in: %s", damage[i].name, damage[i].want,
                  err);
        cr_assert(strstr(err, "Restore the directory from a backup"), "%s: what to do: %s",
                  damage[i].name, err);
        cr_assert_eq(count_files(out), published, "%s: rows were published again",
                     damage[i].name);
    }
    /* The undamaged copy goes on from batch 3 to the end, exactly. */
    sh("rm -rf %s && cp -a %s %s", state, pristine);
    rc = run_job(dir, NULL, err, sizeof(err));
    cr_assert_eq(rc, 0, "%s", err);
    tk_state_totals_t t = tk_state_totals(state, "x", NULL, 0);
    cr_assert_eq(t.counts, 500, "every line counted once");
    tk_rmrf(dir);
    free(dir);
}
