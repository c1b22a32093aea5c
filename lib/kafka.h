/*
 * kafka.h - what sluice's Kafka clients share: building a librdkafka configuration from
 * the job's properties, routing librdkafka's logs into sl_log, and checking at start
 * that the brokers answer and the topics exist, so that a job that cannot run says so in
 * one line before it touches its state.
 */
#ifndef SL_KAFKA_H
#define SL_KAFKA_H

#include <librdkafka/rdkafka.h>

#include "conf/conf.h"

/**
 * A librdkafka configuration: sluice's @p defaults, then the job's common properties (@p k),
 * then @p role's (k->consumer or k->producer), then @p fixed, which sluice owns. Both lists are
 * "name", "value" pairs, NULL-terminated, and may be NULL. NULL with @p errstr filled
 * when a property is rejected.
 */
rd_kafka_conf_t *sl__kafka_conf(const sl_conf_kafka_t *k, const sl_kvs_t *role,
                                const char *const *defaults, const char *const *fixed, char *errstr,
                                size_t errstr_size);

/**
 * Checks that every topic exists, through @p rk's metadata; fills @p errstr naming the
 * first missing topic, or the brokers when they cannot be reached.
 * @param nparts receives each topic's partition count when not NULL.
 */
sl_err_t sl__kafka_check_topics(rd_kafka_t *rk, const char *bootstrap, char *const *topics,
                                int ntopics, const char *what, int *nparts, char *errstr,
                                size_t errstr_size);

/**
 * The value of the integer setting @p key of a broker (@p name NULL: the first broker the
 * metadata names) or a topic, through DescribeConfigs; -1 when it cannot be read (a
 * broker that does not answer DescribeConfigs, as the mock cluster, is found out at
 * once).
 */
int64_t sl__kafka_config_value(rd_kafka_t *rk, rd_kafka_ResourceType_t type, const char *name,
                               const char *key);

/**
 * The value of the setting @p key of a broker (@p name NULL: the first one) or a topic,
 * as text, into @p buf ("" when the resource lacks it); -1 when it cannot be read.
 */
int sl__kafka_config_string(rd_kafka_t *rk, rd_kafka_ResourceType_t type, const char *name,
                            const char *key, char *buf, size_t size);

/**
 * Creates @p topic with @p partitions partitions, the broker's default replication and
 * the settings @p config ("name", "value", ..., NULL); one that exists already is no
 * error. SL_ERR_KAFKA with @p errstr saying why it cannot be made.
 */
sl_err_t sl__kafka_create_topic(rd_kafka_t *rk, const char *topic, int partitions,
                                const char *const *config, char *errstr, size_t errstr_size);

/**
 * A consumer that reads partitions it is assigned (read_committed, with partition-end
 * events, never joining its group or committing), for reading a topic to its end; NULL
 * with @p errstr naming @p what when it cannot be made. rd_kafka_destroy() it.
 */
rd_kafka_t *sl__kafka_reader(const sl_conf_kafka_t *k, const char *what, char *errstr,
                             size_t errstr_size);

/**
 * Hands up to @p max messages of @p q (a consumer's queue of @p rk) to @p fn, waiting up
 * to @p timeout_ms for the first; each is destroyed after @p fn returns. The number
 * handed over, and their payload bytes in *bytes (may be NULL).
 *
 * One message a call, not librdkafka's batch consume: in 2.0 (Debian 12's) the batch API
 * moves a partition's application offset past messages that a pause, a resume or a seek
 * made it drop, and librdkafka pauses and resumes every partition around each rebalance,
 * so the fetcher then skipped them (seen: 664 records of a partition never delivered
 * while another instance joined the group; fixed in librdkafka 2.1 and 2.2). The
 * one-message path drops an outdated message before it touches the offset.
 */
size_t sl__kafka_consume(rd_kafka_t *rk, rd_kafka_queue_t *q, int timeout_ms, size_t max,
                         void (*fn)(void *opaque, rd_kafka_message_t *m), void *opaque,
                         size_t *bytes);

/** Holds back (@p on) or lets through again librdkafka's log lines, all but critical
 *  ones; calls nest. */
void sl__kafka_quiet(int on);

#endif
