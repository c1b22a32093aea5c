/*
 * mock.c - librdkafka's mock cluster as sluice's embedded development broker: the demo
 * runs on it with nothing else installed, and tests use it to inject broker faults. It
 * has no transactional isolation, so it never proves exactly-once.
 */
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <stdio.h>
#include <stdlib.h>

#include "sluice/sluice.h"
#include "sluice/sluice_dev.h"
#include "util.h"

struct sl_mock {
    rd_kafka_t *rk; /* the mock cluster lives in this handle's threads */
    rd_kafka_mock_cluster_t *mcluster;
};

SL_API sl_err_t sl_mock_new(int brokers, sl_mock_t **mockp, char *errstr, size_t errstr_size)
{
    *mockp = NULL;
    sl_mock_t *m = calloc(1, sizeof(*m));
    if (!m)
        return SL_ERR_NOMEM;
    char err[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "log_level", "3", NULL, 0);
    m->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    if (!m->rk) {
        rd_kafka_conf_destroy(conf);
        snprintf(errstr, errstr_size, "cannot start the mock cluster: %s", err);
        free(m);
        return SL_ERR_KAFKA;
    }
    m->mcluster = rd_kafka_mock_cluster_new(m->rk, brokers);
    if (!m->mcluster) {
        snprintf(errstr, errstr_size, "cannot start the mock cluster");
        rd_kafka_destroy(m->rk);
        free(m);
        return SL_ERR_KAFKA;
    }
    *mockp = m;
    return SL_OK;
}

SL_API const char *sl_mock_bootstraps(const sl_mock_t *mock)
{
    return rd_kafka_mock_cluster_bootstraps(mock->mcluster);
}

SL_API sl_err_t sl_mock_create_topic(sl_mock_t *mock, const char *topic, int partitions)
{
    return rd_kafka_mock_topic_create(mock->mcluster, topic, partitions, 1) ? SL_ERR_KAFKA : SL_OK;
}

SL_API void sl_mock_destroy(sl_mock_t *mock)
{
    if (!mock)
        return;
    rd_kafka_mock_cluster_destroy(mock->mcluster);
    rd_kafka_destroy(mock->rk);
    free(mock);
}
