/*
 * 0009-mock-faults.c - broker faults injected through librdkafka's mock cluster: request
 * errors on Produce, Fetch and FindCoordinator, a partition leader that moves, a broker
 * that goes down and comes back, 200 ms round trips. The mock has no transactional
 * isolation, so the job runs at-least-once here; what is checked is no crash and no loss:
 * every record counted once in the state, and each page's latest output row equal to its
 * exact total.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sluice/sluice.h"
#include "sluice/sluice_dev.h"
#include "tk.h"

enum { API_PRODUCE = 0, API_FETCH = 1, API_FIND_COORDINATOR = 10 };

Test(mock_faults, no_crash_no_loss, .timeout = 600)
{
    sl_log_configure(SL_LOG_ERROR, 0, NULL);
    char err[4096];
    rd_kafka_conf_t *mc = rd_kafka_conf_new();
    rd_kafka_conf_set(mc, "log_level", "0", NULL, 0);
    rd_kafka_t *mrk = rd_kafka_new(RD_KAFKA_PRODUCER, mc, err, sizeof(err));
    cr_assert(mrk, "%s", err);
    rd_kafka_mock_cluster_t *mcluster = rd_kafka_mock_cluster_new(mrk, 3);
    cr_assert(mcluster);
    const char *bs = rd_kafka_mock_cluster_bootstraps(mcluster);
    cr_assert(!rd_kafka_mock_topic_create(mcluster, "in", 3, 3));
    cr_assert(!rd_kafka_mock_topic_create(mcluster, "out", 1, 3));
    cr_assert(!rd_kafka_mock_topic_create(mcluster, "faults-changelog", 1, 3),
              "the mock cannot create topics for the job");
    const uint64_t n = 30000;
    sl_gen_spec_t spec = {.seed = 21, .pages = 40, .users = 100};
    cr_assert_eq(sl_gen_produce(bs, NULL, "in", 3, &spec, 0, n, err, sizeof(err)), SL_OK, "%s",
                 err);

    char *dir = tk_job_dir("mock");
    char json[2048];
    snprintf(json, sizeof(json),
             "{\"name\": \"faults\", \"kafka\": {\"bootstrap.servers\": \"%s\","
             "   \"fetch.wait.max.ms\": 10},"
             " \"source\": {\"topics\": \"in\", \"schema\": \"pageview.avsc\"},"
             " \"query\": {\"group_by\": \"page\", \"aggregates\": [{\"fn\": \"count\"},"
             "   {\"fn\": \"sum\", \"field\": \"bytes\"}]},"
             " \"trigger\": {\"interval\": \"200ms\", \"max_records\": 1000,"
             "   \"available_now\": true},"
             " \"output\": {\"sink\": \"kafka\", \"topic\": \"out\","
             "   \"delivery\": \"at-least-once\"},"
             " \"state\": {\"dir\": \"state\"}}",
             bs);
    tk_runner_t r = {0};
    sl_job_t *job = NULL;
    cr_assert_eq(sl_job_new_from_json(json, dir, "faults", &job, r.err, sizeof(r.err)), SL_OK, "%s",
                 r.err);

    /* Faults before the start: coordinator lookups and produce requests fail, and one
     * broker answers slowly. */
    rd_kafka_mock_push_request_errors(mcluster, API_FIND_COORDINATOR, 3,
                                      RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE,
                                      RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE,
                                      RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS);
    rd_kafka_mock_push_request_errors(
        mcluster, API_PRODUCE, 3, RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
        RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT, RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS);
    rd_kafka_mock_broker_set_rtt(mcluster, 2, 200);
    tk_runner_start(&r, job);

    /* Faults while it runs. */
    sl_job_stats_t st;
    for (int i = 0; i < 300; i++) {
        sl_job_stats(r.job, &st, sizeof(st));
        if (st.records_in > 0)
            break;
        usleep(20000);
    }
    rd_kafka_mock_push_request_errors(
        mcluster, API_FETCH, 4, RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
        RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART, RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
        RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION);
    rd_kafka_mock_partition_set_leader(mcluster, "in", 0, 2);
    rd_kafka_mock_partition_set_leader(mcluster, "out", 0, 3);
    rd_kafka_mock_broker_set_down(mcluster, 1);
    usleep(1500000);
    rd_kafka_mock_broker_set_up(mcluster, 1);
    rd_kafka_mock_push_request_errors(mcluster, API_PRODUCE, 2,
                                      RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
                                      RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT);
    tk_runner_join(&r);
    sl_job_stats(r.job, &st, sizeof(st));
    cr_log_info("with faults: %llu batches, %llu records in, %llu rows out, job: %s",
                (unsigned long long)st.batches, (unsigned long long)st.records_in,
                (unsigned long long)st.rows_out, r.rc ? r.err : "ok");
    cr_assert_eq(r.rc, SL_OK, "the job failed: %s", r.err);
    cr_assert_eq(st.records_in, n, "every record read once");
    sl_job_destroy(r.job);

    /* Each page's latest row is its exact total. */
    json_t *want = json_object();
    for (uint64_t i = 0; i < n; i++) {
        sl_pageview_t pv;
        sl_gen_pageview(&spec, i, &pv);
        json_t *w = json_object_get(want, pv.page);
        if (!w) {
            w = json_pack("{s:I,s:I}", "count", (json_int_t)0, "sum_bytes", (json_int_t)0);
            json_object_set_new(want, pv.page, w);
        }
        json_object_set_new(w, "count",
                            json_integer(json_integer_value(json_object_get(w, "count")) + 1));
        json_object_set_new(
            w, "sum_bytes",
            json_integer(json_integer_value(json_object_get(w, "sum_bytes")) + pv.bytes));
    }
    json_t *got = tk_latest_rows(bs, "out", "page");
    uint64_t rows = json_object_size(got);
    size_t wrong = 0;
    const char *page;
    json_t *w;
    json_object_foreach(want, page, w)
    {
        json_t *g = json_object_get(got, page);
        if (!g || !json_equal(json_object_get(g, "count"), json_object_get(w, "count")) ||
            !json_equal(json_object_get(g, "sum_bytes"), json_object_get(w, "sum_bytes")))
            wrong++;
    }
    cr_log_info("output: latest rows of %llu pages read, %zu pages expected, %zu with a wrong "
                "or missing total",
                (unsigned long long)rows, json_object_size(want), wrong);
    cr_assert_eq(wrong, 0, "pages whose latest row is not their total");
    json_decref(want);
    json_decref(got);
    tk_rmrf(dir);
    free(dir);
    rd_kafka_mock_cluster_destroy(mcluster);
    rd_kafka_destroy(mrk);
}
