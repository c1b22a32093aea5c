/*
 * row.c - what all formats share about typed values: their names and their order.
 */
#include "row.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

const char *sl__type_name(sl_type_t t)
{
    switch (t) {
    case SL_T_NULL:
        return "null";
    case SL_T_BOOL:
        return "boolean";
    case SL_T_LONG:
        return "long";
    case SL_T_DOUBLE:
        return "double";
    case SL_T_STRING:
        return "string";
    case SL_T_TIMESTAMP:
        return "timestamp";
    }
    return "?";
}

int sl__val_cmp(const sl_val_t *a, const sl_val_t *b)
{
    if (a->t == SL_T_STRING && b->t == SL_T_STRING) {
        uint32_t n = a->n < b->n ? a->n : b->n;
        int c = n ? memcmp(a->u.s, b->u.s, n) : 0;
        if (c)
            return c;
        return a->n < b->n ? -1 : a->n > b->n;
    }
    if (sl__type_integral((sl_type_t)a->t) && sl__type_integral((sl_type_t)b->t))
        return a->u.i < b->u.i ? -1 : a->u.i > b->u.i;
    if (a->t == SL_T_BOOL && b->t == SL_T_BOOL)
        return (a->u.i != 0) - (b->u.i != 0);
    double x = sl__val_num(a), y = sl__val_num(b);
    if (isnan(x) || isnan(y))
        return isnan(x) - isnan(y);
    return x < y ? -1 : x > y;
}

int sl__ts_format(int64_t ms, int iso, char *buf, size_t size)
{
    /* Floor division, in steps that cannot overflow at the ends of a long. */
    int64_t secs = ms / 1000;
    int frac = (int)(ms % 1000);
    if (frac < 0) {
        secs--;
        frac += 1000;
    }
    time_t t = (time_t)secs;
    struct tm tm;
    if (!gmtime_r(&t, &tm))
        return snprintf(buf, size, "%lld", (long long)ms);
    int n = snprintf(buf, size, "%04d-%02d-%02d%c%02d:%02d:%02d", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, iso ? 'T' : ' ', tm.tm_hour, tm.tm_min, tm.tm_sec);
    if (n < 0 || (size_t)n >= size)
        return n;
    if (iso)
        n += snprintf(buf + n, size - (size_t)n, ".%03dZ", frac);
    else if (frac)
        n += snprintf(buf + n, size - (size_t)n, ".%03d", frac);
    return n;
}

static int digits(const char **p, const char *end, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++, (*p)++) {
        if (*p >= end || **p < '0' || **p > '9')
            return -1;
        v = v * 10 + (**p - '0');
    }
    *out = v;
    return 0;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

int sl__ts_parse(const char *s, size_t len, int64_t *ms)
{
    const char *p = s, *end = s + len;
    int y, mo, d, h = 0, mi = 0, sec = 0, frac = 0;
    if (digits(&p, end, 4, &y) || p >= end || *p++ != '-' || digits(&p, end, 2, &mo) || p >= end ||
        *p++ != '-' || digits(&p, end, 2, &d))
        return -1;
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1])
        return -1;
    if (mo == 2 && d == 29 && (y % 4 != 0 || (y % 100 == 0 && y % 400 != 0)))
        return -1; /* as java.time: no February 29 outside leap years */
    if (p < end && (*p == 'T' || *p == ' ')) {
        p++;
        if (digits(&p, end, 2, &h) || p >= end || *p++ != ':' || digits(&p, end, 2, &mi))
            return -1;
        if (p < end && *p == ':') {
            p++;
            if (digits(&p, end, 2, &sec))
                return -1;
            if (p < end && *p == '.') {
                p++;
                int scale = 100, nd = 0;
                while (p < end && *p >= '0' && *p <= '9') {
                    frac += (*p - '0') * scale;
                    scale /= 10;
                    p++;
                    nd++;
                }
                if (!nd)
                    return -1;
            }
        }
        if (h > 23 || mi > 59 || sec > 59) /* java.time takes no leap second either */
            return -1;
    }
    int offset_min = 0;
    if (p < end && *p == 'Z') {
        p++;
    } else if (p < end && (*p == '+' || *p == '-')) {
        int sign = *p++ == '-' ? -1 : 1, oh, om = 0;
        if (digits(&p, end, 2, &oh))
            return -1;
        if (p < end && *p == ':')
            p++;
        if (p < end && digits(&p, end, 2, &om))
            return -1;
        if (om > 59 || oh * 60 + om > 18 * 60) /* java.time's offsets: at most 18 hours */
            return -1;
        offset_min = sign * (oh * 60 + om);
    }
    if (p != end)
        return -1;
    int64_t days = days_from_civil(y, mo, d);
    *ms = ((days * 24 + h) * 60 + mi - offset_min) * 60000 + (int64_t)sec * 1000 + frac;
    return 0;
}
