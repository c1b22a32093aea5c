/*
 * test_window.c - window assignment and the watermark, against Spark's definitions.
 */
#include <criterion/criterion.h>

#include "query/window.h"

Test(window, tumbling_holds_each_time_once)
{
    int64_t s[8];
    cr_assert_eq(sl__window_starts(0, 10, 10, 0, s, 8), 1);
    cr_assert_eq(s[0], 0);
    cr_assert_eq(sl__window_starts(9, 10, 10, 0, s, 8), 1);
    cr_assert_eq(s[0], 0);
    cr_assert_eq(sl__window_starts(10, 10, 10, 0, s, 8), 1, "the end is not in the window");
    cr_assert_eq(s[0], 10);
    cr_assert_eq(sl__window_starts(-1, 10, 10, 0, s, 8), 1, "before 1970");
    cr_assert_eq(s[0], -10);
    cr_assert_eq(sl__window_starts(12, 10, 10, 3, s, 8), 1, "an offset moves the starts");
    cr_assert_eq(s[0], 3);
}

Test(window, hopping_holds_each_time_size_over_slide_times)
{
    int64_t s[8];
    /* size 10, slide 5: t = 12 is in [5, 15) and [10, 20) */
    cr_assert_eq(sl__window_starts(12, 10, 5, 0, s, 8), 2);
    cr_assert_eq(s[0], 5);
    cr_assert_eq(s[1], 10);
    /* size 10, slide 3 (not a divisor): t = 12 is in [3,13) [6,16) [9,19) [12,22) */
    int n = sl__window_starts(12, 10, 3, 0, s, 8);
    cr_assert_eq(n, 4);
    for (int i = 0; i < n; i++)
        cr_assert(s[i] <= 12 && 12 < s[i] + 10 && (i == 0 || s[i] == s[i - 1] + 3));
    cr_assert_eq(s[0], 3);
    /* every time of a long range: in exactly ceil(size / slide) or floor(...) windows */
    for (int64_t t = -50; t < 50; t++) {
        n = sl__window_starts(t, 10, 3, 1, s, 8);
        cr_assert(n == 3 || n == 4, "t=%lld: %d windows", (long long)t, n);
        for (int i = 0; i < n; i++)
            cr_assert(s[i] <= t && t < s[i] + 10 && (s[i] - 1) % 3 == 0);
    }
}

Test(window, watermark_moves_forward_only)
{
    int64_t wm = SL_WM_NONE;
    cr_assert_eq(sl__watermark_next(wm, SL_WM_NONE, 100), SL_WM_NONE, "no event time yet");
    wm = sl__watermark_next(wm, 1000, 100);
    cr_assert_eq(wm, 900);
    cr_assert_eq(sl__watermark_next(wm, 950, 100), 900, "an older batch does not move it back");
    cr_assert(!sl__window_closed(1000, SL_WM_NONE));
    cr_assert(sl__window_closed(900, 900), "a window ending at the watermark is closed");
    cr_assert(!sl__window_closed(901, 900));
}
