/*
 * test_avro.c - the Avro decoder: values, schema resolution, and records that are
 * truncated or corrupt, which must give a clear error and never read out of bounds (the
 * sanitizer build checks the latter).
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "util/util.h"

static sl_codec_t *make(const char *reader, const char *writer, int confluent,
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

    uint8_t huge_block[12];
    size_t n = sl__zz_encode(1LL << 50, huge_block); /* 2^50 nulls in 0 bytes each */
    cr_assert_eq(sl__codec_decode(c, huge_block, n, row, err, sizeof(err)), SL_ERR_DECODE);
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
    sl_codec_t *c = make(sl_gen_pageview_schema(), NULL, 1, PV_FIELDS);
    sl_pageview_t pv;
    sl_gen_spec_t spec = {.seed = 2, .pages = 10, .users = 10};
    sl_gen_pageview(&spec, 5, &pv);
    uint8_t buf[140] = {0, 0, 0, 0, 42};
    size_t n = sl_gen_pageview_avro(&pv, buf + 5, sizeof(buf) - 5);
    sl_val_t row[5];
    char err[256] = "";
    cr_assert_eq(sl__codec_decode(c, buf, n + 5, row, err, sizeof(err)), SL_OK, "%s", err);
    cr_assert_eq(row[slot(c, "bytes")].u.i, pv.bytes);
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
