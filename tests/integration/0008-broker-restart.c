/*
 * 0008-broker-restart.c - the Kafka broker itself is killed with SIGKILL in the middle of
 * a run and started again. The job (restarted by a supervisor loop if it gives up, as a
 * container runtime would) must finish with no lost and no duplicated output. The test
 * starts a broker of its own, since it kills it.
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
#include "tk_eos.h"

static const sl_gen_spec_t SPEC = {.seed = 91, .pages = TK_EOS_PAGES, .users = 1000, .by_page = 1};

static void broker(const char *verb, const char *dir)
{
    char cmd[1200];
    snprintf(cmd, sizeof(cmd), "'%s' %s '%s' >/dev/null", TK_KAFKA_SH, verb, dir);
    cr_assert_eq(system(cmd), 0, "kafka.sh %s failed", verb);
}

static char kdir[128];

/* Runs after the test even when an assertion failed, so no broker is left running. */
static void stop_broker(void)
{
    if (kdir[0])
        tk_broker_stop(kdir);
}

Test(broker_restart, kill_9_the_broker_mid_run, .timeout = 900, .fini = stop_broker)
{
    sl_log_configure(SL_LOG_WARN, 0, NULL);
    snprintf(kdir, sizeof(kdir), "/tmp/sluice-kill-broker-%d", (int)getpid());
    char *bs = tk_broker_start(TK_KAFKA_DEFAULT, kdir);
    char in[128], out[128], err[512];
    tk_in_out_topics(bs, "bk", 3, 1, in, out, sizeof(in));
    const uint64_t n = 200000;
    cr_assert_eq(sl_gen_produce(bs, NULL, in, 3, &SPEC, 0, n, err, sizeof(err)), SL_OK, "%s", err);

    char *dir = tk_job_dir("bk");
    char json[2048];
    snprintf(json, sizeof(json),
             "{\"name\": \"%s\", \"kafka\": {\"bootstrap.servers\": \"%s\"},"
             " \"source\": {\"topics\": \"%s\", \"schema\": \"pageview.avsc\"},"
             " \"query\": {\"group_by\": \"page\", \"aggregates\": [{\"fn\": \"count\"},"
             "   {\"fn\": \"sum\", \"field\": \"bytes\"}]},"
             " \"trigger\": {\"interval\": \"300ms\", \"max_records\": 4000,"
             "   \"available_now\": true},"
             " \"output\": {\"sink\": \"kafka\", \"topic\": \"%s\"},"
             " \"state\": {\"dir\": \"state\"}}",
             out, bs, in, out);
    tk_write_file(dir, "job.json", json);
    char job[600], log[600];
    snprintf(job, sizeof(job), "%s/job.json", dir);
    snprintf(log, sizeof(log), "%s/sluice.log", dir);
    const char *argv[] = {"run", "--quiet", job, NULL};

    int pid = tk_spawn_cli(argv, NULL, log);
    usleep(1500000);
    int status;
    cr_assert_eq(waitpid(pid, &status, WNOHANG), 0,
                 "the job finished before the broker was killed; the test proves nothing");
    broker("kill", kdir);
    cr_log_info("broker killed with SIGKILL while the job runs");
    sleep(3);
    broker("restart", kdir);
    cr_log_info("broker restarted");
    int rc = tk_wait(pid, 300), restarts = 0;
    while (rc != 0 && restarts < 10) {
        cr_log_info("the job exited with status %d; restarting it (log: %s)", rc, log);
        restarts++;
        rc = tk_wait(tk_spawn_cli(argv, NULL, log), 300);
    }
    cr_assert_eq(rc, 0, "the job did not finish after %d restarts (log: %s)", restarts, log);
    char what[128];
    snprintf(what, sizeof(what), "broker kill -9 and restart (%d job restart(s))", restarts);
    tk_eos_verify(bs, out, &SPEC, n, what);
    tk_rmrf(dir);
    free(dir);
    free(bs);
}
