/*
 * conf.h - a job's configuration, read from its JSON job file and checked as a whole:
 * every problem is reported, each with the path of the bad field, before anything runs.
 * The reference of every setting is the job-file section of README.md.
 */
#ifndef SL_CONF_H
#define SL_CONF_H

#include <stdint.h>

#include "agg.h"
#include "codec.h"
#include "expr.h"

typedef struct sl_kv {
    char *k;
    char *v;
} sl_kv_t;

typedef struct sl_kvs {
    sl_kv_t *kv;
    int n;
} sl_kvs_t;

typedef enum { SL_SINK_KAFKA, SL_SINK_CONSOLE } sl_sink_kind_t;
typedef enum { SL_OUT_JSON, SL_OUT_AVRO } sl_out_fmt_t;
typedef enum { SL_ON_BAD_FAIL, SL_ON_BAD_SKIP, SL_ON_BAD_DEAD_LETTER } sl_on_bad_t;

typedef struct sl_conf {
    char *origin;   /* the job file's name, for messages */
    char *base_dir; /* relative paths are taken from here */
    char *name;

    sl_kvs_t kafka;    /* common librdkafka properties */
    sl_kvs_t consumer; /* consumer-only properties */
    sl_kvs_t producer; /* producer-only properties */
    char *bootstrap;   /* kafka["bootstrap.servers"], borrowed from kafka */

    char **topics;
    int ntopics;
    sl_codec_t *codec;
    int starting_latest; /* where a partition with no stored position starts */
    sl_on_bad_t on_bad;
    char *dead_letter_topic;

    sl_expr_t *where;
    char *where_text;
    int *group_slots;
    int ngroup;
    sl_agg_spec_t *aggs;
    int naggs;

    int64_t interval_ms;
    int64_t max_records;
    int available_now;

    sl_sink_kind_t sink;
    char *out_topic;
    sl_out_fmt_t out_fmt;
    int exactly_once; /* Kafka sink: publish each batch in a transaction */

    char *state_dir;

    char *query_desc;     /* JSON of the result layout, stored with the state */
    uint64_t fingerprint; /* hash of query_desc and the input schema */
} sl_conf_t;

/**
 * Parses and checks a job. On failure @p errstr holds every problem, one per line,
 * "origin: path: message"; *confp is NULL.
 */
sl_err_t sl__conf_parse(const char *json, const char *base_dir, const char *origin,
                        sl_conf_t **confp, char *errstr, size_t errstr_size);
void sl__conf_destroy(sl_conf_t *conf);

/** Name of an output column: group fields first, then aggregates. */
const char *sl__conf_group_name(const sl_conf_t *conf, int i);

#endif
