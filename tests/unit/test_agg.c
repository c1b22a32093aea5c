/*
 * test_agg.c - aggregate functions: folding, merging partial results (what a batch does
 * to the stored state), results, and the state encoding.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "agg.h"

static sl_agg_spec_t spec(sl_agg_fn_t fn, sl_type_t in, int slot)
{
    return (sl_agg_spec_t){.fn = fn, .slot = slot, .in_type = in, .as = "x"};
}

static sl_val_t L(int64_t v)
{
    return (sl_val_t){.t = SL_T_LONG, .u.i = v};
}

Test(agg, merge_of_parts_equals_the_whole)
{
    /* For every split point, folding [0,k) and [k,n) and merging gives what folding
     * [0,n) gives: results do not depend on batch boundaries. */
    int64_t vals[50];
    for (int i = 0; i < 50; i++)
        vals[i] = (i * 7919) % 1000 - 300;
    sl_agg_fn_t fns[] = {SL_AGG_COUNT, SL_AGG_SUM, SL_AGG_MIN, SL_AGG_MAX, SL_AGG_AVG};
    sl_arena_t arena;
    sl__arena_init(&arena);
    for (size_t f = 0; f < 5; f++) {
        sl_agg_spec_t s = spec(fns[f], SL_T_LONG, 0);
        sl_acc_t whole = {0};
        for (int i = 0; i < 50; i++) {
            sl_val_t v = L(vals[i]);
            sl__acc_update(&s, &whole, &v, &arena);
        }
        sl_val_t want;
        sl__acc_result(&s, &whole, &want);
        for (int k = 0; k <= 50; k++) {
            sl_acc_t a = {0}, b = {0};
            for (int i = 0; i < 50; i++) {
                sl_val_t v = L(vals[i]);
                sl__acc_update(&s, i < k ? &a : &b, &v, &arena);
            }
            sl__acc_merge(&s, &a, &b, &arena);
            sl_val_t got;
            sl__acc_result(&s, &a, &got);
            cr_assert_eq(got.t, want.t);
            if (got.t == SL_T_DOUBLE)
                cr_assert_eq(got.u.d, want.u.d, "%s split at %d", sl__agg_fn_name(fns[f]), k);
            else
                cr_assert_eq(got.u.i, want.u.i, "%s split at %d", sl__agg_fn_name(fns[f]), k);
        }
    }
    sl__arena_fini(&arena);
}

Test(agg, results)
{
    sl_arena_t arena;
    sl__arena_init(&arena);
    int64_t in[] = {4, -2, 10};
    sl_agg_spec_t sum = spec(SL_AGG_SUM, SL_T_LONG, 0), avg = spec(SL_AGG_AVG, SL_T_LONG, 0),
                  mn = spec(SL_AGG_MIN, SL_T_LONG, 0), mx = spec(SL_AGG_MAX, SL_T_LONG, 0),
                  cnt = spec(SL_AGG_COUNT, SL_T_LONG, -1);
    sl_acc_t a[5] = {0};
    for (int i = 0; i < 3; i++) {
        sl_val_t v = L(in[i]);
        sl__acc_update(&sum, &a[0], &v, &arena);
        sl__acc_update(&avg, &a[1], &v, &arena);
        sl__acc_update(&mn, &a[2], &v, &arena);
        sl__acc_update(&mx, &a[3], &v, &arena);
        sl__acc_update(&cnt, &a[4], NULL, &arena);
    }
    sl_val_t null = {.t = SL_T_NULL};
    sl__acc_update(&sum, &a[0], &null, &arena); /* nulls are skipped */
    sl_val_t r;
    sl__acc_result(&sum, &a[0], &r);
    cr_assert(r.t == SL_T_LONG && r.u.i == 12);
    sl__acc_result(&avg, &a[1], &r);
    cr_assert(r.t == SL_T_DOUBLE && r.u.d == 4.0);
    sl__acc_result(&mn, &a[2], &r);
    cr_assert_eq(r.u.i, -2);
    sl__acc_result(&mx, &a[3], &r);
    cr_assert_eq(r.u.i, 10);
    sl__acc_result(&cnt, &a[4], &r);
    cr_assert_eq(r.u.i, 3);
    sl_acc_t empty = {0};
    sl__acc_result(&sum, &empty, &r);
    cr_assert_eq(r.t, SL_T_NULL, "sum of nothing is null, as in SQL");
    sl__acc_result(&cnt, &empty, &r);
    cr_assert(r.t == SL_T_LONG && r.u.i == 0, "count of nothing is 0");
    sl__arena_fini(&arena);
}

Test(agg, string_min_max_outlive_their_input)
{
    sl_arena_t arena;
    sl__arena_init(&arena);
    sl_agg_spec_t mn = spec(SL_AGG_MIN, SL_T_STRING, 0);
    sl_acc_t a = {0};
    char buf[8];
    const char *words[] = {"pear", "apple", "zoo"};
    for (int i = 0; i < 3; i++) {
        strcpy(buf, words[i]);
        sl_val_t v = {.t = SL_T_STRING, .n = (uint32_t)strlen(buf), .u.s = buf};
        sl__acc_update(&mn, &a, &v, &arena);
    }
    strcpy(buf, "XXXXXXX"); /* the record's memory is reused */
    cr_assert(a.v.n == 5 && !memcmp(a.v.u.s, "apple", 5));
    sl__arena_fini(&arena);
}

Test(agg, encoding_round_trip_and_corruption)
{
    sl_agg_spec_t specs[] = {spec(SL_AGG_COUNT, SL_T_LONG, -1), spec(SL_AGG_SUM, SL_T_DOUBLE, 0),
                             spec(SL_AGG_MAX, SL_T_STRING, 1), spec(SL_AGG_MIN, SL_T_LONG, 2),
                             spec(SL_AGG_AVG, SL_T_LONG, 2)};
    sl_acc_t in[5] = {{.n = 3}, {.n = 2, .sum.d = 1.5}, {.n = 2, .v = {.t = SL_T_STRING, .n = 3, .u.s = "abc"}},
                      {.n = 0}, {.n = 4, .sum.i = -40}};
    sl_buf_t b;
    sl__buf_init(&b);
    cr_assert_eq(sl__accs_encode(specs, 5, in, &b), SL_OK);
    sl_acc_t out[5];
    cr_assert_eq(sl__accs_decode(specs, 5, b.p, b.len, out), SL_OK);
    cr_assert_eq(out[0].n, 3);
    cr_assert_eq(out[1].sum.d, 1.5);
    cr_assert(out[2].v.n == 3 && !memcmp(out[2].v.u.s, "abc", 3));
    cr_assert_eq(out[3].n, 0);
    cr_assert(out[4].n == 4 && out[4].sum.i == -40);
    for (size_t len = 0; len < b.len; len++)
        cr_assert_eq(sl__accs_decode(specs, 5, b.p, len, out), SL_ERR_STATE, "cut at %zu", len);
    b.p[0] = 99;
    cr_assert_eq(sl__accs_decode(specs, 5, b.p, b.len, out), SL_ERR_STATE, "unknown version");
    sl__buf_fini(&b);
}
