/*
 * test_log.c - the process-wide log: levels, text and JSON lines, and a program's own
 * callback in their place.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "log.h"

typedef struct seen {
    int n;
    sl_log_level_t level;
    char facility[32], msg[256];
} seen_t;

static void collect(void *opaque, sl_log_level_t level, const char *facility, const char *msg)
{
    seen_t *s = opaque;
    s->n++;
    s->level = level;
    snprintf(s->facility, sizeof(s->facility), "%s", facility);
    snprintf(s->msg, sizeof(s->msg), "%s", msg);
}

Test(log, a_callback_takes_the_lines_at_or_above_the_level)
{
    seen_t s = {0};
    sl_log_configure(SL_LOG_WARN, 0, NULL);
    sl_log_set_callback(collect, &s);
    sl_log(SL_LOG_INFO, "job", "not shown");
    cr_assert_eq(s.n, 0, "below the level");
    sl_log(SL_LOG_ERROR, "state", "disk %s", "full");
    cr_assert_eq(s.n, 1);
    cr_assert_eq(s.level, SL_LOG_ERROR);
    cr_assert_str_eq(s.facility, "state");
    cr_assert_str_eq(s.msg, "disk full");
    sl_log_set_callback(NULL, NULL);
}

Test(log, json_lines_when_asked)
{
    FILE *f = tmpfile();
    cr_assert_not_null(f);
    sl_log_set_callback(NULL, NULL);
    sl_log_configure(SL_LOG_DEBUG, 1, f);
    sl_log(SL_LOG_INFO, "sink", "a \"quoted\" line");
    sl_log_configure(SL_LOG_INFO, 0, NULL);
    rewind(f);
    char line[512];
    cr_assert_not_null(fgets(line, sizeof(line), f));
    json_t *o = json_loads(line, 0, NULL);
    cr_assert(json_is_object(o), "not JSON: %s", line);
    cr_assert_str_eq(json_string_value(json_object_get(o, "level")), "info");
    cr_assert_str_eq(json_string_value(json_object_get(o, "facility")), "sink");
    cr_assert_str_eq(json_string_value(json_object_get(o, "msg")), "a \"quoted\" line");
    json_decref(o);
    fclose(f);
}
