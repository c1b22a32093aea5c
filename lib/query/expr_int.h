/*
 * expr_int.h - what the expression parser (expr.c) and evaluator (expr_eval.c) share: the
 * node of a parsed expression.
 */
#ifndef SL_EXPR_INT_H
#define SL_EXPR_INT_H

#include "expr.h"

typedef enum {
    E_LIT,
    E_FIELD,
    E_CMP,
    E_AND,
    E_OR,
    E_NOT,
    E_ISNULL,
    E_IN,
    E_ARITH,
    E_NEG,
    E_CALL
} ekind_t;
typedef enum { OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE } cmpop_t;
typedef enum {
    F_LENGTH,
    F_LOWER,
    F_UPPER,
    F_SUBSTRING,
    F_ABS,
    F_COALESCE,
    F_CONCAT,
    F_TIMESTAMP_MILLIS,
    F_UNIX_MILLIS
} fn_t;

struct sl_expr {
    ekind_t kind;
    int pos;        /* column of the node's first character, for messages */
    cmpop_t op;     /* E_CMP */
    char aop;       /* E_ARITH: + - * / % */
    fn_t fn;        /* E_CALL */
    int negate;     /* E_ISNULL: is not null; E_IN: not in */
    int slot;       /* E_FIELD */
    sl_type_t type; /* static type of the value this node yields */
    sl_val_t lit;   /* E_LIT; strings owned in litbuf */
    char *litbuf;
    sl_expr_t *a, *b;
    sl_expr_t **list; /* E_IN literals, E_CALL arguments, E_AND and E_OR operands */
    size_t nlist, caplist;
    int depth; /* levels of nodes from this one down, itself included */
};

/* Expressions nest at most this deep (parentheses, operators, function calls): parsing,
 * evaluating and freeing them recurse once a level, so the limit bounds the stack they
 * take (a 100,000-term chain of '+' would be a tree that deep; a chain of "and" or "or"
 * is one level, its operands a list). */
#define SL_EXPR_MAX_DEPTH 256

#endif
