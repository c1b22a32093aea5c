/*
 * expr.h - the expression language of a job: filters (where), derived fields, group-by
 * expressions and aggregate inputs. An expression is parsed once, its type checked
 * against the input fields, and evaluated per record with SQL's rules: null in, null
 * out, and three-valued logic for conditions (unknown filters the record out).
 *
 *   bytes > 1000 and (page = '/home' or page in ('/a', '/b')) and not user_id is null
 *   length(line)          lower(substring(page, 1, 4))          bytes * 8 / latency_ms
 */
#ifndef SL_EXPR_H
#define SL_EXPR_H

#include <stddef.h>

#include "codec/row.h"
#include "sluice/sluice.h"
#include "util.h"

typedef struct sl_expr sl_expr_t;

/** Resolves a field name to its slot and declared type; -1 when unknown. */
typedef int (*sl_field_lookup_fn)(void *opaque, const char *name, size_t len, sl_type_t *type);

/**
 * Parses a condition (an expression of type boolean). On error fills @p errstr with the
 * column and what was expected.
 * @param exprp receives the expression, destroyed with sl__expr_destroy().
 */
sl_err_t sl__expr_parse(const char *text, sl_field_lookup_fn lookup, void *opaque,
                        sl_expr_t **exprp, char *errstr, size_t errstr_size);
/** Parses an expression of any type; sl__expr_type() tells which. */
sl_err_t sl__expr_parse_value(const char *text, sl_field_lookup_fn lookup, void *opaque,
                              sl_expr_t **exprp, char *errstr, size_t errstr_size);
/** The static type of the expression's values (each value is of it or null). */
sl_type_t sl__expr_type(const sl_expr_t *e);
/** The slot when the expression is a bare field, else -1. */
int sl__expr_field_slot(const sl_expr_t *e);

/**
 * Evaluates @p e on @p row into @p out. Strings made by functions are allocated in
 * @p scratch (which the caller resets when the value is no longer needed); others point
 * into the row or the expression. SL_ERR_NOMEM when @p scratch cannot grow;
 * SL_ERR_OVERFLOW when integer arithmetic on the row's values leaves the range of a long
 * (as Spark's ANSI mode, the value is an error, never a wrapped number).
 */
sl_err_t sl__expr_eval(const sl_expr_t *e, const sl_val_t *row, sl_arena_t *scratch, sl_val_t *out);
/** 1 when the row passes, 0 when it is filtered out (false or unknown), or the error of
 *  sl__expr_eval() (negative). */
int sl__expr_match(const sl_expr_t *e, const sl_val_t *row, sl_arena_t *scratch);
void sl__expr_destroy(sl_expr_t *e);

#endif
