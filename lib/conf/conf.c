/*
 * conf.c - reads a job file into sl_conf_t.
 *
 * The checker does not stop at the first problem: a user fixing a job file wants the
 * whole list, each line naming the file, the path of the field ("query.group_by[1]") and
 * what is wrong with it. Unknown keys are errors too, since a misspelt optional key
 * would otherwise be ignored silently.
 */
#include "conf.h"

#include <ctype.h>
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf_int.h"
#include "query/window.h"
#include "util.h"

void sl__conf_problem(checker_t *ck, const char *path, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    sl__buf_printf(&ck->errs, "%s%s: %s: %s", ck->nerrs ? "\n" : "", ck->c->origin, path, msg);
    ck->nerrs++;
}

void sl__conf_check_keys(checker_t *ck, json_t *obj, const char *path, const char *const *allowed)
{
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        int ok = 0;
        for (const char *const *a = allowed; *a; a++)
            ok |= !strcmp(*a, key);
        if (!ok) {
            char known[512] = "";
            for (const char *const *a = allowed; *a; a++)
                sl__strlcatf(known, sizeof(known), "%s%s", a == allowed ? "" : ", ", *a);
            sl__conf_problem(ck, path, "unknown key '%s' (known: %s)", key, known);
        }
    }
}

json_t *sl__conf_get_object(checker_t *ck, json_t *parent, const char *key, const char *path,
                            int required)
{
    json_t *v = json_object_get(parent, key);
    if (!v) {
        if (required)
            sl__conf_problem(ck, path, "missing (an object)");
        return NULL;
    }
    if (!json_is_object(v)) {
        sl__conf_problem(ck, path, "must be an object");
        return NULL;
    }
    return v;
}

const char *sl__conf_get_string(checker_t *ck, json_t *parent, const char *key, const char *path,
                                int required)
{
    json_t *v = json_object_get(parent, key);
    if (!v) {
        if (required)
            sl__conf_problem(ck, path, "missing (a string)");
        return NULL;
    }
    if (!json_is_string(v) || json_string_length(v) == 0) {
        sl__conf_problem(ck, path, "must be a non-empty string");
        return NULL;
    }
    return json_string_value(v);
}

char *sl__conf_join_path(const char *base, const char *rel)
{
    if (rel[0] == '/' || !base)
        return strdup(rel);
    size_t n = strlen(base) + strlen(rel) + 2;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/%s", base, rel);
    return p;
}

/* Kafka property values may be written as JSON strings, numbers or booleans. */
static void read_props(checker_t *ck, json_t *obj, const char *path, sl_kvs_t *out,
                       const char *const *skip)
{
    out->kv = calloc(json_object_size(obj) + 1, sizeof(sl_kv_t));
    if (!out->kv)
        return;
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        int skipped = 0;
        for (const char *const *s = skip; s && *s; s++)
            skipped |= !strcmp(*s, key);
        if (skipped)
            continue;
        char val[64];
        const char *sv = NULL;
        if (json_is_string(v)) {
            sv = json_string_value(v);
        } else if (json_is_integer(v)) {
            snprintf(val, sizeof(val), "%lld", (long long)json_integer_value(v));
            sv = val;
        } else if (json_is_real(v)) {
            snprintf(val, sizeof(val), "%g", json_real_value(v));
            sv = val;
        } else if (json_is_boolean(v)) {
            sv = json_is_true(v) ? "true" : "false";
        } else {
            char p[256];
            snprintf(p, sizeof(p), "%s[\"%s\"]", path, key);
            sl__conf_problem(ck, p, "a Kafka property must be a string, number or boolean");
            continue;
        }
        out->kv[out->n].k = strdup(key);
        out->kv[out->n].v = strdup(sv);
        out->n++;
    }
}

int sl__conf_duration(json_t *v, int64_t *out)
{
    if (json_is_integer(v)) {
        *out = json_integer_value(v);
        return *out >= 0 && *out <= SL_DURATION_MAX ? 0 : -1;
    }
    if (!json_is_string(v))
        return -1;
    const char *s = json_string_value(v);
    char *end;
    errno = 0;
    double d = strtod(s, &end);
    if (end == s || errno || d < 0)
        return -1;
    while (isspace((unsigned char)*end))
        end++;
    double mul;
    if (!strcmp(end, "ms"))
        mul = 1;
    else if (!strcmp(end, "s") || !strcmp(end, "seconds") || !strcmp(end, "second"))
        mul = 1000;
    else if (!strcmp(end, "m") || !strcmp(end, "min") || !strcmp(end, "minutes"))
        mul = 60000;
    else if (!strcmp(end, "h") || !strcmp(end, "hours"))
        mul = 3600000;
    else
        return -1;
    if (!(d * mul <= (double)SL_DURATION_MAX)) /* also NaN */
        return -1;
    *out = (int64_t)(d * mul);
    return 0;
}

/* Kafka is needed by a Kafka source or sink, and by the side topics. */
static int needs_kafka(json_t *root)
{
    json_t *src = json_object_get(root, "source"), *out = json_object_get(root, "output");
    json_t *type = json_object_get(src, "type"), *sink = json_object_get(out, "sink");
    json_t *bad = json_object_get(src, "on_decode_error");
    json_t *wm = json_object_get(json_object_get(root, "query"), "watermark");
    return !json_is_string(type) || !strcmp(json_string_value(type), "kafka") ||
           (json_is_string(sink) && !strcmp(json_string_value(sink), "kafka")) ||
           json_is_object(bad) || json_object_get(wm, "late_topic");
}

static void parse_kafka(checker_t *ck, json_t *root)
{
    sl_conf_t *c = ck->c;
    int needed = needs_kafka(root);
    json_t *kafka = sl__conf_get_object(ck, root, "kafka", "kafka", needed);
    if (!kafka)
        return;
    static const char *const nested[] = {"consumer", "producer", NULL};
    read_props(ck, kafka, "kafka", &c->kafka.props, nested);
    json_t *cons = sl__conf_get_object(ck, kafka, "consumer", "kafka.consumer", 0);
    json_t *prod = sl__conf_get_object(ck, kafka, "producer", "kafka.producer", 0);
    if (cons)
        read_props(ck, cons, "kafka.consumer", &c->kafka.consumer, NULL);
    if (prod)
        read_props(ck, prod, "kafka.producer", &c->kafka.producer, NULL);
    for (int i = 0; i < c->kafka.props.n; i++) {
        if (!strcmp(c->kafka.props.kv[i].k, "bootstrap.servers"))
            c->kafka.bootstrap = c->kafka.props.kv[i].v;
    }
    if ((!c->kafka.bootstrap || !*c->kafka.bootstrap) && needed)
        sl__conf_problem(ck, "kafka[\"bootstrap.servers\"]",
                         "missing: which brokers to connect to");
    static const char *const owned[] = {"enable.auto.commit", "enable.auto.offset.store",
                                        "transactional.id", NULL};
    for (int i = 0; i < c->kafka.consumer.n + c->kafka.props.n; i++) {
        const char *k = i < c->kafka.props.n ? c->kafka.props.kv[i].k : c->kafka.consumer.kv[i - c->kafka.props.n].k;
        for (const char *const *o = owned; *o; o++) {
            if (!strcmp(*o, k))
                sl__conf_problem(ck, "kafka",
                                 "'%s' is managed by sluice (positions live in the state "
                                 "store) and cannot be set",
                                 k);
        }
    }
}

static void parse_trigger(checker_t *ck, json_t *root)
{
    sl_conf_t *c = ck->c;
    c->trigger.interval_ms = 2000;
    c->trigger.max_records = 0;
    c->trigger.max_keys = SL_DEFAULT_MAX_KEYS;
    json_t *t = sl__conf_get_object(ck, root, "trigger", "trigger", 0);
    if (!t)
        return;
    static const char *const keys[] = {
        "interval",      "max_records", "min_records", "max_trigger_delay",
        "available_now", "max_keys",    NULL};
    sl__conf_check_keys(ck, t, "trigger", keys);
    json_t *mn = json_object_get(t, "min_records");
    if (mn) {
        if (!json_is_integer(mn) || json_integer_value(mn) <= 0)
            sl__conf_problem(ck, "trigger.min_records", "must be a positive integer");
        else
            c->trigger.min_records = json_integer_value(mn);
    }
    c->trigger.max_trigger_delay_ms = 15 * 60000; /* Spark's default maxTriggerDelay */
    json_t *md = json_object_get(t, "max_trigger_delay");
    if (md && !mn)
        sl__conf_problem(ck, "trigger.max_trigger_delay", "only with min_records");
    else if (md && sl__conf_duration(md, &c->trigger.max_trigger_delay_ms) < 0)
        sl__conf_problem(ck, "trigger.max_trigger_delay", "must be a duration such as \"30s\"");
    json_t *iv = json_object_get(t, "interval");
    if (iv && (sl__conf_duration(iv, &c->trigger.interval_ms) < 0 || c->trigger.interval_ms == 0))
        sl__conf_problem(
            ck, "trigger.interval",
            "must be a duration such as \"2s\", \"500ms\" or \"1m\" (or milliseconds)");
    json_t *mr = json_object_get(t, "max_records");
    if (mr) {
        if (!json_is_integer(mr) || json_integer_value(mr) <= 0)
            sl__conf_problem(ck, "trigger.max_records", "must be a positive integer");
        else
            c->trigger.max_records = json_integer_value(mr);
    }
    json_t *mk = json_object_get(t, "max_keys");
    if (mk) {
        if (!json_is_integer(mk) || json_integer_value(mk) < 1000)
            sl__conf_problem(ck, "trigger.max_keys", "must be an integer of at least 1000");
        else
            c->trigger.max_keys = json_integer_value(mk);
    }
    json_t *an = json_object_get(t, "available_now");
    if (an && !json_is_boolean(an))
        sl__conf_problem(ck, "trigger.available_now", "must be true or false");
    c->trigger.available_now = json_is_true(an);
    if (c->trigger.available_now && c->trigger.min_records)
        sl__conf_problem(ck, "trigger.min_records", "an available-now job reads what there is");
    if (c->trigger.max_records && c->trigger.min_records > c->trigger.max_records)
        sl__conf_problem(ck, "trigger.min_records", "must not exceed max_records");
}

const char *sl__mode_name(sl_mode_t m)
{
    return m == SL_MODE_COMPLETE ? "complete" : m == SL_MODE_APPEND ? "append" : "update";
}

static void parse_output(checker_t *ck, json_t *root)
{
    sl_conf_t *c = ck->c;
    json_t *o = sl__conf_get_object(ck, root, "output", "output", 1);
    if (!o)
        return;
    static const char *const keys[] = {"mode", "sink", "topic", "format", "delivery", "path", NULL};
    sl__conf_check_keys(ck, o, "output", keys);
    const char *delivery = sl__conf_get_string(ck, o, "delivery", "output.delivery", 0);
    if (delivery && strcmp(delivery, "exactly-once") && strcmp(delivery, "at-least-once"))
        sl__conf_problem(ck, "output.delivery",
                         "must be \"exactly-once\" or \"at-least-once\", not '%s'", delivery);
    c->output.exactly_once = !delivery || !strcmp(delivery, "exactly-once");
    const char *mode = sl__conf_get_string(ck, o, "mode", "output.mode", 0);
    c->plan.mode = SL_MODE_UPDATE;
    if (mode && !strcmp(mode, "complete"))
        c->plan.mode = SL_MODE_COMPLETE;
    else if (mode && !strcmp(mode, "append"))
        c->plan.mode = SL_MODE_APPEND;
    else if (mode && strcmp(mode, "update"))
        sl__conf_problem(ck, "output.mode", "unknown mode '%s' (update, complete or append)", mode);
    const char *sink = sl__conf_get_string(ck, o, "sink", "output.sink", 1);
    static const struct {
        const char *name;
        sl_sink_kind_t kind;
    } sinks[] = {{"kafka", SL_SINK_KAFKA},
                 {"console", SL_SINK_CONSOLE},
                 {"file", SL_SINK_FILE},
                 {"memory", SL_SINK_MEMORY},
                 {"foreach", SL_SINK_FOREACH}};
    int found = -1;
    for (size_t i = 0; sink && i < SL_ARRAY_LEN(sinks); i++) {
        if (!strcmp(sinks[i].name, sink))
            found = (int)i;
    }
    if (sink && found < 0)
        sl__conf_problem(ck, "output.sink",
                         "unknown sink '%s' (kafka, console, file, memory or "
                         "foreach)",
                         sink);
    if (found >= 0)
        c->output.sink = sinks[found].kind;
    if (found >= 0 && c->output.sink == SL_SINK_KAFKA) {
        const char *topic = sl__conf_get_string(ck, o, "topic", "output.topic", 1);
        if (topic)
            c->output.topic = strdup(topic);
    } else if (found >= 0) {
        if (json_object_get(o, "topic"))
            sl__conf_problem(ck, "output.topic", "only the kafka sink has a topic");
        /* The changelog of a Kafka source's job is published the same way. */
        if (delivery && c->source.kind != SL_SRC_KAFKA)
            sl__conf_problem(ck, "output.delivery",
                             "only a job that writes to Kafka (the kafka sink, or the changelog "
                             "of a Kafka source's state) has a delivery setting");
    }
    if (found >= 0 && c->output.sink == SL_SINK_FILE) {
        const char *path = sl__conf_get_string(ck, o, "path", "output.path", 1);
        if (path)
            c->output.path = sl__conf_join_path(c->base_dir, path);
    } else if (json_object_get(o, "path")) {
        sl__conf_problem(ck, "output.path", "only the file sink has a path");
    }
    const char *fmt = sl__conf_get_string(ck, o, "format", "output.format", 0);
    if (fmt && strcmp(fmt, "json") && strcmp(fmt, "avro"))
        sl__conf_problem(ck, "output.format", "unknown format '%s' (json or avro)", fmt);
    c->output.format = fmt && !strcmp(fmt, "avro") ? SL_OUT_AVRO : SL_OUT_JSON;
    if (c->output.format == SL_OUT_AVRO && found >= 0 && c->output.sink != SL_SINK_KAFKA)
        sl__conf_problem(ck, "output.format", "only the kafka sink writes Avro");
}

static sl_err_t describe(sl_conf_t *c)
{
    json_t *d = json_object();
    json_t *gb = json_array();
    json_t *ag = json_array();
    json_object_set_new(d, "group_by", gb);
    json_object_set_new(d, "aggregates", ag);
    /* In the order of the state's keys: the group values, then the window's start. */
    for (int i = 0; i < c->plan.ngroup; i++) {
        int nullable;
        sl_type_t t = sl__conf_slot_type(c, c->plan.group_slots[i], &nullable);
        json_array_append_new(
            gb, json_pack("{s:s,s:s}", "name", c->plan.group_names[i], "type", sl__type_name(t)));
    }
    if (c->plan.window)
        json_array_append_new(gb,
                              json_pack("{s:s,s:s}", "name", "window_start", "type", "timestamp"));
    for (int i = 0; i < c->plan.naggs; i++) {
        const sl_agg_spec_t *s = &c->plan.aggs[i];
        json_t *a = json_pack("{s:s,s:s?,s:s,s:s}", "fn", sl__agg_fn_name(s->fn), "field",
                              s->slot >= 0 ? sl__conf_slot_name(c, s->slot) : NULL, "in",
                              sl__type_name(s->in_type), "as", s->as);
        if (s->fn == SL_AGG_APPROX_COUNT_DISTINCT)
            json_object_set_new(a, "p", json_integer(s->hll_p));
        if (s->time_slot >= 0)
            json_object_set_new(a, "by", json_string(sl__conf_slot_name(c, s->time_slot)));
        json_array_append_new(ag, a);
    }
    json_t *fields = json_object();
    for (int i = 0; i < c->plan.nderived; i++)
        json_object_set_new(fields, c->plan.derived[i].name,
                            json_pack("{s:s,s:s}", "expr", c->plan.derived[i].text, "type",
                                      sl__type_name(sl__expr_type(c->plan.derived[i].expr))));
    json_object_set_new(d, "fields", fields);
    if (c->plan.window) {
        json_t *w = json_pack(
            "{s:s,s:s,s:I}", "kind", c->plan.window == SL_WIN_SESSION ? "session" : "sliding", "time",
            sl__conf_slot_name(c, c->plan.time_slot), "size", (json_int_t)c->plan.win_size_ms);
        if (c->plan.window == SL_WIN_SLIDING) {
            json_object_set_new(w, "slide", json_integer(c->plan.win_slide_ms));
            json_object_set_new(w, "offset", json_integer(c->plan.win_offset_ms));
        }
        json_object_set_new(d, "window", w);
    }
    json_object_set_new(d, "output_mode", json_string(sl__mode_name(c->plan.mode)));
    if (c->plan.wm_slot >= 0)
        json_object_set_new(d, "watermark", json_string(sl__conf_slot_name(c, c->plan.wm_slot)));
    if (!c->plan.aggregating) {
        json_t *sel = json_array();
        for (int i = 0; i < c->plan.ncols; i++)
            json_array_append_new(sel, json_string(c->plan.cols[i].name));
        json_object_set_new(d, "select", sel);
    }
    /* A state split by partition holds other keys in each task than one for all. */
    if (c->source.co_partitioned)
        json_object_set_new(d, "tasks", json_string("by partition"));
    /* The fingerprint covers what the stored state depends on. A new filter, watermark
     * delay, trigger or sink is a compatible change, as in Spark. */
    char *shape = json_dumps(d, JSON_SORT_KEYS | JSON_COMPACT);
    json_object_set_new(d, "where", c->plan.where_text ? json_string(c->plan.where_text) : json_null());
    c->query_desc = json_dumps(d, JSON_SORT_KEYS | JSON_COMPACT);
    json_decref(d);
    if (!c->query_desc || !shape) {
        free(shape);
        return SL_ERR_NOMEM;
    }
    const char *schema = sl__codec_canonical(c->source.codec);
    sl_buf_t b;
    sl__buf_init(&b);
    sl__buf_printf(&b, "%s\n%s", shape, schema);
    c->fingerprint = sl__hash(b.p, b.len);
    sl__buf_fini(&b);
    free(shape);
    return SL_OK;
}

/* state.changelog: on by default for a job that reads or writes Kafka. */
static void parse_changelog(checker_t *ck, json_t *state)
{
    sl_conf_t *c = ck->c;
    int kafka = c->source.kind == SL_SRC_KAFKA || c->output.sink == SL_SINK_KAFKA;
    json_t *cl = json_object_get(state, "changelog");
    if (cl && !json_is_boolean(cl))
        sl__conf_problem(ck, "state.changelog", "must be true or false");
    c->state.changelog = cl ? json_is_true(cl) : kafka;
    if (c->state.changelog && !kafka)
        sl__conf_problem(ck, "state.changelog",
                         "a job that neither reads nor writes Kafka has no changelog topic");
    if (c->source.co_partitioned && !c->state.changelog)
        sl__conf_problem(ck, "source.co_partitioned",
                         "a job split into tasks keeps their state in the changelog: "
                         "state.changelog must be true");
}

sl_err_t sl__conf_parse(const char *json, const char *base_dir, const char *origin,
                        sl_conf_t **confp, char *errstr, size_t errstr_size)
{
    *confp = NULL;
    checker_t ck = {0};
    sl__buf_init(&ck.errs);
    ck.c = calloc(1, sizeof(sl_conf_t));
    if (!ck.c) {
        snprintf(errstr, errstr_size, "out of memory");
        return SL_ERR_NOMEM;
    }
    sl_conf_t *c = ck.c;
    c->origin = strdup(origin ? origin : "job");
    c->base_dir = strdup(base_dir ? base_dir : ".");

    json_error_t jerr;
    json_t *root = json_loads(json, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        sl__conf_problem(&ck, "(file)", "not valid JSON: %s at line %d, column %d", jerr.text,
                         jerr.line, jerr.column);
        goto done;
    }
    if (!json_is_object(root)) {
        sl__conf_problem(&ck, "(file)", "a job must be a JSON object");
        goto done;
    }
    static const char *const keys[] = {"name",    "kafka",  "source", "query",
                                       "trigger", "output", "state",  NULL};
    sl__conf_check_keys(&ck, root, "(top level)", keys);
    const char *name = sl__conf_get_string(&ck, root, "name", "name", 1);
    if (name) {
        c->name = strdup(name);
        for (const char *p = name; *p; p++) {
            if (!(isalnum((unsigned char)*p) || strchr("._-", *p))) {
                sl__conf_problem(&ck, "name",
                                 "'%s' may hold only letters, digits, '.', '_' and '-' "
                                 "(it names the consumer group)",
                                 name);
                break;
            }
        }
    }
    parse_kafka(&ck, root);
    sl__conf_parse_source(&ck, root);
    sl__conf_parse_query(&ck, root);
    parse_trigger(&ck, root);
    parse_output(&ck, root);
    json_t *state = sl__conf_get_object(&ck, root, "state", "state", 1);
    if (state) {
        static const char *const skeys[] = {"dir", "changelog", NULL};
        sl__conf_check_keys(&ck, state, "state", skeys);
        const char *dir = sl__conf_get_string(&ck, state, "dir", "state.dir", 1);
        if (dir)
            c->state.dir = sl__conf_join_path(c->base_dir, dir);
        parse_changelog(&ck, state);
    }
    if (c->source.codec)
        sl__conf_check_mode(&ck);
    if (!ck.nerrs) {
        sl__conf_build_columns(&ck);
        sl__conf_check_columns(&ck);
        for (int i = 0; i < c->plan.ncols; i++) {
            sl_col_t *col = &c->plan.cols[i];
            sl_buf_t b;
            sl__buf_init(&b);
            if (sl__buf_json_string(&b, col->name, strlen(col->name)) ||
                sl__buf_append(&b, ":", 2)) {
                sl__buf_fini(&b);
                sl__conf_problem(&ck, "(job)", "out of memory");
                break;
            }
            col->json = (char *)b.p;
            col->json_len = b.len - 1;
        }
    }
    if (!ck.nerrs && c->source.codec) {
        char err[512] = "";
        if (sl__codec_prepare(c->source.codec, err, sizeof(err)) != SL_OK)
            sl__conf_problem(
                &ck,
                c->source.codec && json_object_get(json_object_get(root, "source"), "writer_schema")
                    ? "source.writer_schema"
                    : "source",
                "%s", err);
    }
    if (!ck.nerrs && describe(c) != SL_OK)
        sl__conf_problem(&ck, "(job)", "out of memory");
done:
    json_decref(root);
    if (ck.nerrs) {
        snprintf(errstr, errstr_size, "%.*s", (int)ck.errs.len, (const char *)ck.errs.p);
        sl__buf_fini(&ck.errs);
        sl__conf_destroy(c);
        return SL_ERR_INVAL;
    }
    sl__buf_fini(&ck.errs);
    *confp = c;
    return SL_OK;
}

static void free_kvs(sl_kvs_t *kvs)
{
    for (int i = 0; i < kvs->n; i++) {
        free(kvs->kv[i].k);
        free(kvs->kv[i].v);
    }
    free(kvs->kv);
}

void sl__conf_destroy(sl_conf_t *c)
{
    if (!c)
        return;
    free(c->origin);
    free(c->base_dir);
    free(c->name);
    free_kvs(&c->kafka.props);
    free_kvs(&c->kafka.consumer);
    free_kvs(&c->kafka.producer);
    for (int i = 0; i < c->source.ntopics; i++)
        free(c->source.topics[i]);
    free(c->source.topics);
    free(c->source.pattern);
    free(c->source.path);
    free(c->source.host);
    for (int i = 0; i < c->source.nstart_at; i++)
        free(c->source.start_at[i].topic);
    free(c->source.start_at);
    for (int i = 0; i < c->source.nheaders; i++)
        free(c->source.headers[i]);
    free(c->source.headers);
    sl__codec_destroy(c->source.codec);
    free(c->source.dead_letter_topic);
    sl__expr_destroy(c->plan.where);
    free(c->plan.where_text);
    free(c->plan.group_slots);
    for (int i = 0; c->plan.group_names && i < c->plan.ngroup; i++)
        free(c->plan.group_names[i]);
    free(c->plan.group_names);
    for (int i = 0; i < c->plan.naggs; i++)
        free(c->plan.aggs[i].as);
    free(c->plan.aggs);
    free(c->plan.select_slots);
    for (int i = 0; i < c->plan.ncols; i++) {
        free(c->plan.cols[i].name);
        free(c->plan.cols[i].json);
    }
    free(c->plan.cols);
    for (int i = 0; i < c->plan.nderived; i++) {
        free(c->plan.derived[i].name);
        free(c->plan.derived[i].text);
        sl__expr_destroy(c->plan.derived[i].expr);
    }
    free(c->plan.derived);
    free(c->plan.late_topic);
    free(c->output.path);
    free(c->output.topic);
    free(c->state.dir);
    free(c->query_desc);
    free(c);
}
