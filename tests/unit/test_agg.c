/*
 * test_agg.c - aggregate functions: folding, merging partial results (what a batch does
 * to the stored state), results, and the state encoding.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "query/agg.h"
#include "sluice/sluice.h"

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
            sl__acc_update(&s, &whole, &v, NULL, &arena);
        }
        sl_val_t want;
        sl__acc_result(&s, &whole, &want);
        for (int k = 0; k <= 50; k++) {
            sl_acc_t a = {0}, b = {0};
            for (int i = 0; i < 50; i++) {
                sl_val_t v = L(vals[i]);
                sl__acc_update(&s, i < k ? &a : &b, &v, NULL, &arena);
            }
            /* Both ways: the later part into the earlier, and the earlier into the later. */
            sl_acc_t a2 = a, b2 = b;
            sl__acc_merge(&s, &a, &b, &arena);
            sl__acc_merge_older(&s, &b2, &a2, &arena);
            for (int way = 0; way < 2; way++) {
                sl_val_t got;
                sl__acc_result(&s, way ? &b2 : &a, &got);
                cr_assert_eq(got.t, want.t);
                if (got.t == SL_T_DOUBLE)
                    cr_assert_eq(got.u.d, want.u.d, "%s split at %d (%s)", sl__agg_fn_name(fns[f]),
                                 k, way ? "older into later" : "later into older");
                else
                    cr_assert_eq(got.u.i, want.u.i, "%s split at %d (%s)", sl__agg_fn_name(fns[f]),
                                 k, way ? "older into later" : "later into older");
            }
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
        sl__acc_update(&sum, &a[0], &v, NULL, &arena);
        sl__acc_update(&avg, &a[1], &v, NULL, &arena);
        sl__acc_update(&mn, &a[2], &v, NULL, &arena);
        sl__acc_update(&mx, &a[3], &v, NULL, &arena);
        sl__acc_update(&cnt, &a[4], NULL, NULL, &arena);
    }
    sl_val_t null = {.t = SL_T_NULL};
    sl__acc_update(&sum, &a[0], &null, NULL, &arena); /* nulls are skipped */
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
        snprintf(buf, sizeof(buf), "%s", words[i]);
        sl_val_t v = {.t = SL_T_STRING, .n = (uint32_t)strlen(buf), .u.s = buf};
        sl__acc_update(&mn, &a, &v, NULL, &arena);
    }
    snprintf(buf, sizeof(buf), "XXXXXXX"); /* the record's memory is reused */
    cr_assert(a.v.n == 5 && !memcmp(a.v.u.s, "apple", 5));
    sl__arena_fini(&arena);
}

Test(agg, encoding_round_trip_and_corruption)
{
    sl_agg_spec_t specs[] = {spec(SL_AGG_COUNT, SL_T_LONG, -1), spec(SL_AGG_SUM, SL_T_DOUBLE, 0),
                             spec(SL_AGG_MAX, SL_T_STRING, 1), spec(SL_AGG_MIN, SL_T_LONG, 2),
                             spec(SL_AGG_AVG, SL_T_LONG, 2)};
    sl_acc_t in[5] = {{.n = 3},
                      {.n = 2, .sum.d = 1.5},
                      {.n = 2, .v = {.t = SL_T_STRING, .n = 3, .u.s = "abc"}},
                      {.n = 0},
                      {.n = 4, .sum.i = -40}};
    sl_buf_t b;
    sl__buf_init(&b);
    sl_arena_t arena;
    sl__arena_init(&arena);
    cr_assert_eq(sl__accs_encode(specs, 5, in, &b), SL_OK);
    sl_acc_t out[5];
    cr_assert_eq(sl__accs_decode(specs, 5, b.p, b.len, out, &arena), SL_OK);
    cr_assert_eq(out[0].n, 3);
    cr_assert_eq(out[1].sum.d, 1.5);
    cr_assert(out[2].v.n == 3 && !memcmp(out[2].v.u.s, "abc", 3));
    cr_assert_eq(out[3].n, 0);
    cr_assert(out[4].n == 4 && out[4].sum.i == -40);
    for (size_t len = 0; len < b.len; len++)
        cr_assert_eq(sl__accs_decode(specs, 5, b.p, len, out, &arena), SL_ERR_STATE, "cut at %zu",
                     len);
    b.p[0] = 99;
    cr_assert_eq(sl__accs_decode(specs, 5, b.p, b.len, out, &arena), SL_ERR_STATE,
                 "unknown version");
    sl__buf_fini(&b);
    sl__arena_fini(&arena);
}

static sl_val_t S(const char *s)
{
    return (sl_val_t){.t = SL_T_STRING, .n = (uint32_t)strlen(s), .u.s = s};
}

static sl_val_t T(int64_t ms)
{
    return (sl_val_t){.t = SL_T_TIMESTAMP, .u.i = ms};
}

static int64_t result_long(const sl_agg_spec_t *s, const sl_acc_t *a)
{
    sl_val_t r;
    sl__acc_result(s, a, &r);
    cr_assert_eq(r.t, SL_T_LONG);
    return r.u.i;
}

/* Round trip through the state encoding, as a batch boundary does. */
static sl_acc_t reload(const sl_agg_spec_t *s, const sl_acc_t *a, sl_buf_t *b, sl_arena_t *arena)
{
    sl_acc_t out;
    sl__buf_reset(b);
    cr_assert_eq(sl__accs_encode(s, 1, a, b), SL_OK);
    cr_assert_eq(sl__accs_decode(s, 1, b->p, b->len, &out, arena), SL_OK);
    return out;
}

Test(agg, count_of_a_field_skips_nulls)
{
    sl_arena_t arena;
    sl__arena_init(&arena);
    sl_agg_spec_t cnt = spec(SL_AGG_COUNT, SL_T_STRING, 0);
    sl_acc_t a = {0};
    sl_val_t null = {.t = SL_T_NULL}, x = S("x");
    sl__acc_update(&cnt, &a, &x, NULL, &arena);
    sl__acc_update(&cnt, &a, &null, NULL, &arena);
    sl__acc_update(&cnt, &a, &x, NULL, &arena);
    cr_assert_eq(result_long(&cnt, &a), 2);
    sl__arena_fini(&arena);
}

Test(agg, count_distinct_is_exact_across_batches)
{
    sl_arena_t arena;
    sl__arena_init(&arena);
    sl_buf_t b;
    sl__buf_init(&b);
    sl_agg_spec_t s = spec(SL_AGG_COUNT_DISTINCT, SL_T_STRING, 0);
    /* 5,000 values, 1,000 distinct, folded in 10 batches that each merge into the
     * state read back from its encoding. */
    sl_acc_t state = {0};
    char buf[32];
    sl_buf_t b2;
    sl__buf_init(&b2);
    for (int batch = 0; batch < 10; batch++) {
        sl_acc_t delta = {0};
        for (int i = 0; i < 500; i++) {
            snprintf(buf, sizeof(buf), "user-%d", (batch * 500 + i) * 7 % 1000);
            sl_val_t v = S(buf);
            cr_assert_eq(sl__acc_update(&s, &delta, &v, NULL, &arena), SL_OK);
        }
        /* A decoded set points into its state value, which lives until the merge is
         * written: two buffers stand for the old and the new value. */
        sl_acc_t stored = reload(&s, &state, batch % 2 ? &b : &b2, &arena);
        cr_assert_eq(sl__acc_merge(&s, &stored, &delta, &arena), SL_OK);
        state = stored;
    }
    sl__buf_fini(&b2);
    cr_assert_eq(result_long(&s, &state), 1000);
    /* Types are part of the value: 1 and 1.0 are two values, as in Spark. */
    sl_agg_spec_t n = spec(SL_AGG_COUNT_DISTINCT, SL_T_LONG, 0);
    sl_acc_t a = {0};
    sl_val_t one = L(1), oned = {.t = SL_T_DOUBLE, .u.d = 1.0}, two = L(2);
    sl__acc_update(&n, &a, &one, NULL, &arena);
    sl__acc_update(&n, &a, &two, NULL, &arena);
    sl__acc_update(&n, &a, &one, NULL, &arena);
    sl__acc_update(&n, &a, &oned, NULL, &arena);
    cr_assert_eq(result_long(&n, &a), 3);
    sl_acc_t empty = {0};
    cr_assert_eq(result_long(&n, &empty), 0);
    sl__buf_fini(&b);
    sl__arena_fini(&arena);
}

Test(agg, approx_count_distinct_within_its_error)
{
    sl_arena_t arena;
    sl__arena_init(&arena);
    sl_buf_t b;
    sl__buf_init(&b);
    sl_agg_spec_t s = spec(SL_AGG_APPROX_COUNT_DISTINCT, SL_T_LONG, 0);
    s.hll_p = sl__hll_p_for_rsd(0.05);
    cr_assert_eq(s.hll_p, 9, "Spark's register count for rsd 0.05");
    int64_t sizes[] = {10, 1000, 100000};
    for (size_t k = 0; k < 3; k++) {
        sl_acc_t a = {0}, half = {0};
        for (int64_t i = 0; i < sizes[k]; i++) {
            sl_val_t v = L(i * 2654435761LL);
            sl__acc_update(&s, i % 2 ? &a : &half, &v, NULL, &arena);
            sl__acc_update(&s, i % 2 ? &a : &half, &v, NULL, &arena); /* twice: no change */
        }
        sl_acc_t stored = reload(&s, &half, &b, &arena);
        sl__acc_merge(&s, &stored, &a, &arena);
        double est = (double)result_long(&s, &stored), want = (double)sizes[k];
        /* 3 standard deviations of 0.05 (p = 9 gives 1.04/sqrt(512) = 0.046). */
        cr_assert(est > want * 0.85 && est < want * 1.15, "%lld distinct: estimated %.0f",
                  (long long)sizes[k], est);
    }
    sl__buf_fini(&b);
    sl__arena_fini(&arena);
}

Test(agg, first_and_last_by_event_time)
{
    sl_arena_t arena;
    sl__arena_init(&arena);
    sl_buf_t b;
    sl__buf_init(&b);
    sl_agg_spec_t first = spec(SL_AGG_FIRST, SL_T_STRING, 0),
                  last = spec(SL_AGG_LAST, SL_T_STRING, 0);
    first.time_slot = last.time_slot = 1;
    /* Arrival order differs from event-time order. */
    struct {
        const char *v;
        int64_t t;
    } in[] = {{"b", 20}, {"a", 10}, {"d", 40}, {"c", 30}, {"late-tie", 40}, {"early-tie", 10}};
    sl_acc_t f1 = {0}, l1 = {0}, f2 = {0}, l2 = {0};
    for (int i = 0; i < 6; i++) {
        char buf[16];
        snprintf(buf, sizeof(buf), "%s", in[i].v);
        sl_val_t v = S(buf), t = T(in[i].t);
        sl__acc_update(&first, i < 3 ? &f1 : &f2, &v, &t, &arena);
        sl__acc_update(&last, i < 3 ? &l1 : &l2, &v, &t, &arena);
        memset(buf, 'X', sizeof(buf) - 1); /* the record's memory is reused */
    }
    sl_val_t null_t = {.t = SL_T_NULL}, z = S("z");
    sl__acc_update(&last, &l2, &z, &null_t, &arena); /* no event time: not ordered, skipped */
    sl_acc_t fs = reload(&first, &f1, &b, &arena);
    sl__acc_merge(&first, &fs, &f2, &arena);
    sl_buf_t b2; /* fs points into b */
    sl__buf_init(&b2);
    sl_acc_t ls = reload(&last, &l1, &b2, &arena);
    sl__acc_merge(&last, &ls, &l2, &arena);
    sl_val_t r;
    sl__acc_result(&first, &fs, &r);
    cr_assert(r.t == SL_T_STRING && r.n == 1 && r.u.s[0] == 'a', "first: %.*s", (int)r.n, r.u.s);
    sl__acc_result(&last, &ls, &r);
    cr_assert(r.t == SL_T_STRING && r.n == 8 && !memcmp(r.u.s, "late-tie", 8),
              "last takes the later arrival on a tie: %.*s", (int)r.n, r.u.s);
    /* The stored part folded into the batch's gives the same, ties included. */
    sl_buf_t b3, b4;
    sl__buf_init(&b3);
    sl__buf_init(&b4);
    sl_acc_t fo = reload(&first, &f1, &b3, &arena), lo = reload(&last, &l1, &b4, &arena);
    sl_acc_t f2c = f2, l2c = l2;
    cr_assert_eq(sl__acc_merge_older(&first, &f2c, &fo, &arena), SL_OK);
    cr_assert_eq(sl__acc_merge_older(&last, &l2c, &lo, &arena), SL_OK);
    sl__acc_result(&first, &f2c, &r);
    cr_assert(r.t == SL_T_STRING && r.n == 1 && r.u.s[0] == 'a',
              "first, older folded into later: %.*s", (int)r.n, r.u.s);
    sl__acc_result(&last, &l2c, &r);
    cr_assert(r.t == SL_T_STRING && r.n == 8 && !memcmp(r.u.s, "late-tie", 8),
              "last, older folded into later: %.*s", (int)r.n, r.u.s);
    cr_assert_eq(f2c.n, fs.n);
    cr_assert_eq(l2c.n, ls.n);
    sl__buf_fini(&b3);
    sl__buf_fini(&b4);
    sl_acc_t empty = {0};
    sl__acc_result(&first, &empty, &r);
    cr_assert_eq(r.t, SL_T_NULL);
    sl__buf_fini(&b);
    sl__buf_fini(&b2);
    sl__arena_fini(&arena);
}

Test(agg, corrupt_sets_and_registers_are_refused)
{
    sl_arena_t arena;
    sl__arena_init(&arena);
    sl_agg_spec_t specs[] = {spec(SL_AGG_COUNT_DISTINCT, SL_T_LONG, 0),
                             spec(SL_AGG_APPROX_COUNT_DISTINCT, SL_T_LONG, 0),
                             spec(SL_AGG_LAST, SL_T_LONG, 0)};
    specs[1].hll_p = 4;
    specs[2].time_slot = 1;
    sl_acc_t in[3] = {{0}};
    for (int64_t i = 0; i < 20; i++) {
        sl_val_t v = L(i), t = T(i);
        for (int k = 0; k < 3; k++)
            sl__acc_update(&specs[k], &in[k], &v, &t, &arena);
    }
    sl_buf_t b;
    sl__buf_init(&b);
    cr_assert_eq(sl__accs_encode(specs, 3, in, &b), SL_OK);
    sl_acc_t out[3];
    cr_assert_eq(sl__accs_decode(specs, 3, b.p, b.len, out, &arena), SL_OK);
    cr_assert_eq(result_long(&specs[0], &out[0]), 20);
    for (size_t len = 0; len < b.len; len++)
        cr_assert_eq(sl__accs_decode(specs, 3, b.p, len, out, &arena), SL_ERR_STATE, "cut at %zu",
                     len);
    sl__buf_fini(&b);
    sl__arena_fini(&arena);
}

/* Folds vals[0, k) and vals[k, n) apart, through the state encoding, and merges them. */
static sl_acc_t fold_split(const sl_agg_spec_t *s, const sl_val_t *vals, int n, int k,
                           sl_arena_t *arena)
{
    sl_acc_t a = {0}, b = {0};
    for (int i = 0; i < n; i++)
        cr_assert_eq(sl__acc_update(s, i < k ? &a : &b, &vals[i], NULL, arena), SL_OK);
    sl_buf_t buf;
    sl__buf_init(&buf);
    sl_acc_t old = reload(s, &a, &buf, arena);
    sl__buf_fini(&buf);
    cr_assert_eq(sl__acc_merge_older(s, &b, &old, arena), SL_OK);
    return b;
}

Test(agg, integer_sums_are_exact_and_never_wrap)
{
    sl_arena_t arena;
    sl__arena_init(&arena);
    sl_agg_spec_t sum = spec(SL_AGG_SUM, SL_T_LONG, 0), avg = spec(SL_AGG_AVG, SL_T_LONG, 0);
    /* MAX + 1 wrapped to MIN: a wrong sum published as a right one. */
    sl_val_t over[] = {L(INT64_MAX), L(1)};
    for (int k = 0; k <= 2; k++) {
        sl_acc_t a = fold_split(&sum, over, 2, k, &arena);
        sl_val_t r;
        cr_assert_eq(sl__acc_result(&sum, &a, &r), SL_ERR_OVERFLOW, "split at %d", k);
        cr_assert_eq(r.t, SL_T_NULL);
        char text[48];
        sl__acc_sum_format(&a, text);
        cr_assert_str_eq(text, "9223372036854775808");
    }
    /* A sum that leaves a long's range and comes back is exact, in any order and split:
     * the result does not depend on batch boundaries. */
    sl_val_t back[] = {L(INT64_MAX), L(INT64_MAX), L(-INT64_MAX), L(3), L(INT64_MIN),
                       L(INT64_MIN), L(INT64_MAX)};
    for (int k = 0; k <= 7; k++) {
        sl_acc_t a = fold_split(&sum, back, 7, k, &arena);
        cr_assert_eq(result_long(&sum, &a), 1, "split at %d", k); /* 2 MAX + 2 MIN + 3 */
    }
    sl_val_t three[] = {L(INT64_MAX), L(INT64_MAX), L(INT64_MAX)};
    sl_acc_t big = fold_split(&sum, three, 3, 1, &arena);
    char digits[48];
    sl__acc_sum_format(&big, digits);
    cr_assert_str_eq(digits, "27670116110564327421", "beyond 10^19: both halves written");
    sl_val_t low[] = {L(INT64_MIN), L(-1)};
    sl_acc_t a = fold_split(&sum, low, 2, 1, &arena);
    char text[48];
    sl__acc_sum_format(&a, text);
    cr_assert_str_eq(text, "-9223372036854775809");
    sl_val_t r;
    cr_assert_eq(sl__acc_result(&sum, &a, &r), SL_ERR_OVERFLOW);
    /* avg(MAX, MAX) was -1.0 (the sum wrapped); it is the exact mean, rounded once. */
    sl_val_t two[] = {L(INT64_MAX), L(INT64_MAX)};
    a = fold_split(&avg, two, 2, 1, &arena);
    cr_assert_eq(sl__acc_result(&avg, &a, &r), SL_OK);
    cr_assert_eq(r.u.d, 9223372036854775807.0);
    sl_val_t mixed[] = {L(INT64_MIN), L(INT64_MIN), L(INT64_MIN), L(3)};
    a = fold_split(&avg, mixed, 4, 2, &arena);
    cr_assert_eq(sl__acc_result(&avg, &a, &r), SL_OK);
    cr_assert_eq(r.u.d, (3.0 * -9223372036854775808.0 + 3) / 4);
    sl__arena_fini(&arena);
}

Test(agg, state_of_the_first_format_is_read_and_upgraded)
{
    /* Version 1 kept an integer sum in its 8 low bytes; it reads as that long. */
    sl_agg_spec_t specs[] = {spec(SL_AGG_SUM, SL_T_LONG, 0), spec(SL_AGG_AVG, SL_T_DOUBLE, 1)};
    uint8_t v1[] = {1, 4, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xd8, /* n 2, sum -40 */
                    2, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0 /* n 1, 1.5 */};
    sl_acc_t out[2];
    sl_arena_t arena;
    sl__arena_init(&arena);
    cr_assert_eq(sl__accs_decode(specs, 2, v1, sizeof(v1), out, &arena), SL_OK);
    cr_assert(out[0].n == 2 && out[0].sum.i == -40 && out[0].hi == -1);
    cr_assert(out[1].n == 1 && out[1].sum.d == 1.5);
    sl_buf_t b;
    sl__buf_init(&b);
    cr_assert_eq(sl__accs_encode(specs, 2, out, &b), SL_OK);
    cr_assert_eq(b.p[0], 2, "written back in the current format");
    sl_acc_t again[2];
    cr_assert_eq(sl__accs_decode(specs, 2, b.p, b.len, again, &arena), SL_OK);
    cr_assert(again[0].sum.i == -40 && again[0].hi == -1 && again[1].sum.d == 1.5);
    sl__buf_fini(&b);
    sl__arena_fini(&arena);
}

static sl_val_t D(double d)
{
    return (sl_val_t){.t = SL_T_DOUBLE, .u.d = d};
}

/* Every order of @p n values (n <= 4) and every split of it: min and max give @p mn, @p mx
 * (bits compared, so -0.0 is not 0.0, NaN is any NaN). */
static void min_max_everywhere(const double *in, int n, double mn, double mx)
{
    sl_arena_t arena;
    sl__arena_init(&arena);
    sl_agg_spec_t smin = spec(SL_AGG_MIN, SL_T_DOUBLE, 0), smax = spec(SL_AGG_MAX, SL_T_DOUBLE, 0);
    int perm[4] = {0, 1, 2, 3};
    int count = 1;
    for (int i = 2; i <= n; i++)
        count *= i;
    for (int p = 0; p < count; p++) {
        /* The p-th permutation, by its factorial digits. */
        int avail[4] = {0, 1, 2, 3}, left = n, q = p;
        for (int i = 0; i < n; i++) {
            int f = 1;
            for (int j = 2; j < n - i; j++)
                f *= j;
            int d = q / f;
            q %= f;
            perm[i] = avail[d];
            for (int j = d; j < left - 1; j++)
                avail[j] = avail[j + 1];
            left--;
        }
        sl_val_t vals[4];
        for (int i = 0; i < n; i++)
            vals[i] = D(in[perm[i]]);
        for (int k = 0; k <= n; k++) {
            sl_acc_t a = fold_split(&smin, vals, n, k, &arena);
            sl_acc_t b = fold_split(&smax, vals, n, k, &arena);
            sl_val_t r1, r2;
            sl__acc_result(&smin, &a, &r1);
            sl__acc_result(&smax, &b, &r2);
            cr_assert(isnan(mn) ? isnan(r1.u.d) : !memcmp(&r1.u.d, &mn, 8),
                      "min: permutation %d split %d gave %g", p, k, r1.u.d);
            cr_assert(isnan(mx) ? isnan(r2.u.d) : !memcmp(&r2.u.d, &mx, 8),
                      "max: permutation %d split %d gave %g", p, k, r2.u.d);
        }
    }
    sl__arena_fini(&arena);
}

Test(agg, doubles_order_as_spark_whatever_the_order_and_batches)
{
    /* [1.0, NaN, -5.0] gave max 1.0 in one batch and -5.0 one record a batch; Spark orders
     * NaN above every number. */
    min_max_everywhere((double[]){1.0, NAN, -5.0}, 3, -5.0, NAN);
    min_max_everywhere((double[]){NAN, -NAN, INFINITY}, 3, INFINITY, NAN);
    min_max_everywhere((double[]){-INFINITY, NAN}, 2, -INFINITY, NAN);
    /* -0.0 equals 0.0; which one is kept must not depend on the order either. */
    min_max_everywhere((double[]){0.0, -0.0, 0.0, -0.0}, 4, -0.0, 0.0);
    min_max_everywhere((double[]){-0.0, -0.0}, 2, -0.0, -0.0);
    min_max_everywhere((double[]){0.0, 2.0, -0.0}, 3, -0.0, 2.0);
    sl_val_t nan = D(NAN), one = D(1.0), inf = D(INFINITY), mz = D(-0.0), z = D(0.0);
    cr_assert_eq(sl__val_cmp(&nan, &nan), 0, "NaN = NaN");
    cr_assert_gt(sl__val_cmp(&nan, &inf), 0, "NaN is above infinity");
    cr_assert_lt(sl__val_cmp(&one, &nan), 0);
    cr_assert_eq(sl__val_cmp(&mz, &z), 0, "-0.0 = 0.0");
}
