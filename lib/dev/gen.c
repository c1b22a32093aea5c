/*
 * gen.c - the page-view generator of the demo, the tests and the benchmarks. Record i of
 * a stream is a pure function of (spec, i), so a test can recompute the exact expected
 * aggregates of any prefix without storing what it produced.
 */
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "embedded.h"
#include "sluice/sluice.h"
#include "sluice/sluice_dev.h"
#include "util.h"

static uint64_t mix(uint64_t x)
{
    /* splitmix64's finaliser: a cheap, well-spread bijection */
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

SL_API void sl_gen_pageview(const sl_gen_spec_t *spec, uint64_t i, sl_pageview_t *out)
{
    uint64_t r = mix(spec->seed * 0x100000001b3ULL + i);
    uint32_t pages = spec->pages ? spec->pages : 1;
    uint32_t users = spec->users ? spec->users : 1;
    /* Skewed pages: half the views go to the first tenth of the pages. */
    uint64_t pr = mix(r);
    uint32_t page = (pr & 1) ? (uint32_t)((pr >> 1) % (pages / 10 ? pages / 10 : 1))
                             : (uint32_t)((pr >> 1) % pages);
    snprintf(out->user_id, sizeof(out->user_id), "u%" PRIu32, (uint32_t)(r % users));
    snprintf(out->page, sizeof(out->page), "/p/%" PRIu32, page);
    out->ts_ms = spec->start_ms + (int64_t)i;
    out->bytes = (int64_t)((r >> 20) % 100000);
    out->latency_ms = (int32_t)((r >> 40) % 2000) - 10; /* a few negatives: clock skew */
}

SL_API const char *sl_gen_pageview_schema(void)
{
    return sl__schema_pageview;
}

SL_API size_t sl_gen_pageview_avro(const sl_pageview_t *pv, uint8_t *buf, size_t size)
{
    size_t ul = strlen(pv->user_id), pl = strlen(pv->page);
    if (size < ul + pl + 4 * 10)
        return 0;
    size_t n = 0;
    n += sl__zz_encode((int64_t)ul, buf + n);
    memcpy(buf + n, pv->user_id, ul);
    n += ul;
    n += sl__zz_encode((int64_t)pl, buf + n);
    memcpy(buf + n, pv->page, pl);
    n += pl;
    n += sl__zz_encode(pv->ts_ms, buf + n);
    n += sl__zz_encode(pv->bytes, buf + n);
    n += sl__zz_encode(pv->latency_ms, buf + n);
    return n;
}

typedef struct dr_state {
    uint64_t failed;
    rd_kafka_resp_err_t first;
} dr_state_t;

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    dr_state_t *st = opaque;
    if (m->err && !st->failed++)
        st->first = m->err;
}

SL_API sl_err_t sl_gen_produce(const char *bootstrap, const char *const *conf, const char *topic,
                               int partitions, const sl_gen_spec_t *spec, uint64_t first,
                               uint64_t count, char *errstr, size_t errstr_size)
{
    char err[512];
    dr_state_t st = {0, 0};
    rd_kafka_conf_t *kc = rd_kafka_conf_new();
    if (rd_kafka_conf_set(kc, "bootstrap.servers", bootstrap, err, sizeof(err)) ||
        rd_kafka_conf_set(kc, "linger.ms", "20", err, sizeof(err)) ||
        rd_kafka_conf_set(kc, "batch.num.messages", "10000", err, sizeof(err)) ||
        rd_kafka_conf_set(kc, "enable.idempotence", "true", err, sizeof(err)))
        goto fail_conf;
    for (const char *const *c = conf; c && *c; c++) {
        char k[256];
        const char *eq = strchr(*c, '=');
        if (!eq || (size_t)(eq - *c) >= sizeof(k)) {
            snprintf(err, sizeof(err), "'%s' is not name=value", *c);
            goto fail_conf;
        }
        memcpy(k, *c, (size_t)(eq - *c));
        k[eq - *c] = 0;
        if (rd_kafka_conf_set(kc, k, eq + 1, err, sizeof(err)))
            goto fail_conf;
    }
    rd_kafka_conf_set_dr_msg_cb(kc, dr_cb);
    rd_kafka_conf_set_opaque(kc, &st);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, kc, err, sizeof(err));
    if (!rk)
        goto fail_conf;
    sl_err_t e = SL_OK;
    for (uint64_t i = first; i < first + count && !e; i++) {
        sl_pageview_t pv;
        uint8_t buf[128];
        sl_gen_pageview(spec, i, &pv);
        size_t n = sl_gen_pageview_avro(&pv, buf, sizeof(buf));
        uint64_t part = spec->by_page ? (uint64_t)strtoull(pv.page + 3, NULL, 10) : i;
        for (;;) {
            rd_kafka_resp_err_t perr = rd_kafka_producev(
                rk, RD_KAFKA_V_TOPIC(topic),
                RD_KAFKA_V_PARTITION((int32_t)(part % (uint64_t)partitions)),
                RD_KAFKA_V_KEY(pv.user_id, strlen(pv.user_id)), RD_KAFKA_V_VALUE(buf, n),
                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
            if (perr == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                rd_kafka_poll(rk, 50);
                continue;
            }
            if (perr) {
                snprintf(errstr, errstr_size, "produce to '%s': %s", topic, rd_kafka_err2str(perr));
                e = SL_ERR_KAFKA;
            }
            break;
        }
        if ((i & 1023) == 0)
            rd_kafka_poll(rk, 0);
    }
    while (rd_kafka_outq_len(rk) > 0 && rd_kafka_flush(rk, 60000) == RD_KAFKA_RESP_ERR_NO_ERROR)
        ;
    if (!e && rd_kafka_outq_len(rk) > 0) {
        snprintf(errstr, errstr_size, "produce to '%s': %d record(s) not acknowledged in time",
                 topic, rd_kafka_outq_len(rk));
        e = SL_ERR_KAFKA;
    }
    if (!e && st.failed) {
        snprintf(errstr, errstr_size, "produce to '%s': %" PRIu64 " record(s) failed, first: %s",
                 topic, st.failed, rd_kafka_err2str(st.first));
        e = SL_ERR_KAFKA;
    }
    rd_kafka_destroy(rk);
    return e;
fail_conf:
    rd_kafka_conf_destroy(kc);
    snprintf(errstr, errstr_size, "producer: %s", err);
    return SL_ERR_INVAL;
}
