/*
 * err.h - sluice's error codes. Every module returns them, so util owns this header (it
 * includes nothing of sluice's); it is installed as the public <sluice/err.h>, which
 * <sluice/sluice.h> includes.
 */
#ifndef SLUICE_ERR_H
#define SLUICE_ERR_H

#ifdef __cplusplus
extern "C" {
#endif

#ifndef SL_API
#if defined(SL_BUILDING_LIB)
#define SL_API __attribute__((visibility("default")))
#else
#define SL_API
#endif
#endif

/** Error codes: SL_OK is success, every error is negative. */
typedef enum sl_err {
    SL_OK = 0,
    SL_ERR_INVAL = -1,    /**< bad argument or job configuration */
    SL_ERR_NOMEM = -2,    /**< out of memory */
    SL_ERR_IO = -3,       /**< file system error */
    SL_ERR_KAFKA = -4,    /**< Kafka error (broker unreachable, unknown topic, produce) */
    SL_ERR_STATE = -5,    /**< RocksDB error, or state that cannot be decoded */
    SL_ERR_DECODE = -6,   /**< a record that cannot be decoded */
    SL_ERR_SCHEMA = -7,   /**< an Avro schema that cannot be used */
    SL_ERR_MISMATCH = -8, /**< the state was written by an incompatible job */
    SL_ERR_NOTFOUND = -9, /**< no such key or file */
    SL_ERR_FENCED = -10,  /**< the producer was fenced or failed fatally; it must be replaced */
    SL_ERR_OVERFLOW = -11, /**< a value does not fit its type (a long sum or expression) */
    SL_ERR_BUSY = -12,     /**< another instance of the job runs */
} sl_err_t;

/** @brief A short, static, human-readable name of an error code. */
SL_API const char *sl_err2str(sl_err_t err);

#ifdef __cplusplus
}
#endif
#endif /* SLUICE_ERR_H */
