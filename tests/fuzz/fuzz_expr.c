/*
 * fuzz_expr.c - libFuzzer target: the expression parser and evaluator.
 *
 * The input is an expression's text. It is parsed as a condition and as a value against
 * fields of every type; what parses is evaluated on rows of ordinary values, of nulls,
 * and of each type's extremes (the longest string, the largest longs, NaN and infinities),
 * as a filter and a derived field are per record.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "query/expr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct {
    const char *name;
    sl_type_t type;
} fields[] = {{"a", SL_T_LONG},   {"b", SL_T_DOUBLE},    {"s", SL_T_STRING},
              {"f", SL_T_BOOL},   {"t", SL_T_TIMESTAMP}, {"geo.country", SL_T_STRING}};
#define NF (sizeof(fields) / sizeof(fields[0]))

static int lookup(void *opaque, const char *name, size_t len, sl_type_t *type)
{
    (void)opaque;
    for (size_t i = 0; i < NF; i++) {
        if (strlen(fields[i].name) == len && !memcmp(fields[i].name, name, len)) {
            *type = fields[i].type;
            return (int)i;
        }
    }
    return -1;
}

static void rows(sl_val_t r[][NF], int *n)
{
    static const char big[] = "h\xc3\xa9llo, w\xc3\xb6rld \xf0\x9f\x8c\x8d and more text";
    int k = 0;
    sl_val_t ordinary[NF] = {{.t = SL_T_LONG, .u.i = 42},
                             {.t = SL_T_DOUBLE, .u.d = 2.5},
                             {.t = SL_T_STRING, .n = sizeof(big) - 1, .u.s = big},
                             {.t = SL_T_BOOL, .u.i = 1},
                             {.t = SL_T_TIMESTAMP, .u.i = 1764000000000LL},
                             {.t = SL_T_STRING, .n = 2, .u.s = "nl"}};
    memcpy(r[k++], ordinary, sizeof(ordinary));
    memset(r[k++], 0, sizeof(ordinary)); /* all null */
    sl_val_t edge[NF] = {{.t = SL_T_LONG, .u.i = INT64_MIN},
                         {.t = SL_T_DOUBLE, .u.d = NAN},
                         {.t = SL_T_STRING, .n = 0, .u.s = ""},
                         {.t = SL_T_BOOL, .u.i = 0},
                         {.t = SL_T_TIMESTAMP, .u.i = INT64_MAX},
                         {.t = SL_T_STRING, .n = 1, .u.s = "\xff"}};
    memcpy(r[k++], edge, sizeof(edge));
    edge[0].u.i = INT64_MAX;
    edge[1].u.d = -INFINITY;
    edge[4].u.i = INT64_MIN;
    memcpy(r[k++], edge, sizeof(edge));
    *n = k;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_text(data, size);
    if (!text)
        return 0;
    sl_val_t r[4][NF];
    int nr;
    rows(r, &nr);
    sl_arena_t scratch;
    sl__arena_init(&scratch);
    for (int condition = 0; condition < 2; condition++) {
        sl_expr_t *e = NULL;
        char err[512] = "";
        sl_err_t rc = condition ? sl__expr_parse(text, lookup, NULL, &e, err, sizeof(err))
                                : sl__expr_parse_value(text, lookup, NULL, &e, err, sizeof(err));
        if (rc != SL_OK) {
            if (e || !err[0])
                abort(); /* a refusal says why and yields no expression */
            continue;
        }
        for (int i = 0; i < nr; i++) {
            sl_val_t out;
            sl__arena_reset(&scratch);
            if (condition)
                sl__expr_match(e, r[i], &scratch);
            else if (sl__expr_eval(e, r[i], &scratch, &out) == SL_OK && out.t != SL_T_NULL &&
                     out.t != sl__expr_type(e))
                abort(); /* a value of another type than the parser promised */
        }
        sl__expr_destroy(e);
    }
    sl__arena_fini(&scratch);
    free(text);
    return 0;
}
