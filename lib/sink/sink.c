/*
 * sink.c - the Kafka and console sinks (see sink.h).
 */
#include "sink.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "crash.h"
#include "kafka.h"
#include "log.h"
#include "output.h"
#include "util.h"

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    sl_sink_t *s = opaque;
    if (m->err) {
        /* Each producer its own record: the side producer runs on the consuming thread,
         * the output producer on the commit thread. */
        sl_sink_fails_t *f = rk == s->dlq ? &s->side_fails : &s->fails;
        if (!f->n++)
            snprintf(f->first, sizeof(f->first), "%s[%d]: %s", rd_kafka_topic_name(m->rkt),
                     m->partition, rd_kafka_err2str(m->err));
        return;
    }
    if (rk == s->rk && m->partition >= 0 && m->partition < s->nparts &&
        m->offset + 1 > s->pending[m->partition])
        s->pending[m->partition] = m->offset + 1;
}

static rd_kafka_t *new_producer(sl_sink_t *s, const char *const *defaults, const char *const *fixed,
                                char *errstr, size_t errstr_size)
{
    rd_kafka_conf_t *kc =
        sl__kafka_conf(s->kafka, &s->kafka->producer, defaults, fixed, errstr, errstr_size);
    if (!kc)
        return NULL;
    rd_kafka_conf_set_dr_msg_cb(kc, dr_cb);
    rd_kafka_conf_set_opaque(kc, s);
    char err[512];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, kc, err, sizeof(err));
    if (!rk) {
        rd_kafka_conf_destroy(kc);
        snprintf(errstr, errstr_size, "cannot create the Kafka producer: %s", err);
    }
    return rk;
}

static sl_err_t open_output(sl_sink_t *s, char *errstr, size_t errstr_size)
{
    /* A topic that takes smaller requests than the producer would send them fails every
     * batch of records that are together too large: the producer is told its limit. */
    const char *txn[] = {"enable.idempotence", "true", "acks", "all", "transactional.id",
                         s->txn_id, "message.max.bytes", s->max_str, "batch.size", s->max_str,
                         NULL};
    const char *idem[] = {"enable.idempotence", "true", "acks", "all", "message.max.bytes",
                          s->max_str, "batch.size", s->max_str, NULL};
    if (!s->max_str[0])
        txn[6] = idem[4] = NULL;
    /* A batch's rows are published without copies (sl__sink_publish), and no more than
     * 50,000 are queued at a time: each costs librdkafka about 300 bytes besides, and its
     * default of 100,000 held 47 MB more with batches of 200,000 rows. */
    static const char *const defaults[] = {"queue.buffering.max.messages", "50000", NULL};
    s->rk = new_producer(s, defaults, s->transactional ? txn : idem, errstr, errstr_size);
    if (!s->rk)
        return SL_ERR_KAFKA;
    /* Learn the output topic's partitions now: otherwise the first batch waits about a
     * second for librdkafka's lazy metadata refresh (measured: a first commit of 1 s,
     * 12 ms with this). */
    s->rkt = rd_kafka_topic_new(s->rk, s->output->topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    if (s->rkt && rd_kafka_metadata(s->rk, 0, s->rkt, &md, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR)
        rd_kafka_metadata_destroy(md);
    return SL_OK;
}

/* With transactions: fences every earlier producer of the job's transactional id and
 * aborts its open transaction. */
static sl_err_t init_output(sl_sink_t *s, char *errstr, size_t errstr_size)
{
    if (!s->transactional || !s->rk)
        return SL_OK;
    rd_kafka_error_t *e = rd_kafka_init_transactions(s->rk, 60000);
    if (e) {
        snprintf(errstr, errstr_size,
                 "cannot start the transactional producer '%s': %s (a broker without "
                 "transactions needs \"output\": {\"delivery\": \"at-least-once\"})",
                 s->txn_id, rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
        return SL_ERR_KAFKA;
    }
    return SL_OK;
}

sl_err_t sl__sink_open(sl_sink_t *s, const char *job, const sl_conf_kafka_t *kafka,
                       const sl_conf_output_t *output, const sl_plan_t *plan,
                       const char *dead_letter_topic, FILE *console, char *errstr,
                       size_t errstr_size)
{
    memset(s, 0, sizeof(*s));
    s->job = job;
    s->kafka = kafka;
    s->output = output;
    s->plan = plan;
    s->console = console ? console : stdout;
    sl_err_t e;
    if (dead_letter_topic || plan->late_topic) {
        static const char *const idem[] = {"enable.idempotence", "true", "acks", "all", NULL};
        if (!(s->dlq = new_producer(s, NULL, idem, errstr, errstr_size)))
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
    if (output->sink != SL_SINK_KAFKA)
        return SL_OK;
    s->transactional = output->exactly_once;
    snprintf(s->txn_id, sizeof(s->txn_id), "sluice-%s", job);
    /* Check the topic and the timeout with an idempotent handle first: a transactional
     * one would fence a running instance before we know this one can run. */
    static const char *const idem[] = {"enable.idempotence", "true", NULL};
    rd_kafka_t *probe = new_producer(s, NULL, idem, errstr, errstr_size);
    if (!probe)
        return SL_ERR_KAFKA;
    char *t[] = {output->topic};
    int nparts = 0;
    e = sl__kafka_check_topics(probe, kafka->bootstrap, t, 1, "output.topic", &nparts, errstr,
                               errstr_size);
    if (!e) {
        char v[32] = "1000000";
        size_t sz = sizeof(v);
        rd_kafka_conf_get(rd_kafka_conf(probe), "message.max.bytes", v, &sz);
        s->max_bytes = s->producer_max = strtoll(v, NULL, 10);
        s->topic_max = sl__kafka_config_value(probe, RD_KAFKA_RESOURCE_TOPIC, output->topic,
                                              "max.message.bytes");
        if (s->topic_max >= 1000 && s->topic_max < s->max_bytes) {
            s->max_bytes = s->topic_max;
            snprintf(s->max_str, sizeof(s->max_str), "%lld", (long long)s->topic_max);
        }
    }
    if (!e && s->transactional) {
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
        if (max < 0)
            sl_log(SL_LOG_WARN, "sink",
                   "cannot read the broker's transaction.max.timeout.ms; "
                   "transaction.timeout.ms is not checked");
        else if (strtoll(ours, NULL, 10) > max) {
            snprintf(errstr, errstr_size,
                     "kafka: transaction.timeout.ms is %s, more than the broker's "
                     "transaction.max.timeout.ms (%lld); set kafka.producer "
                     "\"transaction.timeout.ms\" to at most %lld",
                     ours, (long long)max, (long long)max);
            e = SL_ERR_INVAL;
        }
    }
    rd_kafka_destroy(probe);
    if (e)
        return e;
    s->nparts = nparts;
    s->confirmed = calloc((size_t)nparts, sizeof(int64_t));
    s->pending = calloc((size_t)nparts, sizeof(int64_t));
    if (!s->confirmed || !s->pending)
        return SL_ERR_NOMEM;
    for (int i = 0; i < nparts; i++)
        s->confirmed[i] = s->pending[i] = -1;
    return open_output(s, errstr, errstr_size);
}

size_t sl__sink_record_size(const sl_sink_t *s, size_t klen, size_t vlen)
{
    /* A batch header of 61 bytes, a record's framing of at most 40, the three headers
     * with their names and varints, and room to spare. */
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

sl_err_t sl__sink_start(sl_sink_t *s, char *errstr, size_t errstr_size)
{
    return init_output(s, errstr, errstr_size);
}

sl_err_t sl__sink_reset(sl_sink_t *s, char *errstr, size_t errstr_size)
{
    if (s->rkt)
        rd_kafka_topic_destroy(s->rkt);
    s->rkt = NULL;
    if (s->rk)
        rd_kafka_destroy(s->rk);
    s->rk = NULL;
    s->fails.n = 0;
    s->started = 0; /* its transaction went with it */
    for (int i = 0; i < s->nparts; i++)
        s->pending[i] = s->confirmed[i];
    sl_err_t e = open_output(s, errstr, errstr_size);
    return e ? e : init_output(s, errstr, errstr_size);
}

/* Produces one record to @p rkt, or when it is NULL to the topic named @p topic (looked
 * up by name under librdkafka's handle lock: a side topic's rare record); @p copy:
 * librdkafka copies the value, else it must stay valid until the record is delivered
 * (keys are always copied). */
static sl_err_t produce(rd_kafka_t *rk, rd_kafka_topic_t *rkt, const char *topic, const void *key,
                        size_t klen, const void *val, size_t vlen, int copy,
                        rd_kafka_headers_t *hdrs, char *errstr, size_t errstr_size)
{
    int flags = copy ? RD_KAFKA_MSG_F_COPY : 0;
    for (;;) {
        rd_kafka_resp_err_t err =
            rkt ? rd_kafka_producev(rk, RD_KAFKA_V_RKT(rkt),
                                    RD_KAFKA_V_KEY(klen ? key : NULL, klen),
                                    RD_KAFKA_V_VALUE((void *)val, vlen), RD_KAFKA_V_MSGFLAGS(flags),
                                    RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_END)
                : rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic),
                                    RD_KAFKA_V_KEY(klen ? key : NULL, klen),
                                    RD_KAFKA_V_VALUE((void *)val, vlen), RD_KAFKA_V_MSGFLAGS(flags),
                                    RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_END);
        if (!err)
            return SL_OK;
        if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            rd_kafka_poll(rk, 100); /* wait for room: deliveries free the queue */
            continue;
        }
        rd_kafka_headers_destroy(hdrs);
        snprintf(errstr, errstr_size, "cannot produce to '%s': %s", topic, rd_kafka_err2str(err));
        if (err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE)
            sl__strlcatf(errstr, errstr_size,
                         " (a record of %zu bytes; raise the topic's max.message.bytes and "
                         "kafka.producer \"message.max.bytes\")",
                         klen + vlen);
        return err == RD_KAFKA_RESP_ERR__FATAL || err == RD_KAFKA_RESP_ERR__STATE ? SL_ERR_FENCED
                                                                                  : SL_ERR_KAFKA;
    }
}

static sl_err_t flush(sl_sink_t *s, rd_kafka_t *rk, char *errstr, size_t errstr_size)
{
    /* No time limit of our own: librdkafka fails a record after message.timeout.ms. */
    while (rd_kafka_outq_len(rk) > 0)
        rd_kafka_flush(rk, 1000);
    sl_sink_fails_t *f = rk == s->dlq ? &s->side_fails : &s->fails;
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
static int txn_failed(sl_sink_t *s, rd_kafka_error_t *te, char *errstr, size_t errstr_size)
{
    /* The records' own failure says more than the transaction's ("failed to flush"). */
    char cause[400] = "";
    if (s->fails.n)
        snprintf(cause, sizeof(cause), "; %llu record(s) failed, first: %s",
                 (unsigned long long)s->fails.n, s->fails.first);
    if (te && !rd_kafka_error_txn_requires_abort(te) && !rd_kafka_error_is_retriable(te)) {
        snprintf(errstr, errstr_size, "transaction of '%s': %s%s", s->txn_id,
                 rd_kafka_error_string(te), cause);
        rd_kafka_error_destroy(te);
        return SL_ERR_FENCED;
    }
    if (te) {
        snprintf(errstr, errstr_size, "transaction of '%s' aborted: %s%s", s->txn_id,
                 rd_kafka_error_string(te), cause);
        sl_log(SL_LOG_WARN, "sink", "%s; publishing again", errstr);
        rd_kafka_error_destroy(te);
    }
    rd_kafka_error_t *ae = rd_kafka_abort_transaction(s->rk, -1);
    if (ae) {
        snprintf(errstr, errstr_size, "abort of a transaction of '%s': %s", s->txn_id,
                 rd_kafka_error_string(ae));
        rd_kafka_error_destroy(ae);
        return SL_ERR_FENCED;
    }
    s->fails.n = 0;
    return 1;
}

/* The first half of an attempt: the transaction begun and every row queued. 0 queued,
 * 1 try again (aborted), <0 an error. */
static int queue_rows(sl_sink_t *s, const sl_out_row_t *rows, size_t n, int copy,
                      const char *crash_point, char *errstr, size_t errstr_size)
{
    rd_kafka_error_t *te = NULL;
    sl_err_t e = SL_OK;
    for (int i = 0; i < s->nparts; i++)
        s->pending[i] = s->confirmed[i];
    if (s->transactional && (te = rd_kafka_begin_transaction(s->rk)))
        return txn_failed(s, te, errstr, errstr_size);
    for (size_t i = 0; i < n; i++) {
        if (crash_point && i == n / 2 && sl__crash_point(crash_point))
            rd_kafka_test_fatal_error(s->rk, RD_KAFKA_RESP_ERR_PRODUCER_FENCED, "SLUICE_FENCE_AT");
        char sbuf[24], ibuf[24];
        ssize_t sn = (ssize_t)sl__i64_format(rows[i].seq, sbuf);
        ssize_t in = (ssize_t)sl__i64_format(rows[i].idx, ibuf);
        rd_kafka_headers_t *h = rd_kafka_headers_new(3);
        rd_kafka_header_add(h, "sluice-job", -1, s->job, -1);
        rd_kafka_header_add(h, "sluice-seq", -1, sbuf, sn);
        rd_kafka_header_add(h, "sluice-idx", -1, ibuf, in);
        if ((e = produce(s->rk, s->rkt, s->output->topic, rows[i].key, rows[i].klen, rows[i].val,
                         rows[i].vlen, copy, h, errstr, errstr_size)))
            break;
    }
    if (!e || !s->transactional || e == SL_ERR_FENCED)
        return e;
    return txn_failed(s, NULL, errstr, errstr_size);
}

/* The second half: every row delivered, and the transaction committed. 0 done, 1 try
 * again (aborted), <0 an error. */
static int deliver_rows(sl_sink_t *s, char *errstr, size_t errstr_size)
{
    if (!s->transactional) {
        sl_err_t e = flush(s, s->rk, errstr, errstr_size);
        if (!e)
            memcpy(s->confirmed, s->pending, (size_t)s->nparts * sizeof(int64_t));
        return e;
    }
    rd_kafka_error_t *te = rd_kafka_commit_transaction(s->rk, -1);
    if (te)
        return txn_failed(s, te, errstr, errstr_size);
    memcpy(s->confirmed, s->pending, (size_t)s->nparts * sizeof(int64_t));
    s->fails.n = 0;
    return 0;
}

sl_err_t sl__sink_publish(sl_sink_t *s, const sl_out_row_t *rows, size_t n, int copy,
                          const char *crash_point, char *errstr, size_t errstr_size)
{
    int queued = s->started; /* the first attempt's rows, by sl__sink_publish_start() */
    s->started = 0;
    for (int attempt = 1;; attempt++) {
        int r = attempt == 1 && queued
                    ? 0
                    : queue_rows(s, rows, n, copy, crash_point, errstr, errstr_size);
        if (r == 0)
            r = deliver_rows(s, errstr, errstr_size);
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

sl_err_t sl__sink_publish_start(sl_sink_t *s, const sl_out_row_t *rows, size_t n, int copy,
                                const char *crash_point, char *errstr, size_t errstr_size)
{
    s->started = 0;
    if (!s->transactional || n == 0)
        return SL_OK;
    int r = queue_rows(s, rows, n, copy, crash_point, errstr, errstr_size);
    if (r < 0)
        return (sl_err_t)r;
    s->started = r == 0; /* aborted (1): the finish publishes it from the start */
    return SL_OK;
}

void sl__sink_publish_abort(sl_sink_t *s)
{
    if (!s->started)
        return;
    s->started = 0;
    char err[512];
    if (txn_failed(s, NULL, err, sizeof(err)) < 0)
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
    return produce(s->dlq, NULL, topic, m->key, m->klen, m->payload, m->len, 1, h, errstr,
                   errstr_size);
}

sl_err_t sl__sink_flush_side(sl_sink_t *s, char *errstr, size_t errstr_size)
{
    return s->dlq ? flush(s, s->dlq, errstr, errstr_size) : SL_OK;
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
    if (s->rkt)
        rd_kafka_topic_destroy(s->rkt);
    if (s->rk)
        rd_kafka_destroy(s->rk);
    if (s->dlq) {
        rd_kafka_flush(s->dlq, 10000);
        rd_kafka_destroy(s->dlq);
    }
    free(s->confirmed);
    free(s->pending);
    memset(s, 0, sizeof(*s));
}
