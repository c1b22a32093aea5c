/*
 * test_avro.c - the Avro decoder: values, schema resolution, and records that are
 * truncated or corrupt, which must give a clear error and never read out of bounds (the
 * sanitizer build checks the latter).
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "codec/codec.h"
#include "sluice/sluice_dev.h"
#include "util.h"

static sl_codec_t *make(const char *reader, const char *writer, const sl_confluent_t *confluent,
                        const char *const *use)
{
    char err[512] = "";
    sl_codec_t *c = NULL;
    cr_assert_eq(sl__codec_avro_new(reader, writer, confluent, &c, err, sizeof(err)), SL_OK,
                 "codec: %s", err);
    for (const char *const *u = use; *u; u++) {
        int slot = sl__codec_field_slot(c, *u, strlen(*u));
        cr_assert(slot >= 0, "no field %s", *u);
        cr_assert_eq(sl__codec_use(c, slot, err, sizeof(err)), SL_OK, "%s", err);
    }
    cr_assert_eq(sl__codec_prepare(c, err, sizeof(err)), SL_OK, "prepare: %s", err);
    return c;
}

static int slot(sl_codec_t *c, const char *name)
{
    return sl__codec_field_slot(c, name, strlen(name));
}

static const char *const PV_FIELDS[] = {"user_id", "page", "ts_ms", "bytes", "latency_ms", NULL};

Test(avro, decodes_generated_pageviews)
{
    sl_codec_t *c = make(sl_gen_pageview_schema(), NULL, 0, PV_FIELDS);
    sl_gen_spec_t spec = {.seed = 7, .pages = 100, .users = 10, .start_ms = 1000};
    for (uint64_t i = 0; i < 1000; i++) {
        sl_pageview_t pv;
        uint8_t buf[128];
        sl_gen_pageview(&spec, i, &pv);
        size_t n = sl_gen_pageview_avro(&pv, buf, sizeof(buf));
        sl_val_t row[5];
        char err[256];
        cr_assert_eq(sl__codec_decode(c, buf, n, row, err, sizeof(err)), SL_OK, "%s", err);
        sl_val_t *u = &row[slot(c, "user_id")], *p = &row[slot(c, "page")];
        cr_assert_eq(u->t, SL_T_STRING);
        cr_assert(u->n == strlen(pv.user_id) && !memcmp(u->u.s, pv.user_id, u->n));
        cr_assert(p->n == strlen(pv.page) && !memcmp(p->u.s, pv.page, p->n));
        cr_assert_eq(row[slot(c, "ts_ms")].u.i, pv.ts_ms);
        cr_assert_eq(row[slot(c, "bytes")].u.i, pv.bytes);
        cr_assert_eq(row[slot(c, "latency_ms")].u.i, pv.latency_ms);
    }
    sl__codec_destroy(c);
}

Test(avro, every_truncation_is_a_clear_error)
{
    sl_codec_t *c = make(sl_gen_pageview_schema(), NULL, 0, PV_FIELDS);
    sl_pageview_t pv;
    sl_gen_spec_t spec = {.seed = 1, .pages = 10, .users = 10};
    sl_gen_pageview(&spec, 3, &pv);
    uint8_t buf[128];
    size_t n = sl_gen_pageview_avro(&pv, buf, sizeof(buf));
    for (size_t len = 0; len < n; len++) {
        /* A heap copy of exactly len bytes, so the sanitizer sees any read past it. */
        uint8_t *cut = malloc(len ? len : 1);
        memcpy(cut, buf, len);
        sl_val_t row[5];
        char err[256] = "";
        cr_assert_eq(sl__codec_decode(c, cut, len, row, err, sizeof(err)), SL_ERR_DECODE,
                     "a record cut to %zu of %zu bytes decoded", len, n);
        cr_assert(strstr(err, "at byte") && strstr(err, "field '"), "unclear error: %s", err);
        free(cut);
    }
    sl__codec_destroy(c);
}

Test(avro, lengths_larger_than_the_record_are_rejected_before_use)
{
    sl_codec_t *c = make(sl_gen_pageview_schema(), NULL, 0, PV_FIELDS);
    uint8_t buf[16];
    size_t n = sl__zz_encode(1LL << 40, buf); /* user_id claims a terabyte */
    memcpy(buf + n, "abc", 3);
    sl_val_t row[5];
    char err[256] = "";
    cr_assert_eq(sl__codec_decode(c, buf, n + 3, row, err, sizeof(err)), SL_ERR_DECODE);
    cr_assert(strstr(err, "exceeds the 3 bytes left") && strstr(err, "user_id"), "got: %s", err);

    n = sl__zz_encode(-5, buf); /* negative length */
    cr_assert_eq(sl__codec_decode(c, buf, n, row, err, sizeof(err)), SL_ERR_DECODE);
    cr_assert(strstr(err, "negative length"), "got: %s", err);

    uint8_t bad[12];
    memset(bad, 0xff, sizeof(bad)); /* a varint that never ends */
    cr_assert_eq(sl__codec_decode(c, bad, sizeof(bad), row, err, sizeof(err)), SL_ERR_DECODE);
    sl__codec_destroy(c);
}

Test(avro, trailing_bytes_mean_the_wrong_schema)
{
    sl_codec_t *c = make(sl_gen_pageview_schema(), NULL, 0, PV_FIELDS);
    sl_pageview_t pv;
    sl_gen_spec_t spec = {.seed = 1, .pages = 10, .users = 10};
    sl_gen_pageview(&spec, 0, &pv);
    uint8_t buf[128];
    size_t n = sl_gen_pageview_avro(&pv, buf, sizeof(buf));
    buf[n++] = 0;
    sl_val_t row[5];
    char err[256] = "";
    cr_assert_eq(sl__codec_decode(c, buf, n, row, err, sizeof(err)), SL_ERR_DECODE);
    cr_assert(strstr(err, "1 bytes left after the record"), "got: %s", err);
    sl__codec_destroy(c);
}

static const char *const ARR_SCHEMA =
    "{\"type\":\"record\",\"name\":\"R\",\"fields\":["
    "{\"name\":\"tags\",\"type\":{\"type\":\"array\",\"items\":\"null\"}},"
    "{\"name\":\"m\",\"type\":{\"type\":\"map\",\"values\":\"long\"}},"
    "{\"name\":\"k\",\"type\":[\"null\",\"string\"]},"
    "{\"name\":\"e\",\"type\":{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"A\",\"B\"]}}]}";

Test(avro, arrays_maps_unions_enums)
{
    const char *const use[] = {"k", "e", NULL};
    sl_codec_t *c = make(ARR_SCHEMA, NULL, 0, use);
    /* tags: block of 2 nulls, end; m: block of -1 items of 3 bytes: "a" -> 5, end;
     * k: branch 1 "hi"; e: B */
    uint8_t ok[] = {4, 0, 1, 6, 2, 'a', 10, 0, 2, 4, 'h', 'i', 2};
    sl_val_t row[4];
    char err[256] = "";
    cr_assert_eq(sl__codec_decode(c, ok, sizeof(ok), row, err, sizeof(err)), SL_OK, "%s", err);
    sl_val_t *k = &row[slot(c, "k")], *e = &row[slot(c, "e")];
    cr_assert(k->t == SL_T_STRING && k->n == 2 && !memcmp(k->u.s, "hi", 2));
    cr_assert(e->t == SL_T_STRING && e->n == 1 && e->u.s[0] == 'B');

    uint8_t null_branch[] = {0, 0, 0, 0};
    cr_assert_eq(sl__codec_decode(c, null_branch, sizeof(null_branch), row, err, sizeof(err)),
                 SL_OK, "%s", err);
    cr_assert_eq(row[slot(c, "k")].t, SL_T_NULL);

    /* 2^50 nulls take 0 bytes each: valid Avro, skipped at once. */
    uint8_t huge_block[16];
    size_t n = sl__zz_encode(1LL << 50, huge_block);
    memcpy(huge_block + n, (uint8_t[]){0, 0, 2, 2, 'x', 0}, 6);
    cr_assert_eq(sl__codec_decode(c, huge_block, n + 6, row, err, sizeof(err)), SL_OK, "%s", err);
    cr_assert(row[slot(c, "k")].t == SL_T_STRING && row[slot(c, "k")].n == 1);
    /* 2^50 longs cannot fit in the bytes left. */
    uint8_t huge_map[16] = {0};
    n = sl__zz_encode(1LL << 50, huge_map + 1);
    cr_assert_eq(sl__codec_decode(c, huge_map, n + 4, row, err, sizeof(err)), SL_ERR_DECODE);
    cr_assert(strstr(err, "items exceeds"), "got: %s", err);

    uint8_t bad_branch[] = {0, 0, 4};
    cr_assert_eq(sl__codec_decode(c, bad_branch, sizeof(bad_branch), row, err, sizeof(err)),
                 SL_ERR_DECODE);
    cr_assert(strstr(err, "union branch 2"), "got: %s", err);

    uint8_t bad_enum[] = {0, 0, 0, 6};
    cr_assert_eq(sl__codec_decode(c, bad_enum, sizeof(bad_enum), row, err, sizeof(err)),
                 SL_ERR_DECODE);
    cr_assert(strstr(err, "enum index 3"), "got: %s", err);
    sl__codec_destroy(c);
}

/* Items that take no bytes, in a record of @p len bytes that is all block headers, each
 * claiming as many items as bytes are left: each block used to loop over its count, so
 * the work grew with the square of the size (100 KB took 15.5 s, 1 MB 25 minutes, with
 * SIGTERM unanswered). The time-out catches a return of that. */
Test(avro, blocks_of_empty_items_take_time_linear_in_the_record, .timeout = 60)
{
    const char *items[] = {"\"null\"", "{\"type\":\"fixed\",\"name\":\"Z\",\"size\":0}",
                           "{\"type\":\"record\",\"name\":\"E\",\"fields\":[{\"name\":"
                           "\"n\",\"type\":\"null\"}]}"};
    const size_t len = 1 << 20;
    uint8_t *rec = malloc(len + 16);
    cr_assert_not_null(rec);
    for (size_t i = 0; i < SL_ARRAY_LEN(items); i++) {
        char schema[512];
        snprintf(schema, sizeof(schema),
                 "{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"a\","
                 "\"type\":{\"type\":\"array\",\"items\":%s}},{\"name\":\"x\",\"type\":"
                 "\"long\"}]}",
                 items[i]);
        const char *const use[] = {"x", NULL};
        sl_codec_t *c = make(schema, NULL, 0, use);
        size_t n = 0;
        while (n < len) {
            uint8_t v[10];
            size_t vn = sl__zz_encode((int64_t)(len - n), v);
            if (n % 2) { /* a negative count is followed by the block's byte size, 0 */
                vn = sl__zz_encode(-(int64_t)(len - n), v);
                v[vn++] = 0;
            }
            memcpy(rec + n, v, vn);
            n += vn;
        }
        rec[n++] = 0;    /* the array's end */
        rec[n++] = 0x54; /* x = 42 */
        sl_val_t row[2];
        char err[256] = "";
        cr_assert_eq(sl__codec_decode(c, rec, n, row, err, sizeof(err)), SL_OK, "%s: %s",
                     items[i], err);
        cr_assert_eq(row[slot(c, "x")].u.i, 42);
        sl__codec_destroy(c);
    }
    free(rec);
}

Test(avro, invalid_schemas_are_refused)
{
    /* Avro C 1.11 parses each of these; the first made the decoder read backwards. */
    static const struct {
        const char *field_type, *want;
    } bad[] = {
        {"{\"type\":\"fixed\",\"name\":\"x\",\"size\":-8}", "'f': a fixed of size -8"},
        {"{\"type\":\"fixed\",\"name\":\"x\",\"size\":99999999999}",
         "a fixed of size 99999999999"},
        {"{\"type\":\"enum\",\"name\":\"e\",\"symbols\":[\"a\",\"b\",\"a\"]}",
         "'f': enum symbol 'a' appears twice"},
        {"[\"int\",\"int\"]", "'f': the union has two branches of type int"},
        {"[\"null\",[\"null\",\"long\"]]", "'f': a union directly inside a union"},
        {"{\"type\":\"record\",\"name\":\"in\",\"fields\":[{\"name\":\"g\",\"type\":"
         "\"int\"},{\"name\":\"g\",\"type\":\"long\"}]}",
         "'f': field 'g' appears twice"},
        {"{\"type\":\"array\",\"items\":{\"type\":\"fixed\",\"name\":\"y\",\"size\":-1}}",
         "'f[]': a fixed of size -1"},
    };
    for (size_t i = 0; i < SL_ARRAY_LEN(bad); i++) {
        char schema[512], err[512] = "";
        snprintf(schema, sizeof(schema),
                 "{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"f\","
                 "\"type\":%s}]}",
                 bad[i].field_type);
        sl_codec_t *c = NULL;
        cr_assert_eq(sl__codec_avro_new(schema, NULL, 0, &c, err, sizeof(err)), SL_ERR_SCHEMA,
                     "%s was accepted", bad[i].field_type);
        cr_assert(strstr(err, "reader schema: not a valid Avro schema: ") &&
                      strstr(err, bad[i].want),
                  "%s: expected \"%s\", got \"%s\"", bad[i].field_type, bad[i].want, err);
        cr_assert_eq(sl__codec_avro_new(ARR_SCHEMA, schema, 0, &c, err, sizeof(err)),
                     SL_ERR_SCHEMA);
        cr_assert(strstr(err, "writer schema: not a valid Avro schema"), "%s", err);
    }
    /* Their valid neighbours still are. */
    char err[512];
    sl_codec_t *c = NULL;
    const char *ok = "{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"f\","
                     "\"type\":[\"null\",\"int\",\"long\",{\"type\":\"fixed\",\"name\":"
                     "\"a\",\"size\":0},{\"type\":\"fixed\",\"name\":\"b\",\"size\":4}]}]}";
    cr_assert_eq(sl__codec_avro_new(ok, NULL, 0, &c, err, sizeof(err)), SL_OK, "%s", err);
    sl__codec_destroy(c);
}

Test(avro, random_bytes_never_crash)
{
    const char *const use[] = {"k", "e", NULL};
    sl_codec_t *pv = make(sl_gen_pageview_schema(), NULL, 0, PV_FIELDS);
    sl_codec_t *arr = make(ARR_SCHEMA, NULL, 0, use);
    uint64_t x = 88172645463325252ULL;
    int ok = 0;
    for (int i = 0; i < 20000; i++) {
        size_t len = (size_t)(i % 40);
        uint8_t *b = malloc(len ? len : 1);
        for (size_t j = 0; j < len; j++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            b[j] = (uint8_t)x;
        }
        sl_val_t row[8];
        char err[256];
        ok += sl__codec_decode(i & 1 ? pv : arr, b, len, row, err, sizeof(err)) == SL_OK;
        free(b);
    }
    cr_log_info("%d of 20000 random records happened to decode", ok);
    sl__codec_destroy(pv);
    sl__codec_destroy(arr);
}

static const char *const WRITER_V1 = "{\"type\":\"record\",\"name\":\"PageView\",\"fields\":["
                                     "{\"name\":\"page\",\"type\":\"string\"},"
                                     "{\"name\":\"extra\",\"type\":\"string\"},"
                                     "{\"name\":\"latency_ms\",\"type\":\"int\"}]}";

static const char *const READER_V2 =
    "{\"type\":\"record\",\"name\":\"PageView\",\"fields\":["
    "{\"name\":\"page\",\"type\":\"string\"},"
    "{\"name\":\"latency_ms\",\"type\":\"double\"},"
    "{\"name\":\"region\",\"type\":\"string\",\"default\":\"eu\"},"
    "{\"name\":\"geo\",\"type\":{\"type\":\"record\",\"name\":\"G\",\"fields\":["
    "  {\"name\":\"country\",\"type\":\"string\",\"default\":\"xx\"}]},\"default\":{}}]}";

Test(avro, resolves_writer_to_reader)
{
    const char *const use[] = {"page", "latency_ms", "region", "geo.country", NULL};
    sl_codec_t *c = make(READER_V2, WRITER_V1, 0, use);
    uint8_t rec[] = {4, '/', 'a', 2, 'z', 0x0b}; /* page "/a", extra "z", latency -6 */
    sl_val_t row[4];
    char err[256] = "";
    cr_assert_eq(sl__codec_decode(c, rec, sizeof(rec), row, err, sizeof(err)), SL_OK, "%s", err);
    sl_val_t *lat = &row[slot(c, "latency_ms")];
    cr_assert(lat->t == SL_T_DOUBLE && lat->u.d == -6.0, "int promoted to double: %g", lat->u.d);
    sl_val_t *region = &row[slot(c, "region")];
    cr_assert(region->t == SL_T_STRING && region->n == 2 && !memcmp(region->u.s, "eu", 2));
    sl_val_t *country = &row[slot(c, "geo.country")];
    cr_assert(country->n == 2 && !memcmp(country->u.s, "xx", 2));
    sl__codec_destroy(c);
}

Test(avro, unresolvable_schemas_are_refused_with_the_field)
{
    const char *reader = "{\"type\":\"record\",\"name\":\"R\",\"fields\":["
                         "{\"name\":\"page\",\"type\":\"long\"},"
                         "{\"name\":\"n\",\"type\":\"long\"}]}";
    const char *writer = "{\"type\":\"record\",\"name\":\"R\",\"fields\":["
                         "{\"name\":\"page\",\"type\":\"string\"}]}";
    char err[512] = "";
    sl_codec_t *c;
    cr_assert_eq(sl__codec_avro_new(reader, writer, 0, &c, err, sizeof(err)), SL_OK);
    sl__codec_use(c, slot(c, "page"), err, sizeof(err));
    cr_assert_eq(sl__codec_prepare(c, err, sizeof(err)), SL_ERR_SCHEMA);
    cr_assert(strstr(err, "'page' is string") && strstr(err, "long"), "got: %s", err);
    sl__codec_destroy(c);

    cr_assert_eq(sl__codec_avro_new(reader, writer, 0, &c, err, sizeof(err)), SL_OK);
    sl__codec_use(c, slot(c, "n"), err, sizeof(err));
    cr_assert_eq(sl__codec_prepare(c, err, sizeof(err)), SL_ERR_SCHEMA);
    cr_assert(strstr(err, "no field 'n'") && strstr(err, "no default"), "got: %s", err);
    sl__codec_destroy(c);

    cr_assert_eq(sl__codec_avro_new("{\"type\": \"record\"", NULL, 0, &c, err, sizeof(err)),
                 SL_ERR_SCHEMA);
    cr_assert(strstr(err, "not a valid Avro schema"), "got: %s", err);
    cr_assert_eq(sl__codec_avro_new("\"string\"", NULL, 0, &c, err, sizeof(err)), SL_ERR_SCHEMA);
    cr_assert(strstr(err, "must be a record"), "got: %s", err);
}

Test(avro, confluent_wire_format)
{
    const int32_t ids[] = {7, 42};
    sl_confluent_t cf = {ids, 2};
    sl_codec_t *c = make(sl_gen_pageview_schema(), NULL, &cf, PV_FIELDS);
    sl_pageview_t pv;
    sl_gen_spec_t spec = {.seed = 2, .pages = 10, .users = 10};
    sl_gen_pageview(&spec, 5, &pv);
    uint8_t buf[140] = {0, 0, 0, 0, 42};
    size_t n = sl_gen_pageview_avro(&pv, buf + 5, sizeof(buf) - 5);
    sl_val_t row[5];
    char err[256] = "";
    cr_assert_eq(sl__codec_decode(c, buf, n + 5, row, err, sizeof(err)), SL_OK, "%s", err);
    cr_assert_eq(row[slot(c, "bytes")].u.i, pv.bytes);
    /* A record framed with another id was decoded with the job's schema and counted. */
    buf[4] = 43;
    cr_assert_eq(sl__codec_decode(c, buf, n + 5, row, err, sizeof(err)), SL_ERR_DECODE);
    cr_assert(strstr(err, "Confluent schema id 43 is not one this job decodes "
                          "(source.schema_ids: 7, 42)"),
              "got: %s", err);
    buf[1] = 0x80; /* the id's sign bit */
    cr_assert_eq(sl__codec_decode(c, buf, n + 5, row, err, sizeof(err)), SL_ERR_DECODE);
    buf[1] = 0;
    buf[4] = 7;
    cr_assert_eq(sl__codec_decode(c, buf, n + 5, row, err, sizeof(err)), SL_OK, "%s", err);
    buf[0] = 1;
    cr_assert_eq(sl__codec_decode(c, buf, n + 5, row, err, sizeof(err)), SL_ERR_DECODE);
    cr_assert(strstr(err, "magic byte"), "got: %s", err);
    cr_assert_eq(sl__codec_decode(c, buf, 3, row, err, sizeof(err)), SL_ERR_DECODE);
    sl__codec_destroy(c);
}

Test(avro, fields_the_query_cannot_use_say_why)
{
    char err[256] = "";
    sl_codec_t *c;
    cr_assert_eq(sl__codec_avro_new(ARR_SCHEMA, NULL, 0, &c, err, sizeof(err)), SL_OK);
    cr_assert_eq(sl__codec_use(c, slot(c, "tags"), err, sizeof(err)), SL_ERR_SCHEMA);
    cr_assert(strstr(err, "'tags' is an array or map"), "got: %s", err);
    sl__codec_destroy(c);
}

/* Nullable fields, a nested record, an enum, a fixed and a double: the flat plan. The
 * same with an array last must walk the tree; its records are the flat ones plus an
 * empty array (one 0 byte). */
#define FLAT_FIELDS                                                                                \
    "{\"name\":\"a\",\"type\":[\"null\",\"long\"]},"                                               \
    "{\"name\":\"b\",\"type\":\"string\"},"                                                        \
    "{\"name\":\"g\",\"type\":{\"type\":\"record\",\"name\":\"G\",\"fields\":["                    \
    "  {\"name\":\"c\",\"type\":[\"null\",\"string\"]},{\"name\":\"d\",\"type\":\"int\"}]}},"      \
    "{\"name\":\"e\",\"type\":{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"X\",\"Y\"]}},"      \
    "{\"name\":\"f\",\"type\":{\"type\":\"fixed\",\"name\":\"F\",\"size\":2}},"                    \
    "{\"name\":\"x\",\"type\":\"double\"}"
static const char *const FLAT_SCHEMA =
    "{\"type\":\"record\",\"name\":\"R\",\"fields\":[" FLAT_FIELDS "]}";
static const char *const TREE_SCHEMA =
    "{\"type\":\"record\",\"name\":\"R\",\"fields\":[" FLAT_FIELDS
    ",{\"name\":\"z\",\"type\":{\"type\":\"array\",\"items\":\"long\"}}]}";

Test(avro, a_flat_record_decodes_as_the_tree_does)
{
    const char *const use[] = {"a", "b", "g.c", "g.d", "e", "f", "x", NULL};
    sl_codec_t *flat = make(FLAT_SCHEMA, NULL, 0, use);
    sl_codec_t *tree = make(TREE_SCHEMA, NULL, 0, use);
    /* a = 7, b = "hi", g.c = null, g.d = -3, e = Y, f = "ok", x = 1.5 */
    uint8_t rec[32] = {2, 14, 4, 'h', 'i', 0, 5, 2, 'o', 'k'};
    double x = 1.5;
    memcpy(rec + 10, &x, 8);
    sl_val_t row[8];
    char err[256] = "";
    cr_assert_eq(sl__codec_decode(flat, rec, 18, row, err, sizeof(err)), SL_OK, "%s", err);
    cr_assert(row[slot(flat, "a")].t == SL_T_LONG && row[slot(flat, "a")].u.i == 7);
    cr_assert(row[slot(flat, "b")].n == 2 && !memcmp(row[slot(flat, "b")].u.s, "hi", 2));
    cr_assert_eq(row[slot(flat, "g.c")].t, SL_T_NULL);
    cr_assert_eq(row[slot(flat, "g.d")].u.i, -3);
    cr_assert(row[slot(flat, "e")].n == 1 && row[slot(flat, "e")].u.s[0] == 'Y');
    cr_assert(row[slot(flat, "f")].n == 2 && !memcmp(row[slot(flat, "f")].u.s, "ok", 2));
    cr_assert_eq(row[slot(flat, "x")].u.d, 1.5);
    uint8_t bad_branch[] = {4};
    cr_assert_eq(sl__codec_decode(flat, bad_branch, 1, row, err, sizeof(err)), SL_ERR_DECODE);
    cr_assert(strstr(err, "union branch 2") && strstr(err, "'a'"), "got: %s", err);

    uint64_t s = 2463534242ULL;
#define RND() (s ^= s << 13, s ^= s >> 7, s ^= s << 17, s)
    int agreed = 0;
    for (int i = 0; i < 50000; i++) {
        /* A valid record from random values, then for half of them one byte changed or
         * the record cut short. */
        uint8_t b[64];
        size_t len = 0;
        if (RND() % 2) {
            b[len++] = 0; /* a: null */
        } else {
            /* Any magnitude: varints of 1 to 10 bytes, read 8 bytes at a time or by
             * the checked loop. */
            b[len++] = 2;
            uint64_t mag = RND();
            mag >>= RND() % 64;
            int64_t a = RND() % 2 ? (int64_t)mag : -(int64_t)(mag >> 1);
            len += sl__zz_encode(a, b + len);
        }
        size_t sl = RND() % 4;
        len += sl__zz_encode((int64_t)sl, b + len);
        for (size_t j = 0; j < sl; j++)
            b[len++] = (uint8_t)('a' + RND() % 26);
        if (RND() % 2) {
            b[len++] = 0; /* g.c: null */
        } else {
            b[len++] = 2;
            b[len++] = 2;
            b[len++] = 'z';
        }
        len += sl__zz_encode((int64_t)(int32_t)RND(), b + len);
        b[len++] = (uint8_t)(2 * (RND() % 2)); /* e */
        b[len++] = 'o';                        /* f */
        b[len++] = 'k';
        double xv = (double)(int64_t)RND() / 7.0;
        memcpy(b + len, &xv, 8);
        len += 8;
        if (RND() % 2) {
            size_t at = RND() % len;
            uint8_t flip = (uint8_t)(1 + RND() % 255);
            if (RND() % 2)
                len = at;
            else
                b[at] ^= flip;
        }
        uint8_t *fb = malloc(len ? len : 1), *tb = malloc(len + 1);
        memcpy(fb, b, len);
        memcpy(tb, b, len);
        tb[len] = 0; /* the empty array */
        sl_val_t fr[8], tr[8];
        char fe[256] = "", te[256] = "";
        sl_err_t f = sl__codec_decode(flat, fb, len, fr, fe, sizeof(fe));
        sl_err_t t = sl__codec_decode(tree, tb, len + 1, tr, te, sizeof(te));
        /* The tree's record is the flat one plus the array's end: whatever the flat plan
         * decodes, the tree decodes the same. The tree may read bytes the flat record left
         * over as array blocks; otherwise it decodes only what the flat plan does. */
        if (t == SL_OK && f != SL_OK)
            cr_assert(strstr(fe, "left after the record"), "bytes %d: flat: %s", i, fe);
        if (f == SL_OK) {
            cr_assert_eq(t, SL_OK, "bytes %d: the flat plan decoded, the tree: %s", i, te);
            for (const char *const *u = use; *u; u++) {
                const sl_val_t *x1 = &fr[slot(flat, *u)], *x2 = &tr[slot(tree, *u)];
                cr_assert_eq(x1->t, x2->t, "field %s", *u);
                cr_assert(x1->t == SL_T_NULL || !sl__val_cmp(x1, x2), "field %s", *u);
            }
            agreed++;
        } else {
            cr_assert(strstr(fe, "at byte") || strstr(fe, "left after"), "unclear: %s", fe);
        }
        free(fb);
        free(tb);
    }
#undef RND
    cr_log_info("%d of 50000 records decoded the same both ways", agreed);
    cr_assert_gt(agreed, 25000);
    sl__codec_destroy(flat);
    sl__codec_destroy(tree);
}
