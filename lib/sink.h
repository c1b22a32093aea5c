/*
 * sink.h - where result rows go: a Kafka topic (through an idempotent producer, each
 * record tagged with the headers sluice-job, sluice-seq and sluice-idx), or the console,
 * printed the way Spark's console sink prints a micro-batch. The producer also carries
 * records to the dead-letter topic.
 */
#ifndef SL_SINK_H
#define SL_SINK_H

#include <librdkafka/rdkafka.h>
#include <stdio.h>

#include "conf.h"

typedef struct sl_sink {
    const sl_conf_t *conf;
    rd_kafka_t *rk; /* NULL when nothing is produced */
    FILE *console;
    uint64_t failed;     /* delivery failures since the last flush */
    char first_err[256]; /* the first of them */
} sl_sink_t;

/** Opens the producer when the job produces (Kafka sink or dead-letter topic) and checks
 *  that the topics it writes exist. */
sl_err_t sl__sink_open(sl_sink_t *s, const sl_conf_t *conf, FILE *console, char *errstr,
                       size_t errstr_size);
/** Queues one record. Headers are added when @p seq is not negative. */
sl_err_t sl__sink_produce(sl_sink_t *s, const char *topic, const void *key, size_t klen,
                          const void *val, size_t vlen, int64_t seq, uint32_t idx,
                          char *errstr, size_t errstr_size);
/** Queues a dead-letter record: the undecodable bytes with where they came from and why. */
sl_err_t sl__sink_dead_letter(sl_sink_t *s, const rd_kafka_message_t *m, const char *why,
                              char *errstr, size_t errstr_size);
/** Waits until every queued record is acknowledged; SL_ERR_KAFKA if any failed. */
sl_err_t sl__sink_flush(sl_sink_t *s, char *errstr, size_t errstr_size);
/** Prints one batch of rows (ncols values each) as a table, Spark-style. */
void sl__sink_console(sl_sink_t *s, int64_t seq, const sl_val_t *rows, size_t nrows);
void sl__sink_close(sl_sink_t *s);

#endif
