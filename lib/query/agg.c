/*
 * agg.c - the aggregate functions. Sums of integer fields stay integers, 128 bits wide, so
 * a sum and an average are exact and the same whatever the batch boundaries were, and a
 * sum that leaves a long's range is reported, never wrapped; min and max keep the value
 * itself, in Spark's order of doubles. The state encoding starts with a version byte, and
 * every read is bounds-checked: state on disk is input too.
 */
#include "agg.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "table.h"

static const char *const fn_names[] = {
    "count", "sum", "min", "max", "avg", "count_distinct", "approx_count_distinct",
    "first", "last"};

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
    case SL_AGG_COUNT_DISTINCT:
    case SL_AGG_APPROX_COUNT_DISTINCT:
        return SL_T_LONG;
    case SL_AGG_AVG:
        return SL_T_DOUBLE;
    case SL_AGG_SUM:
        return sl__type_integral(spec->in_type) ? SL_T_LONG : SL_T_DOUBLE;
    default:
        return spec->in_type;
    }
}

int sl__hll_p_for_rsd(double rsd)
{
    /* As Spark's HyperLogLogPlusPlus: p = ceil(2 log2(1.106 / rsd)), at least 4. */
    int p = (int)ceil(2.0 * log2(1.106 / rsd));
    return p < 4 ? 4 : p > 16 ? 16 : p;
}

static sl_err_t keep_value(sl_acc_t *acc, const sl_val_t *v, sl_arena_t *arena)
{
    acc->v = *v;
    if (v->t == SL_T_DOUBLE && isnan(v->u.d))
        acc->v.u.d = NAN; /* one NaN, whichever bits the input had */
    if (v->t == SL_T_STRING) {
        acc->v.u.s = sl__arena_dup(arena, v->u.s, v->n);
        if (!acc->v.u.s)
            return SL_ERR_NOMEM;
    }
    return SL_OK;
}

__extension__ typedef __int128 i128_t;
__extension__ typedef unsigned __int128 u128_t;

static i128_t sum128(const sl_acc_t *a)
{
    return (i128_t)(((u128_t)(uint64_t)a->hi << 64) | (uint64_t)a->sum.i);
}

/* Adds the 128-bit sum of @p from to that of @p into (wrapping past 2^127, which takes
 * 2^64 values of a long's largest magnitude). */
static void add_sums(sl_acc_t *into, const sl_acc_t *from)
{
    uint64_t lo = (uint64_t)into->sum.i, nlo = lo + (uint64_t)from->sum.i;
    into->hi = (int64_t)((uint64_t)into->hi + (uint64_t)from->hi + (nlo < lo));
    into->sum.i = (int64_t)nlo;
}

size_t sl__acc_sum_format(const sl_acc_t *a, char *buf)
{
    if (sl__acc_sum_fits(a)) {
        size_t n = sl__i64_format(a->sum.i, buf);
        buf[n] = 0;
        return n;
    }
    /* Beyond a long, below 2^127: the magnitude in two parts of 19 digits at most. */
    i128_t v = sum128(a);
    u128_t u = v < 0 ? -(u128_t)v : (u128_t)v;
    const uint64_t e19 = 10000000000000000000ULL;
    unsigned long long hi = (unsigned long long)(u / e19), lo = (unsigned long long)(u % e19);
    const char *sign = v < 0 ? "-" : "";
    return (size_t)(hi ? snprintf(buf, 41, "%s%llu%019llu", sign, hi, lo)
                       : snprintf(buf, 41, "%s%llu", sign, lo));
}

/* ---- the set of an exact count_distinct ---- */

static sl_dset_t *dset_new(sl_arena_t *arena, uint32_t cap)
{
    sl_dset_t *d = sl__arena_alloc(arena, sizeof(*d));
    if (!d)
        return NULL;
    d->n = 0;
    d->cap = cap;
    d->slots = sl__arena_alloc(arena, cap * sizeof(*d->slots));
    if (!d->slots)
        return NULL;
    memset(d->slots, 0, cap * sizeof(*d->slots));
    return d;
}

/* Adds the value bytes p[0, len) with hash h; @p copy copies them into @p arena. */
static sl_err_t dset_add(sl_dset_t *d, uint64_t h, const uint8_t *p, uint32_t len, int copy,
                         sl_arena_t *arena)
{
    if ((d->n + 1) * 2 > d->cap) {
        sl_dset_t *bigger = dset_new(arena, d->cap * 2);
        if (!bigger)
            return SL_ERR_NOMEM;
        for (uint32_t i = 0; i < d->cap; i++) {
            if (!d->slots[i].p)
                continue;
            uint32_t j = (uint32_t)d->slots[i].h & (bigger->cap - 1);
            while (bigger->slots[j].p)
                j = (j + 1) & (bigger->cap - 1);
            bigger->slots[j] = d->slots[i];
        }
        bigger->n = d->n;
        *d = *bigger;
    }
    uint32_t j = (uint32_t)h & (d->cap - 1);
    for (; d->slots[j].p; j = (j + 1) & (d->cap - 1)) {
        if (d->slots[j].h == h && d->slots[j].len == len && !memcmp(d->slots[j].p, p, len))
            return SL_OK;
    }
    if (copy && !(p = sl__arena_dup(arena, p, len ? len : 1)))
        return SL_ERR_NOMEM;
    d->slots[j] = (struct sl_dset_slot){.h = h, .len = len, .p = p};
    d->n++;
    return SL_OK;
}

static sl_err_t dset_union(sl_acc_t *into, const sl_acc_t *from, sl_arena_t *arena)
{
    const sl_dset_t *f = from->ext;
    if (!f)
        return SL_OK;
    if (!into->ext && !(into->ext = dset_new(arena, 16)))
        return SL_ERR_NOMEM;
    for (uint32_t i = 0; i < f->cap; i++) {
        if (f->slots[i].p &&
            dset_add(into->ext, f->slots[i].h, f->slots[i].p, f->slots[i].len, 1, arena))
            return SL_ERR_NOMEM;
    }
    return SL_OK;
}

/* ---- HyperLogLog ---- */

static void hll_add(uint8_t *reg, int p, uint64_t h)
{
    uint32_t idx = (uint32_t)(h >> (64 - p));
    uint64_t rest = (h << p) | (1ULL << (p - 1)); /* a guard bit bounds the rank */
    uint8_t rank = (uint8_t)(__builtin_clzll(rest) + 1);
    if (rank > reg[idx])
        reg[idx] = rank;
}

static int64_t hll_estimate(const uint8_t *reg, int p)
{
    double m = (double)(1u << p), sum = 0;
    int zeros = 0;
    for (uint32_t i = 0; i < (1u << p); i++) {
        sum += ldexp(1.0, -reg[i]);
        zeros += reg[i] == 0;
    }
    double alpha = p == 4 ? 0.673 : p == 5 ? 0.697 : p == 6 ? 0.709 : 0.7213 / (1 + 1.079 / m);
    double e = alpha * m * m / sum;
    if (e <= 2.5 * m && zeros)
        e = m * log(m / zeros); /* linear counting for small cardinalities */
    return (int64_t)llround(e);
}

static uint8_t *hll_regs(sl_acc_t *acc, int p, sl_arena_t *arena)
{
    if (!acc->ext) {
        acc->ext = sl__arena_alloc(arena, 1u << p);
        if (acc->ext)
            memset(acc->ext, 0, 1u << p);
    }
    return acc->ext;
}

/* ---- update, merge, result ---- */

sl_err_t sl__acc_update(const sl_agg_spec_t *spec, sl_acc_t *acc, const sl_val_t *v,
                        const sl_val_t *time, sl_arena_t *arena)
{
    if (spec->slot >= 0 && v->t == SL_T_NULL)
        return SL_OK; /* aggregates of a field skip nulls, as SQL's do */
    switch (spec->fn) {
    /* The usual aggregates in place; the others fold an accumulator of one value. */
    case SL_AGG_COUNT:
        acc->n++;
        return SL_OK;
    case SL_AGG_SUM:
    case SL_AGG_AVG:
        if (sl__type_integral(spec->in_type))
            sl__acc_add(acc, v->u.i);
        else
            acc->sum.d += sl__val_num(v);
        acc->n++;
        return SL_OK;
    case SL_AGG_COUNT_DISTINCT: {
        /* The value as a group key encodes it: type-tagged, so 1 and 1.0 differ as in
         * Spark, and strings are compared by their bytes. */
        uint8_t head[SL_KEY_HEAD_MAX];
        size_t hn = sl__key_head(v, head), n = hn + (v->t == SL_T_STRING ? v->n : 0);
        uint8_t *all = sl__arena_alloc(arena, n + 1);
        if (!all)
            return SL_ERR_NOMEM;
        memcpy(all, head, hn);
        if (n > hn)
            memcpy(all + hn, v->u.s, v->n);
        if (!acc->ext && !(acc->ext = dset_new(arena, 16)))
            return SL_ERR_NOMEM;
        acc->n++;
        return dset_add(acc->ext, sl__hash(all, n), all, (uint32_t)n, 0, arena);
    }
    case SL_AGG_APPROX_COUNT_DISTINCT: {
        uint8_t head[SL_KEY_HEAD_MAX];
        uint64_t h = sl__hash(head, sl__key_head(v, head));
        if (v->t == SL_T_STRING)
            h = sl__hash(v->u.s, v->n) ^ (h * 0x9E3779B97F4A7C15ULL);
        uint8_t *reg = hll_regs(acc, spec->hll_p, arena);
        if (!reg)
            return SL_ERR_NOMEM;
        hll_add(reg, spec->hll_p, h);
        acc->n++;
        return SL_OK;
    }
    case SL_AGG_FIRST:
    case SL_AGG_LAST:
        if (!time || time->t == SL_T_NULL)
            return SL_OK; /* no event time, no order */
        break;
    default:
        break;
    }
    /* One value is an accumulator of one; folding it in is a merge. */
    sl_acc_t one = {.n = 1};
    if (spec->slot >= 0) {
        one.v = *v;
        if (sl__type_integral(spec->in_type))
            sl__acc_add(&one, v->u.i);
        else
            one.sum.d = sl__val_num(v);
    }
    if (spec->fn == SL_AGG_FIRST || spec->fn == SL_AGG_LAST)
        one.sum.i = time->u.i;
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
        if (sl__type_integral(spec->in_type))
            add_sums(into, from);
        else
            into->sum.d += from->sum.d;
        break;
    case SL_AGG_MIN:
    case SL_AGG_MAX: {
        int c = into->n == 0 ? -1 : sl__val_cmp(&from->v, &into->v);
        /* -0.0 equals 0.0 (Spark's order), but which one a min or max keeps must not
         * depend on the order records came in: min takes -0.0, max 0.0. */
        if (c == 0 && from->v.t == SL_T_DOUBLE && from->v.u.d == 0.0)
            c = (signbit(into->v.u.d) != 0) - (signbit(from->v.u.d) != 0);
        if (spec->fn == SL_AGG_MAX && into->n)
            c = -c;
        into->n += from->n;
        return c < 0 ? keep_value(into, &from->v, arena) : SL_OK;
    }
    case SL_AGG_FIRST:
    case SL_AGG_LAST: {
        /* Ties keep the first seen for first and take the later for last: state is
         * merged before the batch, so "later" is the order records arrived in. */
        int take = into->n == 0 || (spec->fn == SL_AGG_FIRST ? from->sum.i < into->sum.i
                                                             : from->sum.i >= into->sum.i);
        into->n += from->n;
        if (!take)
            return SL_OK;
        into->sum.i = from->sum.i;
        return keep_value(into, &from->v, arena);
    }
    case SL_AGG_COUNT_DISTINCT:
        into->n += from->n;
        return dset_union(into, from, arena);
    case SL_AGG_APPROX_COUNT_DISTINCT: {
        uint8_t *reg = hll_regs(into, spec->hll_p, arena);
        const uint8_t *fr = from->ext;
        if (!reg)
            return SL_ERR_NOMEM;
        for (uint32_t i = 0; fr && i < (1u << spec->hll_p); i++) {
            if (fr[i] > reg[i])
                reg[i] = fr[i];
        }
        break;
    }
    }
    into->n += from->n;
    return SL_OK;
}

sl_err_t sl__acc_merge_older(const sl_agg_spec_t *spec, sl_acc_t *into, const sl_acc_t *older,
                             sl_arena_t *arena)
{
    int ordered = spec->fn == SL_AGG_FIRST || spec->fn == SL_AGG_LAST;
    if (!ordered || older->n == 0 || into->n == 0)
        return sl__acc_merge(spec, into, older, arena);
    /* A tie keeps the older record for first and the later one (into's) for last. */
    int take = spec->fn == SL_AGG_FIRST ? older->sum.i <= into->sum.i : older->sum.i > into->sum.i;
    into->n += older->n;
    if (!take)
        return SL_OK;
    into->sum.i = older->sum.i;
    return keep_value(into, &older->v, arena);
}

sl_err_t sl__acc_result(const sl_agg_spec_t *spec, const sl_acc_t *acc, sl_val_t *out)
{
    memset(out, 0, sizeof(*out));
    switch (spec->fn) {
    case SL_AGG_COUNT:
        out->t = SL_T_LONG;
        out->u.i = acc->n;
        return SL_OK;
    case SL_AGG_COUNT_DISTINCT:
        out->t = SL_T_LONG;
        out->u.i = acc->ext ? ((const sl_dset_t *)acc->ext)->n : 0;
        return SL_OK;
    case SL_AGG_APPROX_COUNT_DISTINCT:
        out->t = SL_T_LONG;
        out->u.i = acc->ext ? hll_estimate(acc->ext, spec->hll_p) : 0;
        return SL_OK;
    default:
        break;
    }
    if (acc->n == 0) {
        out->t = SL_T_NULL;
        return SL_OK;
    }
    switch (spec->fn) {
    case SL_AGG_SUM:
        if (sl__type_integral(spec->in_type)) {
            if (!sl__acc_sum_fits(acc)) {
                out->t = SL_T_NULL;
                return SL_ERR_OVERFLOW;
            }
            out->t = SL_T_LONG;
            out->u.i = acc->sum.i;
        } else {
            out->t = SL_T_DOUBLE;
            out->u.d = acc->sum.d;
        }
        break;
    case SL_AGG_AVG:
        /* Of the exact sum, rounded once: never overflows. */
        out->t = SL_T_DOUBLE;
        out->u.d = (sl__type_integral(spec->in_type) ? (double)sum128(acc) : acc->sum.d) /
                   (double)acc->n;
        break;
    default:
        *out = acc->v;
        break;
    }
    return SL_OK;
}

/* 2: an integer sum is its low 8 bytes and then its high 64 bits as a varint (0 or -1,
 * one byte, unless the sum has left a long's range). 1 (read, upgraded when written
 * again): the low 8 bytes only. */
#define ACC_VERSION 2

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

static sl_err_t put_value(sl_buf_t *out, sl_type_t t, const sl_val_t *v)
{
    if (t == SL_T_STRING) {
        uint8_t b[10];
        if (sl__buf_append(out, b, sl__zz_encode(v->n, b)) != SL_OK ||
            sl__buf_append(out, v->u.s, v->n) != SL_OK)
            return SL_ERR_NOMEM;
        return SL_OK;
    }
    return put_word(out, &v->u);
}

static int get_value(const uint8_t **p, const uint8_t *end, sl_type_t t, sl_val_t *v)
{
    v->t = (uint8_t)t;
    if (t != SL_T_STRING)
        return get_word(p, end, &v->u);
    int64_t sl;
    if (sl__zz_decode(p, end, &sl) < 0 || sl < 0 || sl > end - *p)
        return -1;
    v->u.s = (const char *)*p;
    v->n = (uint32_t)sl;
    *p += sl;
    return 0;
}

sl_err_t sl__accs_encode(const sl_agg_spec_t *specs, int n, const sl_acc_t *accs, sl_buf_t *out)
{
    if (sl__buf_reserve(out, 1 + (size_t)n * 30) != SL_OK)
        return SL_ERR_NOMEM;
    out->p[out->len++] = ACC_VERSION;
    for (int i = 0; i < n; i++) {
        const sl_acc_t *a = &accs[i];
        const sl_agg_spec_t *s = &specs[i];
        uint8_t tmp[10];
        if (sl__buf_append(out, tmp, sl__zz_encode(a->n, tmp)) != SL_OK)
            return SL_ERR_NOMEM;
        if (a->n == 0)
            continue;
        sl_err_t err = SL_OK;
        switch (s->fn) {
        case SL_AGG_COUNT:
            break;
        case SL_AGG_SUM:
        case SL_AGG_AVG:
            err = put_word(out, &a->sum);
            if (!err && sl__type_integral(s->in_type))
                err = sl__buf_append(out, tmp, sl__zz_encode(a->hi, tmp));
            break;
        case SL_AGG_MIN:
        case SL_AGG_MAX:
            err = put_value(out, s->in_type, &a->v);
            break;
        case SL_AGG_FIRST:
        case SL_AGG_LAST:
            err = put_word(out, &a->sum);
            if (!err)
                err = put_value(out, s->in_type, &a->v);
            break;
        case SL_AGG_COUNT_DISTINCT: {
            const sl_dset_t *d = a->ext;
            uint32_t cnt = d ? d->n : 0;
            err = sl__buf_append(out, tmp, sl__zz_encode(cnt, tmp));
            for (uint32_t j = 0; d && j < d->cap && !err; j++) {
                if (!d->slots[j].p)
                    continue;
                err = sl__buf_append(out, tmp, sl__zz_encode(d->slots[j].len, tmp));
                if (!err)
                    err = sl__buf_append(out, d->slots[j].p, d->slots[j].len);
            }
            break;
        }
        case SL_AGG_APPROX_COUNT_DISTINCT: {
            static const uint8_t zeros[1 << 16];
            err = sl__buf_append(out, a->ext ? a->ext : zeros, 1u << s->hll_p);
            break;
        }
        }
        if (err)
            return SL_ERR_NOMEM;
    }
    return SL_OK;
}

sl_err_t sl__accs_decode(const sl_agg_spec_t *specs, int n, const uint8_t *p, size_t len,
                         sl_acc_t *accs, sl_arena_t *arena)
{
    const uint8_t *end = p + len;
    if (len < 1 || (*p != ACC_VERSION && *p != 1))
        return SL_ERR_STATE;
    int version = *p++;
    for (int i = 0; i < n; i++) {
        sl_acc_t *a = &accs[i];
        const sl_agg_spec_t *s = &specs[i];
        memset(a, 0, sizeof(*a));
        if (sl__zz_decode(&p, end, &a->n) < 0 || a->n < 0)
            return SL_ERR_STATE;
        if (a->n == 0)
            continue;
        switch (s->fn) {
        case SL_AGG_COUNT:
            break;
        case SL_AGG_SUM:
        case SL_AGG_AVG:
            if (get_word(&p, end, &a->sum) < 0)
                return SL_ERR_STATE;
            if (!sl__type_integral(s->in_type))
                break;
            if (version == 1)
                a->hi = a->sum.i < 0 ? -1 : 0;
            else if (sl__zz_decode(&p, end, &a->hi) < 0)
                return SL_ERR_STATE;
            break;
        case SL_AGG_MIN:
        case SL_AGG_MAX:
            if (get_value(&p, end, s->in_type, &a->v) < 0)
                return SL_ERR_STATE;
            break;
        case SL_AGG_FIRST:
        case SL_AGG_LAST:
            if (get_word(&p, end, &a->sum) < 0 || get_value(&p, end, s->in_type, &a->v) < 0)
                return SL_ERR_STATE;
            break;
        case SL_AGG_COUNT_DISTINCT: {
            int64_t cnt;
            if (sl__zz_decode(&p, end, &cnt) < 0 || cnt < 0 || cnt > end - p)
                return SL_ERR_STATE;
            uint32_t cap = 16;
            while (cap < (uint64_t)cnt * 2 + 2)
                cap *= 2;
            sl_dset_t *d = dset_new(arena, cap);
            if (!d)
                return SL_ERR_NOMEM;
            for (int64_t j = 0; j < cnt; j++) {
                int64_t vl;
                if (sl__zz_decode(&p, end, &vl) < 0 || vl < 0 || vl > end - p)
                    return SL_ERR_STATE;
                if (dset_add(d, sl__hash(p, (size_t)vl), p, (uint32_t)vl, 0, arena))
                    return SL_ERR_NOMEM;
                p += vl;
            }
            a->ext = d;
            break;
        }
        case SL_AGG_APPROX_COUNT_DISTINCT: {
            size_t m = 1u << s->hll_p;
            if ((size_t)(end - p) < m)
                return SL_ERR_STATE;
            if (!(a->ext = sl__arena_dup(arena, p, m)))
                return SL_ERR_NOMEM;
            p += m;
            break;
        }
        }
    }
    return p == end ? SL_OK : SL_ERR_STATE;
}
