/*
 * 0004-kafka4-smoke.c - does Debian 12's librdkafka (2.0.2) work with the newest Kafka
 * 4.x broker? Kafka 4.0 removed old protocol versions (KIP-896). This starts its own 4.x
 * broker and checks what sluice relies on: the admin API, the idempotent producer, the
 * transactional producer (commit and abort), a consumer group reading read_committed,
 * and a sluice job end to end. README.md states the result.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sluice/sluice.h"
#include "sluice/sluice_dev.h"
#include "tk.h"

static rd_kafka_t *producer(const char *bs, const char *txn_id)
{
    char err[512];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    rd_kafka_conf_set(c, "bootstrap.servers", bs, NULL, 0);
    rd_kafka_conf_set(c, "enable.idempotence", "true", NULL, 0);
    if (txn_id)
        rd_kafka_conf_set(c, "transactional.id", txn_id, NULL, 0);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, sizeof(err));
    cr_assert(rk, "%s", err);
    return rk;
}

static void produce_n(rd_kafka_t *rk, const char *topic, int n, const char *tag)
{
    for (int i = 0; i < n; i++) {
        char v[64];
        int len = snprintf(v, sizeof(v), "%s-%d", tag, i);
        cr_assert(!rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_VALUE(v, (size_t)len),
                                     RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END));
    }
}

static void txn_ok(rd_kafka_error_t *e, const char *what)
{
    cr_assert(!e, "%s: %s", what, e ? rd_kafka_error_string(e) : "");
}

static char dir[128];

/* Runs after the test even when an assertion failed, so no broker is left running. */
static void stop_broker(void)
{
    if (dir[0])
        tk_broker_stop(dir);
}

Test(kafka4, librdkafka_with_the_newest_broker, .timeout = 600, .fini = stop_broker)
{
    sl_log_configure(SL_LOG_WARN, 0, NULL);
    snprintf(dir, sizeof(dir), "/tmp/sluice-kafka4-%d", (int)getpid());
    const char *version =
        getenv("SLUICE_SMOKE_KAFKA") ? getenv("SLUICE_SMOKE_KAFKA") : TK_KAFKA_NEWEST;
    char *bs = tk_broker_start(version, dir);
    cr_log_info("Kafka %s at %s, librdkafka %s", version, bs, rd_kafka_version_str());
    tk_create_topic(bs, "smoke", 2);
    cr_log_info("admin API (CreateTopics): ok");

    rd_kafka_t *rk = producer(bs, NULL);
    produce_n(rk, "smoke", 1000, "idem");
    cr_assert(!rd_kafka_flush(rk, 30000), "idempotent produce did not finish");
    rd_kafka_destroy(rk);
    cr_log_info("idempotent producer: 1000 records acknowledged");

    rk = producer(bs, "sluice-smoke-txn");
    txn_ok(rd_kafka_init_transactions(rk, 30000), "init_transactions");
    txn_ok(rd_kafka_begin_transaction(rk), "begin_transaction");
    produce_n(rk, "smoke", 100, "committed");
    txn_ok(rd_kafka_commit_transaction(rk, 30000), "commit_transaction");
    txn_ok(rd_kafka_begin_transaction(rk), "begin_transaction");
    produce_n(rk, "smoke", 50, "aborted");
    rd_kafka_error_t *ae = rd_kafka_abort_transaction(rk, 30000);
    if (ae) {
        /* librdkafka issue #4849: abort_transaction can fail with INVALID_TXN_STATE right
         * after begin_transaction. sluice then starts a new producer, whose
         * init_transactions aborts what the old one left open; check that it does. */
        cr_log_info("abort_transaction failed (%s); recovering with a new producer",
                    rd_kafka_error_string(ae));
        rd_kafka_error_destroy(ae);
        rd_kafka_destroy(rk);
        rk = producer(bs, "sluice-smoke-txn");
        txn_ok(rd_kafka_init_transactions(rk, 30000), "init_transactions after a failed abort");
    }
    rd_kafka_destroy(rk);
    cr_log_info("transactional producer: init, commit and abort%s: ok",
                ae ? " (abort by a new producer)" : "");

    /* A consumer group member, read_committed: 1100 records, none of the aborted ones. */
    char err[512];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    rd_kafka_conf_set(c, "bootstrap.servers", bs, NULL, 0);
    rd_kafka_conf_set(c, "group.id", "smoke-group", NULL, 0);
    rd_kafka_conf_set(c, "auto.offset.reset", "earliest", NULL, 0);
    rd_kafka_conf_set(c, "isolation.level", "read_committed", NULL, 0);
    rd_kafka_t *cons = rd_kafka_new(RD_KAFKA_CONSUMER, c, err, sizeof(err));
    cr_assert(cons, "%s", err);
    rd_kafka_poll_set_consumer(cons);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, "smoke", RD_KAFKA_PARTITION_UA);
    cr_assert(!rd_kafka_subscribe(cons, l));
    rd_kafka_topic_partition_list_destroy(l);
    int got = 0, aborted = 0;
    time_t deadline = time(NULL) + 60;
    while (got < 1100 && time(NULL) < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(cons, 500);
        if (!m)
            continue;
        if (!m->err) {
            got++;
            aborted += m->len >= 7 && !memcmp(m->payload, "aborted", 7);
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(cons);
    rd_kafka_destroy(cons);
    cr_assert_eq(got, 1100, "the consumer group read %d of 1100 committed records", got);
    cr_assert_eq(aborted, 0, "read_committed showed %d aborted records", aborted);
    cr_log_info("consumer group, read_committed: 1100 records, no aborted ones");

    /* sluice itself, end to end. */
    tk_create_topic(bs, "smoke-pv", 3);
    tk_create_topic(bs, "smoke-out", 1);
    sl_gen_spec_t spec = {.seed = 9, .pages = 20, .users = 20};
    cr_assert_eq(sl_gen_produce(bs, NULL, "smoke-pv", 3, &spec, 0, 10000, err, sizeof(err)), SL_OK,
                 "%s", err);
    char *jdir = tk_tmpdir("sluice-kafka4-job");
    tk_write_file(jdir, "pageview.avsc", sl_gen_pageview_schema());
    char json[2048], jerr[4096];
    snprintf(json, sizeof(json),
             "{\"name\": \"smoke\", \"kafka\": {\"bootstrap.servers\": \"%s\"},"
             " \"source\": {\"topics\": \"smoke-pv\", \"schema\": \"pageview.avsc\"},"
             " \"query\": {\"group_by\": \"page\", \"aggregates\": [{\"fn\": \"count\"}]},"
             " \"trigger\": {\"interval\": \"1s\", \"available_now\": true},"
             " \"output\": {\"sink\": \"kafka\", \"topic\": \"smoke-out\"},"
             " \"state\": {\"dir\": \"state\"}}",
             bs);
    sl_job_t *job;
    cr_assert_eq(sl_job_new_from_json(json, jdir, "smoke", &job, jerr, sizeof(jerr)), SL_OK);
    cr_assert_eq(sl_job_run(job, jerr, sizeof(jerr)), SL_OK, "%s", jerr);
    sl_job_stats_t st;
    sl_job_stats(job, &st, sizeof(st));
    sl_job_destroy(job);
    cr_assert_eq(st.records_in, 10000);
    cr_log_info("sluice job: 10000 records in, %llu rows out", (unsigned long long)st.rows_out);
    tk_rmrf(jdir);
    free(jdir);
    free(bs);
}
