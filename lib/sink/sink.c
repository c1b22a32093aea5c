/*
 * sink.c - the Kafka and console sinks (see sink.h).
 */
#include "sink.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "commit/changelog.h"
#include "crash.h"
#include "kafka.h"
#include "log.h"
#include "output.h"
#include "util.h"

/* Deliveries of a task's producer: failures, and the offsets after its own records. */
static void txn_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    sl_txn_t *t = opaque;
    if (m->err) {
        if (!t->fails.n++)
            snprintf(t->fails.first, sizeof(t->fails.first), "%s[%d]: %s",
                     rd_kafka_topic_name(m->rkt), m->partition, rd_kafka_err2str(m->err));
        return;
    }
    if (m->rkt == t->clog) {
        if (m->offset + 1 > t->clog_pending)
            t->clog_pending = m->offset + 1;
    } else if (m->partition >= 0 && m->partition < t->s->nparts &&
               m->offset + 1 > t->pending[m->partition]) {
        t->pending[m->partition] = m->offset + 1;
    }
}

/* Deliveries of the dead-letter producer, which runs on the consuming thread. */
static void side_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    sl_sink_t *s = opaque;
    if (m->err && !s->side_fails.n++)
        snprintf(s->side_fails.first, sizeof(s->side_fails.first), "%s[%d]: %s",
                 rd_kafka_topic_name(m->rkt), m->partition, rd_kafka_err2str(m->err));
}

static rd_kafka_t *new_producer(sl_sink_t *s, void *opaque,
                                void (*dr)(rd_kafka_t *, const rd_kafka_message_t *, void *),
                                const char *const *defaults, const char *const *fixed,
                                char *errstr, size_t errstr_size)
{
    rd_kafka_conf_t *kc =
        sl__kafka_conf(s->kafka, &s->kafka->producer, defaults, fixed, errstr, errstr_size);
    if (!kc)
        return NULL;
    /* A topic sluice writes to is checked or made by sluice (the changelog with its
     * settings), never made by the broker on first sight with its defaults. */
    char err[512];
    if (rd_kafka_conf_set(kc, "allow.auto.create.topics", "false", err, sizeof(err))) {
        snprintf(errstr, errstr_size, "cannot configure the Kafka producer: %s", err);
        rd_kafka_conf_destroy(kc);
        return NULL;
    }
    if (dr)
        rd_kafka_conf_set_dr_msg_cb(kc, dr);
    rd_kafka_conf_set_opaque(kc, opaque);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, kc, err, sizeof(err));
    if (!rk) {
        rd_kafka_conf_destroy(kc);
        snprintf(errstr, errstr_size, "cannot create the Kafka producer: %s", err);
    }
    return rk;
}

/* Learns a topic's partitions now: otherwise the first batch waits about a second for
 * librdkafka's lazy metadata refresh (measured: a first commit of 1 s, 12 ms with this). */
static rd_kafka_topic_t *known_topic(rd_kafka_t *rk, const char *topic)
{
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    if (rkt && rd_kafka_metadata(rk, 0, rkt, &md, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR)
        rd_kafka_metadata_destroy(md);
    return rkt;
}

static sl_err_t open_producer(sl_txn_t *t, char *errstr, size_t errstr_size)
{
    sl_sink_t *s = t->s;
    /* A topic that takes smaller requests than the producer would send them fails every
     * batch of records that are together too large: the producer is told its limit. */
    const char *txn[] = {"enable.idempotence", "true", "acks", "all", "transactional.id",
                         t->txn_id, "message.max.bytes", s->max_str, "batch.size", s->max_str,
                         NULL};
    const char *idem[] = {"enable.idempotence", "true", "acks", "all", "message.max.bytes",
                          s->max_str, "batch.size", s->max_str, NULL};
    if (!s->max_str[0])
        txn[6] = idem[4] = NULL;
    /* A batch's rows are published without copies (sl__sink_publish), and no more than
     * 50,000 are queued at a time: each costs librdkafka about 300 bytes besides, and its
     * default of 100,000 held 47 MB more with batches of 200,000 rows. */
    static const char *const defaults[] = {"queue.buffering.max.messages", "50000", NULL};
    t->rk = new_producer(s, t, txn_dr_cb, defaults, s->transactional ? txn : idem, errstr,
                         errstr_size);
    if (!t->rk)
        return SL_ERR_KAFKA;
    if (s->kafka_out)
        t->rkt = known_topic(t->rk, s->output->topic);
    if (s->clog_topic)
        t->clog = known_topic(t->rk, s->clog_topic);
    return SL_OK;
}

/* With transactions: fences every earlier producer of the task's transactional id and
 * aborts its open transaction. */
static sl_err_t init_producer(sl_txn_t *t, char *errstr, size_t errstr_size)
{
    if (!t->s->transactional)
        return SL_OK;
    rd_kafka_error_t *e = rd_kafka_init_transactions(t->rk, 60000);
    if (e) {
        snprintf(errstr, errstr_size,
                 "cannot start the transactional producer '%s': %s (a broker without "
                 "transactions needs \"output\": {\"delivery\": \"at-least-once\"})",
                 t->txn_id, rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
        return SL_ERR_KAFKA;
    }
    return SL_OK;
}

static void close_producer(sl_txn_t *t)
{
    if (t->rkt)
        rd_kafka_topic_destroy(t->rkt);
    if (t->clog)
        rd_kafka_topic_destroy(t->clog);
    t->rkt = t->clog = NULL;
    if (t->rk)
        rd_kafka_destroy(t->rk);
    t->rk = NULL;
}

/* The broker's transaction.max.timeout.ms against the job's transaction.timeout.ms. */
static sl_err_t check_txn_timeout(sl_sink_t *s, rd_kafka_t *probe, char *errstr,
                                  size_t errstr_size)
{
    const sl_conf_kafka_t *kafka = s->kafka;
    char ours[32] = "60000";
    size_t sz = sizeof(ours);
    rd_kafka_conf_get(rd_kafka_conf(probe), "transaction.timeout.ms", ours, &sz);
    for (int i = 0; i < kafka->producer.n; i++) {
        if (!strcmp(kafka->producer.kv[i].k, "transaction.timeout.ms"))
            snprintf(ours, sizeof(ours), "%s", kafka->producer.kv[i].v);
    }
    for (int i = 0; i < kafka->props.n; i++) {
        if (!strcmp(kafka->props.kv[i].k, "transaction.timeout.ms"))
            snprintf(ours, sizeof(ours), "%s", kafka->props.kv[i].v);
    }
    int64_t max = sl__kafka_config_value(probe, RD_KAFKA_RESOURCE_BROKER, NULL,
                                         "transaction.max.timeout.ms");
    if (max < 0) {
        sl_log(SL_LOG_WARN, "sink",
               "cannot read the broker's transaction.max.timeout.ms; "
               "transaction.timeout.ms is not checked");
    } else if (strtoll(ours, NULL, 10) > max) {
        snprintf(errstr, errstr_size,
                 "kafka: transaction.timeout.ms is %s, more than the broker's "
                 "transaction.max.timeout.ms (%lld); set kafka.producer "
                 "\"transaction.timeout.ms\" to at most %lld",
                 ours, (long long)max, (long long)max);
        return SL_ERR_INVAL;
    }
    return SL_OK;
}

sl_err_t sl__sink_open(sl_sink_t *s, const char *job, const sl_conf_kafka_t *kafka,
                       const sl_conf_output_t *output, const sl_plan_t *plan,
                       const char *dead_letter_topic, const char *clog_topic, int ntasks,
                       const char *group, FILE *console, char *errstr, size_t errstr_size)
{
    memset(s, 0, sizeof(*s));
    s->job = job;
    s->kafka = kafka;
    s->output = output;
    s->plan = plan;
    s->console = console ? console : stdout;
    s->clog_topic = clog_topic;
    s->kafka_out = output->sink == SL_SINK_KAFKA;
    s->ntasks = ntasks;
    sl_err_t e;
    if (dead_letter_topic || plan->late_topic) {
        static const char *const idem[] = {"enable.idempotence", "true", "acks", "all", NULL};
        if (!(s->dlq = new_producer(s, s, side_dr_cb, NULL, idem, errstr, errstr_size)))
            return SL_ERR_KAFKA;
        char *t[] = {(char *)dead_letter_topic};
        if (dead_letter_topic &&
            (e = sl__kafka_check_topics(s->dlq, kafka->bootstrap, t, 1,
                                        "source.on_decode_error.dead_letter_topic", NULL, errstr,
                                        errstr_size)))
            return e;
        char *lt[] = {plan->late_topic};
        if (plan->late_topic &&
            (e = sl__kafka_check_topics(s->dlq, kafka->bootstrap, lt, 1,
                                        "query.watermark.late_topic", NULL, errstr, errstr_size)))
            return e;
    }
    if (!sl__sink_has_producers(s))
        return SL_OK;
    s->transactional = output->exactly_once;
    if (!(s->txns = calloc((size_t)ntasks, sizeof(*s->txns))))
        return SL_ERR_NOMEM;
    if (group && !(s->cgmd = rd_kafka_consumer_group_metadata_new(group)))
        return SL_ERR_NOMEM;
    /* Check the topics and the timeout with an idempotent handle first: a transactional
     * one would fence a running instance before we know this one can run. */
    static const char *const idem[] = {"enable.idempotence", "true", NULL};
    rd_kafka_t *probe = new_producer(s, s, NULL, NULL, idem, errstr, errstr_size);
    if (!probe)
        return SL_ERR_KAFKA;
    e = SL_OK;
    if (s->kafka_out) {
        char *t[] = {output->topic};
        e = sl__kafka_check_topics(probe, kafka->bootstrap, t, 1, "output.topic", &s->nparts,
                                   errstr, errstr_size);
    }
    char v[32] = "1000000";
    size_t sz = sizeof(v);
    rd_kafka_conf_get(rd_kafka_conf(probe), "message.max.bytes", v, &sz);
    s->max_bytes = s->producer_max = strtoll(v, NULL, 10);
    s->topic_max = -1;
    if (!e && s->kafka_out) {
        s->topic_max = sl__kafka_config_value(probe, RD_KAFKA_RESOURCE_TOPIC, output->topic,
                                              "max.message.bytes");
        if (s->topic_max >= 1000 && s->topic_max < s->max_bytes) {
            s->max_bytes = s->topic_max;
            snprintf(s->max_str, sizeof(s->max_str), "%lld", (long long)s->topic_max);
        }
    }
    if (!e && s->transactional)
        e = check_txn_timeout(s, probe, errstr, errstr_size);
    if (!e && clog_topic)
        e = sl__clog_ensure(probe, kafka->bootstrap, clog_topic, ntasks, errstr, errstr_size);
    rd_kafka_destroy(probe);
    return e;
}

int sl__sink_has_producers(const sl_sink_t *s)
{
    return s->kafka_out || s->clog_topic;
}

sl_err_t sl__sink_task_open(sl_sink_t *s, int task, char *errstr, size_t errstr_size)
{
    if (task < 0 || task >= s->ntasks || !s->txns)
        return SL_ERR_INVAL;
    if (s->txns[task])
        return SL_OK;
    sl_txn_t *t = calloc(1, sizeof(*t));
    if (!t || (s->nparts && (!(t->confirmed = calloc((size_t)s->nparts, sizeof(int64_t))) ||
                             !(t->pending = calloc((size_t)s->nparts, sizeof(int64_t)))))) {
        if (t) {
            free(t->confirmed);
            free(t);
        }
        snprintf(errstr, errstr_size, "out of memory");
        return SL_ERR_NOMEM;
    }
    t->s = s;
    t->task = task;
    for (int i = 0; i < s->nparts; i++)
        t->confirmed[i] = t->pending[i] = -1;
    t->clog_confirmed = t->clog_pending = -1;
    /* One task: the job's id as it has always been, so that a job that ran before tasks
     * fences its earlier producer too. */
    if (s->ntasks == 1)
        snprintf(t->txn_id, sizeof(t->txn_id), "sluice-%s", s->job);
    else
        snprintf(t->txn_id, sizeof(t->txn_id), "sluice-%s-%d", s->job, task);
    sl_err_t e = open_producer(t, errstr, errstr_size);
    if (!e)
        e = init_producer(t, errstr, errstr_size);
    if (e) {
        close_producer(t);
        free(t->confirmed);
        free(t->pending);
        free(t);
        return e;
    }
    s->txns[task] = t;
    return SL_OK;
}

void sl__sink_task_close(sl_sink_t *s, int task)
{
    if (!s->txns || task < 0 || task >= s->ntasks || !s->txns[task])
        return;
    sl_txn_t *t = s->txns[task];
    close_producer(t);
    free(t->confirmed);
    free(t->pending);
    free(t);
    s->txns[task] = NULL;
}

size_t sl__sink_record_size(const sl_sink_t *s, size_t klen, size_t vlen)
{
    /* A batch header of 61 bytes, a record's framing of at most 40, the header with its
     * name and the numbers, and room to spare. */
    return klen + vlen + strlen(s->job) + 256;
}

sl_err_t sl__sink_check_size(const sl_sink_t *s, size_t klen, size_t vlen, char *errstr,
                             size_t errstr_size)
{
    size_t size = sl__sink_record_size(s, klen, vlen);
    if (!s->max_bytes || size <= (size_t)s->max_bytes)
        return SL_OK;
    char topic[64] = "cannot be read";
    if (s->topic_max >= 0)
        snprintf(topic, sizeof(topic), "%lld", (long long)s->topic_max);
    snprintf(errstr, errstr_size,
             "a result row of %zu bytes (key %zu, value %zu) is larger than the output topic "
             "'%s' takes: %lld bytes (its max.message.bytes %s, the producer's "
             "message.max.bytes %lld). Raise the topic's max.message.bytes and, above 1000000, "
             "kafka.producer \"message.max.bytes\", or make the rows smaller",
             size, klen, vlen, s->output->topic, (long long)s->max_bytes, topic,
             (long long)s->producer_max);
    return SL_ERR_INVAL;
}

sl_err_t sl__sink_reset(sl_txn_t *t, char *errstr, size_t errstr_size)
{
    close_producer(t);
    t->fails.n = 0;
    t->started = 0; /* its transaction went with it */
    for (int i = 0; i < t->s->nparts; i++)
        t->pending[i] = t->confirmed[i];
    t->clog_pending = t->clog_confirmed;
    sl_err_t e = open_producer(t, errstr, errstr_size);
    return e ? e : init_producer(t, errstr, errstr_size);
}

/* Produces one record to @p rkt, or when it is NULL to the topic named @p topic (looked
 * up by name under librdkafka's handle lock: a side topic's rare record), to @p partition
 * (RD_KAFKA_PARTITION_UA: by key); @p copy: librdkafka copies the value, else it must
 * stay valid until the record is delivered (keys are always copied). */
static sl_err_t produce(rd_kafka_t *rk, rd_kafka_topic_t *rkt, const char *topic,
                        int32_t partition, const void *key, size_t klen, const void *val,
                        size_t vlen, int copy, rd_kafka_headers_t *hdrs, char *errstr,
                        size_t errstr_size)
{
    int flags = copy ? RD_KAFKA_MSG_F_COPY : 0;
    for (;;) {
        rd_kafka_resp_err_t err =
            rkt ? rd_kafka_producev(rk, RD_KAFKA_V_RKT(rkt), RD_KAFKA_V_PARTITION(partition),
                                    RD_KAFKA_V_KEY(klen ? key : NULL, klen),
                                    RD_KAFKA_V_VALUE((void *)val, vlen), RD_KAFKA_V_MSGFLAGS(flags),
                                    RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_END)
                : rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(partition),
                                    RD_KAFKA_V_KEY(klen ? key : NULL, klen),
                                    RD_KAFKA_V_VALUE((void *)val, vlen), RD_KAFKA_V_MSGFLAGS(flags),
                                    RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_END);
        if (!err)
            return SL_OK;
        if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            rd_kafka_poll(rk, 100); /* wait for room: deliveries free the queue */
            continue;
        }
        if (hdrs)
            rd_kafka_headers_destroy(hdrs);
        snprintf(errstr, errstr_size, "cannot produce to '%s': %s",
                 rkt ? rd_kafka_topic_name(rkt) : topic, rd_kafka_err2str(err));
        if (err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE)
            sl__strlcatf(errstr, errstr_size,
                         " (a record of %zu bytes; raise the topic's max.message.bytes and "
                         "kafka.producer \"message.max.bytes\")",
                         klen + vlen);
        return err == RD_KAFKA_RESP_ERR__FATAL || err == RD_KAFKA_RESP_ERR__STATE ? SL_ERR_FENCED
                                                                                  : SL_ERR_KAFKA;
    }
}

/* Waits until every record of @p rk is delivered; the failures are in @p f. */
static sl_err_t flush(rd_kafka_t *rk, sl_sink_fails_t *f, char *errstr, size_t errstr_size)
{
    /* No time limit of our own: librdkafka fails a record after message.timeout.ms. */
    while (rd_kafka_outq_len(rk) > 0)
        rd_kafka_flush(rk, 1000);
    if (f->n) {
        snprintf(errstr, errstr_size, "%" PRIu64 " record(s) could not be published, first: %s",
                 f->n, f->first);
        f->n = 0;
        return SL_ERR_KAFKA;
    }
    return SL_OK;
}

/* A transaction that failed: abort it so that the batch can be published again (1), or
 * SL_ERR_FENCED when the producer cannot go on. Takes @p te (may be NULL: a record
 * could not be queued). */
static int txn_failed(sl_txn_t *t, rd_kafka_error_t *te, char *errstr, size_t errstr_size)
{
    /* The records' own failure says more than the transaction's ("failed to flush"). */
    char cause[400] = "";
    if (t->fails.n)
        snprintf(cause, sizeof(cause), "; %llu record(s) failed, first: %s",
                 (unsigned long long)t->fails.n, t->fails.first);
    if (te && !rd_kafka_error_txn_requires_abort(te) && !rd_kafka_error_is_retriable(te)) {
        snprintf(errstr, errstr_size, "transaction of '%s': %s%s", t->txn_id,
                 rd_kafka_error_string(te), cause);
        rd_kafka_error_destroy(te);
        return SL_ERR_FENCED;
    }
    if (te) {
        snprintf(errstr, errstr_size, "transaction of '%s' aborted: %s%s", t->txn_id,
                 rd_kafka_error_string(te), cause);
        sl_log(SL_LOG_WARN, "sink", "%s; publishing again", errstr);
        rd_kafka_error_destroy(te);
    }
    rd_kafka_error_t *ae = rd_kafka_abort_transaction(t->rk, -1);
    if (ae) {
        snprintf(errstr, errstr_size, "abort of a transaction of '%s': %s", t->txn_id,
                 rd_kafka_error_string(ae));
        rd_kafka_error_destroy(ae);
        return SL_ERR_FENCED;
    }
    t->fails.n = 0;
    return 1;
}

/* The header of a result row, "<job>/<task>/<seq>/<idx>": which job wrote it, and its
 * place among the job's rows, unique to it. */
static rd_kafka_headers_t *row_header(const sl_txn_t *t, int64_t seq, uint32_t idx)
{
    char id[384];
    size_t n = strlen(t->s->job);
    if (n > sizeof(id) - 80)
        n = sizeof(id) - 80;
    memcpy(id, t->s->job, n);
    id[n++] = '/';
    n += sl__i64_format(t->task, id + n);
    id[n++] = '/';
    n += sl__i64_format(seq, id + n);
    id[n++] = '/';
    n += sl__i64_format(idx, id + n);
    rd_kafka_headers_t *h = rd_kafka_headers_new(1);
    rd_kafka_header_add(h, "sluice-id", 9, id, (ssize_t)n);
    return h;
}

/* Starts an attempt: the offsets under way reset, the transaction begun. 0 begun, 1 try
 * again (aborted), <0 an error. */
static int begin_attempt(sl_txn_t *t, char *errstr, size_t errstr_size)
{
    rd_kafka_error_t *te = NULL;
    for (int i = 0; i < t->s->nparts; i++)
        t->pending[i] = t->confirmed[i];
    t->clog_pending = t->clog_confirmed;
    if (t->s->transactional && (te = rd_kafka_begin_transaction(t->rk)))
        return txn_failed(t, te, errstr, errstr_size);
    return 0;
}

/* Queues records in the attempt under way. 0 queued, 1 try again (aborted), <0 an error. */
static int add_rows(sl_txn_t *t, const sl_out_row_t *rows, size_t n, int copy,
                    const char *crash_point, char *errstr, size_t errstr_size)
{
    sl_sink_t *s = t->s;
    sl_err_t e = SL_OK;
    for (size_t i = 0; i < n; i++) {
        if (crash_point && i == n / 2 && sl__crash_point(crash_point))
            rd_kafka_test_fatal_error(t->rk, RD_KAFKA_RESP_ERR_PRODUCER_FENCED, "SLUICE_FENCE_AT");
        const sl_out_row_t *r = &rows[i];
        if (r->dest == SL_DEST_OUTPUT) {
            e = produce(t->rk, t->rkt, s->output->topic, RD_KAFKA_PARTITION_UA, r->key, r->klen,
                        r->val, r->vlen, copy, row_header(t, r->seq, r->idx), errstr,
                        errstr_size);
        } else {
            /* Changelog records go to the task's partition; a tombstone has no value. */
            int tomb = r->dest == SL_DEST_TOMBSTONE;
            e = produce(t->rk, t->clog, s->clog_topic, t->task, r->key, r->klen,
                        tomb ? NULL : r->val, tomb ? 0 : r->vlen, copy, NULL, errstr,
                        errstr_size);
        }
        if (e)
            break;
    }
    if (!e || !s->transactional || e == SL_ERR_FENCED)
        return e;
    return txn_failed(t, NULL, errstr, errstr_size);
}

/* The first half of an attempt: the transaction begun and every record queued. 0 queued,
 * 1 try again (aborted), <0 an error. */
static int queue_rows(sl_txn_t *t, const sl_out_row_t *rows, size_t n, int copy,
                      const char *crash_point, char *errstr, size_t errstr_size)
{
    int r = begin_attempt(t, errstr, errstr_size);
    return r ? r : add_rows(t, rows, n, copy, crash_point, errstr, errstr_size);
}

/* The second half: every record delivered, the input offsets added, and the transaction
 * committed. 0 done, 1 try again (aborted), <0 an error. */
static int deliver_rows(sl_txn_t *t, const rd_kafka_topic_partition_list_t *offsets,
                        char *errstr, size_t errstr_size)
{
    sl_sink_t *s = t->s;
    if (!s->transactional) {
        sl_err_t e = flush(t->rk, &t->fails, errstr, errstr_size);
        if (!e) {
            if (s->nparts)
                memcpy(t->confirmed, t->pending, (size_t)s->nparts * sizeof(int64_t));
            t->clog_confirmed = t->clog_pending;
        }
        return e;
    }
    rd_kafka_error_t *te = NULL;
    if (offsets && offsets->cnt && s->cgmd)
        te = rd_kafka_send_offsets_to_transaction(t->rk, offsets, s->cgmd, -1);
    if (!te)
        te = rd_kafka_commit_transaction(t->rk, -1);
    if (te)
        return txn_failed(t, te, errstr, errstr_size);
    if (s->nparts)
        memcpy(t->confirmed, t->pending, (size_t)s->nparts * sizeof(int64_t));
    t->clog_confirmed = t->clog_pending;
    t->fails.n = 0;
    return 0;
}

sl_err_t sl__sink_publish(sl_txn_t *t, const sl_out_row_t *rows, size_t n, int copy,
                          const rd_kafka_topic_partition_list_t *offsets,
                          const char *crash_point, char *errstr, size_t errstr_size)
{
    int queued = t->started; /* the first attempt's records, by sl__sink_publish_start() */
    t->started = 0;
    for (int attempt = 1;; attempt++) {
        int r = attempt == 1 && queued
                    ? 0
                    : queue_rows(t, rows, n, copy, crash_point, errstr, errstr_size);
        if (r == 0)
            r = deliver_rows(t, offsets, errstr, errstr_size);
        if (r <= 0)
            return (sl_err_t)r;
        if (attempt == 10) {
            char last[1024];
            snprintf(last, sizeof(last), "%s", errstr);
            snprintf(errstr, errstr_size, "publishing a batch failed 10 times in a row, the last "
                                          "time: %s",
                     last);
            return SL_ERR_KAFKA;
        }
    }
}

sl_err_t sl__sink_publish_start(sl_txn_t *t, const sl_out_row_t *rows, size_t n, int copy,
                                const char *crash_point, char *errstr, size_t errstr_size)
{
    t->started = 0;
    if (!t->s->transactional || n == 0)
        return SL_OK;
    int r = queue_rows(t, rows, n, copy, crash_point, errstr, errstr_size);
    if (r < 0)
        return (sl_err_t)r;
    t->started = r == 0; /* aborted (1): the finish publishes it from the start */
    return SL_OK;
}

/* An attempt that must be given up: with transactions aborted (an abort that fails
 * leaves the producer to be reset). */
static sl_err_t give_up(sl_txn_t *t, int r, char *errstr, size_t errstr_size)
{
    if (r == 1) {
        snprintf(errstr + strlen(errstr), errstr_size - strlen(errstr),
                 " (the transaction was aborted)");
        return SL_ERR_KAFKA;
    }
    return (sl_err_t)r;
}

sl_err_t sl__sink_txn_begin(sl_txn_t *t, char *errstr, size_t errstr_size)
{
    t->started = 0;
    int r = begin_attempt(t, errstr, errstr_size);
    return r ? give_up(t, r, errstr, errstr_size) : SL_OK;
}

sl_err_t sl__sink_txn_add(sl_txn_t *t, const sl_out_row_t *rows, size_t n, char *errstr,
                          size_t errstr_size)
{
    int r = add_rows(t, rows, n, 1, NULL, errstr, errstr_size);
    return r ? give_up(t, r, errstr, errstr_size) : SL_OK;
}

sl_err_t sl__sink_txn_commit(sl_txn_t *t, const rd_kafka_topic_partition_list_t *offsets,
                             char *errstr, size_t errstr_size)
{
    int r = deliver_rows(t, offsets, errstr, errstr_size);
    return r ? give_up(t, r, errstr, errstr_size) : SL_OK;
}

void sl__sink_publish_abort(sl_txn_t *t)
{
    if (!t->started)
        return;
    t->started = 0;
    char err[512];
    if (txn_failed(t, NULL, err, sizeof(err)) < 0)
        sl_log(SL_LOG_WARN, "sink", "%s", err);
}

sl_err_t sl__sink_side(sl_sink_t *s, const char *topic, const sl_rec_t *m, const char *why,
                       char *errstr, size_t errstr_size)
{
    char part[16], off[24];
    int pn = snprintf(part, sizeof(part), "%d", m->partition);
    int on = snprintf(off, sizeof(off), "%" PRId64, m->offset);
    rd_kafka_headers_t *h = rd_kafka_headers_new(5);
    rd_kafka_header_add(h, "sluice-job", -1, s->job, -1);
    rd_kafka_header_add(h, "sluice-error", -1, why, -1);
    rd_kafka_header_add(h, "sluice-source-topic", -1, m->topic, -1);
    rd_kafka_header_add(h, "sluice-source-partition", -1, part, pn);
    rd_kafka_header_add(h, "sluice-source-offset", -1, off, on);
    return produce(s->dlq, NULL, topic, RD_KAFKA_PARTITION_UA, m->key, m->klen, m->payload,
                   m->len, 1, h, errstr, errstr_size);
}

sl_err_t sl__sink_flush_side(sl_sink_t *s, char *errstr, size_t errstr_size)
{
    return s->dlq ? flush(s->dlq, &s->side_fails, errstr, errstr_size) : SL_OK;
}

/* Spark's console sink: show(numRows = 20, truncate = true): cells cut to 20 characters,
 * right-aligned, and a note when rows were left out. */
#define CONSOLE_ROWS 20
#define CONSOLE_WIDTH 20

static void cell(const sl_val_t *v, char *buf, size_t size)
{
    sl__val_format(v, buf, size);
    if (strlen(buf) > CONSOLE_WIDTH)
        snprintf(buf + CONSOLE_WIDTH - 3, size - (CONSOLE_WIDTH - 3), "...");
}

static void rule(FILE *out, const int *w, int n)
{
    for (int i = 0; i < n; i++) {
        fputc('+', out);
        for (int j = 0; j < w[i]; j++)
            fputc('-', out);
    }
    fputs("+\n", out);
}

void sl__sink_console(sl_sink_t *s, int64_t seq, const sl_val_t *rows, size_t nrows)
{
    const sl_plan_t *plan = s->plan;
    int n = sl__out_ncols(plan);
    size_t shown = nrows < CONSOLE_ROWS ? nrows : CONSOLE_ROWS;
    int *w = calloc((size_t)n, sizeof(int));
    if (!w)
        return;
    char buf[64];
    for (int i = 0; i < n; i++) {
        w[i] = (int)strlen(plan->cols[i].name);
        for (size_t r = 0; r < shown; r++) {
            cell(&rows[r * (size_t)n + (size_t)i], buf, sizeof(buf));
            if ((int)strlen(buf) > w[i])
                w[i] = (int)strlen(buf);
        }
    }
    FILE *out = s->console;
    fprintf(out,
            "-------------------------------------------\nBatch: %" PRId64
            "\n-------------------------------------------\n",
            seq);
    rule(out, w, n);
    for (int i = 0; i < n; i++)
        fprintf(out, "|%*s", w[i], plan->cols[i].name);
    fputs("|\n", out);
    rule(out, w, n);
    for (size_t r = 0; r < shown; r++) {
        for (int i = 0; i < n; i++) {
            cell(&rows[r * (size_t)n + (size_t)i], buf, sizeof(buf));
            fprintf(out, "|%*s", w[i], buf);
        }
        fputs("|\n", out);
    }
    rule(out, w, n);
    if (nrows > shown)
        fprintf(out, "only showing top %d rows\n", CONSOLE_ROWS);
    fputc('\n', out);
    fflush(out);
    free(w);
}

void sl__sink_close(sl_sink_t *s)
{
    for (int i = 0; s->txns && i < s->ntasks; i++)
        sl__sink_task_close(s, i);
    free(s->txns);
    if (s->cgmd)
        rd_kafka_consumer_group_metadata_destroy(s->cgmd);
    if (s->dlq) {
        rd_kafka_flush(s->dlq, 10000);
        rd_kafka_destroy(s->dlq);
    }
    memset(s, 0, sizeof(*s));
}
