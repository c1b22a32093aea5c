/*
 * err.c - the names of sluice's error codes (err.h).
 */
#include "err.h"

SL_API const char *sl_err2str(sl_err_t err)
{
    switch (err) {
    case SL_OK:
        return "success";
    case SL_ERR_INVAL:
        return "invalid argument or configuration";
    case SL_ERR_NOMEM:
        return "out of memory";
    case SL_ERR_IO:
        return "file system error";
    case SL_ERR_KAFKA:
        return "Kafka error";
    case SL_ERR_STATE:
        return "state store error";
    case SL_ERR_DECODE:
        return "record cannot be decoded";
    case SL_ERR_SCHEMA:
        return "unusable schema";
    case SL_ERR_MISMATCH:
        return "state belongs to an incompatible job";
    case SL_ERR_NOTFOUND:
        return "not found";
    case SL_ERR_FENCED:
        return "producer fenced";
    case SL_ERR_OVERFLOW:
        return "arithmetic overflow";
    case SL_ERR_BUSY:
        return "another instance of the job runs";
    }
    return "unknown error";
}
