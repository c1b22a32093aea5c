/*
 * changelog.h - the changelog of a job's state, the copy of it that outlives a machine.
 *
 * Every state change of task t is also published to partition t of a compacted topic,
 * "<job>-changelog", in the same Kafka transaction as the task's result rows: a state
 * record per aggregate the batch wrote (key 'a' + the state key without its task prefix,
 * value the stored aggregate) or deleted (a tombstone), then a marker (key 'm', JSON)
 * naming the task's batch (its sequence and a random nonce) and carrying everything the
 * task commits beside its aggregates: positions, watermarks, files read. Compaction keeps
 * the last record of each key, so the topic holds the task's whole state and its last
 * marker; a task restores from it (task.c) and learns from its markers which of its
 * batches Kafka has.
 */
#ifndef SL_CHANGELOG_H
#define SL_CHANGELOG_H

#include <librdkafka/rdkafka.h>

#include "util.h"

#define SL_CLOG_STATE 'a'  /* a state record's key starts with it */
#define SL_CLOG_MARKER 'm' /* the marker's key */
#define SL_MARKER_FORMAT 1

/* One entry of a task's meta (layout.h), without the "t/<task>/" prefix. */
typedef struct sl_meta_entry {
    char *name;
    uint8_t *val;
    size_t vlen;
} sl_meta_entry_t;

/* What a marker says. */
typedef struct sl_marker {
    int task;
    int64_t seq;             /* the task's batch */
    uint64_t nonce;          /* random, per batch: tells batches of one sequence apart */
    uint64_t fingerprint;    /* of the job's query and input schema */
    int64_t committed_ms;    /* wall clock, when the batch was handed over */
    sl_meta_entry_t *meta;   /* the task's meta as of this batch */
    size_t nmeta, cap;
} sl_marker_t;

/** Adds a meta entry to @p m (copies of @p name and @p val); SL_ERR_NOMEM. */
sl_err_t sl__marker_add(sl_marker_t *m, const char *name, const void *val, size_t vlen);
/** The marker as JSON into @p out (appended). */
sl_err_t sl__marker_encode(const sl_marker_t *m, const char *job, sl_buf_t *out);
/** Reads a marker; SL_ERR_STATE with @p errstr saying what is wrong. sl__marker_fini()
 *  frees it, also after a failure. */
sl_err_t sl__marker_decode(const void *p, size_t len, sl_marker_t *m, char *errstr,
                           size_t errstr_size);
/** Frees what the marker holds and zeroes it. */
void sl__marker_fini(sl_marker_t *m);

/** The changelog key of a state key (task prefix first) into @p out (emptied). */
sl_err_t sl__clog_key(const uint8_t *state_key, size_t klen, sl_buf_t *out);

/** The changelog topic of job @p job. */
void sl__clog_topic(char *buf, size_t size, const char *job);

/**
 * Makes sure @p topic exists as a changelog of @p partitions partitions: creates it when
 * missing (cleanup.policy=compact, the broker's default replication); refuses one with
 * another partition count or a cleanup policy without compaction, naming it. A broker
 * that cannot create topics (the embedded one) must have it already.
 */
sl_err_t sl__clog_ensure(rd_kafka_t *rk, const char *bootstrap, const char *topic,
                         int partitions, char *errstr, size_t errstr_size);

#endif
