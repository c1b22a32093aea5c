/*
 * expr.c - tokenizer and recursive-descent parser of expressions (evaluated by
 * expr_eval.c).
 *
 *   or      := and ('or' and)*
 *   and     := not ('and' not)*
 *   not     := 'not' not | pred
 *   pred    := sum [cmp sum | 'is' ['not'] 'null' | ['not'] 'in' '(' literal (',' literal)* ')']
 *   sum     := product (('+' | '-') product)*
 *   product := unary (('*' | '/' | '%') unary)*
 *   unary   := '-' unary | primary
 *   primary := '(' or ')' | literal | name '(' [or (',' or)*] ')' | name
 *
 * Types are checked when the expression is parsed, so a filter that compares a string
 * field with a number is refused by `sluice validate`, not discovered per record.
 * Arithmetic follows Spark SQL: '/' always yields a double, division by zero yields
 * null (Spark's non-ANSI rule, its try_divide), and integer overflow is an error (its ANSI
 * rule) rather than a wrapped number.
 */
#include "expr.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "expr_int.h"

static const struct {
    const char *name;
    fn_t fn;
    int min, max; /* argument counts; max -1 for any */
} functions[] = {
    {"length", F_LENGTH, 1, 1},
    {"char_length", F_LENGTH, 1, 1},
    {"lower", F_LOWER, 1, 1},
    {"lcase", F_LOWER, 1, 1},
    {"upper", F_UPPER, 1, 1},
    {"ucase", F_UPPER, 1, 1},
    {"substring", F_SUBSTRING, 2, 3},
    {"substr", F_SUBSTRING, 2, 3},
    {"abs", F_ABS, 1, 1},
    {"coalesce", F_COALESCE, 1, -1},
    {"concat", F_CONCAT, 1, -1},
    {"timestamp_millis", F_TIMESTAMP_MILLIS, 1, 1},
    {"unix_millis", F_UNIX_MILLIS, 1, 1},
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
    int nest; /* parse functions entered and not yet left that may recurse */
} parser_t;

static void perr_at(parser_t *ps, int pos, const char *fmt, const char *arg)
{
    if (ps->failed)
        return;
    ps->failed = 1;
    char msg[640];
    snprintf(msg, sizeof(msg), fmt, arg);
    snprintf(ps->errstr, ps->errstr_size, "at column %d: %s", pos + 1, msg);
}

static void perr(parser_t *ps, const char *fmt, const char *arg)
{
    perr_at(ps, (int)(ps->ts - ps->src), fmt, arg);
}

static void next(parser_t *ps)
{
    while (isspace((unsigned char)*ps->p))
        ps->p++;
    ps->ts = ps->p;
    ps->tn = 0; /* until the token is known: an error below leaves none */
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
    } else if (isdigit((unsigned char)c) || (c == '.' && isdigit((unsigned char)ps->p[1]))) {
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
    } else if (strchr("+-*/%", c)) {
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

static int is_op(const parser_t *ps, const char *op)
{
    return ps->tk == T_OP && ps->tn == strlen(op) && !strncmp(ps->ts, op, ps->tn);
}

static sl_expr_t *node(parser_t *ps, ekind_t kind)
{
    sl_expr_t *e = calloc(1, sizeof(*e));
    if (e) {
        e->kind = kind;
        e->pos = (int)(ps->ts - ps->src);
        e->depth = 1;
    } else {
        perr(ps, "%s", "out of memory");
    }
    return e;
}

/* Sets the depth of @p e from its children; -1 (with the error) past the limit. */
static int deepen(parser_t *ps, sl_expr_t *e)
{
    int d = 0;
    if (e->a && e->a->depth > d)
        d = e->a->depth;
    if (e->b && e->b->depth > d)
        d = e->b->depth;
    for (size_t i = 0; i < e->nlist; i++) {
        if (e->list[i]->depth > d)
            d = e->list[i]->depth;
    }
    e->depth = d + 1;
    if (e->depth <= SL_EXPR_MAX_DEPTH)
        return 0;
    char msg[96];
    snprintf(msg, sizeof(msg), "the expression nests more than %d levels deep", SL_EXPR_MAX_DEPTH);
    perr_at(ps, e->pos, "%s", msg);
    return -1;
}

/* Entering a parse function that may recurse: -1 (with the error) past the limit. The
 * caller leaves with ps->nest-- whatever the outcome. */
static int enter(parser_t *ps)
{
    if (++ps->nest <= SL_EXPR_MAX_DEPTH)
        return 0;
    char msg[96];
    snprintf(msg, sizeof(msg), "the expression nests more than %d levels deep", SL_EXPR_MAX_DEPTH);
    perr(ps, "%s", msg);
    return -1;
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
    if (ps->tk == T_END)
        return "the end";
    size_t n = ps->tn < sizeof(buf) - 1 ? ps->tn : sizeof(buf) - 1;
    memcpy(buf, ps->ts, n);
    buf[n] = 0;
    return buf;
}

static int numeric(sl_type_t t)
{
    return t == SL_T_LONG || t == SL_T_DOUBLE || t == SL_T_TIMESTAMP;
}

static sl_expr_t *parse_literal(parser_t *ps)
{
    sl_expr_t *e = node(ps, E_LIT);
    if (!e)
        return NULL;
    int neg = 0;
    if (is_op(ps, "-")) {
        neg = 1;
        next(ps);
        if (ps->tk != T_NUM) {
            perr(ps, "expected a number after '-', found %s", tok_text(ps));
            goto fail;
        }
    }
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
            e->lit.u.i = neg ? -v : v;
        } else {
            double d = strtod(tmp, &end);
            if (*end || errno) {
                perr(ps, "not a number: %s", tmp);
                goto fail;
            }
            e->lit.t = SL_T_DOUBLE;
            e->lit.u.d = neg ? -d : d;
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
        e->litbuf[n] = 0;
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

/* A string literal compared with a timestamp is read as a date-time, as Spark casts it. */
static int coerce_timestamp(parser_t *ps, sl_expr_t *lit)
{
    if (lit->kind != E_LIT || lit->type != SL_T_STRING)
        return 0;
    int64_t ms;
    if (sl__ts_parse(lit->lit.u.s, lit->lit.n, &ms) < 0) {
        perr_at(ps, lit->pos, "'%s' is not a date-time such as 2026-11-25T09:00:00Z", lit->litbuf);
        return -1;
    }
    lit->lit.t = SL_T_TIMESTAMP;
    lit->lit.u.i = ms;
    lit->type = SL_T_TIMESTAMP;
    return 0;
}

static int comparable(parser_t *ps, sl_expr_t *a, sl_expr_t *b)
{
    if (a->type == SL_T_TIMESTAMP && coerce_timestamp(ps, b) < 0)
        return -1;
    if (b->type == SL_T_TIMESTAMP && coerce_timestamp(ps, a) < 0)
        return -1;
    return a->type == SL_T_NULL || b->type == SL_T_NULL || a->type == b->type ||
           (numeric(a->type) && numeric(b->type));
}

static sl_expr_t *parse_or(parser_t *ps);

static sl_expr_t *parse_call(parser_t *ps, size_t fi)
{
    sl_expr_t *e = node(ps, E_CALL);
    if (!e)
        return NULL;
    e->fn = functions[fi].fn;
    next(ps); /* the name */
    next(ps); /* '(' */
    if (ps->tk != T_RP) {
        for (;;) {
            sl_expr_t *arg = parse_or(ps);
            if (!arg)
                goto fail;
            if (SL_GROW(e->list, e->caplist, e->nlist + 1, 4)) {
                sl__expr_destroy(arg);
                goto fail;
            }
            e->list[e->nlist++] = arg;
            if (ps->tk != T_COMMA)
                break;
            next(ps);
        }
    }
    if (ps->tk != T_RP) {
        perr(ps, "expected ',' or ')' in the arguments, found %s", tok_text(ps));
        goto fail;
    }
    if (deepen(ps, e) < 0)
        goto fail;
    next(ps);
    const char *name = functions[fi].name;
    if ((int)e->nlist < functions[fi].min ||
        (functions[fi].max >= 0 && (int)e->nlist > functions[fi].max)) {
        char want[96];
        if (functions[fi].max < 0)
            snprintf(want, sizeof(want), "%s takes at least %d argument(s)", name,
                     functions[fi].min);
        else if (functions[fi].min == functions[fi].max)
            snprintf(want, sizeof(want), "%s takes %d argument(s)", name, functions[fi].min);
        else
            snprintf(want, sizeof(want), "%s takes %d to %d arguments", name, functions[fi].min,
                     functions[fi].max);
        perr_at(ps, e->pos, "%s", want);
        goto fail;
    }
    /* Argument types. */
    sl_type_t want = SL_T_NULL;
    switch (e->fn) {
    case F_LENGTH:
    case F_LOWER:
    case F_UPPER:
    case F_SUBSTRING:
    case F_CONCAT:
        want = SL_T_STRING;
        e->type = e->fn == F_LENGTH ? SL_T_LONG : SL_T_STRING;
        break;
    case F_ABS:
        e->type = e->list[0]->type;
        break;
    case F_TIMESTAMP_MILLIS:
        want = SL_T_LONG;
        e->type = SL_T_TIMESTAMP;
        break;
    case F_UNIX_MILLIS:
        want = SL_T_TIMESTAMP;
        e->type = SL_T_LONG;
        break;
    case F_COALESCE:
        e->type = SL_T_NULL;
        for (size_t i = 0; i < e->nlist; i++) {
            sl_type_t t = e->list[i]->type;
            if (t == SL_T_NULL)
                continue;
            if (e->type == SL_T_NULL || e->type == t)
                e->type = t;
            else if (numeric(e->type) && numeric(t))
                e->type = SL_T_DOUBLE;
            else {
                perr_at(ps, e->list[i]->pos, "coalesce mixes %s with other types",
                        sl__type_name(t));
                goto fail;
            }
        }
        break;
    }
    for (size_t i = 0; i < e->nlist; i++) {
        sl_type_t t = e->list[i]->type;
        sl_type_t w = want;
        if (e->fn == F_SUBSTRING && i > 0)
            w = SL_T_LONG;
        if (e->fn == F_ABS && !numeric(t) && t != SL_T_NULL) {
            perr_at(ps, e->list[i]->pos, "abs needs a number, not a %s", sl__type_name(t));
            goto fail;
        }
        if (w != SL_T_NULL && t != w && t != SL_T_NULL) {
            char msg[128];
            snprintf(msg, sizeof(msg), "argument %zu of %s must be a %s, not a %s", i + 1, name,
                     sl__type_name(w), sl__type_name(t));
            perr_at(ps, e->list[i]->pos, "%s", msg);
            goto fail;
        }
    }
    return e;
fail:
    sl__expr_destroy(e);
    return NULL;
}

static sl_expr_t *parse_unary(parser_t *ps);

static sl_expr_t *parse_primary(parser_t *ps)
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
    if (ps->tk == T_IDENT && !is_kw(ps, "true") && !is_kw(ps, "false") && !is_kw(ps, "null")) {
        const char *after = ps->p;
        while (isspace((unsigned char)*after))
            after++;
        if (*after == '(') {
            for (size_t i = 0; i < SL_ARRAY_LEN(functions); i++) {
                if (is_kw(ps, functions[i].name))
                    return parse_call(ps, i);
            }
            char known[256] = "";
            for (size_t i = 0; i < SL_ARRAY_LEN(functions); i++)
                sl__strlcatf(known, sizeof(known), "%s%s", i ? ", " : "", functions[i].name);
            char msg[400];
            snprintf(msg, sizeof(msg), "unknown function '%s' (known: %s)", tok_text(ps), known);
            perr(ps, "%s", msg);
            return NULL;
        }
        sl_type_t type;
        int slot = ps->lookup(ps->opaque, ps->ts, ps->tn, &type);
        if (slot < 0) {
            perr(ps, "unknown field '%s'", tok_text(ps));
            return NULL;
        }
        sl_expr_t *e = node(ps, E_FIELD);
        if (!e)
            return NULL;
        e->slot = slot;
        e->type = type;
        next(ps);
        return e;
    }
    return parse_literal(ps);
}

static sl_expr_t *parse_unary(parser_t *ps)
{
    if (!is_op(ps, "-"))
        return parse_primary(ps);
    const char *after = ps->p;
    while (isspace((unsigned char)*after))
        after++;
    if (isdigit((unsigned char)*after) || *after == '.')
        return parse_literal(ps); /* a negative number */
    sl_expr_t *e = node(ps, E_NEG);
    if (!e)
        return NULL;
    next(ps);
    e->a = enter(ps) < 0 ? NULL : parse_unary(ps);
    ps->nest--;
    if (!e->a || deepen(ps, e) < 0) {
        sl__expr_destroy(e);
        return NULL;
    }
    if (!numeric(e->a->type) && e->a->type != SL_T_NULL) {
        perr_at(ps, e->pos, "cannot negate a %s", sl__type_name(e->a->type));
        sl__expr_destroy(e);
        return NULL;
    }
    e->type = e->a->type == SL_T_TIMESTAMP ? SL_T_LONG : e->a->type;
    return e;
}

static sl_expr_t *parse_arith(parser_t *ps, const char *ops, sl_expr_t *(*sub)(parser_t *))
{
    sl_expr_t *l = sub(ps);
    while (l && ps->tk == T_OP && ps->tn == 1 && strchr(ops, ps->ts[0])) {
        sl_expr_t *e = node(ps, E_ARITH);
        if (!e) {
            sl__expr_destroy(l);
            return NULL;
        }
        e->aop = ps->ts[0];
        e->pos = l->pos;
        int oppos = (int)(ps->ts - ps->src);
        next(ps);
        e->a = l;
        e->b = sub(ps);
        if (!e->b || deepen(ps, e) < 0) {
            sl__expr_destroy(e);
            return NULL;
        }
        sl_type_t ta = e->a->type, tb = e->b->type;
        if ((!numeric(ta) && ta != SL_T_NULL) || (!numeric(tb) && tb != SL_T_NULL)) {
            char what[96];
            snprintf(what, sizeof(what), "'%c' needs numbers, not %s and %s", e->aop,
                     sl__type_name(ta), sl__type_name(tb));
            perr_at(ps, oppos, "%s", what);
            sl__expr_destroy(e);
            return NULL;
        }
        if (e->aop == '/' || ta == SL_T_DOUBLE || tb == SL_T_DOUBLE)
            e->type = SL_T_DOUBLE;
        else
            e->type = SL_T_LONG; /* timestamps compute as milliseconds */
        l = e;
    }
    return l;
}

static sl_expr_t *parse_product(parser_t *ps)
{
    return parse_arith(ps, "*/%", parse_unary);
}

static sl_expr_t *parse_sum(parser_t *ps)
{
    return parse_arith(ps, "+-", parse_product);
}

static sl_expr_t *parse_pred(parser_t *ps)
{
    sl_expr_t *l = parse_sum(ps);
    if (!l)
        return NULL;
    if (ps->tk == T_OP) {
        static const struct {
            const char *s;
            cmpop_t op;
        } ops[] = {{"=", OP_EQ}, {"==", OP_EQ}, {"!=", OP_NE}, {"<>", OP_NE},
                   {"<", OP_LT}, {"<=", OP_LE}, {">", OP_GT},  {">=", OP_GE}};
        int found = -1;
        for (size_t i = 0; i < SL_ARRAY_LEN(ops); i++) {
            if (is_op(ps, ops[i].s))
                found = (int)i;
        }
        if (found < 0) {
            perr(ps, "unknown operator %s", tok_text(ps));
            goto fail_l;
        }
        sl_expr_t *e = node(ps, E_CMP);
        if (!e)
            goto fail_l;
        e->op = ops[found].op;
        e->pos = l->pos;
        e->type = SL_T_BOOL;
        next(ps);
        e->a = l;
        e->b = parse_sum(ps);
        if (!e->b || deepen(ps, e) < 0) {
            sl__expr_destroy(e);
            return NULL;
        }
        int ok = comparable(ps, e->a, e->b);
        if (ok <= 0) {
            if (!ok) {
                char what[96];
                snprintf(what, sizeof(what), "%s with %s", sl__type_name(e->a->type),
                         sl__type_name(e->b->type));
                perr_at(ps, e->pos, "cannot compare %s", what);
            }
            sl__expr_destroy(e);
            return NULL;
        }
        return e;
    }
    if (is_kw(ps, "is")) {
        sl_expr_t *e = node(ps, E_ISNULL);
        if (!e)
            goto fail_l;
        e->a = l;
        e->type = SL_T_BOOL;
        next(ps);
        if (is_kw(ps, "not")) {
            e->negate = 1;
            next(ps);
        }
        if (!is_kw(ps, "null") || deepen(ps, e) < 0) {
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
        sl_expr_t *e = node(ps, E_IN);
        if (!e)
            goto fail_l;
        e->a = l;
        e->negate = negate;
        e->type = SL_T_BOOL;
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
            if (SL_GROW(e->list, e->caplist, e->nlist + 1, 4)) {
                sl__expr_destroy(lit);
                sl__expr_destroy(e);
                return NULL;
            }
            e->list[e->nlist++] = lit;
            int ok = comparable(ps, l, lit);
            if (ok <= 0) {
                if (!ok)
                    perr_at(ps, lit->pos, "'in' list holds a value of another type than %s",
                            sl__type_name(l->type));
                sl__expr_destroy(e);
                return NULL;
            }
        } while (ps->tk == T_COMMA);
        if (ps->tk != T_RP || deepen(ps, e) < 0) {
            perr(ps, "expected ')' to close 'in', found %s", tok_text(ps));
            sl__expr_destroy(e);
            return NULL;
        }
        next(ps);
        return e;
    }
    return l;
fail_l:
    sl__expr_destroy(l);
    return NULL;
}

static int need_condition(parser_t *ps, const sl_expr_t *e)
{
    if (e->type == SL_T_BOOL || e->type == SL_T_NULL)
        return 0;
    perr_at(ps, e->pos, "a %s is not a condition (compare it with something)",
            sl__type_name(e->type));
    return -1;
}

static sl_expr_t *parse_not(parser_t *ps)
{
    if (is_kw(ps, "not")) {
        sl_expr_t *e = node(ps, E_NOT);
        if (!e)
            return NULL;
        next(ps);
        e->type = SL_T_BOOL;
        e->a = enter(ps) < 0 ? NULL : parse_not(ps);
        ps->nest--;
        if (!e->a || need_condition(ps, e->a) < 0 || deepen(ps, e) < 0) {
            sl__expr_destroy(e);
            return NULL;
        }
        return e;
    }
    return parse_pred(ps);
}

/* A chain of "and"s (or of "or"s) is one node of its operands, however long: a query
 * testing 500 alternatives is not 500 levels deep. */
static sl_expr_t *parse_logic(parser_t *ps, const char *kw, ekind_t kind,
                              sl_expr_t *(*sub)(parser_t *))
{
    sl_expr_t *l = sub(ps);
    if (!l || !is_kw(ps, kw))
        return l;
    sl_expr_t *e = node(ps, kind);
    if (!e || need_condition(ps, l) < 0) {
        sl__expr_destroy(l);
        sl__expr_destroy(e);
        return NULL;
    }
    e->pos = l->pos;
    e->type = SL_T_BOOL;
    sl_expr_t *x = l;
    for (;;) {
        if (SL_GROW(e->list, e->caplist, e->nlist + 1, 4)) {
            sl__expr_destroy(x);
            sl__expr_destroy(e);
            perr(ps, "%s", "out of memory");
            return NULL;
        }
        e->list[e->nlist++] = x;
        if (!is_kw(ps, kw))
            break;
        next(ps);
        x = sub(ps);
        if (!x || need_condition(ps, x) < 0) {
            sl__expr_destroy(x);
            sl__expr_destroy(e);
            return NULL;
        }
    }
    if (deepen(ps, e) < 0) {
        sl__expr_destroy(e);
        return NULL;
    }
    return e;
}

static sl_expr_t *parse_and(parser_t *ps)
{
    return parse_logic(ps, "and", E_AND, parse_not);
}

/* The top of the grammar, entered again for each parenthesis and function argument. */
static sl_expr_t *parse_or(parser_t *ps)
{
    sl_expr_t *e = enter(ps) < 0 ? NULL : parse_logic(ps, "or", E_OR, parse_and);
    ps->nest--;
    return e;
}

static sl_err_t parse(const char *text, int condition, sl_field_lookup_fn lookup, void *opaque,
                      sl_expr_t **exprp, char *errstr, size_t errstr_size)
{
    parser_t ps = {.src = text,
                   .p = text,
                   .lookup = lookup,
                   .opaque = opaque,
                   .errstr = errstr,
                   .errstr_size = errstr_size};
    *exprp = NULL;
    next(&ps);
    if (ps.tk == T_END && !ps.failed) {
        perr(&ps, "%s", "the expression is empty");
        return SL_ERR_INVAL;
    }
    sl_expr_t *e = ps.failed ? NULL : parse_or(&ps);
    if (e && ps.tk != T_END)
        perr(&ps, "unexpected %s (expected an operator or the end)", tok_text(&ps));
    if (e && condition)
        need_condition(&ps, e);
    if (ps.failed || !e) {
        if (!ps.failed)
            snprintf(errstr, errstr_size, "out of memory");
        sl__expr_destroy(e);
        return SL_ERR_INVAL;
    }
    *exprp = e;
    return SL_OK;
}

sl_err_t sl__expr_parse(const char *text, sl_field_lookup_fn lookup, void *opaque,
                        sl_expr_t **exprp, char *errstr, size_t errstr_size)
{
    return parse(text, 1, lookup, opaque, exprp, errstr, errstr_size);
}

sl_err_t sl__expr_parse_value(const char *text, sl_field_lookup_fn lookup, void *opaque,
                              sl_expr_t **exprp, char *errstr, size_t errstr_size)
{
    return parse(text, 0, lookup, opaque, exprp, errstr, errstr_size);
}

sl_type_t sl__expr_type(const sl_expr_t *e)
{
    return e->type;
}

int sl__expr_field_slot(const sl_expr_t *e)
{
    return e->kind == E_FIELD ? e->slot : -1;
}
