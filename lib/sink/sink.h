/*
 * sink.h - where result rows go.
 *
 * Kafka: rows are published in batches, each record tagged with the headers sluice-job,
 * sluice-seq and sluice-idx. With exactly-once delivery (the default) a batch is one Kafka
 * transaction of a transactional producer whose id is derived from the job; otherwise an
 * idempotent producer publishes it. The sink remembers, per output partition, the offset
 * after the last record of its own that Kafka confirmed, so that a restart knows where to
 * start looking for rows an interrupted run may have published.
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

/** One encoded result row and its place in the output: batch @p seq, row @p idx. */
typedef struct sl_out_row {
    int64_t seq;
    uint32_t idx;
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

typedef struct sl_sink {
    const char *job;                /* the job's name, in each record's headers */
    const sl_conf_kafka_t *kafka;   /* the Kafka clients' properties */
    const sl_conf_output_t *output; /* where rows go */
    const sl_plan_t *plan;          /* their columns (console), the late records' topic */
    FILE *console;
    rd_kafka_t *rk;        /* output producer; NULL for the console sink */
    rd_kafka_topic_t *rkt; /* rk's handle of the output topic, with its metadata known */
    rd_kafka_t *dlq;       /* dead-letter producer; NULL without a dead-letter topic */
    int transactional;     /* rk runs transactions */
    int started;           /* a transaction is open with a batch's rows queued in it */
    char txn_id[300];
    int64_t *confirmed; /* per output partition: offset after our last confirmed record */
    int64_t *pending;   /* the same for the transaction under way */
    int nparts;
    sl_sink_fails_t fails;      /* of the output producer */
    sl_sink_fails_t side_fails; /* of the dead-letter producer */
    /* The largest request the output producer may send (its message.max.bytes, lowered to
     * the topic's max.message.bytes when that is smaller), and where each comes from. */
    int64_t max_bytes;
    int64_t producer_max; /* the producer's message.max.bytes as configured */
    int64_t topic_max;    /* the topic's max.message.bytes; -1 when it cannot be read */
    char max_str[24];  /* max_bytes as the producer is told it, when lowered */
} sl_sink_t;

/** The bytes a record of @p klen and @p vlen bytes takes in a request of its own, with
 *  sluice's headers and Kafka's batch and record framing, counted generously. */
size_t sl__sink_record_size(const sl_sink_t *s, size_t klen, size_t vlen);
/** Checks that a result row of @p klen and @p vlen bytes fits what the output topic and
 *  its producer take; SL_ERR_INVAL with what to change in @p errstr when it does not. */
sl_err_t sl__sink_check_size(const sl_sink_t *s, size_t klen, size_t vlen, char *errstr,
                             size_t errstr_size);

/** Opens the producers job @p job needs: the output's (@p output), and one for dead
 *  letters (to @p dead_letter_topic, NULL for none) and late records (the plan's
 *  late_topic), and checks the topics they write to exist. With exactly-once delivery it
 *  also checks transaction.timeout.ms against the broker's maximum; it fences nothing yet
 *  (sl__sink_start() does). The configuration parts are borrowed for the life of @p s. */
sl_err_t sl__sink_open(sl_sink_t *s, const char *job, const sl_conf_kafka_t *kafka,
                       const sl_conf_output_t *output, const sl_plan_t *plan,
                       const char *dead_letter_topic, FILE *console, char *errstr,
                       size_t errstr_size);
/** With exactly-once delivery, fences any earlier producer of this job (init_transactions)
 *  and aborts its open transaction: call it once the job knows it is the only one. */
sl_err_t sl__sink_start(sl_sink_t *s, char *errstr, size_t errstr_size);
/**
 * Publishes @p n rows to the output topic as one unit (one transaction when
 * transactional), retrying a transaction that must be aborted; a transaction that
 * sl__sink_publish_start() opened with the same rows is committed first. SL_ERR_FENCED
 * when the producer cannot go on (fenced by another instance, or a fatal error): the
 * caller resets it with sl__sink_reset() and reconciles. @p copy: librdkafka copies the
 * rows; without, their bytes must stay valid until the producer is reset or closed, even
 * after an error (records of a failed attempt may still be queued).
 */
sl_err_t sl__sink_publish(sl_sink_t *s, const sl_out_row_t *rows, size_t n, int copy,
                          const char *crash_point, char *errstr, size_t errstr_size);
/**
 * With transactions, opens the batch's transaction and queues its rows, so that
 * librdkafka sends them while the state is written; readers see none of them until
 * sl__sink_publish() commits it after the state write. Without transactions it does
 * nothing (published records are visible at once, so they wait for the state). An
 * aborted attempt is left for sl__sink_publish() to make again. Errors as there.
 */
sl_err_t sl__sink_publish_start(sl_sink_t *s, const sl_out_row_t *rows, size_t n, int copy,
                                const char *crash_point, char *errstr, size_t errstr_size);
/** Aborts the transaction sl__sink_publish_start() opened (the state write failed). */
void sl__sink_publish_abort(sl_sink_t *s);
/** Replaces the output producer by a new one (init_transactions fences the old one). */
sl_err_t sl__sink_reset(sl_sink_t *s, char *errstr, size_t errstr_size);
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
