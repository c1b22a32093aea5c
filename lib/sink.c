/*
 * sink.c - the Kafka and console sinks (see sink.h).
 */
#include "sink.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "kafka.h"
#include "log.h"
#include "output.h"
#include "util/util.h"

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    sl_sink_t *s = opaque;
    if (!m->err)
        return;
    if (!s->failed++)
        snprintf(s->first_err, sizeof(s->first_err), "%s[%d]: %s", rd_kafka_topic_name(m->rkt),
                 m->partition, rd_kafka_err2str(m->err));
}

sl_err_t sl__sink_open(sl_sink_t *s, const sl_conf_t *conf, FILE *console, char *errstr,
                       size_t errstr_size)
{
    memset(s, 0, sizeof(*s));
    s->conf = conf;
    s->console = console ? console : stdout;
    if (conf->sink != SL_SINK_KAFKA && conf->on_bad != SL_ON_BAD_DEAD_LETTER)
        return SL_OK;
    static const char *const fixed[] = {"enable.idempotence", "true", "acks", "all", NULL};
    rd_kafka_conf_t *kc = sl__kafka_conf(conf, &conf->producer, fixed, errstr, errstr_size);
    if (!kc)
        return SL_ERR_INVAL;
    rd_kafka_conf_set_dr_msg_cb(kc, dr_cb);
    rd_kafka_conf_set_opaque(kc, s);
    char err[512];
    s->rk = rd_kafka_new(RD_KAFKA_PRODUCER, kc, err, sizeof(err));
    if (!s->rk) {
        rd_kafka_conf_destroy(kc);
        snprintf(errstr, errstr_size, "cannot create the Kafka producer: %s", err);
        return SL_ERR_KAFKA;
    }
    if (conf->sink == SL_SINK_KAFKA) {
        char *t[] = {conf->out_topic};
        sl_err_t e = sl__kafka_check_topics(s->rk, conf->bootstrap, t, 1, "output.topic", NULL,
                                            errstr, errstr_size);
        if (e)
            return e;
    }
    if (conf->on_bad == SL_ON_BAD_DEAD_LETTER) {
        char *t[] = {conf->dead_letter_topic};
        return sl__kafka_check_topics(s->rk, conf->bootstrap, t, 1,
                                      "source.on_decode_error.dead_letter_topic", NULL, errstr,
                                      errstr_size);
    }
    return SL_OK;
}

static sl_err_t produce(sl_sink_t *s, const char *topic, const void *key, size_t klen,
                        const void *val, size_t vlen, rd_kafka_headers_t *hdrs, char *errstr,
                        size_t errstr_size)
{
    for (;;) {
        rd_kafka_resp_err_t err = rd_kafka_producev(
            s->rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, klen),
            RD_KAFKA_V_VALUE((void *)val, vlen), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_END);
        if (!err)
            return SL_OK;
        if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            rd_kafka_poll(s->rk, 100); /* wait for room: deliveries free the queue */
            continue;
        }
        rd_kafka_headers_destroy(hdrs);
        snprintf(errstr, errstr_size, "cannot produce to '%s': %s", topic, rd_kafka_err2str(err));
        return SL_ERR_KAFKA;
    }
}

sl_err_t sl__sink_produce(sl_sink_t *s, const char *topic, const void *key, size_t klen,
                          const void *val, size_t vlen, int64_t seq, uint32_t idx,
                          char *errstr, size_t errstr_size)
{
    rd_kafka_headers_t *h = NULL;
    if (seq >= 0) {
        char sbuf[24], ibuf[16];
        int sn = snprintf(sbuf, sizeof(sbuf), "%" PRId64, seq);
        int in = snprintf(ibuf, sizeof(ibuf), "%" PRIu32, idx);
        h = rd_kafka_headers_new(3);
        rd_kafka_header_add(h, "sluice-job", -1, s->conf->name, -1);
        rd_kafka_header_add(h, "sluice-seq", -1, sbuf, sn);
        rd_kafka_header_add(h, "sluice-idx", -1, ibuf, in);
    }
    return produce(s, topic, key, klen, val, vlen, h, errstr, errstr_size);
}

sl_err_t sl__sink_dead_letter(sl_sink_t *s, const rd_kafka_message_t *m, const char *why,
                              char *errstr, size_t errstr_size)
{
    char part[16], off[24];
    int pn = snprintf(part, sizeof(part), "%d", m->partition);
    int on = snprintf(off, sizeof(off), "%" PRId64, m->offset);
    rd_kafka_headers_t *h = rd_kafka_headers_new(5);
    rd_kafka_header_add(h, "sluice-job", -1, s->conf->name, -1);
    rd_kafka_header_add(h, "sluice-error", -1, why, -1);
    rd_kafka_header_add(h, "sluice-source-topic", -1, rd_kafka_topic_name(m->rkt), -1);
    rd_kafka_header_add(h, "sluice-source-partition", -1, part, pn);
    rd_kafka_header_add(h, "sluice-source-offset", -1, off, on);
    return produce(s, s->conf->dead_letter_topic, m->key, m->key_len, m->payload, m->len, h,
                   errstr, errstr_size);
}

sl_err_t sl__sink_flush(sl_sink_t *s, char *errstr, size_t errstr_size)
{
    if (!s->rk)
        return SL_OK;
    /* No time limit of our own: librdkafka fails a record after message.timeout.ms. */
    while (rd_kafka_outq_len(s->rk) > 0)
        rd_kafka_flush(s->rk, 1000);
    if (s->failed) {
        snprintf(errstr, errstr_size, "%" PRIu64 " record(s) could not be published, first: %s",
                 s->failed, s->first_err);
        s->failed = 0;
        return SL_ERR_KAFKA;
    }
    return SL_OK;
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
    const sl_conf_t *c = s->conf;
    int n = sl__out_ncols(c);
    size_t shown = nrows < CONSOLE_ROWS ? nrows : CONSOLE_ROWS;
    int *w = calloc((size_t)n, sizeof(int));
    if (!w)
        return;
    char buf[64];
    for (int i = 0; i < n; i++) {
        const char *name = i < c->ngroup ? sl__conf_group_name(c, i) : c->aggs[i - c->ngroup].as;
        w[i] = (int)strlen(name);
        for (size_t r = 0; r < shown; r++) {
            cell(&rows[r * (size_t)n + (size_t)i], buf, sizeof(buf));
            if ((int)strlen(buf) > w[i])
                w[i] = (int)strlen(buf);
        }
    }
    FILE *out = s->console;
    fprintf(out, "-------------------------------------------\nBatch: %" PRId64
                 "\n-------------------------------------------\n",
            seq);
    rule(out, w, n);
    for (int i = 0; i < n; i++)
        fprintf(out, "|%*s", w[i],
                i < c->ngroup ? sl__conf_group_name(c, i) : c->aggs[i - c->ngroup].as);
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
    if (s->rk) {
        rd_kafka_flush(s->rk, 10000);
        rd_kafka_destroy(s->rk);
    }
    memset(s, 0, sizeof(*s));
}
