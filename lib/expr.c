/*
 * expr.c - tokenizer, recursive-descent parser and evaluator of where filters.
 *
 *   or   := and ('or' and)*
 *   and  := not ('and' not)*
 *   not  := 'not' not | pred
 *   pred := '(' or ')' | operand [cmp operand | 'is' ['not'] 'null'
 *                                 | ['not'] 'in' '(' literal (',' literal)* ')']
 *
 * Types are checked when the filter is parsed, so a filter that compares a string field
 * with a number is refused by `sluice validate`, not discovered per record.
 */
#include "expr.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/util.h"

typedef enum { E_LIT, E_FIELD, E_CMP, E_AND, E_OR, E_NOT, E_ISNULL, E_IN } ekind_t;
typedef enum { OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE } cmpop_t;

struct sl_expr {
    ekind_t kind;
    cmpop_t op;
    int negate;      /* E_ISNULL: is not null; E_IN: not in */
    int slot;        /* E_FIELD */
    sl_type_t type;  /* static type of the value this node yields (E_LIT, E_FIELD) */
    sl_val_t lit;    /* E_LIT; strings owned in litbuf */
    char *litbuf;
    sl_expr_t *a, *b;
    sl_expr_t **list; /* E_IN literals */
    size_t nlist;
};

typedef enum { T_END, T_IDENT, T_NUM, T_STR, T_OP, T_LP, T_RP, T_COMMA } tkind_t;

typedef struct parser {
    const char *src;
    const char *p;
    tkind_t tk;
    const char *ts; /* token start */
    size_t tn;      /* token length */
    sl_field_lookup_fn lookup;
    void *opaque;
    char *errstr;
    size_t errstr_size;
    int failed;
} parser_t;

static void perr(parser_t *ps, const char *fmt, const char *arg)
{
    if (ps->failed)
        return;
    ps->failed = 1;
    char msg[256];
    snprintf(msg, sizeof(msg), fmt, arg);
    snprintf(ps->errstr, ps->errstr_size, "at column %d: %s", (int)(ps->ts - ps->src) + 1, msg);
}

static void next(parser_t *ps)
{
    while (isspace((unsigned char)*ps->p))
        ps->p++;
    ps->ts = ps->p;
    char c = *ps->p;
    if (!c) {
        ps->tk = T_END;
        ps->tn = 0;
        return;
    }
    if (isalpha((unsigned char)c) || c == '_' || c == '`') {
        if (c == '`') { /* `quoted.name` */
            const char *e = strchr(ps->p + 1, '`');
            if (!e) {
                ps->tk = T_END;
                perr(ps, "unterminated `%s", "name`");
                return;
            }
            ps->ts = ps->p + 1;
            ps->tn = (size_t)(e - ps->ts);
            ps->p = e + 1;
            ps->tk = T_IDENT;
            return;
        }
        while (isalnum((unsigned char)*ps->p) || *ps->p == '_' || *ps->p == '.')
            ps->p++;
        ps->tk = T_IDENT;
    } else if (isdigit((unsigned char)c) ||
               ((c == '-' || c == '.') && (isdigit((unsigned char)ps->p[1]) || ps->p[1] == '.'))) {
        ps->p++;
        while (isalnum((unsigned char)*ps->p) || *ps->p == '.' ||
               ((*ps->p == '-' || *ps->p == '+') && (ps->p[-1] == 'e' || ps->p[-1] == 'E')))
            ps->p++;
        ps->tk = T_NUM;
    } else if (c == '\'' || c == '"') {
        const char *q = ps->p + 1;
        while (*q && !(*q == c && q[1] != c)) {
            if (*q == c) /* doubled quote */
                q++;
            q++;
        }
        if (!*q) {
            ps->tk = T_END;
            perr(ps, "unterminated string %s", "literal");
            return;
        }
        ps->p = q + 1;
        ps->tk = T_STR;
    } else if (c == '(' || c == ')' || c == ',') {
        ps->p++;
        ps->tk = c == '(' ? T_LP : c == ')' ? T_RP : T_COMMA;
    } else if (strchr("=!<>", c)) {
        ps->p++;
        if (*ps->p == '=' || (c == '<' && *ps->p == '>'))
            ps->p++;
        ps->tk = T_OP;
    } else {
        ps->p++;
        ps->tk = T_END;
        perr(ps, "unexpected character '%s'", (char[]){c, 0});
        return;
    }
    ps->tn = (size_t)(ps->p - ps->ts);
}

static int is_kw(const parser_t *ps, const char *kw)
{
    return ps->tk == T_IDENT && ps->tn == strlen(kw) && strncasecmp(ps->ts, kw, ps->tn) == 0;
}

static sl_expr_t *node(ekind_t kind)
{
    sl_expr_t *e = calloc(1, sizeof(*e));
    if (e)
        e->kind = kind;
    return e;
}

void sl__expr_destroy(sl_expr_t *e)
{
    if (!e)
        return;
    sl__expr_destroy(e->a);
    sl__expr_destroy(e->b);
    for (size_t i = 0; i < e->nlist; i++)
        sl__expr_destroy(e->list[i]);
    free(e->list);
    free(e->litbuf);
    free(e);
}

static char *tok_text(const parser_t *ps)
{
    static __thread char buf[128];
    size_t n = ps->tn < sizeof(buf) - 1 ? ps->tn : sizeof(buf) - 1;
    memcpy(buf, ps->ts, n);
    buf[n] = 0;
    return ps->tk == T_END ? "end of filter" : buf;
}

static sl_expr_t *parse_literal(parser_t *ps)
{
    sl_expr_t *e = node(E_LIT);
    if (!e)
        return NULL;
    if (ps->tk == T_NUM) {
        char tmp[64];
        if (ps->tn >= sizeof(tmp)) {
            perr(ps, "number too long: %s", tok_text(ps));
            goto fail;
        }
        memcpy(tmp, ps->ts, ps->tn);
        tmp[ps->tn] = 0;
        char *end;
        errno = 0;
        if (!strpbrk(tmp, ".eE")) {
            long long v = strtoll(tmp, &end, 10);
            if (*end || errno) {
                perr(ps, "not a number: %s", tmp);
                goto fail;
            }
            e->lit.t = SL_T_LONG;
            e->lit.u.i = v;
        } else {
            double d = strtod(tmp, &end);
            if (*end || errno) {
                perr(ps, "not a number: %s", tmp);
                goto fail;
            }
            e->lit.t = SL_T_DOUBLE;
            e->lit.u.d = d;
        }
    } else if (ps->tk == T_STR) {
        char q = ps->ts[0];
        e->litbuf = malloc(ps->tn);
        if (!e->litbuf)
            goto fail;
        size_t n = 0;
        for (size_t i = 1; i + 1 < ps->tn; i++) {
            e->litbuf[n++] = ps->ts[i];
            if (ps->ts[i] == q)
                i++; /* doubled quote stands for one */
        }
        e->lit.t = SL_T_STRING;
        e->lit.u.s = e->litbuf;
        e->lit.n = (uint32_t)n;
    } else if (is_kw(ps, "true") || is_kw(ps, "false")) {
        e->lit.t = SL_T_BOOL;
        e->lit.u.i = is_kw(ps, "true");
    } else if (is_kw(ps, "null")) {
        e->lit.t = SL_T_NULL;
    } else {
        perr(ps, "expected a value, found %s", tok_text(ps));
        goto fail;
    }
    e->type = (sl_type_t)e->lit.t;
    next(ps);
    return e;
fail:
    sl__expr_destroy(e);
    return NULL;
}

static sl_expr_t *parse_operand(parser_t *ps)
{
    if (ps->tk == T_IDENT && !is_kw(ps, "true") && !is_kw(ps, "false") && !is_kw(ps, "null")) {
        sl_type_t type;
        int slot = ps->lookup(ps->opaque, ps->ts, ps->tn, &type);
        if (slot < 0) {
            perr(ps, "unknown field '%s'", tok_text(ps));
            return NULL;
        }
        sl_expr_t *e = node(E_FIELD);
        if (!e)
            return NULL;
        e->slot = slot;
        e->type = type;
        next(ps);
        return e;
    }
    return parse_literal(ps);
}

static int numeric(sl_type_t t)
{
    return t == SL_T_LONG || t == SL_T_DOUBLE;
}

static int comparable(sl_type_t a, sl_type_t b)
{
    return a == SL_T_NULL || b == SL_T_NULL || a == b || (numeric(a) && numeric(b));
}

static sl_expr_t *parse_or(parser_t *ps);

static sl_expr_t *parse_pred(parser_t *ps)
{
    if (ps->tk == T_LP) {
        next(ps);
        sl_expr_t *e = parse_or(ps);
        if (e && ps->tk != T_RP) {
            perr(ps, "expected ')', found %s", tok_text(ps));
            sl__expr_destroy(e);
            return NULL;
        }
        next(ps);
        return e;
    }
    const char *start = ps->ts;
    sl_expr_t *l = parse_operand(ps);
    if (!l)
        return NULL;
    if (ps->tk == T_OP) {
        static const struct {
            const char *s;
            cmpop_t op;
        } ops[] = {{"=", OP_EQ},  {"==", OP_EQ}, {"!=", OP_NE}, {"<>", OP_NE},
                   {"<", OP_LT},  {"<=", OP_LE}, {">", OP_GT},  {">=", OP_GE}};
        sl_expr_t *e = node(E_CMP);
        if (!e)
            goto fail_l;
        int found = 0;
        for (size_t i = 0; i < SL_ARRAY_LEN(ops); i++) {
            if (strlen(ops[i].s) == ps->tn && !strncmp(ops[i].s, ps->ts, ps->tn)) {
                e->op = ops[i].op;
                found = 1;
            }
        }
        if (!found) {
            perr(ps, "unknown operator %s", tok_text(ps));
            free(e);
            goto fail_l;
        }
        next(ps);
        e->a = l;
        e->b = parse_operand(ps);
        if (!e->b) {
            sl__expr_destroy(e);
            return NULL;
        }
        if (!comparable(e->a->type, e->b->type)) {
            ps->ts = start;
            char what[96];
            snprintf(what, sizeof(what), "%s with %s", sl__type_name(e->a->type),
                     sl__type_name(e->b->type));
            perr(ps, "cannot compare %s", what);
            sl__expr_destroy(e);
            return NULL;
        }
        return e;
    }
    if (is_kw(ps, "is")) {
        sl_expr_t *e = node(E_ISNULL);
        if (!e)
            goto fail_l;
        e->a = l;
        next(ps);
        if (is_kw(ps, "not")) {
            e->negate = 1;
            next(ps);
        }
        if (!is_kw(ps, "null")) {
            perr(ps, "expected 'null' after 'is', found %s", tok_text(ps));
            sl__expr_destroy(e);
            return NULL;
        }
        next(ps);
        return e;
    }
    int negate = 0;
    if (is_kw(ps, "not")) {
        negate = 1;
        next(ps);
        if (!is_kw(ps, "in")) {
            perr(ps, "expected 'in' after 'not', found %s", tok_text(ps));
            goto fail_l;
        }
    }
    if (is_kw(ps, "in")) {
        sl_expr_t *e = node(E_IN);
        if (!e)
            goto fail_l;
        e->a = l;
        e->negate = negate;
        next(ps);
        if (ps->tk != T_LP) {
            perr(ps, "expected '(' after 'in', found %s", tok_text(ps));
            sl__expr_destroy(e);
            return NULL;
        }
        do {
            next(ps);
            sl_expr_t *lit = parse_literal(ps);
            if (!lit) {
                sl__expr_destroy(e);
                return NULL;
            }
            sl_expr_t **nl = realloc(e->list, (e->nlist + 1) * sizeof(*nl));
            if (!nl) {
                sl__expr_destroy(lit);
                sl__expr_destroy(e);
                return NULL;
            }
            e->list = nl;
            e->list[e->nlist++] = lit;
            if (!comparable(l->type, lit->type)) {
                perr(ps, "'in' list holds a value of another type than %s",
                     sl__type_name(l->type));
                sl__expr_destroy(e);
                return NULL;
            }
        } while (ps->tk == T_COMMA);
        if (ps->tk != T_RP) {
            perr(ps, "expected ')' to close 'in', found %s", tok_text(ps));
            sl__expr_destroy(e);
            return NULL;
        }
        next(ps);
        return e;
    }
    if (l->type != SL_T_BOOL) {
        ps->ts = start;
        perr(ps, "a %s is not a condition (compare it with something)", sl__type_name(l->type));
        goto fail_l;
    }
    return l;
fail_l:
    sl__expr_destroy(l);
    return NULL;
}

static sl_expr_t *parse_not(parser_t *ps)
{
    if (is_kw(ps, "not")) {
        next(ps);
        sl_expr_t *e = node(E_NOT);
        if (!e)
            return NULL;
        e->a = parse_not(ps);
        if (!e->a) {
            free(e);
            return NULL;
        }
        return e;
    }
    return parse_pred(ps);
}

static sl_expr_t *parse_binary(parser_t *ps, const char *kw, ekind_t kind,
                               sl_expr_t *(*sub)(parser_t *))
{
    sl_expr_t *l = sub(ps);
    while (l && is_kw(ps, kw)) {
        next(ps);
        sl_expr_t *e = node(kind);
        if (!e) {
            sl__expr_destroy(l);
            return NULL;
        }
        e->a = l;
        e->b = sub(ps);
        if (!e->b) {
            sl__expr_destroy(e);
            return NULL;
        }
        l = e;
    }
    return l;
}

static sl_expr_t *parse_and(parser_t *ps)
{
    return parse_binary(ps, "and", E_AND, parse_not);
}

static sl_expr_t *parse_or(parser_t *ps)
{
    return parse_binary(ps, "or", E_OR, parse_and);
}

sl_err_t sl__expr_parse(const char *text, sl_field_lookup_fn lookup, void *opaque,
                        sl_expr_t **exprp, char *errstr, size_t errstr_size)
{
    parser_t ps = {.src = text, .p = text, .lookup = lookup, .opaque = opaque,
                   .errstr = errstr, .errstr_size = errstr_size};
    *exprp = NULL;
    next(&ps);
    if (ps.tk == T_END && !ps.failed) {
        perr(&ps, "%s", "the filter is empty");
        return SL_ERR_INVAL;
    }
    sl_expr_t *e = ps.failed ? NULL : parse_or(&ps);
    if (e && ps.tk != T_END)
        perr(&ps, "unexpected %s (expected 'and', 'or' or the end)", tok_text(&ps));
    if (ps.failed || !e) {
        if (!ps.failed)
            snprintf(errstr, errstr_size, "out of memory");
        sl__expr_destroy(e);
        return SL_ERR_INVAL;
    }
    *exprp = e;
    return SL_OK;
}

static const sl_val_t *value_of(const sl_expr_t *e, const sl_val_t *row)
{
    return e->kind == E_FIELD ? &row[e->slot] : &e->lit;
}

/* 1 true, 0 false, -1 unknown */
static int eval(const sl_expr_t *e, const sl_val_t *row)
{
    switch (e->kind) {
    case E_FIELD:
    case E_LIT: {
        const sl_val_t *v = value_of(e, row);
        return v->t == SL_T_NULL ? -1 : v->u.i != 0;
    }
    case E_CMP: {
        const sl_val_t *a = value_of(e->a, row), *b = value_of(e->b, row);
        if (a->t == SL_T_NULL || b->t == SL_T_NULL)
            return -1;
        int c = sl__val_cmp(a, b);
        switch (e->op) {
        case OP_EQ:
            return c == 0;
        case OP_NE:
            return c != 0;
        case OP_LT:
            return c < 0;
        case OP_LE:
            return c <= 0;
        case OP_GT:
            return c > 0;
        case OP_GE:
            return c >= 0;
        }
        return -1;
    }
    case E_AND: {
        int a = eval(e->a, row);
        if (a == 0)
            return 0;
        int b = eval(e->b, row);
        if (b == 0)
            return 0;
        return a == 1 && b == 1 ? 1 : -1;
    }
    case E_OR: {
        int a = eval(e->a, row);
        if (a == 1)
            return 1;
        int b = eval(e->b, row);
        if (b == 1)
            return 1;
        return a == 0 && b == 0 ? 0 : -1;
    }
    case E_NOT: {
        int a = eval(e->a, row);
        return a < 0 ? -1 : !a;
    }
    case E_ISNULL: {
        int isnull = value_of(e->a, row)->t == SL_T_NULL;
        return e->negate ? !isnull : isnull;
    }
    case E_IN: {
        const sl_val_t *a = value_of(e->a, row);
        if (a->t == SL_T_NULL)
            return -1;
        int unknown = 0;
        for (size_t i = 0; i < e->nlist; i++) {
            const sl_val_t *b = &e->list[i]->lit;
            if (b->t == SL_T_NULL) {
                unknown = 1;
                continue;
            }
            if (sl__val_cmp(a, b) == 0)
                return !e->negate;
        }
        return unknown ? -1 : e->negate;
    }
    }
    return -1;
}

int sl__expr_match(const sl_expr_t *e, const sl_val_t *row)
{
    return eval(e, row) == 1;
}
