/*
 * test_json.c - the JSON input format: declared types, nulls, and bad records.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "codec/codec.h"

static sl_codec_t *make(void)
{
    json_t *decl = json_pack("{s:s,s:s,s:s,s:s}", "page", "string", "n", "long", "x", "double",
                             "ok", "boolean");
    char err[256] = "";
    sl_codec_t *c = NULL;
    cr_assert_eq(sl__codec_json_new(decl, &c, err, sizeof(err)), SL_OK, "%s", err);
    json_decref(decl);
    int n;
    sl__codec_fields(c, &n);
    for (int i = 0; i < n; i++)
        sl__codec_use(c, i, err, sizeof(err));
    return c;
}

static int slot(sl_codec_t *c, const char *name)
{
    return sl__codec_field_slot(c, name, strlen(name));
}

Test(json, types_and_nulls)
{
    sl_codec_t *c = make();
    const char *rec = "{\"page\": \"/a\", \"n\": 3, \"x\": 4, \"ok\": true, \"other\": [1]}";
    sl_val_t row[4];
    char err[256] = "";
    cr_assert_eq(sl__codec_decode(c, rec, strlen(rec), row, err, sizeof(err)), SL_OK, "%s", err);
    cr_assert(row[slot(c, "page")].n == 2 && !memcmp(row[slot(c, "page")].u.s, "/a", 2));
    cr_assert_eq(row[slot(c, "n")].u.i, 3);
    cr_assert(row[slot(c, "x")].t == SL_T_DOUBLE && row[slot(c, "x")].u.d == 4.0);
    cr_assert(row[slot(c, "ok")].t == SL_T_BOOL && row[slot(c, "ok")].u.i == 1);
    const char *sparse = "{\"n\": null}";
    cr_assert_eq(sl__codec_decode(c, sparse, strlen(sparse), row, err, sizeof(err)), SL_OK);
    cr_assert_eq(row[slot(c, "n")].t, SL_T_NULL);
    cr_assert_eq(row[slot(c, "page")].t, SL_T_NULL, "a missing field is null");
    sl__codec_destroy(c);
}

Test(json, bad_records_say_why)
{
    sl_codec_t *c = make();
    sl_val_t row[4];
    char err[256] = "";
    const char *cases[][2] = {{"{\"page\": ", "not JSON"},
                              {"[1, 2]", "must be an object"},
                              {"{\"n\": \"three\"}", "field 'n' should be a long"},
                              {"{\"n\": 1.5}", "field 'n' should be a long"},
                              {"{\"page\": 7}", "field 'page' should be a string"},
                              {"{\"n\": 1, \"n\": 2}", "not JSON"}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cr_assert_eq(sl__codec_decode(c, cases[i][0], strlen(cases[i][0]), row, err, sizeof(err)),
                     SL_ERR_DECODE, "%s decoded", cases[i][0]);
        cr_assert(strstr(err, cases[i][1]), "%s: expected \"%s\", got \"%s\"", cases[i][0],
                  cases[i][1], err);
    }
    sl__codec_destroy(c);
}

Test(json, declarations_are_checked)
{
    json_t *decl = json_pack("{s:s}", "page", "text");
    char err[256] = "";
    sl_codec_t *c = NULL;
    cr_assert_eq(sl__codec_json_new(decl, &c, err, sizeof(err)), SL_ERR_INVAL);
    cr_assert(strstr(err, "page: type must be one of"), "got: %s", err);
    json_decref(decl);
}

Test(json, nul_characters_and_non_finite_doubles)
{
    sl_codec_t *c = make();
    sl_val_t row[4];
    char err[256] = "";
    /* "\u0000" is valid JSON (Spark reads it); it was refused. */
    const char rec[] = "{\"page\": \"a\\u0000b\", \"x\": \"NaN\"}";
    cr_assert_eq(sl__codec_decode(c, rec, strlen(rec), row, err, sizeof(err)), SL_OK, "%s", err);
    sl_val_t *p = &row[slot(c, "page")];
    cr_assert(p->t == SL_T_STRING && p->n == 3 && !memcmp(p->u.s, "a\0b", 3));
    cr_assert(isnan(row[slot(c, "x")].u.d));
    /* What Spark's to_json and sluice write for doubles JSON has no number for. */
    const char *inf[][2] = {{"{\"x\": \"Infinity\"}", "+"}, {"{\"x\": \"-Infinity\"}", "-"},
                            {"{\"x\": \"+INF\"}", "+"}, {"{\"x\": \"-INF\"}", "-"}};
    for (size_t i = 0; i < 4; i++) {
        cr_assert_eq(sl__codec_decode(c, inf[i][0], strlen(inf[i][0]), row, err, sizeof(err)),
                     SL_OK, "%s: %s", inf[i][0], err);
        double d = row[slot(c, "x")].u.d;
        cr_assert(isinf(d) && (d < 0) == (inf[i][1][0] == '-'), "%s", inf[i][0]);
    }
    const char *bad = "{\"x\": \"nan?\"}";
    cr_assert_eq(sl__codec_decode(c, bad, strlen(bad), row, err, sizeof(err)), SL_ERR_DECODE);
    sl__codec_destroy(c);
}
