/*
 * output.c - builds result rows and encodes them as JSON or Avro.
 */
#include "output.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "query/table.h"

sl_err_t sl__out_columns(const sl_plan_t *c, const uint8_t *key, size_t klen, int64_t wend,
                         const sl_acc_t *accs, sl_val_t *cols, char *why, size_t why_size)
{
    sl_val_t keys[SL_MAX_GROUP + 1];
    int nk = c->ngroup + (c->window ? 1 : 0);
    sl_err_t err = sl__key_decode(key, klen, nk, keys);
    if (err)
        return err;
    int over = -1;
    for (int i = 0; i < c->ncols; i++) {
        const sl_col_t *col = &c->cols[i];
        switch (col->kind) {
        case SL_COL_WSTART:
            cols[i] = keys[c->ngroup];
            break;
        case SL_COL_WEND:
            cols[i] = (sl_val_t){.t = SL_T_TIMESTAMP, .u.i = wend};
            break;
        case SL_COL_KEY:
            cols[i] = keys[col->idx];
            break;
        case SL_COL_AGG:
            if (sl__acc_result(&c->aggs[col->idx], &accs[col->idx], &cols[i]) && over < 0)
                over = i;
            break;
        case SL_COL_SELECT:
            break;
        }
    }
    if (over < 0)
        return SL_OK;
    if (why) {
        char group[300], sum[48];
        sl__out_describe_group(c, cols, group, sizeof(group));
        sl__acc_sum_format(&accs[c->cols[over].idx], sum);
        snprintf(why, why_size,
                 "%s of the group (%s) is %s, beyond a long's range: as Spark's ANSI mode "
                 "(ARITHMETIC_OVERFLOW), the job stops before this batch is committed rather "
                 "than publish a wrong sum. A double sum does not overflow: sum an expression "
                 "such as \"x * 1.0\"",
                 c->cols[over].name, group, sum);
    }
    return SL_ERR_OVERFLOW;
}

void sl__out_describe_group(const sl_plan_t *c, const sl_val_t *cols, char *buf, size_t size)
{
    char v[64];
    buf[0] = 0;
    for (int i = 0; i < c->nkeycols; i++) {
        sl__val_format(&cols[i], v, sizeof(v));
        sl__strlcatf(buf, size, "%s%s=%s", i ? ", " : "", c->cols[i].name, v);
    }
    if (!c->nkeycols)
        snprintf(buf, size, c->aggregating ? "all records" : "a record passed through");
}

void sl__out_select(const sl_plan_t *c, const sl_val_t *row, sl_val_t *cols)
{
    for (int i = 0; i < c->nselect; i++)
        cols[i] = row[c->select_slots[i]];
}

/* The most bytes json_put() writes for @p v. */
static size_t json_max(const sl_val_t *v)
{
    switch (v->t) {
    case SL_T_STRING:
        return 6 * (size_t)v->n + 2;
    case SL_T_TIMESTAMP:
        return 6 * 40 + 2;
    case SL_T_DOUBLE:
        return SL_DTOA_MAX;
    default:
        return 24; /* null, true, false, a long */
    }
}

/* Writes @p v as JSON at @p o, which has json_max(v) bytes of room; returns the end. */
static uint8_t *json_put(uint8_t *o, const sl_val_t *v)
{
    switch (v->t) {
    case SL_T_NULL:
        memcpy(o, "null", 4);
        return o + 4;
    case SL_T_BOOL:
        memcpy(o, v->u.i ? "true" : "false", v->u.i ? 4 : 5);
        return o + (v->u.i ? 4 : 5);
    case SL_T_LONG:
        return o + sl__i64_format(v->u.i, (char *)o);
    case SL_T_DOUBLE:
        if (!isfinite(v->u.d)) {
            /* JSON has no NaN or infinity; Spark's to_json writes them as these strings
             * (and its JSON reader, and sluice's, read them back), not as null, which
             * would say the value is missing. */
            const char *s = isnan(v->u.d) ? "\"NaN\"" : v->u.d > 0 ? "\"Infinity\"" : "\"-Infinity\"";
            size_t n = strlen(s);
            memcpy(o, s, n);
            return o + n;
        }
        return o + sl__dtoa(v->u.d, (char *)o);
    case SL_T_STRING:
        return sl__json_string_put(o, v->u.s, v->n);
    case SL_T_TIMESTAMP: {
        char ts[40];
        int n = sl__ts_format(v->u.i, 1, ts, sizeof(ts));
        return sl__json_string_put(o, ts, (size_t)n);
    }
    }
    return o;
}

/* A row as one JSON object, in one reservation (a row a result, every batch). */
static sl_err_t json_row(const sl_plan_t *c, const sl_val_t *cols, int n, sl_buf_t *b)
{
    size_t need = 2;
    for (int i = 0; i < n; i++)
        need += c->cols[i].json_len + 1 + json_max(&cols[i]);
    if (sl__buf_reserve(b, need) != SL_OK)
        return SL_ERR_NOMEM;
    uint8_t *o = b->p + b->len;
    *o++ = '{';
    for (int i = 0; i < n; i++) {
        if (i)
            *o++ = ',';
        memcpy(o, c->cols[i].json, c->cols[i].json_len);
        o = json_put(o + c->cols[i].json_len, &cols[i]);
    }
    *o++ = '}';
    b->len = (size_t)(o - b->p);
    return SL_OK;
}

static sl_err_t avro_row(const sl_plan_t *c, const sl_val_t *cols, int n, sl_buf_t *b)
{
    for (int i = 0; i < n; i++) {
        int nullable = c->cols[i].nullable;
        sl_type_t t = c->cols[i].type;
        const sl_val_t *v = &cols[i];
        uint8_t tmp[16];
        size_t len = 0;
        if (nullable)
            len += sl__zz_encode(v->t == SL_T_NULL ? 0 : 1, tmp);
        if (v->t == SL_T_NULL) {
            if (!nullable)
                return SL_ERR_INVAL;
        } else if (t == SL_T_DOUBLE) {
            double d = sl__val_num(v);
            memcpy(tmp + len, &d, 8);
            len += 8;
        } else if (t == SL_T_BOOL) {
            tmp[len++] = v->u.i != 0;
        } else if (t == SL_T_LONG || t == SL_T_TIMESTAMP) {
            len += sl__zz_encode(v->u.i, tmp + len);
        } else if (t == SL_T_STRING) {
            len += sl__zz_encode(v->n, tmp + len);
        }
        if (sl__buf_append(b, tmp, len) != SL_OK)
            return SL_ERR_NOMEM;
        if (v->t == SL_T_STRING && sl__buf_append(b, v->u.s, v->n) != SL_OK)
            return SL_ERR_NOMEM;
    }
    return SL_OK;
}

sl_err_t sl__out_json(const sl_plan_t *c, const sl_val_t *cols, sl_buf_t *out)
{
    return json_row(c, cols, c->ncols, out);
}

sl_err_t sl__out_encode(const sl_plan_t *c, sl_out_fmt_t format, const sl_val_t *cols,
                        sl_buf_t *key, sl_buf_t *value)
{
    /* Rows passed through have no group, so no message key. */
    if (format == SL_OUT_AVRO) {
        sl_err_t err = c->nkeycols ? avro_row(c, cols, c->nkeycols, key) : SL_OK;
        return err ? err : avro_row(c, cols, c->ncols, value);
    }
    sl_err_t err = c->nkeycols ? json_row(c, cols, c->nkeycols, key) : SL_OK;
    return err ? err : json_row(c, cols, c->ncols, value);
}

char *sl__out_avro_schema(const sl_plan_t *c, const char *job, int key_only)
{
    json_t *fields = json_array();
    int n = key_only ? c->nkeycols : c->ncols;
    for (int i = 0; i < n; i++) {
        sl_type_t t = c->cols[i].type;
        json_t *type = t == SL_T_TIMESTAMP ? json_pack("{s:s,s:s}", "type", "long", "logicalType",
                                                       "timestamp-millis")
                                           : json_string(sl__type_name(t));
        if (c->cols[i].nullable)
            type = json_pack("[s,o]", "null", type);
        json_array_append_new(fields,
                              json_pack("{s:s,s:o}", "name", c->cols[i].name, "type", type));
    }
    json_t *schema =
        json_pack("{s:s,s:s,s:s,s:o}", "type", "record", "name", key_only ? "Key" : "Row",
                  "namespace", "io.sluice.result", "fields", fields);
    char doc[400];
    snprintf(doc, sizeof(doc), "%s of sluice job %s", key_only ? "Message keys" : "Result rows",
             job ? job : "?");
    json_object_set_new(schema, "doc", json_string(doc));
    char *s = json_dumps(schema, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(schema);
    return s;
}

void sl__val_format(const sl_val_t *v, char *buf, size_t size)
{
    switch (v->t) {
    case SL_T_NULL:
        snprintf(buf, size, "null");
        break;
    case SL_T_BOOL:
        snprintf(buf, size, "%s", v->u.i ? "true" : "false");
        break;
    case SL_T_LONG:
        snprintf(buf, size, "%lld", (long long)v->u.i);
        break;
    case SL_T_DOUBLE: {
        char d[SL_DTOA_MAX];
        sl__dtoa_java(v->u.d, d); /* as Spark's console shows it */
        snprintf(buf, size, "%s", d);
        break;
    }
    case SL_T_STRING:
        snprintf(buf, size, "%.*s", (int)v->n, v->u.s);
        break;
    case SL_T_TIMESTAMP:
        sl__ts_format(v->u.i, 0, buf, size);
        break;
    }
}
