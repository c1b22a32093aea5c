/*
 * outbox.c - the outbox and restart reconciliation (see outbox.h).
 */
#include "outbox.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kafka.h"
#include "log.h"

/* A chunk closes past this size: a batch's rows go into a few large values instead of
 * one small value each, which RocksDB writes with far less work per row. */
#define CHUNK_BYTES (256u << 10)
/* A chunk's key is the (seq, idx) of its first row and this tag; a 12-byte key holds one
 * row (the format before chunks), which restarts still read. */
#define CHUNK_TAG 'c'

void sl__outbox_begin(sl_outbox_writer_t *w, sl_store_t *st, sl_store_batch_t *wb, int64_t seq,
                      sl_buf_t *out)
{
    *w = (sl_outbox_writer_t){.st = st, .wb = wb, .seq = seq, .out = out};
    sl__buf_reset(out);
}

static void put_chunk(sl_outbox_writer_t *w)
{
    if (w->out->len == w->chunk_start)
        return;
    uint8_t okey[13];
    sl__be64_put(okey, (uint64_t)w->seq);
    sl__be32_put(okey + 8, w->chunk_first);
    okey[12] = CHUNK_TAG;
    sl__store_batch_put(w->wb, w->st, SL_CF_OUTBOX, okey, 13, w->out->p + w->chunk_start,
                        w->out->len - w->chunk_start);
    w->chunk_start = w->out->len;
    w->chunk_first = w->n;
}

sl_err_t sl__outbox_add(sl_outbox_writer_t *w, const sl_buf_t *key, const sl_buf_t *val,
                        size_t *row_off, size_t *row_len)
{
    uint8_t hdr[20];
    size_t kl = sl__zz_encode((int64_t)key->len, hdr + 10);
    size_t rl = kl + key->len + val->len;
    size_t hl = sl__zz_encode((int64_t)rl, hdr);
    memmove(hdr + hl, hdr + 10, kl);
    if (sl__buf_append(w->out, hdr, hl + kl) || sl__buf_append(w->out, key->p, key->len) ||
        sl__buf_append(w->out, val->p, val->len))
        return SL_ERR_NOMEM;
    *row_off = w->out->len - rl;
    *row_len = rl;
    w->n++;
    if (w->out->len - w->chunk_start >= CHUNK_BYTES)
        put_chunk(w);
    return SL_OK;
}

void sl__outbox_end(sl_outbox_writer_t *w)
{
    put_chunk(w);
}

typedef struct scan {
    int (*fn)(void *opaque, int64_t seq, uint32_t idx, const uint8_t *row, size_t len);
    void *opaque;
    int corrupt;
} scan_t;

static int scan_entry(void *opaque, const char *k, size_t klen, const char *v, size_t vlen)
{
    scan_t *sc = opaque;
    const uint8_t *key = (const uint8_t *)k, *p = (const uint8_t *)v, *end = p + vlen;
    if (klen != 12 && (klen != 13 || key[12] != CHUNK_TAG)) {
        sc->corrupt = 1;
        return 1;
    }
    int64_t seq = (int64_t)sl__be64_get(key);
    uint32_t idx = sl__be32_get(key + 8);
    if (klen == 12)
        return sc->fn(sc->opaque, seq, idx, p, vlen);
    while (p < end) {
        int64_t rl;
        if (sl__zz_decode(&p, end, &rl) < 0 || rl < 0 || rl > end - p) {
            sc->corrupt = 1;
            return 1;
        }
        int r = sc->fn(sc->opaque, seq, idx++, p, (size_t)rl);
        if (r)
            return r;
        p += rl;
    }
    return 0;
}

sl_err_t sl__outbox_scan(sl_store_t *st,
                         int (*fn)(void *opaque, int64_t seq, uint32_t idx, const uint8_t *row,
                                   size_t len),
                         void *opaque, char *errstr, size_t errstr_size)
{
    scan_t sc = {.fn = fn, .opaque = opaque};
    sl_err_t e = sl__store_scan(st, SL_CF_OUTBOX, NULL, 0, scan_entry, &sc, errstr, errstr_size);
    if (!e && sc.corrupt) {
        snprintf(errstr, errstr_size, "state: a corrupt outbox entry");
        e = SL_ERR_STATE;
    }
    return e;
}

int sl__outbox_row(const uint8_t *p, size_t len, sl_out_row_t *row)
{
    const uint8_t *end = p + len;
    int64_t kl;
    if (sl__zz_decode(&p, end, &kl) < 0 || kl < 0 || kl > end - p)
        return -1;
    row->key = p;
    row->klen = (size_t)kl;
    row->val = p + kl;
    row->vlen = (size_t)(end - p - kl);
    return 0;
}

sl_err_t sl__outbox_delete(sl_store_t *st, sl_store_batch_t *wb, int64_t from_seq, int64_t to_seq,
                           char *errstr, size_t errstr_size)
{
    uint8_t from[12] = {0}, to[12] = {0};
    sl__be64_put(from, (uint64_t)from_seq);
    sl__be64_put(to, (uint64_t)to_seq);
    sl__store_batch_delete_range(wb, st, SL_CF_OUTBOX, from, 12, to, 12);
    return sl__store_write(st, wb, 0, errstr, errstr_size);
}

static int pub_key(char *buf, size_t size, const char *topic, int partition)
{
    return snprintf(buf, size, "pub/%s/%d", topic, partition);
}

void sl__outbox_put_published(sl_store_t *st, sl_store_batch_t *wb, const sl_sink_t *sink)
{
    for (int p = 0; p < sink->nparts; p++) {
        if (sink->confirmed[p] < 0)
            continue;
        char key[512];
        uint8_t v[8];
        int kl = pub_key(key, sizeof(key), sink->output->topic, p);
        sl__be64_put(v, (uint64_t)sink->confirmed[p]);
        sl__store_batch_put(wb, st, SL_CF_META, key, (size_t)kl, v, 8);
    }
}

/* ---- reconciliation ---- */

typedef struct pending_rows {
    sl_buf_t data;      /* copies of the outbox values */
    sl_out_row_t *rows; /* pointers into data, set once it stops growing */
    size_t *offs;       /* where each row's value starts in data */
    size_t *lens;
    size_t n, cap;
    sl_err_t err;
} pending_rows_t;

static int collect(void *opaque, int64_t seq, uint32_t idx, const uint8_t *row, size_t len)
{
    pending_rows_t *pr = opaque;
    const sl_grow_t arrays[] = {{&pr->rows, sizeof(*pr->rows)},
                                {&pr->offs, sizeof(*pr->offs)},
                                {&pr->lens, sizeof(*pr->lens)}};
    if ((pr->err = sl__grow(&pr->cap, pr->n + 1, 256, arrays, 3)))
        return 1;
    pr->rows[pr->n].seq = seq;
    pr->rows[pr->n].idx = idx;
    pr->offs[pr->n] = pr->data.len;
    pr->lens[pr->n] = len;
    if (sl__buf_append(&pr->data, row, len)) {
        pr->err = SL_ERR_NOMEM;
        return 1;
    }
    pr->n++;
    return 0;
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

/* Reads the output topic from where our confirmed records end, to its end. */
static sl_err_t scan_output(sl_store_t *st, sl_sink_t *sink, found_t *f, char *errstr,
                            size_t errstr_size)
{
    /* fetch.wait.max.ms: the end of each partition is known from an empty fetch, which
     * otherwise waits 500 ms. */
    static const char *const fixed[] = {"isolation.level",
                                        "read_committed",
                                        "enable.partition.eof",
                                        "true",
                                        "enable.auto.commit",
                                        "false",
                                        "group.id",
                                        "sluice-reconcile",
                                        "fetch.wait.max.ms",
                                        "10",
                                        NULL};
    rd_kafka_conf_t *kc = sl__kafka_conf(sink->kafka, &sink->kafka->consumer, NULL, fixed, errstr,
                                        errstr_size);
    if (!kc)
        return SL_ERR_INVAL;
    char err[512];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, kc, err, sizeof(err));
    if (!rk) {
        rd_kafka_conf_destroy(kc);
        snprintf(errstr, errstr_size, "reconcile: cannot create a consumer: %s", err);
        return SL_ERR_KAFKA;
    }
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(sink->nparts);
    for (int p = 0; p < sink->nparts; p++) {
        char key[512], *v = NULL, e2[256];
        size_t vl;
        int kl = pub_key(key, sizeof(key), sink->output->topic, p);
        int64_t from = RD_KAFKA_OFFSET_BEGINNING;
        if (sl__store_get(st, SL_CF_META, key, (size_t)kl, &v, &vl, e2, sizeof(e2)) == SL_OK &&
            vl == 8)
            from = (int64_t)sl__be64_get((const uint8_t *)v);
        free(v);
        sink->confirmed[p] = from >= 0 ? from : -1;
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
            const void *job;
            size_t js;
            int64_t seq, idx;
            if (!rd_kafka_message_headers(m, &h) &&
                !rd_kafka_header_get_last(h, "sluice-job", &job, &js) && js == strlen(sink->job) &&
                !memcmp(job, sink->job, js) && !header_num(h, "sluice-seq", &seq) &&
                !header_num(h, "sluice-idx", &idx)) {
                if ((e = SL_GROW(f->ids, f->cap, f->n + 1, 1024))) {
                    rd_kafka_message_destroy(m);
                    break;
                }
                f->ids[f->n++] = ((uint64_t)seq << 32) | (uint32_t)idx;
                if (m->partition < sink->nparts && m->offset + 1 > sink->confirmed[m->partition])
                    sink->confirmed[m->partition] = m->offset + 1;
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

sl_err_t sl__outbox_reconcile(sl_store_t *st, sl_store_batch_t *wb, sl_sink_t *sink, char *errstr,
                              size_t errstr_size)
{
    pending_rows_t pr = {0};
    found_t f = {0};
    sl__buf_init(&pr.data);
    sl_err_t e = sl__outbox_scan(st, collect, &pr, errstr, errstr_size);
    if (!e && pr.err) {
        e = pr.err;
        snprintf(errstr, errstr_size, "reconcile: the outbox cannot be read: %s", sl_err2str(e));
    }
    if (e || pr.n == 0)
        goto done;
    if ((e = scan_output(st, sink, &f, errstr, errstr_size)))
        goto done;
    if (f.n)
        qsort(f.ids, f.n, sizeof(uint64_t), cmp_u64);
    size_t missing = 0;
    for (size_t i = 0; i < pr.n; i++) {
        sl_out_row_t r = pr.rows[i];
        if (sl__outbox_row(pr.data.p + pr.offs[i], pr.lens[i], &r) < 0) {
            snprintf(errstr, errstr_size, "reconcile: a corrupt outbox entry (batch %" PRId64 ")",
                     r.seq);
            e = SL_ERR_STATE;
            goto done;
        }
        uint64_t id = ((uint64_t)r.seq << 32) | r.idx;
        if (!f.n || !bsearch(&id, f.ids, f.n, sizeof(uint64_t), cmp_u64))
            pr.rows[missing++] = r; /* in (seq, idx) order, as the scan returned them */
    }
    sl_log(missing ? SL_LOG_WARN : SL_LOG_INFO, "reconcile",
           "%zu row(s) left in the outbox by an interrupted run: %zu already in %s, %zu "
           "published now",
           pr.n, pr.n - missing, sink->output->topic, missing);
    if (missing &&
        (e = sl__sink_publish(sink, pr.rows, missing, 1, "mid-reconcile", errstr, errstr_size)))
        goto done;
    e = sl__outbox_delete(st, wb, 0, INT64_MAX, errstr, errstr_size);
done:
    sl__buf_fini(&pr.data);
    free(pr.rows);
    free(pr.offs);
    free(pr.lens);
    free(f.ids);
    return e;
}
