/*
 * conf.h - a job's configuration, read from its JSON job file and checked as a whole:
 * every problem is reported, each with the path of the bad field, before anything runs.
 * The reference of every setting is the job-file section of README.md.
 */
#ifndef SL_CONF_H
#define SL_CONF_H

#include <stdint.h>

#include "codec/codec.h"
#include "query/agg.h"
#include "query/expr.h"

/* A batch ends early once it holds this many groups (or, without aggregation, rows): a
 * batch costs about 1 KiB of memory per group between its table, its merge, its outbox
 * rows and the producer's queue, and the next batch is read while it commits. */
#define SL_DEFAULT_MAX_KEYS 200000

typedef struct sl_kv {
    char *k;
    char *v;
} sl_kv_t;

typedef struct sl_kvs {
    sl_kv_t *kv;
    int n;
} sl_kvs_t;

typedef enum {
    SL_SINK_KAFKA,
    SL_SINK_CONSOLE,
    SL_SINK_FILE,    /* JSON lines, one file per batch */
    SL_SINK_MEMORY,  /* rows kept in the job, read with sl_job_memory_rows() */
    SL_SINK_FOREACH, /* a C callback per batch, sl_job_set_foreach_batch() */
} sl_sink_kind_t;
typedef enum { SL_MODE_UPDATE, SL_MODE_COMPLETE, SL_MODE_APPEND } sl_mode_t;
typedef enum {
    SL_SRC_KAFKA,
    SL_SRC_FILES,  /* a directory: each new file read once, its lines the records */
    SL_SRC_SOCKET, /* a TCP connection: its lines the records; no replay */
} sl_src_kind_t;
typedef enum { SL_WIN_NONE, SL_WIN_SLIDING, SL_WIN_SESSION } sl_win_kind_t;

/* What an output column holds. */
typedef enum {
    SL_COL_WSTART, /* the window's start (timestamp) */
    SL_COL_WEND,   /* the window's end */
    SL_COL_KEY,    /* group-by value idx */
    SL_COL_AGG,    /* aggregate idx */
    SL_COL_SELECT, /* a projected row slot idx (queries without aggregation) */
} sl_col_kind_t;

typedef struct sl_col {
    char *name;
    sl_type_t type;
    int nullable;
    sl_col_kind_t kind;
    int idx;
    char *json; /* the name as a JSON object key, with its colon: "name": */
    size_t json_len;
} sl_col_t;

/* A value computed per record into row slot @c slot from an expression over the fields. */
typedef struct sl_derived {
    char *name;
    char *text; /* the expression as written */
    int slot;
    sl_expr_t *expr;
} sl_derived_t;

/* A partition's starting offset: -2 earliest, -1 latest, else the offset. */
typedef struct sl_start_off {
    char *topic;
    int partition;
    int64_t offset;
} sl_start_off_t;

/* Kafka metadata of a record, available to the query as fields. */
typedef enum {
    SL_META_TOPIC,
    SL_META_PARTITION,
    SL_META_OFFSET,
    SL_META_TIMESTAMP,
    SL_META_KEY,
    SL_META_COUNT
} sl_meta_t;
typedef enum { SL_OUT_JSON, SL_OUT_AVRO } sl_out_fmt_t;
typedef enum { SL_ON_BAD_FAIL, SL_ON_BAD_SKIP, SL_ON_BAD_DEAD_LETTER } sl_on_bad_t;

/* The Kafka clients' properties (the job file's "kafka" object). */
typedef struct sl_conf_kafka {
    sl_kvs_t props;    /* common librdkafka properties */
    sl_kvs_t consumer; /* consumer-only properties */
    sl_kvs_t producer; /* producer-only properties */
    char *bootstrap;   /* props["bootstrap.servers"], borrowed from props */
} sl_conf_kafka_t;

/* Where records come from and how they are decoded ("source"). */
typedef struct sl_conf_source {
    sl_src_kind_t kind;
    char *path;        /* files: the directory */
    char *host;        /* socket: where to connect */
    int port;
    int64_t max_files; /* files: at most this many new files a batch; 0 no limit */
    char **topics;
    int ntopics;
    char *pattern; /* source.pattern: a regular expression of topic names, "^..." */
    sl_codec_t *codec;
    /* Where a partition with no stored position starts when the job first runs (later
     * partitions and topics start at the earliest offset, as in Spark). */
    int starting_latest;
    int64_t starting_ts;      /* starting_timestamp (epoch ms); -1 none */
    sl_start_off_t *start_at; /* starting_offsets per partition */
    int nstart_at;
    int data_loss_skip; /* source.on_data_loss: "skip" (else the job stops) */
    char **headers;     /* Kafka headers read as fields "_header_<name>" */
    int nheaders;
    sl_on_bad_t on_bad;
    char *dead_letter_topic;
    /* Every group key's records are in one partition number of the input topics: the job
     * runs as a task per partition number, which instances of it share. */
    int co_partitioned;
} sl_conf_source_t;

/* The query compiled ("query", and "output.mode", whose rules it follows): the row a record
 * becomes, the filter, the group key, windows, the watermark, the aggregates and the
 * output columns. */
typedef struct sl_plan {
    /* The row a record becomes: the input fields, then the Kafka metadata fields, then
     * the derived values in the order they are computed. */
    int nfields;        /* of the codec */
    int meta_base;      /* slot of the first metadata field */
    unsigned meta_used; /* bit per sl_meta_t */
    int nslots;
    sl_derived_t *derived;
    int nderived;

    sl_expr_t *where;
    char *where_text;
    int *group_slots;
    char **group_names;
    int ngroup;
    sl_agg_spec_t *aggs;
    int naggs;
    int *select_slots; /* a query without aggregation: the projected slots */
    int nselect;
    int aggregating; /* group by / aggregates (else records pass through) */

    /* Event time, windows and the watermark. */
    sl_win_kind_t window;
    int time_slot;         /* the window's event-time slot, -1 without a window */
    int64_t win_size_ms;   /* sliding: size; session: gap */
    int64_t win_slide_ms;  /* sliding: slide (== size for tumbling windows) */
    int64_t win_offset_ms; /* sliding: start offset */
    int wm_slot;           /* the watermark's event-time slot, -1 without one */
    int64_t wm_delay_ms;
    int64_t idle_timeout_ms; /* 0: the watermark moves only with input */
    char *late_topic;        /* late records go here too (NULL: counted only) */
    sl_mode_t mode;

    sl_col_t *cols; /* the output columns */
    int ncols;
    int nkeycols; /* the first nkeycols columns make the message key */
} sl_plan_t;

/* When a batch ends ("trigger"). */
typedef struct sl_conf_trigger {
    int64_t interval_ms;
    int64_t max_records;
    int64_t max_keys;             /* a batch ends once its table holds this many groups (or rows) */
    int64_t min_records;          /* a batch waits for this many records ... */
    int64_t max_trigger_delay_ms; /* ... but not longer than this past its interval */
    int available_now;
} sl_conf_trigger_t;

/* Where result rows go ("output"; its mode is the plan's). */
typedef struct sl_conf_output {
    sl_sink_kind_t sink;
    char *topic;         /* Kafka: the output topic */
    char *path;          /* files: the directory */
    sl_out_fmt_t format; /* Kafka: JSON or Avro */
    int exactly_once;    /* publish each batch to Kafka (rows, changelog) in a transaction */
} sl_conf_output_t;

/* Where the job keeps its state ("state"). */
typedef struct sl_conf_state {
    char *dir;
    int changelog; /* the state is also kept in the changelog topic (commit/changelog.h) */
} sl_conf_state_t;

/* A job's configuration: its parts, one a stage of the data flow, each handed to the
 * module of that stage. */
typedef struct sl_conf {
    char *origin;   /* the job file's name, for messages */
    char *base_dir; /* relative paths are taken from here */
    char *name;

    sl_conf_kafka_t kafka;
    sl_conf_source_t source;
    sl_plan_t plan;
    sl_conf_trigger_t trigger;
    sl_conf_output_t output;
    sl_conf_state_t state;

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

const char *sl__mode_name(sl_mode_t m);
/** The name of a row slot: an input field's, a metadata field's or a derived field's
 *  ("?" for -1, a value whose problem was reported). */
const char *sl__conf_slot_name(const sl_conf_t *c, int slot);
/** The field name of Kafka header @p header: "_header_" and the name, other characters
 *  than letters and digits made '_'. */
void sl__conf_header_field(const char *header, char *out, size_t size);

#endif
