/*
 * inspect.c - prints what a state directory holds, with no Kafka and no job file: the
 * query layout stored beside the aggregates is enough to decode them. It opens the store
 * read-only, so it can look at the state of a running job.
 */
#include <ctype.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commit/outbox.h"
#include "layout.h"
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
    size_t prefix; /* bytes of the task prefix on the state's keys */
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

/* A string of a group key as inspect prints it, and as --key takes it: a control byte
 * (NUL among them) as \xHH, a backslash as \\ and a comma (the --key separator) as \,;
 * the rest as it is. */
static void print_key_string(FILE *out, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f)
            fprintf(out, "\\x%02x", c);
        else if (c == '\\' || c == ',')
            fprintf(out, "\\%c", c);
        else
            fputc(c, out);
    }
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
        fprintf(l->out, "%s%s=", i ? " " : "", l->gnames[i]);
        if (keys[i].t == SL_T_STRING) {
            print_key_string(l->out, keys[i].u.s, keys[i].n);
        } else {
            sl__val_format(&keys[i], buf, sizeof(buf));
            fputs(buf, l->out);
        }
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
    if (klen < l->prefix) {
        fprintf(l->out, "  (an entry that cannot be decoded: %zu key bytes)\n", klen);
        return 0;
    }
    print_row(l, k + l->prefix, klen - l->prefix, v, vlen);
    l->count++;
    return 0;
}

/* What the meta family says: per task its batch and watermark, and every position. */
typedef struct meta_view {
    FILE *out;
    int layout;
    int *tasks; /* the tasks the store has state of */
    size_t ntasks, cap;
} meta_view_t;

static int64_t i64(const char *v)
{
    return (int64_t)sl__be64_get((const uint8_t *)v);
}

/* A position ("pos/<topic>/<partition>", 8 bytes) or a file's progress ("file/<name>", 9). */
static void print_position(FILE *out, const char *name, size_t nlen, const char *v, size_t vlen)
{
    if (nlen > 4 && !memcmp(name, "pos/", 4) && vlen == 8)
        fprintf(out, "  %.*s = %" PRId64 "\n", (int)(nlen - 4), name + 4, i64(v));
    else if (nlen > 5 && !memcmp(name, "file/", 5) && vlen == 9)
        fprintf(out, "  file %.*s = byte %" PRId64 "%s\n", (int)(nlen - 5), name + 5, i64(v),
                v[8] ? " (read to its end)" : "");
}

static int pos_cb(void *opaque, const char *k, size_t klen, const char *v, size_t vlen)
{
    meta_view_t *m = opaque;
    if (m->layout < 2) {
        print_position(m->out, k, klen, v, vlen);
        return 0;
    }
    /* "t/<task>/<name>" */
    if (klen < 4 || memcmp(k, "t/", 2))
        return 0;
    const char *slash = memchr(k + 2, '/', klen - 2);
    if (!slash)
        return 0;
    const char *name = slash + 1;
    size_t nlen = klen - (size_t)(name - k);
    print_position(m->out, name, nlen, v, vlen);
    return 0;
}

static int task_cb(void *opaque, const char *k, size_t klen, const char *v, size_t vlen)
{
    meta_view_t *m = opaque;
    const char *slash = klen > 2 ? memchr(k + 2, '/', klen - 2) : NULL;
    if (!slash || strncmp(slash + 1, "seq", 3) || (size_t)(slash + 4 - k) != klen || vlen != 8)
        return 0;
    if (!SL_GROW(m->tasks, m->cap, m->ntasks + 1, 16))
        m->tasks[m->ntasks++] = (int)strtol(k + 2, NULL, 10);
    return 0;
}

/* One line per task: its batch, its watermark, where its changelog was read to. */
static void print_tasks(sl_store_t *s, meta_view_t *m)
{
    for (size_t i = 0; i < m->ntasks; i++) {
        int t = m->tasks[i];
        const char *names[] = {"seq", "wm", "clog"};
        int64_t vals[3] = {0, INT64_MIN, -1};
        for (int j = 0; j < 3; j++) {
            char key[64], *v = NULL, err[256];
            size_t vl;
            int kl = sl__meta_key(key, sizeof(key), t, "%s", names[j]);
            if (sl__store_get(s, SL_CF_META, key, (size_t)kl, &v, &vl, err, sizeof(err)) == SL_OK &&
                vl == 8)
                vals[j] = i64(v);
            free(v);
        }
        fprintf(m->out, "task %d: batch %" PRId64, t, vals[0]);
        if (vals[1] != INT64_MIN) {
            char ts[40];
            sl__ts_format(vals[1], 1, ts, sizeof(ts));
            fprintf(m->out, ", watermark %s", ts);
        }
        if (vals[2] >= 0)
            fprintf(m->out, ", changelog read to offset %" PRId64, vals[2]);
        fputc('\n', m->out);
    }
}

static int count_cb(void *opaque, int stream, int64_t seq, uint32_t idx, const uint8_t *row,
                    size_t len)
{
    (void)stream;
    (void)seq;
    (void)idx;
    (void)row;
    (void)len;
    (*(uint64_t *)opaque)++;
    return 0;
}

/* Undoes print_key_string() in place, from @p p up to the next unescaped comma (with
 * @p stop_at_comma) or the end. *len gets the value's length, *next where the next value
 * starts (past the comma) or NULL at the end; -1 for a malformed escape. */
static int unescape(char *p, int stop_at_comma, uint32_t *len, char **next)
{
    char *w = p, *start = p;
    for (; *p && !(stop_at_comma && *p == ','); p++) {
        if (*p != '\\') {
            *w++ = *p;
        } else if (p[1] == '\\' || p[1] == ',') {
            *w++ = *++p;
        } else if (p[1] == 'x' && isxdigit((unsigned char)p[2]) &&
                   isxdigit((unsigned char)p[3])) {
            char hex[3] = {p[2], p[3], 0};
            *w++ = (char)strtol(hex, NULL, 16);
            p += 3;
        } else {
            return -1;
        }
    }
    *next = *p == ',' ? p + 1 : NULL;
    *len = (uint32_t)(w - start);
    *w = 0; /* p is at or past w: the separator has been read */
    return 0;
}

/* Builds the key bytes of "v1,v2" for the stored key types (escapes as inspect prints
 * them). */
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
        uint32_t n;
        char *next;
        if (!tok || unescape(tok, i + 1 < l->ngroup, &n, &next) < 0 ||
            (i + 1 < l->ngroup && !next)) {
            rc = -1;
            break;
        }
        char *comma = next;
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
            v->n = n;
        }
        tok = comma;
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
    meta_view_t mv = {.out = out};
    char *val = NULL, *desc = NULL;
    size_t vlen, dlen;
    sl_err_t e = sl__store_open(dir, 0, 1, &s, errstr, errstr_size);
    if (e)
        return e;
    fprintf(out, "state: %s\n", dir);
    mv.layout = SL_LAYOUT;
    if (sl__store_get(s, SL_CF_META, "layout", 6, &val, &vlen, errstr, errstr_size) == SL_OK)
        mv.layout = (int)strtol(val, NULL, 10);
    else if (sl__store_has_legacy(s))
        mv.layout = 1;
    free(val);
    val = NULL;
    if (mv.layout != SL_LAYOUT)
        fprintf(out, "layout: %d (%s)\n", mv.layout,
                mv.layout < SL_LAYOUT ? "an earlier sluice's, upgraded when the job next starts"
                                      : "a later sluice's");
    /* Layout 1 keeps one task's state without the task prefix. */
    l.prefix = mv.layout < 2 ? 0 : SL_TASK_PREFIX;
    sl_cf_t agg = mv.layout < 2 ? SL_CF_LEGACY_AGG : SL_CF_AGG;
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
    if (mv.layout < 2 &&
        sl__store_get(s, SL_CF_META, "wm", 2, &val, &vlen, errstr, errstr_size) == SL_OK &&
        vlen == 8) {
        char ts[40];
        sl__ts_format((int64_t)sl__be64_get((const uint8_t *)val), 1, ts, sizeof(ts));
        fprintf(out, "watermark: %s\n", ts);
    }
    free(val);
    if (mv.layout >= 2) {
        if ((e = sl__store_scan(s, SL_CF_META, "t/", 2, task_cb, &mv, errstr, errstr_size)))
            goto done;
        print_tasks(s, &mv);
    }
    fprintf(out, "positions (next offset to read):\n");
    if (mv.layout < 2) {
        if ((e = sl__store_scan(s, SL_CF_META, "pos/", 4, pos_cb, &mv, errstr, errstr_size)) ||
            (e = sl__store_scan(s, SL_CF_META, "file/", 5, pos_cb, &mv, errstr, errstr_size)))
            goto done;
    } else if ((e = sl__store_scan(s, SL_CF_META, "t/", 2, pos_cb, &mv, errstr, errstr_size))) {
        goto done;
    }
    uint64_t pending = 0;
    if ((e = mv.layout < 2 ? sl__outbox_scan_legacy(s, count_cb, &pending, errstr, errstr_size)
                           : sl__outbox_scan(s, -1, count_cb, &pending, errstr, errstr_size)))
        goto done;
    fprintf(out, "outbox: %" PRIu64 " record(s) not yet known to be published\n", pending);
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
        /* The key is in one of the tasks (layout 1: unprefixed). */
        e = SL_ERR_NOTFOUND;
        size_t ntry = mv.layout < 2 ? 1 : mv.ntasks;
        sl_buf_t full;
        sl__buf_init(&full);
        for (size_t i = 0; i < ntry && e == SL_ERR_NOTFOUND; i++) {
            sl__buf_reset(&full);
            if (mv.layout >= 2) {
                uint8_t prefix[SL_TASK_PREFIX];
                sl__task_put(prefix, mv.tasks[i]);
                sl__buf_append(&full, prefix, sizeof(prefix));
            }
            sl__buf_append(&full, kb.p, kb.len);
            e = sl__store_get(s, agg, full.p, full.len, &val, &vlen, errstr, errstr_size);
        }
        if (e == SL_OK) {
            fprintf(out, "aggregate:\n");
            print_row(&l, (const char *)kb.p, kb.len, val, vlen);
            free(val);
        } else if (e == SL_ERR_NOTFOUND) {
            snprintf(errstr, errstr_size, "state %s: no aggregate for key '%s'", dir, key);
        }
        sl__buf_fini(&full);
        sl__buf_fini(&kb);
        goto done;
    }
    fprintf(out, "aggregates:\n");
    e = sl__store_scan(s, agg, NULL, 0, agg_cb, &l, errstr, errstr_size);
    fprintf(out, "%" PRIu64 " key(s)\n", l.count);
done:
    free(desc);
    free(mv.tasks);
    free(l.gtypes);
    free(l.gnames);
    free(l.aggs);
    json_decref(l.doc);
    sl__store_close(s);
    return e;
}
