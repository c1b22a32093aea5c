/*
 * inspect.c - prints what a state directory holds, with no Kafka and no job file: the
 * query layout stored beside the aggregates is enough to decode them. It opens the store
 * read-only, so it can look at the state of a running job.
 */
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commit/outbox.h"
#include "query/agg.h"
#include "query/table.h"
#include "sink/output.h"
#include "store.h"
#include "util.h"

typedef struct layout {
    int ngroup, naggs;
    int windowed; /* values start with the window's end */
    sl_type_t *gtypes;
    char **gnames;
    sl_agg_spec_t *aggs;
    json_t *doc;
    FILE *out;
    uint64_t count;
} layout_t;

static sl_type_t type_of(const char *s)
{
    static const char *const names[] = {"null", "boolean", "long", "double", "string", "timestamp"};
    for (int i = 0; i < 6; i++) {
        if (s && !strcmp(names[i], s))
            return (sl_type_t)i;
    }
    return SL_T_NULL;
}

static int parse_layout(layout_t *l, const char *desc)
{
    l->doc = json_loads(desc, 0, NULL);
    json_t *gb = json_object_get(l->doc, "group_by"), *ag = json_object_get(l->doc, "aggregates");
    if (!json_is_array(gb) || !json_is_array(ag))
        return -1;
    l->windowed = json_is_object(json_object_get(l->doc, "window"));
    l->ngroup = (int)json_array_size(gb);
    l->naggs = (int)json_array_size(ag);
    l->gtypes = calloc((size_t)l->ngroup + 1, sizeof(*l->gtypes));
    l->gnames = calloc((size_t)l->ngroup + 1, sizeof(*l->gnames));
    l->aggs = calloc((size_t)l->naggs + 1, sizeof(*l->aggs));
    if (!l->gtypes || !l->gnames || !l->aggs)
        return -1;
    for (int i = 0; i < l->ngroup; i++) {
        json_t *g = json_array_get(gb, (size_t)i);
        l->gnames[i] = (char *)json_string_value(json_object_get(g, "name"));
        l->gtypes[i] = type_of(json_string_value(json_object_get(g, "type")));
    }
    for (int i = 0; i < l->naggs; i++) {
        json_t *a = json_array_get(ag, (size_t)i);
        int fn = sl__agg_fn_parse(json_string_value(json_object_get(a, "fn"))
                                      ? json_string_value(json_object_get(a, "fn"))
                                      : "");
        if (fn < 0)
            return -1;
        l->aggs[i].fn = (sl_agg_fn_t)fn;
        l->aggs[i].slot = json_is_string(json_object_get(a, "field")) ? 0 : -1;
        l->aggs[i].in_type = type_of(json_string_value(json_object_get(a, "in")));
        l->aggs[i].as = (char *)json_string_value(json_object_get(a, "as"));
        l->aggs[i].hll_p = (int)json_integer_value(json_object_get(a, "p"));
        l->aggs[i].time_slot = json_is_string(json_object_get(a, "by")) ? 0 : -1;
        if (fn == SL_AGG_APPROX_COUNT_DISTINCT && (l->aggs[i].hll_p < 4 || l->aggs[i].hll_p > 16))
            return -1;
    }
    return 0;
}

static void print_row(layout_t *l, const char *k, size_t klen, const char *v, size_t vlen)
{
    sl_val_t keys[65];
    sl_acc_t accs[64];
    char buf[256];
    int64_t wend = 0;
    if (l->windowed && vlen >= 8) {
        wend = (int64_t)sl__be64_get((const uint8_t *)v);
        v += 8;
        vlen -= 8;
    }
    sl_arena_t arena;
    sl__arena_init(&arena);
    if (l->ngroup > 64 || l->naggs > 64 ||
        sl__key_decode((const uint8_t *)k, klen, l->ngroup, keys) ||
        sl__accs_decode(l->aggs, l->naggs, (const uint8_t *)v, vlen, accs, &arena)) {
        fprintf(l->out, "  (an entry that cannot be decoded: %zu key bytes)\n", klen);
        sl__arena_fini(&arena);
        return;
    }
    fputs("  ", l->out);
    for (int i = 0; i < l->ngroup; i++) {
        sl__val_format(&keys[i], buf, sizeof(buf));
        fprintf(l->out, "%s%s=%s", i ? " " : "", l->gnames[i], buf);
    }
    if (l->windowed) {
        sl_val_t we = {.t = SL_T_TIMESTAMP, .u.i = wend};
        sl__val_format(&we, buf, sizeof(buf));
        fprintf(l->out, " window_end=%s", buf);
    }
    fputs(" ->", l->out);
    for (int i = 0; i < l->naggs; i++) {
        sl_val_t r;
        if (sl__acc_result(&l->aggs[i], &accs[i], &r) == SL_ERR_OVERFLOW) {
            size_t n = sl__acc_sum_format(&accs[i], buf);
            snprintf(buf + n, sizeof(buf) - n, " (beyond a long)");
        } else {
            sl__val_format(&r, buf, sizeof(buf));
        }
        fprintf(l->out, " %s=%s", l->aggs[i].as, buf);
    }
    fputc('\n', l->out);
    sl__arena_fini(&arena);
}

static int agg_cb(void *opaque, const char *k, size_t klen, const char *v, size_t vlen)
{
    layout_t *l = opaque;
    print_row(l, k, klen, v, vlen);
    l->count++;
    return 0;
}

static int pos_cb(void *opaque, const char *k, size_t klen, const char *v, size_t vlen)
{
    FILE *out = opaque;
    if (vlen == 8)
        fprintf(out, "  %.*s = %" PRId64 "\n", (int)(klen - 4), k + 4,
                (int64_t)sl__be64_get((const uint8_t *)v));
    return 0;
}

/* A files source's progress: "file/<name>" = byte offset read to, and whether it is done. */
static int file_cb(void *opaque, const char *k, size_t klen, const char *v, size_t vlen)
{
    FILE *out = opaque;
    if (vlen == 9)
        fprintf(out, "  file %.*s = byte %" PRId64 "%s\n", (int)(klen - 5), k + 5,
                (int64_t)sl__be64_get((const uint8_t *)v), v[8] ? " (read to its end)" : "");
    return 0;
}

static int count_cb(void *opaque, int64_t seq, uint32_t idx, const uint8_t *row, size_t len)
{
    (void)seq;
    (void)idx;
    (void)row;
    (void)len;
    (*(uint64_t *)opaque)++;
    return 0;
}

/* Builds the key bytes of "v1,v2" for the stored key types. */
static int key_from_text(const layout_t *l, const char *text, sl_buf_t *out)
{
    char *copy = strdup(text);
    if (!copy)
        return -1;
    sl_val_t vals[64];
    int slots[64];
    char *tok = copy;
    int rc = 0;
    if (l->ngroup > 64)
        rc = -1;
    for (int i = 0; i < l->ngroup && rc == 0; i++) {
        char *comma = i + 1 < l->ngroup ? strchr(tok, ',') : NULL;
        if (i + 1 < l->ngroup && !comma) {
            rc = -1;
            break;
        }
        if (comma)
            *comma = 0;
        slots[i] = i;
        sl_val_t *v = &vals[i];
        char *end;
        switch (l->gtypes[i]) {
        case SL_T_LONG:
            v->t = SL_T_LONG;
            v->u.i = strtoll(tok, &end, 10);
            rc = *end ? -1 : 0;
            break;
        case SL_T_DOUBLE:
            v->t = SL_T_DOUBLE;
            v->u.d = strtod(tok, &end);
            rc = *end ? -1 : 0;
            break;
        case SL_T_BOOL:
            v->t = SL_T_BOOL;
            v->u.i = !strcmp(tok, "true");
            break;
        case SL_T_TIMESTAMP:
            v->t = SL_T_TIMESTAMP;
            if (sl__ts_parse(tok, strlen(tok), &v->u.i) < 0) {
                v->u.i = strtoll(tok, &end, 10);
                rc = *end ? -1 : 0;
            }
            break;
        default:
            v->t = SL_T_STRING;
            v->u.s = tok;
            v->n = (uint32_t)strlen(tok);
        }
        tok = comma ? comma + 1 : tok;
    }
    if (rc == 0)
        rc = sl__key_encode(vals, slots, l->ngroup, out) ? -1 : 0;
    free(copy);
    return rc;
}

SL_API sl_err_t sl_state_inspect(const char *dir, const char *key, FILE *out, char *errstr,
                                 size_t errstr_size)
{
    sl_store_t *s = NULL;
    layout_t l = {0};
    l.out = out;
    char *val = NULL, *desc = NULL;
    size_t vlen, dlen;
    sl_err_t e = sl__store_open(dir, 0, 1, &s, errstr, errstr_size);
    if (e)
        return e;
    fprintf(out, "state: %s\n", dir);
    if (sl__store_get(s, SL_CF_META, "job", 3, &val, &vlen, errstr, errstr_size) == SL_OK &&
        vlen == 8)
        fprintf(out, "job fingerprint: %016" PRIx64 "\n", sl__be64_get((const uint8_t *)val));
    else
        fprintf(out, "job fingerprint: (none: no batch committed yet)\n");
    free(val);
    val = NULL;
    if (sl__store_get(s, SL_CF_META, "seq", 3, &val, &vlen, errstr, errstr_size) == SL_OK &&
        vlen == 8)
        fprintf(out, "batch sequence: %" PRId64 "\n", (int64_t)sl__be64_get((const uint8_t *)val));
    else
        fprintf(out, "batch sequence: 0\n");
    free(val);
    val = NULL;
    if (sl__store_get(s, SL_CF_META, "wm", 2, &val, &vlen, errstr, errstr_size) == SL_OK &&
        vlen == 8) {
        char ts[40];
        sl__ts_format((int64_t)sl__be64_get((const uint8_t *)val), 1, ts, sizeof(ts));
        fprintf(out, "watermark: %s\n", ts);
    }
    free(val);
    fprintf(out, "positions (next offset to read):\n");
    if ((e = sl__store_scan(s, SL_CF_META, "pos/", 4, pos_cb, out, errstr, errstr_size)) ||
        (e = sl__store_scan(s, SL_CF_META, "file/", 5, file_cb, out, errstr, errstr_size)))
        goto done;
    uint64_t pending = 0;
    if ((e = sl__outbox_scan(s, count_cb, &pending, errstr, errstr_size)))
        goto done;
    fprintf(out, "outbox: %" PRIu64 " row(s) not yet known to be published\n", pending);
    if (sl__store_get(s, SL_CF_META, "query", 5, &desc, &dlen, errstr, errstr_size) != SL_OK) {
        fprintf(out, "aggregates: none\n");
        e = key ? SL_ERR_NOTFOUND : SL_OK;
        if (key)
            snprintf(errstr, errstr_size, "state %s: no aggregates yet", dir);
        goto done;
    }
    if (parse_layout(&l, desc) < 0) {
        snprintf(errstr, errstr_size, "state %s: the stored query layout is corrupt", dir);
        e = SL_ERR_STATE;
        goto done;
    }
    fprintf(out, "query: %s\n", desc);
    if (key) {
        sl_buf_t kb;
        sl__buf_init(&kb);
        if (key_from_text(&l, key, &kb) < 0) {
            snprintf(errstr, errstr_size,
                     "key '%s' does not fit the group key (%d value(s), separated by commas)", key,
                     l.ngroup);
            sl__buf_fini(&kb);
            e = SL_ERR_INVAL;
            goto done;
        }
        e = sl__store_get(s, SL_CF_AGG, kb.p, kb.len, &val, &vlen, errstr, errstr_size);
        if (e == SL_OK) {
            fprintf(out, "aggregate:\n");
            print_row(&l, (const char *)kb.p, kb.len, val, vlen);
            free(val);
        } else if (e == SL_ERR_NOTFOUND) {
            snprintf(errstr, errstr_size, "state %s: no aggregate for key '%s'", dir, key);
        }
        sl__buf_fini(&kb);
        goto done;
    }
    fprintf(out, "aggregates:\n");
    e = sl__store_scan(s, SL_CF_AGG, NULL, 0, agg_cb, &l, errstr, errstr_size);
    fprintf(out, "%" PRIu64 " key(s)\n", l.count);
done:
    free(desc);
    free(l.gtypes);
    free(l.gnames);
    free(l.aggs);
    json_decref(l.doc);
    sl__store_close(s);
    return e;
}
