/*
 * 0010-formats.c - the other formats end to end: JSON records in (declared field types,
 * a missing field is null), Avro rows out with the schema derived from the query. The
 * output is decoded with that schema and compared with totals recomputed here.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/codec.h"
#include "conf/conf.h"
#include "sink/output.h"
#include "sluice/sluice.h"
#include "tk.h"

#define N 3000
#define KEYS 7

typedef struct seen {
    sl_codec_t *codec;
    int64_t count[KEYS], sum[KEYS], nonnull[KEYS];
    double avg[KEYS];
    int bad;
} seen_t;

static void on_row(void *opaque, const rd_kafka_message_t *m)
{
    seen_t *s = opaque;
    sl_val_t row[8];
    char err[256];
    if (sl__codec_decode(s->codec, m->payload, m->len, row, err, sizeof(err)) != SL_OK) {
        if (!s->bad++)
            cr_log_error("an output row does not decode with the derived schema: %s", err);
        return;
    }
    int n;
    const sl_field_t *f = sl__codec_fields(s->codec, &n);
    cr_assert_eq(n, 5, "derived schema: shop, rows, count_qty, sum_qty, avg_price");
    cr_assert_str_eq(f[0].name, "shop");
    cr_assert(row[0].t == SL_T_STRING && row[0].n == 2);
    int k = row[0].u.s[1] - '0';
    s->count[k] = row[1].u.i;
    s->nonnull[k] = row[2].u.i;
    s->sum[k] = row[3].t == SL_T_NULL ? 0 : row[3].u.i;
    s->avg[k] = row[4].u.d;
}

Test(formats, json_in_avro_out, .timeout = 300)
{
    sl_log_configure(SL_LOG_WARN, 0, NULL);
    const char *bs = tk_bootstrap();
    char in[128], out[128], err[4096];
    tk_in_out_topics(bs, "fmt", 2, 1, in, out, sizeof(in));

    /* JSON records; every fifth has no qty (null), prices are doubles. */
    rd_kafka_conf_t *pc = rd_kafka_conf_new();
    rd_kafka_conf_set(pc, "bootstrap.servers", bs, NULL, 0);
    rd_kafka_t *p = rd_kafka_new(RD_KAFKA_PRODUCER, pc, err, sizeof(err));
    cr_assert(p, "%s", err);
    int64_t count[KEYS] = {0}, sum[KEYS] = {0}, nonnull[KEYS] = {0};
    double price_sum[KEYS] = {0};
    for (int i = 0; i < N; i++) {
        int k = (i * 13) % KEYS;
        double price = (double)(i % 50) + 0.25;
        char rec[200];
        if (i % 5 == 0)
            snprintf(rec, sizeof(rec), "{\"shop\": \"s%d\", \"price\": %.2f}", k, price);
        else
            snprintf(rec, sizeof(rec), "{\"shop\": \"s%d\", \"qty\": %d, \"price\": %.2f}", k,
                     i % 9, price);
        count[k]++;
        price_sum[k] += price;
        if (i % 5) {
            nonnull[k]++;
            sum[k] += i % 9;
        }
        cr_assert(!rd_kafka_producev(p, RD_KAFKA_V_TOPIC(in), RD_KAFKA_V_VALUE(rec, strlen(rec)),
                                     RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END));
    }
    cr_assert(!rd_kafka_flush(p, 30000));
    rd_kafka_destroy(p);

    char *dir = tk_tmpdir("sluice-it-fmt");
    char json[2048];
    snprintf(json, sizeof(json),
             "{\"name\": \"%s\", \"kafka\": {\"bootstrap.servers\": \"%s\"},"
             " \"source\": {\"topics\": \"%s\", \"format\": \"json\","
             "   \"fields\": {\"shop\": \"string\", \"qty\": \"long\", \"price\": \"double\"}},"
             " \"query\": {\"group_by\": \"shop\", \"aggregates\": ["
             "   {\"fn\": \"count\", \"as\": \"rows\"}, {\"fn\": \"count\", \"field\": \"qty\"},"
             "   {\"fn\": \"sum\", \"field\": \"qty\"}, {\"fn\": \"avg\", \"field\": \"price\"}]},"
             " \"trigger\": {\"interval\": \"1s\", \"available_now\": true},"
             " \"output\": {\"sink\": \"kafka\", \"topic\": \"%s\", \"format\": \"avro\"},"
             " \"state\": {\"dir\": \"state\"}}",
             out, bs, in, out);
    sl_job_t *job;
    cr_assert_eq(sl_job_new_from_json(json, dir, "formats", &job, err, sizeof(err)), SL_OK, "%s",
                 err);
    cr_assert_eq(sl_job_run(job, err, sizeof(err)), SL_OK, "%s", err);
    sl_job_destroy(job);

    /* The schema the output was written with, derived from the same job. */
    sl_conf_t *conf;
    cr_assert_eq(sl__conf_parse(json, dir, "formats", &conf, err, sizeof(err)), SL_OK, "%s", err);
    char *schema = sl__out_avro_schema(&conf->plan, conf->name, 0);
    cr_log_info("derived output schema: %s", schema);
    /* The CLI prints the same schema for users of the output topic. */
    tk_write_file(dir, "job.json", json);
    char cmd[1200], printed[8192];
    snprintf(cmd, sizeof(cmd), "'%s' validate --emit-schema '%s/job.json'", tk_sluice_bin(), dir);
    FILE *pv = popen(cmd, "r");
    size_t pn = fread(printed, 1, sizeof(printed) - 1, pv);
    printed[pn] = 0;
    cr_assert_eq(pclose(pv), 0, "validate --emit-schema failed");
    json_t *a = json_loads(printed, 0, NULL), *b = json_loads(schema, 0, NULL);
    cr_assert(a && json_equal(a, b), "validate --emit-schema printed another schema:\n%s", printed);
    json_decref(a);
    json_decref(b);
    snprintf(cmd, sizeof(cmd), "'%s' validate --emit-schema=key '%s/job.json'", tk_sluice_bin(),
             dir);
    pv = popen(cmd, "r");
    pn = fread(printed, 1, sizeof(printed) - 1, pv);
    printed[pn] = 0;
    pclose(pv);
    a = json_loads(printed, 0, NULL);
    cr_assert(a && json_array_size(json_object_get(a, "fields")) == 1 &&
                  !strcmp(json_string_value(json_object_get(
                              json_array_get(json_object_get(a, "fields"), 0), "name")),
                          "shop"),
              "the key schema holds the group field only:\n%s", printed);
    json_decref(a);
    seen_t s = {0};
    cr_assert_eq(sl__codec_avro_new(schema, NULL, 0, &s.codec, err, sizeof(err)), SL_OK, "%s", err);
    for (int i = 0; i < 5; i++)
        cr_assert_eq(sl__codec_use(s.codec, i, err, sizeof(err)), SL_OK, "%s", err);
    cr_assert_eq(sl__codec_prepare(s.codec, err, sizeof(err)), SL_OK, "%s", err);
    uint64_t rows = tk_consume_all(bs, out, on_row, &s);
    cr_assert_eq(s.bad, 0);
    for (int k = 0; k < KEYS; k++) {
        cr_assert_eq(s.count[k], count[k], "shop s%d rows", k);
        cr_assert_eq(s.nonnull[k], nonnull[k], "shop s%d count(qty) skips nulls", k);
        cr_assert_eq(s.sum[k], sum[k], "shop s%d sum(qty)", k);
        cr_assert_eq(s.avg[k], price_sum[k] / (double)count[k], "shop s%d avg(price)", k);
    }
    cr_log_info("%d JSON records in, %llu Avro rows out, %d shops exact", N,
                (unsigned long long)rows, KEYS);
    sl__codec_destroy(s.codec);
    free(schema);
    sl__conf_destroy(conf);
    tk_delete_topic(bs, in);
    tk_delete_topic(bs, out);
    tk_rmrf(dir);
    free(dir);
}
