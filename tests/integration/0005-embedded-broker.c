/*
 * 0005-embedded-broker.c - the embedded default: `sluice demo` prints update-mode batches
 * the way Spark's console sink does, and `sluice dev-broker` serves a job run by hand.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sluice/sluice.h"
#include "sluice/sluice_dev.h"
#include "tk.h"

Test(embedded, demo_prints_batches, .timeout = 120)
{
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "'%s' demo --seconds 8 2>/dev/null", tk_sluice_bin());
    FILE *p = popen(cmd, "r");
    static char out[1 << 20];
    size_t n = fread(out, 1, sizeof(out) - 1, p);
    out[n] = 0;
    int rc = pclose(p);
    cr_assert_eq(rc, 0, "demo exit status %d", rc);
    cr_assert(strstr(out, "-------------------------------------------\nBatch: "),
              "no batch header in:\n%s", out);
    cr_assert(strstr(out, "|views|sum_bytes|"), "no table header in:\n%s", out);
    /* Every table line has as many cells as the header. */
    int tables = 0;
    char *save = NULL;
    for (char *line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (line[0] == '|') {
            int bars = 0;
            for (char *c = line; *c; c++)
                bars += *c == '|';
            cr_assert_eq(bars, 6, "a row of the wrong width: %s", line);
        }
        tables += !strncmp(line, "Batch: ", 7);
    }
    cr_assert(tables >= 1, "no batch printed in 8 s");
    cr_log_info("demo printed %d batches", tables);
}

Test(embedded, dev_broker_serves_a_job, .timeout = 120)
{
    sl_log_configure(SL_LOG_WARN, 0, NULL);
    int fd[2];
    cr_assert(pipe(fd) == 0);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fd[1], 1);
        close(fd[0]);
        freopen("/dev/null", "w", stderr);
        execl(tk_sluice_bin(), "sluice", "dev-broker", "--topic", "views:3", "--topic", "counts",
              "--topic", "dev-changelog:1", (char *)NULL);
        _exit(127);
    }
    close(fd[1]);
    FILE *f = fdopen(fd[0], "r");
    char bs[256] = "";
    cr_assert(fgets(bs, sizeof(bs), f), "dev-broker printed no address");
    bs[strcspn(bs, "\n")] = 0;
    cr_log_info("dev-broker at %s", bs);

    char err[4096];
    sl_gen_spec_t spec = {.seed = 11, .pages = 7, .users = 7};
    const char *conf[] = {"enable.idempotence=false", NULL};
    cr_assert_eq(sl_gen_produce(bs, conf, "views", 3, &spec, 0, 3000, err, sizeof(err)), SL_OK,
                 "%s", err);
    char *dir = tk_job_dir("dev");
    char json[2048];
    snprintf(json, sizeof(json),
             "{\"name\": \"dev\", \"kafka\": {\"bootstrap.servers\": \"%s\","
             " \"fetch.wait.max.ms\": 10},"
             " \"source\": {\"topics\": \"views\", \"schema\": \"pageview.avsc\"},"
             " \"query\": {\"group_by\": \"page\", \"aggregates\": [{\"fn\": \"count\"}]},"
             " \"trigger\": {\"interval\": \"10s\", \"available_now\": true},"
             " \"output\": {\"sink\": \"kafka\", \"topic\": \"counts\"},"
             " \"state\": {\"dir\": \"state\"}}",
             bs);
    sl_job_t *job;
    cr_assert_eq(sl_job_new_from_json(json, dir, "dev", &job, err, sizeof(err)), SL_OK, "%s", err);
    cr_assert_eq(sl_job_run(job, err, sizeof(err)), SL_OK, "%s", err);
    sl_job_stats_t st;
    sl_job_stats(job, &st, sizeof(st));
    sl_job_destroy(job);
    cr_assert_eq(st.records_in, 3000);
    cr_assert_eq(st.rows_out, 7, "one row per page in one batch");

    kill(pid, SIGINT);
    int status;
    waitpid(pid, &status, 0);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "dev-broker exit status %d", status);
    fclose(f);
    tk_rmrf(dir);
    free(dir);
}
