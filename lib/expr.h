/*
 * expr.h - the where filter: a small expression language over input fields, compiled once
 * and evaluated per record with SQL's three-valued logic (a comparison with null is
 * unknown, and unknown filters the record out).
 *
 *   bytes > 1000 and (page = '/home' or page in ('/a', '/b')) and not user_id is null
 */
#ifndef SL_EXPR_H
#define SL_EXPR_H

#include <stddef.h>

#include "row.h"
#include "sluice/sluice.h"

typedef struct sl_expr sl_expr_t;

/** Resolves a field name to its slot and declared type; -1 when unknown. */
typedef int (*sl_field_lookup_fn)(void *opaque, const char *name, size_t len, sl_type_t *type);

/**
 * Parses @p text. On error fills @p errstr with the column and what was expected.
 * @param exprp receives the expression, destroyed with sl__expr_destroy().
 */
sl_err_t sl__expr_parse(const char *text, sl_field_lookup_fn lookup, void *opaque,
                        sl_expr_t **exprp, char *errstr, size_t errstr_size);
/** 1 when the row passes, 0 when it is filtered out (false or unknown). */
int sl__expr_match(const sl_expr_t *e, const sl_val_t *row);
void sl__expr_destroy(sl_expr_t *e);

#endif
