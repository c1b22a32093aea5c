/*
 * tk.h - what sluice's tests share: a real Kafka broker (started by tests/kafka/kafka.sh
 * unless KAFKA_BOOTSTRAP_SERVERS names one), topics made and deleted through the admin
 * API, reading a topic to its end, temporary folders, and running the sluice CLI.
 */
#ifndef SL_TK_H
#define SL_TK_H

#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "sluice/sluice.h"

/** The bootstrap address of the test broker; starts one on first use (stopped at exit). */
const char *tk_bootstrap(void);
/**
 * Starts a broker of Kafka @p version with its data in @p dir (tests/kafka/kafka.sh);
 * returns its bootstrap address (free() it). Stop it with tk_broker_stop().
 */
char *tk_broker_start(const char *version, const char *dir);
void tk_broker_stop(const char *dir);
/** A name unique to this process and call, e.g. "agg-in-4242-3". */
void tk_unique(char *buf, size_t size, const char *prefix);
/** Creates a topic (and waits until its metadata is visible); aborts the test on failure. */
void tk_create_topic(const char *bootstrap, const char *topic, int partitions);
/** A test's input and output topics: unique names "<name>-in-..." and "<name>-out-..." in
 *  @p in and @p out (@p size bytes each), created with @p in_parts and @p out_parts
 *  partitions. */
void tk_in_out_topics(const char *bootstrap, const char *name, int in_parts, int out_parts,
                      char *in, char *out, size_t size);
/** The same with topic settings (@p config: name, value, ..., NULL). */
void tk_create_topic_config(const char *bootstrap, const char *topic, int partitions,
                            const char *const *config);
/** Sets a topic's settings to @p config (name, value, ..., NULL); the others go back to
 *  the broker's defaults. */
void tk_alter_topic(const char *bootstrap, const char *topic, const char *const *config);
void tk_delete_topic(const char *bootstrap, const char *topic);
/** A producer (acks=all) for the test's input; rd_kafka_flush() and destroy it. */
rd_kafka_t *tk_producer(const char *bootstrap);
/** Produces the text @p value to @p partition (-1: by key, or any) of @p topic. */
void tk_produce(rd_kafka_t *p, const char *topic, int partition, const char *key,
                const char *value);
/** The same with the record's timestamp @p ts_ms (0: now); both wait while the producer's
 *  queue is full. */
void tk_produce_at(rd_kafka_t *p, const char *topic, int partition, const char *key,
                   const char *value, int64_t ts_ms);
/** A consumer reading read_committed, with partition-end events, committing nothing, to
 *  be assigned partitions by the caller; destroy it with rd_kafka_destroy(). */
rd_kafka_t *tk_reader(const char *bootstrap);
/**
 * Reads @p topic from the beginning to its current end with isolation.level
 * read_committed, calling @p fn for each record. Returns the number of records.
 */
uint64_t tk_consume_all(const char *bootstrap, const char *topic,
                        void (*fn)(void *opaque, const rd_kafka_message_t *m), void *opaque);
/** A new empty folder under /tmp; the caller removes it with tk_rmrf(). */
char *tk_tmpdir(const char *prefix);
/** A job's folder under /tmp ("sluice-it-<name>-..."), holding the page-view schema as
 *  pageview.avsc; the caller removes it with tk_rmrf(). */
char *tk_job_dir(const char *name);
void tk_rmrf(const char *path);
/** The first 64 KiB of the file at @p path (a log, for failure messages), in a static
 *  buffer that the next call overwrites; "" when it cannot be read. */
const char *tk_slurp(const char *path);
/** Writes @p text to @p dir/@p name. */
void tk_write_file(const char *dir, const char *name, const char *text);
/**
 * Runs the sluice CLI with @p argv (NULL-terminated, without the program name) and
 * returns its exit status; its stderr is captured into @p err (NUL-terminated).
 */
int tk_run_cli(const char *const *argv, char *err, size_t err_size, int timeout_s);
/**
 * Starts the sluice CLI with @p argv (NULL-terminated, without the program name) in the
 * background, stdout to /dev/null and stderr to @p log (appended), with SLUICE_CRASH_AT
 * set to @p crash_at when not NULL. Returns its pid.
 */
int tk_spawn_cli(const char *const *argv, const char *crash_at, const char *log);
/** Waits for @p pid up to @p timeout_s; returns its exit status, 128 + signal when killed,
 *  or -1 on time-out (the process is then killed). */
int tk_wait(int pid, int timeout_s);
/** Waits up to @p timeout_ms for @p pid to end: its status as tk_wait() gives it, or -1
 *  when it still runs (it is left running). */
int tk_wait_ms(int pid, int64_t timeout_ms);
/** What `sluice inspect` says of a state directory, added up. */
typedef struct tk_state_totals {
    uint64_t positions; /* next offsets of the partitions of one topic, summed */
    uint64_t counts;    /* the "count" aggregate over all keys */
    int ok;             /* inspect exited 0 */
} tk_state_totals_t;

/**
 * Runs `sluice inspect @p state` and adds up the positions of @p topic and the counts.
 * The full text is copied to @p text (may be NULL) for failure messages.
 */
tk_state_totals_t tk_state_totals(const char *state, const char *topic, char *text,
                                  size_t text_size);
/**
 * Reads @p topic to its end (read_committed) and returns the last row (a JSON object)
 * seen for each value of the string column @p key; the caller json_decref()s it.
 */
json_t *tk_latest_rows(const char *bootstrap, const char *topic, const char *key);
/** Sums the integer column @p column over the rows of tk_latest_rows(). */
uint64_t tk_sum_column(json_t *rows, const char *column);

/** A job running in a thread of the test. */
typedef struct tk_runner {
    sl_job_t *job; /* borrowed */
    sl_err_t rc;
    char err[4096];
    pthread_t thread;
} tk_runner_t;

/** Runs sl_job_run(@p job) in a new thread. */
void tk_runner_start(tk_runner_t *r, sl_job_t *job);
/** Waits for the job's thread; its result is in r->rc and r->err. */
void tk_runner_join(tk_runner_t *r);
/** A job run to its end (an available-now trigger) in the test's process. */
typedef struct tk_job_result {
    sl_err_t rc;
    char err[4096];
    json_t *rows; /* its memory sink's rows (json_decref) */
    sl_job_stats_t st;
} tk_job_result_t;

/** Runs the job of @p json (relative paths from @p dir) and returns how it ended. */
tk_job_result_t tk_run_job(const char *json, const char *dir);
/** Starts the job of @p json in a thread (tk_runner_join() and sl_job_destroy() it). */
sl_job_t *tk_start_job(const char *json, const char *dir, tk_runner_t *r);
/** The rows of a job's memory sink, as JSON (json_decref). */
json_t *tk_memory_rows(const sl_job_t *job);

/**
 * The id a result row carries in its sluice-id header, "<job>/<task>/<batch>/<row>":
 * 0 with its parts filled (@p job gets the job's name), -1 when the row has none.
 */
int tk_row_id(const rd_kafka_message_t *m, char *job, size_t job_size, int *task, int64_t *seq,
              int64_t *idx);

/** The offsets consumer group @p group has committed for @p topic's @p partitions
 *  partitions, summed (a partition without one counts 0): what lag tools see. */
uint64_t tk_group_committed(const char *bootstrap, const char *group, const char *topic,
                            int partitions);
/** The end offsets of @p topic's @p partitions partitions, summed. */
uint64_t tk_end_offsets(const char *bootstrap, const char *topic, int partitions);
/** Deletes every record of @p topic's @p partitions partitions (DeleteRecords to the end),
 *  as retention would. */
void tk_delete_records(const char *bootstrap, const char *topic, int partitions);

/** Path of the built sluice binary. */
const char *tk_sluice_bin(void);

#endif
