/*
 * window.c - which sliding windows hold a time (see window.h).
 */
#include "window.h"

/* Floor modulo: the result has the sign of the divisor, as windows before 1970 need. */
static int64_t floor_mod(int64_t a, int64_t b)
{
    int64_t r = a % b;
    return r < 0 ? r + b : r;
}

int sl__window_starts(int64_t t, int64_t size, int64_t slide, int64_t offset, int64_t *starts,
                      int max)
{
    /* As Spark's TimeWindowing: the last window that can hold t starts at
     * t - (t - offset) mod slide; earlier ones every slide before it. */
    int64_t last = t - floor_mod(t - offset, slide);
    int64_t n = (size + slide - 1) / slide;
    int count = 0;
    for (int64_t i = n - 1; i >= 0; i--) {
        int64_t start = last - i * slide;
        if (start <= t && t < start + size && count < max)
            starts[count++] = start;
    }
    return count;
}
