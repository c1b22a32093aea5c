/*
 * source.c - the Kafka source (see source.h).
 *
 * On assignment the rebalance callback looks up each partition's stored position and
 * assigns the consumer there; a partition the state has never seen starts at the
 * earliest (or latest) offset. Kafka's committed offsets are never used: the state's
 * positions are the truth, written atomically with the aggregates they produced.
 */
#include "source.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kafka.h"
#include "log.h"
#include "util/util.h"

int sl__source_pos_key(char *buf, size_t size, const char *topic, int partition)
{
    return snprintf(buf, size, "pos/%s/%d", topic, partition);
}

static sl_part_t *part_of(sl_source_t *src, int t, int32_t p)
{
    sl_source_topic_t *st = &src->topics[t];
    if (p < 0)
        return NULL;
    if (p >= st->nparts) {
        int n = p + 1;
        sl_part_t *np = realloc(st->parts, (size_t)n * sizeof(*np));
        if (!np)
            return NULL;
        for (int i = st->nparts; i < n; i++)
            np[i] = (sl_part_t){.pos = -1, .committed = -1, .end = -1, .maxev = INT64_MIN};
        st->parts = np;
        st->nparts = n;
    }
    return &st->parts[p];
}

static int topic_index(const sl_source_t *src, const char *name)
{
    for (int i = 0; i < src->ntopics; i++) {
        if (!strcmp(src->topics[i].name, name))
            return i;
    }
    return -1;
}

sl_part_t *sl__source_part(sl_source_t *src, const rd_kafka_message_t *m)
{
    if (m->rkt != src->last_rkt) {
        src->last_topic = topic_index(src, rd_kafka_topic_name(m->rkt));
        src->last_rkt = m->rkt;
    }
    return src->last_topic < 0 ? NULL : part_of(src, src->last_topic, m->partition);
}

static int64_t stored_pos(sl_source_t *src, const char *topic, int partition)
{
    char key[512];
    int klen = sl__source_pos_key(key, sizeof(key), topic, partition);
    char *val = NULL, err[512];
    size_t vlen;
    sl_err_t e = sl__store_get(src->store, SL_CF_META, key, (size_t)klen, &val, &vlen, err,
                               sizeof(err));
    if (e == SL_ERR_NOTFOUND)
        return -1;
    if (e || vlen != 8) {
        snprintf(src->fatal, sizeof(src->fatal), "%s",
                 e ? err : "state: a stored position is corrupt");
        free(val);
        return -2;
    }
    int64_t pos = (int64_t)sl__be64_get((const uint8_t *)val);
    free(val);
    return pos;
}

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    sl_source_t *src = opaque;
    int cooperative = !strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE");
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        /* Only partitions of our topics are taken; a group that once ran with other
         * topics can hand back a stale assignment. */
        rd_kafka_topic_partition_list_t *ours = rd_kafka_topic_partition_list_new(parts->cnt);
        for (int i = 0; i < parts->cnt; i++) {
            rd_kafka_topic_partition_t *tp = &parts->elems[i];
            int t = topic_index(src, tp->topic);
            sl_part_t *p = t >= 0 ? part_of(src, t, tp->partition) : NULL;
            if (!p) {
                sl_log(SL_LOG_WARN, "source",
                       "the group assigned %s[%d], which is not a source topic of this job; "
                       "ignored (does another job use this job's consumer group?)",
                       tp->topic, tp->partition);
                continue;
            }
            int64_t pos = stored_pos(src, tp->topic, tp->partition);
            if (pos == -2) {
                rd_kafka_topic_partition_list_destroy(ours);
                return;
            }
            p->assigned = 1;
            p->committed = pos;
            rd_kafka_topic_partition_t *o = rd_kafka_topic_partition_list_add(ours, tp->topic,
                                                                              tp->partition);
            if (pos >= 0) {
                p->pos = pos;
                o->offset = pos;
            } else {
                o->offset = src->conf->starting_latest ? RD_KAFKA_OFFSET_END
                                                       : RD_KAFKA_OFFSET_BEGINNING;
            }
            if (pos >= 0)
                sl_log(SL_LOG_INFO, "source", "assigned %s[%d] at stored position %" PRId64,
                       tp->topic, tp->partition, pos);
            else
                sl_log(SL_LOG_INFO, "source", "assigned %s[%d] at the %s offset (no stored position)",
                       tp->topic, tp->partition,
                       src->conf->starting_latest ? "latest" : "earliest");
        }
        parts = ours;
        rd_kafka_error_t *e = NULL;
        rd_kafka_resp_err_t aerr = RD_KAFKA_RESP_ERR_NO_ERROR;
        if (cooperative)
            e = rd_kafka_incremental_assign(rk, parts);
        else
            aerr = rd_kafka_assign(rk, parts);
        if (e || aerr) {
            snprintf(src->fatal, sizeof(src->fatal), "cannot assign partitions: %s",
                     e ? rd_kafka_error_string(e) : rd_kafka_err2str(aerr));
            rd_kafka_error_destroy(e);
        }
        rd_kafka_topic_partition_list_destroy(ours);
    } else {
        for (int i = 0; i < parts->cnt; i++) {
            int t = topic_index(src, parts->elems[i].topic);
            sl_part_t *p = t >= 0 ? part_of(src, t, parts->elems[i].partition) : NULL;
            if (p)
                p->assigned = 0;
            sl_log(SL_LOG_INFO, "source", "revoked %s[%d]", parts->elems[i].topic,
                   parts->elems[i].partition);
        }
        if (cooperative) {
            rd_kafka_error_t *e = rd_kafka_incremental_unassign(rk, parts);
            rd_kafka_error_destroy(e);
        } else {
            rd_kafka_assign(rk, NULL);
        }
    }
}

sl_err_t sl__source_open(sl_source_t *src, const sl_conf_t *conf, char *errstr,
                         size_t errstr_size)
{
    memset(src, 0, sizeof(*src));
    src->conf = conf;
    src->last_topic = -1;
    /* The group is the job's; and the member is static (KIP-345), so a restarted job takes
     * its partitions back at once instead of waiting out the dead member's session. The
     * coordinator hands a returning static member its old assignment even when its
     * subscription changed, so the member id names the topic list too. */
    char group[300], instance[340];
    snprintf(group, sizeof(group), "sluice-%s", conf->name);
    uint64_t th = 0;
    for (int i = 0; i < conf->ntopics; i++)
        th = th * 31 + sl__hash(conf->topics[i], strlen(conf->topics[i]));
    snprintf(instance, sizeof(instance), "%s-%08x", group, (unsigned)(th & 0xffffffffu));
    int has_group = 0, has_instance = 0;
    for (int i = 0; i < conf->kafka.n + conf->consumer.n; i++) {
        const sl_kv_t *kv =
            i < conf->kafka.n ? &conf->kafka.kv[i] : &conf->consumer.kv[i - conf->kafka.n];
        has_group |= !strcmp(kv->k, "group.id");
        has_instance |= !strcmp(kv->k, "group.instance.id");
    }
    const char *fixed[11] = {"enable.auto.commit", "false", "enable.auto.offset.store", "false",
                             "enable.partition.eof", "true"};
    int nf = 6;
    if (!has_group) {
        fixed[nf++] = "group.id";
        fixed[nf++] = group;
    }
    if (!has_instance) {
        fixed[nf++] = "group.instance.id";
        fixed[nf++] = instance;
    }
    fixed[nf] = NULL;
    /* A deep prefetch queue (still bounded by queued.max.messages.kbytes, 64 MiB): with
     * librdkafka's default of 100,000 messages per partition, partition-end events slow
     * a catching-up consumer several times over (measured with tests/bench). */
    static const char *const defaults[] = {"queued.min.messages", "1000000", NULL};
    rd_kafka_conf_t *kc =
        sl__kafka_conf(conf, &conf->consumer, defaults, fixed, errstr, errstr_size);
    if (!kc)
        return SL_ERR_INVAL;
    rd_kafka_conf_set_rebalance_cb(kc, rebalance_cb);
    rd_kafka_conf_set_opaque(kc, src);
    char err[512];
    src->rk = rd_kafka_new(RD_KAFKA_CONSUMER, kc, err, sizeof(err));
    if (!src->rk) {
        rd_kafka_conf_destroy(kc);
        snprintf(errstr, errstr_size, "cannot create the Kafka consumer: %s", err);
        return SL_ERR_KAFKA;
    }
    src->topics = calloc((size_t)conf->ntopics, sizeof(*src->topics));
    if (!src->topics)
        return SL_ERR_NOMEM;
    src->ntopics = conf->ntopics;
    for (int i = 0; i < conf->ntopics; i++) {
        src->topics[i].name = strdup(conf->topics[i]);
        if (!src->topics[i].name)
            return SL_ERR_NOMEM;
    }
    return sl__kafka_check_topics(src->rk, conf->bootstrap, conf->topics, conf->ntopics,
                                  "source.topics", NULL, errstr, errstr_size);
}

/* Available-now: the end of every partition as it is now is where the job stops. */
static sl_err_t record_ends(sl_source_t *src, char *errstr, size_t errstr_size)
{
    int *nparts = calloc((size_t)src->ntopics, sizeof(int));
    if (!nparts)
        return SL_ERR_NOMEM;
    sl_err_t e = sl__kafka_check_topics(src->rk, src->conf->bootstrap, src->conf->topics,
                                        src->ntopics, "source.topics", nparts, errstr,
                                        errstr_size);
    for (int t = 0; !e && t < src->ntopics; t++) {
        for (int p = 0; p < nparts[t]; p++) {
            int64_t lo, hi;
            rd_kafka_resp_err_t err =
                rd_kafka_query_watermark_offsets(src->rk, src->topics[t].name, p, &lo, &hi, 10000);
            sl_part_t *part = part_of(src, t, p);
            if (err || !part) {
                snprintf(errstr, errstr_size, "cannot read the end offset of %s[%d]: %s",
                         src->topics[t].name, p, rd_kafka_err2str(err));
                e = SL_ERR_KAFKA;
                break;
            }
            part->end = hi;
            /* A partition with nothing to read is caught up whatever its position. */
            if (hi <= lo)
                part->end = -1;
        }
    }
    free(nparts);
    return e;
}

sl_err_t sl__source_start(sl_source_t *src, sl_store_t *store, int available_now, char *errstr,
                          size_t errstr_size)
{
    src->store = store;
    if (available_now) {
        sl_err_t e = record_ends(src, errstr, errstr_size);
        if (e)
            return e;
    }
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(src->ntopics);
    for (int i = 0; i < src->ntopics; i++)
        rd_kafka_topic_partition_list_add(l, src->topics[i].name, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t err = rd_kafka_subscribe(src->rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    if (err) {
        snprintf(errstr, errstr_size, "cannot subscribe: %s", rd_kafka_err2str(err));
        return SL_ERR_KAFKA;
    }
    src->q = rd_kafka_queue_get_consumer(src->rk);
    return SL_OK;
}

int sl__source_caught_up(const sl_source_t *src)
{
    for (int t = 0; t < src->ntopics; t++) {
        for (int p = 0; p < src->topics[t].nparts; p++) {
            const sl_part_t *part = &src->topics[t].parts[p];
            if (part->end >= 0 && part->pos < part->end)
                return 0;
        }
    }
    return 1;
}

void sl__source_close(sl_source_t *src)
{
    if (src->q)
        rd_kafka_queue_destroy(src->q);
    if (src->rk) {
        rd_kafka_consumer_close(src->rk);
        rd_kafka_destroy(src->rk);
    }
    for (int i = 0; i < src->ntopics; i++) {
        free(src->topics[i].name);
        free(src->topics[i].parts);
    }
    free(src->topics);
    memset(src, 0, sizeof(*src));
}
