/*
 * row.h - typed values and the schema of an input row. Every input format (Avro, JSON)
 * decodes a record into an array of sl_val_t, one per input field; strings point into the
 * record's bytes (or the schema, for enum symbols) and live as long as the record does.
 */
#ifndef SL_ROW_H
#define SL_ROW_H

#include <stdint.h>

typedef enum sl_type {
    SL_T_NULL = 0,
    SL_T_BOOL = 1,
    SL_T_LONG = 2,
    SL_T_DOUBLE = 3,
    SL_T_STRING = 4,
} sl_type_t;

typedef struct sl_val {
    uint8_t t;  /* sl_type_t; SL_T_NULL for a null value */
    uint32_t n; /* string length */
    union {
        int64_t i; /* SL_T_LONG and SL_T_BOOL */
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
/** Compares two non-null values of the same type (long and double compare numerically). */
int sl__val_cmp(const sl_val_t *a, const sl_val_t *b);
/** Numeric value of a long or double. */
static inline double sl__val_num(const sl_val_t *v)
{
    return v->t == SL_T_DOUBLE ? v->u.d : (double)v->u.i;
}

#endif
