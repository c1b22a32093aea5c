/*
 * test_util.c - the generic helpers: growing parallel arrays, the first error of many
 * places, buffers and arenas, varints, big-endian words, numbers and bounded strings.
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

Test(util, parallel_arrays_grow_together_and_keep_their_contents)
{
    int *a = NULL;
    uint64_t *b = NULL;
    size_t cap = 0;
    for (size_t n = 0; n < 1000; n++) {
        const sl_grow_t arrays[] = {{&a, sizeof(*a)}, {&b, sizeof(*b)}};
        cr_assert_eq(sl__grow(&cap, n + 1, 4, arrays, 2), SL_OK);
        cr_assert_geq(cap, n + 1);
        a[n] = (int)n;
        b[n] = n * 3;
    }
    cr_assert_eq(cap, 1024, "doubled from 4");
    for (size_t n = 0; n < 1000; n++)
        cr_assert(a[n] == (int)n && b[n] == n * 3, "element %zu", n);
    char *one = NULL;
    size_t c1 = 0;
    cr_assert_eq(SL_GROW(one, c1, 10, 8), SL_OK);
    cr_assert_eq(c1, 16);
    cr_assert_eq(SL_GROW(one, c1, 16, 8), SL_OK, "room already");
    cr_assert_eq(c1, 16);
    size_t huge = SIZE_MAX / 2 + 2;
    cr_assert_eq(SL_GROW(one, c1, huge, 8), SL_ERR_NOMEM, "a size that overflows");
    cr_assert_eq(c1, 16, "the capacity stays on failure");
    free(a);
    free(b);
    free(one);
}

Test(util, the_first_error_wins)
{
    sl_first_err_t f = {0};
    sl__first_err_set(&f, SL_ERR_KAFKA, "broker %d down", 3);
    sl__first_err_set(&f, SL_ERR_STATE, "later");
    cr_assert_eq(f.err, SL_ERR_KAFKA);
    cr_assert_str_eq(f.msg, "broker 3 down");
    sl__first_err_clear(&f);
    cr_assert_eq(f.err, SL_OK);
    sl__first_err_set(&f, SL_ERR_STATE, "again");
    cr_assert_str_eq(f.msg, "again");
}

Test(util, varints_words_and_numbers)
{
    const int64_t v[] = {0, 1, -1, 63, -64, 64, 1LL << 40, INT64_MAX, INT64_MIN};
    for (size_t i = 0; i < SL_ARRAY_LEN(v); i++) {
        uint8_t b[10];
        size_t n = sl__zz_encode(v[i], b);
        const uint8_t *p = b;
        int64_t out;
        cr_assert_eq(sl__zz_decode(&p, b + n, &out), 0);
        cr_assert(out == v[i] && p == b + n, "%lld", (long long)v[i]);
        p = b;
        cr_assert_eq(sl__zz_decode(&p, b + n - 1, &out), -1, "cut short");
        char t[24];
        t[sl__i64_format(v[i], t)] = 0;
        char want[24];
        snprintf(want, sizeof(want), "%lld", (long long)v[i]);
        cr_assert_str_eq(t, want);
    }
    uint8_t w[8];
    sl__be64_put(w, 0x0102030405060708ULL);
    cr_assert_eq(w[0], 1);
    cr_assert_eq(sl__be64_get(w), 0x0102030405060708ULL);
    char s[16] = "ab";
    sl__strlcatf(s, sizeof(s), "%s-%d", "cdefgh", 12345678);
    cr_assert_str_eq(s, "abcdefgh-123456", "bounded, terminated");
}

Test(util, buffers_and_arenas)
{
    sl_buf_t b;
    sl__buf_init(&b);
    for (int i = 0; i < 1000; i++)
        cr_assert_eq(sl__buf_printf(&b, "%d,", i), SL_OK);
    cr_assert(!memcmp(b.p, "0,1,2,", 6));
    sl__buf_reset(&b);
    cr_assert_eq(sl__buf_json_string(&b, "a\"\n\0", 4), SL_OK);
    cr_assert_eq(b.len, strlen("\"a\\\"\\u000a\\u0000\""));
    cr_assert(!memcmp(b.p, "\"a\\\"\\u000a\\u0000\"", b.len), "%.*s", (int)b.len, b.p);
    sl__buf_fini(&b);
    sl_arena_t a;
    sl__arena_init(&a);
    void *first = sl__arena_alloc(&a, 10);
    cr_assert_eq((uintptr_t)first % 16, 0, "16-byte aligned");
    for (int i = 0; i < 10000; i++)
        cr_assert_not_null(sl__arena_dup(&a, "0123456789", 10));
    sl__arena_reset(&a);
    cr_assert_eq(sl__arena_alloc(&a, 10), first, "rewound to its first block");
    sl__arena_fini(&a);
}
