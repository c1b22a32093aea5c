/*
 * conf_source.c - the source section of a job file: Kafka (topics or a pattern, starting
 * offsets, data loss, headers), files and sockets, and the input format.
 */
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf_int.h"

static char *load_schema_file(checker_t *ck, const char *rel, const char *path)
{
    char *full = sl__conf_join_path(ck->c->base_dir, rel);
    char *text = NULL;
    if (!full)
        return NULL;
    char why[256];
    sl_err_t err = sl__read_file(full, SL_FILE_MAX, &text, NULL, why, sizeof(why));
    if (err == SL_ERR_NOTFOUND)
        sl__conf_problem(ck, path, "schema file '%s' does not exist", full);
    else if (err)
        sl__conf_problem(ck, path, "cannot read schema file '%s': %s", full, why);
    free(full);
    return text;
}

/* starting_offsets: "earliest", "latest", or {"topic": {"0": 42, "1": -2}} as Spark's
 * (-2 earliest, -1 latest); starting_timestamp: epoch ms or an ISO 8601 date-time. */
static void parse_starting(checker_t *ck, json_t *src)
{
    sl_conf_t *c = ck->c;
    c->source.starting_ts = -1;
    json_t *so = json_object_get(src, "starting_offsets");
    json_t *st = json_object_get(src, "starting_timestamp");
    if (so && st)
        sl__conf_problem(ck, "source.starting_timestamp",
                         "give starting_offsets or starting_timestamp, "
                         "not both");
    const char *v = json_is_string(so) ? sl__conf_get_string(ck, src, "starting_offsets",
                                                             "source.starting_offsets", 0)
                                       : NULL;
    if (v) {
        if (strcmp(v, "earliest") && strcmp(v, "latest"))
            sl__conf_problem(
                ck, "source.starting_offsets",
                "must be \"earliest\", \"latest\" or {\"topic\": {\"partition\": offset}}, "
                "not '%s'",
                v);
        c->source.starting_latest = !strcmp(v, "latest");
    } else if (json_is_object(so)) {
        const char *topic;
        json_t *parts;
        json_object_foreach(so, topic, parts)
        {
            char p[300];
            snprintf(p, sizeof(p), "source.starting_offsets[\"%s\"]", topic);
            if (!json_is_object(parts)) {
                sl__conf_problem(ck, p, "must be {\"partition\": offset, ...}");
                continue;
            }
            const char *part;
            json_t *off;
            json_object_foreach(parts, part, off)
            {
                char *end;
                long pn = strtol(part, &end, 10);
                if (*end || pn < 0 || !json_is_integer(off) || json_integer_value(off) < -2) {
                    sl__conf_problem(
                        ck, p, "partition '%s': an offset, -2 (earliest) or -1 (latest)", part);
                    continue;
                }
                sl_start_off_t *n = realloc(c->source.start_at, (size_t)(c->source.nstart_at + 1) * sizeof(*n));
                if (!n)
                    return;
                c->source.start_at = n;
                n[c->source.nstart_at++] =
                    (sl_start_off_t){strdup(topic), (int)pn, json_integer_value(off)};
            }
        }
    } else if (so && !json_is_string(so)) {
        sl__conf_problem(ck, "source.starting_offsets",
                         "must be \"earliest\", \"latest\" or "
                         "{\"topic\": {\"partition\": offset}}");
    }
    if (json_is_integer(st) && json_integer_value(st) >= 0)
        c->source.starting_ts = json_integer_value(st);
    else if (json_is_string(st) &&
             sl__ts_parse(json_string_value(st), json_string_length(st), &c->source.starting_ts) == 0)
        ;
    else if (st)
        sl__conf_problem(
            ck, "source.starting_timestamp",
            "must be epoch milliseconds or a date-time such as \"2026-11-25T09:00:00Z\"");
}

/* A directory of files or a socket; 1 when the source is one (its Kafka-only options are
 * refused), 0 for Kafka. */
static int parse_local_source(checker_t *ck, json_t *src)
{
    sl_conf_t *c = ck->c;
    const char *type = sl__conf_get_string(ck, src, "type", "source.type", 0);
    if (!type || !strcmp(type, "kafka")) {
        static const char *const local[] = {"path", "max_files", "host", "port", NULL};
        for (const char *const *k = local; *k; k++) {
            if (json_object_get(src, *k))
                sl__conf_problem(ck, "source",
                                 "'%s' is an option of the files or socket source, not of "
                                 "Kafka (set \"type\")",
                                 *k);
        }
        return 0;
    }
    if (!strcmp(type, "files")) {
        c->source.kind = SL_SRC_FILES;
        const char *path = sl__conf_get_string(ck, src, "path", "source.path", 1);
        if (path)
            c->source.path = sl__conf_join_path(c->base_dir, path);
        json_t *mf = json_object_get(src, "max_files");
        if (mf && (!json_is_integer(mf) || json_integer_value(mf) <= 0))
            sl__conf_problem(ck, "source.max_files", "must be a positive integer");
        else if (mf)
            c->source.max_files = json_integer_value(mf);
    } else if (!strcmp(type, "socket")) {
        c->source.kind = SL_SRC_SOCKET;
        const char *host = sl__conf_get_string(ck, src, "host", "source.host", 0);
        c->source.host = strdup(host ? host : "127.0.0.1");
        json_t *port = json_object_get(src, "port");
        if (!json_is_integer(port) || json_integer_value(port) <= 0 ||
            json_integer_value(port) > 65535)
            sl__conf_problem(ck, "source.port", "missing: a TCP port (1-65535)");
        else
            c->source.port = (int)json_integer_value(port);
    } else {
        sl__conf_problem(ck, "source.type", "unknown source '%s' (kafka, files or socket)", type);
        return 1;
    }
    static const char *const kafka_only[] = {
        "topics",       "pattern", "starting_offsets", "starting_timestamp",
        "on_data_loss", "headers", "confluent_wire",   "schema_ids", "co_partitioned", NULL};
    for (const char *const *k = kafka_only; *k; k++) {
        if (json_object_get(src, *k))
            sl__conf_problem(ck, "source", "'%s' is an option of the Kafka source, not of %s", *k,
                             type);
    }
    if (c->source.kind == SL_SRC_SOCKET && json_object_get(src, "max_files"))
        sl__conf_problem(ck, "source.max_files", "only the files source has it");
    if (c->source.kind == SL_SRC_FILES &&
        (json_object_get(src, "host") || json_object_get(src, "port")))
        sl__conf_problem(ck, "source", "only the socket source has a host and port");
    c->source.starting_ts = -1;
    return 1;
}

void sl__conf_parse_source(checker_t *ck, json_t *root)
{
    sl_conf_t *c = ck->c;
    json_t *src = sl__conf_get_object(ck, root, "source", "source", 1);
    if (!src)
        return;
    static const char *const keys[] = {"type",
                                       "topics",
                                       "pattern",
                                       "format",
                                       "schema",
                                       "writer_schema",
                                       "confluent_wire",
                                       "schema_ids",
                                       "fields",
                                       "starting_offsets",
                                       "starting_timestamp",
                                       "on_decode_error",
                                       "on_data_loss",
                                       "headers",
                                       "co_partitioned",
                                       "path",
                                       "max_files",
                                       "host",
                                       "port",
                                       NULL};
    sl__conf_check_keys(ck, src, "source", keys);
    if (parse_local_source(ck, src))
        goto format;

    json_t *cp = json_object_get(src, "co_partitioned");
    if (cp && !json_is_boolean(cp))
        sl__conf_problem(ck, "source.co_partitioned", "must be true or false");
    c->source.co_partitioned = json_is_true(cp);
    json_t *topics = json_object_get(src, "topics");
    const char *pattern = sl__conf_get_string(ck, src, "pattern", "source.pattern", 0);
    if (pattern) {
        if (topics)
            sl__conf_problem(ck, "source.pattern", "give topics or a pattern, not both");
        regex_t re;
        int rc = regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB);
        if (rc) {
            char why[200];
            regerror(rc, &re, why, sizeof(why));
            sl__conf_problem(ck, "source.pattern", "not a regular expression: %s", why);
        } else {
            regfree(&re);
            /* librdkafka takes a subscription starting with '^' as a pattern. */
            size_t n = strlen(pattern) + 2;
            c->source.pattern = malloc(n);
            if (c->source.pattern)
                snprintf(c->source.pattern, n, "%s%s", pattern[0] == '^' ? "" : "^", pattern);
        }
    } else if (json_is_string(topics)) {
        c->source.topics = calloc(1, sizeof(char *));
        if (c->source.topics) {
            c->source.topics[0] = strdup(json_string_value(topics));
            c->source.ntopics = 1;
        }
    } else if (json_is_array(topics) && json_array_size(topics) > 0) {
        c->source.topics = calloc(json_array_size(topics), sizeof(char *));
        size_t i;
        json_t *t;
        json_array_foreach(topics, i, t)
        {
            if (!json_is_string(t) || json_string_length(t) == 0) {
                char p[64];
                snprintf(p, sizeof(p), "source.topics[%zu]", i);
                sl__conf_problem(ck, p, "must be a topic name");
            } else if (c->source.topics) {
                c->source.topics[c->source.ntopics++] = strdup(json_string_value(t));
            }
        }
    } else if (!pattern) {
        sl__conf_problem(ck, "source.topics",
                         "missing: a topic name or a list of them (or a pattern)");
    }

format:;
    const char *fmt = sl__conf_get_string(ck, src, "format", "source.format", 0);
    if (!fmt && c->source.kind != SL_SRC_KAFKA)
        fmt = "text"; /* lines of files and sockets are text unless said otherwise */
    char errbuf[512];
    if (!fmt || !strcmp(fmt, "avro")) {
        const char *schema = sl__conf_get_string(ck, src, "schema", "source.schema", 1);
        const char *writer =
            sl__conf_get_string(ck, src, "writer_schema", "source.writer_schema", 0);
        json_t *cw = json_object_get(src, "confluent_wire");
        if (cw && !json_is_boolean(cw))
            sl__conf_problem(ck, "source.confluent_wire", "must be true or false");
        json_t *jids = json_object_get(src, "schema_ids");
        int32_t ids[64];
        sl_confluent_t cf = {.ids = ids};
        if (json_is_true(cw) && !jids) {
            sl__conf_problem(ck, "source.schema_ids",
                             "missing: the Confluent schema ids whose records this job's schema "
                             "decodes, e.g. [7] (a record framed with another id is a decode "
                             "error)");
        } else if (jids && !json_is_true(cw)) {
            sl__conf_problem(ck, "source.schema_ids",
                             "only records in the Confluent wire format carry a schema id "
                             "(\"confluent_wire\": true)");
        } else if (jids && (!json_is_array(jids) || !json_array_size(jids) ||
                            json_array_size(jids) > SL_ARRAY_LEN(ids))) {
            sl__conf_problem(ck, "source.schema_ids", "must be a list of 1 to %zu schema ids",
                             SL_ARRAY_LEN(ids));
        } else if (jids) {
            size_t i;
            json_t *id;
            json_array_foreach(jids, i, id)
            {
                if (!json_is_integer(id) || json_integer_value(id) < 0 ||
                    json_integer_value(id) > INT32_MAX) {
                    char p[64];
                    snprintf(p, sizeof(p), "source.schema_ids[%zu]", i);
                    sl__conf_problem(ck, p, "must be a schema id (0 to %d)", INT32_MAX);
                } else {
                    ids[cf.nids++] = (int32_t)json_integer_value(id);
                }
            }
        }
        char *rtext = schema ? load_schema_file(ck, schema, "source.schema") : NULL;
        char *wtext = writer ? load_schema_file(ck, writer, "source.writer_schema") : NULL;
        if (rtext && (!writer || wtext)) {
            errbuf[0] = 0;
            if (sl__codec_avro_new(rtext, wtext, json_is_true(cw) ? &cf : NULL, &c->source.codec,
                                   errbuf, sizeof(errbuf)) != SL_OK)
                sl__conf_problem(ck, "source.schema", "%s", errbuf);
        }
        free(rtext);
        free(wtext);
    } else if (json_object_get(src, "confluent_wire") || json_object_get(src, "schema_ids")) {
        sl__conf_problem(ck, "source.format",
                         "the Confluent wire format (confluent_wire, schema_ids) frames Avro "
                         "records, not %s",
                         fmt);
    } else if (!strcmp(fmt, "text")) {
        errbuf[0] = 0;
        if (json_object_get(src, "schema") || json_object_get(src, "fields"))
            sl__conf_problem(ck, "source.format",
                             "a text source has one field, value; it takes no "
                             "schema or fields");
        if (sl__codec_text_new(&c->source.codec, errbuf, sizeof(errbuf)) != SL_OK)
            sl__conf_problem(ck, "source.format", "%s", errbuf);
    } else if (!strcmp(fmt, "json")) {
        json_t *fields = json_object_get(src, "fields");
        errbuf[0] = 0;
        if (sl__codec_json_new(fields, &c->source.codec, errbuf, sizeof(errbuf)) != SL_OK)
            sl__conf_problem(ck, "source.fields", "%s", errbuf);
    } else {
        sl__conf_problem(ck, "source.format", "unknown format '%s' (avro, json or text)", fmt);
    }

    parse_starting(ck, src);
    const char *dl = sl__conf_get_string(ck, src, "on_data_loss", "source.on_data_loss", 0);
    if (dl && strcmp(dl, "fail") && strcmp(dl, "skip"))
        sl__conf_problem(ck, "source.on_data_loss", "must be \"fail\" (the default) or \"skip\"");
    c->source.data_loss_skip = dl && !strcmp(dl, "skip");
    json_t *hdrs = json_object_get(src, "headers");
    if (hdrs && (!json_is_array(hdrs) || !json_array_size(hdrs))) {
        sl__conf_problem(ck, "source.headers", "must be a list of header names");
    } else if (hdrs) {
        c->source.headers = calloc(json_array_size(hdrs), sizeof(char *));
        size_t i;
        json_t *h;
        json_array_foreach(hdrs, i, h)
        {
            char p[64];
            snprintf(p, sizeof(p), "source.headers[%zu]", i);
            if (!json_is_string(h) || !json_string_length(h))
                sl__conf_problem(ck, p, "must be a header name");
            else if (c->source.headers)
                c->source.headers[c->source.nheaders++] = strdup(json_string_value(h));
        }
    }

    json_t *bad = json_object_get(src, "on_decode_error");
    c->source.on_bad = SL_ON_BAD_FAIL;
    if (json_is_string(bad) && !strcmp(json_string_value(bad), "fail")) {
        c->source.on_bad = SL_ON_BAD_FAIL;
    } else if (json_is_string(bad) && !strcmp(json_string_value(bad), "skip")) {
        c->source.on_bad = SL_ON_BAD_SKIP;
    } else if (json_is_object(bad)) {
        static const char *const dk[] = {"dead_letter_topic", NULL};
        sl__conf_check_keys(ck, bad, "source.on_decode_error", dk);
        const char *t = sl__conf_get_string(ck, bad, "dead_letter_topic",
                                            "source.on_decode_error.dead_letter_topic", 1);
        if (t) {
            c->source.on_bad = SL_ON_BAD_DEAD_LETTER;
            c->source.dead_letter_topic = strdup(t);
        }
    } else if (bad) {
        sl__conf_problem(ck, "source.on_decode_error",
                         "must be \"fail\", \"skip\" or {\"dead_letter_topic\": \"...\"}");
    }
}
