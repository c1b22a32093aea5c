/*
 * agg.c - the aggregate functions. Sums of integer fields stay integers, so a sum and an
 * average are exact and the same whatever the batch boundaries were; min and max keep
 * the value itself. The state encoding starts with a version byte, and every read is
 * bounds-checked: state on disk is input too.
 */
#include "agg.h"

#include <string.h>

static const char *const fn_names[] = {"count", "sum", "min", "max", "avg"};

const char *sl__agg_fn_name(sl_agg_fn_t fn)
{
    return fn_names[fn];
}

int sl__agg_fn_parse(const char *name)
{
    for (size_t i = 0; i < SL_ARRAY_LEN(fn_names); i++) {
        if (!strcmp(name, fn_names[i]))
            return (int)i;
    }
    return -1;
}

sl_type_t sl__agg_result_type(const sl_agg_spec_t *spec)
{
    switch (spec->fn) {
    case SL_AGG_COUNT:
        return SL_T_LONG;
    case SL_AGG_AVG:
        return SL_T_DOUBLE;
    case SL_AGG_SUM:
        return spec->in_type == SL_T_LONG ? SL_T_LONG : SL_T_DOUBLE;
    default:
        return spec->in_type;
    }
}

static sl_err_t keep_string(sl_acc_t *acc, const sl_val_t *v, sl_arena_t *arena)
{
    acc->v = *v;
    if (v->t == SL_T_STRING) {
        acc->v.u.s = sl__arena_dup(arena, v->u.s, v->n);
        if (!acc->v.u.s)
            return SL_ERR_NOMEM;
    }
    return SL_OK;
}

static int64_t add_wrap(int64_t a, int64_t b)
{
    return (int64_t)((uint64_t)a + (uint64_t)b);
}

sl_err_t sl__acc_update(const sl_agg_spec_t *spec, sl_acc_t *acc, const sl_val_t *v,
                        sl_arena_t *arena)
{
    if (spec->slot >= 0 && v->t == SL_T_NULL)
        return SL_OK; /* aggregates of a field skip nulls, as SQL's do */
    /* One value is an accumulator of one; folding it in is a merge. */
    sl_acc_t one = {.n = 1};
    if (spec->slot >= 0) {
        one.v = *v;
        if (spec->in_type == SL_T_LONG)
            one.sum.i = v->u.i;
        else
            one.sum.d = sl__val_num(v);
    }
    return sl__acc_merge(spec, acc, &one, arena);
}

sl_err_t sl__acc_merge(const sl_agg_spec_t *spec, sl_acc_t *into, const sl_acc_t *from,
                       sl_arena_t *arena)
{
    if (from->n == 0)
        return SL_OK;
    switch (spec->fn) {
    case SL_AGG_COUNT:
        break;
    case SL_AGG_SUM:
    case SL_AGG_AVG:
        if (spec->in_type == SL_T_LONG)
            into->sum.i = add_wrap(into->sum.i, from->sum.i);
        else
            into->sum.d += from->sum.d;
        break;
    case SL_AGG_MIN:
    case SL_AGG_MAX: {
        int c = into->n == 0 ? -1 : sl__val_cmp(&from->v, &into->v);
        if (spec->fn == SL_AGG_MAX && into->n)
            c = -c;
        into->n += from->n;
        return c < 0 ? keep_string(into, &from->v, arena) : SL_OK;
    }
    }
    into->n += from->n;
    return SL_OK;
}

void sl__acc_result(const sl_agg_spec_t *spec, const sl_acc_t *acc, sl_val_t *out)
{
    memset(out, 0, sizeof(*out));
    if (spec->fn == SL_AGG_COUNT) {
        out->t = SL_T_LONG;
        out->u.i = acc->n;
        return;
    }
    if (acc->n == 0) {
        out->t = SL_T_NULL;
        return;
    }
    switch (spec->fn) {
    case SL_AGG_SUM:
        if (spec->in_type == SL_T_LONG) {
            out->t = SL_T_LONG;
            out->u.i = acc->sum.i;
        } else {
            out->t = SL_T_DOUBLE;
            out->u.d = acc->sum.d;
        }
        break;
    case SL_AGG_AVG:
        out->t = SL_T_DOUBLE;
        out->u.d = (spec->in_type == SL_T_LONG ? (double)acc->sum.i : acc->sum.d) /
                   (double)acc->n;
        break;
    default:
        *out = acc->v;
        break;
    }
}

#define ACC_VERSION 1

/* Sums and numeric min/max are stored as 8 big-endian bytes of their bits. */
static sl_err_t put_word(sl_buf_t *out, const void *src)
{
    uint64_t u;
    uint8_t b[8];
    memcpy(&u, src, 8);
    sl__be64_put(b, u);
    return sl__buf_append(out, b, 8);
}

static int get_word(const uint8_t **p, const uint8_t *end, void *dst)
{
    if (end - *p < 8)
        return -1;
    uint64_t u = sl__be64_get(*p);
    memcpy(dst, &u, 8);
    *p += 8;
    return 0;
}

sl_err_t sl__accs_encode(const sl_agg_spec_t *specs, int n, const sl_acc_t *accs, sl_buf_t *out)
{
    if (sl__buf_reserve(out, 1 + (size_t)n * 30) != SL_OK)
        return SL_ERR_NOMEM;
    out->p[out->len++] = ACC_VERSION;
    for (int i = 0; i < n; i++) {
        const sl_acc_t *a = &accs[i];
        uint8_t tmp[10];
        if (sl__buf_append(out, tmp, sl__zz_encode(a->n, tmp)) != SL_OK)
            return SL_ERR_NOMEM;
        if (a->n == 0)
            continue;
        switch (specs[i].fn) {
        case SL_AGG_COUNT:
            break;
        case SL_AGG_SUM:
        case SL_AGG_AVG:
            if (put_word(out, &a->sum) != SL_OK)
                return SL_ERR_NOMEM;
            break;
        case SL_AGG_MIN:
        case SL_AGG_MAX: {
            uint8_t b[10];
            if (a->v.t == SL_T_STRING) {
                if (sl__buf_append(out, b, sl__zz_encode(a->v.n, b)) != SL_OK ||
                    sl__buf_append(out, a->v.u.s, a->v.n) != SL_OK)
                    return SL_ERR_NOMEM;
            } else if (put_word(out, &a->v.u) != SL_OK) {
                return SL_ERR_NOMEM;
            }
            break;
        }
        }
    }
    return SL_OK;
}

sl_err_t sl__accs_decode(const sl_agg_spec_t *specs, int n, const uint8_t *p, size_t len,
                         sl_acc_t *accs)
{
    const uint8_t *end = p + len;
    if (len < 1 || *p++ != ACC_VERSION)
        return SL_ERR_STATE;
    for (int i = 0; i < n; i++) {
        sl_acc_t *a = &accs[i];
        memset(a, 0, sizeof(*a));
        if (sl__zz_decode(&p, end, &a->n) < 0 || a->n < 0)
            return SL_ERR_STATE;
        if (a->n == 0)
            continue;
        switch (specs[i].fn) {
        case SL_AGG_COUNT:
            break;
        case SL_AGG_SUM:
        case SL_AGG_AVG:
            if (get_word(&p, end, &a->sum) < 0)
                return SL_ERR_STATE;
            break;
        case SL_AGG_MIN:
        case SL_AGG_MAX:
            a->v.t = (uint8_t)specs[i].in_type;
            if (specs[i].in_type == SL_T_STRING) {
                int64_t sl;
                if (sl__zz_decode(&p, end, &sl) < 0 || sl < 0 || sl > end - p)
                    return SL_ERR_STATE;
                a->v.u.s = (const char *)p;
                a->v.n = (uint32_t)sl;
                p += sl;
            } else if (get_word(&p, end, &a->v.u) < 0) {
                return SL_ERR_STATE;
            }
            break;
        }
    }
    return p == end ? SL_OK : SL_ERR_STATE;
}
