/*
 * 0016-one-instance.c - one instance of a job at a time. Two `sluice run` of one job,
 * each with its own state directory, shared the transactional id sluice-<job>, fenced
 * each other about every half second and published partial aggregates; a second start
 * on the same state directory fenced the running job's producer before the state's lock
 * refused it. Now a second instance is refused at start, naming the first, and the first
 * runs on untouched: its output is checked exactly once at the end.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sluice/sluice.h"
#include "sluice/sluice_dev.h"
#include "tk.h"

static const char *JOB = "{\"name\": \"%s\", \"kafka\": {\"bootstrap.servers\": \"%s\"},"
                         " \"source\": {\"topics\": \"%s\", \"schema\": \"pageview.avsc\"},"
                         " \"query\": {\"group_by\": \"page\", \"aggregates\": [{\"fn\": "
                         "\"count\"}]},"
                         " \"trigger\": {\"interval\": \"300ms\"},"
                         " \"output\": {\"sink\": \"kafka\", \"topic\": \"%s\"},"
                         " \"state\": {\"dir\": \"%s\"}}";

Test(one_instance, a_second_instance_is_refused_and_the_first_runs_on, .timeout = 600)
{
    sl_log_configure(SL_LOG_WARN, 0, NULL);
    const char *bs = tk_bootstrap();
    char in[128], out[128], err[8192];
    tk_in_out_topics(bs, "one", 3, 1, in, out, sizeof(in));
    char *dir = tk_job_dir("one");
    char json[2048];
    snprintf(json, sizeof(json), JOB, out, bs, in, out, "state-a");
    tk_write_file(dir, "a.json", json);
    snprintf(json, sizeof(json), JOB, out, bs, in, out, "state-b");
    tk_write_file(dir, "b.json", json);
    char a_job[600], b_job[600], a_log[600];
    snprintf(a_job, sizeof(a_job), "%s/a.json", dir);
    snprintf(b_job, sizeof(b_job), "%s/b.json", dir);
    snprintf(a_log, sizeof(a_log), "%s/a.log", dir);
    sl_gen_spec_t spec = {.seed = 3, .pages = 40, .users = 20};
    cr_assert_eq(sl_gen_produce(bs, NULL, in, 3, &spec, 0, 20000, err, sizeof(err)), SL_OK);

    const char *a_argv[] = {"run", a_job, NULL};
    int a = tk_spawn_cli(a_argv, NULL, a_log);
    char state_a[700];
    snprintf(state_a, sizeof(state_a), "%s/state-a", dir);
    tk_state_totals_t t = {0};
    for (int i = 0; i < 600 && t.positions < 20000; i++) {
        usleep(100000);
        t = tk_state_totals(state_a, in, NULL, 0);
    }
    cr_assert_eq(t.positions, 20000, "the first instance did not catch up: %s", tk_slurp(a_log));

    /* Another state directory: the consumer group shows the first instance. */
    const char *b_argv[] = {"run", "--quiet", b_job, NULL};
    int rc = tk_run_cli(b_argv, err, sizeof(err), 120);
    cr_log_info("another state directory: %s", err);
    cr_assert_eq(rc, 1, "the second instance ran (exit %d): %s", rc, err);
    cr_assert(strstr(err, "is running elsewhere: its consumer group 'sluice-") &&
                  strstr(err, "run one instance of a job"),
              "%s", err);
    /* The same state directory: its lock names the first instance's process, before any
     * Kafka client is made. */
    const char *a2_argv[] = {"run", "--quiet", a_job, NULL};
    rc = tk_run_cli(a2_argv, err, sizeof(err), 120);
    cr_log_info("the same state directory: %s", err);
    cr_assert_eq(rc, 1, "%s", err);
    char want[64];
    snprintf(want, sizeof(want), "is in use by process %d", a);
    cr_assert(strstr(err, want), "expected \"%s\" in: %s", want, err);

    /* The first instance was never fenced and goes on. */
    cr_assert_eq(sl_gen_produce(bs, NULL, in, 3, &spec, 20000, 10000, err, sizeof(err)), SL_OK);
    for (int i = 0; i < 600 && t.positions < 30000; i++) {
        usleep(100000);
        t = tk_state_totals(state_a, in, NULL, 0);
    }
    cr_assert_eq(t.positions, 30000, "%s", tk_slurp(a_log));
    kill(a, SIGTERM);
    cr_assert_eq(tk_wait(a, 60), 0, "%s", tk_slurp(a_log));
    const char *log = tk_slurp(a_log);
    cr_assert(!strstr(log, "fenced") && !strstr(log, "new producer"),
              "the first instance was fenced: %s", log);
    json_t *latest = tk_latest_rows(bs, out, "page");
    cr_assert_eq(tk_sum_column(latest, "count"), 30000, "every record counted once, published");
    json_decref(latest);
    tk_delete_topic(bs, in);
    tk_delete_topic(bs, out);
    tk_rmrf(dir);
    free(dir);
}
