/*
 * sluice.h - the public API of libsluice.
 *
 * A job reads Kafka topics in micro-batches, decodes each record (Avro or JSON), runs a
 * stateful aggregation whose state lives in RocksDB, and publishes the rows that changed
 * to a sink. A C program builds a job from a job file (or its JSON text), runs it until
 * sl_job_stop() is called, and destroys it. Every type here is opaque; accessors give
 * what a caller may read.
 *
 * Errors: functions return sl_err_t (SL_OK is 0, errors are negative); where a user needs
 * to know what went wrong, the function also fills a caller's errstr buffer with what and
 * where ("job.json: query.group_by[1]: unknown field 'pgae'").
 */
#ifndef SLUICE_H
#define SLUICE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "sluice/err.h"
#include "sluice/version.h"

#ifdef __cplusplus
extern "C" {
#endif

/** @brief The version string of the library the program runs with, e.g. "0.1.0"; compare
 *  with SLUICE_VERSION, the one it was compiled against. */
SL_API const char *sl_version(void);
/** @brief The same as a number, SLUICE_VERSION_NUMBER's form (major * 10000 + minor * 100
 *  + patch). */
SL_API int sl_version_number(void);

/* ---- logging ---------------------------------------------------------------------- */

/** Log levels, as syslog orders them. */
typedef enum sl_log_level {
    SL_LOG_ERROR = 3,
    SL_LOG_WARN = 4,
    SL_LOG_INFO = 6,
    SL_LOG_DEBUG = 7,
} sl_log_level_t;

/**
 * @brief Configures the process-wide log: lines below @p min_level are dropped; with
 * @p json set each line is a JSON object (for containers), else human-readable text.
 * Lines go to @p out (borrowed; stderr when NULL). librdkafka's and RocksDB's own logs
 * are routed here too.
 */
SL_API void sl_log_configure(sl_log_level_t min_level, int json, FILE *out);

/**
 * A program's own log: called with each line at or above the configured level instead of
 * writing it (@p facility and @p msg borrowed for the call). Calls come from any of the
 * job's threads and librdkafka's, one at a time.
 */
typedef void (*sl_log_fn)(void *opaque, sl_log_level_t level, const char *facility,
                          const char *msg);

/**
 * @brief Sends the process-wide log's lines to @p fn (with @p opaque) instead of a
 * stream; NULL goes back to the stream of sl_log_configure().
 */
SL_API void sl_log_set_callback(sl_log_fn fn, void *opaque);

/* ---- jobs ------------------------------------------------------------------------- */

/** A job: configuration, schemas, query, state and sinks. Opaque. */
typedef struct sl_job sl_job_t;

/**
 * @brief Reads and validates a job file. Relative paths inside it (schema files, the
 * state directory) are taken relative to the file's folder.
 *
 * On failure every problem found is written to @p errstr, one per line, each naming the
 * file and the path of the bad field, and *jobp is left NULL.
 * @param jobp receives the job, which the caller must destroy with sl_job_destroy().
 */
SL_API sl_err_t sl_job_new_from_file(const char *path, sl_job_t **jobp, char *errstr,
                                     size_t errstr_size);

/**
 * @brief Same as sl_job_new_from_file() with the job's JSON text in @p json (borrowed).
 * @param base_dir folder that relative paths are taken from (borrowed; "." when NULL).
 * @param origin name used in error messages in place of a file name (borrowed).
 */
SL_API sl_err_t sl_job_new_from_json(const char *json, const char *base_dir, const char *origin,
                                     sl_job_t **jobp, char *errstr, size_t errstr_size);

/**
 * @brief Sets where the console sink prints (borrowed; stdout when never set). Call
 * before sl_job_run().
 */
SL_API void sl_job_set_console(sl_job_t *job, FILE *out);

/**
 * @brief Runs the job until sl_job_stop() is called (or, with an available-now trigger,
 * until it has read what the topics held at start). Before it returns it finishes the
 * batch under way, commits it and publishes its rows.
 *
 * Kafka and the schemas are checked before the state directory is opened or created, so
 * a job that cannot start writes nothing to the state.
 */
SL_API sl_err_t sl_job_run(sl_job_t *job, char *errstr, size_t errstr_size);

/**
 * @brief Asks a running job to finish its current batch and return. Safe to call from a
 * signal handler or another thread.
 */
SL_API void sl_job_stop(sl_job_t *job);

/** @brief Counters of a job, readable during and after sl_job_run(). Fields are only ever
 *  added at the end: sl_job_stats() fills as many as the caller's struct holds. */
typedef struct sl_job_stats {
    uint64_t batches;         /**< batches committed */
    uint64_t records_in;      /**< records read from the source */
    uint64_t records_bad;     /**< records that could not be decoded (skipped, counted) */
    uint64_t records_kept;    /**< records that passed the where filter */
    uint64_t rows_out;        /**< result rows published */
    int64_t first_record_ms;  /**< monotonic clock (ms) when the first record was read; 0 none */
    int64_t last_commit_ms;   /**< monotonic clock (ms) when the last batch was published */
    uint64_t records_late;    /**< records behind the watermark for a closed window */
    uint64_t records_untimed; /**< records of a windowed query whose event time was null */
    uint64_t windows_closed;  /**< windows the watermark closed (their state dropped) */
    int64_t watermark_ms;     /**< the watermark (epoch ms); INT64_MIN before the first */
    uint64_t records_lost;    /**< records deleted by retention before they were read, skipped
                                   (source.on_data_loss "skip") */
    uint64_t records_restored; /**< changelog records read while opening tasks */
    int64_t restore_ms;        /**< time spent reading changelogs while opening tasks (the
                                    opens of several tasks at once count once) */
    uint64_t tasks_opened;     /**< tasks opened (a task that moves away and back counts
                                    twice) */
} sl_job_stats_t;

/** @brief One batch's result rows, as the foreach-batch sink hands them over (borrowed:
 *  valid during the callback only). */
typedef struct sl_batch sl_batch_t;

/**
 * @brief Called with each batch's result rows and its id (the batch sequence, which
 * increases by one per batch). A batch whose callback a crash interrupted is handed over
 * again, with the same id and rows, when the job restarts: make the callback idempotent
 * by its batch id for exactly-once results. Calls come one at a time, in batch order,
 * from the job's commit thread (not the thread that called sl_job_run()), while the job
 * reads the next batch.
 */
typedef void (*sl_foreach_batch_fn)(void *opaque, int64_t batch_id, const sl_batch_t *rows);

/**
 * @brief Sets the callback of a job whose output sink is "foreach" (@p opaque is
 * passed through). Call before sl_job_run(); a foreach job without one does not start.
 */
SL_API void sl_job_set_foreach_batch(sl_job_t *job, sl_foreach_batch_fn fn, void *opaque);

/** @brief Number of rows of @p b. */
SL_API size_t sl_batch_rows(const sl_batch_t *b);
/** @brief Number of columns of @p b. */
SL_API int sl_batch_columns(const sl_batch_t *b);
/** @brief Name of column @p col (borrowed). */
SL_API const char *sl_batch_column_name(const sl_batch_t *b, int col);
/** @brief Type of column @p col: "long", "double", "string", "boolean" or "timestamp". */
SL_API const char *sl_batch_column_type(const sl_batch_t *b, int col);
/** @brief 1 when the value at @p row, @p col is null. */
SL_API int sl_batch_is_null(const sl_batch_t *b, size_t row, int col);
/** @brief A long, boolean (0/1) or timestamp (epoch ms) value; 0 for null or other types. */
SL_API int64_t sl_batch_long(const sl_batch_t *b, size_t row, int col);
/** @brief A double value (longs converted); 0 for null or other types. */
SL_API double sl_batch_double(const sl_batch_t *b, size_t row, int col);
/** @brief A string value (not NUL-terminated; its length in *len), or NULL. */
SL_API const char *sl_batch_string(const sl_batch_t *b, size_t row, int col, size_t *len);
/** @brief Row @p row as a JSON object, as the JSON output format writes it; free() it. */
SL_API char *sl_batch_row_json(const sl_batch_t *b, size_t row);

/**
 * @brief The result table of a job whose output sink is "memory", as a JSON array of row
 * objects: in complete mode the last batch's table, otherwise every row emitted so far,
 * in order. Free it with free(); NULL when out of memory.
 */
SL_API char *sl_job_memory_rows(const sl_job_t *job);

/**
 * @brief The Avro schema (JSON text) of the job's output values, or of its message keys
 * with @p key_only, as the Avro output format writes them. The caller frees the result
 * with free(); NULL when out of memory.
 */
SL_API char *sl_job_avro_schema(const sl_job_t *job, int key_only);

/**
 * @brief Copies the job's counters into @p out, whose size is @p size (sizeof(*out) as the
 * caller was compiled): a program built against an older header gets the fields it knows,
 * one built against a newer header gets zeros for fields this library lacks.
 */
SL_API void sl_job_stats(const sl_job_t *job, sl_job_stats_t *out, size_t size);

/** @brief Destroys a job that is not running. NULL is a no-op. */
SL_API void sl_job_destroy(sl_job_t *job);

/* ---- state inspection ------------------------------------------------------------- */

/**
 * @brief Prints, without Kafka, what a job's state directory holds: the stored source
 * positions, the batch sequence, the job fingerprint, and the aggregates (all of them,
 * or only the one whose group key is @p key, its fields' values separated by commas).
 * @param out where to print (borrowed).
 */
SL_API sl_err_t sl_state_inspect(const char *dir, const char *key, FILE *out, char *errstr,
                                 size_t errstr_size);

#ifdef __cplusplus
}
#endif
#endif /* SLUICE_H */
