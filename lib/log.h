/*
 * log.h - one logging call for the whole engine. Lines carry a level and a facility
 * ("source", "state", "rdkafka", ...); the process-wide configuration chooses text for a
 * terminal or JSON lines for a container. librdkafka's and RocksDB's logs come here too.
 */
#ifndef SL_LOG_H
#define SL_LOG_H

#include "sluice/sluice.h"

void sl_log(sl_log_level_t level, const char *facility, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/** True when a line at @p level would be written (to skip costly formatting). */
int sl__log_enabled(sl_log_level_t level);

#endif
