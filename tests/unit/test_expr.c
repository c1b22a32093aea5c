/*
 * test_expr.c - expressions: filters (parsing, types, three-valued logic, error
 * positions), arithmetic and functions as Spark SQL computes them.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "query/expr.h"

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
    sl_arena_t scratch;
    sl__arena_init(&scratch);
    int r = sl__expr_match(e, row, &scratch);
    sl__arena_fini(&scratch);
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
    expect_error("a >", "at column 4: expected a value, found the end");
    expect_error("zz = 1", "at column 1: unknown field 'zz'");
    expect_error("a = 1 and s = 3", "at column 11: cannot compare string with long");
    expect_error("a = 1 b", "at column 7: unexpected b");
    expect_error("(a = 1", "expected ')'");
    expect_error("s = 'open", "unterminated string");
    expect_error("a", "a long is not a condition");
    expect_error("a in 1", "expected '(' after 'in'");
    expect_error("s is 3", "expected 'null' after 'is'");
    expect_error("a # 1", "unexpected character '#'");
    /* Found by fuzz_expr: the message after a bad character or an unterminated string
     * quoted the previous token's length from the new position, past the text's end. */
    expect_error("coalesce(null, .09\x13", "unexpected character");
    expect_error("a in ('/, 7mo&&&&&&&&&&&&'?)", "unexpected character '?'");
    expect_error("s = 'open and a > 1", "unterminated string");
}

/* Evaluates a value expression on the row into *v (strings copied to @p out); the
 * evaluation's error. */
static sl_err_t eval_into(const char *text, sl_val_t *v, char *out, size_t size)
{
    sl_expr_t *e;
    char err[256];
    cr_assert_eq(sl__expr_parse_value(text, lookup, NULL, &e, err, sizeof(err)), SL_OK, "%s: %s",
                 text, err);
    sl_arena_t scratch;
    sl__arena_init(&scratch);
    sl_err_t r = sl__expr_eval(e, row, &scratch, v);
    cr_assert(r || v->t == sl__expr_type(e) || v->t == SL_T_NULL,
              "%s: value of the declared type", text);
    if (!r && v->t == SL_T_STRING) {
        snprintf(out, size, "%.*s", (int)v->n, v->u.s);
        v->u.s = out;
    }
    sl__arena_fini(&scratch);
    sl__expr_destroy(e);
    return r;
}

/* Evaluates a value expression on the row; strings are copied to @p out. */
static sl_val_t value(const char *text, char *out, size_t size)
{
    sl_val_t v;
    cr_assert_eq(eval_into(text, &v, out, size), SL_OK, "%s", text);
    return v;
}

static int64_t lval(const char *text)
{
    char buf[64];
    sl_val_t v = value(text, buf, sizeof(buf));
    cr_assert_eq(v.t, SL_T_LONG, "%s is a long", text);
    return v.u.i;
}

static double dval(const char *text)
{
    char buf[64];
    sl_val_t v = value(text, buf, sizeof(buf));
    cr_assert_eq(v.t, SL_T_DOUBLE, "%s is a double", text);
    return v.u.d;
}

static void sval(const char *text, const char *want)
{
    char buf[128];
    sl_val_t v = value(text, buf, sizeof(buf));
    cr_assert_eq(v.t, SL_T_STRING, "%s is a string", text);
    cr_assert_str_eq(buf, want, "%s", text);
}

static int is_null(const char *text)
{
    char buf[64];
    return value(text, buf, sizeof(buf)).t == SL_T_NULL;
}

Test(expr, arithmetic_as_spark)
{
    set_row(7, 2.5, "Hello", 1);
    cr_assert_eq(lval("a + 3 * 2"), 13, "precedence");
    cr_assert_eq(lval("(a + 3) * 2"), 20);
    cr_assert_eq(lval("a - -3"), 10);
    cr_assert_eq(lval("-a"), -7);
    cr_assert_eq(lval("a % 3"), 1);
    cr_assert_eq(lval("a-1"), 6, "binary minus without spaces");
    cr_assert_eq(dval("a / 2"), 3.5, "'/' is a fractional division");
    cr_assert_eq(dval("a * b"), 17.5);
    cr_assert(is_null("a / 0"), "division by zero is null");
    cr_assert(is_null("a % 0"));
    cr_assert(is_null("a + null"));
    cr_assert(match("a * 2 > 10 and a / 2 < 4"));
    cr_assert_eq(lval("9223372036854775807 + 0"), INT64_MAX);
    cr_assert_eq(lval("-9223372036854775807 - 1"), INT64_MIN, "the range's ends are reached");
}

/* The error of evaluating @p text on the row. */
static sl_err_t eval_err(const char *text)
{
    sl_val_t v;
    char buf[64];
    return eval_into(text, &v, buf, sizeof(buf));
}

Test(expr, integer_overflow_is_an_error_not_a_wrapped_value)
{
    /* Spark's ANSI mode fails the query with ARITHMETIC_OVERFLOW; a wrapped number would
     * be a wrong result published as a right one. */
    set_row(INT64_MAX, 1.0, "x", 1);
    const char *over[] = {"a + 1", "a * 2", "-a - 2", "0 - a - 2", "abs(-a - 1)", "-(-a - 1)",
                          "a * -2 - a", NULL};
    for (const char **t = over; *t; t++)
        cr_assert_eq(eval_err(*t), SL_ERR_OVERFLOW, "%s on a = INT64_MAX", *t);
    cr_assert_eq(eval_err("a - 1"), SL_OK);
    cr_assert_eq(eval_err("a % -1"), SL_OK, "INT64_MIN %% -1 does not trap");
    cr_assert_eq(eval_err("a * 2.0"), SL_OK, "doubles do not overflow: they reach infinity");
    set_row(INT64_MIN, 1.0, "x", 1);
    cr_assert_eq(eval_err("a % -1"), SL_OK);
    cr_assert_eq(eval_err("abs(a)"), SL_ERR_OVERFLOW);
    sl_expr_t *e;
    char err[256];
    cr_assert_eq(sl__expr_parse("a + a > 0", lookup, NULL, &e, err, sizeof(err)), SL_OK);
    sl_arena_t scratch;
    sl__arena_init(&scratch);
    cr_assert_eq(sl__expr_match(e, row, &scratch), SL_ERR_OVERFLOW, "a filter reports it too");
    sl__arena_fini(&scratch);
    sl__expr_destroy(e);
}

/* @p n copies of @p unit, then @p tail. */
static char *repeat(const char *head, const char *unit, int n, const char *tail)
{
    size_t hl = strlen(head), ul = strlen(unit), tl = strlen(tail);
    char *s = malloc(hl + ul * (size_t)n + tl + 1);
    cr_assert_not_null(s);
    memcpy(s, head, hl);
    char *p = s + hl;
    for (int i = 0; i < n; i++, p += ul)
        memcpy(p, unit, ul);
    memcpy(p, tail, tl + 1);
    return s;
}

Test(expr, deep_expressions_are_refused_not_a_crash)
{
    set_row(1, 1.0, "x", 1);
    /* Each of these took the stack with it: 500 parentheses in the parser, a 50,000-long
     * not chain in the parser, 100,000-term chains in evaluation. */
    struct {
        const char *head, *unit;
        int n;
        const char *tail;
    } deep[] = {
        {"", "(", 500, "a = 1"}, {"", "not ", 50000, "f"}, {"a", " + a", 100000, " > 0"},
        {"", "-", 1000, "a = 1"}, {"", "length(lower(", 300, "s"},
        {"f", " and (f", 300, ""}, /* and-chains nesting inside one another */
    };
    for (size_t i = 0; i < SL_ARRAY_LEN(deep); i++) {
        char *text = repeat(deep[i].head, deep[i].unit, deep[i].n, deep[i].tail);
        if (strchr(deep[i].unit, '(')) { /* close them */
            char *closed = repeat(text, ")", deep[i].n, "");
            free(text);
            text = closed;
        }
        expect_error(text, "nests more than 256 levels deep");
        free(text);
    }
    /* Depth within the limit parses and evaluates. */
    char *text = repeat("", "(", 100, "a = 1");
    char *closed = repeat(text, ")", 100, "");
    cr_assert(match(closed));
    free(text);
    free(closed);
    text = repeat("a", " + a", 200, " = 201");
    cr_assert(match(text));
    free(text);
}

Test(expr, long_chains_of_and_and_or_are_one_level)
{
    /* A query testing many alternatives is a list, not a tree as deep as it is long. */
    set_row(1, 1.0, "x", 1);
    char *text = repeat("f", " and f", 100000, "");
    cr_assert(match(text));
    free(text);
    text = repeat("a = 0", " or a = 0", 5000, " or a = 1");
    cr_assert(match(text), "the last alternative");
    free(text);
    text = repeat("a = 1", " and a = 1", 5000, " and a = 2");
    cr_assert(!match(text), "the last conjunct");
    free(text);
    /* Three-valued logic over a chain: a false (and) or a true (or) decides whatever
     * comes before it; otherwise an unknown operand makes the chain unknown. */
    set_row(1, 1.0, NULL, 1);
    cr_assert(!match("s = 'x' and f and a = 2"));
    cr_assert(!match("s = 'x' and f and a = 1"), "unknown, not true");
    cr_assert(!match("not (s = 'x' and f and a = 1)"), "not unknown is unknown");
    cr_assert(match("not (s = 'x' and f and a = 2)"), "false, so not false is true");
    cr_assert(match("s = 'x' or a = 2 or f"));
    cr_assert(!match("s = 'x' or a = 2 or not f"), "unknown");
    cr_assert(match("s = 'x' or a = 1 and f"), "and binds tighter than or");
    cr_assert(!match("(s = 'x' or a = 1) and not f"));
    expect_error("f and a", "a long is not a condition");
    expect_error("f or f and s", "a string is not a condition");
}

Test(expr, string_functions)
{
    set_row(2, 0, "Hello, wörld", 1);
    cr_assert_eq(lval("length(s)"), 12, "characters, not bytes");
    sval("lower(s)", "hello, wörld");
    sval("upper(s)", "HELLO, WöRLD");
    sval("substring(s, 1, 5)", "Hello");
    sval("substring(s, 8)", "wörld");
    sval("substring(s, -5, 3)", "wör");
    sval("substring(s, 0, 2)", "He"); /* position 0 counts as 1 */
    sval("substring(s, 100)", "");
    /* Positions and lengths at the ends of the long range (the fuzzer found the sum of
     * these overflowing): Spark reads a length past the end as "to the end". */
    sval("substring(s, 9223372036854775807, 2)", "");
    sval("substring(s, 8, 9223372036854775807)", "wörld");
    sval("substring(s, -3, 9223372036854775807)", "rld");
    sval("substring(s, -9223372036854775807, 9223372036854775807)", "Hello, wörld");
    sval("substring(s, -14, 4)", "He"); /* starts before the string: Spark's 'He' */
    sval("substr(s, a, a)", "el");
    sval("concat(s, '!', 'x')", "Hello, wörld!x");
    sval("coalesce(null, s)", "Hello, wörld");
    cr_assert_eq(lval("abs(-4)"), 4);
    cr_assert_eq(lval("length(lower(s)) + 1"), 13, "nested calls");
    set_row(2, 0, NULL, 1);
    cr_assert(is_null("length(s)"));
    cr_assert(is_null("concat(s, 'x')"), "concat of a null is null, as Spark's");
    cr_assert_eq(lval("coalesce(length(s), -1)"), -1);
}

Test(expr, timestamps)
{
    set_row(1732525200000LL, 0, "2024-11-25T09:00:00Z", 1);
    char buf[64];
    sl_val_t v = value("timestamp_millis(a)", buf, sizeof(buf));
    cr_assert(v.t == SL_T_TIMESTAMP && v.u.i == 1732525200000LL);
    cr_assert(match("timestamp_millis(a) = '2024-11-25 09:00:00'"),
              "a string compared with a timestamp is read as a date-time");
    cr_assert(match("timestamp_millis(a) < '2024-11-25T09:00:01.5+00:00'"));
    cr_assert_eq(lval("unix_millis(timestamp_millis(a)) - a"), 0);
    int64_t ms;
    cr_assert_eq(sl__ts_parse("1969-12-31T23:59:59.999Z", 24, &ms), 0);
    cr_assert_eq(ms, -1);
    cr_assert_eq(sl__ts_parse("2024-02-30", 10, &ms), -1, "no day past the month's end (Spark: null)");
    cr_assert_eq(sl__ts_parse("2024-13-01", 10, &ms), -1);
    cr_assert_eq(sl__ts_parse("yesterday", 9, &ms), -1);
    sl__ts_format(-1, 1, buf, sizeof(buf));
    cr_assert_str_eq(buf, "1969-12-31T23:59:59.999Z");
    sl__ts_format(1732525200000LL, 0, buf, sizeof(buf));
    cr_assert_str_eq(buf, "2024-11-25 09:00:00");
}

Test(expr, value_errors)
{
    expect_error("s + 1", "at column 3: '+' needs numbers, not string and long");
    expect_error("length(a)", "argument 1 of length must be a string, not a long");
    expect_error("length(s, s)", "length takes 1 argument(s)");
    expect_error("lenght(s) = 1", "unknown function 'lenght' (known: length,");
    expect_error("substring(s) = 'x'", "substring takes 2 to 3 arguments");
    expect_error("timestamp_millis(a) > 'soon'", "'soon' is not a date-time");
    expect_error("a + 1", "a long is not a condition");
    expect_error("not a", "a long is not a condition");
    expect_error("f and a", "at column 7: a long is not a condition");
}
