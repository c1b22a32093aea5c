/*
 * 0006-exactly-once.c - the exactly-once claim, tested by killing the job.
 *
 * 200,000 page views, each page's records in one partition (so a page's input has one
 * order). The job counts and sums bytes by page into a Kafka topic with exactly-once
 * delivery. It is killed at every named crash point, then at random times with SIGKILL
 * (SLUICE_KILL_CYCLES, 20 by default; the soak runs 1,000), and restarted until it has
 * read everything. The verifier then reads the output topic read_committed and checks,
 * as Kafka Streams' EOS test does, that:
 *   - every row equals the running aggregate of its page over a prefix of that page's
 *     input (no lost or doubly counted record inside the state);
 *   - per page, counts strictly increase (a repeated row is a duplicate) and end at the
 *     exact total (no lost output);
 *   - no (seq, idx) appears twice;
 *   - no transaction is left open (the read_committed end equals the log end).
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sluice/sluice.h"
#include "sluice/sluice_dev.h"
#include "tk.h"
#include "tk_eos.h"

#define RECORDS 200000

static const sl_gen_spec_t SPEC = {.seed = 77, .pages = TK_EOS_PAGES, .users = 1000, .by_page = 1};

static void verify(const char *bs, const char *out, uint64_t n, const char *what)
{
    tk_eos_verify(bs, out, &SPEC, n, what);
}

typedef struct env {
    const char *bs;
    char in[128], out[128];
    char *dir;
    char job[600], log[600];
} env_t;

static void write_job(env_t *e, int available_now);
static const char *g_kafka_extra = ""; /* more properties in the job's "kafka" */
static int g_max_records = 7000;       /* records per batch */

static void make_env(env_t *e, const char *in, const char *tag, int available_now)
{
    e->bs = tk_bootstrap();
    snprintf(e->in, sizeof(e->in), "%s", in);
    tk_unique(e->out, sizeof(e->out), tag);
    tk_create_topic(e->bs, e->out, 1);
    e->dir = tk_job_dir("eos");
    write_job(e, available_now);
    snprintf(e->job, sizeof(e->job), "%s/job.json", e->dir);
    snprintf(e->log, sizeof(e->log), "%s/sluice.log", e->dir);
}

/* The job file; the trigger may change between runs (it is not in the fingerprint). */
static void write_job(env_t *e, int available_now)
{
    char json[2048];
    snprintf(json, sizeof(json),
             "{\"name\": \"%s\", \"kafka\": {\"bootstrap.servers\": \"%s\"%s},"
             " \"source\": {\"topics\": \"%s\", \"schema\": \"pageview.avsc\"},"
             " \"query\": {\"group_by\": \"page\", \"aggregates\": [{\"fn\": \"count\"},"
             "   {\"fn\": \"sum\", \"field\": \"bytes\"}]},"
             " \"trigger\": {\"interval\": \"300ms\", \"max_records\": %d,"
             "   \"available_now\": %s},"
             " \"output\": {\"sink\": \"kafka\", \"topic\": \"%s\"},"
             " \"state\": {\"dir\": \"state\"}}",
             e->out, e->bs, g_kafka_extra, e->in, g_max_records, available_now ? "true" : "false",
             e->out);
    tk_write_file(e->dir, "job.json", json);
}

static void drop_env(env_t *e)
{
    tk_delete_topic(e->bs, e->out);
    tk_rmrf(e->dir);
    free(e->dir);
}

/* Runs the job until it exits 0; the first runs die at the given crash points. */
static int run_to_end(env_t *e, const char *const *crashes)
{
    const char *argv[] = {"run", "--quiet", e->job, NULL};
    int kills = 0;
    for (int run = 0; run < 50; run++) {
        const char *crash = crashes && crashes[run] ? crashes[run] : NULL;
        int rc = tk_wait(tk_spawn_cli(argv, crash, e->log), 300);
        if (rc == 0)
            return kills;
        cr_assert_eq(rc, 128 + SIGKILL,
                     "run %d (SLUICE_CRASH_AT=%s) ended with status %d; "
                     "log: %s",
                     run, crash ? crash : "", rc, e->log);
        kills++;
    }
    cr_assert_fail("the job did not finish in 50 runs");
    return kills;
}

static char g_in[128];

static void produce_input(void)
{
    const char *bs = tk_bootstrap();
    tk_unique(g_in, sizeof(g_in), "eos-in");
    tk_create_topic(bs, g_in, 3);
    char err[512];
    cr_assert_eq(sl_gen_produce(bs, NULL, g_in, 3, &SPEC, 0, RECORDS, err, sizeof(err)), SL_OK,
                 "%s", err);
}

static void crash_at(const char *const *points, const char *tag)
{
    sl_log_configure(SL_LOG_WARN, 0, NULL);
    produce_input();
    env_t e;
    make_env(&e, g_in, tag, 1);
    int kills = run_to_end(&e, points);
    char what[256];
    snprintf(what, sizeof(what), "crash at %s%s%s (%d kill(s))", points[0],
             points[1] ? " then " : "", points[1] ? points[1] : "", kills);
    cr_assert_eq(kills, points[1] ? 2 : 1, "%s: expected every crash point to be reached", what);
    verify(e.bs, e.out, RECORDS, what);
    drop_env(&e);
    tk_delete_topic(e.bs, g_in);
}

TestSuite(exactly_once, .timeout = 1800);

Test(exactly_once, crash_before_commit)
{
    const char *p[] = {"before-commit:3", NULL};
    crash_at(p, "before-commit");
}

Test(exactly_once, crash_after_commit)
{
    const char *p[] = {"after-commit:3", NULL};
    crash_at(p, "after-commit");
}

Test(exactly_once, crash_mid_publish)
{
    const char *p[] = {"mid-publish:3", NULL};
    crash_at(p, "mid-publish");
}

Test(exactly_once, crash_after_publish_before_outbox_delete)
{
    const char *p[] = {"after-publish-before-outbox-delete:3", NULL};
    crash_at(p, "after-publish");
}

Test(exactly_once, crash_mid_reconcile)
{
    /* A crash after a commit leaves an outbox; the restart dies while reconciling it. */
    const char *p[] = {"after-commit:2", "mid-reconcile:1", NULL};
    crash_at(p, "mid-reconcile");
}

Test(exactly_once, random_kill_9)
{
    sl_log_configure(SL_LOG_WARN, 0, NULL);
    const char *bs = tk_bootstrap();
    const char *cycles_env = getenv("SLUICE_KILL_CYCLES");
    int cycles = cycles_env ? (int)strtol(cycles_env, NULL, 10) : 20;
    /* Enough input per cycle that most runs are still busy when they are killed. */
    uint64_t per_cycle = 10000;
    tk_unique(g_in, sizeof(g_in), "eos-in");
    tk_create_topic(bs, g_in, 3);
    env_t e;
    /* Small batches, each its own transaction: a run takes about a second, in any build,
     * so most kills land while it works. */
    g_max_records = 300;
    make_env(&e, g_in, "random", 1);
    const char *argv[] = {"run", "--quiet", e.job, NULL};
    unsigned seed = (unsigned)time(NULL);
    cr_log_info("random kills: seed %u, %d cycles", seed, cycles);
    srand(seed);
    char err[512];
    uint64_t produced = 0;
    int kills = 0, finished = 0;
    /* Kills are spread over the time a run takes: at first 0.85 s; a run that finishes
     * before its kill shows how long runs take now (faster builds, a faster machine), and
     * the window shrinks to that; each kill widens it a little again (runs that are cut
     * short leave more input to the next). So kills keep landing in start-up and in the
     * work. */
    int64_t window_us = 850000;
    /* Runs that finish before their kill do not count: go on until @p cycles runs were
     * really killed. */
    for (int c = 0; kills < cycles; c++) {
        cr_assert(c < 4 * cycles + 10, "only %d of %d runs could be killed", kills, cycles);
        /* Each cycle brings new input, so each run has work to be killed in. */
        cr_assert_eq(
            sl_gen_produce(bs, NULL, g_in, 3, &SPEC, produced, per_cycle, err, sizeof(err)), SL_OK,
            "%s", err);
        produced += per_cycle;
        int pid = tk_spawn_cli(argv, NULL, e.log);
        int64_t delay_us = 20000 + (int64_t)rand() % (window_us - 10000);
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        int rc = tk_wait_ms(pid, delay_us / 1000);
        if (rc >= 0) { /* finished before its kill: runs take this long now */
            clock_gettime(CLOCK_MONOTONIC, &t1);
            int64_t took = (t1.tv_sec - t0.tv_sec) * 1000000 + (t1.tv_nsec - t0.tv_nsec) / 1000;
            if (took < window_us)
                window_us = took > 30000 ? took : 30000;
        } else {
            kill(pid, SIGKILL);
            rc = tk_wait(pid, 60);
            window_us = window_us * 115 / 100 < 850000 ? window_us * 115 / 100 : 850000;
        }
        cr_assert(rc == 0 || rc == 128 + SIGKILL, "cycle %d: status %d, log %s", c, rc, e.log);
        if (rc == 0)
            finished++;
        else
            kills++;
    }
    cr_log_info("kills spread over %lld ms at the end", (long long)(window_us / 1000));
    char state[700];
    snprintf(state, sizeof(state), "%s/state", e.dir);
    tk_state_totals_t before = tk_state_totals(state, g_in, NULL, 0);
    g_max_records = 7000; /* the catch-up run may take big batches */
    write_job(&e, 1);
    run_to_end(&e, NULL);
    char what[256];
    snprintf(what, sizeof(what),
             "%d random kill -9 (%d more runs finished first; the killed runs had committed "
             "%llu of %llu records)",
             kills, finished, (unsigned long long)before.positions, (unsigned long long)produced);
    verify(bs, e.out, produced, what);
    drop_env(&e);
    tk_delete_topic(bs, g_in);
}

Test(exactly_once, a_fenced_producer_is_replaced_and_reconciled)
{
    sl_log_configure(SL_LOG_WARN, 0, NULL);
    const char *bs = tk_bootstrap();
    tk_unique(g_in, sizeof(g_in), "eos-in");
    tk_create_topic(bs, g_in, 3);
    env_t e;
    make_env(&e, g_in, "fence", 0);
    tk_runner_t r = {0};
    sl_job_t *job = NULL;
    cr_assert_eq(sl_job_new_from_file(e.job, &job, r.err, sizeof(r.err)), SL_OK, "%s", r.err);
    tk_runner_start(&r, job);
    char txn_id[300], err[512];
    snprintf(txn_id, sizeof(txn_id), "sluice-%s", e.out);
    const uint64_t slice = 40000, slices = 5;
    for (uint64_t i = 0; i < slices; i++) {
        cr_assert_eq(sl_gen_produce(bs, NULL, g_in, 3, &SPEC, i * slice, slice, err, sizeof(err)),
                     SL_OK, "%s", err);
        usleep(400000);
        /* Another producer with the job's transactional.id: the job's is fenced. */
        rd_kafka_conf_t *c = rd_kafka_conf_new();
        rd_kafka_conf_set(c, "bootstrap.servers", bs, NULL, 0);
        rd_kafka_conf_set(c, "transactional.id", txn_id, NULL, 0);
        rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, sizeof(err));
        cr_assert(rk, "%s", err);
        rd_kafka_error_t *fe = rd_kafka_init_transactions(rk, 30000);
        cr_assert(!fe, "fencing: %s", fe ? rd_kafka_error_string(fe) : "");
        rd_kafka_destroy(rk);
    }
    sl_job_stats_t st;
    for (int i = 0; i < 1200; i++) {
        sl_job_stats(r.job, &st, sizeof(st));
        if (st.records_in >= slice * slices || r.rc)
            break;
        usleep(100000);
    }
    usleep(1000000); /* let the last batch publish */
    sl_job_stop(r.job);
    tk_runner_join(&r);
    cr_assert_eq(r.rc, SL_OK, "the job failed: %s", r.err);
    sl_job_stats(r.job, &st, sizeof(st));
    cr_assert_eq(st.records_in, slice * slices, "every record read once");
    sl_job_destroy(r.job);
    char what[128];
    snprintf(what, sizeof(what), "%llu fencings while running", (unsigned long long)slices);
    verify(bs, e.out, slice * slices, what);
    drop_env(&e);
    tk_delete_topic(bs, g_in);
}

/* Lines of the job's log that hold @p text. */
static int log_count(const env_t *e, const char *text)
{
    char cmd[900];
    snprintf(cmd, sizeof(cmd), "grep -c '%s' '%s'", text, e->log);
    FILE *p = popen(cmd, "r");
    int n = 0;
    cr_assert(p && fscanf(p, "%d", &n) == 1);
    pclose(p);
    return n;
}

/* The whole input through the job, available-now, with @p var set to @p value for it: it
 * must recover in the same run, not die. */
static void run_recovering(env_t *e, const char *var, const char *value, const char *tag)
{
    setenv(var, value, 1);
    const char *none[] = {NULL, NULL};
    sl_log_configure(SL_LOG_WARN, 0, NULL);
    produce_input();
    make_env(e, g_in, tag, 1);
    int kills = run_to_end(e, none);
    unsetenv(var);
    cr_assert_eq(kills, 0, "the job died instead of recovering (log: %s)", e->log);
}

Test(exactly_once, a_producer_fenced_while_queuing_is_replaced)
{
    /* The third batch's producer is fenced (a fatal error, as a broker's fencing makes it)
     * half way through queuing its rows, while the batch's state is being written: the
     * job replaces the producer, and the new one's reconciliation publishes the batch
     * from the outbox, once. */
    env_t e;
    run_recovering(&e, "SLUICE_FENCE_AT", "mid-publish:3", "fence-queuing");
    cr_assert_eq(log_count(&e, "SLUICE_FENCE_AT: fencing"), 1, "log: %s", e.log);
    cr_assert(log_count(&e, "starting a new producer") >= 1,
              "the fenced producer was not replaced (log: %s)", e.log);
    cr_assert(log_count(&e, "published now") >= 1, "the reconciliation published nothing (log: %s)",
              e.log);
    verify(e.bs, e.out, RECORDS, "a producer fenced while queuing a batch");
    drop_env(&e);
    tk_delete_topic(e.bs, g_in);
}

Test(exactly_once, a_timed_out_transaction_is_recovered)
{
    /* The job stalls inside its third transaction for longer than transaction.timeout.ms;
     * the broker aborts the transaction and fences the producer. The job replaces its
     * producer, reconciles and goes on. */
    g_kafka_extra = ", \"producer\": {\"transaction.timeout.ms\": 2000}";
    env_t e;
    run_recovering(&e, "SLUICE_STALL_AT", "mid-publish:3:6000", "txn-timeout");
    int recoveries = log_count(&e, "starting a new producer");
    cr_assert(recoveries >= 1, "the stalled transaction was not timed out (log: %s)", e.log);
    char what[128];
    snprintf(what, sizeof(what), "a transaction timed out by the broker (%d recovery)", recoveries);
    verify(e.bs, e.out, RECORDS, what);
    drop_env(&e);
    tk_delete_topic(e.bs, g_in);
}
