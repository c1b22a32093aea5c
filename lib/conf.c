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

#include "util/util.h"

typedef struct checker {
    sl_conf_t *c;
    sl_buf_t errs;
    int nerrs;
} checker_t;

static void problem(checker_t *ck, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void problem(checker_t *ck, const char *path, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    sl__buf_printf(&ck->errs, "%s%s: %s: %s", ck->nerrs ? "\n" : "", ck->c->origin, path, msg);
    ck->nerrs++;
}

static void check_keys(checker_t *ck, json_t *obj, const char *path, const char *const *allowed)
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
            problem(ck, path, "unknown key '%s' (known: %s)", key, known);
        }
    }
}

static json_t *get_object(checker_t *ck, json_t *parent, const char *key, const char *path,
                          int required)
{
    json_t *v = json_object_get(parent, key);
    if (!v) {
        if (required)
            problem(ck, path, "missing (an object)");
        return NULL;
    }
    if (!json_is_object(v)) {
        problem(ck, path, "must be an object");
        return NULL;
    }
    return v;
}

static const char *get_string(checker_t *ck, json_t *parent, const char *key, const char *path,
                              int required)
{
    json_t *v = json_object_get(parent, key);
    if (!v) {
        if (required)
            problem(ck, path, "missing (a string)");
        return NULL;
    }
    if (!json_is_string(v) || json_string_length(v) == 0) {
        problem(ck, path, "must be a non-empty string");
        return NULL;
    }
    return json_string_value(v);
}

static char *join_path(const char *base, const char *rel)
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
            problem(ck, p, "a Kafka property must be a string, number or boolean");
            continue;
        }
        out->kv[out->n].k = strdup(key);
        out->kv[out->n].v = strdup(sv);
        out->n++;
    }
}

static int parse_duration_ms(json_t *v, int64_t *out)
{
    if (json_is_integer(v)) {
        *out = json_integer_value(v);
        return *out >= 0 ? 0 : -1;
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
    *out = (int64_t)(d * mul);
    return 0;
}

static void parse_kafka(checker_t *ck, json_t *root)
{
    sl_conf_t *c = ck->c;
    json_t *kafka = get_object(ck, root, "kafka", "kafka", 1);
    if (!kafka)
        return;
    static const char *const nested[] = {"consumer", "producer", NULL};
    read_props(ck, kafka, "kafka", &c->kafka, nested);
    json_t *cons = get_object(ck, kafka, "consumer", "kafka.consumer", 0);
    json_t *prod = get_object(ck, kafka, "producer", "kafka.producer", 0);
    if (cons)
        read_props(ck, cons, "kafka.consumer", &c->consumer, NULL);
    if (prod)
        read_props(ck, prod, "kafka.producer", &c->producer, NULL);
    for (int i = 0; i < c->kafka.n; i++) {
        if (!strcmp(c->kafka.kv[i].k, "bootstrap.servers"))
            c->bootstrap = c->kafka.kv[i].v;
    }
    if (!c->bootstrap || !*c->bootstrap)
        problem(ck, "kafka[\"bootstrap.servers\"]", "missing: which brokers to connect to");
    static const char *const owned[] = {"enable.auto.commit", "enable.auto.offset.store",
                                        "transactional.id", NULL};
    for (int i = 0; i < c->consumer.n + c->kafka.n; i++) {
        const char *k = i < c->kafka.n ? c->kafka.kv[i].k : c->consumer.kv[i - c->kafka.n].k;
        for (const char *const *o = owned; *o; o++) {
            if (!strcmp(*o, k))
                problem(ck, "kafka", "'%s' is managed by sluice (positions live in the state "
                                     "store) and cannot be set", k);
        }
    }
}

static char *load_schema_file(checker_t *ck, const char *rel, const char *path)
{
    char *full = join_path(ck->c->base_dir, rel);
    char *text = NULL;
    if (!full)
        return NULL;
    sl_err_t err = sl__read_file(full, &text, NULL);
    if (err == SL_ERR_NOTFOUND)
        problem(ck, path, "schema file '%s' does not exist", full);
    else if (err)
        problem(ck, path, "cannot read schema file '%s': %s", full, strerror(errno));
    free(full);
    return text;
}

static void parse_source(checker_t *ck, json_t *root)
{
    sl_conf_t *c = ck->c;
    json_t *src = get_object(ck, root, "source", "source", 1);
    if (!src)
        return;
    static const char *const keys[] = {"topics",          "format",          "schema",
                                       "writer_schema",   "confluent_wire",  "fields",
                                       "starting_offsets", "on_decode_error", NULL};
    check_keys(ck, src, "source", keys);

    json_t *topics = json_object_get(src, "topics");
    if (json_is_string(topics)) {
        c->topics = calloc(1, sizeof(char *));
        if (c->topics) {
            c->topics[0] = strdup(json_string_value(topics));
            c->ntopics = 1;
        }
    } else if (json_is_array(topics) && json_array_size(topics) > 0) {
        c->topics = calloc(json_array_size(topics), sizeof(char *));
        size_t i;
        json_t *t;
        json_array_foreach(topics, i, t)
        {
            if (!json_is_string(t) || json_string_length(t) == 0) {
                char p[64];
                snprintf(p, sizeof(p), "source.topics[%zu]", i);
                problem(ck, p, "must be a topic name");
            } else if (c->topics) {
                c->topics[c->ntopics++] = strdup(json_string_value(t));
            }
        }
    } else {
        problem(ck, "source.topics", "missing: a topic name or a list of them");
    }

    const char *fmt = get_string(ck, src, "format", "source.format", 0);
    char errbuf[512];
    if (!fmt || !strcmp(fmt, "avro")) {
        const char *schema = get_string(ck, src, "schema", "source.schema", 1);
        const char *writer = get_string(ck, src, "writer_schema", "source.writer_schema", 0);
        json_t *cw = json_object_get(src, "confluent_wire");
        if (cw && !json_is_boolean(cw))
            problem(ck, "source.confluent_wire", "must be true or false");
        char *rtext = schema ? load_schema_file(ck, schema, "source.schema") : NULL;
        char *wtext = writer ? load_schema_file(ck, writer, "source.writer_schema") : NULL;
        if (rtext && (!writer || wtext)) {
            errbuf[0] = 0;
            if (sl__codec_avro_new(rtext, wtext, json_is_true(cw), &c->codec, errbuf,
                                   sizeof(errbuf)) != SL_OK)
                problem(ck, "source.schema", "%s", errbuf);
        }
        free(rtext);
        free(wtext);
    } else if (!strcmp(fmt, "json")) {
        json_t *fields = json_object_get(src, "fields");
        errbuf[0] = 0;
        if (sl__codec_json_new(fields, &c->codec, errbuf, sizeof(errbuf)) != SL_OK)
            problem(ck, "source.fields", "%s", errbuf);
    } else {
        problem(ck, "source.format", "unknown format '%s' (avro or json)", fmt);
    }

    const char *so = get_string(ck, src, "starting_offsets", "source.starting_offsets", 0);
    if (so && strcmp(so, "earliest") && strcmp(so, "latest"))
        problem(ck, "source.starting_offsets", "must be \"earliest\" or \"latest\", not '%s'", so);
    c->starting_latest = so && !strcmp(so, "latest");

    json_t *bad = json_object_get(src, "on_decode_error");
    c->on_bad = SL_ON_BAD_FAIL;
    if (json_is_string(bad) && !strcmp(json_string_value(bad), "fail")) {
        c->on_bad = SL_ON_BAD_FAIL;
    } else if (json_is_string(bad) && !strcmp(json_string_value(bad), "skip")) {
        c->on_bad = SL_ON_BAD_SKIP;
    } else if (json_is_object(bad)) {
        static const char *const dk[] = {"dead_letter_topic", NULL};
        check_keys(ck, bad, "source.on_decode_error", dk);
        const char *t = get_string(ck, bad, "dead_letter_topic",
                                   "source.on_decode_error.dead_letter_topic", 1);
        if (t) {
            c->on_bad = SL_ON_BAD_DEAD_LETTER;
            c->dead_letter_topic = strdup(t);
        }
    } else if (bad) {
        problem(ck, "source.on_decode_error",
                "must be \"fail\", \"skip\" or {\"dead_letter_topic\": \"...\"}");
    }
}

static int field_lookup(void *opaque, const char *name, size_t len, sl_type_t *type)
{
    sl_codec_t *codec = opaque;
    int slot = sl__codec_field_slot(codec, name, len);
    int n;
    if (slot >= 0) {
        const sl_field_t *f = sl__codec_fields(codec, &n);
        *type = f[slot].type;
        char err[8];
        if (sl__codec_use(codec, slot, err, sizeof(err)) != SL_OK)
            return -1;
    }
    return slot;
}

static int use_field(checker_t *ck, const char *name, const char *path, sl_type_t *type)
{
    sl_codec_t *codec = ck->c->codec;
    int slot = sl__codec_field_slot(codec, name, strlen(name));
    if (slot < 0) {
        int n;
        const sl_field_t *f = sl__codec_fields(codec, &n);
        char known[512] = "";
        for (int i = 0; i < n; i++)
            sl__strlcatf(known, sizeof(known), "%s%s", i ? ", " : "", f[i].name);
        problem(ck, path, "unknown field '%s' (the input has: %s)", name, known);
        return -1;
    }
    char err[256];
    if (sl__codec_use(codec, slot, err, sizeof(err)) != SL_OK) {
        problem(ck, path, "%s", err);
        return -1;
    }
    int n;
    *type = sl__codec_fields(codec, &n)[slot].type;
    return slot;
}

static int valid_name(const char *s)
{
    if (!(isalpha((unsigned char)*s) || *s == '_'))
        return 0;
    for (s++; *s; s++) {
        if (!(isalnum((unsigned char)*s) || *s == '_'))
            return 0;
    }
    return 1;
}

static void parse_query(checker_t *ck, json_t *root)
{
    sl_conf_t *c = ck->c;
    json_t *q = get_object(ck, root, "query", "query", 1);
    if (!q)
        return;
    static const char *const keys[] = {"where", "group_by", "aggregates", NULL};
    check_keys(ck, q, "query", keys);
    if (!c->codec)
        return; /* the source's problem was reported; fields cannot be checked */

    const char *where = get_string(ck, q, "where", "query.where", 0);
    if (where) {
        char err[512];
        c->where_text = strdup(where);
        if (sl__expr_parse(where, field_lookup, c->codec, &c->where, err, sizeof(err)) != SL_OK)
            problem(ck, "query.where", "%s", err);
    }

    json_t *gb = json_object_get(q, "group_by");
    if (json_is_string(gb)) {
        json_t *arr = json_pack("[O]", gb);
        json_object_set_new(q, "group_by", arr);
        gb = arr;
    }
    if (!json_is_array(gb) || json_array_size(gb) == 0) {
        problem(ck, "query.group_by", "missing: a field name or a list of them");
    } else {
        c->group_slots = calloc(json_array_size(gb), sizeof(int));
        size_t i;
        json_t *g;
        json_array_foreach(gb, i, g)
        {
            char p[64];
            snprintf(p, sizeof(p), "query.group_by[%zu]", i);
            sl_type_t t;
            if (!json_is_string(g)) {
                problem(ck, p, "must be a field name");
                continue;
            }
            int slot = use_field(ck, json_string_value(g), p, &t);
            if (slot >= 0 && c->group_slots)
                c->group_slots[c->ngroup++] = slot;
        }
    }

    json_t *aggs = json_object_get(q, "aggregates");
    if (!json_is_array(aggs) || json_array_size(aggs) == 0) {
        problem(ck, "query.aggregates", "missing: a list such as [{\"fn\": \"count\"}]");
        return;
    }
    c->aggs = calloc(json_array_size(aggs), sizeof(sl_agg_spec_t));
    if (!c->aggs)
        return;
    size_t i;
    json_t *a;
    json_array_foreach(aggs, i, a)
    {
        char p[64], pf[80];
        snprintf(p, sizeof(p), "query.aggregates[%zu]", i);
        if (!json_is_object(a)) {
            problem(ck, p, "must be an object such as {\"fn\": \"sum\", \"field\": \"bytes\"}");
            continue;
        }
        static const char *const akeys[] = {"fn", "field", "as", NULL};
        check_keys(ck, a, p, akeys);
        snprintf(pf, sizeof(pf), "%s.fn", p);
        const char *fn = get_string(ck, a, "fn", pf, 1);
        if (!fn)
            continue;
        int f = sl__agg_fn_parse(fn);
        if (f < 0) {
            problem(ck, pf, "unknown aggregate '%s' (count, sum, min, max, avg)", fn);
            continue;
        }
        sl_agg_spec_t *s = &c->aggs[c->naggs];
        s->fn = (sl_agg_fn_t)f;
        s->slot = -1;
        s->in_type = SL_T_LONG;
        snprintf(pf, sizeof(pf), "%s.field", p);
        const char *field = get_string(ck, a, "field", pf, f != SL_AGG_COUNT);
        if (field) {
            s->slot = use_field(ck, field, pf, &s->in_type);
            if (s->slot < 0)
                continue;
            if ((f == SL_AGG_SUM || f == SL_AGG_AVG) && s->in_type != SL_T_LONG &&
                s->in_type != SL_T_DOUBLE) {
                problem(ck, pf, "%s needs a numeric field; '%s' is a %s", fn, field,
                        sl__type_name(s->in_type));
                continue;
            }
        } else if (f != SL_AGG_COUNT) {
            continue;
        }
        snprintf(pf, sizeof(pf), "%s.as", p);
        const char *as = get_string(ck, a, "as", pf, 0);
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
        c->naggs++;
    }
}

static void parse_trigger(checker_t *ck, json_t *root)
{
    sl_conf_t *c = ck->c;
    c->interval_ms = 2000;
    c->max_records = 0;
    json_t *t = get_object(ck, root, "trigger", "trigger", 0);
    if (!t)
        return;
    static const char *const keys[] = {"interval", "max_records", "available_now", NULL};
    check_keys(ck, t, "trigger", keys);
    json_t *iv = json_object_get(t, "interval");
    if (iv && (parse_duration_ms(iv, &c->interval_ms) < 0 || c->interval_ms == 0))
        problem(ck, "trigger.interval",
                "must be a duration such as \"2s\", \"500ms\" or \"1m\" (or milliseconds)");
    json_t *mr = json_object_get(t, "max_records");
    if (mr) {
        if (!json_is_integer(mr) || json_integer_value(mr) <= 0)
            problem(ck, "trigger.max_records", "must be a positive integer");
        else
            c->max_records = json_integer_value(mr);
    }
    json_t *an = json_object_get(t, "available_now");
    if (an && !json_is_boolean(an))
        problem(ck, "trigger.available_now", "must be true or false");
    c->available_now = json_is_true(an);
}

static void parse_output(checker_t *ck, json_t *root)
{
    sl_conf_t *c = ck->c;
    json_t *o = get_object(ck, root, "output", "output", 1);
    if (!o)
        return;
    static const char *const keys[] = {"mode", "sink", "topic", "format", "delivery", NULL};
    check_keys(ck, o, "output", keys);
    const char *delivery = get_string(ck, o, "delivery", "output.delivery", 0);
    if (delivery && strcmp(delivery, "exactly-once") && strcmp(delivery, "at-least-once"))
        problem(ck, "output.delivery", "must be \"exactly-once\" or \"at-least-once\", not '%s'",
                delivery);
    c->exactly_once = !delivery || !strcmp(delivery, "exactly-once");
    const char *mode = get_string(ck, o, "mode", "output.mode", 0);
    if (mode && strcmp(mode, "update")) {
        if (!strcmp(mode, "complete") || !strcmp(mode, "append"))
            problem(ck, "output.mode", "'%s' mode is not available yet; use \"update\"", mode);
        else
            problem(ck, "output.mode", "unknown mode '%s' (update)", mode);
    }
    const char *sink = get_string(ck, o, "sink", "output.sink", 1);
    if (sink && !strcmp(sink, "kafka")) {
        c->sink = SL_SINK_KAFKA;
        const char *topic = get_string(ck, o, "topic", "output.topic", 1);
        if (topic)
            c->out_topic = strdup(topic);
    } else if (sink && !strcmp(sink, "console")) {
        c->sink = SL_SINK_CONSOLE;
        if (json_object_get(o, "topic"))
            problem(ck, "output.topic", "only the kafka sink has a topic");
        if (delivery)
            problem(ck, "output.delivery", "only the kafka sink has a delivery guarantee");
    } else if (sink) {
        problem(ck, "output.sink", "unknown sink '%s' (kafka or console)", sink);
    }
    const char *fmt = get_string(ck, o, "format", "output.format", 0);
    if (fmt && strcmp(fmt, "json") && strcmp(fmt, "avro"))
        problem(ck, "output.format", "unknown format '%s' (json or avro)", fmt);
    c->out_fmt = fmt && !strcmp(fmt, "avro") ? SL_OUT_AVRO : SL_OUT_JSON;
}

/* Column names must be unique, and Avro names when the output is Avro. */
static void check_columns(checker_t *ck)
{
    sl_conf_t *c = ck->c;
    int n = c->ngroup + c->naggs;
    for (int i = 0; i < n; i++) {
        const char *a = i < c->ngroup ? sl__conf_group_name(c, i) : c->aggs[i - c->ngroup].as;
        char p[64];
        if (i < c->ngroup)
            snprintf(p, sizeof(p), "query.group_by[%d]", i);
        else
            snprintf(p, sizeof(p), "query.aggregates[%d].as", i - c->ngroup);
        if (c->out_fmt == SL_OUT_AVRO && !valid_name(a))
            problem(ck, p, "'%s' is not a valid Avro field name for the Avro output "
                           "([A-Za-z_][A-Za-z0-9_]*)", a);
        for (int j = 0; j < i; j++) {
            const char *b =
                j < c->ngroup ? sl__conf_group_name(c, j) : c->aggs[j - c->ngroup].as;
            if (!strcmp(a, b))
                problem(ck, p, "output column '%s' appears twice; name it with \"as\"", a);
        }
    }
}

const char *sl__conf_group_name(const sl_conf_t *conf, int i)
{
    int n;
    return sl__codec_fields(conf->codec, &n)[conf->group_slots[i]].name;
}

static sl_err_t describe(sl_conf_t *c)
{
    int n;
    const sl_field_t *fields = sl__codec_fields(c->codec, &n);
    json_t *d = json_object();
    json_t *gb = json_array();
    json_t *ag = json_array();
    json_object_set_new(d, "group_by", gb);
    json_object_set_new(d, "aggregates", ag);
    for (int i = 0; i < c->ngroup; i++)
        json_array_append_new(gb, json_pack("{s:s,s:s}", "name", fields[c->group_slots[i]].name,
                                            "type",
                                            sl__type_name(fields[c->group_slots[i]].type)));
    for (int i = 0; i < c->naggs; i++) {
        const sl_agg_spec_t *s = &c->aggs[i];
        json_array_append_new(
            ag, json_pack("{s:s,s:s?,s:s,s:s}", "fn", sl__agg_fn_name(s->fn), "field",
                          s->slot >= 0 ? fields[s->slot].name : NULL, "in",
                          sl__type_name(s->in_type), "as", s->as));
    }
    json_object_set_new(d, "where", c->where_text ? json_string(c->where_text) : json_null());
    c->query_desc = json_dumps(d, JSON_SORT_KEYS | JSON_COMPACT);
    json_decref(d);
    if (!c->query_desc)
        return SL_ERR_NOMEM;
    const char *schema = sl__codec_canonical(c->codec);
    sl_buf_t b;
    sl__buf_init(&b);
    sl__buf_printf(&b, "%s\n%s", c->query_desc, schema);
    c->fingerprint = sl__hash(b.p, b.len);
    sl__buf_fini(&b);
    return SL_OK;
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
        problem(&ck, "(file)", "not valid JSON: %s at line %d, column %d", jerr.text, jerr.line,
                jerr.column);
        goto done;
    }
    if (!json_is_object(root)) {
        problem(&ck, "(file)", "a job must be a JSON object");
        goto done;
    }
    static const char *const keys[] = {"name",    "kafka",  "source", "query",
                                       "trigger", "output", "state",  NULL};
    check_keys(&ck, root, "(top level)", keys);
    const char *name = get_string(&ck, root, "name", "name", 1);
    if (name) {
        c->name = strdup(name);
        for (const char *p = name; *p; p++) {
            if (!(isalnum((unsigned char)*p) || strchr("._-", *p))) {
                problem(&ck, "name", "'%s' may hold only letters, digits, '.', '_' and '-' "
                                     "(it names the consumer group)", name);
                break;
            }
        }
    }
    parse_kafka(&ck, root);
    parse_source(&ck, root);
    parse_query(&ck, root);
    parse_trigger(&ck, root);
    parse_output(&ck, root);
    json_t *state = get_object(&ck, root, "state", "state", 1);
    if (state) {
        static const char *const skeys[] = {"dir", NULL};
        check_keys(&ck, state, "state", skeys);
        const char *dir = get_string(&ck, state, "dir", "state.dir", 1);
        if (dir)
            c->state_dir = join_path(c->base_dir, dir);
    }
    if (!ck.nerrs)
        check_columns(&ck);
    if (!ck.nerrs && c->codec) {
        char err[512] = "";
        if (sl__codec_prepare(c->codec, err, sizeof(err)) != SL_OK)
            problem(&ck, c->codec && json_object_get(json_object_get(root, "source"),
                                                     "writer_schema")
                             ? "source.writer_schema"
                             : "source",
                    "%s", err);
    }
    if (!ck.nerrs && describe(c) != SL_OK)
        problem(&ck, "(job)", "out of memory");
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
    free_kvs(&c->kafka);
    free_kvs(&c->consumer);
    free_kvs(&c->producer);
    for (int i = 0; i < c->ntopics; i++)
        free(c->topics[i]);
    free(c->topics);
    sl__codec_destroy(c->codec);
    free(c->dead_letter_topic);
    sl__expr_destroy(c->where);
    free(c->where_text);
    free(c->group_slots);
    for (int i = 0; i < c->naggs; i++)
        free(c->aggs[i].as);
    free(c->aggs);
    free(c->out_topic);
    free(c->state_dir);
    free(c->query_desc);
    free(c);
}
