/*
 * codec.c - the part of the codec module that every format shares (fields, slots, use
 * marks), and the JSON format. JSON is parsed by jansson per record; that allocates, so
 * JSON is the convenient format, Avro the fast one.
 */
#include "codec_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

sl_codec_t *sl__codec_alloc(const codec_ops_t *ops)
{
    sl_codec_t *c = calloc(1, sizeof(*c));
    if (c)
        c->ops = ops;
    return c;
}

int sl__codec_add_field(sl_codec_t *c, const char *name, sl_type_t type, int nullable,
                        const char *unusable)
{
    const sl_grow_t arrays[] = {{&c->fields, sizeof(*c->fields)},
                                {&c->used, sizeof(*c->used)},
                                {&c->unusable, sizeof(*c->unusable)}};
    if (sl__grow(&c->cap, (size_t)c->nfields + 1, 16, arrays, 3))
        return -1;
    int slot = c->nfields;
    c->fields[slot].name = strdup(name);
    c->fields[slot].type = type;
    c->fields[slot].nullable = nullable;
    c->used[slot] = 0;
    c->unusable[slot] = unusable ? strdup(unusable) : NULL;
    if (!c->fields[slot].name)
        return -1;
    c->nfields++;
    return slot;
}

const sl_field_t *sl__codec_fields(const sl_codec_t *c, int *n)
{
    *n = c->nfields;
    return c->fields;
}

int sl__codec_field_slot(const sl_codec_t *c, const char *name, size_t len)
{
    for (int i = 0; i < c->nfields; i++) {
        if (strlen(c->fields[i].name) == len && !memcmp(c->fields[i].name, name, len))
            return i;
    }
    return -1;
}

sl_err_t sl__codec_use(sl_codec_t *c, int slot, char *errstr, size_t errstr_size)
{
    if (slot < 0 || slot >= c->nfields)
        return SL_ERR_INVAL;
    if (c->unusable[slot]) {
        snprintf(errstr, errstr_size, "field '%s' %s", c->fields[slot].name, c->unusable[slot]);
        return SL_ERR_SCHEMA;
    }
    c->used[slot] = 1;
    return SL_OK;
}

sl_err_t sl__codec_prepare(sl_codec_t *c, char *errstr, size_t errstr_size)
{
    return c->ops->prepare ? c->ops->prepare(c, errstr, errstr_size) : SL_OK;
}

sl_err_t sl__codec_decode(sl_codec_t *c, const void *buf, size_t len, sl_val_t *row, char *errstr,
                          size_t errstr_size)
{
    return c->ops->decode(c, buf, len, row, errstr, errstr_size);
}

const char *sl__codec_canonical(const sl_codec_t *c)
{
    return c->canonical ? c->canonical : "";
}

void sl__codec_destroy(sl_codec_t *c)
{
    if (!c)
        return;
    if (c->ops->destroy)
        c->ops->destroy(c);
    for (int i = 0; i < c->nfields; i++) {
        free(c->fields[i].name);
        free(c->unusable[i]);
    }
    free(c->fields);
    free(c->used);
    free(c->unusable);
    free(c->canonical);
    free(c);
}

/* ---- JSON ---- */

int sl__codec_json_value(json_t *v, sl_type_t type, sl_val_t *out)
{
    out->t = SL_T_NULL;
    if (!v || json_is_null(v))
        return 0;
    switch (type) {
    case SL_T_STRING:
        if (!json_is_string(v))
            return -1;
        out->u.s = json_string_value(v);
        out->n = (uint32_t)json_string_length(v);
        break;
    case SL_T_LONG:
        if (json_is_integer(v))
            out->u.i = json_integer_value(v);
        else if (json_is_real(v) && floor(json_real_value(v)) == json_real_value(v) &&
                 fabs(json_real_value(v)) < 9.0e15)
            out->u.i = (int64_t)json_real_value(v);
        else
            return -1;
        break;
    case SL_T_DOUBLE:
        if (json_is_string(v)) {
            /* What Spark's to_json (and sluice's JSON output) writes for the values JSON
             * has no number for; Spark's reader takes the same. */
            const char *s = json_string_value(v);
            if (!strcmp(s, "NaN"))
                out->u.d = NAN;
            else if (!strcmp(s, "Infinity") || !strcmp(s, "+Infinity") || !strcmp(s, "+INF") ||
                     !strcmp(s, "INF"))
                out->u.d = INFINITY;
            else if (!strcmp(s, "-Infinity") || !strcmp(s, "-INF"))
                out->u.d = -INFINITY;
            else
                return -1;
            break;
        }
        if (!json_is_number(v))
            return -1;
        out->u.d = json_number_value(v);
        break;
    case SL_T_BOOL:
        if (!json_is_boolean(v))
            return -1;
        out->u.i = json_is_true(v);
        break;
    case SL_T_TIMESTAMP:
        /* epoch milliseconds, or an ISO 8601 date-time */
        if (json_is_integer(v))
            out->u.i = json_integer_value(v);
        else if (!json_is_string(v) ||
                 sl__ts_parse(json_string_value(v), json_string_length(v), &out->u.i) < 0)
            return -1;
        break;
    default:
        return -1;
    }
    out->t = (uint8_t)type;
    return 0;
}

typedef struct json_impl {
    json_t *doc; /* the record decoded last; its strings are in the row */
} json_impl_t;

static sl_err_t json_decode(sl_codec_t *c, const void *buf, size_t len, sl_val_t *row, char *errstr,
                            size_t errstr_size)
{
    json_impl_t *impl = c->impl;
    json_decref(impl->doc);
    impl->doc = NULL;
    json_error_t jerr;
    /* JSON_ALLOW_NUL: "\u0000" in a string is valid JSON (Spark reads it); strings are
     * taken with their lengths throughout. */
    json_t *doc = json_loadb(buf, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
    if (!doc) {
        snprintf(errstr, errstr_size, "not JSON: %s at byte %d", jerr.text, jerr.position);
        return SL_ERR_DECODE;
    }
    impl->doc = doc;
    if (!json_is_object(doc)) {
        snprintf(errstr, errstr_size, "a JSON record must be an object");
        return SL_ERR_DECODE;
    }
    for (int i = 0; i < c->nfields; i++) {
        if (!c->used[i])
            continue;
        const sl_field_t *f = &c->fields[i];
        json_t *v = json_object_get(doc, f->name);
        sl_val_t *out = &row[i];
        if (sl__codec_json_value(v, f->type, out) < 0) {
            snprintf(errstr, errstr_size, "field '%s' should be a %s%s", f->name,
                     sl__type_name(f->type),
                     f->type == SL_T_TIMESTAMP ? " (epoch milliseconds or ISO 8601)" : "");
            return SL_ERR_DECODE;
        }
    }
    return SL_OK;
}

static void json_destroy(sl_codec_t *c)
{
    json_impl_t *impl = c->impl;
    if (impl)
        json_decref(impl->doc);
    free(impl);
}

static const codec_ops_t json_ops = {NULL, json_decode, json_destroy};

sl_err_t sl__codec_json_new(json_t *fields, sl_codec_t **out, char *errstr, size_t errstr_size)
{
    static const struct {
        const char *name;
        sl_type_t type;
    } types[] = {{"string", SL_T_STRING},      {"long", SL_T_LONG},    {"int", SL_T_LONG},
                 {"double", SL_T_DOUBLE},      {"float", SL_T_DOUBLE}, {"boolean", SL_T_BOOL},
                 {"timestamp", SL_T_TIMESTAMP}};
    *out = NULL;
    if (!json_is_object(fields) || json_object_size(fields) == 0) {
        snprintf(errstr, errstr_size,
                 "must be an object of field types, e.g. {\"page\": \"string\"}");
        return SL_ERR_INVAL;
    }
    sl_codec_t *c = sl__codec_alloc(&json_ops);
    if (!c || !(c->impl = calloc(1, sizeof(json_impl_t))))
        goto fail_nomem;
    const char *name;
    json_t *v;
    json_object_foreach(fields, name, v)
    {
        const char *tn = json_string_value(v);
        int found = -1;
        for (size_t i = 0; tn && i < SL_ARRAY_LEN(types); i++) {
            if (!strcmp(types[i].name, tn))
                found = (int)i;
        }
        if (found < 0) {
            snprintf(errstr, errstr_size,
                     "%s: type must be one of string, long, double, boolean, timestamp", name);
            sl__codec_destroy(c);
            return SL_ERR_INVAL;
        }
        if (sl__codec_add_field(c, name, types[found].type, 1, NULL) < 0)
            goto fail_nomem;
    }
    c->canonical = json_dumps(fields, JSON_SORT_KEYS | JSON_COMPACT);
    if (!c->canonical)
        goto fail_nomem;
    *out = c;
    return SL_OK;
fail_nomem:
    sl__codec_destroy(c);
    snprintf(errstr, errstr_size, "out of memory");
    return SL_ERR_NOMEM;
}

/* ---- plain text ---- */

static sl_err_t text_decode(sl_codec_t *c, const void *buf, size_t len, sl_val_t *row, char *errstr,
                            size_t errstr_size)
{
    (void)c;
    if (len > UINT32_MAX) {
        snprintf(errstr, errstr_size, "a line of %zu bytes is too long", len);
        return SL_ERR_DECODE;
    }
    /* A line read from a file or socket may end in a newline; the value is without it. */
    const char *s = buf;
    if (len && s[len - 1] == '\n')
        len--;
    if (len && s[len - 1] == '\r')
        len--;
    row[0] = (sl_val_t){.t = SL_T_STRING, .n = (uint32_t)len, .u.s = s};
    return SL_OK;
}

static const codec_ops_t text_ops = {NULL, text_decode, NULL};

sl_err_t sl__codec_text_new(sl_codec_t **out, char *errstr, size_t errstr_size)
{
    sl_codec_t *c = sl__codec_alloc(&text_ops);
    *out = NULL;
    if (!c || sl__codec_add_field(c, "value", SL_T_STRING, 0, NULL) < 0 ||
        !(c->canonical = strdup("text"))) {
        sl__codec_destroy(c);
        snprintf(errstr, errstr_size, "out of memory");
        return SL_ERR_NOMEM;
    }
    *out = c;
    return SL_OK;
}
