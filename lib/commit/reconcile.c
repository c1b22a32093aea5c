/*
 * reconcile.c - the outbox of a job without a changelog, published again at a start (see
 * reconcile.h).
 */
#include "reconcile.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kafka.h"
#include "layout.h"
#include "log.h"

static int pub_key(char *buf, size_t size, int task, const char *topic, int partition)
{
    return sl__meta_key(buf, size, task, "pub/%s/%d", topic, partition);
}

void sl__reconcile_put_published(sl_store_t *st, sl_store_batch_t *wb, const sl_txn_t *t)
{
    for (int p = 0; p < t->s->nparts; p++) {
        if (t->confirmed[p] < 0)
            continue;
        char key[600];
        uint8_t v[8];
        int kl = pub_key(key, sizeof(key), t->task, t->s->output->topic, p);
        sl__be64_put(v, (uint64_t)t->confirmed[p]);
        if (kl > 0)
            sl__store_batch_put(wb, st, SL_CF_META, key, (size_t)kl, v, 8);
    }
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

typedef struct found {
    uint64_t *ids; /* seq << 32 | idx of our records seen in the output */
    size_t n, cap;
} found_t;

static int header_num(rd_kafka_headers_t *h, const char *name, int64_t *out)
{
    const void *v;
    size_t s;
    char buf[24];
    if (rd_kafka_header_get_last(h, name, &v, &s) || !v || s == 0 || s >= sizeof(buf))
        return -1;
    memcpy(buf, v, s);
    buf[s] = 0;
    char *end;
    *out = strtoll(buf, &end, 10);
    return *end ? -1 : 0;
}

/* The (seq, idx) of a row of job @p job's task @p task: from its sluice-id header
 * "<job>/<task>/<seq>/<idx>", or as sluice wrote it before tasks (sluice-job, sluice-seq,
 * sluice-idx; task 0). -1 when the row is not one of them. */
static int row_id(rd_kafka_headers_t *h, const char *job, int task, int64_t *seq, int64_t *idx)
{
    const void *v;
    size_t s;
    size_t jl = strlen(job);
    if (!rd_kafka_header_get_last(h, "sluice-id", &v, &s) && v) {
        char buf[512];
        if (s >= sizeof(buf) || s <= jl + 1 || memcmp(v, job, jl) || ((const char *)v)[jl] != '/')
            return -1;
        memcpy(buf, (const char *)v + jl + 1, s - jl - 1);
        buf[s - jl - 1] = 0;
        char *p = buf, *end;
        long long t = strtoll(p, &end, 10);
        if (*end != '/' || t != task)
            return -1;
        *seq = strtoll(end + 1, &end, 10);
        if (*end != '/')
            return -1;
        *idx = strtoll(end + 1, &end, 10);
        return *end ? -1 : 0;
    }
    if (task != 0 || rd_kafka_header_get_last(h, "sluice-job", &v, &s) || s != jl ||
        memcmp(v, job, jl))
        return -1;
    return header_num(h, "sluice-seq", seq) || header_num(h, "sluice-idx", idx) ? -1 : 0;
}

/* Reads the output topic from where our confirmed records end, to its end. */
static sl_err_t scan_output(sl_store_t *st, sl_txn_t *t, found_t *f, char *errstr,
                            size_t errstr_size)
{
    sl_sink_t *sink = t->s;
    rd_kafka_t *rk = sl__kafka_reader(sink->kafka, "reconcile", errstr, errstr_size);
    if (!rk)
        return SL_ERR_KAFKA;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(sink->nparts);
    for (int p = 0; p < sink->nparts; p++) {
        char key[600], *v = NULL, e2[256];
        size_t vl;
        int kl = pub_key(key, sizeof(key), t->task, sink->output->topic, p);
        int64_t from = RD_KAFKA_OFFSET_BEGINNING;
        if (kl > 0 &&
            sl__store_get(st, SL_CF_META, key, (size_t)kl, &v, &vl, e2, sizeof(e2)) == SL_OK &&
            vl == 8)
            from = (int64_t)sl__be64_get((const uint8_t *)v);
        free(v);
        t->confirmed[p] = from >= 0 ? from : -1;
        rd_kafka_topic_partition_list_add(l, sink->output->topic, p)->offset = from;
    }
    rd_kafka_assign(rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    sl_err_t e = SL_OK;
    int eofs = 0;
    char *at_end = calloc((size_t)sink->nparts + 1, 1);
    uint64_t read = 0;
    /* The read_committed end moves once every transaction on the topic is decided; a
     * transaction of another producer may hold it, but not for ever. */
    int64_t deadline = sl__now_ms() + 180000;
    while (eofs < sink->nparts && !e) {
        if (sl__now_ms() > deadline) {
            snprintf(errstr, errstr_size,
                     "reconcile: %s was not readable to its end within 180 s (an open "
                     "transaction of another producer?)",
                     sink->output->topic);
            e = SL_ERR_KAFKA;
            break;
        }
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 1000);
        if (!m)
            continue;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            if (m->partition < sink->nparts && !at_end[m->partition]) {
                at_end[m->partition] = 1;
                eofs++;
            }
        } else if (m->err) {
            if (m->err == RD_KAFKA_RESP_ERR__TRANSPORT ||
                m->err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
                sl_log(SL_LOG_WARN, "reconcile", "%s", rd_kafka_message_errstr(m));
            } else {
                snprintf(errstr, errstr_size, "reconcile: reading %s[%d]: %s", sink->output->topic,
                         m->partition, rd_kafka_message_errstr(m));
                e = SL_ERR_KAFKA;
            }
        } else {
            read++;
            rd_kafka_headers_t *h;
            int64_t seq, idx;
            if (!rd_kafka_message_headers(m, &h) && !row_id(h, sink->job, t->task, &seq, &idx)) {
                if ((e = SL_GROW(f->ids, f->cap, f->n + 1, 1024))) {
                    rd_kafka_message_destroy(m);
                    break;
                }
                f->ids[f->n++] = ((uint64_t)seq << 32) | (uint32_t)idx;
                if (m->partition < sink->nparts && m->offset + 1 > t->confirmed[m->partition])
                    t->confirmed[m->partition] = m->offset + 1;
            }
        }
        rd_kafka_message_destroy(m);
    }
    free(at_end);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    sl_log(SL_LOG_INFO, "reconcile", "read %" PRIu64 " record(s) of %s, %zu of this job's", read,
           sink->output->topic, f->n);
    return e;
}

sl_err_t sl__reconcile_output(sl_store_t *st, sl_txn_t *t, sl_out_row_t *rows, size_t n,
                              char *errstr, size_t errstr_size)
{
    found_t f = {0};
    sl_err_t e = SL_OK;
    if (n == 0 || (e = scan_output(st, t, &f, errstr, errstr_size)))
        goto done;
    if (f.n)
        qsort(f.ids, f.n, sizeof(uint64_t), cmp_u64);
    size_t missing = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t id = ((uint64_t)rows[i].seq << 32) | rows[i].idx;
        if (!f.n || !bsearch(&id, f.ids, f.n, sizeof(uint64_t), cmp_u64))
            rows[missing++] = rows[i]; /* in (seq, idx) order, as the outbox holds them */
    }
    sl_log(missing ? SL_LOG_WARN : SL_LOG_INFO, "reconcile",
           "%zu row(s) left in the outbox by an interrupted run: %zu already in %s, %zu "
           "published now",
           n, n - missing, t->s->output->topic, missing);
    if (missing)
        e = sl__sink_publish(t, rows, missing, 1, NULL, "mid-reconcile", errstr, errstr_size);
done:
    free(f.ids);
    return e;
}
