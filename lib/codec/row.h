/*
 * row.h - typed values and the schema of an input row. Every input format (Avro, JSON)
 * decodes a record into an array of sl_val_t, one per input field; strings point into the
 * record's bytes (or the schema, for enum symbols) and live as long as the record does.
 */
#ifndef SL_ROW_H
#define SL_ROW_H

#include <stddef.h>
#include <stdint.h>

typedef enum sl_type {
    SL_T_NULL = 0,
    SL_T_BOOL = 1,
    SL_T_LONG = 2,
    SL_T_DOUBLE = 3,
    SL_T_STRING = 4,
    SL_T_TIMESTAMP = 5, /* milliseconds since the Unix epoch, UTC, in u.i */
} sl_type_t;

typedef struct sl_val {
    uint8_t t;  /* sl_type_t; SL_T_NULL for a null value */
    uint32_t n; /* string length */
    union {
        int64_t i; /* SL_T_LONG, SL_T_BOOL and SL_T_TIMESTAMP */
        double d;
        const char *s;
    } u;
} sl_val_t;

typedef struct sl_field {
    char *name;     /* dotted path for nested record fields, e.g. "geo.country" */
    sl_type_t type; /* declared type; a value is this type or null */
    int nullable;
} sl_field_t;

const char *sl__type_name(sl_type_t t);
/** Compares two non-null values of the same type (long, timestamp and double compare
 *  numerically) in Spark SQL's order: NaN is above every number and equal to itself, and
 *  -0.0 equals 0.0. */
int sl__val_cmp(const sl_val_t *a, const sl_val_t *b);
/**
 * Formats a timestamp: with @p iso as ISO 8601 in UTC with milliseconds
 * ("2026-11-25T09:00:00.000Z"), else as Spark's console shows it ("2026-11-25 09:00:00").
 * Returns the length written (at most 31 bytes and a NUL).
 */
int sl__ts_format(int64_t ms, int iso, char *buf, size_t size);
/** Parses an ISO 8601 date-time ("2026-11-25T09:00:00Z", fraction and offset optional,
 *  a space for the T allowed, no zone meaning UTC). -1 when it is not one. */
int sl__ts_parse(const char *s, size_t n, int64_t *ms);
/** 1 for the types that compare and compute as integers: long and timestamp. */
static inline int sl__type_integral(sl_type_t t)
{
    return t == SL_T_LONG || t == SL_T_TIMESTAMP;
}

/** Numeric value of a long, timestamp or double. */
static inline double sl__val_num(const sl_val_t *v)
{
    return v->t == SL_T_DOUBLE ? v->u.d : (double)v->u.i;
}

#endif
