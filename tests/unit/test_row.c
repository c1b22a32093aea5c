/*
 * test_row.c - typed values: their type names, their order (strings byte by byte, numbers
 * across long, timestamp and double, NaN above every number, -0.0 equal to 0.0), and
 * timestamps formatted and parsed as ISO 8601, down to the ends of a long.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "codec/row.h"

static sl_val_t str(const char *s, size_t n)
{
    return (sl_val_t){.t = SL_T_STRING, .n = (uint32_t)n, .u.s = s};
}

static sl_val_t lng(int64_t i)
{
    return (sl_val_t){.t = SL_T_LONG, .u.i = i};
}

static sl_val_t ts(int64_t ms)
{
    return (sl_val_t){.t = SL_T_TIMESTAMP, .u.i = ms};
}

static sl_val_t dbl(double d)
{
    return (sl_val_t){.t = SL_T_DOUBLE, .u.d = d};
}

static sl_val_t boolean(int64_t b)
{
    return (sl_val_t){.t = SL_T_BOOL, .u.i = b};
}

/* The sign of a comparison: -1, 0 or 1. */
static int cmp(sl_val_t a, sl_val_t b)
{
    int c = sl__val_cmp(&a, &b);
    return (c > 0) - (c < 0);
}

/* Asserts a < b, and that the order is the same read backwards. */
#define ASSERT_LESS(a, b, what)                                                                \
    do {                                                                                       \
        cr_assert_eq(cmp((a), (b)), -1, "%s: expected less, got %d", (what), cmp((a), (b)));   \
        cr_assert_eq(cmp((b), (a)), 1, "%s (reversed): expected greater, got %d", (what),      \
                     cmp((b), (a)));                                                           \
    } while (0)

#define ASSERT_SAME(a, b, what)                                                                \
    do {                                                                                       \
        cr_assert_eq(cmp((a), (b)), 0, "%s: expected equal, got %d", (what), cmp((a), (b)));   \
        cr_assert_eq(cmp((b), (a)), 0, "%s (reversed): expected equal, got %d", (what),        \
                     cmp((b), (a)));                                                           \
    } while (0)

Test(row, type_names_are_the_ones_jobs_and_schemas_use)
{
    static const struct {
        sl_type_t t;
        const char *name;
    } names[] = {{SL_T_NULL, "null"},     {SL_T_BOOL, "boolean"}, {SL_T_LONG, "long"},
                 {SL_T_DOUBLE, "double"}, {SL_T_STRING, "string"}, {SL_T_TIMESTAMP, "timestamp"}};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        cr_assert_str_eq(sl__type_name(names[i].t), names[i].name, "type %d", (int)names[i].t);
    cr_assert_str_eq(sl__type_name((sl_type_t)42), "?", "a value no type has");
}

Test(row, integral_types_and_numeric_values)
{
    cr_assert(sl__type_integral(SL_T_LONG));
    cr_assert(sl__type_integral(SL_T_TIMESTAMP));
    cr_assert_not(sl__type_integral(SL_T_DOUBLE));
    cr_assert_not(sl__type_integral(SL_T_BOOL));
    cr_assert_not(sl__type_integral(SL_T_STRING));
    cr_assert_not(sl__type_integral(SL_T_NULL));
    sl_val_t l = lng(-7), t = ts(1500), d = dbl(2.5);
    cr_assert_eq(sl__val_num(&l), -7.0);
    cr_assert_eq(sl__val_num(&t), 1500.0);
    cr_assert_eq(sl__val_num(&d), 2.5);
}

Test(row, strings_compare_byte_by_byte_and_a_prefix_first)
{
    ASSERT_LESS(str("a", 1), str("b", 1), "a < b");
    ASSERT_LESS(str("a", 1), str("ab", 2), "a prefix sorts first");
    ASSERT_LESS(str("", 0), str("a", 1), "the empty string sorts first");
    ASSERT_SAME(str("", 0), str("", 0), "two empty strings");
    ASSERT_SAME(str("same", 4), str("same!", 4), "only n bytes count");
    ASSERT_LESS(str("Z", 1), str("a", 1), "upper case before lower case (bytes)");
    /* Bytes are unsigned: UTF-8 beyond ASCII (0xc3 0xa9, 'é') sorts after every ASCII
     * character, as Spark orders UTF-8 strings. */
    ASSERT_LESS(str("z", 1), str("\xc3\xa9", 2), "z < é");
    /* Lengths, not NUL bytes, end strings. */
    ASSERT_LESS(str("a\0b", 3), str("a\0c", 3), "bytes after a NUL count");
    ASSERT_LESS(str("a", 1), str("a\0", 2), "a trailing NUL makes a longer string");
}

Test(row, integers_compare_without_overflow)
{
    ASSERT_LESS(lng(INT64_MIN), lng(INT64_MAX), "the ends of a long");
    ASSERT_LESS(lng(-1), lng(0), "-1 < 0");
    ASSERT_LESS(lng(INT64_MIN), lng(1), "a difference that overflows");
    ASSERT_SAME(lng(42), lng(42), "equal longs");
    ASSERT_LESS(ts(-1), ts(0), "timestamps before the epoch");
    ASSERT_SAME(lng(1000), ts(1000), "a long and a timestamp compare as integers");
    /* Longs beyond 2^53 are compared exactly, not through doubles. */
    ASSERT_LESS(lng((INT64_C(1) << 53)), lng((INT64_C(1) << 53) + 1), "2^53 < 2^53 + 1");
}

Test(row, longs_and_doubles_compare_numerically)
{
    ASSERT_LESS(lng(2), dbl(2.5), "2 < 2.5");
    ASSERT_LESS(dbl(-0.5), lng(0), "-0.5 < 0");
    ASSERT_SAME(lng(3), dbl(3.0), "3 == 3.0");
    ASSERT_LESS(ts(999), dbl(1000.5), "a timestamp and a double");
}

Test(row, booleans_false_before_true)
{
    ASSERT_LESS(boolean(0), boolean(1), "false < true");
    ASSERT_SAME(boolean(1), boolean(1), "true == true");
    ASSERT_SAME(boolean(2), boolean(1), "any non-zero value is true");
}

Test(row, nan_is_above_every_number_and_equal_to_itself)
{
    ASSERT_SAME(dbl(NAN), dbl(NAN), "NaN == NaN");
    ASSERT_SAME(dbl(NAN), dbl(-NAN), "NaN of either sign");
    ASSERT_LESS(dbl(INFINITY), dbl(NAN), "+inf < NaN");
    ASSERT_LESS(dbl(1e308), dbl(NAN), "a large number < NaN");
    ASSERT_LESS(dbl(-INFINITY), dbl(NAN), "-inf < NaN");
    ASSERT_LESS(lng(INT64_MAX), dbl(NAN), "a long < NaN");
    ASSERT_LESS(dbl(-INFINITY), dbl(-1e308), "-inf below every finite number");
    ASSERT_LESS(dbl(1e308), dbl(INFINITY), "+inf above every finite number");
}

Test(row, negative_zero_equals_zero)
{
    ASSERT_SAME(dbl(-0.0), dbl(0.0), "-0.0 == 0.0");
    ASSERT_SAME(dbl(-0.0), lng(0), "-0.0 == 0");
    ASSERT_LESS(dbl(-5e-324), dbl(-0.0), "the smallest negative double < -0.0");
    ASSERT_LESS(dbl(-0.0), dbl(5e-324), "-0.0 < the smallest positive double");
}

static const struct {
    int64_t ms;
    const char *iso;
    const char *console;
} stamps[] = {
    {0, "1970-01-01T00:00:00.000Z", "1970-01-01 00:00:00"},
    {1795597200000, "2026-11-25T09:00:00.000Z", "2026-11-25 09:00:00"},
    {1795597200123, "2026-11-25T09:00:00.123Z", "2026-11-25 09:00:00.123"},
    {1709251199999, "2024-02-29T23:59:59.999Z", "2024-02-29 23:59:59.999"},
    {951868800000, "2000-03-01T00:00:00.000Z", "2000-03-01 00:00:00"},
    {-1, "1969-12-31T23:59:59.999Z", "1969-12-31 23:59:59.999"},
    {-1000, "1969-12-31T23:59:59.000Z", "1969-12-31 23:59:59"},
    {-1001, "1969-12-31T23:59:58.999Z", "1969-12-31 23:59:58.999"},
    {-2208988800000, "1900-01-01T00:00:00.000Z", "1900-01-01 00:00:00"},
};

Test(row, timestamps_format_as_iso_and_as_sparks_console)
{
    char buf[64];
    for (size_t i = 0; i < sizeof(stamps) / sizeof(stamps[0]); i++) {
        int n = sl__ts_format(stamps[i].ms, 1, buf, sizeof(buf));
        cr_assert_str_eq(buf, stamps[i].iso, "%lld as ISO", (long long)stamps[i].ms);
        cr_assert_eq(n, (int)strlen(stamps[i].iso), "the length written");
        n = sl__ts_format(stamps[i].ms, 0, buf, sizeof(buf));
        cr_assert_str_eq(buf, stamps[i].console, "%lld for the console", (long long)stamps[i].ms);
        cr_assert_eq(n, (int)strlen(stamps[i].console));
    }
}

Test(row, timestamps_format_into_a_short_buffer_truncated)
{
    char buf[11];
    memset(buf, 'x', sizeof(buf));
    sl__ts_format(1795597200123, 1, buf, sizeof(buf));
    cr_assert_str_eq(buf, "2026-11-25", "cut to the buffer and terminated: %s", buf);
}

Test(row, timestamps_at_the_ends_of_a_long_format_without_overflow)
{
    /* What java.time.Instant.ofEpochMilli() prints for Long.MIN_VALUE and MAX_VALUE (with
     * no '+' before a year past 9999). Formatting must not overflow on the way there. */
    static const struct {
        int64_t ms;
        const char *iso;
    } ends[] = {{INT64_MAX, "292278994-08-17T07:12:55.807Z"},
                {INT64_MIN, "-292275055-05-16T16:47:04.192Z"},
                {INT64_MIN + 1, "-292275055-05-16T16:47:04.193Z"},
                {INT64_MIN + 999, "-292275055-05-16T16:47:05.191Z"}};
    char buf[64];
    for (size_t i = 0; i < sizeof(ends) / sizeof(ends[0]); i++) {
        int n = sl__ts_format(ends[i].ms, 1, buf, sizeof(buf));
        cr_assert_str_eq(buf, ends[i].iso, "%lld", (long long)ends[i].ms);
        cr_assert(n > 0 && n <= 31, "at most 31 bytes, as row.h promises: %d", n);
    }
}

Test(row, iso_timestamps_parse_with_fraction_offset_or_space)
{
    static const struct {
        const char *text;
        int64_t ms;
    } cases[] = {
        {"1970-01-01T00:00:00Z", 0},
        {"1970-01-01", 0},
        {"2026-11-25T09:00:00Z", 1795597200000},
        {"2026-11-25T09:00:00", 1795597200000}, /* no zone: UTC */
        {"2026-11-25 09:00:00", 1795597200000},
        {"2026-11-25T09:00", 1795597200000},
        {"2026-11-25T09:00:00.5Z", 1795597200500},
        {"2026-11-25T09:00:00.123Z", 1795597200123},
        {"2026-11-25T09:00:00.123999Z", 1795597200123}, /* past milliseconds: cut */
        {"2026-11-25T10:00:00+01:00", 1795597200000},
        {"2026-11-25T03:30:00-0530", 1795597200000},
        {"2026-11-25T11:00:00+02", 1795597200000},
        {"2024-02-29T23:59:59.999Z", 1709251199999},
        {"1969-12-31T23:59:59.999Z", -1},
        {"1900-01-01T00:00:00Z", -2208988800000},
        {"2000-02-29T00:00:00Z", 951782400000},             /* a leap year by 400 */
        {"2026-11-25T09:00:00-18:00", 1795597200000 + 18 * 3600000}, /* the largest offset */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t ms = 42;
        cr_assert_eq(sl__ts_parse(cases[i].text, strlen(cases[i].text), &ms), 0, "%s refused",
                     cases[i].text);
        cr_assert_eq(ms, cases[i].ms, "%s: expected %lld, got %lld", cases[i].text,
                     (long long)cases[i].ms, (long long)ms);
    }
    /* What the ISO format writes reads back to the same instant. */
    char buf[64];
    for (size_t i = 0; i < sizeof(stamps) / sizeof(stamps[0]); i++) {
        int64_t back = 0;
        sl__ts_format(stamps[i].ms, 1, buf, sizeof(buf));
        cr_assert_eq(sl__ts_parse(buf, strlen(buf), &back), 0, "%s", buf);
        cr_assert_eq(back, stamps[i].ms, "%s read back as %lld", buf, (long long)back);
    }
}

Test(row, timestamps_parse_only_the_bytes_given)
{
    const char *text = "2026-11-25T09:00:00Z";
    int64_t ms = 42;
    cr_assert_eq(sl__ts_parse(text, 10, &ms), 0, "the date alone");
    cr_assert_eq(ms, 1795597200000 - 9 * 3600000);
    cr_assert_eq(sl__ts_parse(text, 19, &ms), 0, "without the Z");
    cr_assert_eq(ms, 1795597200000);
    cr_assert_eq(sl__ts_parse(text, 7, &ms), -1, "a date cut short");
}

Test(row, malformed_timestamps_are_refused)
{
    static const char *const bad[] = {
        "",
        "2026",
        "2026-1-25",
        "2026-11-5",
        "26-11-25",
        "2026/11/25",
        "2026-00-10",
        "2026-13-01",
        "2026-11-00",
        "2026-11-32",
        "2026-11-25T",
        "2026-11-25T9:00",
        "2026-11-25T24:00:00",
        "2026-11-25T09:60:00",
        "2026-11-25T09:00:61",
        "2026-11-25T23:59:60",
        "2026-02-29",
        "1900-02-29T00:00:00Z",
        "2026-02-31",
        "2026-04-31T00:00:00Z",
        "2026-11-25T09:00:00+99:99",
        "2026-11-25T09:00:00+18:01",
        "2026-11-25T09:00:00-07:60",
        "2026-11-25T09:00:00.",
        "2026-11-25T09:00:00.Z",
        "2026-11-25T09:00:00Zjunk",
        "2026-11-25T09:00:00 ",
        "2026-11-25T09:00:00+1",
        "abcd-ef-gh",
        "1795597200000",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int64_t ms = 42;
        cr_assert_eq(sl__ts_parse(bad[i], strlen(bad[i]), &ms), -1, "'%s' was taken as %lld",
                     bad[i], (long long)ms);
    }
}
