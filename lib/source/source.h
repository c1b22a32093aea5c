/*
 * source.h - the Kafka source: a consumer-group member whose partitions start at the
 * positions stored in the state (never at Kafka's committed offsets), read in batches.
 * It tracks, per partition, the next offset to read, so that the job commits positions
 * in the same write as the state they produced.
 */
#ifndef SL_SOURCE_H
#define SL_SOURCE_H

#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <regex.h>

#include "conf/conf.h"
#include "store.h"

/* One input record, from Kafka or another source: what the query and the side topics
 * (dead letters, late records) see of it. Valid until the next consume call. */
typedef struct sl_rec {
    const void *payload; /* NULL: a Kafka tombstone */
    size_t len;
    const void *key;
    size_t klen;
    const char *topic; /* Kafka: the topic; files: the file's name; socket: "host:port" */
    int32_t partition;
    int64_t offset; /* Kafka: the offset; files: the line's byte offset; socket: line number */
    int64_t ts;     /* Kafka: the record's timestamp; files: the file's time; -1 none */
    const rd_kafka_message_t *km; /* the Kafka message, or NULL */
} sl_rec_t;

typedef struct sl_part {
    int64_t pos;       /* next offset to read; -1 when not known yet */
    int64_t committed; /* the position last written to the state */
    int64_t end;       /* available-now: the end offset seen at start; -1 none */
    int assigned;
    int at_end;    /* read to the end (nothing pending) since the last record */
    int held;      /* assigned, but paused until its task is open (sl__source_release()) */
    int64_t maxev; /* the largest event time read from it; INT64_MIN none */
} sl_part_t;

typedef struct sl_source_topic {
    char *name;
    sl_part_t *parts;
    int nparts;
} sl_source_topic_t;

/* Wakes librdkafka's fetcher after the prefetch queue drained (see source.c). */
typedef struct sl_refill {
    size_t high, low;  /* queue lengths: near its bound, drained */
    double high_bytes; /* near the bound in bytes (queued.max.messages.kbytes) */
    double avg_len;    /* running mean of the records' sizes */
    int full;          /* seen near its bound since the last wake-up */
    pthread_t thread;  /* sends the requests that wake the broker threads */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    rd_kafka_topic_partition_list_t *want; /* the partitions to wake for, handed over */
    int started, stop;
} sl_refill_t;

/* What the job does when the group gives partitions or takes them (rebalance callback,
 * on the consuming thread). */
typedef struct sl_source_hooks {
    /* Before the partitions' positions are looked up: opens their tasks. Non-zero when the
     * job cannot go on (it has recorded why); nothing is assigned then. */
    sl_err_t (*assigned)(void *opaque, const rd_kafka_topic_partition_list_t *parts);
    /* Before the partitions go: commits what was read of them, closes their tasks.
     * @p lost: the group took them (another instance may have them already). */
    void (*revoked)(void *opaque, const rd_kafka_topic_partition_list_t *parts, int cooperative,
                    int lost);
    /* Whether a partition's task is open, so that it is read at once; else it is held
     * (assigned and paused) until sl__source_release(). */
    int (*ready)(void *opaque, int partition);
    void *opaque;
} sl_source_hooks_t;

typedef struct sl_source {
    const char *job;              /* the job's name */
    const sl_conf_kafka_t *kafka; /* the Kafka clients' properties */
    const sl_conf_source_t *cs;   /* what to read and from where to start */
    sl_store_t *store; /* borrowed; positions are read from it on assignment */
    rd_kafka_t *rk;
    rd_kafka_queue_t *q;
    sl_source_topic_t *topics;
    int ntopics;
    rd_kafka_topic_t *last_rkt; /* cache for topic lookup per message */
    int last_topic;
    const char *last_name; /* last_rkt's topic name */
    regex_t re;            /* source.pattern, compiled */
    int has_re;
    int fresh;          /* the job has never committed: its starting offsets apply */
    uint64_t lost;      /* records skipped by on_data_loss "skip" */
    sl_first_err_t fatal; /* set by callbacks when the job cannot go on */
    sl_refill_t refill;
    int closing; /* sl__source_close() runs: the rebalance callback assigns nothing */
    /* The consumer group and this instance's static member id (group.instance.id), and
     * the id sluice gave before it named the state directory (still taken as this job's
     * own when a restart finds it in the group). */
    char group[300];
    char instance[360];
    char legacy_instance[340];
    int admin; /* the broker answers admin requests: 1, 0, or -1 not known yet */
    int ntasks;      /* co-partitioned input: its partition count, the job's tasks */
    sl_source_hooks_t hooks;
} sl_source_t;

/**
 * Creates the consumer of job @p job and checks that the brokers answer and every source
 * topic exists. Does not subscribe yet. @p state_dir names this instance in the consumer
 * group. The configuration parts are borrowed for the life of @p src. Fills @p errstr
 * with one line on failure.
 */
sl_err_t sl__source_open(sl_source_t *src, const char *job, const sl_conf_kafka_t *kafka,
                         const sl_conf_source_t *cs, const char *state_dir, char *errstr,
                         size_t errstr_size);
/**
 * Checks through the consumer group that no other instance of the job runs: a member of
 * the group other than this instance (its group.instance.id, or, once joined, its member
 * id) means one does, or did until less than session.timeout.ms ago. SL_ERR_BUSY naming
 * it; SL_OK also when the broker cannot describe groups (the mock cluster).
 */
sl_err_t sl__source_check_alone(sl_source_t *src, char *errstr, size_t errstr_size);
/** Loads stored positions for assignments from @p store from now on, and subscribes. With
 *  @p available_now, first records each partition's end offset. */
sl_err_t sl__source_start(sl_source_t *src, sl_store_t *store, int available_now, char *errstr,
                          size_t errstr_size);
/** The partition record of a message's topic and partition (grown on demand); NULL when
 *  the topic is not a source topic or out of memory. src->last_name is then the topic's
 *  name. */
sl_part_t *sl__source_part_lookup(sl_source_t *src, const rd_kafka_message_t *m);
static inline sl_part_t *sl__source_part(sl_source_t *src, const rd_kafka_message_t *m)
{
    /* Records come in runs of one topic's known partitions: those take no call. */
    if (m->rkt == src->last_rkt && src->last_topic >= 0 && m->partition >= 0 &&
        m->partition < src->topics[src->last_topic].nparts)
        return &src->topics[src->last_topic].parts[m->partition];
    return sl__source_part_lookup(src, m);
}
/** With available-now: 1 once every partition's position reached its end offset. */
int sl__source_caught_up(const sl_source_t *src);
/**
 * Checks a partition's position against its log: returns the position to read from (the
 * log start when records were deleted unread and on_data_loss is "skip", counting them
 * in src->lost), or -1 with src->fatal.msg naming the topic, partition and offsets lost.
 */
int64_t sl__source_data_loss(sl_source_t *src, rd_kafka_t *rk, const char *topic, int partition,
                             int64_t pos);
/**
 * Called by the consuming thread after each consume call with what it got (@p n records
 * of @p bytes in all): keeps the prefetch queue flowing (see source.c). Never blocks.
 */
void sl__source_refill(sl_source_t *src, size_t n, size_t bytes);
/**
 * Starts reading the held partitions of task @p task: each at its stored position (its
 * task is open now, so the store has it) or, without one, at its starting offset.
 */
sl_err_t sl__source_release(sl_source_t *src, int task, char *errstr, size_t errstr_size);
/** Moves the partitions of @p l to their offsets: a seek, or for a partition whose fetch
 *  librdkafka stopped (its position fell out of the log), an assignment again. */
sl_err_t sl__source_seek(sl_source_t *src, rd_kafka_topic_partition_list_t *l, char *errstr,
                         size_t errstr_size);
/** Pauses the partitions of task @p task again (held), until sl__source_release(). */
void sl__source_hold(sl_source_t *src, int task);
/**
 * Asks the group's coordinator whether this instance holds task @p task's partitions:
 * 1 yes, 0 no (another instance, or this one no longer a member), -1 not known now (a
 * rebalance under way, no answer, a broker without the admin API).
 */
int sl__source_owns(sl_source_t *src, int task);
/** Leaves the group and destroys the consumer; call it before the store it reads
 *  positions from is closed. With @p leave, a static member leaves the group first (its
 *  partitions go to the others at once, not after its session times out). Closing a
 *  closed (zeroed) source is a no-op. */
void sl__source_close(sl_source_t *src, int leave);

/** Meta key of a partition's position: "t/<task>/pos/<topic>/<partition>" (layout.h); the
 *  length it needs, as snprintf() (@p buf holds a cut, terminated key when too small). */
int sl__source_pos_key(char *buf, size_t size, int task, const char *topic, int partition);
/** The task a partition belongs to: its number when the input is co-partitioned, else 0. */
int sl__source_task(const sl_source_t *src, int partition);

#endif
