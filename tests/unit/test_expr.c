/*
 * test_expr.c - where filters: parsing, types, three-valued logic, error positions.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "expr.h"

/* Fields: a long, b double, s string, f boolean. */
static int lookup(void *opaque, const char *name, size_t len, sl_type_t *type)
{
    static const struct {
        const char *n;
        sl_type_t t;
    } fields[] = {{"a", SL_T_LONG}, {"b", SL_T_DOUBLE}, {"s", SL_T_STRING}, {"f", SL_T_BOOL}};
    for (int i = 0; i < 4; i++) {
        if (strlen(fields[i].n) == len && !memcmp(fields[i].n, name, len)) {
            *type = fields[i].t;
            return i;
        }
    }
    return -1;
}

static sl_val_t row[4];

static void set_row(int64_t a, double b, const char *s, int f)
{
    row[0] = (sl_val_t){.t = SL_T_LONG, .u.i = a};
    row[1] = (sl_val_t){.t = SL_T_DOUBLE, .u.d = b};
    row[2] = s ? (sl_val_t){.t = SL_T_STRING, .n = (uint32_t)strlen(s), .u.s = s}
               : (sl_val_t){.t = SL_T_NULL};
    row[3] = (sl_val_t){.t = SL_T_BOOL, .u.i = f};
}

static int match(const char *text)
{
    sl_expr_t *e;
    char err[256];
    cr_assert_eq(sl__expr_parse(text, lookup, NULL, &e, err, sizeof(err)), SL_OK, "%s: %s", text,
                 err);
    int r = sl__expr_match(e, row);
    sl__expr_destroy(e);
    return r;
}

Test(expr, comparisons_and_logic)
{
    set_row(5, 2.5, "home", 1);
    cr_assert(match("a = 5"));
    cr_assert(match("a > 4 and b < 3"));
    cr_assert(match("a >= 5 and a <= 5 and a != 6 and a <> 4"));
    cr_assert(!match("a > 5 or b > 3"));
    cr_assert(match("not (a > 5) and s = 'home'"));
    cr_assert(match("a > b"), "long and double compare numerically");
    cr_assert(match("b = 2.5 and a = 5.0"));
    cr_assert(match("s in ('x', 'home')"));
    cr_assert(match("a not in (1, 2, 3)"));
    cr_assert(match("f"));
    cr_assert(match("f = true and not f = false"));
    cr_assert(match("s = 'it''s' or s > 'ha'"), "doubled quote and string order");
    cr_assert(match("a = -5 or a = 5"));
}

Test(expr, null_is_unknown)
{
    set_row(1, 1.0, NULL, 0);
    cr_assert(!match("s = 'x'"));
    cr_assert(!match("s != 'x'"), "a comparison with null is unknown, not true");
    cr_assert(!match("not (s = 'x')"), "not unknown is unknown");
    cr_assert(match("s is null"));
    cr_assert(!match("s is not null"));
    cr_assert(match("s = 'x' or a = 1"), "unknown or true is true");
    cr_assert(!match("s = 'x' and a = 1"));
    cr_assert(!match("s in ('x')"));
    cr_assert(!match("a in (2, null)"), "not found among values with a null is unknown");
    cr_assert(match("a in (1, null)"));
}

static void expect_error(const char *text, const char *want)
{
    sl_expr_t *e = NULL;
    char err[256] = "";
    cr_assert_eq(sl__expr_parse(text, lookup, NULL, &e, err, sizeof(err)), SL_ERR_INVAL,
                 "'%s' parsed", text);
    cr_assert_null(e);
    cr_assert(strstr(err, want), "'%s': expected \"%s\", got \"%s\"", text, want, err);
}

Test(expr, errors_say_where_and_what)
{
    expect_error("", "empty");
    expect_error("a >", "at column 4: expected a value, found end of filter");
    expect_error("zz = 1", "at column 1: unknown field 'zz'");
    expect_error("a = 1 and s = 3", "at column 11: cannot compare string with long");
    expect_error("a = 1 b", "at column 7: unexpected b");
    expect_error("(a = 1", "expected ')'");
    expect_error("s = 'open", "unterminated string");
    expect_error("a", "a long is not a condition");
    expect_error("a in 1", "expected '(' after 'in'");
    expect_error("s is 3", "expected 'null' after 'is'");
    expect_error("a # 1", "unexpected character '#'");
}
