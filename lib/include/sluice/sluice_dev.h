/*
 * sluice_dev.h - what sluice offers for development beside its API: librdkafka's mock
 * cluster in the process (the embedded broker of `sluice demo` and `sluice dev-broker`,
 * for trying jobs without Kafka) and the page-view generator (the demo's, the tests' and
 * the benchmark's input). Programs that only run jobs need <sluice/sluice.h> alone; these
 * calls may change between minor versions.
 */
#ifndef SLUICE_DEV_H
#define SLUICE_DEV_H

#include <stddef.h>
#include <stdint.h>

#include "sluice/sluice.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- the embedded development broker ---------------------------------------------- */

/** librdkafka's mock cluster, in this process. Opaque. */
typedef struct sl_mock sl_mock_t;

/**
 * @brief Starts a mock Kafka cluster of @p brokers brokers on loopback ports.
 * @param mockp receives the cluster; destroy it with sl_mock_destroy().
 */
SL_API sl_err_t sl_mock_new(int brokers, sl_mock_t **mockp, char *errstr, size_t errstr_size);

/** @brief The cluster's bootstrap servers, valid while the cluster lives. */
SL_API const char *sl_mock_bootstraps(const sl_mock_t *mock);

/** @brief Creates a topic with @p partitions partitions on the mock cluster. */
SL_API sl_err_t sl_mock_create_topic(sl_mock_t *mock, const char *topic, int partitions);

/** @brief Stops the cluster. NULL is a no-op. */
SL_API void sl_mock_destroy(sl_mock_t *mock);

/* ---- the page-view generator (demo, tests, benchmarks) ---------------------------- */

/** One page view, as schemas/pageview.avsc declares it. Strings are borrowed. */
typedef struct sl_pageview {
    char user_id[16];
    char page[24];
    int64_t ts_ms;
    int64_t bytes;
    int32_t latency_ms;
} sl_pageview_t;

/** How sl_gen_pageview() spreads its values. */
typedef struct sl_gen_spec {
    uint64_t seed;    /**< different seeds give different streams */
    uint32_t pages;   /**< distinct pages (keys), at least 1 */
    uint32_t users;   /**< distinct users, at least 1 */
    int64_t start_ms; /**< ts_ms of record 0; each record is 1 ms later */
    int by_page;      /**< sl_gen_produce(): record to partition page % partitions, so a
                           page's records keep their order (default: i % partitions) */
} sl_gen_spec_t;

/** @brief Fills @p out with record number @p i of the stream @p spec describes. Pure. */
SL_API void sl_gen_pageview(const sl_gen_spec_t *spec, uint64_t i, sl_pageview_t *out);

/** @brief The Avro schema of page views (schemas/pageview.avsc), as JSON text. */
SL_API const char *sl_gen_pageview_schema(void);

/**
 * @brief Encodes @p pv as Avro binary (no container, no header) into @p buf.
 * @return the encoded size, or 0 when @p size is too small.
 */
SL_API size_t sl_gen_pageview_avro(const sl_pageview_t *pv, uint8_t *buf, size_t size);

/**
 * @brief Produces records @p first .. @p first + @p count - 1 of the stream to @p topic,
 * record i to partition i % @p partitions (or by page, see sl_gen_spec_t), keyed by
 * user_id, Avro-encoded, and waits until all are acknowledged.
 * @param conf extra librdkafka producer properties as "name=value" strings (borrowed;
 * NULL-terminated; may be NULL).
 */
SL_API sl_err_t sl_gen_produce(const char *bootstrap, const char *const *conf, const char *topic,
                               int partitions, const sl_gen_spec_t *spec, uint64_t first,
                               uint64_t count, char *errstr, size_t errstr_size);

#ifdef __cplusplus
}
#endif
#endif /* SLUICE_DEV_H */
