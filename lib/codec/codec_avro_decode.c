/*
 * codec_avro_decode.c - decoding Avro records with the program codec_avro.c compiled:
 * straight from the record's bytes into the row, with no allocation (strings point into
 * the record), every length and block count checked against the bytes left before it is
 * used. A record whose schema has a flat plan is decoded in one loop over its leaves;
 * others walk the tree.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec_avro.h"
#include "util.h"

typedef struct dstate {
    const uint8_t *start;
    const uint8_t *p;
    const uint8_t *end;
    sl_val_t *row;
    char *errstr;
    size_t errstr_size;
} dstate_t;

/* Out of line: the decoding loops stay small. */
__attribute__((cold, noinline)) static sl_err_t derr(dstate_t *d, const aop_t *op, const char *what,
                                                     int64_t a, int64_t b)
{
    char msg[160];
    snprintf(msg, sizeof(msg), what, (long long)a, (long long)b);
    snprintf(d->errstr, d->errstr_size, "at byte %ld, field '%s': %s", (long)(d->p - d->start),
             *op->name ? op->name : "(record)", msg);
    return SL_ERR_DECODE;
}

static inline sl_err_t read_long(dstate_t *d, const aop_t *op, int64_t *v)
{
    if (d->p < d->end && !(*d->p & 0x80)) { /* one byte: lengths, small numbers */
        uint64_t u = *d->p++;
        *v = sl__zz_value(u);
        return SL_OK;
    }
    if (sl__zz_decode(&d->p, d->end, v) < 0) {
        *v = 0;
        return derr(d, op, d->p >= d->end ? "the record ends early" : "malformed varint", 0, 0);
    }
    return SL_OK;
}

static inline sl_err_t read_len(dstate_t *d, const aop_t *op, int64_t *len)
{
    sl_err_t err = read_long(d, op, len);
    if (err)
        return err;
    if (*len < 0)
        return derr(d, op, "negative length %lld", *len, 0);
    if (*len > d->end - d->p)
        return derr(d, op, "length %lld exceeds the %lld bytes left", *len, d->end - d->p);
    return SL_OK;
}

/* One primitive value (or null, fixed, enum) into its slot, if the query reads it. */
static inline sl_err_t leaf(dstate_t *d, const aop_t *op)
{
    sl_err_t err;
    sl_val_t *out = op->slot >= 0 ? &d->row[op->slot] : NULL;
    switch (op->k) {
    case A_NULL:
        if (out)
            out->t = SL_T_NULL;
        return SL_OK;
    case A_BOOL:
        if (d->p >= d->end)
            return derr(d, op, "the record ends early", 0, 0);
        if (*d->p > 1)
            return derr(d, op, "boolean byte is %lld, not 0 or 1", *d->p, 0);
        if (out) {
            out->t = SL_T_BOOL;
            out->u.i = *d->p;
        }
        d->p++;
        return SL_OK;
    case A_INT:
    case A_LONG: {
        int64_t v;
        if ((err = read_long(d, op, &v)))
            return err;
        if (op->k == A_INT && (v < INT32_MIN || v > INT32_MAX))
            return derr(d, op, "int value %lld out of range", v, 0);
        if (out) {
            out->t = SL_T_LONG;
            out->u.i = v;
        }
        return SL_OK;
    }
    case A_FLOAT: {
        if (d->end - d->p < 4)
            return derr(d, op, "the record ends early", 0, 0);
        float f;
        memcpy(&f, d->p, 4); /* Avro is little-endian, as is every target we build for */
        d->p += 4;
        if (out) {
            out->t = SL_T_DOUBLE;
            out->u.d = f;
        }
        return SL_OK;
    }
    case A_DOUBLE: {
        if (d->end - d->p < 8)
            return derr(d, op, "the record ends early", 0, 0);
        double f;
        memcpy(&f, d->p, 8);
        d->p += 8;
        if (out) {
            out->t = SL_T_DOUBLE;
            out->u.d = f;
        }
        return SL_OK;
    }
    case A_BYTES:
    case A_STRING: {
        int64_t len;
        if ((err = read_len(d, op, &len)))
            return err;
        if (out) {
            out->t = SL_T_STRING;
            out->u.s = (const char *)d->p;
            out->n = (uint32_t)len;
        }
        d->p += len;
        return SL_OK;
    }
    case A_FIXED:
        if (d->end - d->p < op->fixed)
            return derr(d, op, "fixed of %lld bytes, only %lld left", op->fixed, d->end - d->p);
        if (out) {
            out->t = SL_T_STRING;
            out->u.s = (const char *)d->p;
            out->n = (uint32_t)op->fixed;
        }
        d->p += op->fixed;
        return SL_OK;
    case A_ENUM: {
        int64_t v;
        if ((err = read_long(d, op, &v)))
            return err;
        if (v < 0 || v >= op->n)
            return derr(d, op, "enum index %lld, the schema has %lld symbols", v, op->n);
        if (out) {
            out->t = SL_T_STRING;
            out->u.s = op->syms[v];
            out->n = (uint32_t)strlen(op->syms[v]);
        }
        return SL_OK;
    }
    default:
        return SL_OK; /* not a leaf: run() handles it */
    }
}

static int is_leaf(akind_t k)
{
    return k != A_RECORD && k != A_LINK && k != A_UNION && k != A_ARRAY && k != A_MAP;
}

static sl_err_t run(dstate_t *d, const aop_t *op, int depth)
{
    sl_err_t err;
    if (depth > MAX_DEPTH)
        return derr(d, op, "nested more than %lld levels deep", MAX_DEPTH, 0);
    if (is_leaf(op->k))
        return leaf(d, op);
    switch (op->k) {
    case A_RECORD:
        for (uint32_t i = 0; i < op->n; i++) {
            if ((err = run(d, op->kids[i], depth + 1)))
                return err;
        }
        return SL_OK;
    case A_LINK:
        return run(d, op->target, depth + 1);
    case A_UNION: {
        int64_t b;
        if ((err = read_long(d, op, &b)))
            return err;
        if (b < 0 || b >= op->n)
            return derr(d, op, "union branch %lld, the schema has %lld", b, op->n);
        return run(d, op->kids[b], depth + 1);
    }
    case A_ARRAY:
    case A_MAP:
        for (;;) {
            int64_t count;
            if ((err = read_long(d, op, &count)))
                return err;
            if (count == 0)
                return SL_OK;
            if (count < 0) {
                int64_t size; /* a negative count is followed by the block's byte size */
                if (count == INT64_MIN)
                    return derr(d, op, "block count out of range", 0, 0);
                count = -count;
                if ((err = read_len(d, op, &size)))
                    return err;
            }
            /* Items that take no bytes (nulls, fixed(0), empty records) are never bound: a
             * block of them is skipped at once, whatever count it claims. Any other item
             * takes a byte at least, so the work is bounded by the record's size. */
            if (op->k == A_ARRAY && op->kids[0]->empty)
                continue;
            if (count > d->end - d->p)
                return derr(d, op, "block of %lld items exceeds the %lld bytes left", count,
                            d->end - d->p);
            for (int64_t i = 0; i < count; i++) {
                if (op->k == A_MAP) {
                    int64_t klen;
                    if ((err = read_len(d, op, &klen)))
                        return err;
                    d->p += klen;
                }
                if ((err = run(d, op->kids[0], depth + 1)))
                    return err;
            }
        }
    default:
        return SL_OK; /* the leaves went to leaf() */
    }
}

/* A varint that ends within the 8 bytes at @p (which must be readable), its 7-bit groups
 * gathered in three shifts: its length, or 0 when it is longer (read_long() takes it). */
static inline int varint8(const uint8_t *p, uint64_t *u)
{
    if (!(*p & 0x80)) {
        *u = *p;
        return 1;
    }
    uint64_t w;
    memcpy(&w, p, 8); /* little-endian: byte i in bits 8i..8i+7 */
    uint64_t stop = ~w & 0x8080808080808080ULL;
    if (!stop)
        return 0;
    int bits = __builtin_ctzll(stop) + 1; /* 8 x the length */
    uint64_t x = (bits == 64 ? w : w & ((1ULL << bits) - 1)) & 0x7f7f7f7f7f7f7f7fULL;
    x = (x & 0x007f007f007f007fULL) | ((x & 0x7f007f007f007f00ULL) >> 1);
    x = (x & 0x00003fff00003fffULL) | ((x & 0x3fff00003fff0000ULL) >> 2);
    x = (x & 0x000000000fffffffULL) | ((x & 0x0fffffff00000000ULL) >> 4);
    *u = x;
    return bits >> 3;
}

/* An int, long, string or bytes of kind @p k at *pp into row[slot] (slot < 0: skipped),
 * without a check per byte when 8 bytes or more are left and a byte at a time in the
 * record's last bytes (its last fields are often small numbers): 1 when done, 0 when the
 * checked leaf() must take it (a longer varint, a bad value, another kind; leaf()
 * reports what is wrong). */
static inline int leaf_fast(const uint8_t **pp, const uint8_t *end, akind_t k, int slot,
                            sl_val_t *row)
{
    const uint8_t *p = *pp;
    uint64_t u;
    int n;
    switch (k) {
    case A_INT:
    case A_LONG: {
        int64_t v;
        if (end - p >= 8) {
            if (!(n = varint8(p, &u)))
                return 0;
            v = sl__zz_value(u);
        } else {
            const uint8_t *q = p;
            if (sl__zz_decode(&q, end, &v) < 0)
                return 0; /* it runs past the end */
            n = (int)(q - p);
        }
        if (k == A_INT && (v < INT32_MIN || v > INT32_MAX))
            return 0;
        if (slot >= 0) {
            row[slot].t = SL_T_LONG;
            row[slot].u.i = v;
        }
        *pp = p + n;
        return 1;
    }
    case A_BYTES:
    case A_STRING: {
        if (end - p < 8 || !(n = varint8(p, &u)))
            return 0;
        int64_t len = sl__zz_value(u);
        if (len < 0 || len > end - p - n)
            return 0;
        p += n;
        if (slot >= 0) {
            sl_val_t *out = &row[slot];
            out->t = SL_T_STRING;
            out->u.s = (const char *)p;
            out->n = (uint32_t)len;
        }
        *pp = p + len;
        return 1;
    }
    default:
        return 0;
    }
}

/* A record of leaves and unions of leaves, in one loop. */
static sl_err_t run_flat(dstate_t *d, const avro_impl_t *impl)
{
    const uint8_t *p = d->p, *const end = d->end;
    sl_val_t *const row = d->row;
    for (const fstep_t *st = impl->flat, *last = st + impl->nflat; st < last; st++) {
        if (leaf_fast(&p, end, st->k, st->slot, row))
            continue;
        d->p = p;
        const aop_t *op = st->op;
        sl_err_t err;
        if (op->k == A_UNION) {
            int64_t b;
            if ((err = read_long(d, op, &b)))
                return err;
            if (b < 0 || b >= op->n)
                return derr(d, op, "union branch %lld, the schema has %lld", b, op->n);
            op = op->kids[b];
            p = d->p;
            if (leaf_fast(&p, end, op->k, op->slot, row))
                continue;
            d->p = p;
        }
        if ((err = leaf(d, op)))
            return err;
        p = d->p;
    }
    d->p = p;
    return SL_OK;
}

/* Appends the leaves under @p op to the plan; -1 when a node needs the tree. */
static int plan_add(avro_impl_t *impl, const aop_t *op, size_t *cap)
{
    if (op->k == A_RECORD) {
        for (uint32_t i = 0; i < op->n; i++) {
            if (plan_add(impl, op->kids[i], cap) < 0)
                return -1;
        }
        return 0;
    }
    if (op->k == A_UNION) {
        for (uint32_t i = 0; i < op->n; i++) {
            if (!is_leaf(op->kids[i]->k))
                return -1;
        }
    } else if (!is_leaf(op->k)) {
        return -1;
    }
    if (SL_GROW(impl->flat, *cap, impl->nflat + 1, 16))
        return -2;
    impl->flat[impl->nflat++] = (fstep_t){op->k, op->slot, op};
    return 0;
}

sl_err_t sl__avro_plan(sl_codec_t *c, avro_impl_t *impl)
{
    size_t cap = 0;
    int r = plan_add(impl, impl->prog, &cap);
    if (r == -2)
        return SL_ERR_NOMEM;
    if (r < 0) { /* the tree it is */
        free(impl->flat);
        impl->flat = NULL;
        impl->nflat = 0;
    }
    size_t n = (size_t)(c->nfields ? c->nfields : 1);
    impl->default_slots = malloc(n * sizeof(int));
    impl->double_slots = malloc(n * sizeof(int));
    if (!impl->default_slots || !impl->double_slots)
        return SL_ERR_NOMEM;
    for (int i = 0; i < c->nfields; i++) {
        if (impl->has_default[i])
            impl->default_slots[impl->ndefault++] = i;
        if (c->used[i] && c->fields[i].type == SL_T_DOUBLE)
            impl->double_slots[impl->ndouble++] = i;
    }
    return SL_OK;
}

sl_err_t sl__avro_decode(sl_codec_t *c, const void *buf, size_t len, sl_val_t *row, char *errstr,
                         size_t errstr_size)
{
    const avro_impl_t *impl = c->impl;
    const uint8_t *p = buf;
    if (impl->confluent) {
        if (len < 5 || p[0] != 0) {
            snprintf(errstr, errstr_size, "not in Confluent wire format (%s)",
                     len < 5 ? "shorter than its 5-byte header" : "magic byte is not 0");
            return SL_ERR_DECODE;
        }
        /* Another id means another writer schema: decoding it with this one would give
         * wrong values or an error far from the cause. */
        int32_t id = (int32_t)sl__be32_get(p + 1);
        int known = 0;
        for (int i = 0; i < impl->nids && !known; i++)
            known = impl->ids[i] == id;
        if (!known) {
            char list[200] = "";
            for (int i = 0; i < impl->nids; i++)
                sl__strlcatf(list, sizeof(list), "%s%d", i ? ", " : "", (int)impl->ids[i]);
            snprintf(errstr, errstr_size,
                     "Confluent schema id %d is not one this job decodes "
                     "(source.schema_ids: %s)",
                     (int)id, list);
            return SL_ERR_DECODE;
        }
        p += 5;
        len -= 5;
    }
    for (int i = 0; i < impl->ndefault; i++)
        row[impl->default_slots[i]] = impl->defaults[impl->default_slots[i]];
    dstate_t d = {p, p, p + len, row, errstr, errstr_size};
    sl_err_t err = impl->flat ? run_flat(&d, impl) : run(&d, impl->prog, 0);
    if (err)
        return err;
    if (d.p != d.end) {
        snprintf(errstr, errstr_size,
                 "%ld bytes left after the record (is the schema the one it was written with?)",
                 (long)(d.end - d.p));
        return SL_ERR_DECODE;
    }
    /* A long written into a double field (promotion) is converted here, once. */
    for (int i = 0; i < impl->ndouble; i++) {
        sl_val_t *v = &row[impl->double_slots[i]];
        if (v->t == SL_T_LONG) {
            v->t = SL_T_DOUBLE;
            v->u.d = (double)v->u.i;
        }
    }
    return SL_OK;
}
