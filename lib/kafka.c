/*
 * kafka.c - shared Kafka client set-up (see kafka.h).
 */
#include "kafka.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "util.h"

/* While a job starts, librdkafka's own complaints (connection refused, ...) are held
 * back: a start that fails ends in one line that says what is wrong. */
static atomic_int g_quiet;

void sl__kafka_quiet(int on)
{
    atomic_fetch_add(&g_quiet, on ? 1 : -1);
}

static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    if (atomic_load(&g_quiet) && level > 2)
        return;
    sl_log_level_t l = level <= 3   ? SL_LOG_ERROR
                       : level == 4 ? SL_LOG_WARN
                       : level <= 6 ? SL_LOG_INFO
                                    : SL_LOG_DEBUG;
    sl_log(l, "rdkafka", "%s: %s: %s", rd_kafka_name(rk), fac, buf);
}

static int set(rd_kafka_conf_t *conf, const char *k, const char *v, char *errstr,
               size_t errstr_size)
{
    char err[256];
    if (rd_kafka_conf_set(conf, k, v, err, sizeof(err)) != RD_KAFKA_CONF_OK) {
        snprintf(errstr, errstr_size, "kafka property '%s': %s", k, err);
        return -1;
    }
    return 0;
}

rd_kafka_conf_t *sl__kafka_conf(const sl_conf_kafka_t *k, const sl_kvs_t *role,
                                const char *const *defaults, const char *const *fixed, char *errstr,
                                size_t errstr_size)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set_log_cb(conf, log_cb);
    for (const char *const *d = defaults; d && *d; d += 2) {
        if (set(conf, d[0], d[1], errstr, errstr_size))
            goto fail;
    }
    for (int i = 0; i < k->props.n; i++) {
        if (set(conf, k->props.kv[i].k, k->props.kv[i].v, errstr, errstr_size))
            goto fail;
    }
    for (int i = 0; role && i < role->n; i++) {
        if (set(conf, role->kv[i].k, role->kv[i].v, errstr, errstr_size))
            goto fail;
    }
    for (const char *const *f = fixed; f && *f; f += 2) {
        if (set(conf, f[0], f[1], errstr, errstr_size))
            goto fail;
    }
    return conf;
fail:
    rd_kafka_conf_destroy(conf);
    return NULL;
}

sl_err_t sl__kafka_check_topics(rd_kafka_t *rk, const char *bootstrap, char *const *topics,
                                int ntopics, const char *what, int *nparts, char *errstr,
                                size_t errstr_size)
{
    sl_err_t e = SL_OK;
    for (int i = 0; i < ntopics && !e; i++) {
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topics[i], NULL);
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, rkt, &md, 10000);
        rd_kafka_topic_destroy(rkt);
        if (err) {
            snprintf(errstr, errstr_size, "cannot reach Kafka at %s: %s", bootstrap,
                     rd_kafka_err2str(err));
            e = SL_ERR_KAFKA;
            break;
        }
        rd_kafka_resp_err_t terr =
            md->topic_cnt == 1 ? md->topics[0].err : RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART;
        int parts = md->topic_cnt == 1 ? md->topics[0].partition_cnt : 0;
        rd_kafka_metadata_destroy(md);
        if (terr == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART || (!terr && parts == 0)) {
            snprintf(errstr, errstr_size, "%s: topic '%s' does not exist on %s", what, topics[i],
                     bootstrap);
            e = SL_ERR_KAFKA;
        } else if (terr) {
            snprintf(errstr, errstr_size, "%s: topic '%s': %s", what, topics[i],
                     rd_kafka_err2str(terr));
            e = SL_ERR_KAFKA;
        } else if (nparts) {
            nparts[i] = parts;
        }
    }
    return e;
}

/* Describes one resource; -1 when the broker does not answer, else 0 with @p key's value
 * in @p buf ("" when the resource lacks it). */
static int describe_str(rd_kafka_t *rk, rd_kafka_ResourceType_t type, const char *name,
                        const char *key, char *buf, size_t size)
{
    rd_kafka_ConfigResource_t *res = rd_kafka_ConfigResource_new(type, name);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_DescribeConfigs(rk, &res, 1, NULL, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 10000);
    int rc = ev && !rd_kafka_event_error(ev) ? 0 : -1;
    buf[0] = 0;
    if (!rc) {
        size_t n;
        const rd_kafka_ConfigResource_t **rs = rd_kafka_DescribeConfigs_result_resources(
            rd_kafka_event_DescribeConfigs_result(ev), &n);
        if (n == 1 && !rd_kafka_ConfigResource_error(rs[0])) {
            size_t nc;
            const rd_kafka_ConfigEntry_t **cs = rd_kafka_ConfigResource_configs(rs[0], &nc);
            for (size_t j = 0; j < nc; j++) {
                const char *v = rd_kafka_ConfigEntry_value(cs[j]);
                if (v && !strcmp(rd_kafka_ConfigEntry_name(cs[j]), key))
                    snprintf(buf, size, "%s", v);
            }
        }
    }
    if (ev)
        rd_kafka_event_destroy(ev);
    rd_kafka_queue_destroy(q);
    rd_kafka_ConfigResource_destroy(res);
    return rc;
}

static int describe(rd_kafka_t *rk, rd_kafka_ResourceType_t type, const char *name,
                    const char *key, int64_t *value)
{
    char buf[64];
    int rc = describe_str(rk, type, name, key, buf, sizeof(buf));
    *value = buf[0] ? strtoll(buf, NULL, 10) : -1;
    return rc;
}

/* The first broker's id, as text: a broker resource is asked first in any case, since a
 * broker without DescribeConfigs refuses that at once, where a topic's request waits out
 * the whole time-out (the mock cluster: 10 s). -1 when it cannot be asked. */
static int first_broker(rd_kafka_t *rk, char *id, size_t size, const char *key)
{
    const struct rd_kafka_metadata *md;
    if (rd_kafka_metadata(rk, 0, NULL, &md, 10000))
        return -1;
    int ok = md->broker_cnt >= 1;
    if (ok)
        snprintf(id, size, "%d", md->brokers[0].id);
    rd_kafka_metadata_destroy(md);
    char buf[64];
    return ok && describe_str(rk, RD_KAFKA_RESOURCE_BROKER, id, key, buf, sizeof(buf)) == 0 ? 0
                                                                                           : -1;
}

int sl__kafka_config_string(rd_kafka_t *rk, rd_kafka_ResourceType_t type, const char *name,
                            const char *key, char *buf, size_t size)
{
    char id[16];
    buf[0] = 0;
    if (first_broker(rk, id, sizeof(id), key) < 0)
        return -1;
    return describe_str(rk, type, name ? name : id, key, buf, size);
}

sl_err_t sl__kafka_create_topic(rd_kafka_t *rk, const char *topic, int partitions,
                                const char *const *config, char *errstr, size_t errstr_size)
{
    char err[256];
    rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(topic, partitions, -1, err, sizeof(err));
    if (!nt) {
        snprintf(errstr, errstr_size, "cannot create topic '%s': %s", topic, err);
        return SL_ERR_KAFKA;
    }
    for (const char *const *c = config; c && *c; c += 2)
        rd_kafka_NewTopic_set_config(nt, c[0], c[1]);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_CreateTopics(rk, &nt, 1, NULL, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 30000);
    sl_err_t e = SL_OK;
    if (!ev) {
        snprintf(errstr, errstr_size, "cannot create topic '%s': no answer within 30 s", topic);
        e = SL_ERR_KAFKA;
    } else if (rd_kafka_event_error(ev)) {
        snprintf(errstr, errstr_size, "cannot create topic '%s': %s", topic,
                 rd_kafka_event_error_string(ev));
        e = SL_ERR_KAFKA;
    } else {
        size_t n;
        const rd_kafka_topic_result_t **r =
            rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
        rd_kafka_resp_err_t te = n == 1 ? rd_kafka_topic_result_error(r[0]) : RD_KAFKA_RESP_ERR_NO_ERROR;
        if (te && te != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
            snprintf(errstr, errstr_size, "cannot create topic '%s': %s", topic,
                     rd_kafka_topic_result_error_string(r[0]) ? rd_kafka_topic_result_error_string(r[0])
                                                              : rd_kafka_err2str(te));
            e = SL_ERR_KAFKA;
        }
    }
    if (ev)
        rd_kafka_event_destroy(ev);
    rd_kafka_queue_destroy(q);
    rd_kafka_NewTopic_destroy(nt);
    return e;
}

int64_t sl__kafka_config_value(rd_kafka_t *rk, rd_kafka_ResourceType_t type, const char *name,
                               const char *key)
{
    char id[16];
    int64_t value;
    if (first_broker(rk, id, sizeof(id), key) < 0)
        return -1;
    return describe(rk, type, name ? name : id, key, &value) < 0 ? -1 : value;
}

rd_kafka_t *sl__kafka_reader(const sl_conf_kafka_t *k, const char *what, char *errstr,
                             size_t errstr_size)
{
    /* fetch.wait.max.ms: the end of each partition is known from an empty fetch, which
     * otherwise waits 500 ms. auto.offset.reset=error: an offset the log no longer has
     * is reported, never read from elsewhere. The group is never joined nor committed. */
    static const char *const fixed[] = {"isolation.level",
                                        "read_committed",
                                        "enable.partition.eof",
                                        "true",
                                        "enable.auto.commit",
                                        "false",
                                        "auto.offset.reset",
                                        "error",
                                        "group.id",
                                        "sluice-reader",
                                        "fetch.wait.max.ms",
                                        "10",
                                        NULL};
    /* A reader reads partitions through to their ends as fast as it can. librdkafka 2.0
     * stops fetching a partition whose queue holds queued.min.messages and looks again
     * only when its broker thread next wakes, up to a second later, so the queue must
     * hold what the reader takes meanwhile: a changelog of 711,000 records read in
     * 4.2 s with the default of 100,000 and in 0.67 s with 500,000, for about 100 MiB
     * more memory while reading. */
    static const char *const defaults[] = {"queued.min.messages",
                                           "500000",
                                           "max.partition.fetch.bytes",
                                           "1048576",
                                           "fetch.max.bytes",
                                           "16777216",
                                           NULL};
    rd_kafka_conf_t *kc = sl__kafka_conf(k, &k->consumer, defaults, fixed, errstr, errstr_size);
    if (!kc)
        return NULL;
    char err[512];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, kc, err, sizeof(err));
    if (!rk) {
        rd_kafka_conf_destroy(kc);
        snprintf(errstr, errstr_size, "%s: cannot create a consumer: %s", what, err);
    }
    return rk;
}

size_t sl__kafka_consume(rd_kafka_t *rk, rd_kafka_queue_t *q, int timeout_ms, size_t max,
                         void (*fn)(void *opaque, rd_kafka_message_t *m), void *opaque,
                         size_t *bytes)
{
    (void)rk;
    size_t n = 0, b = 0;
    rd_kafka_message_t *m;
    /* The first waits; the others take what is queued already. */
    while (n < max && (m = rd_kafka_consume_queue(q, n ? 0 : timeout_ms))) {
        n++;
        b += m->len;
        fn(opaque, m);
        rd_kafka_message_destroy(m);
    }
    if (bytes)
        *bytes = b;
    return n;
}
