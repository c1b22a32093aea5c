/*
 * layout.c - the meta keys of a task (see layout.h).
 */
#include "layout.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int sl__meta_prefix(char *buf, size_t size, int task)
{
    return snprintf(buf, size, "t/%d/", task);
}

int sl__meta_key(char *buf, size_t size, int task, const char *fmt, ...)
{
    int n = sl__meta_prefix(buf, size, task);
    if (n < 0 || (size_t)n >= size)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(buf + n, size - (size_t)n, fmt, ap);
    va_end(ap);
    if (m < 0 || (size_t)m >= size - (size_t)n)
        return -1;
    return n + m;
}

sl_err_t sl__expiry_key(sl_buf_t *b, int64_t end, const uint8_t *key, size_t klen)
{
    uint8_t e[SL_TASK_PREFIX + 8];
    memcpy(e, key, SL_TASK_PREFIX);
    sl__be64_put(e + SL_TASK_PREFIX, (uint64_t)end ^ (1ULL << 63));
    sl__buf_reset(b);
    return sl__buf_append(b, e, sizeof(e)) || sl__buf_append(b, key, klen) ? SL_ERR_NOMEM : SL_OK;
}
