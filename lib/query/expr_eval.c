/*
 * expr_eval.c - evaluation of parsed expressions (expr.h): SQL's null rules and
 * three-valued logic, Spark SQL's arithmetic, and the string and time functions.
 */
#include <ctype.h>
#include <math.h>
#include <string.h>

#include "expr_int.h"

#define NULLV ((sl_val_t){.t = SL_T_NULL})

/* Bytes of the first @p chars UTF-8 characters of s (all of s when it has fewer). */
static size_t utf8_skip(const char *s, size_t n, int64_t chars)
{
    size_t i = 0;
    while (i < n && chars > 0) {
        i++;
        while (i < n && ((unsigned char)s[i] & 0xc0) == 0x80)
            i++;
        chars--;
    }
    return i;
}

static int64_t utf8_len(const char *s, size_t n)
{
    int64_t len = 0;
    for (size_t i = 0; i < n; i++)
        len += ((unsigned char)s[i] & 0xc0) != 0x80;
    return len;
}

/* Spark's substring: 1-based; 0 counts as 1; a negative position counts from the end. */
static void substring(const sl_val_t *s, int64_t pos, int64_t len, int has_len, sl_val_t *out)
{
    int64_t n = utf8_len(s->u.s, s->n);
    int64_t start = pos > 0 ? pos - 1 : pos < 0 ? n + pos : 0;
    int64_t end = n;
    if (has_len && len <= 0)
        end = start;
    else if (has_len && __builtin_add_overflow(start, len, &end))
        end = n; /* a length past the end of the longest string means to the end */
    if (start < 0)
        start = 0;
    if (end > n)
        end = n;
    *out = (sl_val_t){.t = SL_T_STRING};
    if (end <= start) {
        out->u.s = s->u.s;
        return;
    }
    size_t b0 = utf8_skip(s->u.s, s->n, start);
    size_t b1 = b0 + utf8_skip(s->u.s + b0, s->n - b0, end - start);
    out->u.s = s->u.s + b0;
    out->n = (uint32_t)(b1 - b0);
}

static sl_err_t call(const sl_expr_t *e, const sl_val_t *row, sl_arena_t *scratch, sl_val_t *out)
{
    sl_val_t args[3];
    *out = NULLV;
    if (e->fn == F_COALESCE) {
        for (size_t i = 0; i < e->nlist; i++) {
            sl_err_t err = sl__expr_eval(e->list[i], row, scratch, out);
            if (err || out->t != SL_T_NULL) {
                if (!err && e->type == SL_T_DOUBLE && out->t != SL_T_DOUBLE)
                    *out = (sl_val_t){.t = SL_T_DOUBLE, .u.d = sl__val_num(out)};
                return err;
            }
        }
        return SL_OK;
    }
    if (e->fn == F_CONCAT) {
        size_t total = 0;
        sl_val_t *vals = sl__arena_alloc(scratch, e->nlist * sizeof(sl_val_t));
        if (!vals)
            return SL_ERR_NOMEM;
        for (size_t i = 0; i < e->nlist; i++) {
            sl_err_t err = sl__expr_eval(e->list[i], row, scratch, &vals[i]);
            if (err)
                return err;
            if (vals[i].t == SL_T_NULL)
                return SL_OK; /* as Spark's concat: null when any input is */
            total += vals[i].n;
        }
        char *p = sl__arena_alloc(scratch, total ? total : 1);
        if (!p)
            return SL_ERR_NOMEM;
        size_t off = 0;
        for (size_t i = 0; i < e->nlist; i++) {
            if (vals[i].n)
                memcpy(p + off, vals[i].u.s, vals[i].n);
            off += vals[i].n;
        }
        *out = (sl_val_t){.t = SL_T_STRING, .n = (uint32_t)total, .u.s = p};
        return SL_OK;
    }
    for (size_t i = 0; i < e->nlist; i++) {
        sl_err_t err = sl__expr_eval(e->list[i], row, scratch, &args[i]);
        if (err)
            return err;
        if (args[i].t == SL_T_NULL)
            return SL_OK;
    }
    switch (e->fn) {
    case F_LENGTH:
        *out = (sl_val_t){.t = SL_T_LONG, .u.i = utf8_len(args[0].u.s, args[0].n)};
        break;
    case F_LOWER:
    case F_UPPER: {
        /* ASCII letters only; other bytes, UTF-8 sequences included, are kept as they are. */
        char *p = sl__arena_alloc(scratch, args[0].n ? args[0].n : 1);
        if (!p)
            return SL_ERR_NOMEM;
        for (uint32_t i = 0; i < args[0].n; i++) {
            unsigned char ch = (unsigned char)args[0].u.s[i];
            p[i] = (char)(ch < 0x80 ? (e->fn == F_LOWER ? tolower(ch) : toupper(ch)) : ch);
        }
        *out = (sl_val_t){.t = SL_T_STRING, .n = args[0].n, .u.s = p};
        break;
    }
    case F_SUBSTRING:
        substring(&args[0], args[1].u.i, e->nlist > 2 ? args[2].u.i : 0, e->nlist > 2, out);
        break;
    case F_ABS:
        *out = args[0];
        if (out->t == SL_T_DOUBLE)
            out->u.d = fabs(out->u.d);
        else if (out->u.i == INT64_MIN)
            return SL_ERR_OVERFLOW;
        else if (out->u.i < 0)
            out->u.i = -out->u.i;
        break;
    case F_TIMESTAMP_MILLIS:
        *out = (sl_val_t){.t = SL_T_TIMESTAMP, .u.i = args[0].u.i};
        break;
    case F_UNIX_MILLIS:
        *out = (sl_val_t){.t = SL_T_LONG, .u.i = args[0].u.i};
        break;
    default:
        break;
    }
    return SL_OK;
}

static sl_err_t arith(char op, const sl_val_t *a, const sl_val_t *b, sl_type_t type,
                      sl_val_t *out)
{
    if (type == SL_T_LONG) {
        int64_t x = a->u.i, y = b->u.i;
        int over = 0;
        *out = (sl_val_t){.t = SL_T_LONG};
        switch (op) {
        case '+':
            over = __builtin_add_overflow(x, y, &out->u.i);
            break;
        case '-':
            over = __builtin_sub_overflow(x, y, &out->u.i);
            break;
        case '*':
            over = __builtin_mul_overflow(x, y, &out->u.i);
            break;
        case '%':
            if (y == 0)
                *out = NULLV;
            else if (y == -1)
                out->u.i = 0; /* INT64_MIN % -1 would trap */
            else
                out->u.i = x % y;
            break;
        }
        return over ? SL_ERR_OVERFLOW : SL_OK;
    }
    double x = sl__val_num(a), y = sl__val_num(b), r = 0;
    switch (op) {
    case '+':
        r = x + y;
        break;
    case '-':
        r = x - y;
        break;
    case '*':
        r = x * y;
        break;
    case '/':
    case '%':
        if (y == 0) {
            *out = NULLV;
            return SL_OK;
        }
        r = op == '/' ? x / y : fmod(x, y);
        break;
    }
    *out = (sl_val_t){.t = SL_T_DOUBLE, .u.d = r};
    return SL_OK;
}

static int truth(const sl_val_t *v)
{
    return v->t == SL_T_NULL ? -1 : v->u.i != 0;
}

static void set_truth(sl_val_t *out, int t)
{
    *out = t < 0 ? NULLV : (sl_val_t){.t = SL_T_BOOL, .u.i = t};
}

sl_err_t sl__expr_eval(const sl_expr_t *e, const sl_val_t *row, sl_arena_t *scratch, sl_val_t *out)
{
    sl_val_t a, b;
    sl_err_t err;
    switch (e->kind) {
    case E_FIELD:
        *out = row[e->slot];
        return SL_OK;
    case E_LIT:
        *out = e->lit;
        return SL_OK;
    case E_CMP: {
        if ((err = sl__expr_eval(e->a, row, scratch, &a)) ||
            (err = sl__expr_eval(e->b, row, scratch, &b)))
            return err;
        if (a.t == SL_T_NULL || b.t == SL_T_NULL) {
            *out = NULLV;
            return SL_OK;
        }
        int c = sl__val_cmp(&a, &b);
        static const int8_t want[][3] = {
            [OP_EQ] = {0, 1, 0}, [OP_NE] = {1, 0, 1}, [OP_LT] = {1, 0, 0},
            [OP_LE] = {1, 1, 0}, [OP_GT] = {0, 0, 1}, [OP_GE] = {0, 1, 1},
        };
        set_truth(out, want[e->op][c < 0 ? 0 : c == 0 ? 1 : 2]);
        return SL_OK;
    }
    case E_AND:
    case E_OR: {
        /* Left to right, stopping at the value that decides alone; an unknown (null)
         * operand makes the result unknown unless one decides. */
        int stop = e->kind == E_OR, unknown = 0;
        for (size_t i = 0; i < e->nlist; i++) {
            if ((err = sl__expr_eval(e->list[i], row, scratch, &a)))
                return err;
            int x = truth(&a);
            if (x == stop) {
                set_truth(out, stop);
                return SL_OK;
            }
            unknown |= x < 0;
        }
        set_truth(out, unknown ? -1 : !stop);
        return SL_OK;
    }
    case E_NOT:
        if ((err = sl__expr_eval(e->a, row, scratch, &a)))
            return err;
        set_truth(out, truth(&a) < 0 ? -1 : !truth(&a));
        return SL_OK;
    case E_ISNULL:
        if ((err = sl__expr_eval(e->a, row, scratch, &a)))
            return err;
        set_truth(out, e->negate ? a.t != SL_T_NULL : a.t == SL_T_NULL);
        return SL_OK;
    case E_IN: {
        if ((err = sl__expr_eval(e->a, row, scratch, &a)))
            return err;
        if (a.t == SL_T_NULL) {
            *out = NULLV;
            return SL_OK;
        }
        int unknown = 0;
        for (size_t i = 0; i < e->nlist; i++) {
            const sl_val_t *v = &e->list[i]->lit;
            if (v->t == SL_T_NULL) {
                unknown = 1;
                continue;
            }
            if (sl__val_cmp(&a, v) == 0) {
                set_truth(out, !e->negate);
                return SL_OK;
            }
        }
        set_truth(out, unknown ? -1 : e->negate);
        return SL_OK;
    }
    case E_ARITH:
        if ((err = sl__expr_eval(e->a, row, scratch, &a)) ||
            (err = sl__expr_eval(e->b, row, scratch, &b)))
            return err;
        if (a.t == SL_T_NULL || b.t == SL_T_NULL) {
            *out = NULLV;
            return SL_OK;
        }
        return arith(e->aop, &a, &b, e->type, out);
    case E_NEG:
        if ((err = sl__expr_eval(e->a, row, scratch, &a)))
            return err;
        *out = a;
        if (a.t == SL_T_DOUBLE) {
            out->u.d = -a.u.d;
        } else if (a.t != SL_T_NULL) {
            if (a.u.i == INT64_MIN)
                return SL_ERR_OVERFLOW;
            out->t = SL_T_LONG;
            out->u.i = -a.u.i;
        }
        return SL_OK;
    case E_CALL:
        return call(e, row, scratch, out);
    }
    *out = NULLV;
    return SL_OK;
}

int sl__expr_match(const sl_expr_t *e, const sl_val_t *row, sl_arena_t *scratch)
{
    sl_val_t v;
    sl_err_t err = sl__expr_eval(e, row, scratch, &v);
    if (err)
        return err;
    return v.t == SL_T_BOOL && v.u.i;
}
