/*
 * sink.h - where result rows go.
 *
 * Kafka: each task of the job publishes its batches through a producer of its own: the
 * result rows to the output topic, each with the header sluice-id
 * ("<job>/<task>/<batch>/<row>"), and its changelog records to its changelog partition.
 * With exactly-once delivery (the default) a task's batch is one Kafka transaction, with
 * the task's input offsets committed to the consumer group in it; otherwise an idempotent
 * producer publishes it. Each producer remembers the offsets after its last confirmed
 * records, so that a restart knows where to look for what an interrupted run published.
 *
 * Console: each batch printed as Spark's console sink prints a micro-batch.
 *
 * Dead letters and late records go through a separate idempotent producer, outside any
 * transaction, since they must be in Kafka before the state commits the positions that
 * pass them (at least once: a crash in between sends them again).
 */
#ifndef SL_SINK_H
#define SL_SINK_H

#include <librdkafka/rdkafka.h>
#include <stdio.h>

#include "conf/conf.h"
#include "source/source.h"

/* Where a record of the outbox goes. */
typedef enum {
    SL_DEST_OUTPUT = 'o',    /* a result row, to the output topic */
    SL_DEST_CHANGELOG = 'c', /* a state record, to the task's changelog partition */
    SL_DEST_TOMBSTONE = 'd', /* a deleted state key, the same (its value is null) */
    SL_DEST_MARKER = 'm'     /* the marker that closes a task's batch in the changelog */
} sl_dest_t;

/** One encoded record and its place in the output: task batch @p seq, record @p idx. */
typedef struct sl_out_row {
    int64_t seq;
    uint32_t idx;
    sl_dest_t dest;
    const uint8_t *key;
    size_t klen;
    const uint8_t *val;
    size_t vlen;
} sl_out_row_t;

/* Delivery failures of one producer since its last flush, and the first of them. */
typedef struct sl_sink_fails {
    uint64_t n;
    char first[256];
} sl_sink_fails_t;

struct sl_sink;

/* The producer of one task: its output rows and changelog records go out in its own
 * transactions (transactional.id sluice-<job>, and -<task> when the job has several), so
 * that the instance that takes a task over fences whoever had it before. */
typedef struct sl_txn {
    struct sl_sink *s;
    int task;
    rd_kafka_t *rk;
    rd_kafka_topic_t *rkt;  /* the output topic, its metadata known; NULL without one */
    rd_kafka_topic_t *clog; /* the changelog topic; NULL without one */
    char txn_id[320];
    int started; /* a transaction is open with a batch's records queued in it */
    /* Per output partition: the offset after our last confirmed record, and the same for
     * the transaction under way (a job without a changelog reconciles from there). */
    int64_t *confirmed, *pending;
    /* The changelog offset after our last confirmed record, and the same under way. */
    int64_t clog_confirmed, clog_pending;
    sl_sink_fails_t fails;
} sl_txn_t;

typedef struct sl_sink {
    const char *job;                /* the job's name, in each record's header */
    const sl_conf_kafka_t *kafka;   /* the Kafka clients' properties */
    const sl_conf_output_t *output; /* where rows go */
    const sl_plan_t *plan;          /* their columns (console), the late records' topic */
    FILE *console;
    const char *clog_topic;  /* the changelog, or NULL */
    int kafka_out;           /* rows go to a Kafka topic */
    int transactional;       /* the tasks' producers run transactions */
    int ntasks;
    sl_txn_t **txns;         /* per task; NULL while the task is not open here */
    rd_kafka_consumer_group_metadata_t *cgmd; /* input offsets go with each transaction */
    rd_kafka_t *dlq;         /* dead-letter producer; NULL without a dead-letter topic */
    sl_sink_fails_t side_fails; /* of the dead-letter producer */
    int nparts;              /* the output topic's partitions */
    /* The largest request a producer may send (its message.max.bytes, lowered to the
     * topic's max.message.bytes when that is smaller), and where each comes from. */
    int64_t max_bytes;
    int64_t producer_max; /* the producer's message.max.bytes as configured */
    int64_t topic_max;    /* the topic's max.message.bytes; -1 when it cannot be read */
    char max_str[24];     /* max_bytes as the producers are told it, when lowered */
} sl_sink_t;

/** The bytes a record of @p klen and @p vlen bytes takes in a request of its own, with
 *  sluice's header and Kafka's batch and record framing, counted generously. */
size_t sl__sink_record_size(const sl_sink_t *s, size_t klen, size_t vlen);
/** Checks that a result row of @p klen and @p vlen bytes fits what the output topic and
 *  its producer take; SL_ERR_INVAL with what to change in @p errstr when it does not. */
sl_err_t sl__sink_check_size(const sl_sink_t *s, size_t klen, size_t vlen, char *errstr,
                             size_t errstr_size);

/**
 * Checks the topics job @p job writes to and opens its dead-letter producer (to
 * @p dead_letter_topic, NULL for none; late records go to the plan's late_topic). Rows go
 * to @p output; @p clog_topic (NULL: none) is the changelog of the job's @p ntasks
 * tasks, whose producers sl__sink_task_open() makes; @p group is the consumer group
 * their transactions commit input offsets to (NULL: none). With exactly-once delivery
 * it also checks transaction.timeout.ms against the broker's maximum; it fences nothing.
 * The configuration parts are borrowed for the life of @p s.
 */
sl_err_t sl__sink_open(sl_sink_t *s, const char *job, const sl_conf_kafka_t *kafka,
                       const sl_conf_output_t *output, const sl_plan_t *plan,
                       const char *dead_letter_topic, const char *clog_topic, int ntasks,
                       const char *group, FILE *console, char *errstr, size_t errstr_size);
/** 1 when the job publishes through task producers (to an output topic or a changelog). */
int sl__sink_has_producers(const sl_sink_t *s);
/**
 * Opens @p task's producer: with exactly-once delivery, init_transactions fences every
 * earlier producer of the task and aborts its open transaction. The producer is
 * s->txns[task] until sl__sink_task_close().
 */
sl_err_t sl__sink_task_open(sl_sink_t *s, int task, char *errstr, size_t errstr_size);
/** Closes @p task's producer (not open: a no-op). */
void sl__sink_task_close(sl_sink_t *s, int task);
/**
 * Publishes @p n records of one task batch as one unit (one transaction when
 * transactional, with @p offsets, the task's input positions, committed to the consumer
 * group in it; may be NULL), retrying a transaction that must be aborted; a transaction
 * that sl__sink_publish_start() opened with the same records is committed first.
 * SL_ERR_FENCED when the producer cannot go on (fenced by another producer of the task,
 * or a fatal error): the caller resets it with sl__sink_reset() or closes the task.
 * @p copy: librdkafka copies the records; without, their bytes must stay valid until the
 * producer is reset or closed, even after an error.
 */
sl_err_t sl__sink_publish(sl_txn_t *t, const sl_out_row_t *rows, size_t n, int copy,
                          const rd_kafka_topic_partition_list_t *offsets,
                          const char *crash_point, char *errstr, size_t errstr_size);
/**
 * With transactions, opens the batch's transaction and queues its records, so that
 * librdkafka sends them while the state is written; readers see none of them until
 * sl__sink_publish() commits it after the state write. Without transactions it does
 * nothing (published records are visible at once, so they wait for the state). An
 * aborted attempt is left for sl__sink_publish() to make again. Errors as there.
 */
sl_err_t sl__sink_publish_start(sl_txn_t *t, const sl_out_row_t *rows, size_t n, int copy,
                                const char *crash_point, char *errstr, size_t errstr_size);
/**
 * One unit published in parts, for records too many to hold at once (a task's whole state):
 * sl__sink_txn_begin(), any number of sl__sink_txn_add() (librdkafka copies the records),
 * sl__sink_txn_commit(). Not retried: a failure aborts the unit (or leaves a fenced
 * producer to be reset) and returns the error.
 */
sl_err_t sl__sink_txn_begin(sl_txn_t *t, char *errstr, size_t errstr_size);
sl_err_t sl__sink_txn_add(sl_txn_t *t, const sl_out_row_t *rows, size_t n, char *errstr,
                          size_t errstr_size);
sl_err_t sl__sink_txn_commit(sl_txn_t *t, const rd_kafka_topic_partition_list_t *offsets,
                             char *errstr, size_t errstr_size);
/** Aborts the transaction sl__sink_publish_start() opened (the state write failed). */
void sl__sink_publish_abort(sl_txn_t *t);
/** Replaces a task's producer by a new one (init_transactions fences the old one). */
sl_err_t sl__sink_reset(sl_txn_t *t, char *errstr, size_t errstr_size);
/**
 * Queues a copy of an input record to a side topic (dead letters, late records): its key
 * and bytes with headers saying where it came from and why (sluice-error).
 */
sl_err_t sl__sink_side(sl_sink_t *s, const char *topic, const sl_rec_t *m, const char *why,
                       char *errstr, size_t errstr_size);
/** Waits until every side record is acknowledged; SL_ERR_KAFKA if any failed. */
sl_err_t sl__sink_flush_side(sl_sink_t *s, char *errstr, size_t errstr_size);
/** Prints one batch of rows (ncols values each) as a table, Spark-style. */
void sl__sink_console(sl_sink_t *s, int64_t seq, const sl_val_t *rows, size_t nrows);
void sl__sink_close(sl_sink_t *s);

#endif
