/*
 * test_table.c - group keys and the batch table.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "query/table.h"

Test(table, key_round_trip_all_types)
{
    sl_val_t row[5] = {{.t = SL_T_STRING, .n = 3, .u.s = "a\0b"},
                       {.t = SL_T_LONG, .u.i = -42},
                       {.t = SL_T_NULL},
                       {.t = SL_T_DOUBLE, .u.d = 2.5},
                       {.t = SL_T_BOOL, .u.i = 1}};
    int slots[5] = {0, 1, 2, 3, 4};
    sl_buf_t b;
    sl__buf_init(&b);
    cr_assert_eq(sl__key_encode(row, slots, 5, &b), SL_OK);
    sl_val_t out[5];
    cr_assert_eq(sl__key_decode(b.p, b.len, 5, out), SL_OK);
    for (int i = 0; i < 5; i++) {
        cr_assert_eq(out[i].t, row[i].t);
        if (row[i].t != SL_T_NULL)
            cr_assert_eq(sl__val_cmp(&out[i], &row[i]), 0, "value %d", i);
    }
    cr_assert_eq(sl__key_decode(b.p, b.len - 1, 5, out), SL_ERR_STATE);
    cr_assert_eq(sl__key_decode(b.p, b.len, 4, out), SL_ERR_STATE, "bytes left over");
    sl__buf_fini(&b);
}

/* A key written into a fixed buffer (the fold queue's) is the key sl__key_encode() appends,
 * or 0 when the buffer may not hold it. */
Test(table, key_put_writes_the_encoded_key_when_it_fits)
{
    char s63[64], s200[201];
    memset(s63, 'x', sizeof(s63));
    memset(s200, 'y', sizeof(s200));
    sl_val_t row[4] = {{.t = SL_T_STRING, .n = 5, .u.s = "page7"},
                       {.t = SL_T_LONG, .u.i = -3},
                       {.t = SL_T_STRING, .n = 63, .u.s = s63},
                       {.t = SL_T_STRING, .n = 200, .u.s = s200}};
    struct {
        int slots[2], n;
        size_t cap, want; /* want: 0 = does not fit */
    } cases[] = {
        {{0}, 1, 64, 7},     /* the short string: tag, length, bytes */
        {{0}, 1, 7, 7},      /* exactly its room */
        {{0}, 1, 6, 0},      /* a byte short */
        {{2}, 1, 65, 65},    /* 63 bytes: still one length byte */
        {{2}, 1, 64, 0},     /* ... which a 64-byte buffer cannot hold */
        {{3}, 1, 64, 0},     /* a long string */
        {{0, 1}, 2, 64, 16}, /* two values: string head + bytes, long head */
        {{1, 0}, 2, 64, 16}, /* in the other order */
        {{0}, 0, 64, 0},     /* no group: the encoder takes it */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint8_t buf[256];
        memset(buf, 0xee, sizeof(buf));
        size_t len = sl__key_put(row, cases[i].slots, cases[i].n, buf, cases[i].cap);
        cr_assert_eq(len, cases[i].want, "case %zu: %zu bytes", i, len);
        cr_assert_eq(buf[cases[i].cap], 0xee, "case %zu wrote past its room", i);
        if (!len)
            continue;
        sl_buf_t b;
        sl__buf_init(&b);
        cr_assert_eq(sl__key_encode(row, cases[i].slots, cases[i].n, &b), SL_OK);
        cr_assert_eq(b.len, len, "case %zu", i);
        cr_assert_eq(memcmp(b.p, buf, len), 0, "case %zu", i);
        sl__buf_fini(&b);
    }
}

Test(table, long_keys_sort_numerically)
{
    int64_t vals[] = {-1000, -1, 0, 1, 255, 256, 1000000};
    sl_buf_t prev;
    sl__buf_init(&prev);
    int slots[1] = {0};
    for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
        sl_val_t v = {.t = SL_T_LONG, .u.i = vals[i]};
        sl_buf_t b;
        sl__buf_init(&b);
        sl__key_encode(&v, slots, 1, &b);
        if (i)
            cr_assert(memcmp(prev.p, b.p, b.len) < 0, "%lld sorts after %lld", (long long)vals[i],
                      (long long)vals[i - 1]);
        sl__buf_fini(&prev);
        prev = b;
    }
    sl__buf_fini(&prev);
}

Test(table, upsert_grow_clear)
{
    sl_table_t t;
    cr_assert_eq(sl__table_init(&t, 2), SL_OK);
    for (int round = 0; round < 3; round++) {
        int n = round == 1 ? 10 : 50000; /* a small batch after a big one, then big again */
        for (int rep = 0; rep < 2; rep++) {
            for (int i = 0; i < n; i++) {
                char k[32];
                int len = snprintf(k, sizeof(k), "key-%d", i);
                sl_entry_t *e = sl__table_upsert(&t, (const uint8_t *)k, (uint32_t)len);
                cr_assert_not_null(e);
                e->acc[0].n++;
                e->acc[1].n += i;
            }
        }
        cr_assert_eq(t.n, (size_t)n);
        for (size_t i = 0; i < t.n; i++) {
            sl_entry_t *e = t.order[i];
            cr_assert_eq(e->acc[0].n, 2, "each key was seen twice");
            cr_assert_eq(e->acc[1].n, 2 * (int64_t)i, "insertion order is kept");
        }
        sl__table_clear(&t);
        cr_assert_eq(t.n, 0);
        for (size_t i = 0; i < t.cap; i++)
            cr_assert_null(t.slots[i].e, "slot %zu not cleared after round %d", i, round);
    }
    sl__table_fini(&t);
}

static int byte_order(const void *a, const void *b)
{
    const sl_entry_t *x = *(sl_entry_t *const *)a, *y = *(sl_entry_t *const *)b;
    int r = memcmp(x->key, y->key, x->klen < y->klen ? x->klen : y->klen);
    return r ? r : (int)x->klen - (int)y->klen;
}

static void sort_keys(int total);

Test(table, entries_sort_in_byte_order)
{
    /* Keys that differ only past their first 16 bytes, keys that are prefixes of others
     * (one of them ends in a zero byte, which the 16-byte prefixes pad with), random ones
     * of every length up to 40 over few letters (long common prefixes) and over all byte
     * values; the whole set (the radix sort) and its first 100 (a comparison sort). */
    sort_keys(4000);
    sort_keys(100);
}

static void sort_keys(int total)
{
    sl_table_t t;
    cr_assert_eq(sl__table_init(&t, 1), SL_OK);
    uint32_t seed = 7;
    for (int i = 0; i < total; i++) {
        uint8_t k[40];
        uint32_t len;
        if (i < 1000) {
            len = 20;
            memset(k, 'p', 16);
            seed = seed * 1103515245u + 12345u;
            memcpy(k + 16, &seed, 4);
        } else if (i < 1010) {
            len = (uint32_t)(i - 1000);
            memset(k, 0, len);
        } else {
            seed = seed * 1103515245u + 12345u;
            len = seed % 41;
            for (uint32_t j = 0; j < len; j++) {
                seed = seed * 1103515245u + 12345u;
                k[j] = (uint8_t)(seed >> 24);
                if (i < 3000)
                    k[j] %= 4;
            }
        }
        cr_assert(sl__table_upsert(&t, k, len));
    }
    sl_entry_t **want = malloc(t.n * sizeof(*want));
    memcpy(want, t.order, t.n * sizeof(*want));
    qsort(want, t.n, sizeof(*want), byte_order);
    sl__entries_sort(t.order, t.n);
    for (size_t i = 0; i < t.n; i++)
        cr_assert_eq(t.order[i], want[i], "entry %zu of %zu out of order", i, t.n);
    free(want);
    sl__table_fini(&t);
}

Test(table, double_keys_are_normalized_as_spark_groups_them)
{
    /* -0.0 and 0.0 are one group, and so is every NaN bit pattern; Spark normalizes
     * floating-point grouping keys the same way. They were separate groups. */
    uint64_t nan_bits[] = {0x7ff8000000000000ULL, 0xfff8000000000000ULL, 0x7ff0000000000001ULL,
                           0x7fffffffffffffffULL};
    sl_buf_t want, got;
    sl__buf_init(&want);
    sl__buf_init(&got);
    int slot = 0;
    sl_val_t v = {.t = SL_T_DOUBLE, .u.d = 0.0};
    cr_assert_eq(sl__key_encode(&v, &slot, 1, &want), SL_OK);
    v.u.d = -0.0;
    cr_assert_eq(sl__key_encode(&v, &slot, 1, &got), SL_OK);
    cr_assert(got.len == want.len && !memcmp(got.p, want.p, got.len), "-0.0 is the key of 0.0");
    sl__buf_reset(&want);
    for (size_t i = 0; i < SL_ARRAY_LEN(nan_bits); i++) {
        memcpy(&v.u.d, &nan_bits[i], 8);
        cr_assert(isnan(v.u.d));
        sl__buf_reset(&got);
        cr_assert_eq(sl__key_encode(&v, &slot, 1, &got), SL_OK);
        if (i == 0)
            cr_assert_eq(sl__key_encode(&v, &slot, 1, &want), SL_OK);
        cr_assert(got.len == want.len && !memcmp(got.p, want.p, got.len), "NaN pattern %zu", i);
        sl_val_t back;
        cr_assert_eq(sl__key_decode(got.p, got.len, 1, &back), SL_OK);
        cr_assert(back.t == SL_T_DOUBLE && isnan(back.u.d));
    }
    v.u.d = 1.0;
    sl__buf_reset(&got);
    cr_assert_eq(sl__key_encode(&v, &slot, 1, &got), SL_OK);
    cr_assert(memcmp(got.p, want.p, got.len), "other numbers stay apart");
    sl__buf_fini(&want);
    sl__buf_fini(&got);
}
