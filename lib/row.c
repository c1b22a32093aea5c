/*
 * row.c - what all formats share about typed values: their names and their order.
 */
#include "row.h"

#include <string.h>

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
    if (a->t == SL_T_LONG && b->t == SL_T_LONG)
        return a->u.i < b->u.i ? -1 : a->u.i > b->u.i;
    if (a->t == SL_T_BOOL && b->t == SL_T_BOOL)
        return (a->u.i != 0) - (b->u.i != 0);
    double x = sl__val_num(a), y = sl__val_num(b);
    return x < y ? -1 : x > y;
}
