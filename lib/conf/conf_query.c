/*
 * conf_query.c - the query section of a job file: the row a record becomes (input fields,
 * Kafka metadata, derived values), the filter, group-by, windows, the watermark and the
 * aggregates; then Spark's rules for output modes and the output columns.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf_int.h"

/* ---- fields: the input's, Kafka's metadata, and derived ones ---- */

static const struct {
    const char *name;
    sl_type_t type;
} meta_fields[SL_META_COUNT] = {
    [SL_META_TOPIC] = {"_topic", SL_T_STRING}, [SL_META_PARTITION] = {"_partition", SL_T_LONG},
    [SL_META_OFFSET] = {"_offset", SL_T_LONG}, [SL_META_TIMESTAMP] = {"_timestamp", SL_T_TIMESTAMP},
    [SL_META_KEY] = {"_key", SL_T_STRING},
};

void sl__conf_header_field(const char *header, char *out, size_t size)
{
    int n = snprintf(out, size, "_header_%s", header);
    for (int i = 8; i < n && (size_t)i < size; i++) {
        if (!isalnum((unsigned char)out[i]))
            out[i] = '_';
    }
}

/* Resolves a name for the expression parser: an input field (marked as read), a
 * metadata field, or a derived field defined before. */
static int field_lookup(void *opaque, const char *name, size_t len, sl_type_t *type)
{
    sl_conf_t *c = opaque;
    int slot = sl__codec_field_slot(c->source.codec, name, len);
    int n;
    if (slot >= 0) {
        const sl_field_t *f = sl__codec_fields(c->source.codec, &n);
        *type = f[slot].type;
        char err[8];
        if (sl__codec_use(c->source.codec, slot, err, sizeof(err)) != SL_OK)
            return -1;
        return slot;
    }
    for (int i = 0; i < SL_META_COUNT; i++) {
        if (strlen(meta_fields[i].name) == len && !memcmp(meta_fields[i].name, name, len)) {
            c->plan.meta_used |= 1u << i;
            *type = meta_fields[i].type;
            return c->plan.meta_base + i;
        }
    }
    for (int i = 0; i < c->source.nheaders; i++) {
        char hn[300];
        sl__conf_header_field(c->source.headers[i], hn, sizeof(hn));
        if (strlen(hn) == len && !memcmp(hn, name, len)) {
            *type = SL_T_STRING;
            return c->plan.meta_base + SL_META_COUNT + i;
        }
    }
    for (int i = 0; i < c->plan.nderived; i++) {
        const sl_derived_t *d = &c->plan.derived[i];
        if (strlen(d->name) == len && !memcmp(d->name, name, len)) {
            *type = sl__expr_type(d->expr);
            return d->slot;
        }
    }
    return -1;
}

sl_type_t sl__conf_slot_type(const sl_conf_t *c, int slot, int *nullable)
{
    int n;
    const sl_field_t *f = sl__codec_fields(c->source.codec, &n);
    *nullable = 1;
    if (slot < 0)
        return SL_T_NULL; /* a value whose problem was reported */
    if (slot < c->plan.nfields) {
        *nullable = f[slot].nullable;
        return f[slot].type;
    }
    if (slot < c->plan.meta_base + SL_META_COUNT) {
        *nullable = slot - c->plan.meta_base == SL_META_KEY;
        return meta_fields[slot - c->plan.meta_base].type;
    }
    if (slot < c->plan.meta_base + SL_META_COUNT + c->source.nheaders)
        return SL_T_STRING;
    for (int i = 0; i < c->plan.nderived; i++) {
        if (c->plan.derived[i].slot == slot)
            return sl__expr_type(c->plan.derived[i].expr);
    }
    return SL_T_NULL;
}

/* The name a value of the input gets as a column: a field's name, a derived field's. */
const char *sl__conf_slot_name(const sl_conf_t *c, int slot)
{
    int n;
    if (slot < 0)
        return "?"; /* a value whose problem was reported */
    if (slot < c->plan.nfields)
        return sl__codec_fields(c->source.codec, &n)[slot].name;
    if (slot < c->plan.meta_base + SL_META_COUNT)
        return meta_fields[slot - c->plan.meta_base].name;
    if (slot < c->plan.meta_base + SL_META_COUNT + c->source.nheaders) {
        static __thread char hn[300];
        sl__conf_header_field(c->source.headers[slot - c->plan.meta_base - SL_META_COUNT], hn, sizeof(hn));
        return hn;
    }
    for (int i = 0; i < c->plan.nderived; i++) {
        if (c->plan.derived[i].slot == slot)
            return c->plan.derived[i].name;
    }
    return "?";
}

static int add_derived(sl_conf_t *c, const char *name, const char *text, sl_expr_t *e)
{
    sl_derived_t *nd = realloc(c->plan.derived, (size_t)(c->plan.nderived + 1) * sizeof(*nd));
    if (!nd)
        return -1;
    c->plan.derived = nd;
    nd[c->plan.nderived] =
        (sl_derived_t){.name = strdup(name), .text = strdup(text), .slot = c->plan.nslots++, .expr = e};
    return nd[c->plan.nderived++].slot;
}

/*
 * Reads an expression that yields a value (a group key, an aggregate's input, the event
 * time): a bare field is its slot; anything else becomes a derived slot named @p name
 * (NULL: the text itself, as Spark names an unnamed column). -1 after a problem.
 */
static int value_slot(checker_t *ck, const char *text, const char *name, const char *path,
                      sl_type_t *type)
{
    sl_conf_t *c = ck->c;
    sl_expr_t *e = NULL;
    char err[512];
    if (sl__expr_parse_value(text, field_lookup, c, &e, err, sizeof(err)) != SL_OK) {
        int known = 0;
        const char *msg = err;
        if (!strncmp(msg, "at column 1: ", 13) && !strpbrk(text, " ()+-*/%'"))
            msg += 13; /* a bare name: the column says nothing */
        if (strstr(err, "unknown field")) {
            int n;
            const sl_field_t *f = sl__codec_fields(c->source.codec, &n);
            char list[512] = "";
            for (int i = 0; i < n; i++)
                sl__strlcatf(list, sizeof(list), "%s%s", i ? ", " : "", f[i].name);
            sl__conf_problem(ck, path, "%s (the input has: %s)", msg, list);
            known = 1;
        }
        if (!known)
            sl__conf_problem(ck, path, "%s", msg);
        return -1;
    }
    *type = sl__expr_type(e);
    int slot = sl__expr_field_slot(e);
    if (slot >= 0 && (!name || !strcmp(name, sl__conf_slot_name(c, slot)))) {
        sl__expr_destroy(e);
        return slot;
    }
    slot = add_derived(c, name ? name : text, text, e);
    if (slot < 0)
        sl__expr_destroy(e);
    return slot;
}

/* An item naming a value: "expr" or {"expr": "...", "as": "name"}. */
static int named_value(checker_t *ck, json_t *item, const char *path, sl_type_t *type,
                       const char **name)
{
    const char *expr = NULL, *as = NULL;
    char p[128];
    if (json_is_string(item) && json_string_length(item)) {
        expr = json_string_value(item);
    } else if (json_is_object(item)) {
        static const char *const keys[] = {"expr", "as", NULL};
        sl__conf_check_keys(ck, item, path, keys);
        snprintf(p, sizeof(p), "%s.expr", path);
        expr = sl__conf_get_string(ck, item, "expr", p, 1);
        snprintf(p, sizeof(p), "%s.as", path);
        as = sl__conf_get_string(ck, item, "as", p, 0);
    } else {
        sl__conf_problem(ck, path,
                         "must be a field name, an expression, or {\"expr\": ..., \"as\": ...}");
        return -1;
    }
    if (!expr)
        return -1;
    int slot = value_slot(ck, expr, as, path, type);
    if (slot >= 0)
        *name = as ? as : sl__conf_slot_name(ck->c, slot);
    return slot;
}

int sl__conf_valid_name(const char *s)
{
    if (!(isalpha((unsigned char)*s) || *s == '_'))
        return 0;
    for (s++; *s; s++) {
        if (!(isalnum((unsigned char)*s) || *s == '_'))
            return 0;
    }
    return 1;
}

static void parse_fields(checker_t *ck, json_t *q)
{
    sl_conf_t *c = ck->c;
    json_t *fields = json_object_get(q, "fields");
    if (!fields)
        return;
    if (!json_is_array(fields)) {
        sl__conf_problem(ck, "query.fields",
                         "must be a list of {\"as\": \"name\", \"expr\": \"...\"}");
        return;
    }
    size_t i;
    json_t *f;
    json_array_foreach(fields, i, f)
    {
        char p[64], pp[80];
        snprintf(p, sizeof(p), "query.fields[%zu]", i);
        if (!json_is_object(f)) {
            sl__conf_problem(ck, p, "must be {\"as\": \"name\", \"expr\": \"...\"}");
            continue;
        }
        static const char *const keys[] = {"expr", "as", NULL};
        sl__conf_check_keys(ck, f, p, keys);
        snprintf(pp, sizeof(pp), "%s.as", p);
        const char *as = sl__conf_get_string(ck, f, "as", pp, 1);
        snprintf(pp, sizeof(pp), "%s.expr", p);
        const char *expr = sl__conf_get_string(ck, f, "expr", pp, 1);
        if (!as || !expr)
            continue;
        sl_type_t t;
        if (field_lookup(c, as, strlen(as), &t) >= 0) {
            sl__conf_problem(ck, p, "'%s' is already a field; pick another name", as);
            continue;
        }
        if (!sl__conf_valid_name(as)) {
            sl__conf_problem(ck, pp, "'%s' is not a name ([A-Za-z_][A-Za-z0-9_]*)", as);
            continue;
        }
        sl_expr_t *e = NULL;
        char err[512];
        if (sl__expr_parse_value(expr, field_lookup, c, &e, err, sizeof(err)) != SL_OK) {
            sl__conf_problem(ck, pp, "%s", err);
            continue;
        }
        if (add_derived(c, as, expr, e) < 0)
            sl__expr_destroy(e);
    }
}

static void parse_window(checker_t *ck, json_t *q)
{
    sl_conf_t *c = ck->c;
    c->plan.time_slot = -1;
    json_t *w = json_object_get(q, "window");
    if (!w)
        return;
    if (!json_is_object(w)) {
        sl__conf_problem(ck, "query.window",
                         "must be an object such as {\"time\": \"ts\", \"size\": "
                         "\"10 minutes\"}");
        return;
    }
    static const char *const keys[] = {"time", "size", "slide", "offset", "gap", NULL};
    sl__conf_check_keys(ck, w, "query.window", keys);
    const char *time = sl__conf_get_string(ck, w, "time", "query.window.time", 1);
    if (time) {
        sl_type_t t;
        c->plan.time_slot = value_slot(ck, time, NULL, "query.window.time", &t);
        if (c->plan.time_slot >= 0 && !sl__type_integral(t)) {
            sl__conf_problem(ck, "query.window.time",
                             "the event time must be a timestamp or a long of epoch milliseconds; "
                             "'%s' is a %s",
                             time, sl__type_name(t));
            c->plan.time_slot = -1;
        }
    }
    json_t *size = json_object_get(w, "size"), *slide = json_object_get(w, "slide"),
           *gap = json_object_get(w, "gap"), *off = json_object_get(w, "offset");
    static const char *dur = "must be a duration such as \"10 minutes\", \"30s\" or \"500ms\"";
    if (gap) {
        c->plan.window = SL_WIN_SESSION;
        if (size || slide || off)
            sl__conf_problem(ck, "query.window",
                             "a session window has a gap only, not a size, slide "
                             "or offset");
        if (sl__conf_duration(gap, &c->plan.win_size_ms) < 0 || c->plan.win_size_ms <= 0)
            sl__conf_problem(ck, "query.window.gap", "%s", dur);
        return;
    }
    c->plan.window = SL_WIN_SLIDING;
    if (!size) {
        sl__conf_problem(ck, "query.window",
                         "missing: size (tumbling or hopping) or gap (session)");
        return;
    }
    if (sl__conf_duration(size, &c->plan.win_size_ms) < 0 || c->plan.win_size_ms <= 0)
        sl__conf_problem(ck, "query.window.size", "%s", dur);
    c->plan.win_slide_ms = c->plan.win_size_ms;
    if (slide && (sl__conf_duration(slide, &c->plan.win_slide_ms) < 0 || c->plan.win_slide_ms <= 0))
        sl__conf_problem(ck, "query.window.slide", "%s", dur);
    else if (slide && c->plan.win_slide_ms > c->plan.win_size_ms)
        sl__conf_problem(ck, "query.window.slide",
                         "the slide must not exceed the size (Spark's rule)");
    if (off &&
        (sl__conf_duration(off, &c->plan.win_offset_ms) < 0 || c->plan.win_offset_ms >= c->plan.win_slide_ms))
        sl__conf_problem(ck, "query.window.offset", "must be a duration shorter than the slide");
    if (c->plan.win_slide_ms > 0 && c->plan.win_size_ms / c->plan.win_slide_ms > 1000)
        sl__conf_problem(ck, "query.window",
                         "a record would fall into more than 1,000 windows; "
                         "use a longer slide");
}

static void parse_watermark(checker_t *ck, json_t *q)
{
    sl_conf_t *c = ck->c;
    c->plan.wm_slot = -1;
    json_t *w = json_object_get(q, "watermark");
    if (!w)
        return;
    ck->wm_refused = 1; /* until its field is known */
    if (!json_is_object(w)) {
        sl__conf_problem(ck, "query.watermark",
                         "must be an object such as {\"field\": \"ts\", "
                         "\"delay\": \"10 minutes\"}");
        return;
    }
    static const char *const keys[] = {"field", "delay", "idle_timeout", "late_topic", NULL};
    sl__conf_check_keys(ck, w, "query.watermark", keys);
    const char *field = sl__conf_get_string(ck, w, "field", "query.watermark.field", 1);
    if (field) {
        sl_type_t t;
        c->plan.wm_slot = value_slot(ck, field, NULL, "query.watermark.field", &t);
        if (c->plan.wm_slot >= 0 && !sl__type_integral(t)) {
            sl__conf_problem(ck, "query.watermark.field",
                             "the event time must be a timestamp or a long of epoch milliseconds; "
                             "'%s' is a %s",
                             field, sl__type_name(t));
            c->plan.wm_slot = -1;
        }
    }
    ck->wm_refused = c->plan.wm_slot < 0;
    json_t *d = json_object_get(w, "delay");
    if (!d)
        sl__conf_problem(ck, "query.watermark.delay",
                         "missing: how late records may be, e.g. "
                         "\"10 minutes\"");
    else if (sl__conf_duration(d, &c->plan.wm_delay_ms) < 0)
        sl__conf_problem(ck, "query.watermark.delay", "must be a duration such as \"10 minutes\"");
    json_t *it = json_object_get(w, "idle_timeout");
    if (it && (sl__conf_duration(it, &c->plan.idle_timeout_ms) < 0 || c->plan.idle_timeout_ms == 0))
        sl__conf_problem(ck, "query.watermark.idle_timeout", "must be a duration such as \"30s\"");
    const char *lt = sl__conf_get_string(ck, w, "late_topic", "query.watermark.late_topic", 0);
    if (lt)
        c->plan.late_topic = strdup(lt);
}

static void parse_aggregate(checker_t *ck, json_t *a, size_t i)
{
    sl_conf_t *c = ck->c;
    char p[64], pf[80];
    snprintf(p, sizeof(p), "query.aggregates[%zu]", i);
    if (!json_is_object(a)) {
        sl__conf_problem(ck, p,
                         "must be an object such as {\"fn\": \"sum\", \"field\": \"bytes\"}");
        return;
    }
    static const char *const akeys[] = {"fn", "field", "as", "by", "rsd", NULL};
    sl__conf_check_keys(ck, a, p, akeys);
    snprintf(pf, sizeof(pf), "%s.fn", p);
    const char *fn = sl__conf_get_string(ck, a, "fn", pf, 1);
    if (!fn)
        return;
    int f = sl__agg_fn_parse(fn);
    if (f < 0) {
        char known[256] = "";
        for (int k = 0; k <= SL_AGG_LAST; k++)
            sl__strlcatf(known, sizeof(known), "%s%s", k ? ", " : "",
                         sl__agg_fn_name((sl_agg_fn_t)k));
        sl__conf_problem(ck, pf, "unknown aggregate '%s' (%s)", fn, known);
        return;
    }
    sl_agg_spec_t *s = &c->plan.aggs[c->plan.naggs];
    *s = (sl_agg_spec_t){.fn = (sl_agg_fn_t)f, .slot = -1, .time_slot = -1, .in_type = SL_T_LONG};
    snprintf(pf, sizeof(pf), "%s.field", p);
    const char *field = sl__conf_get_string(ck, a, "field", pf, f != SL_AGG_COUNT);
    if (field) {
        s->slot = value_slot(ck, field, NULL, pf, &s->in_type);
        if (s->slot < 0)
            return;
        if ((f == SL_AGG_SUM || f == SL_AGG_AVG) && s->in_type != SL_T_LONG &&
            s->in_type != SL_T_DOUBLE) {
            sl__conf_problem(ck, pf, "%s needs a numeric field; '%s' is a %s", fn, field,
                             sl__type_name(s->in_type));
            return;
        }
    } else if (f != SL_AGG_COUNT) {
        return;
    }
    json_t *rsd = json_object_get(a, "rsd");
    s->hll_p = sl__hll_p_for_rsd(0.05);
    if (rsd) {
        snprintf(pf, sizeof(pf), "%s.rsd", p);
        if (f != SL_AGG_APPROX_COUNT_DISTINCT)
            sl__conf_problem(ck, pf,
                             "only approx_count_distinct has a relative standard deviation");
        else if (!json_is_number(rsd) || json_number_value(rsd) < 0.005 ||
                 json_number_value(rsd) > 0.4)
            sl__conf_problem(ck, pf, "must be a number from 0.005 to 0.4 (default 0.05)");
        else
            s->hll_p = sl__hll_p_for_rsd(json_number_value(rsd));
    }
    snprintf(pf, sizeof(pf), "%s.by", p);
    const char *by = sl__conf_get_string(ck, a, "by", pf, 0);
    if (f == SL_AGG_FIRST || f == SL_AGG_LAST) {
        sl_type_t t;
        if (by)
            s->time_slot = value_slot(ck, by, NULL, pf, &t);
        else
            s->time_slot = c->plan.time_slot >= 0 ? c->plan.time_slot : c->plan.wm_slot;
        if (s->time_slot < 0 && !by)
            sl__conf_problem(ck, p, "%s needs an event time: set \"by\", a window or a watermark",
                             fn);
        else if (by && s->time_slot >= 0 && !sl__type_integral(t))
            sl__conf_problem(ck, pf, "the event time must be a timestamp or a long; '%s' is a %s",
                             by, sl__type_name(t));
    } else if (by) {
        sl__conf_problem(ck, pf, "only first and last are ordered by an event time");
    }
    snprintf(pf, sizeof(pf), "%s.as", p);
    const char *as = sl__conf_get_string(ck, a, "as", pf, 0);
    char def[300];
    if (!as) {
        if (field)
            snprintf(def, sizeof(def), "%s_%s", fn, field);
        else
            snprintf(def, sizeof(def), "%s", fn);
        for (char *d = def; *d; d++) {
            if (!isalnum((unsigned char)*d))
                *d = '_';
        }
        as = def;
    }
    s->as = strdup(as);
    c->plan.naggs++;
}

void sl__conf_parse_query(checker_t *ck, json_t *root)
{
    sl_conf_t *c = ck->c;
    json_t *q = sl__conf_get_object(ck, root, "query", "query", 1);
    if (!q)
        return;
    static const char *const keys[] = {"fields", "where",     "select",     "group_by",
                                       "window", "watermark", "aggregates", NULL};
    sl__conf_check_keys(ck, q, "query", keys);
    if (!c->source.codec)
        return; /* the source's problem was reported; fields cannot be checked */
    int n;
    sl__codec_fields(c->source.codec, &n);
    c->plan.nfields = n;
    c->plan.meta_base = n;
    c->plan.nslots = n + SL_META_COUNT + c->source.nheaders;
    parse_fields(ck, q);

    const char *where = sl__conf_get_string(ck, q, "where", "query.where", 0);
    if (where) {
        char err[512];
        c->plan.where_text = strdup(where);
        if (sl__expr_parse(where, field_lookup, c, &c->plan.where, err, sizeof(err)) != SL_OK)
            sl__conf_problem(ck, "query.where", "%s", err);
    }
    parse_window(ck, q);
    parse_watermark(ck, q);

    json_t *gb = json_object_get(q, "group_by");
    json_t *aggs = json_object_get(q, "aggregates");
    json_t *sel = json_object_get(q, "select");
    c->plan.aggregating = gb || aggs || c->plan.window;
    if (json_is_string(gb)) {
        json_t *arr = json_pack("[O]", gb);
        json_object_set_new(q, "group_by", arr);
        gb = arr;
    }
    if (gb && (!json_is_array(gb) || (json_array_size(gb) == 0 && !c->plan.window))) {
        sl__conf_problem(ck, "query.group_by",
                         "must be a field name, an expression, or a list of them");
    } else if (gb) {
        size_t ng = json_array_size(gb);
        if (ng > 64)
            sl__conf_problem(ck, "query.group_by", "at most 64 values");
        c->plan.group_slots = calloc(ng + 1, sizeof(int));
        c->plan.group_names = calloc(ng + 1, sizeof(char *));
        size_t i;
        json_t *g;
        json_array_foreach(gb, i, g)
        {
            char p[64];
            snprintf(p, sizeof(p), "query.group_by[%zu]", i);
            sl_type_t t;
            const char *name = NULL;
            int slot = named_value(ck, g, p, &t, &name);
            if (slot >= 0 && c->plan.group_slots && c->plan.group_names) {
                c->plan.group_slots[c->plan.ngroup] = slot;
                c->plan.group_names[c->plan.ngroup++] = strdup(name);
            }
        }
    } else if (aggs && !c->plan.window) {
        sl__conf_problem(ck, "query.group_by",
                         "missing: a field name or a list of them (or a window)");
    }

    if (sel && c->plan.aggregating) {
        sl__conf_problem(ck, "query.select",
                         "a query with group_by, window or aggregates outputs the "
                         "group and the aggregates; select is for queries without "
                         "aggregation");
    } else if (sel) {
        if (!json_is_array(sel) || json_array_size(sel) == 0) {
            sl__conf_problem(ck, "query.select", "must be a list of fields or expressions");
        } else {
            c->plan.select_slots = calloc(json_array_size(sel), sizeof(int));
            c->plan.cols = calloc(json_array_size(sel), sizeof(sl_col_t));
            size_t i;
            json_t *it;
            json_array_foreach(sel, i, it)
            {
                char p[64];
                snprintf(p, sizeof(p), "query.select[%zu]", i);
                sl_type_t t;
                const char *name = NULL;
                int slot = named_value(ck, it, p, &t, &name);
                if (slot < 0 || !c->plan.select_slots || !c->plan.cols)
                    continue;
                int nullable;
                sl__conf_slot_type(c, slot, &nullable);
                c->plan.cols[c->plan.ncols] = (sl_col_t){.name = strdup(name),
                                               .type = t,
                                               .nullable = nullable,
                                               .kind = SL_COL_SELECT,
                                               .idx = c->plan.nselect};
                c->plan.ncols++;
                c->plan.select_slots[c->plan.nselect++] = slot;
            }
        }
    } else if (!c->plan.aggregating) {
        sl__conf_problem(ck, "query",
                         "nothing to output: give group_by and aggregates (an "
                         "aggregation) or select (records passed through)");
    }

    if (!c->plan.aggregating)
        return;
    if (!json_is_array(aggs) || json_array_size(aggs) == 0) {
        sl__conf_problem(ck, "query.aggregates", "missing: a list such as [{\"fn\": \"count\"}]");
        return;
    }
    c->plan.aggs = calloc(json_array_size(aggs), sizeof(sl_agg_spec_t));
    if (!c->plan.aggs)
        return;
    size_t i;
    json_t *a;
    json_array_foreach(aggs, i, a) parse_aggregate(ck, a, i);
}

/* Spark's rules for output modes, each refused with the reason and what to do instead. */
void sl__conf_check_mode(checker_t *ck)
{
    sl_conf_t *c = ck->c;
    if (c->plan.mode == SL_MODE_COMPLETE && !c->plan.aggregating)
        sl__conf_problem(ck, "output.mode",
                         "complete mode outputs the whole result table, so it needs "
                         "an aggregation (group_by and aggregates); use append or "
                         "update for records passed through");
    /* A window or watermark whose time was refused has its problem reported already:
     * comparing it with the other would only add a confusing second one. */
    int times_known =
        (c->plan.window == SL_WIN_NONE || c->plan.time_slot >= 0) && !ck->wm_refused;
    if (c->plan.mode == SL_MODE_APPEND && c->plan.aggregating && times_known) {
        if (c->plan.wm_slot < 0 || c->plan.window == SL_WIN_NONE)
            sl__conf_problem(ck, "output.mode",
                             "append mode emits a row once, when it can no longer "
                             "change, so an aggregation needs a window and a "
                             "watermark on its event time (or use update mode)");
        else if (c->plan.wm_slot != c->plan.time_slot)
            sl__conf_problem(ck, "query.watermark.field",
                             "append mode needs the watermark on the "
                             "window's event time ('%s')",
                             sl__conf_slot_name(c, c->plan.time_slot));
    }
    if (c->plan.window != SL_WIN_NONE && c->plan.wm_slot >= 0 && times_known && c->plan.wm_slot != c->plan.time_slot &&
        c->plan.mode != SL_MODE_APPEND)
        sl__conf_problem(ck, "query.watermark.field",
                         "the watermark must be on the window's event "
                         "time ('%s') to close windows",
                         sl__conf_slot_name(c, c->plan.time_slot));
    if (c->plan.wm_slot >= 0 && c->plan.window == SL_WIN_NONE)
        sl__conf_problem(ck, "query.watermark",
                         "a watermark closes windows; add a window (a watermark "
                         "without one would change nothing)");
}

/* The output columns of an aggregation: window, group values, aggregates. */
void sl__conf_build_columns(checker_t *ck)
{
    sl_conf_t *c = ck->c;
    if (!c->plan.aggregating)
        return;
    int n = (c->plan.window ? 2 : 0) + c->plan.ngroup + c->plan.naggs;
    c->plan.cols = calloc((size_t)n, sizeof(sl_col_t));
    if (!c->plan.cols)
        return;
    if (c->plan.window) {
        c->plan.cols[c->plan.ncols++] = (sl_col_t){
            .name = strdup("window_start"), .type = SL_T_TIMESTAMP, .kind = SL_COL_WSTART};
        c->plan.cols[c->plan.ncols++] =
            (sl_col_t){.name = strdup("window_end"), .type = SL_T_TIMESTAMP, .kind = SL_COL_WEND};
    }
    for (int i = 0; i < c->plan.ngroup; i++) {
        int nullable;
        sl_type_t t = sl__conf_slot_type(c, c->plan.group_slots[i], &nullable);
        c->plan.cols[c->plan.ncols++] = (sl_col_t){.name = strdup(c->plan.group_names[i]),
                                         .type = t,
                                         .nullable = nullable,
                                         .kind = SL_COL_KEY,
                                         .idx = i};
    }
    c->plan.nkeycols = c->plan.ncols;
    for (int i = 0; i < c->plan.naggs; i++) {
        const sl_agg_spec_t *s = &c->plan.aggs[i];
        int nullable = s->fn != SL_AGG_COUNT && s->fn != SL_AGG_COUNT_DISTINCT &&
                       s->fn != SL_AGG_APPROX_COUNT_DISTINCT;
        c->plan.cols[c->plan.ncols++] = (sl_col_t){.name = strdup(s->as),
                                         .type = sl__agg_result_type(s),
                                         .nullable = nullable,
                                         .kind = SL_COL_AGG,
                                         .idx = i};
    }
}

/* Column names must be unique, and Avro names when the output is Avro. */
void sl__conf_check_columns(checker_t *ck)
{
    sl_conf_t *c = ck->c;
    for (int i = 0; i < c->plan.ncols; i++) {
        const sl_col_t *col = &c->plan.cols[i];
        char p[64];
        switch (col->kind) {
        case SL_COL_KEY:
            snprintf(p, sizeof(p), "query.group_by[%d]", col->idx);
            break;
        case SL_COL_AGG:
            snprintf(p, sizeof(p), "query.aggregates[%d].as", col->idx);
            break;
        case SL_COL_SELECT:
            snprintf(p, sizeof(p), "query.select[%d]", col->idx);
            break;
        default:
            snprintf(p, sizeof(p), "query.window");
            break;
        }
        if (c->output.format == SL_OUT_AVRO && !sl__conf_valid_name(col->name))
            sl__conf_problem(ck, p,
                             "'%s' is not a valid Avro field name for the Avro output "
                             "([A-Za-z_][A-Za-z0-9_]*); name it with {\"expr\": ..., \"as\": ...}",
                             col->name);
        for (int j = 0; j < i; j++) {
            if (!strcmp(col->name, c->plan.cols[j].name))
                sl__conf_problem(ck, p, "output column '%s' appears twice; name it with \"as\"",
                                 col->name);
        }
    }
}
