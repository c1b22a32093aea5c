/*
 * log.c - the process-wide log sink. One mutex keeps lines from different threads
 * (the job loop, librdkafka's threads) whole. In JSON mode each line is an object with
 * ts, level, facility and msg, which container log collectors read without parsing.
 */
#include "log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

static struct {
    pthread_mutex_t lock;
    sl_log_level_t min;
    int json;
    int json_set;
    FILE *out;
    sl_log_fn fn;
    void *opaque;
} g_log = {PTHREAD_MUTEX_INITIALIZER, SL_LOG_INFO, 0, 0, NULL, NULL, NULL};

SL_API void sl_log_set_callback(sl_log_fn fn, void *opaque)
{
    pthread_mutex_lock(&g_log.lock);
    g_log.fn = fn;
    g_log.opaque = opaque;
    pthread_mutex_unlock(&g_log.lock);
}

SL_API void sl_log_configure(sl_log_level_t min_level, int json, FILE *out)
{
    pthread_mutex_lock(&g_log.lock);
    g_log.min = min_level;
    g_log.json = json;
    g_log.json_set = 1;
    g_log.out = out;
    pthread_mutex_unlock(&g_log.lock);
}

int sl__log_enabled(sl_log_level_t level)
{
    return level <= g_log.min;
}

static const char *level_name(sl_log_level_t level)
{
    switch (level) {
    case SL_LOG_ERROR:
        return "error";
    case SL_LOG_WARN:
        return "warn";
    case SL_LOG_INFO:
        return "info";
    default:
        return "debug";
    }
}

void sl_log(sl_log_level_t level, const char *facility, const char *fmt, ...)
{
    if (!sl__log_enabled(level))
        return;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&g_log.lock);
    if (g_log.fn) {
        g_log.fn(g_log.opaque, level, facility, msg);
        pthread_mutex_unlock(&g_log.lock);
        return;
    }
    pthread_mutex_unlock(&g_log.lock);

    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[64];
    snprintf(when, sizeof(when), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);

    pthread_mutex_lock(&g_log.lock);
    FILE *out = g_log.out ? g_log.out : stderr;
    int json = g_log.json_set ? g_log.json : !isatty(fileno(out));
    if (json) {
        sl_buf_t b;
        sl__buf_init(&b);
        sl__buf_printf(&b, "{\"ts\":\"%s\",\"level\":\"%s\",\"facility\":", when,
                       level_name(level));
        sl__buf_json_string(&b, facility, strlen(facility));
        sl__buf_printf(&b, ",\"msg\":");
        sl__buf_json_string(&b, msg, strlen(msg));
        sl__buf_append(&b, "}\n", 2);
        if (b.p)
            fwrite(b.p, 1, b.len, out);
        sl__buf_fini(&b);
    } else {
        fprintf(out, "%s %-5s %-8s %s\n", when, level_name(level), facility, msg);
    }
    fflush(out);
    pthread_mutex_unlock(&g_log.lock);
}
