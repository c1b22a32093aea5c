/*
 * window.h - event-time windows and the watermark, as Spark defines them.
 *
 * A sliding window of size S and slide D (tumbling when D == S) starting at offset O
 * holds the times [start, start + S) for every start = O + k * D; a record belongs to
 * each window that holds its event time. A session window starts at a record's event
 * time and lasts the gap; sessions of one key that overlap merge. The watermark is the
 * largest event time seen minus the allowed delay, never moving back; a window whose end
 * is at or below it is closed: its final row can be emitted and its state dropped, and a
 * record that would still go into it is late.
 */
#ifndef SL_WINDOW_H
#define SL_WINDOW_H

#include <stdint.h>

/* No watermark yet: nothing is late and nothing closes. */
#define SL_WM_NONE INT64_MIN

/* Event times are within Spark's timestamp range, 0001-01-01T00:00:00Z to
 * 9999-12-31T23:59:59.999Z, and durations (window sizes, slides, gaps, watermark delays)
 * at most SL_DURATION_MAX, so window and watermark arithmetic never overflows. */
#define SL_TIME_MIN (-62135596800000LL)
#define SL_TIME_MAX 253402300799999LL
#define SL_DURATION_MAX (100LL * 366 * 24 * 3600 * 1000)

/**
 * Fills @p starts with the starts of the sliding windows that hold time @p t, in
 * increasing order, and returns their number (at most ceil(size / slide), and never
 * more than @p max).
 */
int sl__window_starts(int64_t t, int64_t size, int64_t slide, int64_t offset, int64_t *starts,
                      int max);

/** The watermark after a batch whose largest event time was @p maxev (SL_WM_NONE: none). */
static inline int64_t sl__watermark_next(int64_t wm, int64_t maxev, int64_t delay)
{
    if (maxev == SL_WM_NONE)
        return wm;
    int64_t cand = maxev - delay;
    return cand > wm ? cand : wm;
}

/** 1 when a window ending at @p end is closed by watermark @p wm. */
static inline int sl__window_closed(int64_t end, int64_t wm)
{
    return wm != SL_WM_NONE && end <= wm;
}

#endif
