/*
 * 0003-graceful-stop.c - `sluice run` under SIGTERM: it finishes the batch under way,
 * commits it, publishes its rows and exits 0. Afterwards the state's counts add up to
 * exactly the records its positions cover, and the output topic's latest rows agree with
 * the state.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sluice/sluice.h"
#include "tk.h"

static tk_state_totals_t inspect(const char *dir, const char *topic)
{
    char state[700];
    snprintf(state, sizeof(state), "%s/state", dir);
    return tk_state_totals(state, topic, NULL, 0);
}

static const char *const JOB =
    "{\"name\": \"%s\", \"kafka\": {\"bootstrap.servers\": \"%s\"},"
    " \"source\": {\"topics\": \"%s\", \"schema\": \"pageview.avsc\"},"
    " \"query\": {\"group_by\": \"page\", \"aggregates\": [{\"fn\": \"count\"}]},"
    " \"trigger\": {%s},"
    " \"output\": {\"sink\": \"kafka\", \"topic\": \"%s\"},"
    " \"state\": {\"dir\": \"state\"}}";

Test(graceful_stop, sigterm_commits_and_publishes, .timeout = 600)
{
    sl_log_configure(SL_LOG_WARN, 0, NULL);
    const char *bs = tk_bootstrap();
    char in[128], out[128], err[512];
    tk_unique(in, sizeof(in), "stop-in");
    tk_unique(out, sizeof(out), "stop-out");
    tk_create_topic(bs, in, 3);
    tk_create_topic(bs, out, 1);
    char *dir = tk_tmpdir("sluice-it-stop");
    tk_write_file(dir, "pageview.avsc", sl_gen_pageview_schema());
    char json[2048];
    snprintf(json, sizeof(json), JOB, out, bs, in, "\"interval\": \"3s\"", out);
    tk_write_file(dir, "job.json", json);
    sl_gen_spec_t spec = {.seed = 5, .pages = 200, .users = 100};
    cr_assert_eq(sl_gen_produce(bs, NULL, in, 3, &spec, 0, 50000, err, sizeof(err)), SL_OK);

    char job[600], log[600];
    snprintf(job, sizeof(job), "%s/job.json", dir);
    snprintf(log, sizeof(log), "%s/sluice.log", dir);
    pid_t pid = fork();
    if (pid == 0) {
        freopen(log, "w", stderr);
        freopen("/dev/null", "w", stdout);
        execl(tk_sluice_bin(), "sluice", "run", job, (char *)NULL);
        _exit(127);
    }
    /* Wait until the first batch (3 s) is committed, produce more, and stop the job in the
     * middle of its second batch, which has read records it has not committed. */
    tk_state_totals_t t = {0, 0, 0};
    for (int i = 0; i < 600 && t.positions == 0; i++) {
        usleep(100000);
        t = inspect(dir, in);
    }
    cr_assert(t.positions > 0, "the job committed nothing in 60 s");
    uint64_t first = t.positions;
    cr_assert_eq(sl_gen_produce(bs, NULL, in, 3, &spec, 50000, 30000, err, sizeof(err)), SL_OK);
    usleep(1500000); /* the first batch is published by now; the second is reading */
    kill(pid, SIGTERM);
    int status;
    time_t start = time(NULL);
    while (waitpid(pid, &status, WNOHANG) == 0) {
        cr_assert(time(NULL) - start < 60, "sluice did not stop within 60 s of SIGTERM");
        usleep(50000);
    }
    cr_log_info("stopped %ld s after SIGTERM", (long)(time(NULL) - start));
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "exit status %d (log: %s)", status,
              log);

    t = inspect(dir, in);
    cr_log_info("state: positions cover %llu records (%llu at the first commit, so %llu were "
                "read in the batch that SIGTERM ended), counts add up to %llu",
                (unsigned long long)t.positions, (unsigned long long)first,
                (unsigned long long)(t.positions - first), (unsigned long long)t.counts);
    cr_assert(t.positions >= first && t.positions <= 80000, "positions %llu, first commit %llu",
              (unsigned long long)t.positions, (unsigned long long)first);
    cr_assert_eq(t.counts, t.positions, "every consumed record is counted, once");

    json_t *latest = tk_latest_rows(bs, out, "page");
    uint64_t published = tk_sum_column(latest, "count");
    cr_assert_eq(published, t.counts, "the output's latest rows agree with the state");
    json_decref(latest);

    /* A restart goes on from the stored positions and catches up (the trigger is not
     * part of the job's fingerprint, so it may change). */
    snprintf(json, sizeof(json), JOB, out, bs, in, "\"available_now\": true", out);
    tk_write_file(dir, "job.json", json);
    char cli_err[8192];
    const char *argv[] = {"run", "--quiet", job, NULL};
    cr_assert_eq(tk_run_cli(argv, cli_err, sizeof(cli_err), 120), 0, "%s", cli_err);
    t = inspect(dir, in);
    cr_assert_eq(t.positions, 80000);
    cr_assert_eq(t.counts, 80000, "the restart counted the rest, once");
    tk_delete_topic(bs, in);
    tk_delete_topic(bs, out);
    tk_rmrf(dir);
    free(dir);
}
