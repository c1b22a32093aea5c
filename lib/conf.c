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
#include <regex.h>
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
    json_t *kafka = get_object(ck, root, "kafka", "kafka", needed);
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
    if ((!c->bootstrap || !*c->bootstrap) && needed)
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

/* starting_offsets: "earliest", "latest", or {"topic": {"0": 42, "1": -2}} as Spark's
 * (-2 earliest, -1 latest); starting_timestamp: epoch ms or an ISO 8601 date-time. */
static void parse_starting(checker_t *ck, json_t *src)
{
    sl_conf_t *c = ck->c;
    c->starting_ts = -1;
    json_t *so = json_object_get(src, "starting_offsets");
    json_t *st = json_object_get(src, "starting_timestamp");
    if (so && st)
        problem(ck, "source.starting_timestamp", "give starting_offsets or starting_timestamp, "
                                                 "not both");
    const char *v = json_is_string(so) ? get_string(ck, src, "starting_offsets",
                                                    "source.starting_offsets", 0)
                                       : NULL;
    if (v) {
        if (strcmp(v, "earliest") && strcmp(v, "latest"))
            problem(ck, "source.starting_offsets",
                    "must be \"earliest\", \"latest\" or {\"topic\": {\"partition\": offset}}, "
                    "not '%s'", v);
        c->starting_latest = !strcmp(v, "latest");
    } else if (json_is_object(so)) {
        const char *topic;
        json_t *parts;
        json_object_foreach(so, topic, parts)
        {
            char p[300];
            snprintf(p, sizeof(p), "source.starting_offsets[\"%s\"]", topic);
            if (!json_is_object(parts)) {
                problem(ck, p, "must be {\"partition\": offset, ...}");
                continue;
            }
            const char *part;
            json_t *off;
            json_object_foreach(parts, part, off)
            {
                char *end;
                long pn = strtol(part, &end, 10);
                if (*end || pn < 0 || !json_is_integer(off) || json_integer_value(off) < -2) {
                    problem(ck, p, "partition '%s': an offset, -2 (earliest) or -1 (latest)",
                            part);
                    continue;
                }
                sl_start_off_t *n =
                    realloc(c->start_at, (size_t)(c->nstart_at + 1) * sizeof(*n));
                if (!n)
                    return;
                c->start_at = n;
                n[c->nstart_at++] = (sl_start_off_t){strdup(topic), (int)pn,
                                                     json_integer_value(off)};
            }
        }
    } else if (so && !json_is_string(so)) {
        problem(ck, "source.starting_offsets", "must be \"earliest\", \"latest\" or "
                                               "{\"topic\": {\"partition\": offset}}");
    }
    if (json_is_integer(st) && json_integer_value(st) >= 0)
        c->starting_ts = json_integer_value(st);
    else if (json_is_string(st) &&
             sl__ts_parse(json_string_value(st), json_string_length(st), &c->starting_ts) == 0)
        ;
    else if (st)
        problem(ck, "source.starting_timestamp",
                "must be epoch milliseconds or a date-time such as \"2026-11-25T09:00:00Z\"");
}

/* A directory of files or a socket; 1 when the source is one (its Kafka-only options are
 * refused), 0 for Kafka. */
static int parse_local_source(checker_t *ck, json_t *src)
{
    sl_conf_t *c = ck->c;
    const char *type = get_string(ck, src, "type", "source.type", 0);
    if (!type || !strcmp(type, "kafka")) {
        static const char *const local[] = {"path", "max_files", "host", "port", NULL};
        for (const char *const *k = local; *k; k++) {
            if (json_object_get(src, *k))
                problem(ck, "source", "'%s' is an option of the files or socket source, not of "
                                      "Kafka (set \"type\")", *k);
        }
        return 0;
    }
    if (!strcmp(type, "files")) {
        c->src_kind = SL_SRC_FILES;
        const char *path = get_string(ck, src, "path", "source.path", 1);
        if (path)
            c->src_path = join_path(c->base_dir, path);
        json_t *mf = json_object_get(src, "max_files");
        if (mf && (!json_is_integer(mf) || json_integer_value(mf) <= 0))
            problem(ck, "source.max_files", "must be a positive integer");
        else if (mf)
            c->max_files = json_integer_value(mf);
    } else if (!strcmp(type, "socket")) {
        c->src_kind = SL_SRC_SOCKET;
        const char *host = get_string(ck, src, "host", "source.host", 0);
        c->src_host = strdup(host ? host : "127.0.0.1");
        json_t *port = json_object_get(src, "port");
        if (!json_is_integer(port) || json_integer_value(port) <= 0 ||
            json_integer_value(port) > 65535)
            problem(ck, "source.port", "missing: a TCP port (1-65535)");
        else
            c->src_port = (int)json_integer_value(port);
    } else {
        problem(ck, "source.type", "unknown source '%s' (kafka, files or socket)", type);
        return 1;
    }
    static const char *const kafka_only[] = {"topics",  "pattern",      "starting_offsets",
                                             "starting_timestamp", "on_data_loss", "headers",
                                             "confluent_wire", NULL};
    for (const char *const *k = kafka_only; *k; k++) {
        if (json_object_get(src, *k))
            problem(ck, "source", "'%s' is an option of the Kafka source, not of %s", *k, type);
    }
    if (c->src_kind == SL_SRC_SOCKET && json_object_get(src, "max_files"))
        problem(ck, "source.max_files", "only the files source has it");
    if (c->src_kind == SL_SRC_FILES && (json_object_get(src, "host") || json_object_get(src, "port")))
        problem(ck, "source", "only the socket source has a host and port");
    c->starting_ts = -1;
    return 1;
}

static void parse_source(checker_t *ck, json_t *root)
{
    sl_conf_t *c = ck->c;
    json_t *src = get_object(ck, root, "source", "source", 1);
    if (!src)
        return;
    static const char *const keys[] = {
        "type",            "topics",          "pattern",          "format",
        "schema",          "writer_schema",   "confluent_wire",   "fields",
        "starting_offsets", "starting_timestamp", "on_decode_error", "on_data_loss",
        "headers",         "path",            "max_files",        "host",
        "port",            NULL};
    check_keys(ck, src, "source", keys);
    if (parse_local_source(ck, src))
        goto format;

    json_t *topics = json_object_get(src, "topics");
    const char *pattern = get_string(ck, src, "pattern", "source.pattern", 0);
    if (pattern) {
        if (topics)
            problem(ck, "source.pattern", "give topics or a pattern, not both");
        regex_t re;
        int rc = regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB);
        if (rc) {
            char why[200];
            regerror(rc, &re, why, sizeof(why));
            problem(ck, "source.pattern", "not a regular expression: %s", why);
        } else {
            regfree(&re);
            /* librdkafka takes a subscription starting with '^' as a pattern. */
            size_t n = strlen(pattern) + 2;
            c->pattern = malloc(n);
            if (c->pattern)
                snprintf(c->pattern, n, "%s%s", pattern[0] == '^' ? "" : "^", pattern);
        }
    } else if (json_is_string(topics)) {
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
    } else if (!pattern) {
        problem(ck, "source.topics", "missing: a topic name or a list of them (or a pattern)");
    }

format:;
    const char *fmt = get_string(ck, src, "format", "source.format", 0);
    if (!fmt && c->src_kind != SL_SRC_KAFKA)
        fmt = "text"; /* lines of files and sockets are text unless said otherwise */
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
    } else if (!strcmp(fmt, "text")) {
        errbuf[0] = 0;
        if (json_object_get(src, "schema") || json_object_get(src, "fields"))
            problem(ck, "source.format", "a text source has one field, value; it takes no "
                                         "schema or fields");
        if (sl__codec_text_new(&c->codec, errbuf, sizeof(errbuf)) != SL_OK)
            problem(ck, "source.format", "%s", errbuf);
    } else if (!strcmp(fmt, "json")) {
        json_t *fields = json_object_get(src, "fields");
        errbuf[0] = 0;
        if (sl__codec_json_new(fields, &c->codec, errbuf, sizeof(errbuf)) != SL_OK)
            problem(ck, "source.fields", "%s", errbuf);
    } else {
        problem(ck, "source.format", "unknown format '%s' (avro, json or text)", fmt);
    }

    parse_starting(ck, src);
    const char *dl = get_string(ck, src, "on_data_loss", "source.on_data_loss", 0);
    if (dl && strcmp(dl, "fail") && strcmp(dl, "skip"))
        problem(ck, "source.on_data_loss", "must be \"fail\" (the default) or \"skip\"");
    c->data_loss_skip = dl && !strcmp(dl, "skip");
    json_t *hdrs = json_object_get(src, "headers");
    if (hdrs && (!json_is_array(hdrs) || !json_array_size(hdrs))) {
        problem(ck, "source.headers", "must be a list of header names");
    } else if (hdrs) {
        c->headers = calloc(json_array_size(hdrs), sizeof(char *));
        size_t i;
        json_t *h;
        json_array_foreach(hdrs, i, h)
        {
            char p[64];
            snprintf(p, sizeof(p), "source.headers[%zu]", i);
            if (!json_is_string(h) || !json_string_length(h))
                problem(ck, p, "must be a header name");
            else if (c->headers)
                c->headers[c->nheaders++] = strdup(json_string_value(h));
        }
    }

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

/* ---- fields: the input's, Kafka's metadata, and derived ones ---- */

static const struct {
    const char *name;
    sl_type_t type;
} meta_fields[SL_META_COUNT] = {
    [SL_META_TOPIC] = {"_topic", SL_T_STRING},
    [SL_META_PARTITION] = {"_partition", SL_T_LONG},
    [SL_META_OFFSET] = {"_offset", SL_T_LONG},
    [SL_META_TIMESTAMP] = {"_timestamp", SL_T_TIMESTAMP},
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
    int slot = sl__codec_field_slot(c->codec, name, len);
    int n;
    if (slot >= 0) {
        const sl_field_t *f = sl__codec_fields(c->codec, &n);
        *type = f[slot].type;
        char err[8];
        if (sl__codec_use(c->codec, slot, err, sizeof(err)) != SL_OK)
            return -1;
        return slot;
    }
    for (int i = 0; i < SL_META_COUNT; i++) {
        if (strlen(meta_fields[i].name) == len && !memcmp(meta_fields[i].name, name, len)) {
            c->meta_used |= 1u << i;
            *type = meta_fields[i].type;
            return c->meta_base + i;
        }
    }
    for (int i = 0; i < c->nheaders; i++) {
        char hn[300];
        sl__conf_header_field(c->headers[i], hn, sizeof(hn));
        if (strlen(hn) == len && !memcmp(hn, name, len)) {
            *type = SL_T_STRING;
            return c->meta_base + SL_META_COUNT + i;
        }
    }
    for (int i = 0; i < c->nderived; i++) {
        const sl_derived_t *d = &c->derived[i];
        if (strlen(d->name) == len && !memcmp(d->name, name, len)) {
            *type = sl__expr_type(d->expr);
            return d->slot;
        }
    }
    return -1;
}

static sl_type_t slot_type(const sl_conf_t *c, int slot, int *nullable)
{
    int n;
    const sl_field_t *f = sl__codec_fields(c->codec, &n);
    *nullable = 1;
    if (slot < c->nfields) {
        *nullable = f[slot].nullable;
        return f[slot].type;
    }
    if (slot < c->meta_base + SL_META_COUNT) {
        *nullable = slot - c->meta_base == SL_META_KEY;
        return meta_fields[slot - c->meta_base].type;
    }
    if (slot < c->meta_base + SL_META_COUNT + c->nheaders)
        return SL_T_STRING;
    for (int i = 0; i < c->nderived; i++) {
        if (c->derived[i].slot == slot)
            return sl__expr_type(c->derived[i].expr);
    }
    return SL_T_NULL;
}

/* The name a value of the input gets as a column: a field's name, a derived field's. */
static const char *slot_name(const sl_conf_t *c, int slot)
{
    int n;
    if (slot < c->nfields)
        return sl__codec_fields(c->codec, &n)[slot].name;
    if (slot < c->meta_base + SL_META_COUNT)
        return meta_fields[slot - c->meta_base].name;
    if (slot < c->meta_base + SL_META_COUNT + c->nheaders) {
        static __thread char hn[300];
        sl__conf_header_field(c->headers[slot - c->meta_base - SL_META_COUNT], hn, sizeof(hn));
        return hn;
    }
    for (int i = 0; i < c->nderived; i++) {
        if (c->derived[i].slot == slot)
            return c->derived[i].name;
    }
    return "?";
}

static int add_derived(sl_conf_t *c, const char *name, const char *text, sl_expr_t *e)
{
    sl_derived_t *nd = realloc(c->derived, (size_t)(c->nderived + 1) * sizeof(*nd));
    if (!nd)
        return -1;
    c->derived = nd;
    nd[c->nderived] = (sl_derived_t){.name = strdup(name), .text = strdup(text),
                                     .slot = c->nslots++, .expr = e};
    return nd[c->nderived++].slot;
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
            const sl_field_t *f = sl__codec_fields(c->codec, &n);
            char list[512] = "";
            for (int i = 0; i < n; i++)
                sl__strlcatf(list, sizeof(list), "%s%s", i ? ", " : "", f[i].name);
            problem(ck, path, "%s (the input has: %s)", msg, list);
            known = 1;
        }
        if (!known)
            problem(ck, path, "%s", msg);
        return -1;
    }
    *type = sl__expr_type(e);
    int slot = sl__expr_field_slot(e);
    if (slot >= 0 && (!name || !strcmp(name, slot_name(c, slot)))) {
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
        check_keys(ck, item, path, keys);
        snprintf(p, sizeof(p), "%s.expr", path);
        expr = get_string(ck, item, "expr", p, 1);
        snprintf(p, sizeof(p), "%s.as", path);
        as = get_string(ck, item, "as", p, 0);
    } else {
        problem(ck, path, "must be a field name, an expression, or {\"expr\": ..., \"as\": ...}");
        return -1;
    }
    if (!expr)
        return -1;
    int slot = value_slot(ck, expr, as, path, type);
    if (slot >= 0)
        *name = as ? as : slot_name(ck->c, slot);
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

static void parse_fields(checker_t *ck, json_t *q)
{
    sl_conf_t *c = ck->c;
    json_t *fields = json_object_get(q, "fields");
    if (!fields)
        return;
    if (!json_is_array(fields)) {
        problem(ck, "query.fields", "must be a list of {\"as\": \"name\", \"expr\": \"...\"}");
        return;
    }
    size_t i;
    json_t *f;
    json_array_foreach(fields, i, f)
    {
        char p[64], pp[80];
        snprintf(p, sizeof(p), "query.fields[%zu]", i);
        if (!json_is_object(f)) {
            problem(ck, p, "must be {\"as\": \"name\", \"expr\": \"...\"}");
            continue;
        }
        static const char *const keys[] = {"expr", "as", NULL};
        check_keys(ck, f, p, keys);
        snprintf(pp, sizeof(pp), "%s.as", p);
        const char *as = get_string(ck, f, "as", pp, 1);
        snprintf(pp, sizeof(pp), "%s.expr", p);
        const char *expr = get_string(ck, f, "expr", pp, 1);
        if (!as || !expr)
            continue;
        sl_type_t t;
        if (field_lookup(c, as, strlen(as), &t) >= 0) {
            problem(ck, p, "'%s' is already a field; pick another name", as);
            continue;
        }
        if (!valid_name(as)) {
            problem(ck, pp, "'%s' is not a name ([A-Za-z_][A-Za-z0-9_]*)", as);
            continue;
        }
        sl_expr_t *e = NULL;
        char err[512];
        if (sl__expr_parse_value(expr, field_lookup, c, &e, err, sizeof(err)) != SL_OK) {
            problem(ck, pp, "%s", err);
            continue;
        }
        if (add_derived(c, as, expr, e) < 0)
            sl__expr_destroy(e);
    }
}

static void parse_window(checker_t *ck, json_t *q)
{
    sl_conf_t *c = ck->c;
    c->time_slot = -1;
    json_t *w = json_object_get(q, "window");
    if (!w)
        return;
    if (!json_is_object(w)) {
        problem(ck, "query.window", "must be an object such as {\"time\": \"ts\", \"size\": "
                                    "\"10 minutes\"}");
        return;
    }
    static const char *const keys[] = {"time", "size", "slide", "offset", "gap", NULL};
    check_keys(ck, w, "query.window", keys);
    const char *time = get_string(ck, w, "time", "query.window.time", 1);
    if (time) {
        sl_type_t t;
        c->time_slot = value_slot(ck, time, NULL, "query.window.time", &t);
        if (c->time_slot >= 0 && !sl__type_integral(t)) {
            problem(ck, "query.window.time",
                    "the event time must be a timestamp or a long of epoch milliseconds; "
                    "'%s' is a %s", time, sl__type_name(t));
            c->time_slot = -1;
        }
    }
    json_t *size = json_object_get(w, "size"), *slide = json_object_get(w, "slide"),
           *gap = json_object_get(w, "gap"), *off = json_object_get(w, "offset");
    static const char *dur = "must be a duration such as \"10 minutes\", \"30s\" or \"500ms\"";
    if (gap) {
        c->window = SL_WIN_SESSION;
        if (size || slide || off)
            problem(ck, "query.window", "a session window has a gap only, not a size, slide "
                                        "or offset");
        if (parse_duration_ms(gap, &c->win_size_ms) < 0 || c->win_size_ms <= 0)
            problem(ck, "query.window.gap", "%s", dur);
        return;
    }
    c->window = SL_WIN_SLIDING;
    if (!size) {
        problem(ck, "query.window", "missing: size (tumbling or hopping) or gap (session)");
        return;
    }
    if (parse_duration_ms(size, &c->win_size_ms) < 0 || c->win_size_ms <= 0)
        problem(ck, "query.window.size", "%s", dur);
    c->win_slide_ms = c->win_size_ms;
    if (slide && (parse_duration_ms(slide, &c->win_slide_ms) < 0 || c->win_slide_ms <= 0))
        problem(ck, "query.window.slide", "%s", dur);
    else if (slide && c->win_slide_ms > c->win_size_ms)
        problem(ck, "query.window.slide", "the slide must not exceed the size (Spark's rule)");
    if (off && (parse_duration_ms(off, &c->win_offset_ms) < 0 ||
                c->win_offset_ms >= c->win_slide_ms))
        problem(ck, "query.window.offset", "must be a duration shorter than the slide");
    if (c->win_slide_ms > 0 && c->win_size_ms / c->win_slide_ms > 1000)
        problem(ck, "query.window", "a record would fall into more than 1,000 windows; "
                                    "use a longer slide");
}

static void parse_watermark(checker_t *ck, json_t *q)
{
    sl_conf_t *c = ck->c;
    c->wm_slot = -1;
    json_t *w = json_object_get(q, "watermark");
    if (!w)
        return;
    if (!json_is_object(w)) {
        problem(ck, "query.watermark", "must be an object such as {\"field\": \"ts\", "
                                       "\"delay\": \"10 minutes\"}");
        return;
    }
    static const char *const keys[] = {"field", "delay", "idle_timeout", "late_topic", NULL};
    check_keys(ck, w, "query.watermark", keys);
    const char *field = get_string(ck, w, "field", "query.watermark.field", 1);
    if (field) {
        sl_type_t t;
        c->wm_slot = value_slot(ck, field, NULL, "query.watermark.field", &t);
        if (c->wm_slot >= 0 && !sl__type_integral(t)) {
            problem(ck, "query.watermark.field",
                    "the event time must be a timestamp or a long of epoch milliseconds; "
                    "'%s' is a %s", field, sl__type_name(t));
            c->wm_slot = -1;
        }
    }
    json_t *d = json_object_get(w, "delay");
    if (!d)
        problem(ck, "query.watermark.delay", "missing: how late records may be, e.g. "
                                             "\"10 minutes\"");
    else if (parse_duration_ms(d, &c->wm_delay_ms) < 0)
        problem(ck, "query.watermark.delay", "must be a duration such as \"10 minutes\"");
    json_t *it = json_object_get(w, "idle_timeout");
    if (it && (parse_duration_ms(it, &c->idle_timeout_ms) < 0 || c->idle_timeout_ms == 0))
        problem(ck, "query.watermark.idle_timeout", "must be a duration such as \"30s\"");
    const char *lt = get_string(ck, w, "late_topic", "query.watermark.late_topic", 0);
    if (lt)
        c->late_topic = strdup(lt);
}

static void parse_aggregate(checker_t *ck, json_t *a, size_t i)
{
    sl_conf_t *c = ck->c;
    char p[64], pf[80];
    snprintf(p, sizeof(p), "query.aggregates[%zu]", i);
    if (!json_is_object(a)) {
        problem(ck, p, "must be an object such as {\"fn\": \"sum\", \"field\": \"bytes\"}");
        return;
    }
    static const char *const akeys[] = {"fn", "field", "as", "by", "rsd", NULL};
    check_keys(ck, a, p, akeys);
    snprintf(pf, sizeof(pf), "%s.fn", p);
    const char *fn = get_string(ck, a, "fn", pf, 1);
    if (!fn)
        return;
    int f = sl__agg_fn_parse(fn);
    if (f < 0) {
        char known[256] = "";
        for (int k = 0; k <= SL_AGG_LAST; k++)
            sl__strlcatf(known, sizeof(known), "%s%s", k ? ", " : "",
                         sl__agg_fn_name((sl_agg_fn_t)k));
        problem(ck, pf, "unknown aggregate '%s' (%s)", fn, known);
        return;
    }
    sl_agg_spec_t *s = &c->aggs[c->naggs];
    *s = (sl_agg_spec_t){.fn = (sl_agg_fn_t)f, .slot = -1, .time_slot = -1,
                         .in_type = SL_T_LONG};
    snprintf(pf, sizeof(pf), "%s.field", p);
    const char *field = get_string(ck, a, "field", pf, f != SL_AGG_COUNT);
    if (field) {
        s->slot = value_slot(ck, field, NULL, pf, &s->in_type);
        if (s->slot < 0)
            return;
        if ((f == SL_AGG_SUM || f == SL_AGG_AVG) && s->in_type != SL_T_LONG &&
            s->in_type != SL_T_DOUBLE) {
            problem(ck, pf, "%s needs a numeric field; '%s' is a %s", fn, field,
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
            problem(ck, pf, "only approx_count_distinct has a relative standard deviation");
        else if (!json_is_number(rsd) || json_number_value(rsd) < 0.005 ||
                 json_number_value(rsd) > 0.4)
            problem(ck, pf, "must be a number from 0.005 to 0.4 (default 0.05)");
        else
            s->hll_p = sl__hll_p_for_rsd(json_number_value(rsd));
    }
    snprintf(pf, sizeof(pf), "%s.by", p);
    const char *by = get_string(ck, a, "by", pf, 0);
    if (f == SL_AGG_FIRST || f == SL_AGG_LAST) {
        sl_type_t t;
        if (by)
            s->time_slot = value_slot(ck, by, NULL, pf, &t);
        else
            s->time_slot = c->time_slot >= 0 ? c->time_slot : c->wm_slot;
        if (s->time_slot < 0 && !by)
            problem(ck, p, "%s needs an event time: set \"by\", a window or a watermark", fn);
        else if (by && s->time_slot >= 0 && !sl__type_integral(t))
            problem(ck, pf, "the event time must be a timestamp or a long; '%s' is a %s", by,
                    sl__type_name(t));
    } else if (by) {
        problem(ck, pf, "only first and last are ordered by an event time");
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

static void parse_query(checker_t *ck, json_t *root)
{
    sl_conf_t *c = ck->c;
    json_t *q = get_object(ck, root, "query", "query", 1);
    if (!q)
        return;
    static const char *const keys[] = {"fields", "where",     "select",     "group_by",
                                       "window", "watermark", "aggregates", NULL};
    check_keys(ck, q, "query", keys);
    if (!c->codec)
        return; /* the source's problem was reported; fields cannot be checked */
    int n;
    sl__codec_fields(c->codec, &n);
    c->nfields = n;
    c->meta_base = n;
    c->nslots = n + SL_META_COUNT + c->nheaders;
    parse_fields(ck, q);

    const char *where = get_string(ck, q, "where", "query.where", 0);
    if (where) {
        char err[512];
        c->where_text = strdup(where);
        if (sl__expr_parse(where, field_lookup, c, &c->where, err, sizeof(err)) != SL_OK)
            problem(ck, "query.where", "%s", err);
    }
    parse_window(ck, q);
    parse_watermark(ck, q);

    json_t *gb = json_object_get(q, "group_by");
    json_t *aggs = json_object_get(q, "aggregates");
    json_t *sel = json_object_get(q, "select");
    c->aggregating = gb || aggs || c->window;
    if (json_is_string(gb)) {
        json_t *arr = json_pack("[O]", gb);
        json_object_set_new(q, "group_by", arr);
        gb = arr;
    }
    if (gb && (!json_is_array(gb) || (json_array_size(gb) == 0 && !c->window))) {
        problem(ck, "query.group_by", "must be a field name, an expression, or a list of them");
    } else if (gb) {
        size_t ng = json_array_size(gb);
        if (ng > 64)
            problem(ck, "query.group_by", "at most 64 values");
        c->group_slots = calloc(ng + 1, sizeof(int));
        c->group_names = calloc(ng + 1, sizeof(char *));
        size_t i;
        json_t *g;
        json_array_foreach(gb, i, g)
        {
            char p[64];
            snprintf(p, sizeof(p), "query.group_by[%zu]", i);
            sl_type_t t;
            const char *name = NULL;
            int slot = named_value(ck, g, p, &t, &name);
            if (slot >= 0 && c->group_slots && c->group_names) {
                c->group_slots[c->ngroup] = slot;
                c->group_names[c->ngroup++] = strdup(name);
            }
        }
    } else if (aggs && !c->window) {
        problem(ck, "query.group_by", "missing: a field name or a list of them (or a window)");
    }

    if (sel && c->aggregating) {
        problem(ck, "query.select", "a query with group_by, window or aggregates outputs the "
                                    "group and the aggregates; select is for queries without "
                                    "aggregation");
    } else if (sel) {
        if (!json_is_array(sel) || json_array_size(sel) == 0) {
            problem(ck, "query.select", "must be a list of fields or expressions");
        } else {
            c->select_slots = calloc(json_array_size(sel), sizeof(int));
            c->cols = calloc(json_array_size(sel), sizeof(sl_col_t));
            size_t i;
            json_t *it;
            json_array_foreach(sel, i, it)
            {
                char p[64];
                snprintf(p, sizeof(p), "query.select[%zu]", i);
                sl_type_t t;
                const char *name = NULL;
                int slot = named_value(ck, it, p, &t, &name);
                if (slot < 0 || !c->select_slots || !c->cols)
                    continue;
                int nullable;
                slot_type(c, slot, &nullable);
                c->cols[c->ncols] = (sl_col_t){.name = strdup(name), .type = t,
                                               .nullable = nullable, .kind = SL_COL_SELECT,
                                               .idx = c->nselect};
                c->ncols++;
                c->select_slots[c->nselect++] = slot;
            }
        }
    } else if (!c->aggregating) {
        problem(ck, "query", "nothing to output: give group_by and aggregates (an "
                             "aggregation) or select (records passed through)");
    }

    if (!c->aggregating)
        return;
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
        parse_aggregate(ck, a, i);
}

static void parse_trigger(checker_t *ck, json_t *root)
{
    sl_conf_t *c = ck->c;
    c->interval_ms = 2000;
    c->max_records = 0;
    json_t *t = get_object(ck, root, "trigger", "trigger", 0);
    if (!t)
        return;
    static const char *const keys[] = {"interval", "max_records", "min_records",
                                       "max_trigger_delay", "available_now", NULL};
    check_keys(ck, t, "trigger", keys);
    json_t *mn = json_object_get(t, "min_records");
    if (mn) {
        if (!json_is_integer(mn) || json_integer_value(mn) <= 0)
            problem(ck, "trigger.min_records", "must be a positive integer");
        else
            c->min_records = json_integer_value(mn);
    }
    c->max_trigger_delay_ms = 15 * 60000; /* Spark's default maxTriggerDelay */
    json_t *md = json_object_get(t, "max_trigger_delay");
    if (md && !mn)
        problem(ck, "trigger.max_trigger_delay", "only with min_records");
    else if (md && parse_duration_ms(md, &c->max_trigger_delay_ms) < 0)
        problem(ck, "trigger.max_trigger_delay", "must be a duration such as \"30s\"");
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
    if (c->available_now && c->min_records)
        problem(ck, "trigger.min_records", "an available-now job reads what there is");
    if (c->max_records && c->min_records > c->max_records)
        problem(ck, "trigger.min_records", "must not exceed max_records");
}

const char *sl__mode_name(sl_mode_t m)
{
    return m == SL_MODE_COMPLETE ? "complete" : m == SL_MODE_APPEND ? "append" : "update";
}

static void parse_output(checker_t *ck, json_t *root)
{
    sl_conf_t *c = ck->c;
    json_t *o = get_object(ck, root, "output", "output", 1);
    if (!o)
        return;
    static const char *const keys[] = {"mode",   "sink",     "topic", "format",
                                       "delivery", "path",   NULL};
    check_keys(ck, o, "output", keys);
    const char *delivery = get_string(ck, o, "delivery", "output.delivery", 0);
    if (delivery && strcmp(delivery, "exactly-once") && strcmp(delivery, "at-least-once"))
        problem(ck, "output.delivery", "must be \"exactly-once\" or \"at-least-once\", not '%s'",
                delivery);
    c->exactly_once = !delivery || !strcmp(delivery, "exactly-once");
    const char *mode = get_string(ck, o, "mode", "output.mode", 0);
    c->mode = SL_MODE_UPDATE;
    if (mode && !strcmp(mode, "complete"))
        c->mode = SL_MODE_COMPLETE;
    else if (mode && !strcmp(mode, "append"))
        c->mode = SL_MODE_APPEND;
    else if (mode && strcmp(mode, "update"))
        problem(ck, "output.mode", "unknown mode '%s' (update, complete or append)", mode);
    const char *sink = get_string(ck, o, "sink", "output.sink", 1);
    static const struct {
        const char *name;
        sl_sink_kind_t kind;
    } sinks[] = {{"kafka", SL_SINK_KAFKA},   {"console", SL_SINK_CONSOLE},
                 {"file", SL_SINK_FILE},     {"memory", SL_SINK_MEMORY},
                 {"foreach", SL_SINK_FOREACH}};
    int found = -1;
    for (size_t i = 0; sink && i < SL_ARRAY_LEN(sinks); i++) {
        if (!strcmp(sinks[i].name, sink))
            found = (int)i;
    }
    if (sink && found < 0)
        problem(ck, "output.sink", "unknown sink '%s' (kafka, console, file, memory or "
                                   "foreach)", sink);
    if (found >= 0)
        c->sink = sinks[found].kind;
    if (found >= 0 && c->sink == SL_SINK_KAFKA) {
        const char *topic = get_string(ck, o, "topic", "output.topic", 1);
        if (topic)
            c->out_topic = strdup(topic);
    } else if (found >= 0) {
        if (json_object_get(o, "topic"))
            problem(ck, "output.topic", "only the kafka sink has a topic");
        if (delivery)
            problem(ck, "output.delivery", "only the kafka sink has a delivery setting");
    }
    if (found >= 0 && c->sink == SL_SINK_FILE) {
        const char *path = get_string(ck, o, "path", "output.path", 1);
        if (path)
            c->out_path = join_path(c->base_dir, path);
    } else if (json_object_get(o, "path")) {
        problem(ck, "output.path", "only the file sink has a path");
    }
    const char *fmt = get_string(ck, o, "format", "output.format", 0);
    if (fmt && strcmp(fmt, "json") && strcmp(fmt, "avro"))
        problem(ck, "output.format", "unknown format '%s' (json or avro)", fmt);
    c->out_fmt = fmt && !strcmp(fmt, "avro") ? SL_OUT_AVRO : SL_OUT_JSON;
    if (c->out_fmt == SL_OUT_AVRO && found >= 0 && c->sink != SL_SINK_KAFKA)
        problem(ck, "output.format", "only the kafka sink writes Avro");
}

/* Spark's rules for output modes, each refused with the reason and what to do instead. */
static void check_mode(checker_t *ck)
{
    sl_conf_t *c = ck->c;
    if (c->mode == SL_MODE_COMPLETE && !c->aggregating)
        problem(ck, "output.mode", "complete mode outputs the whole result table, so it needs "
                                   "an aggregation (group_by and aggregates); use append or "
                                   "update for records passed through");
    if (c->mode == SL_MODE_APPEND && c->aggregating) {
        if (c->wm_slot < 0 || c->window == SL_WIN_NONE)
            problem(ck, "output.mode", "append mode emits a row once, when it can no longer "
                                       "change, so an aggregation needs a window and a "
                                       "watermark on its event time (or use update mode)");
        else if (c->wm_slot != c->time_slot)
            problem(ck, "query.watermark.field", "append mode needs the watermark on the "
                                                 "window's event time ('%s')",
                    slot_name(c, c->time_slot));
    }
    if (c->window != SL_WIN_NONE && c->wm_slot >= 0 && c->wm_slot != c->time_slot &&
        c->mode != SL_MODE_APPEND)
        problem(ck, "query.watermark.field", "the watermark must be on the window's event "
                                             "time ('%s') to close windows",
                slot_name(c, c->time_slot));
    if (c->wm_slot >= 0 && c->window == SL_WIN_NONE)
        problem(ck, "query.watermark", "a watermark closes windows; add a window (a watermark "
                                       "without one would change nothing)");
}

/* The output columns of an aggregation: window, group values, aggregates. */
static void build_columns(checker_t *ck)
{
    sl_conf_t *c = ck->c;
    if (!c->aggregating)
        return;
    int n = (c->window ? 2 : 0) + c->ngroup + c->naggs;
    c->cols = calloc((size_t)n, sizeof(sl_col_t));
    if (!c->cols)
        return;
    if (c->window) {
        c->cols[c->ncols++] = (sl_col_t){strdup("window_start"), SL_T_TIMESTAMP, 0,
                                         SL_COL_WSTART, 0};
        c->cols[c->ncols++] = (sl_col_t){strdup("window_end"), SL_T_TIMESTAMP, 0, SL_COL_WEND,
                                         0};
    }
    for (int i = 0; i < c->ngroup; i++) {
        int nullable;
        sl_type_t t = slot_type(c, c->group_slots[i], &nullable);
        c->cols[c->ncols++] = (sl_col_t){strdup(c->group_names[i]), t, nullable, SL_COL_KEY, i};
    }
    c->nkeycols = c->ncols;
    for (int i = 0; i < c->naggs; i++) {
        const sl_agg_spec_t *s = &c->aggs[i];
        int nullable = s->fn != SL_AGG_COUNT && s->fn != SL_AGG_COUNT_DISTINCT &&
                       s->fn != SL_AGG_APPROX_COUNT_DISTINCT;
        c->cols[c->ncols++] = (sl_col_t){strdup(s->as), sl__agg_result_type(s), nullable,
                                         SL_COL_AGG, i};
    }
}

/* Column names must be unique, and Avro names when the output is Avro. */
static void check_columns(checker_t *ck)
{
    sl_conf_t *c = ck->c;
    for (int i = 0; i < c->ncols; i++) {
        const sl_col_t *col = &c->cols[i];
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
        if (c->out_fmt == SL_OUT_AVRO && !valid_name(col->name))
            problem(ck, p, "'%s' is not a valid Avro field name for the Avro output "
                           "([A-Za-z_][A-Za-z0-9_]*); name it with {\"expr\": ..., \"as\": ...}",
                    col->name);
        for (int j = 0; j < i; j++) {
            if (!strcmp(col->name, c->cols[j].name))
                problem(ck, p, "output column '%s' appears twice; name it with \"as\"",
                        col->name);
        }
    }
}

static sl_err_t describe(sl_conf_t *c)
{
    json_t *d = json_object();
    json_t *gb = json_array();
    json_t *ag = json_array();
    json_object_set_new(d, "group_by", gb);
    json_object_set_new(d, "aggregates", ag);
    /* In the order of the state's keys: the group values, then the window's start. */
    for (int i = 0; i < c->ngroup; i++) {
        int nullable;
        sl_type_t t = slot_type(c, c->group_slots[i], &nullable);
        json_array_append_new(gb, json_pack("{s:s,s:s}", "name", c->group_names[i], "type",
                                            sl__type_name(t)));
    }
    if (c->window)
        json_array_append_new(gb, json_pack("{s:s,s:s}", "name", "window_start", "type",
                                            "timestamp"));
    for (int i = 0; i < c->naggs; i++) {
        const sl_agg_spec_t *s = &c->aggs[i];
        json_t *a = json_pack("{s:s,s:s?,s:s,s:s}", "fn", sl__agg_fn_name(s->fn), "field",
                              s->slot >= 0 ? slot_name(c, s->slot) : NULL, "in",
                              sl__type_name(s->in_type), "as", s->as);
        if (s->fn == SL_AGG_APPROX_COUNT_DISTINCT)
            json_object_set_new(a, "p", json_integer(s->hll_p));
        if (s->time_slot >= 0)
            json_object_set_new(a, "by", json_string(slot_name(c, s->time_slot)));
        json_array_append_new(ag, a);
    }
    json_t *fields = json_object();
    for (int i = 0; i < c->nderived; i++)
        json_object_set_new(fields, c->derived[i].name,
                            json_pack("{s:s,s:s}", "expr", c->derived[i].text, "type",
                                      sl__type_name(sl__expr_type(c->derived[i].expr))));
    json_object_set_new(d, "fields", fields);
    if (c->window) {
        json_t *w = json_pack("{s:s,s:s,s:I}", "kind",
                              c->window == SL_WIN_SESSION ? "session" : "sliding", "time",
                              slot_name(c, c->time_slot), "size", (json_int_t)c->win_size_ms);
        if (c->window == SL_WIN_SLIDING) {
            json_object_set_new(w, "slide", json_integer(c->win_slide_ms));
            json_object_set_new(w, "offset", json_integer(c->win_offset_ms));
        }
        json_object_set_new(d, "window", w);
    }
    json_object_set_new(d, "output_mode", json_string(sl__mode_name(c->mode)));
    if (c->wm_slot >= 0)
        json_object_set_new(d, "watermark", json_string(slot_name(c, c->wm_slot)));
    if (!c->aggregating) {
        json_t *sel = json_array();
        for (int i = 0; i < c->ncols; i++)
            json_array_append_new(sel, json_string(c->cols[i].name));
        json_object_set_new(d, "select", sel);
    }
    /* The fingerprint covers what the stored state depends on. A new filter, watermark
     * delay, trigger or sink is a compatible change, as in Spark. */
    char *shape = json_dumps(d, JSON_SORT_KEYS | JSON_COMPACT);
    json_object_set_new(d, "where", c->where_text ? json_string(c->where_text) : json_null());
    c->query_desc = json_dumps(d, JSON_SORT_KEYS | JSON_COMPACT);
    json_decref(d);
    if (!c->query_desc || !shape) {
        free(shape);
        return SL_ERR_NOMEM;
    }
    const char *schema = sl__codec_canonical(c->codec);
    sl_buf_t b;
    sl__buf_init(&b);
    sl__buf_printf(&b, "%s\n%s", shape, schema);
    c->fingerprint = sl__hash(b.p, b.len);
    sl__buf_fini(&b);
    free(shape);
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
    if (c->codec)
        check_mode(&ck);
    if (!ck.nerrs) {
        build_columns(&ck);
        check_columns(&ck);
    }
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
    free(c->pattern);
    free(c->src_path);
    free(c->src_host);
    for (int i = 0; i < c->nstart_at; i++)
        free(c->start_at[i].topic);
    free(c->start_at);
    for (int i = 0; i < c->nheaders; i++)
        free(c->headers[i]);
    free(c->headers);
    sl__codec_destroy(c->codec);
    free(c->dead_letter_topic);
    sl__expr_destroy(c->where);
    free(c->where_text);
    free(c->group_slots);
    for (int i = 0; c->group_names && i < c->ngroup; i++)
        free(c->group_names[i]);
    free(c->group_names);
    for (int i = 0; i < c->naggs; i++)
        free(c->aggs[i].as);
    free(c->aggs);
    free(c->select_slots);
    for (int i = 0; i < c->ncols; i++)
        free(c->cols[i].name);
    free(c->cols);
    for (int i = 0; i < c->nderived; i++) {
        free(c->derived[i].name);
        free(c->derived[i].text);
        sl__expr_destroy(c->derived[i].expr);
    }
    free(c->derived);
    free(c->late_topic);
    free(c->out_path);
    free(c->out_topic);
    free(c->state_dir);
    free(c->query_desc);
    free(c);
}
