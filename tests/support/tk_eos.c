/*
 * tk_eos.c - the exactly-once verifier (see tk_eos.h), shared by the crash, fencing and
 * broker-restart tests.
 */
#include "sluice/sluice_dev.h"
#include "tk_eos.h"

#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tk.h"

typedef struct page_input {
    int64_t *prefix_sum; /* prefix_sum[k]: bytes of the page's first k records */
    int64_t n;
} page_input_t;

static page_input_t *expected(const sl_gen_spec_t *spec, uint64_t n)
{
    page_input_t *pages = calloc(TK_EOS_PAGES, sizeof(*pages));
    int64_t *counts = calloc(TK_EOS_PAGES, sizeof(int64_t));
    sl_pageview_t pv;
    for (uint64_t i = 0; i < n; i++) {
        sl_gen_pageview(spec, i, &pv);
        counts[(int)strtol(pv.page + 3, NULL, 10)]++;
    }
    for (int p = 0; p < TK_EOS_PAGES; p++)
        pages[p].prefix_sum = calloc((size_t)counts[p] + 1, sizeof(int64_t));
    for (uint64_t i = 0; i < n; i++) {
        sl_gen_pageview(spec, i, &pv);
        page_input_t *x = &pages[(int)strtol(pv.page + 3, NULL, 10)];
        x->prefix_sum[x->n + 1] = x->prefix_sum[x->n] + pv.bytes;
        x->n++;
    }
    free(counts);
    return pages;
}

typedef struct verdict {
    page_input_t *pages;
    int64_t *last_count; /* per page, the count of its last row so far */
    uint64_t rows, not_a_prefix, not_increasing, dup_ids;
    uint64_t *ids;
    size_t nids;
} verdict_t;

static void check_row(void *opaque, const rd_kafka_message_t *m)
{
    verdict_t *v = opaque;
    json_t *row = json_loadb(m->payload, m->len, 0, NULL);
    const char *page = json_string_value(json_object_get(row, "page"));
    cr_assert(page, "a row without a page");
    int p = (int)strtol(page + 3, NULL, 10);
    int64_t count = json_integer_value(json_object_get(row, "count"));
    int64_t sum = json_integer_value(json_object_get(row, "sum_bytes"));
    page_input_t *in = &v->pages[p];
    if (count < 1 || count > in->n || in->prefix_sum[count] != sum) {
        if (v->not_a_prefix++ < 5)
            cr_log_error("page %s: row count=%lld sum=%lld is no prefix of its input", page,
                         (long long)count, (long long)sum);
    }
    if (count <= v->last_count[p]) {
        if (v->not_increasing++ < 5)
            cr_log_error("page %s: count %lld after %lld (a duplicate or a step back)", page,
                         (long long)count, (long long)v->last_count[p]);
    } else {
        v->last_count[p] = count;
    }
    char job[128];
    int task;
    int64_t seq, idx;
    cr_assert(!tk_row_id(m, job, sizeof(job), &task, &seq, &idx), "a row without a sluice-id");
    /* Unique per row of the job: (task, batch, row). */
    uint64_t id = (uint64_t)task << 48 | (uint64_t)seq << 24 | (uint64_t)idx;
    cr_assert(seq < (1 << 24) && idx < (1 << 24), "ids this test can tell apart");
    v->ids = realloc(v->ids, (v->nids + 1) * sizeof(uint64_t));
    v->ids[v->nids++] = id;
    v->rows++;
    json_decref(row);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* 1 when a partition's read_committed end (LSO) is below its log end: an open
 * transaction. */
static int open_transactions(const char *bs, const char *topic)
{
    rd_kafka_t *rk = tk_reader(bs);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, topic, 0)->offset = RD_KAFKA_OFFSET_END;
    rd_kafka_assign(rk, l);
    int64_t lso = -1;
    for (int i = 0; i < 100 && lso < 0; i++) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
        if (m && m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
            lso = m->offset;
        if (m)
            rd_kafka_message_destroy(m);
    }
    int64_t lo, hi;
    cr_assert(!rd_kafka_query_watermark_offsets(rk, topic, 0, &lo, &hi, 10000));
    rd_kafka_topic_partition_list_destroy(l);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    cr_log_info("%s: read_committed end %lld, log end %lld", topic, (long long)lso, (long long)hi);
    return lso < hi;
}

void tk_eos_verify(const char *bs, const char *out, const sl_gen_spec_t *spec, uint64_t n,
                   const char *what)
{
    verdict_t v = {.pages = expected(spec, n), .last_count = calloc(TK_EOS_PAGES, sizeof(int64_t))};
    tk_consume_all(bs, out, check_row, &v);
    qsort(v.ids, v.nids, sizeof(uint64_t), cmp_u64);
    for (size_t i = 1; i < v.nids; i++)
        v.dup_ids += v.ids[i] == v.ids[i - 1];
    uint64_t missing = 0, pages = 0;
    for (int p = 0; p < TK_EOS_PAGES; p++) {
        if (!v.pages[p].n)
            continue;
        pages++;
        if (v.last_count[p] != v.pages[p].n) {
            if (missing++ < 5)
                cr_log_error("page /p/%d: last count %lld, input %lld", p,
                             (long long)v.last_count[p], (long long)v.pages[p].n);
        }
    }
    int open = open_transactions(bs, out);
    cr_log_info("%s: %llu records in, %llu rows out for %llu pages; %llu rows no prefix, %llu "
                "duplicates or steps back, %llu repeated (task, batch, row), %llu pages short of "
                "their total, open transactions: %s",
                what, (unsigned long long)n, (unsigned long long)v.rows, (unsigned long long)pages,
                (unsigned long long)v.not_a_prefix, (unsigned long long)v.not_increasing,
                (unsigned long long)v.dup_ids, (unsigned long long)missing, open ? "yes" : "no");
    cr_assert_eq(v.not_a_prefix, 0, "%s: rows that are not a prefix aggregate", what);
    cr_assert_eq(v.not_increasing, 0, "%s: duplicated rows", what);
    cr_assert_eq(v.dup_ids, 0, "%s: a (task, batch, row) published twice", what);
    cr_assert_eq(missing, 0, "%s: pages whose last row is not their total", what);
    cr_assert(!open, "%s: a transaction was left open", what);
    for (int p = 0; p < TK_EOS_PAGES; p++)
        free(v.pages[p].prefix_sum);
    free(v.pages);
    free(v.last_count);
    free(v.ids);
}
